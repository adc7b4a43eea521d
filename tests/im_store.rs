//! The IM server's store of messages for unregistered users, with a stand-alone IM server and
//! a scripted S-CSCF (an ims-net endpoint that answers 480 for Bob until he registers, then
//! 200, and hands every request it gets to the test):
//!
//! 1. `sms_and_ims_stored_in_redis_survive_a_restart` (feature `redis`, a real `redis-server`
//!    on a free port of 127.0.0.1): an SMS and two page-mode IMs for Bob are stored (`[im]
//!    store = "redis://…"`), the two Redis hashes hold them, the IM server restarts and reloads
//!    them from Redis, Bob registers (third-party REGISTER), the IMs arrive in order and the
//!    SMS-DELIVER with its text; after Bob's RP-ACK both hashes are empty.
//! 2. `stored_messages_are_durable_before_they_are_acknowledged_and_survive_a_crash`
//!    (feature `redis`): Redis is paused for writes (`CLIENT PAUSE 1500 WRITE`) while Alice
//!    submits an SMS and sends an IM for the unregistered Bob: the RP-ACK and the 202 arrive
//!    only once Redis holds the message (`HLEN` checked the moment each arrives); then the IM
//!    server's runtime is torn down without any shutdown (a crash: its tasks are dropped
//!    mid-flight), a new server loads both from Redis and delivers them when Bob registers.
//! 3. `with_redis_down_an_sms_gets_rp_error_41_and_an_im_its_480` (feature `redis`): Redis
//!    is killed after the IM server started: the SMS is answered RP-ERROR cause 41 (temporary
//!    failure, TS 24.011 Annex E) after `store_wait`, the IM gets the 480, nothing is kept.
//! 4. `stored_im_expires_with_a_failed_imdn`: with `im_validity` = 1 s a stored CPIM message that
//!    asks for `negative-delivery` is dropped and its sender gets the network's `failed` IMDN
//!    (RFC 5438 §7.2); the file store is emptied.
//! 5. `a_redis_that_stops_answering_does_not_hold_the_store` (feature `redis`): Redis behind a
//!    proxy that swallows what it is sent (the connection stays open, nothing comes back): an
//!    SMS meanwhile gets RP-ERROR 41; once the proxy forwards again the writer has dropped the
//!    silent connection (per-round-trip timeout) and the next SMS gets its RP-ACK.
//! 6. `a_crash_right_after_the_recipients_rp_ack_delivers_once` (feature `redis`): Bob's RP-ACK
//!    arrives while Redis is paused for writes: the removal is not durable, so the MESSAGE is not
//!    answered and the status report not sent; the IM server crashes, a new one on the same port
//!    gets the UDP retransmission of Bob's MESSAGE, matches the attempt recorded in flight, and
//!    Alice gets one status report; Bob gets no second SMS-DELIVER.
//! 7. `mt_requests_go_to_the_scscf_that_registered_the_recipient`: two scripted S-CSCFs; Bob's
//!    third-party REGISTER comes from the second (its Contact): his SMS-DELIVER goes there, the
//!    RP-ACK to Alice (no third-party registration) to the configured one, and after Bob's
//!    de-registration his SMS go to the configured one again.
//! 8. `msisdn_less_sms_addressed_by_sip_uri` (TS 24.341 Annex B.7): Dave (no MSISDN) submits
//!    an SMS whose TP-DA is the dummy MSISDN with a short-message-info `<To>` naming Carol's
//!    SIP URI (multipart/mixed); the IP-SM-GW sends Carol a MESSAGE to that URI with
//!    `Feature-Caps: *;+g.3gpp.smsip-msisdn-less`, the SMS-DELIVER (TP-OA the dummy MSISDN)
//!    and a short-message-info whose `<From>` is Dave's SIP URI; Carol's RP-ACK completes it.
//! 9. `a_delivery_whose_2xx_is_lost_is_completed_by_its_rp_ack_not_made_twice`: the S-CSCF
//!    passes the SMS-DELIVER on to Bob but answers the IM server 500 (a lost 2xx): the attempt
//!    fails at the SIP level, Bob's RP-ACK still completes the message (status report to
//!    Alice) and the retry timer (6 s back-off) delivers nothing again.
//! 10. `an_acknowledged_removal_reaches_redis_after_an_outage_and_a_restart_delivers_nothing`
//!     (feature `redis`): Redis (behind a proxy that cuts every connection) is unreachable when
//!     Bob's RP-ACK comes, longer than the writer tries one batch; once Redis is back the
//!     removal reaches it without any new write, and a restarted IM server reloads nothing.
//! 11. `a_stored_im_is_gone_from_redis_before_its_delivery_is_notified` (feature `redis`): a
//!     CPIM IM asking for `positive-delivery` is stored for the unregistered Bob (202); Bob
//!     registers while Redis holds writes: the IM reaches him, and the network's `delivered`
//!     IMDN reaches Alice only once Redis no longer holds the record (`HLEN` checked the moment
//!     it arrives), as a short message's status report waits for its removal.
//!
//! Ports 7101-7119 and 7160-7199 (helper range).

mod common;
mod im_common;

use im_common::bodies::{cpim_asking, imdn_of, msisdn_less, rp_submit};
use im_common::standalone::{bind_with_events, next, Client, SC};
#[cfg(feature = "redis")]
use im_common::standalone::{crash_runtime, redis, start_crashable};
use im_common::LO;
#[cfg(feature = "redis")]
use im_common::WAIT;
use ims::msrp::imdn::Notification;
use ims::nf::im_server::{ImServer, ImServerConfig, Numbering};
use ims::sip::OwnedMessage;
#[cfg(feature = "redis")]
use ims::sms::RpBody;
use ims::sms::{self, answer, Direction, Tpdu};
use ims::txn::ua::{Answer, UaEvent};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

