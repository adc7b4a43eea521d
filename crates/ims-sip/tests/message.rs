//! Framing, limits, edits, builders, multipart and validation beyond the torture vectors.

use bytes::Bytes;
use ims_sip::{
    multipart, parse, parse_datagram, validate, ErrorKind, Frame, Framer, HeaderName, Limits,
    Method, OwnedMessage, ParserConfig, RequestBuilder, ResponseBuilder, Status, ValidationConfig,
};

const INVITE: &[u8] = b"INVITE sip:bob@biloxi.example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bK776asdhds\r\n\
Max-Forwards: 70\r\n\
Route: <sip:p1.example.com;lr>, <sip:p2.example.com;lr>\r\n\
Record-Route: <sip:rr.example.com;lr>\r\n\
To: Bob <sip:bob@biloxi.example.com>\r\n\
From: Alice <sip:alice@atlanta.example.com>;tag=1928301774\r\n\
Call-ID: a84b4c76e66710@pc33.atlanta.example.com\r\n\
CSeq: 314159 INVITE\r\n\
Timestamp: 54\r\n\
Contact: <sip:alice@pc33.atlanta.example.com>\r\n\
Content-Type: application/sdp\r\n\
Content-Length: 4\r\n\
\r\n\
v=0\n";

#[test]
fn framer_any_split_and_keepalives() {
    let mut stream = Vec::new();
    stream.extend_from_slice(b"\r\n\r\n");
    stream.extend_from_slice(INVITE);
    stream.extend_from_slice(b"\r\n");
    stream.extend_from_slice(INVITE);
    for split in 1..40 {
        let mut f = Framer::default();
        let mut frames = Vec::new();
        for chunk in stream.chunks(split) {
            f.push(chunk).unwrap();
            while let Some(fr) = f.next_frame().unwrap() {
                frames.push(fr);
            }
        }
        let kinds: Vec<&str> = frames
            .iter()
            .map(|f| match f {
                Frame::Ping => "ping",
                Frame::Pong => "pong",
                Frame::Message(_) => "msg",
            })
            .collect();
        assert_eq!(kinds, ["ping", "msg", "pong", "msg"], "split {split}");
        let Frame::Message(m) = &frames[3] else {
            unreachable!()
        };
        assert_eq!(m.bytes().as_ref(), INVITE);
        assert_eq!(f.buffered(), 0);
    }
}

#[test]
fn framer_errors_and_limits() {
    let mut f = Framer::default();
    f.push(b"NOT A SIP LINE\r\n").unwrap();
    assert!(f.next_frame().is_err());

    let mut f = Framer::default();
    f.push(b"OPTIONS sip:a@b.c SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK1\r\n\r\n")
        .unwrap();
    assert_eq!(
        f.next_frame().unwrap_err().kind,
        ErrorKind::MissingContentLength
    );

    let cfg = ParserConfig {
        limits: Limits {
            max_message_size: 1024,
            ..Limits::default()
        },
        ..Default::default()
    };
    let mut f = Framer::new(cfg);
    f.push(b"OPTIONS sip:a@b.c SIP/2.0\r\n").unwrap();
    let mut err = None;
    for _ in 0..200 {
        if let Err(e) = f
            .push(b"X-Filler: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n")
            .and_then(|_| f.next_frame().map(|_| ()))
        {
            err = Some(e);
            break;
        }
    }
    assert_eq!(
        err.expect("an unbounded header section is refused").kind,
        ErrorKind::MessageTooLarge
    );
}

