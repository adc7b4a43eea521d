//! Interop with Kamailio's IMS Diameter stack: the `cdp` module (C Diameter Peer, Debian package
//! `kamailio-ims-modules`) is configured to connect to our Diameter node on 127.0.0.1.
//!
//! Kamailio runs in the foreground with the test's own script and `cdp` configuration (its
//! `Peer` is our node, named `localhost` because cdp finds its peers by DNS name; Cx and Rx
//! applications, Vendor-Id 10415). The test shows: cdp connects and the CER/CEA succeeds with Cx
//! and Rx in common on both sides (our peer status; cdp's log shows the peer `I_Open`); our DWRs
//! are answered (our Tw = 1 s, faster than cdp's watchdog, Tc = 2 s of silence); our DPR
//! (node shutdown, REBOOTING) is taken by cdp, which closes the connection (cdp 5.6.3 queues
//! its DPA but closes the socket before writing it: not asserted); cdp then reconnects to a new
//! node on the same port (Tw = 30 s) and its DWRs are answered by us; when Kamailio stops the
//! connection closes (cdp sends no DPR on shutdown).
//!
//! Second test: Kamailio as an I-CSCF (`ims_icscf` over `cdp`, S-CSCF table in `db_text`, empty):
//! sipsak sends a REGISTER for alice; Kamailio sends a Cx UAR to our node, answered by the
//! ims-nf HSS (`HssCxServer`) with 2001 and the Server-Name of a UDP socket of the test; Kamailio
//! then relays the REGISTER to that Server-Name (checked: it arrives there, Request-URI = the
//! Server-Name), and the UAR carried Kamailio's Origin-Host, User-Name and Public-Identity.
//!
//! Third test: Kamailio as an I-CSCF in front of our S-CSCF (ims-nf, S role) for a whole
//! IMS-AKA registration by SIPp: UAR, MAR (S-CSCF), 401 relayed, second UAR, SAR (S-CSCF), 200
//! — every Cx request answered by the ims-nf HSS behind our node.
//!
//! Fourth test: Kamailio as a P-CSCF (`ims_qos` + `ims_dialog`) sends Rx AAR/STR for SIPp calls
//! to the ims-nf PCRF behind our node (originating and terminating side, and a refused AAR).
//!
//! Also: the I-CSCF choosing the S-CSCF from its own table by the capabilities in our UAA, over
//! SIP/TCP, with our node as the Diameter initiator; the P-CSCF's registration Rx session
//! (`Rx_AAR_Register`: AF-signalling flows, Specific-Action subscriptions; STR at
//! de-registration; a RAR that ims_qos 5.6.3 never answers); and a node with
//! `NodeConfig::merge_repeated_destination_realm` taking cdp's STR with Destination-Realm twice.
//!
//! Skips when Kamailio or its IMS modules are missing unless `IMS_REQUIRE_INTEROP=1`;
//! `IMS_KEEP_KAMAILIO=1` keeps the configuration and log.

mod common;
#[path = "ims_core/mod.rs"]
mod ims_core;
#[allow(dead_code)]
#[path = "net_sip_common/kamailio.rs"]
mod kamailio_process;

use ims::diameter::dict::app;
use ims::diameter::peer::{Application, PeerState};
use ims::net::diameter::{Node, NodeConfig};
use kamailio_process::Process;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::Duration;

const SECS: Duration = Duration::from_secs(15);
const REALM: &str = "test.example";
/// Our node's DiameterIdentity: cdp connects to its peers by resolving their FQDN.
const OURS: &str = "localhost";
const KAMAILIO: &str = "kamailio.test.example";

/// Kamailio, or `None` (test skipped) unless `IMS_REQUIRE_INTEROP=1`; its `cdp.so` must exist.
fn kamailio() -> Option<(PathBuf, PathBuf)> {
    let bin = kamailio_process::kamailio()?;
    let modules = [
        "/usr/lib/x86_64-linux-gnu/kamailio/modules",
        "/usr/lib/aarch64-linux-gnu/kamailio/modules",
        "/usr/lib/kamailio/modules",
        "/usr/local/lib64/kamailio/modules",
    ]
    .into_iter()
    .map(PathBuf::from)
    .find(|d| d.join("cdp.so").is_file());
    match modules {
        Some(m) => Some((bin, m)),
        None if std::env::var_os("IMS_REQUIRE_INTEROP").is_some() => {
            panic!("Kamailio's cdp.so not found: apt-get install kamailio-ims-modules")
        }
        None => {
            eprintln!(
                "skipped: Kamailio's cdp.so not found (apt-get install kamailio-ims-modules)"
            );
            None
        }
    }
}

/// [`kamailio`] and the interop tool `name` (`install`: how to get it), or `None` (test
/// skipped) unless `IMS_REQUIRE_INTEROP=1`.
fn kamailio_and(name: &str, install: &str) -> Option<(PathBuf, PathBuf, PathBuf)> {
    let (bin, modules) = kamailio()?;
    let tool = common::interop_tool(name, install)?;
    Some((bin, modules, tool))
}

/// A port in `first..first + n` for which `free` held a moment ago, tried in steps of `step`
/// from a start spread by process and by call (`next`: the caller's counter; the two tests run
/// at once).
fn free_port(next: &AtomicU16, first: u16, n: u16, step: u16, free: impl Fn(u16) -> bool) -> u16 {
    let start = (std::process::id() % u32::from(n)) as u16;
    for _ in 0..n {
        let i = next.fetch_add(1, Ordering::Relaxed);
        let port = first + (start + i.wrapping_mul(step)) % n;
        if free(port) {
            return port;
        }
    }
    panic!("no port free in {first}-{}", first + n - 1);
}

/// A TCP port of 127.0.0.1 in 3868–3999 (this test's range) free a moment ago.
fn free_port_3900() -> u16 {
    static NEXT: AtomicU16 = AtomicU16::new(0);
    free_port(&NEXT, 3868, 132, 7, |port| {
        std::net::TcpListener::bind(("127.0.0.1", port)).is_ok()
    })
}

/// [`free_port_3900`] other than our node's (`ours`): cdp's own Diameter acceptor.
fn free_port_3900_besides(ours: SocketAddr) -> u16 {
    loop {
        let port = free_port_3900();
        if port != ours.port() {
            return port;
        }
    }
}

/// A UDP and TCP port of 127.0.0.1 in 10000–10499 free a moment ago (Kamailio's SIP socket).
fn free_sip_port() -> u16 {
    static NEXT: AtomicU16 = AtomicU16::new(0);
    free_port(&NEXT, 10000, 500, 13, |port| {
        std::net::UdpSocket::bind(("127.0.0.1", port)).is_ok()
            && std::net::TcpListener::bind(("127.0.0.1", port)).is_ok()
    })
}

/// Kamailio in the foreground in its own process group (terminated on drop).
struct Kamailio {
    /// Kept for its drop, which stops Kamailio (before `dir` goes).
    _process: Process,
    dir: common::TempDir,
    /// Its SIP port (UDP, 127.0.0.1).
    sip: u16,
}

impl Kamailio {
    /// The `cdp` configuration: Kamailio as `KAMAILIO` peering with our node at `ours` (Cx and
    /// Rx), its own Diameter acceptor on `accept_port`.
    fn cdp_xml(ours: SocketAddr, accept_port: u16) -> String {
        Self::cdp_xml_in(ours, accept_port, REALM)
    }

    /// [`Kamailio::cdp_xml`] with our node in `ours_realm`.
    fn cdp_xml_in(ours: SocketAddr, accept_port: u16, ours_realm: &str) -> String {
        format!(
            r#"<?xml version="1.0" encoding="UTF-8"?>
<DiameterPeer FQDN="{KAMAILIO}" Realm="{REALM}" Vendor_Id="10415" Product_Name="CDiameterPeer"
  AcceptUnknownPeers="0" DropUnknownOnDisconnect="1" Tc="2" Workers="2" QueueLength="16"
  TransactionTimeout="5" SessionsHashSize="128" DefaultAuthSessionTimeout="3600"
  MaxAuthSessionTimeout="3600">
  <Peer FQDN="{OURS}" Realm="{ours_realm}" port="{port}"/>
  <Acceptor port="{accept_port}" bind="127.0.0.1"/>
  <Auth id="{cx}" vendor="10415"/>
  <Auth id="{rx}" vendor="10415"/>
  <DefaultRoute FQDN="{OURS}" metric="10"/>
</DiameterPeer>
"#,
            port = ours.port(),
            cx = app::CX,
            rx = app::RX,
        )
    }

    /// Starts Kamailio with `cdp` peering with our node at `ours` (`accept_port`: cdp's own
    /// Diameter acceptor) and only dropping SIP requests.
    fn start(bin: &Path, modules: &Path, ours: SocketAddr, accept_port: u16) -> Kamailio {
        let script = format!(
            r#"#!KAMAILIO
debug=3
log_stderror=yes
children=1
auto_aliases=no
loadmodule "{m}/cdp.so"
modparam("cdp", "config_file", "@DIR@/diameter.xml")
request_route {{
  drop;
}}
"#,
            m = modules.display(),
        );
        Kamailio::run(bin, "cdp", &Self::cdp_xml(ours, accept_port), &script, &[])
    }

