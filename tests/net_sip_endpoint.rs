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

// ---------------------------------------------------------------------------------------------
// Unparsable datagrams (RFC 3261 §8.2.2, §21.4.1) and the stateless proxy (§16.11)
// ---------------------------------------------------------------------------------------------

async fn recv_text(sock: &UdpSocket) -> Option<String> {
    let mut buf = vec![0u8; 65_535];
    let r = tokio::time::timeout(Duration::from_millis(1500), sock.recv_from(&mut buf)).await;
    let (n, _) = r.ok()?.ok()?;
    Some(String::from_utf8_lossy(&buf[..n]).into_owned())
}

#[tokio::test]
async fn unparsable_request_is_answered_400_with_a_warning() {
    let (uas, inc) = endpoint().await;
    let _seen = answer_all(uas.clone(), inc);
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    // a Content-Length beyond the datagram (RFC 3261 §18.3: a datagram's body cannot be shorter)
    let bad = "MESSAGE sip:bob@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bKbad1;rport\r\n\
               Max-Forwards: 70\r\nFrom: <sip:alice@ims.example>;tag=x1\r\nTo: <sip:bob@ims.example>\r\n\
               Call-ID: bad-1@ims.example\r\nCSeq: 4 MESSAGE\r\nContent-Length: 500\r\n\r\nhello";
    sock.send_to(bad.as_bytes(), uas.local_addr())
        .await
        .unwrap();
    let r = recv_text(&sock).await.expect("a 400 comes back");
    let m = OwnedMessage::parse_datagram(Bytes::from(r.clone())).unwrap();
    let m = m.as_message();
    assert_eq!(m.status(), Some(400), "{r}");
    assert_eq!(
        m.top_via().unwrap().unwrap().branch(),
        Some("z9hG4bKbad1"),
        "{r}"
    );
    assert_eq!(m.header(HeaderName::CallId), Some("bad-1@ims.example"));
    assert_eq!(m.cseq().unwrap().unwrap().seq, 4);
    assert!(m.to().unwrap().unwrap().tag().is_some());
    let w = m.header(HeaderName::Warning).expect("Warning header");
    assert!(
        w.starts_with(&format!("399 {} \"", uas.local_addr())),
        "{w}"
    );
    assert!(w.to_ascii_lowercase().contains("content-length"), "{w}");
    assert_eq!(uas.malformed(), (1, 0));

    // garbage, an unparsable response and an unparsable ACK: dropped and counted
    for d in [
        &b"\x16\x03\x01\x00\x05hello"[..],
        b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bK1\r\nContent-Length: 99\r\n\r\n",
        b"ACK sip:bob@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bK2\r\nFrom: <sip:a@x>;tag=1\r\n\
          To: <sip:b@x>;tag=2\r\nCall-ID: c\r\nCSeq: 1 ACK\r\nContent-Length: 99\r\n\r\n",
    ] {
        sock.send_to(d, uas.local_addr()).await.unwrap();
    }
    assert!(recv_text(&sock).await.is_none(), "nothing answered");
    assert_eq!(uas.malformed(), (1, 3));
}

/// The Via branch our stateless proxy put on a request it forwarded.
fn top_branch(text: &str) -> String {
    let m = OwnedMessage::parse_datagram(Bytes::from(text.to_owned())).unwrap();
    let b = m
        .as_message()
        .top_via()
        .unwrap()
        .unwrap()
        .branch()
        .unwrap()
        .to_owned();
    b
}

