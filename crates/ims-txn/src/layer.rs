//! The transaction layer: every transaction of an element, message matching and the timer wheel,
//! behind the sans-IO `handle_input` / `poll_output` / `poll_timeout` / `handle_timeout` shape.

use crate::hash::FastMap;
use crate::key::{Remote, Side, TxnKey};
use crate::sparse::Shrink;
use crate::timer::{Timer, TimerConfig};
use crate::transaction::{Ctx, Kind, State, Transaction};
use crate::TxnError;
use bytes::Bytes;
use ims_sip::{Method, OwnedMessage, ResponseBuilder};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

/// A transaction handle, unique for the life of a [`TransactionLayer`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TxnId(pub u64);

impl fmt::Display for TxnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "txn#{}", self.0)
    }
}

/// Settings of a [`TransactionLayer`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Config {
    /// T1, T2, T4 and the derived timers.
    pub timers: TimerConfig,
    /// Answer 482 (Loop Detected) to merged requests (RFC 3261 §8.2.2.2): a request without a To
    /// tag whose From tag, Call-ID and CSeq equal those of a live server transaction it does not
    /// match. For user agents only: a proxy must forward such requests, so the default is off.
    pub merged_request_detection: bool,
}

/// What the layer hands back through [`TransactionLayer::poll_output`].
// Events carry the parsed message by value: each output moves once through the queue, and boxing
// would cost an allocation per event.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum Output {
    /// Bytes to send.
    Transmit(Transmit),
    /// Something for the transaction user.
    Event(Event),
}

/// Bytes to send to a peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// The transaction sending, `None` for stateless sends ([`Input::SendStateless`]).
    pub txn: Option<TxnId>,
    /// Where to.
    pub remote: Remote,
    /// The whole message.
    pub bytes: Bytes,
}

/// Events for the transaction user (UA core, proxy core).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Event {
    /// A new request created a server transaction (any method but ACK and CANCEL). Answer it with
    /// [`Input::SendResponse`] on `txn`.
    Request {
        /// The new server transaction.
        txn: TxnId,
        /// The request.
        msg: OwnedMessage,
        /// Where it came from.
        remote: Remote,
    },
    /// A CANCEL created its own non-INVITE server transaction `txn` (RFC 3261 §9.2). `invite` is
    /// the INVITE server transaction it targets, `None` when there is none (answer 481).
    Cancel {
        /// The CANCEL's server transaction.
        txn: TxnId,
        /// The INVITE server transaction being cancelled.
        invite: Option<TxnId>,
        /// The CANCEL.
        msg: OwnedMessage,
        /// Where it came from.
        remote: Remote,
    },
    /// An ACK the layer does not absorb: the ACK for a 2xx. `invite` is the INVITE server
    /// transaction in the Accepted state it matched (RFC 6026 §7.1), `None` when it matched none
    /// (the usual case: a 2xx ACK has its own branch; the dialog layer matches it).
    Ack {
        /// The Accepted INVITE server transaction, if it matched one.
        invite: Option<TxnId>,
        /// The ACK.
        msg: OwnedMessage,
        /// Where it came from.
        remote: Remote,
    },
    /// A response for a client transaction: every 1xx, the first non-2xx final, and every 2xx of
    /// an INVITE (retransmissions included, RFC 6026 §7.2).
    Response {
        /// The client transaction.
        txn: TxnId,
        /// The response.
        msg: OwnedMessage,
    },
    /// A response that matched no client transaction (RFC 6026 §7.3: a UA core matches 2xx to
    /// its dialogs; a stateful proxy drops it).
    StrayResponse {
        /// The response.
        msg: OwnedMessage,
        /// Where it came from.
        remote: Remote,
    },
    /// Timer B, F or H fired: no final response (client) or no ACK (server) in time.
    Timeout {
        /// The transaction.
        txn: TxnId,
        /// Which timer.
        timer: Timer,
    },
    /// The transport reported an error for this transaction (RFC 3261 §17.1.4, §17.2.4).
    TransportError {
        /// The transaction.
        txn: TxnId,
    },
    /// The transaction reached Terminated and was removed.
    Terminated {
        /// The transaction.
        txn: TxnId,
        /// Its key.
        key: TxnKey,
    },
}

