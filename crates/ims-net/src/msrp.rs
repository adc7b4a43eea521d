//! MSRP connections over TCP (RFC 4975 §6, §8.5) on tokio: one task per connection feeds a
//! [`Framer`] and the sans-IO [`Session`]s that share the connection, and writes what they
//! produce.
//!
//! # Several sessions on one connection (RFC 4975 §8.5)
//! Every request and response names its destination in the last URI of its To-Path; the
//! session-id of that URI selects the session ([`ConnEvent::Session`] carries it). Sessions are
//! added and removed while the connection runs ([`MsrpConnection::add_session`],
//! [`MsrpConnection::remove_session`]). What the sessions send is interleaved frame by frame;
//! a session whose chunk is written piece by piece (`Config::piece_size`) owns the connection
//! until that chunk's end-line, and is told to end the chunk early (`+`,
//! [`Session::interrupt`]) as soon as another session has something to send.
//!
//! # A session that is not there yet
//! A session added right after the connection starts can lose the race with the peer's first
//! frame. [`MsrpConnection::spawn_with_sessions`] / [`MsrpConnection::connect_with_sessions`]
//! register sessions before the first byte is read. Besides, a request for an unknown
//! session-id is held for [`ConnConfig::unknown_session_grace`] (at most
//! [`ConnConfig::unknown_session_buffer`] bytes over all such frames): if its session is added
//! in time it gets the frames in order, otherwise each held request is answered 481 and
//! reported as [`ConnEvent::UnknownSession`].
//!
//! # Back-pressure and buffering (never a deadlock on events)
//! - Outgoing: body bytes queued in sessions plus bytes handed to the writer are bounded by
//!   [`ConnConfig::high_water`] (a soft bound: a command in flight may add one message).
//!   [`MsrpConnection::send`] and [`MsrpConnection::push_body`] wait for room below it — room
//!   that only the peer's reading makes; [`MsrpConnection::try_send`] and
//!   [`MsrpConnection::try_push_body`] return [`TrySendError::Full`] instead of waiting.
//! - Incoming: at most [`ConnConfig::event_capacity`] events wait for the application
//!   ([`MsrpConnection::next_event`]), plus those of the last read. While they do, the connection
//!   stops reading the socket (TCP back-pressure toward the peer) but keeps taking commands and
//!   writing: an application that sends without reading events never blocks on its own events.
//!   (If it never reads them, the responses to what it sends are not read either: its
//!   transactions then end in `SendFailed` 408 after 30 s.)
//! - Reading never waits on writing, so two peers sending to each other cannot deadlock.
//!
//! TLS (`msrps:`, RFC 4975 §14.1; feature `tls`): `MsrpConnection::connect_tls` and
//! `MsrpConnection::accept_tls` run the handshake with an `ims_net::tls::TlsConfig` whose
//! `Trust::Fingerprints` holds the peer's SDP `a=fingerprint` (self-signed certificates, as
//! RFC 4975 §14.1 expects) or a CA; the peer's certificate fingerprint is kept
//! (`MsrpConnection::peer_fingerprint`).

use bytes::Bytes;
use ims_msrp::session::{Outgoing, Session, SessionEvent, Transmit};
use ims_msrp::{Event, FrameBuilder, Framer, Head, Limits, Method};
use std::collections::{HashMap, VecDeque};
use std::io;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot, Notify};

/// Connection settings.
#[derive(Debug, Clone)]
pub struct ConnConfig {
    /// Framer limits for what we receive.
    pub limits: Limits,
    /// Most body bytes queued in sessions plus bytes handed to the writer before `send` and
    /// `push_body` wait (and `try_send` / `try_push_body` fail with [`TrySendError::Full`]).
    pub high_water: usize,
    /// Events kept for the application; when it lags this far behind, the connection stops
    /// reading the socket until it catches up (it never stops taking commands).
    pub event_capacity: usize,
    /// How long a request for a session-id that is not (yet) on the connection is held for
    /// that session before it is answered 481. `Duration::ZERO`: answered at once.
    pub unknown_session_grace: Duration,
    /// Most bytes (heads and bodies) held for unknown sessions; beyond, the frames of the
    /// session that overflows are answered 481 at once.
    pub unknown_session_buffer: usize,
}

impl Default for ConnConfig {
    fn default() -> ConnConfig {
        ConnConfig {
            limits: Limits::default(),
            high_water: 1024 * 1024,
            event_capacity: 256,
            unknown_session_grace: Duration::from_millis(500),
            unknown_session_buffer: 256 * 1024,
        }
    }
}

/// What the connection reports.
#[derive(Debug)]
#[non_exhaustive]
pub enum ConnEvent {
    /// An event of one session (keyed by its local session-id).
    Session {
        /// The session-id of our URI.
        session_id: String,
        /// The event.
        event: SessionEvent,
    },
    /// A request for a session-id we do not have was answered with 481 (a REPORT: dropped).
    UnknownSession {
        /// The session-id it named.
        session_id: String,
    },
    /// The connection ended: `None` on a clean close, else why.
    Closed(Option<String>),
}

/// The connection task is gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("MSRP connection closed")]
pub struct Closed;

/// Why [`MsrpConnection::try_send`] or [`MsrpConnection::try_push_body`] did not queue.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TrySendError<T> {
    /// [`ConnConfig::high_water`] bytes are waiting for the peer: here is the value back.
    #[error("MSRP connection full ({} bytes waiting)", .1)]
    Full(T, usize),
    /// The connection task is gone.
    #[error("MSRP connection closed")]
    Closed,
}

enum Cmd {
    Add(Box<Session>),
    Remove(String, oneshot::Sender<()>),
    Send(String, Outgoing, oneshot::Sender<Option<String>>),
    Push(String, String, Bytes),
    Finish(String, String),
    Abort(String, String),
    Close,
}

impl std::fmt::Debug for Cmd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Cmd")
    }
}

/// State shared between the handle and the task.
#[derive(Debug)]
struct Shared {
    /// Body bytes queued in sessions + bytes handed to the writer.
    used: AtomicUsize,
    high_water: usize,
    /// Signalled when `used` drops below `high_water` and when the task ends.
    room: Notify,
    closed: AtomicBool,
}

/// A handle on one MSRP connection and its task.
#[derive(Debug)]
pub struct MsrpConnection {
    cmd: mpsc::Sender<Cmd>,
    events: mpsc::Receiver<ConnEvent>,
    shared: Arc<Shared>,
    #[cfg(feature = "tls")]
    peer_fingerprint: Option<crate::tls::Fingerprint>,
}

fn session_key(s: &Session) -> String {
    s.config()
        .local_uri
        .uri()
        .session_id()
        .unwrap_or("")
        .to_owned()
}

impl MsrpConnection {
    /// Starts the connection task on `stream` (already connected or accepted).
    pub fn spawn(stream: TcpStream, cfg: ConnConfig) -> MsrpConnection {
        Self::spawn_with_sessions(stream, cfg, Vec::new())
    }

    /// Starts the connection task with these sessions already registered, so that the peer's
    /// first frame finds its session (no race with [`MsrpConnection::add_session`]).
    pub fn spawn_with_sessions(
        stream: TcpStream,
        cfg: ConnConfig,
        sessions: Vec<Session>,
    ) -> MsrpConnection {
        let (rd, wr) = stream.into_split();
        Self::spawn_halves(rd, wr, cfg, sessions)
    }

