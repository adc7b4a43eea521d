//! ims-sdp against the SDP texts of the RFCs (typed in under `tests/vectors/sdp/`), the SDP bodies
//! of the SIP vectors (RFC 4475 / RFC 5118 torture messages, IMS and bench messages), and the
//! offer/answer, hold and precondition flows those RFCs describe.

use ims::sdp::{
    answer, hold_media, parse_with, AnswerConfig, Attr, BandwidthType, Codec, ConnectionBuf,
    Direction, ErrorKind, LocalMedia, MediaType, OriginBuf, ParserConfig, PrecondDirection,
    PreconditionState, Session, Setup, StatusType, Strength,
};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn vectors_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors")
}

/// The descriptions of one `tests/vectors/sdp/*.txt` file, label → CRLF text.
fn load(file: &str) -> BTreeMap<String, String> {
    let text = std::fs::read_to_string(vectors_dir().join("sdp").join(file)).unwrap();
    let mut out = BTreeMap::new();
    let mut cur: Option<(String, String)> = None;
    for line in text.lines() {
        if let Some(label) = line.strip_prefix("### ") {
            if let Some((l, t)) = cur.take() {
                out.insert(l, t);
            }
            cur = Some((label.to_owned(), String::new()));
        } else if line.starts_with("# ") || line.is_empty() {
            continue;
        } else if let Some((_, t)) = cur.as_mut() {
            t.push_str(line);
            t.push_str("\r\n");
        }
    }
    if let Some((l, t)) = cur.take() {
        out.insert(l, t);
    }
    assert!(!out.is_empty(), "{file}: no descriptions");
    out
}

fn get<'m>(m: &'m BTreeMap<String, String>, k: &str) -> &'m str {
    m.get(k).unwrap_or_else(|| panic!("no vector {k}"))
}

/// Parses, checks the byte-exact round trips, and returns the session.
fn parse_checked<'a>(label: &str, text: &'a str) -> Session<'a> {
    let s = Session::parse_str(text).unwrap_or_else(|e| panic!("{label}: {e}"));
    assert_eq!(
        s.to_string(),
        text,
        "{label}: view does not write back its input"
    );
    // written in RFC 8866 order with CRLF, so the owned copy writes the same bytes
    assert_eq!(
        s.to_builder().build(),
        text,
        "{label}: builder output differs from the input"
    );
    s
}

#[test]
fn rfc3264_section10_descriptions() {
    let v = load("rfc3264.txt");
    let mut n = 0;
    for (label, text) in &v {
        if label == "9-figure-1" {
            continue;
        }
        let s = parse_checked(label, text);
        assert_eq!(s.name, "", "{label}: s= is empty in RFC 3264 §10");
        assert_eq!(s.timings[0].start, 0);
        n += 1;
    }
    assert_eq!(n, 8);

    let offer = Session::parse_str(get(&v, "10.1-offer")).unwrap();
    assert_eq!(offer.origin.username, "alice");
    assert_eq!(offer.origin.version(), Some(2890844526));
    assert_eq!(offer.media.len(), 3);
    let kinds: Vec<_> = offer
        .media
        .iter()
        .map(|m| (m.media_type(), m.port))
        .collect();
    assert_eq!(
        kinds,
        [
            (MediaType::Audio, 49170),
            (MediaType::Video, 51372),
            (MediaType::Video, 53000)
        ]
    );
    for m in &offer.media {
        assert_eq!(m.connection().unwrap().address(), "host.anywhere.com");
        assert_eq!(m.direction(), Direction::SendRecv);
    }
    let second = Session::parse_str(get(&v, "10.1-second-offer")).unwrap();
    assert!(second.media[1].is_rejected());
    assert_eq!(second.media[3].direction(), Direction::RecvOnly);
    let Attr::Rtpmap(r) = second.media[3].attributes[0].typed().unwrap() else {
        panic!("rtpmap")
    };
    assert_eq!(
        (r.payload_type, r.encoding, r.clock_rate),
        (110, "telephone-events", 8000)
    );
}

