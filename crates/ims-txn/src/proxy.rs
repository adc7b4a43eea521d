//! The proxy core (RFC 3261 §16): request validation (§16.3), loop detection, Route processing
//! with loose and strict routers (§16.4, §16.6), Record-Route, parallel and sequential forking
//! with a response context and best-response selection (§16.7), CANCEL of the other branches on
//! 2xx/6xx and of every branch on a received CANCEL (§16.10), Timer C (§16.8), and stateless
//! forwarding helpers (§16.11).
//!
//! [`Proxy`] is transaction-stateful and sans-IO, like [`TransactionLayer`]: feed it received
//! messages, drain [`Proxy::poll_output`], honour [`Proxy::poll_timeout`]. Routing decisions
//! (location service, RFC 3263 resolution) belong to the application: each request that needs
//! one comes out as [`ProxyEvent::Request`], and the application answers with
//! [`Proxy::forward`] or [`Proxy::reply`].

use crate::hash::FastMap;
use crate::layer::{Config, Event, Input, Output, TransactionLayer, Transmit, TxnId};
use crate::sparse::Shrink;
use crate::{Remote, TxnError};
use bytes::Bytes;
use ims_sip::headers::{NameAddrHeader, Route, TypedHeader, Via, ViaHead};
use ims_sip::{
    validate_policy_uri, validate_uri, HeaderName, Message, Method, OwnedMessage, ResponseBuilder,
    Role, ValidationConfig,
};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::hash::{Hash, Hasher};
use std::time::Instant;

/// Settings of a [`Proxy`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyConfig {
    /// Transaction layer settings (Timer C is `layer.timers.c`). Merged-request detection must
    /// stay off in a proxy.
    pub layer: Config,
    /// Our SIP URI as it goes in Record-Route (`sip:p1.example.com:5060`); `;lr` is added.
    pub uri: String,
    /// Our Via sent-by (`p1.example.com:5060`), also used for loop detection.
    pub sent_by: String,
    /// The sent-by of requests forwarded over TLS when the TLS listener has its own port
    /// (`p1.example.com:5061` beside 5060), so responses and the next hop's connection reuse
    /// come back to the TLS listener; `None` uses `sent_by` for TLS too.
    pub tls_sent_by: Option<String>,
    /// Host names and addresses that are us (Route and Request-URI recognition, §16.4).
    pub local_hosts: Vec<String>,
    /// Insert Record-Route in dialog-creating requests (§16.6 step 4).
    pub record_route: bool,
    /// §16.3 checks; `role` is forced to [`Role::Proxy`].
    pub validation: ValidationConfig,
}

impl Default for ProxyConfig {
    fn default() -> Self {
        ProxyConfig {
            layer: Config::default(),
            uri: "sip:127.0.0.1:5060".into(),
            sent_by: "127.0.0.1:5060".into(),
            tls_sent_by: None,
            local_hosts: vec!["127.0.0.1".into()],
            record_route: true,
            validation: ValidationConfig {
                role: Role::Proxy,
                ..ValidationConfig::default()
            },
        }
    }
}

impl ProxyConfig {
    /// The Via sent-by for a request sent over `transport`: `tls_sent_by` for TLS when set,
    /// else `sent_by`.
    pub fn sent_by_for(&self, transport: crate::Transport) -> &str {
        match (&self.tls_sent_by, transport) {
            (Some(t), crate::Transport::Tls) => t,
            _ => &self.sent_by,
        }
    }

    /// Whether a Via's sent-by (its host and port) is one of ours: [`Self::is_our_sent_by`] of
    /// `host:port` (or `host`), without writing it out.
    pub fn is_our_via(&self, host: &ims_sip::Host<'_>, port: Option<u16>) -> bool {
        let is = |sb: &str| match port {
            None => host_text_is(host, sb),
            Some(p) => sb.rsplit_once(':').is_some_and(|(h, ps)| {
                // the port as Display writes it: decimal, no leading zeros
                !(ps.len() > 1 && ps.starts_with('0'))
                    && ps.bytes().all(|c| c.is_ascii_digit())
                    && ps.parse::<u16>().ok() == Some(p)
                    && host_text_is(host, h)
            }),
        };
        is(&self.sent_by) || self.tls_sent_by.as_deref().is_some_and(is)
    }

    /// Whether a Via sent-by (`host:port` or `host`) is one of ours.
    pub fn is_our_sent_by(&self, sent_by: &str) -> bool {
        sent_by.eq_ignore_ascii_case(&self.sent_by)
            || self
                .tls_sent_by
                .as_deref()
                .is_some_and(|t| sent_by.eq_ignore_ascii_case(t))
    }
}

/// One element of the target set (§16.5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The new Request-URI, `None` to keep it (requests routed by Route, in-dialog requests).
    pub uri: Option<String>,
    /// The next hop to send to.
    pub remote: Remote,
}

/// What an application adds to or removes from the copy forwarded to one target, beyond §16.6
/// (the IMS proxies: Route to the S-CSCF or along the Service-Route or Path, Path,
/// P-Asserted-Identity, P-Charging-Vector; removal of P-Preferred-Identity).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Edits {
    /// Route values pushed on top, the first one topmost (`<sip:scscf.example.org;lr>`).
    pub routes: Vec<String>,
    /// Header lines appended.
    pub headers: Vec<(String, String)>,
    /// Header names removed (before `headers` are added).
    pub remove: Vec<String>,
}

/// How the target set is tried (§16.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ForkMode {
    /// All targets at once.
    Parallel,
    /// One after the other: the next when the previous ends with a non-2xx final response.
    Sequential,
}

/// Events for the application.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum ProxyEvent {
    /// A request passed §16.3 and the Route pre-processing of §16.4 and needs a routing decision:
    /// call [`Proxy::forward`] or [`Proxy::reply`] with `server`.
    Request {
        /// Its server transaction.
        server: TxnId,
        /// The request after Route processing (our Route entry removed).
        msg: OwnedMessage,
        /// Where it came from.
        remote: Remote,
        /// The URI the next hop is resolved from: the top Route if any, else the Request-URI.
        next_hop_uri: String,
        /// The Route value naming this proxy that §16.4 removed, as written (its parameters
        /// tell an IMS S-CSCF the session case or the ODI of an application server).
        popped_route: Option<String>,
    },
    /// An ACK for a 2xx (no transaction): forward it with [`Proxy::forward_stateless`] to the
    /// next hop resolved from `next_hop_uri`.
    Ack {
        /// The ACK after Route processing.
        msg: OwnedMessage,
        /// The URI to resolve.
        next_hop_uri: String,
    },
    /// A response from a branch relayed upstream (1xx, 2xx, and the best final response), as
    /// sent: the application can read it (an IMS P-CSCF takes the SDP of a 183/200 for Rx, or the
    /// Service-Route of a 200 to REGISTER).
    Response {
        /// The server transaction it answers.
        server: TxnId,
        /// The response as sent upstream.
        msg: OwnedMessage,
    },
    /// The final response sent upstream for a server transaction.
    Final {
        /// The server transaction.
        server: TxnId,
        /// Its status.
        status: u16,
    },
    /// A request was refused by the proxy itself (§16.3: 400, 420, 482, 483 ...).
    Rejected {
        /// The server transaction.
        server: TxnId,
        /// The status answered.
        status: u16,
    },
    /// A command the application posted without waiting for its outcome (ims-net's
    /// `ProxyEndpoint::post_*`) failed; the same call on [`Proxy`] returned this error.
    Failed {
        /// The server transaction the command was for (`None` for a stateless forward).
        server: Option<TxnId>,
        /// Why.
        error: TxnError,
    },
}

