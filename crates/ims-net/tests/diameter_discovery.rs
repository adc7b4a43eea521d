//! Dynamic peer discovery in the node (RFC 6733 §5.2, RFC 6408): a client node configured with
//! no peer, only a resolver, sends a Cx MAR to a realm and reaches the HSS node that DNS (a static
//! resolver) names — through NAPTR → SRV → A, through the `_diameter._tcp` SRV fallback, and
//! through the realm's own A record on port 3868.

use ims_diameter::base::VendorSpecificApplicationId;
use ims_diameter::cx::{Maa, Mar};
use ims_diameter::discovery::{Naptr, Resolver, Srv, StaticResolver};
use ims_diameter::peer::Application;
use ims_diameter::{Command, Outcome};
use ims_net::diameter::{Node, NodeConfig, NodeError};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

mod common;

const SECS: Duration = Duration::from_secs(5);

fn cfg(host: &str, realm: &str) -> NodeConfig {
    common::cx_cfg(host, realm, SECS)
}

/// An HSS node answering MAR with success (and counting them).
async fn hss(host: &str, realm: &str, listen: &str) -> (Node, SocketAddr, Arc<AtomicUsize>) {
    let node = Node::new(cfg(host, realm));
    let addr = node.listen(listen.parse().unwrap()).await.unwrap();
    let count = common::answer_mars(&node);
    (node, addr, count)
}

fn mar(node: &Node, realm: &str) -> Mar<'static> {
    Mar {
        session_id: node.session_id().into(),
        vendor_specific_application_id: VendorSpecificApplicationId::cx(),
        origin_host: node.origin_host().to_owned().into(),
        origin_realm: node.origin_realm().to_owned().into(),
        destination_realm: realm.to_owned().into(),
        user_name: "alice@ims.example.org".into(),
        public_identity: "sip:alice@ims.example.org".into(),
        sip_number_auth_items: 1,
        server_name: "sip:scscf.ims.example.org".into(),
        ..Default::default()
    }
}

/// A static resolver that counts its lookups.
#[derive(Clone)]
struct Counting(StaticResolver, Arc<AtomicUsize>);

impl Resolver for Counting {
    fn naptr(&mut self, name: &str) -> Vec<Naptr> {
        self.1.fetch_add(1, Ordering::SeqCst);
        self.0.naptr(name)
    }
    fn srv(&mut self, name: &str) -> Vec<Srv> {
        self.1.fetch_add(1, Ordering::SeqCst);
        self.0.srv(name)
    }
    fn addresses(&mut self, name: &str) -> Vec<IpAddr> {
        self.1.fetch_add(1, Ordering::SeqCst);
        self.0.addresses(name)
    }
}

fn localhost() -> IpAddr {
    [127, 0, 0, 1].into()
}

