//! Stream framing (RFC 3261 §18.3, RFC 5626 §3.5.1 keep-alives).

use crate::error::{ErrorKind, ParseError};
use crate::message::{OwnedMessage, ParserConfig, Status};
use bytes::{Buf, BytesMut};

/// What a [`Framer`] yields.
// A message is the common case; boxing it would cost an allocation per message.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum Frame {
    /// A complete message.
    Message(OwnedMessage),
    /// A double-CRLF keep-alive ping (RFC 5626 §3.5.1); a server answers with a single CRLF.
    Ping,
    /// A single-CRLF keep-alive pong (the answer to a ping).
    Pong,
}

/// Cuts a byte stream (TCP, TLS) into SIP messages. Feed bytes in any split with
/// [`Framer::push`], then call [`Framer::next_frame`] until it returns `Ok(None)`.
///
/// After an error the stream cannot be resynchronised: answer 400 if possible and close the
/// connection (RFC 3261 §18.3).
///
/// ```
/// use ims_sip::{Frame, Framer};
/// let mut f = Framer::default();
/// let msg = b"OPTIONS sip:a@example.com SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK1\r\n\
/// To: <sip:a@example.com>\r\nFrom: <sip:b@example.com>;tag=1\r\nCall-ID: x\r\nCSeq: 1 OPTIONS\r\n\
/// Content-Length: 0\r\n\r\n";
/// f.push(b"\r\n\r\n").unwrap();
/// f.push(&msg[..20]).unwrap();
/// assert!(matches!(f.next_frame(), Ok(Some(Frame::Ping))));
/// assert!(matches!(f.next_frame(), Ok(None)));
/// f.push(&msg[20..]).unwrap();
/// assert!(matches!(f.next_frame(), Ok(Some(Frame::Message(_)))));
/// ```
#[derive(Debug)]
pub struct Framer {
    buf: BytesMut,
    cfg: ParserConfig,
    /// Bytes already searched for the end of the header section.
    scanned: usize,
    /// Total size of the message at the front, once known.
    need: Option<usize>,
    /// Report a lone CRLF as a pong at once (client side) instead of waiting to see whether it is
    /// the first half of a ping (server side).
    eager_pong: bool,
}

impl Default for Framer {
    fn default() -> Self {
        Framer::new(ParserConfig::default())
    }
}

impl Framer {
    /// A framer with this configuration.
    pub fn new(cfg: ParserConfig) -> Self {
        Framer {
            buf: BytesMut::new(),
            cfg,
            scanned: 0,
            need: None,
            eager_pong: false,
        }
    }
    /// A framer for the client side of a flow (RFC 5626 §4.4.1): the peer answers pings with a
    /// single CRLF, so a lone CRLF is a [`Frame::Pong`] as soon as it arrives. A server-side framer
    /// (the default) waits for the next bytes, because a lone CRLF may be half of a ping.
    pub fn client(cfg: ParserConfig) -> Self {
        Framer {
            eager_pong: true,
            ..Framer::new(cfg)
        }
    }
    /// Appends received bytes. Fails when more than one message's worth is buffered.
    pub fn push(&mut self, data: &[u8]) -> Result<(), ParseError> {
        if self.buf.len() + data.len() > self.cfg.limits.max_message_size.saturating_mul(2) {
            return Err(ParseError::new(ErrorKind::MessageTooLarge, self.buf.len()));
        }
        self.buf.extend_from_slice(data);
        Ok(())
    }
    /// Bytes buffered and not yet returned.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }
    /// The next frame, `Ok(None)` when more bytes are needed.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, ParseError> {
        if self.need.is_none() && self.scanned == 0 {
            // keep-alives and CRLFs between messages (RFC 3261 §7.5: ignore CRLF before a start line)
            if self.buf.starts_with(b"\r\n\r\n") {
                self.buf.advance(4);
                return Ok(Some(Frame::Ping));
            }
            if self.buf.starts_with(b"\r\n") {
                // "\r\n" alone or "\r\n\r" may still become a ping; anything longer that is not one
                // ("\r\n\r\n" was taken above) starts with a lone CRLF
                let maybe_ping = match self.buf.len() {
                    2 => !self.eager_pong,
                    3 => self.buf[2] == b'\r',
                    _ => false,
                };
                if maybe_ping {
                    return Ok(None);
                }
                self.buf.advance(2);
                return Ok(Some(Frame::Pong));
            }
            if self.buf.as_ref() == b"\r" {
                return Ok(None);
            }
            if self.cfg.allow_lf_line_endings && self.buf.first() == Some(&b'\n') {
                self.buf.advance(1);
                return Ok(Some(Frame::Pong));
            }
        }
        if let Some(n) = self.need {
            if self.buf.len() < n {
                return Ok(None);
            }
        } else {
            // look for the end of the header section from where the last search stopped
            let from = self.scanned.saturating_sub(3);
            let found = if self.cfg.allow_lf_line_endings {
                // a line end (LF or CRLF) followed by an empty line (LF or CRLF): the earliest "\n\n"
                // or "\n\r\n" covers all four combinations
                let from = from.saturating_sub(1);
                let a = memchr::memmem::find(&self.buf[from..], b"\n\n").map(|i| from + i + 2);
                let b = memchr::memmem::find(&self.buf[from..], b"\n\r\n").map(|i| from + i + 3);
                match (a, b) {
                    (Some(x), Some(y)) => Some(x.min(y)),
                    (x, y) => x.or(y),
                }
            } else {
                memchr::memmem::find(&self.buf[from..], b"\r\n\r\n").map(|i| from + i + 4)
            };
            if found.is_none() {
                self.scanned = self.buf.len();
                if self.buf.len() > self.cfg.limits.max_message_size {
                    return Err(ParseError::new(ErrorKind::MessageTooLarge, self.buf.len()));
                }
                // reject garbage early: the first line must look like a start line
                if let Some(eol) = memchr::memchr(b'\n', &self.buf) {
                    self.cfg.parse(&self.buf[..eol + 1]).map(|_| ())?;
                }
                return Ok(None);
            }
            match self.cfg.parse(&self.buf)? {
                Status::Complete((_, n)) => self.need = Some(n),
                Status::Partial(Some(more)) => {
                    self.need = Some(self.buf.len() + more);
                    self.scanned = self.buf.len();
                    return Ok(None);
                }
                Status::Partial(None) => return Ok(None),
            }
        }
        let n = self.need.take().expect("set above");
        if self.buf.len() < n {
            self.need = Some(n);
            return Ok(None);
        }
        self.scanned = 0;
        let bytes = self.buf.split_to(n).freeze();
        Ok(Some(Frame::Message(OwnedMessage::parse_with(
            bytes, &self.cfg,
        )?)))
    }
}
