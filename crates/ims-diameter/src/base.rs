//! Diameter base (RFC 6733): the common Grouped AVPs and the peer commands CER/CEA (§5.3),
//! DWR/DWA (§5.5) and DPR/DPA (§5.4).

use crate::dict::{self, app, command as cmd};
use crate::types::Address;
use std::borrow::Cow;

enumerated! {
    /// Disconnect-Cause (RFC 6733 §5.4.3).
    pub enum DisconnectCause: dict::DISCONNECT_CAUSE {
        Rebooting = 0,
        Busy = 1,
        DoNotWantToTalkToYou = 2,
    }
}

enumerated! {
    /// Auth-Session-State (RFC 6733 §8.11).
    pub enum AuthSessionState: dict::AUTH_SESSION_STATE {
        StateMaintained = 0,
        NoStateMaintained = 1,
    }
}

enumerated! {
    /// Termination-Cause (RFC 6733 §8.15).
    pub enum TerminationCause: dict::TERMINATION_CAUSE {
        DiameterLogout = 1,
        DiameterServiceNotProvided = 2,
        DiameterBadAnswer = 3,
        DiameterAdministrative = 4,
        DiameterLinkBroken = 5,
        DiameterAuthExpired = 6,
        DiameterUserMoved = 7,
        DiameterSessionTimeout = 8,
    }
}

enumerated! {
    /// Re-Auth-Request-Type (RFC 6733 §8.12).
    pub enum ReAuthRequestType: dict::RE_AUTH_REQUEST_TYPE {
        AuthorizeOnly = 0,
        AuthorizeAuthenticate = 1,
    }
}

enumerated! {
    /// Subscription-Id-Type (RFC 4006 §8.47).
    pub enum SubscriptionIdType: dict::SUBSCRIPTION_ID_TYPE {
        EndUserE164 = 0,
        EndUserImsi = 1,
        EndUserSipUri = 2,
        EndUserNai = 3,
        EndUserPrivate = 4,
    }
}

grouped! {
    /// Vendor-Specific-Application-Id (RFC 6733 §6.11): `{ Vendor-Id } [ Auth-Application-Id ]
    /// [ Acct-Application-Id ]` (exactly one of the two application ids).
    pub struct VendorSpecificApplicationId<'a> [closed] {
        /// Vendor-Id.
        vendor_id: req u32 = dict::VENDOR_ID,
        /// Auth-Application-Id.
        auth_application_id: opt u32 = dict::AUTH_APPLICATION_ID,
        /// Acct-Application-Id.
        acct_application_id: opt u32 = dict::ACCT_APPLICATION_ID,
    }
}

impl VendorSpecificApplicationId<'_> {
    /// `{ Vendor-Id = vendor, Auth-Application-Id = app }`.
    pub fn auth(vendor: u32, app: u32) -> Self {
        VendorSpecificApplicationId {
            vendor_id: vendor,
            auth_application_id: Some(app),
            ..Default::default()
        }
    }
    /// 3GPP Cx/Dx: `{10415, 16777216}`.
    pub fn cx() -> Self {
        Self::auth(dict::VENDOR_3GPP, app::CX)
    }
    /// 3GPP Rx: `{10415, 16777236}`.
    pub fn rx() -> Self {
        Self::auth(dict::VENDOR_3GPP, app::RX)
    }
    /// 3GPP SGd/Gdd: `{10415, 16777313}`.
    pub fn sgd() -> Self {
        Self::auth(dict::VENDOR_3GPP, app::SGD)
    }
    /// 3GPP S6c: `{10415, 16777312}` (also the Alert-Service-Centre command's on SGd/Gdd).
    pub fn s6c() -> Self {
        Self::auth(dict::VENDOR_3GPP, app::S6C)
    }
}

grouped! {
    /// Experimental-Result (RFC 6733 §7.6): `{ Vendor-Id } { Experimental-Result-Code }`.
    pub struct ExperimentalResult<'a> [closed] {
        /// Vendor-Id (10415 for the 3GPP codes).
        vendor_id: req u32 = dict::VENDOR_ID,
        /// Experimental-Result-Code.
        experimental_result_code: req u32 = dict::EXPERIMENTAL_RESULT_CODE,
    }
}

grouped! {
    /// Proxy-Info (RFC 6733 §6.7.2): `{ Proxy-Host } { Proxy-State } *[ AVP ]`.
    pub struct ProxyInfo<'a> [any] {
        /// Proxy-Host.
        proxy_host: req Cow<'a, str> = dict::PROXY_HOST,
        /// Proxy-State (opaque).
        proxy_state: req Cow<'a, [u8]> = dict::PROXY_STATE,
    }
}

grouped! {
    /// Failed-AVP (RFC 6733 §7.5): `1* { AVP }`, the offending AVPs as they were (kept in `other`,
    /// unchecked).
    pub struct FailedAvp<'a> [raw] {}
}

