//! Batched UDP sends of the SIP endpoint loop: what one turn of the loop produces for its UDP
//! socket leaves in one `sendmmsg` (Linux), in the order it was produced, and a datagram the
//! kernel refuses fails alone.
//!
//! The tests run on a current-thread runtime: the burst is queued (in the proxy's socket buffer,
//! or in the endpoint's command channel) before the endpoint task runs, so it is handled in one
//! turn of the loop.
#![cfg(target_os = "linux")]

use ims_net::sip::{Endpoint, EndpointConfig, Locations, NetError, ProxyEndpoint};
use ims_sip::{Method, OwnedMessage, RequestBuilder};
use ims_txn::Remote;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::UdpSocket;

const LIMIT: Duration = Duration::from_secs(10);

fn udp_only() -> EndpointConfig {
    EndpointConfig {
        tcp: false,
        ..EndpointConfig::default()
    }
}

/// A MESSAGE for `user` at `to`, numbered `n` (Call-ID and CSeq), with a Via when `via`.
fn message(user: &str, to: SocketAddr, n: u32, via: Option<SocketAddr>) -> OwnedMessage {
    let mut b = RequestBuilder::new(Method::Message, &format!("sip:{user}@{to}"));
    if let Some(v) = via {
        b = b.header("Via", format!("SIP/2.0/UDP {v};branch=z9hG4bK-batch-{n}"));
    }
    b.header("Max-Forwards", 70)
        .header("From", "<sip:alice@ims.example>;tag=b1")
        .header("To", format!("<sip:{user}@ims.example>"))
        .header("Call-ID", format!("batch-{n}@ims.example"))
        .header("CSeq", format!("{n} MESSAGE"))
        .body("text/plain", b"hello".to_vec())
        .build()
        .expect("valid MESSAGE")
}

/// The Call-IDs of the next `count` datagrams `sock` receives.
async fn call_ids(sock: &UdpSocket, count: usize) -> Vec<String> {
    let mut buf = vec![0u8; 65_535];
    let mut out = Vec::new();
    while out.len() < count {
        let (n, _) = tokio::time::timeout(LIMIT, sock.recv_from(&mut buf))
            .await
            .expect("a datagram in time")
            .expect("recv");
        let m = OwnedMessage::parse(bytes::Bytes::copy_from_slice(&buf[..n])).expect("SIP");
        let id = m
            .as_message()
            .call_id()
            .expect("Call-ID")
            .expect("Call-ID")
            .to_string();
        out.push(id);
    }
    out
}

fn expected(ns: impl IntoIterator<Item = u32>) -> Vec<String> {
    ns.into_iter()
        .map(|n| format!("batch-{n}@ims.example"))
        .collect()
}

#[tokio::test]
async fn a_burst_relayed_by_a_stateless_proxy_leaves_in_one_system_call_in_order() {
    let bob = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mut loc = Locations::default();
    loc.add("bob", vec![Remote::udp(bob.local_addr().unwrap())]);
    let proxy = ProxyEndpoint::bind_stateless(udp_only(), false, loc)
        .await
        .unwrap();
    let alice = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let from = alice.local_addr().unwrap();
    // 20 requests in the proxy's socket before its task runs (loopback delivers at once)
    for n in 1..=20 {
        let m = message("bob", proxy.local_addr(), n, Some(from));
        alice.send_to(m.bytes(), proxy.local_addr()).unwrap();
    }
    assert_eq!(call_ids(&bob, 20).await, expected(1..=20));
    let s = proxy.transport_stats();
    assert_eq!(s.udp_datagrams_sent, 20);
    assert_eq!(
        s.udp_send_calls, 1,
        "the 20 relayed requests of one turn leave in one sendmmsg"
    );
}

#[tokio::test]
async fn a_refused_datagram_in_a_batch_fails_alone_and_the_rest_keep_their_order() {
    let bob = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mut loc = Locations::default();
    loc.add("bob", vec![Remote::udp(bob.local_addr().unwrap())]);
    // UDP to port 0: the kernel refuses it (EINVAL)
    loc.add("nobody", vec![Remote::udp("127.0.0.1:0".parse().unwrap())]);
    let proxy = ProxyEndpoint::bind_stateless(udp_only(), false, loc)
        .await
        .unwrap();
    let alice = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let from = alice.local_addr().unwrap();
    let users = ["bob", "nobody", "nobody", "bob", "bob", "nobody", "bob"];
    for (n, user) in (1..).zip(users) {
        let m = message(user, proxy.local_addr(), n, Some(from));
        alice.send_to(m.bytes(), proxy.local_addr()).unwrap();
    }
    assert_eq!(call_ids(&bob, 4).await, expected([1, 4, 5, 7]));
    let s = proxy.transport_stats();
    assert_eq!(s.udp_datagrams_sent, 4);
    // [1 2 3 4 5 6 7] takes 1; [2 …] and [3 …] are refused; [4 5 6 7] takes 4 5; [6 7] is
    // refused; 7 goes alone
    assert_eq!(s.udp_send_calls, 6);
    // nothing else came
    let mut buf = [0u8; 100];
    assert!(
        tokio::time::timeout(Duration::from_millis(200), bob.recv_from(&mut buf))
            .await
            .is_err()
    );
}

#[tokio::test]
async fn requests_sent_together_leave_together_and_a_refused_one_fails_its_transaction() {
    let bob = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let to = Remote::udp(bob.local_addr().unwrap());
    let nowhere = Remote::udp("127.0.0.1:0".parse().unwrap());
    let (uac, _incoming) = Endpoint::bind(udp_only()).await.unwrap();
    // five commands queued before the endpoint task runs: one turn of its loop
    let (a, b, c, d, e) = tokio::join!(
        uac.request(message("bob", to.addr, 1, None), to),
        uac.request(message("bob", to.addr, 2, None), to),
        uac.request(message("bob", nowhere.addr, 3, None), nowhere),
        uac.request(message("bob", to.addr, 4, None), to),
        uac.request(message("bob", to.addr, 5, None), to),
    );
    let (_a, _b, c, _d, _e) = (a.unwrap(), b.unwrap(), c.unwrap(), d.unwrap(), e.unwrap());
    assert_eq!(call_ids(&bob, 4).await, expected([1, 2, 4, 5]));
    // the refused request's transaction ends with a transport error
    let r = tokio::time::timeout(LIMIT, c.final_response())
        .await
        .expect("the refused request ends at once");
    assert!(matches!(r, Err(NetError::Transport)), "{r:?}");
    let s = uac.transport_stats();
    assert_eq!(s.udp_datagrams_sent, 4);
    // [1 2 3 4 5] takes 1 2; [3 4 5] is refused; [4 5] takes both
    assert_eq!(s.udp_send_calls, 3);
}
