//! S-CSCF re-selection at the I-CSCF (TS 24.229 §5.3.1.3, TS 23.380 §4.3.2, TS 29.228
//! §6.1.1.1): when the S-CSCF a REGISTER is sent to does not answer, the I-CSCF asks the HSS
//! for the S-CSCF capabilities (UAR with User-Authorization-Type REGISTRATION_AND_CAPABILITIES,
//! answered DIAMETER_SUCCESS with Server-Capabilities and no Server-Name), selects another
//! S-CSCF by them — never the one that failed — and sends the REGISTER there; the UE gets an
//! error only when no S-CSCF is left.
//!
//! Each test runs the all-in-one core with a second S-CSCF configured at the I-CSCF
//! (`CoreOptions::with_icscf_selection`): a UDP socket of the test that takes the REGISTER and
//! never answers (a crashed S-CSCF). The I-CSCF waits 1 s for an answer
//! (`CoreOptions::with_icscf_scscf_timeout`). Ports 6150-6199.

mod common;
mod ims_core;

use ims::nf::hss::{ScscfCapabilities, ServerAssignmentType};
use ims::nf::runtime::CoreOptions;
use ims_core::{capture_diameter, scenario, sipp_ue, Frame};
use std::net::SocketAddr;
use std::time::Duration;

const DEAD: &str = "sip:127.0.0.1:6185";
const IMPI: &str = "001010000000001@ims.example.org";
const IMPU: &str = "sip:001010000000001@ims.example.org";

/// The first datagram that reaches the dead S-CSCF's socket (it never answers; its
/// retransmissions stay unread), and the socket, kept open to the end of the test.
fn swallow(
    sock: tokio::net::UdpSocket,
) -> tokio::task::JoinHandle<(String, tokio::net::UdpSocket)> {
    tokio::spawn(async move {
        let mut buf = vec![0u8; 65536];
        let n = tokio::time::timeout(Duration::from_secs(30), sock.recv(&mut buf))
            .await
            .expect("the dead S-CSCF gets a datagram within 30 s")
            .unwrap();
        (String::from_utf8_lossy(&buf[..n]).into_owned(), sock)
    })
}

fn options(wanted: &[u32], own: &[u32], dead: &[u32]) -> CoreOptions {
    CoreOptions::default()
        .with_scscf_capabilities(ScscfCapabilities {
            mandatory: wanted.to_vec(),
            ..ScscfCapabilities::default()
        })
        .with_icscf_selection(own.to_vec(), vec![(DEAD.into(), dead.to_vec())])
        .with_icscf_scscf_timeout(Duration::from_secs(1))
}

/// Subscriber 1 is registered at the dead S-CSCF (the HSS names it in every UAA until another
/// S-CSCF's SAR takes over). A SIPp UE's IMS-AKA registration still ends 401 then 200, through
/// the core's own S-CSCF: both REGISTERs first go to the dead S-CSCF (named by the HSS), then,
/// after a UAR REGISTRATION_AND_CAPABILITIES answered 2001 with Server-Capabilities, to ours.
/// Without re-selection the first REGISTER would wait for the dead S-CSCF until the UE gives up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_register_reaches_another_scscf_when_the_named_one_does_not_answer() {
    let Some(bin) = common::interop_tool("sipp", "apt-get install sip-tester") else {
        return;
    };
    let dir = common::TempDir::new("cscf", "reselection", "IMS_KEEP_SIPP");
    let dead = tokio::net::UdpSocket::bind((ims_core::LO, 6185))
        .await
        .unwrap();
    let core = ims_core::start_with(
        ims_core::all_in_one(6150, [6180, 6181], None),
        options(&[1], &[1], &[1]),
    )
    .await;
    let hss = core.hss().expect("embedded HSS").hss().clone();
    let saa = hss.lock().unwrap().server_assignment(
        Some(IMPI),
        IMPU,
        DEAD,
        ServerAssignmentType::Registration,
        false,
    );
    assert!(saa.result.is_success());
    let dead = swallow(dead);
    let tshark = common::interop_tool("tshark", "apt-get install tshark");
    let cap = capture_diameter(tshark, dir.path(), &[6180]).await;

    let (ok, out) = sipp_ue(
        &bin,
        dir.path(),
        1,
        "127.0.0.1:6150",
        scenario("ims_register.xml").to_str().unwrap(),
        "6191",
        &[],
    )
    .await;
    assert!(ok, "registration failed:\n{out}");
    let own = "sip:127.0.0.1:6160";
    assert_eq!(
        hss.lock()
            .unwrap()
            .registration(IMPI)
            .map(|(_, s)| s.map(str::to_owned)),
        Some(Some(own.to_string())),
        "our S-CSCF holds the registration now"
    );
    let (at_dead, _dead) = dead.await.unwrap();
    assert!(
        at_dead.starts_with("REGISTER sip:ims.example.org SIP/2.0"),
        "the HSS-named S-CSCF got the REGISTER first: {at_dead}"
    );

    let Some(cap) = cap else {
        eprintln!("tshark missing: the Cx wire is not checked");
        core.shutdown();
        return;
    };
    let frames = cap
        .frames(&[
            "diameter.User-Authorization-Type",
            "diameter.Server-Name",
            "diameter.Mandatory-Capability",
            "diameter.Server-Assignment-Type",
        ])
        .await;
    for f in &frames {
        assert!(f.clean(), "malformed or expert info: {f:?}");
    }
    // UARs (300) in order with their types: REGISTRATION (0), then REGISTRATION_AND_CAPABILITIES
    // (2) for each REGISTER the dead S-CSCF let down
    let uar_types: Vec<&str> = frames
        .iter()
        .filter(|f| f.code() == "300" && f.is_request())
        .map(|f| f.get("diameter.User-Authorization-Type"))
        .collect();
    assert_eq!(uar_types, ["0", "2", "0", "2"], "{frames:?}");
    let answers: Vec<&Frame> = frames
        .iter()
        .filter(|f| f.code() == "300" && !f.is_request())
        .collect();
    assert_eq!(answers.len(), 4);
    for a in [answers[1], answers[3]] {
        // TS 29.228 §6.1.1.1: DIAMETER_SUCCESS, the capabilities, no S-CSCF name
        assert_eq!(a.get("diameter.Result-Code"), "2001", "{a:?}");
        assert_eq!(a.get("diameter.Mandatory-Capability"), "1", "{a:?}");
        assert_eq!(a.get("diameter.Server-Name"), "", "{a:?}");
    }
    for a in [answers[0], answers[2]] {
        assert_eq!(a.get("diameter.Server-Name"), DEAD, "{a:?}");
    }
    // our S-CSCF's SAR took the registration over
    assert!(
        frames.iter().any(|f| f.code() == "301"
            && f.is_request()
            && f.get("diameter.Server-Name") == own
            && f.get("diameter.Server-Assignment-Type") == "1"),
        "{frames:?}"
    );
    core.shutdown();
}

