//! Oracle for the Diameter peer state machine ([`crate::diameter::peer::Peer`]): the input is a
//! script of operations (accept + CER, connect + CEA, raw octets on either transport, valid
//! DWR/DWA/DPR/answers, time passing, requests, DPR, transport loss) run on a virtual clock.
//!
//! Invariants checked after every operation, for every input:
//! - nothing panics, and draining the outputs terminates;
//! - every octet string the peer transmits is a well-formed Diameter message;
//! - only open peers with an OKAY watchdog accept requests, and a peer that is usable is open;
//! - an answer or timeout is reported only for a request that was sent, at most once;
//! - the pending table never holds more than the requests still unresolved;
//! - `poll_timeout` never lies in the past after `handle_timeout` ran at that instant;
//! - an inband TLS handshake (`Output::StartTls`) leaves the peer in TLS-Handshake, not usable;
//! - a capabilities update (RFC 6737 CUR/CUA) is reported only on an open peer, with the
//!   remote information the peer then holds.
//!
//! The input's length picks our inband security setting and the Inband-Security-Id values the
//! scripted remote CER/CEA carry, and whether each side advertises the Capabilities Update
//! application (10); handshakes asked for succeed unless the length is a multiple of 5 (then
//! only time or a transport loss ends them).

use crate::diameter::base::{
    Cea, Cer, DisconnectCause, Dpr, Dwa, Dwr, VendorSpecificApplicationId,
};
use crate::diameter::cx::{Maa, Mar};
use crate::diameter::peer::{
    Application, Event, InbandSecurity, Input, Output, Peer, PeerConfig, PeerState, Side,
    CAPABILITIES_UPDATE, CAPABILITIES_UPDATE_APPLICATION,
};
use crate::diameter::{dict, Address, Command, Header, Message, Outcome};
use std::collections::HashSet;
use std::time::{Duration, Instant};

const REMOTE: &str = "fuzz.peer.example";

/// The Auth-Application-Ids of the scripted remote (10 when it supports capabilities update).
fn remote_auth(cu: bool) -> ims_diameter::Repeated<u32, 4> {
    if cu {
        ims_diameter::repeated![CAPABILITIES_UPDATE_APPLICATION]
    } else {
        ims_diameter::Repeated::default()
    }
}

/// The applications a script byte selects (bits: Cx, Rx, Sh, Capabilities Update).
fn apps_of(bits: u8) -> Vec<Application> {
    [
        (1, Application::tgpp_auth(dict::app::CX)),
        (2, Application::tgpp_auth(dict::app::RX)),
        (4, Application::tgpp_auth(16_777_217)),
        (8, Application::CAPABILITIES_UPDATE),
    ]
    .into_iter()
    .filter(|(b, _)| bits & b != 0)
    .map(|(_, a)| a)
    .collect()
}

/// A CUR from the remote advertising the applications `bits` selects.
fn cur(bits: u8, hbh: u32) -> Vec<u8> {
    let mut c = Cer {
        origin_host: REMOTE.into(),
        origin_realm: "example".into(),
        host_ip_address: ims_diameter::repeated![Address::Ipv4([127, 0, 0, 1].into())],
        product_name: "fuzz".into(),
        ..Default::default()
    };
    for a in apps_of(bits) {
        if a.vendor_id == 0 {
            c.auth_application_id.push(a.id);
        } else {
            c.vendor_specific_application_id
                .push(VendorSpecificApplicationId {
                    vendor_id: a.vendor_id,
                    auth_application_id: Some(a.id),
                    ..Default::default()
                });
        }
    }
    let mut h = Header::request(
        CAPABILITIES_UPDATE,
        CAPABILITIES_UPDATE_APPLICATION,
        false,
        hbh,
        9,
    );
    h.flags.0 = crate::diameter::Flags::REQUEST;
    let mut v = Vec::new();
    c.encode_into(&h, &mut v);
    v
}

/// The remote's CUA with `result_code` to the request with `hbh`.
fn cua(hbh: u32, result_code: u32) -> Vec<u8> {
    let mut h = Header::request(
        CAPABILITIES_UPDATE,
        CAPABILITIES_UPDATE_APPLICATION,
        false,
        hbh,
        0,
    );
    h.flags.0 = 0;
    let mut v = Vec::new();
    crate::diameter::base::Dpa {
        result_code,
        origin_host: REMOTE.into(),
        origin_realm: "example".into(),
        ..Default::default()
    }
    .encode_into(&h, &mut v);
    v
}

fn cer(isi: &[u32], cu: bool) -> Vec<u8> {
    Cer {
        auth_application_id: remote_auth(cu),
        inband_security_id: isi.iter().copied().collect(),
        origin_host: REMOTE.into(),
        origin_realm: "example".into(),
        host_ip_address: ims_diameter::repeated![Address::Ipv4([127, 0, 0, 1].into())],
        product_name: "fuzz".into(),
        vendor_specific_application_id: ims_diameter::repeated![VendorSpecificApplicationId::cx()],
        ..Default::default()
    }
    .encode(1, 1)
}

