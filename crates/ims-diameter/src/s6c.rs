//! S6c (TS 29.338 §5, Application-Id 16777312, vendor 10415): the HSS and the central SMS
//! functions. Send-Routing-Info-for-SM (SRR/SRA, §5.3.2.3-4) asks the HSS where to deliver an
//! MT short message; Alert-Service-Centre (ALR/ALA, §5.3.2.5-6) tells a Service Centre that a
//! subscriber it holds messages for can receive them again; Report-SM-Delivery-Status
//! (RDR/RDA, §5.3.2.7-8) reports a failed (or successful) delivery to the HSS so it keeps the
//! Message Waiting Data.
//!
//! Alert-Service-Centre is sent from the HSS to the SMS-IWMSC, and from an MME or SGSN (over
//! SGd/Gdd, TS 29.338 §6.1) to the SMS-GMSC, possibly via an SMS Router. On SGd/Gdd it is the
//! same command **with the S6c Application-Id** (16777312): the SGd application (16777313) has
//! no ALR of its own. A Service Centre that accepts alerts over an SGd connection therefore
//! advertises S6c as well (`Vendor-Specific-Application-Id {10415, 16777312}` in its CER/CEA).
//!
//! Decoding checks the command ABNF (Session-Id first; `{ }` present once, `[ ]` at most once;
//! unknown AVPs with the M bit refused with 5001) and the Grouped AVPs' ABNF (§5.3.3, TS 29.173
//! §6.4 for Serving-Node, TS 29.336 for User-Identifier). Answers carry Result-Code or
//! Experimental-Result (5001 DIAMETER_ERROR_USER_UNKNOWN, 5550 DIAMETER_ERROR_ABSENT_USER …
//! 5558, [`ExperimentalResultCode`]); `outcome()` / `set_outcome()` treat both alike.
//!
//! ```
//! use ims_diameter::s6c::{Ala, Alr, SMS_GMSC_ALERT_EVENT_UE_AVAILABLE_FOR_MT_SMS};
//! use ims_diameter::sgd::{tbcd, UserIdentifier};
//! use ims_diameter::{base, Command, Message, Outcome};
//!
//! // the subscriber is reachable again: alert the Service Centre that holds its messages
//! let alr = Alr {
//!     session_id: "ipsmgw.ims.example.org;1;7".into(),
//!     vendor_specific_application_id: Some(base::VendorSpecificApplicationId::s6c()),
//!     auth_session_state: base::AuthSessionState::NoStateMaintained,
//!     origin_host: "ipsmgw.ims.example.org".into(),
//!     origin_realm: "ims.example.org".into(),
//!     destination_host: Some("smsc.sms.example.org".into()),
//!     destination_realm: "sms.example.org".into(),
//!     sc_address: tbcd("447900000010").unwrap().into(),
//!     user_identifier: UserIdentifier {
//!         msisdn: Some(tbcd("447912345678").unwrap().into()),
//!         ..Default::default()
//!     },
//!     sms_gmsc_alert_event: Some(SMS_GMSC_ALERT_EVENT_UE_AVAILABLE_FOR_MT_SMS),
//!     ..Default::default()
//! };
//! let wire = alr.encode(1, 2);
//! let msg = Message::parse(&wire)?;
//! let got = Alr::decode(&msg)?;
//! assert_eq!(got, alr);
//!
//! let mut ala = Ala::answering(&got, "smsc.sms.example.org", "sms.example.org");
//! ala.set_outcome(Outcome::SUCCESS);
//! let answer = ala.encode_answer(msg.header());
//! assert_eq!(Ala::decode(&Message::parse(&answer)?)?.outcome(), Some(Outcome::SUCCESS));
//! # Ok::<(), ims_diameter::Error>(())
//! ```
//!
//! [`ExperimentalResultCode`]: crate::ExperimentalResultCode

use crate::base::{
    AuthSessionState, ExperimentalResult, FailedAvp, ProxyInfo, SupportedFeatures,
    VendorSpecificApplicationId,
};
use crate::dict::{self, app, command as cmd};
use crate::sgd::{SmDeliveryOutcome, SmsmiCorrelationId, UserIdentifier};
use crate::types::{Address, Time};
use std::borrow::Cow;

