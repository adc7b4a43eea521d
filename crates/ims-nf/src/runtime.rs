//! An IMS core on tokio: the P-, I- and S-CSCF on ims-net proxies, the Cx and Rx clients on
//! ims-net Diameter nodes, and (optionally) the embedded HSS and PCRF serving real Diameter on
//! loopback. [`ImsCore::start`] wires what [`CoreConfig`] asks for; each role can also run alone
//! against external peers.

use crate::cscf::{
    odi_of, Decision, Forward, Icscf, IcscfConfig, Pcscf, PcscfConfig, RxAction, ScscfRouting,
};
use crate::cx::LocalHss;
use crate::cx_wire::{DiameterCx, HssCxServer};
use crate::enum_dns::EnumTable;
use crate::hss::{Hss, Subscriber};
use crate::pcrf::{DiameterRx, Pcrf, PcrfRxServer, RxClient};
use crate::registrar::RegistrarConfig;
use crate::scscf::{Scscf, ScscfConfig};
use crate::store::MemoryStore;
use bytes::Bytes;
use ims_diameter::dict::app;
use ims_diameter::peer::Application;
use ims_net::diameter::{Node, NodeConfig};
use ims_net::sip::{EndpointConfig, ProxyEndpoint, ProxyEvents};
use ims_sip::{Method, OwnedMessage};
use ims_txn::proxy::{Edits, ForkMode, ProxyEvent, Target};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Which roles this process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Roles {
    /// P-CSCF.
    pub p: bool,
    /// I-CSCF.
    pub i: bool,
    /// S-CSCF.
    pub s: bool,
}

impl Roles {
    /// All three.
    pub const ALL: Roles = Roles {
        p: true,
        i: true,
        s: true,
    };
}

/// Where a Diameter server is: embedded in this process (listening there) or external.
#[derive(Debug, Clone)]
pub enum Peer {
    /// Run it here, listening on this address.
    Embedded(SocketAddr),
    /// Connect to this host (its Origin-Host) at this address.
    External {
        /// Origin-Host of the peer.
        host: String,
        /// Its address.
        addr: SocketAddr,
    },
}

/// The SIP ports of the roles (all on [`CoreConfig::ip`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ports {
    /// P-CSCF (UEs register here).
    pub pcscf: u16,
    /// I-CSCF.
    pub icscf: u16,
    /// S-CSCF terminating side (REGISTER and terminating requests from the I-CSCF).
    pub scscf_term: u16,
    /// S-CSCF originating side (the Service-Route).
    pub scscf_orig: u16,
}

impl Default for Ports {
    fn default() -> Self {
        Ports {
            pcscf: 5060,
            icscf: 5062,
            scscf_term: 6060,
            scscf_orig: 6061,
        }
    }
}

/// Everything [`ImsCore::start`] needs.
#[derive(Debug, Clone)]
pub struct CoreConfig {
    /// Home domain (realm of SIP and Diameter).
    pub domain: String,
    /// Address everything binds to.
    pub ip: IpAddr,
    /// SIP ports.
    pub ports: Ports,
    /// Roles run by this process.
    pub roles: Roles,
    /// The HSS.
    pub hss: Peer,
    /// The PCRF.
    pub pcrf: Peer,
    /// Subscribers provisioned in an embedded HSS.
    pub subscribers: Vec<Subscriber>,
    /// The ENUM table of the I-CSCF.
    pub enum_table: EnumTable,
    /// Registrar policy of the S-CSCF.
    pub registrar: RegistrarConfig,
    /// Key of the S-CSCF's digest nonces.
    pub nonce_secret: Vec<u8>,
}

/// Why the core did not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CoreError {
    /// A SIP socket could not be bound.
    #[error("SIP: {0}")]
    Sip(#[from] ims_net::sip::NetError),
    /// A Diameter listener could not be bound.
    #[error("Diameter: {0}")]
    Diameter(#[from] ims_net::diameter::NodeError),
}

/// A running core.
#[derive(Debug)]
pub struct ImsCore {
    hss: Option<LocalHss>,
    pcrf: Option<Arc<Mutex<Pcrf>>>,
    proxies: Vec<ProxyEndpoint>,
    nodes: Vec<Node>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

/// Seconds since the Unix epoch (the network functions' clock).
#[allow(clippy::disallowed_methods)] // above the sans-IO line: this is where time comes from
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// 16 octets of randomness from the OS (for RANDs and nonce salts): `/dev/urandom`, or the
/// standard library's randomly keyed hasher where that file does not exist.
pub fn random16() -> [u8; 16] {
    use std::io::Read;
    let mut out = [0u8; 16];
    if std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut out))
        .is_ok()
    {
        return out;
    }
    use std::collections::hash_map::RandomState;
    use std::hash::{BuildHasher, Hasher};
    for (i, chunk) in out.chunks_mut(8).enumerate() {
        let mut h = RandomState::new().build_hasher();
        h.write_usize(i);
        chunk.copy_from_slice(&h.finish().to_le_bytes());
    }
    out
}

