//! Fake-clock tests of the four transaction state machines (RFC 3261 §17 Figures 5–8, RFC 6026
//! Figures 5 and 7): every timer and transition, with exact retransmission instants.

use bytes::Bytes;
use ims_sip::{HeaderName, Method, OwnedMessage, RequestBuilder, ResponseBuilder};
use ims_txn::{
    Config, Event, Input, Kind, Output, Remote, State, Timer, TimerConfig, TransactionLayer,
    Transmit, Transport, TxnError, TxnId,
};
use std::time::{Duration, Instant};

const UDP: Transport = Transport::Udp;
const TCP: Transport = Transport::Tcp;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn peer(t: Transport) -> Remote {
    Remote {
        transport: t,
        addr: "192.0.2.10:5060".parse().unwrap(),
    }
}

fn request(method: Method<'_>, branch: &str, t: Transport) -> OwnedMessage {
    RequestBuilder::new(method, "sip:bob@biloxi.example.com")
        .header(
            "Via",
            format!(
                "SIP/2.0/{} pc33.atlanta.example.com:5060;branch={branch}",
                t.as_str()
            ),
        )
        .header("Max-Forwards", 70)
        .header("Route", "<sip:p1.example.com;lr>")
        .header("To", "Bob <sip:bob@biloxi.example.com>")
        .header(
            "From",
            "Alice <sip:alice@atlanta.example.com>;tag=1928301774",
        )
        .header("Call-ID", "a84b4c76e66710@pc33.atlanta.example.com")
        .header("CSeq", format!("314159 {method}"))
        .build()
        .unwrap()
}

/// The ACK for a non-2xx final response (tag `a6c85cf`) to [`request`] with `branch`.
fn ack(branch: &str, t: Transport) -> OwnedMessage {
    RequestBuilder::new(Method::Ack, "sip:bob@biloxi.example.com")
        .header(
            "Via",
            format!(
                "SIP/2.0/{} pc33.atlanta.example.com:5060;branch={branch}",
                t.as_str()
            ),
        )
        .header("To", "Bob <sip:bob@biloxi.example.com>;tag=a6c85cf")
        .header(
            "From",
            "Alice <sip:alice@atlanta.example.com>;tag=1928301774",
        )
        .header("Call-ID", "a84b4c76e66710@pc33.atlanta.example.com")
        .header("CSeq", "314159 ACK")
        .build()
        .unwrap()
}

fn response(req: &OwnedMessage, code: u16) -> OwnedMessage {
    ResponseBuilder::from_request_with_tag(&req.as_message(), code, Some("a6c85cf"))
        .build()
        .unwrap()
}

/// A layer on a virtual clock that records every output with its instant.
struct Harness {
    layer: TransactionLayer,
    t0: Instant,
    now: Instant,
    log: Vec<(Duration, Output)>,
}

impl Harness {
    fn new() -> Self {
        Self::with(Config::default())
    }
    fn with(cfg: Config) -> Self {
        // the origin of the virtual clock; every later instant is t0 + a fixed offset
        #[allow(clippy::disallowed_methods)]
        let t0 = Instant::now();
        Harness {
            layer: TransactionLayer::new(cfg),
            t0,
            now: t0,
            log: Vec::new(),
        }
    }
    fn collect(&mut self) {
        while let Some(o) = self.layer.poll_output() {
            self.log.push((self.now - self.t0, o));
        }
    }
    fn input(&mut self, d: Duration, i: Input) -> Result<Option<TxnId>, TxnError> {
        self.advance(d);
        let r = self.layer.handle_input(self.now, i);
        self.collect();
        r
    }
    fn send(&mut self, d: Duration, req: OwnedMessage, t: Transport) -> TxnId {
        self.input(
            d,
            Input::SendRequest {
                msg: req,
                remote: peer(t),
            },
        )
        .unwrap()
        .unwrap()
    }
    fn recv(&mut self, d: Duration, msg: OwnedMessage, t: Transport) -> Option<TxnId> {
        self.input(
            d,
            Input::Received {
                msg,
                remote: peer(t),
            },
        )
        .unwrap()
    }
    fn respond(&mut self, d: Duration, txn: TxnId, msg: OwnedMessage) {
        self.input(d, Input::SendResponse { txn, msg }).unwrap();
    }
    /// Runs every timer due up to `d`, each at its own instant.
    fn advance(&mut self, d: Duration) {
        let end = self.t0 + d;
        while let Some(at) = self.layer.poll_timeout() {
            if at > end {
                break;
            }
            self.now = at;
            self.layer.handle_timeout(at);
            self.collect();
        }
        self.now = end;
    }
    fn transmits(&self) -> Vec<(Duration, &Transmit)> {
        self.log
            .iter()
            .filter_map(|(d, o)| match o {
                Output::Transmit(t) => Some((*d, t)),
                _ => None,
            })
            .collect()
    }
    fn transmit_times(&self) -> Vec<u64> {
        self.transmits()
            .iter()
            .map(|(d, _)| d.as_millis() as u64)
            .collect()
    }
    fn events(&self) -> Vec<(u64, &Event)> {
        self.log
            .iter()
            .filter_map(|(d, o)| match o {
                Output::Event(e) => Some((d.as_millis() as u64, e)),
                _ => None,
            })
            .collect()
    }
    fn terminated_at(&self, txn: TxnId) -> Option<u64> {
        self.events().iter().find_map(|(d, e)| match e {
            Event::Terminated { txn: t, .. } if *t == txn => Some(*d),
            _ => None,
        })
    }
}

