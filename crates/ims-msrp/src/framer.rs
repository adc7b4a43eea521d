//! The incremental framer (RFC 4975 §7.1, §9): bytes in any split, frames out.
//!
//! MSRP has no Content-Length: only the end-line `-------` transaction-id flag CRLF, at the start
//! of a line, ends a frame. The framer searches for `CRLF "-------" tid` with `memchr::memmem`
//! and checks the flag byte and the CRLF after it, so body text that merely resembles an end-line
//! (another tid, a bad flag, trailing bytes, no CRLF in front) never ends the frame.
//!
//! Bodies up to [`Limits::stream_threshold`] are delivered whole in [`Event::Frame`]; larger
//! bodies are streamed as [`Event::Start`], [`Event::Data`]... and [`Event::End`], without ever
//! buffering more than the threshold plus one end-line. Which of the two a frame gets depends only
//! on its body length, never on how the bytes were split.

use crate::error::{Error, ErrorKind};
use crate::message::{Flag, Frame, Head};
use bytes::{Buf, Bytes, BytesMut};
use core::ops::Range;
use memchr::memmem::Finder;

/// Bounds on what the framer buffers and accepts. The defaults are safe for a public port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Largest start line plus header section, in bytes.
    pub max_head_size: usize,
    /// Largest single header line (and start line), in bytes.
    pub max_header_len: usize,
    /// Most header lines in one frame.
    pub max_headers: usize,
    /// Longest transaction id the start-line scan accepts (the grammar says 32; longer ones up to
    /// this bound still frame so that a 400 can be answered).
    pub max_tid_len: usize,
    /// Bodies up to this size come whole in [`Event::Frame`]; larger ones are streamed.
    pub stream_threshold: usize,
    /// Largest chunk body; beyond it without an end-line the stream is lost
    /// ([`ErrorKind::ChunkTooLarge`]).
    pub max_chunk_size: u64,
    /// Reject a transaction id that is not an RFC 4975 `ident` at once (fatal), instead of
    /// framing the request so that it can be answered with 400.
    pub strict_transaction_id: bool,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_head_size: 64 * 1024,
            max_header_len: 8 * 1024,
            max_headers: 64,
            max_tid_len: 64,
            stream_threshold: 64 * 1024,
            max_chunk_size: 4 * 1024 * 1024,
            strict_transaction_id: false,
        }
    }
}

/// What the framer produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A whole frame: no body, or a body of at most `stream_threshold` bytes.
    Frame(Frame),
    /// The head of a frame whose body is larger than `stream_threshold`; its body follows.
    Start(Head),
    /// The next part of the streamed body.
    Data(Bytes),
    /// The end-line of the streamed frame.
    End(Flag),
}

/// A request's method range, or a response's status and comment range.
pub(crate) type StartKind = Result<Range<u32>, (u16, Option<Range<u32>>)>;

#[derive(Debug)]
#[allow(clippy::large_enum_variant)]
enum State {
    /// Scanning the start line and headers.
    Head {
        /// Where the next line starts.
        line: usize,
        /// Where the LF search resumes.
        scan: usize,
        tid: Option<Range<u32>>,
        start: Option<StartKind>,
        headers: Vec<(Range<u32>, Range<u32>)>,
        fault: Option<Error>,
    },
    /// In the body; the buffer starts at the first body byte not yet delivered.
    Body {
        /// The head, until it is delivered.
        head: Option<Head>,
        /// `CRLF "-------" tid`.
        finder: Finder<'static>,
        /// The end-line search resumes here; every byte before it is body.
        search: usize,
        /// Body bytes already delivered as [`Event::Data`].
        emitted: u64,
        streaming: bool,
        /// The flag of a found end-line and where the frame ends, once seen.
        found: Option<(usize, Flag, usize)>,
    },
    Failed(Error),
}

/// The incremental MSRP framer. Push bytes with [`Framer::push`] (or read straight into
/// [`Framer::buffer_mut`]), then drain [`Framer::poll`] until `Ok(None)`.
///
/// ```
/// use ims_msrp::{Event, Framer};
/// let wire = b"MSRP a786hjs2 SEND\r\nTo-Path: msrp://bob.example.com:8888/9di4eae923wzd;tcp\r\n\
/// From-Path: msrp://alice.example.com:7777/iau39soe2843z;tcp\r\nMessage-ID: 87652491\r\n\
/// Byte-Range: 1-5/5\r\nContent-Type: text/plain\r\n\r\nHello\r\n-------a786hjs2$\r\n";
/// let mut framer = Framer::default();
/// let mut frames = Vec::new();
/// for b in wire.chunks(7) {
///     framer.push(b);
///     while let Some(ev) = framer.poll()? {
///         if let Event::Frame(f) = ev { frames.push(f) }
///     }
/// }
/// assert_eq!(&frames[0].body[..], b"Hello");
/// # Ok::<(), ims_msrp::Error>(())
/// ```
#[derive(Debug)]
pub struct Framer {
    limits: Limits,
    buf: BytesMut,
    state: State,
    /// Bytes of earlier frames consumed, for error offsets.
    consumed: u64,
}

