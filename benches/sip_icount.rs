//! Instruction counts for the `sip_parse` workloads, for a machine too noisy for wall-clock ratios.
//!
//! Run the same work N times under callgrind and compare the totals (the `none` mode gives the
//! fixed cost to subtract):
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

mod workloads;

use std::hint::black_box;

fn none(m: &[u8], _: &mut Vec<u8>) {
    black_box(m);
}

fn work(mode: &str) -> workloads::Work {
    if mode == "none" {
        return none;
    }
    let (group, lib) = mode
        .split_once('/')
        .expect("mode is none or <group>/<ims|rsip>");
    let (_, ims, rsip) = workloads::GROUPS
        .into_iter()
        .find(|(g, _, _)| *g == group)
        .unwrap_or_else(|| panic!("unknown group {group}"));
    match lib {
        "ims" => ims,
        "rsip" => rsip,
        other => panic!("unknown library {other}"),
    }
}

fn run(w: workloads::Work, msgs: &[Vec<u8>], n: usize) {
    let mut out = Vec::with_capacity(4096);
    for _ in 0..n {
        for m in msgs {
            w(m, &mut out);
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let msgs = workloads::inputs();
    match args.as_slice() {
        [mode, n] => run(work(mode), &msgs, n.parse().expect("a repetition count")),
        _ => {
            run(none, &msgs, 1);
            for (_, ims, rsip) in workloads::GROUPS {
                run(ims, &msgs, 1);
                run(rsip, &msgs, 1);
            }
        }
    }
}
