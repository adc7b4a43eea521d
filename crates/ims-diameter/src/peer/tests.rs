//! Two peers driven against each other on a virtual clock.

use super::*;
use crate::cx::{Maa, Mar};
use crate::Outcome;

const TW: Duration = Duration::from_secs(6);

/// The origin of the virtual clock.
fn t0() -> Instant {
    #[allow(clippy::disallowed_methods)] // origin of the virtual clock, never read again
    Instant::now()
}

fn cfg(host: &str, apps: &[u32]) -> PeerConfig {
    PeerConfig {
        applications: apps.iter().map(|a| Application::tgpp_auth(*a)).collect(),
        watchdog_interval: TW,
        watchdog_jitter: Duration::ZERO,
        reconnect_interval: Some(Duration::from_secs(30)),
        origin_state_id: Some(7),
        ..PeerConfig::new(host, "ims.example.org")
    }
}

/// What crossed the wire, for assertions.
#[derive(Debug, Clone)]
struct Seen {
    from_a: bool,
    code: u32,
    request: bool,
    flags: u8,
    bytes: Bytes,
}

/// Peer `a` and peer `b`; a's Initiator transport is b's Responder one and vice versa.
struct Net {
    a: Peer,
    b: Peer,
    now: Instant,
    ev_a: Vec<Event>,
    ev_b: Vec<Event>,
    wire: Vec<Seen>,
    /// Drop everything b sends (messages and closes).
    b_mute: bool,
    /// Drop the messages b sends with this command code.
    b_drops: Option<u32>,
    /// Let connection attempts succeed.
    reachable: bool,
    /// The inband TLS handshakes asked for: (from a, side, role).
    tls: Vec<(bool, Side, TlsRole)>,
}

impl Net {
    fn new(a: PeerConfig, b: PeerConfig) -> Net {
        let now = t0();
        Net {
            a: Peer::new(a, now),
            b: Peer::new(b, now),
            now,
            ev_a: Vec::new(),
            ev_b: Vec::new(),
            wire: Vec::new(),
            b_mute: false,
            b_drops: None,
            reachable: true,
            tls: Vec::new(),
        }
    }

    fn pump(&mut self) {
        for _ in 0..50 {
            let mut progressed = false;
            while let Some(o) = self.a.poll_output() {
                progressed = true;
                self.deliver(true, o);
            }
            while let Some(o) = self.b.poll_output() {
                progressed = true;
                self.deliver(false, o);
            }
            if !progressed {
                return;
            }
        }
        panic!("outputs never settle");
    }

    fn deliver(&mut self, from_a: bool, o: Output) {
        let now = self.now;
        let (src, dst) = if from_a {
            (&mut self.a, &mut self.b)
        } else {
            (&mut self.b, &mut self.a)
        };
        let _ = src;
        let other = |s: Side| match s {
            Side::Initiator => Side::Responder,
            Side::Responder => Side::Initiator,
        };
        match o {
            Output::Connect => {
                if self.reachable && dst.accept().is_ok() {
                    let src = if from_a { &mut self.a } else { &mut self.b };
                    src.handle_input(now, Input::Connected);
                } else {
                    let src = if from_a { &mut self.a } else { &mut self.b };
                    src.handle_input(now, Input::ConnectFailed);
                }
            }
            Output::Transmit { side, bytes } => {
                let m = Message::parse(&bytes).expect("peers send valid messages");
                self.wire.push(Seen {
                    from_a,
                    code: m.code(),
                    request: m.is_request(),
                    flags: m.flags().0,
                    bytes: bytes.clone(),
                });
                if !from_a && (self.b_mute || self.b_drops == Some(m.code())) {
                    return;
                }
                dst.handle_input(now, Input::Data(other(side), &bytes));
            }
            Output::Close(side) => {
                if !from_a && self.b_mute {
                    return;
                }
                dst.handle_input(now, Input::TransportClosed(other(side)))
            }
            Output::StartTls { side, role } => self.tls.push((from_a, side, role)),
            Output::Event(e) => {
                if from_a {
                    self.ev_a.push(e)
                } else {
                    self.ev_b.push(e)
                }
            }
        }
    }

    /// Advances the clock to `t`, running every timer on the way in order.
    fn advance(&mut self, d: Duration) {
        let end = self.now + d;
        loop {
            let next = [self.a.poll_timeout(), self.b.poll_timeout()]
                .into_iter()
                .flatten()
                .filter(|t| *t <= end)
                .min();
            let Some(t) = next else { break };
            self.now = t.max(self.now);
            self.a.handle_timeout(self.now);
            self.b.handle_timeout(self.now);
            self.pump();
        }
        self.now = end;
    }

    fn open(&mut self) {
        self.a.connect(self.now);
        self.pump();
        assert_eq!(self.a.state(), PeerState::IOpen);
        assert_eq!(self.b.state(), PeerState::ROpen);
    }

    fn count(&self, from_a: bool, code: u32, request: bool) -> usize {
        self.wire
            .iter()
            .filter(|s| s.from_a == from_a && s.code == code && s.request == request)
            .count()
    }
}

fn mar(host: &str) -> Vec<u8> {
    Mar {
        session_id: format!("{host};1;1").into(),
        vendor_specific_application_id: VendorSpecificApplicationId::cx(),
        auth_session_state: crate::base::AuthSessionState::NoStateMaintained,
        origin_host: host.into(),
        origin_realm: "ims.example.org".into(),
        destination_realm: "ims.example.org".into(),
        user_name: "alice@ims.example.org".into(),
        public_identity: "sip:alice@ims.example.org".into(),
        sip_number_auth_items: 1,
        server_name: "sip:scscf.ims.example.org".into(),
        ..Default::default()
    }
    .encode(0, 0x1234_5678)
}

fn answer_to(req: &OwnedMessage) -> Vec<u8> {
    let mar = Mar::decode(&req.view()).unwrap();
    let mut maa = Maa {
        session_id: mar.session_id.clone(),
        vendor_specific_application_id: mar.vendor_specific_application_id.clone(),
        auth_session_state: mar.auth_session_state,
        origin_host: "hss.ims.example.org".into(),
        origin_realm: "ims.example.org".into(),
        ..Default::default()
    };
    maa.set_outcome(Outcome::SUCCESS);
    maa.encode_answer(req.header())
}

