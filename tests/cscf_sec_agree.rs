//! Security agreement at the P-CSCF (RFC 3329, TS 33.203 §7, TS 24.229 §5.2.2) through the
//! all-in-one core, with a UE written here (UDP on the loopback, IMS-AKA from `ims::auth`):
//!
//! `ims_aka_registration_with_sec_agree`: the initial REGISTER carries `Require`/`Proxy-Require:
//! sec-agree` and a Security-Client offering two `ipsec-3gpp` mechanisms (HMAC-MD5-96 first,
//! HMAC-SHA-1-96 second). The 401 the UE gets has no `ck`/`ik` left in its WWW-Authenticate and
//! one Security-Server: `ipsec-3gpp` with HMAC-SHA-1-96 (the P-CSCF's preference among the UE's
//! offer), `ealg=null`, the P-CSCF's SPIs and its protected ports. The SA installer was asked to
//! install the SAs with the UE's and the P-CSCF's SPIs and ports and the CK/IK the UE's USIM
//! derives. A protected REGISTER (sent to the protected server port from the UE's protected client
//! port) whose Security-Verify is not the Security-Server gets 494; the one echoing it, with the
//! first Security-Client, gets the 200 (P-Associated-URI, Service-Route) and the SAs become the
//! registration's (same lifetime as the contact); the 494 lists the P-CSCF's mechanisms in a
//! Security-Server (RFC 3329 §2.3.1) and the Path stored for the UE names the protected server
//! port (also open over TCP). A re-registration over the SAs (`integrity-protected="yes"`) gets
//! its 200 without a new challenge (TS 24.229 §5.4.1.2.2). Requests outside the SAs (from the
//! UE's protected client port to the unprotected port; to the protected server port from another
//! port) are dropped unanswered. A call from the UE to itself shows the terminating side: the
//! INVITE reaches the UE's protected server port from the P-CSCF's protected client port, whose
//! Via names that port, and the ACK of the UE's 486 comes the same way (TS 33.203 §7.1). The
//! de-registration over the SAs (not challenged either) removes them.
//!
//! `sipp_registers_with_sec_agree`: the same with SIPp and the shipped
//! `examples/sipp/ims_register_sec_agree.xml` (SIPp's own AKA, the 401 checked for a
//! Security-Server and no CK/IK, the second REGISTER sent to the protected port — checked on the
//! wire with tshark).
//!
//! `a_network_deregistration_releases_the_call_over_the_sas_then_ends_them`: the HSS de-registers
//! a UE with SAs in a call (RTR → reg event NOTIFY to the P-CSCF, whose SUBSCRIBE names the
//! protected Path entry): the BYEs toward it all leave from port-c, its answers come over the SA,
//! then the SAs go. The other tests' docs say what each checks.
//!
//! (Kernel IPsec is not exercised: this machine's kernel has no ESP; the recording installer
//! stands in for `ip xfrm`.)

mod common;
mod ims_core;

use ims::auth::digest::{answer_aka, Challenge, Request};
use ims::nf::runtime::{CoreOptions, ImsCore};
use ims::nf::sec_agree::{
    mechanisms, RecordingInstaller, SaInstaller, SaOperation, SecAgreeConfig,
};
use ims::sip::{HeaderName, OwnedMessage};
use ims_core::LO;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::UdpSocket;

const PCSCF: u16 = 6800;
const PORT_PC: u16 = 6806;
const PORT_PS: u16 = 6807;
const UE_PLAIN: u16 = 6891;
const UE_PORT_UC: u16 = 6893;
const UE_PORT_US: u16 = 6894;
const IMPI: &str = "001010000000001@ims.example.org";
const IMSI: &str = "001010000000001";