#[tokio::test]
async fn stateless_proxy_keeps_the_branch_of_retransmissions_cancel_and_ack() {
    use ims::net::sip::{Locations, ProxyEndpoint};
    // downstream: a plain socket standing for the UAS
    let uas = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let uac = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mut loc = Locations::default();
    loc.add("bob", vec![Remote::udp(uas.local_addr().unwrap())]);
    let proxy = ProxyEndpoint::bind_stateless(
        EndpointConfig {
            addr: "127.0.0.2:0".parse().unwrap(),
            ..EndpointConfig::default()
        },
        true,
        loc,
    )
    .await
    .unwrap();
    let p = proxy.local_addr();
    let uac_port = uac.local_addr().unwrap().port();
    let req = |method: &str, to_tag: &str, branch: &str| {
        format!(
            "{method} sip:bob@{p} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{uac_port};branch={branch};rport\r\n\
             Max-Forwards: 70\r\nFrom: <sip:alice@ims.example>;tag=a1\r\nTo: <sip:bob@ims.example>{to_tag}\r\n\
             Call-ID: sl-1@ims.example\r\nCSeq: 1 {method}\r\nContact: <sip:alice@127.0.0.1:{uac_port}>\r\n\
             Content-Length: 0\r\n\r\n"
        )
    };
    let invite = req("INVITE", "", "z9hG4bKinv1");
    let mut branches = Vec::new();
    for _ in 0..2 {
        uac.send_to(invite.as_bytes(), p).await.unwrap();
        let fwd = recv_text(&uas).await.expect("INVITE forwarded");
        assert!(
            fwd.starts_with(&format!("INVITE sip:bob@{}", uas.local_addr().unwrap())),
            "{fwd}"
        );
        assert!(fwd.contains("Record-Route: <sip:127.0.0.2:"), "{fwd}");
        assert!(fwd.contains("Max-Forwards: 69"), "{fwd}");
        branches.push(top_branch(&fwd));
    }
    assert_eq!(
        branches[0], branches[1],
        "a retransmission keeps its branch"
    );
    assert!(branches[0].starts_with("z9hG4bK"));
    // CANCEL and the ACK of a non-2xx carry the INVITE's branch, so do their forwarded copies
    uac.send_to(req("CANCEL", "", "z9hG4bKinv1").as_bytes(), p)
        .await
        .unwrap();
    let cancel = recv_text(&uas).await.expect("CANCEL forwarded");
    assert!(cancel.starts_with("CANCEL "), "{cancel}");
    assert_eq!(top_branch(&cancel), branches[0]);
    uac.send_to(req("ACK", ";tag=b1", "z9hG4bKinv1").as_bytes(), p)
        .await
        .unwrap();
    let ack = recv_text(&uas).await.expect("ACK forwarded");
    assert_eq!(top_branch(&ack), branches[0]);
    // another request gets another branch
    uac.send_to(req("INVITE", "", "z9hG4bKinv2").as_bytes(), p)
        .await
        .unwrap();
    let other = recv_text(&uas).await.expect("second INVITE forwarded");
    assert_ne!(top_branch(&other), branches[0]);

    // the response goes back by Via: our Via removed, to the UAC's rport
    let fwd = OwnedMessage::parse_datagram(Bytes::from(invite_copy(&uas, &invite, &uac, p).await))
        .unwrap();
    let resp = ims::sip::ResponseBuilder::from_request(&fwd.as_message(), 486).to_vec();
    uas.send_to(&resp, p).await.unwrap();
    let back = recv_text(&uac).await.expect("486 relayed to the UAC");
    assert!(back.starts_with("SIP/2.0 486"), "{back}");
    let bm = OwnedMessage::parse_datagram(Bytes::from(back)).unwrap();
    assert_eq!(bm.as_message().via().count(), 1, "the proxy's Via is gone");
    // unknown user: answered 404 statelessly
    let nobody = invite.replace("sip:bob@", "sip:nobody@");
    uac.send_to(nobody.as_bytes(), p).await.unwrap();
    let r = recv_text(&uac).await.expect("404");
    assert!(r.starts_with("SIP/2.0 404"), "{r}");
    assert_eq!(proxy.contexts().await.unwrap(), 0, "no state kept");
}

/// Sends `invite` through the proxy once more and returns the copy the UAS got.
async fn invite_copy(
    uas: &UdpSocket,
    invite: &str,
    uac: &UdpSocket,
    p: std::net::SocketAddr,
) -> String {
    uac.send_to(invite.as_bytes(), p).await.unwrap();
    recv_text(uas).await.expect("INVITE forwarded")
}

