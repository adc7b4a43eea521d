//! A transaction-stateful proxy on tokio: the sans-IO [`ims_txn::proxy::Proxy`] driven by the
//! same loop as the [`super::Endpoint`].
//!
//! The proxy core validates, handles Route/Record-Route, forks and picks the best response; the
//! application only decides where each request goes: it receives
//! [`ProxyEvent::Request`] on [`ProxyEvents`] and calls [`ProxyEndpoint::forward`] (or
//! [`ProxyEndpoint::reply`]), and relays [`ProxyEvent::Ack`] with
//! [`ProxyEndpoint::forward_stateless`]. See `examples/sip_proxy.rs`.

use super::driver::{self, Command, Core, Sockets};
use super::resolve::{locate, Dns, StaticDns};
use super::{EndpointConfig, NetError};
use bytes::Bytes;
use ims_sip::{Message, Method, OwnedMessage, ResponseBuilder};
use ims_txn::proxy::{
    stateless_request, stateless_response, Edits, ForkMode, Proxy, ProxyConfig, ProxyEvent,
    ProxyOutput, Target,
};
use ims_txn::{Config, Input, Remote, Transmit, Transport, TxnId};
use std::collections::{HashMap, VecDeque};
use std::hash::{Hash, Hasher};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::{mpsc, oneshot};

/// Routing requests and 2xx ACKs from the proxy core, for the application to decide.
#[derive(Debug)]
pub struct ProxyEvents {
    rx: mpsc::UnboundedReceiver<ProxyEvent>,
}

impl ProxyEvents {
    /// The next event; `None` once the proxy has stopped.
    pub async fn recv(&mut self) -> Option<ProxyEvent> {
        self.rx.recv().await
    }
}

/// A SIP proxy on UDP, TCP and/or TLS: transaction-stateful ([`ProxyEndpoint::bind`]) or
/// stateless ([`ProxyEndpoint::bind_stateless`]). Cheap to clone.
#[derive(Clone)]
pub struct ProxyEndpoint {
    tx: mpsc::UnboundedSender<Command<ProxyCore>>,
    local: SocketAddr,
    tls_local: Option<SocketAddr>,
    uri: String,
    transports: Vec<Transport>,
    dns: Arc<dyn Dns>,
    stats: Arc<driver::Stats>,
}

impl std::fmt::Debug for ProxyEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProxyEndpoint")
            .field("local", &self.local)
            .field("uri", &self.uri)
            .finish()
    }
}

impl ProxyEndpoint {
    /// Binds and starts a proxy. `record_route` inserts the proxy in the route set of dialogs
    /// (RFC 3261 §16.6 step 4), so in-dialog requests come through it too.
    pub async fn bind(
        cfg: EndpointConfig,
        record_route: bool,
    ) -> Result<(ProxyEndpoint, ProxyEvents), NetError> {
        Self::bind_with_dns(cfg, record_route, Arc::new(StaticDns::default())).await
    }

    /// As [`ProxyEndpoint::bind`], with the DNS used by [`ProxyEndpoint::locate`].
    pub async fn bind_with_dns(
        cfg: EndpointConfig,
        record_route: bool,
        dns: Arc<dyn Dns>,
    ) -> Result<(ProxyEndpoint, ProxyEvents), NetError> {
        Self::start(cfg, record_route, dns, None).await
    }

    /// Binds and starts a stateless proxy (RFC 3261 §16.11): no transaction, no event for the
    /// application. Each request is checked (§16.3, Max-Forwards), routed — to the first
    /// contact in `locations` of its Request-URI user when it is out of dialog or addressed to
    /// this proxy, else to its next hop (top Route, else Request-URI, which must then hold an IP
    /// address: no DNS on this path) — and sent with a Via whose branch is a hash of the
    /// received one (§16.11's recommended procedure), so a retransmission, and the CANCEL or
    /// non-2xx ACK of an INVITE, get the INVITE's branch. Responses go to the next Via (§18.2.2
    /// with `received`/`rport`). Errors are answered statelessly (404 for an unknown user, 483,
    /// the §16.3 codes). A stateless proxy never forks: the first location is used.
    pub async fn bind_stateless(
        cfg: EndpointConfig,
        record_route: bool,
        locations: Locations,
    ) -> Result<ProxyEndpoint, NetError> {
        let (p, _events) = Self::start(
            cfg,
            record_route,
            Arc::new(StaticDns::default()),
            Some(locations),
        )
        .await?;
        Ok(p)
    }

