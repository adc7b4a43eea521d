//! Two of our nodes that connect to each other at the same moment (each configured with the
//! other as a peer): the RFC 6733 §5.6.4 election keeps exactly one connection, the one opened
//! by the node whose Origin-Host sorts lower with ASCII case ignored ("cscf…" < "HSS…", while as
//! raw octets 'H' < 'c'), and requests flow both ways on it. Repeated, since which CER arrives
//! first varies from run to run.
//!
//! Ports: 127.0.0.1, 10300–10399 (helper h5b's range).

use ims_diameter::cx::{Maa, Mar};
use ims_diameter::dict::app;
use ims_diameter::peer::PeerState;
use ims_diameter::{Command, Outcome};
use ims_net::diameter::Node;
use std::net::SocketAddr;
use std::time::Duration;

mod common;

const REALM: &str = "ims.example.org";
const SECS: Duration = Duration::from_secs(5);
/// Sorts lower than "HSS…" with case ignored, higher as raw octets ('c' 0x63 > 'H' 0x48).
const CSCF: &str = "cscf.ims.example.org";
const HSS: &str = "HSS.ims.example.org";

async fn node(host: &str) -> (Node, SocketAddr) {
    let n = Node::new(common::cx_cfg(host, REALM, SECS));
    let a = common::listen_in(&n, 10300).await;
    let me = n.clone();
    n.handle(app::CX, Mar::CODE, move |req| {
        let me = me.clone();
        async move {
            let mar = Mar::decode(&req.message.view()).unwrap();
            let mut maa = Maa {
                session_id: mar.session_id,
                vendor_specific_application_id: mar.vendor_specific_application_id,
                origin_host: me.origin_host().to_owned().into(),
                origin_realm: REALM.into(),
                ..Default::default()
            };
            maa.set_outcome(Outcome::SUCCESS);
            maa.encode_answer(req.message.header())
        }
    });
    (n, a)
}

fn mar(from: &Node) -> Vec<u8> {
    common::mar(
        &from.session_id(),
        from.origin_host(),
        REALM,
        REALM,
        "alice",
    )
    .encode(0, from.next_end_to_end())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simultaneous_connects_keep_one_connection() {
    for round in 0..5 {
        let (cscf, cscf_addr) = node(CSCF).await;
        let (hss, hss_addr) = node(HSS).await;
        // both connect at once
        cscf.add_peer(HSS, hss_addr);
        hss.add_peer(CSCF, cscf_addr);
        cscf.wait_open(HSS, SECS).await.unwrap();
        hss.wait_open(CSCF, SECS).await.unwrap();
        // one connection, the HSS's election win: it kept the connection the CSCF opened
        // (whatever the order of the CERs: when there was no election, the CSCF connected and
        // opened first, which also leaves the CSCF on the transport it opened)
        let states = (
            cscf.peer_status(HSS).unwrap().state,
            hss.peer_status(CSCF).unwrap().state,
        );
        assert_eq!(
            states,
            (PeerState::IOpen, PeerState::ROpen),
            "round {round}"
        );
        // and it stays so (no second connection taken over later), carrying both directions
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(
            (
                cscf.peer_status(HSS).unwrap().state,
                hss.peer_status(CSCF).unwrap().state
            ),
            states,
            "round {round}"
        );
        for (from, _) in [(&cscf, HSS), (&hss, CSCF)] {
            let a = from.request(mar(from)).await.unwrap();
            assert_eq!(a.view().outcome(), Some(Outcome::SUCCESS), "round {round}");
        }
        eprintln!("round {round}: cscf {:?}, hss {:?}", states.0, states.1);
        cscf.shutdown();
        hss.shutdown();
        cscf.wait_stopped(SECS).await.unwrap();
        hss.wait_stopped(SECS).await.unwrap();
    }
}
