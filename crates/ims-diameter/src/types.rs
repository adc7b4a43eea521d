//! Derived data types of RFC 6733 §4.3: Address, Time, DiameterURI and IPFilterRule.

use crate::error::ErrorKind;
use core::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Address (RFC 6733 §4.3.1): a 2-octet AddressType (IANA "Address Family Numbers") and the
/// address in that family's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Address<'a> {
    /// Family 1: 4 octets.
    Ipv4(Ipv4Addr),
    /// Family 2: 16 octets.
    Ipv6(Ipv6Addr),
    /// Family 8: E.164 digits as ASCII.
    E164(&'a str),
    /// Any other family, octets as received.
    Other {
        /// AddressType.
        family: u16,
        /// The address octets.
        value: &'a [u8],
    },
}

impl Default for Address<'_> {
    fn default() -> Self {
        Address::Ipv4(Ipv4Addr::UNSPECIFIED)
    }
}

impl<'a> Address<'a> {
    /// IANA address family 1.
    pub const FAMILY_IPV4: u16 = 1;
    /// IANA address family 2.
    pub const FAMILY_IPV6: u16 = 2;
    /// IANA address family 8.
    pub const FAMILY_E164: u16 = 8;

    /// Decodes AVP data: a known family with the wrong length is 5014, E.164 that is not digits 5004.
    pub fn decode(data: &'a [u8]) -> Result<Address<'a>, ErrorKind> {
        if data.len() < 2 {
            return Err(ErrorKind::InvalidAvpLength);
        }
        let family = u16::from_be_bytes([data[0], data[1]]);
        let v = &data[2..];
        match family {
            Self::FAMILY_IPV4 => <[u8; 4]>::try_from(v)
                .map(|o| Address::Ipv4(Ipv4Addr::from(o)))
                .map_err(|_| ErrorKind::InvalidAvpLength),
            Self::FAMILY_IPV6 => <[u8; 16]>::try_from(v)
                .map(|o| Address::Ipv6(Ipv6Addr::from(o)))
                .map_err(|_| ErrorKind::InvalidAvpLength),
            Self::FAMILY_E164 => {
                if v.is_empty() || !v.iter().all(|b| b.is_ascii_digit()) {
                    return Err(ErrorKind::InvalidAvpValue);
                }
                crate::avp::text(v)
                    .map(Address::E164)
                    .ok_or(ErrorKind::InvalidAvpValue)
            }
            family => Ok(Address::Other { family, value: v }),
        }
    }

    /// The AddressType.
    pub const fn family(&self) -> u16 {
        match self {
            Address::Ipv4(_) => Self::FAMILY_IPV4,
            Address::Ipv6(_) => Self::FAMILY_IPV6,
            Address::E164(_) => Self::FAMILY_E164,
            Address::Other { family, .. } => *family,
        }
    }

    /// The IP address, for families 1 and 2.
    pub const fn ip(&self) -> Option<IpAddr> {
        match self {
            Address::Ipv4(a) => Some(IpAddr::V4(*a)),
            Address::Ipv6(a) => Some(IpAddr::V6(*a)),
            _ => None,
        }
    }

    /// Length of the AVP data.
    pub fn encoded_len(&self) -> usize {
        2 + match self {
            Address::Ipv4(_) => 4,
            Address::Ipv6(_) => 16,
            Address::E164(s) => s.len(),
            Address::Other { value, .. } => value.len(),
        }
    }

    /// Appends the AVP data.
    pub fn write_to(&self, out: &mut impl bytes::BufMut) {
        out.put_u16(self.family());
        match self {
            Address::Ipv4(a) => out.put_slice(&a.octets()),
            Address::Ipv6(a) => out.put_slice(&a.octets()),
            Address::E164(s) => out.put_slice(s.as_bytes()),
            Address::Other { value, .. } => out.put_slice(value),
        }
    }
}

impl From<IpAddr> for Address<'_> {
    fn from(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(a) => Address::Ipv4(a),
            IpAddr::V6(a) => Address::Ipv6(a),
        }
    }
}

