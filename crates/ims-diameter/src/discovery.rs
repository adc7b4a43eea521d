//! Dynamic peer discovery (RFC 6733 §5.2 with the S-NAPTR application tags of RFC 6408): which
//! hosts, transports and ports serve a Diameter application in a realm.
//!
//! Sans-IO: the three DNS lookups the procedure needs sit behind the [`Resolver`] trait, and the
//! random choice among SRV records of equal priority (RFC 2782) takes its numbers from the caller,
//! so the selection logic is plain, deterministic code.
//!
//! The procedure ([`discover`]):
//! 1. NAPTR query for the realm. Records whose service field names the application
//!    (`aaa+ap<Application-Id>`, the relay id `aaa+ap4294967295`, or the application-less `aaa`)
//!    with an application protocol we accept (`diameter.tcp`, `diameter.sctp`, `diameter.tls.tcp`,
//!    `diameter.dtls.sctp`) are used in `order`, then `preference`. Flag `S`: SRV lookup of the
//!    replacement; flag `A`: address lookup of the replacement with the transport's default port
//!    (3868, or 5658 with (D)TLS); empty flags: a non-terminal rule whose replacement's NAPTR
//!    records are used in its place (at most [`MAX_NAPTR_HOPS`] deep). Other flags are skipped.
//! 2. No NAPTR record usable for the application: SRV queries `_diameter._tcp.<realm>`, `_diameter._sctp.<realm>`,
//!    `_diameters._tcp.<realm>`, `_diameters._sctp.<realm>` in the caller's transport order.
//! 3. No SRV record either: the A/AAAA records of the realm name itself, with the default port
//!    of each accepted transport (3868, or 5658 with (D)TLS).
//! 4. Nothing found: an empty list (the node falls back to its static peer table).
//!
//! ```
//! use ims_diameter::discovery::{discover, Naptr, Srv, StaticResolver, Transport};
//! let mut dns = StaticResolver::default();
//! dns.add_naptr("ims.example.net", Naptr::new(10, 10, "S", "aaa+ap16777216:diameter.tcp", "_diameter._tcp.hss.ims.example.net"));
//! dns.add_srv("_diameter._tcp.hss.ims.example.net", Srv::new(0, 10, 3868, "hss1.ims.example.net"));
//! dns.add_address("hss1.ims.example.net", "192.0.2.20".parse().unwrap());
//! let peers = discover(&mut dns, "ims.example.net", 16_777_216, &[Transport::Tcp], &mut |_| 0);
//! assert_eq!(peers[0].host, "hss1.ims.example.net");
//! assert_eq!(peers[0].port, 3868);
//! assert_eq!(peers[0].transport, Transport::Tcp);
//! assert_eq!(peers[0].addresses, vec!["192.0.2.20".parse::<std::net::IpAddr>().unwrap()]);
//! ```

use std::collections::HashMap;
use std::net::IpAddr;

/// How many non-terminal NAPTR rules (empty flags) are followed before giving up.
pub const MAX_NAPTR_HOPS: usize = 4;

/// A Diameter transport, as S-NAPTR application protocol tags (RFC 6408 §4) and SRV labels
/// (RFC 6733 §5.2) name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    /// TCP (`diameter.tcp`, `_diameter._tcp`).
    Tcp,
    /// SCTP (`diameter.sctp`, `_diameter._sctp`).
    Sctp,
    /// TLS over TCP (`diameter.tls.tcp`, `_diameters._tcp`).
    TlsTcp,
    /// DTLS over SCTP (`diameter.dtls.sctp`, `_diameters._sctp`).
    DtlsSctp,
}