async fn bind(port: u16) -> UdpSocket {
    for _ in 0..50 {
        if let Ok(s) = UdpSocket::bind((LO, port)).await {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("UDP port {port} stays busy");
}

/// Sends `req` and returns the first final response (retransmitting like RFC 3261 Timer E).
async fn transact(sock: &UdpSocket, to: u16, req: &str) -> OwnedMessage {
    let to = SocketAddr::new(LO, to);
    let mut buf = vec![0u8; 65535];
    for attempt in 0..7 {
        sock.send_to(req.as_bytes(), to).await.expect("send");
        let wait = Duration::from_millis(500 << attempt.min(3));
        let deadline = tokio::time::Instant::now() + wait;
        while let Ok(Ok((n, _))) = tokio::time::timeout_at(deadline, sock.recv_from(&mut buf)).await
        {
            let m = OwnedMessage::parse_datagram(bytes::Bytes::copy_from_slice(&buf[..n]))
                .expect("the core sends SIP");
            if m.as_message().status().is_some_and(|s| s >= 200) {
                return m;
            }
        }
    }
    panic!("no final response to\n{req}");
}

/// Sends `req` (retransmitting like Timer E) and asserts nothing comes back for 4 s.
async fn assert_silent(sock: &UdpSocket, to: u16, req: &str) {
    let to = SocketAddr::new(LO, to);
    let mut buf = vec![0u8; 65535];
    for _ in 0..4 {
        sock.send_to(req.as_bytes(), to).await.expect("send");
        if let Ok(Ok((n, _))) =
            tokio::time::timeout(Duration::from_secs(1), sock.recv_from(&mut buf)).await
        {
            panic!(
                "a request outside the SAs was answered:\n{}",
                String::from_utf8_lossy(&buf[..n])
            );
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn register(
    port: u16,
    branch: &str,
    cseq: u32,
    expires: u32,
    authorization: &str,
    client: &str,
    verify: Option<&str>,
) -> String {
    let verify = verify
        .map(|v| format!("Security-Verify: {v}\r\n"))
        .unwrap_or_default();
    format!(
        "REGISTER sip:ims.example.org SIP/2.0\r\n\
         Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK-{branch};rport\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:{IMPI}>;tag=sa-ue\r\n\
         To: <sip:{IMPI}>\r\n\
         Call-ID: sec-agree-1@127.0.0.1\r\n\
         CSeq: {cseq} REGISTER\r\n\
         Contact: <sip:{IMSI}@127.0.0.1:{UE_PORT_US}>;expires={expires}\r\n\
         Expires: {expires}\r\n\
         Supported: path, sec-agree\r\n\
         Require: sec-agree\r\n\
         Proxy-Require: sec-agree\r\n\
         Security-Client: {client}\r\n\
         {verify}\
         Authorization: {authorization}\r\n\
         Content-Length: 0\r\n\r\n"
    )
}

/// The unprotected first REGISTER (CSeq 1, 600 s) from `port`: its Authorization names the
/// IMPI and answers no challenge yet (TS 24.229 §5.1.1.2).
fn first_register(port: u16, branch: &str, client: &str) -> String {
    let empty_auth = format!(
        "Digest username=\"{IMPI}\",realm=\"ims.example.org\",nonce=\"\",uri=\"sip:ims.example.org\",response=\"\",algorithm=AKAv1-MD5"
    );
    register(port, branch, 1, 600, &empty_auth, client, None)
}

/// The UE's USIM: the demo subscriber's K and OP (those of `ims_core::subscriber`).
fn usim() -> ims::auth::aka::Usim {
    let milenage = ims::auth::milenage::Milenage::new(
        b"ims-rs-demo-K-01",
        ims::auth::milenage::OperatorKey::Op(*b"ims-rs-demo-OP-1"),
    );
    ims::auth::aka::Usim::new(milenage, 5)
}

/// Sends the unprotected first REGISTER `req` from `plain` to the P-CSCF's port `to`: asserts
/// the 401 and returns it with the P-CSCF's (first) Security-Server.
async fn challenged(plain: &UdpSocket, to: u16, req: &str) -> (OwnedMessage, String) {
    let r401 = transact(plain, to, req).await;
    assert_eq!(r401.as_message().status(), Some(401));
    let server = mechanisms(&r401.as_message(), HeaderName::SecurityServer)
        .expect("Security-Server")[0]
        .to_string();
    (r401, server)
}

/// Waits until the P-CSCF has recorded the registration of `contact` and, with `sas`, has
/// established every SA.
async fn wait_registered(pcscf: &ims::nf::cscf::Pcscf, contact: &str, sas: bool) {
    let what = if sas {
        "the P-CSCF to record the registration and its SAs"
    } else {
        "the P-CSCF to record the registration"
    };
    ims_core::wait_for(what, || {
        pcscf.registration(contact).is_some()
            && (!sas
                || pcscf
                    .sec_agree()
                    .unwrap()
                    .associations()
                    .iter()
                    .all(|s| s.established))
    })
    .await;
}

fn answer(resp: &OwnedMessage, usim: &mut ims::auth::aka::Usim) -> (String, [u8; 16], [u8; 16]) {
    let m = resp.as_message();
    let www = m.header(HeaderName::WwwAuthenticate).expect("a challenge");
    let ch = Challenge::parse(www).expect("a digest challenge");
    let req = Request {
        method: "REGISTER",
        uri: "sip:ims.example.org",
        body: b"",
        cnonce: "0a4f113b",
        nc: 1,
    };
    let (creds, keys) = answer_aka(&ch, usim, IMPI, &req).expect("the USIM accepts AUTN");
    let keys = keys.expect("no resynchronisation");
    (creds.to_string(), keys.ck, keys.ik)
}

/// An audio SDP: the offer of a UE's call to itself and its answer.
const SDP: &str = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
                   m=audio 40000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n";

/// A Security-Client offering `ipsec-3gpp` with HMAC-SHA-1-96, the UE's SPIs and its protected
/// client and server ports.
fn security_client(spi_c: u32, spi_s: u32, uc: u16, us: u16) -> String {
    format!(
        "ipsec-3gpp;alg=hmac-sha-1-96;ealg=null;spi-c={spi_c};spi-s={spi_s};port-c={uc};port-s={us}"
    )
}

/// Adapts a REGISTER of `register` to a UE whose Contact names its protected server port `us`
/// and whose registration has the Call-ID `sec-agree-{call}@127.0.0.1`.
fn ue_on(us: u16, call: &str) -> impl Fn(String) -> String {
    let (from, to) = (
        format!("@127.0.0.1:{UE_PORT_US}>"),
        format!("@127.0.0.1:{us}>"),
    );
    let call_id = format!("Call-ID: sec-agree-{call}@");
    move |r: String| {
        r.replace(&from, &to)
            .replace("Call-ID: sec-agree-1@", &call_id)
    }
}

/// Registers a UE over the SAs with the P-CSCF at `base` (protected server port `ps`): the
/// unprotected first REGISTER from `plain` (branch `{tag}1`) gets the 401, the protected one
/// from `protected` at its protected client port `uc` (branch `{tag}2`, CSeq 2, echoing the
/// Security-Server) the 200. `ours` adapts both REGISTERs to the UE. Returns the Authorization
/// and the Security-Server, for the REGISTERs to come.
async fn register_over_sas(
    (plain, plain_port): (&UdpSocket, u16),
    (protected, uc): (&UdpSocket, u16),
    (base, ps): (u16, u16),
    client: &str,
    tag: &str,
    usim: &mut ims::auth::aka::Usim,
    ours: impl Fn(String) -> String,
) -> (String, String) {
    let first = first_register(plain_port, &format!("{tag}1"), client);
    let (r401, server) = challenged(plain, base, &ours(first)).await;
    let (auth, _, _) = answer(&r401, usim);
    let second = register(uc, &format!("{tag}2"), 2, 600, &auth, client, Some(&server));
    let r = transact(protected, ps, &ours(second)).await;
    assert_eq!(r.as_message().status(), Some(200), "{}", r.as_message());
    (auth, server)
}

/// The UE's INVITE to itself over the SA (from its protected client port `uc`; branch
/// `z9hG4bK-{call}1`, Call-ID `{call}-call@127.0.0.1`), with the audio offer.
fn self_invite_with_sdp(uc: u16, call: &str, contact: &str) -> String {
    format!(
        "INVITE sip:{IMPI} SIP/2.0\r\n\
         Via: SIP/2.0/UDP 127.0.0.1:{uc};branch=z9hG4bK-{call}1;rport\r\n\
         Max-Forwards: 70\r\nFrom: <sip:{IMPI}>;tag=caller\r\nTo: <sip:{IMPI}>\r\n\
         Call-ID: {call}-call@127.0.0.1\r\nCSeq: 1 INVITE\r\n\
         Contact: <{contact}>\r\nContent-Type: application/sdp\r\n\
         Content-Length: {}\r\n\r\n{SDP}",
        SDP.len()
    )
}

/// Waits (20 s at most for each datagram) for the INVITE reaching the UE's `sock`, passing
/// anything else over; returns it with where it came from.
async fn invite_reaching(sock: &UdpSocket) -> (OwnedMessage, SocketAddr) {
    let mut buf = vec![0u8; 65535];
    loop {
        let (n, from) = tokio::time::timeout(Duration::from_secs(20), sock.recv_from(&mut buf))
            .await
            .expect("the INVITE reaches the UE's protected server port")
            .expect("recv");
        let m =
            OwnedMessage::parse_datagram(bytes::Bytes::copy_from_slice(&buf[..n])).expect("SIP");
        if m.as_message().method() == Some(ims::sip::Method::Invite) {
            return (m, from);
        }
    }
}

/// The callee UE's 200 to `invite` (To-tag `callee`), with its Contact and the audio answer.
fn ok_with_sdp(invite: &OwnedMessage, contact: &str) -> Vec<u8> {
    ims::sip::ResponseBuilder::from_request_with_tag(&invite.as_message(), 200, Some("callee"))
        .header("Contact", format!("<{contact}>"))
        .body("application/sdp", SDP.as_bytes().to_vec())
        .to_vec()
}

/// Waits until the PCRF holds `n` Rx sessions.
async fn wait_rx_sessions(core: &ImsCore, what: &str, n: usize) {
    ims_core::wait_for(what, || {
        core.pcrf().is_some_and(|p| p.lock().unwrap().len() == n)
    })
    .await;
}

/// Has the admin API start a network release (`POST {path}` with `body`, answered 200), then
/// answers with a 200 every BYE reaching the UE's protected server port `ue_server` and asserts
/// that all of them — two at least: the P-CSCF's own and the one along the route set — came over
/// the SA, from the P-CSCF's protected client port `pc` (`toward` names the UE); then waits for
/// the call's Rx sessions to end.
async fn release_over_the_sa(
    core: &ImsCore,
    admin: SocketAddr,
    path: &str,
    body: &str,
    ue_server: &UdpSocket,
    pc: u16,
    toward: &str,
) {
    let (st, body) = ims_core::admin_request(admin, "POST", path, body).await;
    assert_eq!(st, 200, "{body}");
    let mut byes = Vec::new();
    let mut buf = vec![0u8; 65535];
    let until = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        // two BYEs at least (the P-CSCF's own and the one along the route set), then a
        // moment for any other
        let deadline = if byes.len() >= 2 {
            until.min(tokio::time::Instant::now() + Duration::from_secs(2))
        } else {
            until
        };
        let Ok(Ok((n, from))) =
            tokio::time::timeout_at(deadline, ue_server.recv_from(&mut buf)).await
        else {
            break;
        };
        let m =
            OwnedMessage::parse_datagram(bytes::Bytes::copy_from_slice(&buf[..n])).expect("SIP");
        let v = m.as_message();
        if v.method() != Some(ims::sip::Method::Bye) {
            continue;
        }
        let resp = ims::sip::ResponseBuilder::from_request(&v, 200).to_vec();
        ue_server.send_to(&resp, from).await.expect("send");
        let branch = v
            .top_via()
            .ok()
            .flatten()
            .and_then(|x| x.branch().map(str::to_string));
        if !byes.iter().any(|(_, b)| *b == branch) {
            byes.push((from, branch));
        }
    }
    assert!(byes.len() >= 2, "BYEs: {byes:?}");
    assert!(
        byes.iter().all(|(f, _)| *f == SocketAddr::new(LO, pc)),
        "every BYE toward {toward} leaves from port-c: {byes:?}"
    );
    wait_rx_sessions(core, "the Rx sessions to end", 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ims_aka_registration_with_sec_agree() {
    let cfg = ims_core::all_in_one(PCSCF, [6956, 6957], None);
    let installer = Arc::new(RecordingInstaller::default());
    let sa: Arc<dyn SaInstaller> = installer.clone();
    let core = ims_core::start_with(
        cfg,
        CoreOptions::default().with_sec_agree(SecAgreeConfig::new(LO, PORT_PC, PORT_PS), Some(sa)),
    )
    .await;
    let pcscf = core.pcscf().expect("P-CSCF runs").clone();
    let plain = bind(UE_PLAIN).await;
    let protected = bind(UE_PORT_UC).await;
    let client = format!(
        "ipsec-3gpp;alg=hmac-md5-96;ealg=null;spi-c=1111;spi-s=2222;port-c={UE_PORT_UC};port-s={UE_PORT_US}, \
         ipsec-3gpp;alg=hmac-sha-1-96;ealg=null;spi-c=1111;spi-s=2222;port-c={UE_PORT_UC};port-s={UE_PORT_US}"
    );

    // 1. the unprotected REGISTER → 401 with Security-Server, without CK/IK
    let r401 = transact(&plain, PCSCF, &first_register(UE_PLAIN, "sa1", &client)).await;
    let m = r401.as_message();
    assert_eq!(m.status(), Some(401), "{m}");
    let www = m
        .header(HeaderName::WwwAuthenticate)
        .expect("WWW-Authenticate");
    assert!(www.contains("nonce=\""), "{www}");
    // the parameter names (a base64 nonce may well contain "ik=" itself)
    let names: Vec<String> = www
        .trim_start()
        .trim_start_matches("Digest")
        .split(',')
        .filter_map(|p| p.split('=').next())
        .map(|n| n.trim().to_ascii_lowercase())
        .collect();
    assert!(names.iter().any(|n| n == "nonce"), "{www}");
    for k in ["ck", "ik"] {
        assert!(!names.iter().any(|n| n == k), "{k} reached the UE: {www}");
    }
    let server = mechanisms(&m, HeaderName::SecurityServer).expect("Security-Server parses");
    assert_eq!(server.len(), 1, "{m}");
    let s = &server[0];
    assert_eq!(s.name, "ipsec-3gpp");
    assert_eq!(
        s.alg,
        Some("hmac-sha-1-96"),
        "the P-CSCF prefers SHA-1: {s}"
    );
    assert_eq!(s.ealg, Some("null"));
    assert_eq!((s.port_c, s.port_s), (Some(PORT_PC), Some(PORT_PS)));
    assert_eq!((s.prot, s.mode), (Some("esp"), Some("trans")));
    assert!(s.q.is_some());
    let (spi_pc, spi_ps) = (s.spi_c.expect("spi-c"), s.spi_s.expect("spi-s"));
    assert!(spi_pc > 255 && spi_ps > 255 && spi_pc != spi_ps);
    let security_server = s.to_string();
    drop(server);

    // the UE's USIM answers; the P-CSCF's temporary SAs carry the same CK/IK
    let mut usim = usim();
    let (auth, ck, ik) = answer(&r401, &mut usim);
    let ops = installer.operations();
    assert_eq!(ops.len(), 1, "{ops:?}");
    let SaOperation::Install(temp) = &ops[0] else {
        panic!("{ops:?}")
    };
    assert_eq!((temp.ck.as_slice(), temp.ik.as_slice()), (&ck[..], &ik[..]));
    assert_eq!(temp.ue_ip, LO);
    assert_eq!(
        (temp.ue.spi_c, temp.ue.spi_s, temp.ue.port_c, temp.ue.port_s),
        (1111, 2222, UE_PORT_UC, UE_PORT_US)
    );
    assert_eq!(
        (
            temp.pcscf.spi_c,
            temp.pcscf.spi_s,
            temp.pcscf.port_c,
            temp.pcscf.port_s
        ),
        (spi_pc, spi_ps, PORT_PC, PORT_PS)
    );
    assert_eq!(temp.alg, "hmac-sha-1-96");
    assert!(!temp.established);

    // 2. a protected REGISTER whose Security-Verify is not what the P-CSCF sent → 494
    let wrong =
        security_server.replace(&format!("spi-s={spi_ps}"), &format!("spi-s={}", spi_ps + 7));
    let r = transact(
        &protected,
        PORT_PS,
        &register(UE_PORT_UC, "sa2", 2, 600, &auth, &client, Some(&wrong)),
    )
    .await;
    assert_eq!(r.as_message().status(), Some(494), "{}", r.as_message());
    // RFC 3329 §2.3.1: the 494 lists what the P-CSCF supports, its preference first
    let r494 = r.as_message();
    let listed = mechanisms(&r494, HeaderName::SecurityServer).expect("Security-Server");
    assert!(!listed.is_empty(), "{r494}");
    assert_eq!(
        (listed[0].name, listed[0].alg),
        ("ipsec-3gpp", Some("hmac-sha-1-96"))
    );
    drop(listed);
    drop(r494);
    assert!(pcscf
        .registration(&format!("sip:{IMSI}@127.0.0.1:{UE_PORT_US}"))
        .is_none());

    // 3. the protected REGISTER echoing the Security-Server → 200; the SAs are established
    let r200 = transact(
        &protected,
        PORT_PS,
        &register(
            UE_PORT_UC,
            "sa3",
            3,
            600,
            &auth,
            &client,
            Some(&security_server),
        ),
    )
    .await;
    let m = r200.as_message();
    assert_eq!(m.status(), Some(200), "{m}");
    assert!(m.header(HeaderName::PAssociatedUri).is_some(), "{m}");
    assert!(m.header(HeaderName::ServiceRoute).is_some(), "{m}");
    // the P-CSCF reads the 200 as it relays it: its state follows the wire shortly
    let contact = format!("sip:{IMSI}@127.0.0.1:{UE_PORT_US}");
    wait_registered(&pcscf, &contact, true).await;
    let reg = pcscf
        .registration(&contact)
        .expect("the P-CSCF knows the UE");
    let sas = pcscf.sec_agree().expect("sec-agree on").associations();
    assert_eq!(sas.len(), 1, "{sas:?}");
    assert!(sas[0].established);
    assert_eq!(
        sas[0].expires_at, reg.expires_at,
        "the SAs live as long as the registration"
    );
    assert_eq!(installer.operations().len(), 1, "no SA re-installed");

    // the Path the S-CSCF stored (echoed in the 200) names the protected server port
    let path = m.header(HeaderName::Path).expect("Path in the 200");
    assert!(path.contains(&format!(":{PORT_PS}")), "{path}");
    // the P-CSCF listens on port-s over TCP too
    tokio::net::TcpStream::connect((LO, PORT_PS))
        .await
        .expect("TCP on the protected server port");

    // 4. re-registration over the SAs: integrity-protected, so not challenged again
    let r = transact(
        &protected,
        PORT_PS,
        &register(
            UE_PORT_UC,
            "sa4",
            4,
            600,
            &auth,
            &client,
            Some(&security_server),
        ),
    )
    .await;
    assert_eq!(r.as_message().status(), Some(200), "{}", r.as_message());

    // 5. requests outside the SAs are dropped unanswered: from the UE's protected client port
    // to the unprotected port, and to the protected server port from another port
    let options = |port: u16, branch: &str| {
        format!(
            "OPTIONS sip:{IMPI} SIP/2.0\r\n\
             Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK-{branch};rport\r\n\
             Max-Forwards: 70\r\nFrom: <sip:{IMPI}>;tag=o1\r\nTo: <sip:{IMPI}>\r\n\
             Call-ID: {branch}@127.0.0.1\r\nCSeq: 1 OPTIONS\r\n\
             Contact: <sip:{IMSI}@127.0.0.1:{UE_PORT_US}>\r\nContent-Length: 0\r\n\r\n"
        )
    };
    assert_silent(&protected, PCSCF, &options(UE_PORT_UC, "out1")).await;
    assert_silent(&plain, PORT_PS, &options(UE_PLAIN, "out2")).await;

    // 6. a request toward the UE leaves from the protected client port to the UE's protected
    // server port: the UE calls itself over the SA; the terminating P-CSCF (Path: port-s)
    // sends the INVITE from port-c with port-c in its Via; the UE's 486 goes back there
    let ue_server = bind(UE_PORT_US).await;
    let invite = format!(
        "INVITE sip:{IMPI} SIP/2.0\r\n\
         Via: SIP/2.0/UDP 127.0.0.1:{UE_PORT_UC};branch=z9hG4bK-self1;rport\r\n\
         Max-Forwards: 70\r\nFrom: <sip:{IMPI}>;tag=self\r\nTo: <sip:{IMPI}>\r\n\
         Call-ID: self-call@127.0.0.1\r\nCSeq: 1 INVITE\r\n\
         Contact: <sip:{IMSI}@127.0.0.1:{UE_PORT_US}>\r\nContent-Length: 0\r\n\r\n"
    );
    let callee = tokio::spawn(async move {
        let (m, from) = invite_reaching(&ue_server).await;
        let v = m.as_message();
        let via = v.header(HeaderName::Via).unwrap_or_default().to_string();
        let resp = ims::sip::ResponseBuilder::from_request_with_tag(&v, 486, Some("busy")).to_vec();
        ue_server.send_to(&resp, from).await.expect("send 486");
        // the P-CSCF's ACK for the 486 comes the same way
        let mut buf = vec![0u8; 65535];
        let ack = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                let (n, f) = ue_server.recv_from(&mut buf).await.expect("recv");
                if buf[..n].starts_with(b"ACK ") {
                    return f;
                }
            }
        })
        .await
        .expect("the ACK of the 486");
        (from, via, ack)
    });
    let r = transact(&protected, PORT_PS, &invite).await;
    assert_eq!(r.as_message().status(), Some(486), "{}", r.as_message());
    let (from, via, ack_from) = callee.await.expect("callee task");
    assert_eq!(from, SocketAddr::new(LO, PORT_PC), "sent from port-c");
    assert_eq!(ack_from, SocketAddr::new(LO, PORT_PC));
    assert!(
        via.starts_with(&format!("SIP/2.0/UDP 127.0.0.1:{PORT_PC}")),
        "the P-CSCF's Via names port-c: {via}"
    );

    // 7. de-registration over the SAs (not challenged either): the SAs go
    let dereg = transact(
        &protected,
        PORT_PS,
        &register(
            UE_PORT_UC,
            "sa7",
            7,
            0,
            &auth,
            &client,
            Some(&security_server),
        ),
    )
    .await;
    assert_eq!(
        dereg.as_message().status(),
        Some(200),
        "{}",
        dereg.as_message()
    );
    drop(usim);
    ims_core::wait_for("the SAs to be removed", || {
        pcscf.sec_agree().unwrap().associations().is_empty()
    })
    .await;
    let ops = installer.operations();
    assert!(
        matches!(ops.last(), Some(SaOperation::Remove(_))),
        "the last SA operation removes: {ops:?}"
    );
    core.shutdown();
}

/// The shipped SIPp scenario `ims_register_sec_agree.xml`: SIPp's own IMS-AKA, the 401 checked
/// for a Security-Server and no CK/IK, the protected REGISTER sent to the Security-Server's port-s
/// with Security-Verify → 200; the P-CSCF then holds an established SA for SIPp's port.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sipp_registers_with_sec_agree() {
    let Some(bin) = common::interop_tool("sipp", "apt-get install sip-tester") else {
        return;
    };
    let dir = common::TempDir::new("cscf", "sec-agree", "IMS_KEEP_SIPP");
    let installer = Arc::new(RecordingInstaller::default());
    let sa: Arc<dyn SaInstaller> = installer.clone();
    let core = ims_core::start_with(
        ims_core::all_in_one(6830, [6958, 6959], None),
        CoreOptions::default().with_sec_agree(SecAgreeConfig::new(LO, 6836, 6837), Some(sa)),
    )
    .await;
    let tshark = common::interop_tool("tshark", "apt-get install tshark");
    let cap = ims_core::capture_with_sip(tshark, dir.path(), &[], &[6830, 6837]).await;
    let (ok, out) = ims_core::sipp(
        &bin,
        dir.path(),
        &[
            "127.0.0.1:6830",
            "-sf",
            ims_core::scenario("ims_register_sec_agree.xml")
                .to_str()
                .unwrap(),
            "-s",
            "001010000000002",
            "-au",
            "001010000000002@ims.example.org",
            "-i",
            "127.0.0.1",
            "-p",
            "6896",
            "-m",
            "1",
        ],
    )
    .await;
    assert!(ok, "SIPp registration with sec-agree failed:\n{out}");
    let pcscf = core.pcscf().expect("P-CSCF").clone();
    wait_registered(&pcscf, "sip:001010000000002@127.0.0.1:6896", true).await;
    let sas = pcscf.sec_agree().expect("sec-agree on").associations();
    assert_eq!(sas.len(), 1, "{sas:?}");
    let s = &sas[0];
    assert!(s.established);
    assert_eq!((s.ue.spi_c, s.ue.spi_s), (3333, 4444));
    assert_eq!((s.ue.port_c, s.ue.port_s), (6896, 6896));
    assert_eq!((s.pcscf.port_c, s.pcscf.port_s), (6836, 6837));
    assert_eq!(s.alg, "hmac-sha-1-96");
    assert_eq!(installer.operations().len(), 1);
    core.shutdown();
    // on the wire: the REGISTER with the AKA response went to the protected server port
    let Some(cap) = cap else { return };
    let frames = cap
        .frames_where(
            "sip.Method == \"REGISTER\"",
            &[6830, 6837],
            &["udp.dstport", "sip.CSeq.seq"],
        )
        .await;
    let to = |port: &str, seq: &str| {
        frames
            .iter()
            .any(|f| f.get("udp.dstport") == port && f.get("sip.CSeq.seq") == seq)
    };
    assert!(to("6830", "1") && to("6837", "2"), "{frames:?}");
    assert!(!to("6830", "2"), "{frames:?}");
}

/// Requests toward a UE that registered a TCP contact over its SAs leave on a TCP connection
/// the P-CSCF opens FROM its protected client port to the UE's protected server port
/// (TS 33.203 §7.1; one connection per agreement), and the UE's answer counts only on it: one
/// sent first on a connection of the UE's own to the protected server port is dropped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_toward_the_ue_leaves_from_the_protected_client_port() {
    let (base, pc, ps, plain_port, uc, us): (u16, u16, u16, u16, u16, u16) =
        (6860, 6866, 6867, 6885, 6887, 6888);
    let cfg = ims_core::all_in_one(base, [6968, 6969], None);
    let core = ims_core::start_with(
        cfg,
        CoreOptions::default().with_sec_agree(SecAgreeConfig::new(LO, pc, ps), None),
    )
    .await;
    let pcscf = core.pcscf().expect("P-CSCF runs").clone();
    let plain = bind(plain_port).await;
    let protected = bind(uc).await;
    let listener = {
        let mut l = None;
        for _ in 0..50 {
            if let Ok(x) = tokio::net::TcpListener::bind((LO, us)).await {
                l = Some(x);
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        l.expect("TCP port free")
    };
    let tcp_contact = |r: String| {
        r.replace(
            &format!("@127.0.0.1:{UE_PORT_US}>"),
            &format!("@127.0.0.1:{us};transport=tcp>"),
        )
    };
    let mut usim = usim();
    register_over_sas(
        (&plain, plain_port),
        (&protected, uc),
        (base, ps),
        &security_client(5555, 6666, uc, us),
        "t",
        &mut usim,
        tcp_contact,
    )
    .await;
    let contact = format!("sip:{IMSI}@127.0.0.1:{us};transport=tcp");
    wait_registered(&pcscf, &contact, false).await;

    // the UE calls itself over the SA; the terminating leg comes over TCP from port-c
    let callee = tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (mut conn, peer) = tokio::time::timeout(Duration::from_secs(20), listener.accept())
            .await
            .expect("the P-CSCF connects")
            .expect("accept");
        let mut buf = Vec::new();
        let mut chunk = vec![0u8; 65535];
        let invite = loop {
            let n = tokio::time::timeout(Duration::from_secs(10), conn.read(&mut chunk))
                .await
                .expect("the INVITE")
                .expect("read");
            assert!(n > 0, "connection closed early");
            buf.extend_from_slice(&chunk[..n]);
            if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break OwnedMessage::parse_datagram(bytes::Bytes::copy_from_slice(&buf[..end + 4]))
                    .expect("SIP");
            }
        };
        let v = invite.as_message();
        assert_eq!(v.method(), Some(ims::sip::Method::Invite), "{v}");
        let via = v.header(HeaderName::Via).unwrap_or_default().to_string();
        // first an answer outside the SA's connection: on a connection of the UE's own to the
        // P-CSCF's protected server port; it must not end the transaction
        let stray =
            ims::sip::ResponseBuilder::from_request_with_tag(&v, 486, Some("stray")).to_vec();
        let mut other = tokio::net::TcpStream::connect((LO, ps))
            .await
            .expect("connect to port-s");
        other.write_all(&stray).await.expect("stray 486");
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let resp = ims::sip::ResponseBuilder::from_request_with_tag(&v, 486, Some("busy")).to_vec();
        conn.write_all(&resp).await.expect("486 on the connection");
        // the ACK of the 486 on the same connection
        let mut rest = Vec::new();
        let acked = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                let n = conn.read(&mut chunk).await.unwrap_or(0);
                if n == 0 {
                    return false;
                }
                rest.extend_from_slice(&chunk[..n]);
                if rest.windows(4).any(|w| w == b"ACK ") {
                    return true;
                }
            }
        })
        .await
        .unwrap_or(false);
        (peer, via, acked)
    });
    let invite = format!(
        "INVITE sip:{IMPI} SIP/2.0\r\n\
         Via: SIP/2.0/UDP 127.0.0.1:{uc};branch=z9hG4bK-tself1;rport\r\n\
         Max-Forwards: 70\r\nFrom: <sip:{IMPI}>;tag=self\r\nTo: <sip:{IMPI}>\r\n\
         Call-ID: tcp-self-call@127.0.0.1\r\nCSeq: 1 INVITE\r\n\
         Contact: <{contact}>\r\nContent-Length: 0\r\n\r\n"
    );
    let r = transact(&protected, ps, &invite).await;
    assert_eq!(r.as_message().status(), Some(486), "{}", r.as_message());
    let to_tag = r
        .as_message()
        .to()
        .ok()
        .flatten()
        .and_then(|t| t.tag().map(str::to_string));
    assert_eq!(
        to_tag.as_deref(),
        Some("busy"),
        "only the answer over the SA's connection counts: {}",
        r.as_message()
    );
    let (peer, via, acked) = callee.await.expect("callee task");
    assert_eq!(
        peer,
        SocketAddr::new(LO, pc),
        "the connection comes from port-c"
    );
    assert!(
        via.starts_with(&format!("SIP/2.0/TCP 127.0.0.1:{pc}")),
        "the P-CSCF's Via names port-c: {via}"
    );
    assert!(acked, "the ACK of the 486 on the same connection");
    drop(usim);
    core.shutdown();
}

