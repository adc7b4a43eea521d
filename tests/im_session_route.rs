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

use ims::net::sip::{Endpoint, EndpointConfig};
use ims::nf::im_server::{ImServer, ImServerConfig, Numbering};
use ims::nf::im_session::{self, ImSessionConfig};
use ims::sip::{Method, OwnedMessage, RequestBuilder};
use ims::txn::ua::{Answer, InviteParams, UaEvent};
use ims::txn::Remote;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;
use tokio::sync::mpsc;

const LO: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const WAIT: Duration = Duration::from_secs(10);
const ALICE: &str = "sip:alice@ims.example.org";
const BOB: &str = "sip:bob@ims.example.org";

/// A scripted S-CSCF: INVITEs are answered 486 and handed to the returned channel.
async fn scscf(port: u16) -> mpsc::UnboundedReceiver<OwnedMessage> {
    let (ep, mut incoming) = Endpoint::bind(EndpointConfig {
        addr: SocketAddr::new(LO, port),
        ..EndpointConfig::default()
    })
    .await
    .expect("S-CSCF binds");
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(ev) = incoming.recv().await {
            match ev {
                UaEvent::IncomingInvite { txn, msg, .. } => {
                    let _ = ep.respond(txn, Answer::new(486)).await;
                    let _ = tx.send(msg);
                }
                UaEvent::IncomingRequest { txn, .. } => {
                    let _ = ep.respond(txn, Answer::new(200)).await;
                }
                _ => {}
            }
        }
    });
    rx
}

/// A third-party REGISTER for Alice from the S-CSCF `scscf` (its URI in From and Contact).
async fn register(ep: &Endpoint, server: SocketAddr, scscf: &str, expires: u32, n: u32) -> u16 {
    let m = RequestBuilder::new(Method::Register, &format!("sip:{server}"))
        .header("Max-Forwards", 70)
        .header("From", format!("<{scscf}>;tag=tp{n}"))
        .header("To", format!("<{ALICE}>"))
        .header("Call-ID", format!("route-reg-{n}"))
        .header("CSeq", format!("{n} REGISTER"))
        .header("Contact", format!("<{scscf}>"))
        .header("Expires", expires)
        .build()
        .expect("REGISTER");
    let t = ep.request(m, Remote::udp(server)).await.expect("sent");
    let r = tokio::time::timeout(WAIT, t.final_response())
        .await
        .expect("answer in time")
        .expect("answer");
    r.as_message().status().unwrap_or(0)
}

/// Alice's INVITE to Bob with an MSRP offer, straight to the anchor (no Route): its final
/// status.
async fn invite(ep: &Endpoint, server: SocketAddr) -> u16 {
    let sdp = "v=0\r\no=alice 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
               m=message 7170 TCP/MSRP *\r\na=accept-types:text/plain\r\n\
               a=path:msrp://127.0.0.1:7170/route1;tcp\r\n";
    let mut t = ep
        .invite(InviteParams {
            request_uri: BOB.into(),
            from: format!("<{ALICE}>"),
            to: format!("<{BOB}>"),
            remote: Remote::udp(server),
            headers: vec![("P-Asserted-Identity".into(), format!("<{ALICE}>"))],
            body: Some(("application/sdp".into(), sdp.as_bytes().to_vec())),
        })
        .await
        .expect("INVITE sent");
    loop {
        let r = tokio::time::timeout(WAIT, t.next())
            .await
            .expect("an answer in time")
            .expect("a final answer")
            .expect("a response");
        let code = r.as_message().status().unwrap_or(0);
        if code >= 200 {
            return code;
        }
    }
}

async fn b_leg(rx: &mut mpsc::UnboundedReceiver<OwnedMessage>, what: &str) -> OwnedMessage {
    tokio::time::timeout(WAIT, rx.recv())
        .await
        .unwrap_or_else(|_| panic!("no B leg at {what}"))
        .expect("open")
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
    let (ue, _events) = Endpoint::bind(EndpointConfig {
        addr: SocketAddr::new(LO, 7169),
        ..EndpointConfig::default()
    })
    .await
    .expect("client binds");
    let server = im.local_addr();
    let route = |m: &OwnedMessage| m.as_message().header_str("Route").map(str::to_owned);

    // Alice's S-CSCF registered her: her B leg goes there, asking for originating processing
    assert_eq!(
        register(&ue, server, "sip:127.0.0.1:7166", 600, 1).await,
        200
    );
    assert_eq!(invite(&ue, server).await, 486, "Bob's answer relayed");
    let b = b_leg(&mut serving, "Alice's S-CSCF").await;
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
    let b = b_leg(&mut configured, "the configured S-CSCF").await;
    assert_eq!(route(&b).as_deref(), Some("<sip:term@127.0.0.1:7165;lr>"));
    assert!(serving.try_recv().is_err());
    anchor.shutdown();
    im.shutdown();
}
