//! The IP-SM-GW towards an external SMSC over SGd (TS 29.338 §6, TS 23.204 §6.1, §6.3): what an
//! RP message from a UE becomes in an MO-Forward-Short-Message-Request (OFR), what the
//! SMS-IWMSC's answer (OFA) becomes for the UE, what an SMS-GMSC's
//! MT-Forward-Short-Message-Request (TFR) becomes for the recipient, and how the recipient's
//! RP-ACK/RP-ERROR (or its absence) becomes the answer (TFA).
//!
//! Sans-IO: bytes and typed SGd commands in, bytes and typed SGd commands out; the IM server
//! ([`crate::im_server`]) owns the Diameter node and the SIP endpoint. With an SMSC the IP-SM-GW
//! stores nothing: store and forward, retries and status reports are the SMSC's.
//!
//! Error mapping (TS 23.040 §11, the relay-layer interworking an IP-SM-GW does like an MSC):
//! - MO (OFA → RP cause, TS 24.011 §8.2.5.4): success → RP-ACK carrying the OFA's SM-RP-UI (the
//!   SMS-SUBMIT-REPORT) when there is one; DIAMETER_ERROR_SM_DELIVERY_FAILURE (5555) by its
//!   SM-Enumerated-Delivery-Failure-Cause: unknown service centre → 1 "unassigned number", SC
//!   congestion → 42 "congestion", invalid SME address → 21 "short message transfer rejected",
//!   user not SC user → 28 "unidentified subscriber", the MT-only causes → 38 "network out of
//!   order", the RP-ERROR carrying SM-Diagnostic-Info (the SMS-SUBMIT-REPORT) when present;
//!   DIAMETER_ERROR_FACILITY_NOT_SUPPORTED (5552) → 69 "requested facility not implemented";
//!   DIAMETER_ERROR_SERVICE_NOT_SUBSCRIBED (5556) → 50 "requested facility not subscribed";
//!   DIAMETER_ERROR_SERVICE_BARRED (5557) → 10 "call barred"; DIAMETER_ERROR_USER_UNKNOWN
//!   (5001) → 30 "unknown subscriber"; anything else — another error, no answer, no route —
//!   → 38 "network out of order" (a local or lower-layer failure).
//! - MT (UE → TFA, TS 23.040 §11.1): RP-ACK → DIAMETER_SUCCESS with the SMS-DELIVER-REPORT in
//!   SM-RP-UI; RP-ERROR 22 → 5555 MEMORY_CAPACITY_EXCEEDED, any other RP-ERROR → 5555
//!   EQUIPMENT_PROTOCOL_ERROR, both with the SMS-DELIVER-REPORT in SM-Diagnostic-Info; no
//!   RP-ACK/RP-ERROR within TR1N → 5555 EQUIPMENT_PROTOCOL_ERROR; a SIP failure response →
//!   5555 EQUIPMENT_PROTOCOL_ERROR; the recipient not registered (no third-party registration,
//!   or 480) → DIAMETER_ERROR_ABSENT_USER (5550) with Absent-User-Diagnostic-SM 11 "deregistered
//!   in the HSS/HLR for IMS"; a SIP transaction timeout (no final response, 408) → 5550 with 12
//!   "no response via the IP-SM-GW"; a recipient the IP-SM-GW cannot name →
//!   DIAMETER_ERROR_USER_UNKNOWN (5001).

use ims_diameter::base::{AuthSessionState, VendorSpecificApplicationId};
use ims_diameter::sgd::{
    tbcd, tbcd_digits, Ofa, Ofr, SmDeliveryFailureCause, SmEnumeratedDeliveryFailureCause,
    SmsmiCorrelationId, Tfa, Tfr, UserIdentifier,
};
use ims_diameter::{ExperimentalResultCode, Outcome};
use ims_sms::{decode, Address, Direction, RpBody, RpCause, RpMessage};
use std::borrow::Cow;