/// What a UE with SAs sends and gets outside the call set-up, over the SAs only (TS 33.203
/// §7.1, TS 24.229 §5.2.8.1.2), with the S-CSCF set to challenge every REGISTER
/// (`CoreOptions::with_reauthenticate_protected`, `[registrar] reauthenticate_protected` in
/// `ims.toml`):
/// - a re-REGISTER over the SAs is challenged again (TS 24.229 §5.4.1.2.2 lets the S-CSCF) and
///   the re-authentication completes over them;
/// - the UE's answers to the terminating INVITE count only when they come over the SA (from its
///   protected server port to the P-CSCF's protected client port): a 200 from another UE port to
///   port-c, and one from the protected server port to the P-CSCF's port-s, are dropped (the
///   P-CSCF keeps retransmitting its INVITE, the caller gets nothing), the one over the SA
///   confirms the call;
/// - the PCRF aborts the call's Rx sessions: every BYE of the network release reaching the UE —
///   the P-CSCF's own as well as the one relayed along the route set — comes from the P-CSCF's
///   protected client port.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_network_release_and_the_ues_answers_go_over_the_sas() {
    let (base, pc, ps, plain_port, uc, us, stray): (u16, u16, u16, u16, u16, u16, u16) =
        (6700, 6706, 6707, 6791, 6793, 6794, 6795);
    let admin = SocketAddr::new(LO, 6762);
    let core = ims_core::start_with(
        ims_core::all_in_one(base, [6760, 6761], Some(admin.port())),
        CoreOptions::default()
            .with_sec_agree(SecAgreeConfig::new(LO, pc, ps), None)
            .with_reauthenticate_protected(true),
    )
    .await;
    let pcscf = core.pcscf().expect("P-CSCF runs").clone();
    let plain = bind(plain_port).await;
    let protected = bind(uc).await;
    let ue_server = bind(us).await;
    let stray_sock = bind(stray).await;
    let client = security_client(7777, 8888, uc, us);
    let ours = ue_on(us, "rel");
    let mut usim = usim();

    // registration over the SAs
    let (auth, server) = register_over_sas(
        (&plain, plain_port),
        (&protected, uc),
        (base, ps),
        &client,
        "r",
        &mut usim,
        &ours,
    )
    .await;

    // the policy: a re-REGISTER over the SAs is challenged, and answered over them
    let again = transact(
        &protected,
        ps,
        &ours(register(uc, "r3", 3, 600, &auth, &client, Some(&server))),
    )
    .await;
    assert_eq!(
        again.as_message().status(),
        Some(401),
        "reauthenticate_protected: {}",
        again.as_message()
    );
    let server2 = mechanisms(&again.as_message(), HeaderName::SecurityServer)
        .expect("Security-Server of the re-authentication")[0]
        .to_string();
    assert_ne!(server, server2, "new SPIs");
    let (auth2, _, _) = answer(&again, &mut usim);
    let r = transact(
        &protected,
        ps,
        &ours(register(uc, "r4", 4, 600, &auth2, &client, Some(&server2))),
    )
    .await;
    assert_eq!(r.as_message().status(), Some(200), "{}", r.as_message());
    drop(usim);
    let contact = format!("sip:{IMSI}@127.0.0.1:{us}");
    wait_registered(&pcscf, &contact, false).await;

    // the UE calls itself over the SA; the callee side answers first from outside the SA
    let invite = self_invite_with_sdp(uc, "rel", &contact);
    let proper_sent = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sent = proper_sent.clone();
    let callee_contact = contact.clone();
    let callee = tokio::spawn(async move {
        // the INVITE, from port-c
        let (first, from) = invite_reaching(&ue_server).await;
        assert_eq!(
            from,
            SocketAddr::new(LO, pc),
            "the INVITE leaves from port-c"
        );
        let branch = first
            .as_message()
            .top_via()
            .ok()
            .flatten()
            .and_then(|x| x.branch().map(str::to_string))
            .expect("branch");
        let ok = ok_with_sdp(&first, &callee_contact);
        // outside the SA: from another UE port to port-c and to port-s, from port-s to the
        // P-CSCF's port-s
        for to in [pc, ps] {
            stray_sock
                .send_to(&ok, SocketAddr::new(LO, to))
                .await
                .expect("send");
        }
        ue_server
            .send_to(&ok, SocketAddr::new(LO, ps))
            .await
            .expect("send");
        // neither ended the P-CSCF's client transaction: its INVITE comes again
        let mut buf = vec![0u8; 65535];
        tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                let (n, _) = ue_server.recv_from(&mut buf).await.expect("recv");
                let m = OwnedMessage::parse_datagram(bytes::Bytes::copy_from_slice(&buf[..n]))
                    .expect("SIP");
                let m = m.as_message();
                if m.method() == Some(ims::sip::Method::Invite)
                    && m.top_via()
                        .ok()
                        .flatten()
                        .and_then(|x| x.branch().map(str::to_string))
                        .as_deref()
                        == Some(branch.as_str())
                {
                    return;
                }
            }
        })
        .await
        .expect("the INVITE retransmitted: the answers outside the SA were dropped");
        // over the SA
        sent.store(true, std::sync::atomic::Ordering::SeqCst);
        ue_server.send_to(&ok, from).await.expect("send 200");
        ue_server
    });
    let r = transact(&protected, ps, &invite).await;
    assert_eq!(r.as_message().status(), Some(200), "{}", r.as_message());
    assert!(
        proper_sent.load(std::sync::atomic::Ordering::SeqCst),
        "a 200 from outside the SA reached the caller"
    );
    let ue_server = callee.await.expect("callee task");
    wait_rx_sessions(&core, "both sides' Rx sessions", 2).await;

    // the PCRF aborts the sessions: the BYEs reaching the UE all come over the SA
    release_over_the_sa(&core, admin, "/pcrf/asr", "{}", &ue_server, pc, "the UE").await;
    core.shutdown();
}

