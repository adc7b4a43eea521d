//! The event loop shared by the UA endpoint and the proxy: one task owning a sans-IO core and
//! the sockets, driven by socket reads, the core's timer and a command channel.

use super::transport::{
    bad_request, fix_via, is_keepalive, spawn_connect, spawn_connection, tls_server_name, Conn,
    ConnCtx, Inbound, Malformed, Outbound, Tls,
};
use super::{EndpointConfig, NetError};
use bytes::Bytes;
use ims_sip::{OwnedMessage, ParserConfig};
use ims_txn::{Remote, Transmit, Transport, TxnId};
use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::mpsc;

/// The clock. ims-net is the one crate that reads it; tokio's clock, so tests may pause time.
pub(crate) fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

/// A sans-IO core (UA or proxy) as the loop drives it. Events are routed by the core wrapper
/// itself; the loop only moves bytes.
pub(crate) trait Core: Send + 'static {
    fn poll_timeout(&self) -> Option<Instant>;
    fn handle_timeout(&mut self, now: Instant);
    /// A received message (already Via-fixed). Errors (unmatchable messages) are dropped.
    fn receive(&mut self, now: Instant, msg: OwnedMessage, remote: Remote);
    /// A message a co-located endpoint handed over in memory ([`super::LocalLinks`]): written by
    /// the ims-sip encoder of an element of this process, which checked its syntax.
    fn receive_local(&mut self, now: Instant, msg: OwnedMessage, remote: Remote) {
        self.receive(now, msg, remote);
    }
    fn transport_error(&mut self, now: Instant, txn: TxnId);
    /// The parsed message whose bytes `bytes` are (the same buffer), when the core still has it:
    /// handed to a co-located endpoint instead of bytes to parse again. `None` by default.
    fn sent_message(&self, bytes: &Bytes) -> Option<OwnedMessage> {
        let _ = bytes;
        None
    }
    /// The next message to send; events met on the way are dispatched.
    fn poll_transmit(&mut self) -> Option<Transmit>;
    /// True once the application asked the task to stop.
    fn is_stopped(&self) -> bool;
    /// The peers of live transactions (and dialogs): their connections are not closed for
    /// idleness.
    fn remotes_in_use(&self) -> HashSet<Remote>;
    /// The UDP peers this endpoint hands its messages to in memory ([`super::LocalLinks`]):
    /// nothing sent to them is lost, so their transactions need no retransmission nor a wait for
    /// one ([`ims_txn::TransactionLayer::set_lossless`]). Nothing by default.
    fn set_lossless(&mut self, peers: ims_txn::LosslessPeers) {
        let _ = peers;
    }
}

/// A command: runs inside the task with the core.
pub(crate) type Command<C> = Box<dyn FnOnce(&mut C) + Send>;

/// Bound sockets and what was derived from them.
pub(crate) struct Sockets {
    pub(crate) udp: Option<Arc<UdpSocket>>,
    pub(crate) tcp: Option<TcpListener>,
    /// The TLS listener (only with a TLS configuration that has a server identity).
    pub(crate) tls: Option<TcpListener>,
    /// TLS settings for outgoing and accepted TLS flows.
    pub(crate) tls_config: Option<Tls>,
    pub(crate) local: SocketAddr,
    pub(crate) tls_local: Option<SocketAddr>,
    /// The second local port some requests leave from ([`super::ClientPort`]) and its UDP
    /// socket (with UDP on).
    pub(crate) client: Option<(super::ClientPort, Option<Arc<UdpSocket>>)>,
}

fn tls_config(cfg: &EndpointConfig) -> Option<Tls> {
    #[cfg(feature = "tls")]
    {
        cfg.tls.clone()
    }
    #[cfg(not(feature = "tls"))]
    {
        let _ = cfg;
        None
    }
}

fn tls_listens(t: &Option<Tls>) -> bool {
    #[cfg(feature = "tls")]
    {
        t.as_ref().is_some_and(|t| t.has_server())
    }
    #[cfg(not(feature = "tls"))]
    {
        let _ = t;
        false
    }
}

impl Sockets {
    /// Binds UDP and/or TCP on the same port (port 0: the OS picks one free for both), and the
    /// TLS listener: on that port too when TCP is off, else on the next port (5060 → 5061, RFC
    /// 3261 §26.2 defaults) or, with port 0, on another free one.
    pub(crate) async fn bind(cfg: &EndpointConfig) -> Result<Sockets, NetError> {
        let tls_config = tls_config(cfg);
        let want_tls = tls_listens(&tls_config);
        let mut last = None;
        for _ in 0..8 {
            let udp = if cfg.udp {
                let u = UdpSocket::bind(cfg.addr).await?;
                enlarge_buffers(&u);
                Some(u)
            } else {
                None
            };
            let port = match &udp {
                Some(u) => u.local_addr()?.port(),
                None => cfg.addr.port(),
            };
            let mut local = SocketAddr::new(cfg.addr.ip(), port);
            // the OS picked the UDP port: it may be taken on TCP, then try another
            let retry = cfg.addr.port() == 0 && udp.is_some();
            let tcp = if cfg.tcp {
                match TcpListener::bind(local).await {
                    Ok(l) => {
                        local = SocketAddr::new(cfg.addr.ip(), l.local_addr()?.port());
                        Some(l)
                    }
                    Err(e) if retry => {
                        last = Some(e);
                        continue;
                    }
                    Err(e) => return Err(e.into()),
                }
            } else {
                None
            };
            let (tls, tls_local) = if want_tls {
                let at = if !cfg.tcp {
                    local
                } else if cfg.addr.port() != 0 {
                    SocketAddr::new(cfg.addr.ip(), local.port().wrapping_add(1))
                } else {
                    SocketAddr::new(cfg.addr.ip(), 0)
                };
                match TcpListener::bind(at).await {
                    Ok(l) => {
                        let a = SocketAddr::new(cfg.addr.ip(), l.local_addr()?.port());
                        if !cfg.tcp && udp.is_none() {
                            local = a;
                        }
                        (Some(l), Some(a))
                    }
                    Err(e) if retry && !cfg.tcp => {
                        last = Some(e);
                        continue;
                    }
                    Err(e) => return Err(e.into()),
                }
            } else {
                (None, None)
            };
            let client = match &cfg.client_port {
                Some(c) => {
                    let u = if cfg.udp {
                        let u = UdpSocket::bind(SocketAddr::new(cfg.addr.ip(), c.port)).await?;
                        enlarge_buffers(&u);
                        Some(Arc::new(u))
                    } else {
                        None
                    };
                    Some((c.clone(), u))
                }
                None => None,
            };
            return Ok(Sockets {
                udp: udp.map(Arc::new),
                tcp,
                tls,
                tls_config,
                local,
                tls_local,
                client,
            });
        }
        Err(last.map_or(NetError::Closed, NetError::Io))
    }