    /// Runs Kamailio with `script` (`@DIR@` replaced by its directory), the `cdp` configuration
    /// `xml` in `@DIR@/diameter.xml`, the `files` written into `@DIR@` first, SIP on UDP
    /// 127.0.0.1:`sip`.
    fn run(bin: &Path, tag: &str, xml: &str, script: &str, files: &[(&str, &str)]) -> Kamailio {
        let dir = common::TempDir::new("kamailio", tag, "IMS_KEEP_KAMAILIO");
        let d = dir.path();
        std::fs::write(d.join("diameter.xml"), xml).unwrap();
        for (name, text) in files {
            let p = d.join(name);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }
        let script = script.replace("@DIR@", &d.display().to_string());
        std::fs::write(d.join("kamailio.cfg"), script).unwrap();
        // a SIP port taken between our check and Kamailio's bind: it exits at once; try another
        for _ in 0..5 {
            let sip = free_sip_port();
            let mut process = Self::spawn(bin, d, sip);
            let mut exited = false;
            for _ in 0..30 {
                if process.exited().is_some() {
                    exited = true;
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            if !exited {
                return Kamailio {
                    _process: process,
                    dir,
                    sip,
                };
            }
        }
        panic!(
            "Kamailio does not start:\n{}",
            std::fs::read_to_string(d.join("kamailio.log")).unwrap_or_default()
        );
    }

    fn spawn(bin: &Path, d: &Path, sip: u16) -> Process {
        let mut cmd = Process::command(bin, &d.join("kamailio.cfg"), d);
        cmd.args(["-l", &format!("udp:127.0.0.1:{sip}")]);
        cmd.args(["-l", &format!("tcp:127.0.0.1:{sip}")]);
        Process::spawn(cmd, d).expect("start kamailio")
    }

    /// Waits until cdp's peer connection with our `node` is open; panics with the log's tail.
    async fn wait_cdp_open(&self, node: &Node) {
        if let Err(e) = node.wait_open(KAMAILIO, SECS).await {
            panic!("cdp did not open: {e}\n{}", self.tail());
        }
    }

    fn log(&self) -> String {
        std::fs::read(self.dir.path().join("kamailio.log"))
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    /// The log's last 4000 characters.
    fn tail(&self) -> String {
        let l = self.log();
        let c: Vec<char> = l.chars().collect();
        c[c.len().saturating_sub(4000)..].iter().collect()
    }
}

async fn poll(what: &str, k: &Kamailio, mut f: impl FnMut() -> bool) {
    for _ in 0..300 {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}\n{}", k.tail());
}

/// Our node as `localhost` (Cx, Rx, Vendor-Id 10415) with watchdog interval `tw`, listening on
/// `addr` (port 0: a free port in 3868–3999).
async fn our_node(tw: Duration, addr: Option<SocketAddr>) -> (Node, SocketAddr) {
    our_node_in(tw, addr, REALM).await
}

/// [`our_node`] in `realm`.
async fn our_node_in(tw: Duration, addr: Option<SocketAddr>, realm: &str) -> (Node, SocketAddr) {
    let apps = [
        Application::tgpp_auth(app::CX),
        Application::tgpp_auth(app::RX),
    ];
    our_node_with(tw, addr, realm, &apps, false).await
}

/// [`our_node_in`] advertising `applications`; `lenient`:
/// [`NodeConfig::merge_repeated_destination_realm`].
async fn our_node_with(
    tw: Duration,
    addr: Option<SocketAddr>,
    realm: &str,
    applications: &[Application],
    lenient: bool,
) -> (Node, SocketAddr) {
    let mut c = NodeConfig::new(OURS, realm);
    c.applications = applications.to_vec();
    c.vendor_id = 10415;
    c.watchdog_interval = tw;
    c.watchdog_jitter = Duration::ZERO;
    c.merge_repeated_destination_realm = lenient;
    let node = Node::new(c);
    // a free port may be taken by the time we bind: try a few
    for _ in 0..20 {
        let want = addr.unwrap_or_else(|| ([127, 0, 0, 1], free_port_3900()).into());
        match node.listen(want).await {
            Ok(a) => return (node, a),
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    panic!("cannot listen in 3868-3999");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kamailio_cdp_peers_with_our_node() {
    let Some((bin, modules)) = kamailio() else {
        return;
    };
    // first our watchdog is the faster one (Tw = 1 s < cdp's Tc = 2 s): we send the DWRs
    let (node, addr) = our_node(Duration::from_secs(1), None).await;
    let accept_port = free_port_3900_besides(addr);
    let k = Kamailio::start(&bin, &modules, addr, accept_port);

    // cdp connects: CER/CEA with Cx and Rx in common
    let info = match node.wait_open(KAMAILIO, SECS).await {
        Ok(i) => i,
        Err(e) => panic!("cdp did not open: {e}\n{}", k.tail()),
    };
    assert_eq!(info.origin_realm, REALM);
    assert_eq!(info.product_name, "CDiameterPeer");
    // (cdp 5.6.3 sends no Origin-State-Id in its CER: a restart of Kamailio cannot be told
    // from a reconnection, `Node::on_peer_restart` stays silent for it)
    assert!(info.common_applications.contains(&app::CX), "{info:?}");
    assert!(info.common_applications.contains(&app::RX), "{info:?}");
    let st = node.peer_status(KAMAILIO).unwrap();
    assert_eq!(st.state, PeerState::ROpen, "cdp is the initiator");
    poll("cdp's peer open", &k, || {
        k.log().contains(&format!("Peer {OURS} State I_Open"))
    })
    .await;
    // our DWRs, cdp's DWAs
    poll("our DWR answered", &k, || {
        let s = node.peer_status(KAMAILIO).unwrap().stats;
        s.dwr_sent >= 2 && s.dwa_received >= 2
    })
    .await;
    assert_eq!(node.peer_status(KAMAILIO).unwrap().state, PeerState::ROpen);

    // our DPR (the node stops: REBOOTING): cdp takes it and closes the connection. (cdp 5.6.3
    // builds its DPA but closes the socket before writing it — its log: "Pipe push", then
    // "select_recv(): Bad file descriptor" — so the DPA is not asserted.)
    node.shutdown();
    if let Err(e) = node.wait_stopped(SECS).await {
        panic!("no close after DPR: {e}\n{}", k.tail());
    }
    poll("cdp took the DPR", &k, || {
        k.log()
            .contains(&format!("Peer {OURS} State I_Open Event I_Rcv_DPR"))
    })
    .await;
    let st = node.peer_status(KAMAILIO).unwrap();
    assert_eq!(st.state, PeerState::Closed);
    let ours = st.stats;

    // then cdp's watchdog is the faster one (our Tw = 30 s): cdp reconnects to a new node on
    // the same port and sends the DWRs after 2 s of silence, which we answer
    let (node, _) = our_node(Duration::from_secs(30), Some(addr)).await;
    if let Err(e) = node.wait_open(KAMAILIO, SECS).await {
        panic!("cdp did not come back: {e}\n{}", k.tail());
    }
    poll("cdp's DWR", &k, || {
        node.peer_status(KAMAILIO).unwrap().stats.dwr_received >= 2
    })
    .await;
    assert!(
        k.log()
            .contains(&format!("Peer {OURS} State I_Open Event I_Rcv_DWA")),
        "cdp did not take our DWA:\n{}",
        k.tail()
    );
    let st = node.peer_status(KAMAILIO).unwrap();
    assert_eq!(st.state, PeerState::ROpen);
    assert_eq!(st.stats.dwr_sent, 0);
    // Kamailio stops: cdp's DPR, our DPA
    let tail = k.tail();
    drop(k);
    if let Err(e) = node.wait_closed(KAMAILIO, SECS).await {
        panic!("no close when Kamailio stopped: {e}\n{tail}");
    }
    assert_eq!(node.peer_status(KAMAILIO).unwrap().state, PeerState::Closed);
    eprintln!(
        "cdp: CER/CEA twice; {} DWR sent / {} DWA received; {} DWR received and answered; \
         our DPR taken",
        ours.dwr_sent, ours.dwa_received, st.stats.dwr_received
    );
    node.shutdown();
    node.wait_stopped(SECS).await.unwrap();
}

/// The UARs our node got, with the UAAs it sent.
type Exchanges = std::sync::Arc<std::sync::Mutex<Vec<(Vec<u8>, Vec<u8>)>>>;

/// Kamailio's I-CSCF script: a REGISTER asks the HSS with a Cx UAR (ims_icscf, through cdp);
/// on success the S-CSCF named in the UAA is selected and the REGISTER relayed to it.
const ICSCF_SCRIPT: &str = r#"#!KAMAILIO
debug=2
log_stderror=yes
children=1
auto_aliases=no
mpath="@MOD@"
loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "pv.so"
loadmodule "xlog.so"
loadmodule "textops.so"
loadmodule "db_text.so"
loadmodule "cdp.so"
loadmodule "cdp_avp.so"
loadmodule "ims_icscf.so"
modparam("cdp", "config_file", "@DIR@/diameter.xml")
modparam("ims_icscf", "db_url", "text://@DIR@/db")
modparam("ims_icscf", "cxdx_dest_realm", "@REALM@")
request_route {
  if (is_method("REGISTER")) {
    I_perform_user_authorization_request("REG_UAR_REPLY", "0");
    exit;
  }
  sl_send_reply("403", "Forbidden");
}
route[REG_UAR_REPLY] {
  xlog("L_INFO", "UAR result $avp(s:uaa_return_code)\n");
  if ($avp(s:uaa_return_code) == 1) {
    if (I_scscf_select("0")) {
      xlog("L_INFO", "S-CSCF selected: ru=$ru du=$du\n");
      t_relay();
      I_scscf_drop();
    } else {
      I_scscf_drop();
      t_reply("500", "no S-CSCF");
    }
  } else {
    t_reply("403", "UAR failed");
  }
}
"#;

/// The I-CSCF's `db_text` tables: the trusted domains (ours), no S-CSCF of its own (the UAA's
/// Server-Name is used).
const ICSCF_DB: [(&str, &str); 4] = [
    ("db/version", "table_name(str) table_version(int)\n"),
    (
        "db/nds_trusted_domains",
        "id(int,auto) trusted_domain(str)\n1:test.example\n2:ims.example.org\n",
    ),
    ("db/s_cscf", "id(int,auto) name(str) s_cscf_uri(str)\n"),
    (
        "db/s_cscf_capabilities",
        "id(int,auto) id_s_cscf(int) capability(int)\n",
    ),
];

/// Kamailio's `s_cscf` table: first one without the mandatory capability 1 (at a port where
/// nothing listens, besides `addr`), then `ours`; the URI of the first one and the table.
fn s_cscf_table(addr: SocketAddr, ours: &str) -> (String, String) {
    let lacking = format!(
        "sip:127.0.0.1:{};transport=tcp",
        free_port_3900_besides(addr)
    );
    let table = format!(
        "id(int,auto) name(str) s_cscf_uri(str)\n1:lacking:{}\n2:scscf:{}\n",
        lacking.replace(':', "\\:"),
        ours.replace(':', "\\:")
    );
    (lacking, table)
}

/// [`ICSCF_DB`], with the `s_cscf` table `s_cscf` and the capabilities (1 and 2 for ours, 2
/// for the one lacking 1) when `tcp`.
fn icscf_db(tcp: bool, s_cscf: &str) -> Vec<(&str, &str)> {
    let mut db: Vec<(&str, &str)> = ICSCF_DB.to_vec();
    if tcp {
        db[2] = ("db/s_cscf", s_cscf);
        db[3] = (
            "db/s_cscf_capabilities",
            "id(int,auto) id_s_cscf(int) capability(int)\n1:1:2\n2:2:1\n3:2:2\n",
        );
    }
    db
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kamailio_icscf_asks_our_hss_and_forwards_to_the_server_name() {
    icscf_forwards_a_register(IcscfMode::ServerName).await;
}

/// The same with the S-CSCF chosen by Kamailio: our HSS (ims-nf, no S-CSCF configured) answers
/// the UAR with Server-Capabilities and no Server-Name (TS 29.229 §6.1.1.1), so `ims_icscf`
/// selects an S-CSCF from its own table by capabilities (TS 29.228 §6.1.1, its
/// `s_cscf`/`s_cscf_capabilities` tables: the S-CSCF of the test, reached over SIP/TCP, is the
/// only one); SIP over TCP on both of Kamailio's sides (sipsak → Kamailio → S-CSCF), and
/// Diameter the other way round: our node connects to cdp's acceptor (cdp's own connection
/// attempts go to a closed port), CER/CEA with our node as the initiator.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kamailio_icscf_selects_the_scscf_by_capabilities_over_tcp() {
    icscf_forwards_a_register(IcscfMode::Capabilities).await;
}

/// How [`icscf_forwards_a_register`] runs.
#[derive(Clone, Copy, PartialEq, Eq)]
enum IcscfMode {
    /// Our UAA names the S-CSCF (Server-Name); SIP over UDP; cdp connects to our node.
    ServerName,
    /// Our UAA has Server-Capabilities, Kamailio picks from its table; SIP over TCP; our node
    /// connects to cdp.
    Capabilities,
}

/// sipsak's REGISTER reaches the S-CSCF Kamailio's I-CSCF chose after a Cx UAR to our HSS.
async fn icscf_forwards_a_register(mode: IcscfMode) {
    let Some((bin, modules, sipsak)) =
        kamailio_and("sipsak", "install sipsak (Debian package `sipsak`)")
    else {
        return;
    };
    let tcp = mode == IcscfMode::Capabilities;
    // the S-CSCF: a UDP socket (or TCP listener) of the test
    let mut scscf_udp = None;
    let mut scscf_tcp = None;
    for _ in 0..20 {
        let port = free_sip_port();
        if tcp {
            if let Ok(l) = tokio::net::TcpListener::bind(("127.0.0.1", port)).await {
                scscf_tcp = Some(l);
                break;
            }
        } else if let Ok(s) = tokio::net::UdpSocket::bind(("127.0.0.1", port)).await {
            scscf_udp = Some(s);
            break;
        }
    }
    let scscf_port = match (&scscf_udp, &scscf_tcp) {
        (Some(s), _) => s.local_addr().unwrap().port(),
        (_, Some(l)) => l.local_addr().unwrap().port(),
        _ => panic!("no port free for the S-CSCF in 10000-10499"),
    };
    let scscf_uri = if tcp {
        format!("sip:127.0.0.1:{scscf_port};transport=tcp")
    } else {
        format!("sip:127.0.0.1:{scscf_port}")
    };

    // our HSS (ims-nf) behind our Diameter node, answering UAR: with the S-CSCF's name, or
    // (none configured) with the capabilities the operator asks of an S-CSCF for this user
    // (TS 29.228 §6.1.1, TS 29.229 §6.3.4): mandatory capability 1, optional 2
    let default_scscf = (mode == IcscfMode::ServerName).then(|| scscf_uri.clone());
    let mut h = ims::nf::hss::Hss::new(default_scscf);
    if mode == IcscfMode::Capabilities {
        h = h.scscf_capabilities(ims::nf::hss::ScscfCapabilities {
            mandatory: vec![1],
            optional: vec![2],
            server_names: vec![],
        });
    }
    h.add_subscriber(ims::nf::hss::Subscriber {
        subscription: ims::nf::subscription::ImsSubscription {
            private_id: "alice@test.example".into(),
            service_profiles: vec![ims::nf::subscription::ServiceProfile {
                public_identities: vec![ims::nf::subscription::PublicIdentity::new(
                    "sip:alice@test.example",
                )],
                ..Default::default()
            }],
        },
        credentials: ims::nf::hss::Credentials {
            aka: None,
            password: Some("secret".into()),
        },
    });
    let local =
        ims::nf::cx::LocalHss::new(std::sync::Arc::new(std::sync::Mutex::new(h)), REALM, || {
            [7; 16]
        });
    let server = std::sync::Arc::new(ims::nf::cx_wire::HssCxServer::new(OURS, REALM, local));
    let (node, addr) = our_node(Duration::from_secs(30), None).await;
    let seen: Exchanges = Default::default();
    let (srv, sn) = (server.clone(), seen.clone());
    node.handle(
        app::CX,
        <ims::diameter::cx::Uar as ims::diameter::Command>::CODE,
        move |req| {
            let (srv, sn) = (srv.clone(), sn.clone());
            async move {
                let uaa = srv
                    .answer(req.message.bytes())
                    .await
                    .expect("the HSS answers a UAR");
                sn.lock()
                    .unwrap()
                    .push((req.message.bytes().to_vec(), uaa.clone()));
                uaa
            }
        },
    );
    let accept_port = free_port_3900_besides(addr);
    // cdp connects to our node, or (we connect) to a closed port
    let cdp_peer = if tcp {
        let closed = loop {
            let p = free_port_3900_besides(addr);
            if p != accept_port {
                break p;
            }
        };
        SocketAddr::from(([127, 0, 0, 1], closed))
    } else {
        addr
    };
    let script = ICSCF_SCRIPT
        .replace("@MOD@", &modules.display().to_string())
        .replace("@REALM@", REALM);
    // Kamailio's S-CSCF table: first one without the mandatory capability 1 (at a port where
    // nothing listens), then the test's S-CSCF with capabilities 1 and 2
    let (_, s_cscf) = s_cscf_table(addr, &scscf_uri);
    let db = icscf_db(tcp, &s_cscf);
    let k = Kamailio::run(
        &bin,
        "icscf",
        &Kamailio::cdp_xml(cdp_peer, accept_port),
        &script,
        &db,
    );
    if tcp {
        // our node is the initiator: to cdp's acceptor once it listens
        poll("cdp's acceptor", &k, || tcp_listening(accept_port)).await;
        node.add_peer(KAMAILIO, ([127, 0, 0, 1], accept_port).into());
    }
    k.wait_cdp_open(&node).await;
    let st = node.peer_status(KAMAILIO).unwrap();
    let expect_state = if tcp {
        PeerState::IOpen
    } else {
        PeerState::ROpen
    };
    assert_eq!(st.state, expect_state);

    // sipsak sends a REGISTER for alice to the I-CSCF
    let ue = free_sip_port();
    let transport = if tcp { "TCP" } else { "UDP" };
    let register = format!(
        "REGISTER sip:test.example SIP/2.0\r\n\
         Via: SIP/2.0/{transport} 127.0.0.1:{ue};branch=z9hG4bK-icscf-1;rport\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:alice@test.example>;tag=ue1\r\n\
         To: <sip:alice@test.example>\r\n\
         Call-ID: icscf-uar-1@127.0.0.1\r\n\
         CSeq: 1 REGISTER\r\n\
         Contact: <sip:alice@127.0.0.1:{ue}>\r\n\
         P-Visited-Network-ID: \"test.example\"\r\n\
         Authorization: Digest username=\"alice@test.example\", realm=\"test.example\", \
         nonce=\"\", uri=\"sip:test.example\", response=\"\"\r\n\
         Expires: 600\r\n\
         Content-Length: 0\r\n\r\n"
    );
    std::fs::write(k.dir.path().join("register.sip"), &register).unwrap();
    let mut ua = Command::new(&sipsak);
    ua.arg("-f").arg(k.dir.path().join("register.sip")).args([
        "-s",
        &format!("sip:127.0.0.1:{}", k.sip),
        "-l",
        &ue.to_string(),
    ]);
    if tcp {
        ua.args(["-E", "tcp"]);
    }
    let mut ua = ua
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("run sipsak");

    // the REGISTER reaches the S-CSCF
    let mut buf = vec![0u8; 65536];
    let got = tokio::time::timeout(SECS, async {
        if let Some(s) = &scscf_udp {
            s.recv_from(&mut buf).await.map(|(n, _)| n)
        } else {
            use tokio::io::AsyncReadExt;
            let (mut c, _) = scscf_tcp.as_ref().unwrap().accept().await?;
            let mut n = 0;
            // up to the end of the headers (no body)
            while !buf[..n].windows(4).any(|w| w == b"\r\n\r\n") {
                let r = c.read(&mut buf[n..]).await?;
                if r == 0 {
                    break;
                }
                n += r;
            }
            Ok(n)
        }
    })
    .await;
    let _ = ua.kill();
    let _ = ua.wait();
    let n = match got {
        Ok(r) => r.unwrap(),
        Err(_) => panic!(
            "no REGISTER at the S-CSCF; UARs seen: {}\n{}",
            seen.lock().unwrap().len(),
            k.tail()
        ),
    };
    let fwd = String::from_utf8_lossy(&buf[..n]).into_owned();
    // Kamailio sent it to the S-CSCF, whose URI is also its Request-URI
    assert!(
        fwd.starts_with(&format!("REGISTER {scscf_uri} SIP/2.0\r\n")),
        "{fwd}"
    );
    assert!(fwd.contains("Call-ID: icscf-uar-1@127.0.0.1"), "{fwd}");
    if tcp {
        assert!(fwd.contains("Via: SIP/2.0/TCP 127.0.0.1:"), "{fwd}");
    }
    // the UAR Kamailio sent, and the UAA our HSS gave
    let (uar, uaa) = seen.lock().unwrap()[0].clone();
    let uar = ims::diameter::Message::parse(&uar).unwrap();
    let text = |m: &ims::diameter::Message<'_>, d| {
        m.find(d)
            .and_then(|a| a.utf8().ok().map(str::to_owned))
            .unwrap_or_default()
    };
    assert_eq!(uar.code(), 300);
    assert_eq!(uar.application_id(), app::CX);
    assert_eq!(text(&uar, ims::diameter::dict::ORIGIN_HOST), KAMAILIO);
    assert_eq!(
        text(&uar, ims::diameter::dict::USER_NAME),
        "alice@test.example"
    );
    assert_eq!(
        text(&uar, ims::diameter::dict::PUBLIC_IDENTITY),
        "sip:alice@test.example"
    );
    let uaa = ims::diameter::Message::parse(&uaa).unwrap();
    assert_eq!(
        uaa.outcome().map(|o| o.code()),
        Some(2001),
        "DIAMETER_FIRST_REGISTRATION"
    );
    match mode {
        IcscfMode::ServerName => {
            assert_eq!(text(&uaa, ims::diameter::dict::SERVER_NAME), scscf_uri);
        }
        IcscfMode::Capabilities => {
            use ims::diameter::Command as _;
            let uaa = ims::diameter::cx::Uaa::decode(&uaa).unwrap();
            assert_eq!(uaa.server_name, None);
            let caps = uaa.server_capabilities.expect("Server-Capabilities");
            assert_eq!(caps.mandatory_capability.to_vec(), [1]);
            assert!(
                k.log()
                    .contains(&format!("S-CSCF selected: ru={scscf_uri}")),
                "{}",
                k.tail()
            );
        }
    }
    eprintln!(
        "I-CSCF: UAR for alice answered ({}), Kamailio relayed to {scscf_uri}: {}",
        if tcp {
            "Server-Capabilities"
        } else {
            "Server-Name"
        },
        fwd.lines().next().unwrap_or_default()
    );
    drop(k);
    node.shutdown();
    node.wait_stopped(SECS).await.unwrap();
}

/// TCP `port` of 127.0.0.1 is listening (/proc/net/tcp, state 0A).
fn tcp_listening(port: u16) -> bool {
    let port = format!(":{port:04X}");
    std::fs::read_to_string("/proc/net/tcp").is_ok_and(|t| {
        t.lines().any(|l| {
            let mut f = l.split_whitespace();
            let local = f.nth(1).unwrap_or_default();
            local.ends_with(&port) && f.nth(1) == Some("0A")
        })
    })
}

/// A Kamailio P-CSCF script (`ims_qos` over `cdp`, `ims_dialog`, `ims_usrloc_pcscf`): the
/// common head with `$modules` loaded after `ims_usrloc_pcscf` and `$params` after the common
/// module parameters, then `$routes`.
macro_rules! pcscf_script {
    ($modules:literal, $params:literal, $routes:literal $(,)?) => {
        concat!(
            r#"#!KAMAILIO
debug=2
log_stderror=yes
children=2
auto_aliases=no
mpath="@MOD@"
loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "rr.so"
loadmodule "pv.so"
loadmodule "xlog.so"
loadmodule "textops.so"
loadmodule "siputils.so"
loadmodule "ims_dialog.so"
loadmodule "ims_usrloc_pcscf.so"
"#,
            $modules,
            r#"loadmodule "cdp.so"
loadmodule "cdp_avp.so"
loadmodule "ims_qos.so"
modparam("cdp", "config_file", "@DIR@/diameter.xml")
modparam("ims_dialog", "dlg_flag", 4)
modparam("ims_qos", "rx_dest_realm", "test.example")
"#,
            $params,
            $routes
        )
    };
}

/// Kamailio's P-CSCF script for Rx (`ims_qos` over `cdp`, `ims_dialog` tracking the call):
/// an INVITE from the UE is record-routed and relayed to the callee (`@UAS@`); its 183/200
/// with an SDP answer triggers `Rx_AAR` (originating side: the UE made the offer), the reply
/// waiting for the AAA; the dialog's end (BYE) makes `ims_qos` send the STR.
const PCSCF_RX_SCRIPT: &str = pcscf_script!(
    "",
    "",
    r#"request_route {
  if (has_totag()) {
    if (loose_route()) {
      # (after loose_route: ims_dialog has taken the request, e.g. the ACK confirms the dialog)
      xlog("L_INFO", "in-dialog $rm\n");
      t_relay();
      exit;
    }
    if (!is_method("ACK")) {
      sl_send_reply("404", "Not here");
    }
    exit;
  }
  if (is_method("INVITE")) {
    setflag(4);
    record_route();
    $du = "@UAS@";
    # the test marks the calls where the UE of this P-CSCF is the callee
    if ($hdr(X-Leg) == "term") {
      t_on_reply("MT_REPLY");
    } else {
      t_on_reply("MO_REPLY");
    }
    t_relay();
    exit;
  }
  sl_send_reply("403", "Forbidden");
}
onreply_route[MO_REPLY] {
  if (t_check_status("183|200") && has_body("application/sdp")) {
    xlog("L_INFO", "Rx AAR for $rs\n");
    if (Rx_AAR("MO_AAR_REPLY", "orig", "", -1) == 0) {
      exit;
    }
  }
}
onreply_route[MT_REPLY] {
  if (t_check_status("183|200") && has_body("application/sdp")) {
    if (Rx_AAR("MO_AAR_REPLY", "term", "", -1) == 0) {
      exit;
    }
  }
}
route[MO_AAR_REPLY] {
  xlog("L_INFO", "Rx AAR result $avp(s:aar_return_code)\n");
}
"#
);

/// The caller's offer: audio (PCMU, PCMA; 64 kbit/s) and video (H.264; 256 kbit/s).
const RX_OFFER: &str = "v=0\r\n\
o=alice 1 1 IN IP4 127.0.0.1\r\n\
s=-\r\n\
c=IN IP4 127.0.0.1\r\n\
t=0 0\r\n\
m=audio 10450 RTP/AVP 0 8\r\n\
b=AS:64\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:8 PCMA/8000\r\n\
m=video 10452 RTP/AVP 96\r\n\
b=AS:256\r\n\
a=rtpmap:96 H264/90000\r\n";

/// The callee's answer: PCMU and H.264.
const RX_ANSWER: &str = "v=0\r\n\
o=bob 1 1 IN IP4 127.0.0.2\r\n\
s=-\r\n\
c=IN IP4 127.0.0.2\r\n\
t=0 0\r\n\
m=audio 10460 RTP/AVP 0\r\n\
b=AS:64\r\n\
a=rtpmap:0 PCMU/8000\r\n\
m=video 10462 RTP/AVP 96\r\n\
b=AS:256\r\n\
a=rtpmap:96 H264/90000\r\n";

/// SIPp's caller: INVITE with [`RX_OFFER`], the 200 (its Record-Route kept), ACK and BYE
/// along the route set.
fn rx_uac_scenario(leg: &str) -> String {
    rx_uac_scenario_ending(leg, RX_UAC_HANGS_UP)
}

/// The caller hangs up: BYE after 300 ms, its 200.
const RX_UAC_HANGS_UP: &str = r#"<pause milliseconds="300"/>
<send retrans="500"><![CDATA[
BYE [next_url] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
[routes]
From: <sip:alice@test.example>;tag=[call_number]
[last_To:]
Call-ID: [call_id]
CSeq: 2 BYE
Max-Forwards: 70
Content-Length: 0

]]></send>
<recv response="200"/>
"#;

/// A SIPp side that receives the BYE (`bye`: how) and answers it 200.
fn rx_answers_bye(bye: &str) -> String {
    format!(
        r#"{bye}
<send><![CDATA[
SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:]
[last_Call-ID:]
[last_CSeq:]
Content-Length: 0

]]></send>
"#
    )
}

/// [`rx_uac_scenario`] with its `ending` after the ACK.
fn rx_uac_scenario_ending(leg: &str, ending: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="rx caller">
<send retrans="500"><![CDATA[
INVITE sip:bob@test.example SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:alice@test.example>;tag=[call_number]
To: <sip:bob@test.example>
Call-ID: [call_id]
CSeq: 1 INVITE
Contact: <sip:alice@[local_ip]:[local_port]>
P-Asserted-Identity: <sip:alice@test.example>
X-Leg: {leg}
Max-Forwards: 70
Content-Type: application/sdp
Content-Length: [len]

{RX_OFFER}]]></send>
<recv response="100" optional="true"/>
<recv response="180" optional="true"/>
<recv response="200" rrs="true"/>
<send><![CDATA[
ACK [next_url] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
[routes]
From: <sip:alice@test.example>;tag=[call_number]
[last_To:]
Call-ID: [call_id]
CSeq: 1 ACK
Max-Forwards: 70
Content-Length: 0

]]></send>
{ending}</scenario>
"#
    )
}

/// SIPp's callee: 180, 200 with [`RX_ANSWER`], then the ACK and the BYE (answered).
fn rx_uas_scenario() -> String {
    rx_uas_scenario_bye(r#"<recv request="BYE"/>"#)
}

/// [`rx_uas_scenario`] whose BYE may not come: ims_dialog 5.6.3 ending a dialog itself sends
/// the BYE to the caller first and, when the caller's 200 is processed before it gets to the
/// callee, refuses the second ("terminating only 1 side of non-confirmed dialogs"): the callee
/// waits 3 s for it.
fn rx_uas_scenario_maybe_bye() -> String {
    rx_uas_scenario_bye(r#"<recv request="BYE" timeout="3000" ontimeout="9"/>"#)
}

/// SIPp's callee with `bye` (how it receives the BYE) before its 200 to it (label 9 after it).
fn rx_uas_scenario_bye(bye: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="rx callee">
<recv request="INVITE" rrs="true"/>
<send><![CDATA[
SIP/2.0 180 Ringing
[last_Via:]
[last_From:]
[last_To:];tag=[pid]bob[call_number]
[last_Call-ID:]
[last_CSeq:]
[last_Record-Route:]
Contact: <sip:bob@[local_ip]:[local_port]>
Content-Length: 0

]]></send>
<send retrans="500"><![CDATA[
SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:];tag=[pid]bob[call_number]
[last_Call-ID:]
[last_CSeq:]
[last_Record-Route:]
Contact: <sip:bob@[local_ip]:[local_port]>
Content-Type: application/sdp
Content-Length: [len]

{RX_ANSWER}]]></send>
<recv request="ACK"/>
{answered}<label id="9"/>
</scenario>
"#,
        answered = rx_answers_bye(bye),
    )
}

/// One SIPp call (caller → Kamailio P-CSCF → callee; the scenarios `uac`.xml and `uas`.xml)
/// to its end; panics with both outputs
/// and Kamailio's log when either side fails.
async fn rx_call(sipp: &Path, k: &Kamailio, uas_port: u16, uac: &str, uas: &str) {
    // the callee of `uas_maybe_bye` may time out waiting for the BYE: SIPp then fails the call
    let callee_checked = uas != "uas_maybe_bye";
    let uas = sipp_cmd(sipp, k, uas, uas_port)
        .spawn()
        .expect("start sipp (callee)");
    udp_bound(uas_port).await;
    let mut uac = sipp_cmd(sipp, k, uac, free_sip_port());
    uac.arg(format!("127.0.0.1:{}", k.sip));
    let uac = uac.spawn().expect("start sipp (caller)");
    sipp_done("caller", uac, true, k).await;
    sipp_done("callee", uas, callee_checked, k).await;
}

/// SIPp running `scenario`.xml (in Kamailio's directory) once on 127.0.0.1:`port`.
fn sipp_cmd(sipp: &Path, k: &Kamailio, scenario: &str, port: u16) -> tokio::process::Command {
    let mut c = tokio::process::Command::new(sipp);
    c.args(["-sf", &format!("{scenario}.xml"), "-i", "127.0.0.1"])
        .args(["-p", &port.to_string(), "-mp", &free_sip_port().to_string()])
        .args(["-m", "1", "-nostdin", "-timeout", "30", "-trace_err"])
        .current_dir(k.dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    c
}

/// Waits (up to 10 s) until UDP `port` shows in /proc/net/udp: SIPp is ready (probing with a
/// bind of our own could steal the port from it).
async fn udp_bound(port: u16) {
    let bound = || {
        let port = format!(":{port:04X}");
        std::fs::read_to_string("/proc/net/udp").is_ok_and(|t| {
            t.lines().any(|l| {
                l.split_whitespace()
                    .nth(1)
                    .is_some_and(|a| a.ends_with(&port))
            })
        })
    };
    for _ in 0..200 {
        if bound() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits (up to 45 s) for the SIPp `child` (`who`) to finish; unless it succeeded panics with
/// its output and Kamailio's log (when `checked`).
async fn sipp_done(who: &str, child: tokio::process::Child, checked: bool, k: &Kamailio) {
    let o = tokio::time::timeout(Duration::from_secs(45), child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("the {who} finishes within 45 s"))
        .unwrap();
    assert!(
        o.status.success() || !checked,
        "{who} failed:\n{}{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr),
        k.tail()
    );
}

/// Kamailio as the Rx P-CSCF ([`PCSCF_RX_SCRIPT`], cdp peering with our node at `ours`) with
/// the SIPp scenarios of the calls, the callee at 127.0.0.1:`uas_port`.
fn pcscf_rx_kamailio(bin: &Path, modules: &Path, ours: SocketAddr, uas_port: u16) -> Kamailio {
    let accept_port = free_port_3900_besides(ours);
    let script = PCSCF_RX_SCRIPT
        .replace("@MOD@", &modules.display().to_string())
        .replace("@UAS@", &format!("sip:127.0.0.1:{uas_port}"));
    Kamailio::run(
        bin,
        "pcscf-rx",
        &Kamailio::cdp_xml(ours, accept_port),
        &script,
        &[
            ("uac.xml", &rx_uac_scenario("orig")),
            ("uac_term.xml", &rx_uac_scenario("term")),
            (
                "uac_aborted.xml",
                // the network hangs up: the caller gets a BYE and answers it
                &rx_uac_scenario_ending("orig", &rx_answers_bye(r#"<recv request="BYE"/>"#)),
            ),
            ("uas.xml", &rx_uas_scenario()),
            ("uas_maybe_bye.xml", &rx_uas_scenario_maybe_bye()),
        ],
    )
}

/// A call through Kamailio's P-CSCF that our PCRF aborts (ASR, TS 29.214 §4.4.4, e.g. the
/// bearer is gone) once it is confirmed: ims_qos answers ASA, ends the dialog (a BYE to both
/// ends: both SIPp scenarios wait for it) and then closes the Rx session with an STR. With
/// `rar_first` the PCRF first reports the release of the call's bearer (RAR with
/// INDICATION_OF_RELEASE_OF_BEARER for media component 1, TS 29.214 §4.4.6.2), which
/// ims_qos 5.6.3 never answers: asserted (our request times out after 3 s, no STR follows and
/// the call stays up for the ASR, whose ASA says 2001). Returns the call's Rx Session-Id and
/// the ASA.
async fn abort_a_call(
    sipp: &Path,
    k: &Kamailio,
    uas_port: u16,
    node: &Node,
    server: &ims::nf::pcrf::PcrfRxServer,
    seen: &RxSeen,
    rar_first: bool,
) -> (String, ims::diameter::OwnedMessage) {
    use ims::diameter::rx::Aar;
    use ims::diameter::Command as _;

    let before = seen.lock().unwrap().len();
    let acks = || k.log().matches("in-dialog ACK\n").count();
    let earlier = acks();
    let abort = async {
        poll("the call's AAR", k, || seen.lock().unwrap().len() > before).await;
        // the call is confirmed once the caller's ACK went through (earlier calls are over)
        poll("the ACK through Kamailio", k, || acks() > earlier).await;
        let (aar, _, _) = seen.lock().unwrap()[before].clone();
        let sid = Aar::decode(&ims::diameter::Message::parse(&aar).unwrap())
            .unwrap()
            .session_id
            .into_owned();
        if rar_first {
            unanswered_rar(
                k,
                node,
                server,
                &sid,
                ims::diameter::rx::SpecificAction::IndicationOfReleaseOfBearer,
                &[1],
                Duration::from_secs(3),
            )
            .await;
            assert_eq!(
                seen.lock().unwrap().len(),
                before + 1,
                "no STR after the RAR"
            );
        }
        let asr = server
            .pcrf()
            .lock()
            .unwrap()
            .abort(
                &sid,
                &server.origin(),
                ims::diameter::rx::AbortCause::BearerReleased,
            )
            .expect("the PCRF holds the session");
        let asa = node.send(&asr).await.expect("Kamailio answers the ASR");
        (sid, asa)
    };
    let ((), r) = tokio::join!(
        rx_call(sipp, k, uas_port, "uac_aborted", "uas_maybe_bye"),
        abort
    );
    r
}

/// Our PCRF's RAR for the Rx session `sid` (Specific-Action `action`, media components
/// `components`, TS 29.214 §4.4.6.2) reaches ims_qos ("Received an IMS_RAR"), which never
/// answers it (ims_qos 5.6.3 has no RAR support): asserted, our request timing out after
/// `wait`.
async fn unanswered_rar(
    k: &Kamailio,
    node: &Node,
    server: &ims::nf::pcrf::PcrfRxServer,
    sid: &str,
    action: ims::diameter::rx::SpecificAction,
    components: &[u32],
    wait: Duration,
) {
    use ims::diameter::Command as _;

    let rar = server
        .pcrf()
        .lock()
        .unwrap()
        .reauth(sid, &server.origin(), &[action], components)
        .expect("the PCRF holds the session");
    let r = node
        .request_with_timeout(rar.encode(0, node.next_end_to_end()), wait)
        .await;
    assert!(
        matches!(r, Err(ims::net::diameter::NodeError::Timeout)),
        "ims_qos 5.6.3 answered a RAR: {r:?}"
    );
    assert!(
        k.log().contains("Received an IMS_RAR"),
        "the RAR did not reach ims_qos:\n{}",
        k.tail()
    );
}

/// The Codec-Data AVPs of a Media-Component-Description, as text.
fn codec_data(mcd: &ims::diameter::rx::MediaComponentDescription<'_>) -> Vec<String> {
    mcd.codec_data
        .iter()
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect()
}

/// The Rx exchanges our PCRF took: (request, answer, PCRF sessions right after).
type RxSeen = std::sync::Arc<std::sync::Mutex<Vec<(Vec<u8>, Vec<u8>, usize)>>>;

/// The ims-nf PCRF (bandwidth limit `max_bandwidth`) behind our node `localhost` (`lenient`:
/// [`our_node_with`]), answering
/// AAR and STR; each exchange is kept with the number of PCRF sessions right after it. Rx is
/// advertised also as a plain Auth-Application-Id: cdp 5.6.3 routes the STR it sends by itself
/// after an ASR with Vendor-Id 0 and finds no peer for it otherwise ("No connected
/// DefaultRoute peer found for app_id 16777236 and vendor id 0").
async fn our_pcrf(
    max_bandwidth: Option<u64>,
    lenient: bool,
) -> (
    Node,
    SocketAddr,
    std::sync::Arc<ims::nf::pcrf::PcrfRxServer>,
    RxSeen,
) {
    let pcrf = std::sync::Arc::new(std::sync::Mutex::new(ims::nf::pcrf::Pcrf::new(
        max_bandwidth,
    )));
    let server = std::sync::Arc::new(ims::nf::pcrf::PcrfRxServer::new(OURS, REALM, pcrf));
    let apps = [
        Application::tgpp_auth(app::CX),
        Application::tgpp_auth(app::RX),
        Application::auth(app::RX),
    ];
    let (node, addr) = our_node_with(Duration::from_secs(30), None, REALM, &apps, lenient).await;
    let seen: RxSeen = Default::default();
    for code in [
        ims::diameter::dict::command::AA,
        ims::diameter::dict::command::SESSION_TERMINATION,
    ] {
        let (srv, sn) = (server.clone(), seen.clone());
        node.handle(app::RX, code, move |req| {
            let (srv, sn) = (srv.clone(), sn.clone());
            async move {
                let bytes = req.message.bytes().to_vec();
                let answer = srv.answer(&bytes).unwrap_or_default();
                let open = srv.pcrf().lock().unwrap().len();
                sn.lock().unwrap().push((bytes, answer.clone(), open));
                answer
            }
        });
    }
    (node, addr, server, seen)
}

/// Kamailio as a P-CSCF (`ims_qos`, `ims_dialog`, `cdp`) asks the ims-nf PCRF behind our node
/// for the media of a SIPp call: the AAR it sends when the 200 brings the SDP answer decodes
/// into one Media-Component-Description per m= line (type, bandwidth from b=AS, Flow-Status,
/// Codec-Data with the offer and the answer) with the Flow-Descriptions TS 29.214 §5.3.8 asks
/// for (out: to the caller's — the UE's — port, in: from it), AF-Application-Identifier,
/// Subscription-Id (the caller's P-Asserted-Identity) and Framed-IP-Address (the offer's
/// address); our AAA 2001 lets the 200 go on (Kamailio's script sees `aar_return_code` 1);
/// the BYE ends Kamailio's dialog and it sends the STR for the same Session-Id, answered 2001,
/// which closes the PCRF's session. A second call asks for more bandwidth than the PCRF
/// allows: our AAA says REQUESTED_SERVICE_NOT_AUTHORIZED (5063) and Kamailio's script sees the
/// failure (no STR follows for it). A third call is the terminating side (`Rx_AAR(…, "term",
/// …)`, the callee is the P-CSCF's UE): Framed-IP-Address and the Flow-Descriptions' UE end
/// come from the answer, Subscription-Id is the callee, Codec-Data says uplink for the answer;
/// AAA 2001 and the STR at the BYE again.
///
/// Last, our PCRF aborts a call (ASR): Kamailio answers ASA 2001 (with Application-Id 0 in the
/// header: cdp 5.6.3), ims_dialog sends a BYE to the caller (and to the callee, unless the
/// caller's 200 came first: an ims_dialog 5.6.3 race, so the callee's BYE is not required) and
/// cdp sends an STR with Destination-Realm twice, which our PCRF answers 5009
/// DIAMETER_AVP_OCCURS_TOO_MANY_TIMES (Failed-AVP: Destination-Realm).
///
/// Seen in ims_qos 5.6.3 (accepted by our decoder): Codec-Data ends with a NUL octet,
/// Specific-Action 5 (void in TS 29.214 now), the ETSI Reservation-Priority, and
/// Vendor-Specific-Application-Id, Authorization-Lifetime, Auth-Grace-Period and
/// Session-Timeout beside the AAR's ABNF.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kamailio_pcscf_asks_our_pcrf_for_the_call_media() {
    use ims::diameter::rx::{Aaa, Aar, FlowStatus, MediaType, Sta, Str};
    use ims::diameter::{Command as _, Outcome};

    let Some((bin, modules, sipp)) =
        kamailio_and("sipp", "install SIPp (Debian package `sip-tester`)")
    else {
        return;
    };
    let (node, addr, server, seen) = our_pcrf(None, false).await;
    let pcrf = server.pcrf().clone();
    let uas_port = free_sip_port();
    let k = pcscf_rx_kamailio(&bin, &modules, addr, uas_port);
    k.wait_cdp_open(&node).await;

    // the call; the STR follows the BYE (when Kamailio's dialog ends): wait for it
    rx_call(&sipp, &k, uas_port, "uac", "uas").await;
    poll("the STR", &k, || seen.lock().unwrap().len() >= 2).await;
    let exchanges = seen.lock().unwrap().clone();
    assert_eq!(exchanges.len(), 2, "one AAR, one STR");

    // the AAR: what Kamailio read in the offer and the answer
    let (aar, aaa, open) = &exchanges[0];
    let msg = ims::diameter::Message::parse(aar).unwrap();
    let aar = Aar::decode(&msg).expect("Kamailio's AAR decodes");
    assert_eq!(msg.application_id(), app::RX);
    assert!(msg.flags().is_proxiable());
    assert_eq!(aar.origin_host, KAMAILIO);
    assert_eq!(aar.destination_realm, REALM);
    assert_eq!(
        aar.af_application_identifier.as_deref(),
        Some(&b"IMS Services"[..])
    );
    let sub = &aar.subscription_id[0];
    assert_eq!(sub.subscription_id_data, "sip:alice@test.example");
    assert_eq!(
        sub.subscription_id_type,
        ims::diameter::base::SubscriptionIdType::EndUserSipUri
    );
    // the UE's address: the offer's c= line (originating side)
    assert_eq!(aar.framed_ip_address.as_deref(), Some(&[127, 0, 0, 1][..]));
    let mcds = &aar.media_component_description;
    assert_eq!(mcds.len(), 2, "one per m= line");
    let expect = [
        (
            1,
            MediaType::Audio,
            10450,
            10460,
            64_000,
            "m=audio 10450",
            "m=audio 10460",
        ),
        (
            2,
            MediaType::Video,
            10452,
            10462,
            256_000,
            "m=video 10452",
            "m=video 10462",
        ),
    ];
    for (mcd, (n, ty, ue_port, far_port, bw, offer_m, answer_m)) in mcds.iter().zip(expect) {
        let what = format!("{mcd:?}");
        assert_eq!(mcd.media_component_number, n, "{what}");
        assert_eq!(mcd.media_type, Some(ty), "{what}");
        assert_eq!(mcd.flow_status, Some(FlowStatus::Enabled), "{what}");
        // b=AS is in kbit/s, the AVPs in bit/s
        assert_eq!(mcd.max_requested_bandwidth_ul, Some(bw), "{what}");
        assert_eq!(mcd.max_requested_bandwidth_dl, Some(bw), "{what}");
        assert_eq!(mcd.media_sub_component.len(), 1, "{what}");
        let flows = &mcd.media_sub_component[0].flow_description;
        assert_eq!(
            flows.iter().map(|f| f.as_ref()).collect::<Vec<_>>(),
            [
                format!("permit out 17 from 127.0.0.2 {far_port} to 127.0.0.1 {ue_port}"),
                format!("permit in 17 from 127.0.0.1 {ue_port} to 127.0.0.2 {far_port}"),
            ],
            "{what}"
        );
        // each one a valid IPFilterRule (RFC 6733 §4.3.1)
        for f in flows.iter() {
            ims::diameter::IpFilterRule::parse(f).unwrap_or_else(|e| panic!("{f}: {e:?}"));
        }
        // Codec-Data (TS 29.214 §5.3.7): direction, offer/answer, then the SDP lines
        let codec = codec_data(mcd);
        assert_eq!(codec.len(), 2, "{codec:?}");
        assert!(codec[0].starts_with("uplink\noffer\n"), "{codec:?}");
        assert!(codec[0].contains(offer_m), "{codec:?}");
        assert!(codec[1].starts_with("downlink\nanswer\n"), "{codec:?}");
        assert!(codec[1].contains(answer_m), "{codec:?}");
    }
    // our AAA: 2001 for the same session, the session now open at the PCRF
    let aaa = ims::diameter::Message::parse(aaa).unwrap();
    let aaa = Aaa::decode(&aaa).unwrap();
    assert_eq!(aaa.session_id, aar.session_id);
    assert_eq!(aaa.result_code, Some(2001));
    assert_eq!(*open, 1);
    assert!(
        k.log().contains("Rx AAR result 1\n"),
        "Kamailio did not take our AAA:\n{}",
        k.tail()
    );

    // the STR for the same session (the BYE), our STA 2001, the PCRF's session closed
    let (str_, sta, open) = &exchanges[1];
    let str_ = ims::diameter::Message::parse(str_).unwrap();
    assert_eq!(str_.code(), Str::CODE);
    let str_ = Str::decode(&str_).expect("Kamailio's STR decodes");
    assert_eq!(str_.session_id, aar.session_id);
    assert_eq!(str_.origin_host, KAMAILIO);
    let sta = ims::diameter::Message::parse(sta).unwrap();
    assert_eq!(Sta::decode(&sta).unwrap().result_code, Some(2001));
    assert_eq!(*open, 0);
    poll("cdp's session cleaned up", &k, || {
        k.log().contains("AUTH_EV_RECV_STA")
    })
    .await;

    // a call above the PCRF's limit (320 kbit/s each way asked, 100 kbit/s allowed): our AAA
    // refuses it and Kamailio's script sees the failure
    pcrf.lock().unwrap().max_bandwidth = Some(100_000);
    rx_call(&sipp, &k, uas_port, "uac", "uas").await;
    poll("the second AAR", &k, || seen.lock().unwrap().len() >= 3).await;
    let (aar2, aaa2, open) = seen.lock().unwrap()[2].clone();
    let aar2 = ims::diameter::Message::parse(&aar2).unwrap();
    assert_eq!(aar2.code(), Aar::CODE);
    let aaa2 = ims::diameter::Message::parse(&aaa2).unwrap();
    assert_eq!(
        aaa2.outcome(),
        Some(ims::nf::pcrf::REQUESTED_SERVICE_NOT_AUTHORIZED)
    );
    assert_eq!(open, 0);
    // (ims_qos sets `aar_return_code` to 1 on DIAMETER_SUCCESS and to a negative value
    // otherwise: -2 in 5.6.3)
    let results = || -> Vec<String> {
        k.log()
            .lines()
            .filter_map(|l| l.split_once("Rx AAR result ").map(|(_, r)| r.to_owned()))
            .collect()
    };
    poll("Kamailio's script sees the refusal", &k, || {
        results().len() >= 2
    })
    .await;
    let r = results();
    assert_eq!(r[0], "1");
    assert!(r[1].starts_with('-'), "the refusal taken as {}", r[1]);

    // the terminating side (the P-CSCF's UE is the callee, `Rx_AAR(…, "term", …)`): the UE's
    // address and ports are now the answer's
    pcrf.lock().unwrap().max_bandwidth = None;
    rx_call(&sipp, &k, uas_port, "uac_term", "uas").await;
    poll("the terminating STR", &k, || {
        seen.lock().unwrap().len() >= 5
    })
    .await;
    let exchanges = seen.lock().unwrap().clone();
    let code = |b: &[u8]| ims::diameter::Message::parse(b).unwrap().code();
    // no STR for the refused session (it never opened): AAR, STR, AAR (5063), AAR, STR
    assert_eq!(
        exchanges
            .iter()
            .map(|(r, _, _)| code(r))
            .collect::<Vec<_>>(),
        [Aar::CODE, Str::CODE, Aar::CODE, Aar::CODE, Str::CODE]
    );
    let (aar3, aaa3, open) = &exchanges[3];
    let aar3 = ims::diameter::Message::parse(aar3).unwrap();
    let aar3 = Aar::decode(&aar3).expect("the terminating AAR decodes");
    // the callee's identity (no P-Asserted-Identity in the 200: the INVITE's Request-URI) and
    // the answer's address
    assert_eq!(
        aar3.subscription_id[0].subscription_id_data,
        "sip:bob@test.example"
    );
    assert_eq!(aar3.framed_ip_address.as_deref(), Some(&[127, 0, 0, 2][..]));
    assert_eq!(aar3.media_component_description.len(), 2);
    for (mcd, (offer_port, ue_port, offer_m, answer_m)) in
        aar3.media_component_description.iter().zip([
            (10450, 10460, "m=audio 10450", "m=audio 10460"),
            (10452, 10462, "m=video 10452", "m=video 10462"),
        ])
    {
        let flows = &mcd.media_sub_component[0].flow_description;
        assert_eq!(
            flows.iter().map(|f| f.as_ref()).collect::<Vec<_>>(),
            [
                format!("permit out 17 from 127.0.0.1 {offer_port} to 127.0.0.2 {ue_port}"),
                format!("permit in 17 from 127.0.0.2 {ue_port} to 127.0.0.1 {offer_port}"),
            ],
            "{mcd:?}"
        );
        // the UE sends the answer now: downlink is the offer, uplink the answer
        let codec = codec_data(mcd);
        assert!(codec[0].starts_with("downlink\noffer\n"), "{codec:?}");
        assert!(codec[0].contains(offer_m), "{codec:?}");
        assert!(codec[1].starts_with("uplink\nanswer\n"), "{codec:?}");
        assert!(codec[1].contains(answer_m), "{codec:?}");
    }
    let aaa3 = ims::diameter::Message::parse(aaa3).unwrap();
    assert_eq!(aaa3.outcome(), Some(Outcome::SUCCESS));
    assert_eq!(*open, 1);
    let (str3, _, open) = &exchanges[4];
    let str3 = ims::diameter::Message::parse(str3).unwrap();
    assert_eq!(Str::decode(&str3).unwrap().session_id, aar3.session_id);
    assert_eq!(*open, 0);

    // the PCRF aborts a call (ASR, TS 29.214 §4.4.4, e.g. the bearer is gone): ims_qos answers
    // ASA, ends the dialog (a BYE to both ends: both SIPp scenarios wait for it) and then
    // closes the Rx session with an STR
    let before = seen.lock().unwrap().len();
    let (sid, asa) = abort_a_call(&sipp, &k, uas_port, &node, &server, &seen, false).await;
    let asa = asa.view();
    assert_eq!(asa.code(), ims::diameter::rx::Asr::CODE);
    assert!(!asa.flags().is_request());
    assert_eq!(asa.outcome(), Some(Outcome::SUCCESS), "ASA");
    // (cdp 5.6.3's ASA has Application-Id 0 in its header and no Auth-Application-Id: our node
    // matches it by Hop-by-Hop Identifier all the same, but it is no valid Rx ASA)
    assert_eq!(asa.application_id(), 0);
    assert_eq!(
        asa.find(ims::diameter::dict::SESSION_ID)
            .and_then(|a| a.utf8().ok()),
        Some(sid.as_str())
    );
    poll("the STR after the ASR", &k, || {
        seen.lock().unwrap().len() >= before + 2
    })
    .await;
    // the STR cdp sends by itself after an ASR carries Destination-Realm twice (cdp 5.6.3):
    // our PCRF answers 5009 DIAMETER_AVP_OCCURS_TOO_MANY_TIMES with that AVP in Failed-AVP
    // (RFC 6733 §7.1.5) and keeps the session (to be aborted or expired otherwise)
    let (str4, sta4, open) = seen.lock().unwrap()[before + 1].clone();
    let str4 = ims::diameter::Message::parse(&str4).unwrap();
    assert_eq!(str4.code(), Str::CODE);
    assert_eq!(
        str4.find(ims::diameter::dict::SESSION_ID)
            .and_then(|a| a.utf8().ok()),
        Some(sid.as_str())
    );
    let realms = str4
        .avps()
        .filter(|a| a.code() == ims::diameter::dict::DESTINATION_REALM.code)
        .count();
    assert_eq!(realms, 2, "cdp's STR after an ASR");
    let sta4 = ims::diameter::Message::parse(&sta4).unwrap();
    assert_eq!(sta4.outcome().map(|o| o.code()), Some(5009));
    let failed = sta4
        .find(ims::diameter::dict::FAILED_AVP)
        .expect("Failed-AVP");
    assert!(
        failed
            .grouped()
            .expect("Failed-AVP is grouped")
            .any(|a| a.code() == ims::diameter::dict::DESTINATION_REALM.code),
        "Failed-AVP names Destination-Realm"
    );
    assert_eq!(open, 1);
    eprintln!(
        "ims_qos: AAR {} (2 media components) answered 2001, STR answered 2001; a second \
         AAR refused 5063; a terminating-side AAR and STR answered 2001; our ASR answered \
         2001, the call ended by Kamailio, its STR (Destination-Realm twice) \
         answered 5009",
        aar.session_id
    );
    drop(k);
    node.shutdown();
    node.wait_stopped(SECS).await.unwrap();
}

/// The UE's IMS-AKA registration through the I-CSCF: REGISTER (with the IMPI in an empty
/// Authorization, the visited network named), the 401 with the AKA challenge, the REGISTER
/// with the AKA response (SIPp's `[authentication]`, the demo subscriber's K/OP/AMF), the 200.
fn register_via_icscf() -> String {
    format!(
        r#"<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="IMS AKA registration through Kamailio's I-CSCF">
{}<recv response="401" auth="true"/>
{}<recv response="200"/>
</scenario>
"#,
        icscf_register(
            1,
            r#"Authorization: Digest username="[service]@ims.example.org",realm="ims.example.org",nonce="",uri="sip:ims.example.org",response="",algorithm=AKAv1-MD5"#
        ),
        icscf_register(
            2,
            "[authentication aka_K=ims-rs-demo-K-01 aka_OP=ims-rs-demo-OP-1 aka_AMF=AM]"
        ),
    )
}

/// One REGISTER of [`register_via_icscf`]: CSeq `cseq`, then the `authorization` line.
fn icscf_register(cseq: u32, authorization: &str) -> String {
    format!(
        r#"<send retrans="500"><![CDATA[
REGISTER sip:ims.example.org SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch];rport
Max-Forwards: 70
From: <sip:[service]@ims.example.org>;tag=[pid]SIPpTag00[call_number]
To: <sip:[service]@ims.example.org>
Call-ID: [call_id]
CSeq: {cseq} REGISTER
Contact: <sip:[service]@[local_ip]:[local_port]>;expires=600
P-Visited-Network-ID: "ims.example.org"
{authorization}
Content-Length: 0

]]></send>
"#
    )
}

/// A full IMS-AKA registration with Kamailio as the I-CSCF in front of our S-CSCF: our
/// Diameter node (`localhost`, realm ims.example.org) carries the ims-nf HSS, asked by both
/// Kamailio (UAR, for each REGISTER) and our S-CSCF (ims-nf, S role only: MAR for the
/// challenge, SAR on success). SIPp registers through Kamailio: 401 with the AKA challenge
/// relayed back, the second REGISTER with the AKA response goes through a second UAR to the
/// same S-CSCF, which answers 200. SIP over UDP; the HSS names the S-CSCF (Server-Name).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kamailio_icscf_registration_round_with_our_scscf() {
    icscf_registration_round(RoundMode::UdpServerName).await;
}

/// The same round over SIP/TCP (SIPp → Kamailio → our S-CSCF, and the replies back), with the
/// first S-CSCF selection made by Kamailio from the Server-Capabilities of our HSS's UAA
/// (`Hss::scscf_capabilities`: mandatory 1, optional 2; no Server-Name, TS 29.229 §6.1.1.1):
/// `ims_icscf`'s table has an S-CSCF without capability 1 (skipped) and ours with 1 and 2. The
/// MAR of our S-CSCF then stores its name in the HSS, so the second UAR is answered 2002 with
/// that Server-Name, and Kamailio relays the second REGISTER there over TCP as well.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kamailio_icscf_registration_round_over_tcp_by_capabilities() {
    icscf_registration_round(RoundMode::TcpCapabilities).await;
}

/// How [`icscf_registration_round`] runs.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum RoundMode {
    /// SIP over UDP; the HSS's UAA names our S-CSCF.
    UdpServerName,
    /// SIP over TCP; the first UAA carries Server-Capabilities, Kamailio picks from its table.
    TcpCapabilities,
}

