//! [`Dns`] over real DNS with hickory-resolver (feature `dns`).

use super::{Dns, Lookup, Naptr, Srv};
use hickory_resolver::config::{
    LookupIpStrategy, NameServerConfigGroup, ResolverConfig, ResolverOpts,
};
use hickory_resolver::name_server::TokioConnectionProvider;
use hickory_resolver::proto::rr::{RData, RecordType};
use hickory_resolver::{Name, TokioResolver};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

/// The NAPTR (RFC 3403), SRV (RFC 2782) and A/AAAA lookups of RFC 3263 and ENUM (RFC 6116)
/// against real name servers, through a caching tokio resolver.
///
/// Names are queried as absolute names (no search list). A failed lookup (no such name, no
/// record of that type, server unreachable) is an empty answer, so [`super::locate`] falls back
/// the way RFC 3263 says (no NAPTR → SRV, no SRV → A/AAAA).
///
/// ```no_run
/// use ims_net::sip::resolve::{locate, HickoryDns};
/// use ims_txn::Transport;
/// # async fn f() -> Result<(), Box<dyn std::error::Error>> {
/// let dns = HickoryDns::from_system_conf()?;
/// let targets = locate(&dns, "sip:alice@example.com", &[Transport::Udp, Transport::Tcp]).await?;
/// println!("first try {} over {}", targets[0].addr, targets[0].transport);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct HickoryDns {
    resolver: TokioResolver,
}

impl std::fmt::Debug for HickoryDns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HickoryDns").finish_non_exhaustive()
    }
}

impl HickoryDns {
    /// A resolver with the system configuration (`/etc/resolv.conf`).
    pub fn from_system_conf() -> Result<HickoryDns, hickory_resolver::ResolveError> {
        let mut builder = TokioResolver::builder_tokio()?;
        builder.options_mut().ip_strategy = LookupIpStrategy::Ipv4AndIpv6;
        Ok(HickoryDns {
            resolver: builder.build(),
        })
    }

    /// A resolver asking only the name server at `server` (UDP, then TCP for truncated
    /// answers), waiting `timeout` per attempt, two attempts.
    pub fn with_server(server: SocketAddr, timeout: Duration) -> HickoryDns {
        let config = ResolverConfig::from_parts(
            None,
            vec![],
            NameServerConfigGroup::from_ips_clear(&[server.ip()], server.port(), true),
        );
        let mut opts = ResolverOpts::default();
        opts.ip_strategy = LookupIpStrategy::Ipv4AndIpv6;
        opts.timeout = timeout;
        opts.attempts = 2;
        let resolver =
            TokioResolver::builder_with_config(config, TokioConnectionProvider::default())
                .with_options(opts)
                .build();
        HickoryDns { resolver }
    }

    /// Wraps an already configured hickory resolver.
    pub fn from_resolver(resolver: TokioResolver) -> HickoryDns {
        HickoryDns { resolver }
    }
}

/// `name` as an absolute DNS name (`example.com` → `example.com.`).
fn absolute(name: &str) -> Option<Name> {
    let mut n = Name::from_ascii(name).ok()?;
    n.set_fqdn(true);
    Some(n)
}

/// A domain name as text without the trailing dot (`.` stays `.`, the RFC 3403 "none").
fn text(n: &Name) -> String {
    let s = n.to_ascii();
    match s.strip_suffix('.') {
        Some(t) if !t.is_empty() => t.to_owned(),
        _ => s,
    }
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

impl Dns for HickoryDns {
    fn naptr<'a>(&'a self, name: &'a str) -> Lookup<'a, Naptr> {
        Box::pin(async move {
            let Some(n) = absolute(name) else {
                return Vec::new();
            };
            let Ok(answer) = self.resolver.lookup(n, RecordType::NAPTR).await else {
                return Vec::new();
            };
            answer
                .iter()
                .filter_map(|r| match r {
                    RData::NAPTR(n) => Some(Naptr {
                        order: n.order(),
                        preference: n.preference(),
                        flags: lossy(n.flags()),
                        services: lossy(n.services()),
                        regexp: lossy(n.regexp()),
                        replacement: text(n.replacement()),
                    }),
                    _ => None,
                })
                .collect()
        })
    }

    fn srv<'a>(&'a self, name: &'a str) -> Lookup<'a, Srv> {
        Box::pin(async move {
            let Some(n) = absolute(name) else {
                return Vec::new();
            };
            let Ok(answer) = self.resolver.srv_lookup(n).await else {
                return Vec::new();
            };
            answer
                .iter()
                // RFC 2782: a target of "." means the service is decidedly not available
                .filter(|s| !s.target().is_root())
                .map(|s| Srv {
                    priority: s.priority(),
                    weight: s.weight(),
                    port: s.port(),
                    target: text(s.target()),
                })
                .collect()
        })
    }

    fn ip<'a>(&'a self, name: &'a str) -> Lookup<'a, IpAddr> {
        Box::pin(async move {
            let Some(n) = absolute(name) else {
                return Vec::new();
            };
            match self.resolver.lookup_ip(n).await {
                Ok(answer) => answer.iter().collect(),
                Err(_) => Vec::new(),
            }
        })
    }
}
