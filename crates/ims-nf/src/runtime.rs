//! An IMS core on tokio: the P-, I- and S-CSCF on ims-net proxies, the Cx and Rx clients on
//! ims-net Diameter nodes, and (optionally) the embedded HSS and PCRF serving real Diameter on
//! loopback. [`ImsCore::start`] wires what [`CoreConfig`] asks for; each role can also run alone
//! against external peers.
//!
//! The S-CSCF also runs a UAC endpoint (an ephemeral port) for its own requests: reg event
//! NOTIFYs (SUBSCRIBE Event: reg is answered on both S-CSCF ports) and third-party REGISTERs to
//! the application servers of matching iFCs; a one-second timer expires bindings and
//! subscriptions; its Diameter node serves the HSS's RTR and PPR. With [`CoreConfig::admin`] the
//! embedded HSS listens for [`crate::admin`] HTTP requests. [`ImsCore::start_with_store`] puts the
//! registrations in Redis.

use crate::admin::HssAdmin;
use crate::cscf::{
    asks_originating, odi_of, Decision, Forward, Icscf, IcscfConfig, Pcscf, PcscfConfig, RxAction,
    ScscfRouting,
};
use crate::cx::LocalHss;
use crate::cx_wire::{DiameterCx, HssCxServer, ScscfCxServer, SlfTable};
use crate::enum_dns::EnumTable;
use crate::hss::{Hss, Subscriber};
use crate::pcrf::{DiameterRx, Pcrf, PcrfEvent, PcrfRxServer, RxClient};
use crate::reginfo::{Notifier, Notify};
use crate::registrar::RegistrarConfig;
use crate::scscf::{DeregistrationReason, RegEvent};
use crate::scscf::{Scscf, ScscfConfig};
use crate::store::{BindingStore, MemoryStore, RegistrationRecord, StoreError};
use bytes::Bytes;
use ims_diameter::dict::{app, command};
use ims_diameter::peer::Application;
use ims_diameter::routing::{Action, Route};
use ims_net::diameter::{Node, NodeConfig};
use ims_net::sip::{Endpoint, EndpointConfig, NetError, ProxyEndpoint, ProxyEvents};
use ims_sip::{Method, OwnedMessage};
use ims_txn::proxy::{Edits, ForkMode, ProxyEvent, Target};
use ims_txn::Remote;
use std::future::Future;
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
    /// The IM server ([`crate::im_server`]: IP-SM-GW and page-mode IM) on [`ImOptions::port`].
    pub im: bool,
}

impl Roles {
    /// All three.
    pub const ALL: Roles = Roles {
        p: true,
        i: true,
        s: true,
        im: true,
    };
}

/// The IM server of the core ([`Roles::im`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImOptions {
    /// SIP port (UDP and TCP) on [`CoreConfig::ip`]; iFC name it `sip:<ip>:<port>`.
    pub port: u16,
    /// Directory of the stored short messages (`None`: kept in memory, lost on restart).
    pub store: Option<std::path::PathBuf>,
    /// Send IMDN delivery notifications as the network.
    pub network_imdn: bool,
    /// Run the session anchor ([`crate::im_session`]: large-mode and session-mode MSRP, TS
    /// 24.247) on the IM server's SIP port: INVITEs the iFC send there are anchored.
    pub sessions: bool,
    /// TCP port of the anchor's MSRP switch on [`CoreConfig::ip`] (0: any free port; it is
    /// advertised in the SDP the anchor writes).
    pub msrp_port: u16,
}

impl Default for ImOptions {
    fn default() -> Self {
        ImOptions {
            port: 7070,
            store: None,
            network_imdn: false,
            sessions: true,
            msrp_port: 0,
        }
    }
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
    /// For the HSS only: several embedded HSSs behind an embedded SLF. The I- and S-CSCF send
    /// their Cx requests to the SLF (Dx), which redirects them (3006) to the user's HSS.
    EmbeddedSlf(SlfSetup),
}

/// Several embedded HSSs and the SLF that knows which one holds each user (TS 23.228 §4.8.1).
#[derive(Debug, Clone)]
pub struct SlfSetup {
    /// Where the SLF listens (Origin-Host `slf.<domain>`).
    pub addr: SocketAddr,
    /// The HSSs; the first one also serves the admin interface.
    pub hss: Vec<EmbeddedHss>,
    /// Redirect-Max-Cache-Time of the SLF's redirects (seconds; 0: DONT_CACHE).
    pub cache_time: u32,
}

/// One HSS of an [`SlfSetup`].
#[derive(Debug, Clone)]
pub struct EmbeddedHss {
    /// Its Diameter identity (Origin-Host), e.g. `hss2.ims.example.org`.
    pub host: String,
    /// Where it listens.
    pub addr: SocketAddr,
    /// Private identities of the [`CoreConfig::subscribers`] it holds (those named by no HSS
    /// go to the first); the SLF's table maps them and their public identities to this host.
    pub users: Vec<String>,
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
    /// Where the embedded HSS's HTTP/JSON admin interface listens ([`crate::admin`]: add
    /// subscribers, trigger RTR and PPR); `None` for none.
    pub admin: Option<SocketAddr>,
    /// The IM server, when [`Roles::im`] is set.
    pub im: ImOptions,
}

/// Options of [`ImsCore::start_with_options`] beyond [`CoreConfig`].
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct CoreOptions {
    /// Security agreement at the P-CSCF (RFC 3329, TS 33.203 §7): its protected ports and
    /// algorithm preferences; the P-CSCF also listens on the protected server port.
    pub sec_agree: Option<crate::sec_agree::SecAgreeConfig>,
    /// Where the SAs go (`None`: a [`crate::sec_agree::RecordingInstaller`], no kernel SAs).
    pub sa_installer: Option<Arc<dyn crate::sec_agree::SaInstaller>>,
    /// The S-CSCF challenges every REGISTER, also one that came over the SAs of a registered
    /// user (`integrity-protected="yes"`, TS 24.229 §5.4.1.2.2); default: not those
    /// ([`Scscf::reauthenticate_protected`]).
    pub reauthenticate_protected: bool,
    /// The SIP endpoints of the roles run here hand UDP datagrams addressed to each other over
    /// in memory, as the same bytes, instead of through loopback sockets
    /// ([`ims_net::sip::LocalLinks`]); traffic to every other peer is unchanged. Default off
    /// (every hop on the wire, as a capture of the loopback shows it).
    pub in_process: bool,
    /// The S-CSCF capabilities the embedded HSSs send in Server-Capabilities when a UAA or LIA
    /// names no S-CSCF ([`Hss::scscf_capabilities`]; the embedded HSS names its S-CSCF for
    /// registrations, so this shows in answers to REGISTRATION_AND_CAPABILITIES). Default
    /// empty: Server-Capabilities is omitted, never sent empty.
    pub scscf_capabilities: crate::hss::ScscfCapabilities,
    /// Per-subscriber S-CSCF capabilities (IMPI, capabilities) of the embedded HSSs
    /// ([`Hss::set_subscriber_capabilities`]): such a subscriber's first registration is answered
    /// with them and no Server-Name, and the I-CSCF selects an S-CSCF offering them.
    pub subscriber_capabilities: Vec<(String, crate::hss::ScscfCapabilities)>,
    /// The capabilities this core's own S-CSCF offers, for the I-CSCF's selection
    /// ([`Icscf::with_scscf_capabilities`]).
    pub own_scscf_capabilities: Vec<u32>,
    /// Other S-CSCFs the I-CSCF may select (URI, capabilities offered), after this core's own.
    pub other_scscfs: Vec<(String, Vec<u32>)>,
    /// How long the I-CSCF waits for an S-CSCF's final response to a REGISTER before it selects
    /// another S-CSCF (TS 24.229 §5.3.1.3; only when there is another to select, see
    /// [`Icscf::may_reselect`]); `None`: [`DEFAULT_SCSCF_TIMEOUT`]. A transport error counts at
    /// once.
    pub icscf_scscf_timeout: Option<Duration>,
    /// The runtime the P-CSCF runs on — its SIP endpoints and their transports, its loops, its
    /// UAC and its Rx client node (`None`: the caller's, as every other role). A second
    /// current-thread runtime on a thread of its own splits the core in two role groups: the
    /// P-CSCF with its Rx client on one thread, the I/S-CSCF with the embedded HSS and PCRF on
    /// the caller's; the tasks of one group hand work to each other without waking another
    /// thread, and the groups meet only at the P-CSCF's SIP hops and its Rx connection.
    pub pcscf_runtime: Option<tokio::runtime::Handle>,
    /// The IM server's own MSRP relay (RFC 4976): the session anchor reaches every party
    /// through it ([`crate::im_session::ImSessionConfig::relay`]) and so do the IM server's
    /// large-mode deliveries ([`crate::im_server::ImServerConfig::msrp_relay`]); `None`:
    /// parties reach the anchor's listener directly.
    pub im_msrp_relay: Option<crate::im_session::AnchorRelay>,
}

/// How long the I-CSCF waits by default for an S-CSCF's final response to a REGISTER before it
/// selects another ([`CoreOptions::icscf_scscf_timeout`]): well within the 32 s a UE's client
/// transaction waits (RFC 3261 Timer F), so the UE still gets the answer of the next S-CSCF.
pub const DEFAULT_SCSCF_TIMEOUT: Duration = Duration::from_secs(4);

impl CoreOptions {
    /// The embedded HSSs' S-CSCF capabilities ([`CoreOptions::scscf_capabilities`]).
    pub fn with_scscf_capabilities(mut self, c: crate::hss::ScscfCapabilities) -> CoreOptions {
        self.scscf_capabilities = c;
        self
    }

    /// One subscriber's S-CSCF capabilities ([`CoreOptions::subscriber_capabilities`]).
    pub fn with_subscriber_capabilities(
        mut self,
        impi: impl Into<String>,
        c: crate::hss::ScscfCapabilities,
    ) -> CoreOptions {
        self.subscriber_capabilities.push((impi.into(), c));
        self
    }

    /// The I-CSCF's S-CSCFs: the capabilities of this core's own and the other S-CSCFs it may
    /// select ([`CoreOptions::own_scscf_capabilities`], [`CoreOptions::other_scscfs`]).
    pub fn with_icscf_selection(
        mut self,
        own: Vec<u32>,
        others: Vec<(String, Vec<u32>)>,
    ) -> CoreOptions {
        self.own_scscf_capabilities = own;
        self.other_scscfs = others;
        self
    }

    /// The I-CSCF's wait for an S-CSCF's answer to a REGISTER
    /// ([`CoreOptions::icscf_scscf_timeout`]).
    pub fn with_icscf_scscf_timeout(mut self, wait: Duration) -> CoreOptions {
        self.icscf_scscf_timeout = Some(wait);
        self
    }

    /// Co-located roles hand SIP datagrams to each other in memory
    /// ([`CoreOptions::in_process`]).
    pub fn with_in_process(mut self, on: bool) -> CoreOptions {
        self.in_process = on;
        self
    }

    /// With security agreement at the P-CSCF.
    pub fn with_sec_agree(
        mut self,
        cfg: crate::sec_agree::SecAgreeConfig,
        installer: Option<Arc<dyn crate::sec_agree::SaInstaller>>,
    ) -> CoreOptions {
        self.sec_agree = Some(cfg);
        self.sa_installer = installer;
        self
    }

    /// The P-CSCF on `rt` ([`CoreOptions::pcscf_runtime`]).
    pub fn with_pcscf_runtime(mut self, rt: tokio::runtime::Handle) -> CoreOptions {
        self.pcscf_runtime = Some(rt);
        self
    }

    /// The IM server's MSRP relay ([`CoreOptions::im_msrp_relay`]).
    pub fn with_im_msrp_relay(mut self, relay: crate::im_session::AnchorRelay) -> CoreOptions {
        self.im_msrp_relay = Some(relay);
        self
    }

