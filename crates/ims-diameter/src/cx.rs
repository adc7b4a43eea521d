//! Cx/Dx (TS 29.228, TS 29.229): the Grouped AVPs of TS 29.229 §6.3 and the commands UAR/UAA,
//! SAR/SAA, LIR/LIA, MAR/MAA, RTR/RTA, PPR/PPA (§6.1). Dx (I-CSCF/S-CSCF to SLF) uses the same
//! commands and Application-Id.
//!
//! Answers carry their outcome as `result_code` (RFC 6733 codes) or `experimental_result`
//! (3GPP codes of §6.2, Vendor-Id 10415); `outcome()` / `set_outcome()` treat both alike.

use crate::base::{
    AuthSessionState, ExperimentalResult, FailedAvp, ProxyInfo, SupportedFeatures,
    VendorSpecificApplicationId,
};
use crate::dict::{self, app, command as cmd};
use crate::RawAvp;
use std::borrow::Cow;

enumerated! {
    /// User-Authorization-Type (TS 29.229 §6.3.24).
    pub enum UserAuthorizationType: dict::USER_AUTHORIZATION_TYPE {
        Registration = 0,
        DeRegistration = 1,
        RegistrationAndCapabilities = 2,
    }
}

enumerated! {
    /// Server-Assignment-Type (TS 29.229 §6.3.15).
    pub enum ServerAssignmentType: dict::SERVER_ASSIGNMENT_TYPE {
        NoAssignment = 0,
        Registration = 1,
        ReRegistration = 2,
        UnregisteredUser = 3,
        TimeoutDeregistration = 4,
        UserDeregistration = 5,
        TimeoutDeregistrationStoreServerName = 6,
        UserDeregistrationStoreServerName = 7,
        AdministrativeDeregistration = 8,
        AuthenticationFailure = 9,
        AuthenticationTimeout = 10,
        DeregistrationTooMuchData = 11,
        AaaUserDataRequest = 12,
        PgwUpdate = 13,
        Restoration = 14,
    }
}

enumerated! {
    /// User-Data-Already-Available (TS 29.229 §6.3.26).
    pub enum UserDataAlreadyAvailable: dict::USER_DATA_ALREADY_AVAILABLE {
        UserDataNotAvailable = 0,
        UserDataAlreadyAvailable = 1,
    }
}

enumerated! {
    /// Reason-Code of Deregistration-Reason (TS 29.229 §6.3.17).
    pub enum ReasonCode: dict::REASON_CODE {
        PermanentTermination = 0,
        NewServerAssigned = 1,
        ServerChange = 2,
        RemoveScscf = 3,
    }
}

enumerated! {
    /// Originating-Request (TS 29.229 §6.3.32).
    pub enum OriginatingRequest: dict::ORIGINATING_REQUEST {
        Originating = 0,
    }
}

enumerated! {
    /// Loose-Route-Indication (TS 29.229 §6.3.45).
    pub enum LooseRouteIndication: dict::LOOSE_ROUTE_INDICATION {
        LooseRouteNotRequired = 0,
        LooseRouteRequired = 1,
    }
}

enumerated! {
    /// Multiple-Registration-Indication (TS 29.229 §6.3.51).
    pub enum MultipleRegistrationIndication: dict::MULTIPLE_REGISTRATION_INDICATION {
        NotMultipleRegistration = 0,
        MultipleRegistration = 1,
    }
}

enumerated! {
    /// Session-Priority (TS 29.229 §6.3.56).
    pub enum SessionPriority: dict::SESSION_PRIORITY {
        Priority0 = 0,
        Priority1 = 1,
        Priority2 = 2,
        Priority3 = 3,
        Priority4 = 4,
    }
}

enumerated! {
    /// Priviledged-Sender-Indication (TS 29.229 §6.3.58; the spelling is the specification's).
    pub enum PriviledgedSenderIndication: dict::PRIVILEDGED_SENDER_INDICATION {
        NotPriviledgedSender = 0,
        PriviledgedSender = 1,
    }
}