impl Transport {
    /// The S-NAPTR application protocol tag.
    pub const fn app_protocol(self) -> &'static str {
        match self {
            Transport::Tcp => "diameter.tcp",
            Transport::Sctp => "diameter.sctp",
            Transport::TlsTcp => "diameter.tls.tcp",
            Transport::DtlsSctp => "diameter.dtls.sctp",
        }
    }

    /// The SRV service and protocol labels (`_diameter._tcp`).
    pub const fn srv_prefix(self) -> &'static str {
        match self {
            Transport::Tcp => "_diameter._tcp",
            Transport::Sctp => "_diameter._sctp",
            Transport::TlsTcp => "_diameters._tcp",
            Transport::DtlsSctp => "_diameters._sctp",
        }
    }

    /// The IANA port: 3868 (`diameter`), 5658 (`diameters`, TLS/DTLS).
    pub const fn default_port(self) -> u16 {
        match self {
            Transport::Tcp | Transport::Sctp => 3868,
            Transport::TlsTcp | Transport::DtlsSctp => 5658,
        }
    }

    fn from_app_protocol(tag: &str) -> Option<Transport> {
        [
            Transport::Tcp,
            Transport::Sctp,
            Transport::TlsTcp,
            Transport::DtlsSctp,
        ]
        .into_iter()
        .find(|t| tag.eq_ignore_ascii_case(t.app_protocol()))
    }
}

/// A NAPTR record (RFC 3403).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Naptr {
    /// Order (lower first).
    pub order: u16,
    /// Preference among equal orders (lower first).
    pub preference: u16,
    /// Flags: `S` (SRV next), `A` (address next) or empty (non-terminal: NAPTR next).
    pub flags: String,
    /// Service field (`aaa+ap16777216:diameter.tcp`).
    pub services: String,
    /// The replacement domain name.
    pub replacement: String,
}

impl Naptr {
    /// A NAPTR record.
    pub fn new(
        order: u16,
        preference: u16,
        flags: &str,
        services: &str,
        replacement: &str,
    ) -> Self {
        Naptr {
            order,
            preference,
            flags: flags.into(),
            services: services.into(),
            replacement: replacement.into(),
        }
    }

    /// The transports this record offers for `application_id`, in the order the service field
    /// lists them (RFC 6408 §4: `aaa+ap<id>:<proto>[:<proto>...]`; `aaa` without an id and the
    /// relay id 4294967295 match any application). Empty when the record is not for us.
    ///
    /// The RFC 3588 §5.2 service fields, which name no application, are understood too:
    /// `AAA+D2T` (TCP), `AAA+D2S` (SCTP), and their secure forms of RFC 6733 §11.6
    /// `AAAS+D2T` (TLS over TCP), `AAAS+D2S` (DTLS over SCTP).
    pub fn transports_for(&self, application_id: u32) -> Vec<Transport> {
        let legacy = [
            ("aaa+d2t", Transport::Tcp),
            ("aaa+d2s", Transport::Sctp),
            ("aaas+d2t", Transport::TlsTcp),
            ("aaas+d2s", Transport::DtlsSctp),
        ];
        if let Some((_, t)) = legacy
            .iter()
            .find(|(tag, _)| self.services.trim().eq_ignore_ascii_case(tag))
        {
            return vec![*t];
        }
        let mut parts = self.services.split(':');
        let Some(tag) = parts.next() else {
            return Vec::new();
        };
        let tag = tag.trim();
        let matches = if tag.eq_ignore_ascii_case("aaa") {
            true
        } else if tag.len() > 6 && tag[..6].eq_ignore_ascii_case("aaa+ap") {
            match tag[6..].parse::<u32>() {
                Ok(id) => id == application_id || id == u32::MAX,
                Err(_) => false,
            }
        } else {
            false
        };
        if !matches {
            return Vec::new();
        }
        parts
            .filter_map(|p| Transport::from_app_protocol(p.trim()))
            .collect()
    }
}

/// An SRV record (RFC 2782).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Srv {
    /// Priority (lower first).
    pub priority: u16,
    /// Weight among equal priorities (proportional share).
    pub weight: u16,
    /// Port.
    pub port: u16,
    /// Target host (`.` means the service is not offered).
    pub target: String,
}

impl Srv {
    /// An SRV record.
    pub fn new(priority: u16, weight: u16, port: u16, target: &str) -> Self {
        Srv {
            priority,
            weight,
            port,
            target: target.into(),
        }
    }
}

