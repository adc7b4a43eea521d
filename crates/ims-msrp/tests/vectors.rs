//! The shared MSRP vectors (`tests/vectors/msrp/`, copied from the project's vector set): every
//! valid one frames to the fields `expected.jsonl` names and re-encodes byte for byte; every
//! invalid one gives the answer INDEX.md names; the stream file yields its frames for every
//! split point.

use ims_msrp::{parse_frame, ErrorKind, Event, Flag, Frame, Framer, Limits, Method};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::path::PathBuf;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/vectors/msrp")
}

fn hex(d: &[u8]) -> String {
    d.iter().map(|b| format!("{b:02x}")).collect()
}

fn sha(d: &[u8]) -> String {
    hex(&Sha256::digest(d))
}

fn expected() -> Vec<Value> {
    let text = std::fs::read_to_string(dir().join("expected.jsonl")).expect("expected.jsonl");
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect()
}

fn flag_str(f: Flag) -> &'static str {
    match f {
        Flag::End => "$",
        Flag::Continue => "+",
        Flag::Abort => "#",
    }
}

fn check_valid(v: &Value, data: &[u8], fr: &Frame) {
    let file = v["file"].as_str().unwrap();
    let h = &fr.head;
    assert_eq!(h.transaction_id(), v["tid"].as_str().unwrap(), "{file}");
    assert_eq!(flag_str(fr.flag), v["flag"].as_str().unwrap(), "{file}");
    assert_eq!(fr.to_bytes(), data, "{file}: re-encode");
    match v["kind"].as_str().unwrap() {
        "request" => {
            assert_eq!(
                h.method().unwrap().as_str(),
                v["method"].as_str().unwrap(),
                "{file}"
            );
        }
        "response" => {
            assert_eq!(
                u64::from(h.status().unwrap()),
                v["status"].as_u64().unwrap(),
                "{file}"
            );
            assert_eq!(h.comment(), v["comment"].as_str(), "{file}");
        }
        k => panic!("{file}: kind {k}"),
    }
    assert_eq!(h.message_id(), v["message_id"].as_str(), "{file}");
    assert_eq!(
        h.byte_range().unwrap().map(|b| b.to_string()),
        v["byte_range"].as_str().map(str::to_owned),
        "{file}"
    );
    assert_eq!(
        h.content_type()
            .unwrap()
            .map(|c| format!("{}/{}", c.mtype, c.subtype)),
        v["content_type"].as_str().map(str::to_owned),
        "{file}"
    );
    if let Some(n) = v["body_len"].as_u64() {
        assert_eq!(fr.body.len() as u64, n, "{file}");
        assert_eq!(sha(&fr.body), v["body_sha256"].as_str().unwrap(), "{file}");
    } else {
        assert!(fr.body.is_empty(), "{file}");
    }
    if let Some(n) = v["to_path_uris"].as_u64() {
        assert_eq!(h.to_path().unwrap().len() as u64, n, "{file}");
        assert_eq!(
            h.from_path().unwrap().len() as u64,
            v["from_path_uris"].as_u64().unwrap()
        );
    }
    fr.check().unwrap_or_else(|e| panic!("{file}: {e}"));
}

#[test]
fn valid_vectors_decode_to_their_fields() {
    let mut n = 0;
    for v in expected() {
        if !v["valid"].as_bool().unwrap() || v["kind"] == "stream" {
            continue;
        }
        let file = v["file"].as_str().unwrap();
        let data = std::fs::read(dir().join(file)).unwrap();
        assert_eq!(
            data.len() as u64,
            v["frame_len"].as_u64().unwrap(),
            "{file}"
        );
        assert_eq!(sha(&data), v["frame_sha256"].as_str().unwrap(), "{file}");
        let (fr, used) = parse_frame(&data).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(used, data.len(), "{file}");
        check_valid(&v, &data, &fr);
        n += 1;
    }
    assert_eq!(n, 18);
}

