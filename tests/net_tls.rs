//! TLS transports of ims-net (feature `tls`) on 127.0.0.1, with throw-away certificates made by
//! the `openssl` CLI in a temp dir (a test CA, leaf certificates with `IP:127.0.0.1` and DNS
//! names, and self-signed ones for fingerprint pinning):
//! - SIP over TLS between our UAC and UAS (RFC 3261 §26.2): a call on TLS-only endpoints with a
//!   `sips:` Contact, the UAS's BYE going back over the accepted flow (connection reuse), an
//!   untrusted server refused, a mixed UDP/TCP/TLS endpoint listening for TLS on its own port;
//! - sipsak (GnuTLS) sends OPTIONS over TLS to our UAS and gets our 200 (SIPp 3.6.1 of Debian is
//!   built without TLS, so sipsak is the SIP-over-TLS interop peer);
//! - MSRP over TLS (RFC 4975 §14.1): certificates pinned by SDP-style SHA-256 fingerprint both
//!   ways, a chat message crosses; a wrong fingerprint fails the handshake;
//! - Diameter over TLS (RFC 6733 §13, TLS right after connect, mutual authentication): our node
//!   ↔ our node with a Cx MAR/MAA; a client without a certificate, or whose certificate does not
//!   name its CER's Origin-Host, and a server not named by its certificate are refused; and freeDiameter
//!   (GnuTLS) as the TLS peer both ways (it connects to our TLS port; we connect to its SecPort).
//!
//! The `openssl`, `sipsak` and `freeDiameterd` tests are skipped when the tool is missing unless
//! `IMS_REQUIRE_INTEROP=1`. Set `IMS_KEEP_TLS=1` to keep the certificates and logs.
#![cfg(feature = "tls")]

mod common;
#[path = "interop_common/cx_rx.rs"]
mod cx_rx;
mod interop_common;

use cx_rx::{mar, serve_mar};
use ims::diameter::dict::app;
use ims::diameter::peer::Application;
use ims::diameter::Outcome;
use ims::msrp::session::{Config as MsrpConfig, Outgoing, Session, SessionEvent};
use ims::msrp::UriBuf;
use ims::net::diameter::{Node, NodeConfig};
use ims::net::msrp::{ConnConfig, ConnEvent, MsrpConnection};
use ims::net::sip::{Endpoint, EndpointConfig, NetError};
use ims::net::tls::{ClientAuth, Fingerprint, Identity, TlsConfig, Trust};
use ims::sip::{Method, OwnedMessage, RequestBuilder};
use ims::txn::ua::{Answer, InviteParams, UaEvent};
use ims::txn::{Remote, Transport};
use interop_common::{free_port, start_tls_freediameter, FreeDiameter};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::net::TcpListener;

const SECS: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------------------------------
// Certificates
// ---------------------------------------------------------------------------------------------

/// The shared test CA (`tests/interop_common`, files under `ims-tls-<tag>-…`, kept with
/// `IMS_KEEP_TLS=1`) handing out ims TLS types.
struct Pki(interop_common::Pki);

impl Pki {
    /// A fresh test CA in a temp dir (`None`: openssl missing, test skipped).
    fn new(tag: &str) -> Option<Pki> {
        interop_common::Pki::new("tls", tag, "IMS_KEEP_TLS").map(Pki)
    }

    fn path(&self, f: &str) -> PathBuf {
        self.0.path(f)
    }

    fn ca(&self) -> Trust {
        Trust::ca_pem_file(self.path("ca.pem")).expect("CA")
    }

    /// A leaf certificate signed by the CA for `name` (CN and DNS SAN) and IP 127.0.0.1, written
    /// to `<stem>.pem` and `<stem>.key`.
    fn leaf(&self, stem: &str, name: &str) -> Identity {
        let (pem, key) = self.0.leaf(stem, name);
        Identity::from_pem_files(pem, key).expect("leaf identity")
    }

    /// A self-signed certificate (no CA), as MSRP endpoints use with SDP fingerprints.
    fn self_signed(&self, stem: &str) -> Identity {
        let (pem, key) = self.0.self_signed(stem);
        Identity::from_pem_files(pem, key).expect("self-signed identity")
    }
}

// ---------------------------------------------------------------------------------------------
// SIP over TLS
// ---------------------------------------------------------------------------------------------

fn tls_only(tls: TlsConfig, user: &str) -> EndpointConfig {
    EndpointConfig {
        udp: false,
        tcp: false,
        user: user.into(),
        tls: Some(tls),
        ..EndpointConfig::default()
    }
}

