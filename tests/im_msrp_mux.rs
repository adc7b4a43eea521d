//! The session anchor's MSRP switch (`ims_nf::im_session`) with parties built directly on
//! `ims::net` (SIP endpoint + `MsrpConnection`, which carries several sessions per connection):
//!
//! - two chat sessions between the same A and B multiplexed over ONE connection on each leg
//!   (A reuses its connection to the anchor, the anchor reuses its connection to B: RFC 4975
//!   §5.4 connection model), messages and REPORTs of each session reaching only their own peer,
//!   intact and in order; a frame naming an unknown session, or a session bound to another
//!   connection, gets 481;
//! - the a=setup roles (RFC 4145, RFC 6135): an A offering `passive` (the anchor connects to
//!   A) and a B answering `active` to the anchor's `actpass` (B connects to the anchor);
//! - CPIM with IMDN (RFC 3862, RFC 5438) end to end through the anchor: the recipient's
//!   `message/imdn+xml` delivery notification comes back over the same session.
//! - per-session queues at the anchor: a session whose callee has not connected yet does not
//!   hold the other sessions of the connection its frames arrive on;
//! - a multi-megabyte chunk is re-chunked as it streams in (RFC 4975 §5.1, `+` and Byte-Range):
//!   another session's message passes on the shared connection meanwhile, and the big message
//!   arrives byte for byte;
//! - a receiver that stops reading does not hold the sender's shared connection: once its
//!   queue at the anchor is full, further frames for it are answered 413 (RFC 4975 §7.3) and the
//!   other session on the same connection keeps flowing.

// `AnchorRelay { .., ..default() }`: the default fills the TLS trust when the `tls` feature
// adds that field
#![allow(clippy::needless_update)]

use bytes::Bytes;
use ims::msrp::cpim::{Cpim, CpimBuilder};
use ims::msrp::headers::FailureReport;
use ims::msrp::imdn::{self, Disposition, Imdn, Notification};
use ims::msrp::session::{Config as MsrpConfig, Outgoing, Session, SessionEvent};
use ims::msrp::{Event, FrameBuilder, Framer, Limits, UriBuf};
use ims::net::msrp::{ConnConfig, ConnEvent, MsrpConnection};
use ims::net::sip::{Endpoint, EndpointConfig, Incoming};
use ims::nf::im_session::{start, ImSessionConfig, ImSessionHandle, Stats};
use ims::sdp::{MediaType, Session as Sdp};
use ims::txn::dialog::DialogId;
use ims::txn::ua::{Answer, EndReason, InviteParams, UaEvent};
use ims::txn::Remote;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

const WAIT: Duration = Duration::from_secs(60);

fn lo0() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

fn rand_id() -> String {
    use std::sync::atomic::AtomicU64;
    static N: AtomicU64 = AtomicU64::new(1);
    format!(
        "mux{}x{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// What a party puts in `a=setup` (None: no attribute, the RFC 4975 default roles).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Setup {
    Default,
    Active,
    Passive,
}

impl Setup {
    fn line(self) -> &'static str {
        match self {
            Setup::Default => "",
            Setup::Active => "a=setup:active\r\n",
            Setup::Passive => "a=setup:passive\r\n",
        }
    }
}

fn sdp(user: &str, port: u16, sid: &str, setup: Setup) -> String {
    sdp_at(user, "127.0.0.1", port, sid, setup)
}

/// [`sdp`] with the MSRP URI's host `host` (an IP literal or a host name).
fn sdp_at(user: &str, host: &str, port: u16, sid: &str, setup: Setup) -> String {
    format!(
        "v=0\r\no={user} 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
m=message {port} TCP/MSRP *\r\na=accept-types:text/plain message/cpim message/imdn+xml\r\n\
a=path:msrp://{host}:{port}/{sid};tcp\r\n{}",
        setup.line()
    )
}

/// The MSRP path and `a=setup` of the first `m=message` stream.
fn msrp_of(body: &[u8]) -> (Vec<String>, Option<String>) {
    let s = Sdp::parse(body).expect("SDP");
    let m = s
        .media
        .iter()
        .find(|m| m.media_type() == MediaType::Message)
        .expect("m=message");
    let path = m
        .msrp_path()
        .expect("a=path")
        .iter()
        .map(str::to_owned)
        .collect();
    let setup = m
        .attribute("setup")
        .and_then(|a| a.value)
        .map(str::to_owned);
    (path, setup)
}

/// The address of an MSRP URI's authority (a host name resolved: its first address).
fn authority(uri: &str) -> SocketAddr {
    use std::net::ToSocketAddrs;
    let u = ims::msrp::Uri::parse(uri).unwrap();
    let host = u.host_str().trim_start_matches('[').trim_end_matches(']');
    (host, u.port_or_default())
        .to_socket_addrs()
        .unwrap()
        .next()
        .unwrap()
}

fn session(local: &str, remote: &[String]) -> Session {
    let cfg = MsrpConfig::new(
        UriBuf::parse(local).unwrap(),
        remote.iter().map(|u| UriBuf::parse(u).unwrap()).collect(),
    );
    Session::new(cfg, 0x5eed)
}

/// One party's MSRP side: a listener (used when the other end connects) and at most one
/// connection, shared by all its sessions.
struct Msrp {
    listener: Arc<TcpListener>,
    port: u16,
    conn: Option<MsrpConnection>,
    /// Connections accepted on the listener (counted by [`Msrp::count_accepts`]).
    accepts: Arc<AtomicUsize>,
}

impl Msrp {
    async fn new() -> Msrp {
        let listener = TcpListener::bind(lo0()).await.unwrap();
        let port = listener.local_addr().unwrap().port();
        Msrp {
            listener: Arc::new(listener),
            port,
            conn: None,
            accepts: Arc::default(),
        }
    }

    /// Adds a session: on the connection we have (reuse), else by connecting to the peer's
    /// first URI (`active`) or by accepting the peer's connection.
    async fn add(&mut self, s: Session, peer_path: &[String], active: bool) {
        if self.conn.is_none() {
            let c = if active {
                MsrpConnection::connect(authority(&peer_path[0]), ConnConfig::default())
                    .await
                    .expect("MSRP connect")
            } else {
                let (s, _) = tokio::time::timeout(WAIT, self.listener.accept())
                    .await
                    .expect("the anchor connects")
                    .unwrap();
                self.accepts.fetch_add(1, Ordering::Relaxed);
                s.set_nodelay(true).unwrap();
                MsrpConnection::spawn(s, ConnConfig::default())
            };
            self.conn = Some(c);
        }
        self.conn.as_ref().unwrap().add_session(s).await.unwrap();
    }

    /// From now on, every further connection on the listener is counted (and dropped).
    fn count_accepts(&self) {
        let (l, n) = (self.listener.clone(), self.accepts.clone());
        tokio::spawn(async move {
            while let Ok((s, _)) = l.accept().await {
                n.fetch_add(1, Ordering::Relaxed);
                drop(s);
            }
        });
    }
}

async fn ua(user: &str) -> (Endpoint, Incoming) {
    Endpoint::bind(EndpointConfig {
        addr: lo0(),
        user: user.into(),
        ..EndpointConfig::default()
    })
    .await
    .expect("SIP endpoint")
}

/// A session seen from one party.
struct Leg {
    /// Our session-id.
    sid: String,
    /// The SDP we received (the anchor's answer or offer).
    peer_sdp: String,
}

/// A and B with `n` sessions through the anchor, A offering with `a_setup`, B answering with
/// `b_setup`.
struct Pair {
    anchor: ImSessionHandle,
    alice: Endpoint,
    a: Msrp,
    b: Msrp,
    a_legs: Vec<Leg>,
    b_legs: Vec<Leg>,
    a_dialogs: Vec<DialogId>,
    /// B's SIP side: (B's session-id, the anchor's offer) per INVITE.
    offers: mpsc::UnboundedReceiver<(String, String)>,
    bob_uri: String,
    b_setup: Setup,
    /// The host of B's MSRP URI (an IP literal, or a name the anchor resolves).
    b_host: &'static str,
    /// BYEs A and B received (dialogs the anchor ended).
    byes: [Arc<AtomicUsize>; 2],
}

/// B's SIP side: answers INVITEs with `setup`, hands each offer and our session-id to the test.
fn bob_answers(
    bob: Endpoint,
    mut incoming: Incoming,
    (host, port): (&'static str, u16),
    setup: Setup,
    byes: Arc<AtomicUsize>,
) -> mpsc::UnboundedReceiver<(String, String)> {
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(ev) = incoming.recv().await {
            match ev {
                UaEvent::IncomingInvite { txn, msg, .. } => {
                    let offer = String::from_utf8_lossy(msg.as_message().body()).into_owned();
                    let sid = rand_id();
                    let answer = sdp_at("bob", host, port, &sid, setup);
                    let _ = bob
                        .respond(txn, Answer::new(200).body("application/sdp", answer))
                        .await;
                    let _ = tx.send((sid, offer));
                }
                UaEvent::IncomingRequest { txn, .. } => {
                    let _ = bob.respond(txn, Answer::new(200)).await;
                }
                UaEvent::DialogTerminated {
                    reason: EndReason::ByeReceived,
                    ..
                } => {
                    byes.fetch_add(1, Ordering::Relaxed);
                }
                _ => {}
            }
        }
    });
    rx
}

