//! SGd (TS 29.338 §6.3.2): the OFR/OFA and TFR/TFA ABNF as the typed decoders check it, each
//! broken rule against the RFC 6733 result code it must produce, and the octets of the AVPs the
//! IP-SM-GW relies on (code, vendor, flags).

use ims_diameter::answer::{check_request, reject, Origin};
use ims_diameter::base::{AuthSessionState, VendorSpecificApplicationId};
use ims_diameter::sgd::*;
use ims_diameter::{
    dict, encode_message, AvpFlags, AvpId, Command, ErrorKind, ExperimentalResultCode, Message,
    Outcome, Time,
};

const ORIGIN: Origin<'static> = Origin {
    host: "iwmsc.sms.example.org",
    realm: "sms.example.org",
    state_id: None,
};
/// An SMS-SUBMIT TPDU (TS 23.040 §9.2.2.2): to +4479 5634 120, "Hi" in the GSM alphabet.
const SUBMIT: &[u8] = b"\x01\x05\x0b\x91\x44\x97\x65\x43\x21\xf0\x00\x00\x02\xc8\x34";
/// The Service Centre +44 7900 000001 as SC-Address carries it: TBCD digits, no
/// nature-of-address octet.
const SC: &[u8] = b"\x44\x97\x00\x00\x00\x10";

fn ofr() -> Ofr<'static> {
    Ofr {
        session_id: "ipsmgw.ims.example.org;1700000000;1".into(),
        vendor_specific_application_id: Some(VendorSpecificApplicationId::sgd()),
        auth_session_state: AuthSessionState::NoStateMaintained,
        origin_host: "ipsmgw.ims.example.org".into(),
        origin_realm: "ims.example.org".into(),
        destination_realm: "sms.example.org".into(),
        sc_address: SC.into(),
        user_identifier: UserIdentifier {
            msisdn: Some((&b"\x44\x97\x12\x34\x56\xf7"[..]).into()),
            ..Default::default()
        },
        sm_rp_ui: SUBMIT.into(),
        ..Default::default()
    }
}

