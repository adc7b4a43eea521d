//! PRECIS preparation for Digest with `charset=UTF-8` (RFC 7616 §4 → RFC 7613, obsoleted by
//! RFC 8265): UsernameCasePreserved for the name, OpaqueString for the password.
//!
//! The example tables of RFC 8265 §3.5 (usernames) and §4.3 (passwords) are reproduced from
//! the RFC as remembered: the search corpus returned only the first page of RFC 8265, not
//! those sections (see the notes file). Each row cites the rule it exercises.

use ims_auth::digest::{self, prepare_utf8, Request};
use ims_auth::precis::{
    compare_passwords, compare_usernames, digest_username, opaque_string, username_case_preserved,
    PrecisError,
};
use ims_auth::{Algorithm, AuthError, Challenge, Credentials, DigestServer, Secret};
use std::borrow::Cow;
use std::time::Duration;

fn disallowed(r: Result<String, PrecisError>) -> u32 {
    match r {
        Err(PrecisError::Disallowed { code, .. }) => code,
        other => panic!("expected Disallowed, got {other:?}"),
    }
}

/// RFC 8265 §3.5, valid usernames (UsernameCasePreserved keeps case; NFC is a no-op here).
#[test]
fn rfc8265_3_5_valid_usernames() {
    for name in [
        "juliet@example.com", // 1: ASCII, "@" and "." are ASCII7
        "fussball",           // 2
        "fu\u{df}ball",       // 3: ß LATIN SMALL LETTER SHARP S, a letter
        "\u{3c0}",            // 4: π
        "\u{3a3}",            // 5: Σ (case preserved: not mapped to σ)
        "\u{3c3}",            // 6: σ
        "\u{3c2}",            // 7: ς final sigma
    ] {
        assert_eq!(username_case_preserved(name).as_deref(), Ok(name), "{name}");
    }
    // case preserved: Σ and σ differ under this profile
    assert_eq!(compare_usernames("\u{3a3}", "\u{3c3}"), Ok(false));
}

/// RFC 8265 §3.5, invalid usernames.
#[test]
fn rfc8265_3_5_invalid_usernames() {
    // 8: "foo bar": U+0020 is a Space (N), disallowed by IdentifierClass
    assert_eq!(disallowed(username_case_preserved("foo bar")), 0x20);
    // 9: the empty string
    assert_eq!(username_case_preserved(""), Err(PrecisError::Empty));
    // 10: "henryⅣ": U+2163 ROMAN NUMERAL FOUR has a compatibility equivalent (HasCompat)
    assert_eq!(disallowed(username_case_preserved("henry\u{2163}")), 0x2163);
    // 11: "♚": U+265A BLACK CHESS KING is a symbol (Symbols, ID_DIS)
    assert_eq!(disallowed(username_case_preserved("\u{265a}")), 0x265a);
}

/// RFC 8265 §3.4 rule 1 (width mapping) and rule 4 (NFC).
#[test]
fn username_width_mapping_and_nfc() {
    // fullwidth "ｊｕｌｉｅｔ" → "juliet"
    let wide = "\u{ff4a}\u{ff55}\u{ff4c}\u{ff49}\u{ff45}\u{ff54}";
    assert_eq!(username_case_preserved(wide).as_deref(), Ok("juliet"));
    assert_eq!(compare_usernames(wide, "juliet"), Ok(true));
    // halfwidth katakana "ｶﾀｶﾅ" → "カタカナ"
    assert_eq!(
        username_case_preserved("\u{ff76}\u{ff80}\u{ff76}\u{ff85}").as_deref(),
        Ok("\u{30ab}\u{30bf}\u{30ab}\u{30ca}")
    );
    // halfwidth "ｶﾞ" (KA + voiced mark) → "ガ" after width mapping then NFC composition
    assert_eq!(
        username_case_preserved("\u{ff76}\u{ff9e}").as_deref(),
        Ok("\u{30ac}")
    );
    // NFC: "e" + U+0301 → "é"; "Å" as A + ring → U+00C5
    assert_eq!(
        username_case_preserved("caf\u{65}\u{301}").as_deref(),
        Ok("caf\u{e9}")
    );
    assert_eq!(compare_usernames("A\u{30a}", "\u{c5}"), Ok(true));
    // U+212B ANGSTROM SIGN is a canonical (not compatibility) decomposition: NFC makes it Å
    assert_eq!(username_case_preserved("\u{212b}").as_deref(), Ok("\u{c5}"));
    // no case mapping: "Juliet" ≠ "juliet"
    assert_eq!(compare_usernames("Juliet", "juliet"), Ok(false));
}