const ALICE: &str = "sip:alice@ims.example.org";
const BOB: &str = "sip:bob@ims.example.org";

/// The scripted S-CSCF: MESSAGEs to Bob get 480 while `bob_registered` is false; everything
/// else gets 200 and goes to the returned channel.
async fn scscf(port: u16) -> (Arc<AtomicBool>, mpsc::UnboundedReceiver<OwnedMessage>) {
    let (ep, mut incoming) = bind_with_events(port, "S-CSCF").await;
    let registered = Arc::new(AtomicBool::new(false));
    let (tx, rx) = mpsc::unbounded_channel();
    let reg = registered.clone();
    tokio::spawn(async move {
        while let Some(ev) = incoming.recv().await {
            if let UaEvent::IncomingRequest { txn, msg, .. } = ev {
                let to_bob = msg
                    .as_message()
                    .request_uri_str()
                    .is_some_and(|u| u.contains("bob"));
                if to_bob && !reg.load(Ordering::SeqCst) {
                    let _ = ep.respond(txn, Answer::new(480)).await;
                } else {
                    let _ = ep.respond(txn, Answer::new(200)).await;
                    let _ = tx.send(msg);
                }
            }
        }
    });
    (registered, rx)
}

fn numbering() -> Numbering {
    let mut n = Numbering::new();
    n.add("+15550001", [ALICE]);
    n.add("+15550002", [BOB]);
    n
}

fn config(port: u16, scscf: u16) -> ImServerConfig {
    let mut c = ImServerConfig::new(
        SocketAddr::new(LO, port),
        "ims.example.org",
        &format!("sip:term@127.0.0.1:{scscf}"),
    );
    c.numbering = numbering();
    c.tick = Duration::from_millis(200);
    c
}

#[cfg(feature = "redis")]
fn submit(text: &str) -> Vec<u8> {
    submit_asking(text, false)
}

/// RP-DATA (RP-MR 7) with an SMS-SUBMIT of `text` to +15550002 (Bob), asking for a status
/// report when `srr`.
fn submit_asking(text: &str, srr: bool) -> Vec<u8> {
    rp_submit(7, 5, "15550002", srr, text)
}

