//! Memory of a burst given back once it is over.
//!
//! The layer's tables (transactions by id and by key, timers, outputs) grow with the number of
//! transactions alive at once — under load, every transaction of the last 32 s (Timer J, D)
//! — and a `HashMap`, `VecDeque` or `BinaryHeap` keeps its capacity when emptied. After a burst
//! of registrations that is megabytes held for nothing (tens of bytes per transaction of the
//! peak, in every layer of every role). [`Shrink::shrink_if_sparse`] gives it back once a table
//! holds less than an eighth of its capacity, down to twice what it holds: amortised O(1) per
//! removal (the next shrink needs the table to fall by half again), and never below
//! [`KEEP`] entries (nor for tables under twice that), so a steady load does not shrink and
//! grow again.

use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::hash::{BuildHasher, Hash};

/// Capacity a table keeps whatever it holds.
pub(crate) const KEEP: usize = 256;

/// A table that can give back capacity it no longer needs.
pub(crate) trait Shrink {
    /// Shrinks to twice the entries held (at least [`KEEP`]) when they fill less than an
    /// eighth of the capacity and the capacity is over twice [`KEEP`].
    fn shrink_if_sparse(&mut self);
}

/// Whether a table of capacity `cap` holding `len` entries is worth shrinking.
#[inline]
fn sparse(cap: usize, len: usize) -> bool {
    cap > 2 * KEEP && len < cap / 8
}

impl<K: Eq + Hash, V, S: BuildHasher> Shrink for HashMap<K, V, S> {
    #[inline]
    fn shrink_if_sparse(&mut self) {
        if sparse(self.capacity(), self.len()) {
            self.shrink_to((2 * self.len()).max(KEEP));
        }
    }
}

impl<T> Shrink for VecDeque<T> {
    #[inline]
    fn shrink_if_sparse(&mut self) {
        if sparse(self.capacity(), self.len()) {
            self.shrink_to((2 * self.len()).max(KEEP));
        }
    }
}

impl<T: Ord> Shrink for BinaryHeap<T> {
    #[inline]
    fn shrink_if_sparse(&mut self) {
        if sparse(self.capacity(), self.len()) {
            self.shrink_to((2 * self.len()).max(KEEP));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_shrink_only_when_sparse_and_keep_their_entries() {
        let mut m: HashMap<u32, u32> = (0..100_000).map(|i| (i, i)).collect();
        let mut q: VecDeque<u32> = (0..100_000).collect();
        let mut h: BinaryHeap<u32> = (0..100_000).collect();
        let full = (m.capacity(), q.capacity(), h.capacity());
        // more than an eighth left: nothing happens (a map's capacity counts its deleted
        // slots out, so it is compared after the removals)
        m.retain(|k, _| k % 4 == 0);
        q.retain(|k| k % 4 == 0);
        h.retain(|k| k % 4 == 0);
        let before = (m.capacity(), q.capacity(), h.capacity());
        m.shrink_if_sparse();
        q.shrink_if_sparse();
        h.shrink_if_sparse();
        assert_eq!((m.capacity(), q.capacity(), h.capacity()), before);
        // under an eighth: down to about twice the entries, the entries kept
        m.retain(|k, _| k % 100 == 0);
        q.retain(|k| k % 100 == 0);
        h.retain(|k| k % 100 == 0);
        m.shrink_if_sparse();
        q.shrink_if_sparse();
        h.shrink_if_sparse();
        assert_eq!((m.len(), q.len(), h.len()), (1000, 1000, 1000));
        assert!(
            m.capacity() >= 2000 && m.capacity() < full.0 / 8,
            "{}",
            m.capacity()
        );
        assert!(
            q.capacity() >= 2000 && q.capacity() < full.1 / 8,
            "{}",
            q.capacity()
        );
        assert!(
            h.capacity() >= 2000 && h.capacity() < full.2 / 8,
            "{}",
            h.capacity()
        );
        assert!((0..100_000).step_by(100).all(|k| m.get(&k) == Some(&k)));
        assert!(q.iter().copied().eq((0..100_000).step_by(100)));
        assert_eq!(h.peek(), Some(&99_900));
        // emptied: down to KEEP, never below
        m.clear();
        q.clear();
        h.clear();
        m.shrink_if_sparse();
        q.shrink_if_sparse();
        h.shrink_if_sparse();
        for c in [m.capacity(), q.capacity(), h.capacity()] {
            assert!((KEEP..2 * KEEP).contains(&c), "{c}");
        }
        // a small table is left alone
        let mut s: HashMap<u32, u32> = HashMap::with_capacity(KEEP / 2);
        let c = s.capacity();
        s.shrink_if_sparse();
        assert_eq!(s.capacity(), c);
    }
}
