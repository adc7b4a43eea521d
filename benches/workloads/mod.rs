//! The workloads both SIP benches run, so the criterion timings (`sip_parse`) and the callgrind
//! instruction counts (`sip_icount`) always measure the same work.

use ims::sip::{self, headers};
use rsip::prelude::*;
use std::hint::black_box;

/// The six messages of `tests/vectors/sip-bench` (the bytes rsip's baseline was measured on) plus
/// three IMS messages of our own (`tests/vectors/ims`). Both parsers must accept every one, or the
/// comparison is meaningless.
pub(crate) fn inputs() -> Vec<Vec<u8>> {
    let root = env!("CARGO_MANIFEST_DIR");
    let mut v = Vec::new();
    for i in 1..=6 {
        v.push(
            std::fs::read(format!("{root}/tests/vectors/sip-bench/{i}.sip")).expect("bench vector"),
        );
    }
    for n in ["register_200", "invite_183", "notify_reginfo"] {
        v.push(std::fs::read(format!("{root}/tests/vectors/ims/{n}.sip")).expect("ims vector"));
    }
    for m in &v {
        sip::parse_datagram(m).expect("ims parses the input");
        rsip::SipMessage::try_from(m.as_slice()).expect("rsip parses the input");
    }
    v
}

/// One message through one workload; `out` is a reusable output buffer.
pub(crate) type Work = fn(&[u8], &mut Vec<u8>);

/// Every group as `(group, ims workload, rsip workload)`.
pub(crate) const GROUPS: [(&str, Work, Work); 4] = [
    ("parse", parse_ims, parse_rsip),
    ("parse_typed", parse_typed_ims, parse_typed_rsip),
    ("roundtrip", roundtrip_ims, roundtrip_rsip),
    ("forward", forward_ims, forward_rsip),
];

const FWD_VIA: &str = "SIP/2.0/UDP 10.10.0.10:5060;branch=z9hG4bK-fwd-8a7c61";

fn parse_ims(m: &[u8], _: &mut Vec<u8>) {
    black_box(sip::parse_datagram(black_box(m)).unwrap());
}

fn parse_rsip(m: &[u8], _: &mut Vec<u8>) {
    black_box(rsip::SipMessage::try_from(black_box(m)).unwrap());
}

fn parse_typed_ims(m: &[u8], _: &mut Vec<u8>) {
    let msg = sip::parse_datagram(black_box(m)).unwrap();
    black_box((
        msg.top_via().unwrap(),
        msg.from().unwrap(),
        msg.to().unwrap(),
        msg.cseq().unwrap(),
        msg.call_id().unwrap(),
        msg.get::<headers::Contact>().unwrap(),
    ));
}

fn parse_typed_rsip(m: &[u8], _: &mut Vec<u8>) {
    let msg = rsip::SipMessage::try_from(black_box(m)).unwrap();
    // rsip cannot type some IMS values (quoted contact params): count the attempt
    black_box((
        msg.via_header().ok().map(|h| h.typed().ok()),
        msg.from_header().ok().map(|h| h.typed().ok()),
        msg.to_header().ok().map(|h| h.typed().ok()),
        msg.cseq_header().ok().map(|h| h.typed().ok()),
        msg.call_id_header().ok().cloned(),
        msg.contact_header().ok().map(|h| h.typed().ok()),
    ));
}

fn roundtrip_ims(m: &[u8], out: &mut Vec<u8>) {
    let msg = sip::parse_datagram(black_box(m)).unwrap();
    out.clear();
    msg.edit().write_to(out);
    black_box(&out);
}

fn roundtrip_rsip(m: &[u8], _: &mut Vec<u8>) {
    let msg = rsip::SipMessage::try_from(black_box(m)).unwrap();
    black_box(msg.to_string());
}

fn forward_ims(m: &[u8], out: &mut Vec<u8>) {
    let msg = sip::parse_datagram(black_box(m)).unwrap();
    let mut e = msg.edit();
    e.push_via(FWD_VIA);
    e.pop_route();
    if msg.is_request() {
        e.decrement_max_forwards().unwrap();
    }
    out.clear();
    e.write_to(out);
    black_box(&out);
}

fn forward_rsip(m: &[u8], _: &mut Vec<u8>) {
    let mut msg = rsip::SipMessage::try_from(black_box(m)).unwrap();
    let is_request = msg.is_request();
    let mut hs: Vec<rsip::Header> = std::mem::take(msg.headers_mut()).into();
    hs.insert(0, rsip::Header::Via(rsip::headers::Via::new(FWD_VIA)));
    if let Some(i) = hs.iter().position(|h| matches!(h, rsip::Header::Route(_))) {
        hs.remove(i);
    }
    if is_request {
        for h in hs.iter_mut() {
            if let rsip::Header::MaxForwards(mf) = h {
                let n = mf.num().unwrap();
                *mf = rsip::headers::MaxForwards::from(n - 1);
            }
        }
    }
    *msg.headers_mut() = hs.into();
    black_box(msg.to_string());
}