#[test]
fn stream_parse_partial_and_limits() {
    for cut in 0..INVITE.len() {
        assert!(
            matches!(parse(&INVITE[..cut]), Ok(Status::Partial(_))),
            "cut at {cut}"
        );
    }
    let (m, used) = parse(INVITE).unwrap().complete().unwrap();
    assert_eq!(used, INVITE.len());
    assert_eq!(m.body(), b"v=0\n");

    let lim = |l: Limits| ParserConfig {
        limits: l,
        ..Default::default()
    };
    let e = lim(Limits {
        max_headers: 5,
        ..Limits::default()
    })
    .parse_datagram(INVITE)
    .unwrap_err();
    assert_eq!(e.kind, ErrorKind::TooManyHeaders);
    let e = lim(Limits {
        max_header_len: 20,
        ..Limits::default()
    })
    .parse_datagram(INVITE)
    .unwrap_err();
    assert_eq!(
        (e.kind, e.header),
        (ErrorKind::HeaderTooLong, Some(HeaderName::Via))
    );
    let e = lim(Limits {
        max_uri_len: 10,
        ..Limits::default()
    })
    .parse_datagram(INVITE)
    .unwrap_err();
    assert_eq!(e.kind, ErrorKind::UriTooLong);
    let e = lim(Limits {
        max_body_size: 3,
        ..Limits::default()
    })
    .parse_datagram(INVITE)
    .unwrap_err();
    assert_eq!(e.kind, ErrorKind::BodyTooLarge);
    let e = lim(Limits {
        max_message_size: 100,
        ..Limits::default()
    })
    .parse_datagram(INVITE)
    .unwrap_err();
    assert_eq!(e.kind, ErrorKind::MessageTooLarge);
}

#[test]
fn errors_say_where() {
    let bad = b"INVITE sip:a@b.c SIP/2.0\r\nVia: SIP/2.0/UDP h\r\nBad Header: x\r\n\r\n";
    let e = parse_datagram(bad).unwrap_err();
    assert_eq!((e.kind, e.offset), (ErrorKind::HeaderName, 49));
    let bad = b"INVITE sip:a@b.c SIP/2.0\r\nVia: SIP/2.0/UDP h\rX\r\n\r\n";
    assert_eq!(parse_datagram(bad).unwrap_err().kind, ErrorKind::BareCr);
    let bad = b"INVITE sip:a@b.c SIP/2.0\nVia: SIP/2.0/UDP h\n\n";
    assert_eq!(parse_datagram(bad).unwrap_err().kind, ErrorKind::BareLf);
    let lenient = ParserConfig {
        allow_lf_line_endings: true,
        ..Default::default()
    };
    assert_eq!(
        lenient.parse_datagram(bad).unwrap().header(HeaderName::Via),
        Some("SIP/2.0/UDP h")
    );
    let bad = b"INVITE sip:a@b.c SIP/2.0\r\nSubject: caf\xc3\r\n\r\n";
    let e = parse_datagram(bad).unwrap_err();
    assert_eq!(
        (e.kind, e.header),
        (ErrorKind::HeaderValue, Some(HeaderName::Subject))
    );
    let m = parse_datagram(
        b"INVITE sip:a@b.c SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1;;x\r\n\r\n",
    )
    .unwrap();
    let e = m.top_via().unwrap_err();
    assert_eq!(e.header, Some(HeaderName::Via));
    assert!(
        e.offset > 26 && e.offset < 70,
        "offset {} points into the Via value",
        e.offset
    );
    assert_eq!(parse_datagram(b"").unwrap_err().kind, ErrorKind::Empty);
}