fn first_line(b: &Bytes) -> String {
    String::from_utf8_lossy(b)
        .lines()
        .next()
        .unwrap()
        .to_string()
}

// ---------------------------------------------------------------- INVITE client (Figure 5)

#[test]
fn invite_client_timer_a_doubles_until_timer_b() {
    let mut h = Harness::new();
    let txn = h.send(ms(0), request(Method::Invite, "z9hG4bK-a", UDP), UDP);
    assert_eq!(h.layer.state(txn), Some(State::Calling));
    assert_eq!(h.layer.kind(txn), Some(Kind::InviteClient));
    h.advance(ms(40_000));
    // Timer A: T1, 2T1, 4T1, ... never capped (RFC 3261 §17.1.1.2); Timer B at 64·T1
    assert_eq!(h.transmit_times(), [0, 500, 1500, 3500, 7500, 15500, 31500]);
    let ev = h.events();
    assert!(matches!(
        ev[0],
        (
            32000,
            Event::Timeout {
                timer: Timer::B,
                ..
            }
        )
    ));
    assert_eq!(h.terminated_at(txn), Some(32000));
    assert!(h.layer.is_empty());
    assert_eq!(h.layer.poll_timeout(), None);
}

#[test]
fn invite_client_reliable_sends_once_and_times_out_with_b() {
    let mut h = Harness::new();
    let txn = h.send(ms(0), request(Method::Invite, "z9hG4bK-a", TCP), TCP);
    h.advance(ms(40_000));
    assert_eq!(h.transmit_times(), [0]);
    assert_eq!(h.terminated_at(txn), Some(32000));
}

#[test]
fn invite_client_provisional_stops_retransmissions_and_timer_b() {
    let mut h = Harness::new();
    let req = request(Method::Invite, "z9hG4bK-a", UDP);
    let txn = h.send(ms(0), req.clone(), UDP);
    h.recv(ms(700), response(&req, 180), UDP);
    assert_eq!(h.layer.state(txn), Some(State::Proceeding));
    h.advance(ms(100_000));
    assert_eq!(h.transmit_times(), [0, 500]);
    // Proceeding has no transaction timeout: timer C belongs to proxies
    assert_eq!(h.layer.state(txn), Some(State::Proceeding));
    assert!(h
        .events()
        .iter()
        .any(|(d, e)| *d == 700 && matches!(e, Event::Response { .. })));
    // another 1xx is passed up too
    h.recv(ms(100_100), response(&req, 183), UDP);
    assert_eq!(
        h.events()
            .iter()
            .filter(|(_, e)| matches!(e, Event::Response { .. }))
            .count(),
        2
    );
}

#[test]
fn invite_client_non_2xx_acks_in_transaction_and_waits_timer_d() {
    let mut h = Harness::new();
    let req = request(Method::Invite, "z9hG4bK-a", UDP);
    let txn = h.send(ms(0), req.clone(), UDP);
    h.recv(ms(100), response(&req, 100), UDP);
    h.recv(ms(900), response(&req, 486), UDP);
    assert_eq!(h.layer.state(txn), Some(State::Completed));
    let tx = h.transmits();
    assert_eq!(tx.len(), 2);
    let ack = ims_sip::parse_datagram(&tx[1].1.bytes).unwrap();
    assert_eq!(tx[1].0, ms(900));
    assert_eq!(ack.method(), Some(Method::Ack));
    assert_eq!(ack.request_uri_str(), Some("sip:bob@biloxi.example.com"));
    assert_eq!(ack.top_via().unwrap().unwrap().branch(), Some("z9hG4bK-a"));
    assert_eq!(ack.to().unwrap().unwrap().tag(), Some("a6c85cf"));
    assert_eq!(ack.cseq().unwrap().unwrap().seq, 314159);
    assert_eq!(ack.cseq().unwrap().unwrap().method, Method::Ack);
    assert_eq!(
        ack.header(HeaderName::Route),
        Some("<sip:p1.example.com;lr>")
    );
    assert_eq!(
        ack.header(HeaderName::CallId),
        req.as_message().header(HeaderName::CallId)
    );
    // the 486 retransmission is answered with the same ACK and not passed up
    h.recv(ms(1400), response(&req, 486), UDP);
    let tx = h.transmits();
    assert_eq!(tx.len(), 3);
    assert_eq!(tx[2].1.bytes, tx[1].1.bytes);
    let responses: Vec<u64> = h
        .events()
        .iter()
        .filter(|(_, e)| matches!(e, Event::Response { .. }))
        .map(|(d, _)| *d)
        .collect();
    assert_eq!(responses, [100, 900]);
    // Timer D: 32 s on UDP
    h.advance(ms(32_899));
    assert_eq!(h.layer.state(txn), Some(State::Completed));
    h.advance(ms(32_900));
    assert_eq!(h.terminated_at(txn), Some(32900));
}