    fn spawn_halves<R, W>(rd: R, wr: W, cfg: ConnConfig, sessions: Vec<Session>) -> MsrpConnection
    where
        R: AsyncRead + Unpin + Send + 'static,
        W: AsyncWrite + Unpin + Send + 'static,
    {
        let (cmd_tx, cmd_rx) = mpsc::channel(8);
        let (ev_tx, ev_rx) = mpsc::channel(cfg.event_capacity.max(1));
        let shared = Arc::new(Shared {
            used: AtomicUsize::new(0),
            high_water: cfg.high_water,
            room: Notify::new(),
            closed: AtomicBool::new(false),
        });
        let sessions = sessions.into_iter().map(|s| (session_key(&s), s)).collect();
        tokio::spawn(run(rd, wr, cfg, cmd_rx, ev_tx, shared.clone(), sessions));
        MsrpConnection {
            cmd: cmd_tx,
            events: ev_rx,
            shared,
            #[cfg(feature = "tls")]
            peer_fingerprint: None,
        }
    }

    /// Starts the connection task on a TLS stream (`msrps:`; feature `tls`).
    #[cfg(feature = "tls")]
    pub fn spawn_tls(stream: crate::tls::TlsStream<TcpStream>, cfg: ConnConfig) -> MsrpConnection {
        let fp = crate::tls::peer_fingerprint(&stream);
        let (rd, wr) = tokio::io::split(stream);
        let mut c = Self::spawn_halves(rd, wr, cfg, Vec::new());
        c.peer_fingerprint = fp;
        c
    }

    /// Connects to `addr` and runs the TLS client handshake (RFC 4975 §14.1: the active
    /// endpoint is the TLS client). With [`crate::tls::Trust::Fingerprints`] the server's
    /// certificate must have the fingerprint of its SDP `a=fingerprint`; with a CA it must
    /// name `name` (or the address). Feature `tls`.
    #[cfg(feature = "tls")]
    pub async fn connect_tls(
        addr: impl tokio::net::ToSocketAddrs,
        cfg: ConnConfig,
        tls: &crate::tls::TlsConfig,
        name: Option<&str>,
    ) -> io::Result<MsrpConnection> {
        let s = TcpStream::connect(addr).await?;
        s.set_nodelay(true)?;
        let s = tls.connect(s, name).await?;
        Ok(MsrpConnection::spawn_tls(s, cfg))
    }

    /// Runs the TLS server handshake on an accepted connection (the passive endpoint; with
    /// [`crate::tls::ClientAuth::Required`] the client's certificate is checked too). Feature
    /// `tls`.
    #[cfg(feature = "tls")]
    pub async fn accept_tls(
        stream: TcpStream,
        cfg: ConnConfig,
        tls: &crate::tls::TlsConfig,
    ) -> io::Result<MsrpConnection> {
        stream.set_nodelay(true)?;
        let s = tls.accept(stream).await?;
        Ok(MsrpConnection::spawn_tls(s, cfg))
    }

    /// The SHA-256 fingerprint of the certificate the peer presented (TLS connections only):
    /// compare it with the SDP `a=fingerprint` when trusting a CA. Feature `tls`.
    #[cfg(feature = "tls")]
    pub fn peer_fingerprint(&self) -> Option<crate::tls::Fingerprint> {
        self.peer_fingerprint
    }

    /// Connects to `addr` and starts the task.
    pub async fn connect(
        addr: impl tokio::net::ToSocketAddrs,
        cfg: ConnConfig,
    ) -> io::Result<MsrpConnection> {
        Self::connect_with_sessions(addr, cfg, Vec::new()).await
    }

    /// Connects to `addr` and starts the task with these sessions already registered.
    pub async fn connect_with_sessions(
        addr: impl tokio::net::ToSocketAddrs,
        cfg: ConnConfig,
        sessions: Vec<Session>,
    ) -> io::Result<MsrpConnection> {
        let s = TcpStream::connect(addr).await?;
        s.set_nodelay(true)?;
        Ok(MsrpConnection::spawn_with_sessions(s, cfg, sessions))
    }

    /// Adds a session; requests whose To-Path ends in its URI go to it (also those held while
    /// it was unknown, [`ConnConfig::unknown_session_grace`]).
    pub async fn add_session(&self, s: Session) -> Result<(), Closed> {
        self.cmd
            .send(Cmd::Add(Box::new(s)))
            .await
            .map_err(|_| Closed)
    }

    /// Removes a session (its chunk being written, if any, ends with `+`; what it had not sent
    /// yet is dropped); the connection stays for the others (RFC 4975 §8.5). Requests for it
    /// get 481 afterwards: it returns once the connection has let the session go, so a request
    /// the peer sends after that can no longer reach it.
    pub async fn remove_session(&self, session_id: &str) -> Result<(), Closed> {
        let (tx, rx) = oneshot::channel();
        self.cmd
            .send(Cmd::Remove(session_id.into(), tx))
            .await
            .map_err(|_| Closed)?;
        rx.await.map_err(|_| Closed)
    }

    /// Waits until fewer than [`ConnConfig::high_water`] bytes wait for the peer.
    async fn room(&self) -> Result<(), Closed> {
        loop {
            let n = self.shared.room.notified();
            tokio::pin!(n);
            n.as_mut().enable();
            if self.shared.closed.load(Ordering::Acquire) || self.cmd.is_closed() {
                return Err(Closed);
            }
            if self.shared.used.load(Ordering::Acquire) < self.shared.high_water {
                return Ok(());
            }
            n.await;
        }
    }

    /// Body bytes queued in the sessions or handed to the writer and not yet written.
    pub fn queued_bytes(&self) -> usize {
        self.shared.used.load(Ordering::Acquire)
    }

    /// Queues a message on a session; returns its Message-ID (`None`: no such session). Waits
    /// only while [`ConnConfig::high_water`] bytes wait for the peer — never for the
    /// application to read events.
    pub async fn send(&self, session_id: &str, m: Outgoing) -> Result<Option<String>, Closed> {
        self.room().await?;
        let (tx, rx) = oneshot::channel();
        self.cmd
            .send(Cmd::Send(session_id.into(), m, tx))
            .await
            .map_err(|_| Closed)?;
        rx.await.map_err(|_| Closed)
    }