    async fn start(
        cfg: EndpointConfig,
        record_route: bool,
        dns: Arc<dyn Dns>,
        stateless: Option<Locations>,
    ) -> Result<(ProxyEndpoint, ProxyEvents), NetError> {
        let sockets = Sockets::bind(&cfg).await?;
        let sent_by = sockets.sent_by();
        let uri = if sockets.tls_only() {
            format!("sips:{sent_by}")
        } else if sockets.udp.is_none() {
            format!("sip:{sent_by};transport=tcp")
        } else {
            format!("sip:{sent_by}")
        };
        let host = sent_by
            .rsplit_once(':')
            .map_or(sent_by.as_str(), |(h, _)| h)
            .to_owned();
        let pcfg = ProxyConfig {
            layer: Config {
                timers: cfg.timers,
                merged_request_detection: false,
            },
            uri: uri.clone(),
            tls_sent_by: sockets.tls_sent_by(),
            sent_by,
            local_hosts: vec![host],
            record_route,
            ..ProxyConfig::default()
        };
        let transports = sockets.transports();
        let local = sockets.local;
        let tls_local = sockets.tls_local;
        let (ev_tx, ev_rx) = mpsc::unbounded_channel();
        let core = ProxyCore {
            stateless: stateless.map(|locations| Stateless {
                cfg: pcfg.clone(),
                locations,
                local,
                tls_local,
                out: VecDeque::new(),
            }),
            proxy: Proxy::new(pcfg),
            events: ev_tx,
            stopped: false,
        };
        let mut core = core;
        if cfg.local.is_some() {
            // messages to co-located endpoints go over in parsed form (a burst of outputs of
            // one input is drained before the next input, so a few suffice)
            core.proxy.keep_sent(SENT_KEPT);
        }
        let (tx, stats) = driver::spawn(core, sockets, &cfg);
        Ok((
            ProxyEndpoint {
                tx,
                local,
                tls_local,
                uri,
                transports,
                dns,
                stats,
            },
            ProxyEvents { rx: ev_rx },
        ))
    }

    /// Received messages that could not be parsed: (answered 400, dropped).
    pub fn malformed(&self) -> (u64, u64) {
        self.stats.malformed()
    }

    /// Transport counters: unparsable messages answered or dropped, connections closed for lost
    /// framing or idleness.
    pub fn transport_stats(&self) -> driver::TransportStats {
        self.stats.snapshot()
    }

    /// The local address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// The TLS listener's address when it is not the UDP/TCP one (a mixed endpoint).
    pub fn tls_addr(&self) -> Option<SocketAddr> {
        self.tls_local.filter(|a| *a != self.local)
    }

    /// Our URI (as it goes in Record-Route, without `;lr`).
    pub fn uri(&self) -> &str {
        &self.uri
    }

    /// RFC 3263 server location over the transports of this proxy.
    pub async fn locate(&self, uri: &str) -> Result<Vec<Remote>, NetError> {
        locate(&*self.dns, uri, &self.transports).await
    }