enumerated! {
    /// SM-RP-MTI (TS 29.338 §5.3.3.2): the type of the MT message the SRR is for.
    pub enum SmRpMti: dict::SM_RP_MTI {
        SmDeliver = 0,
        SmStatusReport = 1,
    }
}

enumerated! {
    /// IP-SM-GW-SBI-Support-Indicator, SMSF-3GPP-SBI-Support-Indicator and
    /// SMSF-Non-3GPP-SBI-Support-Indicator (TS 29.338 §5.3.3.37–39, Release 17): whether the
    /// node also offers its service-based interface. The three AVPs share the values (names
    /// read from IP-SM-GW-SBI-Support-Indicator's dictionary entry).
    pub enum SbiSupportIndicator: dict::IP_SM_GW_SBI_SUPPORT_INDICATOR {
        NotSupportSbi = 0,
        SupportSbi = 1,
    }
}

enumerated! {
    /// SM-Delivery-Not-Intended (TS 29.338 §5.3.3.5): the SRR only asks for the IMSI, or only
    /// for the MCC and MNC.
    pub enum SmDeliveryNotIntended: dict::SM_DELIVERY_NOT_INTENDED {
        OnlyImsiRequested = 0,
        OnlyMccMncRequested = 1,
    }
}

/// SRR-Flags bit 0 (TS 29.338 table 5.3.3.4/1): GPRS-Indicator, the SMS-GMSC takes two serving
/// node addresses.
pub const SRR_FLAG_GPRS_INDICATOR: u32 = 1;
/// SRR-Flags bit 1: SM-RP-PRI, deliver even when the SC address is already in the Message
/// Waiting Data.
pub const SRR_FLAG_SM_RP_PRI: u32 = 1 << 1;
/// SRR-Flags bit 2: Single-Attempt-Delivery.
pub const SRR_FLAG_SINGLE_ATTEMPT_DELIVERY: u32 = 1 << 2;

/// MWD-Status bit 0 (TS 29.338 table 5.3.3.8/1): SC-Address Not included (the HSS did not add
/// the SC address to the Message Waiting Data).
pub const MWD_STATUS_SC_ADDRESS_NOT_INCLUDED: u32 = 1;
/// MWD-Status bit 1: MNRF-Set (the HSS has the Mobile station Not Reachable Flag set).
pub const MWD_STATUS_MNRF_SET: u32 = 1 << 1;
/// MWD-Status bit 2: MCEF-Set (Memory Capacity Exceeded Flag).
pub const MWD_STATUS_MCEF_SET: u32 = 1 << 2;
/// MWD-Status bit 3: MNRG-Set (not reachable for GPRS).
pub const MWD_STATUS_MNRG_SET: u32 = 1 << 3;
/// MWD-Status bit 4: MNR5G-Set (the HSS/UDM waits for a 5G serving node; Release 16).
pub const MWD_STATUS_MNR5G_SET: u32 = 1 << 4;

/// RDR-Flags bit 0 (TS 29.338 table 5.3.3.21/1): Single-Attempt-Delivery.
pub const RDR_FLAG_SINGLE_ATTEMPT_DELIVERY: u32 = 1;

/// SMS-GMSC-Alert-Event bit 0 (TS 29.338 table 5.3.3.23/1): UE-Available-For-MT-SMS.
pub const SMS_GMSC_ALERT_EVENT_UE_AVAILABLE_FOR_MT_SMS: u32 = 1;
/// SMS-GMSC-Alert-Event bit 1: UE-Under-New-Serving-Node (the UE moved to another MME or SGSN).
pub const SMS_GMSC_ALERT_EVENT_UE_UNDER_NEW_SERVING_NODE: u32 = 1 << 1;

