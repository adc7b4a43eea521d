//! The `im_server` example binary with an external SMSC and an MSRP relay, started as a user
//! starts it: `--smsc 127.0.0.1:PORT --smsc-host … --smsc-realm …` (TS 29.338 SGd) and
//! `--msrp-relay msrp://127.0.0.1:PORT;tcp --msrp-relay-auth im:im-pw` (RFC 4976), in front of
//! a scripted S-CSCF, our Diameter node as the SMSC and an `MsrpRelay`.
//!
//! `the_binary_forwards_submissions_to_its_smsc_and_sits_behind_its_msrp_relay`: the binary
//! reports the SGd connection open and the relay it uses; the session anchor AUTHs to the
//! relay at start (one binding); Alice's submission (numbered by
//! `examples/im_server/subscribers.toml`, her IMSI read from her IMSI-derived IMPU) reaches
//! the SMSC as an OFR with her MSISDN and IMSI, and the OFA's SMS-SUBMIT-REPORT comes back to
//! her in the RP-ACK. Then the binary is killed.
//!
//! Skips when the example is not built (`cargo test` builds it; `cargo build --example
//! im_server` otherwise). Ports 7015-7017, 7019 and 7029 (helper range; the anchor takes 7018,
//! the SIP port + 3).

mod common;
mod im_common;

use im_common::bodies::rp_submit;
use im_common::sgd::{smsc, IPSMGW_HOST, SECS, SUBMIT_REPORT};
use im_common::standalone::{next, next_to, scscf, start_binary, Client};
use im_common::LO;
use ims::diameter::sgd::{tbcd, Ofr};
use ims::diameter::Command;
use ims::msrp::relay::RelayConfig;
use ims::msrp::UriBuf;
use ims::net::msrp::MsrpRelay;
use ims::sms::{Direction, RpBody, RpMessage};
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

const ALICE: &str = "sip:001010000000001@ims.example.org";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_forwards_submissions_to_its_smsc_and_sits_behind_its_msrp_relay() {
    let Some(bin) = common::example_binary("im_server") else {
        return;
    };
    let l = tokio::net::TcpListener::bind(SocketAddr::new(LO, 7017))
        .await
        .expect("relay port");
    let relay_uri = "msrp://127.0.0.1:7017;tcp";
    let relay = MsrpRelay::start(
        l,
        RelayConfig::new(UriBuf::parse(relay_uri).unwrap(), "relay.example.org"),
        &[("im", "im-pw")],
        0x7017,
    )
    .expect("relay");
    let (smsc, mut ofrs) = smsc(7016, true).await;
    let (_script, mut seen) = scscf(7019).await;
    let subscribers =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/im_server/subscribers.toml");
    let mut args: Vec<std::ffi::OsString> = [
        "--listen",
        "127.0.0.1:7015",
        "--scscf",
        "sip:term@127.0.0.1:7019",
        "--no-store",
        "--smsc",
        "127.0.0.1:7016",
        "--smsc-host",
        "smsc.sms.example.org",
        "--smsc-realm",
        "sms.example.org",
        "--msrp-relay",
        relay_uri,
        "--msrp-relay-auth",
        "im:im-pw",
        "--subscribers",
    ]
    .iter()
    .map(Into::into)
    .collect();
    args.push(subscribers.into());
    // what it says until the session anchor runs
    let (running, text) = start_binary(&bin, args, "session anchor").await;
    assert!(
        text.contains("SMSC 127.0.0.1:7016 (smsc.sms.example.org in sms.example.org) over SGd"),
        "{text}"
    );
    assert!(text.contains("SGd connection to the SMSC open"), "{text}");
    assert!(
        text.contains("MSRP relay msrp://127.0.0.1:7017;tcp (user im)"),
        "{text}"
    );
    assert!(
        text.contains("MSRP session anchor on"),
        "the anchor started behind its relay: {text}"
    );
    smsc.wait_open(IPSMGW_HOST, SECS)
        .await
        .expect("the SMSC sees the IP-SM-GW");
    // the anchor AUTHed to its relay (RFC 4976 §5)
    let mut bound = false;
    for _ in 0..100 {
        if relay.bindings() == 1 {
            bound = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(bound, "the anchor holds one relay binding");

    // Alice submits: an OFR to the SMSC, the OFA's report back in her RP-ACK
    let server: SocketAddr = "127.0.0.1:7015".parse().unwrap();
    let mut alice = Client::new(7029, server, "sgdbin").await;
    alice
        .sms(ALICE, rp_submit(5, 1, "15550002", false, "via the SMSC"))
        .await;
    let wire = next(&mut ofrs, "the OFR").await;
    let ofr = Ofr::decode(&ims::diameter::Message::parse(&wire).unwrap()).expect("an OFR");
    assert_eq!(
        ofr.user_identifier.msisdn.as_deref(),
        Some(&tbcd("15550001").unwrap()[..])
    );
    assert_eq!(
        ofr.user_identifier.user_name.as_deref(),
        Some("001010000000001")
    );
    let (_, m) = next_to(&mut seen, ALICE, "Alice's RP-ACK").await;
    let rp = RpMessage::decode(m.as_message().body(), Direction::NetworkToMs).unwrap();
    assert_eq!(rp.message_reference, 5);
    assert!(
        matches!(rp.body, RpBody::Ack { user_data: Some(u) } if u == SUBMIT_REPORT),
        "{rp:?}"
    );
    drop(running);
    smsc.shutdown();
}