/// Absent-User-Diagnostic-SM "deregistered in the HSS/HLR for IMS" (TS 23.040 §3.3.2).
pub const ABSENT_DEREGISTERED_FOR_IMS: u32 = 11;
/// Absent-User-Diagnostic-SM "no response via the IP-SM-GW" (TS 23.040 §3.3.2).
pub const ABSENT_NO_RESPONSE_VIA_IP_SM_GW: u32 = 12;

/// The Diameter identities of an SGd exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SgdIdentity {
    /// Our Origin-Host.
    pub origin_host: String,
    /// Our Origin-Realm.
    pub origin_realm: String,
    /// The SMSC's Diameter host (Destination-Host of the OFR; `None`: routed by realm).
    pub smsc_host: Option<String>,
    /// The SMSC's realm (Destination-Realm of the OFR).
    pub smsc_realm: String,
}

/// Who submitted a short message (SM RP OA, TS 29.338 Table 6.2.1.1/1: User-Identifier).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Originator {
    /// The MSISDN (`+` and digits); for an MSISDN-less submitter the dummy MSISDN (TS 23.682
    /// §5.15: the dummy MSISDN and the IMSI go to the SMS-SC).
    pub msisdn: Option<String>,
    /// The IMSI, when known (User-Name).
    pub imsi: Option<String>,
    /// For a submitter without MSISDN: its SIP URI (SMSMI-Correlation-ID's
    /// Originating-SIP-URI, TS 23.204 §6.0a).
    pub sip_uri: Option<String>,
}

/// A mobile-originated RP-DATA to forward to the SMS-IWMSC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MoForward {
    /// The RP-Message-Reference (what the RP-ACK/RP-ERROR to the UE names).
    pub rp_mr: u8,
    /// The service centre the UE addressed (RP-DA: digits, no `+`).
    pub sc_address: String,
    /// The TPDU (SMS-SUBMIT or SMS-COMMAND) from RP-User-Data.
    pub tpdu: Vec<u8>,
}

/// What an RP message from a UE is, with an SMSC configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MoInput {
    /// An RP-DATA to forward in an OFR.
    Forward(MoForward),
    /// A malformed RP-DATA: this answer (RP-ERROR) goes back to the UE, nothing is forwarded.
    Reject(Vec<u8>),
    /// Not an RP-DATA (an RP-ACK/RP-ERROR answering an MT RP-DATA, an RP-SMMA).
    NotData,
}

/// Reads an RP message a UE sent: an RP-DATA becomes what the OFR carries. `default_sc` (digits)
/// stands in for an empty RP-DA.
pub fn mo_input(body: &[u8], default_sc: &str) -> MoInput {
    let Some(&first) = body.first() else {
        return MoInput::NotData;
    };
    // RP-MTI 0: RP-DATA from the MS (TS 24.011 §8.2.2)
    if first & 0x07 != 0 {
        return MoInput::NotData;
    }
    let rp = match RpMessage::decode(body, Direction::MsToNetwork) {
        Ok(rp) => rp,
        Err(e) => {
            return match e.answer(body, Direction::MsToNetwork) {
                Some(a) => MoInput::Reject(a),
                None => MoInput::NotData,
            }
        }
    };
    match rp.body {
        RpBody::Data {
            destination,
            user_data,
            ..
        } if !user_data.is_empty() => {
            let sc = destination
                .map(|a| a.value)
                .filter(|v| tbcd(v).is_some())
                .unwrap_or_else(|| default_sc.trim_start_matches('+').to_string());
            MoInput::Forward(MoForward {
                rp_mr: rp.message_reference,
                sc_address: sc,
                tpdu: user_data.to_vec(),
            })
        }
        RpBody::Data { .. } => ims_sms::answer::rp_error(
            Direction::MsToNetwork,
            rp.message_reference,
            RpCause::INVALID_MANDATORY_INFORMATION,
        )
        .map_or(MoInput::NotData, MoInput::Reject),
        _ => MoInput::NotData,
    }
}

