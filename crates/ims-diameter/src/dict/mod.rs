//! The static dictionary: AVPs (code, vendor, name, data type, M-bit rule, enumerated values),
//! commands and applications of Diameter base (RFC 6733), Cx/Dx (TS 29.229 §6.3), Rx (TS 29.214
//! §5.3) and the TS 29.212 / TS 29.061 / RFC 4006 AVPs that Rx reuses, and the S6c/SGd AVPs of
//! TS 29.338 (§5.3.3, §6.3.3) with the TS 29.272 / 29.336 / 29.173 AVPs they reuse.
//!
//! Every AVP is a constant (`dict::ORIGIN_HOST`, `dict::SIP_AUTH_DATA_ITEM`, ...) and is found by
//! code with [`lookup`] or by name with [`by_name`].
//!
//! ```
//! use ims_diameter::dict::{self, AvpType};
//! let d = dict::lookup(628, 10415).unwrap();
//! assert_eq!(d.name, "Supported-Features");
//! assert_eq!(d.ty, AvpType::Grouped);
//! assert_eq!(dict::MEDIA_TYPE.enum_name(0), Some("AUDIO"));
//! ```

mod avps;
pub use avps::*;

use crate::avp::AvpFlags;
use crate::error::AvpId;

/// The Vendor-Id of 3GPP (IANA enterprise number 10415).
pub const VENDOR_3GPP: u32 = 10415;
/// The Vendor-Id of ETSI (IANA enterprise number 13019).
pub const VENDOR_ETSI: u32 = 13019;

/// The data type of an AVP (RFC 6733 §4.2 basic and §4.3 derived formats).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AvpType {
    /// Arbitrary octets.
    OctetString,
    /// 32-bit signed, network order.
    Integer32,
    /// 64-bit signed, network order.
    Integer64,
    /// 32-bit unsigned, network order.
    Unsigned32,
    /// 64-bit unsigned, network order.
    Unsigned64,
    /// IEEE 754 single precision.
    Float32,
    /// IEEE 754 double precision.
    Float64,
    /// A sequence of AVPs.
    Grouped,
    /// AddressType (2 octets, IANA address family) followed by the address.
    Address,
    /// NTP seconds (RFC 5905), 4 octets.
    Time,
    /// UTF-8 text.
    UTF8String,
    /// An FQDN or realm (ASCII).
    DiameterIdentity,
    /// `aaa://` or `aaas://` URI (RFC 6733 §4.3.1).
    DiameterURI,
    /// Integer32 with named values.
    Enumerated,
    /// IPFilterRule text (RFC 6733 §4.3.1).
    IPFilterRule,
}

impl AvpType {
    /// The data length of a fixed-size type, and the minimal data length of the others: the size
    /// of the zero-filled payload of the example AVP in Failed-AVP (RFC 6733 §7.5). Text and octet
    /// types count one octet (an empty value is not a value: Wireshark flags it), Address an IPv4
    /// address with its family, Grouped no member.
    pub const fn min_len(self) -> usize {
        match self {
            AvpType::Integer32
            | AvpType::Unsigned32
            | AvpType::Float32
            | AvpType::Time
            | AvpType::Enumerated => 4,
            AvpType::Integer64 | AvpType::Unsigned64 | AvpType::Float64 => 8,
            AvpType::Address => 6,
            AvpType::Grouped => 0,
            _ => 1,
        }
    }

    /// The exact data length for fixed-size types, `None` for variable ones.
    pub const fn fixed_len(self) -> Option<usize> {
        match self {
            AvpType::Integer32
            | AvpType::Unsigned32
            | AvpType::Float32
            | AvpType::Time
            | AvpType::Enumerated => Some(4),
            AvpType::Integer64 | AvpType::Unsigned64 | AvpType::Float64 => Some(8),
            _ => None,
        }
    }
}

/// An AVP flag rule of a dictionary table (RFC 6733 §4.5 "AVP Flag rules").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FlagRule {
    /// The bit must be set.
    Must,
    /// The bit may be set.
    May,
    /// The bit must not be set.
    MustNot,
}

