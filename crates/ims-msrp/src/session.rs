//! One MSRP session, sans-IO (RFC 4975 §5, §7): chunking and interruption on the sending side,
//! transaction responses with a timeout, reassembly and reports on the receiving side.
//!
//! Feed what the [`crate::Framer`] produces to [`Session::handle_event`] (or whole frames to
//! [`Session::handle_frame`]), drain [`Session::poll_transmit`] into the connection and
//! [`Session::poll_event`] into the application, and call [`Session::handle_timeout`] when
//! [`Session::poll_timeout`] is due. The clock is the caller's.
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

    /// Queues a message; returns its Message-ID. Small messages pass a large one at its next chunk
    /// boundary (the large one is interrupted with `+` and resumed with the next Byte-Range).
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
        match self.sending.iter_mut().find(|m| m.id == message_id) {
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
        if let Some(m) = self.sending.iter_mut().find(|m| m.id == message_id) {
            m.finished = true;
        }
    }

    /// Aborts a message: its next chunk ends with `#` and nothing more is sent.
    pub fn abort(&mut self, message_id: &str) {
        if let Some(m) = self.sending.iter_mut().find(|m| m.id == message_id) {
            m.aborted = true;
        }
    }

    /// Body bytes queued and not yet chunked, over all messages (for back-pressure).
    pub fn queued_bytes(&self) -> usize {
        self.sending.iter().map(|m| m.queued).sum()
    }

    /// Transactions waiting for a response.
    pub fn outstanding(&self) -> usize {
        self.pending.len()
    }

    /// The next frame to write: responses and REPORTs first, then one chunk of the next message
    /// in turn.
    pub fn poll_transmit(&mut self, now: Instant) -> Option<Transmit> {
        if let Some(t) = self.control.pop_front() {
            return Some(t);
        }
        let n = self.sending.len();
        for _ in 0..n {
            let mut m = self.sending.pop_front()?;
            let ready = m.aborted
                || m.queued >= self.cfg.chunk_size
                || (m.finished && (m.queued > 0 || m.offset == 0));
            if !ready {
                self.sending.push_back(m);
                continue;
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
        let mut b = FrameBuilder::request(&tid, "SEND")
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
        // a body part always, so that an empty message still carries its Content-Type
        let b = b.body(&m.content_type, Bytes::new()).flag(flag);
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
        self.pending.values().map(|(_, d)| *d).min()
    }

    /// Fails every transaction whose deadline has passed (RFC 4975 §7.1.1: as if a 408 came).
    pub fn handle_timeout(&mut self, now: Instant) {
        let expired: Vec<String> = self
            .pending
            .iter()
            .filter(|(_, (_, d))| *d <= now)
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