impl Default for Framer {
    fn default() -> Framer {
        Framer::new(Limits::default())
    }
}

fn head_state() -> State {
    State::Head {
        line: 0,
        scan: 0,
        tid: None,
        start: None,
        headers: Vec::new(),
        fault: None,
    }
}

fn is_token_byte(b: u8) -> bool {
    crate::uri::is_token(b)
}

impl Framer {
    /// A framer with these limits.
    pub fn new(limits: Limits) -> Framer {
        Framer {
            limits,
            buf: BytesMut::with_capacity(8 * 1024),
            state: head_state(),
            consumed: 0,
        }
    }

    /// The limits.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Appends received bytes.
    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// The receive buffer, for reading from a socket without an extra copy.
    pub fn buffer_mut(&mut self) -> &mut BytesMut {
        &mut self.buf
    }

    /// Bytes buffered and not yet delivered.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// True between frames with nothing buffered (a clean place to close the connection).
    pub fn is_idle(&self) -> bool {
        self.buf.is_empty() && matches!(self.state, State::Head { line: 0, .. })
    }

    /// The next event, `Ok(None)` when more bytes are needed. After an error that
    /// [`Error::is_fatal`] the same error comes back on every call; a non-fatal one never comes
    /// from here (it is kept in [`Head::fault`] so the frame can be answered).
    pub fn poll(&mut self) -> Result<Option<Event>, Error> {
        match &self.state {
            State::Failed(e) => Err(*e),
            State::Head { .. } => match self.poll_head() {
                Err(e) => {
                    self.state = State::Failed(e);
                    Err(e)
                }
                Ok(v) => Ok(v),
            },
            State::Body { .. } => match self.poll_body() {
                Err(e) => {
                    self.state = State::Failed(e);
                    Err(e)
                }
                Ok(v) => Ok(v),
            },
        }
    }

