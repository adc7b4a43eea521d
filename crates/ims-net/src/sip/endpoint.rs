//! The SIP endpoint: one tokio task that owns the sans-IO UA core ([`ims_txn::ua::UserAgent`],
//! which owns the [`ims_txn::TransactionLayer`]) and the sockets, and handles that talk to it.

use super::driver::{self, Command, Core, Sockets};
use super::resolve::{locate, Dns, StaticDns, Target};
use super::NetError;
use bytes::Bytes;
use ims_sip::headers::ViaHead;
use ims_sip::{Method, OwnedMessage, ParserConfig};
use ims_txn::dialog::{Dialog, DialogId};
use ims_txn::ua::{Answer, InviteParams, UaConfig, UaEvent, UaOutput, UserAgent};
use ims_txn::{Config, Input, Remote, TimerConfig, Transmit, Transport, TxnId};
use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

/// Settings of an [`Endpoint`].
#[derive(Debug, Clone)]
pub struct EndpointConfig {
    /// Local address; port 0 picks a free port (the same one for UDP and TCP).
    pub addr: SocketAddr,
    /// Listen and send on UDP.
    pub udp: bool,
    /// Listen and send on TCP.
    pub tcp: bool,
    /// User part of our Contact (`sip:<user>@<addr>`).
    pub user: String,
    /// RFC 3261 timers (T1, T2, T4, ...).
    pub timers: TimerConfig,
    /// Offer and honour reliable provisional responses (RFC 3262 `100rel`).
    pub reliable_provisional: bool,
    /// Session interval asked for in INVITE (RFC 4028), `None` for none.
    pub session_expires: Option<u32>,
    /// A request larger than this goes over TCP instead of UDP (RFC 3261 §18.1.1: 1300 bytes
    /// when the path MTU is unknown).
    pub mtu_limit: usize,
    /// Idle time after which a CRLFCRLF keep-alive ping is sent on a TCP flow (RFC 5626
    /// §4.4.1), `None` for none.
    pub keepalive: Option<Duration>,
    /// Parser limits and leniency for received messages.
    pub parser: ParserConfig,
    /// A TCP or TLS connection that neither received bytes (RFC 5626 keep-alives count) nor sent
    /// a message for this long, and that no live transaction (nor, for an [`Endpoint`], dialog)
    /// uses, is closed; `None` keeps
    /// connections until the peer closes them. Default 300 s (above RFC 5626's 95–120 s
    /// keep-alive interval for connection-oriented flows).
    pub idle_timeout: Option<Duration>,
    /// SIP over TLS (RFC 3261 §26.2; `sips:` URIs and `transport=tls`): with a server identity
    /// the endpoint also listens for TLS, on the UDP port when `tcp` is off (a TLS-only endpoint
    /// when `udp` is off too: its Contact is `sips:`), else on the next port (5061 beside 5060)
    /// or, with port 0, on a free one ([`Endpoint::tls_addr`]); requests to a
    /// [`Transport::Tls`] remote open (and reuse) a TLS flow. Feature `tls`.
    #[cfg(feature = "tls")]
    pub tls: Option<crate::tls::TlsConfig>,
    /// A second local port that requests to some peers leave from (and their responses come
    /// back to): the protected client port of a P-CSCF (TS 33.203 §7.1), `None` for none.
    pub client_port: Option<ClientPort>,
    /// Co-located endpoints this one hands its UDP datagrams to in memory (and receives from),
    /// see [`super::LocalLinks`]; `None` (the default) sends everything on the sockets.
    pub local: Option<super::LocalLinks>,
}

/// A local port, beside the endpoint's own, that requests to the peers in [`Self::peers`] are
/// sent from: over UDP from a socket bound to it (the peers' responses arrive there too), over
/// TCP on a connection bound to it (one per peer). The top Via of those requests names this
/// port. The set is shared: the application adds and removes peers as it goes (a P-CSCF: the
/// UEs' protected server ports while their security associations last).
#[derive(Debug, Clone)]
pub struct ClientPort {
    /// The port (on the endpoint's IP address).
    pub port: u16,
    /// The peers reached from it.
    pub peers: std::sync::Arc<std::sync::RwLock<std::collections::HashSet<SocketAddr>>>,
}

