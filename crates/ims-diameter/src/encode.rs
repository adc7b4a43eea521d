//! The encoder: AVPs appended to a growable buffer (`Vec<u8>` or `BytesMut`, anything that is
//! `BufMut + AsMut<[u8]>`), lengths back-filled once the data is written, padding added.

use crate::avp::{padded, Avp, AvpFlags, RawAvp};
use crate::dict::AvpDef;
use crate::message::{Header, HEADER_LEN};
use crate::types::{Address, Time};
use bytes::BufMut;

/// A buffer the encoders can append to, back-fill lengths in, and shorten (the typed commands'
/// [`Writer`] zero-fills a window, writes into it and cuts what it did not use).
pub trait EncodeBuf: BufMut + AsMut<[u8]> {
    /// Shortens the buffer to `len` octets (no effect when it is not longer).
    fn shorten_to(&mut self, len: usize);
    /// Appends `n` zero octets (one `memset`; `BufMut::put_bytes` writes 8 at a time).
    fn extend_zeroed(&mut self, n: usize);
}
impl EncodeBuf for Vec<u8> {
    #[inline]
    fn shorten_to(&mut self, len: usize) {
        self.truncate(len);
    }
    #[inline]
    fn extend_zeroed(&mut self, n: usize) {
        self.resize(self.len() + n, 0);
    }
}
impl EncodeBuf for bytes::BytesMut {
    #[inline]
    fn shorten_to(&mut self, len: usize) {
        self.truncate(len);
    }
    #[inline]
    fn extend_zeroed(&mut self, n: usize) {
        self.resize(self.len() + n, 0);
    }
}
impl<T: EncodeBuf + ?Sized> EncodeBuf for &mut T {
    #[inline]
    fn shorten_to(&mut self, len: usize) {
        (**self).shorten_to(len);
    }
    #[inline]
    fn extend_zeroed(&mut self, n: usize) {
        (**self).extend_zeroed(n);
    }
}

/// Appends AVPs to a buffer. Obtained from [`encode_message`] or [`Encoder::new`] (bare AVPs).
#[derive(Debug)]
pub struct Encoder<'b, B: EncodeBuf> {
    buf: &'b mut B,
}

impl<'b, B: EncodeBuf> Encoder<'b, B> {
    /// An encoder appending bare AVPs to `buf`.
    pub fn new(buf: &'b mut B) -> Self {
        Encoder { buf }
    }

    #[inline]
    fn pos(&mut self) -> usize {
        self.buf.as_mut().len()
    }

    /// Writes an AVP header with a zero length; returns where it starts.
    #[inline]
    fn begin(&mut self, code: u32, flags: u8, vendor: u32) -> usize {
        let start = self.pos();
        self.header(code, flags, vendor, 0);
        start
    }

    /// Writes an AVP header with this AVP Length (0 to back-fill it later).
    #[inline(always)]
    fn header(&mut self, code: u32, flags: u8, vendor: u32, len: usize) {
        // the Vendor-Id field is written when there is a vendor, or when the caller's flags carry
        // V (Vendor-Id 0 as received)
        let fl = u64::from((u32::from(flags) << 24) | len as u32);
        if vendor != 0 || flags & AvpFlags::VENDOR != 0 {
            let fl = fl | (u64::from(AvpFlags::VENDOR) << 24);
            let h = (u128::from(code) << 96) | (u128::from(fl) << 64) | (u128::from(vendor) << 32);
            self.buf.put_slice(&h.to_be_bytes()[..12]);
        } else {
            let h = (u64::from(code) << 32) | fl;
            self.buf.put_slice(&h.to_be_bytes());
        }
    }

    /// Back-fills the AVP Length of the AVP starting at `start` and pads it.
    #[inline]
    fn end(&mut self, start: usize) {
        let len = self.pos() - start;
        assert!(
            len < 1 << 24,
            "AVP longer than the 24-bit AVP Length allows"
        );
        let b = self.buf.as_mut();
        b[start + 5..start + 8].copy_from_slice(&(len as u32).to_be_bytes()[1..]);
        self.pad(len);
    }

    /// Zero padding after `len` octets of AVP.
    #[inline(always)]
    fn pad(&mut self, len: usize) {
        // fixed-size writes (a variable-length slice of zeros becomes a memset call)
        match padded(len) - len {
            0 => {}
            1 => self.buf.put_slice(&[0u8; 1]),
            2 => self.buf.put_slice(&[0u8; 2]),
            _ => self.buf.put_slice(&[0u8; 3]),
        }
    }

