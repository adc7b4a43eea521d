//! SGd / Gdd (TS 29.338 §6): short messages between an MME, an SGSN or an IP-SM-GW and the
//! SMS-IWMSC / SMS-GMSC (Application-Id 16777313, vendor 10415): MO-Forward-Short-Message
//! (OFR/OFA, §6.3.2) carries a mobile-originated SMS (the RP-DATA user information,
//! an SMS-SUBMIT TPDU, in SM-RP-UI) towards the Service Centre, and MT-Forward-Short-Message
//! (TFR/TFA, §6.3.2) a mobile-terminated one (an SMS-DELIVER or SMS-STATUS-REPORT
//! TPDU) towards the serving node. The TPDU itself is TS 23.040's (`ims-sms` reads it); this
//! module only carries its octets.
//!
//! Decoding checks the command ABNF of §6.3.2 (Session-Id first; `{ }` AVPs present once,
//! `[ ]` at most once; unknown AVPs with the M bit refused with 5001) and the Grouped AVPs'
//! ABNF of §5.3.3 / §6.3.3 and TS 29.336. Answers carry their outcome as Result-Code or
//! Experimental-Result (5550 DIAMETER_ERROR_ABSENT_USER … 5558, [`ExperimentalResultCode`]);
//! `outcome()` / `set_outcome()` treat both alike.
//!
//! ```
//! use ims_diameter::sgd::{Ofa, Ofr, UserIdentifier};
//! use ims_diameter::{base, Command, Message, Outcome};
//!
//! // the IP-SM-GW forwards an SMS-SUBMIT received over SIP towards the SMS-IWMSC
//! let ofr = Ofr {
//!     session_id: "ipsmgw.ims.example.org;1;1".into(),
//!     vendor_specific_application_id: Some(base::VendorSpecificApplicationId::sgd()),
//!     auth_session_state: base::AuthSessionState::NoStateMaintained,
//!     origin_host: "ipsmgw.ims.example.org".into(),
//!     origin_realm: "ims.example.org".into(),
//!     destination_realm: "sms.example.org".into(),
//!     sc_address: (&b"\x44\x97\x00\x00\x00\x10"[..]).into(),
//!     user_identifier: UserIdentifier {
//!         msisdn: Some((&b"\x44\x97\x12\x34\x56\xf7"[..]).into()),
//!         ..Default::default()
//!     },
//!     sm_rp_ui: (&b"\x01\x05\x0b\x91\x44\x97\x65\x43\x21\xf0\x00\x00\x02\xc8\x34"[..]).into(),
//!     ..Default::default()
//! };
//! let wire = ofr.encode(1, 2);
//! let msg = Message::parse(&wire)?;
//! let got = Ofr::decode(&msg)?;
//! assert_eq!(got.sm_rp_ui, ofr.sm_rp_ui);
//!
//! // the SMS-IWMSC answers with the SMS-SUBMIT-REPORT, if any, in SM-RP-UI
//! let mut ofa = Ofa::answering(&got, "iwmsc.sms.example.org", "sms.example.org");
//! ofa.set_outcome(Outcome::SUCCESS);
//! let answer = ofa.encode_answer(msg.header());
//! let a = Message::parse(&answer)?;
//! assert_eq!(Ofa::decode(&a)?.outcome(), Some(Outcome::SUCCESS));
//! # Ok::<(), ims_diameter::Error>(())
//! ```
//!
//! [`ExperimentalResultCode`]: crate::ExperimentalResultCode

use crate::base::{
    AuthSessionState, ExperimentalResult, FailedAvp, ProxyInfo, SupportedFeatures,
    VendorSpecificApplicationId,
};
use crate::dict::{self, app, command as cmd};
use crate::types::Time;
use std::borrow::Cow;

enumerated! {
    /// SM-Enumerated-Delivery-Failure-Cause (TS 29.338 §6.3.3).
    pub enum SmEnumeratedDeliveryFailureCause: dict::SM_ENUMERATED_DELIVERY_FAILURE_CAUSE {
        MemoryCapacityExceeded = 0,
        EquipmentProtocolError = 1,
        EquipmentNotSmEquipped = 2,
        UnknownServiceCentre = 3,
        ScCongestion = 4,
        InvalidSmeAddress = 5,
        UserNotScUser = 6,
    }
}

