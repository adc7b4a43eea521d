//! Sockets: the UDP socket, TCP (and TLS) connections keyed by flow, stream framing with
//! RFC 5626 keep-alives, and the receive-side Via fix-ups of RFC 3261 §18.2.1 / RFC 3581.

use bytes::{Buf, Bytes, BytesMut};
use ims_sip::{Frame, Framer, HeaderName, OwnedMessage, ParserConfig};
use ims_txn::{Remote, TxnId};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};

/// What socket tasks report to the endpoint task.
// messages move by value once; boxing would cost an allocation per message
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub(crate) enum Inbound {
    /// A parsed message from a stream.
    Message(OwnedMessage, Remote),
    /// A datagram handed over in memory by a co-located endpoint ([`super::LocalLinks`]),
    /// with the sender's UDP address.
    Datagram(Bytes, SocketAddr),
    /// The same, with the message already parsed by the co-located endpoint (its bytes are
    /// the datagram).
    Parsed(OwnedMessage, SocketAddr),
    /// A TCP or TLS connection was accepted or connected.
    Opened(Remote, Conn),
    /// The connection to this peer closed (the sender identifies which one).
    Closed(Remote, mpsc::UnboundedSender<Outbound>),
    /// These transactions' messages could not be delivered.
    SendFailed(Vec<TxnId>),
    /// An unparsable message on a stream.
    Malformed(Malformed),
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
///
/// The change is spliced into the top Via value as written (the rest of the message keeps its
/// bytes) and the result parsed once with `parser`, the configuration the message was read with.
///
/// The new message keeps its top Via (the received one's, grown) when ims-sip can tell it is
/// the parse ([`OwnedMessage::with_top_via_received`]): the transaction layer asks for it next.
pub(crate) fn fix_via(
    msg: &OwnedMessage,
    source: SocketAddr,
    parser: &ParserConfig,
) -> Option<OwnedMessage> {
    let (received, rport) = via_fix_of(msg, source)?;
    msg.with_top_via_received(received, rport, parser)
        .or_else(|| splice_via(msg, received, rport, parser))
}

/// What [`fix_via`] writes into the top Via of `msg` received from `source`: the address for
/// `received` (the sent-by host is not it and no `received` is there), the port for the
/// value-less `rport` parameters (the first `rport` has no value). `None` when neither.
fn via_fix_of(msg: &OwnedMessage, source: SocketAddr) -> Option<(Option<IpAddr>, Option<u16>)> {
    let m = msg.as_message();
    let via = m.top_via().ok()??;
    let (rport, received) = rport_and_received(via.params());
    // `Via::rport() == Some(None)`: present, without a value that reads as a port
    let want_rport = rport.is_some_and(|v| v.and_then(|p| p.parse::<u16>().ok()).is_none());
    let add_received = via.host().ip() != Some(source.ip()) && received.flatten().is_none();
    if !want_rport && !add_received {
        return None;
    }
    Some((
        add_received.then_some(source.ip()),
        want_rport.then_some(source.port()),
    ))
}

/// The first `rport` and `received` parameters of a Via's `params` (`Via::rport`,
/// `Via::received`: `Some(value)` when present), found in one walk over them. Parameters
/// written without blanks or quotes (ours and most UAs') are split at `;` and `=` directly;
/// others go through [`ims_sip::ParamIter`].
fn rport_and_received(params: ims_sip::Params<'_>) -> (Option<Option<&str>>, Option<Option<&str>>) {
    let text = params.as_str();
    let b = text.as_bytes();
    if b.first() != Some(&b';')
        || b.iter()
            .any(|&c| matches!(c, b' ' | b'\t' | b'"' | b'\r' | b'\n'))
    {
        return rport_and_received_general(params);
    }
    let (mut rport, mut received) = (None, None);
    // each `;name[=value]`, found a byte at a time (no `str::split` pattern machinery: this
    // runs for every request received)
    let mut i = 1;
    while i <= b.len() {
        let end = b[i..]
            .iter()
            .position(|&c| c == b';')
            .map_or(b.len(), |p| i + p);
        let part = &b[i..end];
        let (name, value) = match part.iter().position(|&c| c == b'=') {
            Some(e) => (&part[..e], Some(&text[i + e + 1..end])),
            None => (part, None),
        };
        if rport.is_none() && name.eq_ignore_ascii_case(b"rport") {
            rport = Some(value);
        } else if received.is_none() && name.eq_ignore_ascii_case(b"received") {
            received = Some(value);
        }
        if rport.is_some() && received.is_some() {
            break;
        }
        i = end + 1;
    }
    (rport, received)
}

/// [`rport_and_received`] through [`ims_sip::ParamIter`] (any parameters).
fn rport_and_received_general(
    params: ims_sip::Params<'_>,
) -> (Option<Option<&str>>, Option<Option<&str>>) {
    let (mut rport, mut received) = (None, None);
    for p in params.iter() {
        if rport.is_none() && p.name.eq_ignore_ascii_case("rport") {
            rport = Some(p.value);
        } else if received.is_none() && p.name.eq_ignore_ascii_case("received") {
            received = Some(p.value);
        }
        if rport.is_some() && received.is_some() {
            break;
        }
    }
    (rport, received)
}

/// The fix of [`fix_via`] spliced into the top Via value as written, the new message's index
/// shifted ([`OwnedMessage::replace_in_value`]) or parsed.
fn splice_via(
    msg: &OwnedMessage,
    received: Option<IpAddr>,
    rport: Option<u16>,
    parser: &ParserConfig,
) -> Option<OwnedMessage> {
    let m = msg.as_message();
    // the element `top_via` read: the first one of the first non-empty Via line
    let bytes = msg.bytes();
    let (_, elem) = m.list(HeaderName::Via).find(|(_, e)| !e.is_empty())?;
    let start = (elem.as_ptr() as usize).checked_sub(bytes.as_ptr() as usize)?;
    let end = start + elem.len();
    if end > bytes.len() {
        return None;
    }
    let mut with = Vec::with_capacity(elem.len() + 48);
    match rport {
        Some(port) => fill_rport(&mut with, elem, port),
        None => with.extend_from_slice(elem.as_bytes()),
    }
    if let Some(ip) = received {
        with.extend_from_slice(b";received=");
        match ip {
            IpAddr::V4(a) => push_ipv4(&mut with, a),
            IpAddr::V6(a) => with.extend_from_slice(format!("[{a}]").as_bytes()),
        }
    }
    // the index shifted past the new element when that is certain to be the parse, else parsed
    if let Some(m) = msg.replace_in_value(start, end, &with, parser) {
        return Some(m);
    }
    let mut out = Vec::with_capacity(bytes.len() + with.len());
    out.extend_from_slice(&bytes[..start]);
    out.extend_from_slice(&with);
    out.extend_from_slice(&bytes[end..]);
    OwnedMessage::parse_datagram_with(Bytes::from(out), parser).ok()
}

/// [`fix_via`] with the fixed message always parsed from its bytes (the reference the shifted
/// index must agree with).
#[cfg(test)]
fn fix_via_parsed(
    msg: &OwnedMessage,
    source: SocketAddr,
    parser: &ParserConfig,
) -> Option<OwnedMessage> {
    let f = fix_via(msg, source, parser)?;
    OwnedMessage::parse_datagram_with(f.bytes().clone(), parser).ok()
}

/// `;rport` → `;rport=<port>` in a Via value (parameter names are case-insensitive), appended
/// to `out`.
fn fill_rport(out: &mut Vec<u8>, via: &str, port: u16) {
    // the `;`-separated parts, found a byte at a time (no `str::split` pattern machinery):
    // a Via is written on every received request
    let b = via.as_bytes();
    let mut start = 0;
    loop {
        let end = b[start..]
            .iter()
            .position(|&c| c == b';')
            .map_or(b.len(), |i| start + i);
        let part = &via[start..end];
        if start > 0 {
            out.push(b';');
        }
        if start > 0 && part.trim().eq_ignore_ascii_case("rport") {
            out.extend_from_slice(b"rport=");
            push_decimal(out, port.into());
        } else {
            out.extend_from_slice(part.as_bytes());
        }
        if end == b.len() {
            break;
        }
        start = end + 1;
    }
}

/// `n` in decimal, as `Display` writes it, appended to `out` without the formatting machinery.
fn push_decimal(out: &mut Vec<u8>, n: u32) {
    out.extend_from_slice(ims_sip::decimal(&mut [0; 20], n.into()));
}

/// The dotted quad of `a`, as `Ipv4Addr`'s `Display` writes it, appended to `out`.
fn push_ipv4(out: &mut Vec<u8>, a: std::net::Ipv4Addr) {
    for (i, o) in a.octets().into_iter().enumerate() {
        if i > 0 {
            out.push(b'.');
        }
        push_decimal(out, o.into());
    }
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

/// RFC 5922 §4.1: the domain a TLS server's certificate must name when we open a connection for
/// this request — the host of the URI the next hop was located from (the top Route, else the
/// Request-URI) when it is a domain name; `None` for an IP literal (the certificate is then
/// checked against the address or the configured server name) or for a response.
pub(crate) fn tls_server_name(bytes: &[u8]) -> Option<String> {
    let m = ims_sip::parse_datagram(bytes).ok()?;
    if !m.is_request() {
        return None;
    }
    let route = m
        .headers_of(ims_sip::HeaderName::Route)
        .next()
        .and_then(|h| {
            let v = h.value();
            let a = v.find('<')?;
            let b = v[a..].find('>')?;
            Some(v[a + 1..a + b].to_owned())
        });
    let uri = match route {
        Some(r) => r,
        None => m.request_uri_str()?.to_owned(),
    };
    let u = ims_sip::Uri::parse(&uri).ok()?;
    let sip = u.as_sip()?;
    match sip.host() {
        ims_sip::Host::Domain(d) => Some(d.trim_end_matches('.').to_ascii_lowercase()),
        _ => None,
    }
}

/// True for a datagram that is only CRLFs: an RFC 5626 §3.5.1 style keep-alive, dropped.
pub(crate) fn is_keepalive(d: &[u8]) -> bool {
    !d.is_empty() && d.iter().all(|b| *b == b'\r' || *b == b'\n')
}

/// What every connection task shares: where to report, parser settings, keep-alive pings, the
/// warn-agent of the 400s it sends and the clock origin of its activity stamps.
#[derive(Clone)]
pub(crate) struct ConnCtx {
    pub(crate) inbound: mpsc::UnboundedSender<Inbound>,
    pub(crate) parser: ParserConfig,
    pub(crate) keepalive: Option<Duration>,
    pub(crate) agent: Arc<str>,
    pub(crate) epoch: tokio::time::Instant,
}

impl ConnCtx {
    /// Milliseconds since the epoch (tokio's clock, so tests may pause it).
    pub(crate) fn stamp(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }
}

/// The endpoint's handle on one TCP or TLS connection.
#[derive(Debug, Clone)]
pub(crate) struct Conn {
    /// Sends on the connection.
    pub(crate) tx: mpsc::UnboundedSender<Outbound>,
    /// When bytes were last received or a message last sent ([`ConnCtx::stamp`]).
    pub(crate) active: Arc<AtomicU64>,
    /// Set to `true` to close the connection.
    close: Arc<watch::Sender<bool>>,
    /// For a TLS connection we opened: the domain the server certificate was checked against
    /// (`Some(None)`: the address or the configured server name). `None` for TCP and for
    /// connections the peer opened (no server identity of theirs was checked).
    pub(crate) tls_name: Option<Option<String>>,
}

impl Conn {
    pub(crate) fn new(
        tx: mpsc::UnboundedSender<Outbound>,
        ctx: &ConnCtx,
    ) -> (Conn, watch::Receiver<bool>) {
        let (close, rx) = watch::channel(false);
        let c = Conn {
            tx,
            active: Arc::new(AtomicU64::new(ctx.stamp())),
            close: Arc::new(close),
            tls_name: None,
        };
        (c, rx)
    }

    /// May this connection carry a request whose next hop is the domain `name` (RFC 5922 §4.1:
    /// the server certificate must have been checked against that domain)? Connections the
    /// peer opened are reused as flows (RFC 5626, RFC 3261 §18.2.2) whatever the name.
    pub(crate) fn serves(&self, name: &str) -> bool {
        match &self.tls_name {
            None => true,
            Some(checked) => checked.as_deref() == Some(name),
        }
    }

    /// Closes the connection (both tasks stop; queued messages are dropped).
    pub(crate) fn close(&self) {
        let _ = self.close.send(true);
    }
}

/// Runs one connection: a reader task framing messages into `ctx.inbound` and a writer task
/// draining the returned sender.
pub(crate) fn spawn_connection(stream: TcpStream, peer: SocketAddr, ctx: &ConnCtx) -> Conn {
    let _ = stream.set_nodelay(true);
    let (rd, wr) = stream.into_split();
    let (tx, rx) = mpsc::unbounded_channel();
    let (conn, closed) = Conn::new(tx, ctx);
    tokio::spawn(writer(wr, rx, conn.clone(), closed.clone(), ctx.clone()));
    tokio::spawn(reader(
        rd,
        Remote::tcp(peer),
        conn.clone(),
        closed,
        ctx.clone(),
    ));
    conn
}

/// Runs the TLS server handshake on an accepted connection, then the connection (RFC 3261
/// §26.2: TLS flows carry requests both ways like TCP ones). A failed handshake just closes it.
#[cfg(feature = "tls")]
pub(crate) fn spawn_tls_accept(stream: TcpStream, peer: SocketAddr, tls: Tls, ctx: &ConnCtx) {
    let ctx = ctx.clone();
    tokio::spawn(async move {
        let _ = stream.set_nodelay(true);
        let Ok(Ok(s)) = tokio::time::timeout(HANDSHAKE_TIMEOUT, tls.accept(stream)).await else {
            return;
        };
        let (rd, wr) = tokio::io::split(s);
        let (tx, rx) = mpsc::unbounded_channel();
        let (conn, closed) = Conn::new(tx, &ctx);
        let remote = Remote {
            transport: ims_txn::Transport::Tls,
            addr: peer,
        };
        tokio::spawn(writer(wr, rx, conn.clone(), closed.clone(), ctx.clone()));
        reader(rd, remote, conn, closed, ctx).await;
    });
}

/// Opens a connection to `remote` (TCP, or TLS when `tls` is given, with the name the server
/// certificate must carry, else the configured one or the address) for messages already queued
/// on `rx` (`conn` holds its sender, kept by the endpoint); reports failure of every queued
/// transaction when the connect or the handshake fails.
pub(crate) fn spawn_connect(
    remote: Remote,
    tls: Option<(Tls, Option<String>)>,
    conn: Conn,
    closed: watch::Receiver<bool>,
    mut rx: mpsc::UnboundedReceiver<Outbound>,
    ctx: &ConnCtx,
    bind: Option<SocketAddr>,
) {
    let ctx = ctx.clone();
    tokio::spawn(async move {
        if let Ok(stream) = connect_from(remote.addr, bind).await {
            let _ = stream.set_nodelay(true);
            match tls {
                None => {
                    let (rd, wr) = stream.into_split();
                    tokio::spawn(writer(wr, rx, conn.clone(), closed.clone(), ctx.clone()));
                    tokio::spawn(reader(rd, remote, conn, closed, ctx));
                    return;
                }
                #[cfg(feature = "tls")]
                Some((tls, name)) => {
                    let hs = tls.connect(stream, name.as_deref());
                    let hs = tokio::time::timeout(HANDSHAKE_TIMEOUT, hs);
                    if let Ok(Ok(s)) = hs.await {
                        let (rd, wr) = tokio::io::split(s);
                        tokio::spawn(writer(wr, rx, conn.clone(), closed.clone(), ctx.clone()));
                        tokio::spawn(reader(rd, remote, conn, closed, ctx));
                        return;
                    }
                }
                #[cfg(not(feature = "tls"))]
                Some((t, _)) => match t {},
            }
        }
        rx.close();
        let mut failed = Vec::new();
        while let Ok(o) = rx.try_recv() {
            failed.extend(o.txn);
        }
        let _ = ctx.inbound.send(Inbound::Closed(remote, conn.tx));
        let _ = ctx.inbound.send(Inbound::SendFailed(failed));
    });
}

/// A TCP connection to `to`, from the local address `bind` when given (a client port shared by
/// several connections: address and port reuse on).
async fn connect_from(to: SocketAddr, bind: Option<SocketAddr>) -> std::io::Result<TcpStream> {
    let Some(b) = bind else {
        return TcpStream::connect(to).await;
    };
    let s = if b.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    s.set_reuseaddr(true)?;
    #[cfg(unix)]
    s.set_reuseport(true)?;
    s.bind(b)?;
    s.connect(to).await
}

/// Resolves when the connection is told to close (or its handle is gone).
async fn closing(closed: &mut watch::Receiver<bool>) {
    loop {
        if *closed.borrow_and_update() {
            return;
        }
        if closed.changed().await.is_err() {
            // the sender lives in every `Conn` clone; gone means nobody can close us: wait
            std::future::pending::<()>().await;
        }
    }
}

async fn writer<W: AsyncWrite + Unpin>(
    mut wr: W,
    mut rx: mpsc::UnboundedReceiver<Outbound>,
    conn: Conn,
    mut closed: watch::Receiver<bool>,
    ctx: ConnCtx,
) {
    // `conn` is kept for its activity stamp only: its sender must not keep this task alive
    let Conn {
        tx, active, close, ..
    } = conn;
    drop((tx, close));
    let idle = ctx
        .keepalive
        .unwrap_or(Duration::from_secs(3600 * 24 * 365));
    loop {
        let next = tokio::select! {
            n = tokio::time::timeout(idle, rx.recv()) => n,
            () = closing(&mut closed) => break,
        };
        let o = match next {
            Ok(Some(o)) => o,
            Ok(None) => break,
            Err(_) => {
                // RFC 5626 §4.4.1: CRLFCRLF ping on an idle flow (not counted as activity: only
                // the peer's answer is)
                if wr.write_all(b"\r\n\r\n").await.is_err() || wr.flush().await.is_err() {
                    break;
                }
                continue;
            }
        };
        if o.txn.is_some() || o.bytes.len() > 2 {
            active.store(ctx.stamp(), Ordering::Relaxed);
        }
        // TLS buffers records: flush each message
        if wr.write_all(&o.bytes).await.is_err() || wr.flush().await.is_err() {
            let mut failed: Vec<TxnId> = o.txn.into_iter().collect();
            rx.close();
            while let Ok(o) = rx.try_recv() {
                failed.extend(o.txn);
            }
            let _ = ctx.inbound.send(Inbound::SendFailed(failed));
            break;
        }
    }
    let _ = wr.shutdown().await;
}

/// What the reader does with a message it could not parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Malformed {
    /// Answered 400 (a request whose Via/From/To/Call-ID/CSeq were readable).
    Answered,
    /// Skipped without an answer (a response, an ACK, unreadable headers).
    Dropped,
    /// Framing lost (stream only): no usable Content-Length; the connection was closed.
    FramingLost,
}

/// RFC 3261 §18.3: the length of the message at the front of `buf` from its raw header
/// section, for skipping a message the parser refused: `Some(total)` when the header section
/// is complete, the start line looks like one and exactly one Content-Length value (`l`
/// compact form too) is a number no larger than `max`; `None` means framing is lost.
pub(crate) fn raw_message_len(buf: &[u8], max: usize) -> Option<usize> {
    let head_end = memfind(buf, b"\r\n\r\n")? + 4;
    let head = &buf[..head_end];
    let mut lines = head
        .split(|b| *b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l));
    let start = lines.next()?;
    let start_ok = (start.starts_with(b"SIP/2.0 ") && start.len() >= 12)
        || (start.ends_with(b" SIP/2.0") && start.iter().filter(|b| **b == b' ').count() >= 2);
    if !start_ok {
        return None;
    }
    let mut len: Option<usize> = None;
    for l in lines {
        let Some(colon) = l.iter().position(|b| *b == b':') else {
            continue;
        };
        let name = l[..colon].trim_ascii();
        if !(name.eq_ignore_ascii_case(b"content-length") || name.eq_ignore_ascii_case(b"l")) {
            continue;
        }
        let value = std::str::from_utf8(l[colon + 1..].trim_ascii()).ok()?;
        if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let v: usize = value.parse().ok()?;
        if len.is_some_and(|x| x != v) {
            return None;
        }
        len = Some(v);
    }
    let total = head_end.checked_add(len?)?;
    (total <= max).then_some(total)
}

