//! Interop with freeDiameter (`freeDiameterd`, Debian package `freediameter`) as a real Diameter
//! peer over TCP on 127.0.0.1, each test with its own configuration and throw-away TLS
//! certificate (freeDiameter wants one even for plain TCP):
//! - our node connects: CER/CEA with Cx (16777216) and Rx (16777236) advertised, our DWRs are
//!   answered, DPR/DPA closes cleanly;
//! - freeDiameter connects to our node, sends its DWR (its TwTimer of 6 s) which we answer, and
//!   disconnects with DPR when it stops;
//! - freeDiameter relays between two of our nodes (its 3GPP dictionary parses every message, so a
//!   malformed AVP shows in its log, which a control request proves): a Cx MAR/MAA and an Rx
//!   AAR/AAA cross it intact. (The Debian build's dictionaries define the Rx commands but no Cx
//!   command, so freeDiameter relays Cx without parsing its AVPs; there the field-by-field
//!   comparison at the server is the check.)
//!
//! Skipped when `freeDiameterd` or `openssl` is missing, unless `IMS_REQUIRE_INTEROP=1`. Set
//! `IMS_KEEP_FD=1` to keep the configuration and logs (the directory is printed).

mod common;
#[path = "interop_common/cx_rx.rs"]
mod cx_rx;
mod interop_common;

use ims::diameter::base::DisconnectCause;
use ims::diameter::dict::app;
use ims::diameter::peer::{Application, PeerState};
use ims::net::diameter::{Node, NodeConfig};
use interop_common::{free_port, freediameter_extensions, FreeDiameter};
use std::path::{Path, PathBuf};
use std::process::{Command as Process, Stdio};
use std::sync::Arc;
use std::time::Duration;

const FD_HOST: &str = "fd.test.example";
const FD_REALM: &str = "test.example";
const SECS: Duration = Duration::from_secs(10);

fn tools() -> Option<(PathBuf, PathBuf)> {
    let fd = common::interop_tool(
        "freeDiameterd",
        "install freeDiameter (Debian package `freediameter`)",
    )?;
    let ssl = common::interop_tool("openssl", "install openssl (Debian package `openssl`)")?;
    Some((fd, ssl))
}

/// A running freeDiameterd and its temp dir (configuration, certificate, log); killed, then
/// the dir removed, on drop.
struct Fd {
    fd: FreeDiameter,
    _dir: common::TempDir,
}

impl std::ops::Deref for Fd {
    type Target = FreeDiameter;
    fn deref(&self) -> &FreeDiameter {
        &self.fd
    }
}

