//! Stored short messages and page-mode IMs in Redis (feature `redis`), selected with
//! `store = "redis://HOST:PORT[/PREFIX]"` ([`crate::im_server::ImServerConfig::store`]).
//!
//! The IP-SM-GW and the IM store are synchronous (they are called under a lock from protocol
//! code), so writes go through a [`RedisMirror`]: a channel drained in order by one background
//! task that applies what is queued with `HSET`/`HDEL` on the RESP client of [`crate::redis`],
//! several writes per round trip (a pipeline of at most [`MAX_BATCH`]), each round trip bounded
//! by [`COMMAND_TIMEOUT`] (a Redis that accepts but never answers loses the connection and the
//! batch is tried again on a new one), retried with back-off while Redis is unreachable. A
//! write that still fails is not lost: the writer keeps the last failed write of each hash
//! field and applies it again (before newer writes, every [`PENDING_RETRY`] when idle) until
//! Redis takes it or a newer write to that field replaces it, so the removal of a delivered
//! message reaches Redis once it is back and a later restart does not deliver it again. Every
//! write is numbered; a change the server makes a promise on (a stored short message before
//! its RP-ACK, its removal before the status report, a stored IM before its 202) is confirmed
//! first: [`RedisMirror::mark`] before the write, [`RedisMirror::confirm`] after it names the
//! hash fields the promise rests on and resolves once Redis has answered every write queued in
//! between, `false` when a write to one of those fields failed (a failure of another message's
//! write does not count). Everything is read once at start with `HGETALL`. Keys: `PREFIX` +
//! `sms` (field: the message id as 16 hex digits, [`sms_field`], value: the IP-SM-GW's text
//! record), `PREFIX` + `im` (field: a name that sorts in arrival order, value: the JSON
//! record of the file store) and, with an external SMSC, `PREFIX` + `mwd` (field: the
//! recipient's identity, value: its Message Waiting Data as JSON,
//! [`crate::ipsmgw::sgd::MessageWaiting::to_json`]). `PREFIX` defaults to `ims:im:`.

use crate::ipsmgw::{SmsStore, StoredSms};
use crate::redis::{RedisStore, Reply};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// Key prefix when the URL names none.
pub(crate) const DEFAULT_PREFIX: &str = "ims:im:";
/// Attempts to apply one batch of writes before it is given up (back-off 100 ms, doubling,
/// ≤ 1.6 s between attempts).
const WRITE_ATTEMPTS: u32 = 6;
/// Longest wait for Redis to answer one batch (connecting included).
pub(crate) const COMMAND_TIMEOUT: Duration = Duration::from_secs(2);
/// Longest wait for a hash to be read at start.
const LOAD_TIMEOUT: Duration = Duration::from_secs(10);
/// Most writes sent in one round trip.
pub(crate) const MAX_BATCH: usize = 256;
/// Failed writes remembered for [`RedisMirror::confirm`] (older ones count as failed for any
/// confirmation that reaches back to them).
const FAILURE_MEMORY: usize = 4096;
/// How often failed writes are applied again while no new write comes.
pub(crate) const PENDING_RETRY: Duration = Duration::from_secs(1);
/// Most failed writes kept to be applied again (one per hash field; beyond, the oldest is
/// dropped with a log line).
const PENDING_MAX: usize = 65_536;

/// The field of a short message in the `sms` hash.
pub(crate) fn sms_field(id: u64) -> String {
    format!("{id:016x}")
}

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
    /// Answers whether every write numbered `since` or later (and queued before this) to one
    /// of `fields` (key, field) succeeded.
    Confirm {
        since: u64,
        fields: Vec<(Vec<u8>, Vec<u8>)>,
        done: oneshot::Sender<bool>,
    },
}

/// The writes that failed lately, oldest first: `(number, key, field)`.
#[derive(Default)]
struct Failures {
    recent: VecDeque<(u64, Vec<u8>, Vec<u8>)>,
    /// The highest number pushed out of `recent` (a confirmation reaching back to it cannot
    /// tell, and says no).
    forgotten: Option<u64>,
}

impl Failures {
    fn push(&mut self, seq: u64, key: &[u8], field: &[u8]) {
        if self.recent.len() >= FAILURE_MEMORY {
            if let Some((old, ..)) = self.recent.pop_front() {
                self.forgotten = self.forgotten.max(Some(old));
            }
        }
        self.recent.push_back((seq, key.to_vec(), field.to_vec()));
    }

    /// The failed write `seq` was applied after all.
    fn clear(&mut self, seq: u64) {
        self.recent.retain(|(s, ..)| *s != seq);
    }