#[test]
fn edit_splices_like_a_proxy() {
    let m = parse_datagram(INVITE).unwrap();
    assert_eq!(m.edit().to_vec(), INVITE);
    let mut e = m.edit();
    e.push_via("SIP/2.0/UDP p1.example.com;branch=z9hG4bK2d4790.1");
    assert_eq!(e.pop_route().as_deref(), Some("<sip:p1.example.com;lr>"));
    e.push_record_route("<sip:p1.example.com;lr>");
    assert_eq!(e.decrement_max_forwards().unwrap(), 69);
    e.remove(HeaderName::Timestamp);
    e.set_request_uri("sip:bob@192.0.2.4");
    let out = e.to_vec();
    let f = parse_datagram(&out).unwrap();
    assert_eq!(f.request_uri_str(), Some("sip:bob@192.0.2.4"));
    let vias: Vec<_> = f
        .via()
        .map(|v| v.unwrap().branch().unwrap().to_owned())
        .collect();
    assert_eq!(vias, ["z9hG4bK2d4790.1", "z9hG4bK776asdhds"]);
    assert_eq!(f.header(HeaderName::Route), Some("<sip:p2.example.com;lr>"));
    assert_eq!(f.headers_of(HeaderName::RecordRoute).count(), 2);
    assert_eq!(f.max_forwards().unwrap(), Some(69));
    assert!(!f.has(HeaderName::Timestamp));
    // untouched lines are byte-identical
    for name in [
        HeaderName::To,
        HeaderName::From,
        HeaderName::CallId,
        HeaderName::Contact,
    ] {
        assert_eq!(f.header(name), m.header(name));
    }
    // new body: Content-Type and Content-Length follow
    let mut e = m.edit();
    e.set_body(&b"\x01\x02\x03"[..], Some("application/vnd.3gpp.sms"));
    let out = e.to_vec();
    let b = parse_datagram(&out).unwrap();
    assert_eq!(b.body(), b"\x01\x02\x03");
    assert_eq!(b.content_length(), Some(3));
    assert_eq!(
        b.header(HeaderName::ContentType),
        Some("application/vnd.3gpp.sms")
    );
    assert_eq!(b.headers_of(HeaderName::ContentLength).count(), 1);
    // a response: pop our Via
    let r = ResponseBuilder::from_request(&m, 180).build().unwrap();
    let r = r.as_message();
    let mut e = r.edit();
    e.push_via("SIP/2.0/UDP p1.example.com;branch=z9hG4bK2d4790.1");
    assert_eq!(
        e.pop_via().as_deref(),
        Some("SIP/2.0/UDP p1.example.com;branch=z9hG4bK2d4790.1")
    );
    assert_eq!(e.to_vec(), r.as_bytes());
}

#[test]
fn response_from_request_rfc3261_8_2_6() {
    let m = parse_datagram(INVITE).unwrap();
    let trying = ResponseBuilder::from_request(&m, 100).build().unwrap();
    let t = trying.as_message();
    assert_eq!(t.status(), Some(100));
    assert_eq!(t.reason(), Some("Trying"));
    assert_eq!(t.to().unwrap().unwrap().tag(), None, "no tag on 100");
    assert_eq!(
        t.header(HeaderName::Timestamp),
        Some("54"),
        "Timestamp copied into 100"
    );
    let ok = ResponseBuilder::from_request(&m, 200)
        .header("Contact", "<sip:bob@192.0.2.4>")
        .build()
        .unwrap();
    let o = ok.as_message();
    for name in [
        HeaderName::Via,
        HeaderName::From,
        HeaderName::CallId,
        HeaderName::CSeq,
    ] {
        assert_eq!(o.header(name), m.header(name));
    }
    let tag = o.to().unwrap().unwrap().tag().unwrap().to_owned();
    assert!(!tag.is_empty());
    assert_eq!(
        o.header(HeaderName::RecordRoute),
        m.header(HeaderName::RecordRoute),
        "dialog-creating 2xx"
    );
    // the same request gets the same tag (retransmissions), a chosen tag is honoured
    let again = ResponseBuilder::from_request(&m, 200).build().unwrap();
    assert_eq!(
        again.as_message().to().unwrap().unwrap().tag(),
        Some(tag.as_str())
    );
    let chosen = ResponseBuilder::from_request_with_tag(&m, 486, Some("abc"))
        .build()
        .unwrap();
    assert_eq!(
        chosen.as_message().to().unwrap().unwrap().tag(),
        Some("abc")
    );
    assert!(validate(&o, &ValidationConfig::default()).is_ok());
}

#[test]
fn request_builder_and_owned() {
    let body = vec![0x00u8, 0x01, 0x00, 0xff];
    let msg = RequestBuilder::new(Method::Message, "tel:+447700900123")
        .header("Via", "SIP/2.0/TCP 192.0.2.1:5060;branch=z9hG4bK-9")
        .header("Max-Forwards", 70)
        .header("From", "<sip:alice@ims.example.com>;tag=a1")
        .header("To", "<tel:+447700900123>")
        .header("Call-ID", "c9@192.0.2.1")
        .header("CSeq", "7 MESSAGE")
        .body("application/vnd.3gpp.sms", body.clone())
        .build()
        .unwrap();
    let m = msg.as_message();
    assert_eq!(m.method(), Some(Method::Message));
    assert_eq!(m.body(), body.as_slice());
    assert_eq!(msg.body_bytes(), Bytes::from(body));
    assert!(validate(&m, &ValidationConfig::default()).is_ok());
    let copy = OwnedMessage::parse_datagram(msg.bytes().clone()).unwrap();
    assert_eq!(copy.as_message().cseq().unwrap().unwrap().seq, 7);
    assert_eq!(m.to_owned_message().bytes(), msg.bytes());
}

