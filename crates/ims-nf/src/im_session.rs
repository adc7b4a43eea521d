//! The IM server's session part (TS 24.247 §5.2 large mode, §5.3 session mode; RFC 4975,
//! RFC 5547): a SIP back-to-back user agent for INVITEs that offer `m=message … TCP/MSRP`, and
//! the MSRP switch that anchors the media.
//!
//! ```text
//!   A ──INVITE (a=path:A)──▶ anchor ──INVITE (a=path:anchor/sid-b)──▶ next hop ─▶ B
//!   A ◀──200 (a=path:anchor/sid-a)── anchor ◀──────────200 (a=path:B)─────────── B
//!   A ──TCP──▶ anchor (listens)            anchor ──TCP──▶ B (the active end connects, RFC 4975 §5.4)
//!   SEND/REPORT/responses: A ⇄ anchor ⇄ B, To-Path/From-Path and transaction ids rewritten
//! ```
//!
//! - The A-leg INVITE is answered only once B answered: 180/183 are relayed, a 2xx becomes a 200
//!   carrying the anchor's own MSRP path, any 3xx–6xx (486 Busy Here, 480, 404…) is relayed with
//!   its code. A CANCEL from A cancels the B-leg INVITE.
//! - Everything else in the SDP (accept-types, max-size, RFC 5547 `file-selector`,
//!   `file-transfer-id`, `file-disposition`, direction) passes through unchanged; media other
//!   than MSRP are refused (port 0).
//! - MSRP requests are forwarded with a new transaction id, To-Path set to the other party's
//!   path and From-Path to the anchor's URI on that leg; Message-ID, Byte-Range, report headers
//!   and MIME headers pass unchanged, so success and failure REPORTs reach the sender.
//!   Transaction responses travel end to end (a 200 reaches A only once B received the chunk;
//!   a 413 from B reaches A with A's transaction id).
//! - Chunk bodies larger than the framer's stream threshold (64 KiB) are streamed part by part,
//!   never held whole; each connection is one reader feeding the writers of the other legs,
//!   so TCP back-pressure bounds memory.
//! - BYE from either side ends both legs (frames in flight still pass for
//!   [`ImSessionConfig::linger`], then the session's frames get 481).
//! - a=setup (RFC 4145 §4, RFC 6135 §4): an A offering `active`, `actpass` or nothing (the
//!   RFC 4975 default: the offerer connects) is answered `passive` and connects to the anchor;
//!   an A offering `passive` is answered `active` and the anchor connects to it (once the 200
//!   is sent) and binds the session with an empty SEND. B is offered `actpass`: B answering
//!   `passive` or nothing is connected to by the anchor (before A is answered); B answering
//!   `active` connects to the anchor, its first frame binds its side.
//!
//! Several sessions share a connection (RFC 4975 §5.4 connection model): every connection has
//! one reader that demultiplexes by the session-id of the last To-Path URI (the anchor's own
//! URI on that leg). A session side is bound to the connection its first frame arrives on, or
//! to the one the anchor opened for it; the anchor reuses a connection it opened toward an
//! authority (host:port of the party's first path URI) for later sessions toward it, so two
//! sessions between the same endpoints use one connection on each leg, both directions. A
//! request naming an unknown session, or a session bound to another connection, gets 481. A
//! connection is closed once no session is bound to it any more; a party closing its
//! connection ends the MSRP of the sessions bound to it. A request whose destination
//! side is not connected yet waits up to 30 s (holding its connection's reader), then gets
//! 481.
//!
//! In the all-in-one core ([`crate::runtime`]) the anchor shares the IM server's SIP endpoint
//! ([`start_on`]): the originating iFC `INVITE` ∧ SDP `m=message` (TS 29.228 SessionDescription
//! SPT) names the IM server, and the B-leg INVITE goes back along the Route set the S-CSCF left
//! after our own entry (its `odi` URI), with the caller's P-Asserted-Identity, so the S-CSCF
//! finishes originating processing and routes to the callee. Without a Route left, B legs go
//! to the S-CSCF serving the caller when [`ImSessionConfig::serving`] knows it (learnt from
//! the caller's third-party REGISTER, [`crate::im_server::ImServer::serving_scscf`]; TS 24.229
//! §5.7.3), with the `orig` parameter that asks it for originating processing (§5.4.3.1),
//! else to [`ImSessionConfig::next_hop`] with [`ImSessionConfig::route`].
//!
//! MSRP over TLS (`msrps`, feature `tls`, `ImSessionConfig::msrps`): each leg is TCP or TLS
//! on its own. B is offered A's transport first; when B refuses it as not acceptable (488 or
//! 606) the anchor offers B the other one in a new INVITE, so a TCP caller reaches a TLS-only
//! callee and a TLS caller a TCP-only one (the anchor terminates MSRP on each leg, RFC 4975
//! §5.4). A callee answering `a=setup:active` over TLS may connect before the anchor has read
//! its answer: the handshake waits for it (bounded).
//!
//! ```no_run
//! # async fn run() -> Result<(), ims_nf::im_session::ImSessionError> {
//! use ims_nf::im_session::{start, ImSessionConfig};
//! let anchor = start(ImSessionConfig::default()).await?; // SIP 127.0.0.1:7072, MSRP :7073
//! println!("MSRP switch on {}", anchor.msrp_addr());
//! # Ok(()) }
//! ```

use ims_msrp::Limits;
use ims_net::sip::{ClientTransaction, Endpoint, EndpointConfig, Incoming, NetError};
use ims_sdp::{ConnectionBuf, MediaType, OriginBuf, Session as Sdp, SessionBuilder};
use ims_txn::dialog::DialogId;
use ims_txn::ua::{Answer, EndReason, InviteParams, UaEvent};
use ims_txn::{Remote, TxnId};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

#[path = "im_switch.rs"]
mod switch;
use switch::{Route, Switch};

/// Settings of the session anchor.
#[derive(Debug, Clone)]
pub struct ImSessionConfig {
    /// SIP address (UDP and TCP).
    pub sip_addr: SocketAddr,
    /// MSRP listen address (TCP); port 0 picks one.
    pub msrp_addr: SocketAddr,
    /// Host written in our SDP `c=`/`o=` and MSRP URIs (default: the MSRP listen IP).
    pub advertised_host: Option<String>,
    /// Where B-leg INVITEs are sent (the S-CSCF); `None`: to the A-leg Request-URI's host.
    pub next_hop: Option<Remote>,
    /// Route header values put on B-leg INVITEs (e.g. `<sip:scscf.ims.example:6060;lr>`).
    pub route: Vec<String>,
    /// The S-CSCF serving a caller, for B legs of an INVITE that arrives with no Route left
    /// (it reached us without the S-CSCF's `odi` entry): sent there instead of
    /// [`ImSessionConfig::next_hop`]/[`ImSessionConfig::route`] when it knows the caller.
    pub serving: Option<ServingScscf>,
    /// User part of our Contact.
    pub user: String,
    /// MSRP framer limits (the stream threshold decides which chunks are streamed).
    pub limits: Limits,
    /// How long the MSRP pipes may drain after a BYE before they are cut.
    pub linger: Duration,
    /// Our certificate for `msrps:` legs (RFC 4975 §14, feature `tls`): a caller offering
    /// `TCP/TLS/MSRP` with a SHA-256 `a=fingerprint` (RFC 8122 §5) is answered in kind with
    /// ours, the callee is offered `TCP/TLS/MSRP` too, and each party's certificate must have
    /// the fingerprint its SDP gave; a callee refusing the caller's transport (488/606) is
    /// offered the other one. `None`: such offers get 488, and no bridging.
    #[cfg(feature = "tls")]
    pub msrps: Option<ims_net::tls::Identity>,
    /// The anchor's own MSRP relay (RFC 4976), e.g. at the edge of its network: at start the
    /// anchor connects to it and authenticates (AUTH, digest), puts its Use-Path before its
    /// own URI in every `a=path` it sends (with the relay in `c=`/`m=`), sends all MSRP
    /// through that one connection (To-Path: the Use-Path, then the party's path) and gets
    /// the parties' frames on it; it refreshes the binding (AUTH again on that connection)
    /// halfway through each granted Expires. When the link drops (or a refresh fails) the
    /// sessions set up over it end (BYE on both legs: their paths named the lost binding),
    /// INVITEs get 503 with Retry-After, and the anchor connects and AUTHs again (a new
    /// Use-Path), retrying with a doubling wait up to 30 s. An `msrps:` relay is reached
    /// over TLS ([`AnchorRelay`]`::tls`, feature `tls`): `msrps:` legs then go through it,
    /// offered the relay's certificate fingerprint (the parties' TLS ends at the relay); behind
    /// a plain relay `msrps:` offers get 488. `None`: parties reach the anchor's listener
    /// directly.
    pub relay: Option<AnchorRelay>,
}

/// The anchor's own MSRP relay ([`ImSessionConfig::relay`]).
#[derive(Debug, Clone, Default)]
pub struct AnchorRelay {
    /// The relay's URI without session-id, its host an IP literal or a name (resolved,
    /// every address tried) (`msrp://192.0.2.7:2855;tcp`, or `msrps://…` for TLS to the
    /// relay, whose certificate is then checked against that name).
    pub uri: String,
    /// Digest user name.
    pub user: String,
    /// Digest password.
    pub password: String,
    /// TLS toward an `msrps:` relay (feature `tls`): its trust decides which relay
    /// certificates are accepted; its identity, if any, is presented when the relay asks.
    /// Required for an `msrps:` URI.
    #[cfg(feature = "tls")]
    pub tls: Option<ims_net::tls::TlsConfig>,
}

impl Default for ImSessionConfig {
    fn default() -> Self {
        ImSessionConfig {
            sip_addr: SocketAddr::from(([127, 0, 0, 1], 7072)),
            msrp_addr: SocketAddr::from(([127, 0, 0, 1], 7073)),
            advertised_host: None,
            next_hop: None,
            route: Vec::new(),
            serving: None,
            user: "im".into(),
            limits: Limits::default(),
            linger: Duration::from_secs(2),
            #[cfg(feature = "tls")]
            msrps: None,
            relay: None,
        }
    }
}

impl ImSessionConfig {
    /// Sends B-leg INVITEs to the host and port of a SIP URI with an IP address
    /// (`sip:term@127.0.0.1:6060` → UDP 127.0.0.1:6060), as the IM server does with its
    /// `--scscf`. Unchanged when the URI names no IP address and port.
    pub fn next_hop_uri(mut self, uri: &str) -> Self {
        let rest = uri
            .trim_start_matches('<')
            .trim_start_matches("sips:")
            .trim_start_matches("sip:");
        let hostport = rest.rsplit('@').next().unwrap_or(rest);
        let hostport = hostport.split([';', '>', '?']).next().unwrap_or(hostport);
        if let Ok(a) = hostport.parse::<SocketAddr>() {
            self.next_hop = Some(Remote::udp(a));
        }
        self
    }
}

