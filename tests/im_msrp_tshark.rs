//! tshark on the loopback while two `msrp_chat` user agents (the example's client code) talk
//! through the IM server's session anchor (`ims_nf::im_session`): a chat of 20 messages with
//! echoes and a large-mode message of 100 KiB in 2048-byte chunks. Wireshark's MSRP dissector
//! must find every SEND, REPORT and response on both legs (A ⇄ anchor on port 7301,
//! anchor ⇄ B on port 7302) with no malformed packet and no expert info.
//!
//! Live capture needs capture rights on `lo` (root here and in CI); tshark is found with
//! `common::interop_tool` (skip unless `IMS_REQUIRE_INTEROP=1`).

#[allow(dead_code)]
#[path = "../examples/msrp_chat/client.rs"]
mod client;

mod common;

use bytes::Bytes;
use client::{ListenOpts, Opts, Ua};
use ims::nf::im_session::{start, ImSessionConfig};
use std::net::SocketAddr;
use std::time::Duration;

const ANCHOR_SIP: u16 = 7300;
const ANCHOR_MSRP: u16 = 7301;
const BOB_MSRP: u16 = 7302;

fn lo(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn msrp_through_the_anchor_dissects_clean_on_both_legs() {
    let Some(tshark) = common::interop_tool("tshark", "apt-get install tshark") else {
        return;
    };
    let dir = common::TempDir::new("im-msrp-tshark", "x", "IMS_KEEP_TMP");
    let pcap = dir.path().join("msrp.pcap");
    let filter = format!("tcp port {ANCHOR_MSRP} or tcp port {BOB_MSRP}");
    let cap = common::LiveCapture::start(&tshark, &filter, pcap)
        .await
        .expect("start tshark");

    let anchor = start(ImSessionConfig {
        sip_addr: lo(ANCHOR_SIP),
        msrp_addr: lo(ANCHOR_MSRP),
        ..ImSessionConfig::default()
    })
    .await
    .expect("anchor on its fixed ports");
    let mut bob = Ua::bind(Opts {
        user: "bob".into(),
        msrp: lo(BOB_MSRP),
        ..Opts::default()
    })
    .await
    .expect("bob on his fixed MSRP port");
    let bob_uri = bob.sip_uri();
    let lopts = ListenOpts {
        sessions: Some(2),
        echo: true,
        ..ListenOpts::default()
    };
    let bob_task = tokio::spawn(async move {
        let mut ev = Vec::new();
        let r = client::listen(&mut bob, &lopts, &mut |v| ev.push(v)).await;
        bob.ep.shutdown();
        (ev, r)
    });
    let mut alice = Ua::bind(Opts {
        user: "alice".into(),
        proxy: Some(anchor.sip_addr()),
        ..Opts::default()
    })
    .await
    .unwrap();
    let msgs: Vec<String> = (1..=20).map(|i| format!("chat line {i}")).collect();
    let sum = client::chat(&mut alice, &bob_uri, msgs, 20, &mut |_| {})
        .await
        .unwrap();
    assert_eq!(sum["reports_ok"], 20, "{sum}");
    assert_eq!(sum["received"], 20, "{sum}");
    let body = Bytes::from(vec![b'x'; 100 * 1024]);
    let sent = client::send_large(&mut alice, &bob_uri, "text/plain", body, &mut |_| {})
        .await
        .unwrap();
    assert_eq!(sent["report"], 200);
    let _ = tokio::time::timeout(Duration::from_secs(20), bob_task).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let pcap = cap.stop().await;
    anchor.shutdown();

    let legs = common::dissect_msrp(&tshark, &pcap, &[ANCHOR_MSRP, BOB_MSRP], BOB_MSRP);
    let common::MsrpLegs {
        sends,
        reports,
        oks,
        problems,
        tcp_events,
        text,
    } = legs;
    assert!(problems.is_empty(), "{problems:#?}");
    // Several MSRP messages often share one TCP segment and tshark then shows only the first
    // (one run showed 16 SENDs on a leg that carried 20 chat messages and 100 chunks), so the
    // counts are not exact; the delivery counts are asserted above. Each leg must show every
    // kind of frame, dissected clean.
    for leg in 0..2 {
        assert!(sends[leg] >= 2, "SENDs {sends:?}\n{text}");
        assert!(reports[leg] >= 1, "REPORTs {reports:?}\n{text}");
        assert!(oks[leg] >= 2, "200s {oks:?}\n{text}");
    }
    println!(
        "tshark: SEND {sends:?}, REPORT {reports:?}, 200 {oks:?} (A leg, B leg); no expert info, nothing malformed \
         ({tcp_events} packets with TCP events set aside)"
    );
}
