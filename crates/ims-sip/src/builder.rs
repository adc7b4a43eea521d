//! Builders for new requests and responses (RFC 3261 §8.1.1, §8.2.6).

use crate::error::{ErrorKind, ParseError};
use crate::headers::TypedHeader;
use crate::message::{Message, OwnedMessage};
use crate::method::{reason_phrase, Method};
use crate::HeaderName;
use bytes::Bytes;
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
}

/// The offset of a CR or LF in `v` that is not part of a `CRLF 1*WSP` fold.
fn injected_line(v: &[u8]) -> Option<usize> {
    let mut i = 0;
    while let Some(p) = v[i..].iter().position(|&c| c == b'\r' || c == b'\n') {
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
        if HeaderName::from_bytes(name.as_bytes()) == HeaderName::ContentLength {
            self.has_cl = true;
        }
        let at = self.head.len();
        // the name and separators pushed directly: `fmt` only for the value
        self.head.push_str(name);
        self.head.push_str(": ");
        let _ = write!(self.head, "{value}");
        self.head.push_str("\r\n");
        if self.bad.is_none() {
            let line = &self.head.as_bytes()[at..self.head.len() - 2];
            let value_at = name.len() + 2;
            if !crate::scan::is_token(name.as_bytes()) {
                self.bad = Some(ParseError::new(ErrorKind::HeaderName, at));
            } else if let Some(i) = injected_line(&line[value_at..]) {
                // a CR or LF that does not start a fold would add a header line of its own
                self.bad = Some(ParseError::new(ErrorKind::HeaderValue, at + value_at + i));
            }
        }
    }
    fn finish(mut self) -> Vec<u8> {
        if !self.has_cl {
            let _ = write!(self.head, "Content-Length: {}\r\n", self.body.len());
        }
        self.head.push_str("\r\n");
        let mut v = self.head.into_bytes();
        v.extend_from_slice(&self.body);
        v
    }
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
            self.d.header("Content-Type", content_type);
            self.d.body = body.into();
            self
        }
        /// The message bytes, unchecked.
        pub fn to_vec(self) -> Vec<u8> {
            self.d.finish()
        }
        /// Renders and parses the message, so a builder can never produce what the parser would refuse.
        pub fn build(self) -> Result<OwnedMessage, ParseError> {
            if let Some(e) = self.d.bad {
                return Err(e);
            }
            OwnedMessage::parse(Bytes::from(self.d.finish()))
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
        let _ = write!(d.head, "{method} {uri} SIP/2.0\r\n");
        RequestBuilder { d }
    }
    draft_methods!();
}

/// Builds a response.
#[derive(Debug, Clone)]
pub struct ResponseBuilder {
    d: Draft,
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
        let mut d = Draft::default();
        let _ = write!(
            d.head,
            "SIP/2.0 {code} {}\r\n",
            reason.unwrap_or(reason_phrase(code))
        );
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
            req.from().ok().flatten().and_then(|f| f.tag()).hash(&mut h);
            req.top_via()
                .ok()
                .flatten()
                .and_then(|v| v.branch())
                .hash(&mut h);
            Some(format!("{:016x}", h.finish()))
        } else {
            None
        };
        Self::from_request_with_tag(req, code, tag.as_deref())
    }

    /// As [`ResponseBuilder::from_request`] with a chosen To tag (used only when the request's To
    /// has none).
    pub fn from_request_with_tag(req: &Message<'_>, code: u16, to_tag: Option<&str>) -> Self {
        let mut b = ResponseBuilder::new(code, None);
        for h in req.headers_of(HeaderName::Via) {
            b.d.header("Via", h.value());
        }
        if let Some(f) = req.header(HeaderName::From) {
            b.d.header("From", f);
        }
        if let Some(t) = req.header(HeaderName::To) {
            let has_tag = req.to().ok().flatten().is_some_and(|t| t.tag().is_some());
            match to_tag {
                Some(tag) if !has_tag && code != 100 => {
                    b.d.header("To", format_args!("{t};tag={tag}"))
                }
                _ => b.d.header("To", t),
            }
        }
        if let Some(c) = req.header(HeaderName::CallId) {
            b.d.header("Call-ID", c);
        }
        if let Some(c) = req.header(HeaderName::CSeq) {
            b.d.header("CSeq", c);
        }
        if code == 100 {
            if let Some(t) = req.header(HeaderName::Timestamp) {
                b.d.header("Timestamp", t);
            }
        }
        let dialog_creating = matches!(
            req.method(),
            Some(Method::Invite | Method::Subscribe | Method::Refer | Method::Notify)
        );
        if dialog_creating && (101..300).contains(&code) {
            for h in req.headers_of(HeaderName::RecordRoute) {
                b.d.header("Record-Route", h.value());
            }
        }
        b
    }
    draft_methods!();
}
