//! The server side of Digest and Digest-AKA: stateless nonces (expiry, integrity tag, binding
//! to realm and algorithm), stale detection, nonce-count replay, RFC 2069 mode, the AKA
//! resynchronisation path, and parse/print round trips.

use ims_auth::aka::{self, AuthVector, SqnGenerator, Usim};
use ims_auth::digest::{self, Request};
use ims_auth::encoding::{base64_decode, base64_encode};
use ims_auth::milenage::{Milenage, OperatorKey};
use ims_auth::{Algorithm, AuthError, Challenge, Credentials, DigestServer, NonceCounts, Secret};
use proptest::prelude::*;
use std::time::Duration;

const REALM: &str = "ims.example.com";
const T0: Duration = Duration::from_secs(1_000_000);

fn req(nc: u32) -> Request<'static> {
    Request {
        method: "REGISTER",
        uri: "sip:ims.example.com",
        body: b"",
        cnonce: "deadbeef",
        nc,
    }
}

fn answer(ch: &Challenge<'_>, nc: u32) -> Credentials<'static> {
    digest::answer(ch, "alice@ims.example.com", b"pw", &req(nc)).unwrap()
}

fn verify(
    s: &DigestServer,
    c: &Credentials<'_>,
    now: Duration,
    counts: Option<&mut NonceCounts>,
) -> Result<ims_auth::Verified, AuthError> {
    s.verify(c, "REGISTER", b"", Secret::Password(b"pw"), now, counts)
}

#[test]
fn fresh_nonce_verifies_and_expires_as_stale() {
    let s = DigestServer::new(b"secret").nonce_lifetime(Duration::from_secs(30));
    let ch = s.challenge(REALM, Algorithm::Md5, T0, &[1; 16]).unwrap();
    let c = answer(&ch, 1);
    let v = verify(&s, &c, T0 + Duration::from_secs(29), None).unwrap();
    assert_eq!(v.nonce_expires, T0.as_secs() + 30);
    let e = verify(&s, &c, T0 + Duration::from_secs(30), None).unwrap_err();
    assert_eq!(e, AuthError::Stale);
    assert!(e.is_stale() && e.sip_status() == 401);
    // an expired nonce with a wrong password is not "stale": the client must not retry blindly
    let mut bad = c.clone();
    bad.response = answer(&ch, 2).response; // right format, wrong nc in the hash
    assert_eq!(
        verify(&s, &bad, T0 + Duration::from_secs(31), None),
        Err(AuthError::WrongResponse)
    );
}

#[test]
fn nonce_from_another_server_realm_or_algorithm_is_invalid() {
    let s = DigestServer::new(b"secret");
    let other = DigestServer::new(b"other secret");
    let ch = s.challenge(REALM, Algorithm::Sha256, T0, &[2; 16]).unwrap();
    let c = answer(&ch, 1);
    assert_eq!(verify(&other, &c, T0, None), Err(AuthError::InvalidNonce));
    // realm swapped
    let mut ch2 = ch.clone();
    ch2.realm = "evil.example".into();
    assert_eq!(
        verify(&s, &answer(&ch2, 1), T0, None),
        Err(AuthError::InvalidNonce)
    );
    // algorithm downgraded to MD5 by a man in the middle
    let mut ch3 = ch.clone();
    ch3.algorithm = Some("MD5".into());
    assert_eq!(
        verify(&s, &answer(&ch3, 1), T0, None),
        Err(AuthError::InvalidNonce)
    );
    // any bit of the nonce flipped
    let raw = base64_decode(&ch.nonce).unwrap();
    for i in 0..raw.len() {
        let mut b = raw.clone();
        b[i] ^= 0x01;
        let mut ch4 = ch.clone();
        ch4.nonce = base64_encode(&b).into();
        assert_eq!(
            verify(&s, &answer(&ch4, 1), T0, None),
            Err(AuthError::InvalidNonce),
            "octet {i}"
        );
    }
    // garbage
    let mut ch5 = ch;
    ch5.nonce = "not base64!".into();
    assert_eq!(
        verify(&s, &answer(&ch5, 1), T0, None),
        Err(AuthError::InvalidNonce)
    );
}

#[test]
fn nonce_count_must_increase() {
    let s = DigestServer::new(b"secret");
    let mut counts = NonceCounts::new(100);
    let ch = s.challenge(REALM, Algorithm::Md5, T0, &[3; 16]).unwrap();
    verify(&s, &answer(&ch, 1), T0, Some(&mut counts)).unwrap();
    verify(&s, &answer(&ch, 2), T0, Some(&mut counts)).unwrap();
    assert_eq!(
        verify(&s, &answer(&ch, 2), T0, Some(&mut counts)),
        Err(AuthError::Replay { nc: 2, last: 2 })
    );
    assert_eq!(
        verify(&s, &answer(&ch, 1), T0, Some(&mut counts)),
        Err(AuthError::Replay { nc: 1, last: 2 })
    );
    verify(&s, &answer(&ch, 5), T0, Some(&mut counts)).unwrap();
    // another nonce has its own count
    let ch2 = s.challenge(REALM, Algorithm::Md5, T0, &[4; 16]).unwrap();
    verify(&s, &answer(&ch2, 1), T0, Some(&mut counts)).unwrap();
    assert_eq!(counts.len(), 2);
}

#[test]
fn qop_is_required_unless_rfc2069_is_allowed() {
    let s = DigestServer::new(b"secret");
    let mut ch = s.challenge(REALM, Algorithm::Md5, T0, &[5; 16]).unwrap();
    ch.qop = None;
    let c = answer(&ch, 1);
    assert_eq!(
        (c.qop, c.nc.as_ref(), c.cnonce.as_ref()),
        (None, None, None)
    );
    assert_eq!(verify(&s, &c, T0, None), Err(AuthError::QopRequired));
    let s = s.allow_rfc2069(true);
    assert!(verify(&s, &c, T0, None).is_ok());
}

#[test]
fn salt_length_is_bounded() {
    let s = DigestServer::new(b"secret");
    assert!(s.challenge(REALM, Algorithm::Md5, T0, &[0; 7]).is_err());
    assert!(s.challenge(REALM, Algorithm::Md5, T0, &[0; 65]).is_err());
    assert!(s
        .challenge(REALM, Algorithm::AkaV1Md5, T0, &[0; 16])
        .is_err());
}

#[test]
fn debug_hides_the_server_secret() {
    let s = format!("{:?}", DigestServer::new(b"hunter2-hunter2"));
    assert!(!s.contains("hunter2") && !s.contains("104"), "{s}");
    let p = format!("{:?}", Secret::Password(b"hunter2"));
    assert!(!p.contains("hunter2"));
}

fn aka_parties() -> (Milenage, SqnGenerator, Usim) {
    let k = *b"0123456789abcdef";
    let op = *b"ims-rs operator!";
    (
        Milenage::new(&k, OperatorKey::Op(op)),
        SqnGenerator::new(5),
        Usim::new(Milenage::new(&k, OperatorKey::Op(op)), 5),
    )
}

#[test]
fn aka_v1_and_v2_register() {
    for alg in [Algorithm::AkaV1Md5, Algorithm::AkaV2Md5] {
        let (hss, mut sqn, mut usim) = aka_parties();
        let s = DigestServer::new(b"secret");
        let av = AuthVector::generate(&hss, [alg as u8 + 1; 16], sqn.next_sqn(), [0x80, 0]);
        let ch = s.aka_challenge(REALM, alg, &av, T0).unwrap();
        let text = ch.to_string();
        assert!(text.contains(&format!("algorithm={alg}")), "{text}");
        let ch = Challenge::parse(&text).unwrap();
        let (c, keys) =
            digest::answer_aka(&ch, &mut usim, "imsi@ims.example.com", &req(1)).unwrap();
        let keys = keys.unwrap();
        assert_eq!((keys.ck, keys.ik), (av.ck, av.ik));
        let pw = digest::aka_password(alg, &av).unwrap();
        let text = c.to_string();
        let c = Credentials::parse(&text).unwrap();
        s.verify(&c, "REGISTER", b"", Secret::Password(&pw), T0, None)
            .unwrap_or_else(|e| panic!("{alg}: {e}"));
        // the other AKA version's password does not verify
        let other = if alg == Algorithm::AkaV1Md5 {
            Algorithm::AkaV2Md5
        } else {
            Algorithm::AkaV1Md5
        };
        let wrong = digest::aka_password(other, &av).unwrap();
        assert_eq!(
            s.verify(&c, "REGISTER", b"", Secret::Password(&wrong), T0, None),
            Err(AuthError::WrongResponse)
        );
        // an AKA nonce is not accepted for a plain algorithm
        let mut plain = c.clone();
        plain.algorithm = Some("MD5".into());
        assert_eq!(
            s.verify(&plain, "REGISTER", b"", Secret::Password(&pw), T0, None),
            Err(AuthError::InvalidNonce)
        );
    }
}

#[test]
fn aka_sync_failure_resynchronises_the_network() {
    let (hss, mut sqn, mut usim) = aka_parties();
    let s = DigestServer::new(b"secret");
    // the UE has already seen SQNs the network forgot (e.g. HSS restored from a backup)
    for _ in 0..3 {
        let av = AuthVector::generate(&hss, [9; 16], sqn.next_sqn(), [0x80, 0]);
        usim.authenticate(&av.rand, &av.autn).unwrap();
    }
    let mut forgetful = SqnGenerator::new(5);
    let av = AuthVector::generate(&hss, [10; 16], forgetful.next_sqn(), [0x80, 0]);
    let ch = s
        .aka_challenge(REALM, Algorithm::AkaV1Md5, &av, T0)
        .unwrap();
    let (c, keys) = digest::answer_aka(&ch, &mut usim, "imsi@ims.example.com", &req(1)).unwrap();
    assert!(keys.is_none());
    let text = c.to_string();
    let c = Credentials::parse(&text).unwrap();
    assert!(c.auts.is_some());
    // the answer is not a valid RES
    let pw = digest::aka_password(Algorithm::AkaV1Md5, &av).unwrap();
    assert!(s
        .verify(&c, "REGISTER", b"", Secret::Password(&pw), T0, None)
        .is_err());
    // the S-CSCF extracts RAND and AUTS, the HSS recovers SQN_MS and moves on
    let r = s.verify_resync(&c, "REGISTER", b"", T0).unwrap();
    assert_eq!(r.rand, av.rand);
    let sqn_ms = aka::resync(&hss, &r.rand, &r.auts).unwrap();
    forgetful.resync(sqn_ms);
    let av2 = AuthVector::generate(&hss, [11; 16], forgetful.next_sqn(), [0x80, 0]);
    let ch2 = s
        .aka_challenge(REALM, Algorithm::AkaV1Md5, &av2, T0)
        .unwrap();
    let (c2, keys2) = digest::answer_aka(&ch2, &mut usim, "imsi@ims.example.com", &req(1)).unwrap();
    assert!(keys2.is_some());
    let pw2 = digest::aka_password(Algorithm::AkaV1Md5, &av2).unwrap();
    s.verify(&c2, "REGISTER", b"", Secret::Password(&pw2), T0, None)
        .unwrap();
}

#[test]
fn aka_mac_failure_when_the_network_has_the_wrong_key() {
    let (_, mut sqn, mut usim) = aka_parties();
    let impostor = Milenage::new(&[0; 16], OperatorKey::Opc([0; 16]));
    let av = AuthVector::generate(&impostor, [12; 16], sqn.next_sqn(), [0x80, 0]);
    let s = DigestServer::new(b"secret");
    let ch = s
        .aka_challenge(REALM, Algorithm::AkaV1Md5, &av, T0)
        .unwrap();
    assert_eq!(
        digest::answer_aka(&ch, &mut usim, "imsi", &req(1)).unwrap_err(),
        AuthError::MacFailure
    );
}

#[test]
fn ims_initial_register_credentials_parse() {
    // TS 24.229 §5.1.1.2.1: the first REGISTER carries empty nonce and response
    let c = Credentials::parse(
        r#"Digest username="001010000000001@ims.mnc001.mcc001.3gppnetwork.org", realm="ims.mnc001.mcc001.3gppnetwork.org", uri="sip:ims.mnc001.mcc001.3gppnetwork.org", nonce="", response="", integrity-protected="no""#,
    )
    .unwrap();
    assert_eq!(c.nonce, "");
    assert_eq!(c.param("integrity-protected").as_deref(), Some("no"));
    assert_eq!(Credentials::parse(&c.to_string()).unwrap(), c);
}

#[test]
fn malformed_values_are_rejected_with_a_reason() {
    use AuthError::*;
    let cases: &[(&str, AuthError)] = &[
        (r#"Basic realm="x""#, NotDigest("Basic".into())),
        (r#"Digest nonce="n""#, MissingParam("realm")),
        (
            r#"Digest realm="a", realm="b", nonce="n""#,
            BadParam("realm"),
        ),
    ];
    for (s, e) in cases {
        assert_eq!(&Challenge::parse(s).unwrap_err(), e, "{s}");
    }
    let base = r#"Digest username="u", realm="r", nonce="n", uri="sip:x", response="00""#;
    assert_eq!(
        Credentials::parse(&format!("{base}, qop=auth, cnonce=\"c\", nc=1")).unwrap_err(),
        BadParam("nc")
    );
    assert_eq!(
        Credentials::parse(&format!("{base}, qop=auth, nc=00000001")).unwrap_err(),
        MissingParam("cnonce")
    );
    assert_eq!(
        Credentials::parse(&format!("{base}, qop=bogus, cnonce=\"c\", nc=00000001")).unwrap_err(),
        BadParam("qop")
    );
    assert!(matches!(
        Credentials::parse("Digest username=").unwrap_err(),
        Syntax(_)
    ));
    assert_eq!(
        Credentials::parse(&format!("{base}, algorithm=XYZ"))
            .unwrap()
            .algorithm(),
        Err(UnsupportedAlgorithm("XYZ".into()))
    );
}

fn value() -> impl Strategy<Value = String> {
    proptest::string::string_regex("[ -~]{0,12}").unwrap()
}

proptest! {
    #[test]
    fn challenge_print_parse_round_trip(realm in value(), nonce in value(), opaque in proptest::option::of(value()), stale: bool, alg in 0usize..8) {
        let c = Challenge {
            realm: realm.into(),
            nonce: nonce.into(),
            algorithm: Some(Algorithm::ALL[alg].as_str().into()),
            qop: Some("auth,auth-int".into()),
            opaque: opaque.map(Into::into),
            stale,
            ..Challenge::default()
        }.with_param("ck", "00112233");
        let text = c.to_string();
        let back = Challenge::parse(&text).unwrap();
        prop_assert_eq!(back, c);
    }

    #[test]
    fn credentials_print_parse_round_trip(user in value(), uri in value(), cnonce in value(), nc: u32, alg in 0usize..8) {
        let ch = Challenge {
            realm: "r".into(),
            nonce: "n".into(),
            algorithm: Some(Algorithm::ALL[alg].as_str().into()),
            qop: Some("auth".into()),
            ..Challenge::default()
        };
        let r = Request { method: "INVITE", uri: &uri, body: b"", cnonce: &cnonce, nc };
        let c = digest::answer(&ch, &user, b"pw", &r).unwrap();
        let text = c.to_string();
        prop_assert_eq!(Credentials::parse(&text).unwrap(), c);
    }
}

/// Every header value of tests/vectors/auth: the good ones parse (as a challenge or as
/// credentials) and print back equal, the `bad-*` ones are rejected by both parsers
/// (`bad-cred-*`: by the credentials parser; a challenge ignores parameters it does not know).
#[test]
fn vector_files_parse_or_fail_as_labelled() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/vectors/auth");
    let mut n = 0;
    for e in std::fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        if !name.ends_with(".txt") || name.starts_with("base64") {
            continue;
        }
        n += 1;
        let text = std::fs::read_to_string(&p).unwrap();
        let ch = Challenge::parse(&text);
        let cr = Credentials::parse(&text);
        if name.starts_with("bad-cred-") {
            assert!(cr.is_err(), "{name} parsed as credentials");
            continue;
        }
        if name.starts_with("bad-") {
            assert!(ch.is_err() && cr.is_err(), "{name} parsed");
            continue;
        }
        assert!(ch.is_ok() || cr.is_ok(), "{name}: {ch:?} {cr:?}");
        if let Ok(c) = ch {
            assert_eq!(Challenge::parse(&c.to_string()).unwrap(), c, "{name}");
        }
        if let Ok(c) = cr {
            assert_eq!(Credentials::parse(&c.to_string()).unwrap(), c, "{name}");
        }
    }
    assert!(n >= 20, "only {n} vector files");
}

/// Found by the fuzzer: a quoted-pair holding a control character (`\` NUL) unquotes to a raw
/// NUL, which must be written back as a quoted-pair, not as qdtext.
#[test]
fn control_characters_print_as_quoted_pairs() {
    let c = Challenge::parse("Digest realm=\"a\\\u{0}b\\\u{7f}\", nonce=\"n\"").unwrap();
    assert_eq!(c.realm, "a\u{0}b\u{7f}");
    let text = c.to_string();
    assert_eq!(Challenge::parse(&text).unwrap(), c, "{text:?}");
}

/// `verify_if` gives `accept` what `check_nonce` finds, answers `Ok(None)` (recording no count)
/// when it refuses, and otherwise exactly what `verify` answers, for good, stale, replayed,
/// foreign, wrong-algorithm and AKA credentials.
#[test]
fn verify_if_checks_the_nonce_once_and_answers_as_verify() {
    let s = DigestServer::new(b"secret").nonce_lifetime(Duration::from_secs(30));
    let other = DigestServer::new(b"other secret");
    let ch = s.challenge(REALM, Algorithm::Md5, T0, &[7; 16]).unwrap();
    let (hss, mut sqn, mut usim) = aka_parties();
    let av = AuthVector::generate(&hss, [9; 16], sqn.next_sqn(), [0x80, 0]);
    let aka_ch = s
        .aka_challenge(REALM, Algorithm::AkaV1Md5, &av, T0)
        .unwrap();
    let (aka, _) = digest::answer_aka(&aka_ch, &mut usim, "imsi@ims.example.com", &req(1)).unwrap();
    let aka_pw = digest::aka_password(Algorithm::AkaV1Md5, &av).unwrap();
    let mut unknown_alg = answer(&ch, 3);
    unknown_alg.algorithm = Some("no-such-alg".into());
    let mut wrong = answer(&ch, 4);
    wrong.response = answer(&ch, 9).response;
    let later = T0 + Duration::from_secs(31);
    let cases: Vec<(Credentials<'static>, Vec<u8>, Duration, &DigestServer)> = vec![
        (answer(&ch, 1), b"pw".to_vec(), T0, &s),
        (answer(&ch, 1), b"pw".to_vec(), T0, &s), // a replay of nc 1
        (answer(&ch, 2), b"pw".to_vec(), later, &s), // stale
        (answer(&ch, 2), b"pw".to_vec(), T0, &other),
        (wrong, b"pw".to_vec(), T0, &s),
        (unknown_alg, b"pw".to_vec(), T0, &s),
        (aka.clone(), aka_pw.clone(), T0, &s),
    ];
    for (i, (c, pw, now, srv)) in cases.iter().enumerate() {
        let mut counts_a = NonceCounts::new(100);
        let mut counts_b = NonceCounts::new(100);
        if i == 1 {
            // the replay: nc 1 already seen on both sides
            verify(srv, c, *now, Some(&mut counts_a)).unwrap();
            verify(srv, c, *now, Some(&mut counts_b)).unwrap();
        }
        let expected = srv.verify(
            c,
            "REGISTER",
            b"",
            Secret::Password(pw),
            *now,
            Some(&mut counts_a),
        );
        let algorithm = c.algorithm().unwrap_or(Algorithm::Md5);
        let checked = srv.check_nonce(&c.nonce, &c.realm, algorithm, *now).ok();
        let mut seen = None;
        let got = srv.verify_if(
            c,
            "REGISTER",
            b"",
            Secret::Password(pw),
            *now,
            Some(&mut counts_b),
            |n| {
                seen = Some(n.cloned());
                true
            },
        );
        assert_eq!(
            seen,
            Some(checked.clone()),
            "case {i}: accept sees check_nonce's answer"
        );
        assert_eq!(got, expected.map(Some), "case {i}");
        assert_eq!(counts_a.len(), counts_b.len(), "case {i}");
        // refused: no verification, no count recorded
        let mut counts_c = NonceCounts::new(100);
        let refused = srv.verify_if(
            c,
            "REGISTER",
            b"",
            Secret::Password(pw),
            *now,
            Some(&mut counts_c),
            |_| false,
        );
        assert_eq!(refused, Ok(None), "case {i}");
        assert_eq!(counts_c.len(), 0, "case {i}");
    }
    // the S-CSCF's use: accept only the nonce carrying the RAND it is waiting for
    let rand_of = |n: Option<&ims_auth::digest::IssuedNonce>| n.and_then(|n| n.rand());
    let mut got_rand = None;
    let v = s.verify_if(
        &aka,
        "REGISTER",
        b"",
        Secret::Password(&aka_pw),
        T0,
        None,
        |n| {
            got_rand = rand_of(n);
            got_rand == Some(av.rand)
        },
    );
    assert!(matches!(v, Ok(Some(_))), "{v:?}");
    assert_eq!(got_rand, Some(av.rand));
    let v = s.verify_if(
        &aka,
        "REGISTER",
        b"",
        Secret::Password(&aka_pw),
        T0,
        None,
        |n| rand_of(n) == Some([0; 16]),
    );
    assert_eq!(v, Ok(None));
}

/// `verify_kept` (the nonce recognised by the text kept from the challenge, no HMAC) answers
/// exactly as `verify` for every answer carrying the kept nonce — good, replayed, stale,
/// wrong response, AKA — and `Ok(None)` (recording nothing) for any other nonce, realm or
/// algorithm; the `_kept` challenges are the plain ones.
#[test]
fn verify_kept_answers_as_verify_for_the_kept_nonce_only() {
    let s = DigestServer::new(b"secret").nonce_lifetime(Duration::from_secs(30));
    let other = DigestServer::new(b"other secret");
    let (ch, kept) = s
        .challenge_kept(REALM, Algorithm::Md5, T0, &[7; 16])
        .unwrap();
    assert_eq!(
        ch,
        s.challenge(REALM, Algorithm::Md5, T0, &[7; 16]).unwrap()
    );
    assert_eq!(kept.nonce(), ch.nonce);
    assert_eq!(
        Some(kept.issued()),
        s.check_nonce(&ch.nonce, REALM, Algorithm::Md5, T0)
            .ok()
            .as_ref()
    );
    let (hss, mut sqn, mut usim) = aka_parties();
    let av = AuthVector::generate(&hss, [9; 16], sqn.next_sqn(), [0x80, 0]);
    let (aka_ch, aka_kept) = s
        .aka_challenge_kept(REALM, Algorithm::AkaV1Md5, &av, T0)
        .unwrap();
    assert_eq!(
        aka_ch,
        s.aka_challenge(REALM, Algorithm::AkaV1Md5, &av, T0)
            .unwrap()
    );
    assert!(s
        .aka_challenge_kept(REALM, Algorithm::Md5, &av, T0)
        .is_err());
    assert!(s
        .challenge_kept(REALM, Algorithm::AkaV1Md5, T0, &[7; 16])
        .is_err());
    assert!(s
        .challenge_kept(REALM, Algorithm::Md5, T0, &[7; 4])
        .is_err());
    let (aka, _) = digest::answer_aka(&aka_ch, &mut usim, "imsi@ims.example.com", &req(1)).unwrap();
    let aka_pw = digest::aka_password(Algorithm::AkaV1Md5, &av).unwrap();
    let mut unknown_alg = answer(&ch, 3);
    unknown_alg.algorithm = Some("no-such-alg".into());
    let mut sha = answer(&ch, 3);
    sha.algorithm = Some("SHA-256".into());
    let mut realm = answer(&ch, 3);
    realm.realm = "evil.example".into();
    let mut wrong = answer(&ch, 4);
    wrong.response = answer(&ch, 9).response;
    let mut flipped = answer(&ch, 5);
    let mut n = flipped.nonce.to_string().into_bytes();
    n[3] ^= 1;
    flipped.nonce = String::from_utf8(n).unwrap().into();
    let foreign = other
        .challenge(REALM, Algorithm::Md5, T0, &[7; 16])
        .unwrap();
    let later = T0 + Duration::from_secs(31);
    let cases: Vec<(Credentials<'static>, Vec<u8>, Duration, bool)> = vec![
        (answer(&ch, 1), b"pw".to_vec(), T0, true),
        (answer(&ch, 1), b"pw".to_vec(), T0, true), // a replay of nc 1
        (answer(&ch, 2), b"pw".to_vec(), later, true), // stale
        (wrong, b"pw".to_vec(), T0, true),
        (aka.clone(), aka_pw.clone(), T0, true),
        (aka.clone(), aka_pw.clone(), later, true),
        (unknown_alg, b"pw".to_vec(), T0, false),
        (sha, b"pw".to_vec(), T0, false),
        (realm, b"pw".to_vec(), T0, false),
        (flipped, b"pw".to_vec(), T0, false),
        (answer(&foreign, 1), b"pw".to_vec(), T0, false),
    ];
    for (i, (c, pw, now, ours)) in cases.iter().enumerate() {
        let kept = if c.algorithm().is_ok_and(|a| a.is_aka()) {
            &aka_kept
        } else {
            &kept
        };
        assert_eq!(kept.answered_in(c), *ours, "case {i}");
        let mut counts_a = NonceCounts::new(100);
        let mut counts_b = NonceCounts::new(100);
        if i == 1 {
            verify(&s, c, *now, Some(&mut counts_a)).unwrap();
            verify(&s, c, *now, Some(&mut counts_b)).unwrap();
        }
        let got = s.verify_kept(
            c,
            kept,
            "REGISTER",
            b"",
            Secret::Password(pw),
            *now,
            Some(&mut counts_b),
        );
        if *ours {
            let expected = s.verify(
                c,
                "REGISTER",
                b"",
                Secret::Password(pw),
                *now,
                Some(&mut counts_a),
            );
            assert_eq!(got, expected.map(Some), "case {i}");
        } else {
            assert_eq!(got, Ok(None), "case {i}");
        }
        assert_eq!(counts_a.len(), counts_b.len(), "case {i}");
    }
}