impl fmt::Display for Address<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Address::Ipv4(a) => a.fmt(f),
            Address::Ipv6(a) => a.fmt(f),
            Address::E164(s) => f.write_str(s),
            Address::Other { family, value } => {
                write!(f, "family {family}: ")?;
                value.iter().try_for_each(|b| write!(f, "{b:02x}"))
            }
        }
    }
}

/// Seconds between the NTP epoch (1900-01-01) and the Unix epoch (1970-01-01).
const NTP_UNIX_OFFSET: i64 = 2_208_988_800;

/// Time (RFC 6733 §4.3.1): the 32-bit NTP seconds field. Values with the high bit clear belong to
/// the era after 7 February 2036 06:28:16 UTC (RFC 5905 era 1), as the RFC prescribes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Time(pub u32);

impl Time {
    /// Seconds since the Unix epoch (negative before 1970).
    pub const fn to_unix(self) -> i64 {
        let ntp = if self.0 & 0x8000_0000 != 0 {
            self.0 as i64
        } else {
            self.0 as i64 + (1i64 << 32)
        };
        ntp - NTP_UNIX_OFFSET
    }

    /// From seconds since the Unix epoch; `None` outside 1968-01-20 .. 2104-02-26 (the span the
    /// era rule can express).
    pub const fn from_unix(secs: i64) -> Option<Time> {
        let ntp = secs + NTP_UNIX_OFFSET;
        if ntp >= 0x8000_0000 && ntp < 0x8000_0000 + (1i64 << 32) {
            Some(Time(ntp as u32))
        } else {
            None
        }
    }

    /// As a `SystemTime` (the caller supplies clocks; this only converts).
    pub fn to_system_time(self) -> std::time::SystemTime {
        let s = self.to_unix();
        if s >= 0 {
            std::time::UNIX_EPOCH + std::time::Duration::from_secs(s as u64)
        } else {
            std::time::UNIX_EPOCH - std::time::Duration::from_secs(s.unsigned_abs())
        }
    }
}

/// Transport of a DiameterURI (RFC 6733 §4.3.1 `transport`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UriTransport {
    /// `tcp`
    Tcp,
    /// `sctp`
    Sctp,
    /// `udp`
    Udp,
}

/// Protocol of a DiameterURI (RFC 6733 §4.3.1 `protocol`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UriProtocol {
    /// `diameter`
    Diameter,
    /// `radius`
    Radius,
    /// `tacacs+`
    TacacsPlus,
}

/// DiameterURI (RFC 6733 §4.3.1): `"aaa://" | "aaas://" FQDN [":" port] [";transport=" t]
/// [";protocol=" p]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DiameterUri<'a> {
    /// `aaas` (TLS/DTLS) rather than `aaa`.
    pub secure: bool,
    /// The FQDN (or IP literal, brackets kept for IPv6).
    pub host: &'a str,
    /// The port, when written.
    pub port: Option<u16>,
    /// The transport parameter, when written.
    pub transport: Option<UriTransport>,
    /// The protocol parameter, when written.
    pub protocol: Option<UriProtocol>,
}