#[test]
fn invite_client_non_2xx_reliable_terminates_at_once() {
    let mut h = Harness::new();
    let req = request(Method::Invite, "z9hG4bK-a", TCP);
    let txn = h.send(ms(0), req.clone(), TCP);
    h.recv(ms(300), response(&req, 603), TCP);
    // Timer D is zero on reliable transports
    assert_eq!(h.terminated_at(txn), Some(300));
    assert_eq!(h.transmit_times(), [0, 300]);
}

#[test]
fn invite_client_2xx_goes_to_accepted_and_passes_retransmissions_until_m() {
    let mut h = Harness::new();
    let req = request(Method::Invite, "z9hG4bK-a", UDP);
    let txn = h.send(ms(0), req.clone(), UDP);
    h.recv(ms(1000), response(&req, 200), UDP);
    assert_eq!(h.layer.state(txn), Some(State::Accepted));
    // RFC 6026 §7.2: every 2xx retransmission goes to the TU, no ACK from the transaction
    h.recv(ms(1500), response(&req, 200), UDP);
    h.recv(ms(2500), response(&req, 200), UDP);
    // 1xx and non-2xx are ignored in Accepted
    h.recv(ms(2600), response(&req, 180), UDP);
    let r: Vec<u64> = h
        .events()
        .iter()
        .filter(|(_, e)| matches!(e, Event::Response { .. }))
        .map(|(d, _)| *d)
        .collect();
    assert_eq!(r, [1000, 1500, 2500]);
    assert_eq!(h.transmit_times(), [0, 500]);
    h.advance(ms(40_000));
    // Timer M = 64·T1 from the first 2xx
    assert_eq!(h.terminated_at(txn), Some(33000));
}

#[test]
fn invite_client_transport_error_terminates() {
    let mut h = Harness::new();
    let txn = h.send(ms(0), request(Method::Invite, "z9hG4bK-a", UDP), UDP);
    h.input(ms(10), Input::TransportError { txn }).unwrap();
    assert!(matches!(h.events()[0], (10, Event::TransportError { .. })));
    assert_eq!(h.terminated_at(txn), Some(10));
    assert_eq!(h.layer.poll_timeout(), None);
}

// ---------------------------------------------------------------- non-INVITE client (Figure 6)

#[test]
fn non_invite_client_timer_e_capped_at_t2_until_timer_f() {
    let mut h = Harness::new();
    let txn = h.send(ms(0), request(Method::Options, "z9hG4bK-o", UDP), UDP);
    assert_eq!(h.layer.state(txn), Some(State::Trying));
    h.advance(ms(40_000));
    assert_eq!(
        h.transmit_times(),
        [0, 500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500]
    );
    assert!(matches!(
        h.events()[0],
        (
            32000,
            Event::Timeout {
                timer: Timer::F,
                ..
            }
        )
    ));
    assert_eq!(h.terminated_at(txn), Some(32000));
}

#[test]
fn non_invite_client_proceeding_retransmits_every_t2() {
    let mut h = Harness::new();
    let req = request(Method::Register, "z9hG4bK-r", UDP);
    let txn = h.send(ms(0), req.clone(), UDP);
    h.recv(ms(1000), response(&req, 100), UDP);
    assert_eq!(h.layer.state(txn), Some(State::Proceeding));
    h.advance(ms(40_000));
    // E armed for 1.5 s fires in Proceeding and is then reset to T2 each time
    assert_eq!(
        h.transmit_times(),
        [0, 500, 1500, 5500, 9500, 13500, 17500, 21500, 25500, 29500]
    );
    assert_eq!(h.terminated_at(txn), Some(32000));
}

#[test]
fn non_invite_client_completed_absorbs_and_waits_timer_k() {
    let mut h = Harness::new();
    let req = request(Method::Message, "z9hG4bK-m", UDP);
    let txn = h.send(ms(0), req.clone(), UDP);
    h.recv(ms(600), response(&req, 202), UDP);
    assert_eq!(h.layer.state(txn), Some(State::Completed));
    h.recv(ms(900), response(&req, 202), UDP);
    h.advance(ms(10_000));
    let r = h
        .events()
        .iter()
        .filter(|(_, e)| matches!(e, Event::Response { .. }))
        .count();
    assert_eq!(r, 1);
    assert_eq!(h.transmit_times(), [0, 500]);
    // Timer K = T4
    assert_eq!(h.terminated_at(txn), Some(5600));
}

#[test]
fn non_invite_client_reliable_timer_k_is_zero() {
    let mut h = Harness::new();
    let req = request(Method::Bye, "z9hG4bK-b", TCP);
    let txn = h.send(ms(0), req.clone(), TCP);
    h.advance(ms(20_000));
    assert_eq!(h.transmit_times(), [0]);
    h.recv(ms(20_000), response(&req, 200), TCP);
    assert_eq!(h.terminated_at(txn), Some(20000));
}

#[test]
fn custom_t1_t2_scale_every_timer() {
    let cfg = Config {
        timers: TimerConfig {
            t1: ms(100),
            t2: ms(400),
            ..TimerConfig::default()
        },
        ..Config::default()
    };
    let mut h = Harness::with(cfg);
    let txn = h.send(ms(0), request(Method::Options, "z9hG4bK-o", UDP), UDP);
    h.advance(ms(10_000));
    assert_eq!(&h.transmit_times()[..6], [0, 100, 300, 700, 1100, 1500]);
    assert_eq!(h.terminated_at(txn), Some(6400));
}

