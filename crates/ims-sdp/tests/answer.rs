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
        lite: false,
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

/// RFC 4867 §8.3 (AMR, AMR-WB): the payload format configuration (`octet-align`, `crc`,
/// `robust-sorting`, `interleaving`) must be the same in offer and answer, so an offered
/// configuration this side does not support is left out; `mode-set` can only be restricted:
/// the answer has the intersection. The offer is the usual MMTel one (TS 26.114 §6.2.2):
/// each codec offered bandwidth-efficient and octet-aligned.
#[test]
fn amr_fmtp_negotiation() {
    let o = offer(
        "m=audio 49170 RTP/AVP 97 98 99 100 101\r\n\
         a=rtpmap:97 AMR-WB/16000\r\na=fmtp:97 mode-change-capability=2; max-red=0\r\n\
         a=rtpmap:98 AMR-WB/16000\r\na=fmtp:98 octet-align=1; mode-change-capability=2\r\n\
         a=rtpmap:99 AMR/8000\r\na=fmtp:99 mode-set=0,2,4,7; max-red=0\r\n\
         a=rtpmap:100 AMR/8000\r\na=fmtp:100 octet-align=1; mode-set=0,2,4,7\r\n\
         a=rtpmap:101 telephone-event/16000\r\na=fmtp:101 0-15\r\n",
    );
    // octet-aligned only, AMR-WB modes 0–2 and 8, AMR 12.2 (7) and 7.4 (4) only
    let me = LocalMedia::new("audio", 50000)
        .codec(Codec::new("AMR-WB", 16000).with_fmtp("octet-align=1; mode-set=0,1,2,8"))
        .codec(Codec::new("AMR", 8000).with_fmtp("octet-align=1; mode-set=4,7"))
        .codec(Codec::new("telephone-event", 16000).with_fmtp("0-11"));
    let (_, text) = answer_text(&o, vec![me]);
    assert_eq!(
        media_lines(&text, 0),
        [
            "m=audio 50000 RTP/AVP 98 100 101",
            "a=rtpmap:98 AMR-WB/16000",
            "a=fmtp:98 octet-align=1; mode-change-capability=2; mode-set=0,1,2,8",
            "a=rtpmap:100 AMR/8000",
            "a=fmtp:100 octet-align=1; mode-set=4,7",
            "a=rtpmap:101 telephone-event/16000",
            "a=fmtp:101 0-11",
        ]
    );
    // both alignments supported: list the codec twice; the offer order is kept
    let both = LocalMedia::new("audio", 50000)
        .codec(Codec::new("AMR-WB", 16000).with_fmtp(""))
        .codec(Codec::new("AMR-WB", 16000).with_fmtp("octet-align=1"));
    let (_, text) = answer_text(&o, vec![both]);
    assert_eq!(media_lines(&text, 0)[0], "m=audio 50000 RTP/AVP 97 98");
    assert!(text.contains("a=fmtp:97 mode-change-capability=2; max-red=0\r\n"));
    // no common mode: the AMR payload types go; nothing left → the stream is rejected
    let none =
        LocalMedia::new("audio", 50000).codec(Codec::new("AMR", 8000).with_fmtp("mode-set=1,3"));
    let (_, text) = answer_text(&o, vec![none]);
    assert_eq!(
        media_lines(&text, 0)[0],
        "m=audio 0 RTP/AVP 97 98 99 100 101"
    );
    // a codec without fmtp accepts and echoes everything (earlier behaviour)
    let any = LocalMedia::new("audio", 50000).codec(Codec::new("AMR", 8000));
    let (_, text) = answer_text(&o, vec![any]);
    assert!(text.contains("m=audio 50000 RTP/AVP 99 100\r\n"));
    assert!(text.contains("a=fmtp:100 octet-align=1; mode-set=0,2,4,7\r\n"));
}

/// RFC 6184 §8.2.2 (H.264): `packetization-mode` must be the same in offer and answer; the
/// profile (profile_idc, profile-iop) must be the same and the answer may give a lower level;
/// the offerer's `sprop-parameter-sets` describe its own stream and are not echoed.
#[test]
fn h264_fmtp_negotiation() {
    let o = offer(
        "m=video 49172 RTP/AVP 112 113 114\r\n\
         a=rtpmap:112 H264/90000\r\na=fmtp:112 profile-level-id=42e01f; packetization-mode=1; sprop-parameter-sets=Z0LgH5ZUBQHtCAAAAwAIAAADAKAI,aM4G4g==\r\n\
         a=rtpmap:113 H264/90000\r\na=fmtp:113 profile-level-id=42e01f; packetization-mode=0\r\n\
         a=rtpmap:114 H264/90000\r\na=fmtp:114 profile-level-id=640028; packetization-mode=1\r\n",
    );
    // constrained baseline up to level 1.3 (0x0d), non-interleaved mode only
    let me = LocalMedia::new("video", 50002).codec(
        Codec::new("H264", 90000).with_fmtp("profile-level-id=42e00d; packetization-mode=1"),
    );
    let (_, text) = answer_text(&o, vec![me]);
    assert_eq!(
        media_lines(&text, 0),
        [
            "m=video 50002 RTP/AVP 112",
            "a=rtpmap:112 H264/90000",
            "a=fmtp:112 profile-level-id=42e00d; packetization-mode=1",
        ]
    );
    // a higher local level keeps the offered level; mode 0 accepted by a mode-0 codec
    let me = LocalMedia::new("video", 50002)
        .codec(Codec::new("H264", 90000).with_fmtp("profile-level-id=42e028"));
    let (_, text) = answer_text(&o, vec![me]);
    assert_eq!(
        media_lines(&text, 0),
        [
            "m=video 50002 RTP/AVP 113",
            "a=rtpmap:113 H264/90000",
            "a=fmtp:113 profile-level-id=42e01f; packetization-mode=0",
        ]
    );
    // High profile (0x64) only: answered with the offered level (0x28 = 4.0)
    let me = LocalMedia::new("video", 50002).codec(
        Codec::new("H264", 90000).with_fmtp("profile-level-id=640032; packetization-mode=1"),
    );
    let (_, text) = answer_text(&o, vec![me]);
    assert_eq!(media_lines(&text, 0)[0], "m=video 50002 RTP/AVP 114");
}

