//! Rx (TS 29.214): the Grouped AVPs of §5.3 (Media-Component-Description, Media-Sub-Component,
//! Flows, Acceptable-Service-Info, ...) and the commands AAR/AAA, RAR/RAA, STR/STA, ASR/ASA
//! (§5.6), between the P-CSCF (AF) and the PCRF.

use crate::base::{
    AuthSessionState, ExperimentalResult, FailedAvp, ProxyInfo, SubscriptionId, SupportedFeatures,
    TerminationCause,
};
use crate::dict::{self, app, command as cmd};
use crate::types::{Address, Time};
use crate::RawAvp;
use std::borrow::Cow;

enumerated! {
    /// Media-Type (TS 29.214 §5.3.19). OTHER (0xFFFFFFFF) decodes as `Unknown(-1)`.
    pub enum MediaType: dict::MEDIA_TYPE {
        Audio = 0,
        Video = 1,
        Data = 2,
        Application = 3,
        Control = 4,
        Text = 5,
        Message = 6,
    }
}

enumerated! {
    /// Flow-Status (TS 29.212 §5.3.11).
    pub enum FlowStatus: dict::FLOW_STATUS {
        EnabledUplink = 0,
        EnabledDownlink = 1,
        Enabled = 2,
        Disabled = 3,
        Removed = 4,
    }
}

enumerated! {
    /// Flow-Usage (TS 29.214 §5.3.12).
    pub enum FlowUsage: dict::FLOW_USAGE {
        NoInformation = 0,
        Rtcp = 1,
        AfSignalling = 2,
    }
}

enumerated! {
    /// Specific-Action (TS 29.214 §5.3.13).
    pub enum SpecificAction: dict::SPECIFIC_ACTION {
        ChargingCorrelationExchange = 1,
        IndicationOfLossOfBearer = 2,
        IndicationOfRecoveryOfBearer = 3,
        IndicationOfReleaseOfBearer = 4,
        IpCanChange = 6,
        IndicationOfOutOfCredit = 7,
        IndicationOfSuccessfulResourcesAllocation = 8,
        IndicationOfFailedResourcesAllocation = 9,
        IndicationOfLimitedPccDeployment = 10,
        UsageReport = 11,
        AccessNetworkInfoReport = 12,
        IndicationOfRecoveryFromLimitedPccDeployment = 13,
        IndicationOfAccessNetworkInfoReportingFailure = 14,
        IndicationOfTransferPolicyExpired = 15,
        PlmnChange = 16,
    }
}

enumerated! {
    /// Abort-Cause (TS 29.214 §5.3.1).
    pub enum AbortCause: dict::ABORT_CAUSE {
        BearerReleased = 0,
        InsufficientServerResources = 1,
        InsufficientBearerResources = 2,
        PsToCsHandover = 3,
        SponsoredDataConnectivityDisallowed = 4,
    }
}

enumerated! {
    /// Service-Info-Status (TS 29.214 §5.3.25).
    pub enum ServiceInfoStatus: dict::SERVICE_INFO_STATUS {
        FinalServiceInformation = 0,
        PreliminaryServiceInformation = 1,
    }
}

enumerated! {
    /// SIP-Forking-Indication (TS 29.214 §5.3.29).
    pub enum SipForkingIndication: dict::SIP_FORKING_INDICATION {
        SingleDialogue = 0,
        SeveralDialogues = 1,
    }
}

enumerated! {
    /// AF-Signalling-Protocol (TS 29.214 §5.3.26).
    pub enum AfSignallingProtocol: dict::AF_SIGNALLING_PROTOCOL {
        NoInformation = 0,
        Sip = 1,
    }
}

enumerated! {
    /// Rx-Request-Type (TS 29.214 §5.3.31).
    pub enum RxRequestType: dict::RX_REQUEST_TYPE {
        InitialRequest = 0,
        UpdateRequest = 1,
        PcscfRestoration = 2,
    }
}

enumerated! {
    /// Required-Access-Info (TS 29.214 §5.3.34).
    pub enum RequiredAccessInfo: dict::REQUIRED_ACCESS_INFO {
        UserLocation = 0,
        MsTimeZone = 1,
    }
}

enumerated! {
    /// IP-CAN-Type (TS 29.212 §5.3.27).
    pub enum IpCanType: dict::IP_CAN_TYPE {
        TgppGprs = 0,
        Docsis = 1,
        Xdsl = 2,
        Wimax = 3,
        Tgpp2 = 4,
        TgppEps = 5,
        Non3gppEps = 6,
        Fba = 7,
        Tgpp5gs = 8,
        Non3gpp5gs = 9,
    }
}

enumerated! {
    /// RAT-Type (TS 29.212 §5.3.31).
    pub enum RatType: dict::RAT_TYPE {
        Wlan = 0,
        Virtual = 1,
        Utran = 1000,
        Geran = 1001,
        Gan = 1002,
        HspaEvolution = 1003,
        Eutran = 1004,
        EutranNbIot = 1005,
        Nr = 1006,
        LteM = 1007,
        Cdma2000OneX = 2000,
        Hrpd = 2001,
        Umb = 2002,
        Ehrpd = 2003,
    }
}

