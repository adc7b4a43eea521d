//! Dx / SLF (TS 23.228 §4.8.1, TS 29.228, TS 29.229 §6.1): the all-in-one core with two
//! embedded HSSs behind an embedded SLF. User 1 lives on `hss1`, user 2 on `hss2`; the I- and
//! S-CSCF only know the SLF. Both users register with IMS-AKA (SIPp) and call each other
//! (tel URIs: ENUM, LIR) through P/S/I/S/P-CSCF.
//!
//! The capture (tshark on the SLF's and both HSSs' ports) must show: the SLF answering 3006
//! DIAMETER_REDIRECT_INDICATION with Redirect-Host naming each user's HSS and
//! Redirect-Host-Usage ALL_USER; the redirected request reaching that HSS with its
//! Destination-Host; the redirect cached (RFC 6733 §6.13): of user 2's UAR/MAR/SAR only the
//! first of each CSCF (I-CSCF UAR, S-CSCF MAR) goes to the SLF, all the others straight to
//! hss2; LIR (no User-Name, so not cacheable per user) asks the SLF each time; every other
//! answer is a success, nothing malformed.

mod common;
mod ims_core;

use ims::nf::runtime::{EmbeddedHss, ImsCore, Peer, Roles, SlfSetup};
use ims_core::{admin_request, capture_diameter, scenario, sipp, subscriber, Frame, LO};
use std::net::SocketAddr;
use std::time::Duration;

