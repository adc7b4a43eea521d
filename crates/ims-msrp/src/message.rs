//! MSRP frames (RFC 4975 §7, §9): the start line, headers in order, the body and the end-line flag.

use crate::error::{Error, ErrorKind};
use crate::headers::{
    name, parse_expires, parse_success_report, AuthParams, ByteRange, ContentType, FailureReport,
    StatusHeader,
};
use crate::uri::{parse_path, Path};
use bytes::Bytes;
use core::fmt;
use core::ops::Range;
use smallvec::SmallVec;

/// The continuation flag of an end-line (RFC 4975 §9 `continuation-flag`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Flag {
    /// `$`: the last chunk of the message.
    End,
    /// `+`: more chunks follow.
    Continue,
    /// `#`: the sender aborts the message.
    Abort,
}

impl Flag {
    /// The flag byte.
    pub fn as_byte(self) -> u8 {
        match self {
            Flag::End => b'$',
            Flag::Continue => b'+',
            Flag::Abort => b'#',
        }
    }
    /// The flag for a byte, if it is one.
    pub fn from_byte(b: u8) -> Option<Flag> {
        match b {
            b'$' => Some(Flag::End),
            b'+' => Some(Flag::Continue),
            b'#' => Some(Flag::Abort),
            _ => None,
        }
    }
}

impl fmt::Display for Flag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Flag::End => "$",
            Flag::Continue => "+",
            Flag::Abort => "#",
        })
    }
}

/// A request method (RFC 4975 §9 `method`, RFC 4976 AUTH). Unknown methods are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method<'a> {
    /// `SEND` (RFC 4975 §7.1).
    Send,
    /// `REPORT` (RFC 4975 §7.1.2).
    Report,
    /// `AUTH` (RFC 4976 §5).
    Auth,
    /// Any other method token, as written (e.g. `NICKNAME`, RFC 7701).
    Unknown(&'a str),
}

impl<'a> Method<'a> {
    /// The method for a token (methods are case-sensitive).
    pub fn from_token(s: &'a str) -> Method<'a> {
        match s {
            "SEND" => Method::Send,
            "REPORT" => Method::Report,
            "AUTH" => Method::Auth,
            o => Method::Unknown(o),
        }
    }
    /// The token.
    pub fn as_str(&self) -> &'a str {
        match self {
            Method::Send => "SEND",
            Method::Report => "REPORT",
            Method::Auth => "AUTH",
            Method::Unknown(s) => s,
        }
    }
}

impl fmt::Display for Method<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The default comment of an MSRP status code (RFC 4975 §10, RFC 4976 §10).
pub fn status_comment(code: u16) -> &'static str {
    match code {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        408 => "Request Timeout",
        413 => "Too Large",
        415 => "Unsupported Media Type",
        423 => "Interval Out-of-Bounds",
        481 => "Session does not exist",
        501 => "Not Implemented",
        506 => "Wrong Session",
        _ => "",
    }
}

/// Whether a frame is a request or a response, with the start-line fields.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Start {
    Request(Range<u32>),
    Response(u16, Option<Range<u32>>),
}

/// Where one header sits in the raw head.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct HeaderPos {
    name: Range<u32>,
    value: Range<u32>,
}

/// The start line and headers of a frame, owned as one [`Bytes`] and viewed without copying.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Head {
    raw: Bytes,
    tid: Range<u32>,
    start: Start,
    headers: SmallVec<[HeaderPos; 10]>,
    content_stuff: bool,
    fault: Option<Error>,
}

impl fmt::Debug for Head {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Head")
            .field("raw", &String::from_utf8_lossy(&self.raw))
            .finish()
    }
}

fn r(range: &Range<u32>) -> Range<usize> {
    range.start as usize..range.end as usize
}

/// `ident = ALPHANUM 3*31ident-char`, `ident-char = ALPHANUM / "." / "-" / "+" / "%" / "="`.
pub fn is_ident(s: &str) -> bool {
    let b = s.as_bytes();
    (4..=32).contains(&b.len())
        && b[0].is_ascii_alphanumeric()
        && b.iter()
            .all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'-' | b'+' | b'%' | b'='))
}

impl Head {
    /// Builds a head from raw bytes already delimited by the framer.
    pub(crate) fn from_parts(
        raw: Bytes,
        tid: Range<u32>,
        method_or_status: crate::framer::StartKind,
        headers: Vec<(Range<u32>, Range<u32>)>,
        content_stuff: bool,
        fault: Option<Error>,
    ) -> Head {
        Head {
            raw,
            tid,
            start: match method_or_status {
                Ok(m) => Start::Request(m),
                Err((c, t)) => Start::Response(c, t),
            },
            headers: headers
                .into_iter()
                .map(|(name, value)| HeaderPos { name, value })
                .collect(),
            content_stuff,
            fault,
        }
    }