// ---------------------------------------------------------------- INVITE server (Figure 7)

#[test]
fn invite_server_sends_100_trying_after_200ms() {
    let mut h = Harness::new();
    let req = request(Method::Invite, "z9hG4bK-s", UDP);
    let txn = h.recv(ms(0), req.clone(), UDP).unwrap();
    assert!(matches!(h.events()[0], (0, Event::Request { .. })));
    assert_eq!(h.layer.state(txn), Some(State::Proceeding));
    assert_eq!(h.layer.kind(txn), Some(Kind::InviteServer));
    h.advance(ms(199));
    assert!(h.transmits().is_empty());
    h.advance(ms(200));
    let tx = h.transmits();
    assert_eq!(tx.len(), 1);
    assert_eq!(first_line(&tx[0].1.bytes), "SIP/2.0 100 Trying");
    assert_eq!(tx[0].1.remote, peer(UDP));
    // an INVITE retransmission gets the 100 again, without reaching the TU
    h.recv(ms(500), req.clone(), UDP);
    assert_eq!(h.transmit_times(), [200, 500]);
    assert_eq!(h.events().len(), 1);
}

#[test]
fn invite_server_no_100_when_tu_answers_first() {
    let mut h = Harness::new();
    let req = request(Method::Invite, "z9hG4bK-s", UDP);
    let txn = h.recv(ms(0), req.clone(), UDP).unwrap();
    h.respond(ms(150), txn, response(&req, 180));
    h.advance(ms(5000));
    assert_eq!(h.transmit_times(), [150]);
    // retransmitted INVITE gets the latest provisional
    h.recv(ms(5000), req.clone(), UDP);
    let tx = h.transmits();
    assert_eq!(first_line(&tx[1].1.bytes), "SIP/2.0 180 Ringing");
}

#[test]
fn invite_server_non_2xx_timer_g_capped_at_t2_until_timer_h() {
    let mut h = Harness::new();
    let req = request(Method::Invite, "z9hG4bK-s", UDP);
    let txn = h.recv(ms(0), req.clone(), UDP).unwrap();
    h.respond(ms(100), txn, response(&req, 486));
    assert_eq!(h.layer.state(txn), Some(State::Completed));
    h.advance(ms(40_000));
    // G: T1, 2T1, 4T1, then T2 (RFC 3261 §17.2.1); H at 64·T1
    assert_eq!(
        h.transmit_times(),
        [100, 600, 1600, 3600, 7600, 11600, 15600, 19600, 23600, 27600, 31600]
    );
    assert!(h.events().iter().any(|(d, e)| *d == 32100
        && matches!(
            e,
            Event::Timeout {
                timer: Timer::H,
                ..
            }
        )));
    assert_eq!(h.terminated_at(txn), Some(32100));
}

#[test]
fn invite_server_ack_confirms_and_timer_i_ends() {
    let mut h = Harness::new();
    let req = request(Method::Invite, "z9hG4bK-s", UDP);
    let txn = h.recv(ms(0), req.clone(), UDP).unwrap();
    h.respond(ms(100), txn, response(&req, 404));
    // a retransmitted INVITE in Completed gets the final response again
    h.recv(ms(300), req.clone(), UDP);
    assert_eq!(h.transmit_times(), [100, 300]);
    let ack = ack("z9hG4bK-s", UDP);
    assert_eq!(h.recv(ms(400), ack.clone(), UDP), Some(txn));
    assert_eq!(h.layer.state(txn), Some(State::Confirmed));
    // ACK retransmissions are absorbed; no retransmission of the 404 after the ACK
    h.recv(ms(1000), ack, UDP);
    h.advance(ms(20_000));
    assert_eq!(h.transmit_times(), [100, 300]);
    assert!(!h
        .events()
        .iter()
        .any(|(_, e)| matches!(e, Event::Ack { .. })));
    // Timer I = T4 from the ACK
    assert_eq!(h.terminated_at(txn), Some(5400));
}

#[test]
fn invite_server_reliable_no_g_and_zero_i() {
    let mut h = Harness::new();
    let req = request(Method::Invite, "z9hG4bK-s", TCP);
    let txn = h.recv(ms(0), req.clone(), TCP).unwrap();
    h.respond(ms(50), txn, response(&req, 480));
    h.advance(ms(10_000));
    assert_eq!(h.transmit_times(), [50]);
    let ack = ack("z9hG4bK-s", TCP);
    h.recv(ms(10_000), ack, TCP);
    assert_eq!(h.terminated_at(txn), Some(10_000));
}