grouped! {
    /// Server-Capabilities (TS 29.229 §6.3.4): `*[ Mandatory-Capability ] *[ Optional-Capability ]
    /// *[ Server-Name ] *[ AVP ]`.
    pub struct ServerCapabilities<'a> [any] {
        /// Mandatory-Capability.
        mandatory_capability: vec u32 [4] = dict::MANDATORY_CAPABILITY,
        /// Optional-Capability.
        optional_capability: vec u32 [4] = dict::OPTIONAL_CAPABILITY,
        /// Server-Name.
        server_name: vec Cow<'a, str> [2] = dict::SERVER_NAME,
    }
}

grouped! {
    /// SIP-Digest-Authenticate (TS 29.229 §6.3.36).
    pub struct SipDigestAuthenticate<'a> [any] {
        /// Digest-Realm.
        digest_realm: req Cow<'a, str> = dict::DIGEST_REALM,
        /// Digest-Algorithm.
        digest_algorithm: opt Cow<'a, str> = dict::DIGEST_ALGORITHM,
        /// Digest-QoP.
        digest_qop: req Cow<'a, str> = dict::DIGEST_QOP,
        /// Digest-HA1.
        digest_ha1: req Cow<'a, str> = dict::DIGEST_HA1,
    }
}

grouped! {
    /// SIP-Auth-Data-Item (TS 29.229 §6.3.13). For IMS-AKA, SIP-Authenticate is RAND||AUTN,
    /// SIP-Authorization is XRES, with Confidentiality-Key and Integrity-Key.
    pub struct SipAuthDataItem<'a> [any] {
        /// SIP-Item-Number.
        sip_item_number: opt u32 = dict::SIP_ITEM_NUMBER,
        /// SIP-Authentication-Scheme (`Digest-AKAv1-MD5`, `SIP Digest`, `NASS-Bundled`, ...).
        sip_authentication_scheme: opt Cow<'a, str> = dict::SIP_AUTHENTICATION_SCHEME,
        /// SIP-Authenticate.
        sip_authenticate: opt Cow<'a, [u8]> = dict::SIP_AUTHENTICATE,
        /// SIP-Authorization.
        sip_authorization: opt Cow<'a, [u8]> = dict::SIP_AUTHORIZATION,
        /// SIP-Authentication-Context.
        sip_authentication_context: opt Cow<'a, [u8]> = dict::SIP_AUTHENTICATION_CONTEXT,
        /// Confidentiality-Key.
        confidentiality_key: opt Cow<'a, [u8]> = dict::CONFIDENTIALITY_KEY,
        /// Integrity-Key.
        integrity_key: opt Cow<'a, [u8]> = dict::INTEGRITY_KEY,
        /// SIP-Digest-Authenticate.
        sip_digest_authenticate: opt SipDigestAuthenticate<'a> = dict::SIP_DIGEST_AUTHENTICATE,
        /// Framed-IP-Address (NASS-Bundled).
        framed_ip_address: opt Cow<'a, [u8]> = dict::FRAMED_IP_ADDRESS,
        /// Framed-IPv6-Prefix (NASS-Bundled).
        framed_ipv6_prefix: opt Cow<'a, [u8]> = dict::FRAMED_IPV6_PREFIX,
    }
}

grouped! {
    /// Deregistration-Reason (TS 29.229 §6.3.16): `{ Reason-Code } [ Reason-Info ] *[ AVP ]`.
    pub struct DeregistrationReason<'a> [any] {
        /// Reason-Code.
        reason_code: req ReasonCode = dict::REASON_CODE,
        /// Reason-Info.
        reason_info: opt Cow<'a, str> = dict::REASON_INFO,
    }
}

