//! PRECIS preparation of user names and passwords for Digest with `charset=UTF-8`.
//!
//! RFC 7616 §4: when the server sends `charset=UTF-8`, "the user's name and password MUST be
//! prepared" with the PRECIS profiles of RFC 7613 — since obsoleted by RFC 8265, whose profiles
//! are used here: **UsernameCasePreserved** for the name, **OpaqueString** for the password.
//!
//! | rule (RFC 8264 §7 order) | UsernameCasePreserved (RFC 8265 §3.4) | OpaqueString (RFC 8265 §4.2) |
//! |---|---|---|
//! | 1. width mapping | fullwidth/halfwidth → their decomposition | none |
//! | 2. additional mapping | none | non-ASCII spaces (Zs) → U+0020 |
//! | 3. case mapping | none (case preserved) | none |
//! | 4. normalization | NFC | NFC |
//! | 5. directionality | the "Bidi Rule" of RFC 5893 | none |
//! | base class | IdentifierClass | FreeformClass |
//!
//! After the rules, every code point must be allowed by the base class and the result must not
//! be empty (RFC 8265 §3.4 / §4.2 "enforcement"). [`username_case_preserved`] and
//! [`opaque_string`] apply enforcement and return the string to hash; [`compare_usernames`] and
//! [`compare_passwords`] compare two strings after enforcing both.
//!
//! # Unicode data and its limits
//! NFC comes from the `unicode-normalization` crate (full Unicode tables). The PRECIS derived
//! property (RFC 8264 §8–§9) needs the general category of every code point, which neither std
//! nor that crate exposes; this module computes it from what is available:
//! - exact for: ASCII, controls (Cc), the Default_Ignorable and noncharacter code points
//!   (PrecisIgnorableProperties), Old Hangul Jamo, spaces (Zs), private use and HasCompat
//!   (a code point that NFKC changes — via `unicode-normalization`);
//! - LetterDigits is approximated by std's `char::is_alphabetic() || char::is_numeric()` plus
//!   the combining-mark blocks and the Indic viramas and nuktas (Mn); so IdentifierClass refuses symbols and punctuation
//!   outside ASCII and every unassigned code point (neither alphabetic nor numeric), but also
//!   refuses a few rare marks outside the combining blocks;
//! - FreeformClass allows every other assigned-looking code point: unassigned code points and
//!   format characters (Cf) that are not Default_Ignorable are **not** detected there.
//! - the Bidi Rule is checked with a coarse classification (Hebrew/Arabic-script blocks are
//!   right-to-left, ASCII/Latin letters left-to-right, digits European); it refuses the mixed
//!   strings RFC 5893 forbids but is not a full implementation of UAX #9 classes.

use unicode_normalization::UnicodeNormalization;

/// Why a string was refused by a PRECIS profile.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PrecisError {
    /// The string is empty after the rules (RFC 8265 §3.4 / §4.2: "the string MUST NOT be
    /// zero length").
    #[error("empty after PRECIS enforcement")]
    Empty,
    /// A code point the profile's base class disallows (after mapping and NFC).
    #[error("code point U+{code:04X} at index {index} is disallowed by the {class} class")]
    Disallowed {
        /// The code point.
        code: u32,
        /// Its index (in code points) in the mapped and normalised string.
        index: usize,
        /// `IdentifierClass` or `FreeformClass`.
        class: &'static str,
    },
    /// The user name violates the Bidi Rule of RFC 5893 §2.
    #[error("user name violates the Bidi Rule (RFC 5893)")]
    Bidi,
}

/// The PRECIS string classes of RFC 8264 §4.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Identifier,
    Freeform,
}

impl Class {
    fn name(self) -> &'static str {
        match self {
            Class::Identifier => "IdentifierClass",
            Class::Freeform => "FreeformClass",
        }
    }
}

/// Enforcement of the UsernameCasePreserved profile (RFC 8265 §3.4): width mapping, NFC, Bidi
/// Rule, IdentifierClass, not empty. The result is what Digest hashes as `username`.
pub fn username_case_preserved(input: &str) -> Result<String, PrecisError> {
    let mapped: String = input.chars().map(width_map).collect();
    let out: String = mapped.nfc().collect();
    check_class(&out, Class::Identifier)?;
    if out.is_empty() {
        return Err(PrecisError::Empty);
    }
    bidi_rule(&out)?;
    Ok(out)
}