fn sip_uri(ip: IpAddr, port: u16, user: Option<&str>) -> String {
    match user {
        Some(u) => format!("sip:{u}@{ip}:{port}"),
        None => format!("sip:{ip}:{port}"),
    }
}

fn node(host: &str, realm: &str, apps: Vec<Application>) -> Node {
    let mut cfg = NodeConfig::new(host, realm);
    cfg.applications = apps;
    cfg.request_timeout = Duration::from_secs(3);
    cfg.reconnect_interval = Some(Duration::from_secs(2));
    Node::new(cfg)
}

/// Turns one forwarding decision into proxy targets.
async fn targets(
    proxy: &ProxyEndpoint,
    fwd: Vec<Forward>,
    msg: &OwnedMessage,
    next_hop_uri: &str,
) -> Vec<(Target, Edits)> {
    let m = msg.as_message();
    let mut out = Vec::new();
    for f in fwd {
        // where to send: the explicit next hop, else the top Route we push, else the new
        // Request-URI, else the proxy's own choice
        let hop = f
            .next_hop
            .clone()
            .or_else(|| f.routes.first().map(|r| crate::cscf::uri_of(r)))
            .or_else(|| f.request_uri.clone())
            .unwrap_or_else(|| {
                if next_hop_uri.is_empty() {
                    m.request_uri_str().unwrap_or_default().to_string()
                } else {
                    next_hop_uri.to_string()
                }
            });
        let Ok(remotes) = proxy.locate(&hop).await else {
            continue;
        };
        if let Some(remote) = remotes.into_iter().next() {
            out.push((
                Target {
                    uri: f.request_uri.clone(),
                    remote,
                },
                Edits {
                    routes: f.routes,
                    headers: f.headers,
                    remove: f.remove,
                },
            ));
        }
    }
    out
}

async fn apply(
    proxy: &ProxyEndpoint,
    server: ims_txn::TxnId,
    decision: Decision,
    msg: &OwnedMessage,
    next_hop_uri: &str,
) {
    match decision {
        Decision::Reply(code) => {
            let _ = proxy.reply(server, code).await;
        }
        Decision::Forward(fwd) => {
            let t = targets(proxy, fwd, msg, next_hop_uri).await;
            if t.is_empty() {
                let _ = proxy.reply(server, 404).await;
            } else {
                let _ = proxy.forward_with(server, t, ForkMode::Parallel).await;
            }
        }
    }
}

async fn relay_ack(proxy: &ProxyEndpoint, msg: OwnedMessage, next_hop_uri: String) {
    if let Ok(r) = proxy.locate(&next_hop_uri).await {
        if let Some(remote) = r.into_iter().next() {
            let _ = proxy.forward_stateless(msg, remote).await;
        }
    }
}

fn bind_cfg(ip: IpAddr, port: u16, user: &str) -> EndpointConfig {
    EndpointConfig {
        addr: SocketAddr::new(ip, port),
        user: user.into(),
        ..EndpointConfig::default()
    }
}

fn run_rx<R: RxClient>(rx: Arc<R>, action: RxAction) {
    tokio::spawn(async move {
        match action {
            RxAction::Aar {
                session_id,
                update,
                media,
                icid,
            } => {
                let _ = rx.aar(&session_id, update, media, Some(&icid)).await;
            }
            RxAction::Str { session_id } => {
                let _ = rx.str(&session_id).await;
            }
        }
    });
}

