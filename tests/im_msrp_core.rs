//! The IM server's MSRP relay in the all-in-one core (`CoreOptions::im_msrp_relay`, what
//! `examples/cscf --msrp-relay URI --msrp-relay-auth USER:PASSWORD` sets): the core's session
//! anchor authenticates to the relay when the core starts (RFC 4976 §5) and keeps its link;
//! a relay refusing the credentials stops the core from starting; the example's flags are read
//! and checked, and the example binary started with them authenticates to the relay.
//! Ports 7300-7491 (H3's range 7200-7499).

// `AnchorRelay { .., ..default() }`: the default fills the TLS trust when the `tls` feature
// adds that field
#![allow(clippy::needless_update)]

mod common;
mod ims_core;

use ims::msrp::relay::RelayConfig;
use ims::msrp::UriBuf;
use ims::net::msrp::MsrpRelay;
use ims::nf::im_session::AnchorRelay;
use ims::nf::runtime::CoreOptions;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// An RFC 4976 relay on 127.0.0.1 (ephemeral port) named `host` in its URI, with the user
/// `im`.
fn relay(host: &str) -> (MsrpRelay, String) {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.set_nonblocking(true).unwrap();
    let port = l.local_addr().unwrap().port();
    let uri = format!("msrp://{host}:{port};tcp");
    let cfg = RelayConfig::new(UriBuf::parse(&uri).unwrap(), "relay.example.org");
    let r = MsrpRelay::start(
        tokio::net::TcpListener::from_std(l).unwrap(),
        cfg,
        &[("im", "im-pw")],
        0x4976,
    )
    .expect("relay");
    (r, uri)
}

fn relay_as(uri: &str, password: &str) -> AnchorRelay {
    AnchorRelay {
        uri: uri.to_string(),
        user: "im".into(),
        password: password.into(),
        ..AnchorRelay::default()
    }
}

/// The core started with `CoreOptions::with_im_msrp_relay`: its anchor holds one binding at
/// the relay (named `localhost`: resolved) and reports its link up; the IM server's own
/// large-mode deliveries get the same relay (they AUTH per delivery, nothing at start). With a
/// wrong password the core does not start (the anchor's AUTH is refused) and the relay holds
/// no binding.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_core_anchor_authenticates_to_the_im_msrp_relay() {
    let (relay, uri) = relay("localhost");
    let refused = ims::nf::runtime::ImsCore::start_with_options(
        ims_core::all_in_one(7300, [7340, 7341], None),
        ims::nf::runtime::CoreStore::Memory(Default::default()),
        CoreOptions::default().with_im_msrp_relay(relay_as(&uri, "wrong")),
    )
    .await;
    let Err(e) = refused else {
        panic!("a core whose anchor the relay refuses must not start");
    };
    assert!(
        matches!(e, ims::nf::runtime::CoreError::ImSession(_)),
        "{e}"
    );
    assert_eq!(relay.bindings(), 0);

    // the same ports: a failed start stops what it had started (Diameter listeners, SIP
    // endpoints), so they are free again (a SIP socket may take a moment to close)
    let mut tries = 0;
    let core = loop {
        match ims::nf::runtime::ImsCore::start_with_options(
            ims_core::all_in_one(7300, [7340, 7341], None),
            ims::nf::runtime::CoreStore::Memory(Default::default()),
            CoreOptions::default().with_im_msrp_relay(relay_as(&uri, "im-pw")),
        )
        .await
        {
            Ok(core) => break core,
            Err(e) if tries < 20 => {
                tries += 1;
                eprintln!("start again on the same ports: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("the failed start left its ports bound: {e}"),
        }
    };
    assert_eq!(relay.bindings(), 1, "the core's anchor authenticated");
    let anchor = core.im_session().expect("the core runs the anchor");
    assert_eq!(anchor.stats().relay_links.load(Ordering::Relaxed), 1);
    drop(core);
    relay.shutdown();
}

/// `examples/cscf`: `--msrp-relay` without `--msrp-relay-auth` is a usage error (exit 2),
/// `--check` shows the relay, and the core started with the flags (a configuration on this
/// file's ports) authenticates to the relay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cscf_example_takes_the_msrp_relay_flags() {
    let Some(bin) = common::example_binary("cscf") else {
        return;
    };
    let (relay, uri) = relay("127.0.0.1");
    let run = |args: &[&str]| {
        std::process::Command::new(&bin)
            .args(args)
            .output()
            .expect("cscf runs")
    };
    let out = run(&["--msrp-relay", &uri, "--check"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let out = run(&[
        "--msrp-relay",
        &uri,
        "--msrp-relay-auth",
        "im:im-pw",
        "--check",
    ]);
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!("IM server MSRP relay: {uri} as im")),
        "{text}"
    );

    // the shipped configuration moved to this file's ports, the store in memory
    let dir = common::TempDir::new("im-msrp", "core", "IMS_KEEP_CSCF");
    let shipped = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/cscf/ims.toml"),
    )
    .unwrap();
    let mut toml = String::new();
    for line in shipped.lines() {
        if line.trim_start().starts_with('#') {
            continue;
        }
        let l = match line.split('#').next().unwrap_or("").trim() {
            "pcscf = 5060" => "pcscf = 7350",
            "icscf = 5062" => "icscf = 7352",
            "scscf_term = 6060" => "scscf_term = 7360",
            "scscf_orig = 6061" => "scscf_orig = 7361",
            "admin = \"127.0.0.1:5080\"" => "",
            "listen = \"127.0.0.1:3868\"" => "listen = \"127.0.0.1:7390\"",
            "listen = \"127.0.0.1:3869\"" => "listen = \"127.0.0.1:7391\"",
            "port_c = 5066" => "port_c = 7356",
            "port_s = 5064" => "port_s = 7354",
            "port = 7070" => "port = 7370",
            "msrp_port = 7073" => "msrp_port = 7373",
            "store = \"target/ims-rs/sms\"" => "",
            _ => line,
        };
        toml.push_str(&l.replace("sip:127.0.0.1:7070", "sip:127.0.0.1:7370"));
        toml.push('\n');
    }
    assert!(!toml.contains("7070") && !toml.contains("5060"), "{toml}");
    let cfg = dir.path().join("ims.toml");
    std::fs::write(&cfg, toml).unwrap();
    let mut child = tokio::process::Command::new(&bin)
        .arg("--config")
        .arg(&cfg)
        .args(["--msrp-relay", &uri, "--msrp-relay-auth", "im:im-pw"])
        .args(["--threads", "1"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("cscf starts");
    let mut bound = false;
    for _ in 0..300 {
        if relay.bindings() == 1 {
            bound = true;
            break;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("cscf exited: {status}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(bound, "the example's anchor authenticated to the relay");
    child.kill().await.unwrap();
    relay.shutdown();
}
