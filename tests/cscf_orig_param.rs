//! The S-CSCF honours the `orig` parameter of its own topmost Route (TS 24.229 §5.4.3.1): a
//! request an application server sends on behalf of a user (§5.7.3) to the S-CSCF's
//! terminating URI with `;orig` gets originating processing for the asserted user — here the
//! caller's originating iFC sends it to an AS (a UDP socket of the test), with the Route back
//! to the S-CSCF's originating side (`odi`) and the caller as P-Served-User. The same request
//! without `orig` gets terminating processing (the callee is not registered: 480, no AS).
//! Before, only the port and an `orig@` user part chose the originating case.
//!
//! Ports 6300-6399.

mod common;
mod ims_core;

use ims::nf::hss::Subscriber;
use ims_core::{scenario, sipp_ue, subscriber};
use std::time::Duration;
use tokio::net::UdpSocket;

const AS_PORT: u16 = 6370;
const CALLER: &str = "sip:001010000000001@ims.example.org";
const CALLEE: &str = "sip:001010000000002@ims.example.org";

/// Subscriber `n` whose originating INVITEs go to the AS at `server`.
fn with_originating_invite_ifc(n: u32, server: &str) -> Subscriber {
    use ims::nf::subscription::{
        ApplicationServer, InitialFilterCriteria, SessionCase, Spt, SptKind, TriggerPoint,
    };
    let mut s = subscriber(n);
    let mut method = Spt::new(SptKind::Method("INVITE".into()));
    method.groups = vec![0];
    let mut case = Spt::new(SptKind::SessionCase(SessionCase::Originating));
    case.groups = vec![0];
    // one group: INVITE and originating
    s.subscription.service_profiles[0].initial_filter_criteria = vec![InitialFilterCriteria {
        priority: 0,
        trigger_point: Some(TriggerPoint {
            condition_type_cnf: false,
            spts: vec![method, case],
        }),
        application_server: ApplicationServer::new(server.to_string()),
        profile_part_indicator: None,
    }];
    s
}

fn invite(route: &str, call: &str) -> String {
    format!(
        "INVITE {CALLEE} SIP/2.0\r\n\
Via: SIP/2.0/UDP 127.0.0.1:6372;branch=z9hG4bK-{call}\r\n\
Max-Forwards: 70\r\n\
Route: {route}\r\n\
From: <{CALLER}>;tag=as-{call}\r\n\
To: <{CALLEE}>\r\n\
Call-ID: {call}@127.0.0.1\r\n\
CSeq: 1 INVITE\r\n\
P-Asserted-Identity: <{CALLER}>\r\n\
Contact: <sip:127.0.0.1:6372>\r\n\
Content-Length: 0\r\n\r\n"
    )
}

/// The next datagram on `sock` (parsed as text), within `wait`.
async fn recv(sock: &UdpSocket, wait: Duration) -> Option<String> {
    let mut buf = vec![0u8; 65536];
    let (n, _) = tokio::time::timeout(wait, sock.recv_from(&mut buf))
        .await
        .ok()?
        .ok()?;
    Some(String::from_utf8_lossy(&buf[..n]).into_owned())
}

/// The final response `sock` gets (provisional ones skipped), within 5 s.
async fn final_status(sock: &UdpSocket) -> Option<u16> {
    loop {
        let r = recv(sock, Duration::from_secs(5)).await?;
        let m = ims::sip::parse_datagram(r.as_bytes()).ok()?;
        match m.status() {
            Some(s) if s >= 200 => return Some(s),
            Some(_) => continue,
            None => return None,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orig_on_the_terminating_uri_gets_the_callers_originating_ifc() {
    let Some(bin) = common::interop_tool("sipp", "apt-get install sip-tester") else {
        return;
    };
    let dir = common::TempDir::new("cscf", "orig-param", "IMS_KEEP_SIPP");
    let mut cfg = ims_core::all_in_one(6300, [6346, 6347], None);
    cfg.subscribers = vec![
        with_originating_invite_ifc(1, &format!("sip:127.0.0.1:{AS_PORT}")),
        subscriber(2),
    ];
    let app_server = UdpSocket::bind(("127.0.0.1", AS_PORT))
        .await
        .expect("AS port");
    let ue = UdpSocket::bind("127.0.0.1:6372")
        .await
        .expect("AS UAC port");
    let core = ims_core::start(cfg).await;
    // the caller registers (the S-CSCF holds its profile and iFC)
    let (ok, out) = sipp_ue(
        &bin,
        dir.path(),
        1,
        "127.0.0.1:6300",
        scenario("ims_register.xml").to_str().unwrap(),
        "6391",
        &[],
    )
    .await;
    assert!(ok, "registration failed:\n{out}");
    let term = "127.0.0.1:6310";

    // without `orig`: the terminating case for the callee (not registered, no iFC)
    ue.send_to(
        invite("<sip:127.0.0.1:6310;lr>", "no-orig").as_bytes(),
        term,
    )
    .await
    .unwrap();
    assert_eq!(final_status(&ue).await, Some(480), "terminating case");
    assert_eq!(
        recv(&app_server, Duration::from_millis(300)).await,
        None,
        "the caller's originating iFC is not run for a terminating request"
    );

    // with `orig`: the originating case for the asserted caller
    ue.send_to(
        invite("<sip:127.0.0.1:6310;lr;orig>", "orig").as_bytes(),
        term,
    )
    .await
    .unwrap();
    let got = recv(&app_server, Duration::from_secs(5))
        .await
        .expect("the caller's originating iFC sends the INVITE to the AS");
    let m = ims::sip::parse_datagram(got.as_bytes()).expect("parses");
    assert_eq!(m.request_uri_str(), Some(CALLEE));
    assert_eq!(
        m.header_str("P-Served-User"),
        Some(format!("<{CALLER}>").as_str())
    );
    let routes: Vec<&str> = m
        .list(ims::sip::HeaderName::Route)
        .map(|(_, v)| v.trim())
        .collect();
    assert_eq!(
        routes,
        [
            format!("<sip:127.0.0.1:{AS_PORT};lr>").as_str(),
            "<sip:orig@127.0.0.1:6311;odi=0;lr>"
        ],
        "to the AS, then back to the S-CSCF's originating side; our `orig` Route is gone"
    );
    core.shutdown();
}
