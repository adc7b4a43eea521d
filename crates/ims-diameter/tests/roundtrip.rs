//! proptest: every typed command, filled with random values (every optional and repeated field
//! sometimes present), encodes to a message that parses, passes its own grammar, and decodes back
//! equal; re-encoding the decoded value gives the same octets; the framer cuts a stream of them
//! at any split.

use ims_diameter::testing::Rng;
use ims_diameter::{base, cx, rx, s6c, sgd, Command, Framer, Message};
use proptest::prelude::*;

macro_rules! roundtrip {
    ($($t:ident :: $c:ident),* $(,)?) => {$(
        #[allow(non_snake_case)]
        mod $c {
            use super::*;
            proptest! {
                #![proptest_config(ProptestConfig::with_cases(64))]
                #[test]
                fn encode_decode(seed in any::<u64>()) {
                    let mut r = Rng::new(seed);
                    let c = $t::$c::__sample(&mut r);
                    let bytes = c.encode(seed as u32, (seed >> 32) as u32);
                    let msg = Message::parse(&bytes).unwrap();
                    ims_diameter::answer::validate(&msg).unwrap();
                    let back = $t::$c::decode(&msg).unwrap();
                    prop_assert_eq!(&back, &c);
                    let again = back.encode(seed as u32, (seed >> 32) as u32);
                    prop_assert_eq!(&again, &bytes);
                    let h = $t::$c::header(seed as u32, (seed >> 32) as u32);
                    // appended after other octets, into a BytesMut too
                    let mut b = bytes::BytesMut::from(&b"xyz"[..]);
                    let n = c.encode_into(&h, &mut b);
                    prop_assert_eq!(n, bytes.len());
                    prop_assert_eq!(&b[3..], &bytes[..]);
                    // the typed commands' Writer and the Encoder give the same octets, also
                    // when the Writer's first window is too small (written again at its size;
                    // a window ending inside a Grouped AVP or a nested struct's local writer
                    // leaves the rest unwritten, counted only)
                    let mut old = Vec::new();
                    ims_diameter::encode_message(&mut old, &h, |e| c.encode_avps(e));
                    prop_assert_eq!(&old, &bytes);
                    for room in [0, 20, bytes.len() / 2, bytes.len() * 3 / 4, bytes.len() - 1, bytes.len(), bytes.len() + 5] {
                        let mut w = vec![7u8];
                        let n = ims_diameter::write_message(&mut w, &h, room, |w| c.write_avps(w));
                        prop_assert_eq!(n, bytes.len());
                        prop_assert_eq!(&w[1..], &bytes[..]);
                    }
                }
            }
        }
    )*};
}

roundtrip!(
    base::Cer,
    base::Cea,
    base::Dwr,
    base::Dwa,
    base::Dpr,
    base::Dpa,
    cx::Uar,
    cx::Uaa,
    cx::Sar,
    cx::Saa,
    cx::Lir,
    cx::Lia,
    cx::Mar,
    cx::Maa,
    cx::Rtr,
    cx::Rta,
    cx::Ppr,
    cx::Ppa,
    rx::Aar,
    rx::Aaa,
    rx::Rar,
    rx::Raa,
    rx::Str,
    rx::Sta,
    rx::Asr,
    rx::Asa,
    sgd::Ofr,
    sgd::Ofa,
    sgd::Tfr,
    sgd::Tfa,
    s6c::Srr,
    s6c::Sra,
    s6c::Alr,
    s6c::Ala,
    s6c::Rdr,
    s6c::Rda,
);

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn framer_any_split(seed in any::<u64>(), cuts in proptest::collection::vec(1usize..300, 0..20)) {
        let mut stream = Vec::new();
        let mut msgs = Vec::new();
        let mut r = Rng::new(seed);
        for i in 0..4u64 {
            let mut g = Rng::new(r.next_u64());
            let b = match i % 3 {
                0 => cx::Saa::__sample(&mut g).encode(1, 2),
                1 => rx::Aar::__sample(&mut g).encode(3, 4),
                _ => base::Dwr::__sample(&mut g).encode(5, 6),
            };
            Message::parse(&b).unwrap();
            stream.extend_from_slice(&b);
            msgs.push(b);
        }
        let mut f = Framer::new();
        let mut got = Vec::new();
        let mut pos: usize = 0;
        for c in cuts.iter().chain(std::iter::once(&usize::MAX)) {
            let end = pos.saturating_add(*c).min(stream.len());
            f.push(&stream[pos..end]);
            pos = end;
            while let Some(m) = f.next_frame().unwrap() {
                got.push(m.to_vec());
            }
        }
        prop_assert_eq!(got, msgs);
    }
}