/// Disallowed code points of IdentifierClass (RFC 8264 §9).
#[test]
fn username_disallowed_code_points() {
    assert_eq!(disallowed(username_case_preserved("a\tb")), 0x09); // Controls
    assert_eq!(disallowed(username_case_preserved("a\u{7f}")), 0x7f);
    assert_eq!(disallowed(username_case_preserved("a\u{85}")), 0x85); // C1 control
    assert_eq!(disallowed(username_case_preserved("a\u{ad}b")), 0xad); // soft hyphen: ignorable
    assert_eq!(disallowed(username_case_preserved("a\u{200b}b")), 0x200b); // ZWSP: ignorable
    assert_eq!(disallowed(username_case_preserved("a\u{200d}b")), 0x200d); // ZWJ: CONTEXTJ
    assert_eq!(disallowed(username_case_preserved("\u{fdd0}")), 0xfdd0); // noncharacter
    assert_eq!(disallowed(username_case_preserved("a\u{e000}")), 0xe000); // private use
    assert_eq!(disallowed(username_case_preserved("\u{1100}")), 0x1100); // old Hangul jamo
    assert_eq!(disallowed(username_case_preserved("\u{fb01}x")), 0xfb01); // ﬁ: HasCompat
    assert_eq!(disallowed(username_case_preserved("\u{a0}")), 0xa0); // NBSP: HasCompat (→ SP)
    assert_eq!(disallowed(username_case_preserved("\u{a9}")), 0xa9); // © symbol
    assert_eq!(disallowed(username_case_preserved("a\u{2014}b")), 0x2014); // em dash: punct.
    assert_eq!(disallowed(username_case_preserved("\u{378}")), 0x378); // unassigned
                                                                       // the index counts code points of the prepared string
    assert_eq!(
        username_case_preserved("ab\u{265a}"),
        Err(PrecisError::Disallowed {
            code: 0x265a,
            index: 2,
            class: "IdentifierClass"
        })
    );
    // letters and digits of other scripts are allowed
    for ok in [
        "\u{5f20}\u{4e09}",                           // 张三 (Lo)
        "\u{418}\u{432}\u{430}\u{43d}",               // Иван (Lu, Ll)
        "\u{939}\u{93f}\u{928}\u{94d}\u{926}\u{940}", // हिन्दी (Lo, Mc, Mn)
        "user\u{967}",                                // Devanagari digit one (Nd)
    ] {
        assert_eq!(username_case_preserved(ok).as_deref(), Ok(ok), "{ok}");
    }
}

/// RFC 8265 §3.4 rule 5: the Bidi Rule of RFC 5893 for right-to-left names.
#[test]
fn username_bidi_rule() {
    // Hebrew only: fine
    assert!(username_case_preserved("\u{5e9}\u{5dc}\u{5d5}\u{5dd}").is_ok());
    // Arabic letters then European digits: fine (ends with EN)
    assert!(username_case_preserved("\u{627}\u{644}\u{639}1").is_ok());
    // starts with a left-to-right letter but holds Hebrew: refused
    assert_eq!(username_case_preserved("a\u{5d0}"), Err(PrecisError::Bidi));
    // RTL label with an L character inside: refused
    assert_eq!(
        username_case_preserved("\u{5d0}a\u{5d1}"),
        Err(PrecisError::Bidi)
    );
    // EN and AN mixed: refused
    assert_eq!(
        username_case_preserved("\u{627}1\u{661}"),
        Err(PrecisError::Bidi)
    );
    // LTR names are not subject to the rule
    assert!(username_case_preserved("abc123").is_ok());
}