/// Everything the layer is driven with, besides time.
#[derive(Debug, Clone)]
pub enum Input {
    /// A message read from the network (parse it with [`OwnedMessage::parse_datagram`] or a
    /// [`ims_sip::Framer`]).
    Received {
        /// The message.
        msg: OwnedMessage,
        /// Where it came from.
        remote: Remote,
    },
    /// The TU sends a request: a client transaction is created (not for ACK). The request must
    /// carry its top Via with a unique `z9hG4bK` branch and a CSeq.
    SendRequest {
        /// The request.
        msg: OwnedMessage,
        /// Where to send it.
        remote: Remote,
    },
    /// The TU answers on a server transaction.
    SendResponse {
        /// The server transaction.
        txn: TxnId,
        /// The response.
        msg: OwnedMessage,
    },
    /// Send without a transaction: the ACK for a 2xx, a stateless proxy forward, a stateless
    /// answer.
    SendStateless {
        /// Where to.
        remote: Remote,
        /// The bytes.
        bytes: Bytes,
    },
    /// The transport failed to deliver for this transaction.
    TransportError {
        /// The transaction.
        txn: TxnId,
    },
}

/// Which UDP peers the transport underneath reaches without loss (see
/// [`TransactionLayer::set_lossless`]): asked once per transaction, with the peer's address.
pub type LosslessPeers = Arc<dyn Fn(SocketAddr) -> bool + Send + Sync>;

/// Every transaction of one element (RFC 3261 §17), sans-IO.
///
/// Feed it with [`TransactionLayer::handle_input`] and [`TransactionLayer::handle_timeout`];
/// after each call drain [`TransactionLayer::poll_output`] and sleep until
/// [`TransactionLayer::poll_timeout`].
#[derive(Default)]
pub struct TransactionLayer {
    cfg: Config,
    next_id: u64,
    seq: u64,
    /// Transactions by key (the transaction keeps a copy: a key is inline, copied without
    /// allocating, up to 64 bytes of text).
    by_key: FastMap<TxnKey, TxnId>,
    /// Boxed: the table then holds a pointer per slot instead of the whole state machine (it
    /// keeps up to twice as many slots as entries, and transactions wait up to 32 s in Completed
    /// over UDP).
    txns: FastMap<TxnId, Box<Transaction>>,
    heap: BinaryHeap<Reverse<(Instant, u64, TxnId, Timer)>>,
    out: VecDeque<Output>,
    armed: Vec<(Instant, TxnId, Timer)>,
    /// (From tag, Call-ID, CSeq number, method) of server transactions of requests without a To
    /// tag, for merged-request detection (filled only when it is on).
    merge: HashMap<MergeKey, TxnId>,
    /// The last messages handed to [`TransactionLayer::send_request`] and
    /// [`TransactionLayer::send_response`], when kept ([`TransactionLayer::keep_sent`]).
    sent: VecDeque<OwnedMessage>,
    /// How many of them are kept (0: none).
    keep_sent: usize,
    /// UDP peers reached without loss ([`TransactionLayer::set_lossless`]).
    lossless: Option<LosslessPeers>,
}

impl fmt::Debug for TransactionLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TransactionLayer")
            .field("transactions", &self.txns.len())
            .field("next_timeout", &self.poll_timeout())
            .finish()
    }
}

pub(crate) type MergeKey = (Box<str>, Box<str>, u32, Box<str>);

fn merge_key(m: &ims_sip::Message<'_>) -> Option<MergeKey> {
    if m.to_tag().is_some() {
        return None;
    }
    let from_tag = m.from_tag()?;
    let call_id = m.call_id().ok()??;
    let cseq = m.cseq().ok()??;
    Some((
        from_tag.into(),
        call_id.as_str().into(),
        cseq.seq,
        cseq.method.as_str().into(),
    ))
}

impl TransactionLayer {
    /// An empty layer.
    pub fn new(cfg: Config) -> Self {
        TransactionLayer {
            cfg,
            ..Default::default()
        }
    }

    /// Declares the UDP peers that the transport underneath reaches without loss, in order and
    /// with every message it is given (typically co-located endpoints of the same process that
    /// a driver hands messages to in memory: nothing is dropped on the way, and the peer's own
    /// layer was told the same about this one). A transaction with such a peer runs as over a
    /// reliable transport (RFC 3261 §17): no retransmissions (Timers A, E and G are not run,
    /// the peer never needs them) and no wait for retransmissions to absorb (Timers D, I, J
    /// and K are zero: the transaction and the response it kept are gone as soon as it
    /// completes, instead of up to 32 s later), while the timeouts (B, F, H) and the RFC 6026
    /// Accepted waits (L, M) stay. Decided when each transaction is created; `peers` is asked
    /// with the peer's UDP address only (TCP, TLS and the rest are reliable already).
    ///
    /// Both ends of such a link must say it of each other: a peer that retransmits over a link
    /// this layer calls lossless finds its retransmissions answered as new requests once the
    /// transaction is gone.
    pub fn set_lossless(&mut self, peers: LosslessPeers) {
        self.lossless = Some(peers);
    }