/// A REGISTER straight to the I-CSCF (port 6152) from a socket of the test.
fn register(from: SocketAddr) -> String {
    format!(
        "REGISTER sip:ims.example.org SIP/2.0\r\nVia: SIP/2.0/UDP {from};branch=z9hG4bK-resel1\r\n\
Max-Forwards: 70\r\nFrom: <{IMPU}>;tag=r1\r\nTo: <{IMPU}>\r\nCall-ID: resel-1@test\r\n\
CSeq: 1 REGISTER\r\nContact: <sip:ue1@{from}>\r\nExpires: 600\r\nContent-Length: 0\r\n\r\n"
    )
}

/// Only the dead S-CSCF offers the mandatory capability 9: once it failed, the capabilities
/// leave no other S-CSCF, and the UE gets the 408 (Request Timeout) of the REGISTER that was
/// never answered — within the I-CSCF's wait, not the 32 s of a client transaction.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_no_other_scscf_able_the_ue_gets_the_timeout() {
    let dead = tokio::net::UdpSocket::bind((ims_core::LO, 6186))
        .await
        .unwrap();
    let mut cfg = ims_core::all_in_one(6150, [6182, 6183], None);
    cfg.ports = ims::nf::runtime::Ports {
        pcscf: 6151,
        icscf: 6153,
        scscf_term: 6162,
        scscf_orig: 6163,
    };
    cfg.im.port = 6171;
    let dead_uri = "sip:127.0.0.1:6186";
    let options = CoreOptions::default()
        .with_scscf_capabilities(ScscfCapabilities {
            mandatory: vec![9],
            ..ScscfCapabilities::default()
        })
        .with_icscf_selection(vec![1], vec![(dead_uri.into(), vec![9])])
        .with_icscf_scscf_timeout(Duration::from_secs(1));
    let core = ims_core::start_with(cfg, options).await;
    let hss = core.hss().expect("embedded HSS").hss().clone();
    assert!(hss
        .lock()
        .unwrap()
        .server_assignment(
            Some(IMPI),
            IMPU,
            dead_uri,
            ServerAssignmentType::Registration,
            false
        )
        .result
        .is_success());
    let dead = swallow(dead);
    let ue = tokio::net::UdpSocket::bind((ims_core::LO, 6192))
        .await
        .unwrap();
    let started = tokio::time::Instant::now();
    ue.send_to(
        register(ue.local_addr().unwrap()).as_bytes(),
        SocketAddr::new(ims_core::LO, 6153),
    )
    .await
    .unwrap();
    let mut buf = vec![0u8; 65536];
    let n = tokio::time::timeout(Duration::from_secs(10), ue.recv(&mut buf))
        .await
        .expect("an answer within 10 s")
        .unwrap();
    let text = String::from_utf8_lossy(&buf[..n]).into_owned();
    assert!(text.starts_with("SIP/2.0 408"), "{text}");
    assert!(started.elapsed() >= Duration::from_secs(1));
    let (at_dead, _dead) = dead.await.unwrap();
    assert!(at_dead.starts_with("REGISTER "), "{at_dead}");
    core.shutdown();
}