async fn pair(n: usize, a_setup: Setup, b_setup: Setup) -> Pair {
    let anchor = start(ImSessionConfig {
        sip_addr: lo0(),
        msrp_addr: lo0(),
        ..ImSessionConfig::default()
    })
    .await
    .expect("anchor starts");
    pair_on(anchor, n, a_setup, b_setup).await
}

/// As [`pair`], through an anchor already started.
async fn pair_on(anchor: ImSessionHandle, n: usize, a_setup: Setup, b_setup: Setup) -> Pair {
    pair_named(anchor, n, a_setup, b_setup, "127.0.0.1").await
}

/// As [`pair_on`], B's MSRP URI naming the host `b_host` (B listens on 127.0.0.1 only).
async fn pair_named(
    anchor: ImSessionHandle,
    n: usize,
    a_setup: Setup,
    b_setup: Setup,
    b_host: &'static str,
) -> Pair {
    let (alice, mut a_in) = ua("alice").await;
    let byes: [Arc<AtomicUsize>; 2] = Default::default();
    let a_byes = byes[0].clone();
    tokio::spawn(async move {
        while let Some(ev) = a_in.recv().await {
            if let UaEvent::DialogTerminated {
                reason: EndReason::ByeReceived,
                ..
            } = ev
            {
                a_byes.fetch_add(1, Ordering::Relaxed);
            }
        }
    });
    let (bob, b_in) = ua("bob").await;
    let bob_uri = format!("sip:bob@{}", bob.local_addr());
    let a = Msrp::new().await;
    let b = Msrp::new().await;
    let offers = bob_answers(bob, b_in, (b_host, b.port), b_setup, byes[1].clone());
    let mut p = Pair {
        anchor,
        alice,
        a,
        b,
        a_legs: Vec::new(),
        b_legs: Vec::new(),
        a_dialogs: Vec::new(),
        offers,
        bob_uri,
        b_setup,
        b_host,
        byes,
    };
    for _ in 0..n {
        let a_port = p.a.port;
        let (a_local, anchor_a_path) = invite(&mut p, a_port, a_setup).await;
        let a_sess = session(&a_local, &anchor_a_path);
        p.a.add(a_sess, &anchor_a_path, a_setup != Setup::Passive)
            .await;
    }
    p.a.count_accepts();
    p.b.count_accepts();
    p
}

/// One more session from A to B through the anchor: A offers a path on `a_port` with
/// `a_setup`; B's side is added to B's connection. Returns A's local URI and the anchor's path
/// toward A (A's side is not added anywhere: the caller does that).
async fn invite(p: &mut Pair, a_port: u16, a_setup: Setup) -> (String, Vec<String>) {
    let sid = rand_id();
    let mut inv = p
        .alice
        .invite(InviteParams {
            request_uri: p.bob_uri.clone(),
            from: "<sip:alice@ims.example.org>".into(),
            to: format!("<{}>", p.bob_uri),
            remote: Remote::udp(p.anchor.sip_addr()),
            headers: vec![],
            body: Some((
                "application/sdp".into(),
                sdp("alice", a_port, &sid, a_setup).into_bytes(),
            )),
        })
        .await
        .unwrap();
    // B's side: the anchor's offer; B binds its session (connecting when `active`)
    let (b_sid, offer) = tokio::time::timeout(WAIT, p.offers.recv())
        .await
        .expect("B gets the INVITE")
        .unwrap();
    let (anchor_b_path, offer_setup) = msrp_of(offer.as_bytes());
    assert_eq!(
        offer_setup.as_deref(),
        Some("actpass"),
        "the anchor offers actpass to B: {offer}"
    );
    let b_local = format!("msrp://{}:{}/{b_sid};tcp", p.b_host, p.b.port);
    let b_sess = session(&b_local, &anchor_b_path);
    if p.b_setup == Setup::Active {
        p.b.add(b_sess, &anchor_b_path, true).await;
    } else {
        // the anchor connects to B (first session) before it answers A
        let add = p.b.add(b_sess, &anchor_b_path, false);
        tokio::time::timeout(WAIT, add).await.expect("B bound");
    }
    let ok = loop {
        let r = tokio::time::timeout(WAIT, inv.next())
            .await
            .expect("A's INVITE answered")
            .expect("a final response")
            .expect("no transport error");
        let code = r.as_message().status().unwrap();
        if code >= 200 {
            assert_eq!(code, 200);
            break r;
        }
    };
    let m = ok.as_message();
    p.a_dialogs
        .push(DialogId::of_received_response(&m).expect("dialog"));
    let answer = String::from_utf8_lossy(m.body()).into_owned();
    let (anchor_a_path, answer_setup) = msrp_of(m.body());
    let want = if a_setup == Setup::Passive {
        "active"
    } else {
        "passive"
    };
    assert_eq!(answer_setup.as_deref(), Some(want), "{answer}");
    let a_local = format!("msrp://127.0.0.1:{a_port}/{sid};tcp");
    p.a_legs.push(Leg {
        sid,
        peer_sdp: answer,
    });
    p.b_legs.push(Leg {
        sid: b_sid,
        peer_sdp: offer,
    });
    (a_local, anchor_a_path)
}

/// What one party received, per session-id.
#[derive(Debug, Default)]
struct Got {
    /// (Content-Type, body) in arrival order.
    messages: HashMap<String, Vec<(String, Bytes)>>,
    /// (Message-ID, status) of REPORTs.
    reports: HashMap<String, Vec<(String, u16)>>,
    /// Anything unexpected (failures, rejections, unknown sessions).
    trouble: Vec<String>,
}

impl Got {
    fn count(&self, m: &HashMap<String, Vec<impl Sized>>) -> usize {
        m.values().map(Vec::len).sum()
    }
}

/// Collects events until `messages` messages and `reports` reports arrived (or `WAIT`).
async fn collect(conn: &mut MsrpConnection, messages: usize, reports: usize) -> Got {
    collect_n(conn, messages, reports, 0).await
}

/// [`collect`], also waiting for `trouble` unexpected events.
async fn collect_n(
    conn: &mut MsrpConnection,
    messages: usize,
    reports: usize,
    trouble: usize,
) -> Got {
    collect_within(conn, messages, reports, trouble, WAIT).await
}

/// [`collect_n`] giving up after `within`.
async fn collect_within(
    conn: &mut MsrpConnection,
    messages: usize,
    reports: usize,
    trouble: usize,
    within: Duration,
) -> Got {
    let mut got = Got::default();
    let deadline = tokio::time::Instant::now() + within;
    while got.count(&got.messages) < messages
        || got.count(&got.reports) < reports
        || got.trouble.len() < trouble
    {
        let ev = match tokio::time::timeout_at(deadline, conn.next_event()).await {
            Ok(Some(ev)) => ev,
            _ => break,
        };
        match ev {
            ConnEvent::Session { session_id, event } => match event {
                SessionEvent::Message {
                    content_type, body, ..
                } => got
                    .messages
                    .entry(session_id)
                    .or_default()
                    .push((content_type, body)),
                SessionEvent::Report {
                    message_id, status, ..
                } => got
                    .reports
                    .entry(session_id)
                    .or_default()
                    .push((message_id, status)),
                other => got.trouble.push(format!("{session_id}: {other:?}")),
            },
            other => got.trouble.push(format!("{other:?}")),
        }
    }
    got
}

fn text(ct: &str, body: &str, report: bool) -> Outgoing {
    let mut o = Outgoing::new(ct, Bytes::from(body.to_owned()));
    o.success_report = report;
    o.failure_report = FailureReport::Yes;
    o
}

/// Sends `n` messages tagged `tag` on each of the party's sessions, interleaved; returns the
/// Message-IDs per session-id.
async fn send_all(
    conn: &MsrpConnection,
    legs: &[Leg],
    tag: &str,
    n: usize,
) -> HashMap<String, Vec<String>> {
    let mut ids: HashMap<String, Vec<String>> = HashMap::new();
    for i in 0..n {
        for (k, l) in legs.iter().enumerate() {
            let id = conn
                .send(
                    &l.sid,
                    text("text/plain", &format!("s{k} {tag} {i:04}"), true),
                )
                .await
                .expect("connection up")
                .expect("session known");
            ids.entry(l.sid.clone()).or_default().push(id);
        }
    }
    ids
}

fn expect(legs: &[Leg], tag: &str, n: usize) -> HashMap<String, Vec<String>> {
    legs.iter()
        .enumerate()
        .map(|(k, l)| {
            (
                l.sid.clone(),
                (0..n).map(|i| format!("s{k} {tag} {i:04}")).collect(),
            )
        })
        .collect()
}

fn texts(got: &Got) -> HashMap<String, Vec<String>> {
    got.messages
        .iter()
        .map(|(sid, v)| {
            (
                sid.clone(),
                v.iter()
                    .map(|(_, b)| String::from_utf8_lossy(b).into_owned())
                    .collect(),
            )
        })
        .collect()
}

fn success_reports(got: &Got) -> HashMap<String, Vec<String>> {
    got.reports
        .iter()
        .map(|(sid, v)| {
            (
                sid.clone(),
                v.iter()
                    .filter(|(_, s)| *s == 200)
                    .map(|(id, _)| id.clone())
                    .collect(),
            )
        })
        .collect()
}

/// `n` messages each way through an anchor behind its own relay: its only MSRP connection is
/// its link to the relay, nobody connects to A (the offerer connects) and the relay connects
/// to B (answering `passive`) once.
async fn chat_through_relay(p: &mut Pair, stats: &Arc<Stats>, n: usize) {
    exchange(p, n).await;
    assert_eq!(
        stats.connections.load(Ordering::Relaxed),
        1,
        "the anchor's only MSRP connection is its link to the relay"
    );
    assert_eq!(p.a.accepts.load(Ordering::Relaxed), 0);
    assert_eq!(
        p.b.accepts.load(Ordering::Relaxed),
        1,
        "the relay connected to B"
    );
}

