//! IMS-AKA: authentication vectors, sequence numbers (TS 33.102 §6.3 and Annex C), the USIM
//! side (AUTN check, RES, AUTS), resynchronisation, and the Digest-AKA glue of RFC 3310
//! (AKAv1-MD5) and RFC 4169 (AKAv2-MD5).
//!
//! ```
//! use ims_auth::aka::{AuthVector, SqnGenerator, Usim, resync};
//! use ims_auth::milenage::{Milenage, OperatorKey};
//!
//! let k = [0x46; 16];
//! let hss = Milenage::new(&k, OperatorKey::Op([0xcd; 16]));
//! let mut sqn_he = SqnGenerator::new(5);
//! let mut usim = Usim::new(Milenage::new(&k, OperatorKey::Op([0xcd; 16])), 5);
//!
//! // the network makes a vector, the USIM checks AUTN and answers RES
//! let av = AuthVector::generate(&hss, [7; 16], sqn_he.next_sqn(), [0x80, 0]);
//! let keys = usim.authenticate(&av.rand, &av.autn).unwrap();
//! assert!(av.check_res(&keys.res));
//!
//! // a replayed AUTN is a synchronisation failure; AUTS lets the network recover SQN_MS
//! let auts = match usim.authenticate(&av.rand, &av.autn) {
//!     Err(ims_auth::aka::AkaFailure::SyncFailure { auts }) => auts,
//!     other => panic!("{other:?}"),
//! };
//! let sqn_ms = resync(&hss, &av.rand, &auts).unwrap();
//! sqn_he.resync(sqn_ms);
//! let av2 = AuthVector::generate(&hss, [8; 16], sqn_he.next_sqn(), [0x80, 0]);
//! assert!(usim.authenticate(&av2.rand, &av2.autn).is_ok());
//! ```

use crate::encoding::{base64_decode, base64_encode, ct_eq};
use crate::milenage::Milenage;
use crate::AuthError;
use core::fmt;
use hmac::{Hmac, Mac};

/// The largest SQN: 48 bits.
pub const SQN_MAX: u64 = (1 << 48) - 1;
/// AMF used when computing MAC-S for AUTS: the dummy all-zero value (TS 33.102 §6.3.3).
pub const AMF_RESYNC: [u8; 2] = [0, 0];
/// The default number of IND bits (TS 33.102 Annex C.3.2 suggests 5: an array of 32).
pub const DEFAULT_IND_BITS: u8 = 5;
/// The default freshness limit Δ of Annex C.2.1: how far ahead of the highest accepted SEQ a
/// new SEQ may jump (2^28).
pub const DEFAULT_DELTA: u64 = 1 << 28;

/// A 48-bit sequence number, `SQN = SEQ ‖ IND` (TS 33.102 Annex C.1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Sqn(u64);

impl Sqn {
    /// `value` when it fits in 48 bits.
    pub fn new(value: u64) -> Option<Sqn> {
        (value <= SQN_MAX).then_some(Sqn(value))
    }
    /// `SEQ ‖ IND` with `ind_bits` bits of IND (`seq` is truncated to the bits left).
    pub fn from_parts(seq: u64, ind: u32, ind_bits: u8) -> Sqn {
        let mask = (1u64 << ind_bits) - 1;
        Sqn(((seq << ind_bits) | (u64::from(ind) & mask)) & SQN_MAX)
    }
    /// The six octets, most significant first.
    pub fn from_bytes(b: [u8; 6]) -> Sqn {
        Sqn(b.iter().fold(0u64, |a, &x| a << 8 | u64::from(x)))
    }
    /// The six octets, most significant first.
    pub fn to_bytes(self) -> [u8; 6] {
        let b = self.0.to_be_bytes();
        [b[2], b[3], b[4], b[5], b[6], b[7]]
    }
    /// The 48-bit value.
    pub fn value(self) -> u64 {
        self.0
    }
    /// SEQ: the high `48 - ind_bits` bits.
    pub fn seq(self, ind_bits: u8) -> u64 {
        self.0 >> ind_bits
    }
    /// IND: the low `ind_bits` bits.
    pub fn ind(self, ind_bits: u8) -> u32 {
        (self.0 & ((1u64 << ind_bits) - 1)) as u32
    }
}

fn check_ind_bits(ind_bits: u8) -> u8 {
    // Annex C: IND is a few bits; cap it so the USIM array stays small.
    ind_bits.min(10)
}

