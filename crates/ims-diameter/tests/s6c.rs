//! S6c (TS 29.338 §5.3.2): the SRR/SRA, ALR/ALA and RDR/RDA ABNF as the typed decoders check it,
//! each broken rule against the RFC 6733 result code it must produce, the Grouped AVPs
//! (Serving-Node, SMSF addresses, SM-Delivery-Outcome with the Release 16 SMSF members) and the
//! octets on the wire (header, codes, vendor, flags).

use ims_diameter::answer::{check_request, reject, validate, Origin};
use ims_diameter::base::{AuthSessionState, VendorSpecificApplicationId};
use ims_diameter::s6c::*;
use ims_diameter::sgd::{
    tbcd, DeliveryOutcome, SmDeliveryCause, SmDeliveryOutcome, SmsmiCorrelationId, UserIdentifier,
};
use ims_diameter::{
    dict, encode_message, Address, AvpFlags, AvpId, Command, ErrorKind, ExperimentalResultCode,
    Message, Outcome, Time,
};
use std::net::Ipv4Addr;

const ORIGIN: Origin<'static> = Origin {
    host: "smsc.sms.example.org",
    realm: "sms.example.org",
    state_id: None,
};
/// The Service Centre +44 7900 000001 (TBCD digits, no nature-of-address octet).
const SC: &[u8] = b"\x44\x97\x00\x00\x00\x10";
/// +44 7912 345 67 (TBCD, odd count padded with F).
const MSISDN: &[u8] = b"\x44\x97\x21\x43\x65\xf7";

