//! TPDU parameters of TS 23.040 §9.2.3: time stamps (TP-SCTS, TP-DT), validity periods (TP-VP),
//! protocol identifier (TP-PID), failure cause (TP-FCS), status (TP-ST), command type (TP-CT), and
//! the data coding scheme (TP-DCS, TS 23.038 §4).

use crate::error::{DecodeError, EncodeError, ErrorKind};
use core::fmt;
use std::time::Duration;

/// A service centre time stamp or discharge time (TS 23.040 §9.2.3.11): seven semi-octet pairs,
/// the time zone in signed quarter hours from GMT.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Timestamp {
    /// Year within the century, 0-99.
    pub year: u8,
    /// Month, 1-12.
    pub month: u8,
    /// Day, 1-31.
    pub day: u8,
    /// Hour, 0-23.
    pub hour: u8,
    /// Minute.
    pub minute: u8,
    /// Second.
    pub second: u8,
    /// Time zone in quarter hours, -79..=79 (`+04` is GMT+1).
    pub tz_quarter_hours: i8,
}

fn swapped(o: u8, field: &'static str, at: usize) -> Result<u8, DecodeError> {
    let (lo, hi) = (o & 0x0F, o >> 4);
    if lo > 9 || hi > 9 {
        return Err(DecodeError::new(ErrorKind::Timestamp { field }, at));
    }
    Ok(lo * 10 + hi)
}

impl Timestamp {
    /// Decodes the seven octets at `at` (offsets in errors count from `at`).
    pub(crate) fn decode(
        b: &[u8; 7],
        field: &'static str,
        at: usize,
    ) -> Result<Timestamp, DecodeError> {
        let mut v = [0u8; 6];
        for i in 0..6 {
            v[i] = swapped(b[i], field, at + i)?;
        }
        let tz = b[6];
        let tens = tz & 0x07;
        let units = tz >> 4;
        if units > 9 {
            return Err(DecodeError::new(ErrorKind::Timestamp { field }, at + 6));
        }
        let q = (tens * 10 + units) as i8;
        Ok(Timestamp {
            year: v[0],
            month: v[1],
            day: v[2],
            hour: v[3],
            minute: v[4],
            second: v[5],
            tz_quarter_hours: if tz & 0x08 != 0 { -q } else { q },
        })
    }

    /// The seven octets.
    pub fn encode(&self) -> Result<[u8; 7], EncodeError> {
        let sw = |v: u8, name| {
            if v > 99 {
                Err(EncodeError::Timestamp(name))
            } else {
                Ok(((v % 10) << 4) | (v / 10))
            }
        };
        let q = self.tz_quarter_hours.unsigned_abs();
        if q > 79 {
            return Err(EncodeError::Timestamp("time zone"));
        }
        let mut tz = ((q % 10) << 4) | (q / 10);
        if self.tz_quarter_hours < 0 {
            tz |= 0x08;
        }
        Ok([
            sw(self.year, "year")?,
            sw(self.month, "month")?,
            sw(self.day, "day")?,
            sw(self.hour, "hour")?,
            sw(self.minute, "minute")?,
            sw(self.second, "second")?,
            tz,
        ])
    }

    /// The four-digit year, taking 00-89 as 2000-2089 and 90-99 as 1990-1999.
    pub fn full_year(&self) -> u16 {
        if self.year >= 90 {
            1900 + u16::from(self.year)
        } else {
            2000 + u16::from(self.year)
        }
    }
}

impl fmt::Display for Timestamp {
    /// ISO 8601, e.g. `2024-03-15T14:30:45+01:00`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = i32::from(self.tz_quarter_hours) * 15;
        let sign = if m < 0 { '-' } else { '+' };
        let m = m.abs();
        write!(
            f,
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}{sign}{:02}:{:02}",
            self.full_year(),
            self.month,
            self.day,
            self.hour,
            self.minute,
            self.second,
            m / 60,
            m % 60
        )
    }
}

/// TP-VP (TS 23.040 §9.2.3.12) in one of the three formats TP-VPF selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ValidityPeriod {
    /// TP-VPF 10: one octet, see [`ValidityPeriod::relative_duration`].
    Relative(u8),
    /// TP-VPF 11: an absolute time.
    Absolute(Timestamp),
    /// TP-VPF 01: the seven octets of the enhanced format (§9.2.3.12.3), kept as received.
    Enhanced([u8; 7]),
}

