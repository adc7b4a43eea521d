//! RFC 4976 relays: the AUTH exchange, Use-Path and Expires, and the §7 flow Alice → relay A →
//! relay B → Bob replayed through the session and relay cores with byte-level framing.

// The virtual clock starts at an arbitrary real instant; nothing here waits on it.
#![allow(clippy::disallowed_methods)]

use ims_msrp::relay::{
    digest_response, AuthClient, AuthOutcome, ConnId, Relay, RelayConfig, Target,
};
use ims_msrp::session::{Config, Outgoing, Session, SessionEvent};
use ims_msrp::{parse_frame, Event, Frame, Framer, Limits, UriBuf};
use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

const ALICE: &str = "msrps://alice.example.com:1234/847rl;tcp";
const BOB: &str = "msrps://bob.example.net:8145/foo;tcp";
const RELAY_A: &str = "msrps://relayA.example.com:9000;tcp";
const RELAY_B: &str = "msrps://relayB.example.net:9000;tcp";

fn uri(s: &str) -> UriBuf {
    UriBuf::parse(s).unwrap()
}

/// Runs an AUTH exchange between a client and a relay on connection `conn`; returns the
/// outcome and every frame seen.
fn auth(
    relay: &mut Relay,
    client: &mut AuthClient,
    conn: ConnId,
    now: Instant,
) -> (AuthOutcome, Vec<Frame>) {
    let mut wire = client.start();
    let mut seen = Vec::new();
    for _ in 0..5 {
        let (req, _) = parse_frame(&wire).unwrap();
        seen.push(req.clone());
        relay.handle_frame(now, conn, req);
        let out = relay.poll_output().unwrap();
        assert_eq!(out.target, Target::Conn(conn));
        assert!(relay.poll_output().is_none());
        let (resp, _) = parse_frame(&out.frame.to_vec()).unwrap();
        seen.push(resp.clone());
        match client.handle_response(&resp.head) {
            AuthOutcome::Send(w) => wire = w,
            done => return (done, seen),
        }
    }
    panic!("AUTH did not finish")
}

fn relay(u: &str, realm: &str) -> Relay {
    let seed = u
        .bytes()
        .fold(7u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b)));
    let mut r = Relay::new(RelayConfig::new(uri(u), realm), seed);
    r.add_user("alice", "wonderland");
    r.add_user("bob", "builder");
    r
}

/// RFC 4976 §5.1 / §7: AUTH without credentials gets a 401 digest challenge; the retry with
/// credentials gets 200 with Use-Path and Expires.
#[test]
fn auth_challenge_then_use_path() {
    let now = Instant::now();
    let mut a = relay(RELAY_A, "relayA.example.com");
    let mut c = AuthClient::new(
        uri(ALICE),
        uri(RELAY_A),
        "alice",
        "wonderland",
        Some(900),
        5,
    );
    let (out, seen) = auth(&mut a, &mut c, 1, now);
    assert_eq!(seen.len(), 4);
    assert_eq!(seen[1].head.status(), Some(401));
    let ch = seen[1].head.www_authenticate().unwrap().unwrap();
    assert_eq!(ch.get("realm"), Some("relayA.example.com"));
    assert_eq!(ch.get("qop"), Some("auth"));
    let cred = seen[2].head.authorization().unwrap().unwrap();
    // the response is the RFC 2617 digest over method AUTH and the To-Path URI
    let expect = digest_response(
        "alice",
        "relayA.example.com",
        "wonderland",
        ch.get("nonce").unwrap(),
        cred.get("nc").unwrap(),
        cred.get("cnonce").unwrap(),
        RELAY_A,
    );
    assert_eq!(cred.get("response"), Some(expect.as_str()));
    assert_eq!(seen[3].head.status(), Some(200));
    for f in &seen {
        f.check().unwrap();
    }
    match out {
        AuthOutcome::Done { use_path, expires } => {
            assert_eq!(expires, 900);
            let u = use_path[0].uri();
            assert!(u.session_id().is_some());
            assert_eq!(u.host_str(), "relayA.example.com");
            assert_eq!(u.port(), Some(9000));
        }
        o => panic!("{o:?}"),
    }
    assert_eq!(a.bindings(), 1);
    // the binding expires with Expires
    a.handle_timeout(now + Duration::from_secs(899));
    assert_eq!(a.bindings(), 1);
    a.handle_timeout(now + Duration::from_secs(900));
    assert_eq!(a.bindings(), 0);
}

