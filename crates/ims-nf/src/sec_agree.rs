//! Security agreement at the P-CSCF: RFC 3329 (Security-Client, Security-Server,
//! Security-Verify, the `sec-agree` option tag), the `ipsec-3gpp` mechanism of TS 33.203 §7 and
//! TS 24.229 §5.2.2 / §7.2A.7.
//!
//! ```
//! use ims_nf::sec_agree::{parse_mechanism, SecMechanism};
//! // TS 24.228 §6.2 (flow 2-01a): the UE's offer
//! let m = parse_mechanism(
//!     "ipsec-3gpp; alg=hmac-sha-1-96; spi-c=23456789; spi-s=12345678; port-c=2468; port-s=1357",
//! )
//! .unwrap();
//! assert_eq!(m.name, "ipsec-3gpp");
//! assert_eq!((m.spi_c, m.spi_s, m.port_c, m.port_s), (Some(23456789), Some(12345678), Some(2468), Some(1357)));
//! assert_eq!(
//!     m.to_string(),
//!     "ipsec-3gpp;alg=hmac-sha-1-96;spi-c=23456789;spi-s=12345678;port-c=2468;port-s=1357"
//! );
//! ```
//!
//! The P-CSCF side ([`SecAgree`], used by [`crate::cscf::Pcscf`]): the initial REGISTER's
//! Security-Client is stored and removed (with `sec-agree` out of Require/Proxy-Require); the 401
//! coming back loses its `ck`/`ik` parameters, which key the SAs, and gains the P-CSCF's
//! Security-Server (its SPIs and protected ports, the algorithms picked by preference among the
//! UE's); the protected REGISTER must echo that Security-Server in Security-Verify and repeat the
//! first Security-Client (else 494); its 200 turns the temporary SAs into the registration's,
//! which end with it.
//!
//! The kernel SAs themselves are behind [`SaInstaller`]: [`XfrmInstaller`] runs `ip xfrm` on
//! Linux (untested here: the build machine's kernel has no ESP, `ip xfrm state add … proto esp`
//! fails with "Requested type not found"); [`RecordingInstaller`] keeps what it was asked, for
//! tests.

use ims_sip::{HeaderName, Message, OwnedMessage};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, RwLock};

/// The option tag of RFC 3329 §4.
pub const OPTION_TAG: &str = "sec-agree";
/// The mechanism name of TS 33.203 (IPsec with IMS AKA keys).
pub const IPSEC_3GPP: &str = "ipsec-3gpp";
/// At most this many mechanisms in one list, parameters per mechanism.
const MAX_MECHANISMS: usize = 32;
const MAX_PARAMS: usize = 32;

/// A fault in a security mechanism list.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SecAgreeError {
    /// The mechanism name is missing or not a token.
    #[error("bad mechanism name at byte {offset}")]
    Name {
        /// Offset in the value.
        offset: usize,
    },
    /// A parameter is malformed (empty name, unterminated quote, number out of range).
    #[error("bad parameter `{param}` at byte {offset}")]
    Param {
        /// The parameter's name.
        param: String,
        /// Offset in the value.
        offset: usize,
    },
    /// More mechanisms or parameters than the limits allow.
    #[error("too many mechanisms or parameters")]
    TooLong,
}

fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b))
}

/// A parameter value as RFC 3329 §2.2 allows it (`gen-value = token / host / quoted-string`,
/// RFC 3261 §25.1): token characters (with `:`, `[` and `]` for an IPv6 host), or one whole
/// quoted string whose inner quotes are escaped and that holds no control character. Anything
/// else could not be written back (a stray quote would swallow the parameters after it).
fn is_gen_value(v: &str) -> bool {
    let b = v.as_bytes();
    match b {
        [] => false,
        [b'"', inner @ .., b'"'] if b.len() >= 2 => {
            let mut escaped = false;
            for &c in inner {
                if c < 0x20 && c != b'\t' || c == 0x7f {
                    return false;
                }
                match (escaped, c) {
                    (true, _) => escaped = false,
                    (false, b'\\') => escaped = true,
                    (false, b'"') => return false,
                    _ => {}
                }
            }
            !escaped
        }
        _ => b
            .iter()
            .all(|&c| c.is_ascii_alphanumeric() || b"-.!%*_+`'~:[]".contains(&c)),
    }
}

/// One element of a Security-Client/-Server/-Verify list (RFC 3329 §2.2:
/// `mechanism-name *(SEMI mech-parameters)`), with the `ipsec-3gpp` parameters of TS 33.203
/// Annex H read out. A view over the header value.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SecMechanism<'a> {
    /// `ipsec-3gpp`, `tls`, `digest`, `ipsec-ike`, ...
    pub name: &'a str,
    /// Preference `q` in thousandths (`q=0.1` → 100).
    pub q: Option<u16>,
    /// Integrity algorithm (`hmac-sha-1-96`, `hmac-md5-96`).
    pub alg: Option<&'a str>,
    /// Encryption algorithm (`aes-cbc`, `des-ede3-cbc`, `null`); absent means `null`.
    pub ealg: Option<&'a str>,
    /// SPI of the sender's client SA.
    pub spi_c: Option<u32>,
    /// SPI of the sender's server SA.
    pub spi_s: Option<u32>,
    /// Protected client port.
    pub port_c: Option<u16>,
    /// Protected server port.
    pub port_s: Option<u16>,
    /// `prot` (`esp`, `ah`).
    pub prot: Option<&'a str>,
    /// `mod` (`trans`, `tun`, `UDP-enc-tun`).
    pub mode: Option<&'a str>,
    /// Any other parameter (`d-alg`, `d-qop`, `d-ver`, extensions), value as written.
    pub other: Vec<(&'a str, Option<&'a str>)>,
}

/// Parses one mechanism (`ipsec-3gpp; alg=hmac-sha-1-96; spi-c=1; ...`).
pub fn parse_mechanism(value: &str) -> Result<SecMechanism<'_>, SecAgreeError> {
    let mut parts = split_top(value, b';');
    let (o, name) = parts.next().unwrap_or((0, ""));
    let name = name.trim();
    if !is_token(name) {
        return Err(SecAgreeError::Name { offset: o });
    }
    let mut m = SecMechanism {
        name,
        ..SecMechanism::default()
    };
    for (n, (off, p)) in parts.enumerate() {
        if n >= MAX_PARAMS {
            return Err(SecAgreeError::TooLong);
        }
        let p = p.trim();
        let (k, v) = match p.split_once('=') {
            Some((k, v)) => (k.trim(), Some(v.trim())),
            None => (p, None),
        };
        let bad = || SecAgreeError::Param {
            param: k.to_string(),
            offset: off,
        };
        if !is_token(k) {
            return Err(bad());
        }
        if v.is_some_and(|v| !is_gen_value(v)) {
            return Err(bad());
        }
        let num = |v: Option<&str>| v.and_then(|v| v.parse::<u32>().ok()).ok_or_else(bad);
        let port = |v: Option<&str>| v.and_then(|v| v.parse::<u16>().ok()).ok_or_else(bad);
        match k.to_ascii_lowercase().as_str() {
            "q" => m.q = Some(parse_q(v.ok_or_else(bad)?).ok_or_else(bad)?),
            "alg" => m.alg = Some(v.ok_or_else(bad)?),
            "ealg" => m.ealg = Some(v.ok_or_else(bad)?),
            "spi-c" => m.spi_c = Some(num(v)?),
            "spi-s" => m.spi_s = Some(num(v)?),
            "port-c" => m.port_c = Some(port(v)?),
            "port-s" => m.port_s = Some(port(v)?),
            "prot" => m.prot = Some(v.ok_or_else(bad)?),
            "mod" => m.mode = Some(v.ok_or_else(bad)?),
            _ => m.other.push((k, v)),
        }
    }
    Ok(m)
}

/// Parses every element of a list (the comma-separated elements of one or several header
/// lines).
pub fn parse_list<'a>(
    elements: impl IntoIterator<Item = &'a str>,
) -> Result<Vec<SecMechanism<'a>>, SecAgreeError> {
    let mut out = Vec::new();
    for e in elements {
        if out.len() >= MAX_MECHANISMS {
            return Err(SecAgreeError::TooLong);
        }
        out.push(parse_mechanism(e)?);
    }
    Ok(out)
}

/// The mechanisms of every `name` header of a message.
pub fn mechanisms<'a>(
    m: &'a Message<'a>,
    name: HeaderName,
) -> Result<Vec<SecMechanism<'a>>, SecAgreeError> {
    parse_list(m.list(name).map(|(_, e)| e))
}

/// `q` value (`0.1`, `1`, `0.25`) in thousandths (RFC 3261 qvalue).
fn parse_q(v: &str) -> Option<u16> {
    let (int, frac) = v.split_once('.').unwrap_or((v, ""));
    if frac.len() > 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let f = format!("{frac:0<3}").parse::<u16>().ok()?;
    match int {
        "0" => Some(f),
        "1" if f == 0 => Some(1000),
        _ => None,
    }
}

/// Splits at `sep` outside quoted strings: `(offset, piece)`.
fn split_top(s: &str, sep: u8) -> impl Iterator<Item = (usize, &str)> {
    let b = s.as_bytes();
    let mut start = 0;
    let mut done = false;
    std::iter::from_fn(move || {
        if done {
            return None;
        }
        let mut quoted = false;
        let mut i = start;
        while i < b.len() {
            match b[i] {
                b'\\' if quoted => i += 1,
                b'"' => quoted = !quoted,
                c if c == sep && !quoted => break,
                _ => {}
            }
            i += 1;
        }
        let i = i.min(b.len());
        let piece = (start, &s[start..i]);
        if i >= b.len() {
            done = true;
        } else {
            start = i + 1;
        }
        Some(piece)
    })
}

impl SecMechanism<'_> {
    /// The same mechanism and parameters (names and tokens case-insensitive), however written.
    pub fn same_as(&self, o: &SecMechanism<'_>) -> bool {
        let ci = |a: Option<&str>, b: Option<&str>| match (a, b) {
            (Some(a), Some(b)) => a.eq_ignore_ascii_case(b),
            (a, b) => a == b,
        };
        self.name.eq_ignore_ascii_case(o.name)
            && self.q == o.q
            && ci(self.alg, o.alg)
            && ci(self.ealg, o.ealg)
            && (self.spi_c, self.spi_s, self.port_c, self.port_s)
                == (o.spi_c, o.spi_s, o.port_c, o.port_s)
            && ci(self.prot, o.prot)
            && ci(self.mode, o.mode)
            && self.other.len() == o.other.len()
            && self
                .other
                .iter()
                .zip(&o.other)
                .all(|(a, b)| a.0.eq_ignore_ascii_case(b.0) && a.1 == b.1)
    }
}

/// Two lists carry the same mechanisms in the same order.
pub fn same_list(a: &[SecMechanism<'_>], b: &[SecMechanism<'_>]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.same_as(y))
}

impl fmt::Display for SecMechanism<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name)?;
        if let Some(q) = self.q {
            if q >= 1000 {
                f.write_str(";q=1")?;
            } else {
                let s = format!("{q:03}");
                write!(f, ";q=0.{}", s.trim_end_matches('0'))?;
                if q == 0 {
                    f.write_str("0")?;
                }
            }
        }
        for (k, v) in [("alg", self.alg), ("ealg", self.ealg)] {
            if let Some(v) = v {
                write!(f, ";{k}={v}")?;
            }
        }
        for (k, v) in [("spi-c", self.spi_c), ("spi-s", self.spi_s)] {
            if let Some(v) = v {
                write!(f, ";{k}={v}")?;
            }
        }
        for (k, v) in [("port-c", self.port_c), ("port-s", self.port_s)] {
            if let Some(v) = v {
                write!(f, ";{k}={v}")?;
            }
        }
        for (k, v) in [("prot", self.prot), ("mod", self.mode)] {
            if let Some(v) = v {
                write!(f, ";{k}={v}")?;
            }
        }
        for (k, v) in &self.other {
            match v {
                Some(v) => write!(f, ";{k}={v}")?,
                None => write!(f, ";{k}")?,
            }
        }
        Ok(())
    }
}

