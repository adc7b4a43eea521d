//! Message framing and the zero-copy message view (RFC 3261 §7).

use crate::error::{ErrorKind, ParseError};
use crate::headers::{CSeq, CallId, Contact, NameAddrHeader, TypedHeader, Via, ViaHead, ViaSpans};
use crate::method::Method;
use crate::name::byte_eq_mask;
use crate::scan::{CommaSplit, Span, TOKEN};
use crate::uri::Uri;
use crate::HeaderName;
use bytes::Bytes;
use smallvec::SmallVec;
use std::borrow::Cow;
use std::fmt;
use std::sync::{Arc, OnceLock};

/// Size and count limits. Every limit applies to untrusted input; the defaults are safe for a
/// public-facing server and comfortably above the longest RFC 4475 message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Whole message (start line, headers and body), bytes. Default 256 KiB.
    pub max_message_size: usize,
    /// Number of header lines. Default 256.
    pub max_headers: usize,
    /// One header line including folded continuations, bytes. Default 16 KiB; values above 65535
    /// act as 65535.
    pub max_header_len: usize,
    /// The Request-URI, bytes. Default 8 KiB.
    pub max_uri_len: usize,
    /// The body, bytes. Default 192 KiB.
    pub max_body_size: usize,
    /// Nesting of multipart bodies. Default 4.
    pub max_multipart_depth: usize,
    /// Parts in one multipart body. Default 64.
    pub max_multipart_parts: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message_size: 256 * 1024,
            max_headers: 256,
            max_header_len: 16 * 1024,
            max_uri_len: 8 * 1024,
            max_body_size: 192 * 1024,
            max_multipart_depth: 4,
            max_multipart_parts: 64,
        }
    }
}

/// Parser settings: limits plus opt-in leniency switches. Everything is strict by default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ParserConfig {
    /// Limits applied while parsing.
    pub limits: Limits,
    /// Accept lines ending in a bare LF.
    ///
    /// Background: RFC 3261 §7 requires CRLF (`CRLF = CR LF` in §25.1), but some
    /// implementations (and the RFC 5118 test archive) send LF alone.
    pub allow_lf_line_endings: bool,
}

/// Outcome of parsing possibly incomplete stream input (the httparse shape).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status<T> {
    /// A whole message; the `usize` says how many bytes it used.
    Complete(T),
    /// More bytes are needed. `Some(n)` when at least `n` more are known to be needed.
    Partial(Option<usize>),
}

impl<T> Status<T> {
    /// True for `Complete`.
    pub fn is_complete(&self) -> bool {
        matches!(self, Status::Complete(_))
    }
    /// The value of `Complete`, `None` for `Partial`.
    pub fn complete(self) -> Option<T> {
        match self {
            Status::Complete(t) => Some(t),
            Status::Partial(_) => None,
        }
    }
}

/// `SIP-Version` as two numbers (`SIP/2.0` is `(2, 0)`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Version {
    /// Major number.
    pub major: u16,
    /// Minor number.
    pub minor: u16,
}

impl Version {
    /// SIP/2.0.
    pub const SIP_2_0: Version = Version { major: 2, minor: 0 };
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SIP/{}.{}", self.major, self.minor)
    }
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum StartIdx {
    Request {
        method_end: u32,
        uri: (u32, u32),
        version: Version,
    },
    Response {
        version: Version,
        code: u16,
        reason: (u32, u32),
    },
}

/// One header line, packed into 16 bytes: offsets of the line, and short deltas to the name end and
/// the value (a header line is at most 65535 bytes, see `Limits::max_header_len`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct HIdx {
    start: u32,
    end: u32,
    name_len: u16,
    value_off: u16,
    value_back: u16,
    pub(crate) name: HeaderName,
}

impl HIdx {
    // all zero bits (Accept is variant 0), so filling the inline array is a plain memset
    const EMPTY: HIdx = HIdx {
        start: 0,
        end: 0,
        name_len: 0,
        value_off: 0,
        value_back: 0,
        name: HeaderName::Accept,
    };

    #[inline]
    pub(crate) fn start(&self) -> usize {
        self.start as usize
    }
    #[inline]
    pub(crate) fn end(&self) -> usize {
        self.end as usize
    }
    #[inline]
    pub(crate) fn name_end(&self) -> usize {
        self.start as usize + self.name_len as usize
    }
    #[inline]
    pub(crate) fn value_start(&self) -> usize {
        self.start as usize + self.value_off as usize
    }
    #[inline]
    pub(crate) fn value_end(&self) -> usize {
        self.end as usize - self.value_back as usize
    }
}

/// The header lines of a message: the first 24 inline, the rest in a `Vec` that only exists for
/// messages with more headers (a push is one compare and one store, no allocation).
#[derive(Debug, Clone)]
pub(crate) struct HeaderList {
    inline: [HIdx; INLINE_HEADERS],
    len: usize,
    more: Vec<HIdx>,
}

const INLINE_HEADERS: usize = 24;

impl HeaderList {
    #[inline]
    pub(crate) fn push(&mut self, h: HIdx) {
        if self.len < INLINE_HEADERS {
            self.inline[self.len] = h;
        } else {
            self.more.push(h);
        }
        self.len += 1;
    }
    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.len
    }
    /// The first header line for which `f` holds: the inline slots and the overflow searched as
    /// two plain slices (no chained iterator on the hot path).
    #[inline]
    pub(crate) fn find(&self, mut f: impl FnMut(&HIdx) -> bool) -> Option<&HIdx> {
        self.inline[..self.len.min(INLINE_HEADERS)]
            .iter()
            .find(|h| f(h))
            .or_else(|| self.more.iter().find(|h| f(h)))
    }
    pub(crate) fn clear(&mut self) {
        self.len = 0;
        self.more.clear();
    }
    /// Moves the lines from `k` on by `by` bytes: line `k` grows (its end moves), the later
    /// ones move whole. The offsets stay within `u32` (the caller checked the new length).
    pub(crate) fn shift_from(&mut self, k: usize, by: i64) {
        let shift = |x: u32| (i64::from(x) + by) as u32;
        let n = self.len.min(INLINE_HEADERS);
        for (i, h) in self.inline[..n]
            .iter_mut()
            .chain(self.more.iter_mut())
            .enumerate()
            .skip(k)
        {
            if i > k {
                h.start = shift(h.start);
            }
            h.end = shift(h.end);
        }
    }
    /// The inline lines and the overflow, in order.
    #[inline]
    pub(crate) fn slices(&self) -> (&[HIdx], &[HIdx]) {
        (&self.inline[..self.len.min(INLINE_HEADERS)], &self.more)
    }
    #[inline]
    pub(crate) fn iter(&self) -> impl Iterator<Item = &HIdx> + '_ {
        self.inline[..self.len.min(INLINE_HEADERS)]
            .iter()
            .chain(self.more.iter())
    }
    #[inline]
    pub(crate) fn get(&self, i: usize) -> Option<&HIdx> {
        if i < self.len.min(INLINE_HEADERS) {
            Some(&self.inline[i])
        } else {
            self.more.get(i.wrapping_sub(INLINE_HEADERS))
        }
    }
}

impl std::ops::Index<usize> for HeaderList {
    type Output = HIdx;
    fn index(&self, i: usize) -> &HIdx {
        self.get(i).expect("header index within the list")
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Index {
    pub(crate) start: StartIdx,
    pub(crate) start_line_end: u32,
    pub(crate) headers: HeaderList,
    pub(crate) body_start: u32,
    pub(crate) body_end: u32,
    pub(crate) content_length: Option<u32>,
    pub(crate) cl_conflict: bool,
    /// Some line of the header section ends in a bare LF (only possible in lenient mode).
    pub(crate) bare_lf: bool,
    /// Typed values parsed on first use. Offsets into the header section: an index whose bytes
    /// change (an edit, a splice) starts with an empty one.
    pub(crate) parsed: Parsed,
}

/// Typed values of a message worked out on its first ask and kept with its index: the top Via
/// and the CSeq, which the transaction layer, a proxy and a CSCF ask for many times per message
/// (its transaction keys, validation, loop detection, routing).
///
/// Out of line, made on the first ask or the first clone: an index stays 16 bytes larger only
/// (a message that is never asked nor cloned — a parse benchmark — pays no more than that), and
/// the clones of a message (same bytes) share the values, whichever of them asks first (a
/// transaction layer keeps a clone of what it sends, the receiver of an in-process hand-off
/// gets another).
#[derive(Debug, Default)]
pub(crate) struct Parsed(OnceLock<Arc<Values>>);

impl Clone for Parsed {
    fn clone(&self) -> Parsed {
        Parsed(OnceLock::from(Arc::clone(self.values_arc())))
    }
}

#[derive(Debug, Default)]
struct Values {
    top_via: OnceLock<Kept<ViaSpans>>,
    cseq: OnceLock<Kept<CSeqSpans>>,
}

impl Parsed {
    /// The values, made empty on the first ask.
    #[inline]
    fn values(&self) -> &Values {
        self.values_arc()
    }
    #[inline]
    fn values_arc(&self) -> &Arc<Values> {
        self.0.get_or_init(Arc::default)
    }
}

/// What the first parse of a header found.
#[derive(Debug, Clone, Copy)]
enum Kept<T> {
    /// No such header.
    Absent,
    /// Its value, as offsets.
    Value(T),
    /// Not kept (an error, whose exact value a new parse gives): parse again.
    Parse,
}

/// A [`CSeq`] as its number and its method (a known one, or offsets of the token).
#[derive(Debug, Clone, Copy)]
struct CSeqSpans {
    seq: u32,
    method: Result<Method<'static>, Span>,
}

impl CSeqSpans {
    fn shifted(self, by: i64) -> Option<CSeqSpans> {
        Some(CSeqSpans {
            seq: self.seq,
            method: match self.method {
                Ok(m) => Ok(m),
                Err(t) => Err(t.shifted(by)?),
            },
        })
    }
}

/// The line [`Message::get`] reads for a header called `name`: the first one of that name
/// (for a list header, the first with a non-empty value).
fn top_line(h: &HeaderList, name: HeaderName, list: bool) -> Option<usize> {
    h.iter()
        .position(|x| x.name == name && (!list || x.value_end() > x.value_start()))
}

impl Parsed {
    /// The typed values of a message written from the lines of `orig` (`lines`, indexed as
    /// `new`, bytes `buf`), known without asking it: a header it lacks is absent; a line it
    /// copies from the line of `orig` whose value `orig` kept carries that value, moved; a
    /// written top Via (the one a proxy pushes) is parsed here, once, from the value written.
    /// Anything else is left to the first ask (an error always is: its exact value comes from
    /// a parse of the new message).
    ///
    /// `head`: the front of the Via the writer wrote (if any): a written top Via that starts
    /// with it has only its parameters read ([`ViaHead::spans_of`]).
    fn carried(
        orig: &Index,
        new: &Index,
        lines: &[(u32, LinePiece)],
        buf: &[u8],
        head: Option<&ViaHead>,
    ) -> Parsed {
        let old = orig.parsed.0.get();
        // the kept value of `orig`'s line for `name`, moved to line `k` of `new`, when `k`
        // copies that line
        let moved = |k: usize, name: HeaderName, list: bool| -> Option<i64> {
            let (_, LinePiece::Copied(i)) = lines.get(k)? else {
                return None;
            };
            let i = *i as usize;
            if top_line(&orig.headers, name, list) != Some(i) {
                return None;
            }
            Some(i64::from(new.headers.get(k)?.start) - i64::from(orig.headers.get(i)?.start))
        };
        let values = Values::default();
        let mut any = false;
        let cseq = match top_line(&new.headers, HeaderName::CSeq, false) {
            None => Some(Kept::Absent),
            Some(k) => match (
                old.and_then(|o| o.cseq.get()),
                moved(k, HeaderName::CSeq, false),
            ) {
                (Some(Kept::Value(c)), Some(by)) => c.shifted(by).map(Kept::Value),
                _ => None,
            },
        };
        if let Some(c) = cseq {
            let _ = values.cseq.set(c);
            any = true;
        }
        let via = match top_line(&new.headers, HeaderName::Via, true) {
            None => Some(Kept::Absent),
            Some(k) => match lines.get(k).map(|l| l.1) {
                Some(LinePiece::Written { .. }) => written_top_via(buf, &new.headers[k], head),
                _ => match (
                    old.and_then(|o| o.top_via.get()),
                    moved(k, HeaderName::Via, true),
                ) {
                    (Some(Kept::Value(v)), Some(by)) => v.shifted(by).map(Kept::Value),
                    _ => None,
                },
            },
        };
        if let Some(v) = via {
            let _ = values.top_via.set(v);
            any = true;
        }
        if any {
            Parsed(OnceLock::from(Arc::new(values)))
        } else {
            Parsed(OnceLock::new())
        }
    }
}

impl Parsed {
    /// [`Parsed::carried`] for a message that is `orig` with bytes cut from line `k` on
    /// (`cut` of them: the whole line, or the front of its value), line `k` being neither a
    /// Via nor a CSeq line: the top Via and CSeq lines are `orig`'s, moved back by `cut` when
    /// they come after line `k`; what `carried` keeps for them, without the line pieces.
    fn carried_around(orig: &Index, k: usize, cut: usize) -> Parsed {
        let old = orig.parsed.0.get();
        let by = |j: usize| if j > k { -(cut as i64) } else { 0 };
        let values = Values::default();
        let mut any = false;
        match top_line(&orig.headers, HeaderName::CSeq, false) {
            None => {
                let _ = values.cseq.set(Kept::Absent);
                any = true;
            }
            Some(j) => {
                if let Some(Kept::Value(c)) = old.and_then(|o| o.cseq.get()) {
                    if let Some(c) = c.shifted(by(j)) {
                        let _ = values.cseq.set(Kept::Value(c));
                        any = true;
                    }
                }
            }
        }
        match top_line(&orig.headers, HeaderName::Via, true) {
            None => {
                let _ = values.top_via.set(Kept::Absent);
                any = true;
            }
            Some(j) => {
                if let Some(Kept::Value(v)) = old.and_then(|o| o.top_via.get()) {
                    if let Some(v) = v.shifted(by(j)) {
                        let _ = values.top_via.set(Kept::Value(v));
                        any = true;
                    }
                }
            }
        }
        if any {
            Parsed(OnceLock::from(Arc::new(values)))
        } else {
            Parsed(OnceLock::new())
        }
    }
}

/// The top Via of a message whose top Via line `h` was written, as [`Message::top_via`] keeps
/// it: the first element of the value parsed (`None`, left to the first ask, on an error).
///
/// A value that starts with `head` (the front the writer wrote) has only its parameters read,
/// when that gives the parse's answer ([`ViaHead::spans_of`]); otherwise it is parsed.
fn written_top_via(buf: &[u8], h: &HIdx, head: Option<&ViaHead>) -> Option<Kept<ViaSpans>> {
    let value = std::str::from_utf8(buf.get(h.value_start()..h.value_end())?).ok()?;
    if let Some(head) = head {
        // one element (a comma would start another; the parse then reads the first)
        if memchr::memchr(b',', value.as_bytes()).is_none() {
            if let Some(spans) = head.spans_of(value) {
                return Some(Kept::Value(spans.shifted(h.value_start() as i64)?));
            }
        }
    }
    written_top_via_parsed(buf, h)
}

/// [`written_top_via`] by a parse of the value (the general way).
fn written_top_via_parsed(buf: &[u8], h: &HIdx) -> Option<Kept<ViaSpans>> {
    let value = std::str::from_utf8(buf.get(h.value_start()..h.value_end())?).ok()?;
    let elem = if memchr::memchr(b',', value.as_bytes()).is_some() {
        CommaSplit::new(value).next().map_or("", |(_, e)| e)
    } else {
        value
    };
    if elem.is_empty() {
        return None;
    }
    let via = <Via<'_> as TypedHeader<'_>>::parse(elem).ok()?;
    let spans = via.spans_in(value)?.shifted(h.value_start() as i64)?;
    Some(Kept::Value(spans))
}

impl Index {
    /// An empty index, built field by field: the header slots are all-zero bits, so they are a
    /// `memset` (a copy of a constant `Index` was a 464-byte `memcpy`).
    #[inline(always)]
    fn empty() -> Index {
        Index {
            start: StartIdx::Response {
                version: Version::SIP_2_0,
                code: 0,
                reason: (0, 0),
            },
            start_line_end: 0,
            headers: HeaderList {
                inline: [HIdx::EMPTY; INLINE_HEADERS],
                len: 0,
                more: Vec::new(),
            },
            body_start: 0,
            body_end: 0,
            content_length: None,
            cl_conflict: false,
            bare_lf: false,
            parsed: Parsed(OnceLock::new()),
        }
    }
}

#[derive(PartialEq, Eq, Clone, Copy)]
enum Mode {
    Stream,
    Datagram,
}

/// Parses one message from the front of a stream buffer (TCP, TLS, SCTP, WebSocket-less framing).
///
/// Content-Length is mandatory (RFC 3261 §18.3). `Ok(Status::Partial)` means "feed more bytes".
/// Leading CRLF keep-alives are not skipped here; see [`crate::Framer`].
pub fn parse(buf: &[u8]) -> Result<Status<(Message<'_>, usize)>, ParseError> {
    ParserConfig::default().parse(buf)
}

/// Parses one datagram (UDP): a missing Content-Length means "the rest of the datagram", bytes past
/// the Content-Length are ignored (RFC 3261 §18.3), and a Content-Length past the end is an error.
pub fn parse_datagram(buf: &[u8]) -> Result<Message<'_>, ParseError> {
    ParserConfig::default().parse_datagram(buf)
}

impl ParserConfig {
    /// [`parse`] with this configuration.
    pub fn parse<'a>(&self, buf: &'a [u8]) -> Result<Status<(Message<'a>, usize)>, ParseError> {
        self.parse_mode(buf, Mode::Stream)
    }

