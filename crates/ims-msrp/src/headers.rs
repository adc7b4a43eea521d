//! Typed MSRP header values (RFC 4975 §9, RFC 4976 §8): Byte-Range, Status, Content-Type,
//! Success-Report / Failure-Report, Expires and the digest authentication headers.

use crate::error::{Error, ErrorKind};
use crate::uri::is_token;
use core::fmt;

/// Header names defined by RFC 4975 and RFC 4976, spelled as the RFCs do.
pub mod name {
    /// `To-Path` (RFC 4975).
    pub const TO_PATH: &str = "To-Path";
    /// `From-Path` (RFC 4975).
    pub const FROM_PATH: &str = "From-Path";
    /// `Message-ID` (RFC 4975).
    pub const MESSAGE_ID: &str = "Message-ID";
    /// `Byte-Range` (RFC 4975).
    pub const BYTE_RANGE: &str = "Byte-Range";
    /// `Status` (RFC 4975).
    pub const STATUS: &str = "Status";
    /// `Content-Type` (RFC 4975).
    pub const CONTENT_TYPE: &str = "Content-Type";
    /// `Success-Report` (RFC 4975).
    pub const SUCCESS_REPORT: &str = "Success-Report";
    /// `Failure-Report` (RFC 4975).
    pub const FAILURE_REPORT: &str = "Failure-Report";
    /// `Use-Path` (RFC 4976).
    pub const USE_PATH: &str = "Use-Path";
    /// `Expires` (RFC 4976).
    pub const EXPIRES: &str = "Expires";
    /// `Min-Expires` (RFC 4976).
    pub const MIN_EXPIRES: &str = "Min-Expires";
    /// `Max-Expires` (RFC 4976).
    pub const MAX_EXPIRES: &str = "Max-Expires";
    /// `WWW-Authenticate` (RFC 4976).
    pub const WWW_AUTHENTICATE: &str = "WWW-Authenticate";
    /// `Authorization` (RFC 4976).
    pub const AUTHORIZATION: &str = "Authorization";
    /// `Authentication-Info` (RFC 4976).
    pub const AUTHENTICATION_INFO: &str = "Authentication-Info";
}

fn parse_u64(s: &str, what: &'static str) -> Result<u64, Error> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Error::new(ErrorKind::Syntax(what), 0));
    }
    s.parse::<u64>()
        .map_err(|_| Error::new(ErrorKind::Overflow(what), 0))
}

/// `Byte-Range: range-start "-" range-end "/" total` (RFC 4975 §9). Bytes are numbered from 1;
/// `*` (unknown) is `None`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ByteRange {
    /// First byte of the chunk, from 1.
    pub start: u64,
    /// Last byte of the chunk, `None` for `*` (interrupted chunk).
    pub end: Option<u64>,
    /// Size of the whole message, `None` for `*` (unknown).
    pub total: Option<u64>,
}

impl ByteRange {
    /// Parses a Byte-Range value. A start of 0, an end before `start - 1` or a total smaller than
    /// the end is [`ErrorKind::ByteRange`]; a number beyond u64 is [`ErrorKind::Overflow`].
    pub fn parse(s: &str) -> Result<ByteRange, Error> {
        const H: &str = "Byte-Range";
        let syn = || Error::new(ErrorKind::Syntax(H), 0);
        let (range, total) = s.trim().split_once('/').ok_or_else(syn)?;
        let (start, end) = range.split_once('-').ok_or_else(syn)?;
        let start = parse_u64(start, H)?;
        let end = match end {
            "*" => None,
            e => Some(parse_u64(e, H)?),
        };
        let total = match total {
            "*" => None,
            t => Some(parse_u64(t, H)?),
        };
        let br = ByteRange { start, end, total };
        if start == 0
            || end.is_some_and(|e| e < start - 1)
            || matches!((end, total), (Some(e), Some(t)) if e > t)
        {
            return Err(Error::new(ErrorKind::ByteRange, 0));
        }
        Ok(br)
    }
}

impl fmt::Display for ByteRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-", self.start)?;
        match self.end {
            Some(e) => write!(f, "{e}/")?,
            None => f.write_str("*/")?,
        }
        match self.total {
            Some(t) => write!(f, "{t}"),
            None => f.write_str("*"),
        }
    }
}

/// `Status: namespace SP status-code [SP comment]` (RFC 4975 §9), as in `Status: 000 200 OK`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct StatusHeader<'a> {
    /// The namespace (3 digits; `000` for MSRP status codes).
    pub namespace: u16,
    /// The status code (3 digits).
    pub code: u16,
    /// The comment, if any.
    pub comment: Option<&'a str>,
}

fn three_digits(s: &str) -> Option<u16> {
    (s.len() == 3 && s.bytes().all(|b| b.is_ascii_digit()))
        .then(|| s.parse().ok())
        .flatten()
}