    /// Like [`MsrpConnection::send`] but never waits for room: [`TrySendError::Full`] gives
    /// the message back when [`ConnConfig::high_water`] bytes wait for the peer (or the
    /// command queue is full). It waits only for the connection task to hand out the
    /// Message-ID.
    pub async fn try_send(
        &self,
        session_id: &str,
        m: Outgoing,
    ) -> Result<Option<String>, TrySendError<Outgoing>> {
        if self.shared.closed.load(Ordering::Acquire) {
            return Err(TrySendError::Closed);
        }
        let used = self.shared.used.load(Ordering::Acquire);
        if used >= self.shared.high_water {
            return Err(TrySendError::Full(m, used));
        }
        let (tx, rx) = oneshot::channel();
        match self.cmd.try_send(Cmd::Send(session_id.into(), m, tx)) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(Cmd::Send(_, m, _))) => {
                return Err(TrySendError::Full(m, used))
            }
            Err(_) => return Err(TrySendError::Closed),
        }
        rx.await.map_err(|_| TrySendError::Closed)
    }

    /// Appends body bytes to a streamed message (waits while [`ConnConfig::high_water`]
    /// bytes wait for the peer).
    pub async fn push_body(
        &self,
        session_id: &str,
        message_id: &str,
        data: Bytes,
    ) -> Result<(), Closed> {
        self.room().await?;
        self.cmd
            .send(Cmd::Push(session_id.into(), message_id.into(), data))
            .await
            .map_err(|_| Closed)
    }

    /// Like [`MsrpConnection::push_body`] but never waits: [`TrySendError::Full`] gives the
    /// bytes back.
    pub fn try_push_body(
        &self,
        session_id: &str,
        message_id: &str,
        data: Bytes,
    ) -> Result<(), TrySendError<Bytes>> {
        if self.shared.closed.load(Ordering::Acquire) {
            return Err(TrySendError::Closed);
        }
        let used = self.shared.used.load(Ordering::Acquire);
        if used >= self.shared.high_water {
            return Err(TrySendError::Full(data, used));
        }
        match self
            .cmd
            .try_send(Cmd::Push(session_id.into(), message_id.into(), data))
        {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Full(Cmd::Push(_, _, d))) => {
                Err(TrySendError::Full(d, used))
            }
            Err(_) => Err(TrySendError::Closed),
        }
    }

    /// Ends a streamed message's body.
    pub async fn finish(&self, session_id: &str, message_id: &str) -> Result<(), Closed> {
        self.cmd
            .send(Cmd::Finish(session_id.into(), message_id.into()))
            .await
            .map_err(|_| Closed)
    }

    /// Aborts a message (`#`; in the middle of a chunk written piece by piece, right after
    /// the bytes already written).
    pub async fn abort(&self, session_id: &str, message_id: &str) -> Result<(), Closed> {
        self.cmd
            .send(Cmd::Abort(session_id.into(), message_id.into()))
            .await
            .map_err(|_| Closed)
    }

    /// The next event; `None` once the task has ended and every event was taken.
    pub async fn next_event(&mut self) -> Option<ConnEvent> {
        self.events.recv().await
    }

    /// Closes the connection after what is queued has been written (a chunk being written
    /// piece by piece and waiting for body bytes ends with `+`).
    pub async fn close(&self) {
        let _ = self.cmd.send(Cmd::Close).await;
    }
}

/// Bytes handed to the writer and not yet written.
struct InFlight {
    bytes: AtomicUsize,
    drained: Notify,
}

async fn writer<W: AsyncWrite + Unpin>(
    mut w: W,
    mut rx: mpsc::UnboundedReceiver<Transmit>,
    fl: Arc<InFlight>,
) -> io::Result<()> {
    while let Some(t) = rx.recv().await {
        for p in t.parts() {
            if !p.is_empty() {
                w.write_all(p).await?;
            }
        }
        // TLS buffers records: push each frame out (a no-op on TCP)
        if rx.is_empty() {
            w.flush().await?;
        }
        fl.bytes.fetch_sub(t.len(), Ordering::AcqRel);
        fl.drained.notify_one();
    }
    w.shutdown().await
}

fn head_session_id(h: &Head) -> Option<String> {
    h.to_path()
        .ok()
        .and_then(|p| p.last().and_then(|u| u.session_id().map(str::to_owned)))
}

async fn run<R, W>(
    rd: R,
    wr: W,
    cfg: ConnConfig,
    mut cmds: mpsc::Receiver<Cmd>,
    events: mpsc::Sender<ConnEvent>,
    shared: Arc<Shared>,
    sessions: HashMap<String, Session>,
) where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let mut task = Task {
        cfg,
        sessions,
        held: HashMap::new(),
        held_bytes: 0,
        route: Route::Drop,
        writing: None,
        backlog: VecDeque::new(),
        fl: Arc::new(InFlight {
            bytes: AtomicUsize::new(0),
            drained: Notify::new(),
        }),
        wtx: None,
        shared: shared.clone(),
    };
    let r = task.run(rd, wr, &mut cmds, &events).await;
    shared.closed.store(true, Ordering::Release);
    shared.room.notify_waiters();
    drop(cmds);
    // whatever the application has not taken yet, then the end
    for e in task.backlog.drain(..) {
        if events.send(e).await.is_err() {
            return;
        }
    }
    let _ = events
        .send(ConnEvent::Closed(r.err().map(|e| e.to_string())))
        .await;
}

/// Where the events of the frame being received go.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Route {
    Session(String),
    Held(String),
    Drop,
}

/// Frames for a session-id not on the connection (yet).
struct Held {
    since: tokio::time::Instant,
    events: Vec<Event>,
    bytes: usize,
}

struct Task {
    cfg: ConnConfig,
    sessions: HashMap<String, Session>,
    held: HashMap<String, Held>,
    held_bytes: usize,
    route: Route,
    /// The session in the middle of a chunk: it owns the wire until its end-line.
    writing: Option<String>,
    /// Events the channel had no room for (reading pauses while there are any).
    backlog: VecDeque<ConnEvent>,
    fl: Arc<InFlight>,
    wtx: Option<mpsc::UnboundedSender<Transmit>>,
    shared: Arc<Shared>,
}

fn event_size(ev: &Event) -> usize {
    match ev {
        Event::Frame(f) => f.head.as_bytes().len() + f.body.len(),
        Event::Start(h) => h.as_bytes().len(),
        Event::Data(d) => d.len(),
        Event::End(_) => 0,
    }
}

/// Gives a frame (or a piece of one) to the writer task.
fn hand(
    fl: &InFlight,
    wtx: &Option<mpsc::UnboundedSender<Transmit>>,
    t: Transmit,
) -> io::Result<()> {
    fl.bytes.fetch_add(t.len(), Ordering::AcqRel);
    match wtx {
        Some(w) if w.send(t).is_ok() => Ok(()),
        _ => Err(io::Error::new(io::ErrorKind::BrokenPipe, "writer ended")),
    }
}

impl Task {
    fn push(&self, t: Transmit) -> io::Result<()> {
        hand(&self.fl, &self.wtx, t)
    }

    /// Hands what the sessions have to the writer, frame by frame, while under the high-water
    /// mark; a session in the middle of a chunk goes on alone until its end-line.
    fn write_out(&mut self, now: std::time::Instant) -> io::Result<()> {
        let hw = self.cfg.high_water;
        let (fl, wtx) = (&self.fl, &self.wtx);
        let under = || fl.bytes.load(Ordering::Acquire) < hw;
        let mut last = None;
        if let Some(k) = self.writing.clone() {
            let others = self
                .sessions
                .iter()
                .any(|(k2, s)| *k2 != k && s.has_transmit());
            if let Some(s) = self.sessions.get_mut(&k) {
                if others {
                    // let the others through: the chunk ends after what was written
                    s.interrupt();
                }
                while s.mid_chunk() && under() {
                    let Some(t) = s.poll_transmit(now) else { break };
                    hand(fl, wtx, t)?;
                }
                if s.mid_chunk() {
                    return Ok(());
                }
            }
            self.writing = None;
            last = Some(k);
        }
        // the session that just had the wire goes last
        let mut order: Vec<(&String, &mut Session)> = self.sessions.iter_mut().collect();
        if let Some(l) = &last {
            if let Some(i) = order.iter().position(|(k, _)| *k == l) {
                let e = order.remove(i);
                order.push(e);
            }
        }
        for (k, s) in order {
            while under() {
                let Some(t) = s.poll_transmit(now) else { break };
                hand(fl, wtx, t)?;
                if s.mid_chunk() {
                    self.writing = Some(k.clone());
                    return Ok(());
                }
            }
        }
        Ok(())
    }

    fn collect_events(&mut self) {
        for s in self.sessions.values_mut() {
            while let Some(e) = s.poll_event() {
                self.backlog.push_back(ConnEvent::Session {
                    session_id: session_key(s),
                    event: e,
                });
            }
        }
    }

