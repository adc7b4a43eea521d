//! The declarative macros that turn an AVP grammar (RFC 6733 §3.2 CCF / §4.4 grouped ABNF) into a
//! plain struct with `decode` / `encode`, so every typed command and Grouped AVP is written once,
//! in the order and with the multiplicities of its specification.
//!
//! Field kinds: `fixed` (`< AVP >`: exactly one, first), `req` (`{ AVP }`), `opt` (`[ AVP ]`),
//! `vec` (`*[ AVP ]`), `vec1` (`1*{ AVP }`), `max2` (`0*2[ AVP ]`). Struct modes: `closed` (no
//! `*[ AVP ]`: other AVPs are 5008), `any` (`*[ AVP ]`: other AVPs are kept in `other`, unknown
//! M-bit AVPs are 5001), `raw` (Failed-AVP: everything kept unchecked).

/// Declares an enumeration with an `Unknown(i32)` variant and its [`crate::AvpValue`] impl.
macro_rules! enumerated {
    ($(#[$m:meta])* pub enum $name:ident : $def:path {
        $fvar:ident = $fval:literal $(, $var:ident = $val:literal)* $(,)?
    }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            #[doc = concat!("`", stringify!($fval), "`")]
            $fvar,
            $(#[doc = concat!("`", stringify!($val), "`")] $var,)*
            /// A value this crate does not name (kept for re-encode).
            Unknown(i32),
        }
        impl $name {
            /// The variant for a wire value.
            pub const fn from_i32(v: i32) -> Self {
                match v {
                    $fval => Self::$fvar,
                    $($val => Self::$var,)*
                    v => Self::Unknown(v),
                }
            }
            /// The wire value.
            pub const fn to_i32(self) -> i32 {
                match self {
                    Self::$fvar => $fval,
                    $(Self::$var => $val,)*
                    Self::Unknown(v) => v,
                }
            }
            /// The specification's name of the value (from the dictionary).
            pub fn name(self) -> Option<&'static str> {
                $def.enum_name(self.to_i32())
            }
        }
        impl Default for $name {
            fn default() -> Self {
                Self::$fvar
            }
        }
        impl $crate::testing::Sample for $name {
            fn sample(r: &mut $crate::testing::Rng) -> Self {
                Self::from_i32(r.below(20) as i32)
            }
        }
        impl<'a> $crate::encode::AvpValue<'a> for $name {
            #[inline]
            fn decode_avp(avp: &$crate::Avp<'a>) -> Result<Self, $crate::Error> {
                avp.i32().map(Self::from_i32)
            }
            #[inline]
            fn encode_avp<B: $crate::encode::EncodeBuf>(
                &self,
                def: &$crate::dict::AvpDef,
                enc: &mut $crate::Encoder<'_, B>,
            ) {
                enc.i32(def, self.to_i32())
            }
            #[inline(always)]
            fn write_avp(&self, def: &$crate::dict::AvpDef, w: &mut $crate::encode::Writer<'_>) {
                w.leaf4(def.code, def.flags().0, def.vendor, self.to_i32().to_be_bytes())
            }
        }
    };
}

/// The field type: repeated fields with an inline capacity `[N]` are a [`crate::Repeated`] (no
/// allocation up to N occurrences), the others a `Vec`.
macro_rules! __field_ty {
    (fixed, $t:ty $(, $n:literal)?) => { $t };
    (req, $t:ty $(, $n:literal)?) => { $t };
    (opt, $t:ty $(, $n:literal)?) => { Option<$t> };
    ($kind:ident, $t:ty) => { Vec<$t> };
    ($kind:ident, $t:ty, $n:literal) => { $crate::Repeated<$t, $n> };
}