    /// [`parse_datagram`] with this configuration.
    pub fn parse_datagram<'a>(&self, buf: &'a [u8]) -> Result<Message<'a>, ParseError> {
        // built in the returned value itself, so the index is never copied
        let mut m = Message {
            buf,
            head: "",
            idx: Cow::Owned(Index::empty()),
        };
        let Cow::Owned(idx) = &mut m.idx else {
            unreachable!("built as Owned just above")
        };
        match parse_index(buf, self, Mode::Datagram, idx)? {
            Status::Complete(()) => {
                let end = idx.body_end as usize;
                m.finish(end)?;
                Ok(m)
            }
            Status::Partial(_) => Err(ParseError::new(ErrorKind::UnterminatedHeaders, buf.len())),
        }
    }

    /// Builds the index in place inside the message that is returned, so it is never copied.
    #[inline(always)]
    fn parse_mode<'a>(
        &self,
        buf: &'a [u8],
        mode: Mode,
    ) -> Result<Status<(Message<'a>, usize)>, ParseError> {
        let mut m = Message {
            buf,
            head: "",
            idx: Cow::Owned(Index::empty()),
        };
        let Cow::Owned(idx) = &mut m.idx else {
            unreachable!("built as Owned just above")
        };
        match parse_index(buf, self, mode, idx)? {
            Status::Complete(()) => {
                let end = idx.body_end as usize;
                m.finish(end)?;
                Ok(Status::Complete((m, end)))
            }
            Status::Partial(n) => Ok(Status::Partial(n)),
        }
    }
}

#[inline]
fn parse_version(s: &[u8], at: usize) -> Result<Version, ParseError> {
    let err = ParseError::new(ErrorKind::Version, at);
    if s.len() < 7 || &s[..4] != b"SIP/" {
        return Err(err);
    }
    if s == b"SIP/2.0" {
        return Ok(Version::SIP_2_0);
    }
    let rest = &s[4..];
    let dot = memchr::memchr(b'.', rest).ok_or(err)?;
    let num = |d: &[u8]| -> Result<u16, ParseError> {
        if d.is_empty() || d.len() > 4 || !d.iter().all(u8::is_ascii_digit) {
            return Err(err);
        }
        Ok(d.iter().fold(0u16, |a, &c| a * 10 + u16::from(c - b'0')))
    };
    Ok(Version {
        major: num(&rest[..dot])?,
        minor: num(&rest[dot + 1..])?,
    })
}

/// Finds the end of the line starting at `from`: returns (content_end, next_line_start).
#[inline(always)]
fn line_end<const AVX2: bool>(
    eol: &mut EolFinder<'_, AVX2>,
    buf: &[u8],
    from: usize,
    lf_ok: bool,
) -> Result<Option<(usize, usize)>, ParseError> {
    match eol.find(from) {
        None => Ok(None),
        Some(at) => {
            if buf[at] == b'\r' {
                match buf.get(at + 1) {
                    Some(b'\n') => Ok(Some((at, at + 2))),
                    Some(_) => Err(ParseError::new(ErrorKind::BareCr, at)),
                    None => Ok(None),
                }
            } else if lf_ok {
                Ok(Some((at, at + 1)))
            } else {
                Err(ParseError::new(ErrorKind::BareLf, at))
            }
        }
    }
}

/// The CR-or-LF searcher.
///
/// On x86-64 it keeps the bit mask of the CR and LF bytes of one 64-byte block and answers from
/// it until the block is used up, so a header line costs a few instructions plus one block compare
/// per 64 bytes instead of a `memchr2` call per line (callgrind, `benches/sip_icount.rs`: `memchr2`
/// cost ≈86 instructions per line, ≈1,390 per message of the bench set; this finder, with AVX2,
/// ≈350). With `AVX2` (only inside [`parse_index_avx2`], which runs when the CPU has AVX2) the
/// blocks are compared 32 bytes at a time, inline; otherwise with SSE2 (part of the x86-64
/// baseline). Elsewhere it is `memchr2`.
struct EolFinder<'b, const AVX2: bool> {
    buf: &'b [u8],
    /// Offset of the block `mask` describes.
    #[cfg(target_arch = "x86_64")]
    base: usize,
    /// Bit `i` set when `buf[base + i]` is CR or LF (bytes past the end read as 0).
    #[cfg(target_arch = "x86_64")]
    mask: u64,
}

impl<'b, const AVX2: bool> EolFinder<'b, AVX2> {
    #[inline(always)]
    fn new(buf: &'b [u8]) -> Self {
        EolFinder {
            buf,
            // no block yet: `from - base` wraps to `from + BLOCK`, so the first `find` scans
            #[cfg(target_arch = "x86_64")]
            base: usize::MAX - (BLOCK - 1),
            #[cfg(target_arch = "x86_64")]
            mask: 0,
        }
    }

    /// The first CR or LF at or after `from`.
    #[cfg(not(target_arch = "x86_64"))]
    #[inline(always)]
    fn find(&mut self, from: usize) -> Option<usize> {
        memchr::memchr2(b'\r', b'\n', &self.buf[from..]).map(|p| from + p)
    }

    /// The first CR or LF at or after `from`.
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    fn find(&mut self, from: usize) -> Option<usize> {
        let off = from.wrapping_sub(self.base);
        let scan_from = if off < BLOCK {
            let m = self.mask & (u64::MAX << off);
            if m != 0 {
                return Some(self.base + m.trailing_zeros() as usize);
            }
            self.base + BLOCK
        } else {
            // the first call, or a position outside the block (the line loop only moves forward)
            from
        };
        let (base, mask) = if AVX2 {
            #[allow(unsafe_code)]
            // SAFETY: an `EolFinder<_, true>` is only made where the CPU has AVX2: in
            // `parse_index_impl::<true>`, which only `parse_index_avx2` runs (called by
            // `parse_index` after asking), and in the tests after asking
            unsafe {
                next_eol_block_avx2(self.buf, scan_from)
            }
        } else {
            next_eol_block_sse2(self.buf, scan_from)
        };
        self.base = base;
        self.mask = mask;
        if mask == 0 {
            None
        } else {
            Some(base + mask.trailing_zeros() as usize)
        }
    }
}

/// Whether the CPU has AVX2 (std caches the answer).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn has_avx2() -> bool {
    std::arch::is_x86_feature_detected!("avx2")
}

#[cfg(target_arch = "x86_64")]
const BLOCK: usize = 64;

/// From the block at `at` on, the first block holding a CR or LF: its offset and CR/LF bit mask
/// (bit `i` for byte `base + i`); `(_, 0)` when there is none up to the end of `b`. `mask` gives
/// the two 32-bit halves of a 64-byte block's mask; the last, short block is padded with zeros.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn next_eol_block(
    b: &[u8],
    mut at: usize,
    mask: impl Fn(&[u8; BLOCK]) -> (u32, u32),
) -> (usize, u64) {
    while let Some(block) = b.get(at..at + BLOCK) {
        let (lo, hi) = mask(block.try_into().expect("a block"));
        if lo | hi != 0 {
            return (at, u64::from(lo) | u64::from(hi) << 32);
        }
        at += BLOCK;
    }
    let mut tail = [0u8; BLOCK];
    let rest = b.get(at..).unwrap_or(&[]);
    tail[..rest.len()].copy_from_slice(rest);
    let (lo, hi) = mask(&tail);
    (at, u64::from(lo) | u64::from(hi) << 32)
}

/// [`next_eol_block`] with SSE2 compares, 16 bytes at a time.
#[cfg(target_arch = "x86_64")]
#[inline(never)]
fn next_eol_block_sse2(b: &[u8], at: usize) -> (usize, u64) {
    #[allow(unsafe_code)]
    // SAFETY: SSE2 is part of the x86-64 baseline
    next_eol_block(b, at, |block| unsafe { block_eol_mask_sse2(block) })
}

/// The CR/LF bit mask of a 64-byte block, 16 bytes at a time.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "sse2")]
#[inline]
#[allow(unsafe_code)]
fn block_eol_mask_sse2(block: &[u8; BLOCK]) -> (u32, u32) {
    use std::arch::x86_64::{
        __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_or_si128, _mm_set1_epi8,
    };
    let cr = _mm_set1_epi8(b'\r' as i8);
    let lf = _mm_set1_epi8(b'\n' as i8);
    let part = |i: usize| {
        let bytes: &[u8; 16] = block[i..i + 16].try_into().expect("16 bytes");
        // SAFETY: reads the 16 bytes of `bytes` (an unaligned load needs no alignment)
        let v = unsafe { _mm_loadu_si128(bytes.as_ptr().cast::<__m128i>()) };
        _mm_movemask_epi8(_mm_or_si128(_mm_cmpeq_epi8(v, cr), _mm_cmpeq_epi8(v, lf))) as u16 as u32
    };
    (part(0) | part(16) << 16, part(32) | part(48) << 16)
}

/// [`next_eol_block`] with AVX2 compares, 32 bytes at a time.
///
/// # Safety
/// The CPU must have AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[inline]
#[allow(unsafe_code)]
unsafe fn next_eol_block_avx2(b: &[u8], at: usize) -> (usize, u64) {
    use std::arch::x86_64::{
        __m256i, _mm256_cmpeq_epi8, _mm256_loadu_si256, _mm256_movemask_epi8, _mm256_or_si256,
        _mm256_set1_epi8,
    };
    let cr = _mm256_set1_epi8(b'\r' as i8);
    let lf = _mm256_set1_epi8(b'\n' as i8);
    next_eol_block(b, at, |block| {
        let part = |i: usize| {
            let bytes: &[u8; 32] = block[i..i + 32].try_into().expect("32 bytes");
            // SAFETY: reads the 32 bytes of `bytes` (an unaligned load needs no alignment)
            let v = unsafe { _mm256_loadu_si256(bytes.as_ptr().cast::<__m256i>()) };
            _mm256_movemask_epi8(_mm256_or_si256(
                _mm256_cmpeq_epi8(v, cr),
                _mm256_cmpeq_epi8(v, lf),
            )) as u32
        };
        (part(0), part(32))
    })
}

/// Whether every byte of `b` is below 0x80: 64 bytes per step with AVX2 when the CPU has it (std's
/// `is_ascii` otherwise, and for the last short piece).
#[inline]
fn is_ascii(b: &[u8]) -> bool {
    #[cfg(target_arch = "x86_64")]
    if has_avx2() {
        #[allow(unsafe_code)]
        // SAFETY: the CPU has AVX2 (asked just above)
        return unsafe { is_ascii_avx2(b) };
    }
    b.is_ascii()
}

