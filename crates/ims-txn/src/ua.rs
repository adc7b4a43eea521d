//! The UA core (RFC 3261 §8, §12–15) over a [`TransactionLayer`]: INVITE / ACK / BYE / CANCEL,
//! early dialogs and forking, 2xx retransmission (UAS) and 2xx ACK (UAC), re-INVITE and UPDATE
//! glare (491 and the §14.1 back-off), reliable provisional responses (RFC 3262 PRACK) and
//! session timers (RFC 4028).
//!
//! Same sans-IO shape as the transaction layer: [`UserAgent::handle_input`],
//! [`UserAgent::poll_output`], [`UserAgent::poll_timeout`], [`UserAgent::handle_timeout`], plus
//! calls for what the application wants to do ([`UserAgent::invite`], [`UserAgent::respond`],
//! [`UserAgent::bye`], ...). Next-hop resolution (RFC 3263) stays with the caller: out-of-dialog
//! requests name their [`Remote`]; in-dialog requests go to the peer of the dialog-creating
//! transaction.

use crate::dialog::{Dialog, DialogId, DialogState};
use crate::hash::FastMap;
use crate::layer::{Config, Event, Input, Output, TransactionLayer, Transmit, TxnId};
use crate::sparse::Shrink;
use crate::{Remote, TxnError};
use bytes::Bytes;
use ims_sip::headers::{MinSe, RAck, RSeq, Require, SessionExpires, Supported};
use ims_sip::{HeaderName, Message, Method, OwnedMessage, ResponseBuilder};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::time::{Duration, Instant};

/// Settings of a [`UserAgent`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UaConfig {
    /// Transaction layer settings. Merged-request detection is on for a UA.
    pub layer: Config,
    /// Our Contact URI, e.g. `sip:alice@192.0.2.1:5060`.
    pub contact: String,
    /// Our Via sent-by, e.g. `192.0.2.1:5060`.
    pub sent_by: String,
    /// Offer and use reliable provisional responses (RFC 3262, option tag `100rel`).
    pub reliable_provisional: bool,
    /// Session interval we ask for in INVITE (RFC 4028), `None` for no session timer.
    pub session_expires: Option<u32>,
    /// Our Min-SE (RFC 4028 §5), at least 90.
    pub min_se: u32,
    /// Seed of the tag, branch, Call-ID and back-off generator. Give every UA its own (from the
    /// OS random source in a real endpoint): two UAs with one seed make the same tags.
    pub seed: u64,
}

impl Default for UaConfig {
    fn default() -> Self {
        UaConfig {
            layer: Config {
                merged_request_detection: true,
                ..Config::default()
            },
            contact: "sip:ua@127.0.0.1:5060".into(),
            sent_by: "127.0.0.1:5060".into(),
            reliable_provisional: true,
            session_expires: None,
            min_se: 90,
            seed: 0x9e37_79b9_7f4a_7c15,
        }
    }
}

/// Why a dialog ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum EndReason {
    /// The peer sent BYE.
    ByeReceived,
    /// We sent BYE and it was answered (or timed out).
    ByeSent,
    /// The INVITE got this non-2xx final response (early dialogs of the UAC), or we answered it so.
    Rejected(u16),
    /// The INVITE was cancelled.
    Cancelled,
    /// The INVITE transaction timed out.
    Timeout,
    /// We retransmitted our 2xx for 64·T1 without an ACK (RFC 3261 §13.3.1.4); a BYE was sent.
    NoAck,
    /// The session interval passed without a refresh (RFC 4028 §10); a BYE was sent.
    SessionExpired,
    /// An early dialog of a forked INVITE that was never answered: it ends with the INVITE
    /// client transaction after another fork's 2xx (RFC 3261 §13.2.2.4).
    Superseded,
    /// A second (third, …) 2xx of a forked INVITE, from another dialog than the first 2xx: the
    /// core ACKed it and ended it with BYE (RFC 3261 §13.2.2.4); reported when the BYE is
    /// answered or times out.
    ExtraFork,
}

/// Events for the application.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum UaEvent {
    /// A new INVITE (outside any dialog). Answer with [`UserAgent::respond`].
    IncomingInvite {
        /// Its server transaction.
        txn: TxnId,
        /// The INVITE.
        msg: OwnedMessage,
        /// Where it came from.
        remote: Remote,
    },
    /// Any other request the application answers: a re-INVITE, UPDATE, INFO, MESSAGE, OPTIONS...
    /// (BYE, PRACK, CANCEL and ACK are handled by the core).
    IncomingRequest {
        /// Its server transaction.
        txn: TxnId,
        /// The dialog, for an in-dialog request.
        dialog: Option<DialogId>,
        /// The request.
        msg: OwnedMessage,
    },
    /// A response to a request we sent (retransmitted 2xx and repeated reliable 1xx are not
    /// repeated here).
    Response {
        /// The client transaction.
        txn: TxnId,
        /// The dialog it belongs to, if any.
        dialog: Option<DialogId>,
        /// The response.
        msg: OwnedMessage,
    },
    /// An early dialog was created (1xx with a To tag; one per fork).
    DialogEarly(DialogId),
    /// A dialog was confirmed (2xx).
    DialogConfirmed(DialogId),
    /// A dialog ended.
    DialogTerminated {
        /// Which.
        dialog: DialogId,
        /// Why.
        reason: EndReason,
    },
    /// The ACK for our 2xx arrived.
    AckReceived {
        /// The dialog.
        dialog: DialogId,
        /// The ACK (its body is the answer when the 2xx carried the offer).
        msg: OwnedMessage,
    },
    /// An incoming INVITE was cancelled; the core answered 200 to the CANCEL and 487 to the INVITE.
    Cancelled {
        /// The INVITE's server transaction.
        invite: TxnId,
    },
    /// The PRACK for our reliable provisional response arrived (and was answered 200).
    PrackReceived {
        /// The dialog.
        dialog: DialogId,
        /// The RSeq acknowledged.
        rseq: u32,
    },
    /// A request we sent got no final response (Timer B or F).
    Timeout {
        /// The client transaction.
        txn: TxnId,
    },
    /// A transport error on a transaction.
    TransportError {
        /// The transaction.
        txn: TxnId,
    },
    /// Our INVITE met 422 (Session Interval Too Small, RFC 4028 §6) and the core sent it again
    /// with Session-Expires and Min-SE raised to the 422's Min-SE (RFC 4028 §7.4): same
    /// Call-ID, From tag and To, CSeq + 1, new branch. Events of the new INVITE keep reporting
    /// `txn`, the id [`UserAgent::invite`] returned, and [`UserAgent::cancel`] takes it. The
    /// same for a session refresh (re-INVITE or UPDATE in a dialog) that met 422: sent again
    /// with the dialog's next CSeq.
    SessionIntervalRetry {
        /// The INVITE as the application knows it.
        txn: TxnId,
        /// The new client transaction (see [`UserAgent::current_txn`]).
        new_txn: TxnId,
        /// The Session-Expires of the new INVITE.
        session_expires: u32,
        /// The Min-SE of the new INVITE.
        min_se: u32,
    },
    /// A 2xx of our forked INVITE arrived from another dialog after the first 2xx: the core
    /// ACKed it and sent BYE (RFC 3261 §13.2.2.4); the dialog ends with
    /// [`EndReason::ExtraFork`]. Keep it instead with [`UserAgent::set_bye_extra_forks`].
    ExtraForkAnswered {
        /// The INVITE.
        txn: TxnId,
        /// The extra dialog.
        dialog: DialogId,
        /// Its 2xx.
        msg: OwnedMessage,
    },
    /// A re-INVITE or UPDATE of ours met 491 (glare); it is sent again at `at` (RFC 3261 §14.1).
    GlareRetry {
        /// The dialog.
        dialog: DialogId,
        /// When the request is sent again.
        at: Instant,
    },
}

/// What the UA hands back through [`UserAgent::poll_output`].
// see `Output`: messages move by value, once
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum UaOutput {
    /// Bytes to send.
    Transmit(Transmit),
    /// An event for the application.
    Event(UaEvent),
}

/// The parts of a response the application chooses; the core adds Via, From, To (with the tag),
/// Call-ID, CSeq, Contact and, where they apply, Require/RSeq and Session-Expires.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Answer {
    /// Status code.
    pub code: u16,
    /// Extra header lines.
    pub headers: Vec<(String, String)>,
    /// Body and its Content-Type.
    pub body: Option<(String, Vec<u8>)>,
    /// Send a 101–199 reliably (RFC 3262) when the UAC supports `100rel`.
    pub reliable: bool,
}

impl Answer {
    /// An answer with this status and nothing else.
    pub fn new(code: u16) -> Self {
        Answer {
            code,
            ..Answer::default()
        }
    }
    /// Adds a header.
    pub fn header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }
    /// Sets the body.
    pub fn body(mut self, content_type: &str, body: impl Into<Vec<u8>>) -> Self {
        self.body = Some((content_type.into(), body.into()));
        self
    }
    /// Asks for reliable delivery of a provisional response.
    pub fn reliable(mut self) -> Self {
        self.reliable = true;
        self
    }
}

/// A new INVITE (outside a dialog).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InviteParams {
    /// Request-URI.
    pub request_uri: String,
    /// From value, without tag (`"Alice" <sip:alice@example.com>`).
    pub from: String,
    /// To value (`<sip:bob@example.com>`).
    pub to: String,
    /// Where to send it (the outbound proxy or the resolved Request-URI).
    pub remote: Remote,
    /// Extra header lines (Route for a preloaded route set, P-Preferred-Identity, ...).
    pub headers: Vec<(String, String)>,
    /// Body (the SDP offer) and its Content-Type.
    pub body: Option<(String, Vec<u8>)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum UacKind {
    InitialInvite,
    ReInvite,
    Update,
    Bye,
    Prack,
    Cancel,
    Other,
}

#[derive(Debug)]
struct UacTxn {
    kind: UacKind,
    request: OwnedMessage,
    remote: Remote,
    dialog: Option<DialogId>,
    /// Initial INVITE: the dialogs its responses created (forking).
    forks: Vec<DialogId>,
    cancel_pending: bool,
    got_provisional: bool,
    final_seen: bool,
    /// Initial INVITE: the dialog of the first 2xx (RFC 3261 §13.2.2.4).
    answered: Option<DialogId>,
    /// INVITE, re-INVITE or UPDATE: how many times it was re-sent after 422 (RFC 4028 §7.4).
    retries: u8,
}

#[derive(Debug)]
struct UasTxn {
    request: OwnedMessage,
    remote: Remote,
    local_tag: String,
    dialog: Option<DialogId>,
    final_sent: bool,
    initial_invite: bool,
    is_invite: bool,
}