#[test]
fn rfc3264_figure1_c_after_t_needs_any_order() {
    let v = load("rfc3264.txt");
    let text = get(&v, "9-figure-1");
    let e = Session::parse_str(text).unwrap_err();
    assert_eq!(e.kind, ErrorKind::OutOfOrder('c'));
    assert_eq!(e.line, 5, "{e}");
    let cfg = ParserConfig {
        allow_any_order: true,
        ..ParserConfig::default()
    };
    let s = parse_with(text.as_bytes(), &cfg).unwrap();
    assert_eq!(s.to_string(), text);
    assert_eq!(s.connection.unwrap().address(), "192.0.2.4");
    assert!(s.media.iter().all(|m| m.port == 0));
    assert_eq!(s.media[1].payload_types().collect::<Vec<_>>(), [31, 34]);
}

#[test]
fn rfc4317_descriptions() {
    let v = load("rfc4317.txt");
    assert_eq!(v.len(), 35);
    for (label, text) in &v {
        let s = parse_checked(label, text);
        // RFC 4317 §1: "the subject line (s=) contains a single space character"
        assert_eq!(s.name, " ", "{label}");
    }
    let a = Session::parse_str(get(&v, "2.8-answer")).unwrap();
    assert_eq!(
        a.media[0].connection().unwrap().address(),
        "host.biloxi.example.com"
    );
    assert_eq!(
        a.media[1].connection().unwrap().address(),
        "otherhost.biloxi.example.com"
    );
    let bh = Session::parse_str(get(&v, "5.2-offer")).unwrap();
    assert_eq!(
        bh.media[0].connection().unwrap().ip(),
        Some("0.0.0.0".parse().unwrap())
    );
    let no_media = Session::parse_str(get(&v, "5.1-offer")).unwrap();
    assert!(no_media.media.is_empty());
}

fn cfg(user: &str, id: u64, ver: u64, host: &str, media: Vec<LocalMedia>) -> AnswerConfig {
    AnswerConfig {
        origin: OriginBuf::new(user, id, ver, host),
        connection: ConnectionBuf::new(host),
        media,
        local_qos: None,
    }
}

fn local(media: &str, port: u16, codecs: &[(&str, u32)]) -> LocalMedia {
    let mut l = LocalMedia::new(media, port);
    for (n, r) in codecs {
        l = l.codec(Codec::new(n, *r));
    }
    l
}

