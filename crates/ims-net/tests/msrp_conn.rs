//! `MsrpConnection` policies over 127.0.0.1: sending never waits on the application's own
//! events; bounded outgoing buffering (`send` waits, `try_send` says Full); a session added
//! after the peer's first frame still gets it; several sessions on one TCP connection
//! (RFC 4975 §8.5) with a chunk of one interrupted mid-body for the other.

use bytes::Bytes;
use ims_msrp::session::{Config, Outgoing, Session, SessionEvent};
use ims_msrp::UriBuf;
use ims_net::msrp::{ConnConfig, ConnEvent, MsrpConnection, TrySendError};
use sha2::{Digest, Sha256};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::timeout;

fn uri(s: &str) -> UriBuf {
    UriBuf::parse(s).unwrap()
}

async fn tcp_pair() -> (TcpStream, TcpStream) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let (a, b) = tokio::join!(TcpStream::connect(addr), l.accept());
    let a = a.unwrap();
    a.set_nodelay(true).unwrap();
    (a, b.unwrap().0)
}

fn session(local: &str, remote: &str, seed: u64) -> Session {
    let mut c = Config::new(uri(local), vec![uri(remote)]);
    c.max_message_size = 64 << 20;
    Session::new(c, seed)
}

const A1: &str = "msrp://127.0.0.1:7201/a1sess;tcp";
const A2: &str = "msrp://127.0.0.1:7201/a2sess;tcp";
const B1: &str = "msrp://127.0.0.1:7202/b1sess;tcp";
const B2: &str = "msrp://127.0.0.1:7202/b2sess;tcp";

/// Alice sends 5,000 messages asking for success REPORTs with room for only 4 events and does
/// not read one until every `send` has returned: 5,000 REPORTs pile up on her side. `send` must
/// not wait for her to read them (it used to: the task blocked on the full event channel and
/// stopped taking commands). Then she reads them all, in order, none lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_without_reading_events_never_blocks() {
    let (sa, sb) = tcp_pair().await;
    let small = ConnConfig {
        event_capacity: 4,
        ..ConnConfig::default()
    };
    let mut alice = MsrpConnection::spawn_with_sessions(sa, small, vec![session(A1, B1, 1)]);
    let mut bob =
        MsrpConnection::spawn_with_sessions(sb, ConnConfig::default(), vec![session(B1, A1, 2)]);
    const N: usize = 5000;
    let reader = tokio::spawn(async move {
        let mut got = 0;
        while got < N {
            match bob.next_event().await {
                Some(ConnEvent::Session {
                    event: SessionEvent::Message { .. },
                    ..
                }) => got += 1,
                other => panic!("bob: {other:?}"),
            }
        }
        bob
    });
    let mut ids = Vec::with_capacity(N);
    let sends = async {
        for i in 0..N {
            let mut m = Outgoing::new("text/plain", format!("message {i}"));
            m.success_report = true;
            ids.push(alice.send("a1sess", m).await.unwrap().unwrap());
        }
    };
    timeout(Duration::from_secs(60), sends)
        .await
        .expect("send blocked while events were not read");
    let _bob = timeout(Duration::from_secs(60), reader)
        .await
        .expect("bob got everything")
        .unwrap();
    for (i, id) in ids.iter().enumerate() {
        match timeout(Duration::from_secs(30), alice.next_event()).await {
            Ok(Some(ConnEvent::Session {
                session_id,
                event:
                    SessionEvent::Report {
                        message_id, status, ..
                    },
            })) => {
                assert_eq!(session_id, "a1sess");
                assert_eq!(&message_id, id, "report {i} in order");
                assert_eq!(status, 200);
            }
            other => panic!("alice event {i}: {other:?}"),
        }
    }
}