/// The home network's SQN source (TS 33.102 Annex C.1.1/C.3.2): SEQ_HE goes up by one for each
/// vector, IND runs cyclically through `0..2^ind_bits`.
///
/// Optionally time-based (Annex C.1.2): with [`SqnGenerator::with_time_base`] and
/// [`SqnGenerator::next_sqn_at`], SEQ follows a global counter GLC that counts `tick`s since an
/// epoch the caller chooses (the caller supplies the time: this crate reads no clock):
/// `SEQ = max(SEQ_HE + 1, GLC)`. SEQ is then `SEQ1 ‖ SEQ2`, SEQ2 the low bits of GLC and SEQ1
/// counting its wrap-arounds, so SEQ never goes down: several vectors within one tick take
/// SEQ_HE + 1 (borrowing from the next ticks), a clock that goes back changes nothing, and
/// after a resynchronisation SEQ_HE restarts from SQN_MS as in the counter scheme. Because SEQ
/// then tracks time, the USIM's age limit L ([`SqnMs::with_age_limit`]) becomes a limit on the
/// age of a vector in ticks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqnGenerator {
    seq: u64,
    ind: u32,
    ind_bits: u8,
    tick: Option<core::time::Duration>,
}

impl SqnGenerator {
    /// Starts at SEQ_HE = 0 with `ind_bits` of IND (at most 10).
    pub fn new(ind_bits: u8) -> SqnGenerator {
        SqnGenerator {
            seq: 0,
            ind: 0,
            ind_bits: check_ind_bits(ind_bits),
            tick: None,
        }
    }
    /// Makes SEQ time-based (Annex C.1.2): GLC advances by one every `tick` (e.g. one second)
    /// of the time passed to [`SqnGenerator::next_sqn_at`]. A zero `tick` is taken as one
    /// nanosecond.
    pub fn with_time_base(mut self, tick: core::time::Duration) -> SqnGenerator {
        self.tick = Some(tick.max(core::time::Duration::from_nanos(1)));
        self
    }
    /// The GLC tick, when time-based.
    pub fn time_base(&self) -> Option<core::time::Duration> {
        self.tick
    }
    /// The largest SEQ value with this many IND bits.
    fn seq_max(&self) -> u64 {
        SQN_MAX >> self.ind_bits
    }
    /// GLC at `now` (time since the caller's epoch): whole ticks, capped at the largest SEQ.
    pub fn glc(&self, now: core::time::Duration) -> Option<u64> {
        let tick = self.tick?.as_nanos();
        let ticks = now.as_nanos() / tick;
        Some(u64::try_from(ticks).unwrap_or(u64::MAX).min(self.seq_max()))
    }
    /// The SQN for the next vector at time `now` (since the caller's epoch): time-based when
    /// [`SqnGenerator::with_time_base`] was set, `SEQ = max(SEQ_HE + 1, GLC(now))`; otherwise
    /// the same as [`SqnGenerator::next_sqn`]. SEQ stops at its largest value (it never wraps
    /// to a value the USIM would refuse as old).
    pub fn next_sqn_at(&mut self, now: core::time::Duration) -> Sqn {
        let Some(glc) = self.glc(now) else {
            return self.next_sqn();
        };
        self.seq = (self.seq.saturating_add(1)).max(glc).min(self.seq_max());
        let sqn = Sqn::from_parts(self.seq, self.ind, self.ind_bits);
        self.ind = (self.ind + 1) % (1 << self.ind_bits);
        sqn
    }
    /// Continues from a stored SEQ_HE.
    pub fn with_seq(mut self, seq: u64) -> SqnGenerator {
        self.seq = seq;
        self
    }
    /// The current SEQ_HE (store it with the subscriber).
    pub fn seq(&self) -> u64 {
        self.seq
    }
    /// The SQN for the next vector.
    pub fn next_sqn(&mut self) -> Sqn {
        self.seq += 1;
        let sqn = Sqn::from_parts(self.seq, self.ind, self.ind_bits);
        self.ind = (self.ind + 1) % (1 << self.ind_bits);
        sqn
    }
    /// After a synchronisation failure (TS 33.102 §6.3.5): continue from the SEQ of the SQN_MS
    /// recovered with [`resync`], so the next vector is fresh for the USIM.
    pub fn resync(&mut self, sqn_ms: Sqn) {
        self.seq = sqn_ms.seq(self.ind_bits);
    }
}