impl ClientPort {
    /// `port`, with no peer yet.
    pub fn new(port: u16) -> ClientPort {
        ClientPort {
            port,
            peers: Default::default(),
        }
    }

    /// True when requests to `peer` leave from this port.
    pub fn serves(&self, peer: SocketAddr) -> bool {
        self.peers
            .read()
            .map(|p| p.contains(&peer))
            .unwrap_or(false)
    }
}

impl Default for EndpointConfig {
    fn default() -> Self {
        EndpointConfig {
            addr: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0),
            udp: true,
            tcp: true,
            user: "ims".into(),
            timers: TimerConfig::default(),
            reliable_provisional: true,
            session_expires: None,
            mtu_limit: 1300,
            keepalive: None,
            parser: ParserConfig::default(),
            idle_timeout: Some(Duration::from_secs(300)),
            #[cfg(feature = "tls")]
            tls: None,
            client_port: None,
            local: None,
        }
    }
}

/// The responses to one request: every provisional response, then the final one (or an error:
/// [`NetError::Timeout`], [`NetError::Transport`]), then the end.
///
/// For an INVITE the stream ends at the first final response; 2xx responses of other forks are
/// acknowledged by the UA core and reported on [`Incoming`] as [`UaEvent::Response`] and
/// [`UaEvent::DialogConfirmed`].
#[derive(Debug)]
pub struct ClientTransaction {
    /// The client transaction (for [`Endpoint::cancel`]).
    pub txn: TxnId,
    rx: mpsc::UnboundedReceiver<Result<OwnedMessage, NetError>>,
}

impl ClientTransaction {
    /// The next response, `None` after the final one.
    pub async fn next(&mut self) -> Option<Result<OwnedMessage, NetError>> {
        self.rx.recv().await
    }

    /// Skips provisional responses and returns the final one.
    pub async fn final_response(mut self) -> Result<OwnedMessage, NetError> {
        while let Some(r) = self.rx.recv().await {
            let m = r?;
            if m.status().unwrap_or(0) >= 200 {
                return Ok(m);
            }
        }
        Err(NetError::Closed)
    }
}

/// Everything the endpoint reports that no [`ClientTransaction`] waits for: incoming INVITEs
/// and other requests (answer them with [`Endpoint::respond`]), dialog state changes, ACKs,
/// PRACKs, cancellations.
#[derive(Debug)]
pub struct Incoming {
    rx: mpsc::UnboundedReceiver<UaEvent>,
}

impl Incoming {
    /// The next event; `None` once the endpoint has stopped.
    pub async fn recv(&mut self) -> Option<UaEvent> {
        self.rx.recv().await
    }
}

/// A SIP endpoint (UAC and UAS) on UDP and/or TCP. Cheap to clone; the task stops when every
/// clone is dropped or [`Endpoint::shutdown`] is called.
///
/// See `examples/sip_uac.rs` and `examples/sip_uas.rs` for complete user agents.
#[derive(Clone)]
pub struct Endpoint {
    tx: mpsc::UnboundedSender<Command<UaCore>>,
    local: SocketAddr,
    tls_local: Option<SocketAddr>,
    contact: String,
    transports: Vec<Transport>,
    mtu_limit: usize,
    dns: Arc<dyn Dns>,
    stats: Arc<driver::Stats>,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("local", &self.local)
            .field("transports", &self.transports)
            .finish()
    }
}

fn seed() -> u64 {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    h.finish()
}

impl Endpoint {
    /// Binds the sockets and starts the endpoint task on the current tokio runtime.
    pub async fn bind(cfg: EndpointConfig) -> Result<(Endpoint, Incoming), NetError> {
        Self::bind_with_dns(cfg, Arc::new(StaticDns::default())).await
    }

