//! Via (RFC 3261 §20.42, §18.2.1; rport RFC 3581; IPv6 received RFC 5118 §4.5).

use super::{whole, TypedHeader};
use crate::error::{ErrorKind, ParseError};
use crate::params::Params;
use crate::scan::{Cursor, Span};
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
    /// The value of the first `branch` parameter, noted while the parameters are checked (the
    /// transaction layer asks for it several times per message).
    branch: Option<&'a str>,
}

impl<'a> TypedHeader<'a> for Via<'a> {
    const NAME: HeaderName = HeaderName::Via;
    const LIST: bool = true;
    fn parse(s: &'a str) -> Result<Self, ParseError> {
        whole(s, |c| {
            let (protocol_name, protocol_version, transport, host, port) = head(c)?;
            let mut branch = None;
            let params = Params::parse_header_with(c, |n, v| {
                let ok = via_param_ok(n, v);
                if ok && branch.is_none() && is_branch(n) {
                    branch = Some(v);
                }
                ok
            })?;
            let v = Via {
                protocol_name,
                protocol_version,
                transport,
                host,
                port,
                params,
                branch: branch.flatten(),
            };
            Ok(v)
        })
    }
}

/// `sent-protocol LWS sent-by` at the cursor: protocol name, version, transport, host, port.
#[allow(clippy::type_complexity)]
fn head<'a>(
    c: &mut Cursor<'a>,
) -> Result<(&'a str, &'a str, &'a str, Host<'a>, Option<u16>), ParseError> {
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
    Ok((protocol_name, protocol_version, transport, host, port))
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
    /// The sent-by host and port of a Via value `s`, read without its parameters: for every
    /// `s` that [`Via::parse`](TypedHeader::parse) accepts, its `(host(), port())`; `None` when
    /// the part before the parameters does not parse. A proxy looking for its own Via among all
    /// of a request's (RFC 3261 §16.3 step 4) parses the parameters of its own ones only.
    ///
    /// ```
    /// use ims_sip::headers::Via;
    /// use ims_sip::Host;
    /// let (host, port) = Via::sent_by_of("SIP/2.0/UDP pcscf.example.com:5060;branch=z9hG4bK1").unwrap();
    /// assert_eq!((host, port), (Host::Domain("pcscf.example.com"), Some(5060)));
    /// assert!(Via::sent_by_of("SIP/2.0 pcscf.example.com").is_none());
    /// ```
    pub fn sent_by_of(s: &'a str) -> Option<(Host<'a>, Option<u16>)> {
        let mut c = Cursor::new(s);
        c.skip_lws();
        let (_, _, _, host, port) = head(&mut c).ok()?;
        // what `parse` reads next: parameters after optional LWS, or the end
        c.skip_lws();
        matches!(c.peek(), None | Some(b';')).then_some((host, port))
    }
    /// The branch parameter.
    pub fn branch(&self) -> Option<&'a str> {
        self.branch
    }

    /// This Via as offsets into `base`, the text every part of it borrows from (the message's
    /// header section); `None` if a part lies outside it.
    pub(crate) fn spans_in(self, base: &str) -> Option<ViaSpans> {
        Some(ViaSpans {
            protocol_name: Span::of(base, self.protocol_name)?,
            protocol_version: Span::of(base, self.protocol_version)?,
            transport: Span::of(base, self.transport)?,
            host: match self.host {
                Host::Domain(d) => HostSpan::Domain(Span::of(base, d)?),
                Host::Ipv4(a) => HostSpan::Ipv4(a),
                Host::Ipv6(s) => HostSpan::Ipv6(Span::of(base, s)?),
            },
            port: self.port,
            params: if self.params.is_uri() {
                return None;
            } else {
                Span::of(base, self.params.as_str())?
            },
            branch: match self.branch {
                Some(b) => Some(Span::of(base, b)?),
                None => None,
            },
        })
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

/// `name` is `branch` (case-insensitive).
fn is_branch(name: &str) -> bool {
    name.len() == 6 && name.eq_ignore_ascii_case("branch")
}

/// A [`Via`] as offsets into the text it was parsed from (see [`Via::spans_in`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct ViaSpans {
    protocol_name: Span,
    protocol_version: Span,
    transport: Span,
    host: HostSpan,
    port: Option<u16>,
    params: Span,
    branch: Option<Span>,
}