/// Finds the SIP URI of the S-CSCF serving a user (its IMPU, e.g. from P-Asserted-Identity):
/// TS 24.229 §5.7.3, an AS originating a request on behalf of a user sends it to the user's
/// S-CSCF, whose address it may learn from the third-party REGISTER
/// ([`crate::im_server::ImServer::serving_scscf`]).
#[derive(Clone)]
pub struct ServingScscf(Arc<Lookup>);

/// The function behind [`ServingScscf`].
type Lookup = dyn Fn(&str) -> Option<String> + Send + Sync;

impl ServingScscf {
    /// A lookup by `f`.
    pub fn new(f: impl Fn(&str) -> Option<String> + Send + Sync + 'static) -> ServingScscf {
        ServingScscf(Arc::new(f))
    }

    /// The S-CSCF serving `user`, if known.
    pub fn lookup(&self, user: &str) -> Option<String> {
        (self.0)(user)
    }
}

impl std::fmt::Debug for ServingScscf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ServingScscf(..)")
    }
}

/// The Route set of a B leg and whether its first entry is the next hop (else
/// [`ImSessionConfig::next_hop`]): the Route set the S-CSCF left after our own entry (TS
/// 24.229 §5.7.5: the S-CSCF continues from its `odi`); else the S-CSCF serving the caller
/// with `orig` (§5.7.3, §5.4.3.1: it performs originating processing for the asserted
/// user); else the configured route.
fn b_leg_routes(
    rest: Vec<String>,
    serving: Option<String>,
    configured: &[String],
) -> (Vec<String>, bool) {
    if !rest.is_empty() {
        return (rest, true);
    }
    match serving {
        Some(uri) => {
            // a bare URI keeps its parameters (`;transport=tcp`); `<…>` is taken off
            let uri = match uri.split_once('<') {
                Some((_, rest)) => rest.split('>').next().unwrap_or(rest).to_string(),
                None => uri.trim().to_string(),
            };
            let mut r = uri.trim_end_matches(";lr").to_string();
            for p in [";lr", ";orig"] {
                if !r.split(';').skip(1).any(|x| x == &p[1..]) {
                    r.push_str(p);
                }
            }
            (vec![format!("<{r}>")], true)
        }
        None => (configured.to_vec(), false),
    }
}

