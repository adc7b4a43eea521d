//! Interop with Kamailio (<https://www.kamailio.org>, Debian package `kamailio`) as the proxy
//! between our endpoints: our UAC → Kamailio → our UAS and back, with
//! `examples/kamailio/proxy.cfg` run stateless (`forward()`) and transaction-stateful (`tm`,
//! `t_relay()`), over UDP and TCP. Each call: INVITE, 180, 200, ACK and BYE, 200, where
//! Kamailio record-routes the INVITE, so ACK and BYE are loose-routed through it.
//!
//! Kamailio listens on 127.0.0.3 (a port in 8000–8999) and is stopped at the end of each test
//! (its process group only). Skipped when `kamailio` is missing unless `IMS_REQUIRE_INTEROP=1`;
//! `IMS_KEEP_KAMAILIO=1` keeps its log directory.

mod common;
#[path = "net_sip_common/kamailio.rs"]
mod kamailio;

use ims::net::sip::{Endpoint, EndpointConfig};
use ims::sip::OwnedMessage;
use ims::txn::ua::{Answer, EndReason, InviteParams, UaEvent};
use ims::txn::{Remote, Transport};
use kamailio::{kamailio, Kamailio};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

const KAMAILIO_IP: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 3));
const LIMIT: Duration = Duration::from_secs(10);
const CALLS: usize = 3;

/// What the UAS saw.
#[derive(Debug)]
enum Seen {
    Invite(OwnedMessage, Remote),
    Ack(OwnedMessage),
    ByeEnded,
}

