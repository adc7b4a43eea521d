//! Multipart bodies (RFC 2046 §5.1, RFC 5621): iterate parts of `multipart/mixed`,
//! `multipart/related` and `multipart/alternative` bodies, and build them. Binary parts are kept
//! byte for byte.

use crate::error::{ErrorKind, ParseError};
use crate::headers::MediaType;
use crate::message::{Limits, Message};
use crate::scan::TOKEN;
use crate::HeaderName;
use std::fmt::Write as _;

/// One body part: its MIME headers (raw, in order) and its content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part<'a> {
    /// `(name, value)` pairs as written.
    pub headers: Vec<(&'a str, &'a str)>,
    /// The content, exactly as in the message.
    pub body: &'a [u8],
    /// Byte offset of the part's first header from the start of the multipart body.
    pub offset: usize,
}

impl<'a> Part<'a> {
    /// The first header called `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&'a str> {
        let known = HeaderName::from_bytes(name.as_bytes());
        self.headers
            .iter()
            .find(|(n, _)| {
                if known != HeaderName::Other {
                    HeaderName::from_bytes(n.as_bytes()) == known
                } else {
                    n.eq_ignore_ascii_case(name)
                }
            })
            .map(|&(_, v)| v)
    }
    /// The part's Content-Type (RFC 2046 §5.1: `text/plain` when absent, which this returns as `None`).
    pub fn content_type(&self) -> Option<Result<MediaType<'a>, ParseError>> {
        self.header("Content-Type").map(MediaType::parse)
    }
    /// The parts of a nested multipart part, one level deeper.
    pub fn parts(&self, limits: &Limits, depth: usize) -> Result<Vec<Part<'a>>, ParseError> {
        let ct = self
            .content_type()
            .ok_or(ParseError::new(ErrorKind::Multipart, self.offset))??;
        let boundary = ct
            .param("boundary")
            .ok_or(ParseError::syntax("boundary parameter", self.offset))?;
        parse_depth(self.body, &boundary, limits, depth + 1)
    }
}

/// Splits a multipart body on `boundary`.
///
/// ```
/// let body = b"--b1\r\nContent-Type: application/sdp\r\n\r\nv=0\r\n\r\n--b1\r\n\
/// Content-Type: application/isup\r\n\r\n\x01\x00\x49\r\n--b1--\r\n";
/// let parts = ims_sip::multipart::parse(body, "b1", &Default::default()).unwrap();
/// assert_eq!(parts.len(), 2);
/// assert_eq!(parts[0].body, b"v=0\r\n");
/// assert_eq!(parts[1].body, b"\x01\x00\x49");
/// ```
pub fn parse<'a>(
    body: &'a [u8],
    boundary: &str,
    limits: &Limits,
) -> Result<Vec<Part<'a>>, ParseError> {
    parse_depth(body, boundary, limits, 1)
}

fn parse_depth<'a>(
    body: &'a [u8],
    boundary: &str,
    limits: &Limits,
    depth: usize,
) -> Result<Vec<Part<'a>>, ParseError> {
    if depth > limits.max_multipart_depth {
        return Err(ParseError::new(ErrorKind::MultipartTooDeep, 0));
    }
    if boundary.is_empty() || boundary.len() > 70 {
        return Err(ParseError::syntax("boundary of 1 to 70 characters", 0));
    }
    let mut delim = Vec::with_capacity(boundary.len() + 4);
    delim.extend_from_slice(b"\r\n--");
    delim.extend_from_slice(boundary.as_bytes());
    let finder = memchr::memmem::Finder::new(&delim);
    // the first delimiter may start the body without the CRLF
    let mut pos = if body.starts_with(&delim[2..]) {
        delim.len() - 2
    } else {
        finder
            .find(body)
            .ok_or(ParseError::new(ErrorKind::Multipart, 0))?
            + delim.len()
    };
    let mut parts = Vec::new();
    loop {
        // after a delimiter: "--" closes, otherwise transport padding then CRLF
        if body[pos..].starts_with(b"--") {
            return Ok(parts);
        }
        while pos < body.len() && (body[pos] == b' ' || body[pos] == b'\t') {
            pos += 1;
        }
        if !body[pos..].starts_with(b"\r\n") {
            return Err(ParseError::new(ErrorKind::Multipart, pos));
        }
        pos += 2;
        let next = finder
            .find(&body[pos..])
            .ok_or(ParseError::new(ErrorKind::Multipart, pos))?
            + pos;
        if parts.len() >= limits.max_multipart_parts {
            return Err(ParseError::new(ErrorKind::TooManyParts, pos));
        }
        parts.push(parse_part(&body[pos..next], pos)?);
        pos = next + delim.len();
    }
}

