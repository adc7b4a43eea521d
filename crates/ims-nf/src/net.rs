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
    async fn request(&self, mut request: Vec<u8>) -> Result<Vec<u8>, String> {
        // a fresh End-to-End Identifier per request (RFC 6733 §3: duplicate detection uses it);
        // the node sets the Hop-by-Hop Identifier per peer
        if request.len() >= 20 {
            request[16..20].copy_from_slice(&self.next_end_to_end().to_be_bytes());
        }
        Node::request(self, request)
            .await
            .map(|a| a.bytes().to_vec())
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