    /// As [`Endpoint::bind`], with the DNS used by [`Endpoint::locate`].
    pub async fn bind_with_dns(
        cfg: EndpointConfig,
        dns: Arc<dyn Dns>,
    ) -> Result<(Endpoint, Incoming), NetError> {
        let sockets = Sockets::bind(&cfg).await?;
        let sent_by = sockets.sent_by();
        let contact = if sockets.tls_only() {
            format!("sips:{}@{sent_by}", cfg.user)
        } else if sockets.udp.is_none() {
            format!("sip:{}@{sent_by};transport=tcp", cfg.user)
        } else {
            format!("sip:{}@{sent_by}", cfg.user)
        };
        let mut ua = UserAgent::new(UaConfig {
            layer: Config {
                timers: cfg.timers,
                merged_request_detection: true,
            },
            contact: contact.clone(),
            sent_by,
            reliable_provisional: cfg.reliable_provisional,
            session_expires: cfg.session_expires,
            min_se: 90,
            seed: seed(),
        });
        // RFC 3261 §18.1.1: a request over TLS names the TLS listener when it has its own port
        if let Some(tls_sent_by) = sockets.tls_sent_by() {
            ua.set_sent_by(Transport::Tls, tls_sent_by);
        }
        let transports = sockets.transports();
        let local = sockets.local;
        let tls_local = sockets.tls_local;
        let (ev_tx, ev_rx) = mpsc::unbounded_channel();
        if cfg.local.is_some() {
            // requests and responses to co-located endpoints go over in parsed form (the
            // outputs of one input are drained before the next input, so a few suffice)
            ua.keep_sent(SENT_KEPT);
        }
        let core = UaCore {
            ua,
            waiters: HashMap::new(),
            events: ev_tx,
            stopped: false,
            via_heads: Vec::new(),
        };
        let (tx, stats) = driver::spawn(core, sockets, &cfg);
        Ok((
            Endpoint {
                tx,
                local,
                tls_local,
                contact,
                transports,
                mtu_limit: cfg.mtu_limit,
                dns,
                stats,
            },
            Incoming { rx: ev_rx },
        ))
    }

    /// The local address (UDP and TCP share the port).
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// The TLS listening address, when the endpoint accepts TLS (feature `tls`).
    pub fn tls_addr(&self) -> Option<SocketAddr> {
        self.tls_local
    }

    /// Received messages (datagrams, and stream messages whose length was readable) that could
    /// not be parsed: those answered 400 (RFC 3261 §8.2.2 / §16.3: enough of the request was
    /// readable to build a response) and those dropped.
    pub fn malformed(&self) -> (u64, u64) {
        self.stats.malformed()
    }

    /// Transport counters: unparsable messages answered or dropped, connections closed for lost
    /// framing or idleness.
    pub fn transport_stats(&self) -> driver::TransportStats {
        self.stats.snapshot()
    }

    /// Our Contact URI.
    pub fn contact(&self) -> &str {
        &self.contact
    }

    /// The transports this endpoint listens on.
    pub fn transports(&self) -> &[Transport] {
        &self.transports
    }

    /// RFC 3263 server location for `uri` over the transports of this endpoint.
    pub async fn locate(&self, uri: &str) -> Result<Vec<Target>, NetError> {
        locate(&*self.dns, uri, &self.transports).await
    }

    /// RFC 3261 §18.1.1: a request over UDP larger than the MTU limit goes over TCP when TCP is
    /// enabled.
    fn pick_transport(&self, mut remote: Remote, size: usize) -> Result<Remote, NetError> {
        if remote.transport == Transport::Udp
            && size > self.mtu_limit
            && self.transports.contains(&Transport::Tcp)
        {
            remote.transport = Transport::Tcp;
        }
        if !self.transports.contains(&remote.transport) {
            return Err(NetError::TransportDisabled(remote.transport));
        }
        Ok(remote)
    }

