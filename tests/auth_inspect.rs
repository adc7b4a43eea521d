//! Runs `inspect digest` (examples/inspect/digest.rs) on the header values of
//! tests/vectors/auth and checks its JSON, its error report and its exit status.
//!
//! `cargo test` builds examples; `cargo test --test auth_inspect` alone does not, so build the
//! binary first (`cargo build --example inspect`) when running this test by itself.

mod inspect_common;

use inspect_common::json_ok;
use serde_json::Value;
use std::process::Output;

fn vector(name: &str) -> String {
    format!("{}/tests/vectors/auth/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// `inspect digest <args>`.
fn run(args: &[&str], stdin: Option<&[u8]>) -> Output {
    let args: Vec<&str> = std::iter::once("digest")
        .chain(args.iter().copied())
        .collect();
    inspect_common::run(&args, stdin)
}

#[test]
fn rfc2617_credentials() {
    let v = json_ok(&run(&[&vector("rfc2617-credentials.txt")], None));
    assert_eq!(v["kind"], "credentials");
    assert_eq!(v["username"], "Mufasa");
    assert_eq!(v["uri"], "/dir/index.html");
    assert_eq!(v["qop"], "auth");
    assert_eq!(v["nc"], "00000001");
    assert_eq!(v["nc_value"], 1);
    assert_eq!(v["algorithm"], Value::Null);
    assert_eq!(v["algorithm_known"], "MD5"); // the default
    assert_eq!(v["response"], "6629fae49393a05397450978507c4ef1");
}

#[test]
fn rfc7616_challenge_with_folding() {
    let v = json_ok(&run(&[&vector("rfc7616-challenge-sha256.txt")], None));
    assert_eq!(v["kind"], "challenge");
    assert_eq!(v["realm"], "http-auth@example.org");
    assert_eq!(v["algorithm_known"], "SHA-256");
    assert_eq!(v["qop_options"], serde_json::json!(["auth", "auth-int"]));
    assert_eq!(v["stale"], false);
}

#[test]
fn aka_challenge_nonce_is_decoded() {
    let v = json_ok(&run(&[&vector("ims-aka-challenge-ck-ik.txt")], None));
    assert_eq!(v["algorithm_known"], "AKAv1-MD5");
    let n = &v["aka_nonce"];
    assert_eq!(n["rand"], "23553cbe9637a89d218ae64dae47bf35");
    assert_eq!(n["sqn_xor_ak"], "55f328b43577");
    assert_eq!(n["amf"], "b9b9");
    assert_eq!(n["mac"], "4a9ffac354dfafb3");
    assert_eq!(n["server_data_len"], 12);
    assert_eq!(v["extra"][0][0], "ck");
}

#[test]
fn aka_resync_credentials_show_auts() {
    let v = json_ok(&run(&[&vector("ims-aka-resync.txt")], None));
    assert_eq!(v["auts_hex"], "000102030405060708090a0b0c0d");
    assert_eq!(
        v["extra"][0],
        serde_json::json!(["integrity-protected", "\"yes\""])
    );
}

#[test]
fn header_line_from_stdin_selects_the_parser() {
    let line = b"WWW-Authenticate: Digest realm=\"r\", nonce=\"n\", stale=true\r\n";
    let v = json_ok(&run(&["--compact", "-"], Some(line)));
    assert_eq!(v["kind"], "challenge");
    assert_eq!(v["stale"], true);
    // the same value forced as credentials fails: no username
    let o = run(&["--credentials", "-"], Some(line));
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("missing digest parameter username"), "{err}");
}

#[test]
fn malformed_values_exit_1_with_the_reason() {
    for (file, want) in [
        ("bad-basic.txt", "is not Digest"),
        ("bad-duplicate.txt", "invalid digest parameter realm"),
        ("bad-unterminated.txt", "malformed auth header"),
    ] {
        let o = run(&[&vector(file)], None);
        assert_eq!(o.status.code(), Some(1), "{file}");
        assert!(o.stdout.is_empty(), "{file}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(want), "{file}: {err}");
        assert!(err.contains("answer: SIP 400"), "{file}: {err}");
    }
}

#[test]
fn usage_errors_exit_2() {
    let o = run(
        &[
            "--challenge",
            "--credentials",
            &vector("rfc2617-challenge.txt"),
        ],
        None,
    );
    assert_eq!(o.status.code(), Some(2));
    let o = run(&["--bogus", "x"], None);
    assert_eq!(o.status.code(), Some(2));
}
