//! Sockets: the UDP socket, TCP (and TLS) connections keyed by flow, stream framing with
//! RFC 5626 keep-alives, and the receive-side Via fix-ups of RFC 3261 §18.2.1 / RFC 3581.

use bytes::Bytes;
use ims_sip::{Frame, Framer, OwnedMessage, ParserConfig};
use ims_txn::{Remote, TxnId};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

/// What socket tasks report to the endpoint task.
// messages move by value once; boxing would cost an allocation per message
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub(crate) enum Inbound {
    /// A parsed message from a stream.
    Message(OwnedMessage, Remote),
    /// A TCP or TLS connection was accepted or connected; `writer` sends on it.
    Opened(Remote, mpsc::UnboundedSender<Outbound>),
    /// The connection to this peer closed (the sender identifies which one).
    Closed(Remote, mpsc::UnboundedSender<Outbound>),
    /// These transactions' messages could not be delivered.
    SendFailed(Vec<TxnId>),
}

/// Bytes for a connection's writer task.
#[derive(Debug)]
pub(crate) struct Outbound {
    pub(crate) txn: Option<TxnId>,
    pub(crate) bytes: Bytes,
}

/// TLS settings of a connection (a no-op type without the `tls` feature).
#[cfg(feature = "tls")]
pub(crate) type Tls = crate::tls::TlsConfig;
#[cfg(not(feature = "tls"))]
#[derive(Debug, Clone)]
pub(crate) enum Tls {}

/// How long a TLS handshake may take.
#[cfg(feature = "tls")]
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Applies RFC 3261 §18.2.1 and RFC 3581 §4 to the top Via of a received request: adds
/// `received` when the sent-by host is not the source address, fills in `rport` with the
/// source port when the client asked for it. Returns `None` when nothing changes.
pub(crate) fn fix_via(msg: &OwnedMessage, source: SocketAddr) -> Option<OwnedMessage> {
    let m = msg.as_message();
    let via = m.top_via().ok()??;
    let want_rport = via.rport() == Some(None);
    let host_matches = via.host().ip() == Some(source.ip());
    if host_matches && !want_rport {
        return None;
    }
    let mut value = via.to_string();
    if want_rport {
        value = fill_rport(&value, source.port());
    }
    if !host_matches && via.received().is_none() {
        let ip = match source.ip() {
            IpAddr::V4(a) => a.to_string(),
            IpAddr::V6(a) => format!("[{a}]"),
        };
        value.push_str(";received=");
        value.push_str(&ip);
    }
    let mut e = m.edit();
    e.pop_via();
    e.push_via(value);
    e.to_owned_message().ok()
}

/// `;rport` → `;rport=<port>` in a Via value (parameter names are case-insensitive).
fn fill_rport(via: &str, port: u16) -> String {
    let mut out = String::with_capacity(via.len() + 6);
    for (i, part) in via.split(';').enumerate() {
        if i > 0 {
            out.push(';');
        }
        if i > 0 && part.trim().eq_ignore_ascii_case("rport") {
            out.push_str("rport=");
            out.push_str(&port.to_string());
        } else {
            out.push_str(part);
        }
    }
    out
}