/// Decodes one occurrence straight into the output struct's field (no value moved).
macro_rules! __into_push {
    (fixed, $out:ident, $f:ident, $seen:ident, $avp:ident, $idx:ident) => {{
        if $idx != 0 {
            return Err($crate::error::Error::at_avp(
                $crate::ErrorKind::AvpNotAllowed,
                $avp.offset(),
                $avp.id(),
            ));
        }
        $crate::encode::AvpValue::decode_avp_into(&{ $avp }, &mut $out.$f)?;
        $seen = true;
    }};
    (req, $out:ident, $f:ident, $seen:ident, $avp:ident, $idx:ident) => {{
        if $seen {
            return Err($crate::error::Error::at_avp(
                $crate::ErrorKind::AvpOccursTooManyTimes,
                $avp.offset(),
                $avp.id(),
            ));
        }
        $crate::encode::AvpValue::decode_avp_into(&{ $avp }, &mut $out.$f)?;
        $seen = true;
    }};
    (opt, $out:ident, $f:ident, $seen:ident, $avp:ident, $idx:ident) => {{
        if $out.$f.is_some() {
            return Err($crate::error::Error::at_avp(
                $crate::ErrorKind::AvpOccursTooManyTimes,
                $avp.offset(),
                $avp.id(),
            ));
        }
        $out.$f = Some($crate::encode::AvpValue::decode_avp(&{ $avp })?);
    }};
    (vec, $out:ident, $f:ident, $seen:ident, $avp:ident, $idx:ident) => {
        $crate::repeated::PushDecoded::push_decoded(&mut $out.$f, &{ $avp })?
    };
    (vec1, $out:ident, $f:ident, $seen:ident, $avp:ident, $idx:ident) => {
        __into_push!(vec, $out, $f, $seen, $avp, $idx)
    };
    (max2, $out:ident, $f:ident, $seen:ident, $avp:ident, $idx:ident) => {{
        if $out.$f.len() >= 2 {
            return Err($crate::error::Error::at_avp(
                $crate::ErrorKind::AvpOccursTooManyTimes,
                $avp.offset(),
                $avp.id(),
            ));
        }
        __into_push!(vec, $out, $f, $seen, $avp, $idx)
    }};
}

/// After the walk: a required field that was not seen is 5005.
macro_rules! __into_finish {
    (fixed, $out:ident, $f:ident, $seen:ident, $def:path, $end:expr) => {
        __into_finish!(req, $out, $f, $seen, $def, $end)
    };
    (req, $out:ident, $f:ident, $seen:ident, $def:path, $end:expr) => {
        if !$seen {
            return Err($crate::error::Error::at_avp(
                $crate::ErrorKind::MissingAvp,
                $end,
                $def.id(),
            ));
        }
    };
    (vec1, $out:ident, $f:ident, $seen:ident, $def:path, $end:expr) => {
        if $out.$f.is_empty() {
            return Err($crate::error::Error::at_avp(
                $crate::ErrorKind::MissingAvp,
                $end,
                $def.id(),
            ));
        }
    };
    ($kind:ident, $out:ident, $f:ident, $seen:ident, $def:path, $end:expr) => {};
}

macro_rules! __field_encode {
    (fixed, $v:expr, $def:path, $enc:ident) => {
        $crate::encode::AvpValue::encode_avp(&$v, $def, $enc)
    };
    (req, $v:expr, $def:path, $enc:ident) => {
        $crate::encode::AvpValue::encode_avp(&$v, $def, $enc)
    };
    (opt, $v:expr, $def:path, $enc:ident) => {
        if let Some(v) = &$v {
            $crate::encode::AvpValue::encode_avp(v, $def, $enc)
        }
    };
    (vec, $v:expr, $def:path, $enc:ident) => {
        for v in &$v {
            $crate::encode::AvpValue::encode_avp(v, $def, $enc)
        }
    };
    (vec1, $v:expr, $def:path, $enc:ident) => {
        __field_encode!(vec, $v, $def, $enc)
    };
    (max2, $v:expr, $def:path, $enc:ident) => {
        __field_encode!(vec, $v, $def, $enc)
    };
}

macro_rules! __field_write {
    (fixed, $v:expr, $def:path, $w:ident) => {
        $crate::encode::AvpValue::write_avp(&$v, $def, $w)
    };
    (req, $v:expr, $def:path, $w:ident) => {
        $crate::encode::AvpValue::write_avp(&$v, $def, $w)
    };
    (opt, $v:expr, $def:path, $w:ident) => {
        if let Some(v) = &$v {
            $crate::encode::AvpValue::write_avp(v, $def, $w)
        }
    };
    (vec, $v:expr, $def:path, $w:ident) => {
        for v in &$v {
            $crate::encode::AvpValue::write_avp(v, $def, $w)
        }
    };
    (vec1, $v:expr, $def:path, $w:ident) => {
        __field_write!(vec, $v, $def, $w)
    };
    (max2, $v:expr, $def:path, $w:ident) => {
        __field_write!(vec, $v, $def, $w)
    };
}

