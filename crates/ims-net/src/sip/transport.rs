//! Sockets: the UDP socket, TCP connections keyed by flow, stream framing with RFC 5626
//! keep-alives, and the receive-side Via fix-ups of RFC 3261 §18.2.1 / RFC 3581.

use bytes::Bytes;
use ims_sip::{Frame, Framer, OwnedMessage, ParserConfig};
use ims_txn::{Remote, Transport, TxnId};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

/// What socket tasks report to the endpoint task.
// messages move by value once; boxing would cost an allocation per message
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub(crate) enum Inbound {
    /// A parsed message from a stream.
    Message(OwnedMessage, Remote),
    /// A TCP connection was accepted or connected; `writer` sends on it.
    Opened(SocketAddr, mpsc::UnboundedSender<Outbound>),
    /// The connection to this peer closed (the sender identifies which one).
    Closed(SocketAddr, mpsc::UnboundedSender<Outbound>),
    /// These transactions' messages could not be delivered.
    SendFailed(Vec<TxnId>),
}

/// Bytes for a connection's writer task.
#[derive(Debug)]
pub(crate) struct Outbound {
    pub(crate) txn: Option<TxnId>,
    pub(crate) bytes: Bytes,
}

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

/// True for a datagram that is only CRLFs: an RFC 5626 §3.5.1 style keep-alive, dropped.
pub(crate) fn is_keepalive(d: &[u8]) -> bool {
    !d.is_empty() && d.iter().all(|b| *b == b'\r' || *b == b'\n')
}

/// Runs one TCP connection: a reader task framing messages into `inbound` and a writer task
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
    tokio::spawn(reader(rd, peer, inbound, tx.clone(), cfg));
    tx
}

/// Opens a connection to `peer` for messages already queued on `rx` (`tx` is its sender, kept
/// by the endpoint); reports failure of every queued transaction when the connect fails.
pub(crate) fn spawn_connect(
    peer: SocketAddr,
    tx: mpsc::UnboundedSender<Outbound>,
    mut rx: mpsc::UnboundedReceiver<Outbound>,
    inbound: mpsc::UnboundedSender<Inbound>,
    cfg: ParserConfig,
    keepalive: Option<Duration>,
) {
    tokio::spawn(async move {
        match TcpStream::connect(peer).await {
            Ok(stream) => {
                let _ = stream.set_nodelay(true);
                let (rd, wr) = stream.into_split();
                tokio::spawn(writer(wr, rx, inbound.clone(), keepalive));
                tokio::spawn(reader(rd, peer, inbound, tx, cfg));
            }
            Err(_) => {
                rx.close();
                let mut failed = Vec::new();
                while let Ok(o) = rx.try_recv() {
                    failed.extend(o.txn);
                }
                let _ = inbound.send(Inbound::Closed(peer, tx));
                let _ = inbound.send(Inbound::SendFailed(failed));
            }
        }
    });
}

async fn writer(
    mut wr: OwnedWriteHalf,
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
                if wr.write_all(b"\r\n\r\n").await.is_err() {
                    break;
                }
                continue;
            }
        };
        if wr.write_all(&o.bytes).await.is_err() {
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

async fn reader(
    mut rd: OwnedReadHalf,
    peer: SocketAddr,
    inbound: mpsc::UnboundedSender<Inbound>,
    pong: mpsc::UnboundedSender<Outbound>,
    cfg: ParserConfig,
) {
    let _ = inbound.send(Inbound::Opened(peer, pong.clone()));
    let mut framer = Framer::new(cfg);
    let mut buf = vec![0u8; 16 * 1024];
    let remote = Remote {
        transport: Transport::Tcp,
        addr: peer,
    };
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
    let _ = inbound.send(Inbound::Closed(peer, pong));
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
    fn keepalive_datagrams() {
        assert!(is_keepalive(b"\r\n\r\n"));
        assert!(is_keepalive(b"\r\n"));
        assert!(!is_keepalive(b""));
        assert!(!is_keepalive(b"\r\nOPTIONS"));
    }
}