fn requests(ev: &[Event]) -> Vec<OwnedMessage> {
    ev.iter()
        .filter_map(|e| match e {
            Event::Request(m) => Some(m.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn capabilities_exchange_opens_both_sides_with_the_common_applications() {
    let mut n = Net::new(
        cfg("scscf.ims.example.org", &[app::CX, app::RX]),
        cfg("hss.ims.example.org", &[app::CX]),
    );
    n.open();
    assert_eq!(n.count(true, 257, true), 1);
    assert_eq!(n.count(false, 257, false), 1);
    let Some(Event::Open(info)) = n.ev_a.iter().find(|e| matches!(e, Event::Open(_))) else {
        panic!("a not open: {:?}", n.ev_a)
    };
    assert_eq!(info.origin_host, "hss.ims.example.org");
    assert_eq!(info.common_applications, vec![app::CX]);
    assert_eq!(info.origin_state_id, Some(7));
    let Some(Event::Open(info)) = n.ev_b.iter().find(|e| matches!(e, Event::Open(_))) else {
        panic!("b not open")
    };
    assert_eq!(info.origin_host, "scscf.ims.example.org");
    assert_eq!(info.common_applications, vec![app::CX]);
    assert_eq!(n.a.watchdog(), WatchdogState::Okay);
    assert!(n.a.is_usable() && n.b.is_usable());
}

#[test]
fn no_common_application_is_5010_and_closes() {
    let mut n = Net::new(
        cfg("pcscf.ims.example.org", &[app::RX]),
        cfg("hss.ims.example.org", &[app::CX]),
    );
    n.a.connect(n.now);
    n.pump();
    assert_eq!(n.a.state(), PeerState::Closed);
    assert_eq!(n.b.state(), PeerState::Closed);
    assert!(n
        .ev_a
        .contains(&Event::Down(DownReason::CapabilitiesRejected(5010))));
    // no reconnection after a rejection
    n.advance(Duration::from_secs(120));
    assert_eq!(n.count(true, 257, true), 1);
}

#[test]
fn unknown_peer_is_3010() {
    let mut b = cfg("hss.ims.example.org", &[app::CX]);
    b.expected_peer = Some("icscf.ims.example.org".into());
    let mut n = Net::new(cfg("scscf.ims.example.org", &[app::CX]), b);
    n.a.connect(n.now);
    n.pump();
    assert!(n
        .ev_a
        .contains(&Event::Down(DownReason::CapabilitiesRejected(3010))));
    // the CEA carried the E bit (3xxx)
    let cea = n.wire.iter().find(|s| !s.from_a && s.code == 257).unwrap();
    assert_eq!(cea.flags & Flags::ERROR, Flags::ERROR);
}

#[test]
fn relay_application_matches_everything() {
    let mut relay = cfg("dra.ims.example.org", &[]);
    relay.applications = vec![Application::RELAY];
    let mut n = Net::new(cfg("scscf.ims.example.org", &[app::CX, app::RX]), relay);
    n.open();
    assert_eq!(
        n.a.remote().unwrap().common_applications,
        vec![app::CX, app::RX]
    );
}

#[test]
fn request_answer_by_hop_by_hop() {
    let mut n = Net::new(
        cfg("scscf.ims.example.org", &[app::CX]),
        cfg("hss.ims.example.org", &[app::CX]),
    );
    n.open();
    let dl = n.now + Duration::from_secs(5);
    let h1 =
        n.a.send_request(n.now, 1, &mar("scscf.ims.example.org"), dl)
            .unwrap();
    let h2 =
        n.a.send_request(n.now, 2, &mar("scscf.ims.example.org"), dl)
            .unwrap();
    assert_ne!(h1, h2);
    n.pump();
    let reqs = requests(&n.ev_b);
    assert_eq!(reqs.len(), 2);
    assert_eq!(reqs[0].header().hop_by_hop, h1);
    assert_eq!(n.a.pending_requests(), 2);
    // answer in reverse order: the tags still match
    n.b.send_answer(n.now, &answer_to(&reqs[1])).unwrap();
    n.b.send_answer(n.now, &answer_to(&reqs[0])).unwrap();
    n.pump();
    let tags: Vec<u64> = n
        .ev_a
        .iter()
        .filter_map(|e| match e {
            Event::Answer { tag, answer } => {
                assert_eq!(answer.view().outcome(), Some(Outcome::SUCCESS));
                Some(*tag)
            }
            _ => None,
        })
        .collect();
    assert_eq!(tags, vec![2, 1]);
    assert_eq!(n.a.pending_requests(), 0);
}

#[test]
fn request_timeout_then_late_answer_is_discarded() {
    let mut n = Net::new(
        cfg("scscf.ims.example.org", &[app::CX]),
        cfg("hss.ims.example.org", &[app::CX]),
    );
    n.open();
    let dl = n.now + Duration::from_secs(2);
    let hbh =
        n.a.send_request(n.now, 9, &mar("scscf.ims.example.org"), dl)
            .unwrap();
    n.pump();
    n.advance(Duration::from_millis(1999));
    assert!(!n.ev_a.contains(&Event::Timeout { tag: 9 }));
    n.advance(Duration::from_millis(1));
    assert!(n.ev_a.contains(&Event::Timeout { tag: 9 }));
    let req = requests(&n.ev_b).pop().unwrap();
    n.b.send_answer(n.now, &answer_to(&req)).unwrap();
    n.pump();
    assert!(n
        .ev_a
        .contains(&Event::Discarded(Discard::UnknownHopByHop(hbh))));
}

#[test]
fn requests_refused_before_open() {
    let mut p = Peer::new(cfg("scscf.ims.example.org", &[app::CX]), t0());
    let now = t0();
    assert_eq!(
        p.send_request(now, 1, &mar("x"), now),
        Err(PeerError::NotOpen)
    );
}

#[test]
fn watchdog_sends_dwr_after_tw_of_silence_and_stays_okay() {
    let mut n = Net::new(
        cfg("scscf.ims.example.org", &[app::CX]),
        cfg("hss.ims.example.org", &[app::CX]),
    );
    n.open();
    n.advance(TW - Duration::from_millis(1));
    assert_eq!(n.count(true, 280, true), 0);
    n.advance(Duration::from_millis(1));
    // both sides' Tw expire together: each sends a DWR and answers the other's
    assert_eq!(n.count(true, 280, true), 1);
    assert_eq!(n.count(false, 280, false), 1);
    n.advance(TW * 10);
    assert_eq!(n.count(true, 280, true), 11);
    let st = n.a.stats();
    assert_eq!(
        (st.dwr_sent, st.dwa_received, st.dwr_received),
        (11, 11, 11)
    );
    assert_eq!(n.a.watchdog(), WatchdogState::Okay);
    assert_eq!(n.b.watchdog(), WatchdogState::Okay);
}

#[test]
fn traffic_resets_the_watchdog() {
    let mut n = Net::new(
        cfg("scscf.ims.example.org", &[app::CX]),
        cfg("hss.ims.example.org", &[app::CX]),
    );
    n.open();
    for _ in 0..5 {
        n.advance(TW / 2);
        let dl = n.now + Duration::from_secs(1);
        n.a.send_request(n.now, 1, &mar("scscf.ims.example.org"), dl)
            .unwrap();
        n.pump();
        let req = requests(&n.ev_b).pop().unwrap();
        n.b.send_answer(n.now, &answer_to(&req)).unwrap();
        n.pump();
    }
    // a heard the answers, b heard the requests: nobody needed a DWR
    assert_eq!(n.count(true, 280, true), 0);
    assert_eq!(n.count(false, 280, true), 0);
}

#[test]
fn unanswered_watchdog_fails_over_then_closes() {
    let mut n = Net::new(
        cfg("scscf.ims.example.org", &[app::CX]),
        cfg("hss.ims.example.org", &[app::CX]),
    );
    n.open();
    n.b_mute = true;
    let dl = n.now + Duration::from_secs(60);
    n.a.send_request(n.now, 42, &mar("scscf.ims.example.org"), dl)
        .unwrap();
    n.pump();
    n.advance(TW);
    assert_eq!(n.a.watchdog(), WatchdogState::Okay);
    assert_eq!(n.count(true, 280, true), 1);
    n.advance(TW);
    // second Tw without a DWA: SUSPECT, and the pending request is handed back with the T flag
    assert_eq!(n.a.watchdog(), WatchdogState::Suspect);
    assert!(!n.a.is_usable());
    let fo = n
        .ev_a
        .iter()
        .find_map(|e| match e {
            Event::Failover(v) => Some(v.clone()),
            _ => None,
        })
        .expect("failover");
    assert_eq!(fo.len(), 1);
    assert_eq!(fo[0].tag, 42);
    let m = Message::parse(&fo[0].bytes).unwrap();
    assert!(m.flags().is_retransmit());
    assert_eq!(m.end_to_end(), 0x1234_5678);
    n.advance(TW);
    assert_eq!(n.a.watchdog(), WatchdogState::Down);
    assert_eq!(n.a.state(), PeerState::Closed);
    assert!(n.ev_a.contains(&Event::Down(DownReason::WatchdogTimeout)));
    // b's own DWRs were lost too: it closed by its watchdog as well
    assert_eq!(n.b.state(), PeerState::Closed);
}

#[test]
fn suspect_recovers_on_a_late_dwa() {
    let mut n = Net::new(
        cfg("scscf.ims.example.org", &[app::CX]),
        cfg("hss.ims.example.org", &[app::CX]),
    );
    n.open();
    n.b_mute = true;
    n.advance(TW * 2);
    assert_eq!(n.a.watchdog(), WatchdogState::Suspect);
    n.b_mute = false;
    // b answers a's next DWR? no: in SUSPECT a sends none; any message from b brings it back
    let dwr = Dwr {
        origin_host: "hss.ims.example.org".into(),
        origin_realm: "ims.example.org".into(),
        ..Default::default()
    }
    .encode(1, 1);
    n.a.handle_input(n.now, Input::Data(Side::Initiator, &dwr));
    n.pump();
    assert_eq!(n.a.watchdog(), WatchdogState::Okay);
}

#[test]
fn reconnect_after_tc_needs_three_dwas_to_reopen() {
    let mut n = Net::new(
        cfg("scscf.ims.example.org", &[app::CX]),
        cfg("hss.ims.example.org", &[app::CX]),
    );
    n.open();
    n.b_mute = true;
    n.advance(TW * 3);
    assert_eq!(n.a.state(), PeerState::Closed);
    n.b_mute = false;
    // Tc = 30 s after the close, a reconnects (b is a fresh responder)
    n.b = Peer::new(cfg("hss.ims.example.org", &[app::CX]), n.now);
    n.advance(Duration::from_secs(29));
    assert_eq!(n.count(true, 257, true), 1);
    n.advance(Duration::from_secs(1));
    assert_eq!(n.count(true, 257, true), 2);
    assert_eq!(n.a.state(), PeerState::IOpen);
    // the DWR of REOPEN went out at once and its DWA came back: one of three
    assert_eq!(n.a.watchdog(), WatchdogState::Reopen);
    assert!(!n.a.is_usable());
    n.advance(TW);
    assert_eq!(n.a.watchdog(), WatchdogState::Reopen);
    n.advance(TW);
    assert_eq!(n.a.watchdog(), WatchdogState::Okay);
    assert!(n.a.is_usable());
    assert!(n.ev_a.contains(&Event::Watchdog(WatchdogState::Reopen)));
}

#[test]
fn connect_failure_and_timeout() {
    let mut n = Net::new(
        cfg("scscf.ims.example.org", &[app::CX]),
        cfg("hss.ims.example.org", &[app::CX]),
    );
    n.reachable = false;
    n.a.connect(n.now);
    n.pump();
    assert!(n.ev_a.contains(&Event::Down(DownReason::ConnectFailed)));
    assert_eq!(n.a.state(), PeerState::Closed);
    // b mute: the CER is never answered; the connect timeout closes
    n.reachable = true;
    n.b_mute = true;
    n.advance(Duration::from_secs(30));
    assert_eq!(n.a.state(), PeerState::WaitICea);
    n.advance(Duration::from_secs(10));
    assert_eq!(n.a.state(), PeerState::Closed);
    assert_eq!(
        n.ev_a
            .iter()
            .filter(|e| **e == Event::Down(DownReason::ConnectFailed))
            .count(),
        2
    );
}

#[test]
fn dpr_dpa_closes_both_without_reconnect() {
    let mut n = Net::new(
        cfg("scscf.ims.example.org", &[app::CX]),
        cfg("hss.ims.example.org", &[app::CX]),
    );
    n.open();
    n.a.disconnect(n.now, DisconnectCause::Busy);
    n.pump();
    assert_eq!(n.count(true, 282, true), 1);
    assert_eq!(n.count(false, 282, false), 1);
    assert!(n.ev_b.contains(&Event::Down(DownReason::RemoteDisconnect(
        DisconnectCause::Busy
    ))));
    assert!(n.ev_a.contains(&Event::Down(DownReason::LocalDisconnect(
        DisconnectCause::Busy
    ))));
    assert_eq!(n.a.state(), PeerState::Closed);
    assert_eq!(n.b.state(), PeerState::Closed);
    n.advance(Duration::from_secs(300));
    assert_eq!(n.count(true, 257, true), 1);
}

#[test]
fn dpr_without_dpa_times_out() {
    let mut n = Net::new(
        cfg("scscf.ims.example.org", &[app::CX]),
        cfg("hss.ims.example.org", &[app::CX]),
    );
    n.open();
    n.b_mute = true;
    n.a.disconnect(n.now, DisconnectCause::Rebooting);
    n.pump();
    assert_eq!(n.a.state(), PeerState::Closing);
    n.advance(Duration::from_secs(5));
    assert_eq!(n.a.state(), PeerState::Closed);
}

#[test]
fn request_while_closing_is_answered_3002() {
    let mut n = Net::new(
        cfg("scscf.ims.example.org", &[app::CX]),
        cfg("hss.ims.example.org", &[app::CX]),
    );
    n.open();
    n.b_mute = true;
    n.a.disconnect(n.now, DisconnectCause::Rebooting);
    n.pump();
    n.a.handle_input(
        n.now,
        Input::Data(Side::Initiator, &mar("hss.ims.example.org")),
    );
    let mut found = false;
    while let Some(o) = n.a.poll_output() {
        if let Output::Transmit { bytes, .. } = o {
            let m = Message::parse(&bytes).unwrap();
            assert_eq!(m.code(), 303);
            assert!(m.flags().is_error());
            assert_eq!(m.outcome(), Some(Outcome::from_result_code(3002)));
            found = true;
        }
    }
    assert!(found);
}

#[test]
fn election_on_simultaneous_connect_keeps_one_transport() {
    for (ha, hb) in [
        ("a.ims.example.org", "b.ims.example.org"),
        ("b.ims.example.org", "a.ims.example.org"),
    ] {
        let mut n = Net::new(cfg(ha, &[app::CX]), cfg(hb, &[app::CX]));
        // both open their transport before either CER is read; the two Connect outputs: each
        // side is accepted by the other
        n.connect_both();
        assert!(n.a.state().is_open(), "{ha}: {:?}", n.a.state());
        assert!(n.b.state().is_open(), "{hb}: {:?}", n.b.state());
        // the higher Origin-Host (b.ims...) kept its responder transport
        let (winner, loser) = if ha > hb { (&n.a, &n.b) } else { (&n.b, &n.a) };
        assert_eq!(winner.state(), PeerState::ROpen);
        assert_eq!(loser.state(), PeerState::IOpen);
        assert_eq!(n.a.conns.iter().flatten().count(), 1);
        assert_eq!(n.b.conns.iter().flatten().count(), 1);
        // and it carries traffic
        let dl = n.now + Duration::from_secs(5);
        n.a.send_request(n.now, 5, &mar(ha), dl).unwrap();
        n.pump();
        assert_eq!(requests(&n.ev_b).len(), 1);
    }
}

#[test]
fn second_inbound_transport_is_refused_when_open() {
    let mut n = Net::new(
        cfg("scscf.ims.example.org", &[app::CX]),
        cfg("hss.ims.example.org", &[app::CX]),
    );
    n.open();
    assert_eq!(n.b.accept(), Err(PeerError::Busy));
}

#[test]
fn malformed_request_is_answered_not_forwarded() {
    let mut n = Net::new(
        cfg("scscf.ims.example.org", &[app::CX]),
        cfg("hss.ims.example.org", &[app::CX]),
    );
    n.open();
    // a request with an AVP whose length runs past the message: 5014 with E clear, or 3xxx
    let mut bad = mar("scscf.ims.example.org");
    let l = bad.len();
    bad[l - 4..].copy_from_slice(&[0, 0, 0, 0]);
    bad.extend_from_slice(&[0, 0, 1, 7, 0x40, 0, 0, 0xff]);
    let len = bad.len() as u32;
    bad[1..4].copy_from_slice(&len.to_be_bytes()[1..]);
    n.b.handle_input(n.now, Input::Data(Side::Responder, &bad));
    let mut answered = false;
    while let Some(o) = n.b.poll_output() {
        match o {
            Output::Transmit { bytes, .. } => {
                let m = Message::parse(&bytes).unwrap();
                assert!(!m.is_request());
                assert!(m.outcome().is_some_and(|o| !o.is_success()));
                answered = true;
            }
            Output::Event(Event::Request(_)) => panic!("malformed request forwarded"),
            _ => {}
        }
    }
    assert!(answered);
}

#[test]
fn jitter_stays_within_bounds() {
    let mut c = cfg("scscf.ims.example.org", &[app::CX]);
    c.watchdog_interval = Duration::from_secs(30);
    c.watchdog_jitter = Duration::from_secs(2);
    let now = t0();
    let mut p = Peer::new(c, now);
    let mut seen = std::collections::HashSet::new();
    for _ in 0..200 {
        p.set_watchdog(now);
        let t = p.timers[timer_index(Timer::Watchdog)].unwrap() - now;
        assert!(
            t >= Duration::from_secs(28) && t <= Duration::from_secs(32),
            "{t:?}"
        );
        seen.insert(t);
    }
    assert!(seen.len() > 50);
}

#[test]
fn duplicates_by_origin_host_and_end_to_end() {
    let now = t0();
    let mut d = Duplicates::new(Duration::from_secs(240), 1000);
    let r1 = mar("scscf.ims.example.org");
    let m1 = Message::parse(&r1).unwrap();
    assert_eq!(d.check(now, &m1), Duplicate::New);
    assert_eq!(d.check(now, &m1), Duplicate::InProgress);
    let ans = Bytes::from(answer_to(&m1.to_owned()));
    d.answered(&m1, ans.clone());
    // the retransmission after failover: T flag, new Hop-by-Hop, same End-to-End
    let mut r2 = r1.clone();
    r2[4] |= Flags::RETRANSMIT;
    r2[12..16].copy_from_slice(&0xabcdu32.to_be_bytes());
    let m2 = Message::parse(&r2).unwrap();
    let Duplicate::Answered(again) = d.check(now + Duration::from_secs(10), &m2) else {
        panic!("not detected")
    };
    let a = Message::parse(&again).unwrap();
    assert_eq!(a.hop_by_hop(), 0xabcd);
    assert_eq!(&again[16..], &ans[16..]);
    // another origin host with the same End-to-End is another request
    let r3 = mar("icscf.ims.example.org");
    assert_eq!(d.check(now, &Message::parse(&r3).unwrap()), Duplicate::New);
    // forgotten after the window
    assert_eq!(d.check(now + Duration::from_secs(241), &m1), Duplicate::New);
}

#[test]
fn a_restarted_origin_is_forgotten_by_duplicate_detection() {
    let now = t0();
    let mut d = Duplicates::new(Duration::from_secs(240), 1000);
    let r1 = mar("scscf.ims.example.org");
    let m1 = Message::parse(&r1).unwrap();
    assert_eq!(d.check(now, &m1), Duplicate::New);
    d.answered(&m1, Bytes::from(answer_to(&m1.to_owned())));
    let other = mar("icscf.ims.example.org");
    let other = Message::parse(&other).unwrap();
    assert_eq!(d.check(now, &other), Duplicate::New);
    // the S-CSCF restarted with lost state: its next request with the same End-to-End is new
    assert_eq!(d.forget_origin("SCSCF.ims.example.org"), 1);
    assert_eq!(d.check(now, &m1), Duplicate::New);
    // the other origin is still remembered
    assert_eq!(d.check(now, &other), Duplicate::InProgress);
    assert_eq!(d.forget_origin("nobody.ims.example.org"), 0);
}

#[test]
fn duplicate_detection_ignores_the_case_of_origin_host() {
    let now = t0();
    let mut d = Duplicates::new(Duration::from_secs(240), 1000);
    let upper = mar("SCSCF.ims.Example.org");
    let m_upper = Message::parse(&upper).unwrap();
    assert_eq!(d.check(now, &m_upper), Duplicate::New);
    // the same request from the same origin written in lower case
    let lower = mar("scscf.ims.example.org");
    let m_lower = Message::parse(&lower).unwrap();
    assert_eq!(d.check(now, &m_lower), Duplicate::InProgress);
    // the answer recorded under either spelling is found under the other
    d.answered(&m_lower, Bytes::from(answer_to(&m_lower.to_owned())));
    assert!(matches!(d.check(now, &m_upper), Duplicate::Answered(_)));
    assert_eq!(d.len(), 1);
    // another End-to-End Identifier of the same origin is another request
    let mut next = upper.clone();
    next[16..20].copy_from_slice(&0x0bad_f00du32.to_be_bytes());
    assert_eq!(
        d.check(now, &Message::parse(&next).unwrap()),
        Duplicate::New
    );
    assert_eq!(d.len(), 2);
    // forgetting the origin forgets both; expiry after that leaves the count at zero
    assert_eq!(d.forget_origin("scscf.IMS.example.org"), 2);
    assert!(d.is_empty());
    let later = now + Duration::from_secs(241);
    assert_eq!(d.check(later, &m_lower), Duplicate::New);
    assert_eq!(d.len(), 1);
}

#[test]
fn duplicates_are_bounded() {
    let now = t0();
    let mut d = Duplicates::new(Duration::from_secs(240), 10);
    for i in 0..100u32 {
        let mut r = mar("scscf.ims.example.org");
        r[16..20].copy_from_slice(&i.to_be_bytes());
        d.check(now, &Message::parse(&r).unwrap());
    }
    assert!(d.len() <= 10);
}

#[test]
fn a_burst_of_duplicates_is_freed_by_expiry_without_new_requests() {
    let now = t0();
    let mut d = Duplicates::new(Duration::from_secs(240), 100_000);
    let r = mar("scscf.ims.example.org");
    let answer = Bytes::from(answer_to(&Message::parse(&r).unwrap().to_owned()));
    for i in 0..20_000u32 {
        let mut r = r.clone();
        r[16..20].copy_from_slice(&i.to_be_bytes());
        let m = Message::parse(&r).unwrap();
        assert_eq!(d.check(now, &m), Duplicate::New);
        d.answered(&m, answer.clone());
    }
    let room =
        |d: &Duplicates| d.order.capacity() + d.seen.values().map(|m| m.capacity()).sum::<usize>();
    assert_eq!(d.len(), 20_000);
    assert!(room(&d) >= 40_000);
    // within the window nothing goes
    d.expire(now + Duration::from_secs(239));
    assert_eq!(d.len(), 20_000);
    // past it, everything goes and the tables give their room back, with no request arriving
    d.expire(now + Duration::from_secs(241));
    assert!(d.is_empty());
    assert!(d.seen.is_empty());
    assert!(d.order.capacity() <= 1024, "{}", d.order.capacity());
    // half the requests expiring shrinks the tables only once they are a quarter full
    for i in 0..8_000u32 {
        let mut r = r.clone();
        r[16..20].copy_from_slice(&i.to_be_bytes());
        let t = now + Duration::from_secs(300 + u64::from(i / 2_000));
        d.check(t, &Message::parse(&r).unwrap());
    }
    let full = room(&d);
    d.expire(now + Duration::from_secs(300 + 240));
    assert_eq!(d.len(), 6_000);
    // (a hash table's capacity drops by the removed entries' tombstones, not by a shrink)
    assert!(room(&d) > full * 3 / 4, "{} of {full}", room(&d));
    d.expire(now + Duration::from_secs(300 + 242));
    assert_eq!(d.len(), 2_000);
    assert!(room(&d) < full / 2, "{} of {full}", room(&d));
    // what is left is still detected
    let mut last = r.clone();
    last[16..20].copy_from_slice(&7_999u32.to_be_bytes());
    assert_eq!(
        d.check(
            now + Duration::from_secs(300 + 242),
            &Message::parse(&last).unwrap()
        ),
        Duplicate::InProgress
    );
}

#[test]
fn end_to_end_ids_keep_the_time_bits() {
    let mut e = EndToEnd::new(0x1234_5678, 0x000f_fffe);
    assert_eq!(e.next_id(), 0x678f_fffe);
    assert_eq!(e.next_id(), 0x678f_ffff);
    assert_eq!(e.next_id(), 0x6780_0000);
}

// ---------------------------------------------------------------- inband security (TLS after CER/CEA)

fn tls_cfg(host: &str, isi: InbandSecurity) -> PeerConfig {
    PeerConfig {
        inband_security: isi,
        ..cfg(host, &[app::CX])
    }
}

/// The Inband-Security-Id values of the CER (a) or CEA (b) that crossed the wire.
fn isi(n: &Net, from_a: bool) -> Vec<u32> {
    let s = n
        .wire
        .iter()
        .find(|s| s.from_a == from_a && s.code == 257)
        .expect("a CER/CEA");
    let m = Message::parse(&s.bytes).unwrap();
    if from_a {
        Cer::decode(&m).unwrap().inband_security_id.to_vec()
    } else {
        Cea::decode(&m).unwrap().inband_security_id.to_vec()
    }
}

#[test]
fn inband_tls_is_agreed_in_cer_cea_and_opens_after_the_handshake() {
    let mut n = Net::new(
        tls_cfg("scscf.ims.example.org", InbandSecurity::TlsOptional),
        tls_cfg("hss.ims.example.org", InbandSecurity::TlsRequired),
    );
    n.a.connect(n.now);
    n.pump();
    // CER offers both, the CEA names the chosen one (RFC 6733 §6.10)
    assert_eq!(isi(&n, true), vec![NO_INBAND_SECURITY, INBAND_TLS]);
    assert_eq!(isi(&n, false), vec![INBAND_TLS]);
    // the initiator is the TLS client on its transport, the responder the server on its own
    assert_eq!(
        n.tls,
        vec![
            (false, Side::Responder, TlsRole::Server),
            (true, Side::Initiator, TlsRole::Client)
        ]
    );
    for p in [&n.a, &n.b] {
        assert_eq!(p.state(), PeerState::TlsHandshake);
        assert!(!p.is_usable() && !p.is_secure());
    }
    // nothing may be sent in clear before the handshake
    assert_eq!(
        n.a.send_request(n.now, 1, &mar("scscf.ims.example.org"), n.now + TW),
        Err(PeerError::NotOpen)
    );
    assert!(!n.ev_a.iter().any(|e| matches!(e, Event::Open(_))));
    n.a.handle_input(n.now, Input::TlsEstablished(Side::Initiator));
    n.b.handle_input(n.now, Input::TlsEstablished(Side::Responder));
    n.pump();
    assert_eq!(n.a.state(), PeerState::IOpen);
    assert_eq!(n.b.state(), PeerState::ROpen);
    assert!(n.a.is_usable() && n.a.is_secure() && n.b.is_secure());
    assert!(n.ev_a.iter().any(|e| matches!(e, Event::Open(_))));
    // and traffic flows
    n.a.send_request(n.now, 1, &mar("scscf.ims.example.org"), n.now + TW)
        .unwrap();
    n.pump();
    assert_eq!(requests(&n.ev_b).len(), 1);
}

#[test]
fn inband_tls_optional_with_a_clear_peer_stays_clear() {
    // an RFC 6733 peer without Inband-Security-Id: NO_INBAND_SECURITY
    let mut n = Net::new(
        tls_cfg("scscf.ims.example.org", InbandSecurity::TlsOptional),
        tls_cfg("hss.ims.example.org", InbandSecurity::None),
    );
    n.open();
    assert!(isi(&n, false).is_empty());
    assert!(n.tls.is_empty());
    assert!(!n.a.is_secure());
    // the other way round: the CEA says NO_INBAND_SECURITY
    let mut n = Net::new(
        tls_cfg("scscf.ims.example.org", InbandSecurity::None),
        tls_cfg("hss.ims.example.org", InbandSecurity::TlsOptional),
    );
    n.open();
    assert!(isi(&n, true).is_empty());
    assert_eq!(isi(&n, false), vec![NO_INBAND_SECURITY]);
    assert!(n.tls.is_empty());
}

#[test]
fn no_common_security_is_5017() {
    // the responder requires TLS, the initiator offers none
    let mut n = Net::new(
        tls_cfg("scscf.ims.example.org", InbandSecurity::None),
        tls_cfg("hss.ims.example.org", InbandSecurity::TlsRequired),
    );
    n.a.connect(n.now);
    n.pump();
    assert!(n
        .ev_a
        .contains(&Event::Down(DownReason::CapabilitiesRejected(5017))));
    assert_eq!(n.b.state(), PeerState::Closed);
    // the initiator requires TLS, the responder does not do inband security
    let mut n = Net::new(
        tls_cfg("scscf.ims.example.org", InbandSecurity::TlsRequired),
        tls_cfg("hss.ims.example.org", InbandSecurity::None),
    );
    n.a.connect(n.now);
    n.pump();
    assert!(n
        .ev_a
        .contains(&Event::Down(DownReason::CapabilitiesRejected(5017))));
    assert!(n.tls.is_empty());
    // required on one side, optional on the other: TLS
    let mut n = Net::new(
        tls_cfg("scscf.ims.example.org", InbandSecurity::TlsRequired),
        tls_cfg("hss.ims.example.org", InbandSecurity::TlsOptional),
    );
    n.open_tls();
    assert!(n.a.is_secure());
}

#[test]
fn inband_tls_handshake_failure_or_timeout_goes_down_and_reconnects() {
    let mut n = Net::new(
        tls_cfg("scscf.ims.example.org", InbandSecurity::TlsRequired),
        tls_cfg("hss.ims.example.org", InbandSecurity::TlsRequired),
    );
    n.a.connect(n.now);
    n.pump();
    assert_eq!(n.a.state(), PeerState::TlsHandshake);
    // the handshake fails: the owner reports the transport closed
    n.a.handle_input(n.now, Input::TransportClosed(Side::Initiator));
    n.pump();
    assert!(n
        .ev_a
        .contains(&Event::Down(DownReason::TlsHandshakeFailed)));
    assert_eq!(n.a.state(), PeerState::Closed);
    // reconnect after Tc (a transport problem, not a rejection)
    n.b = Peer::new(
        tls_cfg("hss.ims.example.org", InbandSecurity::TlsRequired),
        n.now,
    );
    n.advance(Duration::from_secs(30));
    assert_eq!(n.count(true, 257, true), 2);
    assert_eq!(n.a.state(), PeerState::TlsHandshake);
    // a handshake that never finishes is bounded by the connect timeout (10 s)
    n.advance(Duration::from_secs(9));
    assert_eq!(n.a.state(), PeerState::TlsHandshake);
    n.advance(Duration::from_secs(1));
    assert_eq!(n.a.state(), PeerState::Closed);
    assert_eq!(
        n.ev_a
            .iter()
            .filter(|e| **e == Event::Down(DownReason::TlsHandshakeFailed))
            .count(),
        2
    );
    // a late TlsEstablished changes nothing
    n.a.handle_input(n.now, Input::TlsEstablished(Side::Initiator));
    assert_eq!(n.a.state(), PeerState::Closed);
}

#[test]
fn a_transport_that_is_already_tls_sends_no_inband_security_id() {
    // RFC 6733 §13: TLS from the connect on the TLS port; Inband-Security-Id is not used
    let mut n = Net::new(
        tls_cfg("scscf.ims.example.org", InbandSecurity::TlsRequired),
        tls_cfg("hss.ims.example.org", InbandSecurity::TlsRequired),
    );
    n.a.set_secure(Side::Initiator);
    n.a.connect(n.now);
    let Some(Output::Connect) = n.a.poll_output() else {
        panic!("connect")
    };
    assert!(n.b.accept().is_ok());
    n.b.set_secure(Side::Responder);
    n.a.handle_input(n.now, Input::Connected);
    n.pump();
    assert!(isi(&n, true).is_empty());
    assert!(isi(&n, false).is_empty());
    assert!(n.tls.is_empty());
    assert_eq!(n.a.state(), PeerState::IOpen);
    assert!(n.a.is_secure() && n.b.is_secure());
}

impl Net {
    /// Both sides open their transport before either CER is read; each side's Connect is then
    /// accepted by the other and the exchange runs to its end.
    fn connect_both(&mut self) {
        self.a.connect(self.now);
        self.b.connect(self.now);
        let mut held: Vec<(bool, Output)> = Vec::new();
        while let Some(o) = self.a.poll_output() {
            held.push((true, o));
        }
        while let Some(o) = self.b.poll_output() {
            held.push((false, o));
        }
        for (from_a, o) in held {
            self.deliver(from_a, o);
        }
        self.pump();
    }

    /// Connects a to b and completes the inband TLS handshake both sides asked for.
    fn open_tls(&mut self) {
        self.a.connect(self.now);
        self.pump();
        assert_eq!(self.tls.len(), 2, "both sides start TLS: {:?}", self.tls);
        self.a
            .handle_input(self.now, Input::TlsEstablished(Side::Initiator));
        self.b
            .handle_input(self.now, Input::TlsEstablished(Side::Responder));
        self.pump();
        assert_eq!(self.a.state(), PeerState::IOpen);
        assert_eq!(self.b.state(), PeerState::ROpen);
    }
}

#[test]
fn clear_octets_during_the_inband_handshake_end_it() {
    let mut n = Net::new(
        tls_cfg("scscf.ims.example.org", InbandSecurity::TlsRequired),
        tls_cfg("hss.ims.example.org", InbandSecurity::TlsRequired),
    );
    n.a.connect(n.now);
    n.pump();
    assert_eq!(n.b.state(), PeerState::TlsHandshake);
    // a Diameter message in clear where the ClientHello must come: a protocol violation
    let dwr = Dwr {
        origin_host: "scscf.ims.example.org".into(),
        origin_realm: "ims.example.org".into(),
        ..Default::default()
    }
    .encode(1, 1);
    n.b.handle_input(n.now, Input::Data(Side::Responder, &dwr));
    n.pump();
    assert_eq!(n.b.state(), PeerState::Closed);
    assert!(n
        .ev_b
        .contains(&Event::Down(DownReason::TlsHandshakeFailed)));
    // nothing was answered in clear
    assert_eq!(n.count(false, 280, false), 0);
    // a late TlsEstablished on a closed transport does not open
    n.b.handle_input(n.now, Input::TlsEstablished(Side::Responder));
    assert_eq!(n.b.state(), PeerState::Closed);
}

// ------------------------------------------------------------------ RFC 6737 capabilities update

/// `cfg` plus the Capabilities Update application (Auth-Application-Id 10).
fn cu_cfg(host: &str, apps: &[u32]) -> PeerConfig {
    let mut c = cfg(host, apps);
    c.applications.push(Application::CAPABILITIES_UPDATE);
    c
}

/// The P-CSCF (a: Cx) and the PCRF (b: Cx and Rx), both supporting Capabilities Update,
/// connected (CER/CEA done).
fn pcscf_and_pcrf() -> Net {
    let mut n = Net::new(
        cu_cfg("pcscf.ims.example.org", &[app::CX]),
        cu_cfg("pcrf.ims.example.org", &[app::CX, app::RX]),
    );
    n.open();
    n
}

/// a adds Rx to its applications on the open connection (its CUR goes out) and the network
/// runs until quiet.
fn add_rx(n: &mut Net) {
    let mut apps = n.a.config().applications.clone();
    apps.push(Application::tgpp_auth(app::RX));
    n.a.update_capabilities(n.now, apps).unwrap();
    n.pump();
}

fn result_code_of(s: &Seen) -> Option<u32> {
    Message::parse(&s.bytes)
        .unwrap()
        .outcome()
        .map(|o| o.code())
}

#[test]
fn capabilities_update_adds_an_application_on_the_open_connection() {
    let mut n = pcscf_and_pcrf();
    assert!(n.a.remote().unwrap().supports_capabilities_update());
    assert!(!n.a.remote().unwrap().common_applications.contains(&app::RX));
    add_rx(&mut n);
    // one CUR (Application-Id 10, no Inband-Security-Id) and its CUA 2001
    let cur: Vec<&Seen> = n.wire.iter().filter(|s| s.code == 328).collect();
    assert_eq!(cur.len(), 2, "{:?}", n.wire);
    assert!(cur[0].from_a && cur[0].request);
    let m = Message::parse(&cur[0].bytes).unwrap();
    assert_eq!(m.application_id(), 10);
    assert!(m.find(dict::INBAND_SECURITY_ID).is_none());
    assert!(!cur[1].from_a && !cur[1].request);
    assert_eq!(result_code_of(cur[1]), Some(2001));
    // both sides now share Rx, on the same connection (no second CER)
    for (remote, ev) in [(n.a.remote(), &n.ev_a), (n.b.remote(), &n.ev_b)] {
        let r = remote.unwrap();
        assert!(r.common_applications.contains(&app::RX), "{r:?}");
        assert!(
            ev.contains(&Event::CapabilitiesUpdated(r.clone())),
            "{ev:?}"
        );
    }
    assert_eq!(n.count(true, 257, true), 1);
    assert_eq!(n.a.state(), PeerState::IOpen);
    assert_eq!(n.b.state(), PeerState::ROpen);
    assert!(n
        .a
        .send_request(n.now, 1, &mar("pcscf.ims.example.org"), n.now + TW)
        .is_ok());
}

#[test]
fn capabilities_update_leaving_nothing_in_common_is_5010_then_dpr() {
    let mut n = Net::new(
        cu_cfg("scscf.ims.example.org", &[app::CX]),
        cu_cfg("hss.ims.example.org", &[app::CX]),
    );
    n.open();
    n.a.update_capabilities(
        n.now,
        vec![
            Application::tgpp_auth(app::RX),
            Application::CAPABILITIES_UPDATE,
        ],
    )
    .unwrap();
    n.pump();
    let cua = n.wire.iter().find(|s| s.code == 328 && !s.request).unwrap();
    assert_eq!(result_code_of(cua), Some(5010));
    // the receiver closes the connection with DPR (DO_NOT_WANT_TO_TALK_TO_YOU): no reconnect
    assert_eq!(n.count(false, 282, true), 1);
    assert_eq!(n.a.state(), PeerState::Closed);
    assert_eq!(n.b.state(), PeerState::Closed);
    assert!(n.ev_a.contains(&Event::Down(DownReason::RemoteDisconnect(
        DisconnectCause::DoNotWantToTalkToYou
    ))));
    assert!(!n
        .ev_a
        .iter()
        .any(|e| matches!(e, Event::CapabilitiesUpdated(_))));
    n.advance(Duration::from_secs(120));
    assert_eq!(n.count(true, 257, true), 1);
}

#[test]
fn capabilities_update_needs_the_application_on_both_sides() {
    // b does not advertise application 10: no CUR is sent
    let mut n = Net::new(
        cu_cfg("pcscf.ims.example.org", &[app::CX]),
        cfg("pcrf.ims.example.org", &[app::CX, app::RX]),
    );
    n.open();
    assert!(!n.a.remote().unwrap().supports_capabilities_update());
    let apps = vec![
        Application::tgpp_auth(app::CX),
        Application::tgpp_auth(app::RX),
        Application::CAPABILITIES_UPDATE,
    ];
    assert_eq!(
        n.a.update_capabilities(n.now, apps.clone()),
        Err(PeerError::UpdateUnsupported)
    );
    n.pump();
    assert_eq!(n.wire.iter().filter(|s| s.code == 328).count(), 0);
    // stored for the next capabilities exchange
    assert_eq!(n.a.config().applications, apps);
    // a CUR to it anyway is answered 3007 DIAMETER_APPLICATION_UNSUPPORTED, nothing changes
    let h = crate::message::Header {
        version: 1,
        length: 0,
        flags: Flags(Flags::REQUEST),
        code: CAPABILITIES_UPDATE,
        application_id: CAPABILITIES_UPDATE_APPLICATION,
        hop_by_hop: 77,
        end_to_end: 78,
    };
    let mut cur = Vec::new();
    n.a.config().cer(true).encode_into(&h, &mut cur);
    n.b.handle_input(n.now, Input::Data(Side::Responder, &cur));
    n.pump();
    let cua = n.wire.iter().find(|s| s.code == 328 && !s.from_a).unwrap();
    assert_eq!(result_code_of(cua), Some(3007));
    assert_eq!(cua.flags & Flags::ERROR, Flags::ERROR);
    assert_eq!(n.b.remote().unwrap().common_applications, vec![app::CX]);
    // while closed, an update is only stored
    let mut c = Peer::new(cu_cfg("x.ims.example.org", &[app::CX]), n.now);
    assert_eq!(c.update_capabilities(n.now, apps), Ok(()));
}

/// Our CURs on the wire (from a).
fn curs(n: &Net) -> Vec<Seen> {
    n.wire
        .iter()
        .filter(|s| s.from_a && s.code == 328 && s.request)
        .cloned()
        .collect()
}

#[test]
fn unanswered_cur_is_sent_again_after_tw_then_the_connection_is_reopened() {
    let mut n = pcscf_and_pcrf();
    // the PCRF answers DWRs but its CUAs are lost
    n.b_drops = Some(328);
    add_rx(&mut n);
    assert_eq!(curs(&n).len(), 1);
    assert_eq!(curs(&n)[0].flags & 0x10, 0, "first CUR without the T flag");
    // nothing before Tw
    n.advance(TW - Duration::from_millis(1));
    assert_eq!(curs(&n).len(), 1);
    // at Tw: the same CUR again (same identifiers and AVPs), with the T flag
    n.advance(Duration::from_millis(1));
    let c = curs(&n);
    assert_eq!(c.len(), 2, "{:?}", n.wire);
    assert_eq!(c[1].flags, c[0].flags | 0x10);
    assert_eq!(c[1].bytes[5..], c[0].bytes[5..]);
    assert_eq!(n.a.state(), PeerState::IOpen);
    assert!(n.ev_a.iter().all(|e| !matches!(e, Event::Down(_))));
    // the watchdog is fine all along (the PCRF answers DWRs): only the CUR timer acts
    assert_eq!(n.a.watchdog(), WatchdogState::Okay);
    // a second Tw without CUA: no third CUR, the connection is closed
    n.advance(TW - Duration::from_millis(1));
    assert_eq!(n.a.state(), PeerState::IOpen);
    n.advance(Duration::from_millis(1));
    assert_eq!(curs(&n).len(), 2);
    assert_eq!(n.a.state(), PeerState::Closed);
    assert!(
        n.ev_a
            .contains(&Event::Down(DownReason::CapabilitiesUpdateTimeout)),
        "{:?}",
        n.ev_a
    );
    // after Tc we connect again and the new CER/CEA carries Rx: the update happened the
    // RFC 6733 §5.3 way
    assert_eq!(n.count(true, 257, true), 1);
    n.advance(Duration::from_secs(30));
    assert_eq!(n.count(true, 257, true), 2);
    assert_eq!(n.a.state(), PeerState::IOpen);
    assert!(n.a.remote().unwrap().common_applications.contains(&app::RX));
    // and no CUR is left waiting
    n.advance(TW * 3);
    assert_eq!(curs(&n).len(), 2);
    assert_eq!(n.a.state(), PeerState::IOpen);
}

#[test]
fn a_cua_to_the_retransmitted_cur_completes_the_update() {
    let mut n = pcscf_and_pcrf();
    n.b_drops = Some(328);
    add_rx(&mut n);
    // the first CUA is lost; the PCRF answers the retransmission
    n.b_drops = None;
    n.advance(TW);
    assert_eq!(curs(&n).len(), 2);
    let r = n.a.remote().unwrap().clone();
    assert!(r.common_applications.contains(&app::RX), "{r:?}");
    assert!(n.ev_a.contains(&Event::CapabilitiesUpdated(r)));
    // the timer is off: the connection stays, no more CURs
    n.advance(TW * 4);
    assert_eq!(curs(&n).len(), 2);
    assert_eq!(n.a.state(), PeerState::IOpen);
    assert_eq!(n.b.state(), PeerState::ROpen);
    assert_eq!(n.count(true, 257, true), 1);
}

/// RFC 6733 §8.16: a DWR or DWA with another non-zero Origin-State-Id than the peer's last one
/// (CER/CEA, then the earlier watchdogs) is reported: the peer restarted.
#[test]
fn a_new_origin_state_id_in_a_dwr_or_dwa_is_reported() {
    let mut n = Net::new(
        cfg("scscf.ims.example.org", &[app::CX]),
        cfg("hss.ims.example.org", &[app::CX]),
    );
    n.open();
    assert_eq!(n.a.remote().unwrap().origin_state_id, Some(7));
    let changes = |ev: &[Event]| {
        ev.iter()
            .filter_map(|e| match e {
                Event::OriginStateChanged { previous, current } => Some((*previous, *current)),
                _ => None,
            })
            .collect::<Vec<_>>()
    };
    let dwr = |id: u32, hbh: u32| {
        Dwr {
            origin_host: "hss.ims.example.org".into(),
            origin_realm: "ims.example.org".into(),
            origin_state_id: Some(id),
            ..Default::default()
        }
        .encode(hbh, hbh)
    };
    // the same value, then 0 ("infer nothing"): nothing
    for (id, hbh) in [(7, 1), (0, 2)] {
        n.a.handle_input(n.now, Input::Data(Side::Initiator, &dwr(id, hbh)));
        n.pump();
    }
    assert_eq!(changes(&n.ev_a), []);
    // a DWR from the next run
    n.a.handle_input(n.now, Input::Data(Side::Initiator, &dwr(8, 3)));
    n.pump();
    assert_eq!(changes(&n.ev_a), [(Some(7), 8)]);
    assert_eq!(n.a.remote().unwrap().origin_state_id, Some(8));
    // a DWA (to a's own DWR, b's answer dropped) from the run after
    n.b_drops = Some(280);
    n.advance(TW);
    let sent = n
        .wire
        .iter()
        .rev()
        .find(|s| s.from_a && s.code == 280 && s.request)
        .expect("a's DWR")
        .bytes
        .clone();
    let dwa = Dwa {
        result_code: 2001,
        origin_host: "hss.ims.example.org".into(),
        origin_realm: "ims.example.org".into(),
        origin_state_id: Some(9),
        ..Default::default()
    }
    .encode_answer(Message::parse(&sent).unwrap().header());
    n.a.handle_input(n.now, Input::Data(Side::Initiator, &dwa));
    n.pump();
    assert_eq!(changes(&n.ev_a), [(Some(7), 8), (Some(8), 9)]);
    assert_eq!(n.a.stats().dwa_received, 1);
}

// ------------------------------------------------------------------ RFC 6733 §5.6 audit (session 10)

#[test]
fn election_compares_origin_hosts_without_case() {
    // RFC 6733 §5.6.4: octet strings, 'a'..'z' equal to 'A'..'Z'. As raw octets "HSS…" < "cscf…"
    // ('H' 0x48 < 'c' 0x63), without case "hss…" > "cscf…": the HSS must win.
    assert!(wins_election("HSS.ims.example.org", "cscf.ims.example.org"));
    assert!(!wins_election(
        "cscf.ims.example.org",
        "HSS.ims.example.org"
    ));
    // identities equal but for case: nobody wins (no transport kept by both)
    assert!(!wins_election("hss.IMS.example.org", "HSS.ims.example.org"));
    assert!(!wins_election("HSS.ims.example.org", "hss.IMS.example.org"));
    let mut n = Net::new(
        cfg("HSS.ims.example.org", &[app::CX]),
        cfg("cscf.ims.example.org", &[app::CX]),
    );
    n.connect_both();
    // the HSS kept the connection the CSCF opened: R-Open there, I-Open at the CSCF
    assert_eq!(n.a.state(), PeerState::ROpen);
    assert_eq!(n.b.state(), PeerState::IOpen);
}

/// A lone peer `host` (Cx) at [`t0`] that has asked for its connection.
fn connecting(host: &str) -> (Peer, Instant) {
    let mut a = Peer::new(cfg(host, &[app::CX]), t0());
    let now = t0();
    a.connect(now);
    assert_eq!(a.poll_output(), Some(Output::Connect));
    (a, now)
}

#[test]
fn a_non_cea_in_wait_i_cea_closes_at_once() {
    let (mut a, now) = connecting("scscf.ims.example.org");
    a.handle_input(now, Input::Connected);
    assert_eq!(a.state(), PeerState::WaitICea);
    while a.poll_output().is_some() {}
    // the peer answers our CER with a DWR: I-Rcv-Non-CEA → Error → Closed, without waiting
    // for the connect timer
    let dwr = Dwr {
        origin_host: "hss.ims.example.org".into(),
        origin_realm: "ims.example.org".into(),
        ..Default::default()
    }
    .encode(9, 9);
    a.handle_input(now, Input::Data(Side::Initiator, &dwr));
    assert_eq!(a.state(), PeerState::Closed);
    let out: Vec<Output> = std::iter::from_fn(|| a.poll_output()).collect();
    assert!(out.contains(&Output::Close(Side::Initiator)), "{out:?}");
    assert!(
        out.contains(&Output::Event(Event::Down(DownReason::ConnectFailed))),
        "{out:?}"
    );
    // and it connects again after Tc
    a.handle_timeout(now + Duration::from_secs(30));
    assert_eq!(a.poll_output(), Some(Output::Connect));
}

#[test]
fn a_second_cer_while_the_election_waits_drops_the_held_one() {
    // Wait-Conn-Ack/Elect: the peer's transport sends a second CER (R-Reject): the transport is
    // closed and the held CER forgotten (R-Peer-Disc → Wait-Conn-Ack), so no CEA goes to a
    // closed transport when our connection comes up
    let (mut a, now) = connecting("z.ims.example.org");
    a.accept().unwrap();
    let cer = cfg("b.ims.example.org", &[app::CX]).cer(false).encode(1, 1);
    a.handle_input(now, Input::Data(Side::Responder, &cer));
    assert_eq!(a.state(), PeerState::WaitConnAckElect);
    a.handle_input(now, Input::Data(Side::Responder, &cer));
    assert_eq!(a.state(), PeerState::WaitConnAck);
    while a.poll_output().is_some() {}
    a.handle_input(now, Input::Connected);
    assert_eq!(a.state(), PeerState::WaitICea);
    let out: Vec<Output> = std::iter::from_fn(|| a.poll_output()).collect();
    assert!(
        out.iter().all(|o| !matches!(
            o,
            Output::Transmit {
                side: Side::Responder,
                ..
            }
        )),
        "{out:?}"
    );
}

#[test]
fn dpr_with_requests_in_flight_waits_for_their_answers() {
    let mut n = Net::new(
        cfg("scscf.ims.example.org", &[app::CX]),
        cfg("hss.ims.example.org", &[app::CX]),
    );
    n.open();
    // a's MAR reaches b; before b answers, b sends DPR
    let dl = n.now + Duration::from_secs(20);
    n.a.send_request(n.now, 1, &mar("scscf.ims.example.org"), dl)
        .unwrap();
    n.pump();
    let req = requests(&n.ev_b).pop().unwrap();
    n.b.disconnect(n.now, DisconnectCause::Busy);
    n.pump();
    // a answered DPA (success) and waits for its answer; b got the DPA and waits to answer
    assert_eq!(n.count(false, 282, true), 1);
    assert_eq!(n.count(true, 282, false), 1);
    assert_eq!(n.a.state(), PeerState::Closing);
    assert_eq!(n.b.state(), PeerState::Closing);
    assert!(!n.a.is_usable());
    assert_eq!(
        n.a.send_request(n.now, 2, &mar("scscf.ims.example.org"), dl),
        Err(PeerError::NotOpen)
    );
    // b answers: the MAA reaches a, then both close, nothing failed over
    n.b.send_answer(n.now, &answer_to(&req)).unwrap();
    n.pump();
    assert!(
        n.ev_a
            .iter()
            .any(|e| matches!(e, Event::Answer { tag: 1, .. })),
        "{:?}",
        n.ev_a
    );
    assert!(!n.ev_a.iter().any(|e| matches!(e, Event::Failover(_))));
    assert_eq!(n.a.state(), PeerState::Closed);
    assert_eq!(n.b.state(), PeerState::Closed);
    assert!(n.ev_a.contains(&Event::Down(DownReason::RemoteDisconnect(
        DisconnectCause::Busy
    ))));
    assert!(n.ev_b.contains(&Event::Down(DownReason::LocalDisconnect(
        DisconnectCause::Busy
    ))));
    // BUSY: a reconnects after Tc
    n.advance(Duration::from_secs(31));
    assert!(n.a.state().is_open());
}

#[test]
fn dpr_grace_is_bounded_then_fails_over() {
    let mut n = Net::new(
        cfg("scscf.ims.example.org", &[app::CX]),
        cfg("hss.ims.example.org", &[app::CX]),
    );
    n.open();
    let dl = n.now + Duration::from_secs(60);
    n.a.send_request(n.now, 1, &mar("scscf.ims.example.org"), dl)
        .unwrap();
    n.pump();
    n.b.disconnect(n.now, DisconnectCause::Rebooting);
    n.pump();
    assert_eq!(n.a.state(), PeerState::Closing);
    // a request b sends meanwhile is not taken: 3002 so it goes elsewhere
    n.a.handle_input(
        n.now,
        Input::Data(Side::Initiator, &mar("hss.ims.example.org")),
    );
    n.pump();
    let last = n.wire.last().unwrap();
    assert!(last.from_a && last.code == 303 && !last.request);
    assert_eq!(
        Message::parse(&last.bytes).unwrap().outcome(),
        Some(Outcome::from_result_code(3002))
    );
    // b never answers the MAR: after the disconnect timeout (5 s) both give up, a fails over
    n.advance(Duration::from_secs(5));
    assert_eq!(n.a.state(), PeerState::Closed);
    assert_eq!(n.b.state(), PeerState::Closed);
    let failed: Vec<u64> = n
        .ev_a
        .iter()
        .filter_map(|e| match e {
            Event::Failover(l) => Some(l.iter().map(|p| p.tag).collect::<Vec<_>>()),
            _ => None,
        })
        .flatten()
        .collect();
    assert_eq!(failed, [1]);
    assert!(n.ev_a.contains(&Event::Down(DownReason::RemoteDisconnect(
        DisconnectCause::Rebooting
    ))));
}

#[test]
fn wait_returns_times_out_like_the_other_waiting_states() {
    // RFC 6733 §5.6: Wait-Returns, Timeout → Error → Closed. We lose the election (the peer's
    // Origin-Host is higher), the CEA on our transport never comes and the peer keeps its
    // transport open: the connect timer (10 s) closes both.
    let (mut a, now) = connecting("a.ims.example.org");
    a.handle_input(now, Input::Connected);
    a.accept().unwrap();
    let cer = cfg("z.ims.example.org", &[app::CX]).cer(false).encode(1, 1);
    a.handle_input(now, Input::Data(Side::Responder, &cer));
    assert_eq!(a.state(), PeerState::WaitReturns);
    while a.poll_output().is_some() {}
    a.handle_timeout(now + Duration::from_secs(9));
    assert_eq!(a.state(), PeerState::WaitReturns);
    a.handle_timeout(now + Duration::from_secs(10));
    assert_eq!(a.state(), PeerState::Closed);
    let out: Vec<Output> = std::iter::from_fn(|| a.poll_output()).collect();
    assert!(out.contains(&Output::Close(Side::Initiator)), "{out:?}");
    assert!(out.contains(&Output::Close(Side::Responder)), "{out:?}");
    assert!(
        out.contains(&Output::Event(Event::Down(DownReason::ConnectFailed))),
        "{out:?}"
    );
}

/// Requests and answers handed over as `Bytes` are transmitted as they are (the storage on the
/// wire is theirs): a request keeps the Hop-by-Hop Identifier its owner wrote unless that one is
/// pending on the peer (then a fresh one, copied); `send_request`'s fresh identifiers skip the
/// pending ones; a buffer that is not a request is refused; octets read as `Bytes`
/// (`handle_data`) give the same requests, and the remote information's version moves only when
/// the remote information does.
#[test]
fn requests_and_answers_handed_over_as_bytes_are_not_copied() {
    let mut n = Net::new(
        cfg("scscf.ims.example.org", &[app::CX]),
        cfg("hss.ims.example.org", &[app::CX]),
    );
    assert_eq!(n.a.remote_version(), 0);
    n.open();
    let version = n.a.remote_version();
    assert_ne!(version, 0);
    let dl = n.now + Duration::from_secs(5);
    const X: u32 = 0x1000_0000;
    let mut m = mar("scscf.ims.example.org");
    m[12..16].copy_from_slice(&X.to_be_bytes());
    let b = Bytes::from(m);
    assert_eq!(n.a.send_request_bytes(n.now, 1, b.clone(), dl), Ok(X));
    let sent = |n: &mut Net| loop {
        match n.a.poll_output() {
            Some(Output::Transmit { bytes, .. }) => return bytes,
            Some(o) => n.deliver(true, o),
            None => panic!("nothing transmitted"),
        }
    };
    let first = sent(&mut n);
    assert_eq!((first.as_ptr(), first.len()), (b.as_ptr(), b.len()));
    // the same identifier again while the first is pending: a fresh one, on a copy
    let second = n.a.send_request_bytes(n.now, 2, b.clone(), dl).unwrap();
    assert_ne!(second, X);
    let copy = sent(&mut n);
    assert_ne!(copy.as_ptr(), b.as_ptr());
    assert_eq!(crate::Header::parse(&copy).unwrap().hop_by_hop, second);
    // the peer's own counter steps over a pending identifier
    n.a.next_hbh = X - 1;
    let third = n.a.send_request(n.now, 3, &b, dl).unwrap();
    assert_eq!(third, X + 1);
    let third_bytes = sent(&mut n);
    // refused: too short, an answer, a Message Length beyond the octets
    let short = Bytes::from_static(&[1, 0, 0, 20, 0x80]);
    assert_eq!(
        n.a.send_request_bytes(n.now, 4, short, dl),
        Err(PeerError::Invalid("request"))
    );
    let mut ans = b.to_vec();
    ans[4] &= !0x80;
    assert_eq!(
        n.a.send_request_bytes(n.now, 4, Bytes::from(ans), dl),
        Err(PeerError::Invalid("request"))
    );
    assert_eq!(
        n.a.send_request_bytes(n.now, 4, b.slice(..b.len() - 4), dl),
        Err(PeerError::Invalid("request"))
    );
    assert_eq!(n.a.pending_requests(), 3);
    // b reads the three as one run of octets, given as Bytes
    let mut wire = first.to_vec();
    wire.extend_from_slice(&copy);
    wire.extend_from_slice(&third_bytes);
    n.b.handle_data(n.now, Side::Responder, Bytes::from(wire));
    n.pump();
    let reqs = requests(&n.ev_b);
    let hbhs: Vec<u32> = reqs.iter().map(|r| r.header().hop_by_hop).collect();
    assert_eq!(hbhs, vec![X, second, X + 1]);
    // b's answers as Bytes: transmitted as they are
    for r in &reqs {
        let a = Bytes::from(answer_to(r));
        n.b.send_answer_bytes(n.now, a.clone()).unwrap();
        let out = loop {
            match n.b.poll_output() {
                Some(Output::Transmit { bytes, .. }) => break bytes,
                Some(o) => n.deliver(false, o),
                None => panic!("no answer transmitted"),
            }
        };
        assert_eq!(out.as_ptr(), a.as_ptr());
        n.a.handle_input(n.now, Input::Data(Side::Initiator, &out));
    }
    n.pump();
    assert_eq!(n.a.pending_requests(), 0);
    let mut tags: Vec<u64> = n
        .ev_a
        .iter()
        .filter_map(|e| match e {
            Event::Answer { tag, .. } => Some(*tag),
            _ => None,
        })
        .collect();
    tags.sort_unstable();
    assert_eq!(tags, vec![1, 2, 3]);
    assert_eq!(n.a.remote_version(), version);
    // an answer that is not one, as Bytes: refused like send_answer
    assert_eq!(
        n.b.send_answer_bytes(n.now, b.clone()),
        Err(PeerError::Invalid("answer"))
    );
}
