//! The all-in-one IMS core (P-, I-, S-CSCF, embedded HSS and PCRF on real Diameter over
//! loopback) against SIPp UEs, with the Cx and Rx traffic captured by tshark on the loopback:
//!
//! 1. `aka_registration_and_deregistration`: `examples/sipp/ims_register_aka.xml` registers with
//!    IMS-AKA (401 from an MAA vector, SIPp's AKA response, 200 with Path, Service-Route and
//!    P-Associated-URI) and de-registers.
//! 2. `mo_call_through_the_core`: the callee registers (`ims_register.xml`) and answers
//!    (`ims_call_uas.xml`); the caller registers and calls the callee's tel URI
//!    (`ims_call_uac.xml`): P-CSCF → S-CSCF (originating) → I-CSCF (ENUM, LIR) → S-CSCF
//!    (terminating) → P-CSCF → UE, 180, 200, ACK, BYE.
//!
//! 3. `reg_event_rtr_ppr_and_unregistered_call`: GRUU, reg event SUBSCRIBE/NOTIFY, PPR and RTR
//!    triggered through the HSS admin interface, then a call to the de-registered user → 480.
//!
//! 4. `registration_expiry_deregisters_with_sar_timeout`: the registration timer (expired
//!    NOTIFY, SAR TIMEOUT_DEREGISTRATION).
//! 5. `third_party_register_to_the_application_server`: third-party REGISTERs to a SIPp AS, and
//!    de-registration when an AS refuses with DefaultHandling SESSION_TERMINATED.
//!
//! All check SIPp's exit status (0: every call succeeded) and, from the capture, that UAR, MAR,
//! SAR, LIR and the Rx AAR/STR were on the wire, answered DIAMETER_SUCCESS (or the Cx 2001/2002
//! experimental results), with no malformed packet or expert error in the Diameter dissector.
//!
//! SIPp and tshark are found with `common::interop_tool` (skip unless `IMS_REQUIRE_INTEROP=1`).

mod common;
mod ims_core;
use ims_core::wait_for;

use ims_core::{scenario, sipp, sipp_ue, subscriber, LO};

use ims::nf::hss::Subscriber;
use ims::nf::runtime::CoreConfig;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::process::Command;

fn config(base: u16) -> CoreConfig {
    ims_core::all_in_one(base, [base + 800, base + 801], None)
}

struct Capture {
    live: common::LiveCapture,
    tshark: PathBuf,
    diameter_ports: (u16, u16),
}

/// Live capture needs capture rights on the loopback (root here and in CI).
async fn capture(dir: &Path, diameter_ports: (u16, u16)) -> Option<Capture> {
    let tshark = common::interop_tool("tshark", "apt-get install tshark")?;
    let filter = format!(
        "tcp port {} or tcp port {}",
        diameter_ports.0, diameter_ports.1
    );
    let live = common::LiveCapture::start(&tshark, &filter, dir.join("core.pcap")).await?;
    Some(Capture {
        live,
        tshark,
        diameter_ports,
    })
}

impl Capture {
    /// Stops the capture and returns one line per Diameter message:
    /// `code request result experimental-result expert`.
    async fn diameter(self) -> Vec<String> {
        self.diameter_with(&[]).await
    }

