//! The IM server's session part (TS 24.247 §5.2 large mode, §5.3 session mode; RFC 4975,
//! RFC 5547): a SIP back-to-back user agent for INVITEs that offer `m=message … TCP/MSRP`, and
//! the MSRP switch that anchors the media.
//!
//! ```text
//!   A ──INVITE (a=path:A)──▶ anchor ──INVITE (a=path:anchor/sid-b)──▶ next hop ─▶ B
//!   A ◀──200 (a=path:anchor/sid-a)── anchor ◀──────────200 (a=path:B)─────────── B
//!   A ──TCP──▶ anchor (listens)            anchor ──TCP──▶ B (the offerer connects, RFC 4975 §5.4)
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
//!   never held whole; each direction is one reader feeding one writer, so TCP back-pressure
//!   bounds memory.
//! - BYE from either side ends both legs.
//!
//! In the all-in-one core ([`crate::runtime`]) the anchor shares the IM server's SIP endpoint
//! ([`start_on`]): the originating iFC `INVITE` ∧ SDP `m=message` (TS 29.228 SessionDescription
//! SPT) names the IM server, and the B-leg INVITE goes back along the Route set the S-CSCF left
//! after our own entry (its `odi` URI), with the caller's P-Asserted-Identity, so the S-CSCF
//! finishes originating processing and routes to the callee. Without a Route left, B legs go
//! to [`ImSessionConfig::next_hop`] with [`ImSessionConfig::route`].
//!
//! One TCP connection per session and leg (RFC 4975 §8.5 connection sharing between sessions is
//! not done by the anchor; frames naming another session on a connection get 481).
//!
//! ```no_run
//! # async fn run() -> Result<(), ims_nf::im_session::ImSessionError> {
//! use ims_nf::im_session::{start, ImSessionConfig};
//! let anchor = start(ImSessionConfig::default()).await?; // SIP 127.0.0.1:7072, MSRP :7073
//! println!("MSRP switch on {}", anchor.msrp_addr());
//! # Ok(()) }
//! ```

use bytes::{Bytes, BytesMut};
use ims_msrp::headers::{name as msrp_name, FailureReport};
use ims_msrp::{end_line, Event, FrameBuilder, Framer, Head, Limits, Method as MsrpMethod};
use ims_net::sip::{ClientTransaction, Endpoint, EndpointConfig, Incoming, NetError};
use ims_sdp::{ConnectionBuf, MediaType, OriginBuf, Session as Sdp, SessionBuilder};
use ims_txn::dialog::DialogId;
use ims_txn::ua::{Answer, EndReason, InviteParams, UaEvent};
use ims_txn::{Remote, TxnId};
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

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
    /// User part of our Contact.
    pub user: String,
    /// MSRP framer limits (the stream threshold decides which chunks are streamed).
    pub limits: Limits,
    /// How long the MSRP pipes may drain after a BYE before they are cut.
    pub linger: Duration,
}