#[test]
fn invite_server_2xx_accepted_passes_ack_and_absorbs_invite_until_l() {
    let mut h = Harness::new();
    let req = request(Method::Invite, "z9hG4bK-s", UDP);
    let txn = h.recv(ms(0), req.clone(), UDP).unwrap();
    let ok = response(&req, 200);
    h.respond(ms(1000), txn, ok.clone());
    assert_eq!(h.layer.state(txn), Some(State::Accepted));
    // the transaction does not retransmit 2xx itself
    h.advance(ms(5000));
    assert_eq!(h.transmit_times(), [200, 1000]);
    // the TU's 2xx retransmission goes out through it
    h.respond(ms(5000), txn, ok);
    assert_eq!(h.transmit_times(), [200, 1000, 5000]);
    // INVITE retransmission absorbed (RFC 6026 §7.1)
    h.recv(ms(6000), req.clone(), UDP);
    assert_eq!(h.transmit_times(), [200, 1000, 5000]);
    assert_eq!(h.events().len(), 1);
    // an ACK with the INVITE's branch reaching the Accepted transaction goes to the TU
    let ack = ack("z9hG4bK-s", UDP);
    h.recv(ms(6100), ack, UDP);
    assert!(h
        .events()
        .iter()
        .any(|(d, e)| *d == 6100 && matches!(e, Event::Ack { invite: Some(t), .. } if *t == txn)));
    assert_eq!(h.layer.state(txn), Some(State::Accepted));
    // a non-2xx from the TU is refused now
    let e = h
        .layer
        .send_response(h.now, txn, response(&req, 500))
        .unwrap_err();
    assert!(matches!(e, TxnError::InvalidState(_)));
    h.advance(ms(40_000));
    assert_eq!(h.terminated_at(txn), Some(33000));
}

#[test]
fn invite_server_transport_error_informs_tu() {
    let mut h = Harness::new();
    let req = request(Method::Invite, "z9hG4bK-s", TCP);
    let txn = h.recv(ms(0), req.clone(), TCP).unwrap();
    h.input(ms(10), Input::TransportError { txn }).unwrap();
    assert!(h
        .events()
        .iter()
        .any(|(_, e)| matches!(e, Event::TransportError { .. })));
    assert_eq!(h.terminated_at(txn), Some(10));
}

// ---------------------------------------------------------------- non-INVITE server (Figure 8)

#[test]
fn non_invite_server_trying_proceeding_completed_timer_j() {
    let mut h = Harness::new();
    let req = request(Method::Register, "z9hG4bK-n", UDP);
    let txn = h.recv(ms(0), req.clone(), UDP).unwrap();
    assert_eq!(h.layer.state(txn), Some(State::Trying));
    // no 100 Trying for non-INVITE; retransmissions in Trying are absorbed
    h.recv(ms(500), req.clone(), UDP);
    h.advance(ms(1000));
    assert!(h.transmits().is_empty());
    h.respond(ms(1000), txn, response(&req, 100));
    assert_eq!(h.layer.state(txn), Some(State::Proceeding));
    h.recv(ms(1500), req.clone(), UDP);
    assert_eq!(h.transmit_times(), [1000, 1500]);
    h.respond(ms(2000), txn, response(&req, 200));
    assert_eq!(h.layer.state(txn), Some(State::Completed));
    h.recv(ms(3500), req.clone(), UDP);
    let tx = h.transmits();
    assert_eq!(first_line(&tx[3].1.bytes), "SIP/2.0 200 OK");
    assert_eq!(tx[3].0, ms(3500));
    // a second final response is refused
    assert!(h
        .layer
        .send_response(h.now, txn, response(&req, 500))
        .is_err());
    h.advance(ms(40_000));
    assert_eq!(h.events().len(), 2); // Request, Terminated
    assert_eq!(h.terminated_at(txn), Some(34000)); // Timer J = 64·T1
}

#[test]
fn non_invite_server_reliable_timer_j_is_zero() {
    let mut h = Harness::new();
    let req = request(Method::Options, "z9hG4bK-n", TCP);
    let txn = h.recv(ms(0), req.clone(), TCP).unwrap();
    h.respond(ms(20), txn, response(&req, 200));
    assert_eq!(h.terminated_at(txn), Some(20));
}

// ---------------------------------------------------------------- matching (§17.1.3, §17.2.3)

#[test]
fn client_matching_needs_branch_and_cseq_method() {
    let mut h = Harness::new();
    let req = request(Method::Invite, "z9hG4bK-a", UDP);
    let txn = h.send(ms(0), req.clone(), UDP);
    // same branch, other CSeq method (the answer to a CANCEL) does not match the INVITE
    let cancel = request(Method::Cancel, "z9hG4bK-a", UDP);
    let c = h.send(ms(10), cancel.clone(), UDP);
    assert_ne!(c, txn);
    assert_eq!(h.recv(ms(20), response(&cancel, 200), UDP), Some(c));
    assert_eq!(h.layer.state(txn), Some(State::Calling));
    // another branch is a stray response
    let other = request(Method::Invite, "z9hG4bK-zzz", UDP);
    assert_eq!(h.recv(ms(30), response(&other, 200), UDP), None);
    assert!(h
        .events()
        .iter()
        .any(|(_, e)| matches!(e, Event::StrayResponse { .. })));
}