grouped! {
    /// Charging-Information (TS 29.229 §6.3.19): the charging function addresses (DiameterURI
    /// text; parse with [`crate::DiameterUri::parse`]).
    pub struct ChargingInformation<'a> [any] {
        /// Primary-Event-Charging-Function-Name.
        primary_event_charging_function_name: opt Cow<'a, str> = dict::PRIMARY_EVENT_CHARGING_FUNCTION_NAME,
        /// Secondary-Event-Charging-Function-Name.
        secondary_event_charging_function_name: opt Cow<'a, str> = dict::SECONDARY_EVENT_CHARGING_FUNCTION_NAME,
        /// Primary-Charging-Collection-Function-Name.
        primary_charging_collection_function_name: opt Cow<'a, str> = dict::PRIMARY_CHARGING_COLLECTION_FUNCTION_NAME,
        /// Secondary-Charging-Collection-Function-Name.
        secondary_charging_collection_function_name: opt Cow<'a, str> = dict::SECONDARY_CHARGING_COLLECTION_FUNCTION_NAME,
    }
}

grouped! {
    /// Associated-Identities (TS 29.229 §6.3.33): `*[ User-Name ] *[ AVP ]`.
    pub struct AssociatedIdentities<'a> [any] {
        /// User-Name (private identities).
        user_name: vec Cow<'a, str> [1] = dict::USER_NAME,
    }
}

grouped! {
    /// Associated-Registered-Identities (TS 29.229 §6.3.50): `*[ User-Name ] *[ AVP ]`.
    pub struct AssociatedRegisteredIdentities<'a> [any] {
        /// User-Name (private identities).
        user_name: vec Cow<'a, str> [1] = dict::USER_NAME,
    }
}

grouped! {
    /// Identity-with-Emergency-Registration (TS 29.229 §6.3.57).
    pub struct IdentityWithEmergencyRegistration<'a> [any] {
        /// User-Name.
        user_name: req Cow<'a, str> = dict::USER_NAME,
        /// Public-Identity.
        public_identity: req Cow<'a, str> = dict::PUBLIC_IDENTITY,
    }
}

command! {
    /// User-Authorization-Request (TS 29.229 §6.1.1), I-CSCF to HSS (or SLF over Dx).
    pub struct Uar<'a> = (cmd::USER_AUTHORIZATION, app::CX, true, true, "UAR") [any] {
        /// Session-Id.
        session_id: fixed Cow<'a, str> = dict::SESSION_ID,
        /// DRMP.
        drmp: opt i32 = dict::DRMP,
        /// Vendor-Specific-Application-Id (use [`VendorSpecificApplicationId::cx`]).
        vendor_specific_application_id: req VendorSpecificApplicationId<'a> = dict::VENDOR_SPECIFIC_APPLICATION_ID,
        /// Auth-Session-State (NO_STATE_MAINTAINED on Cx).
        auth_session_state: req AuthSessionState = dict::AUTH_SESSION_STATE,
        /// Origin-Host.
        origin_host: req Cow<'a, str> = dict::ORIGIN_HOST,
        /// Origin-Realm.
        origin_realm: req Cow<'a, str> = dict::ORIGIN_REALM,
        /// Destination-Host.
        destination_host: opt Cow<'a, str> = dict::DESTINATION_HOST,
        /// Destination-Realm.
        destination_realm: req Cow<'a, str> = dict::DESTINATION_REALM,
        /// User-Name (the IMPI).
        user_name: req Cow<'a, str> = dict::USER_NAME,
        /// OC-Supported-Features (RFC 7683).
        oc_supported_features: opt RawAvp<'a> = dict::OC_SUPPORTED_FEATURES,
        /// Supported-Features.
        supported_features: vec SupportedFeatures<'a> [1] = dict::SUPPORTED_FEATURES,
        /// Public-Identity (the IMPU).
        public_identity: req Cow<'a, str> = dict::PUBLIC_IDENTITY,
        /// Visited-Network-Identifier.
        visited_network_identifier: req Cow<'a, [u8]> = dict::VISITED_NETWORK_IDENTIFIER,
        /// User-Authorization-Type.
        user_authorization_type: opt UserAuthorizationType = dict::USER_AUTHORIZATION_TYPE,
        /// UAR-Flags.
        uar_flags: opt u32 = dict::UAR_FLAGS,
        /// Proxy-Info.
        proxy_info: vec ProxyInfo<'a> = dict::PROXY_INFO,
        /// Route-Record.
        route_record: vec Cow<'a, str> [1] = dict::ROUTE_RECORD,
    }
}

