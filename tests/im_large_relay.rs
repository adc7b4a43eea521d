//! The IM server's own large-mode deliveries (TS 24.247 §5.2: it opens the session toward the
//! recipient) through the session anchor's MSRP relay (RFC 4976,
//! `ImServerConfig::msrp_relay`) and without one to a recipient whose MSRP URI names a host:
//! a stand-alone IM server whose "S-CSCF" is the recipient's own SIP endpoint (an `msrp_chat`
//! user agent listening), a relay (`MsrpRelay`) and a sender submitting a page-mode MESSAGE
//! over the page-mode limit.

#[allow(dead_code)]
#[path = "../examples/msrp_chat/client.rs"]
mod client;
mod im_common;
#[path = "im_common/msrp.rs"]
mod im_msrp;

use client::{ListenOpts, Opts, Ua};
use im_common::standalone::Client;
use im_msrp::{bob_events, of_kind};
use ims::msrp::relay::RelayConfig;
use ims::msrp::UriBuf;
use ims::net::msrp::MsrpRelay;
use ims::nf::im_server::{ImServer, ImServerConfig};
use ims::nf::im_session::AnchorRelay;
use std::net::SocketAddr;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(30);

fn lo0() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

/// Alice sends Bob a 3,000-octet text/plain IM written with `alphabet` over and over (over the
/// 1,300-octet page-mode limit): her MESSAGE gets 200, the IM server counts one large-mode
/// delivery; answers the body and what Bob's client reported.
async fn send_large(
    im: &ImServer,
    bob_uri: &str,
    alphabet: &[u8],
    bob_task: im_msrp::BobTask,
) -> (Vec<u8>, Vec<serde_json::Value>) {
    let mut alice = Client::new(0, im.local_addr(), "large").await;
    let body: Vec<u8> = (0..3000usize)
        .map(|i| alphabet[i % alphabet.len()])
        .collect();
    let status = tokio::time::timeout(
        WAIT,
        alice.message(
            "sip:alice@ims.example.org",
            bob_uri,
            "text/plain",
            body.clone(),
        ),
    )
    .await
    .expect("Alice's MESSAGE answered");
    assert_eq!(status, 200, "delivered in large mode");
    assert_eq!(im.stats().large_sent, 1);
    (body, bob_events(bob_task, WAIT).await)
}

/// A 3,000-octet text/plain IM (over the 1,300-octet page-mode limit) from Alice to Bob: the
/// IM server relays it in large mode, and with `msrp_relay` set it connects to the relay and
/// AUTHs for the session (one binding), offers Bob the relay's Use-Path before its own URI in
/// `a=path` with the relay in `c=`/`m=`, and sends the SEND over that connection: the relay
/// opens the connection to Bob, who gets the body intact and reports success; Alice's
/// MESSAGE gets 200 and `large_sent` counts it. (Before: the server connected to Bob itself,
/// a one-URI path, whatever relay the anchor used.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
// (`..AnchorRelay::default()` fills the field the `tls` feature adds)
#[allow(clippy::needless_update)]
async fn the_im_servers_large_mode_delivery_goes_through_the_anchors_relay() {
    let l = tokio::net::TcpListener::bind(lo0()).await.unwrap();
    let relay_at = l.local_addr().unwrap();
    let relay_uri = format!("msrp://{relay_at};tcp");
    let relay = MsrpRelay::start(
        l,
        RelayConfig::new(UriBuf::parse(&relay_uri).unwrap(), "relay.example.org"),
        &[("im", "im-pw")],
        0x4976,
    )
    .expect("relay");
    let bob = Ua::bind(Opts {
        user: "bob".into(),
        timeout: WAIT,
        ..Opts::default()
    })
    .await
    .expect("bob binds");
    let bob_uri = bob.sip_uri();
    let bob_sip = bob_uri.rsplit('@').next().unwrap().to_owned();
    let (_, bob_task) = im_msrp::listen(
        bob,
        ListenOpts {
            sessions: Some(1),
            ..ListenOpts::default()
        },
    );
    // the IM server's "S-CSCF" is Bob's endpoint: what it originates reaches Bob directly
    let mut cfg = ImServerConfig::new(lo0(), "ims.example.org", &format!("sip:{bob_sip}"));
    cfg.msrp_relay = Some(AnchorRelay {
        uri: relay_uri.clone(),
        user: "im".into(),
        password: "im-pw".into(),
        ..AnchorRelay::default()
    });
    let im = ImServer::start(cfg).await.expect("IM server");
    let (body, events) = send_large(&im, &bob_uri, b"abcdefghijklmnopqrstuvwxyz", bob_task).await;
    let session = of_kind(&events, "session");
    let path: Vec<String> = session[0]["peer_path"]
        .as_array()
        .expect("Bob's peer path")
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        path.len(),
        2,
        "the relay's Use-Path, then the IM server: {path:?}"
    );
    let hop = ims::msrp::Uri::parse(&path[0]).unwrap();
    assert_eq!(
        format!("{}:{}", hop.host_str(), hop.port_or_default()),
        relay_at.to_string(),
        "Bob's first hop is the relay"
    );
    assert!(hop.session_id().is_some(), "a Use-Path URI: {path:?}");
    let got = of_kind(&events, "message");
    assert_eq!(got.len(), 1, "{events:?}");
    assert_eq!(got[0]["size"], 3000);
    assert_eq!(got[0]["sha256"], client::sha256_hex(&body));
    im.shutdown();
    relay.shutdown();
}

/// Without a relay the IM server connects to the recipient's MSRP path itself (RFC 4975 §5.4,
/// it offers `a=setup:active`). Bob listens on 127.0.0.1 but his answer's `a=path` names the
/// host `localhost` (RFC 4975 §6.2: the URI's host is resolved, A/AAAA, no SRV): the server
/// resolves it, connects, and Bob gets the 3,000 octets intact; Alice's MESSAGE gets 200.
/// (Before: the server took only an IP literal from the path and answered 488.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_im_servers_large_mode_delivery_reaches_an_msrp_uri_naming_a_host() {
    let bob = Ua::bind(Opts {
        user: "bob".into(),
        msrp_host: Some("localhost".into()),
        timeout: WAIT,
        ..Opts::default()
    })
    .await
    .expect("bob binds");
    let bob_uri = bob.sip_uri();
    let bob_sip = bob_uri.rsplit('@').next().unwrap().to_owned();
    let (_, bob_task) = im_msrp::listen(
        bob,
        ListenOpts {
            sessions: Some(1),
            ..ListenOpts::default()
        },
    );
    let cfg = ImServerConfig::new(lo0(), "ims.example.org", &format!("sip:{bob_sip}"));
    let im = ImServer::start(cfg).await.expect("IM server");
    let (body, events) = send_large(&im, &bob_uri, b"0123456789", bob_task).await;
    let session = of_kind(&events, "session");
    assert_eq!(session.len(), 1, "{events:?}");
    let mine = ims::msrp::Uri::parse(session[0]["local_uri"].as_str().expect("Bob's URI"))
        .expect("Bob's URI parses")
        .host_str()
        .to_owned();
    assert_eq!(mine, "localhost", "Bob's a=path names a host: {events:?}");
    let path = session[0]["peer_path"].as_array().expect("Bob's peer path");
    assert_eq!(path.len(), 1, "the IM server's own URI, no relay: {path:?}");
    let got = of_kind(&events, "message");
    assert_eq!(got.len(), 1, "{events:?}");
    assert_eq!(got[0]["size"], 3000);
    assert_eq!(got[0]["sha256"], client::sha256_hex(&body));
    im.shutdown();
}