#[test]
fn server_matching_uses_sent_by() {
    let mut h = Harness::new();
    let a = request(Method::Options, "z9hG4bK-same", UDP);
    let txn = h.recv(ms(0), a, UDP).unwrap();
    let b = RequestBuilder::new(Method::Options, "sip:bob@biloxi.example.com")
        .header(
            "Via",
            "SIP/2.0/UDP other.example.com:5060;branch=z9hG4bK-same",
        )
        .header("To", "<sip:bob@biloxi.example.com>")
        .header("From", "<sip:carol@example.com>;tag=9")
        .header("Call-ID", "x@y")
        .header("CSeq", "1 OPTIONS")
        .build()
        .unwrap();
    let other = h.recv(ms(10), b, UDP).unwrap();
    assert_ne!(txn, other);
    assert_eq!(h.layer.len(), 2);
}

#[test]
fn cancel_matches_its_invite_server_transaction() {
    let mut h = Harness::new();
    let inv = request(Method::Invite, "z9hG4bK-c", UDP);
    let txn = h.recv(ms(0), inv, UDP).unwrap();
    let cancel = request(Method::Cancel, "z9hG4bK-c", UDP);
    let c = h.recv(ms(50), cancel.clone(), UDP).unwrap();
    assert_ne!(c, txn);
    assert_eq!(h.layer.kind(c), Some(Kind::NonInviteServer));
    assert!(h.events().iter().any(
        |(_, e)| matches!(e, Event::Cancel { txn: t, invite: Some(i), .. } if *t == c && *i == txn)
    ));
    // CANCEL retransmission matches the CANCEL transaction
    assert_eq!(h.recv(ms(60), cancel, UDP), Some(c));
    let unknown = request(Method::Cancel, "z9hG4bK-none", UDP);
    h.recv(ms(70), unknown, UDP);
    assert!(h
        .events()
        .iter()
        .any(|(_, e)| matches!(e, Event::Cancel { invite: None, .. })));
}

#[test]
fn ack_for_2xx_with_new_branch_goes_to_tu() {
    let mut h = Harness::new();
    let ack = request(Method::Ack, "z9hG4bK-ack2xx", UDP);
    assert_eq!(h.recv(ms(0), ack, UDP), None);
    assert!(matches!(
        h.events()[0],
        (0, Event::Ack { invite: None, .. })
    ));
    assert!(h.layer.is_empty());
}

fn rfc2543_request(method: Method<'_>, to_tag: Option<&str>) -> OwnedMessage {
    let to = match to_tag {
        Some(t) => format!("<sip:bob@biloxi.example.com>;tag={t}"),
        None => "<sip:bob@biloxi.example.com>".into(),
    };
    let cseq_method = method;
    RequestBuilder::new(method, "sip:bob@biloxi.example.com")
        .header("Via", "SIP/2.0/UDP old.example.com:5060")
        .header("To", to)
        .header("From", "<sip:alice@old.example.com>;tag=77")
        .header("Call-ID", "legacy-1@old.example.com")
        .header("CSeq", format!("5 {cseq_method}"))
        .build()
        .unwrap()
}

#[test]
fn rfc2543_fallback_matching() {
    let mut h = Harness::new();
    let inv = rfc2543_request(Method::Invite, None);
    let txn = h.recv(ms(0), inv.clone(), UDP).unwrap();
    // retransmission matches
    assert_eq!(h.recv(ms(100), inv.clone(), UDP), Some(txn));
    h.respond(ms(200), txn, response(&inv, 486));
    // an ACK with another To tag does not match
    h.recv(ms(300), rfc2543_request(Method::Ack, Some("wrong")), UDP);
    assert_eq!(h.layer.state(txn), Some(State::Completed));
    // the ACK carrying the To tag of our response matches
    assert_eq!(
        h.recv(ms(400), rfc2543_request(Method::Ack, Some("a6c85cf")), UDP),
        Some(txn)
    );
    assert_eq!(h.layer.state(txn), Some(State::Confirmed));
}

#[test]
fn merged_request_is_answered_482() {
    let mut h = Harness::with(Config {
        merged_request_detection: true,
        ..Config::default()
    });
    let a = request(Method::Invite, "z9hG4bK-path1", UDP);
    let first = h.recv(ms(0), a, UDP).unwrap();
    // the same request forked back to us along another path: other branch, same From tag,
    // Call-ID and CSeq, no To tag
    let b = request(Method::Invite, "z9hG4bK-path2", UDP);
    let second = h.recv(ms(10), b, UDP).unwrap();
    assert_ne!(first, second);
    let tx = h.transmits();
    assert_eq!(tx.len(), 1);
    assert_eq!(first_line(&tx[0].1.bytes), "SIP/2.0 482 Loop Detected");
    let requests = h
        .events()
        .iter()
        .filter(|(_, e)| matches!(e, Event::Request { .. }))
        .count();
    assert_eq!(requests, 1);
}

#[test]
fn merged_detection_off_by_default() {
    let mut h = Harness::new();
    h.recv(ms(0), request(Method::Invite, "z9hG4bK-path1", UDP), UDP);
    h.recv(ms(10), request(Method::Invite, "z9hG4bK-path2", UDP), UDP);
    assert_eq!(
        h.events()
            .iter()
            .filter(|(_, e)| matches!(e, Event::Request { .. }))
            .count(),
        2
    );
}

// ---------------------------------------------------------------- API errors

