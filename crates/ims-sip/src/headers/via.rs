//! Via (RFC 3261 §20.42, §18.2.1; rport RFC 3581; IPv6 received RFC 5118 §4.5).

use super::{whole, TypedHeader};
use crate::error::{ErrorKind, ParseError};
use crate::params::Params;
use crate::scan::Cursor;
use crate::uri::{parse_host_prefix, parse_ipv4, Host};
use crate::HeaderName;
use std::fmt;
use std::net::IpAddr;

/// The magic cookie that marks an RFC 3261 branch (§8.1.1.7).
pub const MAGIC_COOKIE: &str = "z9hG4bK";

/// One via-parm: `sent-protocol LWS sent-by *( SEMI via-params )`.
///
/// ```
/// use ims_sip::headers::{TypedHeader, Via};
/// let v = Via::parse("SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK776;rport").unwrap();
/// assert_eq!(v.transport(), "UDP");
/// assert_eq!(v.port(), Some(5060));
/// assert_eq!(v.branch(), Some("z9hG4bK776"));
/// assert_eq!(v.rport(), Some(None));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Via<'a> {
    protocol_name: &'a str,
    protocol_version: &'a str,
    transport: &'a str,
    host: Host<'a>,
    port: Option<u16>,
    params: Params<'a>,
}

impl<'a> TypedHeader<'a> for Via<'a> {
    const NAME: HeaderName = HeaderName::Via;
    const LIST: bool = true;
    fn parse(s: &'a str) -> Result<Self, ParseError> {
        whole(s, |c| {
            let protocol_name = c.token("protocol-name")?;
            if !c.sep(b'/') {
                return Err(c.err("'/'"));
            }
            let protocol_version = c.token("protocol-version")?;
            if !c.sep(b'/') {
                return Err(c.err("'/'"));
            }
            let transport = c.token("transport")?;
            let before = c.pos;
            c.skip_lws();
            if c.pos == before {
                return Err(c.err("LWS before sent-by"));
            }
            let (host, n) = parse_host_prefix(c.rest()).map_err(|e| ParseError {
                offset: e.offset + c.pos,
                ..e
            })?;
            c.pos += n;
            let mut port = None;
            if c.sep(b':') {
                port = Some(parse_port(c)?);
            }
            let params = Params::parse_header_with(c, via_param_ok)?;
            let v = Via {
                protocol_name,
                protocol_version,
                transport,
                host,
                port,
                params,
            };
            Ok(v)
        })
    }
}

pub(crate) fn parse_port(c: &mut Cursor<'_>) -> Result<u16, ParseError> {
    let d = c.digits();
    if d.is_empty() {
        return Err(c.err("port"));
    }
    if d.len() > 5 {
        return Err(ParseError::new(
            ErrorKind::Overflow("port"),
            c.pos - d.len(),
        ));
    }
    let v: u32 = d.parse().map_err(|_| c.err("port"))?;
    u16::try_from(v).map_err(|_| ParseError::new(ErrorKind::Overflow("port"), c.pos - d.len()))
}

impl<'a> Via<'a> {
    /// `SIP` in `SIP/2.0/UDP`.
    pub fn protocol_name(&self) -> &'a str {
        self.protocol_name
    }
    /// `2.0` in `SIP/2.0/UDP`.
    pub fn protocol_version(&self) -> &'a str {
        self.protocol_version
    }
    /// The transport token as written (`UDP`, `TCP`, `TLS`, `SCTP`, `WS`, or an extension).
    pub fn transport(&self) -> &'a str {
        self.transport
    }
    /// sent-by host.
    pub fn host(&self) -> Host<'a> {
        self.host
    }
    /// sent-by port.
    pub fn port(&self) -> Option<u16> {
        self.port
    }
    /// All via-params.
    pub fn params(&self) -> Params<'a> {
        self.params
    }
    /// The branch parameter.
    pub fn branch(&self) -> Option<&'a str> {
        self.params.get("branch").flatten()
    }
    /// True when the branch starts with the RFC 3261 magic cookie and has more after it
    /// (a bare `z9hG4bK` cannot identify a transaction, RFC 4475 §3.2.1).
    pub fn has_rfc3261_branch(&self) -> bool {
        self.branch()
            .is_some_and(|b| b.len() > MAGIC_COOKIE.len() && b.starts_with(MAGIC_COOKIE))
    }
    /// The received parameter as written (brackets allowed, RFC 5118 §4.5).
    pub fn received(&self) -> Option<&'a str> {
        self.params.get("received").flatten()
    }
    /// The received parameter as an address.
    pub fn received_ip(&self) -> Option<IpAddr> {
        self.received().and_then(parse_received)
    }
    /// rport (RFC 3581): `Some(None)` when present without a value (a request for it),
    /// `Some(Some(port))` when filled in.
    pub fn rport(&self) -> Option<Option<u16>> {
        self.params
            .get("rport")
            .map(|v| v.and_then(|p| p.parse().ok()))
    }
    /// maddr.
    pub fn maddr(&self) -> Option<&'a str> {
        self.params.get("maddr").flatten()
    }
    /// ttl.
    pub fn ttl(&self) -> Option<u8> {
        self.params
            .get("ttl")
            .flatten()
            .and_then(|v| v.parse().ok())
    }
}

/// The value grammar of the via-params RFC 3261 §20.42 and RFC 3581 define.
fn via_param_ok(n: &str, value: Option<&str>) -> bool {
    let digits = |v: &str, max: u32, len: usize| {
        !v.is_empty()
            && v.len() <= len
            && v.bytes().all(|b| b.is_ascii_digit())
            && v.parse::<u32>().is_ok_and(|x| x <= max)
    };
    match n.len() {
        6 if n.eq_ignore_ascii_case("branch") => {
            value.is_some_and(|v| crate::scan::is_token(v.as_bytes()))
        }
        8 if n.eq_ignore_ascii_case("received") => {
            value.is_some_and(|v| parse_received(v).is_some())
        }
        5 if n.eq_ignore_ascii_case("rport") => value.is_none_or(|v| digits(v, 65535, 5)),
        3 if n.eq_ignore_ascii_case("ttl") => value.is_some_and(|v| digits(v, 255, 3)),
        5 if n.eq_ignore_ascii_case("maddr") => value.is_some_and(|v| Host::parse(v).is_ok()),
        _ => true,
    }
}

fn parse_received(v: &str) -> Option<IpAddr> {
    if let Some(a) = parse_ipv4(v) {
        return Some(IpAddr::V4(a));
    }
    let inner = v
        .strip_prefix('[')
        .and_then(|x| x.strip_suffix(']'))
        .unwrap_or(v);
    if crate::uri::is_ipv6(inner) {
        return Host::Ipv6(inner).ip();
    }
    None
}

impl fmt::Display for Via<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{}/{} {}",
            self.protocol_name, self.protocol_version, self.transport, self.host
        )?;
        if let Some(p) = self.port {
            write!(f, ":{p}")?;
        }
        for p in self.params.iter() {
            write!(f, ";{}", p.name)?;
            if let Some(v) = p.value {
                write!(f, "={v}")?;
            }
        }
        Ok(())
    }
}