/// Both parties send `n` messages per session; each must get exactly the other's messages of
/// that session, in order, and a success REPORT for each of its own.
async fn exchange(p: &mut Pair, n: usize) {
    let sessions = p.a_legs.len();
    let (ac, bc) = (p.a.conn.as_mut().unwrap(), p.b.conn.as_mut().unwrap());
    // B first: when B is the active end its first frame binds its side at the anchor
    let b_ids = send_all(bc, &p.b_legs, "b>a", n).await;
    let a_ids = send_all(ac, &p.a_legs, "a>b", n).await;
    let (got_a, got_b) = tokio::join!(
        collect(ac, sessions * n, sessions * n),
        collect(bc, sessions * n, sessions * n)
    );
    assert!(got_a.trouble.is_empty(), "A: {:?}", got_a.trouble);
    assert!(got_b.trouble.is_empty(), "B: {:?}", got_b.trouble);
    assert_eq!(texts(&got_b), expect(&p.b_legs, "a>b", n), "B's messages");
    assert_eq!(texts(&got_a), expect(&p.a_legs, "b>a", n), "A's messages");
    assert_eq!(success_reports(&got_a), a_ids, "A's success REPORTs");
    assert_eq!(success_reports(&got_b), b_ids, "B's success REPORTs");
}

/// Writes one SEND on a fresh connection to the anchor and returns the response status.
async fn lone_send(anchor: SocketAddr, to: &str) -> u16 {
    let mut s = TcpStream::connect(anchor).await.unwrap();
    let frame = FrameBuilder::request("lonetid1", "SEND")
        .to_path(to)
        .from_path("msrp://127.0.0.1:9/intruder;tcp")
        .header("Message-ID", "lone1")
        .header("Byte-Range", "1-2/2")
        .body("text/plain", Bytes::from_static(b"hi"))
        .to_bytes();
    s.write_all(&frame).await.unwrap();
    let mut framer = Framer::new(Limits::default());
    tokio::time::timeout(WAIT, async {
        loop {
            if let Some(Event::Frame(f)) = framer.poll().unwrap() {
                assert_eq!(f.head.transaction_id(), "lonetid1");
                return f.head.status().unwrap();
            }
            assert!(s.read_buf(framer.buffer_mut()).await.unwrap() > 0);
        }
    })
    .await
    .expect("a response")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_sessions_share_one_connection_on_each_leg() {
    let mut p = pair(2, Setup::Default, Setup::Default).await;
    // one connection A→anchor (A reused it), one anchor→B (the anchor reused it)
    assert_eq!(
        p.b.accepts.load(Ordering::Relaxed),
        1,
        "B was connected once"
    );
    exchange(&mut p, 40).await;
    let stats = p.anchor.stats();
    assert_eq!(stats.sessions.load(Ordering::Relaxed), 2);
    assert_eq!(stats.connections.load(Ordering::Relaxed), 2, "one per leg");
    assert_eq!(p.b.accepts.load(Ordering::Relaxed), 1, "B still has one");
    // unknown session → 481; A's session on another connection → 481 (bound to A's)
    let anchor_msrp = p.anchor.msrp_addr();
    let unknown = format!("msrp://{anchor_msrp}/nosuchsession;tcp");
    assert_eq!(lone_send(anchor_msrp, &unknown).await, 481);
    let (a_path, _) = msrp_of(p.a_legs[0].peer_sdp.as_bytes());
    assert_eq!(lone_send(anchor_msrp, &a_path[0]).await, 481);
    // the sessions still run: one more message each way on each
    exchange(&mut p, 1).await;
    for d in &p.a_dialogs {
        let t = p.alice.bye(d).await.unwrap();
        assert_eq!(
            t.final_response().await.unwrap().as_message().status(),
            Some(200)
        );
    }
    let _ = &p.b_legs;
    p.anchor.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offerer_that_only_listens_is_connected_to_by_the_anchor() {
    let mut p = pair(1, Setup::Passive, Setup::Default).await;
    assert_eq!(
        p.a.accepts.load(Ordering::Relaxed),
        1,
        "the anchor connected to A"
    );
    assert_eq!(
        p.b.accepts.load(Ordering::Relaxed),
        1,
        "the anchor connected to B"
    );
    exchange(&mut p, 20).await;
    p.anchor.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answerer_that_connects_is_accepted_by_the_anchor() {
    let mut p = pair(1, Setup::Default, Setup::Active).await;
    assert_eq!(p.b.accepts.load(Ordering::Relaxed), 0, "B connected itself");
    exchange(&mut p, 20).await;
    // both legs were opened by the parties: nothing accepted by either
    assert_eq!(p.a.accepts.load(Ordering::Relaxed), 0);
    assert_eq!(p.b.accepts.load(Ordering::Relaxed), 0);
    p.anchor.shutdown();
}

/// RFC 5438 §7.1.1 / TS 24.247: a CPIM message asking for delivery and display notifications
/// passes the anchor byte for byte; the recipient's delivery notification (a CPIM-wrapped
/// `message/imdn+xml`, `Content-Disposition: notification`) comes back over the same session
/// and names the original imdn.Message-ID.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cpim_message_and_its_imdn_pass_the_anchor_intact() {
    let mut p = pair(1, Setup::Default, Setup::Default).await;
    let (a_sid, b_sid) = (p.a_legs[0].sid.clone(), p.b_legs[0].sid.clone());
    let sent = CpimBuilder::new("<sip:alice@ims.example.org>", "<sip:bob@ims.example.org>")
        .datetime("2026-11-26T06:00:00.000Z")
        .ns("imdn", imdn::NS)
        .header("imdn.Message-ID", "Imdn0001Xq")
        .header(
            "imdn.Disposition-Notification",
            "positive-delivery, display",
        )
        .content(
            "text/plain;charset=UTF-8",
            "Grüße through the anchor".as_bytes(),
        )
        .to_bytes();
    let (ac, bc) = (p.a.conn.as_mut().unwrap(), p.b.conn.as_mut().unwrap());
    let mut out = Outgoing::new("message/cpim", Bytes::from(sent.clone()));
    out.success_report = true;
    let a_msg = ac.send(&a_sid, out).await.unwrap().expect("session known");
    let got_b = collect(bc, 1, 0).await;
    assert!(got_b.trouble.is_empty(), "B: {:?}", got_b.trouble);
    let (ct, body) = &got_b.messages[&b_sid][0];
    assert_eq!(ct, "message/cpim");
    assert_eq!(&body[..], &sent[..], "the CPIM body passed unchanged");
    let c = Cpim::parse(body).unwrap();
    assert_eq!(c.from(), Some("<sip:alice@ims.example.org>"));
    let imdn_id = c
        .ns_header(imdn::NS, "Message-ID")
        .expect("imdn.Message-ID");
    let disp = Disposition::parse(
        c.ns_header(imdn::NS, "Disposition-Notification")
            .expect("Disposition-Notification"),
    );
    assert!(disp.positive_delivery && disp.display && !disp.negative_delivery);
    assert_eq!(c.body, "Grüße through the anchor".as_bytes());
    // B's delivery notification (RFC 5438 §7.2.1.1), sent back on the session
    let n = Imdn {
        message_id: imdn_id.to_owned(),
        datetime: "2026-11-26T06:00:01.000Z".into(),
        recipient_uri: Some("sip:bob@ims.example.org".into()),
        original_recipient_uri: None,
        notification: Notification::Delivery,
        status: "delivered".into(),
    };
    let xml = n.to_xml();
    let notice = format!(
        "From: <sip:bob@ims.example.org>\r\nTo: <sip:alice@ims.example.org>\r\n\
DateTime: 2026-11-26T06:00:01.000Z\r\nNS: imdn <{}>\r\nimdn.Message-ID: Imdn0002Zr\r\n\r\n\
Content-Type: {}\r\nContent-Disposition: notification\r\nContent-Length: {}\r\n\r\n{xml}",
        imdn::NS,
        imdn::CONTENT_TYPE,
        xml.len()
    );
    bc.send(&b_sid, text("message/cpim", &notice, false))
        .await
        .unwrap()
        .expect("session known");
    let got_a = collect(ac, 1, 1).await;
    assert!(got_a.trouble.is_empty(), "A: {:?}", got_a.trouble);
    assert_eq!(
        got_a.reports[&a_sid],
        [(a_msg, 200)],
        "B's success REPORT for the CPIM message"
    );
    let (ct, body) = &got_a.messages[&a_sid][0];
    assert_eq!(ct, "message/cpim");
    assert_eq!(&body[..], notice.as_bytes());
    let c = Cpim::parse(body).unwrap();
    assert!(c.content_type().unwrap().unwrap().is("message", "imdn+xml"));
    let back = Imdn::parse(std::str::from_utf8(c.body).unwrap()).unwrap();
    assert_eq!(back, n);
    assert_eq!(back.message_id, "Imdn0001Xq");
    assert_eq!(back.status, "delivered");
    p.anchor.shutdown();
}

/// A moves its session `i` to a new MSRP connection with a re-INVITE carrying a new path (RFC
/// 4975 §5.4, RFC 3264 §8): the anchor answers 200 with its same path and `a=setup:passive`.
/// Returns A's new connection, with the session added, and the session's new id.
async fn move_a_session(p: &mut Pair, i: usize) -> (Msrp, String) {
    use ims::sip::Method;
    let (anchor_path, _) = msrp_of(p.a_legs[i].peer_sdp.as_bytes());
    let mut moved = Msrp::new().await;
    let new_sid = rand_id();
    let offer = sdp("alice", moved.port, &new_sid, Setup::Default);
    let t = p
        .alice
        .request_in_dialog(
            &p.a_dialogs[i],
            Method::Invite,
            vec![],
            Some(("application/sdp".into(), offer.into_bytes())),
        )
        .await
        .unwrap();
    let r = tokio::time::timeout(WAIT, t.final_response())
        .await
        .expect("answered")
        .unwrap();
    let m = r.as_message();
    assert_eq!(m.status(), Some(200));
    let (path, setup) = msrp_of(m.body());
    assert_eq!(path, anchor_path, "the anchor keeps its path");
    assert_eq!(setup.as_deref(), Some("passive"));
    let local = format!("msrp://127.0.0.1:{}/{new_sid};tcp", moved.port);
    moved.add(session(&local, &path), &path, true).await;
    (moved, new_sid)
}

/// A moves its session to a new MSRP connection with a re-INVITE carrying a new path (RFC 4975
/// §5.4, RFC 3264 §8): the anchor answers 200 with its same path and `a=setup:passive`, B is
/// not involved, the session carries on over A's new connection both ways, and A's old
/// connection, which carried nothing else, is closed by the anchor.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn re_invite_moving_the_path_rebinds_the_session() {
    let mut p = pair(1, Setup::Default, Setup::Default).await;
    exchange(&mut p, 5).await;
    let (moved, new_sid) = move_a_session(&mut p, 0).await;
    let mut old = std::mem::replace(&mut p.a, moved);
    let old_sid = std::mem::replace(&mut p.a_legs[0].sid, new_sid);
    exchange(&mut p, 5).await;
    // the old connection carried only that session: the anchor closed it
    let oc = old.conn.as_mut().unwrap();
    let closed = tokio::time::timeout(WAIT, async {
        loop {
            match oc.next_event().await {
                Some(ConnEvent::Closed(_)) | None => return true,
                Some(_) => {}
            }
        }
    })
    .await;
    assert_eq!(closed, Ok(true), "the old connection is closed");
    drop(old_sid);
    assert_eq!(p.anchor.stats().connections.load(Ordering::Relaxed), 2);
    assert_eq!(p.anchor.stats().sessions.load(Ordering::Relaxed), 1);
    p.anchor.shutdown();
}

/// Two sessions share A's connection; A moves one of them to a new connection by re-INVITE.
/// The moved session carries on over the new connection, the other one over the shared
/// connection (which the anchor keeps), and a frame of the moved session on the old
/// connection gets 481.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moving_one_of_two_sessions_leaves_the_shared_connection_to_the_other() {
    let mut p = pair(2, Setup::Default, Setup::Default).await;
    exchange(&mut p, 3).await;
    let (mut moved, new_sid) = move_a_session(&mut p, 0).await;
    let (a0, a1) = (p.a_legs[0].sid.clone(), p.a_legs[1].sid.clone());
    let (b0, b1) = (p.b_legs[0].sid.clone(), p.b_legs[1].sid.clone());
    let mc = moved.conn.as_mut().unwrap();
    let ac = p.a.conn.as_mut().unwrap();
    let bc = p.b.conn.as_mut().unwrap();
    let m0 = mc
        .send(&new_sid, text("text/plain", "moved a>b", true))
        .await
        .unwrap()
        .unwrap();
    let m1 = ac
        .send(&a1, text("text/plain", "stay a>b", true))
        .await
        .unwrap()
        .unwrap();
    ac.send(&a0, text("text/plain", "stale", false))
        .await
        .unwrap()
        .unwrap();
    let got_b = collect(bc, 2, 0).await;
    assert!(got_b.trouble.is_empty(), "B: {:?}", got_b.trouble);
    let want: HashMap<String, Vec<String>> = [
        (b0.clone(), vec!["moved a>b".to_owned()]),
        (b1.clone(), vec!["stay a>b".to_owned()]),
    ]
    .into();
    assert_eq!(texts(&got_b), want, "the stale frame did not reach B");
    bc.send(&b0, text("text/plain", "moved b>a", false))
        .await
        .unwrap()
        .unwrap();
    bc.send(&b1, text("text/plain", "stay b>a", false))
        .await
        .unwrap()
        .unwrap();
    let got_m = collect(mc, 1, 1).await;
    assert!(got_m.trouble.is_empty(), "moved: {:?}", got_m.trouble);
    assert_eq!(texts(&got_m)[&new_sid], ["moved b>a"]);
    assert_eq!(got_m.reports[&new_sid], [(m0, 200)]);
    let got_a = collect_n(ac, 1, 1, 1).await;
    assert_eq!(texts(&got_a)[&a1], ["stay b>a"]);
    assert_eq!(got_a.reports[&a1], [(m1, 200)]);
    assert!(!got_a.messages.contains_key(&a0), "{:?}", got_a.messages);
    assert_eq!(got_a.trouble.len(), 1, "{:?}", got_a.trouble);
    assert!(
        got_a.trouble[0].starts_with(&format!("{a0}: SendFailed"))
            && got_a.trouble[0].contains("status: 481"),
        "{:?}",
        got_a.trouble
    );
    assert_eq!(p.anchor.stats().connections.load(Ordering::Relaxed), 3);
    p.anchor.shutdown();
}

