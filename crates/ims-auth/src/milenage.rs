//! MILENAGE (3GPP TS 35.206): the example algorithm set for the 3GPP authentication and key
//! generation functions f1, f1*, f2, f3, f4, f5 and f5*, on the AES-128 kernel.
//!
//! ```
//! use ims_auth::milenage::{Milenage, OperatorKey};
//! # fn h<const N: usize>(s: &str) -> [u8; N] { ims_auth::encoding::hex_decode(s).unwrap().try_into().unwrap() }
//! // TS 35.208 test set 1
//! let m = Milenage::new(&h("465b5ce8b199b49faa5f0a2ee238a6bc"),
//!                       OperatorKey::Op(h("cdc202d5123e20f62b6d676ac72cb318")));
//! let rand = h("23553cbe9637a89d218ae64dae47bf35");
//! assert_eq!(m.f1(&rand, &h("ff9bb4d0b607"), &h("b9b9")), h("4a9ffac354dfafb3"));
//! let out = m.f2345(&rand);
//! assert_eq!(out.res, h("a54211d5e3ba50bf"));
//! assert_eq!(out.ak, h("aa689c648370"));
//! ```

use aes::cipher::{generic_array::GenericArray, BlockEncrypt, KeyInit};
use aes::Aes128;
use core::fmt;

/// The operator variant algorithm configuration field, as provisioned: OP itself, or OPc
/// (= OP ⊕ E_K(OP), TS 35.206 §4.1), which is what a USIM or HSS should store.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum OperatorKey {
    /// OP; OPc is derived from it and K.
    Op([u8; 16]),
    /// OPc, already derived.
    Opc([u8; 16]),
}

impl fmt::Debug for OperatorKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            OperatorKey::Op(_) => "Op(<redacted>)",
            OperatorKey::Opc(_) => "Opc(<redacted>)",
        })
    }
}

/// f2, f3, f4 and f5 of one RAND: they share the first AES encryption.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct F2345 {
    /// f2: RES (XRES on the network side), 64 bits.
    pub res: [u8; 8],
    /// f3: the cipher key CK.
    pub ck: [u8; 16],
    /// f4: the integrity key IK.
    pub ik: [u8; 16],
    /// f5: the anonymity key AK that conceals SQN in AUTN.
    pub ak: [u8; 6],
}

impl fmt::Debug for F2345 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("F2345 { <redacted> }")
    }
}

/// MILENAGE keyed for one subscriber: K and OPc. `Debug` never shows either.
#[derive(Clone)]
pub struct Milenage {
    kernel: Aes128,
    opc: [u8; 16],
}

impl fmt::Debug for Milenage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Milenage { k: <redacted>, opc: <redacted> }")
    }
}

// TS 35.206 §4.1: rotations (in bits) and constants c1..c5.
const R1: usize = 64;
const R2: usize = 0;
const R3: usize = 32;
const R4: usize = 64;
const R5: usize = 96;

const fn c(last: u8) -> [u8; 16] {
    let mut x = [0u8; 16];
    x[15] = last;
    x
}
const C1: [u8; 16] = c(0);
const C2: [u8; 16] = c(1);
const C3: [u8; 16] = c(2);
const C4: [u8; 16] = c(4);
const C5: [u8; 16] = c(8);

fn xor(a: &[u8; 16], b: &[u8; 16]) -> [u8; 16] {
    let mut o = [0u8; 16];
    for i in 0..16 {
        o[i] = a[i] ^ b[i];
    }
    o
}

/// rot(x, r): x cyclically rotated left by r bits (r a multiple of 8 here).
fn rot(x: &[u8; 16], r: usize) -> [u8; 16] {
    let mut o = [0u8; 16];
    for (i, b) in o.iter_mut().enumerate() {
        *b = x[(i + r / 8) % 16];
    }
    o
}

fn take<const N: usize>(s: &[u8]) -> [u8; N] {
    let mut o = [0u8; N];
    o.copy_from_slice(&s[..N]);
    o
}

impl Milenage {
    /// Keys MILENAGE with the subscriber key K and OP or OPc.
    pub fn new(k: &[u8; 16], op: OperatorKey) -> Milenage {
        let kernel = Aes128::new(GenericArray::from_slice(k));
        let opc = match op {
            OperatorKey::Opc(opc) => opc,
            OperatorKey::Op(op) => {
                let e = encrypt(&kernel, &op);
                xor(&e, &op)
            }
        };
        Milenage { kernel, opc }
    }

    /// OPc = OP ⊕ E_K(OP). A secret: store it like K.
    pub fn opc(&self) -> [u8; 16] {
        self.opc
    }