grouped! {
    /// Supported-Features (TS 29.229 §6.3.29): `{ Vendor-Id } { Feature-List-ID } { Feature-List }
    /// *[ AVP ]`.
    pub struct SupportedFeatures<'a> [any] {
        /// Vendor-Id.
        vendor_id: req u32 = dict::VENDOR_ID,
        /// Feature-List-ID.
        feature_list_id: req u32 = dict::FEATURE_LIST_ID,
        /// Feature-List (bit mask).
        feature_list: req u32 = dict::FEATURE_LIST,
    }
}

grouped! {
    /// Subscription-Id (RFC 4006 §8.46): `{ Subscription-Id-Type } { Subscription-Id-Data }`.
    pub struct SubscriptionId<'a> [closed] {
        /// Subscription-Id-Type.
        subscription_id_type: req SubscriptionIdType = dict::SUBSCRIPTION_ID_TYPE,
        /// Subscription-Id-Data.
        subscription_id_data: req Cow<'a, str> = dict::SUBSCRIPTION_ID_DATA,
    }
}

command! {
    /// Capabilities-Exchange-Request (RFC 6733 §5.3.1).
    pub struct Cer<'a> = (cmd::CAPABILITIES_EXCHANGE, app::COMMON, true, false, "CER") [any] {
        /// Origin-Host.
        origin_host: req Cow<'a, str> = dict::ORIGIN_HOST,
        /// Origin-Realm.
        origin_realm: req Cow<'a, str> = dict::ORIGIN_REALM,
        /// Host-IP-Address (one or more).
        host_ip_address: vec1 Address<'a> [2] = dict::HOST_IP_ADDRESS,
        /// Vendor-Id.
        vendor_id: req u32 = dict::VENDOR_ID,
        /// Product-Name.
        product_name: req Cow<'a, str> = dict::PRODUCT_NAME,
        /// Origin-State-Id.
        origin_state_id: opt u32 = dict::ORIGIN_STATE_ID,
        /// Supported-Vendor-Id.
        supported_vendor_id: vec u32 [4] = dict::SUPPORTED_VENDOR_ID,
        /// Auth-Application-Id.
        auth_application_id: vec u32 [4] = dict::AUTH_APPLICATION_ID,
        /// Inband-Security-Id.
        inband_security_id: vec u32 [4] = dict::INBAND_SECURITY_ID,
        /// Acct-Application-Id.
        acct_application_id: vec u32 [4] = dict::ACCT_APPLICATION_ID,
        /// Vendor-Specific-Application-Id.
        vendor_specific_application_id: vec VendorSpecificApplicationId<'a> [2] = dict::VENDOR_SPECIFIC_APPLICATION_ID,
        /// Firmware-Revision.
        firmware_revision: opt u32 = dict::FIRMWARE_REVISION,
    }
}

command! {
    /// Capabilities-Exchange-Answer (RFC 6733 §5.3.2).
    pub struct Cea<'a> = (cmd::CAPABILITIES_EXCHANGE, app::COMMON, false, false, "CEA") [any] {
        /// Result-Code.
        result_code: req u32 = dict::RESULT_CODE,
        /// Origin-Host.
        origin_host: req Cow<'a, str> = dict::ORIGIN_HOST,
        /// Origin-Realm.
        origin_realm: req Cow<'a, str> = dict::ORIGIN_REALM,
        /// Host-IP-Address (one or more).
        host_ip_address: vec1 Address<'a> [2] = dict::HOST_IP_ADDRESS,
        /// Vendor-Id.
        vendor_id: req u32 = dict::VENDOR_ID,
        /// Product-Name.
        product_name: req Cow<'a, str> = dict::PRODUCT_NAME,
        /// Origin-State-Id.
        origin_state_id: opt u32 = dict::ORIGIN_STATE_ID,
        /// Error-Message.
        error_message: opt Cow<'a, str> = dict::ERROR_MESSAGE,
        /// Failed-AVP.
        failed_avp: opt FailedAvp<'a> = dict::FAILED_AVP,
        /// Supported-Vendor-Id.
        supported_vendor_id: vec u32 [4] = dict::SUPPORTED_VENDOR_ID,
        /// Auth-Application-Id.
        auth_application_id: vec u32 [4] = dict::AUTH_APPLICATION_ID,
        /// Inband-Security-Id.
        inband_security_id: vec u32 [4] = dict::INBAND_SECURITY_ID,
        /// Acct-Application-Id.
        acct_application_id: vec u32 [4] = dict::ACCT_APPLICATION_ID,
        /// Vendor-Specific-Application-Id.
        vendor_specific_application_id: vec VendorSpecificApplicationId<'a> [2] = dict::VENDOR_SPECIFIC_APPLICATION_ID,
        /// Firmware-Revision.
        firmware_revision: opt u32 = dict::FIRMWARE_REVISION,
    }
}