/// [`is_ascii`] with AVX2.
///
/// # Safety
/// The CPU must have AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[inline(never)]
#[allow(unsafe_code)]
unsafe fn is_ascii_avx2(b: &[u8]) -> bool {
    use std::arch::x86_64::{
        __m256i, _mm256_loadu_si256, _mm256_movemask_epi8, _mm256_or_si256, _mm256_setzero_si256,
    };
    let n = b.len();
    if n < BLOCK {
        return b.is_ascii();
    }
    let or_block = |block: &[u8; BLOCK]| {
        let load = |i: usize| {
            let bytes: &[u8; 32] = block[i..i + 32].try_into().expect("32 bytes");
            // SAFETY: reads the 32 bytes of `bytes` (an unaligned load needs no alignment)
            unsafe { _mm256_loadu_si256(bytes.as_ptr().cast::<__m256i>()) }
        };
        _mm256_or_si256(load(0), load(32))
    };
    let mut acc = _mm256_setzero_si256();
    let mut blocks = b.chunks_exact(BLOCK);
    for block in &mut blocks {
        acc = _mm256_or_si256(acc, or_block(block.try_into().expect("a block")));
    }
    if !blocks.remainder().is_empty() {
        // the last 64 bytes, overlapping what was already seen
        acc = _mm256_or_si256(acc, or_block(b[n - BLOCK..].try_into().expect("a block")));
    }
    _mm256_movemask_epi8(acc) == 0
}

/// The first `:`, CR or LF at or after `from`.
#[inline]
fn find_colon_or_eol(b: &[u8], from: usize) -> Option<usize> {
    let mut i = from;
    while i + 8 <= b.len() {
        let x = u64::from_le_bytes(b[i..i + 8].try_into().expect("slice of 8 bytes"));
        let m = byte_eq_mask(x, b':') | byte_eq_mask(x, b'\r') | byte_eq_mask(x, b'\n');
        if m != 0 {
            return Some(i + (m.trailing_zeros() / 8) as usize);
        }
        i += 8;
    }
    b[i..]
        .iter()
        .position(|&c| c == b':' || c == b'\r' || c == b'\n')
        .map(|p| i + p)
}

fn parse_start_line(buf: &[u8], end: usize, cfg: &ParserConfig) -> Result<StartIdx, ParseError> {
    let line = &buf[..end];
    if line.starts_with(b"SIP/") {
        // Status-Line = SIP-Version SP Status-Code SP Reason-Phrase CRLF
        let sp = if line.starts_with(b"SIP/2.0 ") {
            7
        } else {
            memchr::memchr(b' ', line).ok_or(ParseError::new(ErrorKind::StartLine, 0))?
        };
        let version = parse_version(&line[..sp], 0)?;
        let code_at = sp + 1;
        let rest = &line[code_at..];
        if rest.len() < 4 || !rest[..3].iter().all(u8::is_ascii_digit) || rest[3] != b' ' {
            return Err(ParseError::new(ErrorKind::StatusCode, code_at));
        }
        let code = rest[..3]
            .iter()
            .fold(0u16, |a, &c| a * 10 + u16::from(c - b'0'));
        if code < 100 {
            return Err(ParseError::new(ErrorKind::StatusCode, code_at));
        }
        let rs = code_at + 4;
        if let Some(p) = line[rs..]
            .iter()
            .position(|&c| (c < 0x20 && c != b'\t') || c == 0x7f)
        {
            return Err(ParseError::new(ErrorKind::ReasonPhrase, rs + p));
        }
        return Ok(StartIdx::Response {
            version,
            code,
            reason: (rs as u32, end as u32),
        });
    }
    // Request-Line = Method SP Request-URI SP SIP-Version CRLF
    let m_end = line
        .iter()
        .position(|&c| !TOKEN[c as usize])
        .unwrap_or(line.len());
    if m_end == 0 {
        return Err(ParseError::new(ErrorKind::StartLine, 0));
    }
    if line.get(m_end) != Some(&b' ') {
        return Err(ParseError::new(ErrorKind::Method, m_end));
    }
    let us = m_end + 1;
    let sp2 = memchr::memchr(b' ', &line[us..])
        .map(|i| us + i)
        .ok_or(ParseError::new(ErrorKind::RequestUri, us))?;
    if sp2 == us {
        return Err(ParseError::new(ErrorKind::RequestUri, us));
    }
    if sp2 - us > cfg.limits.max_uri_len {
        return Err(ParseError::new(ErrorKind::UriTooLong, us));
    }
    let uri_bytes = &line[us..sp2];
    let uri = match short_ascii_str(uri_bytes) {
        Some(u) => u,
        None => std::str::from_utf8(uri_bytes)
            .map_err(|_| ParseError::new(ErrorKind::RequestUri, us))?,
    };
    if let Err(e) = Uri::parse(uri) {
        return Err(ParseError::new(ErrorKind::RequestUri, us + e.offset));
    }
    let version = parse_version(&line[sp2 + 1..], sp2 + 1)?;
    Ok(StartIdx::Request {
        method_end: m_end as u32,
        uri: (us as u32, sp2 as u32),
        version,
    })
}

/// The end of a header value starting at `from`, the general way (folded lines, bare LF allowed,
/// end of input): returns (content_end, next_line_start), `None` when more bytes are needed.
#[inline(never)]
fn value_end<const AVX2: bool>(
    eol: &mut EolFinder<'_, AVX2>,
    buf: &[u8],
    from: usize,
    lf_ok: bool,
) -> Result<Option<(usize, usize)>, ParseError> {
    let mut p = from;
    loop {
        let Some((ce, nx)) = line_end(eol, buf, p, lf_ok)? else {
            return Ok(None);
        };
        match buf.get(nx) {
            Some(b' ' | b'\t') => p = nx,
            Some(_) => return Ok(Some((ce, nx))),
            None => return Ok(None),
        }
    }
}

/// `field-name HCOLON` at `hstart`, the general way: returns the name, the end of the name and the
/// colon offset, `None` when the line is not complete yet.
#[inline(never)]
fn field_name(buf: &[u8], hstart: usize) -> Result<Option<(HeaderName, usize, usize)>, ParseError> {
    // find the colon (or the line end) eight bytes at a time
    let Some(colon) = find_colon_or_eol(buf, hstart) else {
        return Ok(None);
    };
    if buf[colon] != b':' {
        let bad = buf[hstart..colon]
            .iter()
            .position(|&c| !TOKEN[c as usize])
            .map_or(colon, |i| hstart + i);
        let only_ws_after = buf[bad..colon].iter().all(|&c| c == b' ' || c == b'\t');
        let kind = if bad > hstart && only_ws_after {
            ErrorKind::HeaderColon
        } else {
            ErrorKind::HeaderName
        };
        return Err(ParseError::new(
            kind,
            if kind == ErrorKind::HeaderColon {
                colon
            } else {
                bad
            },
        ));
    }
    let mut name_end = colon;
    while name_end > hstart && matches!(buf[name_end - 1], b' ' | b'\t') {
        name_end -= 1;
    }
    let nb = &buf[hstart..name_end];
    if nb.is_empty() {
        return Err(ParseError::new(ErrorKind::HeaderName, hstart));
    }
    // a known name needs no further check, an unknown one must be a token
    let name = HeaderName::from_token(nb);
    if name == HeaderName::Other {
        if let Some(i) = nb.iter().position(|&c| !TOKEN[c as usize]) {
            let kind = if nb[i..].iter().all(|&c| c == b' ' || c == b'\t') {
                ErrorKind::HeaderColon
            } else {
                ErrorKind::HeaderName
            };
            return Err(ParseError::new(kind, hstart + i));
        }
    }
    Ok(Some((name, name_end, colon)))
}

/// Indexes the start line and header lines of `buf` into `out`.
fn parse_index(
    buf: &[u8],
    cfg: &ParserConfig,
    mode: Mode,
    out: &mut Index,
) -> Result<Status<()>, ParseError> {
    #[cfg(target_arch = "x86_64")]
    if has_avx2() {
        #[allow(unsafe_code)]
        // SAFETY: the CPU has AVX2 (asked just above)
        return unsafe { parse_index_avx2(buf, cfg, mode, out) };
    }
    parse_index_impl::<false>(buf, cfg, mode, out)
}

/// [`parse_index`] compiled for AVX2, so the line-end blocks are compared inline.
///
/// # Safety
/// The CPU must have AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[allow(unsafe_code)]
unsafe fn parse_index_avx2(
    buf: &[u8],
    cfg: &ParserConfig,
    mode: Mode,
    out: &mut Index,
) -> Result<Status<()>, ParseError> {
    parse_index_impl::<true>(buf, cfg, mode, out)
}

/// The body of [`parse_index`]; `AVX2` may only be true when the CPU has AVX2 (it is, only inside
/// [`parse_index_avx2`]).
#[inline(always)]
fn parse_index_impl<const AVX2: bool>(
    buf: &[u8],
    cfg: &ParserConfig,
    mode: Mode,
    out: &mut Index,
) -> Result<Status<()>, ParseError> {
    let lim = &cfg.limits;
    let lf_ok = cfg.allow_lf_line_endings;
    if buf.is_empty() {
        return if mode == Mode::Stream {
            Ok(Status::Partial(None))
        } else {
            Err(ParseError::new(ErrorKind::Empty, 0))
        };
    }
    let partial = |n: usize| -> Result<Status<()>, ParseError> {
        if n > lim.max_message_size {
            Err(ParseError::new(
                ErrorKind::MessageTooLarge,
                lim.max_message_size,
            ))
        } else {
            Ok(Status::Partial(None))
        }
    };
    let mut eol = EolFinder::<AVX2>::new(buf);
    let (sl_end, mut pos) = match line_end(&mut eol, buf, 0, lf_ok)? {
        Some(x) => x,
        None => return partial(buf.len()),
    };
    let start = parse_start_line(buf, sl_end, cfg)?;
    let headers = &mut out.headers;
    headers.clear();
    let mut content_length: Option<u32> = None;
    let mut cl_conflict = false;
    let body_start;
    loop {
        let Some(&c0) = buf.get(pos) else {
            return partial(buf.len());
        };
        if c0 == b'\r' {
            match buf.get(pos + 1) {
                Some(b'\n') => {
                    body_start = pos + 2;
                    break;
                }
                Some(_) => return Err(ParseError::new(ErrorKind::BareCr, pos)),
                None => return partial(buf.len()),
            }
        }
        if c0 == b'\n' {
            if lf_ok {
                body_start = pos + 1;
                break;
            }
            return Err(ParseError::new(ErrorKind::BareLf, pos));
        }
        if headers.len() >= lim.max_headers {
            return Err(ParseError::new(ErrorKind::TooManyHeaders, pos));
        }
        // field-name HCOLON: a known name right before its colon is recognised a word at a time;
        // anything else takes the general path, which finds the colon and checks the token
        let hstart = pos;
        let (name, name_end, colon) = match crate::name::match_known_line(&buf[pos..]) {
            Some((name, k)) => (name, pos + k, pos + k),
            None => match field_name(buf, pos)? {
                Some(x) => x,
                None => return partial(buf.len()),
            },
        };
        // the value runs to a line end not followed by SP/HTAB (RFC 3261 §7.3.1 folding); the usual
        // line ends in CR LF and the next line starts with a name
        let (content_end, next) = match eol
            .find(colon + 1)
            .and_then(|at| Some((at, buf.get(at..at + 3)?)))
        {
            Some((at, &[b'\r', b'\n', c])) if c != b' ' && c != b'\t' => (at, at + 2),
            _ => match value_end(&mut eol, buf, colon + 1, lf_ok)? {
                Some(x) => x,
                None => return partial(buf.len()),
            },
        };
        if next - hstart > lim.max_header_len.min(u16::MAX as usize) {
            return Err(ParseError::new(ErrorKind::HeaderTooLong, hstart).within_name(name));
        }
        // LWS trimmed at both ends; the usual "Name: value" has exactly one SP after the colon and
        // nothing to trim at the end
        let raw = &buf[colon + 1..content_end];
        let ws = |c: &u8| matches!(c, b' ' | b'\t' | b'\r' | b'\n');
        let lead = match raw {
            [b' ', c, ..] if !ws(c) => 1,
            _ => raw.iter().position(|c| !ws(c)).unwrap_or(raw.len()),
        };
        let trail = match raw.last() {
            Some(c) if !ws(c) => 0,
            _ => raw[lead..].iter().rev().position(|c| !ws(c)).unwrap_or(0),
        };
        let vs = colon + 1 + lead;
        let ve = content_end - trail;
        if name == HeaderName::ContentLength {
            let v = &buf[vs..ve];
            if v.is_empty() || v.len() > 10 || !v.iter().all(u8::is_ascii_digit) {
                return Err(ParseError::new(ErrorKind::ContentLength, vs).within_name(name));
            }
            let n = v.iter().fold(0u64, |a, &c| a * 10 + u64::from(c - b'0'));
            let n = u32::try_from(n)
                .map_err(|_| ParseError::new(ErrorKind::ContentLength, vs).within_name(name))?;
            match content_length {
                Some(prev) if prev != n => cl_conflict = true,
                _ => content_length = Some(n),
            }
        }
        headers.push(HIdx {
            name,
            start: hstart as u32,
            end: next as u32,
            name_len: (name_end - hstart) as u16,
            value_off: (vs - hstart) as u16,
            value_back: (next - ve) as u16,
        });
        pos = next;
    }
    if body_start > lim.max_message_size {
        return Err(ParseError::new(
            ErrorKind::MessageTooLarge,
            lim.max_message_size,
        ));
    }
    let body_end = match mode {
        Mode::Stream => {
            if cl_conflict {
                return Err(ParseError::new(
                    ErrorKind::ContentLengthConflict,
                    body_start,
                ));
            }
            let cl = content_length
                .ok_or(ParseError::new(ErrorKind::MissingContentLength, body_start))?
                as usize;
            if cl > lim.max_body_size {
                return Err(ParseError::new(ErrorKind::BodyTooLarge, body_start));
            }
            if body_start + cl > lim.max_message_size {
                return Err(ParseError::new(ErrorKind::MessageTooLarge, body_start));
            }
            if buf.len() < body_start + cl {
                return Ok(Status::Partial(Some(body_start + cl - buf.len())));
            }
            body_start + cl
        }
        Mode::Datagram => {
            if buf.len() > lim.max_message_size {
                return Err(ParseError::new(
                    ErrorKind::MessageTooLarge,
                    lim.max_message_size,
                ));
            }
            let end = match content_length {
                Some(cl) if !cl_conflict => {
                    let e = body_start + cl as usize;
                    if e > buf.len() {
                        return Err(ParseError::new(ErrorKind::BodyTruncated, buf.len()));
                    }
                    e
                }
                _ => buf.len(),
            };
            if end - body_start > lim.max_body_size {
                return Err(ParseError::new(ErrorKind::BodyTooLarge, body_start));
            }
            end
        }
    };
    out.start = start;
    out.start_line_end = sl_end as u32;
    out.body_start = body_start as u32;
    out.body_end = body_end as u32;
    out.content_length = content_length;
    out.cl_conflict = cl_conflict;
    out.bare_lf = lf_ok && {
        let head = &buf[..body_start];
        memchr::memchr_iter(b'\n', head).any(|i| i == 0 || head[i - 1] != b'\r')
    };
    Ok(Status::Complete(()))
}

