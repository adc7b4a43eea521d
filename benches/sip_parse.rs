//! SIP parsing: ims-sip against rsip 0.4 on the same bytes in the same run.
//!
//! Inputs: the six messages of `tests/vectors/sip-bench` (the bytes rsip's baseline was measured
//! on) plus three IMS messages of our own (`tests/vectors/ims`). Each group times the whole mixed
//! set, so throughput is bytes of the set per second. Benchmark ids are `<group>/ims` and
//! `<group>/rsip`.

#![allow(missing_docs)]

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use ims::sip::{self, headers};
use rsip::prelude::*;

fn inputs() -> Vec<Vec<u8>> {
    let root = env!("CARGO_MANIFEST_DIR");
    let mut v = Vec::new();
    for i in 1..=6 {
        v.push(
            std::fs::read(format!("{root}/tests/vectors/sip-bench/{i}.sip")).expect("bench vector"),
        );
    }
    for n in ["register_200", "invite_183", "notify_reginfo"] {
        v.push(std::fs::read(format!("{root}/tests/vectors/ims/{n}.sip")).expect("ims vector"));
    }
    // every input must be accepted by both parsers, or the comparison is meaningless
    for m in &v {
        sip::parse_datagram(m).expect("ims parses the input");
        rsip::SipMessage::try_from(m.as_slice()).expect("rsip parses the input");
    }
    v
}

fn bench(c: &mut Criterion) {
    let msgs = inputs();
    let total: u64 = msgs.iter().map(|m| m.len() as u64).sum();

    let mut g = c.benchmark_group("parse");
    g.throughput(Throughput::Bytes(total));
    g.bench_function("ims", |b| {
        b.iter(|| {
            for m in &msgs {
                black_box(sip::parse_datagram(black_box(m)).unwrap());
            }
        })
    });
    g.bench_function("rsip", |b| {
        b.iter(|| {
            for m in &msgs {
                black_box(rsip::SipMessage::try_from(black_box(m.as_slice())).unwrap());
            }
        })
    });
    g.finish();

    let mut g = c.benchmark_group("parse_typed");
    g.throughput(Throughput::Bytes(total));
    g.bench_function("ims", |b| {
        b.iter(|| {
            for m in &msgs {
                let msg = sip::parse_datagram(black_box(m)).unwrap();
                let via = msg.top_via().unwrap().unwrap();
                let from = msg.from().unwrap().unwrap();
                let to = msg.to().unwrap().unwrap();
                let cseq = msg.cseq().unwrap().unwrap();
                let call_id = msg.call_id().unwrap().unwrap();
                let contact = msg.get::<headers::Contact>().unwrap();
                black_box((via, from, to, cseq, call_id, contact));
            }
        })
    });
    g.bench_function("rsip", |b| {
        b.iter(|| {
            for m in &msgs {
                let msg = rsip::SipMessage::try_from(black_box(m.as_slice())).unwrap();
                // rsip cannot type some IMS values (quoted contact params): count the attempt
                let via = msg.via_header().ok().map(|h| h.typed().ok());
                let from = msg.from_header().ok().map(|h| h.typed().ok());
                let to = msg.to_header().ok().map(|h| h.typed().ok());
                let cseq = msg.cseq_header().ok().map(|h| h.typed().ok());
                let call_id = msg.call_id_header().ok().cloned();
                let contact = msg.contact_header().ok().map(|c| c.typed().ok());
                black_box((via, from, to, cseq, call_id, contact));
            }
        })
    });
    g.finish();

    let mut g = c.benchmark_group("roundtrip");
    g.throughput(Throughput::Bytes(total));
    g.bench_function("ims", |b| {
        let mut out = Vec::with_capacity(4096);
        b.iter(|| {
            for m in &msgs {
                let msg = sip::parse_datagram(black_box(m)).unwrap();
                out.clear();
                msg.edit().write_to(&mut out);
                black_box(&out);
            }
        })
    });
    g.bench_function("rsip", |b| {
        b.iter(|| {
            for m in &msgs {
                let msg = rsip::SipMessage::try_from(black_box(m.as_slice())).unwrap();
                black_box(msg.to_string());
            }
        })
    });
    g.finish();

    let mut g = c.benchmark_group("forward");
    g.throughput(Throughput::Bytes(total));
    g.bench_function("ims", |b| {
        let mut out = Vec::with_capacity(4096);
        b.iter(|| {
            for m in &msgs {
                let msg = sip::parse_datagram(black_box(m)).unwrap();
                let mut e = msg.edit();
                e.push_via("SIP/2.0/UDP 10.10.0.10:5060;branch=z9hG4bK-fwd-8a7c61");
                e.pop_route();
                if msg.is_request() {
                    e.decrement_max_forwards().unwrap();
                }
                out.clear();
                e.write_to(&mut out);
                black_box(&out);
            }
        })
    });
    g.bench_function("rsip", |b| {
        b.iter(|| {
            for m in &msgs {
                let mut msg = rsip::SipMessage::try_from(black_box(m.as_slice())).unwrap();
                let is_request = msg.is_request();
                let mut hs: Vec<rsip::Header> = std::mem::take(msg.headers_mut()).into();
                hs.insert(
                    0,
                    rsip::Header::Via(rsip::headers::Via::new(
                        "SIP/2.0/UDP 10.10.0.10:5060;branch=z9hG4bK-fwd-8a7c61",
                    )),
                );
                if let Some(i) = hs.iter().position(|h| matches!(h, rsip::Header::Route(_))) {
                    hs.remove(i);
                }
                if is_request {
                    for h in hs.iter_mut() {
                        if let rsip::Header::MaxForwards(mf) = h {
                            let n = mf.num().unwrap();
                            *mf = rsip::headers::MaxForwards::from(n - 1);
                        }
                    }
                }
                *msg.headers_mut() = hs.into();
                black_box(msg.to_string());
            }
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