    /// The S-CSCF's policy for REGISTERs over the SAs
    /// ([`CoreOptions::reauthenticate_protected`]).
    pub fn with_reauthenticate_protected(mut self, every: bool) -> CoreOptions {
        self.reauthenticate_protected = every;
        self
    }
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
    /// The admin listener could not be bound.
    #[error("admin: {0}")]
    Admin(#[from] std::io::Error),
    /// The IM server did not start.
    #[error("IM server: {0}")]
    Im(#[from] crate::im_server::ImServerError),
    /// The IM server's session anchor did not start (its MSRP listener).
    #[error("IM session anchor: {0}")]
    ImSession(#[from] crate::im_session::ImSessionError),
    /// The configuration cannot be run (e.g. an SLF set up for the PCRF).
    #[error("config: {0}")]
    Config(String),
}

/// A running core.
#[derive(Debug)]
pub struct ImsCore {
    hss: Option<LocalHss>,
    hss_all: Vec<(String, LocalHss)>,
    admin: Option<SocketAddr>,
    admin_api: Option<Arc<HssAdmin<Node>>>,
    scscf: Option<Arc<ScscfServices>>,
    pcrf: Option<Arc<Mutex<Pcrf>>>,
    pcscf: Option<Arc<Pcscf>>,
    pcscf_uac: Option<SocketAddr>,
    proxies: Vec<ProxyEndpoint>,
    nodes: Vec<Node>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    im: Option<crate::im_server::ImServer>,
    im_session: Option<crate::im_session::ImSessionHandle>,
}

/// Seconds since the Unix epoch (the network functions' clock).
#[allow(clippy::disallowed_methods)] // above the sans-IO line: this is where time comes from
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The Origin-State-Id of the core's Diameter nodes (RFC 6733 §8.16): the start time, so a
/// restarted process (which lost its sessions) announces a higher one.
fn origin_state_id() -> u32 {
    ims_net::diameter::origin_state_id_at(std::time::UNIX_EPOCH + Duration::from_secs(unix_now()))
}

/// 16 octets of randomness from the OS (for RANDs and nonce salts): `/dev/urandom`, or the
/// standard library's randomly keyed hasher where that file does not exist. Each thread reads
/// the file 4 KiB at a time and hands the bytes out once each (one open/read/close per 256
/// calls instead of per call).
pub fn random16() -> [u8; 16] {
    use std::cell::RefCell;
    use std::io::Read;
    const POOL: usize = 4096;
    thread_local! {
        /// Bytes read from `/dev/urandom` and the offset of the first one not handed out yet.
        static POOLED: RefCell<(Box<[u8; POOL]>, usize)> =
            RefCell::new((Box::new([0u8; POOL]), POOL));
    }
    let mut out = [0u8; 16];
    let pooled = POOLED.with(|p| {
        let mut p = p.borrow_mut();
        let (buf, at) = &mut *p;
        if *at + 16 > POOL {
            let filled = std::fs::File::open("/dev/urandom")
                .and_then(|mut f| f.read_exact(&mut buf[..]))
                .is_ok();
            if !filled {
                return false;
            }
            *at = 0;
        }
        out.copy_from_slice(&buf[*at..*at + 16]);
        *at += 16;
        true
    });
    if pooled {
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
    cfg.origin_state_id = Some(origin_state_id());
    cfg.request_timeout = Duration::from_secs(3);
    cfg.reconnect_interval = Some(Duration::from_secs(2));
    Node::new(cfg)
}

/// The URI a forward's next hop is resolved from, borrowed: the explicit next hop, else the
/// top Route we push, else the new Request-URI, else the proxy's own choice (`next_hop_uri`,
/// else the request's Request-URI).
fn hop_of<'a>(f: &'a Forward, msg: &'a OwnedMessage, next_hop_uri: &'a str) -> &'a str {
    if let Some(h) = f.next_hop.as_deref() {
        return h;
    }
    if let Some(r) = f.routes.first() {
        return crate::cscf::uri_in(r);
    }
    if let Some(u) = f.request_uri.as_deref() {
        return u;
    }
    if next_hop_uri.is_empty() {
        msg.as_message().request_uri_str().unwrap_or_default()
    } else {
        next_hop_uri
    }
}

/// True when the host of the SIP URI `uri` is an IP address (no DNS look-up to locate it): after
/// the userinfo's `@` (RFC 3261 §25.1: no unescaped `@` elsewhere), an IPv6 reference or digits
/// and dots up to the port, parameters or headers. One pass over the bytes (it runs for every
/// next hop).
fn numeric_host(uri: &str) -> bool {
    let Some((scheme, rest)) = uri.split_once(':') else {
        return false;
    };
    if !(scheme.eq_ignore_ascii_case("sip") || scheme.eq_ignore_ascii_case("sips")) {
        return false;
    }
    let rest = rest.as_bytes();
    let host = memchr::memchr(b'@', rest).map_or(rest, |i| &rest[i + 1..]);
    if host.first() == Some(&b'[') {
        return true;
    }
    let end = host
        .iter()
        .position(|c| matches!(c, b':' | b';' | b'?' | b'>'))
        .unwrap_or(host.len());
    end > 0 && host[..end].iter().all(|c| c.is_ascii_digit() || *c == b'.')
}

/// [`ProxyEndpoint::locate`] when it needs no wait: a URI with a numeric host (RFC 3263 §4: no
/// DNS) is located at the first poll. `None`: it would wait (a host name), locate it in a job.
fn locate_now(proxy: &ProxyEndpoint, uri: &str) -> Option<Result<Vec<Remote>, NetError>> {
    if !numeric_host(uri) {
        return None;
    }
    let mut locate = std::pin::pin!(proxy.locate(uri));
    match locate
        .as_mut()
        .poll(&mut std::task::Context::from_waker(std::task::Waker::noop()))
    {
        std::task::Poll::Ready(r) => Some(r),
        std::task::Poll::Pending => None,
    }
}

/// One forward as a proxy target at `remote`.
fn target(f: Forward, remote: Remote) -> (Target, Edits) {
    (
        Target {
            uri: f.request_uri,
            remote,
        },
        Edits {
            routes: f.routes,
            headers: f.headers,
            remove: f.remove,
        },
    )
}

/// A forwarding decision whose next hops are not all located yet ([`apply_now`]): the
/// targets located so far and the forwards left, the first of which waits for its location.
struct PendingForward {
    server: ims_txn::TxnId,
    out: Vec<(Target, Edits)>,
    rest: std::vec::IntoIter<Forward>,
}

impl PendingForward {
    /// Locates the forwards left (waiting as needed) and forwards to every target found.
    async fn finish(mut self, proxy: &ProxyEndpoint, msg: &OwnedMessage, next_hop_uri: &str) {
        for f in self.rest {
            let Ok(remotes) = proxy.locate(hop_of(&f, msg, next_hop_uri)).await else {
                continue;
            };
            if let Some(remote) = remotes.into_iter().next() {
                self.out.push(target(f, remote));
            }
        }
        forward(proxy, self.server, self.out);
    }
}

/// Posts the forwarding of `server` to `targets` (404 when none was found).
fn forward(proxy: &ProxyEndpoint, server: ims_txn::TxnId, targets: Vec<(Target, Edits)>) {
    if targets.is_empty() {
        let _ = proxy.post_reply(server, 404);
    } else {
        let _ = proxy.post_forward_with(server, targets, ForkMode::Parallel);
    }
}

/// Carries out a routing decision at once when it needs no wait (every next hop numeric, as
/// between the roles of one core): no job, no future. `Some`: a next hop must be looked up —
/// finish it in a job with [`PendingForward::finish`]. The proxy's commands are posted, not
/// awaited (they run in order on the proxy task; a failure comes back as
/// [`ProxyEvent::Failed`], see [`command_failed`]).
fn apply_now(
    proxy: &ProxyEndpoint,
    server: ims_txn::TxnId,
    decision: Decision,
    msg: &OwnedMessage,
    next_hop_uri: &str,
) -> Option<PendingForward> {
    match decision {
        Decision::Reply(code) => {
            let _ = proxy.post_reply(server, code);
        }
        Decision::ReplyWith(code, headers) => {
            let m = msg.as_message();
            let mut b = ims_sip::ResponseBuilder::from_request(&m, code);
            for (n, v) in &headers {
                b = b.header(n, v.clone());
            }
            // indexed as it is written (`build`), not rendered then parsed
            match b.build() {
                Ok(r) => {
                    let _ = proxy.post_respond(server, r);
                }
                Err(_) => {
                    let _ = proxy.post_reply(server, code);
                }
            }
        }
        Decision::Discard => {
            let _ = proxy.post_discard(server);
        }
        Decision::Forward(fwd) => {
            let mut out = Vec::with_capacity(fwd.len());
            let mut rest = fwd.into_iter();
            while let Some(f) = rest.as_slice().first() {
                match locate_now(proxy, hop_of(f, msg, next_hop_uri)) {
                    None => return Some(PendingForward { server, out, rest }),
                    Some(located) => {
                        let f = rest.next().expect("the forward looked at");
                        if let Some(remote) = located.ok().and_then(|r| r.into_iter().next()) {
                            out.push(target(f, remote));
                        }
                    }
                }
            }
            forward(proxy, server, out);
        }
    }
    None
}

/// Carries out a routing decision ([`apply_now`], then the wait for a next hop's location when
/// there is one): only the location of a next hop may wait.
async fn apply(
    proxy: &ProxyEndpoint,
    server: ims_txn::TxnId,
    decision: Decision,
    msg: &OwnedMessage,
    next_hop_uri: &str,
) {
    if let Some(p) = apply_now(proxy, server, decision, msg, next_hop_uri) {
        p.finish(proxy, msg, next_hop_uri).await;
    }
}

/// Relays an ACK for a 2xx statelessly at once when its next hop is numeric; otherwise hands
/// it back (relay it with [`relay_ack`] in a job).
fn relay_ack_now(
    proxy: &ProxyEndpoint,
    msg: OwnedMessage,
    next_hop_uri: String,
) -> Option<(OwnedMessage, String)> {
    match locate_now(proxy, &next_hop_uri) {
        None => Some((msg, next_hop_uri)),
        Some(located) => {
            if let Some(remote) = located.ok().and_then(|r| r.into_iter().next()) {
                let _ = proxy.post_forward_stateless(msg, remote);
            }
            None
        }
    }
}

async fn relay_ack(proxy: &ProxyEndpoint, msg: OwnedMessage, next_hop_uri: String) {
    if let Ok(r) = proxy.locate(&next_hop_uri).await {
        if let Some(remote) = r.into_iter().next() {
            let _ = proxy.post_forward_stateless(msg, remote);
        }
    }
}

/// A command posted to a role's proxy failed ([`ProxyEvent::Failed`]). The roles treat it as
/// they treated the error of an awaited command: nothing to undo (the transaction is gone or
/// was answered meanwhile, e.g. a CANCEL or a timeout overtook the decision; a stateless ACK
/// could not be sent), so it is only logged at debug level (`IMS_DEBUG_PROXY=1` prints it).
fn command_failed(role: &str, server: Option<ims_txn::TxnId>, error: &ims_txn::TxnError) {
    static DEBUG: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    if *DEBUG.get_or_init(|| std::env::var_os("IMS_DEBUG_PROXY").is_some_and(|v| v == "1")) {
        eprintln!("{role}: proxy command for {server:?} failed: {error}");
    }
}

/// A REGISTER the I-CSCF sends to its S-CSCF on a client transaction of its own, selecting
/// another S-CSCF while the one tried does not answer (TS 24.229 §5.3.1.3): what the proxy core
/// would do for one target (Max-Forwards, the Route to the S-CSCF, its Via on top; the
/// response relayed without it), except that the final response is seen before it goes
/// upstream.
struct IcscfRegister<'a, C> {
    proxy: &'a ProxyEndpoint,
    uac: &'a Endpoint,
    icscf: &'a Icscf<C>,
    /// How long an S-CSCF has to answer.
    wait: Duration,
}

/// How sending a REGISTER to an S-CSCF went wrong ([`IcscfRegister::send`]).
enum RegisterFailure {
    /// No answer: the status the UE gets if no other S-CSCF answers — as the proxy core
    /// answers a branch that timed out (408) or failed in transport (503, passed on as 500,
    /// RFC 3261 §16.7 step 6).
    NoAnswer(u16),
    /// The request cannot be sent on at all: the UE gets this status.
    Refused(u16),
}

impl<C: crate::cx::CxClient> IcscfRegister<'_, C> {
    async fn run(
        &self,
        server: ims_txn::TxnId,
        msg: &OwnedMessage,
        mut r: crate::cscf::Reselection,
    ) {
        let mut failure = 408;
        while let Some(scscf) = r.tried.last().cloned() {
            match self.send(msg, &scscf).await {
                Ok(resp) => return self.relay(server, resp).await,
                Err(RegisterFailure::Refused(status)) => {
                    let _ = self.proxy.post_reply(server, status);
                    return;
                }
                Err(RegisterFailure::NoAnswer(status)) => failure = status,
            }
            match self.icscf.reselect(&mut r).await {
                Ok(Some(_)) => continue,
                Ok(None) | Err(_) => break,
            }
        }
        let _ = self.proxy.post_reply(server, failure);
    }