const BASE: u16 = 5100;
const HSS1: u16 = 5900;
const HSS2: u16 = 5901;
const SLF: u16 = 5902;
const PCRF: u16 = 5903;
const UE1: &str = "5191";
const UE2: &str = "5192";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hss_behind_an_slf_register_and_call_each_other() {
    let Some(bin) = common::interop_tool("sipp", "apt-get install sip-tester") else {
        return;
    };
    let dir = common::TempDir::new("cscf", "slf", "IMS_KEEP_SIPP");
    let impi = |n: u32| format!("00101000000000{n}@ims.example.org");
    let mut cfg = ims_core::config(
        BASE,
        Roles::ALL,
        Peer::EmbeddedSlf(SlfSetup {
            addr: SocketAddr::new(LO, SLF),
            hss: vec![
                EmbeddedHss {
                    host: "hss1.ims.example.org".into(),
                    addr: SocketAddr::new(LO, HSS1),
                    users: vec![impi(1)],
                },
                EmbeddedHss {
                    host: "hss2.ims.example.org".into(),
                    addr: SocketAddr::new(LO, HSS2),
                    users: vec![impi(2)],
                },
            ],
            cache_time: 300,
        }),
        Peer::Embedded(SocketAddr::new(LO, PCRF)),
    );
    assert_eq!(cfg.subscribers.len(), 2);
    cfg.admin = Some(SocketAddr::new(LO, 6962));
    let _ = subscriber;
    let tshark = common::interop_tool("tshark", "apt-get install tshark");
    let cap = capture_diameter(tshark, dir.path(), &[HSS1, HSS2, SLF]).await;
    let core = ImsCore::start(cfg).await.expect("core starts");
    // each HSS holds only its own subscriber
    let h1 = core.hss_named("hss1.ims.example.org").expect("hss1");
    let h2 = core.hss_named("hss2.ims.example.org").expect("hss2");
    assert!(h1.hss().lock().unwrap().subscriber(&impi(1)).is_some());
    assert!(h1.hss().lock().unwrap().subscriber(&impi(2)).is_none());
    assert!(h2.hss().lock().unwrap().subscriber(&impi(2)).is_some());
    assert!(h2.hss().lock().unwrap().subscriber(&impi(1)).is_none());

    let pcscf = format!("127.0.0.1:{BASE}");
    let register = |who: &'static str, port: &'static str| {
        let (bin, dir, pcscf) = (bin.clone(), dir.path().to_path_buf(), pcscf.clone());
        async move {
            let user = format!("00101000000000{who}");
            let au = format!("{user}@ims.example.org");
            sipp(
                &bin,
                &dir,
                &[
                    &pcscf,
                    "-sf",
                    scenario("ims_register.xml").to_str().unwrap(),
                    "-s",
                    &user,
                    "-au",
                    &au,
                    "-i",
                    "127.0.0.1",
                    "-p",
                    port,
                    "-m",
                    "1",
                ],
            )
            .await
        }
    };
    let call = |who: &'static str, port: &'static str, callee: &'static str, callee_port| {
        let (bin, dir, pcscf) = (bin.clone(), dir.path().to_path_buf(), pcscf.clone());
        async move {
            let (ub, ud) = (bin.clone(), dir.clone());
            let uas = tokio::spawn(async move {
                sipp(
                    &ub,
                    &ud,
                    &[
                        "-sf",
                        scenario("ims_call_uas.xml").to_str().unwrap(),
                        "-i",
                        "127.0.0.1",
                        "-p",
                        callee_port,
                        "-m",
                        "1",
                    ],
                )
                .await
            });
            tokio::time::sleep(Duration::from_millis(500)).await;
            let user = format!("00101000000000{who}");
            let au = format!("{user}@ims.example.org");
            let (ok, out) = sipp(
                &bin,
                &dir,
                &[
                    &pcscf,
                    "-sf",
                    scenario("ims_call_uac.xml").to_str().unwrap(),
                    "-s",
                    &user,
                    "-au",
                    &au,
                    "-key",
                    "callee",
                    callee,
                    "-i",
                    "127.0.0.1",
                    "-p",
                    port,
                    "-m",
                    "1",
                ],
            )
            .await;
            assert!(ok, "caller {who} failed:\n{out}");
            let (ok, out) = uas.await.expect("uas task");
            assert!(ok, "callee of {who} failed:\n{out}");
        }
    };
    let (ok, out) = register("2", UE2).await;
    assert!(
        ok,
        "user 2 (on hss2) did not register through the SLF:\n{out}"
    );
    // user 1 (hss1) registers and calls user 2 (hss2), then user 2 calls user 1 back
    call("1", UE1, "tel:+15550002", UE2).await;
    call("2", UE2, "tel:+15550001", UE1).await;
    // the one admin interface drives every HSS: a PPR for each user leaves from that user's
    // HSS, and so does the RTR de-registering user 2 (on hss2)
    let admin = core.admin_addr().expect("admin listens");
    for n in [1, 2] {
        let (st, body) = admin_request(
            admin,
            "POST",
            "/ppr",
            &format!(
                r#"{{"impi":"{}","charging":{{"ccf":"aaa://ccf.ims.example.org"}}}}"#,
                impi(n)
            ),
        )
        .await;
        assert_eq!(st, 200, "PPR for user {n}: {body}");
        assert!(body.contains("\"result\":2001"), "PPA 2001: {body}");
    }
    let (st, body) = admin_request(
        admin,
        "POST",
        "/rtr",
        &format!(r#"{{"impi":"{}","reason":0}}"#, impi(2)),
    )
    .await;
    assert_eq!(st, 200, "RTR for user 2 on hss2: {body}");
    assert!(body.contains("\"result\":2001"), "RTA 2001: {body}");
    assert!(
        core.hss_named("hss2.ims.example.org")
            .unwrap()
            .hss()
            .lock()
            .unwrap()
            .registration(&impi(2))
            .is_none_or(|(_, scscf)| scscf.is_none()),
        "hss2 forgot user 2's S-CSCF"
    );
    core.shutdown();

    let Some(cap) = cap else { return };
    let frames = cap
        .frames(&[
            "diameter.Redirect-Host",
            "diameter.Redirect-Host-Usage",
            "diameter.Destination-Host",
            "diameter.User-Name",
            "diameter.Public-Identity",
            "diameter.Origin-Host",
        ])
        .await;
    assert!(!frames.is_empty(), "no Diameter captured");
    for f in &frames {
        assert!(f.clean(), "malformed or expert info: {f:?}");
        if !f.is_request() {
            let rc = f.get("diameter.Result-Code");
            let er = f.get("diameter.Experimental-Result-Code");
            assert!(
                rc == "2001" || rc == "3006" || er.starts_with("200"),
                "answer without success: {f:?}"
            );
        }
    }
    let to = |port: u16| {
        let p = port.to_string();
        frames
            .iter()
            .filter(move |f| f.is_request() && f.get("tcp.dstport") == p)
    };
    // redirects from the SLF naming each user's HSS, cacheable per user
    let redirects: Vec<_> = frames
        .iter()
        .filter(|f| {
            !f.is_request()
                && f.get("tcp.srcport") == SLF.to_string()
                && ["300", "301", "302", "303"].contains(&f.code())
        })
        .collect();
    assert!(
        redirects
            .iter()
            .all(|f| f.get("diameter.Result-Code") == "3006"),
        "the SLF answers only with redirects: {redirects:#?}"
    );
    for hss in ["aaa://hss1.ims.example.org", "aaa://hss2.ims.example.org"] {
        assert!(
            redirects
                .iter()
                .any(|f| f.get("diameter.Redirect-Host") == hss
                    && f.get("diameter.Redirect-Host-Usage") == "6"),
            "no redirect to {hss}: {redirects:#?}"
        );
    }
    // user 2's requests with User-Name: the SLF sees the first of each client only
    let user2 = impi(2);
    let at_slf: Vec<&str> = to(SLF)
        .filter(|f| f.get("diameter.User-Name") == user2)
        .map(|f| f.code())
        .collect();
    let mut sorted = at_slf.clone();
    sorted.sort_unstable();
    assert_eq!(
        sorted,
        ["300", "303"],
        "only the I-CSCF's first UAR and the S-CSCF's first MAR ask the SLF (then cached)"
    );
    let at_hss2: Vec<&Frame> = to(HSS2)
        .filter(|f| f.get("diameter.User-Name") == user2)
        .collect();
    for code in ["300", "303", "301"] {
        assert!(
            at_hss2.iter().filter(|f| f.code() == code).count() >= 2,
            "user 2's {code} requests reach hss2: {at_hss2:#?}"
        );
    }
    assert!(
        at_hss2
            .iter()
            .any(|f| f.get("diameter.Destination-Host") == "hss2.ims.example.org"),
        "the redirected request names hss2 in Destination-Host"
    );
    assert!(
        to(HSS1).all(|f| f.get("diameter.User-Name") != user2),
        "nothing of user 2 reaches hss1"
    );
    assert!(
        to(HSS2).all(|f| f.get("diameter.User-Name") != impi(1)),
        "nothing of user 1 reaches hss2"
    );
    // HSS-initiated requests (PPR 305, RTR 304) leave from the user's own HSS
    let from_hss = |code: &str, port: u16| {
        frames
            .iter()
            .filter(|f| f.is_request() && f.code() == code)
            .filter(|f| f.get("tcp.srcport") == port.to_string())
            .map(|f| (f.get("diameter.User-Name"), f.get("diameter.Origin-Host")))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        from_hss("305", HSS1),
        [(impi(1).as_str(), "hss1.ims.example.org")]
    );
    assert_eq!(
        from_hss("305", HSS2),
        [(user2.as_str(), "hss2.ims.example.org")]
    );
    assert_eq!(
        from_hss("304", HSS2),
        [(user2.as_str(), "hss2.ims.example.org")]
    );
    assert!(from_hss("304", HSS1).is_empty());
    // LIR: one per call at the SLF (redirected) and at the callee's HSS
    let lir = |port| to(port).filter(|f| f.code() == "302").count();
    assert!(lir(SLF) >= 2, "LIRs go to the SLF first");
    assert!(
        lir(HSS1) >= 1 && lir(HSS2) >= 1,
        "then to each callee's HSS"
    );
}