    /// Keeps the last `n` messages sent with [`TransactionLayer::send_request`] and
    /// [`TransactionLayer::send_response`] (0, the default, keeps none), so that a transport
    /// handing a [`Transmit`] to a co-located receiver can give it the parsed message
    /// ([`TransactionLayer::sent_message`]) instead of bytes to parse again.
    pub fn keep_sent(&mut self, n: usize) {
        self.keep_sent = n;
        self.sent.truncate(n);
    }

    /// The message whose bytes `bytes` are (the very same buffer, not an equal one), among the
    /// last ones sent ([`TransactionLayer::keep_sent`]).
    pub fn sent_message(&self, bytes: &Bytes) -> Option<&OwnedMessage> {
        self.sent.iter().rev().find(|m| {
            let b = m.bytes();
            b.as_ptr() == bytes.as_ptr() && b.len() == bytes.len()
        })
    }

    fn remember_sent(&mut self, msg: &OwnedMessage) {
        if self.keep_sent == 0 {
            return;
        }
        if self.sent.len() >= self.keep_sent {
            self.sent.pop_front();
        }
        self.sent.push_back(msg.clone());
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// Number of live transactions.
    pub fn len(&self) -> usize {
        self.txns.len()
    }

    /// True when no transaction is live.
    pub fn is_empty(&self) -> bool {
        self.txns.is_empty()
    }

    /// The state of a live transaction.
    pub fn state(&self, txn: TxnId) -> Option<State> {
        self.txns.get(&txn).map(|t| t.state)
    }

    /// The kind of a live transaction.
    pub fn kind(&self, txn: TxnId) -> Option<Kind> {
        self.txns.get(&txn).map(|t| t.kind)
    }

    /// The key of a live transaction.
    pub fn key(&self, txn: TxnId) -> Option<&TxnKey> {
        self.txns.get(&txn).map(|t| &t.key)
    }

    /// The request that created a live transaction, until it has its final response: a
    /// transaction waiting in Completed, Confirmed or Accepted (Timers D, I, J, K, L, M) has let
    /// it go, and this returns `None`.
    pub fn request(&self, txn: TxnId) -> Option<&OwnedMessage> {
        self.txns.get(&txn).and_then(|t| t.request.as_ref())
    }

    /// The peer of a live transaction.
    pub fn remote(&self, txn: TxnId) -> Option<Remote> {
        self.txns.get(&txn).map(|t| t.remote)
    }

    /// The peers of all live transactions (one entry per transaction): a transport that closes
    /// idle connections keeps those in use.
    pub fn remotes(&self) -> impl Iterator<Item = Remote> + '_ {
        self.txns.values().map(|t| t.remote)
    }

    /// Finds a live transaction by key.
    pub fn find(&self, key: &TxnKey) -> Option<TxnId> {
        self.by_key.get(key).copied()
    }

