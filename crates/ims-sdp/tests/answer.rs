//! `answer()` negotiation beyond codecs: ptime, bandwidth, SDES crypto (RFC 4568), DTLS setup
//! and fingerprint (RFC 5763 / RFC 4145), ICE (RFC 8839), rtcp-mux (RFC 5761), payload-type
//! numbers (RFC 3264 §6.1) and opaque precondition types. The offers are built here for each
//! rule (the rule's spec text is quoted at each test); keys and fingerprints are sample values.

use ims_sdp::{
    answer, AnswerConfig, Codec, ConnectionBuf, IceConfig, LocalMedia, OriginBuf, PrecondDirection,
    Session, SessionBuilder, Setup,
};

fn cfg(media: Vec<LocalMedia>) -> AnswerConfig {
    AnswerConfig {
        origin: OriginBuf::new("bob", 2808844564, 2808844564, "192.0.2.2"),
        connection: ConnectionBuf::new("192.0.2.2"),
        media,
        local_qos: None,
    }
}

fn offer(media: &str) -> String {
    format!(
        "v=0\r\no=alice 2890844526 2890844526 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n{media}"
    )
}

fn answer_text(offer_text: &str, media: Vec<LocalMedia>) -> (SessionBuilder, String) {
    let o = Session::parse_str(offer_text).unwrap();
    let a = answer(&o, &cfg(media)).unwrap();
    let text = a.build();
    // every answer parses back
    Session::parse_str(&text).unwrap();
    (a, text)
}

fn lines(text: &str) -> Vec<&str> {
    text.split("\r\n").filter(|l| !l.is_empty()).collect()
}

fn media_lines(text: &str, index: usize) -> Vec<&str> {
    let all = lines(text);
    let starts: Vec<usize> = all
        .iter()
        .enumerate()
        .filter(|(_, l)| l.starts_with("m="))
        .map(|(i, _)| i)
        .collect();
    let end = starts.get(index + 1).copied().unwrap_or(all.len());
    all[starts[index]..end].to_vec()
}

fn amr_wb() -> LocalMedia {
    LocalMedia::new("audio", 50000)
        .codec(Codec::new("AMR-WB", 16000))
        .codec(Codec::new("telephone-event", 16000))
}

/// RFC 3264 §6.1: "if a particular codec was referenced with a specific payload type number in
/// the offer, that same payload type number SHOULD be used for that codec in the answer"; and
/// "the answerer MAY include a non-zero ptime attribute … indicat[ing] the packetization
/// interval the answerer would like to receive". maxptime caps it.
#[test]
fn payload_numbers_and_ptime() {
    let o = offer(
        "m=audio 49170 RTP/AVP 97 98 101\r\na=rtpmap:97 AMR/8000\r\na=rtpmap:98 AMR-WB/16000\r\n\
         a=fmtp:98 mode-change-capability=2; max-red=0\r\na=rtpmap:101 telephone-event/16000\r\n\
         a=fmtp:101 0-15\r\na=ptime:20\r\na=maxptime:40\r\n",
    );
    let (_, text) = answer_text(&o, vec![amr_wb().ptime(60)]);
    assert_eq!(
        media_lines(&text, 0),
        [
            "m=audio 50000 RTP/AVP 98 101",
            "a=rtpmap:98 AMR-WB/16000",
            "a=fmtp:98 mode-change-capability=2; max-red=0",
            "a=rtpmap:101 telephone-event/16000",
            "a=fmtp:101 0-15",
            "a=ptime:40", // own 60 ms, capped at the offer's maxptime
        ]
    );
    // own ptime below maxptime is kept; no ptime configured → none written
    let (_, text) = answer_text(&o, vec![amr_wb().ptime(20)]);
    assert!(media_lines(&text, 0).contains(&"a=ptime:20"));
    let (_, text) = answer_text(&o, vec![amr_wb()]);
    assert!(!text.contains("a=ptime"));
    // a codec this side would number 96 is still answered as 98
    let (_, text) = answer_text(
        &offer("m=audio 49170 RTP/AVP 98\r\na=rtpmap:98 AMR-WB/16000\r\n"),
        vec![LocalMedia::new("audio", 50000).codec(Codec::new("amr-wb", 16000))],
    );
    assert_eq!(media_lines(&text, 0)[0], "m=audio 50000 RTP/AVP 98");
}

