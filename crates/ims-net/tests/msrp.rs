//! Two tokio MSRP peers over 127.0.0.1: a 50 MB file in 64 KiB chunks with a chat message
//! interrupting it; both arrive intact (SHA-256) and the process's peak memory (VmHWM) stays far
//! below the file size, because neither side ever holds the file.

use bytes::Bytes;
use ims_msrp::session::{Config, Outgoing, Session, SessionEvent};
use ims_msrp::UriBuf;
use ims_net::msrp::{ConnConfig, ConnEvent, MsrpConnection};
use sha2::{Digest, Sha256};
use tokio::net::TcpListener;

const FILE: usize = 50 * 1024 * 1024;
const PIECE: usize = 256 * 1024;

fn vm_hwm_kib() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let l = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    l.split_whitespace().nth(1)?.parse().ok()
}

/// Deterministic file content, piece by piece.
fn piece(state: &mut u64, n: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(n);
    while v.len() < n {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        v.extend_from_slice(&state.to_le_bytes());
    }
    v.truncate(n);
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_megabytes_with_chat_interruption() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let a_uri = UriBuf::parse("msrp://127.0.0.1:40001/alice1234;tcp").unwrap();
    let b_uri = UriBuf::parse(&format!("msrp://127.0.0.1:{}/bob5678;tcp", addr.port())).unwrap();

    let accept = tokio::spawn(async move { listener.accept().await.unwrap().0 });
    let alice = MsrpConnection::connect(addr, ConnConfig::default())
        .await
        .unwrap();
    let mut bob = MsrpConnection::spawn(accept.await.unwrap(), ConnConfig::default());

    let mut ca = Config::new(a_uri.clone(), vec![b_uri.clone()]);
    ca.chunk_size = 64 * 1024;
    let mut cb = Config::new(b_uri.clone(), vec![a_uri.clone()]);
    cb.max_message_size = 64 * 1024 * 1024;
    alice.add_session(Session::new(ca, 1)).await.unwrap();
    bob.add_session(Session::new(cb, 2)).await.unwrap();

    // Bob: hash what arrives, note when the chat message comes
    let receiver = tokio::spawn(async move {
        let mut h = Sha256::new();
        let mut got = 0u64;
        let mut chat_at = None;
        let mut chat = None;
        loop {
            match bob.next_event().await {
                Some(ConnEvent::Session { event, .. }) => match event {
                    SessionEvent::MessageData { offset, data, .. } => {
                        assert_eq!(offset, got, "in order");
                        got += data.len() as u64;
                        h.update(&data);
                    }
                    SessionEvent::Message {
                        body, content_type, ..
                    } => {
                        assert_eq!(content_type, "text/plain");
                        chat = Some(body);
                        chat_at = Some(got);
                    }
                    SessionEvent::MessageComplete { size, .. } => {
                        assert_eq!(size, FILE as u64);
                        break;
                    }
                    other => panic!("bob: {other:?}"),
                },
                other => panic!("bob: {other:?}"),
            }
        }
        bob.close().await;
        (h.finalize().to_vec(), got, chat, chat_at)
    });

    let mut sent = Sha256::new();
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let id = alice
        .send(
            "alice1234",
            Outgoing::stream("application/octet-stream", Some(FILE as u64)),
        )
        .await
        .unwrap()
        .unwrap();
    let mut pushed = 0;
    while pushed < FILE {
        let n = PIECE.min(FILE - pushed);
        let p = piece(&mut state, n);
        sent.update(&p);
        alice
            .push_body("alice1234", &id, Bytes::from(p))
            .await
            .unwrap();
        pushed += n;
        if pushed == 10 * 1024 * 1024 {
            alice
                .send(
                    "alice1234",
                    Outgoing::new("text/plain", "are you getting the file?"),
                )
                .await
                .unwrap()
                .unwrap();
        }
    }
    alice.finish("alice1234", &id).await.unwrap();

    let (hash, got, chat, chat_at) = receiver.await.unwrap();
    assert_eq!(got, FILE as u64);
    assert_eq!(hash, sent.finalize().to_vec(), "file arrived intact");
    assert_eq!(chat.as_deref(), Some(&b"are you getting the file?"[..]));
    let chat_at = chat_at.unwrap();
    assert!(
        chat_at > 0 && chat_at < FILE as u64,
        "the chat message interrupted the file (after {chat_at} bytes)"
    );
    let mut alice = alice;
    alice.close().await;
    // Alice saw no failure: the first event she gets is the clean close
    match alice.next_event().await {
        Some(ConnEvent::Closed(why)) => assert!(why.is_none(), "alice closed with {why:?}"),
        other => panic!("alice: {other:?}"),
    }
    if let Some(hwm) = vm_hwm_kib() {
        eprintln!(
            "VmHWM after a {} MiB transfer: {} KiB; chat arrived after {chat_at} file bytes",
            FILE >> 20,
            hwm
        );
        assert!(
            hwm < 40 * 1024,
            "peak memory {hwm} KiB: the file was buffered"
        );
    }
}

/// A frame for a session-id that is not on the connection gets 481 (RFC 4975 §8.5, §7.3).
#[tokio::test]
async fn unknown_session_gets_481() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accept = tokio::spawn(async move { listener.accept().await.unwrap().0 });
    let mut raw = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut bob = MsrpConnection::spawn(accept.await.unwrap(), ConnConfig::default());
    let b_uri = UriBuf::parse("msrp://127.0.0.1:2855/known;tcp").unwrap();
    let a_uri = UriBuf::parse("msrp://127.0.0.1:1/alice;tcp").unwrap();
    bob.add_session(Session::new(Config::new(b_uri, vec![a_uri]), 3))
        .await
        .unwrap();
    raw.write_all(b"MSRP t0ab1234 SEND\r\nTo-Path: msrp://127.0.0.1:2855/other;tcp\r\nFrom-Path: msrp://127.0.0.1:1/alice;tcp\r\nMessage-ID: m1234567\r\nByte-Range: 1-2/2\r\nContent-Type: text/plain\r\n\r\nhi\r\n-------t0ab1234$\r\n").await.unwrap();
    let mut buf = vec![0u8; 512];
    let mut got = Vec::new();
    while !got.ends_with(b"-------t0ab1234$\r\n") {
        let n = raw.read(&mut buf).await.unwrap();
        assert!(n > 0);
        got.extend_from_slice(&buf[..n]);
    }
    let (f, _) = ims_msrp::parse_frame(&got).unwrap();
    assert_eq!(f.head.status(), Some(481));
    assert_eq!(
        f.head.header("To-Path"),
        Some("msrp://127.0.0.1:1/alice;tcp")
    );
    match bob.next_event().await {
        Some(ConnEvent::UnknownSession { session_id }) => assert_eq!(session_id, "other"),
        other => panic!("{other:?}"),
    }
}