impl ParseError {
    fn within_name(mut self, name: HeaderName) -> Self {
        self.header = Some(name);
        self
    }
}

/// The start line of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartLine<'a> {
    /// `Method SP Request-URI SP SIP-Version`.
    Request {
        /// The method.
        method: Method<'a>,
        /// The Request-URI text (syntax-checked; use [`Message::request_uri`] for the parsed form).
        uri: &'a str,
        /// The SIP-Version.
        version: Version,
    },
    /// `SIP-Version SP Status-Code SP Reason-Phrase`.
    Response {
        /// The SIP-Version.
        version: Version,
        /// The Status-Code.
        code: u16,
        /// The Reason-Phrase (may be empty, may be UTF-8).
        reason: &'a str,
    },
}

/// One header line of a message: its name, its wire spelling, and its raw value (LWS trimmed at both
/// ends; internal folding kept).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header<'a> {
    name: HeaderName,
    raw_name: &'a str,
    value: &'a str,
    offset: usize,
}

impl<'a> Header<'a> {
    /// The known name (compact forms resolved), or `HeaderName::Other`.
    pub fn name(&self) -> HeaderName {
        self.name
    }
    /// The name exactly as on the wire (`v`, `VIA`, `X-Foo`).
    pub fn raw_name(&self) -> &'a str {
        self.raw_name
    }
    /// The canonical long name for known headers, the wire name for extension headers.
    pub fn long_name(&self) -> &'a str {
        if self.name == HeaderName::Other {
            self.raw_name
        } else {
            self.name.as_str()
        }
    }
    /// The raw value.
    pub fn value(&self) -> &'a str {
        self.value
    }
    /// Byte offset of the value from the start of the message.
    pub fn value_offset(&self) -> usize {
        self.offset
    }
}

/// A parsed SIP message borrowing its bytes.
///
/// Produced by [`parse`], [`parse_datagram`] or [`OwnedMessage::as_message`]. Header values are
/// slices of the input; typed views ([`Message::get`], [`Message::via`], ...) are parsed when asked for.
#[derive(Clone)]
pub struct Message<'a> {
    buf: &'a [u8],
    head: &'a str,
    idx: Cow<'a, Index>,
}

impl fmt::Debug for Message<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Message")
            .field("start_line", &self.start_line())
            .field(
                "headers",
                &self
                    .headers()
                    .map(|h| (h.raw_name, h.value))
                    .collect::<Vec<_>>(),
            )
            .field("body_len", &self.body().len())
            .finish()
    }
}

impl<'a> Message<'a> {
    /// Cuts the buffer to the message and checks the header section is UTF-8.
    fn finish(&mut self, end: usize) -> Result<(), ParseError> {
        self.buf = &self.buf[..end];
        self.head = check_head(self.buf, &self.idx)?;
        Ok(())
    }

    /// The message bytes (start line to end of body).
    pub fn as_bytes(&self) -> &'a [u8] {
        self.buf
    }
    /// Length of the message in bytes.
    pub fn len(&self) -> usize {
        self.buf.len()
    }
    /// Always false: a parsed message has at least a start line.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }
    /// The start line.
    pub fn start_line(&self) -> StartLine<'a> {
        match self.idx.start {
            StartIdx::Request {
                method_end,
                uri,
                version,
            } => StartLine::Request {
                method: Method::from_token(&self.head[..method_end as usize]),
                uri: &self.head[uri.0 as usize..uri.1 as usize],
                version,
            },
            StartIdx::Response {
                version,
                code,
                reason,
            } => StartLine::Response {
                version,
                code,
                reason: &self.head[reason.0 as usize..reason.1 as usize],
            },
        }
    }
    /// The start line text without its CRLF.
    pub fn start_line_str(&self) -> &'a str {
        &self.head[..self.idx.start_line_end as usize]
    }
    /// True for a request.
    pub fn is_request(&self) -> bool {
        matches!(self.idx.start, StartIdx::Request { .. })
    }
    /// The method of a request, `None` for a response.
    pub fn method(&self) -> Option<Method<'a>> {
        match self.idx.start {
            StartIdx::Request { method_end, .. } => {
                Some(Method::from_token(&self.head[..method_end as usize]))
            }
            _ => None,
        }
    }
    /// The Request-URI text of a request.
    pub fn request_uri_str(&self) -> Option<&'a str> {
        match self.idx.start {
            StartIdx::Request { uri, .. } => Some(&self.head[uri.0 as usize..uri.1 as usize]),
            _ => None,
        }
    }
    /// The parsed Request-URI of a request (checked when the message was parsed).
    pub fn request_uri(&self) -> Option<Uri<'a>> {
        self.request_uri_str().and_then(|s| Uri::parse(s).ok())
    }
    /// The status code of a response.
    pub fn status(&self) -> Option<u16> {
        match self.idx.start {
            StartIdx::Response { code, .. } => Some(code),
            _ => None,
        }
    }
    /// The Reason-Phrase of a response.
    pub fn reason(&self) -> Option<&'a str> {
        match self.idx.start {
            StartIdx::Response { reason, .. } => {
                Some(&self.head[reason.0 as usize..reason.1 as usize])
            }
            _ => None,
        }
    }
    /// The SIP-Version of the start line.
    pub fn version(&self) -> Version {
        match self.idx.start {
            StartIdx::Request { version, .. } | StartIdx::Response { version, .. } => version,
        }
    }
    /// The body bytes, exactly as received.
    pub fn body(&self) -> &'a [u8] {
        &self.buf[self.idx.body_start as usize..self.idx.body_end as usize]
    }
    /// Byte offset where the body starts.
    pub fn body_offset(&self) -> usize {
        self.idx.body_start as usize
    }
    /// The Content-Length value used for framing, if any.
    pub fn content_length(&self) -> Option<u32> {
        self.idx.content_length
    }
    /// True when two Content-Length headers disagreed (RFC 4475 §3.3.9); the body then ran to the end
    /// of the datagram and [`crate::validate()`] rejects the message.
    pub fn content_length_conflict(&self) -> bool {
        self.idx.cl_conflict
    }
    /// Number of header lines.
    pub fn header_count(&self) -> usize {
        self.idx.headers.len()
    }

    #[inline]
    fn mk(&self, h: &HIdx) -> Header<'a> {
        Header {
            name: h.name,
            raw_name: &self.head[h.start()..h.name_end()],
            value: &self.head[h.value_start()..h.value_end()],
            offset: h.value_start(),
        }
    }
    /// All header lines in wire order.
    pub fn headers(&self) -> impl Iterator<Item = Header<'a>> + '_ {
        self.idx.headers.iter().map(move |h| self.mk(h))
    }
    /// The `i`-th header line.
    pub fn header_at(&self, i: usize) -> Option<Header<'a>> {
        self.idx.headers.get(i).map(|h| self.mk(h))
    }
    /// The raw value of the first header called `name`.
    pub fn header(&self, name: HeaderName) -> Option<&'a str> {
        self.idx
            .headers
            .find(|h| h.name == name)
            .map(|h| self.mk(h).value)
    }
    /// The raw value of the first header whose name is `name` (case-insensitive; compact forms of
    /// known headers match too).
    pub fn header_str(&self, name: &str) -> Option<&'a str> {
        self.headers_named(name).next().map(|h| h.value)
    }
    /// All header lines called `name` (case-insensitive; compact forms of known headers match too).
    pub fn headers_named<'s>(&'s self, name: &'s str) -> impl Iterator<Item = Header<'a>> + 's {
        let known = HeaderName::from_bytes(name.as_bytes());
        self.headers().filter(move |h| {
            if known != HeaderName::Other {
                h.name == known
            } else {
                h.name == HeaderName::Other && h.raw_name.eq_ignore_ascii_case(name)
            }
        })
    }
    /// All header lines with this known name, in order.
    pub fn headers_of(&self, name: HeaderName) -> impl Iterator<Item = Header<'a>> + '_ {
        self.idx
            .headers
            .iter()
            .filter(move |h| h.name == name)
            .map(move |h| self.mk(h))
    }
    /// True when at least one header has this name.
    pub fn has(&self, name: HeaderName) -> bool {
        self.idx.headers.find(|h| h.name == name).is_some()
    }
    /// The comma-separated elements of every header with this name (RFC 3261 §7.3.1), as
    /// `(offset in message, element)`; an empty element is yielded empty so callers can reject it.
    pub fn list(&self, name: HeaderName) -> impl Iterator<Item = (usize, &'a str)> + '_ {
        self.headers_of(name)
            .flat_map(|h| CommaSplit::new(h.value).map(move |(o, e)| (h.offset + o, e)))
    }

    /// The first value of a typed header: for list headers, the first element of the first line.
    pub fn get<T: TypedHeader<'a>>(&self) -> Result<Option<T>, ParseError> {
        let Some(h) = self
            .idx
            .headers
            .find(|h| h.name == T::NAME && (!T::LIST || h.value_end() > h.value_start()))
            .map(|h| self.mk(h))
        else {
            return Ok(None);
        };
        if T::LIST && memchr::memchr(b',', h.value.as_bytes()).is_some() {
            let (o, e) = CommaSplit::new(h.value).next().unwrap_or((0, ""));
            if e.is_empty() {
                return Err(ParseError::syntax("list element", h.offset + o).within(T::NAME, 0));
            }
            T::parse(e)
                .map(Some)
                .map_err(|err| err.within(T::NAME, h.offset + o))
        } else {
            T::parse(h.value)
                .map(Some)
                .map_err(|err| err.within(T::NAME, h.offset))
        }
    }

    /// Every value of a typed header, across lines and (for list headers) comma-separated elements.
    pub fn get_all<T: TypedHeader<'a>>(
        &self,
    ) -> impl Iterator<Item = Result<T, ParseError>> + use<'_, 'a, T> {
        self.headers_of(T::NAME).flat_map(|h| {
            // an empty list header (`Accept:`) has no elements (RFC 3261 §25.1 `[ ... ]` lists)
            let elems: SmallVec<[(usize, &'a str); 4]> = if !T::LIST {
                smallvec::smallvec![(0, h.value)]
            } else if h.value.is_empty() {
                SmallVec::new()
            } else if memchr::memchr(b',', h.value.as_bytes()).is_none() {
                smallvec::smallvec![(0, h.value)]
            } else {
                CommaSplit::new(h.value).collect()
            };
            elems.into_iter().map(move |(o, e)| {
                if e.is_empty() {
                    Err(ParseError::syntax("list element", h.offset + o).within(T::NAME, 0))
                } else {
                    T::parse(e).map_err(|err| err.within(T::NAME, h.offset + o))
                }
            })
        })
    }

    /// All Via values, topmost first.
    pub fn via(&self) -> impl Iterator<Item = Result<Via<'a>, ParseError>> + '_ {
        self.get_all::<Via<'a>>()
    }
    /// `self.via().count()` without parsing the values: the number of Via list elements (an
    /// empty Via line has none; an empty element between commas counts, as the error `via`
    /// yields for it does).
    pub fn via_count(&self) -> usize {
        self.headers_of(HeaderName::Via)
            .map(|h| {
                if h.value.is_empty() {
                    0
                } else if memchr::memchr(b',', h.value.as_bytes()).is_none() {
                    1
                } else {
                    CommaSplit::new(h.value).count()
                }
            })
            .sum()
    }
    /// The typed values kept with this message's index, `None` for a message parsed on its own
    /// ([`parse_datagram`], [`parse`]) that nothing was kept for yet: such a message parses on
    /// each ask (keeping would cost it an allocation; it has no other holder to share with).
    /// A view of an [`OwnedMessage`] always keeps.
    #[inline]
    fn kept(&self) -> Option<&Values> {
        match &self.idx {
            Cow::Borrowed(i) => Some(i.parsed.values()),
            Cow::Owned(i) => i.parsed.0.get().map(|v| &**v),
        }
    }
    /// The topmost Via. Parsed on the first ask and kept with the message (later asks of any
    /// view of the same [`OwnedMessage`] rebuild it from offsets).
    pub fn top_via(&self) -> Result<Option<Via<'a>>, ParseError> {
        let head = self.head;
        let Some(values) = self.kept() else {
            return self.get::<Via<'a>>();
        };
        let kept = values.top_via.get_or_init(|| match self.get::<Via<'a>>() {
            Ok(None) => Kept::Absent,
            Ok(Some(v)) => v.spans_in(head).map_or(Kept::Parse, Kept::Value),
            Err(_) => Kept::Parse,
        });
        match kept {
            Kept::Absent => return Ok(None),
            Kept::Value(v) => {
                if let Some(v) = v.get(head) {
                    return Ok(Some(v));
                }
            }
            Kept::Parse => {}
        }
        self.get::<Via<'a>>()
    }
    /// From (RFC 3261 §20.20).
    pub fn from(&self) -> Result<Option<NameAddrHeader<'a>>, ParseError> {
        self.get::<crate::headers::From<'a>>()
            .map(|o| o.map(|f| f.0))
    }
    /// To (RFC 3261 §20.39).
    pub fn to(&self) -> Result<Option<NameAddrHeader<'a>>, ParseError> {
        self.get::<crate::headers::To<'a>>().map(|o| o.map(|t| t.0))
    }
    /// The `tag` of From, read without parsing the URI ([`NameAddrHeader::parse_tag`]): for a
    /// message whose From parses, `self.from().ok().flatten().and_then(|f| f.tag())`, at a
    /// fraction of the cost. `None` as well when From is missing or malformed (but for a fault
    /// in its URI only: [`crate::validate()`] rejects such a message).
    pub fn from_tag(&self) -> Option<&'a str> {
        NameAddrHeader::parse_tag(self.header(HeaderName::From)?)
            .ok()
            .flatten()
    }
    /// The `tag` of To, as [`Message::from_tag`]: for a message whose To parses,
    /// `self.to().ok().flatten().and_then(|t| t.tag())` (a request with one is in a dialog).
    pub fn to_tag(&self) -> Option<&'a str> {
        NameAddrHeader::parse_tag(self.header(HeaderName::To)?)
            .ok()
            .flatten()
    }
    /// Call-ID.
    pub fn call_id(&self) -> Result<Option<CallId<'a>>, ParseError> {
        self.get::<CallId<'a>>()
    }
    /// CSeq. Parsed on the first ask and kept with the message, as [`Message::top_via`].
    pub fn cseq(&self) -> Result<Option<CSeq<'a>>, ParseError> {
        let head = self.head;
        let Some(values) = self.kept() else {
            return self.get::<CSeq<'a>>();
        };
        let kept = values.cseq.get_or_init(|| match self.get::<CSeq<'a>>() {
            Ok(None) => Kept::Absent,
            Ok(Some(c)) => {
                let method = match c.method.known() {
                    Ok(m) => Some(Ok(m)),
                    Err(t) => Span::of(head, t).map(Err),
                };
                method.map_or(Kept::Parse, |method| {
                    Kept::Value(CSeqSpans { seq: c.seq, method })
                })
            }
            Err(_) => Kept::Parse,
        });
        match *kept {
            Kept::Absent => return Ok(None),
            Kept::Value(CSeqSpans { seq, method }) => match method {
                Ok(m) => return Ok(Some(CSeq { seq, method: m })),
                Err(t) => {
                    if let Some(t) = t.get(head) {
                        return Ok(Some(CSeq {
                            seq,
                            method: Method::Other(t),
                        }));
                    }
                }
            },
            Kept::Parse => {}
        }
        self.get::<CSeq<'a>>()
    }
    /// All Contact values.
    pub fn contacts(&self) -> impl Iterator<Item = Result<Contact<'a>, ParseError>> + '_ {
        self.get_all::<Contact<'a>>()
    }
    /// Max-Forwards.
    pub fn max_forwards(&self) -> Result<Option<u8>, ParseError> {
        self.get::<crate::headers::MaxForwards>()
            .map(|o| o.map(|m| m.0))
    }

    /// Starts a splicing edit of this message (see [`crate::Edit`]).
    pub fn edit(&self) -> crate::Edit<'a, '_> {
        crate::Edit::new(self)
    }

    /// Copies the message into an [`OwnedMessage`].
    pub fn to_owned_message(&self) -> OwnedMessage {
        OwnedMessage {
            buf: Bytes::copy_from_slice(self.buf),
            idx: Arc::new(self.idx.clone().into_owned()),
        }
    }

    pub(crate) fn index(&self) -> &Index {
        &self.idx
    }
    pub(crate) fn head(&self) -> &'a str {
        self.head
    }
}