#[test]
fn typed_headers_of_vectors() {
    let rd = |f: &str| std::fs::read(dir().join(f)).unwrap();
    let d = rd("send_single.msrp");
    let (f, _) = parse_frame(&d).unwrap();
    assert!(f.head.success_report().unwrap());
    assert_eq!(
        f.head.failure_report().unwrap(),
        ims_msrp::headers::FailureReport::Yes
    );
    let d = rd("send_cpim.msrp");
    let (f, _) = parse_frame(&d).unwrap();
    assert_eq!(
        f.head.failure_report().unwrap(),
        ims_msrp::headers::FailureReport::Partial
    );
    let d = rd("report_200.msrp");
    let (f, _) = parse_frame(&d).unwrap();
    assert_eq!(f.head.method(), Some(Method::Report));
    let s = f.head.status_header().unwrap().unwrap();
    assert_eq!((s.namespace, s.code, s.comment), (0, 200, Some("OK")));
    let d = rd("auth_401.msrp");
    let (f, _) = parse_frame(&d).unwrap();
    let w = f.head.www_authenticate().unwrap().unwrap();
    assert_eq!(w.get("realm"), Some("relay.example.com"));
    assert_eq!(w.get("qop"), Some("auth"));
    let d = rd("auth_req_creds.msrp");
    let (f, _) = parse_frame(&d).unwrap();
    let a = f.head.authorization().unwrap().unwrap();
    assert_eq!(a.get("username"), Some("alice"));
    assert_eq!(a.get("nc"), Some("00000001"));
    assert_eq!(f.head.expires().unwrap(), Some(900));
    let d = rd("auth_200.msrp");
    let (f, _) = parse_frame(&d).unwrap();
    let up = f.head.use_path().unwrap().unwrap();
    assert_eq!(up[0].session_id(), Some("jui787s2f"));
    assert!(up[0].is_secure());
    let d = rd("auth_req.msrp");
    let (f, _) = parse_frame(&d).unwrap();
    assert_eq!(f.head.method(), Some(Method::Auth));
    assert_eq!(f.head.to_path().unwrap()[0].userinfo(), Some("alice"));
    let d = rd("ext_method.msrp");
    let (f, _) = parse_frame(&d).unwrap();
    assert_eq!(f.head.method(), Some(Method::Unknown("NICKNAME")));
    assert_eq!(
        f.head.header("use-nickname"),
        Some("\"Alice in Wonderland\"")
    );
    let d = rd("body_binary.msrp");
    let (f, _) = parse_frame(&d).unwrap();
    let names: Vec<_> = f.head.headers().map(|(n, _)| n).collect();
    assert_eq!(
        names,
        [
            "To-Path",
            "From-Path",
            "Message-ID",
            "Byte-Range",
            "Content-ID",
            "Content-Disposition",
            "Content-Type"
        ]
    );
}

/// What each invalid vector gives: the status of `check()` or a framing outcome.
#[test]
fn invalid_vectors_give_their_answer() {
    let cases: &[(&str, Result<u16, ErrorKind>, Option<ErrorKind>)] = &[
        (
            "bad_missing_to_path.msrp",
            Ok(400),
            Some(ErrorKind::Missing("To-Path")),
        ),
        (
            "bad_to_path_scheme.msrp",
            Ok(400),
            Some(ErrorKind::Uri("scheme is not msrp:// or msrps://")),
        ),
        (
            "bad_byte_range_negative.msrp",
            Ok(400),
            Some(ErrorKind::Syntax("Byte-Range")),
        ),
        (
            "bad_byte_range_overflow.msrp",
            Ok(400),
            Some(ErrorKind::Overflow("Byte-Range")),
        ),
        (
            "bad_byte_range_zero_start.msrp",
            Ok(400),
            Some(ErrorKind::ByteRange),
        ),
        (
            "bad_header_no_colon.msrp",
            Ok(400),
            Some(ErrorKind::HeaderColon),
        ),
        (
            "bad_tid_too_long.msrp",
            Ok(400),
            Some(ErrorKind::TransactionId),
        ),
        (
            "bad_tid_bad_chars.msrp",
            Ok(400),
            Some(ErrorKind::TransactionId),
        ),
        (
            "bad_response_with_body.msrp",
            Ok(400),
            Some(ErrorKind::ResponseWithBody),
        ),
        (
            "bad_body_without_content_type.msrp",
            Ok(400),
            Some(ErrorKind::BodyWithoutContentType),
        ),
        ("bad_lf_only.msrp", Err(ErrorKind::BareLf), None),
    ];
    for (file, want, kind) in cases {
        let data = std::fs::read(dir().join(file)).unwrap();
        match want {
            Ok(status) => {
                let (fr, used) = parse_frame(&data).unwrap_or_else(|e| panic!("{file}: {e}"));
                assert_eq!(used, data.len(), "{file}: complete framing");
                let e = fr.check().expect_err(file);
                assert_eq!(e.status(), *status, "{file}");
                assert_eq!(Some(e.kind), *kind, "{file}");
                assert!(!e.is_fatal(), "{file}");
            }
            Err(k) => {
                let e = parse_frame(&data).expect_err(file);
                assert_eq!(e.kind, *k, "{file}");
                assert!(e.is_fatal());
            }
        }
    }
    // strict mode refuses the bad tids at the start line (close the connection)
    let strict = Limits {
        strict_transaction_id: true,
        ..Limits::default()
    };
    for file in ["bad_tid_too_long.msrp", "bad_tid_bad_chars.msrp"] {
        let mut f = Framer::new(strict.clone());
        f.push(&std::fs::read(dir().join(file)).unwrap());
        let e = f.poll().unwrap_err();
        assert_eq!(e.kind, ErrorKind::UnframeableTransactionId, "{file}");
        assert!(e.is_fatal());
    }
}