/// The chat echo pattern (what msrp_chat needed a 2^20-deep event channel for): Alice sends
/// 1,000 messages without reading; Bob echoes each one; then Alice reads 1,000 echoes in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echo_peer_with_a_small_event_channel() {
    let (sa, sb) = tcp_pair().await;
    let small = ConnConfig {
        event_capacity: 4,
        ..ConnConfig::default()
    };
    let mut alice =
        MsrpConnection::spawn_with_sessions(sa, small.clone(), vec![session(A1, B1, 1)]);
    let mut bob = MsrpConnection::spawn_with_sessions(sb, small, vec![session(B1, A1, 2)]);
    const N: usize = 1000;
    let echo = tokio::spawn(async move {
        let mut n = 0;
        while n < N {
            match bob.next_event().await {
                Some(ConnEvent::Session {
                    event: SessionEvent::Message { body, .. },
                    ..
                }) => {
                    bob.send("b1sess", Outgoing::new("text/plain", body))
                        .await
                        .unwrap()
                        .unwrap();
                    n += 1;
                }
                other => panic!("bob: {other:?}"),
            }
        }
        bob
    });
    timeout(Duration::from_secs(60), async {
        for i in 0..N {
            alice
                .send("a1sess", Outgoing::new("text/plain", format!("echo {i}")))
                .await
                .unwrap()
                .unwrap();
        }
    })
    .await
    .expect("alice's sends completed without reading events");
    for i in 0..N {
        match timeout(Duration::from_secs(30), alice.next_event()).await {
            Ok(Some(ConnEvent::Session {
                event: SessionEvent::Message { body, .. },
                ..
            })) => assert_eq!(body, format!("echo {i}").as_bytes()),
            other => panic!("alice {i}: {other:?}"),
        }
    }
    echo.await.unwrap();
}

/// Bounded outgoing buffering: toward a peer that never reads, `try_send` queues until
/// `high_water` bytes wait and then gives the message back (`Full`); `send` waits; once the
/// peer reads, the waiting `send` completes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outgoing_is_bounded_try_send_full_send_waits() {
    let (sa, mut raw) = tcp_pair().await;
    let cfg = ConnConfig {
        high_water: 256 * 1024,
        ..ConnConfig::default()
    };
    let mut c = Config::new(uri(A1), vec![uri(B1)]);
    c.chunk_size = 64 * 1024;
    let alice = MsrpConnection::spawn_with_sessions(sa, cfg, vec![Session::new(c, 1)]);
    let body = Bytes::from(vec![b'x'; 64 * 1024]);
    let mut queued = 0usize;
    // fill until Full, and again until it stays full (the kernel's socket buffers grow at
    // first)
    let full = loop {
        let used = loop {
            match alice
                .try_send(
                    "a1sess",
                    Outgoing::new("application/octet-stream", body.clone()),
                )
                .await
            {
                Ok(Some(_)) => queued += body.len(),
                Ok(None) => panic!("no session"),
                Err(TrySendError::Full(m, used)) => {
                    assert_eq!(m.body.len(), body.len(), "the message comes back");
                    break used;
                }
                Err(TrySendError::Closed) => panic!("closed"),
            }
            assert!(queued < 256 << 20, "never full: unbounded buffering");
            tokio::task::yield_now().await;
        };
        assert!(used >= 256 * 1024);
        tokio::time::sleep(Duration::from_millis(200)).await;
        if alice.queued_bytes() >= 256 * 1024 {
            break alice.queued_bytes();
        }
    };
    eprintln!(
        "try_send Full after {} KiB accepted ({} KiB waiting; the rest in socket buffers)",
        queued >> 10,
        full >> 10
    );
    assert!(matches!(
        alice.try_push_body("a1sess", "none", Bytes::from_static(b"x")),
        Err(TrySendError::Full(..))
    ));
    // `send` waits while the peer does not read
    let waiting = alice.send("a1sess", Outgoing::new("text/plain", "after the jam"));
    tokio::pin!(waiting);
    assert!(
        timeout(Duration::from_millis(300), &mut waiting)
            .await
            .is_err(),
        "send returned while {full} bytes were waiting"
    );
    // the peer reads: room comes back and the send completes
    let drain = tokio::spawn(async move {
        let mut buf = vec![0u8; 1 << 16];
        let mut total = 0usize;
        loop {
            match raw.read(&mut buf).await {
                Ok(0) | Err(_) => return total,
                Ok(n) => total += n,
            }
        }
    });
    let id = timeout(Duration::from_secs(30), waiting)
        .await
        .expect("send completes once the peer reads")
        .unwrap();
    assert!(id.is_some());
    assert!(alice.queued_bytes() < 256 * 1024 + 64 * 1024);
    alice.close().await;
    let total = timeout(Duration::from_secs(30), drain)
        .await
        .unwrap()
        .unwrap();
    assert!(total >= queued, "{total} bytes written for {queued} queued");
}

