//! One MSRP session, sans-IO (RFC 4975 §5, §7): chunking and interruption on the sending side,
//! transaction responses with a timeout, reassembly and reports on the receiving side.
//!
//! Feed what the [`crate::Framer`] produces to [`Session::handle_event`] (or whole frames to
//! [`Session::handle_frame`]), drain [`Session::poll_transmit`] into the connection and
//! [`Session::poll_event`] into the application, and call [`Session::handle_timeout`] when
//! [`Session::poll_timeout`] is due. The clock is the caller's.
//!
//! Interruption (RFC 4975 §5.1, §7.1): by default a message under way yields to a new one at
//! chunk boundaries. With [`Config::piece_size`] a chunk is handed out piece by piece under
//! `Byte-Range: n-*/total` and can be ended after any byte already written: with `+` when a new
//! message, a response or a REPORT is waiting or [`Session::interrupt`] is called (the message
//! resumes with a chunk starting at the next byte), with `#` on [`Session::abort`]. While
//! [`Session::mid_chunk`] is true nothing else may be written to the connection.
//!
//! ```
//! use ims_msrp::session::{Config, Session, SessionEvent, Outgoing};
//! use ims_msrp::{Framer, UriBuf};
//! use std::time::Instant;
//!
//! let a_uri = UriBuf::parse("msrp://alice.example.com:7777/iau39soe2843z;tcp")?;
//! let b_uri = UriBuf::parse("msrp://bob.example.com:8888/9di4eae923wzd;tcp")?;
//! let mut alice = Session::new(Config::new(a_uri.clone(), vec![b_uri.clone()]), 1);
//! let mut bob = Session::new(Config::new(b_uri, vec![a_uri]), 2);
//! let now = Instant::now();
//! alice.send(Outgoing::new("text/plain", "Hello"));
//! let mut framer = Framer::default();
//! while let Some(t) = alice.poll_transmit(now) {
//!     framer.push(&t.to_vec());
//! }
//! while let Some(ev) = framer.poll()? {
//!     bob.handle_event(now, ev);
//! }
//! match bob.poll_event() {
//!     Some(SessionEvent::Message { body, .. }) => assert_eq!(&body[..], b"Hello"),
//!     other => panic!("{other:?}"),
//! }
//! # Ok::<(), ims_msrp::Error>(())
//! ```

use crate::encode::{body_contains_end_line, end_line, FrameBuilder};
use crate::error::Error;
use crate::framer::Event;
use crate::headers::{name, ByteRange, FailureReport};
use crate::message::{Flag, Frame, Head, Method};
use crate::uri::{path_to_string, UriBuf};
use bytes::{Bytes, BytesMut};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::{Duration, Instant};

/// Session settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// Our URI (the From-Path of what we send; requests must be addressed to it).
    pub local_uri: UriBuf,
    /// The To-Path of what we send: relays (RFC 4976) then the peer's URI.
    pub remote_path: Vec<UriBuf>,
    /// Largest chunk body we send (RFC 4975 §7.1 suggests 2048 octets toward relays).
    pub chunk_size: usize,
    /// How long to wait for the response to a SEND with `Failure-Report: yes`
    /// (RFC 4975 §7.1.1: 30 s).
    pub transaction_timeout: Duration,
    /// Largest message we accept (SDP `a=max-size`); larger ones get 413.
    pub max_message_size: u64,
    /// Media types we accept (`*`, `type/*` or `type/subtype`); others get 415.
    pub accept_types: Vec<String>,
    /// Messages up to this size are delivered whole in [`SessionEvent::Message`]; larger ones
    /// as in-order [`SessionEvent::MessageData`] parts.
    pub whole_message_max: usize,
    /// Answer 403 to a request whose From-Path does not end in the peer's URI.
    pub verify_from_path: bool,
    /// Interruptible chunks (RFC 4975 §5.1, §7.1): when set, a chunk whose body is larger than
    /// this is written piece by piece (at most this many body bytes per [`Transmit`]) under a
    /// Byte-Range whose range-end is `*`, so that it can be ended early with `+` at any byte
    /// already written — to let a new message, a response or a REPORT (or, on a shared
    /// connection, another session) through — and resumed later with the Byte-Range of the next
    /// byte; or ended with `#` by [`Session::abort`]. The body is scanned as it goes out and the
    /// chunk is ended before any `-------tid` of its own end-line (RFC 4975 §7.1). `None`
    /// (default): every chunk is one [`Transmit`] with its exact range, interrupted only at
    /// chunk boundaries.
    pub piece_size: Option<usize>,
}

impl Config {
    /// Defaults (2048-byte chunks, 30 s timeout, 16 MiB max-size, all types) for these URIs.
    pub fn new(local_uri: UriBuf, remote_path: Vec<UriBuf>) -> Config {
        Config {
            local_uri,
            remote_path,
            chunk_size: 2048,
            transaction_timeout: Duration::from_secs(30),
            max_message_size: 16 * 1024 * 1024,
            accept_types: vec!["*".into()],
            whole_message_max: 1024 * 1024,
            verify_from_path: true,
            piece_size: None,
        }
    }
}

