//! Sessions through the all-in-one core beyond the basic call (SIPp UEs, real Cx and Rx on
//! loopback, tshark on the Diameter ports):
//!
//! 1. `pcrf_asr_releases_the_call_both_ways`: the PCRF (triggered through the admin interface,
//!    `POST /pcrf/asr`) aborts the call's Rx session; the P-CSCF answers ASA 2001, sends BYE to
//!    the caller and toward the callee, both with `Reason: SIP ;cause=503` (the SIPp UEs check
//!    it, `ims_call_uac_released.xml` / `ims_call_uas_released.xml`), then STR → STA 2001.
//! 2. `loss_of_bearer_rar_releases_only_when_all_media_are_lost`: a RAR with
//!    INDICATION_OF_LOSS_OF_BEARER for a media component the call does not have → RAA 2001 and
//!    the call goes on (the PCRF still holds the session); a RAR for all media → RAA 2001, BYE
//!    both ways, STR (TS 29.214 §4.4.6.x, TS 24.229 §5.2.8.1.2).
//! 3. `prack_183_and_reinvite_update_the_rx_session`: 100rel (183 with the SDP answer, PRACK,
//!    200 PRACK, 200 INVITE), then a re-INVITE adding video (`ims_call_prack_uac.xml` /
//!    `ims_call_prack_uas.xml`): the first AAR (INITIAL_REQUEST) leaves before the 200 (INVITE)
//!    is on the wire, later AARs are UPDATE_REQUESTs on the same Session-Id, the ones after the
//!    re-INVITE carry an audio and a video Media-Component-Description, and the STR ends that
//!    same session.
//! 4. `asr_during_setup_cancels_the_callee_and_fails_the_invite`: an ASR after the 183 (early
//!    dialog): the P-CSCF cancels the INVITE (TS 24.229 §5.2.8.1.1) — CANCEL toward the callee
//!    with `Reason: SIP ;cause=503` (forwarded with it hop by hop; the SIPp callee checks it,
//!    answers 200 and 487, gets the ACK), 503 to the caller, no BYE, an STR per side.

mod common;
mod ims_core;
use ims_core::wait_for;

use ims::nf::runtime::ImsCore;
use ims_core::{admin_request, capture_diameter, capture_with_sip, scenario, sipp, Frame};
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