/// `answer` reproduces the RFC's answers byte for byte where the RFC's answerer follows RFC 3264
/// §6.1 literally (offered payload type numbers, offered order, rejected streams without rtpmap).
#[test]
fn answers_match_the_rfc_examples() {
    let v3264 = load("rfc3264.txt");
    // RFC 3264 §10.1: Bob takes audio and the MPV video, rejects the H.261 video
    let offer = Session::parse_str(get(&v3264, "10.1-offer")).unwrap();
    let mut ans = answer(
        &offer,
        &cfg(
            "bob",
            2890844730,
            2890844730,
            "host.example.com",
            vec![
                local("audio", 49920, &[("PCMU", 8000)]),
                local("video", 53000, &[("MPV", 90000)]),
            ],
        ),
    )
    .unwrap();
    ans.name = String::new();
    assert_eq!(ans.build(), get(&v3264, "10.1-answer"));

    // RFC 3264 §10.2: an inactive offer of three codecs, Bob supports two
    let offer = Session::parse_str(get(&v3264, "10.2-offer")).unwrap();
    let mut ans = answer(
        &offer,
        &cfg(
            "bob",
            2890844730,
            2890844731,
            "host.example.com",
            vec![local("audio", 54344, &[("PCMU", 8000), ("G723", 8000)])],
        ),
    )
    .unwrap();
    ans.name = String::new();
    assert_eq!(ans.build(), get(&v3264, "10.2-answer"));
    // ... and the second exchange locks G.723 down, sendrecv
    let offer = Session::parse_str(get(&v3264, "10.2-second-offer")).unwrap();
    let mut ans = answer(
        &offer,
        &cfg(
            "bob",
            2890844730,
            2890844732,
            "host.example.com",
            vec![local("audio", 54344, &[("PCMU", 8000), ("G723", 8000)])],
        ),
    )
    .unwrap();
    ans.name = String::new();
    assert_eq!(ans.build(), get(&v3264, "10.2-second-answer"));

    let v = load("rfc4317.txt");
    let bob = |media| {
        let mut c = cfg(
            "bob",
            2808844564,
            2808844564,
            "host.biloxi.example.com",
            media,
        );
        c.origin.session_version = "2808844564".into();
        c
    };
    // RFC 4317 §2.1: PCMU and MPV accepted
    let offer = Session::parse_str(get(&v, "2.1-offer")).unwrap();
    let mut ans = answer(
        &offer,
        &bob(vec![
            local("audio", 49174, &[("PCMU", 8000)]),
            local("video", 49170, &[("MPV", 90000)]),
        ]),
    )
    .unwrap();
    ans.name = " ".into();
    assert_eq!(ans.build(), get(&v, "2.1-answer"));

    // RFC 4317 §2.4: two audio streams, the second a send-only tone stream answered recvonly
    let offer = Session::parse_str(get(&v, "2.4-offer")).unwrap();
    let mut ans = answer(
        &offer,
        &bob(vec![
            local("audio", 49172, &[("iLBC", 8000)]),
            local("audio", 49174, &[("telephone-event", 8000)]),
        ]),
    )
    .unwrap();
    ans.name = " ".into();
    assert_eq!(ans.build(), get(&v, "2.4-answer"));

    // RFC 4317 §2.6: the PCMU-only stream has nothing in common and is rejected, the second
    // stream gets the audio entry
    let offer = Session::parse_str(get(&v, "2.6-offer")).unwrap();
    let ans = answer(
        &offer,
        &bob(vec![local(
            "audio",
            49170,
            &[("iLBC", 8000), ("telephone-event", 8000)],
        )]),
    )
    .unwrap();
    let got = Session::parse_str(&ans.build()).unwrap().to_builder();
    let want = Session::parse_str(get(&v, "2.6-answer")).unwrap();
    assert_eq!(got.media.len(), 2);
    assert_eq!(
        (got.media[0].port, &got.media[0].formats[..]),
        (0, &["0".to_string()][..])
    );
    assert_eq!(got.media[1], want.to_builder().media[1]);
}

/// RFC 4317 §3.2: Bob holds the audio stream of his earlier answer, not the tone stream.
#[test]
fn hold_one_stream_rfc4317_3_2() {
    let v = load("rfc4317.txt");
    let mut b = Session::parse_str(get(&v, "3.2-answer"))
        .unwrap()
        .to_builder();
    let session_dir = b.direction();
    hold_media(&mut b.media[0], session_dir);
    b.origin.bump_version();
    assert_eq!(b.build(), get(&v, "3.2-second-offer"));
    // resuming gives back sendrecv (written explicitly now)
    ims::sdp::resume_media(&mut b.media[0], session_dir);
    let s = Session::parse_str(&b.build()).unwrap().to_builder();
    assert_eq!(s.media[0].own_direction(), Some(Direction::SendRecv));
    assert_eq!(s.media[1].own_direction(), Some(Direction::RecvOnly));
}

#[test]
fn hold_and_resume_whole_session() {
    let v = load("rfc4317.txt");
    let mut b = Session::parse_str(get(&v, "3.2-offer"))
        .unwrap()
        .to_builder();
    ims::sdp::hold(&mut b);
    let held = b.build();
    let s = Session::parse_str(&held).unwrap();
    assert_eq!(s.origin.session_version, "2890844527");
    // sendrecv → sendonly; sendonly stays sendonly (RFC 3264 §8.4)
    assert_eq!(s.media[0].direction(), Direction::SendOnly);
    assert_eq!(s.media[1].direction(), Direction::SendOnly);
    let mut b = s.to_builder();
    ims::sdp::resume(&mut b);
    let resumed = b.build();
    let s = Session::parse_str(&resumed).unwrap();
    assert_eq!(s.origin.session_version, "2890844528");
    assert_eq!(s.media[0].direction(), Direction::SendRecv);
    assert_eq!(s.media[1].direction(), Direction::SendRecv);
    // a recvonly stream goes inactive on hold
    let mut m = ims::sdp::MediaBuilder::new("audio", 1, "RTP/AVP").format("0");
    m.set_direction(Direction::RecvOnly);
    hold_media(&mut m, None);
    assert_eq!(m.own_direction(), Some(Direction::Inactive));
}

