//! Fuzzing entry point for the SIP transaction layer, UA core and proxy core (`ims::txn`).

use crate::sip::{self, OwnedMessage, ResponseBuilder};
use crate::txn::proxy::{ForkMode, Proxy, ProxyConfig, ProxyEvent, ProxyOutput, Target};
use crate::txn::ua::{Answer, UaConfig, UaEvent, UaOutput, UserAgent};
use crate::txn::{Config, Event, Output, Remote, TransactionLayer, Transport, TxnId};
use std::time::{Duration, Instant};

/// Status codes the fuzzed TU answers with.
const CODES: [u16; 8] = [100, 180, 183, 200, 302, 486, 503, 603];

/// Drives a [`TransactionLayer`], a [`UserAgent`] and a [`Proxy`] with a script read from `data`:
/// byte 0 picks the transport (bit 0: TCP), then records `op` …:
/// `op % 4 == 0`: a datagram (`len` as two bytes, then `len` bytes) received by all three;
/// `1`: the clock advances by `next byte × 50 ms`; `2`: the TUs answer every pending request
/// with a status picked by the next byte (the proxy forwards to one target instead when the
/// byte is odd); `3`: a transport error on the newest transaction.
///
/// Oracles: nothing panics; everything the three send parses again as SIP; `poll_timeout` is
/// never earlier than the instant just handled; once every request is answered, the transaction
/// layer is empty after 64·T1 + T4 + 32 s of virtual time (every transaction terminates).
pub fn txn(data: &[u8]) {
    let Some((&sel, mut rest)) = data.split_first() else {
        return;
    };
    let transport = if sel & 1 == 1 {
        Transport::Tcp
    } else {
        Transport::Udp
    };
    let peer = Remote {
        transport,
        addr: "192.0.2.7:5060".parse().expect("literal address"),
    };
    #[allow(clippy::disallowed_methods)] // the origin of the fuzzer's virtual clock
    let t0 = Instant::now();
    let mut now = t0;
    let mut layer = TransactionLayer::new(Config {
        merged_request_detection: sel & 2 == 2,
        ..Config::default()
    });
    let mut ua = UserAgent::new(UaConfig::default());
    let mut proxy = Proxy::new(ProxyConfig::default());
    let mut pending: Vec<(TxnId, OwnedMessage)> = Vec::new();
    let mut ua_pending: Vec<TxnId> = Vec::new();
    let mut px_pending: Vec<TxnId> = Vec::new();
    let mut newest: Option<TxnId> = None;
    let mut steps = 0;
    while let Some((&op, r)) = rest.split_first() {
        rest = r;
        steps += 1;
        if steps > 64 {
            break;
        }
        match op % 4 {
            0 => {
                if rest.len() < 2 {
                    break;
                }
                let len = usize::from(u16::from_be_bytes([rest[0], rest[1]])).min(rest.len() - 2);
                let raw = &rest[2..2 + len];
                rest = &rest[2 + len..];
                if let Ok(m) = sip::parse_datagram(raw).map(|m| m.to_owned_message()) {
                    if let Ok(Some(id)) = layer.receive(now, m.clone(), peer) {
                        newest = Some(id);
                    }
                    let _ = ua.receive(now, m.clone(), peer);
                    let _ = proxy.receive(now, m, peer);
                }
            }
            1 => {
                let Some((&b, r)) = rest.split_first() else {
                    break;
                };
                rest = r;
                now += Duration::from_millis(u64::from(b) * 50);
                layer.handle_timeout(now);
                ua.handle_timeout(now);
                proxy.handle_timeout(now);
                for (who, t) in [
                    ("layer", layer.poll_timeout()),
                    ("ua", ua.poll_timeout()),
                    ("proxy", proxy.poll_timeout()),
                ] {
                    if let Some(t) = t {
                        assert!(
                            t > now,
                            "{who}: a timer due at or before the handled instant is left"
                        );
                    }
                }
            }
            2 => {
                let Some((&b, r)) = rest.split_first() else {
                    break;
                };
                rest = r;
                let code = CODES[usize::from(b) % CODES.len()];
                // a provisional answer leaves the request pending (the TU still owes a final one)
                pending.retain(|(id, req)| {
                    match ResponseBuilder::from_request(&req.as_message(), code).build() {
                        Ok(resp) => layer.send_response(now, *id, resp).is_ok() && code < 200,
                        Err(_) => true,
                    }
                });
                for id in ua_pending.drain(..) {
                    let _ = ua.respond(now, id, Answer::new(code).reliable());
                }
                for id in px_pending.drain(..) {
                    if b & 1 == 1 {
                        let t = Target {
                            uri: None,
                            remote: peer,
                        };
                        let _ = proxy.forward(now, id, vec![t], ForkMode::Parallel);
                    } else {
                        let _ = proxy.reply(now, id, code.max(200));
                    }
                }
            }
            _ => {
                if let Some(id) = newest {
                    let _ = layer.transport_error(now, id);
                }
            }
        }
        drain(&mut layer, &mut pending, &mut newest);
        drain_ua(&mut ua, &mut ua_pending);
        drain_proxy(&mut proxy, &mut px_pending);
    }
    // answer everything still open, then let every timer run out
    let mut stuck = 0;
    for (id, req) in pending.drain(..) {
        match ResponseBuilder::from_request(&req.as_message(), 500).build() {
            Ok(resp) => {
                if layer.send_response(now, id, resp).is_err() {
                    // already answered finally (the answer raced a provisional-only TU): fine
                }
            }
            // no answer can be built: the transaction waits for its TU forever (§17.2.1)
            Err(_) => stuck += 1,
        }
    }
    drain(&mut layer, &mut pending, &mut newest);
    assert!(pending.is_empty(), "an answer created a request");
    let end = now + Duration::from_secs(32) * 2 + Duration::from_secs(5) + Duration::from_secs(32);
    while let Some(t) = layer.poll_timeout() {
        if t > end {
            break;
        }
        layer.handle_timeout(t);
        drain(&mut layer, &mut pending, &mut newest);
    }
    assert_eq!(
        layer.len(),
        stuck,
        "transactions outlived every timer although their TU answered"
    );
}

