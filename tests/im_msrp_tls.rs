//! msrps (MSRP over TLS, RFC 4975 §14) on both legs of the IM server's session anchor
//! (`ims_nf::im_session`), between two `msrp_chat` user agents (the example's client code,
//! included below) that each use a self-signed certificate announced by its SDP
//! `a=fingerprint` (RFC 8122 §5): A offers `TCP/TLS/MSRP`, the anchor answers `TCP/TLS/MSRP`
//! with its own fingerprint and offers `TCP/TLS/MSRP` to B; every connection is TLS with the
//! certificate the party's SDP named (the anchor requires A's, pins B's, presents its own).
//!
//! The certificates are made with the `openssl` CLI (skipped when it is missing, unless
//! `IMS_REQUIRE_INTEROP=1`). Feature `tls`.
#![cfg(feature = "tls")]

#[allow(dead_code)]
#[path = "../examples/msrp_chat/client.rs"]
mod client;
mod common;
#[path = "im_common/msrp.rs"]
mod im_msrp;
mod interop_common;

use bytes::Bytes;
use client::{ListenOpts, Offer, Opts, Ua};
use im_msrp::{bob_events, of_kind, BobTask};
use ims::msrp::{Event, FrameBuilder, Framer, Limits};
use ims::net::tls::Identity;
use ims::nf::im_session::{start, ImSessionConfig, ImSessionHandle};
use interop_common::Pki;
use serde_json::Value;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const WAIT: Duration = Duration::from_secs(60);

fn lo0() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

fn identity(pki: &Pki, stem: &str) -> Identity {
    let (pem, key) = pki.self_signed(stem);
    Identity::from_pem_files(pem, key).expect("identity")
}

async fn anchor(pki: &Pki) -> ImSessionHandle {
    start(ImSessionConfig {
        sip_addr: lo0(),
        msrp_addr: lo0(),
        msrps: Some(identity(pki, "anchor")),
        ..ImSessionConfig::default()
    })
    .await
    .expect("anchor starts")
}

fn opts(pki: &Pki, user: &str, proxy: Option<SocketAddr>) -> Opts {
    Opts {
        user: user.into(),
        proxy,
        timeout: WAIT,
        tls: Some(identity(pki, user)),
        ..Opts::default()
    }
}

/// B listens over msrps (echoing, for `sessions` sessions).
async fn bob(pki: &Pki, sessions: usize) -> (String, BobTask) {
    let ua = Ua::bind(opts(pki, "bob", None)).await.expect("bob binds");
    let lopts = ListenOpts {
        echo: true,
        sessions: Some(sessions),
        ..ListenOpts::default()
    };
    im_msrp::listen(ua, lopts)
}

/// The `a=fingerprint` value of an SDP body.
fn fingerprint_of(sdp: &str) -> Option<String> {
    sdp.lines()
        .find_map(|l| l.strip_prefix("a=fingerprint:"))
        .map(|v| v.trim().to_owned())
}

/// A chat of 200 messages each way (B echoes) with success REPORTs, and a 100 KB large-mode
/// message, both over msrps through the anchor: everything arrives intact and in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_and_large_message_over_msrps_through_the_anchor() {
    let Some(pki) = Pki::new("im", "msrps", "IMS_KEEP_IM_TLS") else {
        return;
    };
    let a = anchor(&pki).await;
    let (bob_uri, bob_task) = bob(&pki, 2).await;
    let mut alice = Ua::bind(opts(&pki, "alice", Some(a.sip_addr())))
        .await
        .unwrap();
    let n = 200;
    let msgs: Vec<String> = (1..=n).map(|i| format!("secret {i:05} Grüße")).collect();
    let events = echo_chat(&mut alice, &bob_uri, &msgs, "chat ran").await;
    let connected = of_kind(&events, "connected");
    let path = connected[0]["peer_path"].to_string();
    assert!(
        path.contains("msrps://"),
        "the anchor's path is msrps: {path}"
    );
    // a 100 KB large-mode message (2048-byte chunks) over msrps
    let body: Vec<u8> = (0..100 * 1024u32).map(|i| (i * 7 % 251) as u8).collect();
    let sent = im_msrp::send_large(&mut alice, &bob_uri, "application/octet-stream", &body).await;
    assert_eq!(sent["report"], 200, "{sent}");
    let events = bob_events(bob_task, WAIT).await;
    let got: Vec<&str> = of_kind(&events, "message")
        .iter()
        .filter_map(|e| e["text"].as_str())
        .collect();
    assert_eq!(got, msgs, "B received A's messages in order");
    let all = of_kind(&events, "message");
    let large: Vec<&&Value> = all.iter().filter(|e| e["size"] == 100 * 1024).collect();
    assert_eq!(large.len(), 1, "{events:?}");
    assert_eq!(large[0]["sha256"], client::sha256_hex(&body));
    a.shutdown();
}