    /// Sends `msg` to `scscf` and waits (at most [`IcscfRegister::wait`]) for its final
    /// response.
    async fn send(&self, msg: &OwnedMessage, scscf: &str) -> Result<OwnedMessage, RegisterFailure> {
        let m = msg.as_message();
        let mut e = m.edit();
        e.decrement_max_forwards()
            .map_err(|_| RegisterFailure::Refused(483))?;
        e.push_front("Route", crate::cscf::lr(scscf));
        let fwd = e
            .to_owned_message()
            .map_err(|_| RegisterFailure::Refused(500))?;
        let Some(remote) = self
            .uac
            .locate(scscf)
            .await
            .ok()
            .and_then(|r| r.into_iter().next())
        else {
            return Err(RegisterFailure::NoAnswer(500));
        };
        let answer = async {
            match self.uac.request(fwd, remote).await {
                Ok(ct) => ct.final_response().await,
                Err(e) => Err(e),
            }
        };
        match tokio::time::timeout(self.wait, answer).await {
            Ok(Ok(resp)) => Ok(resp),
            Ok(Err(ims_net::sip::NetError::Timeout)) | Err(_) => {
                Err(RegisterFailure::NoAnswer(408))
            }
            Ok(Err(_)) => Err(RegisterFailure::NoAnswer(500)),
        }
    }