/// Frames queued at the anchor for a party that then moves its path are addressed to the
/// path it has when they leave the queue: A (the active end) has connected but not sent
/// anything, so its side is not bound and B's 3 messages wait at the anchor; A moves the
/// session to a new connection and session-id by re-INVITE and binds there with a message of
/// its own; the 3 queued messages reach A's NEW session (To-Path rewritten at dequeue — before,
/// they carried the old To-Path and A's connection refused them with 481), with their
/// success REPORTs back to B, and B gets A's message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frames_queued_for_a_party_follow_its_path_move() {
    let mut p = pair(1, Setup::Default, Setup::Default).await;
    let b0 = p.b_legs[0].sid.clone();
    let mut b_ids = Vec::new();
    {
        let bc = p.b.conn.as_mut().unwrap();
        for i in 0..3 {
            let id = bc
                .send(&b0, text("text/plain", &format!("queued b>a {i}"), true))
                .await
                .unwrap()
                .unwrap();
            b_ids.push(id);
        }
    }
    // the anchor has them (forwarded into A's queue: A is not bound yet)
    let deadline = tokio::time::Instant::now() + WAIT;
    while p.anchor.stats().requests.load(Ordering::Relaxed) < 3 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "B's frames reach the anchor"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (mut moved, new_sid) = move_a_session(&mut p, 0).await;
    let mc = moved.conn.as_mut().unwrap();
    let a_id = mc
        .send(&new_sid, text("text/plain", "a>b after the move", true))
        .await
        .unwrap()
        .unwrap();
    let got_a = collect_within(mc, 3, 1, 0, Duration::from_secs(20)).await;
    assert!(got_a.trouble.is_empty(), "A: {:?}", got_a.trouble);
    let want: HashMap<String, Vec<String>> = [(
        new_sid.clone(),
        (0..3).map(|i| format!("queued b>a {i}")).collect(),
    )]
    .into();
    assert_eq!(
        texts(&got_a),
        want,
        "queued frames reach A's new session in order"
    );
    assert_eq!(got_a.reports[&new_sid], [(a_id, 200)]);
    let bc = p.b.conn.as_mut().unwrap();
    let got_b = collect_within(bc, 1, 3, 0, Duration::from_secs(20)).await;
    assert!(got_b.trouble.is_empty(), "B: {:?}", got_b.trouble);
    assert_eq!(texts(&got_b)[&b0], ["a>b after the move"]);
    assert_eq!(
        success_reports(&got_b)[&b0],
        b_ids,
        "B's REPORTs from A's new session"
    );
    p.anchor.shutdown();
}

/// How long the sessions that are not waiting for anybody may take: well under the anchor's
/// 30 s wait for a party that has not connected (a reader held by such a frame fails this).
const FLOWING: Duration = Duration::from_secs(15);