#[tokio::test]
async fn realm_only_peer_found_through_naptr_srv_and_address() {
    let (_hss, addr, count) = hss("hss1.hss.example.net", "hss.example.net", "127.0.0.1:0").await;
    let mut dns = StaticResolver::default();
    // a record for another application, and the Cx one (RFC 6408 service field)
    dns.add_naptr(
        "hss.example.net",
        Naptr::new(
            5,
            10,
            "S",
            "aaa+ap16777236:diameter.tcp",
            "_diameter._tcp.pcrf.hss.example.net",
        ),
    )
    .add_naptr(
        "hss.example.net",
        Naptr::new(
            10,
            10,
            "S",
            "aaa+ap16777216:diameter.tcp",
            "_diameter._tcp.hss1.hss.example.net",
        ),
    )
    .add_srv(
        "_diameter._tcp.pcrf.hss.example.net",
        Srv::new(0, 10, 1, "pcrf.hss.example.net"),
    )
    .add_address("pcrf.hss.example.net", localhost())
    .add_srv(
        "_diameter._tcp.hss1.hss.example.net",
        Srv::new(0, 10, addr.port(), "hss1.hss.example.net"),
    )
    .add_address("hss1.hss.example.net", localhost());
    let lookups = Arc::new(AtomicUsize::new(0));

    let client = Node::new(cfg("scscf.ims.example.org", "ims.example.org"));
    // no resolver yet: no peer, no route
    let err = client
        .send(&mar(&client, "hss.example.net"))
        .await
        .unwrap_err();
    assert!(matches!(err, NodeError::NoRoute(_)), "{err:?}");

    client.set_resolver(Counting(dns, lookups.clone()));
    let maa = client.send(&mar(&client, "hss.example.net")).await.unwrap();
    assert_eq!(maa.view().outcome(), Some(Outcome::SUCCESS));
    assert_eq!(
        Maa::decode(&maa.view()).unwrap().origin_host,
        "hss1.hss.example.net"
    );
    assert_eq!(count.load(Ordering::SeqCst), 1);
    assert_eq!(
        client.discovered_peers("HSS.example.net"),
        ["hss1.hss.example.net"]
    );
    // the Rx-only NAPTR record was not followed: only the Cx host is a peer
    let peers: Vec<String> = client.peers().into_iter().map(|(h, _)| h).collect();
    assert_eq!(peers, ["hss1.hss.example.net"]);
    let status = client.peer_status("hss1.hss.example.net").unwrap();
    assert_eq!(
        status.remote.as_ref().map(|r| r.origin_realm.as_str()),
        Some("hss.example.net")
    );

    // the second request uses the open peer: no new lookup
    let n = lookups.load(Ordering::SeqCst);
    assert!(n >= 3, "NAPTR + SRV + A at least, got {n}");
    let maa = client.send(&mar(&client, "hss.example.net")).await.unwrap();
    assert_eq!(maa.view().outcome(), Some(Outcome::SUCCESS));
    assert_eq!(count.load(Ordering::SeqCst), 2);
    assert_eq!(lookups.load(Ordering::SeqCst), n);
}

#[tokio::test]
async fn srv_fallback_skips_a_target_without_address() {
    let (_hss, addr, count) = hss("hss2.srv.example.net", "srv.example.net", "127.0.0.1:0").await;
    let mut dns = StaticResolver::default();
    // no NAPTR: `_diameter._tcp.<realm>`; the priority-0 target has no A record
    dns.add_srv(
        "_diameter._tcp.srv.example.net",
        Srv::new(0, 10, 3868, "ghost.srv.example.net"),
    )
    .add_srv(
        "_diameter._tcp.srv.example.net",
        Srv::new(1, 10, addr.port(), "hss2.srv.example.net"),
    )
    .add_address("hss2.srv.example.net", localhost());
    let client = Node::new(cfg("scscf.ims.example.org", "ims.example.org"));
    client.set_resolver(dns);
    let maa = client.send(&mar(&client, "srv.example.net")).await.unwrap();
    assert_eq!(maa.view().outcome(), Some(Outcome::SUCCESS));
    assert_eq!(count.load(Ordering::SeqCst), 1);
    assert_eq!(
        client.discovered_peers("srv.example.net"),
        ["hss2.srv.example.net"]
    );
    assert!(client.peer_status("ghost.srv.example.net").is_none());
}

#[tokio::test]
async fn realm_address_fallback_on_port_3868() {
    // the realm's own A record, the IANA port; the HSS's identity is learnt from its CEA
    let (_hss, _addr, count) = hss("hss3.example.net", "addr.example.net", "127.0.0.86:3868").await;
    let mut dns = StaticResolver::default();
    dns.add_address("addr.example.net", [127, 0, 0, 86].into());
    let client = Node::new(cfg("scscf.ims.example.org", "ims.example.org"));
    client.set_resolver(dns);
    let maa = client
        .send(&mar(&client, "addr.example.net"))
        .await
        .unwrap();
    assert_eq!(maa.view().outcome(), Some(Outcome::SUCCESS));
    assert_eq!(count.load(Ordering::SeqCst), 1);
    let status = client.peer_status("addr.example.net").unwrap();
    assert_eq!(
        status.remote.as_ref().map(|r| r.origin_host.as_str()),
        Some("hss3.example.net")
    );
    // a realm DNS knows nothing about (and no other peer): no route
    let lonely = Node::new(cfg("pcscf.ims.example.org", "ims.example.org"));
    lonely.set_resolver(StaticResolver::default());
    let err = lonely
        .send(&mar(&lonely, "unknown.example.net"))
        .await
        .unwrap_err();
    assert!(matches!(err, NodeError::NoRoute(_)), "{err:?}");
    assert!(lonely.peers().is_empty());
}