    fn confirms(&self, since: u64, fields: &[(Vec<u8>, Vec<u8>)]) -> bool {
        if self.forgotten.is_some_and(|f| f >= since) {
            return false;
        }
        !self
            .recent
            .iter()
            .any(|(seq, k, f)| *seq >= since && fields.iter().any(|(ck, cf)| ck == k && cf == f))
    }
}

/// A write that failed, kept to be applied again: `value` `None` is an `HDEL`.
struct Pending {
    seq: u64,
    key: Vec<u8>,
    field: Vec<u8>,
    value: Option<Vec<u8>>,
}

/// Whether the next reply of `replies` says the write was applied.
fn applied(replies: &mut Option<std::vec::IntoIter<Reply>>) -> bool {
    match replies.as_mut().and_then(Iterator::next) {
        Some(Reply::Integer(_)) => true,
        Some(other) => {
            eprintln!("im store: Redis refused a write: {other:?}");
            false
        }
        None => false,
    }
}

/// Applies the failed writes still `pending` (those the batch does not replace), then `batch`
/// (in order), with retries; answers its confirmations and flushes. What fails again, or for
/// the first time, stays in `pending`.
async fn apply(
    client: &RedisStore,
    batch: Vec<(u64, Op)>,
    failures: &mut Failures,
    pending: &mut Vec<Pending>,
) {
    // a newer write of the same field replaces a pending one (applied in order, it would be
    // overwritten anyway)
    pending.retain(|p| {
        !batch.iter().any(|(_, op)| match op {
            Op::Set { key, field, .. } | Op::Del { key, field } => {
                *key == p.key && *field == p.field
            }
            _ => false,
        })
    });
    let again = std::mem::take(pending);
    let mut cmds: Vec<Vec<&[u8]>> = again
        .iter()
        .map(|p| match &p.value {
            Some(v) => vec![&b"HSET"[..], &p.key, &p.field, v],
            None => vec![&b"HDEL"[..], &p.key, &p.field],
        })
        .collect();
    cmds.extend(batch.iter().filter_map(|(_, op)| match op {
        Op::Set { key, field, value } => Some(vec![&b"HSET"[..], key, field, value]),
        Op::Del { key, field } => Some(vec![&b"HDEL"[..], key, field]),
        _ => None,
    }));
    // HSET/HDEL are idempotent: a batch whose round trip failed half-way is sent again whole,
    // in the same order, which ends in the same state
    let mut replies = None;
    if !cmds.is_empty() {
        let mut wait = Duration::from_millis(100);
        for attempt in 1..=WRITE_ATTEMPTS {
            match client.pipeline(&cmds, COMMAND_TIMEOUT).await {
                Ok(r) => {
                    replies = Some(r);
                    break;
                }
                Err(e) if attempt == WRITE_ATTEMPTS => {
                    eprintln!(
                        "im store: {} Redis writes failed, kept to be applied again: {e}",
                        cmds.len()
                    );
                }
                Err(_) => {
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(Duration::from_millis(1600));
                }
            }
        }
    }
    drop(cmds);
    let mut replies = replies.map(Vec::into_iter);
    for p in again {
        if applied(&mut replies) {
            failures.clear(p.seq);
        } else {
            pending.push(p);
        }
    }
    for (seq, op) in batch {
        let (seq, key, field, value) = match op {
            Op::Set { key, field, value } => (seq, key, field, Some(value)),
            Op::Del { key, field } => (seq, key, field, None),
            Op::Flush(done) => {
                let _ = done.send(());
                continue;
            }
            Op::Confirm {
                since,
                fields,
                done,
            } => {
                let _ = done.send(failures.confirms(since, &fields));
                continue;
            }
        };
        if !applied(&mut replies) {
            failures.push(seq, &key, &field);
            pending.push(Pending {
                seq,
                key,
                field,
                value,
            });
        }
    }
    if pending.len() > PENDING_MAX {
        let n = pending.len() - PENDING_MAX;
        eprintln!("im store: {n} failed Redis writes dropped (more than {PENDING_MAX} kept)");
        pending.drain(..n);
    }
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
        let client = Arc::new(
            tokio::time::timeout(COMMAND_TIMEOUT, RedisStore::connect(addr, ""))
                .await
                .map_err(|_| io("no answer to PING"))?
                .map_err(io)?,
        );
        let (tx, mut rx) = mpsc::unbounded_channel::<(u64, Op)>();
        let c = client.clone();
        tokio::spawn(async move {
            let mut failures = Failures::default();
            let mut pending = Vec::new();
            loop {
                // with failed writes kept, look again every PENDING_RETRY even when idle
                let first = if pending.is_empty() {
                    rx.recv().await
                } else {
                    match tokio::time::timeout(PENDING_RETRY, rx.recv()).await {
                        Ok(op) => op,
                        Err(_) => {
                            apply(&c, Vec::new(), &mut failures, &mut pending).await;
                            continue;
                        }
                    }
                };
                let Some(first) = first else { break };
                let mut batch = vec![first];
                let mut writes = 1;
                while writes < MAX_BATCH {
                    match rx.try_recv() {
                        Ok(op) => {
                            writes += usize::from(matches!(op.1, Op::Set { .. } | Op::Del { .. }));
                            batch.push(op);
                        }
                        Err(_) => break,
                    }
                }
                apply(&c, batch, &mut failures, &mut pending).await;
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
        // two callers may queue in the other order than they were numbered: a confirmation
        // looks at every failed write numbered `since` or later, so a caller's own failed
        // write is never missed
        let seq = self.seq.fetch_add(1, Ordering::SeqCst);
        self.tx.send((seq, op)).is_ok()
    }

    /// The number the next write will get: pass it to [`RedisMirror::confirm`] after the writes.
    pub(crate) fn mark(&self) -> u64 {
        self.seq.load(Ordering::SeqCst)
    }

    /// Resolves once every write queued so far has been answered by Redis (or given up):
    /// `true` when none numbered `since` or later to one of `fields` (hash, field) failed.
    /// Never resolves `true` for a field written while Redis is unreachable.
    pub(crate) async fn confirm(&self, since: u64, fields: &[(&str, &str)]) -> bool {
        let (done, wait) = oneshot::channel();
        let fields = fields
            .iter()
            .map(|(h, f)| (self.key(h), f.as_bytes().to_vec()))
            .collect();
        self.send(Op::Confirm {
            since,
            fields,
            done,
        }) && wait.await.unwrap_or(false)
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

    /// Waits until every write queued before this call has been applied (or has failed: it is
    /// then kept and applied again later).
    pub(crate) async fn flush(&self) {
        let (done, wait) = oneshot::channel();
        if self.send(Op::Flush(done)) {
            let _ = wait.await;
        }
    }

    /// Every `(field, value)` of `PREFIX+hash`, sorted by field.
    pub(crate) async fn load(&self, hash: &str) -> std::io::Result<Vec<(String, Vec<u8>)>> {
        let key = self.key(hash);
        let reply = self
            .client
            .pipeline(&[vec![&b"HGETALL"[..], &key]], LOAD_TIMEOUT)
            .await
            .map_err(io)?
            .pop();
        let Some(Reply::Array(Some(items))) = reply else {
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
        self.mirror
            .set("sms", &sms_field(sms.id), sms.to_text().into_bytes());
        Ok(())
    }

    fn remove(&mut self, id: u64) -> std::io::Result<()> {
        self.mirror.del("sms", &sms_field(id));
        Ok(())
    }

    fn load_all(&mut self) -> std::io::Result<Vec<StoredSms>> {
        Ok(std::mem::take(&mut self.loaded))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
    use tokio::net::TcpListener;

    /// A scripted Redis on 127.0.0.1 (its address): answers every command `:1` (`+PONG` to
    /// PING), except a command naming a field that contains `refuse` (`-ERR`), and on the
    /// first connection that sends a field containing `hang` it answers nothing more (the
    /// connection stays open): a Redis that accepts but never answers. While
    /// [`Script::down`] is set it refuses every write; [`Script::log`] lists the writes it took.
    async fn scripted_redis() -> String {
        scripted().await.0
    }

    #[derive(Default)]
    struct Script {
        down: AtomicBool,
        log: std::sync::Mutex<Vec<String>>,
    }

    async fn scripted() -> (String, Arc<Script>) {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap().to_string();
        let hung = Arc::new(AtomicBool::new(false));
        let script = Arc::new(Script::default());
        let sc = script.clone();
        tokio::spawn(async move {
            while let Ok((c, _)) = l.accept().await {
                let hung = hung.clone();
                let script = sc.clone();
                tokio::spawn(async move {
                    let (r, mut w) = c.into_split();
                    let mut r = BufReader::new(r);
                    let mut silent = false;
                    loop {
                        let mut line = String::new();
                        if r.read_line(&mut line).await.unwrap_or(0) == 0 {
                            return;
                        }
                        let n: usize = line.trim_start_matches('*').trim().parse().unwrap();
                        let mut args = Vec::new();
                        for _ in 0..n {
                            let mut len = String::new();
                            r.read_line(&mut len).await.unwrap();
                            let len: usize = len.trim_start_matches('$').trim().parse().unwrap();
                            let mut a = vec![0; len + 2];
                            r.read_exact(&mut a).await.unwrap();
                            a.truncate(len);
                            args.push(String::from_utf8(a).unwrap());
                        }
                        if args.iter().any(|a| a.contains("hang"))
                            && !hung.swap(true, Ordering::SeqCst)
                        {
                            silent = true;
                        }
                        let reply: &[u8] = if args[0] == "PING" {
                            b"+PONG\r\n"
                        } else if args.iter().any(|a| a.contains("refuse"))
                            || script.down.load(Ordering::SeqCst)
                        {
                            b"-ERR refused by the script\r\n"
                        } else {
                            script.log.lock().unwrap().push(args.join(" "));
                            b":1\r\n"
                        };
                        if !silent {
                            w.write_all(reply).await.unwrap();
                        }
                    }
                });
            }
        });
        (addr, script)
    }

    #[tokio::test]
    async fn a_failed_write_refuses_only_the_messages_it_belongs_to() {
        let m = RedisMirror::connect(&scripted_redis().await, "t:")
            .await
            .unwrap();
        let since = m.mark();
        m.set("sms", "a", b"one".to_vec());
        m.set("sms", "refuse-b", b"two".to_vec());
        m.del("im", "c");
        assert!(
            m.confirm(since, &[("sms", "a")]).await,
            "a's write succeeded"
        );
        assert!(
            m.confirm(since, &[("im", "c")]).await,
            "c's removal succeeded"
        );
        assert!(
            !m.confirm(since, &[("sms", "refuse-b")]).await,
            "b's write was refused"
        );
        assert!(!m.confirm(since, &[("sms", "a"), ("sms", "refuse-b")]).await);
        // the same field name in the other hash is another record
        assert!(m.confirm(since, &[("im", "refuse-b")]).await);
        // a later write of b that succeeds is confirmed from its own mark
        let later = m.mark();
        m.del("sms", "b");
        assert!(m.confirm(later, &[("sms", "b")]).await);
    }

    #[tokio::test]
    async fn a_redis_that_stops_answering_loses_the_connection_not_the_writer() {
        let m = RedisMirror::connect(&scripted_redis().await, "t:")
            .await
            .unwrap();
        let since = m.mark();
        m.set("sms", "hang", b"swallowed".to_vec());
        m.set("sms", "d", b"after".to_vec());
        // the batch is sent again on a new connection after COMMAND_TIMEOUT
        let confirmed = tokio::time::timeout(
            COMMAND_TIMEOUT * 5,
            m.confirm(since, &[("sms", "hang"), ("sms", "d")]),
        )
        .await
        .expect("the writer gave up on the silent connection");
        assert!(confirmed);
        let later = m.mark();
        m.set("sms", "e", b"next".to_vec());
        assert!(m.confirm(later, &[("sms", "e")]).await);
    }

    #[tokio::test]
    async fn a_failed_write_is_kept_and_applied_once_redis_takes_it() {
        let (addr, script) = scripted().await;
        let m = RedisMirror::connect(&addr, "t:").await.unwrap();
        script.down.store(true, Ordering::SeqCst);
        let since = m.mark();
        m.del("sms", "gone");
        m.set("sms", "kept", b"v1".to_vec());
        assert!(!m.confirm(since, &[("sms", "gone")]).await, "refused");
        // a newer write of a field replaces its pending one
        m.set("sms", "kept", b"v2".to_vec());
        m.flush().await;
        assert!(script.log.lock().unwrap().is_empty());
        // Redis takes writes again: the pending ones go without any new write
        script.down.store(false, Ordering::SeqCst);
        let log = || script.log.lock().unwrap().clone();
        for _ in 0..50 {
            if log().len() >= 2 {
                break;
            }
            tokio::time::sleep(PENDING_RETRY / 5).await;
        }
        assert_eq!(log(), ["HDEL t:sms gone", "HSET t:sms kept v2"]);
        assert!(
            m.confirm(since, &[("sms", "gone")]).await,
            "applied after all"
        );
        // applied once: nothing pending any more
        tokio::time::sleep(PENDING_RETRY * 2).await;
        assert_eq!(log().len(), 2);
    }

    #[test]
    fn failures_forgotten_count_as_failed() {
        let mut f = Failures::default();
        for seq in 0..FAILURE_MEMORY as u64 + 1 {
            f.push(seq, b"k", format!("f{seq}").as_bytes());
        }
        let other = [(b"k".to_vec(), b"other".to_vec())];
        assert!(
            !f.confirms(0, &other),
            "failure 0 was forgotten: cannot tell"
        );
        assert!(f.confirms(1, &other));
        assert!(!f.confirms(5, &[(b"k".to_vec(), b"f9".to_vec())]));
    }

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
