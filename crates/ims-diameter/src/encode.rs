//! The encoder: AVPs appended to a growable buffer (`Vec<u8>` or `BytesMut`, anything that is
//! `BufMut + AsMut<[u8]>`), lengths back-filled once the data is written, padding added.

use crate::avp::{padded, Avp, AvpFlags, RawAvp};
use crate::dict::AvpDef;
use crate::message::{Header, HEADER_LEN};
use crate::types::{Address, Time};
use bytes::BufMut;

/// A buffer the encoder can append to and back-fill lengths in.
pub trait EncodeBuf: BufMut + AsMut<[u8]> {}
impl<T: BufMut + AsMut<[u8]>> EncodeBuf for T {}

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
}

macro_rules! scalar {
    ($t:ty, $get:ident, $put:ident) => {
        impl<'a> AvpValue<'a> for $t {
            #[inline]
            fn decode_avp(avp: &Avp<'a>) -> Result<Self, crate::Error> {
                avp.$get()
            }
            #[inline]
            fn encode_avp<B: EncodeBuf>(&self, def: &AvpDef, enc: &mut Encoder<'_, B>) {
                enc.$put(def, *self)
            }
        }
    };
}
scalar!(u32, u32, u32);
scalar!(i32, i32, i32);
scalar!(u64, u64, u64);
scalar!(i64, i64, i64);
scalar!(f32, f32, f32);
scalar!(f64, f64, f64);
scalar!(Time, time, time);

impl<'a> AvpValue<'a> for std::borrow::Cow<'a, str> {
    #[inline]
    fn decode_avp(avp: &Avp<'a>) -> Result<Self, crate::Error> {
        avp.utf8().map(std::borrow::Cow::Borrowed)
    }
    #[inline]
    fn encode_avp<B: EncodeBuf>(&self, def: &AvpDef, enc: &mut Encoder<'_, B>) {
        enc.utf8(def, self)
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
}

impl<'a> AvpValue<'a> for Address<'a> {
    #[inline]
    fn decode_avp(avp: &Avp<'a>) -> Result<Self, crate::Error> {
        avp.address()
    }
    fn encode_avp<B: EncodeBuf>(&self, def: &AvpDef, enc: &mut Encoder<'_, B>) {
        enc.address(def, self)
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
}
