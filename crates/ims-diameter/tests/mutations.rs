//! Deterministic mutation testing on stable: every vector of tests/vectors/diameter, mutated
//! thousands of ways (bit flips, octet changes, truncation, insertion, length-field edits), goes
//! through parse, AVP walk, every accessor, validation, error answers and typed round trips.
//! Nothing may panic, and the invariants of `ims::fuzzing::diameter` hold (a smaller copy of
//! those oracles, so the crate proves them without the root package).

use ims_diameter::answer::{error_answer, validate, Origin};
use ims_diameter::dict::AvpType;
use ims_diameter::testing::Rng;
use ims_diameter::*;
use std::path::PathBuf;

const ORIGIN: Origin<'static> = Origin {
    host: "hss.example.org",
    realm: "example.org",
    state_id: None,
};

fn vectors() -> Vec<Vec<u8>> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/vectors/diameter");
    let mut v: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "bin"))
        .collect();
    v.sort();
    v.into_iter().map(|p| std::fs::read(p).unwrap()).collect()
}

fn walk(it: AvpIter<'_>, e: &mut Encoder<'_, Vec<u8>>) {
    for a in it {
        let _ = (
            a.u32(),
            a.i64(),
            a.f64(),
            a.utf8(),
            a.identity(),
            a.time(),
            a.name(),
        );
        if let Ok(x) = a.address() {
            let mut v = Vec::new();
            x.write_to(&mut v);
            assert_eq!(v, a.data());
        }
        if let Ok(u) = a.uri() {
            assert_eq!(DiameterUri::parse(&u.to_string()).unwrap(), u);
        }
        if let Ok(r) = a.ip_filter_rule() {
            assert_eq!(IpFilterRule::parse(&r.to_string()).unwrap(), r);
        }
        match a.grouped() {
            Ok(g) if a.def().is_some_and(|d| d.ty == AvpType::Grouped) => {
                e.grouped_raw(a.code(), a.flags(), a.vendor_id(), |x| walk(g, x))
            }
            _ => e.copy(&a),
        }
    }
}

macro_rules! rt {
    ($m:expr, $($t:ty),*) => {$(
        if let Ok(c) = <$t>::decode($m) {
            let b = c.encode($m.hop_by_hop(), $m.end_to_end());
            let m2 = Message::parse(&b).unwrap();
            validate(&m2).unwrap();
            assert_eq!(<$t>::decode(&m2).unwrap(), c);
        }
    )*};
}

/// `Command::decode_message` (one walk) gives what `Message::parse` + `Command::decode` give:
/// the same message and value, or the same error (kind, offset and AVP).
macro_rules! one_pass {
    ($data:expr, $($t:ty),*) => {$(
        let two = Message::parse($data).and_then(|m| Ok((m, <$t>::decode(&m)?)));
        let one = <$t as Command<'_>>::decode_message($data);
        match (&one, &two) {
            (Ok(a), Ok(b)) => assert_eq!(a, b, "{}", stringify!($t)),
            (Err(a), Err(b)) => assert_eq!(a, b, "{}", stringify!($t)),
            _ => panic!("{}: one pass {:?}, two passes {:?}", stringify!($t), one.as_ref().err(), two.as_ref().err()),
        }
    )*};
}

fn one_pass_all(data: &[u8]) {
    use ims_diameter::{base::*, cx::*, rx::*};
    one_pass!(data, Cer<'_>, Cea<'_>, Dwr<'_>, Dwa<'_>, Dpr<'_>, Dpa<'_>);
    one_pass!(data, Uar<'_>, Uaa<'_>, Sar<'_>, Saa<'_>, Lir<'_>, Lia<'_>);
    one_pass!(data, Mar<'_>, Maa<'_>, Rtr<'_>, Rta<'_>, Ppr<'_>, Ppa<'_>);
    one_pass!(
        data,
        Aar<'_>,
        Aaa<'_>,
        Rar<'_>,
        Raa<'_>,
        Str<'_>,
        Sta<'_>,
        Asr<'_>,
        Asa<'_>
    );
    one_pass!(data, sgd::Ofr<'_>, sgd::Ofa<'_>, sgd::Tfr<'_>, sgd::Tfa<'_>);
    one_pass!(
        data,
        s6c::Srr<'_>,
        s6c::Sra<'_>,
        s6c::Alr<'_>,
        s6c::Ala<'_>,
        s6c::Rdr<'_>,
        s6c::Rda<'_>
    );
}