/// A message to send.
#[derive(Debug, Clone)]
pub struct Outgoing {
    /// Its Content-Type.
    pub content_type: String,
    /// The body known so far (the whole body unless more is pushed with [`Session::push_body`]).
    pub body: Bytes,
    /// More body follows ([`Session::push_body`], then [`Session::finish`]).
    pub streaming: bool,
    /// The total size when known in advance (a streamed body otherwise gets `*` until its end).
    pub total: Option<u64>,
    /// `Success-Report: yes`.
    pub success_report: bool,
    /// The Failure-Report value.
    pub failure_report: FailureReport,
    /// Extra headers (e.g. Content-Disposition) sent with every chunk.
    pub headers: Vec<(String, String)>,
}

impl Outgoing {
    /// A whole message with default reports (`Failure-Report: yes`, no success report).
    pub fn new(content_type: &str, body: impl Into<Bytes>) -> Outgoing {
        let body = body.into();
        Outgoing {
            content_type: content_type.into(),
            total: Some(body.len() as u64),
            body,
            streaming: false,
            success_report: false,
            failure_report: FailureReport::Yes,
            headers: Vec::new(),
        }
    }
    /// A message whose body is pushed later; `total` if known.
    pub fn stream(content_type: &str, total: Option<u64>) -> Outgoing {
        Outgoing {
            content_type: content_type.into(),
            body: Bytes::new(),
            streaming: true,
            total,
            success_report: false,
            failure_report: FailureReport::Yes,
            headers: Vec::new(),
        }
    }
}

/// Bytes to write to the connection: one frame as head, body and tail, never copied together.
///
/// With [`Config::piece_size`] a chunk comes as several `Transmit`s in a row: the first has the
/// head and the first body piece, the next ones body only, the last the end-line only
/// ([`Session::mid_chunk`] is true in between). They must be written in order with nothing of
/// another frame between them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// Start line and headers (and the empty line when there is a body).
    pub head: Bytes,
    /// The body.
    pub body: Bytes,
    /// `[CRLF] end-line`.
    pub tail: Bytes,
}

impl Transmit {
    /// The three parts in order.
    pub fn parts(&self) -> [&Bytes; 3] {
        [&self.head, &self.body, &self.tail]
    }
    /// The frame in one buffer.
    pub fn to_vec(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(self.len());
        for p in self.parts() {
            v.extend_from_slice(p);
        }
        v
    }
    /// Its length.
    pub fn len(&self) -> usize {
        self.head.len() + self.body.len() + self.tail.len()
    }
    /// Never empty; for clippy's `len_without_is_empty`.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// What the session tells the application.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SessionEvent {
    /// A whole message (at most `whole_message_max` bytes).
    Message {
        /// Its Message-ID.
        message_id: String,
        /// Its Content-Type.
        content_type: String,
        /// The reassembled body.
        body: Bytes,
    },
    /// The next in-order part of a large message (`offset` counts from 0).
    MessageData {
        /// Its Message-ID.
        message_id: String,
        /// Offset of `data` in the message.
        offset: u64,
        /// The bytes.
        data: Bytes,
    },
    /// A large message delivered with [`SessionEvent::MessageData`] is complete.
    MessageComplete {
        /// Its Message-ID.
        message_id: String,
        /// Its Content-Type.
        content_type: String,
        /// Its size.
        size: u64,
    },
    /// The sender aborted a message (`#`) after `received` in-order bytes.
    MessageAborted {
        /// Its Message-ID.
        message_id: String,
        /// Bytes received in order.
        received: u64,
    },
    /// A REPORT for a message we sent.
    Report {
        /// The Message-ID it reports on.
        message_id: String,
        /// The status code of its Status header.
        status: u16,
        /// Its Byte-Range.
        byte_range: Option<ByteRange>,
    },
    /// A chunk we sent failed: an error response, or no response in time (408).
    SendFailed {
        /// The message.
        message_id: String,
        /// The status (408 for a timeout).
        status: u16,
    },
    /// We answered a request with an error status.
    Rejected {
        /// The transaction id.
        transaction_id: String,
        /// The status sent (or that would have been sent, when no response is allowed).
        status: u16,
        /// The syntax fault, when that was the reason.
        error: Option<Error>,
    },
    /// A response that matches no transaction of ours, or a response with a body: dropped.
    StrayResponse {
        /// Its transaction id.
        transaction_id: String,
    },
}

#[derive(Debug)]
struct OutMsg {
    id: String,
    content_type: String,
    total: Option<u64>,
    queue: VecDeque<Bytes>,
    queued: usize,
    offset: u64,
    finished: bool,
    aborted: bool,
    success_report: bool,
    failure_report: FailureReport,
    headers: Vec<(String, String)>,
}

#[derive(Debug)]
struct InMsg {
    content_type: String,
    from_path: String,
    total: Option<u64>,
    final_end: Option<u64>,
    /// Next in-order byte, from 1.
    next: u64,
    pending: BTreeMap<u64, Bytes>,
    pending_bytes: u64,
    collected: Vec<Bytes>,
    collected_len: u64,
    streaming: bool,
    success_report: bool,
    failure_report: FailureReport,
}

