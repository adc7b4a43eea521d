//! Proxy core (RFC 3261 §16) against UA cores on a virtual clock: forking with best-response
//! selection and CANCEL of the other branches, Record-Route and Route processing, loop
//! detection, Max-Forwards, sequential forking and Timer C.

use bytes::Bytes;
use ims_sip::{HeaderName, Method, OwnedMessage, RequestBuilder};
use ims_txn::dialog::DialogId;
use ims_txn::proxy::{ForkMode, Proxy, ProxyConfig, ProxyEvent, ProxyOutput, Target};
use ims_txn::ua::{Answer, EndReason, InviteParams, UaConfig, UaEvent, UaOutput, UserAgent};
use ims_txn::{Remote, TimerConfig, TxnId};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

const A: usize = 0;
const P: usize = 1;
const B1: usize = 2;
const B2: usize = 3;

fn ip(i: usize) -> &'static str {
    ["10.0.0.1", "10.0.0.100", "10.0.0.2", "10.0.0.3"][i]
}
fn addr(i: usize) -> SocketAddr {
    format!("{}:5060", ip(i)).parse().unwrap()
}
fn node_of(a: SocketAddr) -> usize {
    (0..4).find(|i| addr(*i) == a).expect("known node")
}
/// The test's "DNS": a SIP URI with an IP host to a UDP remote.
fn resolve(uri: &str) -> Remote {
    let u = ims_sip::Uri::parse(uri).unwrap();
    let s = u.as_sip().unwrap();
    let a: SocketAddr = format!("{}:{}", s.host(), s.port().unwrap_or(5060))
        .parse()
        .unwrap();
    Remote::udp(a)
}

fn ua_cfg(i: usize, seed: u64) -> UaConfig {
    UaConfig {
        contact: format!("sip:user@{}:5060", ip(i)),
        sent_by: format!("{}:5060", ip(i)),
        seed,
        ..UaConfig::default()
    }
}

struct World {
    ua: Vec<Option<UserAgent>>,
    proxy: Proxy,
    t0: Instant,
    now: Instant,
    in_flight: Vec<(Instant, usize, usize, Bytes)>,
    events: Vec<(u64, usize, UaEvent)>,
    proxy_events: Vec<(u64, ProxyEvent)>,
    wire: Vec<(u64, usize, usize, String)>,
    /// the proxy's routing decision for initial requests
    targets: Vec<usize>,
    mode: ForkMode,
}