grouped! {
    /// Serving-Node (TS 29.338 §5.3.3.6, first defined by TS 29.173 §6.4.3): the node serving
    /// the subscriber for SMS. `[ SGSN-Name ] [ SGSN-Realm ] [ SGSN-Number ] [ MME-Name ]
    /// [ MME-Realm ] [ MME-Number-for-MT-SMS ] [ MSC-Number ] [ IP-SM-GW-Number ]
    /// [ IP-SM-GW-Name ] [ IP-SM-GW-Realm ] [ IP-SM-GW-SBI-Support-Indicator ] *[ AVP ]`
    /// (the indicator since Release 17), plus the TS 29.173 members 3GPP-AAA-Server-Name,
    /// LCS-Capabilities-Sets and GMLC-Address. The numbers are E.164 TBCD
    /// ([`crate::sgd::tbcd`]).
    pub struct ServingNode<'a> [any] {
        /// SGSN-Name.
        sgsn_name: opt Cow<'a, str> = dict::SGSN_NAME,
        /// SGSN-Realm.
        sgsn_realm: opt Cow<'a, str> = dict::SGSN_REALM,
        /// SGSN-Number.
        sgsn_number: opt Cow<'a, [u8]> = dict::SGSN_NUMBER,
        /// MME-Name.
        mme_name: opt Cow<'a, str> = dict::MME_NAME,
        /// MME-Realm.
        mme_realm: opt Cow<'a, str> = dict::MME_REALM,
        /// MME-Number-for-MT-SMS.
        mme_number_for_mt_sms: opt Cow<'a, [u8]> = dict::MME_NUMBER_FOR_MT_SMS,
        /// MSC-Number.
        msc_number: opt Cow<'a, [u8]> = dict::MSC_NUMBER,
        /// IP-SM-GW-Number (TS 29.336).
        ip_sm_gw_number: opt Cow<'a, [u8]> = dict::IP_SM_GW_NUMBER,
        /// IP-SM-GW-Name (TS 29.336).
        ip_sm_gw_name: opt Cow<'a, str> = dict::IP_SM_GW_NAME,
        /// IP-SM-GW-Realm (TS 29.336).
        ip_sm_gw_realm: opt Cow<'a, str> = dict::IP_SM_GW_REALM,
        /// IP-SM-GW-SBI-Support-Indicator (TS 29.338 §5.3.3.39, Release 17).
        ip_sm_gw_sbi_support_indicator: opt SbiSupportIndicator = dict::IP_SM_GW_SBI_SUPPORT_INDICATOR,
        /// 3GPP-AAA-Server-Name (TS 29.173).
        aaa_server_name: opt Cow<'a, str> = dict::TGPP_AAA_SERVER_NAME,
        /// LCS-Capabilities-Sets (TS 29.173).
        lcs_capabilities_sets: opt u32 = dict::LCS_CAPABILITIES_SETS,
        /// GMLC-Address (TS 29.173).
        gmlc_address: opt Address<'a> = dict::GMLC_ADDRESS,
    }
}

grouped! {
    /// Additional-Serving-Node (TS 29.338 §5.3.3.7, TS 29.173 §6.4.8): a second serving node
    /// (an MME or SGSN beside an MSC). `[ SGSN-Name ] [ SGSN-Realm ] [ SGSN-Number ]
    /// [ MME-Name ] [ MME-Realm ] [ MME-Number-for-MT-SMS ] [ MSC-Number ] *[ AVP ]`.
    pub struct AdditionalServingNode<'a> [any] {
        /// SGSN-Name.
        sgsn_name: opt Cow<'a, str> = dict::SGSN_NAME,
        /// SGSN-Realm.
        sgsn_realm: opt Cow<'a, str> = dict::SGSN_REALM,
        /// SGSN-Number.
        sgsn_number: opt Cow<'a, [u8]> = dict::SGSN_NUMBER,
        /// MME-Name.
        mme_name: opt Cow<'a, str> = dict::MME_NAME,
        /// MME-Realm.
        mme_realm: opt Cow<'a, str> = dict::MME_REALM,
        /// MME-Number-for-MT-SMS.
        mme_number_for_mt_sms: opt Cow<'a, [u8]> = dict::MME_NUMBER_FOR_MT_SMS,
        /// MSC-Number.
        msc_number: opt Cow<'a, [u8]> = dict::MSC_NUMBER,
    }
}

