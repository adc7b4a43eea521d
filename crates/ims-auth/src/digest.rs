//! HTTP Digest for SIP: RFC 2617 (MD5, MD5-sess, qop `auth` / `auth-int`), RFC 7616 / RFC 8760
//! (SHA-256, SHA-512-256 and their `-sess` forms) and the AKA algorithms of RFC 3310 / RFC 4169.
//!
//! - [`Challenge`] is a `WWW-Authenticate` / `Proxy-Authenticate` value, [`Credentials`] an
//!   `Authorization` / `Proxy-Authorization` value. Both parse on top of the `ims-sip` auth-param
//!   grammar, borrow the input where they can, and print back with `Display`.
//! - [`answer`] (UAC) computes credentials for a challenge.
//! - [`DigestServer`] (registrar, proxy) issues nonces that carry their own expiry and an HMAC
//!   integrity tag, so verifying needs no per-nonce state; [`NonceCounts`] adds the nonce-count
//!   replay check, bounded in memory.

use crate::aka::{akav2_password, AkaFailure, AkaKeys, AkaNonce, AuthVector, Usim};
use crate::encoding::{base64_decode, base64_encode, ct_eq};
use crate::AuthError;
use hmac::{Hmac, Mac};
use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

// ---------------------------------------------------------------------------------------------
// Algorithms and hashing
// ---------------------------------------------------------------------------------------------

/// A digest `algorithm` (RFC 7616 §6.1 registry, RFC 3310, RFC 4169).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Algorithm {
    /// `MD5` (the default when `algorithm` is absent).
    Md5,
    /// `MD5-sess`.
    Md5Sess,
    /// `SHA-256`.
    Sha256,
    /// `SHA-256-sess`.
    Sha256Sess,
    /// `SHA-512-256`.
    Sha512_256,
    /// `SHA-512-256-sess`.
    Sha512_256Sess,
    /// `AKAv1-MD5`: MD5 digest with password = RES (RFC 3310).
    AkaV1Md5,
    /// `AKAv2-MD5`: MD5 digest with password = base64(HMAC-MD5(RES‖IK‖CK, …)) (RFC 4169).
    AkaV2Md5,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum HashKind {
    Md5,
    Sha256,
    Sha512_256,
}

impl Algorithm {
    /// All algorithms, for iteration.
    pub const ALL: [Algorithm; 8] = [
        Algorithm::Md5,
        Algorithm::Md5Sess,
        Algorithm::Sha256,
        Algorithm::Sha256Sess,
        Algorithm::Sha512_256,
        Algorithm::Sha512_256Sess,
        Algorithm::AkaV1Md5,
        Algorithm::AkaV2Md5,
    ];
    /// The token as registered.
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Md5 => "MD5",
            Algorithm::Md5Sess => "MD5-sess",
            Algorithm::Sha256 => "SHA-256",
            Algorithm::Sha256Sess => "SHA-256-sess",
            Algorithm::Sha512_256 => "SHA-512-256",
            Algorithm::Sha512_256Sess => "SHA-512-256-sess",
            Algorithm::AkaV1Md5 => "AKAv1-MD5",
            Algorithm::AkaV2Md5 => "AKAv2-MD5",
        }
    }
    /// Case-insensitive lookup of a token.
    pub fn from_token(s: &str) -> Option<Algorithm> {
        Algorithm::ALL
            .into_iter()
            .find(|a| a.as_str().eq_ignore_ascii_case(s))
    }
    /// True for the `-sess` variants (HA1 mixes in nonce and cnonce, RFC 7616 §3.4.2).
    pub fn is_sess(self) -> bool {
        matches!(
            self,
            Algorithm::Md5Sess | Algorithm::Sha256Sess | Algorithm::Sha512_256Sess
        )
    }
    /// True for the AKA algorithms, whose nonce carries RAND and AUTN.
    pub fn is_aka(self) -> bool {
        matches!(self, Algorithm::AkaV1Md5 | Algorithm::AkaV2Md5)
    }
    fn hash(self) -> HashKind {
        match self {
            Algorithm::Md5 | Algorithm::Md5Sess | Algorithm::AkaV1Md5 | Algorithm::AkaV2Md5 => {
                HashKind::Md5
            }
            Algorithm::Sha256 | Algorithm::Sha256Sess => HashKind::Sha256,
            Algorithm::Sha512_256 | Algorithm::Sha512_256Sess => HashKind::Sha512_256,
        }
    }
    /// H(data) as lowercase hex: 32 digits for MD5, 64 for SHA-256 and SHA-512-256.
    pub fn h(self, data: &[u8]) -> String {
        self.h_parts(&[data])
    }
    /// H(p0 ":" p1 ":" …) as lowercase hex.
    fn h_parts(self, parts: &[&[u8]]) -> String {
        fn run<D: sha2::Digest>(parts: &[&[u8]]) -> String {
            let mut d = D::new();
            for (i, p) in parts.iter().enumerate() {
                if i > 0 {
                    d.update(b":");
                }
                d.update(p);
            }
            lower_hex(&d.finalize())
        }
        match self.hash() {
            HashKind::Md5 => run::<md5::Md5>(parts),
            HashKind::Sha256 => run::<sha2::Sha256>(parts),
            HashKind::Sha512_256 => run::<sha2::Sha512_256>(parts),
        }
    }
}

/// Lowercase hex of `bytes` (what `Hex`'s `Display` writes, without a `fmt` call per byte:
/// digests are written several times per request).
fn lower_hex(bytes: &[u8]) -> String {
    crate::encoding::hex_encode(bytes)
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A quality of protection (RFC 7616 §3.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Qop {
    /// `auth`: the request line is protected.
    Auth,
    /// `auth-int`: the body is protected too.
    AuthInt,
}

impl Qop {
    /// The token.
    pub fn as_str(self) -> &'static str {
        match self {
            Qop::Auth => "auth",
            Qop::AuthInt => "auth-int",
        }
    }
    /// Case-insensitive lookup.
    pub fn from_token(s: &str) -> Option<Qop> {
        if s.eq_ignore_ascii_case("auth") {
            Some(Qop::Auth)
        } else if s.eq_ignore_ascii_case("auth-int") {
            Some(Qop::AuthInt)
        } else {
            None
        }
    }
}

/// HA1 = H(username ":" realm ":" password) (RFC 7616 §3.4.2), what a server may store instead
/// of the password. For the `-sess` algorithms this is the inner hash; the session part is
/// added per nonce.
pub fn ha1(algorithm: Algorithm, username: &str, realm: &str, password: &[u8]) -> String {
    algorithm.h_parts(&[username.as_bytes(), realm.as_bytes(), password])
}

/// What the request digest is computed over, besides HA1.
#[derive(Debug, Clone, Copy)]
pub struct DigestInput<'x> {
    /// The algorithm.
    pub algorithm: Algorithm,
    /// The server nonce.
    pub nonce: &'x str,
    /// `nc` as sent (8 hex digits), with qop.
    pub nc: &'x str,
    /// `cnonce`, with qop or a `-sess` algorithm.
    pub cnonce: &'x str,
    /// The qop, or `None` for the RFC 2069 form.
    pub qop: Option<Qop>,
    /// The request method (`REGISTER`).
    pub method: &'x str,
    /// The digest-uri.
    pub uri: &'x str,
    /// The message body (used by `auth-int`).
    pub body: &'x [u8],
}

impl DigestInput<'_> {
    fn session_ha1(&self, ha1: &str) -> String {
        if self.algorithm.is_sess() {
            self.algorithm.h_parts(&[
                ha1.as_bytes(),
                self.nonce.as_bytes(),
                self.cnonce.as_bytes(),
            ])
        } else {
            ha1.to_owned()
        }
    }
    fn ha2(&self, method: &str) -> String {
        let a = self.algorithm;
        match self.qop {
            Some(Qop::AuthInt) => {
                let hb = a.h(self.body);
                a.h_parts(&[method.as_bytes(), self.uri.as_bytes(), hb.as_bytes()])
            }
            _ => a.h_parts(&[method.as_bytes(), self.uri.as_bytes()]),
        }
    }
    fn kd(&self, ha1: &str, ha2: &str) -> String {
        let ha1 = self.session_ha1(ha1);
        let a = self.algorithm;
        match self.qop {
            Some(q) => a.h_parts(&[
                ha1.as_bytes(),
                self.nonce.as_bytes(),
                self.nc.as_bytes(),
                self.cnonce.as_bytes(),
                q.as_str().as_bytes(),
                ha2.as_bytes(),
            ]),
            None => a.h_parts(&[ha1.as_bytes(), self.nonce.as_bytes(), ha2.as_bytes()]),
        }
    }
    /// The `response` value, from HA1 (see [`ha1`]).
    pub fn response(&self, ha1: &str) -> String {
        self.kd(ha1, &self.ha2(self.method))
    }
    /// The `rspauth` of Authentication-Info (RFC 2617 §3.2.3): A2 has an empty method.
    pub fn rspauth(&self, ha1: &str) -> String {
        self.kd(ha1, &self.ha2(""))
    }
}

// ---------------------------------------------------------------------------------------------
// Header values
// ---------------------------------------------------------------------------------------------

/// Longest header value accepted by [`Challenge::parse`] and [`Credentials::parse`].
pub const MAX_HEADER_VALUE: usize = 8192;
/// Most parameters accepted in one value.
pub const MAX_PARAMS: usize = 64;

fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&c))
}

/// A quoted-string (RFC 3261 §25.1) holding `v`: `"` and `\` and the control characters that
/// qdtext excludes are written as quoted-pairs; CR, LF, SP and HTAB stay as they are (a value
/// only holds CR or LF as part of a folded line, which qdtext allows).
fn quote(v: &str) -> String {
    let mut q = String::with_capacity(v.len() + 2);
    q.push('"');
    for ch in v.chars() {
        let needs_pair = matches!(ch, '"' | '\\')
            || (ch.is_ascii_control() && !matches!(ch, '\r' | '\n' | '\t'));
        if needs_pair {
            q.push('\\');
        }
        q.push(ch);
    }
    q.push('"');
    q
}

fn write_quoted(f: &mut fmt::Formatter<'_>, v: &str) -> fmt::Result {
    // what `quote` writes; without a copy when nothing needs a quoted-pair (every nonce,
    // realm and qop we write)
    if v.bytes().any(|b| {
        b == b'"' || b == b'\\' || (b.is_ascii_control() && !matches!(b, b'\r' | b'\n' | b'\t'))
    }) {
        return f.write_str(&quote(v));
    }
    f.write_str("\"")?;
    f.write_str(v)?;
    f.write_str("\"")
}

fn write_token_or_quoted(f: &mut fmt::Formatter<'_>, v: &str) -> fmt::Result {
    if is_token(v) {
        f.write_str(v)
    } else {
        write_quoted(f, v)
    }
}

