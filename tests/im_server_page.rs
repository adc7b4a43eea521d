//! The IM server (IP-SM-GW and page-mode IM, `ims::nf::im_server`) behind the IMS core, driven
//! by UEs built on ims-net that register with IMS-AKA through the P-CSCF like a phone would:
//!
//! 1. `mo_sms_is_acknowledged_delivered_and_reported`: the all-in-one core (the IM server runs
//!    in-process, `Roles::ALL`) with the iFC of `examples/cscf/ims.toml`. UE A submits an SMS
//!    (real RP-DATA/SMS-SUBMIT bytes, TP-SRR set) to B's number: A gets 202 and a MESSAGE with
//!    RP-ACK(SMS-SUBMIT-REPORT); B gets RP-DATA(SMS-DELIVER) with the text and A's number as
//!    originator, answers RP-ACK; A gets the SMS-STATUS-REPORT (delivered). tshark on the loopback
//!    dissects every RP/TP body of the exchange (gsm_a.rp, gsm_sms) and must find the SUBMIT,
//!    DELIVER, both RP-ACKs and the STATUS-REPORT with the right addresses and text, and no
//!    malformed packet or warning/error expert info in those trees.
//! 2. `sms_for_an_unregistered_user_is_stored_survives_restart_and_goes_out_on_registration`:
//!    the core without the IM role and a stand-alone IM server with a file store: B is not
//!    registered, so the S-CSCF answers 480 and the message is stored; the IM server restarts
//!    (reloading the store); B registers and the third-party REGISTER (the S-CSCF's when it sends
//!    one, else sent by the test as TS 24.229 §5.4.1.7 describes) releases the delivery.
//! 3. `page_mode_im_and_imdn_through_the_core`: text/plain and CPIM MESSAGEs from A to B through
//!    P-CSCF, S-CSCF, IM server (B2BUA, originating and terminating iFC), I-CSCF; 200 relayed; the
//!    CPIM message asks for positive-delivery, so A gets the network's IMDN "delivered"; B's own
//!    display IMDN (message/imdn+xml) reaches A along the same path.
//! 4. `sms_command_and_retry_back_off_end_to_end`: a stand-alone IM server with short retry
//!    intervals: an SMS-COMMAND deletes a stored message; temporary RP-ERRORs from B are retried
//!    with a doubling interval, then A gets the SMS-STATUS-REPORT of the failure.
//!
//! Ports 7000-7199 (helper range). tshark is found with `common::interop_tool` (skip unless
//! `IMS_REQUIRE_INTEROP=1`); the SIP/SMS flow of tests 1-3 runs without it.

mod common;
mod im_common;

use im_common::bodies::rp_submit;
use im_common::{enum_table, ifc, impi, K, LO, OP, WAIT};
use ims::auth::aka::{Usim, DEFAULT_IND_BITS};
use ims::auth::milenage::{Milenage, OperatorKey};
use ims::msrp::cpim::{Cpim, CpimBuilder};
use ims::msrp::imdn::{Imdn, Notification};
use ims::net::sip::{Endpoint, EndpointConfig};
use ims::nf::hss::Subscriber;
use ims::nf::im_server::{ImServer, ImServerConfig, Numbering};
use ims::nf::registrar::RegistrarConfig;
use ims::nf::runtime::{CoreConfig, ImOptions, ImsCore, Peer, Ports, Roles};
use ims::nf::subscription::{InitialFilterCriteria, SessionCase};
use ims::sip::{Method, OwnedMessage, RequestBuilder};
use ims::sms::{self, answer, Address, Direction, RpBody, RpMessage, Status, Submit, Tpdu};
use ims::txn::ua::{Answer, UaEvent};
use ims::txn::Remote;
use serde_json::Value;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;
use tokio::process::Command;
use tokio::sync::mpsc;

/// The iFC of `examples/cscf/ims.toml`, naming the IM server at `im`.
fn ifcs(im: &str) -> Vec<InitialFilterCriteria> {
    let orig = Some(SessionCase::Originating);
    let term = Some(SessionCase::TerminatingRegistered);
    vec![
        ifc(
            im,
            10,
            orig,
            "MESSAGE",
            Some(r"(?i)application/vnd\.3gpp\.sms"),
        ),
        ifc(im, 20, orig, "MESSAGE", Some(r"(?i)^\s*(text|message)/")),
        ifc(im, 30, term, "MESSAGE", Some(r"(?i)^\s*(text|message)/")),
        ifc(im, 40, None, "REGISTER", None),
    ]
}

fn subscriber(n: u32, im: &str) -> Subscriber {
    im_common::subscriber(n, ifcs(im))
}

