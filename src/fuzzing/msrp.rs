//! Fuzzing oracles for [`crate::msrp`]: the framer (`msrp_framer`) and the URI and header value
//! parsers (`msrp_uri`).

use crate::msrp::{
    cpim::Cpim, headers, imdn::Imdn, parse_frame, parse_path, Event, Flag, Framer, Limits, Uri,
    UriBuf,
};

/// One framed result: head bytes, body, flag.
type Out = (Vec<u8>, Vec<u8>, Flag);

fn run(input: &[u8], chunk: usize, limits: &Limits) -> (Vec<Out>, bool) {
    let mut f = Framer::new(limits.clone());
    let mut out = Vec::new();
    let mut cur: Option<(Vec<u8>, Vec<u8>)> = None;
    for piece in input.chunks(chunk.max(1)) {
        f.push(piece);
        loop {
            match f.poll() {
                Ok(Some(Event::Frame(fr))) => {
                    assert!(cur.is_none(), "a whole frame inside a streamed one");
                    assert!(
                        fr.body.len() <= limits.stream_threshold,
                        "a frame over the threshold came whole"
                    );
                    out.push((fr.head.as_bytes().to_vec(), fr.body.to_vec(), fr.flag));
                }
                Ok(Some(Event::Start(h))) => {
                    assert!(cur.is_none(), "Start inside a streamed frame");
                    cur = Some((h.as_bytes().to_vec(), Vec::new()));
                }
                Ok(Some(Event::Data(d))) => {
                    assert!(!d.is_empty(), "empty Data event");
                    cur.as_mut()
                        .expect("Data outside a frame")
                        .1
                        .extend_from_slice(&d);
                }
                Ok(Some(Event::End(fl))) => {
                    let (h, b) = cur.take().expect("End outside a frame");
                    assert!(
                        b.len() > limits.stream_threshold,
                        "a small frame was streamed"
                    );
                    out.push((h, b, fl));
                }
                Ok(None) => break,
                Err(e) => {
                    assert!(e.is_fatal(), "a non-fatal error from the framer: {e}");
                    assert_eq!(f.poll().err(), Some(e), "the framer forgot its error");
                    return (out, true);
                }
            }
        }
        // the buffer stays bounded by the threshold, one end-line, the head and the last piece
        assert!(
            f.buffered()
                <= limits
                    .stream_threshold
                    .saturating_add(limits.max_head_size)
                    .saturating_add(limits.max_tid_len + 16)
                    .saturating_add(chunk),
            "framer buffers {} bytes",
            f.buffered()
        );
    }
    (out, false)
}