impl ValidityPeriod {
    /// The TP-VPF bits (bits 4-3 of the first octet, shifted down).
    pub fn format_bits(&self) -> u8 {
        match self {
            ValidityPeriod::Relative(_) => 0b10,
            ValidityPeriod::Absolute(_) => 0b11,
            ValidityPeriod::Enhanced(_) => 0b01,
        }
    }

    /// The duration of a relative TP-VP value (§9.2.3.12.1): 0-143 in 5 minutes, 144-167 12 h +
    /// 30 minutes each, 168-196 in days, 197-255 in weeks.
    pub fn relative_duration(v: u8) -> Duration {
        let v = u64::from(v);
        let minutes = match v {
            0..=143 => (v + 1) * 5,
            144..=167 => 12 * 60 + (v - 143) * 30,
            168..=196 => (v - 166) * 24 * 60,
            _ => (v - 192) * 7 * 24 * 60,
        };
        Duration::from_secs(minutes * 60)
    }

    /// The duration, for the relative format and the enhanced formats that carry one.
    pub fn duration(&self) -> Option<Duration> {
        match self {
            ValidityPeriod::Relative(v) => Some(Self::relative_duration(*v)),
            ValidityPeriod::Absolute(_) => None,
            ValidityPeriod::Enhanced(e) => match e[0] & 0x07 {
                0b001 => Some(Self::relative_duration(e[1])),
                0b010 => Some(Duration::from_secs(u64::from(e[1]))),
                0b011 => {
                    let d = |o: u8| u64::from(o & 0x0F) * 10 + u64::from(o >> 4);
                    Some(Duration::from_secs(d(e[1]) * 3600 + d(e[2]) * 60 + d(e[3])))
                }
                _ => None,
            },
        }
    }
}

/// TP-PID (TS 23.040 §9.2.3.9), kept as its octet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ProtocolIdentifier(pub u8);

impl ProtocolIdentifier {
    /// 0x00: plain SME-to-SME short message.
    pub const DEFAULT: ProtocolIdentifier = ProtocolIdentifier(0);
    /// 0x40: short message type 0 (acknowledged, discarded).
    pub const SHORT_MESSAGE_TYPE_0: ProtocolIdentifier = ProtocolIdentifier(0x40);
    /// 0x7F: (U)SIM data download.
    pub const SIM_DATA_DOWNLOAD: ProtocolIdentifier = ProtocolIdentifier(0x7F);

    /// Bits 7-6 = 00 and bit 5 = 1: telematic interworking; the device type is bits 4-0.
    pub fn telematic_device(self) -> Option<u8> {
        (self.0 & 0xE0 == 0x20).then_some(self.0 & 0x1F)
    }

    /// Bits 7-6 = 01, 0x41-0x47: replace short message type 1-7.
    pub fn replace_type(self) -> Option<u8> {
        (0x41..=0x47).contains(&self.0).then_some(self.0 - 0x40)
    }

    /// The meaning, in the spec's words.
    pub fn name(self) -> &'static str {
        match self.0 {
            0x00..=0x1F => "SME-to-SME protocol",
            0x20..=0x3F => "telematic interworking",
            0x40 => "short message type 0",
            0x41..=0x47 => "replace short message",
            0x5E => "device triggering short message",
            0x5F => "return call message",
            0x7C => "ANSI-136 R-DATA",
            0x7D => "ME data download",
            0x7E => "ME de-personalization short message",
            0x7F => "(U)SIM data download",
            0xC0..=0xFF => "SC specific use",
            _ => "reserved",
        }
    }
}

/// The alphabet of the user data (TS 23.038 §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Alphabet {
    /// GSM 7 bit default alphabet (TP-UDL counts septets). Reserved codings read as this.
    Gsm7,
    /// 8-bit data.
    EightBit,
    /// UCS2 (read as UTF-16).
    Ucs2,
}

/// Message class (TS 23.038 §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageClass {
    /// Class 0: flash.
    Class0,
    /// Class 1: ME specific.
    Class1,
    /// Class 2: (U)SIM specific.
    Class2,
    /// Class 3: TE specific.
    Class3,
}

impl MessageClass {
    fn from_bits(b: u8) -> MessageClass {
        match b & 3 {
            0 => MessageClass::Class0,
            1 => MessageClass::Class1,
            2 => MessageClass::Class2,
            _ => MessageClass::Class3,
        }
    }
}

/// Message waiting indication type (TS 23.038 §4, coding groups 1100-1110).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IndicationType {
    /// 00
    Voicemail,
    /// 01
    Fax,
    /// 10
    Email,
    /// 11
    Other,
}