/// A (msrps when `alice_tls`) chats with B (msrps only when `bob_tls`, else TCP only) through
/// the anchor: B refuses the offer in A's transport with 488, the anchor offers B the other
/// one and bridges the legs; 20 messages and their echoes arrive in order with success
/// REPORTs, each party sees the anchor's path in its own scheme.
async fn bridged_chat(tag: &str, alice_tls: bool, bob_tls: bool) {
    let Some(pki) = Pki::new("im", tag, "IMS_KEEP_IM_TLS") else {
        return;
    };
    let a = anchor(&pki).await;
    let mut bob_opts = opts(&pki, "bob", None);
    if !bob_tls {
        bob_opts.tls = None;
    }
    let ua = Ua::bind(bob_opts).await.expect("bob binds");
    let lopts = ListenOpts {
        echo: true,
        sessions: Some(1),
        ..ListenOpts::default()
    };
    let (bob_uri, bob_task) = im_msrp::listen(ua, lopts);
    let mut alice_opts = opts(&pki, "alice", Some(a.sip_addr()));
    if !alice_tls {
        alice_opts.tls = None;
    }
    let mut alice = Ua::bind(alice_opts).await.unwrap();
    let n = 20;
    let msgs: Vec<String> = (1..=n).map(|i| format!("bridged {i:03}")).collect();
    let events = echo_chat(&mut alice, &bob_uri, &msgs, "the call is bridged").await;
    let a_side = of_kind(&events, "connected")[0]["peer_path"].to_string();
    assert_eq!(a_side.contains("msrps://"), alice_tls, "A's leg: {a_side}");
    let events = bob_events(bob_task, WAIT).await;
    let b_side = of_kind(&events, "session")[0]["peer_path"].to_string();
    assert_eq!(b_side.contains("msrps://"), bob_tls, "B's leg: {b_side}");
    let got: Vec<&str> = of_kind(&events, "message")
        .iter()
        .filter_map(|e| e["text"].as_str())
        .collect();
    assert_eq!(got, msgs, "B received A's messages in order");
    assert_eq!(
        a.stats()
            .rejected
            .load(std::sync::atomic::Ordering::Relaxed),
        0
    );
    a.shutdown();
}

/// A TCP caller and a TLS-only callee: the anchor bridges TCP/MSRP to msrps.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tcp_caller_reaches_a_tls_only_callee_through_the_anchor() {
    bridged_chat("bridge1", false, true).await;
}

/// A TLS caller and a TCP-only callee: the anchor bridges msrps to TCP/MSRP.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_caller_reaches_a_tcp_only_callee_through_the_anchor() {
    bridged_chat("bridge2", true, false).await;
}

/// The first `a=path` value of an SDP body.
fn path_of(sdp: &str) -> String {
    sdp.lines()
        .find_map(|l| l.strip_prefix("a=path:"))
        .expect("a=path")
        .trim()
        .to_owned()
}

/// Alice chats `msgs` with `bob_uri` (within [`WAIT`]; `what` names a failure to chat): each
/// is sent, reported and echoed back; the client's events.
async fn echo_chat(alice: &mut Ua, bob_uri: &str, msgs: &[String], what: &str) -> Vec<Value> {
    let n = msgs.len();
    let mut events = Vec::new();
    let sum = tokio::time::timeout(
        WAIT,
        client::chat(alice, bob_uri, msgs.to_vec(), n, &mut |v| events.push(v)),
    )
    .await
    .expect("chat in time")
    .expect(what);
    im_msrp::assert_echo_chat(&sum, n);
    events
}

/// Reads frames from `s` until a complete one arrives.
async fn read_frame<S: tokio::io::AsyncRead + Unpin>(
    s: &mut S,
    framer: &mut Framer,
) -> ims::msrp::Frame {
    next_frame(s, framer)
        .await
        .expect("a frame (not an MSRP error or the end of the connection)")
}