    /// `host:port` for Via sent-by: the UDP/TCP address, or the TLS one on a TLS-only
    /// endpoint.
    pub(crate) fn sent_by(&self) -> String {
        let a = if self.udp.is_none() && self.tcp.is_none() {
            self.tls_local.unwrap_or(self.local)
        } else {
            self.local
        };
        match a.ip() {
            IpAddr::V4(ip) => format!("{ip}:{}", a.port()),
            IpAddr::V6(ip) => format!("[{ip}]:{}", a.port()),
        }
    }

    /// `host:port` for the Via of requests sent over TLS when the TLS listener has another
    /// port than the UDP/TCP one (a mixed endpoint), else `None`.
    pub(crate) fn tls_sent_by(&self) -> Option<String> {
        let a = self.tls_local?;
        if self.udp.is_none() && self.tcp.is_none() {
            return None;
        }
        Some(match a.ip() {
            IpAddr::V4(ip) => format!("{ip}:{}", a.port()),
            IpAddr::V6(ip) => format!("[{ip}]:{}", a.port()),
        })
    }

    /// True when the endpoint only listens on TLS (its Contact is a `sips:` URI).
    pub(crate) fn tls_only(&self) -> bool {
        self.udp.is_none() && self.tcp.is_none() && self.tls.is_some()
    }

    /// The transports usable (TLS also without a listener: outgoing flows only).
    pub(crate) fn transports(&self) -> Vec<Transport> {
        let mut v = Vec::new();
        if self.udp.is_some() {
            v.push(Transport::Udp);
        }
        if self.tcp.is_some() {
            v.push(Transport::Tcp);
        }
        if self.tls_config.is_some() {
            v.push(Transport::Tls);
        }
        v
    }
}

/// When the driver's loop next reaps idle connections, and what its one timer waits for: the
/// earlier of the core's deadline and the next reaping (formerly a second timer, an `Interval`
/// of `period` polled on every turn of the loop).
#[derive(Debug, Clone, Copy)]
struct Reap {
    /// The time between two reapings (`None`: no idle timeout, no reaping).
    period: Option<Duration>,
    /// The next reaping.
    next: Option<tokio::time::Instant>,
}

impl Reap {
    /// The first reaping one `period` after `start`.
    fn new(period: Option<Duration>, start: tokio::time::Instant) -> Reap {
        Reap {
            period,
            next: period.map(|p| start + p),
        }
    }

    /// What the timer waits for, given the core's `deadline`: the earlier of the two.
    fn wake(&self, deadline: Option<tokio::time::Instant>) -> Option<tokio::time::Instant> {
        match (deadline, self.next) {
            (Some(d), Some(r)) => Some(d.min(r)),
            (d, r) => d.or(r),
        }
    }

    /// The timer armed with [`Reap::wake`]`(deadline)` fired at `now`: whether it was the
    /// core's deadline (its timers are handled: what the sole timer of the loop meant) and
    /// whether it was the reaping (done now; the next one a `period` later, as an `Interval`
    /// with `MissedTickBehavior::Delay` goes on). Both when they fall at the same instant.
    fn fired(
        &mut self,
        deadline: Option<tokio::time::Instant>,
        now: tokio::time::Instant,
    ) -> (bool, bool) {
        let core_due = match (deadline, self.next) {
            (Some(d), Some(r)) => d <= r,
            (d, _) => d.is_some(),
        };
        let reap_due = match (deadline, self.next) {
            (Some(d), Some(r)) => r <= d,
            (_, r) => r.is_some(),
        };
        if reap_due {
            self.next = self.period.map(|p| now + p);
        }
        (core_due, reap_due)
    }
}

pub(crate) struct Driver<C: Core> {
    core: C,
    udp: Option<Arc<UdpSocket>>,
    tcp: Option<TcpListener>,
    tls: Option<TcpListener>,
    tls_config: Option<Tls>,
    /// The client port, its UDP socket, and the Via sent-by naming it.
    client: Option<(super::ClientPort, Option<Arc<UdpSocket>>, String)>,
    /// TCP and TLS flows by transport and peer address (RFC 5626 flow: transport, local and
    /// remote address).
    conns: HashMap<Remote, Conn>,
    /// TLS connections opened for a domain (RFC 5922 §4.1) when the one in `conns` for that
    /// address was checked against another name (or none): (address, domain) → connection.
    named: HashMap<(Remote, String), Conn>,
    inbound_rx: mpsc::UnboundedReceiver<Inbound>,
    cmd_rx: mpsc::UnboundedReceiver<Command<C>>,
    parser: ParserConfig,
    /// What connection tasks share (inbound channel, parser, keep-alive, warn-agent, clock).
    ctx: ConnCtx,
    /// Connections idle this long and used by no transaction are closed.
    idle_timeout: Option<Duration>,
    /// Transactions whose send failed, reported to the core after the current drain.
    failed: Vec<TxnId>,
    /// Datagrams for the UDP socket, sent together at the end of the drain.
    udp_out: super::udp::SendQueue,
    /// Our `host:port`, the warn-agent of Warning headers.
    agent: String,
    stats: Arc<Stats>,
    /// Co-located endpoints reached in memory, and our UDP address (the source they see);
    /// the registration of our own address is dropped (removed) with the driver.
    local: Option<(super::LocalLinks, SocketAddr)>,
    _local_entry: Option<super::local::Registration>,
}