    /// [`Capture::diameter`] with more tshark fields appended to each line. One line per
    /// Diameter message, also when one TCP segment carries several.
    async fn diameter_with(self, extra: &[&str]) -> Vec<String> {
        let file = self.live.stop().await;
        let out = Command::new(&self.tshark)
            .arg("-r")
            .arg(&file)
            .args([
                "-d",
                &format!("tcp.port=={},diameter", self.diameter_ports.0),
                "-d",
                &format!("tcp.port=={},diameter", self.diameter_ports.1),
                "-Y",
                "diameter",
                "-T",
                "json",
                "--no-duplicate-keys",
            ])
            .output()
            .await
            .expect("tshark reads the capture");
        let packets: serde_json::Value =
            serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Array(Vec::new()));
        let mut fields = vec![
            "diameter.cmd.code",
            "diameter.flags.request",
            "diameter.Result-Code",
            "diameter.Experimental-Result-Code",
            "_ws.expert",
            "_ws.malformed",
        ];
        fields.extend_from_slice(extra);
        ims_core::frames_of_packets(&packets, &fields)
            .iter()
            .map(|f| {
                fields
                    .iter()
                    .map(|name| f.get(name))
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect()
    }
}

fn check_diameter(lines: &[String], requests: &[(&str, &str)]) {
    check_diameter_allowing(lines, requests, &[]);
}

/// [`check_diameter`], where answers with the `allowed` experimental result codes (e.g. the
/// LIA's 5003 for a user who is no longer registered) also pass.
fn check_diameter_allowing(lines: &[String], requests: &[(&str, &str)], allowed: &[&str]) {
    assert!(!lines.is_empty(), "no Diameter captured");
    for l in lines {
        let f: Vec<&str> = l.split(' ').collect();
        assert!(
            f.len() < 5 || (f[4].is_empty() && f.get(5).is_none_or(|m| m.is_empty())),
            "expert info or malformed Diameter: {l}"
        );
        if f.get(1) == Some(&"False") || f.get(1) == Some(&"0") {
            let ok = f.get(2).is_some_and(|r| *r == "2001")
                || f.get(3)
                    .is_some_and(|r| r.starts_with("200") || allowed.contains(r));
            assert!(ok, "answer without success: {l}");
        }
    }
    for (code, name) in requests {
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with(&format!("{code} True"))
                    || l.starts_with(&format!("{code} 1"))),
            "no {name} ({code}) on the wire: {lines:#?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aka_registration_and_deregistration() {
    let Some(bin) = common::interop_tool("sipp", "apt-get install sip-tester") else {
        return;
    };
    let dir = common::TempDir::new("cscf", "reg", "IMS_KEEP_SIPP");
    let cfg = config(27060);
    let cap = capture(dir.path(), (27860, 27861)).await;
    let core = ims_core::start(cfg).await;
    let (ok, out) = sipp_ue(
        &bin,
        dir.path(),
        1,
        "127.0.0.1:27060",
        scenario("ims_register_aka.xml").to_str().unwrap(),
        "27090",
        &[],
    )
    .await;
    assert!(ok, "SIPp registration failed:\n{out}");
    if let Some(c) = cap {
        let lines = c.diameter().await;
        check_diameter(&lines, &[("300", "UAR"), ("303", "MAR"), ("301", "SAR")]);
    }
    core.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mo_call_through_the_core() {
    let Some(bin) = common::interop_tool("sipp", "apt-get install sip-tester") else {
        return;
    };
    let dir = common::TempDir::new("cscf", "call", "IMS_KEEP_SIPP");
    let cfg = config(28060);
    let cap = capture(dir.path(), (28860, 28861)).await;
    let core = ims_core::start(cfg).await;
    let pcscf = "127.0.0.1:28060";
    let (ok, out) = sipp_ue(
        &bin,
        dir.path(),
        2,
        pcscf,
        scenario("ims_register.xml").to_str().unwrap(),
        "28092",
        &[],
    )
    .await;
    assert!(ok, "callee registration failed:\n{out}");
    let uas_bin = bin.clone();
    let uas_dir = dir.path().to_path_buf();
    let uas = tokio::spawn(async move {
        sipp(
            &uas_bin,
            &uas_dir,
            &[
                "-sf",
                scenario("ims_call_uas.xml").to_str().unwrap(),
                "-i",
                "127.0.0.1",
                "-p",
                "28092",
                "-m",
                "1",
            ],
        )
        .await
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (ok, out) = sipp_ue(
        &bin,
        dir.path(),
        1,
        pcscf,
        scenario("ims_call_uac.xml").to_str().unwrap(),
        "28091",
        &["-key", "callee", "tel:+15550002"],
    )
    .await;
    assert!(ok, "caller failed:\n{out}");
    let (ok, out) = uas.await.expect("uas task");
    assert!(ok, "callee failed:\n{out}");
    if let Some(c) = cap {
        let lines = c.diameter().await;
        check_diameter(
            &lines,
            &[
                ("300", "UAR"),
                ("303", "MAR"),
                ("301", "SAR"),
                ("302", "LIR"),
                ("265", "AAR"),
                ("275", "STR"),
            ],
        );
    }
    core.shutdown();
}

/// One HTTP/1.1 request to the admin interface: (status, body).
async fn admin_request(addr: SocketAddr, method: &str, path: &str, body: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr)
        .await
        .expect("admin port");
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await.expect("write");
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut out))
        .await
        .expect("admin answers within 10 s")
        .expect("read");
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
    (status, body)
}

/// Network-initiated de-registration end to end: a UE registers with IMS-AKA and GRUU (pub-gruu
/// and temp-gruu in the 200), subscribes to its reg event and gets the full-state NOTIFY
/// (`examples/sipp/ims_reg_event.xml`); the HSS admin interface pushes new charging information
/// (PPR → PPA 2001) and then de-registers the user (RTR with Deregistration-Reason → the S-CSCF
/// removes the binding, NOTIFYs `terminated`/`rejected`, answers RTA 2001); a call to the user
/// then gets 480 (`ims_call_unregistered.xml`). The capture must show RTR/RTA and PPR/PPA.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reg_event_rtr_ppr_and_unregistered_call() {
    let Some(bin) = common::interop_tool("sipp", "apt-get install sip-tester") else {
        return;
    };
    let dir = common::TempDir::new("cscf", "rtr", "IMS_KEEP_SIPP");
    let mut cfg = config(29060);
    cfg.admin = Some(SocketAddr::new(LO, 29870));
    let cap = capture(dir.path(), (29860, 29861)).await;
    let core = ims_core::start(cfg).await;
    let admin = core.admin_addr().expect("admin listens");
    let pcscf = "127.0.0.1:29060";
    let ue_bin = bin.clone();
    let ue_dir = dir.path().to_path_buf();
    let ue = tokio::spawn(async move {
        sipp_ue(
            &ue_bin,
            &ue_dir,
            1,
            pcscf,
            scenario("ims_reg_event.xml").to_str().unwrap(),
            "29093",
            &[],
        )
        .await
    });
    // registered and subscribed
    let mut state = None;
    for _ in 0..150 {
        state = core.scscf_state();
        if state == Some((1, 2)) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        state,
        Some((1, 2)),
        "one registration and two reg event subscriptions (the UE's and the P-CSCF's)"
    );
    // the first NOTIFY reaches the UE
    tokio::time::sleep(Duration::from_millis(500)).await;
    let impi = "001010000000001@ims.example.org";
    let (st, body) = admin_request(admin, "GET", &format!("/subscribers/{impi}"), "").await;
    assert_eq!(st, 200, "{body}");
    assert!(body.contains("Registered"), "{body}");
    let (st, body) = admin_request(
        admin,
        "POST",
        "/ppr",
        &format!(r#"{{"impi":"{impi}","charging":{{"ccf":"aaa://ccf.ims.example.org"}}}}"#),
    )
    .await;
    assert_eq!(st, 200, "{body}");
    assert!(body.contains("\"result\":2001"), "{body}");
    let (st, body) = admin_request(
        admin,
        "POST",
        "/rtr",
        &format!(r#"{{"impi":"{impi}","reason":0,"info":"subscription ended"}}"#),
    )
    .await;
    assert_eq!(st, 200, "{body}");
    assert!(body.contains("\"result\":2001"), "{body}");
    // a second RTR: the HSS no longer has it registered
    let (st, _) = admin_request(admin, "POST", "/rtr", &format!(r#"{{"impi":"{impi}"}}"#)).await;
    assert_eq!(st, 409);
    let (st, _) = admin_request(
        admin,
        "POST",
        "/rtr",
        r#"{"impi":"nobody@ims.example.org"}"#,
    )
    .await;
    assert_eq!(st, 404);
    let (ok, out) = ue.await.expect("ue task");
    assert!(ok, "SIPp UE (register, subscribe, NOTIFYs) failed:\n{out}");
    assert_eq!(
        core.scscf_state(),
        Some((0, 0)),
        "binding and subscription gone"
    );

    let (ok, out) = sipp_ue(
        &bin,
        dir.path(),
        2,
        pcscf,
        scenario("ims_call_unregistered.xml").to_str().unwrap(),
        "29091",
        &["-key", "callee", "tel:+15550001"],
    )
    .await;
    assert!(ok, "call to the de-registered user did not get 480:\n{out}");
    if let Some(c) = cap {
        let lines = c.diameter().await;
        check_diameter_allowing(
            &lines,
            &[
                ("300", "UAR"),
                ("303", "MAR"),
                ("301", "SAR"),
                ("305", "PPR"),
                ("304", "RTR"),
                ("302", "LIR"),
            ],
            // the LIA for the de-registered callee: DIAMETER_ERROR_IDENTITY_NOT_REGISTERED
            &["5003"],
        );
        for code in ["304", "305"] {
            assert!(
                lines
                    .iter()
                    .any(|l| l.starts_with(&format!("{code} False 2001"))
                        || l.starts_with(&format!("{code} 0 2001"))),
                "no successful answer to {code}: {lines:#?}"
            );
        }
    }
    core.shutdown();
}

/// Subscriber `n` with an iFC sending its REGISTERs to the AS at `server` (TS 29.228 B.2.2),
/// with the REGISTER and its 200 included, and the given default handling.
fn with_register_ifc(n: u32, server: &str, terminated: bool) -> Subscriber {
    use ims::nf::subscription::{
        ApplicationServer, DefaultHandling, InitialFilterCriteria, Spt, SptKind, TriggerPoint,
    };
    let mut s = subscriber(n);
    let mut spt = Spt::new(SptKind::Method("REGISTER".into()));
    spt.groups = vec![0];
    let mut asv = ApplicationServer::new(server.to_string());
    asv.include_register_request = true;
    asv.include_register_response = true;
    if terminated {
        asv.default_handling = DefaultHandling::SessionTerminated;
    }
    s.subscription.service_profiles[0].initial_filter_criteria = vec![InitialFilterCriteria {
        priority: 0,
        trigger_point: Some(TriggerPoint {
            condition_type_cnf: false,
            spts: vec![spt],
        }),
        application_server: asv,
        profile_part_indicator: None,
    }];
    s
}

/// The registration timer: a UE registers for 2 s (the registrar allows 1 s here), subscribes to
/// its reg event and does not refresh; the S-CSCF removes the binding when it expires, NOTIFYs
/// `terminated` with contact event `expired` (`ims_reg_expiry.xml`) and sends SAR
/// TIMEOUT_DEREGISTRATION (Server-Assignment-Type 4, checked in the capture).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registration_expiry_deregisters_with_sar_timeout() {
    let Some(bin) = common::interop_tool("sipp", "apt-get install sip-tester") else {
        return;
    };
    let dir = common::TempDir::new("cscf", "expiry", "IMS_KEEP_SIPP");
    let mut cfg = config(26060);
    cfg.registrar.min_expires = 1;
    let cap = capture(dir.path(), (26860, 26861)).await;
    let core = ims_core::start(cfg).await;
    let started = tokio::time::Instant::now();
    let (ok, out) = sipp_ue(
        &bin,
        dir.path(),
        1,
        "127.0.0.1:26060",
        scenario("ims_reg_expiry.xml").to_str().unwrap(),
        "26094",
        &["-key", "expires", "2"],
    )
    .await;
    assert!(
        ok,
        "SIPp (register 2 s, subscribe, expired NOTIFY) failed:\n{out}"
    );
    // expired on time: 2 s after the 200, give or take the 1 s timer tick
    let took = started.elapsed();
    assert!(took < Duration::from_secs(8), "expiry took {took:?}");
    assert_eq!(core.scscf_state(), Some((0, 0)));
    if let Some(c) = cap {
        let lines = c.diameter_with(&["diameter.Server-Assignment-Type"]).await;
        check_diameter(&lines, &[("300", "UAR"), ("303", "MAR"), ("301", "SAR")]);
        // SAR REGISTRATION (1), then TIMEOUT_DEREGISTRATION (4)
        let sat: Vec<&str> = lines
            .iter()
            .filter(|l| l.starts_with("301 True") || l.starts_with("301 1"))
            .filter_map(|l| l.rsplit(' ').next())
            .collect();
        assert_eq!(sat, ["1", "4"], "{lines:#?}");
    }
    core.shutdown();
}

/// Third-party registration (TS 24.229 §5.4.1.7): the subscriber's iFC names an AS for REGISTER;
/// the AS (SIPp, `ims_as_register_uas.xml`) gets a third-party REGISTER with the UE's REGISTER
/// and the 200 as message/sip parts, and one with Expires 0 at de-registration. A second user's
/// AS refuses (`ims_as_register_fail.xml`) and its iFC says SESSION_TERMINATED: the S-CSCF
/// de-registers that user (SAR ADMINISTRATIVE_DEREGISTRATION, type 8).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn third_party_register_to_the_application_server() {
    let Some(bin) = common::interop_tool("sipp", "apt-get install sip-tester") else {
        return;
    };
    let dir = common::TempDir::new("cscf", "3pr", "IMS_KEEP_SIPP");
    let mut cfg = config(25060);
    cfg.subscribers = vec![
        with_register_ifc(1, "sip:127.0.0.1:25170", false),
        with_register_ifc(2, "sip:127.0.0.1:25171", true),
    ];
    let cap = capture(dir.path(), (25860, 25861)).await;
    let core = ims_core::start(cfg).await;
    let spawn_as = |scen: &'static str, port: &'static str| {
        let (b, d) = (bin.clone(), dir.path().to_path_buf());
        tokio::spawn(async move {
            sipp(
                &b,
                &d,
                &[
                    "-sf",
                    scenario(scen).to_str().unwrap(),
                    // the REGISTER with two message/sip parts exceeds 1300 octets: the
                    // S-CSCF sends it over TCP (RFC 3261 §18.1.1)
                    "-t",
                    "t1",
                    "-i",
                    "127.0.0.1",
                    "-p",
                    port,
                    "-m",
                    "1",
                ],
            )
            .await
        })
    };
    let as_ok = spawn_as("ims_as_register_uas.xml", "25170");
    let as_fail = spawn_as("ims_as_register_fail.xml", "25171");
    tokio::time::sleep(Duration::from_millis(500)).await;
    // user 1 registers and de-registers: two third-party REGISTERs
    let (ok, out) = sipp_ue(
        &bin,
        dir.path(),
        1,
        "127.0.0.1:25060",
        scenario("ims_register_aka.xml").to_str().unwrap(),
        "25091",
        &[],
    )
    .await;
    assert!(ok, "UE 1 failed:\n{out}");
    let (ok, out) = as_ok.await.expect("as task");
    assert!(ok, "the AS did not get both third-party REGISTERs:\n{out}");
    // user 2 registers; its AS refuses; the S-CSCF de-registers it
    let (ok, out) = sipp_ue(
        &bin,
        dir.path(),
        2,
        "127.0.0.1:25060",
        scenario("ims_register.xml").to_str().unwrap(),
        "25092",
        &[],
    )
    .await;
    assert!(ok, "UE 2 failed:\n{out}");
    let (ok, out) = as_fail.await.expect("as task");
    assert!(ok, "the refusing AS failed:\n{out}");
    wait_for("the S-CSCF to de-register user 2", || {
        core.scscf_state() == Some((0, 0))
    })
    .await;
    let hss = core
        .hss()
        .expect("embedded HSS")
        .hss()
        .lock()
        .unwrap()
        .registration("001010000000002@ims.example.org")
        .map(|r| r.0);
    assert_eq!(hss, Some(ims::nf::hss::RegistrationState::NotRegistered));
    if let Some(c) = cap {
        let lines = c.diameter_with(&["diameter.Server-Assignment-Type"]).await;
        check_diameter(&lines, &[("300", "UAR"), ("303", "MAR"), ("301", "SAR")]);
        let sat: Vec<&str> = lines
            .iter()
            .filter(|l| l.starts_with("301 True") || l.starts_with("301 1"))
            .filter_map(|l| l.rsplit(' ').next())
            .collect();
        // user 1: REGISTRATION, USER_DEREGISTRATION; user 2: REGISTRATION,
        // ADMINISTRATIVE_DEREGISTRATION
        assert_eq!(sat, ["1", "5", "1", "8"], "{lines:#?}");
    }
    core.shutdown();
}

/// The shipped `examples/cscf/ims.toml` loads (subscribers, keys, ENUM rule) through the example's
/// own `--check` path. `cargo test` builds examples; `cargo test --test cscf_sipp` alone does
/// not, so the test skips (saying so) when the binary is absent.
#[test]
fn shipped_configuration_loads() {
    let Some(bin) = common::example_binary("cscf") else {
        return;
    };
    let out = std::process::Command::new(&bin)
        .arg("--check")
        .output()
        .expect("run cscf --check");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("domain ims.example.org"), "{text}");
    assert!(text.contains("2 subscribers"), "{text}");
    assert!(text.contains("sec-agree port-c 5066 port-s 5064"), "{text}");
    assert!(
        text.contains("challenges REGISTERs over the SAs: false"),
        "{text}"
    );
    // `[registrar] reauthenticate_protected = true` reaches the S-CSCF's options
    let dir = common::TempDir::new("cscf", "check", "IMS_KEEP_SIPP");
    let shipped = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/cscf/ims.toml"),
    )
    .expect("ims.toml");
    assert!(shipped.contains("reauthenticate_protected = false"));
    let strict = dir.path().join("strict.toml");
    std::fs::write(
        &strict,
        shipped.replace(
            "reauthenticate_protected = false",
            "reauthenticate_protected = true",
        ),
    )
    .expect("write");
    let out = std::process::Command::new(&bin)
        .args(["--check", "--config"])
        .arg(&strict)
        .output()
        .expect("run cscf --check --config");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("challenges REGISTERs over the SAs: true"),
        "{text}"
    );
    let bad = std::process::Command::new(&bin)
        .args(["--role", "x"])
        .output()
        .expect("run cscf");
    assert_eq!(bad.status.code(), Some(2), "a usage error exits 2");
}