enumerated! {
    /// Pre-emption-Capability (TS 29.212 §5.3.46).
    pub enum PreemptionCapability: dict::PRE_EMPTION_CAPABILITY {
        Enabled = 0,
        Disabled = 1,
    }
}

enumerated! {
    /// Pre-emption-Vulnerability (TS 29.212 §5.3.47).
    pub enum PreemptionVulnerability: dict::PRE_EMPTION_VULNERABILITY {
        Enabled = 0,
        Disabled = 1,
    }
}

grouped! {
    /// Media-Sub-Component (TS 29.214 §5.3.18): one IP flow (RTP or RTCP) of a media component.
    pub struct MediaSubComponent<'a> [any] {
        /// Flow-Number.
        flow_number: req u32 = dict::FLOW_NUMBER,
        /// Flow-Description (`0*2`: one per direction; IPFilterRule text, parse with
        /// [`crate::IpFilterRule::parse`]).
        flow_description: max2 Cow<'a, str> [2] = dict::FLOW_DESCRIPTION,
        /// Flow-Status.
        flow_status: opt FlowStatus = dict::FLOW_STATUS,
        /// Flow-Usage.
        flow_usage: opt FlowUsage = dict::FLOW_USAGE,
        /// Max-Requested-Bandwidth-UL.
        max_requested_bandwidth_ul: opt u32 = dict::MAX_REQUESTED_BANDWIDTH_UL,
        /// Max-Requested-Bandwidth-DL.
        max_requested_bandwidth_dl: opt u32 = dict::MAX_REQUESTED_BANDWIDTH_DL,
        /// AF-Signalling-Protocol.
        af_signalling_protocol: opt AfSignallingProtocol = dict::AF_SIGNALLING_PROTOCOL,
        /// ToS-Traffic-Class.
        tos_traffic_class: opt Cow<'a, [u8]> = dict::TOS_TRAFFIC_CLASS,
    }
}

grouped! {
    /// Media-Component-Description (TS 29.214 §5.3.16): one SDP media line and its flows.
    pub struct MediaComponentDescription<'a> [any] {
        /// Media-Component-Number (the m-line's ordinal).
        media_component_number: req u32 = dict::MEDIA_COMPONENT_NUMBER,
        /// Media-Sub-Component.
        media_sub_component: vec MediaSubComponent<'a> [2] = dict::MEDIA_SUB_COMPONENT,
        /// AF-Application-Identifier.
        af_application_identifier: opt Cow<'a, [u8]> = dict::AF_APPLICATION_IDENTIFIER,
        /// Media-Type.
        media_type: opt MediaType = dict::MEDIA_TYPE,
        /// Max-Requested-Bandwidth-UL.
        max_requested_bandwidth_ul: opt u32 = dict::MAX_REQUESTED_BANDWIDTH_UL,
        /// Max-Requested-Bandwidth-DL.
        max_requested_bandwidth_dl: opt u32 = dict::MAX_REQUESTED_BANDWIDTH_DL,
        /// Max-Supported-Bandwidth-UL.
        max_supported_bandwidth_ul: opt u32 = dict::MAX_SUPPORTED_BANDWIDTH_UL,
        /// Max-Supported-Bandwidth-DL.
        max_supported_bandwidth_dl: opt u32 = dict::MAX_SUPPORTED_BANDWIDTH_DL,
        /// Min-Desired-Bandwidth-UL.
        min_desired_bandwidth_ul: opt u32 = dict::MIN_DESIRED_BANDWIDTH_UL,
        /// Min-Desired-Bandwidth-DL.
        min_desired_bandwidth_dl: opt u32 = dict::MIN_DESIRED_BANDWIDTH_DL,
        /// Min-Requested-Bandwidth-UL.
        min_requested_bandwidth_ul: opt u32 = dict::MIN_REQUESTED_BANDWIDTH_UL,
        /// Min-Requested-Bandwidth-DL.
        min_requested_bandwidth_dl: opt u32 = dict::MIN_REQUESTED_BANDWIDTH_DL,
        /// Flow-Status.
        flow_status: opt FlowStatus = dict::FLOW_STATUS,
        /// Priority-Sharing-Indicator.
        priority_sharing_indicator: opt i32 = dict::PRIORITY_SHARING_INDICATOR,
        /// Pre-emption-Capability.
        pre_emption_capability: opt PreemptionCapability = dict::PRE_EMPTION_CAPABILITY,
        /// Pre-emption-Vulnerability.
        pre_emption_vulnerability: opt PreemptionVulnerability = dict::PRE_EMPTION_VULNERABILITY,
        /// Reservation-Priority (ETSI, vendor 13019).
        reservation_priority: opt i32 = dict::RESERVATION_PRIORITY,
        /// RR-Bandwidth (RTCP receiver bandwidth, RFC 3556).
        rr_bandwidth: opt u32 = dict::RR_BANDWIDTH,
        /// RS-Bandwidth (RTCP sender bandwidth, RFC 3556).
        rs_bandwidth: opt u32 = dict::RS_BANDWIDTH,
        /// Codec-Data (direction and offer/answer line, then the SDP m= and a= lines).
        codec_data: vec Cow<'a, [u8]> [2] = dict::CODEC_DATA,
        /// Sharing-Key-DL.
        sharing_key_dl: opt u32 = dict::SHARING_KEY_DL,
        /// Sharing-Key-UL.
        sharing_key_ul: opt u32 = dict::SHARING_KEY_UL,
        /// Content-Version.
        content_version: opt u64 = dict::CONTENT_VERSION,
        /// Max-PLR-DL.
        max_plr_dl: opt f32 = dict::MAX_PLR_DL,
        /// Max-PLR-UL.
        max_plr_ul: opt f32 = dict::MAX_PLR_UL,
    }
}