/// Reads a stream: frames messages with [`Framer`], answers keep-alive pings, and resynchronises
/// after an unparsable message whose length is known (RFC 3261 §18.3 / §8.2.2: a 400 with a
/// Warning when it is a request with readable headers); closes when framing is lost, when told
/// to, or at end of stream. Every read stamps the connection active (RFC 5626 keep-alives too).
async fn reader<R: AsyncRead + Unpin>(
    mut rd: R,
    remote: Remote,
    conn: Conn,
    mut closed: watch::Receiver<bool>,
    ctx: ConnCtx,
) {
    let inbound = &ctx.inbound;
    let pong = conn.tx.clone();
    let _ = inbound.send(Inbound::Opened(remote, conn.clone()));
    let max = ctx.parser.limits.max_message_size;
    let mut framer = Framer::new(ctx.parser);
    // the bytes the framer holds (it does not give them back after an error)
    let mut shadow = BytesMut::new();
    // skipping an unparsable message: its total length and the parse error
    let mut skipping: Option<(usize, String)> = None;
    let mut buf = vec![0u8; 16 * 1024];
    'conn: loop {
        let n = tokio::select! {
            r = rd.read(&mut buf) => match r {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            },
            () = closing(&mut closed) => break,
        };
        conn.active.store(ctx.stamp(), Ordering::Relaxed);
        shadow.extend_from_slice(&buf[..n]);
        if skipping.is_none() && framer.push(&buf[..n]).is_err() {
            let _ = inbound.send(Inbound::Malformed(Malformed::FramingLost));
            break;
        }
        loop {
            if let Some((total, reason)) = &skipping {
                if shadow.len() < *total {
                    continue 'conn;
                }
                let bad = shadow.split_to(*total);
                let r = answer_bad(&bad, reason, &ctx.agent, &pong);
                let _ = inbound.send(Inbound::Malformed(r));
                skipping = None;
                framer = Framer::new(ctx.parser);
                if framer.push(&shadow).is_err() {
                    let _ = inbound.send(Inbound::Malformed(Malformed::FramingLost));
                    break 'conn;
                }
            }
            let frame = framer.next_frame();
            let consumed = shadow.len().saturating_sub(framer.buffered());
            match frame {
                Ok(Some(Frame::Message(m))) => {
                    shadow.advance(consumed);
                    if inbound.send(Inbound::Message(m, remote)).is_err() {
                        break 'conn;
                    }
                }
                Ok(Some(Frame::Ping)) => {
                    shadow.advance(consumed);
                    // RFC 5626 §3.5.1: answer a ping with a single CRLF
                    let _ = pong.send(Outbound {
                        txn: None,
                        bytes: Bytes::from_static(b"\r\n"),
                    });
                }
                Ok(Some(Frame::Pong)) => shadow.advance(consumed),
                Ok(None) => {
                    shadow.advance(consumed);
                    break;
                }
                Err(e) if consumed > 0 => {
                    // the framer cut a whole message (its length was known) and the parse failed
                    let bad = shadow.split_to(consumed);
                    let r = answer_bad(&bad, &e.to_string(), &ctx.agent, &pong);
                    let _ = inbound.send(Inbound::Malformed(r));
                    framer = Framer::new(ctx.parser);
                    if framer.push(&shadow).is_err() {
                        let _ = inbound.send(Inbound::Malformed(Malformed::FramingLost));
                        break 'conn;
                    }
                }
                Err(e) => match raw_message_len(&shadow, max) {
                    // the header section was refused but its length is readable: skip it
                    Some(total) => skipping = Some((total, e.to_string())),
                    // RFC 3261 §18.3: framing cannot be recovered; close the connection
                    None => {
                        let _ = inbound.send(Inbound::Malformed(Malformed::FramingLost));
                        break 'conn;
                    }
                },
            }
        }
    }
    drop(pong);
    let _ = inbound.send(Inbound::Closed(remote, conn.tx));
}