/// The OFR forwarding `fwd` from `from` (TS 29.338 §6.2.1.1, §6.3.2.2): SC-Address = the RP-DA
/// (TBCD digits), User-Identifier = the submitter's MSISDN (TBCD) and IMSI (User-Name) as far
/// as known, SM-RP-UI = the TPDU, SMSMI-Correlation-ID with the submitter's SIP URI (and the
/// recipient's, when addressed by one) for an MSISDN-less submitter (TS 23.204 §6.0a).
/// Auth-Session-State NO_STATE_MAINTAINED, Vendor-Specific-Application-Id {10415, SGd}.
pub fn ofr(
    session_id: String,
    id: &SgdIdentity,
    fwd: &MoForward,
    from: &Originator,
    to_sip_uri: Option<&str>,
) -> Ofr<'static> {
    let correlation =
        (from.sip_uri.is_some() || to_sip_uri.is_some()).then(|| SmsmiCorrelationId {
            originating_sip_uri: from.sip_uri.clone().map(Cow::Owned),
            destination_sip_uri: to_sip_uri.map(|u| Cow::Owned(u.to_string())),
            ..Default::default()
        });
    Ofr {
        session_id: session_id.into(),
        vendor_specific_application_id: Some(VendorSpecificApplicationId::sgd()),
        auth_session_state: AuthSessionState::NoStateMaintained,
        origin_host: id.origin_host.clone().into(),
        origin_realm: id.origin_realm.clone().into(),
        destination_host: id.smsc_host.clone().map(Cow::Owned),
        destination_realm: id.smsc_realm.clone().into(),
        sc_address: tbcd(&fwd.sc_address).unwrap_or_default().into(),
        user_identifier: UserIdentifier {
            user_name: from.imsi.clone().map(Cow::Owned),
            msisdn: from.msisdn.as_deref().and_then(tbcd).map(Cow::Owned),
            ..Default::default()
        },
        sm_rp_ui: fwd.tpdu.clone().into(),
        smsmi_correlation_id: correlation,
        ..Default::default()
    }
}

/// The RP cause for an OFA that is not a success (see the module documentation), `None` for a
/// success.
pub fn mo_cause(ofa: &Ofa<'_>) -> Option<RpCause> {
    let outcome = ofa.outcome()?;
    if outcome.is_success() {
        return None;
    }
    Some(match outcome.code() {
        5555 => match ofa
            .sm_delivery_failure_cause
            .as_ref()
            .map(|c| c.sm_enumerated_delivery_failure_cause)
        {
            Some(SmEnumeratedDeliveryFailureCause::UnknownServiceCentre) => {
                RpCause::UNASSIGNED_NUMBER
            }
            Some(SmEnumeratedDeliveryFailureCause::ScCongestion) => RpCause::CONGESTION,
            Some(SmEnumeratedDeliveryFailureCause::InvalidSmeAddress) => {
                RpCause::SHORT_MESSAGE_TRANSFER_REJECTED
            }
            Some(SmEnumeratedDeliveryFailureCause::UserNotScUser) => {
                RpCause::UNIDENTIFIED_SUBSCRIBER
            }
            _ => RpCause::NETWORK_OUT_OF_ORDER,
        },
        5552 => RpCause::FACILITY_NOT_IMPLEMENTED,
        5556 => RpCause::FACILITY_NOT_SUBSCRIBED,
        5557 => RpCause::CALL_BARRED,
        5001 => RpCause::UNKNOWN_SUBSCRIBER,
        _ => RpCause::NETWORK_OUT_OF_ORDER,
    })
}