enumerated! {
    /// SM-Delivery-Cause (TS 29.338 §5.3.3).
    pub enum SmDeliveryCause: dict::SM_DELIVERY_CAUSE {
        UeMemoryCapacityExceeded = 0,
        AbsentUser = 1,
        SuccessfulTransfer = 2,
    }
}

/// TFR-Flags bit 0 (TS 29.338 §6.3.3): More-Messages-To-Send.
pub const TFR_FLAG_MORE_MESSAGES_TO_SEND: u32 = 1;
/// OFR-Flags bit 0 (TS 29.338 §6.3.3): S6a/S6d-Indicator (the OFR comes from an SGSN over
/// Gdd, not from an MME over SGd).
pub const OFR_FLAG_S6A_S6D_INDICATOR: u32 = 1;

/// The TBCD string (TS 29.002 TBCD-STRING: two digits per octet, the first in the low nibble,
/// an odd count padded with `F`) of an E.164 number given as its digits (a leading `+` is
/// ignored), as SC-Address, MSISDN, MME-Number-for-MT-SMS and SMS-GMSC-Address carry it.
/// `None` when a character is not a digit or there is none.
pub fn tbcd(number: &str) -> Option<Vec<u8>> {
    let digits = number.strip_prefix('+').unwrap_or(number).as_bytes();
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(
        digits
            .chunks(2)
            .map(|p| {
                let hi = p.get(1).map_or(0xf, |d| d - b'0');
                (hi << 4) | (p[0] - b'0')
            })
            .collect(),
    )
}

/// The digits of a TBCD string ([`tbcd`]'s inverse): `None` when a nibble is not a digit,
/// except a final `F` filler.
pub fn tbcd_digits(octets: &[u8]) -> Option<String> {
    let mut out = String::with_capacity(octets.len() * 2);
    for (i, &o) in octets.iter().enumerate() {
        let (lo, hi) = (o & 0xf, o >> 4);
        if lo > 9 {
            return None;
        }
        out.push(char::from(b'0' + lo));
        match hi {
            0..=9 => out.push(char::from(b'0' + hi)),
            0xf if i + 1 == octets.len() => {}
            _ => return None,
        }
    }
    Some(out)
}

grouped! {
    /// User-Identifier (TS 29.336): `[ User-Name ] [ MSISDN ] [ External-Identifier ]
    /// [ LMSI ] *[ AVP ]`. In an OFR it is the SM RP OA: the originator's MSISDN (TBCD
    /// octets, TS 29.329).
    pub struct UserIdentifier<'a> [any] {
        /// User-Name (the IMSI).
        user_name: opt Cow<'a, str> = dict::USER_NAME,
        /// MSISDN (TBCD, TS 29.329).
        msisdn: opt Cow<'a, [u8]> = dict::MSISDN,
        /// External-Identifier (TS 29.336).
        external_identifier: opt Cow<'a, str> = dict::EXTERNAL_IDENTIFIER,
        /// LMSI (TS 29.173).
        lmsi: opt Cow<'a, [u8]> = dict::LMSI,
    }
}

grouped! {
    /// SMSMI-Correlation-ID (TS 29.338; the MSISDN-less SMS of TS 23.204 §6.0a):
    /// `[ HSS-ID ] [ Originating-SIP-URI ] [ Destination-SIP-URI ] *[ AVP ]`.
    pub struct SmsmiCorrelationId<'a> [any] {
        /// HSS-ID.
        hss_id: opt Cow<'a, [u8]> = dict::HSS_ID,
        /// Originating-SIP-URI.
        originating_sip_uri: opt Cow<'a, str> = dict::ORIGINATING_SIP_URI,
        /// Destination-SIP-URI.
        destination_sip_uri: opt Cow<'a, str> = dict::DESTINATION_SIP_URI,
    }
}

