//! MSRP URIs (RFC 4975 §6 and §9 `MSRP-URI`) and their comparison rules (RFC 4975 §6.1).
//!
//! ```text
//! MSRP-URI    = msrp-scheme "://" authority ["/" session-id] ";" transport *( ";" URI-parameter)
//! msrp-scheme = "msrp" / "msrps"
//! session-id  = 1*( unreserved / "+" / "=" / "/" )
//! transport   = "tcp" / 1*ALPHANUM
//! ```

use crate::error::{Error, ErrorKind};
use core::fmt;
use smallvec::SmallVec;
use std::net::{Ipv4Addr, Ipv6Addr};

/// The host of an MSRP URI (RFC 3986 `host`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Host<'a> {
    /// A registered name (`relay.example.com`), as written.
    Name(&'a str),
    /// A dotted IPv4 address.
    V4(Ipv4Addr),
    /// An IPv6 reference `[...]`, parsed.
    V6(Ipv6Addr),
}

impl fmt::Display for Host<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Name(n) => f.write_str(n),
            Host::V4(a) => write!(f, "{a}"),
            Host::V6(a) => write!(f, "[{a}]"),
        }
    }
}

/// A parsed MSRP URI borrowing its text, e.g. `msrps://alice@relay.example.com:2855/jui787s2f;tcp`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Uri<'a> {
    raw: &'a str,
    secure: bool,
    userinfo: Option<&'a str>,
    host_raw: &'a str,
    host: Host<'a>,
    port: Option<u16>,
    session_id: Option<&'a str>,
    transport: &'a str,
    params: &'a str,
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}
fn is_sub_delim(b: u8) -> bool {
    matches!(
        b,
        b'!' | b'$' | b'&' | b'\'' | b'(' | b')' | b'*' | b'+' | b',' | b';' | b'='
    )
}
pub(crate) fn is_token(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'-' | b'.' | b'!' | b'%' | b'*' | b'_' | b'+' | b'`' | b'\'' | b'~'
        )
}

/// Checks `%XX` escapes and that every other byte satisfies `ok`.
fn check_pct(s: &str, ok: fn(u8) -> bool) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            if !(b.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
                && b.get(i + 2).is_some_and(u8::is_ascii_hexdigit))
            {
                return false;
            }
            i += 3;
        } else if ok(b[i]) {
            i += 1;
        } else {
            return false;
        }
    }
    true
}

/// Parses an RFC 3986 host (reg-name, IPv4 or `[IPv6]`).
pub(crate) fn parse_host(s: &str) -> Option<Host<'_>> {
    if let Some(inner) = s.strip_prefix('[') {
        let inner = inner.strip_suffix(']')?;
        return inner.parse::<Ipv6Addr>().ok().map(Host::V6);
    }
    if s.is_empty() {
        return None;
    }
    if let Ok(a) = s.parse::<Ipv4Addr>() {
        return Some(Host::V4(a));
    }
    check_pct(s, |b| is_unreserved(b) || (is_sub_delim(b) && b != b';')).then_some(Host::Name(s))
}

