//! The session core against RFC 4975 §7 behaviour: two sessions on a virtual clock, plus the
//! shared vectors replayed into a receiving session.

// The virtual clock starts at an arbitrary real instant; nothing here waits on it.
#![allow(clippy::disallowed_methods)]

use bytes::Bytes;
use ims_msrp::headers::FailureReport;
use ims_msrp::session::{Config, Outgoing, Session, SessionEvent, Transmit};
use ims_msrp::{parse_frame, Event, Flag, Frame, Framer, Limits, UriBuf};
use std::path::PathBuf;
use std::time::{Duration, Instant};

const ALICE: &str = "msrp://alice.example.com:7777/iau39soe2843z;tcp";
const BOB: &str = "msrp://bob.example.com:8888/9di4eae923wzd;tcp";

fn uri(s: &str) -> UriBuf {
    UriBuf::parse(s).unwrap()
}

fn pair() -> (Session, Session) {
    let a = Session::new(Config::new(uri(ALICE), vec![uri(BOB)]), 1);
    let b = Session::new(Config::new(uri(BOB), vec![uri(ALICE)]), 2);
    (a, b)
}

fn frames(ts: &[Transmit]) -> Vec<Frame> {
    let mut f = Framer::new(Limits {
        stream_threshold: usize::MAX,
        ..Limits::default()
    });
    for t in ts {
        f.push(&t.to_vec());
    }
    let mut out = Vec::new();
    while let Some(Event::Frame(fr)) = f.poll().unwrap() {
        out.push(fr);
    }
    out
}

fn drain(s: &mut Session, now: Instant) -> Vec<Transmit> {
    std::iter::from_fn(|| s.poll_transmit(now)).collect()
}

fn events(s: &mut Session) -> Vec<SessionEvent> {
    std::iter::from_fn(|| s.poll_event()).collect()
}

/// Moves everything `from` has to send into `to`, through a framer, one byte at a time.
fn pump(from: &mut Session, to: &mut Session, now: Instant) -> Vec<Frame> {
    let ts = drain(from, now);
    let mut f = Framer::new(Limits {
        stream_threshold: 64,
        ..Limits::default()
    });
    for t in &ts {
        for b in t.to_vec().chunks(1) {
            f.push(b);
            while let Some(ev) = f.poll().unwrap() {
                to.handle_event(now, ev);
            }
        }
    }
    frames(&ts)
}

/// RFC 4975 §7.1 and §7.2: a SEND, its 200 with To-Path = the request's From-Path and From-Path
/// = the responder's URI, the same transaction id.
#[test]
fn send_and_200() {
    let (mut a, mut b) = pair();
    let now = Instant::now();
    let id = a.send(Outgoing::new("text/plain", "Hey Bob, are you there?"));
    let sent = pump(&mut a, &mut b, now);
    assert_eq!(sent.len(), 1);
    let h = &sent[0].head;
    assert_eq!(h.message_id(), Some(id.as_str()));
    assert_eq!(h.header("Byte-Range"), Some("1-23/23"));
    assert_eq!(sent[0].flag, Flag::End);
    sent[0].check().unwrap();
    assert_eq!(a.outstanding(), 1);
    let ev = events(&mut b);
    assert_eq!(
        ev,
        [SessionEvent::Message {
            message_id: id.clone(),
            content_type: "text/plain".into(),
            body: Bytes::from_static(b"Hey Bob, are you there?")
        }]
    );
    let resp = pump(&mut b, &mut a, now);
    assert_eq!(resp.len(), 1);
    let r = &resp[0].head;
    assert_eq!(r.status(), Some(200));
    assert_eq!(r.comment(), Some("OK"));
    assert_eq!(r.transaction_id(), h.transaction_id());
    assert_eq!(r.header("To-Path"), Some(ALICE));
    assert_eq!(r.header("From-Path"), Some(BOB));
    assert_eq!(a.outstanding(), 0);
    assert!(events(&mut a).is_empty());
    assert_eq!(a.poll_timeout(), None);
}

