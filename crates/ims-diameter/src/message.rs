//! The message view (RFC 6733 §3): a validated header over borrowed octets and a lazy AVP iterator.

use crate::avp::{check_chain, Avp, AvpIter};
use crate::dict::{self, AvpDef};
use crate::error::{Error, ErrorKind};
use crate::result::Outcome;
use bytes::Bytes;

/// Size of the Diameter header.
pub const HEADER_LEN: usize = 20;

/// Command flags (RFC 6733 §3): `R P E T r r r r`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Flags(pub u8);

impl Flags {
    /// R: the message is a request.
    pub const REQUEST: u8 = 0x80;
    /// P: the message may be proxied, relayed or redirected.
    pub const PROXIABLE: u8 = 0x40;
    /// E: the answer carries a protocol error (3xxx).
    pub const ERROR: u8 = 0x20;
    /// T: potentially retransmitted after a link failover.
    pub const RETRANSMIT: u8 = 0x10;
    /// The reserved bits r(4)-r(7), which must be zero.
    pub const RESERVED: u8 = 0x0f;

    /// R bit.
    pub const fn is_request(self) -> bool {
        self.0 & Self::REQUEST != 0
    }
    /// P bit.
    pub const fn is_proxiable(self) -> bool {
        self.0 & Self::PROXIABLE != 0
    }
    /// E bit.
    pub const fn is_error(self) -> bool {
        self.0 & Self::ERROR != 0
    }
    /// T bit.
    pub const fn is_retransmit(self) -> bool {
        self.0 & Self::RETRANSMIT != 0
    }
}

/// The 20-octet Diameter header (RFC 6733 §3), as plain values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Header {
    /// Version, 1.
    pub version: u8,
    /// Message Length including the header (filled in by the encoder).
    pub length: u32,
    /// Command flags.
    pub flags: Flags,
    /// Command Code (24 bits).
    pub code: u32,
    /// Application-Id.
    pub application_id: u32,
    /// Hop-by-Hop Identifier.
    pub hop_by_hop: u32,
    /// End-to-End Identifier.
    pub end_to_end: u32,
}

impl Header {
    /// A request header with version 1 and the R bit (plus P when `proxiable`).
    pub const fn request(
        code: u32,
        application_id: u32,
        proxiable: bool,
        hop_by_hop: u32,
        end_to_end: u32,
    ) -> Header {
        Header {
            version: 1,
            length: 0,
            flags: Flags(Flags::REQUEST | if proxiable { Flags::PROXIABLE } else { 0 }),
            code,
            application_id,
            hop_by_hop,
            end_to_end,
        }
    }

    /// The header of the answer to this request (RFC 6733 §6.2): same code, Application-Id,
    /// Hop-by-Hop and End-to-End identifiers; R, E and T cleared, P copied.
    pub const fn answer(&self) -> Header {
        Header {
            version: 1,
            length: 0,
            flags: Flags(self.flags.0 & Flags::PROXIABLE),
            code: self.code,
            application_id: self.application_id,
            hop_by_hop: self.hop_by_hop,
            end_to_end: self.end_to_end,
        }
    }

    /// Reads the 20 header octets without judging them (see [`Header::check`]).
    pub fn parse(buf: &[u8]) -> Result<Header, Error> {
        let Some(h) = buf.get(..HEADER_LEN) else {
            return Err(Error::new(
                ErrorKind::Truncated {
                    needed: HEADER_LEN - buf.len(),
                },
                buf.len(),
            ));
        };
        let be = |i: usize| u32::from_be_bytes([h[i], h[i + 1], h[i + 2], h[i + 3]]);
        Ok(Header {
            version: h[0],
            length: be(0) & 0x00ff_ffff,
            flags: Flags(h[4]),
            code: be(4) & 0x00ff_ffff,
            application_id: be(8),
            hop_by_hop: be(12),
            end_to_end: be(16),
        })
    }

    /// Checks the header rules of RFC 6733 §3 in the order a receiver answers them: Message Length
    /// at least 20 (5015), Version 1 (5011), no reserved flag bits and no E bit on a request (3008),
    /// Message Length a multiple of 4 (5015).
    pub fn check(&self) -> Result<(), Error> {
        if (self.length as usize) < HEADER_LEN {
            return Err(Error::new(ErrorKind::InvalidMessageLength, 1));
        }
        if self.version != 1 {
            return Err(Error::new(ErrorKind::UnsupportedVersion(self.version), 0));
        }
        if self.flags.0 & Flags::RESERVED != 0 || (self.flags.is_request() && self.flags.is_error())
        {
            return Err(Error::new(ErrorKind::InvalidHeaderBits, 4));
        }
        if self.length % 4 != 0 {
            return Err(Error::new(ErrorKind::InvalidMessageLength, 1));
        }
        Ok(())
    }