    /// 481 to a request for a session we do not have (RFC 4975 §7.3, §8.5); REPORTs are
    /// never answered.
    fn reject(&mut self, h: &Head, sid: String) -> io::Result<()> {
        if h.is_request() && h.method() != Some(Method::Report) {
            if let (Ok(from), Ok(to)) = (h.from_path(), h.to_path()) {
                let b = FrameBuilder::response(h.transaction_id(), 481, None)
                    .to_path(from[0].as_str())
                    .from_path(to.last().map(|u| u.as_str()).unwrap_or(""));
                self.push(Transmit {
                    head: b.head_bytes(),
                    body: Bytes::new(),
                    tail: b.tail_bytes(),
                })?;
            }
        }
        self.backlog
            .push_back(ConnEvent::UnknownSession { session_id: sid });
        Ok(())
    }

    /// Answers every frame held for `sid` with 481.
    fn reject_held(&mut self, sid: &str) -> io::Result<()> {
        let Some(h) = self.held.remove(sid) else {
            return Ok(());
        };
        self.held_bytes -= h.bytes;
        if self.route == Route::Held(sid.to_owned()) {
            self.route = Route::Drop;
        }
        for ev in h.events {
            match ev {
                Event::Frame(f) => self.reject(&f.head, sid.to_owned())?,
                Event::Start(head) => self.reject(&head, sid.to_owned())?,
                _ => {}
            }
        }
        Ok(())
    }

    fn on_event(&mut self, now: std::time::Instant, ev: Event) -> io::Result<()> {
        let head = match &ev {
            Event::Frame(f) => Some(&f.head),
            Event::Start(h) => Some(h),
            _ => None,
        };
        if let Some(h) = head {
            let sid = head_session_id(h).unwrap_or_default();
            if self.sessions.contains_key(&sid) {
                self.route = Route::Session(sid);
            } else if self.held.contains_key(&sid)
                || (!self.cfg.unknown_session_grace.is_zero()
                    && self.held_bytes + event_size(&ev) <= self.cfg.unknown_session_buffer)
            {
                self.held.entry(sid.clone()).or_insert_with(|| Held {
                    since: tokio::time::Instant::now(),
                    events: Vec::new(),
                    bytes: 0,
                });
                self.route = Route::Held(sid);
            } else {
                let h = h.clone();
                self.route = Route::Drop;
                self.reject(&h, sid)?;
            }
        }
        let ends = matches!(ev, Event::Frame(_) | Event::End(_));
        match self.route.clone() {
            Route::Session(k) => {
                if let Some(s) = self.sessions.get_mut(&k) {
                    s.handle_event(now, ev);
                    // deliver as we go so that a large message never piles up here
                    while let Some(e) = s.poll_event() {
                        self.backlog.push_back(ConnEvent::Session {
                            session_id: k.clone(),
                            event: e,
                        });
                    }
                }
            }
            Route::Held(k) => {
                let n = event_size(&ev);
                let h = self.held.get_mut(&k).expect("routed to a held entry");
                h.events.push(ev);
                h.bytes += n;
                self.held_bytes += n;
                if self.held_bytes > self.cfg.unknown_session_buffer {
                    self.reject_held(&k)?;
                }
            }
            Route::Drop => {}
        }
        if ends {
            self.route = Route::Drop;
        }
        Ok(())
    }

    fn add(&mut self, now: std::time::Instant, mut s: Session) {
        let k = session_key(&s);
        if let Some(h) = self.held.remove(&k) {
            self.held_bytes -= h.bytes;
            for ev in h.events {
                s.handle_event(now, ev);
            }
            if self.route == Route::Held(k.clone()) {
                self.route = Route::Session(k.clone());
            }
        }
        self.sessions.insert(k, s);
    }

    fn remove(&mut self, now: std::time::Instant, k: &str) -> io::Result<()> {
        let Some(mut s) = self.sessions.remove(k) else {
            return Ok(());
        };
        if s.mid_chunk() {
            s.interrupt();
            while s.mid_chunk() {
                let Some(t) = s.poll_transmit(now) else { break };
                self.push(t)?;
            }
        }
        while let Some(e) = s.poll_event() {
            self.backlog.push_back(ConnEvent::Session {
                session_id: k.to_owned(),
                event: e,
            });
        }
        if self.writing.as_deref() == Some(k) {
            self.writing = None;
        }
        if self.route == Route::Session(k.to_owned()) {
            self.route = Route::Drop;
        }
        Ok(())
    }

    /// Moves backlog events into the channel while it has room. False: the application is
    /// gone.
    fn flush_events(&mut self, events: &mpsc::Sender<ConnEvent>) -> bool {
        while let Some(e) = self.backlog.pop_front() {
            match events.try_send(e) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(e)) => {
                    self.backlog.push_front(e);
                    return true;
                }
                Err(mpsc::error::TrySendError::Closed(_)) => return false,
            }
        }
        true
    }

    async fn run<R, W>(
        &mut self,
        mut rd: R,
        wr: W,
        cmds: &mut mpsc::Receiver<Cmd>,
        events: &mpsc::Sender<ConnEvent>,
    ) -> io::Result<()>
    where
        R: AsyncRead + Unpin + Send + 'static,
        W: AsyncWrite + Unpin + Send + 'static,
    {
        let (wtx, wrx) = mpsc::unbounded_channel();
        self.wtx = Some(wtx);
        let wtask = tokio::spawn(writer(wr, wrx, self.fl.clone()));
        let mut framer = Framer::new(self.cfg.limits.clone());
        let mut closing = false;
        let mut read_open = true;
        loop {
            let now = tokio::time::Instant::now().into_std();
            if closing {
                // a chunk waiting for body bytes will not get them: end it
                for s in self.sessions.values_mut() {
                    if s.mid_chunk() {
                        s.interrupt();
                    }
                }
            }
            self.write_out(now)?;
            self.collect_events();
            if !self.flush_events(events) {
                return Ok(());
            }
            let used = self
                .sessions
                .values()
                .map(Session::queued_bytes)
                .sum::<usize>()
                + self.fl.bytes.load(Ordering::Acquire);
            self.shared.used.store(used, Ordering::Release);
            if used < self.cfg.high_water {
                self.shared.room.notify_waiters();
            }
            let idle = self
                .sessions
                .values()
                .all(|s| s.queued_bytes() == 0 && !s.mid_chunk());
            if closing && idle {
                self.wtx = None;
                return wtask.await.unwrap_or(Ok(()));
            }
            if !read_open && idle && self.sessions.values().all(|s| s.outstanding() == 0) {
                self.wtx = None;
                let _ = wtask.await;
                return Ok(());
            }
            let grace = self.cfg.unknown_session_grace;
            let timeout = self
                .sessions
                .values()
                .filter_map(Session::poll_timeout)
                .map(tokio::time::Instant::from_std)
                .chain(self.held.values().map(|h| h.since + grace))
                .min();
            let sleep = async {
                match timeout {
                    Some(t) => tokio::time::sleep_until(t).await,
                    None => std::future::pending().await,
                }
            };
            let can_read = read_open && self.backlog.is_empty();
            tokio::select! {
                n = rd.read_buf(framer.buffer_mut()), if can_read => {
                    let n = n?;
                    if n == 0 {
                        read_open = false;
                        if !framer.is_idle() {
                            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "connection closed inside a frame"));
                        }
                        continue;
                    }
                    let now = tokio::time::Instant::now().into_std();
                    loop {
                        match framer.poll() {
                            Ok(Some(ev)) => self.on_event(now, ev)?,
                            Ok(None) => break,
                            // no frame can be delimited any more: close (RFC 4975 §7.1)
                            Err(e) => return Err(io::Error::new(io::ErrorKind::InvalidData, e)),
                        }
                    }
                }
                c = cmds.recv(), if !closing => {
                    let now = tokio::time::Instant::now().into_std();
                    match c {
                        None | Some(Cmd::Close) => closing = true,
                        Some(Cmd::Add(s)) => self.add(now, *s),
                        Some(Cmd::Remove(k, done)) => {
                            self.remove(now, &k)?;
                            let _ = done.send(());
                        }
                        Some(Cmd::Send(k, m, tx)) => {
                            let id = self.sessions.get_mut(&k).map(|s| s.send(m));
                            let _ = tx.send(id);
                        }
                        Some(Cmd::Push(k, id, d)) => { if let Some(s) = self.sessions.get_mut(&k) { s.push_body(&id, d); } }
                        Some(Cmd::Finish(k, id)) => { if let Some(s) = self.sessions.get_mut(&k) { s.finish(&id); } }
                        Some(Cmd::Abort(k, id)) => { if let Some(s) = self.sessions.get_mut(&k) { s.abort(&id); } }
                    }
                }
                p = events.reserve(), if !self.backlog.is_empty() => {
                    match p {
                        Ok(p) => p.send(self.backlog.pop_front().expect("not empty")),
                        Err(_) => return Ok(()),
                    }
                }
                _ = self.fl.drained.notified() => {}
                _ = sleep => {
                    let now = tokio::time::Instant::now();
                    for s in self.sessions.values_mut() {
                        s.handle_timeout(now.into_std());
                    }
                    let expired: Vec<String> = self
                        .held
                        .iter()
                        .filter(|(_, h)| h.since + grace <= now)
                        .map(|(k, _)| k.clone())
                        .collect();
                    for k in expired {
                        self.reject_held(&k)?;
                    }
                }
            }
        }
    }
}

