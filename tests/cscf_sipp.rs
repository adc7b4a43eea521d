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
//! Both check SIPp's exit status (0: every call succeeded) and, from the capture, that UAR, MAR,
//! SAR, LIR and the Rx AAR/STR were on the wire, answered DIAMETER_SUCCESS (or the Cx 2001/2002
//! experimental results), with no malformed packet or expert error in the Diameter dissector.
//!
//! SIPp and tshark are found with `common::interop_tool` (skip unless `IMS_REQUIRE_INTEROP=1`).

mod common;

use ims::nf::enum_dns::{EnumTable, Naptr};
use ims::nf::hss::{AkaCredentials, Credentials, Subscriber};
use ims::nf::registrar::RegistrarConfig;
use ims::nf::runtime::{CoreConfig, ImsCore, Peer, Ports, Roles};
use ims::nf::subscription::{ImsSubscription, PublicIdentity, ServiceProfile};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::process::Command;

const LO: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

fn scenario(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples/sipp")
        .join(name)
}

fn subscriber(n: u32) -> Subscriber {
    let impi = format!("00101000000000{n}@ims.example.org");
    Subscriber {
        subscription: ImsSubscription {
            private_id: impi.clone(),
            service_profiles: vec![ServiceProfile {
                public_identities: vec![
                    PublicIdentity::new(format!("sip:{impi}")),
                    PublicIdentity::new(format!("tel:+1555000{n}")),
                    PublicIdentity::new(format!("sip:+1555000{n}@ims.example.org")),
                ],
                ..ServiceProfile::default()
            }],
        },
        credentials: Credentials {
            // the raw octets SIPp uses for aka_K / aka_OP / aka_AMF in the scenarios
            aka: Some(AkaCredentials::new(
                *b"ims-rs-demo-K-01",
                ims::auth::milenage::OperatorKey::Op(*b"ims-rs-demo-OP-1"),
                *b"AM",
                0,
            )),
            password: Some("secret".into()),
        },
    }
}

fn config(base: u16) -> CoreConfig {
    let mut enum_table = EnumTable::new("e164.arpa");
    enum_table.insert_default(Naptr {
        order: 100,
        preference: 10,
        flags: "u".into(),
        services: "E2U+sip".into(),
        regexp: r"!^\+(.*)$!sip:+\1@ims.example.org!".into(),
        replacement: ".".into(),
    });
    CoreConfig {
        domain: "ims.example.org".into(),
        ip: LO,
        ports: Ports {
            pcscf: base,
            icscf: base + 2,
            scscf_term: base + 10,
            scscf_orig: base + 11,
        },
        roles: Roles::ALL,
        hss: Peer::Embedded(SocketAddr::new(LO, base + 800)),
        pcrf: Peer::Embedded(SocketAddr::new(LO, base + 801)),
        subscribers: vec![subscriber(1), subscriber(2)],
        enum_table,
        registrar: RegistrarConfig::default(),
        nonce_secret: b"a test secret of 32 octets......".to_vec(),
    }
}

