//! Builders for new requests and responses (RFC 3261 §8.1.1, §8.2.6).

use crate::error::{ErrorKind, ParseError};
use crate::headers::TypedHeader;
use crate::message::{Message, OwnedMessage, Written};
use crate::method::{reason_phrase, Method};
use crate::HeaderName;
use bytes::Bytes;
use smallvec::SmallVec;
use std::fmt::{self, Write as _};
use std::hash::{BuildHasher, Hash, Hasher};

#[derive(Debug, Clone, Default)]
struct Draft {
    head: String,
    body: Vec<u8>,
    has_cl: bool,
    /// The first header that would have broken the framing (a non-token name, or a CR/LF in a
    /// value that is not a fold), reported by `build`.
    bad: Option<ParseError>,
    /// The length of the start line (without its CRLF).
    sl_end: usize,
    /// Some line is not plainly `token ": " value CRLF` (a value with a CR or LF, a fold, or a
    /// blank at an end; a name that is not a token): the parse indexes the message. Otherwise
    /// `build` indexes the lines as they were written (`lines`), without the parser's checks.
    odd: bool,
    /// Each header line as it was written: where it starts, the lengths of its name and value,
    /// the name as the parser reads it (meaningful while the draft is not `odd`).
    lines: SmallVec<[Written; 16]>,
}

/// The offset of a CR or LF in `v` that is not part of a `CRLF 1*WSP` fold.
fn injected_line(v: &[u8]) -> Option<usize> {
    let mut i = 0;
    // memchr2: most values have no CR or LF at all, and this runs for every line built
    while let Some(p) = memchr::memchr2(b'\r', b'\n', &v[i..]) {
        let at = i + p;
        let fold = v[at] == b'\r'
            && v.get(at + 1) == Some(&b'\n')
            && matches!(v.get(at + 2), Some(b' ' | b'\t'));
        if !fold {
            return Some(at);
        }
        i = at + 3;
    }
    None
}