command! {
    /// User-Authorization-Answer (TS 29.229 §6.1.2).
    pub struct Uaa<'a> = (cmd::USER_AUTHORIZATION, app::CX, false, true, "UAA") [any] {
        /// Session-Id.
        session_id: fixed Cow<'a, str> = dict::SESSION_ID,
        /// DRMP.
        drmp: opt i32 = dict::DRMP,
        /// Vendor-Specific-Application-Id.
        vendor_specific_application_id: req VendorSpecificApplicationId<'a> = dict::VENDOR_SPECIFIC_APPLICATION_ID,
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
        /// OC-Supported-Features.
        oc_supported_features: opt RawAvp<'a> = dict::OC_SUPPORTED_FEATURES,
        /// OC-OLR.
        oc_olr: opt RawAvp<'a> = dict::OC_OLR,
        /// Supported-Features.
        supported_features: vec SupportedFeatures<'a> [1] = dict::SUPPORTED_FEATURES,
        /// Server-Name (the assigned S-CSCF).
        server_name: opt Cow<'a, str> = dict::SERVER_NAME,
        /// Server-Capabilities (for S-CSCF selection).
        server_capabilities: opt ServerCapabilities<'a> = dict::SERVER_CAPABILITIES,
        /// Failed-AVP.
        failed_avp: vec FailedAvp<'a> = dict::FAILED_AVP,
        /// Proxy-Info.
        proxy_info: vec ProxyInfo<'a> = dict::PROXY_INFO,
        /// Route-Record.
        route_record: vec Cow<'a, str> [1] = dict::ROUTE_RECORD,
    }
}

command! {
    /// Server-Assignment-Request (TS 29.229 §6.1.3), S-CSCF to HSS.
    pub struct Sar<'a> = (cmd::SERVER_ASSIGNMENT, app::CX, true, true, "SAR") [any] {
        /// Session-Id.
        session_id: fixed Cow<'a, str> = dict::SESSION_ID,
        /// DRMP.
        drmp: opt i32 = dict::DRMP,
        /// Vendor-Specific-Application-Id.
        vendor_specific_application_id: req VendorSpecificApplicationId<'a> = dict::VENDOR_SPECIFIC_APPLICATION_ID,
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
        /// User-Name.
        user_name: opt Cow<'a, str> = dict::USER_NAME,
        /// OC-Supported-Features.
        oc_supported_features: opt RawAvp<'a> = dict::OC_SUPPORTED_FEATURES,
        /// Supported-Features.
        supported_features: vec SupportedFeatures<'a> [1] = dict::SUPPORTED_FEATURES,
        /// Public-Identity.
        public_identity: vec Cow<'a, str> [2] = dict::PUBLIC_IDENTITY,
        /// Wildcarded-Public-Identity.
        wildcarded_public_identity: opt Cow<'a, str> = dict::WILDCARDED_PUBLIC_IDENTITY,
        /// Server-Name.
        server_name: req Cow<'a, str> = dict::SERVER_NAME,
        /// Server-Assignment-Type.
        server_assignment_type: req ServerAssignmentType = dict::SERVER_ASSIGNMENT_TYPE,
        /// User-Data-Already-Available.
        user_data_already_available: req UserDataAlreadyAvailable = dict::USER_DATA_ALREADY_AVAILABLE,
        /// SCSCF-Restoration-Info.
        scscf_restoration_info: opt RawAvp<'a> = dict::SCSCF_RESTORATION_INFO,
        /// Multiple-Registration-Indication.
        multiple_registration_indication: opt MultipleRegistrationIndication = dict::MULTIPLE_REGISTRATION_INDICATION,
        /// Session-Priority.
        session_priority: opt SessionPriority = dict::SESSION_PRIORITY,
        /// SAR-Flags.
        sar_flags: opt u32 = dict::SAR_FLAGS,
        /// Proxy-Info.
        proxy_info: vec ProxyInfo<'a> = dict::PROXY_INFO,
        /// Route-Record.
        route_record: vec Cow<'a, str> [1] = dict::ROUTE_RECORD,
    }
}

