//! RFC 3263 server location and ENUM (RFC 6116) over real DNS: `HickoryDns` (feature `dns`)
//! against Debian's `dnsmasq`, started by each test on 127.0.0.1 (a port in 8000–8999) as an
//! authoritative-only server for the NAPTR, SRV and A/AAAA records on its command line.
//! Skipped when dnsmasq is missing unless `IMS_REQUIRE_INTEROP=1`.
#![cfg(feature = "dns")]

#[allow(dead_code)]
mod common;
#[path = "net_sip_common/dnsmasq.rs"]
mod dnsmasq;

use dnsmasq::{dnsmasq, Dnsmasq};
use ims::net::sip::resolve::{locate, Dns, HickoryDns, Naptr, Srv, Target};
use ims::net::sip::{Endpoint, EndpointConfig, NetError};
use ims::nf::enum_dns::{resolve_dns, EnumError, EnumTable, SIP, SIP_OR_TEL};
use ims::sip::{Method, RequestBuilder};
use ims::txn::ua::{Answer, EndReason, InviteParams, UaEvent};
use ims::txn::Transport;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(10);

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn args(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn show(v: &[Target]) -> Vec<String> {
    v.iter()
        .map(|t| format!("{} {}", t.transport, t.addr))
        .collect()
}

fn server(d: &Dnsmasq) -> HickoryDns {
    HickoryDns::with_server(d.addr, Duration::from_secs(2))
}

/// RFC 3263 §4.1 example zone (order: SIPS/TCP 50, SIP/TCP 90, SIP/UDP 100), SRV priorities and
/// weights, an SRV-only domain, an A-only domain.
const ZONE: &[&str] = &[
    "--local=/example.test/",
    "--local=/srvonly.test/",
    "--local=/plain.test/",
    "--naptr-record=example.test,50,50,s,SIPS+D2T,,_sips._tcp.example.test",
    "--naptr-record=example.test,90,50,s,SIP+D2T,,_sip._tcp.example.test",
    "--naptr-record=example.test,100,50,s,SIP+D2U,,_sip._udp.example.test",
    // not an RFC 3263 record (flags u, ENUM service): ignored by locate
    "--naptr-record=example.test,10,10,u,E2U+sip,!^.*$!sip:info@example.test!",
    "--srv-host=_sip._tcp.example.test,a.example.test,5062,0,5",
    "--srv-host=_sip._tcp.example.test,b.example.test,5063,0,10",
    "--srv-host=_sip._tcp.example.test,c.example.test,5064,1,100",
    "--srv-host=_sip._udp.example.test,u.example.test,5060,0,0",
    "--srv-host=_sips._tcp.example.test,s.example.test,5061,0,0",
    "--host-record=a.example.test,192.0.2.1,2001:db8::1",
    "--host-record=b.example.test,192.0.2.2",
    "--host-record=c.example.test,192.0.2.3",
    "--host-record=u.example.test,192.0.2.4",
    "--host-record=s.example.test,192.0.2.5",
    "--host-record=example.test,192.0.2.9",
    "--srv-host=_sip._udp.srvonly.test,x.srvonly.test,5070,1,0",
    "--srv-host=_sip._udp.srvonly.test,y.srvonly.test,5071,0,0",
    "--host-record=x.srvonly.test,192.0.2.6",
    "--host-record=y.srvonly.test,2001:db8::7",
    "--host-record=plain.test,192.0.2.8",
];

#[test]
fn hickory_reads_naptr_srv_and_addresses_from_dnsmasq() {
    let Some(bin) = dnsmasq() else { return };
    let d = Dnsmasq::start(&bin, &args(ZONE));
    rt().block_on(async {
        let dns = server(&d);
        let mut n = dns.naptr("example.test").await;
        n.sort_by_key(|n| n.order);
        assert_eq!(
            n,
            vec![
                Naptr::with_fields(10, 10, "u", "E2U+sip", "!^.*$!sip:info@example.test!", "."),
                Naptr::with_fields(50, 50, "s", "SIPS+D2T", "", "_sips._tcp.example.test"),
                Naptr::with_fields(90, 50, "s", "SIP+D2T", "", "_sip._tcp.example.test"),
                Naptr::with_fields(100, 50, "s", "SIP+D2U", "", "_sip._udp.example.test"),
            ],
            "{}",
            d.diagnostics()
        );
        let mut s = dns.srv("_sip._tcp.example.test").await;
        s.sort_by_key(|s| s.port);
        assert_eq!(
            s,
            vec![
                Srv::new(0, 5, 5062, "a.example.test"),
                Srv::new(0, 10, 5063, "b.example.test"),
                Srv::new(1, 100, 5064, "c.example.test"),
            ]
        );
        let mut ips = dns.ip("a.example.test").await;
        ips.sort();
        assert_eq!(
            ips,
            vec![
                "192.0.2.1".parse::<IpAddr>().unwrap(),
                "2001:db8::1".parse().unwrap()
            ]
        );
        assert_eq!(
            dns.ip("y.srvonly.test").await,
            vec!["2001:db8::7".parse::<IpAddr>().unwrap()]
        );
        // no such name / no record of that type: empty
        assert!(dns.naptr("nothere.example.test").await.is_empty());
        assert!(dns.srv("_sip._udp.plain.test").await.is_empty());
        assert!(dns.ip("nothere.example.test").await.is_empty());
    });
}

#[test]
fn rfc3263_locate_through_dnsmasq() {
    let Some(bin) = dnsmasq() else { return };
    let d = Dnsmasq::start(&bin, &args(ZONE));
    rt().block_on(async {
        let dns = server(&d);
        let both = [Transport::Udp, Transport::Tcp];
        // §4.1: NAPTR order picks TCP (90) over UDP (100); SIPS is not supported here; the u/E2U
        // record is not an S record. Within _sip._tcp: priority 0 before 1, and among priority
        // 0 the RFC 2782 weighted random order (b 10, a 5: b first about 2 times in 3); every
        // address of a target together (a: A and AAAA); then the UDP NAPTR's targets.
        let mut b_first = 0;
        for _ in 0..300 {
            let t = locate(&dns, "sip:alice@example.test", &both).await.unwrap();
            let mut got = show(&t);
            // b then a's two addresses, or a's two then b; A before AAAA: the resolver's order
            let b_at = if got[0] == "TCP 192.0.2.2:5063" { 0 } else { 2 };
            b_first += usize::from(b_at == 0);
            let b = got.remove(b_at);
            got[..2].sort();
            got.insert(b_at, b);
            let a = ["TCP 192.0.2.1:5062", "TCP [2001:db8::1]:5062"];
            let mut want = vec!["TCP 192.0.2.2:5063", a[0], a[1]];
            if b_at == 2 {
                want.rotate_left(1);
            }
            want.extend(["TCP 192.0.2.3:5064", "UDP 192.0.2.4:5060"]);
            assert_eq!(got, want, "{}", d.diagnostics());
        }
        assert!(
            (150..=260).contains(&b_first),
            "b first {b_first} times of 300"
        );
        // a client with UDP only takes the UDP NAPTR
        let t = locate(&dns, "sip:alice@example.test", &[Transport::Udp])
            .await
            .unwrap();
        assert_eq!(show(&t), vec!["UDP 192.0.2.4:5060"]);
        // sips: only the SIPS+D2T record
        let t = locate(
            &dns,
            "sips:alice@example.test",
            &[Transport::Udp, Transport::Tcp, Transport::Tls],
        )
        .await
        .unwrap();
        assert_eq!(show(&t), vec!["TLS 192.0.2.5:5061"]);
        // transport parameter: SRV of that transport, no NAPTR
        let t = locate(&dns, "sip:alice@example.test;transport=udp", &both)
            .await
            .unwrap();
        assert_eq!(show(&t), vec!["UDP 192.0.2.4:5060"]);
        // explicit port: A/AAAA of the host, no NAPTR/SRV
        let t = locate(&dns, "sip:alice@example.test:5070", &both)
            .await
            .unwrap();
        assert_eq!(show(&t), vec!["UDP 192.0.2.9:5070"]);
        // no NAPTR: SRV of the first supported transport that has some, by priority
        let t = locate(&dns, "sip:bob@srvonly.test", &both).await.unwrap();
        assert_eq!(
            show(&t),
            vec!["UDP [2001:db8::7]:5071", "UDP 192.0.2.6:5070"]
        );
        // no NAPTR, no SRV: A record, UDP, 5060; with transport=tcp, TCP 5060
        let t = locate(&dns, "sip:carol@plain.test", &both).await.unwrap();
        assert_eq!(show(&t), vec!["UDP 192.0.2.8:5060"]);
        let t = locate(&dns, "sip:carol@plain.test;transport=tcp", &both)
            .await
            .unwrap();
        assert_eq!(show(&t), vec!["TCP 192.0.2.8:5060"]);
        // nothing at all
        assert!(matches!(
            locate(&dns, "sip:dave@nothere.example.test", &both).await,
            Err(NetError::NotFound(_))
        ));
    });
}

/// Our UAC reaches a local UAS at `sip:bob@call.test` through NAPTR → SRV → A from dnsmasq:
/// the first TCP target (priority 0) refuses connections, so the request fails over to the
/// next (priority 1), the UAS; then a whole call (INVITE, 200, ACK, BYE) over the UDP SRV.
#[test]
fn uac_reaches_a_uas_located_through_dnsmasq_with_failover() {
    let Some(bin) = dnsmasq() else { return };
    let rt = rt();
    rt.block_on(async {
        let local = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0);
        let (uas, mut incoming) = Endpoint::bind(EndpointConfig {
            addr: local,
            user: "bob".into(),
            ..EndpointConfig::default()
        })
        .await
        .unwrap();
        let uas_port = uas.local_addr().port();
        // a port nobody listens on: TCP connections are refused
        let dead = std::net::TcpListener::bind(local).unwrap();
        let dead_port = dead.local_addr().unwrap().port();
        drop(dead);
        let records = vec![
            "--local=/call.test/".to_string(),
            "--naptr-record=call.test,10,10,s,SIP+D2T,,_sip._tcp.call.test".into(),
            "--naptr-record=call.test,20,10,s,SIP+D2U,,_sip._udp.call.test".into(),
            format!("--srv-host=_sip._tcp.call.test,dead.call.test,{dead_port},0,0"),
            format!("--srv-host=_sip._tcp.call.test,uas.call.test,{uas_port},1,0"),
            format!("--srv-host=_sip._udp.call.test,uas.call.test,{uas_port},0,0"),
            "--host-record=dead.call.test,127.0.0.1".into(),
            "--host-record=uas.call.test,127.0.0.1".into(),
        ];
        let d = tokio::task::block_in_place(|| Dnsmasq::start(&bin, &records));
        let (seen_tx, mut seen) = tokio::sync::mpsc::unbounded_channel();
        let bob = uas.clone();
        tokio::spawn(async move {
            while let Some(ev) = incoming.recv().await {
                match ev {
                    UaEvent::IncomingRequest { txn, msg, .. } => {
                        let via = msg
                            .as_message()
                            .header(ims::sip::HeaderName::Via)
                            .unwrap_or_default()
                            .to_string();
                        let _ = seen_tx.send(format!("request, Via {via}"));
                        let _ = bob.respond(txn, Answer::new(200)).await;
                    }
                    UaEvent::IncomingInvite { txn, remote, .. } => {
                        let _ = seen_tx.send(format!("INVITE over {}", remote.transport));
                        let _ = bob
                            .respond(txn, Answer::new(200).body("application/sdp", "v=0\r\n"))
                            .await;
                    }
                    UaEvent::AckReceived { .. } => {
                        let _ = seen_tx.send("ACK".into());
                    }
                    UaEvent::DialogTerminated {
                        reason: EndReason::ByeReceived,
                        ..
                    } => {
                        let _ = seen_tx.send("BYE".into());
                    }
                    _ => {}
                }
            }
        });
        let (uac, mut uac_events) = Endpoint::bind_with_dns(
            EndpointConfig {
                addr: local,
                user: "alice".into(),
                ..EndpointConfig::default()
            },
            Arc::new(server(&d)),
        )
        .await
        .unwrap();
        let targets = uac.locate("sip:bob@call.test").await.unwrap();
        assert_eq!(
            show(&targets),
            vec![
                format!("TCP 127.0.0.1:{dead_port}"),
                format!("TCP 127.0.0.1:{uas_port}"),
                format!("UDP 127.0.0.1:{uas_port}"),
            ],
            "{}",
            d.diagnostics()
        );
        let opt = RequestBuilder::new(Method::Options, "sip:bob@call.test")
            .header("From", "<sip:alice@example.com>;tag=a1")
            .header("To", "<sip:bob@call.test>")
            .header("Call-ID", "dns-failover@test")
            .header("CSeq", "1 OPTIONS")
            .header("Max-Forwards", 70)
            .build()
            .unwrap();
        let (r, via) = tokio::time::timeout(LIMIT, uac.request_located(opt, "sip:bob@call.test"))
            .await
            .expect("answered in time")
            .unwrap_or_else(|e| panic!("{e}\n{}", d.diagnostics()));
        assert_eq!(r.as_message().status(), Some(200));
        assert_eq!(via, targets[1], "failed over from the refusing target");
        let seen_req = seen.recv().await.unwrap();
        assert!(
            seen_req.starts_with("request, Via SIP/2.0/TCP "),
            "{seen_req}"
        );

        // a call over the UDP SRV of the same domain
        let udp = uac.locate("sip:bob@call.test;transport=udp").await.unwrap();
        assert_eq!(show(&udp), vec![format!("UDP 127.0.0.1:{uas_port}")]);
        let call = uac
            .invite(InviteParams {
                request_uri: "sip:bob@call.test".into(),
                from: "<sip:alice@example.com>".into(),
                to: "<sip:bob@call.test>".into(),
                remote: udp[0],
                headers: vec![],
                body: Some(("application/sdp".into(), b"v=0\r\n".to_vec())),
            })
            .await
            .unwrap();
        let r = tokio::time::timeout(LIMIT, call.final_response())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(r.as_message().status(), Some(200));
        assert_eq!(seen.recv().await.unwrap(), "INVITE over UDP");
        let dialog = loop {
            match tokio::time::timeout(LIMIT, uac_events.recv())
                .await
                .unwrap()
            {
                Some(UaEvent::DialogConfirmed(d)) => break d,
                Some(_) => {}
                None => panic!("UAC stopped"),
            }
        };
        assert_eq!(seen.recv().await.unwrap(), "ACK");
        let bye = uac.bye(&dialog).await.unwrap();
        let r = tokio::time::timeout(LIMIT, bye.final_response())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(r.as_message().status(), Some(200));
        assert_eq!(seen.recv().await.unwrap(), "BYE");
        uac.shutdown();
        uas.shutdown();
    });
}