fn qos(s: &Session<'_>) -> PreconditionState {
    PreconditionState::from_media(&s.media[0]).unwrap().unwrap()
}

fn lines(st: &PreconditionState) -> Vec<String> {
    st.to_attributes("qos")
        .iter()
        .map(|a| a.to_string())
        .collect()
}

fn qos_lines(s: &Session<'_>) -> Vec<String> {
    s.media[0]
        .attributes
        .iter()
        .filter(|a| matches!(a.name, "curr" | "des" | "conf"))
        .map(|a| a.to_string())
        .collect()
}

/// RFC 3312 §5.1 end-to-end example: each side's lines follow from the other's.
#[test]
fn rfc3312_end_to_end_flow() {
    let v = load("rfc3312.txt");
    let s: Vec<Session<'_>> = ["e2e-sdp1", "e2e-sdp2", "e2e-sdp3", "e2e-sdp4"]
        .iter()
        .map(|l| parse_checked(l, get(&v, l)))
        .collect();
    let sdp1 = qos(&s[0]);
    assert!(!sdp1.met());
    assert_eq!(sdp1.e2e.unwrap().send.desired, Some(Strength::Mandatory));
    // B: knows its send direction from RSVP, asks A to confirm its recv direction
    let mut b = PreconditionState::from_peer(&sdp1);
    b.request_confirmation(StatusType::E2e, PrecondDirection::Recv);
    assert_eq!(lines(&b), qos_lines(&s[1]));
    // A: its send direction is reserved
    let sdp2 = qos(&s[1]);
    assert_eq!(
        PreconditionState::confirmation_requested(&sdp2),
        PrecondDirection::Send
    );
    let mut a = PreconditionState::from_peer(&sdp2);
    a.set_current(StatusType::E2e, PrecondDirection::Send);
    assert_eq!(lines(&a), qos_lines(&s[2]));
    assert!(!a.met());
    // B: A's send is B's recv; with its own send, both directions are reserved
    let mut b = PreconditionState::from_peer(&qos(&s[2]));
    assert_eq!(b.current(StatusType::E2e), PrecondDirection::Recv);
    b.set_current(StatusType::E2e, PrecondDirection::SendRecv);
    assert_eq!(lines(&b), qos_lines(&s[3]));
    assert!(b.met());
}

/// The segmented flow of TS 24.229 (INVITE → 183 → UPDATE → 200): the 183 comes from `answer`
/// itself, the rest from the precondition state.
#[test]
fn ts24229_segmented_flow() {
    let v = load("rfc3312.txt");
    let invite = parse_checked("segmented-invite", get(&v, "segmented-invite"));
    let mut c = cfg(
        "b",
        1,
        1,
        "192.0.2.4",
        vec![local("audio", 30000, &[("PCMU", 8000)])],
    );
    c.local_qos = Some(PrecondDirection::None);
    let ans = answer(&invite, &c).unwrap();
    let ans_text = ans.build();
    let ans = Session::parse_str(&ans_text).unwrap();
    let want = Session::parse_str(get(&v, "segmented-183")).unwrap();
    assert_eq!(qos_lines(&ans), qos_lines(&want));
    assert!(!qos(&ans).met());

    // the UE reserved its resources: UPDATE
    let mut ue = PreconditionState::from_peer(&qos(&want));
    assert_eq!(
        PreconditionState::confirmation_requested(&qos(&want)),
        PrecondDirection::SendRecv
    );
    ue.set_current(StatusType::Local, PrecondDirection::SendRecv);
    let update = Session::parse_str(get(&v, "segmented-update")).unwrap();
    assert_eq!(lines(&ue), qos_lines(&update));
    assert!(!ue.met());
    // the callee answers the UPDATE once its side is reserved too: 200
    let mut callee = PreconditionState::from_peer(&qos(&update));
    callee.set_current(StatusType::Local, PrecondDirection::SendRecv);
    let ok = Session::parse_str(get(&v, "segmented-200-update")).unwrap();
    assert_eq!(lines(&callee), qos_lines(&ok));
    assert!(callee.met(), "the callee may alert now");

    // the same 200 made with answer() and apply()
    let mut c2 = c.clone();
    c2.local_qos = Some(PrecondDirection::SendRecv);
    let b = answer(&update, &c2).unwrap();
    let b = Session::parse_str(&b.build()).unwrap().to_string();
    assert_eq!(qos_lines(&Session::parse_str(&b).unwrap()), qos_lines(&ok));
}

