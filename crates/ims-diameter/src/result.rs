//! Result codes (RFC 6733 §7.1), 3GPP experimental result codes (TS 29.229 §6.2, TS 29.214 §5.5)
//! and [`Outcome`], which treats Result-Code and Experimental-Result uniformly.

use crate::base::ExperimentalResult;
use crate::dict::VENDOR_3GPP;
use core::fmt;

macro_rules! registry {
    ($(#[$m:meta])* pub enum $name:ident { $($var:ident = $val:literal $text:literal,)* }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $(#[doc = concat!("`", stringify!($val), "` ", $text)] $var,)*
            /// A code this crate does not name (kept as received).
            Unknown(u32),
        }
        impl $name {
            /// The variant for a wire value.
            pub const fn from_u32(v: u32) -> Self {
                match v {
                    $($val => Self::$var,)*
                    v => Self::Unknown(v),
                }
            }
            /// The wire value.
            pub const fn code(self) -> u32 {
                match self {
                    $(Self::$var => $val,)*
                    Self::Unknown(v) => v,
                }
            }
            /// The specification's name.
            pub const fn name(self) -> Option<&'static str> {
                match self {
                    $(Self::$var => Some($text),)*
                    Self::Unknown(_) => None,
                }
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self.name() {
                    Some(n) => write!(f, "{} {}", self.code(), n),
                    None => write!(f, "{}", self.code()),
                }
            }
        }
    };
}

registry! {
    /// Result-Code values of RFC 6733 §7.1.
    pub enum ResultCode {
        MultiRoundAuth = 1001 "DIAMETER_MULTI_ROUND_AUTH",
        Success = 2001 "DIAMETER_SUCCESS",
        LimitedSuccess = 2002 "DIAMETER_LIMITED_SUCCESS",
        CommandUnsupported = 3001 "DIAMETER_COMMAND_UNSUPPORTED",
        UnableToDeliver = 3002 "DIAMETER_UNABLE_TO_DELIVER",
        RealmNotServed = 3003 "DIAMETER_REALM_NOT_SERVED",
        TooBusy = 3004 "DIAMETER_TOO_BUSY",
        LoopDetected = 3005 "DIAMETER_LOOP_DETECTED",
        RedirectIndication = 3006 "DIAMETER_REDIRECT_INDICATION",
        ApplicationUnsupported = 3007 "DIAMETER_APPLICATION_UNSUPPORTED",
        InvalidHdrBits = 3008 "DIAMETER_INVALID_HDR_BITS",
        InvalidAvpBits = 3009 "DIAMETER_INVALID_AVP_BITS",
        UnknownPeer = 3010 "DIAMETER_UNKNOWN_PEER",
        AuthenticationRejected = 4001 "DIAMETER_AUTHENTICATION_REJECTED",
        OutOfSpace = 4002 "DIAMETER_OUT_OF_SPACE",
        ElectionLost = 4003 "ELECTION_LOST",
        AvpUnsupported = 5001 "DIAMETER_AVP_UNSUPPORTED",
        UnknownSessionId = 5002 "DIAMETER_UNKNOWN_SESSION_ID",
        AuthorizationRejected = 5003 "DIAMETER_AUTHORIZATION_REJECTED",
        InvalidAvpValue = 5004 "DIAMETER_INVALID_AVP_VALUE",
        MissingAvp = 5005 "DIAMETER_MISSING_AVP",
        ResourcesExceeded = 5006 "DIAMETER_RESOURCES_EXCEEDED",
        ContradictingAvps = 5007 "DIAMETER_CONTRADICTING_AVPS",
        AvpNotAllowed = 5008 "DIAMETER_AVP_NOT_ALLOWED",
        AvpOccursTooManyTimes = 5009 "DIAMETER_AVP_OCCURS_TOO_MANY_TIMES",
        NoCommonApplication = 5010 "DIAMETER_NO_COMMON_APPLICATION",
        UnsupportedVersion = 5011 "DIAMETER_UNSUPPORTED_VERSION",
        UnableToComply = 5012 "DIAMETER_UNABLE_TO_COMPLY",
        InvalidBitInHeader = 5013 "DIAMETER_INVALID_BIT_IN_HEADER",
        InvalidAvpLength = 5014 "DIAMETER_INVALID_AVP_LENGTH",
        InvalidMessageLength = 5015 "DIAMETER_INVALID_MESSAGE_LENGTH",
        InvalidAvpBitCombo = 5016 "DIAMETER_INVALID_AVP_BIT_COMBO",
        NoCommonSecurity = 5017 "DIAMETER_NO_COMMON_SECURITY",
    }
}

