//! Cheap hashing for the layer's tables.
//!
//! The standard `HashMap` hashes each key with SipHash-1-3 at every lookup, insert and remove;
//! for a transaction key that is three strings, each with its own `write` and terminator. Here a
//! [`crate::TxnKey`] is hashed once when it is built ([`hash_bytes`], a folded-multiply hash in
//! the style of wyhash/foldhash over 16-byte blocks, keyed with per-process random seeds taken
//! from the standard library's `RandomState`, so a peer choosing branches cannot aim at
//! collisions without knowing them), and the tables only mix that stored 64-bit value
//! ([`FastHasher`]). Tables keyed by our own sequential ids ([`crate::TxnId`]) use the same
//! mixer.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, BuildHasherDefault, Hasher};
use std::sync::OnceLock;

const P0: u64 = 0xa076_1d64_78bd_642f;
const P1: u64 = 0xe703_7ed1_a0b4_28db;
const P2: u64 = 0x8ebc_6af0_9c88_c6e3;

/// The high and low halves of the 128-bit product, xored.
#[inline]
fn fold(a: u64, b: u64) -> u64 {
    let r = u128::from(a) * u128::from(b);
    (r as u64) ^ ((r >> 64) as u64)
}

/// Two per-process random seeds.
fn seeds() -> &'static [u64; 2] {
    static SEEDS: OnceLock<[u64; 2]> = OnceLock::new();
    SEEDS.get_or_init(|| {
        let s = RandomState::new();
        [s.hash_one(0x5eed_u64) | 1, s.hash_one(0xfeed_u64)]
    })
}

/// Little-endian word of up to 8 bytes (zero-padded).
#[inline]
fn word(b: &[u8]) -> u64 {
    let mut w = [0u8; 8];
    let n = b.len().min(8);
    w[..n].copy_from_slice(&b[..n]);
    u64::from_le_bytes(w)
}

/// The keyed hash of `bytes` with a caller's `tag` (the key's side and part lengths).
pub(crate) fn hash_bytes(bytes: &[u8], tag: u64) -> u64 {
    let [s0, s1] = *seeds();
    let mut h = fold(s0 ^ tag, P0 ^ (bytes.len() as u64));
    let mut blocks = bytes.chunks_exact(16);
    for b in &mut blocks {
        h = fold(word(&b[..8]) ^ s1, word(&b[8..]) ^ h);
    }
    let rest = blocks.remainder();
    if !rest.is_empty() {
        let (a, b) = rest.split_at(rest.len().min(8));
        h = fold(word(a) ^ s1 ^ P1, word(b) ^ h);
    }
    fold(h ^ P2, s0 ^ P1)
}

/// The tables' hasher: mixes the 64-bit values it is given (a key's stored hash, an id).
/// Byte strings are folded 8 bytes at a time; it is meant for values that are ours or already
/// hashed with [`hash_bytes`], not for raw peer-chosen strings.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct FastHasher(u64);

impl Hasher for FastHasher {
    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }

    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        for c in bytes.chunks(8) {
            self.write_u64(word(c));
        }
    }

    #[inline]
    fn write_u64(&mut self, n: u64) {
        self.0 = fold(self.0 ^ n ^ P1, P0);
    }

    #[inline]
    fn write_u8(&mut self, n: u8) {
        self.write_u64(u64::from(n));
    }

    #[inline]
    fn write_u32(&mut self, n: u32) {
        self.write_u64(u64::from(n));
    }

    #[inline]
    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }

    #[inline]
    fn write_isize(&mut self, n: isize) {
        self.write_u64(n as u64);
    }
}

/// `HashMap` with [`FastHasher`].
pub(crate) type FastMap<K, V> = std::collections::HashMap<K, V, BuildHasherDefault<FastHasher>>;

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use std::hash::Hash;

    #[test]
    fn equal_bytes_hash_equal_and_every_length_counts() {
        let s = b"z9hG4bK-0123456789abcdef-0123456789abcdefREGISTER127.0.0.1:5060";
        let mut seen = HashSet::new();
        for n in 0..=s.len() {
            // the same bytes elsewhere in memory
            let copy = s[..n].to_vec();
            assert_eq!(hash_bytes(&s[..n], 7), hash_bytes(&copy, 7));
            // a prefix and its zero-padded extension differ (the length is hashed)
            let mut padded = s[..n].to_vec();
            padded.push(0);
            assert_ne!(hash_bytes(&s[..n], 7), hash_bytes(&padded, 7));
            assert!(seen.insert(hash_bytes(&s[..n], 7)), "prefix {n} collides");
        }
        assert_ne!(hash_bytes(s, 7), hash_bytes(s, 8), "the tag counts");
    }

    #[test]
    fn one_bit_changes_about_half_of_the_hash() {
        let base = b"z9hG4bK-0123456789abcdef-0123456789abcdefINVITE".to_vec();
        let h0 = hash_bytes(&base, 0);
        let mut total = 0u32;
        let mut n = 0u32;
        for i in 0..base.len() {
            for bit in 0..8 {
                let mut b = base.clone();
                b[i] ^= 1 << bit;
                let d = (hash_bytes(&b, 0) ^ h0).count_ones();
                assert!(d > 8, "byte {i} bit {bit}: only {d} bits changed");
                total += d;
                n += 1;
            }
        }
        let mean = total / n;
        assert!((26..=38).contains(&mean), "mean {mean} bits changed");
    }

    #[test]
    fn sequential_ids_spread_over_buckets_and_tags() {
        // hashbrown takes the bucket from the low bits and a 7-bit tag from the top ones
        let mut low = HashSet::new();
        let mut top = HashSet::new();
        for id in 0u64..4096 {
            let mut h = FastHasher::default();
            id.hash(&mut h);
            let v = h.finish();
            low.insert(v & 4095);
            top.insert(v >> 57);
        }
        assert!(
            low.len() > 2400,
            "{} distinct low values of 4096",
            low.len()
        );
        assert_eq!(top.len(), 128);
    }
}