    async fn call<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Proxy, Instant) -> Result<T, NetError> + Send + 'static,
    ) -> Result<T, NetError> {
        let (tx, rx) = oneshot::channel::<Result<T, NetError>>();
        let cmd: Command<ProxyCore> = Box::new(move |core: &mut ProxyCore| {
            let _ = tx.send(f(&mut core.proxy, driver::now()));
        });
        self.tx.send(cmd).map_err(|_| NetError::Closed)?;
        rx.await.map_err(|_| NetError::Closed)?
    }

    /// Queues `f` for the proxy task without waiting for it: an error of `f` comes out as
    /// [`ProxyEvent::Failed`] on [`ProxyEvents`] (no oneshot channel, no wake-up of the caller).
    fn post(
        &self,
        server: Option<TxnId>,
        f: impl FnOnce(&mut Proxy, Instant) -> Result<(), ims_txn::TxnError> + Send + 'static,
    ) -> Result<(), NetError> {
        let cmd: Command<ProxyCore> = Box::new(move |core: &mut ProxyCore| {
            if let Err(error) = f(&mut core.proxy, driver::now()) {
                let _ = core.events.send(ProxyEvent::Failed { server, error });
            }
        });
        self.tx.send(cmd).map_err(|_| NetError::Closed)
    }

    /// [`ProxyEndpoint::forward`] without waiting: returns once the command is queued
    /// (`Err(NetError::Closed)` when the proxy has stopped); a failure comes as
    /// [`ProxyEvent::Failed`] with `server`. Commands run in the order they are posted or
    /// called, so a later `forward`, `reply`... sees this one done.
    pub fn post_forward(
        &self,
        server: TxnId,
        targets: Vec<Target>,
        mode: ForkMode,
    ) -> Result<(), NetError> {
        self.post(Some(server), move |p, now| {
            p.forward(now, server, targets, mode)
        })
    }

    /// [`ProxyEndpoint::forward_with`] without waiting, as [`ProxyEndpoint::post_forward`].
    pub fn post_forward_with(
        &self,
        server: TxnId,
        targets: Vec<(Target, Edits)>,
        mode: ForkMode,
    ) -> Result<(), NetError> {
        self.post(Some(server), move |p, now| {
            p.forward_with(now, server, targets, mode)
        })
    }

    /// [`ProxyEndpoint::respond`] without waiting, as [`ProxyEndpoint::post_forward`].
    pub fn post_respond(&self, server: TxnId, response: OwnedMessage) -> Result<(), NetError> {
        self.post(Some(server), move |p, now| p.respond(now, server, response))
    }

    /// [`ProxyEndpoint::reply`] without waiting, as [`ProxyEndpoint::post_forward`].
    pub fn post_reply(&self, server: TxnId, status: u16) -> Result<(), NetError> {
        self.post(Some(server), move |p, now| p.reply(now, server, status))
    }

    /// [`ProxyEndpoint::forward_stateless`] without waiting: a failure comes as
    /// [`ProxyEvent::Failed`] without a server transaction.
    pub fn post_forward_stateless(&self, msg: OwnedMessage, to: Remote) -> Result<(), NetError> {
        self.post(None, move |p, _| p.forward_stateless(&msg, to))
    }

    /// Forwards the request of server transaction `server` to a target set (RFC 3261 §16.6),
    /// in parallel or one by one.
    pub async fn forward(
        &self,
        server: TxnId,
        targets: Vec<Target>,
        mode: ForkMode,
    ) -> Result<(), NetError> {
        self.call(move |p, now| Ok(p.forward(now, server, targets, mode)?))
            .await
    }

    /// [`ProxyEndpoint::forward`] with per-target [`Edits`] (Route, header additions and
    /// removals) applied to each forwarded copy.
    pub async fn forward_with(
        &self,
        server: TxnId,
        targets: Vec<(Target, Edits)>,
        mode: ForkMode,
    ) -> Result<(), NetError> {
        self.call(move |p, now| Ok(p.forward_with(now, server, targets, mode)?))
            .await
    }

    /// Answers a request the proxy does not forward with a response the application built (a
    /// registrar's 401 or 200).
    pub async fn respond(&self, server: TxnId, response: OwnedMessage) -> Result<(), NetError> {
        self.call(move |p, now| Ok(p.respond(now, server, response)?))
            .await
    }

    /// Answers a request the proxy does not forward (404, 403, ...).
    pub async fn reply(&self, server: TxnId, status: u16) -> Result<(), NetError> {
        self.call(move |p, now| Ok(p.reply(now, server, status)?))
            .await
    }

    /// Drops the request of server transaction `server` unanswered
    /// ([`ims_txn::proxy::Proxy::discard`]).
    pub async fn discard(&self, server: TxnId) -> Result<(), NetError> {
        self.call(move |p, now| Ok(p.discard(now, server)?)).await
    }

    /// Forwards an ACK for a 2xx (no transaction, RFC 3261 §16.11).
    pub async fn forward_stateless(&self, msg: OwnedMessage, to: Remote) -> Result<(), NetError> {
        self.call(move |p, _| Ok(p.forward_stateless(&msg, to)?))
            .await
    }

    /// Gives up the INVITE of server transaction `server`: its branches are cancelled (with
    /// `reason` as their Reason header) and it is answered with `status`
    /// ([`ims_txn::proxy::Proxy::cancel`]).
    pub async fn cancel(
        &self,
        server: TxnId,
        status: u16,
        reason: Option<String>,
    ) -> Result<(), NetError> {
        self.call(move |p, now| Ok(p.cancel(now, server, status, reason.as_deref())?))
            .await
    }

    /// Sets (or clears) a filter rewriting the responses relayed upstream
    /// ([`ims_txn::proxy::ResponseFilter`]).
    pub async fn set_response_filter(
        &self,
        filter: Option<ims_txn::proxy::ResponseFilter>,
    ) -> Result<(), NetError> {
        self.call(move |p, _| {
            p.set_response_filter(filter);
            Ok(())
        })
        .await
    }

    /// Number of live response contexts (server transactions being proxied).
    pub async fn contexts(&self) -> Result<usize, NetError> {
        self.call(|p, _| Ok(p.contexts())).await
    }

    /// Stops the proxy task.
    pub fn shutdown(&self) {
        let _ = self.tx.send(Box::new(|c: &mut ProxyCore| c.stopped = true));
    }

    /// [`ProxyEndpoint::discard`] without waiting, as [`ProxyEndpoint::post_forward`].
    pub fn post_discard(&self, server: TxnId) -> Result<(), NetError> {
        self.post(Some(server), move |p, now| p.discard(now, server))
    }
}