/// Known digest values (RFC 2617 §3.2.2 computation with MSRP's method and URI): a fixed
/// input gives a fixed response, and any change changes it.
#[test]
fn digest_math() {
    let r = digest_response(
        "alice",
        "relay.example.com",
        "secret",
        "dcd98b7102dd2f0e8b11d0f600bfb0c093",
        "00000001",
        "0a4f113b",
        "msrps://alice@relay.example.com;tcp",
    );
    assert_eq!(r.len(), 32);
    assert!(r.bytes().all(|b| b.is_ascii_hexdigit()));
    // HA1 = MD5("alice:relay.example.com:secret"), HA2 = MD5("AUTH:msrps://alice@relay.example.com;tcp")
    // computed independently with coreutils md5sum:
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg("h1=$(printf 'alice:relay.example.com:secret' | md5sum | cut -c1-32); h2=$(printf 'AUTH:msrps://alice@relay.example.com;tcp' | md5sum | cut -c1-32); printf \"$h1:dcd98b7102dd2f0e8b11d0f600bfb0c093:00000001:0a4f113b:auth:$h2\" | md5sum | cut -c1-32")
        .output();
    if let Ok(o) = out {
        if o.status.success() {
            assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), r);
        }
    }
}

/// Wrong password: challenged again and never authorized; Expires below Min-Expires: 423 then
/// a retry with Min-Expires; above the maximum: capped.
#[test]
fn auth_failures_and_expires_bounds() {
    let now = Instant::now();
    let mut a = relay(RELAY_A, "relayA.example.com");
    let mut c = AuthClient::new(uri(ALICE), uri(RELAY_A), "alice", "wrong", None, 5);
    let (out, seen) = auth(&mut a, &mut c, 1, now);
    assert_eq!(out, AuthOutcome::Failed(401));
    assert_eq!(
        seen.iter().filter(|f| f.head.status() == Some(401)).count(),
        2
    );
    assert_eq!(a.bindings(), 0);

    let mut c = AuthClient::new(uri(ALICE), uri(RELAY_A), "alice", "wonderland", Some(10), 6);
    let (out, seen) = auth(&mut a, &mut c, 1, now);
    let s: Vec<_> = seen.iter().filter_map(|f| f.head.status()).collect();
    assert_eq!(s, [401, 423, 401, 200]);
    assert_eq!(seen[3].head.min_expires().unwrap(), Some(60));
    assert!(matches!(out, AuthOutcome::Done { expires: 60, .. }));

    let mut c = AuthClient::new(
        uri(ALICE),
        uri(RELAY_A),
        "alice",
        "wonderland",
        Some(99_999),
        7,
    );
    let (out, _) = auth(&mut a, &mut c, 1, now);
    assert!(matches!(out, AuthOutcome::Done { expires: 3600, .. }));
}