fn alr() -> Alr<'static> {
    Alr {
        session_id: "ipsmgw.ims.example.org;1700000000;9".into(),
        vendor_specific_application_id: Some(VendorSpecificApplicationId::s6c()),
        auth_session_state: AuthSessionState::NoStateMaintained,
        origin_host: "ipsmgw.ims.example.org".into(),
        origin_realm: "ims.example.org".into(),
        destination_host: Some("smsc.sms.example.org".into()),
        destination_realm: "sms.example.org".into(),
        sc_address: SC.into(),
        user_identifier: UserIdentifier {
            msisdn: Some(MSISDN.into()),
            user_name: Some("001010000000001".into()),
            ..Default::default()
        },
        maximum_ue_availability_time: Some(Time(3_900_000_600)),
        sms_gmsc_alert_event: Some(SMS_GMSC_ALERT_EVENT_UE_AVAILABLE_FOR_MT_SMS),
        serving_node: Some(ServingNode {
            ip_sm_gw_number: Some(tbcd("447900000099").unwrap().into()),
            ip_sm_gw_name: Some("ipsmgw.ims.example.org".into()),
            ip_sm_gw_realm: Some("ims.example.org".into()),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn srr() -> Srr<'static> {
    Srr {
        session_id: "gmsc.sms.example.org;1700000000;3".into(),
        vendor_specific_application_id: Some(VendorSpecificApplicationId::s6c()),
        auth_session_state: AuthSessionState::NoStateMaintained,
        origin_host: "gmsc.sms.example.org".into(),
        origin_realm: "sms.example.org".into(),
        destination_realm: "hss.example.org".into(),
        msisdn: Some(MSISDN.into()),
        sc_address: Some(SC.into()),
        sm_rp_mti: Some(SmRpMti::SmDeliver),
        sm_rp_smea: Some((&b"\x0b\x91\x44\x97\x65\x43\x21\xf0"[..]).into()),
        srr_flags: Some(SRR_FLAG_GPRS_INDICATOR | SRR_FLAG_SINGLE_ATTEMPT_DELIVERY),
        ..Default::default()
    }
}

fn rdr() -> Rdr<'static> {
    Rdr {
        session_id: "ipsmgw.ims.example.org;1700000000;4".into(),
        vendor_specific_application_id: Some(VendorSpecificApplicationId::s6c()),
        auth_session_state: AuthSessionState::NoStateMaintained,
        origin_host: "ipsmgw.ims.example.org".into(),
        origin_realm: "ims.example.org".into(),
        destination_realm: "hss.example.org".into(),
        user_identifier: UserIdentifier {
            msisdn: Some(MSISDN.into()),
            ..Default::default()
        },
        sc_address: SC.into(),
        sm_delivery_outcome: SmDeliveryOutcome {
            ip_sm_gw: Some(DeliveryOutcome {
                sm_delivery_cause: Some(SmDeliveryCause::AbsentUser),
                absent_user_diagnostic_sm: Some(11),
                ..Default::default()
            }),
            ..Default::default()
        },
        rdr_flags: Some(RDR_FLAG_SINGLE_ATTEMPT_DELIVERY),
        ..Default::default()
    }
}

/// `bytes` re-encoded with its top-level AVPs edited as (code, flags, vendor, data).
fn edited(bytes: &[u8], edit: impl FnOnce(&mut Vec<(u32, u8, u32, Vec<u8>)>)) -> Vec<u8> {
    let msg = Message::parse(bytes).unwrap();
    let mut avps: Vec<_> = msg
        .avps()
        .map(|a| (a.code(), a.flags().0, a.vendor_id(), a.data().to_vec()))
        .collect();
    edit(&mut avps);
    let mut out = Vec::new();
    encode_message(&mut out, msg.header(), |e| {
        for (c, f, v, d) in &avps {
            e.raw(*c, AvpFlags(*f), *v, d);
        }
    });
    out
}

fn without(bytes: &[u8], def: &dict::AvpDef) -> Vec<u8> {
    edited(bytes, |a| {
        a.retain(|x| (x.0, x.2) != (def.code, def.vendor))
    })
}

fn twice(bytes: &[u8], def: &dict::AvpDef) -> Vec<u8> {
    edited(bytes, |a| {
        let x = a
            .iter()
            .find(|x| (x.0, x.2) == (def.code, def.vendor))
            .unwrap()
            .clone();
        a.push(x);
    })
}

fn err<'a, C: Command<'a>>(bytes: &'a [u8]) -> ims_diameter::Error {
    // (a helper generic over the command; the message borrows the octets)
    let m = Message::parse(bytes).unwrap();
    match C::decode(&m) {
        Ok(_) => panic!("{} decoded", std::any::type_name::<C>()),
        Err(e) => e,
    }
}

#[test]
fn alr_header_and_the_avps_on_the_wire() {
    let b = alr().encode(7, 8);
    let m = Message::parse(&b).unwrap();
    // < Diameter Header: 8388648, REQ, PXY, 16777312 >: the S6c Application-Id, on SGd too
    assert_eq!((m.code(), m.application_id()), (8_388_648, 16_777_312));
    assert!(m.is_request() && m.flags().is_proxiable());
    check_request(&m, &[dict::app::S6C]).unwrap();
    assert_eq!(reject(&b, &[dict::app::S6C], &ORIGIN).unwrap(), None);
    // a server of SGd only does not serve it (3007)
    let e = check_request(&m, &[dict::app::SGD]).unwrap_err();
    assert_eq!(e.result_code(), Some(3007));
    assert_eq!(m.avps().next().unwrap().code(), dict::SESSION_ID.code);
    // SC-Address 3300 V,M; SMS-GMSC-Alert-Event 3333 and Maximum-UE-Availability-Time 3329 V only
    let sc = m.find(dict::SC_ADDRESS).unwrap();
    assert_eq!((sc.code(), sc.vendor_id(), sc.data()), (3300, 10415, SC));
    assert_eq!(sc.flags().0, AvpFlags::VENDOR | AvpFlags::MANDATORY);
    let ev = m.find(dict::SMS_GMSC_ALERT_EVENT).unwrap();
    assert_eq!(
        (ev.code(), ev.flags().0, ev.u32().unwrap()),
        (3333, AvpFlags::VENDOR, 1)
    );
    let t = m.find(dict::MAXIMUM_UE_AVAILABILITY_TIME).unwrap();
    assert_eq!((t.code(), t.flags().0), (3329, AvpFlags::VENDOR));
    assert_eq!(t.time().unwrap(), Time(3_900_000_600));
    // Serving-Node 2401 (V,M) { IP-SM-GW-Number 3100, IP-SM-GW-Name 3101, IP-SM-GW-Realm 3112 }
    let sn = m.find(dict::SERVING_NODE).unwrap();
    assert_eq!((sn.code(), sn.vendor_id()), (2401, 10415));
    assert_eq!(sn.flags().0, AvpFlags::VENDOR | AvpFlags::MANDATORY);
    let members: Vec<u32> = sn.grouped().unwrap().map(|a| a.code()).collect();
    assert_eq!(members, [3100, 3101, 3112]);
    // User-Identifier 3102 { User-Name 1, MSISDN 701 }
    let uid = m.find(dict::USER_IDENTIFIER).unwrap();
    let members: Vec<(u32, u32)> = uid
        .grouped()
        .unwrap()
        .map(|a| (a.code(), a.vendor_id()))
        .collect();
    assert_eq!(members, [(1, 0), (701, 10415)]);
    assert_eq!(Alr::decode(&m).unwrap(), alr());
}

#[test]
fn alr_required_avps_are_5005_and_answers_carry_them() {
    let b = alr().encode(1, 2);
    for def in [
        dict::SC_ADDRESS,
        dict::USER_IDENTIFIER,
        dict::AUTH_SESSION_STATE,
        dict::ORIGIN_HOST,
        dict::ORIGIN_REALM,
        dict::DESTINATION_REALM,
    ] {
        let bad = without(&b, def);
        let e = err::<Alr<'_>>(&bad);
        assert_eq!(
            (e.kind, e.avp),
            (ErrorKind::MissingAvp, Some(def.id())),
            "{}",
            def.name
        );
        assert_eq!(e.result_code(), Some(5005));
        // the server's error answer names it in Failed-AVP and is a valid ALA with
        // { Auth-Session-State } even when the request lacked it
        let ans = reject(&bad, &[dict::app::S6C], &ORIGIN).unwrap().unwrap();
        let a = Message::parse(&ans).unwrap();
        assert_eq!((a.code(), a.application_id()), (8_388_648, 16_777_312));
        let ala = Ala::decode(&a).unwrap();
        assert_eq!(ala.outcome(), Some(Outcome::from_result_code(5005)));
        assert_eq!(ala.auth_session_state, AuthSessionState::NoStateMaintained);
        let f = &ala.failed_avp[0].other[0];
        assert_eq!((f.code, f.vendor), (def.code, def.vendor));
    }
    // the optional ones may go
    for def in [
        dict::DESTINATION_HOST,
        dict::SERVING_NODE,
        dict::SMS_GMSC_ALERT_EVENT,
        dict::MAXIMUM_UE_AVAILABILITY_TIME,
        dict::VENDOR_SPECIFIC_APPLICATION_ID,
    ] {
        let ok = without(&b, def);
        Alr::decode(&Message::parse(&ok).unwrap()).unwrap();
    }
}

#[test]
fn single_avps_twice_are_5009_and_session_id_must_lead() {
    let cases: [(Vec<u8>, &[&dict::AvpDef]); 3] = [
        (
            alr().encode(1, 2),
            &[
                dict::SC_ADDRESS,
                dict::USER_IDENTIFIER,
                dict::SMS_GMSC_ALERT_EVENT,
                dict::SERVING_NODE,
                dict::DESTINATION_HOST,
            ],
        ),
        (
            srr().encode(1, 2),
            &[
                dict::MSISDN,
                dict::SC_ADDRESS,
                dict::SM_RP_MTI,
                dict::SRR_FLAGS,
            ],
        ),
        (
            rdr().encode(1, 2),
            &[
                dict::SM_DELIVERY_OUTCOME,
                dict::RDR_FLAGS,
                dict::USER_IDENTIFIER,
            ],
        ),
    ];
    for (b, defs) in &cases {
        for def in *defs {
            let bad = twice(b, def);
            let e = validate(&Message::parse(&bad).unwrap()).unwrap_err();
            assert_eq!(
                (e.kind, e.avp),
                (ErrorKind::AvpOccursTooManyTimes, Some(def.id())),
                "{}",
                def.name
            );
            assert_eq!(e.result_code(), Some(5009));
        }
        // Session-Id not first: 5008 (AVP not allowed where it stands)
        let moved = edited(b, |a| {
            let s = a.remove(0);
            a.push(s);
        });
        let e = validate(&Message::parse(&moved).unwrap()).unwrap_err();
        assert_eq!(e.kind, ErrorKind::AvpNotAllowed);
        assert_eq!(e.result_code(), Some(5008));
        // an unknown AVP with the M bit: 5001; without it: kept in `other`
        let m_bit = edited(b, |a| {
            a.push((9999, AvpFlags::MANDATORY, 0, vec![1, 2, 3, 4]))
        });
        let e = validate(&Message::parse(&m_bit).unwrap()).unwrap_err();
        assert_eq!(e.result_code(), Some(5001));
        let plain = edited(b, |a| a.push((9999, 0, 0, vec![1, 2, 3, 4])));
        validate(&Message::parse(&plain).unwrap()).unwrap();
    }
}

#[test]
fn srr_and_sra_carry_the_routing_information() {
    let b = srr().encode(3, 4);
    let m = Message::parse(&b).unwrap();
    assert_eq!((m.code(), m.application_id()), (8_388_647, 16_777_312));
    let got = Srr::decode(&m).unwrap();
    assert_eq!(got, srr());
    assert_eq!(
        m.find(dict::SRR_FLAGS).unwrap().u32().unwrap(),
        SRR_FLAG_GPRS_INDICATOR | SRR_FLAG_SINGLE_ATTEMPT_DELIVERY
    );
    assert_eq!(m.find(dict::SM_RP_MTI).unwrap().i32().unwrap(), 0);
    // since Release 13 SC-Address is optional in the SRR; MSISDN and User-Name both optional
    for def in [dict::SC_ADDRESS, dict::MSISDN, dict::SM_RP_MTI] {
        Srr::decode(&Message::parse(&without(&b, def)).unwrap()).unwrap();
    }
    for def in [dict::DESTINATION_REALM, dict::ORIGIN_HOST] {
        let bad = without(&b, def);
        assert_eq!(err::<Srr<'_>>(&bad).result_code(), Some(5005));
    }

    // the HSS answers with an MME and an MSC, the SMSF over 3GPP access and the MWD status
    let mut sra = Sra::answering(&got, "hss.example.org", "hss.example.org");
    sra.set_outcome(Outcome::SUCCESS);
    sra.user_name = Some("001010000000001".into());
    sra.serving_node = Some(ServingNode {
        mme_name: Some("mme1.epc.example.org".into()),
        mme_realm: Some("epc.example.org".into()),
        mme_number_for_mt_sms: Some(tbcd("447900000200").unwrap().into()),
        ..Default::default()
    });
    sra.additional_serving_node = Some(AdditionalServingNode {
        msc_number: Some(tbcd("447900000300").unwrap().into()),
        ..Default::default()
    });
    sra.smsf_3gpp_address = Some(Smsf3gppAddress {
        number: Some(tbcd("447900000400").unwrap().into()),
        name: Some("smsf.5gc.example.org".into()),
        realm: Some("5gc.example.org".into()),
        ..Default::default()
    });
    sra.mwd_status = Some(MWD_STATUS_MNRF_SET | MWD_STATUS_MCEF_SET);
    sra.mme_absent_user_diagnostic_sm = Some(1);
    let ans = sra.encode_answer(m.header());
    let a = Message::parse(&ans).unwrap();
    assert!(!a.is_request() && a.flags().is_proxiable());
    validate(&a).unwrap();
    let back = Sra::decode(&a).unwrap();
    assert_eq!(back, sra);
    assert_eq!(back.session_id, srr().session_id);
    // SMSF-3GPP-Address 3344 { 3338, 3340, 3342 }, V only
    let s = a.find(dict::SMSF_TGPP_ADDRESS).unwrap();
    assert_eq!((s.code(), s.flags().0), (3344, AvpFlags::VENDOR));
    let members: Vec<u32> = s.grouped().unwrap().map(|x| x.code()).collect();
    assert_eq!(members, [3338, 3340, 3342]);
    // MME-Realm is V only (TS 29.173), MME-Name V,M
    let sn = a.find(dict::SERVING_NODE).unwrap();
    let flags: Vec<(u32, u8)> = sn
        .grouped()
        .unwrap()
        .map(|x| (x.code(), x.flags().0))
        .collect();
    assert_eq!(
        flags,
        [
            (2402, AvpFlags::VENDOR | AvpFlags::MANDATORY),
            (2408, AvpFlags::VENDOR),
            (1645, AvpFlags::VENDOR | AvpFlags::MANDATORY)
        ]
    );

    // an absent subscriber: Experimental-Result 5550 with the diagnostics
    let mut absent = Sra::answering(&got, "hss.example.org", "hss.example.org");
    absent.set_outcome(Outcome::tgpp(ExperimentalResultCode::AbsentUser));
    absent.mwd_status = Some(MWD_STATUS_MNRF_SET);
    absent.msc_absent_user_diagnostic_sm = Some(0);
    let ans = absent.encode_answer(m.header());
    let back = Sra::decode(&Message::parse(&ans).unwrap()).unwrap();
    assert_eq!(back.outcome().unwrap().code(), 5550);
    assert_eq!(back.result_code, None);
    assert_eq!(back.mwd_status, Some(MWD_STATUS_MNRF_SET));
}

#[test]
fn rdr_reports_the_delivery_outcome() {
    let b = rdr().encode(5, 6);
    let m = Message::parse(&b).unwrap();
    assert_eq!((m.code(), m.application_id()), (8_388_649, 16_777_312));
    check_request(&m, &[dict::app::S6C]).unwrap();
    assert_eq!(Rdr::decode(&m).unwrap(), rdr());
    // SM-Delivery-Outcome 3316 { IP-SM-GW-SM-Delivery-Outcome 3320 { 3321, 3322 } }
    let o = m.find(dict::SM_DELIVERY_OUTCOME).unwrap();
    let inner = o.grouped().unwrap().next().unwrap();
    assert_eq!(inner.code(), 3320);
    let leaves: Vec<(u32, u32)> = inner
        .grouped()
        .unwrap()
        .map(|x| (x.code(), x.u32().unwrap()))
        .collect();
    assert_eq!(leaves, [(3321, 1), (3322, 11)]);
    for def in [
        dict::SM_DELIVERY_OUTCOME,
        dict::SC_ADDRESS,
        dict::USER_IDENTIFIER,
    ] {
        let bad = without(&b, def);
        let e = err::<Rdr<'_>>(&bad);
        assert_eq!((e.kind, e.avp), (ErrorKind::MissingAvp, Some(def.id())));
    }
    // the Release 16 SMSF members of SM-Delivery-Outcome
    let mut r = rdr();
    r.sm_delivery_outcome.smsf_3gpp = Some(DeliveryOutcome {
        sm_delivery_cause: Some(SmDeliveryCause::UeMemoryCapacityExceeded),
        ..Default::default()
    });
    r.smsmi_correlation_id = Some(SmsmiCorrelationId {
        destination_sip_uri: Some("sip:bob@ims.example.org".into()),
        ..Default::default()
    });
    let b2 = r.encode(1, 1);
    let m2 = Message::parse(&b2).unwrap();
    let codes: Vec<u32> = m2
        .find(dict::SM_DELIVERY_OUTCOME)
        .unwrap()
        .grouped()
        .unwrap()
        .map(|x| x.code())
        .collect();
    assert_eq!(codes, [3320, 3336]);
    assert_eq!(Rdr::decode(&m2).unwrap(), r);

    let mut rda = Rda::answering(&rdr(), "hss.example.org", "hss.example.org");
    rda.set_outcome(Outcome::SUCCESS);
    rda.user_identifier = Some(UserIdentifier {
        msisdn: Some(MSISDN.into()),
        ..Default::default()
    });
    let ans = rda.encode_answer(m.header());
    let back = Rda::decode(&Message::parse(&ans).unwrap()).unwrap();
    assert_eq!(back, rda);
    // an unknown subscriber: 5001 DIAMETER_ERROR_USER_UNKNOWN as Experimental-Result
    rda.set_outcome(Outcome::tgpp(ExperimentalResultCode::from_u32(5001)));
    let ans = rda.encode_answer(m.header());
    let a = Message::parse(&ans).unwrap();
    let er = a.find(dict::EXPERIMENTAL_RESULT).unwrap();
    let v: Vec<(u32, u32)> = er
        .grouped()
        .unwrap()
        .map(|x| (x.code(), x.u32().unwrap()))
        .collect();
    assert_eq!(v, [(266, 10415), (298, 5001)]);
}

#[test]
fn grouped_members_are_checked() {
    // a Serving-Node member twice is 5009 naming the member, an unknown M-bit member 5001,
    // a GMLC-Address of a known family with the wrong length 5014
    let mut a = alr();
    a.serving_node = Some(ServingNode {
        gmlc_address: Some(Address::Ipv4(Ipv4Addr::new(192, 0, 2, 1))),
        lcs_capabilities_sets: Some(3),
        ..Default::default()
    });
    let b = a.encode(1, 2);
    assert_eq!(
        Alr::decode(&Message::parse(&b).unwrap()).unwrap(),
        a,
        "TS 29.173 members round trip"
    );
    let sn_of = |members: Vec<(u32, u8, u32, Vec<u8>)>| {
        let mut inner = Vec::new();
        for (c, f, v, d) in &members {
            let len = 8 + if *v != 0 { 4 } else { 0 } + d.len();
            inner.extend_from_slice(&c.to_be_bytes());
            inner.push(*f);
            inner.extend_from_slice(&(len as u32).to_be_bytes()[1..]);
            if *v != 0 {
                inner.extend_from_slice(&v.to_be_bytes());
            }
            inner.extend_from_slice(d);
            inner.resize(inner.len().div_ceil(4) * 4, 0);
        }
        edited(&b, |avps| {
            for x in avps.iter_mut() {
                if x.0 == 2401 {
                    x.3 = inner.clone();
                }
            }
        })
    };
    let vm = AvpFlags::VENDOR | AvpFlags::MANDATORY;
    let name = (3101, vm, 10415, b"ipsmgw.ims.example.org".to_vec());
    let e = err::<Alr<'_>>(&sn_of(vec![name.clone(), name.clone()]));
    assert_eq!(
        (e.kind, e.avp, e.result_code()),
        (
            ErrorKind::AvpOccursTooManyTimes,
            Some(AvpId {
                code: 3101,
                vendor: 10415
            }),
            Some(5009)
        )
    );
    let e = err::<Alr<'_>>(&sn_of(vec![name.clone(), (4242, vm, 10415, vec![0; 4])]));
    assert_eq!(e.result_code(), Some(5001));
    let e = err::<Alr<'_>>(&sn_of(vec![(2405, vm, 10415, vec![0, 1, 10, 0, 0])]));
    assert_eq!(e.result_code(), Some(5014));
    // an unknown member without M is kept
    let got_b = sn_of(vec![
        name,
        (4242, AvpFlags::VENDOR, 10415, vec![0, 0, 0, 1]),
    ]);
    let got = Alr::decode(&Message::parse(&got_b).unwrap()).unwrap();
    let sn = got.serving_node.unwrap();
    assert_eq!(sn.ip_sm_gw_name.as_deref(), Some("ipsmgw.ims.example.org"));
    assert_eq!(sn.other.len(), 1);
}

#[test]
fn ala_outcomes() {
    let req = alr();
    let b = req.encode(1, 2);
    let m = Message::parse(&b).unwrap();
    let mut ala = Ala::answering(&req, "smsc.sms.example.org", "sms.example.org");
    assert_eq!(ala.outcome(), None);
    ala.set_outcome(Outcome::SUCCESS);
    let ans = ala.encode_answer(m.header());
    let a = Message::parse(&ans).unwrap();
    // < Diameter Header: 8388648, PXY, 16777312 >, same Hop-by-Hop / End-to-End
    assert_eq!((a.code(), a.application_id()), (8_388_648, 16_777_312));
    assert!(!a.is_request() && a.flags().is_proxiable());
    assert_eq!(
        (a.header().hop_by_hop, a.header().end_to_end),
        (m.header().hop_by_hop, m.header().end_to_end)
    );
    let back = Ala::decode(&a).unwrap();
    assert_eq!(back.outcome(), Some(Outcome::SUCCESS));
    assert_eq!(back.session_id, req.session_id);
    assert_eq!(back.result_code, Some(2001));
    // ALA without Auth-Session-State: 5005
    let bad = without(&ans, dict::AUTH_SESSION_STATE);
    assert_eq!(err::<Ala<'_>>(&bad).result_code(), Some(5005));
    // a 3GPP failure travels as Experimental-Result
    ala.set_outcome(Outcome::tgpp(ExperimentalResultCode::AbsentUser));
    assert_eq!(ala.result_code, None);
    let ans = ala.encode_answer(m.header());
    let back = Ala::decode(&Message::parse(&ans).unwrap()).unwrap();
    assert_eq!(back.outcome().unwrap().code(), 5550);
}

#[test]
fn release_17_sbi_support_indicators() {
    // TS 29.338 §5.3.3.37-39 (Release 17): IP-SM-GW-SBI-Support-Indicator (3348) in
    // Serving-Node, SMSF-3GPP- (3346) and SMSF-Non-3GPP-SBI-Support-Indicator (3347) in the
    // SMSF addresses; Enumerated NOT_SUPPORT_SBI (0) / SUPPORT_SBI (1), V only
    let d = dict::lookup(3348, 10415).unwrap();
    assert_eq!(d.name, "IP-SM-GW-SBI-Support-Indicator");
    assert_eq!(SbiSupportIndicator::SupportSbi.name(), Some("SUPPORT_SBI"));
    assert_eq!(
        SbiSupportIndicator::NotSupportSbi.name(),
        Some("NOT_SUPPORT_SBI")
    );

    let mut a = alr();
    a.serving_node = Some(ServingNode {
        ip_sm_gw_name: Some("ipsmgw.ims.example.org".into()),
        ip_sm_gw_realm: Some("ims.example.org".into()),
        ip_sm_gw_sbi_support_indicator: Some(SbiSupportIndicator::SupportSbi),
        ..Default::default()
    });
    let b = a.encode(1, 2);
    let m = Message::parse(&b).unwrap();
    validate(&m).unwrap();
    let back = Alr::decode(&m).unwrap();
    assert_eq!(back, a);
    let sn = m.find(dict::SERVING_NODE).unwrap();
    let members: Vec<(u32, u8, u32, Vec<u8>)> = sn
        .grouped()
        .unwrap()
        .map(|x| (x.code(), x.flags().0, x.vendor_id(), x.data().to_vec()))
        .collect();
    // after IP-SM-GW-Realm, as the ABNF orders it; V only; the value 1
    assert_eq!(
        members.last().unwrap(),
        &(3348, AvpFlags::VENDOR, 10415, vec![0, 0, 0, 1])
    );
    assert_eq!(members[members.len() - 2].0, 3112);
    assert!(back.serving_node.unwrap().other.is_empty());

    // the SMSF addresses of an SRA; a value the specification does not name is kept
    let req = srr().encode(3, 4);
    let req_m = Message::parse(&req).unwrap();
    let got = Srr::decode(&req_m).unwrap();
    let mut sra = Sra::answering(&got, "hss.example.org", "hss.example.org");
    sra.set_outcome(Outcome::SUCCESS);
    sra.smsf_3gpp_address = Some(Smsf3gppAddress {
        name: Some("smsf.5gc.example.org".into()),
        realm: Some("5gc.example.org".into()),
        sbi_support_indicator: Some(SbiSupportIndicator::NotSupportSbi),
        ..Default::default()
    });
    sra.smsf_non_3gpp_address = Some(SmsfNon3gppAddress {
        name: Some("smsf-n3.5gc.example.org".into()),
        sbi_support_indicator: Some(SbiSupportIndicator::Unknown(7)),
        ..Default::default()
    });
    let ans = sra.encode_answer(req_m.header());
    let m = Message::parse(&ans).unwrap();
    validate(&m).unwrap();
    assert_eq!(Sra::decode(&m).unwrap(), sra);
    for (def, code, value) in [
        (dict::SMSF_TGPP_ADDRESS, 3346, 0u32),
        (dict::SMSF_NON_TGPP_ADDRESS, 3347, 7),
    ] {
        let g = m.find(def).unwrap();
        let last = g.grouped().unwrap().last().unwrap();
        assert_eq!(
            (
                last.code(),
                last.flags().0,
                last.vendor_id(),
                last.u32().unwrap()
            ),
            (code, AvpFlags::VENDOR, 10415, value)
        );
    }
}