/// A core on `base`… (P-CSCF base, I-CSCF base+2, S-CSCF base+10/base+11, IM server base+20,
/// HSS base+35, PCRF base+36).
fn config(base: u16, roles: Roles, im: ImOptions) -> CoreConfig {
    let im_uri = format!("sip:127.0.0.1:{}", base + 20);
    CoreConfig {
        domain: "ims.example.org".into(),
        ip: LO,
        ports: Ports {
            pcscf: base,
            icscf: base + 2,
            scscf_term: base + 10,
            scscf_orig: base + 11,
        },
        roles,
        hss: Peer::Embedded(SocketAddr::new(LO, base + 35)),
        pcrf: Peer::Embedded(SocketAddr::new(LO, base + 36)),
        subscribers: vec![subscriber(1, &im_uri), subscriber(2, &im_uri)],
        enum_table: enum_table(),
        registrar: RegistrarConfig::default(),
        nonce_secret: b"a test secret of 32 octets......".to_vec(),
        admin: None,
        im: ImOptions {
            port: base + 20,
            ..im
        },
    }
}

/// The MSISDN map of the core's subscribers (each implicit registration set), for a
/// stand-alone IM server.
fn numbering_of(cfg: &CoreConfig) -> Numbering {
    Numbering::from_sets(
        cfg.subscribers
            .iter()
            .map(|s| &s.subscription.service_profiles[0])
            .map(|sp| {
                sp.public_identities
                    .iter()
                    .map(|p| p.identity.clone())
                    .collect::<Vec<_>>()
            })
            .collect::<Vec<_>>()
            .iter()
            .map(Vec::as_slice),
    )
}

/// A UE on ims-net: registers with IMS-AKA through the P-CSCF, sends MESSAGEs there, answers
/// every MESSAGE it gets with 200 and hands it to the test.
struct Ue {
    n: u32,
    ep: Endpoint,
    pcscf: SocketAddr,
    usim: Usim,
    inbox: mpsc::UnboundedReceiver<OwnedMessage>,
    seq: u32,
}

impl Ue {
    async fn new(n: u32, port: u16, pcscf: SocketAddr) -> Ue {
        let (ep, mut incoming) = Endpoint::bind(EndpointConfig {
            addr: SocketAddr::new(LO, port),
            user: format!("00101000000000{n}"),
            ..EndpointConfig::default()
        })
        .await
        .expect("UE binds");
        let (tx, inbox) = mpsc::unbounded_channel();
        let answer = ep.clone();
        tokio::spawn(async move {
            while let Some(ev) = incoming.recv().await {
                if let UaEvent::IncomingRequest { txn, msg, .. } = ev {
                    let _ = answer.respond(txn, Answer::new(200)).await;
                    let _ = tx.send(msg);
                }
            }
        });
        Ue {
            n,
            ep,
            pcscf,
            usim: Usim::new(Milenage::new(&K, OperatorKey::Op(OP)), DEFAULT_IND_BITS),
            inbox,
            seq: 0,
        }
    }

    fn impu(&self) -> String {
        format!("sip:{}", impi(self.n))
    }

    async fn send(&self, msg: OwnedMessage) -> OwnedMessage {
        im_common::send(&self.ep, self.pcscf, msg).await
    }

    /// REGISTER → 401 (AKA challenge) → REGISTER with the USIM's answer → 200.
    async fn register(&mut self) {
        im_common::register(&self.ep, self.pcscf, self.n, &mut self.usim).await;
    }

    async fn message(&mut self, ruri: &str, content_type: &str, body: Vec<u8>) -> u16 {
        self.seq += 1;
        let m = RequestBuilder::new(Method::Message, ruri)
            .header("Max-Forwards", 70)
            .header("From", format!("<{}>;tag=m{}", self.impu(), self.seq))
            .header("To", format!("<{ruri}>"))
            .header(
                "Call-ID",
                format!("msg-{}-{}-{}", self.n, self.seq, self.ep.local_addr()),
            )
            .header("CSeq", "1 MESSAGE")
            .header("Contact", format!("<{}>", self.ep.contact()))
            .body(content_type, body)
            .build()
            .expect("MESSAGE");
        self.send(m).await.as_message().status().unwrap_or(0)
    }

    async fn next(&mut self, what: &str) -> OwnedMessage {
        tokio::time::timeout(WAIT, self.inbox.recv())
            .await
            .unwrap_or_else(|_| panic!("UE {} waited in vain for {what}", self.n))
            .expect("inbox open")
    }

    /// Sends an RP message to the service centre (the originating iFC takes it to the IP-SM-GW).
    async fn sms(&mut self, rp: Vec<u8>) -> u16 {
        self.message(
            "sip:+15550000@ims.example.org",
            "application/vnd.3gpp.sms",
            rp,
        )
        .await
    }
}

fn submit(tp_mr: u8, srr: bool, text: &str) -> Vec<u8> {
    submit_to("15550002", tp_mr, srr, text)
}

/// RP-DATA (RP-MR 7) with an SMS-SUBMIT (TP-MR `tp_mr`) of `text` to `number`, asking for a
/// status report when `srr`.
fn submit_to(number: &str, tp_mr: u8, srr: bool, text: &str) -> Vec<u8> {
    rp_submit(7, tp_mr, number, srr, text)
}

fn sms_body(m: &OwnedMessage) -> Vec<u8> {
    let msg = m.as_message();
    assert_eq!(
        msg.header_str("Content-Type"),
        Some("application/vnd.3gpp.sms"),
        "an SMS over IP MESSAGE"
    );
    msg.body().to_vec()
}

