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
    let mut events = Vec::new();
    let sum = tokio::time::timeout(
        WAIT,
        client::chat(&mut alice, &bob_uri, msgs.clone(), n, &mut |v| {
            events.push(v)
        }),
    )
    .await
    .expect("chat in time")
    .expect("chat ran");
    im_msrp::assert_echo_chat(&sum, n);
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
    let mut framer = Framer::new(Limits::default());
    tokio::time::timeout(WAIT, async {
        loop {
            if let Some(Event::Frame(f)) = framer.poll().ok()? {
                assert_eq!(f.head.transaction_id(), "tls00001");
                return f.head.status();
            }
            if s.read_buf(framer.buffer_mut()).await.unwrap_or(0) == 0 {
                return None;
            }
        }
    })
    .await
    .expect("an answer or the end of the connection")
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
    let mut framer = Framer::new(Limits::default());
    let status = tokio::time::timeout(WAIT, async {
        loop {
            if let Some(Event::Frame(f)) = framer.poll().unwrap() {
                assert_eq!(f.head.transaction_id(), "plain0001");
                return f.head.status().unwrap();
            }
            assert!(s.read_buf(framer.buffer_mut()).await.unwrap() > 0);
        }
    })
    .await
    .expect("a response");
    assert_eq!(status, 481);
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
    let echoed = tokio::time::timeout(WAIT, async {
        loop {
            match call.conn.next_event().await {
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
    .expect("the echo");
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