/// Datagrams taken from the UDP socket after the first one of a wake-up, before the core's
/// output is sent.
const UDP_BATCH: usize = 31;

/// Socket buffer size asked for the UDP socket (the kernel caps it at `net.core.rmem_max` /
/// `wmem_max`): the default (≈200 KB) overflows in bursts of a few hundred calls per second,
/// and every datagram lost there comes back as a retransmission (RFC 3261 Timers A/E/G).
const UDP_BUFFER: usize = 4 << 20;

fn enlarge_buffers(u: &UdpSocket) {
    let s = socket2::SockRef::from(u);
    for size in [UDP_BUFFER, UDP_BUFFER / 4] {
        if s.set_recv_buffer_size(size).is_ok() {
            break;
        }
    }
    let _ = s.set_send_buffer_size(UDP_BUFFER / 4);
}

/// `recv_from` on the socket, through its `poll_recv_from`: the socket's one reader waker slot
/// instead of the `recv_from` future's readiness waiter (a queued waiter, made and dropped on
/// every turn of the driver's loop, where this is polled). Only the driver reads these sockets.
async fn recv_udp(
    s: &Option<Arc<UdpSocket>>,
    buf: &mut [u8],
) -> std::io::Result<(usize, SocketAddr)> {
    match s {
        Some(s) => {
            let mut rb = tokio::io::ReadBuf::new(buf);
            let from = std::future::poll_fn(|cx| s.poll_recv_from(cx, &mut rb)).await?;
            Ok((rb.filled().len(), from))
        }
        None => std::future::pending().await,
    }
}

/// `accept` on the listener through its `poll_accept` (as [`recv_udp`]: no readiness waiter
/// made per turn of the loop; only the driver accepts on it).
async fn accept(l: &Option<TcpListener>) -> std::io::Result<(tokio::net::TcpStream, SocketAddr)> {
    match l {
        Some(l) => std::future::poll_fn(|cx| l.poll_accept(cx)).await,
        None => std::future::pending().await,
    }
}

/// Counters of the endpoint task.
#[derive(Debug, Default)]
pub(crate) struct Stats {
    bad_answered: AtomicU64,
    bad_dropped: AtomicU64,
    framing_lost: AtomicU64,
    idle_closed: AtomicU64,
    local_sent: AtomicU64,
    local_received: AtomicU64,
    udp_sent: AtomicU64,
    udp_send_calls: AtomicU64,
}

impl Stats {
    /// Unparsable messages (datagrams and stream messages): (answered 400, dropped).
    pub(crate) fn malformed(&self) -> (u64, u64) {
        (
            self.bad_answered.load(Ordering::Relaxed),
            self.bad_dropped.load(Ordering::Relaxed),
        )
    }

    /// A snapshot of every counter.
    pub(crate) fn snapshot(&self) -> TransportStats {
        TransportStats {
            malformed_answered: self.bad_answered.load(Ordering::Relaxed),
            malformed_dropped: self.bad_dropped.load(Ordering::Relaxed),
            framing_lost: self.framing_lost.load(Ordering::Relaxed),
            idle_closed: self.idle_closed.load(Ordering::Relaxed),
            in_process_sent: self.local_sent.load(Ordering::Relaxed),
            in_process_received: self.local_received.load(Ordering::Relaxed),
            udp_datagrams_sent: self.udp_sent.load(Ordering::Relaxed),
            udp_send_calls: self.udp_send_calls.load(Ordering::Relaxed),
        }
    }
}

/// Transport counters of an [`super::Endpoint`] or [`super::ProxyEndpoint`] since it started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TransportStats {
    /// Unparsable requests answered 400 with a Warning (RFC 3261 §8.2.2 / §21.4.1), received
    /// as datagrams or on a stream whose framing survived (the message's Content-Length was
    /// readable, RFC 3261 §18.3).
    pub malformed_answered: u64,
    /// Unparsable messages dropped without an answer (responses, ACKs, unreadable headers).
    pub malformed_dropped: u64,
    /// TCP/TLS connections closed because framing was lost (an unparsable message without a
    /// usable Content-Length, a bad start line, an oversized message).
    pub framing_lost: u64,
    /// TCP/TLS connections closed after [`super::EndpointConfig::idle_timeout`] without
    /// traffic and without a transaction using them.
    pub idle_closed: u64,
    /// Datagrams handed to a co-located endpoint in memory ([`super::LocalLinks`]) instead of
    /// sent on the socket.
    pub in_process_sent: u64,
    /// Datagrams a co-located endpoint handed to this one in memory.
    pub in_process_received: u64,
    /// Datagrams sent on the endpoint's UDP sockets.
    pub udp_datagrams_sent: u64,
    /// System calls that sent them: the datagrams one turn of the endpoint's loop produces for
    /// its UDP socket leave in one `sendmmsg` on Linux, in the order they were produced.
    pub udp_send_calls: u64,
}