const SEND_TO_B1: &[u8] = b"MSRP t0ab1234 SEND\r\nTo-Path: msrp://127.0.0.1:7202/b1sess;tcp\r\nFrom-Path: msrp://127.0.0.1:7201/a1sess;tcp\r\nMessage-ID: m1234567\r\nByte-Range: 1-5/5\r\nContent-Type: text/plain\r\n\r\nfirst\r\n-------t0ab1234$\r\n";

async fn read_frame(raw: &mut TcpStream) -> ims_msrp::Frame {
    let mut got = Vec::new();
    let mut buf = [0u8; 512];
    loop {
        if let Ok((f, _)) = ims_msrp::parse_frame(&got) {
            return f;
        }
        let n = timeout(Duration::from_secs(10), raw.read(&mut buf))
            .await
            .expect("a frame in time")
            .unwrap();
        assert!(n > 0, "closed");
        got.extend_from_slice(&buf[..n]);
    }
}

/// The race of `spawn` then `add_session`: the peer's first SEND is read before the session
/// exists. It is held for the grace period and handed to the session when it is added: 200, not
/// 481, and the message is delivered.
#[tokio::test]
async fn session_added_after_the_first_frame_gets_it() {
    let (mut raw, sb) = tcp_pair().await;
    let mut bob = MsrpConnection::spawn(sb, ConnConfig::default());
    raw.write_all(SEND_TO_B1).await.unwrap();
    // let the connection read it before the session exists
    tokio::time::sleep(Duration::from_millis(100)).await;
    bob.add_session(session(B1, A1, 2)).await.unwrap();
    let f = read_frame(&mut raw).await;
    assert_eq!(f.head.status(), Some(200), "{:?}", f.head);
    assert_eq!(f.head.transaction_id(), "t0ab1234");
    match timeout(Duration::from_secs(5), bob.next_event()).await {
        Ok(Some(ConnEvent::Session {
            session_id,
            event: SessionEvent::Message { body, .. },
        })) => {
            assert_eq!(session_id, "b1sess");
            assert_eq!(&body[..], b"first");
        }
        other => panic!("{other:?}"),
    }
}

/// With the grace off, the same order gives 481: the test above proves the hold, not luck.
/// And `spawn_with_sessions` needs no grace at all.
#[tokio::test]
async fn without_grace_481_and_with_sessions_registered_200() {
    let (mut raw, sb) = tcp_pair().await;
    let cfg = ConnConfig {
        unknown_session_grace: Duration::ZERO,
        ..ConnConfig::default()
    };
    let mut bob = MsrpConnection::spawn(sb, cfg.clone());
    raw.write_all(SEND_TO_B1).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    bob.add_session(session(B1, A1, 2)).await.unwrap();
    assert_eq!(read_frame(&mut raw).await.head.status(), Some(481));
    assert!(matches!(
        bob.next_event().await,
        Some(ConnEvent::UnknownSession { session_id }) if session_id == "b1sess"
    ));

    let (mut raw, sb) = tcp_pair().await;
    raw.write_all(SEND_TO_B1).await.unwrap();
    let mut bob = MsrpConnection::spawn_with_sessions(sb, cfg, vec![session(B1, A1, 2)]);
    assert_eq!(read_frame(&mut raw).await.head.status(), Some(200));
    assert!(matches!(
        bob.next_event().await,
        Some(ConnEvent::Session {
            event: SessionEvent::Message { .. },
            ..
        })
    ));
}

