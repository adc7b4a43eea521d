//! Digest against the worked examples of the RFCs: RFC 2617 §3.5, RFC 7616 §3.9.1 (MD5 and
//! SHA-256), the SHA-512/256 test vector of FIPS 180-4 (the hash of RFC 8760), and AKAv1-MD5 /
//! AKAv2-MD5 (RFC 3310 / RFC 4169, which give no numeric example) computed independently from
//! TS 35.208 test set 1 with the RustCrypto primitives.

use hmac::{Hmac, Mac};
use ims_auth::digest::{self, ha1, DigestInput, Request};
use ims_auth::{Algorithm, Challenge, Credentials, DigestServer, Qop, Secret};
use md5::{Digest, Md5};
use std::time::Duration;

fn md5_hex(s: &[u8]) -> String {
    Md5::digest(s).iter().map(|b| format!("{b:02x}")).collect()
}

/// RFC 2617 §3.5: GET /dir/index.html as Mufasa, password "Circle Of Life".
#[test]
fn rfc2617_section_3_5() {
    let creds = Credentials::parse(
        r#"Digest username="Mufasa",
                 realm="testrealm@host.com",
                 nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093",
                 uri="/dir/index.html",
                 qop=auth,
                 nc=00000001,
                 cnonce="0a4f113b",
                 response="6629fae49393a05397450978507c4ef1",
                 opaque="5ccc069c403ebaf9f0171e9517f40e41""#,
    )
    .unwrap();
    let input = creds.input("GET", b"").unwrap();
    let h1 = ha1(
        Algorithm::Md5,
        "Mufasa",
        "testrealm@host.com",
        b"Circle Of Life",
    );
    assert_eq!(input.response(&h1), "6629fae49393a05397450978507c4ef1");
    assert_eq!(creds.response, input.response(&h1));

    // and as the UAC, from the RFC's challenge
    let ch = Challenge::parse(
        r#"Digest realm="testrealm@host.com", qop="auth,auth-int", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque="5ccc069c403ebaf9f0171e9517f40e41""#,
    )
    .unwrap();
    let req = Request {
        method: "GET",
        uri: "/dir/index.html",
        body: b"",
        cnonce: "0a4f113b",
        nc: 1,
    };
    let ans = digest::answer(&ch, "Mufasa", b"Circle Of Life", &req).unwrap();
    assert_eq!(ans.response, "6629fae49393a05397450978507c4ef1");
    assert_eq!(
        ans.opaque.as_deref(),
        Some("5ccc069c403ebaf9f0171e9517f40e41")
    );
    assert_eq!(ans.qop, Some(Qop::Auth));
}

const RFC7616_CHALLENGE: &str = r#"Digest
       realm="http-auth@example.org",
       qop="auth, auth-int",
       algorithm=SHA-256,
       nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",
       opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS""#;

/// RFC 7616 §3.9.1: the same request with MD5 and with SHA-256.
#[test]
fn rfc7616_section_3_9_1() {
    let ch = Challenge::parse(RFC7616_CHALLENGE).unwrap();
    assert_eq!(ch.algorithm().unwrap(), Algorithm::Sha256);
    assert!(ch.offers(Qop::Auth) && ch.offers(Qop::AuthInt));
    let req = Request {
        method: "GET",
        uri: "/dir/index.html",
        body: b"",
        cnonce: "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
        nc: 1,
    };
    let sha = digest::answer(&ch, "Mufasa", b"Circle of Life", &req).unwrap();
    assert_eq!(
        sha.response,
        "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"
    );
    assert_eq!(sha.nc.as_deref(), Some("00000001"));
    let mut md5_ch = ch.clone();
    md5_ch.algorithm = Some("MD5".into());
    let md5 = digest::answer(&md5_ch, "Mufasa", b"Circle of Life", &req).unwrap();
    assert_eq!(md5.response, "8ca523f5e9506fed4657c9700eebdbec");
    // the credentials print and parse back
    let printed = sha.to_string();
    assert_eq!(Credentials::parse(&printed).unwrap(), sha);
}

/// FIPS 180-4 / NIST example: SHA-512/256("abc").
#[test]
fn sha512_256_known_answer() {
    assert_eq!(
        Algorithm::Sha512_256.h(b"abc"),
        "53048e2681941ef99b2e29b76b4c7dabe4c2d0c634fc6d46e0e2f13107e7af23"
    );
}