/// Answers an unparsable message received on a stream with a 400 on the same connection when
/// [`bad_request`] can build one.
fn answer_bad(
    bad: &[u8],
    reason: &str,
    agent: &str,
    out: &mpsc::UnboundedSender<Outbound>,
) -> Malformed {
    let Some(r) = bad_request(bad, reason, agent) else {
        return Malformed::Dropped;
    };
    let sent = out.send(Outbound {
        txn: None,
        bytes: Bytes::from(r),
    });
    if sent.is_ok() {
        Malformed::Answered
    } else {
        Malformed::Dropped
    }
}

#[cfg(test)]
mod tests {

    proptest::proptest! {
        /// The split of plain Via parameters finds the `rport` and `received` that the walk
        /// with `ParamIter` finds, for every parameter text a Via parse accepts.
        #[test]
        fn rport_and_received_are_found_as_by_the_param_iterator(
            params in proptest::collection::vec(
                proptest::sample::select(vec![
                    ";rport", ";RPORT", ";rport=5060", ";rport=", ";received=192.0.2.1",
                    ";Received=10.0.0.1", ";received", ";branch=z9hG4bK-1", ";x=\"a;b\"",
                    "; rport", ";rport = 7", ";ttl=3", ";a=b=c", ";=", ";;", ";received=[::1]",
                ]),
                0..6,
            ),
        ) {
            let value = format!("SIP/2.0/UDP 192.0.2.9:5060{}", params.concat());
            if let Ok(v) = <ims_sip::headers::Via<'_> as ims_sip::headers::TypedHeader<'_>>::parse(&value) {
                proptest::prop_assert_eq!(
                    super::rport_and_received(v.params()),
                    super::rport_and_received_general(v.params()),
                    "{}", value
                );
            }
        }
    }
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
    fn rport_and_received_are_written_as_fmt_writes_them() {
        for port in [0u16, 1, 9, 10, 99, 100, 5060, 9999, 10000, 65535] {
            let mut out = Vec::new();
            push_decimal(&mut out, port.into());
            assert_eq!(out, port.to_string().as_bytes());
        }
        for a in [
            "0.0.0.0",
            "127.0.0.1",
            "10.20.30.40",
            "192.0.2.255",
            "255.255.255.255",
        ] {
            let a: std::net::Ipv4Addr = a.parse().unwrap();
            let mut out = Vec::new();
            push_ipv4(&mut out, a);
            assert_eq!(out, a.to_string().as_bytes());
        }
        // the reference: `str::split` as fill_rport was written before
        let by_split = |via: &str, port: u16| {
            let mut out = Vec::new();
            for (i, part) in via.split(';').enumerate() {
                if i > 0 {
                    out.push(b';');
                }
                if i > 0 && part.trim().eq_ignore_ascii_case("rport") {
                    out.extend_from_slice(format!("rport={port}").as_bytes());
                } else {
                    out.extend_from_slice(part.as_bytes());
                }
            }
            out
        };
        for via in [
            "SIP/2.0/UDP 10.1.1.1:4540;rport;branch=z9hG4bK1",
            "SIP/2.0/UDP h ; RPORT ;branch=x",
            "SIP/2.0/UDP h;branch=x;rport",
            "SIP/2.0/UDP h;rport=5;rport",
            "SIP/2.0/UDP h;;rport;",
            ";rport",
            "rport",
            "",
            "SIP/2.0/UDP h;rportx;xrport;rport\u{a0}",
        ] {
            for port in [7, 65535] {
                let mut out = Vec::new();
                fill_rport(&mut out, via, port);
                assert_eq!(out, by_split(via, port), "{via:?}");
            }
        }
    }

