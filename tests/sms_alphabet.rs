//! TS 23.038 alphabets: every character of every implemented table round trips (alone and packed),
//! the tables agree with an independent open-source transcription (Android's `GsmAlphabet`
//! language tables, which index a 128-character string by septet; a space marks an undefined
//! single shift entry), and the examples of TS 23.038 §6.1.2.1 pack as the spec shows.

use ims::sms::alphabet::{
    locking_table_entries, pack_septets, single_table_entries, unpack_septets, Septets, ESCAPE,
};
use ims::sms::{NationalLanguage, ShiftTables};

const TR: Option<NationalLanguage> = Some(NationalLanguage::Turkish);
const ES: Option<NationalLanguage> = Some(NationalLanguage::Spanish);
const PT: Option<NationalLanguage> = Some(NationalLanguage::Portuguese);

// Android frameworks/opt/telephony GsmAlphabet.sLanguageTables / sLanguageShiftTables (indices 0,
// 1, 3 and 0-3), the 0x1B escape written as U+FFFF there.
const ANDROID_LOCKING: [(Option<NationalLanguage>, &str); 3] = [
    (None, "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\u{ffff}ÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"),
    (TR, "@£$¥€éùıòÇ\nĞğ\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\u{ffff}ŞşßÉ !\"#¤%&'()*+,-./0123456789:;<=>?İABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§çabcdefghijklmnopqrstuvwxyzäöñüà"),
    (PT, "@£$¥êéúíóç\nÔô\rÁáΔ_ªÇÀ∞^\\€Ó|\u{ffff}ÂâÊÉ !\"#º%&'()*+,-./0123456789:;<=>?ÍABCDEFGHIJKLMNOPQRSTUVWXYZÃÕÚÜ§~abcdefghijklmnopqrstuvwxyzãõ`üà"),
];
const ANDROID_SINGLE: [(Option<NationalLanguage>, &str); 4] = [
    (None, "          \u{c}         ^                   {}     \\            [~] |                                    €                          "),
    (TR, "          \u{c}         ^                   {}     \\            [~] |      Ğ İ         Ş               ç € ğ ı         ş            "),
    (ES, "         ç\u{c}         ^                   {}     \\            [~] |Á       Í     Ó     Ú           á   €   í     ó     ú          "),
    (PT, "     ê   ç\u{c}Ôô Áá  ΦΓ^ΩΠΨΣΘ     Ê        {}     \\            [~] |À       Í     Ó     Ú     ÃÕ    Â   €   í     ó     ú     ãõ  â"),
];

#[test]
fn tables_match_an_independent_transcription() {
    for (lang, s) in ANDROID_LOCKING {
        let chars: Vec<char> = s.chars().collect();
        assert_eq!(chars.len(), 128, "{lang:?}");
        let ours = locking_table_entries(lang);
        assert_eq!(ours.len(), 127);
        for (code, c) in ours {
            assert_eq!(
                c,
                chars[usize::from(code)],
                "locking {lang:?} code {code:#04x}"
            );
        }
    }
    for (lang, s) in ANDROID_SINGLE {
        let chars: Vec<char> = s.chars().collect();
        assert_eq!(chars.len(), 128, "{lang:?}");
        let ours = single_table_entries(lang);
        for code in 0u8..128 {
            if code == ESCAPE {
                continue;
            }
            let theirs = chars[usize::from(code)];
            let mine = ours.iter().find(|(k, _)| *k == code).map(|(_, c)| *c);
            assert_eq!(
                mine,
                (theirs != ' ').then_some(theirs),
                "single {lang:?} code {code:#04x}"
            );
        }
    }
}

#[test]
fn every_character_of_every_table_round_trips() {
    let mut checked = 0;
    for locking in [None, TR, PT] {
        for single in [None, TR, ES, PT] {
            let t = ShiftTables { locking, single };
            let lock = locking_table_entries(locking);
            for &(code, c) in &lock {
                assert_eq!(t.encode_char(c), Some(Septets::One(code)), "{t:?} {c:?}");
                assert_eq!(t.decode(&[code]), c.to_string());
                checked += 1;
            }
            for (code, c) in single_table_entries(single) {
                let got = t.encode_char(c);
                if lock.iter().any(|&(_, l)| l == c) {
                    assert!(matches!(got, Some(Septets::One(_))), "{t:?} {c:?}");
                } else {
                    assert_eq!(got, Some(Septets::Escaped(code)), "{t:?} {c:?}");
                }
                assert_eq!(
                    t.decode(&[ESCAPE, code]),
                    c.to_string(),
                    "{t:?} {code:#04x}"
                );
                checked += 1;
            }
            // the whole table as one packed text, at every fill-bit offset
            let text: String = lock
                .iter()
                .map(|&(_, c)| c)
                .chain(single_table_entries(single).into_iter().map(|(_, c)| c))
                .collect();
            let septets = t.encode(&text).unwrap();
            for fill in 0..7 {
                let mut packed = Vec::new();
                pack_septets(&septets, fill, &mut packed);
                let back = unpack_septets(&packed, fill, septets.len());
                assert_eq!(t.decode(&back), text, "{t:?} fill {fill}");
            }
        }
    }
    let singles: usize = [None, TR, ES, PT]
        .iter()
        .map(|&l| single_table_entries(l).len())
        .sum();
    assert_eq!(checked, 3 * 4 * 127 + 3 * singles);
    // default extension 10, Turkish 17, Spanish 19, Portuguese 37 characters
    assert_eq!(singles, 10 + 17 + 19 + 37);
}

#[test]
fn undefined_escapes_show_the_locking_character() {
    // TS 23.038 §6.2.1.1: an escaped code without an extension character shows the main table's
    let t = ShiftTables::DEFAULT;
    assert_eq!(t.decode(&[ESCAPE, 0x41]), "A");
    assert_eq!(t.decode(&[ESCAPE, ESCAPE]), " ");
    // a Spanish locking shift is the default alphabet (A.3.2 is void)
    let es = ShiftTables {
        locking: ES,
        single: None,
    };
    assert_eq!(es.decode(&[0x7F]), "à");
}

#[test]
fn spec_packing_examples() {
    // TS 23.038 §6.1.2.1.1: 8 septets fill 7 octets
    let s: Vec<u8> = (1..=8).collect();
    let mut out = Vec::new();
    pack_septets(&s, 0, &mut out);
    assert_eq!(out.len(), 7);
    assert_eq!(unpack_septets(&out, 0, 8), s);
    // "hellohello" -> E8 32 9B FD 46 97 D9 EC 37 (the classic example)
    let t = ShiftTables::DEFAULT.encode("hellohello").unwrap();
    out.clear();
    pack_septets(&t, 0, &mut out);
    assert_eq!(out, [0xE8, 0x32, 0x9B, 0xFD, 0x46, 0x97, 0xD9, 0xEC, 0x37]);
}