#[test]
fn multipart_limits_and_nesting() {
    let inner = multipart::Builder::new("related", "in")
        .part("application/sdp", &[], b"v=0\r\n")
        .build();
    let outer = multipart::Builder::new("mixed", "out")
        .part(&inner.0, &[], &inner.1)
        .part(
            "application/resource-lists+xml",
            &[("Content-Disposition", "recipient-list")],
            b"<x/>",
        )
        .build();
    let lim = Limits::default();
    let parts = multipart::parse(&outer.1, "out", &lim).unwrap();
    assert_eq!(parts.len(), 2);
    let nested = parts[0].parts(&lim, 1).unwrap();
    assert_eq!(nested[0].body, b"v=0\r\n");
    let shallow = Limits {
        max_multipart_depth: 1,
        ..lim
    };
    assert_eq!(
        parts[0].parts(&shallow, 1).unwrap_err().kind,
        ErrorKind::MultipartTooDeep
    );
    let few = Limits {
        max_multipart_parts: 1,
        ..lim
    };
    assert_eq!(
        multipart::parse(&outer.1, "out", &few).unwrap_err().kind,
        ErrorKind::TooManyParts
    );
    assert_eq!(
        multipart::parse(b"no delimiter here", "out", &lim)
            .unwrap_err()
            .kind,
        ErrorKind::Multipart
    );
    assert!(multipart::parse(
        b"--out\r\nContent-Type: text/plain\r\n\r\nunterminated",
        "out",
        &lim
    )
    .is_err());
    // a message carrying it
    let msg = RequestBuilder::new(Method::Invite, "sip:conf@example.com")
        .header("Via", "SIP/2.0/UDP h;branch=z9hG4bK1")
        .header("From", "<sip:a@example.com>;tag=1")
        .header("To", "<sip:conf@example.com>")
        .header("Call-ID", "mp1")
        .header("CSeq", "1 INVITE")
        .body(&outer.0, outer.1.clone())
        .build()
        .unwrap();
    let parts = msg.as_message().multipart(&lim).unwrap().unwrap();
    assert_eq!(
        parts[1].header("Content-Disposition"),
        Some("recipient-list")
    );
}

#[test]
fn validate_more() {
    let m = parse_datagram(INVITE).unwrap();
    let cfg = ValidationConfig {
        max_message_size: Some(100),
        ..Default::default()
    };
    assert_eq!(validate(&m, &cfg).unwrap_err().status, 513);
    let cfg = ValidationConfig {
        methods: Some(vec!["OPTIONS".into()]),
        ..Default::default()
    };
    assert_eq!(validate(&m, &cfg).unwrap_err().status, 405);
    let star = b"REGISTER sip:example.com SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\n\
To: <sip:a@example.com>\r\nFrom: <sip:a@example.com>;tag=1\r\nCall-ID: s1\r\nCSeq: 2 REGISTER\r\n\
Contact: *\r\nExpires: 0\r\nContent-Length: 0\r\n\r\n";
    let s = parse_datagram(star).unwrap();
    assert!(validate(&s, &ValidationConfig::default()).is_ok());
    let bad = String::from_utf8_lossy(star).replace("Expires: 0", "Expires: 60");
    let s = parse_datagram(bad.as_bytes()).unwrap();
    assert_eq!(
        validate(&s, &ValidationConfig::default())
            .unwrap_err()
            .status,
        400
    );
    let ctl = b"OPTIONS sip:a@example.com SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\n\
To: <sip:a@example.com>\r\nFrom: <sip:a@example.com>;tag=1\r\nCall-ID: s1\r\nCSeq: 2 OPTIONS\r\n\
Subject: a\x01b\r\nContent-Length: 0\r\n\r\n";
    let c = parse_datagram(ctl).unwrap();
    let r = validate(&c, &ValidationConfig::default()).unwrap_err();
    assert_eq!(
        (r.status, r.error.unwrap().header),
        (400, Some(HeaderName::Subject))
    );
    assert!(r
        .warning("proxy.example.com")
        .starts_with("399 proxy.example.com \""));
}

