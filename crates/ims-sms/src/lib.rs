//! SMS over IP: what an IP-SM-GW or a UE puts in a SIP MESSAGE with `Content-Type:
//! application/vnd.3gpp.sms` (TS 24.341): the relay layer of TS 24.011 (RP-DATA, RP-ACK,
//! RP-ERROR, RP-SMMA), the six TPDUs of TS 23.040, the alphabets of TS 23.038, user data headers,
//! and concatenation (split and sans-IO reassembly).
//!
//! ```
//! use ims_sms::{decode, answer, Direction, Tpdu, Timestamp};
//!
//! // RP-DATA (MS to network) with an SMS-SUBMIT "hello" to +447700900456 via SC +447700900000
//! let body = [
//!     0x00, 0x01, 0x00, 0x07, 0x91, 0x44, 0x77, 0x00, 0x09, 0x00, 0x00, 0x12, 0x01, 0x00, 0x0c,
//!     0x91, 0x44, 0x77, 0x00, 0x09, 0x40, 0x65, 0x00, 0x00, 0x05, 0xe8, 0x32, 0x9b, 0xfd, 0x06,
//! ];
//! let sms = decode(&body, Direction::MsToNetwork)?;
//! assert_eq!(sms.rp.name(), "RP-DATA");
//! assert_eq!(sms.rp.message_reference, 1);
//! let Some(Tpdu::Submit(submit)) = &sms.tpdu else { panic!("not a SUBMIT") };
//! assert_eq!(submit.destination.to_string(), "+447700900456");
//! assert_eq!(sms.tpdu.as_ref().unwrap().text().as_deref(), Some("hello"));
//!
//! // the IP-SM-GW answers with RP-ACK + SMS-SUBMIT-REPORT
//! let scts = Timestamp { year: 24, month: 3, day: 15, hour: 14, minute: 30, second: 45, tz_quarter_hours: 4 };
//! let ack = answer::submit_report_ack(&sms.rp, scts)?;
//! assert_eq!(ack, [0x03, 0x01, 0x41, 0x09, 0x01, 0x00, 0x42, 0x30, 0x51, 0x41, 0x03, 0x54, 0x40]);
//!
//! // a broken message tells which RP-ERROR to send back
//! let err = decode(&[0x07, 0x24], Direction::MsToNetwork).unwrap_err();
//! assert_eq!(err.rp_cause().map(|c| c.0), Some(97));
//! assert_eq!(err.answer(&[0x07, 0x24], Direction::MsToNetwork), Some(vec![0x05, 0x24, 0x01, 97]));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Shape
//! - [`RpMessage::decode`] takes the direction the message must travel in (the RP-MTI differs by
//!   direction) and borrows the TPDU octets; [`RpMessage::tpdu`] decodes them with that direction
//!   and message type, because TP-MTI alone is ambiguous. [`Tpdu::decode`] cannot be called
//!   without a [`Direction`] and a [`Carrier`]. [`decode`] does both.
//! - Errors ([`DecodeError`]) carry the offset, the RP-MR and the RP cause to answer
//!   (95, 96, 97, 98, 99, 111), and [`DecodeError::answer`] builds that RP-ERROR.
//! - Parameters keep their octets ([`DataCodingScheme`], [`ProtocolIdentifier`],
//!   [`FailureCause`], [`RpCause`], ...) so every value re-encodes as received.
//! - [`split`] and [`Reassembler`] handle concatenation; [`answer`] builds the replies of the
//!   usual flows.
//!
//! # Limits
//! No input makes a decoder panic or loop; every length is bounded by its length octet and the
//! RP message by [`Limits`]. Reassembly is bounded by [`ReassemblyLimits`].

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod address;
pub mod alphabet;
pub mod answer;
mod concat;
mod error;
mod params;
mod rp;
mod tables;
mod tpdu;
mod ud;

pub use address::{
    Address, NumberingPlan, TypeOfNumber, MAX_RP_ADDRESS_OCTETS, MAX_TP_ADDRESS_SEMI_OCTETS,
};
pub use alphabet::{NationalLanguage, ShiftTables};
pub use concat::{
    split, ConcatKey, PushResult, Reassembled, Reassembler, ReassemblyLimits, Split, SplitError,
    SplitOptions,
};
pub use error::{DecodeError, EncodeError, ErrorKind};
pub use params::{
    Alphabet, CodingGroup, CommandType, DataCodingScheme, FailureCause, IndicationType,
    MessageClass, ProtocolIdentifier, Status, Timestamp, ValidityPeriod,
};
pub use rp::{Limits, RpBody, RpCause, RpMessage, RpMessageType, RP_USER_DATA_IEI};
pub use tpdu::{
    Carrier, Command, Deliver, DeliverReport, Direction, StatusReport, Submit, SubmitReport, Tpdu,
    MAX_COMMAND_DATA,
};
pub use ud::{
    header_septets, Concat, InformationElement, UserData, UserDataHeader, MAX_UD_OCTETS,
    MAX_UD_SEPTETS,
};

/// An RP message and its decoded TPDU.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sms<'a> {
    /// The RP message.
    pub rp: RpMessage<'a>,
    /// Its TPDU (`None` for RP-SMMA and RP-ACK/RP-ERROR without RP-User-Data).
    pub tpdu: Option<Tpdu>,
}

/// Decodes an RP message sent in `direction` and the TPDU it carries.
pub fn decode(bytes: &[u8], direction: Direction) -> Result<Sms<'_>, DecodeError> {
    let rp = RpMessage::decode(bytes, direction)?;
    let tpdu = rp.tpdu()?;
    Ok(Sms { rp, tpdu })
}

/// Encodes `tpdu` inside an RP message of the type and direction it belongs in: RP-DATA (with
/// `sc` as RP-DA from the MS, RP-OA from the network), or RP-ACK/RP-ERROR for a report (an
/// RP-ERROR gets `cause`, default 111 when `None`).
pub fn encode_rp(
    message_reference: u8,
    sc: &Address,
    tpdu: &Tpdu,
    cause: Option<RpCause>,
) -> Result<Vec<u8>, EncodeError> {
    let t = tpdu.encode()?;
    let dir = tpdu.direction();
    let rp = match tpdu.carrier() {
        Carrier::RpData => match dir {
            Direction::MsToNetwork => RpMessage::data_mo(message_reference, sc.clone(), &t),
            Direction::NetworkToMs => RpMessage::data_mt(message_reference, sc.clone(), &t),
        },
        Carrier::RpAck => RpMessage::ack(dir, message_reference, Some(&t)),
        Carrier::RpError => RpMessage::error(
            dir,
            message_reference,
            cause.unwrap_or(RpCause::PROTOCOL_ERROR_UNSPECIFIED),
            Some(&t),
        ),
    };
    rp.encode()
}
