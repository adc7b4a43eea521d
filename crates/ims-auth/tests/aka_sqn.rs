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
