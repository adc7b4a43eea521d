//! Large messages both ways over one connection, many at once. Each peer task reads its
//! connection itself; it must go on reading while one of its writes waits for room in the
//! socket, or a peer that reads only once its own writes are through waits for us forever.

use ims_diameter::answer::Origin;
use ims_diameter::base::{Cea, Cer, VendorSpecificApplicationId};
use ims_diameter::peer::result_answer;
use ims_diameter::{AvpFlags, Command, Framer, Message, Outcome, RawAvp};
use ims_net::diameter::Node;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

mod common;

const REALM: &str = "ims.example.org";
/// Our nodes listen in 10900-10999 (H5's range).
const PORTS: u16 = 10900;
const WAIT: Duration = Duration::from_secs(60);
/// The padding of each large request: near the 1 MiB message limit.
const PAD: usize = 900_000;

/// A MAR from `from` to `to` with a `PAD`-octet AVP the grammar keeps in `other`
/// (vendor-specific code, no M bit), its octets made of `fill`.
fn large_mar(from: &Node, session: &str, to: &str, fill: u8) -> Vec<u8> {
    let mut req = common::mar(session, from.origin_host(), REALM, REALM, "alice");
    req.destination_host = Some(to.to_owned().into());
    req.other.push(RawAvp {
        code: 65_000,
        flags: AvpFlags(0),
        vendor: 10_415,
        data: vec![fill; PAD].into(),
    });
    req.encode(0, from.next_end_to_end())
}

/// A scripted peer named `name` on a raw socket to `node` at `addr`: its CER sent, a CEA with
/// 2001 read, and `node` seeing the connection open; the framer holds whatever came after the CEA.
async fn scripted_peer(
    node: &Node,
    addr: std::net::SocketAddr,
    name: &str,
) -> (tokio::net::TcpStream, Framer) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let cer = Cer {
        origin_host: name.into(),
        origin_realm: REALM.into(),
        host_ip_address: ims_diameter::repeated![ims_diameter::Address::Ipv4(
            [127, 0, 0, 1].into()
        )],
        vendor_id: 10415,
        product_name: "scripted".into(),
        vendor_specific_application_id: ims_diameter::repeated![VendorSpecificApplicationId::cx()],
        ..Default::default()
    };
    stream.write_all(&cer.encode(1, 1)).await.unwrap();
    let mut framer = Framer::new();
    let cea = loop {
        if let Some(f) = framer.next_frame().unwrap() {
            break f.to_vec();
        }
        common::read_into(&mut stream, &mut framer, WAIT).await;
    };
    assert_eq!(
        Cea::decode(&Message::parse(&cea).unwrap())
            .unwrap()
            .result_code,
        2001
    );
    node.wait_open(name, WAIT).await.unwrap();
    (stream, framer)
}

/// `count` large MARs from `from` to `to`, all sent at once; every answer must be a success.
async fn burst(from: Node, to: &'static str, count: usize) -> usize {
    let session = from.session_id();
    let waits: Vec<_> = (0..count)
        .map(|i| {
            let bytes = large_mar(&from, &session, to, i as u8);
            let node = from.clone();
            tokio::spawn(async move { node.request(bytes).await })
        })
        .collect();
    let mut ok = 0;
    for w in waits {
        let a = w.await.unwrap().unwrap();
        assert_eq!(a.view().outcome(), Some(Outcome::SUCCESS));
        ok += 1;
    }
    ok
}

/// Two of our nodes send each other 16 requests of ≈900 kB at the same time over their one
/// connection: every request is answered, the connection stays open.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_requests_both_ways_at_once_are_all_answered() {
    const COUNT: usize = 16;
    let hss = Node::new(common::cx_cfg("hss.ims.example.org", REALM, WAIT));
    let addr = common::listen_in(&hss, PORTS).await;
    let at_hss = common::answer_mars(&hss);
    let scscf = Node::new(common::cx_cfg("scscf.ims.example.org", REALM, WAIT));
    let at_scscf = common::answer_mars(&scscf);
    scscf.add_peer("hss.ims.example.org", addr);
    scscf.wait_open("hss.ims.example.org", WAIT).await.unwrap();
    hss.wait_open("scscf.ims.example.org", WAIT).await.unwrap();
    let both = async {
        tokio::join!(
            burst(scscf.clone(), "hss.ims.example.org", COUNT),
            burst(hss.clone(), "scscf.ims.example.org", COUNT)
        )
    };
    let (a, b) = tokio::time::timeout(WAIT, both)
        .await
        .expect("both bursts answered in time");
    assert_eq!((a, b), (COUNT, COUNT));
    assert_eq!(at_hss.load(Ordering::SeqCst), COUNT);
    assert_eq!(at_scscf.load(Ordering::SeqCst), COUNT);
    assert!(scscf
        .peer_status("hss.ims.example.org")
        .unwrap()
        .state
        .is_open());
    scscf.shutdown();
    hss.shutdown();
    scscf.wait_stopped(WAIT).await.unwrap();
    hss.wait_stopped(WAIT).await.unwrap();
}

