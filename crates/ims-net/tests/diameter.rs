//! Our Diameter nodes against each other over 127.0.0.1: request/answer, timeout, failover to a
//! second peer, 3006 redirect following (the Dx/SLF case), relaying, duplicates, DPR/DPA.

use ims_diameter::base::{Cea, Cer, DisconnectCause, VendorSpecificApplicationId};
use ims_diameter::cx::{Maa, Mar, Uaa, Uar};
use ims_diameter::dict::{self, app};
use ims_diameter::peer::{Application, PeerState};
use ims_diameter::routing::{redirect_answer, Action, RedirectHostUsage, Route};
use ims_diameter::rx::{Aaa, Aar};
use ims_diameter::{Command, Framer, Message, Outcome};
use ims_net::diameter::{Node, NodeConfig, NodeError};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

mod common;
use common::maa_for;

const REALM: &str = "ims.example.org";
const SECS: Duration = Duration::from_secs(5);

fn cfg(host: &str) -> NodeConfig {
    let mut c = NodeConfig::new(host, REALM);
    c.applications = vec![
        Application::tgpp_auth(app::CX),
        Application::tgpp_auth(app::RX),
    ];
    c.watchdog_jitter = Duration::ZERO;
    c.request_timeout = SECS;
    c
}

fn mar(node: &Node, user: &str) -> Mar<'static> {
    common::mar(&node.session_id(), node.origin_host(), REALM, REALM, user)
}

/// A HSS node answering MAR (counting them) and UAR.
async fn hss(host: &str) -> (Node, SocketAddr, Arc<AtomicUsize>) {
    hss_in(host, REALM).await
}

async fn hss_in(host: &str, realm: &str) -> (Node, SocketAddr, Arc<AtomicUsize>) {
    let mut c = cfg(host);
    c.origin_realm = realm.to_owned();
    let node = Node::new(c);
    let addr = node.listen("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let count = common::answer_mars(&node);
    let n = node.clone();
    node.handle(app::CX, Uar::CODE, move |req| {
        let n = n.clone();
        async move {
            let uar = Uar::decode(&req.message.view()).expect("valid UAR");
            let mut uaa = Uaa {
                session_id: uar.session_id,
                vendor_specific_application_id: uar.vendor_specific_application_id,
                auth_session_state: uar.auth_session_state,
                origin_host: n.origin_host().to_owned().into(),
                origin_realm: n.origin_realm().to_owned().into(),
                server_name: Some("sip:scscf.ims.example.org".into()),
                ..Default::default()
            };
            uaa.set_outcome(Outcome::SUCCESS);
            uaa.encode_answer(req.message.header())
        }
    });
    (node, addr, count)
}

#[tokio::test]
async fn cx_and_rx_request_answer() {
    let (hss, addr, count) = hss("hss.ims.example.org").await;
    // the same node also serves Rx, as an embedded PCRF
    let h = hss.clone();
    hss.handle(app::RX, Aar::CODE, move |req| {
        let h = h.clone();
        async move {
            let aar = Aar::decode(&req.message.view()).unwrap();
            let mut aaa = Aaa {
                session_id: aar.session_id,
                auth_application_id: app::RX,
                origin_host: h.origin_host().to_owned().into(),
                origin_realm: REALM.into(),
                ..Default::default()
            };
            aaa.set_outcome(Outcome::SUCCESS);
            aaa.encode_answer(req.message.header())
        }
    });
    let scscf = Node::new(cfg("scscf.ims.example.org"));
    scscf.add_peer("hss.ims.example.org", addr);
    let info = scscf.wait_open("hss.ims.example.org", SECS).await.unwrap();
    assert_eq!(info.common_applications, vec![app::CX, app::RX]);
    // the HSS side sees us too
    hss.wait_open("scscf.ims.example.org", SECS).await.unwrap();

    let req = mar(&scscf, "alice");
    let maa = scscf.send(&req).await.unwrap();
    let v = maa.view();
    assert_eq!(v.outcome(), Some(Outcome::SUCCESS));
    assert_eq!(v.session_id(), Some(&*req.session_id));
    assert_eq!(
        Maa::decode(&v).unwrap().user_name.as_deref(),
        Some("alice@ims.example.org")
    );
    assert_eq!(count.load(Ordering::SeqCst), 1);

    // many in flight at once
    let mut set = tokio::task::JoinSet::new();
    for i in 0..20 {
        let n = scscf.clone();
        set.spawn(async move {
            let r = mar(&n, &format!("user{i}"));
            let a = n.send(&r).await.unwrap();
            assert_eq!(a.view().session_id(), Some(&*r.session_id));
        });
    }
    while let Some(r) = set.join_next().await {
        r.unwrap();
    }
    assert_eq!(count.load(Ordering::SeqCst), 21);

    let aar = Aar {
        session_id: scscf.session_id().into(),
        auth_application_id: app::RX,
        origin_host: scscf.origin_host().to_owned().into(),
        origin_realm: REALM.into(),
        destination_realm: REALM.into(),
        ..Default::default()
    };
    let aaa = scscf.send(&aar).await.unwrap();
    assert_eq!(aaa.view().application_id(), app::RX);
    assert_eq!(aaa.view().outcome(), Some(Outcome::SUCCESS));
}

#[tokio::test]
async fn unhandled_command_is_3001_and_unknown_application_is_3007() {
    let (_hss, addr, _) = hss("hss.ims.example.org").await;
    let c = Node::new(cfg("icscf.ims.example.org"));
    c.add_peer("hss.ims.example.org", addr);
    c.wait_open("hss.ims.example.org", SECS).await.unwrap();
    // LIR has no handler on this HSS
    let lir = ims_diameter::cx::Lir {
        session_id: c.session_id().into(),
        vendor_specific_application_id: VendorSpecificApplicationId::cx(),
        origin_host: c.origin_host().to_owned().into(),
        origin_realm: REALM.into(),
        destination_realm: REALM.into(),
        public_identity: "sip:bob@ims.example.org".into(),
        ..Default::default()
    };
    let a = c.send(&lir).await.unwrap();
    assert_eq!(a.view().outcome(), Some(Outcome::from_result_code(3001)));
    assert!(a.view().flags().is_error());
}

#[tokio::test]
async fn request_timeout() {
    let slow = Node::new(cfg("hss.ims.example.org"));
    let addr = slow.listen("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let s = slow.clone();
    slow.handle(app::CX, Mar::CODE, move |req| {
        let s = s.clone();
        async move {
            tokio::time::sleep(Duration::from_millis(800)).await;
            maa_for(&s, &req)
        }
    });
    let c = Node::new(cfg("scscf.ims.example.org"));
    c.add_peer("hss.ims.example.org", addr);
    c.wait_open("hss.ims.example.org", SECS).await.unwrap();
    let started = tokio::time::Instant::now();
    let r = c
        .request_with_timeout(
            mar(&c, "alice").encode(0, c.next_end_to_end()),
            Duration::from_millis(300),
        )
        .await;
    assert!(matches!(r, Err(NodeError::Timeout)), "{r:?}");
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(300) && took < Duration::from_millis(700),
        "{took:?}"
    );
    // a request with time enough still works
    let a = c
        .request_with_timeout(mar(&c, "alice").encode(0, c.next_end_to_end()), SECS)
        .await
        .unwrap();
    assert_eq!(a.view().outcome(), Some(Outcome::SUCCESS));
}

/// A peer that completes the capabilities exchange, then reads and never answers anything
/// (not even DWR): the watchdog must fail its requests over.
async fn black_hole(host: &'static str) -> SocketAddr {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut s, _) = l.accept().await.unwrap();
        let mut f = Framer::new();
        let mut buf = [0u8; 4096];
        let mut answered = false;
        loop {
            let n = match s.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            f.push(&buf[..n]);
            while let Ok(Some(frame)) = f.next_frame() {
                let m = Message::parse(&frame).unwrap();
                if !answered && m.code() == 257 {
                    let cer = Cer::decode(&m).unwrap();
                    let cea = Cea {
                        result_code: 2001,
                        origin_host: host.into(),
                        origin_realm: REALM.into(),
                        host_ip_address: ims_diameter::repeated![ims_diameter::Address::Ipv4(
                            [127, 0, 0, 1].into()
                        )],
                        product_name: "black-hole".into(),
                        vendor_specific_application_id: cer.vendor_specific_application_id.clone(),
                        ..Default::default()
                    };
                    s.write_all(&cea.encode_answer(m.header())).await.unwrap();
                    answered = true;
                }
            }
        }
    });
    addr
}