/// The registration round of [`kamailio_icscf_registration_round_with_our_scscf`].
async fn icscf_registration_round(mode: RoundMode) {
    use ims::diameter::cx::{Mar, Sar, Uar};
    use ims::diameter::Command as _;
    use ims::nf::runtime::{Peer, Roles};

    const HOME: &str = "ims.example.org";
    let Some((bin, modules, sipp)) =
        kamailio_and("sipp", "install SIPp (Debian package `sip-tester`)")
    else {
        return;
    };
    // our HSS (ims-nf, the demo subscriber with its AKA keys) behind our Diameter node
    let (node, addr) = our_node_in(Duration::from_secs(30), None, HOME).await;
    let our_peer = || Peer::External {
        host: OURS.into(),
        addr,
    };
    let mut core_cfg = ims_core::config(
        10000,
        Roles {
            p: false,
            i: false,
            s: true,
            im: false,
        },
        our_peer(),
        our_peer(),
    );
    core_cfg.ports.scscf_term = free_sip_port();
    core_cfg.ports.scscf_orig = free_sip_port();
    let tcp = mode == RoundMode::TcpCapabilities;
    let server_name = format!("sip:127.0.0.1:{}", core_cfg.ports.scscf_term);
    let mut h = if tcp {
        // no S-CSCF of its own: the capabilities the operator asks of one (TS 29.228 §6.1.1)
        ims::nf::hss::Hss::new(None).scscf_capabilities(ims::nf::hss::ScscfCapabilities {
            mandatory: vec![1],
            optional: vec![2],
            server_names: vec![],
        })
    } else {
        ims::nf::hss::Hss::new(Some(server_name.clone()))
    };
    h.add_subscriber(ims_core::subscriber(1));
    let local = ims::nf::cx::LocalHss::new(std::sync::Arc::new(std::sync::Mutex::new(h)), HOME, {
        let mut n = 0u8;
        move || {
            n = n.wrapping_add(1);
            [n; 16]
        }
    });
    let server = std::sync::Arc::new(ims::nf::cx_wire::HssCxServer::new(OURS, HOME, local));
    let seen: Exchanges = Default::default();
    for code in [Uar::CODE, Mar::CODE, Sar::CODE] {
        let (srv, sn) = (server.clone(), seen.clone());
        node.handle(app::CX, code, move |req| {
            let (srv, sn) = (srv.clone(), sn.clone());
            async move {
                let bytes = req.message.bytes().to_vec();
                let answer = srv.answer(&bytes).await.unwrap_or_default();
                sn.lock().unwrap().push((bytes, answer.clone()));
                answer
            }
        });
    }
    // our S-CSCF, asking that HSS
    let core = ims_core::start(core_cfg).await;
    if let Err(e) = node.wait_open("scscf.ims.example.org", SECS).await {
        panic!("the S-CSCF did not connect: {e}");
    }
    // Kamailio's I-CSCF
    let accept_port = free_port_3900_besides(addr);
    // the S-CSCF's replies are logged with the transport they came over; over TCP every
    // relay is forced to TCP (the Server-Name of the second UAA names no transport)
    let relay = if tcp {
        "t_relay_to_tcp();"
    } else {
        "t_relay();"
    };
    let script = ICSCF_SCRIPT
        .replace("@MOD@", &modules.display().to_string())
        .replace("@REALM@", HOME)
        .replace(
            "      t_relay();\n      I_scscf_drop();",
            &format!("      t_on_reply(\"FROM_SCSCF\");\n      {relay}\n      I_scscf_drop();"),
        )
        + "onreply_route[FROM_SCSCF] {\n  xlog(\"L_INFO\", \"reply $rs from the S-CSCF over $proto\\n\");\n}\n";
    // Kamailio's S-CSCF table (used when the UAA has no Server-Name): one without the
    // mandatory capability 1 (nothing listens there), then ours with 1 and 2
    let ours_tcp = format!("{server_name};transport=tcp");
    let (lacking, s_cscf) = s_cscf_table(addr, &ours_tcp);
    let mut db = icscf_db(tcp, &s_cscf);
    let register = register_via_icscf();
    db.push(("register.xml", register.as_str()));
    let k = Kamailio::run(
        &bin,
        if tcp { "icscf-auth-tcp" } else { "icscf-auth" },
        &Kamailio::cdp_xml_in(addr, accept_port, HOME),
        &script,
        &db,
    );
    assert!(
        script.contains("FROM_SCSCF") && script.contains(relay),
        "{script}"
    );
    k.wait_cdp_open(&node).await;

    let mp = free_sip_port().to_string();
    let mut extra = vec!["-mp", mp.as_str()];
    if tcp {
        // one TCP connection to Kamailio for both REGISTERs
        extra.extend(["-t", "t1"]);
    }
    let (ok, out) = ims_core::sipp_ue(
        &sipp,
        k.dir.path(),
        1,
        &format!("127.0.0.1:{}", k.sip),
        "register.xml",
        &free_sip_port().to_string(),
        &extra,
    )
    .await;
    let seen = seen.lock().unwrap().clone();
    let codes: Vec<(u32, String)> = seen
        .iter()
        .map(|(r, _)| {
            let m = ims::diameter::Message::parse(r).unwrap();
            let host = m
                .find(ims::diameter::dict::ORIGIN_HOST)
                .and_then(|a| a.utf8().ok().map(str::to_owned))
                .unwrap_or_default();
            (m.code(), host)
        })
        .collect();
    assert!(ok, "registration failed: {codes:?}\n{out}\n{}", k.tail());
    // UAR (Kamailio), MAR (S-CSCF: the challenge), UAR (Kamailio, the second REGISTER),
    // SAR (S-CSCF: the registration)
    let ours = "scscf.ims.example.org".to_owned();
    assert_eq!(
        codes,
        [
            (Uar::CODE, KAMAILIO.to_owned()),
            (Mar::CODE, ours.clone()),
            (Uar::CODE, KAMAILIO.to_owned()),
            (Sar::CODE, ours),
        ],
        "{}",
        k.tail()
    );
    let msgs: Vec<(ims::diameter::Message<'_>, ims::diameter::Message<'_>)> = seen
        .iter()
        .map(|(r, a)| {
            (
                ims::diameter::Message::parse(r).unwrap(),
                ims::diameter::Message::parse(a).unwrap(),
            )
        })
        .collect();
    let impi = "001010000000001@ims.example.org";
    let impu = "sip:001010000000001@ims.example.org";
    // both UARs: Kamailio's identities from the REGISTER; first, then subsequent registration,
    // both times our S-CSCF as Server-Name (over TCP: the first with Server-Capabilities instead)
    for (i, expected) in [(0, 2001), (2, 2002)] {
        let (r, a) = &msgs[i];
        let uar = Uar::decode(r).expect("Kamailio's UAR decodes");
        assert_eq!(uar.user_name, impi);
        assert_eq!(uar.public_identity, impu);
        assert_eq!(uar.destination_realm, HOME);
        assert_eq!(
            &uar.visited_network_identifier[..],
            b"\"ims.example.org\"",
            "P-Visited-Network-ID as Kamailio copies it"
        );
        let uaa = ims::diameter::cx::Uaa::decode(a).unwrap();
        assert_eq!(a.outcome().map(|o| o.code()), Some(expected), "UAR {i}");
        if tcp && i == 0 {
            assert_eq!(uaa.server_name, None);
            let caps = uaa.server_capabilities.expect("Server-Capabilities");
            assert_eq!(caps.mandatory_capability.to_vec(), [1]);
            assert_eq!(caps.optional_capability.to_vec(), [2]);
        } else {
            assert_eq!(uaa.server_name.as_deref(), Some(server_name.as_str()));
            assert!(uaa.server_capabilities.is_none());
        }
    }
    let log = k.log();
    let transport = if tcp { "tcp" } else { "udp" };
    for code in [401, 200] {
        assert!(
            log.contains(&format!("reply {code} from the S-CSCF over {transport}")),
            "no {code} over {transport}:\n{}",
            k.tail()
        );
    }
    if tcp {
        // Kamailio's own choice: our S-CSCF from its table (not the one lacking capability 1),
        // then the Server-Name the HSS stored with our MAR
        let first = format!("S-CSCF selected: ru={ours_tcp} du=");
        let second = format!("S-CSCF selected: ru={server_name} du=");
        assert!(log.contains(&first), "{first}\n{}", k.tail());
        assert!(log.contains(&second), "{second}\n{}", k.tail());
        assert!(!log.contains(&lacking), "{}", k.tail());
    }
    // the MAR for an AKA vector, the SAR on success
    let mar = Mar::decode(&msgs[1].0).unwrap();
    assert_eq!(mar.user_name, impi);
    assert_eq!(mar.server_name, server_name);
    assert_eq!(
        mar.sip_auth_data_item.sip_authentication_scheme.as_deref(),
        Some("Digest-AKAv1-MD5")
    );
    assert_eq!(msgs[1].1.outcome().map(|o| o.code()), Some(2001));
    let sar = Sar::decode(&msgs[3].0).unwrap();
    assert_eq!(sar.server_name, server_name);
    assert_eq!(
        sar.server_assignment_type,
        ims::diameter::cx::ServerAssignmentType::Registration
    );
    assert_eq!(msgs[3].1.outcome().map(|o| o.code()), Some(2001));
    eprintln!(
        "I-CSCF round over {transport}: UAR 2001 ({}), MAR, 401 relayed, UAR 2002, SAR, 200 \
         (Server-Name {server_name})",
        if tcp {
            "Server-Capabilities"
        } else {
            "Server-Name"
        }
    );
    drop(k);
    drop(core);
    node.shutdown();
    node.wait_stopped(SECS).await.unwrap();
}