grouped! {
    /// SM-Delivery-Failure-Cause (TS 29.338 §6.3.3): `{ SM-Enumerated-Delivery-Failure-Cause }
    /// [ SM-Diagnostic-Info ] *[ AVP ]`.
    pub struct SmDeliveryFailureCause<'a> [any] {
        /// SM-Enumerated-Delivery-Failure-Cause.
        sm_enumerated_delivery_failure_cause: req SmEnumeratedDeliveryFailureCause = dict::SM_ENUMERATED_DELIVERY_FAILURE_CAUSE,
        /// SM-Diagnostic-Info (the RP-ERROR's user data: an SMS-SUBMIT-REPORT or
        /// SMS-DELIVER-REPORT TPDU).
        sm_diagnostic_info: opt Cow<'a, [u8]> = dict::SM_DIAGNOSTIC_INFO,
    }
}

grouped! {
    /// The outcome of a delivery attempt through one kind of node (TS 29.338 §5.3.3):
    /// the value of MME-, MSC-, SGSN- and IP-SM-GW-SM-Delivery-Outcome, `[ SM-Delivery-Cause ]
    /// [ Absent-User-Diagnostic-SM ]`.
    pub struct DeliveryOutcome<'a> [any] {
        /// SM-Delivery-Cause.
        sm_delivery_cause: opt SmDeliveryCause = dict::SM_DELIVERY_CAUSE,
        /// Absent-User-Diagnostic-SM (the TS 29.002 absent-subscriber diagnostic).
        absent_user_diagnostic_sm: opt u32 = dict::ABSENT_USER_DIAGNOSTIC_SM,
    }
}

grouped! {
    /// SM-Delivery-Outcome (TS 29.338 §5.3.3): `[ MME-SM-Delivery-Outcome ]
    /// [ MSC-SM-Delivery-Outcome ] [ SGSN-SM-Delivery-Outcome ] [ IP-SM-GW-SM-Delivery-Outcome ]
    /// [ SMSF-3GPP-SM-Delivery-Outcome ] [ SMSF-Non-3GPP-SM-Delivery-Outcome ] *[ AVP ]` (the
    /// two SMSF members since Release 16). In an OFR it reports an earlier MT delivery attempt
    /// (an SM-status report travelling as an MO message); in an S6c RDR
    /// ([`crate::s6c::Rdr`]) the outcome of the attempt the SMS-GMSC or IP-SM-GW made.
    pub struct SmDeliveryOutcome<'a> [any] {
        /// MME-SM-Delivery-Outcome.
        mme: opt DeliveryOutcome<'a> = dict::MME_SM_DELIVERY_OUTCOME,
        /// MSC-SM-Delivery-Outcome.
        msc: opt DeliveryOutcome<'a> = dict::MSC_SM_DELIVERY_OUTCOME,
        /// SGSN-SM-Delivery-Outcome.
        sgsn: opt DeliveryOutcome<'a> = dict::SGSN_SM_DELIVERY_OUTCOME,
        /// IP-SM-GW-SM-Delivery-Outcome.
        ip_sm_gw: opt DeliveryOutcome<'a> = dict::IP_SM_GW_SM_DELIVERY_OUTCOME,
        /// SMSF-3GPP-SM-Delivery-Outcome.
        smsf_3gpp: opt DeliveryOutcome<'a> = dict::SMSF_TGPP_SM_DELIVERY_OUTCOME,
        /// SMSF-Non-3GPP-SM-Delivery-Outcome.
        smsf_non_3gpp: opt DeliveryOutcome<'a> = dict::SMSF_NON_TGPP_SM_DELIVERY_OUTCOME,
    }
}

