//! A keyed hasher for the tables the registration path consults on every request, keyed by
//! texts a remote party chooses (IMPU, IMPI, Call-ID, tags, contact addresses): several times
//! cheaper than the standard library's SipHash-1-3 on these short keys, and keyed per table
//! like it.
//!
//! Each 8-octet word is mixed into the state by a folded multiply (the 128-bit product of
//! `state ^ word` and a secret odd key, its halves xored), and the state starts from a second
//! secret. Both secrets are drawn per table from the standard library's random source
//! ([`std::hash::RandomState`]), so which texts collide differs between tables and runs: a
//! sender who does not know the keys cannot choose texts that fall into one bucket. (A mix
//! without a secret multiplier — xor, multiply by a constant, rotate — lets a difference in
//! the top bit of a word pass through unchanged, which an attacker cancels in the next word
//! whatever the seed.)

use std::hash::{BuildHasher, Hasher};

/// A `HashMap` with [`KeyedState`].
pub(crate) type KeyedMap<K, V> = std::collections::HashMap<K, V, KeyedState>;
/// A `HashSet` with [`KeyedState`].
pub(crate) type KeyedSet<K> = std::collections::HashSet<K, KeyedState>;

/// The 128-bit product of `a` and `b`, its halves xored.
#[inline(always)]
fn fold(a: u64, b: u64) -> u64 {
    let p = u128::from(a) * u128::from(b);
    (p as u64) ^ ((p >> 64) as u64)
}

/// Builds [`KeyedHasher`]s with this table's secrets.
#[derive(Debug, Clone, Copy)]
pub(crate) struct KeyedState {
    start: u64,
    mul: u64,
}

impl Default for KeyedState {
    fn default() -> Self {
        let r = std::hash::RandomState::new();
        KeyedState {
            start: r.hash_one(0x6b65_7965_645f_7331_u64),
            // odd, and never a small number: every bit of a word moves both halves
            mul: r.hash_one(0x6b65_7965_645f_7332_u64) | (1 << 63) | 1,
        }
    }
}

impl KeyedState {
    /// A state with fixed secrets (reproducible hashes, for tests).
    #[cfg(test)]
    pub(crate) const fn with_keys(start: u64, mul: u64) -> KeyedState {
        KeyedState {
            start,
            mul: mul | (1 << 63) | 1,
        }
    }
}

impl BuildHasher for KeyedState {
    type Hasher = KeyedHasher;
    #[inline]
    fn build_hasher(&self) -> KeyedHasher {
        KeyedHasher {
            h: self.start,
            mul: self.mul,
        }
    }
}

/// The hasher of [`KeyedState`].
#[derive(Debug, Clone)]
pub(crate) struct KeyedHasher {
    h: u64,
    mul: u64,
}

impl KeyedHasher {
    #[inline(always)]
    fn mix(&mut self, word: u64) {
        self.h = fold(self.h ^ word, self.mul);
    }
}

impl Hasher for KeyedHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.mix(u64::from_le_bytes(
                c.try_into().expect("chunks of eight octets"),
            ));
        }
        let rest = chunks.remainder();
        let mut w = [0u8; 8];
        w[..rest.len()].copy_from_slice(rest);
        // the length of the tail in the top octet (a tail has at most 7): "ab" and "ab\0"
        // differ, and so do texts whose split into writes differs
        w[7] = 0x80 | rest.len() as u8;
        self.mix(u64::from_le_bytes(w));
    }
    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.mix(u64::from(i) | (1 << 62));
    }
    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.mix(u64::from(i) | (1 << 61));
    }
    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.mix(i);
        self.mix(1 << 60);
    }
    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.write_u64(i as u64);
    }
    #[inline]
    fn finish(&self) -> u64 {
        fold(self.h, self.mul ^ 0x9e37_79b9_7f4a_7c15)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn equal_texts_hash_alike_and_near_texts_apart() {
        let s = KeyedState::with_keys(1, 2);
        assert_eq!(
            s.hash_one("sip:alice@ims"),
            s.hash_one(String::from("sip:alice@ims"))
        );
        // every one-octet change, every length: distinct hashes, and distinct bucket indices
        // (low 12 bits) for nearly all
        let base = "sip:+15550001234@ims.example.org".to_string();
        let mut all = HashSet::new();
        let mut low = HashSet::new();
        let mut n = 0;
        for i in 0..base.len() {
            for b in [b'0', b'9', b'a', b'z', b'.', 0x80 ^ b'a'] {
                let mut t = base.clone().into_bytes();
                t[i] = b;
                let h = s.hash_one(&t[..]);
                all.insert(h);
                low.insert(h & 0xfff);
                n += 1;
            }
        }
        for len in 0..base.len() {
            let h = s.hash_one(&base[..len]);
            all.insert(h);
            low.insert(h & 0xfff);
            n += 1;
        }
        assert!(all.len() >= n - 40, "{} of {n}", all.len());
        assert!(low.len() >= n * 9 / 10, "{} of {n}", low.len());
        // texts and their split into writes
        assert_ne!(s.hash_one(("ab", "c")), s.hash_one(("a", "bc")));
        assert_ne!(s.hash_one("ab"), s.hash_one("ab\0"));
    }

    #[test]
    fn tables_are_keyed_apart() {
        // two tables: the same texts, other hashes (the collision a sender aims at in one
        // table is not one in another)
        let (a, b) = (KeyedState::default(), KeyedState::default());
        let same = (0..64)
            .filter(|i| {
                let t = format!("call-{i}@10.0.0.1");
                a.hash_one(&t) == b.hash_one(&t)
            })
            .count();
        assert_eq!(same, 0);
        // the difference in a word's top bit that passes a keyless multiply–rotate mix
        // unchanged is not cancelled by the matching flip in the next word
        let k = KeyedState::default();
        let mut x = [0u8; 16];
        let mut y = [0u8; 16];
        x[7] = 0x80;
        y[15] = 0x80;
        assert_ne!(k.hash_one(&x[..]), k.hash_one(&y[..]));
    }
}