/// CRLF-anchored framing: the body holds `x--------amb1guo5$` and the frame is still one frame.
#[test]
fn body_resembling_end_line_is_body() {
    let data = std::fs::read(dir().join("bad_body_contains_endline.msrp")).unwrap();
    let (fr, used) = parse_frame(&data).unwrap();
    assert_eq!(used, data.len());
    assert_eq!(&fr.body[..], b"head\r\nx--------amb1guo5$\r\ntail");
    fr.check().unwrap();
    assert!(ims_msrp::body_contains_end_line(&fr.body, "amb1guo5"));
}

/// 10 MiB without an end-line: the framer streams, never buffers more than the threshold, and
/// stops at `max_chunk_size` with a fatal error.
#[test]
fn no_end_line_10mb_is_bounded() {
    let v = expected()
        .into_iter()
        .find(|v| v["file"] == "bad_no_endline_10mb.msrp")
        .unwrap();
    let mut data = b"MSRP n0endl1n SEND\r\nTo-Path: msrp://bob.example.com:8888/9di4eae923wzd;tcp\r\nFrom-Path: msrp://alice.example.com:7777/iau39soe2843z;tcp\r\nMessage-ID: 87652491\r\nByte-Range: 1-*/*\r\nContent-Type: text/plain\r\n\r\n".to_vec();
    // the header section INDEX.md describes; the sha256 pins the exact bytes when they agree
    data.resize(data.len() + 10_485_760, b'a');
    let same = sha(&data) == v["frame_sha256"].as_str().unwrap();
    eprintln!("reconstructed vector matches its sha256: {same}");
    let mut f = Framer::default();
    let mut max_buf = 0;
    let mut err = None;
    for c in data.chunks(65536) {
        f.push(c);
        loop {
            match f.poll() {
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(e) => {
                    err = Some(e);
                    break;
                }
            }
        }
        max_buf = max_buf.max(f.buffered());
        if err.is_some() {
            break;
        }
    }
    assert_eq!(err.unwrap().kind, ErrorKind::ChunkTooLarge);
    assert!(max_buf <= 2 * 65536, "buffered {max_buf}");
}

/// Runs a framer over `pieces`, collecting (head bytes, body, flag) per frame.
fn run(pieces: &[&[u8]], limits: &Limits) -> Vec<(Vec<u8>, Vec<u8>, Flag, bool)> {
    let mut f = Framer::new(limits.clone());
    let mut out = Vec::new();
    let mut cur: Option<(Vec<u8>, Vec<u8>)> = None;
    for p in pieces {
        f.push(p);
        while let Some(ev) = f.poll().unwrap() {
            match ev {
                Event::Frame(fr) => {
                    assert!(cur.is_none());
                    out.push((
                        fr.head.as_bytes().to_vec(),
                        fr.body.to_vec(),
                        fr.flag,
                        false,
                    ));
                }
                Event::Start(h) => cur = Some((h.as_bytes().to_vec(), Vec::new())),
                Event::Data(d) => cur.as_mut().unwrap().1.extend_from_slice(&d),
                Event::End(fl) => {
                    let (h, b) = cur.take().unwrap();
                    out.push((h, b, fl, true));
                }
            }
        }
    }
    assert!(f.is_idle(), "bytes left over");
    out
}