    /// A whole AVP whose data is known: the length goes in the header directly (no back-fill).
    /// Always inlined: with a dictionary constant the V/M flags and the header length fold away.
    #[inline(always)]
    fn leaf(&mut self, code: u32, flags: u8, vendor: u32, data: &[u8]) {
        let hlen = if vendor != 0 || flags & AvpFlags::VENDOR != 0 {
            12
        } else {
            8
        };
        let len = hlen + data.len();
        assert!(
            len < 1 << 24,
            "AVP longer than the 24-bit AVP Length allows"
        );
        self.header(code, flags, vendor, len);
        self.buf.put_slice(data);
        self.pad(len);
    }

    /// A whole AVP with 4 octets of data (no padding).
    #[inline]
    fn leaf4(&mut self, def: &AvpDef, v: [u8; 4]) {
        let flags = u128::from(def.flags().0);
        let code = u128::from(def.code) << 96;
        let d = u128::from(u32::from_be_bytes(v));
        if def.vendor != 0 {
            let fl = ((flags | u128::from(AvpFlags::VENDOR)) << 88) | (16 << 64);
            let h = code | fl | (u128::from(def.vendor) << 32) | d;
            self.buf.put_slice(&h.to_be_bytes());
        } else {
            let h = code | (flags << 88) | (12 << 64) | (d << 32);
            self.buf.put_slice(&h.to_be_bytes()[..12]);
        }
    }

    /// An AVP with explicit code, flags and Vendor-Id (0 for none): the V bit and Vendor-Id field
    /// are written when `vendor` is not 0 or `flags` has V.
    #[inline]
    pub fn raw(&mut self, code: u32, flags: AvpFlags, vendor: u32, data: &[u8]) {
        self.leaf(code, flags.0, vendor, data);
    }

    /// A copy of a received AVP (flags and data as received).
    pub fn copy(&mut self, avp: &Avp<'_>) {
        self.raw(avp.code(), avp.flags(), avp.vendor_id(), avp.data());
    }

    /// A [`RawAvp`].
    #[inline]
    pub fn raw_avp(&mut self, avp: &RawAvp<'_>) {
        self.raw(avp.code, avp.flags, avp.vendor, &avp.data);
    }