/// Authenticates to an MSRP relay (RFC 4976 §5) on `stream` (TCP, or TLS for an `msrps:`
/// relay), a connection to that relay the
/// client then keeps for its sessions (its Use-Path URIs lead back over it): AUTH, the 401
/// challenge, AUTH with digest credentials, 200 with `Use-Path` — what the client puts before
/// its own URI in its SDP `a=path`. Returns the Use-Path and the Expires granted; an error when
/// the relay refuses ([`io::ErrorKind::PermissionDenied`], the status in the message), answers
/// nothing usable within `wait`, or closes. Reads no further than the last response (nothing
/// else arrives before the AUTH succeeds), so [`MsrpConnection::spawn`] takes the stream next.
pub async fn relay_auth<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    client: &mut ims_msrp::relay::AuthClient,
    wait: Duration,
) -> io::Result<(Vec<ims_msrp::UriBuf>, u32)> {
    use ims_msrp::relay::AuthOutcome;
    let mut framer = Framer::new(Limits::default());
    let mut request = client.start();
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        stream.write_all(&request).await?;
        let head = loop {
            match framer.poll() {
                Ok(Some(Event::Frame(f))) if !f.head.is_request() => break f.head,
                Ok(Some(_)) => continue,
                Err(e) => return Err(io::Error::new(io::ErrorKind::InvalidData, e.to_string())),
                Ok(None) => {}
            }
            let mut buf = [0u8; 4096];
            let n = tokio::time::timeout_at(deadline, stream.read(&mut buf))
                .await
                .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "no AUTH answer"))??;
            if n == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            framer.push(&buf[..n]);
        };
        match client.handle_response(&head) {
            AuthOutcome::Send(next) => request = next,
            AuthOutcome::Done { use_path, expires } => return Ok((use_path, expires)),
            AuthOutcome::Failed(code) => {
                return Err(io::Error::new(
                    io::ErrorKind::PermissionDenied,
                    format!("relay refused AUTH: {code}"),
                ))
            }
        }
    }
}

/// The addresses of an MSRP URI's host (RFC 4975 §6.2: the URI's host and port, no SRV): an
/// IP literal (brackets allowed) as it is, a host name resolved through the system resolver
/// (A/AAAA, `tokio::net::lookup_host`), in the resolver's order.
pub async fn resolve_host(host: &str, port: u16) -> io::Result<Vec<std::net::SocketAddr>> {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = host.parse::<std::net::IpAddr>() {
        return Ok(vec![std::net::SocketAddr::new(ip, port)]);
    }
    let addrs: Vec<std::net::SocketAddr> = tokio::net::lookup_host((host, port)).await?.collect();
    if addrs.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("{host}: no address"),
        ));
    }
    Ok(addrs)
}

/// Opens a TCP connection to the first of `addrs` that accepts, trying them in turn, all
/// before `deadline`: each attempt may take an equal share of the time left (so an address
/// that does not answer cannot use up the time of those after it). Returns the stream and
/// the address it reached; the last error when none did.
pub async fn connect_any(
    addrs: &[std::net::SocketAddr],
    deadline: tokio::time::Instant,
) -> io::Result<(TcpStream, std::net::SocketAddr)> {
    let mut last = io::Error::new(io::ErrorKind::NotFound, "no address to connect to");
    for (i, a) in addrs.iter().enumerate() {
        let now = tokio::time::Instant::now();
        if now >= deadline {
            return Err(io::Error::new(io::ErrorKind::TimedOut, "connect timed out"));
        }
        let left = (addrs.len() - i) as u32;
        let share = (deadline - now) / left;
        match tokio::time::timeout(share, TcpStream::connect(a)).await {
            Ok(Ok(s)) => return Ok((s, *a)),
            Ok(Err(e)) => last = e,
            Err(_) => last = io::Error::new(io::ErrorKind::TimedOut, format!("connect to {a}")),
        }
    }
    Err(last)
}

/// [`resolve_host`] then [`connect_any`]: the name resolved and every address tried, all
/// within `timeout`.
pub async fn connect_host(
    host: &str,
    port: u16,
    timeout: Duration,
) -> io::Result<(TcpStream, std::net::SocketAddr)> {
    let deadline = tokio::time::Instant::now() + timeout;
    let addrs = tokio::time::timeout_at(deadline, resolve_host(host, port))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "name resolution timed out"))??;
    connect_any(&addrs, deadline).await
}

/// The name a TLS peer reached by the URI host `host` is checked against
/// ([`crate::tls::TlsConfig::connect`]): the host name itself, unless `tls` names the server
/// (`TlsConfig::with_server_name`) or `host` is an IP literal (then the configured name or
/// the peer's address).
#[cfg(feature = "tls")]
pub fn tls_peer_name<'a>(tls: &crate::tls::TlsConfig, host: &'a str) -> Option<&'a str> {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    (!tls.has_server_name() && host.parse::<std::net::IpAddr>().is_err()).then_some(host)
}