    fn poll_head(&mut self) -> Result<Option<Event>, Error> {
        loop {
            let State::Head {
                line,
                scan,
                tid,
                start,
                headers,
                fault,
            } = &mut self.state
            else {
                return Ok(None);
            };
            let Some(i) = memchr::memchr(b'\n', &self.buf[*scan..]) else {
                *scan = self.buf.len();
                let cur = self.buf.len() - *line;
                if cur > self.limits.max_header_len {
                    return Err(fail(self.consumed, ErrorKind::HeaderTooLong, *line));
                }
                if self.buf.len() > self.limits.max_head_size {
                    return Err(fail(self.consumed, ErrorKind::HeadTooLarge, 0));
                }
                // a start line must begin with "MSRP ": fail early on garbage
                if tid.is_none() {
                    let n = self.buf.len().min(5);
                    if self.buf[..n] != b"MSRP "[..n] {
                        return Err(fail(self.consumed, ErrorKind::StartLine, 0));
                    }
                }
                return Ok(None);
            };
            let lf = *scan + i;
            if lf == 0 || self.buf[lf - 1] != b'\r' {
                return Err(fail(self.consumed, ErrorKind::BareLf, lf));
            }
            let (ls, le) = (*line, lf - 1); // line content [ls, le)
            if le - ls > self.limits.max_header_len {
                return Err(fail(self.consumed, ErrorKind::HeaderTooLong, ls));
            }
            if lf + 1 > self.limits.max_head_size {
                return Err(fail(self.consumed, ErrorKind::HeadTooLarge, 0));
            }
            *line = lf + 1;
            *scan = lf + 1;
            let l = &self.buf[ls..le];
            let Some(tid_r) = tid.clone() else {
                // start line
                let (t, s) = parse_start(l, &self.limits).map_err(|k| fail(self.consumed, k, 0))?;
                *tid = Some(t);
                *start = Some(s);
                continue;
            };
            let tidb = &self.buf[tid_r.start as usize..tid_r.end as usize];
            let is_end_line = l.len() == 7 + tidb.len() + 1
                && l.starts_with(b"-------")
                && &l[7..7 + tidb.len()] == tidb
                && Flag::from_byte(l[l.len() - 1]).is_some();
            if is_end_line || l.is_empty() {
                let raw_len = ls;
                let content_stuff = l.is_empty();
                let flag = Flag::from_byte(l.last().copied().unwrap_or(0));
                let start = start
                    .take()
                    .expect("the start line is parsed before any header line");
                let headers = std::mem::take(headers);
                let fault = *fault;
                let total = lf + 1;
                let raw = self.buf.split_to(raw_len).freeze();
                self.buf.advance(total - raw_len);
                self.consumed += total as u64;
                let head = Head::from_parts(raw, tid_r, start, headers, content_stuff, fault);
                if !content_stuff {
                    self.state = head_state();
                    return Ok(Some(Event::Frame(Frame {
                        head,
                        body: Bytes::new(),
                        flag: flag.expect("an end-line has a flag"),
                    })));
                }
                let tid = head.transaction_id().as_bytes();
                let mut pat = Vec::with_capacity(9 + tid.len());
                pat.extend_from_slice(b"\r\n-------");
                pat.extend_from_slice(tid);
                self.state = State::Body {
                    head: Some(head),
                    finder: Finder::new(&pat).into_owned(),
                    search: 0,
                    emitted: 0,
                    streaming: false,
                    found: None,
                };
                return self.poll_body();
            }
            if headers.len() >= self.limits.max_headers {
                return Err(fail(self.consumed, ErrorKind::TooManyHeaders, ls));
            }
            // header line: name ":" SP value
            let (name, value) = match memchr::memchr(b':', l) {
                Some(c) => {
                    let name = ls..ls + c;
                    let mut vs = ls + c + 1;
                    while vs < le && matches!(self.buf[vs], b' ' | b'\t') {
                        vs += 1;
                    }
                    let mut ve = le;
                    while ve > vs && matches!(self.buf[ve - 1], b' ' | b'\t') {
                        ve -= 1;
                    }
                    if fault.is_none() {
                        if c == 0 || !l[..c].iter().copied().all(is_token_byte) {
                            *fault = Some(fail(self.consumed, ErrorKind::HeaderName, ls));
                        } else if self.buf[vs..ve]
                            .iter()
                            .any(|&b| b < 0x20 && b != b'\t' || b == 0x7f)
                            || std::str::from_utf8(&self.buf[vs..ve]).is_err()
                        {
                            *fault = Some(fail(self.consumed, ErrorKind::HeaderValue, vs));
                        }
                    }
                    (name, vs..ve)
                }
                None => {
                    if fault.is_none() {
                        *fault = Some(fail(self.consumed, ErrorKind::HeaderColon, ls));
                    }
                    (ls..le, le..le)
                }
            };
            let u = |r: Range<usize>| r.start as u32..r.end as u32;
            headers.push((u(name), u(value)));
        }
    }