fn check_sent(bytes: &[u8], who: &str) {
    if let Err(e) = sip::parse_datagram(bytes) {
        panic!(
            "{who} sent something that does not parse ({e}): {:?}",
            String::from_utf8_lossy(bytes)
        );
    }
}

fn drain(
    layer: &mut TransactionLayer,
    pending: &mut Vec<(TxnId, OwnedMessage)>,
    newest: &mut Option<TxnId>,
) {
    while let Some(o) = layer.poll_output() {
        match o {
            Output::Transmit(t) => check_sent(&t.bytes, "the transaction layer"),
            Output::Event(Event::Request { txn, msg, .. } | Event::Cancel { txn, msg, .. }) => {
                *newest = Some(txn);
                pending.push((txn, msg));
            }
            Output::Event(Event::Terminated { txn, .. }) => pending.retain(|(t, _)| *t != txn),
            Output::Event(_) => {}
        }
    }
}

fn drain_ua(ua: &mut UserAgent, pending: &mut Vec<TxnId>) {
    while let Some(o) = ua.poll_output() {
        match o {
            UaOutput::Transmit(t) => check_sent(&t.bytes, "the UA core"),
            UaOutput::Event(
                UaEvent::IncomingInvite { txn, .. } | UaEvent::IncomingRequest { txn, .. },
            ) => pending.push(txn),
            UaOutput::Event(_) => {}
        }
    }
}

fn drain_proxy(p: &mut Proxy, pending: &mut Vec<TxnId>) {
    while let Some(o) = p.poll_output() {
        match o {
            ProxyOutput::Transmit(t) => check_sent(&t.bytes, "the proxy core"),
            ProxyOutput::Event(ProxyEvent::Request { server, .. }) => pending.push(server),
            ProxyOutput::Event(ProxyEvent::Ack { msg, .. }) => {
                let _ = p.forward_stateless(
                    &msg,
                    Remote {
                        transport: Transport::Udp,
                        addr: "192.0.2.8:5060".parse().expect("literal address"),
                    },
                );
            }
            ProxyOutput::Event(_) => {}
        }
    }
}