/// Frames toward a party that has not connected yet wait in their own session's queue at the
/// anchor, not in the reader of the connection they arrived on: while B has not bound its side
/// of session 1, A's messages of session 0 — on the same connection, sent after session 1's —
/// reach B and their success REPORTs come back; once B binds session 1 (its first frame, B
/// being the active end), the queued messages arrive intact and in order, with their REPORTs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_callee_does_not_hold_the_other_session_on_the_shared_connection() {
    let mut p = pair(2, Setup::Default, Setup::Active).await;
    let (a0, a1) = (p.a_legs[0].sid.clone(), p.a_legs[1].sid.clone());
    let (b0, b1) = (p.b_legs[0].sid.clone(), p.b_legs[1].sid.clone());
    let (ac, bc) = (p.a.conn.as_mut().unwrap(), p.b.conn.as_mut().unwrap());
    // both bind their side of session 0 (their first frames); B's side of session 1 stays
    // unbound
    bc.send(&b0, text("text/plain", "b0 hello", false))
        .await
        .unwrap()
        .unwrap();
    ac.send(&a0, text("text/plain", "a0 hello", false))
        .await
        .unwrap()
        .unwrap();
    let (got_a, got_b) = tokio::join!(collect(ac, 1, 0), collect(bc, 1, 0));
    assert_eq!(texts(&got_a)[&a0], ["b0 hello"]);
    assert_eq!(texts(&got_b)[&b0], ["a0 hello"]);
    let n = 20;
    let (mut ids0, mut ids1) = (Vec::new(), Vec::new());
    for i in 0..n {
        let m = text("text/plain", &format!("late {i:04}"), true);
        ids1.push(ac.send(&a1, m).await.unwrap().unwrap());
    }
    for i in 0..n {
        let m = text("text/plain", &format!("early {i:04}"), true);
        ids0.push(ac.send(&a0, m).await.unwrap().unwrap());
    }
    let (got_a, got_b) = tokio::join!(
        collect_within(ac, 0, n, 0, FLOWING),
        collect_within(bc, n, 0, 0, FLOWING)
    );
    assert!(got_a.trouble.is_empty(), "A: {:?}", got_a.trouble);
    assert!(got_b.trouble.is_empty(), "B: {:?}", got_b.trouble);
    let early: Vec<String> = (0..n).map(|i| format!("early {i:04}")).collect();
    assert_eq!(
        texts(&got_b),
        HashMap::from([(b0.clone(), early)]),
        "session 0 flowed while session 1 waited for B"
    );
    assert_eq!(success_reports(&got_a), HashMap::from([(a0.clone(), ids0)]));
    // B binds session 1: what waited arrives, in order
    bc.send(&b1, text("text/plain", "b1 hello", false))
        .await
        .unwrap()
        .unwrap();
    let (got_a, got_b) = tokio::join!(collect(ac, 1, n), collect(bc, n, 0));
    assert!(got_a.trouble.is_empty(), "A: {:?}", got_a.trouble);
    assert!(got_b.trouble.is_empty(), "B: {:?}", got_b.trouble);
    let late: Vec<String> = (0..n).map(|i| format!("late {i:04}")).collect();
    assert_eq!(texts(&got_b), HashMap::from([(b1.clone(), late)]));
    assert_eq!(texts(&got_a)[&a1], ["b1 hello"]);
    assert_eq!(success_reports(&got_a), HashMap::from([(a1, ids1)]));
    p.anchor.shutdown();
}

/// One session from A to B through the anchor (session 0) and a second one (session 1) whose
/// A side is left to the test, for a raw socket of its own. Returns the pair, the listener
/// bound at the port A's offer of session 1 names (keep it for the test's length), A's local
/// URI and the anchor's path toward A of session 1, and the session-ids: A's of session 0,
/// B's of sessions 0 and 1.
async fn raw_second() -> (Pair, TcpListener, String, Vec<String>, [String; 3]) {
    let mut p = pair(1, Setup::Default, Setup::Default).await;
    let raw_listener = TcpListener::bind(lo0()).await.unwrap();
    let raw_port = raw_listener.local_addr().unwrap().port();
    let (raw_local, anchor_path) = invite(&mut p, raw_port, Setup::Default).await;
    let (a0, b0, b1) = (
        p.a_legs[0].sid.clone(),
        p.b_legs[0].sid.clone(),
        p.b_legs[1].sid.clone(),
    );
    (p, raw_listener, raw_local, anchor_path, [a0, b0, b1])
}

/// A multi-megabyte chunk (one SEND, Byte-Range 1-N/N, from A's second connection) is
/// re-chunked by the anchor as it streams in (RFC 4975 §5.1, §7.1.1) instead of holding the
/// anchor's connection to B — which both sessions share — until its end-line: a small message
/// of the other session, sent while the big chunk is only partly written, reaches B first;
/// then the big message arrives byte for byte, and A's chunk gets exactly one response, 200.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_streamed_chunk_does_not_hold_the_shared_connection() {
    let (mut p, _raw_listener, raw_local, anchor_path, [a0, b0, b1]) = raw_second().await;
    let size = 3 * 1024 * 1024usize;
    let big: Vec<u8> = (0..size as u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let frame = FrameBuilder::request("bigtid0001", "SEND")
        .to_path(&anchor_path.join(" "))
        .from_path(&raw_local)
        .header("Message-ID", "big0001")
        .header("Byte-Range", &format!("1-{size}/{size}"))
        .body("application/octet-stream", Bytes::from(big.clone()))
        .to_bytes();
    let mut raw = TcpStream::connect(authority(&anchor_path[0]))
        .await
        .unwrap();
    raw.set_nodelay(true).unwrap();
    let split = frame.len() - 2 * 1024 * 1024;
    raw.write_all(&frame[..split]).await.unwrap();
    let (ac, bc) = (p.a.conn.as_mut().unwrap(), p.b.conn.as_mut().unwrap());
    let small = ac
        .send(&a0, text("text/plain", "small while big", true))
        .await
        .unwrap()
        .unwrap();
    // B: the small message arrives while the big chunk is still incomplete
    let mut rx = BigRx::default();
    let got_small = tokio::time::timeout(FLOWING, async {
        loop {
            let ev = bc.next_event().await.expect("B's connection up");
            if let Some(m) = rx.on(ev, &b0, &b1) {
                return m;
            }
        }
    })
    .await
    .expect("the small message passes while the big chunk streams");
    assert_eq!(got_small, "small while big");
    assert!(rx.parts.len() < size, "the big message is not complete yet");
    let got_a = collect(ac, 0, 1).await;
    assert_eq!(success_reports(&got_a), HashMap::from([(a0, vec![small])]));
    // the rest of the big chunk
    raw.write_all(&frame[split..]).await.unwrap();
    tokio::time::timeout(WAIT, async {
        while rx.complete.is_none() {
            let ev = bc.next_event().await.expect("B's connection up");
            rx.on(ev, &b0, &b1);
        }
    })
    .await
    .expect("the big message completes");
    assert!(rx.trouble.is_empty(), "B: {:?}", rx.trouble);
    assert_eq!(rx.complete, Some(size as u64));
    assert!(rx.parts == big, "the big message arrived byte for byte");
    // exactly one response to A's chunk: 200 (the pieces' own 200s stay at the anchor)
    let mut framer = Framer::new(Limits::default());
    let mut statuses = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        loop {
            while let Some(ev) = framer.poll().unwrap() {
                if let Event::Frame(f) = ev {
                    assert_eq!(f.head.transaction_id(), "bigtid0001");
                    statuses.push(f.head.status().unwrap());
                }
            }
            if raw.read_buf(framer.buffer_mut()).await.unwrap_or(0) == 0 {
                return;
            }
        }
    })
    .await;
    assert_eq!(statuses, [200]);
    p.anchor.shutdown();
}

/// What B receives in the streamed-chunk test.
#[derive(Default)]
struct BigRx {
    /// The big message's bytes so far (in order).
    parts: Vec<u8>,
    /// Its size once complete.
    complete: Option<u64>,
    trouble: Vec<String>,
}

impl BigRx {
    /// Takes one event; returns the body of a whole message of session `small`.
    fn on(&mut self, ev: ConnEvent, small: &str, big: &str) -> Option<String> {
        match ev {
            ConnEvent::Session { session_id, event } => match event {
                SessionEvent::MessageData { offset, data, .. } if session_id == big => {
                    assert_eq!(offset as usize, self.parts.len(), "in order");
                    self.parts.extend_from_slice(&data);
                }
                SessionEvent::MessageComplete { size, .. } if session_id == big => {
                    self.complete = Some(size);
                }
                SessionEvent::Message { body, .. } if session_id == small => {
                    return Some(String::from_utf8_lossy(&body).into_owned());
                }
                other => self.trouble.push(format!("{session_id}: {other:?}")),
            },
            other => self.trouble.push(format!("{other:?}")),
        }
        None
    }
}

/// Session 1's A party is a raw socket that binds its side (one SEND) and then never reads;
/// B floods it over B's connection, which B shares with session 0. Once the anchor's queue
/// toward the silent party (and the socket buffers) are full, B's further frames for it are
/// answered 413 at once instead of holding the anchor's reader of B's connection (up to 30 s
/// each before): B's message of session 0, sent after the flood, reaches A promptly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_that_stops_reading_does_not_hold_the_shared_connection() {
    let (mut p, _raw_listener, raw_local, anchor_path, [a0, b0, b1]) = raw_second().await;
    let (ac, bc) = (p.a.conn.as_mut().unwrap(), p.b.conn.as_mut().unwrap());
    // A binds session 0; the silent party binds session 1 with one SEND, then never reads
    ac.send(&a0, text("text/plain", "a0 hello", false))
        .await
        .unwrap()
        .unwrap();
    let mut silent = TcpStream::connect(authority(&anchor_path[0]))
        .await
        .unwrap();
    let bind = FrameBuilder::request("silent0001", "SEND")
        .to_path(&anchor_path.join(" "))
        .from_path(&raw_local)
        .header("Message-ID", "silent1")
        .header("Byte-Range", "1-2/2")
        .body("text/plain", Bytes::from_static(b"hi"))
        .to_bytes();
    silent.write_all(&bind).await.unwrap();
    let got_b = collect(bc, 2, 0).await;
    assert!(got_b.trouble.is_empty(), "B: {:?}", got_b.trouble);
    assert_eq!(texts(&got_b)[&b1], ["hi"]);
    // the flood: far more than the anchor's queue (1 MiB) and the socket buffers hold
    let body = Bytes::from(vec![b'x'; 60_000]);
    let flood = 200;
    let sent = tokio::time::timeout(FLOWING, async {
        for _ in 0..flood {
            let m = Outgoing::new("text/plain", body.clone());
            bc.send(&b1, m).await.unwrap().unwrap();
        }
        bc.send(&b0, text("text/plain", "after the flood", false))
            .await
            .unwrap()
            .unwrap();
    })
    .await;
    assert!(sent.is_ok(), "B's connection was not read meanwhile");
    // A gets session 0's message while the silent party still reads nothing
    let got_a = collect_within(ac, 1, 0, 0, FLOWING).await;
    assert_eq!(
        texts(&got_a).get(&a0).map(Vec::as_slice),
        Some(&["after the flood".to_string()][..]),
        "A: {:?}",
        got_a.trouble
    );
    // and B learnt that the silent party takes no more: 413 (stop sending the message)
    let refused = tokio::time::timeout(FLOWING, async {
        loop {
            match bc.next_event().await.expect("B's connection up") {
                ConnEvent::Session {
                    session_id,
                    event: SessionEvent::SendFailed { status, .. },
                } if session_id == b1 => return status,
                _ => {}
            }
        }
    })
    .await
    .expect("a refusal for the flood");
    assert_eq!(refused, 413);
    drop(silent);
    p.anchor.shutdown();
}