/// Registers the callee (user 2) from `callee_port`, starts its UAS scenario, runs the caller
/// (user 1) scenario from `caller_port`; returns the two SIPp tasks (caller, callee).
async fn call(
    bin: &Path,
    dir: &Path,
    pcscf: &str,
    (uac, uas): (&str, &str),
    (caller_port, callee_port): (&str, &str),
) -> (
    tokio::task::JoinHandle<(bool, String)>,
    tokio::task::JoinHandle<(bool, String)>,
) {
    let (ok, out) = sipp(
        bin,
        dir,
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
            callee_port,
            "-m",
            "1",
        ],
    )
    .await;
    assert!(ok, "callee registration failed:\n{out}");
    let args = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let uas_args = args(&[
        "-sf",
        scenario(uas).to_str().unwrap(),
        "-i",
        "127.0.0.1",
        "-p",
        callee_port,
        "-m",
        "1",
    ]);
    let (b, d) = (bin.to_path_buf(), dir.to_path_buf());
    let callee = tokio::spawn(async move {
        let a: Vec<&str> = uas_args.iter().map(String::as_str).collect();
        sipp(&b, &d, &a).await
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let uac_args = args(&[
        pcscf,
        "-sf",
        scenario(uac).to_str().unwrap(),
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
        caller_port,
        "-m",
        "1",
    ]);
    let (b, d) = (bin.to_path_buf(), dir.to_path_buf());
    let caller = tokio::spawn(async move {
        let a: Vec<&str> = uac_args.iter().map(String::as_str).collect();
        sipp(&b, &d, &a).await
    });
    (caller, callee)
}

fn pcrf_sessions(core: &ImsCore) -> usize {
    core.pcrf().map_or(0, |p| p.lock().unwrap().len())
}

/// The Session-Id of the first Rx session `GET /pcrf/sessions` lists.
async fn first_session(admin: SocketAddr) -> String {
    let (st, body) = admin_request(admin, "GET", "/pcrf/sessions", "").await;
    assert_eq!(st, 200, "{body}");
    let i = body
        .find("pcscf.ims.example.org;rx;")
        .expect("a P-CSCF Rx session");
    body[i..].split('"').next().unwrap().to_string()
}

fn answers_ok(frames: &[Frame]) {
    assert!(!frames.is_empty(), "no Diameter captured");
    for f in frames {
        assert!(f.clean(), "malformed or expert info: {f:?}");
        if !f.is_request() && !f.code().is_empty() {
            let rc = f.get("diameter.Result-Code");
            let er = f.get("diameter.Experimental-Result-Code");
            assert!(
                rc == "2001" || er.starts_with("200"),
                "answer without success: {f:?}"
            );
        }
    }
}

/// Positions of the messages with this command code and request flag.
fn positions(frames: &[Frame], code: &str, request: bool) -> Vec<usize> {
    frames
        .iter()
        .enumerate()
        .filter(|(_, f)| f.code() == code && f.is_request() == request)
        .map(|(i, _)| i)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pcrf_asr_releases_the_call_both_ways() {
    let Some(bin) = common::interop_tool("sipp", "apt-get install sip-tester") else {
        return;
    };
    let dir = common::TempDir::new("cscf", "asr", "IMS_KEEP_SIPP");
    let tshark = common::interop_tool("tshark", "apt-get install tshark");
    let cap = capture_diameter(tshark, dir.path(), &[5951]).await;
    let core = ims_core::start_core(5200, [5950, 5951], Some(5960)).await;
    let admin = core.admin_addr().expect("admin listens");
    // no session yet: nothing to abort
    let (st, body) = admin_request(admin, "POST", "/pcrf/asr", r#"{"session_id":"x"}"#).await;
    assert_eq!(st, 404, "{body}");
    let (caller, callee) = call(
        &bin,
        dir.path(),
        "127.0.0.1:5200",
        ("ims_call_uac_released.xml", "ims_call_uas_released.xml"),
        ("5291", "5292"),
    )
    .await;
    // one P-CSCF serves both UEs: one Rx session per side, as two P-CSCFs would hold
    wait_for("the call's two Rx sessions", || pcrf_sessions(&core) == 2).await;
    // let the ACK through
    tokio::time::sleep(Duration::from_millis(700)).await;
    let aborted = first_session(admin).await;
    let (st, body) = admin_request(
        admin,
        "POST",
        "/pcrf/asr",
        &format!(r#"{{"session_id":"{aborted}"}}"#),
    )
    .await;
    assert_eq!(st, 200, "{body}");
    assert!(body.contains("\"result\":2001"), "ASA 2001: {body}");
    let (ok, out) = caller.await.expect("caller task");
    assert!(
        ok,
        "caller did not get the network's BYE with Reason:\n{out}"
    );
    let (ok, out) = callee.await.expect("callee task");
    assert!(
        ok,
        "callee did not get the network's BYE with Reason:\n{out}"
    );
    wait_for("the STR", || pcrf_sessions(&core) == 0).await;
    core.shutdown();
    let Some(cap) = cap else { return };
    let frames = cap.frames(&["diameter.Abort-Cause"]).await;
    answers_ok(&frames);
    let asr = positions(&frames, "274", true);
    let asa = positions(&frames, "274", false);
    let str_ = positions(&frames, "275", true);
    let sta = positions(&frames, "275", false);
    assert_eq!((asr.len(), asa.len()), (1, 1), "one ASR/ASA: {frames:#?}");
    assert_eq!(frames[asr[0]].get("diameter.Abort-Cause"), "0");
    assert_eq!(frames[asr[0]].get("diameter.Session-Id"), aborted);
    // the aborted side's STR, and the other side's when the BYE passes it
    assert_eq!((str_.len(), sta.len()), (2, 2), "an STR/STA per side");
    // TS 29.214 §4.4.1: the aborted session's STR follows its ASA (the other side's STR is
    // sent when the BYE passes, in no fixed order with the ASA)
    let aborted_str = str_
        .iter()
        .find(|i| frames[**i].get("diameter.Session-Id") == aborted)
        .expect("an STR for the aborted session");
    assert!(
        asa[0] < *aborted_str,
        "the aborted session's STR follows the ASA"
    );
    let mut ended: Vec<&str> = str_
        .iter()
        .map(|i| frames[*i].get("diameter.Session-Id"))
        .collect();
    ended.sort();
    ended.dedup();
    assert_eq!(ended.len(), 2, "both sessions end");
    assert!(
        ended.contains(&aborted.as_str()),
        "the aborted one among them"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loss_of_bearer_rar_releases_only_when_all_media_are_lost() {
    let Some(bin) = common::interop_tool("sipp", "apt-get install sip-tester") else {
        return;
    };
    let dir = common::TempDir::new("cscf", "rar", "IMS_KEEP_SIPP");
    let tshark = common::interop_tool("tshark", "apt-get install tshark");
    let cap = capture_diameter(tshark, dir.path(), &[5953]).await;
    let core = ims_core::start_core(5300, [5952, 5953], Some(5961)).await;
    let admin = core.admin_addr().expect("admin listens");
    let (caller, callee) = call(
        &bin,
        dir.path(),
        "127.0.0.1:5300",
        ("ims_call_uac_released.xml", "ims_call_uas_released.xml"),
        ("5391", "5392"),
    )
    .await;
    wait_for("the call's two Rx sessions", || pcrf_sessions(&core) == 2).await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    let session = first_session(admin).await;
    // the bearer of a media component the call does not have: RAA, and the call goes on
    let (st, body) = admin_request(
        admin,
        "POST",
        "/pcrf/rar",
        &format!(r#"{{"session_id":"{session}","action":"loss_of_bearer","flows":[7]}}"#),
    )
    .await;
    assert_eq!(st, 200, "{body}");
    assert!(body.contains("\"result\":2001"), "RAA 2001: {body}");
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(pcrf_sessions(&core), 2, "no STR for a partial loss");
    assert!(!caller.is_finished() && !callee.is_finished(), "no BYE yet");
    // all bearers lost (no Flows: every media component)
    let (st, body) = admin_request(
        admin,
        "POST",
        "/pcrf/rar",
        &format!(r#"{{"session_id":"{session}","action":"loss_of_bearer"}}"#),
    )
    .await;
    assert_eq!(st, 200, "{body}");
    assert!(body.contains("\"result\":2001"), "RAA 2001: {body}");
    let (ok, out) = caller.await.expect("caller task");
    assert!(ok, "caller did not get the network's BYE:\n{out}");
    let (ok, out) = callee.await.expect("callee task");
    assert!(ok, "callee did not get the network's BYE:\n{out}");
    wait_for("the STR", || pcrf_sessions(&core) == 0).await;
    core.shutdown();
    let Some(cap) = cap else { return };
    let frames = cap
        .frames(&[
            "diameter.Specific-Action",
            "diameter.Media-Component-Number",
        ])
        .await;
    answers_ok(&frames);
    let rar = positions(&frames, "258", true);
    let raa = positions(&frames, "258", false);
    let str_ = positions(&frames, "275", true);
    assert_eq!((rar.len(), raa.len()), (2, 2), "two RAR/RAA: {frames:#?}");
    for r in &rar {
        // INDICATION_OF_LOSS_OF_BEARER
        assert_eq!(frames[*r].get("diameter.Specific-Action"), "2");
    }
    assert_eq!(str_.len(), 2, "an STR per side");
    // nothing is released before the second RAR; the RAR'd session's STR follows its RAA (the
    // other side's STR is sent when the BYE passes, in no fixed order with that RAA)
    assert!(rar[1] < str_[0], "the STRs follow the second RAR only");
    let released = frames[rar[1]].get("diameter.Session-Id");
    let released_str = str_
        .iter()
        .find(|i| frames[**i].get("diameter.Session-Id") == released)
        .expect("an STR for the RAR's session");
    assert!(
        raa[1] < *released_str,
        "the released session's STR follows the RAA"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prack_183_and_reinvite_update_the_rx_session() {
    let Some(bin) = common::interop_tool("sipp", "apt-get install sip-tester") else {
        return;
    };
    let dir = common::TempDir::new("cscf", "prack", "IMS_KEEP_SIPP");
    let tshark = common::interop_tool("tshark", "apt-get install tshark");
    let cap = capture_with_sip(tshark, dir.path(), &[5955], &[5400]).await;
    let core = ims_core::start_core(5400, [5954, 5955], None).await;
    let (caller, callee) = call(
        &bin,
        dir.path(),
        "127.0.0.1:5400",
        ("ims_call_prack_uac.xml", "ims_call_prack_uas.xml"),
        ("5491", "5492"),
    )
    .await;
    let (ok, out) = caller.await.expect("caller task");
    assert!(ok, "caller (100rel, PRACK, re-INVITE) failed:\n{out}");
    let (ok, out) = callee.await.expect("callee task");
    assert!(ok, "callee (100rel, PRACK, re-INVITE) failed:\n{out}");
    wait_for("the STR", || pcrf_sessions(&core) == 0).await;
    core.shutdown();
    let Some(cap) = cap else { return };
    let frames = cap
        .frames_where(
            "diameter || sip",
            &[5400],
            &[
                "diameter.Rx-Request-Type",
                "diameter.Media-Component-Number",
                "diameter.Media-Type",
                "sip.Status-Code",
                "sip.CSeq.method",
                "sip.Method",
            ],
        )
        .await;
    let diameter: Vec<Frame> = frames
        .iter()
        .filter(|f| !f.code().is_empty())
        .cloned()
        .collect();
    answers_ok(&diameter);
    let aar: Vec<(usize, &Frame)> = frames
        .iter()
        .enumerate()
        .filter(|(_, f)| f.code() == "265" && f.is_request())
        .collect();
    assert!(
        aar.len() >= 3,
        "AAR at the 183, the 200 and the re-INVITE: {aar:#?}"
    );
    // one Rx session per side of the call (one P-CSCF serves both UEs here)
    let mut sessions: Vec<&str> = aar
        .iter()
        .map(|(_, f)| f.get("diameter.Session-Id"))
        .collect();
    sessions.sort();
    sessions.dedup();
    assert_eq!(sessions.len(), 2, "a session per side: {aar:#?}");
    for s in &sessions {
        let mine: Vec<&&Frame> = aar
            .iter()
            .filter(|(_, f)| f.get("diameter.Session-Id") == *s)
            .map(|(_, f)| f)
            .collect();
        // the 183, the 200 (INVITE) and the re-INVITE's 200: one AAR each, no doubles
        assert_eq!(mine.len(), 3, "three AARs on {s}: {mine:#?}");
        // INITIAL_REQUEST (0) first, UPDATE_REQUEST (1) after
        assert_eq!(mine[0].get("diameter.Rx-Request-Type"), "0");
        assert!(mine[1..]
            .iter()
            .all(|f| f.get("diameter.Rx-Request-Type") == "1"));
        assert_eq!(mine[2].get("diameter.Media-Component-Number"), "1,2");
    }
    // the first AAR answers the 183: it leaves before any 200 (INVITE) passes the P-CSCF
    let first_200_invite = frames
        .iter()
        .position(|f| f.get("sip.Status-Code") == "200" && f.get("sip.CSeq.method") == "INVITE")
        .expect("the 200 (INVITE) was captured");
    let first_183 = frames
        .iter()
        .position(|f| f.get("sip.Status-Code") == "183")
        .expect("the 183 was captured");
    assert!(
        first_183 < aar[0].0 && aar[0].0 < first_200_invite,
        "AAR between the 183 and the 200"
    );
    assert!(
        frames.iter().any(|f| f.get("sip.Method") == "PRACK"),
        "PRACK through the P-CSCF"
    );
    // before the re-INVITE: audio only; the last AARs: audio (0) and video (1)
    let reinvite = frames
        .iter()
        .rposition(|f| f.get("sip.Method") == "INVITE")
        .expect("the re-INVITE");
    let before: Vec<_> = aar.iter().filter(|(i, _)| *i < reinvite).collect();
    let after: Vec<_> = aar.iter().filter(|(i, _)| *i > reinvite).collect();
    assert!(before.len() >= 2 && !after.is_empty(), "{aar:#?}");
    assert!(before
        .iter()
        .all(|(_, f)| f.get("diameter.Media-Type") == "0"));
    let last = after.last().unwrap().1;
    assert_eq!(last.get("diameter.Media-Type"), "0,1", "{last:?}");
    assert_eq!(last.get("diameter.Media-Component-Number"), "1,2");
    // the STRs end both sessions
    let mut str_: Vec<&str> = diameter
        .iter()
        .filter(|f| f.code() == "275" && f.is_request())
        .map(|f| f.get("diameter.Session-Id"))
        .collect();
    str_.sort();
    assert_eq!(str_, sessions);
}

/// Whose Rx session the PCRF aborts during call setup.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Side {
    Caller,
    Callee,
}

/// A call stopped after the 183 (early dialog) by an ASR for the `released` side's Rx session
/// (TS 24.229 §5.2.8.1.1), through a core on `base` (P-CSCF SIP `base` and `base + 11`, UEs on
/// `base + 91` (caller) and `base + 92` (callee)) with Cx/Rx on `diameter` and the admin
/// interface on `admin`: the released side's SIPp is checked first, then the other's; then the
/// STRs, and in the capture the CANCEL toward the callee with its Reason, no BYE, the callee's
/// 487, no 200, and the caller's error response.
async fn asr_during_setup(released: Side, tag: &str, base: u16, diameter: [u16; 2], admin: u16) {
    let Some(bin) = common::interop_tool("sipp", "apt-get install sip-tester") else {
        return;
    };
    let dir = common::TempDir::new("cscf", tag, "IMS_KEEP_SIPP");
    let tshark = common::interop_tool("tshark", "apt-get install tshark");
    let sip_ports = [base, base + 11];
    let cap = capture_with_sip(tshark, dir.path(), &diameter[1..], &sip_ports).await;
    let core = ims_core::start_core(base, diameter, Some(admin)).await;
    let admin = core.admin_addr().expect("admin listens");
    let (caller_port, callee_port) = ((base + 91).to_string(), (base + 92).to_string());
    let (caller, callee) = call(
        &bin,
        dir.path(),
        &format!("127.0.0.1:{base}"),
        (
            "ims_call_uac_early_released.xml",
            "ims_call_uas_early_released.xml",
        ),
        (&caller_port, &callee_port),
    )
    .await;
    // the 183 opened a session per side; abort the released side's
    wait_for("the call's two Rx sessions", || pcrf_sessions(&core) == 2).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let sessions = core.pcscf().expect("P-CSCF").rx_sessions();
    assert_eq!(sessions.len(), 2, "{sessions:?}");
    let is_caller = released == Side::Caller;
    assert!(sessions.iter().any(|(_, caller, _)| *caller != is_caller));
    let (_, _, aborted) = sessions
        .iter()
        .find(|(_, caller, _)| *caller == is_caller)
        .expect(match released {
            Side::Caller => "the caller's side",
            Side::Callee => "the callee's side",
        })
        .clone();
    let (st, body) = admin_request(
        admin,
        "POST",
        "/pcrf/asr",
        &format!(r#"{{"session_id":"{aborted}"}}"#),
    )
    .await;
    assert_eq!(st, 200, "{body}");
    assert!(body.contains("\"result\":2001"), "ASA 2001: {body}");
    let caller_gets = match released {
        Side::Caller => "the 503 to its INVITE",
        Side::Callee => "an error response to its INVITE",
    };
    let check_caller = |r: Result<(bool, String), tokio::task::JoinError>| {
        let (ok, out) = r.expect("caller task");
        assert!(ok, "caller did not get {caller_gets}:\n{out}");
    };
    let check_callee = |r: Result<(bool, String), tokio::task::JoinError>| {
        let (ok, out) = r.expect("callee task");
        assert!(
            ok,
            "callee did not get the CANCEL (with its Reason) and the ACK of its 487:\n{out}"
        );
    };
    match released {
        Side::Caller => {
            check_caller(caller.await);
            check_callee(callee.await);
        }
        Side::Callee => {
            check_callee(callee.await);
            check_caller(caller.await);
        }
    }
    wait_for("both STRs", || pcrf_sessions(&core) == 0).await;
    core.shutdown();
    let Some(cap) = cap else { return };
    let frames = cap
        .frames_where(
            "diameter || sip",
            &sip_ports,
            &[
                "sip.Status-Code",
                "sip.CSeq.method",
                "sip.Method",
                "sip.Reason",
                "udp.dstport",
            ],
        )
        .await;
    let diameter: Vec<Frame> = frames
        .iter()
        .filter(|f| !f.code().is_empty())
        .cloned()
        .collect();
    answers_ok(&diameter);
    let asr = positions(&frames, "274", true);
    let str_ = positions(&frames, "275", true);
    assert_eq!((asr.len(), str_.len()), (1, 2), "one ASR, an STR per side");
    assert!(asr[0] < str_[0]);
    // TS 24.229 §5.2.8.1.1: CANCEL toward the callee (each with the Reason), no BYE
    let cancels: Vec<&Frame> = frames
        .iter()
        .filter(|f| f.get("sip.Method") == "CANCEL")
        .collect();
    match released {
        Side::Caller => assert!(!cancels.is_empty(), "a CANCEL toward the callee"),
        // to the callee's own port
        Side::Callee => assert!(
            cancels.iter().any(|f| f.get("udp.dstport") == callee_port),
            "a CANCEL to the callee: {cancels:?}"
        ),
    }
    assert!(
        cancels
            .iter()
            .all(|f| f.get("sip.Reason").contains("cause=503")),
        "{cancels:?}"
    );
    assert!(!frames.iter().any(|f| f.get("sip.Method") == "BYE"));
    let invite_final = |code: &'static str| {
        frames.iter().filter(move |f| {
            f.get("sip.Status-Code") == code && f.get("sip.CSeq.method") == "INVITE"
        })
    };
    assert!(invite_final("487").next().is_some(), "the callee's 487");
    assert!(
        invite_final("200").next().is_none(),
        "the call never got answered"
    );
    match released {
        // the caller's P-CSCF answers it 503 itself
        Side::Caller => assert!(
            invite_final("503").next().is_some(),
            "the error response to the caller"
        ),
        // the callee's P-CSCF answers 503 upstream, which reaches the caller as 500
        Side::Callee => assert!(
            invite_final("500").any(|f| f.get("udp.dstport") == caller_port),
            "the caller's error response (500)"
        ),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn asr_during_setup_cancels_the_callee_and_fails_the_invite() {
    asr_during_setup(Side::Caller, "asr-early", 6600, [6952, 6953], 6961).await;
}

/// The terminating side released during setup (TS 24.229 §5.2.8.1.1): the PCRF aborts the
/// callee's Rx session before the 200; the callee's P-CSCF CANCELs the INVITE toward the callee
/// (Reason cause=503) and answers 503 upstream, which reaches the caller as 500 (RFC 3261 §16.7
/// step 6: proxies do not forward a 503); no BYE, an STR per side.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn asr_for_the_callee_during_setup_cancels_it_and_fails_the_invite() {
    asr_during_setup(Side::Callee, "asr-early-callee", 6100, [6965, 6966], 6967).await;
}
