//! The relay layer of TS 24.011 §7.3 and §8: RP-DATA, RP-ACK, RP-ERROR and RP-SMMA, each with its
//! message reference and direction (the RP-MTI differs by direction, §8.2.2).

use crate::address::Address;
use crate::error::{DecodeError, EncodeError, ErrorKind};
use crate::tpdu::{Carrier, Direction, Tpdu};
use core::fmt;

/// IEI of the optional RP-User-Data element in RP-ACK and RP-ERROR (TS 24.011 §8.2.5.3).
pub const RP_USER_DATA_IEI: u8 = 0x41;

/// RP-Cause value (TS 24.011 §8.2.5.4, table 8.4), kept as its 7-bit value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RpCause(pub u8);

impl RpCause {
    /// 1: unassigned (unallocated) number.
    pub const UNASSIGNED_NUMBER: RpCause = RpCause(1);
    /// 8: operator determined barring.
    pub const OPERATOR_DETERMINED_BARRING: RpCause = RpCause(8);
    /// 10: call barred.
    pub const CALL_BARRED: RpCause = RpCause(10);
    /// 21: short message transfer rejected.
    pub const SHORT_MESSAGE_TRANSFER_REJECTED: RpCause = RpCause(21);
    /// 22: memory capacity exceeded.
    pub const MEMORY_CAPACITY_EXCEEDED: RpCause = RpCause(22);
    /// 27: destination out of order.
    pub const DESTINATION_OUT_OF_ORDER: RpCause = RpCause(27);
    /// 28: unidentified subscriber.
    pub const UNIDENTIFIED_SUBSCRIBER: RpCause = RpCause(28);
    /// 29: facility rejected.
    pub const FACILITY_REJECTED: RpCause = RpCause(29);
    /// 30: unknown subscriber.
    pub const UNKNOWN_SUBSCRIBER: RpCause = RpCause(30);
    /// 38: network out of order.
    pub const NETWORK_OUT_OF_ORDER: RpCause = RpCause(38);
    /// 41: temporary failure.
    pub const TEMPORARY_FAILURE: RpCause = RpCause(41);
    /// 42: congestion.
    pub const CONGESTION: RpCause = RpCause(42);
    /// 47: resources unavailable, unspecified.
    pub const RESOURCES_UNAVAILABLE: RpCause = RpCause(47);
    /// 50: requested facility not subscribed.
    pub const FACILITY_NOT_SUBSCRIBED: RpCause = RpCause(50);
    /// 69: requested facility not implemented.
    pub const FACILITY_NOT_IMPLEMENTED: RpCause = RpCause(69);
    /// 81: invalid short message transfer reference value.
    pub const INVALID_REFERENCE: RpCause = RpCause(81);
    /// 95: semantically incorrect message.
    pub const SEMANTICALLY_INCORRECT_MESSAGE: RpCause = RpCause(95);
    /// 96: invalid mandatory information.
    pub const INVALID_MANDATORY_INFORMATION: RpCause = RpCause(96);
    /// 97: message type non-existent or not implemented.
    pub const MESSAGE_TYPE_NON_EXISTENT: RpCause = RpCause(97);
    /// 98: message not compatible with short message protocol state.
    pub const MESSAGE_NOT_COMPATIBLE: RpCause = RpCause(98);
    /// 99: information element non-existent or not implemented.
    pub const INFORMATION_ELEMENT_NON_EXISTENT: RpCause = RpCause(99);
    /// 111: protocol error, unspecified.
    pub const PROTOCOL_ERROR_UNSPECIFIED: RpCause = RpCause(111);
    /// 127: interworking, unspecified.
    pub const INTERWORKING_UNSPECIFIED: RpCause = RpCause(127);