grouped! {
    /// Flows (TS 29.214 §5.3.10): `{ Media-Component-Number } *[ Flow-Number ]
    /// *[ Content-Version ] *[ AVP ]`.
    pub struct Flows<'a> [any] {
        /// Media-Component-Number.
        media_component_number: req u32 = dict::MEDIA_COMPONENT_NUMBER,
        /// Flow-Number.
        flow_number: vec u32 [4] = dict::FLOW_NUMBER,
        /// Content-Version.
        content_version: vec u64 [2] = dict::CONTENT_VERSION,
    }
}

grouped! {
    /// Access-Network-Charging-Identifier (TS 29.214 §5.3.3).
    pub struct AccessNetworkChargingIdentifier<'a> [any] {
        /// Access-Network-Charging-Identifier-Value.
        access_network_charging_identifier_value: req Cow<'a, [u8]> = dict::ACCESS_NETWORK_CHARGING_IDENTIFIER_VALUE,
        /// Flows.
        flows: vec Flows<'a> [2] = dict::FLOWS,
    }
}

grouped! {
    /// Acceptable-Service-Info (TS 29.214 §5.3.24).
    pub struct AcceptableServiceInfo<'a> [any] {
        /// Media-Component-Description.
        media_component_description: vec MediaComponentDescription<'a> = dict::MEDIA_COMPONENT_DESCRIPTION,
        /// Max-Requested-Bandwidth-DL.
        max_requested_bandwidth_dl: opt u32 = dict::MAX_REQUESTED_BANDWIDTH_DL,
        /// Max-Requested-Bandwidth-UL.
        max_requested_bandwidth_ul: opt u32 = dict::MAX_REQUESTED_BANDWIDTH_UL,
    }
}

grouped! {
    /// Sponsored-Connectivity-Data (TS 29.214 §5.3.27).
    pub struct SponsoredConnectivityData<'a> [any] {
        /// Sponsor-Identity.
        sponsor_identity: opt Cow<'a, str> = dict::SPONSOR_IDENTITY,
        /// Application-Service-Provider-Identity.
        application_service_provider_identity: opt Cow<'a, str> = dict::APPLICATION_SERVICE_PROVIDER_IDENTITY,
        /// Granted-Service-Unit (RFC 4006), kept as received.
        granted_service_unit: opt RawAvp<'a> = dict::GRANTED_SERVICE_UNIT,
        /// Used-Service-Unit (RFC 4006), kept as received.
        used_service_unit: opt RawAvp<'a> = dict::USED_SERVICE_UNIT,
        /// Sponsoring-Action.
        sponsoring_action: opt i32 = dict::SPONSORING_ACTION,
    }
}

