//! Oracle for the `sdp` fuzz target: [`session`].

use crate::sdp::{
    answer, hold, parse_with, resume, AnswerConfig, Attr, Codec, ConnectionBuf, Limits, LocalMedia,
    MediaBuilder, OriginBuf, ParserConfig, PreconditionState, Session,
};

fn roomy() -> ParserConfig {
    ParserConfig {
        limits: Limits {
            max_size: usize::MAX,
            max_lines: usize::MAX,
            max_line_len: usize::MAX,
            max_media: usize::MAX,
            max_attributes: usize::MAX,
            max_fields: usize::MAX,
        },
        ..ParserConfig::default()
    }
}

/// Parses `data` as a session description with the strict and the any-order configuration and,
/// when it parses, checks for every input:
///
/// - the view writes back exactly `data`;
/// - every error names a line and offset inside the input;
/// - a typed attribute's `Display` output parses again to the same text;
/// - the owned copy ([`Session::to_builder`]) writes text that parses (strict order) to an equal
///   copy;
/// - the precondition table of each media reads back equal after being written with
///   [`PreconditionState::apply`];
/// - [`answer`], [`hold`] and [`resume`] produce descriptions that parse, with one answered
///   media description per offered one.
pub fn session(data: &[u8]) {
    let strict = ParserConfig::default();
    let any_order = ParserConfig {
        allow_any_order: true,
        ..ParserConfig::default()
    };
    let mut strict_ok = false;
    for (i, cfg) in [strict, any_order].iter().enumerate() {
        match parse_with(data, cfg) {
            Ok(s) => {
                if i == 0 {
                    strict_ok = true;
                }
                check(&s, data);
            }
            Err(e) => {
                assert!(
                    !(i == 1 && strict_ok),
                    "any-order parsing rejected what strict accepted: {e}"
                );
                assert!(
                    e.offset <= data.len(),
                    "error offset {} past the end: {e}",
                    e.offset
                );
                let lines = data.iter().filter(|&&b| b == b'\n').count() + 1;
                assert!(e.line <= lines, "error line {} past the end: {e}", e.line);
                let _ = (e.to_string(), format!("{:?}", e.kind));
            }
        }
    }
}

fn check_attr(a: &crate::sdp::Attribute<'_>, len: usize) {
    match a.typed() {
        Ok(t) => {
            let shown = t.to_string();
            let (n, v) = match shown.split_once(':') {
                Some((n, v)) => (n, Some(v)),
                None => (shown.as_str(), None),
            };
            match Attr::parse(n, v) {
                Ok(again) => assert_eq!(again.to_string(), shown, "typed Display is not canonical"),
                Err(e) => panic!("{t:?} writes {shown:?}, which does not parse: {e}"),
            }
        }
        Err(e) => {
            assert_eq!(e.line, a.line(), "typed error on another line");
            assert!(e.offset < len);
        }
    }
}