/// Reads frames from `s` until a complete one arrives (panics after [`WAIT`]); `None` when the
/// bytes are not MSRP or the connection fails or closes first.
async fn next_frame<S: tokio::io::AsyncRead + Unpin>(
    s: &mut S,
    framer: &mut Framer,
) -> Option<ims::msrp::Frame> {
    tokio::time::timeout(WAIT, async {
        loop {
            if let Some(Event::Frame(f)) = framer.poll().ok()? {
                return Some(f);
            }
            if s.read_buf(framer.buffer_mut()).await.unwrap_or(0) == 0 {
                return None;
            }
        }
    })
    .await
    .expect("a frame or the end of the connection in time")
}

/// A callee answering `a=setup:active` over msrps starts its TLS handshake (ClientHello on
/// the wire) BEFORE it sends its 200, so before the anchor can know the fingerprint its
/// certificate is pinned to: the anchor holds the handshake until it has read that answer,
/// then checks the certificate against it, and the session works both ways over that
/// connection. (Before, the anchor ran the handshake at once with the fingerprints it knew
/// and refused B's certificate.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_active_msrps_callee_may_connect_before_the_anchor_reads_its_answer() {
    use ims::net::sip::{Endpoint, EndpointConfig};
    use ims::net::tls::{ClientAuth, Fingerprint, TlsConfig, Trust};
    use ims::txn::ua::{Answer, UaEvent};
    let Some(pki) = Pki::new("im", "msrps3", "IMS_KEEP_IM_TLS") else {
        return;
    };
    let a = anchor(&pki).await;
    let (bob_ep, mut bob_in) = Endpoint::bind(EndpointConfig {
        addr: lo0(),
        user: "bob".into(),
        ..EndpointConfig::default()
    })
    .await
    .unwrap();
    let bob_uri = format!("sip:bob@{}", bob_ep.local_addr());
    let bob_id = identity(&pki, "bob");
    let bob_fp = bob_id.fingerprint().to_string();
    let mut alice = Ua::bind(opts(&pki, "alice", Some(a.sip_addr())))
        .await
        .unwrap();
    let to = bob_uri.clone();
    let calling = tokio::spawn(async move {
        let c = alice.call(&to, Offer::Chat).await;
        (alice, c)
    });
    let (txn, offer) = tokio::time::timeout(WAIT, async {
        loop {
            match bob_in.recv().await.expect("B's endpoint runs") {
                UaEvent::IncomingInvite { txn, msg, .. } => {
                    return (
                        txn,
                        String::from_utf8_lossy(msg.as_message().body()).into_owned(),
                    )
                }
                _ => continue,
            }
        }
    })
    .await
    .expect("B gets the anchor's INVITE");
    assert!(offer.contains(" TCP/TLS/MSRP "), "{offer}");
    assert!(offer.contains("a=setup:actpass"), "{offer}");
    let anchor_fp = fingerprint_of(&offer).expect("the anchor's fingerprint");
    let anchor_b_path = path_of(&offer);
    // B connects first: TCP, then its ClientHello, with no answer sent yet
    let trust = Trust::fingerprints([Fingerprint::parse(&anchor_fp).unwrap()]);
    let cfg = TlsConfig::new(Some(bob_id), trust, ClientAuth::None).unwrap();
    let tcp = TcpStream::connect(a.msrp_addr()).await.unwrap();
    let handshake = tokio::spawn(async move { cfg.connect(tcp, None).await });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        !handshake.is_finished(),
        "the handshake waits for B's answer (it failed at once before)"
    );
    // now B answers active, naming its certificate
    let b_path = "msrps://127.0.0.1:9/bobearly1;tcp";
    let answer = format!(
        "v=0\r\no=bob 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
m=message 9 TCP/TLS/MSRP *\r\na=accept-types:text/plain\r\na=path:{b_path}\r\n\
a=setup:active\r\na=fingerprint:{bob_fp}\r\n"
    );
    bob_ep
        .respond(txn, Answer::new(200).body("application/sdp", answer))
        .await
        .unwrap();
    let mut tls = tokio::time::timeout(WAIT, handshake)
        .await
        .expect("handshake in time")
        .unwrap()
        .expect("the anchor accepts B's certificate once it has B's answer");
    let (_alice, call) = tokio::time::timeout(WAIT, calling).await.unwrap().unwrap();
    let mut call = call.expect("A's call is up");
    // B, the active end, speaks first (RFC 4975 §5.4: its first request binds the session
    // to its connection); A sends too, which binds A's side
    let frame = FrameBuilder::request("early0001", "SEND")
        .to_path(&anchor_b_path)
        .from_path(b_path)
        .header("Message-ID", "early1")
        .header("Byte-Range", "1-11/11")
        .body("text/plain", Bytes::from_static(b"hello early"))
        .to_bytes();
    tls.write_all(&frame).await.unwrap();
    let mut m = ims::msrp::session::Outgoing::new("text/plain", Bytes::from_static(b"hi B"));
    m.success_report = true;
    call.conn.send(&call.sid, m).await.unwrap().unwrap();
    // B gets A's message (and answers it) and the 200 to its own, in either order
    let mut framer = Framer::new(Limits::default());
    let (mut got_send, mut got_ok) = (false, false);
    while !(got_send && got_ok) {
        let f = read_frame(&mut tls, &mut framer).await;
        if f.head.is_request() {
            if f.head.method() != Some(ims::msrp::Method::Send) || f.body.is_empty() {
                continue;
            }
            assert_eq!(&f.body[..], b"hi B");
            let to_path = f.head.to_path().unwrap();
            assert_eq!(to_path.last().unwrap().as_str(), b_path, "addressed to B");
            let back = f
                .head
                .from_path()
                .unwrap()
                .first()
                .unwrap()
                .as_str()
                .to_owned();
            let ok = FrameBuilder::response(f.head.transaction_id(), 200, None)
                .to_path(&back)
                .from_path(b_path)
                .to_bytes();
            tls.write_all(&ok).await.unwrap();
            got_send = true;
        } else {
            assert_eq!(
                (f.head.transaction_id(), f.head.status()),
                ("early0001", Some(200))
            );
            got_ok = true;
        }
    }
    let got = next_message(&mut call.conn)
        .await
        .expect("B's message reaches A");
    assert_eq!(&got[..], b"hello early");
    a.shutdown();
    bob_ep.shutdown();
}