    /// The S-CSCF's final response, our Via off, upstream (a 503 as 500, §16.7 step 6).
    async fn relay(&self, server: ims_txn::TxnId, resp: OwnedMessage) {
        let m = resp.as_message();
        if m.status() == Some(503) {
            let _ = self.proxy.post_reply(server, 500);
            return;
        }
        let mut e = m.edit();
        e.pop_via();
        match e.to_owned_message() {
            Ok(out) => {
                let _ = self.proxy.post_respond(server, out);
            }
            Err(_) => {
                let _ = self.proxy.post_reply(server, 500);
            }
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

/// What the P-CSCF needs to start ([`PcscfStart::start`]), owned: it may start on a runtime
/// of its own ([`CoreOptions::pcscf_runtime`]).
struct PcscfStart {
    ip: IpAddr,
    p: Ports,
    realm: String,
    pcrf_host: String,
    pcrf_addr: SocketAddr,
    pcrf_embedded: bool,
    sec_agree: Option<crate::sec_agree::SecAgreeConfig>,
    sa_installer: Option<Arc<dyn crate::sec_agree::SaInstaller>>,
    links: Option<ims_net::sip::LocalLinks>,
}

/// The parts of a started P-CSCF the core keeps.
struct PcscfParts {
    pcscf: Arc<Pcscf>,
    uac_addr: SocketAddr,
    node: Node,
    proxies: Vec<ProxyEndpoint>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    /// Its Rx client node and the embedded PCRF's host, to wait for (see `embedded_peers`).
    embedded_peer: Option<(Node, String)>,
}

impl PcscfStart {
    /// Binds the P-CSCF's endpoints (proxy, UAC, the protected port with sec-agree) and its Rx
    /// client node, and spawns its tasks, all on the current runtime.
    async fn start(self) -> Result<PcscfParts, CoreError> {
        let PcscfStart {
            ip,
            p,
            realm,
            pcrf_host,
            pcrf_addr,
            pcrf_embedded,
            sec_agree,
            sa_installer,
            links,
        } = self;
        let bind_cfg = |ip: IpAddr, port: u16, user: &str| EndpointConfig {
            local: links.clone(),
            ..bind_cfg(ip, port, user)
        };
        let mut tasks = Vec::new();
        let mut proxies = Vec::new();
        let n = node(
            &format!("pcscf.{realm}"),
            &realm,
            vec![Application::tgpp_auth(app::RX)],
        );
        n.add_peer(&pcrf_host, pcrf_addr);
        let embedded_peer = pcrf_embedded.then(|| (n.clone(), pcrf_host.clone()));
        let rx = Arc::new(DiameterRx::new(
            n.clone(),
            &format!("pcscf.{realm}"),
            &realm,
            &realm,
        ));
        let mut pcscf = Pcscf::new(PcscfConfig {
            path_uri: sip_uri(ip, p.pcscf, Some("term")),
            icscf: sip_uri(ip, p.icscf, None),
            visited_network_id: realm.clone(),
            host: format!("pcscf.{realm}"),
        });
        if let Some(sec) = sec_agree.clone() {
            let installer = sa_installer
                .clone()
                .unwrap_or_else(|| Arc::new(crate::sec_agree::RecordingInstaller::default()));
            pcscf = pcscf.with_sec_agree(crate::sec_agree::SecAgree::new(sec, installer));
        }
        let pcscf = Arc::new(pcscf);
        let chains: Arc<RxChains> = Arc::default();
        // the P-CSCF as a UAC: the BYEs of a network-initiated release and the reg event
        // subscriptions (TS 24.229 §5.2.3), whose NOTIFYs come back to this endpoint
        let (uac, uac_in) = Endpoint::bind(bind_cfg(ip, 0, "pcscf")).await?;
        let uac_addr = uac.local_addr();
        let pending: Arc<PendingInvites> = Arc::default();
        let release = Arc::new(PcscfRelease {
            pcscf: pcscf.clone(),
            pending: pending.clone(),
            notify_contact: sip_uri(ip, p.pcscf, Some("reg")),
            rx: rx.clone(),
            chains: chains.clone(),
            uac,
            origin_host: format!("pcscf.{realm}"),
            realm: realm.clone(),
        });
        let reg_due = Arc::new(tokio::sync::Notify::new());
        let mut uac_in = uac_in;
        tasks.push(tokio::spawn(async move {
            while uac_in.recv().await.is_some() {}
        }));
        tasks.push(tokio::spawn(
            release.clone().subscribe_loop(reg_due.clone()),
        ));
        for code in [command::ABORT_SESSION, command::RE_AUTH] {
            let release = release.clone();
            n.handle(app::RX, code, move |req| {
                let release = release.clone();
                async move { release.on_pcrf_request(req.message.bytes()) }
            });
        }
        let node = n;
        let (proxy, events) = ProxyEndpoint::bind(bind_cfg(ip, p.pcscf, "pcscf"), true).await?;
        // TS 24.229 §5.2.2.1: CK/IK leave the 401 here; with sec-agree our Security-Server
        // goes in
        let filter = {
            let pcscf = pcscf.clone();
            ims_txn::proxy::ResponseFilter::new(move |m| pcscf.filter_response(m, unix_now()))
        };
        proxy.set_response_filter(Some(filter.clone())).await?;
        proxies.push(proxy.clone());
        let core_ports = [p.icscf, p.scscf_term, p.scscf_orig];
        if let Some(sec) = &sec_agree {
            // the protected server port: what arrives here came over the UE's SA; requests
            // toward UEs with SAs leave from the protected client port (TS 33.203 §7.1)
            let mut pcfg = bind_cfg(ip, sec.port_s, "pcscf");
            if let Some(s) = pcscf.sec_agree() {
                pcfg.client_port = Some(ims_net::sip::ClientPort {
                    port: sec.port_c,
                    peers: s.protected_peers(),
                });
            }
            let (pproxy, pevents) = ProxyEndpoint::bind(pcfg, true).await?;
            pproxy.set_response_filter(Some(filter)).await?;
            proxies.push(pproxy.clone());
            tasks.push(tokio::spawn(pcscf_loop(
                pproxy,
                pevents,
                pcscf.clone(),
                rx.clone(),
                chains.clone(),
                ip,
                core_ports,
                reg_due.clone(),
                pending.clone(),
                release.clone(),
                true,
            )));
        }
        let kept = pcscf.clone();
        tasks.push(tokio::spawn(pcscf_loop(
            proxy, events, pcscf, rx, chains, ip, core_ports, reg_due, pending, release, false,
        )));

        Ok(PcscfParts {
            pcscf: kept,
            uac_addr,
            node,
            proxies,
            tasks,
            embedded_peer,
        })
    }
}

/// The last Rx exchange started for each Rx session: the next one for the same session waits
/// for it, so an STR never overtakes the AAR it ends (both run as tasks; the call's SIP events
/// start them in order).
type RxChains = Mutex<std::collections::HashMap<String, tokio::sync::oneshot::Receiver<()>>>;

/// The Rx exchange of `action` as a job (run it on the caller's [`local::LocalTasks`], or
/// spawn it): chained after the previous one of its session.
fn rx_job<R: RxClient>(
    rx: Arc<R>,
    chains: &Arc<RxChains>,
    action: RxAction,
) -> impl std::future::Future<Output = ()> + Send + 'static {
    let (session, ends) = match &action {
        RxAction::Aar { session_id, .. } => (session_id.clone(), false),
        RxAction::Str { session_id } => (session_id.clone(), true),
    };
    let (done, next) = tokio::sync::oneshot::channel();
    let previous = {
        let mut c = chains.lock().expect("Rx chain lock");
        if ends {
            c.remove(&session)
        } else {
            c.insert(session, next)
        }
    };
    async move {
        if let Some(p) = previous {
            let _ = p.await;
        }
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
        let _ = done.send(());
    }
}

impl ImsCore {
    /// Starts what `cfg` asks for.
    pub async fn start(cfg: CoreConfig) -> Result<ImsCore, CoreError> {
        Self::start_with_store(cfg, CoreStore::Memory(MemoryStore::new())).await
    }

    /// [`ImsCore::start`] with the S-CSCF's registrations in `store` (e.g. Redis, shared by
    /// several S-CSCF instances and surviving a restart).
    pub async fn start_with_store(cfg: CoreConfig, store: CoreStore) -> Result<ImsCore, CoreError> {
        Self::start_with_options(cfg, store, CoreOptions::default()).await
    }

    /// [`ImsCore::start_with_store`] with [`CoreOptions`] (security agreement at the P-CSCF).
    pub async fn start_with_options(
        cfg: CoreConfig,
        store: CoreStore,
        options: CoreOptions,
    ) -> Result<ImsCore, CoreError> {
        let links = options.in_process.then(ims_net::sip::LocalLinks::new);
        let bind_cfg = |ip: IpAddr, port: u16, user: &str| EndpointConfig {
            local: links.clone(),
            ..bind_cfg(ip, port, user)
        };
        let mut core = ImsCore {
            hss: None,
            hss_all: Vec::new(),
            admin: None,
            admin_api: None,
            scscf: None,
            pcrf: None,
            pcscf: None,
            pcscf_uac: None,
            proxies: Vec::new(),
            nodes: Vec::new(),
            tasks: Vec::new(),
            im: None,
            im_session: None,
        };
        // the parts are started inside this block; when one fails, those already running
        // (Diameter listeners, SIP endpoints, tasks) are stopped before the error is returned,
        // so a failed start leaves no port bound
        let started: Result<(), CoreError> = async {
            let realm = cfg.domain.clone();
            let ip = cfg.ip;
            let p = cfg.ports;
            // Client nodes whose peer is embedded: start() returns once they are open, so the first
            // REGISTER does not meet a 504 while the loopback CER/CEA is still in flight.
            let mut embedded_peers = Vec::new();

            // Diameter servers
            let mut hss_known: Vec<(String, SocketAddr)> = Vec::new();
            let mut via_slf = false;
            let (hss_host, hss_addr) = match &cfg.hss {
                Peer::Embedded(addr) => {
                    let (host, bound) = core
                        .embedded_hss(
                            &cfg,
                            &options,
                            &format!("hss.{realm}"),
                            *addr,
                            &cfg.subscribers,
                            true,
                        )
                        .await?;
                    (host, bound)
                }
                Peer::EmbeddedSlf(setup) => {
                    let Some(first) = setup.hss.first() else {
                        return Err(CoreError::Config("an SLF needs at least one HSS".into()));
                    };
                    let mut table = SlfTable::new(setup.cache_time);
                    for (i, h) in setup.hss.iter().enumerate() {
                        let mine: Vec<Subscriber> = cfg
                            .subscribers
                            .iter()
                            .filter(|s| {
                                let impi = &s.subscription.private_id;
                                h.users.iter().any(|u| u.eq_ignore_ascii_case(impi))
                                    || (i == 0
                                        && !setup.hss.iter().any(|o| {
                                            o.users.iter().any(|u| u.eq_ignore_ascii_case(impi))
                                        }))
                            })
                            .cloned()
                            .collect();
                        for s in &mine {
                            table.insert(&s.subscription.private_id, &h.host);
                            for p in s.subscription.public_identities() {
                                table.insert(&p.identity, &h.host);
                            }
                        }
                        let (_, bound) = core
                            .embedded_hss(&cfg, &options, &h.host, h.addr, &mine, i == 0)
                            .await?;
                        hss_known.push((h.host.clone(), bound));
                    }
                    let _ = first;
                    // the SLF: an HSS without subscribers whose table redirects every known user
                    let empty = LocalHss::new(
                        Arc::new(Mutex::new(Hss::new(None))),
                        realm.clone(),
                        random16,
                    );
                    let host = format!("slf.{realm}");
                    let n = node(&host, &realm, vec![Application::tgpp_auth(app::CX)]);
                    let bound = n.listen(setup.addr).await?;
                    crate::net::serve_hss(
                        &n,
                        HssCxServer::new(&host, &realm, empty).with_slf(table),
                    );
                    core.nodes.push(n);
                    via_slf = true;
                    (host, bound)
                }
                Peer::External { host, addr } => (host.clone(), *addr),
            };
            let hss_embedded = !matches!(cfg.hss, Peer::External { .. });
            // a Cx client node: to the HSS, or to the SLF with the HSSs known by address (a 3006
            // names them) and a route sending requests without Destination-Host to the SLF
            let cx_node = |host: &str| {
                let mut c = NodeConfig::new(host, &realm);
                c.applications = vec![Application::tgpp_auth(app::CX)];
                c.origin_state_id = Some(origin_state_id());
                c.request_timeout = Duration::from_secs(3);
                c.reconnect_interval = Some(Duration::from_secs(2));
                if via_slf {
                    c.routes = vec![Route::new(&realm, Action::Proxy, &[hss_host.as_str()])
                        .for_application(app::CX)];
                }
                let n = Node::new(c);
                n.add_peer(&hss_host, hss_addr);
                for (h, a) in &hss_known {
                    n.add_known_host(h, *a);
                }
                n
            };
            let (pcrf_host, pcrf_addr) = match &cfg.pcrf {
                Peer::Embedded(addr) => {
                    let pcrf = Arc::new(Mutex::new(Pcrf::new(None)));
                    let host = format!("pcrf.{realm}");
                    let n = node(&host, &realm, vec![Application::tgpp_auth(app::RX)]);
                    let bound = n.listen(*addr).await?;
                    crate::net::serve_pcrf(&n, PcrfRxServer::new(&host, &realm, pcrf.clone()));
                    // a P-CSCF that comes back with a new Origin-State-Id lost its calls: it will
                    // never end their Rx sessions (RFC 6733 §8.16)
                    let sessions = pcrf.clone();
                    n.on_peer_restart(move |r| {
                        sessions
                            .lock()
                            .expect("PCRF lock")
                            .drop_sessions_of(&r.origin_host);
                    });
                    if let Some(a) = &core.admin_api {
                        // the admin interface's /pcrf/asr and /pcrf/rar
                        a.set_pcrf(pcrf.clone(), n.clone(), &host, &realm);
                    }
                    core.pcrf = Some(pcrf);
                    core.nodes.push(n);
                    (host, bound)
                }
                Peer::External { host, addr } => (host.clone(), *addr),
                Peer::EmbeddedSlf(_) => {
                    return Err(CoreError::Config(
                        "an SLF is for the HSS, not the PCRF".into(),
                    ))
                }
            };

            // S-CSCF
            if cfg.roles.s {
                let n = cx_node(&format!("scscf.{realm}"));
                if hss_embedded {
                    embedded_peers.push((n.clone(), hss_host.clone()));
                }
                let cx = DiameterCx::new(n.clone(), &format!("scscf.{realm}"), &realm, &realm)
                    .starting_at(unix_now());
                core.nodes.push(n);
                let orig_uri = sip_uri(ip, p.scscf_orig, Some("orig"));
                let term_uri = sip_uri(ip, p.scscf_term, Some("term"));
                let scscf = Arc::new(
                    Scscf::new(
                        ScscfConfig {
                            server_name: sip_uri(ip, p.scscf_term, None),
                            realm: realm.clone(),
                            service_route: format!("{orig_uri};lr"),
                            registrar: cfg.registrar.clone(),
                            nonce_secret: cfg.nonce_secret.clone(),
                        },
                        cx,
                        store,
                    )
                    .reauthenticate_protected(options.reauthenticate_protected),
                );
                // the S-CSCF as a UAC: reg event NOTIFYs and third-party REGISTERs
                let (uac, mut uac_in) = Endpoint::bind(bind_cfg(ip, 0, "scscf")).await?;
                core.tasks.push(tokio::spawn(async move {
                    // nothing is addressed to this endpoint but responses; drain the rest
                    while uac_in.recv().await.is_some() {}
                }));
                let services = Arc::new(ScscfServices {
                    scscf: scscf.clone(),
                    uac,
                    notifier: Mutex::new(Notifier::new(orig_uri.clone())),
                });
                core.scscf = Some(services.clone());
                // the timer task also runs the NOTIFYs and third-party REGISTERs of its own events
                // and of the HSS's RTR/PPR
                let mut timer_jobs = local::LocalTasks::new();
                let on_cx = (services.clone(), timer_jobs.spawner());
                crate::net::serve_scscf(
                    core.nodes.last().expect("the S-CSCF node was pushed"),
                    ScscfCxServer::new(&format!("scscf.{realm}"), &realm, scscf.clone()),
                    move |events| {
                        let (s, spawn) = on_cx.clone();
                        on_cx
                            .1
                            .spawn(async move { s.on_events(events, None, &spawn).await });
                    },
                );
                // the registration timer (TS 24.229 §5.4.1.7) and subscription expiry, every second
                let timer = services.clone();
                core.tasks.push(tokio::spawn(async move {
                    let spawn = timer_jobs.spawner();
                    let mut tick = tokio::time::interval(Duration::from_secs(1));
                    loop {
                        timer_jobs
                            .next(async {
                                tick.tick().await;
                                let now = unix_now();
                                let events = timer.scscf.expire(now).await;
                                if !events.is_empty() {
                                    timer.on_events(events, None, &spawn).await;
                                }
                                timer.expire_subscriptions(now, &spawn).await;
                            })
                            .await;
                    }
                }));
                let routing = Arc::new(ScscfRouting {
                    orig_uri,
                    term_uri,
                    home_domains: vec![realm.clone()],
                    icscf: sip_uri(ip, p.icscf, None),
                    profiles: services.scscf.profiles(),
                });
                for (port, originating) in [(p.scscf_term, false), (p.scscf_orig, true)] {
                    let (proxy, events) =
                        ProxyEndpoint::bind(bind_cfg(ip, port, "scscf"), true).await?;
                    core.proxies.push(proxy.clone());
                    let (services, routing) = (services.clone(), routing.clone());
                    core.tasks.push(tokio::spawn(scscf_loop(
                        proxy,
                        events,
                        services,
                        routing,
                        originating,
                    )));
                }
            }

            // I-CSCF
            if cfg.roles.i {
                let n = cx_node(&format!("icscf.{realm}"));
                if hss_embedded {
                    embedded_peers.push((n.clone(), hss_host.clone()));
                }
                let cx = DiameterCx::new(n.clone(), &format!("icscf.{realm}"), &realm, &realm)
                    .starting_at(unix_now());
                core.nodes.push(n);
                let own = sip_uri(ip, p.scscf_term, None);
                let mut scscfs = vec![own.clone()];
                scscfs.extend(options.other_scscfs.iter().map(|(u, _)| u.clone()));
                let mut icscf = Icscf::new(IcscfConfig { scscfs }, cx, cfg.enum_table.clone())
                    .with_scscf_capabilities(own, options.own_scscf_capabilities.clone());
                for (uri, c) in &options.other_scscfs {
                    icscf = icscf.with_scscf_capabilities(uri.clone(), c.clone());
                }
                let icscf = Arc::new(icscf);
                let (proxy, mut events) =
                    ProxyEndpoint::bind(bind_cfg(ip, p.icscf, "icscf"), false).await?;
                core.proxies.push(proxy.clone());
                // the I-CSCF as a UAC: a REGISTER that may need another S-CSCF goes out on a client
                // transaction of its own, so a missing answer is seen before the UE gets one
                let (uac, mut uac_in) = Endpoint::bind(bind_cfg(ip, 0, "icscf")).await?;
                core.tasks.push(tokio::spawn(async move {
                    // nothing is addressed to this endpoint but responses; drain the rest
                    while uac_in.recv().await.is_some() {}
                }));
                let wait = options.icscf_scscf_timeout.unwrap_or(DEFAULT_SCSCF_TIMEOUT);
                core.tasks.push(tokio::spawn(async move {
                    // each request's handler runs in this task, its UAR/LIR awaited without
                    // holding up the others
                    let mut jobs = local::LocalTasks::new();
                    while let Some(ev) = jobs.next(events.recv()).await {
                        match ev {
                            ProxyEvent::Request {
                                server,
                                msg,
                                next_hop_uri,
                                ..
                            } => {
                                let (proxy, icscf, uac) =
                                    (proxy.clone(), icscf.clone(), uac.clone());
                                jobs.push(async move {
                                    let m = msg.as_message();
                                    let d = if m.method() == Some(Method::Register) {
                                        match icscf.route_register(&m).await {
                                            (Decision::Forward(_), Some(r))
                                                if icscf.may_reselect(&r) =>
                                            {
                                                let reg = IcscfRegister {
                                                    proxy: &proxy,
                                                    uac: &uac,
                                                    icscf: &icscf,
                                                    wait,
                                                };
                                                return reg.run(server, &msg, r).await;
                                            }
                                            (d, _) => d,
                                        }
                                    } else {
                                        icscf.route(&m).await
                                    };
                                    apply(&proxy, server, d, &msg, &next_hop_uri).await;
                                });
                            }
                            ProxyEvent::Ack { msg, next_hop_uri } => {
                                if let Some((msg, next_hop_uri)) =
                                    relay_ack_now(&proxy, msg, next_hop_uri)
                                {
                                    let proxy = proxy.clone();
                                    jobs.push(
                                        async move { relay_ack(&proxy, msg, next_hop_uri).await },
                                    );
                                }
                            }
                            ProxyEvent::Failed { server, error } => {
                                command_failed("i-cscf", server, &error)
                            }
                            _ => {}
                        }
                    }
                    jobs.drain().await;
                }));
            }

            // P-CSCF: on its own runtime when one is given (CoreOptions::pcscf_runtime)
            if cfg.roles.p {
                let start = PcscfStart {
                    ip,
                    p,
                    realm: realm.clone(),
                    pcrf_host: pcrf_host.clone(),
                    pcrf_addr,
                    pcrf_embedded: matches!(cfg.pcrf, Peer::Embedded(_)),
                    sec_agree: options.sec_agree.clone(),
                    sa_installer: options.sa_installer.clone(),
                    links: links.clone(),
                };
                let parts = match &options.pcscf_runtime {
                    Some(rt) => rt
                        .spawn(start.start())
                        .await
                        .map_err(|e| CoreError::Config(format!("the P-CSCF's runtime: {e}")))??,
                    None => start.start().await?,
                };
                core.pcscf = Some(parts.pcscf);
                core.pcscf_uac = Some(parts.uac_addr);
                core.nodes.push(parts.node);
                core.proxies.extend(parts.proxies);
                core.tasks.extend(parts.tasks);
                embedded_peers.extend(parts.embedded_peer);
            }
            if cfg.roles.im {
                let (im, anchor) = start_im(&cfg, options.im_msrp_relay.clone()).await?;
                core.im = Some(im);
                core.im_session = anchor;
            }
            for (n, host) in &embedded_peers {
                // An embedded peer on loopback opens in milliseconds; should it not within the bound,
                // the core still starts and answers 504 until it does (as with an external peer).
                let _ = n.wait_open(host, Duration::from_secs(5)).await;
            }
            Ok(())
        }
        .await;
        match started {
            Ok(()) => Ok(core),
            Err(e) => {
                core.shutdown();
                for n in &core.nodes {
                    let _ = n.wait_stopped(Duration::from_secs(2)).await;
                }
                Err(e)
            }
        }
    }

    /// The embedded HSS (for provisioning and administrative de-registration).
    pub fn hss(&self) -> Option<&LocalHss> {
        self.hss.as_ref()
    }

    /// The embedded HSS with this Diameter identity (with [`Peer::EmbeddedSlf`] there are
    /// several; with [`Peer::Embedded`] the one is `hss.<domain>`).
    pub fn hss_named(&self, host: &str) -> Option<&LocalHss> {
        self.hss_all
            .iter()
            .find(|(h, _)| h.eq_ignore_ascii_case(host))
            .map(|(_, l)| l)
    }

    /// Starts one embedded HSS (Cx on `addr`, the admin interface when `admin` and configured).
    async fn embedded_hss(
        &mut self,
        cfg: &CoreConfig,
        options: &CoreOptions,
        host: &str,
        addr: SocketAddr,
        subscribers: &[Subscriber],
        admin: bool,
    ) -> Result<(String, SocketAddr), CoreError> {
        let realm = &cfg.domain;
        let mut hss = Hss::new(Some(sip_uri(cfg.ip, cfg.ports.scscf_term, None)))
            .avoid_zero_res(true)
            .scscf_capabilities(options.scscf_capabilities.clone());
        for s in subscribers {
            hss.add_subscriber(s.clone());
            let impi = &s.subscription.private_id;
            if let Some((_, c)) = options
                .subscriber_capabilities
                .iter()
                .find(|(i, _)| i == impi)
            {
                hss.set_subscriber_capabilities(impi, c.clone());
            }
        }
        let local = LocalHss::new(Arc::new(Mutex::new(hss)), realm.clone(), random16);
        let n = node(host, realm, vec![Application::tgpp_auth(app::CX)]);
        let bound = n.listen(addr).await?;
        crate::net::serve_hss(&n, HssCxServer::new(host, realm, local.clone()));
        if let (true, Some(a)) = (admin, cfg.admin) {
            let adm = Arc::new(
                HssAdmin::new(
                    local.clone(),
                    n.clone(),
                    host,
                    realm,
                    &format!("scscf.{realm}"),
                )
                .starting_at(unix_now()),
            );
            let listener = tokio::net::TcpListener::bind(a).await?;
            self.admin = Some(listener.local_addr()?);
            self.admin_api = Some(adm.clone());
            self.tasks
                .push(tokio::spawn(crate::admin::serve_http(listener, adm)));
        } else if let Some(adm) = &self.admin_api {
            // another HSS behind the SLF: the one admin interface drives it too
            adm.add_hss(local.clone(), n.clone(), host);
        }
        if self.hss.is_none() {
            self.hss = Some(local.clone());
        }
        self.hss_all.push((host.to_string(), local));
        self.nodes.push(n);
        Ok((host.to_string(), bound))
    }

    /// Where the admin interface listens (when [`CoreConfig::admin`] asked for one).
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin
    }

    /// The transport counters of the SIP proxies of the roles run here (P-, I-, S-CSCF ports),
    /// by local address: e.g. how many datagrams went to a co-located role in memory
    /// ([`CoreOptions::in_process`]).
    pub fn sip_transport_stats(&self) -> Vec<(SocketAddr, ims_net::sip::TransportStats)> {
        self.proxies
            .iter()
            .map(|p| (p.local_addr(), p.transport_stats()))
            .collect()
    }

    /// The number of registrations the S-CSCF holds and of live reg event subscriptions.
    pub fn scscf_state(&self) -> Option<(usize, usize)> {
        self.scscf.as_ref().map(|s| {
            (
                s.scscf.registrations(),
                s.notifier.lock().expect("notifier lock").len(),
            )
        })
    }

    /// The embedded PCRF's state.
    pub fn pcrf(&self) -> Option<&Arc<Mutex<Pcrf>>> {
        self.pcrf.as_ref()
    }

    /// The P-CSCF's state (its UEs' registrations, reg event subscriptions), when
    /// [`Roles::p`] is set.
    pub fn pcscf(&self) -> Option<&Arc<Pcscf>> {
        self.pcscf.as_ref()
    }

    /// Where the P-CSCF's own requests leave from (BYEs of a release, reg event SUBSCRIBEs)
    /// and its reg event NOTIFYs arrive.
    pub fn pcscf_uac_addr(&self) -> Option<SocketAddr> {
        self.pcscf_uac
    }

    /// The IM server, when [`Roles::im`] is set.
    pub fn im_server(&self) -> Option<&crate::im_server::ImServer> {
        self.im.as_ref()
    }

    /// The IM server's session anchor, when [`ImOptions::sessions`] is set.
    pub fn im_session(&self) -> Option<&crate::im_session::ImSessionHandle> {
        self.im_session.as_ref()
    }

    /// Stops every proxy, node and task.
    pub fn shutdown(&self) {
        if let Some(a) = &self.im_session {
            a.shutdown();
        }
        if let Some(im) = &self.im {
            im.shutdown();
        }
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

/// The IM server of the core: MT requests through the S-CSCF's terminating side, the MSISDN map
/// from the subscribers' implicit registration sets; with [`ImOptions::sessions`] the session
/// anchor shares its SIP endpoint (B legs without a Route set left go to the S-CSCF's
/// terminating side too).
async fn start_im(
    cfg: &CoreConfig,
    relay: Option<crate::im_session::AnchorRelay>,
) -> Result<
    (
        crate::im_server::ImServer,
        Option<crate::im_session::ImSessionHandle>,
    ),
    CoreError,
> {
    use crate::im_server::{ImServer, ImServerConfig, Numbering};
    use crate::im_session::ImSessionConfig;
    let mut im = ImServerConfig::new(
        SocketAddr::new(cfg.ip, cfg.im.port),
        &cfg.domain,
        &sip_uri(cfg.ip, cfg.ports.scscf_term, Some("term")),
    );
    let sets: Vec<Vec<String>> = cfg
        .subscribers
        .iter()
        .flat_map(|s| &s.subscription.service_profiles)
        .map(|sp| {
            sp.public_identities
                .iter()
                .filter(|p| !p.barring_indication)
                .map(|p| p.identity.clone())
                .collect()
        })
        .collect();
    im.numbering = Numbering::from_sets(sets.iter().map(Vec::as_slice));
    im.store = cfg.im.store.clone();
    im.network_imdn = cfg.im.network_imdn;
    // the anchor and the large-mode deliveries reach parties through the same relay
    im.msrp_relay = relay.clone();
    if !cfg.im.sessions {
        return Ok((ImServer::start(im).await?, None));
    }
    let scscf = im.scscf.clone();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let server = ImServer::start_with(im, Some(tx)).await?;
    let anchor_cfg = ImSessionConfig {
        msrp_addr: SocketAddr::new(cfg.ip, cfg.im.msrp_port),
        route: vec![format!("<{scscf};lr>")],
        // a B leg of an INVITE that came with no Route left goes to the S-CSCF that registered
        // the caller at the IM server (TS 24.229 §5.7.3), e.g. another S-CSCF of the I-CSCF's
        serving: Some(server.serving_scscf()),
        relay,
        ..ImSessionConfig::default()
    }
    .next_hop_uri(&scscf);
    let anchor = crate::im_session::start_on(anchor_cfg, server.endpoint().clone(), rx).await;
    match anchor {
        Ok(a) => Ok((server, Some(a))),
        Err(e) => {
            server.shutdown();
            Err(e.into())
        }
    }
}

type RuntimeScscf = Scscf<DiameterCx<Node>, CoreStore>;

/// Where the S-CSCF of an [`ImsCore`] keeps its registrations.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum CoreStore {
    /// In this process ([`MemoryStore`]).
    Memory(MemoryStore),
    /// In Redis ([`crate::redis::RedisStore`], feature `redis`): several S-CSCF instances share
    /// the registrations and a restarted one keeps them.
    #[cfg(feature = "redis")]
    Redis(Arc<crate::redis::RedisStore>),
}

impl BindingStore for CoreStore {
    async fn load(&self, impu: &str) -> Result<Option<RegistrationRecord>, StoreError> {
        match self {
            CoreStore::Memory(s) => s.load(impu).await,
            #[cfg(feature = "redis")]
            CoreStore::Redis(s) => s.load(impu).await,
        }
    }

    async fn load_shared(&self, impu: &str) -> Result<Option<Arc<RegistrationRecord>>, StoreError> {
        match self {
            CoreStore::Memory(s) => s.load_shared(impu).await,
            #[cfg(feature = "redis")]
            CoreStore::Redis(s) => s.load_shared(impu).await,
        }
    }

    async fn load_bindings(
        &self,
        impu: &str,
    ) -> Result<Option<Arc<RegistrationRecord>>, StoreError> {
        match self {
            CoreStore::Memory(s) => s.load_bindings(impu).await,
            #[cfg(feature = "redis")]
            CoreStore::Redis(s) => s.load_bindings(impu).await,
        }
    }

    async fn contains(&self, impu: &str) -> Result<bool, StoreError> {
        match self {
            CoreStore::Memory(s) => s.contains(impu).await,
            #[cfg(feature = "redis")]
            CoreStore::Redis(s) => s.contains(impu).await,
        }
    }

    async fn save(&self, rec: &RegistrationRecord) -> Result<(), StoreError> {
        match self {
            CoreStore::Memory(s) => s.save(rec).await,
            #[cfg(feature = "redis")]
            CoreStore::Redis(s) => s.save(rec).await,
        }
    }

    async fn remove(&self, rec: &RegistrationRecord) -> Result<(), StoreError> {
        match self {
            CoreStore::Memory(s) => s.remove(rec).await,
            #[cfg(feature = "redis")]
            CoreStore::Redis(s) => s.remove(rec).await,
        }
    }

    async fn save_alias(
        &self,
        alias: &str,
        target: &str,
        now: u64,
        expires_at: u64,
    ) -> Result<(), StoreError> {
        match self {
            CoreStore::Memory(s) => s.save_alias(alias, target, now, expires_at).await,
            #[cfg(feature = "redis")]
            CoreStore::Redis(s) => s.save_alias(alias, target, now, expires_at).await,
        }
    }

    async fn load_alias(&self, alias: &str, now: u64) -> Result<Option<String>, StoreError> {
        match self {
            CoreStore::Memory(s) => s.load_alias(alias, now).await,
            #[cfg(feature = "redis")]
            CoreStore::Redis(s) => s.load_alias(alias, now).await,
        }
    }
}

/// What the S-CSCF does besides proxying: reg event subscriptions and NOTIFYs, third-party
/// REGISTERs, acting on registration changes.
struct ScscfServices {
    scscf: Arc<RuntimeScscf>,
    uac: Endpoint,
    notifier: Mutex<Notifier>,
}

impl std::fmt::Debug for ScscfServices {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScscfServices").finish_non_exhaustive()
    }
}

fn hex_id() -> String {
    ims_auth::encoding::hex_encode(&random16()[..8])
}

impl ScscfServices {
    /// Sends NOTIFYs; a subscription whose NOTIFY fails (non-2xx, timeout, no route) ends
    /// (RFC 6665 §4.2.2).
    fn send_notifies(self: &Arc<Self>, notifies: Vec<Notify>, spawn: &local::Spawner) {
        for n in notifies {
            let me = self.clone();
            spawn.spawn(async move {
                let ok = async {
                    let msg = n.request.ok()?;
                    let remote = me.uac.locate(&n.next_hop).await.ok()?.into_iter().next()?;
                    let resp = me
                        .uac
                        .request(msg, remote)
                        .await
                        .ok()?
                        .final_response()
                        .await
                        .ok()?;
                    Some((200..300).contains(&resp.status().unwrap_or(500)))
                }
                .await
                .unwrap_or(false);
                if !ok {
                    me.notifier.lock().expect("notifier lock").remove(&n.dialog);
                }
            });
        }
    }

