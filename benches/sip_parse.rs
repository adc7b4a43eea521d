//! SIP parsing: ims-sip against rsip 0.4 on the same bytes in the same run.
//!
//! Inputs and workloads are in `workloads/mod.rs` (shared with `sip_icount`). Each group times
//! the whole mixed set, so throughput is bytes of the set per second. Benchmark ids are
//! `<group>/ims` and `<group>/rsip`: `parse` (parse only), `parse_typed` (parse + typed Via,
//! From, To, CSeq, Call-ID, Contact), `roundtrip` (parse + serialize), `forward` (parse, push Via,
//! pop Route, decrement Max-Forwards, serialize; for rsip the same with its API).

#![allow(missing_docs)]

mod workloads;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};

fn bench(c: &mut Criterion) {
    let msgs = workloads::inputs();
    let total: u64 = msgs.iter().map(|m| m.len() as u64).sum();
    for (group, ims, rsip) in workloads::GROUPS {
        let mut g = c.benchmark_group(group);
        g.throughput(Throughput::Bytes(total));
        for (id, work) in [("ims", ims), ("rsip", rsip)] {
            g.bench_function(id, |b| {
                let mut out = Vec::with_capacity(4096);
                b.iter(|| {
                    for m in &msgs {
                        work(m, &mut out);
                    }
                })
            });
        }
        g.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
