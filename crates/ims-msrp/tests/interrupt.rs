//! Sender-side interruption in the middle of a chunk (RFC 4975 §5.1, §7.1): with
//! `Config::piece_size` a chunk goes out piece by piece under `Byte-Range: n-*/total`, is ended
//! early with `+` when something else must pass (a new message, a response, `interrupt()`), and
//! resumes with the Byte-Range of the next byte; `abort()` ends it with `#`. Both ends together:
//! the receiving session reassembles byte for byte and reports the right ranges.

// The virtual clock starts at an arbitrary real instant; nothing here waits on it.
#![allow(clippy::disallowed_methods)]

use bytes::Bytes;
use ims_msrp::session::{Config, Outgoing, Session, SessionEvent, Transmit};
use ims_msrp::{Event, Flag, Frame, Framer, Limits, UriBuf};
use std::collections::HashMap;
use std::time::{Duration, Instant};

const ALICE: &str = "msrp://alice.example.com:7777/iau39soe2843z;tcp";
const BOB: &str = "msrp://bob.example.com:8888/9di4eae923wzd;tcp";

fn uri(s: &str) -> UriBuf {
    UriBuf::parse(s).unwrap()
}

fn pair(piece: usize, chunk: usize) -> (Session, Session) {
    let mut ca = Config::new(uri(ALICE), vec![uri(BOB)]);
    ca.piece_size = Some(piece);
    ca.chunk_size = chunk;
    let a = Session::new(ca, 1);
    let b = Session::new(Config::new(uri(BOB), vec![uri(ALICE)]), 2);
    (a, b)
}

/// Pseudo-random bytes (xorshift).
fn data(seed: u64, n: usize) -> Vec<u8> {
    let mut s = seed | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s as u8
        })
        .collect()
}

/// Whole frames of a byte stream (bodies whole).
fn frames(wire: &[u8]) -> Vec<Frame> {
    let mut f = Framer::new(Limits {
        stream_threshold: usize::MAX,
        ..Limits::default()
    });
    f.push(wire);
    let mut out = Vec::new();
    while let Some(ev) = f.poll().unwrap() {
        match ev {
            Event::Frame(fr) => out.push(fr),
            other => panic!("{other:?}"),
        }
    }
    assert!(f.is_idle(), "a frame was left unfinished");
    out
}

fn wire(ts: &[Transmit]) -> Vec<u8> {
    ts.iter().flat_map(|t| t.to_vec()).collect()
}

/// Feeds a byte stream to `to` through a streaming framer, `split` bytes at a time.
fn feed(to: &mut Session, bytes: &[u8], split: usize, now: Instant) {
    let mut f = Framer::new(Limits {
        stream_threshold: 64,
        ..Limits::default()
    });
    for part in bytes.chunks(split.max(1)) {
        f.push(part);
        while let Some(ev) = f.poll().unwrap() {
            to.handle_event(now, ev);
        }
    }
    assert!(f.is_idle());
}

fn drain(s: &mut Session, now: Instant) -> Vec<Transmit> {
    std::iter::from_fn(|| s.poll_transmit(now)).collect()
}

fn events(s: &mut Session) -> Vec<SessionEvent> {
    std::iter::from_fn(|| s.poll_event()).collect()
}

/// Reassembled messages by Message-ID (whole or from in-order parts), and the rest.
fn messages(ev: Vec<SessionEvent>) -> (HashMap<String, Vec<u8>>, Vec<SessionEvent>) {
    let mut m: HashMap<String, Vec<u8>> = HashMap::new();
    let mut rest = Vec::new();
    for e in ev {
        match e {
            SessionEvent::Message {
                message_id, body, ..
            } => {
                assert!(m.insert(message_id, body.to_vec()).is_none());
            }
            SessionEvent::MessageData {
                message_id,
                offset,
                data,
            } => {
                let v = m.entry(message_id).or_default();
                assert_eq!(offset, v.len() as u64, "parts in order");
                v.extend_from_slice(&data);
            }
            SessionEvent::MessageComplete { .. } => {}
            other => rest.push(other),
        }
    }
    (m, rest)
}