/// The body of the next complete message on `conn` (skipping its other events); panics when
/// the connection closes first, `None` after [`WAIT`].
async fn next_message(conn: &mut ims::net::msrp::MsrpConnection) -> Option<Bytes> {
    tokio::time::timeout(WAIT, async {
        loop {
            match conn.next_event().await {
                Some(ims::net::msrp::ConnEvent::Session {
                    event: ims::msrp::session::SessionEvent::Message { body, .. },
                    ..
                }) => return body,
                Some(_) => {}
                None => panic!("connection closed"),
            }
        }
    })
    .await
    .ok()
}

/// Sends one SEND to `to` over a new TLS connection to the anchor presenting `id`; the
/// response status, `None` when the connection fails or closes without one.
async fn tls_send(a: &ImSessionHandle, id: Identity, anchor_fp: &str, to: &str) -> Option<u16> {
    use ims::net::tls::{ClientAuth, Fingerprint, TlsConfig, Trust};
    let trust = Trust::fingerprints([Fingerprint::parse(anchor_fp).unwrap()]);
    let cfg = TlsConfig::new(Some(id), trust, ClientAuth::None).unwrap();
    let tcp = TcpStream::connect(a.msrp_addr()).await.unwrap();
    let mut s = cfg.connect(tcp, None).await.ok()?;
    let frame = FrameBuilder::request("tls00001", "SEND")
        .to_path(to)
        .from_path("msrps://127.0.0.1:9/intruder;tcp")
        .header("Message-ID", "tls1")
        .header("Byte-Range", "1-3/3")
        .body("text/plain", Bytes::from_static(b"bad"))
        .to_bytes();
    s.write_all(&frame).await.ok()?;
    let f = next_frame(&mut s, &mut Framer::new(Limits::default())).await?;
    assert_eq!(f.head.transaction_id(), "tls00001");
    f.head.status()
}