/// What the coding group of a TP-DCS says (TS 23.038 §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CodingGroup {
    /// 00xx / 01xx: general data coding (01xx: marked for automatic deletion).
    General {
        /// Bit 5: compressed (TS 23.042).
        compressed: bool,
        /// Bit 4 with bits 1-0.
        class: Option<MessageClass>,
        /// Bits 3-2.
        alphabet: Alphabet,
        /// Group 01xx.
        automatic_deletion: bool,
    },
    /// 1100 (discard), 1101 (store, GSM 7 bit), 1110 (store, UCS2): message waiting indication.
    MessageWaiting {
        /// Store the message (1101, 1110) or discard it (1100).
        store: bool,
        /// Bit 3: set (true) or clear the indication.
        active: bool,
        /// Bits 1-0.
        kind: IndicationType,
        /// GSM 7 bit or UCS2.
        alphabet: Alphabet,
    },
    /// 1111: data coding / message class.
    DataCodingClass {
        /// Bit 2: GSM 7 bit or 8-bit data.
        alphabet: Alphabet,
        /// Bits 1-0.
        class: MessageClass,
    },
    /// 1000-1011: reserved coding groups (read as GSM 7 bit).
    Reserved(u8),
}

/// TP-DCS (TS 23.040 §9.2.3.10, TS 23.038 §4), kept as its octet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct DataCodingScheme(pub u8);

impl DataCodingScheme {
    /// 0x00: GSM 7 bit, no class.
    pub const GSM7: DataCodingScheme = DataCodingScheme(0x00);
    /// 0x04: 8-bit data, no class.
    pub const EIGHT_BIT: DataCodingScheme = DataCodingScheme(0x04);
    /// 0x08: UCS2, no class.
    pub const UCS2: DataCodingScheme = DataCodingScheme(0x08);

    /// General data coding with the given alphabet, class and compression flag.
    pub fn general(
        alphabet: Alphabet,
        class: Option<MessageClass>,
        compressed: bool,
    ) -> DataCodingScheme {
        let a = match alphabet {
            Alphabet::Gsm7 => 0,
            Alphabet::EightBit => 1,
            Alphabet::Ucs2 => 2,
        };
        let c = class.map_or(0, |c| 0x10 | c as u8);
        DataCodingScheme(u8::from(compressed) << 5 | c | a << 2)
    }

    /// The coding group and what it says.
    pub fn group(self) -> CodingGroup {
        let b = self.0;
        let alpha = |bits: u8| match bits & 3 {
            1 => Alphabet::EightBit,
            2 => Alphabet::Ucs2,
            _ => Alphabet::Gsm7,
        };
        match b >> 4 {
            0x0..=0x7 => CodingGroup::General {
                compressed: b & 0x20 != 0,
                class: (b & 0x10 != 0).then(|| MessageClass::from_bits(b)),
                alphabet: alpha(b >> 2),
                automatic_deletion: b & 0x40 != 0,
            },
            0xC..=0xE => CodingGroup::MessageWaiting {
                store: b >> 4 != 0xC,
                active: b & 0x08 != 0,
                kind: match b & 3 {
                    0 => IndicationType::Voicemail,
                    1 => IndicationType::Fax,
                    2 => IndicationType::Email,
                    _ => IndicationType::Other,
                },
                alphabet: if b >> 4 == 0xE {
                    Alphabet::Ucs2
                } else {
                    Alphabet::Gsm7
                },
            },
            0xF => CodingGroup::DataCodingClass {
                alphabet: if b & 0x04 != 0 {
                    Alphabet::EightBit
                } else {
                    Alphabet::Gsm7
                },
                class: MessageClass::from_bits(b),
            },
            g => CodingGroup::Reserved(g),
        }
    }

    /// The alphabet (reserved codings read as GSM 7 bit, TS 23.038 §4).
    pub fn alphabet(self) -> Alphabet {
        match self.group() {
            CodingGroup::General { alphabet, .. }
            | CodingGroup::MessageWaiting { alphabet, .. }
            | CodingGroup::DataCodingClass { alphabet, .. } => alphabet,
            CodingGroup::Reserved(_) => Alphabet::Gsm7,
        }
    }

    /// Whether the text is compressed (general data coding bit 5).
    pub fn compressed(self) -> bool {
        matches!(
            self.group(),
            CodingGroup::General {
                compressed: true,
                ..
            }
        )
    }