/// An RFC 4976 relay on 127.0.0.1 (ephemeral port) with the users alice and bob.
fn relay() -> (ims::net::msrp::MsrpRelay, String) {
    relay_named("127.0.0.1")
}

/// [`relay`] whose URI (and so every Use-Path it grants) names `host`; it listens on
/// 127.0.0.1 only.
fn relay_named(host: &str) -> (ims::net::msrp::MsrpRelay, String) {
    use ims::msrp::relay::RelayConfig;
    let l = std::net::TcpListener::bind(lo0()).unwrap();
    l.set_nonblocking(true).unwrap();
    let port = l.local_addr().unwrap().port();
    let uri = format!("msrp://{host}:{port};tcp");
    let cfg = RelayConfig::new(UriBuf::parse(&uri).unwrap(), "relay.example.org");
    let r = ims::net::msrp::MsrpRelay::start(
        TcpListener::from_std(l).unwrap(),
        cfg,
        &[("alice", "alice-pw"), ("bob", "bob-pw"), ("im", "im-pw")],
        0x4976,
    )
    .expect("relay");
    (r, uri)
}

/// `user` at `local` connects to the relay `relay_uri` and authenticates (RFC 4976 §5): the
/// connection and the Use-Path.
async fn through_relay(
    relay_uri: &str,
    local: &str,
    user: &str,
    password: &str,
) -> (TcpStream, Vec<String>) {
    use ims::msrp::relay::AuthClient;
    let mut s = TcpStream::connect(authority(relay_uri)).await.unwrap();
    s.set_nodelay(true).unwrap();
    let mut auth = AuthClient::new(
        UriBuf::parse(local).unwrap(),
        UriBuf::parse(relay_uri).unwrap(),
        user,
        password,
        Some(600),
        7,
    );
    let (use_path, expires) = ims::net::msrp::relay_auth(&mut s, &mut auth, WAIT)
        .await
        .expect("AUTH");
    assert_eq!(expires, 600);
    (s, use_path.iter().map(|u| u.as_str().to_owned()).collect())
}

/// An SDP with an MSRP `a=path` of several hops (relays first, our URI last).
fn sdp_path(user: &str, path: &[String], setup: Setup) -> String {
    format!(
        "v=0\r\no={user} 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
m=message 9 TCP/MSRP *\r\na=accept-types:text/plain\r\na=path:{}\r\n{}",
        path.join(" "),
        setup.line()
    )
}

/// RFC 4976 through the anchor: Alice and Bob each sit behind an MSRP relay (our
/// `MsrpRelay`), AUTH to it with digest credentials and put its Use-Path before their own URI
/// in `a=path` (two hops). Alice connects to her relay (the offerer is active), which opens a
/// connection to the anchor; Bob answers `passive`, so the anchor connects to Bob's relay and
/// sends its bind SEND with a two-hop To-Path. Messages and success REPORTs cross
/// relay → anchor → relay both ways, in order (the anchor reads two-hop From-Paths, writes
/// two-hop To-Paths, and answers each hop); a wrong password gets no Use-Path.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parties_behind_msrp_relays_chat_through_the_anchor() {
    let (relay, relay_uri) = relay();
    let anchor = start(ImSessionConfig {
        sip_addr: lo0(),
        msrp_addr: lo0(),
        ..ImSessionConfig::default()
    })
    .await
    .expect("anchor starts");

    // a wrong password: 401, no binding
    {
        use ims::msrp::relay::AuthClient;
        let mut s = TcpStream::connect(authority(&relay_uri)).await.unwrap();
        let mut auth = AuthClient::new(
            UriBuf::parse("msrp://127.0.0.1:9/mallory;tcp").unwrap(),
            UriBuf::parse(&relay_uri).unwrap(),
            "alice",
            "wrong",
            None,
            9,
        );
        let e = ims::net::msrp::relay_auth(&mut s, &mut auth, WAIT)
            .await
            .expect_err("refused");
        assert_eq!(e.kind(), std::io::ErrorKind::PermissionDenied, "{e}");
    }

    // both AUTH first (their URIs name the sessions they will run)
    let (a_sid, b_sid) = (rand_id(), rand_id());
    let a_local = format!("msrp://127.0.0.1:9/{a_sid};tcp");
    let b_local = format!("msrp://127.0.0.1:9/{b_sid};tcp");
    let (a_stream, a_use) = through_relay(&relay_uri, &a_local, "alice", "alice-pw").await;
    let (b_stream, b_use) = through_relay(&relay_uri, &b_local, "bob", "bob-pw").await;
    assert_eq!(relay.bindings(), 2);
    assert_ne!(a_use, b_use);

    // Bob's SIP side answers with his two-hop path, passive
    let (bob, mut b_in) = ua("bob").await;
    let bob_uri = format!("sip:bob@{}", bob.local_addr());
    let b_path: Vec<String> = b_use.iter().cloned().chain([b_local.clone()]).collect();
    let (offer_tx, mut offers) = mpsc::unbounded_channel();
    let answer = sdp_path("bob", &b_path, Setup::Passive);
    tokio::spawn(async move {
        while let Some(ev) = b_in.recv().await {
            match ev {
                UaEvent::IncomingInvite { txn, msg, .. } => {
                    let offer = msg.as_message().body().to_vec();
                    let a = Answer::new(200).body("application/sdp", answer.clone());
                    let _ = bob.respond(txn, a).await;
                    let _ = offer_tx.send(offer);
                }
                UaEvent::IncomingRequest { txn, .. } => {
                    let _ = bob.respond(txn, Answer::new(200)).await;
                }
                _ => {}
            }
        }
    });
    let mut bc = MsrpConnection::spawn(b_stream, ConnConfig::default());

    // Alice offers her two-hop path (no a=setup: the offerer connects, through her relay)
    let (alice, mut a_in) = ua("alice").await;
    tokio::spawn(async move { while a_in.recv().await.is_some() {} });
    let a_path: Vec<String> = a_use.iter().cloned().chain([a_local.clone()]).collect();
    let mut inv = alice
        .invite(InviteParams {
            request_uri: bob_uri.clone(),
            from: "<sip:alice@ims.example.org>".into(),
            to: format!("<{bob_uri}>"),
            remote: Remote::udp(anchor.sip_addr()),
            headers: vec![],
            body: Some((
                "application/sdp".into(),
                sdp_path("alice", &a_path, Setup::Default).into_bytes(),
            )),
        })
        .await
        .unwrap();
    let offer = tokio::time::timeout(WAIT, offers.recv())
        .await
        .expect("Bob gets the anchor's INVITE")
        .unwrap();
    let (anchor_b_path, _) = msrp_of(&offer);
    assert_eq!(anchor_b_path.len(), 1, "the anchor's own URI toward Bob");
    let b_remote: Vec<String> = b_use.iter().cloned().chain(anchor_b_path).collect();
    bc.add_session(session(&b_local, &b_remote)).await.unwrap();
    let ok = loop {
        let r = tokio::time::timeout(WAIT, inv.next())
            .await
            .expect("Alice's INVITE answered")
            .expect("a final response")
            .expect("no transport error");
        if r.as_message().status().unwrap() >= 200 {
            break r;
        }
    };
    assert_eq!(ok.as_message().status(), Some(200));
    let (anchor_a_path, _) = msrp_of(ok.as_message().body());
    let a_remote: Vec<String> = a_use.iter().cloned().chain(anchor_a_path).collect();
    let mut ac = MsrpConnection::spawn_with_sessions(
        a_stream,
        ConnConfig::default(),
        vec![session(&a_local, &a_remote)],
    );

    let a_legs = [Leg {
        sid: a_sid,
        peer_sdp: String::new(),
    }];
    let b_legs = [Leg {
        sid: b_sid,
        peer_sdp: String::new(),
    }];
    let n = 20;
    let a_ids = send_all(&ac, &a_legs, "a>b", n).await;
    let got_b = collect(&mut bc, n, 0).await;
    assert!(got_b.trouble.is_empty(), "Bob: {:?}", got_b.trouble);
    assert_eq!(texts(&got_b), expect(&b_legs, "a>b", n), "Bob's messages");
    let b_ids = send_all(&bc, &b_legs, "b>a", n).await;
    let (got_a, got_b) = tokio::join!(collect(&mut ac, n, n), collect(&mut bc, 0, n));
    assert!(got_a.trouble.is_empty(), "Alice: {:?}", got_a.trouble);
    assert!(got_b.trouble.is_empty(), "Bob: {:?}", got_b.trouble);
    assert_eq!(texts(&got_a), expect(&a_legs, "b>a", n), "Alice's messages");
    assert_eq!(success_reports(&got_a), a_ids, "Alice's success REPORTs");
    assert_eq!(success_reports(&got_b), b_ids, "Bob's success REPORTs");
    drop(anchor);
    relay.shutdown();
}