#[derive(Debug, Clone, Copy)]
enum HostSpan {
    Domain(Span),
    Ipv4(std::net::Ipv4Addr),
    Ipv6(Span),
}

impl ViaSpans {
    /// The spans of the same Via moved `by` bytes (its line copied to another offset).
    pub(crate) fn shifted(self, by: i64) -> Option<ViaSpans> {
        Some(ViaSpans {
            protocol_name: self.protocol_name.shifted(by)?,
            protocol_version: self.protocol_version.shifted(by)?,
            transport: self.transport.shifted(by)?,
            host: match self.host {
                HostSpan::Domain(d) => HostSpan::Domain(d.shifted(by)?),
                HostSpan::Ipv4(a) => HostSpan::Ipv4(a),
                HostSpan::Ipv6(s) => HostSpan::Ipv6(s.shifted(by)?),
            },
            port: self.port,
            params: self.params.shifted(by)?,
            branch: match self.branch {
                Some(b) => Some(b.shifted(by)?),
                None => None,
            },
        })
    }
    /// The Via again, its parts taken from `base` (the text [`Via::spans_in`] was given); `None`
    /// when an offset does not fit `base`.
    pub(crate) fn get<'a>(&self, base: &'a str) -> Option<Via<'a>> {
        Some(Via {
            protocol_name: self.protocol_name.get(base)?,
            protocol_version: self.protocol_version.get(base)?,
            transport: self.transport.get(base)?,
            host: match self.host {
                HostSpan::Domain(d) => Host::Domain(d.get(base)?),
                HostSpan::Ipv4(a) => Host::Ipv4(a),
                HostSpan::Ipv6(s) => Host::Ipv6(s.get(base)?),
            },
            port: self.port,
            params: Params::header_raw(self.params.get(base)?),
            branch: match self.branch {
                Some(b) => Some(b.get(base)?),
                None => None,
            },
        })
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

#[cfg(test)]
mod tests {
    use super::{TypedHeader, Via};

    proptest::proptest! {
        /// The sent-by read without the parameters is the parse's wherever the parse accepts
        /// the value, and the branch noted while checking the parameters is the first one.
        #[test]
        fn sent_by_and_branch_are_the_parse(
            s in proptest::string::string_regex(
                " ?SIP ?/ ?2\\.0 ?/ ?(UDP|tls|X) ?(h\\.example\\.com|10\\.0\\.0\\.[0-9]{1,3}|\\[::1\\]|[a-z:.0-9]{0,6})( ?: ?[0-9]{0,6})? ?(;[ a-zA-Z0-9=.]{0,10}){0,3}[ ,x]?"
            ).unwrap(),
        ) {
            if let Ok(v) = Via::parse(&s) {
                proptest::prop_assert_eq!(Via::sent_by_of(&s), Some((v.host(), v.port())));
                proptest::prop_assert_eq!(v.branch(), v.params().get("branch").flatten());
            }
        }
    }

    #[test]
    fn sent_by_needs_what_the_parse_needs_before_the_parameters() {
        let v = "SIP/2.0/UDP 10.0.0.1:5060 ;branch=z9hG4bK1;Branch=z9hG4bK2";
        assert_eq!(Via::parse(v).unwrap().branch(), Some("z9hG4bK1"));
        assert!(Via::sent_by_of(v).is_some());
        for bad in [
            "SIP/2.0/UDP",
            "SIP/2.0/UDP 10.0.0.1:x",
            "SIP/2.0/UDP a b",
            "SIP/2.0/UDP a:99999",
        ] {
            assert!(Via::sent_by_of(bad).is_none(), "{bad}");
            assert!(Via::parse(bad).is_err(), "{bad}");
        }
    }
}