/// Own bandwidth vs mirroring the offer's b= lines.
#[test]
fn bandwidth_policies() {
    let o = offer(
        "m=audio 49170 RTP/AVP 98\r\nb=AS:41\r\nb=TIAS:38000\r\nb=RS:600\r\na=rtpmap:98 AMR-WB/16000\r\n",
    );
    let (_, own) = answer_text(&o, vec![amr_wb().bandwidth("AS", 30)]);
    let m = media_lines(&own, 0);
    assert_eq!(&m[1..2], ["b=AS:30"]);
    assert!(!own.contains("TIAS") && !own.contains("b=RS"));
    let (_, mirror) = answer_text(
        &o,
        vec![amr_wb()
            .bandwidth("AS", 30)
            .bandwidth("RR", 2000)
            .mirror_bandwidth()],
    );
    let m = media_lines(&mirror, 0);
    assert_eq!(
        &m[1..5],
        ["b=AS:30", "b=TIAS:38000", "b=RS:600", "b=RR:2000"]
    );
}

const KEY_A1: &str = "inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|2^20|1:32";
const KEY_A2: &str = "inline:NzB4d1BINUAvLEw6UzF3WSJ+PSdFcGdUJShpX1Zj|2^20|1:32";
const KEY_B: &str = "inline:d0RmdmcmVCspeEc3QGZiNWpVLFJhQX1cfHAwJSoj|2^20|1:32";

/// RFC 4568 §7.1.1 (offerer lists crypto attributes in preference order) and §7.1.2: "the
/// answerer … select[s] one of the crypto attributes … the answer MUST contain … the same tag"
/// with the answerer's own key; a stream it cannot key is rejected.
#[test]
fn sdes_first_supported_suite_same_tag_own_key() {
    let o = offer(&format!(
        "m=audio 49170 RTP/SAVP 0\r\na=crypto:1 AES_256_CM_HMAC_SHA1_80 {KEY_A1}\r\n\
         a=crypto:2 AES_CM_128_HMAC_SHA1_80 {KEY_A1}\r\na=crypto:3 AES_CM_128_HMAC_SHA1_32 {KEY_A2}\r\n"
    ));
    let me = |suites: &[&str]| {
        let mut l = LocalMedia::new("audio", 50000).codec(Codec::new("PCMU", 8000));
        for s in suites {
            l = l.sdes(s, KEY_B);
        }
        l
    };
    // both 128-bit suites supported: the offer's order decides (tag 2), not ours
    let (_, text) = answer_text(
        &o,
        vec![me(&["AES_CM_128_HMAC_SHA1_32", "AES_CM_128_HMAC_SHA1_80"])],
    );
    let m = media_lines(&text, 0);
    assert_eq!(m[0], "m=audio 50000 RTP/SAVP 0");
    assert_eq!(
        m.iter()
            .filter(|l| l.starts_with("a=crypto"))
            .collect::<Vec<_>>(),
        [&format!("a=crypto:2 AES_CM_128_HMAC_SHA1_80 {KEY_B}")]
    );
    assert!(
        !text.contains(KEY_A1) && !text.contains(KEY_A2),
        "never the offerer's key"
    );
    // only the 32-bit tag suite
    let (_, text) = answer_text(&o, vec![me(&["aes_cm_128_hmac_sha1_32"])]);
    assert!(text.contains(&format!("a=crypto:3 AES_CM_128_HMAC_SHA1_32 {KEY_B}\r\n")));
    // nothing in common: rejected with port 0, no crypto line
    let (_, text) = answer_text(&o, vec![me(&["F8_128_HMAC_SHA1_80"])]);
    assert_eq!(media_lines(&text, 0), ["m=audio 0 RTP/SAVP 0"]);
    // RTP/SAVP without a=crypto cannot be keyed by SDES
    let (_, text) = answer_text(
        &offer("m=audio 49170 RTP/SAVP 0\r\n"),
        vec![me(&["AES_CM_128_HMAC_SHA1_80"])],
    );
    assert_eq!(media_lines(&text, 0), ["m=audio 0 RTP/SAVP 0"]);
    // RTP/AVP: no crypto answered even if configured
    let (_, text) = answer_text(
        &offer("m=audio 49170 RTP/AVP 0\r\n"),
        vec![me(&["AES_CM_128_HMAC_SHA1_80"])],
    );
    assert!(!text.contains("a=crypto"));
}