/// The chunk being received (from its head to its end-line).
#[derive(Debug)]
struct Rx {
    tid: String,
    /// The response to send at the end-line, with its From-Path destination; `None` = no response.
    answer: Option<(u16, String)>,
    /// The message the data goes to, when accepted.
    msg: Option<String>,
    /// Absolute position (from 1) of the next data byte.
    pos: u64,
    range: Option<ByteRange>,
}

/// A chunk whose head is written and whose end-line is not (interruptible mode).
#[derive(Debug)]
struct Open {
    msg: OutMsg,
    tid: String,
    /// `-------` tid: must not appear in the body (RFC 4975 §7.1).
    pat: Vec<u8>,
    /// Body bytes of this chunk written so far.
    sent: usize,
    /// The last `pat.len() - 1` body bytes written (matches across pieces).
    tail: Vec<u8>,
    /// The pattern lies ahead in the body: end the chunk before it.
    cut: bool,
}

/// One MSRP session.
#[derive(Debug)]
pub struct Session {
    cfg: Config,
    seed: u64,
    seq: u64,
    control: VecDeque<Transmit>,
    sending: VecDeque<OutMsg>,
    pending: HashMap<String, (String, Instant)>,
    incoming: HashMap<String, InMsg>,
    rx: Option<Rx>,
    events: VecDeque<SessionEvent>,
    open: Option<Open>,
    interrupt: bool,
}

fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A base-36 ident from a number.
fn b36(mut n: u64, out: &mut String) {
    const D: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut tmp = [0u8; 13];
    let mut i = tmp.len();
    loop {
        i -= 1;
        tmp[i] = D[(n % 36) as usize];
        n /= 36;
        if n == 0 {
            break;
        }
    }
    out.push_str(std::str::from_utf8(&tmp[i..]).expect("base-36 digits are ASCII"));
}

fn type_accepted(accept: &[String], ct: &str) -> bool {
    let (mt, st) = ct.split_once('/').unwrap_or((ct, ""));
    let st = st.split(';').next().unwrap_or("").trim();
    accept.iter().any(|a| {
        a == "*"
            || match a.split_once('/') {
                Some((am, "*")) => am.eq_ignore_ascii_case(mt.trim()),
                Some((am, asub)) => {
                    am.eq_ignore_ascii_case(mt.trim()) && asub.eq_ignore_ascii_case(st)
                }
                None => false,
            }
    })
}

impl Session {
    /// A session. `seed` makes transaction and message ids unpredictable (give it randomness).
    pub fn new(cfg: Config, seed: u64) -> Session {
        Session {
            cfg,
            seed: splitmix(seed),
            seq: 0,
            control: VecDeque::new(),
            sending: VecDeque::new(),
            pending: HashMap::new(),
            incoming: HashMap::new(),
            rx: None,
            events: VecDeque::new(),
            open: None,
            interrupt: false,
        }
    }

    /// The settings.
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// A new unique ident (transaction id or Message-ID): random part, then a sequence number.
    fn new_id(&mut self) -> String {
        self.seq += 1;
        let mut s = String::with_capacity(24);
        b36(
            splitmix(self.seed ^ self.seq) % 36u64.pow(8) + 36u64.pow(7),
            &mut s,
        );
        b36(self.seq, &mut s);
        s
    }

    /// Queues a message; returns its Message-ID. A new message passes one already under way: at
    /// its next chunk boundary, or — with [`Config::piece_size`] — right after the bytes of the
    /// current chunk already written (the chunk ends there with `+`); the message under way
    /// resumes with the Byte-Range of its next byte.
    pub fn send(&mut self, m: Outgoing) -> String {
        let id = self.new_id();
        let mut queue = VecDeque::new();
        let queued = m.body.len();
        if !m.body.is_empty() {
            queue.push_back(m.body);
        }
        self.sending.push_back(OutMsg {
            id: id.clone(),
            content_type: m.content_type,
            total: m.total,
            queue,
            queued,
            offset: 0,
            finished: !m.streaming,
            aborted: false,
            success_report: m.success_report,
            failure_report: m.failure_report,
            headers: m.headers,
        });
        // a new message goes in front of any message already under way: it interrupts it at the
        // next chunk boundary
        let at = self
            .sending
            .iter()
            .position(|m| m.offset > 0)
            .unwrap_or(self.sending.len() - 1);
        if at < self.sending.len() - 1 {
            let m = self.sending.pop_back().expect("just pushed");
            self.sending.insert(at, m);
        }
        id
    }

    /// Appends body bytes to a streamed message. False when the message is unknown or finished.
    pub fn push_body(&mut self, message_id: &str, data: Bytes) -> bool {
        match self.out_msg(message_id) {
            Some(m) if !m.finished => {
                m.queued += data.len();
                if !data.is_empty() {
                    m.queue.push_back(data);
                }
                true
            }
            _ => false,
        }
    }