impl<'a> Uri<'a> {
    /// Parses one MSRP URI. The whole input must be the URI.
    pub fn parse(s: &'a str) -> Result<Uri<'a>, Error> {
        let err = |what, at| Err(Error::new(ErrorKind::Uri(what), at));
        let (secure, rest, mut at) = if let Some(r) = strip_prefix_ci(s, "msrps://") {
            (true, r, 8)
        } else if let Some(r) = strip_prefix_ci(s, "msrp://") {
            (false, r, 7)
        } else {
            return err("scheme is not msrp:// or msrps://", 0);
        };
        // authority ends at '/' or ';'
        let auth_end = rest.find(['/', ';']).unwrap_or(rest.len());
        let authority = &rest[..auth_end];
        let (userinfo, hostport, hp_at) = match authority.rfind('@') {
            Some(i) => (Some(&authority[..i]), &authority[i + 1..], at + i + 1),
            None => (None, authority, at),
        };
        if let Some(u) = userinfo {
            if !check_pct(u, |b| is_unreserved(b) || is_sub_delim(b) || b == b':') {
                return err("userinfo", at);
            }
        }
        // port: after the last ':' that is outside an IPv6 reference
        let (host_raw, port) = if hostport.starts_with('[') {
            let Some(close) = hostport.find(']') else {
                return err("IPv6 reference without ']'", hp_at);
            };
            match &hostport[close + 1..] {
                "" => (&hostport[..=close], None),
                p => match p.strip_prefix(':') {
                    Some(p) => (&hostport[..=close], Some(p)),
                    None => return err("junk after IPv6 reference", hp_at + close + 1),
                },
            }
        } else {
            match hostport.rfind(':') {
                Some(i) => (&hostport[..i], Some(&hostport[i + 1..])),
                None => (hostport, None),
            }
        };
        let Some(host) = parse_host(host_raw) else {
            return err("host", hp_at);
        };
        let port = match port {
            None => None,
            Some(p) => {
                if p.is_empty() || p.len() > 5 || !p.bytes().all(|b| b.is_ascii_digit()) {
                    return err("port", hp_at + host_raw.len() + 1);
                }
                match p.parse::<u16>() {
                    Ok(n) => Some(n),
                    Err(_) => return err("port", hp_at + host_raw.len() + 1),
                }
            }
        };
        at += auth_end;
        let mut rest = &rest[auth_end..];
        let mut session_id = None;
        if let Some(r) = rest.strip_prefix('/') {
            let end = r.find(';').unwrap_or(r.len());
            let sid = &r[..end];
            if sid.is_empty()
                || !sid
                    .bytes()
                    .all(|b| is_unreserved(b) || matches!(b, b'+' | b'=' | b'/'))
            {
                return err("session-id", at + 1);
            }
            session_id = Some(sid);
            at += 1 + end;
            rest = &r[end..];
        }
        let Some(r) = rest.strip_prefix(';') else {
            return err("missing ;transport", at);
        };
        at += 1;
        let tend = r.find(';').unwrap_or(r.len());
        let transport = &r[..tend];
        if transport.is_empty() || !transport.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return err("transport", at);
        }
        let params = &r[tend..];
        // URI-parameter = token ["=" token]
        let mut p_at = at + tend;
        for p in params.split(';').skip(1) {
            let (n, v) = match p.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (p, None),
            };
            if n.is_empty()
                || !n.bytes().all(is_token)
                || v.is_some_and(|v| v.is_empty() || !v.bytes().all(is_token))
            {
                return err("URI parameter", p_at + 1);
            }
            p_at += 1 + p.len();
        }
        Ok(Uri {
            raw: s,
            secure,
            userinfo,
            host_raw,
            host,
            port,
            session_id,
            transport,
            params,
        })
    }

    /// The URI as written.
    pub fn as_str(&self) -> &'a str {
        self.raw
    }
    /// `true` for `msrps:` (TLS).
    pub fn is_secure(&self) -> bool {
        self.secure
    }
    /// The userinfo before `@`, if any.
    pub fn userinfo(&self) -> Option<&'a str> {
        self.userinfo
    }
    /// The host.
    pub fn host(&self) -> Host<'a> {
        self.host
    }
    /// The host as written (IPv6 with its brackets).
    pub fn host_str(&self) -> &'a str {
        self.host_raw
    }
    /// The explicit port, if any.
    pub fn port(&self) -> Option<u16> {
        self.port
    }
    /// The port, or 2855 (the MSRP default, RFC 4975 §15.5) when absent.
    pub fn port_or_default(&self) -> u16 {
        self.port.unwrap_or(2855)
    }
    /// The session-id after `/`, if any.
    pub fn session_id(&self) -> Option<&'a str> {
        self.session_id
    }
    /// The transport parameter (`tcp`).
    pub fn transport(&self) -> &'a str {
        self.transport
    }
    /// The URI parameters after the transport, each starting with `;` (empty when none).
    pub fn params(&self) -> &'a str {
        self.params
    }
    /// Looks up one URI parameter by name (case-insensitive): `Some("")` for a flag.
    pub fn param(&self, name: &str) -> Option<&'a str> {
        self.params.split(';').skip(1).find_map(|p| {
            let (n, v) = p.split_once('=').unwrap_or((p, ""));
            n.eq_ignore_ascii_case(name).then_some(v)
        })
    }

    /// RFC 4975 §6.1 equivalence: scheme and transport case-insensitive; userinfo and URI
    /// parameters ignored; IP addresses compared as addresses, names case-insensitively after
    /// percent-decoding; an explicit port never equals an absent one; the session-id compared
    /// case-sensitively and present only on both sides.
    pub fn equivalent(&self, other: &Uri<'_>) -> bool {
        if self.secure != other.secure
            || self.port != other.port
            || self.session_id != other.session_id
            || !self.transport.eq_ignore_ascii_case(other.transport)
        {
            return false;
        }
        match (self.host, other.host) {
            (Host::V4(a), Host::V4(b)) => a == b,
            (Host::V6(a), Host::V6(b)) => a == b,
            (Host::Name(a), Host::Name(b)) => pct_lower(a) == pct_lower(b),
            _ => false,
        }
    }

    /// An owned copy.
    pub fn to_owned_uri(&self) -> UriBuf {
        UriBuf(self.raw.to_owned())
    }
}