/// Feeds `data[1..]` to the framer in chunks of `data[0] & 0x3f + 1` bytes, with a streaming
/// threshold picked by the top bits (0, 16, 300 bytes or the default).
///
/// Oracles: the same frames (head, body, flag) and the same outcome come out when the whole
/// input is pushed at once; frames never exceed or straddle the threshold wrongly; Data events
/// are never empty; errors from the framer are fatal and sticky; the buffer stays bounded; each
/// frame re-encodes to exactly its input bytes and [`parse_frame`] of those bytes gives the same
/// frame; every typed accessor and `check()` run without panicking, and a check error's status is
/// 400 or 413.
pub fn msrp_framer(data: &[u8]) {
    let Some((&sel, input)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(sel & 0x3f) + 1;
    let threshold = match sel >> 6 {
        0 => 0,
        1 => 16,
        2 => 300,
        _ => Limits::default().stream_threshold,
    };
    let limits = Limits {
        stream_threshold: threshold,
        max_head_size: 4096,
        max_header_len: 1024,
        max_chunk_size: 1 << 20,
        ..Limits::default()
    };
    let (chunked, cerr) = run(input, chunk, &limits);
    let (whole, werr) = run(input, input.len().max(1), &limits);
    assert!(chunked == whole, "chunk size {chunk} changed the frames");
    assert_eq!(cerr, werr, "chunk size {chunk} changed the outcome");

    // frames are the input, in order, re-encoded byte for byte
    let mut at = 0;
    for (head, body, flag) in &whole {
        let (fr, used) = match parse_frame(&input[at..]) {
            Ok(x) => x,
            Err(e) => panic!("the framer produced a frame that parse_frame refuses: {e}"),
        };
        assert_eq!(
            fr.head.as_bytes().as_ref(),
            &head[..],
            "parse_frame head differs"
        );
        assert_eq!(&fr.body[..], &body[..], "parse_frame body differs");
        assert_eq!(fr.flag, *flag);
        let enc = fr.to_bytes();
        assert_eq!(enc.len(), used, "re-encoded length differs");
        assert_eq!(
            &input[at..at + used],
            &enc[..],
            "re-encoding differs from the input"
        );
        at += used;
        exercise(&fr);
    }
    assert!(at <= input.len());
}

fn exercise(fr: &crate::msrp::Frame) {
    let h = &fr.head;
    let _ = (
        h.transaction_id(),
        h.method(),
        h.status(),
        h.comment(),
        h.fault(),
    );
    for (n, v) in h.headers() {
        assert!(h.header(n).is_some(), "header({n:?}) misses its own header");
        let _ = v;
    }
    let _ = (h.to_path(), h.from_path(), h.use_path(), h.message_id());
    if let Ok(Some(b)) = h.byte_range() {
        let again = headers::ByteRange::parse(&b.to_string());
        assert_eq!(again, Ok(b), "Byte-Range Display round trip");
    }
    let _ = (
        h.status_header(),
        h.content_type(),
        h.success_report(),
        h.failure_report(),
    );
    let _ = (h.expires(), h.min_expires(), h.max_expires());
    let _ = (
        h.www_authenticate(),
        h.authorization(),
        h.authentication_info(),
    );
    match fr.check() {
        Ok(()) => {
            assert!(crate::msrp::is_ident(h.transaction_id()));
            assert!(h.to_path().is_ok() && h.from_path().is_ok());
        }
        Err(e) => assert!(
            matches!(e.status(), 400 | 413),
            "check answered {}",
            e.status()
        ),
    }
    if let Ok(Some(ct)) = h.content_type() {
        if ct.is("message", "cpim") {
            let _ = Cpim::parse(&fr.body).map(|c| (c.from(), c.to().count(), c.content_type()));
        }
    }
}

/// Parses `data` (when UTF-8) as an MSRP URI, a path, and every typed header value.
///
/// Oracles: a parsed URI prints back as its input, is equivalent to itself and to its owned
/// copy and to the same URI with an upper-cased scheme; a path's URIs each parse alone; a
/// Byte-Range, Status and Content-Type that parse print back to something that parses equal.
pub fn msrp_uri(data: &[u8]) {
    let Ok(s) = std::str::from_utf8(data) else {
        let _ = Cpim::parse(data);
        return;
    };
    if let Ok(u) = Uri::parse(s) {
        assert_eq!(u.as_str(), s);
        assert_eq!(u.to_string(), s);
        assert!(u.equivalent(&u), "URI not equivalent to itself: {s:?}");
        let owned = UriBuf::parse(s).expect("parsed once, parses again");
        assert!(owned.uri().equivalent(&u));
        let _ = (
            u.userinfo(),
            u.host().to_string(),
            u.port_or_default(),
            u.params(),
            u.param("x"),
        );
        let scheme_len = if u.is_secure() { 5 } else { 4 };
        let upper = format!(
            "{}{}",
            s[..scheme_len].to_ascii_uppercase(),
            &s[scheme_len..]
        );
        let v = Uri::parse(&upper).expect("the scheme is case-insensitive");
        assert!(u.equivalent(&v) && v.equivalent(&u), "{s:?} vs {upper:?}");
    }
    if let Ok(p) = parse_path(s) {
        for u in &p {
            assert!(Uri::parse(u.as_str()).is_ok());
        }
    }
    if let Ok(b) = headers::ByteRange::parse(s) {
        assert_eq!(headers::ByteRange::parse(&b.to_string()), Ok(b));
    }
    if let Ok(st) = headers::StatusHeader::parse(s) {
        let shown = st.to_string();
        assert_eq!(headers::StatusHeader::parse(&shown), Ok(st));
    }
    if let Ok(ct) = headers::ContentType::parse(s) {
        let shown = ct.to_string();
        let again = headers::ContentType::parse(&shown).expect("Content-Type Display parses");
        assert!(again.is(ct.mtype, ct.subtype));
    }
    let _ = headers::AuthParams::parse(s, true).map(|a| a.get("nonce"));
    let _ = headers::AuthParams::parse(s, false);
    let _ = headers::FailureReport::parse(s);
    let _ = headers::parse_success_report(s);
    let _ = headers::parse_expires(s);
    let _ = Imdn::parse(s);
    let _ = Cpim::parse(data);
}

/// A deterministic body byte stream for message `k` (fuzz inputs stay small).
fn body_bytes(k: u64, n: usize) -> Vec<u8> {
    let mut s = k.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            // mostly text with hyphens and line ends, so end-line look-alikes occur
            b"--\r\n-abc0"[(s % 9) as usize]
        })
        .collect()
}

