//! The `im_server` example binary serving, not only checking its configuration: started as a
//! user starts it (`--listen`, `--scscf`, `--no-store`, `--subscribers
//! examples/im_server/subscribers.toml`) in front of a scripted S-CSCF (an ims-net endpoint that
//! answers every request 200 and hands it to the test):
//!
//! `the_binary_acknowledges_delivers_and_reports_an_sms`: subscriber +15550001 submits an SMS
//! (RP-DATA with an SMS-SUBMIT asking for a status report) to +15550002: the MESSAGE gets 202,
//! the sender gets RP-ACK in a new MESSAGE, the recipient's first SIP IMPU gets RP-DATA with the
//! SMS-DELIVER carrying the text and the originator's number; the recipient's RP-ACK brings the
//! sender an SMS-STATUS-REPORT "delivered"; then the binary stops on SIGKILL like any process.
//!
//! Skips when the example is not built (`cargo test` builds it; `cargo build --example
//! im_server` otherwise). Ports 5590-5592 (lead's range).

mod common;
mod im_common;

use im_common::bodies::rp_submit;
use im_common::standalone::{next, next_to, scscf, start_binary, Client};
use im_common::LO;
use ims::sms::{self, answer, Direction, Status, Tpdu};
use std::net::SocketAddr;
use std::path::Path;

const ALICE: &str = "sip:001010000000001@ims.example.org";
const BOB: &str = "sip:001010000000002@ims.example.org";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_acknowledges_delivers_and_reports_an_sms() {
    let Some(bin) = common::example_binary("im_server") else {
        return;
    };
    let (_script, mut seen) = scscf(5591).await;
    let subscribers =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/im_server/subscribers.toml");
    let mut args: Vec<std::ffi::OsString> = [
        "--listen",
        "127.0.0.1:5590",
        "--scscf",
        "sip:term@127.0.0.1:5591",
        "--no-store",
        "--subscribers",
    ]
    .iter()
    .map(Into::into)
    .collect();
    args.push(subscribers.into());
    // it says where it runs once it serves
    let (running, text) = start_binary(&bin, args, "running on").await;
    assert!(text.contains("running on"), "im_server output: {text}");

    let server = SocketAddr::new(LO, 5590);
    let mut ue = Client::new(5592, server, "bin").await;
    ue.sms(
        ALICE,
        rp_submit(9, 3, "15550002", true, "hello from the binary"),
    )
    .await;

    // the RP-ACK to Alice and the SMS-DELIVER to Bob, in either order
    let mut ack = None;
    let mut deliver = None;
    for _ in 0..2 {
        let (code, m) = next(&mut seen, "the RP-ACK and the SMS-DELIVER").await;
        assert_eq!(code, Some(200));
        match m.as_message().request_uri_str() {
            Some(BOB) => deliver = Some(m),
            Some(ALICE) => ack = Some(m),
            other => panic!("unexpected request to {other:?}"),
        }
    }
    let ack = ack.expect("RP-ACK to Alice");
    let rp = sms::decode(ack.as_message().body(), Direction::NetworkToMs).expect("RP message");
    assert_eq!(rp.rp.name(), "RP-ACK");
    assert_eq!(rp.rp.message_reference, 9, "answers Alice's RP-MR");

    let deliver = deliver.expect("SMS-DELIVER to Bob");
    let rp = sms::decode(deliver.as_message().body(), Direction::NetworkToMs).expect("RP-DATA");
    let Some(Tpdu::Deliver(d)) = &rp.tpdu else {
        panic!("not an SMS-DELIVER: {rp:?}")
    };
    assert_eq!(d.originator.to_string(), "+15550001", "TP-OA");
    assert!(d.status_report_indication, "TP-SRI: a report was asked for");
    assert_eq!(
        rp.tpdu.as_ref().unwrap().text().as_deref(),
        Some("hello from the binary"),
        "TP-UD"
    );

    // Bob's RP-ACK: Alice gets her status report
    ue.sms(BOB, answer::deliver_report_ack(&rp.rp).expect("RP-ACK"))
        .await;
    let (_, sr) = next_to(&mut seen, ALICE, "Alice's status report").await;
    let rp = sms::decode(sr.as_message().body(), Direction::NetworkToMs).expect("RP-DATA");
    match rp.tpdu {
        Some(Tpdu::StatusReport(r)) => {
            assert_eq!(r.status, Status::DELIVERED);
            assert_eq!(r.message_reference, 3, "the SMS-SUBMIT's TP-MR");
        }
        other => panic!("not a status report: {other:?}"),
    }
    drop(running);
}
