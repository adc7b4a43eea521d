//! MSRP chat messages per second through the IM server's session anchor
//! (`ims_nf::im_session`): one iteration is a whole session between two `msrp_chat` user agents
//! on 127.0.0.1 — INVITE through the anchor, 500 `text/plain` messages A→B each with
//! `Success-Report: yes` (SEND, 200 and REPORT each cross the anchor's switch), all 500 success
//! reports back at A, BYE. Everything (A, anchor, B) runs in this process on a 2-thread runtime.
//!
//! `cargo bench --bench im_msrp -- --warm-up-time 1 --measurement-time 3`
//!
//! Instruction counts (a machine too noisy for wall-clock figures): given a number `n` as its
//! only argument, the binary runs exactly one such session of `n` messages on a
//! current-thread runtime and exits; run it under callgrind for two values of `n` and divide
//! the difference by the difference of `n` (the session set-up cancels out):
//!
//! ```text
//! cargo bench --bench im_msrp --no-run
//! B=$(ls -t target/release/deps/im_msrp-* | grep -v '\.d$' | head -1)
//! for n in 200 1200; do
//!   valgrind --tool=callgrind --callgrind-out-file=/tmp/im_msrp.$n.cg $B $n 2>&1 | grep Collected
//! done
//! ```
//!
//! `callgrind_annotate --inclusive=yes /tmp/im_msrp.$n.cg` then gives the anchor's own share
//! (its switch's reader tasks, `…im_session::switch::Switch::read`).

#![allow(missing_docs)]

#[allow(dead_code)]
#[path = "../examples/msrp_chat/client.rs"]
mod client;

use client::{ListenOpts, Opts, Ua};
use criterion::{criterion_group, Criterion, Throughput};
use ims::nf::im_session::{start, ImSessionConfig};
use std::net::SocketAddr;

const N: usize = 500;

/// The anchor and the two user agents (B listening, A with the anchor as its proxy).
async fn parties() -> (ims::nf::im_session::ImSessionHandle, Ua, String) {
    let lo = SocketAddr::from(([127, 0, 0, 1], 0));
    let anchor = start(ImSessionConfig {
        sip_addr: lo,
        msrp_addr: lo,
        ..ImSessionConfig::default()
    })
    .await
    .expect("anchor");
    let mut bob = Ua::bind(Opts {
        user: "bob".into(),
        ..Opts::default()
    })
    .await
    .expect("bob");
    let bob_uri = bob.sip_uri();
    tokio::spawn(async move {
        let _ = client::listen(&mut bob, &ListenOpts::default(), &mut |_| {}).await;
    });
    let alice = Ua::bind(Opts {
        user: "alice".into(),
        proxy: Some(anchor.sip_addr()),
        ..Opts::default()
    })
    .await
    .expect("alice");
    (anchor, alice, bob_uri)
}

/// One session of exactly `n` messages (each with its success REPORT), then exit.
fn count(n: usize) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let (anchor, mut alice, bob_uri) = parties().await;
        let msgs: Vec<String> = (1..=n).map(|i| format!("message {i:06}")).collect();
        let s = client::chat(&mut alice, &bob_uri, msgs, 0, &mut |_| {})
            .await
            .expect("chat");
        assert_eq!(s["reports_ok"], n);
        anchor.shutdown();
    });
    println!("im_msrp: {n} messages through the anchor with success reports");
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let (anchor, mut alice, bob_uri) = rt.block_on(parties());
    let msgs: Vec<String> = (1..=N).map(|i| format!("message {i:06}")).collect();
    let mut g = c.benchmark_group("im_msrp");
    g.throughput(Throughput::Elements(N as u64));
    g.sample_size(10);
    g.bench_function("chat_500_messages_with_success_reports_via_anchor", |b| {
        b.iter(|| {
            rt.block_on(async {
                let s = client::chat(&mut alice, &bob_uri, msgs.clone(), 0, &mut |_| {})
                    .await
                    .expect("chat");
                assert_eq!(s["reports_ok"], N);
            })
        })
    });
    g.finish();
    anchor.shutdown();
}

criterion_group!(benches, bench);

fn main() {
    let mut args = std::env::args().skip(1);
    if let (Some(n), None) = (args.next().and_then(|a| a.parse().ok()), args.next()) {
        return count(n);
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