/// Chunking (RFC 4975 §5.1, §7.1): 43 bytes in 16-byte chunks with Byte-Ranges and flags, and a
/// success REPORT (§7.1.2) covering the whole message.
#[test]
fn chunking_and_success_report() {
    let (mut a, mut b) = pair();
    let mut cfg = a.config().clone();
    cfg.chunk_size = 16;
    a = Session::new(cfg, 1);
    let now = Instant::now();
    let mut m = Outgoing::new("text/plain", "The quick brown fox jumps over the lazy dog");
    m.success_report = true;
    let id = a.send(m);
    let sent = pump(&mut a, &mut b, now);
    let ranges: Vec<_> = sent
        .iter()
        .map(|f| f.head.header("Byte-Range").unwrap().to_owned())
        .collect();
    assert_eq!(ranges, ["1-16/43", "17-32/43", "33-43/43"]);
    let flags: Vec<_> = sent.iter().map(|f| f.flag).collect();
    assert_eq!(flags, [Flag::Continue, Flag::Continue, Flag::End]);
    let tids: std::collections::HashSet<_> = sent
        .iter()
        .map(|f| f.head.transaction_id().to_owned())
        .collect();
    assert_eq!(tids.len(), 3, "transaction ids are unique");
    for f in &sent {
        assert_eq!(f.head.header("Success-Report"), Some("yes"));
        f.check().unwrap();
    }
    let ev = events(&mut b);
    assert!(
        matches!(&ev[0], SessionEvent::Message { body, .. } if &body[..] == b"The quick brown fox jumps over the lazy dog")
    );
    let back = pump(&mut b, &mut a, now);
    // three 200s, then the REPORT
    assert_eq!(
        back.iter().filter(|f| f.head.status() == Some(200)).count(),
        3
    );
    let rep = back.last().unwrap();
    assert_eq!(rep.head.method().unwrap().as_str(), "REPORT");
    assert_eq!(rep.head.header("Status"), Some("000 200 OK"));
    assert_eq!(rep.head.header("Byte-Range"), Some("1-43/43"));
    assert_eq!(rep.head.header("To-Path"), Some(ALICE));
    rep.check().unwrap();
    let ev = events(&mut a);
    assert_eq!(ev.len(), 1);
    assert!(
        matches!(&ev[0], SessionEvent::Report { message_id, status: 200, byte_range: Some(br) } if *message_id == id && br.end == Some(43))
    );
    // REPORTs are never answered
    assert!(drain(&mut a, now).is_empty());
}

/// Interruption (RFC 4975 §5.1): a chat message queued while a large message is being sent goes
/// out at the next chunk boundary; the large one resumes with the next Byte-Range.
#[test]
fn chat_interrupts_large_message() {
    let (a0, mut b) = pair();
    let mut cfg = a0.config().clone();
    cfg.chunk_size = 1000;
    let mut a = Session::new(cfg, 1);
    let now = Instant::now();
    let big: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
    let file = a.send(Outgoing::new("application/octet-stream", big.clone()));
    let first = a.poll_transmit(now).unwrap();
    let chat = a.send(Outgoing::new("text/plain", "hi"));
    let mut rest = drain(&mut a, now);
    rest.insert(0, first);
    let fs = frames(&rest);
    assert_eq!(fs.len(), 11);
    assert_eq!(fs[0].head.header("Byte-Range"), Some("1-1000/10000"));
    assert_eq!(fs[0].flag, Flag::Continue);
    assert_eq!(fs[1].head.message_id(), Some(chat.as_str()));
    assert_eq!(fs[2].head.header("Byte-Range"), Some("1001-2000/10000"));
    assert_eq!(fs[10].head.header("Byte-Range"), Some("9001-10000/10000"));
    assert_eq!(fs[10].flag, Flag::End);
    for f in &fs {
        b.handle_frame(now, f.clone());
    }
    let ev = events(&mut b);
    assert_eq!(ev.len(), 2);
    assert!(
        matches!(&ev[0], SessionEvent::Message { message_id, body, .. } if *message_id == chat && &body[..] == b"hi")
    );
    assert!(
        matches!(&ev[1], SessionEvent::Message { message_id, body, .. } if *message_id == file && body[..] == big[..])
    );
}

/// Streamed sending: body pushed in pieces, total unknown (`*`) until the last chunk.
#[test]
fn streamed_body_unknown_total() {
    let (a0, mut b) = pair();
    let mut cfg = a0.config().clone();
    cfg.chunk_size = 10;
    let mut a = Session::new(cfg, 1);
    let now = Instant::now();
    let id = a.send(Outgoing::stream("text/plain", None));
    assert!(a.push_body(&id, Bytes::from_static(b"0123456789abc")));
    let t1 = drain(&mut a, now);
    assert_eq!(t1.len(), 1, "only a full chunk goes before the end");
    assert!(a.push_body(&id, Bytes::from_static(b"defg")));
    a.finish(&id);
    assert!(!a.push_body(&id, Bytes::from_static(b"x")));
    let mut all = t1;
    all.extend(drain(&mut a, now));
    let fs = frames(&all);
    assert_eq!(fs[0].head.header("Byte-Range"), Some("1-10/*"));
    assert_eq!(fs[1].head.header("Byte-Range"), Some("11-17/17"));
    for f in fs {
        b.handle_frame(now, f);
    }
    assert!(
        matches!(&events(&mut b)[0], SessionEvent::Message { body, .. } if &body[..] == b"0123456789abcdefg")
    );
}

