//! The network functions on the ims-net Diameter node: a [`Node`] sends Cx/Rx requests for the
//! CSCFs ([`DiameterRequester`]) and serves the embedded HSS and PCRF ([`serve_hss`],
//! [`serve_pcrf`]) and the HSS-initiated Cx requests at the S-CSCF ([`serve_scscf`]).

use crate::cx::CxClient;
use crate::cx_wire::{DiameterRequester, HssCxServer, ScscfCxServer};
use crate::pcrf::PcrfRxServer;
use crate::scscf::RegEvent;
use crate::store::BindingStore;
use ims_diameter::dict::{app, command};
use ims_net::diameter::Node;
use std::sync::Arc;

impl DiameterRequester for Node {
    async fn request(&self, request: Vec<u8>) -> Result<Vec<u8>, String> {
        self.request_shared(request).await.map(|a| a.to_vec())
    }

    /// The answer's octets as the node read them (a slice of its read buffer: no copy).
    async fn request_shared(&self, mut request: Vec<u8>) -> Result<bytes::Bytes, String> {
        // a fresh End-to-End Identifier per request (RFC 6733 §3: duplicate detection uses it);
        // the node sets the Hop-by-Hop Identifier per peer
        if request.len() >= 20 {
            request[16..20].copy_from_slice(&self.next_end_to_end().to_be_bytes());
        }
        Node::request(self, request)
            .await
            .map(|a| a.bytes().clone())
            .map_err(|e| e.to_string())
    }
}

/// Serves Cx (UAR, MAR, SAR, LIR) on `node` with `hss`.
pub fn serve_hss(node: &Node, hss: HssCxServer) {
    // one server shared by the handlers and their futures (a count, not a copy of its names
    // and tables, per request)
    let hss = Arc::new(hss);
    for code in [
        command::USER_AUTHORIZATION,
        command::MULTIMEDIA_AUTH,
        command::SERVER_ASSIGNMENT,
        command::LOCATION_INFO,
    ] {
        let hss = Arc::clone(&hss);
        node.handle(app::CX, code, move |req| {
            let hss = Arc::clone(&hss);
            async move { hss.answer(req.message.bytes()).await.unwrap_or_default() }
        });
    }
}

/// Serves Rx (AAR, STR) on `node` with `pcrf`.
pub fn serve_pcrf(node: &Node, pcrf: PcrfRxServer) {
    let pcrf = Arc::new(pcrf);
    for code in [command::AA, command::SESSION_TERMINATION] {
        let pcrf = Arc::clone(&pcrf);
        node.handle(app::RX, code, move |req| {
            let pcrf = Arc::clone(&pcrf);
            async move { pcrf.answer(req.message.bytes()).unwrap_or_default() }
        });
    }
}

/// Serves the Cx requests the HSS sends to an S-CSCF (RTR, PPR) on `node`; the registration
/// changes they make go to `on_events` (reg event NOTIFYs, third-party de-registration).
pub fn serve_scscf<C: CxClient, S: BindingStore>(
    node: &Node,
    server: ScscfCxServer<C, S>,
    on_events: impl Fn(Vec<RegEvent>) + Send + Sync + 'static,
) {
    let on_events: Arc<dyn Fn(Vec<RegEvent>) + Send + Sync> = Arc::new(on_events);
    let server = Arc::new(server);
    for code in [command::REGISTRATION_TERMINATION, command::PUSH_PROFILE] {
        let (server, on_events) = (Arc::clone(&server), on_events.clone());
        node.handle(app::CX, code, move |req| {
            let (server, on_events) = (Arc::clone(&server), on_events.clone());
            async move {
                match server.answer(req.message.bytes()).await {
                    Some((answer, events)) => {
                        if !events.is_empty() {
                            on_events(events);
                        }
                        answer
                    }
                    None => Vec::new(),
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cx::LocalHss;
    use crate::hss::{Credentials, Hss, Subscriber};
    use crate::subscription::{ImsSubscription, PublicIdentity, ServiceProfile};
    use ims_diameter::base::{AuthSessionState, VendorSpecificApplicationId};
    use ims_diameter::cx::{Uaa, Uar};
    use ims_diameter::peer::Application;
    use ims_diameter::Command;
    use ims_net::diameter::NodeConfig;
    use std::borrow::Cow;
    use std::sync::Mutex;
    use std::time::Duration;

    const REALM: &str = "ims.example.org";
    const IMPI: &str = "alice@ims.example.org";
    const IMPU: &str = "sip:alice@ims.example.org";

    fn node(host: &str) -> Node {
        let mut c = NodeConfig::new(host, REALM);
        c.applications = vec![Application::tgpp_auth(app::CX)];
        c.request_timeout = Duration::from_secs(5);
        Node::new(c)
    }

    /// The node's answer octets as `request_shared` gives them (no copy) are those `request`
    /// gives (a copy), but for the identifiers each exchange gets; both decode to the same
    /// successful UAA.
    #[tokio::test]
    async fn shared_answers_are_the_answers() {
        let mut hss = Hss::new(None);
        hss.add_subscriber(Subscriber {
            subscription: ImsSubscription {
                private_id: IMPI.into(),
                service_profiles: vec![ServiceProfile {
                    public_identities: vec![PublicIdentity::new(IMPU)],
                    ..ServiceProfile::default()
                }],
            },
            credentials: Credentials {
                aka: None,
                password: Some("secret".into()),
            },
        });
        let local = LocalHss::new(Arc::new(Mutex::new(hss)), REALM, || [7; 16]);
        let server = node("hss.ims.example.org");
        // any free port: `listen` answers the address it bound
        let addr = server
            .listen("127.0.0.1:0".parse().unwrap())
            .await
            .expect("a free loopback port");
        serve_hss(
            &server,
            HssCxServer::new("hss.ims.example.org", REALM, local),
        );
        let client = node("icscf.ims.example.org");
        client.add_peer("hss.ims.example.org", addr);
        client
            .wait_open("hss.ims.example.org", Duration::from_secs(5))
            .await
            .unwrap();
        let uar = Uar {
            session_id: client.session_id().into(),
            vendor_specific_application_id: VendorSpecificApplicationId::cx(),
            auth_session_state: AuthSessionState::NoStateMaintained,
            origin_host: Cow::Borrowed(client.origin_host()),
            origin_realm: Cow::Borrowed(REALM),
            destination_realm: Cow::Borrowed(REALM),
            user_name: Cow::Borrowed(IMPI),
            public_identity: Cow::Borrowed(IMPU),
            visited_network_identifier: Cow::Borrowed(REALM.as_bytes()),
            ..Default::default()
        }
        .encode(0, 0);
        let shared = DiameterRequester::request_shared(&client, uar.clone())
            .await
            .unwrap();
        let copied = DiameterRequester::request(&client, uar).await.unwrap();
        assert_eq!(shared.len(), copied.len());
        assert_eq!(shared[..12], copied[..12]);
        assert_eq!(shared[20..], copied[20..]);
        for a in [&shared[..], &copied[..]] {
            let (_, uaa) = Uaa::decode_message(a).unwrap();
            // DIAMETER_FIRST_REGISTRATION (2001, experimental)
            assert!(uaa.outcome().is_some_and(|o| o.is_success()));
        }
        client.shutdown();
        server.shutdown();
        let secs = Duration::from_secs(5);
        client.wait_stopped(secs).await.unwrap();
        server.wait_stopped(secs).await.unwrap();
    }
}