/// Frames a byte stream into `to` in pieces of `split` bytes; every frame must frame (and, with
/// `check`, pass `check()`).
fn feed_session(
    to: &mut crate::msrp::session::Session,
    framer: &mut Framer,
    bytes: &[u8],
    split: usize,
    check: bool,
    now: std::time::Instant,
) {
    for p in bytes.chunks(split.max(1)) {
        framer.push(p);
        loop {
            match framer.poll() {
                Ok(Some(ev)) => {
                    if let (true, Event::Frame(f)) = (check, &ev) {
                        assert_eq!(f.check(), Ok(()), "a session sent a bad frame");
                    }
                    if let (true, Event::Start(h)) = (check, &ev) {
                        assert_eq!(h.check(), Ok(()), "a session sent a bad head");
                    }
                    to.handle_event(now, ev);
                }
                Ok(None) => break,
                Err(e) => panic!("a session's output does not frame: {e}"),
            }
        }
    }
}

/// Drives two sessions from a script: `data[0..4]` pick the piece size (or whole chunks), chunk
/// size, the receiver's whole-message limit and the framing split; then each byte is an
/// operation — send a whole or streamed message, push body (sometimes the open chunk's own
/// `-------tid$`), finish, abort, `interrupt()`, poll one transmit, or deliver the wire so far
/// and bring the receiver's responses and REPORTs back (which interrupt an open chunk).
///
/// Oracles: everything either session writes frames without error and passes `check()`; a
/// chunk's body never contains its own end-line; per message the Byte-Ranges follow each other
/// from 1 and the bodies concatenate to a prefix of the message (all of it unless aborted);
/// the receiver delivers every message that was not aborted byte for byte and rejects nothing;
/// the sender sees no failure or stray response and, at the end, nothing outstanding and no
/// open chunk.
#[allow(clippy::disallowed_methods)] // a virtual clock starting at an arbitrary instant
pub fn msrp_session(data: &[u8]) {
    use crate::msrp::session::{Config, Outgoing, Session, SessionEvent, Transmit};
    use std::collections::HashMap;
    if data.len() < 4 {
        return;
    }
    let (cfgb, script) = data.split_at(4);
    let a_uri = UriBuf::parse("msrp://a.example:1/aaa;tcp").expect("valid");
    let b_uri = UriBuf::parse("msrp://b.example:2/bbb;tcp").expect("valid");
    let mut ca = Config::new(a_uri.clone(), vec![b_uri.clone()]);
    // small sizes: many chunk and piece boundaries per byte of work
    let piece = usize::from(cfgb[0] & 0x7f) + 1;
    ca.piece_size = (cfgb[0] & 0x80 == 0).then_some(piece);
    // at least 32 bytes per chunk: each frame costs a head to build and parse
    ca.chunk_size = (piece + usize::from(cfgb[1]) * 2).max(32);
    let mut cb = Config::new(b_uri, vec![a_uri]);
    cb.whole_message_max = usize::from(cfgb[2]) * 2;
    let split = usize::from(cfgb[3] & 0x3f) + 1;
    let mut a = Session::new(ca, u64::from(cfgb[1]));
    let mut b = Session::new(cb, 7);
    let now = std::time::Instant::now();
    let mut to_b = Framer::new(Limits::default());
    let mut to_a = Framer::new(Limits::default());

    let mut expect: HashMap<String, Vec<u8>> = HashMap::new();
    // streamed messages: id, body, total declared (then exactly that body is pushed)
    let mut streams: Vec<(String, Vec<u8>, bool)> = Vec::new();
    let mut aborted: Vec<String> = Vec::new();
    let mut wire: Vec<Transmit> = Vec::new();
    let mut delivered = 0;
    let mut last_tid = String::new();
    let mut k = 0u64;
    let mut it = script.iter().copied();
    let poll = |a: &mut Session, wire: &mut Vec<Transmit>, last_tid: &mut String| {
        if let Some(t) = a.poll_transmit(now) {
            if let Some(tid) = std::str::from_utf8(&t.head)
                .ok()
                .and_then(|h| h.split_whitespace().nth(1))
            {
                *last_tid = tid.to_owned();
            }
            wire.push(t);
            true
        } else {
            false
        }
    };
    let exchange = |a: &mut Session,
                    b: &mut Session,
                    wire: &[Transmit],
                    delivered: &mut usize,
                    to_b: &mut Framer,
                    to_a: &mut Framer| {
        let bytes: Vec<u8> = wire[*delivered..].iter().flat_map(|t| t.to_vec()).collect();
        *delivered = wire.len();
        // what `a` sends is checked frame by frame at the end
        feed_session(b, to_b, &bytes, split, false, now);
        let back: Vec<u8> = std::iter::from_fn(|| b.poll_transmit(now))
            .flat_map(|t| t.to_vec())
            .collect();
        feed_session(a, to_a, &back, split, true, now);
    };
    // a declared total is kept: the rest of the body goes before the end
    let finish = |a: &mut Session,
                  expect: &mut HashMap<String, Vec<u8>>,
                  id: String,
                  body: Vec<u8>,
                  declared: bool| {
        let got = expect.get_mut(&id).expect("known");
        if declared && got.len() < body.len() {
            let rest = body[got.len()..].to_vec();
            got.extend_from_slice(&rest);
            assert!(a.push_body(&id, rest.into()));
        }
        a.finish(&id);
    };
    while let Some(op) = it.next() {
        let arg = usize::from(it.next().unwrap_or(0));
        match op % 9 {
            0 => {
                k += 1;
                let body = body_bytes(k, arg * 2);
                let mut m = Outgoing::new("text/plain", body.clone());
                m.success_report = op & 0x10 != 0;
                expect.insert(a.send(m), body);
            }
            1 => {
                k += 1;
                let body = body_bytes(k, arg * 4);
                let total = (op & 0x10 != 0).then_some(body.len() as u64);
                let id = a.send(Outgoing::stream("application/octet-stream", total));
                expect.insert(id.clone(), Vec::new());
                streams.push((id, body, total.is_some()));
            }
            2 | 3 if !streams.is_empty() => {
                let i = arg % streams.len();
                let (id, body, declared) = &mut streams[i];
                let got = expect.get_mut(id.as_str()).expect("known");
                let n = (arg * 3 + 1).min(body.len() - got.len().min(body.len()));
                let mut part = body[got.len().min(body.len())..][..n].to_vec();
                if op & 0x20 != 0 && !last_tid.is_empty() && !*declared {
                    // the open chunk's own end-line, flag and all
                    part.extend_from_slice(format!("\r\n-------{last_tid}$\r\n").as_bytes());
                }
                got.extend_from_slice(&part);
                assert!(a.push_body(id, part.into()));
                if op & 0x40 != 0 {
                    let (id, body, declared) = streams.remove(i);
                    finish(&mut a, &mut expect, id, body, declared);
                }
            }
            4 if !streams.is_empty() && op & 0x30 == 0x30 => {
                let (id, _, _) = streams.remove(arg % streams.len());
                a.abort(&id);
                aborted.push(id);
            }
            5 => a.interrupt(),
            6 => exchange(&mut a, &mut b, &wire, &mut delivered, &mut to_b, &mut to_a),
            _ => {
                for _ in 0..=(arg & 7) {
                    if !poll(&mut a, &mut wire, &mut last_tid) {
                        break;
                    }
                }
            }
        }
    }
    for (id, body, declared) in streams.drain(..) {
        finish(&mut a, &mut expect, id, body, declared);
    }
    while poll(&mut a, &mut wire, &mut last_tid) {}
    assert!(!a.mid_chunk(), "a chunk left open");
    exchange(&mut a, &mut b, &wire, &mut delivered, &mut to_b, &mut to_a);
    while poll(&mut a, &mut wire, &mut last_tid) {}
    exchange(&mut a, &mut b, &wire, &mut delivered, &mut to_b, &mut to_a);
    assert!(to_b.is_idle() && to_a.is_idle(), "a frame left unfinished");

    // what went on the wire, per message
    let all: Vec<u8> = wire.iter().flat_map(|t| t.to_vec()).collect();
    let mut f = Framer::new(Limits {
        stream_threshold: usize::MAX,
        ..Limits::default()
    });
    f.push(&all);
    let mut sent: HashMap<String, Vec<u8>> = HashMap::new();
    while let Some(ev) = f.poll().expect("frames") {
        let Event::Frame(fr) = ev else {
            panic!("streamed with an unlimited threshold")
        };
        assert_eq!(fr.check(), Ok(()), "the sender wrote a bad frame");
        assert!(
            !crate::msrp::body_contains_end_line(&fr.body, fr.head.transaction_id()),
            "a body contains its own end-line"
        );
        let id = fr.head.message_id().expect("Message-ID").to_owned();
        let br = fr.head.byte_range().expect("valid").expect("present");
        let v = sent.entry(id).or_default();
        assert_eq!(
            br.start,
            v.len() as u64 + 1,
            "Byte-Range does not follow on"
        );
        if let Some(e) = br.end {
            assert_eq!(e + 1, br.start + fr.body.len() as u64, "range-end");
        }
        v.extend_from_slice(&fr.body);
    }
    let mut got: HashMap<String, Vec<u8>> = HashMap::new();
    while let Some(e) = b.poll_event() {
        match e {
            SessionEvent::Message {
                message_id, body, ..
            } => got.entry(message_id).or_default().extend_from_slice(&body),
            SessionEvent::MessageData {
                message_id,
                offset,
                data,
            } => {
                let v = got.entry(message_id).or_default();
                assert_eq!(offset, v.len() as u64, "parts out of order");
                v.extend_from_slice(&data);
            }
            SessionEvent::MessageComplete { .. } => {}
            SessionEvent::MessageAborted { message_id, .. } => {
                assert!(aborted.contains(&message_id), "not aborted: {message_id}");
            }
            other => panic!("receiver: {other:?}"),
        }
    }
    for (id, body) in &expect {
        let s = sent.get(id).map_or(&[][..], Vec::as_slice);
        assert!(body.starts_with(s), "sent bytes differ from the message");
        if aborted.contains(id) {
            if let Some(g) = got.get(id) {
                assert!(s.starts_with(g));
            }
        } else {
            assert_eq!(s.len(), body.len(), "message not sent whole");
            if !body.is_empty() {
                assert!(
                    got.get(id) == Some(body),
                    "message {id} not delivered byte for byte: {:?} of {} bytes",
                    got.get(id).map(Vec::len),
                    body.len()
                );
            }
        }
    }
    while let Some(e) = a.poll_event() {
        assert!(
            matches!(e, SessionEvent::Report { status: 200, .. }),
            "sender: {e:?}"
        );
    }
    assert_eq!(a.outstanding(), 0, "transactions left without a response");
}