/// Why [`SqnMs::check_fresh`] rejected a sequence number (each leads to a synchronisation
/// failure, TS 33.102 §6.3.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SqnRejection {
    /// Annex C.2.1: SEQ − SEQ_MS > Δ (a jump too far ahead of the highest accepted SEQ).
    TooFarAhead,
    /// Annex C.2.2: SEQ_MS − SEQ ≥ L (older than the age limit L below the highest accepted).
    TooOld,
    /// Annex C.2.2: SEQ ≤ SEQ_MS(IND) (already used, or older, in its array slot).
    NotFresh,
}

/// The USIM's record of accepted sequence numbers (TS 33.102 Annex C.2): one SEQ_MS per IND
/// value, the freshness limit Δ and the optional age limit L.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqnMs {
    seq_ms: Vec<u64>,
    ind_bits: u8,
    delta: u64,
    age_limit: Option<u64>,
}

impl SqnMs {
    /// An empty array of `2^ind_bits` entries (at most 10 bits) with Δ = [`DEFAULT_DELTA`].
    pub fn new(ind_bits: u8) -> SqnMs {
        let ind_bits = check_ind_bits(ind_bits);
        SqnMs {
            seq_ms: vec![0; 1 << ind_bits],
            ind_bits,
            delta: DEFAULT_DELTA,
            age_limit: None,
        }
    }
    /// Sets the limit Δ on how far a SEQ may jump ahead (Annex C.2.1).
    pub fn with_delta(mut self, delta: u64) -> SqnMs {
        self.delta = delta;
        self
    }
    /// Applies the age limit L of Annex C.2.2: "the USIM shall also be able to put a limit L
    /// on the difference between SEQ_MS and a received sequence number component SEQ … the
    /// sequence number shall only be accepted by the USIM if SEQ_MS − SEQ < L", SEQ_MS being
    /// the highest accepted SEQ. `None` (the default) applies no limit; `Some(0)` rejects
    /// everything.
    pub fn with_age_limit(mut self, limit: Option<u64>) -> SqnMs {
        self.age_limit = limit;
        self
    }
    /// The limit Δ.
    pub fn delta(&self) -> u64 {
        self.delta
    }
    /// The age limit L, if applied.
    pub fn age_limit(&self) -> Option<u64> {
        self.age_limit
    }
    fn highest_seq(&self) -> (u64, usize) {
        let mut best = (0, 0);
        for (i, &s) in self.seq_ms.iter().enumerate() {
            if s > best.0 {
                best = (s, i);
            }
        }
        best
    }
    /// Annex C.2: SQN is fresh when SEQ − SEQ_MS ≤ Δ (C.2.1), SEQ_MS − SEQ < L when L is
    /// applied (C.2.2, checked before the array), and SEQ > SEQ_MS(IND) (C.2.2), SEQ_MS being
    /// the highest accepted SEQ.
    pub fn check_fresh(&self, sqn: Sqn) -> Result<(), SqnRejection> {
        let seq = sqn.seq(self.ind_bits);
        let ind = sqn.ind(self.ind_bits) as usize;
        let (highest, _) = self.highest_seq();
        if seq.saturating_sub(highest) > self.delta {
            return Err(SqnRejection::TooFarAhead);
        }
        if let Some(l) = self.age_limit {
            if highest.saturating_sub(seq) >= l {
                return Err(SqnRejection::TooOld);
            }
        }
        if seq <= self.seq_ms[ind] {
            return Err(SqnRejection::NotFresh);
        }
        Ok(())
    }
    /// True when [`SqnMs::check_fresh`] accepts `sqn`.
    pub fn is_fresh(&self, sqn: Sqn) -> bool {
        self.check_fresh(sqn).is_ok()
    }
    /// Records an accepted SQN.
    pub fn accept(&mut self, sqn: Sqn) {
        let ind = sqn.ind(self.ind_bits) as usize;
        self.seq_ms[ind] = sqn.seq(self.ind_bits);
    }
    /// SQN_MS sent in AUTS: the highest accepted SEQ with its IND (Annex C.2.3... §6.3.3).
    pub fn sqn_ms(&self) -> Sqn {
        let (seq, ind) = self.highest_seq();
        Sqn::from_parts(seq, ind as u32, self.ind_bits)
    }
}