/// Splits a `Digest …` value into its params (name, raw value as written).
/// The auth-params of a Digest header value, checked (count, values) and collected in one pass:
/// the first 16 on the stack, more (rare) in a `Vec`.
fn digest_params(s: &str) -> Result<ParamList<'_>, AuthError> {
    if s.len() > MAX_HEADER_VALUE {
        return Err(AuthError::BadParam("header value too long"));
    }
    let mut v = ParamList {
        head: [("", ""); 16],
        n: 0,
        more: Vec::new(),
    };
    // the pairs as the grammar reads them, collected on the way: the parameter iterator's
    // pairs (what the loop below takes) are the same ones unless a value starts with `=`
    // (`a==b`: the grammar reads `=b`, the iterator `b`), which takes the loop
    let mut odd = false;
    let c = ims_sip::headers::Credentials::parse_each(s, |name, value| {
        odd |= value.starts_with('=');
        if v.n < MAX_PARAMS {
            v.push((name, value));
        } else {
            // past the limit: the loop below gives the error
            odd = true;
        }
    })?;
    if !c.is_digest() {
        return Err(AuthError::NotDigest(c.scheme.to_owned()));
    }
    if !odd {
        return Ok(v);
    }
    v = ParamList {
        head: [("", ""); 16],
        n: 0,
        more: Vec::new(),
    };
    for p in c.params.iter() {
        if v.n == MAX_PARAMS {
            return Err(AuthError::BadParam("too many parameters"));
        }
        // a value the grammar accepted but the parameter iterator returns empty (odd LWS
        // around `=`) would print as `name=`, which does not parse: refuse it here
        match p.value {
            Some(val) if !val.is_empty() => v.push((p.name, val)),
            _ => return Err(AuthError::BadParam("auth-param value")),
        }
    }
    Ok(v)
}

/// `(name, value)` pairs, the first 16 without allocating.
struct ParamList<'a> {
    head: [(&'a str, &'a str); 16],
    n: usize,
    more: Vec<(&'a str, &'a str)>,
}

impl<'a> ParamList<'a> {
    fn push(&mut self, p: (&'a str, &'a str)) {
        match self.head.get_mut(self.n) {
            Some(slot) => *slot = p,
            None => self.more.push(p),
        }
        self.n += 1;
    }
}

impl<'a> IntoIterator for ParamList<'a> {
    type Item = (&'a str, &'a str);
    type IntoIter = std::iter::Chain<
        std::iter::Take<std::array::IntoIter<(&'a str, &'a str), 16>>,
        std::vec::IntoIter<(&'a str, &'a str)>,
    >;
    fn into_iter(self) -> Self::IntoIter {
        self.head.into_iter().take(self.n).chain(self.more)
    }
}

/// The known parameter `name` is (case-insensitive), as its lowercase token, without
/// allocating; `None` for another one.
fn known_param(name: &str, known: &[&'static str]) -> Option<&'static str> {
    known.iter().copied().find(|k| name.eq_ignore_ascii_case(k))
}

fn set<'a>(
    slot: &mut Option<Cow<'a, str>>,
    name: &'static str,
    raw: &'a str,
) -> Result<(), AuthError> {
    if slot.is_some() {
        return Err(AuthError::BadParam(name));
    }
    *slot = Some(ims_sip::unquote(raw));
    Ok(())
}

fn parse_bool(v: Option<&str>, name: &'static str) -> Result<bool, AuthError> {
    match v {
        None => Ok(false),
        Some(t) if t.eq_ignore_ascii_case("true") => Ok(true),
        Some(f) if f.eq_ignore_ascii_case("false") => Ok(false),
        Some(_) => Err(AuthError::BadParam(name)),
    }
}

/// RFC 8187 §3.2.1 `attr-char`: what an ext-value writes without percent-encoding.
fn is_attr_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b)
}

/// `value` as the `value-chars` of an RFC 8187 ext-value (UTF-8 octets, `%XX` uppercase).
pub fn encode_ext_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len() * 3);
    for &b in value.as_bytes() {
        if is_attr_char(b) {
            out.push(b as char);
        } else {
            out.push('%');
            out.push(char::from(b"0123456789ABCDEF"[usize::from(b >> 4)]));
            out.push(char::from(b"0123456789ABCDEF"[usize::from(b & 15)]));
        }
    }
    out
}

/// Decodes an RFC 8187 ext-value `charset "'" [ language ] "'" value-chars` (as `username*`
/// carries it, RFC 7616 §3.4). Charsets `UTF-8` and `ISO-8859-1` are understood.
pub fn decode_ext_value(ext: &str) -> Result<String, AuthError> {
    let bad = AuthError::Encoding("username*");
    let mut parts = ext.splitn(3, '\'');
    let (Some(charset), Some(_language), Some(chars)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(bad);
    };
    let b = chars.as_bytes();
    let mut octets = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let hex = b.get(i + 1..i + 3).ok_or(bad.clone())?;
                let hex = core::str::from_utf8(hex).map_err(|_| bad.clone())?;
                if !hex.bytes().all(|c| c.is_ascii_hexdigit()) {
                    return Err(bad);
                }
                octets.push(u8::from_str_radix(hex, 16).map_err(|_| bad.clone())?);
                i += 3;
            }
            c if is_attr_char(c) => {
                octets.push(c);
                i += 1;
            }
            _ => return Err(bad),
        }
    }
    if charset.eq_ignore_ascii_case("UTF-8") {
        String::from_utf8(octets).map_err(|_| bad)
    } else if charset.eq_ignore_ascii_case("ISO-8859-1") {
        Ok(octets.into_iter().map(char::from).collect())
    } else {
        Err(bad)
    }
}

/// The hashed username of RFC 7616 §3.4.4: `H(unq(username) ":" unq(realm))` in lowercase
/// hex. A server that offers `userhash=true` keeps an index from this value to its users
/// (one per algorithm and realm) and looks the user up with [`Credentials::username`]
/// when [`Credentials::userhash`] is set.
pub fn userhash(algorithm: Algorithm, username: &str, realm: &str) -> String {
    algorithm.h_parts(&[username.as_bytes(), realm.as_bytes()])
}

/// A `WWW-Authenticate` / `Proxy-Authenticate` Digest challenge (RFC 7616 §3.3, RFC 3310 §3.2).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Challenge<'a> {
    /// `realm`.
    pub realm: Cow<'a, str>,
    /// `nonce`.
    pub nonce: Cow<'a, str>,
    /// `algorithm` as written (absent means MD5).
    pub algorithm: Option<Cow<'a, str>>,
    /// `qop` options as written (`auth,auth-int`).
    pub qop: Option<Cow<'a, str>>,
    /// `opaque`.
    pub opaque: Option<Cow<'a, str>>,
    /// `domain`.
    pub domain: Option<Cow<'a, str>>,
    /// `stale=true`.
    pub stale: bool,
    /// `charset` (RFC 7616 §3.3): the only value defined is `UTF-8`: the server expects
    /// username and password encoded in UTF-8 and accepts `username*`.
    pub charset: Option<Cow<'a, str>>,
    /// `userhash=true` (RFC 7616 §3.3): the server accepts a hashed username
    /// (see [`userhash`]).
    pub userhash: bool,
    /// Other parameters (`ck`, `ik` toward a P-CSCF, …): name and value as written.
    pub extra: Vec<(Cow<'a, str>, Cow<'a, str>)>,
}

impl<'a> Challenge<'a> {
    /// Parses a header value such as `Digest realm="ims.example.com", nonce="…", qop="auth"`.
    ///
    /// ```
    /// let c = ims_auth::Challenge::parse(r#"Digest realm="a.example", nonce="n1", qop="auth,auth-int", algorithm=SHA-256, stale=TRUE"#).unwrap();
    /// assert_eq!(c.algorithm().unwrap(), ims_auth::Algorithm::Sha256);
    /// assert!(c.stale && c.offers(ims_auth::Qop::AuthInt));
    /// ```
    pub fn parse(s: &'a str) -> Result<Challenge<'a>, AuthError> {
        let mut realm = None;
        let mut nonce = None;
        let mut c = Challenge::default();
        let mut stale = None;
        let mut userhash = None;
        const KNOWN: &[&str] = &[
            "realm",
            "nonce",
            "algorithm",
            "qop",
            "opaque",
            "domain",
            "stale",
            "charset",
            "userhash",
        ];
        for (name, raw) in digest_params(s)? {
            match known_param(name, KNOWN).unwrap_or("") {
                "realm" => set(&mut realm, "realm", raw)?,
                "nonce" => set(&mut nonce, "nonce", raw)?,
                "algorithm" => set(&mut c.algorithm, "algorithm", raw)?,
                "qop" => set(&mut c.qop, "qop", raw)?,
                "opaque" => set(&mut c.opaque, "opaque", raw)?,
                "domain" => set(&mut c.domain, "domain", raw)?,
                "stale" => set(&mut stale, "stale", raw)?,
                "charset" => set(&mut c.charset, "charset", raw)?,
                "userhash" => set(&mut userhash, "userhash", raw)?,
                _ => c.extra.push((Cow::Borrowed(name), Cow::Borrowed(raw))),
            }
        }
        c.realm = realm.ok_or(AuthError::MissingParam("realm"))?;
        c.nonce = nonce.ok_or(AuthError::MissingParam("nonce"))?;
        c.stale = stale.is_some_and(|s| s.eq_ignore_ascii_case("true"));
        c.userhash = parse_bool(userhash.as_deref(), "userhash")?;
        Ok(c)
    }
    /// The algorithm (MD5 when absent).
    pub fn algorithm(&self) -> Result<Algorithm, AuthError> {
        match &self.algorithm {
            None => Ok(Algorithm::Md5),
            Some(a) => Algorithm::from_token(a)
                .ok_or_else(|| AuthError::UnsupportedAlgorithm(a.to_string())),
        }
    }
    /// The qop options offered, known ones only.
    pub fn qop_options(&self) -> impl Iterator<Item = Qop> + '_ {
        self.qop
            .as_deref()
            .unwrap_or("")
            .split(',')
            .filter_map(|t| Qop::from_token(t.trim()))
    }
    /// True when `qop` lists `q`.
    pub fn offers(&self, q: Qop) -> bool {
        self.qop_options().any(|x| x == q)
    }
    /// True when the challenge carries `charset=UTF-8` (case-insensitive, RFC 7616 §3.3).
    pub fn charset_utf8(&self) -> bool {
        self.charset
            .as_deref()
            .is_some_and(|c| c.eq_ignore_ascii_case("UTF-8"))
    }
    /// Adds a parameter (`ck`, `ik`, …) whose value is written quoted.
    pub fn with_param(mut self, name: &'a str, value: &str) -> Challenge<'a> {
        self.extra
            .push((Cow::Borrowed(name), Cow::Owned(quote(value))));
        self
    }
    /// Copies every borrowed string so the value outlives its input.
    pub fn into_owned(self) -> Challenge<'static> {
        let o = |c: Cow<'_, str>| Cow::Owned(c.into_owned());
        Challenge {
            realm: o(self.realm),
            nonce: o(self.nonce),
            algorithm: self.algorithm.map(o),
            qop: self.qop.map(o),
            opaque: self.opaque.map(o),
            domain: self.domain.map(o),
            stale: self.stale,
            charset: self.charset.map(o),
            userhash: self.userhash,
            extra: self.extra.into_iter().map(|(n, v)| (o(n), o(v))).collect(),
        }
    }
}