command! {
    /// MO-Forward-Short-Message-Request (TS 29.338 §6.3.2), MME / SGSN / IP-SM-GW to
    /// SMS-IWMSC: the SMS-SUBMIT (RP-DATA user information) in SM-RP-UI, the Service Centre
    /// address (SM RP DA) in SC-Address, the originator (SM RP OA) in User-Identifier.
    pub struct Ofr<'a> = (cmd::MO_FORWARD_SHORT_MESSAGE, app::SGD, true, true, "OFR") [any] {
        /// Session-Id.
        session_id: fixed Cow<'a, str> = dict::SESSION_ID,
        /// DRMP.
        drmp: opt i32 = dict::DRMP,
        /// Vendor-Specific-Application-Id (use [`VendorSpecificApplicationId::sgd`]).
        vendor_specific_application_id: opt VendorSpecificApplicationId<'a> = dict::VENDOR_SPECIFIC_APPLICATION_ID,
        /// Auth-Session-State (NO_STATE_MAINTAINED on SGd).
        auth_session_state: req AuthSessionState = dict::AUTH_SESSION_STATE,
        /// Origin-Host.
        origin_host: req Cow<'a, str> = dict::ORIGIN_HOST,
        /// Origin-Realm.
        origin_realm: req Cow<'a, str> = dict::ORIGIN_REALM,
        /// Destination-Host.
        destination_host: opt Cow<'a, str> = dict::DESTINATION_HOST,
        /// Destination-Realm.
        destination_realm: req Cow<'a, str> = dict::DESTINATION_REALM,
        /// SC-Address (the Service Centre's E.164 number in international format as TBCD
        /// digits, without a nature-of-address octet; TS 29.002 TBCD-String).
        sc_address: req Cow<'a, [u8]> = dict::SC_ADDRESS,
        /// OFR-Flags ([`OFR_FLAG_S6A_S6D_INDICATOR`]).
        ofr_flags: opt u32 = dict::OFR_FLAGS,
        /// Supported-Features.
        supported_features: vec SupportedFeatures<'a> [1] = dict::SUPPORTED_FEATURES,
        /// User-Identifier (the originator).
        user_identifier: req UserIdentifier<'a> = dict::USER_IDENTIFIER,
        /// SM-RP-UI (the SMS-SUBMIT TPDU, at most 200 octets).
        sm_rp_ui: req Cow<'a, [u8]> = dict::SM_RP_UI,
        /// SMSMI-Correlation-ID.
        smsmi_correlation_id: opt SmsmiCorrelationId<'a> = dict::SMSMI_CORRELATION_ID,
        /// SM-Delivery-Outcome.
        sm_delivery_outcome: opt SmDeliveryOutcome<'a> = dict::SM_DELIVERY_OUTCOME,
        /// Proxy-Info.
        proxy_info: vec ProxyInfo<'a> = dict::PROXY_INFO,
        /// Route-Record.
        route_record: vec Cow<'a, str> [1] = dict::ROUTE_RECORD,
    }
}

command! {
    /// MO-Forward-Short-Message-Answer (TS 29.338 §6.3.2): the outcome, and on success the
    /// SMS-SUBMIT-REPORT (RP-ACK user data) in SM-RP-UI, on DIAMETER_ERROR_SM_DELIVERY_FAILURE
    /// the cause in SM-Delivery-Failure-Cause.
    pub struct Ofa<'a> = (cmd::MO_FORWARD_SHORT_MESSAGE, app::SGD, false, true, "OFA") [any] {
        /// Session-Id.
        session_id: fixed Cow<'a, str> = dict::SESSION_ID,
        /// DRMP.
        drmp: opt i32 = dict::DRMP,
        /// Vendor-Specific-Application-Id.
        vendor_specific_application_id: opt VendorSpecificApplicationId<'a> = dict::VENDOR_SPECIFIC_APPLICATION_ID,
        /// Result-Code.
        result_code: opt u32 = dict::RESULT_CODE,
        /// Experimental-Result.
        experimental_result: opt ExperimentalResult<'a> = dict::EXPERIMENTAL_RESULT,
        /// Auth-Session-State.
        auth_session_state: req AuthSessionState = dict::AUTH_SESSION_STATE,
        /// Origin-Host.
        origin_host: req Cow<'a, str> = dict::ORIGIN_HOST,
        /// Origin-Realm.
        origin_realm: req Cow<'a, str> = dict::ORIGIN_REALM,
        /// Supported-Features.
        supported_features: vec SupportedFeatures<'a> [1] = dict::SUPPORTED_FEATURES,
        /// SM-Delivery-Failure-Cause.
        sm_delivery_failure_cause: opt SmDeliveryFailureCause<'a> = dict::SM_DELIVERY_FAILURE_CAUSE,
        /// SM-RP-UI (the SMS-SUBMIT-REPORT TPDU).
        sm_rp_ui: opt Cow<'a, [u8]> = dict::SM_RP_UI,
        /// Failed-AVP.
        failed_avp: vec FailedAvp<'a> = dict::FAILED_AVP,
        /// Proxy-Info.
        proxy_info: vec ProxyInfo<'a> = dict::PROXY_INFO,
        /// Route-Record.
        route_record: vec Cow<'a, str> [1] = dict::ROUTE_RECORD,
    }
}