#[derive(Debug, Clone)]
struct Reliable1xx {
    txn: TxnId,
    rseq: u32,
    cseq: u32,
    msg: OwnedMessage,
    interval: Duration,
    started: Instant,
}

#[derive(Debug, Clone)]
struct Pending2xx {
    txn: TxnId,
    cseq: u32,
    msg: OwnedMessage,
    interval: Duration,
    started: Instant,
}

#[derive(Debug, Clone)]
struct SessionTimer {
    interval: u32,
    we_refresh: bool,
}

/// A re-INVITE or UPDATE to send again after 491: its method and body.
type Resend = (Method<'static>, Option<(String, Vec<u8>)>);

#[derive(Debug)]
struct DialogEntry {
    dialog: Dialog,
    remote: Remote,
    /// UAC: the ACK of the latest 2xx to an INVITE, by CSeq, re-sent for each 2xx retransmission.
    ack: Option<(u32, Bytes)>,
    invite_out: Option<TxnId>,
    invite_in: Option<TxnId>,
    update_out: Option<TxnId>,
    /// Body of a re-INVITE/UPDATE that met 491, to send again.
    glare: Option<Resend>,
    pending_2xx: Option<Pending2xx>,
    reliable_1xx: Option<Reliable1xx>,
    last_rseq_out: u32,
    last_rseq_in: Option<u32>,
    session: Option<SessionTimer>,
    call_id_owner: bool,
    /// A 2xx of a forked INVITE after the first one: ACKed and ended with BYE.
    extra_fork: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum UaTimer {
    Retransmit2xx(DialogId),
    Reliable1xx(DialogId),
    Glare(DialogId),
    SessionRefresh(DialogId),
    SessionExpire(DialogId),
}

/// A user agent core: UAC and UAS at once, any number of dialogs.
#[derive(Debug)]
pub struct UserAgent {
    cfg: UaConfig,
    layer: TransactionLayer,
    out: VecDeque<UaOutput>,
    dialogs: HashMap<DialogId, DialogEntry>,
    uac: FastMap<TxnId, UacTxn>,
    uas: FastMap<TxnId, UasTxn>,
    timers: BinaryHeap<Reverse<(Instant, u64, UaTimer)>>,
    live: HashMap<UaTimer, Instant>,
    rng: u64,
    counter: u64,
    seq: u64,
    /// INVITEs re-sent after 422: new client transaction → the id the application holds.
    alias: FastMap<TxnId, TxnId>,
    /// The reverse: the application's id → the INVITE transaction now in flight.
    current: FastMap<TxnId, TxnId>,
    retry_422: bool,
    bye_extra_forks: bool,
    /// Via sent-by for some transports when it differs from `cfg.sent_by` (a TLS listener on
    /// its own port).
    sent_by_for: Vec<(crate::Transport, String)>,
    /// Answered INVITEs whose client transaction ended (Timer M), kept 64·T1 longer so a 2xx of
    /// another fork arriving late still gets its ACK and BYE.
    finished: Vec<FinishedInvite>,
}

/// An answered initial INVITE after its client transaction ended (RFC 6026 Timer M).
#[derive(Debug)]
struct FinishedInvite {
    /// The application's id of the INVITE.
    txn: TxnId,
    request: OwnedMessage,
    remote: Remote,
    /// The dialog of the first 2xx.
    answered: Option<DialogId>,
    /// Late forks already handled: their dialog and ACK (re-sent for each retransmission).
    handled: Vec<(DialogId, Bytes)>,
    until: Instant,
}

/// How many times one INVITE is re-sent after 422 (each must raise Min-SE).
pub const MAX_422_RETRIES: u8 = 3;

/// `req` rebuilt for a 422 retry (RFC 4028 §7.4): a new Via and CSeq, the given Session-Expires
/// and Min-SE, every other header and the body unchanged.
fn with_session_timer(
    req: &Message<'_>,
    method: Method<'_>,
    ruri: &str,
    via: &str,
    seq: u32,
    session_expires: impl std::fmt::Display,
    min_se: u32,
) -> Option<OwnedMessage> {
    let mut b = ims_sip::RequestBuilder::new(method, ruri).header("Via", via);
    for h in req.headers() {
        match h.name() {
            HeaderName::Via
            | HeaderName::CSeq
            | HeaderName::SessionExpires
            | HeaderName::MinSe
            | HeaderName::ContentLength
            | HeaderName::ContentType => {}
            _ => b = b.header(h.raw_name(), h.value()),
        }
    }
    b = b
        .header("CSeq", format_args!("{seq} {method}"))
        .header("Session-Expires", session_expires)
        .header("Min-SE", min_se);
    if let Some(ct) = req.header(HeaderName::ContentType) {
        b = b.body(ct, req.body().to_vec());
    }
    b.build().ok()
}

fn static_method(m: Method<'_>) -> Method<'static> {
    match m {
        Method::Invite => Method::Invite,
        Method::Update => Method::Update,
        Method::Bye => Method::Bye,
        Method::Info => Method::Info,
        Method::Message => Method::Message,
        Method::Options => Method::Options,
        Method::Prack => Method::Prack,
        Method::Refer => Method::Refer,
        Method::Notify => Method::Notify,
        _ => Method::Other("UNKNOWN"),
    }
}

fn has_option(m: &Message<'_>, tag: &str) -> (bool, bool) {
    let supported = m
        .get_all::<Supported<'_>>()
        .filter_map(Result::ok)
        .any(|s| s.0.eq_ignore_ascii_case(tag));
    let required = m
        .get_all::<Require<'_>>()
        .filter_map(Result::ok)
        .any(|s| s.0.eq_ignore_ascii_case(tag));
    (supported || required, required)
}

impl UserAgent {
    /// A UA with no dialogs.
    pub fn new(cfg: UaConfig) -> Self {
        let layer = TransactionLayer::new(cfg.layer);
        // splitmix64 of the seed, so nearby seeds give unrelated sequences
        let mut z = cfg.seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        let rng = (z ^ (z >> 31)) | 1;
        UserAgent {
            cfg,
            layer,
            out: VecDeque::new(),
            dialogs: HashMap::new(),
            uac: FastMap::default(),
            uas: FastMap::default(),
            timers: BinaryHeap::new(),
            live: HashMap::new(),
            rng,
            counter: 0,
            seq: 0,
            alias: FastMap::default(),
            current: FastMap::default(),
            retry_422: true,
            bye_extra_forks: true,
            sent_by_for: Vec::new(),
            finished: Vec::new(),
        }
    }

    /// The Via sent-by of requests sent over `transport` (RFC 3261 §18.1.1: the address where
    /// responses over that transport are to be sent): `sent_by` for this transport instead of
    /// [`UaConfig::sent_by`], e.g. the TLS port of an endpoint that listens for TLS on another
    /// port than for UDP and TCP.
    pub fn set_sent_by(&mut self, transport: crate::Transport, sent_by: impl Into<String>) {
        let sent_by = sent_by.into();
        self.sent_by_for.retain(|(t, _)| *t != transport);
        self.sent_by_for.push((transport, sent_by));
    }

    /// The peers of live transactions and dialogs (a peer may appear several times): a
    /// transport that closes idle connections keeps the ones these use, so in-dialog requests
    /// can still reach a peer that connected to us.
    pub fn remotes_in_use(&self) -> impl Iterator<Item = Remote> + '_ {
        self.layer
            .remotes()
            .chain(self.dialogs.values().map(|e| e.remote))
    }

    /// The Via sent-by used for `transport` (see [`UserAgent::set_sent_by`]).
    pub fn sent_by(&self, transport: crate::Transport) -> &str {
        self.sent_by_for
            .iter()
            .find(|(t, _)| *t == transport)
            .map_or(self.cfg.sent_by.as_str(), |(_, s)| s.as_str())
    }

    /// Re-send an INVITE that met 422 with the larger Min-SE (RFC 4028 §7.4), at most
    /// [`MAX_422_RETRIES`] times and only while the 422 raises Min-SE; on by default. Off, the
    /// 422 reaches the application as a [`UaEvent::Response`] (see [`UserAgent::min_se_of`]).
    pub fn set_retry_422(&mut self, on: bool) {
        self.retry_422 = on;
    }

    /// After the first 2xx of a forked INVITE, ACK and BYE every 2xx from another dialog (RFC
    /// 3261 §13.2.2.4: a UAC that wants one dialog); on by default. Off, each such dialog is
    /// confirmed and ACKed and left to the application.
    pub fn set_bye_extra_forks(&mut self, on: bool) {
        self.bye_extra_forks = on;
    }

    /// The client transaction in flight for the INVITE the application knows as `txn` (the
    /// same id unless it was re-sent after 422).
    pub fn current_txn(&self, txn: TxnId) -> TxnId {
        self.current.get(&txn).copied().unwrap_or(txn)
    }

    /// The id the application knows for client transaction `txn`.
    fn public_txn(&self, txn: TxnId) -> TxnId {
        self.alias.get(&txn).copied().unwrap_or(txn)
    }

    /// The settings.
    pub fn config(&self) -> &UaConfig {
        &self.cfg
    }

    /// The transaction layer underneath (read-only).
    pub fn layer(&self) -> &TransactionLayer {
        &self.layer
    }

    /// Keeps the last `n` requests and responses sent through the transaction layer
    /// ([`TransactionLayer::keep_sent`]), so a transport handing them to a co-located receiver
    /// can give it the parsed message ([`TransactionLayer::sent_message`] on
    /// [`UserAgent::layer`]).
    pub fn keep_sent(&mut self, n: usize) {
        self.layer.keep_sent(n);
    }

    /// The UDP peers reached without loss (co-located endpoints the driver hands messages to in
    /// memory): their transactions run with the reliable-transport timers, see
    /// [`TransactionLayer::set_lossless`].
    pub fn set_lossless(&mut self, peers: crate::LosslessPeers) {
        self.layer.set_lossless(peers);
    }

    /// A dialog by id.
    pub fn dialog(&self, id: &DialogId) -> Option<&Dialog> {
        self.dialogs.get(id).map(|d| &d.dialog)
    }

    /// Every dialog that has not ended.
    pub fn dialogs(&self) -> impl Iterator<Item = &Dialog> {
        self.dialogs.values().map(|d| &d.dialog)
    }

    fn random(&mut self) -> u64 {
        // xorshift64*: ids and back-off only, not security
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn token(&mut self) -> String {
        let mut s = String::with_capacity(24);
        self.push_token(&mut s);
        s
    }

    /// Appends a fresh token: the counter in hex, then 8 hex digits of randomness
    /// (`format!("{:x}{:08x}", …)` without the formatting machinery).
    fn push_token(&mut self, out: &mut String) {
        self.counter += 1;
        let r = self.random();
        push_hex(out, self.counter, 1);
        push_hex(out, u64::from(r as u32), 8);
    }

    /// A fresh RFC 3261 branch (`z9hG4bK…`).
    pub fn new_branch(&mut self) -> String {
        let mut s = String::with_capacity(32);
        s.push_str(ims_sip::headers::MAGIC_COOKIE);
        self.push_token(&mut s);
        s
    }

    /// The Via value of a new client transaction toward `transport`:
    /// `SIP/2.0/<transport> <sent-by>;branch=<a new branch>;rport` (RFC 3261 §8.1.1.7, RFC 3581).
    pub fn new_via(&mut self, transport: crate::Transport) -> String {
        let mut s = String::with_capacity(80);
        s.push_str("SIP/2.0/");
        s.push_str(transport.as_str());
        s.push(' ');
        s.push_str(self.sent_by(transport));
        self.push_via_params(&mut s);
        s
    }

    /// Appends the parameters of [`UserAgent::new_via`] (`;branch=<a new branch>;rport`) to
    /// `s`, for a caller that writes the front `SIP/2.0/<transport> <sent-by>` itself
    /// ([`ims_sip::headers::ViaHead`], parsed once).
    pub fn push_via_params(&mut self, s: &mut String) {
        s.push_str(";branch=");
        s.push_str(ims_sip::headers::MAGIC_COOKIE);
        self.push_token(s);
        s.push_str(";rport");
    }

    fn via(&mut self, remote: Remote) -> String {
        self.new_via(remote.transport)
    }

    /// When [`UserAgent::handle_timeout`] must next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let mine = self.timers.peek().map(|Reverse((at, ..))| *at);
        match (mine, self.layer.poll_timeout()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The next datagram or event.
    pub fn poll_output(&mut self) -> Option<UaOutput> {
        let o = self.out.pop_front();
        if o.is_none() {
            // drained: a queue grown by a burst gives its memory back (crate::sparse)
            self.out.shrink_if_sparse();
        }
        o
    }

    /// Feeds one input: a received message or a transport error.
    pub fn handle_input(&mut self, now: Instant, input: Input) -> Result<(), TxnError> {
        let r = self.layer.handle_input(now, input).map(|_| ());
        self.pump(now);
        r
    }

    /// Fires every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        // a UA timer handled late (at its own instant) may start a transaction whose first
        // timer is already due (a BYE after a long clock jump): run the layer again until
        // nothing is due (bounded: each round handles every timer due by then)
        for _ in 0..64 {
            self.layer.handle_timeout(now);
            self.pump(now);
            while let Some(Reverse((at, _, t))) = self.timers.peek().cloned() {
                if at > now {
                    break;
                }
                self.timers.pop();
                if self.live.get(&t) != Some(&at) {
                    continue;
                }
                self.live.remove(&t);
                self.on_timer(at, t);
                self.pump(at);
            }
            self.prune();
            if self.layer.poll_timeout().is_none_or(|t| t > now) {
                break;
            }
        }
    }

    fn arm(&mut self, t: UaTimer, at: Instant) {
        self.seq += 1;
        self.live.insert(t.clone(), at);
        self.timers.push(Reverse((at, self.seq, t)));
        self.prune();
    }

    fn disarm(&mut self, t: &UaTimer) {
        self.live.remove(t);
        self.prune();
    }

    fn prune(&mut self) {
        while let Some(Reverse((at, _, t))) = self.timers.peek() {
            if self.live.get(t) == Some(at) {
                break;
            }
            self.timers.pop();
        }
    }

    fn emit(&mut self, e: UaEvent) {
        let e = match e {
            UaEvent::Response { txn, dialog, msg } => UaEvent::Response {
                txn: self.public_txn(txn),
                dialog,
                msg,
            },
            UaEvent::Timeout { txn } => UaEvent::Timeout {
                txn: self.public_txn(txn),
            },
            UaEvent::TransportError { txn } => UaEvent::TransportError {
                txn: self.public_txn(txn),
            },
            other => other,
        };
        self.out.push_back(UaOutput::Event(e));
    }

    /// Moves the layer's output up: transmits out, events through the core.
    fn pump(&mut self, now: Instant) {
        while let Some(o) = self.layer.poll_output() {
            match o {
                Output::Transmit(t) => self.out.push_back(UaOutput::Transmit(t)),
                Output::Event(e) => self.on_layer_event(now, e),
            }
        }
    }

    fn send_stateless(&mut self, remote: Remote, bytes: Bytes) {
        self.out.push_back(UaOutput::Transmit(Transmit {
            txn: None,
            remote,
            bytes,
        }));
    }

    // ------------------------------------------------------------------ UAC side

    /// Sends a new INVITE (RFC 3261 §13.2.1). Returns its client transaction.
    pub fn invite(&mut self, now: Instant, p: InviteParams) -> Result<TxnId, TxnError> {
        self.invite_as(now, p, None)
    }

    /// As [`UserAgent::invite`], with the Call-ID, From tag and CSeq number taken from `same`
    /// `(call_id, from_tag, cseq)` instead of fresh ones (CSeq 1): for an application that
    /// tries one exchange again with a new INVITE, each attempt the same Call-ID and From tag
    /// and a higher CSeq (RFC 3261 §8.1.1.4/§8.1.1.5). A CSeq of 0 counts as 1; the dialog an
    /// answer makes starts its local sequence there.
    pub fn invite_as(
        &mut self,
        now: Instant,
        p: InviteParams,
        same: Option<(&str, &str, u32)>,
    ) -> Result<TxnId, TxnError> {
        let via = self.via(p.remote);
        let (call_id, tag, cseq) = match same {
            Some((c, t, n)) => (c.to_owned(), t.to_owned(), n.max(1)),
            None => {
                let tag = self.token();
                let call_id = format!("{}@{}", self.token(), self.cfg.sent_by);
                (call_id, tag, 1)
            }
        };
        let mut b = ims_sip::RequestBuilder::new(Method::Invite, &p.request_uri)
            .header("Via", via)
            .header("Max-Forwards", 70)
            .header("From", format_args!("{};tag={tag}", p.from))
            .header("To", &p.to)
            .header("Call-ID", &call_id)
            .header("CSeq", format_args!("{cseq} INVITE"))
            .header("Contact", format_args!("<{}>", self.cfg.contact));
        let mut supported = Vec::new();
        if self.cfg.reliable_provisional {
            supported.push("100rel");
        }
        if self.cfg.session_expires.is_some() {
            supported.push("timer");
        }
        if !supported.is_empty() {
            b = b.header("Supported", supported.join(", "));
        }
        if let Some(se) = self.cfg.session_expires {
            b = b
                .header("Session-Expires", se)
                .header("Min-SE", self.cfg.min_se);
        }
        for (n, v) in &p.headers {
            b = b.header(n, v);
        }
        if let Some((ct, body)) = &p.body {
            b = b.body(ct, body.clone());
        }
        let msg = b.build()?;
        let txn = self.layer.send_request(now, msg.clone(), p.remote)?;
        self.uac.insert(
            txn,
            UacTxn {
                kind: UacKind::InitialInvite,
                request: msg,
                remote: p.remote,
                dialog: None,
                forks: Vec::new(),
                cancel_pending: false,
                got_provisional: false,
                final_seen: false,
                answered: None,
                retries: 0,
            },
        );
        self.pump(now);
        Ok(txn)
    }

    /// Sends an out-of-dialog request made by the application (MESSAGE, OPTIONS, REGISTER...);
    /// it must carry a Via with a fresh branch ([`UserAgent::new_branch`]).
    pub fn send_request(
        &mut self,
        now: Instant,
        msg: OwnedMessage,
        remote: Remote,
    ) -> Result<TxnId, TxnError> {
        let txn = self.layer.send_request(now, msg.clone(), remote)?;
        self.uac.insert(
            txn,
            UacTxn {
                kind: UacKind::Other,
                request: msg,
                remote,
                dialog: None,
                forks: Vec::new(),
                cancel_pending: false,
                got_provisional: false,
                final_seen: false,
                answered: None,
                retries: 0,
            },
        );
        self.pump(now);
        Ok(txn)
    }

    /// Cancels an INVITE we sent (RFC 3261 §9.1). The CANCEL goes out once a provisional
    /// response has arrived; until then it is held. Returns the CANCEL's transaction when sent.
    pub fn cancel(&mut self, now: Instant, invite: TxnId) -> Result<Option<TxnId>, TxnError> {
        let invite = self.current_txn(invite);
        let u = self
            .uac
            .get_mut(&invite)
            .ok_or(TxnError::NoSuchTransaction)?;
        if u.kind != UacKind::InitialInvite && u.kind != UacKind::ReInvite {
            return Err(TxnError::InvalidState("only an INVITE can be cancelled"));
        }
        if u.final_seen {
            return Err(TxnError::InvalidState(
                "the INVITE already has a final response",
            ));
        }
        if !u.got_provisional {
            u.cancel_pending = true;
            return Ok(None);
        }
        self.send_cancel(now, invite).map(Some)
    }

    fn send_cancel(&mut self, now: Instant, invite: TxnId) -> Result<TxnId, TxnError> {
        let u = self.uac.get(&invite).ok_or(TxnError::NoSuchTransaction)?;
        let req = u.request.as_message();
        let remote = u.remote;
        // same Request-URI, Call-ID, To, From, CSeq number, top Via and Route as the INVITE
        let mut b =
            ims_sip::RequestBuilder::new(Method::Cancel, req.request_uri_str().unwrap_or_default());
        let via = req
            .headers_of(HeaderName::Via)
            .next()
            .ok_or(TxnError::MissingHeader("Via"))?;
        b = b.header("Via", via.value().split(',').next().unwrap_or("").trim());
        for r in req.headers_of(HeaderName::Route) {
            b = b.header("Route", r.value());
        }
        let seq = req.cseq()?.ok_or(TxnError::MissingHeader("CSeq"))?.seq;
        b = b
            .header("Max-Forwards", 70)
            .header("From", req.header(HeaderName::From).unwrap_or_default())
            .header("To", req.header(HeaderName::To).unwrap_or_default())
            .header(
                "Call-ID",
                req.header(HeaderName::CallId).unwrap_or_default(),
            )
            .header("CSeq", format_args!("{seq} CANCEL"));
        let msg = b.build()?;
        let dialog = u.dialog.clone();
        let txn = self.layer.send_request(now, msg.clone(), remote)?;
        self.uac.insert(
            txn,
            UacTxn {
                kind: UacKind::Cancel,
                request: msg,
                remote,
                dialog,
                forks: Vec::new(),
                cancel_pending: false,
                got_provisional: false,
                final_seen: false,
                answered: None,
                retries: 0,
            },
        );
        self.pump(now);
        Ok(txn)
    }

    /// Ends a confirmed dialog with BYE (RFC 3261 §15.1).
    pub fn bye(&mut self, now: Instant, id: &DialogId) -> Result<TxnId, TxnError> {
        self.request_in_dialog(now, id, Method::Bye, Vec::new(), None)
    }

    /// Sends a re-INVITE in a dialog (RFC 3261 §14.1). Answers 491 are retried after the §14.1
    /// back-off.
    pub fn reinvite(
        &mut self,
        now: Instant,
        id: &DialogId,
        body: Option<(String, Vec<u8>)>,
    ) -> Result<TxnId, TxnError> {
        self.request_in_dialog(now, id, Method::Invite, Vec::new(), body)
    }

    /// Sends an UPDATE in a dialog (RFC 3311), early or confirmed.
    pub fn update(
        &mut self,
        now: Instant,
        id: &DialogId,
        body: Option<(String, Vec<u8>)>,
    ) -> Result<TxnId, TxnError> {
        self.request_in_dialog(now, id, Method::Update, Vec::new(), body)
    }

    /// Sends any request in a dialog (RFC 3261 §12.2.1.1).
    pub fn request_in_dialog(
        &mut self,
        now: Instant,
        id: &DialogId,
        method: Method<'_>,
        headers: Vec<(String, String)>,
        body: Option<(String, Vec<u8>)>,
    ) -> Result<TxnId, TxnError> {
        let e = self
            .dialogs
            .get(id)
            .ok_or(TxnError::Dialog("no such dialog"))?;
        if e.dialog.state == DialogState::Terminated {
            return Err(TxnError::Dialog("dialog terminated"));
        }
        match method {
            Method::Invite if e.invite_out.is_some() || e.invite_in.is_some() => {
                // RFC 3261 §14.1: no re-INVITE while another INVITE is in progress
                return Err(TxnError::InvalidState(
                    "an INVITE transaction is in progress",
                ));
            }
            Method::Update if e.update_out.is_some() => {
                return Err(TxnError::InvalidState("an UPDATE is in progress"));
            }
            Method::Bye if e.dialog.state == DialogState::Early && e.dialog.is_uac => {
                return Err(TxnError::InvalidState(
                    "a UAC ends an early dialog with CANCEL, not BYE (RFC 3261 §15)",
                ));
            }
            _ => {}
        }
        let remote = e.remote;
        let se = e.session.as_ref().map(|s| (s.interval, s.we_refresh));
        let via = self.via(remote);
        let contact = self.cfg.contact.clone();
        let e = self.dialogs.get_mut(id).expect("looked up above");
        let seq = e.dialog.next_seq();
        let mut b = e.dialog.request(method, seq);
        b = b.header("Via", via);
        if matches!(method, Method::Invite | Method::Update) {
            b = b.header("Contact", format_args!("<{contact}>"));
            if let Some((interval, we)) = se {
                // refresher names a side of this transaction (RFC 4028 §7.1)
                let who = if we { "uac" } else { "uas" };
                b = b
                    .header(
                        "Session-Expires",
                        format_args!("{interval};refresher={who}"),
                    )
                    .header("Supported", "timer");
            }
        }
        for (n, v) in &headers {
            b = b.header(n, v);
        }
        if let Some((ct, body)) = &body {
            b = b.body(ct, body.clone());
        }
        let msg = b.build()?;
        let txn = self.layer.send_request(now, msg.clone(), remote)?;
        let kind = match method {
            Method::Invite => UacKind::ReInvite,
            Method::Update => UacKind::Update,
            Method::Bye => UacKind::Bye,
            Method::Prack => UacKind::Prack,
            _ => UacKind::Other,
        };
        let e = self.dialogs.get_mut(id).expect("looked up above");
        match kind {
            UacKind::ReInvite => e.invite_out = Some(txn),
            UacKind::Update => e.update_out = Some(txn),
            UacKind::Bye => {
                // no more 2xx retransmissions or refreshes once we hang up
                e.pending_2xx = None;
            }
            _ => {}
        }
        if kind == UacKind::ReInvite || kind == UacKind::Update {
            e.glare = Some((static_method(method), body));
        }
        self.uac.insert(
            txn,
            UacTxn {
                kind,
                request: msg,
                remote,
                dialog: Some(id.clone()),
                forks: Vec::new(),
                cancel_pending: false,
                got_provisional: false,
                final_seen: false,
                answered: None,
                retries: 0,
            },
        );
        if kind == UacKind::Bye {
            self.disarm(&UaTimer::Retransmit2xx(id.clone()));
            self.disarm(&UaTimer::SessionRefresh(id.clone()));
            self.disarm(&UaTimer::SessionExpire(id.clone()));
        }
        self.pump(now);
        Ok(txn)
    }

    fn on_response(&mut self, now: Instant, txn: TxnId, msg: OwnedMessage) {
        let Some(u) = self.uac.get_mut(&txn) else {
            return;
        };
        let m = msg.as_message();
        let code = m.status().unwrap_or(0);
        let kind = u.kind;
        if code >= 200 {
            u.final_seen = true;
        } else {
            u.got_provisional = true;
        }
        let dialog = u.dialog.clone();
        let refresh = matches!(kind, UacKind::ReInvite | UacKind::Update);
        if refresh && code == 422 && self.retry_422 && self.retry_in_dialog_after_422(now, txn, &m)
        {
            return;
        }
        match kind {
            UacKind::InitialInvite => self.on_invite_response(now, txn, msg),
            UacKind::ReInvite | UacKind::Update => {
                let id = dialog;
                if let Some(id) = &id {
                    if let Some(e) = self.dialogs.get_mut(id) {
                        let _ = e.dialog.on_response(&m);
                    }
                }
                if code >= 200 {
                    if let Some(id) = &id {
                        if let Some(e) = self.dialogs.get_mut(id) {
                            if kind == UacKind::ReInvite {
                                e.invite_out = None;
                            } else {
                                e.update_out = None;
                            }
                        }
                    }
                }
                if kind == UacKind::ReInvite && (200..300).contains(&code) {
                    if let Some(id) = &id {
                        self.send_2xx_ack(id, &m);
                    }
                }
                if code == 491 {
                    if let Some(id) = id.clone() {
                        // RFC 3261 §14.1: the Call-ID owner waits 2.1–4 s, the other side 0–2 s,
                        // in units of 10 ms
                        let owner = self.dialogs.get(&id).is_some_and(|e| e.call_id_owner);
                        let r = self.random();
                        let wait = if owner {
                            2100 + (r % 191) * 10
                        } else {
                            (r % 201) * 10
                        };
                        let at = now + Duration::from_millis(wait);
                        self.arm(UaTimer::Glare(id.clone()), at);
                        self.emit(UaEvent::GlareRetry { dialog: id, at });
                    }
                } else if (200..300).contains(&code) {
                    if let Some(id) = &id {
                        if let Some(e) = self.dialogs.get_mut(id) {
                            e.glare = None;
                        }
                        self.start_session_timer(now, id, &m);
                    }
                } else if code >= 300 {
                    if let Some(e) = id.as_ref().and_then(|id| self.dialogs.get_mut(id)) {
                        e.glare = None;
                    }
                }
                if code != 491 {
                    self.emit(UaEvent::Response {
                        txn,
                        dialog: id,
                        msg,
                    });
                }
            }
            UacKind::Bye => {
                let id = dialog;
                if code >= 200 {
                    if let Some(id) = &id {
                        let reason = self.bye_reason(id);
                        self.end_dialog(id, reason);
                    }
                }
                self.emit(UaEvent::Response {
                    txn,
                    dialog: id,
                    msg,
                });
            }
            UacKind::Prack | UacKind::Cancel | UacKind::Other => {
                self.emit(UaEvent::Response { txn, dialog, msg });
            }
        }
    }

    fn on_invite_response(&mut self, now: Instant, txn: TxnId, msg: OwnedMessage) {
        let m = msg.as_message();
        let code = m.status().unwrap_or(0);
        let u = self.uac.get(&txn).expect("caller checked");
        let req = u.request.clone();
        let remote = u.remote;
        let cancel_pending = u.cancel_pending;
        let id = DialogId::of_received_response(&m);
        if code < 200 {
            let mut repeat = false;
            if let Some(id) = id.clone() {
                if !self.dialogs.contains_key(&id) {
                    if let Ok(d) = Dialog::uac(&req.as_message(), &m) {
                        self.dialogs
                            .insert(id.clone(), self.new_entry(d, remote, true));
                        if let Some(u) = self.uac.get_mut(&txn) {
                            u.forks.push(id.clone());
                            u.dialog.get_or_insert(id.clone());
                        }
                        self.emit(UaEvent::DialogEarly(id.clone()));
                    }
                } else if let Some(e) = self.dialogs.get_mut(&id) {
                    let _ = e.dialog.on_response(&m);
                }
                repeat = self.maybe_prack(now, &id, &m);
            }
            if cancel_pending {
                if let Some(u) = self.uac.get_mut(&txn) {
                    u.cancel_pending = false;
                }
                let _ = self.send_cancel(now, txn);
            }
            if !repeat {
                self.emit(UaEvent::Response {
                    txn,
                    dialog: id,
                    msg,
                });
            }
            return;
        }
        if code < 300 {
            let Some(id) = id else {
                self.emit(UaEvent::Response {
                    txn,
                    dialog: None,
                    msg,
                });
                return;
            };
            let seq = m.cseq().ok().flatten().map_or(0, |c| c.seq);
            let retransmission = self.dialogs.get(&id).is_some_and(|e| {
                e.dialog.state == DialogState::Confirmed
                    && e.ack.as_ref().is_some_and(|(s, _)| *s == seq)
            });
            if retransmission {
                // RFC 3261 §13.2.2.4: every 2xx retransmission gets the same ACK
                if let Some(e) = self.dialogs.get(&id) {
                    let (r, ack) = (e.remote, e.ack.as_ref().map(|(_, a)| a.clone()));
                    if let Some(a) = ack {
                        self.send_stateless(r, a);
                    }
                }
                return;
            }
            match self.dialogs.get_mut(&id) {
                Some(e) => {
                    let _ = e.dialog.on_response(&m);
                }
                None => {
                    if let Ok(d) = Dialog::uac(&req.as_message(), &m) {
                        self.dialogs
                            .insert(id.clone(), self.new_entry(d, remote, true));
                        if let Some(u) = self.uac.get_mut(&txn) {
                            u.forks.push(id.clone());
                        }
                    }
                }
            }
            let first = self.uac.get(&txn).and_then(|u| u.answered.clone());
            if self.bye_extra_forks && first.as_ref().is_some_and(|f| *f != id) {
                // RFC 3261 §13.2.2.4: "If the UAC does not want to continue with that dialog,
                // then the UAC MUST terminate the dialog by sending a BYE request" — after
                // the ACK it MUST send for every 2xx
                self.send_2xx_ack(&id, &m);
                if let Some(e) = self.dialogs.get_mut(&id) {
                    e.extra_fork = true;
                }
                let public = self.public_txn(txn);
                self.emit(UaEvent::ExtraForkAnswered {
                    txn: public,
                    dialog: id.clone(),
                    msg,
                });
                if self.bye(now, &id).is_err() {
                    self.end_dialog(&id, EndReason::ExtraFork);
                }
                return;
            }
            if let Some(u) = self.uac.get_mut(&txn) {
                u.dialog = Some(id.clone());
                u.answered.get_or_insert(id.clone());
            }
            self.send_2xx_ack(&id, &m);
            self.emit(UaEvent::DialogConfirmed(id.clone()));
            self.start_session_timer(now, &id, &m);
            self.emit(UaEvent::Response {
                txn,
                dialog: Some(id),
                msg,
            });
            return;
        }
        // non-2xx final: every early dialog of this INVITE ends (RFC 3261 §12.3)
        let retried = if code == 422 && self.retry_422 {
            self.retry_after_422(now, txn, &m)
        } else {
            None
        };
        let forks = self
            .uac
            .get(&txn)
            .map(|u| u.forks.clone())
            .unwrap_or_default();
        for f in forks {
            if self
                .dialogs
                .get(&f)
                .is_some_and(|e| e.dialog.state == DialogState::Early)
            {
                let reason = if code == 487 {
                    EndReason::Cancelled
                } else {
                    EndReason::Rejected(code)
                };
                self.end_dialog(&f, reason);
            }
        }
        if let Some((new_txn, session_expires, min_se)) = retried {
            let public = self.public_txn(txn);
            self.alias.insert(new_txn, public);
            self.current.insert(public, new_txn);
            self.emit(UaEvent::SessionIntervalRetry {
                txn: public,
                new_txn,
                session_expires,
                min_se,
            });
            return;
        }
        self.emit(UaEvent::Response {
            txn,
            dialog: id,
            msg,
        });
    }

    fn new_entry(&self, dialog: Dialog, remote: Remote, call_id_owner: bool) -> DialogEntry {
        DialogEntry {
            dialog,
            remote,
            ack: None,
            invite_out: None,
            invite_in: None,
            update_out: None,
            glare: None,
            pending_2xx: None,
            reliable_1xx: None,
            last_rseq_out: 0,
            last_rseq_in: None,
            session: None,
            call_id_owner,
            extra_fork: false,
        }
    }

    /// RFC 3262 §4: PRACK a reliable provisional response once, in RSeq order. Returns true when
    /// the response is a retransmission (not passed up again).
    fn maybe_prack(&mut self, now: Instant, id: &DialogId, m: &Message<'_>) -> bool {
        let (_, required) = has_option(m, "100rel");
        let Some(rseq) = m.get::<RSeq>().ok().flatten() else {
            return false;
        };
        if !required {
            return false;
        }
        let Some(e) = self.dialogs.get_mut(id) else {
            return false;
        };
        match e.last_rseq_in {
            Some(last) if rseq.0 <= last => return true,
            Some(last) if rseq.0 != last + 1 => return true,
            _ => {}
        }
        e.last_rseq_in = Some(rseq.0);
        let Some(cseq) = m.cseq().ok().flatten() else {
            return false;
        };
        let rack = format!("{} {} {}", rseq.0, cseq.seq, cseq.method);
        let _ = self.request_in_dialog(now, id, Method::Prack, vec![("RAck".into(), rack)], None);
        false
    }

    /// The ACK for a 2xx to an INVITE (RFC 3261 §13.2.2.4): in the dialog, CSeq number of the
    /// INVITE, a new branch, sent without a transaction.
    fn send_2xx_ack(&mut self, id: &DialogId, resp: &Message<'_>) {
        let Some(seq) = resp.cseq().ok().flatten().map(|c| c.seq) else {
            return;
        };
        let Some(e) = self.dialogs.get(id) else {
            return;
        };
        let remote = e.remote;
        let via = self.via(remote);
        let e = self.dialogs.get_mut(id).expect("looked up above");
        let b = e.dialog.request(Method::Ack, seq).header("Via", via);
        let bytes = Bytes::from(b.to_vec());
        e.ack = Some((seq, bytes.clone()));
        self.send_stateless(remote, bytes);
    }

    // ------------------------------------------------------------------ UAS side

    /// Answers a request received as [`UaEvent::IncomingInvite`] or [`UaEvent::IncomingRequest`].
    ///
    /// For an INVITE: a 101–199 with a tag creates an early dialog (reliably sent when asked and
    /// the UAC supports `100rel`), a 2xx confirms the dialog and is retransmitted until the ACK
    /// (RFC 3261 §13.3.1.4), a 3xx–6xx ends the early dialog.
    pub fn respond(&mut self, now: Instant, txn: TxnId, a: Answer) -> Result<(), TxnError> {
        let u = self.uas.get(&txn).ok_or(TxnError::NoSuchTransaction)?;
        if u.final_sent {
            return Err(TxnError::InvalidState("a final response was already sent"));
        }
        let req = u.request.clone();
        let remote = u.remote;
        let local_tag = u.local_tag.clone();
        let is_invite = u.is_invite;
        let initial = u.initial_invite;
        let existing = u.dialog.clone().filter(|d| self.dialogs.contains_key(d));
        let m = req.as_message();
        let code = a.code;
        let mut b = ResponseBuilder::from_request_with_tag(&m, code, Some(&local_tag));
        let dialog_creating = is_invite && code > 100 && code < 300;
        if dialog_creating {
            b = b.header("Contact", format_args!("<{}>", self.cfg.contact));
        }
        let (rel_ok, _) = has_option(&m, "100rel");
        let reliable = is_invite
            && a.reliable
            && self.cfg.reliable_provisional
            && rel_ok
            && (101..200).contains(&code);
        // the dialog this response belongs to (created now for the initial INVITE)
        let id = match (&existing, initial && dialog_creating) {
            (Some(id), _) => Some(id.clone()),
            (None, true) => {
                let d = Dialog::uas(&m, &local_tag, code < 200)?;
                let id = d.id.clone();
                self.dialogs
                    .insert(id.clone(), self.new_entry(d, remote, false));
                if let Some(u) = self.uas.get_mut(&txn) {
                    u.dialog = Some(id.clone());
                }
                self.emit(UaEvent::DialogEarly(id.clone()));
                Some(id)
            }
            _ => None,
        };
        if let (true, Some(id)) = (reliable, &id) {
            let e = self.dialogs.get_mut(id).expect("created above");
            if e.reliable_1xx.is_some() {
                return Err(TxnError::InvalidState(
                    "a reliable provisional response is still unacknowledged (RFC 3262 §3)",
                ));
            }
            e.last_rseq_out += 1;
            b = b
                .header("Require", "100rel")
                .header("RSeq", e.last_rseq_out);
        }
        let mut session = None;
        let refresh = is_invite || m.method() == Some(Method::Update);
        if refresh && (200..300).contains(&code) && (is_invite || self.session_of(&existing)) {
            session = self.uas_session_headers(&m);
            if let Some((interval, refresher, uac_supports)) = &session {
                b = b.header(
                    "Session-Expires",
                    format_args!("{interval};refresher={refresher}"),
                );
                if *uac_supports {
                    b = b.header("Require", "timer");
                }
            }
        }
        for (n, v) in &a.headers {
            b = b.header(n, v);
        }
        if let Some((ct, body)) = &a.body {
            b = b.body(ct, body.clone());
        }
        let msg = b.build()?;
        self.layer.send_response(now, txn, msg.clone())?;
        let cseq = m.cseq()?.map_or(0, |c| c.seq);
        if code >= 200 {
            if let Some(u) = self.uas.get_mut(&txn) {
                u.final_sent = true;
            }
        }
        if let Some(id) = &id {
            if reliable {
                let e = self.dialogs.get_mut(id).expect("exists");
                e.reliable_1xx = Some(Reliable1xx {
                    txn,
                    rseq: e.last_rseq_out,
                    cseq,
                    msg: msg.clone(),
                    interval: self.cfg.layer.timers.t1,
                    started: now,
                });
                let t1 = self.cfg.layer.timers.t1;
                self.arm(UaTimer::Reliable1xx(id.clone()), now + t1);
            }
            if code >= 200 {
                if let Some(e) = self.dialogs.get_mut(id) {
                    e.reliable_1xx = None;
                }
                self.disarm(&UaTimer::Reliable1xx(id.clone()));
            }
            if is_invite && (200..300).contains(&code) {
                let e = self.dialogs.get_mut(id).expect("exists");
                if e.dialog.state == DialogState::Early {
                    e.dialog.state = DialogState::Confirmed;
                }
                e.pending_2xx = Some(Pending2xx {
                    txn,
                    cseq,
                    msg,
                    interval: self.cfg.layer.timers.t1,
                    started: now,
                });
                if let Some((interval, refresher, _)) = session {
                    e.session = Some(SessionTimer {
                        interval,
                        we_refresh: refresher == "uas",
                    });
                }
                let t1 = self.cfg.layer.timers.t1;
                self.arm(UaTimer::Retransmit2xx(id.clone()), now + t1);
                if initial {
                    self.emit(UaEvent::DialogConfirmed(id.clone()));
                }
                self.schedule_session(now, id);
            } else if is_invite && code >= 300 {
                if initial {
                    self.end_dialog(id, EndReason::Rejected(code));
                } else if let Some(e) = self.dialogs.get_mut(id) {
                    e.invite_in = None;
                }
            }
            if !is_invite && (200..300).contains(&code) {
                // an UPDATE answered 2xx refreshes the session (RFC 4028 §10)
                if let (Some((interval, refresher, _)), Some(e)) =
                    (session, self.dialogs.get_mut(id))
                {
                    e.session = Some(SessionTimer {
                        interval,
                        we_refresh: refresher == "uas",
                    });
                    self.schedule_session(now, id);
                }
            }
        }
        self.pump(now);
        Ok(())
    }

    fn session_of(&self, id: &Option<DialogId>) -> bool {
        id.as_ref()
            .and_then(|id| self.dialogs.get(id))
            .is_some_and(|e| e.session.is_some())
    }

    /// RFC 4028 §9: the session interval and refresher of our 2xx, and whether the UAC supports
    /// the extension (then `Require: timer`).
    fn uas_session_headers(&self, m: &Message<'_>) -> Option<(u32, &'static str, bool)> {
        let (uac_supports, _) = has_option(m, "timer");
        let se = m.get::<SessionExpires<'_>>().ok().flatten();
        let interval = match (se, self.cfg.session_expires) {
            (Some(s), _) => s.delta,
            (None, Some(ours)) if uac_supports => ours,
            _ => return None,
        };
        let refresher = match se.and_then(|s| s.refresher()) {
            Some(r) if r.eq_ignore_ascii_case("uac") => "uac",
            Some(_) => "uas",
            None if uac_supports => "uac",
            None => "uas",
        };
        Some((interval, refresher, uac_supports))
    }

    /// UAC side of RFC 4028 §7.2: the 2xx names the interval and refresher.
    fn start_session_timer(&mut self, now: Instant, id: &DialogId, resp: &Message<'_>) {
        let Some(se) = resp.get::<SessionExpires<'_>>().ok().flatten() else {
            return;
        };
        let Some(e) = self.dialogs.get_mut(id) else {
            return;
        };
        // the refresher names a side of this transaction, of which we are the UAC
        let we_refresh = !se
            .refresher()
            .is_some_and(|r| r.eq_ignore_ascii_case("uas"));
        e.session = Some(SessionTimer {
            interval: se.delta,
            we_refresh,
        });
        self.schedule_session(now, id);
    }

    /// Refresh at half the interval (refresher) or BYE at interval − min(32, interval/3)
    /// (the other side), RFC 4028 §10.
    fn schedule_session(&mut self, now: Instant, id: &DialogId) {
        let Some(s) = self.dialogs.get(id).and_then(|e| e.session.clone()) else {
            return;
        };
        let i = u64::from(s.interval);
        if s.we_refresh {
            self.disarm(&UaTimer::SessionExpire(id.clone()));
            self.arm(
                UaTimer::SessionRefresh(id.clone()),
                now + Duration::from_millis(i * 500),
            );
        } else {
            self.disarm(&UaTimer::SessionRefresh(id.clone()));
            let before = (i / 3).min(32);
            self.arm(
                UaTimer::SessionExpire(id.clone()),
                now + Duration::from_secs(i - before),
            );
        }
    }

    fn bye_reason(&self, id: &DialogId) -> EndReason {
        if self.dialogs.get(id).is_some_and(|e| e.extra_fork) {
            EndReason::ExtraFork
        } else {
            EndReason::ByeSent
        }
    }

    /// RFC 4028 §7.4 (and RFC 3261 §8.1.3.5): the INVITE `txn` met `resp` (422); sends it again
    /// with Min-SE = the largest Min-SE seen (the 422's or ours) and Session-Expires at least
    /// that, CSeq + 1, a new branch, every other header and the body unchanged. `None` when
    /// the INVITE had no Session-Expires, the 422 has no Min-SE or raises nothing, or the
    /// retries are used up.
    fn retry_after_422(
        &mut self,
        now: Instant,
        txn: TxnId,
        resp: &Message<'_>,
    ) -> Option<(TxnId, u32, u32)> {
        let u = self.uac.get(&txn)?;
        if u.retries >= MAX_422_RETRIES || u.cancel_pending {
            return None;
        }
        let (request, remote, retries) = (u.request.clone(), u.remote, u.retries);
        let req = request.as_message();
        let min = Self::min_se_of(resp)?;
        let sent_se = req.get::<SessionExpires<'_>>().ok().flatten()?.delta;
        let sent_min = req.get::<MinSe<'_>>().ok().flatten().map_or(0, |m| m.delta);
        if min <= sent_se && min <= sent_min {
            return None; // nothing to raise: the same request would meet the same 422
        }
        let new_min = min.max(sent_min);
        let new_se = sent_se.max(new_min);
        let seq = req.cseq().ok().flatten()?.seq.checked_add(1)?;
        let via = self.via(remote);
        let msg = with_session_timer(
            &req,
            Method::Invite,
            req.request_uri_str()?,
            &via,
            seq,
            new_se,
            new_min,
        )?;
        let new_txn = self.layer.send_request(now, msg.clone(), remote).ok()?;
        self.uac.insert(
            new_txn,
            UacTxn {
                kind: UacKind::InitialInvite,
                request: msg,
                remote,
                dialog: None,
                forks: Vec::new(),
                cancel_pending: false,
                got_provisional: false,
                final_seen: false,
                answered: None,
                retries: retries + 1,
            },
        );
        Some((new_txn, new_se, new_min))
    }

    /// RFC 4028 §7.4 for a session refresh (re-INVITE or UPDATE, §7.4 "the same as for an
    /// initial request"): the request `txn` met 422 `resp`; it is sent again in its dialog with
    /// the next CSeq, a new branch, Min-SE = the largest Min-SE seen and Session-Expires at least
    /// that (refresher kept), every other header and the body unchanged. Returns false (the 422
    /// goes to the application) under the same conditions as [`Self::retry_after_422`] or when
    /// the dialog is gone.
    fn retry_in_dialog_after_422(&mut self, now: Instant, txn: TxnId, resp: &Message<'_>) -> bool {
        let Some(u) = self.uac.get(&txn) else {
            return false;
        };
        if u.retries >= MAX_422_RETRIES {
            return false;
        }
        let (request, remote, retries, kind) = (u.request.clone(), u.remote, u.retries, u.kind);
        let Some(id) = u.dialog.clone() else {
            return false;
        };
        let req = request.as_message();
        let (Some(min), Some(sent)) = (
            Self::min_se_of(resp),
            req.get::<SessionExpires<'_>>().ok().flatten(),
        ) else {
            return false;
        };
        let sent_min = req.get::<MinSe<'_>>().ok().flatten().map_or(0, |m| m.delta);
        if min <= sent.delta && min <= sent_min {
            return false;
        }
        let new_min = min.max(sent_min);
        let new_se = sent.delta.max(new_min);
        let se_value = match sent.refresher() {
            Some(r) => format!("{new_se};refresher={r}"),
            None => new_se.to_string(),
        };
        let (Some(method), Some(ruri)) = (req.method(), req.request_uri_str()) else {
            return false;
        };
        let method = static_method(method);
        if self
            .dialogs
            .get(&id)
            .is_none_or(|e| e.dialog.state == DialogState::Terminated)
        {
            return false;
        }
        let via = self.via(remote);
        let Some(e) = self.dialogs.get_mut(&id) else {
            return false;
        };
        let seq = e.dialog.next_seq();
        let Some(msg) = with_session_timer(&req, method, ruri, &via, seq, se_value, new_min) else {
            return false;
        };
        let Ok(new_txn) = self.layer.send_request(now, msg.clone(), remote) else {
            return false;
        };
        if let Some(e) = self.dialogs.get_mut(&id) {
            match kind {
                UacKind::ReInvite => e.invite_out = Some(new_txn),
                _ => e.update_out = Some(new_txn),
            }
        }
        self.uac.insert(
            new_txn,
            UacTxn {
                kind,
                request: msg,
                remote,
                dialog: Some(id),
                forks: Vec::new(),
                cancel_pending: false,
                got_provisional: false,
                final_seen: false,
                answered: None,
                retries: retries + 1,
            },
        );
        let public = self.public_txn(txn);
        self.alias.insert(new_txn, public);
        self.current.insert(public, new_txn);
        self.emit(UaEvent::SessionIntervalRetry {
            txn: public,
            new_txn,
            session_expires: new_se,
            min_se: new_min,
        });
        true
    }

    /// RFC 3261 §13.2.2.4 after Timer M: a 2xx of our INVITE from a dialog we do not know,
    /// arriving after the INVITE client transaction ended, is ACKed and (when
    /// [`UserAgent::set_bye_extra_forks`] is on) ended with BYE, like one arriving before; each
    /// retransmission of it gets the same ACK again.
    fn late_fork_2xx(&mut self, now: Instant, id: DialogId, msg: &OwnedMessage) {
        self.finished.retain(|f| f.until > now);
        let m = msg.as_message();
        let Some(seq) = m.cseq().ok().flatten().map(|c| c.seq) else {
            return;
        };
        let Some(i) = self.finished.iter().position(|f| {
            let r = f.request.as_message();
            r.header(HeaderName::CallId) == Some(id.call_id.as_str())
                && r.from_tag() == Some(id.local_tag.as_str())
                && r.cseq().ok().flatten().map(|c| c.seq) == Some(seq)
        }) else {
            return;
        };
        let f = &self.finished[i];
        if let Some((_, ack)) = f.handled.iter().find(|(d, _)| *d == id) {
            let (r, a) = (f.remote, ack.clone());
            self.send_stateless(r, a);
            return;
        }
        if f.answered.as_ref() == Some(&id) {
            return; // the answered dialog, already ended: nothing to do
        }
        let (request, remote, public) = (f.request.clone(), f.remote, f.txn);
        let Ok(d) = Dialog::uac(&request.as_message(), &m) else {
            return;
        };
        let entry = self.new_entry(d, remote, true);
        self.dialogs.insert(id.clone(), entry);
        self.send_2xx_ack(&id, &m);
        let ack = self
            .dialogs
            .get(&id)
            .and_then(|e| e.ack.as_ref().map(|(_, a)| a.clone()));
        if let Some(a) = ack {
            self.finished[i].handled.push((id.clone(), a));
        }
        if self.bye_extra_forks {
            if let Some(e) = self.dialogs.get_mut(&id) {
                e.extra_fork = true;
            }
            self.emit(UaEvent::ExtraForkAnswered {
                txn: public,
                dialog: id.clone(),
                msg: msg.clone(),
            });
            if self.bye(now, &id).is_err() {
                self.end_dialog(&id, EndReason::ExtraFork);
            }
        } else {
            self.emit(UaEvent::DialogConfirmed(id.clone()));
            self.start_session_timer(now, &id, &m);
            self.emit(UaEvent::Response {
                txn: public,
                dialog: Some(id),
                msg: msg.clone(),
            });
        }
    }

    fn end_dialog(&mut self, id: &DialogId, reason: EndReason) {
        if let Some(mut e) = self.dialogs.remove(id) {
            e.dialog.state = DialogState::Terminated;
            for t in [
                UaTimer::Retransmit2xx(id.clone()),
                UaTimer::Reliable1xx(id.clone()),
                UaTimer::Glare(id.clone()),
                UaTimer::SessionRefresh(id.clone()),
                UaTimer::SessionExpire(id.clone()),
            ] {
                self.live.remove(&t);
            }
            self.prune();
            self.emit(UaEvent::DialogTerminated {
                dialog: id.clone(),
                reason,
            });
        }
    }

    fn answer_plain(
        &mut self,
        now: Instant,
        txn: TxnId,
        req: &OwnedMessage,
        code: u16,
        extra: &[(&str, String)],
    ) {
        let mut b = ResponseBuilder::from_request(&req.as_message(), code);
        for (n, v) in extra {
            b = b.header(n, v);
        }
        if let Ok(r) = b.build() {
            let _ = self.layer.send_response(now, txn, r);
        }
        if code >= 200 {
            if let Some(u) = self.uas.get_mut(&txn) {
                u.final_sent = true;
            }
        }
    }

    fn on_layer_event(&mut self, now: Instant, e: Event) {
        match e {
            Event::Request { txn, msg, remote } => self.on_request(now, txn, msg, remote),
            Event::Cancel {
                txn,
                invite,
                msg,
                remote: _,
            } => {
                let target = invite.filter(|i| self.uas.contains_key(i));
                match target {
                    None => self.answer_plain(now, txn, &msg, 481, &[]),
                    Some(inv) => {
                        self.answer_plain(now, txn, &msg, 200, &[]);
                        let answered = self.uas.get(&inv).is_some_and(|u| u.final_sent);
                        if !answered {
                            if let Some(id) = self.uas.get(&inv).and_then(|u| u.dialog.clone()) {
                                self.end_dialog(&id, EndReason::Cancelled);
                            }
                            let _ = self.respond(now, inv, Answer::new(487));
                            self.emit(UaEvent::Cancelled { invite: inv });
                        }
                    }
                }
            }
            Event::Ack { msg, .. } => {
                let m = msg.as_message();
                let Some(id) = DialogId::of_received_request(&m) else {
                    return;
                };
                let seq = m.cseq().ok().flatten().map_or(0, |c| c.seq);
                let Some(e) = self.dialogs.get_mut(&id) else {
                    // a stray ACK is absorbed (RFC 6026 §7.1)
                    return;
                };
                if e.pending_2xx.as_ref().is_some_and(|p| p.cseq == seq) {
                    e.pending_2xx = None;
                    e.invite_in = None;
                    self.disarm(&UaTimer::Retransmit2xx(id.clone()));
                    self.emit(UaEvent::AckReceived { dialog: id, msg });
                }
                // ACK retransmissions (2xx already acknowledged) are absorbed
            }
            Event::Response { txn, msg } => self.on_response(now, txn, msg),
            Event::StrayResponse { msg, .. } => {
                // 2xx retransmitted after the INVITE transaction ended: ACK it again
                let m = msg.as_message();
                let is_invite_2xx = m.status().is_some_and(|c| (200..300).contains(&c))
                    && m.cseq()
                        .ok()
                        .flatten()
                        .is_some_and(|c| c.method == Method::Invite);
                if !is_invite_2xx {
                    return;
                }
                let seq = m.cseq().ok().flatten().map_or(0, |c| c.seq);
                if let Some(id) = DialogId::of_received_response(&m) {
                    if let Some(e) = self.dialogs.get(&id) {
                        if let Some((s, a)) = &e.ack {
                            if *s == seq {
                                let (r, a) = (e.remote, a.clone());
                                self.send_stateless(r, a);
                            }
                        }
                    } else {
                        self.late_fork_2xx(now, id, &msg);
                    }
                }
            }
            Event::Timeout { txn, .. } => {
                if let Some(u) = self.uac.get(&txn) {
                    match u.kind {
                        UacKind::InitialInvite => {
                            for f in u.forks.clone() {
                                if self
                                    .dialogs
                                    .get(&f)
                                    .is_some_and(|e| e.dialog.state == DialogState::Early)
                                {
                                    self.end_dialog(&f, EndReason::Timeout);
                                }
                            }
                        }
                        UacKind::Bye => {
                            if let Some(id) = u.dialog.clone() {
                                let reason = self.bye_reason(&id);
                                self.end_dialog(&id, reason);
                            }
                        }
                        UacKind::ReInvite | UacKind::Update => {
                            let is_inv = u.kind == UacKind::ReInvite;
                            if let Some(e) =
                                u.dialog.clone().and_then(|id| self.dialogs.get_mut(&id))
                            {
                                if is_inv {
                                    e.invite_out = None;
                                } else {
                                    e.update_out = None;
                                }
                            }
                        }
                        _ => {}
                    }
                }
                self.emit(UaEvent::Timeout { txn });
            }
            Event::TransportError { txn } => self.emit(UaEvent::TransportError { txn }),
            Event::Terminated { txn, .. } => {
                let public = self.public_txn(txn);
                if let Some(orig) = self.alias.remove(&txn) {
                    if self.current.get(&orig) == Some(&txn) {
                        self.current.remove(&orig);
                    }
                }
                if let Some(u) = self.uac.remove(&txn) {
                    if u.kind == UacKind::InitialInvite && u.answered.is_some() {
                        // RFC 6026 §8.4: 2xx of other forks may still come after Timer M
                        let until = now + self.cfg.layer.timers.t1 * 64;
                        self.finished.retain(|f| f.until > now);
                        self.finished.push(FinishedInvite {
                            txn: public,
                            request: u.request.clone(),
                            remote: u.remote,
                            answered: u.answered.clone(),
                            handled: Vec::new(),
                            until,
                        });
                    }
                    if u.kind == UacKind::InitialInvite {
                        for f in u.forks {
                            if self
                                .dialogs
                                .get(&f)
                                .is_some_and(|e| e.dialog.state == DialogState::Early)
                            {
                                self.end_dialog(&f, EndReason::Superseded);
                            }
                        }
                    }
                }
                self.uas.remove(&txn);
                // the memory of a burst given back as its transactions end (crate::sparse)
                self.uac.shrink_if_sparse();
                self.uas.shrink_if_sparse();
                self.alias.shrink_if_sparse();
                self.current.shrink_if_sparse();
                self.dialogs.shrink_if_sparse();
                self.live.shrink_if_sparse();
                self.timers.shrink_if_sparse();
                self.out.shrink_if_sparse();
            }
        }
    }

    fn on_request(&mut self, now: Instant, txn: TxnId, msg: OwnedMessage, remote: Remote) {
        let m = msg.as_message();
        let method = m.method().unwrap_or(Method::Other(""));
        let is_invite = method == Method::Invite;
        let to_tag = m.to_tag();
        let in_dialog = to_tag.is_some();
        let local_tag = match to_tag {
            Some(t) => t.to_owned(),
            None => self.token(),
        };
        self.uas.insert(
            txn,
            UasTxn {
                request: msg.clone(),
                remote,
                local_tag,
                dialog: None,
                final_sent: false,
                initial_invite: is_invite && !in_dialog,
                is_invite,
            },
        );
        if !in_dialog {
            if is_invite {
                // RFC 4028 §8: a session interval below our Min-SE is refused with 422
                if let Some(se) = m.get::<SessionExpires<'_>>().ok().flatten() {
                    if se.delta < self.cfg.min_se {
                        let min = self.cfg.min_se.to_string();
                        self.answer_plain(now, txn, &msg, 422, &[("Min-SE", min)]);
                        return;
                    }
                }
                self.emit(UaEvent::IncomingInvite { txn, msg, remote });
            } else if matches!(method, Method::Bye | Method::Prack | Method::Update) {
                self.answer_plain(now, txn, &msg, 481, &[]);
            } else {
                self.emit(UaEvent::IncomingRequest {
                    txn,
                    dialog: None,
                    msg,
                });
            }
            return;
        }
        let Some(id) = DialogId::of_received_request(&m) else {
            self.answer_plain(now, txn, &msg, 481, &[]);
            return;
        };
        let Some(e) = self.dialogs.get_mut(&id) else {
            self.answer_plain(now, txn, &msg, 481, &[]);
            return;
        };
        if let Err(code) = e.dialog.on_request(&m) {
            self.answer_plain(now, txn, &msg, code, &[]);
            return;
        }
        if let Some(u) = self.uas.get_mut(&txn) {
            u.dialog = Some(id.clone());
        }
        match method {
            Method::Bye => {
                self.answer_plain(now, txn, &msg, 200, &[]);
                self.end_dialog(&id, EndReason::ByeReceived);
            }
            Method::Prack => {
                let rack = m.get::<RAck<'_>>().ok().flatten();
                let e = self.dialogs.get_mut(&id).expect("looked up above");
                let matched = match (&e.reliable_1xx, rack) {
                    (Some(r), Some(a)) => r.rseq == a.rseq && r.cseq == a.cseq,
                    _ => false,
                };
                if matched {
                    let rseq = e.reliable_1xx.take().map_or(0, |r| r.rseq);
                    self.disarm(&UaTimer::Reliable1xx(id.clone()));
                    self.answer_plain(now, txn, &msg, 200, &[]);
                    self.emit(UaEvent::PrackReceived { dialog: id, rseq });
                } else {
                    self.answer_plain(now, txn, &msg, 481, &[]);
                }
            }
            Method::Invite => {
                let e = self.dialogs.get_mut(&id).expect("looked up above");
                if e.invite_out.is_some() {
                    // RFC 3261 §14.2: glare
                    self.answer_plain(now, txn, &msg, 491, &[]);
                } else if e.invite_in.is_some() {
                    let r = (self.random() % 11).to_string();
                    self.answer_plain(now, txn, &msg, 500, &[("Retry-After", r)]);
                } else {
                    e.invite_in = Some(txn);
                    self.emit(UaEvent::IncomingRequest {
                        txn,
                        dialog: Some(id),
                        msg,
                    });
                }
            }
            Method::Update => {
                let e = self.dialogs.get_mut(&id).expect("looked up above");
                if e.update_out.is_some() {
                    // RFC 3311 §5.2: an UPDATE crossing ours
                    self.answer_plain(now, txn, &msg, 491, &[]);
                } else {
                    self.emit(UaEvent::IncomingRequest {
                        txn,
                        dialog: Some(id),
                        msg,
                    });
                }
            }
            _ => self.emit(UaEvent::IncomingRequest {
                txn,
                dialog: Some(id),
                msg,
            }),
        }
    }

    fn on_timer(&mut self, now: Instant, t: UaTimer) {
        let t2 = self.cfg.layer.timers.t2;
        let x64 = self.cfg.layer.timers.t1x64();
        match t {
            UaTimer::Retransmit2xx(id) => {
                let Some(e) = self.dialogs.get_mut(&id) else {
                    return;
                };
                let Some(p) = e.pending_2xx.as_mut() else {
                    return;
                };
                if now.duration_since(p.started) >= x64 {
                    // RFC 3261 §13.3.1.4: no ACK for 64·T1: confirm, then end with BYE
                    e.pending_2xx = None;
                    e.invite_in = None;
                    let _ = self.request_in_dialog(now, &id, Method::Bye, Vec::new(), None);
                    self.end_dialog(&id, EndReason::NoAck);
                    return;
                }
                p.interval = (p.interval * 2).min(t2);
                // the last wake-up is exactly 64·T1 after the first 2xx
                let next = (now + p.interval).min(p.started + x64);
                let (txn, msg) = (p.txn, p.msg.clone());
                let remote = e.remote;
                if self.layer.send_response(now, txn, msg.clone()).is_err() {
                    self.send_stateless(remote, msg.bytes().clone());
                }
                self.arm(UaTimer::Retransmit2xx(id), next);
            }
            UaTimer::Reliable1xx(id) => {
                let Some(e) = self.dialogs.get_mut(&id) else {
                    return;
                };
                let Some(r) = e.reliable_1xx.as_mut() else {
                    return;
                };
                if now.duration_since(r.started) >= x64 {
                    // RFC 3262 §3: no PRACK for 64·T1: reject the INVITE with a 5xx
                    let txn = r.txn;
                    e.reliable_1xx = None;
                    let _ = self.respond(now, txn, Answer::new(504));
                    return;
                }
                r.interval *= 2;
                let next = (now + r.interval).min(r.started + x64);
                let (txn, msg) = (r.txn, r.msg.clone());
                let _ = self.layer.send_response(now, txn, msg);
                self.arm(UaTimer::Reliable1xx(id), next);
            }
            UaTimer::Glare(id) => {
                let Some((method, body)) = self.dialogs.get_mut(&id).and_then(|e| e.glare.take())
                else {
                    return;
                };
                if let Err(TxnError::InvalidState(_)) =
                    self.request_in_dialog(now, &id, method, Vec::new(), body.clone())
                {
                    // the peer's INVITE is still in progress: wait for it, then try again
                    if let Some(e) = self.dialogs.get_mut(&id) {
                        e.glare = Some((method, body));
                    }
                    self.arm(UaTimer::Glare(id), now + Duration::from_secs(1));
                }
            }
            UaTimer::SessionRefresh(id) => {
                // RFC 4028 §10: refresh with UPDATE (no body), re-armed by its 2xx
                if self
                    .request_in_dialog(now, &id, Method::Update, Vec::new(), None)
                    .is_err()
                {
                    // an offer is in progress; try again a little later
                    self.arm(UaTimer::SessionRefresh(id), now + Duration::from_secs(1));
                }
            }
            UaTimer::SessionExpire(id) => {
                let _ = self.request_in_dialog(now, &id, Method::Bye, Vec::new(), None);
                self.end_dialog(&id, EndReason::SessionExpired);
            }
        }
    }
}

impl UserAgent {
    /// Convenience for [`UserAgent::handle_input`] with [`Input::Received`].
    pub fn receive(
        &mut self,
        now: Instant,
        msg: OwnedMessage,
        remote: Remote,
    ) -> Result<(), TxnError> {
        self.handle_input(now, Input::Received { msg, remote })
    }
    /// The Min-SE value of a response (a 422 names the smallest interval the peer accepts,
    /// RFC 4028 §6); retry the INVITE with a Session-Expires at least that large.
    pub fn min_se_of(resp: &Message<'_>) -> Option<u32> {
        resp.get::<MinSe<'_>>().ok().flatten().map(|m| m.delta)
    }
}

/// Appends `n` in lowercase hex, at least `width` digits (zero-padded): `format!("{n:0width$x}")`.
pub(crate) fn push_hex(out: &mut String, n: u64, width: usize) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let digits = (64 - n.leading_zeros() as usize)
        .div_ceil(4)
        .clamp(width, 16);
    for i in (0..digits).rev() {
        out.push(char::from(DIGITS[((n >> (4 * i)) & 15) as usize]));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The INVITEs `ua` transmitted since the last call.
    fn sent_invites(ua: &mut UserAgent) -> Vec<OwnedMessage> {
        let mut out = Vec::new();
        while let Some(o) = ua.poll_output() {
            if let UaOutput::Transmit(t) = o {
                let m = OwnedMessage::parse_datagram(t.bytes).unwrap();
                if m.method() == Some(Method::Invite) {
                    out.push(m);
                }
            }
        }
        out
    }

    /// Call-ID, From tag and CSeq line of `m`.
    fn identity(m: &OwnedMessage) -> (String, String, String) {
        let m = m.as_message();
        let from = m.from().unwrap().unwrap();
        (
            m.header_str("Call-ID").unwrap().trim().to_owned(),
            from.tag().unwrap().to_owned(),
            m.header_str("CSeq").unwrap().trim().to_owned(),
        )
    }

    #[test]
    fn invite_as_keeps_the_given_call_id_from_tag_and_cseq() {
        let mut ua = UserAgent::new(UaConfig {
            contact: "sip:server@10.0.0.1:5060".into(),
            sent_by: "10.0.0.1:5060".into(),
            seed: 3,
            ..UaConfig::default()
        });
        #[allow(clippy::disallowed_methods)] // origin of the virtual clock
        let now = Instant::now();
        let remote = Remote::udp("10.0.0.2:5060".parse().unwrap());
        let params = || InviteParams {
            request_uri: "sip:bob@10.0.0.2:5060".into(),
            from: "<sip:im@example.org>".into(),
            to: "<sip:bob@example.org>".into(),
            remote,
            headers: Vec::new(),
            body: None,
        };
        // fresh ones: each INVITE its own Call-ID and From tag, CSeq 1
        ua.invite(now, params()).unwrap();
        ua.invite_as(now, params(), None).unwrap();
        let fresh: Vec<_> = sent_invites(&mut ua).iter().map(identity).collect();
        assert_eq!(fresh.len(), 2);
        assert_ne!(fresh[0].0, fresh[1].0);
        assert_ne!(fresh[0].1, fresh[1].1);
        assert_eq!((&*fresh[0].2, &*fresh[1].2), ("1 INVITE", "1 INVITE"));
        assert!(fresh[0].0.ends_with("@10.0.0.1:5060"), "{:?}", fresh[0]);
        // attempts 2 and 3 of one exchange: the same Call-ID and From tag, the attempt as CSeq
        // (each a transaction of its own: a new branch)
        let same = ("m1@example.org", "m1", 2);
        let t2 = ua.invite_as(now, params(), Some(same)).unwrap();
        let t3 = ua
            .invite_as(now, params(), Some(("m1@example.org", "m1", 3)))
            .unwrap();
        assert_ne!(t2, t3);
        let again = sent_invites(&mut ua);
        let ids: Vec<_> = again.iter().map(identity).collect();
        assert_eq!(
            ids,
            [
                ("m1@example.org".into(), "m1".into(), "2 INVITE".into()),
                ("m1@example.org".into(), "m1".into(), "3 INVITE".into()),
            ]
        );
        let branch = |m: &OwnedMessage| {
            m.as_message()
                .top_via()
                .unwrap()
                .unwrap()
                .branch()
                .map(str::to_owned)
        };
        assert_ne!(branch(&again[0]), branch(&again[1]));
        // answered: the dialog's local sequence goes on from the INVITE's CSeq
        let ok =
            ims_sip::ResponseBuilder::from_request_with_tag(&again[1].as_message(), 200, Some("b"))
                .header("Contact", "<sip:bob@10.0.0.2:5060>")
                .build()
                .unwrap();
        let id = DialogId::of_received_response(&ok.as_message()).unwrap();
        ua.receive(now, ok, remote).unwrap();
        while ua.poll_output().is_some() {}
        ua.bye(now, &id).unwrap();
        let mut bye = None;
        while let Some(o) = ua.poll_output() {
            if let UaOutput::Transmit(t) = o {
                if t.bytes.starts_with(b"BYE ") {
                    bye = Some(OwnedMessage::parse_datagram(t.bytes).unwrap());
                }
            }
        }
        let bye = bye.expect("a BYE");
        assert_eq!(
            identity(&bye),
            ("m1@example.org".into(), "m1".into(), "4 BYE".into())
        );
    }

    #[test]
    fn hex_is_written_as_fmt_writes_it() {
        for n in [
            0u64,
            1,
            9,
            0xa,
            0xf,
            0x10,
            0xff,
            0x100,
            0xdead_beef,
            u64::MAX >> 4,
            u64::MAX,
        ] {
            for width in [1, 8] {
                let mut s = String::from("x");
                push_hex(&mut s, n, width);
                assert_eq!(s, format!("x{n:0width$x}"));
            }
        }
        let raw = b"OPTIONS sip:b@example.com SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1\r\n\
From: <sip:a@example.com>;tag=1\r\nTo: <sip:b@example.com>\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\n\r\n";
        let m = ims_sip::parse_datagram(raw).unwrap();
        let b = crate::proxy::stateless_branch(&m);
        assert_eq!(b.len(), 41, "{b}");
        let want = format!("z9hG4bK-{:016x}-", crate::proxy::loop_hash(&m));
        assert!(b.starts_with(&want), "{b}");
        assert!(b[25..]
            .bytes()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
        assert_eq!(b, crate::proxy::stateless_branch(&m));
    }
}

#[cfg(test)]
mod via_params_tests {
    use super::{UaConfig, UserAgent};
    use crate::Transport;

    /// A Via written as its front then `push_via_params` is the one `new_via` writes (two UAs
    /// with one seed: the same branches), for every transport and a sent-by set per transport.
    #[test]
    fn the_via_front_and_params_are_new_via() {
        let mut a = UserAgent::new(UaConfig::default());
        let mut b = UserAgent::new(UaConfig::default());
        a.set_sent_by(Transport::Tls, "[2001:db8::1]:5061");
        b.set_sent_by(Transport::Tls, "[2001:db8::1]:5061");
        for _ in 0..3 {
            for t in [
                Transport::Udp,
                Transport::Tcp,
                Transport::Tls,
                Transport::Ws,
            ] {
                let whole = a.new_via(t);
                let front = format!("SIP/2.0/{} {}", t.as_str(), b.sent_by(t));
                let mut params = String::new();
                b.push_via_params(&mut params);
                assert_eq!(whole, format!("{front}{params}"));
                let head = ims_sip::headers::ViaHead::new(t.as_str(), b.sent_by(t)).unwrap();
                assert_eq!(head.as_str(), front);
            }
        }
    }
}
