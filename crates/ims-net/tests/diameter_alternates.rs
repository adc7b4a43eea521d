//! Our Diameter node choosing another peer when the answer asks for it, and answering a
//! retransmission that arrives while the first copy is still being handled:
//!
//! - a 3004 DIAMETER_TOO_BUSY (or 3002 DIAMETER_UNABLE_TO_DELIVER) answer sends the request to
//!   the next usable peer (RFC 6733 §7.1.3), each peer once;
//! - a request retransmitted after failover (T flag, same Origin-Host and End-to-End
//!   Identifier) over another connection while the first copy is in its handler gets the same
//!   answer on that connection (RFC 6733 §5.5.4, Appendix C), the handler running once;
//! - a node that stops (DPR) while a request it received is in its handler still answers it
//!   before the connection closes, and the requester gets that answer (RFC 6733 §5.4's race).
//!
//! Ports: 127.0.0.1, 10400–10499 (helper h5b's range).

use ims_diameter::base::{Cea, Cer, VendorSpecificApplicationId};
use ims_diameter::cx::Mar;
use ims_diameter::{Command, Flags, Framer, Message, Outcome};
use ims_net::diameter::{Node, NodeConfig};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncWriteExt;

mod common;

const REALM: &str = "ims.example.org";
const SECS: Duration = Duration::from_secs(5);

fn cfg(host: &str) -> NodeConfig {
    common::cx_cfg(host, REALM, SECS)
}

/// Listens on a free port of 127.0.0.1 in 10400–10499.
async fn listen(node: &Node) -> SocketAddr {
    common::listen_in(node, 10400).await
}

fn mar(origin: &str, session: &str) -> Mar<'static> {
    common::mar(session, origin, REALM, REALM, "alice")
}

/// An HSS answering MAR with `result` (2001: a MAA; 3xxx: that error, E bit), counting them,
/// after `delay`.
async fn hss(host: &str, result: u32, delay: Duration) -> (Node, SocketAddr, Arc<AtomicUsize>) {
    let node = Node::new(cfg(host));
    let addr = listen(&node).await;
    let count = common::answer_mars_with(&node, result, Some(delay));
    (node, addr, count)
}