/// Enforcement of the OpaqueString profile (RFC 8265 §4.2): non-ASCII spaces to U+0020, NFC,
/// FreeformClass, not empty. Fullwidth characters are kept (no width mapping for passwords).
pub fn opaque_string(input: &str) -> Result<String, PrecisError> {
    let mapped: String = input
        .chars()
        .map(|c| if is_space(c) { ' ' } else { c })
        .collect();
    let out: String = mapped.nfc().collect();
    check_class(&out, Class::Freeform)?;
    if out.is_empty() {
        return Err(PrecisError::Empty);
    }
    Ok(out)
}

/// A Digest user name with `charset=UTF-8`: RFC 8265 §3.1 lets an application define a
/// username as space-separated userparts, `username = userpart *(1*SP userpart)`, "each
/// userpart … enforced" with the profile. RFC 7616's own example name is "Jäsøn Doe" (§3.9.2),
/// so Digest names are handled that way: every userpart goes through
/// [`username_case_preserved`], the U+0020 separators are kept as they are; a leading or
/// trailing space (an empty first or last userpart) is refused.
pub fn digest_username(input: &str) -> Result<String, PrecisError> {
    if input.is_empty() {
        return Err(PrecisError::Empty);
    }
    let mut out = String::with_capacity(input.len());
    let mut parts = input.split(' ').peekable();
    let mut first = true;
    while let Some(part) = parts.next() {
        let last = parts.peek().is_none();
        if part.is_empty() {
            if first || last {
                return Err(PrecisError::Empty);
            }
        } else {
            out.push_str(&username_case_preserved(part)?);
        }
        if !last {
            out.push(' ');
        }
        first = false;
    }
    Ok(out)
}

/// RFC 8265 §3.4 comparison: both names enforced, then compared code point by code point.
pub fn compare_usernames(a: &str, b: &str) -> Result<bool, PrecisError> {
    Ok(username_case_preserved(a)? == username_case_preserved(b)?)
}

/// RFC 8265 §4.2 comparison: both passwords enforced, then compared code point by code point.
pub fn compare_passwords(a: &str, b: &str) -> Result<bool, PrecisError> {
    Ok(opaque_string(a)? == opaque_string(b)?)
}

fn check_class(s: &str, class: Class) -> Result<(), PrecisError> {
    for (index, c) in s.chars().enumerate() {
        if !allowed(c, class) {
            return Err(PrecisError::Disallowed {
                code: u32::from(c),
                index,
                class: class.name(),
            });
        }
    }
    Ok(())
}

/// The derived property of RFC 8264 §8, in its order, as far as the available data allows
/// (see the module notes).
fn allowed(c: char, class: Class) -> bool {
    let cp = u32::from(c);
    // ASCII7 (K): printable ASCII is PVALID in both classes; the space is a Space (N).
    if (0x21..=0x7e).contains(&cp) {
        return true;
    }
    if is_join_control(cp) {
        // CONTEXTJ: only valid after a virama (RFC 5892 Appendix A.1/A.2); not supported here.
        return false;
    }
    if is_old_hangul_jamo(cp) || is_ignorable(cp) || is_control(cp) || is_private_use(cp) {
        return false;
    }
    let free = class == Class::Freeform;
    if has_compat(c) {
        // HasCompat (Q): ID_DIS / FREE_PVAL.
        return free;
    }
    if is_letter_digit(c) {
        return true;
    }
    // OtherLetterDigits, Spaces, Symbols, Punctuation: ID_DIS / FREE_PVAL.
    free
}

/// Space_Separator (Zs).
fn is_space(c: char) -> bool {
    matches!(
        u32::from(c),
        0x20 | 0xa0 | 0x1680 | 0x2000..=0x200a | 0x202f | 0x205f | 0x3000
    )
}

fn is_control(cp: u32) -> bool {
    cp < 0x20 || (0x7f..=0x9f).contains(&cp)
}

fn is_join_control(cp: u32) -> bool {
    cp == 0x200c || cp == 0x200d
}

/// Hangul_Syllable_Type L, V or T (RFC 5892 §2.9 OldHangulJamo).
fn is_old_hangul_jamo(cp: u32) -> bool {
    matches!(cp, 0x1100..=0x11ff | 0xa960..=0xa97c | 0xd7b0..=0xd7c6 | 0xd7cb..=0xd7fb)
}