impl<'a> DiameterUri<'a> {
    /// Parses the text; errors name the element that failed.
    pub fn parse(s: &'a str) -> Result<DiameterUri<'a>, &'static str> {
        let (secure, rest) = if let Some(r) = strip_prefix_ci(s, "aaas://") {
            (true, r)
        } else if let Some(r) = strip_prefix_ci(s, "aaa://") {
            (false, r)
        } else {
            return Err("aaa:// or aaas://");
        };
        let (hostport, params) = match rest.find(';') {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (rest, ""),
        };
        let (host, port) = if let Some(h) = hostport.strip_prefix('[') {
            let end = h.find(']').ok_or("]")?;
            let host = &hostport[..end + 2];
            match &h[end + 1..] {
                "" => (host, None),
                p => (host, Some(p.strip_prefix(':').ok_or("port")?)),
            }
        } else {
            match hostport.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (hostport, None),
            }
        };
        if host.is_empty()
            || !host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._[]:".contains(&b))
        {
            return Err("FQDN");
        }
        let port = match port {
            Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => {
                Some(p.parse::<u16>().map_err(|_| "port")?)
            }
            Some(_) => return Err("port"),
            None => None,
        };
        let mut uri = DiameterUri {
            secure,
            host,
            port,
            transport: None,
            protocol: None,
        };
        if !params.is_empty() {
            for p in params.split(';') {
                let (k, v) = p.split_once('=').ok_or("parameter")?;
                if k.eq_ignore_ascii_case("transport") && uri.transport.is_none() {
                    uri.transport = Some(match v.to_ascii_lowercase().as_str() {
                        "tcp" => UriTransport::Tcp,
                        "sctp" => UriTransport::Sctp,
                        "udp" => UriTransport::Udp,
                        _ => return Err("transport"),
                    });
                } else if k.eq_ignore_ascii_case("protocol") && uri.protocol.is_none() {
                    uri.protocol = Some(match v.to_ascii_lowercase().as_str() {
                        "diameter" => UriProtocol::Diameter,
                        "radius" => UriProtocol::Radius,
                        "tacacs+" => UriProtocol::TacacsPlus,
                        _ => return Err("protocol"),
                    });
                } else {
                    return Err("transport or protocol parameter");
                }
            }
        }
        Ok(uri)
    }

    /// The port, or the default: 3868 for `aaa`, 5658 for `aaas` (RFC 6733 §4.3.1).
    pub fn port_or_default(&self) -> u16 {
        self.port.unwrap_or(if self.secure { 5658 } else { 3868 })
    }
}

fn strip_prefix_ci<'s>(s: &'s str, p: &str) -> Option<&'s str> {
    (s.len() >= p.len() && s.as_bytes()[..p.len()].eq_ignore_ascii_case(p.as_bytes()))
        .then(|| &s[p.len()..])
}

impl fmt::Display for DiameterUri<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.secure { "aaas://" } else { "aaa://" })?;
        f.write_str(self.host)?;
        if let Some(p) = self.port {
            write!(f, ":{p}")?;
        }
        if let Some(t) = self.transport {
            f.write_str(match t {
                UriTransport::Tcp => ";transport=tcp",
                UriTransport::Sctp => ";transport=sctp",
                UriTransport::Udp => ";transport=udp",
            })?;
        }
        if let Some(p) = self.protocol {
            f.write_str(match p {
                UriProtocol::Diameter => ";protocol=diameter",
                UriProtocol::Radius => ";protocol=radius",
                UriProtocol::TacacsPlus => ";protocol=tacacs+",
            })?;
        }
        Ok(())
    }
}

/// IPFilterRule action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FilterAction {
    /// `permit`
    Permit,
    /// `deny`
    Deny,
}

/// IPFilterRule direction: `in` is from the terminal, `out` is to the terminal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FilterDirection {
    /// `in`
    In,
    /// `out`
    Out,
}

/// The address part of an IPFilterRule endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FilterAddress {
    /// `any`
    Any,
    /// `assigned`: the address(es) assigned to the terminal.
    Assigned,
    /// `ipno` or `ipno/bits`.
    Net {
        /// The address.
        addr: IpAddr,
        /// The prefix length, when written.
        prefix: Option<u8>,
    },
}

/// A port or port range `a-b` of an IPFilterRule endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PortRange {
    /// First port.
    pub from: u16,
    /// Last port (equal to `from` for a single port).
    pub to: u16,
}

/// One side of an IPFilterRule: `[!] addr [ports]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FilterEndpoint {
    /// `!` before the address: match every address except this one.
    pub negated: bool,
    /// The address.
    pub address: FilterAddress,
    /// Ports, empty for none.
    pub ports: Vec<PortRange>,
}

