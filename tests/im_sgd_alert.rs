//! Store and forward with an external SMSC (TS 23.040 §10.3, TS 29.338 §5.3.2.5/§6.1): the
//! IP-SM-GW (`ImServerConfig::smsc`) remembers which SMSC waits for a recipient whose MT
//! delivery failed (absent → MNRF, memory capacity exceeded → MCEF) and alerts it with
//! Alert-Service-Centre (ALR, sent on the SGd connection with the S6c Application-Id) when the
//! recipient registers (absent, memory not full) or sends RP-SMMA; the RP-SMMA is answered
//! RP-ACK once the alerts went through, RP-ERROR with the TS 23.040 §11.2 cause when one
//! failed. Our Diameter node is the SMSC (advertising SGd and S6c), a scripted S-CSCF stands
//! in front of the UEs.
//!
//! 1. `the_smsc_is_alerted_when_an_absent_user_registers_and_on_a_full_memorys_rp_smma`:
//!    TFR for unregistered Carol → 5550, no ALR; Carol registers → one ALR with the right AVPs
//!    (SC-Address of the TFR, MSISDN-Alert + IMSI, SMS-GMSC-Alert-Event, Serving-Node = the
//!    IP-SM-GW, Destination-Host/-Realm = the TFR's origin); TFR → Bob's RP-ERROR 22 → 5555;
//!    Bob re-registering alerts nothing (memory still full); his RP-SMMA → ALR → RP-ACK; an
//!    alert answered 5012 → RP-ERROR 38 and the SMSC stays waiting (the next RP-SMMA alerts it
//!    and gets RP-ACK); one answered 5001 → RP-ERROR 30 and it is dropped; an RP-SMMA with
//!    nothing waiting → RP-ACK, no ALR; a TFR of the waiting SMSC that Bob takes after all
//!    clears its entry (no ALR on the next RP-SMMA).
//! 2. `what_waits_survives_a_restart_with_the_file_store` and `…_with_redis`: Carol absent,
//!    the IM server restarted on the same store: her registration alerts the SMSC.
//!
//! Ports 7460-7479 (helper range).

mod common;
mod im_common;

use im_common::sgd::{send_tfr, tfa_of, tfr, IPSMGW_HOST, SECS, SMSC_HOST, SMS_REALM};
use im_common::standalone::{im_config, next, scscf, Client, Seen};
use im_common::LO;
use ims::diameter::base::{AuthSessionState, VendorSpecificApplicationId};
use ims::diameter::dict::{app, command as cmd};
use ims::diameter::peer::Application;
use ims::diameter::s6c::{Ala, Alr};
use ims::diameter::sgd::tbcd;
use ims::diameter::{Command, ExperimentalResultCode, Outcome};
use ims::net::diameter::{Node, NodeConfig};
use ims::nf::im_server::{ImServer, ImServerConfig, SmscConfig};
use ims::sip::OwnedMessage;
use ims::sms::{answer, Direction, FailureCause, RpBody, RpCause, RpMessage};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

const BOB: &str = "sip:bob@ims.example.org";
const CAROL: &str = "sip:carol@ims.example.org";
const SC: &str = im_common::standalone::SC;

/// The SMSC: our Diameter node advertising SGd and S6c on 127.0.0.1:`port`; every ALR it
/// gets goes to the returned channel and is answered with the code in `code` (2001, or an
/// error: 5001 as DIAMETER_ERROR_USER_UNKNOWN, others as a Result-Code).
async fn smsc(port: u16, code: Arc<AtomicU32>) -> (Node, mpsc::UnboundedReceiver<Vec<u8>>) {
    let mut c = NodeConfig::new(SMSC_HOST, SMS_REALM);
    c.applications = vec![
        Application::tgpp_auth(app::SGD),
        Application::tgpp_auth(app::S6C),
    ];
    c.watchdog_jitter = Duration::ZERO;
    c.request_timeout = SECS;
    let node = Node::new(c);
    node.listen(SocketAddr::new(LO, port))
        .await
        .expect("SMSC listens");
    let (tx, rx) = mpsc::unbounded_channel();
    node.handle(app::S6C, cmd::ALERT_SERVICE_CENTRE, move |req| {
        let tx = tx.clone();
        let code = code.load(Ordering::SeqCst);
        async move {
            let v = req.message.view();
            let _ = tx.send(req.message.bytes().to_vec());
            let alr = Alr::decode(&v).expect("a valid ALR");
            let mut ala = Ala::answering(&alr, SMSC_HOST, SMS_REALM);
            ala.set_outcome(match code {
                2001 => Outcome::SUCCESS,
                5001 => Outcome::tgpp(ExperimentalResultCode::UserUnknown),
                c => Outcome::from_result_code(c),
            });
            ala.encode_answer(v.header())
        }
    });
    (node, rx)
}

