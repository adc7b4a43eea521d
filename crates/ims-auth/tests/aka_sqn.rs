//! USIM sequence-number freshness, TS 33.102 Annex C.2, at the boundaries:
//!
//! - C.2.1: "the received sequence number SQN shall only be accepted by the USIM if
//!   SEQ − SEQ_MS ≤ Δ" (SEQ_MS the highest accepted);
//! - C.2.2: array of SEQ_MS(i): "If SEQ > SEQ_MS(i) the USIM shall consider the sequence
//!   number to be guaranteed fresh … If SEQ ≤ SEQ_MS(i) the USIM shall generate a
//!   synchronisation failure";
//! - C.2.2: "The USIM shall also be able to put a limit L on the difference between SEQ_MS and
//!   a received sequence number component SEQ. If such a limit L is applied then … the
//!   sequence number shall only be accepted by the USIM if SEQ_MS − SEQ < L."

use ims_auth::aka::{resync, AkaFailure, AuthVector, Sqn, SqnMs, SqnRejection, Usim};
use ims_auth::milenage::{Milenage, OperatorKey};

const IND_BITS: u8 = 5;

fn sqn(seq: u64, ind: u32) -> Sqn {
    Sqn::from_parts(seq, ind, IND_BITS)
}

/// SEQ_MS = 100 (accepted at IND 0).
fn state(delta: u64, l: Option<u64>) -> SqnMs {
    let mut s = SqnMs::new(IND_BITS).with_delta(delta).with_age_limit(l);
    s.accept(sqn(100, 0));
    s
}

#[test]
fn delta_boundary() {
    let s = state(16, None);
    assert_eq!(s.check_fresh(sqn(116, 1)), Ok(())); // SEQ − SEQ_MS = Δ
    assert_eq!(s.check_fresh(sqn(117, 1)), Err(SqnRejection::TooFarAhead)); // Δ + 1
    assert!(s.is_fresh(sqn(101, 0)));
}

#[test]
fn age_limit_boundary() {
    let s = state(1 << 28, Some(10));
    assert_eq!(s.age_limit(), Some(10));
    assert_eq!(s.check_fresh(sqn(91, 1)), Ok(())); // SEQ_MS − SEQ = 9 = L − 1
    assert_eq!(s.check_fresh(sqn(90, 2)), Err(SqnRejection::TooOld)); // = L
    assert_eq!(s.check_fresh(sqn(50, 3)), Err(SqnRejection::TooOld));
    // without L the same old SEQ is fresh in its unused slot
    let s = state(1 << 28, None);
    assert_eq!(s.check_fresh(sqn(90, 2)), Ok(()));
    assert_eq!(s.check_fresh(sqn(1, 3)), Ok(()));
    // the slot rule still applies inside the limit: SEQ ≤ SEQ_MS(i)
    let mut s = state(1 << 28, Some(10));
    s.accept(sqn(95, 4));
    assert_eq!(s.check_fresh(sqn(95, 4)), Err(SqnRejection::NotFresh));
    assert_eq!(s.check_fresh(sqn(94, 4)), Err(SqnRejection::NotFresh));
    assert_eq!(s.check_fresh(sqn(96, 4)), Ok(()));
    // L = 1: only SEQ ≥ SEQ_MS passes the age check (then the slot rule)
    let s = state(1 << 28, Some(1));
    assert_eq!(s.check_fresh(sqn(99, 1)), Err(SqnRejection::TooOld));
    assert_eq!(s.check_fresh(sqn(100, 1)), Ok(()));
    // L = 0 rejects everything
    let s = state(1 << 28, Some(0));
    assert_eq!(s.check_fresh(sqn(101, 1)), Err(SqnRejection::TooOld));
}

