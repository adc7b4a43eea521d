//! Transactions through the sans-IO core (ims-txn): create → final response → terminate, one
//! transaction per iteration, so throughput is transactions per second.
//!
//! - `non_invite_server_tcp`: parse a MESSAGE, match/create the server transaction, send the 200
//!   the TU built, Timer J = 0 terminates it.
//! - `non_invite_client_tcp`: send a MESSAGE (client transaction), receive its 200, Timer K = 0.
//! - `invite_client_udp_486`: INVITE out, Timer A armed, 486 in, ACK built and sent, Timer D
//!   fired 32 s later on the virtual clock.
//! - `invite_server_udp_200`: INVITE in, 200 out (Accepted), Timer L fired 32 s later.
//!
//! No other Rust SIP stack offers a sans-IO transaction layer to compare with in the same run.

#![allow(missing_docs)]

use bytes::Bytes;
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use ims::sip::{Method, OwnedMessage, RequestBuilder, ResponseBuilder};
use ims::txn::{Config, Remote, TransactionLayer, Transport};
use std::time::{Duration, Instant};

fn request(method: Method<'_>, transport: Transport) -> OwnedMessage {
    RequestBuilder::new(method, "sip:+447700900123@ims.example.com")
        .header(
            "Via",
            format!(
                "SIP/2.0/{} 192.0.2.1:5060;branch=z9hG4bK-bench-1;rport",
                transport
            ),
        )
        .header("Max-Forwards", 70)
        .header("From", "<sip:alice@ims.example.com>;tag=a1")
        .header("To", "<sip:+447700900123@ims.example.com>")
        .header("Call-ID", "c1@192.0.2.1")
        .header("CSeq", format!("1 {method}"))
        .body("text/plain", "hello")
        .build()
        .expect("valid request")
}

fn drain(l: &mut TransactionLayer) -> usize {
    let mut n = 0;
    while let Some(o) = l.poll_output() {
        black_box(&o);
        n += 1;
    }
    n
}

fn bench(c: &mut Criterion) {
    #[allow(clippy::disallowed_methods)] // the benchmark's virtual clock origin
    let t0 = Instant::now();
    let tcp = Remote {
        transport: Transport::Tcp,
        addr: "192.0.2.1:5060".parse().expect("address"),
    };
    let udp = Remote {
        transport: Transport::Udp,
        ..tcp
    };
    let mut g = c.benchmark_group("txn");
    g.throughput(Throughput::Elements(1));

    let msg = request(Method::Message, Transport::Tcp);
    let raw: Bytes = msg.bytes().clone();
    let ok = ResponseBuilder::from_request(&msg.as_message(), 200)
        .build()
        .expect("200");
    g.bench_function("non_invite_server_tcp", |b| {
        let mut l = TransactionLayer::new(Config::default());
        b.iter(|| {
            let m = OwnedMessage::parse(raw.clone()).expect("parses");
            let txn = l.receive(t0, m, tcp).expect("matched").expect("created");
            l.send_response(t0, txn, ok.clone()).expect("answered");
            l.handle_timeout(t0);
            drain(&mut l);
            debug_assert!(l.is_empty());
        })
    });

    g.bench_function("non_invite_client_tcp", |b| {
        let mut l = TransactionLayer::new(Config::default());
        b.iter(|| {
            l.send_request(t0, msg.clone(), tcp).expect("sent");
            l.receive(t0, ok.clone(), tcp).expect("matched");
            // Timer K is zero on TCP; `receive` (unlike `handle_input`) does not fire timers
            l.handle_timeout(t0);
            drain(&mut l);
            debug_assert!(l.is_empty());
        })
    });

    let inv = request(Method::Invite, Transport::Udp);
    let busy = ResponseBuilder::from_request(&inv.as_message(), 486)
        .build()
        .expect("486");
    let later = t0 + Duration::from_secs(33);
    g.bench_function("invite_client_udp_486", |b| {
        let mut l = TransactionLayer::new(Config::default());
        b.iter(|| {
            l.send_request(t0, inv.clone(), udp).expect("sent");
            l.receive(t0 + Duration::from_millis(100), busy.clone(), udp)
                .expect("matched");
            l.handle_timeout(later);
            drain(&mut l);
            debug_assert!(l.is_empty());
        })
    });

    let inv_raw = inv.bytes().clone();
    let inv_ok = ResponseBuilder::from_request(&inv.as_message(), 200)
        .build()
        .expect("200");
    g.bench_function("invite_server_udp_200", |b| {
        let mut l = TransactionLayer::new(Config::default());
        b.iter(|| {
            let m = OwnedMessage::parse_datagram(inv_raw.clone()).expect("parses");
            let txn = l.receive(t0, m, udp).expect("matched").expect("created");
            l.send_response(t0, txn, inv_ok.clone()).expect("answered");
            l.handle_timeout(later);
            drain(&mut l);
            debug_assert!(l.is_empty());
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
