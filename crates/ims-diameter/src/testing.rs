//! Random values of every typed command, for property tests and fuzzing (not a stable API).

use crate::avp::{AvpFlags, RawAvp};
use crate::types::{Address, Time};
use std::borrow::Cow;

/// A small deterministic generator (xorshift64*), seeded by the caller.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed (0 is replaced).
    pub fn new(seed: u64) -> Rng {
        Rng(seed | 1)
    }
    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    /// A value below `n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
    /// True half the time.
    pub fn coin(&mut self) -> bool {
        self.next_u64() & 1 == 1
    }
}

/// A type with random values.
pub trait Sample: Sized {
    /// A random value.
    fn sample(r: &mut Rng) -> Self;
    /// A random value as the data of this AVP (a [`RawAvp`] takes its code and vendor).
    fn sample_for(_def: &crate::dict::AvpDef, r: &mut Rng) -> Self {
        Self::sample(r)
    }
}

impl Sample for u32 {
    fn sample(r: &mut Rng) -> Self {
        r.next_u64() as u32
    }
}
impl Sample for i32 {
    fn sample(r: &mut Rng) -> Self {
        r.next_u64() as i32
    }
}
impl Sample for u64 {
    fn sample(r: &mut Rng) -> Self {
        r.next_u64()
    }
}
impl Sample for i64 {
    fn sample(r: &mut Rng) -> Self {
        r.next_u64() as i64
    }
}
impl Sample for f32 {
    fn sample(r: &mut Rng) -> Self {
        (r.below(1_000_000) as f32) / 1000.0
    }
}
impl Sample for f64 {
    fn sample(r: &mut Rng) -> Self {
        (r.below(1_000_000_000) as f64) / 1000.0
    }
}
impl Sample for Time {
    fn sample(r: &mut Rng) -> Self {
        Time(r.next_u64() as u32)
    }
}

const CHARS: &[&str] = &[
    "a", "z", "0", "9", ".", "@", ":", ";", "-", "_", " ", "é", "€", "𝄞", "sip:", "ims", "\n",
];

impl<'a> Sample for Cow<'a, str> {
    fn sample(r: &mut Rng) -> Self {
        let n = r.below(24);
        Cow::Owned(
            (0..n)
                .map(|_| CHARS[r.below(CHARS.len() as u64) as usize])
                .collect(),
        )
    }
}
impl<'a> Sample for Cow<'a, [u8]> {
    fn sample(r: &mut Rng) -> Self {
        let n = r.below(40);
        Cow::Owned((0..n).map(|_| r.next_u64() as u8).collect())
    }
}
impl<'a> Sample for Address<'a> {
    fn sample(r: &mut Rng) -> Self {
        match r.below(4) {
            0 => Address::Ipv4((r.next_u64() as u32).into()),
            1 => {
                Address::Ipv6(((u128::from(r.next_u64()) << 64) | u128::from(r.next_u64())).into())
            }
            2 => Address::E164(["15550100001", "4477009001", "1"][r.below(3) as usize]),
            _ => Address::Other {
                family: [3u16, 16, 65535][r.below(3) as usize],
                value: [&b""[..], b"\x01\x02\x03", b"node"][r.below(3) as usize],
            },
        }
    }
}
impl<'a> Sample for RawAvp<'a> {
    fn sample(r: &mut Rng) -> Self {
        RawAvp {
            code: 0,
            flags: AvpFlags(if r.coin() { AvpFlags::MANDATORY } else { 0 }),
            vendor: 0,
            data: Sample::sample(r),
        }
    }
    fn sample_for(def: &crate::dict::AvpDef, r: &mut Rng) -> Self {
        RawAvp {
            code: def.code,
            vendor: def.vendor,
            ..Self::sample(r)
        }
    }
}