    /// The cause's name in TS 24.011 table 8.4.
    pub fn name(self) -> &'static str {
        match self.0 {
            1 => "Unassigned (unallocated) number",
            8 => "Operator determined barring",
            10 => "Call barred",
            11 => "Reserved",
            21 => "Short message transfer rejected",
            22 => "Memory capacity exceeded",
            27 => "Destination out of order",
            28 => "Unidentified subscriber",
            29 => "Facility rejected",
            30 => "Unknown subscriber",
            38 => "Network out of order",
            41 => "Temporary failure",
            42 => "Congestion",
            47 => "Resources unavailable, unspecified",
            50 => "Requested facility not subscribed",
            69 => "Requested facility not implemented",
            81 => "Invalid short message transfer reference value",
            95 => "Semantically incorrect message",
            96 => "Invalid mandatory information",
            97 => "Message type non-existent or not implemented",
            98 => "Message not compatible with short message protocol state",
            99 => "Information element non-existent or not implemented",
            111 => "Protocol error, unspecified",
            127 => "Interworking, unspecified",
            _ => "Unknown cause",
        }
    }
}

impl fmt::Display for RpCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.0, self.name())
    }
}

/// The RP message type, without its direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RpMessageType {
    /// RP-DATA.
    Data,
    /// RP-ACK.
    Ack,
    /// RP-ERROR.
    Error,
    /// RP-SMMA (MS to network only).
    Smma,
}

/// The part of an RP message after its type and reference. User data fields borrow the TPDU
/// octets from the decoded buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RpBody<'a> {
    /// RP-DATA (§7.3.1): RP-OA is the service centre from the network, empty from the MS;
    /// RP-DA the other way round.
    Data {
        /// RP-Originator Address (`None`: length 0).
        originator: Option<Address>,
        /// RP-Destination Address (`None`: length 0).
        destination: Option<Address>,
        /// RP-User-Data: the TPDU.
        user_data: &'a [u8],
    },
    /// RP-ACK (§7.3.3) with its optional RP-User-Data (IEI 0x41).
    Ack {
        /// The TPDU (SMS-DELIVER-REPORT or SMS-SUBMIT-REPORT).
        user_data: Option<&'a [u8]>,
    },
    /// RP-ERROR (§7.3.4).
    Error {
        /// RP-Cause value.
        cause: RpCause,
        /// Bit 8 of the cause octet (extension), kept as received.
        cause_extension: bool,
        /// The diagnostic field: the octets after the cause value (usually empty).
        diagnostic: &'a [u8],
        /// The TPDU (RP-ERROR form of a report).
        user_data: Option<&'a [u8]>,
    },
    /// RP-SMMA (§7.3.2): the MS has memory available again.
    Smma,
}

/// Decoder limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest RP message accepted (the longest valid one, an RP-DATA with two 11-octet addresses
    /// and a 255-octet RP-User-Data, is 282 octets).
    pub max_message_len: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_message_len: 282,
        }
    }
}

/// An RP message (TS 24.011 §7.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RpMessage<'a> {
    /// The direction (part of the RP-MTI).
    pub direction: Direction,
    /// RP-Message Reference.
    pub message_reference: u8,
    /// The rest.
    pub body: RpBody<'a>,
    /// Offset of the RP-User-Data value in the decoded buffer (0 for built messages).
    user_data_offset: usize,
}