    /// The message class, when one is given.
    pub fn class(self) -> Option<MessageClass> {
        match self.group() {
            CodingGroup::General { class, .. } => class,
            CodingGroup::DataCodingClass { class, .. } => Some(class),
            _ => None,
        }
    }

    /// Whether TP-UDL counts septets: GSM 7 bit and not compressed (TS 23.040 §9.2.3.16).
    pub fn udl_in_septets(self) -> bool {
        self.alphabet() == Alphabet::Gsm7 && !self.compressed()
    }
}

/// TP-FCS (TS 23.040 §9.2.3.22), kept as its octet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FailureCause(pub u8);

impl FailureCause {
    /// 0xA1: command unsupported (an SMS-COMMAND type the SC does not know).
    pub const COMMAND_UNSUPPORTED: FailureCause = FailureCause(0xA1);
    /// 0xC5: SM rejected, duplicate SM (an SMS-SUBMIT with TP-RD set whose TP-MR and TP-DA
    /// match a message from the same originator the SC still holds, §9.2.3.25).
    pub const DUPLICATE_SM: FailureCause = FailureCause(0xC5);
    /// 0xC3: invalid SME address.
    pub const INVALID_SME_ADDRESS: FailureCause = FailureCause(0xC3);
    /// 0xD0: (U)SIM SMS storage full.
    pub const SIM_STORAGE_FULL: FailureCause = FailureCause(0xD0);
    /// 0xD3: memory capacity exceeded.
    pub const MEMORY_CAPACITY_EXCEEDED: FailureCause = FailureCause(0xD3);
    /// 0xFF: unspecified error cause.
    pub const UNSPECIFIED: FailureCause = FailureCause(0xFF);

    /// The meaning, as TS 23.040 §9.2.3.22 names it.
    pub fn name(self) -> &'static str {
        match self.0 {
            0x80 => "Telematic interworking not supported",
            0x81 => "Short message Type 0 not supported",
            0x82 => "Cannot replace short message",
            0x8F => "Unspecified TP-PID error",
            0x90 => "Data coding scheme (alphabet) not supported",
            0x91 => "Message class not supported",
            0x9F => "Unspecified TP-DCS error",
            0xA0 => "Command cannot be actioned",
            0xA1 => "Command unsupported",
            0xAF => "Unspecified TP-Command error",
            0xB0 => "TPDU not supported",
            0xC0 => "SC busy",
            0xC1 => "No SC subscription",
            0xC2 => "SC system failure",
            0xC3 => "Invalid SME address",
            0xC4 => "Destination SME barred",
            0xC5 => "SM Rejected-Duplicate SM",
            0xC6 => "TP-VPF not supported",
            0xC7 => "TP-VP not supported",
            0xD0 => "(U)SIM SMS storage full",
            0xD1 => "No SMS storage capability in (U)SIM",
            0xD2 => "Error in MS",
            0xD3 => "Memory Capacity Exceeded",
            0xD4 => "(U)SIM Application Toolkit Busy",
            0xD5 => "(U)SIM data download error",
            0xE0..=0xFE => "Application specific error",
            0xFF => "Unspecified error cause",
            _ => "Reserved",
        }
    }
}

/// TP-ST (TS 23.040 §9.2.3.15), kept as its octet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Status(pub u8);

impl Status {
    /// 0x00: short message received by the SME.
    pub const DELIVERED: Status = Status(0x00);
    /// 0x01: forwarded by the SC to the SME but the SC cannot confirm delivery.
    pub const FORWARDED_UNCONFIRMED: Status = Status(0x01);
    /// 0x02: replaced by the SC.
    pub const REPLACED: Status = Status(0x02);
    /// 0x40: remote procedure error (permanent).
    pub const REMOTE_PROCEDURE_ERROR: Status = Status(0x40);
    /// 0x41: incompatible destination (permanent).
    pub const INCOMPATIBLE_DESTINATION: Status = Status(0x41);
    /// 0x42: connection rejected by SME (permanent).
    pub const CONNECTION_REJECTED: Status = Status(0x42);
    /// 0x43: not obtainable (permanent).
    pub const NOT_OBTAINABLE: Status = Status(0x43);
    /// 0x46: SM validity period expired.
    pub const VALIDITY_PERIOD_EXPIRED: Status = Status(0x46);
    /// 0x62: no response from SME (temporary error, SC not trying any more).
    pub const NO_RESPONSE_FROM_SME: Status = Status(0x62);

    /// Whether the SC gave up for good: a permanent error, or a temporary one it no longer
    /// tries (TS 23.040 §9.2.3.15, bits 6-5 = 10 or 11).
    pub fn is_final_failure(self) -> bool {
        (self.0 >> 5) & 3 >= 2
    }