impl Draft {
    fn header(&mut self, name: &str, value: impl fmt::Display) {
        let (at, hn) = self.start_line(name);
        let _ = write!(self.head, "{value}");
        self.end_line(at, name, hn);
    }
    /// [`Draft::header`] for a value that is text already: no `fmt` at all (the copies of a
    /// request's Via, From, To, Call-ID and CSeq in each response).
    fn header_str(&mut self, name: &str, value: &str) {
        let (at, hn) = self.start_line(name);
        self.head.push_str(value);
        self.end_line(at, name, hn);
    }
    /// [`Draft::header_str`] for a name the builder itself writes (a token, not Content-Length):
    /// the name needs no check, the value is checked as in [`Draft::end_line`].
    fn known_str(&mut self, name: HeaderName, value: &str) {
        let at = self.head.len();
        let text = name.as_str();
        self.head.push_str(text);
        self.head.push_str(": ");
        self.head.push_str(value);
        self.end_known(at, text.len(), name);
    }
    /// Notes whether the line started at `at` with a name of `name_len` bytes (`token`: a
    /// token), its value written up to the end of the text (without CR or LF when `one_line`),
    /// is plain; a line that is not makes the draft [`Draft::odd`].
    fn note(&mut self, at: usize, name_len: usize, token: bool, one_line: bool, name: HeaderName) {
        let value = &self.head.as_bytes()[at + name_len + 2..];
        let ws = |c: &u8| matches!(c, b' ' | b'\t');
        self.odd |=
            !token || !one_line || value.first().is_some_and(ws) || value.last().is_some_and(ws);
        if !self.odd {
            match (
                u32::try_from(at),
                u16::try_from(name_len),
                u32::try_from(value.len()),
            ) {
                (Ok(at), Ok(name_len), Ok(value_len)) => self.lines.push(Written {
                    at,
                    name_len,
                    value_len,
                    name,
                }),
                _ => self.odd = true,
            }
        }
    }
    /// [`Draft::end_line`] for a line whose name (`name_len` bytes) is a token.
    fn end_known(&mut self, at: usize, name_len: usize, name: HeaderName) {
        let cr = memchr::memchr2(b'\r', b'\n', &self.head.as_bytes()[at + name_len + 2..]);
        self.note(at, name_len, true, cr.is_none(), name);
        self.head.push_str("\r\n");
        if self.bad.is_none() && cr.is_some() {
            let line = &self.head.as_bytes()[at..self.head.len() - 2];
            if let Some(i) = injected_line(&line[name_len + 2..]) {
                self.bad = Some(ParseError::new(
                    ErrorKind::HeaderValue,
                    at + name_len + 2 + i,
                ));
            }
        }
    }
    /// Writes `name: ` (the name and separators pushed directly) and returns where the line starts.
    fn start_line(&mut self, name: &str) -> (usize, HeaderName) {
        let hn = HeaderName::from_bytes(name.as_bytes());
        if hn == HeaderName::ContentLength {
            self.has_cl = true;
        }
        let at = self.head.len();
        self.head.push_str(name);
        self.head.push_str(": ");
        (at, hn)
    }
    /// Ends the line started at `at` and checks it.
    fn end_line(&mut self, at: usize, name: &str, hn: HeaderName) {
        let value_at = name.len() + 2;
        let cr = memchr::memchr2(b'\r', b'\n', &self.head.as_bytes()[at + value_at..]);
        let token = crate::scan::is_token(name.as_bytes());
        self.note(at, name.len(), token, cr.is_none(), hn);
        self.head.push_str("\r\n");
        if self.bad.is_none() {
            let line = &self.head.as_bytes()[at..self.head.len() - 2];
            if !token {
                self.bad = Some(ParseError::new(ErrorKind::HeaderName, at));
            } else if let Some(i) = cr.and_then(|_| injected_line(&line[value_at..])) {
                // a CR or LF that does not start a fold would add a header line of its own
                self.bad = Some(ParseError::new(ErrorKind::HeaderValue, at + value_at + i));
            }
        }
    }
    /// Writes the Content-Length line of the body unless one was given.
    fn push_content_length(&mut self) {
        if !self.has_cl {
            let at = self.head.len();
            self.head.push_str("Content-Length: ");
            crate::push_decimal(&mut self.head, self.body.len() as u64);
            if let (Ok(at), Ok(value_len)) =
                (u32::try_from(at), u32::try_from(self.head.len() - at - 16))
            {
                self.lines.push(Written {
                    at,
                    name_len: 14,
                    value_len,
                    name: HeaderName::ContentLength,
                });
            } else {
                self.odd = true;
            }
            self.head.push_str("\r\n");
        }
    }
    fn finish(mut self) -> Vec<u8> {
        self.push_content_length();
        self.end()
    }
    /// The empty line and the body after the header lines.
    fn end(mut self) -> Vec<u8> {
        self.head.push_str("\r\n");
        let mut v = self.head.into_bytes();
        v.extend_from_slice(&self.body);
        v
    }
    /// The message, indexed from the lines as they were written when that is certain to be
    /// the parse ([`OwnedMessage::assemble_written`]: a Content-Length the draft wrote itself,
    /// every line plainly `name: value`), else parsed.
    fn build(mut self) -> Result<OwnedMessage, ParseError> {
        let (wrote_cl, sl_end, body_len) = (!self.has_cl, self.sl_end, self.body.len());
        self.push_content_length();
        let fast = wrote_cl && !self.odd && self.bad.is_none();
        let lines = std::mem::take(&mut self.lines);
        let bytes = Bytes::from(self.end());
        if fast {
            // the lines as they were written (not scanned again)
            if let Some(m) = OwnedMessage::assemble_written(bytes.clone(), sl_end, &lines, body_len)
            {
                return Ok(m);
            }
        }
        OwnedMessage::parse(bytes)
    }
}