/// Starts the task; returns the command sender and the counters.
pub(crate) fn spawn<C: Core>(
    core: C,
    sockets: Sockets,
    cfg: &EndpointConfig,
) -> (mpsc::UnboundedSender<Command<C>>, Arc<Stats>) {
    let (tx, cmd_rx) = mpsc::unbounded_channel();
    let (inbound_tx, inbound_rx) = mpsc::unbounded_channel();
    let stats = Arc::new(Stats::default());
    let agent = sockets.sent_by();
    let (local, local_entry) = match (&cfg.local, &sockets.udp) {
        // a wildcard address is not what peers see as our source: sockets only
        (Some(links), Some(_)) if !sockets.local.ip().is_unspecified() => {
            links.register(sockets.local, inbound_tx.clone());
            (
                Some((links.clone(), sockets.local)),
                Some(super::local::Registration {
                    links: links.clone(),
                    at: sockets.local,
                    tx: inbound_tx.clone(),
                }),
            )
        }
        _ => (None, None),
    };
    let mut core = core;
    if let Some((links, _)) = &local {
        // what goes to a co-located endpoint is handed over in memory (`transmit`), except a
        // request leaving from the client port, which takes that socket
        let links = links.clone();
        let client = sockets.client.as_ref().map(|(c, _)| c.clone());
        core.set_lossless(Arc::new(move |peer| {
            links.has(peer) && !client.as_ref().is_some_and(|c| c.serves(peer))
        }));
    }
    let d = Driver {
        local,
        _local_entry: local_entry,
        ctx: ConnCtx {
            inbound: inbound_tx,
            parser: cfg.parser,
            keepalive: cfg.keepalive,
            agent: agent.as_str().into(),
            epoch: tokio::time::Instant::now(),
        },
        idle_timeout: cfg.idle_timeout,
        agent,
        stats: stats.clone(),
        core,
        udp: sockets.udp,
        tcp: sockets.tcp,
        tls: sockets.tls,
        tls_config: sockets.tls_config,
        client: sockets.client.map(|(c, u)| {
            let a = SocketAddr::new(sockets.local.ip(), c.port);
            let by = match a.ip() {
                IpAddr::V4(ip) => format!("{ip}:{}", a.port()),
                IpAddr::V6(ip) => format!("[{ip}]:{}", a.port()),
            };
            (c, u, by)
        }),
        conns: HashMap::new(),
        named: HashMap::new(),
        inbound_rx,
        cmd_rx,
        parser: cfg.parser,
        failed: Vec::new(),
        udp_out: super::udp::SendQueue::default(),
    };
    tokio::spawn(d.run());
    (tx, stats)
}

impl<C: Core> Driver<C> {
    async fn run(mut self) {
        let mut buf = vec![0u8; 65_535];
        // one timer for the core's next deadline and the next idle reaping, re-armed only when
        // the earlier of the two changes (no second timer polled on every turn of the loop)
        let far = || tokio::time::Instant::now() + Duration::from_secs(3600);
        let sleep = tokio::time::sleep_until(far());
        tokio::pin!(sleep);
        let mut armed: Option<tokio::time::Instant> = None;
        let client_udp = self.client.as_ref().and_then(|(_, u, _)| u.clone());
        let mut cbuf = vec![0u8; if client_udp.is_some() { 65_535 } else { 0 }];
        // idle reaping: a check every quarter of the idle time (at least every 5 s)
        let period = self
            .idle_timeout
            .map(|t| (t / 4).clamp(Duration::from_millis(10), Duration::from_secs(5)));
        let mut reap = Reap::new(period, tokio::time::Instant::now());
        // the branches of sockets that do not exist are left out (not polled at all)
        let (has_udp, has_client_udp) = (self.udp.is_some(), client_udp.is_some());
        let (has_tcp, has_tls) = (self.tcp.is_some(), self.tls.is_some());
        loop {
            let deadline = self.core.poll_timeout().map(tokio::time::Instant::from_std);
            let wake = reap.wake(deadline);
            if wake != armed {
                sleep.as_mut().reset(wake.unwrap_or_else(far));
                armed = wake;
            }
            tokio::select! {
                r = recv_udp(&self.udp, &mut buf), if has_udp => {
                    if let Ok((n, peer)) = r {
                        self.datagram(&buf[..n], peer);
                        // take what else is queued before sending: one drain (and one timer
                        // re-arm) per burst instead of per datagram
                        for _ in 0..UDP_BATCH {
                            let Some(Ok((n, peer))) = self.udp.as_ref().map(|s| s.try_recv_from(&mut buf)) else {
                                break;
                            };
                            self.datagram(&buf[..n], peer);
                        }
                    }
                }
                r = recv_udp(&client_udp, &mut cbuf), if has_client_udp => {
                    if let Ok((n, peer)) = r {
                        self.client_datagram(&cbuf[..n], peer);
                    }
                }
                Some(i) = self.inbound_rx.recv() => {
                    self.inbound(i);
                    // like datagrams: take what else is queued before sending
                    for _ in 0..UDP_BATCH {
                        let Ok(i) = self.inbound_rx.try_recv() else {
                            break;
                        };
                        self.inbound(i);
                    }
                }
                c = self.cmd_rx.recv() => match c {
                    Some(c) => {
                        c(&mut self.core);
                        if self.core.is_stopped() {
                            break;
                        }
                        // like datagrams: run what else is queued, then send all their output
                        // together
                        for _ in 0..UDP_BATCH {
                            let Ok(c) = self.cmd_rx.try_recv() else {
                                break;
                            };
                            c(&mut self.core);
                            if self.core.is_stopped() {
                                break;
                            }
                        }
                        if self.core.is_stopped() {
                            break;
                        }
                    }
                    None => break,
                },
                r = accept(&self.tcp), if has_tcp => {
                    if let Ok((stream, peer)) = r {
                        let c = spawn_connection(stream, peer, &self.ctx);
                        self.conns.insert(Remote::tcp(peer), c);
                    }
                }
                r = accept(&self.tls), if has_tls => {
                    if let Ok((stream, peer)) = r {
                        self.accept_tls(stream, peer);
                    }
                }
                () = &mut sleep, if wake.is_some() => {
                    // fired: force a re-arm on the next turn even if the deadline stays the same
                    armed = None;
                    let (core_due, reap_due) = reap.fired(deadline, tokio::time::Instant::now());
                    if reap_due {
                        self.reap_idle();
                    }
                    if core_due {
                        self.core.handle_timeout(now());
                    }
                }
            }
            self.drain().await;
        }
    }