impl ImsCore {
    /// Starts what `cfg` asks for.
    pub async fn start(cfg: CoreConfig) -> Result<ImsCore, CoreError> {
        let mut core = ImsCore {
            hss: None,
            pcrf: None,
            proxies: Vec::new(),
            nodes: Vec::new(),
            tasks: Vec::new(),
        };
        let realm = cfg.domain.clone();
        let ip = cfg.ip;
        let p = cfg.ports;

        // Diameter servers
        let (hss_host, hss_addr) = match &cfg.hss {
            Peer::Embedded(addr) => {
                let mut hss = Hss::new(Some(sip_uri(ip, p.scscf_term, None))).avoid_zero_res(true);
                for s in &cfg.subscribers {
                    hss.add_subscriber(s.clone());
                }
                let local = LocalHss::new(Arc::new(Mutex::new(hss)), realm.clone(), random16);
                let host = format!("hss.{realm}");
                let n = node(&host, &realm, vec![Application::tgpp_auth(app::CX)]);
                let bound = n.listen(*addr).await?;
                crate::net::serve_hss(&n, HssCxServer::new(&host, &realm, local.clone()));
                core.hss = Some(local);
                core.nodes.push(n);
                (host, bound)
            }
            Peer::External { host, addr } => (host.clone(), *addr),
        };
        let (pcrf_host, pcrf_addr) = match &cfg.pcrf {
            Peer::Embedded(addr) => {
                let pcrf = Arc::new(Mutex::new(Pcrf::new(None)));
                let host = format!("pcrf.{realm}");
                let n = node(&host, &realm, vec![Application::tgpp_auth(app::RX)]);
                let bound = n.listen(*addr).await?;
                crate::net::serve_pcrf(&n, PcrfRxServer::new(&host, &realm, pcrf.clone()));
                core.pcrf = Some(pcrf);
                core.nodes.push(n);
                (host, bound)
            }
            Peer::External { host, addr } => (host.clone(), *addr),
        };

        // S-CSCF
        if cfg.roles.s {
            let n = node(
                &format!("scscf.{realm}"),
                &realm,
                vec![Application::tgpp_auth(app::CX)],
            );
            n.add_peer(&hss_host, hss_addr);
            let cx = DiameterCx::new(n.clone(), &format!("scscf.{realm}"), &realm, &realm);
            core.nodes.push(n);
            let orig_uri = sip_uri(ip, p.scscf_orig, Some("orig"));
            let term_uri = sip_uri(ip, p.scscf_term, Some("term"));
            let scscf = Arc::new(Scscf::new(
                ScscfConfig {
                    server_name: sip_uri(ip, p.scscf_term, None),
                    realm: realm.clone(),
                    service_route: format!("{orig_uri};lr"),
                    registrar: cfg.registrar.clone(),
                    nonce_secret: cfg.nonce_secret.clone(),
                },
                cx,
                MemoryStore::new(),
            ));
            let routing = Arc::new(ScscfRouting {
                orig_uri,
                term_uri,
                home_domains: vec![realm.clone()],
                icscf: sip_uri(ip, p.icscf, None),
            });
            for (port, originating) in [(p.scscf_term, false), (p.scscf_orig, true)] {
                let (proxy, events) =
                    ProxyEndpoint::bind(bind_cfg(ip, port, "scscf"), true).await?;
                core.proxies.push(proxy.clone());
                let (scscf, routing) = (scscf.clone(), routing.clone());
                core.tasks.push(tokio::spawn(scscf_loop(
                    proxy,
                    events,
                    scscf,
                    routing,
                    originating,
                )));
            }
        }

        // I-CSCF
        if cfg.roles.i {
            let n = node(
                &format!("icscf.{realm}"),
                &realm,
                vec![Application::tgpp_auth(app::CX)],
            );
            n.add_peer(&hss_host, hss_addr);
            let cx = DiameterCx::new(n.clone(), &format!("icscf.{realm}"), &realm, &realm);
            core.nodes.push(n);
            let icscf = Arc::new(Icscf::new(
                IcscfConfig {
                    scscfs: vec![sip_uri(ip, p.scscf_term, None)],
                },
                cx,
                cfg.enum_table.clone(),
            ));
            let (proxy, mut events) =
                ProxyEndpoint::bind(bind_cfg(ip, p.icscf, "icscf"), false).await?;
            core.proxies.push(proxy.clone());
            core.tasks.push(tokio::spawn(async move {
                while let Some(ev) = events.recv().await {
                    match ev {
                        ProxyEvent::Request {
                            server,
                            msg,
                            next_hop_uri,
                            ..
                        } => {
                            let (proxy, icscf) = (proxy.clone(), icscf.clone());
                            tokio::spawn(async move {
                                let d = icscf.route(&msg.as_message()).await;
                                apply(&proxy, server, d, &msg, &next_hop_uri).await;
                            });
                        }
                        ProxyEvent::Ack { msg, next_hop_uri } => {
                            relay_ack(&proxy, msg, next_hop_uri).await
                        }
                        _ => {}
                    }
                }
            }));
        }

        // P-CSCF
        if cfg.roles.p {
            let n = node(
                &format!("pcscf.{realm}"),
                &realm,
                vec![Application::tgpp_auth(app::RX)],
            );
            n.add_peer(&pcrf_host, pcrf_addr);
            let rx = Arc::new(DiameterRx::new(
                n.clone(),
                &format!("pcscf.{realm}"),
                &realm,
                &realm,
            ));
            core.nodes.push(n);
            let pcscf = Arc::new(Pcscf::new(PcscfConfig {
                path_uri: sip_uri(ip, p.pcscf, Some("term")),
                icscf: sip_uri(ip, p.icscf, None),
                visited_network_id: realm.clone(),
                host: format!("pcscf.{realm}"),
            }));
            let (proxy, events) = ProxyEndpoint::bind(bind_cfg(ip, p.pcscf, "pcscf"), true).await?;
            core.proxies.push(proxy.clone());
            let core_ports = [p.icscf, p.scscf_term, p.scscf_orig];
            core.tasks.push(tokio::spawn(pcscf_loop(
                proxy, events, pcscf, rx, ip, core_ports,
            )));
        }
        Ok(core)
    }