/// An option-tag header value (Require, Proxy-Require, Supported) without `sec-agree`;
/// `None` when nothing is left.
pub fn without_sec_agree(value: &str) -> Option<String> {
    let rest: Vec<&str> = value
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty() && !t.eq_ignore_ascii_case(OPTION_TAG))
        .collect();
    (!rest.is_empty()).then(|| rest.join(", "))
}

/// An Authorization value without any `integrity-protected` parameter (one a UE wrote itself:
/// only the P-CSCF sets it, TS 24.229 §5.2.2.1); `None` when it has none.
pub fn without_integrity_protected(auth: &str) -> Option<String> {
    // `integrity-protected` after any number of `digest ` prefixes, ASCII case-insensitively
    let is_ip = |p: &str| {
        let mut b = p.trim().as_bytes();
        while b.len() >= 7 && b[..7].eq_ignore_ascii_case(b"digest ") {
            b = &b[7..];
        }
        b.len() >= 19 && b[..19].eq_ignore_ascii_case(b"integrity-protected")
    };
    // most values (every one a UE rightly writes) do not hold the name at all: one `-` search
    if !holds_integrity_protected(auth) || !split_top(auth, b',').any(|(_, p)| is_ip(p)) {
        return None;
    }
    let mut out = String::with_capacity(auth.len() + 7);
    for p in split_top(auth, b',')
        .map(|(_, p)| p.trim())
        .filter(|p| !is_ip(p))
    {
        if !out.is_empty() {
            out.push(',');
        }
        out.push_str(p);
    }
    if !out
        .as_bytes()
        .get(..6)
        .is_some_and(|b| b.eq_ignore_ascii_case(b"digest"))
    {
        out.insert_str(0, "Digest ");
    }
    Some(out)
}

/// Whether `s` holds `integrity-protected` (ASCII case-insensitively) somewhere: every piece
/// [`without_integrity_protected`] takes out holds it.
fn holds_integrity_protected(s: &str) -> bool {
    let b = s.as_bytes();
    memchr::memchr_iter(b'-', b).any(|i| {
        i >= 9
            && b[i - 9..i].eq_ignore_ascii_case(b"integrity")
            && b.get(i + 1..i + 10)
                .is_some_and(|p| p.eq_ignore_ascii_case(b"protected"))
    })
}

/// A WWW-Authenticate challenge without its `ck`/`ik` parameters, and their values (hex, as
/// TS 24.229 §5.4.1.2.1 has the S-CSCF add them for the P-CSCF).
pub fn take_keys(challenge: &str) -> (String, Option<String>, Option<String>) {
    let c = challenge.trim();
    let (scheme, params) = match c.find(char::is_whitespace) {
        Some(i) => (&c[..i], c[i..].trim_start()),
        None => (c, ""),
    };
    let (mut ck, mut ik) = (None, None);
    // the kept parameters written straight into the result (no lowercased name or value copy
    // per parameter, no list joined, no formatting machinery: one 401 per registration)
    let mut out = String::with_capacity(c.len());
    out.push_str(scheme);
    out.push(' ');
    let mut first = true;
    for (_, p) in split_top(params, b',') {
        let p = p.trim();
        let (k, v) = p.split_once('=').unwrap_or((p, ""));
        let k = k.trim();
        let value = || Some(v.trim().trim_matches('"').to_string());
        if k.eq_ignore_ascii_case("ck") {
            ck = value();
        } else if k.eq_ignore_ascii_case("ik") {
            ik = value();
        } else if !p.is_empty() {
            if !first {
                out.push(',');
            }
            out.push_str(p);
            first = false;
        }
    }
    (out, ck, ik)
}

// ---------------------------------------------------------------------------------------------
// Security associations

/// One end's SPIs and protected ports (TS 33.203 §7.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SaEnd {
    /// SPI of the SA this end receives on at its protected client port.
    pub spi_c: u32,
    /// SPI of the SA this end receives on at its protected server port.
    pub spi_s: u32,
    /// Protected client port.
    pub port_c: u16,
    /// Protected server port.
    pub port_s: u16,
}

/// The four SAs between a UE and the P-CSCF (two pairs, TS 33.203 §7.1), as agreed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecurityAssociation {
    /// The UE's IP address.
    pub ue_ip: IpAddr,
    /// The P-CSCF's IP address.
    pub pcscf_ip: IpAddr,
    /// The UE's SPIs and ports (from its Security-Client).
    pub ue: SaEnd,
    /// Ours (our Security-Server).
    pub pcscf: SaEnd,
    /// Integrity algorithm (`hmac-sha-1-96`, `hmac-md5-96`).
    pub alg: String,
    /// Encryption algorithm (`aes-cbc`, `des-ede3-cbc`, `null`).
    pub ealg: String,
    /// IK (integrity key) from the 401.
    pub ik: Vec<u8>,
    /// CK (cipher key) from the 401.
    pub ck: Vec<u8>,
    /// False until the 200 to the protected REGISTER (a temporary SA, TS 33.203 §7.4).
    pub established: bool,
    /// When it ends (seconds since the epoch): the temporary lifetime, then the registration's.
    pub expires_at: u64,
}

/// A fault installing or removing kernel SAs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("installing the IPsec SA failed: {0}")]
pub struct SaError(pub String);

/// Where SAs are installed: the kernel ([`XfrmInstaller`]) or a record ([`RecordingInstaller`]).
pub trait SaInstaller: Send + Sync + fmt::Debug {
    /// Installs the four SAs (and their policies).
    fn install(&self, sa: &SecurityAssociation) -> Result<(), SaError>;
    /// Removes them.
    fn remove(&self, sa: &SecurityAssociation) -> Result<(), SaError>;
}

/// What a [`RecordingInstaller`] was asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SaOperation {
    /// [`SaInstaller::install`].
    Install(SecurityAssociation),
    /// [`SaInstaller::remove`].
    Remove(SecurityAssociation),
}

/// Records installs and removals (tests, and a P-CSCF without kernel IPsec).
#[derive(Debug, Default)]
pub struct RecordingInstaller(Mutex<Vec<SaOperation>>);

impl RecordingInstaller {
    /// The operations so far, in order.
    pub fn operations(&self) -> Vec<SaOperation> {
        self.0.lock().expect("installer lock").clone()
    }
}

impl SaInstaller for RecordingInstaller {
    fn install(&self, sa: &SecurityAssociation) -> Result<(), SaError> {
        self.0
            .lock()
            .expect("installer lock")
            .push(SaOperation::Install(sa.clone()));
        Ok(())
    }
    fn remove(&self, sa: &SecurityAssociation) -> Result<(), SaError> {
        self.0
            .lock()
            .expect("installer lock")
            .push(SaOperation::Remove(sa.clone()));
        Ok(())
    }
}

/// Installs SAs with Linux `ip xfrm` (transport-mode ESP, the keys of TS 33.203 Annex I).
/// NOT TESTED against a kernel: the machine this was written on has no ESP support (`ip xfrm
/// state add … proto esp` fails with "Requested type not found"); [`xfrm_commands`] is
/// unit-tested for the command lines only. Needs CAP_NET_ADMIN.
#[derive(Debug, Default)]
pub struct XfrmInstaller;

/// The `ip` argument lists installing (`add`) or removing the SAs and policies of `sa`: four
/// states and four policies (UE client → our server, our server → UE client, our client → UE
/// server, UE server → our client).
pub fn xfrm_commands(sa: &SecurityAssociation, add: bool) -> Vec<Vec<String>> {
    let hex = |k: &[u8]| format!("0x{}", ims_auth::encoding::hex_encode(k));
    // TS 33.203 Annex I: IK (128 bits) extended with 32 zero bits for HMAC-SHA-1-96; CK as is
    // for AES-CBC, CK1||CK2||CK1 (192 bits) for 3DES
    let auth = match sa.alg.as_str() {
        "hmac-sha-1-96" => {
            let mut k = sa.ik.clone();
            k.extend_from_slice(&[0; 4]);
            ("hmac(sha1)", hex(&k))
        }
        _ => ("hmac(md5)", hex(&sa.ik)),
    };
    let enc = match sa.ealg.as_str() {
        "aes-cbc" => ("cbc(aes)", hex(&sa.ck)),
        "des-ede3-cbc" => {
            let mut k = sa.ck.clone();
            k.extend_from_slice(&sa.ck[..sa.ck.len().min(8)]);
            ("cbc(des3_ede)", hex(&k))
        }
        _ => ("ecb(cipher_null)", "\"\"".to_string()),
    };
    let (ue, p) = (sa.ue_ip.to_string(), sa.pcscf_ip.to_string());
    // (src, dst, sport, dport, spi): the SPI is the receiver's
    let flows = [
        (&ue, &p, sa.ue.port_c, sa.pcscf.port_s, sa.pcscf.spi_s),
        (&p, &ue, sa.pcscf.port_s, sa.ue.port_c, sa.ue.spi_c),
        (&p, &ue, sa.pcscf.port_c, sa.ue.port_s, sa.ue.spi_s),
        (&ue, &p, sa.ue.port_s, sa.pcscf.port_c, sa.pcscf.spi_c),
    ];
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    let mut out = Vec::new();
    for (src, dst, sport, dport, spi) in flows {
        let (sport, dport, spi) = (sport.to_string(), dport.to_string(), format!("{spi}"));
        let dir = if *src == ue { "in" } else { "out" };
        if add {
            out.push(s(&[
                "xfrm",
                "state",
                "add",
                "src",
                src,
                "dst",
                dst,
                "proto",
                "esp",
                "spi",
                &spi,
                "mode",
                "transport",
                "auth-trunc",
                auth.0,
                &auth.1,
                "96",
                "enc",
                enc.0,
                &enc.1,
                "sel",
                "src",
                src,
                "dst",
                dst,
                "sport",
                &sport,
                "dport",
                &dport,
            ]));
            out.push(s(&[
                "xfrm",
                "policy",
                "add",
                "src",
                src,
                "dst",
                dst,
                "sport",
                &sport,
                "dport",
                &dport,
                "dir",
                dir,
                "tmpl",
                "src",
                src,
                "dst",
                dst,
                "proto",
                "esp",
                "mode",
                "transport",
            ]));
        } else {
            out.push(s(&[
                "xfrm", "state", "delete", "src", src, "dst", dst, "proto", "esp", "spi", &spi,
            ]));
            out.push(s(&[
                "xfrm", "policy", "delete", "src", src, "dst", dst, "sport", &sport, "dport",
                &dport, "dir", dir,
            ]));
        }
    }
    out
}

impl XfrmInstaller {
    fn run(cmds: Vec<Vec<String>>) -> Result<(), SaError> {
        for c in cmds {
            let out = std::process::Command::new("ip")
                .args(&c)
                .output()
                .map_err(|e| SaError(e.to_string()))?;
            if !out.status.success() {
                return Err(SaError(format!(
                    "ip {}: {}",
                    c.join(" "),
                    String::from_utf8_lossy(&out.stderr).trim()
                )));
            }
        }
        Ok(())
    }
}