/// A TLS-only UAS (user `bob`) with the certificate `pki` issues for `uas.test.example`,
/// answering with [`serve_uas`]; what it receives comes out of the returned channel.
async fn start_tls_uas(
    pki: &Pki,
) -> (
    Endpoint,
    tokio::sync::mpsc::UnboundedReceiver<(OwnedMessage, Remote)>,
) {
    let uas_tls = TlsConfig::new(
        Some(pki.leaf("uas", "uas.test.example")),
        pki.ca(),
        ClientAuth::None,
    )
    .unwrap();
    let (uas, incoming) = Endpoint::bind(tls_only(uas_tls, "bob")).await.unwrap();
    let (seen_tx, seen) = tokio::sync::mpsc::unbounded_channel();
    serve_uas(uas.clone(), incoming, seen_tx);
    (uas, seen)
}

/// Answers every INVITE 200 and every other request 200; reports INVITEs on `seen`.
fn serve_uas(
    uas: Endpoint,
    mut incoming: ims::net::sip::Incoming,
    seen: tokio::sync::mpsc::UnboundedSender<(OwnedMessage, Remote)>,
) {
    tokio::spawn(async move {
        while let Some(ev) = incoming.recv().await {
            match ev {
                UaEvent::IncomingInvite { txn, msg, remote } => {
                    let _ = seen.send((msg, remote));
                    let _ = uas
                        .respond(txn, Answer::new(200).body("application/sdp", "v=0\r\n"))
                        .await;
                }
                UaEvent::IncomingRequest { txn, .. } => {
                    let _ = uas.respond(txn, Answer::new(200)).await;
                }
                _ => {}
            }
        }
    });
}

#[tokio::test]
async fn sip_call_over_tls_between_our_endpoints() {
    let Some(pki) = Pki::new("sipcall") else {
        return;
    };
    let uas_id = pki.leaf("uas", "uas.test.example");
    let uac_id = pki.leaf("uac", "uac.test.example");
    let uas_tls = TlsConfig::new(Some(uas_id), pki.ca(), ClientAuth::None).unwrap();
    let uac_tls = TlsConfig::new(Some(uac_id), pki.ca(), ClientAuth::None).unwrap();
    let (uas, incoming) = Endpoint::bind(tls_only(uas_tls, "bob")).await.unwrap();
    let (uac, mut uac_events) = Endpoint::bind(tls_only(uac_tls, "alice")).await.unwrap();
    assert_eq!(uas.transports(), &[Transport::Tls]);
    assert_eq!(uas.tls_addr(), Some(uas.local_addr()));
    assert!(
        uas.contact().starts_with("sips:bob@127.0.0.1:"),
        "{}",
        uas.contact()
    );
    let (seen_tx, mut seen) = tokio::sync::mpsc::unbounded_channel();
    serve_uas(uas.clone(), incoming, seen_tx);

    let target = Remote {
        transport: Transport::Tls,
        addr: uas.local_addr(),
    };
    let call = uac
        .invite(InviteParams {
            request_uri: format!("sips:bob@{}", uas.local_addr()),
            from: "<sips:alice@example.com>".into(),
            to: "<sips:bob@example.com>".into(),
            remote: target,
            headers: vec![],
            body: Some(("application/sdp".into(), b"v=0\r\n".to_vec())),
        })
        .await
        .unwrap();
    let fin = tokio::time::timeout(SECS, call.final_response())
        .await
        .expect("final response in time")
        .expect("200 over TLS");
    assert_eq!(fin.as_message().status(), Some(200));
    let (inv, from) = seen.recv().await.unwrap();
    assert_eq!(from.transport, Transport::Tls, "the INVITE came over TLS");
    let via = inv.as_message().top_via().unwrap().unwrap().to_string();
    assert!(via.starts_with("SIP/2.0/TLS "), "{via}");

    let dialog = loop {
        match tokio::time::timeout(SECS, uac_events.recv()).await.unwrap() {
            Some(UaEvent::DialogConfirmed(d)) => break d,
            Some(_) => {}
            None => panic!("UAC stopped"),
        }
    };
    assert!(uac.dialog(&dialog).await.is_some());
    let bye = uac.bye(&dialog).await.unwrap();
    let r = tokio::time::timeout(SECS, bye.final_response())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(r.as_message().status(), Some(200));

    // connection reuse (RFC 3261 §18.2.2 / RFC 5626 flows): the UAS sends a request to where the
    // INVITE came from — the UAC's ephemeral source port, with no listener behind it — so it
    // can only arrive over the TLS flow the UAC opened
    let responder = uac.clone();
    tokio::spawn(async move {
        while let Some(ev) = uac_events.recv().await {
            if let UaEvent::IncomingRequest { txn, .. } = ev {
                let _ = responder.respond(txn, Answer::new(200)).await;
            }
        }
    });
    assert_ne!(from.addr, uac.local_addr());
    let opt = RequestBuilder::new(Method::Options, "sips:alice@127.0.0.1")
        .header("From", "<sips:bob@example.com>;tag=b1")
        .header("To", "<sips:alice@example.com>")
        .header("Call-ID", "reuse-1@test")
        .header("CSeq", "1 OPTIONS")
        .header("Max-Forwards", 70)
        .build()
        .unwrap();
    let back = uas.request(opt, from).await.unwrap();
    let r = tokio::time::timeout(SECS, back.final_response())
        .await
        .unwrap()
        .expect("OPTIONS over the reused TLS flow");
    assert_eq!(r.as_message().status(), Some(200));
}