/// The header lines of `head` from `from` on, each `name ": " value CRLF` as a draft that is
/// not [`Draft::odd`] wrote them (a token name, which holds no `:`; a value without CR or LF):
/// where each starts, its name (read as the parser reads a token name) and the lengths.
/// `None` when a line is not laid out so (the caller then parses). The oracle of the lines a
/// draft notes as it writes them.
#[cfg(test)]
fn plain_lines(head: &[u8], from: usize) -> Option<SmallVec<[Written; 32]>> {
    let mut lines = SmallVec::new();
    let mut at = from;
    while at < head.len() {
        let line = &head[at..];
        let lf = memchr::memchr(b'\n', line)?;
        let colon = memchr::memchr(b':', &line[..lf])?;
        if colon == 0 || lf < colon + 3 || line[colon + 1] != b' ' || line[lf - 1] != b'\r' {
            return None;
        }
        lines.push(Written {
            at: u32::try_from(at).ok()?,
            name_len: u16::try_from(colon).ok()?,
            value_len: u32::try_from(lf - 1 - (colon + 2)).ok()?,
            name: HeaderName::from_token(&line[..colon]),
        });
        at += lf + 1;
    }
    Some(lines)
}

/// The methods both builders share: headers, body, output.
macro_rules! draft_methods {
    () => {
        /// Adds a header line.
        pub fn header(mut self, name: &str, value: impl fmt::Display) -> Self {
            self.d.header(name, value);
            self
        }
        /// Adds a typed header value under its canonical name.
        pub fn typed<'a, T: TypedHeader<'a> + fmt::Display>(self, value: &T) -> Self {
            self.header(T::NAME.as_str(), value)
        }
        /// Sets the body and its Content-Type.
        pub fn body(mut self, content_type: &str, body: impl Into<Vec<u8>>) -> Self {
            self.d.header_str("Content-Type", content_type);
            self.d.body = body.into();
            self
        }
        /// The message bytes, unchecked.
        pub fn to_vec(self) -> Vec<u8> {
            self.d.finish()
        }
        /// Renders the message and gives what the parser reads in it, so a builder can never
        /// produce what the parser would refuse. The lines are indexed as they are written
        /// (not scanned again) wherever that is certainly the parse's index.
        pub fn build(self) -> Result<OwnedMessage, ParseError> {
            if let Some(e) = self.d.bad {
                return Err(e);
            }
            self.d.build()
        }
    };
}

/// Builds a request. Content-Length is added from the body unless set explicitly.
///
/// ```
/// use ims_sip::{Method, RequestBuilder};
/// let msg = RequestBuilder::new(Method::Message, "sip:+447700900123@ims.example.com")
///     .header("Via", "SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK-1")
///     .header("Max-Forwards", 70)
///     .header("From", "<sip:alice@ims.example.com>;tag=a1")
///     .header("To", "<sip:+447700900123@ims.example.com>")
///     .header("Call-ID", "c1@192.0.2.1")
///     .header("CSeq", "1 MESSAGE")
///     .body("application/vnd.3gpp.sms", vec![0x00, 0x01, 0x02])
///     .build()
///     .unwrap();
/// assert_eq!(msg.as_message().body(), &[0, 1, 2]);
/// assert_eq!(msg.as_message().content_length(), Some(3));
/// ```
#[derive(Debug, Clone)]
pub struct RequestBuilder {
    d: Draft,
}

impl RequestBuilder {
    /// Starts `METHOD uri SIP/2.0`.
    pub fn new(method: Method<'_>, uri: &str) -> Self {
        let mut d = Draft::default();
        d.head.push_str(method.as_str());
        d.head.push(' ');
        d.head.push_str(uri);
        d.head.push_str(" SIP/2.0");
        d.sl_end = d.head.len();
        d.head.push_str("\r\n");
        RequestBuilder { d }
    }
    draft_methods!();
}

/// Builds a response.
#[derive(Debug, Clone)]
pub struct ResponseBuilder {
    d: Draft,
}

/// `format!("{n:016x}")` without the formatting machinery.
fn hex16(n: u64) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(16);
    for i in 0..16 {
        s.push(char::from(DIGITS[((n >> (60 - 4 * i)) & 15) as usize]));
    }
    s
}

