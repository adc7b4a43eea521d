//! SDP parse benchmarks (ims-sdp): an MMTel offer (AMR-WB, AMR, telephone-event, preconditions
//! and an H.264 video m-line; `tests/vectors/sdp/mmtel_offer.sdp`).
//!
//! - `parse`: [`Session::parse`] alone (line split, order check, typed `o=`/`c=`/`b=`/`t=`/`m=`,
//!   attributes kept as name/value views);
//! - `parse+typed`: parse, then what a P-CSCF reads for Rx: per media the connection and direction
//!   (with session fallback), AS/RS/RR bandwidth, every attribute in its typed form, and the
//!   precondition table;
//! - `build`: writing the owned copy back to text.
//!
//! `cargo bench --bench sdp_parse -- --warm-up-time 1 --measurement-time 3`
//!
//! On a machine too loaded for wall-clock figures, count instructions instead (the `none` mode
//! gives the fixed cost to subtract; divide the difference by N):
//!
//! ```text
//! cargo bench --bench sdp_parse --no-run
//! B=$(ls -t target/release/deps/sdp_parse-* | grep -v '\.d$' | head -1)
//! for m in none parse typed build; do
//!   valgrind --tool=callgrind --callgrind-out-file=/dev/null $B icount $m 1000 2>&1 | grep Collected
//! done
//! ```

#![allow(missing_docs)]

use criterion::{black_box, criterion_group, Criterion, Throughput};
use ims::sdp::{Attr, BandwidthType, PreconditionState, Session};

const OFFER: &[u8] = include_bytes!("../tests/vectors/sdp/mmtel_offer.sdp");

fn typed(s: &Session<'_>) -> usize {
    let mut n = 0;
    for m in &s.media {
        let c = m.connection().map(|c| c.ip());
        let d = m.direction();
        let bw = [BandwidthType::As, BandwidthType::Rs, BandwidthType::Rr].map(|t| m.bandwidth(t));
        black_box((c, d, bw));
        for a in m.typed_attributes() {
            if let Ok(Attr::Rtpmap(r)) = a {
                n += r.clock_rate as usize;
            }
        }
        if let Ok(Some(p)) = PreconditionState::from_media(m) {
            n += usize::from(p.met());
        }
    }
    n
}

fn bench(c: &mut Criterion) {
    let s = Session::parse(OFFER).expect("the MMTel offer parses");
    assert_eq!(s.media.len(), 2);
    assert!(typed(&s) > 0);
    let mut g = c.benchmark_group("sdp_mmtel_offer");
    g.throughput(Throughput::Bytes(OFFER.len() as u64));
    g.bench_function("parse", |b| {
        b.iter(|| Session::parse(black_box(OFFER)).map(|s| s.media.len()))
    });
    g.bench_function("parse+typed", |b| {
        b.iter(|| {
            let s = Session::parse(black_box(OFFER)).expect("parses");
            typed(&s)
        })
    });
    let owned = s.to_builder();
    g.bench_function("build", |b| b.iter(|| black_box(&owned).build().len()));
    g.finish();
}

criterion_group!(benches, bench);

/// `icount <none|parse|typed|build> <N>`: the work N times without criterion, for callgrind.
fn icount(mode: &str, n: usize) {
    let owned = Session::parse(OFFER).expect("parses").to_builder();
    for _ in 0..n {
        match mode {
            "none" => {
                black_box(OFFER);
            }
            "parse" => {
                black_box(Session::parse(black_box(OFFER)).map(|s| s.media.len()).ok());
            }
            "typed" => {
                let s = Session::parse(black_box(OFFER)).expect("parses");
                black_box(typed(&s));
            }
            "build" => {
                black_box(black_box(&owned).build().len());
            }
            other => panic!("unknown icount mode {other}"),
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("icount") {
        let mode = args.get(2).map_or("parse", String::as_str);
        let n = args.get(3).and_then(|x| x.parse().ok()).unwrap_or(1);
        icount(mode, n);
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