    /// Acts on registration changes: reg event NOTIFYs and third-party REGISTERs.
    async fn on_events(
        self: &Arc<Self>,
        events: Vec<RegEvent>,
        register: Option<(&OwnedMessage, &[u8])>,
        spawn: &local::Spawner,
    ) {
        let now = unix_now();
        for ev in events {
            let notifies = self
                .notifier
                .lock()
                .expect("notifier lock")
                .on_change(&ev, now);
            self.send_notifies(notifies, spawn);
            let req = register.map(|(m, r)| (m.as_message(), r));
            let third = self.scscf.third_party_registers(
                &ev,
                req.as_ref().map(|(m, r)| (m, *r)),
                now,
                &hex_id(),
            );
            for t in third {
                let (me, s) = (self.clone(), spawn.clone());
                spawn.spawn(async move { me.third_party(t, s).await });
            }
        }
    }

    /// Sends one third-party REGISTER; no answer, 408 or 503 is tried again (twice, after 1 s
    /// and 2 s, or the 503's Retry-After up to 5 s) with the next CSeq; a failure with
    /// SESSION_TERMINATED de-registers the user (TS 24.229 §5.4.1.7).
    async fn third_party(
        self: Arc<Self>,
        t: crate::scscf::ThirdPartyRegister,
        spawn: local::Spawner,
    ) {
        let mut request = t.request.clone();
        let mut ok = false;
        for attempt in 0..3u64 {
            let (done, retry_after) = self.third_party_once(&t, request.clone()).await;
            ok = done;
            let Some(wait) = retry_after.filter(|_| !done && attempt < 2) else {
                break;
            };
            tokio::time::sleep(Duration::from_secs(wait.unwrap_or(attempt + 1).min(5))).await;
            request = self.scscf.third_party_again(&request);
        }
        if ok
            || t.deregistration
            || t.default_handling != crate::subscription::DefaultHandling::SessionTerminated
        {
            return;
        }
        let reason = DeregistrationReason {
            code: 0,
            info: Some(format!(
                "third-party registration to {} failed",
                t.server_name
            )),
        };
        if let Some(ev) = self.scscf.deregister(&t.impu, reason).await {
            let notifies = self
                .notifier
                .lock()
                .expect("notifier lock")
                .on_change(&ev, unix_now());
            self.send_notifies(notifies, &spawn);
        }
    }

    /// One attempt: (2xx, `Some(retry-after)` when worth trying again — `Some(None)`: no
    /// Retry-After given).
    async fn third_party_once(
        &self,
        t: &crate::scscf::ThirdPartyRegister,
        request: Result<OwnedMessage, ims_sip::ParseError>,
    ) -> (bool, Option<Option<u64>>) {
        let answer = async {
            let msg = request.ok()?;
            let remote = self
                .uac
                .locate(&t.server_name)
                .await
                .ok()?
                .into_iter()
                .next()?;
            let resp = self
                .uac
                .request(msg, remote)
                .await
                .ok()?
                .final_response()
                .await
                .ok()?;
            let m = resp.as_message();
            let retry_after = m
                .header(ims_sip::HeaderName::RetryAfter)
                .and_then(|v| v.split([';', '(']).next()?.trim().parse::<u64>().ok());
            Some((m.status().unwrap_or(500), retry_after))
        }
        .await;
        match answer {
            Some((s, _)) if (200..300).contains(&s) => (true, None),
            Some((408, _)) => (false, Some(None)),
            Some((503, ra)) => (false, Some(ra)),
            Some(_) => (false, None),
            // no answer (timeout, transport error)
            None => (false, Some(None)),
        }
    }