/// Why the anchor could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ImSessionError {
    /// The SIP endpoint did not start.
    #[error("SIP endpoint: {0}")]
    Sip(#[from] NetError),
    /// The MSRP listener did not bind.
    #[error("MSRP listener: {0}")]
    Io(#[from] std::io::Error),
}

/// Counters of the anchor.
#[derive(Debug, Default)]
pub struct Stats {
    /// Sessions set up (both legs answered).
    pub sessions: AtomicU64,
    /// Sessions live now.
    pub active: AtomicU64,
    /// INVITEs refused or relayed with an error status.
    pub rejected: AtomicU64,
    /// MSRP requests forwarded (SEND and REPORT chunks).
    pub requests: AtomicU64,
    /// MSRP responses forwarded.
    pub responses: AtomicU64,
    /// Body octets forwarded.
    pub body_bytes: AtomicU64,
    /// MSRP connections open now (accepted and opened; one carries any number of sessions).
    pub connections: AtomicU64,
    /// Links to our own relay up now ([`ImSessionConfig::relay`]): 1 while authenticated, 0
    /// while reconnecting (INVITEs get 503).
    pub relay_links: AtomicU64,
}

/// A running anchor: its addresses and counters. Dropping it does not stop it; call
/// [`ImSessionHandle::shutdown`].
#[derive(Debug)]
pub struct ImSessionHandle {
    sip: SocketAddr,
    msrp: SocketAddr,
    endpoint: Endpoint,
    stats: Arc<Stats>,
    tasks: Vec<JoinHandle<()>>,
}

impl ImSessionHandle {
    /// The SIP address.
    pub fn sip_addr(&self) -> SocketAddr {
        self.sip
    }
    /// The MSRP listen address.
    pub fn msrp_addr(&self) -> SocketAddr {
        self.msrp
    }
    /// The counters.
    pub fn stats(&self) -> &Arc<Stats> {
        &self.stats
    }
    /// Stops the SIP endpoint and the MSRP listener (live pipes end with their connections).
    pub fn shutdown(&self) {
        self.endpoint.shutdown();
        for t in &self.tasks {
            t.abort();
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Leg {
    A,
    B,
}

#[derive(Debug)]
struct Call {
    /// The A-leg INVITE server transaction (until answered).
    a_txn: TxnId,
    /// (Call-ID, A's From tag): how the A-leg dialog is recognised.
    a_key: (String, String),
    a_dialog: Option<DialogId>,
    b_invite: Option<TxnId>,
    b_dialog: Option<DialogId>,
    /// The parties' paths (To-Path toward them).
    a_path: Vec<String>,
    b_path: Vec<String>,
    /// The session in the MSRP switch.
    route: Arc<Route>,
    /// A offered `a=setup:passive`: the anchor connects to A.
    a_active: bool,
    /// Both legs answered.
    up: bool,
    /// The SDP we gave each leg (our answer to A, our offer to B): what a refresh re-INVITE
    /// or UPDATE from that leg is answered with.
    a_sdp: String,
    b_sdp: String,
    /// A's leg is `msrps:` (TCP/TLS/MSRP).
    tls: bool,
    /// B's leg is `msrps:`: A's transport, or the other one when B refused A's (bridging).
    b_tls: bool,
    /// The offer to B with the other transport (and the session with B's side for it), tried
    /// when B refuses the first offer as not acceptable (488/606): a TCP caller reaches a
    /// TLS-only callee and the reverse. Only with `msrps:` configured.
    bridge: Option<Bridge>,
    /// The link to our relay its paths name ([`RelayLink::epoch`]; 0 without a relay).
    epoch: u64,
}

/// The B-leg INVITE offering the transport A did not use ([`Call::bridge`]).
#[derive(Debug)]
struct Bridge {
    params: InviteParams,
    offer: String,
    route: Arc<Route>,
}

/// A side whose party moved its MSRP path: the session, the side, whether we connect, the
/// connection it was bound to.
type Moved = (Arc<Route>, Leg, bool, Option<Arc<switch::Conn>>);

#[derive(Debug, Default)]
struct State {
    calls: HashMap<u64, Call>,
    /// Our own B legs that came back to us, relayed on ([`Anchor::pass_on`]).
    passes: HashMap<u64, Pass>,
    next: u64,
}

/// One of our own B legs that came back to us: a B leg sent to the caller's S-CSCF with
/// `orig` (an INVITE that reached us with no Route left) gets originating processing there
/// (TS 24.229 §5.4.3.1), and the caller's originating iFC may send it to us again, now with the
/// S-CSCF's `odi` Route. Anchoring it again would put a second anchor in the MSRP path; it is
/// relayed instead, toward the Route set it carries, its SDP (naming our B-side URI) and the
/// callee's answer unchanged, so the callee's MSRP meets the first anchor directly. Refreshes
/// on either dialog are answered with the SDP that dialog has; a BYE on one is passed to the
/// other.
#[derive(Debug)]
struct Pass {
    /// Our B-side MSRP URI its offer carries.
    uri: String,
    /// The INVITE that came back (its server transaction, until answered).
    in_txn: TxnId,
    /// (Call-ID, From tag) of the dialog that came back.
    in_key: (String, String),
    in_dialog: Option<DialogId>,
    /// The INVITE relaying it on, and its dialog.
    out_invite: Option<TxnId>,
    out_dialog: Option<DialogId>,
    /// The offer (what the onward dialog has) and the callee's answer (what the returning
    /// dialog has).
    offer: String,
    answer: String,
}

struct Anchor {
    cfg: ImSessionConfig,
    /// Our certificate's fingerprint in SDP form (`SHA-256 …`), when `msrps:` is configured.
    fingerprint: Option<String>,
    host: String,
    msrp_port: u16,
    ep: Endpoint,
    state: Mutex<State>,
    stats: Arc<Stats>,
    switch: Arc<Switch>,
    /// Our own relay, when configured.
    relay: Option<RelayLink>,
}

fn random_id(len: usize) -> String {
    const ALPHA: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut s = String::with_capacity(len);
    while s.len() < len {
        for b in crate::runtime::random16() {
            if s.len() < len {
                s.push(ALPHA[usize::from(b) % ALPHA.len()] as char);
            }
        }
    }
    s
}

/// Starts the anchor on the current tokio runtime.
pub async fn start(cfg: ImSessionConfig) -> Result<ImSessionHandle, ImSessionError> {
    let listener = TcpListener::bind(cfg.msrp_addr).await?;
    let msrp = listener.local_addr()?;
    let (ep, incoming) = Endpoint::bind(EndpointConfig {
        addr: cfg.sip_addr,
        user: cfg.user.clone(),
        ..EndpointConfig::default()
    })
    .await?;
    let host = cfg
        .advertised_host
        .clone()
        .unwrap_or_else(|| msrp.ip().to_string());
    let link = match &cfg.relay {
        Some(r) => Some(relay_link(r, &host, msrp.port()).await?),
        None => None,
    };
    let (tx, rx) = mpsc::unbounded_channel();
    let t0 = tokio::spawn(async move {
        let mut incoming: Incoming = incoming;
        while let Some(ev) = incoming.recv().await {
            if tx.send(ev).is_err() {
                break;
            }
        }
    });
    let mut h = run(cfg, host, listener, ep, rx, link).await;
    h.tasks.push(t0);
    Ok(h)
}

/// Starts the anchor on an endpoint another part already owns (the IM server's, see
/// [`crate::im_server::ImServer::start_with`]): `events` are the endpoint events that part does
/// not handle (INVITEs, CANCELs, dialog events). Only the MSRP listener is bound here
/// ([`ImSessionConfig::sip_addr`] is not used). [`ImSessionHandle::shutdown`] stops the shared
/// endpoint too.
pub async fn start_on(
    cfg: ImSessionConfig,
    endpoint: Endpoint,
    events: mpsc::UnboundedReceiver<UaEvent>,
) -> Result<ImSessionHandle, ImSessionError> {
    let listener = TcpListener::bind(cfg.msrp_addr).await?;
    let msrp = listener.local_addr()?;
    let host = cfg
        .advertised_host
        .clone()
        .unwrap_or_else(|| msrp.ip().to_string());
    let link = match &cfg.relay {
        Some(r) => Some(relay_link(r, &host, msrp.port()).await?),
        None => None,
    };
    Ok(run(cfg, host, listener, endpoint, events, link).await)
}

/// How long an AUTH exchange with our relay may take.
const RELAY_AUTH_WAIT: Duration = Duration::from_secs(10);
/// First wait before connecting to our relay again after its link dropped (doubling, at
/// most [`RELAY_RETRY_MAX`]).
const RELAY_RETRY: Duration = Duration::from_millis(500);
/// Longest wait between two attempts to reconnect to our relay.
const RELAY_RETRY_MAX: Duration = Duration::from_secs(30);
/// The Retry-After of the 503 an INVITE gets while the link to our relay is down.
const RELAY_DOWN_RETRY_AFTER: u32 = 5;

/// The anchor's link to its own relay ([`ImSessionConfig::relay`]).
#[derive(Debug)]
struct RelayLink {
    /// The relay's host and port (what `c=`/`m=` name).
    host: String,
    port: u16,
    /// Its Use-Path (a refresh may change it; a new link has a new one: later sessions take
    /// the current one).
    use_path: Mutex<Vec<String>>,
    /// The link is up (authenticated); while it is down INVITEs get 503.
    up: std::sync::atomic::AtomicBool,
    /// Which link (counted from 1): a session set up over one link ends when it drops.
    /// Written under the anchor's state lock.
    epoch: AtomicU64,
    /// An `msrps:` relay's certificate fingerprint, SDP form (`SHA-256 …`); `None`: TCP.
    fingerprint: Mutex<Option<String>>,
}

/// What a connected and authenticated relay link needs to run.
struct RelayStart {
    rd: switch::Rd,
    wr: switch::Wr,
    /// The relay's certificate (`msrps:` relay).
    peer_fp: Option<[u8; 32]>,
    /// The relay's authorities ([`switch::authority_key`]): the address we connected to, the
    /// name its URI gives, and the authority of the Use-Path's first URI.
    dests: Vec<switch::Dest>,
    /// The relay's host and port (for `c=`/`m=`) and the Use-Path.
    host: String,
    port: u16,
    use_path: Vec<String>,
    /// Our URI in the AUTH (the relay's binding names it; a refresh repeats it).
    local: ims_msrp::UriBuf,
    relay: ims_msrp::UriBuf,
    expires: u32,
}

impl RelayStart {
    fn link(&self) -> RelayLink {
        RelayLink {
            host: self.host.clone(),
            port: self.port,
            use_path: Mutex::new(self.use_path.clone()),
            up: std::sync::atomic::AtomicBool::new(true),
            epoch: AtomicU64::new(1),
            fingerprint: Mutex::new(self.sdp_fingerprint()),
        }
    }

    /// The relay's certificate fingerprint in SDP form.
    fn sdp_fingerprint(&self) -> Option<String> {
        fingerprint_sdp(self.peer_fp)
    }
}

fn auth_client(
    cfg: &AnchorRelay,
    local: &ims_msrp::UriBuf,
    relay: &ims_msrp::UriBuf,
) -> ims_msrp::relay::AuthClient {
    let seed = u64::from_le_bytes(crate::runtime::random16()[..8].try_into().unwrap_or([7; 8]));
    ims_msrp::relay::AuthClient::new(
        local.clone(),
        relay.clone(),
        &cfg.user,
        &cfg.password,
        None,
        seed,
    )
}

/// The switch's key for the authority of an MSRP URI (IP literal or host name, and port).
fn uri_authority(u: &ims_msrp::Uri<'_>) -> String {
    switch::authority_key(u.host_str(), u.port_or_default())
}

/// A connection to a relay, TCP or TLS.
enum RelayStream {
    Tcp(tokio::net::TcpStream),
    #[cfg(feature = "tls")]
    Tls(Box<ims_net::tls::TlsStream<tokio::net::TcpStream>>),
}

/// A connection to a relay on which an AUTH succeeded (RFC 4976 §5).
struct Authed {
    stream: RelayStream,
    /// The Use-Path granted and its Expires.
    use_path: Vec<String>,
    expires: u32,
    /// The relay's certificate (`msrps:` relay).
    peer_fp: Option<[u8; 32]>,
    /// The address we connected to (its host name resolved).
    at: SocketAddr,
    /// The relay's host (no brackets) and port, and its URI.
    host: String,
    port: u16,
    relay: ims_msrp::UriBuf,
    /// Our URI in the AUTH.
    local: ims_msrp::UriBuf,
}

/// Connects to the relay `cfg` names (TLS for an `msrps:` one) and authenticates with
/// `local` as our URI (RFC 4976 §5).
async fn relay_authed(cfg: &AnchorRelay, local: &str) -> Result<Authed, ImSessionError> {
    let bad = |why: &str| {
        ImSessionError::Io(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("MSRP relay {}: {why}", cfg.uri),
        ))
    };
    let relay = ims_msrp::UriBuf::parse(&cfg.uri).map_err(|_| bad("not an MSRP URI"))?;
    let local = ims_msrp::UriBuf::parse(local).map_err(|_| bad("our own URI"))?;
    let (host, port) = {
        let u = relay.uri();
        let h = u.host_str().trim_start_matches('[').trim_end_matches(']');
        (h.to_owned(), u.port_or_default())
    };
    if host.is_empty() {
        return Err(bad("no host"));
    }
    // an IP literal or a host name (resolved, every address tried, all within the wait)
    let (mut stream, at) = ims_net::msrp::connect_host(&host, port, RELAY_AUTH_WAIT)
        .await
        .map_err(|e| bad(&format!("connect: {e}")))?;
    let _ = stream.set_nodelay(true);
    let mut client = auth_client(cfg, &local, &relay);
    let (use_path, expires, stream, peer_fp) = if relay.uri().is_secure() {
        #[cfg(feature = "tls")]
        {
            let tls = cfg
                .tls
                .as_ref()
                .ok_or_else(|| bad("an msrps relay needs AnchorRelay::tls"))?;
            // a relay named by a host name is checked against that name
            let name = ims_net::msrp::tls_peer_name(tls, &host);
            let mut s = tokio::time::timeout(RELAY_AUTH_WAIT, tls.connect(stream, name))
                .await
                .map_err(|_| bad("TLS handshake timed out"))??;
            let fp = ims_net::tls::peer_fingerprint(&s).map(|f| *f.as_bytes());
            let (up, e) = ims_net::msrp::relay_auth(&mut s, &mut client, RELAY_AUTH_WAIT).await?;
            (up, e, RelayStream::Tls(Box::new(s)), fp)
        }
        #[cfg(not(feature = "tls"))]
        {
            drop(stream);
            return Err(bad("an msrps relay needs the `tls` feature"));
        }
    } else {
        let (up, e) = ims_net::msrp::relay_auth(&mut stream, &mut client, RELAY_AUTH_WAIT).await?;
        (up, e, RelayStream::Tcp(stream), None)
    };
    Ok(Authed {
        stream,
        use_path: use_path.iter().map(|u| u.as_str().to_owned()).collect(),
        expires,
        peer_fp,
        at,
        host,
        port,
        relay,
        local,
    })
}

/// Our URI toward the relay `cfg` names: `msrps:` for an `msrps:` relay.
pub(crate) fn relay_local_uri(cfg: &AnchorRelay, host: &str, port: u16, sid: &str) -> String {
    let own = if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_owned()
    };
    let scheme = if cfg.uri.starts_with("msrps:") {
        "msrps"
    } else {
        "msrp"
    };
    format!("{scheme}://{own}:{port}/{sid};tcp")
}

/// Connects to our relay and authenticates (RFC 4976 §5).
async fn relay_link(
    cfg: &AnchorRelay,
    host: &str,
    port: u16,
) -> Result<RelayStart, ImSessionError> {
    let a = relay_authed(cfg, &relay_local_uri(cfg, host, port, &random_id(16))).await?;
    let (rd, wr): (switch::Rd, switch::Wr) = match a.stream {
        RelayStream::Tcp(s) => {
            let (rd, wr) = s.into_split();
            (Box::new(rd), Box::new(wr))
        }
        #[cfg(feature = "tls")]
        RelayStream::Tls(s) => {
            let (rd, wr) = tokio::io::split(*s);
            (Box::new(rd), Box::new(wr))
        }
    };
    // the relay by the address we reached, by the name its URI gives, and by the authority
    // of its Use-Path (they differ behind a load balancer or a NAT)
    let mut dests: Vec<switch::Dest> = vec![(a.at.to_string(), None)];
    let named = uri_authority(&a.relay.uri());
    let first = a
        .use_path
        .first()
        .and_then(|u| ims_msrp::Uri::parse(u).ok())
        .map(|u| uri_authority(&u));
    for d in std::iter::once(named).chain(first) {
        if !dests.iter().any(|k| k.0 == d) {
            dests.push((d, None));
        }
    }
    Ok(RelayStart {
        rd,
        wr,
        peer_fp: a.peer_fp,
        dests,
        host: a.host,
        port: a.port,
        use_path: a.use_path,
        local: a.local,
        relay: a.relay,
        expires: a.expires,
    })
}

/// An MSRP connection of its own through the relay `cfg` names, for a session whose URI is
/// `local` (the IM server's large-mode deliveries, [`crate::im_server::ImServerConfig::msrp_relay`]):
/// connected and authenticated (RFC 4976 §5, TLS for an `msrps:` relay), the session goes on
/// it with the Use-Path before the peer's path in its To-Path (§6.1).
pub(crate) struct RelayedConnection {
    /// The connection (add the session, send).
    pub(crate) conn: ims_net::msrp::MsrpConnection,
    /// The Use-Path: first in our SDP `a=path`, first in the To-Path.
    pub(crate) use_path: Vec<String>,
    /// The relay's host and port (our SDP `c=`/`m=`).
    pub(crate) host: String,
    pub(crate) port: u16,
    /// An `msrps:` relay's certificate fingerprint (SDP form): our SDP `a=fingerprint`.
    pub(crate) fingerprint: Option<String>,
}

/// See [`RelayedConnection`].
pub(crate) async fn relayed_connection(
    cfg: &AnchorRelay,
    local: &str,
    conn_cfg: ims_net::msrp::ConnConfig,
) -> Result<RelayedConnection, ImSessionError> {
    let a = relay_authed(cfg, local).await?;
    let fingerprint = fingerprint_sdp(a.peer_fp);
    let conn = match a.stream {
        RelayStream::Tcp(s) => ims_net::msrp::MsrpConnection::spawn(s, conn_cfg),
        #[cfg(feature = "tls")]
        RelayStream::Tls(s) => ims_net::msrp::MsrpConnection::spawn_tls(*s, conn_cfg),
    };
    Ok(RelayedConnection {
        conn,
        use_path: a.use_path,
        host: a.host,
        port: a.port,
        fingerprint,
    })
}

/// A certificate fingerprint in SDP form (`SHA-256 …`).
fn fingerprint_sdp(fp: Option<[u8; 32]>) -> Option<String> {
    #[cfg(feature = "tls")]
    {
        fp.map(|f| ims_net::tls::Fingerprint::from_bytes(f).to_string())
    }
    #[cfg(not(feature = "tls"))]
    {
        let _ = fp;
        None
    }
}

/// Runs the link to our relay: refreshes the binding halfway through each Expires; when the
/// link drops (the relay or the network closed it, or a refresh failed), ends the sessions
/// that ran over it ([`Anchor::relay_lost`]) and connects and authenticates again (a new
/// connection, a new AUTH, a new Use-Path: RFC 4976 §5), retrying with a doubling wait.
async fn relay_task(
    anchor: Arc<Anchor>,
    mut conn: Arc<switch::Conn>,
    mut local: ims_msrp::UriBuf,
    mut relay: ims_msrp::UriBuf,
    mut expires: u32,
) {
    let (Some(cfg), Some(link)) = (anchor.cfg.relay.clone(), anchor.relay.as_ref()) else {
        return;
    };
    loop {
        loop {
            let half = Duration::from_secs(u64::from(expires.max(2) / 2));
            tokio::select! {
                _ = conn.ended() => break,
                _ = tokio::time::sleep(half) => {}
            }
            let mut client = auth_client(&cfg, &local, &relay);
            match anchor
                .switch
                .relay_auth(&conn, &mut client, RELAY_AUTH_WAIT)
                .await
            {
                Ok((up, e)) => {
                    *link.use_path.lock().expect("use-path lock") =
                        up.iter().map(|u| u.as_str().to_owned()).collect();
                    expires = e;
                }
                Err(e) => {
                    // a binding not refreshed lapses: a new link gets a new one
                    eprintln!(
                        "im anchor: refreshing the MSRP relay binding failed ({e}): reconnecting"
                    );
                    anchor.switch.drop_link(&conn).await;
                }
            }
        }
        anchor.clone().relay_lost().await;
        let mut wait = RELAY_RETRY;
        let next = loop {
            tokio::time::sleep(wait).await;
            match relay_link(&cfg, &anchor.host, anchor.msrp_port).await {
                Ok(r) => break r,
                Err(e) => {
                    eprintln!("im anchor: reconnecting to the MSRP relay failed: {e}");
                    wait = (wait * 2).min(RELAY_RETRY_MAX);
                }
            }
        };
        let fingerprint = next.sdp_fingerprint();
        conn = anchor
            .switch
            .adopt_relay(next.rd, next.wr, &next.dests, next.peer_fp)
            .await;
        {
            let _st = anchor.state.lock().expect("state lock");
            *link.use_path.lock().expect("use-path lock") = next.use_path;
            *link.fingerprint.lock().expect("fingerprint lock") = fingerprint;
            link.epoch.fetch_add(1, Ordering::AcqRel);
            link.up.store(true, Ordering::Release);
        }
        anchor.stats.relay_links.store(1, Ordering::Relaxed);
        (local, relay, expires) = (next.local, next.relay, next.expires);
    }
}

async fn run(
    cfg: ImSessionConfig,
    host: String,
    listener: TcpListener,
    ep: Endpoint,
    events: mpsc::UnboundedReceiver<UaEvent>,
    relay: Option<RelayStart>,
) -> ImSessionHandle {
    let msrp = listener
        .local_addr()
        .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
    let stats = Arc::new(Stats::default());
    let limits = cfg.limits.clone();
    let switch = Switch::new(limits, stats.clone());
    #[cfg(feature = "tls")]
    let (switch, fingerprint) = (
        switch.with_identity(cfg.msrps.clone()),
        cfg.msrps.as_ref().map(|i| i.fingerprint().to_string()),
    );
    #[cfg(not(feature = "tls"))]
    let fingerprint = None;
    let switch = Arc::new(switch);
    let (link, relayed) = match relay {
        Some(r) => {
            stats.relay_links.store(1, Ordering::Relaxed);
            let link = r.link();
            let conn = switch.adopt_relay(r.rd, r.wr, &r.dests, r.peer_fp).await;
            (Some(link), Some((conn, r.local, r.relay, r.expires)))
        }
        None => (None, None),
    };
    let anchor = Arc::new(Anchor {
        cfg,
        fingerprint,
        host,
        msrp_port: msrp.port(),
        ep: ep.clone(),
        state: Mutex::new(State::default()),
        stats: stats.clone(),
        switch,
        relay: link,
    });
    let mut tasks = Vec::new();
    if let Some((conn, local, relay, expires)) = relayed {
        tasks.push(tokio::spawn(relay_task(
            anchor.clone(),
            conn,
            local,
            relay,
            expires,
        )));
    }
    tasks.push(tokio::spawn(sip_loop(anchor.clone(), events)));
    tasks.push(tokio::spawn(accept_loop(anchor, listener)));
    ImSessionHandle {
        sip: ep.local_addr(),
        msrp,
        endpoint: ep,
        stats,
        tasks,
    }
}

// ------------------------------------------------------------------------------------ SIP side

async fn sip_loop(anchor: Arc<Anchor>, mut incoming: mpsc::UnboundedReceiver<UaEvent>) {
    while let Some(ev) = incoming.recv().await {
        match ev {
            UaEvent::IncomingInvite { txn, msg, .. } => {
                let a = anchor.clone();
                tokio::spawn(async move { a.on_invite(txn, msg).await });
            }
            UaEvent::IncomingRequest { txn, msg, dialog } => {
                let m = msg.as_message();
                let mut moved = None;
                let answer = match m.method() {
                    Some(ims_sip::Method::Options) => Answer::new(200),
                    Some(ims_sip::Method::Invite | ims_sip::Method::Update) => {
                        match dialog.as_ref().and_then(|d| anchor.pass_refresh(d)) {
                            Some(a) => a,
                            None => anchor.refresh(dialog.as_ref(), m.body(), &mut moved),
                        }
                    }
                    _ => Answer::new(501),
                };
                let _ = anchor.ep.respond(txn, answer).await;
                if let Some((route, leg, we_connect, old)) = moved {
                    // the party re-binds its side on its new path (RFC 4975 §5.4)
                    let a = anchor.clone();
                    tokio::spawn(async move { a.rebind(route, leg, we_connect, old).await });
                }
            }
            UaEvent::Cancelled { invite } => {
                let b = {
                    let mut st = anchor.state.lock().expect("state lock");
                    let passed = st
                        .passes
                        .iter()
                        .find(|(_, p)| p.in_txn == invite)
                        .map(|(id, p)| (*id, p.out_invite));
                    match passed {
                        Some((id, out)) => {
                            st.passes.remove(&id);
                            out
                        }
                        None => st
                            .calls
                            .values()
                            .find(|c| c.a_txn == invite)
                            .and_then(|c| c.b_invite),
                    }
                };
                if let Some(b) = b {
                    let _ = anchor.ep.cancel(b).await;
                }
            }
            UaEvent::DialogConfirmed(d) => {
                let mut st = anchor.state.lock().expect("state lock");
                let key = (d.call_id.clone(), d.remote_tag.clone());
                if let Some(p) = st.passes.values_mut().find(|p| p.in_key == key) {
                    p.in_dialog = Some(d);
                } else if let Some(c) = st.calls.values_mut().find(|c| c.a_key == key) {
                    c.a_dialog = Some(d);
                }
            }
            UaEvent::DialogTerminated { dialog, reason } => {
                if matches!(reason, EndReason::ByeSent | EndReason::Superseded) {
                    continue;
                }
                anchor.clone().end_by_dialog(&dialog).await;
            }
            _ => {}
        }
    }
}

/// Headers of the A-leg INVITE the B leg carries unchanged: the asserted identity (the S-CSCF
/// finds its served user by it when the request comes back), charging correlation, and what the
/// callee's UA and policy look at (TS 24.247 §8, TS 24.229 §5.7.5).
const COPIED_HEADERS: [&str; 8] = [
    "P-Asserted-Identity",
    "P-Charging-Vector",
    "P-Asserted-Service",
    "Subject",
    "Accept-Contact",
    "Contribution-ID",
    "Conversation-ID",
    "Privacy",
];

/// The request's Route values after the entries naming us (`local`) at the top.
fn remaining_routes(m: &ims_sip::Message<'_>, local: &SocketAddr) -> Vec<String> {
    let me = local.to_string();
    let mut routes: Vec<String> = m
        .list(ims_sip::HeaderName::Route)
        .map(|(_, v)| v.trim().to_string())
        .collect();
    while routes
        .first()
        .is_some_and(|r| crate::cscf::uri_of(r).contains(&me))
    {
        routes.remove(0);
    }
    routes
}

/// The final failure answer relayed to the other leg: the code, with the Retry-After, Warning
/// and Reason the failing side gave.
fn relayed_failure(code: u16, m: &ims_sip::Message<'_>) -> Answer {
    let mut ans = Answer::new(code);
    for h in ["Retry-After", "Warning", "Reason"] {
        if let Some(v) = m.header_str(h) {
            ans = ans.header(h, v);
        }
    }
    ans
}

fn strip_params(v: &str) -> String {
    match v.rfind('>') {
        Some(i) => v[..=i].trim().to_owned(),
        None => v.split(';').next().unwrap_or("").trim().to_owned(),
    }
}

/// An MSRP stream of an SDP body.
#[derive(Debug)]
struct MsrpStream {
    /// Its media index.
    idx: usize,
    /// Its `a=path`.
    path: Vec<String>,
    /// `TCP/TLS/MSRP` (`msrps:`).
    tls: bool,
    /// Its SHA-256 `a=fingerprint` (media level, else session level); `None` when absent or
    /// of another hash function.
    fingerprint: Option<[u8; 32]>,
}

/// An SDP `a=fingerprint` value `SHA-256 XX:XX:…` (RFC 8122 §5): the 32 bytes.
fn sha256_fingerprint(v: &str) -> Option<[u8; 32]> {
    let (hash, hex) = v.trim().split_once(char::is_whitespace)?;
    if !hash.eq_ignore_ascii_case("sha-256") {
        return None;
    }
    let mut out = [0u8; 32];
    let mut n = 0;
    for part in hex.trim().split(':') {
        if n == 32 || part.len() != 2 {
            return None;
        }
        out[n] = u8::from_str_radix(part, 16).ok()?;
        n += 1;
    }
    (n == 32).then_some(out)
}

/// The first `m=message … TCP/MSRP` (or `TCP/TLS/MSRP`) stream.
fn msrp_media(sdp: &Sdp<'_>) -> Option<MsrpStream> {
    sdp.media.iter().enumerate().find_map(|(i, m)| {
        let tls = m.proto.eq_ignore_ascii_case("TCP/TLS/MSRP");
        let ok = m.media_type() == MediaType::Message
            && (tls || m.proto.eq_ignore_ascii_case("TCP/MSRP"))
            && !m.is_rejected();
        let path: Vec<String> = m.msrp_path()?.iter().map(str::to_owned).collect();
        let fingerprint = m
            .attribute("fingerprint")
            .or_else(|| sdp.attribute("fingerprint"))
            .and_then(|a| a.value)
            .and_then(sha256_fingerprint);
        (ok && !path.is_empty()).then_some(MsrpStream {
            idx: i,
            path,
            tls,
            fingerprint,
        })
    })
}

/// `sdp` with its MSRP stream pointing at us (`path`) with `a=setup:<setup>`, other streams
/// refused, a fresh `o=`. With `fingerprint` (ours, SDP form) the stream is `TCP/TLS/MSRP` with
/// our `a=fingerprint`, else `TCP/MSRP`; the party's own fingerprint never passes on.
fn rewrite_sdp(
    sdp: &Sdp<'_>,
    idx: usize,
    host: &str,
    port: u16,
    path: &str,
    setup: &str,
    fingerprint: Option<&str>,
) -> String {
    let mut b: SessionBuilder = sdp.to_builder();
    b.origin = OriginBuf::new("ims-im", u64::from(port), 1, host);
    b.connection = Some(ConnectionBuf::new(host));
    b.attributes.retain(|a| a.name != "fingerprint");
    for (i, m) in b.media.iter_mut().enumerate() {
        m.connections.clear();
        if i != idx {
            m.port = 0;
            continue;
        }
        m.port = port;
        let at = m.attributes.iter().position(|a| a.name == "path");
        m.remove_attributes("path");
        let attr = ims_sdp::AttributeBuf::new("path", path);
        match at {
            Some(i) => m.attributes.insert(i.min(m.attributes.len()), attr),
            None => m.attributes.push(attr),
        }
        m.remove_attributes("setup");
        m.attributes
            .push(ims_sdp::AttributeBuf::new("setup", setup));
        m.remove_attributes("fingerprint");
        match fingerprint {
            Some(fp) => {
                m.proto = "TCP/TLS/MSRP".into();
                m.attributes
                    .push(ims_sdp::AttributeBuf::new("fingerprint", fp));
            }
            None => m.proto = "TCP/MSRP".into(),
        }
    }
    b.build()
}

/// The `a=setup` of media `idx` (RFC 4145 §4), lower case.
fn setup_of(sdp: &Sdp<'_>, idx: usize) -> Option<String> {
    let m = sdp.media.get(idx)?;
    m.attribute("setup")
        .and_then(|a| a.value)
        .map(|v| v.trim().to_ascii_lowercase())
}

impl Anchor {
    fn msrp_uri(&self, sid: &str, tls: bool) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        let scheme = if tls { "msrps" } else { "msrp" };
        format!("{scheme}://{host}:{}/{sid};tcp", self.msrp_port)
    }

    /// `sdp` rewritten for a party ([`rewrite_sdp`]) with our MSRP URI `own` on that leg:
    /// behind our relay ([`ImSessionConfig::relay`]) the path is its Use-Path, then `own`,
    /// and `c=`/`m=` name the relay (the first hop, RFC 4976 §6.1); else `own` alone.
    fn rewrite(
        &self,
        sdp: &Sdp<'_>,
        idx: usize,
        own: &str,
        setup: &str,
        fingerprint: Option<&str>,
    ) -> String {
        match &self.relay {
            Some(r) => {
                let path = self.via_relay(&[own.to_owned()]).join(" ");
                rewrite_sdp(sdp, idx, &r.host, r.port, &path, setup, fingerprint)
            }
            None => rewrite_sdp(
                sdp,
                idx,
                &self.host,
                self.msrp_port,
                own,
                setup,
                fingerprint,
            ),
        }
    }

    /// A path through our relay: its Use-Path first (what we send goes to it, RFC 4976 §6.1),
    /// then `path`; `path` itself without a relay.
    fn via_relay(&self, path: &[String]) -> Vec<String> {
        match &self.relay {
            Some(r) => {
                let up = r.use_path.lock().expect("use-path lock").clone();
                up.into_iter().chain(path.iter().cloned()).collect()
            }
            None => path.to_vec(),
        }
    }

    /// Our fingerprint for a leg: `Some` on `msrps:` legs.
    /// Behind an `msrps:` relay the parties' TLS ends at the relay, so the fingerprint they
    /// are given is the relay's certificate's (RFC 8122 §5: the certificate the party sees
    /// on its connection, the first hop of our path).
    fn ours(&self, tls: bool) -> Option<String> {
        if !tls {
            return None;
        }
        match &self.relay {
            Some(l) => l.fingerprint.lock().expect("fingerprint lock").clone(),
            None => self.fingerprint.clone(),
        }
    }

    /// Our relay's link is TLS (an `msrps:` relay).
    fn relay_tls(&self) -> bool {
        self.relay
            .as_ref()
            .is_some_and(|l| l.fingerprint.lock().expect("fingerprint lock").is_some())
    }

    /// The current link to our relay ([`RelayLink::epoch`]; 0 without a relay).
    fn relay_epoch(&self) -> u64 {
        self.relay
            .as_ref()
            .map_or(0, |l| l.epoch.load(Ordering::Acquire))
    }

    /// The link to our relay dropped: its binding went with it (RFC 4976 §5: a Use-Path
    /// lives on the connection its AUTH came on), so the paths every session set up over it
    /// gave the parties lead nowhere, and the switch already ended their MSRP (RFC 4975
    /// §5.4: a session fails with its connection). Each such session ends with a BYE on both
    /// legs (a party that wants to go on sets up a new session, which gets the new link's
    /// Use-Path); sessions still being set up end when their callee answers. INVITEs get 503
    /// until the link is back.
    async fn relay_lost(self: Arc<Self>) {
        let Some(link) = &self.relay else { return };
        let ended: Vec<Call> = {
            let st = self.state.lock().expect("state lock");
            link.up.store(false, Ordering::Release);
            self.stats.relay_links.store(0, Ordering::Relaxed);
            let old = link.epoch.fetch_add(1, Ordering::AcqRel);
            let ids: Vec<u64> = st
                .calls
                .iter()
                .filter(|(_, c)| c.up && c.epoch == old)
                .map(|(id, _)| *id)
                .collect();
            drop(st);
            ids.into_iter().filter_map(|id| self.forget(id)).collect()
        };
        if !ended.is_empty() {
            eprintln!(
                "im anchor: the MSRP relay link dropped: ending {} session(s)",
                ended.len()
            );
        }
        for c in ended {
            self.stats.active.fetch_sub(1, Ordering::Relaxed);
            for d in [c.a_dialog, c.b_dialog].into_iter().flatten() {
                let _ = self.ep.bye(&d).await;
            }
        }
    }

    async fn reject(&self, txn: TxnId, code: u16, why: &str) {
        self.stats.rejected.fetch_add(1, Ordering::Relaxed);
        let _ = self
            .ep
            .respond(
                txn,
                Answer::new(code).header("Warning", format!("399 ims-im \"{why}\"")),
            )
            .await;
    }

    async fn on_invite(self: Arc<Self>, txn: TxnId, msg: ims_sip::OwnedMessage) {
        if let Some(uri) = self.comes_back(&msg) {
            return self.pass_on(txn, msg, uri).await;
        }
        if self
            .relay
            .as_ref()
            .is_some_and(|l| !l.up.load(Ordering::Acquire))
        {
            // our paths lead through the relay: no session until its link is back
            self.stats.rejected.fetch_add(1, Ordering::Relaxed);
            let ans = Answer::new(503)
                .header("Retry-After", RELAY_DOWN_RETRY_AFTER.to_string())
                .header("Warning", "399 ims-im \"the MSRP relay link is down\"");
            let _ = self.ep.respond(txn, ans).await;
            return;
        }
        let m = msg.as_message();
        let parsed = Sdp::parse(m.body()).ok();
        let Some(sdp) = parsed else {
            return self.reject(txn, 488, "no SDP offer").await;
        };
        let Some(MsrpStream {
            idx,
            path: a_path,
            tls,
            fingerprint: a_fp,
        }) = msrp_media(&sdp)
        else {
            return self.reject(txn, 488, "no MSRP stream").await;
        };
        if tls && self.relay.is_some() && !self.relay_tls() {
            // the party's first hop would be our plain-TCP relay
            return self.reject(txn, 488, "msrps needs an msrps relay").await;
        }
        if tls && self.fingerprint.is_none() && !self.relay_tls() {
            return self.reject(txn, 488, "msrps is not configured").await;
        }
        if tls && a_fp.is_none() {
            return self
                .reject(txn, 488, "msrps needs a SHA-256 a=fingerprint")
                .await;
        }
        let (Some(ruri), Some(from), Some(to)) = (
            m.request_uri_str(),
            m.header_str("From"),
            m.header_str("To"),
        ) else {
            return self.reject(txn, 400, "missing headers").await;
        };
        let call_id = m
            .call_id()
            .ok()
            .flatten()
            .map(|c| c.as_str().to_owned())
            .unwrap_or_default();
        let from_tag = m
            .from()
            .ok()
            .flatten()
            .and_then(|f| f.tag().map(str::to_owned))
            .unwrap_or_default();
        let (sid_a, sid_b) = (random_id(16), random_id(16));
        let (uri_a, uri_b) = (self.msrp_uri(&sid_a, tls), self.msrp_uri(&sid_b, tls));
        // a=setup (RFC 4145 §4, RFC 6135 §4): an A that only listens (`passive`) is
        // connected to by the anchor; any other A (`active`, `actpass`, none: the RFC 4975
        // §5.4 default, the offerer connects) connects to the anchor, which answers `passive`.
        // B is offered `actpass`: it answers `passive` (or nothing: the default) and the
        // anchor connects, or `active` and B connects to the anchor.
        let a_active = setup_of(&sdp, idx).as_deref() == Some("passive");
        let offer = self.rewrite(&sdp, idx, &uri_b, "actpass", self.ours(tls).as_deref());
        // The Route set the S-CSCF left after our own entry (its `odi` URI): the B leg goes
        // back along it, so the S-CSCF continues its iFC evaluation and routes to the callee
        // (TS 24.229 §5.7.5). Without one, the configured route and next hop.
        let rest = remaining_routes(&m, &self.ep.local_addr());
        let serving = match &self.cfg.serving {
            Some(s) if rest.is_empty() => {
                let user = m
                    .list(ims_sip::HeaderName::PAssertedIdentity)
                    .next()
                    .map(|(_, v)| v.to_string())
                    .or_else(|| m.from().ok().flatten().map(|f| f.uri().as_str().to_owned()));
                user.and_then(|u| s.lookup(&crate::im_server::bare_uri(&u)))
            }
            _ => None,
        };
        let (routes, via_route) = b_leg_routes(rest, serving, &self.cfg.route);
        let mut headers: Vec<(String, String)> =
            routes.iter().map(|r| ("Route".into(), r.clone())).collect();
        for h in COPIED_HEADERS {
            for v in m.headers_named(h) {
                headers.push((h.to_string(), v.value().trim().to_string()));
            }
        }
        // (the B leg starts again at 70 hops: the endpoint writes its own Max-Forwards)
        if m.max_forwards().ok().flatten() == Some(0) {
            return self.reject(txn, 483, "too many hops").await;
        }
        let first_hop = if via_route {
            Some(crate::cscf::uri_of(&routes[0]))
        } else {
            None
        };
        let remote = match (first_hop, self.cfg.next_hop) {
            (None, Some(r)) => r,
            (hop, _) => {
                let target = hop.as_deref().unwrap_or(ruri);
                match self
                    .ep
                    .locate(target)
                    .await
                    .ok()
                    .and_then(|t| t.first().copied())
                {
                    Some(t) => t,
                    None => return self.reject(txn, 404, "cannot locate the next hop").await,
                }
            }
        };
        let params = InviteParams {
            request_uri: ruri.to_owned(),
            from: strip_params(from),
            to: strip_params(to),
            remote,
            headers,
            body: Some(("application/sdp".into(), offer.clone().into_bytes())),
        };
        // the other transport for B (msrps configured): tried when B refuses the first offer
        // as not acceptable, so a TCP caller reaches a TLS-only callee and the reverse (each
        // leg's MSRP ends at the anchor, RFC 4975 §5.4: the transports need not match)
        // (behind our relay every leg's first hop is the relay: no bridging)
        let bridge = (self.fingerprint.is_some() && self.relay.is_none()).then(|| {
            let alt_sid = random_id(16);
            let alt_uri = self.msrp_uri(&alt_sid, !tls);
            let offer = self.rewrite(&sdp, idx, &alt_uri, "actpass", self.ours(!tls).as_deref());
            let route = Arc::new(Route::new(&sid_a, &uri_a, &alt_sid, &alt_uri));
            route.side(Leg::A).set_path(&self.via_relay(&a_path));
            route.side(Leg::A).set_tls(a_fp.filter(|_| tls));
            let mut params = params.clone();
            params.body = Some(("application/sdp".into(), offer.clone().into_bytes()));
            Bridge {
                params,
                offer,
                route,
            }
        });
        // known to the switch from now on: B may connect as soon as it answers
        let route = Arc::new(Route::new(&sid_a, &uri_a, &sid_b, &uri_b));
        route.side(Leg::A).set_path(&self.via_relay(&a_path));
        route.side(Leg::A).set_tls(a_fp.filter(|_| tls));
        if tls {
            // B may answer `active` and connect over TLS before we read its fingerprint
            route.side(Leg::B).await_tls();
        }
        self.switch.add(&route);
        let id = {
            let mut st = self.state.lock().expect("state lock");
            st.next += 1;
            let id = st.next;
            st.calls.insert(
                id,
                Call {
                    a_txn: txn,
                    a_key: (call_id, from_tag),
                    a_dialog: None,
                    b_invite: None,
                    b_dialog: None,
                    a_path,
                    b_path: Vec::new(),
                    route,
                    a_active,
                    up: false,
                    a_sdp: String::new(),
                    b_sdp: offer.clone(),
                    tls,
                    b_tls: tls,
                    bridge,
                    epoch: self.relay_epoch(),
                },
            );
            id
        };
        drop(sdp);
        drop(m);
        let inv = match self.ep.invite(params).await {
            Ok(t) => t,
            Err(e) => {
                self.forget(id);
                return self.reject(txn, 500, &format!("B-leg INVITE: {e}")).await;
            }
        };
        if let Some(c) = self.state.lock().expect("state lock").calls.get_mut(&id) {
            c.b_invite = Some(inv.txn);
        }
        self.b_leg(id, txn, idx, inv).await;
    }

    /// A re-INVITE or UPDATE inside an anchored session. The anchor terminates MSRP on each
    /// leg (each party's `a=path` names the anchor), so the other party is not involved:
    /// - a refresh (no SDP: RFC 4028, RFC 3261 §14.2) or a re-offer keeping the party's MSRP
    ///   path (RFC 3264 §8 no-change offer) gets 200 with the SDP that leg already has;
    /// - a re-offer moving the party's MSRP path (it moved, or wants a new connection) gets 200
    ///   with the anchor's same path and the a=setup answer to the re-offer (RFC 4145 §4:
    ///   `passive` offered → we connect, else the party does); the side is unbound from its
    ///   old connection (which is refused from then on for this session, and closed when no
    ///   other session uses it) and re-binds on the new one; frames toward it wait meanwhile;
    /// - a re-offer without an MSRP stream gets 488 with a Warning (the session keeps its
    ///   parameters). Outside a known session: 481.
    fn refresh(&self, dialog: Option<&DialogId>, body: &[u8], moved: &mut Option<Moved>) -> Answer {
        let Some(d) = dialog else {
            return Answer::new(481);
        };
        let mut st = self.state.lock().expect("state lock");
        let found = st.calls.values_mut().find_map(|c| {
            if !c.up {
                return None;
            }
            if c.a_dialog.as_ref() == Some(d)
                || (c.a_key.0 == d.call_id && c.a_key.1 == d.remote_tag)
            {
                Some((Leg::A, c))
            } else if c.b_dialog.as_ref() == Some(d) {
                Some((Leg::B, c))
            } else {
                None
            }
        });
        let Some((leg, c)) = found else {
            return Answer::new(481);
        };
        let leg_tls = match leg {
            Leg::A => c.tls,
            Leg::B => c.b_tls,
        };
        let (path, ours) = match leg {
            Leg::A => (&mut c.a_path, &mut c.a_sdp),
            Leg::B => (&mut c.b_path, &mut c.b_sdp),
        };
        // no SDP: the 200 carries our (unchanged) SDP (RFC 3261 §14.2)
        if body.is_empty() {
            return Answer::new(200).body("application/sdp", ours.clone());
        }
        let offer = Sdp::parse(body).ok();
        let stream = offer.as_ref().and_then(|s| msrp_media(s).map(|m| (s, m)));
        let Some((sdp, ms)) =
            stream.filter(|(_, m)| m.tls == leg_tls && (!m.tls || m.fingerprint.is_some()))
        else {
            return Answer::new(488).header(
                "Warning",
                "399 ims-im \"the anchored session needs its MSRP stream\"",
            );
        };
        let (idx, new_path) = (ms.idx, ms.path);
        if new_path == *path {
            return Answer::new(200).body("application/sdp", ours.clone());
        }
        let we_connect = setup_of(sdp, idx).as_deref() == Some("passive");
        let side = c.route.side(leg);
        let answer = self.rewrite(
            sdp,
            idx,
            side.uri(),
            if we_connect { "active" } else { "passive" },
            self.ours(leg_tls).as_deref(),
        );
        side.set_path(&self.via_relay(&new_path));
        side.set_tls(ms.fingerprint.filter(|_| leg_tls));
        // before the 200 goes out: the party's first frame on its new connection binds it
        let old = self.switch.detach(&c.route, leg);
        *path = new_path;
        *ours = answer.clone();
        *moved = Some((c.route.clone(), leg, we_connect, old));
        Answer::new(200).body("application/sdp", answer)
    }

    /// After a path change: lets go of the side's old connection and, when we are the
    /// active end, connects to the new path.
    async fn rebind(
        self: Arc<Self>,
        route: Arc<Route>,
        leg: Leg,
        we_connect: bool,
        old: Option<Arc<switch::Conn>>,
    ) {
        if let Some(c) = old {
            self.switch.drop_ref(c).await;
        }
        if we_connect {
            if let Err(e) = self.switch.connect_side(&route, leg).await {
                eprintln!("im anchor: MSRP to the moved party failed: {e}");
            }
        }
    }

    /// Forgets the call. Its MSRP frames still pass for the linger (what was in flight when
    /// the BYE came, e.g. REPORTs), then the switch answers them 481 and releases its
    /// connections.
    fn forget(&self, id: u64) -> Option<Call> {
        let c = self.state.lock().expect("state lock").calls.remove(&id)?;
        c.route.side(Leg::B).no_answer();
        let (switch, route, linger) = (self.switch.clone(), c.route.clone(), self.cfg.linger);
        tokio::spawn(async move {
            tokio::time::sleep(linger).await;
            switch.remove(&route);
            switch.release(&route).await;
        });
        Some(c)
    }

    /// B refused the offer as not acceptable (488/606): the call moves to its bridge (the other
    /// transport on B's leg, a session with a new B side) and B gets a new INVITE offering it.
    /// `None`: no bridge (not configured, or tried already), or the INVITE could not be sent.
    async fn bridge_b(&self, id: u64) -> Option<ClientTransaction> {
        let (b, old, b_tls) = {
            let mut st = self.state.lock().expect("state lock");
            let c = st.calls.get_mut(&id)?;
            let b = c.bridge.take()?;
            let old = std::mem::replace(&mut c.route, b.route.clone());
            c.b_tls = !c.tls;
            c.b_sdp = b.offer.clone();
            (b, old, c.b_tls)
        };
        old.side(Leg::B).no_answer();
        self.switch.remove(&old);
        self.switch.release(&old).await;
        if b_tls {
            b.route.side(Leg::B).await_tls();
        }
        self.switch.add(&b.route);
        let inv = self.ep.invite(b.params).await.ok()?;
        if let Some(c) = self.state.lock().expect("state lock").calls.get_mut(&id) {
            c.b_invite = Some(inv.txn);
        }
        Some(inv)
    }

    /// Relays B's answers to A.
    async fn b_leg(self: Arc<Self>, id: u64, a_txn: TxnId, idx: usize, mut inv: ClientTransaction) {
        let mut relayed_1xx = Vec::new();
        let ok = loop {
            let r = match inv.next().await {
                Some(Ok(r)) => r,
                Some(Err(NetError::Timeout)) | None => {
                    self.forget(id);
                    return self
                        .reject(a_txn, 408, "no answer from the recipient")
                        .await;
                }
                Some(Err(e)) => {
                    self.forget(id);
                    return self.reject(a_txn, 502, &format!("B leg: {e}")).await;
                }
            };
            let code = r.as_message().status().unwrap_or(0);
            if code < 200 {
                if code > 100 && !relayed_1xx.contains(&code) {
                    relayed_1xx.push(code);
                    let _ = self.ep.respond(a_txn, Answer::new(code)).await;
                }
                continue;
            }
            if matches!(code, 488 | 606) {
                // B cannot take this transport: offer it the other one (once)
                if let Some(next) = self.bridge_b(id).await {
                    inv = next;
                    continue;
                }
            }
            if code >= 300 {
                self.forget(id);
                self.stats.rejected.fetch_add(1, Ordering::Relaxed);
                let ans = relayed_failure(code, &r.as_message());
                let _ = self.ep.respond(a_txn, ans).await;
                return;
            }
            break r;
        };
        let m = ok.as_message();
        let b_dialog = DialogId::of_received_response(&m);
        let answer_sdp = Sdp::parse(m.body()).ok();
        let b_stream = answer_sdp.as_ref().and_then(|s| msrp_media(s));
        let found = {
            let mut st = self.state.lock().expect("state lock");
            st.calls.get_mut(&id).map(|c| {
                c.b_dialog = b_dialog.clone();
                c.b_path = b_stream
                    .as_ref()
                    .map(|m| m.path.clone())
                    .unwrap_or_default();
                (c.route.clone(), c.a_active, c.tls, c.b_tls)
            })
        };
        // the answer keeps the offer's transport (RFC 3264 §6); msrps with a fingerprint
        let b_stream = b_stream.filter(|m| {
            found.as_ref().is_some_and(|f| f.3 == m.tls) && (!m.tls || m.fingerprint.is_some())
        });
        let (Some(sdp), Some(b_stream), Some((route, a_active, tls, b_tls))) =
            (answer_sdp, b_stream, found)
        else {
            if let Some(d) = &b_dialog {
                let _ = self.ep.bye(d).await;
            }
            self.forget(id);
            return self
                .reject(a_txn, 488, "no MSRP stream in the answer")
                .await;
        };
        route.side(Leg::B).set_path(&self.via_relay(&b_stream.path));
        route
            .side(Leg::B)
            .set_tls(b_stream.fingerprint.filter(|_| b_tls));
        // to our `actpass`: `active` → B connects to us; `passive`, none (RFC 4145 §4.1
        // default) → we connect to B
        let b_active = setup_of(&sdp, idx).as_deref() == Some("active");
        let a_setup = if a_active { "active" } else { "passive" };
        let answer = self.rewrite(
            &sdp,
            idx,
            route.side(Leg::A).uri(),
            a_setup,
            self.ours(tls).as_deref(),
        );
        if let Some(c) = self.state.lock().expect("state lock").calls.get_mut(&id) {
            c.a_sdp = answer.clone();
        }
        drop(sdp);
        drop(m);
        if !b_active {
            // the active end opens the connection (RFC 4975 §5.4, RFC 6135 §4)
            if let Err(e) = self.switch.connect_side(&route, Leg::B).await {
                if let Some(d) = &b_dialog {
                    let _ = self.ep.bye(d).await;
                }
                self.forget(id);
                return self.reject(a_txn, 502, &format!("MSRP to B: {e}")).await;
            }
        }
        let stale = {
            let mut st = self.state.lock().expect("state lock");
            let now = self.relay_epoch();
            st.calls.get_mut(&id).is_some_and(|c| {
                c.up = c.epoch == now;
                !c.up
            })
        };
        if stale {
            // the relay link our paths named dropped meanwhile (see `relay_lost`)
            if let Some(d) = &b_dialog {
                let _ = self.ep.bye(d).await;
            }
            self.forget(id);
            return self.reject(a_txn, 503, "the MSRP relay link dropped").await;
        }
        self.stats.sessions.fetch_add(1, Ordering::Relaxed);
        self.stats.active.fetch_add(1, Ordering::Relaxed);
        let _ = self
            .ep
            .respond(a_txn, Answer::new(200).body("application/sdp", answer))
            .await;
        if a_active {
            // A only listens: we connect once it has our answer
            if let Err(e) = self.switch.connect_side(&route, Leg::A).await {
                eprintln!("im anchor: MSRP to the offerer failed ({e}): ending the session");
                if let Some(c) = self.forget(id) {
                    self.stats.active.fetch_sub(1, Ordering::Relaxed);
                    for d in [c.a_dialog, c.b_dialog].into_iter().flatten() {
                        let _ = self.ep.bye(&d).await;
                    }
                }
            }
        }
    }

    /// The B-side URI of ours an INVITE offers when it is one of our own B legs coming back
    /// ([`Pass`]): the last URI of its MSRP path is ours, on the B leg of a live session.
    fn comes_back(&self, msg: &ims_sip::OwnedMessage) -> Option<String> {
        let m = msg.as_message();
        let sdp = Sdp::parse(m.body()).ok()?;
        let last = msrp_media(&sdp)?.path.pop()?;
        self.switch.is_our_b_side(&last).then_some(last)
    }

    /// Relays one of our own B legs that came back ([`Pass`]) toward the Route set it
    /// carries after our own entry (the S-CSCF's `odi`); without one, or when that B leg came
    /// back once already, 482 (a loop).
    async fn pass_on(self: Arc<Self>, txn: TxnId, msg: ims_sip::OwnedMessage, uri: String) {
        let m = msg.as_message();
        let rest = remaining_routes(&m, &self.ep.local_addr());
        let again = self
            .state
            .lock()
            .expect("state lock")
            .passes
            .values()
            .any(|p| p.uri == uri);
        if rest.is_empty() || again {
            return self
                .reject(txn, 482, "our own B leg came back with nowhere to go")
                .await;
        }
        if m.max_forwards().ok().flatten() == Some(0) {
            return self.reject(txn, 483, "too many hops").await;
        }
        let (Some(ruri), Some(from), Some(to)) = (
            m.request_uri_str(),
            m.header_str("From"),
            m.header_str("To"),
        ) else {
            return self.reject(txn, 400, "missing headers").await;
        };
        let in_key = (
            m.call_id()
                .ok()
                .flatten()
                .map(|c| c.as_str().to_owned())
                .unwrap_or_default(),
            m.from()
                .ok()
                .flatten()
                .and_then(|f| f.tag().map(str::to_owned))
                .unwrap_or_default(),
        );
        let mut headers: Vec<(String, String)> =
            rest.iter().map(|r| ("Route".into(), r.clone())).collect();
        for h in COPIED_HEADERS {
            for v in m.headers_named(h) {
                headers.push((h.to_string(), v.value().trim().to_string()));
            }
        }
        let hop = crate::cscf::uri_of(&rest[0]);
        let located = self.ep.locate(&hop).await.ok();
        let Some(remote) = located.and_then(|t| t.first().copied()) else {
            return self.reject(txn, 404, "cannot locate the next hop").await;
        };
        let offer = String::from_utf8_lossy(m.body()).into_owned();
        let params = InviteParams {
            request_uri: ruri.to_owned(),
            from: strip_params(from),
            to: strip_params(to),
            remote,
            headers,
            body: Some(("application/sdp".into(), offer.clone().into_bytes())),
        };
        drop(m);
        let id = {
            let mut st = self.state.lock().expect("state lock");
            st.next += 1;
            let id = st.next;
            st.passes.insert(
                id,
                Pass {
                    uri,
                    in_txn: txn,
                    in_key,
                    in_dialog: None,
                    out_invite: None,
                    out_dialog: None,
                    offer,
                    answer: String::new(),
                },
            );
            id
        };
        let mut inv = match self.ep.invite(params).await {
            Ok(t) => t,
            Err(e) => {
                self.state.lock().expect("state lock").passes.remove(&id);
                return self.reject(txn, 500, &format!("relayed INVITE: {e}")).await;
            }
        };
        if let Some(p) = self.state.lock().expect("state lock").passes.get_mut(&id) {
            p.out_invite = Some(inv.txn);
        }
        let mut relayed_1xx = Vec::new();
        loop {
            let r = match inv.next().await {
                Some(Ok(r)) => r,
                Some(Err(e)) => {
                    self.state.lock().expect("state lock").passes.remove(&id);
                    let code = if matches!(e, NetError::Timeout) {
                        408
                    } else {
                        502
                    };
                    return self
                        .reject(txn, code, "no answer to the relayed INVITE")
                        .await;
                }
                None => {
                    self.state.lock().expect("state lock").passes.remove(&id);
                    return self
                        .reject(txn, 408, "no answer to the relayed INVITE")
                        .await;
                }
            };
            let m = r.as_message();
            let code = m.status().unwrap_or(0);
            if code < 200 {
                if code > 100 && !relayed_1xx.contains(&code) {
                    relayed_1xx.push(code);
                    let _ = self.ep.respond(txn, Answer::new(code)).await;
                }
                continue;
            }
            if code >= 300 {
                self.state.lock().expect("state lock").passes.remove(&id);
                let ans = relayed_failure(code, &m);
                let _ = self.ep.respond(txn, ans).await;
                return;
            }
            let answer = String::from_utf8_lossy(m.body()).into_owned();
            let out_dialog = DialogId::of_received_response(&m);
            let known = {
                let mut st = self.state.lock().expect("state lock");
                st.passes.get_mut(&id).map(|p| {
                    p.out_dialog = out_dialog.clone();
                    p.answer = answer.clone();
                })
            };
            drop(m);
            if known.is_none() {
                // the returning INVITE was cancelled meanwhile
                if let Some(d) = &out_dialog {
                    let _ = self.ep.bye(d).await;
                }
                return;
            }
            let ans = Answer::new(200).body("application/sdp", answer);
            let _ = self.ep.respond(txn, ans).await;
            return;
        }
    }

    /// A refresh (re-INVITE, UPDATE) on a dialog of a [`Pass`]: 200 with the SDP that dialog
    /// has (nothing is renegotiated through it); `None`: not a pass's dialog.
    fn pass_refresh(&self, d: &DialogId) -> Option<Answer> {
        let st = self.state.lock().expect("state lock");
        st.passes.values().find_map(|p| {
            let returning = p.in_dialog.as_ref() == Some(d)
                || (p.in_key.0 == d.call_id && p.in_key.1 == d.remote_tag);
            let sdp = if returning {
                &p.answer
            } else if p.out_dialog.as_ref() == Some(d) {
                &p.offer
            } else {
                return None;
            };
            Some(Answer::new(200).body("application/sdp", sdp.clone()))
        })
    }

    /// A BYE on one dialog of a [`Pass`] is passed to the other; false: not a pass's dialog.
    async fn pass_ended(&self, d: &DialogId) -> bool {
        let found = {
            let mut st = self.state.lock().expect("state lock");
            let id = st.passes.iter().find_map(|(id, p)| {
                let returning = p.in_dialog.as_ref() == Some(d)
                    || (p.in_key.0 == d.call_id && p.in_key.1 == d.remote_tag);
                (returning || p.out_dialog.as_ref() == Some(d)).then_some((*id, returning))
            });
            id.and_then(|(id, returning)| st.passes.remove(&id).map(|p| (p, returning)))
        };
        let Some((p, returning)) = found else {
            return false;
        };
        let other = if returning { p.out_dialog } else { p.in_dialog };
        if let Some(o) = other {
            if let Ok(t) = self.ep.bye(&o).await {
                let _ = t.final_response().await;
            }
        }
        true
    }

    /// A BYE ended one leg: BYE the other, let the pipes drain, then cut them.
    async fn end_by_dialog(self: Arc<Self>, d: &DialogId) {
        if self.pass_ended(d).await {
            return;
        }
        let found = {
            let st = self.state.lock().expect("state lock");
            st.calls.iter().find_map(|(id, c)| {
                let a = c.a_dialog.as_ref() == Some(d)
                    || (c.a_key.0 == d.call_id && c.a_key.1 == d.remote_tag);
                let b = c.b_dialog.as_ref() == Some(d);
                (a || b).then_some((*id, if a { Leg::A } else { Leg::B }))
            })
        };
        let Some((id, leg)) = found else { return };
        let Some(c) = self.forget(id) else { return };
        if c.up {
            self.stats.active.fetch_sub(1, Ordering::Relaxed);
        }
        let other = match leg {
            Leg::A => c.b_dialog.clone(),
            Leg::B => c.a_dialog.clone(),
        };
        if let Some(o) = other {
            if let Ok(t) = self.ep.bye(&o).await {
                let _ = t.final_response().await;
            }
        }
    }
}

// ----------------------------------------------------------------------------------- MSRP side

async fn accept_loop(anchor: Arc<Anchor>, listener: TcpListener) {
    loop {
        let Ok((s, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        anchor.switch.accepted(s);
    }
}

#[cfg(test)]
mod tests {
    use super::switch::{precheck, rewrite_request, PendingMap};
    use super::*;
    use ims_msrp::end_line;

    const OFFER: &str =
        "v=0\r\no=alice 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n\
m=message 7394 TCP/MSRP *\r\na=accept-types:text/plain\r\na=path:msrp://10.0.0.1:7394/abc;tcp\r\n\
a=file-selector:name:\"f.bin\" type:application/octet-stream size:20\r\na=sendonly\r\n\
m=audio 4000 RTP/AVP 0\r\n";

    #[test]
    fn sdp_rewrite_keeps_file_attributes_and_points_at_us() {
        let sdp = Sdp::parse_str(OFFER).unwrap();
        let ms = msrp_media(&sdp).unwrap();
        let (idx, path) = (ms.idx, ms.path);
        assert_eq!(idx, 0);
        assert!(!ms.tls && ms.fingerprint.is_none());
        assert_eq!(path, ["msrp://10.0.0.1:7394/abc;tcp"]);
        let out = rewrite_sdp(
            &sdp,
            idx,
            "127.0.0.1",
            7073,
            "msrp://127.0.0.1:7073/xyz;tcp",
            "passive",
            None,
        );
        let re = Sdp::parse_str(&out).unwrap();
        let m = &re.media[0];
        assert_eq!(m.port, 7073);
        assert_eq!(
            m.msrp_path().unwrap().last(),
            Some("msrp://127.0.0.1:7073/xyz;tcp")
        );
        assert_eq!(m.connection().unwrap().address(), "127.0.0.1");
        assert!(out
            .contains("a=file-selector:name:\"f.bin\" type:application/octet-stream size:20\r\n"));
        assert!(
            out.contains("a=accept-types:text/plain\r\na=path:msrp://127.0.0.1:7073/xyz;tcp\r\n")
        );
        assert!(out.contains("a=sendonly"));
        assert_eq!(re.media[1].port, 0, "non-MSRP media are refused");
        assert_eq!(setup_of(&re, 0).as_deref(), Some("passive"));
        // an offer's own a=setup is replaced, not repeated (RFC 4145 §4: one per stream)
        let with = OFFER.replace("a=sendonly\r\n", "a=sendonly\r\na=setup:actpass\r\n");
        let sdp = Sdp::parse_str(&with).unwrap();
        assert_eq!(setup_of(&sdp, 0).as_deref(), Some("actpass"));
        let out = rewrite_sdp(&sdp, 0, "127.0.0.1", 7073, "msrp://h/x;tcp", "active", None);
        assert_eq!(out.matches("a=setup:").count(), 1, "{out}");
        assert!(out.contains("a=setup:active\r\n"));
    }

    /// RFC 4975 §14.1, RFC 8122 §5: an `msrps:` offer's transport and SHA-256 fingerprint are
    /// read (media level before session level); the rewritten SDP carries OUR fingerprint
    /// only, on `TCP/TLS/MSRP`; the party's never passes on, and a TCP rewrite drops it.
    #[test]
    fn msrps_offer_is_read_and_rewritten_with_our_fingerprint() {
        let theirs = (0..32)
            .map(|i| format!("{i:02X}"))
            .collect::<Vec<_>>()
            .join(":");
        let ours = format!("SHA-256 {}", ["AB"; 32].join(":"));
        let offer = OFFER
            .replace("TCP/MSRP", "TCP/TLS/MSRP")
            .replace("msrp://10.0.0.1", "msrps://10.0.0.1")
            .replace(
                "a=sendonly\r\n",
                &format!("a=sendonly\r\na=fingerprint:sha-256 {theirs}\r\n"),
            );
        let sdp = Sdp::parse_str(&offer).unwrap();
        let ms = msrp_media(&sdp).unwrap();
        assert!(ms.tls);
        let want: [u8; 32] = std::array::from_fn(|i| i as u8);
        assert_eq!(ms.fingerprint, Some(want));
        let out = rewrite_sdp(
            &sdp,
            0,
            "127.0.0.1",
            7073,
            "msrps://h/x;tcp",
            "passive",
            Some(&ours),
        );
        assert!(out.contains("m=message 7073 TCP/TLS/MSRP *\r\n"), "{out}");
        assert_eq!(out.matches("a=fingerprint:").count(), 1, "{out}");
        assert!(out.contains(&format!("a=fingerprint:{ours}\r\n")));
        let back = msrp_media(&Sdp::parse_str(&out).unwrap()).unwrap();
        assert_eq!(back.fingerprint, Some([0xAB; 32]));
        let plain = rewrite_sdp(
            &sdp,
            0,
            "127.0.0.1",
            7073,
            "msrp://h/x;tcp",
            "passive",
            None,
        );
        assert!(
            plain.contains("TCP/MSRP") && !plain.contains("TLS") && !plain.contains("fingerprint")
        );
        // other hash functions and short values are not taken
        assert_eq!(sha256_fingerprint("SHA-1 AB:CD"), None);
        assert_eq!(sha256_fingerprint("SHA-256 AB:CD"), None);
    }

    #[test]
    fn switch_demultiplexes_by_the_last_to_path_session_and_checks_first() {
        let frame = |method: &str, to: &str| {
            let w = format!(
                "MSRP t1 {method}\r\nTo-Path: {to}\r\nFrom-Path: msrp://10.0.0.1:7394/abc;tcp\r\n\
Message-ID: m1\r\nByte-Range: 1-0/0\r\n-------t1$\r\n"
            );
            ims_msrp::parse_frame(w.as_bytes()).unwrap().0
        };
        // the anchor's own URI on the leg is the last To-Path URI (RFC 4975 §7.3)
        let f = frame(
            "SEND",
            "msrp://relay.example:2855/r1;tcp msrp://127.0.0.1:7073/sidb;tcp",
        );
        assert_eq!(switch::session_of(&f.head).as_deref(), Some("sidb"));
        assert_eq!(precheck(&f.head), None);
        assert_eq!(precheck(&frame("REPORT", "msrp://h:1/x;tcp").head), None);
        // AUTH is for relays (RFC 4976), not for the anchor's sessions
        assert_eq!(precheck(&frame("AUTH", "msrp://h:1/x;tcp").head), Some(501));
        assert_eq!(
            precheck(&frame("NICKNAME", "msrp://h:1/x;tcp").head),
            Some(501)
        );
    }

    #[test]
    fn request_rewrite_changes_paths_and_tid_only() {
        let wire = b"MSRP tid111 SEND\r\nTo-Path: msrp://127.0.0.1:7073/aaa;tcp\r\n\
From-Path: msrp://10.0.0.1:7394/abc;tcp\r\nMessage-ID: msg12345\r\nSuccess-Report: yes\r\n\
Byte-Range: 1-5/5\r\nContent-Type: text/plain\r\n\r\nHello\r\n-------tid111$\r\n";
        let (f, _) = ims_msrp::parse_frame(wire).unwrap();
        let head = rewrite_request(
            &f.head,
            "tid222",
            "msrp://10.0.0.2:9/bbb;tcp",
            "msrp://127.0.0.1:7073/ccc;tcp",
        );
        assert_eq!(
            &head[..],
            &b"MSRP tid222 SEND\r\nTo-Path: msrp://10.0.0.2:9/bbb;tcp\r\n\
From-Path: msrp://127.0.0.1:7073/ccc;tcp\r\nMessage-ID: msg12345\r\nSuccess-Report: yes\r\n\
Byte-Range: 1-5/5\r\nContent-Type: text/plain\r\n\r\n"[..]
        );
        let mut whole = head.to_vec();
        whole.extend_from_slice(b"Hello");
        whole.extend_from_slice(&end_line("tid222", f.flag, true));
        let (g, _) = ims_msrp::parse_frame(&whole).unwrap();
        g.check().unwrap();
        assert_eq!(&g.body[..], b"Hello");
    }

    #[test]
    fn next_hop_from_a_sip_uri() {
        let c = ImSessionConfig::default().next_hop_uri("sip:term@127.0.0.1:6060;lr");
        assert_eq!(
            c.next_hop,
            Some(Remote::udp("127.0.0.1:6060".parse().unwrap()))
        );
        let c = ImSessionConfig::default().next_hop_uri("sip:scscf.ims.example.org");
        assert_eq!(c.next_hop, None);
    }

    #[test]
    fn b_leg_route_is_what_the_s_cscf_left_after_us() {
        let inv = ims_sip::parse_datagram(
            b"INVITE tel:+15550002 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:6061;branch=z9hG4bK-1\r\n\
Max-Forwards: 68\r\nRoute: <sip:127.0.0.1:7070;lr>\r\n\
Route: <sip:orig@127.0.0.1:6061;odi=50;lr>, <sip:as2.example.org;lr>\r\n\
From: <sip:a@ims.example.org>;tag=1\r\nTo: <tel:+15550002>\r\nCall-ID: c\r\n\
CSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n",
        )
        .unwrap();
        let me: SocketAddr = "127.0.0.1:7070".parse().unwrap();
        assert_eq!(
            remaining_routes(&inv, &me),
            [
                "<sip:orig@127.0.0.1:6061;odi=50;lr>",
                "<sip:as2.example.org;lr>"
            ]
        );
        let other: SocketAddr = "127.0.0.1:7072".parse().unwrap();
        assert_eq!(remaining_routes(&inv, &other).len(), 3);
    }

    #[test]
    fn b_leg_goes_to_the_odi_route_else_the_callers_scscf_else_the_configured_one() {
        let configured = vec!["<sip:term@127.0.0.1:6060;lr>".to_string()];
        let odi = vec!["<sip:orig@127.0.0.1:6061;odi=5;lr>".to_string()];
        assert_eq!(
            b_leg_routes(odi.clone(), Some("sip:127.0.0.1:7000".into()), &configured),
            (odi, true),
            "the S-CSCF's own Route first"
        );
        assert_eq!(
            b_leg_routes(
                Vec::new(),
                Some("<sip:scscf2.example:5060;lr>".into()),
                &configured
            ),
            (vec!["<sip:scscf2.example:5060;lr;orig>".to_string()], true)
        );
        assert_eq!(
            b_leg_routes(
                Vec::new(),
                Some("sip:s;transport=tcp;orig".into()),
                &configured
            )
            .0,
            ["<sip:s;transport=tcp;orig;lr>"]
        );
        assert_eq!(
            b_leg_routes(Vec::new(), None, &configured),
            (configured.clone(), false)
        );
    }

    #[test]
    fn pending_map_is_bounded() {
        let mut p = PendingMap::<(String, String)>::default();
        let max = PendingMap::<(String, String)>::MAX;
        for i in 0..(max + 10) {
            p.insert(i.to_string(), (String::new(), String::new()));
        }
        assert_eq!(p.map.len(), max);
        assert!(p.take("0").is_none());
        assert!(p.take(&(max + 9).to_string()).is_some());
    }
}
