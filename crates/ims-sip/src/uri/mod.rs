//! URIs in SIP: `sip:`/`sips:` (RFC 3261 §19.1), `tel:` (RFC 3966) and any other absoluteURI
//! (`urn:`, `im:`, `pres:`, ...) kept as written.

mod host;
mod sip;
mod tel;

pub use host::Host;
pub(crate) use host::{is_ipv6, parse_host_prefix, parse_ipv4};
pub use sip::SipUri;
pub use tel::TelUri;

use crate::error::ParseError;
use crate::scan::{check_class, URIC};
use std::borrow::Cow;
use std::fmt;

/// Any URI a SIP message can carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Uri<'a> {
    /// `sip:` or `sips:`.
    Sip(SipUri<'a>),
    /// `tel:`.
    Tel(TelUri<'a>),
    /// Any other `absoluteURI` (RFC 3261 §25.1), syntax-checked and kept as written.
    Other(AbsoluteUri<'a>),
}

impl<'a> Uri<'a> {
    /// Parses a complete URI, dispatching on its scheme.
    pub fn parse(s: &'a str) -> Result<Uri<'a>, ParseError> {
        let b = s.as_bytes();
        let colon = crate::scan::find(b, b':').ok_or(ParseError::syntax("URI scheme", 0))?;
        let scheme = &b[..colon];
        if scheme.eq_ignore_ascii_case(b"sip") || scheme.eq_ignore_ascii_case(b"sips") {
            SipUri::parse(s).map(Uri::Sip)
        } else if scheme.eq_ignore_ascii_case(b"tel") {
            TelUri::parse(s).map(Uri::Tel)
        } else {
            AbsoluteUri::parse(s).map(Uri::Other)
        }
    }
    /// The URI as written.
    pub fn as_str(&self) -> &'a str {
        match self {
            Uri::Sip(u) => u.as_str(),
            Uri::Tel(u) => u.as_str(),
            Uri::Other(u) => u.as_str(),
        }
    }
    /// The scheme as written (`sip`, `tel`, `urn`, ...).
    pub fn scheme(&self) -> &'a str {
        let s = self.as_str();
        &s[..s.find(':').unwrap_or(0)]
    }
    /// The SIP URI, if this is one.
    pub fn as_sip(&self) -> Option<&SipUri<'a>> {
        match self {
            Uri::Sip(u) => Some(u),
            _ => None,
        }
    }
    /// The tel URI, if this is one.
    pub fn as_tel(&self) -> Option<&TelUri<'a>> {
        match self {
            Uri::Tel(u) => Some(u),
            _ => None,
        }
    }
    /// URI equivalence: RFC 3261 §19.1.4 for SIP, RFC 3966 §4 for tel, and for other schemes a
    /// case-insensitive scheme with an exact remainder.
    pub fn equivalent(&self, other: &Uri<'_>) -> bool {
        match (self, other) {
            (Uri::Sip(a), Uri::Sip(b)) => a.equivalent(b),
            (Uri::Tel(a), Uri::Tel(b)) => a.equivalent(b),
            (Uri::Other(a), Uri::Other(b)) => {
                a.scheme().eq_ignore_ascii_case(b.scheme()) && pct_eq(a.rest(), b.rest())
            }
            _ => false,
        }
    }
}

impl fmt::Display for Uri<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `absoluteURI = scheme ":" ( hier-part / opaque-part )`, checked for its character set only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AbsoluteUri<'a> {
    raw: &'a str,
    colon: usize,
}