/// The header section as text. An all-ASCII section (the usual case, checked 64 bytes at a time)
/// needs no UTF-8 decoding; otherwise `simdutf8` checks it (measured 300 fewer instructions per
/// bench message than `std::str::from_utf8`), and an invalid section is checked again by `std` for
/// the position of the first bad byte.
fn check_head<'a>(buf: &'a [u8], idx: &Index) -> Result<&'a str, ParseError> {
    let head = &buf[..idx.body_start as usize];
    if let Some(s) = ascii_str(head) {
        return Ok(s);
    }
    if let Ok(s) = simdutf8::basic::from_utf8(head) {
        return Ok(s);
    }
    std::str::from_utf8(head).map_err(|e| {
        let at = e.valid_up_to();
        let mut err = ParseError::new(ErrorKind::HeaderValue, at);
        err.header = idx
            .headers
            .iter()
            .find(|h| (h.start()..h.end()).contains(&at))
            .map(|h| h.name);
        err
    })
}

/// `b` (a few dozen bytes) as text when it is all ASCII: std's word-at-a-time `is_ascii` is
/// cheaper than a UTF-8 decode for strings this short.
#[inline]
#[allow(unsafe_code)]
fn short_ascii_str(b: &[u8]) -> Option<&str> {
    if !b.is_ascii() {
        return None;
    }
    // SAFETY: every byte of `b` is below 0x80 (checked just above), and ASCII is valid UTF-8
    Some(unsafe { std::str::from_utf8_unchecked(b) })
}

/// `b` as text when it is all ASCII.
#[inline]
#[allow(unsafe_code)]
fn ascii_str(b: &[u8]) -> Option<&str> {
    if !is_ascii(b) {
        return None;
    }
    // SAFETY: every byte of `b` is below 0x80 (checked just above), and ASCII is valid UTF-8
    Some(unsafe { std::str::from_utf8_unchecked(b) })
}

impl fmt::Display for Message<'_> {
    /// Writes the message as received; a non-UTF-8 body is written lossily.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.head)?;
        f.write_str(&String::from_utf8_lossy(self.body()))
    }
}

/// A parsed message that owns its bytes (a `Bytes` buffer, shared and cheap to clone).
///
/// The index is behind an `Arc` as well: a clone is two reference counts, a move 40 bytes (the
/// index is ≈ 600), and every clone shares the typed values kept on the first ask.
#[derive(Clone)]
pub struct OwnedMessage {
    buf: Bytes,
    idx: Arc<Index>,
}

impl fmt::Debug for OwnedMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.as_message(), f)
    }
}

impl OwnedMessage {
    /// Parses a datagram held in `Bytes` without copying it. Bytes past the message are dropped.
    pub fn parse_datagram(buf: Bytes) -> Result<OwnedMessage, ParseError> {
        Self::parse_datagram_with(buf, &ParserConfig::default())
    }
    /// [`OwnedMessage::parse_datagram`] with a configuration.
    pub fn parse_datagram_with(buf: Bytes, cfg: &ParserConfig) -> Result<OwnedMessage, ParseError> {
        let mut idx = Index::empty();
        if let Status::Partial(_) = parse_index(&buf, cfg, Mode::Datagram, &mut idx)? {
            return Err(ParseError::new(ErrorKind::UnterminatedHeaders, buf.len()));
        }
        let buf = buf.slice(..idx.body_end as usize);
        check_head(&buf, &idx)?;
        Ok(OwnedMessage {
            buf,
            idx: Arc::new(idx),
        })
    }
    /// Parses a complete stream message (Content-Length required) held in `Bytes`.
    pub fn parse(buf: Bytes) -> Result<OwnedMessage, ParseError> {
        Self::parse_with(buf, &ParserConfig::default())
    }
    /// [`OwnedMessage::parse`] with a configuration.
    pub fn parse_with(buf: Bytes, cfg: &ParserConfig) -> Result<OwnedMessage, ParseError> {
        let mut idx = Index::empty();
        if let Status::Partial(_) = parse_index(&buf, cfg, Mode::Stream, &mut idx)? {
            return Err(ParseError::new(ErrorKind::UnterminatedHeaders, buf.len()));
        }
        let buf = buf.slice(..idx.body_end as usize);
        check_head(&buf, &idx)?;
        Ok(OwnedMessage {
            buf,
            idx: Arc::new(idx),
        })
    }
    /// A borrowed view with the full typed API.
    pub fn as_message(&self) -> Message<'_> {
        // The header section was checked as UTF-8 when this value was built.
        let head_bytes = &self.buf[..self.idx.body_start as usize];
        let head = ascii_str(head_bytes)
            .unwrap_or_else(|| simdutf8::basic::from_utf8(head_bytes).unwrap_or(""));
        Message {
            buf: &self.buf,
            head,
            idx: Cow::Borrowed(&*self.idx),
        }
    }
    /// The message bytes.
    pub fn bytes(&self) -> &Bytes {
        &self.buf
    }
    /// [`Message::is_request`], without making a view (no check of the header section's text).
    pub fn is_request(&self) -> bool {
        matches!(self.idx.start, StartIdx::Request { .. })
    }
    /// [`Message::status`], without making a view.
    pub fn status(&self) -> Option<u16> {
        match self.idx.start {
            StartIdx::Response { code, .. } => Some(code),
            _ => None,
        }
    }
    /// [`Message::method`], without making a view (only the method token is read as text).
    pub fn method(&self) -> Option<Method<'_>> {
        match self.idx.start {
            StartIdx::Request { method_end, .. } => {
                let token = self.buf.get(..method_end as usize)?;
                // the start line was checked as text when this value was built
                Some(Method::from_token(std::str::from_utf8(token).ok()?))
            }
            _ => None,
        }
    }
    /// The body as a zero-copy `Bytes` slice.
    pub fn body_bytes(&self) -> Bytes {
        self.buf
            .slice(self.idx.body_start as usize..self.idx.body_end as usize)
    }
}

/// How one header line of a message written from the pieces of a parsed one was made: the
/// input of [`OwnedMessage::assemble`].
#[derive(Debug, Clone, Copy)]
pub(crate) enum LinePiece {
    /// Header line `i` of the original message, copied byte for byte.
    Copied(u32),
    /// `name ": " value CRLF`, written: the lengths of the name and of the value.
    Written { name_len: u32, value_len: u32 },
}

impl OwnedMessage {
    /// The message `buf` holds, indexed from how it was written instead of scanned again: its
    /// start line of `sl_end` bytes (then CRLF), the header lines `lines` (start offset and
    /// piece), CRLF and the body of `orig`, which `buf` ends with. The result is exactly what
    /// [`OwnedMessage::parse`] (stream mode, default [`ParserConfig`]) gives for `buf`; `None`
    /// whenever that is not certain (a written line the parser could read otherwise, a limit,
    /// a Content-Length that is not the original body's), and the caller then parses.
    ///
    /// `orig` must be the index of a message without bare-LF line ends whose Content-Length is
    /// its body length without conflict, each `Copied` line one of its lines, and every Content-
    /// Length line of the result a copied one.
    ///
    /// `same_start`: the start line is `orig`'s, copied (its parse is then `orig`'s, unless the
    /// default limits refuse it).
    pub(crate) fn assemble(
        buf: Bytes,
        sl_end: usize,
        same_start: bool,
        orig: &Index,
        lines: &[(u32, LinePiece)],
        head: Option<&ViaHead>,
    ) -> Option<OwnedMessage> {
        let lim = Limits::default();
        let body_len = (orig.body_end - orig.body_start) as usize;
        if buf.len() > lim.max_message_size
            || body_len > lim.max_body_size
            || lines.len() > lim.max_headers
            || orig.bare_lf
            || orig.cl_conflict
            || orig.content_length != Some(body_len as u32)
            || buf.get(sl_end..sl_end + 2) != Some(b"\r\n")
        {
            return None;
        }
        // the start line as `orig` read it (the only limit it depends on is the URI length)
        let copied = match orig.start {
            _ if !same_start || sl_end != orig.start_line_end as usize => None,
            StartIdx::Request { uri: (a, b), .. } if (b - a) as usize > lim.max_uri_len => None,
            s => Some(s),
        };
        let start = match copied {
            Some(s) => s,
            None => {
                if memchr::memchr2(b'\r', b'\n', &buf[..sl_end]).is_some() {
                    return None;
                }
                parse_start_line(&buf, sl_end, &ParserConfig::default()).ok()?
            }
        };
        let max_line = lim.max_header_len.min(u16::MAX as usize);
        let mut idx = Index::empty();
        let mut pos = sl_end + 2;
        let mut cl_lines = 0;
        for &(at, piece) in lines {
            let at = at as usize;
            if at != pos {
                return None;
            }
            let h = match piece {
                LinePiece::Copied(i) => {
                    let o = orig.headers.get(i as usize)?;
                    let len = o.end - o.start;
                    if o.name == HeaderName::ContentLength {
                        cl_lines += 1;
                    }
                    HIdx {
                        start: at as u32,
                        end: at as u32 + len,
                        ..*o
                    }
                }
                LinePiece::Written {
                    name_len,
                    value_len,
                } => {
                    let h =
                        written_line(&buf, at, name_len as usize, value_len as usize, max_line)?;
                    if h.name == HeaderName::ContentLength {
                        return None;
                    }
                    h
                }
            };
            if h.end() - h.start() > max_line {
                return None;
            }
            pos = h.end();
            idx.headers.push(h);
        }
        if cl_lines == 0 || buf.get(pos..pos + 2) != Some(b"\r\n") {
            return None;
        }
        let body_start = pos + 2;
        if buf.len() != body_start + body_len {
            return None;
        }
        idx.start = start;
        idx.start_line_end = sl_end as u32;
        idx.body_start = body_start as u32;
        idx.body_end = buf.len() as u32;
        idx.content_length = orig.content_length;
        idx.parsed = Parsed::carried(orig, &idx, lines, &buf, head);
        Some(OwnedMessage {
            buf,
            idx: Arc::new(idx),
        })
    }
}

/// One header line a builder wrote (see [`OwnedMessage::assemble_written`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Written {
    /// Where the line starts.
    pub(crate) at: u32,
    /// The length of its name.
    pub(crate) name_len: u16,
    /// The length of its value.
    pub(crate) value_len: u32,
    /// The name as [`HeaderName::from_bytes`] reads it.
    pub(crate) name: HeaderName,
}

/// The line `name ": " value CRLF` written at `at` in `buf` (`nl` and `vl` bytes of name and
/// value), indexed as the parser indexes it: `None` unless the parser is certain to read
/// exactly this name and value (a token name, `": "`, a value on one line without blanks at its
/// ends, CRLF, within `max_line`).
fn written_line(buf: &[u8], at: usize, nl: usize, vl: usize, max_line: usize) -> Option<HIdx> {
    let name = buf.get(at..at + nl)?;
    let value = buf.get(at + nl + 2..at + nl + 2 + vl)?;
    let end = at + nl + 2 + vl + 2;
    let ws = |c: &u8| matches!(c, b' ' | b'\t');
    if !crate::scan::is_token(name)
        || buf.get(at + nl..at + nl + 2) != Some(b": ")
        || buf.get(end - 2..end) != Some(b"\r\n")
        || memchr::memchr2(b'\r', b'\n', value).is_some()
        || value.first().is_some_and(ws)
        || value.last().is_some_and(ws)
        || end - at > max_line
    {
        return None;
    }
    Some(HIdx {
        start: at as u32,
        end: end as u32,
        name_len: nl as u16,
        value_off: (nl + 2) as u16,
        value_back: 2,
        name: HeaderName::from_token(name),
    })
}