/// Kamailio's P-CSCF script for the registration's Rx session (`ims_registrar_pcscf` +
/// `ims_usrloc_pcscf` keep the UE's contact, `ims_qos` subscribes to the signalling path
/// status, TS 29.214 §4.4.5a): a REGISTER is saved as pending and `Rx_AAR_Register` sends the
/// AAR before it is relayed to the registrar (`@REGISTRAR@`, the S-CSCF); the 200 saves the
/// contact (`pcscf_save`), the de-registration's 200 deletes it, which makes `ims_qos` end the
/// Rx session with an STR.
const PCSCF_REG_SCRIPT: &str = pcscf_script!(
    r#"loadmodule "ims_ipsec_pcscf.so"
loadmodule "ims_registrar_pcscf.so"
"#,
    r#"modparam("ims_registrar_pcscf", "pcscf_uri", "sip:127.0.0.1")
"#,
    r#"request_route {
  # a retransmission goes to its transaction (the script ends there)
  t_check_trans();
  if (is_method("REGISTER")) {
    if (!pcscf_save_pending("location")) {
      xlog("L_ERR", "pcscf_save_pending failed\n");
      sl_send_reply("500", "save pending failed");
      exit;
    }
    # 0 (exit): the AAR is sent, REG_AAR_REPLY goes on with the AAA
    Rx_AAR_Register("REG_AAR_REPLY", "location");
    if ($retcode < 0) {
      xlog("L_ERR", "Rx register AAR not sent\n");
      send_reply("403", "No QoS for signalling");
      exit;
    }
    # no AAR needed (a de-registration)
    xlog("L_INFO", "REGISTER without AAR\n");
    route(RELAY_REGISTER);
    exit;
  }
  sl_send_reply("403", "Forbidden");
}
route[REG_AAR_REPLY] {
  xlog("L_INFO", "Rx register AAR result $avp(s:aar_return_code)\n");
  if ($avp(s:aar_return_code) != 1) {
    t_reply("403", "QoS for signalling refused");
    exit;
  }
  route(RELAY_REGISTER);
}
route[RELAY_REGISTER] {
  $du = "@REGISTRAR@";
  t_on_reply("REG_REPLY");
  t_relay();
}
onreply_route[REG_REPLY] {
  if (t_check_status("200")) {
    pcscf_save("location");
    xlog("L_INFO", "contact saved from the 200\n");
  }
}
"#
);

