//! AVP views (RFC 6733 §4): header (code, V/M/P flags, Vendor-Id), data, padding, typed access to
//! every RFC 6733 §4.2–4.3 data type, and the lazy iterator over a message or a Grouped AVP.

use crate::dict::{self, AvpDef};
use crate::error::{AvpId, Error, ErrorKind};
use crate::types::{Address, DiameterUri, IpFilterRule, Time};
use std::borrow::Cow;

/// AVP flags (RFC 6733 §4.1): `V M P r r r r r`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct AvpFlags(pub u8);

impl AvpFlags {
    /// V: a Vendor-Id field follows the AVP Length.
    pub const VENDOR: u8 = 0x80;
    /// M: the receiver must understand the AVP or reject the message (5001).
    pub const MANDATORY: u8 = 0x40;
    /// P: reserved for end-to-end security (RFC 6733 §4.1, must be zero on send).
    pub const PROTECTED: u8 = 0x20;
    /// The reserved bits, which must be zero.
    pub const RESERVED: u8 = 0x1f;

    /// V bit.
    pub const fn is_vendor(self) -> bool {
        self.0 & Self::VENDOR != 0
    }
    /// M bit.
    pub const fn is_mandatory(self) -> bool {
        self.0 & Self::MANDATORY != 0
    }
    /// P bit.
    pub const fn is_protected(self) -> bool {
        self.0 & Self::PROTECTED != 0
    }
}

/// AVP data as text: ASCII (every Diameter identity, realm, Session-Id and Flow-Description met in
/// practice) is checked with `<[u8]>::is_ascii` (a word at a time) instead of being decoded as
/// UTF-8; other octets go through `std::str::from_utf8`. `None` when they are not UTF-8.
///
/// Measured (callgrind, `examples/perf.rs`): `str::from_utf8` was 12–14 % of the instructions of
/// a CER, AAR or AAA decode; `is_ascii` costs about a tenth of that.
#[inline]
#[allow(unsafe_code)]
pub(crate) fn text(bytes: &[u8]) -> Option<&str> {
    if bytes.is_ascii() {
        // SAFETY: every octet is below 0x80, and a sequence of such octets is valid UTF-8 (each
        // is a one-octet code point, RFC 3629 §3), which is all `from_utf8_unchecked` requires
        Some(unsafe { std::str::from_utf8_unchecked(bytes) })
    } else {
        std::str::from_utf8(bytes).ok()
    }
}

/// Pads a length to the next multiple of 4.
pub(crate) const fn padded(len: usize) -> usize {
    (len + 3) & !3
}

/// Reads one AVP header at `buf[0..]`: (code, flags, vendor, header length, AVP Length).
/// `None` when fewer than 8 (or 12 with V) octets remain.
#[inline]
pub(crate) fn read_header(buf: &[u8]) -> Option<(u32, u8, u32, usize, usize)> {
    let h = buf.get(..8)?;
    let code = u32::from_be_bytes([h[0], h[1], h[2], h[3]]);
    let flags = h[4];
    let len = u32::from_be_bytes([0, h[5], h[6], h[7]]) as usize;
    if flags & AvpFlags::VENDOR != 0 {
        let v = buf.get(8..12)?;
        Some((
            code,
            flags,
            u32::from_be_bytes([v[0], v[1], v[2], v[3]]),
            12,
            len,
        ))
    } else {
        Some((code, flags, 0, 8, len))
    }
}

/// Walks a chain of AVPs once: every header complete, reserved bits clear (3009), AVP Length at
/// least its header and, with padding, inside `buf` (5014). `base` is the offset of `buf[0]` in the
/// message, for error offsets.
#[inline]
pub(crate) fn check_chain(buf: &[u8], base: usize, max_avps: usize) -> Result<(), Error> {
    // fast pass: one branch per AVP on the common path; any anomaly reruns the detailed walk
    // below, which names the error exactly. An AVP is at least 8 octets: a chain shorter than
    // 8 × max_avps cannot exceed the limit, and then the AVPs need not be counted.
    let ok = if buf.len() / 8 <= max_avps {
        walk_chain::<false>(buf, max_avps)
    } else {
        walk_chain::<true>(buf, max_avps)
    };
    if ok {
        Ok(())
    } else {
        check_chain_detailed(buf, base, max_avps)
    }
}