    fn e(&self, x: &[u8; 16]) -> [u8; 16] {
        encrypt(&self.kernel, x)
    }

    /// TEMP = E_K(RAND ⊕ OPc).
    fn temp(&self, rand: &[u8; 16]) -> [u8; 16] {
        self.e(&xor(rand, &self.opc))
    }

    /// OUT1 = E_K(TEMP ⊕ rot(IN1 ⊕ OPc, r1) ⊕ c1) ⊕ OPc, IN1 = SQN‖AMF‖SQN‖AMF.
    fn out1(&self, rand: &[u8; 16], sqn: &[u8; 6], amf: &[u8; 2]) -> [u8; 16] {
        let temp = self.temp(rand);
        let mut in1 = [0u8; 16];
        in1[0..6].copy_from_slice(sqn);
        in1[6..8].copy_from_slice(amf);
        in1[8..14].copy_from_slice(sqn);
        in1[14..16].copy_from_slice(amf);
        let x = xor(&xor(&temp, &rot(&xor(&in1, &self.opc), R1)), &C1);
        xor(&self.e(&x), &self.opc)
    }

    /// OUTn = E_K(rot(TEMP ⊕ OPc, rn) ⊕ cn) ⊕ OPc for n = 2..5.
    fn out(&self, temp: &[u8; 16], r: usize, c: &[u8; 16]) -> [u8; 16] {
        let x = xor(&rot(&xor(temp, &self.opc), r), c);
        xor(&self.e(&x), &self.opc)
    }

    /// f1: the network authentication code MAC-A.
    pub fn f1(&self, rand: &[u8; 16], sqn: &[u8; 6], amf: &[u8; 2]) -> [u8; 8] {
        take(&self.out1(rand, sqn, amf)[..8])
    }

    /// f1*: the resynchronisation authentication code MAC-S.
    pub fn f1_star(&self, rand: &[u8; 16], sqn: &[u8; 6], amf: &[u8; 2]) -> [u8; 8] {
        take(&self.out1(rand, sqn, amf)[8..])
    }

    /// f2 (RES), f3 (CK), f4 (IK) and f5 (AK) together.
    pub fn f2345(&self, rand: &[u8; 16]) -> F2345 {
        let temp = self.temp(rand);
        let out2 = self.out(&temp, R2, &C2);
        F2345 {
            res: take(&out2[8..]),
            ck: self.out(&temp, R3, &C3),
            ik: self.out(&temp, R4, &C4),
            ak: take(&out2[..6]),
        }
    }

    /// f2: RES / XRES.
    pub fn f2(&self, rand: &[u8; 16]) -> [u8; 8] {
        let temp = self.temp(rand);
        take(&self.out(&temp, R2, &C2)[8..])
    }

    /// f3: CK.
    pub fn f3(&self, rand: &[u8; 16]) -> [u8; 16] {
        self.out(&self.temp(rand), R3, &C3)
    }

    /// f4: IK.
    pub fn f4(&self, rand: &[u8; 16]) -> [u8; 16] {
        self.out(&self.temp(rand), R4, &C4)
    }

    /// f5: AK.
    pub fn f5(&self, rand: &[u8; 16]) -> [u8; 6] {
        take(&self.out(&self.temp(rand), R2, &C2)[..6])
    }

    /// f5*: the anonymity key AK* that conceals SQN_MS in AUTS.
    pub fn f5_star(&self, rand: &[u8; 16]) -> [u8; 6] {
        take(&self.out(&self.temp(rand), R5, &C5)[..6])
    }
}

fn encrypt(kernel: &Aes128, x: &[u8; 16]) -> [u8; 16] {
    let mut block = GenericArray::clone_from_slice(x);
    kernel.encrypt_block(&mut block);
    let mut o = [0u8; 16];
    o.copy_from_slice(&block);
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_redacts_keys() {
        let m = Milenage::new(&[0x11; 16], OperatorKey::Opc([0x22; 16]));
        let s = format!(
            "{m:?} {:?} {:?}",
            OperatorKey::Op([0x33; 16]),
            m.f2345(&[0; 16])
        );
        assert!(
            !s.contains("11") && !s.contains("22") && !s.contains("33") && !s.contains("17"),
            "{s}"
        );
    }

    #[test]
    fn rot_is_a_left_rotation() {
        let x: [u8; 16] = core::array::from_fn(|i| i as u8);
        assert_eq!(rot(&x, 32)[0], 4);
        assert_eq!(rot(&x, 96)[15], 11);
        assert_eq!(rot(&x, 0), x);
    }
}