/// The proxy core and its event channel.
pub(crate) struct ProxyCore {
    proxy: Proxy,
    /// Set in stateless mode: the proxy core above is then unused.
    stateless: Option<Stateless>,
    events: mpsc::UnboundedSender<ProxyEvent>,
    stopped: bool,
}

/// The stateless proxy (RFC 3261 §16.11).
struct Stateless {
    cfg: ProxyConfig,
    locations: Locations,
    local: SocketAddr,
    tls_local: Option<SocketAddr>,
    out: VecDeque<Transmit>,
}

/// §16.11: "the first component of the branch ID of the outgoing request is computed as a hash
/// of the received branch ID" when it has the magic cookie, else of the top Via, To tag, From
/// tag, Call-ID, CSeq number and Request-URI. The method is left out so that a CANCEL and a
/// non-2xx ACK (same received branch as their INVITE) get the INVITE's branch.
fn rfc_stateless_branch(m: &Message<'_>) -> String {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    let top = m.top_via().ok().flatten();
    match top.as_ref().and_then(|v| v.branch()) {
        Some(b) if b.starts_with("z9hG4bK") => b.hash(&mut h),
        _ => {
            top.map(|v| v.to_string()).hash(&mut h);
            m.to_tag().hash(&mut h);
            m.from_tag().hash(&mut h);
            m.header(ims_sip::HeaderName::CallId).hash(&mut h);
            m.cseq().ok().flatten().map(|c| c.seq).hash(&mut h);
            m.request_uri_str().hash(&mut h);
        }
    }
    format!("z9hG4bKsl{:016x}", h.finish())
}

fn uri_remote(uri: &str) -> Option<Remote> {
    let u = ims_sip::Uri::parse(uri).ok()?;
    let s = u.as_sip()?;
    let ip = s
        .maddr()
        .and_then(|m| m.trim_matches(['[', ']']).parse::<IpAddr>().ok());
    let ip = ip.or_else(|| s.host().ip())?;
    let transport = match s.transport() {
        Some(t) => Transport::from_token(t)?,
        None if s.is_secure() => Transport::Tls,
        None => Transport::Udp,
    };
    let port = s.port().unwrap_or(if transport == Transport::Tls {
        5061
    } else {
        5060
    });
    Some(Remote {
        transport,
        addr: SocketAddr::new(ip, port),
    })
}

impl Stateless {
    fn reply(&mut self, m: &Message<'_>, remote: Remote, status: u16) {
        if m.method() == Some(Method::Ack) {
            return;
        }
        let bytes = ResponseBuilder::from_request(m, status)
            .header("Content-Length", 0)
            .to_vec();
        self.out.push_back(Transmit {
            txn: None,
            remote,
            bytes: Bytes::from(bytes),
        });
    }

    fn is_us(&self, uri: &str) -> bool {
        user_and_hostport(uri)
            .is_some_and(|(_, a)| a.is_some() && (a == Some(self.local) || a == self.tls_local))
    }