    /// Runs `f` on the core inside the endpoint task and returns its result.
    async fn call<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut UaCore, Instant) -> Result<T, NetError> + Send + 'static,
    ) -> Result<T, NetError> {
        let (tx, rx) = oneshot::channel::<Result<T, NetError>>();
        let cmd: Command<UaCore> = Box::new(move |core: &mut UaCore| {
            let _ = tx.send(f(core, driver::now()));
        });
        self.tx.send(cmd).map_err(|_| NetError::Closed)?;
        rx.await.map_err(|_| NetError::Closed)?
    }

    /// Sends a new INVITE (RFC 3261 §13.2.1): the UA core adds Via, tags, Call-ID, CSeq,
    /// Contact, `Supported: 100rel` and PRACKs reliable provisional responses, ACKs the 2xx.
    pub async fn invite(&self, p: InviteParams) -> Result<ClientTransaction, NetError> {
        self.invite_as(p, None).await
    }

    /// As [`Endpoint::invite`], with the Call-ID, From tag and CSeq number `(call_id,
    /// from_tag, cseq)` of `same` instead of fresh ones: an application trying one exchange
    /// again keeps its Call-ID and From tag, with a higher CSeq on each attempt
    /// ([`UserAgent::invite_as`](ims_txn::ua::UserAgent::invite_as)).
    pub async fn invite_as(
        &self,
        mut p: InviteParams,
        same: Option<(String, String, u32)>,
    ) -> Result<ClientTransaction, NetError> {
        // the request's size is known only once built; estimate it for the MTU rule
        let size = 400
            + p.request_uri.len()
            + p.from.len()
            + p.to.len()
            + self.contact.len()
            + p.headers
                .iter()
                .map(|(n, v)| n.len() + v.len() + 4)
                .sum::<usize>()
            + p.body.as_ref().map_or(0, |(ct, b)| ct.len() + b.len() + 40);
        p.remote = self.pick_transport(p.remote, size)?;
        self.call(move |c, now| {
            let same = same
                .as_ref()
                .map(|(id, t, n)| (id.as_str(), t.as_str(), *n));
            let txn = c.ua.invite_as(now, p, same)?;
            Ok(c.waiter(txn))
        })
        .await
    }

    /// Sends an out-of-dialog request built by the application (MESSAGE, OPTIONS, REGISTER...)
    /// without a Via: the endpoint adds the top Via with a fresh branch and `rport`.
    pub async fn request(
        &self,
        msg: OwnedMessage,
        remote: Remote,
    ) -> Result<ClientTransaction, NetError> {
        let remote = self.pick_transport(remote, msg.bytes().len() + 90)?;
        self.call(move |c, now| c.request(now, msg, remote)).await
    }

    /// Sends an out-of-dialog request (as [`Endpoint::request`]) to the servers RFC 3263 finds
    /// for `uri` ([`Endpoint::locate`]), trying them in order (RFC 3263 §4.3): the next one
    /// after a transport error, a timeout or a 503, each with a new transaction (new branch).
    /// Returns the final response of the server that answered and where it was sent, or the
    /// last error.
    pub async fn request_located(
        &self,
        msg: OwnedMessage,
        uri: &str,
    ) -> Result<(OwnedMessage, Remote), NetError> {
        let targets = self.locate(uri).await?;
        let mut last = NetError::NotFound(uri.into());
        for (i, t) in targets.iter().enumerate() {
            let resp = match self.request(msg.clone(), *t).await {
                Ok(ct) => ct.final_response().await,
                Err(e) => Err(e),
            };
            match resp {
                Ok(r) if r.status() == Some(503) && i + 1 < targets.len() => {
                    last = NetError::NotFound(uri.into());
                }
                Ok(r) => return Ok((r, *t)),
                Err(e @ (NetError::Transport | NetError::Timeout | NetError::Io(_))) => last = e,
                Err(e) => return Err(e),
            }
        }
        Err(last)
    }

    /// Sends a request in a dialog (RFC 3261 §12.2.1.1): BYE, INFO, UPDATE, re-INVITE, ...
    pub async fn request_in_dialog(
        &self,
        dialog: &DialogId,
        method: Method<'static>,
        headers: Vec<(String, String)>,
        body: Option<(String, Vec<u8>)>,
    ) -> Result<ClientTransaction, NetError> {
        let dialog = dialog.clone();
        self.call(move |c, now| {
            let txn =
                c.ua.request_in_dialog(now, &dialog, method, headers, body)?;
            Ok(c.waiter(txn))
        })
        .await
    }

    /// Ends a dialog with BYE (RFC 3261 §15.1).
    pub async fn bye(&self, dialog: &DialogId) -> Result<ClientTransaction, NetError> {
        self.request_in_dialog(dialog, Method::Bye, Vec::new(), None)
            .await
    }

    /// Cancels an INVITE we sent (RFC 3261 §9.1); held until a provisional response arrived.
    pub async fn cancel(&self, invite: TxnId) -> Result<(), NetError> {
        self.call(move |c, now| {
            // the CANCEL's own responses are of no interest to the caller
            c.ua.cancel(now, invite)?;
            Ok(())
        })
        .await
    }

    /// Answers a request received as [`UaEvent::IncomingInvite`] or
    /// [`UaEvent::IncomingRequest`] (see [`ims_txn::ua::UserAgent::respond`]).
    pub async fn respond(&self, txn: TxnId, answer: Answer) -> Result<(), NetError> {
        self.call(move |c, now| Ok(c.ua.respond(now, txn, answer)?))
            .await
    }

    /// The number of live transactions (RFC 3261 §17), those waiting in Completed for
    /// retransmissions included (up to 32 s over UDP; over a reliable transport, and with a
    /// co-located endpoint of [`EndpointConfig::local`], a transaction ends when it completes).
    /// `None` once the endpoint stopped.
    pub async fn transactions(&self) -> Option<usize> {
        self.call(|c, _| Ok(c.ua.layer().len())).await.ok()
    }

    /// A snapshot of a dialog.
    pub async fn dialog(&self, id: &DialogId) -> Option<Dialog> {
        let id = id.clone();
        self.call(move |c, _| Ok(c.ua.dialog(&id).cloned()))
            .await
            .ok()
            .flatten()
    }

    /// Stops the endpoint task (sockets close; live transactions are dropped).
    pub fn shutdown(&self) {
        let _ = self.tx.send(Box::new(|c: &mut UaCore| c.stopped = true));
    }
}