/// RFC 3261 §8.2.2 / §21.4.1: the 400 response to an unparsable request datagram, built from
/// its raw header lines when the ones a response copies are readable (Via, From, To, Call-ID,
/// CSeq; §8.2.6.2), with a `Warning: 399 <agent> "<reason>"` (§20.43) naming the parse error.
/// `None` for a response, an ACK (never answered, §17.1.1.3) or when a needed header is missing.
pub(crate) fn bad_request(d: &[u8], reason: &str, agent: &str) -> Option<Vec<u8>> {
    let end = memfind(d, b"\r\n\r\n").unwrap_or(d.len());
    let head = &d[..end];
    // logical lines: CRLF or LF separated, folded continuation lines joined
    let mut lines: Vec<String> = Vec::new();
    for raw in head.split(|b| *b == b'\n') {
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        let folded = matches!(raw.first(), Some(b' ' | b'\t'));
        let text = std::str::from_utf8(raw).ok();
        match (folded, lines.last_mut(), text) {
            (true, Some(prev), Some(t)) => {
                prev.push(' ');
                prev.push_str(t.trim());
            }
            (_, _, Some(t)) => lines.push(t.to_owned()),
            // a line that is not UTF-8 cannot be copied; it is dropped (the headers a response
            // needs are checked below)
            (_, _, None) => lines.push(String::new()),
        }
    }
    let mut it = lines.iter();
    let start = it.next()?;
    let mut parts = start.split_ascii_whitespace();
    let method = parts.next()?;
    let uri = parts.next()?;
    let version = parts.next()?;
    if method.starts_with("SIP/")
        || method.eq_ignore_ascii_case("ACK")
        || !version.eq_ignore_ascii_case("SIP/2.0")
        || uri.is_empty()
        || !method
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b))
    {
        return None;
    }
    let (mut via, mut from, mut to, mut call_id, mut cseq) = (Vec::new(), None, None, None, None);
    for l in it {
        let Some((name, value)) = l.split_once(':') else {
            continue;
        };
        let value = value.trim();
        match name.trim().to_ascii_lowercase().as_str() {
            "via" | "v" => via.extend(value.split(',').map(str::trim).filter(|v| !v.is_empty())),
            "from" | "f" => from = from.or(Some(value)),
            "to" | "t" => to = to.or(Some(value)),
            "call-id" | "i" => call_id = call_id.or(Some(value)),
            "cseq" => cseq = cseq.or(Some(value)),
            _ => {}
        }
    }
    let (from, to, call_id, cseq) = (from?, to?, call_id?, cseq?);
    let clean = |v: &str| !v.chars().any(|c| c.is_control() && c != '\t');
    if !(clean(from) && clean(to) && clean(call_id) && clean(cseq) && via.iter().all(|v| clean(v)))
    {
        return None;
    }
    let (num, _) = cseq.split_once(char::is_whitespace)?;
    if via.is_empty()
        || !via
            .iter()
            .all(|v| v.to_ascii_uppercase().starts_with("SIP/2.0/"))
        || num.parse::<u32>().is_err()
        || call_id.is_empty()
    {
        return None;
    }
    // §8.2.6.2: a To tag is added when the request had none
    let to = if to.to_ascii_lowercase().contains("tag=") {
        to.to_owned()
    } else {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        std::hash::Hash::hash(call_id, &mut h);
        format!("{to};tag={:x}", std::hash::Hasher::finish(&h))
    };
    let text: String = reason
        .chars()
        .take(200)
        .map(|c| {
            if c == '"' || c == '\\' || c.is_control() {
                ' '
            } else {
                c
            }
        })
        .collect();
    let mut out = String::with_capacity(256 + d.len().min(1024));
    out.push_str("SIP/2.0 400 Bad Request\r\n");
    for v in via {
        out.push_str("Via: ");
        out.push_str(v);
        out.push_str("\r\n");
    }
    for (n, v) in [
        ("From", from),
        ("To", &to),
        ("Call-ID", call_id),
        ("CSeq", cseq),
    ] {
        out.push_str(n);
        out.push_str(": ");
        out.push_str(v);
        out.push_str("\r\n");
    }
    out.push_str(&format!(
        "Warning: 399 {agent} \"{text}\"\r\nContent-Length: 0\r\n\r\n"
    ));
    Some(out.into_bytes())
}

fn memfind(h: &[u8], n: &[u8]) -> Option<usize> {
    h.windows(n.len()).position(|w| w == n)
}

/// True for a datagram that is only CRLFs: an RFC 5626 §3.5.1 style keep-alive, dropped.
pub(crate) fn is_keepalive(d: &[u8]) -> bool {
    !d.is_empty() && d.iter().all(|b| *b == b'\r' || *b == b'\n')
}