command! {
    /// AA-Request (TS 29.214 §5.6.1), P-CSCF to PCRF: the session's media.
    pub struct Aar<'a> = (cmd::AA, app::RX, true, true, "AAR") [any] {
        /// Session-Id.
        session_id: fixed Cow<'a, str> = dict::SESSION_ID,
        /// DRMP.
        drmp: opt i32 = dict::DRMP,
        /// Auth-Application-Id (16777236).
        auth_application_id: req u32 = dict::AUTH_APPLICATION_ID,
        /// Origin-Host.
        origin_host: req Cow<'a, str> = dict::ORIGIN_HOST,
        /// Origin-Realm.
        origin_realm: req Cow<'a, str> = dict::ORIGIN_REALM,
        /// Destination-Realm.
        destination_realm: req Cow<'a, str> = dict::DESTINATION_REALM,
        /// Destination-Host.
        destination_host: opt Cow<'a, str> = dict::DESTINATION_HOST,
        /// IP-Domain-Id.
        ip_domain_id: opt Cow<'a, [u8]> = dict::IP_DOMAIN_ID,
        /// Auth-Session-State.
        auth_session_state: opt AuthSessionState = dict::AUTH_SESSION_STATE,
        /// AF-Application-Identifier.
        af_application_identifier: opt Cow<'a, [u8]> = dict::AF_APPLICATION_IDENTIFIER,
        /// Media-Component-Description (the usual audio + video kept inline: no allocation).
        media_component_description: vec MediaComponentDescription<'a> [2] = dict::MEDIA_COMPONENT_DESCRIPTION,
        /// Service-Info-Status.
        service_info_status: opt ServiceInfoStatus = dict::SERVICE_INFO_STATUS,
        /// AF-Charging-Identifier (the ICID).
        af_charging_identifier: opt Cow<'a, [u8]> = dict::AF_CHARGING_IDENTIFIER,
        /// SIP-Forking-Indication.
        sip_forking_indication: opt SipForkingIndication = dict::SIP_FORKING_INDICATION,
        /// Specific-Action.
        specific_action: vec SpecificAction [4] = dict::SPECIFIC_ACTION,
        /// Subscription-Id.
        subscription_id: vec SubscriptionId<'a> [1] = dict::SUBSCRIPTION_ID,
        /// OC-Supported-Features.
        oc_supported_features: opt RawAvp<'a> = dict::OC_SUPPORTED_FEATURES,
        /// Supported-Features.
        supported_features: vec SupportedFeatures<'a> [1] = dict::SUPPORTED_FEATURES,
        /// Reservation-Priority (ETSI).
        reservation_priority: opt i32 = dict::RESERVATION_PRIORITY,
        /// Framed-IP-Address (the UE's IPv4 address, 4 octets).
        framed_ip_address: opt Cow<'a, [u8]> = dict::FRAMED_IP_ADDRESS,
        /// Framed-IPv6-Prefix.
        framed_ipv6_prefix: opt Cow<'a, [u8]> = dict::FRAMED_IPV6_PREFIX,
        /// Called-Station-Id.
        called_station_id: opt Cow<'a, str> = dict::CALLED_STATION_ID,
        /// Service-URN.
        service_urn: opt Cow<'a, [u8]> = dict::SERVICE_URN,
        /// Sponsored-Connectivity-Data.
        sponsored_connectivity_data: opt SponsoredConnectivityData<'a> = dict::SPONSORED_CONNECTIVITY_DATA,
        /// MPS-Identifier.
        mps_identifier: opt Cow<'a, [u8]> = dict::MPS_IDENTIFIER,
        /// GCS-Identifier.
        gcs_identifier: opt Cow<'a, [u8]> = dict::GCS_IDENTIFIER,
        /// MCPTT-Identifier.
        mcptt_identifier: opt Cow<'a, [u8]> = dict::MCPTT_IDENTIFIER,
        /// Rx-Request-Type.
        rx_request_type: opt RxRequestType = dict::RX_REQUEST_TYPE,
        /// Required-Access-Info.
        required_access_info: vec RequiredAccessInfo [2] = dict::REQUIRED_ACCESS_INFO,
        /// AF-Requested-Data.
        af_requested_data: opt u32 = dict::AF_REQUESTED_DATA,
        /// Pre-emption-Control-Info.
        pre_emption_control_info: opt u32 = dict::PRE_EMPTION_CONTROL_INFO,
        /// Proxy-Info.
        proxy_info: vec ProxyInfo<'a> = dict::PROXY_INFO,
        /// Route-Record.
        route_record: vec Cow<'a, str> [1] = dict::ROUTE_RECORD,
    }
}

