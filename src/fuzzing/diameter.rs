//! Fuzzing oracles for [`crate::diameter`]: the message view, the stream framer and the typed
//! Cx, Rx and SGd decoders.

use crate::diameter::answer::{error_answer, validate, Origin};
use crate::diameter::dict::AvpType;
use crate::diameter::{
    self as d, cx, encode_message, Avp, AvpIter, Command, EncodeBuf, Encoder, Error, Framer,
    Limits, Message, Outcome,
};

const ORIGIN: Origin<'static> = Origin {
    host: "fuzz.ims.example.org",
    realm: "ims.example.org",
    state_id: Some(1),
};

/// Rebuilds an AVP chain from its views: groups that open are rebuilt member by member, the rest
/// copied. Also calls every typed accessor of every AVP.
fn rebuild<B: EncodeBuf>(it: AvpIter<'_>, e: &mut Encoder<'_, B>) {
    for a in it {
        touch(&a);
        match a.grouped() {
            Ok(inner) if a.def().is_some_and(|d| d.ty == AvpType::Grouped) => {
                e.grouped_raw(a.code(), a.flags(), a.vendor_id(), |g| rebuild(inner, g));
            }
            _ => e.copy(&a),
        }
    }
}

/// Every accessor, with the Display round trips of the parsed text types.
fn touch(a: &Avp<'_>) {
    assert!(a.as_bytes().len() >= 8 && a.data().len() <= a.as_bytes().len());
    let _ = (
        a.u32(),
        a.i32(),
        a.u64(),
        a.i64(),
        a.f32(),
        a.f64(),
        a.time(),
    );
    let _ = (a.identity(), a.enumerated(), a.name());
    if let Ok(addr) = a.address() {
        let mut v = Vec::new();
        addr.write_to(&mut v);
        assert_eq!(v, a.data(), "Address re-encodes to its data");
        let _ = addr.to_string();
    }
    if let Ok(u) = a.uri() {
        let shown = u.to_string();
        let again = d::DiameterUri::parse(&shown).expect("a DiameterURI's Display parses");
        assert_eq!(again, u, "DiameterURI Display round trip");
    }
    if let Ok(r) = a.ip_filter_rule() {
        let shown = r.to_string();
        let again = d::IpFilterRule::parse(&shown).expect("an IPFilterRule's Display parses");
        assert_eq!(again, r, "IPFilterRule Display round trip");
    }
}

/// Checks an error answer: it parses, carries the result code, and echoes the identifiers.
fn check_answer(data: &[u8], e: &Error) {
    let Some(ans) = error_answer(data, e, &ORIGIN) else {
        return;
    };
    let a = Message::parse(&ans).expect("an error answer parses");
    assert!(!a.is_request());
    let rc = e.result_code().expect("answered errors have a result code");
    assert_eq!(a.outcome(), Some(Outcome::from_result_code(rc)));
    assert_eq!(a.flags().is_error(), (3000..4000).contains(&rc));
    let h = d::Header::parse(data).expect("answered requests have a header");
    assert_eq!(
        (a.hop_by_hop(), a.end_to_end()),
        (h.hop_by_hop, h.end_to_end)
    );
}

/// Typed decode → encode → decode gives the same value, and the encoding parses and validates.
macro_rules! typed_roundtrip {
    ($t:ident, $m:expr, $any:expr, $limits:expr) => {{
        let m: &Message<'_> = $m;
        let r = if $any {
            $t::decode_avps(m.avps())
        } else {
            <$t<'_> as Command<'_>>::decode(m)
        };
        if !$any {
            // the one-walk decoder gives the same value or the same error
            let one = <$t<'_> as Command<'_>>::decode_message_with(m.as_bytes(), $limits);
            let name = stringify!($t);
            match (&one, &r) {
                (Ok((m1, c1)), Ok(c)) => assert_eq!((m1, c1), (m, c), "{name}: one walk"),
                (Err(e1), Err(e)) => assert_eq!(e1, e, "{name}: one walk"),
                _ => panic!(
                    "{name}: one walk {:?}, two {:?}",
                    one.as_ref().err(),
                    r.as_ref().err()
                ),
            }
        }
        if let Ok(c) = r {
            let bytes = c.encode(m.hop_by_hop(), m.end_to_end());
            let m2 = Message::parse(&bytes).expect("an encoded command parses");
            validate(&m2).expect("an encoded command passes its own grammar");
            let c2 = <$t<'_> as Command<'_>>::decode(&m2).expect("an encoded command decodes");
            assert_eq!(c2, c, "{}: decode(encode(x)) != x", stringify!($t));
            assert_eq!(c2.encode(m.hop_by_hop(), m.end_to_end()), bytes);
        }
    }};
}