    fn datagram(&mut self, d: &[u8], peer: SocketAddr) {
        if is_keepalive(d) || self.answer_outside_client_port(d, peer) {
            return;
        }
        self.datagram_bytes(Bytes::copy_from_slice(d), peer, false);
    }

    /// A response from a peer of the client port that did not come to it: a UE with security
    /// associations answers only over them, i.e. to the protected client port (TS 33.203 §7.1),
    /// so it is dropped, as the kernel's IPsec policies would.
    /// The same for a response whose top Via names the client port (its request left from
    /// there toward a UE with SAs) from any other address: it comes back over the SA or not at
    /// all.
    fn answer_outside_client_port(&self, d: &[u8], peer: SocketAddr) -> bool {
        self.client.as_ref().is_some_and(|(c, _, by)| {
            d.starts_with(b"SIP/") && (c.serves(peer) || top_via_names(d, by))
        })
    }

    /// Over TCP/TLS: a response to a request sent from the client port (its top Via names
    /// that port) counts only when it arrives over a connection with one of the port's peers
    /// (the UE's protected server port, the SA's connection, TS 33.203 §7.1): a UE's answer
    /// on a connection of its own to our server port, or from another of its ports, is dropped.
    fn answer_outside_sa_connection(&self, m: &OwnedMessage, remote: &Remote) -> bool {
        self.client.as_ref().is_some_and(|(c, _, by)| {
            let b = m.bytes();
            b.starts_with(b"SIP/") && top_via_names(b, by) && !c.serves(remote.addr)
        })
    }

    /// A datagram on the client port: only its peers reach it (the UEs' protected server
    /// ports while their SAs last, TS 33.203 §7.1); anything else is dropped.
    fn client_datagram(&mut self, d: &[u8], peer: SocketAddr) {
        if is_keepalive(d) || !self.client.as_ref().is_some_and(|(c, _, _)| c.serves(peer)) {
            return;
        }
        self.datagram_bytes(Bytes::copy_from_slice(d), peer, false);
    }

    /// A datagram (from the socket, or handed over by a co-located endpoint: `local`).
    fn datagram_bytes(&mut self, bytes: Bytes, peer: SocketAddr, local: bool) {
        let msg = match OwnedMessage::parse_datagram_with(bytes.clone(), &self.parser) {
            Ok(m) => m,
            Err(e) => {
                let d = &bytes[..];
                // RFC 3261 §8.2.2 / §21.4.1: 400 with the reason in a Warning when a response can
                // be built; else (responses, ACKs, garbage) drop and count
                let answered = bad_request(d, &e.to_string(), &self.agent).is_some_and(|r| {
                    self.udp.as_ref().is_some_and(|s| {
                        self.stats.udp_send_calls.fetch_add(1, Ordering::Relaxed);
                        s.try_send_to(&r, peer).is_ok()
                    })
                });
                if answered {
                    self.stats.udp_sent.fetch_add(1, Ordering::Relaxed);
                }
                let c = if answered {
                    &self.stats.bad_answered
                } else {
                    &self.stats.bad_dropped
                };
                c.fetch_add(1, Ordering::Relaxed);
                return;
            }
        };
        self.received(msg, Remote::udp(peer), local);
    }

    fn received(&mut self, msg: OwnedMessage, remote: Remote, local: bool) {
        let msg = if msg.is_request() {
            fix_via(&msg, remote.addr, &self.parser).unwrap_or(msg)
        } else {
            msg
        };
        if local {
            self.core.receive_local(now(), msg, remote);
        } else {
            self.core.receive(now(), msg, remote);
        }
    }