    fn poll_body(&mut self) -> Result<Option<Event>, Error> {
        let threshold = self.limits.stream_threshold;
        let max_chunk = self.limits.max_chunk_size;
        let State::Body {
            head,
            finder,
            search,
            emitted,
            streaming,
            found,
        } = &mut self.state
        else {
            return Ok(None);
        };
        let plen = finder.needle().len();
        // 1. find the end-line, unless already found
        if found.is_none() {
            loop {
                match finder.find(&self.buf[*search..]) {
                    Some(i) => {
                        let pos = *search + i;
                        if pos + plen + 3 > self.buf.len() {
                            *search = pos; // maybe an end-line: wait for its last bytes
                            break;
                        }
                        let fl = Flag::from_byte(self.buf[pos + plen]);
                        if let (Some(fl), b"\r\n") = (fl, &self.buf[pos + plen + 1..pos + plen + 3])
                        {
                            *found = Some((pos, fl, pos + plen + 3));
                            *search = pos;
                            break;
                        }
                        *search = pos + 1;
                    }
                    None => {
                        *search = (*search).max(self.buf.len().saturating_sub(plen - 1));
                        break;
                    }
                }
            }
        }
        // every byte before `search` is body
        let safe = *search;
        match *found {
            Some((pos, flag, end)) => {
                let total = *emitted + pos as u64;
                if total > max_chunk {
                    return Err(Error::new(
                        ErrorKind::ChunkTooLarge,
                        usize::try_from(self.consumed).unwrap_or(usize::MAX),
                    ));
                }
                if !*streaming && total <= threshold as u64 {
                    let body = self.buf.split_to(pos).freeze();
                    self.buf.advance(end - pos);
                    self.consumed += end as u64;
                    let head = head.take().expect("the head is kept until delivered");
                    self.state = head_state();
                    return Ok(Some(Event::Frame(Frame { head, body, flag })));
                }
                if !*streaming {
                    *streaming = true;
                    let h = head.take().expect("the head is kept until delivered");
                    return Ok(Some(Event::Start(h)));
                }
                if pos > 0 {
                    let data = self.buf.split_to(pos).freeze();
                    *emitted += pos as u64;
                    *search = 0;
                    *found = Some((0, flag, end - pos));
                    self.consumed += pos as u64;
                    return Ok(Some(Event::Data(data)));
                }
                self.buf.advance(end);
                self.consumed += end as u64;
                self.state = head_state();
                Ok(Some(Event::End(flag)))
            }
            None => {
                if !*streaming {
                    if safe > threshold {
                        *streaming = true;
                        let h = head.take().expect("the head is kept until delivered");
                        return Ok(Some(Event::Start(h)));
                    }
                    return Ok(None);
                }
                if *emitted + safe as u64 > max_chunk {
                    return Err(Error::new(
                        ErrorKind::ChunkTooLarge,
                        usize::try_from(self.consumed).unwrap_or(usize::MAX),
                    ));
                }
                if safe == 0 {
                    return Ok(None);
                }
                let data = self.buf.split_to(safe).freeze();
                *emitted += safe as u64;
                *search = 0;
                self.consumed += safe as u64;
                Ok(Some(Event::Data(data)))
            }
        }
    }
}

fn fail(consumed: u64, kind: ErrorKind, at: usize) -> Error {
    let off = consumed.saturating_add(at as u64);
    Error::new(kind, usize::try_from(off).unwrap_or(usize::MAX))
}

/// Parses `MSRP SP tid SP (method / status [SP comment])`, returning the tid range and the
/// method range or (status, comment range). Offsets are relative to the line (= the buffer).
fn parse_start(l: &[u8], limits: &Limits) -> Result<(Range<u32>, StartKind), ErrorKind> {
    let rest = l.strip_prefix(b"MSRP ").ok_or(ErrorKind::StartLine)?;
    let sp = memchr::memchr(b' ', rest).ok_or(ErrorKind::StartLine)?;
    let tid = &rest[..sp];
    if tid.is_empty() || tid.len() > limits.max_tid_len || !tid.iter().all(|b| b.is_ascii_graphic())
    {
        return Err(ErrorKind::UnframeableTransactionId);
    }
    if limits.strict_transaction_id
        && !crate::message::is_ident(std::str::from_utf8(tid).unwrap_or(""))
    {
        return Err(ErrorKind::UnframeableTransactionId);
    }
    let tid_r = 5..(5 + sp) as u32;
    let after = &rest[sp + 1..];
    let base = 5 + sp + 1;
    if after.len() >= 3
        && after[..3].iter().all(u8::is_ascii_digit)
        && (after.len() == 3 || after[3] == b' ')
    {
        let code = u16::from(after[0] - b'0') * 100
            + u16::from(after[1] - b'0') * 10
            + u16::from(after[2] - b'0');
        let comment = (after.len() > 4).then(|| (base + 4) as u32..l.len() as u32);
        if after.len() > 4 {
            let c = &after[4..];
            if c.iter().any(|&b| b < 0x20 && b != b'\t') || std::str::from_utf8(c).is_err() {
                return Err(ErrorKind::StartLine);
            }
        }
        return Ok((tid_r, Err((code, comment))));
    }
    if after.is_empty() || !after.iter().copied().all(is_token_byte) {
        return Err(ErrorKind::StartLine);
    }
    Ok((tid_r, Ok(base as u32..l.len() as u32)))
}

/// Frames exactly one whole frame at the start of `data` (bodies of any size come whole).
/// Returns the frame and the bytes it used; [`ErrorKind::Incomplete`] when `data` ends first.
pub fn parse_frame(data: &[u8]) -> Result<(Frame, usize), Error> {
    let limits = Limits {
        stream_threshold: usize::MAX,
        ..Limits::default()
    };
    let mut f = Framer::new(limits);
    f.push(data);
    match f.poll()? {
        Some(Event::Frame(fr)) => Ok((fr, data.len() - f.buffered())),
        _ => Err(Error::new(ErrorKind::Incomplete, data.len())),
    }
}