command! {
    /// AA-Answer (TS 29.214 §5.6.2).
    pub struct Aaa<'a> = (cmd::AA, app::RX, false, true, "AAA") [any] {
        /// Session-Id.
        session_id: fixed Cow<'a, str> = dict::SESSION_ID,
        /// DRMP.
        drmp: opt i32 = dict::DRMP,
        /// Auth-Application-Id.
        auth_application_id: req u32 = dict::AUTH_APPLICATION_ID,
        /// Origin-Host.
        origin_host: req Cow<'a, str> = dict::ORIGIN_HOST,
        /// Origin-Realm.
        origin_realm: req Cow<'a, str> = dict::ORIGIN_REALM,
        /// Result-Code.
        result_code: opt u32 = dict::RESULT_CODE,
        /// Experimental-Result.
        experimental_result: opt ExperimentalResult<'a> = dict::EXPERIMENTAL_RESULT,
        /// Auth-Session-State.
        auth_session_state: opt AuthSessionState = dict::AUTH_SESSION_STATE,
        /// Access-Network-Charging-Identifier.
        access_network_charging_identifier: vec AccessNetworkChargingIdentifier<'a> [1] = dict::ACCESS_NETWORK_CHARGING_IDENTIFIER,
        /// Access-Network-Charging-Address.
        access_network_charging_address: opt Address<'a> = dict::ACCESS_NETWORK_CHARGING_ADDRESS,
        /// Acceptable-Service-Info.
        acceptable_service_info: opt AcceptableServiceInfo<'a> = dict::ACCEPTABLE_SERVICE_INFO,
        /// AN-GW-Address (`0*2`).
        an_gw_address: max2 Address<'a> [2] = dict::AN_GW_ADDRESS,
        /// Service-Authorization-Info.
        service_authorization_info: opt u32 = dict::SERVICE_AUTHORIZATION_INFO,
        /// IP-CAN-Type.
        ip_can_type: opt IpCanType = dict::IP_CAN_TYPE,
        /// NetLoc-Access-Support.
        netloc_access_support: opt i32 = dict::NETLOC_ACCESS_SUPPORT,
        /// RAT-Type.
        rat_type: opt RatType = dict::RAT_TYPE,
        /// Flows.
        flows: vec Flows<'a> = dict::FLOWS,
        /// OC-Supported-Features.
        oc_supported_features: opt RawAvp<'a> = dict::OC_SUPPORTED_FEATURES,
        /// OC-OLR.
        oc_olr: opt RawAvp<'a> = dict::OC_OLR,
        /// Supported-Features.
        supported_features: vec SupportedFeatures<'a> [1] = dict::SUPPORTED_FEATURES,
        /// Subscription-Id.
        subscription_id: vec SubscriptionId<'a> [1] = dict::SUBSCRIPTION_ID,
        /// Class.
        class: vec Cow<'a, [u8]> [1] = dict::CLASS,
        /// Error-Message.
        error_message: opt Cow<'a, str> = dict::ERROR_MESSAGE,
        /// Error-Reporting-Host.
        error_reporting_host: opt Cow<'a, str> = dict::ERROR_REPORTING_HOST,
        /// Failed-AVP.
        failed_avp: opt FailedAvp<'a> = dict::FAILED_AVP,
        /// Retry-Interval.
        retry_interval: opt u32 = dict::RETRY_INTERVAL,
        /// Proxy-Info.
        proxy_info: vec ProxyInfo<'a> = dict::PROXY_INFO,
        /// Origin-State-Id.
        origin_state_id: opt u32 = dict::ORIGIN_STATE_ID,
        /// Redirect-Host.
        redirect_host: vec Cow<'a, str> [1] = dict::REDIRECT_HOST,
        /// Redirect-Host-Usage.
        redirect_host_usage: opt i32 = dict::REDIRECT_HOST_USAGE,
        /// Redirect-Max-Cache-Time.
        redirect_max_cache_time: opt u32 = dict::REDIRECT_MAX_CACHE_TIME,
    }
}

command! {
    /// Re-Auth-Request (TS 29.214 §5.6.3), PCRF to P-CSCF: bearer events.
    pub struct Rar<'a> = (cmd::RE_AUTH, app::RX, true, true, "RAR") [any] {
        /// Session-Id.
        session_id: fixed Cow<'a, str> = dict::SESSION_ID,
        /// DRMP.
        drmp: opt i32 = dict::DRMP,
        /// Origin-Host.
        origin_host: req Cow<'a, str> = dict::ORIGIN_HOST,
        /// Origin-Realm.
        origin_realm: req Cow<'a, str> = dict::ORIGIN_REALM,
        /// Destination-Realm.
        destination_realm: req Cow<'a, str> = dict::DESTINATION_REALM,
        /// Destination-Host.
        destination_host: req Cow<'a, str> = dict::DESTINATION_HOST,
        /// Auth-Application-Id.
        auth_application_id: req u32 = dict::AUTH_APPLICATION_ID,
        /// Specific-Action (one or more).
        specific_action: vec1 SpecificAction [4] = dict::SPECIFIC_ACTION,
        /// OC-Supported-Features.
        oc_supported_features: opt RawAvp<'a> = dict::OC_SUPPORTED_FEATURES,
        /// Access-Network-Charging-Identifier.
        access_network_charging_identifier: vec AccessNetworkChargingIdentifier<'a> [1] = dict::ACCESS_NETWORK_CHARGING_IDENTIFIER,
        /// Access-Network-Charging-Address.
        access_network_charging_address: opt Address<'a> = dict::ACCESS_NETWORK_CHARGING_ADDRESS,
        /// AN-GW-Address.
        an_gw_address: max2 Address<'a> [2] = dict::AN_GW_ADDRESS,
        /// Flows.
        flows: vec Flows<'a> [2] = dict::FLOWS,
        /// Subscription-Id.
        subscription_id: vec SubscriptionId<'a> [1] = dict::SUBSCRIPTION_ID,
        /// Abort-Cause.
        abort_cause: opt AbortCause = dict::ABORT_CAUSE,
        /// IP-CAN-Type.
        ip_can_type: opt IpCanType = dict::IP_CAN_TYPE,
        /// NetLoc-Access-Support.
        netloc_access_support: opt i32 = dict::NETLOC_ACCESS_SUPPORT,
        /// RAT-Type.
        rat_type: opt RatType = dict::RAT_TYPE,
        /// Sponsored-Connectivity-Data.
        sponsored_connectivity_data: opt SponsoredConnectivityData<'a> = dict::SPONSORED_CONNECTIVITY_DATA,
        /// 3GPP-User-Location-Info.
        tgpp_user_location_info: opt Cow<'a, [u8]> = dict::TGPP_USER_LOCATION_INFO,
        /// User-Location-Info-Time.
        user_location_info_time: opt Time = dict::USER_LOCATION_INFO_TIME,
        /// 3GPP-MS-TimeZone.
        tgpp_ms_timezone: opt Cow<'a, [u8]> = dict::TGPP_MS_TIMEZONE,
        /// RAN-NAS-Release-Cause.
        ran_nas_release_cause: vec Cow<'a, [u8]> = dict::RAN_NAS_RELEASE_CAUSE,
        /// 3GPP-SGSN-MCC-MNC.
        tgpp_sgsn_mcc_mnc: opt Cow<'a, str> = dict::TGPP_SGSN_MCC_MNC,
        /// TWAN-Identifier.
        twan_identifier: opt Cow<'a, [u8]> = dict::TGPP_TWAN_IDENTIFIER,
        /// UDP-Source-Port.
        udp_source_port: opt u32 = dict::UDP_SOURCE_PORT,
        /// UE-Local-IP-Address.
        ue_local_ip_address: opt Address<'a> = dict::UE_LOCAL_IP_ADDRESS,
        /// Origin-State-Id.
        origin_state_id: opt u32 = dict::ORIGIN_STATE_ID,
        /// Class.
        class: vec Cow<'a, [u8]> [1] = dict::CLASS,
        /// Proxy-Info.
        proxy_info: vec ProxyInfo<'a> = dict::PROXY_INFO,
        /// Route-Record.
        route_record: vec Cow<'a, str> [1] = dict::ROUTE_RECORD,
    }
}