/// A network de-registration (the HSS's RTR → the S-CSCF's reg event NOTIFY to the P-CSCF)
/// of a UE with SAs in a call: the P-CSCF releases the call (TS 24.229 §5.2.8.1.2) and every
/// BYE reaching the UE — its own and the ones relayed along the route set — comes over the SA
/// (from the P-CSCF's protected client port, TS 33.203 §7.1), the UE's answers are taken over
/// it, and only then do the SAs go (TS 33.203 §7.4: they end with the registration).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_network_deregistration_releases_the_call_over_the_sas_then_ends_them() {
    let (base, pc, ps, plain_port, uc, us): (u16, u16, u16, u16, u16, u16) =
        (6200, 6206, 6207, 6283, 6284, 6285);
    let admin = SocketAddr::new(LO, 6266);
    let core = ims_core::start_with(
        ims_core::all_in_one(base, [6264, 6265], Some(admin.port())),
        CoreOptions::default().with_sec_agree(SecAgreeConfig::new(LO, pc, ps), None),
    )
    .await;
    let pcscf = core.pcscf().expect("P-CSCF runs").clone();
    let plain = bind(plain_port).await;
    let protected = bind(uc).await;
    let ue_server = bind(us).await;
    let mut usim = usim();
    register_over_sas(
        (&plain, plain_port),
        (&protected, uc),
        (base, ps),
        &security_client(4444, 3333, uc, us),
        "d",
        &mut usim,
        ue_on(us, "dereg"),
    )
    .await;
    drop(usim);
    let contact = format!("sip:{IMSI}@127.0.0.1:{us}");
    wait_registered(&pcscf, &contact, true).await;
    ims_core::wait_for("the P-CSCF's reg event subscription", || {
        pcscf.reg_subscriptions() == 1
    })
    .await;

    // the UE calls itself over the SA and answers over it
    let invite = self_invite_with_sdp(uc, "dereg", &contact);
    let callee_contact = contact.clone();
    let callee = tokio::spawn(async move {
        let (invite, from) = invite_reaching(&ue_server).await;
        let ok = ok_with_sdp(&invite, &callee_contact);
        ue_server.send_to(&ok, from).await.expect("send 200");
        ue_server
    });
    let r = transact(&protected, ps, &invite).await;
    assert_eq!(r.as_message().status(), Some(200), "{}", r.as_message());
    let ue_server = callee.await.expect("callee task");
    wait_rx_sessions(&core, "both sides' Rx sessions", 2).await;

    // the HSS de-registers the UE: the BYEs reaching it all come over the SA, and are answered
    release_over_the_sa(
        &core,
        admin,
        "/rtr",
        &format!(r#"{{"impi":"{IMPI}","reason":0,"info":"gone"}}"#),
        &ue_server,
        pc,
        "the de-registered UE",
    )
    .await;
    // the registration and, after the BYEs, the SAs are gone
    assert!(pcscf.registration(&contact).is_none());
    ims_core::wait_for("the SAs to end with the registration", || {
        pcscf.sec_agree().unwrap().associations().is_empty()
    })
    .await;
    core.shutdown();
}