type Waiter = mpsc::UnboundedSender<Result<OwnedMessage, NetError>>;

/// How many sent messages a UA endpoint with in-process links keeps for the parsed hand-off.
const SENT_KEPT: usize = 16;

/// The UA core with the per-request response channels.
pub(crate) struct UaCore {
    ua: UserAgent,
    waiters: HashMap<TxnId, Waiter>,
    events: mpsc::UnboundedSender<UaEvent>,
    stopped: bool,
    /// The front of our Via per transport, parsed once (see [`UaCore::via_head`]).
    via_heads: Vec<(Transport, ViaHead)>,
}

impl Core for UaCore {
    fn poll_timeout(&self) -> Option<Instant> {
        self.ua.poll_timeout()
    }
    fn handle_timeout(&mut self, now: Instant) {
        self.ua.handle_timeout(now);
    }
    fn sent_message(&self, bytes: &Bytes) -> Option<OwnedMessage> {
        self.ua.layer().sent_message(bytes).cloned()
    }
    fn receive(&mut self, now: Instant, msg: OwnedMessage, remote: Remote) {
        // a message no transaction can be derived from (no Via branch, no CSeq) is dropped
        let _ = self.ua.receive(now, msg, remote);
    }
    fn transport_error(&mut self, now: Instant, txn: TxnId) {
        let _ = self.ua.handle_input(now, Input::TransportError { txn });
    }
    fn is_stopped(&self) -> bool {
        self.stopped
    }
    fn remotes_in_use(&self) -> std::collections::HashSet<Remote> {
        self.ua.remotes_in_use().collect()
    }
    fn set_lossless(&mut self, peers: ims_txn::LosslessPeers) {
        self.ua.set_lossless(peers);
    }
    fn poll_transmit(&mut self) -> Option<Transmit> {
        loop {
            match self.ua.poll_output()? {
                UaOutput::Transmit(t) => return Some(t),
                UaOutput::Event(e) => self.event(e),
            }
        }
    }
}