fn cea(hbh: u32, isi: &[u32], cu: bool) -> Vec<u8> {
    let mut h = Cea::header(hbh, 0);
    h.flags.0 = 0;
    let mut v = Vec::new();
    Cea {
        auth_application_id: remote_auth(cu),
        inband_security_id: isi.iter().copied().collect(),
        result_code: 2001,
        origin_host: REMOTE.into(),
        origin_realm: "example".into(),
        host_ip_address: ims_diameter::repeated![Address::Ipv4([127, 0, 0, 1].into())],
        product_name: "fuzz".into(),
        vendor_specific_application_id: ims_diameter::repeated![VendorSpecificApplicationId::cx()],
        ..Default::default()
    }
    .encode_into(&h, &mut v);
    v
}

fn mar(e2e: u32) -> Vec<u8> {
    Mar {
        session_id: "fuzz;1;1".into(),
        vendor_specific_application_id: VendorSpecificApplicationId::cx(),
        origin_host: "local.example".into(),
        origin_realm: "example".into(),
        destination_realm: "example".into(),
        user_name: "u@example".into(),
        public_identity: "sip:u@example".into(),
        server_name: "sip:s.example".into(),
        ..Default::default()
    }
    .encode(0, e2e)
}

fn maa(hbh: u32) -> Vec<u8> {
    let mut a = Maa {
        session_id: "fuzz;1;1".into(),
        vendor_specific_application_id: VendorSpecificApplicationId::cx(),
        origin_host: REMOTE.into(),
        origin_realm: "example".into(),
        ..Default::default()
    };
    a.set_outcome(Outcome::SUCCESS);
    let mut h = Header::request(303, dict::app::CX, true, hbh, 0);
    h.flags.0 = crate::diameter::Flags::PROXIABLE;
    let mut v = Vec::new();
    a.encode_into(&h, &mut v);
    v
}