impl World {
    fn new(pcfg: ProxyConfig) -> Self {
        #[allow(clippy::disallowed_methods)] // origin of the virtual clock
        let t0 = Instant::now();
        World {
            ua: vec![
                Some(UserAgent::new(ua_cfg(A, 1))),
                None,
                Some(UserAgent::new(ua_cfg(B1, 2))),
                Some(UserAgent::new(ua_cfg(B2, 3))),
            ],
            proxy: Proxy::new(pcfg),
            t0,
            now: t0,
            in_flight: Vec::new(),
            events: Vec::new(),
            proxy_events: Vec::new(),
            wire: Vec::new(),
            targets: vec![B1, B2],
            mode: ForkMode::Parallel,
        }
    }
    fn default_proxy() -> ProxyConfig {
        ProxyConfig {
            uri: "sip:10.0.0.100:5060".into(),
            sent_by: "10.0.0.100:5060".into(),
            local_hosts: vec!["10.0.0.100".into()],
            ..ProxyConfig::default()
        }
    }
    fn t(&self) -> u64 {
        (self.now - self.t0).as_millis() as u64
    }
    fn ship(&mut self, from: usize, remote: Remote, bytes: Bytes) {
        let to = node_of(remote.addr);
        let line = ims_sip::parse_datagram(&bytes)
            .unwrap()
            .start_line_str()
            .to_owned();
        let t = self.t();
        self.wire.push((t, from, to, line));
        self.in_flight.push((self.now + ms(5), from, to, bytes));
    }
    fn collect(&mut self) {
        loop {
            let mut progress = false;
            for i in [A, B1, B2] {
                while let Some(o) = self.ua[i].as_mut().unwrap().poll_output() {
                    progress = true;
                    match o {
                        UaOutput::Transmit(tx) => self.ship(i, tx.remote, tx.bytes),
                        UaOutput::Event(e) => {
                            let t = self.t();
                            self.events.push((t, i, e));
                        }
                    }
                }
            }
            while let Some(o) = self.proxy.poll_output() {
                progress = true;
                match o {
                    ProxyOutput::Transmit(tx) => self.ship(P, tx.remote, tx.bytes),
                    ProxyOutput::Event(e) => {
                        let t = self.t();
                        self.proxy_events.push((t, e.clone()));
                        self.route(e);
                    }
                }
            }
            if !progress {
                break;
            }
        }
    }
    /// The proxy's application: location service and next-hop resolution.
    fn route(&mut self, e: ProxyEvent) {
        let now = self.now;
        match e {
            ProxyEvent::Request {
                server,
                msg,
                next_hop_uri,
                ..
            } => {
                let m = msg.as_message();
                let initial = m.to().unwrap().unwrap().tag().is_none() && !m.has(HeaderName::Route);
                if initial && m.method() != Some(Method::Cancel) {
                    let targets = self
                        .targets
                        .iter()
                        .map(|&b| Target {
                            uri: Some(format!("sip:bob@{}:5060", ip(b))),
                            remote: Remote::udp(addr(b)),
                        })
                        .collect();
                    self.proxy.forward(now, server, targets, self.mode).unwrap();
                } else {
                    let t = Target {
                        uri: None,
                        remote: resolve(&next_hop_uri),
                    };
                    self.proxy
                        .forward(now, server, vec![t], ForkMode::Parallel)
                        .unwrap();
                }
            }
            ProxyEvent::Ack { msg, next_hop_uri } => {
                self.proxy
                    .forward_stateless(&msg, resolve(&next_hop_uri))
                    .unwrap();
            }
            _ => {}
        }
    }
    fn run_until(&mut self, d: Duration) {
        let end = self.t0 + d;
        loop {
            self.collect();
            let mut next: Vec<Instant> = self.in_flight.iter().map(|p| p.0).collect();
            for i in [A, B1, B2] {
                next.extend(self.ua[i].as_ref().unwrap().poll_timeout());
            }
            next.extend(self.proxy.poll_timeout());
            let Some(n) = next.into_iter().min().filter(|n| *n <= end) else {
                break;
            };
            self.now = n.max(self.now);
            let now = self.now;
            let (due, rest): (Vec<_>, Vec<_>) = self.in_flight.drain(..).partition(|p| p.0 <= now);
            self.in_flight = rest;
            for (_, from, to, bytes) in due {
                let msg = OwnedMessage::parse_datagram(bytes).unwrap();
                let remote = Remote::udp(addr(from));
                if to == P {
                    self.proxy.receive(now, msg, remote).unwrap();
                } else {
                    self.ua[to]
                        .as_mut()
                        .unwrap()
                        .receive(now, msg, remote)
                        .unwrap();
                }
                self.collect();
            }
            for i in [A, B1, B2] {
                self.ua[i].as_mut().unwrap().handle_timeout(now);
            }
            self.proxy.handle_timeout(now);
        }
        self.now = end;
    }
    fn ua(&mut self, i: usize) -> &mut UserAgent {
        self.ua[i].as_mut().unwrap()
    }
    fn invite(&mut self) -> TxnId {
        let now = self.now;
        let t = self
            .ua(A)
            .invite(
                now,
                InviteParams {
                    request_uri: "sip:bob@example.com".into(),
                    from: "<sip:alice@example.com>".into(),
                    to: "<sip:bob@example.com>".into(),
                    remote: Remote::udp(addr(P)),
                    headers: Vec::new(),
                    body: Some(("application/sdp".into(), b"v=0\r\n".to_vec())),
                },
            )
            .unwrap();
        self.collect();
        t
    }
    fn events_of(&self, who: usize) -> Vec<(u64, &UaEvent)> {
        self.events
            .iter()
            .filter(|(_, w, _)| *w == who)
            .map(|(t, _, e)| (*t, e))
            .collect()
    }
    fn incoming(&self, who: usize) -> Option<TxnId> {
        self.events_of(who).iter().find_map(|(_, e)| match e {
            UaEvent::IncomingInvite { txn, .. } => Some(*txn),
            _ => None,
        })
    }
    fn respond(&mut self, who: usize, txn: TxnId, code: u16) {
        let now = self.now;
        self.ua(who).respond(now, txn, Answer::new(code)).unwrap();
        self.collect();
    }
    fn count(&self, who: usize, f: impl Fn(&UaEvent) -> bool) -> usize {
        self.events_of(who).iter().filter(|(_, e)| f(e)).count()
    }
    fn lines(&self, from: usize, to: usize, prefix: &str) -> Vec<u64> {
        self.wire
            .iter()
            .filter(|(_, f, t, l)| *f == from && *t == to && l.starts_with(prefix))
            .map(|(t, ..)| *t)
            .collect()
    }
}