/// A per-process key, so To tags made from request fields cannot be predicted by outsiders.
fn tag_hasher() -> std::collections::hash_map::DefaultHasher {
    use std::sync::OnceLock;
    static STATE: OnceLock<std::collections::hash_map::RandomState> = OnceLock::new();
    STATE
        .get_or_init(std::collections::hash_map::RandomState::new)
        .build_hasher()
}

impl ResponseBuilder {
    /// Starts `SIP/2.0 code reason` (the default phrase when `reason` is `None`).
    pub fn new(code: u16, reason: Option<&str>) -> Self {
        Self::with_capacity(code, reason, 0)
    }

    /// [`ResponseBuilder::new`] with room for `capacity` bytes of text.
    fn with_capacity(code: u16, reason: Option<&str>, capacity: usize) -> Self {
        let mut d = Draft {
            head: String::with_capacity(capacity),
            ..Draft::default()
        };
        d.head.push_str("SIP/2.0 ");
        crate::push_decimal(&mut d.head, u64::from(code));
        d.head.push(' ');
        d.head.push_str(reason.unwrap_or(reason_phrase(code)));
        d.sl_end = d.head.len();
        d.head.push_str("\r\n");
        ResponseBuilder { d }
    }

    /// A response to `req` per RFC 3261 §8.2.6: copies every Via (in order), From, To, Call-ID and
    /// CSeq (and Timestamp for 100, Record-Route for dialog-creating 1xx/2xx), and adds a To tag to
    /// any response but 100 when the request had none. The tag is derived from the Call-ID, From tag
    /// and top branch with a per-process key, so retransmissions get the same tag; use
    /// [`ResponseBuilder::from_request_with_tag`] to choose it.
    pub fn from_request(req: &Message<'_>, code: u16) -> Self {
        let tag = if code > 100 {
            let mut h = tag_hasher();
            req.header(HeaderName::CallId).hash(&mut h);
            req.from_tag().hash(&mut h);
            req.top_via()
                .ok()
                .flatten()
                .and_then(|v| v.branch())
                .hash(&mut h);
            Some(hex16(h.finish()))
        } else {
            None
        };
        Self::from_request_with_tag(req, code, tag.as_deref())
    }

    /// As [`ResponseBuilder::from_request`] with a chosen To tag (used only when the request's To
    /// has none).
    pub fn from_request_with_tag(req: &Message<'_>, code: u16, to_tag: Option<&str>) -> Self {
        // room for the status line, the copied lines (at most the request's header section),
        // the To tag and what a caller usually adds: the text is allocated once
        let capacity = 64 + req.head().len() + to_tag.map_or(0, str::len) + 256;
        let mut b = ResponseBuilder::with_capacity(code, None, capacity);
        for h in req.headers_of(HeaderName::Via) {
            b.d.known_str(HeaderName::Via, h.value());
        }
        if let Some(f) = req.header(HeaderName::From) {
            b.d.known_str(HeaderName::From, f);
        }
        if let Some(t) = req.header(HeaderName::To) {
            // the tag read without parsing the URI (`Message::to_tag`)
            let has_tag = req.to_tag().is_some();
            match to_tag {
                Some(tag) if !has_tag && code != 100 => {
                    let at = b.d.head.len();
                    b.d.head.push_str("To: ");
                    b.d.head.push_str(t);
                    b.d.head.push_str(";tag=");
                    b.d.head.push_str(tag);
                    b.d.end_known(at, 2, HeaderName::To);
                }
                _ => b.d.known_str(HeaderName::To, t),
            }
        }
        if let Some(c) = req.header(HeaderName::CallId) {
            b.d.known_str(HeaderName::CallId, c);
        }
        if let Some(c) = req.header(HeaderName::CSeq) {
            b.d.known_str(HeaderName::CSeq, c);
        }
        if code == 100 {
            if let Some(t) = req.header(HeaderName::Timestamp) {
                b.d.known_str(HeaderName::Timestamp, t);
            }
        }
        let dialog_creating = matches!(
            req.method(),
            Some(Method::Invite | Method::Subscribe | Method::Refer | Method::Notify)
        );
        if dialog_creating && (101..300).contains(&code) {
            for h in req.headers_of(HeaderName::RecordRoute) {
                b.d.known_str(HeaderName::RecordRoute, h.value());
            }
        }
        b
    }
    draft_methods!();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_cr_or_lf_outside_a_fold_is_injected() {
        for (v, want) in [
            (&b"plain value"[..], None),
            (b"", None),
            (b"a\r\n b", None),
            (b"a\r\n\tb\r\n c", None),
            (b"a\r\nb", Some(1)),
            (b"a\nb", Some(1)),
            (b"a\rb", Some(1)),
            (b"a\r\n b\n", Some(5)),
            (b"a\r\n", Some(1)),
            (b"\r", Some(0)),
        ] {
            assert_eq!(injected_line(v), want, "{:?}", String::from_utf8_lossy(v));
        }
        let b = RequestBuilder::new(Method::Options, "sip:a@b").header("X", "1\r\nY: 2");
        assert!(b.build().is_err());
    }