command! {
    /// MT-Forward-Short-Message-Request (TS 29.338 §6.3.2), SMS-GMSC (or SMS Router) to the
    /// serving MME / SGSN / IP-SM-GW: the SMS-DELIVER (or SMS-STATUS-REPORT) in SM-RP-UI for
    /// the subscriber named by User-Name (the IMSI), from the Service Centre in SC-Address.
    pub struct Tfr<'a> = (cmd::MT_FORWARD_SHORT_MESSAGE, app::SGD, true, true, "TFR") [any] {
        /// Session-Id.
        session_id: fixed Cow<'a, str> = dict::SESSION_ID,
        /// DRMP.
        drmp: opt i32 = dict::DRMP,
        /// Vendor-Specific-Application-Id (use [`VendorSpecificApplicationId::sgd`]).
        vendor_specific_application_id: opt VendorSpecificApplicationId<'a> = dict::VENDOR_SPECIFIC_APPLICATION_ID,
        /// Auth-Session-State.
        auth_session_state: req AuthSessionState = dict::AUTH_SESSION_STATE,
        /// Origin-Host.
        origin_host: req Cow<'a, str> = dict::ORIGIN_HOST,
        /// Origin-Realm.
        origin_realm: req Cow<'a, str> = dict::ORIGIN_REALM,
        /// Destination-Host (required: the serving node the HSS named).
        destination_host: req Cow<'a, str> = dict::DESTINATION_HOST,
        /// Destination-Realm.
        destination_realm: req Cow<'a, str> = dict::DESTINATION_REALM,
        /// User-Name (the recipient's IMSI).
        user_name: req Cow<'a, str> = dict::USER_NAME,
        /// Supported-Features.
        supported_features: vec SupportedFeatures<'a> [1] = dict::SUPPORTED_FEATURES,
        /// SMSMI-Correlation-ID.
        smsmi_correlation_id: opt SmsmiCorrelationId<'a> = dict::SMSMI_CORRELATION_ID,
        /// SC-Address (the Service Centre, SM RP OA; TBCD digits as in the OFR).
        sc_address: req Cow<'a, [u8]> = dict::SC_ADDRESS,
        /// SM-RP-UI (the SMS-DELIVER or SMS-STATUS-REPORT TPDU).
        sm_rp_ui: req Cow<'a, [u8]> = dict::SM_RP_UI,
        /// MME-Number-for-MT-SMS (TS 29.272).
        mme_number_for_mt_sms: opt Cow<'a, [u8]> = dict::MME_NUMBER_FOR_MT_SMS,
        /// SGSN-Number (TS 29.272).
        sgsn_number: opt Cow<'a, [u8]> = dict::SGSN_NUMBER,
        /// TFR-Flags ([`TFR_FLAG_MORE_MESSAGES_TO_SEND`]).
        tfr_flags: opt u32 = dict::TFR_FLAGS,
        /// SM-Delivery-Timer (seconds).
        sm_delivery_timer: opt u32 = dict::SM_DELIVERY_TIMER,
        /// SM-Delivery-Start-Time.
        sm_delivery_start_time: opt Time = dict::SM_DELIVERY_START_TIME,
        /// Maximum-Retransmission-Time.
        maximum_retransmission_time: opt Time = dict::MAXIMUM_RETRANSMISSION_TIME,
        /// SMS-GMSC-Address (E.164, TBCD).
        sms_gmsc_address: opt Cow<'a, [u8]> = dict::SMS_GMSC_ADDRESS,
        /// Proxy-Info.
        proxy_info: vec ProxyInfo<'a> = dict::PROXY_INFO,
        /// Route-Record.
        route_record: vec Cow<'a, str> [1] = dict::ROUTE_RECORD,
    }
}