    /// Bits 6-5: 00 completed, 01 temporary error (SC still trying), 10 permanent error, 11
    /// temporary error (SC not trying any more).
    pub fn category(self) -> &'static str {
        match (self.0 >> 5) & 3 {
            0 => "transaction completed",
            1 => "temporary error, SC still trying",
            2 => "permanent error, SC not trying",
            _ => "temporary error, SC not trying",
        }
    }
}

/// TP-CT (TS 23.040 §9.2.3.19), kept as its octet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CommandType(pub u8);

impl CommandType {
    /// 0x00: enquiry relating to a previously submitted short message.
    pub const ENQUIRY: CommandType = CommandType(0);
    /// 0x01: cancel status report request.
    pub const CANCEL_STATUS_REPORT_REQUEST: CommandType = CommandType(1);
    /// 0x02: delete previously submitted short message.
    pub const DELETE: CommandType = CommandType(2);
    /// 0x03: enable status report request.
    pub const ENABLE_STATUS_REPORT_REQUEST: CommandType = CommandType(3);

    /// The meaning.
    pub fn name(self) -> &'static str {
        match self.0 {
            0 => "enquiry_relating_to_previously_submitted_sm",
            1 => "cancel_status_report_request",
            2 => "delete_previously_submitted_sm",
            3 => "enable_status_report_request",
            0xE0..=0xFF => "sc_specific",
            _ => "reserved",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_categories() {
        assert!(!Status::DELIVERED.is_final_failure());
        assert!(!Status(0x20).is_final_failure(), "SC still trying");
        for s in [
            Status::REMOTE_PROCEDURE_ERROR,
            Status::NOT_OBTAINABLE,
            Status::VALIDITY_PERIOD_EXPIRED,
            Status::NO_RESPONSE_FROM_SME,
        ] {
            assert!(s.is_final_failure(), "{s:?}");
        }
        assert_eq!(
            Status::NOT_OBTAINABLE.category(),
            "permanent error, SC not trying"
        );
    }

    #[test]
    fn relative_validity_examples() {
        // TS 23.040 §9.2.3.12.1
        assert_eq!(
            ValidityPeriod::relative_duration(0),
            Duration::from_secs(300)
        );
        assert_eq!(
            ValidityPeriod::relative_duration(143),
            Duration::from_secs(12 * 3600)
        );
        assert_eq!(
            ValidityPeriod::relative_duration(167),
            Duration::from_secs(24 * 3600)
        );
        assert_eq!(
            ValidityPeriod::relative_duration(170),
            Duration::from_secs(4 * 86400)
        );
        assert_eq!(
            ValidityPeriod::relative_duration(196),
            Duration::from_secs(30 * 86400)
        );
        assert_eq!(
            ValidityPeriod::relative_duration(255),
            Duration::from_secs(63 * 7 * 86400)
        );
    }

    #[test]
    fn timestamp_negative_zone() {
        let b = [0x32, 0x21, 0x13, 0x32, 0x95, 0x95, 0x0a];
        let t = Timestamp::decode(&b, "TP-VP", 0).unwrap();
        assert_eq!(t.tz_quarter_hours, -20);
        assert_eq!(t.to_string(), "2023-12-31T23:59:59-05:00");
        assert_eq!(t.encode().unwrap(), b);
    }

    #[test]
    fn dcs_groups() {
        assert_eq!(DataCodingScheme(0x08).alphabet(), Alphabet::Ucs2);
        assert_eq!(DataCodingScheme(0xF6).class(), Some(MessageClass::Class2));
        assert_eq!(DataCodingScheme(0xF6).alphabet(), Alphabet::EightBit);
        assert!(DataCodingScheme(0x20).compressed());
        assert!(!DataCodingScheme(0x20).udl_in_septets());
        assert_eq!(
            DataCodingScheme(0xC8).group(),
            CodingGroup::MessageWaiting {
                store: false,
                active: true,
                kind: IndicationType::Voicemail,
                alphabet: Alphabet::Gsm7
            }
        );
        assert_eq!(DataCodingScheme(0xE0).alphabet(), Alphabet::Ucs2);
        assert_eq!(DataCodingScheme(0x0C).alphabet(), Alphabet::Gsm7);
        assert_eq!(
            DataCodingScheme::general(Alphabet::Ucs2, Some(MessageClass::Class0), false),
            DataCodingScheme(0x18)
        );
    }
}