const FP_A: &str = "4A:AD:B9:B1:3F:82:18:3B:54:02:12:DF:3E:5D:49:6B:19:E5:7C:AB:4A:AD:B9:B1:3F:82:18:3B:54:02:12:DF";
const FP_B: &str = "D1:00:1A:2B:3C:4D:5E:6F:70:81:92:A3:B4:C5:D6:E7:F8:09:1A:2B:3C:4D:5E:6F:70:81:92:A3:B4:C5:D6:E7";

fn dtls_offer(setup: Option<&str>, session_level: bool) -> String {
    let fp = format!("a=fingerprint:sha-256 {FP_A}\r\n");
    let setup = setup
        .map(|s| format!("a=setup:{s}\r\n"))
        .unwrap_or_default();
    if session_level {
        format!(
            "v=0\r\no=alice 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n{setup}{fp}\
             m=audio 49170 UDP/TLS/RTP/SAVPF 0\r\n"
        )
    } else {
        offer(&format!("m=audio 49170 UDP/TLS/RTP/SAVPF 0\r\n{setup}{fp}"))
    }
}

/// RFC 5763 §5: "The endpoint that is the offerer MUST use the setup attribute value of
/// setup:actpass … the answerer MUST use either setup:active or setup:passive … setup:active is
/// RECOMMENDED"; RFC 4145 §4.1: active ↔ passive, holdconn stays, and an absent a=setup means
/// active. The answer carries the answerer's own certificate fingerprint.
#[test]
fn dtls_setup_role_and_fingerprint() {
    let me = || {
        LocalMedia::new("audio", 50000)
            .codec(Codec::new("PCMU", 8000))
            .dtls("sha-256", FP_B)
    };
    for (offered, session_level, expected) in [
        (Some("actpass"), false, "active"),
        (Some("actpass"), true, "active"),
        (Some("active"), false, "passive"),
        (Some("passive"), true, "active"),
        (Some("holdconn"), false, "holdconn"),
        (None, false, "passive"),
    ] {
        let (_, text) = answer_text(&dtls_offer(offered, session_level), vec![me()]);
        let m = media_lines(&text, 0);
        assert_eq!(m[0], "m=audio 50000 UDP/TLS/RTP/SAVPF 0");
        assert!(
            m.contains(&format!("a=setup:{expected}").as_str()),
            "{offered:?} → {m:?}"
        );
        assert!(m.contains(&format!("a=fingerprint:sha-256 {FP_B}").as_str()));
        assert!(!text.contains(FP_A), "never the offerer's fingerprint");
        assert_eq!(m.iter().filter(|l| l.starts_with("a=setup")).count(), 1);
    }
    // the passive policy for actpass
    let mut passive = me();
    passive.dtls.as_mut().unwrap().actpass_answer = Setup::Passive;
    let (_, text) = answer_text(&dtls_offer(Some("actpass"), false), vec![passive]);
    assert!(text.contains("a=setup:passive\r\n"));
    // no DTLS configured: a UDP/TLS stream is rejected
    let (_, text) = answer_text(
        &dtls_offer(Some("actpass"), false),
        vec![LocalMedia::new("audio", 50000).codec(Codec::new("PCMU", 8000))],
    );
    assert_eq!(media_lines(&text, 0), ["m=audio 0 UDP/TLS/RTP/SAVPF 0"]);
}