/// `diameter_message`: [`Message::parse`] and everything reachable from a message.
///
/// Oracles: a parsed message is a prefix of the input, a multiple of 4 long; rebuilding its AVP
/// tree with the encoder gives the same octets (padding as zeros); every accessor is total and the text types'
/// `Display` re-parses equal; [`validate`] never panics and its error offsets stay inside the
/// message; every error with a result code yields an answer that parses, carries that code, the E
/// bit exactly for 3xxx, and the request's identifiers; a typed command that decodes re-encodes
/// to octets that decode equal.
pub fn diameter_message(data: &[u8]) {
    let limits = Limits {
        max_depth: 8,
        ..Limits::default()
    };
    match Message::parse_with(data, &limits) {
        Ok(m) => {
            assert_eq!(m.as_bytes(), &data[..m.len()]);
            assert_eq!(m.len() % 4, 0);
            let mut out = Vec::new();
            encode_message(&mut out, m.header(), |e| rebuild(m.avps(), e));
            // identical except padding octets: a receiver ignores them (RFC 6733 §4 asks senders
            // for zeros), the encoder writes zeros; rebuilding is then idempotent
            assert_eq!(out.len(), m.len(), "rebuilt AVP tree length differs");
            assert!(
                out.iter().zip(m.as_bytes()).all(|(a, b)| a == b || *a == 0),
                "rebuilt AVP tree differs beyond padding"
            );
            let m2 = Message::parse_with(&out, &limits).expect("a rebuilt message parses");
            let mut again = Vec::new();
            encode_message(&mut again, m2.header(), |e| rebuild(m2.avps(), e));
            assert_eq!(again, out, "rebuilding is not idempotent");
            let _ = (m.session_id(), m.origin_host(), m.outcome());
            match validate(&m) {
                Ok(()) => {}
                Err(e) => {
                    assert!(e.offset <= m.len(), "error offset past the message: {e}");
                    if m.is_request() {
                        check_answer(data, &e);
                    }
                }
            }
            typed_all(&m, &limits);
        }
        Err(e) => {
            assert!(e.offset <= data.len().max(d::HEADER_LEN), "{e}");
            if !e.is_incomplete() {
                if let Ok(h) = d::Header::parse(data) {
                    if h.flags.is_request() {
                        check_answer(data, &e);
                    }
                }
            }
        }
    }
}

fn typed_all(m: &Message<'_>, limits: &Limits) {
    use crate::diameter::{base::*, rx::*};
    typed_roundtrip!(Cer, m, false, limits);
    typed_roundtrip!(Cea, m, false, limits);
    typed_roundtrip!(Dwr, m, false, limits);
    typed_roundtrip!(Dwa, m, false, limits);
    typed_roundtrip!(Dpr, m, false, limits);
    typed_roundtrip!(Dpa, m, false, limits);
    typed_roundtrip!(Aar, m, false, limits);
    typed_roundtrip!(Aaa, m, false, limits);
    typed_roundtrip!(Rar, m, false, limits);
    typed_roundtrip!(Raa, m, false, limits);
    typed_roundtrip!(Str, m, false, limits);
    typed_roundtrip!(Sta, m, false, limits);
    typed_roundtrip!(Asr, m, false, limits);
    typed_roundtrip!(Asa, m, false, limits);
    cx_all(m, false, limits);
    sgd_all(m, false, limits);
    s6c_all(m, false, limits);
}