/// The fast pass of [`check_chain`]: true when the chain is well formed (AVPs counted against
/// `max_avps` when `COUNT`).
#[inline(always)]
fn walk_chain<const COUNT: bool>(buf: &[u8], max_avps: usize) -> bool {
    let mut rest = buf;
    let mut n = 0usize;
    while let Some(h) = rest.first_chunk::<8>() {
        let word = u32::from_be_bytes([h[4], h[5], h[6], h[7]]);
        let flags = (word >> 24) as u8;
        let len = (word & 0x00ff_ffff) as usize;
        let hlen = if flags & AvpFlags::VENDOR != 0 { 12 } else { 8 };
        let step = padded(len);
        if (flags & AvpFlags::RESERVED != 0) | (len < hlen) | (step > rest.len()) {
            return false;
        }
        if COUNT {
            if n >= max_avps {
                return false;
            }
            n += 1;
        }
        rest = &rest[step..];
    }
    rest.is_empty()
}

#[cold]
fn check_chain_detailed(buf: &[u8], base: usize, max_avps: usize) -> Result<(), Error> {
    let mut pos = 0;
    let mut n = 0usize;
    while pos < buf.len() {
        let rest = &buf[pos..];
        let at = base + pos;
        let Some((code, flags, vendor, hlen, len)) = read_header(rest) else {
            // fewer octets than an AVP header: a broken length
            let code = rest
                .get(..4)
                .map_or(0, |c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]));
            return Err(Error::at_avp(
                ErrorKind::InvalidAvpLength,
                at,
                AvpId::new(code, 0),
            ));
        };
        let id = AvpId::new(code, vendor);
        if flags & AvpFlags::RESERVED != 0 {
            return Err(Error::at_avp(ErrorKind::InvalidAvpBits, at, id));
        }
        if len < hlen || padded(len) > rest.len() {
            return Err(Error::at_avp(ErrorKind::InvalidAvpLength, at, id));
        }
        n += 1;
        if n > max_avps {
            return Err(Error::at_avp(ErrorKind::LimitExceeded, at, id));
        }
        pos += padded(len);
    }
    Ok(())
}

/// What an AVP passes on to the iterator of its members: its nesting depth, the deepest
/// nesting allowed and the most AVPs per level, packed in one word (an [`Avp`] is built for
/// every AVP a decoder reaches: one store instead of three loads and three stores).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Ctx(u64);

impl Ctx {
    const fn new(depth: u8, max_depth: u8, max_avps: u32) -> Ctx {
        Ctx(max_avps as u64 | (depth as u64) << 32 | (max_depth as u64) << 40)
    }
    const fn max_avps(self) -> u32 {
        self.0 as u32
    }
    const fn depth(self) -> u8 {
        (self.0 >> 32) as u8
    }
    const fn max_depth(self) -> u8 {
        (self.0 >> 40) as u8
    }
    /// The members' context (one level deeper); `None` at the deepest level allowed.
    const fn child(self) -> Option<Ctx> {
        if self.depth() >= self.max_depth() {
            None
        } else {
            Some(Ctx(self.0 + (1 << 32)))
        }
    }
}

/// One AVP over borrowed octets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Avp<'a> {
    code: u32,
    vendor: u32,
    offset: u32,
    flags: AvpFlags,
    header_len: u8,
    ctx: Ctx,
    raw: &'a [u8],
}