registry! {
    /// 3GPP Experimental-Result-Code values (Vendor-Id 10415): Cx/Dx (TS 29.229 §6.2), Rx
    /// (TS 29.214 §5.5) and S6c/SGd (TS 29.338 §5.3.4 / §6.3.4, 5550–5558).
    pub enum ExperimentalResultCode {
        FirstRegistration = 2001 "DIAMETER_FIRST_REGISTRATION",
        SubsequentRegistration = 2002 "DIAMETER_SUBSEQUENT_REGISTRATION",
        UnregisteredService = 2003 "DIAMETER_UNREGISTERED_SERVICE",
        SuccessServerNameNotStored = 2004 "DIAMETER_SUCCESS_SERVER_NAME_NOT_STORED",
        ServerSelection = 2005 "DIAMETER_SERVER_SELECTION",
        RequestedServiceTemporarilyNotAuthorized = 4261 "REQUESTED_SERVICE_TEMPORARILY_NOT_AUTHORIZED",
        UserUnknown = 5001 "DIAMETER_ERROR_USER_UNKNOWN",
        IdentitiesDontMatch = 5002 "DIAMETER_ERROR_IDENTITIES_DONT_MATCH",
        IdentityNotRegistered = 5003 "DIAMETER_ERROR_IDENTITY_NOT_REGISTERED",
        RoamingNotAllowed = 5004 "DIAMETER_ERROR_ROAMING_NOT_ALLOWED",
        IdentityAlreadyRegistered = 5005 "DIAMETER_ERROR_IDENTITY_ALREADY_REGISTERED",
        AuthSchemeNotSupported = 5006 "DIAMETER_ERROR_AUTH_SCHEME_NOT_SUPPORTED",
        InAssignmentType = 5007 "DIAMETER_ERROR_IN_ASSIGNMENT_TYPE",
        TooMuchData = 5008 "DIAMETER_ERROR_TOO_MUCH_DATA",
        NotSupportedUserData = 5009 "DIAMETER_ERROR_NOT_SUPPORTED_USER_DATA",
        FeatureUnsupported = 5011 "DIAMETER_ERROR_FEATURE_UNSUPPORTED",
        ServingNodeFeatureUnsupported = 5012 "DIAMETER_ERROR_SERVING_NODE_FEATURE_UNSUPPORTED",
        InvalidServiceInformation = 5061 "INVALID_SERVICE_INFORMATION",
        FilterRestrictions = 5062 "FILTER_RESTRICTIONS",
        RequestedServiceNotAuthorized = 5063 "REQUESTED_SERVICE_NOT_AUTHORIZED",
        DuplicatedAfSession = 5064 "DUPLICATED_AF_SESSION",
        IpCanSessionNotAvailable = 5065 "IP-CAN_SESSION_NOT_AVAILABLE",
        UnauthorizedNonEmergencySession = 5066 "UNAUTHORIZED_NON_EMERGENCY_SESSION",
        UnauthorizedSponsoredDataConnectivity = 5067 "UNAUTHORIZED_SPONSORED_DATA_CONNECTIVITY",
        TemporaryNetworkFailure = 5068 "TEMPORARY_NETWORK_FAILURE",
        AbsentUser = 5550 "DIAMETER_ERROR_ABSENT_USER",
        UserBusyForMtSms = 5551 "DIAMETER_ERROR_USER_BUSY_FOR_MT_SMS",
        FacilityNotSupported = 5552 "DIAMETER_ERROR_FACILITY_NOT_SUPPORTED",
        IllegalUser = 5553 "DIAMETER_ERROR_ILLEGAL_USER",
        IllegalEquipment = 5554 "DIAMETER_ERROR_ILLEGAL_EQUIPMENT",
        SmDeliveryFailure = 5555 "DIAMETER_ERROR_SM_DELIVERY_FAILURE",
        ServiceNotSubscribed = 5556 "DIAMETER_ERROR_SERVICE_NOT_SUBSCRIBED",
        ServiceBarred = 5557 "DIAMETER_ERROR_SERVICE_BARRED",
        MwdListFull = 5558 "DIAMETER_ERROR_MWD_LIST_FULL",
    }
}