fn sip_port_args(ports: &[u16]) -> Vec<String> {
    ports
        .iter()
        .flat_map(|p| ["-d".to_string(), format!("udp.port=={p},sip")])
        .collect()
}

async fn start_capture(dir: &Path, range: (u16, u16)) -> Option<common::LiveCapture> {
    let tshark = common::interop_tool("tshark", "apt-get install tshark")?;
    let filter = format!("udp portrange {}-{}", range.0, range.1);
    common::LiveCapture::start(&tshark, &filter, dir.join("im.pcap")).await
}

/// Every (key, string value) leaf under `v`.
fn leaves<'a>(v: &'a Value, out: &mut Vec<(&'a str, &'a str)>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                match x {
                    Value::String(s) => out.push((k.as_str(), s.as_str())),
                    Value::Array(a) => {
                        for e in a {
                            if let Value::String(s) = e {
                                out.push((k.as_str(), s.as_str()));
                            } else {
                                leaves(e, out);
                            }
                        }
                    }
                    _ => leaves(x, out),
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|e| leaves(e, out)),
        _ => {}
    }
}

/// One dissected SMS body: RP type, and the TP leaves.
#[derive(Debug)]
struct Dissected {
    rp_type: u32,
    tp: Vec<(String, String)>,
}

fn num(v: &str) -> u32 {
    if let Some(h) = v.strip_prefix("0x") {
        u32::from_str_radix(h, 16).unwrap_or(u32::MAX)
    } else {
        v.parse().unwrap_or(u32::MAX)
    }
}