/// Lower-cases and decodes percent escapes, for host comparison.
fn pct_lower(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push((h * 16 + l).to_ascii_lowercase());
                i += 3;
                continue;
            }
        }
        out.push(b[i].to_ascii_lowercase());
        i += 1;
    }
    out
}

fn strip_prefix_ci<'a>(s: &'a str, p: &str) -> Option<&'a str> {
    (s.len() >= p.len() && s.as_bytes()[..p.len()].eq_ignore_ascii_case(p.as_bytes()))
        .then(|| &s[p.len()..])
}

impl fmt::Display for Uri<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.raw)
    }
}

/// An owned MSRP URI (validated text).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UriBuf(String);

impl UriBuf {
    /// Parses and keeps `s`.
    pub fn parse(s: &str) -> Result<UriBuf, Error> {
        Uri::parse(s).map(|u| u.to_owned_uri())
    }
    /// The parsed view.
    pub fn uri(&self) -> Uri<'_> {
        Uri::parse(&self.0).expect("a UriBuf holds text that parsed as a URI")
    }
    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for UriBuf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A To-Path / From-Path / Use-Path value: one or more MSRP URIs separated by spaces.
pub type Path<'a> = SmallVec<[Uri<'a>; 2]>;

/// Parses a path header value (`MSRP-URI *( SP MSRP-URI )`), tolerating runs of whitespace.
pub fn parse_path(s: &str) -> Result<Path<'_>, Error> {
    let mut out = Path::new();
    let base = s.as_ptr() as usize;
    for part in s.split([' ', '\t']).filter(|p| !p.is_empty()) {
        let off = part.as_ptr() as usize - base;
        let u = Uri::parse(part).map_err(|e| Error::new(e.kind, e.offset + off))?;
        out.push(u);
    }
    if out.is_empty() {
        return Err(Error::new(ErrorKind::Uri("empty path"), 0));
    }
    Ok(out)
}

/// Owned path: the URIs of a To-Path/From-Path.
pub type PathBuf = Vec<UriBuf>;