/// One AVP of the dictionary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AvpDef {
    /// AVP Code.
    pub code: u32,
    /// Vendor-Id, 0 for IETF AVPs (then the V bit is clear).
    pub vendor: u32,
    /// The name as the defining specification spells it.
    pub name: &'static str,
    /// Its data type.
    pub ty: AvpType,
    /// The M-bit rule; the encoder sets M for [`FlagRule::Must`] only.
    pub m: FlagRule,
    /// Named values of an Enumerated AVP.
    pub enums: &'static [(i32, &'static str)],
}

impl AvpDef {
    /// The identity `(code, vendor)`.
    pub const fn id(&self) -> AvpId {
        AvpId::new(self.code, self.vendor)
    }

    /// The flags the encoder writes: V when vendor-specific, M when the rule is `Must`.
    pub const fn flags(&self) -> AvpFlags {
        let mut f = 0;
        if self.vendor != 0 {
            f |= AvpFlags::VENDOR;
        }
        if matches!(self.m, FlagRule::Must) {
            f |= AvpFlags::MANDATORY;
        }
        AvpFlags(f)
    }

    /// The name of an enumerated value.
    pub fn enum_name(&self, value: i32) -> Option<&'static str> {
        self.enums
            .iter()
            .find(|(v, _)| *v == value)
            .map(|(_, n)| *n)
    }
}

/// The AVP with this code and Vendor-Id (0 for IETF), by binary search of [`ALL`].
pub fn lookup(code: u32, vendor: u32) -> Option<&'static AvpDef> {
    ALL.binary_search_by(|d| (d.vendor, d.code).cmp(&(vendor, code)))
        .ok()
        .map(|i| ALL[i])
}

/// The AVP with this name (exact, case-sensitive), by linear search.
pub fn by_name(name: &str) -> Option<&'static AvpDef> {
    ALL.iter().copied().find(|d| d.name == name)
}

/// Application-Ids (RFC 6733 §11.3, TS 29.229 §6.5, TS 29.214 §5.5, TS 29.338 §5.4 / §6.4).
pub mod app {
    /// Diameter common messages (CER/CEA, DWR/DWA, DPR/DPA and answer-message).
    pub const COMMON: u32 = 0;
    /// Diameter base accounting.
    pub const BASE_ACCOUNTING: u32 = 3;
    /// The relay Application-Id (0xffffffff).
    pub const RELAY: u32 = 0xffff_ffff;
    /// 3GPP Cx and Dx (TS 29.229 §6.5, vendor 10415).
    pub const CX: u32 = 16_777_216;
    /// 3GPP Rx (TS 29.214 §5.5, vendor 10415).
    pub const RX: u32 = 16_777_236;
    /// 3GPP S6c (TS 29.338 §5.4, vendor 10415): SMS-GMSC / IP-SM-GW to HSS.
    pub const S6C: u32 = 16_777_312;
    /// 3GPP SGd / Gdd (TS 29.338 §6.4, vendor 10415): MME, SGSN or IP-SM-GW to SMS-IWMSC /
    /// SMS-GMSC.
    pub const SGD: u32 = 16_777_313;
}

/// Command codes (RFC 6733 §3.1, TS 29.229 §6.1, TS 29.214 §5.6, TS 29.338 §6.3.2).
pub mod command {
    /// Capabilities-Exchange (CER/CEA).
    pub const CAPABILITIES_EXCHANGE: u32 = 257;
    /// Re-Auth (RAR/RAA).
    pub const RE_AUTH: u32 = 258;
    /// AA (AAR/AAA, RFC 7155).
    pub const AA: u32 = 265;
    /// Abort-Session (ASR/ASA).
    pub const ABORT_SESSION: u32 = 274;
    /// Session-Termination (STR/STA).
    pub const SESSION_TERMINATION: u32 = 275;
    /// Device-Watchdog (DWR/DWA).
    pub const DEVICE_WATCHDOG: u32 = 280;
    /// Disconnect-Peer (DPR/DPA).
    pub const DISCONNECT_PEER: u32 = 282;
    /// User-Authorization (UAR/UAA).
    pub const USER_AUTHORIZATION: u32 = 300;
    /// Server-Assignment (SAR/SAA).
    pub const SERVER_ASSIGNMENT: u32 = 301;
    /// Location-Info (LIR/LIA).
    pub const LOCATION_INFO: u32 = 302;
    /// Multimedia-Auth (MAR/MAA).
    pub const MULTIMEDIA_AUTH: u32 = 303;
    /// Registration-Termination (RTR/RTA).
    pub const REGISTRATION_TERMINATION: u32 = 304;
    /// Push-Profile (PPR/PPA).
    pub const PUSH_PROFILE: u32 = 305;
    /// MO-Forward-Short-Message (OFR/OFA, SGd).
    pub const MO_FORWARD_SHORT_MESSAGE: u32 = 8_388_645;
    /// MT-Forward-Short-Message (TFR/TFA, SGd).
    pub const MT_FORWARD_SHORT_MESSAGE: u32 = 8_388_646;
    /// Send-Routing-Info-for-SM (SRR/SRA, S6c).
    pub const SEND_ROUTING_INFO_FOR_SM: u32 = 8_388_647;
    /// Alert-Service-Centre (ALR/ALA, S6c; on SGd/Gdd too, with the S6c Application-Id).
    pub const ALERT_SERVICE_CENTRE: u32 = 8_388_648;
    /// Report-SM-Delivery-Status (RDR/RDA, S6c).
    pub const REPORT_SM_DELIVERY_STATUS: u32 = 8_388_649;
}