impl OwnedMessage {
    /// The message a builder wrote into `buf`, indexed from how it was written instead of
    /// scanned: its start line of `sl_end` bytes (then CRLF), the header lines `lines` (start,
    /// name and value lengths of each `name ": " value CRLF` line, in order, the last one the
    /// `Content-Length` line of the body), CRLF, then a body of `body_len` bytes. The result is
    /// exactly what [`OwnedMessage::parse`] (stream mode, default [`ParserConfig`]) gives for
    /// `buf`; `None` whenever that is not certain (lines that do not follow each other, a
    /// Content-Length line but the last, a limit), and the caller then parses.
    ///
    /// The writer vouches for what it checked as it wrote (the parse checks it, this does
    /// not): the header section of `buf` is text (a builder writes it as a `String`), and each
    /// line is plainly `name ": " value CRLF` — `name` a token read as [`Written::name`], the
    /// value on one line without a blank at either end.
    pub(crate) fn assemble_written(
        buf: Bytes,
        sl_end: usize,
        lines: &[Written],
        body_len: usize,
    ) -> Option<OwnedMessage> {
        let lim = Limits::default();
        if buf.len() > lim.max_message_size
            || body_len > lim.max_body_size
            || lines.len() > lim.max_headers
            || buf.get(sl_end..sl_end + 2) != Some(b"\r\n")
            || memchr::memchr2(b'\r', b'\n', &buf[..sl_end]).is_some()
        {
            return None;
        }
        let start = parse_start_line(&buf, sl_end, &ParserConfig::default()).ok()?;
        let max_line = lim.max_header_len.min(u16::MAX as usize);
        let mut idx = Index::empty();
        let mut pos = sl_end + 2;
        let last = lines.len().checked_sub(1)?;
        for (i, w) in lines.iter().enumerate() {
            let at = w.at as usize;
            if at != pos {
                return None;
            }
            let (nl, vl) = (usize::from(w.name_len), w.value_len as usize);
            let end = at + nl + 2 + vl + 2;
            if end - at > max_line || end > buf.len() {
                return None;
            }
            let h = HIdx {
                start: at as u32,
                end: end as u32,
                name_len: nl as u16,
                value_off: (nl + 2) as u16,
                value_back: 2,
                name: w.name,
            };
            // one Content-Length line, the last: the body's length in decimal
            if (h.name == HeaderName::ContentLength) != (i == last)
                || (i == last
                    && buf.get(h.value_start()..h.value_end())
                        != Some(crate::decimal(&mut [0; 20], body_len as u64)))
            {
                return None;
            }
            pos = h.end();
            idx.headers.push(h);
        }
        if buf.get(pos..pos + 2) != Some(b"\r\n") {
            return None;
        }
        let body_start = pos + 2;
        if buf.len() != body_start + body_len {
            return None;
        }
        idx.start = start;
        idx.start_line_end = sl_end as u32;
        idx.body_start = body_start as u32;
        idx.body_end = buf.len() as u32;
        idx.content_length = Some(u32::try_from(body_len).ok()?);
        Some(OwnedMessage {
            buf,
            idx: Arc::new(idx),
        })
    }
}

impl OwnedMessage {
    /// The message with `bytes[start..end]` — a span inside one header value — replaced by
    /// `with`, indexed by shifting this message's index instead of parsing again: exactly what
    /// [`OwnedMessage::parse_datagram_with`] gives for the new bytes with `cfg`, the
    /// configuration this message was read with. `None` when that is not certain (the span is
    /// not inside one value, `with` holds a line break, the value is folded, a blank would be
    /// trimmed at an end of the value, a Content-Length value, a bare-LF message, a limit); the
    /// caller then parses.
    ///
    /// A transport uses it to add `received`/`rport` to the top Via (RFC 3581).
    pub fn replace_in_value(
        &self,
        start: usize,
        end: usize,
        with: &[u8],
        cfg: &ParserConfig,
    ) -> Option<OwnedMessage> {
        let idx = &self.idx;
        let lim = &cfg.limits;
        if start > end
            || idx.bare_lf
            || self.buf.len() != idx.body_end as usize
            || memchr::memchr2(b'\r', b'\n', with).is_some()
        {
            return None;
        }
        let k = idx
            .headers
            .iter()
            .position(|h| h.value_start() <= start && end <= h.value_end())?;
        let h = idx.headers[k];
        let ws = |c: &u8| matches!(c, b' ' | b'\t');
        if h.name == HeaderName::ContentLength
            || (start == h.value_start() && with.first().is_none_or(ws))
            || (end == h.value_end() && with.last().is_none_or(ws))
            // a folded value: a splice next to a line break could end the folding
            || memchr::memchr2(b'\r', b'\n', &self.buf[h.value_start()..h.value_end()]).is_some()
        {
            return None;
        }
        let grow = with.len() as i64 - (end - start) as i64;
        let new_len = (self.buf.len() as i64 + grow) as usize;
        let line = (h.end - h.start) as i64 + grow;
        if new_len > lim.max_message_size
            || line > lim.max_header_len.min(u16::MAX as usize) as i64
            || new_len > u32::MAX as usize
        {
            return None;
        }
        let shift = |x: u32| (i64::from(x) + grow) as u32;
        let mut out = Vec::with_capacity(new_len);
        out.extend_from_slice(&self.buf[..start]);
        out.extend_from_slice(with);
        out.extend_from_slice(&self.buf[end..]);
        // the lines are the old ones, those from line `k` on moved by `grow` (a copy of the
        // list, then the moved ones fixed in place)
        let mut headers = idx.headers.clone();
        headers.shift_from(k, grow);
        let n = Index {
            start: idx.start,
            start_line_end: idx.start_line_end,
            headers,
            body_start: shift(idx.body_start),
            body_end: shift(idx.body_end),
            content_length: idx.content_length,
            cl_conflict: idx.cl_conflict,
            bare_lf: idx.bare_lf,
            parsed: Parsed::default(),
        };
        // the values kept are offsets into the old bytes: only a CSeq without any (a known
        // method, or none) outside the replaced line stays
        if h.name != HeaderName::CSeq {
            if let Some(c @ (Kept::Absent | Kept::Value(CSeqSpans { method: Ok(_), .. }))) =
                idx.parsed.0.get().and_then(|v| v.cseq.get())
            {
                let _ = n.parsed.values().cseq.set(*c);
            }
        }
        Some(OwnedMessage {
            buf: Bytes::from(out),
            idx: Arc::new(n),
        })
    }
}

impl OwnedMessage {
    /// The receive-side Via fix of RFC 3261 §18.2.1 and RFC 3581 §4 on this request's top Via
    /// (the first element of the first non-empty Via line): each value-less `rport` parameter
    /// filled in with `rport` (when given) and `;received=<received>` appended (when given), the
    /// port and address written as their `Display` writes them (an IPv6 address in brackets);
    /// the rest of the message keeps its bytes.
    ///
    /// The new message is indexed as [`OwnedMessage::replace_in_value`] indexes a splice (the
    /// index [`OwnedMessage::parse_datagram_with`] gives for the new bytes with `cfg`, the
    /// configuration this message was read with), and keeps its new top Via without parsing it:
    /// the one it had, its parameters grown and its branch moved past what was written before
    /// it. `None` when that is not certain — the top Via was not asked for yet or did not parse,
    /// its parameters hold a blank or a quote, something but a comma follows them in the value,
    /// or `replace_in_value` declines — and when nothing is asked: the caller splices and parses.
    pub fn with_top_via_received(
        &self,
        received: Option<std::net::IpAddr>,
        rport: Option<u16>,
        cfg: &ParserConfig,
    ) -> Option<OwnedMessage> {
        let Some(Kept::Value(v)) = self.idx.parsed.0.get().and_then(|p| p.top_via.get()) else {
            return None;
        };
        let head = self.buf.get(..self.idx.body_start as usize)?;
        let (span, with, spans) = v.with_received(head, received, rport)?;
        // the parameters end the element: the value ends there, or the next element starts
        let h = self
            .idx
            .headers
            .get(top_line(&self.idx.headers, HeaderName::Via, true)?)?;
        if span.start() < h.value_start()
            || span.end() > h.value_end()
            || (span.end() < h.value_end() && self.buf[span.end()] != b',')
        {
            return None;
        }
        let m = self.replace_in_value(span.start(), span.end(), &with, cfg)?;
        let _ = m.idx.parsed.values().top_via.set(Kept::Value(spans));
        Some(m)
    }
}

/// The buffer offset of the value of the line a typed ask of `name` reads in `h` (the first
/// line of that name; for a list header the first with a non-empty value), and that value's
/// bytes in `buf`.
fn top_value<'b>(
    h: &HeaderList,
    buf: &'b [u8],
    name: HeaderName,
    list: bool,
) -> Option<(usize, &'b [u8])> {
    let l = h.get(top_line(h, name, list)?)?;
    Some((l.value_start(), buf.get(l.value_start()..l.value_end())?))
}

impl Index {
    /// Keeps with this index (of the bytes `buf`) the top Via and CSeq that `twin` (of the bytes
    /// `twin_buf`) has kept as values, each where the line an ask reads holds here exactly the
    /// value it holds there and nothing is kept here yet: the same text parses to the same
    /// value, at offsets moved by the distance between the two lines.
    fn keep_values_of(&self, buf: &[u8], twin: &Index, twin_buf: &[u8]) {
        let Some(theirs) = twin.parsed.0.get() else {
            return;
        };
        let by = |name: HeaderName, list: bool| -> Option<i64> {
            let (a, x) = top_value(&self.headers, buf, name, list)?;
            let (b, y) = top_value(&twin.headers, twin_buf, name, list)?;
            (x == y).then(|| a as i64 - b as i64)
        };
        if let Some(Kept::Value(v)) = theirs.top_via.get() {
            let mine = self.parsed.0.get();
            if mine.is_none_or(|m| m.top_via.get().is_none()) {
                if let Some(v) = by(HeaderName::Via, true).and_then(|d| v.shifted(d)) {
                    let _ = self.parsed.values().top_via.set(Kept::Value(v));
                }
            }
        }
        if let Some(Kept::Value(c)) = theirs.cseq.get() {
            let mine = self.parsed.0.get();
            if mine.is_none_or(|m| m.cseq.get().is_none()) {
                if let Some(c) = by(HeaderName::CSeq, false).and_then(|d| c.shifted(d)) {
                    let _ = self.parsed.values().cseq.set(Kept::Value(c));
                }
            }
        }
    }
}

impl OwnedMessage {
    /// Keeps with this message the top Via and CSeq `twin` has kept (parsed on an ask), each
    /// where this message's line holds byte for byte the value of `twin`'s line and this
    /// message has not kept its own yet: a response copies the Via and CSeq lines of its
    /// request (RFC 3261 §8.2.6.2), and a proxy's response, once its own Via is popped
    /// (§16.7 step 3), has on top the Via of the request the proxy received. A later ask of this
    /// message then reads them from offsets instead of parsing them; what it answers is the
    /// same (the same text parses to the same value).
    pub fn keep_values_of(&self, twin: &OwnedMessage) {
        self.idx.keep_values_of(&self.buf, &twin.idx, &twin.buf);
    }
}

impl Index {
    /// What the index-copying shortcuts ([`OwnedMessage::with_line_above`],
    /// [`OwnedMessage::without_first_value`]) need to be sure of before they splice `buf`: no
    /// bare-LF or Content-Length fault, a Content-Length line that gives the body's exact length,
    /// nothing past the body, the body and Request-URI within the default limits, and the start
    /// line, the header lines and the empty line following each other with nothing but CRLFs
    /// between them (what an edit writes around the lines it copies). Answers the end of the last
    /// header line and the first line named `name` (none for [`HeaderName::Other`]).
    fn splice_layout(&self, buf: &[u8], name: HeaderName) -> Option<(usize, Option<usize>)> {
        let body_len = (self.body_end - self.body_start) as usize;
        let lim = Limits::default();
        if self.bare_lf
            || self.cl_conflict
            || self.content_length != Some(body_len as u32)
            || buf.len() != self.body_end as usize
            || body_len > lim.max_body_size
        {
            return None;
        }
        let sl_end = self.start_line_end as usize;
        if buf.get(sl_end..sl_end + 2) != Some(b"\r\n") {
            return None;
        }
        if let StartIdx::Request { uri: (a, b), .. } = self.start {
            if (b - a) as usize > lim.max_uri_len {
                return None;
            }
        }
        let mut pos = sl_end + 2;
        let mut k = None;
        let mut cl_lines = 0;
        // the inline lines and the overflow walked as two plain slices (no chained iterator:
        // this runs for every Route or Via a proxy pops and every Via a UA pushes)
        let (inline, more) = self.headers.slices();
        for (base, lines) in [(0, inline), (inline.len(), more)] {
            for (i, h) in lines.iter().enumerate() {
                if h.start() != pos {
                    return None;
                }
                pos = h.end();
                if k.is_none() && name != HeaderName::Other && h.name == name {
                    k = Some(base + i);
                }
                cl_lines += usize::from(h.name == HeaderName::ContentLength);
            }
        }
        if cl_lines == 0
            || buf.get(pos..pos + 2) != Some(b"\r\n")
            || self.body_start as usize != pos + 2
        {
            return None;
        }
        Some((pos, k))
    }
}

impl OwnedMessage {
    /// The message with the line `name: value` inserted above the first line of that header
    /// (at the top when there is none, or for an extension name), indexed by copying this
    /// message's index: exactly what `Edit::push_front(name, value)` then
    /// [`crate::Edit::to_owned_message`] give (the same bytes, index and kept top Via and
    /// CSeq). A user agent puts its Via on every request it sends (RFC 3261 §8.1.1.7).
    ///
    /// `None` when that is not certain (an edit then does it): a name that is not a token or is
    /// Content-Length, a value with a CR or LF or a blank at an end, a bare-LF or Content-Length
    /// fault in this message, bytes around the header lines other than CRLFs, a default limit.
    pub fn with_line_above(&self, name: &str, value: &str) -> Option<OwnedMessage> {
        self.line_above(name, value, None)
    }