/// Runs one connection: a reader task framing messages into `inbound` and a writer task
/// draining the returned sender. `keepalive` sends a CRLFCRLF ping (RFC 5626 §4.4.1) after that
/// much idle time on the writer.
pub(crate) fn spawn_connection(
    stream: TcpStream,
    peer: SocketAddr,
    inbound: mpsc::UnboundedSender<Inbound>,
    cfg: ParserConfig,
    keepalive: Option<Duration>,
) -> mpsc::UnboundedSender<Outbound> {
    let _ = stream.set_nodelay(true);
    let (rd, wr) = stream.into_split();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(writer(wr, rx, inbound.clone(), keepalive));
    tokio::spawn(reader(rd, Remote::tcp(peer), inbound, tx.clone(), cfg));
    tx
}

/// Runs the TLS server handshake on an accepted connection, then the connection (RFC 3261
/// §26.2: TLS flows carry requests both ways like TCP ones). A failed handshake just closes it.
#[cfg(feature = "tls")]
pub(crate) fn spawn_tls_accept(
    stream: TcpStream,
    peer: SocketAddr,
    tls: Tls,
    inbound: mpsc::UnboundedSender<Inbound>,
    cfg: ParserConfig,
    keepalive: Option<Duration>,
) {
    tokio::spawn(async move {
        let _ = stream.set_nodelay(true);
        let Ok(Ok(s)) = tokio::time::timeout(HANDSHAKE_TIMEOUT, tls.accept(stream)).await else {
            return;
        };
        let (rd, wr) = tokio::io::split(s);
        let (tx, rx) = mpsc::unbounded_channel();
        let remote = Remote {
            transport: ims_txn::Transport::Tls,
            addr: peer,
        };
        tokio::spawn(writer(wr, rx, inbound.clone(), keepalive));
        reader(rd, remote, inbound, tx, cfg).await;
    });
}

/// Opens a connection to `remote` (TCP, or TLS when `tls` is given) for messages already queued
/// on `rx` (`tx` is its sender, kept by the endpoint); reports failure of every queued
/// transaction when the connect or the handshake fails.
pub(crate) fn spawn_connect(
    remote: Remote,
    tls: Option<Tls>,
    tx: mpsc::UnboundedSender<Outbound>,
    mut rx: mpsc::UnboundedReceiver<Outbound>,
    inbound: mpsc::UnboundedSender<Inbound>,
    cfg: ParserConfig,
    keepalive: Option<Duration>,
) {
    tokio::spawn(async move {
        if let Ok(stream) = TcpStream::connect(remote.addr).await {
            let _ = stream.set_nodelay(true);
            match tls {
                None => {
                    let (rd, wr) = stream.into_split();
                    tokio::spawn(writer(wr, rx, inbound.clone(), keepalive));
                    tokio::spawn(reader(rd, remote, inbound, tx, cfg));
                    return;
                }
                #[cfg(feature = "tls")]
                Some(tls) => {
                    let hs = tokio::time::timeout(HANDSHAKE_TIMEOUT, tls.connect(stream, None));
                    if let Ok(Ok(s)) = hs.await {
                        let (rd, wr) = tokio::io::split(s);
                        tokio::spawn(writer(wr, rx, inbound.clone(), keepalive));
                        tokio::spawn(reader(rd, remote, inbound, tx, cfg));
                        return;
                    }
                }
                #[cfg(not(feature = "tls"))]
                Some(t) => match t {},
            }
        }
        rx.close();
        let mut failed = Vec::new();
        while let Ok(o) = rx.try_recv() {
            failed.extend(o.txn);
        }
        let _ = inbound.send(Inbound::Closed(remote, tx));
        let _ = inbound.send(Inbound::SendFailed(failed));
    });
}

