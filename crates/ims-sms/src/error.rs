//! The crate's errors: what was wrong, where (octet offset from the start of the decoded buffer),
//! and which RP cause (TS 24.011 §8.2.5.4, error handling of §9.3) the receiver should answer with.

use crate::rp::RpCause;
use core::fmt;

/// What a decoder found wrong. The `Display` text starts with a stable snake_case code
/// ([`ErrorKind::code`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The RP message is shorter than its message type and message reference (TS 24.011 §9.3:
    /// ignored, there is no RP-MR to answer).
    RpMessageTooShort {
        /// Octets received.
        len: usize,
    },
    /// The RP message type indicator is reserved (value 7, or 6 from the network).
    UnknownRpMessageType {
        /// The RP-MTI.
        mti: u8,
    },
    /// The RP message type belongs to the other direction.
    WrongDirection {
        /// The RP-MTI.
        mti: u8,
    },
    /// The RP message is longer than [`crate::Limits::max_message_len`].
    RpMessageTooLong {
        /// Octets received.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A mandatory RP information element is missing or cut short.
    RpTruncated {
        /// The element, e.g. `RP-Destination-Address`.
        element: &'static str,
    },
    /// An RP address length is out of range (TS 24.011 §8.2.5.1/8.2.5.2: at most 11 octets).
    RpAddressLength {
        /// The length octet.
        length: u8,
    },
    /// The RP-User-Data length runs past the end of the message.
    RpUserDataOverrun {
        /// The length octet.
        length: u8,
        /// Offset of the length octet.
        at: usize,
        /// Octets available after it.
        available: usize,
    },
    /// The RP-Cause element has length zero.
    RpCauseLength,
    /// An information element the message type does not define (TS 24.011 §9.3.5).
    UnexpectedInformationElement {
        /// The IEI.
        iei: u8,
    },
    /// An address digit is not a BCD digit (0-9, *, #, a, b, c) or a filler sits inside.
    AddressDigit {
        /// The nibble.
        nibble: u8,
    },
    /// The TPDU ends before a mandatory field.
    TpduTruncated {
        /// The TPDU name.
        tpdu: &'static str,
        /// The field, e.g. `TP-PID`.
        field: &'static str,
        /// TPDU offset where the field should start.
        at: usize,
        /// TPDU length.
        len: usize,
    },
    /// TP-UDL needs more octets than the TPDU has.
    TpUdlOverrun {
        /// TP-UDL.
        udl: u8,
        /// `septets` or `octets`.
        unit: &'static str,
        /// Octets TP-UDL requires.
        needed: usize,
        /// Octets present.
        present: usize,
    },
    /// TP-UDL exceeds 160 septets or 140 octets.
    TpUdlTooLarge {
        /// TP-UDL.
        udl: u8,
        /// `septets` or `octets`.
        unit: &'static str,
    },
    /// A TP address length beyond 20 semi-octets (TS 23.040 §9.1.2.5).
    TpAddressLength {
        /// The Address-Length octet.
        length: u8,
        /// TPDU offset of the octet.
        at: usize,
    },
    /// A time stamp semi-octet is not a decimal digit (TS 23.040 §9.2.3.11).
    Timestamp {
        /// `TP-SCTS`, `TP-DT` or `TP-VP`.
        field: &'static str,
    },
    /// The user data header length or an information element runs past the user data.
    UdhOverrun,
    /// TP-UDHI is set but the user data cannot hold a header.
    UdhiWithoutHeader,
    /// TP-MTI 11 (reserved) in this direction.
    ReservedTpMti,
    /// The TPDU type cannot be carried by this RP message (e.g. SMS-DELIVER-REPORT in RP-DATA).
    TpduNotAllowed {
        /// TP-MTI.
        mti: u8,
        /// The TPDU this TP-MTI means in this direction.
        tpdu: &'static str,
        /// `rp_data` or `rp_ack`/`rp_error`.
        carrier: &'static str,
    },
    /// An RP-ACK/RP-ERROR that answers no RP-DATA sent (TS 24.011 §9.3.3, cause 98).
    NotCompatibleWithState {
        /// The reference received.
        message_reference: u8,
    },
}

