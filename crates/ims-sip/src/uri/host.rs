//! `host = hostname / IPv4address / IPv6reference` (RFC 3261 §25.1), with the RFC 5118 §4.10 tolerance.

use crate::error::ParseError;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The host part of a SIP URI or Via sent-by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Host<'a> {
    /// A domain name as written (compare case-insensitively).
    Domain(&'a str),
    /// A dotted-quad IPv4 address.
    Ipv4(Ipv4Addr),
    /// An IPv6 reference; the text between the brackets as written. It matched either RFC 4291 or the
    /// RFC 3261 ABNF (which also allows the three-colon form RFC 5118 §4.10 asks receivers to tolerate).
    Ipv6(&'a str),
}

impl<'a> Host<'a> {
    /// The address, for IP literals. A tolerated three-colon IPv6 form is read as its two-colon
    /// equivalent (RFC 5118 §4.10).
    pub fn ip(&self) -> Option<IpAddr> {
        match *self {
            Host::Domain(_) => None,
            Host::Ipv4(a) => Some(IpAddr::V4(a)),
            Host::Ipv6(s) => parse_ipv6_tolerant(s).map(IpAddr::V6),
        }
    }

    /// Parses a whole host (`[v6]` needs its brackets).
    pub fn parse(s: &'a str) -> Result<Host<'a>, ParseError> {
        let (h, n) = parse_host_prefix(s)?;
        if n != s.len() {
            return Err(ParseError::syntax("host", n));
        }
        Ok(h)
    }

    /// Case-insensitive, address-aware equality (RFC 3261 §19.1.4).
    pub fn equivalent(&self, other: &Host<'_>) -> bool {
        match (self, other) {
            (Host::Domain(a), Host::Domain(b)) => a
                .trim_end_matches('.')
                .eq_ignore_ascii_case(b.trim_end_matches('.')),
            (Host::Ipv4(a), Host::Ipv4(b)) => a == b,
            (Host::Ipv6(a), Host::Ipv6(b)) => {
                match (parse_ipv6_tolerant(a), parse_ipv6_tolerant(b)) {
                    (Some(x), Some(y)) => x == y,
                    _ => a.eq_ignore_ascii_case(b),
                }
            }
            _ => false,
        }
    }
}

impl fmt::Display for Host<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Domain(d) => f.write_str(d),
            Host::Ipv4(a) => f.write_str(ipv4_text(*a, &mut [0; 15])),
            Host::Ipv6(s) => {
                f.write_str("[")?;
                f.write_str(s)?;
                f.write_str("]")
            }
        }
    }
}

/// The dotted quad of `a` written into `buf` (what `Ipv4Addr`'s `Display` writes, without the
/// formatting machinery: hosts are written at every hop).
pub(crate) fn ipv4_text(a: Ipv4Addr, buf: &mut [u8; 15]) -> &str {
    let mut n = 0;
    for (i, o) in a.octets().into_iter().enumerate() {
        if i > 0 {
            buf[n] = b'.';
            n += 1;
        }
        if o >= 100 {
            buf[n] = b'0' + o / 100;
            n += 1;
        }
        if o >= 10 {
            buf[n] = b'0' + o / 10 % 10;
            n += 1;
        }
        buf[n] = b'0' + o % 10;
        n += 1;
    }
    // only ASCII digits and dots were written
    std::str::from_utf8(&buf[..n]).unwrap_or_default()
}

/// Parses a host at the start of `s`; returns it and the bytes used.
pub(crate) fn parse_host_prefix(s: &str) -> Result<(Host<'_>, usize), ParseError> {
    let b = s.as_bytes();
    if b.first() == Some(&b'[') {
        let close = memchr::memchr(b']', b).ok_or(ParseError::syntax("']'", 0))?;
        let inner = &s[1..close];
        if !is_ipv6(inner) {
            return Err(ParseError::syntax("IPv6 address", 1));
        }
        return Ok((Host::Ipv6(inner), close + 1));
    }
    // a dotted quad (the usual host of a Via or URI here) read in one pass: when the byte
    // after it cannot continue a host, the scan below would end there too and read that quad
    if b.first().is_some_and(u8::is_ascii_digit) {
        if let Some((a, n)) = dotted_quad_prefix(b) {
            if b.get(n).is_none_or(|&c| HOSTCLASS[c as usize] == 0) {
                return Ok((Host::Ipv4(a), n));
            }
        }
    }
    // one pass: find the end of the host and check the hostname rules on the way
    let mut n = 0;
    let mut label_start = 0;
    let mut prev = DOT;
    let mut ok = true;
    loop {
        // runs of alphanumerics are the common case: a tight loop
        let run = n;
        while n < b.len() && HOSTCLASS[b[n] as usize] == ALNUM {
            n += 1;
        }
        if n > run {
            prev = ALNUM;
        }
        if n >= b.len() {
            break;
        }
        match HOSTCLASS[b[n] as usize] {
            DASH => {
                ok &= prev != DOT;
                prev = DASH;
            }
            DOT => {
                ok &= prev == ALNUM;
                prev = DOT;
                label_start = n + 1;
            }
            _ => break,
        }
        n += 1;
    }
    let h = &s[..n];
    if h.is_empty() {
        return Err(ParseError::syntax("host", 0));
    }
    if b[0].is_ascii_digit() {
        if let Some(a) = parse_ipv4(h) {
            return Ok((Host::Ipv4(a), n));
        }
    }
    // a trailing dot (fully qualified) is allowed: then the top label is the one before it
    if prev == DOT && n > 1 {
        label_start = h[..n - 1].rfind('.').map_or(0, |d| d + 1);
    }
    if !ok || prev == DASH || n > 255 || label_start >= n || !b[label_start].is_ascii_alphabetic() {
        return Err(ParseError::syntax("hostname", 0));
    }
    Ok((Host::Domain(h), n))
}