#[test]
fn msrp_descriptions() {
    let v = load("msrp.txt");
    for (label, text) in &v {
        let s = parse_checked(label, text);
        for m in &s.media {
            for a in m.typed_attributes() {
                let a = a.unwrap_or_else(|e| panic!("{label}: {e}"));
                assert!(!matches!(a, Attr::Other { .. }), "{label}: {a:?} not typed");
            }
        }
    }
    let offer = Session::parse_str(get(&v, "4975-offer")).unwrap();
    let m = &offer.media[0];
    assert_eq!((m.media_type(), m.proto), (MediaType::Message, "TCP/MSRP"));
    assert_eq!(m.formats().collect::<Vec<_>>(), ["*"]);
    let Attr::Path(p) = m.attribute("path").unwrap().typed().unwrap() else {
        panic!()
    };
    assert_eq!(
        p.last(),
        Some("msrp://alicepc.example.com:7777/iau39soe2843z;tcp")
    );
    let relay = Session::parse_str(get(&v, "4975-wrapped-relay")).unwrap();
    let m = &relay.media[0];
    let Attr::Path(p) = m.attribute("path").unwrap().typed().unwrap() else {
        panic!()
    };
    assert_eq!(p.iter().count(), 2);
    assert_eq!(p.first(), Some("msrps://relay.example.com:2855/asfd34;tcp"));
    let Attr::AcceptWrappedTypes(w) = m
        .attribute("accept-wrapped-types")
        .unwrap()
        .typed()
        .unwrap()
    else {
        panic!()
    };
    assert!(w.contains("image/gif") && !w.contains("video/mp4"));
    assert_eq!(
        m.attribute("max-size").unwrap().typed().unwrap(),
        Attr::MaxSize(131072)
    );
    let setup = Session::parse_str(get(&v, "6135-setup")).unwrap();
    let Attr::Setup(s) = setup.media[0].attribute("setup").unwrap().typed().unwrap() else {
        panic!()
    };
    assert_eq!((s, s.answer()), (Setup::ActPass, Setup::Active));

    let ft = Session::parse_str(get(&v, "5547-offer")).unwrap();
    let m = &ft.media[0];
    assert_eq!(m.info, Some("This is my latest picture"));
    assert_eq!(m.direction(), Direction::SendOnly);
    let Attr::FileSelector(fs) = m.attribute("file-selector").unwrap().typed().unwrap() else {
        panic!()
    };
    assert_eq!(fs.name, Some("My cool picture.jpg"));
    assert_eq!(fs.file_type, Some("image/jpeg"));
    assert_eq!(fs.size, Some(32349));
    assert_eq!(fs.hash.unwrap().0, "sha-1");
    let Attr::FileRange(r) = m.attribute("file-range").unwrap().typed().unwrap() else {
        panic!()
    };
    assert_eq!((r.start, r.stop), (1, Some(32349)));
    let Attr::FileDate(d) = m.attribute("file-date").unwrap().typed().unwrap() else {
        panic!()
    };
    assert_eq!(d.creation, Some("Mon, 15 May 2006 15:01:31 +0300"));

    // the IM server answers an MSRP offer: formats kept, setup answered, its own path added
    let c = AnswerConfig {
        origin: OriginBuf::new("ims", 7, 7, "192.0.2.9"),
        connection: ConnectionBuf::new("192.0.2.9"),
        media: vec![LocalMedia::new("message", 2855)
            .attr("accept-types", "text/plain")
            .attr("path", "msrp://192.0.2.9:2855/s1;tcp")],
        local_qos: None,
    };
    let ans = answer(&setup, &c).unwrap().build();
    let ans = Session::parse_str(&ans).unwrap();
    let m = &ans.media[0];
    assert_eq!((m.port, m.proto, m.formats_str()), (2855, "TCP/MSRP", "*"));
    assert_eq!(m.attribute("setup").unwrap().value, Some("active"));
    assert_eq!(
        m.attribute("path").unwrap().value,
        Some("msrp://192.0.2.9:2855/s1;tcp")
    );
}