grouped! {
    /// SMSF-3GPP-Address (TS 29.338 §5.3.3.35, Release 16): the SMSF serving the user over
    /// 3GPP access. `[ SMSF-3GPP-Number ] [ SMSF-3GPP-Name ] [ SMSF-3GPP-Realm ]
    /// [ SMSF-3GPP-SBI-Support-Indicator ] *[ AVP ]` (the indicator since Release 17).
    pub struct Smsf3gppAddress<'a> [any] {
        /// SMSF-3GPP-Number (E.164 TBCD).
        number: opt Cow<'a, [u8]> = dict::SMSF_TGPP_NUMBER,
        /// SMSF-3GPP-Name.
        name: opt Cow<'a, str> = dict::SMSF_TGPP_NAME,
        /// SMSF-3GPP-Realm.
        realm: opt Cow<'a, str> = dict::SMSF_TGPP_REALM,
        /// SMSF-3GPP-SBI-Support-Indicator (TS 29.338 §5.3.3.37, Release 17).
        sbi_support_indicator: opt SbiSupportIndicator = dict::SMSF_TGPP_SBI_SUPPORT_INDICATOR,
    }
}

grouped! {
    /// SMSF-Non-3GPP-Address (TS 29.338 §5.3.3.36, Release 16): the SMSF serving the user over
    /// non-3GPP access. `[ SMSF-Non-3GPP-Number ] [ SMSF-Non-3GPP-Name ]
    /// [ SMSF-Non-3GPP-Realm ] [ SMSF-Non-3GPP-SBI-Support-Indicator ] *[ AVP ]` (the
    /// indicator since Release 17).
    pub struct SmsfNon3gppAddress<'a> [any] {
        /// SMSF-Non-3GPP-Number (E.164 TBCD).
        number: opt Cow<'a, [u8]> = dict::SMSF_NON_TGPP_NUMBER,
        /// SMSF-Non-3GPP-Name.
        name: opt Cow<'a, str> = dict::SMSF_NON_TGPP_NAME,
        /// SMSF-Non-3GPP-Realm.
        realm: opt Cow<'a, str> = dict::SMSF_NON_TGPP_REALM,
        /// SMSF-Non-3GPP-SBI-Support-Indicator (TS 29.338 §5.3.3.38, Release 17).
        sbi_support_indicator: opt SbiSupportIndicator = dict::SMSF_NON_TGPP_SBI_SUPPORT_INDICATOR,
    }
}

command! {
    /// Send-Routing-Info-for-SM-Request (TS 29.338 §5.3.2.3), SMS-GMSC (or SMS Router) to HSS:
    /// where to deliver an MT short message for the subscriber named by MSISDN or User-Name
    /// (or, MSISDN-less, SMSMI-Correlation-ID).
    pub struct Srr<'a> = (cmd::SEND_ROUTING_INFO_FOR_SM, app::S6C, true, true, "SRR") [any] {
        /// Session-Id.
        session_id: fixed Cow<'a, str> = dict::SESSION_ID,
        /// DRMP.
        drmp: opt i32 = dict::DRMP,
        /// Vendor-Specific-Application-Id (use [`VendorSpecificApplicationId::s6c`]).
        vendor_specific_application_id: opt VendorSpecificApplicationId<'a> = dict::VENDOR_SPECIFIC_APPLICATION_ID,
        /// Auth-Session-State (NO_STATE_MAINTAINED on S6c).
        auth_session_state: req AuthSessionState = dict::AUTH_SESSION_STATE,
        /// Origin-Host.
        origin_host: req Cow<'a, str> = dict::ORIGIN_HOST,
        /// Origin-Realm.
        origin_realm: req Cow<'a, str> = dict::ORIGIN_REALM,
        /// Destination-Host.
        destination_host: opt Cow<'a, str> = dict::DESTINATION_HOST,
        /// Destination-Realm.
        destination_realm: req Cow<'a, str> = dict::DESTINATION_REALM,
        /// MSISDN (TBCD).
        msisdn: opt Cow<'a, [u8]> = dict::MSISDN,
        /// User-Name (the IMSI).
        user_name: opt Cow<'a, str> = dict::USER_NAME,
        /// SMSMI-Correlation-ID.
        smsmi_correlation_id: opt SmsmiCorrelationId<'a> = dict::SMSMI_CORRELATION_ID,
        /// Supported-Features.
        supported_features: vec SupportedFeatures<'a> [1] = dict::SUPPORTED_FEATURES,
        /// SC-Address (TBCD, as in the SGd commands).
        sc_address: opt Cow<'a, [u8]> = dict::SC_ADDRESS,
        /// SM-RP-MTI.
        sm_rp_mti: opt SmRpMti = dict::SM_RP_MTI,
        /// SM-RP-SMEA (the originating SME's address, TS 23.040 address field).
        sm_rp_smea: opt Cow<'a, [u8]> = dict::SM_RP_SMEA,
        /// SRR-Flags ([`SRR_FLAG_GPRS_INDICATOR`], …).
        srr_flags: opt u32 = dict::SRR_FLAGS,
        /// SM-Delivery-Not-Intended.
        sm_delivery_not_intended: opt SmDeliveryNotIntended = dict::SM_DELIVERY_NOT_INTENDED,
        /// Proxy-Info.
        proxy_info: vec ProxyInfo<'a> = dict::PROXY_INFO,
        /// Route-Record.
        route_record: vec Cow<'a, str> [1] = dict::ROUTE_RECORD,
    }
}

