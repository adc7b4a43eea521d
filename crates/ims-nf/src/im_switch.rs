//! The anchor's MSRP switch: connections shared between sessions (RFC 4975 §5.4, §7.3).
//!
//! Every connection — accepted from a party or opened by the anchor — has one reader that
//! demultiplexes what arrives by the session-id of the last To-Path URI (the anchor's own URI
//! on that leg). A session side is bound to the connection its first frame arrives on (or to
//! the connection the anchor opened for it); a request naming an unknown session, or a session
//! bound to another connection, is answered 481. Requests are forwarded on the other side's
//! connection with a new transaction id; responses go back on the connection the request
//! arrived on. The anchor reuses a connection it opened toward an authority (host:port of the
//! first URI of the party's path) for later sessions toward it, and closes a connection once no
//! session is bound to it any more (after the BYE linger).

use super::{random_id, Leg, Stats};
use bytes::{Bytes, BytesMut};
use ims_msrp::headers::{name as msrp_name, FailureReport};
use ims_msrp::{end_line, Event, FrameBuilder, Framer, Head, Limits, Method as MsrpMethod};
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

type Writer = Arc<tokio::sync::Mutex<OwnedWriteHalf>>;

/// One MSRP connection of the switch.
#[derive(Debug)]
pub(super) struct Conn {
    id: u64,
    w: Writer,
    /// The authority we connected to (`None`: accepted from a party).
    to: Option<SocketAddr>,
    /// Session sides bound to it (plus sessions about to bind to a connection we reuse).
    bound: AtomicUsize,
    closed: AtomicBool,
    reader: Mutex<Option<JoinHandle<()>>>,
}

/// One side of an anchored session as the switch sees it.
#[derive(Debug)]
pub(super) struct Side {
    /// Our session-id on this leg.
    sid: String,
    /// Our MSRP URI on this leg.
    uri: String,
    /// The party's path (To-Path toward it, space-separated); empty until known.
    path: Mutex<String>,
    /// The connection the side is bound to.
    conn: watch::Sender<Option<Arc<Conn>>>,
    /// Connections the side was unbound from (the party moved): never bound again.
    retired: Mutex<Vec<u64>>,
    /// The session is gone: nothing binds any more.
    dead: AtomicBool,
}

impl Side {
    fn new(sid: &str, uri: &str) -> Side {
        Side {
            sid: sid.to_owned(),
            uri: uri.to_owned(),
            path: Mutex::new(String::new()),
            conn: watch::Sender::new(None),
            retired: Mutex::new(Vec::new()),
            dead: AtomicBool::new(false),
        }
    }

    /// Sets the party's path.
    pub(super) fn set_path(&self, path: &[String]) {
        *self.path.lock().expect("path lock") = path.join(" ");
    }

    /// Our MSRP URI on this leg.
    pub(super) fn uri(&self) -> &str {
        &self.uri
    }

    fn path(&self) -> String {
        self.path.lock().expect("path lock").clone()
    }

    fn bound(&self) -> Option<Arc<Conn>> {
        self.conn.borrow().clone()
    }

    /// Binds the side to `c` unless it is bound already; true when it is bound to `c` now.
    /// `counted`: `c.bound` already counts this side (a reserved reused connection).
    fn bind(&self, c: &Arc<Conn>, counted: bool) -> bool {
        self.bind_fresh(c, counted).0
    }

    /// [`Side::bind`], also telling whether this call made the binding.
    fn bind_fresh(&self, c: &Arc<Conn>, counted: bool) -> (bool, bool) {
        if c.closed.load(Ordering::Acquire)
            || self.dead.load(Ordering::Acquire)
            || self.retired.lock().expect("retired lock").contains(&c.id)
        {
            return (false, false);
        }
        let mut fresh = false;
        self.conn.send_if_modified(|cur| match cur {
            None => {
                *cur = Some(c.clone());
                fresh = true;
                true
            }
            Some(_) => false,
        });
        if fresh && !counted {
            c.bound.fetch_add(1, Ordering::AcqRel);
        }
        (self.bound().is_some_and(|b| b.id == c.id), fresh)
    }
}