/// The SDP bodies of the SIP vectors: every body that is SDP parses and writes back exactly,
/// except the two whose SIP framing cuts the body (checked to fail with the right error).
#[test]
fn sdp_in_sip_vectors() {
    let mut files = Vec::new();
    for dir in [
        "sip-torture",
        "sip-torture/rfc5118-archive",
        "ims",
        "sip-bench",
    ] {
        for e in std::fs::read_dir(vectors_dir().join(dir)).unwrap() {
            let p = e.unwrap().path();
            if p.is_file() && matches!(p.extension().and_then(|x| x.to_str()), Some("dat" | "sip"))
            {
                files.push(p);
            }
        }
    }
    files.sort();
    let mut parsed = 0;
    let mut lpc = 0;
    let mut by_name = BTreeMap::new();
    for p in &files {
        let bytes = std::fs::read(p).unwrap();
        if !bytes.windows(4).any(|w| w == b"\nv=0") {
            continue;
        }
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        // the body by SIP framing, else (SIP-level invalid messages) everything from v=0
        let body: Vec<u8> = match ims::sip::parse_datagram(&bytes) {
            Ok(m) => m.body().to_vec(),
            Err(_) => {
                let i = bytes.windows(4).position(|w| w == b"\nv=0").unwrap() + 1;
                bytes[i..].to_vec()
            }
        };
        match (name.as_str(), Session::parse(&body)) {
            ("dblreq.dat", Err(e)) => assert_eq!(e.kind, ErrorKind::Empty), // Content-Length: 0
            ("mismatch02.dat", Err(e)) => {
                // its body has no s= and no t= line
                assert_eq!((e.kind, e.line), (ErrorKind::Missing('s'), 4));
            }
            (_, Ok(s)) => {
                assert_eq!(s.as_str().as_bytes(), &body[..], "{name}");
                for m in &s.media {
                    for a in &m.attributes {
                        if let Err(e) = a.typed() {
                            // RFC 4475 writes `a=rtpmap:31 LPC` without the mandatory clock
                            // rate (RFC 8866 §6.6); the typed view says so, the line is kept
                            assert_eq!(a.value, Some("31 LPC"), "{name}: {e}");
                            assert_eq!(e.kind, ErrorKind::Syntax("clock rate"), "{name}");
                            assert_eq!(&body[e.offset..e.offset + 15], b"a=rtpmap:31 LPC");
                            lpc += 1;
                        }
                    }
                }
                parsed += 1;
                by_name.insert(
                    format!(
                        "{}/{name}",
                        p.parent().unwrap().file_name().unwrap().to_string_lossy()
                    ),
                    body.clone(),
                );
            }
            (_, Err(e)) => panic!("{name}: {e}"),
        }
    }
    assert!(parsed >= 25, "only {parsed} SDP bodies");
    assert!(lpc >= 10, "{lpc}");

    let body = &by_name["sip-torture/sdp01.dat"];
    let s = Session::parse(body).unwrap();
    assert_eq!(s.media[0].formats().collect::<Vec<_>>(), ["0", "12"]);
    assert_eq!(s.media[1].payload_types().collect::<Vec<_>>(), [31]);
    let e = s.media[1].attributes[0].typed().unwrap_err();
    assert_eq!((e.kind, e.line), (ErrorKind::Syntax("clock rate"), 8));

    for dir in ["sip-torture", "rfc5118-archive"] {
        let s = Session::parse(&by_name[&format!("{dir}/ipv6-in-sdp.dat")]).unwrap();
        assert_eq!(s.origin.addr_type, "IP6");
        assert_eq!(s.origin.session_id, "971731711378798081");
        let c = s.media[1].connection().unwrap();
        assert_eq!(
            (c.addr_type, c.ip()),
            ("IP6", Some("2001:db8::20".parse().unwrap()))
        );
        assert_eq!(
            (s.timings[0].start, s.timings[0].stop),
            (3338481189, 3370017201)
        );

        let s = Session::parse(&by_name[&format!("{dir}/mult-ip-in-sdp.dat")]).unwrap();
        assert!(s.connection.is_none());
        assert_eq!(s.name, "");
        let c0 = s.media[0].connection().unwrap();
        let c1 = s.media[1].connection().unwrap();
        assert_eq!((c0.addr_type, c0.address()), ("IP4", "192.0.2.1"));
        assert_eq!((c1.addr_type, c1.address()), ("IP6", "2001:db8::1"));
    }

    let s = Session::parse(&by_name["ims/invite_183.sip"]).unwrap();
    let m = &s.media[0];
    assert_eq!(m.bandwidth(BandwidthType::As), Some(49));
    let q = PreconditionState::from_media(m).unwrap().unwrap();
    assert_eq!(q.current(StatusType::Local), PrecondDirection::None);
    assert!(q.remote.unwrap().recv.confirm);
    assert!(!q.met());
}