/// An MSRP relay (RFC 4976) on tokio around the sans-IO [`ims_msrp::relay::Relay`]: clients
/// AUTH on their connection and get a Use-Path; SEND and REPORT requests are forwarded hop by
/// hop (To-Path and From-Path rewritten, each hop answered by the relay). A next hop named
/// by a host name is resolved (A/AAAA through the system resolver, `tokio::net::lookup_host`;
/// each address tried in turn) when its connection opens; the sans-IO core never resolves.
///
/// A frame for a next hop goes on the connection a request *from* that very URI last arrived
/// on (an endpoint that connected to the relay, RFC 4975 §5.4: its session is bound to that
/// connection, so what is meant for it must come back the same way), else on a connection the
/// relay opened to that authority, else on a new one (opened in the background; what is
/// meant for it waits in its queue meanwhile, in order).
///
/// Back-pressure: each connection's outbound queue holds at most [`RELAY_QUEUE`] octets
/// before the readers feeding it pause: a reader that has put frames on a queue above that
/// bound reads nothing more until the queue drains below it (TCP flow control toward the
/// sender). A receiver that stops reading therefore holds at most that bound (plus one read,
/// 64 KiB, per connection feeding it) in the relay, and slows only the connections sending to
/// it.
///
/// TLS (`msrps:`, feature `tls`): `MsrpRelay::start_tls` takes TLS on its listener and
/// opens TLS to `msrps:` next hops, both with one `ims_net::tls::TlsConfig`.
#[derive(Debug)]
pub struct MsrpRelay {
    addr: std::net::SocketAddr,
    shared: Arc<RelayShared>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

/// Most next-hop URIs remembered with the connection their requests came on.
const RELAY_LEARNT: usize = 4096;

/// Most octets queued toward one connection of [`MsrpRelay`] before the readers feeding it
/// stop reading.
pub const RELAY_QUEUE: usize = 1 << 20;

/// An MSRP URI as a key equal for equivalent URIs (RFC 4975 §6.1: host and scheme without
/// regard to case, the session-id with it).
fn hop_key(u: &ims_msrp::Uri<'_>) -> String {
    format!(
        "{}|{}|{}|{}",
        u.is_secure(),
        u.host_str().to_ascii_lowercase(),
        u.port_or_default(),
        u.session_id().unwrap_or("")
    )
}

type BoxRd = Box<dyn AsyncRead + Send + Unpin>;
type BoxWr = Box<dyn AsyncWrite + Send + Unpin>;

/// One connection's outbound queue.
#[derive(Debug)]
struct OutQ {
    tx: mpsc::UnboundedSender<Bytes>,
    /// Octets queued and not yet written.
    queued: AtomicUsize,
    /// The writer ended (or the connection never opened): nothing waits for room any more.
    closed: AtomicBool,
    /// Signalled as the writer takes frames, and when it ends.
    room: Notify,
}

impl OutQ {
    fn push(&self, b: Bytes) {
        self.queued.fetch_add(b.len(), Ordering::AcqRel);
        if self.tx.send(b).is_err() {
            self.closed.store(true, Ordering::Release);
        }
    }

    fn full(&self) -> bool {
        self.queued.load(Ordering::Acquire) > RELAY_QUEUE && !self.closed.load(Ordering::Acquire)
    }

    /// Waits until the queue is at or below [`RELAY_QUEUE`] (or its connection is gone).
    async fn wait_room(&self) {
        loop {
            let n = self.room.notified();
            tokio::pin!(n);
            n.as_mut().enable();
            if !self.full() {
                return;
            }
            n.await;
        }
    }

    fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.room.notify_waiters();
    }
}

#[derive(Debug)]
struct RelayShared {
    core: std::sync::Mutex<ims_msrp::relay::Relay>,
    limits: Limits,
    next: std::sync::atomic::AtomicU64,
    /// Outbound queues of the open connections (and of those being opened).
    conns: std::sync::Mutex<HashMap<u64, Arc<OutQ>>>,
    /// Connections we opened, by authority (`host:port` as the URI wrote it, lower case) and
    /// TLS.
    opened: std::sync::Mutex<HashMap<(String, bool), u64>>,
    /// Previous-hop URI ([`hop_key`]) → the connection its request came on.
    learnt: std::sync::Mutex<(HashMap<String, u64>, VecDeque<String>)>,
    #[cfg(feature = "tls")]
    tls: Option<crate::tls::TlsConfig>,
}

impl MsrpRelay {
    /// Listens on `listener` (TCP); `cfg.uri` should name its address. `users` may AUTH.
    pub fn start(
        listener: tokio::net::TcpListener,
        cfg: ims_msrp::relay::RelayConfig,
        users: &[(&str, &str)],
        seed: u64,
    ) -> io::Result<MsrpRelay> {
        Self::start_with(listener, cfg, users, seed, None)
    }

    /// As [`MsrpRelay::start`] over TLS (`msrps:`, RFC 4975 §14; feature `tls`): every
    /// connection accepted on `listener` runs the server handshake with `tls`, and next hops
    /// named by `msrps:` URIs are reached with its client side (its trust decides which
    /// certificates are accepted). `cfg.uri` should be an `msrps:` URI.
    #[cfg(feature = "tls")]
    pub fn start_tls(
        listener: tokio::net::TcpListener,
        cfg: ims_msrp::relay::RelayConfig,
        users: &[(&str, &str)],
        seed: u64,
        tls: crate::tls::TlsConfig,
    ) -> io::Result<MsrpRelay> {
        Self::start_with(listener, cfg, users, seed, Some(tls))
    }

    fn start_with(
        listener: tokio::net::TcpListener,
        cfg: ims_msrp::relay::RelayConfig,
        users: &[(&str, &str)],
        seed: u64,
        #[cfg(feature = "tls")] tls: Option<crate::tls::TlsConfig>,
        #[cfg(not(feature = "tls"))] _tls: Option<()>,
    ) -> io::Result<MsrpRelay> {
        let addr = listener.local_addr()?;
        let mut core = ims_msrp::relay::Relay::new(cfg, seed);
        for (u, p) in users {
            core.add_user(u, p);
        }
        let shared = Arc::new(RelayShared {
            core: std::sync::Mutex::new(core),
            limits: Limits::default(),
            next: std::sync::atomic::AtomicU64::new(1),
            conns: std::sync::Mutex::default(),
            opened: std::sync::Mutex::default(),
            learnt: std::sync::Mutex::default(),
            #[cfg(feature = "tls")]
            tls,
        });
        let mut tasks = Vec::new();
        let s = shared.clone();
        tasks.push(tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let _ = stream.set_nodelay(true);
                s.clone().accepted(stream);
            }
        }));
        let s = shared.clone();
        tasks.push(tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                s.core
                    .lock()
                    .expect("relay lock")
                    .handle_timeout(tokio::time::Instant::now().into_std());
            }
        }));
        Ok(MsrpRelay {
            addr,
            shared,
            tasks,
        })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> std::net::SocketAddr {
        self.addr
    }

    /// Live Use-Path bindings (clients authenticated and not expired).
    pub fn bindings(&self) -> usize {
        self.shared.core.lock().expect("relay lock").bindings()
    }

    /// Octets queued toward all connections and not yet written (see [`RELAY_QUEUE`]).
    pub fn queued_bytes(&self) -> usize {
        self.shared
            .conns
            .lock()
            .expect("relay conns")
            .values()
            .map(|q| q.queued.load(Ordering::Acquire))
            .sum()
    }

    /// Stops listening and forwarding (open connections close as their tasks end).
    pub fn shutdown(&self) {
        for t in &self.tasks {
            t.abort();
        }
        let conns = std::mem::take(&mut *self.shared.conns.lock().expect("relay conns"));
        for q in conns.values() {
            q.close();
        }
    }
}

impl Drop for MsrpRelay {
    fn drop(&mut self) {
        self.shutdown();
    }
}

impl RelayShared {
    /// A new outbound queue (its connection may still be opening) and its receiving end.
    fn queue(&self) -> (u64, Arc<OutQ>, mpsc::UnboundedReceiver<Bytes>) {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::unbounded_channel();
        let q = Arc::new(OutQ {
            tx,
            queued: AtomicUsize::new(0),
            closed: AtomicBool::new(false),
            room: Notify::new(),
        });
        self.conns
            .lock()
            .expect("relay conns")
            .insert(id, q.clone());
        (id, q, rx)
    }