    fn s(&self, range: &Range<u32>) -> &str {
        self.raw
            .get(r(range))
            .and_then(|b| std::str::from_utf8(b).ok())
            .unwrap_or("")
    }

    /// The raw bytes: start line and header lines, each with its CRLF.
    pub fn as_bytes(&self) -> &Bytes {
        &self.raw
    }
    /// The transaction id.
    pub fn transaction_id(&self) -> &str {
        self.s(&self.tid)
    }
    /// True for a request.
    pub fn is_request(&self) -> bool {
        matches!(self.start, Start::Request(_))
    }
    /// The method of a request.
    pub fn method(&self) -> Option<Method<'_>> {
        match &self.start {
            Start::Request(m) => Some(Method::from_token(self.s(m))),
            Start::Response(..) => None,
        }
    }
    /// The status code of a response.
    pub fn status(&self) -> Option<u16> {
        match &self.start {
            Start::Response(c, _) => Some(*c),
            Start::Request(_) => None,
        }
    }
    /// The comment of a response status line.
    pub fn comment(&self) -> Option<&str> {
        match &self.start {
            Start::Response(_, Some(t)) => Some(self.s(t)),
            _ => None,
        }
    }
    /// True when the header section ended with an empty line (a body part follows).
    pub fn has_content_stuff(&self) -> bool {
        self.content_stuff
    }
    /// The headers in wire order, as (name, value) with the value trimmed.
    pub fn headers(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        self.headers
            .iter()
            .map(|h| (self.s(&h.name), self.s(&h.value)))
    }
    /// The number of header lines.
    pub fn header_count(&self) -> usize {
        self.headers.len()
    }
    /// The first header with this name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }
    /// The first syntax fault found while framing (a header line without `:`, a bad byte).
    pub fn fault(&self) -> Option<Error> {
        self.fault
    }

    /// The To-Path URIs.
    pub fn to_path(&self) -> Result<Path<'_>, Error> {
        self.path(name::TO_PATH)
    }
    /// The From-Path URIs.
    pub fn from_path(&self) -> Result<Path<'_>, Error> {
        self.path(name::FROM_PATH)
    }
    /// The Use-Path URIs of an AUTH 200 (RFC 4976 §5.1), `Ok(None)` when absent.
    pub fn use_path(&self) -> Result<Option<Path<'_>>, Error> {
        self.header(name::USE_PATH)
            .map(|v| parse_path(v).map_err(|e| self.at(e, name::USE_PATH)))
            .transpose()
    }
    fn path(&self, h: &'static str) -> Result<Path<'_>, Error> {
        let v = self.header(h).ok_or(Error::new(ErrorKind::Missing(h), 0))?;
        parse_path(v).map_err(|e| self.at(e, h))
    }
    /// Moves an error in a header value to the offset of that value in the head.
    fn at(&self, e: Error, h: &str) -> Error {
        let base = self
            .headers
            .iter()
            .find(|p| self.s(&p.name).eq_ignore_ascii_case(h))
            .map_or(0, |p| p.value.start as usize);
        Error::new(e.kind, base + e.offset)
    }
    fn typed<'s, T>(
        &'s self,
        h: &'static str,
        f: impl FnOnce(&'s str) -> Result<T, Error>,
    ) -> Result<Option<T>, Error> {
        self.header(h)
            .map(|v| f(v).map_err(|e| self.at(e, h)))
            .transpose()
    }
    /// The Message-ID.
    pub fn message_id(&self) -> Option<&str> {
        self.header(name::MESSAGE_ID)
    }
    /// The Byte-Range, `Ok(None)` when absent.
    pub fn byte_range(&self) -> Result<Option<ByteRange>, Error> {
        self.typed(name::BYTE_RANGE, ByteRange::parse)
    }
    /// The Status header of a REPORT.
    pub fn status_header(&self) -> Result<Option<StatusHeader<'_>>, Error> {
        self.typed(name::STATUS, StatusHeader::parse)
    }
    /// The Content-Type.
    pub fn content_type(&self) -> Result<Option<ContentType<'_>>, Error> {
        self.typed(name::CONTENT_TYPE, ContentType::parse)
    }
    /// Success-Report (absent: `false`).
    pub fn success_report(&self) -> Result<bool, Error> {
        Ok(self
            .typed(name::SUCCESS_REPORT, parse_success_report)?
            .unwrap_or(false))
    }
    /// Failure-Report (absent: `yes`).
    pub fn failure_report(&self) -> Result<FailureReport, Error> {
        Ok(self
            .typed(name::FAILURE_REPORT, FailureReport::parse)?
            .unwrap_or_default())
    }
    /// Expires (RFC 4976).
    pub fn expires(&self) -> Result<Option<u32>, Error> {
        self.typed(name::EXPIRES, parse_expires)
    }
    /// Min-Expires (RFC 4976).
    pub fn min_expires(&self) -> Result<Option<u32>, Error> {
        self.typed(name::MIN_EXPIRES, parse_expires)
    }
    /// Max-Expires (RFC 4976).
    pub fn max_expires(&self) -> Result<Option<u32>, Error> {
        self.typed(name::MAX_EXPIRES, parse_expires)
    }
    /// WWW-Authenticate (RFC 4976 §5.1).
    pub fn www_authenticate(&self) -> Result<Option<AuthParams<'_>>, Error> {
        self.typed(name::WWW_AUTHENTICATE, |v| AuthParams::parse(v, true))
    }
    /// Authorization (RFC 4976 §5.1).
    pub fn authorization(&self) -> Result<Option<AuthParams<'_>>, Error> {
        self.typed(name::AUTHORIZATION, |v| AuthParams::parse(v, true))
    }
    /// Authentication-Info (RFC 4976).
    pub fn authentication_info(&self) -> Result<Option<AuthParams<'_>>, Error> {
        self.typed(name::AUTHENTICATION_INFO, |v| AuthParams::parse(v, false))
    }

    /// The receiver's syntax checks of RFC 4975 §7 on the head: transaction id grammar, To-Path
    /// then From-Path first, valid MSRP URIs, and every typed header the RFCs define parses.
    /// `Err` names the fault; [`Error::status`] gives the status to answer a request with.
    pub fn check(&self) -> Result<(), Error> {
        if let Some(f) = self.fault {
            return Err(f);
        }
        if !is_ident(self.transaction_id()) {
            return Err(Error::new(ErrorKind::TransactionId, 5));
        }
        let mut it = self.headers();
        match (it.next(), it.next()) {
            (Some((a, _)), Some((b, _)))
                if a.eq_ignore_ascii_case(name::TO_PATH)
                    && b.eq_ignore_ascii_case(name::FROM_PATH) => {}
            _ => {
                let missing = if self.header(name::TO_PATH).is_none() {
                    ErrorKind::Missing(name::TO_PATH)
                } else if self.header(name::FROM_PATH).is_none() {
                    ErrorKind::Missing(name::FROM_PATH)
                } else {
                    ErrorKind::PathOrder
                };
                return Err(Error::new(missing, 0));
            }
        }
        self.to_path()?;
        self.from_path()?;
        self.use_path()?;
        if let Some(m) = self.message_id() {
            if !is_ident(m) {
                return Err(self.at(
                    Error::new(ErrorKind::Syntax(name::MESSAGE_ID), 0),
                    name::MESSAGE_ID,
                ));
            }
        }
        self.byte_range()?;
        self.status_header()?;
        self.content_type()?;
        self.success_report()?;
        self.failure_report()?;
        self.expires()?;
        self.min_expires()?;
        self.max_expires()?;
        self.www_authenticate()?;
        self.authorization()?;
        self.authentication_info()?;
        if self.content_stuff {
            if !self.is_request() {
                return Err(Error::new(ErrorKind::ResponseWithBody, self.raw.len()));
            }
            if self.header(name::CONTENT_TYPE).is_none() {
                return Err(Error::new(
                    ErrorKind::BodyWithoutContentType,
                    self.raw.len(),
                ));
            }
        }
        Ok(())
    }
}

/// One whole MSRP frame: head, body (empty when none) and end-line flag.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Frame {
    /// Start line and headers.
    pub head: Head,
    /// The body (the data between the empty line and the CRLF before the end-line).
    pub body: Bytes,
    /// The continuation flag of the end-line.
    pub flag: Flag,
}

impl Frame {
    /// [`Head::check`] plus the body rules.
    pub fn check(&self) -> Result<(), Error> {
        self.head.check()
    }

    /// The frame re-encoded: identical bytes to what was framed.
    pub fn to_bytes(&self) -> Vec<u8> {
        let tid = self.head.transaction_id();
        let mut v = Vec::with_capacity(self.head.raw.len() + self.body.len() + tid.len() + 16);
        v.extend_from_slice(&self.head.raw);
        if self.head.content_stuff {
            v.extend_from_slice(b"\r\n");
            v.extend_from_slice(&self.body);
            v.extend_from_slice(b"\r\n");
        }
        v.extend_from_slice(b"-------");
        v.extend_from_slice(tid.as_bytes());
        v.push(self.flag.as_byte());
        v.extend_from_slice(b"\r\n");
        v
    }
}
