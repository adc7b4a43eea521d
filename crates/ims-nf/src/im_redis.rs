//! Stored short messages and page-mode IMs in Redis (feature `redis`), selected with
//! `store = "redis://HOST:PORT[/PREFIX]"` ([`crate::im_server::ImServerConfig::store`]).
//!
//! The IP-SM-GW and the IM store are synchronous (they are called under a lock from protocol
//! code), so writes go through a [`RedisMirror`]: a channel drained in order by one background
//! task that applies each write with `HSET`/`HDEL` on the RESP client of [`crate::redis`]
//! (retried with back-off while Redis is unreachable). A write the server makes a promise on
//! (a stored short message before its RP-ACK, a stored IM before its 202) is confirmed first:
//! [`RedisMirror::mark`] before the write, [`RedisMirror::confirm`] after it resolves once
//! Redis has answered every write queued in between, `false` when one of them failed.
//! Everything is read once at start with `HGETALL`. Keys: `PREFIX` + `sms` (field: the message id as 16 hex digits, value: the
//! IP-SM-GW's text record) and `PREFIX` + `im` (field: a name that sorts in arrival order,
//! value: the JSON record of the file store). `PREFIX` defaults to `ims:im:`.

use crate::ipsmgw::{SmsStore, StoredSms};
use crate::redis::{RedisStore, Reply};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// Key prefix when the URL names none.
pub(crate) const DEFAULT_PREFIX: &str = "ims:im:";
/// Attempts to apply one write before it is given up (back-off 100 ms, doubling, ≤ 3.2 s).
const WRITE_ATTEMPTS: u32 = 8;

/// `redis://HOST:PORT[/PREFIX]` → (`HOST:PORT`, prefix); `None` when `url` is not a Redis URL.
pub(crate) fn parse_url(url: &str) -> Option<(String, String)> {
    let rest = url.strip_prefix("redis://")?;
    let (addr, prefix) = match rest.split_once('/') {
        Some((a, p)) if !p.is_empty() => (a, p),
        Some((a, _)) => (a, DEFAULT_PREFIX),
        None => (rest, DEFAULT_PREFIX),
    };
    if addr.is_empty() {
        return None;
    }
    let addr = if addr.contains(':') {
        addr.to_string()
    } else {
        format!("{addr}:6379")
    };
    Some((addr, prefix.to_string()))
}

fn io(e: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::other(format!("redis: {e}"))
}

enum Op {
    Set {
        key: Vec<u8>,
        field: Vec<u8>,
        value: Vec<u8>,
    },
    Del {
        key: Vec<u8>,
        field: Vec<u8>,
    },
    Flush(oneshot::Sender<()>),
    /// Answers whether every write numbered `since` or later (and queued before this) succeeded.
    Confirm {
        since: u64,
        done: oneshot::Sender<bool>,
    },
}

/// Ordered, asynchronous writes to Redis hashes, plus the loads done at start.
#[derive(Clone)]
pub(crate) struct RedisMirror {
    prefix: String,
    client: Arc<RedisStore>,
    tx: mpsc::UnboundedSender<(u64, Op)>,
    /// The number the next queued operation gets (operations are applied in this order).
    seq: Arc<AtomicU64>,
}

impl std::fmt::Debug for RedisMirror {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisMirror")
            .field("prefix", &self.prefix)
            .finish()
    }
}

impl RedisMirror {
    /// Connects (PING) and starts the writer task; it ends when every clone is dropped.
    pub(crate) async fn connect(addr: &str, prefix: &str) -> std::io::Result<RedisMirror> {
        let client = Arc::new(RedisStore::connect(addr, "").await.map_err(io)?);
        let (tx, mut rx) = mpsc::unbounded_channel::<(u64, Op)>();
        let c = client.clone();
        tokio::spawn(async move {
            // the number of the last write that failed (given up, or refused by Redis)
            let mut last_failed: Option<u64> = None;
            while let Some((seq, op)) = rx.recv().await {
                let args: Vec<&[u8]> = match op {
                    Op::Set {
                        ref key,
                        ref field,
                        ref value,
                    } => vec![b"HSET", key, field, value],
                    Op::Del { ref key, ref field } => vec![b"HDEL", key, field],
                    Op::Flush(done) => {
                        let _ = done.send(());
                        continue;
                    }
                    Op::Confirm { since, done } => {
                        let _ = done.send(last_failed.is_none_or(|f| f < since));
                        continue;
                    }
                };
                let mut wait = Duration::from_millis(100);
                for attempt in 1..=WRITE_ATTEMPTS {
                    match c.command(&args).await {
                        Ok(Reply::Integer(_)) => break,
                        Ok(other) => {
                            eprintln!("im store: unexpected Redis reply {other:?}");
                            last_failed = last_failed.max(Some(seq));
                            break;
                        }
                        Err(e) if attempt == WRITE_ATTEMPTS => {
                            eprintln!("im store: Redis write given up: {e}");
                            last_failed = last_failed.max(Some(seq));
                        }
                        Err(_) => {
                            tokio::time::sleep(wait).await;
                            wait = (wait * 2).min(Duration::from_millis(3200));
                        }
                    }
                }
            }
        });
        Ok(RedisMirror {
            prefix: prefix.to_string(),
            client,
            tx,
            seq: Arc::new(AtomicU64::new(0)),
        })
    }