/// Formats a path as a header value.
pub fn path_to_string(p: &[UriBuf]) -> String {
    let mut s = String::new();
    for (i, u) in p.iter().enumerate() {
        if i > 0 {
            s.push(' ');
        }
        s.push_str(u.as_str());
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_rfc_examples() {
        let u = Uri::parse("msrp://atlanta.example.com:7654/jshA7weztas;tcp").unwrap();
        assert!(!u.is_secure());
        assert_eq!(u.host(), Host::Name("atlanta.example.com"));
        assert_eq!(u.port(), Some(7654));
        assert_eq!(u.session_id(), Some("jshA7weztas"));
        assert_eq!(u.transport(), "tcp");
        let u = Uri::parse("msrps://alice@relay.example.com;tcp").unwrap();
        assert_eq!(u.userinfo(), Some("alice"));
        assert_eq!(u.session_id(), None);
        assert_eq!(u.port(), None);
        let u = Uri::parse("msrp://[2001:db8::1]:2855/s1d;tcp;foo=bar;baz").unwrap();
        assert_eq!(u.host(), Host::V6("2001:db8::1".parse().unwrap()));
        assert_eq!(u.param("foo"), Some("bar"));
        assert_eq!(u.param("baz"), Some(""));
        assert_eq!(u.param("nope"), None);
        let u = Uri::parse("msrp://192.0.2.1/a;tcp").unwrap();
        assert_eq!(u.host(), Host::V4(Ipv4Addr::new(192, 0, 2, 1)));
    }

    #[test]
    fn rejects() {
        for s in [
            "sip:bob@example.com",
            "msrp://host/sid",
            "msrp:///sid;tcp",
            "msrp://host:99999/sid;tcp",
            "msrp://host:/sid;tcp",
            "msrp://[::1/sid;tcp",
            "msrp://host/;tcp",
            "msrp://host/s d;tcp",
            "msrp://host/sid;",
            "msrp://host/sid;tcp;=x",
            "msrp://ho%zzst/sid;tcp",
            "msrp://host%/sid;tcp",
        ] {
            assert!(Uri::parse(s).is_err(), "{s} accepted");
        }
    }

    #[test]
    fn comparison_rules() {
        let eq = |a: &str, b: &str| Uri::parse(a).unwrap().equivalent(&Uri::parse(b).unwrap());
        // scheme, host and transport case-insensitive; userinfo and params ignored
        assert!(eq(
            "MSRP://Alice@Atlanta.Example.com:7654/jshA7we;TCP;x=1",
            "msrp://atlanta.example.com:7654/jshA7we;tcp"
        ));
        assert!(eq(
            "msrp://%61tlanta.com:1/a;tcp",
            "msrp://ATLANTA.com:1/a;tcp"
        ));
        // session-id case-sensitive
        assert!(!eq("msrp://a.com:1/ABC;tcp", "msrp://a.com:1/abc;tcp"));
        // explicit port never equals an absent one
        assert!(!eq("msrp://a.com:2855/a;tcp", "msrp://a.com/a;tcp"));
        // session-id present only on one side
        assert!(!eq("msrp://a.com:1;tcp", "msrp://a.com:1/a;tcp"));
        // transport differs
        assert!(!eq("msrp://a.com:1/a;tcp", "msrp://a.com:1/a;sctp"));
        // msrp vs msrps
        assert!(!eq("msrps://a.com:1/a;tcp", "msrp://a.com:1/a;tcp"));
        // IP addresses as addresses
        assert!(eq(
            "msrp://[2001:DB8:0::1]:1/a;tcp",
            "msrp://[2001:db8::1]:1/a;tcp"
        ));
    }

    #[test]
    fn path() {
        let p = parse_path("msrps://relay.example.com:2855/jui787s2f;tcp msrps://bob.example.com:8888/9di4eae923wzd;tcp").unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!(p[1].session_id(), Some("9di4eae923wzd"));
        let e = parse_path("msrp://a.com/x;tcp sip:bob").unwrap_err();
        assert_eq!(e.offset, 19);
    }
}