/// Runs the script in `data` (see the module documentation).
pub fn diameter_peer(data: &[u8]) {
    #[allow(clippy::disallowed_methods)] // origin of the virtual clock, never read again
    let t0 = Instant::now();
    let mut applications = vec![
        Application::tgpp_auth(dict::app::CX),
        Application::tgpp_auth(dict::app::RX),
    ];
    if (data.len() / 12) % 2 == 1 {
        applications.push(Application::CAPABILITIES_UPDATE);
    }
    let remote_cu = (data.len() / 24) % 2 == 1;
    let cfg = PeerConfig {
        applications,
        watchdog_interval: Duration::from_secs(6),
        watchdog_jitter: Duration::from_secs(2),
        seed: data.len() as u64,
        inband_security: match data.len() % 3 {
            0 => InbandSecurity::None,
            1 => InbandSecurity::TlsOptional,
            _ => InbandSecurity::TlsRequired,
        },
        ..PeerConfig::new("local.example", "example")
    };
    let isi: &[u32] = match (data.len() / 3) % 4 {
        0 => &[],
        1 => &[0],
        2 => &[1],
        _ => &[0, 1],
    };
    let tls_succeeds = data.len() % 5 != 0;
    let mut p = Peer::new(cfg, t0);
    let mut now = t0;
    // tags sent and not yet resolved; the Hop-by-Hop ids they went out with
    let mut unresolved: HashSet<u64> = HashSet::new();
    let mut hbhs: Vec<u32> = Vec::new();
    let mut next_tag = 0u64;
    let mut last_request_hbh = 0u32;
    let mut i = 0;
    while i < data.len() {
        let op = data[i];
        let len = usize::from(*data.get(i + 1).unwrap_or(&0));
        let payload = data
            .get(i + 2..(i + 2 + len).min(data.len()))
            .unwrap_or(&[]);
        i += 2 + len;
        let flipped = if op & 0x80 != 0 {
            Side::Responder
        } else {
            Side::Initiator
        };
        // bit 6: the transport in use rather than the one bit 7 names
        let side = match p.active_side() {
            Some(s) if op & 0x40 == 0 => s,
            _ => flipped,
        };
        match (op & 0x3f) % 15 {
            0 => {
                if p.accept().is_ok() {
                    p.handle_input(now, Input::Data(Side::Responder, &cer(isi, remote_cu)));
                }
            }
            1 => {
                p.connect(now);
                p.handle_input(now, Input::Connected);
            }
            2 => p.handle_input(now, Input::Data(side, payload)),
            3 => {
                let ms = u64::from(payload.first().copied().unwrap_or(1)) * 100;
                now += Duration::from_millis(ms);
                p.handle_timeout(now);
                if let Some(t) = p.poll_timeout() {
                    assert!(
                        t > now,
                        "a timer due at {t:?} survived handle_timeout({now:?})"
                    );
                }
            }
            4 => {
                next_tag += 1;
                let usable = p.is_usable();
                let deadline = now + Duration::from_millis(100 * u64::from(len as u8));
                match p.send_request(now, next_tag, &mar(next_tag as u32), deadline) {
                    Ok(h) => {
                        assert!(usable, "request accepted by an unusable peer");
                        unresolved.insert(next_tag);
                        hbhs.push(h);
                    }
                    Err(_) => assert!(!usable, "usable peer refused a request"),
                }
            }
            5 => p.handle_input(
                now,
                Input::Data(Side::Initiator, &cea(last_request_hbh, isi, remote_cu)),
            ),
            6 => {
                let cause = DisconnectCause::from_i32(i32::from(len as u8 % 4));
                p.disconnect(now, cause);
            }
            7 => p.handle_input(now, Input::TransportClosed(side)),
            8 => {
                let h = hbhs
                    .get(usize::from(len as u8) % hbhs.len().max(1))
                    .copied()
                    .unwrap_or(0);
                p.handle_input(now, Input::Data(side, &maa(h)));
            }
            9 => {
                let dwr = Dwr {
                    origin_host: REMOTE.into(),
                    origin_realm: "example".into(),
                    ..Default::default()
                }
                .encode(len as u32, 7);
                p.handle_input(now, Input::Data(side, &dwr));
            }
            10 => {
                let mut v = Vec::new();
                let mut h = Dwa::header(last_request_hbh, 0);
                h.flags.0 = 0;
                Dwa {
                    result_code: 2001,
                    origin_host: REMOTE.into(),
                    origin_realm: "example".into(),
                    ..Default::default()
                }
                .encode_into(&h, &mut v);
                p.handle_input(now, Input::Data(side, &v));
            }
            12 => {
                let bits = payload.first().copied().unwrap_or(0x0b);
                let _ = p.update_capabilities(now, apps_of(bits));
            }
            13 => {
                let bits = payload.first().copied().unwrap_or(0x0b);
                p.handle_input(now, Input::Data(side, &cur(bits, len as u32)));
            }
            14 => {
                let rc = if len % 2 == 0 { 2001 } else { 5010 };
                p.handle_input(now, Input::Data(side, &cua(last_request_hbh, rc)));
            }
            _ => {
                let dpr = Dpr {
                    origin_host: REMOTE.into(),
                    origin_realm: "example".into(),
                    disconnect_cause: DisconnectCause::Busy,
                    ..Default::default()
                }
                .encode(3, 3);
                p.handle_input(now, Input::Data(side, &dpr));
            }
        }
        // drain: bounded, every transmit well formed, every answer/timeout once for a sent tag
        let mut n = 0;
        let mut updated = None;
        while let Some(o) = p.poll_output() {
            n += 1;
            assert!(n < 10_000, "outputs never end");
            match o {
                Output::Transmit { bytes, .. } => {
                    let m = Message::parse(&bytes)
                        .unwrap_or_else(|e| panic!("transmitted an invalid message: {e}"));
                    if m.is_request() {
                        last_request_hbh = m.hop_by_hop();
                    }
                }
                Output::Event(Event::Answer { tag, answer }) => {
                    assert!(unresolved.remove(&tag), "answer for unknown tag {tag}");
                    assert!(!answer.view().is_request());
                }
                Output::Event(Event::Timeout { tag }) => {
                    assert!(unresolved.remove(&tag), "timeout for unknown tag {tag}");
                }
                Output::Event(Event::Failover(list)) => {
                    for r in list {
                        assert!(
                            unresolved.remove(&r.tag),
                            "failover of unknown tag {}",
                            r.tag
                        );
                        let m = Message::parse(&r.bytes).expect("failover request parses");
                        assert!(m.flags().is_retransmit(), "failover without the T flag");
                    }
                }
                Output::StartTls { side, .. } => {
                    // (later frames of the same input may have ended the handshake already)
                    if p.state() == PeerState::TlsHandshake {
                        assert!(!p.is_usable(), "usable during the TLS handshake");
                        if tls_succeeds {
                            p.handle_input(now, Input::TlsEstablished(side));
                        }
                    }
                }
                Output::Event(Event::CapabilitiesUpdated(info)) => {
                    assert!(
                        p.state().is_open() || p.state() == PeerState::Closing,
                        "capabilities updated in {:?}",
                        p.state()
                    );
                    updated = Some(info);
                }
                Output::Connect | Output::Close(_) | Output::Event(_) => {}
            }
        }
        assert!(
            p.pending_requests() <= unresolved.len(),
            "{} pending, {} unresolved",
            p.pending_requests(),
            unresolved.len()
        );
        if p.is_usable() {
            assert!(p.state().is_open());
        }
        if let (Some(info), Some(remote)) = (updated, p.remote()) {
            if p.state().is_open() {
                assert_eq!(
                    &info, remote,
                    "the update reported is not what the peer holds"
                );
            }
        }
    }
}