fn vec_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/vectors/msrp")
}

fn vector(name: &str) -> Frame {
    let d = std::fs::read(vec_dir().join(name)).unwrap();
    parse_frame(&d).unwrap().0
}

fn bob() -> Session {
    Session::new(Config::new(uri(BOB), vec![uri(ALICE)]), 9)
}

/// The three chunk vectors in every order reassemble to the sentence (first total `*`).
#[test]
fn vectors_reassemble_in_any_order() {
    let chunks = ["chunk1_of_3.msrp", "chunk2_of_3.msrp", "chunk3_of_3.msrp"];
    let orders = [
        [0, 1, 2],
        [0, 2, 1],
        [1, 0, 2],
        [1, 2, 0],
        [2, 0, 1],
        [2, 1, 0],
    ];
    let now = Instant::now();
    for o in orders {
        let mut b = bob();
        for i in o {
            b.handle_frame(now, vector(chunks[i]));
        }
        let ev = events(&mut b);
        assert_eq!(ev.len(), 1, "{o:?}: {ev:?}");
        assert!(
            matches!(&ev[0], SessionEvent::Message { message_id, body, .. }
            if message_id == "chk-4s9kd7Jx" && &body[..] == b"The quick brown fox jumps over the lazy dog"),
            "{o:?}"
        );
        let resp = frames(&drain(&mut b, now));
        assert_eq!(resp.len(), 3);
        assert!(resp.iter().all(|r| r.head.status() == Some(200)));
    }
}

/// `#` aborts the message: the application hears how much arrived.
#[test]
fn aborted_vector() {
    let now = Instant::now();
    let mut b = bob();
    b.handle_frame(now, vector("chunk_aborted.msrp"));
    assert_eq!(
        events(&mut b),
        [SessionEvent::MessageAborted {
            message_id: "abrt-9f8e7d".into(),
            received: 26
        }]
    );
}

/// Overlapping and duplicate chunks deliver each byte once.
#[test]
fn overlaps_and_duplicates() {
    let now = Instant::now();
    let mut b = bob();
    let msg = b"abcdefghijklmnopqrstuvwxyz";
    let send = |tid: &str, s: usize, e: usize, flag: Flag| {
        let f = ims_msrp::FrameBuilder::request(tid, "SEND")
            .to_path(BOB)
            .from_path(ALICE)
            .header("Message-ID", "ovl12345")
            .header("Byte-Range", &format!("{s}-{e}/26"))
            .body("text/plain", Bytes::copy_from_slice(&msg[s - 1..e]))
            .flag(flag)
            .to_bytes();
        parse_frame(&f).unwrap().0
    };
    b.handle_frame(now, send("t0000001", 10, 20, Flag::Continue));
    b.handle_frame(now, send("t0000002", 1, 12, Flag::Continue));
    b.handle_frame(now, send("t0000003", 5, 15, Flag::Continue));
    b.handle_frame(now, send("t0000004", 1, 12, Flag::Continue));
    assert!(events(&mut b).is_empty());
    b.handle_frame(now, send("t0000005", 18, 26, Flag::End));
    let ev = events(&mut b);
    assert!(
        matches!(&ev[0], SessionEvent::Message { body, .. } if &body[..] == msg),
        "{ev:?}"
    );
}

fn statuses(b: &mut Session, now: Instant) -> Vec<u16> {
    // responses only (send_single asks for a success REPORT too)
    frames(&drain(b, now))
        .iter()
        .filter_map(|f| f.head.status())
        .collect()
}