fn s6c_all(m: &Message<'_>, any_code: bool, limits: &Limits) {
    use crate::diameter::s6c::*;
    typed_roundtrip!(Srr, m, any_code, limits);
    typed_roundtrip!(Sra, m, any_code, limits);
    typed_roundtrip!(Alr, m, any_code, limits);
    typed_roundtrip!(Ala, m, any_code, limits);
    typed_roundtrip!(Rdr, m, any_code, limits);
    typed_roundtrip!(Rda, m, any_code, limits);
}

fn sgd_all(m: &Message<'_>, any_code: bool, limits: &Limits) {
    use crate::diameter::sgd::*;
    typed_roundtrip!(Ofr, m, any_code, limits);
    typed_roundtrip!(Ofa, m, any_code, limits);
    typed_roundtrip!(Tfr, m, any_code, limits);
    typed_roundtrip!(Tfa, m, any_code, limits);
}

fn cx_all(m: &Message<'_>, any_code: bool, limits: &Limits) {
    use cx::*;
    typed_roundtrip!(Uar, m, any_code, limits);
    typed_roundtrip!(Uaa, m, any_code, limits);
    typed_roundtrip!(Sar, m, any_code, limits);
    typed_roundtrip!(Saa, m, any_code, limits);
    typed_roundtrip!(Lir, m, any_code, limits);
    typed_roundtrip!(Lia, m, any_code, limits);
    typed_roundtrip!(Mar, m, any_code, limits);
    typed_roundtrip!(Maa, m, any_code, limits);
    typed_roundtrip!(Rtr, m, any_code, limits);
    typed_roundtrip!(Rta, m, any_code, limits);
    typed_roundtrip!(Ppr, m, any_code, limits);
    typed_roundtrip!(Ppa, m, any_code, limits);
}

/// `diameter_cx`: every Cx/Dx, SGd and S6c typed decoder on the AVPs of any message that parses,
/// whatever its command code, with the typed round-trip oracle of [`diameter_message`].
pub fn diameter_cx(data: &[u8]) {
    if let Ok(m) = Message::parse(data) {
        cx_all(&m, true, &Limits::default());
        sgd_all(&m, true, &Limits::default());
        s6c_all(&m, true, &Limits::default());
    }
}

/// `diameter_framer`: the input fed to a [`Framer`] in chunks whose sizes come from the input.
///
/// Oracles: the frames equal those cut from the whole input at once, concatenate to a prefix of
/// it, and each is as long as its Message Length; the framer ends with at most an incomplete
/// message buffered, or stops at the first unframeable length, as the one-shot cut does.
pub fn diameter_framer(data: &[u8]) {
    let limits = Limits {
        max_message_size: 1 << 16,
        ..Limits::default()
    };
    // one shot
    let mut whole = Framer::with_limits(limits);
    whole.push(data);
    let mut expect = Vec::new();
    let whole_err = loop {
        match whole.next_frame() {
            Ok(Some(f)) => expect.push(f),
            Ok(None) => break None,
            Err(e) => break Some(e),
        }
    };
    // chunked
    let step = usize::from(data.first().copied().unwrap_or(1) % 37) + 1;
    let mut f = Framer::with_limits(limits);
    let mut got = Vec::new();
    let mut err = None;
    'outer: for chunk in data.chunks(step) {
        f.push(chunk);
        loop {
            match f.next_frame() {
                Ok(Some(fr)) => got.push(fr),
                Ok(None) => break,
                Err(e) => {
                    err = Some(e);
                    break 'outer;
                }
            }
        }
    }
    assert_eq!(got, expect, "chunked framing differs");
    assert_eq!(err.map(|e| e.kind), whole_err.map(|e| e.kind));
    let cat: Vec<u8> = got.iter().flat_map(|b| b.iter().copied()).collect();
    assert_eq!(&data[..cat.len()], &cat[..]);
    for fr in &got {
        let len = d::frame_length(fr, &limits).expect("a frame has a valid length");
        assert_eq!(len, Some(fr.len()));
        let _ = Message::parse_with(fr, &limits);
    }
}