async fn until(what: &str, mut f: impl FnMut() -> bool) {
    for _ in 0..100 {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

/// The RP-ACK to Alice and the SMS-DELIVER to Bob (in either order): the SMS-DELIVER's body and
/// the other message.
async fn ack_and_deliver(
    seen: &mut mpsc::UnboundedReceiver<OwnedMessage>,
    what: &str,
) -> (Vec<u8>, Vec<OwnedMessage>) {
    let mut deliver = None;
    let mut others = Vec::new();
    for _ in 0..2 {
        let m = next(seen, what).await;
        if m.as_message().request_uri_str() == Some(BOB) {
            deliver = Some(m.as_message().body().to_vec());
        } else {
            others.push(m);
        }
    }
    (deliver.expect("the SMS-DELIVER reached Bob"), others)
}

/// Bob's RP-ACK to the SMS-DELIVER `deliver`.
fn report_for(deliver: &[u8]) -> Vec<u8> {
    let rp = sms::decode(deliver, Direction::NetworkToMs).expect("RP-DATA");
    answer::deliver_report_ack(&rp.rp).expect("RP-ACK")
}

/// `sr` carries an SMS-STATUS-REPORT.
fn assert_status_report(sr: &OwnedMessage) {
    let rp = sms::decode(sr.as_message().body(), Direction::NetworkToMs).expect("RP-DATA");
    assert!(matches!(rp.tpdu, Some(Tpdu::StatusReport(_))), "{rp:?}");
}

/// Nothing more reaches the S-CSCF for `quiet`.
async fn assert_quiet(
    seen: &mut mpsc::UnboundedReceiver<OwnedMessage>,
    quiet: Duration,
    why: &str,
) {
    assert!(
        tokio::time::timeout(quiet, seen.recv()).await.is_err(),
        "{why}"
    );
}

#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sms_and_ims_stored_in_redis_survive_a_restart() {
    // without persistence: the store outlives the IM server, not Redis
    let Some(r) = RedisSetup::start("im", 7182, 7183, "test:im:").await else {
        return;
    };
    // r.server lives to the end of the test
    let (rport, bob_registered, mut seen, cfg) = (r.rport, r.bob_registered, r.seen, r.cfg);
    let im = ImServer::start(cfg.clone()).await.expect("IM server");
    let mut ue = Client::new(7184, im.local_addr(), "store").await;

    // an SMS for Bob: RP-ACK to Alice, the SMS-DELIVER meets 480 and is stored
    let text = "kept in redis";
    ue.sms(ALICE, submit(text)).await;
    let ack = next(&mut seen, "the RP-ACK to Alice").await;
    let rp = sms::decode(ack.as_message().body(), Direction::NetworkToMs).expect("RP");
    assert_eq!(rp.rp.name(), "RP-ACK");
    until("the SMS stored", || im.stats().sms_failed == 1).await;
    assert_eq!(im.queued(), 1);
    // two page-mode IMs for Bob: 202, stored
    for body in ["first stored IM", "second stored IM"] {
        let code = ue
            .message(ALICE, BOB, "text/plain", body.as_bytes().to_vec())
            .await;
        assert_eq!(code, 202, "accepted for later delivery");
    }
    assert_eq!(im.stored_ims(), 2);
    im.sync_store().await;
    assert_eq!(redis::hlen(rport, "test:im:sms").await, Some(1));
    assert_eq!(redis::hlen(rport, "test:im:im").await, Some(2));

    // restart: everything comes back from Redis (no file anywhere)
    im.shutdown();
    drop(im);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let im = ImServer::start(cfg).await.expect("IM server restarts");
    assert_eq!(im.queued(), 1, "the SMS reloaded from Redis");
    assert_eq!(im.stored_ims(), 2, "the IMs reloaded from Redis");

    // Bob registers: the IMs in order, and the SMS-DELIVER
    bob_registered.store(true, Ordering::SeqCst);
    assert_eq!(ue.third_party_register(BOB, 7182).await, 200);
    let (ims, body) = stored_for_bob(&mut seen, 2).await;
    assert_eq!(ims, ["first stored IM", "second stored IM"], "in order");
    let rp = sms::decode(&body, Direction::NetworkToMs).expect("RP-DATA");
    assert!(matches!(rp.rp.body, RpBody::Data { .. }));
    let Some(Tpdu::Deliver(d)) = &rp.tpdu else {
        panic!("SMS-DELIVER")
    };
    assert_eq!(d.originator.to_string(), "+15550001");
    acknowledge(&mut ue, &im, &body, text, rport, "test:im:").await;
    assert_eq!(im.stored_ims(), 0);
    im.shutdown();
}

/// A `redis-server` (its port `rport`), the scripted S-CSCF and the IM server's configuration
/// storing in that Redis under a key prefix.
#[cfg(feature = "redis")]
struct RedisSetup {
    server: common::RedisServer,
    rport: u16,
    bob_registered: Arc<AtomicBool>,
    seen: mpsc::UnboundedReceiver<OwnedMessage>,
    cfg: ImServerConfig,
}

#[cfg(feature = "redis")]
impl RedisSetup {
    /// Redis tagged `tag` (`None` without `redis-server`), the S-CSCF on `scscf`, the IM
    /// server's configuration on `port` with `store = "redis://…/<prefix>"`.
    async fn start(tag: &str, scscf_port: u16, port: u16, prefix: &str) -> Option<RedisSetup> {
        let server = common::RedisServer::start(tag).await?;
        let rport = server.port();
        let (bob_registered, seen) = scscf(scscf_port).await;
        let mut cfg = config(port, scscf_port);
        cfg.store = Some(format!("redis://127.0.0.1:{rport}/{prefix}").into());
        Some(RedisSetup {
            server,
            rport,
            bob_registered,
            seen,
            cfg,
        })
    }
}

/// What reaches Bob once he registers: the page-mode IMs (in order, until there are `ims` of
/// them) and the body of the SMS-DELIVER.
#[cfg(feature = "redis")]
async fn stored_for_bob(
    seen: &mut mpsc::UnboundedReceiver<OwnedMessage>,
    ims: usize,
) -> (Vec<String>, Vec<u8>) {
    let mut pages = Vec::new();
    let mut deliver = None;
    while pages.len() < ims || deliver.is_none() {
        let m = next(seen, "Bob's stored messages").await;
        let msg = m.as_message();
        assert_eq!(msg.request_uri_str(), Some(BOB));
        if msg.header_str("Content-Type") == Some("application/vnd.3gpp.sms") {
            deliver = Some(msg.body().to_vec());
        } else {
            pages.push(String::from_utf8(msg.body().to_vec()).unwrap());
        }
    }
    (pages, deliver.unwrap())
}

/// Bob acknowledges the SMS-DELIVER `deliver` (whose text is `text`) with RP-ACK: nothing stays
/// queued and both Redis hashes under `prefix` end empty.
#[cfg(feature = "redis")]
async fn acknowledge(
    ue: &mut Client,
    im: &ImServer,
    deliver: &[u8],
    text: &str,
    rport: u16,
    prefix: &str,
) {
    let rp = sms::decode(deliver, Direction::NetworkToMs).expect("RP-DATA");
    assert_eq!(
        rp.tpdu.as_ref().and_then(|t| t.text()).as_deref(),
        Some(text)
    );
    let report = answer::deliver_report_ack(&rp.rp).unwrap();
    ue.sms(BOB, report).await;
    until("the SMS acknowledged", || im.queued() == 0).await;
    im.sync_store().await;
    assert_eq!(redis::hlen(rport, &format!("{prefix}sms")).await, Some(0));
    assert_eq!(redis::hlen(rport, &format!("{prefix}im")).await, Some(0));
}

/// Decodes an RP message the network sent, with its cause when it is an RP-ERROR.
#[cfg(feature = "redis")]
fn rp_of(m: &OwnedMessage) -> (String, Option<u8>) {
    let rp = sms::decode(m.as_message().body(), Direction::NetworkToMs).expect("RP");
    let cause = match rp.rp.body {
        RpBody::Error { cause, .. } => Some(cause.0),
        _ => None,
    };
    (rp.rp.name().to_string(), cause)
}

#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stored_messages_are_durable_before_they_are_acknowledged_and_survive_a_crash() {
    let Some(r) = RedisSetup::start("im-durable", 7188, 7189, "durable:").await else {
        return;
    };
    // r.server lives to the end of the test
    let (rport, bob_registered, mut seen, cfg) = (r.rport, r.bob_registered, r.seen, r.cfg);
    // the IM server on a runtime of its own, so that it can "crash": tearing the runtime down
    // drops every task of the server (the Redis writer included) wherever it stands
    let (crash, im) = start_crashable(&cfg).await;
    let mut ue = Client::new(7190, im.local_addr(), "store").await;

    // Redis holds writes for 1.5 s: the RP-ACK must wait for the stored SMS
    let paused = redis::command(rport, &["CLIENT", "PAUSE", "1500", "WRITE"]).await;
    assert_eq!(paused.as_deref(), Some("+OK"));
    let text = "durable before acknowledged";
    ue.sms(ALICE, submit(text)).await;
    let ack = next(&mut seen, "the RP-ACK to Alice").await;
    let stored_at_ack = redis::hlen(rport, "durable:sms").await;
    assert_eq!(rp_of(&ack), ("RP-ACK".to_string(), None));
    assert_eq!(ack.as_message().request_uri_str(), Some(ALICE));
    assert_eq!(
        stored_at_ack,
        Some(1),
        "the SMS is in Redis when its RP-ACK leaves"
    );
    until("the delivery attempt refused", || {
        im.stats().sms_failed == 1
    })
    .await;

    // the same for a page-mode IM and its 202
    let paused = redis::command(rport, &["CLIENT", "PAUSE", "1500", "WRITE"]).await;
    assert_eq!(paused.as_deref(), Some("+OK"));
    let code = ue
        .message(ALICE, BOB, "text/plain", b"an IM kept durably".to_vec())
        .await;
    let stored_at_202 = redis::hlen(rport, "durable:im").await;
    assert_eq!(code, 202, "accepted for later delivery");
    assert_eq!(
        stored_at_202,
        Some(1),
        "the IM is in Redis when its 202 leaves"
    );
    assert_eq!(im.stats().store_refused, 0);

    // crash: no shutdown, no sync_store
    crash.shutdown_background();
    drop(im);

    let im = ImServer::start(config_with_store(7191, 7188, &cfg))
        .await
        .expect("IM server restarts");
    assert_eq!(im.queued(), 1, "the SMS reloaded from Redis");
    assert_eq!(im.stored_ims(), 1, "the IM reloaded from Redis");
    let mut ue = Client::new(7192, im.local_addr(), "store").await;
    bob_registered.store(true, Ordering::SeqCst);
    assert_eq!(ue.third_party_register(BOB, 7188).await, 200);
    let (pages, body) = stored_for_bob(&mut seen, 1).await;
    assert_eq!(pages, ["an IM kept durably"]);
    acknowledge(&mut ue, &im, &body, text, rport, "durable:").await;
    im.shutdown();
}