/// The SDP of each leg names the anchor's certificate (TCP/TLS/MSRP, msrps path), and the
/// msrps session cannot be used over plain TCP: a SEND to it on a TCP connection gets 481,
/// and so does a SEND over TLS with another session's certificate; a certificate no SDP named
/// does not get through the handshake; nothing of these reaches B, while the session goes on
/// over TLS.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_msrps_session_is_refused_over_plain_tcp() {
    let Some(pki) = Pki::new("im", "msrps2", "IMS_KEEP_IM_TLS") else {
        return;
    };
    let anchor_id = identity(&pki, "anchor2");
    let anchor_fp = anchor_id.fingerprint().to_string();
    let a = start(ImSessionConfig {
        sip_addr: lo0(),
        msrp_addr: lo0(),
        msrps: Some(anchor_id),
        ..ImSessionConfig::default()
    })
    .await
    .unwrap();
    let (bob_uri, bob_task) = bob(&pki, 1).await;
    let mut alice = Ua::bind(opts(&pki, "alice", Some(a.sip_addr())))
        .await
        .unwrap();
    let mut call = alice.call(&bob_uri, Offer::Chat).await.expect("call up");
    assert!(
        call.peer_sdp.contains(" TCP/TLS/MSRP "),
        "{}",
        call.peer_sdp
    );
    assert_eq!(
        fingerprint_of(&call.peer_sdp).as_deref(),
        Some(anchor_fp.as_str())
    );
    let anchor_path = call
        .peer_sdp
        .lines()
        .find_map(|l| l.strip_prefix("a=path:"))
        .unwrap()
        .trim()
        .to_owned();
    assert!(anchor_path.starts_with("msrps://"), "{anchor_path}");
    // plain TCP to the msrps session: 481
    let mut s = TcpStream::connect(a.msrp_addr()).await.unwrap();
    let frame = FrameBuilder::request("plain0001", "SEND")
        .to_path(&anchor_path)
        .from_path("msrp://127.0.0.1:9/intruder;tcp")
        .header("Message-ID", "plain1")
        .header("Byte-Range", "1-5/5")
        .body("text/plain", Bytes::from_static(b"plain"))
        .to_bytes();
    s.write_all(&frame).await.unwrap();
    let f = read_frame(&mut s, &mut Framer::new(Limits::default())).await;
    assert_eq!(f.head.transaction_id(), "plain0001");
    assert_eq!(f.head.status().unwrap(), 481);
    // TLS with B's certificate (one the anchor expects, for B's leg) cannot bind A's session
    // (RFC 4975 §14.1: the certificate must be the one that session's SDP named): 481
    let bob_id = Identity::from_pem_files(pki.path("bob.pem"), pki.path("bob.key")).unwrap();
    assert_eq!(
        tls_send(&a, bob_id, &anchor_fp, &anchor_path).await,
        Some(481)
    );
    // a certificate no SDP named: the handshake is refused, no response at all
    let mallory = identity(&pki, "mallory");
    assert_eq!(tls_send(&a, mallory, &anchor_fp, &anchor_path).await, None);
    // the session itself still works over TLS: one message and its echo
    let mut m = ims::msrp::session::Outgoing::new("text/plain", Bytes::from_static(b"tls ok"));
    m.success_report = true;
    call.conn.send(&call.sid, m).await.unwrap().unwrap();
    let echoed = next_message(&mut call.conn).await.expect("the echo");
    assert_eq!(&echoed[..], b"tls ok");
    let t = alice.ep.bye(&call.dialog).await.unwrap();
    assert_eq!(
        t.final_response().await.unwrap().as_message().status(),
        Some(200)
    );
    let (events, _) = tokio::time::timeout(WAIT, bob_task).await.unwrap().unwrap();
    let got: Vec<&str> = of_kind(&events, "message")
        .iter()
        .filter_map(|e| e["text"].as_str())
        .collect();
    assert_eq!(got, ["tls ok"], "only the TLS message reached B");
    a.shutdown();
}