/// ENUM (RFC 6116) NAPTR records served by dnsmasq for +1 555 0100 … under e164.arpa.
#[test]
fn enum_over_dns_through_dnsmasq() {
    let Some(bin) = dnsmasq() else { return };
    // +15550100: two terminal rules, the lower ORDER wins; a tel rule of better order that a
    // SIP-only client skips
    // +15550101: a non-terminal rule (empty flags) to a shared domain holding a regexp rule
    // +15550102: a non-terminal loop onto itself
    // +15550103: only an E2U+mailto record
    let n100 = "0.0.1.0.5.5.5.1.e164.arpa";
    let n101 = "1.0.1.0.5.5.5.1.e164.arpa";
    let n102 = "2.0.1.0.5.5.5.1.e164.arpa";
    let n103 = "3.0.1.0.5.5.5.1.e164.arpa";
    let records = vec![
        "--local=/e164.arpa/".to_string(),
        "--local=/enum.test/".to_string(),
        format!("--naptr-record={n100},100,10,u,E2U+sip,!^.*$!sip:second@ims.test!"),
        format!("--naptr-record={n100},10,10,u,E2U+sip,!^.*$!sip:first@ims.test!"),
        format!("--naptr-record={n100},5,10,u,E2U+tel,!^(.*)$!tel:\\1!"),
        format!("--naptr-record={n101},10,10,,E2U+sip,,shared.enum.test"),
        "--naptr-record=shared.enum.test,10,10,u,E2U+sip,!^\\+1(555)(.*)$!sip:\\2@area\\1.ims.test;user=phone!".into(),
        format!("--naptr-record={n102},10,10,,E2U+sip,,{n102}"),
        format!("--naptr-record={n103},10,10,u,E2U+mailto,!^.*$!mailto:x@ims.test!"),
    ];
    let d = Dnsmasq::start(&bin, &records);
    rt().block_on(async {
        let dns = server(&d);
        let diag = d.diagnostics();
        assert_eq!(
            resolve_dns(&dns, "+1 555 0100", "e164.arpa", SIP)
                .await
                .unwrap(),
            "sip:first@ims.test",
            "{diag}"
        );
        assert_eq!(
            resolve_dns(&dns, "+1 555 0100", "e164.arpa", SIP_OR_TEL)
                .await
                .unwrap(),
            "tel:+15550100"
        );
        assert_eq!(
            resolve_dns(&dns, "+15550101", "e164.arpa", SIP)
                .await
                .unwrap(),
            "sip:0101@area555.ims.test;user=phone",
            "{}",
            d.diagnostics()
        );
        assert_eq!(
            resolve_dns(&dns, "+15550102", "e164.arpa", SIP).await,
            Err(EnumError::Loop)
        );
        assert!(matches!(
            resolve_dns(&dns, "+15550103", "e164.arpa", SIP).await,
            Err(EnumError::NotFound(_))
        ));
        assert!(matches!(
            resolve_dns(&dns, "+15550199", "e164.arpa", SIP).await,
            Err(EnumError::NotFound(_))
        ));
        // the CSCF's table: its own records first, then DNS, then the catch-all rule
        let mut t = EnumTable::new("e164.arpa");
        t.insert_uri("+15550100", "sip:local@ims.test").unwrap();
        t.insert_default(ims::nf::enum_dns::Naptr {
            order: 100,
            preference: 10,
            flags: "u".into(),
            services: "E2U+sip".into(),
            regexp: "!^(.*)$!sip:\\1@default.test!".into(),
            replacement: ".".into(),
        });
        assert_eq!(
            t.lookup("+15550101").await.unwrap(),
            "sip:+15550101@default.test",
            "no DNS configured: the catch-all"
        );
        t.set_dns(Arc::new(server(&d)));
        assert_eq!(t.lookup("+15550100").await.unwrap(), "sip:local@ims.test");
        assert_eq!(
            t.lookup("+15550101").await.unwrap(),
            "sip:0101@area555.ims.test;user=phone"
        );
        assert_eq!(
            t.lookup("+15550199").await.unwrap(),
            "sip:+15550199@default.test"
        );
    });
}