impl<'a> AbsoluteUri<'a> {
    /// Parses `scheme ":" 1*uric`.
    pub fn parse(s: &'a str) -> Result<AbsoluteUri<'a>, ParseError> {
        let b = s.as_bytes();
        let colon = crate::scan::find(b, b':').ok_or(ParseError::syntax("URI scheme", 0))?;
        let scheme = &b[..colon];
        if scheme.is_empty()
            || !scheme[0].is_ascii_alphabetic()
            || !scheme
                .iter()
                .all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'-' | b'.'))
        {
            return Err(ParseError::syntax("URI scheme", 0));
        }
        let rest = &b[colon + 1..];
        if rest.is_empty() {
            return Err(ParseError::syntax("URI after scheme", colon + 1));
        }
        if let Some(e) = check_class(rest, &URIC) {
            return Err(ParseError::syntax("uric", colon + 1 + e));
        }
        Ok(AbsoluteUri { raw: s, colon })
    }
    /// The URI as written.
    pub fn as_str(&self) -> &'a str {
        self.raw
    }
    /// The scheme.
    pub fn scheme(&self) -> &'a str {
        &self.raw[..self.colon]
    }
    /// Everything after `scheme:`.
    pub fn rest(&self) -> &'a str {
        &self.raw[self.colon + 1..]
    }
}

/// Decodes `%HH` escapes. Invalid escapes are kept as written.
pub fn pct_decode(s: &str) -> Cow<'_, [u8]> {
    if !s.contains('%') {
        return Cow::Borrowed(s.as_bytes());
    }
    Cow::Owned(Unescape::new(s).collect())
}

struct Unescape<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Unescape<'a> {
    fn new(s: &'a str) -> Self {
        Unescape {
            b: s.as_bytes(),
            i: 0,
        }
    }
}

fn hexval(c: u8) -> Option<u8> {
    (c as char).to_digit(16).map(|d| d as u8)
}

impl Iterator for Unescape<'_> {
    type Item = u8;
    fn next(&mut self) -> Option<u8> {
        let c = *self.b.get(self.i)?;
        if c == b'%' {
            if let (Some(h), Some(l)) = (
                self.b.get(self.i + 1).and_then(|&x| hexval(x)),
                self.b.get(self.i + 2).and_then(|&x| hexval(x)),
            ) {
                self.i += 3;
                return Some(h << 4 | l);
            }
        }
        self.i += 1;
        Some(c)
    }
}

/// Every parameter of `a` whose name is also in `b` has an equal value (escapes decoded, case
/// ignored) among `b`'s parameters of that name.
pub(crate) fn params_agree(a: crate::Params<'_>, b: crate::Params<'_>) -> bool {
    a.iter().all(|p| {
        let mut same = b
            .iter()
            .filter(|q| q.name.eq_ignore_ascii_case(p.name))
            .peekable();
        same.peek().is_none()
            || same.any(|q| pct_eq_ic(p.value.unwrap_or(""), q.value.unwrap_or("")))
    })
}

/// Equality after decoding escapes (case-sensitive).
pub(crate) fn pct_eq(a: &str, b: &str) -> bool {
    Unescape::new(a).eq(Unescape::new(b))
}