impl SaInstaller for XfrmInstaller {
    fn install(&self, sa: &SecurityAssociation) -> Result<(), SaError> {
        Self::run(xfrm_commands(sa, true))
    }
    fn remove(&self, sa: &SecurityAssociation) -> Result<(), SaError> {
        Self::run(xfrm_commands(sa, false))
    }
}

// ---------------------------------------------------------------------------------------------
// The P-CSCF's agreement

/// Security agreement settings of a P-CSCF.
#[derive(Debug, Clone)]
pub struct SecAgreeConfig {
    /// Our IP address (the SAs' P-CSCF end).
    pub ip: IpAddr,
    /// Our protected client port (`port-c` of our Security-Server).
    pub port_c: u16,
    /// Our protected server port (`port-s`): where protected requests from UEs arrive.
    pub port_s: u16,
    /// Integrity algorithms we accept, preferred first.
    pub integrity: Vec<String>,
    /// Encryption algorithms we accept, preferred first (`null`: none).
    pub encryption: Vec<String>,
    /// Lifetime of the temporary SAs set up by the 401 (TS 33.203 §7.4: at least the
    /// reg-await-auth time), seconds.
    pub temporary_lifetime: u64,
    /// First SPI handed out (SPIs 1-255 are reserved, RFC 4303 §2.1).
    pub first_spi: u32,
}

impl SecAgreeConfig {
    /// Defaults: HMAC-SHA-1-96 before HMAC-MD5-96, AES-CBC before 3DES before null, 240 s
    /// temporary SAs.
    pub fn new(ip: IpAddr, port_c: u16, port_s: u16) -> SecAgreeConfig {
        SecAgreeConfig {
            ip,
            port_c,
            port_s,
            integrity: vec!["hmac-sha-1-96".into(), "hmac-md5-96".into()],
            encryption: vec!["aes-cbc".into(), "des-ede3-cbc".into(), "null".into()],
            temporary_lifetime: 240,
            first_spi: 0x1000,
        }
    }
}

/// The UE's offer, kept from the initial REGISTER until the 401.
#[derive(Debug, Clone)]
struct Offer {
    /// Its Security-Client as received (compared with the protected REGISTER's).
    client: String,
    /// (alg, ealg, SPIs/ports) of each `ipsec-3gpp` element.
    options: Vec<(String, String, SaEnd)>,
}

/// A registration's agreement: the offer, what we answered, the SAs.
#[derive(Debug, Clone)]
struct Agreement {
    offer: Offer,
    /// When the offer came (an agreement never challenged ends after the temporary lifetime).
    offered_at: u64,
    /// Our Security-Server (the protected REGISTER's Security-Verify must match).
    server: String,
    sa: Option<SecurityAssociation>,
    /// The SAs in use before a re-authentication: kept until the new ones carry a request
    /// (TS 33.203 §7.4), or until they expire.
    old: Option<SecurityAssociation>,
}

/// What [`SecAgree::on_register`] wants done to a REGISTER.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RegisterEdits {
    /// Header names removed.
    pub remove: Vec<String>,
    /// Headers added.
    pub headers: Vec<(String, String)>,
}

/// The P-CSCF's security agreement state, by REGISTER Call-ID (the protected REGISTER keeps the
/// Call-ID of the challenged one, TS 24.229 §5.1.1.5.1).
#[derive(Debug)]
pub struct SecAgree {
    cfg: SecAgreeConfig,
    installer: Arc<dyn SaInstaller>,
    next_spi: Mutex<u32>,
    by_call: Mutex<HashMap<String, Agreement>>,
    /// The agreements holding an SA (current or old) by the UE's protected ports
    /// (`ue_ip:port-c` and `ue_ip:port-s`): requests are checked against the SAs of their
    /// source without a scan. Locked after `by_call`, never alone before it.
    by_addr: Mutex<HashMap<SocketAddr, Vec<String>>>,
    /// Every agreement by the time it is next due for [`SecAgree::expire`] (`due_at`):
    /// (time, Call-ID), one entry per agreement in `by_call`, moved with each change of its
    /// SAs or offer. Locked after `by_call`.
    due: Mutex<BTreeSet<(u64, String)>>,
    /// Agreements examined by the last [`SecAgree::accept_request`] (tests).
    #[cfg(test)]
    examined: std::sync::atomic::AtomicUsize,
    /// Agreements examined by the last [`SecAgree::expire`] (tests).
    #[cfg(test)]
    expiry_examined: std::sync::atomic::AtomicUsize,
    /// The UEs' protected server ports (`ue_ip:port-s`) while they have SAs: requests to them
    /// leave from our protected client port (shared with the transport).
    peers: Arc<RwLock<HashSet<SocketAddr>>>,
}

impl SecAgree {
    /// An agreement engine installing SAs through `installer`.
    pub fn new(cfg: SecAgreeConfig, installer: Arc<dyn SaInstaller>) -> SecAgree {
        let first = cfg.first_spi.max(256);
        SecAgree {
            cfg,
            installer,
            next_spi: Mutex::new(first),
            by_call: Mutex::new(HashMap::new()),
            by_addr: Mutex::new(HashMap::new()),
            due: Mutex::new(BTreeSet::new()),
            #[cfg(test)]
            examined: std::sync::atomic::AtomicUsize::new(0),
            #[cfg(test)]
            expiry_examined: std::sync::atomic::AtomicUsize::new(0),
            peers: Arc::default(),
        }
    }

    /// The UEs' protected server ports (`ue_ip:port-s`) of the SAs now held: requests toward
    /// them go from our protected client port to that port (TS 33.203 §7.1). The set is kept
    /// up to date as SAs come and go (give it to the transport, e.g. an
    /// `ims_net::sip::ClientPort`).
    pub fn protected_peers(&self) -> Arc<RwLock<HashSet<SocketAddr>>> {
        self.peers.clone()
    }

    /// Our SIP URI at the protected server port, with `user` (`term`: the Path of a protected
    /// REGISTER, TS 24.229 §5.2.2).
    pub fn protected_uri(&self, user: &str) -> String {
        match self.cfg.ip {
            IpAddr::V4(ip) => format!("sip:{user}@{ip}:{}", self.cfg.port_s),
            IpAddr::V6(ip) => format!("sip:{user}@[{ip}]:{}", self.cfg.port_s),
        }
    }

    /// The Security-Server of a 494 (RFC 3329 §2.3.1: the server lists the mechanisms it
    /// supports): one `ipsec-3gpp` element per (integrity, encryption) pair we accept, in our
    /// order of preference.
    pub fn supported_mechanisms(&self) -> String {
        let n = (self.cfg.integrity.len() * self.cfg.encryption.len()).max(1);
        let mut out = Vec::new();
        for (i, alg) in self.cfg.integrity.iter().enumerate() {
            for (j, ealg) in self.cfg.encryption.iter().enumerate() {
                let rank = i * self.cfg.encryption.len() + j;
                // q from 1 down in equal steps: the order is the preference
                let q = u16::try_from(1000 - 1000 * rank / n).unwrap_or(0);
                out.push(
                    SecMechanism {
                        name: IPSEC_3GPP,
                        q: Some(q),
                        alg: Some(alg),
                        ealg: Some(ealg),
                        prot: Some("esp"),
                        mode: Some("trans"),
                        ..SecMechanism::default()
                    }
                    .to_string(),
                );
            }
        }
        out.join(", ")
    }

    /// The UE's protected client and server addresses of an SA.
    fn ue_addrs(sa: &SecurityAssociation) -> [SocketAddr; 2] {
        [
            SocketAddr::new(sa.ue_ip, sa.ue.port_c),
            SocketAddr::new(sa.ue_ip, sa.ue.port_s),
        ]
    }

    fn install(&self, sa: &SecurityAssociation, call_id: &str) {
        // a failed install (no kernel IPsec) leaves the agreement in place: the state and the
        // headers are what this P-CSCF answers for
        let _ = self.installer.install(sa);
        if let Ok(mut p) = self.peers.write() {
            p.insert(SocketAddr::new(sa.ue_ip, sa.ue.port_s));
        }
        let mut idx = self.by_addr.lock().expect("sec-agree index lock");
        for a in Self::ue_addrs(sa) {
            let v = idx.entry(a).or_default();
            if !v.iter().any(|k| k == call_id) {
                v.push(call_id.to_string());
            }
        }
    }

    /// Removes the SA `sa` of the agreement `call_id` (already taken out of it, or the whole
    /// agreement out of `calls`): kernel SAs, index entries and the protected peer no other SA
    /// uses.
    fn uninstall(
        &self,
        sa: &SecurityAssociation,
        call_id: &str,
        calls: &HashMap<String, Agreement>,
    ) {
        let _ = self.installer.remove(sa);
        let holds = |k: &str, addr: SocketAddr, server: bool| {
            calls.get(k).is_some_and(|a| {
                [&a.sa, &a.old].into_iter().flatten().any(|o| {
                    o != sa
                        && o.ue_ip == addr.ip()
                        && if server {
                            o.ue.port_s == addr.port()
                        } else {
                            Self::ue_addrs(o).contains(&addr)
                        }
                })
            })
        };
        let peer = SocketAddr::new(sa.ue_ip, sa.ue.port_s);
        let mut idx = self.by_addr.lock().expect("sec-agree index lock");
        for addr in Self::ue_addrs(sa) {
            if let Some(v) = idx.get_mut(&addr) {
                v.retain(|k| k != call_id || holds(k, addr, false));
                if v.is_empty() {
                    idx.remove(&addr);
                }
            }
        }
        // another agreement (a later registration from the same UE port) may still use it
        let used = idx
            .get(&peer)
            .is_some_and(|v| v.iter().any(|k| holds(k, peer, true)));
        drop(idx);
        if !used {
            if let Ok(mut p) = self.peers.write() {
                p.remove(&peer);
            }
        }
    }

    /// When agreement `a` is next due for expiry: its SA's end (an offer never answered: the
    /// temporary lifetime after it), or its previous SA's if sooner.
    fn due_at(&self, a: &Agreement) -> u64 {
        let own = match &a.sa {
            Some(sa) => sa.expires_at,
            None => a.offered_at.saturating_add(self.cfg.temporary_lifetime),
        };
        a.old.as_ref().map_or(own, |o| own.min(o.expires_at))
    }

    /// Moves agreement `call_id`'s expiry entry from `before` (its time before a change;
    /// `None`: it had none) to its time now (`after`; `None`: the agreement is gone).
    fn requeue(&self, call_id: &str, before: Option<u64>, after: Option<&Agreement>) {
        let mut due = self.due.lock().expect("sec-agree expiry lock");
        if let Some(t) = before {
            due.remove(&(t, call_id.to_string()));
        }
        if let Some(a) = after {
            due.insert((self.due_at(a), call_id.to_string()));
        }
    }

    /// The agreements with an SA at the UE address `addr` (from the index).
    fn at(&self, addr: SocketAddr) -> Vec<String> {
        self.by_addr
            .lock()
            .expect("sec-agree index lock")
            .get(&addr)
            .cloned()
            .unwrap_or_default()
    }