/// Runs SIPp to completion (bounded) and returns its exit status and stdout.
async fn sipp(bin: &Path, dir: &Path, args: &[&str]) -> (bool, String) {
    let child = Command::new(bin)
        .args(args)
        .args(["-nostdin", "-timeout", "30", "-trace_err"])
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start sipp");
    let out = tokio::time::timeout(Duration::from_secs(45), child.wait_with_output())
        .await
        .expect("sipp finishes within 45 s")
        .expect("sipp output");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

struct Capture {
    child: tokio::process::Child,
    file: PathBuf,
    tshark: PathBuf,
    diameter_ports: (u16, u16),
}

/// Live capture needs capture rights on the loopback (root here and in CI).
async fn capture(dir: &Path, diameter_ports: (u16, u16)) -> Option<Capture> {
    let tshark = common::interop_tool("tshark", "apt-get install tshark")?;
    let file = dir.join("core.pcap");
    let filter = format!(
        "tcp port {} or tcp port {}",
        diameter_ports.0, diameter_ports.1
    );
    let child = Command::new(&tshark)
        .args(["-i", "lo", "-f", &filter, "-w"])
        .arg(&file)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .ok()?;
    // let dumpcap open the interface before the traffic starts
    for _ in 0..50 {
        if file.exists() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // the file appears before dumpcap captures: give it time (registration takes milliseconds)
    tokio::time::sleep(Duration::from_millis(1500)).await;
    Some(Capture {
        child,
        file,
        tshark,
        diameter_ports,
    })
}

impl Capture {
    /// Stops the capture and returns one line per Diameter message:
    /// `code request result experimental-result expert`.
    async fn diameter(mut self) -> Vec<String> {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
        let out = Command::new(&self.tshark)
            .arg("-r")
            .arg(&self.file)
            .args([
                "-d",
                &format!("tcp.port=={},diameter", self.diameter_ports.0),
                "-d",
                &format!("tcp.port=={},diameter", self.diameter_ports.1),
                "-Y",
                "diameter",
                "-T",
                "fields",
                "-E",
                "separator=/s",
                "-e",
                "diameter.cmd.code",
                "-e",
                "diameter.flags.request",
                "-e",
                "diameter.Result-Code",
                "-e",
                "diameter.Experimental-Result-Code",
                "-e",
                "_ws.expert",
                "-e",
                "_ws.malformed",
            ])
            .output()
            .await
            .expect("tshark reads the capture");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .collect()
    }
}

fn check_diameter(lines: &[String], requests: &[(&str, &str)]) {
    assert!(!lines.is_empty(), "no Diameter captured");
    for l in lines {
        let f: Vec<&str> = l.split(' ').collect();
        assert!(
            f.len() < 5 || (f[4].is_empty() && f.get(5).is_none_or(|m| m.is_empty())),
            "expert info or malformed Diameter: {l}"
        );
        if f.get(1) == Some(&"False") || f.get(1) == Some(&"0") {
            let ok = f.get(2).is_some_and(|r| *r == "2001")
                || f.get(3).is_some_and(|r| r.starts_with("200"));
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
    let core = ImsCore::start(cfg).await.expect("core starts");
    let (ok, out) = sipp(
        &bin,
        dir.path(),
        &[
            "127.0.0.1:27060",
            "-sf",
            scenario("ims_register_aka.xml").to_str().unwrap(),
            "-s",
            "001010000000001",
            "-au",
            "001010000000001@ims.example.org",
            "-i",
            "127.0.0.1",
            "-p",
            "27090",
            "-m",
            "1",
        ],
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
    let core = ImsCore::start(cfg).await.expect("core starts");
    let pcscf = "127.0.0.1:28060";
    let (ok, out) = sipp(
        &bin,
        dir.path(),
        &[
            pcscf,
            "-sf",
            scenario("ims_register.xml").to_str().unwrap(),
            "-s",
            "001010000000002",
            "-au",
            "001010000000002@ims.example.org",
            "-i",
            "127.0.0.1",
            "-p",
            "28092",
            "-m",
            "1",
        ],
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
    let (ok, out) = sipp(
        &bin,
        dir.path(),
        &[
            pcscf,
            "-sf",
            scenario("ims_call_uac.xml").to_str().unwrap(),
            "-s",
            "001010000000001",
            "-au",
            "001010000000001@ims.example.org",
            "-key",
            "callee",
            "tel:+15550002",
            "-i",
            "127.0.0.1",
            "-p",
            "28091",
            "-m",
            "1",
        ],
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

/// The shipped `examples/cscf/ims.toml` loads (subscribers, keys, ENUM rule) through the example's
/// own `--check` path. `cargo test` builds examples; `cargo test --test cscf_sipp` alone does
/// not, so the test skips (saying so) when the binary is absent.
#[test]
fn shipped_configuration_loads() {
    let exe = std::env::current_exe().expect("current_exe");
    let bin = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("test binary is in target/<profile>/deps")
        .join("examples")
        .join(format!("cscf{}", std::env::consts::EXE_SUFFIX));
    if !bin.is_file() {
        eprintln!(
            "SKIP: {} not built (run `cargo build --example cscf`)",
            bin.display()
        );
        return;
    }
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
    let bad = std::process::Command::new(&bin)
        .args(["--role", "x"])
        .output()
        .expect("run cscf");
    assert_eq!(bad.status.code(), Some(2), "a usage error exits 2");
}