#[test]
fn framer_client_sees_pongs_at_once() {
    let mut server = Framer::default();
    server.push(b"\r\n").unwrap();
    assert!(
        server.next_frame().unwrap().is_none(),
        "a server waits: this may be half a ping"
    );
    server.push(b"\r\n").unwrap();
    assert!(matches!(server.next_frame().unwrap(), Some(Frame::Ping)));
    let mut client = Framer::client(ParserConfig::default());
    client.push(b"\r\n").unwrap();
    assert!(matches!(client.next_frame().unwrap(), Some(Frame::Pong)));
}

#[test]
fn builders_refuse_header_injection_and_tags_need_values() {
    let b = || {
        RequestBuilder::new(Method::Options, "sip:a@example.com")
            .header("Via", "SIP/2.0/UDP h;branch=z9hG4bK1")
            .header("From", "<sip:b@example.com>;tag=1")
            .header("To", "<sip:a@example.com>")
            .header("CSeq", "1 OPTIONS")
    };
    let e = b()
        .header("Call-ID", "x\r\nContact: <sip:evil@x>")
        .build()
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::HeaderValue);
    assert_eq!(
        b().header("Call-ID", "x\nContact: <sip:evil@x>")
            .build()
            .unwrap_err()
            .kind,
        ErrorKind::HeaderValue
    );
    assert_eq!(
        b().header("Bad Name", "x").build().unwrap_err().kind,
        ErrorKind::HeaderName
    );
    // a fold is still a legal way to continue a value
    let ok = b()
        .header("Call-ID", "x")
        .header("Subject", "one\r\n two")
        .build()
        .unwrap();
    assert_eq!(
        ok.as_message().header(HeaderName::Subject),
        Some("one\r\n two")
    );

    let m = parse_datagram(
        b"OPTIONS sip:a@example.com SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\n\
From: <sip:b@example.com>;tag\r\nTo: <sip:a@example.com>\r\nCall-ID: t1\r\nCSeq: 1 OPTIONS\r\n\r\n",
    )
    .unwrap();
    assert!(m.from().is_err());
    assert_eq!(
        validate(&m, &ValidationConfig::default())
            .unwrap_err()
            .status,
        400
    );
}

#[test]
fn param_errors_point_at_the_parameter() {
    let raw = b"OPTIONS sip:a@example.com SIP/2.0\r\nVia: SIP/2.0/UDP h.example.com;ttl=999;branch=z9hG4bKx\r\n\
Contact: <sip:x@y.example.com>;q=5\r\n\r\n";
    let m = parse_datagram(raw).unwrap();
    let text = std::str::from_utf8(raw).unwrap();
    let e = m.top_via().unwrap_err();
    assert_eq!(e.offset, text.find("ttl=999").unwrap());
    let e = m.contacts().next().unwrap().unwrap_err();
    assert_eq!(
        (e.offset, e.header),
        (text.find("q=5").unwrap(), Some(HeaderName::Contact))
    );
    let mp = b"MESSAGE sip:a@example.com SIP/2.0\r\nContent-Type: multipart/mixed\r\nContent-Length: 4\r\n\r\nabcd";
    let m = parse_datagram(mp).unwrap();
    let e = m.multipart(&Limits::default()).unwrap_err();
    assert_eq!((e.header, e.offset), (Some(HeaderName::ContentType), 49));
    let mp = b"MESSAGE sip:a@example.com SIP/2.0\r\nContent-Type: multipart/mixed;boundary=b1\r\nContent-Length: 31\r\n\r\n--b1\r\nbad header\r\n\r\nx\r\n--b1--\r\n";
    let m = parse_datagram(mp).unwrap();
    let e = m.multipart(&Limits::default()).unwrap_err();
    assert!(
        e.offset > m.body_offset(),
        "offset {} counts from the message",
        e.offset
    );
}