impl fmt::Display for Challenge<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Digest realm=")?;
        write_quoted(f, &self.realm)?;
        f.write_str(", nonce=")?;
        write_quoted(f, &self.nonce)?;
        if let Some(a) = &self.algorithm {
            f.write_str(", algorithm=")?;
            write_token_or_quoted(f, a)?;
        }
        if let Some(q) = &self.qop {
            f.write_str(", qop=")?;
            write_quoted(f, q)?;
        }
        if let Some(o) = &self.opaque {
            f.write_str(", opaque=")?;
            write_quoted(f, o)?;
        }
        if let Some(d) = &self.domain {
            f.write_str(", domain=")?;
            write_quoted(f, d)?;
        }
        if self.stale {
            f.write_str(", stale=true")?;
        }
        if let Some(c) = &self.charset {
            f.write_str(", charset=")?;
            write_token_or_quoted(f, c)?;
        }
        if self.userhash {
            f.write_str(", userhash=true")?;
        }
        for (n, v) in &self.extra {
            write!(f, ", {n}={v}")?;
        }
        Ok(())
    }
}

/// `Authorization` / `Proxy-Authorization` Digest credentials (RFC 7616 §3.4, RFC 3310 §3.3).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Credentials<'a> {
    /// `username` (the IMPI in IMS), decoded from `username*` when
    /// [`Credentials::extended_username`] is set; with [`Credentials::userhash`] it is
    /// H(username ":" realm) in hex (RFC 7616 §3.4.4, see [`userhash`]).
    pub username: Cow<'a, str>,
    /// The username travels as `username*` (RFC 7616 §3.4, an RFC 8187 `ext-value`, always
    /// written as `UTF-8''` + percent-encoding).
    pub extended_username: bool,
    /// `userhash=true`: `username` is the hashed username (RFC 7616 §3.4.4).
    pub userhash: bool,
    /// `realm`.
    pub realm: Cow<'a, str>,
    /// `nonce` (empty in an IMS initial REGISTER, TS 24.229 §5.1.1.2).
    pub nonce: Cow<'a, str>,
    /// `uri` (digest-uri).
    pub uri: Cow<'a, str>,
    /// `response` (lowercase hex).
    pub response: Cow<'a, str>,
    /// `algorithm` as written (absent means MD5).
    pub algorithm: Option<Cow<'a, str>>,
    /// `cnonce`.
    pub cnonce: Option<Cow<'a, str>>,
    /// `opaque`, echoed.
    pub opaque: Option<Cow<'a, str>>,
    /// `qop`.
    pub qop: Option<Qop>,
    /// `nc` as written: exactly 8 hex digits.
    pub nc: Option<Cow<'a, str>>,
    /// `auts` (RFC 3310 §3.4): base64 AUTS after a synchronisation failure.
    pub auts: Option<Cow<'a, str>>,
    /// Other parameters (`integrity-protected`, …): name and value as written.
    pub extra: Vec<(Cow<'a, str>, Cow<'a, str>)>,
}

impl<'a> Credentials<'a> {
    /// Parses a header value such as `Digest username="alice", realm="…", nonce="…", …`.
    /// `username`, `realm`, `nonce`, `uri` and `response` are required (they may be empty);
    /// with `qop`, `cnonce` and `nc` are too.
    pub fn parse(s: &'a str) -> Result<Credentials<'a>, AuthError> {
        let mut c = Credentials::default();
        let (mut username, mut realm, mut nonce, mut uri, mut response) =
            (None, None, None, None, None);
        let mut qop = None;
        let mut username_ext = None;
        let mut userhash = None;
        const KNOWN: &[&str] = &[
            "username",
            "username*",
            "userhash",
            "realm",
            "nonce",
            "uri",
            "response",
            "algorithm",
            "cnonce",
            "opaque",
            "qop",
            "nc",
            "auts",
        ];
        for (name, raw) in digest_params(s)? {
            match known_param(name, KNOWN).unwrap_or("") {
                "username" => set(&mut username, "username", raw)?,
                "username*" => set(&mut username_ext, "username*", raw)?,
                "userhash" => set(&mut userhash, "userhash", raw)?,
                "realm" => set(&mut realm, "realm", raw)?,
                "nonce" => set(&mut nonce, "nonce", raw)?,
                "uri" => set(&mut uri, "uri", raw)?,
                "response" => set(&mut response, "response", raw)?,
                "algorithm" => set(&mut c.algorithm, "algorithm", raw)?,
                "cnonce" => set(&mut c.cnonce, "cnonce", raw)?,
                "opaque" => set(&mut c.opaque, "opaque", raw)?,
                "qop" => set(&mut qop, "qop", raw)?,
                "nc" => set(&mut c.nc, "nc", raw)?,
                "auts" => set(&mut c.auts, "auts", raw)?,
                _ => c.extra.push((Cow::Borrowed(name), Cow::Borrowed(raw))),
            }
        }
        c.userhash = parse_bool(userhash.as_deref(), "userhash")?;
        c.username = match (username, username_ext) {
            (Some(u), None) => u,
            (None, Some(x)) if !c.userhash => {
                c.extended_username = true;
                Cow::Owned(decode_ext_value(&x)?)
            }
            // RFC 7616 §3.4: both is an error; a hashed username is never sent as username*
            (Some(_), Some(_)) | (None, Some(_)) => return Err(AuthError::BadParam("username*")),
            (None, None) => return Err(AuthError::MissingParam("username")),
        };
        c.realm = realm.ok_or(AuthError::MissingParam("realm"))?;
        c.nonce = nonce.ok_or(AuthError::MissingParam("nonce"))?;
        c.uri = uri.ok_or(AuthError::MissingParam("uri"))?;
        c.response = response.ok_or(AuthError::MissingParam("response"))?;
        if let Some(q) = qop {
            c.qop = Some(Qop::from_token(&q).ok_or(AuthError::BadParam("qop"))?);
            if c.cnonce.is_none() {
                return Err(AuthError::MissingParam("cnonce"));
            }
            if c.nc.is_none() {
                return Err(AuthError::MissingParam("nc"));
            }
        }
        if let Some(nc) = &c.nc {
            if nc.len() != 8 || !nc.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(AuthError::BadParam("nc"));
            }
        }
        Ok(c)
    }
    /// The algorithm (MD5 when absent).
    pub fn algorithm(&self) -> Result<Algorithm, AuthError> {
        match &self.algorithm {
            None => Ok(Algorithm::Md5),
            Some(a) => Algorithm::from_token(a)
                .ok_or_else(|| AuthError::UnsupportedAlgorithm(a.to_string())),
        }
    }
    /// The nonce count.
    pub fn nonce_count(&self) -> Option<u32> {
        self.nc
            .as_deref()
            .and_then(|n| u32::from_str_radix(n, 16).ok())
    }
    /// The decoded AUTS, when present.
    pub fn auts_bytes(&self) -> Option<Result<Vec<u8>, AuthError>> {
        self.auts.as_deref().map(base64_decode)
    }
    /// A parameter not covered by a field (`integrity-protected`), unquoted.
    pub fn param(&self, name: &str) -> Option<Cow<'_, str>> {
        self.extra
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| ims_sip::unquote(v))
    }
    /// The `rspauth` a server sends back for these credentials (RFC 2617 §3.2.3): A2 has an
    /// empty method and, with `auth-int`, hashes `response_body`. `ha1` as in [`ha1`].
    pub fn rspauth(&self, ha1: &str, response_body: &[u8]) -> Result<String, AuthError> {
        Ok(self.input("", response_body)?.rspauth(ha1))
    }
    /// The digest input these credentials claim, for a request `method` with `body`.
    pub fn input<'x>(
        &'x self,
        method: &'x str,
        body: &'x [u8],
    ) -> Result<DigestInput<'x>, AuthError> {
        Ok(DigestInput {
            algorithm: self.algorithm()?,
            nonce: &self.nonce,
            nc: self.nc.as_deref().unwrap_or(""),
            cnonce: self.cnonce.as_deref().unwrap_or(""),
            qop: self.qop,
            method,
            uri: &self.uri,
            body,
        })
    }
    /// Copies every borrowed string so the value outlives its input.
    pub fn into_owned(self) -> Credentials<'static> {
        let o = |c: Cow<'_, str>| Cow::Owned(c.into_owned());
        Credentials {
            username: o(self.username),
            extended_username: self.extended_username,
            userhash: self.userhash,
            realm: o(self.realm),
            nonce: o(self.nonce),
            uri: o(self.uri),
            response: o(self.response),
            algorithm: self.algorithm.map(o),
            cnonce: self.cnonce.map(o),
            opaque: self.opaque.map(o),
            qop: self.qop,
            nc: self.nc.map(o),
            auts: self.auts.map(o),
            extra: self.extra.into_iter().map(|(n, v)| (o(n), o(v))).collect(),
        }
    }
}

impl fmt::Display for Credentials<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.extended_username {
            write!(
                f,
                "Digest username*=UTF-8''{}",
                encode_ext_value(&self.username)
            )?;
        } else {
            f.write_str("Digest username=")?;
            write_quoted(f, &self.username)?;
        }
        f.write_str(", realm=")?;
        write_quoted(f, &self.realm)?;
        f.write_str(", nonce=")?;
        write_quoted(f, &self.nonce)?;
        f.write_str(", uri=")?;
        write_quoted(f, &self.uri)?;
        f.write_str(", response=")?;
        write_quoted(f, &self.response)?;
        if let Some(a) = &self.algorithm {
            f.write_str(", algorithm=")?;
            write_token_or_quoted(f, a)?;
        }
        if let Some(c) = &self.cnonce {
            f.write_str(", cnonce=")?;
            write_quoted(f, c)?;
        }
        if let Some(o) = &self.opaque {
            f.write_str(", opaque=")?;
            write_quoted(f, o)?;
        }
        if let Some(q) = self.qop {
            write!(f, ", qop={}", q.as_str())?;
        }
        if let Some(nc) = &self.nc {
            write!(f, ", nc={nc}")?;
        }
        if let Some(a) = &self.auts {
            f.write_str(", auts=")?;
            write_quoted(f, a)?;
        }
        if self.userhash {
            f.write_str(", userhash=true")?;
        }
        for (n, v) in &self.extra {
            write!(f, ", {n}={v}")?;
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// UAC
// ---------------------------------------------------------------------------------------------

/// What the UAC puts into its answer besides the challenge.
#[derive(Debug, Clone, Copy)]
pub struct Request<'x> {
    /// The request method.
    pub method: &'x str,
    /// The digest-uri (usually the Request-URI).
    pub uri: &'x str,
    /// The body (for `auth-int`).
    pub body: &'x [u8],
    /// A fresh client nonce from the caller's randomness (used with qop and `-sess`).
    pub cnonce: &'x str,
    /// The nonce count: 1 for the first request with this nonce, then 2, 3, …
    pub nc: u32,
}