    #[test]
    fn rfc3581_rport_and_received() {
        // RFC 3581 §4 example: rport filled in, received added because the host differs
        let m = req("SIP/2.0/UDP 10.1.1.1:4540;rport;branch=z9hG4bKkjshdyff");
        let src: SocketAddr = "192.0.2.1:9988".parse().unwrap();
        let f = fix_via(&m, src, &ParserConfig::default()).unwrap();
        let fm = f.as_message();
        let v = fm.top_via().unwrap().unwrap();
        assert_eq!(v.rport(), Some(Some(9988)));
        assert_eq!(v.received(), Some("192.0.2.1"));
        assert_eq!(v.branch(), Some("z9hG4bKkjshdyff"));
        assert_eq!(fm.via().count(), 2, "the second Via stays");
    }

    #[test]
    fn the_fix_is_spliced_into_the_top_element_and_the_rest_keeps_its_bytes() {
        // two Vias on one line (compact name), a body without Content-Length: only the first
        // element changes
        let raw = "MESSAGE sip:b@example.com SIP/2.0\r\nv: SIP/2.0/UDP 10.1.1.1:4540 ; RPORT ;branch=z9hG4bK7 , \
                   SIP/2.0/UDP second.example.com;rport\r\nTo: <sip:b@example.com>\r\n\
                   From: <sip:a@example.com>;tag=1\r\nCall-ID: c\r\nCSeq: 1 MESSAGE\r\n\r\nhello";
        let m = OwnedMessage::parse_datagram(Bytes::from(raw)).unwrap();
        let src: SocketAddr = "192.0.2.1:9988".parse().unwrap();
        let f = fix_via(&m, src, &ParserConfig::default()).unwrap();
        let fm = f.as_message();
        let vias: Vec<_> = fm.via().map(Result::unwrap).collect();
        assert_eq!(vias.len(), 2);
        assert_eq!(vias[0].rport(), Some(Some(9988)));
        assert_eq!(vias[0].received(), Some("192.0.2.1"));
        assert_eq!(vias[0].branch(), Some("z9hG4bK7"));
        assert_eq!(vias[1].rport(), Some(None), "the second Via is not touched");
        assert_eq!(fm.body(), b"hello");
        let text = std::str::from_utf8(f.bytes()).unwrap();
        assert!(text.contains(
            "v: SIP/2.0/UDP 10.1.1.1:4540 ;rport=9988;branch=z9hG4bK7;received=192.0.2.1 , SIP/2.0/UDP second"
        ), "{text}");
        assert!(text.ends_with("\r\nCSeq: 1 MESSAGE\r\n\r\nhello"));
        // a received already there stays alone, rport still filled; IPv6 sources are bracketed
        let m = req("SIP/2.0/UDP h.example.com;received=192.0.2.7;rport");
        let f = fix_via(&m, "192.0.2.1:7".parse().unwrap(), &ParserConfig::default()).unwrap();
        let v = f.as_message().top_via().unwrap().unwrap();
        assert_eq!(
            (v.received(), v.rport()),
            (Some("192.0.2.7"), Some(Some(7)))
        );
        assert!(fix_via(&m, "192.0.2.7:7".parse().unwrap(), &ParserConfig::default()).is_some());
        let m = req("SIP/2.0/UDP h.example.com;branch=z9hG4bK2");
        let f = fix_via(
            &m,
            "[2001:db8::9]:5060".parse().unwrap(),
            &ParserConfig::default(),
        )
        .unwrap();
        let v = f.as_message().top_via().unwrap().unwrap();
        assert_eq!(v.received(), Some("[2001:db8::9]"));
    }