/// The IM server on `port` toward the S-CSCF on `scscf_port`, Bob and Carol numbered with
/// IMSIs, the SMSC at 127.0.0.1:`smsc_port`.
fn config(port: u16, scscf_port: u16, smsc_port: u16) -> ImServerConfig {
    let mut c = im_config(
        port,
        scscf_port,
        &[("+15550002", BOB), ("+15550003", CAROL)],
    );
    assert!(c.numbering.set_imsi("+15550002", "001010000000002"));
    assert!(c.numbering.set_imsi("+15550003", "001010000000003"));
    let mut s = SmscConfig::new(
        SocketAddr::new(LO, smsc_port),
        SMSC_HOST,
        SMS_REALM,
        "ims.example.org",
    );
    s.request_timeout = Duration::from_secs(2);
    s.mt_answer_wait = Duration::from_secs(2);
    c.smsc = Some(s);
    c
}

async fn start(cfg: ImServerConfig, smsc: &Node) -> ImServer {
    let im = ImServer::start(cfg).await.expect("IM server");
    assert!(im.wait_smsc(SECS).await, "the SGd connection opens");
    if let Err(e) = smsc.wait_open(IPSMGW_HOST, SECS).await {
        panic!("the SMSC sees the IP-SM-GW: {e} {:?}", smsc.peers());
    }
    im
}

/// The next ALR the SMSC got, checked against what the IP-SM-GW must send for the user with
/// MSISDN `msisdn` and IMSI `imsi`.
async fn next_alr(alrs: &mut mpsc::UnboundedReceiver<Vec<u8>>, msisdn: &str, imsi: &str) {
    let wire = next(alrs, "the ALR").await;
    let m = ims::diameter::Message::parse(&wire).unwrap();
    // Alert-Service-Centre with the S6c Application-Id, on the SGd connection
    assert_eq!(m.header().application_id, app::S6C);
    assert_eq!(m.header().code, cmd::ALERT_SERVICE_CENTRE);
    assert!(m.is_request());
    let alr = Alr::decode(&m).expect("a valid ALR");
    assert_eq!(
        alr.vendor_specific_application_id,
        Some(VendorSpecificApplicationId::s6c())
    );
    assert_eq!(alr.auth_session_state, AuthSessionState::NoStateMaintained);
    assert_eq!(alr.origin_host, IPSMGW_HOST);
    assert_eq!(alr.origin_realm, "ims.example.org");
    // to the SMSC that sent the TFR, for its service centre
    assert_eq!(alr.destination_host.as_deref(), Some(SMSC_HOST));
    assert_eq!(alr.destination_realm, SMS_REALM);
    assert_eq!(&*alr.sc_address, &tbcd("447900000001").unwrap()[..]);
    // MSISDN-Alert and the IMSI the TFR named
    assert_eq!(
        alr.user_identifier.msisdn.as_deref(),
        Some(&tbcd(msisdn).unwrap()[..])
    );
    assert_eq!(alr.user_identifier.user_name.as_deref(), Some(imsi));
    assert!(alr.smsmi_correlation_id.is_none());
    assert_eq!(alr.sms_gmsc_alert_event, Some(1), "UE available for MT SMS");
    let node = alr.serving_node.as_ref().expect("Serving-Node");
    assert_eq!(node.ip_sm_gw_name.as_deref(), Some(IPSMGW_HOST));
    assert_eq!(node.ip_sm_gw_realm.as_deref(), Some("ims.example.org"));
}

/// No ALR for a while.
async fn no_alr(alrs: &mut mpsc::UnboundedReceiver<Vec<u8>>, why: &str) {
    if let Ok(Some(_)) = tokio::time::timeout(Duration::from_millis(700), alrs.recv()).await {
        panic!("no ALR: {why}");
    }
}

/// The RP message (network → MS) of the next MESSAGE the S-CSCF got for `to`.
async fn next_rp(seen: &mut Seen, to: &str) -> OwnedMessage {
    let (code, m) = next(seen, to).await;
    assert_eq!(m.as_message().request_uri_str(), Some(to));
    assert_eq!(code, Some(200));
    m
}

fn rp_of(m: &OwnedMessage) -> RpMessage<'_> {
    RpMessage::decode(m.as_message().body(), Direction::NetworkToMs).expect("an RP message")
}