    /// OctetString (or any type given as its octets).
    #[inline]
    pub fn octets(&mut self, def: &AvpDef, v: &[u8]) {
        self.raw(def.code, def.flags(), def.vendor, v);
    }
    /// UTF8String, DiameterIdentity, DiameterURI or IPFilterRule text.
    #[inline]
    pub fn utf8(&mut self, def: &AvpDef, v: &str) {
        self.octets(def, v.as_bytes());
    }
    /// Unsigned32.
    #[inline]
    pub fn u32(&mut self, def: &AvpDef, v: u32) {
        self.leaf4(def, v.to_be_bytes());
    }
    /// Integer32 or Enumerated.
    #[inline]
    pub fn i32(&mut self, def: &AvpDef, v: i32) {
        self.leaf4(def, v.to_be_bytes());
    }
    /// Unsigned64.
    #[inline]
    pub fn u64(&mut self, def: &AvpDef, v: u64) {
        self.octets(def, &v.to_be_bytes());
    }
    /// Integer64.
    pub fn i64(&mut self, def: &AvpDef, v: i64) {
        self.octets(def, &v.to_be_bytes());
    }
    /// Float32.
    pub fn f32(&mut self, def: &AvpDef, v: f32) {
        self.leaf4(def, v.to_be_bytes());
    }
    /// Float64.
    pub fn f64(&mut self, def: &AvpDef, v: f64) {
        self.octets(def, &v.to_be_bytes());
    }
    /// Time.
    #[inline]
    pub fn time(&mut self, def: &AvpDef, v: Time) {
        self.u32(def, v.0);
    }
    /// Address.
    #[inline]
    pub fn address(&mut self, def: &AvpDef, v: &Address<'_>) {
        match v {
            Address::Ipv4(a) => {
                let o = a.octets();
                let f = Address::FAMILY_IPV4.to_be_bytes();
                let data = [f[0], f[1], o[0], o[1], o[2], o[3]];
                self.leaf(def.code, def.flags().0, def.vendor, &data);
            }
            _ => {
                let s = self.begin(def.code, def.flags().0, def.vendor);
                v.write_to(&mut *self.buf);
                self.end(s);
            }
        }
    }
    /// A Grouped AVP whose members `f` writes.
    #[inline]
    pub fn grouped(&mut self, def: &AvpDef, f: impl FnOnce(&mut Encoder<'_, B>)) {
        let s = self.begin(def.code, def.flags().0, def.vendor);
        f(&mut Encoder {
            buf: &mut *self.buf,
        });
        self.end(s);
    }
    /// A Grouped AVP with explicit code, flags and vendor.
    pub fn grouped_raw(
        &mut self,
        code: u32,
        flags: AvpFlags,
        vendor: u32,
        f: impl FnOnce(&mut Encoder<'_, B>),
    ) {
        let s = self.begin(code, flags.0, vendor);
        f(&mut Encoder {
            buf: &mut *self.buf,
        });
        self.end(s);
    }
}

/// Appends one message: the header (its `length` is ignored and back-filled) and the AVPs that `f`
/// writes. Returns the Message Length.
pub fn encode_message<B: EncodeBuf>(
    buf: &mut B,
    header: &Header,
    f: impl FnOnce(&mut Encoder<'_, B>),
) -> usize {
    let start = buf.as_mut().len();
    buf.put_slice(&header.to_bytes());
    f(&mut Encoder { buf: &mut *buf });
    let len = buf.as_mut().len() - start;
    assert!(
        len < 1 << 24,
        "message longer than the 24-bit Message Length allows"
    );
    buf.as_mut()[start + 1..start + 4].copy_from_slice(&(len as u32).to_be_bytes()[1..]);
    debug_assert!(len >= HEADER_LEN);
    len
}

/// The typed commands' encoder: writes a message into a window of zeroed octets (the padding is
/// already there), with one length test per AVP (each AVP's octets are split off the front of
/// the rest of the window) and the header of each AVP (code, flags, length,
/// Vendor-Id, constants of the dictionary once inlined) stored in one write: a leaf AVP's
/// length is known before it is written, a Grouped AVP's header is written once its members
/// are (no placeholder, no back-fill of three octets). Output is byte-identical to
/// [`Encoder`]'s.
///
/// When the window is too small the writer stops writing and keeps counting, so its final
/// position is the exact size of the message: [`write_message`] then retries once with a
/// window of that size.
#[derive(Debug)]
pub struct Writer<'b> {
    /// The part of the window not written yet (empty once an AVP did not fit: from then on
    /// the writer only counts).
    out: &'b mut [u8],
    pos: usize,
}

/// Where a Grouped AVP opened by [`Writer::group_begin`] starts, and the room for its header
/// (`None` when it did not fit).
#[derive(Debug)]
pub(crate) struct GroupStart<'b> {
    pos: usize,
    header: Option<&'b mut [u8]>,
}

/// Writes the 8-octet (no Vendor-Id) or 12-octet header of an AVP at `d[0..]`.
#[inline(always)]
fn put_header(d: &mut [u8], code: u32, flags: u8, vendor: u32, len: usize) {
    let fl = (u32::from(flags) << 24) | len as u32;
    if vendor != 0 || flags & AvpFlags::VENDOR != 0 {
        let fl = fl | (u32::from(AvpFlags::VENDOR) << 24);
        let h = (u128::from(code) << 96) | (u128::from(fl) << 64) | (u128::from(vendor) << 32);
        d[..12].copy_from_slice(&h.to_be_bytes()[..12]);
    } else {
        let h = (u64::from(code) << 32) | u64::from(fl);
        d[..8].copy_from_slice(&h.to_be_bytes());
    }
}

/// The header length of an AVP with these flags and Vendor-Id.
#[inline(always)]
const fn header_len(flags: u8, vendor: u32) -> usize {
    if vendor != 0 || flags & AvpFlags::VENDOR != 0 {
        12
    } else {
        8
    }
}

impl<'b> Writer<'b> {
    /// The next `n` octets of the window, split off it (one length test, no position
    /// arithmetic), `None` when they do not fit: the window is then emptied, so nothing later
    /// is written either (the writer keeps counting).
    #[inline(always)]
    fn room(&mut self, n: usize) -> Option<&'b mut [u8]> {
        let out = std::mem::take(&mut self.out);
        if n <= out.len() {
            let (now, rest) = out.split_at_mut(n);
            self.out = rest;
            Some(now)
        } else {
            None
        }
    }

