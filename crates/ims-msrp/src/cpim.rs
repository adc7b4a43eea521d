//! The `message/cpim` wrapper (RFC 3862) that IMS and RCS put around MSRP messages.
//!
//! ```text
//! From: <sip:+15551230001@ims.example.net>        message headers (RFC 3862 §3)
//! NS: imdn <urn:ietf:params:imdn>                 name spaces for prefixed headers
//! imdn.Message-ID: Xs8Kq2Lm0p
//!                                                 empty line
//! Content-Type: text/plain;charset=UTF-8          MIME headers of the content
//!                                                 empty line
//! Hi Bob                                          content
//! ```
//!
//! ```
//! use ims_msrp::cpim::{Cpim, CpimBuilder};
//! let body = CpimBuilder::new("<sip:alice@example.com>", "<sip:bob@example.com>")
//!     .datetime("2024-05-01T10:20:30.000Z")
//!     .ns("imdn", "urn:ietf:params:imdn")
//!     .header("imdn.Message-ID", "Xs8Kq2Lm0p")
//!     .content("text/plain;charset=UTF-8", b"Hi Bob")
//!     .to_bytes();
//! let c = Cpim::parse(&body)?;
//! assert_eq!(c.from(), Some("<sip:alice@example.com>"));
//! assert_eq!(c.ns_header("urn:ietf:params:imdn", "Message-ID"), Some("Xs8Kq2Lm0p"));
//! assert_eq!(c.body, b"Hi Bob");
//! # Ok::<(), ims_msrp::Error>(())
//! ```

use crate::error::{Error, ErrorKind};
use crate::headers::ContentType;

/// Most header lines in either CPIM header block.
const MAX_HEADERS: usize = 128;

/// A parsed CPIM message borrowing its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cpim<'a> {
    /// Message headers in order (From, To, DateTime, NS, Subject, Require, prefixed ones...).
    pub headers: Vec<(&'a str, &'a str)>,
    /// MIME headers of the encapsulated content (Content-Type, Content-Length, ...).
    pub content_headers: Vec<(&'a str, &'a str)>,
    /// The encapsulated content.
    pub body: &'a [u8],
}

/// Reads `name: value` lines up to an empty line; returns them and where the block ended.
/// Header lines as (name, value).
type Lines<'a> = Vec<(&'a str, &'a str)>;

fn block(data: &[u8], mut at: usize) -> Result<(Lines<'_>, usize), Error> {
    let mut out = Vec::new();
    loop {
        let rest = &data[at..];
        let Some(nl) = memchr::memchr(b'\n', rest) else {
            return Err(Error::new(
                ErrorKind::Body("CPIM: header block without empty line"),
                at,
            ));
        };
        let line = &rest[..nl];
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let next = at + nl + 1;
        if line.is_empty() {
            return Ok((out, next));
        }
        if out.len() >= MAX_HEADERS {
            return Err(Error::new(ErrorKind::Body("CPIM: too many headers"), at));
        }
        let line = std::str::from_utf8(line)
            .map_err(|_| Error::new(ErrorKind::Body("CPIM: header not UTF-8"), at))?;
        let (n, v) = line
            .split_once(':')
            .ok_or(Error::new(ErrorKind::Body("CPIM: header without ':'"), at))?;
        if n.is_empty() || !n.bytes().all(crate::uri::is_token) {
            return Err(Error::new(ErrorKind::Body("CPIM: header name"), at));
        }
        out.push((n, v.trim()));
        at = next;
    }
}

impl<'a> Cpim<'a> {
    /// Parses a `message/cpim` body.
    pub fn parse(data: &'a [u8]) -> Result<Cpim<'a>, Error> {
        let (headers, at) = block(data, 0)?;
        let (content_headers, at) = block(data, at)?;
        let mut body = &data[at..];
        let cl = content_headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("Content-Length"))
            .map(|(_, v)| v.parse::<usize>());
        match cl {
            Some(Ok(n)) if n <= body.len() => body = &body[..n],
            Some(_) => return Err(Error::new(ErrorKind::Body("CPIM: Content-Length"), at)),
            None => {}
        }
        Ok(Cpim {
            headers,
            content_headers,
            body,
        })
    }