    fn inbound(&mut self, i: Inbound) {
        match i {
            Inbound::Message(m, remote) => {
                if !self.answer_outside_sa_connection(&m, &remote) {
                    self.received(m, remote, false);
                }
            }
            Inbound::Datagram(b, from) => {
                self.stats.local_received.fetch_add(1, Ordering::Relaxed);
                if !is_keepalive(&b) {
                    self.datagram_bytes(b, from, true);
                }
            }
            Inbound::Parsed(m, from) => {
                self.stats.local_received.fetch_add(1, Ordering::Relaxed);
                // taken as parsed only when our own parse of its bytes would give it
                if m.is_datagram_parse_with(&self.parser) {
                    self.received(m, Remote::udp(from), true);
                } else {
                    self.datagram_bytes(m.bytes().clone(), from, true);
                }
            }
            Inbound::Opened(peer, w) => {
                // a connection opened for another domain than the one in `conns` stays in
                // `named` only
                let named = match &w.tls_name {
                    Some(Some(n)) => self
                        .named
                        .get(&(peer, n.clone()))
                        .is_some_and(|c| c.tx.same_channel(&w.tx)),
                    _ => false,
                };
                if !named {
                    self.conns.insert(peer, w);
                }
            }
            Inbound::Closed(peer, w) => {
                if self.conns.get(&peer).is_some_and(|c| c.tx.same_channel(&w)) {
                    self.conns.remove(&peer);
                }
                if !self.named.is_empty() {
                    self.named.retain(|_, c| !c.tx.same_channel(&w));
                }
            }
            Inbound::SendFailed(txns) => self.failed.extend(txns),
            Inbound::Malformed(m) => {
                let c = match m {
                    Malformed::Answered => &self.stats.bad_answered,
                    Malformed::Dropped => &self.stats.bad_dropped,
                    Malformed::FramingLost => &self.stats.framing_lost,
                };
                c.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Closes the TCP/TLS connections without traffic for the idle time (received bytes,
    /// RFC 5626 keep-alives included, or messages sent) that no live transaction uses.
    fn reap_idle(&mut self) {
        let Some(idle) = self.idle_timeout else {
            return;
        };
        let idle = u64::try_from(idle.as_millis()).unwrap_or(u64::MAX);
        let now = self.ctx.stamp();
        let stale: Vec<Remote> = self
            .conns
            .iter()
            .filter(|(_, c)| now.saturating_sub(c.active.load(Ordering::Relaxed)) >= idle)
            .map(|(r, _)| *r)
            .collect();
        if stale.is_empty() {
            return;
        }
        let busy = self.core.remotes_in_use();
        self.named.retain(|(r, _), c| {
            let keep =
                busy.contains(r) || now.saturating_sub(c.active.load(Ordering::Relaxed)) < idle;
            if !keep {
                c.close();
            }
            keep
        });
        for r in stale {
            if busy.contains(&r) {
                continue;
            }
            if let Some(c) = self.conns.remove(&r) {
                c.close();
                self.stats.idle_closed.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Sends what the core wants sent, until it has nothing more.
    async fn drain(&mut self) {
        loop {
            while let Some(t) = self.core.poll_transmit() {
                self.transmit(t).await;
            }
            self.flush_udp().await;
            if self.failed.is_empty() {
                break;
            }
            for txn in std::mem::take(&mut self.failed) {
                self.core.transport_error(now(), txn);
            }
        }
    }

    /// Sends the queued datagrams of the UDP socket, in order (failures to `failed`).
    async fn flush_udp(&mut self) {
        if self.udp_out.is_empty() {
            return;
        }
        let f = self
            .udp_out
            .flush(self.udp.as_deref(), &mut self.failed)
            .await;
        self.stats
            .udp_sent
            .fetch_add(f.datagrams, Ordering::Relaxed);
        self.stats
            .udp_send_calls
            .fetch_add(f.calls, Ordering::Relaxed);
    }

    /// A request to a peer of the client port leaves from it, its top Via naming that port
    /// (responses never do).
    /// `None`: not a peer of the client port; `Some(udp socket)`: one.
    fn via_client(&self, t: &mut Transmit) -> Option<Option<Arc<UdpSocket>>> {
        let (c, u, by) = self.client.as_ref()?;
        // responses go back the way their request came (our own port)
        if t.bytes.starts_with(b"SIP/") || !c.serves(t.remote.addr) {
            return None;
        }
        if let Some(b) = client_via(&t.bytes, &self.agent, by) {
            t.bytes = b;
        }
        Some(u.clone())
    }

    async fn transmit(&mut self, mut t: Transmit) {
        let client = if self.client.is_some() {
            self.via_client(&mut t)
        } else {
            None
        };
        match t.remote.transport {
            Transport::Udp if client.as_ref().is_some_and(|c| c.is_some()) => {
                let s = client.flatten().expect("checked");
                self.stats.udp_send_calls.fetch_add(1, Ordering::Relaxed);
                if s.send_to(&t.bytes, t.remote.addr).await.is_ok() {
                    self.stats.udp_sent.fetch_add(1, Ordering::Relaxed);
                } else {
                    self.failed.extend(t.txn);
                }
            }
            Transport::Udp => {
                // a co-located endpoint: the same bytes, in memory (parsed when the core has
                // the message)
                if let Some((links, from)) = &self.local {
                    let parsed = if links.has(t.remote.addr) {
                        self.core.sent_message(&t.bytes)
                    } else {
                        None
                    };
                    match links.hand_over(t.remote.addr, *from, t.bytes, parsed) {
                        None => {
                            self.stats.local_sent.fetch_add(1, Ordering::Relaxed);
                            return;
                        }
                        Some(b) => t.bytes = b,
                    }
                }
                // sent with the rest of this drain's datagrams (`flush_udp`)
                self.udp_out.push(super::udp::Datagram {
                    txn: t.txn,
                    to: t.remote.addr,
                    bytes: t.bytes,
                });
            }
            Transport::Tcp | Transport::Tls
                if (t.remote.transport == Transport::Tcp && self.tcp.is_some())
                    || (t.remote.transport == Transport::Tls && self.tls_config.is_some()) =>
            {
                // RFC 5922 §4.1: a request to a domain over TLS needs a connection whose
                // server certificate was checked against that domain
                let name = if t.remote.transport == Transport::Tls {
                    tls_server_name(&t.bytes)
                } else {
                    None
                };
                let o = Outbound {
                    txn: t.txn,
                    bytes: t.bytes,
                };
                let existing = match &name {
                    None => self.conns.get(&t.remote),
                    Some(n) => self
                        .conns
                        .get(&t.remote)
                        .filter(|c| c.serves(n))
                        .or_else(|| self.named.get(&(t.remote, n.clone()))),
                };
                let o = match existing {
                    Some(c) => match c.tx.send(o) {
                        Ok(()) => return,
                        // the connection went away: open a new one
                        Err(e) => e.0,
                    },
                    None => o,
                };
                let (tx, rx) = mpsc::unbounded_channel();
                let _ = tx.send(o);
                let (mut conn, closed) = Conn::new(tx, &self.ctx);
                let tls = if t.remote.transport == Transport::Tls {
                    conn.tls_name = Some(name.clone());
                    self.tls_config.clone().map(|c| (c, name.clone()))
                } else {
                    None
                };
                let live = self.conns.get(&t.remote).is_some_and(|c| !c.tx.is_closed());
                match name {
                    Some(n) if live => {
                        self.named.insert((t.remote, n), conn.clone());
                    }
                    _ => {
                        self.conns.insert(t.remote, conn.clone());
                    }
                }
                let bind = match (&client, &self.client) {
                    (Some(_), Some((c, _, _))) => Some(SocketAddr::new(self.ctx_ip(), c.port)),
                    _ => None,
                };
                spawn_connect(t.remote, tls, conn, closed, rx, &self.ctx, bind);
            }
            _ => self.failed.extend(t.txn),
        }
    }

    /// Our IP address (from the Via sent-by).
    fn ctx_ip(&self) -> IpAddr {
        self.agent
            .rsplit_once(':')
            .map(|(h, _)| h.trim_start_matches('[').trim_end_matches(']'))
            .and_then(|h| h.parse().ok())
            .unwrap_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED))
    }

    #[cfg(feature = "tls")]
    fn accept_tls(&mut self, stream: tokio::net::TcpStream, peer: SocketAddr) {
        if let Some(tls) = &self.tls_config {
            super::transport::spawn_tls_accept(stream, peer, tls.clone(), &self.ctx);
        }
    }

    #[cfg(not(feature = "tls"))]
    fn accept_tls(&mut self, stream: tokio::net::TcpStream, peer: SocketAddr) {
        let _ = (stream, peer);
    }
}

/// A request's bytes with `from` (our sent-by) replaced by `to` in its top Via; `None` for a
/// response or when the top Via does not name `from`.
fn client_via(bytes: &Bytes, from: &str, to: &str) -> Option<Bytes> {
    if bytes.starts_with(b"SIP/") {
        return None;
    }
    let head_end = find(bytes, b"\r\n\r\n").unwrap_or(bytes.len());
    let head = &bytes[..head_end];
    // the first Via line (compact form `v:` too)
    let mut at = 0;
    let mut line_start = None;
    while let Some(n) = find(&head[at..], b"\r\n") {
        let start = at + n + 2;
        let rest = &head[start..];
        if rest.len() >= 4
            && (rest[..4].eq_ignore_ascii_case(b"via:") || rest[..2].eq_ignore_ascii_case(b"v:"))
        {
            line_start = Some(start);
            break;
        }
        at = start;
    }
    let start = line_start?;
    let end = find(&head[start..], b"\r\n").map_or(head.len(), |e| start + e);
    let pos = start + find(&head[start..end], from.as_bytes())?;
    let mut out = Vec::with_capacity(bytes.len() + to.len());
    out.extend_from_slice(&bytes[..pos]);
    out.extend_from_slice(to.as_bytes());
    out.extend_from_slice(&bytes[pos + from.len()..]);
    Some(Bytes::from(out))
}

/// Whether the top Via's sent-by of a message (`v:` too) is `by` (`host:port`, not a prefix of
/// a longer port).
fn top_via_names(bytes: &[u8], by: &str) -> bool {
    let head = &bytes[..find(bytes, b"\r\n\r\n").unwrap_or(bytes.len())];
    let mut at = 0;
    while let Some(n) = find(&head[at..], b"\r\n") {
        let start = at + n + 2;
        let rest = &head[start..];
        let end = find(rest, b"\r\n").unwrap_or(rest.len());
        let line = &rest[..end];
        let value = if line.len() >= 4 && line[..4].eq_ignore_ascii_case(b"via:") {
            &line[4..]
        } else if line.len() >= 2 && line[..2].eq_ignore_ascii_case(b"v:") {
            &line[2..]
        } else {
            at = start;
            continue;
        };
        // `SIP/2.0/UDP host:port;...`: the sent-by follows the first blank after the protocol
        let value = value.trim_ascii_start();
        let Some(sp) = value.iter().position(|b| b.is_ascii_whitespace()) else {
            return false;
        };
        let sent_by = value[sp..].trim_ascii_start();
        return sent_by.len() >= by.len()
            && sent_by[..by.len()].eq_ignore_ascii_case(by.as_bytes())
            && !sent_by.get(by.len()).is_some_and(u8::is_ascii_digit);
    }
    false
}

fn find(h: &[u8], n: &[u8]) -> Option<usize> {
    h.windows(n.len()).position(|w| w == n)
}

#[cfg(test)]
mod client_port_tests {
    use super::{client_via, top_via_names};

    #[test]
    fn a_response_names_the_client_port_by_its_top_via_only() {
        let r = |via: &str| {
            format!("SIP/2.0 200 OK\r\n{via}\r\nVia: SIP/2.0/UDP 127.0.0.1:5066;branch=z9hG4bK-2\r\nCall-ID: x\r\n\r\n")
        };
        let names = |via: &str| top_via_names(r(via).as_bytes(), "127.0.0.1:5066");
        assert!(names("Via: SIP/2.0/UDP 127.0.0.1:5066;branch=z9hG4bK-1"));
        assert!(names("v:SIP/2.0/TCP  127.0.0.1:5066"));
        // another port, a longer one, and a second Via naming it do not count
        assert!(!names("Via: SIP/2.0/UDP 127.0.0.1:5064;branch=z9hG4bK-1"));
        assert!(!names("Via: SIP/2.0/UDP 127.0.0.1:50661;branch=z9hG4bK-1"));
        assert!(!top_via_names(
            b"SIP/2.0 200 OK\r\nCall-ID: x\r\n\r\n",
            "127.0.0.1:5066"
        ));
    }

    use bytes::Bytes;

    #[test]
    fn the_top_via_of_a_request_names_the_client_port() {
        let req = Bytes::from_static(
            b"INVITE sip:ue@10.0.0.2:5064 SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1\r\nVia: SIP/2.0/UDP 10.0.0.9:5060;branch=z9hG4bK0\r\nContent-Length: 0\r\n\r\n",
        );
        let out = client_via(&req, "10.0.0.1:5060", "10.0.0.1:5066").unwrap();
        let text = std::str::from_utf8(&out).unwrap();
        assert!(text.contains("Via: SIP/2.0/UDP 10.0.0.1:5066;branch=z9hG4bK1\r\n"));
        assert!(text.contains("Via: SIP/2.0/UDP 10.0.0.9:5060;branch=z9hG4bK0\r\n"));
        assert_eq!(out.len(), req.len());
        // responses and requests whose top Via is not ours are left alone
        let resp = Bytes::from_static(b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 10.0.0.1:5060\r\n\r\n");
        assert!(client_via(&resp, "10.0.0.1:5060", "10.0.0.1:5066").is_none());
        let other =
            Bytes::from_static(b"BYE sip:x SIP/2.0\r\nv: SIP/2.0/TCP 10.0.0.7:5060\r\n\r\n");
        assert!(client_via(&other, "10.0.0.1:5060", "10.0.0.1:5066").is_none());
    }
}

#[cfg(test)]
mod reap_tests {
    use super::Reap;
    use std::time::Duration;
    use tokio::time::Instant;

    proptest::proptest! {
        /// The loop's one timer, armed at `Reap::wake`, fires where the two timers it replaces
        /// fired: the core's timer exactly at each deadline the core asks for, the reaping
        /// interval every `period` from the start (an `Interval`'s ticks, kept on time; its
        /// first, immediate tick reaped nothing).
        #[test]
        fn one_timer_fires_at_the_core_deadlines_and_every_period(
            period_ms in 10u64..5000,
            deadlines in proptest::collection::vec(proptest::option::of(0u64..12_000), 0..24),
        ) {
            let period = Duration::from_millis(period_ms);
            let t0 = Instant::now();
            let mut now = t0;
            let mut reap = Reap::new(Some(period), t0);
            let mut reaps = Vec::new();
            for off in deadlines {
                // the core's next deadline, asked at `now` (unchanged until it is handled)
                let deadline = off.map(|o| now + Duration::from_millis(o));
                loop {
                    let wake = reap.wake(deadline).expect("a reaping is always due");
                    proptest::prop_assert!(wake >= now);
                    now = wake;
                    let (core_due, reap_due) = reap.fired(deadline, now);
                    proptest::prop_assert!(core_due || reap_due);
                    if reap_due {
                        reaps.push(now);
                    }
                    if core_due {
                        proptest::prop_assert_eq!(Some(now), deadline);
                        break;
                    }
                    if deadline.is_none() {
                        break;
                    }
                }
            }
            // the interval's ticks up to the last instant reached
            let mut want = Vec::new();
            let mut k = 1u32;
            while t0 + period * k <= now {
                want.push(t0 + period * k);
                k += 1;
            }
            proptest::prop_assert_eq!(reaps, want);
        }
    }

    #[test]
    fn without_an_idle_timeout_the_timer_is_the_cores() {
        let t0 = Instant::now();
        let mut reap = Reap::new(None, t0);
        assert_eq!(reap.wake(None), None);
        let d = t0 + Duration::from_millis(500);
        assert_eq!(reap.wake(Some(d)), Some(d));
        assert_eq!(reap.fired(Some(d), d), (true, false));
        assert_eq!(reap.wake(None), None);
    }
}

#[cfg(test)]
mod recv_tests {
    use super::{accept, recv_udp};
    use std::sync::Arc;
    use tokio::net::{TcpListener, UdpSocket};

    /// The driver's `recv_udp` (through `poll_recv_from`) gives what `recv_from` gives: each
    /// datagram whole, in order, with its source, an empty one and one cut to the buffer too;
    /// `accept` (through `poll_accept`) gives the connecting peer.
    #[tokio::test]
    async fn poll_receives_are_the_async_ones() {
        let a = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
        let b = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
        let to_a = a.local_addr().unwrap();
        let to_b = b.local_addr().unwrap();
        let sent: Vec<Vec<u8>> = vec![
            b"REGISTER sip:x SIP/2.0\r\n\r\n".to_vec(),
            Vec::new(),
            vec![7u8; 3000],
            b"\r\n\r\n".to_vec(),
        ];
        let sender = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let from = sender.local_addr().unwrap();
        for d in &sent {
            sender.send_to(d, to_a).await.unwrap();
            sender.send_to(d, to_b).await.unwrap();
        }
        let (mut x, mut y) = (vec![0u8; 2048], vec![0u8; 2048]);
        for _ in &sent {
            let (n, f) = recv_udp(&Some(a.clone()), &mut x).await.unwrap();
            let (m, g) = b.recv_from(&mut y).await.unwrap();
            assert_eq!((n, f), (m, g));
            assert_eq!(f, from);
            assert_eq!(x[..n], y[..m]);
        }
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let at = l.local_addr().unwrap();
        let c = tokio::net::TcpStream::connect(at).await.unwrap();
        let l = Some(l);
        let (_, peer) = accept(&l).await.unwrap();
        assert_eq!(peer, c.local_addr().unwrap());
    }
}