#[test]
fn forked_invite_one_answers_other_is_busy() {
    let mut w = World::new(World::default_proxy());
    w.invite();
    w.run_until(ms(100));
    let t1 = w.incoming(B1).expect("B1 got the fork");
    let t2 = w.incoming(B2).expect("B2 got the fork");
    // both forks carry the proxy's Record-Route and a decremented Max-Forwards
    let fork = w
        .events_of(B1)
        .iter()
        .find_map(|(_, e)| match e {
            UaEvent::IncomingInvite { msg, .. } => Some(msg.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(
        fork.as_message().header(HeaderName::RecordRoute),
        Some("<sip:10.0.0.100:5060;lr>")
    );
    assert_eq!(fork.as_message().max_forwards().unwrap(), Some(69));
    assert_eq!(
        fork.as_message().request_uri_str(),
        Some("sip:bob@10.0.0.2:5060")
    );
    assert_eq!(fork.as_message().via().count(), 2);
    w.respond(B1, t1, 180);
    w.respond(B2, t2, 180);
    w.run_until(ms(200));
    // B2 is busy; the 486 is kept in the response context, not forwarded
    w.respond(B2, t2, 486);
    w.run_until(ms(1000));
    assert!(w.lines(P, A, "SIP/2.0 486").is_empty());
    // two early dialogs at A, one per fork
    assert_eq!(w.count(A, |e| matches!(e, UaEvent::DialogEarly(_))), 2);
    w.respond(B1, t1, 200);
    w.run_until(ms(2000));
    // exactly one dialog confirmed, with B1
    let confirmed: Vec<DialogId> = w
        .events_of(A)
        .iter()
        .filter_map(|(_, e)| match e {
            UaEvent::DialogConfirmed(d) => Some(d.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(confirmed.len(), 1);
    assert_eq!(w.count(B1, |e| matches!(e, UaEvent::DialogConfirmed(_))), 1);
    assert_eq!(w.count(B2, |e| matches!(e, UaEvent::DialogConfirmed(_))), 0);
    // B2's fork ended with its 486, which the proxy ACKed hop by hop
    assert_eq!(w.lines(P, B2, "ACK").len(), 1);
    assert!(w.events_of(B2).iter().any(|(_, e)| matches!(
        e,
        UaEvent::DialogTerminated {
            reason: EndReason::Rejected(486),
            ..
        }
    )));
    // A's ACK for the 2xx went through the proxy (Record-Route) to B1
    assert_eq!(w.lines(A, P, "ACK").len(), 1);
    assert_eq!(w.lines(P, B1, "ACK").len(), 1);
    assert_eq!(w.count(B1, |e| matches!(e, UaEvent::AckReceived { .. })), 1);
    // the route set at A is the proxy
    let d = w.ua(A).dialog(&confirmed[0]).unwrap().clone();
    assert_eq!(d.route_set, ["<sip:10.0.0.100:5060;lr>"]);
    assert_eq!(d.remote_target, "sip:user@10.0.0.2:5060");
    // the other early dialog ends with the INVITE transaction (Timer M)
    w.run_until(ms(40_000));
    assert!(w.events_of(A).iter().any(|(_, e)| matches!(
        e,
        UaEvent::DialogTerminated {
            reason: EndReason::Superseded,
            ..
        }
    )));
    // BYE goes A → P → B1 along the route set
    let now = w.now;
    w.ua(A).bye(now, &confirmed[0]).unwrap();
    w.collect();
    w.run_until(ms(41_000));
    assert_eq!(w.lines(P, B1, "BYE").len(), 1);
    assert!(w.events_of(B1).iter().any(|(_, e)| matches!(
        e,
        UaEvent::DialogTerminated {
            reason: EndReason::ByeReceived,
            ..
        }
    )));
    assert!(w.events_of(A).iter().any(|(_, e)| matches!(
        e,
        UaEvent::DialogTerminated {
            reason: EndReason::ByeSent,
            ..
        }
    )));
    w.run_until(ms(120_000));
    assert_eq!(w.proxy.contexts(), 0);
    assert!(w.proxy.layer().is_empty());
}

#[test]
fn forked_invite_2xx_cancels_the_ringing_branch() {
    let mut w = World::new(World::default_proxy());
    w.invite();
    w.run_until(ms(100));
    let t1 = w.incoming(B1).unwrap();
    let t2 = w.incoming(B2).unwrap();
    w.respond(B1, t1, 180);
    w.respond(B2, t2, 180);
    w.run_until(ms(500));
    w.respond(B1, t1, 200);
    w.run_until(ms(3000));
    // the proxy cancelled the other branch; B2 answered 487 and its early dialog ended
    assert_eq!(w.lines(P, B2, "CANCEL").len(), 1);
    assert_eq!(w.lines(B2, P, "SIP/2.0 487").len(), 1);
    assert!(w
        .events_of(B2)
        .iter()
        .any(|(_, e)| matches!(e, UaEvent::Cancelled { .. })));
    assert!(w.events_of(B2).iter().any(|(_, e)| matches!(
        e,
        UaEvent::DialogTerminated {
            reason: EndReason::Cancelled,
            ..
        }
    )));
    // the 487 is not forwarded after the 2xx
    assert!(w.lines(P, A, "SIP/2.0 487").is_empty());
    assert_eq!(w.count(A, |e| matches!(e, UaEvent::DialogConfirmed(_))), 1);
    assert_eq!(w.count(B1, |e| matches!(e, UaEvent::AckReceived { .. })), 1);
    let finals: Vec<u16> = w
        .proxy_events
        .iter()
        .filter_map(|(_, e)| match e {
            ProxyEvent::Final { status, .. } => Some(*status),
            _ => None,
        })
        .collect();
    assert_eq!(finals, [200]);
}

#[test]
fn all_branches_fail_best_response_wins() {
    let mut w = World::new(World::default_proxy());
    w.invite();
    w.run_until(ms(100));
    let t1 = w.incoming(B1).unwrap();
    let t2 = w.incoming(B2).unwrap();
    w.respond(B1, t1, 503);
    w.run_until(ms(200));
    w.respond(B2, t2, 404);
    w.run_until(ms(1000));
    // 4xx beats 5xx (§16.7 step 6)
    assert_eq!(w.lines(P, A, "SIP/2.0 404").len(), 1);
    assert!(w.lines(P, A, "SIP/2.0 503").is_empty());
    assert!(w.events_of(A).iter().any(|(_, e)| matches!(e, UaEvent::Response { msg, .. } if msg.as_message().status() == Some(404))));
}

#[test]
fn a_single_503_becomes_500() {
    let mut w = World::new(World::default_proxy());
    w.targets = vec![B1];
    w.invite();
    w.run_until(ms(100));
    let t1 = w.incoming(B1).unwrap();
    w.respond(B1, t1, 503);
    w.run_until(ms(1000));
    assert_eq!(w.lines(P, A, "SIP/2.0 500").len(), 1);
}

#[test]
fn six_hundred_cancels_the_others() {
    let mut w = World::new(World::default_proxy());
    w.invite();
    w.run_until(ms(100));
    let t1 = w.incoming(B1).unwrap();
    let t2 = w.incoming(B2).unwrap();
    w.respond(B2, t2, 180);
    w.run_until(ms(200));
    w.respond(B1, t1, 603);
    w.run_until(ms(2000));
    assert_eq!(w.lines(P, B2, "CANCEL").len(), 1);
    assert_eq!(w.lines(P, A, "SIP/2.0 603").len(), 1);
    assert!(w.lines(P, A, "SIP/2.0 487").is_empty());
}

#[test]
fn sequential_forking_tries_the_next_target_after_a_failure() {
    let mut w = World::new(World::default_proxy());
    w.mode = ForkMode::Sequential;
    w.invite();
    w.run_until(ms(100));
    let t1 = w.incoming(B1).unwrap();
    assert!(w.incoming(B2).is_none());
    w.respond(B1, t1, 480);
    w.run_until(ms(200));
    let t2 = w.incoming(B2).expect("second target tried");
    w.respond(B2, t2, 200);
    w.run_until(ms(1000));
    assert_eq!(w.count(A, |e| matches!(e, UaEvent::DialogConfirmed(_))), 1);
    assert!(w.lines(P, A, "SIP/2.0 480").is_empty());
}

#[test]
fn cancel_from_the_caller_cancels_every_branch() {
    let mut w = World::new(World::default_proxy());
    let inv = w.invite();
    w.run_until(ms(100));
    let t1 = w.incoming(B1).unwrap();
    let t2 = w.incoming(B2).unwrap();
    w.respond(B1, t1, 180);
    w.respond(B2, t2, 183);
    w.run_until(ms(300));
    let now = w.now;
    w.ua(A).cancel(now, inv).unwrap();
    w.collect();
    w.run_until(ms(3000));
    assert_eq!(w.lines(P, B1, "CANCEL").len(), 1);
    assert_eq!(w.lines(P, B2, "CANCEL").len(), 1);
    assert_eq!(w.lines(P, A, "SIP/2.0 487").len(), 1);
    assert_eq!(
        w.count(A, |e| matches!(
            e,
            UaEvent::DialogTerminated {
                reason: EndReason::Cancelled,
                ..
            }
        )),
        2
    );
}

#[test]
fn timer_c_cancels_a_branch_that_rings_forever() {
    let mut pc = World::default_proxy();
    pc.layer.timers = TimerConfig {
        c: Duration::from_secs(181),
        ..TimerConfig::default()
    };
    let mut w = World::new(pc);
    w.targets = vec![B1];
    w.invite();
    w.run_until(ms(100));
    let t1 = w.incoming(B1).unwrap();
    w.respond(B1, t1, 180);
    // the 180 reached the proxy at 15 ms... timer C runs 181 s from the last provisional
    w.run_until(ms(181_000));
    assert!(w.lines(P, B1, "CANCEL").is_empty());
    w.run_until(ms(182_000));
    let cancel = w.lines(P, B1, "CANCEL");
    assert_eq!(cancel.len(), 1);
    let provisional_at = w.lines(B1, P, "SIP/2.0 180")[0] + 5;
    assert_eq!(cancel[0], provisional_at + 181_000);
    w.run_until(ms(190_000));
    assert_eq!(w.lines(P, A, "SIP/2.0 487").len(), 1);
}

fn raw_request(extra: &[(&str, &str)]) -> OwnedMessage {
    let mut b = RequestBuilder::new(Method::Options, "sip:bob@example.com")
        .header("Via", "SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK-raw1")
        .header("From", "<sip:alice@example.com>;tag=1")
        .header("To", "<sip:bob@example.com>")
        .header("Call-ID", "raw@10.0.0.1")
        .header("CSeq", "1 OPTIONS");
    for (n, v) in extra {
        b = b.header(n, *v);
    }
    b.build().unwrap()
}

fn answer_to(w: &mut World, msg: OwnedMessage) -> Vec<String> {
    let now = w.now;
    w.proxy.receive(now, msg, Remote::udp(addr(A))).unwrap();
    let mut lines = Vec::new();
    while let Some(o) = w.proxy.poll_output() {
        if let ProxyOutput::Transmit(t) = o {
            lines.push(
                ims_sip::parse_datagram(&t.bytes)
                    .unwrap()
                    .start_line_str()
                    .to_owned(),
            );
        }
    }
    lines
}

#[test]
fn max_forwards_zero_is_483() {
    let mut w = World::new(World::default_proxy());
    let l = answer_to(&mut w, raw_request(&[("Max-Forwards", "0")]));
    assert_eq!(l, ["SIP/2.0 483 Too Many Hops"]);
}

/// The 483 comes from the proxy's checks (role Proxy) or from its own look at Max-Forwards
/// (another role): the same answer either way.
#[test]
fn max_forwards_zero_is_483_whatever_the_validation_role() {
    for role in [ims_sip::Role::Proxy, ims_sip::Role::Uas] {
        let mut cfg = World::default_proxy();
        cfg.validation.role = role;
        let mut w = World::new(cfg);
        let l = answer_to(&mut w, raw_request(&[("Max-Forwards", "0")]));
        assert_eq!(l, ["SIP/2.0 483 Too Many Hops"], "{role:?}");
        let mut w = World::new({
            let mut c = World::default_proxy();
            c.validation.role = role;
            c
        });
        let l = answer_to(&mut w, raw_request(&[("Max-Forwards", "1")]));
        assert!(l.is_empty(), "{role:?}: {l:?}");
    }
}

#[test]
fn loop_is_482_but_spiral_passes() {
    let mut w = World::new(World::default_proxy());
    // first pass: forwarded back to ourselves unchanged
    let now = w.now;
    w.proxy
        .receive(
            now,
            raw_request(&[("Max-Forwards", "70")]),
            Remote::udp(addr(A)),
        )
        .unwrap();
    let server = loop {
        match w.proxy.poll_output().unwrap() {
            ProxyOutput::Event(ProxyEvent::Request { server, .. }) => break server,
            _ => continue,
        }
    };
    w.proxy
        .forward(
            now,
            server,
            vec![Target {
                uri: None,
                remote: Remote::udp(addr(P)),
            }],
            ForkMode::Parallel,
        )
        .unwrap();
    let looped = loop {
        match w.proxy.poll_output().unwrap() {
            ProxyOutput::Transmit(t) => break OwnedMessage::parse_datagram(t.bytes).unwrap(),
            _ => continue,
        }
    };
    assert_eq!(
        answer_to(&mut w, looped.clone()),
        ["SIP/2.0 482 Loop Detected"]
    );
    // the same request retargeted (new Request-URI) is a spiral and is routed again
    let m = looped.as_message();
    let mut e = m.edit();
    e.set_request_uri("sip:carol@example.com");
    // it comes back through the element that retargeted it, with that element's Via on top
    e.push_via("SIP/2.0/UDP 10.0.0.3:5060;branch=z9hG4bK-retarget1");
    let spiral = e.to_owned_message().unwrap();
    let now = w.now;
    w.proxy.receive(now, spiral, Remote::udp(addr(P))).unwrap();
    let mut routed = false;
    while let Some(o) = w.proxy.poll_output() {
        routed |= matches!(o, ProxyOutput::Event(ProxyEvent::Request { .. }));
    }
    assert!(routed);
}

#[test]
fn unsupported_proxy_require_is_420() {
    let mut w = World::new(World::default_proxy());
    let l = answer_to(
        &mut w,
        raw_request(&[("Max-Forwards", "70"), ("Proxy-Require", "x-weird")]),
    );
    assert_eq!(l, ["SIP/2.0 420 Bad Extension"]);
}

#[test]
fn route_processing_pops_our_route_and_fixes_strict_request_uri() {
    let mut w = World::new(World::default_proxy());
    // loose: our Route on top is removed
    let now = w.now;
    w.proxy
        .receive(
            now,
            raw_request(&[
                ("Max-Forwards", "70"),
                (
                    "Route",
                    "<sip:10.0.0.100:5060;lr;orig>;x=1, <sip:next.example.com;lr>",
                ),
            ]),
            Remote::udp(addr(A)),
        )
        .unwrap();
    let (msg, hop, popped) = loop {
        match w.proxy.poll_output().unwrap() {
            ProxyOutput::Event(ProxyEvent::Request {
                msg,
                next_hop_uri,
                popped_route,
                ..
            }) => break (msg, next_hop_uri, popped_route),
            _ => continue,
        }
    };
    assert_eq!(
        msg.as_message().header(HeaderName::Route),
        Some("<sip:next.example.com;lr>")
    );
    assert_eq!(hop, "sip:next.example.com;lr");
    // the Route naming us, as the application reads it (its parameters)
    assert_eq!(popped.as_deref(), Some("<sip:10.0.0.100:5060;lr;orig>;x=1"));
    // a top Route that is not ours: nothing popped, the request as received
    let now = w.now;
    let other = RequestBuilder::new(Method::Options, "sip:bob@example.com")
        .header("Via", "SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK-raw3")
        .header("Max-Forwards", "70")
        .header("Route", "<sip:next.example.com;lr>")
        .header("From", "<sip:alice@example.com>;tag=1")
        .header("To", "<sip:bob@example.com>")
        .header("Call-ID", "raw3@10.0.0.1")
        .header("CSeq", "1 OPTIONS")
        .build()
        .unwrap();
    w.proxy
        .receive(now, other.clone(), Remote::udp(addr(A)))
        .unwrap();
    let (msg, popped) = loop {
        match w.proxy.poll_output().unwrap() {
            ProxyOutput::Event(ProxyEvent::Request {
                msg, popped_route, ..
            }) => break (msg, popped_route),
            _ => continue,
        }
    };
    assert_eq!(popped, None);
    assert_eq!(msg.bytes(), other.bytes());
    // strict previous hop: the Request-URI is ours, the real one is the last Route value
    let strict = RequestBuilder::new(Method::Options, "sip:10.0.0.100:5060")
        .header("Via", "SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK-raw2")
        .header("Max-Forwards", "70")
        .header("Route", "<sip:p3.example.com;lr>")
        .header("Route", "<sip:bob@192.0.2.9>")
        .header("From", "<sip:alice@example.com>;tag=1")
        .header("To", "<sip:bob@example.com>")
        .header("Call-ID", "raw2@10.0.0.1")
        .header("CSeq", "1 OPTIONS")
        .build()
        .unwrap();
    let now = w.now;
    w.proxy.receive(now, strict, Remote::udp(addr(A))).unwrap();
    let msg = loop {
        match w.proxy.poll_output().unwrap() {
            ProxyOutput::Event(ProxyEvent::Request { msg, .. }) => break msg,
            _ => continue,
        }
    };
    let m = msg.as_message();
    assert_eq!(m.request_uri_str(), Some("sip:bob@192.0.2.9"));
    let routes: Vec<_> = m.headers_of(HeaderName::Route).map(|h| h.value()).collect();
    assert_eq!(routes, ["<sip:p3.example.com;lr>"]);
}

#[test]
fn forwarding_to_a_strict_router_rewrites_request_uri() {
    let mut w = World::new(World::default_proxy());
    let now = w.now;
    w.proxy
        .receive(
            now,
            raw_request(&[
                ("Max-Forwards", "70"),
                ("Route", "<sip:strict.example.com>"),
            ]),
            Remote::udp(addr(A)),
        )
        .unwrap();
    let server = loop {
        match w.proxy.poll_output().unwrap() {
            ProxyOutput::Event(ProxyEvent::Request { server, .. }) => break server,
            _ => continue,
        }
    };
    w.proxy
        .forward(
            now,
            server,
            vec![Target {
                uri: None,
                remote: Remote::udp(addr(B1)),
            }],
            ForkMode::Parallel,
        )
        .unwrap();
    let out = loop {
        match w.proxy.poll_output().unwrap() {
            ProxyOutput::Transmit(t) => break OwnedMessage::parse_datagram(t.bytes).unwrap(),
            _ => continue,
        }
    };
    let m = out.as_message();
    assert_eq!(m.request_uri_str(), Some("sip:strict.example.com"));
    let routes: Vec<_> = m.headers_of(HeaderName::Route).map(|h| h.value()).collect();
    assert_eq!(routes, ["<sip:bob@example.com>"]);
}

#[test]
fn stateless_request_forwarding_is_deterministic() {
    let cfg = World::default_proxy();
    let req = raw_request(&[
        ("Max-Forwards", "10"),
        ("Route", "<sip:10.0.0.100:5060;lr>"),
    ]);
    let m = req.as_message();
    let a = ims_txn::proxy::stateless_request(
        &cfg,
        &m,
        Some("sip:bob@10.0.0.2"),
        ims_txn::Transport::Udp,
    )
    .unwrap();
    let b = ims_txn::proxy::stateless_request(
        &cfg,
        &m,
        Some("sip:bob@10.0.0.2"),
        ims_txn::Transport::Udp,
    )
    .unwrap();
    // a retransmission gets the same branch (§16.11)
    assert_eq!(a, b);
    let f = ims_sip::parse_datagram(&a).unwrap();
    assert_eq!(f.request_uri_str(), Some("sip:bob@10.0.0.2"));
    assert_eq!(f.max_forwards().unwrap(), Some(9));
    assert!(!f.has(HeaderName::Route));
    let top = f.top_via().unwrap().unwrap();
    assert_eq!(top.host().to_string(), "10.0.0.100");
    assert!(top.has_rfc3261_branch());
    // another request gets another branch
    let other = raw_request(&[("Max-Forwards", "10"), ("Subject", "x")]);
    let om = other.as_message();
    let mut e = om.edit();
    e.set(HeaderName::CSeq, "2 OPTIONS");
    let other = e.to_owned_message().unwrap();
    let c =
        ims_txn::proxy::stateless_request(&cfg, &other.as_message(), None, ims_txn::Transport::Udp)
            .unwrap();
    let cv = ims_sip::parse_datagram(&c)
        .unwrap()
        .top_via()
        .unwrap()
        .unwrap()
        .branch()
        .map(str::to_owned);
    assert_ne!(cv.as_deref(), top.branch());
    // Max-Forwards 0 is refused with 483
    let dead = raw_request(&[("Max-Forwards", "0")]);
    assert_eq!(
        ims_txn::proxy::stateless_request(&cfg, &dead.as_message(), None, ims_txn::Transport::Udp),
        Err(483)
    );
}

#[test]
fn stateless_response_pops_our_via_and_names_the_next_hop() {
    let cfg = World::default_proxy();
    let raw = "SIP/2.0 200 OK\r\n\
Via: SIP/2.0/UDP 10.0.0.100:5060;branch=z9hG4bK-p\r\n\
Via: SIP/2.0/TCP client.example.com:5070;branch=z9hG4bK-c;received=192.0.2.55;rport=40000\r\n\
From: <sip:a@x>;tag=1\r\nTo: <sip:b@x>;tag=2\r\nCall-ID: s@x\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n";
    let m = ims_sip::parse_datagram(raw.as_bytes()).unwrap();
    let (out, hop) = ims_txn::proxy::stateless_response(&cfg, &m).unwrap();
    assert_eq!(hop, ("TCP".to_string(), "192.0.2.55".to_string(), 40000));
    let f = ims_sip::parse_datagram(&out).unwrap();
    assert_eq!(f.via().count(), 1);
    // a response whose top Via is not ours is dropped
    let foreign = raw.replacen("10.0.0.100:5060", "10.9.9.9:5060", 1);
    let m = ims_sip::parse_datagram(foreign.as_bytes()).unwrap();
    assert!(ims_txn::proxy::stateless_response(&cfg, &m).is_none());
}

/// RFC 3261 §13.2.2.4: both forks answer 200 at the same instant; the proxy forwards both 2xx
/// (§16.7 step 5). A confirms the first dialog; the second 2xx, from another dialog, gets its
/// ACK and then a BYE, so exactly one dialog stays up.
#[test]
fn forked_invite_both_answer_extra_2xx_gets_ack_then_bye() {
    let mut w = World::new(World::default_proxy());
    let t = w.invite();
    w.run_until(ms(100));
    let t1 = w.incoming(B1).expect("B1 got the fork");
    let t2 = w.incoming(B2).expect("B2 got the fork");
    w.respond(B1, t1, 200);
    w.respond(B2, t2, 200);
    w.run_until(ms(3000));
    // both 2xx reach A (the third 200 answers A's BYE)
    assert_eq!(w.lines(P, A, "SIP/2.0 200").len(), 3);
    let first_bye = w.lines(A, P, "BYE")[0];
    let oks = w.lines(P, A, "SIP/2.0 200");
    assert_eq!(oks.iter().filter(|t| **t <= first_bye).count(), 2);
    // A: one dialog confirmed (the first 2xx), the other reported and ended with BYE
    let confirmed: Vec<DialogId> = w
        .events_of(A)
        .iter()
        .filter_map(|(_, e)| match e {
            UaEvent::DialogConfirmed(d) => Some(d.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(confirmed.len(), 1);
    let extra: Vec<DialogId> = w
        .events_of(A)
        .iter()
        .filter_map(|(_, e)| match e {
            UaEvent::ExtraForkAnswered { txn, dialog, .. } => {
                assert_eq!(*txn, t);
                Some(dialog.clone())
            }
            _ => None,
        })
        .collect();
    assert_eq!(extra.len(), 1);
    assert_ne!(extra[0], confirmed[0]);
    // ACK for each 2xx, then one BYE, in that order on the wire from A
    let acks = w.lines(A, P, "ACK");
    let byes = w.lines(A, P, "BYE");
    assert_eq!(acks.len(), 2, "{:?}", w.wire);
    assert_eq!(byes.len(), 1);
    assert!(acks[1] <= byes[0]);
    let a_order: Vec<&str> = w
        .wire
        .iter()
        .filter(|(_, f, _, l)| *f == A && (l.starts_with("ACK") || l.starts_with("BYE")))
        .map(|(_, _, _, l)| &l[..3])
        .collect();
    assert_eq!(a_order, ["ACK", "ACK", "BYE"]);
    // the extra dialog ends with ExtraFork once its BYE is answered; the first stays
    assert!(w.events_of(A).iter().any(|(_, e)| matches!(
        e,
        UaEvent::DialogTerminated { dialog, reason: EndReason::ExtraFork } if *dialog == extra[0]
    )));
    assert!(w.ua(A).dialog(&confirmed[0]).is_some());
    assert!(w.ua(A).dialog(&extra[0]).is_none());
    // each B got its ACK; exactly one of them got the BYE and ended
    assert_eq!(w.count(B1, |e| matches!(e, UaEvent::AckReceived { .. })), 1);
    assert_eq!(w.count(B2, |e| matches!(e, UaEvent::AckReceived { .. })), 1);
    let ended = |w: &World, b| {
        w.count(b, |e| {
            matches!(
                e,
                UaEvent::DialogTerminated {
                    reason: EndReason::ByeReceived,
                    ..
                }
            )
        })
    };
    assert_eq!(ended(&w, B1) + ended(&w, B2), 1);
    assert_eq!(w.ua(B1).dialogs().count() + w.ua(B2).dialogs().count(), 1);

    // with the policy off, both dialogs stay confirmed (the application decides)
    let mut w = World::new(World::default_proxy());
    w.ua(A).set_bye_extra_forks(false);
    w.invite();
    w.run_until(ms(100));
    let (t1, t2) = (w.incoming(B1).unwrap(), w.incoming(B2).unwrap());
    w.respond(B1, t1, 200);
    w.respond(B2, t2, 200);
    w.run_until(ms(3000));
    assert_eq!(w.count(A, |e| matches!(e, UaEvent::DialogConfirmed(_))), 2);
    assert!(w.lines(A, P, "BYE").is_empty());
}

#[test]
fn the_application_cancels_a_forwarded_invite() {
    // an IMS P-CSCF giving up a session being set up (TS 24.229 §5.2.8.1.1): CANCEL toward
    // every branch (§9.1: a branch that has not answered provisionally only once it does), the
    // status the application chose upstream, and the branches' 487s kept at the proxy
    let mut w = World::new(World::default_proxy());
    w.invite();
    w.run_until(ms(100));
    let server = w
        .proxy_events
        .iter()
        .find_map(|(_, e)| match e {
            ProxyEvent::Request { server, msg, .. }
                if msg.as_message().method() == Some(Method::Invite) =>
            {
                Some(*server)
            }
            _ => None,
        })
        .expect("the INVITE reached the application");
    let t1 = w.incoming(B1).unwrap();
    let t2 = w.incoming(B2).unwrap();
    w.respond(B1, t1, 180);
    w.run_until(ms(150));
    let now = w.now;
    w.proxy
        .cancel(
            now,
            server,
            503,
            Some("SIP ;cause=503 ;text=\"Loss of bearer\""),
        )
        .unwrap();
    w.collect();
    w.run_until(ms(180));
    assert_eq!(
        w.lines(P, B1, "CANCEL").len(),
        1,
        "the ringing branch at once"
    );
    assert!(
        w.lines(P, B2, "CANCEL").is_empty(),
        "not before a provisional response"
    );
    assert_eq!(w.lines(P, A, "SIP/2.0 503").len(), 1);
    let now = w.now;
    let _ = w.ua(B2).respond(now, t2, Answer::new(180));
    w.collect();
    w.run_until(ms(5000));
    assert_eq!(
        w.lines(P, B2, "CANCEL").len(),
        1,
        "once it answered provisionally"
    );
    assert!(
        w.lines(P, A, "SIP/2.0 487").is_empty(),
        "the 487s stay at the proxy"
    );
    assert_eq!(w.lines(B1, P, "SIP/2.0 487").len(), 1);
    assert_eq!(w.lines(P, A, "SIP/2.0 503").len(), 1);
    let now = w.now;
    assert!(
        w.proxy.cancel(now, server, 503, None).is_err(),
        "answered already"
    );
}

#[test]
fn the_application_discards_a_request_unanswered() {
    // an IMS P-CSCF dropping a request from a UE outside its IPsec SAs (TS 33.203 §7): nothing
    // goes out, nothing is kept; a retransmission comes up again as a new request
    let mut w = World::new(World::default_proxy());
    let now = w.now;
    let arrive = |w: &mut World| {
        w.proxy
            .receive(now, raw_request(&[]), Remote::udp(addr(A)))
            .unwrap();
        let mut out = (None, 0);
        while let Some(o) = w.proxy.poll_output() {
            match o {
                ProxyOutput::Event(ProxyEvent::Request { server, .. }) => out.0 = Some(server),
                ProxyOutput::Transmit(_) => out.1 += 1,
                _ => {}
            }
        }
        out
    };
    let (server, sent) = arrive(&mut w);
    let server = server.expect("the OPTIONS reached the application");
    assert_eq!(sent, 0);
    assert_eq!(w.proxy.contexts(), 1);
    w.proxy.discard(now, server).unwrap();
    let mut sent = 0;
    while let Some(o) = w.proxy.poll_output() {
        if let ProxyOutput::Transmit(_) = o {
            sent += 1;
        }
    }
    assert_eq!(sent, 0, "no answer");
    assert_eq!(w.proxy.contexts(), 0, "no context left");
    assert_eq!(w.proxy.layer().len(), 0, "no transaction left");
    assert!(w.proxy.discard(now, server).is_err(), "gone");
    // the same request again (a retransmission): a new request for the application
    let (again, sent) = arrive(&mut w);
    assert!(again.is_some_and(|s| s != server));
    assert_eq!(sent, 0);
    // a request already forwarded cannot be discarded
    let mut w = World::new(World::default_proxy());
    w.invite();
    w.run_until(ms(100));
    let forwarded = w
        .proxy_events
        .iter()
        .find_map(|(_, e)| match e {
            ProxyEvent::Request { server, .. } => Some(*server),
            _ => None,
        })
        .unwrap();
    let now = w.now;
    assert!(w.proxy.discard(now, forwarded).is_err());
}