/// One command of the dictionary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CommandDef {
    /// Command Code.
    pub code: u32,
    /// The Application-Id it is defined in (0 for the common messages).
    pub application_id: u32,
    /// Its name without "-Request"/"-Answer" (`"User-Authorization"`).
    pub name: &'static str,
    /// Abbreviation of the request (`"UAR"`).
    pub request: &'static str,
    /// Abbreviation of the answer (`"UAA"`).
    pub answer: &'static str,
    /// True when the request has the P bit (RFC 6733 §3 "PXY").
    pub proxiable: bool,
}

/// Every command of the dictionary.
pub static COMMANDS: &[CommandDef] = &[
    CommandDef {
        code: 257,
        application_id: 0,
        name: "Capabilities-Exchange",
        request: "CER",
        answer: "CEA",
        proxiable: false,
    },
    CommandDef {
        code: 280,
        application_id: 0,
        name: "Device-Watchdog",
        request: "DWR",
        answer: "DWA",
        proxiable: false,
    },
    CommandDef {
        code: 282,
        application_id: 0,
        name: "Disconnect-Peer",
        request: "DPR",
        answer: "DPA",
        proxiable: false,
    },
    CommandDef {
        code: 300,
        application_id: app::CX,
        name: "User-Authorization",
        request: "UAR",
        answer: "UAA",
        proxiable: true,
    },
    CommandDef {
        code: 301,
        application_id: app::CX,
        name: "Server-Assignment",
        request: "SAR",
        answer: "SAA",
        proxiable: true,
    },
    CommandDef {
        code: 302,
        application_id: app::CX,
        name: "Location-Info",
        request: "LIR",
        answer: "LIA",
        proxiable: true,
    },
    CommandDef {
        code: 303,
        application_id: app::CX,
        name: "Multimedia-Auth",
        request: "MAR",
        answer: "MAA",
        proxiable: true,
    },
    CommandDef {
        code: 304,
        application_id: app::CX,
        name: "Registration-Termination",
        request: "RTR",
        answer: "RTA",
        proxiable: true,
    },
    CommandDef {
        code: 305,
        application_id: app::CX,
        name: "Push-Profile",
        request: "PPR",
        answer: "PPA",
        proxiable: true,
    },
    CommandDef {
        code: 265,
        application_id: app::RX,
        name: "AA",
        request: "AAR",
        answer: "AAA",
        proxiable: true,
    },
    CommandDef {
        code: 258,
        application_id: app::RX,
        name: "Re-Auth",
        request: "RAR",
        answer: "RAA",
        proxiable: true,
    },
    CommandDef {
        code: 275,
        application_id: app::RX,
        name: "Session-Termination",
        request: "STR",
        answer: "STA",
        proxiable: true,
    },
    CommandDef {
        code: 274,
        application_id: app::RX,
        name: "Abort-Session",
        request: "ASR",
        answer: "ASA",
        proxiable: true,
    },
    CommandDef {
        code: command::MO_FORWARD_SHORT_MESSAGE,
        application_id: app::SGD,
        name: "MO-Forward-Short-Message",
        request: "OFR",
        answer: "OFA",
        proxiable: true,
    },
    CommandDef {
        code: command::MT_FORWARD_SHORT_MESSAGE,
        application_id: app::SGD,
        name: "MT-Forward-Short-Message",
        request: "TFR",
        answer: "TFA",
        proxiable: true,
    },
    CommandDef {
        code: command::SEND_ROUTING_INFO_FOR_SM,
        application_id: app::S6C,
        name: "Send-Routing-Info-for-SM",
        request: "SRR",
        answer: "SRA",
        proxiable: true,
    },
    CommandDef {
        code: command::ALERT_SERVICE_CENTRE,
        application_id: app::S6C,
        name: "Alert-Service-Centre",
        request: "ALR",
        answer: "ALA",
        proxiable: true,
    },
    CommandDef {
        code: command::REPORT_SM_DELIVERY_STATUS,
        application_id: app::S6C,
        name: "Report-SM-Delivery-Status",
        request: "RDR",
        answer: "RDA",
        proxiable: true,
    },
];