/// The [`parse_ipv4`] address at the start of `b` and its length: four parts of one to three
/// digits, each at most 255, separated by dots; `None` when the bytes there are not one, or a
/// fourth digit follows a part.
fn dotted_quad_prefix(b: &[u8]) -> Option<(Ipv4Addr, usize)> {
    let mut out = [0u8; 4];
    let mut i = 0;
    for (part, o) in out.iter_mut().enumerate() {
        if part > 0 {
            if b.get(i) != Some(&b'.') {
                return None;
            }
            i += 1;
        }
        let start = i;
        let mut v: u16 = 0;
        while let Some(&c) = b.get(i).filter(|c| c.is_ascii_digit()) {
            if i - start == 3 {
                return None;
            }
            v = v * 10 + u16::from(c - b'0');
            i += 1;
        }
        if i == start {
            return None;
        }
        *o = u8::try_from(v).ok()?;
    }
    Some((Ipv4Addr::from(out), i))
}

const ALNUM: u8 = 1;
const DASH: u8 = 2;
const DOT: u8 = 3;

/// Character classes of `hostname`: 1 alphanum, 2 `-`, 3 `.`, 0 anything else.
static HOSTCLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        let c = i as u8;
        t[i] = if c.is_ascii_alphanumeric() {
            ALNUM
        } else if c == b'-' {
            DASH
        } else if c == b'.' {
            DOT
        } else {
            0
        };
        i += 1;
    }
    t
};

/// `IPv4address = 1*3DIGIT "." 1*3DIGIT "." 1*3DIGIT "." 1*3DIGIT`, each at most 255.
pub(crate) fn parse_ipv4(s: &str) -> Option<Ipv4Addr> {
    let mut out = [0u8; 4];
    let mut part = 0usize;
    let mut val: u16 = 0;
    let mut digits = 0;
    for &c in s.as_bytes() {
        match c {
            b'0'..=b'9' => {
                digits += 1;
                if digits > 3 {
                    return None;
                }
                val = val * 10 + u16::from(c - b'0');
            }
            b'.' => {
                if digits == 0 || part == 3 {
                    return None;
                }
                out[part] = u8::try_from(val).ok()?;
                part += 1;
                val = 0;
                digits = 0;
            }
            _ => return None,
        }
    }
    if part != 3 || digits == 0 {
        return None;
    }
    out[3] = u8::try_from(val).ok()?;
    Some(Ipv4Addr::from(out))
}

/// An IPv6 address by RFC 4291 or by the RFC 3261 ABNF (`hexpart [ ":" IPv4address ]`).
pub(crate) fn is_ipv6(s: &str) -> bool {
    s.parse::<Ipv6Addr>().is_ok() || is_ipv6_3261(s)
}

fn is_hexseq(s: &str) -> bool {
    let mut n = 0;
    for g in s.split(':') {
        if g.is_empty() || g.len() > 4 || !g.bytes().all(|c| c.is_ascii_hexdigit()) {
            return false;
        }
        n += 1;
    }
    n <= 8
}

fn is_hexpart(s: &str) -> bool {
    match s.find("::") {
        Some(i) => {
            let (a, b) = (&s[..i], &s[i + 2..]);
            (a.is_empty() || is_hexseq(a)) && (b.is_empty() || is_hexseq(b))
        }
        None => is_hexseq(s),
    }
}

fn is_ipv6_3261(s: &str) -> bool {
    if s.contains('.') {
        match s.rfind(':') {
            Some(i) => is_hexpart(&s[..i]) && parse_ipv4(&s[i + 1..]).is_some(),
            None => false,
        }
    } else {
        is_hexpart(s)
    }
}