/// RFC 4733 §7.1.1: the answer lists the events both sides support; without an offered fmtp
/// the offer means 0-15 (RFC 4733 §2.4.1).
#[test]
fn telephone_event_fmtp_negotiation() {
    let o = offer(
        "m=audio 49170 RTP/AVP 0 101 102\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15,66,70\r\n\
         a=rtpmap:102 telephone-event/16000\r\n",
    );
    let me = LocalMedia::new("audio", 50000)
        .codec(Codec::new("PCMU", 8000))
        .codec(Codec::new("telephone-event", 8000).with_fmtp("0-15,70"))
        .codec(Codec::new("telephone-event", 16000).with_fmtp("0-11"));
    let (_, text) = answer_text(&o, vec![me]);
    assert_eq!(
        media_lines(&text, 0),
        [
            "m=audio 50000 RTP/AVP 0 101 102",
            "a=rtpmap:101 telephone-event/8000",
            "a=fmtp:101 0-15,70",
            "a=rtpmap:102 telephone-event/16000",
            "a=fmtp:102 0-11",
        ]
    );
    // no event in common: that payload type is left out
    let me = LocalMedia::new("audio", 50000)
        .codec(Codec::new("PCMU", 8000))
        .codec(Codec::new("telephone-event", 8000).with_fmtp("16-20"));
    let (_, text) = answer_text(&o, vec![me]);
    assert!(text.contains("m=audio 50000 RTP/AVP 0\r\n"));
}

/// RFC 8839 §5.3 / RFC 8445 §2.5: an ICE lite answerer says so with a session-level
/// `a=ice-lite`, only when it answers ICE; the offer's own `a=ice-lite` is not copied (it is
/// read with `is_ice_lite`).
#[test]
fn ice_lite() {
    let ice = IceConfig {
        ufrag: "9uB6".into(),
        pwd: "YH75Fviy6338Vbrhrlp8Yh".into(),
        options: None,
        candidates: vec!["1 1 UDP 2130706431 192.0.2.2 50000 typ host".into()],
        lite: true,
    };
    let me = || {
        LocalMedia::new("audio", 50000)
            .codec(Codec::new("PCMU", 8000))
            .ice(ice.clone())
    };
    let o = "v=0\r\no=alice 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n\
             a=ice-lite\r\na=ice-ufrag:8hhY\r\na=ice-pwd:asd88fgpdd777uzjYhagZg\r\nm=audio 49170 RTP/AVP 0\r\n";
    assert!(ims_sdp::is_ice_lite(&Session::parse_str(o).unwrap()));
    let (a, text) = answer_text(o, vec![me()]);
    assert_eq!(
        a.attributes.iter().filter(|x| x.name == "ice-lite").count(),
        1
    );
    assert!(
        text.contains("t=0 0\r\na=ice-lite\r\nm=audio 50000"),
        "{text}"
    );
    assert!(!ims_sdp::is_ice_lite(
        &Session::parse_str(&offer("m=audio 1 RTP/AVP 0\r\n")).unwrap()
    ));
    // no ICE in the offer: no ice-lite either
    let (_, text) = answer_text(&offer("m=audio 49170 RTP/AVP 0\r\n"), vec![me()]);
    assert!(!text.contains("ice-"));
    // a full agent never writes it, even answering a lite offerer
    let mut full = me();
    full.ice.as_mut().unwrap().lite = false;
    let (_, text) = answer_text(o, vec![full]);
    assert!(!text.contains("a=ice-lite"));
}

fn modes(set: u16) -> String {
    (0..9u16)
        .filter(|m| set & (1 << m) != 0)
        .map(|m| m.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]
    /// RFC 4867 §8.3: for any offered and local AMR-WB mode-sets and alignments, the payload
    /// type is answered iff the alignments match and the sets intersect, and then the answer's
    /// mode-set is exactly the intersection.
    #[test]
    fn amr_wb_mode_set_is_the_intersection(
        offered in 1u16..512, local in 1u16..512, oa in proptest::bool::ANY, la in proptest::bool::ANY
    ) {
        let o = offer(&format!(
            "m=audio 49170 RTP/AVP 97\r\na=rtpmap:97 AMR-WB/16000\r\na=fmtp:97 octet-align={}; mode-set={}\r\n",
            u8::from(oa), modes(offered)
        ));
        let me = LocalMedia::new("audio", 50000).codec(
            Codec::new("AMR-WB", 16000)
                .with_fmtp(&format!("octet-align={}; mode-set={}", u8::from(la), modes(local))),
        );
        let (_, text) = answer_text(&o, vec![me]);
        let m = media_lines(&text, 0);
        if oa == la && offered & local != 0 {
            proptest::prop_assert_eq!(m[0], "m=audio 50000 RTP/AVP 97");
            let want = format!("a=fmtp:97 octet-align={}; mode-set={}", u8::from(oa), modes(offered & local));
            proptest::prop_assert_eq!(m[2], want.as_str());
        } else {
            proptest::prop_assert_eq!(m[0], "m=audio 0 RTP/AVP 97");
        }
    }
}
