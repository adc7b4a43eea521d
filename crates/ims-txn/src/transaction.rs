//! The four transaction state machines (RFC 3261 §17.1.1, §17.1.2, §17.2.1, §17.2.2 with the
//! RFC 6026 Accepted states).

use crate::key::{Remote, TxnKey};
use crate::layer::{Event, Output, Transmit, TxnId};
use crate::timer::{Armed, Timer, TimerConfig};
use crate::TxnError;
use bytes::Bytes;
use ims_sip::{HeaderName, Method, OwnedMessage, RequestBuilder, ResponseBuilder};
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// The four kinds of transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// INVITE client transaction (RFC 3261 Figure 5, RFC 6026 Figure 5).
    InviteClient,
    /// Non-INVITE client transaction (RFC 3261 Figure 6).
    NonInviteClient,
    /// INVITE server transaction (RFC 3261 Figure 7, RFC 6026 Figure 7).
    InviteServer,
    /// Non-INVITE server transaction (RFC 3261 Figure 8).
    NonInviteServer,
}

/// Transaction states (RFC 3261 §17, RFC 6026 §7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    /// INVITE client: request sent, nothing heard yet.
    Calling,
    /// Non-INVITE client: request sent; non-INVITE server: request received, no response yet.
    Trying,
    /// A provisional response was received (client) or sent (server).
    Proceeding,
    /// A non-2xx final response (INVITE) or any final response (non-INVITE) was received or sent.
    Completed,
    /// INVITE server: the ACK for the non-2xx final response arrived.
    Confirmed,
    /// INVITE: a 2xx was received (client) or sent (server) (RFC 6026).
    Accepted,
    /// Finished; the transaction is gone from the layer.
    Terminated,
}

pub(crate) struct Ctx<'c> {
    pub(crate) now: Instant,
    pub(crate) cfg: &'c TimerConfig,
    pub(crate) out: &'c mut VecDeque<Output>,
    pub(crate) armed: &'c mut Vec<(Instant, TxnId, Timer)>,
}

pub(crate) struct Transaction {
    pub(crate) id: TxnId,
    pub(crate) key: TxnKey,
    pub(crate) kind: Kind,
    pub(crate) state: State,
    pub(crate) remote: Remote,
    /// Runs with the reliable-transport timers: a reliable transport, or a UDP peer the layer
    /// was told is reached without loss ([`crate::TransactionLayer::set_lossless`]).
    reliable: bool,
    /// The request (a 40-byte handle on shared bytes and index, held in place: no allocation of
    /// its own), let go once the transaction no longer needs it: on entering Completed,
    /// Confirmed or Accepted (the waits of Timers D, I, J, K, L, M only retransmit
    /// `last_response` or `ack` and match by `key`).
    pub(crate) request: Option<OwnedMessage>,
    /// Server: the last response sent, as bytes for retransmission.
    pub(crate) last_response: Option<Bytes>,
    /// INVITE client: the ACK for a non-2xx answer, resent for each retransmitted answer.
    ack: Option<Bytes>,
    pub(crate) timers: Armed,
    /// Current retransmission interval of A, E or G.
    interval: Duration,
    /// INVITE server: the To tag of the final response (RFC 2543 ACK matching).
    pub(crate) response_to_tag: Option<Box<str>>,
    /// Its entry in the layer's merged-request table, when detection is on.
    pub(crate) merge_key: Option<Box<crate::layer::MergeKey>>,
}

impl Transaction {
    pub(crate) fn new(
        id: TxnId,
        key: TxnKey,
        kind: Kind,
        remote: Remote,
        reliable: bool,
        request: OwnedMessage,
        cfg: &TimerConfig,
    ) -> Self {
        let state = match kind {
            Kind::InviteClient => State::Calling,
            Kind::NonInviteClient | Kind::NonInviteServer => State::Trying,
            Kind::InviteServer => State::Proceeding,
        };
        Transaction {
            id,
            key,
            kind,
            state,
            remote,
            reliable,
            request: Some(request),
            last_response: None,
            ack: None,
            timers: Armed::default(),
            interval: cfg.t1,
            response_to_tag: None,
            merge_key: None,
        }
    }

    fn reliable(&self) -> bool {
        self.reliable
    }