/// What the proxy hands back through [`Proxy::poll_output`].
// see `Output`: messages move by value, once
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum ProxyOutput {
    /// Bytes to send.
    Transmit(Transmit),
    /// An event for the application.
    Event(ProxyEvent),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BranchState {
    Calling,
    Proceeding,
    Done,
}

#[derive(Debug)]
struct Branch {
    client: TxnId,
    /// The forwarded request, for a CANCEL or a 408/503 of our own; let go once the branch is
    /// done and the context has sent its final response ([`Proxy::settle`]).
    request: Option<OwnedMessage>,
    remote: Remote,
    state: BranchState,
    cancel_wanted: bool,
    cancelled: bool,
}

#[derive(Debug)]
struct Context {
    /// The request after §16.4, to forward; let go once the final response is sent: the context
    /// then lives on (until its server transaction ends) only to answer a late CANCEL and to relay
    /// the 2xx of other branches. Boxed (as `best`): a context outlives its requests, and the
    /// contexts' table is sized by the largest of them.
    request: Option<Box<OwnedMessage>>,
    is_invite: bool,
    branches: Vec<Branch>,
    pending: VecDeque<(Target, Edits)>,
    best: Option<Box<OwnedMessage>>,
    final_sent: bool,
    cancelled: bool,
    /// The Reason header of the CANCELs when the application cancelled ([`Proxy::cancel`]).
    cancel_reason: Option<Box<str>>,
}

/// A status to answer and the extra header lines that go with it.
type Refusal = (u16, Vec<(&'static str, String)>);

/// Rewrites a response the proxy relays upstream (called once per response, after the proxy's
/// own Via is removed; `None` relays it unchanged). An IMS P-CSCF uses it to take CK/IK out of
/// the 401 to a REGISTER and add its Security-Server (TS 24.229 §5.2.2).
#[derive(Clone)]
pub struct ResponseFilter(std::sync::Arc<FilterFn>);

/// The function of a [`ResponseFilter`].
type FilterFn = dyn Fn(&Message<'_>) -> Option<OwnedMessage> + Send + Sync;

impl ResponseFilter {
    /// A filter calling `f`.
    pub fn new(f: impl Fn(&Message<'_>) -> Option<OwnedMessage> + Send + Sync + 'static) -> Self {
        ResponseFilter(std::sync::Arc::new(f))
    }
}

impl std::fmt::Debug for ResponseFilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ResponseFilter")
    }
}

/// A transaction-stateful proxy core.
#[derive(Debug)]
pub struct Proxy {
    cfg: ProxyConfig,
    response_filter: Option<ResponseFilter>,
    layer: TransactionLayer,
    out: VecDeque<ProxyOutput>,
    contexts: FastMap<TxnId, Context>,
    by_client: FastMap<TxnId, TxnId>,
    timer_c: BinaryHeap<Reverse<(Instant, u64, TxnId)>>,
    timer_c_live: FastMap<TxnId, Instant>,
    counter: u64,
    /// The input being handled came from an element of this process that already checked its
    /// syntax ([`Proxy::receive_checked`]).
    checked_input: bool,
    /// The front of our Via per transport (`SIP/2.0/<transport> <sent-by>`), parsed once, made
    /// on the first request forwarded over that transport (`None`: it is not a plain Via
    /// front, the whole value is pushed).
    via_heads: Vec<(crate::Transport, Option<ViaHead>)>,
}

/// The loop-detection part of our branch (RFC 3261 §16.6 step 8): a hash of what stays the same
/// when a request comes back to us unchanged — Request-URI as received, From and To tags, Call-ID,
/// CSeq number, Proxy-Require, Proxy-Authorization and Route.
///
/// The hash is the crate's unkeyed folded-multiply hasher (the same value in every process, as
/// the fixed-key SipHash it replaced: a request that comes back through another instance with
/// the same sent-by is still recognised).
pub fn loop_hash(m: &Message<'_>) -> u64 {
    let mut h = crate::hash::FastHasher::default();
    m.request_uri_str().hash(&mut h);
    m.from_tag().hash(&mut h);
    m.to_tag().hash(&mut h);
    m.header(HeaderName::CallId).hash(&mut h);
    m.cseq().ok().flatten().map(|c| c.seq).hash(&mut h);
    for n in [
        HeaderName::ProxyRequire,
        HeaderName::ProxyAuthorization,
        HeaderName::Route,
    ] {
        for v in m.headers_of(n) {
            v.value().hash(&mut h);
        }
    }
    h.finish()
}

/// How many times [`Proxy::handle_timeout`] runs the layer's timers and Timer C in one call.
const MAX_TIMEOUT_PASSES: usize = 8;

/// Appends `v` in lowercase hex, zero-padded to `width` digits (what `{:0width$x}` writes).
pub(crate) fn push_hex(s: &mut String, v: u64, width: usize) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let digits = (64 - v.leading_zeros() as usize).div_ceil(4).max(1);
    for _ in digits..width {
        s.push('0');
    }
    for i in (0..digits).rev() {
        s.push(char::from(DIGITS[((v >> (4 * i)) & 15) as usize]));
    }
}

/// The branch a stateless proxy puts in its Via (§16.11): the same for every retransmission of a
/// request, different for different requests — derived from the received top branch and the
/// loop hash.
pub fn stateless_branch(m: &Message<'_>) -> String {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    m.top_via()
        .ok()
        .flatten()
        .and_then(|v| v.branch())
        .hash(&mut h);
    m.cseq()
        .ok()
        .flatten()
        .map(|c| c.method.as_str())
        .hash(&mut h);
    // `format!("z9hG4bK-{:016x}-{:016x}", …)` without the formatting machinery
    let mut b = String::with_capacity(42);
    b.push_str("z9hG4bK-");
    crate::ua::push_hex(&mut b, loop_hash(m), 16);
    b.push('-');
    crate::ua::push_hex(&mut b, h.finish(), 16);
    b
}

/// Where a response goes after the top Via is removed (RFC 3261 §18.2.2 with RFC 3581): the next
/// Via's transport, `received` (else sent-by host) and `rport` (else sent-by port, else 5060).
pub fn response_next_hop(m: &Message<'_>) -> Option<(String, String, u16)> {
    let via: Via<'_> = m.via().nth(1)?.ok()?;
    let host = via
        .received()
        .map(str::to_owned)
        .unwrap_or_else(|| via.host().to_string());
    let port = via.rport().flatten().or(via.port()).unwrap_or(5060);
    Some((via.transport().to_owned(), host, port))
}

impl Proxy {
    /// A proxy with no transactions.
    pub fn new(mut cfg: ProxyConfig) -> Self {
        cfg.validation.role = Role::Proxy;
        cfg.layer.merged_request_detection = false;
        Proxy {
            layer: TransactionLayer::new(cfg.layer),
            cfg,
            response_filter: None,
            out: VecDeque::new(),
            contexts: FastMap::default(),
            by_client: FastMap::default(),
            timer_c: BinaryHeap::new(),
            timer_c_live: FastMap::default(),
            counter: 0,
            checked_input: false,
            via_heads: Vec::new(),
        }
    }

    /// The front of our Via over `transport` ([`Proxy::via_heads`]), made on its first use.
    fn via_head(&mut self, transport: crate::Transport) -> Option<ViaHead> {
        if let Some((_, h)) = self.via_heads.iter().find(|(t, _)| *t == transport) {
            return h.clone();
        }
        let h = ViaHead::new(transport.as_str(), self.cfg.sent_by_for(transport));
        self.via_heads.push((transport, h.clone()));
        h
    }

    /// Sets (or clears) the [`ResponseFilter`] applied to every response relayed upstream.
    pub fn set_response_filter(&mut self, filter: Option<ResponseFilter>) {
        self.response_filter = filter;
    }

    /// The transaction layer underneath (read-only).
    pub fn layer(&self) -> &TransactionLayer {
        &self.layer
    }

    /// Keeps the last `n` messages this proxy sends (requests forwarded, responses relayed or
    /// built), for [`TransactionLayer::sent_message`]: see [`TransactionLayer::keep_sent`].
    pub fn keep_sent(&mut self, n: usize) {
        self.layer.keep_sent(n);
    }

    /// The UDP peers reached without loss (co-located endpoints the driver hands messages to in
    /// memory): their transactions run with the reliable-transport timers, see
    /// [`TransactionLayer::set_lossless`].
    pub fn set_lossless(&mut self, peers: crate::LosslessPeers) {
        self.layer.set_lossless(peers);
    }

    /// Number of live response contexts.
    pub fn contexts(&self) -> usize {
        self.contexts.len()
    }

    /// The next datagram or event.
    pub fn poll_output(&mut self) -> Option<ProxyOutput> {
        let o = self.out.pop_front();
        if o.is_none() {
            // drained: a queue grown by a burst gives its memory back (crate::sparse)
            self.out.shrink_if_sparse();
        }
        o
    }

    /// When [`Proxy::handle_timeout`] must next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let c = self.timer_c.peek().map(|Reverse((at, ..))| *at);
        match (c, self.layer.poll_timeout()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Feeds one input (a received message, a transport error).
    pub fn handle_input(&mut self, now: Instant, input: Input) -> Result<(), TxnError> {
        let r = self.layer.handle_input(now, input).map(|_| ());
        self.pump(now);
        r
    }

    /// Convenience for [`Proxy::handle_input`] with [`Input::Received`].
    pub fn receive(
        &mut self,
        now: Instant,
        msg: OwnedMessage,
        remote: Remote,
    ) -> Result<(), TxnError> {
        self.handle_input(now, Input::Received { msg, remote })
    }

    /// [`Proxy::receive`] for a message whose syntax an element of this same process already
    /// checked: a request a co-located role forwarded or wrote with the ims-sip encoder (the
    /// in-process hand-off between the CSCF roles of one core). The §16.3 checks then apply only
    /// [`ims_sip::validate_policy`] (this proxy's size, scheme, Max-Forwards and Proxy-Require
    /// rules), not the syntax walk of [`ims_sip::validate`]; everything else is the same.
    pub fn receive_checked(
        &mut self,
        now: Instant,
        msg: OwnedMessage,
        remote: Remote,
    ) -> Result<(), TxnError> {
        self.checked_input = true;
        let r = self.handle_input(now, Input::Received { msg, remote });
        self.checked_input = false;
        r
    }

    /// Fires every timer due at `now` (the transaction timers and Timer C).
    pub fn handle_timeout(&mut self, now: Instant) {
        // What Timer C does (a CANCEL, a 408 upstream) is sent at `now` and starts transactions
        // whose own timers can already be due (Timer J is 0 over TCP): run the layer again until
        // nothing due is left, so `poll_timeout` never names an instant already handled (a
        // driver would otherwise wake at once, forever). Bounded: each pass fires every timer
        // due, and the timers a pass starts are due later unless they end their transaction.
        for _ in 0..MAX_TIMEOUT_PASSES {
            self.layer.handle_timeout(now);
            self.pump(now);
            while let Some(Reverse((at, _, client))) = self.timer_c.peek().copied() {
                if at > now {
                    break;
                }
                self.timer_c.pop();
                if self.timer_c_live.get(&client) != Some(&at) {
                    continue;
                }
                self.timer_c_live.remove(&client);
                self.on_timer_c(now, client);
                self.pump(now);
            }
            self.prune_c();
            if self.layer.poll_timeout().is_none_or(|t| t > now) {
                break;
            }
        }
    }

    fn prune_c(&mut self) {
        while let Some(Reverse((at, _, c))) = self.timer_c.peek() {
            if self.timer_c_live.get(c) == Some(at) {
                break;
            }
            self.timer_c.pop();
        }
    }

    fn arm_c(&mut self, now: Instant, client: TxnId) {
        let at = now + self.cfg.layer.timers.c;
        self.counter += 1;
        self.timer_c_live.insert(client, at);
        self.timer_c.push(Reverse((at, self.counter, client)));
        self.prune_c();
    }

    fn pump(&mut self, now: Instant) {
        while let Some(o) = self.layer.poll_output() {
            match o {
                Output::Transmit(t) => self.out.push_back(ProxyOutput::Transmit(t)),
                Output::Event(e) => self.on_event(now, e),
            }
        }
    }

    fn emit(&mut self, e: ProxyEvent) {
        self.out.push_back(ProxyOutput::Event(e));
    }

    /// Answers a request the proxy will not forward (§16.5: the application decided).
    pub fn reply(&mut self, now: Instant, server: TxnId, status: u16) -> Result<(), TxnError> {
        let req = match self.layer.request(server) {
            Some(r) => r.clone(),
            // a transaction past its final response has let its request go
            None if self.layer.state(server).is_some() => {
                return Err(TxnError::InvalidState(
                    "the transaction already sent its final response",
                ))
            }
            None => return Err(TxnError::NoSuchTransaction),
        };
        let r = ResponseBuilder::from_request(&req.as_message(), status).build()?;
        self.layer.send_response(now, server, r)?;
        if let Some(c) = self.contexts.get_mut(&server) {
            c.final_sent = true;
        }
        self.settle(server);
        if status >= 200 {
            self.emit(ProxyEvent::Final { server, status });
        }
        self.pump(now);
        Ok(())
    }

    /// Drops the request of server transaction `server` without answering it (a request the
    /// application silently discards, e.g. an IMS P-CSCF receiving one from a UE outside its
    /// IPsec security associations, TS 33.203 §7): the transaction and its context end; a
    /// retransmission comes up again as a new request.
    pub fn discard(&mut self, now: Instant, server: TxnId) -> Result<(), TxnError> {
        match self.contexts.get(&server) {
            Some(c) if c.branches.is_empty() && !c.final_sent => {}
            Some(_) => return Err(TxnError::InvalidState("the request was already handled")),
            None => return Err(TxnError::NoSuchTransaction),
        }
        self.layer.transport_error(now, server)?;
        self.pump(now);
        Ok(())
    }

    /// Gives up a forwarded INVITE (an IMS P-CSCF or S-CSCF releasing a session being set up,
    /// TS 24.229 §5.2.8.1.1 / §5.4.5.1.1): every pending branch is cancelled (§16.10 — a CANCEL
    /// now after a provisional response, else once one arrives, §9.1), carrying `reason` as a
    /// Reason header (RFC 3326), and the request is answered upstream with `status`.
    pub fn cancel(
        &mut self,
        now: Instant,
        server: TxnId,
        status: u16,
        reason: Option<&str>,
    ) -> Result<(), TxnError> {
        let Some(c) = self.contexts.get_mut(&server) else {
            return Err(TxnError::NoSuchTransaction);
        };
        c.cancelled = true;
        c.pending.clear();
        c.cancel_reason = reason.map(Into::into);
        self.cancel_branches(now, server, None);
        self.reply(now, server, status)
    }

    /// Answers a request the proxy will not forward with a response the application built (a
    /// registrar's 401 or 200, a 423 with Min-Expires). It must answer the request of `server`
    /// (same Via, From, To, Call-ID, CSeq).
    pub fn respond(
        &mut self,
        now: Instant,
        server: TxnId,
        response: OwnedMessage,
    ) -> Result<(), TxnError> {
        let status = response.status().unwrap_or(500);
        self.layer.send_response(now, server, response)?;
        if status >= 200 {
            if let Some(c) = self.contexts.get_mut(&server) {
                c.final_sent = true;
            }
            self.settle(server);
            self.emit(ProxyEvent::Final { server, status });
        }
        self.pump(now);
        Ok(())
    }

    fn reject(
        &mut self,
        now: Instant,
        server: TxnId,
        req: &OwnedMessage,
        status: u16,
        extra: &[(&str, String)],
    ) {
        let mut b = ResponseBuilder::from_request(&req.as_message(), status);
        for (n, v) in extra {
            b = b.header(n, v);
        }
        if let Ok(r) = b.build() {
            let _ = self.layer.send_response(now, server, r);
        }
        self.emit(ProxyEvent::Rejected { server, status });
    }

    fn preprocess(&self, msg: &OwnedMessage) -> Result<(OwnedMessage, Option<String>), Refusal> {
        preprocess(&self.cfg, &msg.as_message(), Some(msg), self.checked_input)
    }

    fn next_hop_uri(m: &Message<'_>) -> String {
        m.get::<Route<'_>>()
            .ok()
            .flatten()
            .map(|r| r.uri().as_str().to_owned())
            .or_else(|| m.request_uri_str().map(str::to_owned))
            .unwrap_or_default()
    }

    fn on_event(&mut self, now: Instant, e: Event) {
        match e {
            Event::Request { txn, msg, remote } => match self.preprocess(&msg) {
                Err((status, extra)) => self.reject(now, txn, &msg, status, &extra),
                Ok((processed, popped_route)) => {
                    let is_invite = msg.method() == Some(Method::Invite);
                    let next_hop_uri = Self::next_hop_uri(&processed.as_message());
                    self.contexts.insert(
                        txn,
                        Context {
                            request: Some(Box::new(processed.clone())),
                            is_invite,
                            branches: Vec::new(),
                            pending: VecDeque::new(),
                            best: None,
                            final_sent: false,
                            cancelled: false,
                            cancel_reason: None,
                        },
                    );
                    self.emit(ProxyEvent::Request {
                        server: txn,
                        msg: processed,
                        remote,
                        next_hop_uri,
                        popped_route,
                    });
                }
            },
            Event::Cancel {
                txn, invite, msg, ..
            } => {
                let ctx = invite.filter(|i| self.contexts.contains_key(i));
                match ctx {
                    Some(inv) => {
                        // §16.10: answer the CANCEL, cancel every pending branch; the 487s come
                        // back through the response context
                        self.reject_quiet(now, txn, &msg, 200);
                        if let Some(c) = self.contexts.get_mut(&inv) {
                            c.cancelled = true;
                            c.pending.clear();
                            // the CANCELs we send on carry the Reason we got (RFC 3326)
                            c.cancel_reason =
                                msg.as_message().header(HeaderName::Reason).map(Into::into);
                        }
                        self.cancel_branches(now, inv, None);
                        self.check_complete(now, inv);
                        self.settle(inv);
                    }
                    None => self.reject_quiet(now, txn, &msg, 481),
                }
            }
            Event::Ack { msg, .. } => {
                if let Ok((p, _)) = self.preprocess(&msg) {
                    let next_hop_uri = Self::next_hop_uri(&p.as_message());
                    self.emit(ProxyEvent::Ack {
                        msg: p,
                        next_hop_uri,
                    });
                }
            }
            Event::Response { txn, msg } => self.on_response(now, txn, msg),
            Event::StrayResponse { .. } => {
                // RFC 6026 §7.3 (updating §16.7): a stateful proxy does not forward responses
                // that match no transaction
            }
            Event::Timeout { txn, .. } => self.branch_failed(now, txn, 408),
            Event::TransportError { txn } => {
                if self.by_client.contains_key(&txn) {
                    // §16.7 step 1 / §16.9: a transport error counts as a 503
                    self.branch_failed(now, txn, 503);
                }
            }
            Event::Terminated { txn, .. } => {
                self.timer_c_live.remove(&txn);
                self.by_client.remove(&txn);
                if let Some(c) = self.contexts.remove(&txn) {
                    for b in c.branches {
                        self.by_client.remove(&b.client);
                    }
                }
                self.prune_c();
                // the memory of a burst given back as its transactions end (crate::sparse)
                self.contexts.shrink_if_sparse();
                self.by_client.shrink_if_sparse();
                self.timer_c_live.shrink_if_sparse();
                self.timer_c.shrink_if_sparse();
                self.out.shrink_if_sparse();
            }
        }
    }

    fn reject_quiet(&mut self, now: Instant, server: TxnId, req: &OwnedMessage, status: u16) {
        if let Ok(r) = ResponseBuilder::from_request(&req.as_message(), status).build() {
            let _ = self.layer.send_response(now, server, r);
        }
    }

    /// Forwards the request of `server` to a target set (§16.6), in parallel or one by one.
    pub fn forward(
        &mut self,
        now: Instant,
        server: TxnId,
        targets: Vec<Target>,
        mode: ForkMode,
    ) -> Result<(), TxnError> {
        let with = targets.into_iter().map(|t| (t, Edits::default())).collect();
        self.forward_with(now, server, with, mode)
    }

    /// [`Proxy::forward`] with per-target [`Edits`] applied to each forwarded copy.
    pub fn forward_with(
        &mut self,
        now: Instant,
        server: TxnId,
        targets: Vec<(Target, Edits)>,
        mode: ForkMode,
    ) -> Result<(), TxnError> {
        let c = self
            .contexts
            .get_mut(&server)
            .ok_or(TxnError::NoSuchTransaction)?;
        if c.final_sent || c.cancelled {
            return Err(TxnError::InvalidState("the request is already answered"));
        }
        match mode {
            ForkMode::Parallel => {
                for (t, ed) in targets {
                    self.forward_one(now, server, t, &ed)?;
                }
            }
            ForkMode::Sequential => {
                let mut q: VecDeque<(Target, Edits)> = targets.into();
                if let Some((first, ed)) = q.pop_front() {
                    c.pending = q;
                    self.forward_one(now, server, first, &ed)?;
                }
            }
        }
        self.pump(now);
        Ok(())
    }

    /// §16.6 steps 1–10 for one target.
    fn forward_one(
        &mut self,
        now: Instant,
        server: TxnId,
        t: Target,
        ed: &Edits,
    ) -> Result<(), TxnError> {
        let c = self
            .contexts
            .get(&server)
            .ok_or(TxnError::NoSuchTransaction)?;
        let orig = c
            .request
            .clone()
            .ok_or(TxnError::InvalidState("the request is already answered"))?;
        let m = orig.as_message();
        let mut e = m.edit();
        if let Some(u) = &t.uri {
            e.set_request_uri(u);
        }
        e.decrement_max_forwards()
            .map_err(|_| TxnError::InvalidState("Max-Forwards exhausted"))?;
        let in_dialog = m.to_tag().is_some();
        let dialog_creating = matches!(
            m.method(),
            Some(Method::Invite | Method::Subscribe | Method::Refer)
        );
        if self.cfg.record_route && dialog_creating && !in_dialog {
            e.push_record_route(format!("<{};lr>", self.cfg.uri));
        }
        for name in &ed.remove {
            e.remove_named(name);
        }
        for r in ed.routes.iter().rev() {
            e.push_front("Route", r.as_str());
        }
        for (n, v) in &ed.headers {
            e.push_back(n.as_str(), v.as_str());
        }
        // §16.6 step 6: a strict router next: it takes the Request-URI, the Request-URI goes
        // last in Route (not when the application pushed its own loose routes on top)
        let top_route = if ed.routes.is_empty() {
            m.get::<Route<'_>>().ok().flatten()
        } else {
            None
        };
        if let Some(r) = top_route {
            let strict = r.uri().as_sip().is_some_and(|s| !s.lr());
            if strict {
                let ruri = t
                    .uri
                    .clone()
                    .or_else(|| m.request_uri_str().map(str::to_owned))
                    .unwrap_or_default();
                e.pop_route();
                e.push_back("Route", format!("<{ruri}>"));
                e.set_request_uri(r.uri().as_str());
            }
        }
        self.counter += 1;
        // `SIP/2.0/<transport> <sent-by>;branch=z9hG4bK-<16 hex loop hash>-<counter in hex>`,
        // written without `fmt` (one per forwarded request); its front is parsed once per
        // transport (`via_head`), so the forwarded request's top Via is kept with only its
        // branch read
        let head = self.via_head(t.remote.transport);
        let sent_by = self.cfg.sent_by_for(t.remote.transport);
        let mut via = String::with_capacity(40 + sent_by.len() + 16);
        via.push_str("SIP/2.0/");
        via.push_str(t.remote.transport.as_str());
        via.push(' ');
        via.push_str(sent_by);
        via.push_str(";branch=z9hG4bK-");
        push_hex(&mut via, loop_hash(&m), 16);
        via.push('-');
        push_hex(&mut via, self.counter, 1);
        match head {
            Some(head) => e.push_via_after(&head, via),
            None => e.push_via(via),
        };
        let fwd = e.to_owned_message()?;
        let client = self.layer.send_request(now, fwd.clone(), t.remote)?;
        self.by_client.insert(client, server);
        let is_invite = m.method() == Some(Method::Invite);
        if let Some(c) = self.contexts.get_mut(&server) {
            // most contexts have one branch: room for that one only (a context is held until
            // its server transaction ends); more branches grow as usual
            if c.branches.capacity() == 0 {
                c.branches.reserve_exact(1);
            }
            c.branches.push(Branch {
                client,
                request: Some(fwd),
                remote: t.remote,
                state: BranchState::Calling,
                cancel_wanted: false,
                cancelled: false,
            });
        }
        if is_invite {
            self.arm_c(now, client);
        }
        Ok(())
    }

    /// Forwards a message without a transaction (an ACK for a 2xx, §16.11 stateless proxying):
    /// Max-Forwards decremented, a Via with a deterministic branch on top.
    pub fn forward_stateless(
        &mut self,
        msg: &OwnedMessage,
        remote: Remote,
    ) -> Result<(), TxnError> {
        let m = msg.as_message();
        let mut e = m.edit();
        e.decrement_max_forwards()
            .map_err(|_| TxnError::InvalidState("Max-Forwards exhausted"))?;
        e.push_via(format!(
            "SIP/2.0/{} {};branch={}",
            remote.transport.as_str(),
            self.cfg.sent_by_for(remote.transport),
            stateless_branch(&m)
        ));
        self.out.push_back(ProxyOutput::Transmit(Transmit {
            txn: None,
            remote,
            bytes: Bytes::from(e.to_vec()),
        }));
        Ok(())
    }

    fn branch_mut(&mut self, client: TxnId) -> Option<(TxnId, &mut Branch)> {
        let server = *self.by_client.get(&client)?;
        let c = self.contexts.get_mut(&server)?;
        let b = c.branches.iter_mut().find(|b| b.client == client)?;
        Some((server, b))
    }

    fn on_response(&mut self, now: Instant, client: TxnId, msg: OwnedMessage) {
        let code = msg.status().unwrap_or(0);
        let Some((server, b)) = self.branch_mut(client) else {
            return;
        };
        if code < 200 {
            b.state = BranchState::Proceeding;
            let cancel_now = b.cancel_wanted && !b.cancelled;
            // §16.8: a provisional response resets Timer C
            if self.timer_c_live.contains_key(&client) {
                self.arm_c(now, client);
            }
            if cancel_now {
                self.send_cancel(now, server, client);
            }
            if code == 100 {
                return; // §16.7 step 5: 100 is not forwarded
            }
            self.send_upstream(now, server, &msg);
            return;
        }
        b.state = BranchState::Done;
        self.timer_c_live.remove(&client);
        self.prune_c();
        let is_invite = self.contexts.get(&server).is_some_and(|c| c.is_invite);
        if (200..300).contains(&code) {
            // §16.7 step 5: every 2xx is forwarded at once; the other branches are cancelled
            if let Some(c) = self.contexts.get_mut(&server) {
                c.pending.clear();
            }
            let first = !self.contexts.get(&server).is_some_and(|c| c.final_sent);
            self.send_upstream(now, server, &msg);
            if let Some(c) = self.contexts.get_mut(&server) {
                c.final_sent = true;
            }
            if first {
                self.emit(ProxyEvent::Final {
                    server,
                    status: code,
                });
            }
            if is_invite {
                self.cancel_branches(now, server, Some(client));
            }
            self.settle(server);
            return;
        }
        if let Some(c) = self.contexts.get_mut(&server) {
            c.best = Some(match c.best.take() {
                Some(prev) if better(&prev, &msg) => prev,
                _ => Box::new(msg),
            });
            if code >= 600 {
                c.pending.clear();
            }
        }
        if code >= 600 && is_invite {
            self.cancel_branches(now, server, Some(client));
        }
        self.next_sequential(now, server);
        self.check_complete(now, server);
        self.settle(server);
    }

    fn branch_failed(&mut self, now: Instant, client: TxnId, code: u16) {
        let Some((server, b)) = self.branch_mut(client) else {
            return;
        };
        if b.state == BranchState::Done {
            return;
        }
        b.state = BranchState::Done;
        let built = b.request.as_ref().and_then(|req| {
            ResponseBuilder::from_request(&req.as_message(), code)
                .build()
                .ok()
        });
        if let Some(r) = built {
            if let Some(c) = self.contexts.get_mut(&server) {
                c.best = Some(match c.best.take() {
                    Some(prev) if better(&prev, &r) => prev,
                    _ => Box::new(r),
                });
            }
        }
        self.next_sequential(now, server);
        self.check_complete(now, server);
        self.settle(server);
    }

    /// Once the final response is sent, a context keeps only what a late CANCEL or another
    /// branch's 2xx needs: the request, the best response, the pending targets and the requests
    /// of finished branches go (they would otherwise stay for Timer J, 32 s over UDP).
    fn settle(&mut self, server: TxnId) {
        let Some(c) = self.contexts.get_mut(&server) else {
            return;
        };
        if !c.final_sent {
            return;
        }
        c.request = None;
        c.best = None;
        c.pending = VecDeque::new();
        for b in &mut c.branches {
            if b.state == BranchState::Done {
                b.request = None;
            }
        }
    }

    fn next_sequential(&mut self, now: Instant, server: TxnId) {
        loop {
            let Some(c) = self.contexts.get_mut(&server) else {
                return;
            };
            if c.final_sent
                || c.cancelled
                || c.branches.iter().any(|b| b.state != BranchState::Done)
            {
                return;
            }
            let Some((t, ed)) = c.pending.pop_front() else {
                return;
            };
            if self.forward_one(now, server, t, &ed).is_ok() {
                return;
            }
        }
    }

    /// §16.7 step 6: when every branch has ended, send the best response.
    fn check_complete(&mut self, now: Instant, server: TxnId) {
        let Some(c) = self.contexts.get(&server) else {
            return;
        };
        if c.final_sent
            || c.branches.iter().any(|b| b.state != BranchState::Done)
            || !c.pending.is_empty()
            || c.branches.is_empty()
        {
            return;
        }
        let best = c.best.clone();
        let Some(req) = c.request.clone() else {
            return;
        };
        let resp = match best.map(|b| *b) {
            // §16.7 step 6: a 503 is not passed on; 500 instead
            Some(b) if b.status() == Some(503) => {
                ResponseBuilder::from_request(&req.as_message(), 500)
                    .build()
                    .ok()
            }
            Some(b) => Some(b),
            None => ResponseBuilder::from_request(&req.as_message(), 408)
                .build()
                .ok(),
        };
        let Some(resp) = resp else {
            return;
        };
        let status = resp.status().unwrap_or(500);
        let from_branch = resp.as_message().via_count() > req.as_message().via_count();
        if from_branch {
            self.send_upstream(now, server, &resp);
        } else {
            let _ = self.layer.send_response(now, server, resp);
        }
        if let Some(c) = self.contexts.get_mut(&server) {
            c.final_sent = true;
        }
        self.emit(ProxyEvent::Final { server, status });
    }

    /// §16.7 step 3 and 8: our Via off, then out on the server transaction.
    fn send_upstream(&mut self, now: Instant, server: TxnId, msg: &OwnedMessage) {
        // the message a `pop_via` edit gives, indexed without rendering when that is certain
        let popped = msg
            .without_first_value(HeaderName::Via)
            .map(Ok)
            .unwrap_or_else(|| {
                let m = msg.as_message();
                let mut e = m.edit();
                e.pop_via();
                e.to_owned_message()
            });
        if let Ok(r) = popped {
            let r = match &self.response_filter {
                Some(f) => (f.0)(&r.as_message()).unwrap_or(r),
                None => r,
            };
            if self.layer.send_response(now, server, r.clone()).is_ok() {
                self.emit(ProxyEvent::Response { server, msg: r });
            }
        }
    }

    fn cancel_branches(&mut self, now: Instant, server: TxnId, except: Option<TxnId>) {
        let Some(c) = self.contexts.get_mut(&server) else {
            return;
        };
        let mut to_cancel = Vec::new();
        for b in c.branches.iter_mut() {
            if Some(b.client) == except || b.state == BranchState::Done || b.cancelled {
                continue;
            }
            match b.state {
                BranchState::Proceeding => to_cancel.push(b.client),
                // §9.1: no CANCEL before a provisional response; sent when one arrives
                BranchState::Calling => b.cancel_wanted = true,
                BranchState::Done => {}
            }
        }
        for client in to_cancel {
            self.send_cancel(now, server, client);
        }
    }

    /// A CANCEL for one branch (§9.1): same Request-URI, top Via, Call-ID, From, To, Route and
    /// CSeq number as the forwarded INVITE.
    fn send_cancel(&mut self, now: Instant, server: TxnId, client: TxnId) {
        let Some(c) = self.contexts.get_mut(&server) else {
            return;
        };
        let reason = c.cancel_reason.clone();
        let Some(b) = c.branches.iter_mut().find(|b| b.client == client) else {
            return;
        };
        b.cancelled = true;
        let Some(req) = b.request.as_ref() else {
            return;
        };
        let req = req.as_message();
        let remote = b.remote;
        let Some(via) = req.headers_of(HeaderName::Via).next() else {
            return;
        };
        let mut cb =
            ims_sip::RequestBuilder::new(Method::Cancel, req.request_uri_str().unwrap_or_default())
                .header("Via", via.value().split(',').next().unwrap_or("").trim());
        for r in req.headers_of(HeaderName::Route) {
            cb = cb.header("Route", r.value());
        }
        let seq = req.cseq().ok().flatten().map_or(0, |c| c.seq);
        cb = cb
            .header("Max-Forwards", 70)
            .header("From", req.header(HeaderName::From).unwrap_or_default())
            .header("To", req.header(HeaderName::To).unwrap_or_default())
            .header(
                "Call-ID",
                req.header(HeaderName::CallId).unwrap_or_default(),
            )
            .header("CSeq", format_args!("{seq} CANCEL"));
        if let Some(r) = reason {
            cb = cb.header("Reason", &*r);
        }
        if let Ok(m) = cb.build() {
            let _ = self.layer.send_request(now, m, remote);
        }
    }

    fn on_timer_c(&mut self, now: Instant, client: TxnId) {
        let Some((server, b)) = self.branch_mut(client) else {
            return;
        };
        match b.state {
            // §16.8: a branch that answered provisionally is cancelled
            BranchState::Proceeding => self.send_cancel(now, server, client),
            // one that never answered counts as a 408
            BranchState::Calling => self.branch_failed(now, client, 408),
            BranchState::Done => {}
        }
    }
}

/// §16.3 validation, loop detection and §16.4 Route pre-processing, shared by the stateful and
/// stateless paths. `Err` names the status to answer. `checked`: the syntax was checked by an
/// element of this process (only the configuration-dependent checks run).
/// §16.3 and §16.4 for a request `m`: the request to route, and the top Route of `m` when it
/// names us (as written). `orig`, when given, holds `m` (an unchanged request is then a clone
/// of it, not a copy).
fn preprocess(
    cfg: &ProxyConfig,
    m: &Message<'_>,
    orig: Option<&OwnedMessage>,
    checked: bool,
) -> Result<(OwnedMessage, Option<String>), Refusal> {
    // the checks hand back the Request-URI they parsed (it is looked at again below)
    let verdict = if checked {
        validate_policy_uri(m, &cfg.validation)
    } else {
        validate_uri(m, &cfg.validation)
    };
    let ruri = match verdict {
        Ok(u) => u,
        Err(rej) => {
            let mut extra = Vec::new();
            if !rej.unsupported.is_empty() {
                extra.push(("Unsupported", rej.unsupported.join(", ")));
            }
            return Err((rej.status, extra));
        }
    };
    // a proxy's checks refused a Max-Forwards of 0 already (and one that does not parse)
    if cfg.validation.role != Role::Proxy && m.max_forwards().ok().flatten() == Some(0) {
        return Err((483, Vec::new()));
    }
    // §16.3 step 4: a Via of ours whose branch carries this request's loop hash is a loop;
    // another hash means the request was retargeted and is spiralling (the hash is computed
    // only when a Via of ours is there)
    // (the sent-by of every Via read without its parameters: only our own ones are parsed)
    let mut lh = None;
    for (_, elem) in m.list(HeaderName::Via) {
        let ours = might_be_our_via(cfg, elem)
            && Via::sent_by_of(elem).is_some_and(|(host, port)| cfg.is_our_via(&host, port));
        let Some(v) = ours
            .then(|| <Via<'_> as TypedHeader>::parse(elem).ok())
            .flatten()
        else {
            continue;
        };
        let h = *lh.get_or_insert_with(|| loop_hash(m));
        if v.branch().is_some_and(|b| branch_carries(b, h)) {
            return Err((482, Vec::new()));
        }
    }
    // §16.4: a Request-URI that is ours came from a strict router: the real one is the last
    // Route value
    let strict_routed = match &ruri {
        Some(u) => is_local(cfg, u),
        None => m.request_uri_str().is_some_and(|u| is_local_uri(cfg, u)),
    };
    let routes: Vec<String> = if strict_routed {
        m.get_all::<Route<'_>>()
            .filter_map(Result::ok)
            .map(|r| r.to_string())
            .collect()
    } else {
        Vec::new()
    };
    // the edit is made (and its message rendered) only for a strict-routed request
    let mut rerouted = None;
    if strict_routed && !routes.is_empty() {
        let mut e = m.edit();
        let last = routes.last().cloned().unwrap_or_default();
        let uri = NameAddrHeader::parse(&last)
            .map(|n| n.uri().as_str().to_owned())
            .unwrap_or_default();
        e.set_request_uri(&uri);
        e.remove(HeaderName::Route);
        for r in &routes[..routes.len() - 1] {
            e.push_back("Route", r.clone());
        }
        rerouted = Some(e);
    }
    let changed = rerouted.is_some();
    // the top Route of the received request when it names us (ProxyEvent::Request's
    // `popped_route`), parsed once
    let m_top = m.get::<Route<'_>>().ok().flatten();
    let m_top_is_us = m_top.filter(|r| is_local(cfg, &r.uri()));
    let popped = m_top_is_us.map(|r| {
        let mut s = String::with_capacity(64);
        r.write_to(&mut s);
        s
    });
    let owned = if let Some(e) = &rerouted {
        e.to_owned_message().map_err(|_| (400, Vec::new()))?
    } else if let Some(o) = orig {
        o.clone()
    } else {
        m.to_owned_message()
    };
    // §16.4: our own URI on top of Route is removed (unchanged Routes: the one read above)
    let om = owned.as_message();
    let top_is_us = if changed {
        om.get::<Route<'_>>()
            .ok()
            .flatten()
            .is_some_and(|r| is_local(cfg, &r.uri()))
    } else {
        m_top_is_us.is_some()
    };
    if top_is_us {
        // the message a `pop_route` edit gives, indexed without rendering when that is certain
        let without = match owned.without_first_value(HeaderName::Route) {
            Some(w) => w,
            None => {
                let mut e = om.edit();
                e.pop_route();
                e.to_owned_message().map_err(|_| (400, Vec::new()))?
            }
        };
        return Ok((without, popped));
    }
    Ok((owned, popped))
}

fn is_local_uri(cfg: &ProxyConfig, uri: &str) -> bool {
    ims_sip::Uri::parse(uri).is_ok_and(|u| is_local(cfg, &u))
}

/// [`is_local_uri`] of a parsed URI.
fn is_local(cfg: &ProxyConfig, u: &ims_sip::Uri<'_>) -> bool {
    let Some(s) = u.as_sip() else {
        return false;
    };
    let host = s.host();
    let port = s.port().unwrap_or(if s.is_secure() { 5061 } else { 5060 });
    // our ports are the ones in sent_by (and tls_sent_by); a `host:port` entry of local_hosts
    // names its own port
    let port_of = |sb: &str| {
        sb.rsplit_once(':')
            .and_then(|(_, p)| p.parse::<u16>().ok())
            .unwrap_or(5060)
    };
    // (our ports read only when a host matches)
    let our_port = || port_of(&cfg.sent_by);
    cfg.local_hosts.iter().any(|h| match h.rsplit_once(':') {
        Some((a, b)) if !a.contains(':') || a.ends_with(']') => {
            host_text_is(&host, a) && b.parse::<u16>().unwrap_or_else(|_| our_port()) == port
        }
        _ => {
            host_text_is(&host, h)
                && (port == our_port() || Some(port) == cfg.tls_sent_by.as_deref().map(port_of))
        }
    })
}

/// Whether `text` is `host` as [`ims_sip::Host`]'s `Display` writes it (ASCII case ignored),
/// without writing it.
fn host_text_is(host: &ims_sip::Host<'_>, text: &str) -> bool {
    match host {
        ims_sip::Host::Domain(d) => d.eq_ignore_ascii_case(text),
        ims_sip::Host::Ipv4(a) => {
            // the dotted quad Display writes, written on the stack and compared whole
            let mut quad = [0u8; 15];
            let mut n = 0;
            for (i, o) in a.octets().into_iter().enumerate() {
                if i > 0 {
                    quad[n] = b'.';
                    n += 1;
                }
                for d in [o / 100, o / 10 % 10, o % 10]
                    .into_iter()
                    .skip(if o >= 100 {
                        0
                    } else if o >= 10 {
                        1
                    } else {
                        2
                    })
                {
                    quad[n] = b'0' + d;
                    n += 1;
                }
            }
            text.as_bytes() == &quad[..n]
        }
        ims_sip::Host::Ipv6(s) => text
            .strip_prefix('[')
            .and_then(|t| t.strip_suffix(']'))
            .is_some_and(|t| t.eq_ignore_ascii_case(s)),
    }
}

/// A necessary condition for the Via element `elem` being one of ours
/// ([`ProxyConfig::is_our_via`] of its sent-by), read without parsing it. When each of our
/// sent-bys ends in `:<port>` written as `Display` writes a port, a Via of ours names that port
/// (a sent-by without one is none of ours: no host text holds a `:port`), and the digits
/// written for it (leading zeros only come before that text) end its sent-by: only blanks may
/// follow before the parameters (the first `;`, which no sent-by holds) or the end. `true`
/// when that cannot be told (a sent-by of ours without such a port).
fn might_be_our_via(cfg: &ProxyConfig, elem: &str) -> bool {
    // the port text of a sent-by, when it is decimal without leading zeros and at most 65535
    fn port_of(sb: &str) -> Option<&[u8]> {
        let b = sb.as_bytes();
        let ps = &b[b.iter().rposition(|&c| c == b':')? + 1..];
        let canonical = !ps.is_empty()
            && (ps.len() == 1 || ps[0] != b'0')
            && ps.len() <= 5
            && ps.iter().all(u8::is_ascii_digit)
            && ps.iter().fold(0u32, |v, &c| v * 10 + u32::from(c - b'0')) <= 65535;
        canonical.then_some(ps)
    }
    let e = elem.as_bytes();
    // the text before the parameters, without the blanks that may end it
    let mut end = memchr_semicolon(e);
    while end > 0 && matches!(e[end - 1], b' ' | b'\t' | b'\r' | b'\n') {
        end -= 1;
    }
    let head = &e[..end];
    // whether `head` ends with `p`, compared a byte at a time (no `memcmp` call)
    let ends_with = |p: &[u8]| {
        p.len() <= head.len()
            && head[head.len() - p.len()..]
                .iter()
                .zip(p)
                .all(|(a, b)| a == b)
    };
    let Some(p) = port_of(&cfg.sent_by) else {
        return true;
    };
    match cfg.tls_sent_by.as_deref() {
        None => ends_with(p),
        Some(t) => match port_of(t) {
            Some(q) => ends_with(p) || ends_with(q),
            None => true,
        },
    }
}

/// The offset of the first `;` in `b`, or its length.
fn memchr_semicolon(b: &[u8]) -> usize {
    b.iter().position(|&c| c == b';').unwrap_or(b.len())
}

/// Whether a branch starts with `z9hG4bK-<16 lowercase hex digits of hash>-` (the branches this
/// proxy writes), without formatting the prefix.
fn branch_carries(branch: &str, hash: u64) -> bool {
    let Some(rest) = branch.strip_prefix("z9hG4bK-") else {
        return false;
    };
    let b = rest.as_bytes();
    b.len() > 16
        && b[16] == b'-'
        && b[..16]
            .iter()
            .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(c))
        && u64::from_str_radix(&rest[..16], 16).ok() == Some(hash)
}

/// Stateless forwarding of a request (§16.11): the §16.3 checks, loop detection and Route
/// processing of the stateful path, then the Request-URI (when `target_uri` is given),
/// Max-Forwards, Record-Route (when configured, for dialog-creating requests) and a Via whose
/// branch is the same for every retransmission ([`stateless_branch`]). `Err` is the status to
/// answer (statelessly).
pub fn stateless_request(
    cfg: &ProxyConfig,
    m: &Message<'_>,
    target_uri: Option<&str>,
    transport: crate::Transport,
) -> Result<Vec<u8>, u16> {
    let (p, _) = preprocess(cfg, m, None, false).map_err(|(s, _)| s)?;
    let pm = p.as_message();
    let mut e = pm.edit();
    if let Some(u) = target_uri {
        e.set_request_uri(u);
    }
    e.decrement_max_forwards().map_err(|_| 483u16)?;
    let dialog_creating = matches!(
        pm.method(),
        Some(Method::Invite | Method::Subscribe | Method::Refer)
    );
    let in_dialog = pm.to_tag().is_some();
    if cfg.record_route && dialog_creating && !in_dialog {
        e.push_record_route(format!("<{};lr>", cfg.uri));
    }
    e.push_via(format!(
        "SIP/2.0/{} {};branch={}",
        transport.as_str(),
        cfg.sent_by_for(transport),
        stateless_branch(m)
    ));
    Ok(e.to_vec())
}

/// Stateless forwarding of a response (§16.11 / §16.7 step 3): the top Via must be ours (else
/// the response is dropped: `None`); it is removed and the response goes to the hop named by
/// the next Via ([`response_next_hop`]).
pub fn stateless_response(
    cfg: &ProxyConfig,
    m: &Message<'_>,
) -> Option<(Vec<u8>, (String, String, u16))> {
    let top = m.top_via().ok()??;
    if !cfg.is_our_via(&top.host(), top.port()) {
        return None;
    }
    let hop = response_next_hop(m)?;
    let mut e = m.edit();
    e.pop_via();
    Some((e.to_vec(), hop))
}

/// §16.7 step 6: is `a` a better final response than `b`? 6xx beats everything, then the lowest
/// class wins; within a class the first one stays.
fn better(a: &OwnedMessage, b: &OwnedMessage) -> bool {
    let ca = a.status().unwrap_or(999);
    let cb = b.status().unwrap_or(999);
    match (ca >= 600, cb >= 600) {
        (true, false) => true,
        (false, true) => false,
        _ => ca / 100 <= cb / 100,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `might_be_our_via` never turns down a Via of ours: for every sent-by configuration and
    /// Via element, a false answer means `sent_by_of` + `is_our_via` say "not ours"; and it
    /// turns down the other elements' Vias of an IMS core on one address.
    #[test]
    fn a_via_turned_down_by_its_port_text_is_never_ours() {
        let configs: [(&str, Option<&str>); 9] = [
            ("127.0.0.1:5004", None),
            ("127.0.0.1:5004", Some("127.0.0.1:5005")),
            ("127.0.0.1:5004", Some("tls.example.org")),
            ("[::1]:5060", None),
            ("[::1]", None),
            ("p.example.org", None),
            ("P.Example.org:5060", None),
            ("p.example.org:05060", None),
            ("h:65536", None),
        ];
        let hosts = [
            "127.0.0.1",
            "127.000.0.1",
            "[::1]",
            "[0:0::1]",
            "p.example.org",
            "P.EXAMPLE.ORG",
            "tls.example.org",
            "h",
            "10.0.0.1",
        ];
        let ports = [
            "", ":5004", ":05004", ":5005", ":5060", ":05060", ":50040", ":65536", ":0", ":",
            " : 5004", ":5004 \t", ":5005 ",
        ];
        let tails = [
            "",
            ";branch=z9hG4bK-5004",
            ";rport;branch=z9hG4bK1",
            " ;x",
            ",x",
        ];
        let mut checked = 0;
        let mut turned_down = 0;
        for (sent_by, tls) in configs {
            let cfg = ProxyConfig {
                sent_by: sent_by.into(),
                tls_sent_by: tls.map(str::to_owned),
                ..ProxyConfig::default()
            };
            for proto in ["SIP/2.0/UDP ", "sip / 2.0 / tcp  ", "SIP/2.0/TLS"] {
                for host in hosts {
                    for port in ports {
                        for tail in tails {
                            let elem = format!("{proto}{host}{port}{tail}");
                            let ours =
                                Via::sent_by_of(&elem).is_some_and(|(h, p)| cfg.is_our_via(&h, p));
                            checked += 1;
                            if !might_be_our_via(&cfg, &elem) {
                                turned_down += 1;
                                assert!(!ours, "{sent_by} {tls:?}: {elem:?} is ours");
                            }
                        }
                    }
                }
            }
        }
        assert!(turned_down > checked / 4, "{turned_down} of {checked}");
        // the S-CSCF (5004) of a core on 127.0.0.1 turns down the UE's, the P- and I-CSCF's Vias
        let cfg = ProxyConfig {
            sent_by: "127.0.0.1:5004".into(),
            ..ProxyConfig::default()
        };
        for v in [
            "SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK-15675-8-2;rport=5060;received=127.0.0.1",
            "SIP/2.0/UDP 127.0.0.1:5000;branch=z9hG4bK-0123456789abcdef-1a",
            "SIP/2.0/UDP 127.0.0.1:5002;branch=z9hG4bK-0123456789abcdef-2",
        ] {
            assert!(!might_be_our_via(&cfg, v), "{v}");
        }
        assert!(might_be_our_via(
            &cfg,
            "SIP/2.0/UDP 127.0.0.1:5004;branch=z9hG4bK-0123456789abcdef-3"
        ));
    }

    proptest::proptest! {
        /// The same on any text.
        #[test]
        fn a_via_turned_down_by_its_port_text_is_never_ours_on_any_text(
            elem in "(SIP/2\\.0/(UDP|TCP) )?[0-9a-z.:\\[\\]]{0,24}(;[a-z0-9=]{0,12})?",
            port in 0u16..=65535,
            tls in proptest::option::of(0u16..=65535),
        ) {
            let cfg = ProxyConfig {
                sent_by: format!("127.0.0.1:{port}"),
                tls_sent_by: tls.map(|t| format!("h.example.org:{t}")),
                ..ProxyConfig::default()
            };
            let ours = Via::sent_by_of(&elem).is_some_and(|(h, p)| cfg.is_our_via(&h, p));
            proptest::prop_assert!(might_be_our_via(&cfg, &elem) || !ours);
        }
    }

    /// `host_text_is` of an IPv4 host is `Display`'s text, byte for byte.
    #[test]
    fn ipv4_host_text_is_what_display_writes() {
        let texts = [
            "10.0.0.1",
            "010.0.0.1",
            "10.0.0.01",
            "10.0.0",
            "10.0.0.1.",
            "10.0.0.1.5",
            "10..0.1",
            "255.255.255.255",
            "256.0.0.1",
            "0.0.0.0",
            "00.0.0.0",
            "+1.0.0.1",
            "10.0.0.1 ",
            "",
            "a.b.c.d",
            "127.0.0.1",
            "1.2.3.4",
        ];
        for a in [
            std::net::Ipv4Addr::new(10, 0, 0, 1),
            std::net::Ipv4Addr::new(255, 255, 255, 255),
            std::net::Ipv4Addr::new(0, 0, 0, 0),
            std::net::Ipv4Addr::new(127, 0, 0, 1),
            std::net::Ipv4Addr::new(1, 2, 3, 4),
        ] {
            for t in texts {
                assert_eq!(
                    host_text_is(&ims_sip::Host::Ipv4(a), t),
                    a.to_string() == t,
                    "{a} {t:?}"
                );
            }
        }
        // every digit count of every octet, against its own text and its neighbours'
        let octets = [0u8, 1, 9, 10, 42, 99, 100, 109, 199, 200, 255];
        for &x in &octets {
            for &y in &octets {
                let addrs = [
                    std::net::Ipv4Addr::new(x, y, x, y),
                    std::net::Ipv4Addr::new(y, x, 7, x),
                ];
                for a in addrs {
                    for b in addrs {
                        let t = b.to_string();
                        let host = ims_sip::Host::Ipv4(a);
                        assert_eq!(host_text_is(&host, &t), a == b, "{a} {t}");
                        assert!(!host_text_is(&host, &format!("{t}0")), "{a} {t}0");
                        assert!(!host_text_is(&host, &t[..t.len() - 1]), "{a} {t}");
                    }
                }
            }
        }
    }

    /// The allocation-free checks say what the written-out comparisons they replace say.
    #[test]
    fn hex_is_written_as_fmt_writes_it() {
        for v in [
            0u64,
            1,
            9,
            10,
            15,
            16,
            255,
            256,
            0xabc,
            u64::from(u32::MAX),
            u64::MAX - 1,
            u64::MAX,
        ] {
            for w in [0usize, 1, 2, 16, 20] {
                let mut s = String::from("x");
                push_hex(&mut s, v, w);
                assert_eq!(s, format!("x{v:0w$x}"));
            }
        }
    }

    #[test]
    fn via_and_branch_checks_match_the_written_out_comparison() {
        let cfgs = [
            ProxyConfig::default(),
            ProxyConfig {
                sent_by: "Proxy.Example.COM:5062".into(),
                tls_sent_by: Some("[2001:db8::1]:5061".into()),
                ..ProxyConfig::default()
            },
            ProxyConfig {
                sent_by: "proxy.example.com".into(),
                ..ProxyConfig::default()
            },
        ];
        let vias = [
            "SIP/2.0/UDP 127.0.0.1:5060",
            "SIP/2.0/UDP 127.0.0.1",
            "SIP/2.0/UDP 127.0.0.1:5061",
            "SIP/2.0/UDP 127.0.0.2:5060",
            "SIP/2.0/UDP proxy.example.com:5062",
            "SIP/2.0/UDP PROXY.example.com",
            "SIP/2.0/UDP proxy.example.com",
            "SIP/2.0/TLS [2001:DB8::1]:5061",
            "SIP/2.0/TLS [2001:db8::1]",
            "SIP/2.0/TLS [2001:db8:0::1]:5061",
        ];
        for cfg in &cfgs {
            for v in vias {
                let raw = format!(
                    "OPTIONS sip:x@y SIP/2.0\r\nVia: {v};branch=z9hG4bK1\r\nContent-Length: 0\r\n\r\n"
                );
                let m = ims_sip::parse_datagram(raw.as_bytes()).unwrap();
                let via = m.top_via().unwrap().unwrap();
                let written = match via.port() {
                    Some(p) => format!("{}:{p}", via.host()),
                    None => via.host().to_string(),
                };
                assert_eq!(
                    cfg.is_our_via(&via.host(), via.port()),
                    cfg.is_our_sent_by(&written),
                    "{v} against {}",
                    cfg.sent_by
                );
            }
        }
        for (hash, branch, carries) in [
            (0x0123_4567_89ab_cdef, "z9hG4bK-0123456789abcdef-1", true),
            (0x0123_4567_89ab_cdef, "z9hG4bK-0123456789ABCDEF-1", false),
            (0x0123_4567_89ab_cdef, "z9hG4bK-0123456789abcdee-1", false),
            (0x0123_4567_89ab_cdef, "z9hG4bK-0123456789abcdef", false),
            (0x0123_4567_89ab_cdef, "z9hG4bK0123456789abcdef-1", false),
            (1, "z9hG4bK-0000000000000001-", true),
            (1, "z9hG4bK-+000000000000001-", false),
        ] {
            let prefix = format!("z9hG4bK-{hash:016x}-");
            assert_eq!(branch.starts_with(&prefix), carries, "{branch}");
            assert_eq!(branch_carries(branch, hash), carries, "{branch}");
        }
    }
}