    fn receive(&mut self, msg: OwnedMessage, remote: Remote) {
        let m = msg.as_message();
        if !m.is_request() {
            // §16.11: responses follow the Via (the top one must be ours)
            if let Some((bytes, (t, host, port))) = stateless_response(&self.cfg, &m) {
                let ip = host.trim_matches(['[', ']']).parse::<IpAddr>().ok();
                if let (Some(ip), Some(transport)) = (ip, Transport::from_token(&t)) {
                    self.out.push_back(Transmit {
                        txn: None,
                        remote: Remote {
                            transport,
                            addr: SocketAddr::new(ip, port),
                        },
                        bytes: Bytes::from(bytes),
                    });
                }
            }
            return;
        }
        let ruri = m.request_uri_str().unwrap_or_default().to_owned();
        // the next hop after our own Route entry (which §16.4 removes)
        let routes: Vec<String> = m
            .headers_of(ims_sip::HeaderName::Route)
            .flat_map(|h| split_routes(h.value()))
            .collect();
        let next_hop = routes
            .iter()
            .find(|r| !self.is_us(r))
            .cloned()
            .unwrap_or_else(|| ruri.clone());
        let initial = m.to_tag().is_none();
        let (target_uri, to) =
            if (initial && routes.iter().all(|r| self.is_us(r))) || self.is_us(&next_hop) {
                let Some((user, _)) = user_and_hostport(&ruri) else {
                    return self.reply(&m, remote, 416);
                };
                let Some(r) = self.locations.lookup(&user).first().copied() else {
                    return self.reply(&m, remote, 404);
                };
                (Some(target_uri(&user, &r)), r)
            } else {
                match uri_remote(&next_hop) {
                    Some(r) => (None, r),
                    None => return self.reply(&m, remote, 404),
                }
            };
        match stateless_request(&self.cfg, &m, target_uri.as_deref(), to.transport) {
            Err(status) => self.reply(&m, remote, status),
            Ok(bytes) => {
                // the Via the core pushed gets the RFC 3261 §16.11 branch
                let Ok(fwd) = OwnedMessage::parse_datagram(Bytes::from(bytes)) else {
                    return;
                };
                let fm = fwd.as_message();
                let mut e = fm.edit();
                e.pop_via();
                e.push_via(format!(
                    "SIP/2.0/{} {};branch={}",
                    to.transport.as_str(),
                    self.cfg.sent_by_for(to.transport),
                    rfc_stateless_branch(&m)
                ));
                self.out.push_back(Transmit {
                    txn: None,
                    remote: to,
                    bytes: Bytes::from(e.to_vec()),
                });
            }
        }
    }
}

/// The URIs of a Route header value (`<uri>;params, <uri>`).
fn split_routes(v: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = v;
    while let Some(a) = rest.find('<') {
        let Some(b) = rest[a..].find('>') else { break };
        out.push(rest[a + 1..a + b].to_owned());
        rest = &rest[a + b + 1..];
    }
    out
}

/// How many sent messages a proxy keeps for the in-process hand-off.
const SENT_KEPT: usize = 16;

impl Core for ProxyCore {
    fn poll_timeout(&self) -> Option<Instant> {
        self.proxy.poll_timeout()
    }
    fn sent_message(&self, bytes: &Bytes) -> Option<OwnedMessage> {
        self.proxy.layer().sent_message(bytes).cloned()
    }
    fn handle_timeout(&mut self, now: Instant) {
        self.proxy.handle_timeout(now);
    }
    fn receive(&mut self, now: Instant, msg: OwnedMessage, remote: Remote) {
        match &mut self.stateless {
            Some(s) => s.receive(msg, remote),
            None => {
                let _ = self.proxy.receive(now, msg, remote);
            }
        }
    }
    fn receive_local(&mut self, now: Instant, msg: OwnedMessage, remote: Remote) {
        match &mut self.stateless {
            Some(s) => s.receive(msg, remote),
            // a co-located role checked the syntax: only this proxy's own rules apply
            None => {
                let _ = self.proxy.receive_checked(now, msg, remote);
            }
        }
    }
    fn transport_error(&mut self, now: Instant, txn: TxnId) {
        let _ = self.proxy.handle_input(now, Input::TransportError { txn });
    }
    fn is_stopped(&self) -> bool {
        self.stopped
    }
    fn remotes_in_use(&self) -> std::collections::HashSet<Remote> {
        self.proxy.layer().remotes().collect()
    }
    fn set_lossless(&mut self, peers: ims_txn::LosslessPeers) {
        self.proxy.set_lossless(peers);
    }
    fn poll_transmit(&mut self) -> Option<Transmit> {
        if let Some(t) = self.stateless.as_mut().and_then(|s| s.out.pop_front()) {
            return Some(t);
        }
        loop {
            match self.proxy.poll_output()? {
                ProxyOutput::Transmit(t) => return Some(t),
                ProxyOutput::Event(e) => {
                    let _ = self.events.send(e);
                }
            }
        }
    }
}

/// A static location service: where the users of the domain are (RFC 3261 §16.5 "abstract
/// location service"), with a default for unknown users. Enough for tests, demos and a fixed
/// deployment; a registrar-backed one is the application's.
#[derive(Debug, Clone, Default)]
pub struct Locations {
    users: HashMap<String, Vec<Remote>>,
    default: Vec<Remote>,
}