/// msrps through our RFC 4976 relay (`MsrpRelay::start_tls`): Bob connects to the relay over
/// TLS (pinning its certificate) and authenticates on that connection; Alice connects over TLS
/// too and sends to Bob's Use-Path: the SEND reaches Bob over his TLS connection and his reply
/// reaches Alice over hers; Bob's message to Carol, an `msrps:` URI nobody connected from, makes
/// the relay open a TLS connection to Carol (its client side trusts her certificate), where
/// it arrives. Plain TCP to the TLS relay gets no answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn msrps_through_an_msrp_relay() {
    use ims::msrp::relay::{AuthClient, RelayConfig};
    use ims::msrp::session::{Config as MsrpConfig, Outgoing, Session};
    use ims::msrp::UriBuf;
    use ims::net::msrp::{relay_auth, ConnConfig, ConnEvent, MsrpConnection, MsrpRelay};
    use ims::net::tls::{ClientAuth, TlsConfig, Trust};
    let Some(pki) = Pki::new("im", "msrps-relay", "IMS_KEEP_IM_TLS") else {
        return;
    };
    let ids: Vec<Identity> = ["relay", "alice", "bob", "carol"]
        .iter()
        .map(|n| identity(&pki, n))
        .collect();
    let fp = |i: usize| ids[i].fingerprint();
    let client = |me: usize| {
        TlsConfig::new(
            Some(ids[me].clone()),
            Trust::fingerprints([fp(0)]),
            ClientAuth::None,
        )
        .unwrap()
    };
    let l = tokio::net::TcpListener::bind(lo0()).await.unwrap();
    let at = l.local_addr().unwrap();
    let relay_uri = format!("msrps://127.0.0.1:{};tcp", at.port());
    let relay_tls = TlsConfig::new(
        Some(ids[0].clone()),
        Trust::fingerprints([fp(1), fp(2), fp(3)]),
        ClientAuth::None,
    )
    .unwrap();
    let relay = MsrpRelay::start_tls(
        l,
        RelayConfig::new(UriBuf::parse(&relay_uri).unwrap(), "relay.example.org"),
        &[("bob", "bob-pw")],
        0x4976,
        relay_tls,
    )
    .expect("relay");
    // Carol listens for msrps
    let carol_l = tokio::net::TcpListener::bind(lo0()).await.unwrap();
    let carol_uri = format!(
        "msrps://127.0.0.1:{}/carol1;tcp",
        carol_l.local_addr().unwrap().port()
    );
    let carol_tls = TlsConfig::new(
        Some(ids[3].clone()),
        Trust::fingerprints([fp(0)]),
        ClientAuth::None,
    )
    .unwrap();
    let carol = tokio::spawn(async move {
        let (s, _) = carol_l.accept().await.unwrap();
        MsrpConnection::accept_tls(s, ConnConfig::default(), &carol_tls)
            .await
            .expect("the relay's TLS connection to Carol")
    });
    // Bob: TLS to the relay, AUTH on it
    let bob_local = "msrps://127.0.0.1:9/bob1;tcp";
    let tcp = TcpStream::connect(at).await.unwrap();
    let mut bob_s = client(2)
        .connect(tcp, None)
        .await
        .expect("TLS to the relay");
    let mut auth = AuthClient::new(
        UriBuf::parse(bob_local).unwrap(),
        UriBuf::parse(&relay_uri).unwrap(),
        "bob",
        "bob-pw",
        None,
        5,
    );
    let (use_path, _) = relay_auth(&mut bob_s, &mut auth, WAIT)
        .await
        .expect("AUTH over TLS");
    let up = use_path[0].as_str().to_owned();
    assert!(up.starts_with("msrps://"), "{up}");
    // Alice: TLS to the relay, a session toward Bob's Use-Path
    let alice_local = "msrps://127.0.0.1:9/alice1;tcp";
    let session = |local: &str, to: &[&str]| {
        let c = MsrpConfig::new(
            UriBuf::parse(local).unwrap(),
            to.iter().map(|u| UriBuf::parse(u).unwrap()).collect(),
        );
        Session::new(c, 7)
    };
    let tcp = TcpStream::connect(at).await.unwrap();
    let alice_s = client(1)
        .connect(tcp, None)
        .await
        .expect("TLS to the relay");
    let mut ac = MsrpConnection::spawn_tls(alice_s, ConnConfig::default());
    ac.add_session(session(alice_local, &[&up, bob_local]))
        .await
        .unwrap();
    let mut bc = MsrpConnection::spawn_tls(bob_s, ConnConfig::default());
    bc.add_session(session(bob_local, &[&up, alice_local]))
        .await
        .unwrap();
    bc.add_session(session("msrps://127.0.0.1:9/bob2;tcp", &[&up, &carol_uri]))
        .await
        .unwrap();
    async fn text(c: &mut MsrpConnection) -> (String, String) {
        tokio::time::timeout(WAIT, async {
            loop {
                match c.next_event().await.expect("connection open") {
                    ConnEvent::Session {
                        session_id,
                        event: SessionEvent::Message { body, .. },
                    } => return (session_id, String::from_utf8_lossy(&body).into_owned()),
                    ConnEvent::Session { .. } => {}
                    other => panic!("{other:?}"),
                }
            }
        })
        .await
        .expect("a message")
    }
    use ims::msrp::session::SessionEvent;
    ac.send("alice1", Outgoing::new("text/plain", "hello over msrps"))
        .await
        .unwrap();
    assert_eq!(
        text(&mut bc).await,
        ("bob1".into(), "hello over msrps".into())
    );
    bc.send("bob1", Outgoing::new("text/plain", "hi Alice"))
        .await
        .unwrap();
    assert_eq!(text(&mut ac).await, ("alice1".into(), "hi Alice".into()));
    bc.send("bob2", Outgoing::new("text/plain", "hi Carol"))
        .await
        .unwrap();
    let mut cc = tokio::time::timeout(WAIT, carol)
        .await
        .expect("the relay connects to Carol")
        .unwrap();
    cc.add_session(session(&carol_uri, &[&up, "msrps://127.0.0.1:9/bob2;tcp"]))
        .await
        .unwrap();
    assert_eq!(text(&mut cc).await, ("carol1".into(), "hi Carol".into()));
    // plain TCP to the TLS relay: no MSRP answer
    let mut plain = TcpStream::connect(at).await.unwrap();
    let probe = FrameBuilder::request("probe001", "SEND")
        .to_path(&format!("{up} {bob_local}"))
        .from_path("msrp://127.0.0.1:9/plain;tcp")
        .header("Message-ID", "probe01")
        .header("Byte-Range", "1-2/2")
        .body("text/plain", Bytes::from_static(b"hi"))
        .to_bytes();
    let _ = plain.write_all(&probe).await;
    let mut buf = [0u8; 256];
    let got = tokio::time::timeout(Duration::from_secs(2), plain.read(&mut buf)).await;
    assert!(
        !matches!(got, Ok(Ok(n)) if n > 0 && buf.starts_with(b"MSRP ")),
        "a plain-TCP SEND was answered"
    );
    relay.shutdown();
}

