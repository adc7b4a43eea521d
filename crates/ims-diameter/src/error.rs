//! The one error type of the crate: what was wrong, at which octet, in which AVP, and the Diameter
//! result code (RFC 6733 §7.1) a receiver answers it with.

use core::fmt;

/// An AVP's identity: its code and Vendor-Id (0 when the V bit is clear).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct AvpId {
    /// The AVP Code.
    pub code: u32,
    /// The Vendor-Id, 0 for IETF AVPs (V bit clear).
    pub vendor: u32,
}

impl AvpId {
    /// An AVP identity.
    pub const fn new(code: u32, vendor: u32) -> AvpId {
        AvpId { code, vendor }
    }
}

impl fmt::Display for AvpId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match crate::dict::lookup(self.code, self.vendor) {
            Some(d) => f.write_str(d.name),
            None if self.vendor == 0 => write!(f, "AVP {}", self.code),
            None => write!(f, "AVP {}/{}", self.code, self.vendor),
        }
    }
}

/// What a decoder found wrong. Each variant names the RFC 6733 rule it enforces and maps to the
/// result code of [`ErrorKind::result_code`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The buffer ends before the header (20 octets) or before the Message Length: not an error on
    /// a stream, wait for `needed` more octets.
    Truncated {
        /// How many more octets complete the header or the message.
        needed: usize,
    },
    /// Version is not 1 (RFC 6733 §3): 5011 DIAMETER_UNSUPPORTED_VERSION.
    UnsupportedVersion(u8),
    /// Message Length below 20, not a multiple of 4, or not matching the AVPs: 5015
    /// DIAMETER_INVALID_MESSAGE_LENGTH.
    InvalidMessageLength,
    /// Reserved command flag bits set, or E bit on a request (RFC 6733 §3): 3008
    /// DIAMETER_INVALID_HDR_BITS.
    InvalidHeaderBits,
    /// Reserved AVP flag bits set, or an M/V bit the dictionary forbids (RFC 6733 §4.1): 3009
    /// DIAMETER_INVALID_AVP_BITS.
    InvalidAvpBits,
    /// AVP Length below its header, past the end of the message, or wrong for its data type
    /// (RFC 6733 §4.1, §7.1.5): 5014 DIAMETER_INVALID_AVP_LENGTH.
    InvalidAvpLength,
    /// An AVP value outside its type or enumeration (RFC 6733 §7.1.5): 5004 DIAMETER_INVALID_AVP_VALUE.
    InvalidAvpValue,
    /// A required AVP is absent (RFC 6733 §7.1.5): 5005 DIAMETER_MISSING_AVP.
    MissingAvp,
    /// An AVP the command's grammar does not allow, or a fixed-position AVP out of place: 5008
    /// DIAMETER_AVP_NOT_ALLOWED.
    AvpNotAllowed,
    /// An AVP more often than the grammar allows: 5009 DIAMETER_AVP_OCCURS_TOO_MANY_TIMES.
    AvpOccursTooManyTimes,
    /// An AVP with the M bit set that the dictionary does not know: 5001 DIAMETER_AVP_UNSUPPORTED.
    AvpUnsupported,
    /// A command code the receiver does not know for the application: 3001
    /// DIAMETER_COMMAND_UNSUPPORTED.
    CommandUnsupported,
    /// An Application-Id the receiver does not support: 3007 DIAMETER_APPLICATION_UNSUPPORTED.
    ApplicationUnsupported,
    /// A typed decoder was given another command (code, R bit or Application-Id differ).
    WrongCommand,
    /// A message larger than `Limits::max_message_size`: 5015 on the wire, and the connection
    /// should be closed.
    MessageTooLarge,
    /// Grouped AVPs nested deeper than `Limits::max_depth`, or more AVPs than `Limits::max_avps`:
    /// 5012 DIAMETER_UNABLE_TO_COMPLY.
    LimitExceeded,
}

