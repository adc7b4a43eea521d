//! Alphabets of 3GPP TS 23.038: the GSM 7 bit default alphabet with its extension table, the
//! national language locking and single shift tables of Annex A (Turkish, Spanish, Portuguese),
//! septet packing (§6.1.2.1) and UCS2 (§6.1.2.3, read as UTF-16 with surrogate pairs).

use crate::tables;
use std::sync::OnceLock;

/// The escape septet (TS 23.038 §6.2.1): the next septet is read in the single shift table.
pub const ESCAPE: u8 = 0x1B;

/// A national language identifier (TS 23.038 §6.2.1.2.4) as carried in the national language
/// single shift (IEI 0x24) and locking shift (IEI 0x25) information elements.
///
/// Tables are implemented for Turkish, Spanish and Portuguese. The Indian languages and Urdu
/// (identifiers 4 to 13) are kept as [`NationalLanguage::Other`] and decoded with the default
/// tables: their Annex A tables are not implemented.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NationalLanguage {
    /// 1: Turkish (locking shift A.3.1, single shift A.2.1).
    Turkish,
    /// 2: Spanish (single shift A.2.2; the locking shift is the default alphabet).
    Spanish,
    /// 3: Portuguese (locking shift A.3.3, single shift A.2.3).
    Portuguese,
    /// Any other identifier, decoded with the default tables.
    Other(u8),
}

impl NationalLanguage {
    /// The identifier from its code.
    pub fn from_code(code: u8) -> NationalLanguage {
        match code {
            1 => NationalLanguage::Turkish,
            2 => NationalLanguage::Spanish,
            3 => NationalLanguage::Portuguese,
            c => NationalLanguage::Other(c),
        }
    }

    /// The code carried in the information element.
    pub fn code(self) -> u8 {
        match self {
            NationalLanguage::Turkish => 1,
            NationalLanguage::Spanish => 2,
            NationalLanguage::Portuguese => 3,
            NationalLanguage::Other(c) => c,
        }
    }

    /// The languages whose tables this crate implements.
    pub const IMPLEMENTED: [NationalLanguage; 3] = [
        NationalLanguage::Turkish,
        NationalLanguage::Spanish,
        NationalLanguage::Portuguese,
    ];

    /// Whether a locking shift table other than the default alphabet exists for this language.
    pub fn has_locking_table(self) -> bool {
        matches!(
            self,
            NationalLanguage::Turkish | NationalLanguage::Portuguese
        )
    }
}

/// Which tables a GSM 7 bit text uses: the locking shift table (`None`: the default alphabet) and
/// the single shift table reached by [`ESCAPE`] (`None`: the default extension table).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ShiftTables {
    /// National language locking shift (UDH IEI 0x25).
    pub locking: Option<NationalLanguage>,
    /// National language single shift (UDH IEI 0x24).
    pub single: Option<NationalLanguage>,
}

impl ShiftTables {
    /// The default alphabet and its extension table.
    pub const DEFAULT: ShiftTables = ShiftTables {
        locking: None,
        single: None,
    };