fn parse_part(p: &[u8], base: usize) -> Result<Part<'_>, ParseError> {
    let mut headers = Vec::new();
    let mut i = 0;
    loop {
        if p[i..].starts_with(b"\r\n") {
            i += 2;
            break;
        }
        if i >= p.len() {
            // a part with headers and no blank line has an empty body
            break;
        }
        let ns = i;
        while i < p.len() && TOKEN[p[i] as usize] {
            i += 1;
        }
        let name_end = i;
        while i < p.len() && (p[i] == b' ' || p[i] == b'\t') {
            i += 1;
        }
        if ns == name_end || p.get(i) != Some(&b':') {
            return Err(ParseError::new(ErrorKind::HeaderName, base + i));
        }
        i += 1;
        let vs = i;
        let ve = loop {
            let eol = memchr::memmem::find(&p[i..], b"\r\n")
                .map(|x| x + i)
                .ok_or(ParseError::new(ErrorKind::Multipart, base + i))?;
            if matches!(p.get(eol + 2), Some(b' ' | b'\t')) {
                i = eol + 2;
                continue;
            }
            i = eol + 2;
            break eol;
        };
        let name = std::str::from_utf8(&p[ns..name_end])
            .map_err(|_| ParseError::new(ErrorKind::HeaderName, base + ns))?;
        let value = std::str::from_utf8(&p[vs..ve])
            .map_err(|_| ParseError::new(ErrorKind::HeaderValue, base + vs))?;
        headers.push((name, value.trim_matches(|c: char| c == ' ' || c == '\t')));
        if headers.len() > 64 {
            return Err(ParseError::new(ErrorKind::TooManyHeaders, base + i));
        }
    }
    Ok(Part {
        headers,
        body: &p[i.min(p.len())..],
        offset: base,
    })
}

impl<'a> Message<'a> {
    /// The parts of a `multipart/*` body, using the Content-Type boundary. `Ok(None)` when the
    /// body is not multipart.
    pub fn multipart(&self, limits: &Limits) -> Result<Option<Vec<Part<'a>>>, ParseError> {
        let Some(ct) = self.get::<crate::headers::ContentType<'a>>()? else {
            return Ok(None);
        };
        if !ct.0.mtype.eq_ignore_ascii_case("multipart") {
            return Ok(None);
        }
        let boundary = ct.0.param("boundary").ok_or_else(|| {
            let at = self
                .headers_of(HeaderName::ContentType)
                .next()
                .map_or(0, |h| h.value_offset());
            ParseError {
                header: Some(HeaderName::ContentType),
                ..ParseError::syntax("boundary parameter", at)
            }
        })?;
        parse(self.body(), &boundary, limits)
            .map(Some)
            .map_err(|mut e| {
                // part offsets count from the body; errors here count from the message
                e.offset += self.body_offset();
                e
            })
    }
}

/// Builds a multipart body.
///
/// ```
/// use ims_sip::multipart::Builder;
/// let (ct, body) = Builder::new("mixed", "boundary1")
///     .part("application/sdp", &[], b"v=0\r\n")
///     .part("application/isup;version=itu-t92+", &[("Content-Disposition", "signal;handling=optional")], &[0x01, 0x00])
///     .build();
/// assert_eq!(ct, "multipart/mixed;boundary=boundary1");
/// let parts = ims_sip::multipart::parse(&body, "boundary1", &Default::default()).unwrap();
/// assert_eq!(parts[1].body, &[0x01, 0x00]);
/// assert_eq!(parts[1].header("content-disposition"), Some("signal;handling=optional"));
/// ```
#[derive(Debug, Clone)]
pub struct Builder {
    subtype: String,
    boundary: String,
    body: Vec<u8>,
    extra: String,
}

impl Builder {
    /// A `multipart/<subtype>` body with this boundary (1 to 70 `bchars`, RFC 2046 §5.1.1).
    pub fn new(subtype: &str, boundary: &str) -> Self {
        Builder {
            subtype: subtype.into(),
            boundary: boundary.into(),
            body: Vec::new(),
            extra: String::new(),
        }
    }
    /// Adds a Content-Type parameter to the multipart type (`type="application/sdp"` for related).
    pub fn param(mut self, name: &str, value: &str) -> Self {
        let _ = write!(self.extra, ";{name}={value}");
        self
    }
    /// Appends a part.
    pub fn part(mut self, content_type: &str, headers: &[(&str, &str)], content: &[u8]) -> Self {
        if !self.body.is_empty() {
            self.body.extend_from_slice(b"\r\n");
        }
        let mut h = format!("--{}\r\nContent-Type: {content_type}\r\n", self.boundary);
        for (n, v) in headers {
            let _ = write!(h, "{n}: {v}\r\n");
        }
        h.push_str("\r\n");
        self.body.extend_from_slice(h.as_bytes());
        self.body.extend_from_slice(content);
        self
    }
    /// The Content-Type value and the body.
    pub fn build(mut self) -> (String, Vec<u8>) {
        self.body
            .extend_from_slice(format!("\r\n--{}--\r\n", self.boundary).as_bytes());
        (
            format!(
                "multipart/{};boundary={}{}",
                self.subtype, self.boundary, self.extra
            ),
            self.body,
        )
    }
}