/// Reads SIP messages from a raw TCP client until `n` have arrived; `None` when the server
/// closed the connection (EOF) first.
async fn read_messages(
    s: &mut TcpStream,
    framer: &mut ims::sip::Framer,
    n: usize,
) -> Option<Vec<OwnedMessage>> {
    let mut out = Vec::new();
    let mut buf = vec![0u8; 8192];
    loop {
        while let Some(f) = framer.next_frame().expect("the server's bytes frame") {
            if let ims::sip::Frame::Message(m) = f {
                out.push(m);
            }
        }
        if out.len() >= n {
            return Some(out);
        }
        let r = tokio::time::timeout(LIMIT, s.read(&mut buf))
            .await
            .expect("bytes or EOF in time");
        match r {
            Ok(0) | Err(_) => return None,
            Ok(k) => framer.push(&buf[..k]).unwrap(),
        }
    }
}

fn tcp_options(call_id: &str) -> String {
    format!(
        "OPTIONS sip:bob@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP client.invalid;branch=z9hG4bK{call_id}\r\n\
         Max-Forwards: 70\r\nTo: <sip:bob@127.0.0.1>\r\nFrom: <sip:a@client.invalid>;tag=t9\r\n\
         Call-ID: {call_id}@client.invalid\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
    )
}