/// The two sides of one anchored session.
#[derive(Debug)]
pub(super) struct Route {
    a: Side,
    b: Side,
}

impl Route {
    /// A session with our session-ids and URIs on the A and B legs.
    pub(super) fn new(sid_a: &str, uri_a: &str, sid_b: &str, uri_b: &str) -> Route {
        Route {
            a: Side::new(sid_a, uri_a),
            b: Side::new(sid_b, uri_b),
        }
    }

    /// One side.
    pub(super) fn side(&self, leg: Leg) -> &Side {
        match leg {
            Leg::A => &self.a,
            Leg::B => &self.b,
        }
    }
}

fn other(leg: Leg) -> Leg {
    match leg {
        Leg::A => Leg::B,
        Leg::B => Leg::A,
    }
}

/// Requests forwarded, by the transaction id we gave them (bounded, oldest dropped first).
#[derive(Debug)]
pub(super) struct PendingMap<V> {
    pub(super) map: HashMap<String, V>,
    order: VecDeque<String>,
}

impl<V> Default for PendingMap<V> {
    fn default() -> Self {
        PendingMap {
            map: HashMap::new(),
            order: VecDeque::new(),
        }
    }
}

impl<V> PendingMap<V> {
    pub(super) const MAX: usize = 65536;
    pub(super) fn insert(&mut self, tid: String, v: V) {
        if self.map.len() >= Self::MAX {
            while let Some(old) = self.order.pop_front() {
                if self.map.remove(&old).is_some() {
                    break;
                }
            }
        }
        self.order.push_back(tid.clone());
        self.map.insert(tid, v);
        if self.order.len() > 2 * Self::MAX {
            let map = &self.map;
            self.order.retain(|t| map.contains_key(t));
        }
    }
    pub(super) fn take(&mut self, tid: &str) -> Option<V> {
        self.map.remove(tid)
    }
}

/// A request we forwarded: where its response goes.
#[derive(Debug)]
struct Fwd {
    /// The sender's transaction id.
    tid: String,
    /// The response's To-Path (the first From-Path URI of the request).
    to: String,
    /// The response's From-Path (our URI on the sender's leg).
    from: String,
    /// The connection the request arrived on.
    back: Arc<Conn>,
}

/// The switch: sessions by session-id, connections, forwarded transactions.
#[derive(Debug)]
pub(super) struct Switch {
    limits: Limits,
    stats: Arc<Stats>,
    /// How long a request waits for the other side's connection before it is answered 481.
    wait: Duration,
    routes: Mutex<HashMap<String, (Arc<Route>, Leg)>>,
    pending: Mutex<PendingMap<Fwd>>,
    /// Our bind SENDs waiting for their response.
    binds: Mutex<HashMap<String, oneshot::Sender<u16>>>,
    /// Connections we opened, by authority (reused for later sessions toward it).
    outgoing: tokio::sync::Mutex<HashMap<SocketAddr, Arc<Conn>>>,
    next_conn: AtomicU64,
}

/// The session named by a request or response: the session-id of the last To-Path URI.
pub(super) fn session_of(h: &Head) -> Option<String> {
    h.to_path()
        .ok()
        .and_then(|p| p.last().and_then(|u| u.session_id().map(str::to_owned)))
}

fn authority_of(uri: &str) -> Option<SocketAddr> {
    let u = ims_msrp::Uri::parse(uri).ok()?;
    let port = u.port_or_default();
    let host = u.host_str().trim_start_matches('[').trim_end_matches(']');
    let ip: std::net::IpAddr = host.parse().ok()?;
    Some(SocketAddr::new(ip, port))
}

