//! Heap allocations on the per-message paths of a proxy (counted with a counting global
//! allocator): each test fails when a path allocates more than it does now.
//!
//! The allocator counts every thread, so the checks run one after the other in one test (the
//! test harness's own thread waits meanwhile).

use bytes::Bytes;
use ims_sip::OwnedMessage;
use ims_txn::proxy::{ForkMode, Proxy, ProxyConfig, ProxyEvent, ProxyOutput, Target};
use ims_txn::{Remote, Transport};
use stats_alloc::{Region, StatsAlloc, INSTRUMENTED_SYSTEM};
use std::alloc::System;
use std::net::SocketAddr;
use std::time::Instant;

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// The origin of the virtual clock.
#[allow(clippy::disallowed_methods)]
fn origin() -> Instant {
    Instant::now()
}

/// Allocations (reallocations included) made by `f`.
fn allocations<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let region = Region::new(GLOBAL);
    let out = f();
    let s = region.change();
    (out, s.allocations + s.reallocations)
}

/// An INVITE with an SDP offer, as it arrives from the network.
fn invite() -> OwnedMessage {
    let sdp = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n\
               m=audio 49170 RTP/AVP 0 8\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n";
    let raw = format!(
        "INVITE sip:callee@ims.example.net SIP/2.0\r\n\
         Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKinv1x\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:caller@ims.example.net>;tag=c1\r\n\
         To: <sip:callee@ims.example.net>\r\n\
         Call-ID: inv-1@192.0.2.1\r\n\
         CSeq: 1 INVITE\r\n\
         Contact: <sip:caller@192.0.2.1:5060>\r\n\
         Content-Type: application/sdp\r\n\
         Content-Length: {}\r\n\r\n{sdp}",
        sdp.len()
    );
    OwnedMessage::parse_datagram(Bytes::from(raw)).expect("INVITE parses")
}

fn decrementing_max_forwards_allocates_nothing() {
    let req = invite();
    let m = req.as_message();
    let mut e = m.edit();
    let (n, count) = allocations(|| e.decrement_max_forwards());
    assert_eq!(n, Ok(69));
    assert_eq!(count, 0, "Max-Forwards 69 is written without an allocation");
    let out = e.to_owned_message().unwrap();
    assert_eq!(out.as_message().header_str("Max-Forwards"), Some("69"));
}

fn an_edited_request_is_built_in_one_buffer_of_its_size() {
    let req = invite();
    let m = req.as_message();
    let _ = (m.top_via(), m.cseq());
    let mut e = m.edit();
    e.push_via("SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK-p-1".to_owned());
    let _ = e.decrement_max_forwards();
    let (out, count) = allocations(|| e.to_owned_message());
    let out = out.unwrap();
    // the bytes (exactly their size: no second block for `Bytes`), the shared index, the kept
    // top Via and CSeq
    assert_eq!(count, 3, "{count} allocations");
    let v = out.as_message().top_via().unwrap().unwrap();
    assert_eq!(v.branch(), Some("z9hG4bK-p-1"));
}

fn transport_tokens_are_read_without_allocating() {
    let (read, count) = allocations(|| {
        ["udp", "TCP", "Tls", "sctp", "ws", "WSS", "quic", ""].map(Transport::from_token)
    });
    assert_eq!(count, 0);
    assert_eq!(
        read,
        [
            Some(Transport::Udp),
            Some(Transport::Tcp),
            Some(Transport::Tls),
            Some(Transport::Sctp),
            Some(Transport::Ws),
            Some(Transport::Wss),
            None,
            None
        ]
    );
}

fn a_stateful_forward_allocates_a_bounded_number_of_blocks() {
    let t0 = origin();
    let next = Remote::udp(SocketAddr::from(([10, 0, 0, 2], 5060)));
    let mut proxy = Proxy::new(ProxyConfig {
        uri: "sip:scscf.ims.example.net:5060".into(),
        sent_by: "10.0.0.100:5060".into(),
        local_hosts: vec!["10.0.0.100".into(), "scscf.ims.example.net".into()],
        record_route: false,
        ..ProxyConfig::default()
    });
    // a first request, so the maps have their room
    let mut forward_one = |i: usize| {
        let mut req = invite();
        if i > 0 {
            let raw = String::from_utf8(req.bytes().to_vec())
                .unwrap()
                .replace("inv-1@", &format!("inv-{}@", i + 1))
                .replace("z9hG4bKinv1x", &format!("z9hG4bKinv{}x", i + 1));
            req = OwnedMessage::parse_datagram(Bytes::from(raw)).unwrap();
        }
        proxy
            .receive(
                t0,
                req,
                Remote::udp(SocketAddr::from(([192, 0, 2, 1], 5060))),
            )
            .expect("received");
        let mut server = None;
        while let Some(o) = proxy.poll_output() {
            if let ProxyOutput::Event(ProxyEvent::Request { server: s, .. }) = o {
                server = Some(s);
            }
        }
        let server = server.expect("routed");
        let target = Target {
            uri: None,
            remote: next,
        };
        let (r, count) =
            allocations(|| proxy.forward(t0, server, vec![target], ForkMode::Parallel));
        r.expect("forwarded");
        let mut sent = 0;
        while let Some(o) = proxy.poll_output() {
            sent += usize::from(matches!(o, ProxyOutput::Transmit(_)));
        }
        assert!(sent >= 1);
        count
    };
    let _ = forward_one(0);
    let count = forward_one(1);
    println!("allocations of one stateful forward: {count}");
    // the Via text, the written request (bytes, index, kept values), the client transaction,
    // its timers and key
    assert!(count <= BOUND_FORWARD, "{count} allocations");
}

#[test]
fn per_message_paths_allocate_no_more_than_they_do_now() {
    decrementing_max_forwards_allocates_nothing();
    an_edited_request_is_built_in_one_buffer_of_its_size();
    transport_tokens_are_read_without_allocating();
    a_stateful_forward_allocates_a_bounded_number_of_blocks();
}

/// Allocations of [`Proxy::forward`] of one INVITE to one target (measured: 12 after session 14,
/// 15 before).
const BOUND_FORWARD: usize = 13;
