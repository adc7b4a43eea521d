//! The IM server's MSRP session anchor (`ims::nf::im_session`, TS 24.247 §5.2 large mode and
//! §5.3 session mode) reached through the all-in-one core, as `examples/cscf/ims.toml` sets it
//! up: the originating iFC with the SessionDescription SPT (TS 29.228 B.2.2, line `m`, content
//! `^message `) sends an INVITE that offers MSRP to the IM server's port, where the anchor
//! shares the IM server's SIP endpoint. The anchor answers the caller and sends its own INVITE
//! back along the Route set the S-CSCF left (`odi`), with the caller's P-Asserted-Identity, so
//! the S-CSCF finishes originating processing and routes to the callee:
//!
//! ```text
//!   A ─▶ P-CSCF ─▶ S-CSCF(orig) ─▶ anchor ─▶ S-CSCF(orig, odi) ─▶ I-CSCF ─▶ S-CSCF(term) ─▶ P-CSCF ─▶ B
//!   MSRP: A ⇄ anchor switch ⇄ B
//! ```
//!
//! The UEs are `examples/msrp_chat` user agents (its client code, included below) that first
//! register with IMS-AKA through the P-CSCF like the UEs of `tests/im_server_page.rs`.
//!
//! 1. `chat_and_large_mode_through_the_core`: A and B chat (A sends 20 messages with success
//!    reports, B echoes each with its own success report; both see every REPORT), A ends with
//!    BYE which reaches B; then A sends a 5,000-byte large-mode message (over the 1,300-byte
//!    page-mode limit) the same way: success REPORT, BYE. Both parties' SDP name the anchor's
//!    switch as the MSRP peer (paths rewritten) and the anchor's counters show the frames.
//!
//! 2. `stored_ims_go_out_on_registration_the_large_one_in_large_mode`: B is not registered; A
//!    sends a text/plain IM, a message/cpim one and a 3,000-byte one (over the page-mode
//!    limit). The S-CSCF answers the IM server's relayed MESSAGEs 480, so the IM server stores
//!    them (one file each in its store directory) and answers A 202. When B registers, the
//!    S-CSCF's third-party REGISTER makes the IM server deliver them in order: the small ones as
//!    MESSAGEs, the large one in large mode (TS 24.247 §5.2) — the IM server itself sends
//!    INVITE with an MSRP offer, one SEND (B's success REPORT comes back) and BYE.
//!
//! The chat test also captures the loopback with tshark (`common::LiveCapture`; skipped when
//! tshark is missing unless `IMS_REQUIRE_INTEROP=1`): both MSRP legs (A ⇄ switch on 7146,
//! switch ⇄ B on 7147) must dissect as MSRP with the chat's SENDs, REPORTs and 200s and no
//! malformed packet or expert info.
//!
//! Ports 7089-7099 and 7137-7149 (helper range).

#[allow(dead_code)]
#[path = "../examples/msrp_chat/client.rs"]
mod client;

mod common;
mod im_common;

use bytes::Bytes;
use client::{ListenOpts, Opts, Ua};
use im_common::{enum_table, impi, send, K, LO, OP};
use ims::auth::aka::{Usim, DEFAULT_IND_BITS};
use ims::auth::milenage::{Milenage, OperatorKey};
use ims::msrp::cpim::CpimBuilder;
use ims::net::sip::Endpoint;
use ims::nf::hss::Subscriber;
use ims::nf::registrar::RegistrarConfig;
use ims::nf::runtime::{CoreConfig, ImOptions, ImsCore, Peer, Ports, Roles};
use ims::nf::subscription::{
    ApplicationServer, InitialFilterCriteria, SessionCase, Spt, SptKind, TriggerPoint,
};
use ims::sip::{Method, RequestBuilder};
use serde_json::Value;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// The IM server's iFCs of `examples/cscf/ims.toml` (page mode, third-party REGISTER and the
/// originating MSRP INVITE), naming the IM server at `im`.
fn ifcs(im: &str) -> Vec<InitialFilterCriteria> {
    let ifc = |priority, spts: Vec<SptKind>| InitialFilterCriteria {
        priority,
        trigger_point: Some(TriggerPoint {
            condition_type_cnf: false,
            spts: spts.into_iter().map(Spt::new).collect(),
        }),
        application_server: ApplicationServer::new(im.to_string()),
        profile_part_indicator: None,
    };
    let orig = || SptKind::SessionCase(SessionCase::Originating);
    let term = || SptKind::SessionCase(SessionCase::TerminatingRegistered);
    let method = |m: &str| SptKind::Method(m.into());
    let ct = |c: &str| SptKind::SipHeader {
        header: "Content-Type".into(),
        content: Some(c.into()),
    };
    vec![
        ifc(
            10,
            vec![
                orig(),
                method("MESSAGE"),
                ct(r"(?i)application/vnd\.3gpp\.sms"),
            ],
        ),
        ifc(
            20,
            vec![orig(), method("MESSAGE"), ct(r"(?i)^\s*(text|message)/")],
        ),
        ifc(
            30,
            vec![term(), method("MESSAGE"), ct(r"(?i)^\s*(text|message)/")],
        ),
        ifc(40, vec![method("REGISTER")]),
        ifc(
            50,
            vec![
                orig(),
                method("INVITE"),
                SptKind::SessionDescription {
                    line: "m".into(),
                    content: Some("^message ".into()),
                },
            ],
        ),
    ]
}