/// The UAC side (RFC 7616 §3.4): answers `challenge` as `username` with `password`. Picks qop
/// `auth` when offered, else `auth-int`; omits qop when the challenge has none.
///
/// RFC 7616 §3.4.4: with `userhash=true` in the challenge the username is sent hashed
/// ([`userhash`]) with `userhash=true`; otherwise, with `charset=UTF-8`, a username holding
/// non-ASCII or control characters is sent as `username*=UTF-8''…`. The username and the
/// password are used as UTF-8 octets (Rust strings are UTF-8; pass the password's UTF-8 bytes).
///
/// RFC 7616 §4: with `charset=UTF-8` the name and the password are first prepared with the
/// PRECIS profiles of RFC 8265 ([`crate::precis::digest_username`],
/// [`crate::precis::opaque_string`]): fullwidth letters of the name become ASCII, both are
/// normalised to NFC, non-ASCII spaces of the password become U+0020, and a name or password
/// holding a disallowed code point (a control character, a symbol in the name, …) is refused
/// with [`AuthError::Precis`]. A password that is not UTF-8 is then used as given.
///
/// For AKA challenges use [`answer_aka`], which derives the password from the USIM.
pub fn answer(
    challenge: &Challenge<'_>,
    username: &str,
    password: &[u8],
    req: &Request<'_>,
) -> Result<Credentials<'static>, AuthError> {
    let algorithm = challenge.algorithm()?;
    if challenge.charset_utf8() {
        let (name, pass) = prepare_utf8(username, password)?;
        let ha1 = ha1(algorithm, &name, &challenge.realm, &pass);
        return answer_with_ha1(challenge, &name, &ha1, req);
    }
    let ha1 = ha1(algorithm, username, &challenge.realm, password);
    answer_with_ha1(challenge, username, &ha1, req)
}

/// [`answer`] for a password that is octets, not text (AKA's RES, RFC 4169's derived value,
/// the empty password of a resynchronisation): with `charset=UTF-8` only the name is prepared.
fn answer_binary(
    challenge: &Challenge<'_>,
    username: &str,
    password: &[u8],
    req: &Request<'_>,
) -> Result<Credentials<'static>, AuthError> {
    let algorithm = challenge.algorithm()?;
    let name = if challenge.charset_utf8() {
        Cow::Owned(
            crate::precis::digest_username(username).map_err(|error| AuthError::Precis {
                what: "username",
                error,
            })?,
        )
    } else {
        Cow::Borrowed(username)
    };
    let ha1 = ha1(algorithm, &name, &challenge.realm, password);
    answer_with_ha1(challenge, &name, &ha1, req)
}

/// RFC 7616 §4 preparation of a name and password for `charset=UTF-8` (see [`answer`]): the
/// name with [`crate::precis::digest_username`], the password (when UTF-8) with
/// [`crate::precis::opaque_string`]. A server uses it on the name it stores and on the
/// password it derives HA1 from, so that both sides hash the same strings.
pub fn prepare_utf8(username: &str, password: &[u8]) -> Result<(String, Vec<u8>), AuthError> {
    let name = crate::precis::digest_username(username).map_err(|error| AuthError::Precis {
        what: "username",
        error,
    })?;
    let pass = match core::str::from_utf8(password) {
        Ok(p) => crate::precis::opaque_string(p)
            .map_err(|error| AuthError::Precis {
                what: "password",
                error,
            })?
            .into_bytes(),
        Err(_) => password.to_vec(),
    };
    Ok((name, pass))
}

/// [`answer`] from a stored HA1 (see [`ha1`]) instead of the password.
pub fn answer_with_ha1(
    challenge: &Challenge<'_>,
    username: &str,
    ha1: &str,
    req: &Request<'_>,
) -> Result<Credentials<'static>, AuthError> {
    let algorithm = challenge.algorithm()?;
    let qop = if challenge.offers(Qop::Auth) {
        Some(Qop::Auth)
    } else if challenge.offers(Qop::AuthInt) {
        Some(Qop::AuthInt)
    } else if challenge.qop.is_some() {
        return Err(AuthError::BadParam("qop"));
    } else {
        None
    };
    let nc = format!("{:08x}", req.nc);
    let with_cnonce = qop.is_some() || algorithm.is_sess();
    let input = DigestInput {
        algorithm,
        nonce: &challenge.nonce,
        nc: &nc,
        cnonce: req.cnonce,
        qop,
        method: req.method,
        uri: req.uri,
        body: req.body,
    };
    let response = input.response(ha1);
    let hashed = challenge.userhash;
    let extended = !hashed
        && challenge.charset_utf8()
        && username
            .chars()
            .any(|c| !c.is_ascii() || c.is_ascii_control());
    Ok(Credentials {
        username: Cow::Owned(if hashed {
            userhash(algorithm, username, &challenge.realm)
        } else {
            username.to_owned()
        }),
        extended_username: extended,
        userhash: hashed,
        realm: Cow::Owned(challenge.realm.to_string()),
        nonce: Cow::Owned(challenge.nonce.to_string()),
        uri: Cow::Owned(req.uri.to_owned()),
        response: Cow::Owned(response),
        algorithm: challenge
            .algorithm
            .as_ref()
            .map(|_| Cow::Owned(algorithm.as_str().to_owned())),
        cnonce: with_cnonce.then(|| Cow::Owned(req.cnonce.to_owned())),
        opaque: challenge.opaque.as_ref().map(|o| Cow::Owned(o.to_string())),
        qop,
        nc: qop.map(|_| Cow::Owned(nc)),
        auts: None,
        extra: Vec::new(),
    })
}

/// The UE side of Digest-AKA (RFC 3310 §3.3/§3.4, RFC 4169): checks AUTN with the USIM and
/// answers with RES as the password (AKAv1) or the RFC 4169 derivation (AKAv2). On a
/// synchronisation failure it answers with `auts` and an empty password, and returns no keys.
/// A MAC failure (the network does not know K) is [`AuthError::MacFailure`].
pub fn answer_aka(
    challenge: &Challenge<'_>,
    usim: &mut Usim,
    username: &str,
    req: &Request<'_>,
) -> Result<(Credentials<'static>, Option<AkaKeys>), AuthError> {
    let algorithm = challenge.algorithm()?;
    if !algorithm.is_aka() {
        return Err(AuthError::Mismatch("not an AKA algorithm"));
    }
    let n = AkaNonce::parse(&challenge.nonce)?;
    match usim.authenticate(&n.rand, &n.autn) {
        Ok(keys) => {
            let password = match algorithm {
                Algorithm::AkaV2Md5 => akav2_password(&keys.res, &keys.ik, &keys.ck).into_bytes(),
                _ => keys.res.to_vec(),
            };
            let c = answer_binary(challenge, username, &password, req)?;
            Ok((c, Some(keys)))
        }
        Err(AkaFailure::SyncFailure { auts }) => {
            let mut c = answer_binary(challenge, username, b"", req)?;
            c.auts = Some(Cow::Owned(base64_encode(&auts)));
            Ok((c, None))
        }
        Err(AkaFailure::MacFailure) => Err(AuthError::MacFailure),
    }
}

// ---------------------------------------------------------------------------------------------
// Server
// ---------------------------------------------------------------------------------------------

/// Longest salt accepted by [`DigestServer::challenge`].
pub const MAX_SALT: usize = 64;

/// The secret a server checks a response with.
#[derive(Clone, Copy)]
pub enum Secret<'x> {
    /// The password (for AKA: see [`aka_password`]).
    Password(&'x [u8]),
    /// HA1 = H(username:realm:password), lowercase hex, as a server may store it (see [`ha1`]).
    Ha1(&'x str),
}

impl fmt::Debug for Secret<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Secret::Password(_) => "Password(<redacted>)",
            Secret::Ha1(_) => "Ha1(<redacted>)",
        })
    }
}

/// The digest password of an AKA vector: XRES for AKAv1-MD5, the RFC 4169 derivation for
/// AKAv2-MD5. `None` for a non-AKA algorithm.
pub fn aka_password(algorithm: Algorithm, av: &AuthVector) -> Option<Vec<u8>> {
    match algorithm {
        Algorithm::AkaV1Md5 => Some(av.xres.to_vec()),
        Algorithm::AkaV2Md5 => Some(akav2_password(&av.xres, &av.ik, &av.ck).into_bytes()),
        _ => None,
    }
}

/// A nonce this server issued, as [`DigestServer::check_nonce`] found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedNonce {
    /// When it expires (same epoch as `now`), whole seconds.
    pub expires: u64,
    /// The salt, or `RAND ‖ AUTN` for an AKA nonce.
    pub prefix: Vec<u8>,
    /// The integrity tag: unique per nonce, the key of [`NonceCounts`].
    pub tag: [u8; 16],
    /// True when `expires` ≤ now.
    pub expired: bool,
}

impl IssuedNonce {
    /// RAND of an AKA nonce.
    pub fn rand(&self) -> Option<[u8; 16]> {
        (self.prefix.len() == 32).then(|| self.prefix[..16].try_into().expect("16 of 32"))
    }
}

/// A nonce as this server issued it, kept by a caller that holds state per challenge (an
/// S-CSCF waiting for the answer to its 401): [`DigestServer::verify_kept`] recognises an
/// answer carrying exactly this nonce by comparing it with the text kept, without computing
/// the nonce's HMAC again. Made by [`DigestServer::challenge_kept`] and
/// [`DigestServer::aka_challenge_kept`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeptNonce {
    /// The nonce as sent.
    nonce: Box<str>,
    /// The realm and algorithm it was issued for (the HMAC binds them).
    realm: Box<str>,
    algorithm: Algorithm,
    /// What [`DigestServer::check_nonce`] finds for it (`expired` as at issue: false).
    issued: IssuedNonce,
}

impl KeptNonce {
    /// The nonce as sent in the challenge.
    pub fn nonce(&self) -> &str {
        &self.nonce
    }

    /// What [`DigestServer::check_nonce`] finds for the nonce while it is fresh.
    pub fn issued(&self) -> &IssuedNonce {
        &self.issued
    }

    /// True when `creds` carry this nonce for the realm and algorithm it was issued for:
    /// then [`DigestServer::check_nonce`] would find [`KeptNonce::issued`] for them (with
    /// `expired` as of its `now`).
    pub fn answered_in(&self, creds: &Credentials<'_>) -> bool {
        ct_eq(creds.nonce.as_bytes(), self.nonce.as_bytes())
            && *creds.realm == *self.realm
            && creds.algorithm().is_ok_and(|a| a == self.algorithm)
    }
}