/// RFC 3261 §18.3 / §8.2.2 on a stream: an unparsable request whose Content-Length is readable
/// is answered 400 (with a Warning) on the connection and the framing resynchronises — the next
/// request on the same connection is served; an unparsable response is skipped the same way;
/// a message without a usable Content-Length loses framing: the connection is closed and counted.
#[tokio::test]
async fn tcp_unparsable_message_gets_400_and_the_connection_survives() {
    let (uas, inc) = endpoint().await;
    let mut seen = answer_all(uas.clone(), inc);
    let mut s = TcpStream::connect(uas.local_addr()).await.unwrap();
    let mut framer = ims::sip::Framer::client(Default::default());
    // a header line without a colon makes the request unparsable; its body is 5 bytes and a
    // good OPTIONS follows in the same write
    let bad = "MESSAGE sip:bob@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP client.invalid;branch=z9hG4bKtbad1\r\n\
               Max-Forwards: 70\r\nFrom: <sip:alice@ims.example>;tag=x1\r\nTo: <sip:bob@ims.example>\r\n\
               this line is no header\r\n\
               Call-ID: tbad-1@ims.example\r\nCSeq: 4 MESSAGE\r\nContent-Type: text/plain\r\n\
               Content-Length: 5\r\n\r\nhello";
    assert!(
        ims::sip::OwnedMessage::parse(Bytes::from(bad)).is_err(),
        "the test message must be unparsable"
    );
    s.write_all(format!("{bad}{}", tcp_options("tok1")).as_bytes())
        .await
        .unwrap();
    let got = read_messages(&mut s, &mut framer, 2)
        .await
        .expect("400 and 200, connection open");
    let r400 = got[0].as_message();
    assert_eq!(r400.status(), Some(400));
    assert_eq!(r400.header(HeaderName::CallId), Some("tbad-1@ims.example"));
    assert_eq!(
        r400.top_via().unwrap().unwrap().branch(),
        Some("z9hG4bKtbad1")
    );
    let w = r400.header(HeaderName::Warning).expect("Warning header");
    assert!(
        w.starts_with(&format!("399 {} \"", uas.local_addr())),
        "{w}"
    );
    let r200 = got[1].as_message();
    assert_eq!(r200.status(), Some(200));
    assert_eq!(r200.header(HeaderName::CallId), Some("tok1@client.invalid"));
    assert!(seen.recv().await.is_some());

    // the same, cut in three writes (header, then part of the body, then the rest and a good
    // request), then an unparsable response with a Content-Length: skipped, not answered
    let bad2 = bad.replace("tbad-1", "tbad-2").replace("hello", "world");
    let cut = bad2.find("\r\n\r\n").unwrap() + 4;
    s.write_all(&bad2.as_bytes()[..cut - 10]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    s.write_all(&bad2.as_bytes()[cut - 10..cut + 2])
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let bad_resp =
        "SIP/2.0 200 OK\r\nVia: SIP/2.0/TCP 127.0.0.1:9;branch=z9hG4bKx\r\nnot a header\r\n\
                    Content-Length: 3\r\n\r\nabc";
    s.write_all(format!("{}{bad_resp}{}", &bad2[cut + 2..], tcp_options("tok2")).as_bytes())
        .await
        .unwrap();
    let got = read_messages(&mut s, &mut framer, 2)
        .await
        .expect("400 and 200, connection open");
    assert_eq!(got[0].as_message().status(), Some(400));
    assert_eq!(
        got[0].as_message().header(HeaderName::CallId),
        Some("tbad-2@ims.example")
    );
    assert_eq!(got[1].as_message().status(), Some(200));
    assert_eq!(
        got[1].as_message().header(HeaderName::CallId),
        Some("tok2@client.invalid")
    );
    let st = uas.transport_stats();
    assert_eq!(
        (st.malformed_answered, st.malformed_dropped, st.framing_lost),
        (2, 1, 0),
        "{st:?}"
    );

    // no Content-Length: where the next message starts is unknown — the connection closes
    let lost = "MESSAGE sip:bob@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP client.invalid;branch=z9hG4bKtbad3\r\n\
                From: <sip:alice@ims.example>;tag=x1\r\nTo: <sip:bob@ims.example>\r\nno colon here\r\n\
                Call-ID: tbad-3@ims.example\r\nCSeq: 5 MESSAGE\r\n\r\nhello";
    s.write_all(lost.as_bytes()).await.unwrap();
    assert!(
        read_messages(&mut s, &mut framer, 1).await.is_none(),
        "the server closes the connection"
    );
    assert_eq!(uas.transport_stats().framing_lost, 1);

    // garbage that is no start line: closed too
    let mut g = TcpStream::connect(uas.local_addr()).await.unwrap();
    g.write_all(b"\x16\x03\x01\x02\x00 hello\r\n\r\n")
        .await
        .unwrap();
    let mut f2 = ims::sip::Framer::client(Default::default());
    assert!(read_messages(&mut g, &mut f2, 1).await.is_none());
    assert_eq!(uas.transport_stats().framing_lost, 2);
}

/// Idle connection reaping: a TCP connection without traffic and without a live transaction or
/// dialog is closed after `idle_timeout`; one whose client sends RFC 5626 keep-alives stays open
/// while they arrive; one carrying an INVITE the UAS has not answered yet stays open until the
/// transaction ends; one whose call is established stays open until the BYE.
#[tokio::test]
async fn idle_tcp_connections_are_closed_unless_kept_alive_or_in_use() {
    let idle = Duration::from_millis(300);
    let (uas, mut inc) = Endpoint::bind(EndpointConfig {
        idle_timeout: Some(idle),
        // T1 = 20 ms: the answered INVITE's transaction lingers 64·T1 = 1.28 s (RFC 6026
        // Timer L) and keeps its connection that long
        timers: TimerConfig {
            t1: Duration::from_millis(20),
            ..TimerConfig::default()
        },
        ..EndpointConfig::default()
    })
    .await
    .unwrap();
    // answers OPTIONS at once, holds INVITEs until told
    let (inv_tx, mut invites) = tokio::sync::mpsc::unbounded_channel();
    let ep = uas.clone();
    tokio::spawn(async move {
        while let Some(ev) = inc.recv().await {
            match ev {
                UaEvent::IncomingRequest { txn, .. } => {
                    let _ = ep.respond(txn, Answer::new(200)).await;
                }
                UaEvent::IncomingInvite { txn, .. } => {
                    let _ = inv_tx.send(txn);
                }
                _ => {}
            }
        }
    });
    let started = tokio::time::Instant::now();
    // a: one request, then silence
    let mut a = TcpStream::connect(uas.local_addr()).await.unwrap();
    let mut fa = ims::sip::Framer::client(Default::default());
    a.write_all(tcp_options("idle1").as_bytes()).await.unwrap();
    let got = read_messages(&mut a, &mut fa, 1).await.expect("200");
    assert_eq!(got[0].as_message().status(), Some(200));
    // b: keep-alive pings every 100 ms
    let mut b = TcpStream::connect(uas.local_addr()).await.unwrap();
    // c: an INVITE left unanswered
    let mut c = TcpStream::connect(uas.local_addr()).await.unwrap();
    let invite = "INVITE sip:bob@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP client.invalid;branch=z9hG4bKidle3\r\n\
                  Max-Forwards: 70\r\nTo: <sip:bob@127.0.0.1>\r\nFrom: <sip:a@client.invalid>;tag=t3\r\n\
                  Call-ID: idle3@client.invalid\r\nCSeq: 1 INVITE\r\nContact: <sip:a@client.invalid>\r\n\
                  Content-Length: 0\r\n\r\n";
    c.write_all(invite.as_bytes()).await.unwrap();
    let held = tokio::time::timeout(LIMIT, invites.recv())
        .await
        .unwrap()
        .unwrap();
    // d: a call answered 200 and ACKed, then silence: the dialog keeps the connection
    let mut d = TcpStream::connect(uas.local_addr()).await.unwrap();
    let mut fd = ims::sip::Framer::client(Default::default());
    let invite_d = invite.replace("idle3", "idle4").replace("tag=t3", "tag=t4");
    d.write_all(invite_d.as_bytes()).await.unwrap();
    let answered = tokio::time::timeout(LIMIT, invites.recv())
        .await
        .unwrap()
        .unwrap();
    uas.respond(answered, Answer::new(200)).await.unwrap();
    let ok = 'ok: loop {
        for m in read_messages(&mut d, &mut fd, 1).await.expect("d: 100/200") {
            if m.as_message().status() == Some(200) {
                break 'ok m;
            }
        }
    };
    let to_d = ok.as_message().header(HeaderName::To).unwrap().to_owned();
    let in_dialog = |method: &str, branch: &str| {
        format!(
            "{method} sip:bob@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP client.invalid;branch={branch}\r\n\
             Max-Forwards: 70\r\nTo: {to_d}\r\nFrom: <sip:a@client.invalid>;tag=t4\r\n\
             Call-ID: idle4@client.invalid\r\nCSeq: {} {method}\r\nContent-Length: 0\r\n\r\n",
            if method == "ACK" { 1 } else { 2 }
        )
    };
    d.write_all(in_dialog("ACK", "z9hG4bKidle4a").as_bytes())
        .await
        .unwrap();
    let mut pong = [0u8; 2];
    let mut a_closed_at = None;
    for _ in 0..12 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        b.write_all(b"\r\n\r\n").await.unwrap();
        tokio::time::timeout(LIMIT, b.read_exact(&mut pong))
            .await
            .expect("pong in time")
            .expect("b stays open while it sends keep-alives");
        assert_eq!(&pong, b"\r\n");
        if a_closed_at.is_none() {
            let mut one = [0u8; 1];
            if let Ok(r) = tokio::time::timeout(Duration::from_millis(1), a.read(&mut one)).await {
                assert_eq!(r.unwrap(), 0, "only EOF may arrive on a");
                a_closed_at = Some(started.elapsed());
            }
        }
    }
    let a_closed_at = a_closed_at.expect("the idle connection was closed");
    assert!(
        a_closed_at >= idle,
        "closed after {a_closed_at:?}, before the idle time"
    );
    // d: silent for 1.8 s — past its INVITE transaction's Timer L (1.28 s) plus the idle time —
    // but the dialog uses it: a BYE on it is answered
    tokio::time::sleep(Duration::from_millis(600)).await;
    d.write_all(in_dialog("BYE", "z9hG4bKidle4b").as_bytes())
        .await
        .unwrap();
    let got = read_messages(&mut d, &mut fd, 1)
        .await
        .expect("d still open: the BYE is answered");
    assert_eq!(got[0].as_message().status(), Some(200));
    // c carried only the 100 Trying for 1.8 s, but its INVITE transaction is live: still open
    let mut fc = ims::sip::Framer::client(Default::default());
    let got = read_messages(&mut c, &mut fc, 1).await.expect("100 Trying");
    assert_eq!(got[0].as_message().status(), Some(100));
    uas.respond(held, Answer::new(486)).await.unwrap();
    let got = read_messages(&mut c, &mut fc, 1)
        .await
        .expect("c still open: the 486 arrives");
    assert_eq!(got[0].as_message().status(), Some(486));
    let ack = invite
        .replacen("INVITE sip", "ACK sip", 1)
        .replace("CSeq: 1 INVITE", "CSeq: 1 ACK")
        .replace(
            "To: <sip:bob@127.0.0.1>",
            &format!(
                "To: {}",
                got[0].as_message().header(HeaderName::To).unwrap()
            ),
        );
    c.write_all(ack.as_bytes()).await.unwrap();
    // transaction over (reliable transport: no Timer I wait): c and b (silent now) close
    assert!(
        read_messages(&mut c, &mut fc, 1).await.is_none(),
        "c closed"
    );
    let mut fb = ims::sip::Framer::client(Default::default());
    assert!(
        read_messages(&mut b, &mut fb, 1).await.is_none(),
        "b closed"
    );
    // d: dialog over, BYE transaction over (reliable: no Timer J wait), INVITE transaction over
    // (Timer L): closed too
    assert!(
        read_messages(&mut d, &mut fd, 1).await.is_none(),
        "d closed"
    );
    assert_eq!(uas.transport_stats().idle_closed, 4);
}