impl UaCore {
    /// `SIP/2.0/<transport> <sent-by>` of our Via ([`UserAgent::new_via`]'s front), kept per
    /// transport while the UA's sent-by for it stays the same; `None` when it is not a plain
    /// Via front (the whole Via is then written and parsed as before).
    fn via_head(&mut self, transport: Transport) -> Option<ViaHead> {
        let sent_by = self.ua.sent_by(transport);
        let t = transport.as_str();
        let same = |h: &ViaHead| {
            let s = h.as_str();
            s.len() == "SIP/2.0/ ".len() + t.len() + sent_by.len() && s.ends_with(sent_by)
        };
        if let Some((_, h)) = self
            .via_heads
            .iter()
            .find(|(x, h)| *x == transport && same(h))
        {
            return Some(h.clone());
        }
        let h = ViaHead::new(t, sent_by)?;
        self.via_heads.retain(|(x, _)| *x != transport);
        self.via_heads.push((transport, h.clone()));
        Some(h)
    }

    fn waiter(&mut self, txn: TxnId) -> ClientTransaction {
        let (tx, rx) = mpsc::unbounded_channel();
        self.waiters.insert(txn, tx);
        ClientTransaction { txn, rx }
    }

    fn request(
        &mut self,
        t: Instant,
        msg: OwnedMessage,
        remote: Remote,
    ) -> Result<ClientTransaction, NetError> {
        // the message a `push_via` edit gives, indexed without rendering when that is certain;
        // the Via's front parsed once per transport, only the new branch read
        let fast = match self.via_head(remote.transport) {
            Some(head) => {
                let mut via = String::with_capacity(head.as_str().len() + 48);
                via.push_str(head.as_str());
                self.ua.push_via_params(&mut via);
                msg.with_via_above(&head, &via).ok_or(via)
            }
            None => {
                let via = self.ua.new_via(remote.transport);
                msg.with_line_above("Via", &via).ok_or(via)
            }
        };
        let msg = match fast {
            Ok(m) => m,
            Err(via) => {
                let m = msg.as_message();
                let mut e = m.edit();
                e.push_via(via);
                e.to_owned_message()?
            }
        };
        let txn = self.ua.send_request(t, msg, remote)?;
        Ok(self.waiter(txn))
    }

    fn event(&mut self, e: UaEvent) {
        match e {
            UaEvent::Response { txn, msg, dialog } => {
                if let Some(w) = self.waiters.get(&txn) {
                    let fin = msg.status().unwrap_or(0) >= 200;
                    let _ = w.send(Ok(msg));
                    if fin {
                        self.waiters.remove(&txn);
                    }
                } else {
                    let _ = self.events.send(UaEvent::Response { txn, msg, dialog });
                }
            }
            UaEvent::Timeout { txn } => match self.waiters.remove(&txn) {
                Some(w) => {
                    let _ = w.send(Err(NetError::Timeout));
                }
                None => {
                    let _ = self.events.send(UaEvent::Timeout { txn });
                }
            },
            UaEvent::TransportError { txn } => match self.waiters.remove(&txn) {
                Some(w) => {
                    let _ = w.send(Err(NetError::Transport));
                }
                None => {
                    let _ = self.events.send(UaEvent::TransportError { txn });
                }
            },
            e => {
                let _ = self.events.send(e);
            }
        }
    }
}