    #[test]
    fn texts_written_without_fmt_are_what_fmt_writes() {
        for n in [
            0,
            1,
            0xf,
            0x10,
            0xdead_beef,
            u64::MAX,
            0x0123_4567_89ab_cdef,
        ] {
            assert_eq!(hex16(n), format!("{n:016x}"));
        }
        for code in [100, 180, 200, 401, 999, 0, 65535] {
            let b = ResponseBuilder::new(code, Some("X")).to_vec();
            let want = format!("SIP/2.0 {code} X\r\nContent-Length: 0\r\n\r\n");
            assert_eq!(String::from_utf8(b).unwrap(), want);
        }
        let b = RequestBuilder::new(Method::Other("FOO"), "sip:a@b")
            .body("text/plain", b"hello".to_vec())
            .to_vec();
        assert_eq!(
            String::from_utf8(b).unwrap(),
            "FOO sip:a@b SIP/2.0\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello"
        );
    }

    /// `from_request_with_tag` as it was written before the names were known and the text
    /// reserved (every line through `header_str`): the oracle of the test below.
    fn old_from_request_with_tag(req: &Message<'_>, code: u16, to_tag: Option<&str>) -> Draft {
        let mut b = ResponseBuilder::new(code, None);
        for h in req.headers_of(HeaderName::Via) {
            b.d.header_str("Via", h.value());
        }
        if let Some(f) = req.header(HeaderName::From) {
            b.d.header_str("From", f);
        }
        if let Some(t) = req.header(HeaderName::To) {
            let has_tag = req.to_tag().is_some();
            match to_tag {
                Some(tag) if !has_tag && code != 100 => {
                    let (at, hn) = b.d.start_line("To");
                    b.d.head.push_str(t);
                    b.d.head.push_str(";tag=");
                    b.d.head.push_str(tag);
                    b.d.end_line(at, "To", hn);
                }
                _ => b.d.header_str("To", t),
            }
        }
        if let Some(c) = req.header(HeaderName::CallId) {
            b.d.header_str("Call-ID", c);
        }
        if let Some(c) = req.header(HeaderName::CSeq) {
            b.d.header_str("CSeq", c);
        }
        if code == 100 {
            if let Some(t) = req.header(HeaderName::Timestamp) {
                b.d.header_str("Timestamp", t);
            }
        }
        let dialog_creating = matches!(
            req.method(),
            Some(Method::Invite | Method::Subscribe | Method::Refer | Method::Notify)
        );
        if dialog_creating && (101..300).contains(&code) {
            for h in req.headers_of(HeaderName::RecordRoute) {
                b.d.header_str("Record-Route", h.value());
            }
        }
        b.d
    }

