//! The all-in-one core's embedded HSS answers with the S-CSCF capabilities given in
//! `CoreOptions::scscf_capabilities` (the example's `[hss.scscf_capabilities]`): an outside
//! I-CSCF (our Diameter node) sends UARs over TCP to the HSS port. TS 29.228 §6.1.1.1,
//! TS 29.229 §6.3.4: a UAR of type REGISTRATION_AND_CAPABILITIES gets Server-Capabilities
//! (Mandatory-Capability*, Optional-Capability*, Server-Name*) with the configured values; a
//! plain registration gets the S-CSCF's name and no Server-Capabilities. Ports 6400-6431.

mod common;
mod ims_core;

use ims::diameter::base::{AuthSessionState, VendorSpecificApplicationId};
use ims::diameter::cx::{Uaa, Uar, UserAuthorizationType};
use ims::diameter::dict::{self, app};
use ims::diameter::peer::Application;
use ims::diameter::{Command, Message};
use ims::net::diameter::{Node, NodeConfig};
use ims::nf::hss::ScscfCapabilities;
use ims::nf::runtime::CoreOptions;
use std::net::SocketAddr;
use std::time::Duration;

const REALM: &str = "ims.example.org";
const SECS: Duration = Duration::from_secs(10);

fn uar(n: u32, t: UserAuthorizationType) -> Vec<u8> {
    Uar {
        session_id: format!("icscf2.ims.example.org;1;{n}").into(),
        vendor_specific_application_id: VendorSpecificApplicationId::cx(),
        auth_session_state: AuthSessionState::NoStateMaintained,
        origin_host: "icscf2.ims.example.org".into(),
        origin_realm: REALM.into(),
        destination_realm: REALM.into(),
        user_name: "001010000000001@ims.example.org".into(),
        public_identity: "sip:001010000000001@ims.example.org".into(),
        visited_network_identifier: REALM.as_bytes().to_vec().into(),
        user_authorization_type: Some(t),
        ..Default::default()
    }
    // distinct End-to-End ids: the HSS node answers a duplicate from its cache (RFC 6733 §6.2)
    .encode(0, 0x6400_0000 + n)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_embedded_hss_sends_the_configured_scscf_capabilities() {
    let caps = ScscfCapabilities {
        mandatory: vec![1, 3],
        optional: vec![2],
        server_names: vec!["sip:scscf1.ims.example.org".into()],
    };
    let core = ims_core::start_with(
        ims_core::all_in_one(6400, [6430, 6431], None),
        CoreOptions::default().with_scscf_capabilities(caps.clone()),
    )
    .await;
    let mut c = NodeConfig::new("icscf2.ims.example.org", REALM);
    c.applications = vec![Application::tgpp_auth(app::CX)];
    c.vendor_id = 10415;
    c.reconnect_interval = Some(Duration::from_millis(200));
    let node = Node::new(c);
    node.add_peer("hss.ims.example.org", SocketAddr::new(ims_core::LO, 6430));
    node.wait_open("hss.ims.example.org", SECS).await.unwrap();

    let raw = node
        .request(uar(1, UserAuthorizationType::RegistrationAndCapabilities))
        .await
        .unwrap();
    let m = Message::parse(raw.bytes()).unwrap();
    let a = Uaa::decode(&m).unwrap();
    assert_eq!(a.server_name, None);
    let got = a.server_capabilities.expect("Server-Capabilities");
    assert_eq!(got.mandatory_capability.to_vec(), caps.mandatory);
    assert_eq!(got.optional_capability.to_vec(), caps.optional);
    assert_eq!(
        got.server_name
            .iter()
            .map(|n| n.to_string())
            .collect::<Vec<_>>(),
        caps.server_names
    );

    // a registration: the embedded HSS names its S-CSCF, no Server-Capabilities
    let raw = node
        .request(uar(2, UserAuthorizationType::Registration))
        .await
        .unwrap();
    let m = Message::parse(raw.bytes()).unwrap();
    assert!(m.find(dict::SERVER_CAPABILITIES).is_none());
    assert_eq!(
        Uaa::decode(&m).unwrap().server_name.as_deref(),
        Some("sip:127.0.0.1:6410")
    );
    node.shutdown();
    node.wait_stopped(SECS).await.unwrap();
    core.shutdown();
}

/// A REGISTER of subscriber `n` (no credentials yet) from `from`, straight to the I-CSCF.
fn register(n: u32, from: SocketAddr) -> String {
    let impu = format!("sip:00101000000000{n}@ims.example.org");
    format!(
        "REGISTER sip:ims.example.org SIP/2.0\r\nVia: SIP/2.0/UDP {from};branch=z9hG4bK-cap{n}\r\n\
Max-Forwards: 70\r\nFrom: <{impu}>;tag=c{n}\r\nTo: <{impu}>\r\nCall-ID: cap-{n}@test\r\n\
CSeq: 1 REGISTER\r\nContact: <sip:ue{n}@{from}>\r\nExpires: 600\r\nContent-Length: 0\r\n\r\n"
    )
}

/// The start line of the next datagram on `sock` (within 10 s).
async fn next_line(sock: &tokio::net::UdpSocket) -> String {
    let mut buf = vec![0u8; 65536];
    let n = tokio::time::timeout(SECS, sock.recv(&mut buf))
        .await
        .expect("a datagram within 10 s")
        .unwrap();
    let text = String::from_utf8_lossy(&buf[..n]).to_string();
    text.lines().next().unwrap_or_default().to_string()
}

/// Per-subscriber S-CSCF capabilities end to end (TS 29.228 §6.1.1.1, TS 24.229 §5.3.1.2):
/// the embedded HSS answers a first registration of a subscriber with capabilities of its own
/// by those and no Server-Name, and the I-CSCF selects the S-CSCF offering them — the core's
/// own (which challenges: 401), another one (the REGISTER reaches it), or none (600).
/// Ports 6440-6471.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_icscf_selects_by_each_subscribers_capabilities() {
    let needs = |m: &[u32], o: &[u32]| ScscfCapabilities {
        mandatory: m.to_vec(),
        optional: o.to_vec(),
        server_names: vec![],
    };
    // the other S-CSCF: a socket of this test
    let other = tokio::net::UdpSocket::bind((ims_core::LO, 6465))
        .await
        .unwrap();
    let mut cfg = ims_core::all_in_one(6440, [6470, 6471], None);
    cfg.subscribers.push(ims_core::subscriber(3));
    let options = CoreOptions::default()
        .with_subscriber_capabilities("001010000000001@ims.example.org", needs(&[7], &[]))
        // 9 is offered by the other S-CSCF only; the optional 7 would not make ours fit
        .with_subscriber_capabilities("001010000000002@ims.example.org", needs(&[9], &[7]))
        .with_subscriber_capabilities("001010000000003@ims.example.org", needs(&[8], &[]))
        .with_icscf_selection(vec![7], vec![("sip:127.0.0.1:6465".into(), vec![9])]);
    let core = ims_core::start_with(cfg, options).await;
    let ue = tokio::net::UdpSocket::bind((ims_core::LO, 6466))
        .await
        .unwrap();
    let ue_addr = ue.local_addr().unwrap();
    let icscf = SocketAddr::new(ims_core::LO, 6442);

    // subscriber 1 needs 7: our S-CSCF, which challenges
    ue.send_to(register(1, ue_addr).as_bytes(), icscf)
        .await
        .unwrap();
    assert_eq!(next_line(&ue).await, "SIP/2.0 401 Unauthorized");
    // subscriber 2 needs 9: the other S-CSCF gets the REGISTER
    ue.send_to(register(2, ue_addr).as_bytes(), icscf)
        .await
        .unwrap();
    assert_eq!(
        next_line(&other).await,
        "REGISTER sip:ims.example.org SIP/2.0"
    );
    // subscriber 3 needs 8, which nobody offers: 600 Busy Everywhere
    ue.send_to(register(3, ue_addr).as_bytes(), icscf)
        .await
        .unwrap();
    let line = next_line(&ue).await;
    assert!(line.starts_with("SIP/2.0 600"), "{line}");
    core.shutdown();
}
