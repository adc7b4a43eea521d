//! Instruction counts for the `sip_parse` workloads, for a machine too noisy for wall-clock ratios.
//!
//! Run the same work N times under callgrind and compare the totals (the empty `none` mode gives
//! the fixed cost to subtract):
//!
//! ```text
//! cargo bench --bench sip_icount --no-run
//! B=$(ls -t target/release/deps/sip_icount-* | grep -v '\.d$' | head -1)
//! for m in none {parse,parse_typed,roundtrip,forward}/{ims,rsip}; do
//!   valgrind --tool=callgrind --callgrind-out-file=/dev/null $B $m 200 2>&1 | grep Collected
//! done
//! ```
//!
//! Without arguments (as `cargo bench` runs it) it does one pass of every mode and exits.

#![allow(missing_docs)]

use ims::sip::{self, headers};
use rsip::prelude::*;
use std::hint::black_box;

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
    v
}

fn run(mode: &str, msgs: &[Vec<u8>]) {
    for m in msgs {
        match mode {
            "none" => {
                black_box(m);
            }
            "parse/ims" => {
                black_box(sip::parse_datagram(black_box(m)).unwrap());
            }
            "parse/rsip" => {
                black_box(rsip::SipMessage::try_from(black_box(m.as_slice())).unwrap());
            }
            "parse_typed/ims" => {
                let msg = sip::parse_datagram(black_box(m)).unwrap();
                black_box((
                    msg.top_via().unwrap(),
                    msg.from().unwrap(),
                    msg.to().unwrap(),
                    msg.cseq().unwrap(),
                    msg.call_id().unwrap(),
                    msg.get::<headers::Contact>().unwrap(),
                ));
            }
            "parse_typed/rsip" => {
                let msg = rsip::SipMessage::try_from(black_box(m.as_slice())).unwrap();
                black_box((
                    msg.via_header().ok().map(|h| h.typed().ok()),
                    msg.from_header().ok().map(|h| h.typed().ok()),
                    msg.to_header().ok().map(|h| h.typed().ok()),
                    msg.cseq_header().ok().map(|h| h.typed().ok()),
                    msg.call_id_header().ok().cloned(),
                    msg.contact_header().ok().map(|h| h.typed().ok()),
                ));
            }
            "roundtrip/ims" => {
                let msg = sip::parse_datagram(black_box(m)).unwrap();
                black_box(msg.edit().to_vec());
            }
            "roundtrip/rsip" => {
                let msg = rsip::SipMessage::try_from(black_box(m.as_slice())).unwrap();
                black_box(msg.to_string());
            }
            "forward/ims" => {
                let msg = sip::parse_datagram(black_box(m)).unwrap();
                let mut e = msg.edit();
                e.push_via("SIP/2.0/UDP 10.10.0.10:5060;branch=z9hG4bK-fwd-8a7c61");
                e.pop_route();
                if msg.is_request() {
                    e.decrement_max_forwards().unwrap();
                }
                black_box(e.to_vec());
            }
            "forward/rsip" => {
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
            other => panic!("unknown mode {other}"),
        }
    }
}

const MODES: [&str; 9] = [
    "none",
    "parse/ims",
    "parse/rsip",
    "parse_typed/ims",
    "parse_typed/rsip",
    "roundtrip/ims",
    "roundtrip/rsip",
    "forward/ims",
    "forward/rsip",
];

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let msgs = inputs();
    match args.as_slice() {
        [mode, n] => {
            let n: usize = n.parse().expect("a repetition count");
            for _ in 0..n {
                run(mode, &msgs);
            }
        }
        _ => {
            for mode in MODES {
                run(mode, &msgs);
            }
        }
    }
}