async fn dissect(file: &Path, ports: &[u16]) -> Vec<Dissected> {
    let tshark = common::interop_tool("tshark", "apt-get install tshark").expect("tshark");
    let out = Command::new(&tshark)
        .arg("-r")
        .arg(file)
        .args(sip_port_args(ports))
        .args(["-Y", "gsm_a.rp", "-T", "json"])
        .output()
        .await
        .expect("tshark reads the capture");
    assert!(
        out.status.success(),
        "tshark: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let packets: Vec<Value> = serde_json::from_slice(&out.stdout).expect("tshark JSON");
    let mut found = Vec::new();
    for p in &packets {
        let text = p.to_string();
        assert!(!text.contains("_ws.malformed"), "malformed packet: {text}");
        let body = &p["_source"]["layers"]["sip"]["sip.msg_body"];
        for tree in ["gsm_a.rp", "gsm_sms"] {
            let mut l = Vec::new();
            leaves(&body[tree], &mut l);
            for (k, v) in &l {
                if *k == "_ws.expert.severity" {
                    assert!(num(v) < 0x0060_0000, "expert info {v} in {tree}: {l:?}");
                }
            }
        }
        let mut rp = Vec::new();
        leaves(&body["gsm_a.rp"], &mut rp);
        let mut tp = Vec::new();
        leaves(&body["gsm_sms"], &mut tp);
        let rp_type = rp
            .iter()
            .find(|(k, _)| *k == "gsm_a.rp.msg_type")
            .map_or(u32::MAX, |(_, v)| num(v));
        found.push(Dissected {
            rp_type,
            tp: tp
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        });
    }
    found
}

impl Dissected {
    fn get(&self, k: &str) -> Option<&str> {
        self.tp
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mo_sms_is_acknowledged_delivered_and_reported() {
    let dir = common::TempDir::new("im", "mo", "IMS_KEEP_PCAP");
    let base = 7000;
    let cap = start_capture(dir.path(), (7000, 7039)).await;
    let core = ImsCore::start(config(base, Roles::ALL, ImOptions::default()))
        .await
        .expect("core starts");
    let im = core.im_server().expect("the IM server runs in the core");
    let pcscf = SocketAddr::new(LO, base);
    let mut a = Ue::new(1, 7030, pcscf).await;
    let mut b = Ue::new(2, 7031, pcscf).await;
    a.register().await;
    b.register().await;

    let text = "Hello Bob, SMS over IP from the ims-rs core";
    assert_eq!(a.sms(submit(42, true, text)).await, 202, "MO SMS accepted");

    // RP-ACK with SMS-SUBMIT-REPORT to A, from the IP-SM-GW
    let ack = a.next("the RP-ACK").await;
    assert!(
        ack.as_message()
            .header_str("P-Asserted-Identity")
            .is_some_and(|v| v.contains("ipsmgw@ims.example.org")),
        "sent by the service"
    );
    let body = sms_body(&ack);
    let rp = sms::decode(&body, Direction::NetworkToMs).expect("RP from the network");
    assert_eq!((rp.rp.name(), rp.rp.message_reference), ("RP-ACK", 7));
    assert!(matches!(rp.tpdu, Some(Tpdu::SubmitReport(_))), "{rp:?}");

    // SMS-DELIVER to B with A's number as originator
    let mt = b.next("the SMS-DELIVER").await;
    let body = sms_body(&mt);
    let rp = sms::decode(&body, Direction::NetworkToMs).expect("RP-DATA");
    let Some(Tpdu::Deliver(d)) = &rp.tpdu else {
        panic!("SMS-DELIVER expected: {rp:?}")
    };
    assert_eq!(d.originator.to_string(), "+15550001");
    assert!(d.status_report_indication);
    assert_eq!(rp.tpdu.as_ref().unwrap().text().as_deref(), Some(text));
    // B acknowledges: RP-ACK with SMS-DELIVER-REPORT
    let report = answer::deliver_report_ack(&rp.rp).expect("DELIVER-REPORT");
    assert_eq!(b.sms(report).await, 202);

    // A gets the status report: delivered
    let sr = a.next("the SMS-STATUS-REPORT").await;
    let body = sms_body(&sr);
    let rp = sms::decode(&body, Direction::NetworkToMs).expect("RP-DATA");
    let Some(Tpdu::StatusReport(s)) = &rp.tpdu else {
        panic!("SMS-STATUS-REPORT expected: {rp:?}")
    };
    assert_eq!((s.message_reference, s.status), (42, Status::DELIVERED));
    assert_eq!(s.recipient.to_string(), "+15550002");
    let ack = answer::deliver_report_ack(&rp.rp).expect("RP-ACK");
    assert_eq!(a.sms(ack).await, 202);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(im.queued(), 0, "nothing left in the store");
    let st = im.stats();
    assert_eq!(st.sms_received, 3, "{st:?}");
    assert_eq!(st.sms_sent, 3, "{st:?}");
    assert_eq!(st.sms_failed, 0, "{st:?}");

    if let Some(cap) = cap {
        let file = cap.stop().await;
        let ports = [7000, 7002, 7010, 7011, 7020, 7030, 7031];
        let seen = dissect(&file, &ports).await;
        let has = |rp_type: u32, f: &dyn Fn(&Dissected) -> bool| {
            seen.iter().any(|d| d.rp_type == rp_type && f(d))
        };
        // RP-DATA MS→network with the SUBMIT to B's number and the text
        assert!(
            has(0, &|d| d
                .get("gsm_sms.tp-da")
                .is_some_and(|v| v.contains("15550002"))
                && d.get("gsm_sms.sms_text") == Some(text)),
            "SUBMIT on the wire: {seen:#?}"
        );
        // RP-DATA network→MS: the DELIVER from A's number with the text, and the STATUS-REPORT
        assert!(
            has(1, &|d| d
                .get("gsm_sms.tp-oa")
                .is_some_and(|v| v.contains("15550001"))
                && d.get("gsm_sms.sms_text") == Some(text)),
            "DELIVER on the wire: {seen:#?}"
        );
        assert!(
            has(1, &|d| d
                .get("gsm_sms.tp-ra")
                .is_some_and(|v| v.contains("15550002"))),
            "STATUS-REPORT on the wire: {seen:#?}"
        );
        assert!(has(2, &|_| true), "RP-ACK MS→network on the wire");
        assert!(has(3, &|_| true), "RP-ACK network→MS on the wire");
    }
    core.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sms_for_an_unregistered_user_is_stored_survives_restart_and_goes_out_on_registration() {
    let dir = common::TempDir::new("im", "store", "IMS_KEEP_PCAP");
    let store = dir.path().join("sms");
    let base = 7040;
    let roles = Roles {
        im: false,
        ..Roles::ALL
    };
    let cfg = config(base, roles, ImOptions::default());
    let numbering = numbering_of(&cfg);
    let im_cfg = {
        let mut c = ImServerConfig::new(
            SocketAddr::new(LO, base + 20),
            "ims.example.org",
            &format!("sip:term@127.0.0.1:{}", base + 10),
        );
        c.store = Some(store.clone());
        c.numbering = numbering;
        c.reject_unknown = true;
        c
    };
    let core = ImsCore::start(cfg).await.expect("core starts");
    let im = ImServer::start(im_cfg.clone()).await.expect("IM server");
    let pcscf = SocketAddr::new(LO, base);
    let mut a = Ue::new(1, 7065, pcscf).await;
    let mut b = Ue::new(2, 7066, pcscf).await;
    a.register().await;

    // a number nobody has: RP-ERROR unknown subscriber (reject_unknown), nothing stored
    assert_eq!(a.sms(submit_to("15550009", 3, false, "hello?")).await, 202);
    let err = a.next("the RP-ERROR").await;
    let body = sms_body(&err);
    let rp = sms::decode(&body, Direction::NetworkToMs).expect("RP");
    assert!(
        matches!(rp.rp.body, RpBody::Error { cause, .. } if cause == sms::RpCause::UNKNOWN_SUBSCRIBER),
        "{rp:?}"
    );
    assert_eq!(im.queued(), 0);

    let text = "stored for later";
    assert_eq!(a.sms(submit(9, false, text)).await, 202);
    let ack = a.next("the RP-ACK").await;
    let body = sms_body(&ack);
    let rp = sms::decode(&body, Direction::NetworkToMs).expect("RP");
    assert_eq!(rp.rp.name(), "RP-ACK", "accepted although B is away");
    // the delivery attempt meets 480 (B unregistered): stored
    for _ in 0..50 {
        if im.stats().sms_failed == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(im.stats().sms_failed, 1, "{:?}", im.stats());
    assert_eq!(im.queued(), 1);
    let files = im_common::files_with(&store, "sms");
    assert_eq!(files, 1, "one message file in {}", store.display());

    // restart the IM server: the message comes back from the file store
    im.shutdown();
    drop(im);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let im = ImServer::start(im_cfg).await.expect("IM server restarts");
    assert_eq!(im.queued(), 1, "reloaded from {}", store.display());

    // B registers; the S-CSCF's third-party REGISTER (iFC priority 40) reaches the IM server if
    // the S-CSCF sends one, otherwise the test plays that part
    b.register().await;
    let mut by_scscf = false;
    for _ in 0..20 {
        if im.is_registered("tel:+15550002") {
            by_scscf = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    if !by_scscf {
        eprintln!(
            "no third-party REGISTER from the S-CSCF: the test sends it (TS 24.229 §5.4.1.7)"
        );
        let reg = RequestBuilder::new(Method::Register, &im.uri())
            .header("Max-Forwards", 70)
            .header("From", "<sip:scscf.ims.example.org>;tag=tp1")
            .header("To", format!("<sip:{}>", impi(2)))
            .header("Call-ID", "third-party-1@test")
            .header("CSeq", "1 REGISTER")
            .header("Contact", "<sip:127.0.0.1:7050>")
            .header("Expires", 600)
            .build()
            .expect("REGISTER");
        let (ep, _events) = Endpoint::bind(EndpointConfig {
            addr: SocketAddr::new(LO, 7067),
            ..EndpointConfig::default()
        })
        .await
        .expect("bind");
        let t = ep
            .request(reg, Remote::udp(im.local_addr()))
            .await
            .expect("sent");
        let r = t.final_response().await.expect("answer");
        assert_eq!(r.as_message().status(), Some(200));
        assert!(im.is_registered("tel:+15550002"));
    }
    let mt = b.next("the stored SMS-DELIVER").await;
    let body = sms_body(&mt);
    let rp = sms::decode(&body, Direction::NetworkToMs).expect("RP-DATA");
    assert!(matches!(rp.rp.body, RpBody::Data { .. }));
    assert_eq!(
        rp.tpdu.as_ref().and_then(|t| t.text()).as_deref(),
        Some(text)
    );
    let Some(Tpdu::Deliver(d)) = &rp.tpdu else {
        panic!("DELIVER")
    };
    assert_eq!(d.originator.to_string(), "+15550001");
    assert_eq!(
        b.sms(answer::deliver_report_ack(&rp.rp).unwrap()).await,
        202
    );
    for _ in 0..30 {
        if im.queued() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(im.queued(), 0, "delivered and acknowledged");
    let left = im_common::files_with(&store, "sms");
    assert_eq!(left, 0, "store emptied");
    im.shutdown();
    core.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn page_mode_im_and_imdn_through_the_core() {
    let base = 7100;
    let core = ImsCore::start(config(
        base,
        Roles::ALL,
        ImOptions {
            network_imdn: true,
            ..ImOptions::default()
        },
    ))
    .await
    .expect("core starts");
    let im = core.im_server().expect("IM server");
    let pcscf = SocketAddr::new(LO, base);
    let mut a = Ue::new(1, 7130, pcscf).await;
    let mut b = Ue::new(2, 7131, pcscf).await;
    a.register().await;
    b.register().await;
    let bob = format!("sip:{}", impi(2));
    let alice = format!("sip:{}", impi(1));

    // text/plain, by tel URI (ENUM at the I-CSCF)
    assert_eq!(
        a.message("tel:+15550002", "text/plain", b"hi Bob".to_vec())
            .await,
        200
    );
    let got = b.next("the text MESSAGE").await;
    let m = got.as_message();
    assert_eq!(m.body(), b"hi Bob");
    assert_eq!(m.header_str("Content-Type"), Some("text/plain"));
    assert!(
        m.from().unwrap().unwrap().uri().as_str().contains(&impi(1)),
        "From is A"
    );
    // the IM server relayed it on both sides (originating and terminating iFC)
    assert_eq!(im.stats().im_relayed, 2, "{:?}", im.stats());

    // CPIM asking for positive delivery notification
    let cpim = CpimBuilder::new(&format!("<{alice}>"), &format!("<{bob}>"))
        .ns("imdn", "urn:ietf:params:imdn")
        .header("imdn.Message-ID", "Msg-0001")
        .header(
            "imdn.Disposition-Notification",
            "positive-delivery, display",
        )
        .datetime("2026-11-25T21:00:00Z")
        .content("text/plain;charset=UTF-8", "Ça va?".as_bytes())
        .to_bytes();
    assert_eq!(a.message(&bob, "message/cpim", cpim.clone()).await, 200);
    let got = b.next("the CPIM MESSAGE").await;
    assert_eq!(got.as_message().body(), &cpim[..], "CPIM passes untouched");
    let c = Cpim::parse(got.as_message().body()).unwrap();
    assert_eq!(c.body, "Ça va?".as_bytes());

    // the network's delivery notification to A
    let n = a.next("the network's IMDN").await;
    let nm = n.as_message();
    assert_eq!(nm.header_str("Content-Type"), Some("message/cpim"));
    let nc = Cpim::parse(nm.body()).expect("CPIM");
    assert_eq!(
        nc.content_type().unwrap().unwrap().to_string(),
        "message/imdn+xml"
    );
    let x = Imdn::parse(std::str::from_utf8(nc.body).unwrap()).unwrap();
    assert_eq!(x.message_id, "Msg-0001");
    assert_eq!(x.notification, Notification::Delivery);
    assert_eq!(x.status, "delivered");
    assert_eq!(im.stats().imdn_sent, 1);

    // B's own display notification goes back like any IM
    let display = Imdn {
        message_id: "Msg-0001".into(),
        datetime: "2026-11-25T21:00:00Z".into(),
        recipient_uri: Some(bob.clone()),
        original_recipient_uri: None,
        notification: Notification::Display,
        status: "displayed".into(),
    };
    let body = CpimBuilder::new(&format!("<{bob}>"), &format!("<{alice}>"))
        .ns("imdn", "urn:ietf:params:imdn")
        .header("imdn.Message-ID", "Msg-0002")
        .content("message/imdn+xml", display.to_xml().as_bytes())
        .to_bytes();
    assert_eq!(b.message(&alice, "message/cpim", body).await, 200);
    let n = a.next("B's display IMDN").await;
    let nc = Cpim::parse(n.as_message().body()).expect("CPIM");
    let x = Imdn::parse(std::str::from_utf8(nc.body).unwrap()).unwrap();
    assert_eq!(
        (x.notification, x.status.as_str()),
        (Notification::Display, "displayed")
    );
    // the notification does not ask for another one
    assert_eq!(im.stats().imdn_sent, 1);

    // a user the core does not know: the failure comes back to the sender
    let code = a
        .message(
            "sip:nobody@ims.example.org",
            "text/plain",
            b"anyone?".to_vec(),
        )
        .await;
    assert!((400..500).contains(&code), "got {code}");
    core.shutdown();
}

/// The `im_server` example parses its flags and the shipped MSISDN map through `--check`.
/// `cargo test` builds examples; `cargo test --test im_server_page` alone does not, so the test
/// skips (saying so) when the binary is absent.
#[test]
fn example_configuration_loads() {
    let Some(bin) = common::example_binary("im_server") else {
        return;
    };
    let subscribers =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/im_server/subscribers.toml");
    let out = std::process::Command::new(&bin)
        .args([
            "--check",
            "--no-store",
            "--listen",
            "127.0.0.1:7199",
            "--subscribers",
        ])
        .arg(&subscribers)
        .args(["--msisdn", "+15550009=sip:carol@ims.example.org"])
        .output()
        .expect("run im_server --check");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("127.0.0.1:7199"), "{text}");
    assert!(text.contains("store memory"), "{text}");
    assert!(text.contains("3 numbered subscribers"), "{text}");
    let bad = std::process::Command::new(&bin)
        .arg("--bogus")
        .output()
        .expect("run im_server");
    assert_eq!(bad.status.code(), Some(2), "a usage error exits 2");
}

/// A two-part concatenated SMS passes through with its UDH; B's memory is full for part 1
/// (RP-ERROR 22 with an SMS-DELIVER-REPORT), so part 1 waits until B's RP-SMMA, which the
/// IP-SM-GW acknowledges (RP-ACK) and answers with the delivery.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concatenated_sms_and_memory_full_until_smma() {
    let mut cfg = config(7080, Roles::ALL, ImOptions::default());
    cfg.ports = Ports {
        pcscf: 7080,
        icscf: 7081,
        scscf_term: 7082,
        scscf_orig: 7083,
    };
    cfg.hss = Peer::Embedded(SocketAddr::new(LO, 7085));
    cfg.pcrf = Peer::Embedded(SocketAddr::new(LO, 7086));
    cfg.im.port = 7084;
    cfg.subscribers = vec![
        subscriber(1, "sip:127.0.0.1:7084"),
        subscriber(2, "sip:127.0.0.1:7084"),
    ];
    let core = ImsCore::start(cfg).await.expect("core starts");
    let im = core.im_server().expect("IM server");
    let pcscf = SocketAddr::new(LO, 7080);
    let mut a = Ue::new(1, 7087, pcscf).await;
    let mut b = Ue::new(2, 7088, pcscf).await;
    a.register().await;
    b.register().await;

    let text = "A long message that does not fit in one short message: it is split in two parts \
                by the sender, each with a concatenation header, and the IP-SM-GW must pass both \
                headers through to the recipient unchanged. End.";
    let split = sms::split(
        text,
        &sms::SplitOptions {
            reference: 0x5a,
            ..Default::default()
        },
    )
    .expect("split");
    assert_eq!(split.parts.len(), 2, "two parts");
    for (i, ud) in split.parts.iter().enumerate() {
        let sub = Submit {
            reject_duplicates: false,
            reply_path: false,
            status_report_request: false,
            message_reference: 60 + i as u8,
            destination: Address::international("15550002"),
            pid: Default::default(),
            dcs: split.dcs,
            validity_period: None,
            user_data: ud.clone(),
        };
        let tpdu = Tpdu::Submit(sub).encode().expect("SUBMIT");
        let rp = RpMessage::data_mo(20 + i as u8, Address::international("15550000"), &tpdu)
            .encode()
            .expect("RP-DATA");
        assert_eq!(a.sms(rp).await, 202);
        let ack = a.next("the RP-ACK").await;
        let body = sms_body(&ack);
        assert_eq!(
            sms::decode(&body, Direction::NetworkToMs)
                .unwrap()
                .rp
                .name(),
            "RP-ACK"
        );
    }
    // both DELIVERs reach B (in either order); part 1: memory full, part 2: RP-ACK
    let mut parts = std::collections::BTreeMap::new();
    for _ in 0..2 {
        let mt = b.next("a DELIVER part").await;
        let body = sms_body(&mt);
        let rp = sms::decode(&body, Direction::NetworkToMs).expect("RP-DATA");
        let Some(Tpdu::Deliver(d)) = &rp.tpdu else {
            panic!("DELIVER: {rp:?}")
        };
        let seq = d
            .user_data
            .header
            .as_ref()
            .and_then(|h| {
                h.elements.iter().find_map(|e| match e {
                    sms::InformationElement::Concat8 {
                        reference: 0x5a,
                        total: 2,
                        sequence,
                    } => Some(*sequence),
                    _ => None,
                })
            })
            .expect("concatenation header kept");
        let part = rp.tpdu.as_ref().unwrap().text().expect("text");
        let reply = if seq == 1 {
            answer::deliver_report_error(
                &rp.rp,
                sms::RpCause::MEMORY_CAPACITY_EXCEEDED,
                sms::FailureCause::MEMORY_CAPACITY_EXCEEDED,
            )
        } else {
            answer::deliver_report_ack(&rp.rp)
        }
        .expect("report");
        assert_eq!(b.sms(reply).await, 202);
        parts.insert(seq, part);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(im.queued(), 1, "part 1 waits for memory");
    // memory available: RP-SMMA → RP-ACK and part 1 again
    let smma = RpMessage::smma(77).encode().expect("RP-SMMA");
    assert_eq!(b.sms(smma).await, 202);
    let mut got_ack = false;
    let mut again = None;
    for _ in 0..2 {
        let m = b.next("RP-ACK to the SMMA and the delivery").await;
        let body = sms_body(&m);
        let rp = sms::decode(&body, Direction::NetworkToMs).expect("RP");
        match rp.rp.name() {
            "RP-ACK" => {
                assert_eq!(rp.rp.message_reference, 77);
                got_ack = true;
            }
            "RP-DATA" => {
                assert_eq!(
                    b.sms(answer::deliver_report_ack(&rp.rp).unwrap()).await,
                    202
                );
                again = rp.tpdu.as_ref().and_then(|t| t.text());
            }
            other => panic!("unexpected {other}"),
        }
    }
    assert!(got_ack, "the SMMA is acknowledged");
    assert_eq!(again.as_deref(), parts.get(&1).map(String::as_str));
    let whole: String = parts.values().cloned().collect();
    assert_eq!(whole, text, "reassembled");
    for _ in 0..30 {
        if im.queued() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(im.queued(), 0);
    core.shutdown();
}

/// Waits until `f` holds (polling every 50 ms, at most `WAIT`).
async fn until(mut f: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !f() {
        if tokio::time::Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    true
}

/// An SMS-COMMAND (TS 23.040 §9.2.2.4) from A carried like a submission.
fn command(rp_mr: u8, tp_mr: u8, command_type: u8, number: u8) -> Vec<u8> {
    let cmd = sms::Command {
        status_report_request: false,
        user_data_header_indication: false,
        message_reference: tp_mr,
        pid: Default::default(),
        command_type: sms::CommandType(command_type),
        message_number: number,
        destination: Address::international("15550002"),
        command_data: Vec::new(),
    };
    let tpdu = Tpdu::Command(cmd).encode().expect("COMMAND");
    RpMessage::data_mo(rp_mr, Address::international("15550000"), &tpdu)
        .encode()
        .expect("RP-DATA")
}

/// The RP message name of a MESSAGE the network sent a UE.
fn rp_name(m: &OwnedMessage) -> String {
    let body = sms_body(m);
    sms::decode(&body, Direction::NetworkToMs)
        .expect("RP")
        .rp
        .name()
        .to_owned()
}

/// Store and forward end to end with short configured intervals (the core without the IM role,
/// a stand-alone IM server: retry interval 2 s doubling per attempt, 3 attempts):
/// - SMS-COMMAND (TS 23.040 §9.2.3.19, command type 2 "delete previously submitted short
///   message"): a message stored for the unregistered B is deleted by A's command naming its
///   TP-MR (RP-ACK); a command naming another TP-MR deletes nothing;
/// - retry back-off (TS 23.040 §3.2.5): B, registered, answers every SMS-DELIVER with RP-ERROR
///   temporary failure; the IP-SM-GW tries again after ≥ 2 × 2 s, then after ≥ 2 × 4 s (the
///   interval doubles: a constant interval fails the second bound), gives up after the third
///   attempt and sends A the SMS-STATUS-REPORT of the failure (TP-SRR was set).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sms_command_and_retry_back_off_end_to_end() {
    let roles = Roles {
        im: false,
        ..Roles::ALL
    };
    let mut cfg = config(7090, roles, ImOptions::default());
    cfg.ports = Ports {
        pcscf: 7090,
        icscf: 7091,
        scscf_term: 7092,
        scscf_orig: 7093,
    };
    cfg.hss = Peer::Embedded(SocketAddr::new(LO, 7095));
    cfg.pcrf = Peer::Embedded(SocketAddr::new(LO, 7096));
    cfg.subscribers = vec![
        subscriber(1, "sip:127.0.0.1:7094"),
        subscriber(2, "sip:127.0.0.1:7094"),
    ];
    let mut im_cfg = ImServerConfig::new(
        SocketAddr::new(LO, 7094),
        "ims.example.org",
        "sip:term@127.0.0.1:7092",
    );
    im_cfg.numbering = numbering_of(&cfg);
    im_cfg.ipsmgw.retry_interval = 2;
    im_cfg.ipsmgw.max_attempts = 3;
    im_cfg.tick = Duration::from_millis(100);
    let core = ImsCore::start(cfg).await.expect("core starts");
    let im = ImServer::start(im_cfg).await.expect("IM server");
    let pcscf = SocketAddr::new(LO, 7090);
    let mut a = Ue::new(1, 7097, pcscf).await;
    let mut b = Ue::new(2, 7098, pcscf).await;
    a.register().await;

    // B is away: the message is stored (the attempt met 480)
    assert_eq!(a.sms(submit(31, false, "delete me")).await, 202);
    assert_eq!(rp_name(&a.next("the RP-ACK").await), "RP-ACK");
    assert!(
        until(|| im.stats().sms_failed >= 1).await,
        "{:?}",
        im.stats()
    );
    assert_eq!(im.queued(), 1);
    // a command for another message deletes nothing; the one naming TP-MR 31 deletes it
    assert_eq!(a.sms(command(40, 32, 2, 99)).await, 202);
    assert_eq!(
        rp_name(&a.next("the RP-ACK of the command").await),
        "RP-ACK"
    );
    assert_eq!(im.queued(), 1, "TP-MN 99 names no message of A");
    assert_eq!(a.sms(command(41, 33, 2, 31)).await, 202);
    assert_eq!(
        rp_name(&a.next("the RP-ACK of the command").await),
        "RP-ACK"
    );
    assert_eq!(im.queued(), 0, "deleted by SMS-COMMAND");

    // B registers and refuses three deliveries with a temporary failure
    b.register().await;
    let text = "try again later";
    assert_eq!(a.sms(submit(34, true, text)).await, 202);
    assert_eq!(rp_name(&a.next("the RP-ACK").await), "RP-ACK");
    let mut at = Vec::new();
    for i in 1..=3 {
        let mt = b.next("an SMS-DELIVER attempt").await;
        at.push(tokio::time::Instant::now());
        let body = sms_body(&mt);
        let rp = sms::decode(&body, Direction::NetworkToMs).expect("RP-DATA");
        assert_eq!(
            rp.tpdu.as_ref().and_then(|t| t.text()).as_deref(),
            Some(text),
            "attempt {i}"
        );
        let err = answer::deliver_report_error(
            &rp.rp,
            sms::RpCause::TEMPORARY_FAILURE,
            sms::FailureCause::UNSPECIFIED,
        )
        .expect("RP-ERROR");
        assert_eq!(b.sms(err).await, 202);
    }
    let (gap1, gap2) = (at[1] - at[0], at[2] - at[1]);
    eprintln!("retry gaps: {gap1:?}, {gap2:?}");
    assert!(
        gap1 > Duration::from_secs(3),
        "first retry after 2 × 2 s: {gap1:?}"
    );
    assert!(
        gap2 > Duration::from_secs(7),
        "second after 2 × 4 s: {gap2:?}"
    );
    // given up: A gets the status report of the failure, nothing is left
    let sr = a.next("the SMS-STATUS-REPORT").await;
    let body = sms_body(&sr);
    let rp = sms::decode(&body, Direction::NetworkToMs).expect("RP-DATA");
    let Some(Tpdu::StatusReport(r)) = &rp.tpdu else {
        panic!("STATUS-REPORT: {rp:?}")
    };
    assert_eq!(r.message_reference, 34);
    // TS 23.040 §9.2.3.15: 0x62, temporary error, the SC makes no more attempts
    assert_eq!(r.status, Status(0x62), "{r:?}");
    assert!(until(|| im.queued() == 0).await);
    im.shutdown();
    core.shutdown();
}