/// RFC 8839 §5.4: the answer carries the answerer's own ice-ufrag/ice-pwd and candidates; none
/// of the offer's are copied; without ICE in the offer none is answered. RFC 5761 §5.1.1:
/// rtcp-mux only when offered and accepted.
#[test]
fn ice_from_the_answerer_and_rtcp_mux() {
    let o = offer(
        "m=audio 49170 RTP/AVP 0\r\na=ice-ufrag:8hhY\r\na=ice-pwd:asd88fgpdd777uzjYhagZg\r\n\
         a=candidate:1 1 UDP 2130706431 192.0.2.1 49170 typ host\r\na=rtcp-mux\r\n",
    );
    let ice = IceConfig {
        ufrag: "9uB6".into(),
        pwd: "YH75Fviy6338Vbrhrlp8Yh".into(),
        options: Some("trickle".into()),
        candidates: vec![
            "1 1 UDP 2130706431 192.0.2.2 50000 typ host".into(),
            "2 1 UDP 1694498815 198.51.100.7 61000 typ srflx raddr 192.0.2.2 rport 50000".into(),
        ],
    };
    let me = || {
        LocalMedia::new("audio", 50000)
            .codec(Codec::new("PCMU", 8000))
            .ice(ice.clone())
    };
    let (_, text) = answer_text(&o, vec![me().rtcp_mux()]);
    assert_eq!(
        media_lines(&text, 0),
        [
            "m=audio 50000 RTP/AVP 0",
            "a=rtcp-mux",
            "a=ice-ufrag:9uB6",
            "a=ice-pwd:YH75Fviy6338Vbrhrlp8Yh",
            "a=ice-options:trickle",
            "a=candidate:1 1 UDP 2130706431 192.0.2.2 50000 typ host",
            "a=candidate:2 1 UDP 1694498815 198.51.100.7 61000 typ srflx raddr 192.0.2.2 rport 50000",
        ]
    );
    assert!(!text.contains("8hhY") && !text.contains("192.0.2.1 49170"));
    // rtcp-mux not accepted locally → not answered
    let (_, text) = answer_text(&o, vec![me()]);
    assert!(!text.contains("rtcp-mux"));
    // the offer without ICE: no ICE lines in the answer
    let (_, text) = answer_text(&offer("m=audio 49170 RTP/AVP 0\r\n"), vec![me()]);
    assert!(!text.contains("ice-") && !text.contains("candidate"));
    // session-level ice-ufrag in the offer counts
    let o = "v=0\r\no=a 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n\
             a=ice-ufrag:8hhY\r\na=ice-pwd:asd88fgpdd777uzjYhagZg\r\nm=audio 49170 RTP/AVP 0\r\n";
    let (_, text) = answer_text(o, vec![me()]);
    assert!(text.contains("a=ice-ufrag:9uB6\r\n"));
}

/// Preconditions of another type than qos (e.g. `sec`, RFC 5027) are opaque: they neither
/// break the answer nor get touched when the qos table is applied.
#[test]
fn other_precondition_types_are_opaque() {
    let o = offer(
        "m=audio 49170 RTP/AVP 0\r\na=curr:qos local none\r\na=curr:qos remote none\r\n\
         a=des:qos mandatory local sendrecv\r\na=des:qos mandatory remote sendrecv\r\n\
         a=curr:sec e2e none\r\na=des:sec mandatory e2e sendrecv\r\na=des:foo some thing odd\r\n",
    );
    let parsed = Session::parse_str(&o).unwrap();
    let mut c = cfg(vec![
        LocalMedia::new("audio", 50000).codec(Codec::new("PCMU", 8000))
    ]);
    c.local_qos = Some(PrecondDirection::SendRecv);
    let a = answer(&parsed, &c).unwrap().build();
    let m = media_lines(&a, 0);
    assert!(m.contains(&"a=curr:qos local sendrecv"), "{m:?}");
    assert!(m.contains(&"a=conf:qos remote sendrecv"), "{m:?}");
    assert!(!a.contains(":sec") && !a.contains(":foo"));
    // apply() on a media holding sec lines keeps them in place
    let st = ims_sdp::PreconditionState::from_media(&parsed.media[0])
        .unwrap()
        .unwrap();
    let mut mb = parsed.to_builder().media.remove(0);
    st.apply(&mut mb);
    let names: Vec<String> = mb.attributes.iter().map(|x| x.to_string()).collect();
    assert!(names.contains(&"curr:sec e2e none".to_string()));
    assert!(names.contains(&"des:sec mandatory e2e sendrecv".to_string()));
    assert!(names.contains(&"des:foo some thing odd".to_string()));
    assert_eq!(names.iter().filter(|n| n.contains(":qos ")).count(), 4);
}