/// The MMTel offer of the bench: everything a P-CSCF needs for Rx.
#[test]
fn mmtel_offer_accessors() {
    let text = std::fs::read_to_string(vectors_dir().join("sdp/mmtel_offer.sdp")).unwrap();
    let s = parse_checked("mmtel", &text);
    assert_eq!(s.bandwidth(BandwidthType::As), Some(830));
    let (a, v) = (&s.media[0], &s.media[1]);
    assert_eq!(
        a.connection().unwrap().ip(),
        Some("2001:db8:10::77".parse().unwrap())
    );
    assert_eq!(
        [BandwidthType::As, BandwidthType::Rs, BandwidthType::Rr].map(|t| a.bandwidth(t)),
        [Some(49), Some(612), Some(1837)]
    );
    assert_eq!(v.bandwidth(BandwidthType::As), Some(770));
    assert_eq!(v.proto, "RTP/AVPF");
    let codecs: Vec<_> = a
        .typed_attributes()
        .filter_map(|x| match x.unwrap() {
            Attr::Rtpmap(r) => Some(r.encoding),
            _ => None,
        })
        .collect();
    assert_eq!(
        codecs,
        [
            "AMR-WB",
            "AMR-WB",
            "AMR",
            "AMR",
            "telephone-event",
            "telephone-event"
        ]
    );
    let Attr::Fmtp(f) = v.attributes[1].typed().unwrap() else {
        panic!()
    };
    assert_eq!(f.get("packetization-mode"), Some("1"));
    assert_eq!(f.get("profile-level-id"), Some("42e01f"));
    let q = PreconditionState::from_media(a).unwrap().unwrap();
    assert_eq!(q.remote.unwrap().send.desired, Some(Strength::Optional));
    // unknown attributes are kept, in order
    let unknown: Vec<_> = v
        .attributes
        .iter()
        .filter(|x| matches!(x.typed(), Ok(Attr::Other { .. })))
        .map(|x| x.to_string())
        .collect();
    assert_eq!(
        unknown,
        [
            "rtcp-fb:* nack",
            "rtcp-fb:* nack pli",
            "rtcp-fb:* ccm fir",
            "extmap:4 urn:3gpp:video-orientation"
        ]
    );
}