impl<'a> StatusHeader<'a> {
    /// Parses a Status value.
    pub fn parse(s: &'a str) -> Result<StatusHeader<'a>, Error> {
        let e = || Error::new(ErrorKind::Syntax("Status"), 0);
        let s = s.trim();
        let (ns, rest) = s.split_once(' ').ok_or_else(e)?;
        let namespace = three_digits(ns).ok_or_else(e)?;
        let (code, comment) = match rest.split_once(' ') {
            Some((c, t)) => (c, Some(t)),
            None => (rest, None),
        };
        let code = three_digits(code).ok_or_else(e)?;
        Ok(StatusHeader {
            namespace,
            code,
            comment,
        })
    }
}

impl fmt::Display for StatusHeader<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:03} {:03}", self.namespace, self.code)?;
        if let Some(c) = self.comment {
            write!(f, " {c}")?;
        }
        Ok(())
    }
}

/// `Content-Type: type "/" subtype *( ";" param )` (RFC 4975 §9, RFC 2045).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ContentType<'a> {
    /// The media type (`text`).
    pub mtype: &'a str,
    /// The subtype (`plain`).
    pub subtype: &'a str,
    /// Parameters as written, each with its leading `;` (may be empty).
    pub params: &'a str,
}

impl<'a> ContentType<'a> {
    /// Parses a Content-Type value.
    pub fn parse(s: &'a str) -> Result<ContentType<'a>, Error> {
        let e = || Error::new(ErrorKind::Syntax("Content-Type"), 0);
        let s = s.trim();
        let (mt, params) = match s.find(';') {
            Some(i) => (&s[..i], &s[i..]),
            None => (s, ""),
        };
        let (mtype, subtype) = mt.trim().split_once('/').ok_or_else(e)?;
        let (mtype, subtype) = (mtype.trim(), subtype.trim());
        if mtype.is_empty()
            || subtype.is_empty()
            || !mtype.bytes().all(is_token)
            || !subtype.bytes().all(is_token)
        {
            return Err(e());
        }
        for p in params.split(';').skip(1) {
            let (n, _) = p.split_once('=').ok_or_else(e)?;
            if n.trim().is_empty() || !n.trim().bytes().all(is_token) {
                return Err(e());
            }
        }
        Ok(ContentType {
            mtype,
            subtype,
            params,
        })
    }

    /// True when the type is `mtype/subtype` (case-insensitive).
    pub fn is(&self, mtype: &str, subtype: &str) -> bool {
        self.mtype.eq_ignore_ascii_case(mtype) && self.subtype.eq_ignore_ascii_case(subtype)
    }

    /// A parameter value (unquoted), by case-insensitive name.
    pub fn param(&self, name: &str) -> Option<&'a str> {
        self.params.split(';').skip(1).find_map(|p| {
            let (n, v) = p.split_once('=')?;
            n.trim()
                .eq_ignore_ascii_case(name)
                .then(|| unquote(v.trim()))
        })
    }
}

impl fmt::Display for ContentType<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}{}", self.mtype, self.subtype, self.params)
    }
}

/// Strips one pair of surrounding double quotes.
pub fn unquote(s: &str) -> &str {
    s.strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .unwrap_or(s)
}

/// `Failure-Report: "yes" / "no" / "partial"` (RFC 4975 §7.1.2); absent means `yes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum FailureReport {
    /// Responses and failure REPORTs for every failure (the default).
    #[default]
    Yes,
    /// No transaction responses and no failure REPORTs.
    No,
    /// Only negative responses and failure REPORTs; no 200.
    Partial,
}

impl FailureReport {
    /// Parses the value.
    pub fn parse(s: &str) -> Result<FailureReport, Error> {
        match s.trim() {
            v if v.eq_ignore_ascii_case("yes") => Ok(FailureReport::Yes),
            v if v.eq_ignore_ascii_case("no") => Ok(FailureReport::No),
            v if v.eq_ignore_ascii_case("partial") => Ok(FailureReport::Partial),
            _ => Err(Error::new(ErrorKind::Syntax("Failure-Report"), 0)),
        }
    }
    /// The header value.
    pub fn as_str(&self) -> &'static str {
        match self {
            FailureReport::Yes => "yes",
            FailureReport::No => "no",
            FailureReport::Partial => "partial",
        }
    }
}

/// Parses `Success-Report: "yes" / "no"` (absent means `no`).
pub fn parse_success_report(s: &str) -> Result<bool, Error> {
    match s.trim() {
        v if v.eq_ignore_ascii_case("yes") => Ok(true),
        v if v.eq_ignore_ascii_case("no") => Ok(false),
        _ => Err(Error::new(ErrorKind::Syntax("Success-Report"), 0)),
    }
}

/// Parses an Expires / Min-Expires / Max-Expires value (`1*DIGIT`, seconds, RFC 4976 §8).
pub fn parse_expires(s: &str) -> Result<u32, Error> {
    let v = parse_u64(s.trim(), "Expires")?;
    u32::try_from(v).map_err(|_| Error::new(ErrorKind::Overflow("Expires"), 0))
}