impl<'a> RpMessage<'a> {
    /// An RP message from its parts.
    pub fn new(direction: Direction, message_reference: u8, body: RpBody<'a>) -> RpMessage<'a> {
        RpMessage {
            direction,
            message_reference,
            body,
            user_data_offset: 0,
        }
    }

    /// RP-DATA from the MS to the service centre `sc` carrying `tpdu`.
    pub fn data_mo(message_reference: u8, sc: Address, tpdu: &'a [u8]) -> RpMessage<'a> {
        RpMessage::new(
            Direction::MsToNetwork,
            message_reference,
            RpBody::Data {
                originator: None,
                destination: Some(sc),
                user_data: tpdu,
            },
        )
    }

    /// RP-DATA from the service centre `sc` to the MS carrying `tpdu`.
    pub fn data_mt(message_reference: u8, sc: Address, tpdu: &'a [u8]) -> RpMessage<'a> {
        RpMessage::new(
            Direction::NetworkToMs,
            message_reference,
            RpBody::Data {
                originator: Some(sc),
                destination: None,
                user_data: tpdu,
            },
        )
    }

    /// RP-ACK.
    pub fn ack(
        direction: Direction,
        message_reference: u8,
        tpdu: Option<&'a [u8]>,
    ) -> RpMessage<'a> {
        RpMessage::new(
            direction,
            message_reference,
            RpBody::Ack { user_data: tpdu },
        )
    }

    /// RP-ERROR with a cause and no diagnostic.
    pub fn error(
        direction: Direction,
        message_reference: u8,
        cause: RpCause,
        tpdu: Option<&'a [u8]>,
    ) -> RpMessage<'a> {
        RpMessage::new(
            direction,
            message_reference,
            RpBody::Error {
                cause,
                cause_extension: false,
                diagnostic: &[],
                user_data: tpdu,
            },
        )
    }

    /// RP-SMMA.
    pub fn smma(message_reference: u8) -> RpMessage<'static> {
        RpMessage::new(Direction::MsToNetwork, message_reference, RpBody::Smma)
    }

    /// Decodes an RP message that must travel in `direction`, with default [`Limits`].
    pub fn decode(b: &'a [u8], direction: Direction) -> Result<RpMessage<'a>, DecodeError> {
        Self::decode_with(b, Some(direction), &Limits::default())
    }

    /// Decodes an RP message in whichever direction its RP-MTI says.
    pub fn decode_any(b: &'a [u8]) -> Result<RpMessage<'a>, DecodeError> {
        Self::decode_with(b, None, &Limits::default())
    }

    /// Decodes with explicit limits; `direction` `None` accepts both.
    pub fn decode_with(
        b: &'a [u8],
        direction: Option<Direction>,
        limits: &Limits,
    ) -> Result<RpMessage<'a>, DecodeError> {
        if b.len() < 2 {
            return Err(DecodeError::new(
                ErrorKind::RpMessageTooShort { len: b.len() },
                b.len(),
            ));
        }
        let mti = b[0] & 0x07;
        let mr = b[1];
        let err = |kind, at| DecodeError {
            kind,
            offset: at,
            message_reference: Some(mr),
        };
        if b.len() > limits.max_message_len {
            return Err(err(
                ErrorKind::RpMessageTooLong {
                    len: b.len(),
                    max: limits.max_message_len,
                },
                limits.max_message_len,
            ));
        }
        if mti == 7 {
            return Err(err(ErrorKind::UnknownRpMessageType { mti }, 0));
        }
        let dir = if mti % 2 == 0 {
            Direction::MsToNetwork
        } else {
            Direction::NetworkToMs
        };
        if direction.is_some_and(|d| d != dir) {
            return Err(err(ErrorKind::WrongDirection { mti }, 0));
        }
        let with_mr = |mut e: DecodeError| {
            e.message_reference = Some(mr);
            e
        };
        let mut user_data_offset = 0;
        let body = match mti {
            0 | 1 => {
                let (originator, p) =
                    Address::decode_rp(b, 2, "RP-Originator Address").map_err(with_mr)?;
                let (destination, p) =
                    Address::decode_rp(b, p, "RP-Destination Address").map_err(with_mr)?;
                let (ud, _) = lv(b, p).map_err(with_mr)?;
                user_data_offset = p + 1;
                RpBody::Data {
                    originator,
                    destination,
                    user_data: ud,
                }
            }
            2 | 3 => {
                let (ud, off) = optional_user_data(b, 2).map_err(with_mr)?;
                user_data_offset = off;
                RpBody::Ack { user_data: ud }
            }
            4 | 5 => {
                let Some(&clen) = b.get(2) else {
                    return Err(err(
                        ErrorKind::RpTruncated {
                            element: "RP-Cause",
                        },
                        2,
                    ));
                };
                if clen == 0 {
                    return Err(err(ErrorKind::RpCauseLength, 2));
                }
                let cause = b.get(3..3 + usize::from(clen)).ok_or_else(|| {
                    err(
                        ErrorKind::RpTruncated {
                            element: "RP-Cause",
                        },
                        2,
                    )
                })?;
                let (ud, off) = optional_user_data(b, 3 + usize::from(clen)).map_err(with_mr)?;
                user_data_offset = off;
                RpBody::Error {
                    cause: RpCause(cause[0] & 0x7F),
                    cause_extension: cause[0] & 0x80 != 0,
                    diagnostic: &cause[1..],
                    user_data: ud,
                }
            }
            _ => RpBody::Smma,
        };
        Ok(RpMessage {
            direction: dir,
            message_reference: mr,
            body,
            user_data_offset,
        })
    }

    /// The message type.
    pub fn message_type(&self) -> RpMessageType {
        match self.body {
            RpBody::Data { .. } => RpMessageType::Data,
            RpBody::Ack { .. } => RpMessageType::Ack,
            RpBody::Error { .. } => RpMessageType::Error,
            RpBody::Smma => RpMessageType::Smma,
        }
    }

    /// The RP-MTI (TS 24.011 §8.2.2).
    pub fn mti(&self) -> u8 {
        let base = match self.body {
            RpBody::Data { .. } => 0,
            RpBody::Ack { .. } => 2,
            RpBody::Error { .. } => 4,
            RpBody::Smma => 6,
        };
        base + u8::from(self.direction == Direction::NetworkToMs)
    }

    /// The name, e.g. `RP-DATA`.
    pub fn name(&self) -> &'static str {
        match self.body {
            RpBody::Data { .. } => "RP-DATA",
            RpBody::Ack { .. } => "RP-ACK",
            RpBody::Error { .. } => "RP-ERROR",
            RpBody::Smma => "RP-SMMA",
        }
    }

