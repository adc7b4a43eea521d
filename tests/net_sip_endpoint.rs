//! The ims-net SIP endpoint on loopback without external tools: RFC 3581 `received`/`rport` on
//! the wire, the RFC 3261 §18.1.1 switch to TCP for large requests, RFC 5626 CRLF keep-alive on
//! TCP, connection reuse, transport errors, Timer F, CANCEL, and RFC 3263 location through the
//! endpoint's DNS table.

use bytes::Bytes;
use ims::net::sip::resolve::{Naptr, Srv, StaticDns};
use ims::net::sip::{Endpoint, EndpointConfig, Incoming, NetError};
use ims::sip::{HeaderName, Method, OwnedMessage, RequestBuilder};
use ims::txn::ua::{Answer, InviteParams, UaEvent};
use ims::txn::{Remote, TimerConfig, Transport};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

const LIMIT: Duration = Duration::from_secs(10);

async fn endpoint() -> (Endpoint, Incoming) {
    Endpoint::bind(EndpointConfig::default())
        .await
        .expect("bind on 127.0.0.1")
}

/// Answers every out-of-dialog request 200 and returns what it saw.
fn answer_all(
    ep: Endpoint,
    mut inc: Incoming,
) -> tokio::sync::mpsc::UnboundedReceiver<OwnedMessage> {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(ev) = inc.recv().await {
            if let UaEvent::IncomingRequest { txn, msg, .. } = ev {
                let _ = tx.send(msg);
                let _ = ep.respond(txn, Answer::new(200)).await;
            }
        }
    });
    rx
}

fn message(to: &Remote, body_len: usize) -> OwnedMessage {
    RequestBuilder::new(Method::Message, &format!("sip:bob@{}", to.addr))
        .header("Max-Forwards", 70)
        .header("From", "<sip:alice@ims.example>;tag=m1")
        .header("To", "<sip:bob@ims.example>")
        .header("Call-ID", format!("msg-{body_len}@ims.example"))
        .header("CSeq", "1 MESSAGE")
        .body("text/plain", vec![b'x'; body_len])
        .build()
        .expect("valid MESSAGE")
}

#[tokio::test]
async fn rfc3581_received_and_rport_reach_the_response() {
    let (uas, inc) = endpoint().await;
    let _seen = answer_all(uas.clone(), inc);
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let port = sock.local_addr().unwrap().port();
    // the Via claims a host that is not the source address and asks for rport
    let req = "OPTIONS sip:bob@127.0.0.1 SIP/2.0\r\n\
        Via: SIP/2.0/UDP 10.9.9.9:5060;rport;branch=z9hG4bKnat1\r\n\
        Max-Forwards: 70\r\nTo: <sip:bob@127.0.0.1>\r\nFrom: <sip:a@10.9.9.9>;tag=t1\r\n\
        Call-ID: nat1@10.9.9.9\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n";
    sock.send_to(req.as_bytes(), uas.local_addr())
        .await
        .unwrap();
    let mut buf = vec![0u8; 4096];
    let (n, _) = tokio::time::timeout(LIMIT, sock.recv_from(&mut buf))
        .await
        .expect("a response in time")
        .unwrap();
    let resp = OwnedMessage::parse_datagram(Bytes::copy_from_slice(&buf[..n])).unwrap();
    let m = resp.as_message();
    assert_eq!(m.status(), Some(200));
    let via = m.top_via().unwrap().unwrap();
    assert_eq!(via.received(), Some("127.0.0.1"));
    assert_eq!(via.rport(), Some(Some(port)));
    assert_eq!(via.branch(), Some("z9hG4bKnat1"));
}

#[tokio::test]
async fn large_request_switches_to_tcp_and_small_stays_on_udp() {
    let (uas, inc) = endpoint().await;
    let mut seen = answer_all(uas.clone(), inc);
    let (uac, _events) = endpoint().await;
    let to = Remote::udp(uas.local_addr());
    for (len, want) in [(100, "UDP"), (3000, "TCP")] {
        let t = uac.request(message(&to, len), to).await.unwrap();
        let r = tokio::time::timeout(LIMIT, t.final_response())
            .await
            .expect("in time")
            .unwrap();
        assert_eq!(r.as_message().status(), Some(200));
        let got = seen.recv().await.unwrap();
        let via = got
            .as_message()
            .top_via()
            .unwrap()
            .unwrap()
            .transport()
            .to_owned();
        assert_eq!(via, want, "{len}-byte body");
        assert_eq!(got.as_message().body().len(), len);
    }
}

#[tokio::test]
async fn tcp_keepalive_ping_gets_pong_and_flow_carries_requests() {
    let (uas, inc) = endpoint().await;
    let mut seen = answer_all(uas.clone(), inc);
    let mut s = TcpStream::connect(uas.local_addr()).await.unwrap();
    // RFC 5626 §3.5.1: CRLFCRLF ping, CRLF pong
    s.write_all(b"\r\n\r\n").await.unwrap();
    let mut pong = [0u8; 2];
    tokio::time::timeout(LIMIT, s.read_exact(&mut pong))
        .await
        .expect("pong in time")
        .unwrap();
    assert_eq!(&pong, b"\r\n");
    // the same flow carries a request and its response (§18.2.2: back on the connection)
    let req = "OPTIONS sip:bob@127.0.0.1 SIP/2.0\r\n\
        Via: SIP/2.0/TCP client.invalid;branch=z9hG4bKtcp1\r\n\
        Max-Forwards: 70\r\nTo: <sip:bob@127.0.0.1>\r\nFrom: <sip:a@client.invalid>;tag=t2\r\n\
        Call-ID: tcp1@client.invalid\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n";
    s.write_all(req.as_bytes()).await.unwrap();
    let mut framer = ims::sip::Framer::default();
    let mut buf = vec![0u8; 4096];
    let resp = loop {
        let n = tokio::time::timeout(LIMIT, s.read(&mut buf))
            .await
            .expect("response in time")
            .unwrap();
        assert!(n > 0, "connection closed");
        framer.push(&buf[..n]).unwrap();
        if let Some(ims::sip::Frame::Message(m)) = framer.next_frame().unwrap() {
            break m;
        }
    };
    assert_eq!(resp.as_message().status(), Some(200));
    assert_eq!(
        resp.as_message().header(HeaderName::CallId),
        Some("tcp1@client.invalid")
    );
    assert!(seen.recv().await.is_some());
}

