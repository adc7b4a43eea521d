//! RFC 3263 server location: which transport, address and port a SIP URI is reached at.
//!
//! The algorithm (§4.1 transport, §4.2 port and address) runs over the three DNS record types it
//! needs, behind the [`Dns`] trait, so it is the same code whether the records come from a
//! [`StaticDns`] table (tests, fixed deployments, `/etc/hosts`-style setups) or from a real
//! resolver.
//!
//! ```
//! use ims_net::sip::resolve::{locate, Naptr, Srv, StaticDns};
//! use ims_txn::Transport;
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let mut dns = StaticDns::default();
//! dns.add_naptr("example.com", Naptr::new(10, 50, "SIP+D2T", "_sip._tcp.example.com"));
//! dns.add_srv("_sip._tcp.example.com", Srv::new(0, 1, 5070, "pcscf.example.com"));
//! dns.add_ip("pcscf.example.com", "192.0.2.10".parse().unwrap());
//! let targets = locate(&dns, "sip:alice@example.com", &[Transport::Udp, Transport::Tcp]).await?;
//! assert_eq!(targets[0].transport, Transport::Tcp);
//! assert_eq!(targets[0].addr, "192.0.2.10:5070".parse().unwrap());
//! # Ok::<(), ims_net::sip::NetError>(()) }).unwrap();
//! ```

use super::NetError;
use ims_sip::{Host, Uri};
use ims_txn::{Remote, Transport};
use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;

#[cfg(feature = "dns")]
mod hickory;
#[cfg(feature = "dns")]
pub use hickory::HickoryDns;

/// A boxed future returned by [`Dns`] lookups.
pub type Lookup<'a, T> = Pin<Box<dyn Future<Output = Vec<T>> + Send + 'a>>;

/// A NAPTR record (RFC 3403 §4.1). RFC 3263 §4.1 uses the `services` field (`SIP+D2U`,
/// `SIP+D2T`, `SIPS+D2T`, ...) of records with flags `S` and looks up the SRV name in
/// `replacement`; ENUM (RFC 6116) uses `flags` `U` (or empty, non-terminal) and `regexp`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Naptr {
    /// Order (lower first).
    pub order: u16,
    /// Preference among equal orders (lower first).
    pub preference: u16,
    /// Flags: `S` (next lookup is SRV), `A` (A/AAAA), `U` (terminal, `regexp` gives a URI),
    /// empty for a non-terminal record (look up NAPTR at `replacement` again).
    pub flags: String,
    /// Service field, e.g. `SIP+D2U`, `E2U+sip`.
    pub services: String,
    /// Substitution expression (RFC 3402 §3.2, `delim ere delim repl delim flags`), empty when
    /// unused.
    pub regexp: String,
    /// The next domain name to look up (the SRV owner name for RFC 3263), `.` when unused.
    pub replacement: String,
}

impl Naptr {
    /// A NAPTR record with flags `S` and no regexp (the only kind RFC 3263 uses).
    pub fn new(order: u16, preference: u16, services: &str, replacement: &str) -> Self {
        Naptr::with_fields(order, preference, "S", services, "", replacement)
    }

    /// A NAPTR record with every field given.
    pub fn with_fields(
        order: u16,
        preference: u16,
        flags: &str,
        services: &str,
        regexp: &str,
        replacement: &str,
    ) -> Self {
        Naptr {
            order,
            preference,
            flags: flags.into(),
            services: services.into(),
            regexp: regexp.into(),
            replacement: replacement.into(),
        }
    }
}

/// An SRV record (RFC 2782): the same record type Diameter peer discovery uses.
pub use ims_diameter::discovery::Srv;

/// The DNS lookups RFC 3263 needs. Names are absolute, without the trailing dot.
pub trait Dns: Send + Sync {
    /// NAPTR records of `name`.
    fn naptr<'a>(&'a self, name: &'a str) -> Lookup<'a, Naptr>;
    /// SRV records of `name` (`_sip._udp.example.com`).
    fn srv<'a>(&'a self, name: &'a str) -> Lookup<'a, Srv>;
    /// A and AAAA records of `name`.
    fn ip<'a>(&'a self, name: &'a str) -> Lookup<'a, IpAddr>;
}

