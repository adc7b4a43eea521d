//! MSRP connections over TCP (RFC 4975 §6, §8.5) on tokio: one task per connection feeds a
//! [`Framer`] and the sans-IO [`Session`]s that share the connection, matched by the
//! session-id of the last To-Path URI (RFC 4975 §8.5 connection reuse), and writes what they
//! produce.
//!
//! TLS (`msrps:`, RFC 4975 §14.1; feature `tls`): `MsrpConnection::connect_tls` and
//! `MsrpConnection::accept_tls` run the handshake with an `ims_net::tls::TlsConfig` whose
//! `Trust::Fingerprints` holds the peer's SDP `a=fingerprint` (self-signed certificates, as
//! RFC 4975 §14.1 expects) or a CA; the peer's certificate fingerprint is kept
//! (`MsrpConnection::peer_fingerprint`).
//!
//! Back-pressure: body bytes pushed with [`MsrpConnection::push_body`] wait while more than
//! [`ConnConfig::high_water`] bytes are queued or in flight to the socket; received events wait
//! for the application to take them ([`MsrpConnection::next_event`]). Reading never waits on
//! writing, so two peers sending to each other cannot deadlock.

use bytes::Bytes;
use ims_msrp::session::{Outgoing, Session, SessionEvent, Transmit};
use ims_msrp::{Event, FrameBuilder, Framer, Head, Limits, Method};
use std::collections::HashMap;
use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot, Notify};

/// Connection settings.
#[derive(Debug, Clone)]
pub struct ConnConfig {
    /// Framer limits for what we receive.
    pub limits: Limits,
    /// Most body bytes queued in sessions plus bytes handed to the writer before
    /// `push_body` waits.
    pub high_water: usize,
    /// Capacity of the event channel toward the application.
    pub event_capacity: usize,
}

impl Default for ConnConfig {
    fn default() -> ConnConfig {
        ConnConfig {
            limits: Limits::default(),
            high_water: 1024 * 1024,
            event_capacity: 256,
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
    /// A request for a session-id we do not have was answered with 481.
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

enum Cmd {
    Add(Box<Session>),
    Send(String, Outgoing, oneshot::Sender<Option<String>>),
    Push(String, String, Bytes),
    Finish(String, String),
    Abort(String, String),
    Close,
}

/// A handle on one MSRP connection and its task.
#[derive(Debug)]
pub struct MsrpConnection {
    cmd: mpsc::Sender<Cmd>,
    events: mpsc::Receiver<ConnEvent>,
    #[cfg(feature = "tls")]
    peer_fingerprint: Option<crate::tls::Fingerprint>,
}

impl std::fmt::Debug for Cmd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Cmd")
    }
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
        let (rd, wr) = stream.into_split();
        Self::spawn_halves(rd, wr, cfg)
    }

    fn spawn_halves<R, W>(rd: R, wr: W, cfg: ConnConfig) -> MsrpConnection
    where
        R: AsyncRead + Unpin + Send + 'static,
        W: AsyncWrite + Unpin + Send + 'static,
    {
        let (cmd_tx, cmd_rx) = mpsc::channel(8);
        let (ev_tx, ev_rx) = mpsc::channel(cfg.event_capacity.max(1));
        tokio::spawn(run(rd, wr, cfg, cmd_rx, ev_tx));
        MsrpConnection {
            cmd: cmd_tx,
            events: ev_rx,
            #[cfg(feature = "tls")]
            peer_fingerprint: None,
        }
    }

    /// Starts the connection task on a TLS stream (`msrps:`; feature `tls`).
    #[cfg(feature = "tls")]
    pub fn spawn_tls(stream: crate::tls::TlsStream<TcpStream>, cfg: ConnConfig) -> MsrpConnection {
        let fp = crate::tls::peer_fingerprint(&stream);
        let (rd, wr) = tokio::io::split(stream);
        let mut c = Self::spawn_halves(rd, wr, cfg);
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
        let s = TcpStream::connect(addr).await?;
        s.set_nodelay(true)?;
        Ok(MsrpConnection::spawn(s, cfg))
    }

    /// Adds a session; requests whose To-Path ends in its URI go to it.
    pub async fn add_session(&self, s: Session) -> Result<(), Closed> {
        self.cmd
            .send(Cmd::Add(Box::new(s)))
            .await
            .map_err(|_| Closed)
    }

    /// Queues a message on a session; returns its Message-ID (`None`: no such session).
    pub async fn send(&self, session_id: &str, m: Outgoing) -> Result<Option<String>, Closed> {
        let (tx, rx) = oneshot::channel();
        self.cmd
            .send(Cmd::Send(session_id.into(), m, tx))
            .await
            .map_err(|_| Closed)?;
        rx.await.map_err(|_| Closed)
    }

    /// Appends body bytes to a streamed message (waits while the connection is saturated).
    pub async fn push_body(
        &self,
        session_id: &str,
        message_id: &str,
        data: Bytes,
    ) -> Result<(), Closed> {
        self.cmd
            .send(Cmd::Push(session_id.into(), message_id.into(), data))
            .await
            .map_err(|_| Closed)
    }

    /// Ends a streamed message's body.
    pub async fn finish(&self, session_id: &str, message_id: &str) -> Result<(), Closed> {
        self.cmd
            .send(Cmd::Finish(session_id.into(), message_id.into()))
            .await
            .map_err(|_| Closed)
    }

    /// Aborts a message (`#`).
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