/// The answers of RFC 4975 §7.3 / §10: 400, 481, 403, 415, 413, 501; none to a REPORT or with
/// `Failure-Report: no`; no 200 with `Failure-Report: partial`.
#[test]
fn receiver_answers() {
    let now = Instant::now();
    // 400 for each malformed vector that can be answered
    for v in [
        "bad_byte_range_negative.msrp",
        "bad_header_no_colon.msrp",
        "bad_tid_bad_chars.msrp",
        "bad_body_without_content_type.msrp",
        "bad_byte_range_zero_start.msrp",
    ] {
        let mut b = bob();
        b.handle_frame(now, vector(v));
        assert_eq!(statuses(&mut b, now), [400], "{v}");
        assert!(matches!(
            events(&mut b)[0],
            SessionEvent::Rejected { status: 400, .. }
        ));
    }
    // a response is never answered
    let mut b = bob();
    b.handle_frame(now, vector("bad_response_with_body.msrp"));
    assert!(drain(&mut b, now).is_empty());
    // 501 for an unknown method
    let mut b = bob();
    b.handle_frame(now, vector("ext_method.msrp"));
    assert_eq!(statuses(&mut b, now), [501]);
    // 481: not our session
    let mut b = Session::new(
        Config::new(
            uri("msrp://bob.example.com:8888/other;tcp"),
            vec![uri(ALICE)],
        ),
        1,
    );
    b.handle_frame(now, vector("send_single.msrp"));
    assert_eq!(statuses(&mut b, now), [481]);
    // 403: From-Path is not our peer
    let mut b = Session::new(
        Config::new(uri(BOB), vec![uri("msrp://mallory.example.com:1/x;tcp")]),
        1,
    );
    b.handle_frame(now, vector("send_single.msrp"));
    assert_eq!(statuses(&mut b, now), [403]);
    // 415: type not accepted
    let mut cfg = Config::new(uri(BOB), vec![uri(ALICE)]);
    cfg.accept_types = vec!["text/*".into(), "message/cpim".into()];
    let mut b = Session::new(cfg.clone(), 1);
    b.handle_frame(now, vector("ft_png_chunk1.msrp"));
    assert_eq!(statuses(&mut b, now), [415]);
    b.handle_frame(now, vector("send_cpim.msrp")); // Failure-Report: partial: no 200
    assert!(drain(&mut b, now).is_empty());
    b.handle_frame(now, vector("send_single.msrp"));
    assert_eq!(statuses(&mut b, now), [200]);
    // 413: larger than max-size
    cfg.max_message_size = 100;
    cfg.accept_types = vec!["*".into()];
    let mut b = Session::new(cfg, 1);
    b.handle_frame(now, vector("ft_png_chunk1.msrp")); // 1-40/101
    assert_eq!(statuses(&mut b, now), [413]);
    // REPORT (addressed to Alice): never answered, reported to the application
    let (mut b, _) = pair();
    b.handle_frame(now, vector("report_200.msrp"));
    assert!(drain(&mut b, now).is_empty());
    assert!(matches!(
        &events(&mut b)[0],
        SessionEvent::Report { status: 200, .. }
    ));
    // Failure-Report: no -> no response even for an error
    let raw = std::fs::read(vec_dir().join("ext_method.msrp")).unwrap();
    let text = String::from_utf8(raw)
        .unwrap()
        .replace("Use-Nickname", "Failure-Report: no\r\nUse-Nickname");
    let mut b = bob();
    b.handle_frame(now, parse_frame(text.as_bytes()).unwrap().0);
    assert!(drain(&mut b, now).is_empty());
    // a bodiless SEND (connection bind) is answered and delivers nothing
    let mut b = bob();
    b.handle_frame(now, vector("send_empty.msrp"));
    assert_eq!(statuses(&mut b, now), [200]);
    assert!(events(&mut b)
        .iter()
        .all(|e| !matches!(e, SessionEvent::Message { .. })));
}

/// RFC 4975 §7.1.1: no response within 30 s fails the message (as a 408), not a moment before.
#[test]
fn transaction_timeout() {
    let (mut a, _) = pair();
    let t0 = Instant::now();
    let id = a.send(Outgoing::new("text/plain", "x"));
    let _ = drain(&mut a, t0);
    assert_eq!(a.poll_timeout(), Some(t0 + Duration::from_secs(30)));
    a.handle_timeout(t0 + Duration::from_millis(29_999));
    assert!(events(&mut a).is_empty());
    a.handle_timeout(t0 + Duration::from_secs(30));
    assert_eq!(
        events(&mut a),
        [SessionEvent::SendFailed {
            message_id: id,
            status: 408
        }]
    );
    assert_eq!(a.poll_timeout(), None);
    // Failure-Report: partial / no: no timer
    let mut m = Outgoing::new("text/plain", "y");
    m.failure_report = FailureReport::Partial;
    a.send(m);
    let fs = frames(&drain(&mut a, t0));
    assert_eq!(fs[0].head.header("Failure-Report"), Some("partial"));
    assert_eq!(a.poll_timeout(), None);
}