/// A request head rewritten for the next leg: new transaction id, To-Path and From-Path;
/// every other header unchanged, Content-Type last.
pub(super) fn rewrite_request(h: &Head, tid: &str, to: &str, from: &str) -> Bytes {
    let method = h.method().map(|m| m.as_str()).unwrap_or("SEND");
    let mut b = FrameBuilder::request(tid, method)
        .to_path(to)
        .from_path(from);
    let mut ct = None;
    for (n, v) in h.headers() {
        if n.eq_ignore_ascii_case(msrp_name::TO_PATH)
            || n.eq_ignore_ascii_case(msrp_name::FROM_PATH)
        {
            continue;
        }
        if n.eq_ignore_ascii_case(msrp_name::CONTENT_TYPE) {
            ct = Some(v);
        } else {
            b = b.header(n, v);
        }
    }
    let head = b.head_bytes();
    if !h.has_content_stuff() {
        return head;
    }
    let mut v = BytesMut::with_capacity(head.len() + 64);
    v.extend_from_slice(&head);
    v.extend_from_slice(b"Content-Type: ");
    v.extend_from_slice(ct.unwrap_or("application/octet-stream").as_bytes());
    v.extend_from_slice(b"\r\n\r\n");
    v.freeze()
}

/// The status a request gets from the switch itself before any session lookup: 400 for a
/// malformed head, 501 for a method the switch does not forward (RFC 4975 §7.3, §10).
pub(super) fn precheck(h: &Head) -> Option<u16> {
    if h.fault().is_some() || h.to_path().is_err() || h.from_path().is_err() {
        return Some(400);
    }
    match h.method() {
        Some(MsrpMethod::Send | MsrpMethod::Report) => None,
        _ => Some(501),
    }
}

/// Whether a refused request gets a response (not a REPORT, not `Failure-Report: no`).
fn answerable(h: &Head) -> bool {
    h.method() != Some(MsrpMethod::Report)
        && h.failure_report().unwrap_or_default() != FailureReport::No
}

async fn write_response(w: &Writer, h: &Head, code: u16) {
    let (Ok(from), Ok(to)) = (h.from_path(), h.to_path()) else {
        return;
    };
    let (Some(f), Some(t)) = (from.first(), to.last()) else {
        return;
    };
    let bytes = FrameBuilder::response(h.transaction_id(), code, None)
        .to_path(f.as_str())
        .from_path(t.as_str())
        .to_bytes();
    let _ = w.lock().await.write_all(&bytes).await;
}

impl Switch {
    pub(super) fn new(limits: Limits, stats: Arc<Stats>) -> Switch {
        Switch {
            limits,
            stats,
            wait: Duration::from_secs(30),
            routes: Mutex::default(),
            pending: Mutex::default(),
            binds: Mutex::default(),
            outgoing: tokio::sync::Mutex::default(),
            next_conn: AtomicU64::new(1),
        }
    }

    /// Makes the session's two session-ids known.
    pub(super) fn add(&self, route: &Arc<Route>) {
        let mut r = self.routes.lock().expect("routes lock");
        r.insert(route.a.sid.clone(), (route.clone(), Leg::A));
        r.insert(route.b.sid.clone(), (route.clone(), Leg::B));
    }

    /// Forgets the session: its frames get 481 from now on.
    pub(super) fn remove(&self, route: &Route) {
        let mut r = self.routes.lock().expect("routes lock");
        r.remove(&route.a.sid);
        r.remove(&route.b.sid);
        route.a.dead.store(true, Ordering::Release);
        route.b.dead.store(true, Ordering::Release);
    }

    /// Unbinds both sides; a connection nobody uses any more is closed.
    pub(super) async fn release(&self, route: &Route) {
        for leg in [Leg::A, Leg::B] {
            let Some(c) = route.side(leg).conn.send_replace(None) else {
                continue;
            };
            let mut out = self.outgoing.lock().await;
            if c.bound.fetch_sub(1, Ordering::AcqRel) == 1 {
                self.close(&c, &mut out).await;
            }
        }
    }

    /// Unbinds one side (its party moved): its old connection is refused for it from now on;
    /// its next frame (or our connect) binds anew. Hand the returned connection to
    /// [`Switch::drop_ref`].
    pub(super) fn detach(&self, route: &Route, leg: Leg) -> Option<Arc<Conn>> {
        let side = route.side(leg);
        let c = side.conn.send_replace(None)?;
        side.retired.lock().expect("retired lock").push(c.id);
        Some(c)
    }

