//! Authentication headers (RFC 3261 §20.6/7/27/28/44, RFC 7616, RFC 3310 AKA, TS 24.229
//! `integrity-protected`): Authorization, Proxy-Authorization, WWW-Authenticate,
//! Proxy-Authenticate, Authentication-Info.

use super::{whole, TypedHeader};
use crate::error::ParseError;
use crate::params::Param;
use crate::scan::{is_lws, unquote, Cursor, TOKEN};
use crate::HeaderName;
use std::borrow::Cow;
use std::fmt;

/// A comma-separated `auth-param` list: `name EQUAL ( token / quoted-string )`.
#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub struct AuthParams<'a> {
    raw: &'a str,
}

impl fmt::Debug for AuthParams<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

crate::scan::byte_table!(AUTH_TOKEN, |c: u8| TOKEN[c as usize]
    || c == b'/'
    || c == b':'
    || c == b'=');

impl<'a> AuthParams<'a> {
    fn parse_at(c: &mut Cursor<'a>) -> Result<AuthParams<'a>, ParseError> {
        Self::parse_at_with(c, |_, _| {})
    }
    /// [`AuthParams::parse_at`], handing each parameter to `each` as the grammar reads it: its
    /// name and its value as written (a token, or a quoted-string with its quotes).
    fn parse_at_with(
        c: &mut Cursor<'a>,
        mut each: impl FnMut(&'a str, &'a str),
    ) -> Result<AuthParams<'a>, ParseError> {
        let start = c.pos;
        loop {
            let name = c.token("auth-param name")?;
            if !c.sep(b'=') {
                return Err(c.err("'='"));
            }
            let value = if c.peek() == Some(b'"') {
                c.quoted_string()?
            } else {
                let v = c.take_class(&AUTH_TOKEN);
                if v.is_empty() {
                    return Err(c.err("auth-param value"));
                }
                v
            };
            each(name, value);
            if !c.sep(b',') {
                break;
            }
        }
        Ok(AuthParams {
            raw: &c.s[start..c.pos],
        })
    }
    /// The raw parameter text.
    pub fn as_str(&self) -> &'a str {
        self.raw
    }
    /// Iterates the parameters (values as written, quotes kept).
    pub fn iter(&self) -> impl Iterator<Item = Param<'a>> + 'a {
        AuthIter {
            s: self.raw,
            pos: 0,
        }
    }
    /// The raw value of `name` (case-insensitive name).
    pub fn get(&self, name: &str) -> Option<&'a str> {
        self.iter()
            .find(|p| p.name.eq_ignore_ascii_case(name))
            .and_then(|p| p.value)
    }
    /// The unquoted value of `name`.
    pub fn value(&self, name: &str) -> Option<Cow<'a, str>> {
        self.get(name).map(unquote)
    }
}

struct AuthIter<'a> {
    s: &'a str,
    pos: usize,
}

impl<'a> Iterator for AuthIter<'a> {
    type Item = Param<'a>;
    fn next(&mut self) -> Option<Param<'a>> {
        let b = self.s.as_bytes();
        while self.pos < b.len() && (is_lws(b[self.pos]) || b[self.pos] == b',') {
            self.pos += 1;
        }
        if self.pos >= b.len() {
            return None;
        }
        let ns = self.pos;
        while self.pos < b.len() && TOKEN[b[self.pos] as usize] {
            self.pos += 1;
        }
        let name = &self.s[ns..self.pos];
        while self.pos < b.len() && (is_lws(b[self.pos]) || b[self.pos] == b'=') {
            self.pos += 1;
        }
        let vs = self.pos;
        if b.get(vs) == Some(&b'"') {
            let mut c = Cursor { s: self.s, pos: vs };
            self.pos = c.quoted_string().map(|q| vs + q.len()).unwrap_or(b.len());
        } else {
            while self.pos < b.len() && AUTH_TOKEN[b[self.pos] as usize] {
                self.pos += 1;
            }
        }
        Some(Param {
            name,
            value: Some(&self.s[vs..self.pos]),
        })
    }
}

/// `credentials` (Authorization) or `challenge` (WWW-Authenticate): an auth-scheme and its params.
///
/// ```
/// use ims_sip::headers::{Authorization, TypedHeader};
/// let a = Authorization::parse(r#"Digest username="alice@ims.example.com", realm="ims.example.com", nonce="", uri="sip:ims.example.com", response="", integrity-protected="no""#).unwrap();
/// assert!(a.is_digest());
/// assert_eq!(a.username().as_deref(), Some("alice@ims.example.com"));
/// assert_eq!(a.param("integrity-protected").as_deref(), Some("no"));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Credentials<'a> {
    /// The auth-scheme (`Digest`, or an unknown scheme kept as written).
    pub scheme: &'a str,
    /// The parameters.
    pub params: AuthParams<'a>,
}

/// A challenge has the same shape as credentials.
pub type Challenge<'a> = Credentials<'a>;