/// Bob sends RP-SMMA `mr`: the answer he gets (RP-ACK: `None`, RP-ERROR: its cause).
async fn smma(ue: &mut Client, seen: &mut Seen, mr: u8) -> Option<RpCause> {
    let smma = RpMessage::smma(mr).encode().unwrap();
    assert_eq!(
        ue.message(BOB, SC, "application/vnd.3gpp.sms", smma).await,
        202
    );
    let m = next_rp(seen, BOB).await;
    let rp = rp_of(&m);
    assert_eq!(rp.message_reference, mr);
    match rp.body {
        RpBody::Ack { .. } => None,
        RpBody::Error { cause, .. } => Some(cause),
        b => panic!("RP-ACK or RP-ERROR: {b:?}"),
    }
}

/// A TFR for Bob that his memory refuses (RP-ERROR 22): TFA 5555 memory capacity exceeded.
async fn bob_memory_full(smsc: &Node, ue: &mut Client, seen: &mut Seen) {
    let t = send_tfr(smsc, tfr(smsc, "001010000000002"));
    let m = next_rp(seen, BOB).await;
    let err = answer::deliver_report_error(
        &rp_of(&m),
        RpCause::MEMORY_CAPACITY_EXCEEDED,
        FailureCause::MEMORY_CAPACITY_EXCEEDED,
    )
    .unwrap();
    assert_eq!(
        ue.message(BOB, SC, "application/vnd.3gpp.sms", err).await,
        202
    );
    let a = t.await.unwrap();
    let tfa = tfa_of(&a);
    assert_eq!(
        tfa.outcome(),
        Some(Outcome::tgpp(ExperimentalResultCode::SmDeliveryFailure))
    );
}