/// A 413 makes the sender stop the message with `#` (RFC 4975 §10.5 / §7.1.1).
#[test]
fn too_large_aborts_sending() {
    let (a0, _) = pair();
    let mut cfg = a0.config().clone();
    cfg.chunk_size = 10;
    let mut a = Session::new(cfg, 1);
    let mut cfgb = Config::new(uri(BOB), vec![uri(ALICE)]);
    cfgb.max_message_size = 50;
    let mut b = Session::new(cfgb, 2);
    let now = Instant::now();
    let id = a.send(Outgoing::new("text/plain", vec![b'z'; 100]));
    let first = a.poll_transmit(now).unwrap();
    b.handle_frame(now, frames(&[first])[0].clone());
    let resp = frames(&drain(&mut b, now));
    assert_eq!(resp[0].head.status(), Some(413));
    a.handle_frame(now, resp[0].clone());
    assert_eq!(
        events(&mut a),
        [SessionEvent::SendFailed {
            message_id: id,
            status: 413
        }]
    );
    let rest = frames(&drain(&mut a, now));
    assert_eq!(rest.len(), 1);
    assert_eq!(rest[0].flag, Flag::Abort);
    assert_eq!(rest[0].head.header("Byte-Range"), Some("11-10/100"));
}

/// Large messages are delivered as in-order parts, never held whole.
#[test]
fn large_message_streams_to_application() {
    let (a0, _) = pair();
    let mut cfg = a0.config().clone();
    cfg.chunk_size = 4096;
    let mut a = Session::new(cfg, 1);
    let mut cb = Config::new(uri(BOB), vec![uri(ALICE)]);
    cb.whole_message_max = 10_000;
    let mut b = Session::new(cb, 2);
    let now = Instant::now();
    let big: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 256) as u8).collect();
    a.send(Outgoing::new("application/octet-stream", big.clone()));
    pump(&mut a, &mut b, now);
    let mut got = Vec::new();
    let mut complete = false;
    for e in events(&mut b) {
        match e {
            SessionEvent::MessageData { offset, data, .. } => {
                assert_eq!(offset as usize, got.len());
                assert!(data.len() <= 10_000);
                got.extend_from_slice(&data);
            }
            SessionEvent::MessageComplete { size, .. } => {
                assert_eq!(size, 100_000);
                complete = true;
            }
            other => panic!("{other:?}"),
        }
    }
    assert!(complete);
    assert_eq!(got, big);
}

/// RFC 4975 §11.1 (basic IM session): Bob's session answers Alice's SEND with exactly the 200
/// the RFC shows (its Byte-Range made consistent with the 14-byte body).
#[test]
fn rfc4975_basic_im_session_bytes() {
    let alice = "msrp://alicepc.example.com:7777/iau39soe2843z;tcp";
    let send = "MSRP d93kswow SEND\r\n\
        To-Path: msrp://bob.example.com:8888/9di4eae923wzd;tcp\r\n\
        From-Path: msrp://alicepc.example.com:7777/iau39soe2843z;tcp\r\n\
        Message-ID: 12339sdqwer\r\n\
        Byte-Range: 1-14/14\r\n\
        Content-Type: text/plain\r\n\
        \r\n\
        Hi, I'm Alice!\r\n\
        -------d93kswow$\r\n";
    let ok = "MSRP d93kswow 200 OK\r\n\
        To-Path: msrp://alicepc.example.com:7777/iau39soe2843z;tcp\r\n\
        From-Path: msrp://bob.example.com:8888/9di4eae923wzd;tcp\r\n\
        -------d93kswow$\r\n";
    let now = Instant::now();
    let mut b = Session::new(Config::new(uri(BOB), vec![uri(alice)]), 5);
    b.handle_frame(now, parse_frame(send.as_bytes()).unwrap().0);
    let out: Vec<u8> = drain(&mut b, now).iter().flat_map(|t| t.to_vec()).collect();
    assert_eq!(String::from_utf8(out).unwrap(), ok);
    assert!(
        matches!(&events(&mut b)[..], [SessionEvent::Message { message_id, body, .. }]
        if message_id == "12339sdqwer" && &body[..] == b"Hi, I'm Alice!")
    );
}