async fn client_of(hsses: &[(&str, SocketAddr)]) -> Node {
    let c = Node::new(cfg("scscf.ims.example.org"));
    for (h, a) in hsses {
        c.add_peer(h, *a);
    }
    for (h, _) in hsses {
        c.wait_open(h, SECS).await.unwrap();
    }
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_or_undeliverable_answer_goes_to_an_alternate_peer() {
    for busy in [3004, 3002] {
        let (_h1, a1, n1) = hss("hss1.ims.example.org", busy, Duration::ZERO).await;
        let (_h2, a2, n2) = hss("hss2.ims.example.org", 2001, Duration::ZERO).await;
        let c = client_of(&[("hss1.ims.example.org", a1), ("hss2.ims.example.org", a2)]).await;
        // hss1 comes first (peers of the realm in name order) and is busy: hss2 answers
        let m = mar(c.origin_host(), &c.session_id());
        let a = c.send(&m).await.unwrap();
        assert_eq!(a.view().outcome(), Some(Outcome::SUCCESS), "{busy}");
        assert_eq!(
            (n1.load(Ordering::SeqCst), n2.load(Ordering::SeqCst)),
            (1, 1),
            "{busy}"
        );
        assert_eq!(a.view().origin_host(), Some("hss2.ims.example.org"));
        c.shutdown();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_destination_host_the_realms_peer_goes_before_an_agent_named_first() {
    // a request naming only Destination-Realm goes first to an open peer of that realm (name
    // order), agents of other realms after it, however their names sort (the first candidate
    // is found without the candidate list; the list is made for an alternate)
    for first in [2001, 3004] {
        let agent = Node::new(common::cx_cfg(
            "aaa.agent.example.net",
            "agent.example.net",
            SECS,
        ));
        let agent_addr = listen(&agent).await;
        let n_agent = common::answer_mars_with(&agent, 2001, None);
        let (_h, hss_addr, n_hss) = hss("zz.ims.example.org", first, Duration::ZERO).await;
        let c = client_of(&[
            ("aaa.agent.example.net", agent_addr),
            ("zz.ims.example.org", hss_addr),
        ])
        .await;
        let a = c
            .send(&mar(c.origin_host(), &c.session_id()))
            .await
            .unwrap();
        // (the agent serves another realm: it answers 3003 DIAMETER_REALM_NOT_SERVED itself,
        // its MAR handler is never called)
        let (want_origin, want) = if first == 2001 {
            ("zz.ims.example.org", 2001)
        } else {
            ("aaa.agent.example.net", 3003)
        };
        assert_eq!(a.view().origin_host(), Some(want_origin), "{first}");
        assert_eq!(
            a.view().outcome(),
            Some(Outcome::from_result_code(want)),
            "{first}"
        );
        assert_eq!(
            (n_hss.load(Ordering::SeqCst), n_agent.load(Ordering::SeqCst)),
            (1, 0),
            "{first}"
        );
        c.shutdown();
        agent.shutdown();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_peer_busy_gives_the_last_busy_answer_after_trying_each_once() {
    let (_h1, a1, n1) = hss("hss1.ims.example.org", 3004, Duration::ZERO).await;
    let (_h2, a2, n2) = hss("hss2.ims.example.org", 3004, Duration::ZERO).await;
    let c = client_of(&[("hss1.ims.example.org", a1), ("hss2.ims.example.org", a2)]).await;
    let m = mar(c.origin_host(), &c.session_id());
    let a = c.send(&m).await.unwrap();
    assert_eq!(a.view().outcome(), Some(Outcome::from_result_code(3004)));
    assert!(a.view().flags().is_error());
    assert_eq!(
        (n1.load(Ordering::SeqCst), n2.load(Ordering::SeqCst)),
        (1, 1)
    );
    // another error (5xxx, or 3xxx not asking for another peer) is final at once
    let (_h3, a3, n3) = hss("hss3.ims.example.org", 3005, Duration::ZERO).await;
    let (_h4, a4, n4) = hss("hss4.ims.example.org", 2001, Duration::ZERO).await;
    let c = client_of(&[("hss3.ims.example.org", a3), ("hss4.ims.example.org", a4)]).await;
    let a = c
        .send(&mar(c.origin_host(), &c.session_id()))
        .await
        .unwrap();
    assert_eq!(a.view().outcome(), Some(Outcome::from_result_code(3005)));
    assert_eq!(
        (n3.load(Ordering::SeqCst), n4.load(Ordering::SeqCst)),
        (1, 0)
    );
}

/// A Diameter peer on a raw TCP connection, as `host`.
struct Raw {
    stream: tokio::net::TcpStream,
    framer: Framer,
}

impl Raw {
    async fn open(addr: SocketAddr, host: &str) -> Raw {
        let mut r = Raw {
            stream: tokio::net::TcpStream::connect(addr).await.unwrap(),
            framer: Framer::new(),
        };
        let cer = Cer {
            origin_host: host.into(),
            origin_realm: REALM.into(),
            host_ip_address: ims_diameter::repeated![ims_diameter::Address::Ipv4(
                [127, 0, 0, 1].into()
            )],
            vendor_id: 10415,
            product_name: "raw".into(),
            vendor_specific_application_id: ims_diameter::repeated![
                VendorSpecificApplicationId::cx()
            ],
            ..Default::default()
        };
        r.stream.write_all(&cer.encode(1, 1)).await.unwrap();
        let cea = r.next().await;
        assert_eq!(
            Cea::decode(&Message::parse(&cea).unwrap())
                .unwrap()
                .result_code,
            2001
        );
        r
    }

    /// The next message (DWRs are not expected within these tests' few seconds).
    async fn next(&mut self) -> Vec<u8> {
        loop {
            if let Some(frame) = self.framer.next_frame().unwrap() {
                return frame.to_vec();
            }
            common::read_into(&mut self.stream, &mut self.framer, SECS).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retransmission_while_the_first_copy_is_handled_gets_the_same_answer() {
    let (hss, addr, count) = hss("hss.ims.example.org", 2001, Duration::from_millis(400)).await;
    // the S-CSCF's MAR on its own connection; the S-CSCF loses that path and retransmits the
    // same request (T flag, same End-to-End Identifier) through an agent's connection
    let mut direct = Raw::open(addr, "scscf.ims.example.org").await;
    let mut agent = Raw::open(addr, "dra.ims.example.org").await;
    let req = mar("scscf.ims.example.org", "scscf.ims.example.org;1;77").encode(0x11, 0x7777);
    direct.stream.write_all(&req).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut again = req.clone();
    again[4] |= Flags::RETRANSMIT;
    again[12..16].copy_from_slice(&0x22u32.to_be_bytes());
    agent.stream.write_all(&again).await.unwrap();
    // both connections get the answer, each with its own Hop-by-Hop Identifier; one handler run
    let a1 = direct.next().await;
    let a2 = agent.next().await;
    let (m1, m2) = (Message::parse(&a1).unwrap(), Message::parse(&a2).unwrap());
    assert_eq!((m1.hop_by_hop(), m1.end_to_end()), (0x11, 0x7777));
    assert_eq!((m2.hop_by_hop(), m2.end_to_end()), (0x22, 0x7777));
    assert_eq!(m2.outcome(), Some(Outcome::SUCCESS));
    assert_eq!(a1[16..], a2[16..]);
    assert_eq!(count.load(Ordering::SeqCst), 1);
    // a later copy is answered from the duplicate cache at once
    let mut third = req.clone();
    third[4] |= Flags::RETRANSMIT;
    third[12..16].copy_from_slice(&0x33u32.to_be_bytes());
    agent.stream.write_all(&third).await.unwrap();
    let a3 = agent.next().await;
    assert_eq!(Message::parse(&a3).unwrap().hop_by_hop(), 0x33);
    assert_eq!(a3[16..], a1[16..]);
    assert_eq!(count.load(Ordering::SeqCst), 1);
    hss.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_in_flight_when_its_server_stops_is_still_answered() {
    let (hss, addr, count) = hss("hss.ims.example.org", 2001, Duration::from_millis(500)).await;
    let c = client_of(&[("hss.ims.example.org", addr)]).await;
    let m = mar(c.origin_host(), &c.session_id()).encode(0, c.next_end_to_end());
    let pending = {
        let c = c.clone();
        tokio::spawn(async move { c.request(m).await })
    };
    // the MAR is in the HSS's handler when the HSS stops: DPR, our DPA, then its MAA
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(count.load(Ordering::SeqCst), 1);
    hss.shutdown();
    let a = tokio::time::timeout(SECS, pending)
        .await
        .expect("an answer in time")
        .unwrap()
        .expect("the MAA, not a failover error");
    assert_eq!(a.view().outcome(), Some(Outcome::SUCCESS));
    hss.wait_stopped(SECS).await.unwrap();
    c.wait_closed("hss.ims.example.org", SECS).await.unwrap();
    assert_eq!(count.load(Ordering::SeqCst), 1);
    c.shutdown();
}