#[tokio::test]
async fn sip_tls_refuses_an_untrusted_server() {
    let Some(pki) = Pki::new("sipbad") else {
        return;
    };
    let Some(other) = Pki::new("sipbad-other-ca") else {
        return;
    };
    // the UAC trusts another CA only
    let uac_tls = TlsConfig::new(None, other.ca(), ClientAuth::None).unwrap();
    let (uas, _seen) = start_tls_uas(&pki).await;
    let (uac, _ev) = Endpoint::bind(EndpointConfig {
        tls: Some(uac_tls),
        ..EndpointConfig::default()
    })
    .await
    .unwrap();
    assert_eq!(uac.tls_addr(), None, "no identity: no TLS listener");
    let opt = RequestBuilder::new(Method::Options, "sips:bob@127.0.0.1")
        .header("From", "<sip:alice@example.com>;tag=a1")
        .header("To", "<sip:bob@example.com>")
        .header("Call-ID", "untrusted@test")
        .header("CSeq", "1 OPTIONS")
        .header("Max-Forwards", 70)
        .build()
        .unwrap();
    let t = uac
        .request(
            opt,
            Remote {
                transport: Transport::Tls,
                addr: uas.local_addr(),
            },
        )
        .await
        .unwrap();
    let r = tokio::time::timeout(SECS, t.final_response())
        .await
        .unwrap();
    assert!(matches!(r, Err(NetError::Transport)), "{r:?}");
}

