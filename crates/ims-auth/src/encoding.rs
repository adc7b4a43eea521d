//! Base64 (RFC 4648 §4, with padding) and hex, the two encodings digest and AKA values use.

use crate::AuthError;

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Encodes `data` as base64 with `=` padding (RFC 4648 §4).
///
/// ```
/// assert_eq!(ims_auth::encoding::base64_encode(b"foobar"), "Zm9vYmFy");
/// assert_eq!(ims_auth::encoding::base64_encode(b"fo"), "Zm8=");
/// ```
pub fn base64_encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The value of each base64 character, `INVALID` for anything else.
static SEXTET: [u8; 256] = {
    let mut t = [INVALID; 256];
    let mut i = 0;
    while i < 64 {
        t[ALPHABET[i] as usize] = i as u8;
        i += 1;
    }
    t
};
const INVALID: u8 = 0xff;

/// Decodes canonical base64 (RFC 4648 §4): length a multiple of 4, `=` padding only at the end,
/// and no non-zero bits in the padding (§3.5), so every value has exactly one encoding.
///
/// ```
/// assert_eq!(ims_auth::encoding::base64_decode("Zm9vYmE=").unwrap(), b"fooba");
/// assert!(ims_auth::encoding::base64_decode("Zm9vYmF=").is_err()); // non-canonical
/// ```
pub fn base64_decode(s: &str) -> Result<Vec<u8>, AuthError> {
    let err = AuthError::Encoding("base64");
    let b = s.as_bytes();
    if b.len() % 4 != 0 {
        return Err(err);
    }
    let mut out = Vec::with_capacity(b.len() / 4 * 3);
    let groups = b.len() / 4;
    for (gi, g) in b.chunks_exact(4).enumerate() {
        let pad = g.iter().rev().take_while(|&&c| c == b'=').count();
        if pad > 2 || (pad > 0 && gi + 1 != groups) {
            return Err(err);
        }
        let mut n = 0u32;
        let mut bad = false;
        for &c in &g[..4 - pad] {
            let v = SEXTET[usize::from(c)];
            bad |= v == INVALID;
            n = n << 6 | u32::from(v & 63);
        }
        if bad {
            return Err(err);
        }
        n <<= 6 * pad;
        let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        let keep = 3 - pad;
        // canonical: the bits under the padding are zero
        if bytes[keep..].iter().any(|&x| x != 0) {
            return Err(err);
        }
        out.extend_from_slice(&bytes[..keep]);
    }
    Ok(out)
}

/// Lowercase hex of `data`.
pub fn hex_encode(data: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    // octets stored in place (no capacity check or UTF-8 encoding per digit); checked as
    // ASCII once
    let mut s = vec![0u8; data.len() * 2];
    for (pair, &b) in s.chunks_exact_mut(2).zip(data) {
        pair[0] = DIGITS[usize::from(b >> 4)];
        pair[1] = DIGITS[usize::from(b & 15)];
    }
    String::from_utf8(s).expect("hex digits are ASCII")
}

/// Decodes hex (either case); the length must be even.
pub fn hex_decode(s: &str) -> Result<Vec<u8>, AuthError> {
    let b = s.as_bytes();
    if b.len() % 2 != 0 {
        return Err(AuthError::Encoding("hex"));
    }
    b.chunks(2)
        .map(|p| {
            let hi = (p[0] as char).to_digit(16);
            let lo = (p[1] as char).to_digit(16);
            match (hi, lo) {
                (Some(h), Some(l)) => Ok((h << 4 | l) as u8),
                _ => Err(AuthError::Encoding("hex")),
            }
        })
        .collect()
}

/// Constant-time equality of two byte strings: the time depends on the lengths only, never on
/// where the first difference is.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut d = 0u8;
    for (x, y) in a.iter().zip(b) {
        d |= x ^ y;
    }
    core::hint::black_box(d) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc4648_section10_vectors() {
        for (plain, enc) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64_encode(plain.as_bytes()), enc);
            assert_eq!(base64_decode(enc).unwrap(), plain.as_bytes());
        }
    }

    #[test]
    fn base64_decode_takes_exactly_the_alphabet_and_round_trips() {
        for c in 0..=255u8 {
            let s = format!("Zm9{}", char::from(c));
            assert_eq!(base64_decode(&s).is_ok(), ALPHABET.contains(&c), "{s:?}");
        }
        for n in 0..40usize {
            let data: Vec<u8> = (0..n).map(|i| (i * 37 + n) as u8).collect();
            assert_eq!(base64_decode(&base64_encode(&data)).unwrap(), data);
        }
    }

    #[test]
    fn base64_rejects_malformed() {
        for bad in ["Zg=", "Z===", "Zg==Zg==", "Zh==", "Zm9*", "====", "Zm=v"] {
            assert!(base64_decode(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn hex_round_trip() {
        assert_eq!(hex_decode("00fFa1").unwrap(), [0, 255, 0xa1]);
        assert_eq!(hex_encode(&[0, 255, 0xa1]), "00ffa1");
        // every byte value, and lengths around the 32-byte chunks `Hex` writes at a time
        for n in [0, 1, 31, 32, 33, 64, 65, 256] {
            let data: Vec<u8> = (0..n).map(|i| (i * 7 + 3) as u8).collect();
            let want: String = data.iter().map(|b| format!("{b:02x}")).collect();
            assert_eq!(hex_encode(&data), want);
            assert_eq!(crate::error::Hex(&data).to_string(), want);
        }
        let all: Vec<u8> = (0..=255).collect();
        let want: String = all.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex_encode(&all), want);
        assert!(hex_decode("0").is_err());
        assert!(hex_decode("zz").is_err());
    }

    #[test]
    fn ct_eq_compares() {
        assert!(ct_eq(b"abc", b"abc"));
        assert!(!ct_eq(b"abc", b"abd"));
        assert!(!ct_eq(b"abc", b"ab"));
    }
}