/// A scripted peer on a raw connection that first writes 72 MB of requests without reading
/// anything, while our node sends it 14 MB of requests (more than the socket buffers hold
/// while the peer does not read: our node's writes wait). Our node must read on meanwhile:
/// the peer's writes all go through (they would wait forever for a node that only reads
/// between its writes), then the peer reads everything, answering our node's requests, and
/// every request both ways gets its answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_waiting_to_write_reads_on() {
    const OURS: usize = 16;
    const THEIRS: usize = 80;
    const PEER: &str = "scscf.ims.example.org";
    let hss = Node::new(common::cx_cfg("hss.ims.example.org", REALM, WAIT));
    let addr = common::listen_in(&hss, PORTS).await;
    let at_hss = common::answer_mars(&hss);

    let (stream, mut framer) = scripted_peer(&hss, addr, PEER).await;

    // our node's requests: their writes soon wait, the peer reads nothing yet
    let ours = tokio::spawn(burst(hss.clone(), PEER, OURS));
    tokio::time::sleep(Duration::from_millis(300)).await;
    // the peer's requests, all written before it reads
    let session = format!("{PEER};1;2");
    let (mut rd, mut wr) = stream.into_split();
    let writes = async {
        for i in 0..THEIRS {
            let mut req = common::mar(&session, PEER, REALM, REALM, "bob");
            req.other.push(RawAvp {
                code: 65_000,
                flags: AvpFlags(0),
                vendor: 10_415,
                data: vec![i as u8; PAD].into(),
            });
            let m = req.encode(1000 + i as u32, 5000 + i as u32);
            wr.write_all(&m).await.unwrap();
        }
    };
    tokio::time::timeout(Duration::from_secs(30), writes)
        .await
        .expect("the node reads while its own writes wait");

    // now the peer reads: the answers to its requests and our node's requests (answered)
    let origin = Origin {
        host: PEER,
        realm: REALM,
        state_id: None,
    };
    let (mut answers, mut requests) = (0, 0);
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        while let Some(f) = framer.next_frame().unwrap() {
            let m = Message::parse(&f).unwrap();
            if !m.is_request() {
                assert_eq!(m.outcome(), Some(Outcome::SUCCESS));
                answers += 1;
            } else if m.code() == 303 {
                wr.write_all(&result_answer(&m, 2001, &origin))
                    .await
                    .unwrap();
                requests += 1;
            }
        }
        if answers == THEIRS && requests == OURS {
            break;
        }
        let n = tokio::time::timeout(WAIT, rd.read(&mut buf))
            .await
            .expect("the node sends on")
            .unwrap();
        assert!(n > 0, "the node closed the connection");
        framer.push(&buf[..n]);
    }
    assert_eq!(at_hss.load(Ordering::SeqCst), THEIRS);
    let ok = tokio::time::timeout(WAIT, ours).await.unwrap().unwrap();
    assert_eq!(ok, OURS);
    assert!(hss.peer_status(PEER).unwrap().state.is_open());
    hss.shutdown();
    drop((rd, wr));
    hss.wait_stopped(WAIT).await.unwrap();
}

