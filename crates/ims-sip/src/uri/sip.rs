//! `SIP-URI` and `SIPS-URI` (RFC 3261 §19.1, §25.1).

use super::host::{parse_host_prefix, Host};
use super::{params_agree, pct_decode, pct_eq, pct_eq_ic};
use crate::error::ParseError;
use crate::params::Params;
use crate::scan::{check_class, Cursor, HNV, PASSWORD, USER};
use std::fmt;

/// A `sip:` or `sips:` URI, borrowing its text.
///
/// ```
/// use ims_sip::SipUri;
/// let u = SipUri::parse("sip:+447700900123@ims.example.org;user=phone").unwrap();
/// assert_eq!(u.user(), Some("+447700900123"));
/// assert_eq!(u.params().get("user"), Some(Some("phone")));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SipUri<'a> {
    raw: &'a str,
    secure: bool,
    user: Option<&'a str>,
    password: Option<&'a str>,
    host: Host<'a>,
    port: Option<u16>,
    params: Params<'a>,
    headers: Option<&'a str>,
}

impl<'a> SipUri<'a> {
    /// Parses a complete SIP or SIPS URI.
    pub fn parse(s: &'a str) -> Result<SipUri<'a>, ParseError> {
        let b = s.as_bytes();
        let (secure, rest_at) = if b.len() >= 4 && b[..4].eq_ignore_ascii_case(b"sip:") {
            (false, 4)
        } else if b.len() >= 5 && b[..5].eq_ignore_ascii_case(b"sips:") {
            (true, 5)
        } else {
            return Err(ParseError::syntax("\"sip:\" or \"sips:\"", 0));
        };
        let mut user = None;
        let mut password = None;
        let mut hp = rest_at;
        // The usual userinfo is a run of plain user characters ending at '@': one pass finds and
        // checks it. Otherwise the first '@' (which is not a user character) is at or after the run.
        let run = b[rest_at..]
            .iter()
            .position(|&c| !USER_PLAIN[c as usize])
            .map_or(b.len(), |p| rest_at + p);
        if b.get(run) == Some(&b'@') && run > rest_at {
            user = Some(&s[rest_at..run]);
            hp = run + 1;
        } else if let Some(at) = crate::scan::find(&b[run..], b'@').map(|p| run - rest_at + p) {
            let ui = &s[rest_at..rest_at + at];
            let (u, p) = match crate::scan::find(ui.as_bytes(), b':') {
                Some(c) => (&ui[..c], Some(&ui[c + 1..])),
                None => (ui, None),
            };
            if u.is_empty() {
                return Err(ParseError::syntax("user", rest_at));
            }
            if let Some(e) = check_class(u.as_bytes(), &USER) {
                return Err(ParseError::syntax("user", rest_at + e));
            }
            if let Some(p) = p {
                if let Some(e) = check_class(p.as_bytes(), &PASSWORD) {
                    return Err(ParseError::syntax("password", rest_at + u.len() + 1 + e));
                }
            }
            user = Some(u);
            password = p;
            hp = rest_at + at + 1;
        }
        let (host, n) = parse_host_prefix(&s[hp..]).map_err(|e| shift(e, hp))?;
        let mut cur = Cursor { s, pos: hp + n };
        let mut port = None;
        if cur.eat(b':') {
            let d = cur.digits();
            if d.is_empty() || d.len() > 5 {
                return Err(cur.err("port"));
            }
            // at most five digits: a u32 holds them (no `str::parse` machinery)
            let v = d.bytes().fold(0u32, |v, c| v * 10 + u32::from(c - b'0'));
            port = Some(
                u16::try_from(v)
                    .map_err(|_| ParseError::new(crate::ErrorKind::Overflow("port"), cur.pos))?,
            );
        }
        let params = Params::parse_uri(&mut cur)?;
        let mut headers = None;
        if cur.eat(b'?') {
            let hs = cur.pos;
            loop {
                let n = cur.take_class(&HNV);
                if n.is_empty() {
                    return Err(cur.err("hname"));
                }
                cur.expect(b'=', "'=' in URI header")?;
                cur.take_class(&HNV);
                if !cur.eat(b'&') {
                    break;
                }
            }
            let h = &s[hs..cur.pos];
            if let Some(e) = check_class(h.as_bytes(), &HNV_AMP) {
                return Err(ParseError::syntax("escaped", hs + e));
            }
            headers = Some(h);
        }
        if !cur.at_end() {
            return Err(cur.err("end of SIP URI"));
        }
        Ok(SipUri {
            raw: s,
            secure,
            user,
            password,
            host,
            port,
            params,
            headers,
        })
    }

    /// The URI exactly as written.
    pub fn as_str(&self) -> &'a str {
        self.raw
    }
    /// True for `sips:`.
    pub fn is_secure(&self) -> bool {
        self.secure
    }
    /// The user part as written (with `%` escapes).
    pub fn user(&self) -> Option<&'a str> {
        self.user
    }
    /// The user part with escapes decoded (may hold any byte, `%00` included).
    pub fn user_decoded(&self) -> Option<std::borrow::Cow<'a, [u8]>> {
        self.user.map(pct_decode)
    }
    /// The password as written.
    pub fn password(&self) -> Option<&'a str> {
        self.password
    }
    /// The host.
    pub fn host(&self) -> Host<'a> {
        self.host
    }
    /// The port, if one is written.
    pub fn port(&self) -> Option<u16> {
        self.port
    }
    /// The uri-parameters (`;transport=tcp;lr`).
    pub fn params(&self) -> Params<'a> {
        self.params
    }
    /// The `transport` parameter.
    pub fn transport(&self) -> Option<&'a str> {
        self.params.get("transport").flatten()
    }
    /// True when the `lr` parameter is present (RFC 3261 §19.1.1 loose routing).
    pub fn lr(&self) -> bool {
        self.params.contains("lr")
    }
    /// The `maddr` parameter.
    pub fn maddr(&self) -> Option<&'a str> {
        self.params.get("maddr").flatten()
    }
    /// The `user` parameter (`phone`, `dialstring`, ...).
    pub fn user_param(&self) -> Option<&'a str> {
        self.params.get("user").flatten()
    }
    /// The `gr` (GRUU, RFC 5627) parameter: `Some(None)` when present without a value.
    pub fn gr(&self) -> Option<Option<&'a str>> {
        self.params.get("gr")
    }
    /// True when the `ob` parameter (RFC 5626 outbound) is present.
    pub fn ob(&self) -> bool {
        self.params.contains("ob")
    }
    /// The `?`-headers (escaped, without the `?`).
    pub fn headers(&self) -> Option<&'a str> {
        self.headers
    }
    /// Iterates the `?`-headers as `(hname, hvalue)`, both still escaped.
    pub fn header_pairs(&self) -> impl Iterator<Item = (&'a str, &'a str)> {
        self.headers
            .unwrap_or("")
            .split('&')
            .filter(|s| !s.is_empty())
            .map(|kv| match kv.split_once('=') {
                Some((k, v)) => (k, v),
                None => (kv, ""),
            })
    }

    /// RFC 3261 §19.1.4 comparison.
    pub fn equivalent(&self, o: &SipUri<'_>) -> bool {
        if self.secure != o.secure {
            return false;
        }
        let opt_eq = |a: Option<&str>, b: Option<&str>| match (a, b) {
            (None, None) => true,
            (Some(a), Some(b)) => pct_eq(a, b),
            _ => false,
        };
        if !opt_eq(self.user, o.user) || !opt_eq(self.password, o.password) {
            return false;
        }
        if !self.host.equivalent(&o.host) || self.port != o.port {
            return false;
        }
        // user, ttl, method, maddr, transport: present in one means it must match in the other
        for special in ["user", "ttl", "method", "maddr", "transport"] {
            if self.params.contains(special) != o.params.contains(special) {
                return false;
            }
        }
        // any parameter present in both must agree (a repeated name agrees with one of its values)
        if !params_agree(self.params, o.params) || !params_agree(o.params, self.params) {
            return false;
        }
        // headers: every header in either must be in the other with the same value
        let contains_all = |a: &SipUri<'_>, b: &SipUri<'_>| {
            a.header_pairs().all(|(k, v)| {
                b.header_pairs()
                    .any(|(k2, v2)| pct_eq_ic(k, k2) && pct_eq(v, v2))
            })
        };
        contains_all(self, o) && contains_all(o, self)
    }
}

crate::scan::byte_table!(HNV_AMP, |c: u8| HNV[c as usize] || c == b'&' || c == b'=');
// user characters other than '%' (a run of them needs no escape check)
crate::scan::byte_table!(USER_PLAIN, |c: u8| USER[c as usize] && c != b'%');

fn shift(mut e: ParseError, by: usize) -> ParseError {
    e.offset += by;
    e
}

impl fmt::Display for SipUri<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.raw)
    }
}