/// Feeds `data` as a byte stream into a receiving session (through the framer, stopping at the
/// first fatal framing error).
///
/// Oracles: no panic; every response and REPORT the session writes frames and passes `check()`
/// (except a 400 that echoes a request's out-of-syntax tid); each response's transaction id is
/// that of a request that was received.
#[allow(clippy::disallowed_methods)] // a virtual clock starting at an arbitrary instant
pub fn msrp_session_rx(data: &[u8]) {
    use crate::msrp::session::{Config, Session};
    let Some((&sel, input)) = data.split_first() else {
        return;
    };
    let me = UriBuf::parse("msrp://bob.example.com:8888/9di4eae923wzd;tcp").expect("valid");
    let peer = UriBuf::parse("msrp://alice.example.com:7777/iau39soe2843z;tcp").expect("valid");
    let mut c = Config::new(me, vec![peer]);
    c.whole_message_max = usize::from(sel) * 4;
    c.max_message_size = 4096;
    c.accept_types = vec!["text/*".into(), "message/cpim".into()];
    c.verify_from_path = sel & 1 == 0;
    let mut s = Session::new(c, 1);
    let now = std::time::Instant::now();
    let mut f = Framer::new(Limits {
        stream_threshold: 64,
        ..Limits::default()
    });
    let mut tids = Vec::new();
    let mut out = Vec::new();
    for p in input.chunks(usize::from(sel >> 4) + 1) {
        f.push(p);
        loop {
            match f.poll() {
                Ok(Some(ev)) => {
                    match &ev {
                        Event::Frame(fr) => tids.push(fr.head.transaction_id().to_owned()),
                        Event::Start(h) => tids.push(h.transaction_id().to_owned()),
                        _ => {}
                    }
                    s.handle_event(now, ev);
                }
                Ok(None) => break,
                Err(_) => break,
            }
        }
        while let Some(t) = s.poll_transmit(now) {
            out.extend_from_slice(&t.to_vec());
        }
        while s.poll_event().is_some() {}
    }
    let mut g = Framer::default();
    g.push(&out);
    while let Some(ev) = g.poll().expect("the session's output frames") {
        let Event::Frame(fr) = ev else {
            panic!("a response or REPORT has no large body")
        };
        let tid = fr.head.transaction_id();
        if !fr.head.is_request() {
            assert!(tids.iter().any(|t| t == tid), "a response to nothing");
        }
        match fr.check() {
            Ok(()) => {}
            // a 400 to a request whose own tid is out of syntax echoes that tid (the framer is
            // lenient about tids; tests/vectors/msrp/INDEX.md: "400 or close")
            Err(e)
                if e.kind == crate::msrp::ErrorKind::TransactionId
                    && fr.head.status() == Some(400) => {}
            Err(e) => panic!("the session wrote a bad frame: {e}"),
        }
    }
    assert!(g.is_idle());
}