    /// The fixed message's index (shifted, not parsed) is the parse of its bytes, for the Via
    /// shapes above and the usual UE one; the fix of a folded Via line is parsed.
    #[test]
    fn the_fixed_message_is_its_parse() {
        let facts = |m: &OwnedMessage| {
            let mm = m.as_message();
            let heads: Vec<_> = mm
                .headers()
                .map(|h| (h.name(), h.value().to_owned()))
                .collect();
            (
                m.bytes().clone(),
                heads,
                mm.body().to_vec(),
                mm.start_line_str().to_owned(),
            )
        };
        for via in [
            "SIP/2.0/UDP 10.1.1.1:4540;rport;branch=z9hG4bKkjshdyff",
            "SIP/2.0/UDP 127.0.0.1:5090;branch=z9hG4bK-15675-8-2;rport",
            "SIP/2.0/UDP h.example.com;received=192.0.2.7;rport",
            "SIP/2.0/UDP h.example.com;branch=z9hG4bK2",
            "SIP/2.0/UDP h.example.com;rport,SIP/2.0/UDP x;rport",
            "SIP/2.0/UDP h.example.com;rport\r\n ;branch=z9hG4bK3",
        ] {
            let m = req(via);
            for src in ["192.0.2.1:9988", "[2001:db8::9]:5060", "127.0.0.1:5090"] {
                let src: SocketAddr = src.parse().unwrap();
                let cfg = ParserConfig::default();
                let fixed = fix_via(&m, src, &cfg);
                let parsed = fix_via_parsed(&m, src, &cfg);
                assert_eq!(fixed.is_some(), parsed.is_some(), "{via} {src}");
                if let (Some(f), Some(p)) = (fixed, parsed) {
                    assert_eq!(facts(&f), facts(&p), "{via} {src}");
                    assert_eq!(
                        f.as_message().top_via().unwrap().unwrap().to_string(),
                        p.as_message().top_via().unwrap().unwrap().to_string()
                    );
                }
            }
        }
    }