/// The DNS lookups of peer discovery. Names are absolute, without the trailing dot; a failed or
/// empty lookup returns an empty list.
pub trait Resolver {
    /// NAPTR records of `name`.
    fn naptr(&mut self, name: &str) -> Vec<Naptr>;
    /// SRV records of `name`.
    fn srv(&mut self, name: &str) -> Vec<Srv>;
    /// A and AAAA records of `name`.
    fn addresses(&mut self, name: &str) -> Vec<IpAddr>;
    /// The smallest TTL of the records returned since the previous call (and resets it), so
    /// the caller knows how long a discovery result may be kept (RFC 6733 §5.2: entries are
    /// cached no longer than their TTL). `None` (the default) when the resolver does not know.
    fn take_min_ttl(&mut self) -> Option<std::time::Duration> {
        None
    }
}

/// A fixed table of records (tests, deployments without DNS). Names are case-insensitive.
#[derive(Debug, Clone, Default)]
pub struct StaticResolver {
    naptr: HashMap<String, Vec<Naptr>>,
    srv: HashMap<String, Vec<Srv>>,
    addr: HashMap<String, Vec<IpAddr>>,
    ttl: Option<std::time::Duration>,
}

impl StaticResolver {
    /// The TTL every record is given ([`Resolver::take_min_ttl`]; none by default).
    pub fn set_ttl(&mut self, ttl: Option<std::time::Duration>) -> &mut Self {
        self.ttl = ttl;
        self
    }
    /// Removes every record of `name` (a record no longer advertised).
    pub fn remove(&mut self, name: &str) -> &mut Self {
        let k = name.to_ascii_lowercase();
        self.naptr.remove(&k);
        self.srv.remove(&k);
        self.addr.remove(&k);
        self
    }
    /// Adds a NAPTR record for `name`.
    pub fn add_naptr(&mut self, name: &str, r: Naptr) -> &mut Self {
        self.naptr
            .entry(name.to_ascii_lowercase())
            .or_default()
            .push(r);
        self
    }
    /// Adds an SRV record for `name`.
    pub fn add_srv(&mut self, name: &str, r: Srv) -> &mut Self {
        self.srv
            .entry(name.to_ascii_lowercase())
            .or_default()
            .push(r);
        self
    }
    /// Adds an A or AAAA record for `name`.
    pub fn add_address(&mut self, name: &str, ip: IpAddr) -> &mut Self {
        self.addr
            .entry(name.to_ascii_lowercase())
            .or_default()
            .push(ip);
        self
    }
}

impl Resolver for StaticResolver {
    fn naptr(&mut self, name: &str) -> Vec<Naptr> {
        self.naptr
            .get(&name.to_ascii_lowercase())
            .cloned()
            .unwrap_or_default()
    }
    fn srv(&mut self, name: &str) -> Vec<Srv> {
        self.srv
            .get(&name.to_ascii_lowercase())
            .cloned()
            .unwrap_or_default()
    }
    fn addresses(&mut self, name: &str) -> Vec<IpAddr> {
        self.addr
            .get(&name.to_ascii_lowercase())
            .cloned()
            .unwrap_or_default()
    }
    fn take_min_ttl(&mut self) -> Option<std::time::Duration> {
        self.ttl
    }
}

/// One discovered peer, in the order to try.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// The host name (its DiameterIdentity, normally).
    pub host: String,
    /// Port.
    pub port: u16,
    /// Transport.
    pub transport: Transport,
    /// Its addresses (may be empty when the host has no A/AAAA record).
    pub addresses: Vec<IpAddr>,
}

/// The NAPTR records usable for `application_id` over one of `transports`, sorted by order then
/// preference (stable: DNS order breaks ties), each with its first acceptable transport in the
/// caller's preference order. Records with flags other than `S`, `A` or empty are dropped.
pub fn select_naptr<'r>(
    records: &'r [Naptr],
    application_id: u32,
    transports: &[Transport],
) -> Vec<(&'r Naptr, Transport)> {
    let mut out: Vec<(&Naptr, Transport)> = records
        .iter()
        .filter(|r| {
            r.flags.is_empty()
                || r.flags.eq_ignore_ascii_case("s")
                || r.flags.eq_ignore_ascii_case("a")
        })
        .filter_map(|r| {
            let offered = r.transports_for(application_id);
            transports
                .iter()
                .find(|t| offered.contains(t))
                .map(|t| (r, *t))
        })
        .collect();
    out.sort_by_key(|(r, _)| (r.order, r.preference));
    out
}