impl Locations {
    /// Registers `user` at one or more contacts (several: parallel forking).
    pub fn add(&mut self, user: &str, at: Vec<Remote>) -> &mut Self {
        self.users.insert(user.to_owned(), at);
        self
    }
    /// Where users not listed go.
    pub fn set_default(&mut self, at: Vec<Remote>) -> &mut Self {
        self.default = at;
        self
    }
    /// The contacts of `user`.
    pub fn lookup(&self, user: &str) -> &[Remote] {
        self.users.get(user).map_or(&self.default, |v| v)
    }
}

fn user_and_hostport(uri: &str) -> Option<(String, Option<SocketAddr>)> {
    let u = ims_sip::Uri::parse(uri).ok()?;
    let s = u.as_sip()?;
    let user = s.user().unwrap_or("").to_owned();
    let addr = s
        .host()
        .ip()
        .map(|ip| SocketAddr::new(ip, s.port().unwrap_or(5060)));
    Some((user, addr))
}

fn target_uri(user: &str, r: &Remote) -> String {
    let t = if r.transport == Transport::Udp {
        String::new()
    } else {
        format!(";transport={}", r.transport.as_str().to_ascii_lowercase())
    };
    if user.is_empty() {
        format!("sip:{}{t}", r.addr)
    } else {
        format!("sip:{user}@{}{t}", r.addr)
    }
}

impl ProxyEndpoint {
    /// Where a request or ACK goes: a request addressed to us (the Request-URI or remaining
    /// Route names this proxy, as a UA that ignores Record-Route does) or without a To tag is
    /// retargeted through `locations` by the Request-URI user; anything else follows
    /// `next_hop_uri` (RFC 3263).
    async fn route(
        &self,
        locations: &Locations,
        msg: &OwnedMessage,
        next_hop_uri: &str,
    ) -> Result<Vec<Target>, NetError> {
        let m = msg.as_message();
        let initial = m.to_tag().is_none();
        let ruri = m.request_uri_str().unwrap_or_default().to_owned();
        let to_us = user_and_hostport(next_hop_uri)
            .is_some_and(|(_, a)| a.is_some() && (a == Some(self.local) || a == self.tls_local));
        if initial || to_us {
            let (user, _) =
                user_and_hostport(&ruri).ok_or_else(|| NetError::BadUri(ruri.clone()))?;
            let at = locations.lookup(&user);
            if at.is_empty() {
                return Err(NetError::NotFound(ruri));
            }
            return Ok(at
                .iter()
                .map(|r| Target {
                    uri: Some(target_uri(&user, r)),
                    remote: *r,
                })
                .collect());
        }
        let hop = self.locate(next_hop_uri).await?;
        Ok(hop
            .into_iter()
            .take(1)
            .map(|remote| Target { uri: None, remote })
            .collect())
    }

    /// Runs the routing loop until the proxy stops: requests go to the [`Locations`] entry of
    /// their Request-URI user (several contacts: parallel forking) or along their Route/
    /// Request-URI (see `route`), unknown users get 404, ACKs for 2xx are relayed statelessly.
    pub async fn serve(&self, mut events: ProxyEvents, locations: Locations) {
        while let Some(ev) = events.recv().await {
            match ev {
                ProxyEvent::Request {
                    server,
                    msg,
                    next_hop_uri,
                    ..
                } => match self.route(&locations, &msg, &next_hop_uri).await {
                    Ok(targets) => {
                        let _ = self.forward(server, targets, ForkMode::Parallel).await;
                    }
                    Err(NetError::NotFound(_)) => {
                        let _ = self.reply(server, 404).await;
                    }
                    Err(_) => {
                        let _ = self.reply(server, 416).await;
                    }
                },
                ProxyEvent::Ack { msg, next_hop_uri } => {
                    if let Ok(t) = self.route(&locations, &msg, &next_hop_uri).await {
                        if let Some(t) = t.into_iter().next() {
                            let msg = match &t.uri {
                                Some(u) => {
                                    let m = msg.as_message();
                                    let mut e = m.edit();
                                    e.set_request_uri(u);
                                    e.to_owned_message().unwrap_or(msg.clone())
                                }
                                None => msg,
                            };
                            let _ = self.forward_stateless(msg, t.remote).await;
                        }
                    }
                }
                _ => {}
            }
        }
    }
}