impl<'a> Avp<'a> {
    /// The AVP Code.
    pub const fn code(&self) -> u32 {
        self.code
    }
    /// The flags.
    pub const fn flags(&self) -> AvpFlags {
        self.flags
    }
    /// The Vendor-Id, 0 when the V bit is clear.
    pub const fn vendor_id(&self) -> u32 {
        self.vendor
    }
    /// `(code, vendor)`.
    pub const fn id(&self) -> AvpId {
        AvpId::new(self.code, self.vendor)
    }
    /// M bit.
    pub const fn is_mandatory(&self) -> bool {
        self.flags.is_mandatory()
    }
    /// True when this AVP has the definition's code and vendor.
    pub const fn is(&self, def: &AvpDef) -> bool {
        self.code == def.code && self.vendor == def.vendor
    }
    /// The data (after the header, without padding).
    #[inline]
    pub fn data(&self) -> &'a [u8] {
        &self.raw[self.header_len as usize..]
    }
    /// Header and data, without padding (AVP Length octets).
    pub const fn as_bytes(&self) -> &'a [u8] {
        self.raw
    }
    /// Offset of the AVP header from the start of the message.
    pub const fn offset(&self) -> usize {
        self.offset as usize
    }
    /// Nesting depth: 0 at the top level of a message.
    pub const fn depth(&self) -> u8 {
        self.ctx.depth()
    }
    /// The dictionary entry, if the AVP is known.
    pub fn def(&self) -> Option<&'static AvpDef> {
        dict::lookup(self.code, self.vendor)
    }
    /// The dictionary name, if the AVP is known.
    pub fn name(&self) -> Option<&'static str> {
        self.def().map(|d| d.name)
    }

    #[inline]
    fn err(&self, kind: ErrorKind) -> Error {
        Error::at_avp(kind, self.offset(), self.id())
    }

    #[inline]
    fn fixed<const N: usize>(&self) -> Result<[u8; N], Error> {
        self.data()
            .try_into()
            .map_err(|_| self.err(ErrorKind::InvalidAvpLength))
    }

    /// Unsigned32.
    #[inline]
    pub fn u32(&self) -> Result<u32, Error> {
        self.fixed::<4>().map(u32::from_be_bytes)
    }
    /// Integer32 (and Enumerated).
    #[inline]
    pub fn i32(&self) -> Result<i32, Error> {
        self.fixed::<4>().map(i32::from_be_bytes)
    }
    /// Unsigned64.
    #[inline]
    pub fn u64(&self) -> Result<u64, Error> {
        self.fixed::<8>().map(u64::from_be_bytes)
    }
    /// Integer64.
    #[inline]
    pub fn i64(&self) -> Result<i64, Error> {
        self.fixed::<8>().map(i64::from_be_bytes)
    }
    /// Float32.
    #[inline]
    pub fn f32(&self) -> Result<f32, Error> {
        self.fixed::<4>().map(f32::from_be_bytes)
    }
    /// Float64.
    #[inline]
    pub fn f64(&self) -> Result<f64, Error> {
        self.fixed::<8>().map(f64::from_be_bytes)
    }
    /// UTF8String (also DiameterIdentity and DiameterURI text): invalid UTF-8 is 5004.
    #[inline]
    pub fn utf8(&self) -> Result<&'a str, Error> {
        text(self.data()).ok_or_else(|| self.err(ErrorKind::InvalidAvpValue))
    }
    /// DiameterIdentity: ASCII, non-empty (RFC 6733 §4.3.1).
    pub fn identity(&self) -> Result<&'a str, Error> {
        let d = self.data();
        if d.is_empty() || !d.iter().all(|b| b.is_ascii_graphic()) {
            return Err(self.err(ErrorKind::InvalidAvpValue));
        }
        self.utf8()
    }
    /// Address.
    #[inline]
    pub fn address(&self) -> Result<Address<'a>, Error> {
        Address::decode(self.data()).map_err(|k| self.err(k))
    }
    /// Time (NTP seconds with the RFC 6733 §4.3.1 era rule).
    #[inline]
    pub fn time(&self) -> Result<Time, Error> {
        self.u32().map(Time)
    }
    /// DiameterURI.
    pub fn uri(&self) -> Result<DiameterUri<'a>, Error> {
        DiameterUri::parse(self.utf8()?).map_err(|_| self.err(ErrorKind::InvalidAvpValue))
    }
    /// IPFilterRule (RFC 6733 §4.3.1 grammar).
    pub fn ip_filter_rule(&self) -> Result<IpFilterRule<'a>, Error> {
        IpFilterRule::parse(self.utf8()?).map_err(|_| self.err(ErrorKind::InvalidAvpValue))
    }
    /// Enumerated (an Integer32).
    #[inline]
    pub fn enumerated(&self) -> Result<i32, Error> {
        self.i32()
    }

    /// The members of a Grouped AVP, checked on entry (lengths, padding, reserved bits, depth).
    pub fn grouped(&self) -> Result<AvpIter<'a>, Error> {
        let Some(ctx) = self.ctx.child() else {
            return Err(self.err(ErrorKind::LimitExceeded));
        };
        let base = self.offset() + self.header_len as usize;
        check_chain(self.data(), base, ctx.max_avps() as usize)?;
        Ok(AvpIter::with_ctx(self.data(), base, ctx))
    }

    /// The members of a Grouped AVP, checked while they are iterated (one walk instead of two):
    /// the iterator stops at the first broken AVP and [`AvpIter::finish`] then returns the same
    /// error [`Avp::grouped`] would have returned. For the typed decoders.
    #[inline]
    pub(crate) fn grouped_lazy(&self) -> Result<AvpIter<'a>, Error> {
        let Some(ctx) = self.ctx.child() else {
            return Err(self.err(ErrorKind::LimitExceeded));
        };
        let mut it = AvpIter::with_ctx(self.data(), self.offset() + self.header_len as usize, ctx);
        it.lazy = true;
        Ok(it)
    }

    /// The AVP as an owned-or-borrowed [`RawAvp`] (borrowing; the V bit is dropped from the
    /// flags when `vendor` implies it).
    #[inline]
    pub fn to_raw(&self) -> RawAvp<'a> {
        RawAvp {
            code: self.code,
            flags: if self.vendor != 0 {
                AvpFlags(self.flags.0 & !AvpFlags::VENDOR)
            } else {
                self.flags
            },
            vendor: self.vendor,
            data: Cow::Borrowed(self.data()),
        }
    }
}