command! {
    /// Device-Watchdog-Request (RFC 6733 §5.5.1).
    pub struct Dwr<'a> = (cmd::DEVICE_WATCHDOG, app::COMMON, true, false, "DWR") [any] {
        /// Origin-Host.
        origin_host: req Cow<'a, str> = dict::ORIGIN_HOST,
        /// Origin-Realm.
        origin_realm: req Cow<'a, str> = dict::ORIGIN_REALM,
        /// Origin-State-Id.
        origin_state_id: opt u32 = dict::ORIGIN_STATE_ID,
    }
}

command! {
    /// Device-Watchdog-Answer (RFC 6733 §5.5.2).
    pub struct Dwa<'a> = (cmd::DEVICE_WATCHDOG, app::COMMON, false, false, "DWA") [any] {
        /// Result-Code.
        result_code: req u32 = dict::RESULT_CODE,
        /// Origin-Host.
        origin_host: req Cow<'a, str> = dict::ORIGIN_HOST,
        /// Origin-Realm.
        origin_realm: req Cow<'a, str> = dict::ORIGIN_REALM,
        /// Error-Message.
        error_message: opt Cow<'a, str> = dict::ERROR_MESSAGE,
        /// Failed-AVP.
        failed_avp: opt FailedAvp<'a> = dict::FAILED_AVP,
        /// Origin-State-Id.
        origin_state_id: opt u32 = dict::ORIGIN_STATE_ID,
    }
}

command! {
    /// Disconnect-Peer-Request (RFC 6733 §5.4.1).
    pub struct Dpr<'a> = (cmd::DISCONNECT_PEER, app::COMMON, true, false, "DPR") [any] {
        /// Origin-Host.
        origin_host: req Cow<'a, str> = dict::ORIGIN_HOST,
        /// Origin-Realm.
        origin_realm: req Cow<'a, str> = dict::ORIGIN_REALM,
        /// Disconnect-Cause.
        disconnect_cause: req DisconnectCause = dict::DISCONNECT_CAUSE,
    }
}

command! {
    /// Disconnect-Peer-Answer (RFC 6733 §5.4.2).
    pub struct Dpa<'a> = (cmd::DISCONNECT_PEER, app::COMMON, false, false, "DPA") [any] {
        /// Result-Code.
        result_code: req u32 = dict::RESULT_CODE,
        /// Origin-Host.
        origin_host: req Cow<'a, str> = dict::ORIGIN_HOST,
        /// Origin-Realm.
        origin_realm: req Cow<'a, str> = dict::ORIGIN_REALM,
        /// Error-Message.
        error_message: opt Cow<'a, str> = dict::ERROR_MESSAGE,
        /// Failed-AVP.
        failed_avp: opt FailedAvp<'a> = dict::FAILED_AVP,
    }
}

avp_struct! {
    /// The generic answer-message (RFC 6733 §7.2) that carries a protocol error (E bit) for any
    /// command: `0*1< Session-Id > { Origin-Host } { Origin-Realm } { Result-Code }
    /// [ Origin-State-Id ] [ Error-Message ] [ Error-Reporting-Host ] [ Failed-AVP ]
    /// [ Experimental-Result ] *[ Proxy-Info ] *[ AVP ]`.
    pub struct AnswerMessage<'a> [any] {
        /// Session-Id.
        session_id: opt Cow<'a, str> = dict::SESSION_ID,
        /// Origin-Host.
        origin_host: req Cow<'a, str> = dict::ORIGIN_HOST,
        /// Origin-Realm.
        origin_realm: req Cow<'a, str> = dict::ORIGIN_REALM,
        /// Result-Code.
        result_code: req u32 = dict::RESULT_CODE,
        /// Origin-State-Id.
        origin_state_id: opt u32 = dict::ORIGIN_STATE_ID,
        /// Error-Message.
        error_message: opt Cow<'a, str> = dict::ERROR_MESSAGE,
        /// Error-Reporting-Host.
        error_reporting_host: opt Cow<'a, str> = dict::ERROR_REPORTING_HOST,
        /// Failed-AVP.
        failed_avp: opt FailedAvp<'a> = dict::FAILED_AVP,
        /// Experimental-Result.
        experimental_result: opt ExperimentalResult<'a> = dict::EXPERIMENTAL_RESULT,
        /// Proxy-Info.
        proxy_info: vec ProxyInfo<'a> = dict::PROXY_INFO,
    }
}

impl<'a> AnswerMessage<'a> {
    /// Decodes an answer with the E bit set (any command code).
    pub fn decode(msg: &crate::Message<'a>) -> Result<Self, crate::Error> {
        if msg.is_request() || !msg.flags().is_error() {
            return Err(crate::Error::new(crate::ErrorKind::WrongCommand, 4));
        }
        Self::decode_avps(msg.avps())
    }
}