/// The proxy's posted commands (no reply channel): a posted forward reaches the UAS and its
/// answer the UAC; a posted command that fails comes back as `ProxyEvent::Failed` with the error
/// the awaited call returns.
#[tokio::test]
async fn posted_proxy_commands_forward_and_report_failures() {
    use ims::net::sip::ProxyEndpoint;
    use ims::txn::proxy::{ForkMode, ProxyEvent, Target};
    let uas = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let uac = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let (proxy, mut events) = ProxyEndpoint::bind(EndpointConfig::default(), false)
        .await
        .unwrap();
    let p = proxy.local_addr();
    let uac_port = uac.local_addr().unwrap().port();
    let req = format!(
        "MESSAGE sip:bob@{p} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{uac_port};branch=z9hG4bKpost1\r\n\
         Max-Forwards: 70\r\nFrom: <sip:alice@ims.example>;tag=a1\r\nTo: <sip:bob@ims.example>\r\n\
         Call-ID: post-1@ims.example\r\nCSeq: 1 MESSAGE\r\nContent-Length: 0\r\n\r\n"
    );
    uac.send_to(req.as_bytes(), p).await.unwrap();
    let server = loop {
        match next_proxy_event(&mut events).await {
            Some(ProxyEvent::Request { server, .. }) => break server,
            Some(_) => {}
            None => panic!("the proxy stopped"),
        }
    };
    let target = Target {
        uri: None,
        remote: Remote::udp(uas.local_addr().unwrap()),
    };
    proxy
        .post_forward(server, vec![target], ForkMode::Parallel)
        .expect("queued");
    let fwd = recv_text(&uas).await.expect("MESSAGE forwarded");
    assert!(fwd.starts_with("MESSAGE sip:bob@"), "{fwd}");
    assert!(fwd.contains("Max-Forwards: 69"), "{fwd}");
    let fm = OwnedMessage::parse_datagram(Bytes::from(fwd)).unwrap();
    let ok = ims::sip::ResponseBuilder::from_request(&fm.as_message(), 200)
        .header("Content-Length", 0)
        .to_vec();
    uas.send_to(&ok, p).await.unwrap();
    let back = recv_text(&uac).await.expect("200 relayed to the UAC");
    assert!(back.starts_with("SIP/2.0 200"), "{back}");
    // answered already: the awaited call says why, the posted one says it as an event
    let awaited = proxy.reply(server, 500).await.unwrap_err();
    proxy.post_reply(server, 500).expect("queued");
    let (failed_server, error) = loop {
        match next_proxy_event(&mut events).await {
            Some(ProxyEvent::Failed { server, error }) => break (server, error),
            Some(_) => {}
            None => panic!("the proxy stopped"),
        }
    };
    assert_eq!(failed_server, Some(server));
    assert_eq!(awaited.to_string(), NetError::from(error).to_string());
    proxy.shutdown();
}

async fn next_proxy_event(
    events: &mut ims::net::sip::ProxyEvents,
) -> Option<ims::txn::proxy::ProxyEvent> {
    tokio::time::timeout(LIMIT, events.recv())
        .await
        .expect("an event in time")
}