/// Held frames are bounded: past `unknown_session_buffer` bytes the frames of that session are
/// answered 481 at once, without waiting for the grace period.
#[tokio::test]
async fn held_frames_are_bounded() {
    let (mut raw, sb) = tcp_pair().await;
    let cfg = ConnConfig {
        unknown_session_grace: Duration::from_secs(60),
        unknown_session_buffer: 1024,
        ..ConnConfig::default()
    };
    let mut bob = MsrpConnection::spawn(sb, cfg);
    let big = format!(
        "MSRP t1big567 SEND\r\nTo-Path: {B1}\r\nFrom-Path: {A1}\r\nMessage-ID: m7654321\r\nByte-Range: 1-4000/4000\r\nContent-Type: text/plain\r\n\r\n{}\r\n-------t1big567$\r\n",
        "z".repeat(4000)
    );
    raw.write_all(SEND_TO_B1).await.unwrap();
    raw.write_all(big.as_bytes()).await.unwrap();
    let t0 = tokio::time::Instant::now();
    let f1 = read_frame(&mut raw).await;
    assert_eq!(f1.head.status(), Some(481));
    assert!(
        t0.elapsed() < Duration::from_secs(10),
        "not after the grace"
    );
    assert!(matches!(
        bob.next_event().await,
        Some(ConnEvent::UnknownSession { .. })
    ));
}