    /// The 20 octets of this header (with `length` as it is).
    #[inline]
    pub fn to_bytes(&self) -> [u8; HEADER_LEN] {
        // three big-endian words (Version|Length|Flags|Code, Application-Id|Hop-by-Hop,
        // End-to-End): three stores instead of one per octet
        let w0 = (u64::from(self.version) << 56)
            | (u64::from(self.length & 0x00ff_ffff) << 32)
            | (u64::from(self.flags.0) << 24)
            | u64::from(self.code & 0x00ff_ffff);
        let w1 = (u64::from(self.application_id) << 32) | u64::from(self.hop_by_hop);
        let mut b = [0u8; HEADER_LEN];
        b[0..8].copy_from_slice(&w0.to_be_bytes());
        b[8..16].copy_from_slice(&w1.to_be_bytes());
        b[16..20].copy_from_slice(&self.end_to_end.to_be_bytes());
        b
    }
}

/// Bounds every decoder applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest Message Length accepted (default 1 MiB; the field allows 16 MiB).
    pub max_message_size: usize,
    /// Deepest nesting of Grouped AVPs (default 16; the top level is depth 0).
    pub max_depth: u8,
    /// Most AVPs at one level of a message or group (default 4096).
    pub max_avps: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message_size: 1 << 20,
            max_depth: 16,
            max_avps: 4096,
        }
    }
}

/// The length of the message at the start of `buf`, for stream framing.
///
/// `Ok(None)`: fewer than 4 octets, the length is not known yet. `Ok(Some(n))`: the message is `n`
/// octets (which may be more than `buf` holds). `Err(InvalidMessageLength)`: Message Length below
/// 20, the stream cannot be resynchronised and must be closed. `Err(MessageTooLarge)`: above
/// `limits.max_message_size`.
pub fn frame_length(buf: &[u8], limits: &Limits) -> Result<Option<usize>, Error> {
    let Some(h) = buf.get(..4) else {
        return Ok(None);
    };
    let len = (u32::from_be_bytes([0, h[1], h[2], h[3]])) as usize;
    if len < HEADER_LEN {
        return Err(Error::new(ErrorKind::InvalidMessageLength, 1));
    }
    if len > limits.max_message_size {
        return Err(Error::new(ErrorKind::MessageTooLarge, 1));
    }
    Ok(Some(len))
}

/// A Diameter message over borrowed octets: the header is checked and the top-level AVPs are
/// walked once at parse time (lengths, padding, reserved bits), so [`Message::avps`] never fails.
/// Grouped AVPs are checked when opened ([`Avp::grouped`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Message<'a> {
    buf: &'a [u8],
    header: Header,
    max_depth: u8,
    max_avps: u32,
}

impl<'a> Message<'a> {
    /// Parses the message at the start of `buf` with default [`Limits`]. Octets after Message
    /// Length are ignored; a shorter buffer gives [`ErrorKind::Truncated`].
    pub fn parse(buf: &'a [u8]) -> Result<Message<'a>, Error> {
        Self::parse_with(buf, &Limits::default())
    }

    /// Parses with the given limits.
    pub fn parse_with(buf: &'a [u8], limits: &Limits) -> Result<Message<'a>, Error> {
        let m = Self::parse_header_with(buf, limits)?;
        m.check_avps(limits)?;
        Ok(m)
    }

    /// The header checks of [`Message::parse_with`] (framing, version, flags, length) without the
    /// walk of the AVP chain: for [`crate::Command::decode_message`], which checks each AVP as
    /// its typed decoder reaches it and so walks the chain once instead of twice. The result must
    /// not escape unless the chain was walked to its end without error, or
    /// [`Message::check_avps`] passed.
    #[inline]
    pub(crate) fn parse_header_with(buf: &'a [u8], limits: &Limits) -> Result<Message<'a>, Error> {
        let header = Header::parse(buf)?;
        let len = header.length as usize;
        if len >= HEADER_LEN && len > limits.max_message_size {
            return Err(Error::new(ErrorKind::MessageTooLarge, 1));
        }
        if len >= HEADER_LEN && buf.len() < len {
            return Err(Error::new(
                ErrorKind::Truncated {
                    needed: len - buf.len(),
                },
                buf.len(),
            ));
        }
        header.check()?;
        let buf = &buf[..len];
        Ok(Message {
            buf,
            header,
            max_depth: limits.max_depth,
            max_avps: limits.max_avps.min(u32::MAX as usize) as u32,
        })
    }

    /// The walk of [`Message::parse_with`] over the top-level AVP chain (lengths, padding,
    /// reserved bits, `limits.max_avps`).
    #[inline]
    pub(crate) fn check_avps(&self, limits: &Limits) -> Result<(), Error> {
        check_chain(&self.buf[HEADER_LEN..], HEADER_LEN, limits.max_avps)
    }

    /// The top-level AVPs, each checked as it is reached (see [`AvpIter::finish`]).
    #[inline]
    pub(crate) fn avps_lazy(&self) -> AvpIter<'a> {
        self.avps().into_lazy()
    }

    /// The header.
    pub const fn header(&self) -> &Header {
        &self.header
    }
    /// The command flags.
    pub const fn flags(&self) -> Flags {
        self.header.flags
    }
    /// The Command Code.
    pub const fn code(&self) -> u32 {
        self.header.code
    }
    /// The Application-Id.
    pub const fn application_id(&self) -> u32 {
        self.header.application_id
    }
    /// R bit.
    pub const fn is_request(&self) -> bool {
        self.header.flags.is_request()
    }
    /// The Hop-by-Hop Identifier.
    pub const fn hop_by_hop(&self) -> u32 {
        self.header.hop_by_hop
    }
    /// The End-to-End Identifier.
    pub const fn end_to_end(&self) -> u32 {
        self.header.end_to_end
    }
    /// The message octets (exactly Message Length of them).
    pub const fn as_bytes(&self) -> &'a [u8] {
        self.buf
    }
    /// Message Length.
    #[allow(clippy::len_without_is_empty)]
    pub const fn len(&self) -> usize {
        self.buf.len()
    }

    /// The top-level AVPs in wire order.
    pub fn avps(&self) -> AvpIter<'a> {
        AvpIter::new(
            &self.buf[HEADER_LEN..],
            HEADER_LEN,
            0,
            self.max_depth,
            self.max_avps,
        )
    }