    /// Marks the end of a streamed message's body.
    pub fn finish(&mut self, message_id: &str) {
        if let Some(m) = self.out_msg(message_id) {
            m.finished = true;
        }
    }

    /// Aborts a message: its next chunk ends with `#` and nothing more is sent. When its chunk
    /// is being written piece by piece ([`Config::piece_size`]), that chunk ends with `#` right
    /// after the bytes already written.
    pub fn abort(&mut self, message_id: &str) {
        if let Some(m) = self.out_msg(message_id) {
            m.aborted = true;
        }
    }

    fn out_msg(&mut self, message_id: &str) -> Option<&mut OutMsg> {
        match &mut self.open {
            Some(o) if o.msg.id == message_id => Some(&mut o.msg),
            _ => self.sending.iter_mut().find(|m| m.id == message_id),
        }
    }

    /// Ends the chunk being written piece by piece ([`Config::piece_size`]) at the next
    /// [`Session::poll_transmit`]: its end-line goes out with `+` right after the body bytes
    /// already written, and the message resumes later with a new chunk whose Byte-Range starts
    /// at the next byte (RFC 4975 §5.1). A no-op when no chunk is open. The session does this
    /// itself when a new message, a response or a REPORT is waiting; a connection shared by
    /// several sessions calls it to let another session through.
    pub fn interrupt(&mut self) {
        if self.open.is_some() {
            self.interrupt = true;
        }
    }

    /// True while a chunk's head has been handed out by [`Session::poll_transmit`] and its
    /// end-line has not: nothing else may be written to the connection until it has.
    pub fn mid_chunk(&self) -> bool {
        self.open.is_some()
    }

    /// True when [`Session::poll_transmit`] has something to hand out now.
    pub fn has_transmit(&self) -> bool {
        if let Some(o) = &self.open {
            return o.msg.aborted
                || o.msg.queued > 0
                || o.msg.finished
                || o.cut
                || self.interrupt
                || !self.control.is_empty()
                || self
                    .sending
                    .iter()
                    .any(|m| m.offset == 0 && self.is_ready(m));
        }
        !self.control.is_empty() || self.sending.iter().any(|m| self.is_ready(m))
    }

    fn is_ready(&self, m: &OutMsg) -> bool {
        let min = self.cfg.piece_size.map_or(self.cfg.chunk_size, |p| {
            p.clamp(1, self.cfg.chunk_size.max(1))
        });
        // a finished message still here has not sent its `$` yet: even with nothing left
        // queued (its body ended exactly with its last chunk), an empty last chunk goes out
        m.aborted || m.queued >= min || m.finished
    }

    /// Body bytes queued and not yet chunked, over all messages (for back-pressure).
    pub fn queued_bytes(&self) -> usize {
        self.sending.iter().map(|m| m.queued).sum::<usize>()
            + self.open.as_ref().map_or(0, |o| o.msg.queued)
    }

    /// Transactions waiting for a response.
    pub fn outstanding(&self) -> usize {
        self.pending.len()
    }

    /// The next frame to write: responses and REPORTs first, then one chunk of the next message
    /// in turn.
    pub fn poll_transmit(&mut self, now: Instant) -> Option<Transmit> {
        if self.open.is_some() {
            return self.poll_open(now);
        }
        self.interrupt = false;
        if let Some(t) = self.control.pop_front() {
            return Some(t);
        }
        let n = self.sending.len();
        for _ in 0..n {
            let mut m = self.sending.pop_front()?;
            if !self.is_ready(&m) {
                self.sending.push_back(m);
                continue;
            }
            if let Some(piece) = self.cfg.piece_size {
                let piece = piece.clamp(1, self.cfg.chunk_size.max(1));
                let whole = m.aborted || (m.finished && m.queued <= piece);
                if !whole {
                    return Some(self.open_chunk(now, m, piece));
                }
            }
            let t = self.chunk(now, &mut m);
            let done = m.aborted || (m.finished && m.queued == 0);
            if !done {
                self.sending.push_back(m);
            }
            return Some(t);
        }
        None
    }

    /// The head of an interruptible chunk (range-end `*`) with its first body piece.
    fn open_chunk(&mut self, now: Instant, mut m: OutMsg, piece: usize) -> Transmit {
        let n = m.queued.min(piece).min(self.cfg.chunk_size.max(1));
        let body = take(&mut m.queue, n);
        m.queued -= n;
        let start = m.offset + 1;
        m.offset += n as u64;
        let mut tid = self.new_id();
        while memchr::memmem::find(&body, &end_pattern(&tid)).is_some() {
            tid = self.new_id();
        }
        let br = ByteRange {
            start,
            end: None,
            total: m.total,
        };
        let b = self
            .request_head(&tid, &m, &br)
            .body(&m.content_type, Bytes::new());
        if m.failure_report == FailureReport::Yes {
            self.pending.insert(
                tid.clone(),
                (m.id.clone(), now + self.cfg.transaction_timeout),
            );
        }
        let pat = end_pattern(&tid);
        let mut o = Open {
            msg: m,
            tid,
            pat,
            sent: n,
            tail: Vec::new(),
            cut: false,
        };
        o.keep_tail(&body);
        self.open = Some(o);
        Transmit {
            head: b.head_bytes(),
            body,
            tail: Bytes::new(),
        }
    }