    /// The TPDU octets (RP-User-Data value), if any.
    pub fn user_data(&self) -> Option<&'a [u8]> {
        match self.body {
            RpBody::Data { user_data, .. } => Some(user_data),
            RpBody::Ack { user_data } | RpBody::Error { user_data, .. } => user_data,
            RpBody::Smma => None,
        }
    }

    /// Offset of the TPDU in the decoded buffer.
    pub fn user_data_offset(&self) -> usize {
        self.user_data_offset
    }

    /// Decodes the TPDU with this message's direction and type. Error offsets count from the
    /// start of the RP message, and carry its RP-MR.
    pub fn tpdu(&self) -> Result<Option<Tpdu>, DecodeError> {
        let carrier = match self.body {
            RpBody::Data { .. } => Carrier::RpData,
            RpBody::Ack { .. } => Carrier::RpAck,
            RpBody::Error { .. } => Carrier::RpError,
            RpBody::Smma => return Ok(None),
        };
        let Some(ud) = self.user_data() else {
            return Ok(None);
        };
        Tpdu::decode(ud, self.direction, carrier)
            .map(Some)
            .map_err(|e| e.shifted(self.user_data_offset, self.message_reference))
    }

    /// Checks that this RP-ACK/RP-ERROR answers the RP-DATA (or RP-SMMA) sent with reference
    /// `sent` (TS 24.011 §9.3.3: otherwise cause 98).
    pub fn check_answers(&self, sent: u8) -> Result<(), DecodeError> {
        let ok = matches!(self.body, RpBody::Ack { .. } | RpBody::Error { .. })
            && self.message_reference == sent;
        if ok {
            Ok(())
        } else {
            Err(DecodeError {
                kind: ErrorKind::NotCompatibleWithState {
                    message_reference: self.message_reference,
                },
                offset: 1,
                message_reference: Some(self.message_reference),
            })
        }
    }

    /// Encodes the message.
    pub fn encode(&self) -> Result<Vec<u8>, EncodeError> {
        let mut out = Vec::with_capacity(32 + self.user_data().map_or(0, <[u8]>::len));
        self.encode_into(&mut out)?;
        Ok(out)
    }

    /// Appends the message to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        if matches!(self.body, RpBody::Smma) && self.direction == Direction::NetworkToMs {
            return Err(EncodeError::Mismatch("RP-SMMA is sent by the MS only"));
        }
        out.extend_from_slice(&[self.mti(), self.message_reference]);
        let ud_len =
            |ud: &[u8]| u8::try_from(ud.len()).map_err(|_| EncodeError::TooLong("RP-User-Data"));
        match &self.body {
            RpBody::Data {
                originator,
                destination,
                user_data,
            } => {
                for a in [originator, destination] {
                    match a {
                        Some(a) => a.encode_rp(out)?,
                        None => out.push(0),
                    }
                }
                out.push(ud_len(user_data)?);
                out.extend_from_slice(user_data);
            }
            RpBody::Ack { user_data } => {
                if let Some(ud) = user_data {
                    out.extend_from_slice(&[RP_USER_DATA_IEI, ud_len(ud)?]);
                    out.extend_from_slice(ud);
                }
            }
            RpBody::Error {
                cause,
                cause_extension,
                diagnostic,
                user_data,
            } => {
                let clen = u8::try_from(1 + diagnostic.len())
                    .map_err(|_| EncodeError::TooLong("RP-Cause"))?;
                out.push(clen);
                out.push(cause.0 & 0x7F | u8::from(*cause_extension) << 7);
                out.extend_from_slice(diagnostic);
                if let Some(ud) = user_data {
                    out.extend_from_slice(&[RP_USER_DATA_IEI, ud_len(ud)?]);
                    out.extend_from_slice(ud);
                }
            }
            RpBody::Smma => {}
        }
        Ok(())
    }
}

