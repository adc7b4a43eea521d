//! Inband security (RFC 6733 §6.10 Inband-Security-Id, RFC 3588 §2.1): CER/CEA in clear on a
//! plain TCP connection agree on TLS, then the TLS handshake runs on that same connection, and
//! everything after it (DWR/DWA, requests) is encrypted.
//!
//! A recording TCP proxy sits between the two ends: what crosses it must be exactly one clear
//! Diameter message each way (the CER, the CEA), then TLS records (content type 22, version 3.x),
//! and the Origin-Host AVP, which every DWR/DWA and request carries, must appear in clear only
//! in that CER/CEA.
//!
//! Between two of our nodes, and with freeDiameter (`freeDiameterd`, Debian package
//! `freediameter`, `TLS_old_method` / the `ALLOW_OLD_TLS` ACL flag) in both directions; and
//! freeDiameter as a relay between two of our nodes with TLS after CER/CEA on both legs, where a
//! Cx MAR/MAA and an Rx AAR/AAA cross it intact (it parses the Rx ones with its dictionary).
//! Certificates come from a throw-away CA made with `openssl` (the helpers shared with the root
//! package's interop tests, `tests/interop_common`). Skipped when `openssl` or
//! `freeDiameterd` is missing unless `IMS_REQUIRE_INTEROP=1`.
#![cfg(feature = "tls")]

// the interop helpers shared with the root package's tests
#[path = "../../../tests/common/mod.rs"]
mod common;
#[path = "../../../tests/interop_common/cx_rx.rs"]
mod cx_rx;
#[path = "../../../tests/interop_common/mod.rs"]
mod interop_common;

use cx_rx::{mar, serve_mar};
use ims_diameter::dict::app;
use ims_diameter::peer::{Application, InbandSecurity, PeerState};
use ims_diameter::{Command, Outcome};
use ims_net::diameter::{Node, NodeConfig};
use ims_net::tls::{ClientAuth, Identity, TlsConfig, Trust};
use interop_common::{
    free_port, freediameter_extensions as extension_dir, start_tls_freediameter, FreeDiameter, Pki,
};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const REALM: &str = "test.example";
const FD_HOST: &str = "fd.test.example";
const SECS: Duration = Duration::from_secs(10);
/// The HSS ports of `restarted_nodes_come_back_over_tls` (TLS port, inband): fixed, from the
/// Diameter tests' range 10000-10999 (see the test for why not an ephemeral port).
const RESTART_PORTS: (u16, u16) = (10611, 10612);

/// The shared test CA (`tests/interop_common`), files under `ims-inband-<tag>-…` (kept with
/// `IMS_KEEP_TLS=1`); `None` (skip) without `openssl`.
fn new_pki(tag: &str) -> Option<Pki> {
    Pki::new("inband", tag, "IMS_KEEP_TLS")
}

/// A TLS configuration with the CA's leaf certificate for `name`, trusting the CA, asking the
/// peer for its certificate.
fn tls(pki: &Pki, stem: &str, name: &str) -> TlsConfig {
    let (pem, key) = pki.leaf(stem, name);
    TlsConfig::new(
        Some(Identity::from_pem_files(pem, key).expect("leaf")),
        Trust::ca_pem_file(pki.path("ca.pem")).unwrap(),
        ClientAuth::Required,
    )
    .unwrap()
}

/// `freeDiameterd` from PATH (skip when missing unless `IMS_REQUIRE_INTEROP=1`).
fn freediameterd() -> Option<PathBuf> {
    common::interop_tool(
        "freeDiameterd",
        "install freeDiameter (Debian package `freediameter`)",
    )
}

/// A TCP proxy to `target` that records what crosses it: (client → server, server → client).
type Recorded = Arc<Mutex<(Vec<u8>, Vec<u8>)>>;