    /// The next piece or the end-line of the open chunk; `None` while it waits for body bytes
    /// and nothing asks for the wire.
    fn poll_open(&mut self, now: Instant) -> Option<Transmit> {
        let mut o = self.open.take().expect("called with an open chunk");
        let new_waiting = self
            .sending
            .iter()
            .any(|m| m.offset == 0 && self.is_ready(m));
        let chunk_size = self.cfg.chunk_size.max(1);
        loop {
            let m = &o.msg;
            let flag = if m.aborted {
                Flag::Abort
            } else if m.finished && m.queued == 0 {
                Flag::End
            } else if self.interrupt
                || new_waiting
                || !self.control.is_empty()
                || o.cut
                || o.sent >= chunk_size
            {
                Flag::Continue
            } else if m.queued > 0 {
                let piece = self.cfg.piece_size.unwrap_or(chunk_size).max(1);
                let n = m.queued.min(piece).min(chunk_size - o.sent);
                let m = &mut o.msg;
                let mut body = take(&mut m.queue, n);
                if let Some(at) = find_cut(&o.tail, &body, &o.pat) {
                    let rest = body.split_off(at);
                    m.queue.push_front(rest);
                    o.cut = true;
                }
                let k = body.len();
                m.queued -= k;
                m.offset += k as u64;
                o.sent += k;
                if k == 0 {
                    continue;
                }
                o.keep_tail(&body);
                self.open = Some(o);
                return Some(Transmit {
                    head: Bytes::new(),
                    body,
                    tail: Bytes::new(),
                });
            } else {
                // waiting for push_body
                self.open = Some(o);
                return None;
            };
            // the end-line: the transaction's timer runs from here (RFC 4975 §7.1.1)
            self.interrupt = false;
            let Open { msg, tid, sent, .. } = o;
            if msg.failure_report == FailureReport::Yes {
                self.pending.insert(
                    tid.clone(),
                    (msg.id.clone(), now + self.cfg.transaction_timeout),
                );
            }
            if flag == Flag::Continue {
                if new_waiting || sent >= chunk_size {
                    self.sending.push_back(msg);
                } else {
                    self.sending.push_front(msg);
                }
            }
            return Some(Transmit {
                head: Bytes::new(),
                body: Bytes::new(),
                tail: end_line(&tid, flag, true),
            });
        }
    }

    /// To-Path, From-Path, Message-ID, reports, Byte-Range and extra headers of a SEND.
    fn request_head(&self, tid: &str, m: &OutMsg, br: &ByteRange) -> FrameBuilder {
        let mut b = FrameBuilder::request(tid, "SEND")
            .to_path(&path_to_string(&self.cfg.remote_path))
            .from_path(self.cfg.local_uri.as_str())
            .header(name::MESSAGE_ID, &m.id);
        if m.success_report {
            b = b.header(name::SUCCESS_REPORT, "yes");
        }
        if m.failure_report != FailureReport::Yes {
            b = b.header(name::FAILURE_REPORT, m.failure_report.as_str());
        }
        b = b.header(name::BYTE_RANGE, &br.to_string());
        for (k, v) in &m.headers {
            b = b.header(k, v);
        }
        b
    }

    fn chunk(&mut self, now: Instant, m: &mut OutMsg) -> Transmit {
        let n = if m.aborted {
            0
        } else {
            m.queued.min(self.cfg.chunk_size)
        };
        let body = take(&mut m.queue, n);
        m.queued -= n;
        let start = m.offset + 1;
        m.offset += n as u64;
        let last = m.finished && m.queued == 0;
        let flag = if m.aborted {
            Flag::Abort
        } else if last {
            Flag::End
        } else {
            Flag::Continue
        };
        let total = if last && !m.aborted {
            Some(m.total.unwrap_or(m.offset))
        } else {
            m.total
        };
        let br = ByteRange {
            start,
            end: Some(m.offset),
            total,
        };
        let mut tid = self.new_id();
        while body_contains_end_line(&body, &tid) {
            tid = self.new_id();
        }
        // a body part always, so that an empty message still carries its Content-Type
        let b = self
            .request_head(&tid, m, &br)
            .body(&m.content_type, Bytes::new())
            .flag(flag);
        if m.failure_report == FailureReport::Yes {
            self.pending.insert(
                tid.clone(),
                (m.id.clone(), now + self.cfg.transaction_timeout),
            );
        }
        Transmit {
            head: b.head_bytes(),
            body,
            tail: end_line(&tid, flag, true),
        }
    }

