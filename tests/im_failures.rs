//! How the IM server ends deliveries that fail, with a stand-alone IM server and a scripted
//! S-CSCF (an ims-net endpoint answering each recipient with the status the test sets, and
//! handing every request it gets to the test with that status):
//!
//! 1. `permanent_failures_end_an_sms_at_once_temporary_ones_keep_it` (TS 23.040 §11.1, TS
//!    23.204 §6.0a.1): the SMS-DELIVER to Carol meets 404: no further attempt, Alice gets her
//!    SMS-STATUS-REPORT with TP-Status 0x43 "not obtainable" at once and the store is empty;
//!    Dave answers his SMS-DELIVER with RP-ERROR cause 96 (invalid mandatory information):
//!    status report 0x40 "remote procedure error", no retry; the SMS-DELIVER to Bob meets 503:
//!    kept and tried again after the back-off, delivered, status report 0x00; an MSISDN-less
//!    SMS (TS 24.341 Annex B.7) to a SIP URI the network refuses with 404 is answered RP-ERROR
//!    cause 30 instead of its RP-ACK (TS 23.204 §6.0a.1).
//! 2. `a_stored_im_meeting_a_permanent_failure_gets_its_failed_imdn_at_once`: a CPIM IM for the
//!    unregistered Bob (480) is stored (202); when Bob registers its delivery meets 415: it
//!    leaves the store and Alice gets the network's `failed` IMDN (RFC 5438 §7.2) at once; a
//!    second CPIM IM meets 503 while Bob is registered: 202, stored, delivered after the
//!    back-off with the `delivered` IMDN.
//! 3. `stored_ims_survive_a_crash_with_the_file_store_and_arrive_once` and (feature `redis`)
//!    `stored_ims_survive_a_crash_with_redis_and_arrive_once`: a text/plain and a CPIM IM for
//!    the unregistered Bob are stored (202), the IM server's runtime is torn down (a crash), a
//!    new one reloads both; Bob registers: both arrive once, in order, Alice gets the
//!    `delivered` IMDN of the CPIM one, a second registration delivers nothing more, and the
//!    store is empty.
//!
//! Ports 7126-7129, 7132-7134, 7171-7181 (helper range).

mod common;
mod im_common;

use im_common::bodies::{cpim_asking, imdn_of, msisdn_less, rp_submit};
#[cfg(feature = "redis")]
use im_common::standalone::redis;
use im_common::standalone::{
    self, assert_quiet, im_config, next, scscf, start_crashable, Client, Script, Seen, Treat, SC,
};
use im_common::LO;
use ims::nf::im_server::{ImServer, ImServerConfig};
use ims::sip::OwnedMessage;
use ims::sms::{self, answer, Direction, RpBody, RpCause, RpMessage, Status, Tpdu};
use std::net::SocketAddr;
use std::time::Duration;

const ALICE: &str = "sip:alice@ims.example.org";
const BOB: &str = "sip:bob@ims.example.org";
const CAROL: &str = "sip:carol@ims.example.org";
const DAVE: &str = "sip:dave@ims.example.org";

/// The answers to each recipient's requests (by Request-URI; 200 when not listed).
type Answers = Script;

/// From now on, `who`'s requests get `code` at once.
fn set(answers: &Answers, who: &'static str, code: u16) {
    standalone::set(answers, who, Treat::Answer(code));
}

fn config(port: u16, scscf: u16) -> ImServerConfig {
    im_config(
        port,
        scscf,
        &[
            ("+15550001", ALICE),
            ("+15550002", BOB),
            ("+15550003", CAROL),
            ("+15550004", DAVE),
        ],
    )
}

/// RP-DATA (RP-MR 7) with an SMS-SUBMIT (TP-MR 5) of `text` to `number`, asking for a status
/// report.
fn submit(number: &str, text: &str) -> Vec<u8> {
    rp_submit(7, 5, number, true, text)
}

/// The next request to `to`, skipping none: anything else first is a failure (this S-CSCF
/// answers every request at once).
async fn next_to(rx: &mut Seen, to: &str, what: &str) -> (u16, OwnedMessage) {
    let (code, m) = standalone::next_to(rx, to, what).await;
    (code.expect("answered"), m)
}

/// The TP-Status of the SMS-STATUS-REPORT `m` carries.
fn report_status(m: &OwnedMessage) -> Status {
    let rp = sms::decode(m.as_message().body(), Direction::NetworkToMs).expect("RP-DATA");
    match rp.tpdu {
        Some(Tpdu::StatusReport(sr)) => sr.status,
        other => panic!("not a status report: {other:?}"),
    }
}