/// A successful verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The nonce count accepted (with qop).
    pub nc: Option<u32>,
    /// The qop used.
    pub qop: Option<Qop>,
    /// `rspauth` for an Authentication-Info header (RFC 7616 §3.5), for a response without a
    /// body (with `auth-int` and a response body use [`Credentials::rspauth`]).
    pub rspauth: String,
    /// When the nonce expires: re-challenge before that to keep the client going smoothly.
    pub nonce_expires: u64,
}

/// An AKA synchronisation failure reported by the UE (RFC 3310 §3.4): give RAND and AUTS to the
/// HSS (Cx MAR with SIP-Authorization, TS 29.229) or to [`crate::aka::resync`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResyncRequest {
    /// RAND of the challenge the UE rejected.
    pub rand: [u8; 16],
    /// AUTS.
    pub auts: [u8; 14],
}

/// The server side of Digest (registrar, S-CSCF, proxy). Nonces are
/// `base64(prefix ‖ expiry ‖ tag)`, where the prefix is the caller's salt (or `RAND ‖ AUTN` for
/// AKA, RFC 3310 §3.2 "server data" holding expiry and tag), expiry is 8 octets of seconds since
/// the caller's epoch, and tag = HMAC-SHA-256(secret, algorithm, realm, prefix, expiry)
/// truncated to 16 octets. Checking a nonce needs only the secret, so any instance sharing it
/// can verify. `Debug` hides the secret.
#[derive(Clone)]
pub struct DigestServer {
    /// HMAC-SHA-256 keyed with the secret, cloned for each tag (the key's inner and outer
    /// blocks are hashed once here, not on every nonce made or checked).
    mac: Hmac<sha2::Sha256>,
    lifetime: Duration,
    allow_rfc2069: bool,
}

impl fmt::Debug for DigestServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DigestServer")
            .field("key", &"<redacted>")
            .field("lifetime", &self.lifetime)
            .field("allow_rfc2069", &self.allow_rfc2069)
            .finish()
    }
}

/// The challenge carrying a kept nonce (`qop="auth"`, the algorithm named).
fn kept_challenge<'r>(realm: &'r str, algorithm: Algorithm, kept: &KeptNonce) -> Challenge<'r> {
    Challenge {
        realm: Cow::Borrowed(realm),
        nonce: Cow::Owned(kept.nonce.to_string()),
        algorithm: Some(Cow::Borrowed(algorithm.as_str())),
        qop: Some(Cow::Borrowed("auth")),
        ..Challenge::default()
    }
}

impl DigestServer {
    /// A server keyed with `secret` (at least 16 random octets recommended); nonces live 300 s.
    pub fn new(secret: &[u8]) -> DigestServer {
        DigestServer {
            mac: <Hmac<sha2::Sha256> as Mac>::new_from_slice(secret)
                .expect("HMAC takes keys of any length"),
            lifetime: Duration::from_secs(300),
            allow_rfc2069: false,
        }
    }
    /// How long a nonce stays fresh.
    pub fn nonce_lifetime(mut self, d: Duration) -> DigestServer {
        self.lifetime = d;
        self
    }
    /// Accepts credentials without qop (RFC 2069 form), which cannot be replay-checked.
    /// Off by default.
    pub fn allow_rfc2069(mut self, allow: bool) -> DigestServer {
        self.allow_rfc2069 = allow;
        self
    }

    fn tag(&self, algorithm: Algorithm, realm: &str, prefix: &[u8], expires: u64) -> [u8; 16] {
        let mut mac = self.mac.clone();
        mac.update(b"ims-auth nonce 1\0");
        mac.update(algorithm.as_str().as_bytes());
        mac.update(&(realm.len() as u64).to_be_bytes());
        mac.update(realm.as_bytes());
        mac.update(&(prefix.len() as u64).to_be_bytes());
        mac.update(prefix);
        mac.update(&expires.to_be_bytes());
        let out = mac.finalize().into_bytes();
        out[..16].try_into().expect("32 > 16")
    }

    fn make_nonce(
        &self,
        algorithm: Algorithm,
        realm: &str,
        prefix: &[u8],
        now: Duration,
    ) -> String {
        self.make_nonce_parts(algorithm, realm, prefix, now).0
    }

    /// The nonce, its expiry and its tag.
    fn make_nonce_parts(
        &self,
        algorithm: Algorithm,
        realm: &str,
        prefix: &[u8],
        now: Duration,
    ) -> (String, u64, [u8; 16]) {
        let expires = now.saturating_add(self.lifetime).as_secs();
        let tag = self.tag(algorithm, realm, prefix, expires);
        let mut b = Vec::with_capacity(prefix.len() + 24);
        b.extend_from_slice(prefix);
        b.extend_from_slice(&expires.to_be_bytes());
        b.extend_from_slice(&tag);
        (base64_encode(&b), expires, tag)
    }

    /// The nonce of a challenge with what a caller keeps of it.
    fn kept_nonce(
        &self,
        algorithm: Algorithm,
        realm: &str,
        prefix: &[u8],
        now: Duration,
    ) -> KeptNonce {
        let (nonce, expires, tag) = self.make_nonce_parts(algorithm, realm, prefix, now);
        KeptNonce {
            nonce: nonce.into(),
            realm: realm.into(),
            algorithm,
            issued: IssuedNonce {
                expires,
                prefix: prefix.to_vec(),
                tag,
                expired: false,
            },
        }
    }

