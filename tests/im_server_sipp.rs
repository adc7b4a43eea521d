//! The IM server inside the all-in-one core against SIPp UEs, with real RP/TP bytes
//! (`examples/sipp/im_sms_*.xml`; the binary bodies come from `examples/sipp/im_sms_*.bin` through
//! SIPp's `[file]` keyword):
//!
//! 1. `shipped_sms_bodies_are_what_ims_sms_encodes`: the two shipped `.bin` bodies are exactly the
//!    RP/TP messages their scenario comments describe.
//! 2. `sipp_mo_and_mt_sms_through_the_core`: SIPp UE B registers (IMS-AKA) and waits with
//!    `im_sms_mt.xml`; SIPp UE A registers and submits with `im_sms_mo.xml` (202), answering the
//!    IP-SM-GW's RP-ACK and status report with `im_sms_ue_ooc.xml`; B gets the SMS-DELIVER (SIPp
//!    checks the SIP side: Content-Type, P-Asserted-Identity of the IP-SM-GW) and acknowledges
//!    with RP-ACK. Both SIPp runs must exit 0; the IM server must end with an empty store and its
//!    counters must show 2 SMS received and 3 sent; tshark on the loopback must find the SUBMIT
//!    (text, destination), the DELIVER (text, originator), the STATUS-REPORT and both RP-ACKs,
//!    with no malformed packet or warning/error expert info in the RP/TP trees.
//!
//! 3. `sipp_mt_memory_full_then_smma_delivers_the_stored_sms`: SIPp UE B (scenario
//!    `sms_mt_memory_full.xml`) answers the first SMS-DELIVER with RP-ERROR cause 22 (memory
//!    capacity exceeded); the IP-SM-GW keeps the message without retrying; B's RP-SMMA gets
//!    RP-ACK and the stored message is delivered again, B acknowledges it: B's SIPp exits 0
//!    (every step answered: 202 for its RP-ERROR, RP-SMMA and RP-ACK, the RP-ACK to the SMMA
//!    and the second SMS-DELIVER received), the store ends empty, the IP-SM-GW never sent
//!    a third delivery.
//!
//! 4. `sipp_sms_for_an_unregistered_ue_arrives_after_it_registers`: SIPp UE A (registered)
//!    submits an SMS to B, who is not registered: the SMS-DELIVER meets 480 at the S-CSCF and
//!    the IP-SM-GW keeps it; SIPp UE B registers (IMS-AKA), the S-CSCF's third-party REGISTER
//!    releases the delivery, and SIPp UE B (`im_sms_mt.xml`) receives the SMS-DELIVER (a UDP
//!    retransmission if it came before that SIPp run bound its port) and acknowledges it with
//!    RP-ACK naming the second attempt's RP-MR (2); the store ends empty.
//!
//! SIPp and tshark are found with `common::interop_tool` (skip unless `IMS_REQUIRE_INTEROP=1`).
//! Ports 7150-7199 (test 2), 7053-7064 (test 3) and 7121-7123, 7127-7129, 7132-7134 (test 4).

mod common;
mod im_common;

use im_common::{enum_table, ifc};
use ims::auth::milenage::OperatorKey;
use ims::net::sip::{Endpoint, EndpointConfig};
use ims::nf::hss::{AkaCredentials, Credentials, Subscriber};
use ims::nf::registrar::RegistrarConfig;
use ims::nf::runtime::{CoreConfig, ImOptions, ImsCore, Peer, Ports, Roles};
use ims::nf::subscription::{ImsSubscription, PublicIdentity, ServiceProfile, SessionCase};
use ims::sip::{Method, RequestBuilder};
use ims::sms::{self, answer, Address, Direction, RpMessage, Submit, Tpdu};
use ims::txn::Remote;
use serde_json::Value;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::process::Command;

const LO: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const TEXT: &str = "Hello from SIPp over IMS";

fn sipp_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/sipp")
}

/// A temporary directory `tag` (kept with `IMS_KEEP_SIPP`) and its path, holding copies of
/// these `examples/sipp` files: SIPp runs there and finds scenarios and `[file]` bodies by name.
fn scenario_dir(tag: &str, files: &[&str]) -> (common::TempDir, PathBuf) {
    let dir = common::TempDir::new("im", tag, "IMS_KEEP_SIPP");
    let d = dir.path().to_path_buf();
    for f in files {
        std::fs::copy(sipp_dir().join(f), d.join(f)).expect("copy scenario");
    }
    (dir, d)
}