#[test]
fn api_misuse_is_an_error() {
    let mut h = Harness::new();
    let req = request(Method::Invite, "z9hG4bK-a", UDP);
    h.send(ms(0), req.clone(), UDP);
    let dup = h
        .layer
        .send_request(h.now, req.clone(), peer(UDP))
        .unwrap_err();
    assert_eq!(dup, TxnError::Duplicate);
    let ack = request(Method::Ack, "z9hG4bK-x", UDP);
    assert_eq!(
        h.layer.send_request(h.now, ack, peer(UDP)).unwrap_err(),
        TxnError::AckTransaction
    );
    assert_eq!(
        h.layer
            .send_response(h.now, TxnId(999), response(&req, 200))
            .unwrap_err(),
        TxnError::NoSuchTransaction
    );
    let no_via = RequestBuilder::new(Method::Options, "sip:x@y")
        .header("CSeq", "1 OPTIONS")
        .build()
        .unwrap();
    assert_eq!(
        h.layer.receive(h.now, no_via, peer(UDP)).unwrap_err(),
        TxnError::MissingHeader("Via")
    );
}

#[test]
fn late_wakeup_keeps_the_schedule() {
    // a caller that wakes up late still sees retransmissions scheduled from the nominal instants
    let mut h = Harness::new();
    let txn = h.send(ms(0), request(Method::Options, "z9hG4bK-o", UDP), UDP);
    h.layer.handle_timeout(h.t0 + ms(2000));
    let n = std::iter::from_fn(|| h.layer.poll_output()).count();
    assert_eq!(n, 2); // E at 500 and 1500
    assert_eq!(h.layer.poll_timeout(), Some(h.t0 + ms(3500)));
    assert_eq!(h.layer.state(txn), Some(State::Trying));
}

// ---------------------------------------------------------------- what a finished transaction keeps

#[test]
fn completed_transactions_let_the_request_go_but_still_retransmit() {
    let mut h = Harness::new();
    // server: the request is there until the final response, then only the response's bytes
    let req = request(Method::Register, "z9hG4bK-keep", UDP);
    let txn = h.recv(ms(0), req.clone(), UDP).unwrap();
    assert_eq!(
        h.layer.request(txn).map(|r| r.bytes().clone()),
        Some(req.bytes().clone())
    );
    let ok = response(&req, 200);
    h.respond(ms(10), txn, ok.clone());
    assert_eq!(h.layer.state(txn), Some(State::Completed));
    assert!(h.layer.request(txn).is_none());
    h.recv(ms(900), req.clone(), UDP);
    let tx = h.transmits();
    assert_eq!(tx.len(), 2);
    // the retransmission is the very response sent, byte for byte
    assert_eq!(tx[1].1.bytes, ok.bytes().clone());
    assert_eq!(tx[1].0, ms(900));

    // INVITE client: after a 486 only the ACK is kept, and it answers each retransmitted 486
    let inv = request(Method::Invite, "z9hG4bK-keep-inv", UDP);
    let c = h.send(ms(1000), inv.clone(), UDP);
    assert!(h.layer.request(c).is_some());
    let busy = response(&inv, 486);
    h.recv(ms(1100), busy.clone(), UDP);
    assert_eq!(h.layer.state(c), Some(State::Completed));
    assert!(h.layer.request(c).is_none());
    h.recv(ms(1600), busy, UDP);
    let acks: Vec<_> = h
        .transmits()
        .into_iter()
        .filter(|(_, t)| first_line(&t.bytes).starts_with("ACK "))
        .map(|(at, t)| (at, t.bytes.clone()))
        .collect();
    assert_eq!(acks.len(), 2);
    assert_eq!(acks[0].1, acks[1].1);
    assert_eq!((acks[0].0, acks[1].0), (ms(1100), ms(1600)));
    // Timer D still ends it 32 s after the 486, Timer J the REGISTER 64·T1 after its 200
    h.advance(ms(40_000));
    assert_eq!(h.terminated_at(txn), Some(32_010));
    assert_eq!(h.terminated_at(c), Some(33_100));
}

