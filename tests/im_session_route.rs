//! Where the session anchor (`ims::nf::im_session`) sends the B leg of an INVITE that reaches it
//! with no Route left (not through an S-CSCF's `odi` entry): to the S-CSCF serving the caller
//! as the caller's third-party REGISTER named it (TS 24.229 §5.7.3, §5.4.1.7), with the `orig`
//! parameter that asks that S-CSCF for originating processing (§5.4.3.1); once the caller is
//! de-registered, to the configured S-CSCF again.
//!
//! `b_legs_go_to_the_scscf_that_registered_the_caller`: an IM server sharing its endpoint with
//! the anchor (as `examples/im_server` runs them), two scripted S-CSCFs that record the INVITEs
//! they get and answer them 486, a client that sends the third-party REGISTER and the INVITEs.
//!
//! Ports 7165-7170 (helper range).

mod im_common;

use im_common::standalone::{bind, invite_answering_scscf, msrp_offer, next, register_with};
use im_common::{standalone, LO};
use ims::net::sip::Endpoint;
use ims::nf::im_server::{ImServer, ImServerConfig, Numbering};
use ims::nf::im_session::{self, ImSessionConfig};
use ims::sip::OwnedMessage;
use std::net::SocketAddr;
use tokio::sync::mpsc;

const ALICE: &str = "sip:alice@ims.example.org";
const BOB: &str = "sip:bob@ims.example.org";

/// A scripted S-CSCF: INVITEs are answered 486 and handed to the returned channel.
async fn scscf(port: u16) -> mpsc::UnboundedReceiver<OwnedMessage> {
    invite_answering_scscf(port, 486).await
}

/// A third-party REGISTER for Alice from the S-CSCF `scscf` (its URI in From and Contact).
async fn register(ep: &Endpoint, server: SocketAddr, scscf: &str, expires: u32, n: u32) -> u16 {
    register_with(ep, server, ALICE, scscf, expires, n, "route").await
}

/// Alice's INVITE to Bob with an MSRP offer, straight to the anchor (no Route): its final
/// status.
async fn invite(ep: &Endpoint, server: SocketAddr) -> u16 {
    let sdp = msrp_offer("alice", 7170, "route1");
    standalone::invite(ep, server, ALICE, BOB, &sdp).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn b_legs_go_to_the_scscf_that_registered_the_caller() {
    let mut configured = scscf(7165).await;
    let mut serving = scscf(7166).await;
    let configured_uri = "sip:term@127.0.0.1:7165";
    let mut cfg = ImServerConfig::new(SocketAddr::new(LO, 7167), "ims.example.org", configured_uri);
    let mut n = Numbering::new();
    n.add("+15550001", [ALICE]);
    n.add("+15550002", [BOB]);
    cfg.numbering = n;
    let (tx, rx) = mpsc::unbounded_channel();
    let im = ImServer::start_with(cfg, Some(tx))
        .await
        .expect("IM server");
    let anchor_cfg = ImSessionConfig {
        msrp_addr: SocketAddr::new(LO, 7168),
        route: vec![format!("<{configured_uri};lr>")],
        serving: Some(im.serving_scscf()),
        ..ImSessionConfig::default()
    }
    .next_hop_uri(configured_uri);
    let anchor = im_session::start_on(anchor_cfg, im.endpoint().clone(), rx)
        .await
        .expect("anchor");
    let ue = bind(7169, "client").await;
    let server = im.local_addr();
    let route = |m: &OwnedMessage| m.as_message().header_str("Route").map(str::to_owned);

    // Alice's S-CSCF registered her: her B leg goes there, asking for originating processing
    assert_eq!(
        register(&ue, server, "sip:127.0.0.1:7166", 600, 1).await,
        200
    );
    assert_eq!(invite(&ue, server).await, 486, "Bob's answer relayed");
    let b = next(&mut serving, "the B leg at Alice's S-CSCF").await;
    assert_eq!(b.as_message().request_uri_str(), Some(BOB));
    assert_eq!(route(&b).as_deref(), Some("<sip:127.0.0.1:7166;lr;orig>"));
    assert_eq!(
        b.as_message().header_str("P-Asserted-Identity"),
        Some(format!("<{ALICE}>").as_str()),
        "the served user"
    );
    assert!(configured.try_recv().is_err());

    // de-registered: the configured S-CSCF again
    assert_eq!(register(&ue, server, "sip:127.0.0.1:7166", 0, 2).await, 200);
    assert_eq!(invite(&ue, server).await, 486);
    let b = next(&mut configured, "the B leg at the configured S-CSCF").await;
    assert_eq!(route(&b).as_deref(), Some("<sip:term@127.0.0.1:7165;lr>"));
    assert!(serving.try_recv().is_err());
    anchor.shutdown();
    im.shutdown();
}