command! {
    /// Send-Routing-Info-for-SM-Answer (TS 29.338 §5.3.2.4), HSS to SMS-GMSC: the IMSI, the
    /// serving node(s) (MME, SGSN, MSC, IP-SM-GW, SMSF) and, when delivery is not possible, the
    /// Message Waiting Data status and absent-user diagnostics.
    pub struct Sra<'a> = (cmd::SEND_ROUTING_INFO_FOR_SM, app::S6C, false, true, "SRA") [any] {
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
        /// User-Name (the IMSI).
        user_name: opt Cow<'a, str> = dict::USER_NAME,
        /// Supported-Features.
        supported_features: vec SupportedFeatures<'a> [1] = dict::SUPPORTED_FEATURES,
        /// Serving-Node.
        serving_node: opt ServingNode<'a> = dict::SERVING_NODE,
        /// Additional-Serving-Node.
        additional_serving_node: opt AdditionalServingNode<'a> = dict::ADDITIONAL_SERVING_NODE,
        /// SMSF-3GPP-Address.
        smsf_3gpp_address: opt Smsf3gppAddress<'a> = dict::SMSF_TGPP_ADDRESS,
        /// SMSF-Non-3GPP-Address.
        smsf_non_3gpp_address: opt SmsfNon3gppAddress<'a> = dict::SMSF_NON_TGPP_ADDRESS,
        /// LMSI.
        lmsi: opt Cow<'a, [u8]> = dict::LMSI,
        /// User-Identifier (the MSISDN the Message Waiting Data is stored under).
        user_identifier: opt UserIdentifier<'a> = dict::USER_IDENTIFIER,
        /// MWD-Status ([`MWD_STATUS_MNRF_SET`], …).
        mwd_status: opt u32 = dict::MWD_STATUS,
        /// MME-Absent-User-Diagnostic-SM.
        mme_absent_user_diagnostic_sm: opt u32 = dict::MME_ABSENT_USER_DIAGNOSTIC_SM,
        /// MSC-Absent-User-Diagnostic-SM.
        msc_absent_user_diagnostic_sm: opt u32 = dict::MSC_ABSENT_USER_DIAGNOSTIC_SM,
        /// SGSN-Absent-User-Diagnostic-SM.
        sgsn_absent_user_diagnostic_sm: opt u32 = dict::SGSN_ABSENT_USER_DIAGNOSTIC_SM,
        /// SMSF-3GPP-Absent-User-Diagnostic-SM.
        smsf_3gpp_absent_user_diagnostic_sm: opt u32 = dict::SMSF_TGPP_ABSENT_USER_DIAGNOSTIC_SM,
        /// SMSF-Non-3GPP-Absent-User-Diagnostic-SM.
        smsf_non_3gpp_absent_user_diagnostic_sm: opt u32 = dict::SMSF_NON_TGPP_ABSENT_USER_DIAGNOSTIC_SM,
        /// Failed-AVP.
        failed_avp: vec FailedAvp<'a> = dict::FAILED_AVP,
        /// Proxy-Info.
        proxy_info: vec ProxyInfo<'a> = dict::PROXY_INFO,
        /// Route-Record.
        route_record: vec Cow<'a, str> [1] = dict::ROUTE_RECORD,
    }
}

