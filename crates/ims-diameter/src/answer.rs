//! Answers built from requests (RFC 6733 §6.2), the protocol and permanent-failure answers a
//! receiver sends for a faulty request (§7.1–7.5), and [`validate`], which runs the typed decoder
//! of any command this crate knows.

use crate::avp::{padded, read_header, AvpFlags};
use crate::dict::{self, app, command as cmd};
use crate::encode::{encode_message, EncodeBuf, Encoder};
use crate::error::{Error, ErrorKind};
use crate::message::{Flags, Header, Message, HEADER_LEN};
use crate::Command;

/// Who answers: the Origin-* AVPs every answer carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Origin<'a> {
    /// Origin-Host.
    pub host: &'a str,
    /// Origin-Realm.
    pub realm: &'a str,
    /// Origin-State-Id, if the node sends one.
    pub state_id: Option<u32>,
}

/// Walks the top-level AVPs of possibly broken octets as far as they are well formed, yielding
/// `(offset, code, flags, vendor, data)`. Copies into the answer clear the reserved flag bits, so
/// the answer is well formed whatever the request was.
fn lenient_avps(msg: &[u8]) -> impl Iterator<Item = (usize, u32, u8, u32, &[u8])> {
    let mut pos = HEADER_LEN;
    std::iter::from_fn(move || {
        let rest = msg.get(pos..)?;
        let (code, flags, vendor, hlen, len) = read_header(rest)?;
        if len < hlen || len > rest.len() {
            return None;
        }
        let at = pos;
        pos += padded(len);
        Some((at, code, flags, vendor, &rest[hlen..len]))
    })
}

/// The octets of the message as far as its Message Length says (and the buffer holds).
fn message_span<'r>(request: &'r [u8], header: &Header) -> &'r [u8] {
    let len = (header.length as usize).max(HEADER_LEN).min(request.len());
    &request[..len]
}

/// Writes the Failed-AVP content for `err` (RFC 6733 §7.5, §7.1.5), if the fault names an AVP.
fn failed_avp<B: EncodeBuf>(enc: &mut Encoder<'_, B>, msg: &[u8], err: &Error) {
    let Some(id) = err.avp else { return };
    let def = dict::lookup(id.code, id.vendor);
    let minimal = |enc: &mut Encoder<'_, B>, flags: AvpFlags| {
        let n = def.map_or(0, |d| d.ty.min_len());
        enc.grouped(dict::FAILED_AVP, |e| {
            e.raw(id.code, flags, id.vendor, &[0u8; 8][..n]);
        });
    };
    match err.kind {
        ErrorKind::MissingAvp => {
            let flags = def.map_or(AvpFlags(AvpFlags::MANDATORY), |d| d.flags());
            minimal(enc, flags);
        }
        ErrorKind::InvalidAvpLength
        | ErrorKind::InvalidAvpBits
        | ErrorKind::InvalidAvpValue
        | ErrorKind::AvpNotAllowed
        | ErrorKind::AvpOccursTooManyTimes
        | ErrorKind::AvpUnsupported
        | ErrorKind::LimitExceeded => {
            let rest = msg.get(err.offset..).unwrap_or(&[]);
            match read_header(rest) {
                // a copy of the AVP as received when its length is sane
                Some((code, flags, vendor, hlen, len)) if len >= hlen && len <= rest.len() => {
                    // reserved bits are cleared so the answer itself is well formed
                    let flags = AvpFlags(flags & !AvpFlags::RESERVED);
                    enc.grouped(dict::FAILED_AVP, |e| {
                        e.raw(code, flags, vendor, &rest[hlen..len])
                    });
                }
                // otherwise the header with a zero-filled minimal payload
                Some((_, flags, _, _, _)) => minimal(enc, AvpFlags(flags & !AvpFlags::RESERVED)),
                None => minimal(enc, AvpFlags(AvpFlags::MANDATORY)),
            }
        }
        _ => {}
    }
}

/// Auth-Session-State NO_STATE_MAINTAINED (RFC 6733 §8.11).
const NO_STATE_MAINTAINED: u32 = 1;

/// An application whose answers require `{ Auth-Session-State }`, always NO_STATE_MAINTAINED:
/// Cx/Dx (TS 29.229 §6.1), S6c (TS 29.338 §5.3.2) and SGd (TS 29.338 §6.3.2).
fn stateless_application(application_id: u32) -> bool {
    matches!(application_id, app::CX | app::S6C | app::SGD)
}