/// The `[hss] slf` / `[[hss.instance]]` form of the example's configuration loads (through the
/// example's `--check`), and a half-written one is refused. Skips when the example is not built
/// (`cargo test` builds it; `cargo test --test cscf_slf` alone does not).
#[test]
fn slf_configuration_loads() {
    let Some(bin) = common::example_binary("cscf") else {
        return;
    };
    let shipped = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/cscf/ims.toml"),
    )
    .expect("ims.toml");
    let slf = shipped.replacen(
        "listen = \"127.0.0.1:3868\"",
        "slf = \"127.0.0.1:3870\"\nslf_cache_time = 60",
        1,
    ) + "\n[[hss.instance]]\nhost = \"hss1.ims.example.org\"\nlisten = \"127.0.0.1:3868\"\n\
users = [\"001010000000001@ims.example.org\"]\n\n[[hss.instance]]\nhost = \"hss2.ims.example.org\"\n\
listen = \"127.0.0.1:3871\"\nusers = [\"001010000000002@ims.example.org\"]\n";
    assert_ne!(slf, shipped, "the shipped [hss] listens on 127.0.0.1:3868");
    let dir = common::TempDir::new("cscf", "slfcfg", "IMS_KEEP_SIPP");
    let run = |text: &str| {
        let f = dir.path().join("slf.toml");
        std::fs::write(&f, text).expect("write config");
        std::process::Command::new(&bin)
            .arg("--config")
            .arg(&f)
            .arg("--check")
            .output()
            .expect("run cscf --check")
    };
    let out = run(&slf);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("EmbeddedSlf"), "{text}");
    assert!(text.contains("hss2.ims.example.org"), "{text}");
    assert!(text.contains("cache_time: 60"), "{text}");
    // an SLF without HSS instances is refused
    let bad = shipped.replacen("listen = \"127.0.0.1:3868\"", "slf = \"127.0.0.1:3870\"", 1);
    let out = run(&bad);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("[[hss.instance]]"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