    /// The first message header with this exact name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&'a str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| *v)
    }
    /// `From`.
    pub fn from(&self) -> Option<&'a str> {
        self.header("From")
    }
    /// Every `To`.
    pub fn to(&self) -> impl Iterator<Item = &'a str> + '_ {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("To"))
            .map(|(_, v)| *v)
    }
    /// `DateTime` (RFC 3339 text).
    pub fn datetime(&self) -> Option<&'a str> {
        self.header("DateTime")
    }
    /// `Subject` (the first).
    pub fn subject(&self) -> Option<&'a str> {
        self.header("Subject")
    }
    /// `Require` header field names.
    pub fn require(&self) -> impl Iterator<Item = &'a str> + '_ {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("Require"))
            .flat_map(|(_, v)| v.split(',').map(str::trim))
    }
    /// The name spaces: `(prefix, uri)` for each `NS: prefix <uri>`.
    pub fn name_spaces(&self) -> impl Iterator<Item = (&'a str, &'a str)> + '_ {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("NS"))
            .filter_map(|(_, v)| {
                let (p, u) = v.split_once('<')?;
                Some((p.trim(), u.trim_end().strip_suffix('>')?))
            })
    }
    /// A header of the name space `ns_uri` (e.g. `urn:ietf:params:imdn`) by its local name,
    /// whatever prefix the sender chose.
    pub fn ns_header(&self, ns_uri: &str, local: &str) -> Option<&'a str> {
        let prefix = self.name_spaces().find(|(_, u)| *u == ns_uri)?.0;
        self.headers.iter().find_map(|(n, v)| {
            let (p, l) = n.split_once('.')?;
            (p == prefix && l.eq_ignore_ascii_case(local)).then_some(*v)
        })
    }
    /// The Content-Type of the content.
    pub fn content_type(&self) -> Option<Result<ContentType<'a>, Error>> {
        self.content_headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("Content-Type"))
            .map(|(_, v)| ContentType::parse(v))
    }
}

/// Builds a `message/cpim` body (headers in the order given; Content-Length is added).
#[derive(Debug, Clone)]
pub struct CpimBuilder {
    headers: Vec<(String, String)>,
    content_type: String,
    body: Vec<u8>,
}

impl CpimBuilder {
    /// From and To (as `[display-name] <uri>`).
    pub fn new(from: &str, to: &str) -> CpimBuilder {
        CpimBuilder {
            headers: vec![("From".into(), from.into()), ("To".into(), to.into())],
            content_type: "text/plain".into(),
            body: Vec::new(),
        }
    }
    /// Adds a header.
    pub fn header(mut self, n: &str, v: &str) -> CpimBuilder {
        self.headers.push((n.into(), v.into()));
        self
    }
    /// `DateTime`.
    pub fn datetime(self, v: &str) -> CpimBuilder {
        self.header("DateTime", v)
    }
    /// `Subject`.
    pub fn subject(self, v: &str) -> CpimBuilder {
        self.header("Subject", v)
    }
    /// `Require`.
    pub fn require(self, v: &str) -> CpimBuilder {
        self.header("Require", v)
    }
    /// `NS: prefix <uri>`.
    pub fn ns(self, prefix: &str, uri: &str) -> CpimBuilder {
        self.header("NS", &format!("{prefix} <{uri}>"))
    }
    /// The content and its type.
    pub fn content(mut self, content_type: &str, body: &[u8]) -> CpimBuilder {
        self.content_type = content_type.into();
        self.body = body.to_vec();
        self
    }
    /// The encoded body.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(256 + self.body.len());
        for (n, val) in &self.headers {
            v.extend_from_slice(format!("{n}: {val}\r\n").as_bytes());
        }
        v.extend_from_slice(b"\r\n");
        v.extend_from_slice(format!("Content-Type: {}\r\n", self.content_type).as_bytes());
        v.extend_from_slice(format!("Content-Length: {}\r\n\r\n", self.body.len()).as_bytes());
        v.extend_from_slice(&self.body);
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects() {
        assert!(Cpim::parse(b"From: a\r\n").is_err());
        assert!(Cpim::parse(b"From a\r\n\r\n\r\n").is_err());
        assert!(Cpim::parse(b"From: a\r\n\r\nContent-Length: 9\r\n\r\nabc").is_err());
        let c = Cpim::parse(b"From: a\r\nRequire: x.A, x.B\r\n\r\n\r\nabc").unwrap();
        assert_eq!(c.require().collect::<Vec<_>>(), ["x.A", "x.B"]);
        assert_eq!(c.body, b"abc");
    }
}
