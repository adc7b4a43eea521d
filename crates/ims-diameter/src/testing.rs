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

/// The text values of the benchmark AAR / AAA that a node formats at run time (Session-Id,
/// Origin-Host, the SIP URI, the eight Flow-Descriptions), made once; [`rx_aar_with`] and
/// [`rx_aaa_with`] build the messages from them.
#[derive(Debug, Clone)]
pub struct RxText {
    session_id: String,
    origin_host: String,
    subscriber: String,
    /// Per media component (audio, video), per sub-component (RTP, RTCP): out, in.
    flows: [[[String; 2]; 2]; 2],
}

impl RxText {
    /// The texts of [`rx_aar`] / [`rx_aaa`].
    pub fn new() -> RxText {
        let flow = |ue: u16, rem: u16| {
            [
                format!("permit out 17 from 192.0.2.10 {rem} to 10.0.0.2 {ue}"),
                format!("permit in 17 from 10.0.0.2 {ue} to 192.0.2.10 {rem}"),
            ]
        };
        let media = |ue: u16, rem: u16| [flow(ue, rem), flow(ue + 1, rem + 1)];
        RxText {
            session_id: format!("pcscf.{BENCH_REALM};1700000000;7"),
            origin_host: format!("pcscf.{BENCH_REALM}"),
            subscriber: format!("sip:alice@{BENCH_REALM}"),
            flows: [media(50000, 40000), media(50010, 40010)],
        }
    }
}

impl Default for RxText {
    fn default() -> Self {
        Self::new()
    }
}

fn media<'t, 'a>(
    n: u32,
    video: bool,
    flows: &'t [[String; 2]; 2],
    text: &impl Fn(&'t str) -> Cow<'a, str>,
) -> MediaComponentDescription<'a> {
    let flow = |num: u32, f: &'t [String; 2], usage: Option<FlowUsage>| MediaSubComponent {
        flow_number: num,
        flow_description: crate::repeated![text(&f[0]), text(&f[1])],
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
            flow(1, &flows[0], None),
            flow(2, &flows[1], Some(FlowUsage::Rtcp)),
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
    rx_aar_with(&RxText::new(), |s| Cow::Owned(s.to_owned()))
}

/// [`rx_aar`] built from `t`, each text value made by `text` (`Cow::Borrowed` to borrow `t`).
pub fn rx_aar_with<'t, 'a>(t: &'t RxText, text: impl Fn(&'t str) -> Cow<'a, str>) -> Aar<'a> {
    Aar {
        session_id: text(&t.session_id),
        auth_application_id: dict::app::RX,
        origin_host: text(&t.origin_host),
        origin_realm: BENCH_REALM.into(),
        destination_realm: "epc.mnc001.mcc001.3gppnetwork.org".into(),
        af_application_identifier: Some(Cow::Borrowed(b"urn:urn-7:3gpp-service.ims.icsi.mmtel")),
        media_component_description: crate::repeated![
            media(1, false, &t.flows[0], &text),
            media(2, true, &t.flows[1], &text),
        ],
        af_charging_identifier: Some(Cow::Borrowed(b"pcscf-icid-0001")),
        specific_action: crate::repeated![
            SpecificAction::ChargingCorrelationExchange,
            SpecificAction::IndicationOfLossOfBearer,
            SpecificAction::IndicationOfReleaseOfBearer,
        ],
        subscription_id: crate::repeated![SubscriptionId {
            subscription_id_type: SubscriptionIdType::EndUserSipUri,
            subscription_id_data: text(&t.subscriber),
            ..Default::default()
        }],
        framed_ip_address: Some(Cow::Borrowed(&[10, 0, 0, 2])),
        ..Default::default()
    }
}

/// The PCRF's AAA to [`rx_aar`] (DIAMETER_SUCCESS, one Access-Network-Charging-Identifier with
/// two Flows, the charging address, IP-CAN-Type 3GPP-EPS, RAT-Type EUTRAN).
pub fn rx_aaa() -> Aaa<'static> {
    rx_aaa_with(&RxText::new(), |s| Cow::Owned(s.to_owned()))
}

/// [`rx_aaa`] built from `t` (its Session-Id), the text made by `text` as in [`rx_aar_with`].
pub fn rx_aaa_with<'t, 'a>(t: &'t RxText, text: impl Fn(&'t str) -> Cow<'a, str>) -> Aaa<'a> {
    let mut a = Aaa {
        session_id: text(&t.session_id),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Command;

    #[test]
    fn borrowed_and_owned_bench_messages_encode_alike() {
        let t = RxText::new();
        let aar = rx_aar().encode(1, 2);
        assert_eq!(rx_aar_with(&t, Cow::Borrowed).encode(1, 2), aar);
        let h = *crate::Message::parse(&aar).unwrap().header();
        assert_eq!(
            rx_aaa_with(&t, Cow::Borrowed).encode_answer(&h),
            rx_aaa().encode_answer(&h)
        );
    }
}