    /// The embedded HSS (for provisioning and administrative de-registration).
    pub fn hss(&self) -> Option<&LocalHss> {
        self.hss.as_ref()
    }

    /// The embedded PCRF's state.
    pub fn pcrf(&self) -> Option<&Arc<Mutex<Pcrf>>> {
        self.pcrf.as_ref()
    }

    /// Stops every proxy, node and task.
    pub fn shutdown(&self) {
        for p in &self.proxies {
            p.shutdown();
        }
        for n in &self.nodes {
            n.shutdown();
        }
        for t in &self.tasks {
            t.abort();
        }
    }
}

async fn scscf_loop(
    proxy: ProxyEndpoint,
    mut events: ProxyEvents,
    scscf: Arc<Scscf<DiameterCx<Node>, MemoryStore>>,
    routing: Arc<ScscfRouting>,
    originating: bool,
) {
    while let Some(ev) = events.recv().await {
        match ev {
            ProxyEvent::Request {
                server,
                msg,
                next_hop_uri,
                popped_route,
                ..
            } => {
                let (proxy, scscf, routing) = (proxy.clone(), scscf.clone(), routing.clone());
                tokio::spawn(async move {
                    let m = msg.as_message();
                    let now = unix_now();
                    if m.method() == Some(Method::Register) {
                        let o = scscf.register(&m, now, random16()).await;
                        match OwnedMessage::parse_datagram(Bytes::from(o.response)) {
                            Ok(resp) => {
                                let _ = proxy.respond(server, resp).await;
                            }
                            Err(_) => {
                                let _ = proxy.reply(server, 500).await;
                            }
                        }
                        return;
                    }
                    let odi = odi_of(popped_route.as_deref());
                    let d = if originating
                        || popped_route.as_deref().is_some_and(|r| r.contains("orig@"))
                    {
                        routing.originating(scscf.store(), &m, odi).await
                    } else {
                        routing.terminating(scscf.store(), &m, odi, now).await
                    };
                    apply(&proxy, server, d, &msg, &next_hop_uri).await;
                });
            }
            ProxyEvent::Ack { msg, next_hop_uri } => relay_ack(&proxy, msg, next_hop_uri).await,
            _ => {}
        }
    }
}

async fn pcscf_loop<R: RxClient>(
    proxy: ProxyEndpoint,
    mut events: ProxyEvents,
    pcscf: Arc<Pcscf>,
    rx: Arc<R>,
    core_ip: IpAddr,
    core_ports: [u16; 3],
) {
    while let Some(ev) = events.recv().await {
        match ev {
            ProxyEvent::Request {
                server,
                msg,
                remote,
                next_hop_uri,
                popped_route,
                ..
            } => {
                let m = msg.as_message();
                let from_core = popped_route.as_deref().is_some_and(|r| r.contains("term@"))
                    || (remote.addr.ip() == core_ip && core_ports.contains(&remote.addr.port()));
                if let Some(a) = pcscf.rx_on_end(&m) {
                    run_rx(rx.clone(), a);
                }
                let d = if from_core {
                    pcscf.from_core(&m)
                } else {
                    pcscf.from_ue(&m, unix_now())
                };
                apply(&proxy, server, d, &msg, &next_hop_uri).await;
            }
            ProxyEvent::Response { msg, .. } => {
                let rx2 = rx.clone();
                if let Some(a) =
                    pcscf.on_response(&msg.as_message(), unix_now(), move || rx2.new_session_id())
                {
                    run_rx(rx.clone(), a);
                }
            }
            ProxyEvent::Ack { msg, next_hop_uri } => relay_ack(&proxy, msg, next_hop_uri).await,
            _ => {}
        }
    }
}