    /// [`DigestServer::challenge`], and the nonce to keep for [`DigestServer::verify_kept`].
    pub fn challenge_kept<'r>(
        &self,
        realm: &'r str,
        algorithm: Algorithm,
        now: Duration,
        salt: &[u8],
    ) -> Result<(Challenge<'r>, KeptNonce), AuthError> {
        digest_salt_checked(algorithm, salt)?;
        let kept = self.kept_nonce(algorithm, realm, salt, now);
        Ok((kept_challenge(realm, algorithm, &kept), kept))
    }

    /// [`DigestServer::aka_challenge`], and the nonce to keep for
    /// [`DigestServer::verify_kept`].
    pub fn aka_challenge_kept<'r>(
        &self,
        realm: &'r str,
        algorithm: Algorithm,
        av: &AuthVector,
        now: Duration,
    ) -> Result<(Challenge<'r>, KeptNonce), AuthError> {
        let prefix = aka_nonce_prefix(algorithm, av)?;
        let kept = self.kept_nonce(algorithm, realm, &prefix, now);
        Ok((kept_challenge(realm, algorithm, &kept), kept))
    }

    /// [`DigestServer::verify`] for credentials answering the challenge whose nonce the
    /// caller kept: `Ok(None)` when they do not carry that nonce (for its realm and algorithm,
    /// [`KeptNonce::answered_in`]; the caller then verifies them the general way), otherwise
    /// exactly what `verify` answers — the nonce is known to be ours without computing its
    /// HMAC again (the text equals the one issued, which only this server's key could make).
    #[allow(clippy::too_many_arguments)]
    pub fn verify_kept(
        &self,
        creds: &Credentials<'_>,
        kept: &KeptNonce,
        method: &str,
        body: &[u8],
        secret: Secret<'_>,
        now: Duration,
        counts: Option<&mut NonceCounts>,
    ) -> Result<Option<Verified>, AuthError> {
        if !kept.answered_in(creds) {
            return Ok(None);
        }
        let mut issued = kept.issued.clone();
        issued.expired = issued.expires <= now.as_secs();
        self.verify_issued(
            creds,
            &creds.username,
            kept.algorithm,
            issued,
            method,
            body,
            secret,
            now,
            counts,
        )
        .map(Some)
    }

    /// A fresh challenge for `realm` with `qop="auth"`. `now` is the time since the caller's
    /// epoch; `salt` is fresh randomness from the caller (8 to 64 octets).
    pub fn challenge<'r>(
        &self,
        realm: &'r str,
        algorithm: Algorithm,
        now: Duration,
        salt: &[u8],
    ) -> Result<Challenge<'r>, AuthError> {
        digest_salt_checked(algorithm, salt)?;
        Ok(Challenge {
            realm: Cow::Borrowed(realm),
            nonce: Cow::Owned(self.make_nonce(algorithm, realm, salt, now)),
            algorithm: Some(Cow::Borrowed(algorithm.as_str())),
            qop: Some(Cow::Borrowed("auth")),
            ..Challenge::default()
        })
    }

    /// An AKA challenge (RFC 3310 §3.2) for one vector: nonce = base64(RAND ‖ AUTN ‖ expiry ‖
    /// tag). The vector's XRES (and CK, IK) stay with the caller.
    pub fn aka_challenge<'r>(
        &self,
        realm: &'r str,
        algorithm: Algorithm,
        av: &AuthVector,
        now: Duration,
    ) -> Result<Challenge<'r>, AuthError> {
        let prefix = aka_nonce_prefix(algorithm, av)?;
        Ok(Challenge {
            realm: Cow::Borrowed(realm),
            nonce: Cow::Owned(self.make_nonce(algorithm, realm, &prefix, now)),
            algorithm: Some(Cow::Borrowed(algorithm.as_str())),
            qop: Some(Cow::Borrowed("auth")),
            ..Challenge::default()
        })
    }

    /// Checks that `nonce` was issued by this server for `realm` and `algorithm`; reports
    /// whether it has expired.
    pub fn check_nonce(
        &self,
        nonce: &str,
        realm: &str,
        algorithm: Algorithm,
        now: Duration,
    ) -> Result<IssuedNonce, AuthError> {
        if nonce.len() > 4 * (MAX_SALT + 24).div_ceil(3) {
            return Err(AuthError::InvalidNonce);
        }
        let b = base64_decode(nonce).map_err(|_| AuthError::InvalidNonce)?;
        if b.len() < 24 || (algorithm.is_aka() && b.len() != 56) {
            return Err(AuthError::InvalidNonce);
        }
        let (prefix, rest) = b.split_at(b.len() - 24);
        let expires = u64::from_be_bytes(rest[..8].try_into().expect("8 of 24"));
        let tag = self.tag(algorithm, realm, prefix, expires);
        if !ct_eq(&tag, &rest[8..]) {
            return Err(AuthError::InvalidNonce);
        }
        Ok(IssuedNonce {
            expires,
            prefix: prefix.to_vec(),
            tag,
            expired: expires <= now.as_secs(),
        })
    }

    /// Verifies `creds` for a request `method` with `body` against `secret` (RFC 7616 §3.4):
    /// the nonce must be ours and bound to the same realm and algorithm, the response right,
    /// and — with `counts` — the nonce count must go up. An expired nonce with a right response
    /// is [`AuthError::Stale`]. The caller checks `creds.uri` against the Request-URI and
    /// `creds.username` against the identity it expects.
    ///
    /// With [`Credentials::userhash`] set and a [`Secret::Password`], use
    /// [`DigestServer::verify_user`]: HA1 is computed over the plain username.
    pub fn verify(
        &self,
        creds: &Credentials<'_>,
        method: &str,
        body: &[u8],
        secret: Secret<'_>,
        now: Duration,
        counts: Option<&mut NonceCounts>,
    ) -> Result<Verified, AuthError> {
        self.verify_inner(creds, &creds.username, method, body, secret, now, counts)
    }

    /// [`DigestServer::verify`] for the user `username` the server resolved (RFC 7616
    /// §3.4.4): when [`Credentials::userhash`] is set, `creds.username` must equal
    /// [`userhash`]`(algorithm, username, realm)` (the server found the user by that value
    /// in its index), otherwise it must equal `username`; HA1 is computed over `username`.
    /// A different name is [`AuthError::Mismatch`].
    #[allow(clippy::too_many_arguments)]
    pub fn verify_user(
        &self,
        creds: &Credentials<'_>,
        username: &str,
        method: &str,
        body: &[u8],
        secret: Secret<'_>,
        now: Duration,
        counts: Option<&mut NonceCounts>,
    ) -> Result<Verified, AuthError> {
        let algorithm = creds.algorithm()?;
        let same = if creds.userhash {
            let h = userhash(algorithm, username, &creds.realm);
            ct_eq(h.as_bytes(), creds.username.to_ascii_lowercase().as_bytes())
        } else {
            creds.username == username
        };
        if !same {
            return Err(AuthError::Mismatch("username"));
        }
        self.verify_inner(creds, username, method, body, secret, now, counts)
    }

    #[allow(clippy::too_many_arguments)]
    fn verify_inner(
        &self,
        creds: &Credentials<'_>,
        username: &str,
        method: &str,
        body: &[u8],
        secret: Secret<'_>,
        now: Duration,
        counts: Option<&mut NonceCounts>,
    ) -> Result<Verified, AuthError> {
        let algorithm = creds.algorithm()?;
        let issued = self.check_nonce(&creds.nonce, &creds.realm, algorithm, now)?;
        self.verify_issued(
            creds, username, algorithm, issued, method, body, secret, now, counts,
        )
    }

    /// [`DigestServer::verify`] for a caller that looks at the nonce before the response (an
    /// S-CSCF asks whether it carries the RAND of the challenge it is waiting for): `accept` is
    /// given what [`DigestServer::check_nonce`] finds for `creds.nonce` and `creds.realm` with
    /// the algorithm of `creds` (MD5 when it names none or one not known: `None` then, unless
    /// the nonce was issued for MD5), and `Ok(None)` is the answer when it refuses; otherwise
    /// the answer of [`DigestServer::verify`]. The nonce is checked once (`verify` after
    /// `check_nonce` checks it twice: an HMAC each).
    #[allow(clippy::too_many_arguments)]
    pub fn verify_if(
        &self,
        creds: &Credentials<'_>,
        method: &str,
        body: &[u8],
        secret: Secret<'_>,
        now: Duration,
        counts: Option<&mut NonceCounts>,
        accept: impl FnOnce(Option<&IssuedNonce>) -> bool,
    ) -> Result<Option<Verified>, AuthError> {
        let algorithm = creds.algorithm();
        let checked = self.check_nonce(
            &creds.nonce,
            &creds.realm,
            *algorithm.as_ref().unwrap_or(&Algorithm::Md5),
            now,
        );
        if !accept(checked.as_ref().ok()) {
            return Ok(None);
        }
        // what `verify` does, in its order: the algorithm first, then the nonce (checked
        // above with that same algorithm when it is known)
        let algorithm = algorithm?;
        let issued = checked?;
        self.verify_issued(
            creds,
            &creds.username,
            algorithm,
            issued,
            method,
            body,
            secret,
            now,
            counts,
        )
        .map(Some)
    }

    /// The rest of a verification once the nonce is known to be `issued` for `creds.nonce`,
    /// `creds.realm` and `algorithm` (= `creds.algorithm()`).
    #[allow(clippy::too_many_arguments)]
    fn verify_issued(
        &self,
        creds: &Credentials<'_>,
        username: &str,
        algorithm: Algorithm,
        issued: IssuedNonce,
        method: &str,
        body: &[u8],
        secret: Secret<'_>,
        now: Duration,
        counts: Option<&mut NonceCounts>,
    ) -> Result<Verified, AuthError> {
        if creds.qop.is_none() && !self.allow_rfc2069 {
            return Err(AuthError::QopRequired);
        }
        if algorithm.is_sess() && creds.cnonce.is_none() {
            return Err(AuthError::MissingParam("cnonce"));
        }
        let input = creds.input(method, body)?;
        let owned;
        let ha1: &str = match secret {
            Secret::Ha1(h) => h,
            Secret::Password(p) => {
                owned = ha1(algorithm, username, &creds.realm, p);
                &owned
            }
        };
        let expected = input.response(ha1);
        let got = creds.response.to_ascii_lowercase();
        if !ct_eq(expected.as_bytes(), got.as_bytes()) {
            return Err(AuthError::WrongResponse);
        }
        if issued.expired {
            return Err(AuthError::Stale);
        }
        let nc = creds.nonce_count();
        if let (Some(counts), Some(n)) = (counts, nc) {
            counts.record(issued.tag, issued.expires, n, now)?;
        }
        let mut reply = input;
        reply.body = b"";
        Ok(Verified {
            nc,
            qop: creds.qop,
            rspauth: reply.rspauth(ha1),
            nonce_expires: issued.expires,
        })
    }

    /// For credentials carrying `auts` (RFC 3310 §3.4): checks the nonce is ours and the
    /// response was computed with the empty password, and returns RAND and AUTS for
    /// resynchronisation. An expired nonce is accepted here: resynchronisation is how the UE
    /// reports that the challenge was not fresh.
    pub fn verify_resync(
        &self,
        creds: &Credentials<'_>,
        method: &str,
        body: &[u8],
        now: Duration,
    ) -> Result<ResyncRequest, AuthError> {
        let algorithm = creds.algorithm()?;
        if !algorithm.is_aka() {
            return Err(AuthError::Mismatch("not an AKA algorithm"));
        }
        let issued = self.check_nonce(&creds.nonce, &creds.realm, algorithm, now)?;
        let auts = creds
            .auts_bytes()
            .ok_or(AuthError::MissingParam("auts"))??;
        let auts: [u8; 14] = auts.as_slice().try_into().map_err(|_| AuthError::Length {
            what: "AUTS",
            expected: 14,
            got: auts.len(),
        })?;
        let input = creds.input(method, body)?;
        let expected = input.response(&ha1(algorithm, &creds.username, &creds.realm, b""));
        if !ct_eq(
            expected.as_bytes(),
            creds.response.to_ascii_lowercase().as_bytes(),
        ) {
            return Err(AuthError::WrongResponse);
        }
        Ok(ResyncRequest {
            rand: issued.rand().ok_or(AuthError::InvalidNonce)?,
            auts,
        })
    }
}

/// The default out-of-order window of [`NonceCounts`]: a nonce count up to this many below
/// the highest one seen is still accepted once.
pub const DEFAULT_NC_WINDOW: u32 = 32;
/// The widest window [`NonceCounts::with_window`] accepts (one `u128` bitmap per nonce).
pub const MAX_NC_WINDOW: u32 = 128;

#[derive(Debug, Clone, Copy)]
struct SeenCounts {
    expires: u64,
    /// Highest nonce count accepted.
    last: u32,
    /// Bit `i` set: `last - i` was accepted (bit 0 is `last`).
    mask: u128,
}

/// Replay protection (RFC 7616 §3.4 / §5.10, RFC 2617 §3.2.2): per nonce, the nonce counts
/// already accepted, forgotten when the nonce expires. Requests sharing a nonce may arrive out
/// of order (several transactions in flight, UDP reordering), so a count below the highest
/// is accepted once if it lies within the window (default [`DEFAULT_NC_WINDOW`]) and was not
/// seen; a repeated or older count is [`AuthError::Replay`]. Memory is bounded: one highest
/// count and a bitmap per nonce, at most `capacity` nonces; when full, the nonces that expire
/// first are dropped and every nonce expiring no later than them is then treated as stale,
/// so a dropped nonce can never be replayed.
#[derive(Debug, Clone)]
pub struct NonceCounts {
    seen: HashMap<[u8; 16], SeenCounts>,
    capacity: usize,
    floor: u64,
    window: u32,
}

impl NonceCounts {
    /// Tracks at most `capacity` (at least 1) nonces, window [`DEFAULT_NC_WINDOW`].
    pub fn new(capacity: usize) -> NonceCounts {
        NonceCounts {
            seen: HashMap::new(),
            capacity: capacity.max(1),
            floor: 0,
            window: DEFAULT_NC_WINDOW,
        }
    }
    /// Sets the out-of-order window (clamped to `1..=`[`MAX_NC_WINDOW`]): a count `nc` below
    /// the highest accepted `last` is accepted once when `last - nc < window`. A window of 1
    /// requires strictly increasing counts.
    pub fn with_window(mut self, window: u32) -> NonceCounts {
        self.window = window.clamp(1, MAX_NC_WINDOW);
        self
    }
    /// The out-of-order window.
    pub fn window(&self) -> u32 {
        self.window
    }
    /// Nonces currently tracked.
    pub fn len(&self) -> usize {
        self.seen.len()
    }
    /// True when none is tracked.
    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }
    /// Accepts `nc` for the nonce with integrity tag `tag` when it is higher than any seen,
    /// or within the window below the highest and not seen yet.
    pub fn record(
        &mut self,
        tag: [u8; 16],
        expires: u64,
        nc: u32,
        now: Duration,
    ) -> Result<(), AuthError> {
        if expires <= self.floor {
            return Err(AuthError::Stale);
        }
        if let Some(e) = self.seen.get_mut(&tag) {
            if nc > e.last {
                let shift = nc - e.last;
                e.mask = if shift >= 128 { 0 } else { e.mask << shift } | 1;
                e.last = nc;
                return Ok(());
            }
            let back = e.last - nc;
            if back >= self.window || e.mask & (1u128 << back) != 0 {
                return Err(AuthError::Replay { nc, last: e.last });
            }
            e.mask |= 1u128 << back;
            return Ok(());
        }
        if self.seen.len() >= self.capacity {
            let now = now.as_secs();
            self.seen.retain(|_, e| e.expires > now);
        }
        if self.seen.len() >= self.capacity {
            let min = self.seen.values().map(|e| e.expires).min().unwrap_or(0);
            self.seen.retain(|_, e| e.expires > min);
            self.floor = self.floor.max(min);
            if expires <= self.floor {
                return Err(AuthError::Stale);
            }
        }
        self.seen.insert(
            tag,
            SeenCounts {
                expires,
                last: nc,
                mask: 1,
            },
        );
        Ok(())
    }
    /// Forgets the counts of the nonce with integrity tag `tag` before it expires; true when it
    /// was tracked. Its counts are then accepted again, so call this only for a nonce the
    /// caller will never accept again by other means — e.g. a registrar's one-time challenge
    /// that it consumed in the same step as it recorded the count (an S-CSCF's pending
    /// challenge, removed when answered). Keeps a table left mostly empty by a past peak from
    /// holding its memory: it shrinks when at most a quarter full.
    pub fn forget(&mut self, tag: &[u8; 16]) -> bool {
        let found = self.seen.remove(tag).is_some();
        let cap = self.seen.capacity();
        if found && cap > 64 && self.seen.len() <= cap / 4 {
            self.seen.shrink_to(self.seen.len() * 2);
        }
        found
    }
}