/// A 50,000-byte message in one 100,000-byte chunk, 1,000 bytes per piece: after 3,000 bytes a
/// chat message is queued; the chunk ends right there with `+` (range-end `*`), the chat goes,
/// and the big message resumes at byte 3,001. Bob gets both byte for byte, answers every chunk
/// 200 and reports 1-50000/50000.
#[test]
fn new_message_interrupts_a_chunk_mid_body() {
    let (mut a, mut b) = pair(1000, 100_000);
    let now = Instant::now();
    let big = data(7, 50_000);
    let mut m = Outgoing::new("application/octet-stream", big.clone());
    m.success_report = true;
    let big_id = a.send(m);
    let mut out = Vec::new();
    for _ in 0..3 {
        out.push(a.poll_transmit(now).unwrap());
        assert!(a.mid_chunk());
    }
    assert!(!out[0].head.is_empty() && out[0].tail.is_empty());
    assert!(out[1].head.is_empty() && out[1].tail.is_empty());
    assert_eq!(out.iter().map(|t| t.body.len()).sum::<usize>(), 3000);
    let chat_id = a.send(Outgoing::new("text/plain", "hi"));
    // the end-line, alone, right after the 3,000 bytes written
    let end = a.poll_transmit(now).unwrap();
    assert!(end.head.is_empty() && end.body.is_empty());
    assert!(end.tail.starts_with(b"\r\n-------") && end.tail.ends_with(b"+\r\n"));
    assert!(!a.mid_chunk());
    out.push(end);
    out.extend(drain(&mut a, now));
    let w = wire(&out);
    let f = frames(&w);
    let summary: Vec<_> = f
        .iter()
        .map(|f| {
            (
                f.head.message_id().unwrap().to_owned(),
                f.head.header("Byte-Range").unwrap().to_owned(),
                f.body.len(),
                f.flag,
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (big_id.clone(), "1-*/50000".into(), 3000, Flag::Continue),
            (chat_id.clone(), "1-2/2".into(), 2, Flag::End),
            (big_id.clone(), "3001-*/50000".into(), 47_000, Flag::End),
        ]
    );
    for fr in &f {
        fr.check().unwrap();
    }
    assert_eq!(&f[0].body[..], &big[..3000]);
    assert_eq!(a.outstanding(), 3);

    for split in [1, 7, 999, 65_536] {
        let mut bob = Session::new(b.config().clone(), 2);
        feed(&mut bob, &w, split, now);
        let (got, rest) = messages(events(&mut bob));
        assert!(rest.is_empty(), "{rest:?}");
        assert_eq!(got[&chat_id], b"hi");
        assert_eq!(got[&big_id], big, "split {split}");
    }
    feed(&mut b, &w, 1500, now);
    let _ = events(&mut b);
    let back = drain(&mut b, now);
    let bf = frames(&wire(&back));
    let statuses: Vec<_> = bf.iter().filter_map(|f| f.head.status()).collect();
    assert_eq!(statuses, [200, 200, 200]);
    let reports: Vec<_> = bf
        .iter()
        .filter(|f| f.head.is_request())
        .map(|f| f.head.header("Byte-Range").unwrap().to_owned())
        .collect();
    assert_eq!(reports, ["1-50000/50000"]);
    feed(&mut a, &wire(&back), 3, now);
    assert_eq!(a.outstanding(), 0);
    assert_eq!(
        events(&mut a),
        [SessionEvent::Report {
            message_id: big_id,
            status: 200,
            byte_range: Some(ims_msrp::headers::ByteRange {
                start: 1,
                end: Some(50_000),
                total: Some(50_000)
            })
        }]
    );
}

/// `abort()` in the middle of a chunk: `#` right after the 2,000 bytes written and nothing more;
/// Bob reports the aborted message with what arrived (RFC 4975 §7.1.2 partial delivery).
#[test]
fn abort_mid_chunk() {
    let (mut a, mut b) = pair(1000, 1 << 20);
    let now = Instant::now();
    let mut m = Outgoing::stream("application/octet-stream", None);
    m.success_report = true;
    let id = a.send(m);
    let body = data(9, 5000);
    assert!(a.push_body(&id, Bytes::from(body.clone())));
    let mut out = vec![a.poll_transmit(now).unwrap(), a.poll_transmit(now).unwrap()];
    assert!(a.mid_chunk());
    assert_eq!(a.queued_bytes(), 3000);
    a.abort(&id);
    let end = a.poll_transmit(now).unwrap();
    assert!(end.tail.ends_with(b"#\r\n") && end.body.is_empty());
    out.push(end);
    assert!(a.poll_transmit(now).is_none());
    assert!(!a.mid_chunk());
    assert_eq!(a.queued_bytes(), 0);
    assert!(!a.push_body(&id, Bytes::from_static(b"late")));
    let w = wire(&out);
    let f = frames(&w);
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].head.header("Byte-Range"), Some("1-*/*"));
    assert_eq!(f[0].flag, Flag::Abort);
    assert_eq!(&f[0].body[..], &body[..2000]);
    feed(&mut b, &w, 5, now);
    // a message delivered whole is not handed over when it is aborted: only the event says so
    let (got, rest) = messages(events(&mut b));
    assert!(got.is_empty());
    assert_eq!(
        rest,
        [SessionEvent::MessageAborted {
            message_id: id.clone(),
            received: 2000
        }]
    );
    let back = frames(&wire(&drain(&mut b, now)));
    assert_eq!(back[0].head.status(), Some(200));
    assert_eq!(back[1].head.header("Byte-Range"), Some("1-2000/*"));
    assert_eq!(back[1].head.header("Status"), Some("000 200 OK"));
}

