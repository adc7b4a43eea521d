//! A small hasher for the maps a Diameter node consults per message (pending requests by
//! Hop-by-Hop Identifier, duplicates by (Origin-Host, End-to-End Identifier), peers by name,
//! handlers by (Application-Id, Command-Code)): a multiply–rotate mix over 8-octet words,
//! several times cheaper than the standard library's SipHash-1-3 for these short keys.
//!
//! Each [`FastState`] starts from a seed drawn from the standard library's random source, so
//! the hash of a key chosen by a remote node (an Origin-Host) differs between maps and runs.
//! This is no cryptographic defence against collision flooding; the maps it serves are bounded
//! (the duplicate window has a maximum size) or keyed by values the node chooses.
//!
//! ```
//! use ims_diameter::fasthash::FastMap;
//! let mut m: FastMap<(String, u32), u8> = FastMap::default();
//! m.insert(("pcscf.ims.example.org".to_owned(), 7), 1);
//! assert_eq!(m.get(&("pcscf.ims.example.org".to_owned(), 7)), Some(&1));
//! ```

use std::hash::{BuildHasher, Hasher};

/// A `HashMap` with [`FastState`].
pub type FastMap<K, V> = std::collections::HashMap<K, V, FastState>;

/// The odd multiplier of the mix (64-bit, high entropy in every byte).
const MUL: u64 = 0x9e37_79b9_7f4a_7c15;

/// Builds [`FastHasher`]s from a per-map random seed.
#[derive(Debug, Clone, Copy)]
pub struct FastState {
    seed: u64,
}

impl Default for FastState {
    fn default() -> Self {
        FastState {
            seed: std::hash::RandomState::new().hash_one(0x6469_616d_u64),
        }
    }
}

impl FastState {
    /// A state with a fixed seed (reproducible hashes, for tests).
    pub const fn with_seed(seed: u64) -> FastState {
        FastState { seed }
    }
}

impl BuildHasher for FastState {
    type Hasher = FastHasher;
    #[inline]
    fn build_hasher(&self) -> FastHasher {
        FastHasher { h: self.seed }
    }
}

/// The hasher of [`FastState`].
#[derive(Debug, Clone)]
pub struct FastHasher {
    h: u64,
}

impl FastHasher {
    #[inline(always)]
    fn mix(&mut self, word: u64) {
        self.h = (self.h ^ word).wrapping_mul(MUL).rotate_left(29);
    }
}

impl Hasher for FastHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.mix(u64::from_le_bytes([
                c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7],
            ]));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            w[..rest.len()].copy_from_slice(rest);
            // the length in the top octet: "ab" and "ab\0" differ
            w[7] = rest.len() as u8;
            self.mix(u64::from_le_bytes(w));
        }
    }
    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.mix(u64::from(i));
    }
    #[inline]
    fn write_u16(&mut self, i: u16) {
        self.mix(u64::from(i));
    }
    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.mix(u64::from(i));
    }
    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.mix(i);
    }
    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.mix(i as u64);
    }
    #[inline]
    fn finish(&self) -> u64 {
        // the last multiply leaves the low bits (the bucket index) depending on few input bits:
        // fold the high half in
        let h = self.h.wrapping_mul(MUL);
        h ^ (h >> 32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn equal_keys_hash_alike_and_near_keys_apart() {
        let s = FastState::with_seed(1);
        assert_eq!(s.hash_one("pcscf.example"), s.hash_one("pcscf.example"));
        assert_eq!(
            s.hash_one(("Hss", 7u32)),
            s.hash_one((String::from("Hss"), 7u32))
        );
        // every one-octet change of a host name, every End-to-End Identifier: distinct hashes,
        // and distinct bucket indices for most (low 10 bits)
        let mut all = HashSet::new();
        let mut low = HashSet::new();
        for i in 0..1000u32 {
            let h = s.hash_one(("scscf.ims.mnc001.mcc001.3gppnetwork.org", i));
            all.insert(h);
            low.insert(h & 1023);
        }
        assert_eq!(all.len(), 1000);
        assert!(low.len() > 550, "{} of 1000 low-bit values", low.len());
        assert_ne!(s.hash_one("ab"), s.hash_one("ab\0"));
        assert_ne!(s.hash_one(""), s.hash_one("\0"));
        // another seed, another hash
        assert_ne!(
            FastState::with_seed(2).hash_one("pcscf.example"),
            s.hash_one("pcscf.example")
        );
    }

    #[test]
    fn a_map_works_with_it() {
        let mut m: FastMap<(String, u32), usize> = FastMap::default();
        for i in 0..500 {
            m.insert((format!("host{}.example", i % 7), i as u32), i);
        }
        assert_eq!(m.len(), 500);
        assert_eq!(m.get(&("host3.example".to_owned(), 10)), Some(&10));
        assert!(!m.contains_key(&("host3.example".to_owned(), 11)));
    }
}