/// The scenarios and body of an MO SMS from one SIPp UE to another, both registered with
/// IMS-AKA, that receives it with `im_sms_mt.xml`.
const SMS_FILES: [&str; 5] = [
    "im_sms_mo.xml",
    "im_sms_mt.xml",
    "im_sms_ue_ooc.xml",
    "ims_register.xml",
    "im_sms_submit.bin",
];

/// [`scenario_dir`] with the [`SMS_FILES`] and `extra`.
fn sms_scenario_dir(tag: &str, extra: &[&str]) -> (common::TempDir, PathBuf) {
    let files: Vec<&str> = SMS_FILES.iter().chain(extra).copied().collect();
    scenario_dir(tag, &files)
}

/// The size of the file `f` in `d`, as SIPp's `-key` takes it.
fn file_len(d: &Path, f: &str) -> String {
    std::fs::metadata(d.join(f)).unwrap().len().to_string()
}

/// SIPp from PATH (see `common::interop_tool`: `None` skips the test).
fn sipp_bin() -> Option<PathBuf> {
    common::interop_tool("sipp", "apt-get install sip-tester")
}

/// The core `cfg` describes, started and past [`wait_for_hss`] (its HSS answers).
async fn start_core(cfg: CoreConfig) -> ImsCore {
    let pcscf = cfg.ports.pcscf;
    let core = ImsCore::start(cfg).await.expect("core starts");
    wait_for_hss(SocketAddr::new(LO, pcscf)).await;
    core
}