    /// The fix that keeps the top Via ([`OwnedMessage::with_top_via_received`]) writes the
    /// splice's bytes, and the Via it keeps is the one a parse of them gives; it answers for
    /// the Vias UEs and proxies write.
    #[test]
    fn a_fixed_via_kept_without_a_parse_is_the_splices() {
        let cfg = ParserConfig::default();
        let sources = [
            "192.0.2.1:9988",
            "[2001:db8::9]:5060",
            "127.0.0.1:5090",
            "10.0.0.1:1",
        ];
        for (via, common) in [
            (
                "SIP/2.0/UDP 10.1.1.1:4540;rport;branch=z9hG4bKkjshdyff",
                true,
            ),
            (
                "SIP/2.0/UDP 127.0.0.1:5090;branch=z9hG4bK-15675-8-2;rport",
                true,
            ),
            (
                "SIP/2.0/UDP pcscf.ims.test:5060;branch=z9hG4bK-0123456789abcdef-1a",
                true,
            ),
            ("SIP/2.0/UDP h.example.com;received=192.0.2.7;rport", true),
            ("SIP/2.0/UDP h.example.com;branch=z9hG4bK2", true),
            ("SIP/2.0/UDP h.example.com;rport,SIP/2.0/UDP x;rport", true),
            (
                "SIP/2.0/UDP h.example.com;rport\r\n ;branch=z9hG4bK3",
                false,
            ),
            ("SIP/2.0/UDP 10.1.1.1:4540 ; RPORT ;branch=z9hG4bK7", false),
            ("SIP/2.0/UDP h;x=\"a;rport\";rport;branch=z9hG4bK7", false),
            ("SIP/2.0/UDP h;RPORT;rport;branch=z9hG4bK7;ttl=1", true),
            ("SIP/2.0/TCP [2001:db8::1]:5061;rport;branch=z9hG4bK7", true),
        ] {
            for src in sources {
                let src: SocketAddr = src.parse().unwrap();
                let m = req(via);
                let fixed = fix_via(&m, src, &cfg);
                let Some((received, rport)) = via_fix_of(&m, src) else {
                    assert!(fixed.is_none(), "{via} {src}");
                    continue;
                };
                let kept = m.with_top_via_received(received, rport, &cfg);
                assert_eq!(kept.is_some(), common, "{via} {src}: kept");
                let spliced = splice_via(&m, received, rport, &cfg).expect("spliced");
                let f = fixed.expect("fixed");
                assert_eq!(f.bytes(), spliced.bytes(), "{via} {src}");
                let p = OwnedMessage::parse_datagram_with(f.bytes().clone(), &cfg).unwrap();
                let (fm, pm) = (f.as_message(), p.as_message());
                assert_eq!(fm.top_via(), pm.top_via(), "{via} {src}");
                assert_eq!(fm.cseq(), pm.cseq(), "{via} {src}");
                let heads = |m: &ims_sip::Message<'_>| {
                    m.headers()
                        .map(|h| (h.name(), h.value().to_owned()))
                        .collect::<Vec<_>>()
                };
                assert_eq!(heads(&fm), heads(&pm), "{via} {src}");
                assert_eq!(fm.body(), pm.body(), "{via} {src}");
            }
        }
    }

    /// The decision of one walk over the parameters is the one `Via::rport` and
    /// `Via::received` give.
    #[test]
    fn the_fix_decided_in_one_walk_is_the_getters_one() {
        let reference = |m: &OwnedMessage, source: SocketAddr| {
            let v = m.as_message().top_via().ok()??;
            let want_rport = v.rport() == Some(None);
            let add_received = v.host().ip() != Some(source.ip()) && v.received().is_none();
            (want_rport || add_received).then(|| {
                (
                    add_received.then_some(source.ip()),
                    want_rport.then_some(source.port()),
                )
            })
        };
        for via in [
            "SIP/2.0/UDP 10.1.1.1:4540;rport;branch=z9hG4bK1",
            "SIP/2.0/UDP 10.1.1.1:4540;branch=z9hG4bK1;RPORT=7;rport",
            "SIP/2.0/UDP 10.1.1.1:4540;rport=7;rport;branch=z9hG4bK1",
            "SIP/2.0/UDP 10.1.1.1;received=10.1.1.2;rport",
            "SIP/2.0/UDP 10.1.1.1;Received=10.1.1.2;received=10.1.1.3",
            "SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK1",
            "SIP/2.0/UDP h.example.com;branch=z9hG4bK1;ttl=3",
            "SIP/2.0/UDP h.example.com ; rport ; received=1.2.3.4",
            "SIP/2.0/UDP [2001:db8::9];rport",
            "SIP/2.0/UDP h;x=\"rport\";received=[2001:db8::9]",
        ] {
            let m = req(via);
            for src in ["192.0.2.1:9988", "10.1.1.1:4540", "[2001:db8::9]:5060"] {
                let src: SocketAddr = src.parse().unwrap();
                assert_eq!(via_fix_of(&m, src), reference(&m, src), "{via} {src}");
            }
        }
    }

    #[test]
    fn received_only_when_host_differs() {
        let m = req("SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK1");
        assert!(fix_via(
            &m,
            "192.0.2.1:5060".parse().unwrap(),
            &ParserConfig::default()
        )
        .is_none());
        let f = fix_via(
            &m,
            "192.0.2.2:5060".parse().unwrap(),
            &ParserConfig::default(),
        )
        .unwrap();
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
    fn raw_message_len_finds_the_length_or_gives_up() {
        let m = b"MESSAGE sip:b@x SIP/2.0\r\nbad line\r\nl: 5\r\n\r\nhelloNEXT";
        assert_eq!(raw_message_len(m, 1000), Some(m.len() - 4));
        let r = b"SIP/2.0 200 OK\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc";
        assert_eq!(raw_message_len(r, 1000), Some(r.len()));
        // the header section is not complete yet, or no / several / bad Content-Length
        assert_eq!(
            raw_message_len(b"MESSAGE sip:b@x SIP/2.0\r\nl: 5\r\n", 1000),
            None
        );
        for bad in [
            &b"MESSAGE sip:b@x SIP/2.0\r\nVia: x\r\n\r\n"[..],
            b"MESSAGE sip:b@x SIP/2.0\r\nl: 5\r\nContent-Length: 6\r\n\r\n",
            b"MESSAGE sip:b@x SIP/2.0\r\nContent-Length: -1\r\n\r\n",
            b"MESSAGE sip:b@x SIP/2.0\r\nContent-Length: 99999999999999999999999\r\n\r\n",
            // not a start line: no resynchronisation on garbage
            b"\x16\x03\x01 hello\r\nContent-Length: 0\r\n\r\n",
        ] {
            assert_eq!(
                raw_message_len(bad, 1000),
                None,
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        // above the message size limit
        assert_eq!(
            raw_message_len(b"MESSAGE sip:b@x SIP/2.0\r\nl: 2000\r\n\r\n", 1000),
            None
        );
    }

    #[test]
    fn keepalive_datagrams() {
        assert!(is_keepalive(b"\r\n\r\n"));
        assert!(is_keepalive(b"\r\n"));
        assert!(!is_keepalive(b""));
        assert!(!is_keepalive(b"\r\nOPTIONS"));
    }
}
