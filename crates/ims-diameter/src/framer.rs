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
///
/// Octets handed over as [`Bytes`] ([`Framer::push_bytes`]) are not copied while they hold whole
/// messages: each frame is split off them (a shared reference, no allocation); only a partial
/// message at their end is copied into the framer's own buffer.
#[derive(Debug, Default)]
pub struct Framer {
    /// Octets received as `Bytes` and not cut yet (only while `buf` is empty).
    held: Bytes,
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
            held: Bytes::new(),
            buf: BytesMut::new(),
            limits,
        }
    }

    /// Appends received octets (copied).
    pub fn push(&mut self, data: &[u8]) {
        self.unhold();
        self.buf.extend_from_slice(data);
    }

    /// Appends received octets given as [`Bytes`]: kept as they are (not copied) when nothing
    /// else is buffered, so the frames [`Framer::next_frame`] cuts from them share their
    /// storage.
    pub fn push_bytes(&mut self, data: Bytes) {
        if self.buf.is_empty() && self.held.is_empty() {
            self.held = data;
        } else {
            self.push(&data);
        }
    }

    /// Moves held octets into the buffer (they are followed by more, or end in a partial
    /// message).
    fn unhold(&mut self) {
        if !self.held.is_empty() {
            self.buf.extend_from_slice(&self.held);
            self.held = Bytes::new();
        }
    }

    /// Octets buffered and not yet returned.
    pub fn buffered(&self) -> usize {
        self.held.len() + self.buf.len()
    }

    /// The next complete message, `Ok(None)` when more octets are needed.
    pub fn next_frame(&mut self) -> Result<Option<Bytes>, Error> {
        if !self.held.is_empty() {
            match frame_length(&self.held, &self.limits)? {
                Some(n) if self.held.len() >= n => return Ok(Some(self.held.split_to(n))),
                // a partial message: wait for the rest in the buffer
                _ => self.unhold(),
            }
        }
        Ok(decode_frame(&mut self.buf, &self.limits)?.map(BytesMut::freeze))
    }

    /// How many more octets complete the next message (at least 1 when one is pending, 0 when
    /// empty).
    pub fn needed(&self) -> usize {
        // (held octets are only there while the buffer is empty)
        let pending: &[u8] = if self.held.is_empty() {
            &self.buf
        } else {
            &self.held
        };
        match frame_length(pending, &self.limits) {
            Ok(Some(n)) => n.saturating_sub(pending.len()),
            Ok(None) => HEADER_LEN - pending.len(),
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

    /// Octets handed over as `Bytes` (whole messages, partial ones, mixed with copied pushes) cut
    /// into the same frames; whole messages in one `Bytes` are not copied.
    #[test]
    fn bytes_pushed_whole_and_in_parts() {
        let mut all = dwr(1);
        all.extend(dwr(2));
        all.extend(dwr(3));
        let all = Bytes::from(all);
        for split in 0..all.len() {
            for chunk in [7, 44, 50, all.len()] {
                for copy_every in [0usize, 2, 3] {
                    let mut f = Framer::new();
                    let mut got = Vec::new();
                    let mut i = 0;
                    for part in [all.slice(..split), all.slice(split..)] {
                        let mut at = 0;
                        while at < part.len() {
                            let end = (at + chunk).min(part.len());
                            i += 1;
                            if copy_every != 0 && i % copy_every == 0 {
                                f.push(&part[at..end]);
                            } else {
                                f.push_bytes(part.slice(at..end));
                            }
                            at = end;
                            while let Some(m) = f.next_frame().unwrap() {
                                got.push(m);
                            }
                        }
                    }
                    assert_eq!(
                        got.len(),
                        3,
                        "split {split} chunk {chunk} copy {copy_every}"
                    );
                    assert_eq!(got.concat(), &all[..]);
                    assert_eq!(f.buffered(), 0);
                }
            }
        }
        // three whole messages in one Bytes: each frame points into it (shared, not copied)
        let mut f = Framer::new();
        f.push_bytes(all.clone());
        let range = all.as_ptr_range();
        for _ in 0..3 {
            let m = f.next_frame().unwrap().unwrap();
            assert!(
                range.contains(&m.as_ptr()),
                "frame shares the pushed octets"
            );
        }
        assert_eq!(f.next_frame().unwrap(), None);
        // a partial message after a whole one is kept for the next octets
        let one = all.len() / 3;
        let mut f = Framer::new();
        f.push_bytes(all.slice(..one + 10));
        assert_eq!(f.next_frame().unwrap().unwrap(), all.slice(..one));
        assert_eq!(f.next_frame().unwrap(), None);
        assert_eq!((f.buffered(), f.needed()), (10, one - 10));
        f.push_bytes(all.slice(one + 10..));
        assert_eq!(f.next_frame().unwrap().unwrap(), all.slice(one..2 * one));
        assert_eq!(f.next_frame().unwrap().unwrap(), all.slice(2 * one..));
        // a bad length in held octets is the same error as in copied ones
        let mut f = Framer::new();
        f.push_bytes(Bytes::from_static(&[1, 0, 0, 0, 0x80]));
        assert_eq!(
            f.next_frame().unwrap_err().kind,
            ErrorKind::InvalidMessageLength
        );
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
