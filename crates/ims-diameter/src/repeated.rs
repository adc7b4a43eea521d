//! [`Repeated`]: the vector of a repeated AVP field (`*[ AVP ]`, `1*{ AVP }`, `0*2[ AVP ]`) that
//! keeps up to `N` values inline, so decoding the usual one or two occurrences allocates nothing.
//!
//! Unlike `smallvec::SmallVec` it is covariant in `T` (a `Cer<'static>` can be used where a
//! `Cer<'a>` is expected, and a decoded command compares with a `'static` one), and it is safe
//! code: unused inline slots hold `T::default()` (for the AVP value types this owns nothing, and
//! it is overwritten without being dropped: a `T` whose default owns memory would leak it).

use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::{Deref, DerefMut};

/// A vector with up to `N` values inline and the rest on the heap; dereferences to `[T]`.
///
/// Build one with [`repeated!`](crate::repeated!), `From` a `Vec` or an array, `collect()`, or
/// [`Repeated::push`]. Compares equal to a `Vec`, an array or a slice with the same values.
///
/// ```
/// use ims_diameter::{repeated, Repeated};
/// let mut ids: Repeated<u32, 4> = repeated![16777216, 16777236];
/// ids.push(4);
/// assert_eq!(ids, [16777216, 16777236, 4]);
/// assert_eq!(ids.iter().sum::<u32>(), 33554456);
/// ```
pub struct Repeated<T, const N: usize>(Inner<T, N>);

// an explicit tag (not a niche in the `Vec`'s capacity): telling the variants apart is one
// compare of a byte in the encoder's and drop glue's test of every field (measured, callgrind)
#[repr(u8)]
enum Inner<T, const N: usize> {
    Empty,
    Inline(usize, [T; N]),
    Heap(Vec<T>),
}

impl<T, const N: usize> Repeated<T, N> {
    /// An empty vector (no allocation).
    pub const fn new() -> Self {
        Repeated(Inner::Empty)
    }

    /// The values as a slice.
    #[inline]
    pub fn as_slice(&self) -> &[T] {
        match &self.0 {
            Inner::Empty => &[],
            Inner::Inline(n, a) => &a[..*n],
            Inner::Heap(v) => v,
        }
    }

    /// The values as a mutable slice.
    #[inline]
    pub fn as_mut_slice(&mut self) -> &mut [T] {
        match &mut self.0 {
            Inner::Empty => &mut [],
            Inner::Inline(n, a) => &mut a[..*n],
            Inner::Heap(v) => v,
        }
    }

    /// True when the values are on the heap (more than `N` were pushed, or it came from a `Vec`).
    pub fn spilled(&self) -> bool {
        matches!(self.0, Inner::Heap(_))
    }

    /// The values as a `Vec` (no copy when they are already on the heap).
    pub fn into_vec(self) -> Vec<T> {
        self.into_iter().collect()
    }

    /// Removes every value (keeps a heap allocation).
    pub fn clear(&mut self) {
        match &mut self.0 {
            Inner::Heap(v) => v.clear(),
            _ => self.0 = Inner::Empty,
        }
    }
}

impl<T: Default, const N: usize> Repeated<T, N> {
    /// Appends a value: inline while there is room, then on the heap.
    #[inline]
    pub fn push(&mut self, value: T) {
        if let Inner::Empty = self.0 {
            if N == 0 {
                return self.spill(value);
            }
            // (forget: the old value is `Empty`, nothing to drop)
            std::mem::forget(std::mem::replace(
                &mut self.0,
                Inner::Inline(0, std::array::from_fn(|_| T::default())),
            ));
        }
        match &mut self.0 {
            Inner::Inline(n, a) if *n < N => {
                // the slot holds a `T::default()`, which owns nothing: not dropped
                std::mem::forget(std::mem::replace(&mut a[*n], value));
                *n += 1;
            }
            Inner::Heap(v) => v.push(value),
            _ => self.spill(value),
        }
    }

    /// Appends a `T::default()` and returns it, to be filled in place (an inline slot already
    /// holds a default value: nothing is written).
    #[inline(always)]
    pub(crate) fn push_slot(&mut self) -> &mut T {
        let full = match &self.0 {
            Inner::Empty => N == 0,
            Inner::Inline(n, _) => *n >= N,
            Inner::Heap(_) => false,
        };
        if full {
            self.spill(T::default());
        } else if let Inner::Empty = self.0 {
            // (forget: the old value is `Empty`, nothing to drop)
            std::mem::forget(std::mem::replace(
                &mut self.0,
                Inner::Inline(0, std::array::from_fn(|_| T::default())),
            ));
        }
        match &mut self.0 {
            Inner::Inline(n, a) => {
                *n += 1;
                &mut a[*n - 1]
            }
            Inner::Heap(v) => {
                if !full {
                    v.push(T::default());
                }
                let last = v.len() - 1;
                &mut v[last]
            }
            Inner::Empty => unreachable!("a slot was just made"),
        }
    }

