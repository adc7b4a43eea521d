//! Two-party tests: a UAC core against a UAS core over a simulated lossy UDP channel on a virtual
//! clock (RFC 3261 §13–15, RFC 3262, RFC 3311, RFC 4028).

use bytes::Bytes;
use ims_sip::{Method, OwnedMessage};
use ims_txn::dialog::{DialogId, DialogState};
use ims_txn::ua::{Answer, EndReason, InviteParams, UaConfig, UaEvent, UaOutput, UserAgent};
use ims_txn::{Remote, TxnId};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

const A: usize = 0;
const B: usize = 1;

fn addr(i: usize) -> SocketAddr {
    format!("10.0.0.{}:5060", i + 1).parse().unwrap()
}

fn cfg(i: usize, seed: u64) -> UaConfig {
    UaConfig {
        contact: format!("sip:{}@10.0.0.{}:5060", ["alice", "bob"][i], i + 1),
        sent_by: format!("10.0.0.{}:5060", i + 1),
        seed,
        ..UaConfig::default()
    }
}

/// What a packet looks like to the loss rule: sender, first line, CSeq method.
struct Pkt<'a> {
    from: usize,
    line: &'a str,
    cseq_method: String,
}

type DropRule = Box<dyn FnMut(&Pkt<'_>) -> bool>;

struct Net {
    ua: [UserAgent; 2],
    t0: Instant,
    now: Instant,
    latency: Duration,
    in_flight: Vec<(Instant, usize, Bytes)>,
    drop: DropRule,
    /// (instant since t0 in ms, who, event)
    events: Vec<(u64, usize, UaEvent)>,
    /// (instant in ms, sender, first line, delivered)
    wire: Vec<(u64, usize, String, bool)>,
    /// Every datagram sent: sender and bytes.
    raw: Vec<(usize, Bytes)>,
}

impl Net {
    fn new(ca: UaConfig, cb: UaConfig) -> Self {
        #[allow(clippy::disallowed_methods)] // origin of the virtual clock
        let t0 = Instant::now();
        Net {
            ua: [UserAgent::new(ca), UserAgent::new(cb)],
            t0,
            now: t0,
            latency: ms(10),
            in_flight: Vec::new(),
            drop: Box::new(|_| false),
            events: Vec::new(),
            wire: Vec::new(),
            raw: Vec::new(),
        }
    }
    fn pair() -> Self {
        Self::new(cfg(A, 11), cfg(B, 22))
    }
    fn ms_now(&self) -> u64 {
        (self.now - self.t0).as_millis() as u64
    }
    fn collect(&mut self) {
        for i in [A, B] {
            while let Some(o) = self.ua[i].poll_output() {
                match o {
                    UaOutput::Transmit(t) => {
                        assert_eq!(t.remote.addr, addr(1 - i), "sent to the peer");
                        let msg = ims_sip::parse_datagram(&t.bytes).expect("we send valid SIP");
                        let line = msg.start_line_str().to_string();
                        let cseq_method = msg.cseq().unwrap().unwrap().method.to_string();
                        let dropped = (self.drop)(&Pkt {
                            from: i,
                            line: &line,
                            cseq_method,
                        });
                        let at = self.ms_now();
                        self.wire.push((at, i, line, !dropped));
                        self.raw.push((i, t.bytes.clone()));
                        if !dropped {
                            self.in_flight
                                .push((self.now + self.latency, 1 - i, t.bytes));
                        }
                    }
                    UaOutput::Event(e) => {
                        let at = self.ms_now();
                        self.events.push((at, i, e));
                    }
                }
            }
        }
    }
    /// Runs the network and both UAs until `d` after t0.
    fn run_until(&mut self, d: Duration) {
        let end = self.t0 + d;
        loop {
            self.collect();
            let next = [
                self.in_flight.iter().map(|p| p.0).min(),
                self.ua[A].poll_timeout(),
                self.ua[B].poll_timeout(),
            ]
            .into_iter()
            .flatten()
            .min();
            let Some(next) = next.filter(|n| *n <= end) else {
                break;
            };
            self.now = next.max(self.now);
            let now = self.now;
            let due: Vec<_> = {
                let (d, rest): (Vec<_>, Vec<_>) =
                    self.in_flight.drain(..).partition(|p| p.0 <= now);
                self.in_flight = rest;
                d
            };
            for (_, to, bytes) in due {
                let msg = OwnedMessage::parse_datagram(bytes).unwrap();
                self.ua[to]
                    .receive(now, msg, Remote::udp(addr(1 - to)))
                    .unwrap();
                self.collect();
            }
            for i in [A, B] {
                self.ua[i].handle_timeout(now);
            }
        }
        self.now = end;
    }
    fn invite(&mut self, body: Option<&str>) -> TxnId {
        let now = self.now;
        let t = self.ua[A]
            .invite(
                now,
                InviteParams {
                    request_uri: "sip:bob@10.0.0.2:5060".into(),
                    from: "<sip:alice@example.com>".into(),
                    to: "<sip:bob@example.com>".into(),
                    remote: Remote::udp(addr(B)),
                    headers: Vec::new(),
                    body: body.map(|b| ("application/sdp".to_string(), b.as_bytes().to_vec())),
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
    fn incoming_invite(&self) -> TxnId {
        self.events_of(B)
            .iter()
            .find_map(|(_, e)| match e {
                UaEvent::IncomingInvite { txn, .. } => Some(*txn),
                _ => None,
            })
            .expect("B saw the INVITE")
    }
    fn confirmed(&self, who: usize) -> Vec<DialogId> {
        self.events_of(who)
            .iter()
            .filter_map(|(_, e)| match e {
                UaEvent::DialogConfirmed(d) => Some(d.clone()),
                _ => None,
            })
            .collect()
    }
    fn sent(&self, who: usize, line_prefix: &str) -> Vec<(u64, bool)> {
        self.wire
            .iter()
            .filter(|(_, w, l, _)| *w == who && l.starts_with(line_prefix))
            .map(|(t, _, _, d)| (*t, *d))
            .collect()
    }
    fn respond(&mut self, who: usize, txn: TxnId, a: Answer) {
        let now = self.now;
        self.ua[who].respond(now, txn, a).unwrap();
        self.collect();
    }
}

/// Drops the first `n` packets that match.
fn drop_first(n: usize, f: impl Fn(&Pkt<'_>) -> bool + 'static) -> impl FnMut(&Pkt<'_>) -> bool {
    let mut left = n;
    move |p| {
        if left > 0 && f(p) {
            left -= 1;
            true
        } else {
            false
        }
    }
}

#[test]
fn basic_call_over_lossy_channel() {
    let mut net = Net::pair();
    // lose the first INVITE, the first 180, the first 200 and the first ACK
    let mut rules: Vec<DropRule> = vec![
        Box::new(drop_first(1, |p| {
            p.from == A && p.line.starts_with("INVITE")
        })),
        Box::new(drop_first(1, |p| {
            p.from == B && p.line.starts_with("SIP/2.0 180")
        })),
        Box::new(drop_first(1, |p| {
            p.from == B && p.line.starts_with("SIP/2.0 200") && p.cseq_method == "INVITE"
        })),
        Box::new(drop_first(1, |p| p.from == A && p.line.starts_with("ACK"))),
    ];
    net.drop = Box::new(move |p| rules.iter_mut().any(|r| r(p)));
    let inv = net.invite(Some("v=0\r\n"));
    net.run_until(ms(400));
    // INVITE lost at 0, retransmitted by Timer A at 500 ms
    assert_eq!(net.sent(A, "INVITE"), [(0, false)]);
    net.run_until(ms(520));
    assert_eq!(net.sent(A, "INVITE"), [(0, false), (500, true)]);
    let txn = net.incoming_invite();
    net.respond(B, txn, Answer::new(180));
    net.run_until(ms(1000));
    // the 180 was lost; B's INVITE server transaction answers A's next retransmission (1500 ms)
    // with the 180 again
    net.run_until(ms(1600));
    let early: Vec<_> = net
        .events_of(A)
        .iter()
        .filter_map(|(t, e)| matches!(e, UaEvent::DialogEarly(_)).then_some(*t))
        .collect();
    assert_eq!(early, [1520]);
    net.run_until(ms(2000));
    net.respond(B, txn, Answer::new(200).body("application/sdp", "v=0\r\n"));
    net.run_until(ms(60_000));
    // 200 lost at 2000; B's UAS core retransmits at +500 ms; A's first ACK lost, so B retransmits
    // again at +1500 ms and A re-ACKs
    let oks: Vec<_> = net.sent(B, "SIP/2.0 200").into_iter().collect();
    assert_eq!(oks, [(2000, false), (2500, true), (3500, true)]);
    assert_eq!(net.sent(A, "ACK"), [(2510, false), (3510, true)]);
    let ca = net.confirmed(A);
    let cb = net.confirmed(B);
    assert_eq!(ca.len(), 1);
    assert_eq!(cb.len(), 1);
    assert_eq!(ca[0].call_id, cb[0].call_id);
    assert_eq!(ca[0].local_tag, cb[0].remote_tag);
    assert_eq!(ca[0].remote_tag, cb[0].local_tag);
    let acks = net
        .events_of(B)
        .iter()
        .filter(|(_, e)| matches!(e, UaEvent::AckReceived { .. }))
        .count();
    assert_eq!(acks, 1);
    // the UAC reported one final response
    let finals = net
        .events_of(A)
        .iter()
        .filter(|(_, e)| matches!(e, UaEvent::Response { txn, msg, .. } if *txn == inv && msg.as_message().status() == Some(200)))
        .count();
    assert_eq!(finals, 1);
    assert_eq!(
        net.ua[A].dialog(&ca[0]).unwrap().state,
        DialogState::Confirmed
    );

    // A hangs up
    let now = net.now;
    net.ua[A].bye(now, &ca[0]).unwrap();
    net.run_until(ms(61_000));
    assert!(net.events_of(B).iter().any(|(_, e)| matches!(
        e,
        UaEvent::DialogTerminated {
            reason: EndReason::ByeReceived,
            ..
        }
    )));
    assert!(net.events_of(A).iter().any(|(_, e)| matches!(
        e,
        UaEvent::DialogTerminated {
            reason: EndReason::ByeSent,
            ..
        }
    )));
    assert!(net.ua[A].dialog(&ca[0]).is_none());
    assert!(net.ua[B].dialog(&cb[0]).is_none());
    // everything winds down
    net.run_until(ms(200_000));
    assert_eq!(net.ua[A].poll_timeout(), None);
    assert_eq!(net.ua[B].poll_timeout(), None);
    assert!(net.ua[A].layer().is_empty() && net.ua[B].layer().is_empty());
}

#[test]
fn uas_retransmits_2xx_until_64_t1_then_byes() {
    let mut net = Net::pair();
    net.drop = Box::new(|p| p.from == A && p.line.starts_with("ACK"));
    net.invite(None);
    net.run_until(ms(100));
    let txn = net.incoming_invite();
    net.respond(B, txn, Answer::new(200));
    net.run_until(ms(60_000));
    let times: Vec<u64> = net.sent(B, "SIP/2.0 200").iter().map(|(t, _)| *t).collect();
    // RFC 3261 §13.3.1.4: T1, doubling up to T2, for 64·T1
    assert_eq!(
        times,
        [100, 600, 1600, 3600, 7600, 11600, 15600, 19600, 23600, 27600, 31600]
    );
    let bye = net.sent(B, "BYE");
    assert_eq!(bye[0].0, 32100);
    assert!(net.events_of(B).iter().any(|(t, e)| *t == 32100
        && matches!(
            e,
            UaEvent::DialogTerminated {
                reason: EndReason::NoAck,
                ..
            }
        )));
    // every retransmitted 2xx was ACKed again by A (all ACKs dropped)
    assert_eq!(net.sent(A, "ACK").len(), times.len());
    assert!(net.events_of(A).iter().any(|(_, e)| matches!(
        e,
        UaEvent::DialogTerminated {
            reason: EndReason::ByeReceived,
            ..
        }
    )));
}

#[test]
fn cancel_before_answer() {
    let mut net = Net::pair();
    let inv = net.invite(None);
    // CANCEL asked before any provisional response is held until one arrives (RFC 3261 §9.1)
    let now = net.now;
    assert_eq!(net.ua[A].cancel(now, inv).unwrap(), None);
    net.run_until(ms(5));
    assert!(net.sent(A, "CANCEL").is_empty());
    net.run_until(ms(100));
    let txn = net.incoming_invite();
    net.respond(B, txn, Answer::new(180));
    net.run_until(ms(5000));
    assert_eq!(net.sent(A, "CANCEL").len(), 1);
    assert!(net
        .events_of(B)
        .iter()
        .any(|(_, e)| matches!(e, UaEvent::Cancelled { invite } if *invite == txn)));
    assert!(net.events_of(B).iter().any(|(_, e)| matches!(
        e,
        UaEvent::DialogTerminated {
            reason: EndReason::Cancelled,
            ..
        }
    )));
    assert!(net.events_of(A).iter().any(|(_, e)| matches!(
        e,
        UaEvent::DialogTerminated {
            reason: EndReason::Cancelled,
            ..
        }
    )));
    // 200 for the CANCEL, 487 for the INVITE, ACKed by A's transaction
    assert_eq!(net.sent(B, "SIP/2.0 487").len(), 1);
    assert_eq!(net.sent(A, "ACK").len(), 1);
    assert!(net.events_of(A).iter().any(|(_, e)| matches!(e, UaEvent::Response { msg, .. } if msg.as_message().status() == Some(487))));
    // answering after the CANCEL is refused
    let now = net.now;
    assert!(net.ua[B].respond(now, txn, Answer::new(200)).is_err());
}

fn establish(net: &mut Net) -> (DialogId, DialogId) {
    net.invite(Some("v=0\r\n"));
    net.run_until(net.now - net.t0 + ms(50));
    let txn = net.incoming_invite();
    net.respond(B, txn, Answer::new(200).body("application/sdp", "v=0\r\n"));
    net.run_until(net.now - net.t0 + ms(100));
    (net.confirmed(A)[0].clone(), net.confirmed(B)[0].clone())
}

#[test]
fn reinvite_glare_491_and_backoff() {
    let mut net = Net::pair();
    let (da, db) = establish(&mut net);
    let start = net.ms_now();
    let now = net.now;
    net.ua[A]
        .reinvite(
            now,
            &da,
            Some(("application/sdp".into(), b"v=0\r\ns=a\r\n".to_vec())),
        )
        .unwrap();
    net.ua[B]
        .reinvite(
            now,
            &db,
            Some(("application/sdp".into(), b"v=0\r\ns=b\r\n".to_vec())),
        )
        .unwrap();
    net.collect();
    net.run_until(ms(start + 100));
    // both crossed: each answered the other 491 (RFC 3261 §14.2)
    assert_eq!(net.sent(A, "SIP/2.0 491").len(), 1);
    assert_eq!(net.sent(B, "SIP/2.0 491").len(), 1);
    let retry = |who: usize| {
        net.events_of(who)
            .iter()
            .find_map(|(t, e)| match e {
                UaEvent::GlareRetry { at, .. } => Some((*t, (*at - net.t0).as_millis() as u64)),
                _ => None,
            })
            .unwrap()
    };
    let (ra_seen, ra) = retry(A);
    let (rb_seen, rb) = retry(B);
    // A generated the Call-ID: 2.1–4 s; B: 0–2 s (RFC 3261 §14.1)
    assert!(
        (2100..=4000).contains(&(ra - ra_seen)),
        "A waits {}",
        ra - ra_seen
    );
    assert!(rb - rb_seen <= 2000, "B waits {}", rb - rb_seen);
    // the waits are multiples of 10 ms
    assert_eq!((ra - ra_seen) % 10, 0);
    net.run_until(ms(rb + 20));
    // A's app accepts B's retried re-INVITE
    auto_answer(&mut net, A);
    net.run_until(ms(ra + 20));
    auto_answer(&mut net, B);
    net.run_until(ms(start + 10_000));
    // B's retry goes first and succeeds, then A's
    let invites_a: Vec<u64> = net.sent(A, "INVITE").iter().map(|(t, _)| *t).collect();
    let invites_b: Vec<u64> = net.sent(B, "INVITE").iter().map(|(t, _)| *t).collect();
    assert_eq!(invites_a.len(), 3); // initial, crossed, retried
    assert_eq!(invites_b.len(), 2);
    assert_eq!(invites_a[2], ra);
    assert_eq!(invites_b[1], rb);
    let ok_reinvites = |who: usize| {
        net.events_of(who)
            .iter()
            .filter(|(_, e)| {
                matches!(e, UaEvent::Response { dialog: Some(_), msg, .. }
                if msg.as_message().status() == Some(200)
                && msg.as_message().cseq().unwrap().unwrap().method == Method::Invite)
            })
            .count()
    };
    assert_eq!(ok_reinvites(B), 1);
    assert_eq!(ok_reinvites(A), 2); // initial INVITE and the retried re-INVITE
}

/// The test app: answers every in-dialog request 200 as soon as it arrives.
fn auto_answer(net: &mut Net, who: usize) {
    let pending: Vec<TxnId> = net
        .events_of(who)
        .iter()
        .filter_map(|(_, e)| match e {
            UaEvent::IncomingRequest { txn, .. } => Some(*txn),
            _ => None,
        })
        .collect();
    for t in pending {
        let now = net.now;
        let _ = net.ua[who].respond(now, t, Answer::new(200));
    }
    net.collect();
}

#[test]
fn prack_reliable_provisional_retransmitted_until_prack() {
    let mut net = Net::pair();
    // lose the first three 183s
    net.drop = Box::new(drop_first(3, |p| {
        p.from == B && p.line.starts_with("SIP/2.0 183")
    }));
    net.invite(Some("v=0\r\n"));
    net.run_until(ms(50));
    let txn = net.incoming_invite();
    // an unreliable 180 first stops the INVITE retransmissions, so only the UAS core resends
    net.respond(B, txn, Answer::new(180));
    net.run_until(ms(100));
    net.respond(
        B,
        txn,
        Answer::new(183)
            .body("application/sdp", "v=0\r\n")
            .reliable(),
    );
    net.run_until(ms(10_000));
    // RFC 3262 §3: retransmitted after T1, 2T1, 4T1 ... until the PRACK
    let t: Vec<u64> = net.sent(B, "SIP/2.0 183").iter().map(|(t, _)| *t).collect();
    assert_eq!(t, [100, 600, 1600, 3600]);
    let pracks = net.sent(A, "PRACK");
    assert_eq!(pracks.len(), 1);
    assert_eq!(pracks[0].0, 3610);
    assert!(net
        .events_of(B)
        .iter()
        .any(|(t, e)| *t == 3620 && matches!(e, UaEvent::PrackReceived { rseq: 1, .. })));
    // the PRACK got its 200
    assert!(net
        .events_of(A)
        .iter()
        .any(|(_, e)| matches!(e, UaEvent::Response { msg, .. }
        if msg.as_message().cseq().unwrap().unwrap().method == Method::Prack
        && msg.as_message().status() == Some(200))));
    // the early dialog exists on both sides
    assert_eq!(
        net.events_of(A)
            .iter()
            .filter(|(_, e)| matches!(e, UaEvent::DialogEarly(_)))
            .count(),
        1
    );
    net.respond(B, txn, Answer::new(200));
    net.run_until(ms(12_000));
    assert_eq!(net.confirmed(A).len(), 1);
}

#[test]
fn update_in_early_dialog_and_crossing_updates() {
    let mut net = Net::pair();
    net.invite(Some("v=0\r\n"));
    net.run_until(ms(50));
    let txn = net.incoming_invite();
    net.respond(B, txn, Answer::new(180));
    net.run_until(ms(100));
    let da = net
        .events_of(A)
        .iter()
        .find_map(|(_, e)| match e {
            UaEvent::DialogEarly(d) => Some(d.clone()),
            _ => None,
        })
        .unwrap();
    // RFC 3311: UPDATE works in an early dialog
    let now = net.now;
    net.ua[A]
        .update(
            now,
            &da,
            Some(("application/sdp".into(), b"v=0\r\n".to_vec())),
        )
        .unwrap();
    net.collect();
    net.run_until(ms(150));
    assert!(net.events_of(B).iter().any(|(_, e)| matches!(e, UaEvent::IncomingRequest { msg, .. } if msg.as_message().method() == Some(Method::Update))));
    auto_answer(&mut net, B);
    net.run_until(ms(200));
    assert!(net.events_of(A).iter().any(|(_, e)| matches!(e, UaEvent::Response { msg, .. }
        if msg.as_message().cseq().unwrap().unwrap().method == Method::Update && msg.as_message().status() == Some(200))));
    // a second UPDATE while one is outstanding is refused locally
    let now = net.now;
    net.ua[A].update(now, &da, None).unwrap();
    assert!(net.ua[A].update(now, &da, None).is_err());
}

#[test]
fn session_timer_refresh_by_uac_and_expiry_without_refresh() {
    let mut ca = cfg(A, 5);
    ca.session_expires = Some(90);
    let cb = cfg(B, 6);
    let mut net = Net::new(ca, cb);
    let (da, db) = establish(&mut net);
    let t_answer = 50; // B answered at 50 ms; A got the 2xx at 60 ms
                       // the 2xx names the UAC as refresher (it supports "timer")
    let refresher = net
        .events_of(A)
        .iter()
        .find_map(|(_, e)| match e {
            UaEvent::Response { msg, .. } => msg
                .as_message()
                .header(ims_sip::HeaderName::SessionExpires)
                .map(str::to_owned),
            _ => None,
        })
        .unwrap();
    assert_eq!(refresher, "90;refresher=uac");
    // A refreshes with UPDATE at half the interval
    net.run_until(ms(50_000));
    let updates: Vec<u64> = net.sent(A, "UPDATE").iter().map(|(t, _)| *t).collect();
    assert_eq!(updates[0], t_answer + 10 + 45_000);
    auto_answer(&mut net, B);
    net.run_until(ms(60_000));
    assert!(net.ua[B].dialog(&db).is_some());
    // from now on every refresh is lost: B sends BYE at interval − min(32, interval/3) after the
    // last refresh it answered
    net.drop = Box::new(|p| p.from == A && p.line.starts_with("UPDATE"));
    net.run_until(ms(200_000));
    let bye = net.sent(B, "BYE");
    assert_eq!(bye.len(), 1);
    let answered = net
        .sent(B, "SIP/2.0 200")
        .iter()
        .map(|(t, _)| *t)
        .filter(|t| *t > 40_000)
        .min()
        .unwrap();
    assert_eq!(bye[0].0, answered + 60_000);
    assert!(net.events_of(B).iter().any(|(_, e)| matches!(
        e,
        UaEvent::DialogTerminated {
            reason: EndReason::SessionExpired,
            ..
        }
    )));
    assert!(net.ua[A].dialog(&da).is_none());
}

#[test]
fn session_interval_below_min_se_gets_422() {
    let mut ca = cfg(A, 5);
    ca.session_expires = Some(90);
    let mut cb = cfg(B, 6);
    cb.min_se = 1800;
    let mut net = Net::new(ca, cb);
    net.ua[A].set_retry_422(false);
    net.invite(None);
    net.run_until(ms(1000));
    let r = net
        .events_of(A)
        .iter()
        .find_map(|(_, e)| match e {
            UaEvent::Response { msg, .. } => Some(msg.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(r.as_message().status(), Some(422));
    assert_eq!(UserAgent::min_se_of(&r.as_message()), Some(1800));
    assert!(!net
        .events_of(B)
        .iter()
        .any(|(_, e)| matches!(e, UaEvent::IncomingInvite { .. })));
}

#[test]
fn requests_for_unknown_dialogs_get_481() {
    let mut net = Net::pair();
    let (da, _) = establish(&mut net);
    // B forgets the dialog by hanging up; A's late INFO gets 481
    let now = net.now;
    let db = net.confirmed(B)[0].clone();
    net.ua[B].bye(now, &db).unwrap();
    net.collect();
    net.run_until(ms(1000));
    assert!(net.ua[A].dialog(&da).is_none());
    assert!(net.ua[A]
        .request_in_dialog(net.now, &da, Method::Info, Vec::new(), None)
        .is_err());
}

#[test]
fn stray_ack_is_absorbed() {
    let mut net = Net::pair();
    let (_, db) = establish(&mut net);
    net.run_until(ms(1000));
    let before_events = net.events_of(B).len();
    let before_wire = net.wire.len();
    // an ACK for a dialog B does not know, and a retransmitted ACK for the one it knows
    for to_tag in ["nope", db.local_tag.as_str()] {
        let ack = ims_sip::RequestBuilder::new(Method::Ack, "sip:bob@10.0.0.2:5060")
            .header("Via", "SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK-stray")
            .header(
                "From",
                format!("<sip:alice@example.com>;tag={}", db.remote_tag),
            )
            .header("To", format!("<sip:bob@example.com>;tag={to_tag}"))
            .header("Call-ID", db.call_id.as_str())
            .header("CSeq", "1 ACK")
            .build()
            .unwrap();
        let now = net.now;
        net.ua[B].receive(now, ack, Remote::udp(addr(A))).unwrap();
        net.collect();
    }
    assert_eq!(net.events_of(B).len(), before_events);
    assert_eq!(net.wire.len(), before_wire);
}

/// The INVITEs `who` sent, parsed.
fn invites(net: &Net, who: usize) -> Vec<OwnedMessage> {
    net.raw
        .iter()
        .filter(|(w, b)| *w == who && b.starts_with(b"INVITE "))
        .map(|(_, b)| OwnedMessage::parse_datagram(b.clone()).unwrap())
        .collect()
}

fn branch(m: &OwnedMessage) -> String {
    let m = m.as_message();
    let via = m.header(ims_sip::HeaderName::Via).unwrap().to_owned();
    via.split(";branch=")
        .nth(1)
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned()
}

/// RFC 4028 §7.4 / §3: "The UAC will try again, this time including the Min-SE header field in
/// the request. The header field contains the largest Min-SE header field it observed in all
/// 422 responses previously received." With RFC 3261 §8.1.3.5: same Call-ID, From and To, CSeq
/// one higher, new branch. The application keeps its transaction id.
#[test]
fn invite_is_retried_after_422_with_the_larger_min_se() {
    let mut ca = cfg(A, 5);
    ca.session_expires = Some(90);
    let mut cb = cfg(B, 6);
    cb.min_se = 1800;
    let mut net = Net::new(ca, cb);
    let t = net.invite(Some("v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\n"));
    net.run_until(ms(1000));
    let inv = invites(&net, A);
    assert_eq!(inv.len(), 2, "the original INVITE and one retry");
    let (first, second) = (inv[0].as_message(), inv[1].as_message());
    use ims_sip::HeaderName as H;
    assert_eq!(first.header(H::SessionExpires), Some("90"));
    assert_eq!(first.header(H::MinSe), Some("90"));
    assert_eq!(second.header(H::SessionExpires), Some("1800"));
    assert_eq!(second.header(H::MinSe), Some("1800"));
    assert_eq!(second.header(H::CSeq), Some("2 INVITE"));
    assert_eq!(first.header(H::CSeq), Some("1 INVITE"));
    for h in [H::CallId, H::From, H::To, H::Contact, H::Supported] {
        assert_eq!(first.header(h), second.header(h), "{h:?}");
    }
    assert_ne!(branch(&inv[0]), branch(&inv[1]));
    assert_eq!(second.body(), first.body());
    assert_eq!(second.request_uri_str(), first.request_uri_str());
    // the 422 was ACKed by the INVITE client transaction (RFC 3261 §17.1.1.3)
    assert_eq!(net.sent(A, "ACK").len(), 1);
    // the application sees the retry, not the 422, and keeps its id
    let retry = net
        .events_of(A)
        .iter()
        .find_map(|(_, e)| match e {
            UaEvent::SessionIntervalRetry {
                txn,
                new_txn,
                session_expires,
                min_se,
            } => Some((*txn, *new_txn, *session_expires, *min_se)),
            _ => None,
        })
        .expect("retry event");
    assert_eq!(retry.0, t);
    assert_ne!(retry.1, t);
    assert_eq!((retry.2, retry.3), (1800, 1800));
    assert_eq!(net.ua[A].current_txn(t), retry.1);
    assert!(!net.events_of(A).iter().any(|(_, e)| matches!(e,
        UaEvent::Response { msg, .. } if msg.as_message().status() == Some(422))));
    // B accepts the second INVITE
    let tb = net.incoming_invite();
    net.respond(B, tb, Answer::new(200).body("application/sdp", "v=0\r\n"));
    net.run_until(ms(2000));
    let ok = net
        .events_of(A)
        .iter()
        .find_map(|(_, e)| match e {
            UaEvent::Response { txn, msg, .. } if msg.as_message().status() == Some(200) => {
                Some((*txn, msg.clone()))
            }
            _ => None,
        })
        .expect("200 reported");
    assert_eq!(ok.0, t, "reported under the application's id");
    assert_eq!(
        ok.1.as_message().header(H::SessionExpires),
        Some("1800;refresher=uac")
    );
    let da = net.confirmed(A)[0].clone();
    assert_eq!(net.ua[A].dialog(&da).unwrap().state, DialogState::Confirmed);
    // the in-dialog CSeq continues from the retry's
    let now = net.now;
    net.ua[A].bye(now, &da).unwrap();
    net.collect();
    let bye = net
        .raw
        .iter()
        .rev()
        .find(|(w, b)| *w == A && b.starts_with(b"BYE "))
        .map(|(_, b)| OwnedMessage::parse_datagram(b.clone()).unwrap())
        .unwrap();
    assert_eq!(bye.as_message().header(H::CSeq), Some("3 BYE"));
}

/// Off, the 422 reaches the application (covered above in
/// `session_interval_below_min_se_gets_422`); a 422 that raises nothing is not retried (it
/// would loop), and retries stop after `MAX_422_RETRIES`.
#[test]
fn invite_422_retry_limits() {
    use ims_sip::{HeaderName as H, ResponseBuilder};
    let mut ca = cfg(A, 7);
    ca.session_expires = Some(1000);
    ca.min_se = 90;
    let mut ua = UserAgent::new(ca);
    #[allow(clippy::disallowed_methods)] // origin of the virtual clock
    let now = Instant::now();
    let t = ua
        .invite(
            now,
            InviteParams {
                request_uri: "sip:bob@10.0.0.2:5060".into(),
                from: "<sip:alice@example.com>".into(),
                to: "<sip:bob@example.com>".into(),
                remote: Remote::udp(addr(B)),
                headers: Vec::new(),
                body: None,
            },
        )
        .unwrap();
    let mut last_invite = None;
    let drain = |ua: &mut UserAgent, last: &mut Option<OwnedMessage>| {
        let mut ev = Vec::new();
        while let Some(o) = ua.poll_output() {
            match o {
                UaOutput::Transmit(tx) if tx.bytes.starts_with(b"INVITE ") => {
                    *last = Some(OwnedMessage::parse_datagram(tx.bytes).unwrap());
                }
                UaOutput::Event(e) => ev.push(e),
                _ => {}
            }
        }
        ev
    };
    drain(&mut ua, &mut last_invite);
    let reply_422 = |inv: &OwnedMessage, min_se: u32| {
        ResponseBuilder::from_request_with_tag(&inv.as_message(), 422, Some("x"))
            .header("Min-SE", min_se)
            .build()
            .unwrap()
    };
    // Min-SE 600 is below the Session-Expires sent (1000) but above our Min-SE (90): retry with
    // Min-SE 600 and Session-Expires 1000
    let inv = last_invite.clone().unwrap();
    ua.receive(now, reply_422(&inv, 600), Remote::udp(addr(B)))
        .unwrap();
    let ev = drain(&mut ua, &mut last_invite);
    assert!(
        ev.iter().any(|e| matches!(
            e,
            UaEvent::SessionIntervalRetry {
                session_expires: 1000,
                min_se: 600,
                ..
            }
        )),
        "{ev:?}"
    );
    let inv2 = last_invite.clone().unwrap();
    assert_eq!(inv2.as_message().header(H::MinSe), Some("600"));
    assert_eq!(inv2.as_message().header(H::SessionExpires), Some("1000"));
    // the same Min-SE again raises nothing: the 422 goes to the application
    ua.receive(now, reply_422(&inv2, 600), Remote::udp(addr(B)))
        .unwrap();
    let ev = drain(&mut ua, &mut last_invite);
    assert!(
        ev.iter().any(|e| matches!(e,
        UaEvent::Response { txn, msg, .. } if *txn == t && msg.as_message().status() == Some(422))),
        "{ev:?}"
    );

    // a peer raising Min-SE every time is followed MAX_422_RETRIES times
    let mut c = cfg(A, 8);
    c.session_expires = Some(90);
    let mut ua = UserAgent::new(c);
    let t = ua
        .invite(
            now,
            InviteParams {
                request_uri: "sip:bob@10.0.0.2:5060".into(),
                from: "<sip:alice@example.com>".into(),
                to: "<sip:bob@example.com>".into(),
                remote: Remote::udp(addr(B)),
                headers: Vec::new(),
                body: None,
            },
        )
        .unwrap();
    let mut last = None;
    drain(&mut ua, &mut last);
    let mut retries = 0;
    for i in 1..=10u32 {
        let inv = last.clone().unwrap();
        ua.receive(now, reply_422(&inv, 90 + 100 * i), Remote::udp(addr(B)))
            .unwrap();
        let ev = drain(&mut ua, &mut last);
        if ev
            .iter()
            .any(|e| matches!(e, UaEvent::SessionIntervalRetry { .. }))
        {
            retries += 1;
        } else {
            assert!(ev.iter().any(|e| matches!(e,
                UaEvent::Response { txn, .. } if *txn == t)));
            break;
        }
    }
    assert_eq!(retries, usize::from(ims_txn::ua::MAX_422_RETRIES));
}

/// After a 422 retry the application still cancels with the id `invite()` returned; the CANCEL
/// goes to the INVITE in flight (CSeq 2, its branch).
#[test]
fn cancel_after_422_retry_targets_the_new_invite() {
    let mut ca = cfg(A, 9);
    ca.session_expires = Some(90);
    let mut cb = cfg(B, 10);
    cb.min_se = 1800;
    let mut net = Net::new(ca, cb);
    let t = net.invite(None);
    net.run_until(ms(500));
    let tb = net.incoming_invite();
    net.respond(B, tb, Answer::new(180));
    net.run_until(ms(600));
    let now = net.now;
    let cancel = net.ua[A].cancel(now, t).unwrap();
    assert!(
        cancel.is_some(),
        "a provisional arrived: CANCEL sent at once"
    );
    net.collect();
    let inv = invites(&net, A);
    let c = net
        .raw
        .iter()
        .find(|(w, b)| *w == A && b.starts_with(b"CANCEL "))
        .map(|(_, b)| OwnedMessage::parse_datagram(b.clone()).unwrap())
        .expect("CANCEL sent");
    assert_eq!(
        c.as_message().header(ims_sip::HeaderName::CSeq),
        Some("2 CANCEL")
    );
    assert_eq!(branch(&c), branch(&inv[1]));
    net.run_until(ms(2000));
    assert!(
        net.events_of(A).iter().any(|(_, e)| matches!(e,
        UaEvent::Response { txn, msg, .. } if *txn == t && msg.as_message().status() == Some(487)))
    );
}

/// The requests `who` received as `UaEvent::IncomingRequest` with this method, in order.
fn incoming_requests(net: &Net, who: usize, method: Method<'_>) -> Vec<(TxnId, OwnedMessage)> {
    net.events_of(who)
        .iter()
        .filter_map(|(_, e)| match e {
            UaEvent::IncomingRequest { txn, msg, .. }
                if msg.as_message().method() == Some(method) =>
            {
                Some((*txn, msg.clone()))
            }
            _ => None,
        })
        .collect()
}

fn sent_requests(net: &Net, who: usize, method: &str) -> Vec<OwnedMessage> {
    net.raw
        .iter()
        .filter(|(w, b)| *w == who && b.starts_with(format!("{method} ").as_bytes()))
        .map(|(_, b)| OwnedMessage::parse_datagram(b.clone()).unwrap())
        .collect()
}

/// RFC 4028 §7.4 for session refreshes: a re-INVITE and an UPDATE that meet 422 are sent again
/// in their dialog with Min-SE and Session-Expires raised to the 422's Min-SE (refresher kept),
/// the dialog's next CSeq and a new branch; the application keeps its transaction id and sees
/// `SessionIntervalRetry`, not the 422. A 422 that raises nothing reaches the application.
#[test]
fn refresh_reinvite_and_update_are_retried_after_422() {
    use ims_sip::HeaderName as H;
    let mut ca = cfg(A, 31);
    ca.session_expires = Some(90);
    let mut net = Net::new(ca, cfg(B, 32));
    let (da, _db) = establish(&mut net);
    let base = net.ms_now();

    // re-INVITE: B's application now wants at least 600 s
    let now = net.now;
    let t = net.ua[A]
        .reinvite(
            now,
            &da,
            Some(("application/sdp".into(), b"v=0\r\ns=r\r\n".to_vec())),
        )
        .unwrap();
    net.collect();
    net.run_until(ms(base + 50));
    let (tb, _) = incoming_requests(&net, B, Method::Invite)[0].clone();
    net.respond(B, tb, Answer::new(422).header("Min-SE", "600"));
    net.run_until(ms(base + 100));
    let inv = sent_requests(&net, A, "INVITE");
    assert_eq!(inv.len(), 3, "initial INVITE, re-INVITE, retried re-INVITE");
    let (first, second) = (inv[1].as_message(), inv[2].as_message());
    assert_eq!(first.header(H::SessionExpires), Some("90;refresher=uac"));
    assert_eq!(second.header(H::SessionExpires), Some("600;refresher=uac"));
    assert_eq!(second.header(H::MinSe), Some("600"));
    assert_eq!(first.header(H::CSeq), Some("2 INVITE"));
    assert_eq!(second.header(H::CSeq), Some("3 INVITE"));
    for h in [H::CallId, H::From, H::To, H::Contact] {
        assert_eq!(first.header(h), second.header(h), "{h:?}");
    }
    assert_eq!(second.body(), b"v=0\r\ns=r\r\n");
    assert_eq!(second.request_uri_str(), first.request_uri_str());
    assert_ne!(
        first.top_via().unwrap().unwrap().branch(),
        second.top_via().unwrap().unwrap().branch()
    );
    // the 422 was ACKed by the client transaction
    assert_eq!(
        net.sent(A, "ACK").len(),
        2,
        "the 2xx ACK of the call and the 422's"
    );
    let retry = net
        .events_of(A)
        .iter()
        .find_map(|(_, e)| match e {
            UaEvent::SessionIntervalRetry {
                txn,
                new_txn,
                session_expires,
                min_se,
            } => Some((*txn, *new_txn, *session_expires, *min_se)),
            _ => None,
        })
        .expect("retry event");
    assert_eq!((retry.0, retry.2, retry.3), (t, 600, 600));
    assert_eq!(net.ua[A].current_txn(t), retry.1);
    let is_422 = |e: &UaEvent| matches!(e, UaEvent::Response { msg, .. } if msg.as_message().status() == Some(422));
    assert!(!net.events_of(A).iter().any(|(_, e)| is_422(e)));
    // B accepts the retry: the 200 is reported under the application's id and ACKed
    let (tb2, m2) = incoming_requests(&net, B, Method::Invite)[1].clone();
    assert_eq!(m2.as_message().header(H::CSeq), Some("3 INVITE"));
    net.respond(B, tb2, Answer::new(200).body("application/sdp", "v=0\r\n"));
    net.run_until(ms(base + 200));
    assert!(
        net.events_of(A).iter().any(|(_, e)| matches!(e,
        UaEvent::Response { txn, msg, .. } if *txn == t && msg.as_message().status() == Some(200)))
    );
    assert_eq!(net.sent(A, "ACK").len(), 3);

    // UPDATE: 422 with Min-SE 1200, retried; then a 422 that raises nothing is reported
    let now = net.now;
    let u = net.ua[A].update(now, &da, None).unwrap();
    net.collect();
    net.run_until(ms(base + 250));
    let (ub, um) = incoming_requests(&net, B, Method::Update)[0].clone();
    assert_eq!(um.as_message().header(H::CSeq), Some("4 UPDATE"));
    net.respond(B, ub, Answer::new(422).header("Min-SE", "1200"));
    net.run_until(ms(base + 300));
    let upd = sent_requests(&net, A, "UPDATE");
    assert_eq!(upd.len(), 2);
    let second = upd[1].as_message();
    assert_eq!(second.header(H::CSeq), Some("5 UPDATE"));
    assert_eq!(second.header(H::SessionExpires), Some("1200;refresher=uac"));
    assert_eq!(second.header(H::MinSe), Some("1200"));
    let (ub2, _) = incoming_requests(&net, B, Method::Update)[1].clone();
    net.respond(B, ub2, Answer::new(422).header("Min-SE", "300"));
    net.run_until(ms(base + 400));
    assert_eq!(sent_requests(&net, A, "UPDATE").len(), 2, "no third UPDATE");
    assert!(
        net.events_of(A).iter().any(|(_, e)| matches!(e,
        UaEvent::Response { txn, msg, .. } if *txn == u && msg.as_message().status() == Some(422)))
    );
    // the dialog goes on: the next request takes the next CSeq
    let now = net.now;
    net.ua[A].bye(now, &da).unwrap();
    net.collect();
    assert_eq!(
        sent_requests(&net, A, "BYE")[0]
            .as_message()
            .header(H::CSeq),
        Some("6 BYE")
    );
}

/// RFC 3261 §13.2.2.4 with RFC 6026 Timer M: a 2xx of another fork that arrives after the
/// INVITE client transaction ended (Timer M = 64·T1 after the first 2xx) is still ACKed and
/// ended with BYE; its retransmissions get the same ACK and no second BYE. Switched off, the
/// late dialog is confirmed and left to the application.
#[test]
fn late_forked_2xx_after_timer_m_gets_ack_then_bye() {
    for bye_extra in [true, false] {
        let mut net = Net::pair();
        net.ua[A].set_bye_extra_forks(bye_extra);
        let t = net.invite(Some("v=0\r\n"));
        net.run_until(ms(50));
        let tb = net.incoming_invite();
        net.respond(B, tb, Answer::new(200).body("application/sdp", "v=0\r\n"));
        net.run_until(ms(100));
        let first = net.confirmed(A)[0].clone();
        // Timer M (64·T1 = 32 s) ends the INVITE client transaction
        net.run_until(ms(33_000));
        assert!(net.ua[A].layer().is_empty(), "the INVITE transaction ended");
        // a 2xx from another fork: B's 200 with another To tag and Contact
        let ok = net
            .raw
            .iter()
            .find(|(w, b)| *w == B && b.starts_with(b"SIP/2.0 200"))
            .map(|(_, b)| String::from_utf8(b.to_vec()).unwrap())
            .unwrap();
        let late = ok
            .replace(&format!("tag={}", first.remote_tag), "tag=latefork")
            .replace("sip:bob@10.0.0.2:5060", "sip:bob-fork2@10.0.0.2:5060");
        assert_ne!(late, ok);
        let deliver = |net: &mut Net| {
            let now = net.now;
            let msg = OwnedMessage::parse_datagram(Bytes::from(late.clone())).unwrap();
            net.ua[A].receive(now, msg, Remote::udp(addr(B))).unwrap();
            net.collect();
        };
        let acks_before = sent_requests(&net, A, "ACK").len();
        deliver(&mut net);
        let acks = sent_requests(&net, A, "ACK");
        assert_eq!(acks.len(), acks_before + 1, "the late 2xx is ACKed");
        let ack = acks.last().unwrap().as_message();
        assert_eq!(ack.to().unwrap().unwrap().tag(), Some("latefork"));
        assert_eq!(ack.request_uri_str(), Some("sip:bob-fork2@10.0.0.2:5060"));
        let byes = |net: &Net| {
            sent_requests(net, A, "BYE")
                .iter()
                .filter(|b| b.as_message().to().unwrap().unwrap().tag() == Some("latefork"))
                .count()
        };
        let extra = net.events_of(A).iter().any(|(_, e)| {
            matches!(e, UaEvent::ExtraForkAnswered { txn, dialog, .. }
                if *txn == t && dialog.remote_tag == "latefork")
        });
        if bye_extra {
            assert_eq!(byes(&net), 1, "then BYE");
            assert!(extra);
            // B answers the BYE for a dialog it does not know (481): the dialog ends
            net.run_until(ms(33_200));
            assert!(net.events_of(A).iter().any(|(_, e)| matches!(e,
                UaEvent::DialogTerminated { dialog, reason: EndReason::ExtraFork }
                    if dialog.remote_tag == "latefork")));
        } else {
            assert_eq!(byes(&net), 0);
            assert!(!extra);
            assert!(net.confirmed(A).iter().any(|d| d.remote_tag == "latefork"));
        }
        // a retransmission of the late 2xx: the same ACK again, no second BYE
        deliver(&mut net);
        let acks2 = sent_requests(&net, A, "ACK");
        assert_eq!(acks2.len(), acks_before + 2);
        assert_eq!(acks2.last().unwrap().bytes(), acks.last().unwrap().bytes());
        assert_eq!(byes(&net), usize::from(bye_extra));
        // the first dialog is untouched
        assert!(net.ua[A].dialog(&first).is_some());
    }
}