    /// The earliest transaction deadline.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let open = self.open.as_ref().map(|o| o.tid.as_str());
        self.pending
            .iter()
            .filter(|(t, _)| Some(t.as_str()) != open)
            .map(|(_, (_, d))| *d)
            .min()
    }

    /// Fails every transaction whose deadline has passed (RFC 4975 §7.1.1: as if a 408 came).
    pub fn handle_timeout(&mut self, now: Instant) {
        // the chunk being written has no timer until its end-line is out
        let open = self.open.as_ref().map(|o| o.tid.as_str());
        let expired: Vec<String> = self
            .pending
            .iter()
            .filter(|(t, (_, d))| *d <= now && Some(t.as_str()) != open)
            .map(|(t, _)| t.clone())
            .collect();
        for t in expired {
            if let Some((id, _)) = self.pending.remove(&t) {
                self.events.push_back(SessionEvent::SendFailed {
                    message_id: id,
                    status: 408,
                });
            }
        }
    }

    /// The next event for the application.
    pub fn poll_event(&mut self) -> Option<SessionEvent> {
        self.events.pop_front()
    }

    /// Handles one whole frame.
    pub fn handle_frame(&mut self, now: Instant, f: Frame) {
        let Frame { head, body, flag } = f;
        self.on_head(now, head);
        if !body.is_empty() {
            self.on_data(body);
        }
        self.on_end(flag);
    }

    /// Handles one framer event.
    pub fn handle_event(&mut self, now: Instant, ev: Event) {
        match ev {
            Event::Frame(f) => self.handle_frame(now, f),
            Event::Start(h) => self.on_head(now, h),
            Event::Data(d) => self.on_data(d),
            Event::End(fl) => self.on_end(fl),
        }
    }

    fn respond(&mut self, tid: &str, to: &str, code: u16) {
        let b = FrameBuilder::response(tid, code, None)
            .to_path(to)
            .from_path(self.cfg.local_uri.as_str());
        self.control.push_back(Transmit {
            head: b.head_bytes(),
            body: Bytes::new(),
            tail: b.tail_bytes(),
        });
    }

    fn report(&mut self, to_path: &str, message_id: &str, code: u16, br: ByteRange) {
        let tid = self.new_id();
        let b = FrameBuilder::request(&tid, "REPORT")
            .to_path(to_path)
            .from_path(self.cfg.local_uri.as_str())
            .header(name::MESSAGE_ID, message_id)
            .header(name::BYTE_RANGE, &br.to_string())
            .header(
                name::STATUS,
                &format!("000 {code:03} {}", crate::message::status_comment(code)),
            );
        self.control.push_back(Transmit {
            head: b.head_bytes(),
            body: Bytes::new(),
            tail: b.tail_bytes(),
        });
    }

    fn on_head(&mut self, now: Instant, h: Head) {
        let _ = now;
        self.rx = None;
        let tid = h.transaction_id().to_owned();
        if !h.is_request() {
            self.on_response(&h);
            return;
        }
        // the previous hop, to answer
        let prev = h.from_path().ok().map(|p| p[0].as_str().to_owned());
        let reject = |s: &mut Session, code: u16, error: Option<Error>, answer: bool| {
            s.events.push_back(SessionEvent::Rejected {
                transaction_id: tid.clone(),
                status: code,
                error,
            });
            let answer = if answer { prev.clone() } else { None };
            s.rx = Some(Rx {
                tid: tid.clone(),
                answer: answer.map(|p| (code, p)),
                msg: None,
                pos: 0,
                range: None,
            });
        };
        let method = h.method().unwrap_or(Method::Unknown(""));
        let is_report = method == Method::Report;
        // Failure-Report governs responses (RFC 4975 §7.1.2); REPORTs are never answered.
        let fr = h.failure_report().unwrap_or_default();
        let may_fail = !is_report && fr != FailureReport::No;
        if let Err(e) = h.check() {
            reject(self, e.status(), Some(e), may_fail);
            return;
        }
        if !matches!(method, Method::Send | Method::Report) {
            reject(self, 501, None, may_fail);
            return;
        }
        let to_ok = h
            .to_path()
            .ok()
            .and_then(|p| p.last().map(|u| u.equivalent(&self.cfg.local_uri.uri())))
            .unwrap_or(false);
        if !to_ok {
            reject(self, 481, None, may_fail);
            return;
        }
        // a failure REPORT may come from a relay on the way (RFC 4976 §6.4): From-Path is the relay
        if self.cfg.verify_from_path && !is_report {
            let from_ok = match (h.from_path().ok(), self.cfg.remote_path.last()) {
                (Some(p), Some(r)) => p.last().is_some_and(|u| u.equivalent(&r.uri())),
                _ => true,
            };
            if !from_ok {
                reject(self, 403, None, may_fail);
                return;
            }
        }
        let Some(mid) = h.message_id().map(str::to_owned) else {
            reject(self, 400, None, may_fail);
            return;
        };
        let br = h.byte_range().ok().flatten();
        if is_report {
            if let Ok(Some(s)) = h.status_header() {
                self.events.push_back(SessionEvent::Report {
                    message_id: mid,
                    status: s.code,
                    byte_range: br,
                });
            }
            self.rx = Some(Rx {
                tid,
                answer: None,
                msg: None,
                pos: 0,
                range: None,
            });
            return;
        }
        let br = br.unwrap_or(ByteRange {
            start: 1,
            end: None,
            total: None,
        });
        let ct = h.content_type().ok().flatten().map(|c| c.to_string());
        if let Some(ct) = &ct {
            if !type_accepted(&self.cfg.accept_types, ct) {
                reject(self, 415, None, may_fail);
                return;
            }
        }
        let max = self.cfg.max_message_size;
        if br.total.is_some_and(|t| t > max) || br.end.is_some_and(|e| e > max) {
            reject(self, 413, None, may_fail);
            if let Some(m) = self.incoming.remove(&mid) {
                if m.failure_report != FailureReport::No && m.next > 1 {
                    // chunks were accepted before: the message now fails as a whole
                    self.report(
                        &m.from_path,
                        &mid,
                        413,
                        ByteRange {
                            start: 1,
                            end: Some(m.next - 1),
                            total: m.total,
                        },
                    );
                }
            }
            return;
        }
        let from_path = h
            .from_path()
            .map(|p| p.iter().map(|u| u.as_str()).collect::<Vec<_>>().join(" "))
            .unwrap_or_default();
        let sr = h.success_report().unwrap_or(false);
        let m = self.incoming.entry(mid.clone()).or_insert_with(|| InMsg {
            content_type: String::new(),
            from_path,
            total: None,
            final_end: None,
            next: 1,
            pending: BTreeMap::new(),
            pending_bytes: 0,
            collected: Vec::new(),
            collected_len: 0,
            streaming: false,
            success_report: sr,
            failure_report: fr,
        });
        if let Some(ct) = ct {
            if m.content_type.is_empty() {
                m.content_type = ct;
            }
        }
        if br.total.is_some() {
            m.total = br.total;
        }
        let answer = (fr == FailureReport::Yes).then(|| (200, prev.unwrap_or_default()));
        self.rx = Some(Rx {
            tid,
            answer,
            msg: Some(mid),
            pos: br.start,
            range: Some(br),
        });
    }

    fn on_response(&mut self, h: &Head) {
        let tid = h.transaction_id();
        let Some((id, _)) = self.pending.remove(tid) else {
            self.events.push_back(SessionEvent::StrayResponse {
                transaction_id: tid.to_owned(),
            });
            return;
        };
        let code = h.status().unwrap_or(0);
        if code != 200 {
            if code == 413 {
                // RFC 4975 §10.5: stop sending this message
                self.abort(&id);
            }
            self.events.push_back(SessionEvent::SendFailed {
                message_id: id,
                status: code,
            });
        }
    }

    fn on_data(&mut self, d: Bytes) {
        let Some(rx) = &mut self.rx else { return };
        let Some(mid) = rx.msg.clone() else { return };
        let pos = rx.pos;
        rx.pos += d.len() as u64;
        let end = rx.pos - 1;
        let too_big = end > self.cfg.max_message_size;
        if too_big {
            // the announced range was a lie: refuse the chunk
            rx.msg = None;
            if let Some((c, _)) = &mut rx.answer {
                *c = 413;
            }
            self.incoming.remove(&mid);
            return;
        }
        let whole_max = self.cfg.whole_message_max as u64;
        let Some(m) = self.incoming.get_mut(&mid) else {
            return;
        };
        insert(m, pos, d, whole_max, &mid, &mut self.events);
    }

    fn on_end(&mut self, flag: Flag) {
        let Some(rx) = self.rx.take() else { return };
        if let Some((code, to)) = &rx.answer {
            if !to.is_empty() {
                self.respond(&rx.tid, to, *code);
            }
        }
        let Some(mid) = rx.msg else { return };
        let Some(m) = self.incoming.get_mut(&mid) else {
            return;
        };
        let br = rx.range.expect("an accepted chunk has its range");
        match flag {
            Flag::Abort => {
                let m = self.incoming.remove(&mid).expect("present");
                let received = m.next - 1;
                self.events.push_back(SessionEvent::MessageAborted {
                    message_id: mid.clone(),
                    received,
                });
                if m.success_report && received > 0 {
                    // partial delivery: report what arrived
                    self.report(
                        &m.from_path,
                        &mid,
                        200,
                        ByteRange {
                            start: 1,
                            end: Some(received),
                            total: m.total,
                        },
                    );
                }
                return;
            }
            Flag::End => {
                m.final_end = Some(br.end.unwrap_or(rx.pos - 1).max(rx.pos - 1));
            }
            Flag::Continue => {}
        }
        let end = m.total.or(m.final_end);
        if end.is_some_and(|e| m.next > e) {
            let m = self.incoming.remove(&mid).expect("present");
            let size = m.next - 1;
            if m.streaming {
                self.events.push_back(SessionEvent::MessageComplete {
                    message_id: mid.clone(),
                    content_type: m.content_type.clone(),
                    size,
                });
            } else if size == 0 && m.content_type.is_empty() {
                // a bodiless SEND (connection bind, keep-alive, RFC 4975 §7.1): no message
            } else {
                let body = concat(m.collected, m.collected_len as usize);
                self.events.push_back(SessionEvent::Message {
                    message_id: mid.clone(),
                    content_type: m.content_type.clone(),
                    body,
                });
            }
            if m.success_report {
                self.report(
                    &m.from_path,
                    &mid,
                    200,
                    ByteRange {
                        start: 1,
                        end: Some(size),
                        total: Some(size),
                    },
                );
            }
        }
    }
}