    /// Whether a request from `src` may be processed (TS 33.203 §7, TS 24.229 §5.2.2): one
    /// that came to our protected server port (`protected`) must come from the protected
    /// client port of a UE we hold SAs with; a UE with established SAs sends everything but an
    /// (initial, unprotected) REGISTER over them, so an unprotected request from its protected
    /// ports or naming its protected contact (`contact`: the request's Contact host and port)
    /// is refused. Refused requests are to be discarded without an answer: over real IPsec
    /// they would not reach SIP at all (the kernel drops what its SA policies do not admit).
    /// A request over the SAs of a re-authentication, once they are established, retires the
    /// previous SAs (TS 33.203 §7.4).
    pub fn accept_request(
        &self,
        src: SocketAddr,
        protected: bool,
        register: bool,
        contact: Option<SocketAddr>,
    ) -> bool {
        let from = |sa: &SecurityAssociation| sa.ue_ip == src.ip() && sa.ue.port_c == src.port();
        let mut calls = self.by_call.lock().expect("sec-agree lock");
        // only the agreements with an SA at the source (or at the protected contact) can
        // decide: found by the index, not by a scan of every UE's
        let mut keys = self.at(src);
        if let Some(c) = contact.filter(|c| *c != src) {
            keys.extend(self.at(c));
        }
        #[cfg(test)]
        self.examined
            .store(keys.len(), std::sync::atomic::Ordering::Relaxed);
        if protected {
            let mut retire = None;
            let mut ok = false;
            for k in &keys {
                let Some(a) = calls.get(k) else { continue };
                if a.sa.as_ref().is_some_and(from) {
                    ok = true;
                    if a.old.is_some() && a.sa.as_ref().is_some_and(|s| s.established) {
                        retire = Some(k.clone());
                    }
                    break;
                }
                if a.old.as_ref().is_some_and(from) {
                    ok = true;
                    break;
                }
            }
            if let Some(k) = retire {
                let old = calls.get_mut(&k).and_then(|a| {
                    let before = self.due_at(a);
                    let old = a.old.take();
                    self.requeue(&k, Some(before), Some(a));
                    old
                });
                if let Some(old) = old {
                    self.uninstall(&old, &k, &calls);
                }
            }
            return ok;
        }
        if register {
            return true;
        }
        let bypasses = |sa: &SecurityAssociation| {
            sa.established
                && sa.ue_ip == src.ip()
                && (sa.ue.port_c == src.port()
                    || sa.ue.port_s == src.port()
                    || contact == Some(SocketAddr::new(sa.ue_ip, sa.ue.port_s)))
        };
        !keys
            .iter()
            .filter_map(|k| calls.get(k))
            .any(|a| a.sa.as_ref().is_some_and(bypasses) || a.old.as_ref().is_some_and(bypasses))
    }

    /// The settings.
    pub fn config(&self) -> &SecAgreeConfig {
        &self.cfg
    }

    fn spi(&self) -> u32 {
        let mut n = self.next_spi.lock().expect("spi lock");
        let v = *n;
        *n = if v == u32::MAX { 256 } else { v + 1 };
        v
    }

    /// A REGISTER from a UE; `protected`: it arrived on our protected server port (over the SA).
    /// `Ok(None)`: no security agreement in it. `Err(status)`: answer it (494: a `sec-agree`
    /// requirement without a usable Security-Client, or a protected REGISTER whose
    /// Security-Verify or Security-Client is not the agreed one, RFC 3329 §2.3.1 and TS 33.203
    /// §7.2).
    pub fn on_register(
        &self,
        req: &Message<'_>,
        protected: bool,
        now: u64,
    ) -> Result<Option<RegisterEdits>, u16> {
        let requires = [HeaderName::Require, HeaderName::ProxyRequire]
            .iter()
            .any(|&h| {
                req.list(h)
                    .any(|(_, t)| t.trim().eq_ignore_ascii_case(OPTION_TAG))
            });
        let has_client = req.has(HeaderName::SecurityClient);
        let has_verify = req.has(HeaderName::SecurityVerify);
        if !requires && !has_client && !has_verify {
            return Ok(None);
        }
        let client = mechanisms(req, HeaderName::SecurityClient).map_err(|_| 494u16)?;
        let call_id = req.header(HeaderName::CallId).unwrap_or_default();
        if protected && has_verify {
            let verify = mechanisms(req, HeaderName::SecurityVerify).map_err(|_| 494u16)?;
            let (verified, established, same_offer) = {
                let calls = self.by_call.lock().expect("sec-agree lock");
                let Some(a) = calls.get(call_id) else {
                    return Err(494);
                };
                let server = parse_list(split_top(&a.server, b',').map(|(_, e)| e));
                let first = parse_list(split_top(&a.offer.client, b',').map(|(_, e)| e));
                (
                    server.is_ok_and(|s| same_list(&verify, &s)),
                    a.sa.as_ref().is_some_and(|s| s.established),
                    first.is_ok_and(|f| same_list(&client, &f)),
                )
            };
            // RFC 3329 §2.3.1: a Security-Verify that is not the server's list means the
            // agreement was tampered with (a downgrade attempt): the request is refused with 494
            // (and our list, see `supported_mechanisms`). TS 24.229 §5.2.2 has its own wording for
            // the P-CSCF that we could not re-read here (the reference copies reachable from
            // this workspace only open §5.2.1); 494 is our reading of RFC 3329, not checked
            // against that text.
            if !verified {
                return Err(494);
            }
            // the REGISTER answering the challenge repeats the first offer (TS 33.203 §7.2);
            // once the SAs are in use a new offer starts a re-authentication (§7.4)
            if !established && !same_offer {
                return Err(494);
            }
            if established && !same_offer {
                self.offer(&client, call_id, now)?;
            }
        } else if !protected {
            self.offer(&client, call_id, now)?;
        }
        // TS 24.229 §5.2.2.1: Security-Client/-Verify and the sec-agree tags do not go further;
        // the S-CSCF learns from `integrity-protected` whether the REGISTER came over an SA
        let mut e = RegisterEdits::default();
        for h in ["Security-Client", "Security-Verify"] {
            e.remove.push(h.into());
        }
        for h in [HeaderName::Require, HeaderName::ProxyRequire] {
            if req.has(h) {
                e.remove.push(h.as_str().into());
                let all: Vec<&str> = req.headers_of(h).map(|x| x.value()).collect();
                if let Some(rest) = without_sec_agree(&all.join(",")) {
                    e.headers.push((h.as_str().into(), rest));
                }
            }
        }
        if let Some(auth) = req.header(HeaderName::Authorization) {
            let kept: Vec<&str> = split_top(auth, b',')
                .map(|(_, p)| p.trim())
                .filter(|p| {
                    !p.to_ascii_lowercase()
                        .trim_start_matches("digest ")
                        .starts_with("integrity-protected")
                })
                .collect();
            let flag = if protected { "yes" } else { "no" };
            e.remove.push("Authorization".into());
            e.headers.push((
                "Authorization".into(),
                format!("{},integrity-protected=\"{flag}\"", kept.join(",")),
            ));
        }
        Ok(Some(e))
    }