async fn proxy(target: SocketAddr) -> (SocketAddr, Recorded) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let rec: Recorded = Arc::default();
    let r = rec.clone();
    tokio::spawn(async move {
        // one connection is enough for these tests
        let Ok((client, _)) = l.accept().await else {
            return;
        };
        let Ok(server) = TcpStream::connect(target).await else {
            return;
        };
        let (mut cr, mut cw) = client.into_split();
        let (mut sr, mut sw) = server.into_split();
        let r2 = r.clone();
        tokio::spawn(async move {
            let mut b = vec![0u8; 16384];
            while let Ok(n) = cr.read(&mut b).await {
                if n == 0 || sw.write_all(&b[..n]).await.is_err() {
                    break;
                }
                r2.lock().unwrap().0.extend_from_slice(&b[..n]);
            }
            let _ = sw.shutdown().await;
        });
        let mut b = vec![0u8; 16384];
        while let Ok(n) = sr.read(&mut b).await {
            if n == 0 || cw.write_all(&b[..n]).await.is_err() {
                break;
            }
            r.lock().unwrap().1.extend_from_slice(&b[..n]);
        }
        let _ = cw.shutdown().await;
    });
    (addr, rec)
}

/// The encoded Origin-Host AVP (code 264, M flag) carrying `host`.
fn origin_host_avp(host: &str) -> Vec<u8> {
    let mut v = vec![0, 0, 1, 8, 0x40];
    v.extend_from_slice(&((8 + host.len()) as u32).to_be_bytes()[1..]);
    v.extend_from_slice(host.as_bytes());
    v
}

fn count(hay: &[u8], needle: &[u8]) -> usize {
    hay.windows(needle.len()).filter(|w| *w == needle).count()
}

/// One direction of the stream: a single clear Diameter message with `code` and request flag,
/// then only TLS records; `origin` (whose Origin-Host AVP every later message would carry in
/// clear) appears in clear only in that first message. Returns the number of TLS records.
fn check_stream(dir: &str, bytes: &[u8], request: bool, origin: &str) -> usize {
    assert!(bytes.len() > 20, "{dir}: nothing crossed");
    assert_eq!(bytes[0], 1, "{dir}: not Diameter first");
    let len = u32::from_be_bytes([0, bytes[1], bytes[2], bytes[3]]) as usize;
    let code = u32::from_be_bytes([0, bytes[5], bytes[6], bytes[7]]);
    assert_eq!(code, 257, "{dir}: the clear message is not CER/CEA");
    assert_eq!(bytes[4] & 0x80 != 0, request, "{dir}: R flag");
    assert!(bytes.len() > len, "{dir}: nothing after the CER/CEA");
    assert_eq!(
        count(bytes, &origin_host_avp(origin)),
        1,
        "{dir}: Origin-Host {origin} seen in clear after the CER/CEA"
    );
    // walk the TLS records: type 20..=23, version 3.x, length
    let mut at = len;
    let mut records = 0;
    while at + 5 <= bytes.len() {
        let (ty, major) = (bytes[at], bytes[at + 1]);
        assert!(
            (20..=23).contains(&ty) && major == 3,
            "{dir}: not a TLS record at {at}: {:02x?}",
            &bytes[at..(at + 5).min(bytes.len())]
        );
        let rl = u16::from_be_bytes([bytes[at + 3], bytes[at + 4]]) as usize;
        at += 5 + rl;
        records += 1;
    }
    assert_eq!(bytes[len], 22, "{dir}: the TLS handshake does not follow");
    records
}