    /// When [`TransactionLayer::handle_timeout`] must next be called, `None` when no timer runs.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse((at, ..))| *at)
    }

    /// The next datagram to send or event for the TU.
    pub fn poll_output(&mut self) -> Option<Output> {
        let o = self.out.pop_front();
        if o.is_none() {
            // drained: a queue grown by a burst gives its memory back (crate::sparse)
            self.out.shrink_if_sparse();
        }
        o
    }

    /// Feeds one input. Returns the transaction it created or touched, if any: the new client
    /// transaction for [`Input::SendRequest`], the server transaction a received request created or
    /// matched, the client transaction a received response matched.
    pub fn handle_input(&mut self, now: Instant, input: Input) -> Result<Option<TxnId>, TxnError> {
        let r = match input {
            Input::Received { msg, remote } => self.receive(now, msg, remote),
            Input::SendRequest { msg, remote } => self.send_request(now, msg, remote).map(Some),
            Input::SendResponse { txn, msg } => {
                self.send_response(now, txn, msg).map(|()| Some(txn))
            }
            Input::SendStateless { remote, bytes } => {
                self.out.push_back(Output::Transmit(Transmit {
                    txn: None,
                    remote,
                    bytes,
                }));
                Ok(None)
            }
            Input::TransportError { txn } => self.transport_error(now, txn).map(|()| Some(txn)),
        };
        // zero-length timers (D, I, J, K on reliable transports) fire now
        self.handle_timeout(now);
        r
    }

    fn with_txn<R>(
        &mut self,
        now: Instant,
        id: TxnId,
        f: impl FnOnce(&mut Transaction, &mut Ctx<'_>) -> R,
    ) -> Option<R> {
        let t = self.txns.get_mut(&id)?;
        let mut cx = Ctx {
            now,
            cfg: &self.cfg.timers,
            out: &mut self.out,
            armed: &mut self.armed,
        };
        let r = f(t, &mut cx);
        let done = t.state == State::Terminated;
        for (at, id, timer) in self.armed.drain(..) {
            self.seq += 1;
            self.heap.push(Reverse((at, self.seq, id, timer)));
        }
        if done {
            self.remove(id);
        }
        Some(r)
    }

    fn remove(&mut self, id: TxnId) {
        if let Some(t) = self.txns.remove(&id) {
            self.by_key.remove(&t.key);
            if let Some(k) = t.merge_key {
                if self.merge.get(&*k) == Some(&id) {
                    self.merge.remove(&*k);
                }
            }
            self.out.push_back(Output::Event(Event::Terminated {
                txn: id,
                key: t.key,
            }));
        }
        self.prune();
        self.shrink_if_sparse();
    }

    /// Gives back the tables' memory once a burst of transactions is over ([`crate::sparse`]):
    /// checked as transactions end, so the tables follow the load down.
    fn shrink_if_sparse(&mut self) {
        self.txns.shrink_if_sparse();
        self.by_key.shrink_if_sparse();
        self.merge.shrink_if_sparse();
        self.heap.shrink_if_sparse();
        self.out.shrink_if_sparse();
    }

    /// Drops heap entries of timers that were cancelled or re-armed, so the top is a live timer.
    fn prune(&mut self) {
        while let Some(Reverse((at, _, id, timer))) = self.heap.peek() {
            let live = self
                .txns
                .get(id)
                .is_some_and(|t| t.timers.get(*timer) == Some(*at));
            if live {
                break;
            }
            self.heap.pop();
        }
        // Entries of timers stopped early (B or F once the final response is in) otherwise stay
        // until their own instant, up to 64·T1 = 32 s, longer than a Timer K wait: once they
        // outnumber the live ones by far, one sweep drops them (amortised O(1) per entry; the order
        // of the live ones is unchanged).
        if self.heap.len() > 4 * self.txns.len() + 1024 {
            let txns = &self.txns;
            self.heap.retain(|Reverse((at, _, id, timer))| {
                txns.get(id)
                    .is_some_and(|t| t.timers.get(*timer) == Some(*at))
            });
        }
    }

    fn insert(&mut self, key: TxnKey, kind: Kind, remote: Remote, msg: OwnedMessage) -> TxnId {
        self.next_id += 1;
        let id = TxnId(self.next_id);
        let reliable = remote.transport.is_reliable()
            || self
                .lossless
                .as_ref()
                .is_some_and(|peers| peers(remote.addr));
        let t = Transaction::new(
            id,
            key.clone(),
            kind,
            remote,
            reliable,
            msg,
            &self.cfg.timers,
        );
        self.by_key.insert(key, id);
        self.txns.insert(id, Box::new(t));
        id
    }

    /// Creates a client transaction and sends the request ([`Input::SendRequest`]).
    pub fn send_request(
        &mut self,
        now: Instant,
        msg: OwnedMessage,
        remote: Remote,
    ) -> Result<TxnId, TxnError> {
        let m = msg.as_message();
        let method = m.method().ok_or(TxnError::NotARequest)?;
        if method == Method::Ack {
            return Err(TxnError::AckTransaction);
        }
        let key = TxnKey::client(&m)?;
        if self.by_key.contains_key(&key) {
            return Err(TxnError::Duplicate);
        }
        let kind = if method == Method::Invite {
            Kind::InviteClient
        } else {
            Kind::NonInviteClient
        };
        self.remember_sent(&msg);
        let id = self.insert(key, kind, remote, msg);
        self.with_txn(now, id, |t, cx| t.start_client(cx));
        self.prune();
        Ok(id)
    }

    /// Sends a response on a server transaction ([`Input::SendResponse`]).
    pub fn send_response(
        &mut self,
        now: Instant,
        txn: TxnId,
        msg: OwnedMessage,
    ) -> Result<(), TxnError> {
        // a response copies its request's Via and CSeq lines (RFC 3261 §8.2.6.2, §16.7): it
        // keeps the request's parses of them, so its receiver (in this process, often) matches
        // it to its client transaction without parsing them again
        if let Some(req) = self.txns.get(&txn).and_then(|t| t.request.as_ref()) {
            msg.keep_values_of(req);
        }
        self.remember_sent(&msg);
        let r = self
            .with_txn(now, txn, |t, cx| t.send_response(cx, msg))
            .ok_or(TxnError::NoSuchTransaction)?;
        self.prune();
        r
    }

    /// Reports a transport error ([`Input::TransportError`]).
    pub fn transport_error(&mut self, now: Instant, txn: TxnId) -> Result<(), TxnError> {
        self.with_txn(now, txn, |t, cx| t.on_transport_error(cx))
            .ok_or(TxnError::NoSuchTransaction)?;
        self.prune();
        Ok(())
    }

    /// Matches a received message to a transaction or creates a server transaction
    /// ([`Input::Received`]).
    pub fn receive(
        &mut self,
        now: Instant,
        msg: OwnedMessage,
        remote: Remote,
    ) -> Result<Option<TxnId>, TxnError> {
        let m = msg.as_message();
        if !m.is_request() {
            let key = TxnKey::client(&m)?;
            return Ok(match self.by_key.get(&key).copied() {
                Some(id) => {
                    self.with_txn(now, id, |t, cx| t.on_response(cx, msg));
                    self.prune();
                    Some(id)
                }
                None => {
                    self.out
                        .push_back(Output::Event(Event::StrayResponse { msg, remote }));
                    None
                }
            });
        }
        let method = m.method().ok_or(TxnError::NotARequest)?;
        let key = TxnKey::server(&m)?;
        if method == Method::Ack {
            let id = self.by_key.get(&key).copied().filter(|id| {
                // RFC 2543 peers: the ACK's To tag must be the one of our final response
                let t = &self.txns[id];
                !key.sent_by().is_empty() || m.to_tag() == t.response_to_tag.as_deref()
            });
            let to_tu = match id {
                Some(id) => self.with_txn(now, id, |t, cx| t.on_ack(cx)).unwrap_or(true),
                None => true,
            };
            if to_tu {
                self.out.push_back(Output::Event(Event::Ack {
                    invite: id,
                    msg,
                    remote,
                }));
            }
            self.prune();
            return Ok(id);
        }
        if let Some(id) = self.by_key.get(&key).copied() {
            self.with_txn(now, id, |t, cx| t.on_request_retransmission(cx));
            self.prune();
            return Ok(Some(id));
        }
        if method == Method::Cancel {
            let inv_key = TxnKey::server_with_method(&m, Method::Invite)?;
            let invite = self.by_key.get(&inv_key).copied();
            let id = self.insert(key, Kind::NonInviteServer, remote, msg.clone());
            self.with_txn(now, id, |t, cx| t.start_server(cx));
            self.out.push_back(Output::Event(Event::Cancel {
                txn: id,
                invite,
                msg,
                remote,
            }));
            self.prune();
            return Ok(Some(id));
        }
        let kind = if method == Method::Invite {
            Kind::InviteServer
        } else {
            Kind::NonInviteServer
        };
        let mk = if self.cfg.merged_request_detection {
            merge_key(&m)
        } else {
            None
        };
        let merged = mk.as_ref().is_some_and(|k| {
            self.merge
                .get(k)
                .is_some_and(|id| self.txns.contains_key(id))
        });
        let id = self.insert(key, kind, remote, msg.clone());
        self.with_txn(now, id, |t, cx| t.start_server(cx));
        if merged {
            // RFC 3261 §8.2.2.2: a merged request is answered 482 without reaching the TU
            let resp = ResponseBuilder::from_request(&msg.as_message(), 482).build()?;
            self.send_response(now, id, resp)?;
        } else {
            if let Some(k) = mk {
                self.merge.insert(k.clone(), id);
                if let Some(t) = self.txns.get_mut(&id) {
                    t.merge_key = Some(Box::new(k));
                }
            }
            self.out.push_back(Output::Event(Event::Request {
                txn: id,
                msg,
                remote,
            }));
        }
        self.prune();
        Ok(Some(id))
    }

    /// Fires every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(Reverse((at, _, id, timer))) = self.heap.peek().copied() {
            if at > now {
                break;
            }
            self.heap.pop();
            let live = self
                .txns
                .get(&id)
                .is_some_and(|t| t.timers.get(timer) == Some(at));
            if !live {
                continue;
            }
            if let Some(t) = self.txns.get_mut(&id) {
                t.timers.clear(timer);
            }
            // timers fire at their own instant, so retransmission intervals stay exact even when
            // the caller wakes up late
            self.with_txn(at, id, |t, cx| t.on_timer(cx, timer));
        }
        self.prune();
        self.shrink_if_sparse();
    }

    /// True when the key belongs to a client transaction.
    pub fn is_client(&self, txn: TxnId) -> bool {
        self.txns
            .get(&txn)
            .is_some_and(|t| t.key.side() == Side::Client)
    }
}
