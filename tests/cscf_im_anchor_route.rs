//! The all-in-one core's IM session anchor sends the B leg of an INVITE that reaches it with no
//! Route left to the S-CSCF serving the caller, as the caller's third-party REGISTER named it
//! (TS 24.229 §5.7.3, §5.4.1.7: `ImSessionConfig::serving` from `ImServer::serving_scscf`),
//! with the `orig` parameter asking for originating processing — here another S-CSCF than the
//! core's own (one the I-CSCF may select, `CoreOptions::with_icscf_selection`). Without that the
//! B leg went to the core's own S-CSCF whoever served the caller.
//!
//! Ports 6230-6259.

mod common;
mod ims_core;

use ims::net::sip::{Endpoint, EndpointConfig};
use ims::nf::runtime::CoreOptions;
use ims::sip::{Method, OwnedMessage, RequestBuilder};
use ims::txn::ua::{Answer, InviteParams, UaEvent};
use ims::txn::Remote;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::sync::mpsc;

const WAIT: Duration = Duration::from_secs(10);
const CALLER: &str = "sip:001010000000001@ims.example.org";
const CALLEE: &str = "sip:001010000000002@ims.example.org";
const OTHER: &str = "sip:127.0.0.1:6252";

/// The other S-CSCF: INVITEs are answered 486 and handed to the returned channel.
async fn other_scscf() -> mpsc::UnboundedReceiver<OwnedMessage> {
    let (ep, mut incoming) = Endpoint::bind(EndpointConfig {
        addr: SocketAddr::new(ims_core::LO, 6252),
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

/// The final status of a request sent by `ep` to `to`.
async fn final_status(ep: &Endpoint, m: OwnedMessage, to: SocketAddr) -> u16 {
    let t = ep.request(m, Remote::udp(to)).await.expect("sent");
    let r = tokio::time::timeout(WAIT, t.final_response())
        .await
        .expect("an answer in time")
        .expect("an answer");
    r.as_message().status().unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn b_legs_go_to_the_scscf_that_registered_the_caller_at_the_im_server() {
    let mut other = other_scscf().await;
    let core = ims_core::start_with(
        ims_core::all_in_one(6230, [6246, 6247], None),
        CoreOptions::default().with_icscf_selection(vec![], vec![(OTHER.into(), vec![])]),
    )
    .await;
    let im = SocketAddr::new(ims_core::LO, 6250);
    let (ue, _events) = Endpoint::bind(EndpointConfig {
        addr: SocketAddr::new(ims_core::LO, 6253),
        ..EndpointConfig::default()
    })
    .await
    .expect("client binds");

    // the other S-CSCF registered the caller at the IM server (third-party REGISTER)
    let reg = RequestBuilder::new(Method::Register, &format!("sip:{im}"))
        .header("Max-Forwards", 70)
        .header("From", format!("<{OTHER}>;tag=tp1"))
        .header("To", format!("<{CALLER}>"))
        .header("Call-ID", "anchor-route-reg-1")
        .header("CSeq", "1 REGISTER")
        .header("Contact", format!("<{OTHER}>"))
        .header("Expires", 600)
        .build()
        .expect("REGISTER");
    assert_eq!(final_status(&ue, reg, im).await, 200);

    // the caller's INVITE with an MSRP offer, straight to the anchor (no Route)
    let sdp = "v=0\r\no=ue1 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
               m=message 6254 TCP/MSRP *\r\na=accept-types:text/plain\r\n\
               a=path:msrp://127.0.0.1:6254/anchor1;tcp\r\n";
    let mut t = ue
        .invite(InviteParams {
            request_uri: CALLEE.into(),
            from: format!("<{CALLER}>"),
            to: format!("<{CALLEE}>"),
            remote: Remote::udp(im),
            headers: vec![("P-Asserted-Identity".into(), format!("<{CALLER}>"))],
            body: Some(("application/sdp".into(), sdp.as_bytes().to_vec())),
        })
        .await
        .expect("INVITE sent");
    let status = loop {
        let r = tokio::time::timeout(WAIT, t.next())
            .await
            .expect("an answer in time")
            .expect("a final answer")
            .expect("a response");
        let code = r.as_message().status().unwrap_or(0);
        if code >= 200 {
            break code;
        }
    };
    assert_eq!(status, 486, "the other S-CSCF's answer relayed");
    let b = tokio::time::timeout(WAIT, other.recv())
        .await
        .expect("the B leg at the caller's S-CSCF")
        .expect("open");
    let m = b.as_message();
    assert_eq!(m.request_uri_str(), Some(CALLEE));
    assert_eq!(m.header_str("Route"), Some("<sip:127.0.0.1:6252;lr;orig>"));
    assert_eq!(
        m.header_str("P-Asserted-Identity"),
        Some(format!("<{CALLER}>").as_str())
    );
    core.shutdown();
}