/// The anchor behind a relay of its own (RFC 4976; `ImSessionConfig::relay`): it AUTHs to the
/// relay at start (one binding), its `a=path` toward each party is the relay's Use-Path then
/// its own URI (and `c=`/`m=` name the relay), and all its MSRP runs over its one connection to
/// the relay: Alice (offering, so connecting) connects to the relay, the relay connects to Bob
/// (answering `passive`) when the anchor's bind SEND comes through; 20 messages each way with
/// success REPORTs, in order, and nobody ever connects to the anchor's own listener. A wrong
/// password stops the anchor from starting.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_anchor_behind_its_own_relay_chats_with_direct_parties() {
    use ims::nf::im_session::AnchorRelay;
    let (relay, relay_uri) = relay();
    let behind = |password: &str| ImSessionConfig {
        sip_addr: lo0(),
        msrp_addr: lo0(),
        relay: Some(AnchorRelay {
            uri: relay_uri.clone(),
            user: "im".into(),
            password: password.into(),
            ..AnchorRelay::default()
        }),
        ..ImSessionConfig::default()
    };
    let refused = start(behind("wrong")).await;
    assert!(refused.is_err(), "a wrong password: no anchor");
    assert_eq!(relay.bindings(), 0);
    let anchor = start(behind("im-pw")).await.expect("anchor starts");
    assert_eq!(relay.bindings(), 1, "the anchor authenticated");
    let stats = anchor.stats().clone();
    let own = anchor.msrp_addr();
    let relay_at = authority(&relay_uri);

    let mut p = pair_on(anchor, 1, Setup::Default, Setup::Passive).await;
    for (who, sdp) in [("A", &p.a_legs[0].peer_sdp), ("B", &p.b_legs[0].peer_sdp)] {
        let (path, _) = msrp_of(sdp.as_bytes());
        assert_eq!(path.len(), 2, "{who}: Use-Path, then the anchor: {sdp}");
        assert_eq!(authority(&path[0]), relay_at, "{who}: {sdp}");
        assert!(
            ims::msrp::Uri::parse(&path[0])
                .unwrap()
                .session_id()
                .is_some(),
            "{who}: the relay's Use-Path URI"
        );
        assert_eq!(authority(&path[1]), own, "{who}: {sdp}");
        let port = relay_at.port().to_string();
        assert!(
            sdp.contains(&format!("m=message {port} TCP/MSRP")),
            "{who}: m= names the relay: {sdp}"
        );
    }
    chat_through_relay(&mut p, &stats, 20).await;
    p.anchor.shutdown();
    relay.shutdown();
}