    fn arm(&mut self, cx: &mut Ctx<'_>, t: Timer, after: Duration) {
        let at = cx.now + after;
        self.timers.set(t, at);
        cx.armed.push((at, self.id, t));
    }

    fn disarm(&mut self, t: Timer) {
        self.timers.clear(t);
    }

    fn disarm_all(&mut self) {
        self.timers.clear_all();
    }

    fn send(&self, cx: &mut Ctx<'_>, bytes: Bytes) {
        cx.out.push_back(Output::Transmit(Transmit {
            txn: Some(self.id),
            remote: self.remote,
            bytes,
        }));
    }

    fn event(&self, cx: &mut Ctx<'_>, e: Event) {
        cx.out.push_back(Output::Event(e));
    }

    /// The transaction has its final response: the request is no longer needed.
    fn release_request(&mut self) {
        self.request = None;
    }

    /// Completed over an unreliable transport: the final response waits for Timer J (32 s) or
    /// H. A built response's buffer may be up to twice its length (and a parsed one may share a
    /// larger receive buffer), so it is copied to a buffer of its own size; reliable transports
    /// end the transaction at once (J = 0) or never retransmit (G), so they keep it as is.
    fn keep_for_retransmission(&mut self) {
        if self.reliable() {
            return;
        }
        if let Some(r) = &self.last_response {
            self.last_response = Some(Bytes::copy_from_slice(r));
        }
    }

    fn request_bytes(&self) -> Option<Bytes> {
        self.request.as_ref().map(|r| r.bytes().clone())
    }

    fn send_request_again(&self, cx: &mut Ctx<'_>) {
        if let Some(b) = self.request_bytes() {
            self.send(cx, b);
        }
    }

    fn terminate(&mut self) {
        self.state = State::Terminated;
        self.disarm_all();
    }

    /// Client transactions: send the request and start the timers.
    pub(crate) fn start_client(&mut self, cx: &mut Ctx<'_>) {
        self.send_request_again(cx);
        let t1 = cx.cfg.t1;
        let x64 = cx.cfg.t1x64();
        match self.kind {
            Kind::InviteClient => {
                if !self.reliable() {
                    self.arm(cx, Timer::A, t1);
                }
                self.arm(cx, Timer::B, x64);
            }
            Kind::NonInviteClient => {
                if !self.reliable() {
                    self.arm(cx, Timer::E, t1);
                }
                self.arm(cx, Timer::F, x64);
            }
            _ => {}
        }
    }

    /// INVITE server transactions: start the 100 Trying timer (RFC 3261 §17.2.1).
    pub(crate) fn start_server(&mut self, cx: &mut Ctx<'_>) {
        if self.kind == Kind::InviteServer {
            let d = cx.cfg.trying;
            self.arm(cx, Timer::Trying, d);
        }
    }

    pub(crate) fn on_timer(&mut self, cx: &mut Ctx<'_>, t: Timer) {
        use State::*;
        match (self.kind, self.state, t) {
            (Kind::InviteClient, Calling, Timer::A) => {
                self.send_request_again(cx);
                self.interval *= 2;
                let i = self.interval;
                self.arm(cx, Timer::A, i);
            }
            (Kind::InviteClient, Calling, Timer::B)
            | (Kind::NonInviteClient, Trying | Proceeding, Timer::F) => {
                self.terminate();
                self.event(
                    cx,
                    Event::Timeout {
                        txn: self.id,
                        timer: t,
                    },
                );
            }
            (Kind::InviteClient, Completed, Timer::D)
            | (Kind::InviteClient, Accepted, Timer::M)
            | (Kind::NonInviteClient, Completed, Timer::K)
            | (Kind::InviteServer, Confirmed, Timer::I)
            | (Kind::InviteServer, Accepted, Timer::L)
            | (Kind::NonInviteServer, Completed, Timer::J) => self.terminate(),
            (Kind::NonInviteClient, Trying, Timer::E) => {
                self.send_request_again(cx);
                self.interval = (self.interval * 2).min(cx.cfg.t2);
                let i = self.interval;
                self.arm(cx, Timer::E, i);
            }
            (Kind::NonInviteClient, Proceeding, Timer::E) => {
                self.send_request_again(cx);
                let t2 = cx.cfg.t2;
                self.arm(cx, Timer::E, t2);
            }
            (Kind::InviteServer, Proceeding, Timer::Trying) if self.last_response.is_none() => {
                let trying = self.request.as_ref().and_then(|req| {
                    ResponseBuilder::from_request(&req.as_message(), 100)
                        .build()
                        .ok()
                });
                if let Some(r) = trying {
                    let b = r.bytes().clone();
                    self.send(cx, b.clone());
                    self.last_response = Some(b);
                }
            }
            (Kind::InviteServer, Completed, Timer::G) => {
                if let Some(r) = &self.last_response {
                    self.send(cx, r.clone());
                }
                self.interval = (self.interval * 2).min(cx.cfg.t2);
                let i = self.interval;
                self.arm(cx, Timer::G, i);
            }
            (Kind::InviteServer, Completed, Timer::H) => {
                self.terminate();
                self.event(
                    cx,
                    Event::Timeout {
                        txn: self.id,
                        timer: t,
                    },
                );
            }
            _ => {}
        }
    }