/// The RP-ACK to Alice, then the SMS-DELIVER to `to` (it is sent once the RP-ACK left).
async fn ack_then_deliver(rx: &mut Seen, to: &str) -> (u16, OwnedMessage) {
    let mut ack = None;
    let mut deliver = None;
    for _ in 0..2 {
        let (code, m) = next(rx, "the RP-ACK and the SMS-DELIVER").await;
        let code = code.expect("answered");
        if m.as_message().request_uri_str() == Some(to) {
            deliver = Some((code, m));
        } else {
            ack = Some(m);
        }
    }
    let ack = ack.expect("the RP-ACK to Alice");
    let rp = sms::decode(ack.as_message().body(), Direction::NetworkToMs).expect("RP");
    assert_eq!(rp.rp.name(), "RP-ACK");
    deliver.expect("the SMS-DELIVER")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permanent_failures_end_an_sms_at_once_temporary_ones_keep_it() {
    let (answers, mut seen) = scscf(7126).await;
    let im = ImServer::start(config(7127, 7126))
        .await
        .expect("IM server");
    let mut ue = Client::new(7128, im.local_addr(), "fail").await;

    // 404 for Carol: no further attempt, the status report says "not obtainable" at once
    set(&answers, CAROL, 404);
    ue.sms(ALICE, submit("15550003", "to nobody")).await;
    let (code, _) = ack_then_deliver(&mut seen, CAROL).await;
    assert_eq!(code, 404);
    let (_, sr) = next_to(&mut seen, ALICE, "Alice's status report").await;
    assert_eq!(report_status(&sr), Status::NOT_OBTAINABLE);
    assert_eq!(im.queued(), 0, "out of the store");
    // the back-off (2 s) passes: Carol gets nothing more
    assert_quiet(&mut seen, Duration::from_secs(3), "no retry after a 404").await;

    // Dave refuses the SMS-DELIVER with RP-ERROR 96: final too
    ue.sms(ALICE, submit("15550004", "malformed for Dave"))
        .await;
    let (code, deliver) = ack_then_deliver(&mut seen, DAVE).await;
    assert_eq!(code, 200);
    let rp = sms::decode(deliver.as_message().body(), Direction::NetworkToMs).expect("RP-DATA");
    let err = RpMessage::error(
        Direction::MsToNetwork,
        rp.rp.message_reference,
        RpCause::INVALID_MANDATORY_INFORMATION,
        None,
    )
    .encode()
    .expect("RP-ERROR");
    ue.sms(DAVE, err).await;
    let (_, sr) = next_to(&mut seen, ALICE, "Alice's status report").await;
    assert_eq!(report_status(&sr), Status::REMOTE_PROCEDURE_ERROR);
    assert_eq!(im.queued(), 0, "out of the store");
    assert_quiet(
        &mut seen,
        Duration::from_secs(3),
        "no retry after RP-ERROR 96",
    )
    .await;

    // 503 for Bob: temporary, kept and tried again after the back-off
    set(&answers, BOB, 503);
    ue.sms(ALICE, submit("15550002", "later")).await;
    let (code, _) = ack_then_deliver(&mut seen, BOB).await;
    assert_eq!(code, 503);
    assert_eq!(im.queued(), 1, "kept");
    set(&answers, BOB, 200);
    let (code, deliver) = next_to(&mut seen, BOB, "the second attempt").await;
    assert_eq!(code, 200);
    let rp = sms::decode(deliver.as_message().body(), Direction::NetworkToMs).expect("RP-DATA");
    let ack = answer::deliver_report_ack(&rp.rp).expect("RP-ACK");
    ue.sms(BOB, ack).await;
    let (_, sr) = next_to(&mut seen, ALICE, "Alice's status report").await;
    assert_eq!(report_status(&sr), Status::DELIVERED);
    assert_eq!(im.queued(), 0);

    // MSISDN-less (TS 23.204 §6.0a.1, §6.3a): Dave's SMS to a SIP URI the terminating network
    // refuses for good is answered RP-ERROR (not RP-ACK, no status report)
    const NOBODY: &str = "sip:nobody@ims.example.org";
    set(&answers, NOBODY, 404);
    let ct = "multipart/mixed;boundary=b1";
    ue.message(DAVE, SC, ct, msisdn_less(NOBODY, true, "by SIP URI"))
        .await;
    let (code, _) = next_to(&mut seen, NOBODY, "the MSISDN-less SMS-DELIVER").await;
    assert_eq!(code, 404);
    let (_, answer) = next_to(&mut seen, DAVE, "the RP answer to Dave").await;
    let rp = sms::decode(answer.as_message().body(), Direction::NetworkToMs).expect("RP");
    match rp.rp.body {
        RpBody::Error { cause, .. } => assert_eq!(cause, RpCause::UNKNOWN_SUBSCRIBER),
        other => panic!("RP-ERROR expected, got {other:?}"),
    }
    assert_eq!(rp.rp.message_reference, 3, "names Dave's RP-DATA");
    assert_eq!(im.queued(), 0);

    // MO with a malformed SMS-SUBMIT (the RP layer intact, the TPDU cut short after TP-DA's
    // length): RP-ERROR cause 96 "invalid mandatory information" (TS 24.011 §8.2.5.4, Annex
    // E) naming Dave's RP-MR, nothing stored or delivered
    let whole = rp_submit(4, 11, "15550002", false, "cut short");
    let full = sms::decode(&whole, Direction::MsToNetwork).expect("RP-DATA");
    let tpdu = match full.rp.body {
        RpBody::Data { user_data, .. } => user_data.to_vec(),
        other => panic!("{other:?}"),
    };
    let cut = RpMessage::data_mo(7, ims::sms::Address::international("15550000"), &tpdu[..3])
        .encode()
        .expect("RP-DATA with a short TPDU");
    ue.sms(DAVE, cut).await;
    let (_, answer) = next_to(&mut seen, DAVE, "the RP-ERROR to Dave").await;
    let rp = sms::decode(answer.as_message().body(), Direction::NetworkToMs).expect("RP");
    match rp.rp.body {
        RpBody::Error { cause, .. } => assert_eq!(cause, RpCause::INVALID_MANDATORY_INFORMATION),
        other => panic!("RP-ERROR expected, got {other:?}"),
    }
    assert_eq!(rp.rp.message_reference, 7, "names Dave's RP-DATA");
    assert_eq!(im.queued(), 0);
    assert_quiet(&mut seen, Duration::from_secs(3), "nothing more").await;
    im.shutdown();
}

/// A CPIM IM from Alice to Bob asking for both delivery notifications.
fn cpim(id: &str, text: &str) -> Vec<u8> {
    cpim_asking(
        ALICE,
        BOB,
        id,
        "positive-delivery, negative-delivery",
        "2026-11-26T20:00:00Z",
        text,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stored_im_meeting_a_permanent_failure_gets_its_failed_imdn_at_once() {
    let (answers, mut seen) = scscf(7129).await;
    let im = ImServer::start(config(7132, 7129))
        .await
        .expect("IM server");
    let mut ue = Client::new(7133, im.local_addr(), "fail").await;

    // Bob is not registered: stored
    set(&answers, BOB, 480);
    let code = ue
        .message(ALICE, BOB, "message/cpim", cpim("m-1", "one"))
        .await;
    assert_eq!(code, 202, "accepted for later delivery");
    let (code, _) = next_to(&mut seen, BOB, "the relayed IM").await;
    assert_eq!(code, 480);
    assert_eq!(im.stored_ims(), 1);
    // Bob registers, but his UE does not take CPIM: 415 ends it, failed IMDN at once
    set(&answers, BOB, 415);
    assert_eq!(ue.third_party_register(BOB, 7129).await, 200);
    let (code, _) = next_to(&mut seen, BOB, "the stored IM").await;
    assert_eq!(code, 415);
    let (_, n) = next_to(&mut seen, ALICE, "the failed IMDN").await;
    let x = imdn_of(&n);
    assert_eq!(
        (x.message_id.as_str(), x.status.as_str()),
        ("m-1", "failed")
    );
    assert_eq!(im.stored_ims(), 0, "out of the store");
    assert_quiet(&mut seen, Duration::from_secs(3), "no retry after a 415").await;

    // a temporary failure of the registered Bob: 202, stored, delivered after the back-off
    set(&answers, BOB, 503);
    let code = ue
        .message(ALICE, BOB, "message/cpim", cpim("m-2", "two"))
        .await;
    assert_eq!(code, 202, "kept after a 503");
    let (code, _) = next_to(&mut seen, BOB, "the relayed IM").await;
    assert_eq!(code, 503);
    assert_eq!(im.stored_ims(), 1);
    set(&answers, BOB, 200);
    let (code, m) = next_to(&mut seen, BOB, "the retried IM").await;
    assert_eq!(code, 200);
    assert_eq!(m.as_message().body(), &cpim("m-2", "two")[..]);
    let (_, n) = next_to(&mut seen, ALICE, "the delivered IMDN").await;
    let x = imdn_of(&n);
    assert_eq!(
        (x.message_id.as_str(), x.status.as_str()),
        ("m-2", "delivered")
    );
    assert_eq!(im.stored_ims(), 0);
    im.shutdown();
}

/// A text/plain and a CPIM IM stored for the unregistered Bob survive a crash of the IM server
/// (its runtime torn down, no shutdown) with the store `cfg` names; after the restart (on
/// `port2`, the client on `ue2`) Bob's registration delivers each once, in order.
async fn crash_and_deliver_once(
    cfg: ImServerConfig,
    port2: u16,
    ue1: u16,
    ue2: u16,
    scscf_port: u16,
    answers: Answers,
    seen: &mut Seen,
) -> ImServer {
    let (crash, im) = start_crashable(&cfg).await;
    let mut ue = Client::new(ue1, im.local_addr(), "fail").await;
    set(&answers, BOB, 480);
    let plain = b"plain, kept".to_vec();
    let cpim_body = cpim("m-crash", "cpim, kept");
    assert_eq!(
        ue.message(ALICE, BOB, "text/plain", plain.clone()).await,
        202
    );
    assert_eq!(
        ue.message(ALICE, BOB, "message/cpim", cpim_body.clone())
            .await,
        202
    );
    for _ in 0..2 {
        assert_eq!(next_to(seen, BOB, "the relayed IMs").await.0, 480);
    }
    assert_eq!(im.stored_ims(), 2);
    // crash: no shutdown, no sync_store
    crash.shutdown_background();
    drop(im);

    let mut cfg2 = cfg;
    cfg2.listen = SocketAddr::new(LO, port2);
    let im = ImServer::start(cfg2).await.expect("IM server restarts");
    assert_eq!(im.stored_ims(), 2, "both reloaded");
    let mut ue = Client::new(ue2, im.local_addr(), "fail").await;
    set(&answers, BOB, 200);
    assert_eq!(ue.third_party_register(BOB, scscf_port).await, 200);
    let (_, first) = next_to(seen, BOB, "the stored text/plain IM").await;
    assert_eq!(first.as_message().body(), &plain[..]);
    assert_eq!(
        first.as_message().header_str("Content-Type"),
        Some("text/plain")
    );
    let (_, second) = next_to(seen, BOB, "the stored CPIM IM").await;
    assert_eq!(second.as_message().body(), &cpim_body[..]);
    let (_, n) = next_to(seen, ALICE, "the delivered IMDN").await;
    let x = imdn_of(&n);
    assert_eq!(
        (x.message_id.as_str(), x.status.as_str()),
        ("m-crash", "delivered")
    );
    assert_eq!(im.stored_ims(), 0);
    // a second registration (a re-registration) delivers nothing again
    assert_eq!(ue.third_party_register(BOB, scscf_port).await, 200);
    assert_quiet(seen, Duration::from_secs(3), "each IM arrives once").await;
    im
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stored_ims_survive_a_crash_with_the_file_store_and_arrive_once() {
    let dir = common::TempDir::new("im", "fail-store", "IMS_KEEP_STORE");
    let (answers, mut seen) = scscf(7134).await;
    let mut cfg = config(7174, 7134);
    cfg.store = Some(dir.path().to_path_buf());
    let im = crash_and_deliver_once(cfg, 7175, 7176, 7177, 7134, answers, &mut seen).await;
    let left = im_common::files_with(&dir.path().join("im"), "json");
    assert_eq!(left, 0, "the file store is empty");
    im.shutdown();
}

#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stored_ims_survive_a_crash_with_redis_and_arrive_once() {
    let Some(redis) = common::RedisServer::start("im-fail").await else {
        return;
    };
    let (answers, mut seen) = scscf(7178).await;
    let mut cfg = config(7179, 7178);
    cfg.store = Some(format!("redis://{}/fail:", redis.addr()).into());
    let im = crash_and_deliver_once(cfg, 7180, 7181, 7171, 7178, answers, &mut seen).await;
    im.sync_store().await;
    assert_eq!(
        redis::hlen(redis.port(), "fail:im").await,
        Some(0),
        "Redis is empty"
    );
    im.shutdown();
}