/// `cfg` listening on `port` (another port after a crash: the old sockets may linger).
#[cfg(feature = "redis")]
fn config_with_store(port: u16, scscf: u16, cfg: &ImServerConfig) -> ImServerConfig {
    let mut c = config(port, scscf);
    c.store = cfg.store.clone();
    c
}

#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_redis_down_an_sms_gets_rp_error_41_and_an_im_its_480() {
    let Some(RedisSetup {
        server,
        mut seen,
        mut cfg,
        ..
    }) = RedisSetup::start("im-down", 7193, 7194, "down:").await
    else {
        return;
    };
    cfg.store_wait = Duration::from_secs(1);
    let im = ImServer::start(cfg).await.expect("IM server");
    let mut ue = Client::new(7195, im.local_addr(), "store").await;
    // Redis goes away
    drop(server);
    assert_eq!(
        ue.message(
            ALICE,
            SC,
            "application/vnd.3gpp.sms",
            submit("nowhere to keep it")
        )
        .await,
        202,
        "the MESSAGE is accepted (TS 24.341 §5.3.2.4); the RP layer says the rest"
    );
    let answer = next(&mut seen, "the RP answer to Alice").await;
    assert_eq!(answer.as_message().request_uri_str(), Some(ALICE));
    assert_eq!(
        rp_of(&answer),
        ("RP-ERROR".to_string(), Some(41)),
        "temporary failure"
    );
    let rp = sms::decode(answer.as_message().body(), Direction::NetworkToMs).unwrap();
    assert_eq!(rp.rp.message_reference, 7, "names Alice's RP-DATA");
    assert_eq!(im.queued(), 0, "nothing kept");
    let code = ue
        .message(ALICE, BOB, "text/plain", b"nor this".to_vec())
        .await;
    assert_eq!(code, 480, "Bob's own status: not stored, not promised");
    assert_eq!(im.stored_ims(), 0);
    assert_eq!(im.stats().store_refused, 2);
    assert_eq!(im.stats().sms_failed, 0, "no delivery attempt was made");
    im.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stored_im_expires_with_a_failed_imdn() {
    let dir = common::TempDir::new("im", "expiry", "IMS_KEEP_PCAP");
    let (_bob_registered, mut seen) = scscf(7185).await;
    let mut cfg = config(7186, 7185);
    cfg.store = Some(dir.path().join("store"));
    cfg.im_validity = Duration::from_secs(1);
    let im = ImServer::start(cfg).await.expect("IM server");
    let mut ue = Client::new(7187, im.local_addr(), "store").await;
    let cpim = cpim_asking(
        ALICE,
        BOB,
        "Exp-0001",
        "negative-delivery",
        "2026-11-26T03:00:00Z",
        "never read",
    );
    assert_eq!(ue.message(ALICE, BOB, "message/cpim", cpim).await, 202);
    // and one that asks for nothing: dropped silently
    let plain = b"plain, no notification".to_vec();
    assert_eq!(ue.message(ALICE, BOB, "text/plain", plain).await, 202);
    assert_eq!(im.stored_ims(), 2);
    let files = || {
        std::fs::read_dir(dir.path().join("store").join("im"))
            .map(|d| d.count())
            .unwrap_or(0)
    };
    assert_eq!(files(), 2);

    let n = next(&mut seen, "the failed IMDN").await;
    let msg = n.as_message();
    assert_eq!(msg.request_uri_str(), Some(ALICE), "back to the sender");
    assert_eq!(msg.header_str("Content-Type"), Some("message/cpim"));
    let x = imdn_of(&n);
    assert_eq!(x.message_id, "Exp-0001");
    assert_eq!(x.notification, Notification::Delivery);
    assert_eq!(x.status, "failed");
    until("both expired", || im.stats().im_expired == 2).await;
    assert_eq!(im.stored_ims(), 0);
    assert_eq!(files(), 0, "store emptied");
    assert_eq!(im.stats().imdn_sent, 1, "only the one that asked");
    assert_quiet(
        &mut seen,
        Duration::from_millis(500),
        "nothing for the plain one",
    )
    .await;
    im.shutdown();
}

