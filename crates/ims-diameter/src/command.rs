//! The [`Command`] trait every typed command implements.

use crate::avp::AvpIter;
#[cfg(doc)]
use crate::encode::encode_message;
use crate::encode::{write_message, EncodeBuf, Encoder, Writer};
use crate::error::{Error, ErrorKind};
use crate::grammar::Grammar;
use crate::message::{Flags, Header, Limits, Message};

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
    /// [`Command::decode_avps`] into `out`, which must be `Self::default()`: each value is
    /// decoded in its place (the typed commands of this crate override this; the default
    /// decodes and moves). [`Command::decode_message`] relies on an `Ok` meaning that every AVP
    /// of `avps` was reached and [`AvpIter::finish`] returned `Ok`, as the typed commands do.
    #[inline]
    fn decode_avps_into(avps: AvpIter<'a>, out: &mut Self) -> Result<(), Error> {
        *out = Self::decode_avps(avps)?;
        Ok(())
    }
    /// Appends the AVPs.
    fn encode_avps<B: EncodeBuf>(&self, enc: &mut Encoder<'_, B>);
    /// Writes the AVPs with the typed commands' [`Writer`] (same octets as
    /// [`Command::encode_avps`]; the default goes through it).
    fn write_avps(&self, w: &mut Writer<'_>) {
        let mut v = Vec::new();
        self.encode_avps(&mut Encoder::new(&mut v));
        w.octets(&v);
    }
    /// The command's grammar.
    fn grammar() -> &'static Grammar;

    /// Decodes a message: [`ErrorKind::WrongCommand`] when the code or R bit differ,
    /// [`ErrorKind::ApplicationUnsupported`] (3007) when the Application-Id does.
    fn decode(msg: &Message<'a>) -> Result<Self, Error> {
        check_command::<Self>(msg)?;
        Self::decode_avps(msg.avps())
    }

    /// [`Message::parse`] and [`Command::decode`] in one walk of the AVPs: each top-level AVP is
    /// checked (length, padding, reserved bits) when the typed decoder reaches it instead of in
    /// a walk of its own first, and the command is decoded in place in the result. Same result
    /// and same error as `Message::parse(buf).and_then(|m| Ok((m, Self::decode(&m)?)))`.
    ///
    /// ```
    /// use ims_diameter::{base::Dwr, Command};
    /// use std::borrow::Cow;
    /// let dwr = Dwr {
    ///     origin_host: Cow::Borrowed("pcscf.ims.mnc001.mcc001.3gppnetwork.org"),
    ///     origin_realm: Cow::Borrowed("ims.mnc001.mcc001.3gppnetwork.org"),
    ///     ..Default::default()
    /// };
    /// let bytes = dwr.encode(7, 9);
    /// let (msg, decoded) = Dwr::decode_message(&bytes)?;
    /// assert_eq!((msg.hop_by_hop(), &decoded), (7, &dwr));
    /// # Ok::<(), ims_diameter::Error>(())
    /// ```
    #[inline]
    fn decode_message(buf: &'a [u8]) -> Result<(Message<'a>, Self), Error>
    where
        Self: Default,
    {
        Self::decode_message_with(buf, &Limits::default())
    }

    /// [`Command::decode_message`] with the given limits.
    #[inline]
    fn decode_message_with(buf: &'a [u8], limits: &Limits) -> Result<(Message<'a>, Self), Error>
    where
        Self: Default,
    {
        let m = Message::parse_header_with(buf, limits)?;
        let mut r = Ok((m, Self::default()));
        if let Ok((m, out)) = &mut r {
            if let Err(e) = decode_checked(m, limits, out) {
                r = Err(e);
            }
        }
        r
    }

    /// [`Command::decode_message_with`] into `out`, which must be `Self::default()`: the
    /// command is decoded in its place there (for a command read where it is: the tuple of
    /// [`Command::decode_message`] is a copy of it when the compiler does not build it in the
    /// caller). Returns the message view. After an error `out` holds what was decoded before it.
    ///
    /// ```
    /// use ims_diameter::{base::Dwr, Command, Limits};
    /// let bytes = Dwr { origin_host: "a.example".into(), origin_realm: "example".into(),
    ///     ..Default::default() }.encode(1, 2);
    /// let mut dwr = Dwr::default();
    /// let msg = Dwr::decode_message_into(&bytes, &Limits::default(), &mut dwr)?;
    /// assert_eq!((msg.end_to_end(), &*dwr.origin_host), (2, "a.example"));
    /// # Ok::<(), ims_diameter::Error>(())
    /// ```
    #[inline]
    fn decode_message_into(
        buf: &'a [u8],
        limits: &Limits,
        out: &mut Self,
    ) -> Result<Message<'a>, Error> {
        let m = Message::parse_header_with(buf, limits)?;
        decode_checked(&m, limits, out)?;
        Ok(m)
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

    /// Appends the message with this header (its length is set); returns the length. Written
    /// by [`Command::write_avps`] (see [`Writer`]); same octets as [`encode_message`] with
    /// [`Command::encode_avps`].
    fn encode_into<B: EncodeBuf>(&self, header: &Header, buf: &mut B) -> usize {
        write_message(buf, header, 512, |w| self.write_avps(w))
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

/// The command and AVPs of `m` (its header checked, its AVP chain not yet) into `out`. On `Ok`
/// the typed decoder walked the whole chain and [`AvpIter::finish`] found it sound, so `m`
/// holds what [`Message::parse`] guarantees; on an error, the chain errors `Message::parse`
/// reports come before any command error.
#[inline]
fn decode_checked<'a, C: Command<'a>>(
    m: &Message<'a>,
    limits: &Limits,
    out: &mut C,
) -> Result<(), Error> {
    check_command::<C>(m)
        .and_then(|()| C::decode_avps_into(m.avps_lazy(), out))
        .map_err(|e| m.check_avps(limits).err().unwrap_or(e))
}

/// The code, R bit and Application-Id tests of [`Command::decode`].
#[inline]
fn check_command<'a, C: Command<'a>>(msg: &Message<'a>) -> Result<(), Error> {
    if msg.code() != C::CODE || msg.is_request() != C::REQUEST {
        return Err(Error::new(ErrorKind::WrongCommand, 4));
    }
    if C::APPLICATION_ID != 0 && msg.application_id() != C::APPLICATION_ID {
        return Err(Error::new(ErrorKind::ApplicationUnsupported, 8));
    }
    Ok(())
}