    #[cold]
    fn spill(&mut self, value: T) {
        let mut v = Vec::with_capacity(2 * N + 1);
        v.extend(std::mem::take(self));
        v.push(value);
        self.0 = Inner::Heap(v);
    }

    /// Removes and returns the last value.
    pub fn pop(&mut self) -> Option<T> {
        match &mut self.0 {
            Inner::Empty => None,
            Inner::Inline(n, a) => {
                *n -= 1;
                let v = std::mem::take(&mut a[*n]);
                if *n == 0 {
                    self.0 = Inner::Empty;
                }
                Some(v)
            }
            Inner::Heap(v) => v.pop(),
        }
    }

    /// Keeps the values for which `keep` is true, in order.
    pub fn retain(&mut self, mut keep: impl FnMut(&T) -> bool) {
        if let Inner::Heap(v) = &mut self.0 {
            v.retain(keep);
            return;
        }
        let old = std::mem::take(self);
        for x in old {
            if keep(&x) {
                self.push(x);
            }
        }
    }
}

impl<T, const N: usize> Default for Repeated<T, N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T, const N: usize> Deref for Repeated<T, N> {
    type Target = [T];
    #[inline]
    fn deref(&self) -> &[T] {
        self.as_slice()
    }
}

impl<T, const N: usize> DerefMut for Repeated<T, N> {
    #[inline]
    fn deref_mut(&mut self) -> &mut [T] {
        self.as_mut_slice()
    }
}

impl<T: Clone, const N: usize> Clone for Repeated<T, N> {
    fn clone(&self) -> Self {
        Repeated(match &self.0 {
            Inner::Empty => Inner::Empty,
            Inner::Inline(n, a) => Inner::Inline(*n, a.clone()),
            Inner::Heap(v) => Inner::Heap(v.clone()),
        })
    }
}