fn subscriber(n: u32, im: &str) -> Subscriber {
    im_common::subscriber(n, ifcs(im))
}

/// P-CSCF base, I-CSCF +1, S-CSCF +2/+3, IM server +4, HSS +5, PCRF +6.
fn config(base: u16) -> CoreConfig {
    let im_uri = format!("sip:127.0.0.1:{}", base + 4);
    CoreConfig {
        domain: "ims.example.org".into(),
        ip: LO,
        ports: Ports {
            pcscf: base,
            icscf: base + 1,
            scscf_term: base + 2,
            scscf_orig: base + 3,
        },
        roles: Roles::ALL,
        hss: Peer::Embedded(SocketAddr::new(LO, base + 5)),
        pcrf: Peer::Embedded(SocketAddr::new(LO, base + 6)),
        subscribers: vec![subscriber(1, &im_uri), subscriber(2, &im_uri)],
        enum_table: enum_table(),
        registrar: RegistrarConfig::default(),
        nonce_secret: b"a test secret of 32 octets......".to_vec(),
        admin: None,
        im: ImOptions {
            port: base + 4,
            ..ImOptions::default()
        },
    }
}

/// REGISTER with a fresh USIM (see [`im_common::register`]).
async fn register(ep: &Endpoint, n: u32, pcscf: SocketAddr) {
    let mut usim = Usim::new(Milenage::new(&K, OperatorKey::Op(OP)), DEFAULT_IND_BITS);
    im_common::register(ep, pcscf, n, &mut usim).await;
}

/// A registered msrp_chat UE whose INVITEs go to the P-CSCF.
async fn ue(n: u32, sip_port: u16, pcscf: SocketAddr) -> Ua {
    ue_on(n, sip_port, 0, pcscf).await
}

/// [`ue`] with its MSRP listener on `msrp_port` (0: any).
async fn ue_on(n: u32, sip_port: u16, msrp_port: u16, pcscf: SocketAddr) -> Ua {
    let ua = Ua::bind(Opts {
        sip: SocketAddr::new(LO, sip_port),
        msrp: SocketAddr::new(LO, msrp_port),
        user: format!("00101000000000{n}"),
        domain: "ims.example.org".into(),
        proxy: Some(pcscf),
        timeout: Duration::from_secs(30),
        ..Opts::default()
    })
    .await
    .expect("UE binds");
    register(&ua.ep, n, pcscf).await;
    ua
}

fn of_kind<'a>(events: &'a [Value], kind: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["event"] == kind).collect()
}