command! {
    /// Re-Auth-Answer (TS 29.214 §5.6.4).
    pub struct Raa<'a> = (cmd::RE_AUTH, app::RX, false, true, "RAA") [any] {
        /// Session-Id.
        session_id: fixed Cow<'a, str> = dict::SESSION_ID,
        /// DRMP.
        drmp: opt i32 = dict::DRMP,
        /// Origin-Host.
        origin_host: req Cow<'a, str> = dict::ORIGIN_HOST,
        /// Origin-Realm.
        origin_realm: req Cow<'a, str> = dict::ORIGIN_REALM,
        /// Result-Code.
        result_code: opt u32 = dict::RESULT_CODE,
        /// Experimental-Result.
        experimental_result: opt ExperimentalResult<'a> = dict::EXPERIMENTAL_RESULT,
        /// OC-Supported-Features.
        oc_supported_features: opt RawAvp<'a> = dict::OC_SUPPORTED_FEATURES,
        /// OC-OLR.
        oc_olr: opt RawAvp<'a> = dict::OC_OLR,
        /// IP-CAN-Type.
        ip_can_type: opt IpCanType = dict::IP_CAN_TYPE,
        /// RAT-Type.
        rat_type: opt RatType = dict::RAT_TYPE,
        /// AN-GW-Address.
        an_gw_address: max2 Address<'a> [2] = dict::AN_GW_ADDRESS,
        /// 3GPP-User-Location-Info.
        tgpp_user_location_info: opt Cow<'a, [u8]> = dict::TGPP_USER_LOCATION_INFO,
        /// User-Location-Info-Time.
        user_location_info_time: opt Time = dict::USER_LOCATION_INFO_TIME,
        /// NetLoc-Access-Support.
        netloc_access_support: opt i32 = dict::NETLOC_ACCESS_SUPPORT,
        /// 3GPP-SGSN-MCC-MNC.
        tgpp_sgsn_mcc_mnc: opt Cow<'a, str> = dict::TGPP_SGSN_MCC_MNC,
        /// 3GPP-MS-TimeZone.
        tgpp_ms_timezone: opt Cow<'a, [u8]> = dict::TGPP_MS_TIMEZONE,
        /// RAN-NAS-Release-Cause.
        ran_nas_release_cause: vec Cow<'a, [u8]> = dict::RAN_NAS_RELEASE_CAUSE,
        /// TWAN-Identifier.
        twan_identifier: opt Cow<'a, [u8]> = dict::TGPP_TWAN_IDENTIFIER,
        /// Media-Component-Description.
        media_component_description: vec MediaComponentDescription<'a> = dict::MEDIA_COMPONENT_DESCRIPTION,
        /// Service-URN.
        service_urn: opt Cow<'a, [u8]> = dict::SERVICE_URN,
        /// Origin-State-Id.
        origin_state_id: opt u32 = dict::ORIGIN_STATE_ID,
        /// Class.
        class: vec Cow<'a, [u8]> [1] = dict::CLASS,
        /// Error-Message.
        error_message: opt Cow<'a, str> = dict::ERROR_MESSAGE,
        /// Error-Reporting-Host.
        error_reporting_host: opt Cow<'a, str> = dict::ERROR_REPORTING_HOST,
        /// Redirect-Host.
        redirect_host: vec Cow<'a, str> [1] = dict::REDIRECT_HOST,
        /// Redirect-Host-Usage.
        redirect_host_usage: opt i32 = dict::REDIRECT_HOST_USAGE,
        /// Redirect-Max-Cache-Time.
        redirect_max_cache_time: opt u32 = dict::REDIRECT_MAX_CACHE_TIME,
        /// Failed-AVP.
        failed_avp: opt FailedAvp<'a> = dict::FAILED_AVP,
        /// Proxy-Info.
        proxy_info: vec ProxyInfo<'a> = dict::PROXY_INFO,
    }
}

