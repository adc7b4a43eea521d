//! The P-CSCF's own subscription to the reg event package (TS 24.229 §5.2.3) through the
//! all-in-one core, with SIPp UEs and tshark on the loopback:
//!
//! `pcscf_subscribes_to_reg_and_a_network_deregistration_releases_the_call`: two UEs register
//! (IMS-AKA) and call each other (`ims_call_uac_released.xml` / `ims_call_uas_released.xml`).
//! After each 200 to a REGISTER the P-CSCF sends a SUBSCRIBE (Event: reg, Expires: 600000,
//! P-Asserted-Identity its own URI) along the UE's Service-Route to the S-CSCF, which answers
//! 200 and NOTIFYs the full state to the P-CSCF's contact. Then the HSS de-registers the caller
//! (admin `POST /rtr`): the S-CSCF's NOTIFY (a partial reginfo, RFC 3680 §5, with the contact
//! `terminated`) makes the P-CSCF forget the caller's registration and release its call — BYE to
//! both UEs with a Reason header (the SIPp UEs check it), STR for both Rx sessions. The callee
//! stays registered. Without the subscription nothing would tell the P-CSCF: the UEs would wait
//! for a BYE in vain and the caller's state would stay until its registration expired.

mod common;
mod ims_core;
use ims_core::wait_for;

