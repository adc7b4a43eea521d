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
use ims_txn::proxy::{ForkMode, Proxy, ProxyConfig, ProxyEvent, ProxyOutput, Target};
use ims_txn::{Config, Input, Remote, Transmit, Transport, TxnId};
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
        let _ = self
            .tx
            .send(Box::new(|c: &mut ProxyCore| c.stopped = true));
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