/// The answer to the UE's RP-DATA `rp_mr` from the OFA (`None`: no answer came, or it was not a
/// valid OFA): RP-ACK with the SMS-SUBMIT-REPORT, or RP-ERROR with the mapped cause (and the
/// SMS-SUBMIT-REPORT of SM-Diagnostic-Info when present).
pub fn mo_answer(rp_mr: u8, ofa: Option<&Ofa<'_>>) -> Option<Vec<u8>> {
    let dir = Direction::NetworkToMs;
    let Some(ofa) = ofa else {
        return RpMessage::error(dir, rp_mr, RpCause::NETWORK_OUT_OF_ORDER, None)
            .encode()
            .ok();
    };
    match mo_cause(ofa) {
        None if ofa.outcome().is_some() => RpMessage::ack(dir, rp_mr, ofa.sm_rp_ui.as_deref())
            .encode()
            .ok(),
        // an answer without an outcome is no answer
        None => RpMessage::error(dir, rp_mr, RpCause::NETWORK_OUT_OF_ORDER, None)
            .encode()
            .ok(),
        Some(cause) => {
            let report = ofa
                .sm_delivery_failure_cause
                .as_ref()
                .and_then(|c| c.sm_diagnostic_info.as_deref());
            RpMessage::error(dir, rp_mr, cause, report).encode().ok()
        }
    }
}

/// The RP-DATA (network → MS) with reference `rp_mr` carrying the TFR's TPDU, its RP-OA the
/// TFR's SC-Address (`default_sc`, digits, when that is not a TBCD number).
pub fn mt_rp_data(rp_mr: u8, tfr: &Tfr<'_>, default_sc: &str) -> Option<Vec<u8>> {
    let sc = tbcd_digits(&tfr.sc_address)
        .filter(|d| !d.is_empty())
        .unwrap_or_else(|| default_sc.trim_start_matches('+').to_string());
    RpMessage::data_mt(rp_mr, Address::international(&sc), &tfr.sm_rp_ui)
        .encode()
        .ok()
}

/// How an MT delivery attempt for a TFR ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MtResult {
    /// The recipient's RP-ACK, with its SMS-DELIVER-REPORT if any.
    Acked(Option<Vec<u8>>),
    /// The recipient's RP-ERROR: its cause and SMS-DELIVER-REPORT if any.
    Refused {
        /// RP-Cause.
        cause: RpCause,
        /// The SMS-DELIVER-REPORT (RP-ERROR form).
        report: Option<Vec<u8>>,
    },
    /// The recipient has no live registration (or the MESSAGE got 480).
    NotRegistered,
    /// The MESSAGE got no final response (a SIP transaction timeout, 408).
    NoSipAnswer,
    /// The MESSAGE got this failure response.
    SipRefused(u16),
    /// The MESSAGE got a 2xx but no RP-ACK/RP-ERROR came within TR1N.
    NoRpAnswer,
    /// The IP-SM-GW cannot name the recipient (User-Name / SMSMI-Correlation-ID unknown).
    UnknownUser,
}

impl MtResult {
    /// The result of a MESSAGE's final status (`None`: none came) that is not a 2xx.
    pub fn of_sip(status: Option<u16>) -> MtResult {
        match status {
            None | Some(408) => MtResult::NoSipAnswer,
            Some(480) => MtResult::NotRegistered,
            Some(c) => MtResult::SipRefused(c),
        }
    }
}

/// The recipient's answer to an MT RP-DATA: its RP-Message-Reference and the result, `None`
/// when `body` is not a valid RP-ACK/RP-ERROR from an MS.
pub fn mt_answer_of(body: &[u8]) -> Option<(u8, MtResult)> {
    let sms = decode(body, Direction::MsToNetwork).ok()?;
    let mr = sms.rp.message_reference;
    match sms.rp.body {
        RpBody::Ack { user_data } => Some((mr, MtResult::Acked(user_data.map(<[u8]>::to_vec)))),
        RpBody::Error {
            cause, user_data, ..
        } => Some((
            mr,
            MtResult::Refused {
                cause,
                report: user_data.map(<[u8]>::to_vec),
            },
        )),
        _ => None,
    }
}