    /// A writer over the same window and position, for a caller to keep in registers (the
    /// position of a writer behind a `&mut` is stored back to memory after each AVP); its
    /// position is copied back with [`Writer::sync`].
    #[inline(always)]
    pub(crate) fn local(&mut self) -> Writer<'_> {
        Writer {
            out: &mut *self.out,
            pos: self.pos,
        }
    }

    /// Takes the position reached by a [`Writer::local`] copy (and skips what it wrote).
    #[inline(always)]
    pub(crate) fn sync(&mut self, pos: usize) {
        let out = std::mem::take(&mut self.out);
        self.out = out.get_mut(pos - self.pos..).unwrap_or_default();
        self.pos = pos;
    }

    /// The position (octets written or counted from the start of the message).
    #[inline(always)]
    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    /// An AVP with 4 octets of data (Unsigned32, Integer32, Enumerated, Float32, Time).
    #[inline(always)]
    pub fn leaf4(&mut self, code: u32, flags: u8, vendor: u32, v: [u8; 4]) {
        let d = u128::from(u32::from_be_bytes(v));
        if vendor != 0 || flags & AvpFlags::VENDOR != 0 {
            let fl = u128::from(flags | AvpFlags::VENDOR) << 88 | (16 << 64);
            let h = (u128::from(code) << 96) | fl | (u128::from(vendor) << 32) | d;
            if let Some(o) = self.room(16) {
                o.copy_from_slice(&h.to_be_bytes());
            }
            self.pos += 16;
        } else {
            let h = (u128::from(code) << 96) | (u128::from(flags) << 88) | (12 << 64) | (d << 32);
            if let Some(o) = self.room(12) {
                o.copy_from_slice(&h.to_be_bytes()[..12]);
            }
            self.pos += 12;
        }
    }

    /// An AVP whose data is `data` (padding included in the step, already zero).
    #[inline(always)]
    pub fn leaf(&mut self, code: u32, flags: u8, vendor: u32, data: &[u8]) {
        let hlen = header_len(flags, vendor);
        let len = hlen + data.len();
        assert!(
            len < 1 << 24,
            "AVP longer than the 24-bit AVP Length allows"
        );
        // padded to 4 (written as `len` plus the padding, so `len <= step` is evident to the
        // compiler and the copy below needs no second bounds test)
        let step = len + (len.wrapping_neg() & 3);
        if let Some(o) = self.room(step) {
            put_header(o, code, flags, vendor, len);
            o[hlen..len].copy_from_slice(data);
        }
        self.pos += step;
    }

    /// An Address AVP: AddressType then the address octets.
    #[inline(always)]
    fn address(&mut self, code: u32, flags: u8, vendor: u32, v: &Address<'_>) {
        if let Address::Ipv4(a) = v {
            let o = a.octets();
            let f = Address::FAMILY_IPV4.to_be_bytes();
            return self.leaf(code, flags, vendor, &[f[0], f[1], o[0], o[1], o[2], o[3]]);
        }
        let mut ip = [0; 16];
        let value: &[u8] = match v {
            Address::Ipv6(a) => {
                ip = a.octets();
                &ip
            }
            Address::E164(s) => s.as_bytes(),
            Address::Other { value, .. } => value,
            Address::Ipv4(a) => {
                ip[..4].copy_from_slice(&a.octets());
                &ip[..4]
            }
        };
        let hlen = header_len(flags, vendor);
        let len = hlen + 2 + value.len();
        assert!(
            len < 1 << 24,
            "AVP longer than the 24-bit AVP Length allows"
        );
        let step = padded(len);
        if let Some(o) = self.room(step) {
            put_header(o, code, flags, vendor, len);
            o[hlen..hlen + 2].copy_from_slice(&v.family().to_be_bytes());
            o[hlen + 2..len].copy_from_slice(value);
        }
        self.pos += step;
    }

    /// A Grouped AVP whose members `f` writes; its header is written after them.
    #[inline(always)]
    pub fn grouped(&mut self, code: u32, flags: u8, vendor: u32, f: impl FnOnce(&mut Self)) {
        let start = self.group_begin(flags, vendor);
        f(self);
        self.group_end(start, code, flags, vendor);
    }

    /// Opens a Grouped AVP: room for its header is split off, the members follow; returns
    /// where it starts and that room, for [`Writer::group_end`]. (The typed structs use this
    /// pair rather than [`Writer::grouped`]: the members are then written inline, not in a
    /// closure the compiler keeps out of line.)
    #[inline(always)]
    pub(crate) fn group_begin(&mut self, flags: u8, vendor: u32) -> GroupStart<'b> {
        let pos = self.pos;
        let hlen = header_len(flags, vendor);
        let header = self.room(hlen);
        self.pos += hlen;
        GroupStart { pos, header }
    }

    /// Closes the Grouped AVP opened at `start`: writes its header with the length reached.
    #[inline(always)]
    pub(crate) fn group_end(&mut self, start: GroupStart<'b>, code: u32, flags: u8, vendor: u32) {
        let len = self.pos - start.pos;
        assert!(
            len < 1 << 24,
            "AVP longer than the 24-bit AVP Length allows"
        );
        if let Some(o) = start.header {
            put_header(o, code, flags, vendor, len);
        }
    }

    /// Octets as they are (whole AVPs: the caller keeps the 4-octet alignment).
    pub fn octets(&mut self, data: &[u8]) {
        if let Some(o) = self.room(data.len()) {
            o.copy_from_slice(data);
        }
        self.pos += data.len();
    }

    /// A [`RawAvp`] (flags and data as kept).
    #[inline]
    pub fn raw_avp(&mut self, avp: &RawAvp<'_>) {
        self.leaf(avp.code, avp.flags.0, avp.vendor, &avp.data);
    }
}