command! {
    /// Session-Termination-Request (TS 29.214 §5.6.5), P-CSCF to PCRF at the end of a session.
    pub struct Str<'a> = (cmd::SESSION_TERMINATION, app::RX, true, true, "STR") [any] {
        /// Session-Id.
        session_id: fixed Cow<'a, str> = dict::SESSION_ID,
        /// DRMP.
        drmp: opt i32 = dict::DRMP,
        /// Origin-Host.
        origin_host: req Cow<'a, str> = dict::ORIGIN_HOST,
        /// Origin-Realm.
        origin_realm: req Cow<'a, str> = dict::ORIGIN_REALM,
        /// Destination-Realm.
        destination_realm: req Cow<'a, str> = dict::DESTINATION_REALM,
        /// Auth-Application-Id.
        auth_application_id: req u32 = dict::AUTH_APPLICATION_ID,
        /// Termination-Cause.
        termination_cause: req TerminationCause = dict::TERMINATION_CAUSE,
        /// Destination-Host.
        destination_host: opt Cow<'a, str> = dict::DESTINATION_HOST,
        /// OC-Supported-Features.
        oc_supported_features: opt RawAvp<'a> = dict::OC_SUPPORTED_FEATURES,
        /// Required-Access-Info.
        required_access_info: vec RequiredAccessInfo [2] = dict::REQUIRED_ACCESS_INFO,
        /// Class.
        class: vec Cow<'a, [u8]> [1] = dict::CLASS,
        /// Proxy-Info.
        proxy_info: vec ProxyInfo<'a> = dict::PROXY_INFO,
        /// Route-Record.
        route_record: vec Cow<'a, str> [1] = dict::ROUTE_RECORD,
    }
}

command! {
    /// Session-Termination-Answer (TS 29.214 §5.6.6).
    pub struct Sta<'a> = (cmd::SESSION_TERMINATION, app::RX, false, true, "STA") [any] {
        /// Session-Id.
        session_id: fixed Cow<'a, str> = dict::SESSION_ID,
        /// DRMP.
        drmp: opt i32 = dict::DRMP,
        /// Origin-Host.
        origin_host: req Cow<'a, str> = dict::ORIGIN_HOST,
        /// Origin-Realm.
        origin_realm: req Cow<'a, str> = dict::ORIGIN_REALM,
        /// Result-Code.
        result_code: opt u32 = dict::RESULT_CODE,
        /// Error-Message.
        error_message: opt Cow<'a, str> = dict::ERROR_MESSAGE,
        /// Error-Reporting-Host.
        error_reporting_host: opt Cow<'a, str> = dict::ERROR_REPORTING_HOST,
        /// OC-Supported-Features.
        oc_supported_features: opt RawAvp<'a> = dict::OC_SUPPORTED_FEATURES,
        /// OC-OLR.
        oc_olr: opt RawAvp<'a> = dict::OC_OLR,
        /// Failed-AVP.
        failed_avp: opt FailedAvp<'a> = dict::FAILED_AVP,
        /// Sponsored-Connectivity-Data.
        sponsored_connectivity_data: opt SponsoredConnectivityData<'a> = dict::SPONSORED_CONNECTIVITY_DATA,
        /// Origin-State-Id.
        origin_state_id: opt u32 = dict::ORIGIN_STATE_ID,
        /// 3GPP-User-Location-Info.
        tgpp_user_location_info: opt Cow<'a, [u8]> = dict::TGPP_USER_LOCATION_INFO,
        /// User-Location-Info-Time.
        user_location_info_time: opt Time = dict::USER_LOCATION_INFO_TIME,
        /// 3GPP-MS-TimeZone.
        tgpp_ms_timezone: opt Cow<'a, [u8]> = dict::TGPP_MS_TIMEZONE,
        /// RAN-NAS-Release-Cause.
        ran_nas_release_cause: vec Cow<'a, [u8]> = dict::RAN_NAS_RELEASE_CAUSE,
        /// 3GPP-SGSN-MCC-MNC.
        tgpp_sgsn_mcc_mnc: opt Cow<'a, str> = dict::TGPP_SGSN_MCC_MNC,
        /// TWAN-Identifier.
        twan_identifier: opt Cow<'a, [u8]> = dict::TGPP_TWAN_IDENTIFIER,
        /// UDP-Source-Port.
        udp_source_port: opt u32 = dict::UDP_SOURCE_PORT,
        /// UE-Local-IP-Address.
        ue_local_ip_address: opt Address<'a> = dict::UE_LOCAL_IP_ADDRESS,
        /// NetLoc-Access-Support.
        netloc_access_support: opt i32 = dict::NETLOC_ACCESS_SUPPORT,
        /// Class.
        class: vec Cow<'a, [u8]> [1] = dict::CLASS,
        /// Redirect-Host.
        redirect_host: vec Cow<'a, str> [1] = dict::REDIRECT_HOST,
        /// Redirect-Host-Usage.
        redirect_host_usage: opt i32 = dict::REDIRECT_HOST_USAGE,
        /// Redirect-Max-Cache-Time.
        redirect_max_cache_time: opt u32 = dict::REDIRECT_MAX_CACHE_TIME,
        /// Proxy-Info.
        proxy_info: vec ProxyInfo<'a> = dict::PROXY_INFO,
    }
}