/// Equality after decoding escapes, ASCII case-insensitive.
pub(crate) fn pct_eq_ic(a: &str, b: &str) -> bool {
    Unescape::new(a)
        .map(|c| c.to_ascii_lowercase())
        .eq(Unescape::new(b).map(|c| c.to_ascii_lowercase()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A SIP URI's port is read as `str::parse` read it: the value, and the error past 65535
    /// or five digits.
    #[test]
    fn uri_ports_are_read_as_str_parse_reads_them() {
        for p in [
            "0", "5060", "05060", "65535", "00001", "65536", "99999", "123456", "",
        ] {
            let text = format!("sip:a@h:{p};lr");
            let got = SipUri::parse(&text).map(|u| u.port());
            let want = match p.parse::<u32>() {
                Ok(v) if p.len() <= 5 => u16::try_from(v).ok().map(Some),
                _ => None,
            };
            match want {
                Some(w) => assert_eq!(got, Ok(w), "{text}"),
                None => assert!(got.is_err(), "{text}"),
            }
        }
    }

    fn eq(a: &str, b: &str) -> bool {
        Uri::parse(a).unwrap().equivalent(&Uri::parse(b).unwrap())
    }

    #[test]
    fn rfc3261_19_1_4_equivalent() {
        assert!(eq(
            "sip:%61lice@atlanta.com;transport=TCP",
            "sip:alice@AtLanTa.CoM;Transport=tcp"
        ));
        assert!(eq(
            "sip:carol@chicago.com",
            "sip:carol@chicago.com;newparam=5"
        ));
        assert!(eq(
            "sip:carol@chicago.com",
            "sip:carol@chicago.com;security=on"
        ));
        assert!(eq(
            "sip:carol@chicago.com;security=on",
            "sip:carol@chicago.com;newparam=5"
        ));
        assert!(eq(
            "sip:biloxi.com;transport=tcp;method=REGISTER?to=sip:bob%40biloxi.com",
            "sip:biloxi.com;method=REGISTER;transport=tcp?to=sip:bob%40biloxi.com"
        ));
        assert!(eq(
            "sip:alice@atlanta.com?subject=project%20x&priority=urgent",
            "sip:alice@atlanta.com?priority=urgent&subject=project%20x"
        ));
    }

    #[test]
    fn rfc3261_19_1_4_not_equivalent() {
        assert!(!eq(
            "SIP:ALICE@AtLanTa.CoM;Transport=udp",
            "sip:alice@AtLanTa.CoM;Transport=UDP"
        ));
        assert!(!eq("sip:bob@biloxi.com", "sip:bob@biloxi.com:5060"));
        assert!(!eq(
            "sip:bob@biloxi.com",
            "sip:bob@biloxi.com;transport=udp"
        ));
        assert!(!eq(
            "sip:bob@biloxi.com",
            "sip:bob@biloxi.com:6000;transport=tcp"
        ));
        assert!(!eq(
            "sip:carol@chicago.com",
            "sip:carol@chicago.com?Subject=next%20meeting"
        ));
        assert!(!eq("sip:bob@phone21.boxesbybob.com", "sip:bob@192.0.2.4"));
        assert!(!eq(
            "sip:carol@chicago.com;security=on",
            "sip:carol@chicago.com;security=off"
        ));
        assert!(!eq("sip:alice@atlanta.com", "sips:alice@atlanta.com"));
    }

    #[test]
    fn uri_kinds() {
        assert!(matches!(
            Uri::parse("urn:service:sos").unwrap(),
            Uri::Other(_)
        ));
        assert!(matches!(
            Uri::parse("im:alice@example.com").unwrap(),
            Uri::Other(_)
        ));
        assert!(matches!(
            Uri::parse("tel:+15551234567").unwrap(),
            Uri::Tel(_)
        ));
        assert!(
            Uri::parse("tel:1234").is_err(),
            "local number needs phone-context"
        );
        assert!(
            Uri::parse("sip:user@2001:db8::10").is_err(),
            "bare IPv6 (RFC 5118 §4.2)"
        );
        let u = SipUri::parse("sip:user;par=u%40example.net@example.com").unwrap();
        assert_eq!(u.user(), Some("user;par=u%40example.net"));
        assert!(u.params().is_empty());
        let u = SipUri::parse(
            "sips:alice:secret@[2001:db8::10]:5071;transport=tls;lr;gr;ob?Route=%3Csip:x%3E",
        )
        .unwrap();
        assert_eq!(u.password(), Some("secret"));
        assert_eq!(u.port(), Some(5071));
        assert!(u.lr() && u.ob());
        assert_eq!(u.gr(), Some(None));
        assert_eq!(u.header_pairs().next(), Some(("Route", "%3Csip:x%3E")));
        assert!(SipUri::parse("sip:a@b.com:70000").is_err());
        assert!(SipUri::parse("sip:a@b.com;%zz").is_err());
        assert!(TelUri::parse("tel:+1-201-555-0123")
            .unwrap()
            .equivalent(&TelUri::parse("tel:+12015550123").unwrap()));
    }
}