    fn locking_table(self) -> &'static [char; 128] {
        match self.locking {
            Some(NationalLanguage::Turkish) => &tables::TURKISH_LOCKING,
            Some(NationalLanguage::Portuguese) => &tables::PORTUGUESE_LOCKING,
            _ => &tables::DEFAULT,
        }
    }

    fn single_table(self) -> &'static [(u8, char)] {
        match self.single {
            Some(NationalLanguage::Turkish) => tables::TURKISH_SINGLE,
            Some(NationalLanguage::Spanish) => tables::SPANISH_SINGLE,
            Some(NationalLanguage::Portuguese) => tables::PORTUGUESE_SINGLE,
            _ => tables::DEFAULT_EXTENSION,
        }
    }

    fn locking_index(self) -> usize {
        match self.locking {
            Some(NationalLanguage::Turkish) => 1,
            Some(NationalLanguage::Portuguese) => 2,
            _ => 0,
        }
    }

    fn single_index(self) -> usize {
        match self.single {
            Some(NationalLanguage::Turkish) => 1,
            Some(NationalLanguage::Spanish) => 2,
            Some(NationalLanguage::Portuguese) => 3,
            _ => 0,
        }
    }

    /// The septets of one character: one septet, or [`ESCAPE`] and a septet of the single shift
    /// table. `None` when the tables cannot represent it. A character present in both tables
    /// takes the locking table (one septet).
    pub fn encode_char(self, c: char) -> Option<Septets> {
        let r = reverse();
        if let Some(s) = r.locking[self.locking_index()].get(c) {
            return Some(Septets::One(s));
        }
        r.single[self.single_index()].get(c).map(Septets::Escaped)
    }

    /// The character of a septet in the locking shift table (0x1B gives a space).
    pub fn decode_septet(self, s: u8) -> char {
        self.locking_table()[usize::from(s & 0x7f)]
    }

    /// The character of a septet read after [`ESCAPE`]. An escaped code the single shift table
    /// does not define shows the locking table's character (TS 23.038 §6.2.1.1); an escaped
    /// escape shows a space.
    pub fn decode_escaped(self, s: u8) -> char {
        let s = s & 0x7f;
        if s == ESCAPE {
            return ' ';
        }
        self.single_table()
            .iter()
            .find(|(k, _)| *k == s)
            .map_or_else(|| self.decode_septet(s), |(_, c)| *c)
    }

    /// Decodes unpacked septets into text.
    pub fn decode(self, septets: &[u8]) -> String {
        let mut out = String::with_capacity(septets.len());
        let mut it = septets.iter();
        while let Some(&s) = it.next() {
            if s & 0x7f == ESCAPE {
                match it.next() {
                    Some(&n) => out.push(self.decode_escaped(n)),
                    None => out.push(' '),
                }
            } else {
                out.push(self.decode_septet(s));
            }
        }
        out
    }

    /// Encodes text into unpacked septets, or returns the first character the tables cannot
    /// represent.
    pub fn encode(self, text: &str) -> Result<Vec<u8>, char> {
        let mut out = Vec::with_capacity(text.len());
        for c in text.chars() {
            match self.encode_char(c) {
                Some(Septets::One(s)) => out.push(s),
                Some(Septets::Escaped(s)) => out.extend_from_slice(&[ESCAPE, s]),
                None => return Err(c),
            }
        }
        Ok(out)
    }

    /// The number of septets `text` takes, or `None` when a character is not representable.
    pub fn septet_count(self, text: &str) -> Option<usize> {
        text.chars()
            .map(|c| self.encode_char(c).map(Septets::len))
            .sum()
    }
}

/// The septets of one character.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Septets {
    /// A septet of the locking shift table.
    One(u8),
    /// [`ESCAPE`] followed by this septet of the single shift table.
    Escaped(u8),
}

impl Septets {
    /// 1 or 2.
    pub fn len(self) -> usize {
        match self {
            Septets::One(_) => 1,
            Septets::Escaped(_) => 2,
        }
    }

    /// Always false: a character takes at least one septet.
    pub fn is_empty(self) -> bool {
        false
    }
}

/// Reverse lookup for one table: characters below U+0400 by index, the rest by a short list.
struct Reverse {
    low: Box<[u8; 0x400]>,
    high: Vec<(char, u8)>,
}

impl Reverse {
    fn new(entries: impl Iterator<Item = (u8, char)>) -> Reverse {
        let mut low = Box::new([0xFFu8; 0x400]);
        let mut high = Vec::new();
        for (code, c) in entries {
            if code == ESCAPE {
                continue;
            }
            let u = c as usize;
            if u < 0x400 {
                if low[u] == 0xFF {
                    low[u] = code;
                }
            } else if !high.iter().any(|(h, _)| *h == c) {
                high.push((c, code));
            }
        }
        Reverse { low, high }
    }

    fn get(&self, c: char) -> Option<u8> {
        let u = c as usize;
        if u < 0x400 {
            let s = self.low[u];
            (s != 0xFF).then_some(s)
        } else {
            self.high.iter().find(|(h, _)| *h == c).map(|(_, s)| *s)
        }
    }
}