impl<T: fmt::Debug, const N: usize> fmt::Debug for Repeated<T, N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl<T: PartialEq<U>, U, const N: usize, const M: usize> PartialEq<Repeated<U, M>>
    for Repeated<T, N>
{
    fn eq(&self, other: &Repeated<U, M>) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl<T: Eq, const N: usize> Eq for Repeated<T, N> {}

impl<T: PartialEq<U>, U, const N: usize> PartialEq<Vec<U>> for Repeated<T, N> {
    fn eq(&self, other: &Vec<U>) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl<T: PartialEq<U>, U, const N: usize> PartialEq<[U]> for Repeated<T, N> {
    fn eq(&self, other: &[U]) -> bool {
        self.as_slice() == other
    }
}

impl<T: PartialEq<U>, U, const N: usize> PartialEq<&[U]> for Repeated<T, N> {
    fn eq(&self, other: &&[U]) -> bool {
        self.as_slice() == *other
    }
}

impl<T: PartialEq<U>, U, const N: usize, const M: usize> PartialEq<[U; M]> for Repeated<T, N> {
    fn eq(&self, other: &[U; M]) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl<T: Hash, const N: usize> Hash for Repeated<T, N> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_slice().hash(state)
    }
}

impl<T, const N: usize> From<Vec<T>> for Repeated<T, N> {
    fn from(v: Vec<T>) -> Self {
        Repeated(Inner::Heap(v))
    }
}

impl<T, const N: usize> From<Repeated<T, N>> for Vec<T> {
    fn from(r: Repeated<T, N>) -> Self {
        r.into_vec()
    }
}

impl<T: Default, const N: usize, const M: usize> From<[T; M]> for Repeated<T, N> {
    /// Inline when `M <= N`: the values go straight to their slots, the rest are defaults
    /// (pushing them one by one wrote `N` defaults, then moved each value in and a default out:
    /// for a 600-octet Media-Component-Description that was most of building an AAR).
    #[inline]
    fn from(a: [T; M]) -> Self {
        if M == 0 {
            return Self::new();
        }
        if M > N {
            return Repeated(Inner::Heap(Vec::from(a)));
        }
        let mut it = a.into_iter();
        Repeated(Inner::Inline(
            M,
            std::array::from_fn(|_| it.next().unwrap_or_default()),
        ))
    }
}

impl<T: Clone + Default, const N: usize> From<&[T]> for Repeated<T, N> {
    fn from(s: &[T]) -> Self {
        s.iter().cloned().collect()
    }
}

impl<T: Default, const N: usize> FromIterator<T> for Repeated<T, N> {
    fn from_iter<I: IntoIterator<Item = T>>(iter: I) -> Self {
        let mut r = Self::new();
        r.extend(iter);
        r
    }
}

impl<T: Default, const N: usize> Extend<T> for Repeated<T, N> {
    fn extend<I: IntoIterator<Item = T>>(&mut self, iter: I) {
        for x in iter {
            self.push(x);
        }
    }
}

/// The owning iterator of a [`Repeated`].
pub struct IntoIter<T, const N: usize>(IntoIterInner<T, N>);

enum IntoIterInner<T, const N: usize> {
    Inline(std::iter::Take<std::array::IntoIter<T, N>>),
    Heap(std::vec::IntoIter<T>),
}

impl<T, const N: usize> Iterator for IntoIter<T, N> {
    type Item = T;
    fn next(&mut self) -> Option<T> {
        match &mut self.0 {
            IntoIterInner::Inline(i) => i.next(),
            IntoIterInner::Heap(i) => i.next(),
        }
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        match &self.0 {
            IntoIterInner::Inline(i) => i.size_hint(),
            IntoIterInner::Heap(i) => i.size_hint(),
        }
    }
}

impl<T, const N: usize> IntoIterator for Repeated<T, N> {
    type Item = T;
    type IntoIter = IntoIter<T, N>;
    fn into_iter(self) -> IntoIter<T, N> {
        IntoIter(match self.0 {
            Inner::Empty => IntoIterInner::Heap(Vec::new().into_iter()),
            Inner::Inline(n, a) => IntoIterInner::Inline(a.into_iter().take(n)),
            Inner::Heap(v) => IntoIterInner::Heap(v.into_iter()),
        })
    }
}

impl<'r, T, const N: usize> IntoIterator for &'r Repeated<T, N> {
    type Item = &'r T;
    type IntoIter = std::slice::Iter<'r, T>;
    fn into_iter(self) -> Self::IntoIter {
        self.as_slice().iter()
    }
}

impl<'r, T, const N: usize> IntoIterator for &'r mut Repeated<T, N> {
    type Item = &'r mut T;
    type IntoIter = std::slice::IterMut<'r, T>;
    fn into_iter(self) -> Self::IntoIter {
        self.as_mut_slice().iter_mut()
    }
}

/// Builds a [`Repeated`] like `vec!` builds a `Vec` (inline up to the field's capacity).
///
/// ```
/// let r: ims_diameter::Repeated<u32, 2> = ims_diameter::repeated![1, 2];
/// assert!(!r.spilled());
/// ```
#[macro_export]
macro_rules! repeated {
    () => { $crate::Repeated::new() };
    ($x:expr; $n:expr) => { ::std::iter::repeat($x).take($n).collect::<$crate::Repeated<_, _>>() };
    ($($x:expr),+ $(,)?) => { $crate::Repeated::from([$($x),+]) };
}

/// A repeated field the typed decoders append to: each occurrence is decoded in its place.
pub(crate) trait PushDecoded<'a> {
    /// Decodes `avp` into a new last element.
    fn push_decoded(&mut self, avp: &crate::Avp<'a>) -> Result<(), crate::Error>;
}

impl<'a, T: crate::AvpValue<'a> + Default> PushDecoded<'a> for Vec<T> {
    #[inline]
    fn push_decoded(&mut self, avp: &crate::Avp<'a>) -> Result<(), crate::Error> {
        // (`resize_with` writes the default value in the new slot; `push(T::default())`
        // built it aside and copied it)
        self.resize_with(self.len() + 1, T::default);
        let last = self.len() - 1;
        T::decode_avp_into(avp, &mut self[last])
    }
}

impl<'a, T: crate::AvpValue<'a> + Default, const N: usize> PushDecoded<'a> for Repeated<T, N> {
    #[inline]
    fn push_decoded(&mut self, avp: &crate::Avp<'a>) -> Result<(), crate::Error> {
        T::decode_avp_into(avp, self.push_slot())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::borrow::Cow;

    #[test]
    fn inline_then_heap() {
        let mut r: Repeated<Cow<'static, str>, 2> = Repeated::new();
        assert!(r.is_empty());
        r.push("a".into());
        r.push("b".into());
        assert!(!r.spilled());
        r.push("c".into());
        assert!(r.spilled());
        assert_eq!(r, ["a", "b", "c"]);
        assert_eq!(r.pop().as_deref(), Some("c"));
        r.retain(|s| s != "a");
        assert_eq!(r, vec!["b"]);
        let v: Vec<_> = r.clone().into_iter().collect();
        assert_eq!(v, ["b"]);
        let mut i: Repeated<u32, 3> = [1, 2].into();
        assert_eq!(i.pop(), Some(2));
        assert_eq!(i.pop(), Some(1));
        assert_eq!(i.pop(), None);
        i.extend([5, 6, 7, 8]);
        assert_eq!(i.into_vec(), [5, 6, 7, 8]);
    }

    #[test]
    fn covariant() {
        // a value with a 'static lifetime is usable at a shorter one
        fn shorten<'a>(r: Repeated<Cow<'static, str>, 2>) -> Repeated<Cow<'a, str>, 2> {
            r
        }
        let owned = String::from("x");
        let mut r = shorten(repeated!["y".into()]);
        r.push(Cow::Borrowed(owned.as_str()));
        assert_eq!(r, ["y", "x"]);
    }
}