/// The result of an answer, whether it came as Result-Code or as Experimental-Result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// Result-Code (RFC 6733 §7.1).
    Result(ResultCode),
    /// Experimental-Result {Vendor-Id, Experimental-Result-Code} (RFC 6733 §7.6).
    Experimental {
        /// Vendor-Id (10415 for 3GPP).
        vendor_id: u32,
        /// Experimental-Result-Code (named when the vendor is 3GPP).
        code: ExperimentalResultCode,
    },
}

impl Outcome {
    /// DIAMETER_SUCCESS.
    pub const SUCCESS: Outcome = Outcome::Result(ResultCode::Success);

    /// A Result-Code.
    pub const fn from_result_code(code: u32) -> Outcome {
        Outcome::Result(ResultCode::from_u32(code))
    }

    /// An Experimental-Result.
    pub const fn experimental(vendor_id: u32, code: u32) -> Outcome {
        Outcome::Experimental {
            vendor_id,
            code: ExperimentalResultCode::from_u32(code),
        }
    }

    /// A 3GPP Experimental-Result (Vendor-Id 10415).
    pub const fn tgpp(code: ExperimentalResultCode) -> Outcome {
        Outcome::Experimental {
            vendor_id: VENDOR_3GPP,
            code,
        }
    }

    /// The numeric code.
    pub const fn code(&self) -> u32 {
        match self {
            Outcome::Result(r) => r.code(),
            Outcome::Experimental { code, .. } => code.code(),
        }
    }

    /// 2xxx.
    pub const fn is_success(&self) -> bool {
        self.code() / 1000 == 2
    }
    /// 3xxx: a protocol error (E bit).
    pub const fn is_protocol_error(&self) -> bool {
        self.code() / 1000 == 3
    }
    /// 4xxx.
    pub const fn is_transient_failure(&self) -> bool {
        self.code() / 1000 == 4
    }
    /// 5xxx.
    pub const fn is_permanent_failure(&self) -> bool {
        self.code() / 1000 == 5
    }

    /// The specification's name, when known.
    pub fn name(&self) -> Option<&'static str> {
        match self {
            Outcome::Result(r) => r.name(),
            Outcome::Experimental { vendor_id, code } if *vendor_id == VENDOR_3GPP => code.name(),
            Outcome::Experimental { .. } => None,
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Result(r) => r.fmt(f),
            Outcome::Experimental { vendor_id, code } => {
                write!(f, "{} (vendor {vendor_id})", code)
            }
        }
    }
}

pub(crate) fn outcome_of(rc: Option<u32>, er: Option<&ExperimentalResult<'_>>) -> Option<Outcome> {
    match (rc, er) {
        (Some(rc), _) => Some(Outcome::from_result_code(rc)),
        (None, Some(e)) => Some(Outcome::experimental(
            e.vendor_id,
            e.experimental_result_code,
        )),
        (None, None) => None,
    }
}

pub(crate) fn split_outcome(o: Outcome) -> (Option<u32>, Option<ExperimentalResult<'static>>) {
    match o {
        Outcome::Result(r) => (Some(r.code()), None),
        Outcome::Experimental { vendor_id, code } => (
            None,
            Some(ExperimentalResult {
                vendor_id,
                experimental_result_code: code.code(),
                other: Vec::new(),
            }),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(ResultCode::from_u32(5014), ResultCode::InvalidAvpLength);
        assert_eq!(ResultCode::Unknown(7777).code(), 7777);
        let o = Outcome::experimental(10415, 2001);
        assert_eq!(o.name(), Some("DIAMETER_FIRST_REGISTRATION"));
        assert!(o.is_success());
        assert_eq!(
            Outcome::from_result_code(2001).name(),
            Some("DIAMETER_SUCCESS")
        );
        assert!(Outcome::from_result_code(3008).is_protocol_error());
    }
}
