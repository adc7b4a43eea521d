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