/// One authentication vector (TS 33.102 §6.3.2): RAND, XRES, CK, IK, AUTN. `Debug` shows RAND
/// and AUTN only.
#[derive(Clone, PartialEq, Eq)]
pub struct AuthVector {
    /// The random challenge.
    pub rand: [u8; 16],
    /// The expected response f2.
    pub xres: [u8; 8],
    /// The cipher key f3.
    pub ck: [u8; 16],
    /// The integrity key f4.
    pub ik: [u8; 16],
    /// `SQN ⊕ AK ‖ AMF ‖ MAC-A`.
    pub autn: [u8; 16],
}

impl fmt::Debug for AuthVector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthVector")
            .field("rand", &crate::error::Hex(&self.rand).to_string())
            .field("autn", &crate::error::Hex(&self.autn).to_string())
            .finish_non_exhaustive()
    }
}

impl AuthVector {
    /// Generates the vector for `rand` (fresh randomness from the caller), `sqn` (from a
    /// [`SqnGenerator`]) and `amf`.
    pub fn generate(m: &Milenage, rand: [u8; 16], sqn: Sqn, amf: [u8; 2]) -> AuthVector {
        let sqn_b = sqn.to_bytes();
        let mac_a = m.f1(&rand, &sqn_b, &amf);
        let o = m.f2345(&rand);
        let mut autn = [0u8; 16];
        for i in 0..6 {
            autn[i] = sqn_b[i] ^ o.ak[i];
        }
        autn[6..8].copy_from_slice(&amf);
        autn[8..].copy_from_slice(&mac_a);
        AuthVector {
            rand,
            xres: o.res,
            ck: o.ck,
            ik: o.ik,
            autn,
        }
    }
    /// RES == XRES, compared in constant time.
    pub fn check_res(&self, res: &[u8]) -> bool {
        ct_eq(res, &self.xres)
    }
}

/// What a USIM derives from a good challenge. `Debug` shows nothing.
#[derive(Clone, PartialEq, Eq)]
pub struct AkaKeys {
    /// RES.
    pub res: [u8; 8],
    /// CK.
    pub ck: [u8; 16],
    /// IK.
    pub ik: [u8; 16],
    /// The SQN that was accepted.
    pub sqn: Sqn,
}

impl fmt::Debug for AkaKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AkaKeys")
            .field("sqn", &self.sqn)
            .finish_non_exhaustive()
    }
}

/// Why a USIM rejected a challenge (TS 33.102 §6.3.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AkaFailure {
    /// XMAC ≠ MAC-A: the network does not know K (or AUTN was altered).
    MacFailure,
    /// MAC-A is right but SQN is not fresh: answer with `AUTS = SQN_MS ⊕ AK* ‖ MAC-S`.
    SyncFailure {
        /// The 14-octet AUTS.
        auts: [u8; 14],
    },
}

/// The USIM side: K, OPc and the SQN array.
#[derive(Debug, Clone)]
pub struct Usim {
    milenage: Milenage,
    sqn: SqnMs,
}

impl Usim {
    /// A USIM with an empty SQN array of `2^ind_bits` entries.
    pub fn new(milenage: Milenage, ind_bits: u8) -> Usim {
        Usim {
            milenage,
            sqn: SqnMs::new(ind_bits),
        }
    }
    /// A USIM with a given SQN state.
    pub fn with_sqn(milenage: Milenage, sqn: SqnMs) -> Usim {
        Usim { milenage, sqn }
    }
    /// The SQN state.
    pub fn sqn_state(&self) -> &SqnMs {
        &self.sqn
    }
    /// Checks AUTN (MAC-A, then SQN freshness) and on success records SQN and returns RES, CK
    /// and IK.
    pub fn authenticate(
        &mut self,
        rand: &[u8; 16],
        autn: &[u8; 16],
    ) -> Result<AkaKeys, AkaFailure> {
        let o = self.milenage.f2345(rand);
        let mut sqn_b = [0u8; 6];
        for i in 0..6 {
            sqn_b[i] = autn[i] ^ o.ak[i];
        }
        let amf = [autn[6], autn[7]];
        let xmac = self.milenage.f1(rand, &sqn_b, &amf);
        if !ct_eq(&xmac, &autn[8..]) {
            return Err(AkaFailure::MacFailure);
        }
        let sqn = Sqn::from_bytes(sqn_b);
        if !self.sqn.is_fresh(sqn) {
            return Err(AkaFailure::SyncFailure {
                auts: self.auts(rand),
            });
        }
        self.sqn.accept(sqn);
        Ok(AkaKeys {
            res: o.res,
            ck: o.ck,
            ik: o.ik,
            sqn,
        })
    }
    /// `AUTS = (SQN_MS ⊕ f5*(RAND)) ‖ f1*(SQN_MS, RAND, AMF = 0)`.
    pub fn auts(&self, rand: &[u8; 16]) -> [u8; 14] {
        let sqn_ms = self.sqn.sqn_ms().to_bytes();
        let ak_s = self.milenage.f5_star(rand);
        let mac_s = self.milenage.f1_star(rand, &sqn_ms, &AMF_RESYNC);
        let mut auts = [0u8; 14];
        for i in 0..6 {
            auts[i] = sqn_ms[i] ^ ak_s[i];
        }
        auts[6..].copy_from_slice(&mac_s);
        auts
    }
}

