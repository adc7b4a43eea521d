//! Stream framing: Diameter over TCP (RFC 6733 §2.1) is a sequence of length-prefixed messages.

use crate::error::Error;
use crate::message::{frame_length, Limits, HEADER_LEN};
use bytes::{Bytes, BytesMut};

/// Cuts a byte stream into whole messages: feed any chunk with [`Framer::push`], then take every
/// complete message with [`Framer::next_frame`] (partial reads and several messages per read both
/// work).
///
/// A Message Length below 20 or above `Limits::max_message_size` is an error after which the stream
/// cannot be resynchronised: close the connection. Other faults of a frame (version, flags, AVPs)
/// are found by [`crate::Message::parse`] on the frame, and the connection can continue.
#[derive(Debug, Default)]
pub struct Framer {
    buf: BytesMut,
    limits: Limits,
}

impl Framer {
    /// A framer with default limits.
    pub fn new() -> Framer {
        Framer::default()
    }

    /// A framer with these limits.
    pub fn with_limits(limits: Limits) -> Framer {
        Framer {
            buf: BytesMut::new(),
            limits,
        }
    }

    /// Appends received octets.
    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// Octets buffered and not yet returned.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// The next complete message, `Ok(None)` when more octets are needed.
    pub fn next_frame(&mut self) -> Result<Option<Bytes>, Error> {
        Ok(decode_frame(&mut self.buf, &self.limits)?.map(BytesMut::freeze))
    }

    /// How many more octets complete the next message (at least 1 when one is pending, 0 when
    /// empty).
    pub fn needed(&self) -> usize {
        match frame_length(&self.buf, &self.limits) {
            Ok(Some(n)) => n.saturating_sub(self.buf.len()),
            Ok(None) => HEADER_LEN - self.buf.len(),
            Err(_) => 0,
        }
    }
}

/// Splits one complete message off the front of `buf`, `Ok(None)` when it is not complete yet.
pub fn decode_frame(buf: &mut BytesMut, limits: &Limits) -> Result<Option<BytesMut>, Error> {
    match frame_length(buf, limits)? {
        Some(n) if buf.len() >= n.max(HEADER_LEN) => Ok(Some(buf.split_to(n))),
        _ => Ok(None),
    }
}

#[cfg(feature = "tokio")]
mod codec {
    use super::decode_frame;
    use crate::error::Error;
    use crate::message::{Limits, OwnedMessage};
    use bytes::BytesMut;

    /// A `tokio_util::codec` Decoder/Encoder: decodes [`OwnedMessage`]s (framing errors end the
    /// stream; per-message faults are returned as `Err` too, so answer them and go on), and encodes
    /// ready message octets.
    #[derive(Debug, Default, Clone)]
    pub struct DiameterCodec {
        /// The limits every frame is parsed with.
        pub limits: Limits,
    }

    /// A codec error: a Diameter fault or an I/O error of the transport.
    #[derive(Debug, thiserror::Error)]
    #[non_exhaustive]
    pub enum CodecError {
        /// The frame or the stream is invalid.
        #[error("diameter: {0}")]
        Diameter(#[from] Error),
        /// The transport failed.
        #[error("io: {0}")]
        Io(#[from] std::io::Error),
    }

    impl tokio_util::codec::Decoder for DiameterCodec {
        type Item = OwnedMessage;
        type Error = CodecError;
        fn decode(&mut self, src: &mut BytesMut) -> Result<Option<OwnedMessage>, CodecError> {
            match decode_frame(src, &self.limits)? {
                Some(frame) => Ok(Some(OwnedMessage::parse(frame.freeze(), &self.limits)?)),
                None => Ok(None),
            }
        }
    }

    impl<T: AsRef<[u8]>> tokio_util::codec::Encoder<T> for DiameterCodec {
        type Error = CodecError;
        fn encode(&mut self, item: T, dst: &mut BytesMut) -> Result<(), CodecError> {
            dst.extend_from_slice(item.as_ref());
            Ok(())
        }
    }
}

#[cfg(feature = "tokio")]
pub use codec::{CodecError, DiameterCodec};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    fn dwr(hbh: u32) -> Vec<u8> {
        let mut v = vec![1, 0, 0, 36, 0x80, 0, 1, 24, 0, 0, 0, 0];
        v.extend_from_slice(&hbh.to_be_bytes());
        v.extend_from_slice(&[0, 0, 0, 1]);
        // Origin-Host "a.b" + Origin-Realm "b"
        v.extend_from_slice(&[0, 0, 1, 8, 0x40, 0, 0, 11, b'a', b'.', b'b', 0]);
        v.extend_from_slice(&[0, 0, 1, 0x28, 0x40, 0, 0, 9, b'b', 0, 0, 0]);
        let n = v.len() as u8;
        v[3] = n;
        v
    }

    #[test]
    fn partial_and_multiple() {
        let mut all = dwr(1);
        all.extend(dwr(2));
        all.extend(dwr(3));
        for split in 0..all.len() {
            let mut f = Framer::new();
            let mut got = Vec::new();
            for part in [&all[..split], &all[split..]] {
                for b in part.chunks(7) {
                    f.push(b);
                    while let Some(m) = f.next_frame().unwrap() {
                        got.push(m);
                    }
                }
            }
            assert_eq!(got.len(), 3, "split {split}");
            assert_eq!(got.concat(), all);
            assert_eq!(f.buffered(), 0);
        }
    }

    #[test]
    fn unframeable() {
        let mut f = Framer::new();
        f.push(&[1, 0, 0, 0, 0x80]);
        assert_eq!(
            f.next_frame().unwrap_err().kind,
            ErrorKind::InvalidMessageLength
        );
        let mut f = Framer::with_limits(Limits {
            max_message_size: 100,
            ..Limits::default()
        });
        f.push(&[1, 0, 1, 0]);
        assert_eq!(f.next_frame().unwrap_err().kind, ErrorKind::MessageTooLarge);
        let mut f = Framer::new();
        f.push(&[1, 0, 0]);
        assert_eq!(f.next_frame().unwrap(), None);
        assert_eq!(f.needed(), 17);
    }
}