    /// A SUBSCRIBE to the reg event package: 200 (or an error) and the first NOTIFY.
    async fn subscribe(
        self: &Arc<Self>,
        proxy: &ProxyEndpoint,
        server: ims_txn::TxnId,
        msg: &OwnedMessage,
        spawn: &local::Spawner,
    ) {
        let m = msg.as_message();
        let now = unix_now();
        // a refresh names its subscription by dialog (Call-ID and From tag, an indexed look-up);
        // an initial one (no To tag) by Request-URI
        let refresh = m.to_tag().is_some();
        let existing = match (m.call_id().ok().flatten(), m.from_tag()) {
            (Some(c), Some(tag)) if refresh => {
                let n = self.notifier.lock().expect("notifier lock");
                n.aor_of(c.as_str(), tag).map(str::to_string)
            }
            _ => None,
        };
        let aor = existing.unwrap_or_else(|| {
            let r = m.request_uri_str().unwrap_or_default();
            r.split(';').next().unwrap_or(r).to_string()
        });
        // the reg-event state needs the bindings and identities, not the user profile
        let record = self.scscf.store().load_bindings(&aor).await.ok().flatten();
        let o = self.notifier.lock().expect("notifier lock").subscribe(
            &m,
            record.as_deref(),
            now,
            &hex_id(),
        );
        // the first NOTIFY (`o.notify`) waits 50 ms below: the response need not be awaited;
        // without it a terminating NOTIFY may follow at once, so it waits until the proxy has
        // sent the response
        if o.notify.is_some() {
            let _ = proxy.post_respond(server, o.response);
        } else {
            let _ = proxy.respond(server, o.response).await;
        }
        // A de-registration may have removed the record between our load and the insert: its
        // NOTIFYs went to the subscriptions it found, not to this new one. Look again; when the
        // record is gone, end this subscription too (if the de-registration comes later, it
        // finds the subscription itself).
        let mut ended = Vec::new();
        if let (Some(rec), true) = (record, !refresh && (200..300).contains(&o.status)) {
            if !matches!(self.scscf.store().contains(&aor).await, Ok(true)) {
                let ev = RegEvent::Terminated {
                    record: (*rec).clone(),
                    reason: DeregistrationReason {
                        code: 0,
                        info: None,
                    },
                };
                ended = self
                    .notifier
                    .lock()
                    .expect("notifier lock")
                    .on_change(&ev, now);
            }
        }
        if let Some(n) = o.notify {
            // The NOTIFY leaves from our UAC endpoint and may overtake the 200 on its way through
            // the P-CSCF. RFC 6665 allows that, but many UEs (and SIPp scenarios) expect the 200
            // first: give it a head start (and the terminating NOTIFY, if any, comes after it).
            let (this, s) = (self.clone(), spawn.clone());
            spawn.spawn(async move {
                tokio::time::sleep(Duration::from_millis(50)).await;
                this.send_notifies(vec![n], &s);
                if !ended.is_empty() {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    this.send_notifies(ended, &s);
                }
            });
        } else if !ended.is_empty() {
            self.send_notifies(ended, spawn);
        }
    }

    async fn expire_subscriptions(self: &Arc<Self>, now: u64, spawn: &local::Spawner) {
        let due = {
            let n = self.notifier.lock().expect("notifier lock");
            n.due(now)
        };
        if due.is_empty() {
            return;
        }
        let mut states = std::collections::HashMap::new();
        for aor in due {
            let r = self.scscf.store().load(&aor).await.ok().flatten();
            states.insert(aor, r);
        }
        let notifies = self
            .notifier
            .lock()
            .expect("notifier lock")
            .expire(now, |aor| states.get(aor).cloned().flatten());
        self.send_notifies(notifies, spawn);
    }
}

async fn scscf_loop(
    proxy: ProxyEndpoint,
    mut events: ProxyEvents,
    services: Arc<ScscfServices>,
    routing: Arc<ScscfRouting>,
    originating: bool,
) {
    // each request's handler runs in this task (a REGISTER's awaits its MAR/SAR without
    // holding up the others), as do the NOTIFYs and third-party REGISTERs it starts
    let mut jobs = local::LocalTasks::new();
    let spawn = jobs.spawner();
    while let Some(ev) = jobs.next(events.recv()).await {
        match ev {
            ProxyEvent::Request {
                server,
                msg,
                next_hop_uri,
                popped_route,
                ..
            } => {
                let (proxy, services, routing) = (proxy.clone(), services.clone(), routing.clone());
                let spawn = spawn.clone();
                jobs.push(async move {
                    let scscf = &services.scscf;
                    let m = msg.as_message();
                    let now = unix_now();
                    if m.method() == Some(Method::Register) {
                        let o = scscf.register(&m, now, random16()).await;
                        // the response as built (no parse), one buffer shared by the response
                        // sent and the event (no copy); with an event (NOTIFYs, third-party
                        // REGISTERs from our UAC follow), wait until the proxy has sent the
                        // response, so they come after it
                        let response = o.response;
                        if o.event.is_some() {
                            let _ = proxy.respond(server, response.clone()).await;
                        } else {
                            let _ = proxy.post_respond(server, response.clone());
                        }
                        if let Some(ev) = o.event {
                            services
                                .on_events(vec![ev], Some((&msg, response.bytes())), &spawn)
                                .await;
                        }
                        return;
                    }
                    if Notifier::is_reg_subscribe(&m) {
                        services.subscribe(&proxy, server, &msg, &spawn).await;
                        return;
                    }
                    let odi = odi_of(popped_route.as_deref());
                    // TS 24.229 §5.4.3.1: the originating port, or our Route with `orig` (an AS
                    // originating on a user's behalf, or our own odi Route)
                    let d = if originating || asks_originating(popped_route.as_deref()) {
                        routing
                            .originating(scscf.store(), &m, odi, unix_now())
                            .await
                    } else {
                        routing.terminating(scscf.store(), &m, odi, now).await
                    };
                    apply(&proxy, server, d, &msg, &next_hop_uri).await;
                });
            }
            ProxyEvent::Ack { msg, next_hop_uri } => {
                if let Some((msg, next_hop_uri)) = relay_ack_now(&proxy, msg, next_hop_uri) {
                    let proxy = proxy.clone();
                    jobs.push(async move { relay_ack(&proxy, msg, next_hop_uri).await });
                }
            }
            ProxyEvent::Failed { server, error } => command_failed("s-cscf", server, &error),
            _ => {}
        }
    }
    jobs.drain().await;
}

/// Initial INVITEs a P-CSCF has not answered, by Call-ID and side (true: from our UE).
type PendingInvites =
    Mutex<std::collections::HashMap<(String, bool), (ProxyEndpoint, ims_txn::TxnId)>>;

/// The P-CSCF's side of the PCRF's requests: ASA/RAA, and the release of the call (TS 24.229
/// §5.2.8.1.2, TS 29.214 §4.4.4 and §4.4.6.x) when the PCRF aborts the session or reports the
/// loss of all its bearers: BYE to the UE and toward the other party, then STR.
struct PcscfRelease<R> {
    pcscf: Arc<Pcscf>,
    /// The initial INVITEs not answered yet, by Call-ID and side (true: from our UE), with the
    /// proxy holding their server transaction: a release during setup answers them.
    pending: Arc<PendingInvites>,
    /// The Contact of the reg event subscriptions: the proxy port, user part `reg`.
    notify_contact: String,
    rx: Arc<R>,
    chains: Arc<RxChains>,
    uac: Endpoint,
    origin_host: String,
    realm: String,
}

impl<R: RxClient> PcscfRelease<R> {
    /// Answers an ASR or RAR (octets) and starts what it asks for.
    fn on_pcrf_request(self: &Arc<Self>, request: &[u8]) -> Vec<u8> {
        let origin = ims_diameter::Origin {
            host: &self.origin_host,
            realm: &self.realm,
            state_id: None,
        };
        let Some((answer, event)) = crate::pcrf::answer_pcrf_request(request, &origin) else {
            return Vec::new();
        };
        if let PcrfEvent::Release {
            session_id,
            flows,
            abort,
        } = event
        {
            // a RAR about some media only: the call goes on while other media keep bearers
            let all_lost = abort
                || flows.is_empty()
                || self
                    .pcscf
                    .rx_media(&session_id)
                    .is_some_and(|m| m.iter().all(|n| flows.contains(n)));
            if all_lost {
                let reason = if abort {
                    "SIP ;cause=503 ;text=\"Session aborted by the PCRF\""
                } else {
                    "SIP ;cause=503 ;text=\"Loss of bearer\""
                };
                let me = self.clone();
                let release = self.pcscf.release(&session_id, reason);
                tokio::spawn(me.release(session_id, release));
            }
        }
        answer
    }

    /// Sends the BYEs together and awaits their final responses (bounded), then the STR — so
    /// it leaves after the ASA/RAA.
    async fn release(self: Arc<Self>, session_id: String, release: Option<crate::cscf::Release>) {
        let Some(r) = release else {
            // no call holds this session any more: end it anyway
            tokio::spawn(rx_job(
                self.rx.clone(),
                &self.chains,
                RxAction::Str { session_id },
            ));
            return;
        };
        self.send_release(r).await;
    }

    /// The BYEs of a release (or, for a call being set up, the CANCEL toward the callee and the
    /// error response to the caller, TS 24.229 §5.2.8.1.1), then its STR.
    async fn send_release(self: Arc<Self>, r: crate::cscf::Release) {
        if let Some(key) = &r.reject_invite {
            let pending = self.pending.lock().expect("pending lock").remove(key);
            if let Some((proxy, server)) = pending {
                let _ = proxy.cancel(server, 503, Some(r.reason.clone())).await;
            }
        }
        let mut sent = Vec::new();
        for b in r.byes {
            let me = self.clone();
            sent.push(tokio::spawn(async move {
                let send = async {
                    let msg = OwnedMessage::parse_datagram(Bytes::from(b.request)).ok()?;
                    let remote = me.uac.locate(&b.next_hop).await.ok()?.into_iter().next()?;
                    let t = me.uac.request(msg, remote).await.ok()?;
                    t.final_response().await.ok()
                };
                let _ = tokio::time::timeout(Duration::from_secs(4), send).await;
            }));
        }
        for t in sent {
            let _ = t.await;
        }
        if let Some(str) = r.str {
            tokio::spawn(rx_job(self.rx.clone(), &self.chains, str));
        }
    }

    /// A reg event NOTIFY of one of the P-CSCF's subscriptions (it reaches the proxy port, the
    /// subscriptions' Contact): applied, answered, and the calls of de-registered UEs released.
    fn on_reg_notify(
        self: &Arc<Self>,
        proxy: &ProxyEndpoint,
        server: ims_txn::TxnId,
        msg: &OwnedMessage,
    ) {
        let m = msg.as_message();
        let o = self
            .pcscf
            .on_reg_notify(&m, "SIP ;cause=503 ;text=\"Network de-registration\"");
        // the BYEs go over the de-registered UEs' SAs, which end once they are answered
        let status = o.status;
        if o.releases.is_empty() && o.removed.is_empty() {
            let _ = proxy.post_reply(server, status);
            return;
        }
        let me = self.clone();
        tokio::spawn(async move {
            let sent: Vec<_> = o
                .releases
                .into_iter()
                .map(|r| tokio::spawn(me.clone().send_release(r)))
                .collect();
            for t in sent {
                let _ = t.await;
            }
            me.pcscf.end_sas(&o.removed);
        });
        let _ = proxy.post_reply(server, status);
    }