    /// Closes the connection after what is queued has been written.
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
) where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let r = run_inner(rd, wr, &cfg, &mut cmds, &events).await;
    let _ = events
        .send(ConnEvent::Closed(r.err().map(|e| e.to_string())))
        .await;
}

async fn run_inner<R, W>(
    mut rd: R,
    wr: W,
    cfg: &ConnConfig,
    cmds: &mut mpsc::Receiver<Cmd>,
    events: &mpsc::Sender<ConnEvent>,
) -> io::Result<()>
where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let fl = Arc::new(InFlight {
        bytes: AtomicUsize::new(0),
        drained: Notify::new(),
    });
    let (wtx, wrx) = mpsc::unbounded_channel();
    let wtask = tokio::spawn(writer(wr, wrx, fl.clone()));
    let mut framer = Framer::new(cfg.limits.clone());
    let mut sessions: HashMap<String, Session> = HashMap::new();
    // the session the frame being streamed belongs to (None: unknown, dropped)
    let mut current: Option<String> = None;
    let mut closing = false;
    let mut read_open = true;
    loop {
        // 1. write what the sessions have, while under the high-water mark
        let now = tokio::time::Instant::now().into_std();
        for s in sessions.values_mut() {
            while fl.bytes.load(Ordering::Acquire) < cfg.high_water {
                let Some(t) = s.poll_transmit(now) else { break };
                fl.bytes.fetch_add(t.len(), Ordering::AcqRel);
                if wtx.send(t).is_err() {
                    return Err(io::Error::new(io::ErrorKind::BrokenPipe, "writer ended"));
                }
            }
            while let Some(e) = s.poll_event() {
                let session_id = session_key(s);
                if events
                    .send(ConnEvent::Session {
                        session_id,
                        event: e,
                    })
                    .await
                    .is_err()
                {
                    return Ok(());
                }
            }
        }
        if closing && sessions.values().all(|s| s.queued_bytes() == 0) {
            drop(wtx);
            return wtask.await.unwrap_or(Ok(()));
        }
        if !read_open
            && sessions
                .values()
                .all(|s| s.queued_bytes() == 0 && s.outstanding() == 0)
        {
            drop(wtx);
            let _ = wtask.await;
            return Ok(());
        }
        let queued: usize = sessions.values().map(Session::queued_bytes).sum::<usize>()
            + fl.bytes.load(Ordering::Acquire);
        let timeout = sessions.values().filter_map(Session::poll_timeout).min();
        let sleep = async {
            match timeout {
                Some(t) => tokio::time::sleep_until(tokio::time::Instant::from_std(t)).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            n = rd.read_buf(framer.buffer_mut()), if read_open => {
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
                    let ev = match framer.poll() {
                        Ok(Some(ev)) => ev,
                        Ok(None) => break,
                        Err(e) => {
                            // no frame can be delimited any more: close (RFC 4975 §7.1)
                            return Err(io::Error::new(io::ErrorKind::InvalidData, e));
                        }
                    };
                    let head = match &ev {
                        Event::Frame(f) => Some(&f.head),
                        Event::Start(h) => Some(h),
                        _ => None,
                    };
                    if let Some(h) = head {
                        let sid = head_session_id(h).unwrap_or_default();
                        if sessions.contains_key(&sid) {
                            current = Some(sid);
                        } else {
                            current = None;
                            if h.is_request() && h.method() != Some(Method::Report) {
                                if let (Ok(from), Ok(to)) = (h.from_path(), h.to_path()) {
                                    let b = FrameBuilder::response(h.transaction_id(), 481, None)
                                        .to_path(from[0].as_str())
                                        .from_path(to.last().map(|u| u.as_str()).unwrap_or(""));
                                    let t = Transmit { head: b.head_bytes(), body: Bytes::new(), tail: b.tail_bytes() };
                                    fl.bytes.fetch_add(t.len(), Ordering::AcqRel);
                                    let _ = wtx.send(t);
                                }
                            }
                            if events.send(ConnEvent::UnknownSession { session_id: sid }).await.is_err() {
                                return Ok(());
                            }
                        }
                    }
                    let ends = matches!(ev, Event::Frame(_) | Event::End(_));
                    if let Some(s) = current.as_ref().and_then(|k| sessions.get_mut(k)) {
                        s.handle_event(now, ev);
                        // deliver as we go so that a large message never piles up here
                        while let Some(e) = s.poll_event() {
                            let session_id = session_key(s);
                            if events.send(ConnEvent::Session { session_id, event: e }).await.is_err() {
                                return Ok(());
                            }
                        }
                    }
                    if ends {
                        current = None;
                    }
                }
            }
            c = cmds.recv(), if !closing && queued < cfg.high_water => {
                match c {
                    None | Some(Cmd::Close) => closing = true,
                    Some(Cmd::Add(s)) => { sessions.insert(session_key(&s), *s); }
                    Some(Cmd::Send(k, m, tx)) => {
                        let id = sessions.get_mut(&k).map(|s| s.send(m));
                        let _ = tx.send(id);
                    }
                    Some(Cmd::Push(k, id, d)) => { if let Some(s) = sessions.get_mut(&k) { s.push_body(&id, d); } }
                    Some(Cmd::Finish(k, id)) => { if let Some(s) = sessions.get_mut(&k) { s.finish(&id); } }
                    Some(Cmd::Abort(k, id)) => { if let Some(s) = sessions.get_mut(&k) { s.abort(&id); } }
                }
            }
            _ = fl.drained.notified() => {}
            _ = sleep => {
                let now = tokio::time::Instant::now().into_std();
                for s in sessions.values_mut() {
                    s.handle_timeout(now);
                }
            }
        }
    }
}