/// A length-value element at `p`: the value and the offset after it.
fn lv(b: &[u8], p: usize) -> Result<(&[u8], usize), DecodeError> {
    let Some(&len) = b.get(p) else {
        return Err(DecodeError::new(
            ErrorKind::RpTruncated {
                element: "RP-User-Data",
            },
            p,
        ));
    };
    let end = p + 1 + usize::from(len);
    match b.get(p + 1..end) {
        Some(v) => Ok((v, end)),
        None => Err(DecodeError::new(
            ErrorKind::RpUserDataOverrun {
                length: len,
                at: p,
                available: b.len() - p - 1,
            },
            p,
        )),
    }
}

/// The optional RP-User-Data element (IEI 0x41) of RP-ACK/RP-ERROR at `p`, and its value offset.
fn optional_user_data(b: &[u8], p: usize) -> Result<(Option<&[u8]>, usize), DecodeError> {
    match b.get(p) {
        None => Ok((None, 0)),
        Some(&RP_USER_DATA_IEI) => {
            let (v, _) = lv(b, p + 1)?;
            Ok((Some(v), p + 2))
        }
        Some(&iei) => Err(DecodeError::new(
            ErrorKind::UnexpectedInformationElement { iei },
            p,
        )),
    }
}

impl DecodeError {
    /// The RP-ERROR the receiver of the failed message sends back (reverse direction, the
    /// received RP-MR, the cause of [`ErrorKind::rp_cause`], no RP-User-Data), or `None` when the
    /// message is to be ignored (no message reference, or the failed message was itself an
    /// RP-ACK/RP-ERROR, which is never answered).
    pub fn answer(&self, received: &[u8], received_direction: Direction) -> Option<Vec<u8>> {
        let mr = self.message_reference?;
        let cause = self.rp_cause()?;
        let mti = received.first()? & 7;
        if (2..=5).contains(&mti) {
            return None;
        }
        RpMessage::error(received_direction.reverse(), mr, cause, None)
            .encode()
            .ok()
    }
}