/// RFC 4975 §8.5: two sessions on each side share one TCP connection; To-Path's session-id
/// selects the session. a1 sends a 3 MiB file as ONE chunk written in 64 KiB pieces; a2 and b2
/// chat meanwhile. a2's messages reach b2 while b1 has only part of the file — the file's chunk
/// was interrupted mid-body for the other session and resumed (the hash proves the resume
/// ranges). b2 is added late (after the connection started), and once it is removed a2's
/// next message fails with 481.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_sessions_share_one_connection() {
    const FILE: usize = 3 << 20;
    let (sa, sb) = tcp_pair().await;
    let mut a1 = Config::new(uri(A1), vec![uri(B1)]);
    a1.chunk_size = 4 << 20;
    a1.piece_size = Some(64 * 1024);
    let mut alice = MsrpConnection::spawn_with_sessions(
        sa,
        ConnConfig::default(),
        vec![Session::new(a1, 1), session(A2, B2, 3)],
    );
    // b1 hands the file over as it comes (MessageData), not whole at the end
    let mut b1 = Config::new(uri(B1), vec![uri(A1)]);
    b1.max_message_size = 64 << 20;
    b1.whole_message_max = 16 * 1024;
    let mut bob =
        MsrpConnection::spawn_with_sessions(sb, ConnConfig::default(), vec![Session::new(b1, 2)]);
    bob.add_session(session(B2, A2, 4)).await.unwrap();

    let mut file = Vec::with_capacity(FILE);
    let mut x = 0x2545_f491_4f6c_dd1du64;
    while file.len() < FILE {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        file.extend_from_slice(&x.to_le_bytes());
    }
    let want = Sha256::digest(&file).to_vec();
    let fid = alice
        .send(
            "a1sess",
            Outgoing::stream("application/octet-stream", Some(FILE as u64)),
        )
        .await
        .unwrap()
        .unwrap();
    // the first MiB, then the chat starts while the rest follows
    for p in file[..1 << 20].chunks(64 * 1024) {
        alice
            .push_body("a1sess", &fid, Bytes::copy_from_slice(p))
            .await
            .unwrap();
    }
    for i in 0..20 {
        alice
            .send(
                "a2sess",
                Outgoing::new("text/plain", format!("a2 says {i}")),
            )
            .await
            .unwrap()
            .unwrap();
        bob.send(
            "b2sess",
            Outgoing::new("text/plain", format!("b2 says {i}")),
        )
        .await
        .unwrap()
        .unwrap();
    }
    for p in file[1 << 20..].chunks(64 * 1024) {
        alice
            .push_body("a1sess", &fid, Bytes::copy_from_slice(p))
            .await
            .unwrap();
    }
    alice.finish("a1sess", &fid).await.unwrap();

    // Bob: the file on b1, the chat on b2, in wire order
    let mut h = Sha256::new();
    let mut got = 0u64;
    let mut chat_at = Vec::new();
    let mut complete = false;
    while !(complete && chat_at.len() == 20) {
        match timeout(Duration::from_secs(30), bob.next_event()).await {
            Ok(Some(ConnEvent::Session { session_id, event })) => match event {
                SessionEvent::MessageData { offset, data, .. } => {
                    assert_eq!(session_id, "b1sess");
                    assert_eq!(offset, got);
                    got += data.len() as u64;
                    h.update(&data);
                }
                SessionEvent::MessageComplete { size, .. } => {
                    assert_eq!(session_id, "b1sess");
                    assert_eq!(size, FILE as u64);
                    complete = true;
                }
                SessionEvent::Message { body, .. } => {
                    assert_eq!(session_id, "b2sess");
                    assert_eq!(body, format!("a2 says {}", chat_at.len()).as_bytes());
                    chat_at.push(got);
                }
                other => panic!("bob {session_id}: {other:?}"),
            },
            other => panic!("bob: {other:?}"),
        }
    }
    assert_eq!(h.finalize().to_vec(), want, "file intact");
    eprintln!("b2 got a2's chat at file offsets {chat_at:?}");
    assert!(
        chat_at.iter().any(|&o| o > 0 && o < FILE as u64),
        "a2's chat passed inside a1's single chunk: {chat_at:?}"
    );
    // Alice: b2's chat on a2, nothing else
    for i in 0..20 {
        match timeout(Duration::from_secs(30), alice.next_event()).await {
            Ok(Some(ConnEvent::Session {
                session_id,
                event: SessionEvent::Message { body, .. },
            })) => {
                assert_eq!(session_id, "a2sess");
                assert_eq!(body, format!("b2 says {i}").as_bytes());
            }
            other => panic!("alice {i}: {other:?}"),
        }
    }
    // b2 leaves; the connection stays for b1
    bob.remove_session("b2sess").await.unwrap();
    alice
        .send("a2sess", Outgoing::new("text/plain", "anyone?"))
        .await
        .unwrap()
        .unwrap();
    alice
        .send("a1sess", Outgoing::new("text/plain", "still here"))
        .await
        .unwrap()
        .unwrap();
    match timeout(Duration::from_secs(30), alice.next_event()).await {
        Ok(Some(ConnEvent::Session {
            session_id,
            event: SessionEvent::SendFailed { status, .. },
        })) => {
            assert_eq!(session_id, "a2sess");
            assert_eq!(status, 481);
        }
        other => panic!("{other:?}"),
    }
    loop {
        match timeout(Duration::from_secs(30), bob.next_event()).await {
            Ok(Some(ConnEvent::UnknownSession { session_id })) => {
                assert_eq!(session_id, "b2sess")
            }
            Ok(Some(ConnEvent::Session {
                session_id,
                event: SessionEvent::Message { body, .. },
            })) => {
                assert_eq!(session_id, "b1sess");
                assert_eq!(&body[..], b"still here");
                break;
            }
            other => panic!("{other:?}"),
        }
    }
}