#[test]
fn framer_fuzz_findings() {
    // LF-tolerant framing: the last header line ends in LF, the empty line in CRLF
    let cfg = ParserConfig {
        allow_lf_line_endings: true,
        ..Default::default()
    };
    let msg = b"OPTIONS sip:a@b SIP/2.0\nContent-Length: 0\n\r\n";
    let mut f = Framer::new(cfg);
    f.push(msg).unwrap();
    assert!(matches!(f.next_frame(), Ok(Some(Frame::Message(_)))));
    // a CRLF followed by "\r" and something other than "\n" is a lone CRLF, whatever the split
    for eager in [false, true] {
        let mk = || {
            if eager {
                Framer::client(ParserConfig::default())
            } else {
                Framer::default()
            }
        };
        let mut whole = mk();
        whole.push(b"\r\n\rA\n").unwrap();
        assert!(matches!(whole.next_frame(), Ok(Some(Frame::Pong))));
        assert_eq!(whole.next_frame().unwrap_err().kind, ErrorKind::BareCr);
    }
}

/// The word-at-a-time recognition of `known-name:` and the general name path (taken when there is
/// whitespace before the colon, or too few bytes left) give the same header: every known spelling,
/// in three cases, both ways, with the line at the very end of the header section too.
#[test]
fn header_name_fast_and_general_paths_agree() {
    let names = [
        "Accept",
        "Accept-Contact",
        "a",
        "Allow-Events",
        "u",
        "Authentication-Info",
        "Call-ID",
        "i",
        "Contact",
        "m",
        "Content-Encoding",
        "e",
        "Content-Type",
        "c",
        "CSeq",
        "Event",
        "o",
        "From",
        "f",
        "Identity",
        "y",
        "Max-Forwards",
        "MIME-Version",
        "P-Access-Network-Info",
        "P-Asserted-Identity",
        "P-Charging-Function-Addresses",
        "P-Charging-Vector",
        "P-Visited-Network-ID",
        "Record-Route",
        "Refer-To",
        "r",
        "Referred-By",
        "b",
        "Reject-Contact",
        "j",
        "Request-Disposition",
        "d",
        "Security-Verify",
        "Session-Expires",
        "x",
        "SIP-If-Match",
        "Subject",
        "s",
        "Supported",
        "k",
        "To",
        "t",
        "Via",
        "v",
        "WWW-Authenticate",
        "X-Unknown-Header",
        "P-Early-Media",
    ];
    for n in names {
        for name in [
            n.to_string(),
            n.to_ascii_lowercase(),
            n.to_ascii_uppercase(),
        ] {
            let want = HeaderName::from_bytes(name.as_bytes());
            for sep in [": ", ":", " : ", "\t:\t"] {
                for last in [false, true] {
                    let line = format!("{name}{sep}some value 1\r\n");
                    let msg = if last {
                        format!("SIP/2.0 200 OK\r\nContent-Length: 0\r\n{line}\r\n")
                    } else {
                        format!("SIP/2.0 200 OK\r\n{line}Content-Length: 0\r\n\r\n")
                    };
                    let m = parse_datagram(msg.as_bytes()).expect(&msg);
                    let h = m
                        .headers()
                        .find(|h| h.raw_name() == name)
                        .unwrap_or_else(|| panic!("{msg:?}"));
                    assert_eq!(h.name(), want, "{msg:?}");
                    assert_eq!(h.value(), "some value 1", "{msg:?}");
                    assert_eq!(m.header_count(), 2);
                }
            }
        }
    }
    // a CR inside a name is a bare CR, whichever path sees it
    for bad in [
        &b"SIP/2.0 200 OK\r\nCall\rID: x@h\r\nContent-Length: 0\r\n\r\n"[..],
        b"SIP/2.0 200 OK\r\nContent-Length: 0\r\nCall\rID: x@h\r\n\r\n",
        b"SIP/2.0 200 OK\r\nContent-Length: 0\r\nVia\r: x\r\n\r\n",
    ] {
        assert!(
            parse_datagram(bad).is_err(),
            "{:?}",
            String::from_utf8_lossy(bad)
        );
    }
}