/// The network side of a synchronisation failure (TS 33.102 §6.3.5): recovers SQN_MS from AUTS
/// with f5* and checks MAC-S with f1*. Feed the result to [`SqnGenerator::resync`].
pub fn resync(m: &Milenage, rand: &[u8; 16], auts: &[u8]) -> Result<Sqn, AuthError> {
    if auts.len() != 14 {
        return Err(AuthError::Length {
            what: "AUTS",
            expected: 14,
            got: auts.len(),
        });
    }
    let ak_s = m.f5_star(rand);
    let mut sqn_ms = [0u8; 6];
    for i in 0..6 {
        sqn_ms[i] = auts[i] ^ ak_s[i];
    }
    let mac_s = m.f1_star(rand, &sqn_ms, &AMF_RESYNC);
    if !ct_eq(&mac_s, &auts[6..]) {
        return Err(AuthError::MacFailure);
    }
    Ok(Sqn::from_bytes(sqn_ms))
}

/// The Digest-AKA nonce (RFC 3310 §3.2): `base64(RAND ‖ AUTN ‖ server data)`.
pub fn aka_nonce(rand: &[u8; 16], autn: &[u8; 16], server_data: &[u8]) -> String {
    let mut b = Vec::with_capacity(32 + server_data.len());
    b.extend_from_slice(rand);
    b.extend_from_slice(autn);
    b.extend_from_slice(server_data);
    base64_encode(&b)
}

/// A decoded Digest-AKA nonce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AkaNonce {
    /// RAND.
    pub rand: [u8; 16],
    /// AUTN.
    pub autn: [u8; 16],
    /// Whatever the server appended.
    pub server_data: Vec<u8>,
}

impl AkaNonce {
    /// Decodes `base64(RAND ‖ AUTN ‖ server data)`; at most 1024 characters.
    pub fn parse(nonce: &str) -> Result<AkaNonce, AuthError> {
        if nonce.len() > 1024 {
            return Err(AuthError::BadParam("nonce"));
        }
        let b = base64_decode(nonce)?;
        if b.len() < 32 {
            return Err(AuthError::Length {
                what: "AKA nonce",
                expected: 32,
                got: b.len(),
            });
        }
        let mut rand = [0u8; 16];
        let mut autn = [0u8; 16];
        rand.copy_from_slice(&b[..16]);
        autn.copy_from_slice(&b[16..32]);
        Ok(AkaNonce {
            rand,
            autn,
            server_data: b[32..].to_vec(),
        })
    }
}