    /// Sends the reg event SUBSCRIBEs when due: after each 200 to a REGISTER (`due` is
    /// notified) and once a second for refreshes and retries.
    async fn subscribe_loop(self: Arc<Self>, due: Arc<tokio::sync::Notify>) {
        // the SUBSCRIBE transactions run in this task
        let mut jobs = local::LocalTasks::new();
        // the second of the last pass through every registered UE (refreshes, retries, expiry)
        let mut last_full = 0;
        loop {
            let _ = jobs
                .next(tokio::time::timeout(Duration::from_secs(1), due.notified()))
                .await;
            let now = unix_now();
            // once a second through everything; after a 200 to a REGISTER in between (as often
            // as registrations come), through the UEs registered since only
            let subs = if now != last_full {
                last_full = now;
                if let Some(sec) = self.pcscf.sec_agree() {
                    sec.expire(now);
                }
                self.pcscf
                    .reg_subscriptions_due(now, &self.notify_contact, hex_id)
            } else {
                self.pcscf
                    .new_reg_subscriptions_due(now, &self.notify_contact, hex_id)
            };
            for s in subs {
                let me = self.clone();
                jobs.push(async move {
                    let Ok(msg) = s.request else {
                        return;
                    };
                    let call_id = msg
                        .as_message()
                        .header(ims_sip::HeaderName::CallId)
                        .unwrap_or_default()
                        .to_string();
                    let send = async {
                        let remote = me.uac.locate(&s.next_hop).await.ok()?.into_iter().next()?;
                        let t = me.uac.request(msg, remote).await.ok()?;
                        t.final_response().await.ok()
                    };
                    let resp = tokio::time::timeout(Duration::from_secs(32), send)
                        .await
                        .ok()
                        .flatten();
                    me.pcscf.on_reg_subscribe_response(
                        &call_id,
                        resp.as_ref().map(|r| r.as_message()).as_ref(),
                        unix_now(),
                    );
                });
            }
        }
    }
}

#[allow(clippy::too_many_arguments)] // the P-CSCF's parts, each shared with other tasks
async fn pcscf_loop<R: RxClient>(
    proxy: ProxyEndpoint,
    mut events: ProxyEvents,
    pcscf: Arc<Pcscf>,
    rx: Arc<R>,
    chains: Arc<RxChains>,
    core_ip: IpAddr,
    core_ports: [u16; 3],
    reg_due: Arc<tokio::sync::Notify>,
    pending: Arc<PendingInvites>,
    release: Arc<PcscfRelease<R>>,
    protected: bool,
) {
    // for the responses of each INVITE/UPDATE transaction: do they go to a UE (the request came
    // from one) or toward the core
    let mut to_ue: std::collections::HashMap<ims_txn::TxnId, bool> =
        std::collections::HashMap::new();
    // the key in `pending` of each initial INVITE's server transaction: its final response
    // removes it there by key (no scan of the shared table per final response)
    let mut pending_of: std::collections::HashMap<ims_txn::TxnId, (String, bool)> =
        std::collections::HashMap::new();
    // the Rx exchanges, reg event NOTIFYs and forwarding run as jobs of this task: the state
    // is updated in event order here, the awaits (Diameter answers, the proxy's commands) do
    // not hold up the next event
    let mut jobs = local::LocalTasks::new();
    while let Some(ev) = jobs.next(events.recv()).await {
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
                if m.method() == Some(Method::Notify)
                    && m.request_uri_str()
                        .is_some_and(|u| u.starts_with(release.notify_contact.as_str()))
                {
                    release.on_reg_notify(&proxy, server, &msg);
                    continue;
                }
                let from_core = popped_route.as_deref().is_some_and(|r| r.contains("term@"))
                    || (remote.addr.ip() == core_ip && core_ports.contains(&remote.addr.port()));
                // TS 33.203 §7: a UE with SAs is heard only over them
                if !from_core && !pcscf.admits(&m, remote.addr, protected) {
                    let _ = proxy.post_discard(server);
                    continue;
                }
                if let Some(a) = pcscf.rx_on_end(&m, !from_core) {
                    jobs.push(rx_job(rx.clone(), &chains, a));
                }
                if matches!(m.method(), Some(Method::Invite | Method::Update)) {
                    to_ue.insert(server, !from_core);
                }
                let initial_invite = m.method() == Some(Method::Invite)
                    && m.header(ims_sip::HeaderName::To).is_some()
                    && m.to_tag().is_none();
                if let (true, Some(call_id)) =
                    (initial_invite, m.header(ims_sip::HeaderName::CallId))
                {
                    let key = (call_id.to_string(), !from_core);
                    pending
                        .lock()
                        .expect("pending lock")
                        .insert(key.clone(), (proxy.clone(), server));
                    pending_of.insert(server, key);
                }
                let d = if from_core {
                    pcscf.from_core(&m)
                } else {
                    pcscf.from_ue_on(&m, unix_now(), protected)
                };
                drop(m);
                // at once when every next hop is numeric (no job); else finished in a job
                if let Some(p) = apply_now(&proxy, server, d, &msg, &next_hop_uri) {
                    let proxy = proxy.clone();
                    jobs.push(async move { p.finish(&proxy, &msg, &next_hop_uri).await });
                }
            }
            ProxyEvent::Response { server, msg } => {
                let rx2 = rx.clone();
                let m = msg.as_message();
                let side = to_ue.get(&server).copied().unwrap_or(true);
                if let Some(a) =
                    pcscf.on_response(&m, unix_now(), side, move || rx2.new_session_id())
                {
                    jobs.push(rx_job(rx.clone(), &chains, a));
                }
                if m.status() == Some(200)
                    && m.cseq()
                        .ok()
                        .flatten()
                        .is_some_and(|c| c.method == Method::Register)
                {
                    reg_due.notify_one();
                }
            }
            ProxyEvent::Final { server, .. } => {
                to_ue.remove(&server);
                if let Some(key) = pending_of.remove(&server) {
                    let mut p = pending.lock().expect("pending lock");
                    // a later INVITE of the same call and side may hold the key now
                    if p.get(&key).is_some_and(|(_, s)| *s == server) {
                        p.remove(&key);
                    }
                }
            }
            ProxyEvent::Ack { msg, next_hop_uri } => {
                if let Some((msg, next_hop_uri)) = relay_ack_now(&proxy, msg, next_hop_uri) {
                    let proxy = proxy.clone();
                    jobs.push(async move { relay_ack(&proxy, msg, next_hop_uri).await });
                }
            }
            ProxyEvent::Failed { server, error } => command_failed("p-cscf", server, &error),
            _ => {}
        }
    }
    jobs.drain().await;
}

/// Handlers run inside a long-lived task of a role instead of a tokio task each: a request
/// handler that awaits a Diameter answer (or a transaction) is polled again only when woken,
/// so it never holds up the other calls, and no task cell is allocated, scheduled and joined
/// per event. A small `FuturesUnordered`: one boxed future per slot, a waker per slot that
/// queues its slot and wakes the owning task; freed slots (and their wakers) are reused.
mod local {
    use std::future::Future;
    use std::panic::{catch_unwind, AssertUnwindSafe};
    use std::pin::Pin;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};
    use std::task::{Context, Poll, Wake, Waker};

    type Job = Pin<Box<dyn Future<Output = ()> + Send>>;

    /// What the wakers and [`Spawner`]s share with the owning task.
    #[derive(Default)]
    struct Shared {
        /// Set when `queue` holds something the owner has not taken yet (a slot woken, a job
        /// handed in): the owner locks `queue` only then, and is woken once per batch.
        pending: AtomicBool,
        queue: Mutex<Queue>,
    }

    /// The part of [`Shared`] behind its lock.
    #[derive(Default)]
    struct Queue {
        /// Slots woken since the owning task last took them.
        woken: Vec<usize>,
        /// Jobs handed in by [`Spawner::spawn`], not in a slot yet.
        inbox: Vec<Job>,
        /// The owning task's waker (as of its last poll).
        owner: Option<Waker>,
    }

    impl Shared {
        /// Queues something with `f` and wakes the owner unless a wake-up is pending already
        /// (it has not taken the queue since: it will see this too).
        fn queue(&self, f: impl FnOnce(&mut Queue)) {
            let mut q = self.queue.lock().expect("queue lock");
            f(&mut q);
            if !self.pending.swap(true, Ordering::AcqRel) {
                if let Some(w) = &q.owner {
                    w.wake_by_ref();
                }
            }
        }
    }

    /// The waker of one slot.
    struct SlotWaker {
        slot: usize,
        /// Queued already (a job woken twice before it runs is polled once).
        queued: AtomicBool,
        shared: Arc<Shared>,
    }

    impl Wake for SlotWaker {
        fn wake(self: Arc<Self>) {
            self.wake_by_ref();
        }

        fn wake_by_ref(self: &Arc<Self>) {
            if !self.queued.swap(true, Ordering::AcqRel) {
                self.shared.queue(|q| q.woken.push(self.slot));
            }
        }
    }

    struct Slot {
        job: Option<Job>,
        waker: Arc<SlotWaker>,
        /// `waker` as a [`Waker`] (made once per slot).
        as_waker: Waker,
    }

    /// The jobs of one task. Its owner calls [`LocalTasks::poll_jobs`] each time it is polled
    /// (e.g. from its `poll_fn` beside its event channel).
    pub(super) struct LocalTasks {
        slots: Vec<Slot>,
        free: Vec<usize>,
        live: usize,
        shared: Arc<Shared>,
        /// The slots to poll at the next pass: added by [`LocalTasks::push`] (no lock) and
        /// taken from the shared queue.
        ready: Vec<usize>,
        /// Scratch: the slots of one pass, and the jobs handed in taken from the queue.
        batch: Vec<usize>,
        handed: Vec<Job>,
        /// The waker last given to the shared queue (compared without its lock).
        owner: Option<Waker>,
    }

    /// Hands jobs to a [`LocalTasks`] from anywhere (another task, or one of its own jobs).
    #[derive(Clone)]
    pub(super) struct Spawner(Arc<Shared>);

    impl Spawner {
        /// Runs `job` on the owning task (dropped, never run, once that task has ended).
        pub(super) fn spawn(&self, job: impl Future<Output = ()> + Send + 'static) {
            let job: Job = Box::pin(job);
            self.0.queue(|q| q.inbox.push(job));
        }
    }

    impl LocalTasks {
        pub(super) fn new() -> LocalTasks {
            LocalTasks {
                slots: Vec::new(),
                free: Vec::new(),
                live: 0,
                shared: Arc::default(),
                ready: Vec::new(),
                batch: Vec::new(),
                handed: Vec::new(),
                owner: None,
            }
        }

        /// A handle that hands jobs to these tasks.
        pub(super) fn spawner(&self) -> Spawner {
            Spawner(self.shared.clone())
        }

        /// Adds a job; it first runs at the next [`LocalTasks::poll_jobs`].
        pub(super) fn push(&mut self, job: impl Future<Output = ()> + Send + 'static) {
            self.insert(Box::pin(job));
        }

        fn insert(&mut self, job: Job) {
            let slot = match self.free.pop() {
                Some(i) => i,
                None => {
                    let i = self.slots.len();
                    let waker = Arc::new(SlotWaker {
                        slot: i,
                        queued: AtomicBool::new(false),
                        shared: self.shared.clone(),
                    });
                    let as_waker = Waker::from(waker.clone());
                    self.slots.push(Slot {
                        job: None,
                        waker,
                        as_waker,
                    });
                    i
                }
            };
            self.slots[slot].job = Some(job);
            self.live += 1;
            // queued for its first poll (the owner polls its jobs before it waits again)
            self.slots[slot].waker.queued.store(true, Ordering::Release);
            self.ready.push(slot);
        }

        /// Jobs not finished yet.
        #[cfg(test)]
        pub(super) fn len(&self) -> usize {
            self.live
        }

        /// Polls the jobs woken (or added) since the last pass, once each; a job woken again
        /// meanwhile runs at the next pass (the owner was woken for it), so a job that keeps
        /// waking itself cannot starve the owner's own work. A job that panics is dropped, as
        /// tokio drops a task that panics. The shared queue is locked only when something was
        /// queued in it (or the owner's waker changed).
        pub(super) fn poll_jobs(&mut self, cx: &mut Context<'_>) {
            if !self.owner.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                let w = cx.waker().clone();
                self.shared.queue.lock().expect("queue lock").owner = Some(w.clone());
                self.owner = Some(w);
            }
            if self.shared.pending.swap(false, Ordering::AcqRel) {
                {
                    let mut q = self.shared.queue.lock().expect("queue lock");
                    self.ready.append(&mut q.woken);
                    std::mem::swap(&mut self.handed, &mut q.inbox);
                }
                let mut handed = std::mem::take(&mut self.handed);
                for job in handed.drain(..) {
                    self.insert(job);
                }
                self.handed = handed;
            }
            if self.ready.is_empty() {
                return;
            }
            let mut batch = std::mem::take(&mut self.batch);
            std::mem::swap(&mut batch, &mut self.ready);
            for &i in &batch {
                let slot = &mut self.slots[i];
                slot.waker.queued.store(false, Ordering::Release);
                let Some(job) = slot.job.as_mut() else {
                    continue;
                };
                let mut jcx = Context::from_waker(&slot.as_waker);
                let done = !matches!(
                    catch_unwind(AssertUnwindSafe(|| job.as_mut().poll(&mut jcx))),
                    Ok(Poll::Pending)
                );
                if done {
                    slot.job = None;
                    self.free.push(i);
                    self.live -= 1;
                }
            }
            batch.clear();
            self.batch = batch;
        }

        /// Runs the jobs until none is left.
        pub(super) async fn drain(&mut self) {
            std::future::poll_fn(|cx| {
                self.poll_jobs(cx);
                if self.live == 0 {
                    Poll::Ready(())
                } else {
                    Poll::Pending
                }
            })
            .await
        }

        /// The next item of `next` (e.g. an event channel's `recv()`), running the jobs while
        /// waiting for it.
        pub(super) async fn next<T>(&mut self, next: impl Future<Output = T>) -> T {
            let mut next = std::pin::pin!(next);
            std::future::poll_fn(|cx| {
                self.poll_jobs(cx);
                next.as_mut().poll(cx)
            })
            .await
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;
        use std::time::Duration;

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn a_waiting_job_holds_up_neither_the_others_nor_the_owner() {
            let mut tasks = LocalTasks::new();
            let (hold_tx, hold_rx) = tokio::sync::oneshot::channel::<()>();
            let (done_tx, mut done_rx) = tokio::sync::mpsc::unbounded_channel::<u32>();
            let d = done_tx.clone();
            // the first job waits (as for a Diameter answer) …
            tasks.push(async move {
                let _ = hold_rx.await;
                let _ = d.send(1);
            });
            // … the second, added after it, finishes first
            let d = done_tx.clone();
            tasks.push(async move {
                tokio::time::sleep(Duration::from_millis(5)).await;
                let _ = d.send(2);
            });
            assert_eq!(tasks.next(done_rx.recv()).await, Some(2));
            assert_eq!(tasks.len(), 1);
            // a job handed in by a job, and one from another task
            let spawner = tasks.spawner();
            let (d, s) = (done_tx.clone(), spawner.clone());
            tasks.push(async move {
                s.spawn(async move {
                    let _ = d.send(3);
                });
            });
            assert_eq!(tasks.next(done_rx.recv()).await, Some(3));
            let d = done_tx.clone();
            tokio::spawn(async move {
                spawner.spawn(async move {
                    let _ = d.send(4);
                    let _ = hold_tx.send(());
                })
            })
            .await
            .unwrap();
            assert_eq!(tasks.next(done_rx.recv()).await, Some(4));
            assert_eq!(tasks.next(done_rx.recv()).await, Some(1));
            tasks.drain().await;
            assert_eq!(tasks.len(), 0);
            // slots are reused
            assert_eq!(tasks.slots.len(), 2);
        }

        /// Counts the wake-ups of the owning task.
        #[derive(Default)]
        struct Owner(std::sync::atomic::AtomicUsize);

        impl Wake for Owner {
            fn wake(self: Arc<Self>) {
                self.wake_by_ref();
            }

            fn wake_by_ref(self: &Arc<Self>) {
                self.0.fetch_add(1, Ordering::SeqCst);
            }
        }

        /// A job that counts its polls and parks its waker where the test can wake it.
        fn parked(
            polls: Arc<std::sync::atomic::AtomicUsize>,
            waker: Arc<Mutex<Option<Waker>>>,
        ) -> impl Future<Output = ()> + Send + 'static {
            std::future::poll_fn(move |cx| {
                polls.fetch_add(1, Ordering::SeqCst);
                *waker.lock().unwrap() = Some(cx.waker().clone());
                Poll::<()>::Pending
            })
        }

        #[test]
        fn the_owner_is_woken_once_per_batch_and_each_woken_job_polled_once() {
            let owner = Arc::new(Owner::default());
            let owner_waker = Waker::from(owner.clone());
            let mut cx = Context::from_waker(&owner_waker);
            let mut tasks = LocalTasks::new();
            let polls: Vec<_> = (0..2)
                .map(|_| Arc::new(std::sync::atomic::AtomicUsize::new(0)))
                .collect();
            let wakers: Vec<_> = (0..2).map(|_| Arc::new(Mutex::new(None))).collect();
            for (p, w) in polls.iter().zip(&wakers) {
                tasks.push(parked(p.clone(), w.clone()));
            }
            let count = |i: usize| polls[i].load(Ordering::SeqCst);
            let wake = |i: usize| wakers[i].lock().unwrap().as_ref().unwrap().wake_by_ref();
            // pushed jobs run at the next pass without waking the owner
            tasks.poll_jobs(&mut cx);
            assert_eq!((count(0), count(1)), (1, 1));
            assert_eq!(owner.0.load(Ordering::SeqCst), 0);
            // nothing queued: a pass polls nothing
            tasks.poll_jobs(&mut cx);
            assert_eq!((count(0), count(1)), (1, 1));
            // three wake-ups of two jobs before the owner runs: one wake-up of the owner, each
            // job polled once
            wake(0);
            wake(1);
            wake(0);
            assert_eq!(owner.0.load(Ordering::SeqCst), 1);
            tasks.poll_jobs(&mut cx);
            assert_eq!((count(0), count(1)), (2, 2));
            // once the owner has taken the queue, the next wake-up (here a job handed in)
            // wakes it again, and the job runs at its next pass
            let ran = Arc::new(std::sync::atomic::AtomicUsize::new(0));
            let r = ran.clone();
            tasks.spawner().spawn(async move {
                r.fetch_add(1, Ordering::SeqCst);
            });
            assert_eq!(owner.0.load(Ordering::SeqCst), 2);
            tasks.poll_jobs(&mut cx);
            assert_eq!(ran.load(Ordering::SeqCst), 1);
            assert_eq!((count(0), count(1)), (2, 2));
            assert_eq!(tasks.len(), 2);
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn a_job_that_panics_is_dropped_and_the_others_go_on() {
            let mut tasks = LocalTasks::new();
            let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<u32>();
            tasks.push(async {
                tokio::task::yield_now().await;
                panic!("a handler's invariant broken");
            });
            let t = tx.clone();
            tasks.push(async move {
                tokio::time::sleep(Duration::from_millis(20)).await;
                let _ = t.send(7);
            });
            assert_eq!(tasks.next(rx.recv()).await, Some(7));
            tasks.drain().await;
            assert_eq!(tasks.len(), 0);
        }
    }
}