/// A resolver whose records the test changes while the node uses it.
#[derive(Clone, Default)]
struct Shared(Arc<std::sync::Mutex<StaticResolver>>);

impl Resolver for Shared {
    fn naptr(&mut self, name: &str) -> Vec<Naptr> {
        self.0.lock().unwrap().naptr(name)
    }
    fn srv(&mut self, name: &str) -> Vec<Srv> {
        self.0.lock().unwrap().srv(name)
    }
    fn addresses(&mut self, name: &str) -> Vec<IpAddr> {
        self.0.lock().unwrap().addresses(name)
    }
    fn take_min_ttl(&mut self) -> Option<Duration> {
        self.0.lock().unwrap().take_min_ttl()
    }
}

/// Polls `f` for up to 5 s.
async fn eventually(what: &str, f: impl Fn() -> bool) {
    for _ in 0..500 {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("never: {what}");
}

#[tokio::test]
async fn discovery_is_refreshed_after_the_dns_ttl_and_unadvertised_peers_are_dropped() {
    let realm = "ttl.example.net";
    let (hss1, a1, c1) = hss("hss1.ttl.example.net", realm, "127.0.0.1:0").await;
    let (_hss2, a2, c2) = hss("hss2.ttl.example.net", realm, "127.0.0.1:0").await;
    let dns = Shared::default();
    dns.0
        .lock()
        .unwrap()
        .set_ttl(Some(Duration::from_millis(800)))
        .add_srv(
            "_diameter._tcp.ttl.example.net",
            Srv::new(0, 10, a1.port(), "hss1.ttl.example.net"),
        )
        .add_address("hss1.ttl.example.net", localhost())
        .add_address("hss2.ttl.example.net", localhost());
    let mut c = cfg("scscf.ims.example.org", "ims.example.org");
    c.discovery_refresh = Duration::from_secs(300); // the TTL is shorter: it wins
    let client = Node::new(c);
    client.set_resolver(dns.clone());
    let maa = client.send(&mar(&client, realm)).await.unwrap();
    assert_eq!(maa.view().outcome(), Some(Outcome::SUCCESS));
    assert_eq!(c1.load(Ordering::SeqCst), 1);
    assert_eq!(client.discovered_peers(realm), ["hss1.ttl.example.net"]);

    // the realm now advertises hss2 only
    {
        let mut d = dns.0.lock().unwrap();
        d.remove("_diameter._tcp.ttl.example.net");
        d.add_srv(
            "_diameter._tcp.ttl.example.net",
            Srv::new(0, 10, a2.port(), "hss2.ttl.example.net"),
        );
    }
    // before the TTL nothing changes
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(client.discovered_peers(realm), ["hss1.ttl.example.net"]);
    // after it, without any request: hss2 found and connected, hss1 let go with DPR
    eventually("hss2 discovered", || {
        client.discovered_peers(realm) == ["hss2.ttl.example.net"]
    })
    .await;
    assert!(client.peer_status("hss1.ttl.example.net").is_none());
    eventually("hss1 received DPR", || {
        hss1.peer_status("scscf.ims.example.org")
            .is_some_and(|s| s.stats.dpr_received == 1 && !s.state.is_open())
    })
    .await;
    // the forgotten peer's task ended: left are the refresh task and hss2's peer task (which
    // reads its connection itself)
    eventually("hss1's task ended", || client.running_tasks() == 2).await;
    client
        .wait_open("hss2.ttl.example.net", SECS)
        .await
        .unwrap();
    let maa = client.send(&mar(&client, realm)).await.unwrap();
    assert_eq!(maa.view().outcome(), Some(Outcome::SUCCESS));
    assert_eq!(
        (c1.load(Ordering::SeqCst), c2.load(Ordering::SeqCst)),
        (1, 1)
    );
}

#[tokio::test]
async fn refresh_interval_without_ttl_and_a_realm_dns_forgets() {
    let realm = "gone.example.net";
    let (_hss, a1, c1) = hss("hss.gone.example.net", realm, "127.0.0.1:0").await;
    let dns = Shared::default();
    dns.0
        .lock()
        .unwrap()
        .add_srv(
            "_diameter._tcp.gone.example.net",
            Srv::new(0, 10, a1.port(), "hss.gone.example.net"),
        )
        .add_address("hss.gone.example.net", localhost());
    let mut c = cfg("scscf.ims.example.org", "ims.example.org");
    c.discovery_refresh = Duration::from_millis(500); // no TTL from this resolver
    let client = Node::new(c);
    client.set_resolver(dns.clone());
    let maa = client.send(&mar(&client, realm)).await.unwrap();
    assert_eq!(maa.view().outcome(), Some(Outcome::SUCCESS));
    assert_eq!(c1.load(Ordering::SeqCst), 1);
    dns.0
        .lock()
        .unwrap()
        .remove("_diameter._tcp.gone.example.net");
    eventually("realm forgotten", || {
        client.discovered_peers(realm).is_empty()
    })
    .await;
    assert!(client.peer_status("hss.gone.example.net").is_none());
    let err = client.send(&mar(&client, realm)).await.unwrap_err();
    assert!(matches!(err, NodeError::NoRoute(_)), "{err:?}");
}

#[tokio::test]
async fn a_relay_discovers_the_next_hop_of_a_relayed_request() {
    let realm = "far.example.net";
    let (_hss, a1, c1) = hss("hss.far.example.net", realm, "127.0.0.1:0").await;
    let mut dns = StaticResolver::default();
    dns.add_naptr(
        realm,
        Naptr::new(10, 10, "S", "AAA+D2T", "_diameter._tcp.far.example.net"),
    )
    .add_srv(
        "_diameter._tcp.far.example.net",
        Srv::new(0, 10, a1.port(), "hss.far.example.net"),
    )
    .add_address("hss.far.example.net", localhost());
    // a relay agent with no route for far.example.net, only DNS
    let mut rc = cfg("dra.ims.example.org", "ims.example.org");
    rc.applications = vec![Application::RELAY];
    let dra = Node::new(rc);
    dra.set_resolver(dns);
    let dra_addr = dra.listen("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let client = Node::new(cfg("scscf.ims.example.org", "ims.example.org"));
    client.add_peer("dra.ims.example.org", dra_addr);
    client.wait_open("dra.ims.example.org", SECS).await.unwrap();
    let maa = client.send(&mar(&client, realm)).await.unwrap();
    assert_eq!(maa.view().outcome(), Some(Outcome::SUCCESS));
    assert_eq!(maa.view().origin_host(), Some("hss.far.example.net"));
    assert_eq!(c1.load(Ordering::SeqCst), 1);
    assert_eq!(dra.discovered_peers(realm), ["hss.far.example.net"]);
    // the client itself discovered nothing: it has no resolver
    assert!(client.discovered_peers(realm).is_empty());
    // a realm DNS does not know: the relay answers 3003 DIAMETER_REALM_NOT_SERVED
    let a = client
        .send(&mar(&client, "nowhere.example.com"))
        .await
        .unwrap();
    assert_eq!(a.view().outcome(), Some(Outcome::from_result_code(3003)));
}

#[tokio::test]
async fn a_redirect_to_sctp_only_hosts_is_a_typed_error() {
    // no SCTP here (see ims_net::diameter): aaa://...;transport=sctp cannot be followed
    let mut sc = cfg("slf.ims.example.org", "ims.example.org");
    sc.routes = vec![ims_diameter::routing::Route::new(
        "sctp.example.net",
        ims_diameter::routing::Action::Redirect,
        &["aaa://hss.sctp.example.net:3868;transport=sctp"],
    )];
    let slf = Node::new(sc);
    let addr = slf.listen("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let client = Node::new(cfg("scscf.ims.example.org", "ims.example.org"));
    client.add_peer("slf.ims.example.org", addr);
    client.wait_open("slf.ims.example.org", SECS).await.unwrap();
    let err = client
        .send(&mar(&client, "sctp.example.net"))
        .await
        .unwrap_err();
    match err {
        NodeError::UnsupportedTransport(uris) => {
            assert_eq!(uris, ["aaa://hss.sctp.example.net:3868;transport=sctp"])
        }
        e => panic!("{e:?}"),
    }
    assert!(client.peer_status("hss.sctp.example.net").is_none());
}

/// [`Node::shutdown`] ends discovery: the refresh task that asked DNS every TTL stops, no request
/// triggers a lookup any more; the listener closes, the discovered peer gets DPR (REBOOTING)
/// and no task of the node is left (its own count and the runtime's).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_stops_discovery_and_every_task() {
    let metrics = tokio::runtime::Handle::current().metrics();
    let before = metrics.num_alive_tasks();
    let realm = "stop.example.net";
    let (hss, addr, count) = hss("hss.stop.example.net", realm, "127.0.0.1:0").await;
    let mut dns = StaticResolver::default();
    dns.add_srv(
        "_diameter._tcp.stop.example.net",
        Srv::new(0, 10, addr.port(), "hss.stop.example.net"),
    )
    .add_address("hss.stop.example.net", localhost());
    let lookups = Arc::new(AtomicUsize::new(0));
    let mut c = cfg("scscf.ims.example.org", "ims.example.org");
    c.discovery_refresh = Duration::from_millis(200); // (`Counting` reports no TTL)
    let client = Node::new(c);
    client.set_resolver(Counting(dns, lookups.clone()));
    let listening = client.listen("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let maa = client.send(&mar(&client, realm)).await.unwrap();
    assert_eq!(maa.view().outcome(), Some(Outcome::SUCCESS));
    assert_eq!(count.load(Ordering::SeqCst), 1);
    // the refresh task asks DNS again every 200 ms
    let first = lookups.load(Ordering::SeqCst);
    assert!(first > 0);
    eventually("discovery refreshed", || {
        lookups.load(Ordering::SeqCst) > first
    })
    .await;
    assert!(client.running_tasks() > 0);
    assert!(!client.is_stopped());

    client.shutdown();
    assert!(client.is_stopped());
    client.wait_stopped(SECS).await.unwrap();
    assert_eq!(client.running_tasks(), 0);
    let peer = client.peer_status("hss.stop.example.net").unwrap();
    assert_eq!(peer.state, ims_diameter::peer::PeerState::Closed);
    eventually("the HSS got DPR", || {
        hss.peer_status("scscf.ims.example.org")
            .is_some_and(|s| s.stats.dpr_received == 1 && !s.state.is_open())
    })
    .await;

    // no lookup any more: neither from the refresh (five intervals pass) nor from a request for a
    // realm it never saw
    let stopped_at = lookups.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let err = client
        .send(&mar(&client, "other.example.net"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, NodeError::NoRoute(_) | NodeError::Closed),
        "{err:?}"
    );
    let err = client.send(&mar(&client, realm)).await.unwrap_err();
    assert!(
        matches!(
            err,
            NodeError::NoRoute(_) | NodeError::Closed | NodeError::PeerNotOpen(_)
        ),
        "{err:?}"
    );
    assert_eq!(lookups.load(Ordering::SeqCst), stopped_at);
    assert_eq!(count.load(Ordering::SeqCst), 1);
    // the listener is closed
    assert!(tokio::net::TcpStream::connect(listening).await.is_err());
    assert_eq!(client.running_tasks(), 0);

    // the HSS stops too: nothing of either node is left in the runtime
    hss.shutdown();
    hss.wait_stopped(SECS).await.unwrap();
    eventually("no task left", || metrics.num_alive_tasks() == before).await;
}
