//! Fuzz oracle for the Digest header parsers of [`crate::auth`] (target `digest_header`).

use crate::auth::aka::AkaNonce;
use crate::auth::digest::{self, AuthenticationInfo, ClientRequest, DigestClient, Request};
use crate::auth::encoding::{base64_decode, base64_encode};
use crate::auth::{Algorithm, Challenge, Credentials, DigestServer, Secret};
use std::time::Duration;

/// Parses `data` (UTF-8) as a `WWW-Authenticate` challenge and as `Authorization` credentials,
/// and as base64. For every input:
///
/// - a parsed value prints (`Display`) to text that parses back to an equal value;
/// - a UAC answer to a parsed challenge prints and parses back equal; the AKA nonce decoder and
///   the typed accessors never panic;
/// - parsed credentials never verify at a server (the fuzzer cannot forge the nonce's HMAC
///   tag), with a password, an HA1, or as an AKA resynchronisation;
/// - base64 that decodes re-encodes to the same text (the decoder accepts canonical input only);
/// - an `Authentication-Info` value prints and parses back equal; its `rspauth` never
///   authenticates a server to a client that did not compute it (the fuzzer does not know
///   HA1), and a [`DigestClient`] keeps its nonce when the check fails;
/// - PRECIS (RFC 8265, used with `charset=UTF-8`): enforcing the input as a user name, a
///   Digest user name or a password either fails or gives a non-empty string that enforces
///   to itself (idempotence, RFC 8264 §7).
pub fn digest_header(data: &[u8]) {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    precis(s);
    if let Ok(c) = Challenge::parse(s) {
        let text = c.to_string();
        match Challenge::parse(&text) {
            Ok(back) => assert_eq!(back, c, "challenge {s:?} printed as {text:?}"),
            Err(e) => panic!("challenge {s:?} printed as {text:?} does not parse: {e}"),
        }
        let _ = (c.algorithm(), c.qop_options().count(), c.stale);
        let _ = AkaNonce::parse(&c.nonce);
        let req = Request {
            method: "REGISTER",
            uri: "sip:fuzz.invalid",
            body: b"body",
            cnonce: "fuzz",
            nc: 1,
        };
        if let Ok(mut client) = DigestClient::new(&c, "fuzz", b"pw") {
            let r = ClientRequest {
                method: "MESSAGE",
                uri: "sip:fuzz.invalid",
                body: b"",
                cnonce: "c",
            };
            if let Ok(sent) = client.authorize(&r) {
                assert_eq!(sent.nc.is_some(), sent.qop.is_some());
                if let Ok(info) = AuthenticationInfo::parse(s) {
                    let before = client.nonce().to_owned();
                    if client.on_authentication_info(&info, b"", true).is_err() {
                        assert_eq!(client.nonce(), before);
                    }
                }
            }
        }
        if let Ok(a) = digest::answer(&c, "fuzz", b"pw", &req) {
            let t = a.to_string();
            match Credentials::parse(&t) {
                Ok(back) => assert_eq!(back, a, "answer printed as {t:?}"),
                Err(e) => panic!("answer to {s:?} printed as {t:?} does not parse: {e}"),
            }
        }
    }
    if let Ok(c) = Credentials::parse(s) {
        let text = c.to_string();
        match Credentials::parse(&text) {
            Ok(back) => assert_eq!(back, c, "credentials {s:?} printed as {text:?}"),
            Err(e) => panic!("credentials {s:?} printed as {text:?} does not parse: {e}"),
        }
        let _ = (
            c.algorithm(),
            c.nonce_count(),
            c.auts_bytes(),
            c.param("integrity-protected"),
        );
        let server = DigestServer::new(b"fuzz secret");
        let now = Duration::from_secs(1);
        for secret in [Secret::Password(b"pw"), Secret::Ha1("00")] {
            let r = server.verify(&c, "REGISTER", b"", secret, now, None);
            assert!(r.is_err(), "forged credentials verified: {s:?}");
        }
        assert!(server.verify_resync(&c, "REGISTER", b"", now).is_err());
        if let Ok(a) = c.algorithm() {
            let _ = server.check_nonce(&c.nonce, &c.realm, a, now);
            let _ = a == Algorithm::Md5;
        }
    }
    if let Ok(i) = AuthenticationInfo::parse(s) {
        let text = i.to_string();
        match AuthenticationInfo::parse(&text) {
            Ok(back) => assert_eq!(back, i, "authentication-info {s:?} printed as {text:?}"),
            Err(e) => panic!("authentication-info {s:?} printed as {text:?} does not parse: {e}"),
        }
    }
    if let Ok(b) = base64_decode(s) {
        assert_eq!(base64_encode(&b), s, "base64 is not canonical");
    }
}

fn precis(s: &str) {
    use crate::auth::precis::{digest_username, opaque_string, username_case_preserved};
    for f in [username_case_preserved, digest_username, opaque_string] {
        if let Ok(out) = f(s) {
            assert!(!out.is_empty(), "{s:?} enforced to nothing");
            assert_eq!(f(&out).as_deref(), Ok(out.as_str()), "{s:?} → {out:?}");
        }
    }
}