/// `-------` tid: what a body must not contain (RFC 4975 §7.1; the flag is not required here, so
/// that a flag in the next piece cannot complete an end-line either).
fn end_pattern(tid: &str) -> Vec<u8> {
    let mut p = Vec::with_capacity(7 + tid.len());
    p.extend_from_slice(b"-------");
    p.extend_from_slice(tid.as_bytes());
    p
}

/// Where `body` must be cut so that `tail` (the bytes already written) + the kept part contain
/// no `pat`: the start of the first match, counted in `body` (0 when it began in `tail`).
fn find_cut(tail: &[u8], body: &[u8], pat: &[u8]) -> Option<usize> {
    let l = pat.len();
    let head = (l - 1).min(body.len());
    let mut w = Vec::with_capacity(tail.len() + head);
    w.extend_from_slice(tail);
    w.extend_from_slice(&body[..head]);
    if let Some(i) = memchr::memmem::find(&w, pat) {
        return Some(i.saturating_sub(tail.len()));
    }
    memchr::memmem::find(body, pat)
}

impl Open {
    /// Keeps the last `pat.len() - 1` body bytes written.
    fn keep_tail(&mut self, written: &[u8]) {
        let keep = self.pat.len() - 1;
        if written.len() >= keep {
            self.tail.clear();
            self.tail
                .extend_from_slice(&written[written.len() - keep..]);
        } else {
            self.tail.extend_from_slice(written);
            let extra = self.tail.len().saturating_sub(keep);
            self.tail.drain(..extra);
        }
    }
}