// ---------------------------------------------------------------------------------------------
// Authentication-Info (RFC 2617 §3.2.3, RFC 7616 §3.5, RFC 3261 §20.6)
// ---------------------------------------------------------------------------------------------

/// An `Authentication-Info` value: what a server sends in its 2xx after a successful
/// verification, so the client can authenticate the server (`rspauth`) and learn the nonce
/// for its next request (`nextnonce`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AuthenticationInfo<'a> {
    /// `nextnonce`: the nonce the client should use for its next request (nonce count 1).
    pub nextnonce: Option<Cow<'a, str>>,
    /// `qop` of the request answered.
    pub qop: Option<Qop>,
    /// `rspauth`: the response digest with an empty method in A2.
    pub rspauth: Option<Cow<'a, str>>,
    /// `cnonce` of the request answered.
    pub cnonce: Option<Cow<'a, str>>,
    /// `nc` of the request answered (8 hex digits).
    pub nc: Option<Cow<'a, str>>,
    /// Other parameters, name and value as written.
    pub extra: Vec<(Cow<'a, str>, Cow<'a, str>)>,
}

impl<'a> AuthenticationInfo<'a> {
    /// Parses a header value such as `nextnonce="…", qop=auth, rspauth="…", cnonce="…", nc=00000001`.
    pub fn parse(s: &'a str) -> Result<AuthenticationInfo<'a>, AuthError> {
        use ims_sip::headers::TypedHeader;
        if s.len() > MAX_HEADER_VALUE {
            return Err(AuthError::BadParam("header value too long"));
        }
        let params = ims_sip::headers::AuthenticationInfo::parse(s)?;
        let mut a = AuthenticationInfo::default();
        let mut qop = None;
        for (i, p) in params.0.iter().enumerate() {
            if i == MAX_PARAMS {
                return Err(AuthError::BadParam("too many parameters"));
            }
            let raw = match p.value {
                Some(v) if !v.is_empty() => v,
                _ => return Err(AuthError::BadParam("auth-param value")),
            };
            match p.name.to_ascii_lowercase().as_str() {
                "nextnonce" => set(&mut a.nextnonce, "nextnonce", raw)?,
                "qop" => set(&mut qop, "qop", raw)?,
                "rspauth" => set(&mut a.rspauth, "rspauth", raw)?,
                "cnonce" => set(&mut a.cnonce, "cnonce", raw)?,
                "nc" => set(&mut a.nc, "nc", raw)?,
                _ => a.extra.push((Cow::Borrowed(p.name), Cow::Borrowed(raw))),
            }
        }
        if let Some(q) = qop {
            a.qop = Some(Qop::from_token(&q).ok_or(AuthError::BadParam("qop"))?);
        }
        if let Some(nc) = &a.nc {
            if nc.len() != 8 || !nc.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(AuthError::BadParam("nc"));
            }
        }
        Ok(a)
    }

    /// What a server answers after [`DigestServer::verify`] accepted `creds`: `rspauth` from
    /// `verified`, `qop`, `cnonce` and `nc` echoed, and `nextnonce` when given (a fresh
    /// [`DigestServer::challenge`] nonce, RFC 2617 §3.2.3).
    pub fn for_verified(
        verified: &Verified,
        creds: &Credentials<'_>,
        nextnonce: Option<&str>,
    ) -> AuthenticationInfo<'static> {
        AuthenticationInfo {
            nextnonce: nextnonce.map(|n| Cow::Owned(n.to_owned())),
            qop: verified.qop,
            rspauth: Some(Cow::Owned(verified.rspauth.clone())),
            cnonce: verified
                .qop
                .and(creds.cnonce.as_ref())
                .map(|c| Cow::Owned(c.to_string())),
            nc: verified
                .qop
                .and(creds.nc.as_ref())
                .map(|c| Cow::Owned(c.to_string())),
            extra: Vec::new(),
        }
    }

    /// Copies every borrowed string so the value outlives its input.
    pub fn into_owned(self) -> AuthenticationInfo<'static> {
        let o = |c: Cow<'_, str>| Cow::Owned(c.into_owned());
        AuthenticationInfo {
            nextnonce: self.nextnonce.map(o),
            qop: self.qop,
            rspauth: self.rspauth.map(o),
            cnonce: self.cnonce.map(o),
            nc: self.nc.map(o),
            extra: self.extra.into_iter().map(|(n, v)| (o(n), o(v))).collect(),
        }
    }
}

impl fmt::Display for AuthenticationInfo<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut sep = "";
        let mut item = |f: &mut fmt::Formatter<'_>, name: &str| -> fmt::Result {
            write!(f, "{sep}{name}=")?;
            sep = ", ";
            Ok(())
        };
        if let Some(n) = &self.nextnonce {
            item(f, "nextnonce")?;
            write_quoted(f, n)?;
        }
        if let Some(q) = self.qop {
            item(f, "qop")?;
            f.write_str(q.as_str())?;
        }
        if let Some(r) = &self.rspauth {
            item(f, "rspauth")?;
            write_quoted(f, r)?;
        }
        if let Some(c) = &self.cnonce {
            item(f, "cnonce")?;
            write_quoted(f, c)?;
        }
        if let Some(nc) = &self.nc {
            item(f, "nc")?;
            f.write_str(nc)?;
        }
        for (n, v) in &self.extra {
            item(f, n)?;
            f.write_str(v)?;
        }
        Ok(())
    }
}

/// The client's check of `rspauth` (RFC 2617 §3.2.3, RFC 7616 §3.5): `info` came with the
/// response to the request that carried `sent`; `ha1` is the client's HA1 (see [`ha1`], over
/// the plain username); `response_body` is the body of that response (used with `auth-int`).
/// `cnonce` and `nc`, when echoed, must be the ones sent ([`AuthError::Mismatch`]); a wrong
/// `rspauth` is [`AuthError::RspauthMismatch`]; none is [`AuthError::MissingParam`].
pub fn verify_rspauth(
    info: &AuthenticationInfo<'_>,
    sent: &Credentials<'_>,
    ha1: &str,
    response_body: &[u8],
) -> Result<(), AuthError> {
    let rspauth = info
        .rspauth
        .as_deref()
        .ok_or(AuthError::MissingParam("rspauth"))?;
    if info.cnonce.is_some() && info.cnonce != sent.cnonce {
        return Err(AuthError::Mismatch("cnonce"));
    }
    if let (Some(a), Some(b)) = (&info.nc, &sent.nc) {
        if !a.eq_ignore_ascii_case(b) {
            return Err(AuthError::Mismatch("nc"));
        }
    }
    if info.qop.is_some() && info.qop != sent.qop {
        return Err(AuthError::Mismatch("qop"));
    }
    let input = sent.input("", response_body)?;
    let expected = input.rspauth(ha1);
    if ct_eq(expected.as_bytes(), rspauth.to_ascii_lowercase().as_bytes()) {
        Ok(())
    } else {
        Err(AuthError::RspauthMismatch)
    }
}

/// A request the [`DigestClient`] authorizes.
#[derive(Debug, Clone, Copy)]
pub struct ClientRequest<'x> {
    /// The request method.
    pub method: &'x str,
    /// The digest-uri (usually the Request-URI).
    pub uri: &'x str,
    /// The body (for `auth-int`).
    pub body: &'x [u8],
    /// A fresh client nonce from the caller's randomness.
    pub cnonce: &'x str,
}

/// A UAC's digest state for one protection space: the challenge in force, HA1 (not the
/// password), the nonce count, and the credentials last sent. It counts `nc` up per request,
/// checks `rspauth` of each Authentication-Info and switches to `nextnonce` (nonce count
/// back to 1), and takes a new challenge (`stale=true`) without the password when the realm
/// and hash stay the same. `Debug` hides HA1.
#[derive(Clone)]
pub struct DigestClient {
    challenge: Challenge<'static>,
    username: String,
    ha1: String,
    nc: u32,
    last: Option<Credentials<'static>>,
}

impl fmt::Debug for DigestClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DigestClient")
            .field("realm", &self.challenge.realm)
            .field("nonce", &self.challenge.nonce)
            .field("username", &self.username)
            .field("ha1", &"<redacted>")
            .field("nc", &self.nc)
            .finish()
    }
}

impl DigestClient {
    /// Starts from a challenge, as `username` with `password` (UTF-8 octets).
    pub fn new(
        challenge: &Challenge<'_>,
        username: &str,
        password: &[u8],
    ) -> Result<DigestClient, AuthError> {
        let algorithm = challenge.algorithm()?;
        Ok(DigestClient {
            challenge: challenge.clone().into_owned(),
            username: username.to_owned(),
            ha1: ha1(algorithm, username, &challenge.realm, password),
            nc: 0,
            last: None,
        })
    }
    /// The nonce the next request will use.
    pub fn nonce(&self) -> &str {
        &self.challenge.nonce
    }
    /// The nonce count of the last request (0 before the first with this nonce).
    pub fn nc(&self) -> u32 {
        self.nc
    }
    /// The challenge in force.
    pub fn challenge(&self) -> &Challenge<'static> {
        &self.challenge
    }
    /// Credentials for the next request: same nonce, nonce count + 1 (see [`answer`]).
    pub fn authorize(
        &mut self,
        req: &ClientRequest<'_>,
    ) -> Result<Credentials<'static>, AuthError> {
        let nc = self.nc.checked_add(1).ok_or(AuthError::BadParam("nc"))?;
        let c = answer_with_ha1(
            &self.challenge,
            &self.username,
            &self.ha1,
            &Request {
                method: req.method,
                uri: req.uri,
                body: req.body,
                cnonce: req.cnonce,
                nc,
            },
        )?;
        self.nc = nc;
        self.last = Some(c.clone());
        Ok(c)
    }
    /// A 2xx came with Authentication-Info `info` (and body `response_body`): checks
    /// `rspauth` against the credentials last sent (see [`verify_rspauth`]), then adopts
    /// `nextnonce` if present (nonce count restarts). An Authentication-Info without
    /// `rspauth` (RFC 3261 allows only `nextnonce`) is accepted when `require_rspauth` is
    /// false. Nothing changes on error.
    pub fn on_authentication_info(
        &mut self,
        info: &AuthenticationInfo<'_>,
        response_body: &[u8],
        require_rspauth: bool,
    ) -> Result<(), AuthError> {
        if info.rspauth.is_some() || require_rspauth {
            let sent = self
                .last
                .as_ref()
                .ok_or(AuthError::Mismatch("no request sent"))?;
            verify_rspauth(info, sent, &self.ha1, response_body)?;
        }
        if let Some(n) = &info.nextnonce {
            self.challenge.nonce = Cow::Owned(n.to_string());
            self.nc = 0;
        }
        Ok(())
    }
    /// A new challenge for the same protection space (typically `stale=true` after the nonce
    /// expired): continues with its nonce, nonce count 1. A different realm or hash
    /// function, or an AKA challenge (whose password is per challenge), needs the password
    /// again ([`AuthError::Mismatch`]; make a new client).
    pub fn rechallenge(&mut self, challenge: &Challenge<'_>) -> Result<(), AuthError> {
        let old = self.challenge.algorithm()?;
        let new = challenge.algorithm()?;
        if challenge.realm != self.challenge.realm || old.hash() != new.hash() || new.is_aka() {
            return Err(AuthError::Mismatch("realm or algorithm changed"));
        }
        self.challenge = challenge.clone().into_owned();
        self.nc = 0;
        self.last = None;
        Ok(())
    }
}