/// A peer that stops reading: our node's write of a large request waits for room that never
/// comes, so its peer task's timers cannot run. Every request sent to that peer still gets
/// `NodeError::Timeout` shortly after its deadline — the one whose write waits, and those that
/// reached the peer task while it waited — and the node stops cleanly afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_to_a_peer_that_stops_reading_time_out() {
    use ims_net::diameter::NodeError;
    const PEER: &str = "scscf.ims.example.org";
    const COUNT: usize = 12;
    let timeout = Duration::from_secs(1);
    let hss = Node::new(common::cx_cfg("hss.ims.example.org", REALM, timeout));
    let addr = common::listen_in(&hss, PORTS).await;

    let (stream, _) = scripted_peer(&hss, addr, PEER).await;
    // from now on the peer reads nothing

    let session = hss.session_id();
    let started = tokio::time::Instant::now();
    let mut waits = Vec::new();
    for i in 0..COUNT {
        let bytes = large_mar(&hss, &session, PEER, i as u8);
        let node = hss.clone();
        waits.push(tokio::spawn(async move { node.request(bytes).await }));
        if i == 0 {
            // the first request's write is waiting when the others reach the peer task
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    for w in waits {
        let r = tokio::time::timeout(Duration::from_secs(10), w)
            .await
            .expect("a request to a peer that does not read ends")
            .unwrap();
        assert!(matches!(r, Err(NodeError::Timeout)), "{r:?}");
    }
    // each ended about 100 ms after its own deadline (1 s after it was sent; the margin is
    // for a loaded machine)
    let took = started.elapsed();
    assert!(took < timeout + Duration::from_secs(2), "took {took:?}");
    hss.shutdown();
    drop(stream);
    hss.wait_stopped(WAIT).await.unwrap();
}

/// Many small requests at once to a scripted peer that reads nothing at first: our node writes
/// them in batches (several messages per write), the socket soon takes only part of a batch
/// and the rest waits for room. Once the peer reads, every request arrives whole (each frame
/// parses, its padding intact) and exactly once, and gets its answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batched_writes_to_a_slow_reader_arrive_whole() {
    const COUNT: usize = 6000;
    const SMALL: usize = 2000;
    const PEER: &str = "scscf.ims.example.org";
    let hss = Node::new(common::cx_cfg("hss.ims.example.org", REALM, WAIT));
    let addr = common::listen_in(&hss, PORTS).await;
    let (stream, mut framer) = scripted_peer(&hss, addr, PEER).await;
    let session = hss.session_id();
    let w0 = hss.peer_status(PEER).unwrap().writes;
    let waits: Vec<_> = (0..COUNT)
        .map(|i| {
            let mut req = common::mar(&session, hss.origin_host(), REALM, REALM, "alice");
            req.destination_host = Some(PEER.into());
            // the padding says which request it is
            let mut pad = vec![(i % 251) as u8; SMALL];
            pad[..8].copy_from_slice(&(i as u64).to_be_bytes());
            req.other.push(RawAvp {
                code: 65_000,
                flags: AvpFlags(0),
                vendor: 10_415,
                data: pad.into(),
            });
            let bytes = req.encode(0, hss.next_end_to_end());
            let node = hss.clone();
            tokio::spawn(async move { node.request(bytes).await })
        })
        .collect();
    // ≈12 MB: more than the socket buffers hold while the peer does not read
    tokio::time::sleep(Duration::from_millis(500)).await;
    let origin = Origin {
        host: PEER,
        realm: REALM,
        state_id: None,
    };
    let (mut rd, mut wr) = stream.into_split();
    let mut seen = vec![false; COUNT];
    let mut got = 0;
    let mut buf = vec![0u8; 64 * 1024];
    while got < COUNT {
        while let Some(f) = framer.next_frame().unwrap() {
            let m = Message::parse(&f).unwrap();
            assert!(m.is_request() && m.code() == 303);
            let pad = m
                .avps()
                .find(|a| a.code() == 65_000)
                .expect("the padding AVP")
                .data();
            assert_eq!(pad.len(), SMALL);
            let i = u64::from_be_bytes(pad[..8].try_into().unwrap()) as usize;
            assert!(
                pad[8..].iter().all(|b| *b == (i % 251) as u8),
                "request {i}"
            );
            assert!(!std::mem::replace(&mut seen[i], true), "request {i} twice");
            got += 1;
            wr.write_all(&result_answer(&m, 2001, &origin))
                .await
                .unwrap();
        }
        if got == COUNT {
            break;
        }
        let n = tokio::time::timeout(WAIT, rd.read(&mut buf))
            .await
            .expect("the node sends on")
            .unwrap();
        assert!(n > 0, "the node closed the connection");
        framer.push(&buf[..n]);
    }
    for w in waits {
        let a = tokio::time::timeout(WAIT, w)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(a.view().outcome(), Some(Outcome::SUCCESS));
    }
    let writes = hss.peer_status(PEER).unwrap().writes - w0;
    assert!(
        writes < COUNT as u64 / 2,
        "{writes} writes for {COUNT} requests"
    );
    hss.shutdown();
    drop((rd, wr));
    hss.wait_stopped(WAIT).await.unwrap();
}
