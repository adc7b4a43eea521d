//! Dynamic peer discovery in the node (RFC 6733 §5.2, RFC 6408): a client node configured with
//! no peer, only a resolver, sends a Cx MAR to a realm and reaches the HSS node that DNS (a static
//! resolver) names — through NAPTR → SRV → A, through the `_diameter._tcp` SRV fallback, and
//! through the realm's own A record on port 3868.

use ims_diameter::base::VendorSpecificApplicationId;
use ims_diameter::cx::{Maa, Mar};
use ims_diameter::dict::app;
use ims_diameter::discovery::{Naptr, Resolver, Srv, StaticResolver};
use ims_diameter::peer::Application;
use ims_diameter::{Command, Outcome};
use ims_net::diameter::{Node, NodeConfig, NodeError};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

const SECS: Duration = Duration::from_secs(5);

fn cfg(host: &str, realm: &str) -> NodeConfig {
    let mut c = NodeConfig::new(host, realm);
    c.applications = vec![Application::tgpp_auth(app::CX)];
    c.watchdog_jitter = Duration::ZERO;
    c.request_timeout = SECS;
    c
}

/// An HSS node answering MAR with success (and counting them).
async fn hss(host: &str, realm: &str, listen: &str) -> (Node, SocketAddr, Arc<AtomicUsize>) {
    let node = Node::new(cfg(host, realm));
    let addr = node.listen(listen.parse().unwrap()).await.unwrap();
    let count = Arc::new(AtomicUsize::new(0));
    let (n, c) = (node.clone(), count.clone());
    node.handle(app::CX, Mar::CODE, move |req| {
        let (n, c) = (n.clone(), c.clone());
        async move {
            c.fetch_add(1, Ordering::SeqCst);
            let mar = Mar::decode(&req.message.view()).expect("valid MAR");
            let mut maa = Maa {
                session_id: mar.session_id,
                vendor_specific_application_id: mar.vendor_specific_application_id,
                auth_session_state: mar.auth_session_state,
                origin_host: n.origin_host().to_owned().into(),
                origin_realm: n.origin_realm().to_owned().into(),
                user_name: Some(mar.user_name),
                ..Default::default()
            };
            maa.set_outcome(Outcome::SUCCESS);
            maa.encode_answer(req.message.header())
        }
    });
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