/// Iterator over a chain of AVPs that was checked when it was created (by [`crate::Message::parse`]
/// or [`Avp::grouped`]), so it yields plain [`Avp`]s. (The typed decoders iterate Grouped members
/// unchecked and check each AVP as it comes: such an iteration stops at a broken AVP and
/// [`AvpIter::finish`] names the error.)
#[derive(Debug, Clone)]
pub struct AvpIter<'a> {
    buf: &'a [u8],
    pos: usize,
    base: usize,
    /// Depth of these AVPs and the limits (see [`Ctx`]).
    ctx: Ctx,
    /// The chain was not checked up front: check each AVP as it is reached.
    lazy: bool,
    /// A lazy iteration stopped at a broken AVP.
    failed: bool,
    count: u32,
}

impl<'a> AvpIter<'a> {
    pub(crate) fn new(buf: &'a [u8], base: usize, depth: u8, max_depth: u8, max_avps: u32) -> Self {
        Self::with_ctx(buf, base, Ctx::new(depth, max_depth, max_avps))
    }

    #[inline]
    fn with_ctx(buf: &'a [u8], base: usize, ctx: Ctx) -> Self {
        AvpIter {
            buf,
            pos: 0,
            base,
            ctx,
            lazy: false,
            failed: false,
            count: 0,
        }
    }

    /// The same iteration, each AVP checked as it is reached (for a chain not checked up front).
    #[inline]
    pub(crate) fn into_lazy(mut self) -> Self {
        self.lazy = true;
        self
    }

    /// Offset (from the start of the message) just past the chain: where a missing AVP "is".
    pub fn end_offset(&self) -> usize {
        self.base + self.buf.len()
    }

    /// After the iteration: the error that stopped it early (a broken AVP header, length or
    /// padding, reserved bits, too many AVPs), if any. Always `Ok` for a chain checked up front.
    pub fn finish(&self) -> Result<(), Error> {
        if self.failed {
            check_chain_detailed(self.buf, self.base, self.ctx.max_avps() as usize)
        } else {
            Ok(())
        }
    }
}

impl<'a> Iterator for AvpIter<'a> {
    type Item = Avp<'a>;