command! {
    /// Abort-Session-Request (TS 29.214 §5.6.7), PCRF to P-CSCF.
    pub struct Asr<'a> = (cmd::ABORT_SESSION, app::RX, true, true, "ASR") [any] {
        /// Session-Id.
        session_id: fixed Cow<'a, str> = dict::SESSION_ID,
        /// DRMP.
        drmp: opt i32 = dict::DRMP,
        /// Origin-Host.
        origin_host: req Cow<'a, str> = dict::ORIGIN_HOST,
        /// Origin-Realm.
        origin_realm: req Cow<'a, str> = dict::ORIGIN_REALM,
        /// Destination-Realm.
        destination_realm: req Cow<'a, str> = dict::DESTINATION_REALM,
        /// Destination-Host.
        destination_host: req Cow<'a, str> = dict::DESTINATION_HOST,
        /// Auth-Application-Id.
        auth_application_id: req u32 = dict::AUTH_APPLICATION_ID,
        /// OC-Supported-Features.
        oc_supported_features: opt RawAvp<'a> = dict::OC_SUPPORTED_FEATURES,
        /// Abort-Cause.
        abort_cause: req AbortCause = dict::ABORT_CAUSE,
        /// Origin-State-Id.
        origin_state_id: opt u32 = dict::ORIGIN_STATE_ID,
        /// Proxy-Info.
        proxy_info: vec ProxyInfo<'a> = dict::PROXY_INFO,
        /// Route-Record.
        route_record: vec Cow<'a, str> [1] = dict::ROUTE_RECORD,
    }
}

command! {
    /// Abort-Session-Answer (TS 29.214 §5.6.8).
    pub struct Asa<'a> = (cmd::ABORT_SESSION, app::RX, false, true, "ASA") [any] {
        /// Session-Id.
        session_id: fixed Cow<'a, str> = dict::SESSION_ID,
        /// DRMP.
        drmp: opt i32 = dict::DRMP,
        /// Origin-Host.
        origin_host: req Cow<'a, str> = dict::ORIGIN_HOST,
        /// Origin-Realm.
        origin_realm: req Cow<'a, str> = dict::ORIGIN_REALM,
        /// Result-Code.
        result_code: opt u32 = dict::RESULT_CODE,
        /// OC-Supported-Features.
        oc_supported_features: opt RawAvp<'a> = dict::OC_SUPPORTED_FEATURES,
        /// OC-OLR.
        oc_olr: opt RawAvp<'a> = dict::OC_OLR,
        /// Origin-State-Id.
        origin_state_id: opt u32 = dict::ORIGIN_STATE_ID,
        /// Error-Message.
        error_message: opt Cow<'a, str> = dict::ERROR_MESSAGE,
        /// Error-Reporting-Host.
        error_reporting_host: opt Cow<'a, str> = dict::ERROR_REPORTING_HOST,
        /// Failed-AVP.
        failed_avp: opt FailedAvp<'a> = dict::FAILED_AVP,
        /// Redirect-Host.
        redirect_host: vec Cow<'a, str> [1] = dict::REDIRECT_HOST,
        /// Redirect-Host-Usage.
        redirect_host_usage: opt i32 = dict::REDIRECT_HOST_USAGE,
        /// Redirect-Max-Cache-Time.
        redirect_max_cache_time: opt u32 = dict::REDIRECT_MAX_CACHE_TIME,
        /// Proxy-Info.
        proxy_info: vec ProxyInfo<'a> = dict::PROXY_INFO,
    }
}

answer_outcome!(Aaa, Raa);
answer_result_code!(Sta, Asa);
