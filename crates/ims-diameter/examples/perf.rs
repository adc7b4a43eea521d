//! A profiling harness for the codec hot paths (the ims side of `benches/diameter.rs`), for
//! instruction counts under callgrind on a machine too noisy for wall-clock figures:
//!
//! ```text
//! cargo build --release -p ims-diameter --example perf
//! valgrind --tool=callgrind target/release/examples/perf aar_decode 2000
//! callgrind_annotate callgrind.out.<pid>
//! ```
//!
//! Modes: `none`, `{cer,aar,aaa,maa,saa}_{decode,encode}`. Prints ns/op measured over N
//! repetitions (wall clock, indicative only).

#![allow(missing_docs, clippy::disallowed_methods)]

use ims_diameter::base::{Cer, SubscriptionId, SubscriptionIdType};
use ims_diameter::cx::{Maa, Saa};
use ims_diameter::dict;
use ims_diameter::rx::*;
use ims_diameter::{Address, Command, Message, Outcome};
use std::borrow::Cow;
use std::hint::black_box;
use std::net::Ipv4Addr;

const REALM: &str = "ims.mnc001.mcc001.3gppnetwork.org";

fn vector(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/../../tests/vectors/diameter/{name}.bin",
        env!("CARGO_MANIFEST_DIR")
    ))
    .expect("vector")
}

fn media(n: u32, video: bool, ue: u16, rem: u16) -> MediaComponentDescription<'static> {
    let flow = |num: u32, ue: u16, rem: u16, usage: Option<FlowUsage>| MediaSubComponent {
        flow_number: num,
        flow_description: ims_diameter::repeated![
            format!("permit out 17 from 192.0.2.10 {rem} to 10.0.0.2 {ue}").into(),
            format!("permit in 17 from 10.0.0.2 {ue} to 192.0.2.10 {rem}").into(),
        ],
        flow_usage: usage,
        ..Default::default()
    };
    let codec = if video {
        "uplink\noffer\nm=video 50010 RTP/AVP 102\na=rtpmap:102 H264/90000"
    } else {
        "uplink\noffer\nm=audio 50000 RTP/AVP 116\na=rtpmap:116 AMR-WB/16000/1"
    };
    MediaComponentDescription {
        media_component_number: n,
        media_sub_component: ims_diameter::repeated![
            flow(1, ue, rem, None),
            flow(2, ue + 1, rem + 1, Some(FlowUsage::Rtcp)),
        ],
        af_application_identifier: Some(Cow::Borrowed(b"urn:urn-7:3gpp-service.ims.icsi.mmtel")),
        media_type: Some(if video {
            MediaType::Video
        } else {
            MediaType::Audio
        }),
        max_requested_bandwidth_ul: Some(if video { 384_000 } else { 41_000 }),
        max_requested_bandwidth_dl: Some(if video { 384_000 } else { 41_000 }),
        flow_status: Some(FlowStatus::Enabled),
        rr_bandwidth: Some(2000),
        rs_bandwidth: Some(600),
        codec_data: ims_diameter::repeated![Cow::Borrowed(codec.as_bytes())],
        ..Default::default()
    }
}

fn aar() -> Aar<'static> {
    Aar {
        session_id: format!("pcscf.{REALM};1700000000;7").into(),
        auth_application_id: dict::app::RX,
        origin_host: format!("pcscf.{REALM}").into(),
        origin_realm: REALM.into(),
        destination_realm: "epc.mnc001.mcc001.3gppnetwork.org".into(),
        af_application_identifier: Some(Cow::Borrowed(b"urn:urn-7:3gpp-service.ims.icsi.mmtel")),
        media_component_description: vec![
            media(1, false, 50000, 40000),
            media(2, true, 50010, 40010),
        ],
        af_charging_identifier: Some(Cow::Borrowed(b"pcscf-icid-0001")),
        specific_action: ims_diameter::repeated![
            SpecificAction::ChargingCorrelationExchange,
            SpecificAction::IndicationOfLossOfBearer,
            SpecificAction::IndicationOfReleaseOfBearer,
        ],
        subscription_id: ims_diameter::repeated![SubscriptionId {
            subscription_id_type: SubscriptionIdType::EndUserSipUri,
            subscription_id_data: format!("sip:alice@{REALM}").into(),
            ..Default::default()
        }],
        framed_ip_address: Some(Cow::Borrowed(&[10, 0, 0, 2])),
        ..Default::default()
    }
}

fn aaa() -> Aaa<'static> {
    let mut a = Aaa {
        session_id: format!("pcscf.{REALM};1700000000;7").into(),
        auth_application_id: dict::app::RX,
        origin_host: "pcrf.epc.mnc001.mcc001.3gppnetwork.org".into(),
        origin_realm: "epc.mnc001.mcc001.3gppnetwork.org".into(),
        access_network_charging_identifier: ims_diameter::repeated![
            AccessNetworkChargingIdentifier {
                access_network_charging_identifier_value: Cow::Borrowed(&[0, 0, 0, 42]),
                flows: ims_diameter::repeated![
                    Flows {
                        media_component_number: 1,
                        ..Default::default()
                    },
                    Flows {
                        media_component_number: 2,
                        ..Default::default()
                    },
                ],
                ..Default::default()
            }
        ],
        access_network_charging_address: Some(Address::Ipv4(Ipv4Addr::new(10, 0, 2, 1))),
        ip_can_type: Some(IpCanType::TgppEps),
        rat_type: Some(RatType::Eutran),
        ..Default::default()
    };
    a.set_outcome(Outcome::SUCCESS);
    a
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mode = args.first().map_or("aar_decode", |s| s.as_str());
    let n: usize = args.get(1).map_or(100_000, |s| s.parse().expect("count"));

    let cer = vector("base_cer");
    let maa = vector("cx_maa");
    let saa = vector("cx_saa");
    let aar_b = aar().encode(0x101, 0x6d30_0101);
    let aar_m = Message::parse(&aar_b).unwrap();
    let aaa_b = aaa().encode_answer(aar_m.header());
    let mut buf = Vec::with_capacity(4096);

    macro_rules! dec {
        ($t:ty, $b:expr) => {{
            for _ in 0..n {
                let m = Message::parse(black_box(&$b)).unwrap();
                let v = <$t>::decode(&m).unwrap();
                black_box(&v);
            }
        }};
    }
    macro_rules! enc {
        ($t:ty, $b:expr) => {{
            let m = Message::parse(&$b).unwrap();
            let h = *m.header();
            let v = <$t>::decode(&m).unwrap();
            for _ in 0..n {
                buf.clear();
                black_box(v.encode_into(black_box(&h), &mut buf));
            }
            assert_eq!(buf, $b);
        }};
    }
    let t = std::time::Instant::now();
    match mode {
        "none" => {}
        "cer_decode" => dec!(Cer, cer),
        "aar_decode" => dec!(Aar, aar_b),
        "aaa_decode" => dec!(Aaa, aaa_b),
        "maa_decode" => dec!(Maa, maa),
        "saa_decode" => dec!(Saa, saa),
        "cer_encode" => enc!(Cer, cer),
        "aar_encode" => enc!(Aar, aar_b),
        "aaa_encode" => enc!(Aaa, aaa_b),
        "maa_encode" => enc!(Maa, maa),
        "saa_encode" => enc!(Saa, saa),
        m => panic!("unknown mode {m}"),
    }
    let el = t.elapsed();
    println!(
        "{mode}: {:.1} ns/op",
        el.as_nanos() as f64 / n.max(1) as f64
    );
}