#[tokio::test]
async fn watchdog_failover_to_second_peer_with_t_flag() {
    let hole = black_hole("hss1.ims.example.org").await;
    let (hss2, addr2, count2) = hss("hss2.ims.example.org").await;
    // hss2 records whether the request came with the T flag
    let t_flag = Arc::new(AtomicUsize::new(0));
    let (h, t) = (hss2.clone(), t_flag.clone());
    hss2.handle(app::CX, Mar::CODE, move |req| {
        let (h, t) = (h.clone(), t.clone());
        async move {
            if req.message.view().flags().is_retransmit() {
                t.fetch_add(1, Ordering::SeqCst);
            }
            maa_for(&h, &req)
        }
    });
    let mut c = cfg("scscf.ims.example.org");
    c.watchdog_interval = Duration::from_millis(300);
    c.request_timeout = SECS;
    let scscf = Node::new(c);
    scscf.add_peer("hss1.ims.example.org", hole);
    scscf.add_peer("hss2.ims.example.org", addr2);
    scscf.wait_open("hss1.ims.example.org", SECS).await.unwrap();
    scscf.wait_open("hss2.ims.example.org", SECS).await.unwrap();
    // no Destination-Host: both peers qualify and hss1 comes first (it swallows the request)
    let req = mar(&scscf, "alice");
    let e2e = scscf.next_end_to_end();
    let started = tokio::time::Instant::now();
    let a = scscf.request(req.encode(0, e2e)).await.unwrap();
    let took = started.elapsed();
    // answered by hss2 after two Tw (DWR unanswered, then SUSPECT and failover)
    assert_eq!(a.view().outcome(), Some(Outcome::SUCCESS));
    assert_eq!(a.view().origin_host(), Some("hss2.ims.example.org"));
    assert_eq!(a.view().end_to_end(), e2e);
    assert_eq!(t_flag.load(Ordering::SeqCst), 1);
    assert_eq!(
        count2.load(Ordering::SeqCst),
        0,
        "the counting handler was replaced"
    );
    assert!(took >= Duration::from_millis(550), "{took:?}");
    let st = scscf.peer_status("hss1.ims.example.org").unwrap();
    assert_ne!(st.watchdog, ims_diameter::peer::WatchdogState::Okay);
    // new requests avoid the suspect peer
    let a = scscf.send(&mar(&scscf, "bob")).await.unwrap();
    assert_eq!(a.view().origin_host(), Some("hss2.ims.example.org"));
}