impl ErrorKind {
    /// The stable snake_case code that starts the `Display` text.
    pub fn code(&self) -> &'static str {
        match self {
            ErrorKind::RpMessageTooShort { .. } => "rp_message_too_short",
            ErrorKind::UnknownRpMessageType { .. } => "unknown_rp_message_type",
            ErrorKind::WrongDirection { .. } => "rp_message_type_wrong_direction",
            ErrorKind::RpMessageTooLong { .. } => "rp_message_too_long",
            ErrorKind::RpTruncated { .. } => "rp_truncated",
            ErrorKind::RpAddressLength { .. } => "rp_address_length",
            ErrorKind::RpUserDataOverrun { .. } => "rp_user_data_overrun",
            ErrorKind::RpCauseLength => "rp_cause_length",
            ErrorKind::UnexpectedInformationElement { .. } => "unexpected_information_element",
            ErrorKind::AddressDigit { .. } => "address_digit",
            ErrorKind::TpduTruncated { .. } => "tpdu_truncated",
            ErrorKind::TpUdlOverrun { .. } => "tp_udl_overrun",
            ErrorKind::TpUdlTooLarge { .. } => "tp_udl_too_large",
            ErrorKind::TpAddressLength { .. } => "tp_address_length",
            ErrorKind::Timestamp { .. } => "timestamp",
            ErrorKind::UdhOverrun => "udh_overrun",
            ErrorKind::UdhiWithoutHeader => "udhi_without_header",
            ErrorKind::ReservedTpMti => "reserved_tp_mti",
            ErrorKind::TpduNotAllowed { carrier, .. } => match *carrier {
                "rp_data" => "tpdu_not_allowed_in_rp_data",
                _ => "tpdu_not_allowed_in_rp_report",
            },
            ErrorKind::NotCompatibleWithState { .. } => "not_compatible_with_state",
        }
    }

    /// The RP cause the receiving RP entity answers with in an RP-ERROR (TS 24.011 §9.3), or
    /// `None` when the message must be ignored (too short to hold a message reference).
    pub fn rp_cause(&self) -> Option<RpCause> {
        Some(match self {
            ErrorKind::RpMessageTooShort { .. } => return None,
            ErrorKind::UnknownRpMessageType { .. } | ErrorKind::WrongDirection { .. } => {
                RpCause::MESSAGE_TYPE_NON_EXISTENT
            }
            ErrorKind::RpMessageTooLong { .. } => RpCause::PROTOCOL_ERROR_UNSPECIFIED,
            ErrorKind::UnexpectedInformationElement { .. } => {
                RpCause::INFORMATION_ELEMENT_NON_EXISTENT
            }
            ErrorKind::TpduNotAllowed { .. } => RpCause::SEMANTICALLY_INCORRECT_MESSAGE,
            ErrorKind::NotCompatibleWithState { .. } => RpCause::MESSAGE_NOT_COMPATIBLE,
            _ => RpCause::INVALID_MANDATORY_INFORMATION,
        })
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.code())?;
        match self {
            ErrorKind::RpMessageTooShort { len } => write!(
                f,
                "{len} octet{}, need at least 2 (MTI + MR)",
                if *len == 1 { "" } else { "s" }
            ),
            ErrorKind::UnknownRpMessageType { mti } => write!(f, "MTI {mti} at offset 0"),
            ErrorKind::WrongDirection { mti } => {
                write!(f, "MTI {mti} is not sent in this direction")
            }
            ErrorKind::RpMessageTooLong { len, max } => write!(f, "{len} octets (max {max})"),
            ErrorKind::RpTruncated { element } => write!(f, "{element} missing or cut short"),
            ErrorKind::RpAddressLength { length } => write!(f, "length {length} (max 11)"),
            ErrorKind::RpUserDataOverrun {
                length,
                at,
                available,
            } => write!(
                f,
                "length {length} at offset {at}, {available} octets available"
            ),
            ErrorKind::RpCauseLength => write!(f, "RP-Cause length 0"),
            ErrorKind::UnexpectedInformationElement { iei } => write!(f, "IEI {iei:#04x}"),
            ErrorKind::AddressDigit { nibble } => write!(f, "semi-octet {nibble:#x}"),
            ErrorKind::TpduTruncated {
                tpdu,
                field,
                at,
                len,
            } => write!(
                f,
                "{tpdu} needs {field} at TPDU offset {at}, TPDU is {len} octets"
            ),
            ErrorKind::TpUdlOverrun {
                udl,
                unit,
                needed,
                present,
            } => write!(
                f,
                "TP-UDL {udl} {unit} requires {needed} octets, {present} present"
            ),
            ErrorKind::TpUdlTooLarge { udl, unit } => write!(
                f,
                "TP-UDL {udl} {unit} (max {})",
                if *unit == "septets" { 160 } else { 140 }
            ),
            ErrorKind::TpAddressLength { length, at } => {
                write!(f, "{length} semi-octets at TPDU offset {at} (max 20)")
            }
            ErrorKind::Timestamp { field } => write!(f, "{field} has a non-decimal semi-octet"),
            ErrorKind::UdhOverrun => write!(f, "user data header runs past the user data"),
            ErrorKind::UdhiWithoutHeader => write!(f, "TP-UDHI set but no room for a header"),
            ErrorKind::ReservedTpMti => write!(f, "TP-MTI 3 is reserved"),
            ErrorKind::TpduNotAllowed { mti, tpdu, .. } => {
                write!(f, "TP-MTI {mti} ({tpdu}) at TPDU offset 0")
            }
            ErrorKind::NotCompatibleWithState { message_reference } => {
                write!(f, "RP-MR {message_reference} answers no pending RP-DATA")
            }
        }
    }
}