/// IPFilterRule (RFC 6733 §4.3.1): `action dir proto from src to dst [options]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IpFilterRule<'a> {
    /// permit or deny.
    pub action: FilterAction,
    /// in or out.
    pub direction: FilterDirection,
    /// IP protocol number, `None` for `ip` (any protocol).
    pub protocol: Option<u8>,
    /// The source.
    pub src: FilterEndpoint,
    /// The destination.
    pub dst: FilterEndpoint,
    /// Options (`frag`, `ipoptions spec`, `tcpoptions spec`, `established`, `setup`,
    /// `tcpflags spec`, `icmptypes types`), as written.
    pub options: Vec<&'a str>,
}

impl<'a> IpFilterRule<'a> {
    /// Parses the rule text.
    pub fn parse(s: &'a str) -> Result<IpFilterRule<'a>, &'static str> {
        let mut t = s.split_ascii_whitespace().peekable();
        let action = match t.next() {
            Some("permit") => FilterAction::Permit,
            Some("deny") => FilterAction::Deny,
            _ => return Err("action (permit / deny)"),
        };
        let direction = match t.next() {
            Some("in") => FilterDirection::In,
            Some("out") => FilterDirection::Out,
            _ => return Err("dir (in / out)"),
        };
        let protocol = match t.next() {
            Some("ip") => None,
            Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => {
                Some(p.parse::<u8>().map_err(|_| "proto")?)
            }
            _ => return Err("proto"),
        };
        if t.next() != Some("from") {
            return Err("from");
        }
        let src = endpoint(&mut t)?;
        if t.next() != Some("to") {
            return Err("to");
        }
        let dst = endpoint(&mut t)?;
        let mut options = Vec::new();
        while let Some(o) = t.next() {
            match o {
                "frag" | "established" | "setup" => options.push(o),
                "ipoptions" | "tcpoptions" | "tcpflags" | "icmptypes" => {
                    let start = o.as_ptr() as usize - s.as_ptr() as usize;
                    let arg = t.next().ok_or("option argument")?;
                    let end = arg.as_ptr() as usize - s.as_ptr() as usize + arg.len();
                    options.push(&s[start..end]);
                }
                _ => return Err("option"),
            }
        }
        Ok(IpFilterRule {
            action,
            direction,
            protocol,
            src,
            dst,
            options,
        })
    }
}

fn endpoint<'s>(
    t: &mut std::iter::Peekable<impl Iterator<Item = &'s str>>,
) -> Result<FilterEndpoint, &'static str> {
    let mut tok = t.next().ok_or("address")?;
    let mut negated = false;
    if tok == "!" {
        negated = true;
        tok = t.next().ok_or("address")?;
    } else if let Some(r) = tok.strip_prefix('!') {
        negated = true;
        tok = r;
    }
    let address = match tok {
        "any" => FilterAddress::Any,
        "assigned" => FilterAddress::Assigned,
        _ => {
            let (a, p) = match tok.split_once('/') {
                Some((a, p)) => (a, Some(p)),
                None => (tok, None),
            };
            let addr: IpAddr = a.parse().map_err(|_| "ipno")?;
            let max = if addr.is_ipv4() { 32 } else { 128 };
            let prefix = match p {
                Some(p) => {
                    let n: u8 = p.parse().map_err(|_| "bits")?;
                    if n > max {
                        return Err("bits");
                    }
                    Some(n)
                }
                None => None,
            };
            FilterAddress::Net { addr, prefix }
        }
    };
    let mut ports = Vec::new();
    if let Some(p) = t.peek() {
        if p.as_bytes().first().is_some_and(u8::is_ascii_digit) {
            for r in p.split(',') {
                let (a, b) = r.split_once('-').unwrap_or((r, r));
                let from = a.parse().map_err(|_| "port")?;
                let to = b.parse().map_err(|_| "port")?;
                if to < from {
                    return Err("port range");
                }
                ports.push(PortRange { from, to });
            }
            t.next();
        }
    }
    Ok(FilterEndpoint {
        negated,
        address,
        ports,
    })
}

