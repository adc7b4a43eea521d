//! A node pair (S-CSCF and HSS over 127.0.0.1) exchanging MAR/MAA one after the other: the
//! per-request cost of the node (candidates, dispatch, answer path), checked answer by answer.
//! Also the instruction-count harness for it (`IMS_DIAMETER_PAIR_N` requests, default 20):
//!
//! ```text
//! cargo test --release -p ims-net --test diameter_pair --no-run
//! for n in 1000 2000; do IMS_DIAMETER_PAIR_N=$n valgrind --tool=callgrind \
//!   --callgrind-out-file=/dev/null <binary> --exact sequential_requests_are_answered 2>&1 \
//!   | grep Collected; done
//! ```
//!
//! (Ir(2000) − Ir(1000)) / 1000 is the count per request (both nodes, both directions).

use ims_diameter::cx::{Maa, Mar};
use ims_diameter::dict::app;
use ims_diameter::{Command, Outcome};
use ims_net::diameter::Node;
use std::sync::atomic::AtomicUsize;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

mod common;

const REALM: &str = "ims.example.org";
const SECS: Duration = Duration::from_secs(5);
/// The HSS listens in 10620-10719 (H5's range).
const PORTS: u16 = 10620;

#[tokio::test]
async fn sequential_requests_are_answered() {
    let n: usize = std::env::var("IMS_DIAMETER_PAIR_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let hss = Node::new(common::cx_cfg("hss.ims.example.org", REALM, SECS));
    let addr = common::listen_in(&hss, PORTS).await;
    let count = common::answer_mars(&hss);
    let scscf = Node::new(common::cx_cfg("scscf.ims.example.org", REALM, SECS));
    scscf.add_peer("hss.ims.example.org", addr);
    scscf.wait_open("hss.ims.example.org", SECS).await.unwrap();
    hss.wait_open("scscf.ims.example.org", SECS).await.unwrap();
    let session = scscf.session_id();
    for i in 0..n {
        let mut req = common::mar(&session, scscf.origin_host(), REALM, REALM, "alice");
        req.destination_host = Some("hss.ims.example.org".into());
        let bytes = req.encode(0, scscf.next_end_to_end());
        let a = scscf.request(bytes).await.unwrap();
        let v = a.view();
        assert_eq!(v.outcome(), Some(Outcome::SUCCESS), "answer {i}");
        let maa = Maa::decode(&v).unwrap();
        assert_eq!(maa.user_name.as_deref(), Some("alice@ims.example.org"));
    }
    assert_eq!(count.load(Ordering::SeqCst), n);
    scscf.shutdown();
    hss.shutdown();
    scscf.wait_stopped(SECS).await.unwrap();
    hss.wait_stopped(SECS).await.unwrap();
}

/// A handler that waits before answering (its future is not ready at the first poll, so the
/// answer is made in a task of its own) and one that answers at once, on the same node,
/// interleaved: every request gets its own answer.
#[tokio::test]
async fn waiting_and_immediate_handlers_both_answer() {
    let hss = Node::new(common::cx_cfg("hss.ims.example.org", REALM, SECS));
    let addr = common::listen_in(&hss, PORTS).await;
    let waited = Arc::new(AtomicUsize::new(0));
    let (h, w) = (hss.clone(), waited.clone());
    hss.handle(app::CX, Mar::CODE, move |req| {
        let (h, w) = (h.clone(), w.clone());
        async move {
            let user = Mar::decode(&req.message.view())
                .unwrap()
                .user_name
                .into_owned();
            if user.starts_with("slow") {
                tokio::time::sleep(Duration::from_millis(20)).await;
                w.fetch_add(1, Ordering::SeqCst);
            }
            common::maa_for(&h, &req)
        }
    });
    let scscf = Node::new(common::cx_cfg("scscf.ims.example.org", REALM, SECS));
    scscf.add_peer("hss.ims.example.org", addr);
    scscf.wait_open("hss.ims.example.org", SECS).await.unwrap();
    let mut set = tokio::task::JoinSet::new();
    for i in 0..10 {
        let n = scscf.clone();
        set.spawn(async move {
            let user = if i % 2 == 0 {
                format!("slow{i}")
            } else {
                format!("fast{i}")
            };
            let r = common::mar(&n.session_id(), n.origin_host(), REALM, REALM, &user);
            let a = n.send(&r).await.unwrap();
            let maa = Maa::decode(&a.view()).unwrap();
            assert_eq!(maa.session_id, r.session_id);
            assert_eq!(maa.user_name.as_deref(), Some(&*format!("{user}@{REALM}")));
        });
    }
    while let Some(r) = set.join_next().await {
        r.unwrap();
    }
    assert_eq!(waited.load(Ordering::SeqCst), 5);
    scscf.shutdown();
    hss.shutdown();
    scscf.wait_stopped(SECS).await.unwrap();
    hss.wait_stopped(SECS).await.unwrap();
}

/// Requests handed to a peer task together go out in one write, and the answers to requests
/// read together come back in one write: 8 requests queued before the S-CSCF's peer task runs
/// (current-thread runtime: the 8 tasks run before the peer task they wake) cost each node one
/// write (not 8), and every request still gets its own answer.
#[tokio::test]
async fn messages_ready_together_go_out_in_one_write() {
    const N: usize = 8;
    let hss = Node::new(common::cx_cfg("hss.ims.example.org", REALM, SECS));
    let addr = common::listen_in(&hss, PORTS).await;
    let count = common::answer_mars(&hss);
    let scscf = Node::new(common::cx_cfg("scscf.ims.example.org", REALM, SECS));
    scscf.add_peer("hss.ims.example.org", addr);
    scscf.wait_open("hss.ims.example.org", SECS).await.unwrap();
    hss.wait_open("scscf.ims.example.org", SECS).await.unwrap();
    let writes = |n: &Node, peer: &str| n.peer_status(peer).unwrap().writes;
    let reads = |n: &Node, peer: &str| n.peer_status(peer).unwrap().reads;
    let (c0, h0) = (
        writes(&scscf, "hss.ims.example.org"),
        writes(&hss, "scscf.ims.example.org"),
    );
    let hr0 = reads(&hss, "scscf.ims.example.org");
    let mut set = tokio::task::JoinSet::new();
    for i in 0..N {
        let n = scscf.clone();
        set.spawn(async move {
            let user = format!("user{i}");
            let r = common::mar(&n.session_id(), n.origin_host(), REALM, REALM, &user);
            let a = n.send(&r).await.unwrap();
            let maa = Maa::decode(&a.view()).unwrap();
            assert_eq!(maa.session_id, r.session_id);
            assert_eq!(maa.user_name.as_deref(), Some(&*format!("{user}@{REALM}")));
        });
    }
    while let Some(r) = set.join_next().await {
        r.unwrap();
    }
    assert_eq!(count.load(Ordering::SeqCst), N);
    assert_eq!(writes(&scscf, "hss.ims.example.org") - c0, 1, "requests");
    assert_eq!(
        reads(&hss, "scscf.ims.example.org") - hr0,
        1,
        "requests read"
    );
    assert_eq!(writes(&hss, "scscf.ims.example.org") - h0, 1, "answers");
    // one at a time: one write each
    let c1 = writes(&scscf, "hss.ims.example.org");
    for i in 0..3 {
        let r = common::mar(
            &scscf.session_id(),
            scscf.origin_host(),
            REALM,
            REALM,
            "bob",
        );
        let a = scscf.send(&r).await.unwrap();
        assert_eq!(a.view().outcome(), Some(Outcome::SUCCESS), "answer {i}");
    }
    assert_eq!(writes(&scscf, "hss.ims.example.org") - c1, 3);
    scscf.shutdown();
    hss.shutdown();
    scscf.wait_stopped(SECS).await.unwrap();
    hss.wait_stopped(SECS).await.unwrap();
}
