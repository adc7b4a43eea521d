//! The all-in-one core's IM session anchor sends the B leg of an INVITE that reaches it with no
//! Route left to the S-CSCF serving the caller, as the caller's third-party REGISTER named it
//! (TS 24.229 §5.7.3, §5.4.1.7: `ImSessionConfig::serving` from `ImServer::serving_scscf`),
//! with the `orig` parameter asking for originating processing — here another S-CSCF than the
//! core's own (one the I-CSCF may select, `CoreOptions::with_icscf_selection`). Without that the
//! B leg went to the core's own S-CSCF whoever served the caller.
//!
//! Ports 6230-6259.

mod common;
mod im_common;
mod ims_core;

use im_common::standalone::{self, bind, invite_answering_scscf, msrp_offer, next, register_with};
use ims::nf::runtime::CoreOptions;
use std::net::SocketAddr;

const CALLER: &str = "sip:001010000000001@ims.example.org";
const CALLEE: &str = "sip:001010000000002@ims.example.org";
const OTHER: &str = "sip:127.0.0.1:6252";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn b_legs_go_to_the_scscf_that_registered_the_caller_at_the_im_server() {
    // the other S-CSCF: INVITEs are answered 486 and handed to `other`
    let mut other = invite_answering_scscf(6252, 486).await;
    let core = ims_core::start_with(
        ims_core::all_in_one(6230, [6246, 6247], None),
        CoreOptions::default().with_icscf_selection(vec![], vec![(OTHER.into(), vec![])]),
    )
    .await;
    let im = SocketAddr::new(ims_core::LO, 6250);
    let ue = bind(6253, "client").await;

    // the other S-CSCF registered the caller at the IM server (third-party REGISTER)
    assert_eq!(
        register_with(&ue, im, CALLER, OTHER, 600, 1, "anchor-route").await,
        200
    );

    // the caller's INVITE with an MSRP offer, straight to the anchor (no Route)
    let sdp = msrp_offer("ue1", 6254, "anchor1");
    let status = standalone::invite(&ue, im, CALLER, CALLEE, &sdp).await;
    assert_eq!(status, 486, "the other S-CSCF's answer relayed");
    let b = next(&mut other, "the B leg at the caller's S-CSCF").await;
    let m = b.as_message();
    assert_eq!(m.request_uri_str(), Some(CALLEE));
    assert_eq!(m.header_str("Route"), Some("<sip:127.0.0.1:6252;lr;orig>"));
    assert_eq!(
        m.header_str("P-Asserted-Identity"),
        Some(format!("<{CALLER}>").as_str())
    );
    core.shutdown();
}