/// The USIM applies L: an old-but-unused SQN becomes a synchronisation failure whose AUTS
/// carries SQN_MS, and the network recovers SQN_MS from it.
#[test]
fn usim_with_age_limit_sync_failure() {
    let k = [0x46; 16];
    let op = OperatorKey::Op([0xcd; 16]);
    let hss = Milenage::new(&k, op);
    let mut usim = Usim::with_sqn(Milenage::new(&k, op), state(1 << 28, Some(10)));

    let ok = AuthVector::generate(&hss, [1; 16], sqn(91, 1), [0x80, 0]);
    assert!(usim.authenticate(&ok.rand, &ok.autn).is_ok());

    let old = AuthVector::generate(&hss, [2; 16], sqn(90, 2), [0x80, 0]);
    let auts = match usim.authenticate(&old.rand, &old.autn) {
        Err(AkaFailure::SyncFailure { auts }) => auts,
        other => panic!("{other:?}"),
    };
    let sqn_ms = resync(&hss, &old.rand, &auts).unwrap();
    assert_eq!(sqn_ms.seq(IND_BITS), 100);

    // and the same vector is accepted by a USIM without L
    let mut plain = Usim::with_sqn(
        Milenage::new(&k, OperatorKey::Op([0xcd; 16])),
        state(1 << 28, None),
    );
    assert!(plain.authenticate(&old.rand, &old.autn).is_ok());
}

// ---- time-based SQN generation (TS 33.102 Annex C.1.2): SEQ = max(SEQ_HE + 1, GLC) ----

use core::time::Duration;
use ims_auth::aka::SqnGenerator;

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

#[test]
fn time_based_seq_follows_the_clock_and_never_goes_down() {
    let mut he = SqnGenerator::new(IND_BITS).with_time_base(secs(1));
    assert_eq!(he.time_base(), Some(secs(1)));
    assert_eq!(he.glc(Duration::from_millis(999)), Some(0));
    assert_eq!(he.glc(secs(1)), Some(1)); // tick boundary: 0.999 s → 0, 1.000 s → 1

    // first vector at t = 1000 s: SEQ jumps to GLC
    let a = he.next_sqn_at(secs(1000));
    assert_eq!((a.seq(IND_BITS), a.ind(IND_BITS)), (1000, 0));
    // two more within the same second borrow from the next ticks: SEQ_HE + 1
    let b = he.next_sqn_at(Duration::from_millis(1_000_400));
    let c = he.next_sqn_at(Duration::from_millis(1_000_999));
    assert_eq!((b.seq(IND_BITS), c.seq(IND_BITS)), (1001, 1002));
    assert_eq!((b.ind(IND_BITS), c.ind(IND_BITS)), (1, 2)); // IND still cycles
                                                            // GLC catches up (1002 is already used at t = 1002 s, so SEQ_HE + 1 wins)
    assert_eq!(he.next_sqn_at(secs(1002)).seq(IND_BITS), 1003);
    // later: GLC wins again
    assert_eq!(he.next_sqn_at(secs(5000)).seq(IND_BITS), 5000);
    // a clock that goes backwards does not lower SEQ
    assert_eq!(he.next_sqn_at(secs(10)).seq(IND_BITS), 5001);
    assert_eq!(he.seq(), 5001);
    // every SQN strictly increases
    let mut last = 0;
    for t in [5001u64, 5001, 5001, 6000, 5999, 7000] {
        let s = he.next_sqn_at(secs(t)).seq(IND_BITS);
        assert!(s > last);
        last = s;
    }
}