command! {
    /// Server-Assignment-Answer (TS 29.229 §6.1.4), with the user profile in User-Data.
    pub struct Saa<'a> = (cmd::SERVER_ASSIGNMENT, app::CX, false, true, "SAA") [any] {
        /// Session-Id.
        session_id: fixed Cow<'a, str> = dict::SESSION_ID,
        /// DRMP.
        drmp: opt i32 = dict::DRMP,
        /// Vendor-Specific-Application-Id.
        vendor_specific_application_id: req VendorSpecificApplicationId<'a> = dict::VENDOR_SPECIFIC_APPLICATION_ID,
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
        /// User-Name.
        user_name: opt Cow<'a, str> = dict::USER_NAME,
        /// OC-Supported-Features.
        oc_supported_features: opt RawAvp<'a> = dict::OC_SUPPORTED_FEATURES,
        /// OC-OLR.
        oc_olr: opt RawAvp<'a> = dict::OC_OLR,
        /// Load.
        load: vec RawAvp<'a> = dict::LOAD,
        /// Supported-Features.
        supported_features: vec SupportedFeatures<'a> [1] = dict::SUPPORTED_FEATURES,
        /// User-Data (the IMS subscription XML of TS 29.228 annex E).
        user_data: opt Cow<'a, [u8]> = dict::USER_DATA,
        /// Charging-Information.
        charging_information: opt ChargingInformation<'a> = dict::CHARGING_INFORMATION,
        /// Associated-Identities.
        associated_identities: opt AssociatedIdentities<'a> = dict::ASSOCIATED_IDENTITIES,
        /// Loose-Route-Indication.
        loose_route_indication: opt LooseRouteIndication = dict::LOOSE_ROUTE_INDICATION,
        /// SCSCF-Restoration-Info.
        scscf_restoration_info: vec RawAvp<'a> = dict::SCSCF_RESTORATION_INFO,
        /// Associated-Registered-Identities.
        associated_registered_identities: opt AssociatedRegisteredIdentities<'a> = dict::ASSOCIATED_REGISTERED_IDENTITIES,
        /// Server-Name.
        server_name: opt Cow<'a, str> = dict::SERVER_NAME,
        /// Wildcarded-Public-Identity.
        wildcarded_public_identity: opt Cow<'a, str> = dict::WILDCARDED_PUBLIC_IDENTITY,
        /// Priviledged-Sender-Indication.
        priviledged_sender_indication: opt PriviledgedSenderIndication = dict::PRIVILEDGED_SENDER_INDICATION,
        /// Failed-AVP.
        failed_avp: vec FailedAvp<'a> = dict::FAILED_AVP,
        /// Proxy-Info.
        proxy_info: vec ProxyInfo<'a> = dict::PROXY_INFO,
        /// Route-Record.
        route_record: vec Cow<'a, str> [1] = dict::ROUTE_RECORD,
    }
}

command! {
    /// Location-Info-Request (TS 29.229 §6.1.5), I-CSCF to HSS.
    pub struct Lir<'a> = (cmd::LOCATION_INFO, app::CX, true, true, "LIR") [any] {
        /// Session-Id.
        session_id: fixed Cow<'a, str> = dict::SESSION_ID,
        /// DRMP.
        drmp: opt i32 = dict::DRMP,
        /// Vendor-Specific-Application-Id.
        vendor_specific_application_id: req VendorSpecificApplicationId<'a> = dict::VENDOR_SPECIFIC_APPLICATION_ID,
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
        /// Originating-Request.
        originating_request: opt OriginatingRequest = dict::ORIGINATING_REQUEST,
        /// OC-Supported-Features.
        oc_supported_features: opt RawAvp<'a> = dict::OC_SUPPORTED_FEATURES,
        /// Supported-Features.
        supported_features: vec SupportedFeatures<'a> [1] = dict::SUPPORTED_FEATURES,
        /// Public-Identity.
        public_identity: req Cow<'a, str> = dict::PUBLIC_IDENTITY,
        /// User-Authorization-Type.
        user_authorization_type: opt UserAuthorizationType = dict::USER_AUTHORIZATION_TYPE,
        /// Session-Priority.
        session_priority: opt SessionPriority = dict::SESSION_PRIORITY,
        /// Proxy-Info.
        proxy_info: vec ProxyInfo<'a> = dict::PROXY_INFO,
        /// Route-Record.
        route_record: vec Cow<'a, str> [1] = dict::ROUTE_RECORD,
    }
}