fn call_through_kamailio(tag: &str, stateful: bool, transport: Transport) {
    let Some(bin) = kamailio() else { return };
    // one Kamailio at a time: the machine is small
    static ONE: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one = ONE.lock().unwrap_or_else(|e| e.into_inner());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let local = |port| SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port);
        let (uas, mut incoming) = Endpoint::bind(EndpointConfig {
            addr: local(0),
            user: "bob".into(),
            ..EndpointConfig::default()
        })
        .await
        .unwrap();
        let t = if transport == Transport::Tcp {
            ";transport=tcp"
        } else {
            ""
        };
        let next_hop = format!("sip:{}{t}", uas.local_addr());
        let kam = tokio::task::block_in_place(|| {
            Kamailio::start(&bin, tag, stateful, KAMAILIO_IP, &next_hop, 2)
        });
        let (seen_tx, mut seen) = tokio::sync::mpsc::unbounded_channel();
        let bob = uas.clone();
        tokio::spawn(async move {
            while let Some(ev) = incoming.recv().await {
                match ev {
                    UaEvent::IncomingInvite { txn, msg, remote } => {
                        let _ = seen_tx.send(Seen::Invite(msg, remote));
                        let _ = bob.respond(txn, Answer::new(180)).await;
                        // a proxy may relay a 1xx sent just before the 2xx after it (Kamailio's
                        // tm drops it then): leave the 180 time to cross first
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        let _ = bob
                            .respond(txn, Answer::new(200).body("application/sdp", "v=0\r\n"))
                            .await;
                    }
                    UaEvent::AckReceived { msg, .. } => {
                        let _ = seen_tx.send(Seen::Ack(msg));
                    }
                    UaEvent::DialogTerminated {
                        reason: EndReason::ByeReceived,
                        ..
                    } => {
                        let _ = seen_tx.send(Seen::ByeEnded);
                    }
                    _ => {}
                }
            }
        });
        let (uac, mut uac_events) = Endpoint::bind(EndpointConfig {
            addr: local(0),
            user: "alice".into(),
            ..EndpointConfig::default()
        })
        .await
        .unwrap();
        let kam_host = KAMAILIO_IP.to_string();
        let mut completed = 0;
        for i in 0..CALLS {
            let mut call = uac
                .invite(InviteParams {
                    request_uri: format!("sip:bob@{}{t}", kam.addr),
                    from: "<sip:alice@example.com>".into(),
                    to: "<sip:bob@example.com>".into(),
                    remote: Remote {
                        transport,
                        addr: kam.addr,
                    },
                    headers: vec![],
                    body: Some(("application/sdp".into(), b"v=0\r\n".to_vec())),
                })
                .await
                .unwrap();
            let mut codes = Vec::new();
            while let Some(r) = tokio::time::timeout(LIMIT, call.next())
                .await
                .unwrap_or_else(|_| panic!("call {i}: no final response\n{}", kam.diagnostics()))
            {
                let r = r.unwrap_or_else(|e| panic!("call {i}: {e}\n{}", kam.diagnostics()));
                codes.push(r.as_message().status().unwrap());
            }
            assert_eq!(codes.last(), Some(&200), "call {i}: {codes:?}");
            assert!(codes.contains(&180), "the 180 crossed Kamailio: {codes:?}");
            // the UAS got the INVITE from Kamailio, with Kamailio's Via on top and its
            // Record-Route
            let Some(Seen::Invite(inv, from)) = seen.recv().await else {
                panic!("no INVITE at the UAS");
            };
            if transport == Transport::Udp {
                // (over TCP Kamailio connects from an unbound source address)
                assert_eq!(from.addr.ip(), KAMAILIO_IP, "the INVITE came from Kamailio");
            }
            assert_eq!(from.transport, transport);
            let m = inv.as_message();
            let vias: Vec<String> = m.via().flatten().map(|v| v.to_string()).collect();
            assert_eq!(vias.len(), 2, "Kamailio's Via and the UAC's: {vias:?}");
            assert!(vias[0].contains(&kam_host), "{vias:?}");
            let rr = m
                .header(ims::sip::HeaderName::RecordRoute)
                .expect("Kamailio record-routes the INVITE");
            assert!(rr.contains(&kam_host) && rr.contains(";lr"), "{rr}");
            // the UAC's dialog routes through Kamailio
            let dialog = loop {
                match tokio::time::timeout(LIMIT, uac_events.recv()).await.unwrap() {
                    Some(UaEvent::DialogConfirmed(d)) => break d,
                    Some(_) => {}
                    None => panic!("UAC stopped"),
                }
            };
            let d = uac.dialog(&dialog).await.expect("dialog");
            assert_eq!(d.route_set.len(), 1, "{:?}", d.route_set);
            assert!(d.route_set[0].contains(&kam_host), "{:?}", d.route_set);
            // the ACK for the 2xx crossed Kamailio (loose routing)
            let next = tokio::time::timeout(LIMIT, seen.recv()).await.unwrap();
            let Some(Seen::Ack(ack)) = next else {
                panic!("no ACK at the UAS: {next:?}\n{}", kam.diagnostics());
            };
            let am = ack.as_message();
            assert!(
                am.top_via().unwrap().unwrap().to_string().contains(&kam_host),
                "the ACK came through Kamailio"
            );
            // BYE through Kamailio, answered 200 by the UAS
            let bye = uac.bye(&dialog).await.unwrap();
            let r = tokio::time::timeout(LIMIT, bye.final_response())
                .await
                .unwrap_or_else(|_| panic!("no BYE answer\n{}", kam.diagnostics()))
                .unwrap();
            assert_eq!(r.as_message().status(), Some(200));
            assert!(matches!(
                tokio::time::timeout(LIMIT, seen.recv()).await.unwrap(),
                Some(Seen::ByeEnded)
            ));
            completed += 1;
        }
        eprintln!(
            "{tag}: our UAC → Kamailio ({}) → our UAS over {transport}: calls completed {completed}/{CALLS}",
            if stateful { "tm" } else { "stateless" }
        );
        uac.shutdown();
        uas.shutdown();
        drop(kam);
    });
}

#[test]
fn through_stateless_kamailio_udp() {
    call_through_kamailio("sl-udp", false, Transport::Udp);
}

#[test]
fn through_stateful_kamailio_udp() {
    call_through_kamailio("tm-udp", true, Transport::Udp);
}

#[test]
fn through_stateful_kamailio_tcp() {
    call_through_kamailio("tm-tcp", true, Transport::Tcp);
}