/// SRV records in the order to try (RFC 2782): by priority, and within a priority by weighted
/// random selection. `random(n)` returns a number in `0..=n` (the running weight sum); records
/// of weight 0 are placed first so they are picked when the sum is 0. Targets `.` (service not
/// available) are dropped.
pub fn order_srv(records: &[Srv], random: &mut dyn FnMut(u32) -> u32) -> Vec<Srv> {
    let mut rest: Vec<Srv> = records
        .iter()
        .filter(|s| s.target != "." && !s.target.is_empty())
        .cloned()
        .collect();
    rest.sort_by_key(|s| (s.priority, s.weight != 0));
    let mut out = Vec::with_capacity(rest.len());
    while !rest.is_empty() {
        let prio = rest[0].priority;
        let mut group: Vec<Srv> = Vec::new();
        rest.retain(|s| {
            if s.priority == prio {
                group.push(s.clone());
                false
            } else {
                true
            }
        });
        while !group.is_empty() {
            let total: u32 = group.iter().map(|s| u32::from(s.weight)).sum();
            let pick = random(total).min(total);
            let mut running = 0u32;
            let idx = group
                .iter()
                .position(|s| {
                    running += u32::from(s.weight);
                    running >= pick
                })
                .unwrap_or(group.len() - 1);
            out.push(group.remove(idx));
        }
    }
    out
}

fn srv_candidates(
    dns: &mut dyn Resolver,
    name: &str,
    transport: Transport,
    random: &mut dyn FnMut(u32) -> u32,
    out: &mut Vec<Candidate>,
) {
    for s in order_srv(&dns.srv(name), random) {
        let addresses = dns.addresses(&s.target);
        push_unique(
            out,
            Candidate {
                host: s.target,
                port: s.port,
                transport,
                addresses,
            },
        );
    }
}

fn push_unique(out: &mut Vec<Candidate>, c: Candidate) {
    if !out.iter().any(|o| {
        o.host.eq_ignore_ascii_case(&c.host) && o.port == c.port && o.transport == c.transport
    }) {
        out.push(c);
    }
}

#[allow(clippy::too_many_arguments)]
fn naptr_walk(
    dns: &mut dyn Resolver,
    name: &str,
    application_id: u32,
    transports: &[Transport],
    random: &mut dyn FnMut(u32) -> u32,
    hops_left: usize,
    out: &mut Vec<Candidate>,
    found: &mut bool,
) {
    let records = dns.naptr(name);
    for (r, t) in select_naptr(&records, application_id, transports) {
        *found = true;
        if r.flags.eq_ignore_ascii_case("s") {
            srv_candidates(dns, &r.replacement, t, random, out);
        } else if r.flags.eq_ignore_ascii_case("a") {
            let addresses = dns.addresses(&r.replacement);
            push_unique(
                out,
                Candidate {
                    host: r.replacement.clone(),
                    port: t.default_port(),
                    transport: t,
                    addresses,
                },
            );
        } else if hops_left > 0 {
            // non-terminal rule: its replacement's NAPTR records take this record's place
            naptr_walk(
                dns,
                &r.replacement,
                application_id,
                transports,
                random,
                hops_left - 1,
                out,
                found,
            );
        }
    }
}