#[tokio::test]
async fn dx_redirect_from_slf_is_followed_and_cached() {
    let (_hss, hss_addr, hss_count) = hss("hss2.ims.example.org").await;
    // the SLF answers every UAR/MAR with 3006 naming hss2 (Redirect-Host-Usage ALL_USER)
    let slf = Node::new(cfg("slf.ims.example.org"));
    let slf_addr = slf.listen("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let slf_count = Arc::new(AtomicUsize::new(0));
    let (s, n) = (slf.clone(), slf_count.clone());
    slf.handle(app::CX, Mar::CODE, move |req| {
        let (s, n) = (s.clone(), n.clone());
        async move {
            n.fetch_add(1, Ordering::SeqCst);
            redirect_answer(
                &req.message.view(),
                &["aaa://hss2.ims.example.org:3868;transport=tcp".to_owned()],
                RedirectHostUsage::AllUser,
                60,
                &s.origin(),
            )
        }
    });
    // the I-CSCF sends Dx requests for its realm to the SLF
    let mut ic = cfg("icscf.ims.example.org");
    ic.routes = vec![Route::new(REALM, Action::Relay, &["slf.ims.example.org"])];
    let icscf = Node::new(ic);
    icscf.add_peer("slf.ims.example.org", slf_addr);
    // hss2 is known by address only: the redirect makes the I-CSCF connect to it
    icscf.add_known_host("hss2.ims.example.org", hss_addr);
    icscf.wait_open("slf.ims.example.org", SECS).await.unwrap();
    assert!(icscf.peer_status("hss2.ims.example.org").is_none());

    let a = icscf.send(&mar(&icscf, "alice")).await.unwrap();
    assert_eq!(a.view().outcome(), Some(Outcome::SUCCESS));
    assert_eq!(a.view().origin_host(), Some("hss2.ims.example.org"));
    assert_eq!(
        (
            slf_count.load(Ordering::SeqCst),
            hss_count.load(Ordering::SeqCst)
        ),
        (1, 1)
    );
    assert!(icscf
        .peer_status("hss2.ims.example.org")
        .unwrap()
        .state
        .is_open());

    // the same user again: straight to hss2 from the cache
    icscf.send(&mar(&icscf, "alice")).await.unwrap();
    assert_eq!(
        (
            slf_count.load(Ordering::SeqCst),
            hss_count.load(Ordering::SeqCst)
        ),
        (1, 2)
    );
    // another user asks the SLF again
    icscf.send(&mar(&icscf, "bob")).await.unwrap();
    assert_eq!(
        (
            slf_count.load(Ordering::SeqCst),
            hss_count.load(Ordering::SeqCst)
        ),
        (2, 3)
    );
}

#[tokio::test]
async fn redirect_route_and_relay_route() {
    let (_hss, hss_addr, hss_count) = hss_in("hss.home.example.net", "home.example.net").await;
    // a relay agent: requests for home.example.net go to the HSS, with a Route-Record
    let mut rc = cfg("dra.ims.example.org");
    rc.applications = vec![Application::RELAY];
    rc.routes = vec![
        Route::new("home.example.net", Action::Relay, &["hss.home.example.net"]),
        Route::new(
            "moved.example.net",
            Action::Redirect,
            &["hss.home.example.net"],
        ),
    ];
    let dra = Node::new(rc);
    let dra_addr = dra.listen("127.0.0.1:0".parse().unwrap()).await.unwrap();
    dra.add_peer("hss.home.example.net", hss_addr);
    dra.wait_open("hss.home.example.net", SECS).await.unwrap();
    let c = Node::new(cfg("scscf.ims.example.org"));
    c.add_peer("dra.ims.example.org", dra_addr);
    c.wait_open("dra.ims.example.org", SECS).await.unwrap();

    let mut req = mar(&c, "alice");
    req.destination_realm = "home.example.net".into();
    let e2e = c.next_end_to_end();
    let a = c.request(req.encode(0, e2e)).await.unwrap();
    assert_eq!(a.view().outcome(), Some(Outcome::SUCCESS));
    assert_eq!(a.view().origin_host(), Some("hss.home.example.net"));
    assert_eq!(a.view().end_to_end(), e2e);
    assert_eq!(hss_count.load(Ordering::SeqCst), 1);

    // the redirect route: the DRA answers 3006; the client follows only if it can reach the
    // host, which it cannot (unknown, unresolvable), so it gets the 3006 answer itself
    let mut req = mar(&c, "bob");
    req.destination_realm = "moved.example.net".into();
    let a = c.request(req.encode(0, c.next_end_to_end())).await.unwrap();
    let r = ims_diameter::routing::redirect_of(&a.view()).expect("3006");
    assert_eq!(r.host_names(), vec!["hss.home.example.net"]);
    // once it knows the address, it follows
    c.add_known_host("hss.home.example.net", hss_addr);
    let mut req = mar(&c, "carol");
    req.destination_realm = "moved.example.net".into();
    let a = c.request(req.encode(0, c.next_end_to_end())).await.unwrap();
    assert_eq!(a.view().outcome(), Some(Outcome::SUCCESS));
    assert_eq!(hss_count.load(Ordering::SeqCst), 2);

    // an unknown realm: the DRA answers 3003
    let mut req = mar(&c, "dave");
    req.destination_realm = "nowhere.example.com".into();
    let a = c.request(req.encode(0, c.next_end_to_end())).await.unwrap();
    assert_eq!(a.view().outcome(), Some(Outcome::from_result_code(3003)));
}

#[tokio::test]
async fn duplicate_request_is_answered_from_cache() {
    let (_hss, addr, count) = hss("hss.ims.example.org").await;
    let c = Node::new(cfg("scscf.ims.example.org"));
    c.add_peer("hss.ims.example.org", addr);
    c.wait_open("hss.ims.example.org", SECS).await.unwrap();
    let bytes = mar(&c, "alice").encode(0, c.next_end_to_end());
    let a1 = c.request(bytes.clone()).await.unwrap();
    let mut again = bytes.clone();
    again[4] |= ims_diameter::Flags::RETRANSMIT;
    let a2 = c.request(again).await.unwrap();
    assert_eq!(count.load(Ordering::SeqCst), 1);
    assert_eq!(a1.bytes()[16..], a2.bytes()[16..]);
}

#[tokio::test]
async fn dpr_dpa_closes_both_sides() {
    let (hss, addr, _) = hss("hss.ims.example.org").await;
    let c = Node::new(cfg("scscf.ims.example.org"));
    c.add_peer("hss.ims.example.org", addr);
    c.wait_open("hss.ims.example.org", SECS).await.unwrap();
    hss.wait_open("scscf.ims.example.org", SECS).await.unwrap();
    c.disconnect("hss.ims.example.org", DisconnectCause::DoNotWantToTalkToYou)
        .unwrap();
    c.wait_closed("hss.ims.example.org", SECS).await.unwrap();
    hss.wait_closed("scscf.ims.example.org", SECS)
        .await
        .unwrap();
    let r = c.send(&mar(&c, "alice")).await;
    assert!(matches!(r, Err(NodeError::NoRoute(_))), "{r:?}");
    assert_eq!(
        c.peer_status("hss.ims.example.org").unwrap().state,
        PeerState::Closed
    );
}

#[tokio::test]
async fn no_common_application_never_opens() {
    let mut pc = cfg("pcrf.ims.example.org");
    pc.applications = vec![Application::tgpp_auth(app::RX)];
    let pcrf = Node::new(pc);
    let addr = pcrf.listen("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let mut cc = cfg("scscf.ims.example.org");
    cc.applications = vec![Application::tgpp_auth(app::CX)];
    let c = Node::new(cc);
    c.add_peer("pcrf.ims.example.org", addr);
    let r = c
        .wait_open("pcrf.ims.example.org", Duration::from_millis(500))
        .await;
    assert!(r.is_err());
    assert_eq!(
        c.peer_status("pcrf.ims.example.org").unwrap().state,
        PeerState::Closed
    );
    let _ = dict::app::CX;
}

#[tokio::test]
async fn panicking_handler_is_answered_5012() {
    let node = Node::new(cfg("hss.ims.example.org"));
    let addr = node.listen("127.0.0.1:0".parse().unwrap()).await.unwrap();
    node.handle(app::CX, Mar::CODE, |_req| async move {
        panic!("handler bug");
    });
    let c = Node::new(cfg("scscf.ims.example.org"));
    c.add_peer("hss.ims.example.org", addr);
    c.wait_open("hss.ims.example.org", SECS).await.unwrap();
    let a = c.send(&mar(&c, "alice")).await.unwrap();
    assert_eq!(a.view().outcome(), Some(Outcome::from_result_code(5012)));
    // the node still works
    assert!(c
        .peer_status("hss.ims.example.org")
        .unwrap()
        .state
        .is_open());
}

/// A TCP proxy whose connections can be cut (both sockets dropped at once: a connection loss)
/// and which, while down, drops every new connection at once.
struct Cable {
    addr: SocketAddr,
    up: Arc<std::sync::atomic::AtomicBool>,
    tasks: Arc<std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>>,
}

impl Cable {
    async fn new(target: SocketAddr) -> Cable {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let up = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let tasks: Arc<std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>> = Arc::default();
        let (u, t) = (up.clone(), tasks.clone());
        tokio::spawn(async move {
            while let Ok((client, _)) = l.accept().await {
                if !u.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let Ok(server) = tokio::net::TcpStream::connect(target).await else {
                    continue;
                };
                let h = tokio::spawn(async move {
                    let (mut cr, mut cw) = client.into_split();
                    let (mut sr, mut sw) = server.into_split();
                    let a = tokio::io::copy(&mut cr, &mut sw);
                    let b = tokio::io::copy(&mut sr, &mut cw);
                    let _ = tokio::join!(a, b);
                });
                t.lock().unwrap().push(h);
            }
        });
        Cable { addr, up, tasks }
    }

    fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        for h in self.tasks.lock().unwrap().drain(..) {
            h.abort();
        }
    }

    fn mend(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_loss_fails_over_at_once_and_fails_back_after_reopen() {
    // hss1 (preferred: first by name) answers MAR slowly; hss2 at once
    let (hss1, addr1, _) = hss("hss1.ims.example.org").await;
    let h1 = hss1.clone();
    let served1 = Arc::new(AtomicUsize::new(0));
    let s1 = served1.clone();
    hss1.handle(app::CX, Mar::CODE, move |req| {
        let (h, s) = (h1.clone(), s1.clone());
        async move {
            let slow = Mar::decode(&req.message.view())
                .is_ok_and(|m| m.user_name == "slow@ims.example.org");
            if slow {
                tokio::time::sleep(Duration::from_secs(3)).await;
            }
            s.fetch_add(1, Ordering::SeqCst);
            maa_for(&h, &req)
        }
    });
    let (_hss2, addr2, count2) = hss("hss2.ims.example.org").await;
    let cable = Cable::new(addr1).await;
    let tw = Duration::from_millis(200);
    let tc = Duration::from_millis(500);
    let mut c = cfg("scscf.ims.example.org");
    c.watchdog_interval = tw;
    c.reconnect_interval = Some(tc);
    c.connect_timeout = Duration::from_secs(1);
    let scscf = Node::new(c);
    scscf.add_peer("hss1.ims.example.org", cable.addr);
    scscf.add_peer("hss2.ims.example.org", addr2);
    scscf.wait_open("hss1.ims.example.org", SECS).await.unwrap();
    scscf.wait_open("hss2.ims.example.org", SECS).await.unwrap();
    let a = scscf.send(&mar(&scscf, "alice")).await.unwrap();
    assert_eq!(a.view().origin_host(), Some("hss1.ims.example.org"));

    // a request pending at hss1 when the connection is lost goes to hss2 at once, T flag set
    let s = scscf.clone();
    let pending = tokio::spawn(async move {
        let started = tokio::time::Instant::now();
        let a = s.send(&mar(&s, "slow")).await.unwrap();
        (a, started.elapsed())
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    cable.cut();
    let (a, took) = pending.await.unwrap();
    assert_eq!(a.view().origin_host(), Some("hss2.ims.example.org"));
    assert!(
        took < Duration::from_millis(1500),
        "failover waited for the watchdog: {took:?}"
    );
    let st = scscf.peer_status("hss1.ims.example.org").unwrap();
    assert_eq!(st.state, PeerState::Closed);
    assert_eq!(st.stats.failovers, 1);
    assert_eq!(count2.load(Ordering::SeqCst), 1);

    // while hss1 is unreachable everything goes to hss2
    for u in ["bob", "carol"] {
        let a = scscf.send(&mar(&scscf, u)).await.unwrap();
        assert_eq!(a.view().origin_host(), Some("hss2.ims.example.org"));
    }
    // the connection comes back: reconnect after Tc, then REOPEN needs three DWAs (RFC 3539
    // §3.4.1) before hss1 is used again — failback no earlier than about 2 Tw after the CEA
    let mended = tokio::time::Instant::now();
    cable.mend();
    let mut reopen_seen = false;
    let back = loop {
        let st = scscf.peer_status("hss1.ims.example.org").unwrap();
        if st.state.is_open() && st.watchdog == ims_diameter::peer::WatchdogState::Reopen {
            reopen_seen = true;
            // not used while in REOPEN
            let a = scscf.send(&mar(&scscf, "dave")).await.unwrap();
            assert_eq!(a.view().origin_host(), Some("hss2.ims.example.org"));
        }
        if st.watchdog == ims_diameter::peer::WatchdogState::Okay {
            break mended.elapsed();
        }
        assert!(mended.elapsed() < SECS, "hss1 never came back: {st:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(reopen_seen, "REOPEN not observed");
    assert!(back >= 2 * tw, "failback too early: {back:?}");
    let a = scscf.send(&mar(&scscf, "erin")).await.unwrap();
    assert_eq!(a.view().origin_host(), Some("hss1.ims.example.org"));
}

/// RFC 6737 Capabilities Update between two of our nodes: a P-CSCF connected to a PCRF for Cx
/// only adds Rx with a CUR on the open connection (both advertise Application-Id 10); after the
/// CUA an AAR is routed to the PCRF on that same connection (no reconnection is configured, so
/// a closed connection would stay closed). Then the PCRF updates to an application the P-CSCF
/// does not have: the P-CSCF answers 5010 and disconnects with DPR.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn capabilities_update_adds_rx_on_the_open_connection() {
    let mut pc = cfg("pcrf.ims.example.org");
    pc.applications.push(Application::CAPABILITIES_UPDATE);
    let pcrf = Node::new(pc);
    let addr = pcrf.listen("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let served = Arc::new(AtomicUsize::new(0));
    let (p, s) = (pcrf.clone(), served.clone());
    pcrf.handle(app::RX, Aar::CODE, move |req| {
        let (p, s) = (p.clone(), s.clone());
        async move {
            s.fetch_add(1, Ordering::SeqCst);
            let aar = Aar::decode(&req.message.view()).unwrap();
            let mut aaa = Aaa {
                session_id: aar.session_id,
                auth_application_id: app::RX,
                origin_host: p.origin_host().to_owned().into(),
                origin_realm: REALM.into(),
                ..Default::default()
            };
            aaa.set_outcome(Outcome::SUCCESS);
            aaa.encode_answer(req.message.header())
        }
    });
    let mut cc = cfg("pcscf.ims.example.org");
    cc.applications = vec![
        Application::tgpp_auth(app::CX),
        Application::CAPABILITIES_UPDATE,
    ];
    cc.reconnect_interval = None;
    let pcscf = Node::new(cc);
    pcscf.add_peer("pcrf.ims.example.org", addr);
    let info = pcscf.wait_open("pcrf.ims.example.org", SECS).await.unwrap();
    assert!(info.supports_capabilities_update());
    assert!(!info.common_applications.contains(&app::RX), "{info:?}");
    let aar = |n: &Node| Aar {
        session_id: n.session_id().into(),
        auth_application_id: app::RX,
        origin_host: n.origin_host().to_owned().into(),
        origin_realm: REALM.into(),
        destination_realm: REALM.into(),
        ..Default::default()
    };
    // no peer for Rx yet
    let err = pcscf.send(&aar(&pcscf)).await.unwrap_err();
    assert!(matches!(err, NodeError::NoRoute(_)), "{err:?}");
    assert_eq!(served.load(Ordering::SeqCst), 0);

    pcscf.update_applications(vec![
        Application::tgpp_auth(app::CX),
        Application::tgpp_auth(app::RX),
        Application::CAPABILITIES_UPDATE,
    ]);
    assert!(pcscf
        .applications()
        .contains(&Application::tgpp_auth(app::RX)));
    let has_rx = |s: &ims_net::diameter::PeerStatus| {
        s.remote
            .as_ref()
            .is_some_and(|r| r.common_applications.contains(&app::RX))
    };
    let deadline = tokio::time::Instant::now() + SECS;
    while !(pcscf
        .peer_status("pcrf.ims.example.org")
        .is_some_and(|s| has_rx(&s))
        && pcrf
            .peer_status("pcscf.ims.example.org")
            .is_some_and(|s| has_rx(&s)))
    {
        assert!(tokio::time::Instant::now() < deadline, "never updated");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let aaa = pcscf.send(&aar(&pcscf)).await.unwrap();
    assert_eq!(aaa.view().outcome(), Some(Outcome::SUCCESS));
    assert_eq!(served.load(Ordering::SeqCst), 1);
    // the same connection all along
    assert_eq!(
        pcscf.peer_status("pcrf.ims.example.org").unwrap().state,
        PeerState::IOpen
    );
    assert_eq!(
        pcrf.peer_status("pcscf.ims.example.org").unwrap().state,
        PeerState::ROpen
    );

    // nothing in common any more: 5010 and DPR from the P-CSCF
    pcrf.update_applications(vec![
        Application::tgpp_auth(16_777_217), // Sh
        Application::CAPABILITIES_UPDATE,
    ]);
    pcrf.wait_closed("pcscf.ims.example.org", SECS)
        .await
        .unwrap();
    assert_eq!(
        pcrf.peer_status("pcscf.ims.example.org")
            .unwrap()
            .stats
            .dpr_received,
        1
    );
    pcscf
        .wait_closed("pcrf.ims.example.org", SECS)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_node_starts_again() {
    let (hss, addr, served) = hss("hss.ims.example.org").await;
    let mut c = cfg("scscf.ims.example.org");
    c.reconnect_interval = Some(Duration::from_millis(200));
    let scscf = Node::new(c);
    scscf.add_peer("hss.ims.example.org", addr);
    scscf.wait_open("hss.ims.example.org", SECS).await.unwrap();
    let maa = scscf.send(&mar(&scscf, "alice")).await.unwrap();
    assert_eq!(maa.view().outcome(), Some(Outcome::SUCCESS));
    // a running node is left as it is
    assert_eq!(scscf.restart(SECS).await.unwrap(), vec![]);
    assert_eq!(hss.restart(SECS).await.unwrap(), vec![addr]);
    assert!(!hss.is_stopped());

    // both stop: listener closed, every task ended
    hss.shutdown();
    scscf.shutdown();
    hss.wait_stopped(SECS).await.unwrap();
    scscf.wait_stopped(SECS).await.unwrap();
    assert_eq!(hss.running_tasks(), 0);
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
    assert!(matches!(
        scscf.send(&mar(&scscf, "bob")).await,
        Err(NodeError::Closed | NodeError::NoRoute(_) | NodeError::PeerNotOpen(_))
    ));

    // the HSS listens again on the same address; the S-CSCF connects again (new CER/CEA)
    assert_eq!(hss.restart(SECS).await.unwrap(), vec![addr]);
    assert!(!hss.is_stopped());
    assert!(tokio::net::TcpStream::connect(addr).await.is_ok());
    scscf.restart(SECS).await.unwrap();
    scscf.wait_open("hss.ims.example.org", SECS).await.unwrap();
    hss.wait_open("scscf.ims.example.org", SECS).await.unwrap();
    let maa = scscf.send(&mar(&scscf, "carol")).await.unwrap();
    assert_eq!(maa.view().outcome(), Some(Outcome::SUCCESS));
    assert_eq!(served.load(Ordering::SeqCst), 2, "the handler is kept");
    assert!(scscf.running_tasks() > 0);

    // and it stops (and starts) again
    stop_scscf(&scscf, &hss).await;
    scscf.restart(SECS).await.unwrap();
    scscf.wait_open("hss.ims.example.org", SECS).await.unwrap();
    let maa = scscf.send(&mar(&scscf, "dave")).await.unwrap();
    assert_eq!(maa.view().outcome(), Some(Outcome::SUCCESS));
    scscf.shutdown();
    hss.shutdown();
    scscf.wait_stopped(SECS).await.unwrap();
    hss.wait_stopped(SECS).await.unwrap();
}

/// Stops the S-CSCF's node `scscf` and waits until it has stopped and `hss` has seen the
/// connection close.
async fn stop_scscf(scscf: &Node, hss: &Node) {
    scscf.shutdown();
    scscf.wait_stopped(SECS).await.unwrap();
    hss.wait_closed("scscf.ims.example.org", SECS)
        .await
        .unwrap();
}

/// Waits until `hss` has taken a CER from the S-CSCF with Origin-State-Id `id` (peer open).
async fn cer_from_scscf(hss: &Node, id: u32) {
    for _ in 0..100 {
        if hss.peer_status("scscf.ims.example.org").is_some_and(|s| {
            s.state.is_open() && s.remote.is_some_and(|r| r.origin_state_id == Some(id))
        }) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "no CER with Origin-State-Id {id}: {:?}",
        hss.peer_status("scscf.ims.example.org")
    );
}

/// RFC 6733 §8.16: a node that starts again with its state lost sends a higher
/// Origin-State-Id; its peer sees the change, reports it (`Node::on_peer_restart`) and forgets
/// the restarted node's requests kept for duplicate detection, so a reused End-to-End
/// Identifier is served as the new request it is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_node_sends_a_higher_origin_state_id_and_its_peer_notices() {
    use ims_net::diameter::{origin_state_id_at, PeerRestart};
    use std::time::UNIX_EPOCH;

    let (hss, addr, served) = hss("hss.ims.example.org").await;
    let restarts: Arc<std::sync::Mutex<Vec<PeerRestart>>> = Arc::default();
    let r = restarts.clone();
    hss.on_peer_restart(move |x| r.lock().unwrap().push(x.clone()));
    let started = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    assert_eq!(origin_state_id_at(started), 1_700_000_000);
    let mut c = cfg("scscf.ims.example.org");
    c.reconnect_interval = Some(Duration::from_millis(200));
    c.origin_state_id = Some(origin_state_id_at(started));
    let scscf = Node::new(c.clone());
    assert_eq!(scscf.origin_state_id(), Some(1_700_000_000));
    scscf.add_peer("hss.ims.example.org", addr);
    scscf.wait_open("hss.ims.example.org", SECS).await.unwrap();
    let info = hss.wait_open("scscf.ims.example.org", SECS).await.unwrap();
    assert_eq!(info.origin_state_id, Some(1_700_000_000), "in the CER");

    // a request, then its retransmission (same End-to-End): answered once, from the cache
    let e2e = 0x0123_4567;
    let first = mar(&scscf, "alice").encode(0, e2e);
    let a = scscf.request(first.clone()).await.unwrap();
    assert_eq!(a.view().outcome(), Some(Outcome::SUCCESS));
    let mut again = first.clone();
    again[4] |= ims_diameter::Flags::RETRANSMIT;
    scscf.request(again).await.unwrap();
    assert_eq!(served.load(Ordering::SeqCst), 1);
    assert!(restarts.lock().unwrap().is_empty());

    // the S-CSCF stops and starts again (its state lost): Origin-State-Id + 1 in its new CER
    stop_scscf(&scscf, &hss).await;
    scscf.restart(SECS).await.unwrap();
    assert_eq!(scscf.origin_state_id(), Some(1_700_000_001));
    scscf.wait_open("hss.ims.example.org", SECS).await.unwrap();
    // (the HSS keeps its peer entry: its watchdog is in REOPEN until three DWA, RFC 3539
    // §3.4.1, so wait for the CER's effect rather than for `wait_open`)
    cer_from_scscf(&hss, 1_700_000_001).await;
    assert_eq!(
        *restarts.lock().unwrap(),
        vec![PeerRestart {
            origin_host: "scscf.ims.example.org".into(),
            previous: 1_700_000_000,
            current: 1_700_000_001,
        }]
    );
    // the new run reuses the End-to-End Identifier for another request: served, not a duplicate
    let other = mar(&scscf, "bob").encode(0, e2e);
    let a = scscf.request(other).await.unwrap();
    let maa = Maa::decode(&a.view()).unwrap();
    assert_eq!(maa.user_name.as_deref(), Some("bob@ims.example.org"));
    assert_eq!(served.load(Ordering::SeqCst), 2);

    // a fresh start (a new process: a new node, started later) is noticed the same way
    stop_scscf(&scscf, &hss).await;
    c.origin_state_id = Some(origin_state_id_at(started + Duration::from_secs(60)));
    let fresh = Node::new(c.clone());
    fresh.add_peer("hss.ims.example.org", addr);
    fresh.wait_open("hss.ims.example.org", SECS).await.unwrap();
    cer_from_scscf(&hss, 1_700_000_060).await;
    assert_eq!(restarts.lock().unwrap().len(), 2);
    assert_eq!(restarts.lock().unwrap()[1].previous, 1_700_000_001);
    assert_eq!(restarts.lock().unwrap()[1].current, 1_700_000_060);

    // a reconnection of the same run (same Origin-State-Id) is no restart
    stop_scscf(&fresh, &hss).await;
    let same = Node::new(c);
    same.add_peer("hss.ims.example.org", addr);
    same.wait_open("hss.ims.example.org", SECS).await.unwrap();
    cer_from_scscf(&hss, 1_700_000_060).await;
    assert_eq!(restarts.lock().unwrap().len(), 2);
    // the node's own answers carry its Origin-State-Id too
    assert_eq!(same.origin().state_id, Some(1_700_000_060));
    same.shutdown();
    hss.shutdown();
    same.wait_stopped(SECS).await.unwrap();
    hss.wait_stopped(SECS).await.unwrap();
}

/// Appends an Origin-State-Id AVP (RFC 6733 §8.16, M bit) to an encoded message and fixes its
/// Message Length.
fn with_state_id(mut m: Vec<u8>, id: u32) -> Vec<u8> {
    m.extend_from_slice(&278u32.to_be_bytes());
    m.extend_from_slice(&[0x40, 0, 0, 12]);
    m.extend_from_slice(&id.to_be_bytes());
    let len = (m.len() as u32).to_be_bytes();
    m[1..4].copy_from_slice(&len[1..]);
    m
}

/// A scripted Diameter peer on a raw TCP connection: every octet it sends is chosen by the test.
struct ScriptedPeer {
    stream: tokio::net::TcpStream,
    framer: Framer,
    hop_by_hop: u32,
}

impl ScriptedPeer {
    /// Connects to `addr` as scscf.ims.example.org (Cx and Rx) and exchanges CER/CEA, its CER
    /// with `state_id`.
    async fn open(addr: SocketAddr, state_id: Option<u32>) -> ScriptedPeer {
        let mut peer = ScriptedPeer {
            stream: tokio::net::TcpStream::connect(addr).await.unwrap(),
            framer: Framer::new(),
            hop_by_hop: 0,
        };
        let cer = Cer {
            origin_host: "scscf.ims.example.org".into(),
            origin_realm: REALM.into(),
            host_ip_address: ims_diameter::repeated![ims_diameter::Address::Ipv4(
                [127, 0, 0, 1].into()
            )],
            vendor_id: 10415,
            product_name: "scripted".into(),
            origin_state_id: state_id,
            vendor_specific_application_id: ims_diameter::repeated![
                VendorSpecificApplicationId::cx(),
                VendorSpecificApplicationId::rx()
            ],
            ..Default::default()
        };
        let cea = peer.exchange(cer.encode(0, 1)).await;
        let cea = Cea::decode(&Message::parse(&cea).unwrap()).unwrap();
        assert_eq!(cea.result_code, 2001);
        peer
    }

    async fn send(&mut self, m: &[u8]) {
        self.stream.write_all(m).await.unwrap();
    }

    /// The next message from the node (DWRs are answered, without Origin-State-Id).
    async fn next(&mut self) -> Vec<u8> {
        loop {
            while let Some(frame) = self.framer.next_frame().unwrap() {
                let m = Message::parse(&frame).unwrap();
                if m.code() == 280 && m.is_request() {
                    let dwa = ims_diameter::base::Dwa {
                        result_code: 2001,
                        origin_host: "scscf.ims.example.org".into(),
                        origin_realm: REALM.into(),
                        ..Default::default()
                    };
                    let a = dwa.encode_answer(m.header());
                    self.send(&a).await;
                    continue;
                }
                return frame.to_vec();
            }
            common::read_into(&mut self.stream, &mut self.framer, SECS).await;
        }
    }

    /// Sends `m` with a fresh Hop-by-Hop Identifier and returns the answer.
    async fn exchange(&mut self, mut m: Vec<u8>) -> Vec<u8> {
        self.hop_by_hop += 1;
        m[12..16].copy_from_slice(&self.hop_by_hop.to_be_bytes());
        self.send(&m).await;
        let a = self.next().await;
        assert_eq!(Message::parse(&a).unwrap().hop_by_hop(), self.hop_by_hop);
        a
    }
}

/// RFC 6733 §8.16: Origin-State-Id "MAY be included in any Diameter message", so a restart shows
/// in DWR/DWA and in requests and answers too, not only in CER/CEA. Our node takes it from each,
/// with the same consequences: the origin's requests are forgotten by duplicate detection and
/// `Node::on_peer_restart` is called; a lower value in a request (a late message of the old
/// run) and the value 0 are no restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn origin_state_id_changes_are_noticed_in_watchdogs_requests_and_answers() {
    use ims_diameter::base::Dwr;
    use ims_net::diameter::PeerRestart;

    let (hss, addr, served) = hss("hss.ims.example.org").await;
    let restarts: Arc<std::sync::Mutex<Vec<PeerRestart>>> = Arc::default();
    let r = restarts.clone();
    hss.on_peer_restart(move |x| r.lock().unwrap().push(x.clone()));
    let restart = |host: &str, previous: u32, current: u32| PeerRestart {
        origin_host: host.into(),
        previous,
        current,
    };
    let wait_restarts = |n: usize| {
        let restarts = restarts.clone();
        async move {
            for _ in 0..200 {
                if restarts.lock().unwrap().len() >= n {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
            panic!("{n} restarts expected: {:?}", restarts.lock().unwrap());
        }
    };
    const SCSCF: &str = "scscf.ims.example.org";

    let mut peer = ScriptedPeer::open(addr, Some(10)).await;

    let scscf = Node::new(cfg(SCSCF)); // only used to build requests (its Session-Ids)
    let e2e = 0x0bad_cafe;
    let alice = mar(&scscf, "alice").encode(0, e2e);
    let bob = mar(&scscf, "bob").encode(0, e2e);
    let user = |a: &[u8]| {
        let m = Message::parse(a).unwrap();
        let maa = Maa::decode(&m).unwrap();
        maa.user_name.map(|u| u.into_owned())
    };
    let a = peer.exchange(with_state_id(alice.clone(), 10)).await;
    assert_eq!(user(&a).as_deref(), Some("alice@ims.example.org"));
    assert_eq!(served.load(Ordering::SeqCst), 1);
    // the same End-to-End Identifier again from the same run: a duplicate, from the cache
    let a = peer.exchange(with_state_id(bob.clone(), 10)).await;
    assert_eq!(user(&a).as_deref(), Some("alice@ims.example.org"));
    assert_eq!(served.load(Ordering::SeqCst), 1);

    // a DWR shows a new run (11): reported, and its requests forgotten
    let dwr = Dwr {
        origin_host: SCSCF.into(),
        origin_realm: REALM.into(),
        origin_state_id: Some(11),
        ..Default::default()
    };
    let dwa = peer.exchange(dwr.encode(0, 2)).await;
    assert_eq!(Message::parse(&dwa).unwrap().code(), 280);
    wait_restarts(1).await;
    assert_eq!(*restarts.lock().unwrap(), vec![restart(SCSCF, 10, 11)]);
    let a = peer.exchange(with_state_id(bob.clone(), 11)).await;
    assert_eq!(
        user(&a).as_deref(),
        Some("bob@ims.example.org"),
        "served anew"
    );
    assert_eq!(served.load(Ordering::SeqCst), 2);
    // the new run is remembered by the peer entry too
    assert_eq!(
        hss.peer_status(SCSCF)
            .and_then(|s| s.remote?.origin_state_id),
        Some(11)
    );

    // a request shows the next run (12): forgotten before the request itself is checked
    let a = peer.exchange(with_state_id(alice.clone(), 12)).await;
    assert_eq!(
        user(&a).as_deref(),
        Some("alice@ims.example.org"),
        "served anew"
    );
    assert_eq!(served.load(Ordering::SeqCst), 3);
    assert_eq!(restarts.lock().unwrap().len(), 2);
    assert_eq!(restarts.lock().unwrap()[1], restart(SCSCF, 11, 12));
    // a late request of an old run (lower value) and 0 ("infer nothing") are no restart: still
    // a duplicate of the run-12 request
    let a = peer.exchange(with_state_id(bob.clone(), 5)).await;
    assert_eq!(user(&a).as_deref(), Some("alice@ims.example.org"));
    let a = peer.exchange(with_state_id(bob.clone(), 0)).await;
    assert_eq!(user(&a).as_deref(), Some("alice@ims.example.org"));
    assert_eq!(served.load(Ordering::SeqCst), 3);
    assert_eq!(restarts.lock().unwrap().len(), 2);

    // a node behind the peer (another Origin-Host): first value remembered, a higher one reported
    let mut relayed = mar(&scscf, "carol");
    relayed.origin_host = "pcscf.ims.example.org".into();
    let relayed = relayed.encode(0, 0x0123);
    peer.exchange(with_state_id(relayed.clone(), 100)).await;
    peer.exchange(with_state_id(relayed.clone(), 100)).await;
    assert_eq!(
        served.load(Ordering::SeqCst),
        4,
        "the second was a duplicate"
    );
    peer.exchange(with_state_id(relayed, 101)).await;
    assert_eq!(
        served.load(Ordering::SeqCst),
        5,
        "served anew after the restart"
    );
    assert_eq!(
        restarts.lock().unwrap()[2],
        restart("pcscf.ims.example.org", 100, 101)
    );

    // an answer shows the peer's next run (13)
    let mut to_scscf = mar(&hss, "dave");
    to_scscf.destination_host = Some(SCSCF.into());
    let bytes = to_scscf.encode(0, hss.next_end_to_end());
    let pending = tokio::spawn({
        let hss = hss.clone();
        async move { hss.request(bytes).await }
    });
    let req = peer.next().await;
    let m = Message::parse(&req).unwrap();
    assert_eq!(m.code(), Mar::CODE);
    let mut maa = Maa {
        session_id: m.session_id().unwrap().into(),
        vendor_specific_application_id: VendorSpecificApplicationId::cx(),
        auth_session_state: mar(&scscf, "x").auth_session_state,
        origin_host: SCSCF.into(),
        origin_realm: REALM.into(),
        ..Default::default()
    };
    maa.set_outcome(Outcome::SUCCESS);
    peer.send(&with_state_id(maa.encode_answer(m.header()), 13))
        .await;
    let a = tokio::time::timeout(SECS, pending).await.unwrap().unwrap();
    assert_eq!(a.unwrap().view().outcome(), Some(Outcome::SUCCESS));
    wait_restarts(4).await;
    assert_eq!(restarts.lock().unwrap()[3], restart(SCSCF, 12, 13));

    drop(peer); // (it would not answer the DPR)
    hss.shutdown();
    hss.wait_stopped(SECS).await.unwrap();
}

/// Appends a Destination-Realm AVP (RFC 6733 §6.6, M bit) naming `realm` to an encoded message
/// and fixes its Message Length.
fn with_destination_realm(mut m: Vec<u8>, realm: &str) -> Vec<u8> {
    let len = 8 + realm.len();
    m.extend_from_slice(&283u32.to_be_bytes());
    m.extend_from_slice(&[0x40, 0, 0, len as u8]);
    m.extend_from_slice(realm.as_bytes());
    m.resize(m.len() + (4 - len % 4) % 4, 0);
    let total = (m.len() as u32).to_be_bytes();
    m[1..4].copy_from_slice(&total[1..]);
    m
}

/// An STR with Destination-Realm twice (Kamailio's cdp 5.6.3 sends one after an ASR): by
/// default a typed handler answers it 5009 DIAMETER_AVP_OCCURS_TOO_MANY_TIMES naming the AVP in
/// Failed-AVP (RFC 6733 §7.1.5: the STR ABNF allows one); with
/// `NodeConfig::merge_repeated_destination_realm` the repeats naming the same realm (any case)
/// are removed before the handler runs, which then answers 2001. Copies naming different
/// realms stay a 5009.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeated_destination_realm_is_5009_unless_merging_is_on() {
    use ims_diameter::answer::error_answer;
    use ims_diameter::base::TerminationCause;
    use ims_diameter::rx::{Sta, Str};

    for merge in [false, true] {
        let mut c = cfg("pcrf.ims.example.org");
        c.merge_repeated_destination_realm = merge;
        let node = Node::new(c);
        let addr = node.listen("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let n = node.clone();
        node.handle(app::RX, Str::CODE, move |req| {
            let n = n.clone();
            async move {
                let view = req.message.view();
                match Str::decode(&view) {
                    Ok(s) => Sta {
                        session_id: s.session_id,
                        origin_host: n.origin_host().to_owned().into(),
                        origin_realm: n.origin_realm().to_owned().into(),
                        result_code: Some(2001),
                        ..Default::default()
                    }
                    .encode_answer(view.header()),
                    Err(e) => error_answer(req.message.bytes(), &e, &n.origin())
                        .expect("an answer for a faulty STR"),
                }
            }
        });
        let mut peer = ScriptedPeer::open(addr, None).await;
        let str_ = |e2e: u32| {
            Str {
                session_id: format!("scscf.ims.example.org;1;{e2e}").into(),
                origin_host: "scscf.ims.example.org".into(),
                origin_realm: REALM.into(),
                destination_realm: REALM.into(),
                auth_application_id: app::RX,
                termination_cause: TerminationCause::DiameterAdministrative,
                ..Default::default()
            }
            .encode(0, e2e)
        };
        let outcome = |a: &[u8]| {
            let m = Message::parse(a).unwrap();
            let failed = m
                .find(dict::FAILED_AVP)
                .map(|f| {
                    f.grouped()
                        .unwrap()
                        .filter(|x| x.is(dict::DESTINATION_REALM))
                        .map(|x| String::from_utf8_lossy(x.data()).into_owned())
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default();
            (m.outcome().map(|o| o.code()), failed)
        };
        // once: fine either way
        let a = peer.exchange(str_(1)).await;
        assert_eq!(outcome(&a), (Some(2001), vec![]));
        // twice, the same realm (the copy in capitals)
        let a = peer
            .exchange(with_destination_realm(str_(2), "IMS.example.org"))
            .await;
        if merge {
            assert_eq!(outcome(&a), (Some(2001), vec![]), "merged");
        } else {
            assert_eq!(
                outcome(&a),
                (Some(5009), vec!["IMS.example.org".to_owned()]),
                "strict: the repeat named in Failed-AVP"
            );
        }
        // twice, another realm: 5009 either way
        let a = peer
            .exchange(with_destination_realm(str_(3), "other.example"))
            .await;
        assert_eq!(outcome(&a), (Some(5009), vec!["other.example".to_owned()]));
        drop(peer);
        node.shutdown();
        node.wait_stopped(SECS).await.unwrap();
    }
}