command! {
    /// Alert-Service-Centre-Request (TS 29.338 §5.3.2.5): HSS to SMS-IWMSC, or MME / SGSN (over
    /// SGd/Gdd, still Application-Id 16777312) to SMS-GMSC: the subscriber in User-Identifier
    /// can receive the short messages the Service Centre in SC-Address holds for it.
    pub struct Alr<'a> = (cmd::ALERT_SERVICE_CENTRE, app::S6C, true, true, "ALR") [any] {
        /// Session-Id.
        session_id: fixed Cow<'a, str> = dict::SESSION_ID,
        /// DRMP.
        drmp: opt i32 = dict::DRMP,
        /// Vendor-Specific-Application-Id (use [`VendorSpecificApplicationId::s6c`]).
        vendor_specific_application_id: opt VendorSpecificApplicationId<'a> = dict::VENDOR_SPECIFIC_APPLICATION_ID,
        /// Auth-Session-State (NO_STATE_MAINTAINED).
        auth_session_state: req AuthSessionState = dict::AUTH_SESSION_STATE,
        /// Origin-Host.
        origin_host: req Cow<'a, str> = dict::ORIGIN_HOST,
        /// Origin-Realm.
        origin_realm: req Cow<'a, str> = dict::ORIGIN_REALM,
        /// Destination-Host.
        destination_host: opt Cow<'a, str> = dict::DESTINATION_HOST,
        /// Destination-Realm.
        destination_realm: req Cow<'a, str> = dict::DESTINATION_REALM,
        /// SC-Address (the Service Centre to alert, TBCD as in the SGd commands).
        sc_address: req Cow<'a, [u8]> = dict::SC_ADDRESS,
        /// User-Identifier (MSISDN-Alert: the MSISDN the messages wait for; the IMSI in
        /// User-Name when the alert comes from an MME or SGSN).
        user_identifier: req UserIdentifier<'a> = dict::USER_IDENTIFIER,
        /// SMSMI-Correlation-ID (MSISDN-less SMS, TS 23.204 §6.0a).
        smsmi_correlation_id: opt SmsmiCorrelationId<'a> = dict::SMSMI_CORRELATION_ID,
        /// Maximum-UE-Availability-Time (until when a UE in extended idle mode DRX stays
        /// reachable).
        maximum_ue_availability_time: opt Time = dict::MAXIMUM_UE_AVAILABILITY_TIME,
        /// SMS-GMSC-Alert-Event ([`SMS_GMSC_ALERT_EVENT_UE_AVAILABLE_FOR_MT_SMS`], …).
        sms_gmsc_alert_event: opt u32 = dict::SMS_GMSC_ALERT_EVENT,
        /// Serving-Node (the node the UE is now reachable through).
        serving_node: opt ServingNode<'a> = dict::SERVING_NODE,
        /// Supported-Features.
        supported_features: vec SupportedFeatures<'a> [1] = dict::SUPPORTED_FEATURES,
        /// Proxy-Info.
        proxy_info: vec ProxyInfo<'a> = dict::PROXY_INFO,
        /// Route-Record.
        route_record: vec Cow<'a, str> [1] = dict::ROUTE_RECORD,
    }
}

command! {
    /// Alert-Service-Centre-Answer (TS 29.338 §5.3.2.6): the outcome only.
    pub struct Ala<'a> = (cmd::ALERT_SERVICE_CENTRE, app::S6C, false, true, "ALA") [any] {
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
        /// Failed-AVP.
        failed_avp: vec FailedAvp<'a> = dict::FAILED_AVP,
        /// Proxy-Info.
        proxy_info: vec ProxyInfo<'a> = dict::PROXY_INFO,
        /// Route-Record.
        route_record: vec Cow<'a, str> [1] = dict::ROUTE_RECORD,
    }
}