/// The UE's REGISTER through the P-CSCF (CSeq `cseq`, `expires`), then its 200.
fn pcscf_register(cseq: u32, expires: u32) -> String {
    format!(
        r#"<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="UE REGISTER through the P-CSCF">
<send retrans="500"><![CDATA[
REGISTER sip:test.example SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
Max-Forwards: 70
From: <sip:alice@test.example>;tag=ue-reg-1
To: <sip:alice@test.example>
Call-ID: [call_id]
CSeq: {cseq} REGISTER
Contact: <sip:alice@[local_ip]:[local_port]>;expires={expires}
Expires: {expires}
Content-Length: 0

]]></send>
<recv response="200"/>
</scenario>
"#
    )
}

/// The registrar (S-CSCF) behind the P-CSCF: 200 to the registration (expires 600, the
/// P-Associated-URI) and to the de-registration (expires 0).
fn pcscf_registrar() -> String {
    let ok = |expires: u32| {
        format!(
            r#"<recv request="REGISTER"/>
<send><![CDATA[
SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:];tag=scscf-reg
[last_Call-ID:]
[last_CSeq:]
Contact: <sip:alice@127.0.0.1:[$ue]>;expires={expires}
P-Associated-URI: <sip:alice@test.example>
Content-Length: 0

]]></send>
"#
        )
    };
    format!(
        r#"<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="registrar">
{}{}</scenario>
"#,
        ok(600),
        ok(0)
    )
}