impl fmt::Display for FilterEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.negated {
            f.write_str("!")?;
        }
        match self.address {
            FilterAddress::Any => f.write_str("any")?,
            FilterAddress::Assigned => f.write_str("assigned")?,
            FilterAddress::Net { addr, prefix } => {
                write!(f, "{addr}")?;
                if let Some(p) = prefix {
                    write!(f, "/{p}")?;
                }
            }
        }
        for (i, p) in self.ports.iter().enumerate() {
            f.write_str(if i == 0 { " " } else { "," })?;
            if p.from == p.to {
                write!(f, "{}", p.from)?;
            } else {
                write!(f, "{}-{}", p.from, p.to)?;
            }
        }
        Ok(())
    }
}

impl fmt::Display for IpFilterRule<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self.action {
            FilterAction::Permit => "permit",
            FilterAction::Deny => "deny",
        })?;
        f.write_str(match self.direction {
            FilterDirection::In => " in ",
            FilterDirection::Out => " out ",
        })?;
        match self.protocol {
            None => f.write_str("ip")?,
            Some(p) => write!(f, "{p}")?,
        }
        write!(f, " from {} to {}", self.src, self.dst)?;
        for o in &self.options {
            write!(f, " {o}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_eras() {
        // RFC 6733 §4.3.1: 2036-02-07 06:28:16 UTC is where the NTP seconds wrap
        assert_eq!(Time(0).to_unix(), 2_085_978_496);
        assert_eq!(Time(0x8000_0000).to_unix(), 0x8000_0000 - 2_208_988_800_i64);
        // 2023-11-14 22:13:20 UTC
        let t = Time::from_unix(1_700_000_000).unwrap();
        assert_eq!(t.0, 1_700_000_000 + 2_208_988_800);
        assert_eq!(t.to_unix(), 1_700_000_000);
        let after = Time::from_unix(2_100_000_000).unwrap();
        assert!(after.0 < 0x8000_0000);
        assert_eq!(after.to_unix(), 2_100_000_000);
    }

    #[test]
    fn diameter_uri() {
        let u =
            DiameterUri::parse("aaa://hss.ims.example.org:3868;transport=tcp;protocol=diameter")
                .unwrap();
        assert_eq!(u.host, "hss.ims.example.org");
        assert_eq!(u.port, Some(3868));
        assert_eq!(u.transport, Some(UriTransport::Tcp));
        assert_eq!(u.protocol, Some(UriProtocol::Diameter));
        assert_eq!(
            u.to_string(),
            "aaa://hss.ims.example.org:3868;transport=tcp;protocol=diameter"
        );
        let s = DiameterUri::parse("aaas://[2001:db8::1]").unwrap();
        assert!(s.secure);
        assert_eq!(s.port_or_default(), 5658);
        assert!(DiameterUri::parse("http://x").is_err());
        assert!(DiameterUri::parse("aaa://h:99999").is_err());
        assert!(DiameterUri::parse("aaa://h;transport=foo").is_err());
    }

    #[test]
    fn ip_filter_rule() {
        let s = "permit out 17 from 10.0.0.1 40000 to 10.0.0.2 50000";
        let r = IpFilterRule::parse(s).unwrap();
        assert_eq!(r.action, FilterAction::Permit);
        assert_eq!(r.direction, FilterDirection::Out);
        assert_eq!(r.protocol, Some(17));
        assert_eq!(
            r.dst.ports,
            vec![PortRange {
                from: 50000,
                to: 50000
            }]
        );
        assert_eq!(r.to_string(), s);
        let s2 = "deny in ip from !192.0.2.0/24 1000-2000,3000 to assigned frag tcpflags syn,!ack";
        let r2 = IpFilterRule::parse(s2).unwrap();
        assert!(r2.src.negated);
        assert_eq!(r2.options, vec!["frag", "tcpflags syn,!ack"]);
        assert_eq!(r2.to_string(), s2);
        assert!(IpFilterRule::parse("permit sideways ip from any to any").is_err());
        assert!(IpFilterRule::parse("permit in 256 from any to any").is_err());
        assert!(IpFilterRule::parse("permit in ip from 10.0.0.1/33 to any").is_err());
    }
}