async fn writer<W: AsyncWrite + Unpin>(
    mut wr: W,
    mut rx: mpsc::UnboundedReceiver<Outbound>,
    inbound: mpsc::UnboundedSender<Inbound>,
    keepalive: Option<Duration>,
) {
    let idle = keepalive.unwrap_or(Duration::from_secs(3600 * 24 * 365));
    loop {
        let next = tokio::time::timeout(idle, rx.recv()).await;
        let o = match next {
            Ok(Some(o)) => o,
            Ok(None) => break,
            Err(_) => {
                // RFC 5626 §4.4.1: CRLFCRLF ping on an idle flow
                if wr.write_all(b"\r\n\r\n").await.is_err() || wr.flush().await.is_err() {
                    break;
                }
                continue;
            }
        };
        // TLS buffers records: flush each message
        if wr.write_all(&o.bytes).await.is_err() || wr.flush().await.is_err() {
            let mut failed: Vec<TxnId> = o.txn.into_iter().collect();
            rx.close();
            while let Ok(o) = rx.try_recv() {
                failed.extend(o.txn);
            }
            let _ = inbound.send(Inbound::SendFailed(failed));
            break;
        }
    }
    let _ = wr.shutdown().await;
}

async fn reader<R: AsyncRead + Unpin>(
    mut rd: R,
    remote: Remote,
    inbound: mpsc::UnboundedSender<Inbound>,
    pong: mpsc::UnboundedSender<Outbound>,
    cfg: ParserConfig,
) {
    let _ = inbound.send(Inbound::Opened(remote, pong.clone()));
    let mut framer = Framer::new(cfg);
    let mut buf = vec![0u8; 16 * 1024];
    'conn: loop {
        let n = match rd.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if framer.push(&buf[..n]).is_err() {
            break;
        }
        loop {
            match framer.next_frame() {
                Ok(Some(Frame::Message(m))) => {
                    if inbound.send(Inbound::Message(m, remote)).is_err() {
                        break 'conn;
                    }
                }
                Ok(Some(Frame::Ping)) => {
                    // RFC 5626 §3.5.1: answer a ping with a single CRLF
                    let _ = pong.send(Outbound {
                        txn: None,
                        bytes: Bytes::from_static(b"\r\n"),
                    });
                }
                Ok(Some(Frame::Pong)) => {}
                Ok(None) => break,
                // RFC 3261 §18.3: a framing error cannot be recovered; close the connection
                Err(_) => break 'conn,
            }
        }
    }
    let _ = inbound.send(Inbound::Closed(remote, pong));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(via: &str) -> OwnedMessage {
        let raw = format!(
            "OPTIONS sip:b@example.com SIP/2.0\r\nVia: {via}\r\nVia: SIP/2.0/UDP second.example.com\r\n\
             To: <sip:b@example.com>\r\nFrom: <sip:a@example.com>;tag=1\r\nCall-ID: c\r\n\
             CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
        );
        OwnedMessage::parse_datagram(Bytes::from(raw)).unwrap()
    }

    #[test]
    fn rfc3581_rport_and_received() {
        // RFC 3581 §4 example: rport filled in, received added because the host differs
        let m = req("SIP/2.0/UDP 10.1.1.1:4540;rport;branch=z9hG4bKkjshdyff");
        let src: SocketAddr = "192.0.2.1:9988".parse().unwrap();
        let f = fix_via(&m, src).unwrap();
        let fm = f.as_message();
        let v = fm.top_via().unwrap().unwrap();
        assert_eq!(v.rport(), Some(Some(9988)));
        assert_eq!(v.received(), Some("192.0.2.1"));
        assert_eq!(v.branch(), Some("z9hG4bKkjshdyff"));
        assert_eq!(fm.via().count(), 2, "the second Via stays");
    }

    #[test]
    fn received_only_when_host_differs() {
        let m = req("SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK1");
        assert!(fix_via(&m, "192.0.2.1:5060".parse().unwrap()).is_none());
        let f = fix_via(&m, "192.0.2.2:5060".parse().unwrap()).unwrap();
        let fm = f.as_message();
        let v = fm.top_via().unwrap().unwrap();
        assert_eq!(v.received(), Some("192.0.2.2"));
        assert_eq!(v.rport(), None);
    }

    #[test]
    fn bad_request_copies_the_headers_and_names_the_error() {
        // a Content-Length larger than the datagram: unparsable, but answerable
        let d = b"INVITE sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK1,\r\n SIP/2.0/UDP 192.0.2.9;branch=z9hG4bK0\r\n\
                  f: <sip:alice@example.com>;tag=a\r\nTo: <sip:bob@example.com>\r\ni: abc@192.0.2.1\r\nCSeq: 7 INVITE\r\n\
                  Content-Length: 900\r\n\r\nv=0\r\n";
        let e = OwnedMessage::parse_datagram(Bytes::from_static(d)).unwrap_err();
        let r = bad_request(d, &e.to_string(), "127.0.0.1:5060").unwrap();
        let m = OwnedMessage::parse_datagram(Bytes::from(r)).unwrap();
        let m = m.as_message();
        assert_eq!(m.status(), Some(400));
        assert_eq!(m.via().count(), 2);
        assert_eq!(m.top_via().unwrap().unwrap().branch(), Some("z9hG4bK1"));
        assert_eq!(m.from().unwrap().unwrap().tag(), Some("a"));
        assert!(
            m.to().unwrap().unwrap().tag().is_some(),
            "a To tag is added"
        );
        assert_eq!(m.cseq().unwrap().unwrap().seq, 7);
        let w = m.header(ims_sip::HeaderName::Warning).unwrap();
        assert!(w.starts_with("399 127.0.0.1:5060 \""), "{w}");
        assert!(w.contains(&e.to_string().replace('"', " ")[..10]), "{w}");
    }

    #[test]
    fn bad_request_not_built_without_the_headers() {
        // no Call-ID
        let d = b"OPTIONS sip:b@example.com SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:a@x>;tag=1\r\nTo: <sip:b@x>\r\nCSeq: 1 OPTIONS\r\n\r\n";
        assert!(bad_request(d, "x", "a").is_none());
        // a response, an ACK, garbage
        assert!(bad_request(b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP h\r\n\r\n", "x", "a").is_none());
        let ack = b"ACK sip:b@x SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:a@x>;tag=1\r\nTo: <sip:b@x>\r\nCall-ID: c\r\nCSeq: 1 ACK\r\n\r\n";
        assert!(bad_request(ack, "x", "a").is_none());
        assert!(bad_request(b"\x00\x01\x02", "x", "a").is_none());
        assert!(bad_request(b"", "x", "a").is_none());
        // a bad CSeq number
        let d = b"OPTIONS sip:b@x SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:a@x>;tag=1\r\nTo: <sip:b@x>\r\nCall-ID: c\r\nCSeq: x OPTIONS\r\n\r\n";
        assert!(bad_request(d, "x", "a").is_none());
    }

    proptest::proptest! {
        /// Any bytes: no panic; when a 400 is built it parses as a 400 response whose Via,
        /// Call-ID and CSeq are the request's.
        #[test]
        fn bad_request_never_panics_and_builds_a_valid_400(
            junk in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300),
            cut in 0usize..400,
        ) {
            let _ = bad_request(&junk, "x", "h:1");
            let base = b"OPTIONS sip:b@x SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:a@x>;tag=1\r\nTo: <sip:b@x>\r\nCall-ID: c1\r\nCSeq: 9 OPTIONS\r\n";
            let mut d = base.to_vec();
            d.extend_from_slice(&junk);
            let d = &d[..cut.min(d.len())];
            if let Some(r) = bad_request(d, "why \"quoted\" \r\n", "h:1") {
                let m = OwnedMessage::parse_datagram(Bytes::from(r)).expect("our 400 parses");
                let m = m.as_message();
                proptest::prop_assert_eq!(m.status(), Some(400));
                proptest::prop_assert!(m.via().count() >= 1);
                proptest::prop_assert!(m.header(ims_sip::HeaderName::CallId).is_some());
                proptest::prop_assert!(m.header(ims_sip::HeaderName::Warning).is_some());
            }
        }
    }

    #[test]
    fn keepalive_datagrams() {
        assert!(is_keepalive(b"\r\n\r\n"));
        assert!(is_keepalive(b"\r\n"));
        assert!(!is_keepalive(b""));
        assert!(!is_keepalive(b"\r\nOPTIONS"));
    }
}
