//! What a crash of the IM server does to messages handed over but not acknowledged yet, with a
//! stand-alone IM server (started on a runtime of its own that the test tears down: every
//! task dropped wherever it stands, no shutdown) and a scripted S-CSCF that answers each
//! recipient as the test says — at once, late, or never (the request "on the wire" when the
//! server dies):
//!
//! 1. `an_sms_handed_over_at_a_crash_comes_again_unchanged_after_the_restart` (file store):
//!    the SMS-DELIVER reached Bob, the IM server crashes before his RP-ACK; the restarted one
//!    sends it again TR1N (`ack_wait`) after that attempt — at least once — with a new RP-MR
//!    but the very same TPDU (TP-OA, TP-SCTS, TP-UD: TS 23.040 §9.2.3.11, what lets Bob's UE
//!    recognise the copy it already showed); Bob's RP-ACK gives Alice one status report.
//! 2. `an_rp_ack_lost_to_a_crash_over_tcp_brings_one_identical_copy_with_redis` (feature
//!    `redis`): the TCP window. Bob's RP-ACK arrives over TCP while Redis holds writes, so the
//!    removal is not durable when the server crashes; TCP has no retransmission to repair it
//!    (Bob's MESSAGE fails), the restarted server re-delivers after TR1N with the same TPDU,
//!    Bob acknowledges the copy, one status report, Redis empty.
//! 3. `a_submission_repeated_after_a_crash_with_tp_rd_is_refused_as_a_duplicate`: Alice's RP-ACK
//!    was lost to the crash; she repeats the SMS-SUBMIT with the same TP-MR and TP-RD set (TS
//!    23.040 §9.2.3.6): the restarted server, still holding the first copy, answers RP-ERROR
//!    with TP-FCS 0xC5 "duplicate SM" (§9.2.3.25) and Bob gets the message once.
//! 4. `a_stored_im_handed_over_at_a_crash_comes_again_after_the_restart_with_files` and
//!    (feature `redis`) `…_with_redis`: a CPIM and a text/plain IM stored for the unregistered
//!    Bob; his registration sends the CPIM one, which the S-CSCF holds unanswered, and the
//!    server crashes. The restarted server, without any new registration, hands both over
//!    after TR1N (the CPIM one with the same `imdn.Message-ID`, RFC 5438 §6.3), Alice gets one
//!    `delivered` IMDN, the store ends empty and a re-registration delivers nothing more.
//! 5. `a_cpim_im_sent_again_while_held_is_kept_once`: a CPIM IM stored for the unregistered Bob;
//!    after a crash Alice sends it again (her 202 lost): 202, not relayed, not stored twice;
//!    Bob's registration brings it once.
//! 6. `an_im_meeting_408_in_time_is_kept_a_late_failure_is_relayed`: a relayed IM answered 408
//!    at once (a node on the way found Bob unreachable) is kept (202) and delivered after the
//!    back-off with its IMDN; a 503 that comes after `page_answer_wait` is relayed (503, the
//!    `failed` IMDN) and nothing is kept.
//!
//! 7. `a_stored_large_im_keeps_its_call_id_and_from_tag_on_every_attempt`: an IM over the
//!    page-mode limit stored for the unregistered Bob; each delivery attempt at his
//!    registrations is a large-mode INVITE with the stored message's Call-ID and From tag (what
//!    a recipient tells a repeat by) and a higher CSeq, as page mode's MESSAGEs do.
//!
//! Ports 7001, 7003-7009, 7012-7014, 7032-7034, 7041-7049, 7140-7145, 7153-7159, 7198 (helper
//! range).

mod common;
mod im_common;

use im_common::bodies::{cpim_asking, imdn_of, rp_submit, rp_submit_rd};
#[cfg(feature = "redis")]
use im_common::standalone::bind_with_events;
#[cfg(feature = "redis")]
use im_common::standalone::redis;
use im_common::standalone::{
    assert_quiet, im_config, invite_answering_scscf, next, next_to, scscf, set, start_crashable,
    Client, Seen, Treat, SC,
};
use im_common::LO;
use ims::nf::im_server::{ImServer, ImServerConfig};
use ims::sip::OwnedMessage;
use ims::sms::{self, answer, Direction, FailureCause, RpBody, Status, Tpdu};
use std::net::SocketAddr;
use std::time::Duration;