/// The checks of a digest (not AKA) challenge's arguments: the algorithm and the caller's salt
/// (8 to [`MAX_SALT`] octets).
fn digest_salt_checked(algorithm: Algorithm, salt: &[u8]) -> Result<(), AuthError> {
    if algorithm.is_aka() {
        return Err(AuthError::Mismatch("use aka_challenge for AKA"));
    }
    if salt.len() < 8 || salt.len() > MAX_SALT {
        return Err(AuthError::Length {
            what: "salt",
            expected: 16,
            got: salt.len(),
        });
    }
    Ok(())
}

/// What an AKA nonce starts with (RFC 3310 §3.2): RAND ‖ AUTN of the vector, for an AKA
/// algorithm only.
fn aka_nonce_prefix(algorithm: Algorithm, av: &AuthVector) -> Result<[u8; 32], AuthError> {
    if !algorithm.is_aka() {
        return Err(AuthError::Mismatch("not an AKA algorithm"));
    }
    let mut prefix = [0u8; 32];
    prefix[..16].copy_from_slice(&av.rand);
    prefix[16..].copy_from_slice(&av.autn);
    Ok(prefix)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// `digest_params` as it was: the grammar's check, then the parameter iterator's pairs.
    fn digest_params_by_iter(s: &str) -> Result<Vec<(&str, &str)>, AuthError> {
        if s.len() > MAX_HEADER_VALUE {
            return Err(AuthError::BadParam("header value too long"));
        }
        let c = ims_sip::headers::Credentials::parse(s)?;
        if !c.is_digest() {
            return Err(AuthError::NotDigest(c.scheme.to_owned()));
        }
        let mut v = Vec::new();
        for p in c.params.iter() {
            if v.len() == MAX_PARAMS {
                return Err(AuthError::BadParam("too many parameters"));
            }
            match p.value {
                Some(val) if !val.is_empty() => v.push((p.name, val)),
                _ => return Err(AuthError::BadParam("auth-param value")),
            }
        }
        Ok(v)
    }

    fn one_pass(s: &str) -> Result<Vec<(&str, &str)>, AuthError> {
        digest_params(s).map(|l| l.into_iter().collect())
    }

    #[test]
    fn digest_params_in_one_pass_are_the_iterators_pairs() {
        let many = |n: usize| {
            let mut s = String::from("Digest ");
            for i in 0..n {
                if i > 0 {
                    s.push_str(", ");
                }
                s.push_str(&format!("p{i}=\"v{i}\""));
            }
            s
        };
        let cases = [
            r#"Digest username="alice@ims.example.org", realm="ims.example.org", nonce="", uri="sip:ims.example.org", response="""#,
            r#"Digest username = "a" ,realm="r",  nonce=abc=, uri="sip:x", response="00", qop=auth, nc=00000001, cnonce="c""#,
            "Digest a==b, c=d",
            "Digest a= =b",
            "Digest a=b,,c=d",
            "Digest a=\"x\\\"y\", b=c/d:e=f",
            "Digest a=b ,\r\n c=d",
            "Basic a=b",
            "Digest",
            "Digest a",
            "Digest a=",
            "Digest a=\"unterminated",
            "digest A=b",
        ];
        for s in cases {
            assert_eq!(one_pass(s), digest_params_by_iter(s), "{s:?}");
        }
        for n in [15, 16, 17, 63, 64, 65, 70] {
            let s = many(n);
            assert_eq!(one_pass(&s), digest_params_by_iter(&s), "{n} parameters");
        }
        assert!(one_pass(&many(64)).is_ok());
        assert_eq!(
            one_pass(&many(65)),
            Err(AuthError::BadParam("too many parameters"))
        );
        assert_eq!(one_pass("Digest a==b").unwrap(), vec![("a", "b")]);
    }

    proptest! {
        #[test]
        fn digest_params_one_pass_matches_the_iterator_on_any_text(
            body in proptest::collection::vec(
                prop_oneof![
                    Just("a"), Just("nc"), Just("="), Just("=="), Just(","), Just(" "),
                    Just("\""), Just("\\"), Just("x/y:z"), Just("\r\n "), Just("\t"),
                ],
                0..24,
            )
        ) {
            let s = format!("Digest {}", body.concat());
            prop_assert_eq!(one_pass(&s), digest_params_by_iter(&s), "{:?}", s);
        }
    }

    #[test]
    fn digests_are_written_as_hex_displays_them() {
        let all: Vec<u8> = (0..=255).collect();
        assert_eq!(lower_hex(&all), crate::error::Hex(&all).to_string());
        assert_eq!(lower_hex(&[]), "");
        // RFC 2617 §3.5 example: the response of Mufasa
        let h = Algorithm::Md5.h_parts(&[b"Mufasa", b"testrealm@host.com", b"Circle Of Life"]);
        assert_eq!(h, "939e7578ed9e3c518a452acee763bce9");
    }

    proptest::proptest! {
        /// `write_quoted` writes what `quote` makes, with or without the copy.
        #[test]
        fn write_quoted_writes_the_quoted_string(v in "[ -~\t\r\n\u{0}\u{1f}\u{7f}é\"\\\\]{0,24}") {
            struct Q<'a>(&'a str);
            impl fmt::Display for Q<'_> {
                fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    write_quoted(f, self.0)
                }
            }
            proptest::prop_assert_eq!(Q(&v).to_string(), quote(&v));
        }

        /// Hex as each octet formatted with `{:02x}`.
        #[test]
        fn hex_is_each_octet_formatted(data in proptest::collection::vec(proptest::num::u8::ANY, 0..40)) {
            let want: String = data.iter().map(|b| format!("{b:02x}")).collect();
            proptest::prop_assert_eq!(lower_hex(&data), want);
        }
    }

    #[test]
    fn token_or_quoted() {
        assert!(is_token("MD5-sess"));
        assert!(!is_token(""));
        assert!(!is_token("a b"));
    }

    #[test]
    fn nonce_counts_evict_safely() {
        let mut n = NonceCounts::new(2);
        let now = Duration::from_secs(100);
        n.record([1; 16], 200, 1, now).unwrap();
        n.record([2; 16], 300, 1, now).unwrap();
        assert_eq!(
            n.record([2; 16], 300, 1, now),
            Err(AuthError::Replay { nc: 1, last: 1 })
        );
        n.record([3; 16], 400, 1, now).unwrap(); // evicts [1] (expires 200)
        assert_eq!(n.len(), 2);
        // the evicted nonce cannot be replayed: it is now stale
        assert_eq!(n.record([1; 16], 200, 1, now), Err(AuthError::Stale));
        n.record([3; 16], 400, 2, now).unwrap();
    }

    #[test]
    fn forgotten_nonces_leave_no_memory_and_count_afresh() {
        let now = Duration::from_secs(100);
        let mut n = NonceCounts::new(10_000);
        assert!(!n.forget(&[1; 16]), "not tracked");
        n.record([1; 16], 200, 1, now).unwrap();
        n.record([2; 16], 200, 3, now).unwrap();
        assert!(n.forget(&[1; 16]));
        assert!(!n.forget(&[1; 16]));
        assert_eq!(n.len(), 1);
        // the other nonce keeps its counts; the forgotten one starts again
        assert_eq!(
            n.record([2; 16], 200, 3, now),
            Err(AuthError::Replay { nc: 3, last: 3 })
        );
        n.record([1; 16], 200, 1, now).unwrap();
        // a peak of 5,000 nonces, then all but one forgotten: the table gives its memory back
        for i in 0..5_000u32 {
            let mut t = [0xee; 16];
            t[..4].copy_from_slice(&i.to_be_bytes());
            n.record(t, 300, 1, now).unwrap();
        }
        let peak = n.seen.capacity();
        assert!(peak >= 5_002);
        for i in 0..5_000u32 {
            let mut t = [0xee; 16];
            t[..4].copy_from_slice(&i.to_be_bytes());
            assert!(n.forget(&t));
        }
        assert_eq!(n.len(), 2);
        assert!(n.seen.capacity() <= 64, "{} of {peak}", n.seen.capacity());
        // what is left still counts: 3 was seen, 2 (in the window) not yet
        assert_eq!(
            n.record([2; 16], 200, 3, now),
            Err(AuthError::Replay { nc: 3, last: 3 })
        );
        n.record([2; 16], 200, 2, now).unwrap();
    }

    /// The tag as the HMAC keyed afresh for each nonce computed it (before the keyed state was
    /// kept in the server): the pre-keyed clone must give the same octets, so nonces made by
    /// either verify with the other.
    #[test]
    fn the_kept_hmac_state_gives_the_tags_of_a_fresh_key() {
        let fresh = |key: &[u8], alg: Algorithm, realm: &str, prefix: &[u8], expires: u64| {
            let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(key).unwrap();
            mac.update(b"ims-auth nonce 1\0");
            mac.update(alg.as_str().as_bytes());
            mac.update(&(realm.len() as u64).to_be_bytes());
            mac.update(realm.as_bytes());
            mac.update(&(prefix.len() as u64).to_be_bytes());
            mac.update(prefix);
            mac.update(&expires.to_be_bytes());
            let out = mac.finalize().into_bytes();
            <[u8; 16]>::try_from(&out[..16]).unwrap()
        };
        for key in [&b""[..], b"k", &[7u8; 64], &[9u8; 100]] {
            let server = DigestServer::new(key);
            for (alg, realm, prefix, exp) in [
                (Algorithm::Md5, "ims.example.org", &b"salt"[..], 1u64),
                (Algorithm::AkaV1Md5, "", &[0u8; 32][..], u64::MAX),
                (Algorithm::Sha256, "r\u{e9}alm", &b""[..], 300),
            ] {
                let t = server.tag(alg, realm, prefix, exp);
                assert_eq!(t, fresh(key, alg, realm, prefix, exp));
                // the same server again (the kept state is not consumed)
                assert_eq!(server.tag(alg, realm, prefix, exp), t);
            }
        }
    }
}