    #[test]
    fn a_response_is_written_as_the_header_by_header_builder_wrote_it() {
        let lenient = crate::ParserConfig {
            allow_lf_line_endings: true,
            ..crate::ParserConfig::default()
        };
        let tail = "Call-ID: c1\r\nCSeq: 1 METHOD\r\nTimestamp: 54 0.2\r\n\
                    Record-Route: <sip:p1;lr>\r\nRecord-Route: <sip:p2;lr>, <sip:p3;lr>\r\n\
                    Content-Length: 0\r\n\r\n";
        let mut raws: Vec<String> = Vec::new();
        for method in [
            "REGISTER",
            "INVITE",
            "SUBSCRIBE",
            "NOTIFY",
            "REFER",
            "MESSAGE",
        ] {
            for head in [
                "Via: SIP/2.0/UDP a;branch=z9hG4bK-1\r\nFrom: <sip:a@x>;tag=1\r\nTo: <sip:b@x>\r\n",
                "Via: SIP/2.0/UDP a;branch=z9hG4bK-1, SIP/2.0/TCP b;branch=z9hG4bK-2\r\nv: SIP/2.0/UDP c;branch=z9hG4bK-3\r\nf: <sip:a@x>;tag=1\r\nt: \"Bob ;tag=x\" <sip:b@x>\r\n",
                "Via: SIP/2.0/UDP a;branch=z9hG4bK-1\r\nFrom: <sip:a@x>;tag=1\r\nTo: <sip:b@x>;tag=9\r\n",
                "Via: SIP/2.0/UDP a;\r\n branch=z9hG4bK-1\r\nFrom: Alice\r\n\t<sip:a@x>;tag=1\r\nTo: <sip:b@x>\r\n",
                "Via: SIP/2.0/UDP a;branch=z9hG4bK-1\r\n",
            ] {
                let tail = tail.replace("METHOD", method);
                raws.push(format!("{method} sip:b@x SIP/2.0\r\n{head}{tail}"));
            }
        }
        // bare-LF folding (lenient): a value with a LF that is not a CRLF fold
        raws.push(
            "INVITE sip:b@x SIP/2.0\nVia: SIP/2.0/UDP a;branch=z9hG4bK-1\nFrom: <sip:a@x>;\n tag=1\nTo: <sip:b@x>\nCall-ID: c\nCSeq: 1 INVITE\nContent-Length: 0\n\n"
                .into(),
        );
        let mut bad = 0;
        let mut n = 0;
        for raw in &raws {
            let owned =
                OwnedMessage::parse_datagram_with(Bytes::from(raw.clone()), &lenient).unwrap();
            let req = owned.as_message();
            for code in [100, 180, 200, 202, 299, 300, 401, 500] {
                for tag in [None, Some("t9"), Some("")] {
                    let new = ResponseBuilder::from_request_with_tag(&req, code, tag);
                    let old = old_from_request_with_tag(&req, code, tag);
                    assert_eq!(new.d.head, old.head, "{raw} / {code} / {tag:?}");
                    assert_eq!(new.d.bad, old.bad, "{raw} / {code} / {tag:?}");
                    assert_eq!(new.d.has_cl, old.has_cl);
                    bad += usize::from(old.bad.is_some());
                    n += 1;
                    // and what a caller adds and builds
                    let (a, b) = (
                        new.header("Contact", "<sip:c@x>").to_vec(),
                        ResponseBuilder { d: old }
                            .header("Contact", "<sip:c@x>")
                            .to_vec(),
                    );
                    assert_eq!(a, b);
                }
            }
        }
        // the bare-LF fold is refused by both, the rest is not
        assert!(bad > 0 && bad < n, "{bad} of {n}");
    }