/// PrecisIgnorableProperties (RFC 8264 §9.13): Default_Ignorable_Code_Point or
/// Noncharacter_Code_Point.
fn is_ignorable(cp: u32) -> bool {
    let default_ignorable = matches!(
        cp,
        0xad | 0x34f
            | 0x61c
            | 0x115f..=0x1160
            | 0x17b4..=0x17b5
            | 0x180b..=0x180f
            | 0x200b..=0x200f
            | 0x202a..=0x202e
            | 0x2060..=0x206f
            | 0x3164
            | 0xfe00..=0xfe0f
            | 0xfeff
            | 0xffa0
            | 0xfff0..=0xfff8
            | 0x1bca0..=0x1bca3
            | 0x1d173..=0x1d17a
            | 0xe0000..=0xe0fff
    );
    let noncharacter = (0xfdd0..=0xfdef).contains(&cp) || (cp & 0xfffe) == 0xfffe;
    default_ignorable || noncharacter
}

fn is_private_use(cp: u32) -> bool {
    matches!(cp, 0xe000..=0xf8ff | 0xf0000..=0xffffd | 0x100000..=0x10fffd)
}

/// HasCompat (RFC 8264 §9.17): the code point is changed by NFKC.
fn has_compat(c: char) -> bool {
    let mut buf = [0u8; 4];
    let s: &str = c.encode_utf8(&mut buf);
    !s.nfkc().eq(core::iter::once(c))
}

/// LetterDigits (Ll, Lu, Lo, Nd, Lm, Mn, Mc), approximated (see the module notes).
fn is_letter_digit(c: char) -> bool {
    let cp = u32::from(c);
    // Enclosing marks (Me) are OtherLetterDigits, not LetterDigits.
    if matches!(cp, 0x488..=0x489 | 0x1abe | 0x20dd..=0x20e0 | 0x20e2..=0x20e4 | 0xa670..=0xa672) {
        return false;
    }
    c.is_alphabetic()
        || c.is_numeric() && !is_other_number(cp)
        || matches!(
            cp,
            0x300..=0x36f | 0x483..=0x487 | 0x591..=0x5bd | 0x64b..=0x65f | 0x670
                | 0x6d6..=0x6dc | 0x6df..=0x6e4 | 0x6e7..=0x6e8 | 0x6ea..=0x6ed
                | 0x1ab0..=0x1aff | 0x1dc0..=0x1dff | 0x20d0..=0x20f0 | 0xfe20..=0xfe2f
        )
        || VIRAMA_NUKTA.contains(&cp)
}

/// Viramas and nuktas of the Indic and South-East Asian scripts: combining marks (Mn, so
/// LetterDigits) that are not Alphabetic, so std does not see them as letters.
const VIRAMA_NUKTA: [u32; 30] = [
    0x93c, 0x94d, 0x9bc, 0x9cd, 0xa3c, 0xa4d, 0xabc, 0xacd, 0xb3c, 0xb4d, 0xbcd, 0xc4d, 0xcbc,
    0xccd, 0xd4d, 0xdca, 0xe3a, 0xf84, 0x1037, 0x1039, 0x103a, 0x1714, 0x1734, 0x17d2, 0x1a60,
    0x1b44, 0xa806, 0xa8c4, 0xa953, 0xa9c0,
];

/// A few blocks of No/Nl (other numbers: superscripts, fractions, circled and Roman numerals)
/// that are not Nd; most of them also have compatibility decompositions.
fn is_other_number(cp: u32) -> bool {
    matches!(cp, 0xb2..=0xb3 | 0xb9 | 0xbc..=0xbe | 0x2070..=0x2189 | 0x2460..=0x24ff | 0x2776..=0x2793)
}

/// The Width Mapping Rule (RFC 8265 §3.4 rule 1, RFC 8264 §9.8 / UAX #11): a code point whose
/// decomposition type is `<wide>` or `<narrow>` becomes its decomposition mapping.
fn width_map(c: char) -> char {
    let cp = u32::from(c);
    let mapped = match cp {
        0x3000 => 0x20,
        0xff01..=0xff5e => cp - 0xff01 + 0x21,
        0xff5f => 0x2985,
        0xff60 => 0x2986,
        0xff61..=0xff9f => HALFWIDTH_KATAKANA[(cp - 0xff61) as usize],
        0xffa0..=0xffdc => match HALFWIDTH_HANGUL[(cp - 0xffa0) as usize] {
            0 => cp,
            m => m,
        },
        0xffe0 => 0xa2,
        0xffe1 => 0xa3,
        0xffe2 => 0xac,
        0xffe3 => 0xaf,
        0xffe4 => 0xa6,
        0xffe5 => 0xa5,
        0xffe6 => 0x20a9,
        0xffe8 => 0x2502,
        0xffe9..=0xffec => cp - 0xffe9 + 0x2190,
        0xffed => 0x25a0,
        0xffee => 0x25cb,
        _ => cp,
    };
    char::from_u32(mapped).unwrap_or(c)
}