/// RFC 8265 §4.3, valid passwords.
#[test]
fn rfc8265_4_3_valid_passwords() {
    for (input, out) in [
        // 12: ASCII spaces are allowed in passwords (FreeformClass)
        (
            "correct horse battery staple",
            "correct horse battery staple",
        ),
        // 13: case is preserved and significant
        (
            "Correct Horse Battery Staple",
            "Correct Horse Battery Staple",
        ),
        // 14: non-ASCII letters "πßå"
        ("\u{3c0}\u{df}\u{e5}", "\u{3c0}\u{df}\u{e5}"),
        // 15: symbols are allowed: "Jack of ♦s"
        ("Jack of \u{2666}s", "Jack of \u{2666}s"),
        // 16: U+1680 OGHAM SPACE MARK is mapped to U+0020
        ("foo\u{1680}bar", "foo bar"),
    ] {
        assert_eq!(opaque_string(input).as_deref(), Ok(out), "{input:?}");
    }
    assert_eq!(
        compare_passwords("Correct Horse", "correct horse"),
        Ok(false)
    );
}

/// RFC 8265 §4.3, invalid passwords.
#[test]
fn rfc8265_4_3_invalid_passwords() {
    // 17: the empty string
    assert_eq!(opaque_string(""), Err(PrecisError::Empty));
    // 18: "my cat is a \tby": U+0009 is a control character
    assert_eq!(disallowed(opaque_string("my cat is a \tby")), 0x09);
}

/// RFC 8265 §4.2: no width mapping for passwords, other spaces mapped, NFC, controls refused.
#[test]
fn password_rules() {
    // fullwidth letters are kept (they are FREE_PVAL through HasCompat)
    let wide = "\u{ff30}\u{ff41}\u{ff53}\u{ff53}";
    assert_eq!(opaque_string(wide).as_deref(), Ok(wide));
    assert_eq!(compare_passwords(wide, "Pass"), Ok(false));
    // every non-ASCII space becomes U+0020
    for sp in [
        '\u{a0}', '\u{2000}', '\u{2009}', '\u{202f}', '\u{205f}', '\u{3000}',
    ] {
        assert_eq!(
            opaque_string(&format!("a{sp}b")).as_deref(),
            Ok("a b"),
            "{sp:?}"
        );
    }
    // NFC
    assert_eq!(compare_passwords("e\u{301}", "\u{e9}"), Ok(true));
    // controls, ignorables, noncharacters and private use are refused; symbols are not
    assert_eq!(disallowed(opaque_string("pass\r\n")), 0x0d);
    assert_eq!(disallowed(opaque_string("pa\u{200b}ss")), 0x200b);
    assert_eq!(disallowed(opaque_string("\u{ffff}")), 0xffff);
    assert_eq!(disallowed(opaque_string("\u{f0000}")), 0xf0000);
    assert!(opaque_string("\u{a9} \u{2014} \u{265a} \u{fb01}").is_ok());
}

/// Digest user names are space-separated userparts (RFC 8265 §3.1), so RFC 7616's own
/// example "Jäsøn Doe" is valid; each userpart is enforced.
#[test]
fn digest_usernames_with_userparts() {
    assert_eq!(
        digest_username("J\u{e4}s\u{f8}n Doe").as_deref(),
        Ok("J\u{e4}s\u{f8}n Doe")
    );
    // decomposed input is composed per userpart
    assert_eq!(
        digest_username("Ja\u{308}s\u{f8}n Doe").as_deref(),
        Ok("J\u{e4}s\u{f8}n Doe")
    );
    // fullwidth userparts are narrowed; the separators are kept
    assert_eq!(digest_username("\u{ff21}  B").as_deref(), Ok("A  B"));
    assert_eq!(digest_username(" a"), Err(PrecisError::Empty));
    assert_eq!(digest_username("a "), Err(PrecisError::Empty));
    assert_eq!(digest_username(""), Err(PrecisError::Empty));
    assert_eq!(disallowed(digest_username("a \u{265a}")), 0x265a);
}