/// The answer a receiver sends for `err`, found in `request` (the octets as received): the header
/// of [`Header::answer`] (E bit set for 3xxx), Session-Id copied, Origin-Host/-Realm/-State-Id,
/// Result-Code, Error-Message, the Failed-AVP the RFC asks for, and the Proxy-Info AVPs copied in
/// order. For an application's permanent failure (5xxx) the Vendor-Specific-Application-Id,
/// Auth-Application-Id and Auth-Session-State of the request are copied too, so the answer also
/// satisfies the answer's grammar (e.g. SAA, TS 29.229 §6.1.4).
///
/// `None` when there is nothing to answer: not a request, fewer than 20 octets, or a fault with no
/// result code (an incomplete buffer).
pub fn error_answer(request: &[u8], err: &Error, origin: &Origin<'_>) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(256);
    error_answer_into(request, err, origin, &mut out)?;
    Some(out)
}

/// [`error_answer`] appending to a buffer; returns the answer's length.
pub fn error_answer_into<B: EncodeBuf>(
    request: &[u8],
    err: &Error,
    origin: &Origin<'_>,
    out: &mut B,
) -> Option<usize> {
    let rc = err.result_code()?;
    let req = Header::parse(request).ok()?;
    if !req.flags.is_request() {
        return None;
    }
    let msg = message_span(request, &req);
    let mut header = req.answer();
    let protocol = err.kind.is_protocol_error();
    if protocol {
        header.flags = Flags(header.flags.0 | Flags::ERROR);
    }
    let avps: Vec<_> = lenient_avps(msg).collect();
    let find = |d: &dict::AvpDef| {
        avps.iter()
            .find(|a| a.1 == d.code && a.3 == d.vendor)
            .copied()
    };
    let text = err.kind.to_string();
    Some(encode_message(out, &header, |e| {
        if let Some(s) = find(dict::SESSION_ID) {
            e.octets(dict::SESSION_ID, s.4);
        }
        if !protocol {
            for d in [
                dict::VENDOR_SPECIFIC_APPLICATION_ID,
                dict::AUTH_APPLICATION_ID,
            ] {
                if let Some(a) = find(d) {
                    e.raw(a.1, AvpFlags(a.2 & !AvpFlags::RESERVED), a.3, a.4);
                }
            }
        }
        e.u32(dict::RESULT_CODE, rc);
        if !protocol {
            match find(dict::AUTH_SESSION_STATE) {
                Some(a) => e.raw(a.1, AvpFlags(a.2 & !AvpFlags::RESERVED), a.3, a.4),
                // a request lacking it still gets it where the answer requires it
                None if stateless_application(req.application_id) => {
                    e.u32(dict::AUTH_SESSION_STATE, NO_STATE_MAINTAINED)
                }
                None => {}
            }
        }
        e.utf8(dict::ORIGIN_HOST, origin.host);
        e.utf8(dict::ORIGIN_REALM, origin.realm);
        if let Some(s) = origin.state_id {
            e.u32(dict::ORIGIN_STATE_ID, s);
        }
        e.utf8(dict::ERROR_MESSAGE, &text);
        failed_avp(e, msg, err);
        for a in avps
            .iter()
            .filter(|a| a.1 == dict::PROXY_INFO.code && a.3 == 0)
        {
            e.raw(a.1, AvpFlags(a.2 & !AvpFlags::RESERVED), a.3, a.4);
        }
    }))
}

/// Checks a request the way a server of `applications` must before acting on it (RFC 6733 §6.1,
/// §7.1): an Application-Id it does not serve is 3007, a command code the application does not
/// define is 3001, then the typed decoder's grammar and value checks ([`validate`]).
pub fn check_request(msg: &Message<'_>, applications: &[u32]) -> Result<(), Error> {
    let a = msg.application_id();
    if a != app::COMMON && a != app::RELAY && !applications.contains(&a) {
        return Err(Error::new(ErrorKind::ApplicationUnsupported, 8));
    }
    validate(msg)
}