#[test]
fn stream_frames_for_every_split_point() {
    let v = expected()
        .into_iter()
        .find(|v| v["kind"] == "stream")
        .unwrap();
    let data = std::fs::read(dir().join("stream.msrp")).unwrap();
    assert_eq!(sha(&data), v["frame_sha256"].as_str().unwrap());
    let bounds: Vec<(usize, usize)> = v["frames"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["start"].as_u64().unwrap() as usize,
                f["end"].as_u64().unwrap() as usize,
            )
        })
        .collect();
    let limits = Limits::default();
    let whole = run(&[&data], &limits);
    assert_eq!(whole.len(), bounds.len());
    for ((h, b, fl, _), (s, e)) in whole.iter().zip(&bounds) {
        let (fr, used) = parse_frame(&data[*s..*e]).unwrap();
        assert_eq!(used, e - s);
        assert_eq!(fr.head.as_bytes().to_vec(), *h);
        assert_eq!(fr.body.to_vec(), *b);
        assert_eq!(fr.flag, *fl);
    }
    // the near-miss frame keeps every near-miss line in its body
    assert_eq!(whole[2].1.len(), 177);
    for cut in 0..=data.len() {
        assert_eq!(
            run(&[&data[..cut], &data[cut..]], &limits),
            whole,
            "cut at {cut}"
        );
    }
    let bytes: Vec<&[u8]> = data.chunks(1).collect();
    assert_eq!(run(&bytes, &limits), whole, "one byte at a time");
    // streamed: a tiny threshold turns every body into Start/Data/End with the same bytes
    let small = Limits {
        stream_threshold: 8,
        ..Limits::default()
    };
    let streamed = run(&bytes, &small);
    assert_eq!(streamed.len(), whole.len());
    for (a, b) in streamed.iter().zip(&whole) {
        assert_eq!((&a.0, &a.1, a.2), (&b.0, &b.1, b.2));
        assert_eq!(a.3, a.1.len() > 8);
    }
    for cut in 0..=data.len() {
        assert_eq!(
            run(&[&data[..cut], &data[cut..]], &small),
            streamed,
            "cut at {cut}"
        );
    }
}

/// The CPIM body of `send_cpim.msrp` (RFC 3862 with the IMDN name space of RFC 5438).
#[test]
fn cpim_vector() {
    use ims_msrp::cpim::{Cpim, CpimBuilder};
    use ims_msrp::imdn::Disposition;
    let data = std::fs::read(dir().join("send_cpim.msrp")).unwrap();
    let (fr, _) = parse_frame(&data).unwrap();
    let c = Cpim::parse(&fr.body).unwrap();
    assert_eq!(c.from(), Some("<sip:+15551230001@ims.example.net>"));
    assert_eq!(
        c.to().collect::<Vec<_>>(),
        ["<sip:+15551230002@ims.example.net>"]
    );
    assert_eq!(c.datetime(), Some("2024-05-01T10:20:30.000Z"));
    assert_eq!(
        c.name_spaces().collect::<Vec<_>>(),
        [("imdn", "urn:ietf:params:imdn")]
    );
    assert_eq!(
        c.ns_header(ims_msrp::imdn::NS, "Message-ID"),
        Some("Xs8Kq2Lm0p")
    );
    let d = Disposition::parse(
        c.ns_header(ims_msrp::imdn::NS, "Disposition-Notification")
            .unwrap(),
    );
    assert!(d.positive_delivery && d.display && !d.negative_delivery);
    let ct = c.content_type().unwrap().unwrap();
    assert!(ct.is("text", "plain"));
    assert_eq!(ct.param("charset"), Some("UTF-8"));
    assert_eq!(std::str::from_utf8(c.body).unwrap(), "Hi Bob \u{2014} ok?");
    // re-encoding with the builder gives the same body bytes
    let again = CpimBuilder::new(
        "<sip:+15551230001@ims.example.net>",
        "<sip:+15551230002@ims.example.net>",
    )
    .datetime("2024-05-01T10:20:30.000Z")
    .ns("imdn", "urn:ietf:params:imdn")
    .header("imdn.Message-ID", "Xs8Kq2Lm0p")
    .header(
        "imdn.Disposition-Notification",
        "positive-delivery, display",
    )
    .content("text/plain;charset=UTF-8", c.body)
    .to_bytes();
    assert_eq!(again, &fr.body[..]);
}