fn check(s: &Session<'_>, data: &[u8]) {
    assert_eq!(
        s.as_str().as_bytes(),
        data,
        "view does not write back its input"
    );
    assert_eq!(s.to_string().as_bytes(), data);
    for a in &s.attributes {
        check_attr(a, data.len());
    }
    let _ = (
        s.direction(),
        s.origin.version(),
        s.connection.map(|c| (c.ip(), c.ttl(), c.count())),
    );
    for m in &s.media {
        for a in &m.attributes {
            check_attr(a, data.len());
        }
        let raw = m.as_str();
        assert!(
            raw.starts_with("m="),
            "media text does not start at its m= line"
        );
        let at = raw.as_ptr() as usize - s.as_str().as_ptr() as usize;
        assert!(at + raw.len() <= data.len(), "media text outside the input");
        let _ = (m.connection(), m.direction(), m.media_type(), m.is_rtp());
        let _ = (m.msrp_path(), m.accept_types(), m.max_size(), m.setup());
        let _ = (m.payload_types().count(), m.formats().count(), m.line());
        if let Ok(Some(pre)) = PreconditionState::from_media(m) {
            let _ = (
                pre.met(),
                pre.failed(),
                PreconditionState::confirmation_requested(&pre),
            );
            let mut mb = MediaBuilder::new("audio", 1, "RTP/AVP").format("0");
            pre.apply(&mut mb);
            let text = crate::sdp::SessionBuilder::new(OriginBuf::new("-", 1, 1, "a"))
                .media(mb)
                .build();
            let back = Session::parse_str(&text).expect("precondition lines parse");
            let again = PreconditionState::from_media(&back.media[0])
                .expect("precondition lines are valid")
                .expect("precondition lines present");
            assert_eq!(
                again, pre,
                "precondition table changed when written:\n{text}"
            );
        }
    }

    let roomy = roomy();
    let b = s.to_builder();
    let text = b.build();
    let again = match parse_with(text.as_bytes(), &roomy) {
        Ok(x) => x,
        Err(e) => panic!("builder output does not parse ({e}):\n{text}"),
    };
    assert_eq!(
        again.to_builder(),
        b,
        "builder output parses to another description"
    );

    let cfg = AnswerConfig {
        origin: OriginBuf::new("fuzz", 1, 1, "192.0.2.1"),
        connection: ConnectionBuf::new("192.0.2.1"),
        media: vec![
            LocalMedia::new("audio", 4000)
                .codec(Codec::new("AMR-WB", 16000))
                .codec(Codec::new("AMR", 8000).with_fmtp("octet-align=1; mode-set=0,2,7"))
                .codec(Codec::new("AMR", 8000).with_fmtp("mode-set=7"))
                .codec(Codec::new("PCMU", 8000))
                .codec(Codec::new("telephone-event", 16000))
                .codec(Codec::new("telephone-event", 8000).with_fmtp("0-15,70"))
                .ptime(20)
                .sdes(
                    "AES_CM_128_HMAC_SHA1_80",
                    "inline:MTIzNDU2Nzg5MDEyMzQ1Njc4OTAxMjM0NTY3ODkw",
                )
                .dtls("sha-256", "AB:CD")
                .ice(crate::sdp::IceConfig {
                    ufrag: "u".into(),
                    pwd: "p".into(),
                    options: None,
                    candidates: vec!["1 1 UDP 1 192.0.2.1 4000 typ host".into()],
                    lite: true,
                })
                .rtcp_mux()
                .bandwidth("AS", 64)
                .mirror_bandwidth(),
            LocalMedia::new("video", 4002)
                .codec(
                    Codec::new("H264", 90000)
                        .with_fmtp("profile-level-id=42e01f; packetization-mode=1"),
                )
                .codec(Codec::new("H263-1998", 90000)),
            LocalMedia::new("message", 2855).attr("path", "msrp://192.0.2.1:2855/f;tcp"),
        ],
        local_qos: Some(crate::sdp::PrecondDirection::None),
    };
    if let Ok(ans) = answer(s, &cfg) {
        let t = ans.build();
        match parse_with(t.as_bytes(), &roomy) {
            Ok(a) => {
                assert_eq!(a.media.len(), s.media.len(), "answer media count");
                // an answered RTP stream only uses offered payload types, and every a=fmtp
                // it writes is for one of them
                for (am, om) in a.media.iter().zip(&s.media) {
                    if am.port == 0 || !om.is_rtp() {
                        continue;
                    }
                    for f in am.formats() {
                        assert!(om.formats().any(|x| x == f), "format {f} not offered:\n{t}");
                    }
                    for x in am.attributes_named("fmtp") {
                        let fmt = x.value.and_then(|v| v.split(' ').next()).unwrap_or("");
                        assert!(am.formats().any(|f| f == fmt), "stray fmtp {fmt}:\n{t}");
                    }
                }
            }
            Err(e) => panic!("answer does not parse ({e}):\n{t}"),
        }
    }
    let mut h = b.clone();
    hold(&mut h);
    let held = h.build();
    if let Err(e) = parse_with(held.as_bytes(), &roomy) {
        panic!("held description does not parse ({e}):\n{held}");
    }
    resume(&mut h);
    let resumed = h.build();
    if let Err(e) = parse_with(resumed.as_bytes(), &roomy) {
        panic!("resumed description does not parse ({e}):\n{resumed}");
    }
}