/// A byte-level network of sessions and relays.
struct Net {
    now: Instant,
    alice: Session,
    bob: Session,
    a: Relay,
    b: Relay,
    /// (node, conn) -> framer
    framers: HashMap<(&'static str, ConnId), Framer>,
    wire: VecDeque<(&'static str, ConnId, Vec<u8>)>,
    /// every frame delivered to a node, as it arrived
    log: Vec<(&'static str, Frame)>,
    threshold: usize,
}

// connection ids: at A, alice = 1 and B = 100; at B, bob = 2 and A = 200; sessions use 0.
impl Net {
    fn deliver(&mut self, node: &'static str, conn: ConnId, bytes: &[u8]) {
        let th = self.threshold;
        let f = self.framers.entry((node, conn)).or_insert_with(|| {
            Framer::new(Limits {
                stream_threshold: th,
                ..Limits::default()
            })
        });
        f.push(bytes);
        let mut evs = Vec::new();
        while let Some(ev) = f.poll().unwrap() {
            evs.push(ev);
        }
        for ev in evs {
            if let Event::Frame(fr) = &ev {
                self.log.push((node, fr.clone()));
            }
            match node {
                "alice" => self.alice.handle_event(self.now, ev),
                "bob" => self.bob.handle_event(self.now, ev),
                "A" => self.a.handle_event(self.now, conn, ev),
                "B" => self.b.handle_event(self.now, conn, ev),
                _ => unreachable!(),
            }
        }
    }

    fn run(&mut self) {
        for _ in 0..10_000 {
            while let Some(t) = self.alice.poll_transmit(self.now) {
                self.wire.push_back(("A", 1, t.to_vec()));
            }
            while let Some(t) = self.bob.poll_transmit(self.now) {
                self.wire.push_back(("B", 2, t.to_vec()));
            }
            while let Some(o) = self.a.poll_output() {
                let dest = match o.target {
                    Target::Conn(1) => ("alice", 0),
                    Target::Conn(100) => ("B", 200),
                    Target::Uri(u) if u.uri().host_str() == "relayB.example.net" => ("B", 200),
                    t => panic!("A routes to {t:?}"),
                };
                self.wire.push_back((dest.0, dest.1, o.frame.to_vec()));
            }
            while let Some(o) = self.b.poll_output() {
                let dest = match o.target {
                    Target::Conn(2) => ("bob", 0),
                    Target::Conn(200) => ("A", 100),
                    Target::Uri(u) if u.uri().host_str() == "relayA.example.com" => ("A", 100),
                    t => panic!("B routes to {t:?}"),
                };
                self.wire.push_back((dest.0, dest.1, o.frame.to_vec()));
            }
            let Some((node, conn, bytes)) = self.wire.pop_front() else {
                return;
            };
            // split every write in two to exercise the framers
            let (x, y) = bytes.split_at(bytes.len() / 2);
            self.deliver(node, conn, x);
            self.deliver(node, conn, y);
        }
        panic!("network did not settle");
    }
}

fn setup(threshold: usize, chunk: usize) -> (Net, String, String) {
    let now = Instant::now();
    let mut a = relay(RELAY_A, "relayA.example.com");
    let mut b = relay(RELAY_B, "relayB.example.net");
    let mut ca = AuthClient::new(uri(ALICE), uri(RELAY_A), "alice", "wonderland", None, 1);
    let AuthOutcome::Done { use_path: ua, .. } = auth(&mut a, &mut ca, 1, now).0 else {
        panic!()
    };
    let mut cb = AuthClient::new(uri(BOB), uri(RELAY_B), "bob", "builder", None, 2);
    let AuthOutcome::Done { use_path: ub, .. } = auth(&mut b, &mut cb, 2, now).0 else {
        panic!()
    };
    let (ua, ub) = (ua[0].clone(), ub[0].clone());
    // Alice's To-Path: her relay, Bob's relay (from Bob's SDP path), Bob
    let mut cfg_a = Config::new(uri(ALICE), vec![ua.clone(), ub.clone(), uri(BOB)]);
    cfg_a.chunk_size = chunk;
    let mut cfg_b = Config::new(uri(BOB), vec![ub.clone(), ua.clone(), uri(ALICE)]);
    cfg_b.chunk_size = chunk;
    let net = Net {
        now,
        alice: Session::new(cfg_a, 11),
        bob: Session::new(cfg_b, 12),
        a,
        b,
        framers: HashMap::new(),
        wire: VecDeque::new(),
        log: Vec::new(),
        threshold,
    };
    (net, ua.as_str().to_owned(), ub.as_str().to_owned())
}

/// RFC 4976 §7: the SEND's To-Path loses a URI and its From-Path gains one at each relay;
/// responses are hop by hop; the success REPORT travels back end to end.
#[test]
fn rfc4976_flow_through_two_relays() {
    let (mut net, ua, ub) = setup(usize::MAX, 2048);
    let mut m = Outgoing::new("text/plain", "Hi, Bob. It's Alice.");
    m.success_report = true;
    let id = net.alice.send(m);
    net.run();
    let evs: Vec<_> = std::iter::from_fn(|| net.bob.poll_event()).collect();
    assert!(
        matches!(&evs[..], [SessionEvent::Message { body, .. }] if &body[..] == b"Hi, Bob. It's Alice."),
        "{evs:?}"
    );
    let at = |node: &str, method: &str| {
        net.log
            .iter()
            .find(|(n, f)| *n == node && f.head.method().is_some_and(|m| m.as_str() == method))
            .map(|(_, f)| f.clone())
            .unwrap()
    };
    let s_a = at("A", "SEND");
    assert_eq!(
        s_a.head.header("To-Path").unwrap(),
        format!("{ua} {ub} {BOB}")
    );
    assert_eq!(s_a.head.header("From-Path").unwrap(), ALICE);
    let s_b = at("B", "SEND");
    assert_eq!(s_b.head.header("To-Path").unwrap(), format!("{ub} {BOB}"));
    assert_eq!(
        s_b.head.header("From-Path").unwrap(),
        format!("{ua} {ALICE}")
    );
    let s_bob = at("bob", "SEND");
    assert_eq!(s_bob.head.header("To-Path").unwrap(), BOB);
    assert_eq!(
        s_bob.head.header("From-Path").unwrap(),
        format!("{ub} {ua} {ALICE}")
    );
    // new transaction id per hop, same Message-ID
    let tids: std::collections::HashSet<_> = [&s_a, &s_b, &s_bob]
        .iter()
        .map(|f| f.head.transaction_id().to_owned())
        .collect();
    assert_eq!(tids.len(), 3);
    assert!([&s_a, &s_b, &s_bob]
        .iter()
        .all(|f| f.head.message_id() == Some(id.as_str())));
    // hop-by-hop 200s: Alice's from A (From-Path = A's Use-Path), Bob's consumed by B
    let ok_alice: Vec<_> = net
        .log
        .iter()
        .filter(|(n, f)| *n == "alice" && f.head.status() == Some(200))
        .collect();
    assert_eq!(ok_alice.len(), 1);
    assert_eq!(ok_alice[0].1.head.header("From-Path").unwrap(), ua);
    let oks = |node: &str| {
        net.log
            .iter()
            .filter(|(n, f)| *n == node && f.head.status() == Some(200))
            .map(|(_, f)| f.head.header("From-Path").unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    // each hop answers its own previous hop, once: nothing is forwarded back
    assert_eq!(oks("B"), [BOB]);
    assert_eq!(oks("A"), std::slice::from_ref(&ub));
    // the REPORT arrives at Alice with the reversed path
    let r = at("alice", "REPORT");
    assert_eq!(r.head.header("To-Path").unwrap(), ALICE);
    assert_eq!(
        r.head.header("From-Path").unwrap(),
        format!("{ua} {ub} {BOB}")
    );
    let evs: Vec<_> = std::iter::from_fn(|| net.alice.poll_event()).collect();
    assert!(
        matches!(&evs[..], [SessionEvent::Report { status: 200, .. }]),
        "{evs:?}"
    );
    for (_, f) in &net.log {
        f.check().unwrap();
    }
}

/// Large chunks stream through both relays without being buffered whole, interleaved with a
/// chat message, and arrive intact.
#[test]
fn streamed_chunks_pass_through_relays() {
    let (mut net, _, _) = setup(256, 50_000);
    let big: Vec<u8> = (0..300_000u32).map(|i| (i * 31 % 253) as u8).collect();
    net.alice
        .send(Outgoing::new("application/octet-stream", big.clone()));
    net.alice.send(Outgoing::new("text/plain", "meanwhile"));
    net.run();
    let evs: Vec<_> = std::iter::from_fn(|| net.bob.poll_event()).collect();
    let bodies: Vec<_> = evs
        .iter()
        .filter_map(|e| match e {
            SessionEvent::Message { body, .. } => Some(body.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(bodies.len(), 2, "{evs:?}");
    assert_eq!(&bodies[0][..], b"meanwhile");
    assert_eq!(&bodies[1][..], &big[..]);
}

/// A relay that cannot deliver answers the previous hop 481; an error from the next hop
/// becomes a failure REPORT to the sender (RFC 4976 §6.4).
#[test]
fn relay_failures() {
    let (mut net, ua, _) = setup(usize::MAX, 2048);
    // B forgets Bob: Bob's Use-Path is gone, B answers A with 481, A reports to Alice
    net.b.connection_closed(2);
    let id = net.alice.send(Outgoing::new("text/plain", "anyone?"));
    net.run();
    assert!(net
        .log
        .iter()
        .any(|(n, f)| *n == "A" && f.head.status() == Some(481)));
    let rep = net
        .log
        .iter()
        .find(|(n, f)| *n == "alice" && f.head.method().is_some_and(|m| m.as_str() == "REPORT"))
        .unwrap();
    assert_eq!(
        rep.1.head.header("Status"),
        Some("000 481 Session does not exist")
    );
    assert_eq!(rep.1.head.header("From-Path"), Some(RELAY_A));
    let _ = ua;
    let evs: Vec<_> = std::iter::from_fn(|| net.alice.poll_event()).collect();
    assert!(evs.iter().any(|e| matches!(e, SessionEvent::Report { message_id, status: 481, .. } if *message_id == id)), "{evs:?}");
}

/// RFC 4976 §5.2: a client AUTHing again on its connection (a refresh before the binding
/// expires) keeps its Use-Path and gets a new expiry; an AUTH on another connection is a new
/// binding with its own Use-Path.
#[test]
fn a_refresh_keeps_the_use_path_and_moves_the_expiry() {
    let now = Instant::now();
    let mut a = relay(RELAY_A, "relayA.example.com");
    let up = |o: AuthOutcome| match o {
        AuthOutcome::Done { use_path, .. } => use_path[0].as_str().to_owned(),
        o => panic!("{o:?}"),
    };
    let mut c = AuthClient::new(
        uri(ALICE),
        uri(RELAY_A),
        "alice",
        "wonderland",
        Some(600),
        1,
    );
    let first = up(auth(&mut a, &mut c, 1, now).0);
    let later = now + Duration::from_secs(500);
    let mut c = AuthClient::new(
        uri(ALICE),
        uri(RELAY_A),
        "alice",
        "wonderland",
        Some(600),
        2,
    );
    let again = up(auth(&mut a, &mut c, 1, later).0);
    assert_eq!(first, again, "the same Use-Path");
    assert_eq!(a.bindings(), 1);
    a.handle_timeout(now + Duration::from_secs(700));
    assert_eq!(a.bindings(), 1, "the refresh moved the expiry");
    a.handle_timeout(later + Duration::from_secs(600));
    assert_eq!(a.bindings(), 0);
    // another connection: another binding
    let mut c = AuthClient::new(
        uri(ALICE),
        uri(RELAY_A),
        "alice",
        "wonderland",
        Some(600),
        3,
    );
    let one = up(auth(&mut a, &mut c, 1, later).0);
    let mut c = AuthClient::new(
        uri(ALICE),
        uri(RELAY_A),
        "alice",
        "wonderland",
        Some(600),
        4,
    );
    let two = up(auth(&mut a, &mut c, 2, later).0);
    assert_ne!(one, two);
    assert_eq!(a.bindings(), 2);
}

/// A client runs any number of sessions over the connection it authenticated on, one MSRP URI
/// each (RFC 4975 §5.4): a SEND whose To-Path names the client's Use-Path and then another of
/// its URIs (same authority, another session-id) goes on the client's connection, not to a
/// new one; a URI of another authority after the Use-Path goes out by URI, and so does a
/// frame the client itself sends out through its relay.
#[test]
fn a_clients_other_sessions_reach_it_on_its_connection() {
    let now = Instant::now();
    let mut a = relay(RELAY_A, "relayA.example.com");
    let mut c = AuthClient::new(uri(ALICE), uri(RELAY_A), "alice", "wonderland", None, 1);
    let AuthOutcome::Done { use_path, .. } = auth(&mut a, &mut c, 1, now).0 else {
        panic!()
    };
    let up = use_path[0].as_str().to_owned();
    let other_session = "msrps://alice.example.com:1234/another-one;tcp";
    let elsewhere = "msrps://alice.example.com:1235/847rl;tcp";
    // (from, to, where): from 7, a previous hop; from 1, Alice herself sending out through her
    // relay to a peer whose URI has her authority (only her own exact URI would come back)
    for (from, to, expect) in [
        (7, other_session, Target::Conn(1)),
        (7, elsewhere, Target::Uri(uri(elsewhere))),
        (1, other_session, Target::Uri(uri(other_session))),
    ] {
        let send = ims_msrp::FrameBuilder::request("tr0001", "SEND")
            .to_path(&format!("{up} {to}"))
            .from_path(BOB)
            .header("Message-ID", "msg0001")
            .header("Byte-Range", "1-2/2")
            .body("text/plain", &b"hi"[..])
            .to_bytes();
        let (f, _) = parse_frame(&send).unwrap();
        a.handle_frame(now, from, f);
        let outs: Vec<_> = std::iter::from_fn(|| a.poll_output()).collect();
        let (answer, fwd): (Vec<_>, Vec<_>) = outs.iter().partition(|o| {
            o.target == Target::Conn(from) && o.frame.head.starts_with(b"MSRP tr0001 200")
        });
        assert_eq!(answer.len(), 1, "the sender's hop is answered: {outs:?}");
        assert_eq!(fwd.len(), 1, "{outs:?}");
        assert_eq!(fwd[0].target, expect, "{to}");
    }
}