/// Starts freeDiameterd with `extra` configuration lines (ConnectPeer, ...).
fn start_freediameter(fd: &Path, ssl: &Path, tag: &str, extra: &str) -> Fd {
    let dir = common::TempDir::new("fd", tag, "IMS_KEEP_FD");
    let d = dir.path();
    let st = Process::new(ssl)
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        ])
        .args(["-subj", &format!("/CN={FD_HOST}")])
        .arg("-keyout")
        .arg(d.join("key.pem"))
        .arg("-out")
        .arg(d.join("cert.pem"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("run openssl");
    assert!(st.success(), "openssl req failed");
    std::fs::write(
        d.join("acl.conf"),
        "ALLOW_OLD_TLS *.test.example\nALLOW_IPSEC *.test.example\n",
    )
    .unwrap();
    let port = free_port();
    let conf = format!(
        r#"Identity = "{FD_HOST}";
Realm = "{FD_REALM}";
Port = {port};
SecPort = 0;
No_SCTP;
No_IPv6;
ListenOn = "127.0.0.1";
TLS_Cred = "{d}/cert.pem", "{d}/key.pem";
TLS_CA = "{d}/cert.pem";
TwTimer = 6;
TcTimer = 3;
AppServThreads = 2;
LoadExtension = "{e}/dict_nasreq.fdx";
LoadExtension = "{e}/dict_dcca.fdx";
LoadExtension = "{e}/dict_dcca_3gpp.fdx";
LoadExtension = "{e}/dbg_msg_dumps.fdx" : "0x0080";
LoadExtension = "{e}/acl_wl.fdx" : "{d}/acl.conf";
{extra}
"#,
        d = d.display(),
        e = freediameter_extensions().display(),
    );
    Fd {
        fd: FreeDiameter::start(fd, d, &conf, port),
        _dir: dir,
    }
}

fn node_cfg(host: &str, realm: &str) -> NodeConfig {
    let mut c = NodeConfig::new(host, realm);
    c.applications = vec![
        Application::tgpp_auth(app::CX),
        Application::tgpp_auth(app::RX),
    ];
    c.vendor_id = 32473;
    c.watchdog_jitter = Duration::ZERO;
    c.request_timeout = SECS;
    c.origin_state_id = Some(1_700_000_000);
    c
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn our_node_connects_watchdog_and_dpr() {
    let Some((fd, ssl)) = tools() else { return };
    let fdd = start_freediameter(&fd, &ssl, "connect", "");
    runtime().block_on(async {
        let mut c = node_cfg("scscf.test.example", FD_REALM);
        c.watchdog_interval = Duration::from_secs(1);
        let node = Node::new(c);
        node.add_peer(FD_HOST, fdd.addr());
        let info = node
            .wait_open(FD_HOST, SECS)
            .await
            .unwrap_or_else(|e| panic!("{e}\n{}", fdd.log()));
        // freeDiameter relays, so it advertises the relay application: both of ours are common
        assert_eq!(info.origin_host, FD_HOST);
        assert_eq!(info.origin_realm, FD_REALM);
        assert!(
            info.product_name.contains("freeDiameter"),
            "{}",
            info.product_name
        );
        assert_eq!(info.common_applications, vec![app::CX, app::RX]);
        // freeDiameter's dictionary parsed our CER with both applications
        let log = fdd.log();
        let cer = log
            .lines()
            .find(|l| l.contains("Capabilities-Exchange-Request(257)[R---]"))
            .unwrap_or_else(|| panic!("no parsed CER:\n{log}"));
        assert!(
            cer.contains(r#"Origin-Host(264)[-M]="scscf.test.example""#),
            "{cer}"
        );
        assert!(
            cer.contains("Auth-Application-Id(258)[-M]=16777216"),
            "{cer}"
        );
        assert!(
            cer.contains("Auth-Application-Id(258)[-M]=16777236"),
            "{cer}"
        );

        // three of our DWRs answered by freeDiameter's DWAs
        tokio::time::sleep(Duration::from_millis(3500)).await;
        let st = node.peer_status(FD_HOST).unwrap();
        assert!(st.stats.dwr_sent >= 3, "{:?}", st.stats);
        assert!(st.stats.dwa_received >= 3, "{:?}", st.stats);
        assert!(
            st.stats.dwa_received + 1 >= st.stats.dwr_sent,
            "{:?}",
            st.stats
        );
        assert_eq!(st.watchdog, ims::diameter::peer::WatchdogState::Okay);

        // DPR/DPA
        node.disconnect(FD_HOST, DisconnectCause::Busy).unwrap();
        node.wait_closed(FD_HOST, SECS).await.unwrap();
        let st = node.peer_status(FD_HOST).unwrap();
        assert_eq!(st.state, PeerState::Closed);
        assert_eq!(
            st.stats.dpa_received,
            1,
            "closed without a DPA:\n{}",
            fdd.log()
        );
    });
    // its log is written asynchronously: wait for the last line we look for
    fdd.wait_log("'Disconnect-Peer-Answer'", SECS);
    let log = fdd.log();
    assert!(
        log.matches("'Device-Watchdog-Answer'").count() >= 3,
        "{log}"
    );
    assert!(log.contains("val='BUSY'"), "{log}");
    assert!(log.contains("'Disconnect-Peer-Answer'"), "{log}");
    assert!(!log.contains("ERROR"), "{log}");
}

#[test]
fn freediameter_connects_to_our_node_and_sends_dwr() {
    let Some((fd, ssl)) = tools() else { return };
    runtime().block_on(async {
        // a long Tw on our side so freeDiameter's 6 s watchdog fires first
        let mut c = node_cfg("hss.test.example", FD_REALM);
        c.watchdog_interval = Duration::from_secs(30);
        let node = Node::new(c);
        let addr = node.listen("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let extra = format!(
            r#"ConnectPeer = "hss.test.example" {{ ConnectTo = "127.0.0.1"; Port = {}; No_TLS; }};"#,
            addr.port()
        );
        let fdd = start_freediameter(&fd, &ssl, "accept", &extra);
        let info = node
            .wait_open(FD_HOST, SECS)
            .await
            .unwrap_or_else(|e| panic!("{e}\n{}", fdd.log()));
        assert!(info.product_name.contains("freeDiameter"));
        // we are the responder: R-Open
        assert_eq!(node.peer_status(FD_HOST).unwrap().state, PeerState::ROpen);
        // its DWR after TwTimer (6 s, ±2 s jitter)
        let start = tokio::time::Instant::now();
        loop {
            let st = node.peer_status(FD_HOST).unwrap();
            if st.stats.dwr_received >= 1 {
                break;
            }
            assert!(start.elapsed() < Duration::from_secs(12), "no DWR:\n{}", fdd.log());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // it stays open (our DWA satisfied its watchdog); then it stops with DPR
        assert!(node.peer_status(FD_HOST).unwrap().state.is_open());
        fdd.terminate();
        node.wait_closed(FD_HOST, SECS)
            .await
            .unwrap_or_else(|e| panic!("{e}\n{}", fdd.log()));
        let st = node.peer_status(FD_HOST).unwrap();
        assert_eq!(st.stats.dpr_received, 1, "{:?}", st.stats);
        fdd.wait_exit(SECS);
        let log = fdd.log();
        // our CEA and DWA, parsed by freeDiameter
        let cea = log
            .lines()
            .find(|l| l.contains("Capabilities-Exchange-Answer(257)[----]"))
            .unwrap_or_else(|| panic!("no parsed CEA:\n{log}"));
        assert!(cea.contains("'DIAMETER_SUCCESS'"), "{cea}");
        assert!(cea.contains("Auth-Application-Id(258)[-M]=16777216"), "{cea}");
        assert!(cea.contains("Auth-Application-Id(258)[-M]=16777236"), "{cea}");
        assert!(log.contains("'Device-Watchdog-Answer'"), "{log}");
        assert!(log.contains("'Disconnect-Peer-Answer'"), "{log}");
        assert!(!log.contains("ERROR"), "{log}");
    });
}

#[test]
fn freediameter_relays_cx_and_rx_between_our_nodes() {
    let Some((fd, ssl)) = tools() else { return };
    let fdd = start_freediameter(&fd, &ssl, "relay", "");
    runtime().block_on(async {
        // the HSS/PCRF side, in its own realm
        let server = Node::new(node_cfg("hss.home.test.example", "home.test.example"));
        let seen: cx_rx::Seen = Arc::default();
        cx_rx::serve_cx_and_rx(&server, &seen);
        server.add_peer(FD_HOST, fdd.addr());
        let client = Node::new(node_cfg(
            "scscf.visited.test.example",
            "visited.test.example",
        ));
        client.add_peer(FD_HOST, fdd.addr());
        server
            .wait_open(FD_HOST, SECS)
            .await
            .unwrap_or_else(|e| panic!("{e}\n{}", fdd.log()));
        client
            .wait_open(FD_HOST, SECS)
            .await
            .unwrap_or_else(|e| panic!("{e}\n{}", fdd.log()));
        // our side is open once the CEA arrived; freeDiameter moves its side of each peer to
        // STATE_OPEN just after sending it, and routes nothing to a peer before: wait for both
        // (a request sent in between gets 3002 "no remaining suitable candidate")
        let deadline = tokio::time::Instant::now() + SECS;
        let open = |log: &str, host: &str| {
            log.lines()
                .any(|l| l.contains("-> 'STATE_OPEN'") && l.contains(&format!("'{host}'")))
        };
        loop {
            let log = fdd.log();
            if open(&log, "hss.home.test.example") && open(&log, "scscf.visited.test.example") {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "freeDiameter never opened both peers:\n{log}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }

        cx_rx::cx_and_rx_through(&client, &seen, &fdd).await;
    });
}