command! {
    /// Location-Info-Answer (TS 29.229 §6.1.6).
    pub struct Lia<'a> = (cmd::LOCATION_INFO, app::CX, false, true, "LIA") [any] {
        /// Session-Id.
        session_id: fixed Cow<'a, str> = dict::SESSION_ID,
        /// DRMP.
        drmp: opt i32 = dict::DRMP,
        /// Vendor-Specific-Application-Id.
        vendor_specific_application_id: req VendorSpecificApplicationId<'a> = dict::VENDOR_SPECIFIC_APPLICATION_ID,
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
        /// OC-Supported-Features.
        oc_supported_features: opt RawAvp<'a> = dict::OC_SUPPORTED_FEATURES,
        /// OC-OLR.
        oc_olr: opt RawAvp<'a> = dict::OC_OLR,
        /// Load.
        load: vec RawAvp<'a> = dict::LOAD,
        /// Supported-Features.
        supported_features: vec SupportedFeatures<'a> [1] = dict::SUPPORTED_FEATURES,
        /// Server-Name.
        server_name: opt Cow<'a, str> = dict::SERVER_NAME,
        /// Server-Capabilities.
        server_capabilities: opt ServerCapabilities<'a> = dict::SERVER_CAPABILITIES,
        /// Wildcarded-Public-Identity.
        wildcarded_public_identity: opt Cow<'a, str> = dict::WILDCARDED_PUBLIC_IDENTITY,
        /// LIA-Flags.
        lia_flags: opt u32 = dict::LIA_FLAGS,
        /// Failed-AVP.
        failed_avp: vec FailedAvp<'a> = dict::FAILED_AVP,
        /// Proxy-Info.
        proxy_info: vec ProxyInfo<'a> = dict::PROXY_INFO,
        /// Route-Record.
        route_record: vec Cow<'a, str> [1] = dict::ROUTE_RECORD,
    }
}

command! {
    /// Multimedia-Auth-Request (TS 29.229 §6.1.7), S-CSCF to HSS.
    pub struct Mar<'a> = (cmd::MULTIMEDIA_AUTH, app::CX, true, true, "MAR") [any] {
        /// Session-Id.
        session_id: fixed Cow<'a, str> = dict::SESSION_ID,
        /// DRMP.
        drmp: opt i32 = dict::DRMP,
        /// Vendor-Specific-Application-Id.
        vendor_specific_application_id: req VendorSpecificApplicationId<'a> = dict::VENDOR_SPECIFIC_APPLICATION_ID,
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
        /// User-Name.
        user_name: req Cow<'a, str> = dict::USER_NAME,
        /// OC-Supported-Features.
        oc_supported_features: opt RawAvp<'a> = dict::OC_SUPPORTED_FEATURES,
        /// Supported-Features.
        supported_features: vec SupportedFeatures<'a> [1] = dict::SUPPORTED_FEATURES,
        /// Public-Identity.
        public_identity: req Cow<'a, str> = dict::PUBLIC_IDENTITY,
        /// SIP-Number-Auth-Items.
        sip_number_auth_items: req u32 = dict::SIP_NUMBER_AUTH_ITEMS,
        /// SIP-Auth-Data-Item (the scheme wanted, or the AUTS for resynchronisation).
        sip_auth_data_item: req SipAuthDataItem<'a> = dict::SIP_AUTH_DATA_ITEM,
        /// Server-Name.
        server_name: req Cow<'a, str> = dict::SERVER_NAME,
        /// Proxy-Info.
        proxy_info: vec ProxyInfo<'a> = dict::PROXY_INFO,
        /// Route-Record.
        route_record: vec Cow<'a, str> [1] = dict::ROUTE_RECORD,
    }
}