fn cfg(host: &str, isi: InbandSecurity) -> NodeConfig {
    let mut c = NodeConfig::new(host, REALM);
    c.applications = vec![
        Application::tgpp_auth(app::CX),
        Application::tgpp_auth(app::RX),
    ];
    c.vendor_id = 32473;
    c.connect_timeout = Duration::from_secs(5);
    c.reconnect_interval = None;
    c.watchdog_interval = Duration::from_secs(1);
    c.watchdog_jitter = Duration::ZERO;
    c.inband_security = isi;
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inband_tls_between_our_nodes() {
    let Some(pki) = new_pki("nodes") else { return };
    let hss = Node::new(cfg("hss.test.example", InbandSecurity::TlsRequired));
    hss.set_inband_tls(tls(&pki, "hss", "hss.test.example"));
    serve_mar(&hss);
    let addr = hss.listen("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let (via, rec) = proxy(addr).await;

    let scscf = Node::new(cfg("scscf.test.example", InbandSecurity::TlsOptional));
    scscf.set_inband_tls(tls(&pki, "scscf", "scscf.test.example"));
    scscf.add_peer("hss.test.example", via);
    scscf.wait_open("hss.test.example", SECS).await.unwrap();
    let st = scscf.peer_status("hss.test.example").unwrap();
    assert!(st.secure && st.state == PeerState::IOpen, "{st:?}");
    hss.wait_open("scscf.test.example", SECS).await.unwrap();
    let st = hss.peer_status("scscf.test.example").unwrap();
    assert!(st.secure && st.state == PeerState::ROpen, "{st:?}");

    let req = mar(&scscf);
    let session = req.session_id.to_string();
    let maa = scscf.send(&req).await.unwrap();
    assert_eq!(maa.view().outcome(), Some(Outcome::SUCCESS));
    // a few watchdog exchanges (Tw = 1 s) over TLS too
    tokio::time::sleep(Duration::from_millis(2500)).await;
    // (each side's DWRs reset the other's timer: count both directions)
    let st = scscf.peer_status("hss.test.example").unwrap();
    assert!(
        st.stats.dwa_received + st.stats.dwr_received >= 2,
        "{:?}",
        st.stats
    );

    let (up, down) = rec.lock().unwrap().clone();
    check_stream("scscf → hss", &up, true, "scscf.test.example");
    check_stream("hss → scscf", &down, false, "hss.test.example");
    assert_eq!(count(&up, session.as_bytes()), 0, "Session-Id in clear");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inband_tls_refusals() {
    let Some(pki) = new_pki("refuse") else {
        return;
    };
    let hss = Node::new(cfg("hss.test.example", InbandSecurity::TlsRequired));
    hss.set_inband_tls(tls(&pki, "hss", "hss.test.example"));
    let addr = hss.listen("127.0.0.1:0".parse().unwrap()).await.unwrap();

    // a clear-only peer: 5017 DIAMETER_NO_COMMON_SECURITY, never open
    let clear = Node::new(cfg("clear.test.example", InbandSecurity::None));
    clear.add_peer("hss.test.example", addr);
    assert!(clear
        .wait_open("hss.test.example", Duration::from_secs(2))
        .await
        .is_err());
    assert!(hss
        .peer_status("clear.test.example")
        .is_none_or(|s| !s.state.is_open()));

    // TLS agreed but no TLS configuration on our side: the handshake cannot run
    let bare = Node::new(cfg("bare.test.example", InbandSecurity::TlsRequired));
    bare.add_peer("hss.test.example", addr);
    assert!(bare
        .wait_open("hss.test.example", Duration::from_secs(2))
        .await
        .is_err());

    // a client whose certificate names another host than its CER's Origin-Host
    let liar = Node::new(cfg("liar.test.example", InbandSecurity::TlsRequired));
    liar.set_inband_tls(tls(&pki, "liar", "someone-else.test.example"));
    liar.add_peer("hss.test.example", addr);
    // (with TLS 1.3 the client's handshake is done before the server has checked its
    // certificate: the liar may see the peer open for a moment, then the server closes)
    liar.wait_closed("hss.test.example", SECS).await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!liar
        .peer_status("hss.test.example")
        .unwrap()
        .state
        .is_open());
    let st = liar.peer_status("hss.test.example").unwrap();
    assert_eq!(st.stats.requests_sent, 0);
    assert!(hss
        .peer_status("liar.test.example")
        .is_none_or(|s| !s.state.is_open()));
    assert_eq!(
        hss.peer_status("liar.test.example")
            .map_or(0, |s| s.stats.dwr_received + s.stats.requests_received),
        0
    );

    // and a server whose certificate does not name its DiameterIdentity
    let evil = Node::new(cfg("hss2.test.example", InbandSecurity::TlsRequired));
    evil.set_inband_tls(tls(&pki, "evil", "evil.test.example"));
    let evil_addr = evil.listen("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let wrong = Node::new(cfg("wrong.test.example", InbandSecurity::TlsRequired));
    wrong.set_inband_tls(tls(&pki, "wrong", "wrong.test.example"));
    wrong.add_peer("hss2.test.example", evil_addr);
    assert!(wrong
        .wait_open("hss2.test.example", Duration::from_secs(3))
        .await
        .is_err());

    // the same hss still serves a good client
    let good = Node::new(cfg("good.test.example", InbandSecurity::TlsRequired));
    good.set_inband_tls(tls(&pki, "good", "good.test.example"));
    good.add_peer("hss.test.example", addr);
    good.wait_open("hss.test.example", SECS).await.unwrap();
    assert!(good.peer_status("hss.test.example").unwrap().secure);
}

/// `Node::restart` over TLS, both on a TLS port (TLS from the connect) and with TLS after
/// CER/CEA: both nodes stop; the HSS listens again on the same address with the same TLS
/// set-up (a clear client still cannot open; on the TLS port not even its CER is read), the
/// S-CSCF reconnects over TLS (status `secure`), a MAR is served; the S-CSCF alone stops and
/// starts a second time, again over TLS.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarted_nodes_come_back_over_tls() {
    let Some(pki) = new_pki("restart") else {
        return;
    };
    for tls_port in [true, false] {
        let mode = if tls_port { "TLS port" } else { "inband" };
        let isi = if tls_port {
            InbandSecurity::None
        } else {
            InbandSecurity::TlsRequired
        };
        let hss = Node::new(cfg("hss.test.example", isi));
        serve_mar(&hss);
        let hss_tls = tls(&pki, "hss", "hss.test.example");
        // A fixed port of this crate's range, below the ephemeral range (32768-60999 here):
        // between the stop and the restart the port is free, and an ephemeral one
        // (`127.0.0.1:0`) can be handed to any other socket of the machine in that window
        // (another test's `bind(0)`, a `free_port()` given to freeDiameterd), which then
        // answered the connect below ("still listening") or made the restart's bind fail.
        let port = if tls_port {
            RESTART_PORTS.0
        } else {
            RESTART_PORTS.1
        };
        let any = SocketAddr::from(([127, 0, 0, 1], port));
        let bound = if tls_port {
            hss.listen_tls(any, hss_tls).await
        } else {
            hss.set_inband_tls(hss_tls);
            hss.listen(any).await
        };
        let addr =
            bound.unwrap_or_else(|e| panic!("{mode}: bind {any}: {e}\n{}", sockets_on(port)));
        let scscf = Node::new(cfg("scscf.test.example", isi));
        let scscf_tls = tls(&pki, "scscf", "scscf.test.example");
        if tls_port {
            scscf.add_peer_tls("hss.test.example", addr, scscf_tls);
        } else {
            scscf.set_inband_tls(scscf_tls);
            scscf.add_peer("hss.test.example", addr);
        }
        let open_and_serve = |round: &'static str| {
            let (hss, scscf) = (hss.clone(), scscf.clone());
            async move {
                scscf
                    .wait_open("hss.test.example", SECS)
                    .await
                    .unwrap_or_else(|e| panic!("{mode}, {round}: {e}"));
                hss.wait_open("scscf.test.example", SECS).await.unwrap();
                for (node, peer) in [(&scscf, "hss.test.example"), (&hss, "scscf.test.example")] {
                    let st = node.peer_status(peer).unwrap();
                    assert!(st.secure && st.state.is_open(), "{mode}, {round}: {st:?}");
                }
                let maa = scscf.send(&mar(&scscf)).await.unwrap();
                assert_eq!(
                    maa.view().outcome(),
                    Some(Outcome::SUCCESS),
                    "{mode}, {round}"
                );
            }
        };
        open_and_serve("first start").await;

        // both stop, then start again: same address, same TLS
        hss.shutdown();
        scscf.shutdown();
        hss.wait_stopped(SECS).await.unwrap();
        scscf.wait_stopped(SECS).await.unwrap();
        if let Ok(s) = TcpStream::connect(addr).await {
            panic!(
                "{mode}: still listening: local {:?} peer {:?}\n{}",
                s.local_addr(),
                s.peer_addr(),
                sockets_on(addr.port())
            );
        }
        assert_eq!(hss.restart(SECS).await.unwrap(), vec![addr], "{mode}");
        scscf.restart(SECS).await.unwrap();
        open_and_serve("after both restarted").await;
        // a clear client still cannot open with the restarted HSS
        let clear = Node::new(cfg("clear.test.example", InbandSecurity::None));
        clear.add_peer("hss.test.example", addr);
        assert!(
            clear
                .wait_open("hss.test.example", Duration::from_secs(2))
                .await
                .is_err(),
            "{mode}: a clear peer opened"
        );
        clear.shutdown();

        // the S-CSCF alone stops and starts a second time
        scscf.shutdown();
        scscf.wait_stopped(SECS).await.unwrap();
        hss.wait_closed("scscf.test.example", SECS).await.unwrap();
        scscf.restart(SECS).await.unwrap();
        open_and_serve("S-CSCF restarted again").await;
        scscf.shutdown();
        hss.shutdown();
        scscf.wait_stopped(SECS).await.unwrap();
        hss.wait_stopped(SECS).await.unwrap();
    }
}

/// The machine's TCP sockets on `port` with their processes (`ss -tanp`), for a failure
/// message: who holds a port the test expected free.
fn sockets_on(port: u16) -> String {
    let ss = std::process::Command::new("ss")
        .args(["-tanp"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    let needle = format!(":{port} ");
    ss.lines()
        .filter(|l| l.contains(&needle))
        .collect::<Vec<_>>()
        .join("\n")
}

// ------------------------------------------------------------------------------ freeDiameter

/// freeDiameterd with the CA's `fd` certificate, only TLS after CER/CEA allowed.
fn start_freediameter(fd: &Path, pki: &Pki, extra: &str) -> FreeDiameter {
    let _ = pki.leaf("fd", FD_HOST);
    let ports = (free_port(), free_port());
    start_tls_freediameter(fd, pki.dir(), FD_HOST, ports, extra)
}

/// Waits until `node`'s peer `host` has answered `n` of our DWRs (ours, every second, keep
/// its own 6 s watchdog from firing).
async fn wait_watchdogs(node: &Node, host: &str, n: u64, fd: &FreeDiameter) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let st = node.peer_status(host).unwrap();
        if st.stats.dwa_received >= n && st.secure {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "watchdog over TLS: {:?}\n{}",
            st.stats,
            fd.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn freediameter_connects_with_tls_after_cer_cea() {
    let Some(pki) = new_pki("fd-in") else { return };
    let Some(fd) = freediameterd() else {
        return;
    };
    let ours = Node::new(cfg("ours.test.example", InbandSecurity::TlsRequired));
    ours.set_inband_tls(tls(&pki, "ours", "ours.test.example"));
    let addr = ours.listen("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let (via, rec) = proxy(addr).await;
    // TLS_old_method: CER/CEA on the plain port with Inband-Security-Id TLS, then TLS
    let extra = format!(
        r#"ConnectPeer = "ours.test.example" {{ ConnectTo = "127.0.0.1"; Port = {}; TLS_old_method; }};"#,
        via.port()
    );
    let fdd = start_freediameter(&fd, &pki, &extra);
    let info = ours
        .wait_open(FD_HOST, Duration::from_secs(20))
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", fdd.log()));
    assert!(info.product_name.contains("freeDiameter"));
    let st = ours.peer_status(FD_HOST).unwrap();
    assert!(st.secure && st.state == PeerState::ROpen, "{st:?}");
    // our DWRs (Tw 1 s) and its DWR (TwTimer 6 s) answered over TLS
    wait_watchdogs(&ours, FD_HOST, 2, &fdd).await;
    let (up, down) = rec.lock().unwrap().clone();
    check_stream("freeDiameter → ours", &up, true, FD_HOST);
    check_stream("ours → freeDiameter", &down, false, "ours.test.example");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn we_connect_to_freediameter_with_tls_after_cer_cea() {
    let Some(pki) = new_pki("fd-out") else {
        return;
    };
    let Some(fd) = freediameterd() else {
        return;
    };
    let fdd = start_freediameter(&fd, &pki, "");
    let (via, rec) = proxy(([127, 0, 0, 1], fdd.port).into()).await;
    let client = Node::new(cfg("client.test.example", InbandSecurity::TlsRequired));
    client.set_inband_tls(tls(&pki, "client", "client.test.example"));
    client.add_peer(FD_HOST, via);
    client
        .wait_open(FD_HOST, Duration::from_secs(20))
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", fdd.log()));
    let st = client.peer_status(FD_HOST).unwrap();
    assert!(st.secure && st.state == PeerState::IOpen, "{st:?}");
    wait_watchdogs(&client, FD_HOST, 2, &fdd).await;
    let (up, down) = rec.lock().unwrap().clone();
    check_stream("ours → freeDiameter", &up, true, "client.test.example");
    check_stream("freeDiameter → ours", &down, false, FD_HOST);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn freediameter_refuses_clear_when_only_tls_is_allowed() {
    // its ACL allows only TLS after CER/CEA: a peer offering no TLS gets 5017
    let Some(pki) = new_pki("fd-clear") else {
        return;
    };
    let Some(fd) = freediameterd() else {
        return;
    };
    let fdd = start_freediameter(&fd, &pki, "");
    let client = Node::new(cfg("clear.test.example", InbandSecurity::None));
    client.add_peer(FD_HOST, ([127, 0, 0, 1], fdd.port).into());
    assert!(client
        .wait_open(FD_HOST, Duration::from_secs(3))
        .await
        .is_err());
    fdd.wait_log("DIAMETER_NO_COMMON_SECURITY", SECS);
}

/// freeDiameter as a relay between two of our nodes, each connected to its plain port with TLS
/// after CER/CEA (its ACL allows only that, `ALLOW_OLD_TLS`): a Cx MAR/MAA and an Rx AAR/AAA
/// cross it intact, freeDiameter parses them with its 3GPP dictionary (its message dump names
/// the Rx commands and AVPs; a malformed AVP in a control request shows in its log), and the two
/// recording proxies see only the CER/CEA in clear, then TLS records: no Session-Id, User-Name or
/// Origin-Host of any request or answer in clear.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn freediameter_relays_cx_and_rx_over_inband_tls() {
    let Some(pki) = new_pki("fd-relay") else {
        return;
    };
    let Some(fd) = freediameterd() else {
        return;
    };
    // the message dumps of every message freeDiameter parsed (0x0080: HOOK_MESSAGE_PARSED)
    let extra = format!(
        r#"LoadExtension = "{}/dbg_msg_dumps.fdx" : "0x0080";"#,
        extension_dir().display()
    );
    let fdd = start_freediameter(&fd, &pki, &extra);
    let fd_addr: SocketAddr = ([127, 0, 0, 1], fdd.port).into();

    // the HSS/PCRF side, in its own realm, behind its own recording proxy
    let mut sc = cfg("hss.home.test.example", InbandSecurity::TlsRequired);
    sc.origin_realm = "home.test.example".into();
    sc.request_timeout = SECS;
    let server = Node::new(sc);
    server.set_inband_tls(tls(&pki, "hss", "hss.home.test.example"));
    let seen: cx_rx::Seen = Arc::default();
    cx_rx::serve_cx_and_rx(&server, &seen);
    let (server_via, server_rec) = proxy(fd_addr).await;
    server.add_peer(FD_HOST, server_via);

    // the S-CSCF/P-CSCF side, in another realm
    let mut cc = cfg("scscf.visited.test.example", InbandSecurity::TlsRequired);
    cc.origin_realm = "visited.test.example".into();
    cc.request_timeout = SECS;
    let client = Node::new(cc);
    client.set_inband_tls(tls(&pki, "scscf", "scscf.visited.test.example"));
    let (client_via, client_rec) = proxy(fd_addr).await;
    client.add_peer(FD_HOST, client_via);

    for n in [&server, &client] {
        n.wait_open(FD_HOST, Duration::from_secs(20))
            .await
            .unwrap_or_else(|e| panic!("{}: {e}\n{}", n.origin_host(), fdd.log()));
        let st = n.peer_status(FD_HOST).unwrap();
        assert!(st.secure && st.state == PeerState::IOpen, "{st:?}");
    }

    let [mar_session, aar_session, sid] = cx_rx::cx_and_rx_through(&client, &seen, &fdd).await;

    // on the wire: the CER/CEA in clear, then only TLS, both legs, both ways
    let (up, down) = client_rec.lock().unwrap().clone();
    check_stream(
        "scscf → freeDiameter",
        &up,
        true,
        "scscf.visited.test.example",
    );
    check_stream("freeDiameter → scscf", &down, false, FD_HOST);
    let (s_up, s_down) = server_rec.lock().unwrap().clone();
    check_stream("hss → freeDiameter", &s_up, true, "hss.home.test.example");
    check_stream("freeDiameter → hss", &s_down, false, FD_HOST);
    for (dir, bytes) in [
        ("scscf → freeDiameter", &up),
        ("freeDiameter → scscf", &down),
        ("hss → freeDiameter", &s_up),
        ("freeDiameter → hss", &s_down),
    ] {
        for clear in [
            mar_session.as_bytes(),
            aar_session.as_bytes(),
            sid.as_bytes(),
            b"alice@home.test.example",
        ] {
            assert_eq!(
                count(bytes, clear),
                0,
                "{dir}: {:?} in clear",
                String::from_utf8_lossy(clear)
            );
        }
    }
}

// ------------------------------------------------------------------------------ discovery

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_prefers_the_tls_port_when_the_node_has_tls() {
    use ims_diameter::discovery::{Naptr, Srv, StaticResolver};
    let Some(pki) = new_pki("disc") else { return };
    let realm = "hss.example.net";
    let host = "hss1.hss.example.net";
    let mut hc = cfg(host, InbandSecurity::None);
    hc.origin_realm = realm.into();
    let hss = Node::new(hc);
    serve_mar(&hss);
    let tls_addr = hss
        .listen_tls("127.0.0.1:0".parse().unwrap(), tls(&pki, "hss1", host))
        .await
        .unwrap();
    let tcp_addr = hss.listen("127.0.0.1:0".parse().unwrap()).await.unwrap();
    // RFC 6733 §11.6 service fields: TLS (AAAS+D2T) first, TCP (AAA+D2T) second
    let mut dns = StaticResolver::default();
    dns.add_naptr(
        realm,
        Naptr::new(10, 10, "S", "AAAS+D2T", "_diameters._tcp.hss.example.net"),
    )
    .add_naptr(
        realm,
        Naptr::new(20, 10, "S", "AAA+D2T", "_diameter._tcp.hss.example.net"),
    )
    .add_srv(
        "_diameters._tcp.hss.example.net",
        Srv::new(0, 10, tls_addr.port(), host),
    )
    .add_srv(
        "_diameter._tcp.hss.example.net",
        Srv::new(0, 10, tcp_addr.port(), host),
    )
    .add_address(host, [127, 0, 0, 1].into());

    let send = |n: &Node| {
        let mut m = mar(n);
        m.destination_realm = realm.into();
        let bytes = m.encode(0, n.next_end_to_end());
        let n = n.clone();
        async move { n.request(bytes).await.unwrap() }
    };
    // with a TLS configuration: the TLS port, TLS from the connect
    let secure = Node::new(cfg("scscf.test.example", InbandSecurity::None));
    secure.set_inband_tls(tls(&pki, "scscf", "scscf.test.example"));
    secure.set_resolver(dns.clone());
    let maa = send(&secure).await;
    assert_eq!(maa.view().outcome(), Some(Outcome::SUCCESS));
    let st = secure.peer_status(host).unwrap();
    assert!(st.secure, "{st:?}");
    // without one: the TCP candidate, in clear
    let clear = Node::new(cfg("pcscf.test.example", InbandSecurity::None));
    clear.set_resolver(dns);
    let maa = send(&clear).await;
    assert_eq!(maa.view().outcome(), Some(Outcome::SUCCESS));
    let st = clear.peer_status(host).unwrap();
    assert!(!st.secure, "{st:?}");
}
