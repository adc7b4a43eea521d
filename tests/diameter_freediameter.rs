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

use ims::diameter::answer::error_answer;
use ims::diameter::base::{DisconnectCause, VendorSpecificApplicationId};
use ims::diameter::cx::{Maa, Mar, SipAuthDataItem};
use ims::diameter::dict::{self, app};
use ims::diameter::peer::{Application, PeerState};
use ims::diameter::rx::{Aaa, Aar, MediaComponentDescription};
use ims::diameter::{encode_message, AvpFlags, Command, Outcome};
use ims::net::diameter::{Incoming, Node, NodeConfig};
use std::path::{Path, PathBuf};
use std::process::{Child, Command as Process, Stdio};
use std::sync::{Arc, Mutex};
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

/// Where the Debian package puts the extensions.
fn extension_dir() -> PathBuf {
    for d in [
        "/usr/lib/freeDiameter",
        "/usr/lib/x86_64-linux-gnu/freeDiameter",
        "/usr/lib/aarch64-linux-gnu/freeDiameter",
        "/usr/local/lib/freeDiameter",
    ] {
        if Path::new(d).join("dict_dcca_3gpp.fdx").exists() {
            return PathBuf::from(d);
        }
    }
    panic!("freeDiameter extensions (dict_dcca_3gpp.fdx) not found");
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind a free port")
        .port()
}

/// A running freeDiameterd; killed on drop.
struct FreeDiameter {
    child: Child,
    log: PathBuf,
    port: u16,
    _dir: common::TempDir,
}

