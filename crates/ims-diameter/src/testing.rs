//! Random values of every typed command, for property tests and fuzzing (not a stable API).

use crate::avp::{AvpFlags, RawAvp};
use crate::base::{SubscriptionId, SubscriptionIdType};
use crate::dict;
use crate::result::Outcome;
use crate::rx::{
    Aaa, Aar, AccessNetworkChargingIdentifier, FlowStatus, FlowUsage, Flows, IpCanType,
    MediaComponentDescription, MediaSubComponent, MediaType, RatType, SpecificAction,
};
use crate::types::{Address, Time};
use std::borrow::Cow;
use std::net::Ipv4Addr;

/// A small deterministic generator (xorshift64*), seeded by the caller.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed (0 is replaced).
    pub fn new(seed: u64) -> Rng {
        Rng(seed | 1)
    }
    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    /// A value below `n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
    /// True half the time.
    pub fn coin(&mut self) -> bool {
        self.next_u64() & 1 == 1
    }
}

/// A type with random values.
pub trait Sample: Sized {
    /// A random value.
    fn sample(r: &mut Rng) -> Self;
    /// A random value as the data of this AVP (a [`RawAvp`] takes its code and vendor).
    fn sample_for(_def: &crate::dict::AvpDef, r: &mut Rng) -> Self {
        Self::sample(r)
    }
}

impl Sample for u32 {
    fn sample(r: &mut Rng) -> Self {
        r.next_u64() as u32
    }
}
impl Sample for i32 {
    fn sample(r: &mut Rng) -> Self {
        r.next_u64() as i32
    }
}
impl Sample for u64 {
    fn sample(r: &mut Rng) -> Self {
        r.next_u64()
    }
}
impl Sample for i64 {
    fn sample(r: &mut Rng) -> Self {
        r.next_u64() as i64
    }
}
impl Sample for f32 {
    fn sample(r: &mut Rng) -> Self {
        (r.below(1_000_000) as f32) / 1000.0
    }
}
impl Sample for f64 {
    fn sample(r: &mut Rng) -> Self {
        (r.below(1_000_000_000) as f64) / 1000.0
    }
}
impl Sample for Time {
    fn sample(r: &mut Rng) -> Self {
        Time(r.next_u64() as u32)
    }
}

const CHARS: &[&str] = &[
    "a", "z", "0", "9", ".", "@", ":", ";", "-", "_", " ", "é", "€", "𝄞", "sip:", "ims", "\n",
];

impl<'a> Sample for Cow<'a, str> {
    fn sample(r: &mut Rng) -> Self {
        let n = r.below(24);
        Cow::Owned(
            (0..n)
                .map(|_| CHARS[r.below(CHARS.len() as u64) as usize])
                .collect(),
        )
    }
}
impl<'a> Sample for Cow<'a, [u8]> {
    fn sample(r: &mut Rng) -> Self {
        let n = r.below(40);
        Cow::Owned((0..n).map(|_| r.next_u64() as u8).collect())
    }
}
impl<'a> Sample for Address<'a> {
    fn sample(r: &mut Rng) -> Self {
        match r.below(4) {
            0 => Address::Ipv4((r.next_u64() as u32).into()),
            1 => {
                Address::Ipv6(((u128::from(r.next_u64()) << 64) | u128::from(r.next_u64())).into())
            }
            2 => Address::E164(["15550100001", "4477009001", "1"][r.below(3) as usize]),
            _ => Address::Other {
                family: [3u16, 16, 65535][r.below(3) as usize],
                value: [&b""[..], b"\x01\x02\x03", b"node"][r.below(3) as usize],
            },
        }
    }
}
impl<'a> Sample for RawAvp<'a> {
    fn sample(r: &mut Rng) -> Self {
        RawAvp {
            code: 0,
            flags: AvpFlags(if r.coin() { AvpFlags::MANDATORY } else { 0 }),
            vendor: 0,
            data: Sample::sample(r),
        }
    }
    fn sample_for(def: &crate::dict::AvpDef, r: &mut Rng) -> Self {
        RawAvp {
            code: def.code,
            vendor: def.vendor,
            ..Self::sample(r)
        }
    }
}

// The benchmark messages, shared by `benches/diameter.rs` and `examples/perf.rs`.

/// The realm of the benchmark messages.
const BENCH_REALM: &str = "ims.mnc001.mcc001.3gppnetwork.org";

fn media(n: u32, video: bool, ue: u16, rem: u16) -> MediaComponentDescription<'static> {
    let flow = |num: u32, ue: u16, rem: u16, usage: Option<FlowUsage>| MediaSubComponent {
        flow_number: num,
        flow_description: crate::repeated![
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
        media_sub_component: crate::repeated![
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
        codec_data: crate::repeated![Cow::Borrowed(codec.as_bytes())],
        ..Default::default()
    }
}

/// The Rx AAR of `benches/diameter.rs` and `examples/perf.rs`: a P-CSCF's AAR for a call with two
/// media components (audio and video, each with RTP and RTCP sub-components carrying two
/// Flow-Descriptions, and Codec-Data), three Specific-Actions and a SIP URI Subscription-Id.
pub fn rx_aar() -> Aar<'static> {
    Aar {
        session_id: format!("pcscf.{BENCH_REALM};1700000000;7").into(),
        auth_application_id: dict::app::RX,
        origin_host: format!("pcscf.{BENCH_REALM}").into(),
        origin_realm: BENCH_REALM.into(),
        destination_realm: "epc.mnc001.mcc001.3gppnetwork.org".into(),
        af_application_identifier: Some(Cow::Borrowed(b"urn:urn-7:3gpp-service.ims.icsi.mmtel")),
        media_component_description: crate::repeated![
            media(1, false, 50000, 40000),
            media(2, true, 50010, 40010),
        ],
        af_charging_identifier: Some(Cow::Borrowed(b"pcscf-icid-0001")),
        specific_action: crate::repeated![
            SpecificAction::ChargingCorrelationExchange,
            SpecificAction::IndicationOfLossOfBearer,
            SpecificAction::IndicationOfReleaseOfBearer,
        ],
        subscription_id: crate::repeated![SubscriptionId {
            subscription_id_type: SubscriptionIdType::EndUserSipUri,
            subscription_id_data: format!("sip:alice@{BENCH_REALM}").into(),
            ..Default::default()
        }],
        framed_ip_address: Some(Cow::Borrowed(&[10, 0, 0, 2])),
        ..Default::default()
    }
}

/// The PCRF's AAA to [`rx_aar`] (DIAMETER_SUCCESS, one Access-Network-Charging-Identifier with
/// two Flows, the charging address, IP-CAN-Type 3GPP-EPS, RAT-Type EUTRAN).
pub fn rx_aaa() -> Aaa<'static> {
    let mut a = Aaa {
        session_id: format!("pcscf.{BENCH_REALM};1700000000;7").into(),
        auth_application_id: dict::app::RX,
        origin_host: "pcrf.epc.mnc001.mcc001.3gppnetwork.org".into(),
        origin_realm: "epc.mnc001.mcc001.3gppnetwork.org".into(),
        access_network_charging_identifier: crate::repeated![AccessNetworkChargingIdentifier {
            access_network_charging_identifier_value: Cow::Borrowed(&[0, 0, 0, 42]),
            flows: crate::repeated![
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
        }],
        access_network_charging_address: Some(Address::Ipv4(Ipv4Addr::new(10, 0, 2, 1))),
        ip_can_type: Some(IpCanType::TgppEps),
        rat_type: Some(RatType::Eutran),
        ..Default::default()
    };
    a.set_outcome(Outcome::SUCCESS);
    a
}