    /// Stores the UE's `ipsec-3gpp` offer for the challenge to come (494 when it has none with
    /// `alg` and both SPIs and ports).
    fn offer(&self, client: &[SecMechanism<'_>], call_id: &str, now: u64) -> Result<(), u16> {
        let options: Vec<(String, String, SaEnd)> = client
            .iter()
            .filter(|m| m.name.eq_ignore_ascii_case(IPSEC_3GPP))
            .filter_map(|m| {
                Some((
                    m.alg?.to_ascii_lowercase(),
                    m.ealg.unwrap_or("null").to_ascii_lowercase(),
                    SaEnd {
                        spi_c: m.spi_c?,
                        spi_s: m.spi_s?,
                        port_c: m.port_c?,
                        port_s: m.port_s?,
                    },
                ))
            })
            .collect();
        if options.is_empty() {
            return Err(494);
        }
        let client = client
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        let offer = Offer { client, options };
        let mut calls = self.by_call.lock().expect("sec-agree lock");
        let before = calls.get(call_id).map(|a| self.due_at(a));
        let a = calls
            .entry(call_id.to_string())
            .or_insert_with(|| Agreement {
                offer: offer.clone(),
                offered_at: now,
                server: String::new(),
                sa: None,
                old: None,
            });
        a.offer = offer;
        a.offered_at = now;
        self.requeue(call_id, before, Some(a));
        Ok(())
    }

    /// The 401 to a REGISTER on its way to the UE at `ue_ip`: the `ck`/`ik` parameters leave
    /// the WWW-Authenticate; when the UE offered `ipsec-3gpp`, the algorithms are picked (ours
    /// by preference among the UE's), SPIs allocated, the temporary SAs installed and our
    /// Security-Server added. `None`: nothing to change.
    pub fn on_challenge(
        &self,
        resp: &Message<'_>,
        ue_ip: IpAddr,
        now: u64,
    ) -> Option<OwnedMessage> {
        let www = resp.header(HeaderName::WwwAuthenticate)?;
        let (clean, ck, ik) = take_keys(www);
        let call_id = resp.header(HeaderName::CallId).unwrap_or_default();
        let mut server = None;
        if let (Some(ck), Some(ik)) = (&ck, &ik) {
            let mut calls = self.by_call.lock().expect("sec-agree lock");
            let mut gone = Vec::new();
            if let Some(a) = calls.get_mut(call_id) {
                server = self.agree(a, call_id, ck, ik, ue_ip, now, &mut gone);
            }
            for sa in &gone {
                self.uninstall(sa, call_id, &calls);
            }
        }
        if ck.is_none() && ik.is_none() && server.is_none() {
            return None;
        }
        let mut e = resp.edit();
        e.set(HeaderName::WwwAuthenticate, clean);
        if let Some(s) = server {
            e.push_back("Security-Server", s);
        }
        e.to_owned_message().ok()
    }

    #[allow(clippy::too_many_arguments)] // the agreement, its keys and what it replaces
    fn agree(
        &self,
        a: &mut Agreement,
        call_id: &str,
        ck: &str,
        ik: &str,
        ue_ip: IpAddr,
        now: u64,
        gone: &mut Vec<SecurityAssociation>,
    ) -> Option<String> {
        let (ck, ik) = (
            ims_auth::encoding::hex_decode(ck).ok()?,
            ims_auth::encoding::hex_decode(ik).ok()?,
        );
        // TS 33.203 §7.1/§7.2: the P-CSCF selects the integrity and encryption algorithms
        // among those the UE offered, and its Security-Server states the choice (one element);
        // we take OUR preference order first (the UE's order and q only break nothing here).
        // Which side's preference wins is our reading: §7.2's text was not readable from this
        // workspace (only the opening of clause 7).
        let (alg, ealg, ue) = self.cfg.integrity.iter().find_map(|i| {
            self.cfg.encryption.iter().find_map(|e| {
                a.offer
                    .options
                    .iter()
                    .find(|(oa, oe, _)| oa == i && oe == e)
                    .cloned()
            })
        })?;
        let pcscf = SaEnd {
            spi_c: self.spi(),
            spi_s: self.spi(),
            port_c: self.cfg.port_c,
            port_s: self.cfg.port_s,
        };
        let sa = SecurityAssociation {
            ue_ip,
            pcscf_ip: self.cfg.ip,
            ue,
            pcscf,
            alg: alg.clone(),
            ealg: ealg.clone(),
            ik,
            ck,
            established: false,
            expires_at: now + self.cfg.temporary_lifetime,
        };
        // TS 33.203 §7.4: a re-authentication over established SAs keeps them (they carry the
        // traffic until the new ones do, see `accept_request`); a temporary SA never confirmed
        // (the UE was challenged again) goes
        let before = self.due_at(a);
        match a.sa.take() {
            Some(prev) if prev.established => {
                gone.extend(a.old.replace(prev));
            }
            Some(prev) => gone.push(prev),
            None => {}
        }
        self.install(&sa, call_id);
        let server = SecMechanism {
            name: IPSEC_3GPP,
            q: Some(100),
            alg: Some(&alg),
            ealg: Some(&ealg),
            spi_c: Some(pcscf.spi_c),
            spi_s: Some(pcscf.spi_s),
            port_c: Some(pcscf.port_c),
            port_s: Some(pcscf.port_s),
            prot: Some("esp"),
            mode: Some("trans"),
            other: Vec::new(),
        }
        .to_string();
        a.server = server.clone();
        a.sa = Some(sa);
        self.requeue(call_id, Some(before), Some(a));
        Some(server)
    }

    /// The 200 to a REGISTER of Call-ID `call_id`, listing the registered contacts as
    /// (`host:port`, expiry): the SAs become the registration's and end with the UE's contact
    /// (the one at the UE's IP and protected server port, else the latest); none left — the UE
    /// de-registered — removes them.
    pub fn on_registered(&self, call_id: &str, contacts: &[(String, u64)]) {
        let mut calls = self.by_call.lock().expect("sec-agree lock");
        let before = calls.get(call_id).map(|a| self.due_at(a));
        let Some(sa) = calls.get_mut(call_id).and_then(|a| a.sa.as_mut()) else {
            return;
        };
        let own = format!("{}:{}", sa.ue_ip, sa.ue.port_s);
        let until = contacts
            .iter()
            .find(|(k, _)| *k == own)
            .or_else(|| contacts.iter().max_by_key(|(_, e)| *e))
            .map(|(_, e)| *e);
        match until {
            Some(t) => {
                sa.established = true;
                sa.expires_at = t;
                self.requeue(call_id, before, calls.get(call_id));
            }
            None => {
                if let Some(a) = calls.remove(call_id) {
                    self.requeue(call_id, before, None);
                    for sa in [a.sa, a.old].into_iter().flatten() {
                        self.uninstall(&sa, call_id, &calls);
                    }
                }
            }
        }
    }

    /// Removes the SAs of the UE at `ue_ip` (its registration was ended by the network).
    pub fn forget_ue(&self, ue_ip: IpAddr, ue_port_s: Option<u16>) {
        let mut calls = self.by_call.lock().expect("sec-agree lock");
        let of_ue = |a: &Agreement| {
            a.sa.as_ref()
                .is_some_and(|sa| sa.ue_ip == ue_ip && ue_port_s.is_none_or(|p| p == sa.ue.port_s))
        };
        let gone: Vec<String> = match ue_port_s {
            // the contact's port: its agreements from the index
            Some(p) => self
                .at(SocketAddr::new(ue_ip, p))
                .into_iter()
                .filter(|k| calls.get(k).is_some_and(of_ue))
                .collect(),
            None => calls
                .iter()
                .filter(|(_, a)| of_ue(a))
                .map(|(k, _)| k.clone())
                .collect(),
        };
        for k in gone {
            if let Some(a) = calls.remove(&k) {
                self.requeue(&k, Some(self.due_at(&a)), None);
                for sa in [a.sa, a.old].into_iter().flatten() {
                    self.uninstall(&sa, &k, &calls);
                }
            }
        }
    }

    /// Removes agreements and SAs past their time (temporary ones never confirmed, and those of
    /// registrations that expired). Returns how many went.
    pub fn expire(&self, now: u64) -> usize {
        let mut calls = self.by_call.lock().expect("sec-agree lock");
        // only the agreements queued up to now: by time, not a sweep of every agreement
        let come: Vec<String> = {
            let mut due = self.due.lock().expect("sec-agree expiry lock");
            let later = due.split_off(&(now.saturating_add(1), String::new()));
            let come = std::mem::replace(&mut *due, later);
            let mut keys: Vec<String> = come.into_iter().map(|(_, k)| k).collect();
            keys.sort_unstable();
            keys.dedup();
            keys
        };
        #[cfg(test)]
        self.expiry_examined
            .store(come.len(), std::sync::atomic::Ordering::Relaxed);
        let mut ended: Vec<(String, SecurityAssociation)> = Vec::new();
        let mut gone = 0;
        for k in come {
            // gone already (de-registered, forgotten): its entry was stale
            let Some(a) = calls.get_mut(&k) else { continue };
            if a.old.as_ref().is_some_and(|o| o.expires_at <= now) {
                ended.extend(a.old.take().map(|o| (k.clone(), o)));
            }
            let keep = match &a.sa {
                Some(sa) => sa.expires_at > now,
                None => a.offered_at.saturating_add(self.cfg.temporary_lifetime) > now,
            };
            if keep {
                // only its previous SAs ended: due again at its own time
                self.requeue(&k, None, Some(a));
            } else {
                ended.extend(a.sa.take().map(|o| (k.clone(), o)));
                ended.extend(a.old.take().map(|o| (k.clone(), o)));
                calls.remove(&k);
                gone += 1;
            }
        }
        for (k, sa) in &ended {
            self.uninstall(sa, k, &calls);
        }
        gone
    }

    /// The SAs now held (temporary and established).
    pub fn associations(&self) -> Vec<SecurityAssociation> {
        let calls = self.by_call.lock().expect("sec-agree lock");
        calls
            .values()
            .flat_map(|a| [a.sa.clone(), a.old.clone()])
            .flatten()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    /// `without_integrity_protected` as it was before the `-` search (the reference).
    fn without_integrity_protected_split(auth: &str) -> Option<String> {
        let is_ip = |p: &str| {
            let mut b = p.trim().as_bytes();
            while b.len() >= 7 && b[..7].eq_ignore_ascii_case(b"digest ") {
                b = &b[7..];
            }
            b.len() >= 19 && b[..19].eq_ignore_ascii_case(b"integrity-protected")
        };
        if !split_top(auth, b',').any(|(_, p)| is_ip(p)) {
            return None;
        }
        let mut out = String::with_capacity(auth.len() + 7);
        for p in split_top(auth, b',')
            .map(|(_, p)| p.trim())
            .filter(|p| !is_ip(p))
        {
            if !out.is_empty() {
                out.push(',');
            }
            out.push_str(p);
        }
        if !out
            .as_bytes()
            .get(..6)
            .is_some_and(|b| b.eq_ignore_ascii_case(b"digest"))
        {
            out.insert_str(0, "Digest ");
        }
        Some(out)
    }

    #[test]
    fn integrity_protected_is_taken_out_as_the_split_took_it_out() {
        for auth in [
            "Digest username=\"u\", integrity-protected=\"yes\", response=\"r\"",
            "Digest username=\"u\"",
            "DIGEST Integrity-Protected=yes, username=\"u\"",
            "digest username=\"u\" ,  INTEGRITY-PROTECTED=\"tls-yes\"",
            "Digest digest integrity-protected=no",
            "Digest x=\"integrity-protected=yes\", y=1",
            "Digest x=\"a,integrity-protected=yes\", y=1",
            "Digest integrity-protectedx=1",
            "Digest integrity- protected=1",
            "Digest integrity_protected=1",
            "integrity-protected",
            "-protected",
            "integrity-",
            "Digest username=\"001010000000001@ims.example.org\", realm=\"ims.example.org\", nonce=\"a-b\", uri=\"sip:ims.example.org\", response=\"\"",
            "",
        ] {
            assert_eq!(
                without_integrity_protected(auth),
                without_integrity_protected_split(auth),
                "{auth:?}"
            );
        }
    }

    proptest::proptest! {
        #[test]
        fn integrity_protected_is_taken_out_as_the_split_took_it_out_on_any_text(
            auth in "(Digest |digest )?((integrity-protected|INTEGRITY-Protected|x|\"|,| |=|-|yes|a\\\\)){0,12}"
        ) {
            proptest::prop_assert_eq!(
                without_integrity_protected(&auth),
                without_integrity_protected_split(&auth)
            );
        }
    }

    const UE: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 7));
    const P: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));

    // TS 24.228 §6.2 (registration flow 2-01a): the UE's Security-Client and the P-CSCF's
    // Security-Server of the signalling flows
    const FLOW_CLIENT: &str =
        "ipsec-3gpp; alg=hmac-sha-1-96; spi-c=23456789; spi-s=12345678; port-c=2468; port-s=1357";
    const FLOW_SERVER: &str = "ipsec-3gpp; q=0.1; alg=hmac-sha-1-96; spi-c=98765432; spi-s=87654321; port-c=8642; port-s=7531";

    #[test]
    fn the_signalling_flow_headers_parse_and_re_encode() {
        let c = parse_mechanism(FLOW_CLIENT).unwrap();
        assert_eq!(c.name, IPSEC_3GPP);
        assert_eq!(c.alg, Some("hmac-sha-1-96"));
        assert_eq!(c.ealg, None);
        assert_eq!(
            (c.spi_c, c.spi_s, c.port_c, c.port_s),
            (Some(23456789), Some(12345678), Some(2468), Some(1357))
        );
        let s = parse_mechanism(FLOW_SERVER).unwrap();
        assert_eq!(s.q, Some(100));
        assert_eq!(
            (s.spi_c, s.spi_s, s.port_c, s.port_s),
            (Some(98765432), Some(87654321), Some(8642), Some(7531))
        );
        // the Security-Verify the UE sends echoes the Security-Server: however it is spaced
        let again = s.to_string();
        assert_eq!(
            again,
            "ipsec-3gpp;q=0.1;alg=hmac-sha-1-96;spi-c=98765432;spi-s=87654321;port-c=8642;port-s=7531"
        );
        assert!(parse_mechanism(&again).unwrap().same_as(&s));
        assert!(!parse_mechanism(&again.replace("87654321", "87654322"))
            .unwrap()
            .same_as(&s));
        assert!(parse_mechanism("IPSEC-3GPP;Q=0.1;ALG=HMAC-SHA-1-96;SPI-C=98765432;spi-s=87654321;port-c=8642;port-s=7531")
            .unwrap()
            .same_as(&s));
    }

    #[test]
    fn rfc3329_lists_over_several_lines_with_digest_parameters() {
        // RFC 3329 §2.2 grammar: several mechanisms per line and several lines; q-values;
        // digest-verify is a quoted string that may hold separators
        let raw = "OPTIONS sip:p.example.com SIP/2.0\r\nVia: SIP/2.0/UDP a.example.com;branch=z9hG4bK1\r\nMax-Forwards: 70\r\nFrom: <sip:a@example.com>;tag=1\r\nTo: <sip:p.example.com>\r\nCall-ID: c1\r\nCSeq: 1 OPTIONS\r\nSecurity-Verify: ipsec-ike;q=0.1, tls;q=0.2\r\nSecurity-Verify: digest;d-alg=md5;d-qop=auth-int;d-ver=\"0123,4567;89ab\";q=1\r\nContent-Length: 0\r\n\r\n";
        let m = ims_sip::parse_datagram(raw.as_bytes()).unwrap();
        let l = mechanisms(&m, HeaderName::SecurityVerify).unwrap();
        assert_eq!(l.len(), 3);
        assert_eq!((l[0].name, l[0].q), ("ipsec-ike", Some(100)));
        assert_eq!((l[1].name, l[1].q), ("tls", Some(200)));
        assert_eq!(l[2].name, "digest");
        assert_eq!(l[2].q, Some(1000));
        assert_eq!(
            l[2].other,
            vec![
                ("d-alg", Some("md5")),
                ("d-qop", Some("auth-int")),
                ("d-ver", Some("\"0123,4567;89ab\""))
            ]
        );
        assert_eq!(
            l[2].to_string(),
            "digest;q=1;d-alg=md5;d-qop=auth-int;d-ver=\"0123,4567;89ab\""
        );
        let again: Vec<String> = l.iter().map(ToString::to_string).collect();
        let re = parse_list(again.iter().map(String::as_str)).unwrap();
        assert!(same_list(&l, &re));
        assert!(!same_list(&l, &re[..2]));
    }

    #[test]
    fn malformed_mechanisms_are_refused() {
        for bad in [
            "",
            ";alg=x",
            "ipsec 3gpp",
            "ipsec-3gpp;spi-c=x",
            "ipsec-3gpp;spi-c=4294967296",
            "ipsec-3gpp;port-s=65536",
            "ipsec-3gpp;q=2",
            "ipsec-3gpp;q=0.1234",
            "ipsec-3gpp;alg",
            "ipsec-3gpp;alg=",
            "ipsec-3gpp;d-ver=\"open",
            "ipsec-3gpp;=1",
            // a value that is neither a token, a host nor one whole quoted string: a stray
            // quote would swallow what follows once the mechanism is written back (found by
            // the nf_values fuzz target: `palg=…;alg=x"…` re-parsed as one parameter)
            "ipsec-3gp;palg=x;alg=hmac+rname=\"\0@alm=\"ims",
            "ipsec-3gpp;alg=a\"b",
            "ipsec-3gpp;alg=\"a\"b\"",
            "ipsec-3gpp;d-ver=\"ab\\\"",
            "ipsec-3gpp;d-ver=\"a\u{1}b\"",
            "ipsec-3gpp;alg=a b",
            "ipsec-3gpp;alg=a\0",
        ] {
            assert!(parse_mechanism(bad).is_err(), "{bad:?}");
        }
        for good in [
            "digest;d-ver=\"0123,4567;89ab\"",
            "digest;d-ver=\"a\\\"b\"",
            "ipsec-3gpp;x-host=[2001:db8::1]",
            "ipsec-3gpp;x-host=10.0.0.1:5060",
        ] {
            let m = parse_mechanism(good).unwrap_or_else(|e| panic!("{good:?}: {e}"));
            let written = m.to_string();
            let again = parse_mechanism(&written).expect("written back, it parses");
            assert!(again.same_as(&m), "{good:?}");
        }
        let many = vec!["tls"; MAX_MECHANISMS + 1];
        assert_eq!(parse_list(many), Err(SecAgreeError::TooLong));
        let long = format!("tls{}", ";x".repeat(MAX_PARAMS + 1));
        assert_eq!(parse_mechanism(&long), Err(SecAgreeError::TooLong));
    }

    #[test]
    fn ck_and_ik_leave_the_challenge_and_sec_agree_leaves_the_option_tags() {
        let (c, ck, ik) = take_keys(
            "Digest realm=\"ims.example.org\",nonce=\"A34Cm+Fva37UYWpGNB34JP\",algorithm=AKAv1-MD5,qop=\"auth,auth-int\",ck=\"00112233445566778899aabbccddeeff\",ik=\"ffeeddccbbaa99887766554433221100\"",
        );
        assert_eq!(
            c,
            "Digest realm=\"ims.example.org\",nonce=\"A34Cm+Fva37UYWpGNB34JP\",algorithm=AKAv1-MD5,qop=\"auth,auth-int\""
        );
        assert_eq!(ck.as_deref(), Some("00112233445566778899aabbccddeeff"));
        assert_eq!(ik.as_deref(), Some("ffeeddccbbaa99887766554433221100"));
        assert_eq!(take_keys("Digest realm=\"r\"").1, None);
        assert_eq!(without_sec_agree("sec-agree"), None);
        assert_eq!(
            without_sec_agree("precondition, Sec-Agree,100rel").as_deref(),
            Some("precondition, 100rel")
        );
    }

    fn register(extra: &str) -> String {
        format!(
            "REGISTER sip:ims.example.org SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.7:5060;branch=z9hG4bK1\r\nMax-Forwards: 70\r\nFrom: <sip:u@ims.example.org>;tag=1\r\nTo: <sip:u@ims.example.org>\r\nCall-ID: reg-1\r\nCSeq: 1 REGISTER\r\nContact: <sip:u@10.0.0.7:1357>\r\n{extra}Content-Length: 0\r\n\r\n"
        )
    }

    fn challenge() -> String {
        "SIP/2.0 401 Unauthorized\r\nVia: SIP/2.0/UDP 10.0.0.7:5060;branch=z9hG4bK1;received=10.0.0.7\r\nFrom: <sip:u@ims.example.org>;tag=1\r\nTo: <sip:u@ims.example.org>;tag=2\r\nCall-ID: reg-1\r\nCSeq: 1 REGISTER\r\nWWW-Authenticate: Digest realm=\"ims.example.org\",nonce=\"bm9uY2U=\",algorithm=AKAv1-MD5,ck=\"000102030405060708090a0b0c0d0e0f\",ik=\"101112131415161718191a1b1c1d1e1f\"\r\nContent-Length: 0\r\n\r\n".into()
    }

    fn engine() -> (SecAgree, Arc<RecordingInstaller>) {
        let rec = Arc::new(RecordingInstaller::default());
        let cfg = SecAgreeConfig::new(P, 5066, 5064);
        (SecAgree::new(cfg, rec.clone()), rec)
    }

    #[test]
    fn the_pcscf_agrees_by_preference_and_checks_security_verify() {
        let (sa, rec) = engine();
        // the UE offers MD5 without encryption first, then SHA-1 with AES: ours come first
        let offer = "ipsec-3gpp;alg=hmac-md5-96;spi-c=1111;spi-s=2222;port-c=2468;port-s=1357, ipsec-3gpp;alg=hmac-sha-1-96;ealg=aes-cbc;spi-c=1111;spi-s=2222;port-c=2468;port-s=1357";
        let r = register(&format!(
            "Require: sec-agree\r\nProxy-Require: sec-agree, foo\r\nSecurity-Client: {offer}\r\nAuthorization: Digest username=\"u\",realm=\"ims.example.org\",nonce=\"\",uri=\"sip:ims.example.org\",response=\"\"\r\n"
        ));
        let m = ims_sip::parse_datagram(r.as_bytes()).unwrap();
        let e = sa.on_register(&m, false, 1000).unwrap().unwrap();
        for h in [
            "Security-Client",
            "Security-Verify",
            "Require",
            "Proxy-Require",
            "Authorization",
        ] {
            assert!(e.remove.iter().any(|x| x == h), "{h} removed: {e:?}");
        }
        assert!(e.headers.contains(&("Proxy-Require".into(), "foo".into())));
        assert!(!e.headers.iter().any(|(n, _)| n == "Require"));
        let auth = &e
            .headers
            .iter()
            .find(|(n, _)| n == "Authorization")
            .unwrap()
            .1;
        assert!(auth.ends_with(",integrity-protected=\"no\""), "{auth}");

        let c = challenge();
        let resp = ims_sip::parse_datagram(c.as_bytes()).unwrap();
        let out = sa.on_challenge(&resp, UE, 1000).expect("rewritten");
        let out = out.as_message();
        let www = out.header(HeaderName::WwwAuthenticate).unwrap();
        assert!(!www.contains("ck=") && !www.contains("ik="), "{www}");
        let server = mechanisms(&out, HeaderName::SecurityServer).unwrap();
        assert_eq!(server.len(), 1);
        let s = &server[0];
        assert_eq!((s.alg, s.ealg), (Some("hmac-sha-1-96"), Some("aes-cbc")));
        assert_eq!((s.port_c, s.port_s), (Some(5066), Some(5064)));
        let ops = rec.operations();
        let [SaOperation::Install(t)] = ops.as_slice() else {
            panic!("{ops:?}")
        };
        assert_eq!(t.ue_ip, UE);
        assert_eq!(t.ik, (0x10..0x20).collect::<Vec<u8>>());
        assert_eq!(t.ck, (0..0x10).collect::<Vec<u8>>());
        assert_eq!(t.expires_at, 1240, "temporary SA: 240 s");
        assert_eq!(
            (t.ue.port_c, t.ue.port_s, t.ue.spi_c, t.ue.spi_s),
            (2468, 1357, 1111, 2222)
        );
        let verify = s.to_string();

        // protected REGISTER: a wrong Security-Verify, then a changed Security-Client → 494
        let prot = |verify: &str, client: &str| {
            register(&format!(
                "Security-Client: {client}\r\nSecurity-Verify: {verify}\r\nRequire: sec-agree\r\nAuthorization: Digest username=\"u\",nonce=\"bm9uY2U=\",response=\"x\"\r\n"
            ))
        };
        let bad = prot(&verify.replace("aes-cbc", "null"), offer);
        assert_eq!(
            sa.on_register(
                &ims_sip::parse_datagram(bad.as_bytes()).unwrap(),
                true,
                1001
            ),
            Err(494)
        );
        let bad = prot(&verify, &offer.replace("2222", "2223"));
        assert_eq!(
            sa.on_register(
                &ims_sip::parse_datagram(bad.as_bytes()).unwrap(),
                true,
                1001
            ),
            Err(494)
        );
        let good = prot(&verify, offer);
        let e = sa
            .on_register(
                &ims_sip::parse_datagram(good.as_bytes()).unwrap(),
                true,
                1001,
            )
            .unwrap()
            .unwrap();
        let auth = &e
            .headers
            .iter()
            .find(|(n, _)| n == "Authorization")
            .unwrap()
            .1;
        assert!(auth.ends_with(",integrity-protected=\"yes\""), "{auth}");
        // a protected REGISTER must not claim an agreement never made
        let other = good.replace("Call-ID: reg-1", "Call-ID: reg-2");
        assert_eq!(
            sa.on_register(
                &ims_sip::parse_datagram(other.as_bytes()).unwrap(),
                true,
                1001
            ),
            Err(494)
        );

        // the 200: the SAs live as long as the UE's contact; expiry removes them
        sa.on_registered("reg-1", &[("10.0.0.7:1357".into(), 4600)]);
        let a = sa.associations();
        assert!(a[0].established);
        assert_eq!(a[0].expires_at, 4600);
        assert_eq!(sa.expire(4599), 0);
        assert_eq!(sa.expire(4600), 1);
        assert!(sa.associations().is_empty());
        assert!(matches!(
            rec.operations().last(),
            Some(SaOperation::Remove(_))
        ));
    }

    #[test]
    fn without_a_usable_offer_the_answer_is_494_and_plain_registers_pass() {
        let (sa, _) = engine();
        let plain = register("");
        assert_eq!(
            sa.on_register(
                &ims_sip::parse_datagram(plain.as_bytes()).unwrap(),
                false,
                1
            ),
            Ok(None)
        );
        for extra in [
            "Require: sec-agree\r\n",
            "Proxy-Require: sec-agree\r\nSecurity-Client: tls\r\n",
            "Security-Client: ipsec-3gpp;alg=hmac-sha-1-96;spi-c=1\r\n",
            "Security-Client: ipsec-3gpp;alg=hmac-sha-1-96;spi-c=x\r\n",
        ] {
            let r = register(extra);
            assert_eq!(
                sa.on_register(&ims_sip::parse_datagram(r.as_bytes()).unwrap(), false, 1),
                Err(494),
                "{extra}"
            );
        }
        // an offer of algorithms we do not run: no Security-Server, keys still removed
        let r = register("Security-Client: ipsec-3gpp;alg=hmac-sha-256-128;spi-c=1;spi-s=2;port-c=3;port-s=4\r\n");
        assert!(sa
            .on_register(&ims_sip::parse_datagram(r.as_bytes()).unwrap(), false, 1)
            .is_ok());
        let c = challenge();
        let out = sa
            .on_challenge(&ims_sip::parse_datagram(c.as_bytes()).unwrap(), UE, 1)
            .unwrap();
        assert!(!out.as_message().has(HeaderName::SecurityServer));
        assert!(!out
            .as_message()
            .header(HeaderName::WwwAuthenticate)
            .unwrap()
            .contains("ck="));
        // an offer never challenged goes after the temporary lifetime
        assert_eq!(sa.expire(240), 0);
        assert_eq!(sa.expire(241), 1);
    }

    /// Registers the UE of `register()` (offer ports c=2468, s=1357) through the whole
    /// agreement; returns our Security-Server.
    fn agreed(sa: &SecAgree, offer: &str, now: u64) -> String {
        let r = register(&format!(
            "Require: sec-agree\r\nSecurity-Client: {offer}\r\nAuthorization: Digest username=\"u\",nonce=\"\"\r\n"
        ));
        sa.on_register(&ims_sip::parse_datagram(r.as_bytes()).unwrap(), false, now)
            .unwrap();
        let c = challenge();
        let out = sa
            .on_challenge(&ims_sip::parse_datagram(c.as_bytes()).unwrap(), UE, now)
            .unwrap();
        let server =
            mechanisms(&out.as_message(), HeaderName::SecurityServer).unwrap()[0].to_string();
        let p = register(&format!(
            "Require: sec-agree\r\nSecurity-Client: {offer}\r\nSecurity-Verify: {server}\r\nAuthorization: Digest username=\"u\",nonce=\"bm9uY2U=\",response=\"x\"\r\n"
        ));
        sa.on_register(&ims_sip::parse_datagram(p.as_bytes()).unwrap(), true, now)
            .unwrap();
        sa.on_registered("reg-1", &[("10.0.0.7:1357".into(), now + 3600)]);
        server
    }

    #[test]
    fn requests_are_heard_only_over_the_sas_and_requests_to_the_ue_use_them() {
        let (sa, _) = engine();
        let offer = "ipsec-3gpp;alg=hmac-sha-1-96;spi-c=1111;spi-s=2222;port-c=2468;port-s=1357";
        let ue = |port| SocketAddr::new(UE, port);
        // before any agreement: anything is heard (plain UEs, the initial REGISTER)
        assert!(sa.accept_request(ue(2468), false, false, None));
        assert!(sa.protected_peers().read().unwrap().is_empty());
        agreed(&sa, offer, 1000);
        // requests toward the UE go to its protected server port (from our port-c)
        assert!(sa.protected_peers().read().unwrap().contains(&ue(1357)));
        // over the SA: from the UE's port-c to our port-s
        assert!(sa.accept_request(ue(2468), true, false, None));
        // to our port-s from anywhere else: not over the SA
        assert!(!sa.accept_request(ue(9999), true, false, None));
        assert!(!sa.accept_request(SocketAddr::new(P, 2468), true, false, None));
        // unprotected from the UE's protected ports, or naming its protected contact: refused
        assert!(!sa.accept_request(ue(2468), false, false, None));
        assert!(!sa.accept_request(ue(1357), false, false, None));
        assert!(!sa.accept_request(ue(7000), false, false, Some(ue(1357))));
        // ... but an unprotected (initial) REGISTER may always start over
        assert!(sa.accept_request(ue(2468), false, true, None));
        // another UE on the same address, without SAs, is not affected
        assert!(sa.accept_request(ue(7000), false, false, Some(ue(7000))));
        // the SAs end: nothing is sent from port-c any more
        sa.forget_ue(UE, Some(1357));
        assert!(sa.protected_peers().read().unwrap().is_empty());
        assert!(sa.accept_request(ue(2468), false, false, None));
    }

    #[test]
    fn the_sas_of_a_source_are_found_by_index_not_by_a_scan() {
        let (sa, _) = engine();
        let ports = |i: u16| (20_000 + 2 * i, 20_001 + 2 * i);
        // 300 UEs behind one address (a NAT), each with its own ports and registration
        for i in 0..300u16 {
            let (pc, ps) = ports(i);
            let call = format!("Call-ID: reg-{i}");
            let offer = format!(
                "ipsec-3gpp;alg=hmac-sha-1-96;spi-c={};spi-s={};port-c={pc};port-s={ps}",
                10_000 + u32::from(i) * 2,
                10_001 + u32::from(i) * 2
            );
            let r = register(&format!(
                "Require: sec-agree\r\nSecurity-Client: {offer}\r\n"
            ))
            .replace("Call-ID: reg-1", &call);
            sa.on_register(&ims_sip::parse_datagram(r.as_bytes()).unwrap(), false, 1)
                .unwrap();
            let c = challenge().replace("Call-ID: reg-1", &call);
            sa.on_challenge(&ims_sip::parse_datagram(c.as_bytes()).unwrap(), UE, 1)
                .unwrap();
            sa.on_registered(&format!("reg-{i}"), &[(format!("10.0.0.7:{ps}"), 3600)]);
        }
        assert_eq!(sa.associations().len(), 300);
        assert_eq!(sa.protected_peers().read().unwrap().len(), 300);
        let ue = |port| SocketAddr::new(UE, port);
        let seen = || sa.examined.load(std::sync::atomic::Ordering::Relaxed);
        let (pc, ps) = ports(177);
        // over UE 177's SA: its agreement alone is looked at
        assert!(sa.accept_request(ue(pc), true, false, None));
        assert_eq!(seen(), 1);
        // unprotected from its protected server port: refused, again without a scan
        assert!(!sa.accept_request(ue(ps), false, false, None));
        assert_eq!(seen(), 1);
        // naming its protected contact from elsewhere: refused
        assert!(!sa.accept_request(ue(9_999), false, false, Some(ue(ps))));
        assert_eq!(seen(), 1);
        // a port no SA uses: nothing to look at
        assert!(sa.accept_request(ue(9_999), false, false, None));
        assert!(!sa.accept_request(ue(9_999), true, false, None));
        assert_eq!(seen(), 0);
        // the network ends UE 177's registration: its SAs and index entries go, no other's
        sa.forget_ue(UE, Some(ps));
        assert_eq!(sa.associations().len(), 299);
        assert_eq!(sa.protected_peers().read().unwrap().len(), 299);
        assert!(sa.accept_request(ue(ps), false, false, None));
        assert_eq!(seen(), 0);
        let (pc2, _) = ports(178);
        assert!(sa.accept_request(ue(pc2), true, false, None));
        assert_eq!(seen(), 1);
        // expiry empties the index with the agreements
        assert_eq!(sa.expire(3600), 299);
        assert!(sa.by_addr.lock().unwrap().is_empty());
        assert!(sa.protected_peers().read().unwrap().is_empty());
    }

    #[test]
    fn expiry_looks_only_at_the_agreements_due() {
        let (sa, _) = engine();
        let examined = || {
            sa.expiry_examined
                .load(std::sync::atomic::Ordering::Relaxed)
        };
        let due_len = || sa.due.lock().unwrap().len();
        // 300 registrations until 3600 + i, one offer never challenged (temporary: 1 + 240)
        let offer_of = |i: u32| {
            format!(
                "ipsec-3gpp;alg=hmac-sha-1-96;spi-c={};spi-s={};port-c={};port-s={}",
                10_000 + 2 * i,
                10_001 + 2 * i,
                20_000 + 2 * i,
                20_001 + 2 * i
            )
        };
        let reg = |i: u32, challenge_it: bool| {
            let call = format!("Call-ID: reg-{i}");
            let r = register(&format!(
                "Require: sec-agree\r\nSecurity-Client: {}\r\n",
                offer_of(i)
            ))
            .replace("Call-ID: reg-1", &call);
            sa.on_register(&ims_sip::parse_datagram(r.as_bytes()).unwrap(), false, 1)
                .unwrap();
            if challenge_it {
                let c = challenge().replace("Call-ID: reg-1", &call);
                sa.on_challenge(&ims_sip::parse_datagram(c.as_bytes()).unwrap(), UE, 1)
                    .unwrap();
                sa.on_registered(
                    &format!("reg-{i}"),
                    &[(format!("10.0.0.7:{}", 20_001 + 2 * i), 3600 + u64::from(i))],
                );
            }
        };
        for i in 0..300 {
            reg(i, true);
        }
        reg(300, false);
        // one queue entry per agreement, at its time
        assert_eq!(due_len(), 301);
        assert_eq!(sa.expire(100), 0);
        assert_eq!(examined(), 0, "nothing due at 100: no agreement looked at");
        // the temporary lifetime of the offer never challenged: it alone goes
        assert_eq!(sa.expire(241), 1);
        assert_eq!(examined(), 1);
        assert_eq!(sa.associations().len(), 300);
        // a re-registration moves its agreement's time: UE 5 to 9000
        sa.on_registered("reg-5", &[("10.0.0.7:20011".into(), 9000)]);
        assert_eq!(due_len(), 300);
        assert_eq!(sa.expire(3600), 1, "UE 0 ends at 3600");
        assert_eq!(examined(), 1);
        assert_eq!(sa.expire(3609), 8, "UEs 1-4 and 6-9, not 5");
        assert_eq!(examined(), 8);
        // the network removes UE 20: its entry goes with it
        sa.forget_ue(UE, Some(20_041));
        assert_eq!(due_len(), 290);
        assert_eq!(sa.expire(5000), 289);
        assert_eq!(examined(), 289);
        assert_eq!(sa.associations().len(), 1);
        assert_eq!(sa.expire(9000), 1);
        assert_eq!(due_len(), 0);
        assert!(sa.by_addr.lock().unwrap().is_empty());
        assert!(sa.protected_peers().read().unwrap().is_empty());
    }

    #[test]
    fn a_reauthentication_keeps_the_old_sas_until_the_new_ones_carry_a_request() {
        let (sa, rec) = engine();
        let offer = "ipsec-3gpp;alg=hmac-sha-1-96;spi-c=1111;spi-s=2222;port-c=2468;port-s=1357";
        let first = agreed(&sa, offer, 1000);
        // re-authentication: a protected REGISTER over the SAs with a new offer (new SPIs and
        // ports), challenged again by the S-CSCF
        let offer2 = "ipsec-3gpp;alg=hmac-sha-1-96;spi-c=3333;spi-s=4444;port-c=2470;port-s=1359";
        let r = register(&format!(
            "Require: sec-agree\r\nSecurity-Client: {offer2}\r\nSecurity-Verify: {first}\r\nAuthorization: Digest username=\"u\",nonce=\"bm9uY2U=\",response=\"x\"\r\n"
        ));
        sa.on_register(&ims_sip::parse_datagram(r.as_bytes()).unwrap(), true, 2000)
            .unwrap();
        let c = challenge();
        let out = sa
            .on_challenge(&ims_sip::parse_datagram(c.as_bytes()).unwrap(), UE, 2000)
            .unwrap();
        let second =
            mechanisms(&out.as_message(), HeaderName::SecurityServer).unwrap()[0].to_string();
        assert_ne!(first, second, "new SPIs");
        // both pairs are held: the old established, the new temporary
        let held = sa.associations();
        assert_eq!(held.len(), 2, "{held:?}");
        assert!(held.iter().any(|a| a.established && a.ue.port_c == 2468));
        assert!(held.iter().any(|a| !a.established && a.ue.port_c == 2470));
        assert!(!rec
            .operations()
            .iter()
            .any(|o| matches!(o, SaOperation::Remove(_))));
        // the old SAs still carry requests meanwhile
        let ue = |port| SocketAddr::new(UE, port);
        assert!(sa.accept_request(ue(2468), true, false, None));
        // the REGISTER over the new SAs and its 200: the new pair is established, the old kept
        let p = register(&format!(
            "Require: sec-agree\r\nSecurity-Client: {offer2}\r\nSecurity-Verify: {second}\r\nAuthorization: Digest username=\"u\",nonce=\"bm9uY2U=\",response=\"y\"\r\n"
        ));
        sa.on_register(&ims_sip::parse_datagram(p.as_bytes()).unwrap(), true, 2001)
            .unwrap();
        assert!(sa.accept_request(ue(2470), true, true, None));
        sa.on_registered("reg-1", &[("10.0.0.7:1359".into(), 5600)]);
        assert_eq!(sa.associations().len(), 2);
        {
            let peers = sa.protected_peers();
            let peers = peers.read().unwrap();
            assert!(peers.contains(&ue(1357)) && peers.contains(&ue(1359)));
        }
        // the first request over the new, established SAs retires the old ones
        assert!(sa.accept_request(ue(2470), true, false, None));
        let held = sa.associations();
        assert_eq!(held.len(), 1, "{held:?}");
        assert_eq!(held[0].ue.port_c, 2470);
        let removed: Vec<_> = rec
            .operations()
            .into_iter()
            .filter_map(|o| match o {
                SaOperation::Remove(a) => Some(a),
                _ => None,
            })
            .collect();
        assert_eq!(removed.len(), 1);
        assert_eq!(removed[0].ue.port_c, 2468);
        assert!(!sa.protected_peers().read().unwrap().contains(&ue(1357)));
        // the old pair is heard no more
        assert!(!sa.accept_request(ue(2468), true, false, None));
    }

    #[test]
    fn a_494_lists_what_we_support_in_our_order() {
        let (sa, _) = engine();
        let list = sa.supported_mechanisms();
        let m = parse_list(split_top(&list, b',').map(|(_, e)| e)).unwrap();
        assert_eq!(m.len(), 6, "{list}");
        assert!(m
            .iter()
            .all(|x| x.name == IPSEC_3GPP && x.prot == Some("esp") && x.mode == Some("trans")));
        assert_eq!(
            (m[0].alg, m[0].ealg),
            (Some("hmac-sha-1-96"), Some("aes-cbc"))
        );
        assert_eq!((m[5].alg, m[5].ealg), (Some("hmac-md5-96"), Some("null")));
        let q: Vec<u16> = m.iter().map(|x| x.q.unwrap()).collect();
        assert!(q.windows(2).all(|w| w[0] > w[1]), "{q:?}");
        // a UE-written integrity-protected never passes the P-CSCF
        assert_eq!(
            without_integrity_protected(
                "Digest username=\"u\", integrity-protected=\"yes\", response=\"r\""
            )
            .as_deref(),
            Some("Digest username=\"u\",response=\"r\"")
        );
        assert_eq!(without_integrity_protected("Digest username=\"u\""), None);
        // the parameter is found whatever the case, also as the first one after the scheme
        assert_eq!(
            without_integrity_protected("DIGEST Integrity-Protected=yes, username=\"u\"")
                .as_deref(),
            Some("Digest username=\"u\"")
        );
        assert_eq!(
            without_integrity_protected("digest username=\"u\" ,  INTEGRITY-PROTECTED=\"tls-yes\"")
                .as_deref(),
            Some("digest username=\"u\"")
        );
    }

    #[test]
    fn a_deregistration_and_a_network_removal_end_the_sas() {
        let (sa, rec) = engine();
        let offer = "ipsec-3gpp;alg=hmac-md5-96;spi-c=7;spi-s=8;port-c=2468;port-s=1357";
        let r = register(&format!("Security-Client: {offer}\r\n"));
        sa.on_register(&ims_sip::parse_datagram(r.as_bytes()).unwrap(), false, 1)
            .unwrap();
        let c = challenge();
        sa.on_challenge(&ims_sip::parse_datagram(c.as_bytes()).unwrap(), UE, 1)
            .unwrap();
        assert_eq!(sa.associations()[0].alg, "hmac-md5-96");
        assert_eq!(sa.associations()[0].ealg, "null");
        sa.on_registered("reg-1", &[("10.0.0.7:1357".into(), 601)]);
        sa.on_registered("reg-1", &[]);
        assert!(sa.associations().is_empty());
        assert_eq!(rec.operations().len(), 2);
        // again, then the network removes the UE (reg event)
        sa.on_register(&ims_sip::parse_datagram(r.as_bytes()).unwrap(), false, 2)
            .unwrap();
        sa.on_challenge(&ims_sip::parse_datagram(c.as_bytes()).unwrap(), UE, 2)
            .unwrap();
        sa.forget_ue(UE, Some(9999));
        assert_eq!(
            sa.associations().len(),
            1,
            "another contact of that address"
        );
        sa.forget_ue(UE, Some(1357));
        assert!(sa.associations().is_empty());
    }

    #[test]
    fn xfrm_command_lines_for_the_four_sas() {
        let sa = SecurityAssociation {
            ue_ip: UE,
            pcscf_ip: P,
            ue: SaEnd {
                spi_c: 1111,
                spi_s: 2222,
                port_c: 2468,
                port_s: 1357,
            },
            pcscf: SaEnd {
                spi_c: 3333,
                spi_s: 4444,
                port_c: 5066,
                port_s: 5064,
            },
            alg: "hmac-sha-1-96".into(),
            ealg: "aes-cbc".into(),
            ik: vec![0xab; 16],
            ck: vec![0xcd; 16],
            established: false,
            expires_at: 0,
        };
        let add = xfrm_commands(&sa, true);
        assert_eq!(add.len(), 8);
        let line = |v: &Vec<String>| v.join(" ");
        let first = line(&add[0]);
        // UE client → our protected server port, under our spi-s; IK extended to 160 bits
        assert!(
            first.starts_with(
                "xfrm state add src 10.0.0.7 dst 10.0.0.1 proto esp spi 4444 mode transport"
            ),
            "{first}"
        );
        assert!(
            first.contains(&format!(
                "auth-trunc hmac(sha1) 0x{}00000000 96",
                "ab".repeat(16)
            )),
            "{first}"
        );
        assert!(
            first.contains(&format!("enc cbc(aes) 0x{}", "cd".repeat(16))),
            "{first}"
        );
        assert!(first.ends_with("sport 2468 dport 5064"), "{first}");
        assert!(line(&add[1]).contains("dir in"));
        for (i, (spi, sport, dport)) in [
            (4444, 2468, 5064),
            (1111, 5064, 2468),
            (2222, 5066, 1357),
            (3333, 1357, 5066),
        ]
        .into_iter()
        .enumerate()
        {
            let s = line(&add[2 * i]);
            assert!(s.contains(&format!(" spi {spi} ")), "{s}");
            assert!(s.ends_with(&format!("sport {sport} dport {dport}")), "{s}");
        }
        let del = xfrm_commands(&sa, false);
        assert_eq!(del.len(), 8);
        assert!(line(&del[0])
            .starts_with("xfrm state delete src 10.0.0.7 dst 10.0.0.1 proto esp spi 4444"));
        let md5 = SecurityAssociation {
            alg: "hmac-md5-96".into(),
            ealg: "null".into(),
            ..sa
        };
        let s = line(&xfrm_commands(&md5, true)[0]);
        assert!(
            s.contains(&format!("hmac(md5) 0x{} 96", "ab".repeat(16))),
            "{s}"
        );
        assert!(s.contains("enc ecb(cipher_null) \"\""), "{s}");
    }

    #[test]
    fn the_pcscf_takes_ck_ik_out_of_every_401_it_relays() {
        let p = crate::cscf::Pcscf::new(crate::cscf::PcscfConfig {
            path_uri: "sip:term@10.0.0.1:5060".into(),
            icscf: "sip:10.0.0.1:5062".into(),
            visited_network_id: "ims.example.org".into(),
            host: "pcscf.ims.example.org".into(),
        });
        let c = challenge();
        let out = p
            .filter_response(&ims_sip::parse_datagram(c.as_bytes()).unwrap(), 1)
            .unwrap();
        let www = out
            .as_message()
            .header(HeaderName::WwwAuthenticate)
            .unwrap()
            .to_string();
        assert_eq!(
            www,
            "Digest realm=\"ims.example.org\",nonce=\"bm9uY2U=\",algorithm=AKAv1-MD5"
        );
        assert!(!out.as_message().has(HeaderName::SecurityServer));
        let ok = c.replace("401 Unauthorized", "200 OK");
        assert!(p
            .filter_response(&ims_sip::parse_datagram(ok.as_bytes()).unwrap(), 1)
            .is_none());
    }

    proptest::proptest! {
        #[test]
        fn display_then_parse_is_the_same_mechanism(
            alg in "[a-z0-9-]{1,16}", ealg in proptest::option::of("[a-z0-9-]{1,12}"),
            spi_c in proptest::option::of(proptest::num::u32::ANY),
            spi_s in proptest::option::of(proptest::num::u32::ANY),
            port_c in proptest::option::of(proptest::num::u16::ANY),
            q in proptest::option::of(0u16..=1000),
        ) {
            let m = SecMechanism {
                name: IPSEC_3GPP, q, alg: Some(&alg), ealg: ealg.as_deref(), spi_c, spi_s, port_c,
                port_s: Some(5064), prot: Some("esp"), mode: Some("trans"), other: Vec::new(),
            };
            let s = m.to_string();
            let back = parse_mechanism(&s).unwrap();
            proptest::prop_assert!(back.same_as(&m), "{} vs {:?}", s, back);
        }

        #[test]
        fn parsing_never_panics(s in "\\PC{0,80}") {
            let _ = parse_mechanism(&s);
            let _ = take_keys(&s);
        }

        /// `take_keys` answers as it did with a lowercased copy of each name, a copy of each
        /// value and the kept parameters joined by `format!` (the oracle below), on any text
        /// and on challenges with keys in any case, quoting and spacing.
        #[test]
        fn keys_are_taken_as_with_copies(
            s in "\\PC{0,60}",
            parts in proptest::collection::vec(
                "(ck|CK|Ik|ik|nonce|realm| ck |)( ?= ?)?(\"[a-f0-9, ]{0,6}\"|[a-f0-9]{0,4})?",
                0..6
            ),
            scheme in "(Digest|digest|Digest  |)",
        ) {
            let challenge = format!("{scheme} {}", parts.join(","));
            for text in [s.as_str(), challenge.as_str()] {
                proptest::prop_assert_eq!(take_keys(text), take_keys_with_copies(text));
            }
        }
    }

    fn take_keys_with_copies(challenge: &str) -> (String, Option<String>, Option<String>) {
        let c = challenge.trim();
        let (scheme, params) = match c.find(char::is_whitespace) {
            Some(i) => (&c[..i], c[i..].trim_start()),
            None => (c, ""),
        };
        let (mut ck, mut ik) = (None, None);
        let mut kept = Vec::new();
        for (_, p) in split_top(params, b',') {
            let p = p.trim();
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            let v = v.trim().trim_matches('"').to_string();
            match k.trim().to_ascii_lowercase().as_str() {
                "ck" => ck = Some(v),
                "ik" => ik = Some(v),
                _ if !p.is_empty() => kept.push(p),
                _ => {}
            }
        }
        (format!("{scheme} {}", kept.join(",")), ck, ik)
    }
}