impl FreeDiameter {
    /// Starts freeDiameterd with `extra` configuration lines (ConnectPeer, ...).
    fn start(fd: &Path, ssl: &Path, tag: &str, extra: &str) -> FreeDiameter {
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
        let ext = extension_dir();
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
            e = ext.display(),
        );
        std::fs::write(d.join("fd.conf"), conf).unwrap();
        let log = d.join("fd.log");
        let out = std::fs::File::create(&log).unwrap();
        let child = Process::new(fd)
            .arg("-c")
            .arg(d.join("fd.conf"))
            .arg("-d")
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .expect("start freeDiameterd");
        let mut me = FreeDiameter {
            child,
            log,
            port,
            _dir: dir,
        };
        me.wait_log("freeDiameterd daemon initialized", SECS);
        me
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn wait_log(&mut self, needle: &str, timeout: Duration) {
        #[allow(clippy::disallowed_methods)] // a real process: wall-clock wait
        let start = std::time::Instant::now();
        while start.elapsed() < timeout {
            if self.log().contains(needle) {
                return;
            }
            if let Ok(Some(st)) = self.child.try_wait() {
                panic!("freeDiameterd exited ({st}):\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("freeDiameterd never logged {needle:?}:\n{}", self.log());
    }

    fn addr(&self) -> std::net::SocketAddr {
        ([127, 0, 0, 1], self.port).into()
    }

    /// SIGTERM: freeDiameter disconnects its peers with DPR and exits.
    fn terminate(&mut self) {
        let _ = Process::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
    }

    /// Waits for the process to exit (its log is complete then).
    fn wait_exit(&mut self, timeout: Duration) {
        for _ in 0..timeout.as_millis() / 50 {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("freeDiameterd did not exit:\n{}", self.log());
    }
}

impl Drop for FreeDiameter {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
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
    let mut fdd = FreeDiameter::start(&fd, &ssl, "connect", "");
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
        let mut fdd = FreeDiameter::start(&fd, &ssl, "accept", &extra);
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

/// What the server node received, for comparison with what the client sent.
type Seen = Arc<Mutex<Vec<Incoming>>>;

#[test]
fn freediameter_relays_cx_and_rx_between_our_nodes() {
    let Some((fd, ssl)) = tools() else { return };
    let fdd = FreeDiameter::start(&fd, &ssl, "relay", "");
    runtime().block_on(async {
        // the HSS/PCRF side, in its own realm
        let server = Node::new(node_cfg("hss.home.test.example", "home.test.example"));
        let seen: Seen = Arc::default();
        let (s, sn) = (server.clone(), seen.clone());
        server.handle(app::CX, Mar::CODE, move |req| {
            let (s, sn) = (s.clone(), sn.clone());
            async move {
                sn.lock().unwrap().push(req.clone());
                let mar = Mar::decode(&req.message.view()).expect("MAR intact");
                let mut maa = Maa {
                    session_id: mar.session_id,
                    vendor_specific_application_id: mar.vendor_specific_application_id,
                    auth_session_state: mar.auth_session_state,
                    origin_host: s.origin_host().to_owned().into(),
                    origin_realm: s.origin_realm().to_owned().into(),
                    user_name: Some(mar.user_name),
                    public_identity: Some(mar.public_identity),
                    sip_number_auth_items: Some(1),
                    sip_auth_data_item: vec![SipAuthDataItem {
                        sip_item_number: Some(1),
                        sip_authentication_scheme: Some("Digest-AKAv1-MD5".into()),
                        sip_authenticate: Some(vec![0x11; 32].into()),
                        sip_authorization: Some(vec![0x22; 8].into()),
                        confidentiality_key: Some(vec![0x33; 16].into()),
                        integrity_key: Some(vec![0x44; 16].into()),
                        ..Default::default()
                    }],
                    ..Default::default()
                };
                maa.set_outcome(Outcome::SUCCESS);
                maa.encode_answer(req.message.header())
            }
        });
        let (s, sn) = (server.clone(), seen.clone());
        server.handle(app::RX, Aar::CODE, move |req| {
            let (s, sn) = (s.clone(), sn.clone());
            async move {
                sn.lock().unwrap().push(req.clone());
                let aar = match Aar::decode(&req.message.view()) {
                    Ok(a) => a,
                    Err(e) => {
                        return error_answer(req.message.bytes(), &e, &s.origin())
                            .expect("a request can be answered")
                    }
                };
                let mut aaa = Aaa {
                    session_id: aar.session_id,
                    auth_application_id: app::RX,
                    origin_host: s.origin_host().to_owned().into(),
                    origin_realm: s.origin_realm().to_owned().into(),
                    ..Default::default()
                };
                aaa.set_outcome(Outcome::SUCCESS);
                aaa.encode_answer(req.message.header())
            }
        });
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

        // Cx MAR through the relay, routed by Destination-Realm
        let mar = Mar {
            session_id: client.session_id().into(),
            vendor_specific_application_id: VendorSpecificApplicationId::cx(),
            origin_host: client.origin_host().to_owned().into(),
            origin_realm: client.origin_realm().to_owned().into(),
            destination_realm: "home.test.example".into(),
            user_name: "alice@home.test.example".into(),
            public_identity: "sip:alice@home.test.example".into(),
            sip_number_auth_items: 1,
            sip_auth_data_item: SipAuthDataItem {
                sip_authentication_scheme: Some("Digest-AKAv1-MD5".into()),
                ..Default::default()
            },
            server_name: "sip:scscf.visited.test.example:6060".into(),
            ..Default::default()
        };
        let e2e = client.next_end_to_end();
        let answer = client
            .request(mar.encode(0, e2e))
            .await
            .unwrap_or_else(|e| panic!("{e}\n{}", fdd.log()));
        let v = answer.view();
        assert_eq!(v.outcome(), Some(Outcome::SUCCESS), "{}", fdd.log());
        assert_eq!(v.end_to_end(), e2e);
        let maa = Maa::decode(&v).expect("MAA intact after the relay");
        assert_eq!(maa.origin_host, "hss.home.test.example");
        assert_eq!(maa.sip_auth_data_item.len(), 1);
        let item = &maa.sip_auth_data_item[0];
        assert_eq!(item.sip_authenticate.as_deref(), Some(&[0x11; 32][..]));
        assert_eq!(item.integrity_key.as_deref(), Some(&[0x44; 16][..]));
        // the server got our MAR field for field, plus freeDiameter's Route-Record
        {
            let got = seen.lock().unwrap();
            let req = &got[0];
            assert_eq!(req.peer, FD_HOST);
            let rv = req.message.view();
            let back = Mar::decode(&rv).unwrap();
            assert_eq!(back.session_id, mar.session_id);
            assert_eq!(back.user_name, mar.user_name);
            assert_eq!(back.public_identity, mar.public_identity);
            assert_eq!(back.server_name, mar.server_name);
            assert_eq!(back.sip_auth_data_item, mar.sip_auth_data_item);
            assert_eq!(
                back.vendor_specific_application_id,
                mar.vendor_specific_application_id
            );
            let rr: Vec<&str> = rv
                .find_all(dict::ROUTE_RECORD)
                .filter_map(|a| a.utf8().ok())
                .collect();
            assert_eq!(rr, vec!["scscf.visited.test.example"]);
        }

        // Rx AAR with a media component
        let aar = Aar {
            session_id: client.session_id().into(),
            auth_application_id: app::RX,
            origin_host: client.origin_host().to_owned().into(),
            origin_realm: client.origin_realm().to_owned().into(),
            destination_realm: "home.test.example".into(),
            media_component_description: vec![MediaComponentDescription {
                media_component_number: 1,
                max_requested_bandwidth_ul: Some(64_000),
                max_requested_bandwidth_dl: Some(128_000),
                ..Default::default()
            }],
            ..Default::default()
        };
        let answer = client
            .send(&aar)
            .await
            .unwrap_or_else(|e| panic!("{e}\n{}", fdd.log()));
        let v = answer.view();
        assert_eq!(v.outcome(), Some(Outcome::SUCCESS), "{}", fdd.log());
        let aaa = Aaa::decode(&v).expect("AAA intact");
        assert_eq!(aaa.session_id, aar.session_id);
        {
            let got = seen.lock().unwrap();
            let back = Aar::decode(&got[1].message.view()).unwrap();
            assert_eq!(
                back.media_component_description,
                aar.media_component_description
            );
        }

        // so far freeDiameter's parser found nothing wrong
        let log = fdd.log();
        assert!(
            log.contains("'AA-Request'") && log.contains("'AA-Answer'"),
            "{log}"
        );
        assert!(log.contains("'Max-Requested-Bandwidth-DL'(515)"), "{log}");
        assert!(
            !log.contains("Bad message") && !log.contains("Invalid"),
            "{log}"
        );

        // the control: an AAR whose Media-Component-Number (Unsigned32) has 2 octets. freeDiameter
        // flags it while parsing (and, as a relay, forwards it anyway); the server answers 5014
        let mut bad = Vec::new();
        let sid = client.session_id();
        encode_message(&mut bad, &Aar::header(0, client.next_end_to_end()), |e| {
            e.utf8(dict::SESSION_ID, &sid);
            e.u32(dict::AUTH_APPLICATION_ID, app::RX);
            e.utf8(dict::ORIGIN_HOST, client.origin_host());
            e.utf8(dict::ORIGIN_REALM, client.origin_realm());
            e.utf8(dict::DESTINATION_REALM, "home.test.example");
            e.grouped(dict::MEDIA_COMPONENT_DESCRIPTION, |g| {
                g.raw(
                    518,
                    AvpFlags(AvpFlags::MANDATORY),
                    dict::VENDOR_3GPP,
                    &[0, 1],
                );
            });
        });
        let answer = client.request(bad).await.unwrap();
        let rc = answer.view().outcome().map(|o| o.code());
        assert_eq!(rc, Some(5014), "{}", fdd.log());
        let log = fdd.log();
        assert!(
            log.contains("Invalid length AVP: 'Media-Component-Number'(518)"),
            "{log}"
        );
    });
}