/// The UE (SIPp on 127.0.0.1:`ue_port`) runs `scenario` through Kamailio's P-CSCF with the
/// Call-ID of its registration, and succeeds (`who` in the failure).
async fn ue_registers(sipp: &Path, k: &Kamailio, scenario: &str, ue_port: u16, who: &str) {
    let mut ue = sipp_cmd(sipp, k, scenario, ue_port);
    ue.args(["-cid_str", "rx-reg-1@%s"])
        .arg(format!("127.0.0.1:{}", k.sip));
    sipp_done(who, ue.spawn().expect("start sipp (UE)"), true, k).await;
}

/// Kamailio as a P-CSCF with `ims_registrar_pcscf`: a UE's registration makes `ims_qos` open
/// an Rx session for the signalling path (`Rx_AAR_Register`, TS 29.214 §4.4.5a) with the
/// ims-nf PCRF behind our node before the REGISTER goes on: one Media-Component-Description
/// (Media-Type CONTROL) whose Media-Sub-Component has Flow-Usage AF_SIGNALLING and the UE's
/// SIP address in its Flow-Descriptions, Specific-Action subscriptions to the bearer events
/// (loss, recovery, release, IP-CAN change), Subscription-Id the UE's public identity,
/// Framed-IP-Address the UE's address. Our AAA 2001 lets the REGISTER through (the 200 comes
/// back to the UE); the session is kept while the UE is registered; our RAR reporting the loss
/// of the bearer is taken but never answered (ims_qos 5.6.3 has no RAR support); the
/// de-registration's 200 deletes the contact and `ims_qos` ends the session with an STR,
/// answered 2001.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kamailio_pcscf_registration_opens_and_ends_the_signalling_rx_session() {
    use ims::diameter::rx::{Aaa, Aar, FlowStatus, FlowUsage, MediaType, SpecificAction, Sta, Str};
    use ims::diameter::Command as _;

    let Some((bin, modules, sipp)) =
        kamailio_and("sipp", "install SIPp (Debian package `sip-tester`)")
    else {
        return;
    };
    let (node, addr, server, seen) = our_pcrf(None, false).await;
    let accept_port = free_port_3900_besides(addr);
    let scscf_port = free_sip_port();
    let ue_port = loop {
        let p = free_sip_port();
        if p != scscf_port {
            break p;
        }
    };
    let script = PCSCF_REG_SCRIPT
        .replace("@MOD@", &modules.display().to_string())
        .replace("@REGISTRAR@", &format!("sip:127.0.0.1:{scscf_port}"));
    let registrar = pcscf_registrar().replace("[$ue]", &ue_port.to_string());
    let k = Kamailio::run(
        &bin,
        "pcscf-reg",
        &Kamailio::cdp_xml(addr, accept_port),
        &script,
        &[
            ("register.xml", &pcscf_register(1, 600)),
            ("deregister.xml", &pcscf_register(2, 0)),
            ("registrar.xml", &registrar),
        ],
    );
    k.wait_cdp_open(&node).await;

    let scscf = sipp_cmd(&sipp, &k, "registrar", scscf_port)
        .spawn()
        .expect("start sipp (registrar)");
    udp_bound(scscf_port).await;
    // both REGISTERs of the UE with the same Call-ID (RFC 3261 §10.2), the registrar's one call
    ue_registers(&sipp, &k, "register", ue_port, "UE (REGISTER)").await;
    assert!(
        k.log().contains("Rx register AAR result 1\n"),
        "Kamailio did not take our AAA:\n{}",
        k.tail()
    );
    let exchanges = seen.lock().unwrap().clone();
    assert_eq!(exchanges.len(), 1, "one AAR before the REGISTER went on");
    let (aar, aaa, open) = &exchanges[0];
    let msg = ims::diameter::Message::parse(aar).unwrap();
    let aar = Aar::decode(&msg).expect("Kamailio's registration AAR decodes");
    assert_eq!(msg.application_id(), app::RX);
    assert_eq!(aar.origin_host, KAMAILIO);
    assert_eq!(aar.destination_realm, REALM);
    assert_eq!(
        aar.subscription_id
            .iter()
            .map(|s| s.subscription_id_data.as_ref())
            .collect::<Vec<_>>(),
        ["sip:alice@test.example"]
    );
    assert_eq!(aar.framed_ip_address.as_deref(), Some(&[127, 0, 0, 1][..]));
    // one media component for the signalling: Media-Type CONTROL, one sub-component with
    // Flow-Usage AF_SIGNALLING whose Flow-Descriptions name the UE's SIP address (ims_qos
    // 5.6.3 puts the UE's port at both ends, protocol "ip")
    let mcds = &aar.media_component_description;
    assert_eq!(mcds.len(), 1, "{mcds:?}");
    assert_eq!(mcds[0].media_component_number, 1);
    assert_eq!(mcds[0].media_type, Some(MediaType::Control));
    assert_eq!(mcds[0].flow_status, Some(FlowStatus::Enabled));
    let subs = &mcds[0].media_sub_component;
    assert_eq!(subs.len(), 1, "{subs:?}");
    assert_eq!(subs[0].flow_number, 1);
    assert_eq!(subs[0].flow_usage, Some(FlowUsage::AfSignalling));
    assert_eq!(
        subs[0]
            .flow_description
            .iter()
            .map(|f| f.as_ref())
            .collect::<Vec<_>>(),
        [
            format!("permit out ip from 127.0.0.1 {ue_port} to 127.0.0.1 {ue_port}"),
            format!("permit in ip from 127.0.0.1 {ue_port} to 127.0.0.1 {ue_port}"),
        ]
    );
    for f in subs[0].flow_description.iter() {
        ims::diameter::IpFilterRule::parse(f).unwrap_or_else(|e| panic!("{f}: {e:?}"));
    }
    // the P-CSCF subscribes to the bearer events of the signalling path (TS 29.214 §4.4.5a)
    for action in [
        SpecificAction::IndicationOfLossOfBearer,
        SpecificAction::IndicationOfRecoveryOfBearer,
        SpecificAction::IndicationOfReleaseOfBearer,
        SpecificAction::IpCanChange,
    ] {
        assert!(aar.specific_action.contains(&action), "{action:?}: {aar:?}");
    }
    let aaa = Aaa::decode(&ims::diameter::Message::parse(aaa).unwrap()).unwrap();
    assert_eq!(aaa.session_id, aar.session_id);
    assert_eq!(aaa.result_code, Some(2001));
    assert_eq!(*open, 1);
    let sid = aar.session_id.to_string();
    assert_eq!(
        server.pcrf().lock().unwrap().session_ids(),
        std::slice::from_ref(&sid)
    );

    // our PCRF reports the loss of the signalling bearer the P-CSCF subscribed to (RAR with
    // Specific-Action INDICATION_OF_LOSS_OF_BEARER, TS 29.214 §4.4.6.2): ims_qos 5.6.3 takes
    // it ("Received an IMS_RAR") but has no RAR support ("TODO" in its request handler,
    // which returns no answer), so no RAA comes and nothing happens: our request times out,
    // the registration and its Rx session stay (the STR below still comes at the
    // de-registration). A PCRF facing it must use ASR to end the session (asserted for a call
    // in `kamailio_pcscf_asks_our_pcrf_for_the_call_media`).
    unanswered_rar(
        &k,
        &node,
        &server,
        &sid,
        SpecificAction::IndicationOfLossOfBearer,
        &[],
        Duration::from_secs(4),
    )
    .await;
    assert_eq!(seen.lock().unwrap().len(), 1, "no STR after the RAR");
    assert_eq!(server.pcrf().lock().unwrap().len(), 1);

    // the de-registration: no AAR; its 200 deletes the contact and ims_qos sends the STR
    ue_registers(&sipp, &k, "deregister", ue_port, "UE (de-REGISTER)").await;
    sipp_done("registrar", scscf, true, &k).await;
    poll("the STR at de-registration", &k, || {
        seen.lock().unwrap().len() >= 2
    })
    .await;
    let exchanges = seen.lock().unwrap().clone();
    assert_eq!(exchanges.len(), 2, "then only the STR");
    let (str_, sta, open) = &exchanges[1];
    let str_ =
        Str::decode(&ims::diameter::Message::parse(str_).unwrap()).expect("Kamailio's STR decodes");
    assert_eq!(str_.session_id, sid);
    let sta = Sta::decode(&ims::diameter::Message::parse(sta).unwrap()).unwrap();
    assert_eq!(sta.result_code, Some(2001));
    assert_eq!(*open, 0);
    drop(k);
    node.shutdown();
    node.wait_stopped(SECS).await.unwrap();
}