#[tokio::test]
async fn refused_tcp_connection_is_a_transport_error() {
    let (uac, _events) = endpoint().await;
    // a port nobody listens on: bind, read the port, close
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let to = Remote::tcp(format!("127.0.0.1:{port}").parse().unwrap());
    let t = uac.request(message(&to, 10), to).await.unwrap();
    let r = tokio::time::timeout(LIMIT, t.final_response())
        .await
        .expect("an answer in time");
    assert!(matches!(r, Err(NetError::Transport)), "{r:?}");
}

#[tokio::test]
async fn unanswered_request_times_out_with_timer_f() {
    let (uac, _events) = Endpoint::bind(EndpointConfig {
        timers: TimerConfig {
            t1: Duration::from_millis(10),
            ..TimerConfig::default()
        },
        ..EndpointConfig::default()
    })
    .await
    .unwrap();
    // a UDP socket that never answers
    let sink = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let to = Remote::udp(sink.local_addr().unwrap());
    let started = tokio::time::Instant::now();
    let t = uac.request(message(&to, 10), to).await.unwrap();
    let r = tokio::time::timeout(LIMIT, t.final_response())
        .await
        .expect("Timer F in time");
    assert!(matches!(r, Err(NetError::Timeout)), "{r:?}");
    // Timer F = 64·T1 = 640 ms
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(600), "{took:?}");
    // the request was retransmitted (Timer E) to the sink
    let mut buf = vec![0u8; 2048];
    let mut copies = 0;
    while let Ok(Ok(_)) =
        tokio::time::timeout(Duration::from_millis(50), sink.recv_from(&mut buf)).await
    {
        copies += 1;
    }
    assert!(copies >= 4, "{copies} copies");
}

#[tokio::test]
async fn cancel_gets_487_and_the_uas_sees_it() {
    let (uas, mut inc) = endpoint().await;
    let (uac, _events) = endpoint().await;
    let (tx, mut cancelled) = tokio::sync::mpsc::unbounded_channel();
    let ep = uas.clone();
    tokio::spawn(async move {
        while let Some(ev) = inc.recv().await {
            match ev {
                UaEvent::IncomingInvite { txn, .. } => {
                    ep.respond(txn, Answer::new(180)).await.unwrap();
                }
                UaEvent::Cancelled { invite } => {
                    let _ = tx.send(invite);
                }
                _ => {}
            }
        }
    });
    for transport in [Transport::Udp, Transport::Tcp] {
        let to = Remote {
            transport,
            addr: uas.local_addr(),
        };
        let mut call = uac
            .invite(InviteParams {
                request_uri: format!("sip:bob@{}", to.addr),
                from: "<sip:alice@ims.example>".into(),
                to: "<sip:bob@ims.example>".into(),
                remote: to,
                headers: vec![],
                body: None,
            })
            .await
            .unwrap();
        let first = tokio::time::timeout(LIMIT, call.next())
            .await
            .expect("180 in time")
            .unwrap()
            .unwrap();
        assert_eq!(first.as_message().status(), Some(180));
        uac.cancel(call.txn).await.unwrap();
        let fin = tokio::time::timeout(LIMIT, call.final_response())
            .await
            .expect("487 in time")
            .unwrap();
        assert_eq!(fin.as_message().status(), Some(487), "{transport}");
        assert!(cancelled.recv().await.is_some());
    }
}

#[tokio::test]
async fn endpoint_locates_through_its_dns_table() {
    let (uas, inc) = endpoint().await;
    let _seen = answer_all(uas.clone(), inc);
    let mut dns = StaticDns::default();
    dns.add_naptr(
        "ims.example",
        Naptr::new(10, 10, "SIP+D2T", "_sip._tcp.ims.example"),
    )
    .add_srv(
        "_sip._tcp.ims.example",
        Srv::new(0, 0, uas.local_addr().port(), "pcscf.ims.example"),
    )
    .add_ip("pcscf.ims.example", uas.local_addr().ip());
    let (uac, _events) = Endpoint::bind_with_dns(EndpointConfig::default(), Arc::new(dns))
        .await
        .unwrap();
    let targets = uac.locate("sip:bob@ims.example").await.unwrap();
    assert_eq!(targets, vec![Remote::tcp(uas.local_addr())]);
    let t = uac
        .request(message(&targets[0], 5), targets[0])
        .await
        .unwrap();
    let r = tokio::time::timeout(LIMIT, t.final_response())
        .await
        .expect("in time")
        .unwrap();
    assert_eq!(r.as_message().status(), Some(200));
}