impl ErrorKind {
    /// The Result-Code a receiver answers with, `None` for [`ErrorKind::Truncated`] (wait for more)
    /// and [`ErrorKind::WrongCommand`] (a caller error, not a peer's).
    pub const fn result_code(self) -> Option<u32> {
        Some(match self {
            ErrorKind::Truncated { .. } | ErrorKind::WrongCommand => return None,
            ErrorKind::UnsupportedVersion(_) => 5011,
            ErrorKind::InvalidMessageLength | ErrorKind::MessageTooLarge => 5015,
            ErrorKind::InvalidHeaderBits => 3008,
            ErrorKind::InvalidAvpBits => 3009,
            ErrorKind::InvalidAvpLength => 5014,
            ErrorKind::InvalidAvpValue => 5004,
            ErrorKind::MissingAvp => 5005,
            ErrorKind::AvpNotAllowed => 5008,
            ErrorKind::AvpOccursTooManyTimes => 5009,
            ErrorKind::AvpUnsupported => 5001,
            ErrorKind::CommandUnsupported => 3001,
            ErrorKind::ApplicationUnsupported => 3007,
            ErrorKind::LimitExceeded => 5012,
        })
    }

    /// True for the protocol errors (3xxx) answered with the E bit set (RFC 6733 §7.1.3).
    pub const fn is_protocol_error(self) -> bool {
        matches!(self.result_code(), Some(3000..=3999))
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            ErrorKind::Truncated { needed } => {
                return write!(f, "incomplete message: {needed} more octets needed")
            }
            ErrorKind::UnsupportedVersion(v) => return write!(f, "unsupported version {v}"),
            ErrorKind::InvalidMessageLength => "invalid Message Length",
            ErrorKind::InvalidHeaderBits => "invalid command flag bits",
            ErrorKind::InvalidAvpBits => "invalid AVP flag bits",
            ErrorKind::InvalidAvpLength => "invalid AVP Length",
            ErrorKind::InvalidAvpValue => "invalid AVP value",
            ErrorKind::MissingAvp => "missing required AVP",
            ErrorKind::AvpNotAllowed => "AVP not allowed here",
            ErrorKind::AvpOccursTooManyTimes => "AVP occurs too many times",
            ErrorKind::AvpUnsupported => "unsupported AVP with the M bit set",
            ErrorKind::CommandUnsupported => "unsupported command",
            ErrorKind::ApplicationUnsupported => "unsupported application",
            ErrorKind::WrongCommand => "not the command this decoder expects",
            ErrorKind::MessageTooLarge => "message exceeds the size limit",
            ErrorKind::LimitExceeded => "AVP nesting or count exceeds the limit",
        };
        f.write_str(s)
    }
}

/// A decode failure: the kind, the octet offset from the start of the message, and the AVP.
///
/// For AVP faults `offset` is where the offending AVP's header starts (so the answer can copy it
/// into Failed-AVP); for a missing AVP it is the end of the message or group that lacks it.
/// `Copy` and allocation-free.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub struct Error {
    /// What was wrong.
    pub kind: ErrorKind,
    /// Octet offset from the start of the message.
    pub offset: usize,
    /// The AVP concerned, if any (for [`ErrorKind::MissingAvp`], the missing one).
    pub avp: Option<AvpId>,
}

impl Error {
    pub(crate) const fn new(kind: ErrorKind, offset: usize) -> Error {
        Error {
            kind,
            offset,
            avp: None,
        }
    }

    pub(crate) const fn at_avp(kind: ErrorKind, offset: usize, avp: AvpId) -> Error {
        Error {
            kind,
            offset,
            avp: Some(avp),
        }
    }

    /// The Result-Code to answer with (see [`ErrorKind::result_code`]).
    pub const fn result_code(&self) -> Option<u32> {
        self.kind.result_code()
    }

    /// True when the buffer only ended early: feed more octets and try again.
    pub const fn is_incomplete(&self) -> bool {
        matches!(self.kind, ErrorKind::Truncated { .. })
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at octet {}", self.kind, self.offset)?;
        if let Some(a) = self.avp {
            write!(f, " ({a})")?;
        }
        if let Some(rc) = self.result_code() {
            write!(f, " [Result-Code {rc}]")?;
        }
        Ok(())
    }
}
