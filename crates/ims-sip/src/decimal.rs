//! Decimal digits without the formatting machinery.

/// The decimal digits of `n`, exactly as `n.to_string()` writes them, written at the end of
/// `buf` and returned as a slice of it: no allocation and no `fmt` (a proxy or a store writes a
/// few numbers per message — Content-Length, Max-Forwards, ports, record lengths).
///
/// ```
/// let mut buf = [0u8; 20];
/// assert_eq!(ims_sip::decimal(&mut buf, 0), b"0");
/// assert_eq!(ims_sip::decimal(&mut buf, 5060), b"5060");
/// assert_eq!(ims_sip::decimal(&mut buf, u64::MAX), u64::MAX.to_string().as_bytes());
/// ```
pub fn decimal(buf: &mut [u8; 20], mut n: u64) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    &buf[i..]
}

/// Appends the decimal digits of `n` ([`decimal`]) to `out`.
///
/// ```
/// let mut s = String::from("Max-Forwards: ");
/// ims_sip::push_decimal(&mut s, 69);
/// assert_eq!(s, "Max-Forwards: 69");
/// ```
pub fn push_decimal(out: &mut String, n: u64) {
    let mut buf = [0u8; 20];
    out.extend(decimal(&mut buf, n).iter().map(|&c| char::from(c)));
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        #[test]
        fn digits_are_what_to_string_writes(n in proptest::num::u64::ANY, small in 0u64..100_000) {
            let mut buf = [0u8; 20];
            let (a, b) = (n.to_string(), small.to_string());
            proptest::prop_assert_eq!(decimal(&mut buf, n), a.as_bytes());
            proptest::prop_assert_eq!(decimal(&mut buf, small), b.as_bytes());
            let mut s = String::from("x");
            push_decimal(&mut s, n);
            proptest::prop_assert_eq!(s, format!("x{n}"));
        }
    }

    #[test]
    fn edges() {
        let mut buf = [0u8; 20];
        for n in [0, 9, 10, 99, 100, 65535, u64::from(u32::MAX), u64::MAX] {
            assert_eq!(decimal(&mut buf, n), n.to_string().as_bytes());
        }
    }
}