/// A decoding failure: the kind, the octet offset (from the start of the buffer given to the
/// decoder) and, once known, the RP message reference to answer with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind} (offset {offset})")]
pub struct DecodeError {
    /// What was wrong.
    pub kind: ErrorKind,
    /// Where: octet offset from the start of the decoded buffer.
    pub offset: usize,
    /// The RP-MR of the message, when the RP header was readable.
    pub message_reference: Option<u8>,
}

impl DecodeError {
    pub(crate) fn new(kind: ErrorKind, offset: usize) -> DecodeError {
        DecodeError {
            kind,
            offset,
            message_reference: None,
        }
    }

    /// The RP cause to answer with (see [`ErrorKind::rp_cause`]).
    pub fn rp_cause(&self) -> Option<RpCause> {
        self.kind.rp_cause()
    }

    pub(crate) fn shifted(mut self, base: usize, mr: u8) -> DecodeError {
        self.offset += base;
        self.message_reference = Some(mr);
        self
    }
}

/// An encoding failure: a value the wire format cannot carry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// An address has a character that is not a BCD digit, or is too long.
    #[error("address {0:?} cannot be encoded (digits 0-9 * # a b c, at most 20)")]
    Address(String),
    /// An alphanumeric address or text has a character the GSM 7 bit tables cannot represent.
    #[error("character {0:?} is not in the GSM 7 bit tables in use")]
    Unrepresentable(char),
    /// The user data (with its header) exceeds 140 octets / 160 septets.
    #[error("user data too long: {0}")]
    UserDataTooLong(String),
    /// A time zone beyond ±79 quarter hours or a time field beyond 99.
    #[error("time stamp field out of range: {0}")]
    Timestamp(&'static str),
    /// An element longer than its length octet allows.
    #[error("{0} too long")]
    TooLong(&'static str),
    /// The TPDU does not fit the RP message or direction asked for.
    #[error("{0}")]
    Mismatch(&'static str),
}