/// msrps legs through the anchor's own relay (`ImSessionConfig::relay` with an `msrps:` URI
/// and `AnchorRelay::tls`; RFC 4976 §5 over TLS, RFC 4975 §14): the anchor (which has no
/// certificate of its own here) connects to the relay over TLS, AUTHs, and gets an `msrps:`
/// Use-Path; both parties are offered `TCP/TLS/MSRP` with that Use-Path first and the RELAY's
/// fingerprint (the certificate they meet on their first hop); Alice connects to the relay
/// over TLS, the relay opens TLS to Bob; 20 messages and their echoes arrive in order with
/// success REPORTs, and the anchor's only MSRP connection is its TLS link. (Before: the link
/// was plain TCP, an `msrps:` relay URI failed, and msrps offers were refused without the
/// anchor's own certificate, or given a plain-TCP first hop.) The same anchor behind a plain
/// relay refuses an msrps offer with 488 rather than give it a plain first hop.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn msrps_legs_go_through_the_anchors_tls_relay() {
    use ims::msrp::relay::RelayConfig;
    use ims::msrp::UriBuf;
    use ims::net::msrp::MsrpRelay;
    use ims::net::tls::{ClientAuth, TlsConfig, Trust};
    use ims::nf::im_session::AnchorRelay;
    let Some(pki) = Pki::new("im", "msrps-anchor-relay", "IMS_KEEP_IM_TLS") else {
        return;
    };
    let (relay_id, alice_id, bob_id) = (
        identity(&pki, "relay"),
        identity(&pki, "alice"),
        identity(&pki, "bob"),
    );
    let l = tokio::net::TcpListener::bind(lo0()).await.unwrap();
    let relay_uri = format!("msrps://127.0.0.1:{};tcp", l.local_addr().unwrap().port());
    let relay_tls = TlsConfig::new(
        Some(relay_id.clone()),
        Trust::fingerprints([alice_id.fingerprint(), bob_id.fingerprint()]),
        ClientAuth::None,
    )
    .unwrap();
    let relay = MsrpRelay::start_tls(
        l,
        RelayConfig::new(UriBuf::parse(&relay_uri).unwrap(), "relay.example.org"),
        &[("im", "im-pw")],
        0x4976,
        relay_tls,
    )
    .expect("relay");
    let to_relay = TlsConfig::new(
        None,
        Trust::fingerprints([relay_id.fingerprint()]),
        ClientAuth::None,
    )
    .unwrap();
    let a = start(ImSessionConfig {
        sip_addr: lo0(),
        msrp_addr: lo0(),
        relay: Some(AnchorRelay {
            uri: relay_uri.clone(),
            user: "im".into(),
            password: "im-pw".into(),
            tls: Some(to_relay),
        }),
        ..ImSessionConfig::default()
    })
    .await
    .expect("anchor starts behind its TLS relay");
    assert_eq!(relay.bindings(), 1, "the anchor authenticated over TLS");
    // (each `identity` call makes a new certificate: the parties use the ones the relay trusts)
    let bob_ua = Ua::bind(Opts {
        tls: Some(bob_id),
        ..opts(&pki, "bob", None)
    })
    .await
    .expect("bob binds");
    let lopts = ListenOpts {
        echo: true,
        sessions: Some(1),
        ..ListenOpts::default()
    };
    let (bob_uri, bob_task) = im_msrp::listen(bob_ua, lopts);
    let mut alice = Ua::bind(Opts {
        tls: Some(alice_id),
        ..opts(&pki, "alice", Some(a.sip_addr()))
    })
    .await
    .unwrap();
    let n = 20;
    let msgs: Vec<String> = (1..=n).map(|i| format!("via the relay {i:03}")).collect();
    let events = echo_chat(&mut alice, &bob_uri, &msgs, "chat through the TLS relay").await;
    let relay_at = relay_uri.trim_end_matches(";tcp").replace("msrps://", "");
    let a_side = of_kind(&events, "connected")[0]["peer_path"].to_string();
    assert!(
        a_side.contains(&format!("msrps://{relay_at}/")),
        "A's first hop is the relay's msrps Use-Path: {a_side}"
    );
    let events = bob_events(bob_task, WAIT).await;
    let b_side = of_kind(&events, "session")[0]["peer_path"].to_string();
    assert!(
        b_side.contains(&format!("msrps://{relay_at}/")),
        "B's leg: {b_side}"
    );
    let got: Vec<&str> = of_kind(&events, "message")
        .iter()
        .filter_map(|e| e["text"].as_str())
        .collect();
    assert_eq!(got, msgs, "B received A's messages in order");
    assert_eq!(
        a.stats()
            .connections
            .load(std::sync::atomic::Ordering::Relaxed),
        1,
        "the anchor's only MSRP connection is its TLS link to the relay"
    );
    a.shutdown();
    relay.shutdown();

    // behind a plain-TCP relay an msrps offer is refused (its first hop would be plain TCP)
    let l = tokio::net::TcpListener::bind(lo0()).await.unwrap();
    let plain_uri = format!("msrp://127.0.0.1:{};tcp", l.local_addr().unwrap().port());
    let plain = MsrpRelay::start(
        l,
        RelayConfig::new(UriBuf::parse(&plain_uri).unwrap(), "relay.example.org"),
        &[("im", "im-pw")],
        0x4977,
    )
    .expect("relay");
    let a = start(ImSessionConfig {
        sip_addr: lo0(),
        msrp_addr: lo0(),
        msrps: Some(identity(&pki, "anchor")),
        relay: Some(AnchorRelay {
            uri: plain_uri,
            user: "im".into(),
            password: "im-pw".into(),
            ..AnchorRelay::default()
        }),
        ..ImSessionConfig::default()
    })
    .await
    .expect("anchor starts behind its plain relay");
    let mut alice = Ua::bind(opts(&pki, "alice", Some(a.sip_addr())))
        .await
        .unwrap();
    let refused = tokio::time::timeout(WAIT, alice.call(&bob_uri, Offer::Chat))
        .await
        .expect("answered in time");
    assert_eq!(refused.err().as_deref(), Some("488"));
    a.shutdown();
    plain.shutdown();
}