    #[test]
    fn a_response_copies_the_request_and_tags_to_once() {
        let raw = b"REGISTER sip:ims.example.org SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK-1\r\nVia: SIP/2.0/UDP 192.0.2.2;branch=z9hG4bK-2\r\n\
From: <sip:alice@ims.example.org>;tag=a1\r\nTo: <sip:alice@ims.example.org>\r\n\
Call-ID: c1\r\nCSeq: 1 REGISTER\r\nTimestamp: 54\r\nContent-Length: 0\r\n\r\n";
        let req = crate::parse_datagram(raw).unwrap();
        let r = ResponseBuilder::from_request_with_tag(&req, 401, Some("t9"))
            .build()
            .unwrap();
        let want = "SIP/2.0 401 Unauthorized\r\n\
Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK-1\r\nVia: SIP/2.0/UDP 192.0.2.2;branch=z9hG4bK-2\r\n\
From: <sip:alice@ims.example.org>;tag=a1\r\nTo: <sip:alice@ims.example.org>;tag=t9\r\n\
Call-ID: c1\r\nCSeq: 1 REGISTER\r\nContent-Length: 0\r\n\r\n";
        assert_eq!(r.as_message().to_string(), want);
        // a 100 keeps the request's To and copies Timestamp
        let r = ResponseBuilder::from_request_with_tag(&req, 100, Some("t9"))
            .build()
            .unwrap();
        let m = r.as_message();
        assert_eq!(m.to_tag(), None);
        assert_eq!(m.header(HeaderName::Timestamp), Some("54"));
        // a To that has a tag keeps it
        let tagged = String::from_utf8(raw.to_vec()).unwrap().replace(
            "To: <sip:alice@ims.example.org>",
            "To: <sip:alice@ims.example.org>;tag=z",
        );
        let req2 = crate::parse_datagram(tagged.as_bytes()).unwrap();
        let r = ResponseBuilder::from_request_with_tag(&req2, 200, Some("t9"))
            .build()
            .unwrap();
        assert_eq!(r.as_message().to_tag(), Some("z"));
        // the derived tag: 16 hex digits, the same for a retransmission, another for another branch
        let t1 = ResponseBuilder::from_request(&req, 401).build().unwrap();
        let t2 = ResponseBuilder::from_request(&req, 401).build().unwrap();
        let tag = t1.as_message().to_tag().unwrap().to_owned();
        assert_eq!(tag.len(), 16);
        assert!(tag
            .bytes()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
        assert_eq!(t2.as_message().to_tag(), Some(tag.as_str()));
        let other = String::from_utf8(raw.to_vec())
            .unwrap()
            .replace("z9hG4bK-1", "z9hG4bK-3");
        let req3 = crate::parse_datagram(other.as_bytes()).unwrap();
        let t3 = ResponseBuilder::from_request(&req3, 401).build().unwrap();
        assert_ne!(t3.as_message().to_tag(), Some(tag.as_str()));
    }
}

#[cfg(test)]
mod indexed_tests {
    use super::*;
    use crate::message::parse_facts;

    /// A header of the pool: the names a builder is given (compact, mixed case, Content-Length,
    /// extension, not a token, empty) and values (plain, blanks at an end, empty, folded, a
    /// line break, non-ASCII text).
    fn header(n: usize, v: usize) -> (&'static str, &'static str) {
        // the first 14 names and 8 values are plain; the rest each make a line odd
        const NAMES: &[&str] = &[
            "Via",
            "v",
            "From",
            "To",
            "Call-ID",
            "CSeq",
            "Contact",
            "m",
            "Content-Type",
            "c",
            "X-Extra",
            "rOUTE",
            "P-Asserted-Identity",
            "Max-Forwards",
            "Content-Length",
            "l",
            "Bad Name",
            "",
            "X:Y",
            "Expires ",
        ];
        const VALUES: &[&str] = &[
            "SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK-1;rport",
            "<sip:alice@ims.example.org>;tag=a1",
            "1 REGISTER",
            "5",
            "",
            "caf\u{e9}",
            "text/plain",
            "a  b",
            " leading",
            "trailing\t",
            "a\r\n b",
            "a\r\nX: y",
            "\tboth ",
            "x\ry",
            "a,b",
            "z\n",
        ];
        (NAMES[n % NAMES.len()], VALUES[v % VALUES.len()])
    }