/// A digest challenge or credentials (`WWW-Authenticate`, `Authorization`,
/// `Authentication-Info`, RFC 4976 §8 via RFC 2617): a scheme and comma-separated
/// `name=value` parameters, values possibly quoted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthParams<'a> {
    /// The scheme (`Digest`); empty for Authentication-Info, which has none.
    pub scheme: &'a str,
    /// The parameters in order, values unquoted.
    pub params: Vec<(&'a str, &'a str)>,
}

impl<'a> AuthParams<'a> {
    /// Parses `scheme param, param...`. With `has_scheme` false (Authentication-Info) the
    /// whole value is the parameter list.
    pub fn parse(s: &'a str, has_scheme: bool) -> Result<AuthParams<'a>, Error> {
        let e = || Error::new(ErrorKind::Syntax("authentication header"), 0);
        let s = s.trim();
        let (scheme, mut rest) = if has_scheme {
            match s.find([' ', '\t']) {
                Some(i) => (&s[..i], s[i..].trim_start()),
                None => (s, ""),
            }
        } else {
            ("", s)
        };
        if has_scheme && (scheme.is_empty() || !scheme.bytes().all(is_token)) {
            return Err(e());
        }
        let mut params = Vec::new();
        while !rest.is_empty() {
            let eq = rest.find('=').ok_or_else(e)?;
            let n = rest[..eq].trim();
            if n.is_empty() || !n.bytes().all(is_token) || params.len() >= 64 {
                return Err(e());
            }
            let after = rest[eq + 1..].trim_start();
            let (v, next) = if let Some(q) = after.strip_prefix('"') {
                // quoted-string with backslash escapes
                let b = q.as_bytes();
                let mut i = 0;
                loop {
                    match b.get(i) {
                        None => return Err(e()),
                        Some(b'\\') => i += 2,
                        Some(b'"') => break,
                        Some(_) => i += 1,
                    }
                }
                if i > b.len() {
                    return Err(e());
                }
                (&q[..i], &q[i + 1..])
            } else {
                let end = after.find(',').unwrap_or(after.len());
                (after[..end].trim(), &after[end..])
            };
            params.push((n, v));
            let next = next.trim_start();
            rest = match next.strip_prefix(',') {
                Some(r) => r.trim_start(),
                None if next.is_empty() => "",
                None => return Err(e()),
            };
        }
        Ok(AuthParams { scheme, params })
    }

    /// A parameter by case-insensitive name.
    pub fn get(&self, name: &str) -> Option<&'a str> {
        self.params
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| *v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_range() {
        let b = ByteRange::parse("1-16/*").unwrap();
        assert_eq!((b.start, b.end, b.total), (1, Some(16), None));
        let b = ByteRange::parse("1-*/50000").unwrap();
        assert_eq!((b.end, b.total), (None, Some(50000)));
        assert_eq!(b.to_string(), "1-*/50000");
        assert_eq!(ByteRange::parse("1-0/0").unwrap().end, Some(0));
        assert_eq!(
            ByteRange::parse("-1-5/5").unwrap_err().kind,
            ErrorKind::Syntax("Byte-Range")
        );
        assert_eq!(
            ByteRange::parse("1-5/184467440737095516160")
                .unwrap_err()
                .kind,
            ErrorKind::Overflow("Byte-Range")
        );
        assert_eq!(
            ByteRange::parse("0-4/5").unwrap_err().kind,
            ErrorKind::ByteRange
        );
        assert_eq!(
            ByteRange::parse("5-2/9").unwrap_err().kind,
            ErrorKind::ByteRange
        );
        assert_eq!(
            ByteRange::parse("1-9/5").unwrap_err().kind,
            ErrorKind::ByteRange
        );
    }

    #[test]
    fn status_and_ct() {
        let s = StatusHeader::parse("000 200 OK").unwrap();
        assert_eq!((s.namespace, s.code, s.comment), (0, 200, Some("OK")));
        assert_eq!(s.to_string(), "000 200 OK");
        assert!(StatusHeader::parse("0 200").is_err());
        let c = ContentType::parse("text/plain;charset=\"UTF-8\"").unwrap();
        assert!(c.is("TEXT", "plain"));
        assert_eq!(c.param("CHARSET"), Some("UTF-8"));
        assert!(ContentType::parse("textplain").is_err());
    }

    #[test]
    fn auth() {
        let a = AuthParams::parse(
            r#"Digest realm="relay.example.com", qop="auth", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093""#,
            true,
        )
        .unwrap();
        assert_eq!(a.scheme, "Digest");
        assert_eq!(a.get("NONCE"), Some("dcd98b7102dd2f0e8b11d0f600bfb0c093"));
        let a = AuthParams::parse("qop=auth, nc=00000001, rspauth=\"ab\"", false).unwrap();
        assert_eq!(a.get("rspauth"), Some("ab"));
        assert!(AuthParams::parse("Digest realm=\"x", true).is_err());
        assert!(AuthParams::parse("Digest realm", true).is_err());
    }
}