/// Every algorithm and qop: the UAC's answer verifies at the server, a wrong password and a
/// tampered body do not.
#[test]
fn every_algorithm_round_trips_through_the_server() {
    let server = DigestServer::new(&[9; 32]);
    let now = Duration::from_secs(1000);
    for alg in Algorithm::ALL.into_iter().filter(|a| !a.is_aka()) {
        for qop in ["auth", "auth-int"] {
            let mut ch = server.challenge("r.example", alg, now, &[1; 16]).unwrap();
            ch.qop = Some(qop.into());
            let req = Request {
                method: "MESSAGE",
                uri: "sip:bob@r.example",
                body: b"hello",
                cnonce: "abc",
                nc: 7,
            };
            let c = digest::answer(&ch, "alice", b"pw", &req).unwrap();
            let text = c.to_string();
            let c = Credentials::parse(&text).unwrap();
            assert_eq!(c.algorithm().unwrap(), alg);
            let v = server
                .verify(&c, "MESSAGE", b"hello", Secret::Password(b"pw"), now, None)
                .unwrap_or_else(|e| panic!("{alg} {qop}: {e}"));
            assert_eq!(v.nc, Some(7));
            let stored = ha1(alg, "alice", "r.example", b"pw");
            assert!(server
                .verify(&c, "MESSAGE", b"hello", Secret::Ha1(&stored), now, None)
                .is_ok());
            assert!(server
                .verify(&c, "MESSAGE", b"hello", Secret::Password(b"px"), now, None)
                .is_err());
            let tampered =
                server.verify(&c, "MESSAGE", b"hellO", Secret::Password(b"pw"), now, None);
            assert_eq!(tampered.is_err(), qop == "auth-int", "{alg} {qop}");
        }
    }
}

/// The rspauth of Authentication-Info: A2 without the method (RFC 2617 §3.2.3).
#[test]
fn rspauth_uses_empty_method() {
    let input = DigestInput {
        algorithm: Algorithm::Md5,
        nonce: "n",
        nc: "00000001",
        cnonce: "c",
        qop: Some(Qop::Auth),
        method: "REGISTER",
        uri: "sip:x",
        body: b"",
    };
    let h1 = md5_hex(b"u:r:p");
    let ha2 = md5_hex(b":sip:x");
    let want = md5_hex(format!("{h1}:n:00000001:c:auth:{ha2}").as_bytes());
    assert_eq!(input.rspauth(&h1), want);
}

/// AKAv1-MD5 and AKAv2-MD5 passwords for TS 35.208 set 1, computed here with md-5 and hmac
/// directly: AKAv1 uses RES as the password octets (RFC 3310 §3.3); AKAv2 uses
/// base64(HMAC-MD5(RES ‖ IK ‖ CK, "http-digest-akav2-password")) (RFC 4169 §3).
#[test]
fn aka_passwords_independently_computed() {
    use ims_auth::aka::{akav2_password, AuthVector, Sqn};
    use ims_auth::encoding::{base64_encode, hex_decode};
    use ims_auth::milenage::{Milenage, OperatorKey};
    let h = |s: &str| hex_decode(s).unwrap();
    let m = Milenage::new(
        &h("465b5ce8b199b49faa5f0a2ee238a6bc").try_into().unwrap(),
        OperatorKey::Op(h("cdc202d5123e20f62b6d676ac72cb318").try_into().unwrap()),
    );
    let av = AuthVector::generate(
        &m,
        h("23553cbe9637a89d218ae64dae47bf35").try_into().unwrap(),
        Sqn::from_bytes(h("ff9bb4d0b607").try_into().unwrap()),
        [0xb9, 0xb9],
    );
    let res = h("a54211d5e3ba50bf");
    let ik = h("f769bcd751044604127672711c6d3441");
    let ck = h("b40ba9a3c58b2a05bbf0d987b21bf8cb");
    assert_eq!(digest::aka_password(Algorithm::AkaV1Md5, &av).unwrap(), res);
    let mut mac = <Hmac<Md5> as Mac>::new_from_slice(&[&res[..], &ik, &ck].concat()).unwrap();
    mac.update(b"http-digest-akav2-password");
    let v2 = base64_encode(&mac.finalize().into_bytes());
    assert_eq!(akav2_password(&res, &av.ik, &av.ck), v2);
    assert_eq!(
        digest::aka_password(Algorithm::AkaV2Md5, &av).unwrap(),
        v2.as_bytes()
    );

    // the AKAv1 response, computed by hand
    let server = DigestServer::new(b"k");
    let now = Duration::from_secs(5);
    let ch = server
        .aka_challenge("ims.example.com", Algorithm::AkaV1Md5, &av, now)
        .unwrap();
    // SQN ff9bb4d0b607 is far beyond Δ of an empty USIM: lift the limit for this check
    let mut usim =
        ims_auth::aka::Usim::with_sqn(m, ims_auth::aka::SqnMs::new(5).with_delta(u64::MAX));
    let req = Request {
        method: "REGISTER",
        uri: "sip:ims.example.com",
        body: b"",
        cnonce: "c0",
        nc: 1,
    };
    let (c, keys) = digest::answer_aka(&ch, &mut usim, "user@ims.example.com", &req).unwrap();
    assert_eq!(keys.unwrap().res.to_vec(), res);
    let mut a1 = b"user@ims.example.com:ims.example.com:".to_vec();
    a1.extend_from_slice(&res);
    let want = md5_hex(
        format!(
            "{}:{}:00000001:c0:auth:{}",
            md5_hex(&a1),
            ch.nonce,
            md5_hex(b"REGISTER:sip:ims.example.com")
        )
        .as_bytes(),
    );
    assert_eq!(c.response, want);
    // the nonce is base64(RAND ‖ AUTN ‖ server data) (RFC 3310 §3.2)
    let n = ims_auth::aka::AkaNonce::parse(&ch.nonce).unwrap();
    assert_eq!((n.rand, n.autn), (av.rand, av.autn));
}