/// How a [`proxy`] fails while its flag is set.
#[cfg(feature = "redis")]
#[derive(Clone, Copy)]
enum Outage {
    /// What a client sends is read and dropped and that connection never forwards again (a
    /// Redis that accepts but never answers); connections whose first bytes come while the
    /// flag is clear work.
    Silent,
    /// Every connection is closed as soon as the client sends on it, and every new one at once
    /// (a Redis that is unreachable: each write fails fast).
    Cut,
}

/// A TCP proxy on 127.0.0.1 (its port) in front of `upstream`, failing as `outage` says while
/// `flag` is set.
#[cfg(feature = "redis")]
async fn proxy(upstream: u16, flag: Arc<AtomicBool>, outage: Outage) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let l = tokio::net::TcpListener::bind((LO, 0))
        .await
        .expect("proxy binds");
    let port = l.local_addr().expect("proxy address").port();
    tokio::spawn(async move {
        while let Ok((client, _)) = l.accept().await {
            if matches!(outage, Outage::Cut) && flag.load(Ordering::SeqCst) {
                continue;
            }
            let Ok(server) = tokio::net::TcpStream::connect((LO, upstream)).await else {
                continue;
            };
            let flag = flag.clone();
            match outage {
                Outage::Silent => {
                    let (mut cr, mut cw) = client.into_split();
                    let (mut sr, mut sw) = server.into_split();
                    tokio::spawn(async move {
                        let mut buf = vec![0; 64 * 1024];
                        let mut dead = false;
                        while let Ok(n) = cr.read(&mut buf).await {
                            if n == 0 {
                                return;
                            }
                            dead |= flag.load(Ordering::SeqCst);
                            if !dead && sw.write_all(&buf[..n]).await.is_err() {
                                return;
                            }
                        }
                    });
                    tokio::spawn(async move {
                        let _ = tokio::io::copy(&mut sr, &mut cw).await;
                    });
                }
                Outage::Cut => {
                    tokio::spawn(async move {
                        let (mut client, mut server) = (client, server);
                        let (mut cr, mut cw) = client.split();
                        let (mut sr, mut sw) = server.split();
                        let (mut up, mut back) = (vec![0; 16 * 1024], vec![0; 16 * 1024]);
                        loop {
                            tokio::select! {
                                r = cr.read(&mut up) => match r {
                                    Ok(n) if n > 0 && !flag.load(Ordering::SeqCst) => {
                                        if sw.write_all(&up[..n]).await.is_err() {
                                            return;
                                        }
                                    }
                                    _ => return,
                                },
                                r = sr.read(&mut back) => match r {
                                    Ok(n) if n > 0 => {
                                        if cw.write_all(&back[..n]).await.is_err() {
                                            return;
                                        }
                                    }
                                    _ => return,
                                },
                            }
                        }
                    });
                }
            }
        }
    });
    port
}

#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_that_stops_answering_does_not_hold_the_store() {
    let Some(r) = RedisSetup::start("im-silent", 7101, 7102, "silent:").await else {
        return;
    };
    let (rport, mut seen, mut cfg) = (r.rport, r.seen, r.cfg);
    let swallow = Arc::new(AtomicBool::new(false));
    let proxy = proxy(rport, swallow.clone(), Outage::Silent).await;
    cfg.store = Some(format!("redis://127.0.0.1:{proxy}/silent:").into());
    cfg.store_wait = Duration::from_secs(4);
    let im = ImServer::start(cfg).await.expect("IM server");
    let mut ue = Client::new(7103, im.local_addr(), "store").await;
    assert_eq!(
        rp_answer_to_alice(&mut ue, &mut seen, "before").await.0,
        "RP-ACK"
    );
    // Redis stops answering on the open connection (and on any opened meanwhile)
    swallow.store(true, Ordering::SeqCst);
    assert_eq!(
        rp_answer_to_alice(&mut ue, &mut seen, "while silent").await,
        ("RP-ERROR".to_string(), Some(41)),
        "not confirmed within store_wait"
    );
    swallow.store(false, Ordering::SeqCst);
    // the writer gives up the silent connection after its timeout and goes on on a new one
    assert_eq!(
        rp_answer_to_alice(&mut ue, &mut seen, "after").await.0,
        "RP-ACK",
        "the writer is not held by the silent connection"
    );
    im.sync_store().await;
    assert_eq!(im.queued(), 2);
    assert_eq!(
        redis::hlen(rport, "silent:sms").await,
        Some(2),
        "the refused one is not kept"
    );
    im.shutdown();
}