/// `<narrow>` decompositions of U+FF61..U+FF9F (halfwidth CJK punctuation and katakana).
const HALFWIDTH_KATAKANA: [u32; 63] = [
    0x3002, 0x300c, 0x300d, 0x3001, 0x30fb, 0x30f2, // ｡ ｢ ｣ ､ ･ ｦ
    0x30a1, 0x30a3, 0x30a5, 0x30a7, 0x30a9, 0x30e3, 0x30e5, 0x30e7, 0x30c3, // small ｧ..ｯ
    0x30fc, // ｰ
    0x30a2, 0x30a4, 0x30a6, 0x30a8, 0x30aa, // ｱ ｲ ｳ ｴ ｵ
    0x30ab, 0x30ad, 0x30af, 0x30b1, 0x30b3, // ｶ ｷ ｸ ｹ ｺ
    0x30b5, 0x30b7, 0x30b9, 0x30bb, 0x30bd, // ｻ ｼ ｽ ｾ ｿ
    0x30bf, 0x30c1, 0x30c4, 0x30c6, 0x30c8, // ﾀ ﾁ ﾂ ﾃ ﾄ
    0x30ca, 0x30cb, 0x30cc, 0x30cd, 0x30ce, // ﾅ ﾆ ﾇ ﾈ ﾉ
    0x30cf, 0x30d2, 0x30d5, 0x30d8, 0x30db, // ﾊ ﾋ ﾌ ﾍ ﾎ
    0x30de, 0x30df, 0x30e0, 0x30e1, 0x30e2, // ﾏ ﾐ ﾑ ﾒ ﾓ
    0x30e4, 0x30e6, 0x30e8, // ﾔ ﾕ ﾖ
    0x30e9, 0x30ea, 0x30eb, 0x30ec, 0x30ed, // ﾗ ﾘ ﾙ ﾚ ﾛ
    0x30ef, 0x30f3, // ﾜ ﾝ
    0x3099, 0x309a, // ﾞ ﾟ (voiced sound marks)
];

/// `<narrow>` decompositions of U+FFA0..U+FFDC (halfwidth Hangul compatibility jamo); 0 marks
/// the unassigned gaps.
const HALFWIDTH_HANGUL: [u32; 61] = [
    0x3164, // U+FFA0 HALFWIDTH HANGUL FILLER
    0x3131, 0x3132, 0x3133, 0x3134, 0x3135, 0x3136, 0x3137, 0x3138, 0x3139, 0x313a, 0x313b, 0x313c,
    0x313d, 0x313e, 0x313f, 0x3140, 0x3141, 0x3142, 0x3143, 0x3144, 0x3145, 0x3146, 0x3147, 0x3148,
    0x3149, 0x314a, 0x314b, 0x314c, 0x314d, 0x314e, // FFA1..FFBE
    0, 0, 0, // FFBF..FFC1
    0x314f, 0x3150, 0x3151, 0x3152, 0x3153, 0x3154, // FFC2..FFC7
    0, 0, // FFC8..FFC9
    0x3155, 0x3156, 0x3157, 0x3158, 0x3159, 0x315a, // FFCA..FFCF
    0, 0, // FFD0..FFD1
    0x315b, 0x315c, 0x315d, 0x315e, 0x315f, 0x3160, // FFD2..FFD7
    0, 0, // FFD8..FFD9
    0x3161, 0x3162, 0x3163, // FFDA..FFDC
];

/// Coarse bidirectional class (see the module notes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BidiClass {
    L,
    R,
    Al,
    En,
    An,
    Nsm,
    Other,
}