/// Reads an IPv6 text, accepting the tolerated three-colon form by dropping the extra colon.
pub(crate) fn parse_ipv6_tolerant(s: &str) -> Option<Ipv6Addr> {
    if let Ok(a) = s.parse() {
        return Some(a);
    }
    let fixed = s.replacen(":::", "::", 1);
    fixed.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `parse_host_prefix` as it was before the dotted-quad fast path (the reference).
    fn parse_host_prefix_scanned(s: &str) -> Result<(Host<'_>, usize), ParseError> {
        let b = s.as_bytes();
        if b.first() == Some(&b'[') {
            let close = memchr::memchr(b']', b).ok_or(ParseError::syntax("']'", 0))?;
            let inner = &s[1..close];
            if !is_ipv6(inner) {
                return Err(ParseError::syntax("IPv6 address", 1));
            }
            return Ok((Host::Ipv6(inner), close + 1));
        }
        let mut n = 0;
        let mut label_start = 0;
        let mut prev = DOT;
        let mut ok = true;
        loop {
            let run = n;
            while n < b.len() && HOSTCLASS[b[n] as usize] == ALNUM {
                n += 1;
            }
            if n > run {
                prev = ALNUM;
            }
            if n >= b.len() {
                break;
            }
            match HOSTCLASS[b[n] as usize] {
                DASH => {
                    ok &= prev != DOT;
                    prev = DASH;
                }
                DOT => {
                    ok &= prev == ALNUM;
                    prev = DOT;
                    label_start = n + 1;
                }
                _ => break,
            }
            n += 1;
        }
        let h = &s[..n];
        if h.is_empty() {
            return Err(ParseError::syntax("host", 0));
        }
        if b[0].is_ascii_digit() {
            if let Some(a) = parse_ipv4(h) {
                return Ok((Host::Ipv4(a), n));
            }
        }
        if prev == DOT && n > 1 {
            label_start = h[..n - 1].rfind('.').map_or(0, |d| d + 1);
        }
        if !ok
            || prev == DASH
            || n > 255
            || label_start >= n
            || !b[label_start].is_ascii_alphabetic()
        {
            return Err(ParseError::syntax("hostname", 0));
        }
        Ok((Host::Domain(h), n))
    }

    #[test]
    fn a_host_prefix_is_read_as_the_scan_reads_it() {
        let quads = [
            "127.0.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "256.1.1.1",
            "1.2.3",
            "1.2.3.4.5",
            "001.02.3.004",
            "1234.1.1.1",
            "1.2.3.1234",
            "1..2.3",
            "1.2.3.",
            "10.0.0.1x",
            "10.0.0.1-a",
            "9",
            "9.",
            "1.2.3.4a.com",
        ];
        let tails = [
            "", ":5060", ";lr", ">", " ", ".", "-", "a", "0", ",", "\u{e9}", "]",
        ];
        for q in quads {
            for t in tails {
                let s = format!("{q}{t}");
                assert_eq!(
                    parse_host_prefix(&s),
                    parse_host_prefix_scanned(&s),
                    "{s:?}"
                );
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn a_host_prefix_is_read_as_the_scan_reads_it_on_any_text(
            s in "[0-9]{0,4}(\\.[0-9]{0,4}){0,5}[0-9a-z.:;\\-\\[\\] ]{0,4}"
        ) {
            proptest::prop_assert_eq!(parse_host_prefix(&s), parse_host_prefix_scanned(&s));
        }
    }

    #[test]
    fn hosts() {
        assert_eq!(
            Host::parse("example.com").unwrap(),
            Host::Domain("example.com")
        );
        assert_eq!(
            Host::parse("192.0.2.1").unwrap(),
            Host::Ipv4(Ipv4Addr::new(192, 0, 2, 1))
        );
        assert!(Host::parse("[2001:db8::10]").is_ok());
        assert!(
            Host::parse("[2001:db8:::192.0.2.1]").is_ok(),
            "RFC 5118 §4.10 tolerance"
        );
        assert_eq!(
            Host::parse("[2001:db8:::192.0.2.1]").unwrap().ip(),
            "2001:db8::192.0.2.1".parse().ok()
        );
        assert!(Host::parse("1.2.3").is_err());
        assert!(Host::parse("256.1.1.1").is_err());
        assert!(Host::parse("-bad.com").is_err());
        assert!(Host::parse("bad-.com").is_err());
        assert!(Host::parse("a..com").is_err());
        assert!(Host::parse("a.-b.com").is_err());
        assert!(Host::parse("a.com-").is_err());
        assert!(
            Host::parse("a.9com").is_err(),
            "top label starts with a letter"
        );
        assert_eq!(
            Host::parse("p-cscf.ims-1.example.com.").unwrap(),
            Host::Domain("p-cscf.ims-1.example.com.")
        );
        assert_eq!(Host::parse("x").unwrap(), Host::Domain("x"));
        assert!(Host::parse(".").is_err());
        assert!(Host::parse("[2001:db8::10").is_err());
        assert!(Host::parse("[zz::1]").is_err());
    }

    #[test]
    fn ipv4_hosts_are_written_as_std_writes_them() {
        for o in 0..=255u8 {
            for a in [
                Ipv4Addr::new(o, 0, 9, 10),
                Ipv4Addr::new(99, o, 100, 255),
                Ipv4Addr::new(1, 199, o, o),
            ] {
                assert_eq!(Host::Ipv4(a).to_string(), a.to_string());
            }
        }
        assert_eq!(Host::Ipv6("::1").to_string(), "[::1]");
    }
}