impl Default for ImSessionConfig {
    fn default() -> Self {
        ImSessionConfig {
            sip_addr: SocketAddr::from(([127, 0, 0, 1], 7072)),
            msrp_addr: SocketAddr::from(([127, 0, 0, 1], 7073)),
            advertised_host: None,
            next_hop: None,
            route: Vec::new(),
            user: "im".into(),
            limits: Limits::default(),
            linger: Duration::from_secs(2),
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

type Writer = Arc<tokio::sync::Mutex<OwnedWriteHalf>>;

/// The B-leg connection once bound: its reader, the framer with what was read past the bind
/// response, frames B sent before that response, and its writer.
#[derive(Debug)]
struct BConn {
    read: OwnedReadHalf,
    framer: Framer,
    early: VecDeque<Event>,
    write: Writer,
}
/// Requests forwarded in one direction, by the transaction id we gave them: the sender's
/// transaction id and the URI its response goes to.
type Pending = Arc<Mutex<PendingMap>>;

#[derive(Debug, Default)]
struct PendingMap {
    map: HashMap<String, (String, String)>,
    order: VecDeque<String>,
}

impl PendingMap {
    const MAX: usize = 65536;
    fn insert(&mut self, tid: String, v: (String, String)) {
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
    fn take(&mut self, tid: &str) -> Option<(String, String)> {
        self.map.remove(tid)
    }
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
    sid_a: String,
    sid_b: String,
    /// Our URIs on each leg.
    uri_a: String,
    uri_b: String,
    /// The parties' paths (To-Path toward them).
    a_path: Vec<String>,
    b_path: Vec<String>,
    /// The B-leg MSRP connection, until A connects.
    b_conn: Option<BConn>,
    pipes: Vec<JoinHandle<()>>,
    /// Both legs answered.
    up: bool,
    /// The SDP we gave each leg (our answer to A, our offer to B): what a refresh re-INVITE
    /// or UPDATE from that leg is answered with.
    a_sdp: String,
    b_sdp: String,
}

#[derive(Debug, Default)]
struct State {
    calls: HashMap<u64, Call>,
    by_sid: HashMap<String, u64>,
    next: u64,
}

struct Anchor {
    cfg: ImSessionConfig,
    host: String,
    msrp_port: u16,
    ep: Endpoint,
    state: Mutex<State>,
    stats: Arc<Stats>,
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
    let (tx, rx) = mpsc::unbounded_channel();
    let t0 = tokio::spawn(async move {
        let mut incoming: Incoming = incoming;
        while let Some(ev) = incoming.recv().await {
            if tx.send(ev).is_err() {
                break;
            }
        }
    });
    let mut h = run(cfg, host, listener, ep, rx);
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
    Ok(run(cfg, host, listener, endpoint, events))
}

fn run(
    cfg: ImSessionConfig,
    host: String,
    listener: TcpListener,
    ep: Endpoint,
    events: mpsc::UnboundedReceiver<UaEvent>,
) -> ImSessionHandle {
    let msrp = listener
        .local_addr()
        .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
    let stats = Arc::new(Stats::default());
    let anchor = Arc::new(Anchor {
        cfg,
        host,
        msrp_port: msrp.port(),
        ep: ep.clone(),
        state: Mutex::new(State::default()),
        stats: stats.clone(),
    });
    let t1 = tokio::spawn(sip_loop(anchor.clone(), events));
    let t2 = tokio::spawn(accept_loop(anchor, listener));
    ImSessionHandle {
        sip: ep.local_addr(),
        msrp,
        endpoint: ep,
        stats,
        tasks: vec![t1, t2],
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
                let answer = match m.method() {
                    Some(ims_sip::Method::Options) => Answer::new(200),
                    Some(ims_sip::Method::Invite | ims_sip::Method::Update) => {
                        anchor.refresh(dialog.as_ref(), m.body())
                    }
                    _ => Answer::new(501),
                };
                let _ = anchor.ep.respond(txn, answer).await;
            }
            UaEvent::Cancelled { invite } => {
                let b = {
                    let st = anchor.state.lock().expect("state lock");
                    st.calls
                        .values()
                        .find(|c| c.a_txn == invite)
                        .and_then(|c| c.b_invite)
                };
                if let Some(b) = b {
                    let _ = anchor.ep.cancel(b).await;
                }
            }
            UaEvent::DialogConfirmed(d) => {
                let mut st = anchor.state.lock().expect("state lock");
                let key = (d.call_id.clone(), d.remote_tag.clone());
                if let Some(c) = st.calls.values_mut().find(|c| c.a_key == key) {
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

fn strip_params(v: &str) -> String {
    match v.rfind('>') {
        Some(i) => v[..=i].trim().to_owned(),
        None => v.split(';').next().unwrap_or("").trim().to_owned(),
    }
}

/// The first `m=message … TCP/MSRP` stream: its index and path.
fn msrp_media(sdp: &Sdp<'_>) -> Option<(usize, Vec<String>)> {
    sdp.media.iter().enumerate().find_map(|(i, m)| {
        let ok = m.media_type() == MediaType::Message
            && m.proto.eq_ignore_ascii_case("TCP/MSRP")
            && !m.is_rejected();
        let path: Vec<String> = m.msrp_path()?.iter().map(str::to_owned).collect();
        (ok && !path.is_empty()).then_some((i, path))
    })
}

/// `sdp` with its MSRP stream pointing at us (`path`) with `a=setup:<setup>`, other streams
/// refused, a fresh `o=`.
fn rewrite_sdp(
    sdp: &Sdp<'_>,
    idx: usize,
    host: &str,
    port: u16,
    path: &str,
    setup: &str,
) -> String {
    let mut b: SessionBuilder = sdp.to_builder();
    b.origin = OriginBuf::new("ims-im", u64::from(port), 1, host);
    b.connection = Some(ConnectionBuf::new(host));
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

fn authority_of(uri: &str) -> Option<SocketAddr> {
    let u = ims_msrp::Uri::parse(uri).ok()?;
    let port = u.port_or_default();
    let host = u.host_str().trim_start_matches('[').trim_end_matches(']');
    let ip: std::net::IpAddr = host.parse().ok()?;
    Some(SocketAddr::new(ip, port))
}

impl Anchor {
    fn msrp_uri(&self, sid: &str) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        format!("msrp://{host}:{}/{sid};tcp", self.msrp_port)
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
        let m = msg.as_message();
        let parsed = Sdp::parse(m.body()).ok();
        let Some(sdp) = parsed else {
            return self.reject(txn, 488, "no SDP offer").await;
        };
        let Some((idx, a_path)) = msrp_media(&sdp) else {
            return self.reject(txn, 488, "no MSRP stream").await;
        };
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
        let (uri_a, uri_b) = (self.msrp_uri(&sid_a), self.msrp_uri(&sid_b));
        // the anchor opens the B-leg connection: it offers `active` (RFC 6135 §4.1, RFC 4145
        // §4), and answers A `passive` (A connects, RFC 4975 §5.4) unless A can only listen
        let a_setup = setup_of(&sdp, idx);
        if a_setup.as_deref() == Some("passive") {
            return self
                .reject(
                    txn,
                    488,
                    "a=setup:passive: the anchor does not connect to the offerer",
                )
                .await;
        }
        let offer = rewrite_sdp(&sdp, idx, &self.host, self.msrp_port, &uri_b, "active");
        // The Route set the S-CSCF left after our own entry (its `odi` URI): the B leg goes
        // back along it, so the S-CSCF continues its iFC evaluation and routes to the callee
        // (TS 24.229 §5.7.5). Without one, the configured route and next hop.
        let rest = remaining_routes(&m, &self.ep.local_addr());
        let via_route = !rest.is_empty();
        let routes = if via_route {
            rest
        } else {
            self.cfg.route.clone()
        };
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
        let id = {
            let mut st = self.state.lock().expect("state lock");
            st.next += 1;
            let id = st.next;
            st.by_sid.insert(sid_a.clone(), id);
            st.by_sid.insert(sid_b.clone(), id);
            st.calls.insert(
                id,
                Call {
                    a_txn: txn,
                    a_key: (call_id, from_tag),
                    a_dialog: None,
                    b_invite: None,
                    b_dialog: None,
                    sid_a,
                    sid_b,
                    uri_a,
                    uri_b,
                    a_path,
                    b_path: Vec::new(),
                    b_conn: None,
                    pipes: Vec::new(),
                    up: false,
                    a_sdp: String::new(),
                    b_sdp: offer.clone(),
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
    /// leg (each party's `a=path` names the anchor), so a re-offer that keeps the party's MSRP
    /// path — a session refresh (RFC 4028) or a no-change offer (RFC 3264 §8) — is answered
    /// here with the SDP that leg already has, without bothering the other party. A re-offer
    /// that moves the MSRP path (or drops the stream) would need a new connection on that leg:
    /// 488 Not Acceptable Here with a Warning (RFC 3261 §14.2; the session keeps its old
    /// parameters). Outside a known session: 481.
    fn refresh(&self, dialog: Option<&DialogId>, body: &[u8]) -> Answer {
        let Some(d) = dialog else {
            return Answer::new(481);
        };
        let found = {
            let st = self.state.lock().expect("state lock");
            st.calls.values().find_map(|c| {
                if !c.up {
                    return None;
                }
                if c.a_dialog.as_ref() == Some(d)
                    || (c.a_key.0 == d.call_id && c.a_key.1 == d.remote_tag)
                {
                    Some((c.a_path.clone(), c.a_sdp.clone()))
                } else if c.b_dialog.as_ref() == Some(d) {
                    Some((c.b_path.clone(), c.b_sdp.clone()))
                } else {
                    None
                }
            })
        };
        let Some((path, ours)) = found else {
            return Answer::new(481);
        };
        // no SDP: the 200 carries our (unchanged) offer (RFC 3261 §14.2)
        if !body.is_empty() {
            let same = Sdp::parse(body)
                .ok()
                .and_then(|s| msrp_media(&s).map(|(_, p)| p))
                .is_some_and(|p| p == path);
            if !same {
                return Answer::new(488).header(
                    "Warning",
                    "399 ims-im \"the anchored MSRP path cannot change\"",
                );
            }
        }
        Answer::new(200).body("application/sdp", ours)
    }

    fn forget(&self, id: u64) -> Option<Call> {
        let mut st = self.state.lock().expect("state lock");
        let c = st.calls.remove(&id)?;
        st.by_sid.remove(&c.sid_a);
        st.by_sid.remove(&c.sid_b);
        Some(c)
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
            if code >= 300 {
                self.forget(id);
                self.stats.rejected.fetch_add(1, Ordering::Relaxed);
                let m = r.as_message();
                let mut ans = Answer::new(code);
                for h in ["Retry-After", "Warning", "Reason"] {
                    if let Some(v) = m.header_str(h) {
                        ans = ans.header(h, v);
                    }
                }
                let _ = self.ep.respond(a_txn, ans).await;
                return;
            }
            break r;
        };
        let m = ok.as_message();
        let b_dialog = DialogId::of_received_response(&m);
        let answer_sdp = Sdp::parse(m.body()).ok();
        let b_path = answer_sdp
            .as_ref()
            .and_then(|s| msrp_media(s).map(|(_, p)| p));
        let (uri_a, still_there) = {
            let mut st = self.state.lock().expect("state lock");
            match st.calls.get_mut(&id) {
                Some(c) => {
                    c.b_dialog = b_dialog.clone();
                    c.b_path = b_path.clone().unwrap_or_default();
                    (c.uri_a.clone(), true)
                }
                None => (String::new(), false),
            }
        };
        let (Some(sdp), Some(b_path), true) = (answer_sdp, b_path, still_there) else {
            if let Some(d) = &b_dialog {
                let _ = self.ep.bye(d).await;
            }
            self.forget(id);
            return self
                .reject(a_txn, 488, "no MSRP stream in the answer")
                .await;
        };
        if setup_of(&sdp, idx).as_deref() == Some("active") {
            // illegal answer to an `active` offer (RFC 4145 §4.1): nobody would listen
            if let Some(d) = &b_dialog {
                let _ = self.ep.bye(d).await;
            }
            self.forget(id);
            return self
                .reject(a_txn, 488, "the recipient answered a=setup:active")
                .await;
        }
        let answer = rewrite_sdp(&sdp, idx, &self.host, self.msrp_port, &uri_a, "passive");
        if let Some(c) = self.state.lock().expect("state lock").calls.get_mut(&id) {
            c.a_sdp = answer.clone();
        }
        drop(sdp);
        drop(m);
        // the offerer (us, on the B leg) opens the connection (RFC 4975 §5.4)
        let conn = match self.connect_b(id, &b_path).await {
            Ok(c) => c,
            Err(e) => {
                if let Some(d) = &b_dialog {
                    let _ = self.ep.bye(d).await;
                }
                self.forget(id);
                return self.reject(a_txn, 502, &format!("MSRP to B: {e}")).await;
            }
        };
        if let Some(c) = self.state.lock().expect("state lock").calls.get_mut(&id) {
            c.b_conn = Some(conn);
            c.up = true;
        }
        self.stats.sessions.fetch_add(1, Ordering::Relaxed);
        self.stats.active.fetch_add(1, Ordering::Relaxed);
        let _ = self
            .ep
            .respond(a_txn, Answer::new(200).body("application/sdp", answer))
            .await;
    }

    /// Connects to B and binds the connection with an empty SEND (RFC 4975 §7.1).
    async fn connect_b(&self, id: u64, b_path: &[String]) -> std::io::Result<BConn> {
        let addr = authority_of(&b_path[0]).ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "B's MSRP URI is not an IP address",
            )
        })?;
        let s = tokio::time::timeout(Duration::from_secs(10), TcpStream::connect(addr))
            .await
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "connect"))??;
        s.set_nodelay(true)?;
        let (mut r, mut w) = s.into_split();
        let uri_b = self
            .state
            .lock()
            .expect("state lock")
            .calls
            .get(&id)
            .map(|c| c.uri_b.clone())
            .unwrap_or_default();
        // The bind SEND is repeated while B answers 481: B may accept the connection before
        // it knows the session. Once it answers 200, whatever follows reaches its session.
        let mut framer = Framer::new(self.cfg.limits.clone());
        let mut early = VecDeque::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        let mut tries = 0;
        'bind: loop {
            tries += 1;
            let tid = random_id(12);
            let bind = FrameBuilder::request(&tid, "SEND")
                .to_path(&b_path.join(" "))
                .from_path(&uri_b)
                .header(msrp_name::MESSAGE_ID, &random_id(10))
                .header(msrp_name::BYTE_RANGE, "1-0/0")
                .to_bytes();
            w.write_all(&bind).await?;
            loop {
                while let Some(ev) = framer
                    .poll()
                    .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?
                {
                    let answer = match &ev {
                        Event::Frame(f) if !f.head.is_request() => {
                            (f.head.transaction_id() == tid).then(|| f.head.status())
                        }
                        _ => None,
                    };
                    match answer {
                        Some(Some(481)) if tries < 50 => {
                            tokio::time::sleep(Duration::from_millis(20)).await;
                            continue 'bind;
                        }
                        Some(_) => break 'bind,
                        None => early.push_back(ev),
                    }
                }
                match tokio::time::timeout_at(deadline, r.read_buf(framer.buffer_mut())).await {
                    Ok(Ok(0)) => {
                        return Err(std::io::Error::new(
                            std::io::ErrorKind::UnexpectedEof,
                            "B closed the MSRP connection",
                        ))
                    }
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => return Err(e),
                    // no answer to a bodiless SEND: go on (B may send Failure-Report-less replies)
                    Err(_) => break 'bind,
                }
            }
        }
        Ok(BConn {
            read: r,
            framer,
            early,
            write: Arc::new(tokio::sync::Mutex::new(w)),
        })
    }

    /// A BYE ended one leg: BYE the other, let the pipes drain, then cut them.
    async fn end_by_dialog(self: Arc<Self>, d: &DialogId) {
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
        let linger = self.cfg.linger;
        let pipes = c.pipes;
        tokio::spawn(async move {
            tokio::time::sleep(linger).await;
            for p in pipes {
                p.abort();
            }
        });
    }
}

// ----------------------------------------------------------------------------------- MSRP side

async fn accept_loop(anchor: Arc<Anchor>, listener: TcpListener) {
    loop {
        let Ok((s, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let _ = s.set_nodelay(true);
        let a = anchor.clone();
        tokio::spawn(async move { a.on_connection(s).await });
    }
}

fn session_of(h: &Head) -> Option<String> {
    h.to_path()
        .ok()
        .and_then(|p| p.last().and_then(|u| u.session_id().map(str::to_owned)))
}

impl Anchor {
    /// A connection from A: the first frame names the session; then both pipes run.
    async fn on_connection(self: Arc<Self>, s: TcpStream) {
        let (mut r, w) = s.into_split();
        let w: Writer = Arc::new(tokio::sync::Mutex::new(w));
        let mut framer = Framer::new(self.cfg.limits.clone());
        let first = loop {
            match framer.poll() {
                Ok(Some(ev)) => break ev,
                Ok(None) => {}
                Err(_) => return,
            }
            match tokio::time::timeout(Duration::from_secs(30), r.read_buf(framer.buffer_mut()))
                .await
            {
                Ok(Ok(n)) if n > 0 => {}
                _ => return,
            }
        };
        let head = match &first {
            Event::Frame(f) => f.head.clone(),
            Event::Start(h) => h.clone(),
            _ => return,
        };
        let sid = session_of(&head).unwrap_or_default();
        let taken = {
            let mut st = self.state.lock().expect("state lock");
            let id = st.by_sid.get(&sid).copied();
            id.and_then(|id| st.calls.get_mut(&id).map(|c| (id, c)))
                .and_then(|(id, c)| {
                    let ok = c.sid_a == sid;
                    let conn = if ok { c.b_conn.take() } else { None };
                    conn.map(|bc| {
                        (
                            c.uri_a.clone(),
                            c.uri_b.clone(),
                            c.a_path.clone(),
                            c.b_path.clone(),
                            bc,
                            id,
                        )
                    })
                })
        };
        let Some((uri_a, uri_b, a_path, b_path, bconn, id)) = taken else {
            if head.is_request() && head.method() != Some(MsrpMethod::Report) {
                let _ = write_response(&w, &head, 481).await;
            }
            return;
        };
        let a_to_b: Pending = Arc::default();
        let b_to_a: Pending = Arc::default();
        let ab = Pipe {
            stats: self.stats.clone(),
            sid: sid.clone(),
            dest_path: b_path.join(" "),
            our_from: uri_b,
            back: w.clone(),
            out: bconn.write.clone(),
            forwarded: a_to_b.clone(),
            answered_by_dest: b_to_a.clone(),
        };
        let b_sid = ims_msrp::Uri::parse(&ab.our_from)
            .ok()
            .and_then(|u| u.session_id().map(str::to_owned))
            .unwrap_or_default();
        let ba = Pipe {
            stats: self.stats.clone(),
            sid: b_sid,
            dest_path: a_path.join(" "),
            our_from: uri_a,
            back: bconn.write.clone(),
            out: w,
            forwarded: b_to_a,
            answered_by_dest: a_to_b,
        };
        let t1 = tokio::spawn(ab.run(framer, r, VecDeque::from([first])));
        let t2 = tokio::spawn(ba.run(bconn.framer, bconn.read, bconn.early));
        let mut st = self.state.lock().expect("state lock");
        match st.calls.get_mut(&id) {
            Some(c) => c.pipes.extend([t1, t2]),
            None => {
                // the call ended meanwhile
                t1.abort();
                t2.abort();
            }
        }
    }
}

async fn write_response(w: &Writer, h: &Head, code: u16) -> std::io::Result<()> {
    let (Ok(from), Ok(to)) = (h.from_path(), h.to_path()) else {
        return Ok(());
    };
    let (Some(f), Some(t)) = (from.first(), to.last()) else {
        return Ok(());
    };
    let bytes = FrameBuilder::response(h.transaction_id(), code, None)
        .to_path(f.as_str())
        .from_path(t.as_str())
        .to_bytes();
    w.lock().await.write_all(&bytes).await
}

/// One direction of a session: frames read from the source go, rewritten, to `out`.
struct Pipe {
    stats: Arc<Stats>,
    /// Our session-id on the source leg.
    sid: String,
    /// To-Path toward the destination.
    dest_path: String,
    /// Our URI on the destination leg.
    our_from: String,
    /// The source connection's writer (for our own error responses).
    back: Writer,
    /// The destination connection's writer.
    out: Writer,
    /// Requests we forwarded in this direction.
    forwarded: Pending,
    /// Requests forwarded the other way: their responses travel in this direction.
    answered_by_dest: Pending,
}

/// A request head rewritten for the next leg.
fn rewrite_request(h: &Head, tid: &str, to: &str, from: &str) -> Bytes {
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

enum Verdict {
    /// Forward with this new transaction id.
    Forward(String),
    /// Drop (answered or not answerable).
    Drop,
}

impl Pipe {
    async fn run(self, mut framer: Framer, mut r: OwnedReadHalf, mut pending: VecDeque<Event>) {
        let mut streaming: Option<(String, tokio::sync::OwnedMutexGuard<OwnedWriteHalf>)> = None;
        let mut dropping = false;
        loop {
            let ev = match pending.pop_front() {
                Some(ev) => ev,
                None => match framer.poll() {
                    Ok(Some(ev)) => ev,
                    Ok(None) => match r.read_buf(framer.buffer_mut()).await {
                        Ok(n) if n > 0 => continue,
                        _ => break,
                    },
                    Err(_) => break,
                },
            };
            let res = match ev {
                Event::Frame(f) => self.whole(f).await,
                Event::Start(h) => match self.request_verdict(&h).await {
                    Verdict::Forward(tid) => {
                        let head = rewrite_request(&h, &tid, &self.dest_path, &self.our_from);
                        let mut g = self.out.clone().lock_owned().await;
                        let res = g.write_all(&head).await;
                        streaming = Some((tid, g));
                        dropping = false;
                        res
                    }
                    Verdict::Drop => {
                        dropping = true;
                        Ok(())
                    }
                },
                Event::Data(d) => match &mut streaming {
                    Some((_, g)) if !dropping => {
                        self.stats
                            .body_bytes
                            .fetch_add(d.len() as u64, Ordering::Relaxed);
                        g.write_all(&d).await
                    }
                    _ => Ok(()),
                },
                Event::End(flag) => match streaming.take() {
                    Some((tid, mut g)) if !dropping => {
                        g.write_all(&end_line(&tid, flag, true)).await
                    }
                    _ => {
                        dropping = false;
                        Ok(())
                    }
                },
            };
            if res.is_err() {
                break;
            }
        }
        drop(streaming);
        let _ = self.out.lock().await.shutdown().await;
    }

    /// Decides what happens to a request from the source; answers it ourselves when it is
    /// refused.
    async fn request_verdict(&self, h: &Head) -> Verdict {
        let method = h.method().unwrap_or(MsrpMethod::Unknown(""));
        let is_report = method == MsrpMethod::Report;
        let fr = h.failure_report().unwrap_or_default();
        let may_answer = !is_report && fr != FailureReport::No;
        let code = if h.fault().is_some() || h.to_path().is_err() || h.from_path().is_err() {
            400
        } else if session_of(h).as_deref() != Some(self.sid.as_str()) {
            481
        } else if !matches!(method, MsrpMethod::Send | MsrpMethod::Report) {
            501
        } else {
            0
        };
        if code != 0 {
            if may_answer {
                let _ = write_response(&self.back, h, code).await;
            }
            return Verdict::Drop;
        }
        let tid = random_id(12);
        if !is_report && fr != FailureReport::No {
            let resp_to = h
                .from_path()
                .ok()
                .and_then(|p| p.first().map(|u| u.as_str().to_owned()))
                .unwrap_or_default();
            self.forwarded
                .lock()
                .expect("pending lock")
                .insert(tid.clone(), (h.transaction_id().to_owned(), resp_to));
        }
        self.stats.requests.fetch_add(1, Ordering::Relaxed);
        Verdict::Forward(tid)
    }

    async fn whole(&self, f: ims_msrp::Frame) -> std::io::Result<()> {
        let h = &f.head;
        if !h.is_request() {
            // a response to a request we forwarded the other way: back to its sender
            let Some((tid, to)) = self
                .answered_by_dest
                .lock()
                .expect("pending lock")
                .take(h.transaction_id())
            else {
                return Ok(());
            };
            let code = h.status().unwrap_or(500);
            let bytes = FrameBuilder::response(&tid, code, h.comment())
                .to_path(&to)
                .from_path(&self.our_from)
                .to_bytes();
            self.stats.responses.fetch_add(1, Ordering::Relaxed);
            return self.out.lock().await.write_all(&bytes).await;
        }
        let Verdict::Forward(tid) = self.request_verdict(h).await else {
            return Ok(());
        };
        let head = rewrite_request(h, &tid, &self.dest_path, &self.our_from);
        let tail = end_line(&tid, f.flag, h.has_content_stuff());
        self.stats
            .body_bytes
            .fetch_add(f.body.len() as u64, Ordering::Relaxed);
        let mut buf = BytesMut::with_capacity(head.len() + f.body.len() + tail.len());
        buf.extend_from_slice(&head);
        buf.extend_from_slice(&f.body);
        buf.extend_from_slice(&tail);
        self.out.lock().await.write_all(&buf).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OFFER: &str =
        "v=0\r\no=alice 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n\
m=message 7394 TCP/MSRP *\r\na=accept-types:text/plain\r\na=path:msrp://10.0.0.1:7394/abc;tcp\r\n\
a=file-selector:name:\"f.bin\" type:application/octet-stream size:20\r\na=sendonly\r\n\
m=audio 4000 RTP/AVP 0\r\n";

    #[test]
    fn sdp_rewrite_keeps_file_attributes_and_points_at_us() {
        let sdp = Sdp::parse_str(OFFER).unwrap();
        let (idx, path) = msrp_media(&sdp).unwrap();
        assert_eq!(idx, 0);
        assert_eq!(path, ["msrp://10.0.0.1:7394/abc;tcp"]);
        let out = rewrite_sdp(
            &sdp,
            idx,
            "127.0.0.1",
            7073,
            "msrp://127.0.0.1:7073/xyz;tcp",
            "passive",
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
        let out = rewrite_sdp(&sdp, 0, "127.0.0.1", 7073, "msrp://h/x;tcp", "active");
        assert_eq!(out.matches("a=setup:").count(), 1, "{out}");
        assert!(out.contains("a=setup:active\r\n"));
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
    fn pending_map_is_bounded() {
        let mut p = PendingMap::default();
        for i in 0..(PendingMap::MAX + 10) {
            p.insert(i.to_string(), (String::new(), String::new()));
        }
        assert_eq!(p.map.len(), PendingMap::MAX);
        assert!(p.take("0").is_none());
        assert!(p.take(&(PendingMap::MAX + 9).to_string()).is_some());
    }
}