/// [`NodeConfig::merge_repeated_destination_realm`] against the real cdp: the STR Kamailio
/// sends after our ASR carries Destination-Realm twice (asserted, with the strict default's
/// 5009, in `kamailio_pcscf_asks_our_pcrf_for_the_call_media`); a node with the leniency on
/// hands the PCRF that STR with one Destination-Realm: it decodes, STA 2001, and the PCRF's
/// session is closed. Before the ASR the PCRF sends a RAR for the call (release of its bearer):
/// ims_qos 5.6.3 never answers it and leaves the call up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kamailio_str_after_an_asr_is_taken_by_a_lenient_node() {
    use ims::diameter::rx::{Sta, Str};
    use ims::diameter::{Command as _, Outcome};

    let Some((bin, modules, sipp)) =
        kamailio_and("sipp", "install SIPp (Debian package `sip-tester`)")
    else {
        return;
    };
    let (node, addr, server, seen) = our_pcrf(None, true).await;
    let uas_port = free_sip_port();
    let k = pcscf_rx_kamailio(&bin, &modules, addr, uas_port);
    k.wait_cdp_open(&node).await;
    let (sid, asa) = abort_a_call(&sipp, &k, uas_port, &node, &server, &seen, true).await;
    assert_eq!(asa.view().outcome(), Some(Outcome::SUCCESS), "ASA");
    poll("the STR after the ASR", &k, || {
        seen.lock().unwrap().len() >= 2
    })
    .await;
    let (str_, sta, open) = seen.lock().unwrap()[1].clone();
    let str_ = ims::diameter::Message::parse(&str_).unwrap();
    let realms = str_
        .avps()
        .filter(|a| a.is(ims::diameter::dict::DESTINATION_REALM))
        .count();
    assert_eq!(realms, 1, "merged before the PCRF saw it");
    assert_eq!(Str::decode(&str_).expect("the STR decodes").session_id, sid);
    let sta = ims::diameter::Message::parse(&sta).unwrap();
    assert_eq!(Sta::decode(&sta).unwrap().result_code, Some(2001));
    assert_eq!(open, 0, "the PCRF closed the session");
    drop(k);
    node.shutdown();
    node.wait_stopped(SECS).await.unwrap();
}