fn tfr() -> Tfr<'static> {
    Tfr {
        session_id: "smsgmsc.sms.example.org;1700000000;2".into(),
        vendor_specific_application_id: Some(VendorSpecificApplicationId::sgd()),
        auth_session_state: AuthSessionState::NoStateMaintained,
        origin_host: "smsgmsc.sms.example.org".into(),
        origin_realm: "sms.example.org".into(),
        destination_host: "ipsmgw.ims.example.org".into(),
        destination_realm: "ims.example.org".into(),
        user_name: "001010000000001".into(),
        sc_address: SC.into(),
        sm_rp_ui: (&b"\x04\x0b\x91\x44\x97\x21\x43\x65\xf7\x00\x00\x52\x11\x72\x12\x00\x00\x00\x02\xc8\x34"[..]).into(),
        tfr_flags: Some(TFR_FLAG_MORE_MESSAGES_TO_SEND),
        sm_delivery_timer: Some(600),
        sm_delivery_start_time: Some(Time(3_900_000_000)),
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

fn ofr_err(bytes: &[u8]) -> ims_diameter::Error {
    Ofr::decode(&Message::parse(bytes).unwrap()).unwrap_err()
}

fn tfr_err(bytes: &[u8]) -> ims_diameter::Error {
    Tfr::decode(&Message::parse(bytes).unwrap()).unwrap_err()
}

#[test]
fn ofr_header_and_the_avps_on_the_wire() {
    let b = ofr().encode(7, 8);
    let m = Message::parse(&b).unwrap();
    // < Diameter Header: 8388645, REQ, PXY, 16777313 >
    assert_eq!((m.code(), m.application_id()), (8_388_645, 16_777_313));
    assert!(m.is_request() && m.flags().is_proxiable());
    check_request(&m, &[dict::app::SGD]).unwrap();
    assert_eq!(reject(&b, &[dict::app::SGD], &ORIGIN).unwrap(), None);
    // SM-RP-UI: code 3301, vendor 10415, V and M set, the TPDU as is
    let ui = m.find(dict::SM_RP_UI).unwrap();
    assert_eq!((ui.code(), ui.vendor_id()), (3301, 10415));
    assert_eq!(ui.flags().0, AvpFlags::VENDOR | AvpFlags::MANDATORY);
    assert_eq!(ui.data(), SUBMIT);
    assert_eq!(m.find(dict::SC_ADDRESS).unwrap().data(), SC);
    // User-Identifier { MSISDN }
    let uid = m.find(dict::USER_IDENTIFIER).unwrap();
    let msisdn = uid.grouped().unwrap().next().unwrap();
    assert_eq!((msisdn.code(), msisdn.vendor_id()), (701, 10415));
    // Session-Id first
    assert_eq!(m.avps().next().unwrap().code(), dict::SESSION_ID.code);
    let got = Ofr::decode(&m).unwrap();
    assert_eq!(got, ofr());
}

#[test]
fn ofr_required_avps_are_5005() {
    let b = ofr().encode(1, 2);
    for def in [
        dict::SC_ADDRESS,
        dict::USER_IDENTIFIER,
        dict::SM_RP_UI,
        dict::AUTH_SESSION_STATE,
        dict::DESTINATION_REALM,
        dict::ORIGIN_HOST,
    ] {
        let bad = without(&b, def);
        let e = ofr_err(&bad);
        assert_eq!(
            (e.kind, e.avp),
            (ErrorKind::MissingAvp, Some(def.id())),
            "{}",
            def.name
        );
        assert_eq!(e.result_code(), Some(5005));
        // the server's answer names the missing AVP in Failed-AVP and is a valid OFA, with
        // { Auth-Session-State } even when the request lacked it
        let ans = reject(&bad, &[dict::app::SGD], &ORIGIN).unwrap().unwrap();
        let a = Message::parse(&ans).unwrap();
        assert_eq!(a.find(dict::RESULT_CODE).unwrap().u32().unwrap(), 5005);
        let failed = a.find(dict::FAILED_AVP).unwrap();
        let f = failed.grouped().unwrap().next().unwrap();
        assert_eq!((f.code(), f.vendor_id()), (def.code, def.vendor));
        let ofa = Ofa::decode(&a).unwrap();
        assert_eq!(ofa.outcome(), Some(Outcome::from_result_code(5005)));
        assert_eq!(ofa.auth_session_state, AuthSessionState::NoStateMaintained);
        assert_eq!(
            a.find_all(dict::AUTH_SESSION_STATE).count(),
            1,
            "{}",
            def.name
        );
    }
    // Destination-Host is optional in an OFR
    let ok = without(&b, dict::DESTINATION_HOST);
    Ofr::decode(&Message::parse(&ok).unwrap()).unwrap();
}

#[test]
fn ofr_single_avps_twice_are_5009_and_session_id_must_lead() {
    let mut o = ofr();
    o.ofr_flags = Some(OFR_FLAG_S6A_S6D_INDICATOR);
    let b = o.encode(1, 2);
    for def in [
        dict::SM_RP_UI,
        dict::SC_ADDRESS,
        dict::OFR_FLAGS,
        dict::USER_IDENTIFIER,
    ] {
        let e = ofr_err(&twice(&b, def));
        assert_eq!(
            (e.kind, e.avp),
            (ErrorKind::AvpOccursTooManyTimes, Some(def.id())),
            "{}",
            def.name
        );
        assert_eq!(e.result_code(), Some(5009));
    }
    // < Session-Id > is a fixed AVP: anywhere else it is not allowed
    let moved = edited(&b, |a| {
        let s = a.remove(0);
        a.push(s);
    });
    assert_eq!(ofr_err(&moved).kind, ErrorKind::AvpNotAllowed);
}

#[test]
fn unknown_mandatory_avps_are_5001_and_unknown_optional_ones_kept() {
    let b = ofr().encode(1, 2);
    let bad = edited(&b, |a| {
        a.push((
            3399,
            AvpFlags::VENDOR | AvpFlags::MANDATORY,
            10415,
            vec![0; 4],
        ))
    });
    let e = ofr_err(&bad);
    assert_eq!(
        (e.kind, e.avp),
        (ErrorKind::AvpUnsupported, Some(AvpId::new(3399, 10415)))
    );
    assert_eq!(e.result_code(), Some(5001));
    let ok = edited(&b, |a| a.push((3399, AvpFlags::VENDOR, 10415, vec![0; 4])));
    let o = Ofr::decode(&Message::parse(&ok).unwrap()).unwrap();
    assert_eq!(o.other.len(), 1);
    assert_eq!(o.other[0].code, 3399);
}

#[test]
fn tfr_required_avps_are_5005() {
    let b = tfr().encode(3, 4);
    let m = Message::parse(&b).unwrap();
    assert_eq!((m.code(), m.application_id()), (8_388_646, 16_777_313));
    check_request(&m, &[dict::app::SGD]).unwrap();
    assert_eq!(Tfr::decode(&m).unwrap(), tfr());
    // { Destination-Host } and { User-Name } are required in a TFR (not in an OFR)
    for def in [
        dict::DESTINATION_HOST,
        dict::USER_NAME,
        dict::SC_ADDRESS,
        dict::SM_RP_UI,
    ] {
        let e = tfr_err(&without(&b, def));
        assert_eq!(
            (e.kind, e.avp),
            (ErrorKind::MissingAvp, Some(def.id())),
            "{}",
            def.name
        );
    }
    // the IP-SM-GW's answer to a TFR lacking Auth-Session-State is a valid TFA: it carries
    // { Auth-Session-State } NO_STATE_MAINTAINED (TS 29.338 §6.3.2.5) and names the AVP missing
    let bad = without(&b, dict::AUTH_SESSION_STATE);
    assert_eq!(tfr_err(&bad).result_code(), Some(5005));
    let ans = reject(&bad, &[dict::app::SGD], &ORIGIN).unwrap().unwrap();
    let a = Message::parse(&ans).unwrap();
    let tfa = Tfa::decode(&a).unwrap();
    assert_eq!(tfa.outcome(), Some(Outcome::from_result_code(5005)));
    assert_eq!(tfa.auth_session_state, AuthSessionState::NoStateMaintained);
    let failed = a.find(dict::FAILED_AVP).unwrap();
    let f = failed.grouped().unwrap().next().unwrap();
    assert_eq!(f.code(), dict::AUTH_SESSION_STATE.code);
    // a protocol error (E bit, 3xxx) keeps the plain answer-message: no Auth-Session-State
    let mut flags_bad = bad.clone();
    flags_bad[4] |= 0x08; // a reserved command flag: 3008 DIAMETER_INVALID_HDR_BITS
    if let Some(ans) = reject(&flags_bad, &[dict::app::SGD], &ORIGIN).unwrap() {
        let a = Message::parse(&ans).unwrap();
        assert!(a.flags().is_error());
        assert!(a.find(dict::AUTH_SESSION_STATE).is_none());
    }
    for def in [dict::TFR_FLAGS, dict::SM_DELIVERY_TIMER, dict::USER_NAME] {
        let e = tfr_err(&twice(&b, def));
        assert_eq!(e.kind, ErrorKind::AvpOccursTooManyTimes, "{}", def.name);
    }
    // a bad value: Unsigned32 TFR-Flags of 3 octets is 5014
    let bad = edited(&b, |a| {
        for x in a.iter_mut() {
            if x.0 == dict::TFR_FLAGS.code {
                x.3 = vec![0, 0, 1];
            }
        }
    });
    assert_eq!(tfr_err(&bad).result_code(), Some(5014));
}

#[test]
fn grouped_avps_keep_their_abnf() {
    // SM-Delivery-Failure-Cause ::= { SM-Enumerated-Delivery-Failure-Cause } [ SM-Diagnostic-Info ]
    let mut tfa = Tfa::answering(&tfr(), "ipsmgw.ims.example.org", "ims.example.org");
    tfa.set_outcome(Outcome::tgpp(ExperimentalResultCode::SmDeliveryFailure));
    tfa.sm_delivery_failure_cause = Some(SmDeliveryFailureCause {
        sm_enumerated_delivery_failure_cause:
            SmEnumeratedDeliveryFailureCause::MemoryCapacityExceeded,
        sm_diagnostic_info: Some((&b"\x00\x01\x02"[..]).into()),
        ..Default::default()
    });
    let b = tfa.encode(5, 6);
    let m = Message::parse(&b).unwrap();
    let back = Tfa::decode(&m).unwrap();
    assert_eq!(back, tfa);
    assert_eq!(back.outcome().unwrap().code(), 5555);
    assert_eq!(
        back.outcome().unwrap().name(),
        Some("DIAMETER_ERROR_SM_DELIVERY_FAILURE")
    );
    // the same answer with the cause's required member removed: 5005 naming that member
    let inner = m.find(dict::SM_DELIVERY_FAILURE_CAUSE).unwrap();
    let members: Vec<_> = inner
        .grouped()
        .unwrap()
        .filter(|a| a.code() != dict::SM_ENUMERATED_DELIVERY_FAILURE_CAUSE.code)
        .map(|a| (a.code(), a.flags().0, a.vendor_id(), a.data().to_vec()))
        .collect();
    let bad = edited(&b, |a| {
        for x in a.iter_mut() {
            if x.0 == dict::SM_DELIVERY_FAILURE_CAUSE.code {
                let mut g = Vec::new();
                let mut e = ims_diameter::Encoder::new(&mut g);
                for (c, f, v, d) in &members {
                    e.raw(*c, AvpFlags(*f), *v, d);
                }
                x.3 = g;
            }
        }
    });
    let e = Tfa::decode(&Message::parse(&bad).unwrap()).unwrap_err();
    assert_eq!(
        (e.kind, e.avp),
        (
            ErrorKind::MissingAvp,
            Some(dict::SM_ENUMERATED_DELIVERY_FAILURE_CAUSE.id())
        )
    );
}

#[test]
fn answers_carry_the_sgd_outcomes_and_the_report_tpdu() {
    // absent user: Experimental-Result 5550 with the diagnostic and a retransmission time
    let mut tfa = Tfa::answering(&tfr(), "ipsmgw.ims.example.org", "ims.example.org");
    tfa.set_outcome(Outcome::tgpp(ExperimentalResultCode::AbsentUser));
    tfa.absent_user_diagnostic_sm = Some(12);
    tfa.requested_retransmission_time = Some(Time(3_900_000_600));
    let a = tfa.encode_answer(&Tfr::header(9, 10));
    let m = Message::parse(&a).unwrap();
    assert_eq!(
        (m.hop_by_hop(), m.end_to_end(), m.is_request()),
        (9, 10, false)
    );
    let back = Tfa::decode(&m).unwrap();
    assert_eq!(back.outcome().unwrap().code(), 5550);
    assert_eq!(back.result_code, None);
    assert_eq!(back.session_id, tfr().session_id);
    // success with the SMS-SUBMIT-REPORT in SM-RP-UI
    let mut ofa = Ofa::answering(&ofr(), ORIGIN.host, ORIGIN.realm);
    ofa.set_outcome(Outcome::SUCCESS);
    ofa.sm_rp_ui = Some((&b"\x01\x00\x52\x11\x72\x12\x00\x00\x00"[..]).into());
    let a = ofa.encode_answer(&Ofr::header(1, 2));
    let back = Ofa::decode(&Message::parse(&a).unwrap()).unwrap();
    assert_eq!(back.outcome(), Some(Outcome::SUCCESS));
    assert_eq!(back.sm_rp_ui, ofa.sm_rp_ui);
    assert_eq!(
        SmDeliveryCause::from_i32(2),
        SmDeliveryCause::SuccessfulTransfer
    );
}

#[test]
fn an_ofr_reports_an_earlier_delivery_outcome() {
    let mut o = ofr();
    o.sm_delivery_outcome = Some(SmDeliveryOutcome {
        ip_sm_gw: Some(DeliveryOutcome {
            sm_delivery_cause: Some(SmDeliveryCause::AbsentUser),
            absent_user_diagnostic_sm: Some(12),
            ..Default::default()
        }),
        ..Default::default()
    });
    o.smsmi_correlation_id = Some(SmsmiCorrelationId {
        originating_sip_uri: Some("sip:alice@ims.example.org".into()),
        ..Default::default()
    });
    let b = o.encode(1, 2);
    let m = Message::parse(&b).unwrap();
    let outcome = m.find(dict::SM_DELIVERY_OUTCOME).unwrap();
    let member = outcome.grouped().unwrap().next().unwrap();
    assert_eq!(member.code(), 3320); // IP-SM-GW-SM-Delivery-Outcome
    assert_eq!(Ofr::decode(&m).unwrap(), o);
}

#[test]
fn e164_numbers_as_tbcd() {
    assert_eq!(tbcd("+447900000001").unwrap(), SC);
    assert_eq!(tbcd("44791234567").unwrap(), b"\x44\x97\x21\x43\x65\xf7");
    assert_eq!(tbcd_digits(SC).as_deref(), Some("447900000001"));
    assert_eq!(
        tbcd_digits(b"\x44\x97\x21\x43\x65\xf7").as_deref(),
        Some("44791234567")
    );
    for bad in ["", "+", "44a1", "+44 79"] {
        assert_eq!(tbcd(bad), None, "{bad:?}");
    }
    // a filler before the end, or a non-digit nibble, is not a number
    assert_eq!(tbcd_digits(b"\xf4\x97"), None);
    assert_eq!(tbcd_digits(b"\x4a"), None);
    assert_eq!(tbcd_digits(b"\x4f\x97"), None);
    for n in ["1", "12", "123456789012345"] {
        assert_eq!(tbcd_digits(&tbcd(n).unwrap()).as_deref(), Some(n));
    }
}

/// HSS-ID is an OctetString (TS 29.338 S6c AVP table), M bit not set: any octets, not only
/// UTF-8, round trip in an SMSMI-Correlation-ID.
#[test]
fn hss_id_is_an_octet_string() {
    assert_eq!(dict::HSS_ID.ty, dict::AvpType::OctetString);
    assert_eq!(dict::HSS_ID.m, dict::FlagRule::MustNot);
    let mut o = ofr();
    o.smsmi_correlation_id = Some(SmsmiCorrelationId {
        hss_id: Some((&b"\x21\xf3\xff\x00"[..]).into()),
        originating_sip_uri: Some("sip:alice@ims.example.org".into()),
        ..Default::default()
    });
    let b = o.encode(1, 2);
    let m = Message::parse(&b).unwrap();
    check_request(&m, &[dict::app::SGD]).unwrap();
    let id = m.find(dict::SMSMI_CORRELATION_ID).unwrap();
    let hss = id.grouped().unwrap().next().unwrap();
    assert_eq!((hss.code(), hss.vendor_id()), (3325, 10415));
    assert_eq!(hss.flags().0, AvpFlags::VENDOR);
    assert_eq!(hss.data(), b"\x21\xf3\xff\x00");
    assert_eq!(Ofr::decode(&m).unwrap(), o);
}
