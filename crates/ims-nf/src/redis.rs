//! [`BindingStore`] on Redis (feature `redis`): a small RESP2 client over one TCP connection,
//! reconnecting after a failure, so several S-CSCF processes share registrations.

use crate::store::{BindingStore, RegistrationRecord, StoreError};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufStream};
use tokio::net::TcpStream;
use tokio::sync::Mutex;

/// Largest bulk reply accepted (a registration record is a few KiB).
const MAX_BULK: usize = 16 * 1024 * 1024;
/// Most elements in an array reply.
const MAX_ARRAY: usize = 65_536;
/// Longest status/error/integer line.
const MAX_LINE: usize = 64 * 1024;

/// A RESP2 reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Reply {
    Simple(String),
    Integer(i64),
    Bulk(Option<Vec<u8>>),
    Array(Option<Vec<Reply>>),
    /// An error reply (`-ERR …`): the command failed, the connection is still in step.
    Error(String),
}

/// Registrations in Redis: each record stored as a string under `prefix` + every IMPU of its
/// implicit set (written together with MSET, removed together with DEL).
#[derive(Debug)]
pub struct RedisStore {
    addr: String,
    prefix: String,
    conn: Mutex<Option<BufStream<TcpStream>>>,
}

fn backend(e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(e.to_string())
}

impl RedisStore {
    /// Connects to `addr` (`host:port`); keys are prefixed with `prefix` (e.g. `ims:reg:`).
    pub async fn connect(addr: &str, prefix: &str) -> Result<RedisStore, StoreError> {
        let s = RedisStore {
            addr: addr.to_string(),
            prefix: prefix.to_string(),
            conn: Mutex::new(None),
        };
        match s.command(&[b"PING"]).await? {
            Reply::Simple(p) if p == "PONG" => Ok(s),
            other => Err(backend(format!("unexpected PING reply {other:?}"))),
        }
    }

    /// Sends one command and reads its reply (also used by the IM server's Redis store).
    pub(crate) async fn command(&self, args: &[&[u8]]) -> Result<Reply, StoreError> {
        let mut guard = self.conn.lock().await;
        if guard.is_none() {
            let tcp = TcpStream::connect(&self.addr).await.map_err(backend)?;
            tcp.set_nodelay(true).map_err(backend)?;
            *guard = Some(BufStream::new(tcp));
        }
        let conn = guard.as_mut().expect("connected just above");
        let res = exchange(conn, args).await;
        if res.is_err() {
            // the connection state is unknown after a failure: start afresh next time
            *guard = None;
        }
        match res? {
            Reply::Error(e) => Err(StoreError::Backend(format!("redis error: {e}"))),
            r => Ok(r),
        }
    }

    /// Sends `cmds` in one write (a pipeline) and reads their replies in order, the whole
    /// exchange (connecting included) bounded by `within`: a Redis that accepts but never
    /// answers cannot hold the caller. Each command keeps its own outcome (a
    /// [`Reply::Error`] fails that command only). A timeout or an I/O failure drops the
    /// connection (its state is unknown) and fails the call: which commands were applied is
    /// then unknown. Used by the IM server's Redis store.
    pub(crate) async fn pipeline(
        &self,
        cmds: &[Vec<&[u8]>],
        within: std::time::Duration,
    ) -> Result<Vec<Reply>, StoreError> {
        let mut guard = self.conn.lock().await;
        let res = tokio::time::timeout(within, async {
            if guard.is_none() {
                let tcp = TcpStream::connect(&self.addr).await.map_err(backend)?;
                tcp.set_nodelay(true).map_err(backend)?;
                *guard = Some(BufStream::new(tcp));
            }
            let conn = guard.as_mut().expect("connected just above");
            let mut req = Vec::new();
            for args in cmds {
                encode(&mut req, args);
            }
            conn.write_all(&req).await.map_err(backend)?;
            conn.flush().await.map_err(backend)?;
            let mut out = Vec::with_capacity(cmds.len());
            for _ in cmds {
                out.push(read_reply(conn, 0).await?);
            }
            Ok(out)
        })
        .await
        .unwrap_or_else(|_| Err(backend("no answer in time")));
        if res.is_err() {
            *guard = None;
        }
        res
    }

    fn key(&self, impu: &str) -> Vec<u8> {
        let mut k = Vec::with_capacity(self.prefix.len() + impu.len());
        k.extend_from_slice(self.prefix.as_bytes());
        k.extend_from_slice(impu.as_bytes());
        k
    }
}

/// Appends one command as a RESP array of bulk strings.
fn encode(req: &mut Vec<u8>, args: &[&[u8]]) {
    req.reserve(64 + args.iter().map(|a| a.len() + 16).sum::<usize>());
    req.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
    for a in args {
        req.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        req.extend_from_slice(a);
        req.extend_from_slice(b"\r\n");
    }
}

async fn exchange(conn: &mut BufStream<TcpStream>, args: &[&[u8]]) -> Result<Reply, StoreError> {
    let mut req = Vec::new();
    encode(&mut req, args);
    conn.write_all(&req).await.map_err(backend)?;
    conn.flush().await.map_err(backend)?;
    read_reply(conn, 0).await
}