#[tokio::test]
async fn sip_tls_beside_udp_and_tcp() {
    let Some(pki) = Pki::new("sipmixed") else {
        return;
    };
    let tls = TlsConfig::new(
        Some(pki.leaf("uas", "uas.test.example")),
        pki.ca(),
        ClientAuth::None,
    )
    .unwrap();
    let (uas, incoming) = Endpoint::bind(EndpointConfig {
        tls: Some(tls),
        ..EndpointConfig::default()
    })
    .await
    .unwrap();
    assert_eq!(
        uas.transports(),
        &[Transport::Udp, Transport::Tcp, Transport::Tls]
    );
    let tls_addr = uas.tls_addr().expect("TLS listener");
    assert_ne!(tls_addr.port(), uas.local_addr().port());
    assert!(uas.contact().starts_with("sip:"), "{}", uas.contact());
    let (seen_tx, _seen) = tokio::sync::mpsc::unbounded_channel();
    serve_uas(uas.clone(), incoming, seen_tx);
    // a client with TLS (CA trust only) asks over TLS, then over UDP
    let uac_tls = TlsConfig::new(None, pki.ca(), ClientAuth::None).unwrap();
    let (uac, _ev) = Endpoint::bind(EndpointConfig {
        tls: Some(uac_tls),
        ..EndpointConfig::default()
    })
    .await
    .unwrap();
    for (i, remote) in [
        Remote {
            transport: Transport::Tls,
            addr: tls_addr,
        },
        Remote::udp(uas.local_addr()),
    ]
    .into_iter()
    .enumerate()
    {
        let opt = RequestBuilder::new(Method::Options, "sip:bob@127.0.0.1")
            .header("From", "<sip:alice@example.com>;tag=a1")
            .header("To", "<sip:bob@example.com>")
            .header("Call-ID", format!("mixed-{i}@test"))
            .header("CSeq", "1 OPTIONS")
            .header("Max-Forwards", 70)
            .build()
            .unwrap();
        let t = uac.request(opt, remote).await.unwrap();
        let r = tokio::time::timeout(SECS, t.final_response())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(r.as_message().status(), Some(200), "over {remote:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sipsak_options_over_tls_to_our_uas() {
    let Some(pki) = Pki::new("sipsak") else {
        return;
    };
    let Some(sipsak) = common::interop_tool("sipsak", "install sipsak (Debian package `sipsak`)")
    else {
        return;
    };
    let tls = TlsConfig::new(
        Some(pki.leaf("uas", "localhost")),
        pki.ca(),
        ClientAuth::None,
    )
    .unwrap();
    let (uas, incoming) = Endpoint::bind(EndpointConfig {
        udp: false,
        tcp: false,
        tls: Some(tls),
        ..EndpointConfig::default()
    })
    .await
    .unwrap();
    let port = uas.local_addr().port();
    let (seen_tx, _seen) = tokio::sync::mpsc::unbounded_channel();
    serve_uas(uas.clone(), incoming, seen_tx);
    let ca = pki.path("ca.pem");
    let mut runs = Vec::new();
    for _ in 0..3 {
        let out = tokio::process::Command::new(&sipsak)
            .arg("-vv")
            .arg("--transport=tls")
            .arg(format!("--tls-ca-cert={}", ca.display()))
            .arg("-s")
            .arg(format!("sip:bob@127.0.0.1:{port}"))
            .stdin(Stdio::null())
            .output();
        let out = tokio::time::timeout(Duration::from_secs(20), out)
            .await
            .expect("sipsak finished")
            .expect("run sipsak");
        runs.push(out);
    }
    for out in &runs {
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.status.success(),
            "sipsak failed ({}):\n{text}",
            out.status
        );
        assert!(
            text.contains("SIP/2.0 200"),
            "no 200 in sipsak output:\n{text}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// MSRP over TLS
// ---------------------------------------------------------------------------------------------

async fn msrp_pair(
    a_trust: Trust,
    b_trust: Trust,
    a: Identity,
    b: Identity,
) -> std::io::Result<(MsrpConnection, MsrpConnection, u16)> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let b_tls = TlsConfig::new(Some(b), b_trust, ClientAuth::Required).unwrap();
    let a_tls = TlsConfig::new(Some(a), a_trust, ClientAuth::None).unwrap();
    let accept = tokio::spawn(async move {
        let (s, _) = listener.accept().await?;
        MsrpConnection::accept_tls(s, ConnConfig::default(), &b_tls).await
    });
    let alice = MsrpConnection::connect_tls(addr, ConnConfig::default(), &a_tls, None).await;
    let bob = accept.await.unwrap();
    Ok((alice?, bob?, addr.port()))
}

#[tokio::test]
async fn msrp_over_tls_with_pinned_fingerprints() {
    let Some(pki) = Pki::new("msrp") else {
        return;
    };
    let a = pki.self_signed("alice");
    let b = pki.self_signed("bob");
    // what each side read from the other's SDP a=fingerprint
    let fa = Fingerprint::parse(&a.fingerprint().to_string()).unwrap();
    let fb = Fingerprint::parse(&b.fingerprint().to_string()).unwrap();
    let (alice, mut bob, port) =
        msrp_pair(Trust::fingerprints([fb]), Trust::fingerprints([fa]), a, b)
            .await
            .expect("TLS with pinned fingerprints");
    assert_eq!(alice.peer_fingerprint(), Some(fb));
    assert_eq!(bob.peer_fingerprint(), Some(fa));

    let a_uri = UriBuf::parse("msrps://127.0.0.1:40001/alice1234;tcp").unwrap();
    let b_uri = UriBuf::parse(&format!("msrps://127.0.0.1:{port}/bob5678;tcp")).unwrap();
    alice
        .add_session(Session::new(
            MsrpConfig::new(a_uri.clone(), vec![b_uri.clone()]),
            1,
        ))
        .await
        .unwrap();
    bob.add_session(Session::new(MsrpConfig::new(b_uri, vec![a_uri]), 2))
        .await
        .unwrap();
    alice
        .send("alice1234", Outgoing::new("text/plain", "hello over msrps"))
        .await
        .unwrap()
        .expect("session");
    let got = tokio::time::timeout(SECS, async {
        loop {
            match bob.next_event().await {
                Some(ConnEvent::Session {
                    event: SessionEvent::Message { body, .. },
                    ..
                }) => return body,
                Some(ConnEvent::Closed(e)) => panic!("closed: {e:?}"),
                Some(_) => {}
                None => panic!("bob ended"),
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(&got[..], b"hello over msrps");
}

#[tokio::test]
async fn msrp_tls_refuses_a_wrong_fingerprint() {
    let Some(pki) = Pki::new("msrpbad") else {
        return;
    };
    let a = pki.self_signed("alice");
    let b = pki.self_signed("bob");
    let mallory = pki.self_signed("mallory");
    let fa = a.fingerprint();
    // alice expects mallory's fingerprint, bob presents his own: alice refuses the server
    let r = msrp_pair(
        Trust::fingerprints([mallory.fingerprint()]),
        Trust::fingerprints([fa]),
        a,
        b,
    )
    .await;
    assert!(r.is_err(), "handshake must fail");
    // and bob refuses a client whose certificate is not the one in alice's SDP
    let a = pki.self_signed("alice2");
    let b = pki.self_signed("bob2");
    let fb = b.fingerprint();
    let r = msrp_pair(
        Trust::fingerprints([fb]),
        Trust::fingerprints([mallory.fingerprint()]),
        a,
        b,
    )
    .await;
    assert!(r.is_err(), "client certificate must be refused");
}

// ---------------------------------------------------------------------------------------------
// Diameter over TLS
// ---------------------------------------------------------------------------------------------

fn node_cfg(host: &str) -> NodeConfig {
    let mut c = NodeConfig::new(host, "test.example");
    c.applications = vec![
        Application::tgpp_auth(app::CX),
        Application::tgpp_auth(app::RX),
    ];
    c.vendor_id = 32473;
    c.connect_timeout = Duration::from_secs(5);
    c
}

#[tokio::test]
async fn diameter_over_tls_between_our_nodes() {
    let Some(pki) = Pki::new("diam") else {
        return;
    };
    let hss_tls = TlsConfig::new(
        Some(pki.leaf("hss", "hss.test.example")),
        pki.ca(),
        ClientAuth::Required,
    )
    .unwrap();
    let hss = Node::new(node_cfg("hss.test.example"));
    serve_mar(&hss);
    let addr = hss
        .listen_tls("127.0.0.1:0".parse().unwrap(), hss_tls)
        .await
        .unwrap();

    let scscf = Node::new(node_cfg("scscf.test.example"));
    let scscf_tls = TlsConfig::new(
        Some(pki.leaf("scscf", "scscf.test.example")),
        pki.ca(),
        ClientAuth::Required,
    )
    .unwrap();
    scscf.add_peer_tls("hss.test.example", addr, scscf_tls);
    let info = scscf.wait_open("hss.test.example", SECS).await.unwrap();
    assert!(info.common_applications.contains(&app::CX));
    let maa = scscf.send(&mar(&scscf)).await.unwrap();
    assert_eq!(maa.view().outcome(), Some(Outcome::SUCCESS));

    // a client without a certificate is refused (mutual authentication, RFC 6733 §13.1)
    let mut anon_cfg = node_cfg("anon.test.example");
    anon_cfg.reconnect_interval = None;
    let anon = Node::new(anon_cfg);
    anon.add_peer_tls(
        "hss.test.example",
        addr,
        TlsConfig::new(None, pki.ca(), ClientAuth::None).unwrap(),
    );
    assert!(anon
        .wait_open("hss.test.example", Duration::from_secs(2))
        .await
        .is_err());
    // a client whose certificate does not name the Origin-Host of its CER is dropped
    let mut impostor_cfg = node_cfg("impostor.test.example");
    impostor_cfg.reconnect_interval = None;
    let impostor = Node::new(impostor_cfg);
    impostor.add_peer_tls(
        "hss.test.example",
        addr,
        TlsConfig::new(
            Some(pki.leaf("scscf2", "scscf.test.example")),
            pki.ca(),
            ClientAuth::None,
        )
        .unwrap(),
    );
    assert!(impostor
        .wait_open("hss.test.example", Duration::from_secs(2))
        .await
        .is_err());
    assert!(hss.peer_status("impostor.test.example").is_none());
    // and a server whose certificate does not name the peer's DiameterIdentity is refused
    let mut wrong_cfg = node_cfg("wrong.test.example");
    wrong_cfg.reconnect_interval = None;
    let wrong = Node::new(wrong_cfg);
    wrong.add_peer_tls(
        "other.test.example",
        addr,
        TlsConfig::new(
            Some(pki.leaf("wrong", "wrong.test.example")),
            pki.ca(),
            ClientAuth::None,
        )
        .unwrap(),
    );
    assert!(wrong
        .wait_open("other.test.example", Duration::from_secs(2))
        .await
        .is_err());
}

// ---------------------------------------------------------------------------------------------
// freeDiameter over TLS
// ---------------------------------------------------------------------------------------------

const FD_HOST: &str = "fd.test.example";

/// freeDiameterd with the CA's `fd` certificate (made by the caller), its plain `port` and TLS
/// `sec_port`.
fn start_freediameter(fd: &Path, pki: &Pki, port: u16, sec_port: u16, extra: &str) -> FreeDiameter {
    start_tls_freediameter(fd, pki.0.dir(), FD_HOST, (port, sec_port), extra)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn freediameter_over_tls_both_ways() {
    let Some(pki) = Pki::new("fdtls") else {
        return;
    };
    let Some(fd) = common::interop_tool(
        "freeDiameterd",
        "install freeDiameter (Debian package `freediameter`)",
    ) else {
        return;
    };
    let _ = pki.leaf("fd", FD_HOST);
    let ours_id = pki.leaf("ours", "ours.test.example");
    let tls = TlsConfig::new(Some(ours_id), pki.ca(), ClientAuth::Required).unwrap();

    // our TLS listener, which freeDiameter connects to (TLS right after connect: no No_TLS,
    // no TLS_old_method)
    let ours = Node::new(node_cfg("ours.test.example"));
    let our_tls_addr: SocketAddr = ours
        .listen_tls("127.0.0.1:0".parse().unwrap(), tls.clone())
        .await
        .unwrap();
    let (port, sec_port) = (free_port(), free_port());
    let extra = format!(
        r#"ConnectPeer = "ours.test.example" {{ ConnectTo = "127.0.0.1"; Port = {}; }};"#,
        our_tls_addr.port()
    );
    let fdp = start_freediameter(&fd, &pki, port, sec_port, &extra);
    let opened = ours.wait_open(FD_HOST, Duration::from_secs(20)).await;
    assert!(
        opened.is_ok(),
        "freeDiameter did not open over TLS to us: {opened:?}\n{}",
        fdp.log()
    );

    // and our node connects to freeDiameter's SecPort
    let client = Node::new(node_cfg("client.test.example"));
    client.add_peer_tls(FD_HOST, ([127, 0, 0, 1], sec_port).into(), tls);
    let opened = client.wait_open(FD_HOST, Duration::from_secs(20)).await;
    assert!(
        opened.is_ok(),
        "we did not open over TLS to freeDiameter's SecPort: {opened:?}\n{}",
        fdp.log()
    );
    let st = client.peer_status(FD_HOST).unwrap();
    assert!(st.remote.unwrap().origin_host.eq_ignore_ascii_case(FD_HOST));
}

/// RFC 3261 §18.1.1: the Via sent-by names where responses over that transport go. A mixed
/// endpoint (UDP and TCP on one port, TLS on its own) puts its TLS port in the Via of a request
/// sent over TLS, and its UDP/TCP port in the Via of one sent over UDP.
#[tokio::test]
async fn tls_request_via_names_the_tls_port_on_a_mixed_endpoint() {
    let Some(pki) = Pki::new("sipvia") else {
        return;
    };
    let uas_tls = TlsConfig::new(
        Some(pki.leaf("uas", "uas.test.example")),
        pki.ca(),
        ClientAuth::None,
    )
    .unwrap();
    let uac_tls = TlsConfig::new(
        Some(pki.leaf("uac", "uac.test.example")),
        pki.ca(),
        ClientAuth::None,
    )
    .unwrap();
    let (uas, incoming) = Endpoint::bind(EndpointConfig {
        tls: Some(uas_tls),
        ..EndpointConfig::default()
    })
    .await
    .unwrap();
    let (uac, _ev) = Endpoint::bind(EndpointConfig {
        tls: Some(uac_tls),
        ..EndpointConfig::default()
    })
    .await
    .unwrap();
    let uac_tls_port = uac.tls_addr().expect("the UAC listens for TLS").port();
    assert_ne!(uac_tls_port, uac.local_addr().port());
    let (seen_tx, mut seen) = tokio::sync::mpsc::unbounded_channel();
    serve_uas(uas.clone(), incoming, seen_tx);
    for (remote, want_transport, want_port) in [
        (
            Remote {
                transport: Transport::Tls,
                addr: uas.tls_addr().unwrap(),
            },
            "TLS",
            uac_tls_port,
        ),
        (
            Remote::udp(uas.local_addr()),
            "UDP",
            uac.local_addr().port(),
        ),
    ] {
        let call = uac
            .invite(InviteParams {
                request_uri: format!("sip:bob@{}", remote.addr),
                from: "<sip:alice@example.com>".into(),
                to: "<sip:bob@example.com>".into(),
                remote,
                headers: vec![],
                body: None,
            })
            .await
            .unwrap();
        let fin = tokio::time::timeout(SECS, call.final_response())
            .await
            .expect("final response in time")
            .expect("200");
        assert_eq!(fin.as_message().status(), Some(200));
        let (inv, from) = seen.recv().await.unwrap();
        assert_eq!(from.transport, remote.transport);
        let m = inv.as_message();
        let via = m.top_via().unwrap().unwrap();
        assert_eq!(via.transport(), want_transport, "{via}");
        assert_eq!(via.port(), Some(want_port), "Via {via} over {remote:?}");
    }
}

/// RFC 5922 §4.1: a connection opened for a request to a `sips:` URI with a domain checks the
/// server certificate against that domain — the top Route's when there is one, else the
/// Request-URI's — not against the IP address connected to (which this certificate also names).
#[tokio::test]
async fn sip_tls_checks_the_certificate_against_the_uri_domain() {
    let Some(pki) = Pki::new("sipname") else {
        return;
    };
    let (uas, _seen) = start_tls_uas(&pki).await;
    let to = Remote {
        transport: Transport::Tls,
        addr: uas.local_addr(),
    };
    let options = |ruri: &str, route: Option<&str>, n: u32| {
        let mut b = RequestBuilder::new(Method::Options, ruri)
            .header("From", "<sip:alice@example.com>;tag=a1")
            .header("To", "<sip:bob@example.com>")
            .header("Call-ID", format!("name-{n}@test"))
            .header("CSeq", "1 OPTIONS")
            .header("Max-Forwards", 70);
        if let Some(r) = route {
            b = b.header("Route", r);
        }
        b.build().unwrap()
    };
    let client = || async {
        let (uac, _ev) = Endpoint::bind(EndpointConfig {
            tls: Some(TlsConfig::new(None, pki.ca(), ClientAuth::None).unwrap()),
            ..EndpointConfig::default()
        })
        .await
        .unwrap();
        (uac, _ev)
    };
    // another domain than the certificate's: refused
    let (uac, _e1) = client().await;
    let t = uac
        .request(options("sips:bob@other.test.example", None, 1), to)
        .await
        .unwrap();
    let r = tokio::time::timeout(SECS, t.final_response())
        .await
        .unwrap();
    assert!(matches!(r, Err(NetError::Transport)), "{r:?}");
    // the certificate's domain: accepted
    let t = uac
        .request(options("sips:bob@uas.test.example", None, 2), to)
        .await
        .unwrap();
    let r = tokio::time::timeout(SECS, t.final_response())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(r.as_message().status(), Some(200));
    // a fresh client: the top Route names the certificate's domain, the Request-URI another
    let (uac2, _e2) = client().await;
    let t = uac2
        .request(
            options(
                "sips:bob@other.test.example",
                Some("<sips:uas.test.example;lr>"),
                3,
            ),
            to,
        )
        .await
        .unwrap();
    let r = tokio::time::timeout(SECS, t.final_response())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(r.as_message().status(), Some(200));
}

/// Item of issue 6: a proxy with UDP, TCP and TLS on its own port forwards a request over TLS
/// with a Via naming TLS and the TLS listener's port (not the UDP/TCP sent-by), so the UAS
/// answers to the TLS flow and the proxy recognises its own Via — stateful and stateless.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_forwards_over_tls_with_a_tls_via() {
    let Some(pki) = Pki::new("proxyvia") else {
        return;
    };
    use ims::net::sip::{Locations, ProxyEndpoint};
    for stateless in [false, true] {
        let (uas, mut seen) = start_tls_uas(&pki).await;
        let proxy_tls = TlsConfig::new(
            Some(pki.leaf("proxy", "proxy.test.example")),
            pki.ca(),
            ClientAuth::None,
        )
        .unwrap();
        let mut locations = Locations::default();
        locations.add(
            "bob",
            vec![Remote {
                transport: Transport::Tls,
                addr: uas.local_addr(),
            }],
        );
        let cfg = EndpointConfig {
            tls: Some(proxy_tls),
            ..EndpointConfig::default()
        };
        let proxy = if stateless {
            ProxyEndpoint::bind_stateless(cfg, true, locations)
                .await
                .unwrap()
        } else {
            let (p, events) = ProxyEndpoint::bind(cfg, true).await.unwrap();
            let server = p.clone();
            tokio::spawn(async move { server.serve(events, locations).await });
            p
        };
        let tls_port = proxy.tls_addr().expect("TLS on its own port").port();
        assert_ne!(tls_port, proxy.local_addr().port());
        let (uac, _ev) = Endpoint::bind(EndpointConfig::default()).await.unwrap();
        let call = uac
            .invite(InviteParams {
                request_uri: format!("sip:bob@{}", proxy.local_addr()),
                from: "<sip:alice@example.com>".into(),
                to: "<sip:bob@example.com>".into(),
                remote: Remote::udp(proxy.local_addr()),
                headers: vec![],
                body: None,
            })
            .await
            .unwrap();
        let fin = tokio::time::timeout(SECS, call.final_response())
            .await
            .unwrap_or_else(|_| panic!("stateless={stateless}: no final response"))
            .expect("200");
        assert_eq!(
            fin.as_message().status(),
            Some(200),
            "stateless={stateless}"
        );
        let (inv, from) = seen.recv().await.unwrap();
        assert_eq!(from.transport, Transport::Tls);
        let m = inv.as_message();
        let via = m.top_via().unwrap().unwrap();
        assert_eq!(via.transport(), "TLS", "stateless={stateless}: {via}");
        assert_eq!(
            via.port(),
            Some(tls_port),
            "stateless={stateless}: the proxy's Via {via} names its TLS port"
        );
        uac.shutdown();
        uas.shutdown();
        proxy.shutdown();
    }
}

/// RFC 5922 §4.1 with connection reuse: a TLS connection whose server certificate was checked
/// against one domain (or an IP address) is not reused for a request to another domain at the
/// same address — that request gets its own connection and its own check (refused here).
#[tokio::test]
async fn sip_tls_reuse_does_not_skip_the_name_check() {
    let Some(pki) = Pki::new("sipreuse") else {
        return;
    };
    let (uas, _seen) = start_tls_uas(&pki).await;
    let to = Remote {
        transport: Transport::Tls,
        addr: uas.local_addr(),
    };
    let options = |ruri: &str, n: u32| {
        RequestBuilder::new(Method::Options, ruri)
            .header("From", "<sip:alice@example.com>;tag=a1")
            .header("To", "<sip:bob@example.com>")
            .header("Call-ID", format!("reuse-name-{n}@test"))
            .header("CSeq", "1 OPTIONS")
            .header("Max-Forwards", 70)
            .build()
            .unwrap()
    };
    let (uac, _ev) = Endpoint::bind(EndpointConfig {
        tls: Some(TlsConfig::new(None, pki.ca(), ClientAuth::None).unwrap()),
        ..EndpointConfig::default()
    })
    .await
    .unwrap();
    let ask = |ruri: &'static str, n: u32| {
        let uac = uac.clone();
        async move {
            let t = uac.request(options(ruri, n), to).await.unwrap();
            tokio::time::timeout(SECS, t.final_response())
                .await
                .expect("an answer or an error in time")
        }
    };
    // the certificate's domain: a connection checked against it
    let r = ask("sips:bob@uas.test.example", 1).await.unwrap();
    assert_eq!(r.as_message().status(), Some(200));
    // another domain at the same address: not carried by that connection
    let r = ask("sips:bob@other.test.example", 2).await;
    assert!(matches!(r, Err(NetError::Transport)), "{r:?}");
    // the first connection still serves its domain; the IP address (in the certificate) too
    let r = ask("sips:bob@uas.test.example", 3).await.unwrap();
    assert_eq!(r.as_message().status(), Some(200));
    let r = ask("sips:bob@127.0.0.1", 4).await.unwrap();
    assert_eq!(r.as_message().status(), Some(200));
    // a connection checked against the IP address is not reused for another domain either
    let (uac2, _ev2) = Endpoint::bind(EndpointConfig {
        tls: Some(TlsConfig::new(None, pki.ca(), ClientAuth::None).unwrap()),
        ..EndpointConfig::default()
    })
    .await
    .unwrap();
    let t = uac2
        .request(options("sips:bob@127.0.0.1", 5), to)
        .await
        .unwrap();
    let r = tokio::time::timeout(SECS, t.final_response())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(r.as_message().status(), Some(200));
    let t = uac2
        .request(options("sips:bob@other.test.example", 6), to)
        .await
        .unwrap();
    let r = tokio::time::timeout(SECS, t.final_response())
        .await
        .unwrap();
    assert!(matches!(r, Err(NetError::Transport)), "{r:?}");
}