    /// The first top-level AVP with this definition's code and vendor.
    pub fn find(&self, def: &AvpDef) -> Option<Avp<'a>> {
        self.avps().find(|a| a.is(def))
    }

    /// Every top-level AVP with this definition's code and vendor.
    pub fn find_all<'d>(&self, def: &'d AvpDef) -> impl Iterator<Item = Avp<'a>> + 'd
    where
        'a: 'd,
    {
        self.avps().filter(move |a| a.is(def))
    }

    /// Session-Id (RFC 6733 §8.8), if present and UTF-8.
    pub fn session_id(&self) -> Option<&'a str> {
        self.find(dict::SESSION_ID).and_then(|a| a.utf8().ok())
    }
    /// Origin-Host, if present and valid.
    pub fn origin_host(&self) -> Option<&'a str> {
        self.find(dict::ORIGIN_HOST).and_then(|a| a.utf8().ok())
    }
    /// Origin-Realm, if present and valid.
    pub fn origin_realm(&self) -> Option<&'a str> {
        self.find(dict::ORIGIN_REALM).and_then(|a| a.utf8().ok())
    }
    /// Destination-Host, if present and valid.
    pub fn destination_host(&self) -> Option<&'a str> {
        self.find(dict::DESTINATION_HOST)
            .and_then(|a| a.utf8().ok())
    }
    /// Destination-Realm, if present and valid.
    pub fn destination_realm(&self) -> Option<&'a str> {
        self.find(dict::DESTINATION_REALM)
            .and_then(|a| a.utf8().ok())
    }

    /// The outcome of an answer: Result-Code, or Experimental-Result {Vendor-Id,
    /// Experimental-Result-Code} when there is no Result-Code.
    pub fn outcome(&self) -> Option<Outcome> {
        if let Some(rc) = self.find(dict::RESULT_CODE).and_then(|a| a.u32().ok()) {
            return Some(Outcome::from_result_code(rc));
        }
        let er = self.find(dict::EXPERIMENTAL_RESULT)?;
        let mut vendor = None;
        let mut code = None;
        for a in er.grouped().ok()? {
            if a.is(dict::VENDOR_ID) {
                vendor = a.u32().ok();
            } else if a.is(dict::EXPERIMENTAL_RESULT_CODE) {
                code = a.u32().ok();
            }
        }
        Some(Outcome::experimental(vendor?, code?))
    }

    /// Copies the octets into an [`OwnedMessage`].
    pub fn to_owned(&self) -> OwnedMessage {
        OwnedMessage {
            bytes: Bytes::copy_from_slice(self.buf),
            header: self.header,
            max_depth: self.max_depth,
            max_avps: self.max_avps,
        }
    }
}

/// A parsed message that owns its octets (a `Bytes`, e.g. a frame cut by the [`crate::Framer`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedMessage {
    bytes: Bytes,
    header: Header,
    max_depth: u8,
    max_avps: u32,
}

impl OwnedMessage {
    /// Parses `bytes` (exactly one message, or a message followed by octets that are dropped).
    pub fn parse(bytes: Bytes, limits: &Limits) -> Result<OwnedMessage, Error> {
        let m = Message::parse_with(&bytes, limits)?;
        let (header, len) = (m.header, m.len());
        let mut bytes = bytes;
        bytes.truncate(len);
        Ok(OwnedMessage {
            bytes,
            header,
            max_depth: limits.max_depth,
            max_avps: limits.max_avps.min(u32::MAX as usize) as u32,
        })
    }

    /// The borrowed view (no re-validation).
    pub fn view(&self) -> Message<'_> {
        Message {
            buf: &self.bytes,
            header: self.header,
            max_depth: self.max_depth,
            max_avps: self.max_avps,
        }
    }

    /// The header.
    pub const fn header(&self) -> &Header {
        &self.header
    }

    /// The octets.
    pub fn bytes(&self) -> &Bytes {
        &self.bytes
    }
}