command! {
    /// Multimedia-Auth-Answer (TS 29.229 §6.1.8), with the authentication vectors.
    pub struct Maa<'a> = (cmd::MULTIMEDIA_AUTH, app::CX, false, true, "MAA") [any] {
        /// Session-Id.
        session_id: fixed Cow<'a, str> = dict::SESSION_ID,
        /// DRMP.
        drmp: opt i32 = dict::DRMP,
        /// Vendor-Specific-Application-Id.
        vendor_specific_application_id: req VendorSpecificApplicationId<'a> = dict::VENDOR_SPECIFIC_APPLICATION_ID,
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
        /// User-Name.
        user_name: opt Cow<'a, str> = dict::USER_NAME,
        /// OC-Supported-Features.
        oc_supported_features: opt RawAvp<'a> = dict::OC_SUPPORTED_FEATURES,
        /// OC-OLR.
        oc_olr: opt RawAvp<'a> = dict::OC_OLR,
        /// Load.
        load: vec RawAvp<'a> = dict::LOAD,
        /// Supported-Features.
        supported_features: vec SupportedFeatures<'a> [1] = dict::SUPPORTED_FEATURES,
        /// Public-Identity.
        public_identity: opt Cow<'a, str> = dict::PUBLIC_IDENTITY,
        /// SIP-Number-Auth-Items.
        sip_number_auth_items: opt u32 = dict::SIP_NUMBER_AUTH_ITEMS,
        /// SIP-Auth-Data-Item (one per vector).
        sip_auth_data_item: vec SipAuthDataItem<'a> = dict::SIP_AUTH_DATA_ITEM,
        /// Server-Name.
        server_name: opt Cow<'a, str> = dict::SERVER_NAME,
        /// Failed-AVP.
        failed_avp: vec FailedAvp<'a> = dict::FAILED_AVP,
        /// Proxy-Info.
        proxy_info: vec ProxyInfo<'a> = dict::PROXY_INFO,
        /// Route-Record.
        route_record: vec Cow<'a, str> [1] = dict::ROUTE_RECORD,
    }
}

command! {
    /// Registration-Termination-Request (TS 29.229 §6.1.9), HSS to S-CSCF.
    pub struct Rtr<'a> = (cmd::REGISTRATION_TERMINATION, app::CX, true, true, "RTR") [any] {
        /// Session-Id.
        session_id: fixed Cow<'a, str> = dict::SESSION_ID,
        /// DRMP.
        drmp: opt i32 = dict::DRMP,
        /// Vendor-Specific-Application-Id.
        vendor_specific_application_id: req VendorSpecificApplicationId<'a> = dict::VENDOR_SPECIFIC_APPLICATION_ID,
        /// Auth-Session-State.
        auth_session_state: req AuthSessionState = dict::AUTH_SESSION_STATE,
        /// Origin-Host.
        origin_host: req Cow<'a, str> = dict::ORIGIN_HOST,
        /// Origin-Realm.
        origin_realm: req Cow<'a, str> = dict::ORIGIN_REALM,
        /// Destination-Host.
        destination_host: req Cow<'a, str> = dict::DESTINATION_HOST,
        /// Destination-Realm.
        destination_realm: req Cow<'a, str> = dict::DESTINATION_REALM,
        /// User-Name.
        user_name: req Cow<'a, str> = dict::USER_NAME,
        /// Associated-Identities.
        associated_identities: opt AssociatedIdentities<'a> = dict::ASSOCIATED_IDENTITIES,
        /// Supported-Features.
        supported_features: vec SupportedFeatures<'a> [1] = dict::SUPPORTED_FEATURES,
        /// Public-Identity.
        public_identity: vec Cow<'a, str> [2] = dict::PUBLIC_IDENTITY,
        /// Deregistration-Reason.
        deregistration_reason: req DeregistrationReason<'a> = dict::DEREGISTRATION_REASON,
        /// Proxy-Info.
        proxy_info: vec ProxyInfo<'a> = dict::PROXY_INFO,
        /// Route-Record.
        route_record: vec Cow<'a, str> [1] = dict::ROUTE_RECORD,
    }
}

