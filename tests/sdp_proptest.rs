//! Property tests for ims-sdp: any description made with the builder writes text that parses
//! back to an equal description, whose view writes back the same text; typed attributes written
//! from their values parse back to equal values.

use ims::sdp::{
    Attr, AttributeBuf, BandwidthBuf, ConnectionBuf, Direction, MediaBuilder, OriginBuf,
    PrecondDesired, PrecondDirection, PrecondStatus, Rtpmap, Session, SessionBuilder, StatusType,
    Strength, TimingBuf,
};
use proptest::prelude::*;

const TOKEN: &str = "[A-Za-z0-9][A-Za-z0-9!#$%&'*+.^_`{|}~-]{0,12}";
/// Any text an SDP value may hold (no CR, LF or NUL), including non-ASCII.
const TEXT: &str = "[ -~\u{e9}\u{4e2d}]{0,24}";
const GRAPHIC: &str = "[!-~]{1,20}";

fn attribute() -> impl Strategy<Value = AttributeBuf> {
    prop_oneof![
        (TOKEN, proptest::option::of(TEXT)).prop_map(|(n, v)| AttributeBuf { name: n, value: v }),
        typed_attr().prop_map(|s| {
            let (n, v) = s.split_once(':').map_or((s.clone(), None), |(n, v)| {
                (n.to_owned(), Some(v.to_owned()))
            });
            AttributeBuf { name: n, value: v }
        }),
    ]
}

fn status() -> impl Strategy<Value = StatusType> {
    prop_oneof![
        Just(StatusType::E2e),
        Just(StatusType::Local),
        Just(StatusType::Remote)
    ]
}
fn pdir() -> impl Strategy<Value = PrecondDirection> {
    prop_oneof![
        Just(PrecondDirection::None),
        Just(PrecondDirection::Send),
        Just(PrecondDirection::Recv),
        Just(PrecondDirection::SendRecv)
    ]
}
fn strength() -> impl Strategy<Value = Strength> {
    prop_oneof![
        Just(Strength::Mandatory),
        Just(Strength::Optional),
        Just(Strength::None),
        Just(Strength::Failure),
        Just(Strength::Unknown)
    ]
}
fn direction() -> impl Strategy<Value = Direction> {
    prop_oneof![
        Just(Direction::SendRecv),
        Just(Direction::SendOnly),
        Just(Direction::RecvOnly),
        Just(Direction::Inactive)
    ]
}

/// The canonical text of a typed attribute built from typed values.
fn typed_attr() -> impl Strategy<Value = String> {
    prop_oneof![
        (0u8..128, TOKEN, 1u32..200_000, proptest::option::of(1u8..9)).prop_map(|(pt, e, r, p)| {
            let ps = p.map(|p| p.to_string());
            Attr::Rtpmap(Rtpmap { payload_type: pt, encoding: &e, clock_rate: r, params: ps.as_deref() }).to_string()
        }),
        (status(), pdir()).prop_map(|(s, d)| Attr::Curr(PrecondStatus { precondition_type: "qos", status_type: s, direction: d }).to_string()),
        (status(), pdir()).prop_map(|(s, d)| Attr::Conf(PrecondStatus { precondition_type: "qos", status_type: s, direction: d }).to_string()),
        (strength(), status(), pdir()).prop_map(|(g, s, d)| Attr::Des(PrecondDesired { precondition_type: "qos", strength: g, status_type: s, direction: d }).to_string()),
        direction().prop_map(|d| Attr::Direction(d).to_string()),
        (0u32..100_000).prop_map(|p| Attr::Ptime(p).to_string()),
        (0u64..u64::MAX).prop_map(|p| Attr::MaxSize(p).to_string()),
        (1u64..1000, proptest::option::of(1000u64..9999)).prop_map(|(a, b)| Attr::FileRange(ims::sdp::FileRange { start: a, stop: b }).to_string()),
        Just("rtcp-mux".to_owned()),
        (1u16..65535).prop_map(|p| format!("rtcp:{p} IN IP4 192.0.2.{}", p % 250)),
        Just("accept-types:message/cpim text/plain".to_owned()),
        (TOKEN).prop_map(|t| format!("path:msrp://h.example.com:2855/{t};tcp")),
        (TOKEN).prop_map(|t| format!("group:BUNDLE {t} v")),
        (1u32..1_000_000).prop_map(|t| format!("crypto:{t} AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|2^20|1:32")),
    ]
}

fn connection() -> impl Strategy<Value = ConnectionBuf> {
    (
        prop_oneof![Just("IP4"), Just("IP6"), Just("X-NET")],
        GRAPHIC,
    )
        .prop_map(|(t, a)| ConnectionBuf {
            net_type: "IN".into(),
            addr_type: t.into(),
            address: a,
        })
}