const ALICE: &str = "sip:alice@ims.example.org";
const BOB: &str = "sip:bob@ims.example.org";
const SMS: &str = "application/vnd.3gpp.sms";

/// An IM server on `port` toward the S-CSCF on `scscf`: Alice +15550001, Bob +15550002,
/// network IMDNs, TR1N (`ack_wait`) 2 s, a back-off of 2 s after the first attempt.
fn config(port: u16, scscf: u16) -> ImServerConfig {
    let mut c = im_config(port, scscf, &[("+15550001", ALICE), ("+15550002", BOB)]);
    c.ipsmgw.ack_wait = 2;
    c
}

/// `cfg` listening on `port` (the restarted server).
fn on(cfg: &ImServerConfig, port: u16) -> ImServerConfig {
    let mut c = cfg.clone();
    c.listen = SocketAddr::new(LO, port);
    c
}

/// Waits (≤ 10 s) until `f` holds.
async fn until(what: &str, f: impl Fn() -> bool) {
    for _ in 0..200 {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("waited in vain for {what}");
}

/// RP-MR and TPDU octets of the MT RP-DATA `m` carries.
fn rp_data(m: &OwnedMessage) -> (u8, Vec<u8>) {
    let rp = sms::decode(m.as_message().body(), Direction::NetworkToMs).expect("RP-DATA");
    match &rp.rp.body {
        RpBody::Data { user_data, .. } => (rp.rp.message_reference, user_data.to_vec()),
        other => panic!("not RP-DATA: {other:?}"),
    }
}

/// The RP-ACK (SMS-DELIVER-REPORT) a UE answers the SMS-DELIVER in `m` with.
fn rp_ack_for(m: &OwnedMessage) -> Vec<u8> {
    let rp = sms::decode(m.as_message().body(), Direction::NetworkToMs).expect("RP-DATA");
    answer::deliver_report_ack(&rp.rp).expect("RP-ACK")
}

/// The TP-Status of the SMS-STATUS-REPORT in `m`.
fn report_status(m: &OwnedMessage) -> Status {
    let rp = sms::decode(m.as_message().body(), Direction::NetworkToMs).expect("RP-DATA");
    match rp.tpdu {
        Some(Tpdu::StatusReport(sr)) => sr.status,
        other => panic!("not a status report: {other:?}"),
    }
}

/// The RP-ACK to Alice and the SMS-DELIVER to Bob, in either order: the SMS-DELIVER.
async fn ack_and_deliver(rx: &mut Seen) -> OwnedMessage {
    let mut deliver = None;
    for _ in 0..2 {
        let (_, m) = next(rx, "the RP-ACK and the SMS-DELIVER").await;
        if m.as_message().request_uri_str() == Some(BOB) {
            deliver = Some(m);
        } else {
            let rp = sms::decode(m.as_message().body(), Direction::NetworkToMs).expect("RP");
            assert_eq!(rp.rp.name(), "RP-ACK");
        }
    }
    deliver.expect("the SMS-DELIVER to Bob")
}

/// A copy of the SMS-DELIVER `first` sent after the restart: a new RP-MR (a new RP
/// transfer), the same TPDU octets (so the same TP-OA and TP-SCTS: a UE recognises what it
/// showed already).
fn assert_same_sms(first: &OwnedMessage, again: &OwnedMessage) {
    let (mr1, tpdu1) = rp_data(first);
    let (mr2, tpdu2) = rp_data(again);
    assert_ne!(mr1, mr2, "a new RP transfer");
    assert_eq!(tpdu1, tpdu2, "the very same SMS-DELIVER TPDU");
    let rp = sms::decode(again.as_message().body(), Direction::NetworkToMs).expect("RP");
    let Some(Tpdu::Deliver(d)) = &rp.tpdu else {
        panic!("an SMS-DELIVER")
    };
    assert_eq!(d.originator.to_string(), "+15550001");
}

/// Bob acknowledges `deliver` (through `ue`); Alice gets one status report "delivered".
async fn bob_acks_once(ue: &mut Client, deliver: &OwnedMessage, seen: &mut Seen) {
    assert_eq!(ue.message(BOB, SC, SMS, rp_ack_for(deliver)).await, 202);
    let (_, sr) = next_to(seen, ALICE, "the status report").await;
    assert_eq!(report_status(&sr), Status::DELIVERED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sms_handed_over_at_a_crash_comes_again_unchanged_after_the_restart() {
    let dir = common::TempDir::new("im", "crash-sms", "IMS_KEEP_STORE");
    let (_script, mut seen) = scscf(7043).await;
    let mut cfg = config(7041, 7043);
    cfg.store = Some(dir.path().to_path_buf());
    let (crash, im) = start_crashable(&cfg).await;
    let mut ue = Client::new(7044, im.local_addr(), "crash").await;
    ue.sms(ALICE, rp_submit(7, 5, "15550002", true, "handed over once"))
        .await;
    // the S-CSCF took the SMS-DELIVER to Bob (200); the IM server dies before his RP-ACK
    let first = ack_and_deliver(&mut seen).await;
    crash.shutdown_background();
    drop(im);

    let im = ImServer::start(on(&cfg, 7042))
        .await
        .expect("IM server restarts");
    assert_eq!(
        im.queued(),
        1,
        "the SMS reloaded with its attempt in flight"
    );
    // no registration, no RP-SMMA: TR1N after the attempt brings it again
    let (_, again) = next_to(&mut seen, BOB, "the SMS-DELIVER again after TR1N").await;
    assert_same_sms(&first, &again);
    let mut ue = Client::new(7045, im.local_addr(), "crash").await;
    bob_acks_once(&mut ue, &again, &mut seen).await;
    assert_eq!(im.queued(), 0);
    assert_quiet(
        &mut seen,
        Duration::from_secs(3),
        "delivered, reported once",
    )
    .await;
    let left = im_common::files_with(dir.path(), "sms");
    assert_eq!(left, 0, "the SMS store is empty");
    im.shutdown();
}

#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_rp_ack_lost_to_a_crash_over_tcp_brings_one_identical_copy_with_redis() {
    use ims::sip::{Method, RequestBuilder};
    use ims::txn::Remote;
    let Some(redis) = common::RedisServer::start("im-crash-tcp").await else {
        return;
    };
    let rport = redis.port();
    let (_script, mut seen) = scscf(7048).await;
    let mut cfg = config(7046, 7048);
    cfg.store = Some(format!("redis://{}/tcpcrash:", redis.addr()).into());
    let (crash, im) = start_crashable(&cfg).await;
    let mut ue = Client::new(7049, im.local_addr(), "crash").await;
    ue.sms(
        ALICE,
        rp_submit(7, 5, "15550002", true, "acknowledged, then lost"),
    )
    .await;
    let first = ack_and_deliver(&mut seen).await;

    // Bob's RP-ACK over TCP while Redis holds writes: taken in, its removal not durable
    let paused = redis::command(rport, &["CLIENT", "PAUSE", "2500", "WRITE"]).await;
    assert_eq!(paused.as_deref(), Some("+OK"));
    let (bob, _bob_events) = bind_with_events(7140, "Bob over TCP").await;
    let to = im.local_addr();
    let ack = RequestBuilder::new(Method::Message, SC)
        .header("Max-Forwards", 70)
        .header("From", format!("<{BOB}>;tag=bobtcp"))
        .header("To", format!("<{SC}>"))
        .header("Call-ID", "crash-tcp-rp-ack")
        .header("CSeq", "1 MESSAGE")
        .header("P-Asserted-Identity", format!("<{BOB}>"))
        .body(SMS, rp_ack_for(&first))
        .build()
        .expect("MESSAGE");
    let sent = tokio::spawn(async move {
        let t = bob.request(ack, Remote::tcp(to)).await.expect("sent");
        tokio::time::timeout(Duration::from_secs(40), t.final_response())
            .await
            .ok()
            .and_then(Result::ok)
            .and_then(|r| r.as_message().status())
    });
    until("Bob's RP-ACK taken in", || im.queued() == 0).await;
    crash.shutdown_background();
    drop(im);
    assert_eq!(
        redis::hlen(rport, "tcpcrash:sms").await,
        Some(1),
        "the removal did not reach Redis"
    );

    let im = ImServer::start(on(&cfg, 7047))
        .await
        .expect("IM server restarts");
    assert_eq!(im.queued(), 1, "reloaded with its attempt in flight");
    // at least once: a copy after TR1N, recognisable as the one Bob showed
    let (_, again) = next_to(&mut seen, BOB, "the SMS-DELIVER again after TR1N").await;
    assert_same_sms(&first, &again);
    let mut ue = Client::new(7141, im.local_addr(), "crash").await;
    bob_acks_once(&mut ue, &again, &mut seen).await;
    assert_quiet(&mut seen, Duration::from_secs(3), "reported once").await;
    im.sync_store().await;
    assert_eq!(redis::hlen(rport, "tcpcrash:sms").await, Some(0));
    // over TCP nothing repeated Bob's MESSAGE: it got no 2xx (a failure, or nothing yet)
    if let Ok(outcome) = tokio::time::timeout(Duration::from_millis(100), sent).await {
        let outcome = outcome.expect("Bob's task");
        assert!(
            !outcome.is_some_and(|c| (200..300).contains(&c)),
            "Bob's MESSAGE was answered 2xx: {outcome:?}"
        );
    }
    im.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_submission_repeated_after_a_crash_with_tp_rd_is_refused_as_a_duplicate() {
    let dir = common::TempDir::new("im", "crash-rd", "IMS_KEEP_STORE");
    let (script, mut seen) = scscf(7144).await;
    let mut cfg = config(7142, 7144);
    cfg.store = Some(dir.path().to_path_buf());
    set(&script, BOB, Treat::Answer(480));
    let (crash, im) = start_crashable(&cfg).await;
    let mut ue = Client::new(7145, im.local_addr(), "dup").await;
    let text = "not twice";
    ue.sms(ALICE, rp_submit_rd(7, 5, "15550002", true, false, text))
        .await;
    // stored (Bob unregistered); Alice's RP-ACK is lost with the crash
    let first = ack_and_deliver(&mut seen).await;
    crash.shutdown_background();
    drop(im);

    let im = ImServer::start(on(&cfg, 7143))
        .await
        .expect("IM server restarts");
    assert_eq!(im.queued(), 1);
    let mut ue = Client::new(7153, im.local_addr(), "dup").await;
    // TS 23.040 §9.2.3.6: the repeat keeps TP-MR 5 and sets TP-RD (a new RP transfer, RP-MR 8)
    ue.sms(ALICE, rp_submit_rd(8, 5, "15550002", true, true, text))
        .await;
    let (_, e) = next_to(&mut seen, ALICE, "the answer to the repeat").await;
    let rp = sms::decode(e.as_message().body(), Direction::NetworkToMs).expect("RP");
    assert_eq!((rp.rp.name(), rp.rp.message_reference), ("RP-ERROR", 8));
    let Some(Tpdu::SubmitReport(r)) = &rp.tpdu else {
        panic!("an SMS-SUBMIT-REPORT")
    };
    assert_eq!(r.failure_cause, Some(FailureCause::DUPLICATE_SM));
    assert_eq!(im.queued(), 1, "one copy held");
    // Bob registers: one SMS-DELIVER, the same message
    set(&script, BOB, Treat::Answer(200));
    assert_eq!(ue.third_party_register(BOB, 7144).await, 200);
    let (_, deliver) = next_to(&mut seen, BOB, "the SMS-DELIVER").await;
    assert_eq!(rp_data(&deliver).1, rp_data(&first).1);
    bob_acks_once(&mut ue, &deliver, &mut seen).await;
    assert_eq!(im.queued(), 0);
    assert_quiet(&mut seen, Duration::from_secs(3), "Bob gets it once").await;
    im.shutdown();
}

/// A CPIM IM from Alice to Bob asking for both delivery notifications.
fn cpim(id: &str, text: &str) -> Vec<u8> {
    cpim_asking(
        ALICE,
        BOB,
        id,
        "positive-delivery, negative-delivery",
        "2026-11-26T23:00:00Z",
        text,
    )
}

/// The Call-ID, From tag and CSeq number of a request.
fn request_identity(m: &OwnedMessage) -> (String, String, u32) {
    let m = m.as_message();
    let h = |n: &str| m.header_str(n).unwrap_or_default().trim().to_owned();
    let tag = m
        .from()
        .ok()
        .flatten()
        .and_then(|f| f.tag().map(str::to_owned))
        .unwrap_or_default();
    let cseq = h("CSeq")
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    (h("Call-ID"), tag, cseq)
}

/// The ports of one run of [`im_handed_over_at_a_crash`].
struct Ports {
    im: u16,
    restarted: u16,
    scscf: u16,
    ue: u16,
    ue2: u16,
}

/// A CPIM and a text/plain IM stored for the unregistered Bob (store `cfg.store`); Bob's
/// registration sends the CPIM one, the S-CSCF holds it, the IM server crashes; the restarted
/// one delivers both after TR1N with no new registration, the CPIM one unchanged, and Alice
/// gets one `delivered` IMDN.
async fn im_handed_over_at_a_crash(cfg: ImServerConfig, p: Ports) -> ImServer {
    let (script, mut seen) = scscf(p.scscf).await;
    set(&script, BOB, Treat::Answer(480));
    let (crash, im) = start_crashable(&on(&cfg, p.im)).await;
    let mut ue = Client::new(p.ue, im.local_addr(), "flight").await;
    let body = cpim("m-flight", "in flight at the crash");
    assert_eq!(
        ue.message(ALICE, BOB, "message/cpim", body.clone()).await,
        202
    );
    let plain = b"after it".to_vec();
    assert_eq!(
        ue.message(ALICE, BOB, "text/plain", plain.clone()).await,
        202
    );
    for _ in 0..2 {
        assert_eq!(
            next_to(&mut seen, BOB, "the relayed IMs").await.0,
            Some(480)
        );
    }
    assert_eq!(im.stored_ims(), 2);
    // Bob registers: the CPIM IM goes out and stays unanswered; the server dies
    set(&script, BOB, Treat::Hold);
    assert_eq!(ue.third_party_register(BOB, p.scscf).await, 200);
    let (code, out) = next_to(&mut seen, BOB, "the stored IM handed over").await;
    assert_eq!((code, out.as_message().body()), (None, &body[..]));
    crash.shutdown_background();
    drop(im);

    set(&script, BOB, Treat::Answer(200));
    let im = ImServer::start(on(&cfg, p.restarted))
        .await
        .expect("IM server restarts");
    assert_eq!(im.stored_ims(), 2, "both reloaded");
    // no registration: the attempt in flight comes again after TR1N, then what waited behind
    let (_, again) = next_to(&mut seen, BOB, "the IM again after TR1N").await;
    assert_eq!(again.as_message().body(), &body[..], "same imdn.Message-ID");
    // the same message as the one in flight at the crash: Call-ID and From tag (what a
    // recipient tells a repeat by, whatever the content type), a higher CSeq
    let (was, now) = (request_identity(&out), request_identity(&again));
    assert_eq!(
        (&now.0, &now.1),
        (&was.0, &was.1),
        "the same Call-ID and From tag"
    );
    assert!(
        now.2 > was.2,
        "a later attempt: CSeq {} after {}",
        now.2,
        was.2
    );
    let mut rest = Vec::new();
    for _ in 0..2 {
        rest.push(next(&mut seen, "the IMDN and the text/plain IM").await.1);
    }
    let (to_bob, to_alice): (Vec<_>, Vec<_>) = rest
        .into_iter()
        .partition(|m| m.as_message().request_uri_str() == Some(BOB));
    assert_eq!(to_bob.len(), 1, "the text/plain IM");
    assert_eq!(to_bob[0].as_message().body(), &plain[..]);
    assert_ne!(
        request_identity(&to_bob[0]).0,
        request_identity(&out).0,
        "each stored IM has its own"
    );
    let x = imdn_of(&to_alice[0]);
    assert_eq!(
        (x.message_id.as_str(), x.status.as_str()),
        ("m-flight", "delivered")
    );
    until("the store emptied", || im.stored_ims() == 0).await;
    let mut ue = Client::new(p.ue2, im.local_addr(), "flight").await;
    assert_eq!(ue.third_party_register(BOB, p.scscf).await, 200);
    assert_quiet(&mut seen, Duration::from_secs(3), "nothing more").await;
    im
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stored_im_handed_over_at_a_crash_comes_again_after_the_restart_with_files() {
    let dir = common::TempDir::new("im", "crash-im", "IMS_KEEP_STORE");
    let mut cfg = config(7154, 7156);
    cfg.store = Some(dir.path().to_path_buf());
    let ports = Ports {
        im: 7154,
        restarted: 7155,
        scscf: 7156,
        ue: 7157,
        ue2: 7158,
    };
    let im = im_handed_over_at_a_crash(cfg, ports).await;
    let left = im_common::files_with(&dir.path().join("im"), "json");
    assert_eq!(left, 0, "the file store is empty");
    im.shutdown();
}

#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stored_im_handed_over_at_a_crash_comes_again_after_the_restart_with_redis() {
    let Some(redis) = common::RedisServer::start("im-crash-im").await else {
        return;
    };
    let mut cfg = config(7159, 7001);
    cfg.store = Some(format!("redis://{}/imcrash:", redis.addr()).into());
    let ports = Ports {
        im: 7159,
        restarted: 7198,
        scscf: 7001,
        ue: 7003,
        ue2: 7004,
    };
    let im = im_handed_over_at_a_crash(cfg, ports).await;
    im.sync_store().await;
    assert_eq!(redis::hlen(redis.port(), "imcrash:im").await, Some(0));
    im.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cpim_im_sent_again_while_held_is_kept_once() {
    let dir = common::TempDir::new("im", "crash-again", "IMS_KEEP_STORE");
    let (script, mut seen) = scscf(7007).await;
    let mut cfg = config(7005, 7007);
    cfg.store = Some(dir.path().to_path_buf());
    set(&script, BOB, Treat::Answer(480));
    let (crash, im) = start_crashable(&cfg).await;
    let mut ue = Client::new(7008, im.local_addr(), "again").await;
    let body = cpim("m-again", "sent twice, kept once");
    assert_eq!(
        ue.message(ALICE, BOB, "message/cpim", body.clone()).await,
        202
    );
    assert_eq!(next_to(&mut seen, BOB, "the relayed IM").await.0, Some(480));
    crash.shutdown_background();
    drop(im);

    let im = ImServer::start(on(&cfg, 7006))
        .await
        .expect("IM server restarts");
    let mut ue = Client::new(7009, im.local_addr(), "again").await;
    // Alice did not hear her 202: the same message again (a new transaction)
    assert_eq!(
        ue.message(ALICE, BOB, "message/cpim", body.clone()).await,
        202
    );
    assert_quiet(
        &mut seen,
        Duration::from_secs(1),
        "held already: not relayed",
    )
    .await;
    assert_eq!(im.stored_ims(), 1, "kept once");
    // a different message of Alice's is relayed (and kept) as usual
    let other = cpim("m-other", "another one");
    assert_eq!(
        ue.message(ALICE, BOB, "message/cpim", other.clone()).await,
        202
    );
    assert_eq!(next_to(&mut seen, BOB, "the other IM").await.0, Some(480));
    assert_eq!(im.stored_ims(), 2);
    set(&script, BOB, Treat::Answer(200));
    assert_eq!(ue.third_party_register(BOB, 7007).await, 200);
    let mut to_bob = Vec::new();
    let mut imdns = Vec::new();
    for _ in 0..4 {
        let (_, m) = next(&mut seen, "the two IMs and their IMDNs").await;
        if m.as_message().request_uri_str() == Some(BOB) {
            to_bob.push(m.as_message().body().to_vec());
        } else {
            imdns.push(imdn_of(&m).message_id);
        }
    }
    assert_eq!(to_bob, [body, other]);
    assert_eq!(imdns, ["m-again", "m-other"]);
    assert_quiet(&mut seen, Duration::from_secs(2), "each once").await;
    assert_eq!(im.stored_ims(), 0);
    im.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_im_meeting_408_in_time_is_kept_a_late_failure_is_relayed() {
    let (script, mut seen) = scscf(7013).await;
    let mut cfg = config(7012, 7013);
    cfg.page_answer_wait = Duration::from_secs(1);
    let im = ImServer::start(cfg).await.expect("IM server");
    let mut ue = Client::new(7014, im.local_addr(), "timeout").await;

    // a node on the way gives up on Bob at once: the 202 still reaches Alice, kept
    set(&script, BOB, Treat::Answer(408));
    let body = cpim("m-408", "kept after a 408");
    assert_eq!(
        ue.message(ALICE, BOB, "message/cpim", body.clone()).await,
        202
    );
    assert_eq!(next_to(&mut seen, BOB, "the relayed IM").await.0, Some(408));
    assert_eq!(im.stored_ims(), 1);
    set(&script, BOB, Treat::Answer(200));
    let (code, m) = next_to(&mut seen, BOB, "the IM after the back-off").await;
    assert_eq!((code, m.as_message().body()), (Some(200), &body[..]));
    let (_, n) = next_to(&mut seen, ALICE, "the delivered IMDN").await;
    assert_eq!(imdn_of(&n).status, "delivered");
    assert_eq!(im.stored_ims(), 0);

    // a failure after page_answer_wait: relayed as it is, nothing kept
    set(&script, BOB, Treat::Late(503, Duration::from_millis(1500)));
    let late = cpim("m-late", "too late to keep");
    assert_eq!(ue.message(ALICE, BOB, "message/cpim", late).await, 503);
    assert_eq!(next_to(&mut seen, BOB, "the relayed IM").await.0, Some(503));
    let (_, n) = next_to(&mut seen, ALICE, "the failed IMDN").await;
    let x = imdn_of(&n);
    assert_eq!(
        (x.message_id.as_str(), x.status.as_str()),
        ("m-late", "failed")
    );
    assert_eq!(im.stored_ims(), 0);
    set(&script, BOB, Treat::Answer(200));
    assert_quiet(&mut seen, Duration::from_secs(3), "not retried").await;
    im.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stored_large_im_keeps_its_call_id_and_from_tag_on_every_attempt() {
    // every INVITE toward Bob meets 480 (not registered): the IM waits for his registration
    let mut invites = invite_answering_scscf(7033, 480).await;
    let im = ImServer::start(config(7032, 7033))
        .await
        .expect("IM server");
    let mut ue = Client::new(7034, im.local_addr(), "large").await;
    let body = vec![b'x'; 3000];
    assert!(
        body.len() > ims::nf::im_server::PAGE_MODE_LIMIT,
        "large mode"
    );
    assert_eq!(ue.message(ALICE, BOB, "text/plain", body).await, 202);
    let relayed = next(&mut invites, "the relayed INVITE").await;
    assert_eq!(im.stored_ims(), 1, "kept for Bob's registration");
    // two registrations of Bob: one delivery attempt each, both answered 480
    let mut attempts = Vec::new();
    for n in 1..=2 {
        assert_eq!(ue.third_party_register(BOB, 7033).await, 200);
        let inv = next(&mut invites, "a delivery attempt").await;
        assert_eq!(inv.as_message().request_uri_str(), Some(BOB));
        let offer = String::from_utf8_lossy(inv.as_message().body()).into_owned();
        assert!(
            offer.contains("m=message ") && offer.contains("TCP/MSRP"),
            "attempt {n} is a large-mode INVITE with an MSRP offer: {offer}"
        );
        attempts.push(request_identity(&inv));
        until("the IM stored again", || im.stored_ims() == 1).await;
    }
    let (first, second) = (&attempts[0], &attempts[1]);
    assert!(!first.0.is_empty() && !first.1.is_empty(), "{first:?}");
    assert_eq!(
        (&second.0, &second.1),
        (&first.0, &first.1),
        "the same Call-ID and From tag on every attempt"
    );
    assert!(
        second.2 > first.2,
        "a later attempt: CSeq {} after {}",
        second.2,
        first.2
    );
    assert!(
        first.0.ends_with("@ims.example.org"),
        "the stored message's Call-ID: {}",
        first.0
    );
    // the first relay was not stored yet: an exchange of its own
    assert_ne!(request_identity(&relayed).0, first.0);
    im.shutdown();
}