fn first_hop(v: &Value) -> String {
    v["peer_path"][0].as_str().unwrap_or("").to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_and_large_mode_through_the_core() {
    let base = 7137;
    // fixed MSRP ports, so tshark can be told to decode both legs as MSRP
    let (switch_port, bob_msrp) = (base + 9, base + 10);
    let mut cfg = config(base);
    cfg.im.msrp_port = switch_port;
    let core = ImsCore::start(cfg).await.expect("core starts");
    let anchor = core
        .im_session()
        .expect("session anchor runs with the IM server");
    assert_eq!(
        anchor.sip_addr(),
        SocketAddr::new(LO, base + 4),
        "the anchor shares the IM server's SIP port"
    );
    let switch = format!("msrp://127.0.0.1:{}/", anchor.msrp_addr().port());
    let pcscf = SocketAddr::new(LO, base);
    let mut alice = ue(1, base + 7, pcscf).await;
    let mut bob = ue_on(2, base + 8, bob_msrp, pcscf).await;
    // tshark on the loopback (skipped without it): both MSRP legs through the core
    let tshark = common::interop_tool("tshark", "apt-get install tshark");
    let dir = common::TempDir::new("im-core-msrp", "x", "IMS_KEEP_TMP");
    let capture = match &tshark {
        Some(t) => {
            let filter = format!("tcp port {switch_port} or tcp port {bob_msrp}");
            let file = dir.path().join("msrp.pcap");
            Some(
                common::LiveCapture::start(t, &filter, file)
                    .await
                    .expect("start tshark"),
            )
        }
        None => None,
    };

    let bob_task = tokio::spawn(async move {
        let mut events = Vec::new();
        let lo = ListenOpts {
            echo: true,
            sessions: Some(2),
            ..ListenOpts::default()
        };
        let r = tokio::time::timeout(
            Duration::from_secs(60),
            client::listen(&mut bob, &lo, &mut |v| events.push(v)),
        )
        .await;
        bob.ep.shutdown();
        (events, r)
    });

    // session mode: 20 messages each way, every one with a success REPORT
    let texts: Vec<String> = (0..20).map(|i| format!("chat line {i:02}")).collect();
    let mut a_events = Vec::new();
    let summary = client::chat(
        &mut alice,
        "tel:+15550002",
        texts.clone(),
        texts.len(),
        &mut |v| a_events.push(v),
    )
    .await
    .expect("chat through the core");
    assert_eq!(summary["sent"], 20, "{summary}");
    assert_eq!(summary["reports_ok"], 20, "A's reports: {summary}");
    assert_eq!(summary["received"], 20, "B's echoes: {summary}");
    assert_eq!(summary["echo_in_order"], true, "{summary}");
    assert_eq!(summary["bye"], 200, "A's BYE answered: {summary}");
    let connected = of_kind(&a_events, "connected");
    assert!(
        first_hop(connected[0]).starts_with(&switch),
        "A's MSRP peer is the anchor's switch {switch}: {a_events:?}"
    );
    let after_chat = anchor.stats().requests.load(Ordering::Relaxed);
    // A saw 20 REPORTs for its 20 SENDs and received B's 20 echoes, so at least those 60 crossed
    // the switch; A's own REPORTs for the echoes may still be in flight (or dropped by the BYE).
    assert!(after_chat >= 60, "frames through the switch: {after_chat}");

    // large mode: one message over the page-mode limit, success REPORT, BYE
    let big: Vec<u8> = (0..5000u32)
        .map(|i| b"0123456789abcdefghijklmnopqrstuvwxyz\n"[(i % 37) as usize])
        .collect();
    let mut l_events = Vec::new();
    let sent = client::send_large(
        &mut alice,
        "tel:+15550002",
        "text/plain",
        Bytes::from(big.clone()),
        &mut |v| l_events.push(v),
    )
    .await
    .expect("large-mode message through the core");
    assert_eq!(sent["report"], 200, "success REPORT from B: {sent}");
    assert_eq!(sent["bye"], 200, "{sent}");
    assert!(first_hop(of_kind(&l_events, "connected")[0]).starts_with(&switch));

    let (events, r) = bob_task.await.expect("bob's task");
    r.expect("bob finishes in time").expect("bob's listen ran");
    let sessions = of_kind(&events, "session");
    assert_eq!(sessions.len(), 2, "{events:?}");
    for s in &sessions {
        assert!(
            first_hop(s).starts_with(&switch),
            "B's MSRP peer is the anchor's switch, not A: {s}"
        );
        // the B leg went anchor → S-CSCF (orig, odi) → I-CSCF → S-CSCF (term) → P-CSCF: five
        // Via hops; straight to the terminating S-CSCF it would be three
        assert_eq!(s["via_hops"], 5, "{s}");
        assert_eq!(
            s["asserted"], "<sip:001010000000001@ims.example.org>",
            "A's asserted identity reaches B: {s}"
        );
    }
    let msgs = of_kind(&events, "message");
    assert_eq!(
        msgs.len(),
        21,
        "20 chat lines and the large message: {events:?}"
    );
    for (m, t) in msgs.iter().zip(&texts) {
        assert_eq!(m["text"], t.as_str());
    }
    assert_eq!(msgs[20]["size"], 5000);
    assert_eq!(msgs[20]["sha256"], client::sha256_hex(&big));
    let reports = of_kind(&events, "report");
    // B echoes every text/plain message (the large one too) and gets a REPORT for each
    assert_eq!(reports.len(), 21, "B's echoes reported: {events:?}");
    assert!(reports.iter().all(|r| r["status"] == 200));
    assert_eq!(of_kind(&events, "bye").len(), 2, "both BYEs reached B");
    let st = anchor.stats();
    assert_eq!(st.sessions.load(Ordering::Relaxed), 2);
    // now B has seen A's REPORTs for its 20 chat echoes too: 80 chat-session frames crossed
    assert!(
        st.requests.load(Ordering::Relaxed) >= 80,
        "frames through the switch: {}",
        st.requests.load(Ordering::Relaxed)
    );
    assert!(st.body_bytes.load(Ordering::Relaxed) >= 5000 + 2 * 20 * 12);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(st.active.load(Ordering::Relaxed), 0, "both sessions ended");
    core.shutdown();

    // Wireshark's MSRP dissector on both legs (A ⇄ switch, switch ⇄ B): the chat and the
    // large message, nothing malformed, no expert info
    if let (Some(t), Some(cap)) = (tshark, capture) {
        let pcap = cap.stop().await;
        let legs = common::dissect_msrp(&t, &pcap, &[switch_port, bob_msrp], bob_msrp);
        assert!(legs.problems.is_empty(), "{:#?}", legs.problems);
        // coalesced MSRP messages show as one in tshark: counts are lower bounds only (the
        // deliveries are counted above); each leg shows every kind of frame, dissected clean
        for leg in 0..2 {
            assert!(
                legs.sends[leg] >= 2,
                "SENDs {:?}\n{}",
                legs.sends,
                legs.text
            );
            assert!(
                legs.reports[leg] >= 1,
                "REPORTs {:?}\n{}",
                legs.reports,
                legs.text
            );
            assert!(legs.oks[leg] >= 2, "200s {:?}\n{}", legs.oks, legs.text);
        }
        println!(
            "tshark through the core: SEND {:?}, REPORT {:?}, 200 {:?} (A leg, B leg); \
             nothing malformed, no expert info ({} packets with TCP events set aside)",
            legs.sends, legs.reports, legs.oks, legs.tcp_events
        );
    }
}

async fn page(ua: &Ua, n: u32, pcscf: SocketAddr, to: &str, ct: &str, body: Vec<u8>) -> u16 {
    let impu = format!("sip:{}", impi(n));
    let m = RequestBuilder::new(Method::Message, to)
        .header("Max-Forwards", 70)
        .header("From", format!("<{impu}>;tag=p{}", body.len()))
        .header("To", format!("<{to}>"))
        .header("Call-ID", format!("page-{}-{}", body.len(), ua.sip_addr()))
        .header("CSeq", "1 MESSAGE")
        .header("Contact", format!("<{}>", ua.ep.contact()))
        .body(ct, body)
        .build()
        .expect("MESSAGE");
    send(&ua.ep, pcscf, m)
        .await
        .as_message()
        .status()
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stored_ims_go_out_on_registration_the_large_one_in_large_mode() {
    let base = 7089;
    let store = std::env::temp_dir().join(format!("ims-rs-im-core-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&store);
    let mut cfg = config(base);
    cfg.im.store = Some(store.clone());
    let core = ImsCore::start(cfg).await.expect("core starts");
    let im = core.im_server().expect("IM server");
    let pcscf = SocketAddr::new(LO, base);
    let alice = ue(1, base + 7, pcscf).await;
    let mut bob = Ua::bind(Opts {
        sip: SocketAddr::new(LO, base + 8),
        user: "001010000000002".into(),
        domain: "ims.example.org".into(),
        proxy: Some(pcscf),
        timeout: Duration::from_secs(30),
        ..Opts::default()
    })
    .await
    .expect("B binds");

    // B is not registered: every IM is kept, A hears 202 Accepted
    let text = "tel:+15550002";
    assert_eq!(
        page(
            &alice,
            1,
            pcscf,
            text,
            "text/plain",
            b"see you later".to_vec()
        )
        .await,
        202
    );
    let cpim = CpimBuilder::new(
        "<sip:001010000000001@ims.example.org>",
        "<sip:+15550002@ims.example.org>",
    )
    .datetime("2026-11-26T00:00:00Z")
    .content("text/plain;charset=UTF-8", "stored CPIM".as_bytes())
    .to_bytes();
    assert_eq!(
        page(&alice, 1, pcscf, text, "message/cpim", cpim.clone()).await,
        202
    );
    let big: Vec<u8> = (0..3000u32)
        .map(|i| b"large mode, stored first. "[(i % 26) as usize])
        .collect();
    assert!(big.len() > ims::nf::im_server::PAGE_MODE_LIMIT);
    assert_eq!(
        page(&alice, 1, pcscf, text, "text/plain", big.clone()).await,
        202
    );
    assert_eq!(im.stored_ims(), 3);
    assert_eq!(im.stats().im_stored, 3);
    // kept on disk too (ImOptions::store), one file each
    let files = || std::fs::read_dir(store.join("im")).map_or(0, |d| d.count());
    assert_eq!(files(), 3);

    // B registers: the third-party REGISTER releases them
    register(&bob.ep, 2, pcscf).await;
    let (events, pages, mut bob) = tokio::time::timeout(Duration::from_secs(30), async move {
        let mut events = Vec::new();
        let lo = ListenOpts {
            sessions: Some(1),
            ..ListenOpts::default()
        };
        let r = client::listen(&mut bob, &lo, &mut |v| events.push(v)).await;
        r.expect("B's listen ran");
        // the BYE ends the session; the small MESSAGE came before the INVITE
        let pages = std::mem::take(&mut bob.pages);
        (events, pages, bob)
    })
    .await
    .expect("the stored IMs arrive");
    assert_eq!(pages.len(), 2, "the small IMs as MESSAGEs");
    let m = pages[0].as_message();
    assert_eq!(m.body(), b"see you later");
    let c = pages[1].as_message();
    assert_eq!(c.header_str("Content-Type"), Some("message/cpim"));
    assert_eq!(c.body(), &cpim[..], "the CPIM IM in order, untouched");
    assert!(
        m.header_str("From")
            .is_some_and(|f| f.contains("sip:001010000000001@ims.example.org")),
        "A is the sender: {:?}",
        m.header_str("From")
    );
    let session = of_kind(&events, "session");
    assert_eq!(session.len(), 1, "{events:?}");
    assert_eq!(
        session[0]["asserted"], "<sip:001010000000001@ims.example.org>",
        "the large-mode INVITE asserts A: {events:?}"
    );
    let msgs = of_kind(&events, "message");
    assert_eq!(msgs.len(), 1, "{events:?}");
    assert_eq!(msgs[0]["size"], 3000);
    assert_eq!(msgs[0]["sha256"], client::sha256_hex(&big));
    assert_eq!(
        of_kind(&events, "bye").len(),
        1,
        "the IM server's BYE: {events:?}"
    );
    // counted once the BYE is answered
    for _ in 0..50 {
        if im.stats().large_sent > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let st = im.stats();
    assert_eq!(
        st.large_sent, 1,
        "success REPORT seen by the IM server: {st:?}"
    );
    assert_eq!(im.stored_ims(), 0);
    assert_eq!(files(), 0, "delivered IMs leave the store");

    // B is registered now: a 5,000-byte page-mode MESSAGE is relayed (not stored) and the IM
    // server converts it to large mode on the way (TS 24.247 §5.2): B gets INVITE + SEND + BYE,
    // A's MESSAGE is answered 200 once B's success REPORT is in
    let relayed: Vec<u8> = (0..5000u32)
        .map(|i| b"relayed, converted to large mode; "[(i % 34) as usize])
        .collect();
    let before = im.stats();
    let lo = ListenOpts {
        sessions: Some(1),
        ..ListenOpts::default()
    };
    let mut events = Vec::new();
    let mut record = |v| events.push(v);
    let (code, r) = tokio::time::timeout(Duration::from_secs(30), async {
        tokio::join!(
            page(&alice, 1, pcscf, text, "text/plain", relayed.clone()),
            client::listen(&mut bob, &lo, &mut record),
        )
    })
    .await
    .expect("the relayed large message arrives");
    r.expect("B's listen ran");
    assert_eq!(code, 200, "delivered, not stored: {events:?}");
    assert!(bob.pages.is_empty(), "no page-mode MESSAGE reached B");
    let msgs = of_kind(&events, "message");
    assert_eq!(msgs.len(), 1, "{events:?}");
    assert_eq!(msgs[0]["size"], 5000);
    assert_eq!(msgs[0]["sha256"], client::sha256_hex(&relayed));
    assert_eq!(of_kind(&events, "bye").len(), 1, "{events:?}");
    let session = of_kind(&events, "session");
    assert_eq!(
        session[0]["asserted"], "<sip:001010000000001@ims.example.org>",
        "the converted INVITE asserts A: {events:?}"
    );
    let st = im.stats();
    assert_eq!(st.large_sent, before.large_sent + 1, "{st:?}");
    assert_eq!(st.im_stored, before.im_stored, "not stored: {st:?}");
    bob.ep.shutdown();
    core.shutdown();
    let _ = std::fs::remove_dir_all(&store);
}
