//! tokio-util codec around [`Framer`] (feature `tokio`).

use crate::framer::{Frame, Framer};
use crate::message::{Message, OwnedMessage, ParserConfig};
use crate::ParseError;
use bytes::BytesMut;

/// Errors of [`SipCodec`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CodecError {
    /// The transport failed.
    #[error("transport: {0}")]
    Io(#[from] std::io::Error),
    /// The peer sent bytes that are not SIP; the stream cannot be resynchronised.
    #[error("framing: {0}")]
    Parse(#[from] ParseError),
}

/// A `tokio_util::codec` Decoder/Encoder for SIP over TCP/TLS: decodes [`Frame`]s (messages and
/// RFC 5626 keep-alives), encodes messages or raw bytes.
#[derive(Debug, Default)]
pub struct SipCodec {
    framer: Framer,
}

impl SipCodec {
    /// A codec with this parser configuration.
    pub fn new(cfg: ParserConfig) -> Self {
        SipCodec {
            framer: Framer::new(cfg),
        }
    }
}

impl tokio_util::codec::Decoder for SipCodec {
    type Item = Frame;
    type Error = CodecError;
    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, CodecError> {
        if !src.is_empty() {
            self.framer.push(src)?;
            src.clear();
        }
        Ok(self.framer.next_frame()?)
    }
}

impl tokio_util::codec::Encoder<&OwnedMessage> for SipCodec {
    type Error = CodecError;
    fn encode(&mut self, item: &OwnedMessage, dst: &mut BytesMut) -> Result<(), CodecError> {
        dst.extend_from_slice(item.bytes());
        Ok(())
    }
}

impl tokio_util::codec::Encoder<&Message<'_>> for SipCodec {
    type Error = CodecError;
    fn encode(&mut self, item: &Message<'_>, dst: &mut BytesMut) -> Result<(), CodecError> {
        dst.extend_from_slice(item.as_bytes());
        Ok(())
    }
}

impl tokio_util::codec::Encoder<&[u8]> for SipCodec {
    type Error = CodecError;
    fn encode(&mut self, item: &[u8], dst: &mut BytesMut) -> Result<(), CodecError> {
        dst.extend_from_slice(item);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio_util::codec::{Decoder, Encoder};

    #[test]
    fn decode_in_pieces() {
        let msg =
            b"SIP/2.0 200 OK\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK1\r\nTo: <sip:a@b.c>;tag=2\r\n\
From: <sip:b@b.c>;tag=1\r\nCall-ID: x\r\nCSeq: 1 OPTIONS\r\nContent-Length: 3\r\n\r\nabc";
        let mut c = SipCodec::default();
        let mut buf = BytesMut::new();
        let mut got = Vec::new();
        for chunk in msg.chunks(7).chain(std::iter::once(&b"\r\n\r\n"[..])) {
            buf.extend_from_slice(chunk);
            while let Some(f) = c.decode(&mut buf).unwrap() {
                got.push(f);
            }
        }
        assert!(matches!(&got[0], Frame::Message(m) if m.as_message().body() == b"abc"));
        assert!(matches!(got[1], Frame::Ping));
        let mut out = BytesMut::new();
        let Frame::Message(m) = &got[0] else {
            unreachable!()
        };
        c.encode(m, &mut out).unwrap();
        assert_eq!(&out[..], &msg[..]);
    }
}