    /// [`OwnedMessage::with_line_above`] of a Via `value` written as the front `head` then
    /// the request's parameters (`;branch=…`): the message keeps its new top Via with only the
    /// parameters read, the front parsed once for all the requests an element sends. What
    /// `with_line_above("Via", value)` gives; a value that does not start with `head` is simply
    /// parsed.
    pub fn with_via_above(&self, head: &ViaHead, value: &str) -> Option<OwnedMessage> {
        self.line_above("Via", value, Some(head))
    }

    fn line_above(&self, name: &str, value: &str, head: Option<&ViaHead>) -> Option<OwnedMessage> {
        let idx = &*self.idx;
        let buf = &self.buf[..];
        let lim = Limits::default();
        let ws = |c: &u8| matches!(c, b' ' | b'\t');
        let nb = name.as_bytes();
        let vb = value.as_bytes();
        if !crate::scan::is_token(nb)
            || memchr::memchr2(b'\r', b'\n', vb).is_some()
            || vb.first().is_some_and(ws)
            || vb.last().is_some_and(ws)
        {
            return None;
        }
        let known = HeaderName::from_token(nb);
        if known == HeaderName::ContentLength {
            return None;
        }
        // the new line goes above line `k`
        let (pos, k) = idx.splice_layout(buf, known)?;
        let k = k.unwrap_or(0);
        let at = idx.headers.get(k).map_or(pos, |h| h.start());
        let add = nb.len() + 2 + vb.len() + 2;
        let new_len = buf.len() + add;
        let max_line = lim.max_header_len.min(u16::MAX as usize);
        if new_len > lim.max_message_size
            || new_len > u32::MAX as usize
            || idx.headers.len() + 1 > lim.max_headers
            || add > max_line
        {
            return None;
        }
        let mut out = Vec::with_capacity(new_len);
        out.extend_from_slice(&buf[..at]);
        out.extend_from_slice(nb);
        out.extend_from_slice(b": ");
        out.extend_from_slice(vb);
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&buf[at..]);
        let mut n = Index::empty();
        let mut lines: SmallVec<[(u32, LinePiece); 32]> = SmallVec::new();
        let new_line = HIdx {
            start: at as u32,
            end: (at + add) as u32,
            name_len: nb.len() as u16,
            value_off: (nb.len() + 2) as u16,
            value_back: 2,
            name: known,
        };
        for (i, o) in idx.headers.iter().enumerate() {
            let mut o = *o;
            if i == k {
                lines.push((
                    new_line.start,
                    LinePiece::Written {
                        name_len: nb.len() as u32,
                        value_len: vb.len() as u32,
                    },
                ));
                n.headers.push(new_line);
            }
            if i >= k {
                o.start += add as u32;
                o.end += add as u32;
            }
            if o.end() - o.start() > max_line {
                return None;
            }
            lines.push((o.start, LinePiece::Copied(i as u32)));
            n.headers.push(o);
        }
        n.start = idx.start;
        n.start_line_end = idx.start_line_end;
        n.body_start = idx.body_start + add as u32;
        n.body_end = new_len as u32;
        n.content_length = idx.content_length;
        n.parsed = Parsed::carried(idx, &n, &lines, &out, head);
        Some(OwnedMessage {
            buf: Bytes::from(out),
            idx: Arc::new(n),
        })
    }
}

impl OwnedMessage {
    /// The message with the first value of its first `name` line removed (the whole line when
    /// that value is its only one), indexed by copying this message's index instead of
    /// rendering and indexing again: exactly the message `Edit::pop_first(name)` then
    /// [`crate::Edit::to_owned_message`] give (the same bytes, index and kept top Via and
    /// CSeq). A proxy pops its own Route (RFC 3261 §16.4) and its own Via (§16.7 step 3) from
    /// every message it forwards.
    ///
    /// `None` when that is not certain, or for `Content-Length` and extension names (an edit
    /// then does it): no such line, an empty or folded value, a line separator other than
    /// `": "` or blanks after the value of a line that keeps values, a bare-LF or Content-Length
    /// fault in this message, bytes around the header lines other than CRLFs, a default limit.
    pub fn without_first_value(&self, name: HeaderName) -> Option<OwnedMessage> {
        let idx = &*self.idx;
        let buf = &self.buf[..];
        let lim = Limits::default();
        if matches!(name, HeaderName::ContentLength | HeaderName::Other) {
            return None;
        }
        let (_, k) = idx.splice_layout(buf, name)?;
        let k = k?;
        let h = idx.headers[k];
        let value = std::str::from_utf8(buf.get(h.value_start()..h.value_end())?).ok()?;
        if value.is_empty() || memchr::memchr2(b'\r', b'\n', value.as_bytes()).is_some() {
            return None;
        }
        let mut parts = CommaSplit::new(value);
        parts.next()?;
        // the bytes that go: the whole line, or the value up to the second element
        let (cut_start, cut_end, kept_line) = match parts.next() {
            None => (h.start(), h.end(), false),
            Some((rest_at, _)) => {
                // the line an edit writes: the name as written, `": "`, the rest, CRLF
                let name_bytes = &buf[h.start()..h.name_end()];
                if h.value_off as usize != h.name_len as usize + 2
                    || buf.get(h.name_end()..h.name_end() + 2) != Some(b": ")
                    || h.value_back != 2
                    || rest_at == 0
                    || !crate::scan::is_token(name_bytes)
                    || HeaderName::from_token(name_bytes) != h.name
                    || value.as_bytes()[value.len() - 1].is_ascii_whitespace()
                {
                    return None;
                }
                (h.value_start(), h.value_start() + rest_at, true)
            }
        };
        let cut = cut_end - cut_start;
        let new_len = buf.len() - cut;
        let count = idx.headers.len() - usize::from(!kept_line);
        let max_line = lim.max_header_len.min(u16::MAX as usize);
        if new_len > lim.max_message_size || count > lim.max_headers {
            return None;
        }
        let mut out = Vec::with_capacity(new_len);
        out.extend_from_slice(&buf[..cut_start]);
        out.extend_from_slice(&buf[cut_end..]);
        let mut n = Index::empty();
        // the line pieces `Parsed::carried` reads, needed only when a Via or CSeq line changes
        let pieces = matches!(name, HeaderName::Via | HeaderName::CSeq);
        let mut lines: SmallVec<[(u32, LinePiece); 32]> = SmallVec::new();
        for (i, o) in idx.headers.iter().enumerate() {
            let mut o = *o;
            if i == k {
                if !kept_line {
                    continue;
                }
                o.end -= cut as u32;
                if pieces {
                    lines.push((
                        o.start,
                        LinePiece::Written {
                            name_len: u32::from(o.name_len),
                            value_len: (o.value_end() - o.value_start()) as u32,
                        },
                    ));
                }
            } else {
                if i > k {
                    o.start -= cut as u32;
                    o.end -= cut as u32;
                }
                if pieces {
                    lines.push((o.start, LinePiece::Copied(i as u32)));
                }
            }
            if o.end() - o.start() > max_line {
                return None;
            }
            n.headers.push(o);
        }
        n.start = idx.start;
        n.start_line_end = idx.start_line_end;
        n.body_start = idx.body_start - cut as u32;
        n.body_end = new_len as u32;
        n.content_length = idx.content_length;
        n.parsed = if pieces {
            Parsed::carried(idx, &n, &lines, &out, None)
        } else {
            Parsed::carried_around(idx, k, cut)
        };
        Some(OwnedMessage {
            buf: Bytes::from(out),
            idx: Arc::new(n),
        })
    }
}

impl OwnedMessage {
    /// True when [`OwnedMessage::parse_datagram_with`] of this message's bytes with `cfg` gives
    /// exactly this message: its bytes are the whole message, it has no bare-LF line end, and
    /// it is within `cfg`'s limits (size, headers, line length, Request-URI, body). A receiver
    /// handed this message in memory by an element of its own process may then take it as
    /// parsed; otherwise it parses the bytes (and gets the parse's answer, error included).
    ///
    /// Whatever configuration and mode (datagram, or stream with its Content-Length) this message
    /// was parsed or assembled with, the datagram parse of the same bytes indexes them the same
    /// way; only the limits and the bare-LF leniency can refuse them.
    pub fn is_datagram_parse_with(&self, cfg: &ParserConfig) -> bool {
        let i = &self.idx;
        let lim = &cfg.limits;
        let max_line = lim.max_header_len.min(u16::MAX as usize);
        let uri_ok = match i.start {
            StartIdx::Request { uri: (a, b), .. } => (b - a) as usize <= lim.max_uri_len,
            StartIdx::Response { .. } => true,
        };
        self.buf.len() == i.body_end as usize
            && !i.bare_lf
            && uri_ok
            && self.buf.len() <= lim.max_message_size
            && ((i.body_end - i.body_start) as usize) <= lim.max_body_size
            && i.headers.len() <= lim.max_headers
            && i.headers.iter().all(|h| h.end() - h.start() <= max_line)
    }
}

/// Everything a parse decides about a message, to compare two (tests of the paths that build an
/// index without scanning).
#[cfg(test)]
pub(crate) fn parse_facts(m: &OwnedMessage) -> String {
    let i = &m.idx;
    let lines: Vec<_> = i
        .headers
        .iter()
        .map(|h| {
            (
                h.start,
                h.end,
                h.name_len,
                h.value_off,
                h.value_back,
                h.name,
            )
        })
        .collect();
    format!(
        "{:?} {:?} {} {:?} {} {} {:?} {} {}",
        m.buf,
        i.start,
        i.start_line_end,
        lines,
        i.body_start,
        i.body_end,
        i.content_length,
        i.cl_conflict,
        i.bare_lf
    )
}