/// A fixed table of records: for tests and for deployments without DNS.
#[derive(Debug, Clone, Default)]
pub struct StaticDns {
    naptr: HashMap<String, Vec<Naptr>>,
    srv: HashMap<String, Vec<Srv>>,
    ip: HashMap<String, Vec<IpAddr>>,
}

impl StaticDns {
    /// Adds a NAPTR record.
    pub fn add_naptr(&mut self, name: &str, r: Naptr) -> &mut Self {
        self.naptr
            .entry(name.to_ascii_lowercase())
            .or_default()
            .push(r);
        self
    }
    /// Adds an SRV record.
    pub fn add_srv(&mut self, name: &str, r: Srv) -> &mut Self {
        self.srv
            .entry(name.to_ascii_lowercase())
            .or_default()
            .push(r);
        self
    }
    /// Adds an A or AAAA record.
    pub fn add_ip(&mut self, name: &str, ip: IpAddr) -> &mut Self {
        self.ip
            .entry(name.to_ascii_lowercase())
            .or_default()
            .push(ip);
        self
    }
}

fn ready<T: Send + 'static>(v: Vec<T>) -> Lookup<'static, T> {
    Box::pin(std::future::ready(v))
}

impl Dns for StaticDns {
    fn naptr<'a>(&'a self, name: &'a str) -> Lookup<'a, Naptr> {
        ready(
            self.naptr
                .get(&name.to_ascii_lowercase())
                .cloned()
                .unwrap_or_default(),
        )
    }
    fn srv<'a>(&'a self, name: &'a str) -> Lookup<'a, Srv> {
        ready(
            self.srv
                .get(&name.to_ascii_lowercase())
                .cloned()
                .unwrap_or_default(),
        )
    }
    fn ip<'a>(&'a self, name: &'a str) -> Lookup<'a, IpAddr> {
        ready(
            self.ip
                .get(&name.to_ascii_lowercase())
                .cloned()
                .unwrap_or_default(),
        )
    }
}

/// One place to try, in order of preference.
pub type Target = Remote;

/// The NAPTR service field and SRV prefix of a transport (RFC 3263 §4.1, RFC 3261 §26.2).
fn service(t: Transport, secure: bool) -> Option<(&'static str, &'static str)> {
    Some(match (t, secure) {
        (Transport::Udp, false) => ("SIP+D2U", "_sip._udp"),
        (Transport::Tcp, false) => ("SIP+D2T", "_sip._tcp"),
        (Transport::Tls, _) => ("SIPS+D2T", "_sips._tcp"),
        (Transport::Sctp, false) => ("SIP+D2S", "_sip._sctp"),
        _ => return None,
    })
}

fn default_port(t: Transport) -> u16 {
    if t == Transport::Tls {
        5061
    } else {
        5060
    }
}

/// Finds where to send a request for `uri` (RFC 3263 §4): the targets in the order they should
/// be tried. `supported` lists the transports the caller can use, in its order of preference when
/// DNS does not decide.
///
/// - transport: the `transport` URI parameter; else UDP (TLS for `sips`) for an IP address or an
///   explicit port; else the NAPTR records the client supports, by order and preference; else the
///   first SRV query (`_sip._udp`, `_sip._tcp`, `_sips._tcp`) that answers; else UDP (TLS).
/// - address and port: an IP address as is (default port 5060/5061); an explicit port with the
///   A/AAAA records of the host; else the SRV records (by priority, and within a priority in the
///   RFC 2782 weighted random order, so load spreads by weight) and their A/AAAA records; else
///   the host's A/AAAA records with the default port.
///
/// The `maddr` parameter, when present, replaces the host (RFC 3261 §18.1.1).
pub async fn locate(
    dns: &dyn Dns,
    uri: &str,
    supported: &[Transport],
) -> Result<Vec<Target>, NetError> {
    locate_with_random(dns, uri, supported, &mut weighted_random()).await
}