/// The AKAv2-MD5 digest password (RFC 4169 §3): `base64(HMAC-MD5(RES ‖ IK ‖ CK,
/// "http-digest-akav2-password"))`.
pub fn akav2_password(res: &[u8], ik: &[u8; 16], ck: &[u8; 16]) -> String {
    let mut key = Vec::with_capacity(res.len() + 32);
    key.extend_from_slice(res);
    key.extend_from_slice(ik);
    key.extend_from_slice(ck);
    let mut mac =
        <Hmac<md5::Md5> as Mac>::new_from_slice(&key).expect("HMAC takes keys of any length");
    mac.update(b"http-digest-akav2-password");
    base64_encode(&mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::milenage::OperatorKey;

    fn usim_and_hss() -> (Usim, Milenage) {
        let m = Milenage::new(&[1; 16], OperatorKey::Opc([2; 16]));
        (Usim::new(m.clone(), 5), m)
    }

    #[test]
    fn sqn_parts() {
        let s = Sqn::from_parts(0x123, 7, 5);
        assert_eq!(s.seq(5), 0x123);
        assert_eq!(s.ind(5), 7);
        assert_eq!(Sqn::from_bytes(s.to_bytes()), s);
        assert_eq!(Sqn::new(SQN_MAX + 1), None);
    }

    #[test]
    fn generator_cycles_ind_and_increments_seq() {
        let mut g = SqnGenerator::new(2);
        let v: Vec<(u64, u32)> = (0..5)
            .map(|_| g.next_sqn())
            .map(|s| (s.seq(2), s.ind(2)))
            .collect();
        assert_eq!(v, [(1, 0), (2, 1), (3, 2), (4, 3), (5, 0)]);
    }

    #[test]
    fn out_of_order_vectors_are_accepted_per_ind() {
        // Annex C: vectors with different IND may be used out of order
        let (mut usim, hss) = usim_and_hss();
        let mut g = SqnGenerator::new(5);
        let a = AuthVector::generate(&hss, [1; 16], g.next_sqn(), [0x80, 0]);
        let b = AuthVector::generate(&hss, [2; 16], g.next_sqn(), [0x80, 0]);
        assert!(usim.authenticate(&b.rand, &b.autn).is_ok());
        assert!(usim.authenticate(&a.rand, &a.autn).is_ok());
        // but each only once
        assert!(matches!(
            usim.authenticate(&a.rand, &a.autn),
            Err(AkaFailure::SyncFailure { .. })
        ));
    }

    #[test]
    fn mac_failure_on_wrong_key_or_tampered_autn() {
        let (mut usim, _) = usim_and_hss();
        let other = Milenage::new(&[9; 16], OperatorKey::Opc([2; 16]));
        let av = AuthVector::generate(&other, [3; 16], Sqn::from_parts(1, 0, 5), [0, 0]);
        assert_eq!(
            usim.authenticate(&av.rand, &av.autn),
            Err(AkaFailure::MacFailure)
        );
        let (mut usim, hss) = usim_and_hss();
        let mut av = AuthVector::generate(&hss, [3; 16], Sqn::from_parts(1, 0, 5), [0, 0]);
        av.autn[6] ^= 1; // AMF is covered by MAC-A
        assert_eq!(
            usim.authenticate(&av.rand, &av.autn),
            Err(AkaFailure::MacFailure)
        );
    }

    #[test]
    fn delta_limit_triggers_resync() {
        let (usim, hss) = usim_and_hss();
        let mut usim = Usim::with_sqn(usim.milenage, SqnMs::new(5).with_delta(10));
        let av = AuthVector::generate(&hss, [4; 16], Sqn::from_parts(11, 0, 5), [0, 0]);
        let Err(AkaFailure::SyncFailure { auts }) = usim.authenticate(&av.rand, &av.autn) else {
            panic!("SEQ 11 is more than Δ = 10 ahead of 0");
        };
        let sqn_ms = resync(&hss, &av.rand, &auts).unwrap();
        assert_eq!(sqn_ms, Sqn::from_parts(0, 0, 5));
        let mut bad = auts;
        bad[13] ^= 1;
        assert_eq!(resync(&hss, &av.rand, &bad), Err(AuthError::MacFailure));
        assert!(matches!(
            resync(&hss, &av.rand, &auts[..13]),
            Err(AuthError::Length { .. })
        ));
    }

    #[test]
    fn aka_nonce_round_trip() {
        let n = aka_nonce(&[1; 16], &[2; 16], b"xyz");
        let p = AkaNonce::parse(&n).unwrap();
        assert_eq!(
            (p.rand, p.autn, p.server_data.as_slice()),
            ([1; 16], [2; 16], &b"xyz"[..])
        );
        assert!(AkaNonce::parse("AAAA").is_err());
    }

    #[test]
    fn debug_hides_secrets() {
        let (mut usim, hss) = usim_and_hss();
        let av = AuthVector::generate(&hss, [5; 16], Sqn::from_parts(1, 0, 5), [0, 0]);
        let keys = usim.authenticate(&av.rand, &av.autn).unwrap();
        let s = format!("{av:?} {keys:?} {usim:?}");
        let xres = crate::encoding::hex_encode(&av.xres);
        let ck = crate::encoding::hex_encode(&av.ck);
        assert!(!s.contains(&xres) && !s.contains(&ck), "{s}");
    }
}