/// Takes `n` bytes from the front of the queue (without copying when one piece suffices).
fn take(q: &mut VecDeque<Bytes>, n: usize) -> Bytes {
    if n == 0 {
        return Bytes::new();
    }
    if let Some(f) = q.front_mut() {
        if f.len() >= n {
            let out = f.split_to(n);
            if f.is_empty() {
                q.pop_front();
            }
            return out;
        }
    }
    let mut b = BytesMut::with_capacity(n);
    while b.len() < n {
        let Some(f) = q.front_mut() else { break };
        let k = (n - b.len()).min(f.len());
        b.extend_from_slice(&f.split_to(k));
        if f.is_empty() {
            q.pop_front();
        }
    }
    b.freeze()
}

fn concat(parts: Vec<Bytes>, len: usize) -> Bytes {
    if parts.len() == 1 {
        return parts.into_iter().next().expect("one part");
    }
    let mut b = BytesMut::with_capacity(len);
    for p in parts {
        b.extend_from_slice(&p);
    }
    b.freeze()
}

/// Puts `d` at absolute position `pos` (from 1) of the message, delivering what became in-order.
fn insert(
    m: &mut InMsg,
    pos: u64,
    mut d: Bytes,
    whole_max: u64,
    mid: &str,
    events: &mut VecDeque<SessionEvent>,
) {
    let end = pos + d.len() as u64; // exclusive
    if end <= m.next {
        return; // all seen already
    }
    if pos > m.next {
        // out of order: keep the longest piece starting here
        match m.pending.get(&pos) {
            Some(p) if p.len() >= d.len() => {}
            old => {
                let old = old.map_or(0, |p| p.len() as u64);
                m.pending_bytes = m.pending_bytes - old + d.len() as u64;
                m.pending.insert(pos, d);
            }
        }
        return;
    }
    let skip = (m.next - pos) as usize;
    let _ = d.split_to(skip);
    deliver(m, d, whole_max, mid, events);
    // drain what is now contiguous
    while let Some((&p, _)) = m.pending.iter().next() {
        if p > m.next {
            break;
        }
        let mut piece = m.pending.remove(&p).expect("present");
        m.pending_bytes -= piece.len() as u64;
        let e = p + piece.len() as u64;
        if e <= m.next {
            continue;
        }
        let _ = piece.split_to((m.next - p) as usize);
        deliver(m, piece, whole_max, mid, events);
    }
}

fn deliver(
    m: &mut InMsg,
    d: Bytes,
    whole_max: u64,
    mid: &str,
    events: &mut VecDeque<SessionEvent>,
) {
    let n = d.len() as u64;
    if !m.streaming && m.collected_len + n > whole_max {
        m.streaming = true;
        let mut off = 0;
        for p in std::mem::take(&mut m.collected) {
            let l = p.len() as u64;
            events.push_back(SessionEvent::MessageData {
                message_id: mid.to_owned(),
                offset: off,
                data: p,
            });
            off += l;
        }
    }
    if m.streaming {
        events.push_back(SessionEvent::MessageData {
            message_id: mid.to_owned(),
            offset: m.next - 1,
            data: d,
        });
    } else {
        m.collected_len += n;
        m.collected.push(d);
    }
    m.next += n;
}
