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
use ims_sip::OwnedMessage;
use ims_txn::proxy::{Edits, ForkMode, Proxy, ProxyConfig, ProxyEvent, ProxyOutput, Target};
use ims_txn::{Config, Input, Remote, Transmit, Transport, TxnId};
use std::collections::HashMap;
use std::net::SocketAddr;
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

/// A stateful SIP proxy on UDP and/or TCP. Cheap to clone.
#[derive(Clone)]
pub struct ProxyEndpoint {
    tx: mpsc::UnboundedSender<Command<ProxyCore>>,
    local: SocketAddr,
    uri: String,
    transports: Vec<Transport>,
    dns: Arc<dyn Dns>,
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
        let sockets = Sockets::bind(&cfg).await?;
        let sent_by = sockets.sent_by();
        let uri = if sockets.udp.is_none() {
            format!("sip:{sent_by};transport=tcp")
        } else {
            format!("sip:{sent_by}")
        };
        let host = sent_by
            .rsplit_once(':')
            .map_or(sent_by.as_str(), |(h, _)| h)
            .to_owned();
        let proxy = Proxy::new(ProxyConfig {
            layer: Config {
                timers: cfg.timers,
                merged_request_detection: false,
            },
            uri: uri.clone(),
            sent_by,
            local_hosts: vec![host],
            record_route,
            ..ProxyConfig::default()
        });
        let transports = sockets.transports();
        let local = sockets.local;
        let (ev_tx, ev_rx) = mpsc::unbounded_channel();
        let core = ProxyCore {
            proxy,
            events: ev_tx,
            stopped: false,
        };
        let tx = driver::spawn(core, sockets, &cfg);
        Ok((
            ProxyEndpoint {
                tx,
                local,
                uri,
                transports,
                dns,
            },
            ProxyEvents { rx: ev_rx },
        ))
    }

    /// The local address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
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

    /// Forwards an ACK for a 2xx (no transaction, RFC 3261 §16.11).
    pub async fn forward_stateless(&self, msg: OwnedMessage, to: Remote) -> Result<(), NetError> {
        self.call(move |p, _| Ok(p.forward_stateless(&msg, to)?))
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
}

/// The proxy core and its event channel.
pub(crate) struct ProxyCore {
    proxy: Proxy,
    events: mpsc::UnboundedSender<ProxyEvent>,
    stopped: bool,
}

impl Core for ProxyCore {
    fn poll_timeout(&self) -> Option<Instant> {
        self.proxy.poll_timeout()
    }
    fn handle_timeout(&mut self, now: Instant) {
        self.proxy.handle_timeout(now);
    }
    fn receive(&mut self, now: Instant, msg: OwnedMessage, remote: Remote) {
        let _ = self.proxy.receive(now, msg, remote);
    }
    fn transport_error(&mut self, now: Instant, txn: TxnId) {
        let _ = self.proxy.handle_input(now, Input::TransportError { txn });
    }
    fn is_stopped(&self) -> bool {
        self.stopped
    }
    fn poll_transmit(&mut self) -> Option<Transmit> {
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
        let initial = m.to().ok().flatten().and_then(|t| t.tag()).is_none();
        let ruri = m.request_uri_str().unwrap_or_default().to_owned();
        let to_us = user_and_hostport(next_hop_uri).is_some_and(|(_, a)| a == Some(self.local));
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