#[test]
fn time_based_seq_boundaries() {
    // SEQ has 48 − IND bits; GLC beyond that is capped, SEQ saturates instead of wrapping
    let max_seq = (1u64 << (48 - IND_BITS)) - 1;
    let mut he = SqnGenerator::new(IND_BITS).with_time_base(Duration::from_nanos(1));
    assert_eq!(he.glc(Duration::from_nanos(max_seq)), Some(max_seq));
    assert_eq!(he.glc(Duration::from_nanos(max_seq + 1)), Some(max_seq));
    assert_eq!(
        he.next_sqn_at(Duration::from_nanos(max_seq - 1))
            .seq(IND_BITS),
        max_seq - 1
    );
    assert_eq!(
        he.next_sqn_at(Duration::from_nanos(max_seq - 1))
            .seq(IND_BITS),
        max_seq
    );
    assert_eq!(
        he.next_sqn_at(Duration::from_nanos(max_seq - 1))
            .seq(IND_BITS),
        max_seq
    );
    assert_eq!(he.next_sqn_at(Duration::MAX).seq(IND_BITS), max_seq);
    // a zero tick is one nanosecond; without a time base next_sqn_at counts like next_sqn
    assert_eq!(
        SqnGenerator::new(IND_BITS)
            .with_time_base(Duration::ZERO)
            .time_base(),
        Some(Duration::from_nanos(1))
    );
    let mut plain = SqnGenerator::new(IND_BITS);
    assert_eq!(plain.glc(secs(100)), None);
    assert_eq!(plain.next_sqn_at(secs(100)).seq(IND_BITS), 1);
    assert_eq!(plain.next_sqn_at(secs(200)).seq(IND_BITS), 2);
}

/// With time-based SQNs, the USIM's age limit L (Annex C.2.2) limits the age of a vector:
/// after accepting the vector made at t, one made at t − (L − 1) ticks is fresh, one made at
/// t − L ticks is a synchronisation failure; resynchronisation restarts SEQ_HE at SQN_MS and
/// the next vector (GLC again) is accepted.
#[test]
fn time_based_vectors_against_usim_age_limit() {
    let k = [0x46; 16];
    let op = OperatorKey::Op([0xcd; 16]);
    let hss = Milenage::new(&k, op);
    let l = 60; // one minute of 1 s ticks
    let mut usim = Usim::with_sqn(
        Milenage::new(&k, op),
        SqnMs::new(IND_BITS).with_age_limit(Some(l)),
    );
    // two HE front-ends sharing a time base (e.g. two HSS instances with their own SEQ_HE)
    let mut he_a = SqnGenerator::new(IND_BITS).with_time_base(secs(1));
    let mut he_b = SqnGenerator::new(IND_BITS).with_time_base(secs(1));
    // B makes vectors ahead of use: at 1000 s (fresh) and at 940 s (60 s older)
    let _ = he_b.next_sqn_at(secs(900));
    let old_ok = he_b.next_sqn_at(secs(941)); // SEQ 941: 1000 − 941 = 59 = L − 1
    let old_bad = he_b.next_sqn_at(secs(940)); // SEQ_HE + 1 = 942 here, so build one directly
    assert_eq!(old_bad.seq(IND_BITS), 942);
    let too_old = Sqn::from_parts(940, 7, IND_BITS); // a vector made at 940 s
    let now = he_a.next_sqn_at(secs(1000));
    assert_eq!(now.seq(IND_BITS), 1000);

    let av = AuthVector::generate(&hss, [1; 16], now, [0x80, 0]);
    assert!(usim.authenticate(&av.rand, &av.autn).is_ok());
    let av = AuthVector::generate(&hss, [2; 16], old_ok, [0x80, 0]);
    assert!(usim.authenticate(&av.rand, &av.autn).is_ok());
    let av = AuthVector::generate(&hss, [3; 16], too_old, [0x80, 0]);
    let auts = match usim.authenticate(&av.rand, &av.autn) {
        Err(AkaFailure::SyncFailure { auts }) => auts,
        other => panic!("{other:?}"),
    };
    let sqn_ms = resync(&hss, &av.rand, &auts).unwrap();
    assert_eq!(sqn_ms.seq(IND_BITS), 1000);
    he_b.resync(sqn_ms);
    // B's next vector at 1001 s is GLC = 1001 > SQN_MS: accepted
    let next = he_b.next_sqn_at(secs(1001));
    assert_eq!(next.seq(IND_BITS), 1001);
    let av = AuthVector::generate(&hss, [4; 16], next, [0x80, 0]);
    assert!(usim.authenticate(&av.rand, &av.autn).is_ok());
}