/// A response Alice owes (for Bob's chat) ends her open chunk with `+`; the 200 goes out between
/// two chunks of her message, never inside one.
#[test]
fn response_interrupts_open_chunk() {
    let (mut a, mut b) = pair(500, 1 << 20);
    let now = Instant::now();
    let big = data(3, 4000);
    let big_id = a.send(Outgoing::new("application/octet-stream", big.clone()));
    let mut out = vec![a.poll_transmit(now).unwrap()];
    b.send(Outgoing::new("text/plain", "ping"));
    feed(&mut a, &wire(&drain(&mut b, now)), 9, now);
    assert!(matches!(events(&mut a)[..], [SessionEvent::Message { .. }]));
    assert!(a.has_transmit());
    out.extend(drain(&mut a, now));
    let f = frames(&wire(&out));
    let kinds: Vec<_> = f
        .iter()
        .map(|f| {
            (
                f.head.status(),
                f.head.header("Byte-Range").map(str::to_owned),
                f.flag,
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [
            (None, Some("1-*/4000".into()), Flag::Continue),
            (Some(200), None, Flag::End),
            (None, Some("501-*/4000".into()), Flag::End),
        ]
    );
    feed(&mut b, &wire(&out), 100, now);
    let (got, _) = messages(events(&mut b));
    assert_eq!(got[&big_id], big);
}

/// RFC 4975 §7.1: the body must not contain the chunk's end-line. The transaction id is only
/// known once the head is out, so a body that contains `-------tid$` (even across two pieces)
/// ends the chunk just before it; the rest goes in a new chunk with another id. Bob gets the
/// body byte for byte.
#[test]
fn end_line_inside_the_body_is_never_sent() {
    for at in [0usize, 10, 60, 63, 64, 100] {
        let (mut a, mut b) = pair(64, 1 << 20);
        let now = Instant::now();
        let mut m = Outgoing::stream("application/octet-stream", None);
        m.success_report = true;
        let id = a.send(m);
        a.push_body(&id, Bytes::from(vec![b'x'; 64]));
        let first = a.poll_transmit(now).unwrap();
        // "MSRP tid SEND"
        let tid = std::str::from_utf8(&first.head)
            .unwrap()
            .split_whitespace()
            .nth(1)
            .unwrap()
            .to_owned();
        let mut evil = vec![b'y'; at];
        evil.extend_from_slice(format!("\r\n-------{tid}$\r\n").as_bytes());
        evil.extend_from_slice(&[b'z'; 200]);
        a.push_body(&id, Bytes::from(evil.clone()));
        a.finish(&id);
        let mut out = vec![first];
        out.extend(drain(&mut a, now));
        let w = wire(&out);
        let f = frames(&w);
        assert!(f.len() >= 2, "at {at}: the chunk was cut");
        assert_eq!(f[0].head.transaction_id(), tid);
        assert!(!ims_msrp::body_contains_end_line(&f[0].body, &tid));
        let mut whole = vec![b'x'; 64];
        whole.extend_from_slice(&evil);
        let mut joined = Vec::new();
        for fr in &f {
            assert!(!ims_msrp::body_contains_end_line(
                &fr.body,
                fr.head.transaction_id()
            ));
            let br = fr.head.byte_range().unwrap().unwrap();
            assert_eq!(br.start, joined.len() as u64 + 1, "at {at}");
            joined.extend_from_slice(&fr.body);
        }
        assert_eq!(joined, whole);
        feed(&mut b, &w, 1, now);
        let (got, _) = messages(events(&mut b));
        assert_eq!(got[&id], whole, "at {at}");
    }
}

/// The open chunk's transaction timer starts at its end-line: a body that trickles in for longer
/// than 30 s does not fail the chunk; 30 s after the end-line without a 200 it does (408).
#[test]
fn timer_runs_from_the_end_line() {
    let (mut a, _) = pair(100, 1 << 20);
    let t0 = Instant::now();
    let id = a.send(Outgoing::stream("text/plain", None));
    a.push_body(&id, Bytes::from(vec![b'a'; 100]));
    assert!(a.poll_transmit(t0).is_some());
    assert!(a.mid_chunk());
    assert_eq!(a.poll_timeout(), None);
    let t1 = t0 + Duration::from_secs(45);
    a.handle_timeout(t1);
    assert!(events(&mut a).is_empty());
    a.push_body(&id, Bytes::from(vec![b'b'; 10]));
    a.finish(&id);
    let rest = drain(&mut a, t1);
    assert_eq!(rest.len(), 2, "last piece, then `$`");
    assert_eq!(a.poll_timeout(), Some(t1 + Duration::from_secs(30)));
    a.handle_timeout(t1 + Duration::from_secs(30));
    assert_eq!(
        events(&mut a),
        [SessionEvent::SendFailed {
            message_id: id,
            status: 408
        }]
    );
}

/// Random traffic: three large messages (some streamed with unknown totals) and chat messages
/// queued at random points, random `interrupt()`s and aborts, random piece/chunk sizes; the wire
/// is framed in random splits into Bob. Every message arrives byte for byte (the aborted ones as
/// the prefix that was sent), and every chunk's Byte-Range starts at the byte after the last one
/// written for its message.
#[test]
fn random_interruptions_reassemble_exactly() {
    let mut rng = 0x1234_5678_9abc_def1u64;
    let mut next = move |n: u64| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng % n.max(1)
    };
    let now = Instant::now();
    let mut cut_mid_body = 0;
    for round in 0..40 {
        let piece = 1 + next(3000) as usize;
        let chunk = piece + next(20_000) as usize;
        let (mut a, b) = pair(piece, chunk);
        // large messages reach the application in parts
        let mut cb = b.config().clone();
        cb.whole_message_max = 8192;
        let mut b = Session::new(cb, 2);
        let mut expect: HashMap<String, Vec<u8>> = HashMap::new();
        let mut streams = Vec::new();
        for k in 0..3 {
            let body = data(round * 10 + k, next(60_000) as usize);
            if next(2) == 0 {
                let id = a.send(Outgoing::new("application/octet-stream", body.clone()));
                expect.insert(id, body);
            } else {
                let total = (next(2) == 0).then_some(body.len() as u64);
                let id = a.send(Outgoing::stream("application/octet-stream", total));
                streams.push((id.clone(), body.clone(), 0usize));
                expect.insert(id, body);
            }
        }
        let mut out = Vec::new();
        let mut aborted = Vec::new();
        for step in 0..10_000 {
            match next(10) {
                0 => {
                    let body = data(step, next(100) as usize + 1);
                    let id = a.send(Outgoing::new("text/plain", body.clone()));
                    expect.insert(id, body);
                }
                1 => a.interrupt(),
                2 if next(20) == 0 && !streams.is_empty() => {
                    let (id, _, _) = streams.remove(0);
                    a.abort(&id);
                    aborted.push(id);
                }
                3 | 4 if !streams.is_empty() => {
                    let i = next(streams.len() as u64) as usize;
                    let (id, body, pos) = &mut streams[i];
                    let n = (next(5000) as usize).min(body.len() - *pos);
                    a.push_body(id, Bytes::copy_from_slice(&body[*pos..*pos + n]));
                    *pos += n;
                    if *pos == body.len() {
                        a.finish(id);
                        streams.remove(i);
                    }
                }
                _ => {
                    if let Some(t) = a.poll_transmit(now) {
                        out.push(t);
                    }
                }
            }
            if streams.is_empty() && !a.has_transmit() && !a.mid_chunk() {
                break;
            }
        }
        for (id, body, pos) in streams.drain(..) {
            a.push_body(&id, Bytes::copy_from_slice(&body[pos..]));
            a.finish(&id);
        }
        out.extend(drain(&mut a, now));
        assert!(!a.mid_chunk());
        let w = wire(&out);
        // Byte-Ranges continue exactly where the last chunk of the message stopped
        let mut sent: HashMap<String, Vec<u8>> = HashMap::new();
        for f in frames(&w) {
            let id = f.head.message_id().unwrap().to_owned();
            let br = f.head.byte_range().unwrap().unwrap();
            let v = sent.entry(id).or_default();
            assert_eq!(br.start, v.len() as u64 + 1, "round {round}");
            if let Some(e) = br.end {
                assert_eq!(e, br.start + f.body.len() as u64 - 1);
            } else if f.flag == Flag::Continue && f.body.len() < chunk {
                cut_mid_body += 1;
            }
            v.extend_from_slice(&f.body);
        }
        feed(&mut b, &w, 1 + next(4000) as usize, now);
        let (got, rest) = messages(events(&mut b));
        for (id, body) in &expect {
            if aborted.contains(id) {
                let s = sent.get(id).map_or(&[][..], Vec::as_slice);
                assert!(body.starts_with(s));
                if let Some(g) = got.get(id) {
                    assert!(s.starts_with(g), "round {round}: {id}");
                }
            } else {
                let g = got.get(id).map(Vec::as_slice);
                assert!(
                    g == Some(&body[..]),
                    "round {round}: {id}: got {:?} of {} bytes, sent {:?}",
                    g.map(<[u8]>::len),
                    body.len(),
                    sent.get(id).map(Vec::len)
                );
            }
        }
        for e in rest {
            assert!(
                matches!(&e, SessionEvent::MessageAborted { message_id, .. } if aborted.contains(message_id)),
                "{e:?}"
            );
        }
    }
    assert!(cut_mid_body > 100, "{cut_mid_body} chunks ended mid-body");
}

/// Found by the `msrp_session` fuzz target: a streamed body that ends exactly with a chunk
/// already sent (`+`), then `finish()`, must still send the `$` (an empty last chunk,
/// `Byte-Range: n+1-n/n`); it used to wait forever. With whole chunks and piece by piece; and a
/// chunk left open waiting for body bytes ends with `$` at `finish()`.
#[test]
fn finish_after_the_last_byte_was_sent_ends_the_message() {
    for (piece, chunk) in [(None, 1000), (Some(100), 1000), (Some(100), 4000)] {
        let mut ca = Config::new(uri(ALICE), vec![uri(BOB)]);
        ca.chunk_size = chunk;
        ca.piece_size = piece;
        let mut a = Session::new(ca, 1);
        let mut b = Session::new(Config::new(uri(BOB), vec![uri(ALICE)]), 2);
        let now = Instant::now();
        let id = a.send(Outgoing::stream("text/plain", None));
        let body = data(5, 1000);
        a.push_body(&id, Bytes::from(body.clone()));
        let mut out = drain(&mut a, now);
        // a full chunk ended with `+`; an open one waits for more
        assert_eq!(a.mid_chunk(), chunk > 1000);
        assert!(!a.has_transmit());
        a.finish(&id);
        assert!(a.has_transmit(), "{piece:?}: the end of the message is due");
        out.extend(drain(&mut a, now));
        assert!(!a.mid_chunk());
        let f = frames(&wire(&out));
        let last = f.last().unwrap();
        assert_eq!(last.flag, Flag::End, "{piece:?}");
        if chunk > 1000 {
            assert_eq!(f.len(), 1);
            assert_eq!(last.head.header("Byte-Range"), Some("1-*/*"));
        } else {
            assert_eq!(last.head.header("Byte-Range"), Some("1001-1000/1000"));
            assert!(last.body.is_empty());
        }
        feed(&mut b, &wire(&out), 77, now);
        let (got, rest) = messages(events(&mut b));
        assert!(rest.is_empty(), "{rest:?}");
        assert_eq!(got[&id], body, "{piece:?}");
    }
}