/// A TCP forwarder in front of the relay (the relay's URI names it, as a relay behind a
/// load balancer): [`CutProxy::cut_first`] drops the first connection it carried, and while
/// [`CutProxy::block`]ed it closes new ones at once (the relay unreachable).
struct CutProxy {
    blocked: Arc<std::sync::atomic::AtomicBool>,
    pipes: Arc<std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>>,
    accepted: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl CutProxy {
    fn start(l: TcpListener, to: SocketAddr) -> CutProxy {
        let blocked = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let pipes: Arc<std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>> = Arc::default();
        let accepted = Arc::new(AtomicUsize::new(0));
        let (b, p, n) = (blocked.clone(), pipes.clone(), accepted.clone());
        let task = tokio::spawn(async move {
            while let Ok((mut inside, _)) = l.accept().await {
                n.fetch_add(1, Ordering::Relaxed);
                if b.load(Ordering::Acquire) {
                    drop(inside);
                    continue;
                }
                let pipe = tokio::spawn(async move {
                    let Ok(mut outside) = TcpStream::connect(to).await else {
                        return;
                    };
                    let _ = tokio::io::copy_bidirectional(&mut inside, &mut outside).await;
                });
                p.lock().unwrap().push(pipe);
            }
        });
        CutProxy {
            blocked,
            pipes,
            accepted,
            task,
        }
    }

    fn block(&self, on: bool) {
        self.blocked.store(on, Ordering::Release);
    }

    /// Drops both ends of the first connection it carried.
    fn cut_first(&self) {
        self.pipes.lock().unwrap()[0].abort();
    }
}

impl Drop for CutProxy {
    fn drop(&mut self) {
        self.task.abort();
        for p in self.pipes.lock().unwrap().drain(..) {
            p.abort();
        }
    }
}

/// Waits up to `WAIT` for `f` to hold.
async fn until(what: &str, f: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !f() {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// An INVITE from Alice straight to the anchor: its final status and Retry-After.
async fn invite_status(p: &Pair) -> (u16, Option<String>) {
    let mut inv = p
        .alice
        .invite(InviteParams {
            request_uri: p.bob_uri.clone(),
            from: "<sip:alice@ims.example.org>".into(),
            to: format!("<{}>", p.bob_uri),
            remote: Remote::udp(p.anchor.sip_addr()),
            headers: vec![],
            body: Some((
                "application/sdp".into(),
                sdp("alice", p.a.port, &rand_id(), Setup::Default).into_bytes(),
            )),
        })
        .await
        .unwrap();
    loop {
        let r = tokio::time::timeout(WAIT, inv.next())
            .await
            .expect("answered")
            .expect("a final response")
            .expect("no transport error");
        let m = r.as_message();
        let code = m.status().unwrap();
        if code >= 200 {
            return (code, m.header_str("Retry-After").map(str::to_owned));
        }
    }
}

/// RFC 4976 §5 / RFC 4975 §5.4: the anchor's link to its own relay drops (the connection is
/// cut, and the relay stays unreachable for a while). The session that ran over it ends
/// cleanly: the anchor BYEs both parties (its Use-Path binding went with the connection, so
/// the paths it gave them lead nowhere); INVITEs meanwhile get 503 with Retry-After; the
/// anchor keeps retrying, connects and AUTHs again once the relay is reachable (a new
/// binding, a new Use-Path) and a new session between the same parties then works, with no
/// restart. (Before: the link was never re-established: no BYE, and every later session
/// failed.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_anchor_reconnects_to_its_relay_and_ends_the_sessions_of_the_lost_link() {
    use ims::msrp::relay::RelayConfig;
    use ims::nf::im_session::AnchorRelay;
    // the relay's URI names the proxy; everybody reaches the relay through it
    let front = TcpListener::bind(lo0()).await.unwrap();
    let relay_at = front.local_addr().unwrap();
    let relay_uri = format!("msrp://{relay_at};tcp");
    let inner = TcpListener::bind(lo0()).await.unwrap();
    let inner_at = inner.local_addr().unwrap();
    let relay = ims::net::msrp::MsrpRelay::start(
        inner,
        RelayConfig::new(UriBuf::parse(&relay_uri).unwrap(), "relay.example.org"),
        &[("im", "im-pw")],
        0x4976,
    )
    .expect("relay");
    let proxy = CutProxy::start(front, inner_at);
    let anchor = start(ImSessionConfig {
        sip_addr: lo0(),
        msrp_addr: lo0(),
        relay: Some(AnchorRelay {
            uri: relay_uri.clone(),
            user: "im".into(),
            password: "im-pw".into(),
            ..AnchorRelay::default()
        }),
        ..ImSessionConfig::default()
    })
    .await
    .expect("anchor starts");
    assert_eq!(relay.bindings(), 1, "the anchor authenticated");
    let mut p = pair_on(anchor, 1, Setup::Default, Setup::Passive).await;
    let (old_path, _) = msrp_of(p.a_legs[0].peer_sdp.as_bytes());
    assert_eq!(authority(&old_path[0]), relay_at, "the relay's Use-Path");
    exchange(&mut p, 5).await;

    // the anchor's link (the proxy's first connection) drops, and the relay stays
    // unreachable (Alice's own connection to it stays up)
    proxy.block(true);
    let tries = proxy.accepted.load(Ordering::Relaxed);
    proxy.cut_first();
    let byes = p.byes.clone();
    until("both parties get a BYE", || {
        byes.iter().all(|b| b.load(Ordering::Relaxed) == 1)
    })
    .await;
    until("the relay dropped the anchor's binding", || {
        relay.bindings() == 0
    })
    .await;
    assert_eq!(p.anchor.stats().relay_links.load(Ordering::Relaxed), 0);
    let (code, retry) = invite_status(&p).await;
    assert_eq!(code, 503, "no session while the relay link is down");
    assert!(retry.is_some(), "503 with Retry-After");
    let accepted = proxy.accepted.clone();
    until("the anchor tries again", || {
        accepted.load(Ordering::Relaxed) >= tries + 2
    })
    .await;
    assert_eq!(p.anchor.stats().active.load(Ordering::Relaxed), 0);

    // reachable again: a new link, a new binding and Use-Path, and a new session works
    proxy.block(false);
    let stats = p.anchor.stats().clone();
    until("the anchor authenticated again", || {
        relay.bindings() == 1 && stats.relay_links.load(Ordering::Relaxed) == 1
    })
    .await;
    for (c, leg) in [(&p.a.conn, &p.a_legs[0]), (&p.b.conn, &p.b_legs[0])] {
        c.as_ref().unwrap().remove_session(&leg.sid).await.unwrap();
    }
    p.a_legs.clear();
    p.b_legs.clear();
    let a_port = p.a.port;
    let (a_local, anchor_a_path) = invite(&mut p, a_port, Setup::Default).await;
    assert_eq!(authority(&anchor_a_path[0]), relay_at);
    assert_ne!(anchor_a_path[0], old_path[0], "a new Use-Path");
    p.a.add(session(&a_local, &anchor_a_path), &anchor_a_path, true)
        .await;
    exchange(&mut p, 5).await;
    assert_eq!(p.anchor.stats().active.load(Ordering::Relaxed), 1);
    assert!(
        byes.iter().all(|b| b.load(Ordering::Relaxed) == 1),
        "only the old session was ended"
    );
    p.anchor.shutdown();
    relay.shutdown();
}

/// Host names in MSRP URIs (RFC 4975 §6.2: the URI's host and port; resolved through the
/// system resolver, every address tried within the connect timeout). Everything listens on
/// 127.0.0.1 only.
/// 1. B answers `passive` with an `a=path` naming `localhost`: the anchor resolves the name,
///    connects to B, and reuses that connection for B's second session (one accept at B);
///    10 messages each way per session with success REPORTs.
/// 2. The anchor's own relay is named `localhost` (its configured URI and the Use-Path it
///    grants): the anchor connects and AUTHs by that name, and the sides whose paths start
///    with the Use-Path go over that one authenticated link (the anchor's only MSRP
///    connection), never a plain connection to the relay; 10 messages each way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn msrp_uris_naming_a_host_are_resolved() {
    use ims::nf::im_session::AnchorRelay;
    // 1. a party named by a host name
    let anchor = start(ImSessionConfig {
        sip_addr: lo0(),
        msrp_addr: lo0(),
        ..ImSessionConfig::default()
    })
    .await
    .expect("anchor starts");
    let stats = anchor.stats().clone();
    let mut p = pair_named(anchor, 2, Setup::Default, Setup::Passive, "localhost").await;
    for l in &p.b_legs {
        let (path, _) = msrp_of(l.peer_sdp.as_bytes());
        assert_eq!(path.len(), 1, "the anchor's own URI toward B");
    }
    exchange(&mut p, 10).await;
    assert_eq!(
        p.b.accepts.load(Ordering::Relaxed),
        1,
        "the anchor connected to B by its name once and reused the connection"
    );
    assert_eq!(stats.sessions.load(Ordering::Relaxed), 2);
    p.anchor.shutdown();

    // 2. the anchor's relay named by a host name
    let (relay, relay_uri) = relay_named("localhost");
    assert!(relay_uri.starts_with("msrp://localhost:"), "{relay_uri}");
    let anchor = start(ImSessionConfig {
        sip_addr: lo0(),
        msrp_addr: lo0(),
        relay: Some(AnchorRelay {
            uri: relay_uri.clone(),
            user: "im".into(),
            password: "im-pw".into(),
            ..AnchorRelay::default()
        }),
        ..ImSessionConfig::default()
    })
    .await
    .expect("the anchor reaches its relay by name");
    assert_eq!(relay.bindings(), 1, "the anchor authenticated");
    let stats = anchor.stats().clone();
    let mut p = pair_on(anchor, 1, Setup::Default, Setup::Passive).await;
    for (who, sdp) in [("A", &p.a_legs[0].peer_sdp), ("B", &p.b_legs[0].peer_sdp)] {
        let (path, _) = msrp_of(sdp.as_bytes());
        assert_eq!(path.len(), 2, "{who}: Use-Path, then the anchor: {sdp}");
        assert!(
            path[0].starts_with("msrp://localhost:"),
            "{who}: the Use-Path names the relay by name: {sdp}"
        );
    }
    chat_through_relay(&mut p, &stats, 10).await;
    p.anchor.shutdown();
    relay.shutdown();
}

/// The `orig` double anchoring (TS 24.229 §5.4.3.1, §5.7.3): an INVITE reaching the anchor
/// with no Route left gets a B leg to the caller's S-CSCF with `orig`; our S-CSCF then runs the
/// caller's originating iFC from the start and the IM iFC sends that B leg to the anchor once
/// more, now with the S-CSCF's `odi` Route. Here a scripted S-CSCF does exactly that (it sends
/// the anchor's B leg back to the anchor with `Route: <anchor;lr>, <odi;lr>`, the odi Route
/// leading to Bob, and answers the B leg with what it gets). The anchor recognises its own B
/// leg (its offer names the anchor's B-side URI) and relays it toward the odi Route instead of
/// anchoring it again: Bob's offer names the same anchor URI the first B leg offered, the
/// anchor holds ONE session, and Alice and Bob chat through it (10 messages each way with
/// success REPORTs); Alice's BYE reaches Bob through the relayed dialog.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_own_b_leg_coming_back_is_relayed_not_anchored_twice() {
    use ims::nf::im_session::ServingScscf;
    let (scscf, mut s_in) = ua("scscf").await;
    let scscf_uri = format!("sip:{}", scscf.local_addr());
    let anchor = start(ImSessionConfig {
        sip_addr: lo0(),
        msrp_addr: lo0(),
        serving: Some(ServingScscf::new(move |_| Some(scscf_uri.clone()))),
        ..ImSessionConfig::default()
    })
    .await
    .expect("anchor starts");
    let anchor_sip = anchor.sip_addr();
    let stats = anchor.stats().clone();
    // where Bob's SIP endpoint is: known once `pair_named` made it (it is the B leg's R-URI)
    let (first_offer_tx, mut first_offers) = mpsc::unbounded_channel::<String>();
    let (back_tx, mut backs) = mpsc::unbounded_channel::<u16>();
    tokio::spawn(async move {
        // the returning leg's dialog: a BYE on the first B leg is passed to it
        let mut returning: Option<DialogId> = None;
        while let Some(ev) = s_in.recv().await {
            let UaEvent::IncomingInvite { txn, msg, .. } = ev else {
                match ev {
                    UaEvent::IncomingRequest { txn, .. } => {
                        let _ = scscf.respond(txn, Answer::new(200)).await;
                    }
                    UaEvent::DialogTerminated {
                        reason: EndReason::ByeReceived,
                        ..
                    } => {
                        if let Some(d) = returning.take() {
                            let _ = scscf.bye(&d).await;
                        }
                    }
                    _ => {}
                }
                continue;
            };
            let m = msg.as_message();
            let route = m.header_str("Route").unwrap_or_default().to_string();
            assert!(route.contains(";orig"), "the B leg asks for orig: {route}");
            let ruri = m.request_uri_str().unwrap().to_string();
            let bob = ruri.rsplit('@').next().unwrap().to_string();
            let body = m.body().to_vec();
            let _ = first_offer_tx.send(String::from_utf8_lossy(&body).into_owned());
            let pai = m
                .header_str("P-Asserted-Identity")
                .unwrap_or("<sip:alice@ims.example.org>")
                .to_string();
            // the originating iFC: to the IM AS (the anchor), then on from the odi
            let inv = scscf
                .invite(InviteParams {
                    request_uri: ruri.clone(),
                    from: "<sip:alice@ims.example.org>".into(),
                    to: format!("<{ruri}>"),
                    remote: Remote::udp(anchor_sip),
                    headers: vec![
                        ("Route".into(), format!("<sip:{anchor_sip};lr>")),
                        ("Route".into(), format!("<sip:orig@{bob};odi=7;lr>")),
                        ("P-Asserted-Identity".into(), pai),
                    ],
                    body: Some(("application/sdp".into(), body)),
                })
                .await
                .unwrap();
            let r = inv
                .final_response()
                .await
                .expect("the returning leg answered");
            let rm = r.as_message();
            let code = rm.status().unwrap();
            returning = DialogId::of_received_response(&rm);
            let _ = back_tx.send(code);
            let mut a = Answer::new(code);
            if code == 200 {
                a = a.body("application/sdp", rm.body().to_vec());
            }
            let _ = scscf.respond(txn, a).await;
        }
    });
    let mut p = pair_named(anchor, 1, Setup::Default, Setup::Passive, "127.0.0.1").await;
    let first = tokio::time::timeout(WAIT, first_offers.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        backs.try_recv().ok(),
        Some(200),
        "the returning leg got 200"
    );
    let (first_path, _) = msrp_of(first.as_bytes());
    let (bob_path, _) = msrp_of(p.b_legs[0].peer_sdp.as_bytes());
    assert_eq!(
        bob_path, first_path,
        "Bob is offered the URI of the first anchoring, not a second anchor's"
    );
    assert_eq!(stats.sessions.load(Ordering::Relaxed), 1, "anchored once");
    exchange(&mut p, 10).await;
    assert_eq!(stats.sessions.load(Ordering::Relaxed), 1, "anchored once");
    // Alice hangs up: anchor → (B leg) scripted S-CSCF → (returning leg) anchor → Bob
    let bye = p.alice.bye(&p.a_dialogs[0]).await.unwrap();
    let done = tokio::time::timeout(WAIT, bye.final_response()).await;
    assert!(done.is_ok(), "Alice's BYE answered");
    let bob_byes = p.byes[1].clone();
    until("Bob gets the BYE", || bob_byes.load(Ordering::Relaxed) == 1).await;
    p.anchor.shutdown();
}