struct ReverseTables {
    /// default, Turkish, Portuguese
    locking: [Reverse; 3],
    /// default extension, Turkish, Spanish, Portuguese
    single: [Reverse; 4],
}

fn reverse() -> &'static ReverseTables {
    static R: OnceLock<ReverseTables> = OnceLock::new();
    R.get_or_init(|| {
        let lock =
            |t: &'static [char; 128]| Reverse::new((0u8..128).map(|i| (i, t[usize::from(i)])));
        let single = |t: &'static [(u8, char)]| Reverse::new(t.iter().copied());
        ReverseTables {
            locking: [
                lock(&tables::DEFAULT),
                lock(&tables::TURKISH_LOCKING),
                lock(&tables::PORTUGUESE_LOCKING),
            ],
            single: [
                single(tables::DEFAULT_EXTENSION),
                single(tables::TURKISH_SINGLE),
                single(tables::SPANISH_SINGLE),
                single(tables::PORTUGUESE_SINGLE),
            ],
        }
    })
}

/// Every (septet, character) pair of a locking shift table (0x1B excluded), for tests and tools.
pub fn locking_table_entries(language: Option<NationalLanguage>) -> Vec<(u8, char)> {
    let t = ShiftTables {
        locking: language,
        single: None,
    }
    .locking_table();
    (0u8..128)
        .filter(|&i| i != ESCAPE)
        .map(|i| (i, t[usize::from(i)]))
        .collect()
}

/// Every (septet, character) pair of a single shift table, for tests and tools.
pub fn single_table_entries(language: Option<NationalLanguage>) -> Vec<(u8, char)> {
    ShiftTables {
        locking: None,
        single: language,
    }
    .single_table()
    .to_vec()
}

/// Packs septets into octets (TS 23.038 §6.1.2.1.1), starting after `fill_bits` zero bits (the
/// fill bits that align the text after a user data header, TS 23.040 §9.2.3.24).
pub fn pack_septets(septets: &[u8], fill_bits: u8, out: &mut Vec<u8>) {
    let mut acc: u32 = 0;
    let mut n: u32 = u32::from(fill_bits % 7);
    for &s in septets {
        acc |= u32::from(s & 0x7f) << n;
        n += 7;
        while n >= 8 {
            out.push(acc as u8);
            acc >>= 8;
            n -= 8;
        }
    }
    if n > 0 {
        out.push(acc as u8);
    }
}

/// The number of octets `count` septets take after `fill_bits` fill bits.
pub fn packed_len(count: usize, fill_bits: u8) -> usize {
    (usize::from(fill_bits) + 7 * count).div_ceil(8)
}

/// Unpacks `count` septets that start after `fill_bits` bits of `data`. Septets beyond the data
/// read as zero bits: callers check the length first with [`packed_len`].
pub fn unpack_septets(data: &[u8], fill_bits: u8, count: usize) -> Vec<u8> {
    let mut out = vec![0u8; count];
    let skip = usize::from(fill_bits / 8);
    let mut bytes = data.get(skip..).unwrap_or_default().iter().copied();
    // bit accumulator, least significant bit first
    let mut acc: u32 = u32::from(bytes.next().unwrap_or(0)) >> (fill_bits % 8);
    let mut n: u32 = 8 - u32::from(fill_bits % 8);
    for slot in &mut out {
        if n < 7 {
            acc |= u32::from(bytes.next().unwrap_or(0)) << n;
            n += 8;
        }
        *slot = (acc & 0x7f) as u8;
        acc >>= 7;
        n -= 7;
    }
    out
}

/// Decodes UCS2 (read as UTF-16BE, so surrogate pairs give characters outside the BMP). An
/// unpaired surrogate or a trailing odd octet decodes as U+FFFD.
pub fn decode_ucs2(data: &[u8]) -> String {
    let units = data
        .chunks_exact(2)
        .map(|p| u16::from_be_bytes([p[0], p[1]]));
    let mut s: String = char::decode_utf16(units)
        .map(|r| r.unwrap_or(char::REPLACEMENT_CHARACTER))
        .collect();
    if data.len() % 2 == 1 {
        s.push(char::REPLACEMENT_CHARACTER);
    }
    s
}

