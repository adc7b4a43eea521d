//! Runs `inspect sms` (examples/inspect/sms.rs) on the SMS vectors: hex and binary input, both
//! directions, error reports with the RP cause and the RP-ERROR answer, and usage errors.
//!
//! `cargo test` builds examples; `cargo test --test sms_inspect` alone does not, so build the
//! binary first (`cargo build --example inspect`) when running this test by itself.

mod inspect_common;

use inspect_common::run;
use serde_json::Value;
use std::path::PathBuf;

fn vectors() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/vectors/sms")
}

fn json_of(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(bytes)))
}

fn load(name: &str) -> Value {
    json_of(&std::fs::read(vectors().join(format!("{name}.json"))).unwrap())
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

#[test]
fn every_vector() {
    let index = json_of(&std::fs::read(vectors().join("vectors.json")).unwrap());
    let mut n = 0;
    for e in index.as_array().unwrap() {
        let name = e["name"].as_str().unwrap();
        let j = load(name);
        let file = vectors().join(format!("{name}.hex"));
        let file = file.to_str().unwrap();
        if e["valid"].as_bool().unwrap() {
            let dir = j["rp"]["direction"].as_str().unwrap().replace('_', "-");
            for args in [vec!["sms", file], vec!["sms", "--direction", &dir, file]] {
                let o = run(&args, None);
                assert_eq!(
                    o.status.code(),
                    Some(0),
                    "{name}: {}",
                    String::from_utf8_lossy(&o.stderr)
                );
                let v = json_of(&o.stdout);
                assert_eq!(v["rp"]["message_type"], j["rp"]["message_type"], "{name}");
                assert_eq!(
                    v["rp"]["message_reference"], j["rp"]["message_reference"],
                    "{name}"
                );
                assert_eq!(v["rp"]["direction"], j["rp"]["direction"], "{name}");
                if j["tpdu"].is_null() {
                    assert!(v["tpdu"].is_null(), "{name}");
                } else {
                    assert_eq!(v["tpdu"]["type"], j["tpdu"]["type"], "{name}");
                    assert_eq!(v["tpdu"]["hex"], j["tpdu"]["hex"], "{name}");
                    let want = &j["tpdu"]["tp_ud"];
                    if !want.is_null() {
                        assert_eq!(
                            v["tpdu"]["tp_ud"]["text"],
                            want.get("text").cloned().unwrap_or(Value::Null),
                            "{name}"
                        );
                        assert_eq!(v["tpdu"]["tp_ud"]["udl"], want["udl"], "{name}");
                    }
                }
            }
            // the same octets, binary, on standard input
            let o = run(
                &["sms", "--compact", "-"],
                Some(&unhex(j["hex"].as_str().unwrap())),
            );
            assert_eq!(o.status.code(), Some(0), "{name} (binary)");
            assert_eq!(
                String::from_utf8_lossy(&o.stdout).lines().count(),
                1,
                "--compact"
            );
        } else {
            let o = run(&["sms", file], None);
            assert_eq!(o.status.code(), Some(1), "{name}");
            assert!(o.stdout.is_empty(), "{name}: printed a result");
            let v = json_of(&o.stderr);
            let want = j["error"].as_str().unwrap();
            assert_eq!(v["error"]["message"], want, "{name}");
            assert_eq!(v["error"]["offset"], j["error_offset"], "{name}");
            assert_eq!(
                v["error"]["rp_cause"],
                j["expected_answer"]["rp_cause"].clone(),
                "{name}"
            );
        }
        n += 1;
    }
    assert_eq!(n, 26);
}

#[test]
fn wrong_direction_and_usage_errors() {
    let file = vectors().join("rp_data_mo_submit_hello_gsm7.hex");
    let file = file.to_str().unwrap();
    let o = run(&["sms", "--direction", "network-to-ms", file], None);
    assert_eq!(o.status.code(), Some(1));
    let v = json_of(&o.stderr);
    assert_eq!(v["error"]["rp_cause"], 97);
    // the receiver expected network-to-MS messages, so it is the MS: it answers with an RP-ERROR
    // (MS to network, RP-MTI 4) with the received RP-MR 1 and cause 97
    assert_eq!(v["error"]["answer_hex"], "04010161");
    assert_eq!(
        run(&["sms", "--direction", "sideways", file], None)
            .status
            .code(),
        Some(2)
    );
    assert_eq!(run(&["sms", "--bogus", file], None).status.code(), Some(2));
    assert_eq!(run(&["sms"], None).status.code(), Some(2));
}