/// A TFR for unregistered Carol: TFA 5550 (absent, diagnostic 11).
async fn carol_absent(smsc: &Node) {
    let a = send_tfr(smsc, tfr(smsc, "001010000000003")).await.unwrap();
    let tfa = tfa_of(&a);
    assert_eq!(
        tfa.outcome(),
        Some(Outcome::tgpp(ExperimentalResultCode::AbsentUser))
    );
    assert_eq!(tfa.absent_user_diagnostic_sm, Some(11));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_smsc_is_alerted_when_an_absent_user_registers_and_on_a_full_memorys_rp_smma() {
    let code = Arc::new(AtomicU32::new(2001));
    let (smsc, mut alrs) = smsc(7461, code.clone()).await;
    let (_script, mut seen) = scscf(7462).await;
    let im = start(config(7460, 7462, 7461), &smsc).await;
    let mut ue = Client::new(7463, im.local_addr(), "alert").await;

    // 1. Carol is absent: the SMSC is told so and waits; her registration alerts it
    carol_absent(&smsc).await;
    assert_eq!(im.message_waiting(), 1);
    no_alr(&mut alrs, "Carol is still absent").await;
    assert_eq!(ue.third_party_register(CAROL, 7462).await, 200);
    next_alr(&mut alrs, "15550003", "001010000000003").await;
    assert_eq!(im.stats().sgd_alr, 1);
    assert_eq!(im.message_waiting(), 0);
    // registering again alerts nothing more
    assert_eq!(ue.third_party_register(CAROL, 7462).await, 200);
    no_alr(&mut alrs, "nothing waits for Carol any more").await;

    // 2. Bob's memory is full: his registration does not alert (MCEF), his RP-SMMA does
    assert_eq!(ue.third_party_register(BOB, 7462).await, 200);
    bob_memory_full(&smsc, &mut ue, &mut seen).await;
    assert_eq!(im.message_waiting(), 1);
    assert_eq!(ue.third_party_register(BOB, 7462).await, 200);
    no_alr(&mut alrs, "Bob's memory is still full").await;
    assert_eq!(smma(&mut ue, &mut seen, 5).await, None, "RP-ACK");
    next_alr(&mut alrs, "15550002", "001010000000002").await;
    assert_eq!(im.message_waiting(), 0);

    // 3. an alert the SMSC cannot take (5012): RP-ERROR 38, the SMSC stays waiting and the
    //    next RP-SMMA alerts it again
    bob_memory_full(&smsc, &mut ue, &mut seen).await;
    code.store(5012, Ordering::SeqCst);
    assert_eq!(
        smma(&mut ue, &mut seen, 6).await,
        Some(RpCause::NETWORK_OUT_OF_ORDER)
    );
    next_alr(&mut alrs, "15550002", "001010000000002").await;
    assert_eq!(
        im.message_waiting(),
        1,
        "still waiting after a failed alert"
    );
    code.store(2001, Ordering::SeqCst);
    assert_eq!(smma(&mut ue, &mut seen, 7).await, None);
    next_alr(&mut alrs, "15550002", "001010000000002").await;
    assert_eq!(im.message_waiting(), 0);

    // 4. the SMSC does not know the user (5001): RP-ERROR 30, nothing kept
    bob_memory_full(&smsc, &mut ue, &mut seen).await;
    code.store(5001, Ordering::SeqCst);
    assert_eq!(
        smma(&mut ue, &mut seen, 8).await,
        Some(RpCause::UNKNOWN_SUBSCRIBER)
    );
    next_alr(&mut alrs, "15550002", "001010000000002").await;
    assert_eq!(im.message_waiting(), 0);

    // 5. an RP-SMMA with nothing waiting: RP-ACK, no ALR
    code.store(2001, Ordering::SeqCst);
    assert_eq!(smma(&mut ue, &mut seen, 9).await, None);
    no_alr(&mut alrs, "nothing waits for Bob").await;
    assert_eq!(im.stats().sgd_alr, 5);

    // 6. the SMSC retries on its own and Bob takes it: that SMSC waits no more
    bob_memory_full(&smsc, &mut ue, &mut seen).await;
    assert_eq!(im.message_waiting(), 1);
    let t = send_tfr(&smsc, tfr(&smsc, "001010000000002"));
    let m = next_rp(&mut seen, BOB).await;
    let ack = answer::deliver_report_ack(&rp_of(&m)).unwrap();
    assert_eq!(
        ue.message(BOB, SC, "application/vnd.3gpp.sms", ack).await,
        202
    );
    assert_eq!(tfa_of(&t.await.unwrap()).outcome(), Some(Outcome::SUCCESS));
    assert_eq!(im.message_waiting(), 0, "delivered: nothing waits");
    assert_eq!(smma(&mut ue, &mut seen, 10).await, None);
    no_alr(&mut alrs, "the SMSC delivered meanwhile").await;
    assert_eq!(im.stats().sgd_alr, 5);
    // nothing stored by the IP-SM-GW itself
    assert_eq!(im.queued(), 0);
    im.shutdown();
    smsc.shutdown();
}

/// Carol is absent, the IM server restarts on `store`, Carol registers: the SMSC is alerted.
async fn survives_a_restart(store: std::path::PathBuf, ports: [u16; 5]) -> ImServer {
    let [port, smsc_port, scscf_port, ue_port, restarted] = ports;
    let code = Arc::new(AtomicU32::new(2001));
    let (smsc, mut alrs) = smsc(smsc_port, code).await;
    let (_script, _seen) = scscf(scscf_port).await;
    let mut cfg = config(port, scscf_port, smsc_port);
    cfg.store = Some(store.clone());
    let im = start(cfg, &smsc).await;
    carol_absent(&smsc).await;
    assert_eq!(im.message_waiting(), 1);
    im.sync_store().await;
    im.shutdown();
    drop(im);
    // a new server (another SIP port: the old socket may linger) on the same store; (the
    // SMSC's side of the new connection stays in the RFC 3539 REOPEN watchdog state for a
    // while after the old one's DPR, so only our side is waited for: the ALR is ours)
    let mut cfg = config(restarted, scscf_port, smsc_port);
    cfg.store = Some(store);
    let im = ImServer::start(cfg).await.expect("IM server");
    assert!(im.wait_smsc(SECS).await, "the SGd connection opens again");
    assert_eq!(im.message_waiting(), 1, "read back from the store");
    let mut ue = Client::new(ue_port, im.local_addr(), "restart").await;
    assert_eq!(ue.third_party_register(CAROL, scscf_port).await, 200);
    next_alr(&mut alrs, "15550003", "001010000000003").await;
    assert_eq!(im.message_waiting(), 0);
    im
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_waits_survives_a_restart_with_the_file_store() {
    let dir = common::TempDir::new("im", "mwd", "IMS_KEEP_STORE");
    let im = survives_a_restart(dir.path().to_path_buf(), [7464, 7465, 7466, 7467, 7468]).await;
    // (the record goes once the SMSC's ALA is in, a moment after the SMSC got the ALR)
    let left = || {
        std::fs::read_dir(dir.path().join("mwd"))
            .expect("the mwd directory")
            .count()
    };
    for _ in 0..100 {
        if left() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    im.shutdown();
    assert_eq!(left(), 0, "the record is gone once the alert went through");
}

#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_waits_survives_a_restart_with_redis() {
    let Some(redis) = common::RedisServer::start("im-mwd").await else {
        return;
    };
    let store = format!("redis://{}/imwd:", redis.addr()).into();
    let im = survives_a_restart(store, [7469, 7470, 7471, 7472, 7473]).await;
    // (the record goes once the SMSC's ALA is in, a moment after the SMSC got the ALR)
    let mut left = None;
    for _ in 0..100 {
        im.sync_store().await;
        left = im_common::standalone::redis::hlen(redis.port(), "imwd:mwd").await;
        if left == Some(0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    im.shutdown();
    assert_eq!(
        left,
        Some(0),
        "the record is gone once the alert went through"
    );
}