    /// One session less on `c`: closed when it was the last.
    pub(super) async fn drop_ref(&self, c: Arc<Conn>) {
        let mut out = self.outgoing.lock().await;
        if c.bound.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.close(&c, &mut out).await;
        }
    }

    async fn close(&self, c: &Arc<Conn>, out: &mut HashMap<SocketAddr, Arc<Conn>>) {
        if c.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        self.stats.connections.fetch_sub(1, Ordering::Relaxed);
        if let Some(to) = c.to {
            if out.get(&to).is_some_and(|o| o.id == c.id) {
                out.remove(&to);
            }
        }
        if let Some(t) = c.reader.lock().expect("reader lock").take() {
            t.abort();
        }
        // not under the caller's lock: a writer may be busy with a streamed chunk
        let w = c.w.clone();
        tokio::spawn(async move {
            let _ = w.lock().await.shutdown().await;
        });
    }

    fn conn(self: &Arc<Self>, s: TcpStream, to: Option<SocketAddr>) -> Arc<Conn> {
        let _ = s.set_nodelay(true);
        let (r, w) = s.into_split();
        let c = Arc::new(Conn {
            id: self.next_conn.fetch_add(1, Ordering::Relaxed),
            w: Arc::new(tokio::sync::Mutex::new(w)),
            to,
            bound: AtomicUsize::new(0),
            closed: AtomicBool::new(false),
            reader: Mutex::new(None),
        });
        self.stats.connections.fetch_add(1, Ordering::Relaxed);
        let t = tokio::spawn(self.clone().read(c.clone(), r));
        *c.reader.lock().expect("reader lock") = Some(t);
        c
    }

    /// A connection a party opened to us.
    pub(super) fn accepted(self: &Arc<Self>, s: TcpStream) {
        self.conn(s, None);
    }

    /// Connects the `leg` side to its party (we are the active end, RFC 4145): reuses a live
    /// connection we opened to the same authority, else opens one; then binds the session
    /// with an empty SEND (RFC 4975 §7.1), repeated while the party answers 481 (it may take
    /// the connection before it knows the session).
    pub(super) async fn connect_side(
        self: &Arc<Self>,
        route: &Route,
        leg: Leg,
    ) -> std::io::Result<()> {
        let side = route.side(leg);
        let path = side.path();
        let first = path.split(' ').next().unwrap_or("");
        let addr = authority_of(first).ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "the party's MSRP URI is not an IP address",
            )
        })?;
        let conn = {
            let mut out = self.outgoing.lock().await;
            let retired = side.retired.lock().expect("retired lock").clone();
            let live = out
                .get(&addr)
                .filter(|c| !c.closed.load(Ordering::Acquire) && !retired.contains(&c.id))
                .cloned();
            let c = match live {
                Some(c) => c,
                None => {
                    let s = tokio::time::timeout(Duration::from_secs(10), TcpStream::connect(addr))
                        .await
                        .map_err(|_| {
                            std::io::Error::new(std::io::ErrorKind::TimedOut, "connect")
                        })??;
                    let c = self.conn(s, Some(addr));
                    out.insert(addr, c.clone());
                    c
                }
            };
            // reserved: a release meanwhile does not close it under us
            c.bound.fetch_add(1, Ordering::AcqRel);
            c
        };
        let res = self.bind_send(&conn, side, &path).await;
        let (bound, fresh) = match res {
            Ok(()) => side.bind_fresh(&conn, true),
            Err(_) => (false, false),
        };
        if bound && !fresh {
            // the party's own first frame bound it already (and counted it): our reservation
            // goes
            conn.bound.fetch_sub(1, Ordering::AcqRel);
            return Ok(());
        }
        if !bound {
            let mut out = self.outgoing.lock().await;
            if conn.bound.fetch_sub(1, Ordering::AcqRel) == 1 {
                self.close(&conn, &mut out).await;
            }
            res?;
            return Err(std::io::Error::new(
                std::io::ErrorKind::AddrInUse,
                "the session is bound to another connection",
            ));
        }
        Ok(())
    }

    async fn bind_send(&self, conn: &Arc<Conn>, side: &Side, path: &str) -> std::io::Result<()> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        for _ in 0..50 {
            let tid = random_id(12);
            let (tx, rx) = oneshot::channel();
            self.binds
                .lock()
                .expect("binds lock")
                .insert(tid.clone(), tx);
            let bind = FrameBuilder::request(&tid, "SEND")
                .to_path(path)
                .from_path(&side.uri)
                .header(msrp_name::MESSAGE_ID, &random_id(10))
                .header(msrp_name::BYTE_RANGE, "1-0/0")
                .to_bytes();
            let wrote = conn.w.lock().await.write_all(&bind).await;
            if let Err(e) = wrote {
                self.binds.lock().expect("binds lock").remove(&tid);
                return Err(e);
            }
            match tokio::time::timeout_at(deadline, rx).await {
                Ok(Ok(481)) => tokio::time::sleep(Duration::from_millis(20)).await,
                Ok(Ok(_)) => break,
                Ok(Err(_)) | Err(_) => {
                    // no answer (the party may not answer a bodiless SEND): go on
                    self.binds.lock().expect("binds lock").remove(&tid);
                    break;
                }
            }
        }
        if conn.closed.load(Ordering::Acquire) {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the party closed the MSRP connection",
            ));
        }
        Ok(())
    }

    /// Reads one connection until it ends, demultiplexing by session.
    async fn read(self: Arc<Self>, conn: Arc<Conn>, mut r: OwnedReadHalf) {
        let mut framer = Framer::new(self.limits.clone());
        // a chunk being streamed: its new transaction id and the destination's writer
        let mut streaming: Option<(String, tokio::sync::OwnedMutexGuard<OwnedWriteHalf>)> = None;
        let mut dropping = false;
        loop {
            let ev = match framer.poll() {
                Ok(Some(ev)) => ev,
                Ok(None) => {
                    // an accepted connection that binds nothing for 30 s is dropped
                    let idle = conn.to.is_none() && conn.bound.load(Ordering::Acquire) == 0;
                    let limit = if idle {
                        Duration::from_secs(30)
                    } else {
                        Duration::from_secs(24 * 3600)
                    };
                    match tokio::time::timeout(limit, r.read_buf(framer.buffer_mut())).await {
                        Ok(Ok(n)) if n > 0 => continue,
                        _ => break,
                    }
                }
                Err(_) => break,
            };
            match ev {
                Event::Frame(f) => {
                    if !f.head.is_request() {
                        self.response(&f.head).await;
                        continue;
                    }
                    let Some((out, head, tid)) = self.request(&conn, &f.head).await else {
                        continue;
                    };
                    let tail = end_line(&tid, f.flag, f.head.has_content_stuff());
                    self.stats
                        .body_bytes
                        .fetch_add(f.body.len() as u64, Ordering::Relaxed);
                    let mut buf = BytesMut::with_capacity(head.len() + f.body.len() + tail.len());
                    buf.extend_from_slice(&head);
                    buf.extend_from_slice(&f.body);
                    buf.extend_from_slice(&tail);
                    let _ = out.w.lock().await.write_all(&buf).await;
                }
                Event::Start(h) => {
                    let routed = if h.is_request() {
                        self.request(&conn, &h).await
                    } else {
                        None
                    };
                    match routed {
                        Some((out, head, tid)) => {
                            let mut g = out.w.clone().lock_owned().await;
                            dropping = g.write_all(&head).await.is_err();
                            streaming = Some((tid, g));
                        }
                        None => dropping = true,
                    }
                }
                Event::Data(d) => {
                    if let Some((_, g)) = &mut streaming {
                        if !dropping {
                            self.stats
                                .body_bytes
                                .fetch_add(d.len() as u64, Ordering::Relaxed);
                            dropping = g.write_all(&d).await.is_err();
                        }
                    }
                }
                Event::End(flag) => {
                    if let Some((tid, mut g)) = streaming.take() {
                        if !dropping {
                            let _ = g.write_all(&end_line(&tid, flag, true)).await;
                        }
                    }
                    dropping = false;
                }
            }
        }
        drop(streaming);
        // the party closed (or broke) the connection: nothing more goes out on it
        if !conn.closed.swap(true, Ordering::AcqRel) {
            self.stats.connections.fetch_sub(1, Ordering::Relaxed);
            if let Some(to) = conn.to {
                let mut out = self.outgoing.lock().await;
                if out.get(&to).is_some_and(|o| o.id == conn.id) {
                    out.remove(&to);
                }
            }
            let _ = conn.w.lock().await.shutdown().await;
        }
        // the sessions bound to it end at the switch (their party left): the other leg's
        // connection closes too unless other sessions use it (RFC 4975 §5.4: a session is
        // bound to its connection; what the party sent before closing was forwarded above)
        let mut ended: Vec<Arc<Route>> = Vec::new();
        {
            let r = self.routes.lock().expect("routes lock");
            for (route, leg) in r.values() {
                let on_it = route.side(*leg).bound().is_some_and(|b| b.id == conn.id);
                if on_it && !ended.iter().any(|e| Arc::ptr_eq(e, route)) {
                    ended.push(route.clone());
                }
            }
        }
        for route in ended {
            self.remove(&route);
            self.release(&route).await;
        }
    }

    /// A response: to the sender of the request we forwarded, or to our own bind SEND.
    async fn response(&self, h: &Head) {
        let tid = h.transaction_id();
        let code = h.status().unwrap_or(500);
        let fwd = self.pending.lock().expect("pending lock").take(tid);
        let Some(fwd) = fwd else {
            if let Some(tx) = self.binds.lock().expect("binds lock").remove(tid) {
                let _ = tx.send(code);
            }
            return;
        };
        let bytes = FrameBuilder::response(&fwd.tid, code, h.comment())
            .to_path(&fwd.to)
            .from_path(&fwd.from)
            .to_bytes();
        self.stats.responses.fetch_add(1, Ordering::Relaxed);
        let _ = fwd.back.w.lock().await.write_all(&bytes).await;
    }

    /// Where a request arriving on `conn` goes: the destination connection, the rewritten
    /// head and the new transaction id. `None`: refused (answered here when answerable).
    async fn request(&self, conn: &Arc<Conn>, h: &Head) -> Option<(Arc<Conn>, Bytes, String)> {
        let code = match precheck(h) {
            Some(c) => Err(c),
            None => {
                let found = session_of(h)
                    .and_then(|sid| self.routes.lock().expect("routes lock").get(&sid).cloned());
                match found {
                    // the session is bound to this connection (or now binds to it)
                    Some((route, leg)) if route.side(leg).bind(conn, false) => Ok((route, leg)),
                    _ => Err(481),
                }
            }
        };
        let (route, leg) = match code {
            Ok(x) => x,
            Err(c) => {
                if answerable(h) {
                    write_response(&conn.w, h, c).await;
                }
                return None;
            }
        };
        let src = route.side(leg);
        let dest = route.side(other(leg));
        // the other party may not be connected yet (it connects once answered)
        let mut rx = dest.conn.subscribe();
        let out = tokio::time::timeout(self.wait, rx.wait_for(|c| c.is_some()))
            .await
            .ok()
            .and_then(|r| r.ok().and_then(|c| c.clone()))
            .filter(|c| !c.closed.load(Ordering::Acquire));
        let Some(out) = out else {
            if answerable(h) {
                write_response(&conn.w, h, 481).await;
            }
            return None;
        };
        let tid = random_id(12);
        if answerable(h) {
            let to = h
                .from_path()
                .ok()
                .and_then(|p| p.first().map(|u| u.as_str().to_owned()))
                .unwrap_or_default();
            self.pending.lock().expect("pending lock").insert(
                tid.clone(),
                Fwd {
                    tid: h.transaction_id().to_owned(),
                    to,
                    from: src.uri.clone(),
                    back: conn.clone(),
                },
            );
        }
        self.stats.requests.fetch_add(1, Ordering::Relaxed);
        let head = rewrite_request(h, &tid, &dest.path(), &dest.uri);
        Some((out, head, tid))
    }
}
