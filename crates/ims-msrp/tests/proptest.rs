//! Property tests: chunk → reassemble for random sizes and orders; framer output identical for
//! random splits; URI and Byte-Range round trips.

// The virtual clock starts at an arbitrary real instant; nothing here waits on it.
#![allow(clippy::disallowed_methods)]

use bytes::Bytes;
use ims_msrp::session::{Config, Outgoing, Session, SessionEvent};
use ims_msrp::{Event, Flag, FrameBuilder, Framer, Limits, UriBuf};
use proptest::prelude::*;
use std::time::Instant;

const ALICE: &str = "msrp://alice.example.com:7777/iau39soe2843z;tcp";
const BOB: &str = "msrp://bob.example.com:8888/9di4eae923wzd;tcp";

fn run(data: &[u8], cuts: &[usize], threshold: usize) -> Vec<(Vec<u8>, Vec<u8>, Flag)> {
    let mut f = Framer::new(Limits {
        stream_threshold: threshold,
        ..Limits::default()
    });
    let mut out = Vec::new();
    let mut cur = None;
    let mut last = 0;
    let mut points: Vec<usize> = cuts.iter().map(|c| c % (data.len() + 1)).collect();
    points.sort_unstable();
    points.push(data.len());
    for p in points {
        f.push(&data[last..p]);
        last = p;
        while let Some(ev) = f.poll().unwrap() {
            match ev {
                Event::Frame(fr) => {
                    out.push((fr.head.as_bytes().to_vec(), fr.body.to_vec(), fr.flag))
                }
                Event::Start(h) => cur = Some((h.as_bytes().to_vec(), Vec::new())),
                Event::Data(d) => cur.as_mut().unwrap().1.extend_from_slice(&d),
                Event::End(fl) => {
                    let (h, b) = cur.take().unwrap();
                    out.push((h, b, fl));
                }
            }
        }
    }
    out
}

/// A body that loves to look like end-lines.
fn body() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(
        prop_oneof![
            Just(b"\r\n".to_vec()),
            Just(b"-------".to_vec()),
            Just(b"tid00001".to_vec()),
            Just(b"$".to_vec()),
            Just(b"+".to_vec()),
            prop::collection::vec(any::<u8>(), 0..8),
        ],
        0..40,
    )
    .prop_map(|v| v.concat())
}

proptest! {
    #[test]
    fn framer_is_split_invariant(
        bodies in prop::collection::vec(body(), 1..5),
        cuts in prop::collection::vec(any::<usize>(), 0..12),
        threshold in prop_oneof![Just(0usize), Just(7), Just(64), Just(usize::MAX)],
    ) {
        let mut wire = Vec::new();
        let mut expect = Vec::new();
        for (i, b) in bodies.iter().enumerate() {
            let tid = format!("tid0000{i}");
            // the sender rule of RFC 4975 §7.1: a body holding its end-line needs another tid
            let tid = if ims_msrp::body_contains_end_line(b, &tid) { format!("alt{i}xyzw") } else { tid };
            prop_assume!(!ims_msrp::body_contains_end_line(b, &tid));
            let fb = FrameBuilder::request(&tid, "SEND").to_path(BOB).from_path(ALICE)
                .header("Message-ID", "m1234567")
                .body("application/octet-stream", Bytes::copy_from_slice(b))
                .flag(if i % 2 == 0 { Flag::Continue } else { Flag::End });
            wire.extend_from_slice(&fb.to_bytes());
            expect.push(b.clone());
        }
        let whole = run(&wire, &[], threshold);
        prop_assert_eq!(whole.iter().map(|x| x.1.clone()).collect::<Vec<_>>(), expect);
        prop_assert_eq!(run(&wire, &cuts, threshold), whole);
    }

    #[test]
    fn chunk_then_reassemble_any_order(
        len in 0usize..5000,
        chunk in 1usize..700,
        seed in any::<u64>(),
    ) {
        let data: Vec<u8> = (0..len).map(|i| (i as u64).wrapping_mul(seed | 1) as u8).collect();
        let mut ca = Config::new(UriBuf::parse(ALICE).unwrap(), vec![UriBuf::parse(BOB).unwrap()]);
        ca.chunk_size = chunk;
        let mut a = Session::new(ca, seed);
        let mut b = Session::new(Config::new(UriBuf::parse(BOB).unwrap(), vec![UriBuf::parse(ALICE).unwrap()]), !seed);
        let now = Instant::now();
        let id = a.send(Outgoing::new("application/octet-stream", data.clone()));
        let mut frames = Vec::new();
        let mut f = Framer::new(Limits { stream_threshold: usize::MAX, ..Limits::default() });
        while let Some(t) = a.poll_transmit(now) {
            f.push(&t.to_vec());
        }
        while let Some(Event::Frame(fr)) = f.poll().unwrap() {
            frames.push(fr);
        }
        prop_assert_eq!(frames.len(), len.div_ceil(chunk).max(1));
        // shuffle deterministically by the seed
        let mut s = seed;
        for i in (1..frames.len()).rev() {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            frames.swap(i, (s >> 33) as usize % (i + 1));
        }
        for fr in frames {
            b.handle_frame(now, fr);
        }
        let evs: Vec<_> = std::iter::from_fn(|| b.poll_event()).collect();
        if len == 0 {
            prop_assert!(matches!(&evs[..], [SessionEvent::Message { body, .. }] if body.is_empty()), "{:?}", evs);
        } else {
            prop_assert_eq!(evs.len(), 1);
            match &evs[0] {
                SessionEvent::Message { message_id, body, .. } => {
                    prop_assert_eq!(message_id, &id);
                    prop_assert_eq!(&body[..], &data[..]);
                }
                e => prop_assert!(false, "{:?}", e),
            }
        }
    }

    #[test]
    fn byte_range_round_trip(start in 1u64..u64::MAX / 2, len in 0u64..1000, total in prop::option::of(0u64..10), end_star: bool) {
        let end = if end_star { None } else { Some(start + len - 1) };
        let total = total.map(|t| start + len + t);
        let br = ims_msrp::headers::ByteRange { start, end, total };
        prop_assert_eq!(ims_msrp::headers::ByteRange::parse(&br.to_string()).unwrap(), br);
    }

    #[test]
    fn uri_round_trip(user in prop::option::of("[a-z]{1,8}"), host in "[a-z]{1,10}(\\.[a-z]{2,5}){0,2}", port in prop::option::of(1u16..), sid in prop::option::of("[A-Za-z0-9+=/-]{1,12}")) {
        let mut s = String::from("msrp://");
        if let Some(u) = &user { s.push_str(u); s.push('@'); }
        s.push_str(&host);
        if let Some(p) = port { s.push_str(&format!(":{p}")); }
        if let Some(i) = &sid { s.push('/'); s.push_str(i); }
        s.push_str(";tcp");
        let u = ims_msrp::Uri::parse(&s).unwrap();
        prop_assert_eq!(u.port(), port);
        prop_assert_eq!(u.session_id(), sid.as_deref());
        prop_assert_eq!(u.userinfo(), user.as_deref());
        prop_assert!(u.equivalent(&u));
        let upper = s.to_ascii_uppercase().replace(&sid.clone().unwrap_or_default().to_ascii_uppercase(), sid.as_deref().unwrap_or(""));
        if let Ok(v) = ims_msrp::Uri::parse(&upper) {
            if v.session_id() == u.session_id() {
                prop_assert!(u.equivalent(&v));
            }
        }
    }
}