async fn read_line(conn: &mut BufStream<TcpStream>) -> Result<String, StoreError> {
    let mut line = Vec::new();
    let n = (&mut *conn)
        .take(MAX_LINE as u64)
        .read_until(b'\n', &mut line)
        .await
        .map_err(backend)?;
    if n == 0 {
        return Err(backend("connection closed"));
    }
    if !line.ends_with(b"\r\n") {
        return Err(backend("reply line too long or not CRLF-terminated"));
    }
    line.truncate(line.len() - 2);
    String::from_utf8(line).map_err(backend)
}

fn read_reply(
    conn: &mut BufStream<TcpStream>,
    depth: u32,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<Reply, StoreError>> + Send + '_>> {
    Box::pin(async move {
        if depth > 4 {
            return Err(backend("reply nested too deeply"));
        }
        let line = read_line(conn).await?;
        let (kind, rest) = line.split_at(line.len().min(1));
        let int = |s: &str| s.parse::<i64>().map_err(backend);
        match kind {
            "+" => Ok(Reply::Simple(rest.to_string())),
            "-" => Ok(Reply::Error(rest.to_string())),
            ":" => Ok(Reply::Integer(int(rest)?)),
            "$" => {
                let n = int(rest)?;
                if n < 0 {
                    return Ok(Reply::Bulk(None));
                }
                let n = usize::try_from(n).map_err(backend)?;
                if n > MAX_BULK {
                    return Err(backend("bulk reply too large"));
                }
                let mut buf = vec![0; n + 2];
                conn.read_exact(&mut buf).await.map_err(backend)?;
                if !buf.ends_with(b"\r\n") {
                    return Err(backend("bulk reply not CRLF-terminated"));
                }
                buf.truncate(n);
                Ok(Reply::Bulk(Some(buf)))
            }
            "*" => {
                let n = int(rest)?;
                if n < 0 {
                    return Ok(Reply::Array(None));
                }
                let n = usize::try_from(n).map_err(backend)?;
                if n > MAX_ARRAY {
                    return Err(backend("array reply too large"));
                }
                let mut v = Vec::with_capacity(n.min(64));
                for _ in 0..n {
                    v.push(read_reply(conn, depth + 1).await?);
                }
                Ok(Reply::Array(Some(v)))
            }
            _ => Err(backend(format!("unknown reply type {line:?}"))),
        }
    })
}

impl BindingStore for RedisStore {
    async fn load(&self, impu: &str) -> Result<Option<RegistrationRecord>, StoreError> {
        let key = self.key(impu);
        match self.command(&[b"GET", &key]).await? {
            Reply::Bulk(None) => Ok(None),
            Reply::Bulk(Some(v)) => RegistrationRecord::decode(&v).map(Some),
            other => Err(backend(format!("unexpected GET reply {other:?}"))),
        }
    }

    async fn save(&self, rec: &RegistrationRecord) -> Result<(), StoreError> {
        let value = rec.encode();
        let keys: Vec<Vec<u8>> = rec.keys().map(|k| self.key(k)).collect();
        let mut args: Vec<&[u8]> = vec![b"MSET"];
        for k in &keys {
            args.push(k);
            args.push(&value);
        }
        match self.command(&args).await? {
            Reply::Simple(ok) if ok == "OK" => Ok(()),
            other => Err(backend(format!("unexpected MSET reply {other:?}"))),
        }
    }

    async fn remove(&self, rec: &RegistrationRecord) -> Result<(), StoreError> {
        let keys: Vec<Vec<u8>> = rec.keys().map(|k| self.key(k)).collect();
        let mut args: Vec<&[u8]> = vec![b"DEL"];
        args.extend(keys.iter().map(Vec::as_slice));
        match self.command(&args).await? {
            Reply::Integer(_) => Ok(()),
            other => Err(backend(format!("unexpected DEL reply {other:?}"))),
        }
    }

    /// `SET <prefix>alias:<alias> "<expires_at> <target>" EX <seconds left>`: Redis drops it
    /// when it expires; a load also checks the expiry against the caller's clock.
    async fn save_alias(
        &self,
        alias: &str,
        target: &str,
        now: u64,
        expires_at: u64,
    ) -> Result<(), StoreError> {
        let key = self.key(&format!("alias:{alias}"));
        let ttl = expires_at.saturating_sub(now).max(1).to_string();
        let value = format!("{expires_at} {target}");
        match self
            .command(&[b"SET", &key, value.as_bytes(), b"EX", ttl.as_bytes()])
            .await?
        {
            Reply::Simple(ok) if ok == "OK" => Ok(()),
            other => Err(backend(format!("unexpected SET reply {other:?}"))),
        }
    }

    async fn load_alias(&self, alias: &str, now: u64) -> Result<Option<String>, StoreError> {
        let key = self.key(&format!("alias:{alias}"));
        match self.command(&[b"GET", &key]).await? {
            Reply::Bulk(None) => Ok(None),
            Reply::Bulk(Some(v)) => {
                let v = String::from_utf8(v).map_err(|_| StoreError::Corrupt)?;
                let (at, target) = v.split_once(' ').ok_or(StoreError::Corrupt)?;
                let at: u64 = at.parse().map_err(|_| StoreError::Corrupt)?;
                Ok((at > now).then(|| target.to_string()))
            }
            other => Err(backend(format!("unexpected GET reply {other:?}"))),
        }
    }
}