#[cfg(test)]
mod apply_tests {
    use super::*;
    use ims_net::sip::resolve::StaticDns;
    use tokio::net::UdpSocket;

    fn invite(call: &str) -> String {
        format!(
            "INVITE sip:bob@ims.example.org SIP/2.0\r\n\
             Via: SIP/2.0/UDP 127.0.0.1:6760;branch=z9hG4bK-{call}\r\n\
             Max-Forwards: 70\r\nFrom: <sip:alice@ims.example.org>;tag=a1\r\n\
             To: <sip:bob@ims.example.org>\r\nCall-ID: {call}\r\nCSeq: 1 INVITE\r\n\
             Contact: <sip:alice@127.0.0.1:6760>\r\nContent-Length: 0\r\n\r\n"
        )
    }

    /// The next datagram at `s` (its start line and Call-ID), within 2 s.
    async fn next(s: &UdpSocket) -> String {
        let mut buf = vec![0u8; 4096];
        let (n, _) = tokio::time::timeout(Duration::from_secs(2), s.recv_from(&mut buf))
            .await
            .expect("a datagram within 2 s")
            .expect("recv");
        let text = String::from_utf8_lossy(&buf[..n]).to_string();
        let start = text.lines().next().unwrap_or_default().to_string();
        let call = text
            .lines()
            .find_map(|l| l.strip_prefix("Call-ID: "))
            .unwrap_or_default();
        format!("{start} / {call}")
    }

    /// The next request the proxy hands up: its server transaction, message and next hop.
    async fn request(events: &mut ProxyEvents) -> (ims_txn::TxnId, OwnedMessage, String) {
        loop {
            let ev = tokio::time::timeout(Duration::from_secs(2), events.recv())
                .await
                .expect("an event within 2 s")
                .expect("events");
            if let ProxyEvent::Request {
                server,
                msg,
                next_hop_uri,
                ..
            } = ev
            {
                return (server, msg, next_hop_uri);
            }
        }
    }

    fn to(hop: &str) -> Forward {
        Forward {
            next_hop: Some(hop.to_string()),
            ..Forward::default()
        }
    }

    #[test]
    fn numeric_hosts_are_told_from_names() {
        for (uri, numeric) in [
            ("sip:127.0.0.1:6004;lr", true),
            ("sip:orig@127.0.0.1:6005;lr", true),
            ("sips:[::1]:5061", true),
            ("sip:pcscf.ims.example.org;lr", false),
            ("sip:3com.example.org:5060", false),
            ("tel:+15551234", false),
            ("sip:+15551234;npdi@10.0.0.1:5060;user=phone", true),
            ("SIP:10.0.0.1", true),
            ("sip:user@", false),
            ("sip:10.0.0.1.example.org", false),
        ] {
            assert_eq!(numeric_host(uri), numeric, "{uri}");
        }
    }

    #[tokio::test]
    async fn numeric_next_hops_are_forwarded_at_once_a_named_one_after_its_lookup() {
        let mut dns = StaticDns::default();
        dns.add_ip("next.ims.test", IpAddr::from([127, 0, 0, 1]));
        let ip = IpAddr::from([127, 0, 0, 1]);
        let (proxy, mut events) =
            ProxyEndpoint::bind_with_dns(bind_cfg(ip, 6761, "p"), false, Arc::new(dns))
                .await
                .expect("proxy");
        let ue = UdpSocket::bind("127.0.0.1:6760").await.expect("ue");
        let a = UdpSocket::bind("127.0.0.1:6762").await.expect("a");
        let b = UdpSocket::bind("127.0.0.1:6763").await.expect("b");

        // a numeric next hop: forwarded by apply_now itself, no job left to run
        ue.send_to(invite("apply-1").as_bytes(), "127.0.0.1:6761")
            .await
            .expect("send");
        let (server, msg, hop) = request(&mut events).await;
        let d = Decision::Forward(vec![to("sip:127.0.0.1:6762")]);
        assert!(apply_now(&proxy, server, d, &msg, &hop).is_none());
        assert_eq!(
            next(&a).await,
            "INVITE sip:bob@ims.example.org SIP/2.0 / apply-1"
        );

        // a numeric and a named next hop: the located target is kept while the name is looked
        // up, then the request is forked to both
        ue.send_to(invite("apply-2").as_bytes(), "127.0.0.1:6761")
            .await
            .expect("send");
        let (server, msg, hop) = request(&mut events).await;
        let d = Decision::Forward(vec![to("sip:127.0.0.1:6762"), to("sip:next.ims.test:6763")]);
        let pending = apply_now(&proxy, server, d, &msg, &hop).expect("a name to look up");
        assert_eq!((pending.out.len(), pending.rest.len()), (1, 1));
        pending.finish(&proxy, &msg, &hop).await;
        assert_eq!(
            next(&a).await,
            "INVITE sip:bob@ims.example.org SIP/2.0 / apply-2"
        );
        assert_eq!(
            next(&b).await,
            "INVITE sip:bob@ims.example.org SIP/2.0 / apply-2"
        );

        // an ACK for a 2xx: relayed at once to a numeric next hop, handed back for a name
        let ack = |call: &str| {
            OwnedMessage::parse_datagram(Bytes::from(
                invite(call)
                    .replace("INVITE sip:", "ACK sip:")
                    .replace("1 INVITE", "1 ACK"),
            ))
            .expect("ACK")
        };
        assert!(relay_ack_now(&proxy, ack("apply-3"), "sip:127.0.0.1:6762".into()).is_none());
        assert_eq!(
            next(&a).await,
            "ACK sip:bob@ims.example.org SIP/2.0 / apply-3"
        );
        let (back, hop) = relay_ack_now(&proxy, ack("apply-4"), "sip:next.ims.test:6763".into())
            .expect("a name to look up");
        relay_ack(&proxy, back, hop).await;
        assert_eq!(
            next(&b).await,
            "ACK sip:bob@ims.example.org SIP/2.0 / apply-4"
        );
        proxy.shutdown();
    }
}

#[cfg(test)]
mod random_tests {
    use super::{hex_id, random16};
    use std::collections::HashSet;

    #[test]
    fn pooled_randomness_never_repeats_across_refills() {
        // 1,000 draws cross the 4 KiB pool's refill three times on this thread
        let draws: Vec<[u8; 16]> = (0..1000).map(|_| random16()).collect();
        let distinct: HashSet<&[u8; 16]> = draws.iter().collect();
        assert_eq!(distinct.len(), draws.len(), "a random16 value came twice");
        assert!(draws.iter().all(|d| d != &[0u8; 16]));
        // another thread has its own pool: its draws differ from this thread's
        let other = std::thread::spawn(|| (0..300).map(|_| random16()).collect::<Vec<_>>())
            .join()
            .expect("thread");
        assert!(other.iter().all(|d| !distinct.contains(d)));
    }

    #[test]
    fn ids_are_16_lower_case_hex_digits() {
        let id = hex_id();
        assert_eq!(id.len(), 16);
        assert!(id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
        assert_ne!(hex_id(), id);
    }
}