    /// A connection a client or previous hop opened to us (TLS first when configured).
    fn accepted(self: Arc<Self>, stream: TcpStream) {
        #[cfg(feature = "tls")]
        if let Some(tls) = self.tls.clone() {
            tokio::spawn(async move {
                let Ok(Ok(s)) =
                    tokio::time::timeout(Duration::from_secs(10), tls.accept(stream)).await
                else {
                    return;
                };
                let (rd, wr) = tokio::io::split(s);
                let (id, q, rx) = self.queue();
                self.run(id, q, rx, Box::new(rd), Box::new(wr));
            });
            return;
        }
        let (rd, wr) = stream.into_split();
        let (id, q, rx) = self.queue();
        self.run(id, q, rx, Box::new(rd), Box::new(wr));
    }

    /// Runs a connection: a writer draining its queue and a reader feeding the relay core.
    fn run(
        self: Arc<Self>,
        id: u64,
        q: Arc<OutQ>,
        mut rx: mpsc::UnboundedReceiver<Bytes>,
        mut rd: BoxRd,
        mut wr: BoxWr,
    ) {
        let wq = q.clone();
        tokio::spawn(async move {
            while let Some(b) = rx.recv().await {
                let n = b.len();
                let ok = wr.write_all(&b).await.is_ok();
                wq.queued.fetch_sub(n, Ordering::AcqRel);
                wq.room.notify_waiters();
                if !ok {
                    break;
                }
            }
            wq.close();
        });
        tokio::spawn(async move {
            let mut framer = Framer::new(self.limits.clone());
            let mut buf = vec![0u8; 64 * 1024];
            // the queues this connection's frames went to since the last read
            let mut fed: Vec<Arc<OutQ>> = Vec::new();
            loop {
                // back-pressure: read no more while a queue we fed is full
                for q in fed.drain(..) {
                    q.wait_room().await;
                }
                let n = match rd.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                framer.push(&buf[..n]);
                loop {
                    let ev = match framer.poll() {
                        Ok(Some(ev)) => ev,
                        Ok(None) => break,
                        // a framing error: the stream cannot be resynchronised
                        Err(_) => {
                            self.closed(id);
                            return;
                        }
                    };
                    self.learn(id, &ev);
                    let mut core = self.core.lock().expect("relay lock");
                    core.handle_event(tokio::time::Instant::now().into_std(), id, ev);
                    // in the core's order, onto the queues (none of this waits)
                    while let Some(o) = core.poll_output() {
                        if let Some(q) = self.deliver(o) {
                            if !fed.iter().any(|f| Arc::ptr_eq(f, &q)) {
                                fed.push(q);
                            }
                        }
                    }
                }
            }
            self.closed(id);
        });
        let _ = q;
    }

    fn closed(&self, id: u64) {
        if let Some(q) = self.conns.lock().expect("relay conns").remove(&id) {
            q.close();
        }
        self.opened
            .lock()
            .expect("relay opened")
            .retain(|_, c| *c != id);
        self.learnt
            .lock()
            .expect("relay learnt")
            .0
            .retain(|_, c| *c != id);
        self.core.lock().expect("relay lock").connection_closed(id);
    }

    /// Remembers the connection a request's previous hop (first From-Path URI) used.
    fn learn(&self, id: u64, ev: &Event) {
        let h = match ev {
            Event::Frame(f) => &f.head,
            Event::Start(h) => h,
            _ => return,
        };
        if !h.is_request() {
            return;
        }
        let Some(prev) = h.from_path().ok().and_then(|p| p.first().map(hop_key)) else {
            return;
        };
        let mut l = self.learnt.lock().expect("relay learnt");
        let (map, order) = &mut *l;
        if map.insert(prev.clone(), id).is_none() {
            order.push_back(prev);
            while order.len() > RELAY_LEARNT {
                if let Some(old) = order.pop_front() {
                    map.remove(&old);
                }
            }
        }
    }

    /// Puts what the core emitted on its target's queue; the queue, when there is one.
    fn deliver(self: &Arc<Self>, o: ims_msrp::relay::RelayOutput) -> Option<Arc<OutQ>> {
        use ims_msrp::relay::Target;
        let q = match &o.target {
            Target::Conn(c) => self.conns.lock().expect("relay conns").get(c).cloned(),
            Target::Uri(u) => self.next_hop(u),
        }?;
        for part in o.frame.parts() {
            if !part.is_empty() {
                q.push(part.clone());
            }
        }
        Some(q)
    }

    /// The queue toward the next hop `u` (see [`MsrpRelay`]): a connection opening in the
    /// background when there is none yet.
    fn next_hop(self: &Arc<Self>, u: &ims_msrp::UriBuf) -> Option<Arc<OutQ>> {
        let get = |c: u64| self.conns.lock().expect("relay conns").get(&c).cloned();
        let learnt = self
            .learnt
            .lock()
            .expect("relay learnt")
            .0
            .get(&hop_key(&u.uri()))
            .copied();
        if let Some(q) = learnt.and_then(get) {
            return Some(q);
        }
        let uri = u.uri();
        let host = uri
            .host_str()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_ascii_lowercase();
        let port = uri.port_or_default();
        // an IP literal, or a host name resolved when the connection opens (RFC 4975 §6.2:
        // the URI's host and port, no SRV)
        let ip: Option<std::net::IpAddr> = host.parse().ok();
        let name = ip.is_none().then(|| host.clone());
        let key = (format!("{host}:{port}"), uri.is_secure());
        let opened = self.opened.lock().expect("relay opened").get(&key).copied();
        if let Some(q) = opened.and_then(get) {
            return Some(q);
        }
        #[cfg(feature = "tls")]
        let tls = if key.1 { Some(self.tls.clone()?) } else { None };
        #[cfg(not(feature = "tls"))]
        if key.1 {
            return None;
        }
        #[cfg(not(feature = "tls"))]
        let _ = &name;
        let (id, q, rx) = self.queue();
        self.opened.lock().expect("relay opened").insert(key, id);
        let me = self.clone();
        tokio::spawn(async move {
            let connected = connect_host(&host, port, Duration::from_secs(5)).await;
            let Ok((stream, _)) = connected else {
                me.closed(id);
                return;
            };
            let _ = stream.set_nodelay(true);
            #[cfg(feature = "tls")]
            if let Some(tls) = tls {
                // a host name is what the next hop's certificate is checked against
                let hs = tokio::time::timeout(
                    Duration::from_secs(10),
                    tls.connect(stream, name.as_deref()),
                );
                let Ok(Ok(s)) = hs.await else {
                    me.closed(id);
                    return;
                };
                let (rd, wr) = tokio::io::split(s);
                let q = me.conns.lock().expect("relay conns").get(&id).cloned();
                if let Some(q) = q {
                    me.run(id, q, rx, Box::new(rd), Box::new(wr));
                }
                return;
            }
            let (rd, wr) = stream.into_split();
            let q = me.conns.lock().expect("relay conns").get(&id).cloned();
            if let Some(q) = q {
                me.run(id, q, rx, Box::new(rd), Box::new(wr));
            }
        });
        Some(q)
    }
}

#[cfg(test)]
mod relay_tests {
    use super::*;
    use ims_msrp::relay::{AuthClient, RelayConfig};
    use ims_msrp::UriBuf;

    const WAIT: Duration = Duration::from_secs(30);

    /// A relay on an ephemeral port with the user bob; its URI.
    async fn relay() -> (MsrpRelay, String) {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let uri = format!("msrp://127.0.0.1:{};tcp", l.local_addr().unwrap().port());
        let cfg = RelayConfig::new(UriBuf::parse(&uri).unwrap(), "relay.test");
        let r = MsrpRelay::start(l, cfg, &[("bob", "bob-pw")], 11).unwrap();
        (r, uri)
    }