    proptest::proptest! {
        /// `build` (lines indexed as written) gives exactly what the parse of the rendered
        /// bytes gives: the same bytes and index, or an error where the parse fails.
        #[test]
        fn a_built_message_is_indexed_as_the_parse_indexes_it(
            request in proptest::bool::ANY,
            start in 0usize..4,
            headers in proptest::collection::vec((0usize..14, 0usize..8), 0..30),
            odd in proptest::option::of((0usize..20, 0usize..16, 0usize..30)),
            body in proptest::option::of(proptest::collection::vec(proptest::num::u8::ANY, 0..40)),
        ) {
            // plain lines, and at most one that may not be
            let mut headers = headers;
            if let Some((n, v, at)) = odd {
                headers.insert(at.min(headers.len()), (n, v));
            }
            let with = |mut d: Draft| {
                for &(n, v) in &headers {
                    let (n, v) = header(n, v);
                    if n.len() % 2 == 0 {
                        d.header(n, v);
                    } else {
                        d.header_str(n, v);
                    }
                }
                if let Some(b) = &body {
                    d.header_str("Content-Type", "application/octet-stream");
                    d.body = b.clone();
                }
                d
            };
            let d = if request {
                let uri = ["sip:bob@x", "tel:+15551234", "not a uri", "sip:a@b\r\nX: y"][start];
                with(RequestBuilder::new(Method::Register, uri).d)
            } else {
                let reason = [None, Some("Fine"), Some(""), Some("a\r\nb")][start];
                with(ResponseBuilder::new(200, reason).d)
            };
            let parsed = OwnedMessage::parse(Bytes::from(d.clone().finish()));
            let built = d.build();
            match (&built, &parsed) {
                (Ok(b), Ok(p)) => proptest::prop_assert_eq!(parse_facts(b), parse_facts(p)),
                (Err(b), Err(p)) => proptest::prop_assert_eq!(b, p),
                _ => proptest::prop_assert!(false, "built {:?} parsed {:?}", built, parsed),
            }
        }
    }

    #[test]
    fn the_usual_messages_are_indexed_as_written() {
        let raw = b"REGISTER sip:ims.example.org SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK-1\r\nVia: SIP/2.0/UDP 192.0.2.2;branch=z9hG4bK-2\r\n\
From: <sip:alice@ims.example.org>;tag=a1\r\nTo: <sip:alice@ims.example.org>\r\n\
Call-ID: c1\r\nCSeq: 1 REGISTER\r\nContent-Length: 0\r\n\r\n";
        let req = crate::parse_datagram(raw).unwrap();
        let b = ResponseBuilder::from_request(&req, 200).header("Contact", "<sip:a@b>;expires=600");
        let lines = b.d.head.matches("\r\n").count() - 1;
        let sl_end = b.d.sl_end;
        let body_len = b.d.body.len();
        let mut d = b.d.clone();
        d.push_content_length();
        // every line of the usual response is plain: the fast path is taken
        assert!(!d.odd && d.bad.is_none());
        let head_end = d.head.len();
        let recorded = d.lines.clone();
        let bytes = Bytes::from(d.end());
        let mut laid = plain_lines(&bytes[..head_end], sl_end + 2).expect("plain lines");
        // the lines noted as they were written are those the scan of the text finds
        let facts = |l: &[Written]| {
            l.iter()
                .map(|w| (w.at, w.name_len, w.value_len, w.name))
                .collect::<Vec<_>>()
        };
        assert_eq!(facts(&recorded), facts(&laid));
        // the fast path answers (it is not the parse that builds these)
        let m = OwnedMessage::assemble_written(bytes.clone(), sl_end, &laid, body_len)
            .expect("indexed as written");
        assert_eq!(laid.len(), lines + 1);
        assert_eq!(
            parse_facts(&m),
            parse_facts(&OwnedMessage::parse(bytes.clone()).unwrap())
        );
        // a line noted one byte off is not taken
        laid[1].at += 1;
        assert!(OwnedMessage::assemble_written(bytes, sl_end, &laid, body_len).is_none());
        // and a request
        let r = RequestBuilder::new(Method::Subscribe, "sip:alice@ims.example.org")
            .header("Event", "reg")
            .body("text/plain", b"x".to_vec());
        assert_eq!(
            parse_facts(&r.clone().build().unwrap()),
            parse_facts(&OwnedMessage::parse(Bytes::from(r.to_vec())).unwrap())
        );
    }
}