    fn send(&self, op: Op) -> bool {
        // two callers may queue in the other order than they were numbered: the writer keeps
        // the highest failed number, so a caller's own failed write is never hidden
        let seq = self.seq.fetch_add(1, Ordering::SeqCst);
        self.tx.send((seq, op)).is_ok()
    }

    /// The number the next write will get: pass it to [`RedisMirror::confirm`] after the writes.
    pub(crate) fn mark(&self) -> u64 {
        self.seq.load(Ordering::SeqCst)
    }

    /// Resolves once every write queued so far has been answered by Redis: `true` when none
    /// numbered `since` or later failed. Conservative: a failed write of another caller in
    /// the same window counts too. Never resolves `true` while Redis is unreachable.
    pub(crate) async fn confirm(&self, since: u64) -> bool {
        let (done, wait) = oneshot::channel();
        self.send(Op::Confirm { since, done }) && wait.await.unwrap_or(false)
    }

    fn key(&self, hash: &str) -> Vec<u8> {
        format!("{}{hash}", self.prefix).into_bytes()
    }

    /// Queues `HSET PREFIX+hash field value`.
    pub(crate) fn set(&self, hash: &str, field: &str, value: Vec<u8>) {
        self.send(Op::Set {
            key: self.key(hash),
            field: field.as_bytes().to_vec(),
            value,
        });
    }

    /// Queues `HDEL PREFIX+hash field`.
    pub(crate) fn del(&self, hash: &str, field: &str) {
        self.send(Op::Del {
            key: self.key(hash),
            field: field.as_bytes().to_vec(),
        });
    }

    /// Waits until every write queued before this call has been applied (or given up).
    pub(crate) async fn flush(&self) {
        let (done, wait) = oneshot::channel();
        if self.send(Op::Flush(done)) {
            let _ = wait.await;
        }
    }

    /// Every `(field, value)` of `PREFIX+hash`, sorted by field.
    pub(crate) async fn load(&self, hash: &str) -> std::io::Result<Vec<(String, Vec<u8>)>> {
        let key = self.key(hash);
        let reply = self.client.command(&[b"HGETALL", &key]).await.map_err(io)?;
        let Reply::Array(Some(items)) = reply else {
            return Err(io(format!("unexpected HGETALL reply {reply:?}")));
        };
        let mut out = Vec::with_capacity(items.len() / 2);
        let mut it = items.into_iter();
        while let (Some(Reply::Bulk(Some(f))), Some(Reply::Bulk(Some(v)))) = (it.next(), it.next())
        {
            if let Ok(f) = String::from_utf8(f) {
                out.push((f, v));
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }
}

/// The IP-SM-GW's [`SmsStore`] on Redis: what was stored is read at connect time and handed
/// to the IP-SM-GW by [`SmsStore::load_all`]; saves and removals are queued to the writer.
#[derive(Debug)]
pub(crate) struct RedisSmsStore {
    mirror: RedisMirror,
    loaded: Vec<StoredSms>,
}

impl RedisSmsStore {
    /// Loads the stored short messages (unreadable records are skipped).
    pub(crate) async fn open(mirror: RedisMirror) -> std::io::Result<RedisSmsStore> {
        let mut loaded: Vec<StoredSms> = mirror
            .load("sms")
            .await?
            .into_iter()
            .filter_map(|(_, v)| StoredSms::from_text(std::str::from_utf8(&v).ok()?))
            .collect();
        loaded.sort_by_key(|s| s.id);
        Ok(RedisSmsStore { mirror, loaded })
    }
}

impl SmsStore for RedisSmsStore {
    fn save(&mut self, sms: &StoredSms) -> std::io::Result<()> {
        self.mirror.set(
            "sms",
            &format!("{:016x}", sms.id),
            sms.to_text().into_bytes(),
        );
        Ok(())
    }

    fn remove(&mut self, id: u64) -> std::io::Result<()> {
        self.mirror.del("sms", &format!("{id:016x}"));
        Ok(())
    }

    fn load_all(&mut self) -> std::io::Result<Vec<StoredSms>> {
        Ok(std::mem::take(&mut self.loaded))
    }
}

#[cfg(test)]
mod tests {
    use super::parse_url;

    #[test]
    fn redis_urls() {
        assert_eq!(
            parse_url("redis://127.0.0.1:7181"),
            Some(("127.0.0.1:7181".into(), "ims:im:".into()))
        );
        assert_eq!(
            parse_url("redis://cache.example/ims:site2:"),
            Some(("cache.example:6379".into(), "ims:site2:".into()))
        );
        assert_eq!(
            parse_url("redis://h:1/"),
            Some(("h:1".into(), "ims:im:".into()))
        );
        assert_eq!(parse_url("/var/lib/ims-rs/sms"), None);
        assert_eq!(parse_url("redis://"), None);
    }
}