/// The TFA for `tfr` from `origin_host` / `origin_realm` reporting `result` (see the module
/// documentation for the mapping).
pub fn tfa<'a>(
    tfr: &Tfr<'a>,
    origin_host: &'a str,
    origin_realm: &'a str,
    result: &'a MtResult,
) -> Tfa<'a> {
    let mut a = Tfa::answering(tfr, origin_host, origin_realm);
    let failure = |cause, report: &'a Option<Vec<u8>>| SmDeliveryFailureCause {
        sm_enumerated_delivery_failure_cause: cause,
        sm_diagnostic_info: report.as_deref().map(Cow::Borrowed),
        ..Default::default()
    };
    match result {
        MtResult::Acked(report) => {
            a.set_outcome(Outcome::SUCCESS);
            a.sm_rp_ui = report.as_deref().map(Cow::Borrowed);
        }
        MtResult::Refused { cause, report } => {
            a.set_outcome(Outcome::tgpp(ExperimentalResultCode::SmDeliveryFailure));
            let c = if *cause == RpCause::MEMORY_CAPACITY_EXCEEDED {
                SmEnumeratedDeliveryFailureCause::MemoryCapacityExceeded
            } else {
                SmEnumeratedDeliveryFailureCause::EquipmentProtocolError
            };
            a.sm_delivery_failure_cause = Some(failure(c, report));
        }
        MtResult::SipRefused(_) | MtResult::NoRpAnswer => {
            a.set_outcome(Outcome::tgpp(ExperimentalResultCode::SmDeliveryFailure));
            a.sm_delivery_failure_cause = Some(failure(
                SmEnumeratedDeliveryFailureCause::EquipmentProtocolError,
                &None,
            ));
        }
        MtResult::NotRegistered => {
            a.set_outcome(Outcome::tgpp(ExperimentalResultCode::AbsentUser));
            a.absent_user_diagnostic_sm = Some(ABSENT_DEREGISTERED_FOR_IMS);
        }
        MtResult::NoSipAnswer => {
            a.set_outcome(Outcome::tgpp(ExperimentalResultCode::AbsentUser));
            a.absent_user_diagnostic_sm = Some(ABSENT_NO_RESPONSE_VIA_IP_SM_GW);
        }
        MtResult::UnknownUser => {
            a.set_outcome(Outcome::tgpp(ExperimentalResultCode::UserUnknown));
        }
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;
    use ims_diameter::{Command, Message};

    const TPDU: &[u8] = b"\x01\x05\x0b\x91\x44\x97\x65\x43\x21\xf0\x00\x00\x02\xc8\x34";

    fn id() -> SgdIdentity {
        SgdIdentity {
            origin_host: "ipsmgw.ims.example.org".into(),
            origin_realm: "ims.example.org".into(),
            smsc_host: Some("smsc.sms.example.org".into()),
            smsc_realm: "sms.example.org".into(),
        }
    }

    #[test]
    fn an_rp_data_becomes_an_ofr_with_the_rp_da_as_sc_address() {
        let body = RpMessage::data_mo(9, Address::international("447900000001"), TPDU)
            .encode()
            .unwrap();
        let MoInput::Forward(fwd) = mo_input(&body, "+15550000") else {
            panic!("forwarded")
        };
        assert_eq!((fwd.rp_mr, fwd.sc_address.as_str()), (9, "447900000001"));
        let from = Originator {
            msisdn: Some("+15550001".into()),
            imsi: Some("001010000000001".into()),
            sip_uri: None,
        };
        let ofr = ofr("s;1".into(), &id(), &fwd, &from, None);
        let wire = ofr.encode(1, 2);
        let got = Ofr::decode(&Message::parse(&wire).unwrap()).unwrap();
        assert_eq!(&*got.sc_address, b"\x44\x97\x00\x00\x00\x10");
        assert_eq!(got.sm_rp_ui.as_ref(), TPDU);
        assert_eq!(
            got.user_identifier.msisdn.as_deref(),
            Some(&b"\x51\x55\x00\x10"[..])
        );
        assert_eq!(
            got.user_identifier.user_name.as_deref(),
            Some("001010000000001")
        );
        assert!(got.smsmi_correlation_id.is_none());
        assert_eq!(
            got.destination_host.as_deref(),
            Some("smsc.sms.example.org")
        );
        // not RP-DATA: left to the IP-SM-GW core; an empty RP-User-Data: RP-ERROR 96
        let smma = RpMessage::smma(1).encode().unwrap();
        assert_eq!(mo_input(&smma, "1"), MoInput::NotData);
        let empty = RpMessage::data_mo(4, Address::international("1"), &[])
            .encode()
            .unwrap();
        let MoInput::Reject(e) = mo_input(&empty, "1") else {
            panic!("rejected")
        };
        let e = RpMessage::decode(&e, Direction::NetworkToMs).unwrap();
        assert!(matches!(
            e.body,
            RpBody::Error { cause, .. } if cause == RpCause::INVALID_MANDATORY_INFORMATION
        ));
    }

    fn ofa_with(outcome: Outcome, cause: Option<SmEnumeratedDeliveryFailureCause>) -> Ofa<'static> {
        let mut a = Ofa::default();
        a.set_outcome(outcome);
        a.sm_delivery_failure_cause = cause.map(|c| SmDeliveryFailureCause {
            sm_enumerated_delivery_failure_cause: c,
            sm_diagnostic_info: Some(Cow::Borrowed(b"\x01\xd0")),
            ..Default::default()
        });
        a
    }

    #[test]
    fn ofa_outcomes_map_to_rp_causes() {
        use SmEnumeratedDeliveryFailureCause as C;
        let sdf = Outcome::tgpp(ExperimentalResultCode::SmDeliveryFailure);
        for (ofa, want) in [
            (ofa_with(Outcome::SUCCESS, None), None),
            (ofa_with(sdf, Some(C::UnknownServiceCentre)), Some(1)),
            (ofa_with(sdf, Some(C::ScCongestion)), Some(42)),
            (ofa_with(sdf, Some(C::InvalidSmeAddress)), Some(21)),
            (ofa_with(sdf, Some(C::UserNotScUser)), Some(28)),
            (ofa_with(sdf, Some(C::EquipmentProtocolError)), Some(38)),
            (
                ofa_with(
                    Outcome::tgpp(ExperimentalResultCode::FacilityNotSupported),
                    None,
                ),
                Some(69),
            ),
            (
                ofa_with(
                    Outcome::tgpp(ExperimentalResultCode::ServiceNotSubscribed),
                    None,
                ),
                Some(50),
            ),
            (
                ofa_with(Outcome::tgpp(ExperimentalResultCode::ServiceBarred), None),
                Some(10),
            ),
            (
                ofa_with(Outcome::tgpp(ExperimentalResultCode::UserUnknown), None),
                Some(30),
            ),
            (ofa_with(Outcome::from_result_code(3002), None), Some(38)),
        ] {
            assert_eq!(mo_cause(&ofa).map(|c| c.0), want, "{:?}", ofa.outcome());
            let rp = mo_answer(5, Some(&ofa)).unwrap();
            let rp = RpMessage::decode(&rp, Direction::NetworkToMs).unwrap();
            assert_eq!(rp.message_reference, 5);
            match (rp.body, want) {
                (RpBody::Ack { .. }, None) => {}
                (
                    RpBody::Error {
                        cause, user_data, ..
                    },
                    Some(w),
                ) => {
                    assert_eq!(cause.0, w);
                    // the SM-Diagnostic-Info travels as the RP-ERROR's report
                    let has = ofa.sm_delivery_failure_cause.is_some();
                    assert_eq!(user_data.is_some(), has);
                }
                (b, w) => panic!("{b:?} for {w:?}"),
            }
        }
        // no answer: 38
        let rp = mo_answer(6, None).unwrap();
        let rp = RpMessage::decode(&rp, Direction::NetworkToMs).unwrap();
        assert!(matches!(rp.body, RpBody::Error { cause, .. } if cause.0 == 38));
    }

    #[test]
    fn mt_results_map_to_tfa_outcomes() {
        let tfr = Tfr {
            session_id: "smsc;1".into(),
            sc_address: Cow::Borrowed(b"\x44\x97\x00\x00\x00\x10"),
            sm_rp_ui: Cow::Borrowed(b"\x04\x00"),
            ..Default::default()
        };
        let rp = mt_rp_data(3, &tfr, "+1").unwrap();
        let m = RpMessage::decode(&rp, Direction::NetworkToMs).unwrap();
        let RpBody::Data {
            originator,
            user_data,
            ..
        } = m.body
        else {
            panic!("RP-DATA")
        };
        assert_eq!(originator.unwrap().value, "447900000001");
        assert_eq!(user_data, b"\x04\x00");
        let report = Some(vec![0u8, 0xd0]);
        for (r, code, cause, diag) in [
            (MtResult::Acked(Some(vec![0, 0])), 2001, None, None),
            (
                MtResult::Refused {
                    cause: RpCause::MEMORY_CAPACITY_EXCEEDED,
                    report: report.clone(),
                },
                5555,
                Some(SmEnumeratedDeliveryFailureCause::MemoryCapacityExceeded),
                None,
            ),
            (
                MtResult::Refused {
                    cause: RpCause::PROTOCOL_ERROR_UNSPECIFIED,
                    report: None,
                },
                5555,
                Some(SmEnumeratedDeliveryFailureCause::EquipmentProtocolError),
                None,
            ),
            (
                MtResult::SipRefused(403),
                5555,
                Some(SmEnumeratedDeliveryFailureCause::EquipmentProtocolError),
                None,
            ),
            (
                MtResult::NoRpAnswer,
                5555,
                Some(SmEnumeratedDeliveryFailureCause::EquipmentProtocolError),
                None,
            ),
            (MtResult::NotRegistered, 5550, None, Some(11)),
            (MtResult::of_sip(Some(480)), 5550, None, Some(11)),
            (MtResult::of_sip(None), 5550, None, Some(12)),
            (MtResult::of_sip(Some(408)), 5550, None, Some(12)),
            (MtResult::UnknownUser, 5001, None, None),
        ] {
            let a = tfa(&tfr, "ipsmgw", "ims", &r);
            assert_eq!(a.outcome().map(|o| o.code()), Some(code), "{r:?}");
            assert_eq!(
                a.sm_delivery_failure_cause
                    .as_ref()
                    .map(|c| c.sm_enumerated_delivery_failure_cause),
                cause,
                "{r:?}"
            );
            assert_eq!(a.absent_user_diagnostic_sm, diag, "{r:?}");
            if let MtResult::Acked(rep) = &r {
                assert_eq!(a.sm_rp_ui.as_deref(), rep.as_deref());
            }
            if let MtResult::Refused { report: rep, .. } = &r {
                let d = a.sm_delivery_failure_cause.as_ref().unwrap();
                assert_eq!(d.sm_diagnostic_info.as_deref(), rep.as_deref());
            }
            assert_eq!(a.session_id, "smsc;1");
        }
        // the UE's answers
        let ack = RpMessage::ack(Direction::MsToNetwork, 3, Some(b"\x00\x00"))
            .encode()
            .unwrap();
        assert_eq!(
            mt_answer_of(&ack),
            Some((3, MtResult::Acked(Some(vec![0, 0]))))
        );
        let err = RpMessage::error(Direction::MsToNetwork, 4, RpCause(22), None)
            .encode()
            .unwrap();
        assert_eq!(
            mt_answer_of(&err),
            Some((
                4,
                MtResult::Refused {
                    cause: RpCause(22),
                    report: None
                }
            ))
        );
        assert_eq!(mt_answer_of(&RpMessage::smma(1).encode().unwrap()), None);
    }
}