    #[inline]
    fn next(&mut self) -> Option<Avp<'a>> {
        let rest = self.buf.get(self.pos..)?;
        let Some(h) = rest.first_chunk::<8>() else {
            // the end of the chain, or (lazy) a truncated header
            self.failed = self.lazy & !rest.is_empty();
            self.pos = self.buf.len();
            return None;
        };
        let code = u32::from_be_bytes([h[0], h[1], h[2], h[3]]);
        let word = u32::from_be_bytes([h[4], h[5], h[6], h[7]]);
        let flags = (word >> 24) as u8;
        let len = (word & 0x00ff_ffff) as usize;
        let (vendor, hlen) = if flags & AvpFlags::VENDOR != 0 {
            match rest.get(8..12) {
                Some(v) => (u32::from_be_bytes([v[0], v[1], v[2], v[3]]), 12),
                None => (0, usize::MAX),
            }
        } else {
            (0, 8)
        };
        // the tests of `check_chain`, one AVP at a time: a chain checked up front passes them
        // all (no branch on `lazy` on the common path; a truncated Vendor-Id makes `hlen` too
        // large to pass)
        let step = padded(len);
        let bad = (flags & AvpFlags::RESERVED != 0)
            | (len < hlen)
            | (step > rest.len())
            | (self.count >= self.ctx.max_avps());
        if bad {
            self.failed = self.lazy;
            self.pos = self.buf.len();
            return None;
        }
        self.count += 1;
        let avp = Avp {
            code,
            vendor,
            offset: (self.base + self.pos) as u32,
            flags: AvpFlags(flags),
            header_len: hlen as u8,
            ctx: self.ctx,
            raw: &rest[..len],
        };
        self.pos += step;
        Some(avp)
    }
}

/// An AVP as values that may own their data: what typed commands keep for AVPs they do not model
/// (`*[ AVP ]`), so nothing received is lost on re-encode.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct RawAvp<'a> {
    /// AVP Code.
    pub code: u32,
    /// Flags (M, P, reserved) as received; the encoder sets V from `vendor`.
    pub flags: AvpFlags,
    /// Vendor-Id, 0 for none.
    pub vendor: u32,
    /// The data, without padding.
    pub data: Cow<'a, [u8]>,
}

impl<'a> RawAvp<'a> {
    /// An AVP of this definition (dictionary flags) with these data octets.
    pub fn new(def: &AvpDef, data: impl Into<Cow<'a, [u8]>>) -> RawAvp<'a> {
        RawAvp {
            code: def.code,
            flags: def.flags(),
            vendor: def.vendor,
            data: data.into(),
        }
    }

    /// `(code, vendor)`.
    pub const fn id(&self) -> AvpId {
        AvpId::new(self.code, self.vendor)
    }

    /// A copy that owns its data.
    pub fn into_owned(self) -> RawAvp<'static> {
        RawAvp {
            code: self.code,
            flags: self.flags,
            vendor: self.vendor,
            data: Cow::Owned(self.data.into_owned()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One UTF8String AVP (code 1, no vendor) with this data, as a top-level chain.
    fn utf8_avp(data: &[u8]) -> Result<String, ErrorKind> {
        let mut buf = Vec::new();
        crate::Encoder::new(&mut buf).raw(1, AvpFlags(0), 0, data);
        let avp = AvpIter::new(&buf, 20, 0, 4, 16).next().expect("one AVP");
        avp.utf8().map(str::to_owned).map_err(|e| e.kind)
    }

    #[test]
    fn text_is_checked_on_both_paths() {
        // the ASCII fast path
        assert_eq!(
            text(b"pcscf.ims.example.org").unwrap(),
            "pcscf.ims.example.org"
        );
        assert_eq!(text(b"").unwrap(), "");
        // non-ASCII UTF-8 (RFC 3629: 2-, 3- and 4-octet sequences) goes through from_utf8
        assert_eq!(
            text("sip:zoë@例え.jp 🎉".as_bytes()).unwrap(),
            "sip:zoë@例え.jp 🎉"
        );
        // invalid UTF-8 anywhere is refused: a lone continuation octet, a truncated sequence,
        // an overlong encoding, a surrogate, 0xff
        for bad in [
            &b"abc\x80"[..],
            b"pcscf.ims.example.org\xc3",
            b"\xc0\xaf",
            b"\xed\xa0\x80",
            b"\xff",
        ] {
            assert_eq!(text(bad), None, "{bad:?}");
            assert_eq!(utf8_avp(bad), Err(ErrorKind::InvalidAvpValue), "{bad:?}");
        }
        assert_eq!(utf8_avp(b"epc.example.org").unwrap(), "epc.example.org");
        assert_eq!(utf8_avp("zoë".as_bytes()).unwrap(), "zoë");
    }
}
