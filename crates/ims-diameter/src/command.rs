//! The [`Command`] trait every typed command implements.

use crate::avp::AvpIter;
use crate::encode::{encode_message, EncodeBuf, Encoder};
use crate::error::{Error, ErrorKind};
use crate::grammar::Grammar;
use crate::message::{Flags, Header, Message};

/// A typed Diameter command (request or answer): decode from a [`Message`], encode to octets.
///
/// ```
/// use ims_diameter::{base::Dwr, Command, Message};
/// use std::borrow::Cow;
/// let dwr = Dwr {
///     origin_host: Cow::Borrowed("scscf.ims.mnc001.mcc001.3gppnetwork.org"),
///     origin_realm: Cow::Borrowed("ims.mnc001.mcc001.3gppnetwork.org"),
///     origin_state_id: Some(1_700_000_000),
///     ..Default::default()
/// };
/// let bytes = dwr.encode(0x101, 0x6d30_0101);
/// let msg = Message::parse(&bytes)?;
/// assert_eq!(Dwr::decode(&msg)?, dwr);
/// # Ok::<(), ims_diameter::Error>(())
/// ```
pub trait Command<'a>: Sized {
    /// Command Code.
    const CODE: u32;
    /// Application-Id (0 for the common messages, which any application may carry).
    const APPLICATION_ID: u32;
    /// True for the request, false for the answer.
    const REQUEST: bool;
    /// True when the P bit is set.
    const PROXIABLE: bool;
    /// The abbreviation (`"UAR"`).
    const NAME: &'static str;

    /// Decodes the AVPs (the grammar is checked; see the struct's `decode_avps`).
    fn decode_avps(avps: AvpIter<'a>) -> Result<Self, Error>;
    /// Appends the AVPs.
    fn encode_avps<B: EncodeBuf>(&self, enc: &mut Encoder<'_, B>);
    /// The command's grammar.
    fn grammar() -> &'static Grammar;

    /// Decodes a message: [`ErrorKind::WrongCommand`] when the code or R bit differ,
    /// [`ErrorKind::ApplicationUnsupported`] (3007) when the Application-Id does.
    fn decode(msg: &Message<'a>) -> Result<Self, Error> {
        if msg.code() != Self::CODE || msg.is_request() != Self::REQUEST {
            return Err(Error::new(ErrorKind::WrongCommand, 4));
        }
        if Self::APPLICATION_ID != 0 && msg.application_id() != Self::APPLICATION_ID {
            return Err(Error::new(ErrorKind::ApplicationUnsupported, 8));
        }
        Self::decode_avps(msg.avps())
    }

    /// The header this command is sent with: R for requests, P when proxiable.
    fn header(hop_by_hop: u32, end_to_end: u32) -> Header {
        let mut flags = 0;
        if Self::REQUEST {
            flags |= Flags::REQUEST;
        }
        if Self::PROXIABLE {
            flags |= Flags::PROXIABLE;
        }
        Header {
            version: 1,
            length: 0,
            flags: Flags(flags),
            code: Self::CODE,
            application_id: Self::APPLICATION_ID,
            hop_by_hop,
            end_to_end,
        }
    }

    /// Appends the message with this header (its length is back-filled); returns the length.
    fn encode_into<B: EncodeBuf>(&self, header: &Header, buf: &mut B) -> usize {
        encode_message(buf, header, |e| self.encode_avps(e))
    }

    /// The message with [`Command::header`] and these identifiers.
    fn encode(&self, hop_by_hop: u32, end_to_end: u32) -> Vec<u8> {
        let mut v = Vec::with_capacity(256);
        self.encode_into(&Self::header(hop_by_hop, end_to_end), &mut v);
        v
    }

    /// The answer to `request` (RFC 6733 §6.2: its identifiers, its Application-Id, P copied).
    fn encode_answer(&self, request: &Header) -> Vec<u8> {
        let mut v = Vec::with_capacity(256);
        self.encode_into(&request.answer(), &mut v);
        v
    }
}
