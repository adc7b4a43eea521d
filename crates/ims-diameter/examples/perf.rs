//! A profiling harness for the codec hot paths (the ims side of `benches/diameter.rs`, same
//! messages: [`ims_diameter::testing::rx_aar`] / [`ims_diameter::testing::rx_aaa`]), for
//! instruction counts under callgrind on a machine too noisy for wall-clock figures:
//!
//! ```text
//! cargo build --release -p ims-diameter --example perf
//! valgrind --tool=callgrind target/release/examples/perf aar_decode 2000
//! callgrind_annotate callgrind.out.<pid>
//! ```
//!
//! Modes: `none`, `{cer,aar,aaa,maa,saa}_{decode,encode}`. Prints ns/op measured over N
//! repetitions (wall clock, indicative only).

#![allow(missing_docs, clippy::disallowed_methods)]

use ims_diameter::base::Cer;
use ims_diameter::cx::{Maa, Saa};
use ims_diameter::rx::{Aaa, Aar};
use ims_diameter::{testing, Command, Limits, Message};
use std::hint::black_box;

fn vector(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/../../tests/vectors/diameter/{name}.bin",
        env!("CARGO_MANIFEST_DIR")
    ))
    .expect("vector")
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mode = args.first().map_or("aar_decode", |s| s.as_str());
    let n: usize = args.get(1).map_or(100_000, |s| s.parse().expect("count"));

    let cer = vector("base_cer");
    let maa = vector("cx_maa");
    let saa = vector("cx_saa");
    let aar_b = testing::rx_aar().encode(0x101, 0x6d30_0101);
    let aar_m = Message::parse(&aar_b).unwrap();
    let aaa_b = testing::rx_aaa().encode_answer(aar_m.header());
    let mut buf = Vec::with_capacity(4096);

    macro_rules! dec {
        ($t:ty, $b:expr) => {{
            for _ in 0..n {
                // as benches/diameter.rs: one walk, the value read where it was decoded
                let mut v = <$t>::default();
                let m =
                    <$t>::decode_message_into(black_box(&$b), &Limits::default(), &mut v).unwrap();
                black_box((&m, &v));
            }
        }};
    }
    macro_rules! enc {
        ($t:ty, $b:expr) => {{
            let m = Message::parse(&$b).unwrap();
            let h = *m.header();
            let v = <$t>::decode(&m).unwrap();
            for _ in 0..n {
                buf.clear();
                black_box(v.encode_into(black_box(&h), &mut buf));
            }
            assert_eq!(buf, $b);
        }};
    }
    let t = std::time::Instant::now();
    match mode {
        "none" => {}
        "sizes" => {
            use ims_diameter::base::{SubscriptionId, SupportedFeatures};
            use ims_diameter::rx::*;
            use std::mem::size_of;
            println!("Cer {}", size_of::<Cer>());
            println!("Aar {}", size_of::<Aar>());
            println!("Aaa {}", size_of::<Aaa>());
            println!("Mcd {}", size_of::<MediaComponentDescription>());
            println!("Msc {}", size_of::<MediaSubComponent>());
            println!("Anci {}", size_of::<AccessNetworkChargingIdentifier>());
            println!("Flows {}", size_of::<Flows>());
            println!("SubscriptionId {}", size_of::<SubscriptionId>());
            println!("SupportedFeatures {}", size_of::<SupportedFeatures>());
            println!("Asi {}", size_of::<AcceptableServiceInfo>());
        }
        "cer_decode" => dec!(Cer, cer),
        "aar_decode" => dec!(Aar, aar_b),
        "aaa_decode" => dec!(Aaa, aaa_b),
        "maa_decode" => dec!(Maa, maa),
        "saa_decode" => dec!(Saa, saa),
        "cer_encode" => enc!(Cer, cer),
        "aar_encode" => enc!(Aar, aar_b),
        "aaa_encode" => enc!(Aaa, aaa_b),
        "maa_encode" => enc!(Maa, maa),
        "saa_encode" => enc!(Saa, saa),
        m => panic!("unknown mode {m}"),
    }
    let el = t.elapsed();
    println!(
        "{mode}: {:.1} ns/op",
        el.as_nanos() as f64 / n.max(1) as f64
    );
}