/// Runs the discovery procedure of RFC 6733 §5.2 (see the module documentation) for
/// `application_id` in `realm`, accepting `transports` in that order of preference. `random`
/// feeds the SRV weighted selection (`random(n)` in `0..=n`).
pub fn discover(
    dns: &mut dyn Resolver,
    realm: &str,
    application_id: u32,
    transports: &[Transport],
    random: &mut dyn FnMut(u32) -> u32,
) -> Vec<Candidate> {
    let mut out = Vec::new();
    let mut found_naptr = false;
    naptr_walk(
        dns,
        realm,
        application_id,
        transports,
        random,
        MAX_NAPTR_HOPS,
        &mut out,
        &mut found_naptr,
    );
    if !found_naptr {
        for t in transports {
            let name = format!("{}.{realm}", t.srv_prefix());
            srv_candidates(dns, &name, *t, random, &mut out);
        }
    }
    if !found_naptr && out.is_empty() {
        // neither NAPTR nor SRV: the realm's own A/AAAA records, on the default port of each
        // accepted transport
        let addresses = dns.addresses(realm);
        if !addresses.is_empty() {
            for t in transports {
                out.push(Candidate {
                    host: realm.to_owned(),
                    port: t.default_port(),
                    transport: *t,
                    addresses: addresses.clone(),
                });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    const CX: u32 = 16_777_216;
    const RX: u32 = 16_777_236;

    #[test]
    fn service_field_matching() {
        let r = Naptr::new(1, 1, "S", "aaa+ap16777216:diameter.tcp:diameter.sctp", "x");
        assert_eq!(r.transports_for(CX), vec![Transport::Tcp, Transport::Sctp]);
        assert!(r.transports_for(RX).is_empty());
        let relay = Naptr::new(1, 1, "S", "AAA+AP4294967295:Diameter.TLS.TCP", "x");
        assert_eq!(relay.transports_for(RX), vec![Transport::TlsTcp]);
        let any = Naptr::new(1, 1, "S", "aaa:diameter.sctp", "x");
        assert_eq!(any.transports_for(CX), vec![Transport::Sctp]);
        for bad in [
            "aaa+ap:diameter.tcp",
            "aaa+apx1:diameter.tcp",
            "sip+d2t",
            "aaa+ap16777216:http",
            "aaa+ap16777216",
        ] {
            assert!(
                Naptr::new(1, 1, "S", bad, "x")
                    .transports_for(CX)
                    .is_empty(),
                "{bad}"
            );
        }
    }

    #[test]
    fn naptr_order_then_preference_and_transport_choice() {
        let recs = vec![
            Naptr::new(20, 5, "S", "aaa+ap16777216:diameter.tcp", "c"),
            Naptr::new(
                10,
                50,
                "S",
                "aaa+ap16777216:diameter.sctp:diameter.tcp",
                "b",
            ),
            Naptr::new(10, 10, "S", "aaa+ap16777236:diameter.tcp", "rx-only"),
            Naptr::new(10, 20, "A", "aaa+ap16777216:diameter.tls.tcp", "a"),
            Naptr::new(5, 1, "U", "aaa+ap16777216:diameter.tcp", "uri-flag"),
        ];
        let sel = select_naptr(&recs, CX, &[Transport::Tcp, Transport::TlsTcp]);
        let got: Vec<_> = sel
            .iter()
            .map(|(r, t)| (r.replacement.as_str(), *t))
            .collect();
        assert_eq!(
            got,
            vec![
                ("a", Transport::TlsTcp),
                ("b", Transport::Tcp),
                ("c", Transport::Tcp)
            ]
        );
        // the caller's transport preference picks SCTP from "b" when it comes first
        let sel = select_naptr(&recs, CX, &[Transport::Sctp]);
        assert_eq!(sel.len(), 1);
        assert_eq!(sel[0].1, Transport::Sctp);
    }

    #[test]
    fn srv_priority_then_weight() {
        let recs = vec![
            Srv::new(20, 0, 3868, "backup"),
            Srv::new(10, 60, 3868, "big"),
            Srv::new(10, 20, 3868, "small"),
            Srv::new(10, 0, 3868, "zero"),
            Srv::new(5, 0, 3868, "."),
        ];
        // random always 0: zero-weight record first, then the first with running sum >= 0
        let order: Vec<_> = order_srv(&recs, &mut |_| 0)
            .into_iter()
            .map(|s| s.target)
            .collect();
        assert_eq!(order, ["zero", "big", "small", "backup"]);
        // random always the maximum: the last record of the running sum is picked each time
        let order: Vec<_> = order_srv(&recs, &mut |n| n)
            .into_iter()
            .map(|s| s.target)
            .collect();
        assert_eq!(order, ["small", "big", "zero", "backup"]);
        // a pick of 30 out of 80 lands in "big" (0 zero, 60 big)
        let mut first = true;
        let order: Vec<_> = order_srv(&recs, &mut |n| {
            let v = if first { 30 } else { n };
            first = false;
            v
        })
        .into_iter()
        .map(|s| s.target)
        .collect();
        assert_eq!(order[0], "big");
        // the weighted choice is proportional: over all picks 0..=80, "big" wins 60 of them
        let wins = (0..=80u32)
            .filter(|p| order_srv(&recs[1..4], &mut |_| *p)[0].target == "big")
            .count();
        assert_eq!(wins, 60);
    }

    #[test]
    fn naptr_s_a_and_non_terminal_rules() {
        let mut dns = StaticResolver::default();
        dns.add_naptr(
            "ims.example.net",
            Naptr::new(
                10,
                10,
                "",
                "aaa+ap16777216:diameter.tcp",
                "cx.ims.example.net",
            ),
        )
        .add_naptr(
            "ims.example.net",
            Naptr::new(
                20,
                10,
                "A",
                "aaa+ap16777216:diameter.tls.tcp",
                "hss9.ims.example.net",
            ),
        )
        .add_naptr(
            "cx.ims.example.net",
            Naptr::new(
                10,
                10,
                "S",
                "aaa+ap16777216:diameter.tcp",
                "_diameter._tcp.cx.ims.example.net",
            ),
        )
        .add_srv(
            "_diameter._tcp.cx.ims.example.net",
            Srv::new(1, 0, 3870, "hss1.ims.example.net"),
        )
        .add_srv(
            "_diameter._tcp.cx.ims.example.net",
            Srv::new(2, 0, 3871, "hss2.ims.example.net"),
        )
        .add_address("hss1.ims.example.net", ip("192.0.2.1"))
        .add_address("hss2.ims.example.net", ip("2001:db8::2"))
        .add_address("hss9.ims.example.net", ip("192.0.2.9"));
        let got = discover(
            &mut dns,
            "ims.example.net",
            CX,
            &[Transport::Tcp, Transport::TlsTcp],
            &mut |_| 0,
        );
        let summary: Vec<_> = got
            .iter()
            .map(|c| (c.host.as_str(), c.port, c.transport))
            .collect();
        // the non-terminal rule (order 10) is followed in its place, before the A rule (20)
        assert_eq!(
            summary,
            vec![
                ("hss1.ims.example.net", 3870, Transport::Tcp),
                ("hss2.ims.example.net", 3871, Transport::Tcp),
                ("hss9.ims.example.net", 5658, Transport::TlsTcp),
            ]
        );
        assert_eq!(got[1].addresses, vec![ip("2001:db8::2")]);
        // no record for Rx and no `_diameter._tcp` SRV record for the realm: nothing
        assert!(discover(
            &mut dns,
            "ims.example.net",
            RX,
            &[Transport::Tcp],
            &mut |_| 0
        )
        .is_empty());
    }

    #[test]
    fn srv_fallback_without_naptr_and_loop_bound() {
        let mut dns = StaticResolver::default();
        dns.add_srv(
            "_diameter._tcp.epc.example.net",
            Srv::new(0, 0, 3868, "pcrf.epc.example.net"),
        )
        .add_srv(
            "_diameters._tcp.epc.example.net",
            Srv::new(0, 0, 5658, "pcrf.epc.example.net"),
        )
        .add_address("pcrf.epc.example.net", ip("192.0.2.30"));
        let got = discover(
            &mut dns,
            "epc.example.net",
            RX,
            &[Transport::TlsTcp, Transport::Tcp],
            &mut |_| 0,
        );
        let summary: Vec<_> = got.iter().map(|c| (c.port, c.transport)).collect();
        assert_eq!(
            summary,
            vec![(5658, Transport::TlsTcp), (3868, Transport::Tcp)]
        );

        // a NAPTR loop (a -> b -> a) ends after MAX_NAPTR_HOPS without a candidate
        let mut dns = StaticResolver::default();
        dns.add_naptr("a", Naptr::new(1, 1, "", "aaa:diameter.tcp", "b"))
            .add_naptr("b", Naptr::new(1, 1, "", "aaa:diameter.tcp", "a"));
        assert!(discover(&mut dns, "a", CX, &[Transport::Tcp], &mut |_| 0).is_empty());
    }

    #[test]
    fn realm_address_fallback_without_naptr_and_srv() {
        let mut dns = StaticResolver::default();
        dns.add_address("hss.example.net", ip("192.0.2.40"))
            .add_address("hss.example.net", ip("2001:db8::40"));
        let got = discover(
            &mut dns,
            "hss.example.net",
            CX,
            &[Transport::Tcp, Transport::TlsTcp],
            &mut |_| 0,
        );
        assert_eq!(got.len(), 2);
        assert_eq!(
            (got[0].host.as_str(), got[0].port, got[0].transport),
            ("hss.example.net", 3868, Transport::Tcp)
        );
        assert_eq!(got[0].addresses, vec![ip("192.0.2.40"), ip("2001:db8::40")]);
        assert_eq!((got[1].port, got[1].transport), (5658, Transport::TlsTcp));
        // an SRV record wins over the realm's addresses
        dns.add_srv(
            "_diameter._tcp.hss.example.net",
            Srv::new(0, 0, 3870, "hss1.example.net"),
        );
        let got = discover(
            &mut dns,
            "hss.example.net",
            CX,
            &[Transport::Tcp],
            &mut |_| 0,
        );
        assert_eq!(
            got.iter()
                .map(|c| (c.host.as_str(), c.port))
                .collect::<Vec<_>>(),
            [("hss1.example.net", 3870)]
        );
        // nothing at all: no candidate
        assert!(discover(
            &mut dns,
            "none.example.net",
            CX,
            &[Transport::Tcp],
            &mut |_| 0
        )
        .is_empty());
    }

    #[test]
    fn rfc3588_service_fields_and_tls_candidates() {
        // RFC 3588 §5.2 / RFC 6733 §11.6: no application named, any application matches
        let n = |svc: &str| Naptr::new(10, 10, "S", svc, "x");
        assert_eq!(n("AAA+D2T").transports_for(1), vec![Transport::Tcp]);
        assert_eq!(n("aaa+d2s").transports_for(7), vec![Transport::Sctp]);
        assert_eq!(n("AAAS+D2T").transports_for(1), vec![Transport::TlsTcp]);
        assert_eq!(n("AAAS+D2S").transports_for(1), vec![Transport::DtlsSctp]);
        assert!(n("AAA+D2X").transports_for(1).is_empty());
        // a realm offering TLS first (order 10) and TCP (order 20): a caller that accepts both
        // gets the TLS candidate first on the diameters port; a TCP-only caller skips it
        let mut dns = StaticResolver::default();
        dns.add_naptr(
            "realm.example",
            Naptr::new(10, 10, "S", "AAAS+D2T", "_diameters._tcp.realm.example"),
        )
        .add_naptr(
            "realm.example",
            Naptr::new(20, 10, "S", "AAA+D2T", "_diameter._tcp.realm.example"),
        )
        .add_srv(
            "_diameters._tcp.realm.example",
            Srv::new(0, 0, 5658, "peer.realm.example"),
        )
        .add_srv(
            "_diameter._tcp.realm.example",
            Srv::new(0, 0, 3868, "peer.realm.example"),
        )
        .add_address("peer.realm.example", ip("192.0.2.1"));
        let both = discover(
            &mut dns,
            "realm.example",
            16_777_216,
            &[Transport::TlsTcp, Transport::Tcp],
            &mut |_| 0,
        );
        let got: Vec<(Transport, u16)> = both.iter().map(|c| (c.transport, c.port)).collect();
        assert_eq!(got, vec![(Transport::TlsTcp, 5658), (Transport::Tcp, 3868)]);
        let tcp = discover(
            &mut dns,
            "realm.example",
            16_777_216,
            &[Transport::Tcp],
            &mut |_| 0,
        );
        assert_eq!(tcp.len(), 1);
        assert_eq!(tcp[0].transport, Transport::Tcp);
        // TTL reported by the resolver
        assert_eq!(dns.take_min_ttl(), None);
        dns.set_ttl(Some(std::time::Duration::from_secs(60)));
        assert_eq!(dns.take_min_ttl(), Some(std::time::Duration::from_secs(60)));
        // records no longer advertised
        dns.remove("realm.example")
            .remove("_diameter._tcp.realm.example")
            .remove("_diameters._tcp.realm.example");
        assert!(discover(&mut dns, "realm.example", 1, &[Transport::Tcp], &mut |_| 0).is_empty());
    }
}