/// [`locate`] with the random numbers of the RFC 2782 weighted SRV selection given:
/// `random(n)` returns a number in `0..=n` (the running weight sum of the records left).
pub async fn locate_with_random(
    dns: &dyn Dns,
    uri: &str,
    supported: &[Transport],
    random: &mut (dyn FnMut(u32) -> u32 + Send),
) -> Result<Vec<Target>, NetError> {
    let parsed = Uri::parse(uri).map_err(|_| NetError::BadUri(uri.into()))?;
    let sip = parsed
        .as_sip()
        .ok_or_else(|| NetError::BadUri(uri.into()))?;
    let secure = sip.is_secure();
    let maddr = sip.maddr();
    // the host as text: an IP literal is read from it without writing it (one target, one
    // allocation: the result)
    let host = match (maddr, sip.host()) {
        (Some(m), _) => m.trim_matches(|c| c == '[' || c == ']'),
        (None, Host::Domain(d)) => d,
        (None, Host::Ipv4(_)) => "",
        (None, Host::Ipv6(s)) => s,
    };
    let ip: Option<IpAddr> = match (maddr, sip.host()) {
        (None, Host::Ipv4(a)) => Some(IpAddr::V4(a)),
        _ => host.parse().ok(),
    };
    // as written, a domain lower-cased (IP literals are not looked up)
    let host_text = || match (maddr, sip.host()) {
        (None, Host::Domain(d)) => d.to_ascii_lowercase(),
        _ => host.to_owned(),
    };
    let port = sip.port();
    let param = match sip.transport() {
        Some(t) => Some(Transport::from_token(t).ok_or_else(|| NetError::BadUri(uri.into()))?),
        None => None,
    };
    let usable = |t: Transport| supported.contains(&t) && (!secure || t == Transport::Tls);
    let fallback = if secure {
        Transport::Tls
    } else {
        *supported
            .iter()
            .find(|t| **t == Transport::Udp)
            .or_else(|| supported.first())
            .unwrap_or(&Transport::Udp)
    };

    // §4.1/§4.2 with a numeric host or explicit port: no NAPTR/SRV
    if ip.is_some() || port.is_some() {
        let t = param.unwrap_or(fallback);
        if !usable(t) {
            return Err(NetError::TransportDisabled(t));
        }
        let port = port.unwrap_or(default_port(t));
        if let Some(ip) = ip {
            return Ok(vec![remote(t, ip, port)]);
        }
        let ips = dns.ip(&host_text()).await;
        return nonempty(uri, ips.into_iter().map(|ip| remote(t, ip, port)).collect());
    }
    // a domain (an IP literal returned above)
    let host_text = host_text();
    if let Some(t) = param {
        if !usable(t) {
            return Err(NetError::TransportDisabled(t));
        }
        let (_, prefix) = service(t, secure).ok_or(NetError::TransportDisabled(t))?;
        let targets = srv_targets(dns, &format!("{prefix}.{host_text}"), t, random).await;
        if !targets.is_empty() {
            return Ok(targets);
        }
        return a_targets(dns, uri, &host_text, t).await;
    }

    // §4.1: NAPTR
    let mut naptrs: Vec<(Naptr, Transport)> = dns
        .naptr(&host_text)
        .await
        .into_iter()
        .filter(|n| n.flags.eq_ignore_ascii_case("s"))
        .filter_map(|n| {
            let t = supported.iter().copied().filter(|t| usable(*t)).find(|t| {
                service(*t, secure).is_some_and(|(s, _)| s.eq_ignore_ascii_case(&n.services))
            })?;
            Some((n, t))
        })
        .collect();
    naptrs.sort_by_key(|(n, _)| (n.order, n.preference));
    let mut out = Vec::new();
    for (n, t) in &naptrs {
        out.extend(srv_targets(dns, &n.replacement, *t, random).await);
    }
    if !out.is_empty() {
        return Ok(out);
    }
    // no NAPTR: SRV for each supported transport
    for t in supported.iter().copied().filter(|t| usable(*t)) {
        let Some((_, prefix)) = service(t, secure) else {
            continue;
        };
        out.extend(srv_targets(dns, &format!("{prefix}.{host_text}"), t, random).await);
        if !out.is_empty() {
            return Ok(out);
        }
    }
    // no SRV: A/AAAA, default transport and port
    a_targets(dns, uri, &host_text, fallback).await
}