fn register() -> Request<'static> {
    Request {
        method: "REGISTER",
        uri: "sip:ims.example.com",
        body: b"",
        cnonce: "0a4f113b",
        nc: 1,
    }
}

/// RFC 7616 §4 end to end: with `charset=UTF-8` a client typing a fullwidth name and a
/// password with a no-break space produces the same credentials as one typing the prepared
/// strings, and the server that stores the prepared name and password verifies them. Without
/// `charset`, nothing is prepared (the hashes differ).
#[test]
fn digest_answer_prepares_name_and_password_for_utf8() {
    let server = DigestServer::new(b"a 32-octet secret shared by the S-CSCFs");
    let now = Duration::from_secs(1_700_000_000);
    let mut ch = server
        .challenge("ims.example.com", Algorithm::Sha256, now, &[7; 16])
        .unwrap();
    ch.charset = Some(Cow::Borrowed("UTF-8"));
    let www = ch.to_string();
    let ch = Challenge::parse(&www).unwrap();
    assert!(ch.charset_utf8());

    let typed_name = "\u{ff41}lice"; // "ａlice"
    let typed_pass = "s\u{e9}same\u{a0}ouvre-toi".as_bytes(); // é, NO-BREAK SPACE
    let (name, pass) = prepare_utf8(typed_name, typed_pass).unwrap();
    assert_eq!(name, "alice");
    assert_eq!(pass, "s\u{e9}same ouvre-toi".as_bytes());

    let a = digest::answer(&ch, typed_name, typed_pass, &register()).unwrap();
    let b = digest::answer(&ch, &name, &pass, &register()).unwrap();
    assert_eq!(a.to_string(), b.to_string());
    assert_eq!(a.username, "alice");
    let auth = a.to_string();
    let creds = Credentials::parse(&auth).unwrap();
    server
        .verify(&creds, "REGISTER", b"", Secret::Password(&pass), now, None)
        .unwrap();
    // the unprepared password does not verify
    assert_eq!(
        server.verify(
            &creds,
            "REGISTER",
            b"",
            Secret::Password(typed_pass),
            now,
            None
        ),
        Err(AuthError::WrongResponse)
    );

    // a name the profile refuses is an error on the client, mapped to 400 on a server
    let err = digest::answer(&ch, "alice\u{265a}", b"pw", &register()).unwrap_err();
    assert!(
        matches!(
            err,
            AuthError::Precis {
                what: "username",
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(err.sip_status(), 400);
    let err = digest::answer(&ch, "alice", b"pw\x07", &register()).unwrap_err();
    assert!(
        matches!(
            err,
            AuthError::Precis {
                what: "password",
                ..
            }
        ),
        "{err:?}"
    );
    // a password that is not UTF-8 is used as octets
    assert!(digest::answer(&ch, "alice", &[0xff, 0xfe], &register()).is_ok());

    // without charset=UTF-8 no preparation happens
    let plain = server
        .challenge("ims.example.com", Algorithm::Sha256, now, &[7; 16])
        .unwrap();
    let c = digest::answer(&plain, typed_name, typed_pass, &register()).unwrap();
    assert_eq!(c.username, typed_name);
    assert_ne!(c.response, a.response);
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(512))]
    /// RFC 8264 §7 requires enforcement to be idempotent: enforcing an enforced string gives
    /// it back unchanged. Also: an accepted result is never empty and is in NFC.
    #[test]
    fn enforcement_is_idempotent(s in "\\PC{0,12}|[\\u{ff01}-\\u{ffee}a-z \\u{300}-\\u{36f}\\u{3000}]{0,12}") {
        if let Ok(u) = username_case_preserved(&s) {
            proptest::prop_assert!(!u.is_empty());
            proptest::prop_assert_eq!(username_case_preserved(&u), Ok(u.clone()));
        }
        if let Ok(u) = digest_username(&s) {
            proptest::prop_assert_eq!(digest_username(&u), Ok(u.clone()));
        }
        if let Ok(p) = opaque_string(&s) {
            proptest::prop_assert!(!p.is_empty());
            proptest::prop_assert_eq!(opaque_string(&p), Ok(p.clone()));
        }
    }
}