command! {
    /// Report-SM-Delivery-Status-Request (TS 29.338 §5.3.2.7), SMS-GMSC or IP-SM-GW to HSS:
    /// the outcome of a delivery attempt, so the HSS adds the SC address to (or keeps it out
    /// of) the Message Waiting Data.
    pub struct Rdr<'a> = (cmd::REPORT_SM_DELIVERY_STATUS, app::S6C, true, true, "RDR") [any] {
        /// Session-Id.
        session_id: fixed Cow<'a, str> = dict::SESSION_ID,
        /// DRMP.
        drmp: opt i32 = dict::DRMP,
        /// Vendor-Specific-Application-Id (use [`VendorSpecificApplicationId::s6c`]).
        vendor_specific_application_id: opt VendorSpecificApplicationId<'a> = dict::VENDOR_SPECIFIC_APPLICATION_ID,
        /// Auth-Session-State.
        auth_session_state: req AuthSessionState = dict::AUTH_SESSION_STATE,
        /// Origin-Host.
        origin_host: req Cow<'a, str> = dict::ORIGIN_HOST,
        /// Origin-Realm.
        origin_realm: req Cow<'a, str> = dict::ORIGIN_REALM,
        /// Destination-Host.
        destination_host: opt Cow<'a, str> = dict::DESTINATION_HOST,
        /// Destination-Realm.
        destination_realm: req Cow<'a, str> = dict::DESTINATION_REALM,
        /// Supported-Features.
        supported_features: vec SupportedFeatures<'a> [1] = dict::SUPPORTED_FEATURES,
        /// User-Identifier (the recipient).
        user_identifier: req UserIdentifier<'a> = dict::USER_IDENTIFIER,
        /// SMSMI-Correlation-ID.
        smsmi_correlation_id: opt SmsmiCorrelationId<'a> = dict::SMSMI_CORRELATION_ID,
        /// SC-Address (the Service Centre that holds the message).
        sc_address: req Cow<'a, [u8]> = dict::SC_ADDRESS,
        /// SM-Delivery-Outcome (one member per kind of node tried).
        sm_delivery_outcome: req SmDeliveryOutcome<'a> = dict::SM_DELIVERY_OUTCOME,
        /// RDR-Flags ([`RDR_FLAG_SINGLE_ATTEMPT_DELIVERY`]).
        rdr_flags: opt u32 = dict::RDR_FLAGS,
        /// Proxy-Info.
        proxy_info: vec ProxyInfo<'a> = dict::PROXY_INFO,
        /// Route-Record.
        route_record: vec Cow<'a, str> [1] = dict::ROUTE_RECORD,
    }
}

command! {
    /// Report-SM-Delivery-Status-Answer (TS 29.338 §5.3.2.8): the outcome, and the MSISDN the
    /// Message Waiting Data is stored under in User-Identifier.
    pub struct Rda<'a> = (cmd::REPORT_SM_DELIVERY_STATUS, app::S6C, false, true, "RDA") [any] {
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

answer_outcome!(Sra, Ala, Rda);

macro_rules! answering {
    ($ans:ident, $req:ident, $doc:literal) => {
        impl<'a> $ans<'a> {
            #[doc = $doc]
            pub fn answering(
                request: &$req<'a>,
                origin_host: &'a str,
                origin_realm: &'a str,
            ) -> $ans<'a> {
                $ans {
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
    };
}

answering!(
    Sra,
    Srr,
    "An answer to `request` from `origin_host` / `origin_realm`: Session-Id, \
     Vendor-Specific-Application-Id, Auth-Session-State and Proxy-Info copied (RFC 6733 §6.2), \
     no outcome yet (set one with `set_outcome`)."
);
answering!(Ala, Alr, "An answer to `request` (as [`Sra::answering`]).");
answering!(Rda, Rdr, "An answer to `request` (as [`Sra::answering`]).");
