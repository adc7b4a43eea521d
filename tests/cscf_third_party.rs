//! Third-party registration (TS 24.229 §5.4.1.7) to an application server that is briefly
//! unavailable: the AS (a UDP socket in the test) answers the first third-party REGISTER with
//! `503` and `Retry-After: 1`, the next with 200. The S-CSCF sends it again after the
//! Retry-After, in the same dialog with a higher CSeq, with the P-Charging-Vector of the UE's
//! REGISTER (icid-value set by the P-CSCF) and its own `orig-ioi`. The iFC's DefaultHandling is
//! SESSION_TERMINATED, so without the retry the user would be de-registered at the 503; it
//! stays registered.

mod common;
mod ims_core;

use ims::nf::hss::Subscriber;
use ims_core::{scenario, sipp_ue, subscriber};
use std::time::Duration;

/// Subscriber `n` whose REGISTERs go to the AS at `server` (SESSION_TERMINATED).
fn with_register_ifc(n: u32, server: &str) -> Subscriber {
    use ims::nf::subscription::{
        ApplicationServer, DefaultHandling, InitialFilterCriteria, Spt, SptKind, TriggerPoint,
    };
    let mut s = subscriber(n);
    let mut spt = Spt::new(SptKind::Method("REGISTER".into()));
    spt.groups = vec![0];
    let mut asv = ApplicationServer::new(server.to_string());
    asv.default_handling = DefaultHandling::SessionTerminated;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn third_party_register_is_sent_again_after_a_503() {
    let Some(bin) = common::interop_tool("sipp", "apt-get install sip-tester") else {
        return;
    };
    let dir = common::TempDir::new("cscf", "3pr-retry", "IMS_KEEP_SIPP");
    let mut cfg = ims_core::all_in_one(6700, [6954, 6955], None);
    cfg.subscribers = vec![with_register_ifc(1, "sip:127.0.0.1:6770")];
    // the AS: 503 first, then 200; keeps what it received
    let sock = tokio::net::UdpSocket::bind("127.0.0.1:6770")
        .await
        .expect("AS port");
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let as_task = tokio::spawn(async move {
        let mut buf = vec![0u8; 65536];
        let mut n = 0;
        loop {
            let Ok((len, from)) = sock.recv_from(&mut buf).await else {
                return;
            };
            let Ok(m) = ims::sip::parse_datagram(&buf[..len]) else {
                continue;
            };
            if m.method() != Some(ims::sip::Method::Register) {
                continue;
            }
            n += 1;
            let resp = if n == 1 {
                ims::sip::ResponseBuilder::from_request(&m, 503)
                    .header("Retry-After", "1")
                    .to_vec()
            } else {
                ims::sip::ResponseBuilder::from_request(&m, 200).to_vec()
            };
            let _ = tx.send(String::from_utf8_lossy(&buf[..len]).into_owned());
            let _ = sock.send_to(&resp, from).await;
        }
    });
    let core = ims_core::start(cfg).await;
    let (ok, out) = sipp_ue(
        &bin,
        dir.path(),
        1,
        "127.0.0.1:6700",
        scenario("ims_register.xml").to_str().unwrap(),
        "6791",
        &[],
    )
    .await;
    assert!(ok, "UE registration failed:\n{out}");
    let mut got = Vec::new();
    while got.len() < 2 {
        let r = tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .expect("the AS gets the REGISTER again within 10 s")
            .expect("AS task");
        got.push(r);
    }
    // no de-registration after the 503: still registered a while later
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        core.scscf_state().map(|s| s.0),
        Some(1),
        "the user stays registered"
    );
    let hss = core
        .hss()
        .expect("embedded HSS")
        .hss()
        .lock()
        .unwrap()
        .registration("001010000000001@ims.example.org")
        .map(|r| r.0);
    assert_eq!(hss, Some(ims::nf::hss::RegistrationState::Registered));
    core.shutdown();
    as_task.abort();
    let parsed: Vec<_> = got
        .iter()
        .map(|t| ims::sip::parse_datagram(t.as_bytes()).expect("parses"))
        .collect();
    let (a, b) = (&parsed[0], &parsed[1]);
    assert_eq!(
        a.header_str("Call-ID"),
        b.header_str("Call-ID"),
        "same dialog"
    );
    assert!(
        b.cseq().unwrap().unwrap().seq > a.cseq().unwrap().unwrap().seq,
        "a higher CSeq"
    );
    for m in [a, b] {
        let pcv = m
            .header_str("P-Charging-Vector")
            .expect("P-Charging-Vector");
        assert!(
            pcv.starts_with("icid-value=\"pcscf.ims.example.org-"),
            "the icid of the UE's REGISTER, as the P-CSCF set it: {pcv}"
        );
        assert!(pcv.ends_with(";orig-ioi=ims.example.org"), "{pcv}");
    }
}