/// Runs the typed decoder of the command (any this crate knows, request or answer), so every
/// grammar rule and value is checked. Unknown command codes are 3001, unknown applications 3007.
pub fn validate(msg: &Message<'_>) -> Result<(), Error> {
    use crate::{base::*, cx::*, rx::*};
    fn run<'a, C: Command<'a>>(m: &Message<'a>) -> Result<(), Error> {
        C::decode(m).map(drop)
    }
    let r = msg.is_request();
    let app_id = msg.application_id();
    if !r && msg.flags().is_error() {
        return AnswerMessage::decode(msg).map(drop);
    }
    match (msg.code(), r) {
        (257, true) => return run::<Cer<'_>>(msg),
        (257, false) => return run::<Cea<'_>>(msg),
        (280, true) => return run::<Dwr<'_>>(msg),
        (280, false) => return run::<Dwa<'_>>(msg),
        (282, true) => return run::<Dpr<'_>>(msg),
        (282, false) => return run::<Dpa<'_>>(msg),
        _ => {}
    }
    match app_id {
        app::CX => match (msg.code(), r) {
            (300, true) => run::<Uar<'_>>(msg),
            (300, false) => run::<Uaa<'_>>(msg),
            (301, true) => run::<Sar<'_>>(msg),
            (301, false) => run::<Saa<'_>>(msg),
            (302, true) => run::<Lir<'_>>(msg),
            (302, false) => run::<Lia<'_>>(msg),
            (303, true) => run::<Mar<'_>>(msg),
            (303, false) => run::<Maa<'_>>(msg),
            (304, true) => run::<Rtr<'_>>(msg),
            (304, false) => run::<Rta<'_>>(msg),
            (305, true) => run::<Ppr<'_>>(msg),
            (305, false) => run::<Ppa<'_>>(msg),
            _ => Err(Error::new(ErrorKind::CommandUnsupported, 5)),
        },
        app::RX => match (msg.code(), r) {
            (265, true) => run::<Aar<'_>>(msg),
            (265, false) => run::<Aaa<'_>>(msg),
            (258, true) => run::<Rar<'_>>(msg),
            (258, false) => run::<Raa<'_>>(msg),
            (275, true) => run::<Str<'_>>(msg),
            (275, false) => run::<Sta<'_>>(msg),
            (274, true) => run::<Asr<'_>>(msg),
            (274, false) => run::<Asa<'_>>(msg),
            _ => Err(Error::new(ErrorKind::CommandUnsupported, 5)),
        },
        app::SGD => match (msg.code(), r) {
            (cmd::MO_FORWARD_SHORT_MESSAGE, true) => run::<crate::sgd::Ofr<'_>>(msg),
            (cmd::MO_FORWARD_SHORT_MESSAGE, false) => run::<crate::sgd::Ofa<'_>>(msg),
            (cmd::MT_FORWARD_SHORT_MESSAGE, true) => run::<crate::sgd::Tfr<'_>>(msg),
            (cmd::MT_FORWARD_SHORT_MESSAGE, false) => run::<crate::sgd::Tfa<'_>>(msg),
            _ => Err(Error::new(ErrorKind::CommandUnsupported, 5)),
        },
        app::S6C => match (msg.code(), r) {
            (cmd::SEND_ROUTING_INFO_FOR_SM, true) => run::<crate::s6c::Srr<'_>>(msg),
            (cmd::SEND_ROUTING_INFO_FOR_SM, false) => run::<crate::s6c::Sra<'_>>(msg),
            (cmd::ALERT_SERVICE_CENTRE, true) => run::<crate::s6c::Alr<'_>>(msg),
            (cmd::ALERT_SERVICE_CENTRE, false) => run::<crate::s6c::Ala<'_>>(msg),
            (cmd::REPORT_SM_DELIVERY_STATUS, true) => run::<crate::s6c::Rdr<'_>>(msg),
            (cmd::REPORT_SM_DELIVERY_STATUS, false) => run::<crate::s6c::Rda<'_>>(msg),
            _ => Err(Error::new(ErrorKind::CommandUnsupported, 5)),
        },
        app::COMMON | app::RELAY => Err(Error::new(ErrorKind::CommandUnsupported, 5)),
        _ => Err(Error::new(ErrorKind::ApplicationUnsupported, 8)),
    }
}

/// Decodes `buf` as a request the way a server does, returning the answer to send when it is
/// faulty: the header checks and AVP walk of [`Message::parse`], then [`check_request`].
/// `Ok(None)` when the request is valid (answer it yourself); `Err` when there is nothing to
/// answer (incomplete, or not a request).
pub fn reject(
    buf: &[u8],
    applications: &[u32],
    origin: &Origin<'_>,
) -> Result<Option<Vec<u8>>, Error> {
    let err = match Message::parse(buf) {
        Ok(m) => match check_request(&m, applications) {
            Ok(()) => return Ok(None),
            Err(e) => e,
        },
        Err(e) => e,
    };
    match error_answer(buf, &err, origin) {
        Some(a) => Ok(Some(a)),
        None => Err(err),
    }
}
