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