/// Polls `done` every 100 ms, at most `tries` times (the caller asserts what it waited for).
async fn settle(tries: usize, done: impl Fn() -> bool) {
    for _ in 0..tries {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// RP-DATA MO (RP-MR 1, RP-DA +15550000) with SMS-SUBMIT (TP-MR 1, TP-SRR, TP-DA +15550002).
fn submit_body() -> Vec<u8> {
    let sub = Submit {
        reject_duplicates: false,
        reply_path: false,
        status_report_request: true,
        message_reference: 1,
        destination: Address::international("15550002"),
        pid: Default::default(),
        dcs: Default::default(),
        validity_period: None,
        user_data: sms::UserData::gsm7(TEXT, Default::default()).unwrap(),
    };
    let tpdu = Tpdu::Submit(sub).encode().unwrap();
    RpMessage::data_mo(1, Address::international("15550000"), &tpdu)
        .encode()
        .unwrap()
}

/// RP-ACK MS→network (RP-MR 1) with an SMS-DELIVER-REPORT.
fn deliver_ack_body() -> Vec<u8> {
    deliver_ack_body_mr(1)
}

/// RP-ACK MS→network (RP-MR `mr`) with an SMS-DELIVER-REPORT.
fn deliver_ack_body_mr(mr: u8) -> Vec<u8> {
    let mt = RpMessage::data_mt(mr, Address::international("15550000"), &[0x04, 0x00]);
    answer::deliver_report_ack(&mt).unwrap()
}

/// RP-ERROR MS→network (RP-MR 1, cause 22 memory capacity exceeded) with an
/// SMS-DELIVER-REPORT (TP-FCS 0xD3 memory capacity exceeded).
fn memory_full_body() -> Vec<u8> {
    let mt = RpMessage::data_mt(1, Address::international("15550000"), &[0x04, 0x00]);
    answer::deliver_report_error(
        &mt,
        sms::RpCause::MEMORY_CAPACITY_EXCEEDED,
        sms::FailureCause::MEMORY_CAPACITY_EXCEEDED,
    )
    .unwrap()
}

/// RP-SMMA (RP-MR 9).
fn smma_body() -> Vec<u8> {
    RpMessage::smma(9).encode().unwrap()
}

#[test]
fn shipped_sms_bodies_are_what_ims_sms_encodes() {
    for (name, want) in [
        ("im_sms_submit.bin", submit_body()),
        ("im_sms_deliver_ack.bin", deliver_ack_body()),
        ("sms_rp_error_memory.bin", memory_full_body()),
        ("sms_rp_smma.bin", smma_body()),
        ("sms_deliver_ack_mr2.bin", deliver_ack_body_mr(2)),
    ] {
        let path = sipp_dir().join(name);
        if std::env::var_os("IMS_WRITE_SMS_BIN").is_some() {
            std::fs::write(&path, &want).unwrap();
        }
        let got = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!(got, want, "{name}");
    }
    let (sub, ack) = (submit_body(), deliver_ack_body());
    let s = sms::decode(&sub, Direction::MsToNetwork).unwrap();
    assert_eq!(s.tpdu.unwrap().text().as_deref(), Some(TEXT));
    let a = sms::decode(&ack, Direction::MsToNetwork).unwrap();
    assert_eq!((a.rp.name(), a.rp.message_reference), ("RP-ACK", 1));
    let full = memory_full_body();
    let e = sms::decode(&full, Direction::MsToNetwork).unwrap();
    assert_eq!((e.rp.name(), e.rp.message_reference), ("RP-ERROR", 1));
    assert!(matches!(
        e.rp.body,
        sms::RpBody::Error { cause, .. } if cause == sms::RpCause::MEMORY_CAPACITY_EXCEEDED
    ));
    let smma = smma_body();
    let m = sms::decode(&smma, Direction::MsToNetwork).unwrap();
    assert_eq!((m.rp.name(), m.rp.message_reference), ("RP-SMMA", 9));
    let ack2 = deliver_ack_body_mr(2);
    let a2 = sms::decode(&ack2, Direction::MsToNetwork).unwrap();
    assert_eq!((a2.rp.name(), a2.rp.message_reference), ("RP-ACK", 2));
}

fn subscriber(n: u32, im: &str) -> Subscriber {
    let impi = format!("00101000000000{n}@ims.example.org");
    Subscriber {
        subscription: ImsSubscription {
            private_id: impi.clone(),
            service_profiles: vec![ServiceProfile {
                public_identities: vec![
                    PublicIdentity::new(format!("sip:{impi}")),
                    PublicIdentity::new(format!("tel:+1555000{n}")),
                ],
                // the SMS and REGISTER iFC of examples/cscf/ims.toml
                initial_filter_criteria: vec![
                    ifc(
                        im,
                        10,
                        Some(SessionCase::Originating),
                        "MESSAGE",
                        Some(r"(?i)application/vnd\.3gpp\.sms"),
                    ),
                    ifc(im, 40, None, "REGISTER", None),
                ],
                ..ServiceProfile::default()
            }],
        },
        credentials: Credentials {
            aka: Some(AkaCredentials::new(
                *b"ims-rs-demo-K-01",
                OperatorKey::Op(*b"ims-rs-demo-OP-1"),
                *b"AM",
                0,
            )),
            password: None,
        },
    }
}

fn config(base: u16) -> CoreConfig {
    config_on([
        base,
        base + 2,
        base + 10,
        base + 11,
        base + 20,
        base + 35,
        base + 36,
    ])
}

/// The core on these ports: P-CSCF, I-CSCF, S-CSCF terminating and originating, IM server,
/// HSS, PCRF.
fn config_on(p: [u16; 7]) -> CoreConfig {
    let im = format!("sip:127.0.0.1:{}", p[4]);
    CoreConfig {
        domain: "ims.example.org".into(),
        ip: LO,
        ports: Ports {
            pcscf: p[0],
            icscf: p[1],
            scscf_term: p[2],
            scscf_orig: p[3],
        },
        roles: Roles::ALL,
        hss: Peer::Embedded(SocketAddr::new(LO, p[5])),
        pcrf: Peer::Embedded(SocketAddr::new(LO, p[6])),
        subscribers: vec![subscriber(1, &im), subscriber(2, &im)],
        enum_table: enum_table(),
        registrar: RegistrarConfig::default(),
        nonce_secret: b"a test secret of 32 octets......".to_vec(),
        admin: None,
        im: ImOptions {
            port: p[4],
            ..ImOptions::default()
        },
    }
}

/// Runs SIPp to completion (bounded): exit status and output.
async fn sipp(bin: &Path, dir: &Path, args: &[String]) -> (bool, String) {
    let child = Command::new(bin)
        .args(args)
        .args(["-nostdin", "-timeout", "20", "-timeout_error", "-trace_err"])
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start sipp");
    let out = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
        .await
        .expect("sipp finishes within 30 s")
        .expect("sipp output");
    let mut text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    // SIPp's error log names what went wrong
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            if e.file_name().to_string_lossy().ends_with("_errors.log") {
                text += &std::fs::read_to_string(e.path()).unwrap_or_default();
            }
        }
    }
    (out.status.success(), text)
}