fn bidi_class(c: char) -> BidiClass {
    let cp = u32::from(c);
    match cp {
        0x30..=0x39 | 0xb2..=0xb3 | 0xb9 | 0x6f0..=0x6f9 | 0x2070..=0x2079 | 0xff10..=0xff19 => {
            BidiClass::En
        }
        0x660..=0x669 | 0x66b..=0x66c => BidiClass::An,
        0x591..=0x5bd | 0x5bf | 0x5c1..=0x5c2 | 0x5c4..=0x5c5 | 0x5c7 => BidiClass::Nsm,
        0x610..=0x61a
        | 0x64b..=0x65f
        | 0x670
        | 0x6d6..=0x6dc
        | 0x6df..=0x6e4
        | 0x6e7..=0x6e8
        | 0x6ea..=0x6ed => BidiClass::Nsm,
        0x300..=0x36f => BidiClass::Nsm,
        0x590..=0x5ff | 0x7c0..=0x85f | 0xfb1d..=0xfb4f | 0x10800..=0x10fff | 0x1e800..=0x1edff => {
            BidiClass::R
        }
        0x600..=0x6ff
        | 0x700..=0x7bf
        | 0x860..=0x8ff
        | 0xfb50..=0xfdff
        | 0xfe70..=0xfeff
        | 0x1ee00..=0x1eeff => BidiClass::Al,
        _ if c.is_alphabetic() => BidiClass::L,
        _ => BidiClass::Other,
    }
}

/// The Bidi Rule of RFC 5893 §2, applied only to "RTL labels" (strings holding an R, AL or AN
/// character), as RFC 8265 §3.4 rule 5 requires.
fn bidi_rule(s: &str) -> Result<(), PrecisError> {
    let classes: Vec<BidiClass> = s.chars().map(bidi_class).collect();
    let rtl = classes
        .iter()
        .any(|c| matches!(c, BidiClass::R | BidiClass::Al | BidiClass::An));
    if !rtl {
        return Ok(());
    }
    // 1. the first character must be R or AL (an RTL label)
    if !matches!(classes.first(), Some(BidiClass::R | BidiClass::Al)) {
        return Err(PrecisError::Bidi);
    }
    // 2. no L character in an RTL label (the other classes of rule 2 are allowed)
    if classes.contains(&BidiClass::L) {
        return Err(PrecisError::Bidi);
    }
    // 3. it ends with R, AL, EN or AN, followed by zero or more NSM
    let last = classes.iter().rev().find(|c| **c != BidiClass::Nsm);
    if !matches!(
        last,
        Some(BidiClass::R | BidiClass::Al | BidiClass::En | BidiClass::An)
    ) {
        return Err(PrecisError::Bidi);
    }
    // 4. EN and AN must not both be present
    if classes.contains(&BidiClass::En) && classes.contains(&BidiClass::An) {
        return Err(PrecisError::Bidi);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn width_tables_are_the_decompositions() {
        assert_eq!(width_map('Ａ'), 'A');
        assert_eq!(width_map('～'), '~');
        assert_eq!(width_map('\u{3000}'), ' ');
        assert_eq!(width_map('ｱ'), 'ア');
        assert_eq!(width_map('ﾝ'), 'ン');
        assert_eq!(width_map('ﾟ'), '\u{309a}');
        assert_eq!(width_map('ﾡ'), 'ㄱ');
        assert_eq!(width_map('ￜ'), 'ㅣ');
        assert_eq!(width_map('\u{ffbf}'), '\u{ffbf}'); // unassigned gap kept
        assert_eq!(width_map('￦'), '₩');
        assert_eq!(width_map('￮'), '○');
        assert_eq!(width_map('a'), 'a');
        // every halfwidth katakana maps to a fullwidth katakana (or the two sound marks) or to
        // CJK punctuation: none maps to itself
        for cp in 0xff61..=0xff9f {
            let c = char::from_u32(cp).unwrap();
            let m = u32::from(width_map(c));
            assert!(
                (0x30a1..=0x30fc).contains(&m)
                    || (0x3001..=0x300d).contains(&m)
                    || m == 0x3099
                    || m == 0x309a,
                "U+{cp:04X} → U+{m:04X}"
            );
            // NFKD of a halfwidth katakana is its narrow decomposition (they decompose once)
            let mut buf = [0u8; 4];
            let nfkd: Vec<char> = c.encode_utf8(&mut buf).nfkd().collect();
            assert_eq!(nfkd, vec![width_map(c)], "U+{cp:04X}");
        }
    }
}