fn bandwidth() -> impl Strategy<Value = BandwidthBuf> {
    (
        prop_oneof![
            Just("AS".to_owned()),
            Just("TIAS".to_owned()),
            Just("RS".to_owned()),
            Just("RR".to_owned()),
            TOKEN.prop_map(|t| format!("X-{t}"))
        ],
        any::<u64>(),
    )
        .prop_map(|(t, v)| BandwidthBuf {
            bw_type: t,
            value: v,
        })
}

fn media() -> impl Strategy<Value = MediaBuilder> {
    (
        (
            TOKEN,
            any::<u16>(),
            proptest::option::of(any::<u16>()),
            proptest::collection::vec(TOKEN, 1..3),
        ),
        proptest::collection::vec(TOKEN, 1..6),
        proptest::option::of(TEXT),
        proptest::collection::vec(connection(), 0..2),
        proptest::collection::vec(bandwidth(), 0..3),
        proptest::option::of(TEXT),
        proptest::collection::vec(attribute(), 0..8),
    )
        .prop_map(
            |((m, port, count, proto), formats, info, connections, bandwidths, key, attributes)| {
                MediaBuilder {
                    media: m,
                    port,
                    port_count: count,
                    proto: proto.join("/"),
                    formats,
                    info,
                    connections,
                    bandwidths,
                    key,
                    attributes,
                }
            },
        )
}

fn timing() -> impl Strategy<Value = TimingBuf> {
    (
        any::<u64>(),
        any::<u64>(),
        proptest::collection::vec((1u32..1000, 1u32..99, "[dhms]?"), 0..2),
    )
        .prop_map(|(a, b, r)| TimingBuf {
            start: a,
            stop: b,
            repeats: r
                .into_iter()
                .map(|(x, y, u)| format!("{x}{u} {y} 0 {y}{u}"))
                .collect(),
        })
}

fn session() -> impl Strategy<Value = SessionBuilder> {
    (
        (
            GRAPHIC,
            "[0-9]{1,25}",
            "[0-9]{1,25}",
            prop_oneof![Just("IP4"), Just("IP6")],
            GRAPHIC,
        ),
        (
            TEXT,
            proptest::option::of(TEXT),
            proptest::option::of(GRAPHIC),
            proptest::collection::vec(TEXT, 0..2),
            proptest::collection::vec(TEXT, 0..2),
        ),
        (
            proptest::option::of(connection()),
            proptest::collection::vec(bandwidth(), 0..2),
            proptest::collection::vec(timing(), 1..3),
        ),
        (
            proptest::option::of(Just("2882844526 -1h 2898848070 0".to_owned())),
            proptest::option::of(TEXT),
        ),
        proptest::collection::vec(attribute(), 0..6),
        proptest::collection::vec(media(), 0..4),
    )
        .prop_map(
            |(
                (u, id, ver, at, addr),
                (name, info, uri, emails, phones),
                (connection, bandwidths, timings),
                (zone, key),
                attributes,
                media,
            )| SessionBuilder {
                origin: OriginBuf {
                    username: u,
                    session_id: id,
                    session_version: ver,
                    net_type: "IN".into(),
                    addr_type: at.into(),
                    address: addr,
                },
                name,
                info,
                uri,
                emails,
                phones,
                connection,
                bandwidths,
                timings,
                zone,
                key,
                attributes,
                media,
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn build_serialize_parse_equal(b in session()) {
        let text = b.build();
        let s = Session::parse_str(&text).map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
        prop_assert_eq!(s.to_string(), text.clone());
        prop_assert_eq!(s.to_builder(), b.clone());
        prop_assert_eq!(s.media.len(), b.media.len());
        for (m, mb) in s.media.iter().zip(&b.media) {
            prop_assert_eq!(m.port, mb.port);
            prop_assert_eq!(m.formats().collect::<Vec<_>>(), mb.formats.iter().map(String::as_str).collect::<Vec<_>>());
            prop_assert_eq!(m.attributes.len(), mb.attributes.len());
        }
    }

    #[test]
    fn typed_attributes_round_trip(text in typed_attr()) {
        let (n, v) = text.split_once(':').map_or((text.as_str(), None), |(n, v)| (n, Some(v)));
        let a = Attr::parse(n, v).map_err(|e| TestCaseError::fail(format!("{text}: {e}")))?;
        prop_assert!(!matches!(a, Attr::Other { .. }), "{} not typed", text);
        prop_assert_eq!(a.to_string(), text.clone());
        let owned = AttributeBuf::from_attr(&a);
        prop_assert_eq!(owned.typed().unwrap(), a);
    }

    #[test]
    fn arbitrary_text_never_panics(data in proptest::collection::vec(any::<u8>(), 0..512)) {
        ims::fuzzing::sdp::session(&data);
    }
}