/// The command with this code in this application (the common messages match any application).
pub fn command(code: u32, application_id: u32) -> Option<&'static CommandDef> {
    COMMANDS
        .iter()
        .find(|c| c.code == code && (c.application_id == application_id || c.application_id == 0))
}

/// The name of an application (`"Cx/Dx"`, `"Rx"`, ...).
pub fn application_name(id: u32) -> Option<&'static str> {
    Some(match id {
        app::COMMON => "Diameter Common Messages",
        app::BASE_ACCOUNTING => "Diameter Base Accounting",
        app::RELAY => "Relay",
        app::CX => "3GPP Cx/Dx",
        app::RX => "3GPP Rx",
        app::S6C => "3GPP S6c",
        app::SGD => "3GPP SGd/Gdd",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_sorted_and_unique() {
        for w in ALL.windows(2) {
            assert!(
                (w[0].vendor, w[0].code) < (w[1].vendor, w[1].code),
                "{} / {}",
                w[0].name,
                w[1].name
            );
        }
        assert!(ALL.len() > 350);
    }

    #[test]
    fn spec_codes() {
        // RFC 6733 §4.5
        assert_eq!(lookup(264, 0).unwrap().name, "Origin-Host");
        assert_eq!(lookup(279, 0).unwrap().ty, AvpType::Grouped);
        // TS 29.229 table 6.3.1
        for (code, name) in [
            (612, "SIP-Auth-Data-Item"),
            (603, "Server-Capabilities"),
            (618, "Charging-Information"),
            (615, "Deregistration-Reason"),
            (628, "Supported-Features"),
            (634, "Wildcarded-Public-Identity"),
            (632, "Associated-Identities"),
            (606, "User-Data"),
        ] {
            assert_eq!(lookup(code, VENDOR_3GPP).unwrap().name, name);
        }
        // TS 29.214 table 5.3.1
        for (code, name) in [
            (517, "Media-Component-Description"),
            (519, "Media-Sub-Component"),
            (507, "Flow-Description"),
            (524, "Codec-Data"),
            (513, "Specific-Action"),
            (526, "Acceptable-Service-Info"),
        ] {
            assert_eq!(lookup(code, VENDOR_3GPP).unwrap().name, name);
        }
        assert_eq!(lookup(443, 0).unwrap().name, "Subscription-Id");
        assert_eq!(CODEC_DATA.ty, AvpType::OctetString);
        assert_eq!(FLOW_DESCRIPTION.ty, AvpType::IPFilterRule);
        assert_eq!(SUPPORTED_FEATURES.flags(), AvpFlags(AvpFlags::VENDOR));
        assert_eq!(ORIGIN_HOST.flags(), AvpFlags(AvpFlags::MANDATORY));
        assert_eq!(by_name("RAT-Type").unwrap().code, 1032);
        assert_eq!(command(300, app::CX).unwrap().request, "UAR");
        assert_eq!(command(280, app::RX).unwrap().request, "DWR");
        assert!(command(300, app::RX).is_none());
        // TS 29.338 tables 5.3.3.1/1 and 6.3.3.1/1
        for (code, name, ty) in [
            (3300, "SC-Address", AvpType::OctetString),
            (3301, "SM-RP-UI", AvpType::OctetString),
            (3303, "SM-Delivery-Failure-Cause", AvpType::Grouped),
            (3309, "SM-RP-SMEA", AvpType::OctetString),
            (3316, "SM-Delivery-Outcome", AvpType::Grouped),
            (3320, "IP-SM-GW-SM-Delivery-Outcome", AvpType::Grouped),
            (3324, "SMSMI-Correlation-ID", AvpType::Grouped),
            (3328, "OFR-Flags", AvpType::Unsigned32),
            (3332, "SMS-GMSC-Address", AvpType::OctetString),
            (1645, "MME-Number-for-MT-SMS", AvpType::OctetString),
            (3102, "User-Identifier", AvpType::Grouped),
            (701, "MSISDN", AvpType::OctetString),
        ] {
            let d = lookup(code, VENDOR_3GPP).unwrap();
            assert_eq!((d.name, d.ty), (name, ty));
        }
        assert_eq!(
            SM_RP_UI.flags(),
            AvpFlags(AvpFlags::VENDOR | AvpFlags::MANDATORY)
        );
        assert_eq!(OFR_FLAGS.flags(), AvpFlags(AvpFlags::VENDOR));
        assert_eq!(SM_DELIVERY_CAUSE.enum_name(2), Some("SUCCESSFUL_TRANSFER"));
        assert_eq!(
            SM_ENUMERATED_DELIVERY_FAILURE_CAUSE.enum_name(3),
            Some("UNKNOWN_SERVICE_CENTRE")
        );
        assert_eq!(command(8_388_646, app::SGD).unwrap().request, "TFR");
        // TS 29.338 table 5.3.2.1/1 (S6c): 8388647-8388649
        assert_eq!(command(8_388_647, app::S6C).unwrap().request, "SRR");
        assert_eq!(command(8_388_648, app::S6C).unwrap().answer, "ALA");
        assert_eq!(command(8_388_649, app::S6C).unwrap().request, "RDR");
        assert!(command(8_388_648, app::SGD).is_none());
        // TS 29.173 table 6.4.1/1, TS 29.336 table 6.4.1/1, TS 29.338 Rel-16 SMSF AVPs
        for (code, name, ty, m) in [
            (2401, "Serving-Node", AvpType::Grouped, true),
            (2406, "Additional-Serving-Node", AvpType::Grouped, true),
            (2402, "MME-Name", AvpType::DiameterIdentity, true),
            (2408, "MME-Realm", AvpType::DiameterIdentity, false),
            (2409, "SGSN-Name", AvpType::DiameterIdentity, false),
            (2410, "SGSN-Realm", AvpType::DiameterIdentity, false),
            (2403, "MSC-Number", AvpType::OctetString, true),
            (3100, "IP-SM-GW-Number", AvpType::OctetString, true),
            (3101, "IP-SM-GW-Name", AvpType::DiameterIdentity, true),
            (3112, "IP-SM-GW-Realm", AvpType::DiameterIdentity, true),
            (3329, "Maximum-UE-Availability-Time", AvpType::Time, false),
            (3333, "SMS-GMSC-Alert-Event", AvpType::Unsigned32, false),
            (3344, "SMSF-3GPP-Address", AvpType::Grouped, false),
            // Release 17 (TS 29.338 §5.3.3.37-39)
            (
                3346,
                "SMSF-3GPP-SBI-Support-Indicator",
                AvpType::Enumerated,
                false,
            ),
            (
                3347,
                "SMSF-Non-3GPP-SBI-Support-Indicator",
                AvpType::Enumerated,
                false,
            ),
            (
                3348,
                "IP-SM-GW-SBI-Support-Indicator",
                AvpType::Enumerated,
                false,
            ),
            (
                3337,
                "SMSF-Non-3GPP-SM-Delivery-Outcome",
                AvpType::Grouped,
                false,
            ),
        ] {
            let d = lookup(code, VENDOR_3GPP).unwrap();
            assert_eq!((d.name, d.ty), (name, ty));
            assert_eq!(d.flags().0 & AvpFlags::MANDATORY != 0, m, "{name}");
        }
    }
}