command! {
    /// MT-Forward-Short-Message-Answer (TS 29.338 §6.3.2): the outcome, the SMS-DELIVER-REPORT
    /// in SM-RP-UI, on DIAMETER_ERROR_ABSENT_USER the diagnostic and a retransmission time.
    pub struct Tfa<'a> = (cmd::MT_FORWARD_SHORT_MESSAGE, app::SGD, false, true, "TFA") [any] {
        /// Session-Id.
        session_id: fixed Cow<'a, str> = dict::SESSION_ID,
        /// DRMP.
        drmp: opt i32 = dict::DRMP,
        /// Vendor-Specific-Application-Id.
        vendor_specific_application_id: opt VendorSpecificApplicationId<'a> = dict::VENDOR_SPECIFIC_APPLICATION_ID,
        /// Result-Code.
        result_code: opt u32 = dict::RESULT_CODE,
        /// Experimental-Result.
        experimental_result: opt ExperimentalResult<'a> = dict::EXPERIMENTAL_RESULT,
        /// Auth-Session-State.
        auth_session_state: req AuthSessionState = dict::AUTH_SESSION_STATE,
        /// Origin-Host.
        origin_host: req Cow<'a, str> = dict::ORIGIN_HOST,
        /// Origin-Realm.
        origin_realm: req Cow<'a, str> = dict::ORIGIN_REALM,
        /// Supported-Features.
        supported_features: vec SupportedFeatures<'a> [1] = dict::SUPPORTED_FEATURES,
        /// Absent-User-Diagnostic-SM.
        absent_user_diagnostic_sm: opt u32 = dict::ABSENT_USER_DIAGNOSTIC_SM,
        /// SM-Delivery-Failure-Cause.
        sm_delivery_failure_cause: opt SmDeliveryFailureCause<'a> = dict::SM_DELIVERY_FAILURE_CAUSE,
        /// SM-RP-UI (the SMS-DELIVER-REPORT TPDU).
        sm_rp_ui: opt Cow<'a, [u8]> = dict::SM_RP_UI,
        /// Requested-Retransmission-Time.
        requested_retransmission_time: opt Time = dict::REQUESTED_RETRANSMISSION_TIME,
        /// User-Identifier.
        user_identifier: opt UserIdentifier<'a> = dict::USER_IDENTIFIER,
        /// Failed-AVP.
        failed_avp: vec FailedAvp<'a> = dict::FAILED_AVP,
        /// Proxy-Info.
        proxy_info: vec ProxyInfo<'a> = dict::PROXY_INFO,
        /// Route-Record.
        route_record: vec Cow<'a, str> [1] = dict::ROUTE_RECORD,
    }
}

answer_outcome!(Ofa, Tfa);

impl<'a> Ofa<'a> {
    /// An answer to `request` from `origin_host` / `origin_realm`: Session-Id,
    /// Vendor-Specific-Application-Id, Auth-Session-State and Proxy-Info copied (RFC 6733
    /// §6.2), no outcome yet (set one with `set_outcome`).
    pub fn answering(request: &Ofr<'a>, origin_host: &'a str, origin_realm: &'a str) -> Ofa<'a> {
        Ofa {
            session_id: request.session_id.clone(),
            vendor_specific_application_id: request.vendor_specific_application_id.clone(),
            auth_session_state: request.auth_session_state,
            origin_host: origin_host.into(),
            origin_realm: origin_realm.into(),
            proxy_info: request.proxy_info.clone(),
            ..Default::default()
        }
    }
}

impl<'a> Tfa<'a> {
    /// An answer to `request` (as [`Ofa::answering`]).
    pub fn answering(request: &Tfr<'a>, origin_host: &'a str, origin_realm: &'a str) -> Tfa<'a> {
        Tfa {
            session_id: request.session_id.clone(),
            vendor_specific_application_id: request.vendor_specific_application_id.clone(),
            auth_session_state: request.auth_session_state,
            origin_host: origin_host.into(),
            origin_realm: origin_realm.into(),
            proxy_info: request.proxy_info.clone(),
            ..Default::default()
        }
    }
}