    /// A response received for this client transaction.
    pub(crate) fn on_response(&mut self, cx: &mut Ctx<'_>, msg: OwnedMessage) {
        use State::*;
        let code = msg.status().unwrap_or(0);
        let pass = |s: &Self, cx: &mut Ctx<'_>, msg: OwnedMessage| {
            s.event(cx, Event::Response { txn: s.id, msg });
        };
        match (self.kind, self.state) {
            (Kind::InviteClient, Calling | Proceeding) => {
                self.disarm(Timer::A);
                self.disarm(Timer::B);
                if code < 200 {
                    self.state = Proceeding;
                    pass(self, cx, msg);
                } else if code < 300 {
                    self.state = Accepted;
                    self.release_request();
                    let m = cx.cfg.t1x64();
                    self.arm(cx, Timer::M, m);
                    pass(self, cx, msg);
                } else {
                    self.state = Completed;
                    let ack = self.build_ack(&msg);
                    if let Some(ack) = &ack {
                        self.send(cx, ack.clone());
                    }
                    self.ack = ack;
                    self.release_request();
                    let d = if self.reliable() {
                        Duration::ZERO
                    } else {
                        cx.cfg.d
                    };
                    self.arm(cx, Timer::D, d);
                    pass(self, cx, msg);
                }
            }
            (Kind::InviteClient, Completed) if code >= 300 => {
                if let Some(ack) = &self.ack {
                    self.send(cx, ack.clone());
                }
            }
            (Kind::InviteClient, Accepted) if (200..300).contains(&code) => pass(self, cx, msg),
            (Kind::NonInviteClient, Trying | Proceeding) => {
                if code < 200 {
                    self.state = Proceeding;
                } else {
                    self.state = Completed;
                    self.release_request();
                    self.disarm(Timer::E);
                    self.disarm(Timer::F);
                    let k = if self.reliable() {
                        Duration::ZERO
                    } else {
                        cx.cfg.t4
                    };
                    self.arm(cx, Timer::K, k);
                }
                pass(self, cx, msg);
            }
            _ => {}
        }
    }

    /// The ACK for a non-2xx final response (RFC 3261 §17.1.1.3): Request-URI, top Via, From,
    /// Call-ID, Route of the INVITE; To of the response; CSeq number with method ACK.
    fn build_ack(&self, resp: &OwnedMessage) -> Option<Bytes> {
        let req = self.request.as_ref()?.as_message();
        let resp = resp.as_message();
        let mut b = RequestBuilder::new(Method::Ack, req.request_uri_str()?);
        let via = req.headers_of(HeaderName::Via).next()?;
        // only the top Via value of the INVITE
        let top = via.value().split(',').next().unwrap_or(via.value()).trim();
        b = b.header("Via", top).header("Max-Forwards", 70);
        b = b.header("From", req.header(HeaderName::From)?);
        b = b.header("To", resp.header(HeaderName::To)?);
        b = b.header("Call-ID", req.header(HeaderName::CallId)?);
        let seq = req.cseq().ok()??.seq;
        b = b.header("CSeq", format_args!("{seq} ACK"));
        for r in req.headers_of(HeaderName::Route) {
            b = b.header("Route", r.value());
        }
        // a builder's buffer grows by doubling: trimmed, as it is kept through Timer D
        Some(Bytes::from(b.to_vec().into_boxed_slice()))
    }

    /// A retransmission of the request that created this server transaction.
    pub(crate) fn on_request_retransmission(&mut self, cx: &mut Ctx<'_>) {
        use State::*;
        match (self.kind, self.state) {
            (Kind::InviteServer, Proceeding | Completed)
            | (Kind::NonInviteServer, Proceeding | Completed) => {
                if let Some(r) = &self.last_response {
                    self.send(cx, r.clone());
                }
            }
            // Trying (non-INVITE), Confirmed, Accepted (RFC 6026 §7.1): absorbed
            _ => {}
        }
    }

    /// An ACK matching this INVITE server transaction. Returns true when it goes to the TU
    /// (Accepted state, RFC 6026 §7.1).
    pub(crate) fn on_ack(&mut self, cx: &mut Ctx<'_>) -> bool {
        match self.state {
            State::Completed => {
                self.state = State::Confirmed;
                self.disarm(Timer::G);
                self.disarm(Timer::H);
                let i = if self.reliable() {
                    Duration::ZERO
                } else {
                    cx.cfg.t4
                };
                self.arm(cx, Timer::I, i);
                false
            }
            State::Accepted => true,
            _ => false,
        }
    }

    /// A response the TU sends on this server transaction.
    pub(crate) fn send_response(
        &mut self,
        cx: &mut Ctx<'_>,
        msg: OwnedMessage,
    ) -> Result<(), TxnError> {
        use State::*;
        let code = msg.status().ok_or(TxnError::NotAResponse)?;
        match (self.kind, self.state) {
            (Kind::InviteServer, Proceeding) => {
                self.disarm(Timer::Trying);
                self.send(cx, msg.bytes().clone());
                if code >= 200 {
                    self.response_to_tag = msg.as_message().to_tag().map(Into::into);
                }
                // only the bytes are kept, for retransmission
                self.last_response = Some(msg.bytes().clone());
                if (200..300).contains(&code) {
                    self.state = Accepted;
                    self.release_request();
                    // 2xx retransmissions are the TU's, request retransmissions are absorbed
                    // (RFC 6026 §7.1): nothing to resend
                    self.last_response = None;
                    let l = cx.cfg.t1x64();
                    self.arm(cx, Timer::L, l);
                } else if code >= 300 {
                    self.state = Completed;
                    self.release_request();
                    self.keep_for_retransmission();
                    if !self.reliable() {
                        self.interval = cx.cfg.t1;
                        let g = cx.cfg.t1;
                        self.arm(cx, Timer::G, g);
                    }
                    let h = cx.cfg.t1x64();
                    self.arm(cx, Timer::H, h);
                }
                Ok(())
            }
            (Kind::InviteServer, Accepted) if (200..300).contains(&code) => {
                // the TU retransmits its 2xx through the transaction (RFC 6026 §7.1)
                self.send(cx, msg.bytes().clone());
                Ok(())
            }
            (Kind::NonInviteServer, Trying | Proceeding) => {
                self.send(cx, msg.bytes().clone());
                self.last_response = Some(msg.bytes().clone());
                if code < 200 {
                    self.state = Proceeding;
                } else {
                    self.state = Completed;
                    self.release_request();
                    self.keep_for_retransmission();
                    let j = if self.reliable() {
                        Duration::ZERO
                    } else {
                        cx.cfg.t1x64()
                    };
                    self.arm(cx, Timer::J, j);
                }
                Ok(())
            }
            (Kind::InviteClient | Kind::NonInviteClient, _) => Err(TxnError::InvalidState(
                "responses are sent on server transactions",
            )),
            _ => Err(TxnError::InvalidState(
                "the transaction already sent its final response",
            )),
        }
    }

    /// A transport error reported for this transaction (RFC 3261 §17.1.4, §17.2.4).
    pub(crate) fn on_transport_error(&mut self, cx: &mut Ctx<'_>) {
        if self.state == State::Terminated {
            return;
        }
        // RFC 6026: the Accepted states do not end on a transport error (2xx retransmissions or
        // the ACK may still get through another way); the TU is informed.
        if self.state != State::Accepted {
            self.terminate();
        }
        self.event(cx, Event::TransportError { txn: self.id });
    }
}