use ims::nf::runtime::ImsCore;
use ims_core::{admin_request, capture_with_sip_any, scenario, sipp, Frame};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pcscf_subscribes_to_reg_and_a_network_deregistration_releases_the_call() {
    let Some(bin) = common::interop_tool("sipp", "apt-get install sip-tester") else {
        return;
    };
    let dir = common::TempDir::new("cscf", "pcscf-reg", "IMS_KEEP_SIPP");
    let core = ims_core::start_core(6500, [6950, 6951], Some(6960)).await;
    let admin = core.admin_addr().expect("admin listens");
    let pcscf = core.pcscf().expect("P-CSCF runs").clone();
    let uac_port = core.pcscf_uac_addr().expect("P-CSCF UAC").port();
    let tshark = common::interop_tool("tshark", "apt-get install tshark");
    let sip_ports = [6500, 6511, uac_port];
    let cap = capture_with_sip_any(tshark, dir.path(), &[6951], &sip_ports).await;
    // callee (user 2) registers from 6592, its UAS waits; the caller (user 1) registers from 6591
    let (ok, out) = sipp(
        &bin,
        dir.path(),
        &[
            "127.0.0.1:6500",
            "-sf",
            scenario("ims_register.xml").to_str().unwrap(),
            "-s",
            "001010000000002",
            "-au",
            "001010000000002@ims.example.org",
            "-i",
            "127.0.0.1",
            "-p",
            "6592",
            "-m",
            "1",
        ],
    )
    .await;
    assert!(ok, "callee registration failed:\n{out}");
    wait_for("the P-CSCF's subscription for the callee", || {
        pcscf.reg_subscriptions() == 1
    })
    .await;
    let (b, d) = (bin.clone(), dir.path().to_path_buf());
    let callee = tokio::spawn(async move {
        let uas = scenario("ims_call_uas_released.xml");
        sipp(
            &b,
            &d,
            &[
                "-sf",
                uas.to_str().unwrap(),
                "-i",
                "127.0.0.1",
                "-p",
                "6592",
                "-m",
                "1",
            ],
        )
        .await
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (b, d) = (bin.clone(), dir.path().to_path_buf());
    let caller = tokio::spawn(async move {
        let uac = scenario("ims_call_uac_released.xml");
        sipp(
            &b,
            &d,
            &[
                "127.0.0.1:6500",
                "-sf",
                uac.to_str().unwrap(),
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
                "6591",
                "-m",
                "1",
            ],
        )
        .await
    });
    let pcrf_sessions = |core: &ImsCore| core.pcrf().map_or(0, |p| p.lock().unwrap().len());
    wait_for("both sides' Rx sessions", || pcrf_sessions(&core) == 2).await;
    wait_for("the caller's subscription too", || {
        pcscf.reg_subscriptions() == 2
    })
    .await;
    // the NOTIFYs of the new subscriptions and the ACK
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(pcscf.registration("sip:x@127.0.0.1:6591").is_some());
    // the HSS de-registers the caller: RTR → S-CSCF → NOTIFY to the P-CSCF
    let (st, body) = admin_request(
        admin,
        "POST",
        "/rtr",
        r#"{"impi":"001010000000001@ims.example.org","reason":0,"info":"gone"}"#,
    )
    .await;
    assert_eq!(st, 200, "{body}");
    let (ok, out) = caller.await.expect("caller task");
    assert!(ok, "caller did not get the P-CSCF's BYE:\n{out}");
    let (ok, out) = callee.await.expect("callee task");
    assert!(ok, "callee did not get the P-CSCF's BYE:\n{out}");
    wait_for("both STRs", || pcrf_sessions(&core) == 0).await;
    assert!(
        pcscf.registration("sip:x@127.0.0.1:6591").is_none(),
        "the caller's registration state is gone at the P-CSCF"
    );
    assert!(
        pcscf.registration("sip:x@127.0.0.1:6592").is_some(),
        "the callee is still registered"
    );
    assert_eq!(
        pcscf.reg_subscriptions(),
        1,
        "the caller's subscription ended"
    );
    core.shutdown();

    let Some(cap) = cap else { return };
    let frames = cap
        .frames_where(
            "sip || diameter",
            &sip_ports,
            &[
                "sip.Method",
                "sip.Status-Code",
                "sip.CSeq.method",
                "sip.Event",
                "sip.Expires",
                "sip.P-Asserted-Identity",
                "sip.Subscription-State",
                "sip.Reason",
                "udp.srcport",
                "udp.dstport",
                "sip.r-uri",
            ],
        )
        .await;
    let subscribes: Vec<&Frame> = frames
        .iter()
        .filter(|f| f.get("sip.Method") == "SUBSCRIBE")
        .collect();
    assert!(subscribes.len() >= 2, "a SUBSCRIBE per UE: {frames:#?}");
    for s in &subscribes {
        assert_eq!(
            s.get("udp.srcport"),
            uac_port.to_string(),
            "from the P-CSCF"
        );
        assert_eq!(s.get("udp.dstport"), "6511", "along the Service-Route");
        assert_eq!(s.get("sip.Event"), "reg");
        assert_eq!(s.get("sip.Expires"), "600000");
        assert!(
            s.get("sip.P-Asserted-Identity")
                .contains("term@127.0.0.1:6500"),
            "{s:?}"
        );
    }
    let ok_subscribe = frames
        .iter()
        .filter(|f| f.get("sip.Status-Code") == "200" && f.get("sip.CSeq.method") == "SUBSCRIBE")
        .count();
    assert!(ok_subscribe >= 2, "the S-CSCF accepted them");
    let notifies: Vec<&Frame> = frames
        .iter()
        .filter(|f| {
            f.get("sip.Method") == "NOTIFY"
                && f.get("sip.r-uri").starts_with("sip:reg@127.0.0.1:6500")
        })
        .collect();
    assert!(
        notifies.len() >= 3,
        "two full, one terminating: {notifies:#?}"
    );
    let last = notifies
        .iter()
        .find(|f| f.get("sip.Subscription-State").starts_with("terminated"))
        .expect("a NOTIFY ending the caller's subscription");
    assert!(
        last.get("sip.Subscription-State").contains("rejected"),
        "{last:?}"
    );
    // the reginfo of that NOTIFY (RFC 3680 §5): partial, version 1, the contact terminated
    let tshark = common::interop_tool("tshark", "apt-get install tshark").expect("captured above");
    let out = std::process::Command::new(tshark)
        .arg("-r")
        .arg(dir.path().join("core.pcap"))
        .args(["-d", "tcp.port==6500,sip", "-d", "udp.port==6500,sip", "-Y"])
        .arg(
            r#"sip.Method == "NOTIFY" && sip.Subscription-State contains "terminated" && frame contains "version=\"1\" state=\"partial\"" && frame contains "state=\"terminated\" event=\"rejected\"""#,
        )
        .output()
        .expect("tshark reads the capture");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).lines().count(),
        1,
        "a partial reginfo with the contact terminated (rejected)"
    );
    let notify_ok = frames
        .iter()
        .filter(|f| {
            f.get("sip.Status-Code") == "200"
                && f.get("sip.CSeq.method") == "NOTIFY"
                && (f.get("udp.srcport") == "6500" || f.get("tcp.srcport") == "6500")
        })
        .count();
    assert_eq!(
        notify_ok,
        notifies.len(),
        "the P-CSCF answers every NOTIFY 200"
    );
    let byes: Vec<&Frame> = frames
        .iter()
        .filter(|f| f.get("sip.Method") == "BYE")
        .collect();
    assert!(
        byes.iter()
            .all(|f| f.get("sip.Reason").contains("cause=503")),
        "{byes:#?}"
    );
    let str_ = frames
        .iter()
        .filter(|f| f.code() == "275" && f.is_request())
        .count();
    assert_eq!(str_, 2, "an STR for each side's Rx session");
}