macro_rules! __rule_kind {
    (fixed) => {
        $crate::grammar::Occurs::Fixed
    };
    (req) => {
        $crate::grammar::Occurs::Required
    };
    (opt) => {
        $crate::grammar::Occurs::Optional
    };
    (vec) => {
        $crate::grammar::Occurs::Any
    };
    (vec1) => {
        $crate::grammar::Occurs::AtLeastOne
    };
    (max2) => {
        $crate::grammar::Occurs::AtMostTwo
    };
}

macro_rules! __mode {
    (closed) => {
        $crate::grammar::Extra::Closed
    };
    (any) => {
        $crate::grammar::Extra::Any
    };
    (raw) => {
        $crate::grammar::Extra::Raw
    };
}

/// Declares a struct for an AVP sequence (a Grouped AVP's or a command's) with its grammar.
macro_rules! avp_struct {
    ($(#[$m:meta])* pub struct $name:ident<'a> [$mode:ident] {
        $($(#[$fm:meta])* $f:ident : $kind:ident $t:ty $([$n:literal])? = $def:path),* $(,)?
    }) => {
        $(#[$m])*
        #[derive(Debug, Clone, PartialEq)]
        pub struct $name<'a> {
            $($(#[$fm])* pub $f: __field_ty!($kind, $t $(, $n)?),)*
            /// AVPs not named above that the grammar admits (`*[ AVP ]`), kept in order for
            /// re-encode (after the named ones).
            pub other: Vec<$crate::RawAvp<'a>>,
        }

        // written out (not derived) to be inlined: the typed decoders start from a default
        // value built where it is stored, instead of a copy of one built elsewhere
        impl Default for $name<'_> {
            #[inline]
            fn default() -> Self {
                $name {
                    $($f: Default::default(),)*
                    other: Vec::new(),
                }
            }
        }

        impl<'a> $name<'a> {
            /// The grammar: each named AVP with its multiplicity, and what other AVPs may appear.
            pub const GRAMMAR: $crate::grammar::Grammar = $crate::grammar::Grammar {
                rules: &[$($crate::grammar::Rule { avp: $def, occurs: __rule_kind!($kind) },)*],
                extra: __mode!($mode),
            };

            /// Decodes the AVP sequence, checking the grammar: 5005 for a missing required AVP,
            /// 5009 for one too many, 5008 for one not allowed, 5001 for an unknown M-bit AVP,
            /// 5014 / 5004 for a bad value.
            #[inline]
            pub fn decode_avps(avps: $crate::AvpIter<'a>) -> Result<Self, $crate::Error> {
                // the result is built where it is returned (no copy of the struct: one
                // `return` of `r`, no early one)
                let mut r = Ok(Self::default());
                if let Ok(out) = &mut r {
                    if let Err(e) = Self::decode_avps_into(avps, out) {
                        r = Err(e);
                    }
                }
                r
            }

            /// [`Self::decode_avps`] into `out`, which must be `Self::default()`: each value is
            /// decoded in its place in `out` (Grouped members too), nothing is moved. After an
            /// error `out` holds what was decoded before it.
            #[allow(unused_mut, unused_variables, unused_assignments)]
            pub fn decode_avps_into(
                avps: $crate::AvpIter<'a>,
                out: &mut Self,
            ) -> Result<(), $crate::Error> {
                Self::__decode_avps_into_inline(avps, out)
            }

            /// [`Self::decode_avps_into`] inlined: small Grouped AVPs are decoded in their
            /// parent's decoder (see `decode_avp_into`: a call cost more than their members).
            #[doc(hidden)]
            #[allow(unused_mut, unused_variables, unused_assignments)]
            #[inline(always)]
            pub fn __decode_avps_into_inline(
                avps: $crate::AvpIter<'a>,
                out: &mut Self,
            ) -> Result<(), $crate::Error> {
                let end = avps.end_offset();
                // `true` once a `fixed` / `req` field has been decoded
                $(let mut $f = false;)*
                let mut it = avps;
                let mut n = 0usize;
                // the AVP Codes as associated constants, so the dispatch is one `match` (a
                // search tree or jump table) instead of one comparison per field
                #[allow(dead_code)]
                struct Code;
                #[allow(non_upper_case_globals)]
                impl Code {
                    $(const $f: u32 = $def.code;)*
                }
                while let Some(avp) = it.next() {
                    let idx = n;
                    n += 1;
                    match avp.code() {
                        $(
                            Code::$f if avp.vendor_id() == $def.vendor => {
                                __into_push!($kind, out, $f, $f, avp, idx);
                                continue;
                            }
                        )*
                        _ => {}
                    }
                    $crate::grammar::other_avp(&avp, __mode!($mode), &mut out.other)?;
                }
                it.finish()?;
                $(__into_finish!($kind, out, $f, $f, $def, end);)*
                Ok(())
            }

            #[doc(hidden)]
            #[allow(unused_variables)]
            pub fn __sample(r: &mut $crate::testing::Rng) -> Self {
                $name {
                    $($f: __field_sample!($kind, $t, $def, r),)*
                    other: Vec::new(),
                }
            }

            /// Appends the AVPs in declaration order, then `other`.
            #[allow(unused_variables)]
            pub fn encode_avps<B: $crate::encode::EncodeBuf>(&self, enc: &mut $crate::Encoder<'_, B>) {
                $(__field_encode!($kind, self.$f, $def, enc);)*
                for a in &self.other {
                    enc.raw_avp(a);
                }
            }

            /// [`Self::encode_avps`] with a [`Writer`](crate::Writer) (same octets).
            #[inline]
            pub fn write_avps(&self, w: &mut $crate::encode::Writer<'_>) {
                // through a local copy of the writer, whose position stays in a register
                let mut l = w.local();
                self.__write_avps_inline(&mut l);
                let pos = l.pos();
                w.sync(pos);
            }

            /// [`Self::write_avps`] inlined (small Grouped AVPs are written in their parent's
            /// writer, as they are decoded in their parent's decoder).
            #[doc(hidden)]
            #[allow(unused_variables)]
            #[inline(always)]
            pub fn __write_avps_inline(&self, w: &mut $crate::encode::Writer<'_>) {
                $(__field_write!($kind, self.$f, $def, w);)*
                for a in &self.other {
                    w.raw_avp(a);
                }
            }
        }
    };
}

macro_rules! __field_sample {
    (fixed, $t:ty, $d:path, $r:ident) => {
        <$t as $crate::testing::Sample>::sample_for($d, $r)
    };
    (req, $t:ty, $d:path, $r:ident) => {
        <$t as $crate::testing::Sample>::sample_for($d, $r)
    };
    (opt, $t:ty, $d:path, $r:ident) => {
        $r.coin()
            .then(|| <$t as $crate::testing::Sample>::sample_for($d, $r))
    };
    (vec, $t:ty, $d:path, $r:ident) => {
        (0..$r.below(3))
            .map(|_| <$t as $crate::testing::Sample>::sample_for($d, $r))
            .collect()
    };
    (vec1, $t:ty, $d:path, $r:ident) => {
        (0..1 + $r.below(2))
            .map(|_| <$t as $crate::testing::Sample>::sample_for($d, $r))
            .collect()
    };
    (max2, $t:ty, $d:path, $r:ident) => {
        (0..$r.below(3))
            .map(|_| <$t as $crate::testing::Sample>::sample_for($d, $r))
            .collect()
    };
}

/// Declares a Grouped AVP struct and its [`crate::AvpValue`] impl.
macro_rules! grouped {
    ($(#[$m:meta])* pub struct $name:ident<'a> [$mode:ident] { $($body:tt)* }) => {
        avp_struct! { $(#[$m])* pub struct $name<'a> [$mode] { $($body)* } }
        impl<'a> $crate::testing::Sample for $name<'a> {
            fn sample(r: &mut $crate::testing::Rng) -> Self {
                Self::__sample(r)
            }
        }
        impl<'a> $crate::encode::AvpValue<'a> for $name<'a> {
            #[inline]
            fn decode_avp(avp: &$crate::Avp<'a>) -> Result<Self, $crate::Error> {
                Self::decode_avps(avp.grouped_lazy()?)
            }
            #[inline(always)]
            fn decode_avp_into(avp: &$crate::Avp<'a>, out: &mut Self) -> Result<(), $crate::Error> {
                // a group of up to 4 named AVPs (Flows, Subscription-Id, Vendor-Specific-
                // Application-Id, ...) is decoded inline in its parent's decoder: the call
                // cost more than decoding its members; larger ones stay a call (this fn is
                // always inlined: left to the compiler, the call into a small group's inlined
                // walker stayed out of line — callgrind, CER decode −9 %)
                if Self::GRAMMAR.rules.len() <= 4 {
                    Self::__decode_avps_into_inline(avp.grouped_lazy()?, out)
                } else {
                    Self::decode_avps_into(avp.grouped_lazy()?, out)
                }
            }
            fn encode_avp<B: $crate::encode::EncodeBuf>(
                &self,
                def: &$crate::dict::AvpDef,
                enc: &mut $crate::Encoder<'_, B>,
            ) {
                enc.grouped(def, |e| self.encode_avps(e))
            }
            #[inline(always)]
            fn write_avp(&self, def: &$crate::dict::AvpDef, w: &mut $crate::encode::Writer<'_>) {
                // as in `decode_avp_into`: a group of up to 4 named AVPs inline, larger a call;
                // the header is written after the members (`group_begin` / `group_end`, not a
                // closure: a closure body stays out of line)
                let (flags, vendor) = (def.flags().0, def.vendor);
                let start = w.group_begin(flags, vendor);
                if Self::GRAMMAR.rules.len() <= 4 {
                    self.__write_avps_inline(w);
                } else {
                    self.write_avps(w);
                }
                w.group_end(start, def.code, flags, vendor);
            }
        }
    };
}

/// Declares a command struct and its [`crate::Command`] impl.
macro_rules! command {
    ($(#[$m:meta])* pub struct $name:ident<'a> = ($code:expr, $app:expr, $req:literal, $pxy:literal, $abbr:literal) [$mode:ident] { $($body:tt)* }) => {
        avp_struct! { $(#[$m])* pub struct $name<'a> [$mode] { $($body)* } }
        impl<'a> $crate::Command<'a> for $name<'a> {
            const CODE: u32 = $code;
            const APPLICATION_ID: u32 = $app;
            const REQUEST: bool = $req;
            const PROXIABLE: bool = $pxy;
            const NAME: &'static str = $abbr;
            fn decode_avps(avps: $crate::AvpIter<'a>) -> Result<Self, $crate::Error> {
                $name::decode_avps(avps)
            }
            #[inline]
            fn decode_avps_into(avps: $crate::AvpIter<'a>, out: &mut Self) -> Result<(), $crate::Error> {
                $name::decode_avps_into(avps, out)
            }
            fn encode_avps<B: $crate::encode::EncodeBuf>(&self, enc: &mut $crate::Encoder<'_, B>) {
                $name::encode_avps(self, enc)
            }
            #[inline]
            fn write_avps(&self, w: &mut $crate::encode::Writer<'_>) {
                $name::write_avps(self, w)
            }
            fn encode_into<B: $crate::encode::EncodeBuf>(&self, header: &$crate::Header, buf: &mut B) -> usize {
                // the size of the last message of this command encoded here: the next one's
                // zeroed window (a hint only: a longer message is written again at its size)
                static ROOM: ::std::sync::atomic::AtomicUsize = ::std::sync::atomic::AtomicUsize::new(256);
                let room = ROOM.load(::std::sync::atomic::Ordering::Relaxed);
                let n = $crate::encode::write_message(buf, header, room, |w| self.write_avps(w));
                if n > room {
                    ROOM.store(n.min(1 << 16), ::std::sync::atomic::Ordering::Relaxed);
                }
                n
            }
            fn grammar() -> &'static $crate::grammar::Grammar {
                &Self::GRAMMAR
            }
        }
    };
}

/// Adds `outcome()` / `set_outcome()` to an answer with `result_code` and `experimental_result`.
macro_rules! answer_outcome {
    ($($name:ident),*) => {$(
        impl $name<'_> {
            /// Result-Code, or Experimental-Result when there is no Result-Code.
            pub fn outcome(&self) -> Option<$crate::Outcome> {
                $crate::result::outcome_of(self.result_code, self.experimental_result.as_ref())
            }
            /// Sets Result-Code (base codes) or Experimental-Result (vendor codes), clearing the other.
            pub fn set_outcome(&mut self, o: $crate::Outcome) {
                let (rc, er) = $crate::result::split_outcome(o);
                self.result_code = rc;
                self.experimental_result = er;
            }
        }
    )*};
}

/// Adds `outcome()` / `set_outcome()` to an answer with only `result_code`.
macro_rules! answer_result_code {
    ($($name:ident),*) => {$(
        impl $name<'_> {
            /// Result-Code as an outcome.
            pub fn outcome(&self) -> Option<$crate::Outcome> {
                self.result_code.map($crate::Outcome::from_result_code)
            }
        }
    )*};
}