/// Alice submits `text`: the RP answer she gets (its name and cause).
#[cfg(feature = "redis")]
async fn rp_answer_to_alice(
    ue: &mut Client,
    seen: &mut mpsc::UnboundedReceiver<OwnedMessage>,
    text: &str,
) -> (String, Option<u8>) {
    ue.sms(ALICE, submit(text)).await;
    loop {
        let m = next(seen, "the RP answer to Alice").await;
        if m.as_message().request_uri_str() == Some(ALICE) {
            return rp_of(&m);
        }
    }
}

/// Starts an IM server with `cfg` on the runtime `rt`, retrying while its port is still held
/// by a crashed predecessor.
#[cfg(feature = "redis")]
async fn start_on(rt: &tokio::runtime::Runtime, cfg: &ImServerConfig) -> ImServer {
    for _ in 0..50 {
        if let Ok(Ok(im)) = rt.spawn(ImServer::start(cfg.clone())).await {
            return im;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the IM server never bound {}", cfg.listen);
}

#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_right_after_the_recipients_rp_ack_delivers_once() {
    let Some(r) = RedisSetup::start("im-ack-crash", 7104, 7105, "ackcrash:").await else {
        return;
    };
    let (rport, bob_registered, mut seen, cfg) = (r.rport, r.bob_registered, r.seen, r.cfg);
    bob_registered.store(true, Ordering::SeqCst);
    let crash = crash_runtime();
    let im = start_on(&crash, &cfg).await;
    let mut ue = Client::new(7106, im.local_addr(), "store").await;
    let text = "delivered exactly once";
    ue.sms(ALICE, submit_asking(text, true)).await;
    // the RP-ACK to Alice and the SMS-DELIVER to Bob (in either order)
    let (deliver, others) = ack_and_deliver(&mut seen, "the RP-ACK and the SMS-DELIVER").await;
    for m in &others {
        assert_eq!(rp_of(m).0, "RP-ACK");
    }
    let report = report_for(&deliver);

    // Bob's RP-ACK while Redis holds writes: the removal cannot be confirmed
    let paused = redis::command(rport, &["CLIENT", "PAUSE", "3000", "WRITE"]).await;
    assert_eq!(paused.as_deref(), Some("+OK"));
    let bob = tokio::spawn(async move {
        let code = ue
            .message(BOB, SC, "application/vnd.3gpp.sms", report)
            .await;
        (ue, code)
    });
    until("Bob's RP-ACK taken in", || im.queued() == 0).await;
    assert_quiet(
        &mut seen,
        Duration::from_millis(300),
        "no status report before the removal is stored",
    )
    .await;
    // crash: the MESSAGE carrying Bob's RP-ACK was never answered
    crash.shutdown_background();
    drop(im);
    assert_eq!(
        redis::hlen(rport, "ackcrash:sms").await,
        Some(1),
        "the removal did not reach Redis"
    );
    let restarted = crash_runtime();
    let im = start_on(&restarted, &cfg).await;
    let (mut ue, code) = tokio::time::timeout(WAIT * 2, bob)
        .await
        .expect("Bob's MESSAGE answered")
        .expect("Bob's task");
    assert_eq!(code, 202, "the retransmission answered by the new server");
    until("the SMS acknowledged after the restart", || {
        im.queued() == 0
    })
    .await;
    im.sync_store().await;
    assert_eq!(redis::hlen(rport, "ackcrash:sms").await, Some(0));
    let sr = next(&mut seen, "the status report to Alice").await;
    assert_eq!(sr.as_message().request_uri_str(), Some(ALICE));
    assert_status_report(&sr);
    // Bob registers again: nothing is left to deliver
    assert_eq!(ue.third_party_register(BOB, 7104).await, 200);
    assert_quiet(
        &mut seen,
        Duration::from_secs(1),
        "no second SMS-DELIVER, no second status report",
    )
    .await;
    im.shutdown();
    restarted.shutdown_background();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mt_requests_go_to_the_scscf_that_registered_the_recipient() {
    let (configured_bob, mut configured) = scscf(7107).await;
    let (serving_bob, mut serving) = scscf(7108).await;
    configured_bob.store(true, Ordering::SeqCst);
    serving_bob.store(true, Ordering::SeqCst);
    let im = ImServer::start(config(7109, 7107))
        .await
        .expect("IM server");
    let mut ue = Client::new(7110, im.local_addr(), "store").await;
    let serving_uri = "sip:127.0.0.1:7108";
    assert_eq!(ue.register_from(BOB, serving_uri, 600).await, 200);

    let route = |m: &OwnedMessage| m.as_message().header_str("Route").map(str::to_owned);
    let submit = submit_asking("which way", false);
    ue.sms(ALICE, submit.clone()).await;
    let deliver = next(&mut serving, "Bob's SMS-DELIVER at his S-CSCF").await;
    assert_eq!(deliver.as_message().request_uri_str(), Some(BOB));
    assert_eq!(route(&deliver).as_deref(), Some("<sip:127.0.0.1:7108;lr>"));
    let ack = next(&mut configured, "the RP-ACK at the configured S-CSCF").await;
    assert_eq!(ack.as_message().request_uri_str(), Some(ALICE));
    assert_eq!(
        route(&ack).as_deref(),
        Some("<sip:term@127.0.0.1:7107;lr>"),
        "Alice has no third-party registration: the configured S-CSCF"
    );
    let rp = sms::decode(deliver.as_message().body(), Direction::NetworkToMs).expect("RP");
    let report = answer::deliver_report_ack(&rp.rp).expect("RP-ACK");
    ue.sms(BOB, report).await;
    until("delivered", || im.queued() == 0).await;

    // Bob de-registers: the configured S-CSCF again
    assert_eq!(ue.register_from(BOB, serving_uri, 0).await, 200);
    ue.sms(ALICE, submit).await;
    let mut to_bob = None;
    for _ in 0..2 {
        let m = next(&mut configured, "the RP-ACK and Bob's SMS-DELIVER").await;
        if m.as_message().request_uri_str() == Some(BOB) {
            to_bob = Some(m);
        }
    }
    let to_bob = to_bob.expect("Bob's SMS-DELIVER at the configured S-CSCF");
    assert_eq!(
        route(&to_bob).as_deref(),
        Some("<sip:term@127.0.0.1:7107;lr>")
    );
    assert!(
        serving.try_recv().is_err(),
        "nothing more at Bob's old S-CSCF"
    );
    im.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn msisdn_less_sms_addressed_by_sip_uri() {
    const DAVE: &str = "sip:dave@ims.example.org";
    const CAROL: &str = "sip:carol@ims.example.org";
    let (_bob, mut seen) = scscf(7111).await;
    let im = ImServer::start(config(7112, 7111))
        .await
        .expect("IM server");
    let mut ue = Client::new(7113, im.local_addr(), "store").await;
    // TS 24.341 Annex B.7 step 1: TP-DA the dummy MSISDN, the recipient in <To>
    let body = msisdn_less(CAROL, false, "no number needed");
    assert_eq!(
        ue.message(DAVE, SC, "multipart/mixed;boundary=b1", body)
            .await,
        202
    );
    let mut deliver = None;
    for _ in 0..2 {
        let m = next(&mut seen, "the RP-ACK to Dave and the MESSAGE to Carol").await;
        match m.as_message().request_uri_str() {
            Some(CAROL) => deliver = Some(m),
            other => {
                assert_eq!(other, Some(DAVE));
                let rp = sms::decode(m.as_message().body(), Direction::NetworkToMs).unwrap();
                assert_eq!((rp.rp.name(), rp.rp.message_reference), ("RP-ACK", 3));
            }
        }
    }
    let deliver = deliver.expect("the MESSAGE to Carol's SIP URI");
    let msg = deliver.as_message();
    assert_eq!(
        msg.header_str("Feature-Caps"),
        Some("*;+g.3gpp.smsip-msisdn-less")
    );
    let parts = msg
        .multipart(&ims::sip::Limits::default())
        .expect("multipart")
        .expect("a multipart body");
    let part = |t: &str| {
        parts
            .iter()
            .find(|p| {
                p.content_type()
                    .and_then(Result::ok)
                    .is_some_and(|c| format!("{}/{}", c.mtype, c.subtype) == t)
            })
            .unwrap_or_else(|| panic!("a {t} part"))
            .body
    };
    let rp = sms::decode(part("application/vnd.3gpp.sms"), Direction::NetworkToMs).expect("RP");
    let Some(Tpdu::Deliver(d)) = &rp.tpdu else {
        panic!("SMS-DELIVER")
    };
    assert_eq!(
        d.originator.to_string(),
        "+000000000000000",
        "the dummy MSISDN"
    );
    assert_eq!(
        rp.tpdu.as_ref().and_then(|t| t.text()).as_deref(),
        Some("no number needed")
    );
    let info = std::str::from_utf8(part("application/vnd.3gpp.sms+xml")).expect("UTF-8");
    assert!(
        info.contains(&format!("<From>{DAVE}</From>")),
        "the sender's SIP URI: {info}"
    );
    let report = answer::deliver_report_ack(&rp.rp).expect("RP-ACK");
    assert_eq!(
        ue.message(CAROL, SC, "application/vnd.3gpp.sms", report)
            .await,
        202
    );
    until("delivered", || im.queued() == 0).await;
    im.shutdown();
}

/// A scripted S-CSCF on `port` that hands every request it gets to the returned channel and
/// answers 200, except the first MESSAGE to Bob: 500 although it went on to Bob (its 2xx lost
/// on the way — a TCP connection reset after the request left, a proxy that timed out).
async fn lossy_scscf(port: u16) -> mpsc::UnboundedReceiver<OwnedMessage> {
    let (ep, mut incoming) = bind_with_events(port, "S-CSCF").await;
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut lost = false;
        while let Some(ev) = incoming.recv().await {
            if let UaEvent::IncomingRequest { txn, msg, .. } = ev {
                let to_bob = msg.as_message().request_uri_str() == Some(BOB);
                let code = if to_bob && !lost {
                    lost = true;
                    500
                } else {
                    200
                };
                let _ = ep.respond(txn, Answer::new(code)).await;
                let _ = tx.send(msg);
            }
        }
    });
    rx
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_whose_2xx_is_lost_is_completed_by_its_rp_ack_not_made_twice() {
    let mut seen = lossy_scscf(7114).await;
    let mut cfg = config(7115, 7114);
    // a retry 6 s after the attempt (the old behaviour: the second SMS-DELIVER then comes
    // instead of the status report), 12 s after the next one
    cfg.ipsmgw.retry_interval = 3;
    let im = ImServer::start(cfg).await.expect("IM server");
    let mut ue = Client::new(7116, im.local_addr(), "store").await;
    ue.sms(ALICE, submit_asking("one copy", true)).await;
    let (deliver, _) = ack_and_deliver(&mut seen, "the RP-ACK to Alice and the SMS-DELIVER").await;
    until("the 500 taken as a failed attempt", || {
        im.stats().sms_failed == 1
    })
    .await;
    // Bob got it all the same and acknowledges it
    ue.sms(BOB, report_for(&deliver)).await;
    let sr = next(&mut seen, "the status report to Alice").await;
    assert_eq!(
        sr.as_message().request_uri_str(),
        Some(ALICE),
        "the status report, not a second SMS-DELIVER"
    );
    assert_status_report(&sr);
    assert_eq!(im.queued(), 0);
    assert_quiet(
        &mut seen,
        Duration::from_secs(3),
        "no retry of a delivered message",
    )
    .await;
    im.shutdown();
}

#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_acknowledged_removal_reaches_redis_after_an_outage_and_a_restart_delivers_nothing() {
    let Some(r) = RedisSetup::start("im-outage", 7117, 7118, "outage:").await else {
        return;
    };
    let (rport, bob_registered, mut seen, mut cfg) = (r.rport, r.bob_registered, r.seen, r.cfg);
    bob_registered.store(true, Ordering::SeqCst);
    let down = Arc::new(AtomicBool::new(false));
    let proxy = proxy(rport, down.clone(), Outage::Cut).await;
    cfg.store = Some(format!("redis://127.0.0.1:{proxy}/outage:").into());
    let im = ImServer::start(cfg.clone()).await.expect("IM server");
    let mut ue = Client::new(7119, im.local_addr(), "store").await;
    let text = "acknowledged during an outage";
    ue.sms(ALICE, submit(text)).await;
    let (deliver, _) = ack_and_deliver(&mut seen, "the RP-ACK and the SMS-DELIVER").await;
    im.sync_store().await;
    assert_eq!(redis::hlen(rport, "outage:sms").await, Some(1));

    // Redis is unreachable when Bob's RP-ACK comes, long enough for the writer to stop
    // trying that batch (six attempts, ~3 s of back-off)
    down.store(true, Ordering::SeqCst);
    ue.sms(BOB, report_for(&deliver)).await;
    assert_eq!(im.queued(), 0, "delivered");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(redis::hlen(rport, "outage:sms").await, Some(1), "not yet");
    // Redis is back: the removal reaches it without any new write
    down.store(false, Ordering::SeqCst);
    for _ in 0..50 {
        if redis::hlen(rport, "outage:sms").await == Some(0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        redis::hlen(rport, "outage:sms").await,
        Some(0),
        "the removal of the acknowledged message was kept and applied"
    );
    // a restart finds nothing to deliver again
    im.shutdown();
    drop(im);
    let im = ImServer::start(config_with_store(7196, 7117, &cfg))
        .await
        .expect("IM server restarts");
    assert_eq!(im.queued(), 0, "nothing reloaded");
    let mut ue = Client::new(7197, im.local_addr(), "store").await;
    assert_eq!(ue.third_party_register(BOB, 7117).await, 200);
    assert_quiet(&mut seen, Duration::from_secs(1), "no second SMS-DELIVER").await;
    im.shutdown();
}

#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stored_im_is_gone_from_redis_before_its_delivery_is_notified() {
    let Some(r) = RedisSetup::start("im-removal", 7162, 7163, "removal:").await else {
        return;
    };
    let (rport, bob_registered, mut seen, mut cfg) = (r.rport, r.bob_registered, r.seen, r.cfg);
    cfg.network_imdn = true;
    let im = ImServer::start(cfg).await.expect("IM server");
    let mut ue = Client::new(7164, im.local_addr(), "store").await;
    let cpim = cpim_asking(
        ALICE,
        BOB,
        "Rm-0001",
        "positive-delivery",
        "2026-11-26T18:00:00Z",
        "read me later",
    );
    assert_eq!(ue.message(ALICE, BOB, "message/cpim", cpim).await, 202);
    im.sync_store().await;
    assert_eq!(redis::hlen(rport, "removal:im").await, Some(1));
    // Bob registers while Redis holds writes: the IM goes out, its removal waits
    bob_registered.store(true, Ordering::SeqCst);
    let paused = redis::command(rport, &["CLIENT", "PAUSE", "1500", "WRITE"]).await;
    assert_eq!(paused.as_deref(), Some("+OK"));
    assert_eq!(ue.third_party_register(BOB, 7162).await, 200);
    let m = next(&mut seen, "the stored IM at Bob").await;
    assert_eq!(m.as_message().request_uri_str(), Some(BOB));
    let n = next(&mut seen, "the delivery notification to Alice").await;
    let stored_at_imdn = redis::hlen(rport, "removal:im").await;
    assert_eq!(n.as_message().request_uri_str(), Some(ALICE));
    let x = imdn_of(&n);
    assert_eq!(
        (x.message_id.as_str(), x.status.as_str()),
        ("Rm-0001", "delivered")
    );
    assert_eq!(
        stored_at_imdn,
        Some(0),
        "the record is gone from Redis when the notification leaves"
    );
    assert_eq!(im.stored_ims(), 0);
    im.shutdown();
}