    fn send(to: &str, n: usize, body: &[u8]) -> Vec<u8> {
        FrameBuilder::request(&format!("tid{n:06}"), "SEND")
            .to_path(to)
            .from_path("msrp://127.0.0.1:9/alice1;tcp")
            .header("Message-ID", &format!("msg{n:06}"))
            .header("Byte-Range", &format!("1-{}/{}", body.len(), body.len()))
            .header("Failure-Report", "no")
            .body("text/plain", Bytes::copy_from_slice(body))
            .to_bytes()
    }

    /// A receiver behind the relay that stops reading: the relay queues at most
    /// [`RELAY_QUEUE`] (plus one read) for it and stops reading the sender, whose writes stall
    /// once the socket buffers on the way are full, instead of buffering the flood; once the
    /// receiver reads again, everything the sender wrote arrives, in order.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_receiver_that_stops_reading_pauses_the_sender_not_the_relays_memory() {
        let (relay, relay_uri) = relay().await;
        // Bob authenticates, then reads nothing for now
        let bob_uri = "msrp://127.0.0.1:9/bob1;tcp";
        let mut bob = TcpStream::connect(relay.local_addr()).await.unwrap();
        let mut auth = AuthClient::new(
            UriBuf::parse(bob_uri).unwrap(),
            UriBuf::parse(&relay_uri).unwrap(),
            "bob",
            "bob-pw",
            None,
            3,
        );
        let (use_path, _) = relay_auth(&mut bob, &mut auth, WAIT).await.unwrap();
        let to = format!("{} {bob_uri}", use_path[0].as_str());
        // Alice writes SENDs of 16 KiB; what the relay answers her is read and dropped
        let alice = TcpStream::connect(relay.local_addr()).await.unwrap();
        let (mut ard, mut awr) = alice.into_split();
        tokio::spawn(async move {
            let mut b = vec![0u8; 65536];
            while matches!(ard.read(&mut b).await, Ok(n) if n > 0) {}
        });
        let body = vec![b'x'; 16 * 1024];
        let limit = 48 << 20;
        let mut written = 0usize;
        let mut sent = 0usize;
        let stalled = loop {
            let f = send(&to, sent, &body);
            match tokio::time::timeout(Duration::from_secs(3), awr.write_all(&f)).await {
                Ok(r) => {
                    r.unwrap();
                    written += f.len();
                    sent += 1;
                    if written > limit {
                        break false;
                    }
                }
                // the write could not complete: the relay stopped reading Alice
                Err(_) => break true,
            }
        };
        assert!(
            stalled,
            "the relay read {written} bytes for a receiver that reads nothing"
        );
        let queued = relay.queued_bytes();
        assert!(
            queued <= RELAY_QUEUE + 128 * 1024,
            "the relay holds {queued} bytes for Bob"
        );
        // the write in progress was cut by the timeout mid-frame: Alice finishes nothing more,
        // Bob reads everything the relay passes on; every complete SEND arrives, in order
        let mut framer = Framer::new(Limits::default());
        let mut next = 0usize;
        let got = tokio::time::timeout(WAIT, async {
            loop {
                while let Some(ev) = framer.poll().unwrap() {
                    if let Event::Frame(f) = ev {
                        if f.head.is_request() {
                            assert_eq!(f.head.message_id(), Some(format!("msg{next:06}").as_str()));
                            assert_eq!(f.body.len(), body.len());
                            next += 1;
                        }
                    }
                }
                if next >= sent {
                    return;
                }
                let n = bob.read_buf(framer.buffer_mut()).await.unwrap();
                assert!(n > 0, "the relay closed Bob's connection");
            }
        })
        .await;
        assert!(got.is_ok(), "Bob got {next} of {sent} SENDs");
        relay.shutdown();
    }

    /// A next hop named by a host name (`msrp://localhost:PORT/…`) is resolved when the
    /// relay opens its connection (each address in turn: `localhost` may give `::1` first,
    /// where nobody listens), and the SEND arrives there. (Before: next hops had to be IP
    /// literals, and the frame was dropped.)
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_next_hop_named_by_a_host_name_is_resolved() {
        let (relay, relay_uri) = relay().await;
        let carol = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let carol_uri = format!(
            "msrp://localhost:{}/carol1;tcp",
            carol.local_addr().unwrap().port()
        );
        let bob_uri = "msrp://127.0.0.1:9/bob1;tcp";
        let mut bob = TcpStream::connect(relay.local_addr()).await.unwrap();
        let mut auth = AuthClient::new(
            UriBuf::parse(bob_uri).unwrap(),
            UriBuf::parse(&relay_uri).unwrap(),
            "bob",
            "bob-pw",
            None,
            5,
        );
        let (use_path, _) = relay_auth(&mut bob, &mut auth, WAIT).await.unwrap();
        let f = FrameBuilder::request("tiddns01", "SEND")
            .to_path(&format!("{} {carol_uri}", use_path[0].as_str()))
            .from_path(bob_uri)
            .header("Message-ID", "dns1")
            .header("Byte-Range", "1-5/5")
            .body("text/plain", Bytes::from_static(b"hello"))
            .to_bytes();
        bob.write_all(&f).await.unwrap();
        let (mut c, _) = tokio::time::timeout(WAIT, carol.accept())
            .await
            .expect("the relay connects to localhost")
            .unwrap();
        let mut framer = Framer::new(Limits::default());
        let got = tokio::time::timeout(WAIT, async {
            loop {
                if let Some(Event::Frame(f)) = framer.poll().unwrap() {
                    return f;
                }
                assert!(c.read_buf(framer.buffer_mut()).await.unwrap() > 0);
            }
        })
        .await
        .expect("a SEND");
        assert_eq!(got.head.message_id(), Some("dns1"));
        assert_eq!(&got.body[..], b"hello");
        let to: Vec<String> = got
            .head
            .to_path()
            .unwrap()
            .iter()
            .map(|u| u.as_str().to_owned())
            .collect();
        assert_eq!(to, [carol_uri]);
        relay.shutdown();
    }

    /// `connect_any` tries the addresses in turn (a refused one does not stop it), returns the
    /// one it reached, and gives up at the deadline; `resolve_host` takes IP literals (with
    /// brackets) without the resolver and resolves `localhost`; `connect_host` does both.
    #[tokio::test]
    async fn every_address_of_a_host_is_tried_within_the_deadline() {
        let open = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let good = open.local_addr().unwrap();
        let closed = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap()
        };
        let v6: std::net::SocketAddr = format!("[::1]:{}", closed.port()).parse().unwrap();
        let soon = tokio::time::Instant::now() + Duration::from_secs(5);
        let (_s, at) = connect_any(&[closed, v6, good], soon)
            .await
            .expect("the third");
        assert_eq!(at, good);
        let e = connect_any(&[closed], soon).await.expect_err("refused");
        assert_eq!(e.kind(), io::ErrorKind::ConnectionRefused, "{e}");
        let past = tokio::time::Instant::now();
        tokio::time::sleep(Duration::from_millis(5)).await;
        let e = connect_any(&[good], past).await.expect_err("no time left");
        assert_eq!(e.kind(), io::ErrorKind::TimedOut, "{e}");
        assert_eq!(
            resolve_host("[::1]", 7).await.unwrap(),
            ["[::1]:7".parse().unwrap()]
        );
        assert_eq!(
            resolve_host("192.0.2.1", 7).await.unwrap(),
            ["192.0.2.1:7".parse().unwrap()]
        );
        let local = resolve_host("localhost", good.port()).await.unwrap();
        assert!(local.contains(&good), "{local:?}");
        let (_s, at) = connect_host("localhost", good.port(), Duration::from_secs(5))
            .await
            .expect("localhost");
        assert_eq!(at, good);
    }
}
