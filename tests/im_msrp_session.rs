//! The IM server's session anchor (`ims_nf::im_session`, TS 24.247 large mode and session mode)
//! between two `msrp_chat` user agents (the example's client code, included below): A sends its
//! INVITE to the anchor, the anchor's B-leg INVITE goes to B's address (the Request-URI), and
//! every MSRP frame passes through the anchor's switch.
//!
//! The anchor is tested directly, not behind the all-in-one core (no iFC for INVITE toward it
//! yet).

// `AnchorRelay { .., ..default() }`: the default fills the TLS trust when the `tls` feature
// adds that field
#![allow(clippy::needless_update)]

#[allow(dead_code)]
#[path = "../examples/msrp_chat/client.rs"]
mod client;
#[path = "im_common/msrp.rs"]
mod im_msrp;

use client::{ListenOpts, Offer, Opts, Ua};
use im_msrp::{bob_events, of_kind, BobTask};
use ims::nf::im_session::{start, ImSessionConfig, ImSessionHandle};
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::time::Instant;

fn lo(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

async fn anchor() -> ImSessionHandle {
    start(ImSessionConfig {
        sip_addr: lo(0),
        msrp_addr: lo(0),
        ..ImSessionConfig::default()
    })
    .await
    .expect("anchor starts")
}

fn opts(user: &str, proxy: Option<SocketAddr>) -> Opts {
    Opts {
        user: user.into(),
        proxy,
        timeout: Duration::from_secs(60),
        ..Opts::default()
    }
}

/// B listens with `lopts`; returns B's SIP URI and the task yielding B's events.
async fn bob(lopts: ListenOpts, chunk: usize) -> (String, BobTask) {
    let mut o = opts("bob", None);
    o.chunk_size = chunk;
    let ua = Ua::bind(o).await.expect("bob binds");
    im_msrp::listen(ua, lopts)
}

/// The anchor, B listening through [`bob`] with `lopts` for one session (2048-byte chunks) and
/// A bound with the anchor as its proxy.
async fn session(lopts: ListenOpts) -> (ImSessionHandle, String, BobTask, Ua) {
    let a = anchor().await;
    let (bob_uri, bob_task) = bob(
        ListenOpts {
            sessions: Some(1),
            ..lopts
        },
        2048,
    )
    .await;
    let alice = Ua::bind(opts("alice", Some(a.sip_addr()))).await.unwrap();
    (a, bob_uri, bob_task, alice)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_mode_message_of_100_kb_arrives_intact() {
    let (a, bob_uri, bob_task, mut alice) = session(ListenOpts::default()).await;
    let body: Vec<u8> = (0..100 * 1024u32)
        .map(|i| b"abcdefghijklmnopqrstuvwxyz\n"[(i % 27) as usize])
        .collect();
    let sent = im_msrp::send_large(&mut alice, &bob_uri, "text/plain", &body).await;
    assert_eq!(
        sent["report"], 200,
        "success REPORT from B through the anchor"
    );
    assert_eq!(sent["bye"], 200);
    let events = bob_events(bob_task, Duration::from_secs(30)).await;
    let msgs = of_kind(&events, "message");
    assert_eq!(msgs.len(), 1, "{events:?}");
    assert_eq!(msgs[0]["size"], 100 * 1024);
    assert_eq!(msgs[0]["sha256"], client::sha256_hex(&body));
    assert_eq!(
        of_kind(&events, "bye").len(),
        1,
        "A's BYE reached B: {events:?}"
    );
    // 100 KiB in 2048-byte chunks (A→anchor→B), every chunk one forwarded request
    assert!(a.stats().requests.load(Ordering::Relaxed) >= 50);
    assert_eq!(a.stats().sessions.load(Ordering::Relaxed), 1);
    a.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_of_1000_messages_each_way_in_order_with_success_reports() {
    let (a, bob_uri, bob_task, mut alice) = session(ListenOpts {
        echo: true,
        ..ListenOpts::default()
    })
    .await;
    let n = 1000;
    let msgs: Vec<String> = (1..=n).map(|i| format!("message {i:06}")).collect();
    let t = Instant::now();
    let sum = client::chat(&mut alice, &bob_uri, msgs.clone(), n, &mut |_| {})
        .await
        .expect("chat ran");
    let secs = t.elapsed().as_secs_f64();
    im_msrp::assert_echo_chat(&sum, n);
    let events = bob_events(bob_task, Duration::from_secs(30)).await;
    let got: Vec<&str> = of_kind(&events, "message")
        .iter()
        .map(|e| e["text"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(got, msgs, "B received A's messages in order");
    let reports = of_kind(&events, "report");
    assert_eq!(reports.len(), n, "B got a success REPORT for each echo");
    assert!(reports.iter().all(|r| r["status"] == 200));
    assert_eq!(of_kind(&events, "bye").len(), 1);
    println!(
        "im_msrp chat: {} messages + {} echoes with {} success reports in {:.2} s: {:.0} messages/s through the anchor",
        n,
        n,
        2 * n,
        secs,
        2.0 * n as f64 / secs
    );
    a.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bye_from_b_ends_the_session_for_a() {
    let (a, bob_uri, bob_task, mut alice) = session(ListenOpts {
        bye_after: Some(3),
        ..ListenOpts::default()
    })
    .await;
    let msgs: Vec<String> = (1..=3).map(|i| format!("hello {i}")).collect();
    // A waits for 5 messages that never come: B's BYE ends the session first
    let sum = client::chat(&mut alice, &bob_uri, msgs, 5, &mut |_| {})
        .await
        .expect("chat ran");
    assert_eq!(sum["ended_by_peer"], true, "{sum}");
    let (events, _) = bob_task.await.unwrap();
    let bye = of_kind(&events, "bye_sent");
    assert_eq!(bye.len(), 1, "{events:?}");
    assert_eq!(bye[0]["status"], 200, "the anchor answered B's BYE");
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(a.stats().active.load(Ordering::Relaxed), 0);
    a.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn busy_b_gives_486_to_a() {
    let (a, bob_uri, bob_task, mut alice) = session(ListenOpts {
        busy: Some(486),
        ..ListenOpts::default()
    })
    .await;
    let r = alice.call(&bob_uri, Offer::Chat).await;
    assert_eq!(r.err().as_deref(), Some("486"));
    let (events, _) = bob_task.await.unwrap();
    assert_eq!(of_kind(&events, "refused").len(), 1);
    assert_eq!(a.stats().rejected.load(Ordering::Relaxed), 1);
    assert_eq!(a.stats().sessions.load(Ordering::Relaxed), 0);
    a.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invite_without_msrp_is_refused_488() {
    let a = anchor().await;
    let (ep, _inc) = ims::net::sip::Endpoint::bind(ims::net::sip::EndpointConfig::default())
        .await
        .unwrap();
    let sdp = "v=0\r\no=x 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
m=audio 4000 RTP/AVP 0\r\n";
    let t = ep
        .invite(ims::txn::ua::InviteParams {
            request_uri: "sip:bob@127.0.0.1:9".into(),
            from: "<sip:alice@ims.example>".into(),
            to: "<sip:bob@ims.example>".into(),
            remote: ims::txn::Remote::udp(a.sip_addr()),
            headers: vec![],
            body: Some(("application/sdp".into(), sdp.into())),
        })
        .await
        .unwrap();
    let r = t.final_response().await.unwrap();
    assert_eq!(r.as_message().status(), Some(488));
    ep.shutdown();
    a.shutdown();
}

/// A re-INVITE inside an anchored session: a refresh (no SDP, or the same MSRP path) is
/// answered by the anchor with the SDP that leg already has; a re-offer moving the MSRP path
/// is accepted with the anchor's same path (the party re-binds, `tests/im_msrp_mux.rs` moves a
/// live session); a re-offer without an MSRP stream gets 488 with a Warning and the session
/// carries on. The anchor's answer says `a=setup:passive` (A connects, RFC 4145/6135).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn re_invite_refresh_is_answered_and_a_stream_drop_refused() {
    use ims::sip::Method;
    let (a, bob_uri, bob_task, mut alice) = session(ListenOpts::default()).await;
    let call = alice.call(&bob_uri, Offer::Chat).await.expect("answered");
    assert!(
        call.peer_sdp.contains("a=setup:passive\r\n"),
        "{}",
        call.peer_sdp
    );
    let reinvite = |body: Option<String>| {
        let ep = alice.ep.clone();
        let dialog = call.dialog.clone();
        async move {
            let body = body.map(|b| ("application/sdp".to_string(), b.into_bytes()));
            let t = ep
                .request_in_dialog(&dialog, Method::Invite, vec![], body)
                .await
                .expect("re-INVITE sent");
            tokio::time::timeout(Duration::from_secs(10), t.final_response())
                .await
                .expect("answered in time")
                .expect("answer")
        }
    };
    // a session refresh without an offer: our SDP again
    let r = reinvite(None).await;
    let m = r.as_message();
    assert_eq!(m.status(), Some(200));
    assert_eq!(m.body(), call.peer_sdp.as_bytes(), "the unchanged answer");
    // a re-offer with the same path
    let offer = |path: &str| {
        format!(
            "v=0\r\no=alice 9 2 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
m=message {} TCP/MSRP *\r\na=accept-types:text/plain\r\na=path:{path}\r\n",
            alice.msrp_port()
        )
    };
    let same = format!("msrp://127.0.0.1:{}/{};tcp", alice.msrp_port(), call.sid);
    let r = reinvite(Some(offer(&same))).await;
    assert_eq!(r.as_message().status(), Some(200));
    assert_eq!(r.as_message().body(), call.peer_sdp.as_bytes());
    // a re-offer that moves the path: accepted, the anchor keeps its own path
    let moved = format!("msrp://127.0.0.1:9/{};tcp", call.sid);
    let r = reinvite(Some(offer(&moved))).await;
    let m = r.as_message();
    assert_eq!(m.status(), Some(200));
    let body = String::from_utf8_lossy(m.body()).into_owned();
    let ours = call
        .peer_sdp
        .lines()
        .find(|l| l.starts_with("a=path:"))
        .expect("a=path")
        .to_owned();
    assert!(body.contains(&format!("{ours}\r\n")), "{body}");
    assert!(body.contains("a=setup:passive\r\n"), "{body}");
    // a re-offer without the MSRP stream: refused, with the reason
    let no_msrp = "v=0\r\no=alice 9 3 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
m=audio 4000 RTP/AVP 0\r\n";
    let r = reinvite(Some(no_msrp.to_owned())).await;
    let m = r.as_message();
    assert_eq!(m.status(), Some(488));
    assert!(
        m.header_str("Warning")
            .is_some_and(|w| w.starts_with("399 ")),
        "{:?}",
        m.header_str("Warning")
    );
    // the session is still up: A hangs up and the BYE reaches B
    assert_eq!(alice.hangup(&call).await.expect("BYE"), 200);
    let events = bob_events(bob_task, Duration::from_secs(30)).await;
    assert_eq!(of_kind(&events, "bye").len(), 1, "{events:?}");
    a.shutdown();
}

/// RFC 4976 end to end with `msrp_chat --relay`: Alice, Bob and the anchor each sit behind the
/// same relay (our `MsrpRelay`) and authenticate to it (three bindings); every `a=path` is a
/// Use-Path then the party's URI, and all MSRP runs over the three relay connections (the
/// anchor opens no other and accepts none, the clients never connect to each other or to the
/// anchor). A chat of 200 messages with echoes and success REPORTs, in order, then BYE.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_through_an_msrp_relay_with_msrp_chat_relay_options() {
    use ims::msrp::relay::RelayConfig;
    use ims::msrp::UriBuf;
    use ims::net::msrp::MsrpRelay;
    use ims::nf::im_session::AnchorRelay;
    let l = tokio::net::TcpListener::bind(lo(0)).await.unwrap();
    let relay_uri = format!("msrp://127.0.0.1:{};tcp", l.local_addr().unwrap().port());
    let cfg = RelayConfig::new(UriBuf::parse(&relay_uri).unwrap(), "relay.example.org");
    let users = [("alice", "a-pw"), ("bob", "b-pw"), ("im", "im-pw")];
    let relay = MsrpRelay::start(l, cfg, &users, 0x4976).expect("relay");
    let through = |user: &str, password: &str| {
        Some(client::RelayOpts {
            uri: relay_uri.clone(),
            user: user.into(),
            password: password.into(),
        })
    };
    let a = start(ImSessionConfig {
        sip_addr: lo(0),
        msrp_addr: lo(0),
        relay: Some(AnchorRelay {
            uri: relay_uri.clone(),
            user: "im".into(),
            password: "im-pw".into(),
            ..AnchorRelay::default()
        }),
        ..ImSessionConfig::default()
    })
    .await
    .expect("anchor starts");
    let mut bo = opts("bob", None);
    bo.relay = through("bob", "b-pw");
    let (bob_uri, bob_task) = im_msrp::listen(
        Ua::bind(bo).await.expect("bob binds"),
        ListenOpts {
            echo: true,
            sessions: Some(1),
            ..ListenOpts::default()
        },
    );
    let mut ao = opts("alice", Some(a.sip_addr()));
    ao.relay = through("alice", "a-pw");
    let mut alice = Ua::bind(ao).await.unwrap();
    let n = 200;
    let msgs: Vec<String> = (1..=n).map(|i| format!("relayed {i:04}")).collect();
    let mut seen = Vec::new();
    // counted when Alice's session is up: once a session ends its party closes its relay
    // connection and the relay drops that binding
    let mut bound_when_connected = None;
    let sum = client::chat(&mut alice, &bob_uri, msgs.clone(), n, &mut |v| {
        if v["event"] == "connected" {
            bound_when_connected = Some(relay.bindings());
        }
        seen.push(v)
    })
    .await
    .expect("chat ran");
    im_msrp::assert_echo_chat(&sum, n);
    assert_eq!(
        bound_when_connected,
        Some(3),
        "Alice, Bob and the anchor authenticated"
    );
    let events = bob_events(bob_task, Duration::from_secs(30)).await;
    let got: Vec<&str> = of_kind(&events, "message")
        .iter()
        .map(|e| e["text"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(got, msgs, "B received A's messages in order");
    assert_eq!(of_kind(&events, "report").len(), n);
    assert_eq!(of_kind(&events, "bye").len(), 1);
    // the anchor's paths: the relay's Use-Path URIs, then the anchor's own URI
    let relay_port = format!(":{}/", relay.local_addr().port());
    let anchor_port = format!(":{}/", a.msrp_addr().port());
    for (who, evs, kind) in [("A", &seen, "connected"), ("B", &events, "session")] {
        let c = of_kind(evs, kind);
        assert_eq!(c.len(), 1, "{who}: {c:?}");
        let path: Vec<&str> = c[0]["peer_path"]
            .as_array()
            .expect("peer_path")
            .iter()
            .map(|u| u.as_str().unwrap_or(""))
            .collect();
        assert_eq!(
            path.len(),
            2,
            "{who}: the anchor's Use-Path and URI: {path:?}"
        );
        assert!(path[0].contains(&relay_port), "{who}: {path:?}");
        assert!(path[1].contains(&anchor_port), "{who}: {path:?}");
    }
    assert_eq!(
        a.stats().connections.load(Ordering::Relaxed),
        1,
        "the anchor's one MSRP connection is the one to its relay"
    );
    a.shutdown();
    relay.shutdown();
}
