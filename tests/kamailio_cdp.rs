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
//! Skips when Kamailio or its IMS modules are missing unless `IMS_REQUIRE_INTEROP=1`;
//! `IMS_KEEP_KAMAILIO=1` keeps the configuration and log.

mod common;
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
        format!(
            r#"<?xml version="1.0" encoding="UTF-8"?>
<DiameterPeer FQDN="{KAMAILIO}" Realm="{REALM}" Vendor_Id="10415" Product_Name="CDiameterPeer"
  AcceptUnknownPeers="0" DropUnknownOnDisconnect="1" Tc="2" Workers="2" QueueLength="16"
  TransactionTimeout="5" SessionsHashSize="128" DefaultAuthSessionTimeout="3600"
  MaxAuthSessionTimeout="3600">
  <Peer FQDN="{OURS}" Realm="{REALM}" port="{port}"/>
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
        Process::spawn(cmd, d).expect("start kamailio")
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
    let mut c = NodeConfig::new(OURS, REALM);
    c.applications = vec![
        Application::tgpp_auth(app::CX),
        Application::tgpp_auth(app::RX),
    ];
    c.vendor_id = 10415;
    c.watchdog_interval = tw;
    c.watchdog_jitter = Duration::ZERO;
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
    let mut accept_port = free_port_3900();
    while accept_port == addr.port() {
        accept_port = free_port_3900();
    }
    let k = Kamailio::start(&bin, &modules, addr, accept_port);

    // cdp connects: CER/CEA with Cx and Rx in common
    let info = match node.wait_open(KAMAILIO, SECS).await {
        Ok(i) => i,
        Err(e) => panic!("cdp did not open: {e}\n{}", k.tail()),
    };
    assert_eq!(info.origin_realm, REALM);
    assert_eq!(info.product_name, "CDiameterPeer");
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
modparam("ims_icscf", "cxdx_dest_realm", "test.example")
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kamailio_icscf_asks_our_hss_and_forwards_to_the_server_name() {
    let Some((bin, modules)) = kamailio() else {
        return;
    };
    let Some(sipsak) = common::interop_tool("sipsak", "install sipsak (Debian package `sipsak`)")
    else {
        return;
    };
    // the S-CSCF the UAA names: a UDP socket of the test
    let scscf = {
        let mut sock = None;
        for _ in 0..20 {
            if let Ok(s) = tokio::net::UdpSocket::bind(("127.0.0.1", free_sip_port())).await {
                sock = Some(s);
                break;
            }
        }
        sock.expect("a UDP port in 10000-10499")
    };
    let scscf_uri = format!("sip:127.0.0.1:{}", scscf.local_addr().unwrap().port());

    // our HSS (ims-nf) behind our Diameter node, answering UAR
    let mut h = ims::nf::hss::Hss::new(Some(scscf_uri.clone()));
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
    let mut accept_port = free_port_3900();
    while accept_port == addr.port() {
        accept_port = free_port_3900();
    }
    let script = ICSCF_SCRIPT.replace("@MOD@", &modules.display().to_string());
    let k = Kamailio::run(
        &bin,
        "icscf",
        &Kamailio::cdp_xml(addr, accept_port),
        &script,
        &[
            ("db/version", "table_name(str) table_version(int)\n"),
            (
                "db/nds_trusted_domains",
                "id(int,auto) trusted_domain(str)\n1:test.example\n",
            ),
            ("db/s_cscf", "id(int,auto) name(str) s_cscf_uri(str)\n"),
            (
                "db/s_cscf_capabilities",
                "id(int,auto) id_s_cscf(int) capability(int)\n",
            ),
        ],
    );
    if let Err(e) = node.wait_open(KAMAILIO, SECS).await {
        panic!("cdp did not open: {e}\n{}", k.tail());
    }

    // sipsak sends a REGISTER for alice to the I-CSCF
    let ue = free_sip_port();
    let register = format!(
        "REGISTER sip:test.example SIP/2.0\r\n\
         Via: SIP/2.0/UDP 127.0.0.1:{ue};branch=z9hG4bK-icscf-1;rport\r\n\
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
    let mut ua = Command::new(&sipsak)
        .arg("-f")
        .arg(k.dir.path().join("register.sip"))
        .args([
            "-s",
            &format!("sip:127.0.0.1:{}", k.sip),
            "-l",
            &ue.to_string(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("run sipsak");

    // the REGISTER reaches the S-CSCF of the UAA's Server-Name
    let mut buf = vec![0u8; 65536];
    let got = tokio::time::timeout(SECS, scscf.recv_from(&mut buf)).await;
    let _ = ua.kill();
    let _ = ua.wait();
    let (n, _) = match got {
        Ok(r) => r.unwrap(),
        Err(_) => panic!(
            "no REGISTER at the S-CSCF; UARs seen: {}\n{}",
            seen.lock().unwrap().len(),
            k.tail()
        ),
    };
    let fwd = String::from_utf8_lossy(&buf[..n]).into_owned();
    // Kamailio sent it to the Server-Name, which is also its Request-URI
    assert!(
        fwd.starts_with(&format!("REGISTER {scscf_uri} SIP/2.0\r\n")),
        "{fwd}"
    );
    assert!(fwd.contains("Call-ID: icscf-uar-1@127.0.0.1"), "{fwd}");
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
    assert_eq!(text(&uaa, ims::diameter::dict::SERVER_NAME), scscf_uri);
    eprintln!(
        "I-CSCF: UAR for alice answered with Server-Name {scscf_uri}; Kamailio relayed: {}",
        fwd.lines().next().unwrap_or_default()
    );
    drop(k);
    node.shutdown();
    node.wait_stopped(SECS).await.unwrap();
}