/// The core's Diameter peers connect after `ImsCore::start` returns; until the HSS answers, the
/// I-CSCF says 504 (Cx unreachable). Probes with a REGISTER of an unknown user (a UAR that the
/// HSS refuses) until the answer is something else.
async fn wait_for_hss(pcscf: SocketAddr) {
    let (ep, _events) = Endpoint::bind(EndpointConfig::default())
        .await
        .expect("probe binds");
    for i in 0..40 {
        let probe = RequestBuilder::new(Method::Register, "sip:ims.example.org")
            .header("Max-Forwards", 70)
            .header("From", "<sip:probe@ims.example.org>;tag=p")
            .header("To", "<sip:probe@ims.example.org>")
            .header("Call-ID", format!("probe-{i}"))
            .header("CSeq", format!("{} REGISTER", i + 1))
            .header("Contact", format!("<{}>;expires=60", ep.contact()))
            .build()
            .expect("REGISTER");
        let code = match ep.request(probe, Remote::udp(pcscf)).await {
            Ok(t) => t
                .final_response()
                .await
                .ok()
                .and_then(|r| r.as_message().status()),
            Err(_) => None,
        };
        if code.is_some_and(|c| c != 504) {
            ep.shutdown();
            return;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    panic!("the core's HSS never became reachable");
}

fn args(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// The SIPp arguments `v`, then those that run it once as a UE on 127.0.0.1:`port`.
fn once_on(port: &str, v: &[&str]) -> Vec<String> {
    let mut a = args(v);
    a.extend(args(&["-i", "127.0.0.1", "-p", port, "-m", "1"]));
    a
}

/// SIPp UE `user` (IMPI `user@ims.example.org`) on `port` registering through `pcscf` with
/// IMS-AKA (`ims_register.xml`).
fn register_args(pcscf: &str, user: &str, port: &str) -> Vec<String> {
    once_on(
        port,
        &[
            pcscf,
            "-sf",
            "ims_register.xml",
            "-s",
            user,
            "-au",
            &format!("{user}@ims.example.org"),
        ],
    )
}

/// SIPp UE `user` on `port` submitting one SMS through `pcscf` (`im_sms_mo.xml`, body
/// `im_sms_submit.bin` of `rp_len` octets), answering what the IP-SM-GW sends it with
/// `im_sms_ue_ooc.xml`.
fn mo_sms_args(pcscf: &str, user: &str, rp_len: &str, port: &str) -> Vec<String> {
    once_on(
        port,
        &[
            pcscf,
            "-sf",
            "im_sms_mo.xml",
            "-oocsf",
            "im_sms_ue_ooc.xml",
            "-s",
            user,
            "-key",
            "rp_len",
            rp_len,
        ],
    )
}

/// SIPp UE `user` on `port` receiving one SMS-DELIVER (`im_sms_mt.xml`) and answering it with
/// the RP-ACK `im_sms_deliver_ack.bin` of `ack_len` octets.
fn mt_sms_args(user: &str, ack_len: &str, port: &str) -> Vec<String> {
    once_on(
        port,
        &[
            "-sf",
            "im_sms_mt.xml",
            "-s",
            user,
            "-key",
            "ack_len",
            ack_len,
        ],
    )
}

fn leaves<'a>(v: &'a Value, out: &mut Vec<(&'a str, &'a str)>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                match x {
                    Value::String(s) => out.push((k.as_str(), s.as_str())),
                    _ => leaves(x, out),
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|e| leaves(e, out)),
        _ => {}
    }
}

/// One dissected SMS body: RP message type, TP-DA, TP-OA, TP-RA, text.
type Seen = (
    u32,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
);

fn num(v: &str) -> u32 {
    match v.strip_prefix("0x") {
        Some(h) => u32::from_str_radix(h, 16).unwrap_or(u32::MAX),
        None => v.parse().unwrap_or(u32::MAX),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sipp_mo_and_mt_sms_through_the_core() {
    let Some(bin) = sipp_bin() else {
        return;
    };
    let (_dir, d) = sms_scenario_dir("sipp", &["im_sms_deliver_ack.bin"]);
    let rp_len = file_len(&d, "im_sms_submit.bin");
    let ack_len = file_len(&d, "im_sms_deliver_ack.bin");
    let base = 7150;
    let tshark = common::interop_tool("tshark", "apt-get install tshark");
    let pcap = d.join("sms.pcap");
    // stopped with SIGTERM by LiveCapture, so tshark's dumpcap is not orphaned
    let cap = match &tshark {
        Some(t) => common::LiveCapture::start(t, "udp portrange 7150-7199", pcap.clone()).await,
        None => None,
    };
    let core = start_core(config(base)).await;
    let pcscf = format!("127.0.0.1:{base}");
    let register = |user, port| register_args(&pcscf, user, port);
    let (ok, out) = sipp(&bin, &d, &register("001010000000002", "7192")).await;
    assert!(ok, "B registers:\n{out}");
    let (bin2, d2) = (bin.clone(), d.clone());
    let mt_args = mt_sms_args("001010000000002", &ack_len, "7192");
    let mt = tokio::spawn(async move { sipp(&bin2, &d2, &mt_args).await });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (ok, out) = sipp(&bin, &d, &register("001010000000001", "7191")).await;
    assert!(ok, "A registers:\n{out}");
    let mo = mo_sms_args(&pcscf, "001010000000001", &rp_len, "7191");
    let (ok, out) = sipp(&bin, &d, &mo).await;
    assert!(ok, "MO SMS (SIPp A):\n{out}");
    let (ok, out) = mt.await.expect("MT task");
    assert!(ok, "MT SMS (SIPp B):\n{out}");

    let im = core.im_server().expect("IM server");
    settle(30, || im.queued() == 0 && im.stats().sms_sent == 3).await;
    let st = im.stats();
    assert_eq!(im.queued(), 0, "delivered and acknowledged: {st:?}");
    assert_eq!(
        (st.sms_received, st.sms_sent, st.sms_failed),
        (2, 3, 0),
        "{st:?}"
    );

    if let (Some(t), Some(c)) = (&tshark, cap) {
        let pcap = c.stop().await;
        let mut cmd = Command::new(t);
        cmd.arg("-r").arg(&pcap);
        for p in [7150, 7152, 7160, 7161, 7170, 7191, 7192] {
            cmd.args(["-d", &format!("udp.port=={p},sip")]);
        }
        let out = cmd
            .args(["-Y", "gsm_a.rp", "-T", "json"])
            .output()
            .await
            .expect("tshark");
        let packets: Vec<Value> = serde_json::from_slice(&out.stdout).expect("tshark JSON");
        let mut seen = Vec::new();
        for p in &packets {
            let text = p.to_string();
            assert!(!text.contains("_ws.malformed"), "malformed: {text}");
            let body = &p["_source"]["layers"]["sip"]["sip.msg_body"];
            let mut rp = Vec::new();
            leaves(&body["gsm_a.rp"], &mut rp);
            let mut tp = Vec::new();
            leaves(&body["gsm_sms"], &mut tp);
            for (k, v) in rp.iter().chain(tp.iter()) {
                if *k == "_ws.expert.severity" {
                    assert!(num(v) < 0x0060_0000, "expert info {v}: {rp:?} {tp:?}");
                }
            }
            let ty = rp
                .iter()
                .find(|(k, _)| *k == "gsm_a.rp.msg_type")
                .map_or(u32::MAX, |(_, v)| num(v));
            let get = |key: &str| {
                tp.iter()
                    .find(|(k, _)| *k == key)
                    .map(|(_, v)| v.to_string())
            };
            seen.push((
                ty,
                get("gsm_sms.tp-da"),
                get("gsm_sms.tp-oa"),
                get("gsm_sms.tp-ra"),
                get("gsm_sms.sms_text"),
            ));
        }
        let has = |f: &dyn Fn(&Seen) -> bool| seen.iter().any(f);
        let text = Some(TEXT.to_string());
        assert!(
            has(&|s| s.0 == 0
                && s.1.as_deref().is_some_and(|v| v.contains("15550002"))
                && s.4 == text),
            "SUBMIT from SIPp A: {seen:#?}"
        );
        assert!(
            has(&|s| s.0 == 1
                && s.2.as_deref().is_some_and(|v| v.contains("15550001"))
                && s.4 == text),
            "DELIVER to SIPp B: {seen:#?}"
        );
        assert!(
            has(&|s| s.0 == 1 && s.3.as_deref().is_some_and(|v| v.contains("15550002"))),
            "STATUS-REPORT to SIPp A: {seen:#?}"
        );
        assert!(has(&|s| s.0 == 2), "RP-ACK from SIPp B: {seen:#?}");
        assert!(has(&|s| s.0 == 3), "RP-ACK to SIPp A: {seen:#?}");
    }
    core.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sipp_mt_memory_full_then_smma_delivers_the_stored_sms() {
    let Some(bin) = sipp_bin() else {
        return;
    };
    let (_dir, d) = scenario_dir(
        "sipp-smma",
        &[
            "im_sms_mo.xml",
            "im_sms_ue_ooc.xml",
            "ims_register.xml",
            "im_sms_submit.bin",
            "sms_mt_memory_full.xml",
            "sms_rp_error_memory.bin",
            "sms_rp_smma.bin",
            "sms_deliver_ack_mr2.bin",
        ],
    );
    let len = |f: &str| file_len(&d, f);
    let core = start_core(config_on([7053, 7054, 7055, 7056, 7057, 7058, 7059])).await;
    let pcscf = "127.0.0.1:7053";
    let register = |user, port| register_args(pcscf, user, port);
    let (ok, out) = sipp(&bin, &d, &register("001010000000002", "7062")).await;
    assert!(ok, "B registers:\n{out}");
    let mt_args = args(&[
        "-sf",
        "sms_mt_memory_full.xml",
        "-s",
        "001010000000002",
        "-key",
        "err_len",
        &len("sms_rp_error_memory.bin"),
        "-key",
        "smma_len",
        &len("sms_rp_smma.bin"),
        "-key",
        "ack_len",
        &len("sms_deliver_ack_mr2.bin"),
        "-i",
        "127.0.0.1",
        "-p",
        "7062",
        "-m",
        "3",
    ]);
    let (bin2, d2) = (bin.clone(), d.clone());
    let mt = tokio::spawn(async move { sipp(&bin2, &d2, &mt_args).await });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (ok, out) = sipp(&bin, &d, &register("001010000000001", "7061")).await;
    assert!(ok, "A registers:\n{out}");
    let im = core.im_server().expect("IM server");
    let mo = mo_sms_args(pcscf, "001010000000001", &len("im_sms_submit.bin"), "7061");
    let (ok, out) = sipp(&bin, &d, &mo).await;
    assert!(ok, "MO SMS (SIPp A):\n{out}");
    let (ok, out) = mt.await.expect("MT task");
    assert!(ok, "MT SMS with memory full, then RP-SMMA (SIPp B):\n{out}");
    settle(50, || im.queued() == 0).await;
    let st = im.stats();
    assert_eq!(im.queued(), 0, "delivered after the RP-SMMA: {st:?}");
    // A's SUBMIT, B's RP-ERROR, RP-SMMA and RP-ACK
    assert_eq!(st.sms_received, 4, "{st:?}");
    // RP-ACK to A, two deliveries, RP-ACK to the SMMA (+ A's status report)
    assert!((4..=5).contains(&st.sms_sent), "{st:?}");
    core.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sipp_sms_for_an_unregistered_ue_arrives_after_it_registers() {
    let Some(bin) = sipp_bin() else {
        return;
    };
    let (_dir, d) = sms_scenario_dir("sipp-later", &[]);
    // B acknowledges the second attempt (the first met 480): RP-ACK with RP-MR 2
    std::fs::copy(
        sipp_dir().join("sms_deliver_ack_mr2.bin"),
        d.join("im_sms_deliver_ack.bin"),
    )
    .expect("copy the RP-ACK");
    let len = |f: &str| file_len(&d, f);
    let core = start_core(config_on([7121, 7122, 7123, 7127, 7128, 7129, 7132])).await;
    let pcscf = "127.0.0.1:7121";
    let register = |user, port| register_args(pcscf, user, port);
    let (ok, out) = sipp(&bin, &d, &register("001010000000001", "7133")).await;
    assert!(ok, "A registers:\n{out}");
    let im = core.im_server().expect("IM server");
    let mo = mo_sms_args(pcscf, "001010000000001", &len("im_sms_submit.bin"), "7133");
    let (ok, out) = sipp(&bin, &d, &mo).await;
    assert!(ok, "MO SMS (SIPp A):\n{out}");
    settle(50, || im.stats().sms_failed >= 1).await;
    assert_eq!(im.queued(), 1, "kept for B: {:?}", im.stats());
    assert!(im.stats().sms_failed >= 1, "the attempt met B unregistered");

    // B registers: the third-party REGISTER releases the SMS-DELIVER
    let (ok, out) = sipp(&bin, &d, &register("001010000000002", "7134")).await;
    assert!(ok, "B registers:\n{out}");
    let mt_args = mt_sms_args("001010000000002", &len("im_sms_deliver_ack.bin"), "7134");
    let (ok, out) = sipp(&bin, &d, &mt_args).await;
    assert!(ok, "MT SMS after registration (SIPp B):\n{out}");
    settle(50, || im.queued() == 0).await;
    assert_eq!(
        im.queued(),
        0,
        "delivered and acknowledged: {:?}",
        im.stats()
    );
    core.shutdown();
}