fn oracle(data: &[u8]) {
    one_pass_all(data);
    match Message::parse(data) {
        Ok(m) => {
            let mut out = Vec::new();
            encode_message(&mut out, m.header(), |e| walk(m.avps(), e));
            // identical except padding, which a receiver ignores and the encoder writes as zeros
            assert_eq!(out.len(), m.len());
            assert!(out.iter().zip(m.as_bytes()).all(|(a, b)| a == b || *a == 0));
            let m2 = Message::parse(&out).unwrap();
            let mut again = Vec::new();
            encode_message(&mut again, m2.header(), |e| walk(m2.avps(), e));
            assert_eq!(again, out);
            if let Err(e) = validate(&m) {
                assert!(e.offset <= m.len());
                if m.is_request() {
                    if let Some(a) = error_answer(data, &e, &ORIGIN) {
                        let a = Message::parse(&a).unwrap();
                        assert_eq!(a.outcome().map(|o| o.code()), e.result_code());
                    }
                }
            }
            use ims_diameter::{base::*, cx::*, rx::*};
            rt!(&m, Cer<'_>, Cea<'_>, Dwr<'_>, Dwa<'_>, Dpr<'_>, Dpa<'_>);
            rt!(
                &m,
                Uar<'_>,
                Uaa<'_>,
                Sar<'_>,
                Saa<'_>,
                Lir<'_>,
                Lia<'_>,
                Mar<'_>,
                Maa<'_>,
                Rtr<'_>,
                Rta<'_>,
                Ppr<'_>,
                Ppa<'_>
            );
            rt!(
                &m,
                Aar<'_>,
                Aaa<'_>,
                Rar<'_>,
                Raa<'_>,
                Str<'_>,
                Sta<'_>,
                Asr<'_>,
                Asa<'_>
            );
            rt!(&m, sgd::Ofr<'_>, sgd::Ofa<'_>, sgd::Tfr<'_>, sgd::Tfa<'_>);
            rt!(
                &m,
                s6c::Srr<'_>,
                s6c::Sra<'_>,
                s6c::Alr<'_>,
                s6c::Ala<'_>,
                s6c::Rdr<'_>,
                s6c::Rda<'_>
            );
        }
        Err(e) => {
            if !e.is_incomplete() {
                if let Some(a) = error_answer(data, &e, &ORIGIN) {
                    Message::parse(&a).unwrap();
                }
            }
        }
    }
    let mut f = Framer::new();
    for c in data.chunks(13) {
        f.push(c);
        while let Ok(Some(fr)) = f.next_frame() {
            let _ = Message::parse(&fr);
        }
    }
}

#[test]
fn mutated_vectors() {
    let vs = vectors();
    assert!(vs.len() >= 40);
    let n = mutate_all(&vs, 0x5eed_d1a3);
    eprintln!("{n} mutated messages checked");
}

/// SGd (TS 29.338): random OFR/OFA/TFR/TFA (every optional and repeated field sometimes
/// present), each mutated as the vectors are.
#[test]
fn mutated_sgd_messages() {
    let mut r = Rng::new(0x0005_6d00);
    let mut vs = Vec::new();
    for i in 0..3u32 {
        vs.push(sgd::Ofr::__sample(&mut r).encode(i, i + 1));
        vs.push(sgd::Ofa::__sample(&mut r).encode(i, i + 1));
        vs.push(sgd::Tfr::__sample(&mut r).encode(i, i + 1));
        vs.push(sgd::Tfa::__sample(&mut r).encode(i, i + 1));
    }
    for v in &vs {
        validate(&Message::parse(v).unwrap()).unwrap();
    }
    let n = mutate_all(&vs, 0x5eed_5cd0);
    eprintln!("{n} mutated SGd messages checked");
}

/// Runs [`oracle`] on each of `vs` and on 800 mutations of each; returns how many mutations.
fn mutate_all(vs: &[Vec<u8>], seed: u64) -> usize {
    let mut r = Rng::new(seed);
    let mut n = 0;
    for v in vs {
        oracle(v);
        for _ in 0..800 {
            let mut m = v.clone();
            for _ in 0..1 + r.below(3) {
                if m.is_empty() {
                    break;
                }
                let i = r.below(m.len() as u64) as usize;
                match r.below(6) {
                    0 => m[i] ^= 1 << r.below(8),
                    1 => m[i] = r.next_u64() as u8,
                    2 => m.truncate(i),
                    3 => m.insert(i, r.next_u64() as u8),
                    // an AVP or message length octet: the low octet of a 24-bit length field
                    4 => {
                        let j = (i & !3) + 7;
                        if j < m.len() {
                            m[j] = m[j].wrapping_add(4 * (r.below(5) as u8)).wrapping_sub(8);
                        }
                    }
                    _ => {
                        let j = r.below(m.len() as u64) as usize;
                        m.swap(i, j);
                    }
                }
            }
            oracle(&m);
            n += 1;
        }
    }
    n
}

/// S6c (TS 29.338 §5.3.2): random SRR/SRA, ALR/ALA, RDR/RDA, each mutated as the vectors are.
#[test]
fn mutated_s6c_messages() {
    let mut r = Rng::new(0x0056_c000);
    let mut vs = Vec::new();
    for i in 0..2u32 {
        vs.push(s6c::Srr::__sample(&mut r).encode(i, i + 1));
        vs.push(s6c::Sra::__sample(&mut r).encode(i, i + 1));
        vs.push(s6c::Alr::__sample(&mut r).encode(i, i + 1));
        vs.push(s6c::Ala::__sample(&mut r).encode(i, i + 1));
        vs.push(s6c::Rdr::__sample(&mut r).encode(i, i + 1));
        vs.push(s6c::Rda::__sample(&mut r).encode(i, i + 1));
    }
    for v in &vs {
        validate(&Message::parse(v).unwrap()).unwrap();
    }
    let n = mutate_all(&vs, 0x5eed_56c0);
    eprintln!("{n} mutated S6c messages checked");
}