/// The in-process hand-off's look-up: a layer keeping its sent messages gives back, for the very
/// bytes of a Transmit, the message they were written from (requests and responses), not for
/// equal bytes in another buffer, not once more messages were sent than it keeps, and never
/// when keeping is off.
#[test]
fn sent_messages_are_found_by_their_buffer() {
    // the origin of the virtual clock
    #[allow(clippy::disallowed_methods)]
    let t0 = Instant::now();
    let mut layer = TransactionLayer::new(Config::default());
    layer.keep_sent(2);
    let req = request(Method::Invite, "z9hG4bK-kept-1", UDP);
    layer.send_request(t0, req.clone(), peer(UDP)).unwrap();
    let Some(Output::Transmit(tx)) = layer.poll_output() else {
        panic!("the INVITE goes out")
    };
    let found = layer.sent_message(&tx.bytes).expect("kept");
    assert_eq!(found.bytes(), req.bytes());
    assert_eq!(
        found.as_message().header(HeaderName::CallId),
        req.as_message().header(HeaderName::CallId)
    );
    // equal bytes in another buffer are not the sent message
    assert!(layer
        .sent_message(&Bytes::copy_from_slice(&tx.bytes))
        .is_none());
    // a response the layer sends on a server transaction
    let incoming = request(Method::Options, "z9hG4bK-kept-2", UDP);
    layer
        .handle_input(
            t0,
            Input::Received {
                msg: incoming.clone(),
                remote: peer(UDP),
            },
        )
        .unwrap();
    let server = loop {
        match layer.poll_output() {
            Some(Output::Event(Event::Request { txn, .. })) => break txn,
            Some(_) => {}
            None => panic!("the OPTIONS comes up"),
        }
    };
    let ok = ResponseBuilder::from_request(&incoming.as_message(), 200)
        .build()
        .unwrap();
    layer.send_response(t0, server, ok.clone()).unwrap();
    let Some(Output::Transmit(rtx)) = layer.poll_output() else {
        panic!("the 200 goes out")
    };
    assert_eq!(
        layer.sent_message(&rtx.bytes).map(|m| m.bytes().clone()),
        Some(ok.bytes().clone())
    );
    // two kept: a third send pushes the INVITE out
    let third = request(Method::Options, "z9hG4bK-kept-3", UDP);
    layer.send_request(t0, third, peer(UDP)).unwrap();
    assert!(layer.sent_message(&tx.bytes).is_none());
    assert!(layer.sent_message(&rtx.bytes).is_some());
    // keeping off: nothing is found
    layer.keep_sent(0);
    assert!(layer.sent_message(&rtx.bytes).is_none());
}

// ---------------------------------------------------------------- lossless UDP peers

/// A harness whose layer was told that `peer(UDP)` (192.0.2.10:5060) is reached without loss.
fn lossless_harness() -> Harness {
    let mut h = Harness::new();
    let at = peer(UDP).addr;
    h.layer
        .set_lossless(std::sync::Arc::new(move |a: std::net::SocketAddr| a == at));
    h
}

#[test]
fn lossless_udp_client_sends_once_and_ends_on_its_final_response() {
    let mut h = lossless_harness();
    let req = request(Method::Register, "z9hG4bK-l1", UDP);
    let txn = h.send(ms(0), req.clone(), UDP);
    h.advance(ms(20_000));
    // no Timer E: the peer gets the request once
    assert_eq!(h.transmit_times(), [0]);
    h.recv(ms(20_000), response(&req, 200), UDP);
    // Timer K = 0: nothing kept once the response is in
    assert_eq!(h.terminated_at(txn), Some(20_000));
    assert!(h.layer.is_empty());
}

#[test]
fn lossless_udp_client_still_times_out_with_timer_f() {
    let mut h = lossless_harness();
    let txn = h.send(ms(0), request(Method::Options, "z9hG4bK-l2", UDP), UDP);
    h.advance(ms(40_000));
    assert_eq!(h.transmit_times(), [0]);
    assert!(h.events().iter().any(|(d, e)| *d == 32_000
        && matches!(
            e,
            Event::Timeout {
                timer: Timer::F,
                ..
            }
        )));
    assert_eq!(h.terminated_at(txn), Some(32_000));
}

#[test]
fn lossless_udp_server_lets_go_of_its_response_at_once() {
    let mut h = lossless_harness();
    let req = request(Method::Register, "z9hG4bK-l3", UDP);
    let txn = h.recv(ms(0), req.clone(), UDP).unwrap();
    h.respond(ms(20), txn, response(&req, 200));
    // Timer J = 0 instead of 64·T1
    assert_eq!(h.terminated_at(txn), Some(20));
    assert!(h.layer.is_empty());
}

#[test]
fn lossless_udp_invite_server_sends_its_error_once_and_ends_on_the_ack() {
    let mut h = lossless_harness();
    let req = request(Method::Invite, "z9hG4bK-l4", UDP);
    let txn = h.recv(ms(0), req.clone(), UDP).unwrap();
    h.respond(ms(50), txn, response(&req, 486));
    h.advance(ms(10_000));
    // 100 Trying at 200 ms is not sent: the TU answered first; no Timer G
    assert_eq!(h.transmit_times(), [50]);
    let ack = ack("z9hG4bK-l4", UDP);
    h.recv(ms(10_000), ack, UDP);
    // Timer I = 0
    assert_eq!(h.terminated_at(txn), Some(10_000));
}

#[test]
fn udp_peers_not_named_lossless_keep_the_unreliable_timers() {
    let mut h = Harness::new();
    h.layer
        .set_lossless(std::sync::Arc::new(|a: std::net::SocketAddr| {
            a.port() == 5070
        }));
    let req = request(Method::Register, "z9hG4bK-l5", UDP);
    let txn = h.recv(ms(0), req.clone(), UDP).unwrap();
    h.respond(ms(20), txn, response(&req, 200));
    h.advance(ms(40_000));
    assert_eq!(h.terminated_at(txn), Some(32_020));
    let req = request(Method::Options, "z9hG4bK-l6", UDP);
    let c = h.send(ms(40_000), req.clone(), UDP);
    h.advance(ms(41_000));
    assert_eq!(h.transmit_times()[1..], [40_000, 40_500]);
    h.recv(ms(41_000), response(&req, 200), UDP);
    h.advance(ms(50_000));
    assert_eq!(h.terminated_at(c), Some(46_000));
}