/// What the kept values of `m` say without parsing anything, as the `Debug` text of what
/// `get::<Via>()` / `get::<CSeq>()` would return: `None` for a value not kept (yet).
#[cfg(test)]
pub(crate) fn kept_facts(m: &OwnedMessage) -> (Option<String>, Option<String>) {
    let msg = m.as_message();
    let head = msg.head;
    let Some(values) = m.idx.parsed.0.get() else {
        return (None, None);
    };
    let via = match values.top_via.get() {
        Some(Kept::Absent) => Some(format!("{:?}", Ok::<Option<Via<'_>>, ParseError>(None))),
        Some(Kept::Value(v)) => Some(format!("{:?}", Ok::<_, ParseError>(v.get(head)))),
        _ => None,
    };
    let cseq = match values.cseq.get() {
        Some(Kept::Absent) => Some(format!("{:?}", Ok::<Option<CSeq<'_>>, ParseError>(None))),
        Some(Kept::Value(CSeqSpans { seq, method })) => {
            let method = match method {
                Ok(m) => Some(*m),
                Err(t) => t.get(head).map(Method::Other),
            };
            Some(format!(
                "{:?}",
                Ok::<_, ParseError>(method.map(|method| CSeq { seq: *seq, method }))
            ))
        }
        _ => None,
    };
    (via, cseq)
}

impl fmt::Display for OwnedMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.as_message(), f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Inputs with CR and LF around the 64-byte block edges and at the ends.
    fn line_end_inputs() -> Vec<Vec<u8>> {
        let mut v = Vec::new();
        for len in [0, 1, 2, 31, 32, 33, 63, 64, 65, 127, 128, 129, 200] {
            v.push(vec![b'a'; len]);
            for at in [0, 1, 15, 16, 31, 32, 62, 63, 64, 65, 127, 128, 150, 199] {
                if at < len {
                    for c in [b'\r', b'\n'] {
                        let mut b = vec![b'x'; len];
                        b[at] = c;
                        v.push(b.clone());
                        if at + 70 < len {
                            b[at + 70] = b'\n';
                            v.push(b);
                        }
                    }
                }
            }
        }
        // a pseudo-random mix
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let mut b = Vec::new();
        for _ in 0..700 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            b.push(match x % 23 {
                0 => b'\r',
                1 => b'\n',
                2 => 0x80 | (x >> 8) as u8,
                _ => b'a' + (x >> 16) as u8 % 26,
            });
        }
        v.push(b);
        v
    }

    fn check_finder<const AVX2: bool>() {
        for b in line_end_inputs() {
            let expect = |from: usize| memchr::memchr2(b'\r', b'\n', &b[from..]).map(|p| from + p);
            // every start position on a fresh finder
            for from in 0..=b.len() {
                assert_eq!(
                    EolFinder::<AVX2>::new(&b).find(from),
                    expect(from),
                    "from {from}"
                );
            }
            // the line loop's walk: each search starts past the last line end found
            let mut f = EolFinder::<AVX2>::new(&b);
            let mut from = 0;
            while from <= b.len() {
                let got = f.find(from);
                assert_eq!(got, expect(from), "walk from {from}");
                match got {
                    Some(at) => from = at + 1,
                    None => break,
                }
            }
            // a search behind the current block (the folded-line path)
            let mut f = EolFinder::<AVX2>::new(&b);
            if let Some(at) = f.find(b.len() / 2) {
                assert_eq!(f.find(0), expect(0));
                assert_eq!(f.find(at), Some(at));
            }
        }
    }

    #[test]
    fn line_end_finder_agrees_with_memchr2() {
        check_finder::<false>();
        #[cfg(target_arch = "x86_64")]
        if has_avx2() {
            check_finder::<true>();
        }
    }

    #[test]
    fn ascii_check_agrees_with_std() {
        for len in [0, 1, 31, 32, 63, 64, 65, 127, 128, 129, 191, 192, 300] {
            let b = vec![b'a'; len];
            assert!(is_ascii(&b));
            assert_eq!(ascii_str(&b).map(str::len), Some(len));
            for at in 0..len {
                let mut c = b.clone();
                c[at] = 0xc3;
                assert!(!is_ascii(&c), "len {len} at {at}");
                assert_eq!(ascii_str(&c), None);
                assert_eq!(short_ascii_str(&c), None);
            }
        }
    }

    /// The SSE2 and (when the CPU has it) AVX2 builds of the indexer give the same index and the
    /// same errors, at the same offsets.
    #[test]
    fn index_builds_agree() {
        let base = "INVITE sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK-1\r\nFrom: <sip:alice@example.com>;tag=1\r\nTo: <sip:bob@example.com>\r\nCall-ID: a@b\r\nCSeq: 1 INVITE\r\nSubject: folded\r\n  over two lines\r\nX-Long: ";
        let mut inputs: Vec<Vec<u8>> = Vec::new();
        for pad in 0..140 {
            let mut m = base.as_bytes().to_vec();
            m.extend(std::iter::repeat_n(b'v', pad));
            m.extend_from_slice(b"\r\nContent-Length: 4\r\n\r\nbody");
            inputs.push(m.clone());
            // bare LF, bare CR, truncation and a non-UTF-8 byte at a few places
            for cut in [10, 40, 63, 64, 65, 100, m.len() - 10] {
                let mut lf = m.clone();
                lf.insert(cut, b'\n');
                inputs.push(lf);
                let mut cr = m.clone();
                cr.insert(cut, b'\r');
                inputs.push(cr);
                let mut hi = m.clone();
                hi.insert(cut, 0xff);
                inputs.push(hi);
                inputs.push(m[..cut].to_vec());
            }
        }
        inputs.push(
            base.replace("\r\n", "\n")
                .into_bytes()
                .into_iter()
                .chain(*b"x\n\n")
                .collect(),
        );
        let run = |b: &[u8], cfg: &ParserConfig, mode: Mode, avx2: bool| {
            let mut idx = Index::empty();
            let r = if avx2 {
                #[cfg(target_arch = "x86_64")]
                {
                    #[allow(unsafe_code)]
                    // SAFETY: only called after `has_avx2()` said yes
                    unsafe {
                        parse_index_avx2(b, cfg, mode, &mut idx)
                    }
                }
                #[cfg(not(target_arch = "x86_64"))]
                unreachable!()
            } else {
                parse_index_impl::<false>(b, cfg, mode, &mut idx)
            };
            format!("{r:?} {idx:?}")
        };
        #[cfg(target_arch = "x86_64")]
        let avx2 = has_avx2();
        #[cfg(not(target_arch = "x86_64"))]
        let avx2 = false;
        let lenient = ParserConfig {
            allow_lf_line_endings: true,
            ..ParserConfig::default()
        };
        for b in &inputs {
            for cfg in [&ParserConfig::default(), &lenient] {
                for mode in [Mode::Stream, Mode::Datagram] {
                    let sse2 = run(b, cfg, mode, false);
                    // and `parse_index` (which picks the build) agrees
                    let mut idx = Index::empty();
                    let r = parse_index(b, cfg, mode, &mut idx);
                    assert_eq!(sse2, format!("{r:?} {idx:?}"));
                    if avx2 {
                        assert_eq!(sse2, run(b, cfg, mode, true));
                    }
                }
            }
        }
        // the folded and bare-LF inputs really took those paths
        let m = parse_datagram(&inputs[0]).expect("the base message parses");
        assert_eq!(
            m.header(HeaderName::Subject),
            Some("folded\r\n  over two lines")
        );
    }

    proptest::proptest! {
        /// `via_count` is `via().count()` whatever the Via lines hold (empty lines, empty and
        /// quoted elements, compact names, unparsable values).
        #[test]
        fn via_count_counts_what_via_yields(
            lines in proptest::collection::vec(
                proptest::prop_oneof![
                    proptest::strategy::Just("Via: SIP/2.0/UDP a;branch=z9hG4bK1".to_owned()),
                    proptest::strategy::Just("v: SIP/2.0/TCP b:5060, SIP/2.0/UDP c".to_owned()),
                    proptest::strategy::Just("Via:".to_owned()),
                    proptest::strategy::Just("Via: ,".to_owned()),
                    proptest::strategy::Just("Via: SIP/2.0/UDP a;x=\"p,q\" ,, junk".to_owned()),
                    proptest::strategy::Just("Route: <sip:x;lr>, <sip:y>".to_owned()),
                    "Via: [a-z ,;=\"/.0-9]{0,20}",
                ],
                0..6,
            )
        ) {
            let mut raw = String::from("OPTIONS sip:x SIP/2.0\r\n");
            for l in &lines {
                raw.push_str(l);
                raw.push_str("\r\n");
            }
            raw.push_str("Content-Length: 0\r\n\r\n");
            if let Ok(m) = parse_datagram(raw.as_bytes()) {
                proptest::prop_assert_eq!(m.via_count(), m.via().count());
            }
        }
    }

    proptest::proptest! {
        /// A span of a header value replaced: the shifted index is the parse of the new bytes
        /// (with the configuration the message was read with), and `None` never hides a
        /// message the parse would give differently.
        #[test]
        fn replacing_inside_a_value_shifts_the_index_as_a_parse(
            which in 0usize..9,
            a in 0usize..80,
            b in 0usize..80,
            with in "[a-z0-9;=., \t]{0,12}",
            small in proptest::bool::ANY,
        ) {
            let raw = "REGISTER sip:ims.example.org SIP/2.0\r\n\
                v: SIP/2.0/UDP 10.1.1.1:4540 ; rport;branch=z9hG4bK7 , SIP/2.0/UDP b\r\n\
                Via: SIP/2.0/UDP second.example.com;rport   \r\n\
                Subject: folded\r\n  continued here\r\n\
                From: <sip:a@x>;tag=1\r\nTo: <sip:a@x>\r\nCall-ID: c\r\nCSeq: 5 REGISTER\r\n\
                Content-Length: 5\r\nX-Empty:\r\n\r\nhello";
            let mut cfg = ParserConfig::default();
            if small {
                cfg.limits.max_header_len = 70;
                cfg.limits.max_message_size = 330;
            }
            let m = OwnedMessage::parse_datagram_with(Bytes::from_static(raw.as_bytes()), &cfg).unwrap();
            let h = m.idx.headers.get(which % m.idx.headers.len()).copied().unwrap();
            let (vs, ve) = (h.value_start(), h.value_end());
            let span = ve - vs;
            let (x, y) = (vs + a.min(span), vs + b.min(span));
            let (start, end) = (x.min(y), x.max(y));
            let mut out = m.bytes()[..start].to_vec();
            out.extend_from_slice(with.as_bytes());
            out.extend_from_slice(&m.bytes()[end..]);
            let parsed = OwnedMessage::parse_datagram_with(Bytes::from(out), &cfg);
            // the values kept by the original are not the new message's unless still true
            let _ = (m.as_message().top_via(), m.as_message().cseq());
            if let Some(fast) = m.replace_in_value(start, end, with.as_bytes(), &cfg) {
                let parsed = parsed.expect("the parse accepts what the splice built");
                proptest::prop_assert_eq!(parse_facts(&fast), parse_facts(&parsed));
                let (f, p) = (fast.as_message(), parsed.as_message());
                proptest::prop_assert_eq!(f.top_via(), p.top_via());
                proptest::prop_assert_eq!(f.cseq(), p.cseq());
            }
        }
    }

    proptest::proptest! {
        /// The top Via and the CSeq kept after the first ask are what a parse of the header gives,
        /// error included, at every later ask, from every view of the message and from a clone.
        #[test]
        fn kept_values_are_the_parse(
            lines in proptest::collection::vec(
                proptest::prop_oneof![
                    proptest::strategy::Just("Via: SIP/2.0/UDP a.example.com:5060;branch=z9hG4bK1;rport".to_owned()),
                    proptest::strategy::Just("v: SIP/2.0/TCP [::1]:5,SIP/2.0/UDP c".to_owned()),
                    proptest::strategy::Just("Via: SIP/2.0/UDP 10.0.0.1;received=10.1.1.1;branch=x".to_owned()),
                    proptest::strategy::Just("Via:".to_owned()),
                    proptest::strategy::Just("CSeq: 7 INVITE".to_owned()),
                    proptest::strategy::Just("CSeq: 4294967295 FOO".to_owned()),
                    proptest::strategy::Just("CSeq: 1x INVITE".to_owned()),
                    "Via: [a-zA-Z ,;=\"/.:0-9\\[\\]]{0,30}",
                    "CSeq: [0-9]{0,11} ?[A-Z]{0,8}",
                ],
                0..4,
            ),
            owned in proptest::bool::ANY,
        ) {
            let mut raw = String::from("OPTIONS sip:x SIP/2.0\r\n");
            for l in &lines {
                raw.push_str(l);
                raw.push_str("\r\n");
            }
            raw.push_str("Content-Length: 0\r\n\r\n");
            let check = |m: &Message<'_>| {
                for _ in 0..2 {
                    assert_eq!(m.top_via(), m.get::<Via<'_>>());
                    assert_eq!(m.cseq(), m.get::<CSeq<'_>>());
                }
            };
            if owned {
                if let Ok(m) = OwnedMessage::parse_datagram(Bytes::from(raw.clone().into_bytes())) {
                    check(&m.as_message());
                    check(&m.as_message());
                    check(&m.clone().as_message());
                }
            } else if let Ok(m) = parse_datagram(raw.as_bytes()) {
                check(&m);
                check(&m.clone());
                check(&m.to_owned_message().as_message());
            }
        }
    }

    /// Clones made before the first ask share the kept values with the original: one parse
    /// for the message however many holders ask.
    #[test]
    fn clones_share_the_kept_values() {
        let raw = "OPTIONS sip:b@x SIP/2.0\r\nVia: SIP/2.0/UDP 10.1.1.1:4540;branch=z9hG4bK7\r\n\
                   CSeq: 3 OPTIONS\r\nContent-Length: 0\r\n\r\n";
        let m = OwnedMessage::parse_datagram(Bytes::from_static(raw.as_bytes())).unwrap();
        assert!(
            m.idx.parsed.0.get().is_none(),
            "nothing made before an ask or a clone"
        );
        let c = m.clone();
        assert_eq!(c.as_message().cseq().unwrap().unwrap().seq, 3);
        let kept = |o: &OwnedMessage| Arc::clone(o.idx.parsed.0.get().expect("made"));
        assert!(Arc::ptr_eq(&kept(&m), &kept(&c)));
        assert!(
            kept(&m).cseq.get().is_some(),
            "the original sees the clone's ask"
        );
        assert_eq!(m.as_message().top_via(), c.as_message().get::<Via<'_>>());
        assert!(kept(&c).top_via.get().is_some());
    }

    #[test]
    fn replacing_the_top_via_element_takes_the_shift() {
        let raw =
            "OPTIONS sip:b@x SIP/2.0\r\nVia: SIP/2.0/UDP 10.1.1.1:4540;rport;branch=z9hG4bK7\r\n\
                   Call-ID: c\r\nContent-Length: 0\r\n\r\n";
        let m = OwnedMessage::parse_datagram(Bytes::from_static(raw.as_bytes())).unwrap();
        // the top Via kept by the original is not the new message's
        let top = m.as_message().top_via().unwrap().unwrap();
        assert_eq!(top.rport(), Some(None));
        assert_eq!(top.branch(), Some("z9hG4bK7"));
        let at = raw.find("rport").unwrap();
        let cfg = ParserConfig::default();
        let f = m
            .replace_in_value(at, at + 5, b"rport=9988", &cfg)
            .expect("a plain parameter splice");
        let p = OwnedMessage::parse_datagram(f.bytes().clone()).unwrap();
        assert_eq!(parse_facts(&f), parse_facts(&p));
        assert_eq!(
            f.as_message().top_via().unwrap().unwrap().rport(),
            Some(Some(9988))
        );
        // a line break, the Content-Length value, a blank at the value's end: parse instead
        assert!(m.replace_in_value(at, at + 5, b"x\r\ny", &cfg).is_none());
        let cl = raw.find("Length: 0").unwrap() + 8;
        assert!(m.replace_in_value(cl, cl + 1, b"1", &cfg).is_none());
        let end = raw.find("z9hG4bK7").unwrap() + 8;
        assert!(m.replace_in_value(end, end, b" ", &cfg).is_none());
        assert!(m
            .replace_in_value(end, end, b";received=192.0.2.1", &cfg)
            .is_some());
    }

    /// Messages parsed in either mode with one configuration and checked against another: when
    /// `is_datagram_parse_with` says so, the datagram parse with the other configuration gives
    /// the same message; and it says so for the usual case.
    #[test]
    fn a_message_is_its_datagram_parse_within_the_limits() {
        let msgs: [&[u8]; 5] = [
            b"REGISTER sip:ims.example.org SIP/2.0\r\nVia: SIP/2.0/UDP a;branch=z9hG4bK1\r\nv: SIP/2.0/UDP b\r\n\
              Subject: folded\r\n continued\r\nCall-ID: c\r\nl: 5\r\n\r\nhello",
            b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP a;branch=z9hG4bK1\r\nContent-Length: 0\r\n\r\n",
            b"MESSAGE sip:b@x SIP/2.0\r\nVia: SIP/2.0/UDP h\r\nContent-Length: 4\r\nl: 3\r\n\r\nbody",
            b"MESSAGE sip:b@x SIP/2.0\r\nVia: SIP/2.0/UDP h\r\n\r\nno length",
            b"OPTIONS sip:b@x SIP/2.0\nVia: SIP/2.0/UDP h\nContent-Length: 0\n\n",
        ];
        let lenient = ParserConfig {
            allow_lf_line_endings: true,
            ..ParserConfig::default()
        };
        let mut small = ParserConfig::default();
        small.limits.max_header_len = 30;
        let mut tiny = ParserConfig::default();
        tiny.limits.max_message_size = 60;
        tiny.limits.max_headers = 2;
        tiny.limits.max_uri_len = 10;
        tiny.limits.max_body_size = 3;
        let cfgs = [ParserConfig::default(), lenient, small, tiny];
        let mut taken = 0;
        for raw in msgs {
            for from in &cfgs {
                let mut parsed = Vec::new();
                if let Ok(m) = OwnedMessage::parse_datagram_with(Bytes::from_static(raw), from) {
                    parsed.push(m);
                }
                if let Ok(m) = OwnedMessage::parse_with(Bytes::from_static(raw), from) {
                    parsed.push(m);
                }
                for m in parsed {
                    for to in &cfgs {
                        if m.is_datagram_parse_with(to) {
                            taken += 1;
                            let again = OwnedMessage::parse_datagram_with(m.bytes().clone(), to)
                                .expect("the datagram parse accepts it");
                            assert_eq!(parse_facts(&m), parse_facts(&again));
                        }
                    }
                }
            }
        }
        assert!(taken > 10, "{taken}");
        let m = OwnedMessage::parse_datagram(Bytes::from_static(msgs[0])).unwrap();
        assert!(m.is_datagram_parse_with(&ParserConfig::default()));
        assert!(!m.is_datagram_parse_with(&small));
        assert!(!m.is_datagram_parse_with(&tiny));
    }
}