/// Appends one message with [`Writer`]: the header (its `length` is ignored and set) and the
/// AVPs `f` writes, into a zeroed window of `room` octets (a guess: when the message is longer
/// the window is made its exact size and `f` called again). Returns the Message Length.
pub fn write_message<B: EncodeBuf>(
    buf: &mut B,
    header: &Header,
    room: usize,
    f: impl Fn(&mut Writer<'_>),
) -> usize {
    // `f` is inlined once, outside any loop (in a loop the compiler hoisted the header words
    // of every field into a 1 kB stack frame before the first write); the second attempt is
    // a cold call through `dyn`
    let start = buf.as_mut().len();
    let room = room.max(HEADER_LEN);
    buf.extend_zeroed(room);
    let mut w = Writer {
        out: &mut buf.as_mut()[start + HEADER_LEN..],
        pos: HEADER_LEN,
    };
    f(&mut w);
    let len = w.pos;
    if len > room {
        return write_message_again(buf, header, start, len, &f);
    }
    finish_message(buf, header, start, len)
}

/// The header (with the Message Length) and the buffer cut to the message.
#[inline(always)]
fn finish_message<B: EncodeBuf>(buf: &mut B, header: &Header, start: usize, len: usize) -> usize {
    assert!(
        len < 1 << 24,
        "message longer than the 24-bit Message Length allows"
    );
    let h = Header {
        length: len as u32,
        ..*header
    };
    buf.as_mut()[start..start + HEADER_LEN].copy_from_slice(&h.to_bytes());
    buf.shorten_to(start + len);
    len
}

/// [`write_message`] after a window too small: again, in a window of the exact size `len`.
#[cold]
#[inline(never)]
fn write_message_again<B: EncodeBuf>(
    buf: &mut B,
    header: &Header,
    start: usize,
    len: usize,
    f: &dyn Fn(&mut Writer<'_>),
) -> usize {
    buf.shorten_to(start);
    buf.extend_zeroed(len);
    let mut w = Writer {
        out: &mut buf.as_mut()[start + HEADER_LEN..],
        pos: HEADER_LEN,
    };
    f(&mut w);
    assert_eq!(w.pos, len, "the second pass writes what the first counted");
    finish_message(buf, header, start, len)
}

/// A value that is the data of one AVP: decoded from an [`Avp`], encoded under a definition.
///
/// Implemented for the Rust types of the RFC 6733 data types (`u32` Unsigned32, `i32`
/// Integer32, `u64`, `i64`, `f32`, `f64`, `Cow<str>` UTF8String / DiameterIdentity /
/// DiameterURI / IPFilterRule text, `Cow<[u8]>` OctetString, [`Address`], [`Time`]), for the
/// enumerations and Grouped structs of this crate, and for [`RawAvp`] (kept as received).
pub trait AvpValue<'a>: Sized {
    /// Decodes the AVP's data.
    fn decode_avp(avp: &Avp<'a>) -> Result<Self, crate::Error>;
    /// Decodes the AVP's data into `out` (a `Default` value): Grouped structs fill their fields
    /// in place instead of building a value and moving it.
    #[inline]
    fn decode_avp_into(avp: &Avp<'a>, out: &mut Self) -> Result<(), crate::Error> {
        *out = Self::decode_avp(avp)?;
        Ok(())
    }
    /// Appends the AVP with the definition's code, vendor and flags.
    fn encode_avp<B: EncodeBuf>(&self, def: &AvpDef, enc: &mut Encoder<'_, B>);
    /// [`AvpValue::encode_avp`] with a [`Writer`] (the typed commands' encoder; same octets).
    fn write_avp(&self, def: &AvpDef, w: &mut Writer<'_>);
}

macro_rules! scalar {
    ($t:ty, $get:ident, $put:ident, $bytes:expr) => {
        impl<'a> AvpValue<'a> for $t {
            #[inline]
            fn decode_avp(avp: &Avp<'a>) -> Result<Self, crate::Error> {
                avp.$get()
            }
            #[inline]
            fn encode_avp<B: EncodeBuf>(&self, def: &AvpDef, enc: &mut Encoder<'_, B>) {
                enc.$put(def, *self)
            }
            #[inline(always)]
            fn write_avp(&self, def: &AvpDef, w: &mut Writer<'_>) {
                let b = $bytes(*self);
                if b.len() == 4 {
                    w.leaf4(
                        def.code,
                        def.flags().0,
                        def.vendor,
                        [b[0], b[1], b[2], b[3]],
                    );
                } else {
                    w.leaf(def.code, def.flags().0, def.vendor, &b);
                }
            }
        }
    };
}
scalar!(u32, u32, u32, u32::to_be_bytes);
scalar!(i32, i32, i32, i32::to_be_bytes);
scalar!(u64, u64, u64, u64::to_be_bytes);
scalar!(i64, i64, i64, i64::to_be_bytes);
scalar!(f32, f32, f32, f32::to_be_bytes);
scalar!(f64, f64, f64, f64::to_be_bytes);
scalar!(Time, time, time, |t: Time| t.0.to_be_bytes());

impl<'a> AvpValue<'a> for std::borrow::Cow<'a, str> {
    #[inline]
    fn decode_avp(avp: &Avp<'a>) -> Result<Self, crate::Error> {
        avp.utf8().map(std::borrow::Cow::Borrowed)
    }
    #[inline]
    fn encode_avp<B: EncodeBuf>(&self, def: &AvpDef, enc: &mut Encoder<'_, B>) {
        enc.utf8(def, self)
    }
    #[inline(always)]
    fn write_avp(&self, def: &AvpDef, w: &mut Writer<'_>) {
        w.leaf(def.code, def.flags().0, def.vendor, self.as_bytes());
    }
}

impl<'a> AvpValue<'a> for std::borrow::Cow<'a, [u8]> {
    #[inline]
    fn decode_avp(avp: &Avp<'a>) -> Result<Self, crate::Error> {
        Ok(std::borrow::Cow::Borrowed(avp.data()))
    }
    #[inline]
    fn encode_avp<B: EncodeBuf>(&self, def: &AvpDef, enc: &mut Encoder<'_, B>) {
        enc.octets(def, self)
    }
    #[inline(always)]
    fn write_avp(&self, def: &AvpDef, w: &mut Writer<'_>) {
        w.leaf(def.code, def.flags().0, def.vendor, self);
    }
}

impl<'a> AvpValue<'a> for Address<'a> {
    #[inline]
    fn decode_avp(avp: &Avp<'a>) -> Result<Self, crate::Error> {
        avp.address()
    }
    fn encode_avp<B: EncodeBuf>(&self, def: &AvpDef, enc: &mut Encoder<'_, B>) {
        enc.address(def, self)
    }
    #[inline(always)]
    fn write_avp(&self, def: &AvpDef, w: &mut Writer<'_>) {
        w.address(def.code, def.flags().0, def.vendor, self);
    }
}

impl<'a> AvpValue<'a> for RawAvp<'a> {
    #[inline]
    fn decode_avp(avp: &Avp<'a>) -> Result<Self, crate::Error> {
        Ok(avp.to_raw())
    }
    fn encode_avp<B: EncodeBuf>(&self, def: &AvpDef, enc: &mut Encoder<'_, B>) {
        enc.raw(def.code, self.flags, def.vendor, &self.data)
    }
    #[inline]
    fn write_avp(&self, def: &AvpDef, w: &mut Writer<'_>) {
        w.leaf(def.code, self.flags.0, def.vendor, &self.data);
    }
}
