//! The all-in-one core's embedded PCRF and an AF that restarts (RFC 6733 §8.16 Origin-State-Id,
//! wired by the runtime: `Node::on_peer_restart` → `Pcrf::drop_sessions_of`): two outside
//! P-CSCFs (our Diameter nodes with the ims-nf Rx client, `DiameterRx`) open Rx sessions at the
//! core's PCRF port; one stops and comes back with its state lost (`Node::restart`: a higher
//! Origin-State-Id in its CER). The core's PCRF drops exactly that P-CSCF's sessions; the
//! other's and the core's own P-CSCF's connection are untouched, and the restarted P-CSCF opens
//! sessions again as usual.

mod common;
mod ims_core;

use ims::diameter::dict::app;
use ims::diameter::peer::Application;
use ims::net::diameter::{Node, NodeConfig};
use ims::nf::pcrf::{DiameterRx, RxClient};
use ims::nf::rx_media::{media_components, OfferFrom};
use ims::sdp::Session;
use std::net::SocketAddr;
use std::time::Duration;

const REALM: &str = "ims.example.org";
const PCRF_HOST: &str = "pcrf.ims.example.org";
const SECS: Duration = Duration::from_secs(10);

/// An outside P-CSCF's Diameter node with Origin-State-Id `state_id`, connected to the PCRF at
/// `pcrf`.
fn pcscf_node(host: &str, state_id: u32, pcrf: SocketAddr) -> Node {
    let mut c = NodeConfig::new(host, REALM);
    c.applications = vec![Application::tgpp_auth(app::RX)];
    c.vendor_id = 10415;
    c.watchdog_jitter = Duration::ZERO;
    c.reconnect_interval = Some(Duration::from_millis(200));
    c.origin_state_id = Some(state_id);
    let n = Node::new(c);
    n.add_peer(PCRF_HOST, pcrf);
    n
}

/// Opens an Rx session through `rx` for one audio stream on `port` (the Media-Component-
/// Descriptions the core's own P-CSCF would build from that offer/answer); its Session-Id.
async fn open_session(rx: &DiameterRx<Node>, port: u16) -> String {
    let sdp = |ip: &str| {
        format!(
            "v=0\r\no=- 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\n\
             m=audio {port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
        )
    };
    let (offer, answer) = (sdp("192.0.2.10"), sdp("192.0.2.20"));
    let media = media_components(
        &Session::parse_str(&offer).unwrap(),
        &Session::parse_str(&answer).unwrap(),
        OfferFrom::Ue,
    );
    let id = rx.new_session_id();
    rx.aar(&id, false, media, Some("icid-restart"))
        .await
        .unwrap_or_else(|e| panic!("AAR refused: {e}"));
    id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cores_pcrf_drops_the_rx_sessions_of_a_restarted_pcscf() {
    let core = ims_core::start_core(6300, [6364, 6365], None).await;
    let pcrf_addr = SocketAddr::new(ims_core::LO, 6365);
    let sessions = || {
        core.pcrf()
            .expect("embedded PCRF")
            .lock()
            .unwrap()
            .session_ids()
    };

    let pcscf1 = pcscf_node("pcscf1.ims.example.org", 100, pcrf_addr);
    let pcscf2 = pcscf_node("pcscf2.ims.example.org", 200, pcrf_addr);
    for n in [&pcscf1, &pcscf2] {
        n.wait_open(PCRF_HOST, SECS)
            .await
            .expect("the core's PCRF takes the P-CSCF");
    }
    let rx1 = DiameterRx::new(pcscf1.clone(), "pcscf1.ims.example.org", REALM, REALM);
    let rx2 = DiameterRx::new(pcscf2.clone(), "pcscf2.ims.example.org", REALM, REALM);
    let a = open_session(&rx1, 40000).await;
    let b = open_session(&rx1, 40002).await;
    let c = open_session(&rx2, 40004).await;
    let mut all = vec![a.clone(), b.clone(), c.clone()];
    all.sort();
    assert_eq!(sessions(), all);

    // pcscf1 stops and starts again with its state lost: Origin-State-Id 101 in its new CER
    pcscf1.shutdown();
    pcscf1.wait_stopped(SECS).await.expect("pcscf1 stops");
    pcscf1.restart(SECS).await.expect("pcscf1 restarts");
    pcscf1
        .wait_open(PCRF_HOST, SECS)
        .await
        .expect("pcscf1 reconnects");
    ims_core::wait_for("the PCRF to drop pcscf1's sessions", || {
        sessions() == vec![c.clone()]
    })
    .await;

    // it opens a session again as usual; pcscf2's is still there
    let d = open_session(&rx1, 40006).await;
    let mut left = vec![c, d];
    left.sort();
    assert_eq!(sessions(), left);
    for n in [&pcscf1, &pcscf2] {
        n.shutdown();
        n.wait_stopped(SECS).await.expect("stops");
    }
    core.shutdown();
}