command! {
    /// Registration-Termination-Answer (TS 29.229 §6.1.10).
    pub struct Rta<'a> = (cmd::REGISTRATION_TERMINATION, app::CX, false, true, "RTA") [any] {
        /// Session-Id.
        session_id: fixed Cow<'a, str> = dict::SESSION_ID,
        /// DRMP.
        drmp: opt i32 = dict::DRMP,
        /// Vendor-Specific-Application-Id.
        vendor_specific_application_id: req VendorSpecificApplicationId<'a> = dict::VENDOR_SPECIFIC_APPLICATION_ID,
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
        /// Associated-Identities.
        associated_identities: opt AssociatedIdentities<'a> = dict::ASSOCIATED_IDENTITIES,
        /// Supported-Features.
        supported_features: vec SupportedFeatures<'a> [1] = dict::SUPPORTED_FEATURES,
        /// Identity-with-Emergency-Registration.
        identity_with_emergency_registration: opt IdentityWithEmergencyRegistration<'a> = dict::IDENTITY_WITH_EMERGENCY_REGISTRATION,
        /// Failed-AVP.
        failed_avp: vec FailedAvp<'a> = dict::FAILED_AVP,
        /// Proxy-Info.
        proxy_info: vec ProxyInfo<'a> = dict::PROXY_INFO,
        /// Route-Record.
        route_record: vec Cow<'a, str> [1] = dict::ROUTE_RECORD,
    }
}

command! {
    /// Push-Profile-Request (TS 29.229 §6.1.11), HSS to S-CSCF.
    pub struct Ppr<'a> = (cmd::PUSH_PROFILE, app::CX, true, true, "PPR") [any] {
        /// Session-Id.
        session_id: fixed Cow<'a, str> = dict::SESSION_ID,
        /// DRMP.
        drmp: opt i32 = dict::DRMP,
        /// Vendor-Specific-Application-Id.
        vendor_specific_application_id: req VendorSpecificApplicationId<'a> = dict::VENDOR_SPECIFIC_APPLICATION_ID,
        /// Auth-Session-State.
        auth_session_state: req AuthSessionState = dict::AUTH_SESSION_STATE,
        /// Origin-Host.
        origin_host: req Cow<'a, str> = dict::ORIGIN_HOST,
        /// Origin-Realm.
        origin_realm: req Cow<'a, str> = dict::ORIGIN_REALM,
        /// Destination-Host.
        destination_host: req Cow<'a, str> = dict::DESTINATION_HOST,
        /// Destination-Realm.
        destination_realm: req Cow<'a, str> = dict::DESTINATION_REALM,
        /// User-Name.
        user_name: req Cow<'a, str> = dict::USER_NAME,
        /// Supported-Features.
        supported_features: vec SupportedFeatures<'a> [1] = dict::SUPPORTED_FEATURES,
        /// User-Data.
        user_data: opt Cow<'a, [u8]> = dict::USER_DATA,
        /// Charging-Information.
        charging_information: opt ChargingInformation<'a> = dict::CHARGING_INFORMATION,
        /// SIP-Auth-Data-Item.
        sip_auth_data_item: opt SipAuthDataItem<'a> = dict::SIP_AUTH_DATA_ITEM,
        /// Proxy-Info.
        proxy_info: vec ProxyInfo<'a> = dict::PROXY_INFO,
        /// Route-Record.
        route_record: vec Cow<'a, str> [1] = dict::ROUTE_RECORD,
    }
}

command! {
    /// Push-Profile-Answer (TS 29.229 §6.1.12).
    pub struct Ppa<'a> = (cmd::PUSH_PROFILE, app::CX, false, true, "PPA") [any] {
        /// Session-Id.
        session_id: fixed Cow<'a, str> = dict::SESSION_ID,
        /// DRMP.
        drmp: opt i32 = dict::DRMP,
        /// Vendor-Specific-Application-Id.
        vendor_specific_application_id: req VendorSpecificApplicationId<'a> = dict::VENDOR_SPECIFIC_APPLICATION_ID,
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

answer_outcome!(Uaa, Saa, Lia, Maa, Rta, Ppa);