/// Random numbers for the weighted SRV selection: xorshift seeded from the process's random
/// hasher keys (load spreading, not security).
fn weighted_random() -> impl FnMut(u32) -> u32 + Send {
    use std::hash::{BuildHasher, Hasher};
    let mut state = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish()
        | 1;
    move |n| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % (u64::from(n) + 1)) as u32
    }
}

fn remote(transport: Transport, ip: IpAddr, port: u16) -> Remote {
    Remote {
        transport,
        addr: SocketAddr::new(ip, port),
    }
}

fn nonempty(uri: &str, v: Vec<Target>) -> Result<Vec<Target>, NetError> {
    if v.is_empty() {
        Err(NetError::NotFound(uri.into()))
    } else {
        Ok(v)
    }
}

async fn a_targets(
    dns: &dyn Dns,
    uri: &str,
    host: &str,
    t: Transport,
) -> Result<Vec<Target>, NetError> {
    let ips = dns.ip(host).await;
    nonempty(
        uri,
        ips.into_iter()
            .map(|ip| remote(t, ip, default_port(t)))
            .collect(),
    )
}

async fn srv_targets(
    dns: &dyn Dns,
    name: &str,
    t: Transport,
    random: &mut (dyn FnMut(u32) -> u32 + Send),
) -> Vec<Target> {
    let srvs = dns.srv(name).await;
    let mut out = Vec::new();
    for s in ims_diameter::discovery::order_srv(&srvs, random) {
        for ip in dns.ip(&s.target).await {
            out.push(remote(t, ip, s.port));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run<F: Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime")
            .block_on(f)
    }

    fn table() -> StaticDns {
        let mut d = StaticDns::default();
        // RFC 3263 §4.1 example: TCP preferred over UDP by order
        d.add_naptr(
            "example.com",
            Naptr::new(50, 50, "SIPS+D2T", "_sips._tcp.example.com"),
        )
        .add_naptr(
            "example.com",
            Naptr::new(90, 50, "SIP+D2T", "_sip._tcp.example.com"),
        )
        .add_naptr(
            "example.com",
            Naptr::new(100, 50, "SIP+D2U", "_sip._udp.example.com"),
        )
        .add_srv(
            "_sip._tcp.example.com",
            Srv::new(0, 0, 5062, "b.example.com"),
        )
        .add_srv(
            "_sip._tcp.example.com",
            Srv::new(0, 5, 5063, "a.example.com"),
        )
        .add_srv(
            "_sip._udp.example.com",
            Srv::new(0, 0, 5060, "u.example.com"),
        )
        .add_srv(
            "_sips._tcp.example.com",
            Srv::new(0, 0, 5061, "s.example.com"),
        )
        .add_srv(
            "_sip._udp.srvonly.net",
            Srv::new(1, 0, 5070, "x.srvonly.net"),
        )
        .add_srv(
            "_sip._udp.srvonly.net",
            Srv::new(0, 0, 5071, "y.srvonly.net"),
        )
        .add_ip("a.example.com", "192.0.2.1".parse().unwrap())
        .add_ip("b.example.com", "192.0.2.2".parse().unwrap())
        .add_ip("u.example.com", "192.0.2.3".parse().unwrap())
        .add_ip("s.example.com", "192.0.2.4".parse().unwrap())
        .add_ip("x.srvonly.net", "192.0.2.5".parse().unwrap())
        .add_ip("y.srvonly.net", "2001:db8::6".parse().unwrap())
        .add_ip("plain.org", "192.0.2.7".parse().unwrap());
        d
    }

    fn addrs(v: &[Target]) -> Vec<String> {
        v.iter()
            .map(|t| format!("{} {}", t.transport, t.addr))
            .collect()
    }

    const BOTH: &[Transport] = &[Transport::Udp, Transport::Tcp];

    #[test]
    fn naptr_order_then_srv_priority_and_weight() {
        let d = table();
        // random(n) = n: the record closing the running weight sum, here weight 5 before 0
        let t = run(locate_with_random(
            &d,
            "sip:bob@example.com",
            BOTH,
            &mut |n| n,
        ))
        .unwrap();
        // SIPS+D2T is skipped (TLS not supported); SIP+D2T (order 90) before SIP+D2U (100);
        // within the SRV set, weight 5 before weight 0
        assert_eq!(
            addrs(&t),
            [
                "TCP 192.0.2.1:5063",
                "TCP 192.0.2.2:5062",
                "UDP 192.0.2.3:5060"
            ]
        );
    }

    #[test]
    fn srv_weights_spread_the_first_choice() {
        // RFC 2782: weight 5 vs weight 0 → the weight-0 target comes first only when the
        // random number is 0, 1 time in 6
        let d = table();
        let mut random = weighted_random();
        let light_first = (0..1200)
            .filter(|_| {
                let t = run(locate_with_random(
                    &d,
                    "sip:bob@example.com",
                    BOTH,
                    &mut random,
                ))
                .unwrap();
                t[0].addr.to_string() == "192.0.2.2:5062"
            })
            .count();
        assert!((120..=300).contains(&light_first), "{light_first} of 1200");
    }

    #[test]
    fn sips_uses_only_tls() {
        let d = table();
        let t = run(locate(
            &d,
            "sips:bob@example.com",
            &[Transport::Tls, Transport::Tcp],
        ))
        .unwrap();
        assert_eq!(addrs(&t), ["TLS 192.0.2.4:5061"]);
    }

    #[test]
    fn srv_without_naptr() {
        let d = table();
        let t = run(locate(&d, "sip:srvonly.net", BOTH)).unwrap();
        assert_eq!(addrs(&t), ["UDP [2001:db8::6]:5071", "UDP 192.0.2.5:5070"]);
    }

    #[test]
    fn a_record_default_port() {
        let d = table();
        let t = run(locate(&d, "sip:plain.org", BOTH)).unwrap();
        assert_eq!(addrs(&t), ["UDP 192.0.2.7:5060"]);
    }

    #[test]
    fn numeric_host_and_explicit_port_skip_dns() {
        let d = StaticDns::default();
        let t = run(locate(&d, "sip:bob@198.51.100.1:5080;transport=tcp", BOTH)).unwrap();
        assert_eq!(addrs(&t), ["TCP 198.51.100.1:5080"]);
        let t = run(locate(&d, "sip:bob@[2001:db8::1]", BOTH)).unwrap();
        assert_eq!(addrs(&t), ["UDP [2001:db8::1]:5060"]);
        let d = table();
        // explicit port: A lookup only, no SRV
        let t = run(locate(&d, "sip:a.example.com:5099", BOTH)).unwrap();
        assert_eq!(addrs(&t), ["UDP 192.0.2.1:5099"]);
    }

    #[test]
    fn transport_param_selects_srv() {
        let d = table();
        let t = run(locate(&d, "sip:example.com;transport=udp", BOTH)).unwrap();
        assert_eq!(addrs(&t), ["UDP 192.0.2.3:5060"]);
    }

    #[test]
    fn maddr_overrides_host() {
        let d = StaticDns::default();
        let t = run(locate(&d, "sip:bob@example.com;maddr=192.0.2.9", BOTH)).unwrap();
        assert_eq!(addrs(&t), ["UDP 192.0.2.9:5060"]);
    }

    #[test]
    fn errors() {
        let d = table();
        assert!(matches!(
            run(locate(&d, "sip:nowhere.invalid", BOTH)),
            Err(NetError::NotFound(_))
        ));
        assert!(matches!(
            run(locate(&d, "tel:+15551234", BOTH)),
            Err(NetError::BadUri(_))
        ));
        assert!(matches!(
            run(locate(&d, "sip:1.2.3.4;transport=tls", BOTH)),
            Err(NetError::TransportDisabled(Transport::Tls))
        ));
    }
}