/// Encodes text as UTF-16BE (UCS2 with surrogate pairs).
pub fn encode_ucs2(text: &str, out: &mut Vec<u8>) {
    for u in text.encode_utf16() {
        out.extend_from_slice(&u.to_be_bytes());
    }
}

/// Whether `septets` ends in the middle of an escape sequence (a lone trailing [`ESCAPE`]).
pub fn ends_in_escape(septets: &[u8]) -> bool {
    let n = septets.iter().rev().take_while(|&&s| s == ESCAPE).count();
    n % 2 == 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hello_packs_as_in_ts_23_038() {
        // "hello" -> E8 32 9B FD 06 (the classic example of §6.1.2.1.1 packing)
        let s = ShiftTables::DEFAULT.encode("hello").unwrap();
        let mut out = Vec::new();
        pack_septets(&s, 0, &mut out);
        assert_eq!(out, [0xE8, 0x32, 0x9B, 0xFD, 0x06]);
        assert_eq!(unpack_septets(&out, 0, 5), s);
        assert_eq!(ShiftTables::DEFAULT.decode(&s), "hello");
    }

    #[test]
    fn unpack_matches_a_bit_by_bit_reading() {
        // TS 23.038 §6.1.2.1.1: septet i occupies bits fill+7i .. fill+7i+6, LSB first
        let data: Vec<u8> = (0u32..64).map(|i| (i * 37 + 11) as u8 ^ 0xA5).collect();
        for fill in 0u8..16 {
            for count in [0usize, 1, 7, 8, 9, 50, 80] {
                let expect: Vec<u8> = (0..count)
                    .map(|i| {
                        (0..7).fold(0u8, |v, b| {
                            let bit = usize::from(fill) + 7 * i + b;
                            let set = data.get(bit / 8).is_some_and(|o| o >> (bit % 8) & 1 == 1);
                            v | u8::from(set) << b
                        })
                    })
                    .collect();
                assert_eq!(
                    unpack_septets(&data, fill, count),
                    expect,
                    "fill {fill} count {count}"
                );
            }
        }
    }

    #[test]
    fn fill_bits_shift_the_text() {
        let s = ShiftTables::DEFAULT.encode("Hi").unwrap();
        let mut out = Vec::new();
        pack_septets(&s, 1, &mut out);
        assert_eq!(out.len(), packed_len(2, 1));
        assert_eq!(out[0] & 1, 0);
        assert_eq!(unpack_septets(&out, 1, 2), s);
    }

    #[test]
    fn escape_and_national_tables() {
        let t = ShiftTables::DEFAULT;
        assert_eq!(t.encode("€").unwrap(), [ESCAPE, 0x65]);
        assert_eq!(t.decode(&[ESCAPE, 0x65, ESCAPE, 0x41]), "€A");
        assert!(t.encode("ş").is_err());
        let tr = ShiftTables {
            locking: Some(NationalLanguage::Turkish),
            single: Some(NationalLanguage::Turkish),
        };
        // ş is in the Turkish locking table (0x1D) and its single shift table (0x73): one septet wins
        assert_eq!(tr.encode("ışİ").unwrap(), [0x07, 0x1D, 0x40]);
        assert_eq!(tr.decode(&[0x07, ESCAPE, 0x73, 0x40]), "ışİ");
    }

    #[test]
    fn ucs2_surrogates() {
        let mut out = Vec::new();
        encode_ucs2("a😀", &mut out);
        assert_eq!(out, [0x00, 0x61, 0xD8, 0x3D, 0xDE, 0x00]);
        assert_eq!(decode_ucs2(&out), "a😀");
        assert_eq!(decode_ucs2(&[0xD8, 0x3D]), "\u{FFFD}");
    }
}
