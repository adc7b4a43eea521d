//! The TOML configuration of the `cscf` example (see `examples/cscf/ims.toml`).

use ims::auth::milenage::OperatorKey;
use ims::nf::enum_dns::{EnumTable, Naptr};
use ims::nf::hss::{AkaCredentials, Credentials, Subscriber};
use ims::nf::registrar::RegistrarConfig;
use ims::nf::runtime::{CoreConfig, Peer, Ports, Roles};
use ims::nf::subscription::{
    ApplicationServer, ImsSubscription, InitialFilterCriteria, PublicIdentity, ServiceProfile,
    SessionCase, Spt, SptKind, TriggerPoint,
};
use serde::Deserialize;
use std::net::{IpAddr, SocketAddr};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct File {
    domain: String,
    ip: IpAddr,
    /// `in_process = true`: the roles run here hand SIP datagrams to each other in memory
    /// instead of over loopback sockets (`CoreOptions::in_process`; default off).
    #[serde(default)]
    in_process: bool,
    #[serde(default)]
    ports: PortsToml,
    hss: PeerToml,
    pcrf: PeerToml,
    #[serde(default)]
    registrar: RegistrarToml,
    #[serde(default, rename = "subscriber")]
    subscribers: Vec<SubscriberToml>,
    #[serde(default, rename = "ifc")]
    ifcs: Vec<IfcToml>,
    #[serde(default, rename = "enum")]
    enum_: EnumToml,
    /// The IM server started with `--role im` (or all): `[im] port`, `store`, `network_imdn`.
    #[serde(default)]
    im: ImToml,
    /// Security agreement at the P-CSCF (RFC 3329 / TS 33.203 `ipsec-3gpp`): `[sec_agree]
    /// port_c`, `port_s` (protected ports), `xfrm` (install kernel SAs with `ip xfrm`).
    #[serde(default)]
    sec_agree: Option<SecAgreeToml>,
    /// The I-CSCF's S-CSCF selection by capabilities: `[icscf] capabilities` (what this core's
    /// own S-CSCF offers) and `[[icscf.scscf]] uri, capabilities` (other S-CSCFs it may pick).
    #[serde(default)]
    icscf: IcscfToml,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct IcscfToml {
    #[serde(default)]
    capabilities: Vec<u32>,
    #[serde(default, rename = "scscf")]
    scscfs: Vec<ScscfToml>,
    /// How long the I-CSCF waits for an S-CSCF's answer to a REGISTER before it selects another
    /// (milliseconds; default `ims::nf::runtime::DEFAULT_SCSCF_TIMEOUT`).
    scscf_timeout_ms: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScscfToml {
    uri: String,
    #[serde(default)]
    capabilities: Vec<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SecAgreeToml {
    port_c: u16,
    port_s: u16,
    #[serde(default)]
    xfrm: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ImToml {
    port: Option<u16>,
    store: Option<std::path::PathBuf>,
    #[serde(default)]
    network_imdn: bool,
    /// The MSRP session anchor on the IM server's port (default on).
    sessions: Option<bool>,
    /// Its MSRP TCP port (default 0: any).
    msrp_port: Option<u16>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PortsToml {
    pcscf: u16,
    icscf: u16,
    scscf_term: u16,
    scscf_orig: u16,
}

impl Default for PortsToml {
    fn default() -> Self {
        let p = Ports::default();
        PortsToml {
            pcscf: p.pcscf,
            icscf: p.icscf,
            scscf_term: p.scscf_term,
            scscf_orig: p.scscf_orig,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PeerToml {
    listen: Option<SocketAddr>,
    host: Option<String>,
    addr: Option<SocketAddr>,
    /// The embedded HSS's HTTP/JSON admin interface (`[hss] admin = "127.0.0.1:5080"`).
    admin: Option<SocketAddr>,
    /// Several embedded HSSs behind an embedded SLF (Dx): where the SLF listens …
    slf: Option<SocketAddr>,
    /// … how long its redirects may be cached (seconds, default 300) …
    slf_cache_time: Option<u32>,
    /// … and the HSSs (`[[hss.instance]] host, listen, users = [IMPIs]`).
    #[serde(default, rename = "instance")]
    instances: Vec<HssInstanceToml>,
    /// `[hss.scscf_capabilities]`: what the embedded HSSs send in Server-Capabilities when
    /// they name no S-CSCF (TS 29.229 §6.3.4; omitted when empty).
    scscf_capabilities: Option<CapabilitiesToml>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct CapabilitiesToml {
    #[serde(default)]
    mandatory: Vec<u32>,
    #[serde(default)]
    optional: Vec<u32>,
    #[serde(default)]
    server_names: Vec<String>,
}

impl CapabilitiesToml {
    fn to_capabilities(&self) -> ims::nf::hss::ScscfCapabilities {
        ims::nf::hss::ScscfCapabilities {
            mandatory: self.mandatory.clone(),
            optional: self.optional.clone(),
            server_names: self.server_names.clone(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct HssInstanceToml {
    host: String,
    listen: SocketAddr,
    #[serde(default)]
    users: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RegistrarToml {
    /// The S-CSCF challenges also REGISTERs that came over the SAs (TS 24.229 §5.4.1.2.2).
    #[serde(default)]
    reauthenticate_protected: bool,
    min_expires: Option<u32>,
    max_expires: Option<u32>,
    default_expires: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SubscriberToml {
    impi: String,
    impus: Vec<String>,
    #[serde(default)]
    barred: Vec<String>,
    k: Option<String>,
    op: Option<String>,
    opc: Option<String>,
    amf: Option<String>,
    #[serde(default)]
    sqn: u64,
    password: Option<String>,
    /// The S-CSCF capabilities this subscriber requires (`scscf_capabilities = { mandatory =
    /// [1], optional = [2] }`), instead of `[hss.scscf_capabilities]`.
    scscf_capabilities: Option<CapabilitiesToml>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct IfcToml {
    priority: i32,
    server: String,
    session_case: Option<String>,
    method: Option<String>,
    header: Option<String>,
    content: Option<String>,
    /// SessionDescription SPT (TS 29.228 B.2.2): the SDP line type (`m`) …
    sdp_line: Option<String>,
    /// … and a regular expression on its value (`^message `).
    sdp_content: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct EnumToml {
    default: Option<String>,
    /// Name server for ENUM NAPTR queries (`127.0.0.1:53`); needs the `dns` feature.
    dns: Option<SocketAddr>,
    #[serde(default)]
    numbers: Vec<EnumEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EnumEntry {
    number: String,
    uri: String,
}

fn hex16(what: &str, s: &str) -> Result<[u8; 16], String> {
    let v = hex(s).ok_or_else(|| format!("{what}: not hex"))?;
    v.try_into().map_err(|_| format!("{what}: need 16 octets"))
}

fn hex(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

fn peer(p: &PeerToml, what: &str) -> Result<Peer, String> {
    if let Some(slf) = p.slf {
        if p.instances.is_empty() || p.listen.is_some() || p.host.is_some() {
            return Err(format!(
                "[{what}]: with slf, give the HSSs as [[{what}.instance]] (not listen/host)"
            ));
        }
        return Ok(Peer::EmbeddedSlf(ims::nf::runtime::SlfSetup {
            addr: slf,
            hss: p
                .instances
                .iter()
                .map(|i| ims::nf::runtime::EmbeddedHss {
                    host: i.host.clone(),
                    addr: i.listen,
                    users: i.users.clone(),
                })
                .collect(),
            cache_time: p.slf_cache_time.unwrap_or(300),
        }));
    }
    match (p.listen, &p.host, p.addr) {
        (Some(l), None, None) => Ok(Peer::Embedded(l)),
        (None, Some(h), Some(a)) => Ok(Peer::External {
            host: h.clone(),
            addr: a,
        }),
        _ => Err(format!("[{what}]: give either listen, or host and addr")),
    }
}

fn ifc(t: &IfcToml) -> Result<InitialFilterCriteria, String> {
    let mut spts = Vec::new();
    let mut group = |kind| {
        let mut s = Spt::new(kind);
        s.groups = vec![0];
        spts.push(s);
    };
    if let Some(c) = &t.session_case {
        let c = match c.as_str() {
            "originating" => SessionCase::Originating,
            "terminating" => SessionCase::TerminatingRegistered,
            "terminating_unregistered" => SessionCase::TerminatingUnregistered,
            other => return Err(format!("ifc: unknown session_case {other}")),
        };
        group(SptKind::SessionCase(c));
    }
    if let Some(m) = &t.method {
        group(SptKind::Method(m.clone()));
    }
    if let Some(h) = &t.header {
        group(SptKind::SipHeader {
            header: h.clone(),
            content: t.content.clone(),
        });
    }
    if let Some(l) = &t.sdp_line {
        group(SptKind::SessionDescription {
            line: l.clone(),
            content: t.sdp_content.clone(),
        });
    }
    Ok(InitialFilterCriteria {
        priority: t.priority,
        trigger_point: (!spts.is_empty()).then_some(TriggerPoint {
            condition_type_cnf: false,
            spts,
        }),
        application_server: ApplicationServer::new(t.server.clone()),
        profile_part_indicator: None,
    })
}

impl File {
    pub(crate) fn load(path: &std::path::Path) -> Result<File, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// The options beyond [`CoreConfig`]: security agreement at the P-CSCF when configured.
    pub(crate) fn core_options(&self) -> ims::nf::runtime::CoreOptions {
        let mut o = ims::nf::runtime::CoreOptions::default()
            .with_reauthenticate_protected(self.registrar.reauthenticate_protected)
            .with_in_process(self.in_process);
        if let Some(c) = &self.hss.scscf_capabilities {
            o = o.with_scscf_capabilities(c.to_capabilities());
        }
        for s in &self.subscribers {
            if let Some(c) = &s.scscf_capabilities {
                o = o.with_subscriber_capabilities(s.impi.clone(), c.to_capabilities());
            }
        }
        o = o.with_icscf_selection(
            self.icscf.capabilities.clone(),
            self.icscf
                .scscfs
                .iter()
                .map(|s| (s.uri.clone(), s.capabilities.clone()))
                .collect(),
        );
        if let Some(ms) = self.icscf.scscf_timeout_ms {
            o = o.with_icscf_scscf_timeout(std::time::Duration::from_millis(ms));
        }
        if let Some(s) = &self.sec_agree {
            let installer: Option<std::sync::Arc<dyn ims::nf::sec_agree::SaInstaller>> = s
                .xfrm
                .then(|| std::sync::Arc::new(ims::nf::sec_agree::XfrmInstaller) as _);
            o = o.with_sec_agree(
                ims::nf::sec_agree::SecAgreeConfig::new(self.ip, s.port_c, s.port_s),
                installer,
            );
        }
        o
    }

    pub(crate) fn core_config(&self, roles: Roles) -> Result<CoreConfig, String> {
        let ifcs = self.ifcs.iter().map(ifc).collect::<Result<Vec<_>, _>>()?;
        let mut subscribers = Vec::new();
        for s in &self.subscribers {
            let aka = match (&s.k, &s.op, &s.opc) {
                (Some(k), op, opc) => {
                    let key = match (op, opc) {
                        (Some(op), None) => OperatorKey::Op(hex16("op", op)?),
                        (None, Some(opc)) => OperatorKey::Opc(hex16("opc", opc)?),
                        _ => return Err(format!("{}: give op or opc with k", s.impi)),
                    };
                    let amf = hex(s.amf.as_deref().unwrap_or("8000"))
                        .and_then(|v| <[u8; 2]>::try_from(v).ok())
                        .ok_or_else(|| format!("{}: amf is 4 hex digits", s.impi))?;
                    Some(AkaCredentials::new(hex16("k", k)?, key, amf, s.sqn))
                }
                (None, _, _) => None,
            };
            let public_identities = s
                .impus
                .iter()
                .map(|u| {
                    let mut p = PublicIdentity::new(u.clone());
                    p.barring_indication = s.barred.contains(u);
                    p
                })
                .collect();
            subscribers.push(Subscriber {
                subscription: ImsSubscription {
                    private_id: s.impi.clone(),
                    service_profiles: vec![ServiceProfile {
                        public_identities,
                        initial_filter_criteria: ifcs.clone(),
                        ..ServiceProfile::default()
                    }],
                },
                credentials: Credentials {
                    aka,
                    password: s.password.clone(),
                },
            });
        }
        let mut enum_table = EnumTable::new("e164.arpa");
        for e in &self.enum_.numbers {
            enum_table
                .insert_uri(&e.number, &e.uri)
                .map_err(|e| e.to_string())?;
        }
        if let Some(d) = &self.enum_.default {
            enum_table.insert_default(Naptr {
                order: 100,
                preference: 10,
                flags: "u".into(),
                services: "E2U+sip".into(),
                regexp: d.clone(),
                replacement: ".".into(),
            });
        }
        if let Some(server) = self.enum_.dns {
            #[cfg(feature = "dns")]
            enum_table.set_dns(std::sync::Arc::new(
                ims::net::sip::resolve::HickoryDns::with_server(
                    server,
                    std::time::Duration::from_secs(2),
                ),
            ));
            #[cfg(not(feature = "dns"))]
            return Err(format!(
                "[enum] dns = {server:?}: this build has no `dns` feature"
            ));
        }
        let defaults = RegistrarConfig::default();
        Ok(CoreConfig {
            domain: self.domain.clone(),
            ip: self.ip,
            ports: Ports {
                pcscf: self.ports.pcscf,
                icscf: self.ports.icscf,
                scscf_term: self.ports.scscf_term,
                scscf_orig: self.ports.scscf_orig,
            },
            roles,
            hss: peer(&self.hss, "hss")?,
            pcrf: peer(&self.pcrf, "pcrf")?,
            subscribers,
            enum_table,
            registrar: RegistrarConfig {
                min_expires: self.registrar.min_expires.unwrap_or(defaults.min_expires),
                max_expires: self.registrar.max_expires.unwrap_or(defaults.max_expires),
                default_expires: self
                    .registrar
                    .default_expires
                    .unwrap_or(defaults.default_expires),
                ..defaults
            },
            nonce_secret: ims::nf::runtime::random16().to_vec(),
            admin: self.hss.admin,
            im: ims::nf::runtime::ImOptions {
                port: self.im.port.unwrap_or(7070),
                store: self.im.store.clone(),
                network_imdn: self.im.network_imdn,
                sessions: self.im.sessions.unwrap_or(true),
                msrp_port: self.im.msrp_port.unwrap_or(0),
            },
        })
    }
}