impl<'a> Credentials<'a> {
    /// Parses `auth-scheme LWS auth-param *(COMMA auth-param)`.
    pub fn parse(s: &'a str) -> Result<Self, ParseError> {
        Self::parse_each(s, |_, _| {})
    }
    /// [`Credentials::parse`], handing each parameter to `each` on the way, in order: its name
    /// and its value as the grammar reads it (a token, or a quoted-string with its quotes). A
    /// caller that wants the parameters needs no second pass over them (as
    /// [`AuthParams::iter`]), but note that the grammar's value and the iterator's differ when
    /// the value starts with `=` (`a==b`: the grammar reads `=b`, the iterator `b`). On an error
    /// the parameters before it were handed already; the `Err` says to drop them.
    pub fn parse_each(
        s: &'a str,
        mut each: impl FnMut(&'a str, &'a str),
    ) -> Result<Self, ParseError> {
        whole(s, |c| {
            let scheme = c.token("auth-scheme")?;
            let before = c.pos;
            c.skip_lws();
            if c.at_end() {
                return Ok(Credentials {
                    scheme,
                    params: AuthParams::default(),
                });
            }
            if c.pos == before {
                return Err(c.err("LWS after auth-scheme"));
            }
            let params = AuthParams::parse_at_with(c, &mut each)?;
            Ok(Credentials { scheme, params })
        })
    }
    /// True for the `Digest` scheme (case-insensitive).
    pub fn is_digest(&self) -> bool {
        self.scheme.eq_ignore_ascii_case("Digest")
    }
    /// Any parameter, unquoted.
    pub fn param(&self, name: &str) -> Option<Cow<'a, str>> {
        self.params.value(name)
    }
    /// `username`.
    pub fn username(&self) -> Option<Cow<'a, str>> {
        self.param("username")
    }
    /// `realm`.
    pub fn realm(&self) -> Option<Cow<'a, str>> {
        self.param("realm")
    }
    /// `nonce` (for AKA: base64 of RAND‖AUTN‖server data, RFC 3310).
    pub fn nonce(&self) -> Option<Cow<'a, str>> {
        self.param("nonce")
    }
    /// `uri` (digest-uri).
    pub fn uri(&self) -> Option<Cow<'a, str>> {
        self.param("uri")
    }
    /// `response`.
    pub fn response(&self) -> Option<Cow<'a, str>> {
        self.param("response")
    }
    /// `algorithm` (`MD5`, `SHA-256`, `AKAv1-MD5`, `AKAv2-MD5`, ...).
    pub fn algorithm(&self) -> Option<Cow<'a, str>> {
        self.param("algorithm")
    }
    /// `cnonce`.
    pub fn cnonce(&self) -> Option<Cow<'a, str>> {
        self.param("cnonce")
    }
    /// `nc` (nonce count, 8 hex digits).
    pub fn nc(&self) -> Option<Cow<'a, str>> {
        self.param("nc")
    }
    /// `qop` (a single value in credentials; a quoted list in a challenge).
    pub fn qop(&self) -> Option<Cow<'a, str>> {
        self.param("qop")
    }
    /// `opaque`.
    pub fn opaque(&self) -> Option<Cow<'a, str>> {
        self.param("opaque")
    }
    /// `auts` (RFC 3310 AKA resynchronisation).
    pub fn auts(&self) -> Option<Cow<'a, str>> {
        self.param("auts")
    }
    /// `stale` in a challenge.
    pub fn stale(&self) -> bool {
        self.param("stale")
            .is_some_and(|s| s.eq_ignore_ascii_case("true"))
    }
}

impl fmt::Display for Credentials<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.scheme)?;
        for (i, p) in self.params.iter().enumerate() {
            f.write_str(if i == 0 { " " } else { ", " })?;
            write!(f, "{}={}", p.name, p.value.unwrap_or(""))?;
        }
        Ok(())
    }
}

macro_rules! cred_header {
    ($(#[$doc:meta])* $ty:ident, $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub struct $ty<'a>(pub Credentials<'a>);

        impl<'a> core::ops::Deref for $ty<'a> {
            type Target = Credentials<'a>;
            fn deref(&self) -> &Credentials<'a> {
                &self.0
            }
        }

        impl<'a> TypedHeader<'a> for $ty<'a> {
            const NAME: HeaderName = HeaderName::$name;
            fn parse(s: &'a str) -> Result<Self, ParseError> {
                Credentials::parse(s).map($ty)
            }
        }

        impl fmt::Display for $ty<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }
    };
}

cred_header!(
    /// Authorization (RFC 3261 §20.7).
    Authorization, Authorization);
cred_header!(
    /// Proxy-Authorization (RFC 3261 §20.28).
    ProxyAuthorization, ProxyAuthorization);
cred_header!(
    /// WWW-Authenticate (RFC 3261 §20.44); IMS adds `ck`/`ik` on the Cx-facing leg.
    WwwAuthenticate, WwwAuthenticate);
cred_header!(
    /// Proxy-Authenticate (RFC 3261 §20.27).
    ProxyAuthenticate, ProxyAuthenticate);

/// Authentication-Info (RFC 3261 §20.6): `ainfo *(COMMA ainfo)` with nextnonce, qop, rspauth,
/// cnonce, nc.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthenticationInfo<'a>(pub AuthParams<'a>);

impl<'a> TypedHeader<'a> for AuthenticationInfo<'a> {
    const NAME: HeaderName = HeaderName::AuthenticationInfo;
    fn parse(s: &'a str) -> Result<Self, ParseError> {
        whole(s, |c| AuthParams::parse_at(c).map(AuthenticationInfo))
    }
}

impl<'a> AuthenticationInfo<'a> {
    /// `nextnonce`.
    pub fn nextnonce(&self) -> Option<Cow<'a, str>> {
        self.0.value("nextnonce")
    }
    /// `rspauth`.
    pub fn rspauth(&self) -> Option<Cow<'a, str>> {
        self.0.value("rspauth")
    }
}

impl fmt::Display for AuthenticationInfo<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{}={}", p.name, p.value.unwrap_or(""))?;
        }
        Ok(())
    }
}
