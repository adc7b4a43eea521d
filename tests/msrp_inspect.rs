//! Runs `inspect msrp` (examples/inspect/msrp.rs) on the MSRP vectors: one JSON object per
//! frame with the fields expected.jsonl names; exit 1 with a report on stderr for invalid input.
//!
//! Build the example first when running this test alone (`cargo build --example inspect`).

use serde_json::Value;
use std::path::PathBuf;
use std::process::{Command, Output};

fn inspect_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let dir = exe
        .parent()
        .and_then(|d| d.parent())
        .expect("target/<profile>/deps");
    let bin = dir
        .join("examples")
        .join(format!("inspect{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.is_file(),
        "build the inspect example first: cargo build --example inspect"
    );
    bin
}

fn vector(name: &str) -> String {
    format!("{}/tests/vectors/msrp/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn run(args: &[&str]) -> Output {
    Command::new(inspect_bin())
        .args(args)
        .output()
        .expect("run inspect")
}

fn objects(o: &Output) -> Vec<Value> {
    String::from_utf8(o.stdout.clone())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect()
}

#[test]
fn valid_vectors_print_their_fields() {
    let expected = std::fs::read_to_string(vector("expected.jsonl")).unwrap();
    let mut n = 0;
    for line in expected.lines() {
        let e: Value = serde_json::from_str(line).unwrap();
        if e["valid"] != true || e["kind"] == "stream" {
            continue;
        }
        let file = e["file"].as_str().unwrap();
        let o = run(&["msrp", "--compact", &vector(file)]);
        assert!(
            o.status.success(),
            "{file}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let v = objects(&o);
        assert_eq!(v.len(), 1, "{file}");
        let f = &v[0];
        assert_eq!(f["tid"], e["tid"], "{file}");
        assert_eq!(f["kind"], e["kind"], "{file}");
        assert_eq!(f["flag"], e["flag"], "{file}");
        assert_eq!(f["len"], e["frame_len"], "{file}");
        if e["kind"] == "request" {
            assert_eq!(f["method"], e["method"], "{file}");
        } else {
            assert_eq!(f["status"], e["status"], "{file}");
            assert_eq!(f["comment"], e["comment"], "{file}");
        }
        assert_eq!(f["message_id"], e["message_id"], "{file}");
        assert_eq!(f["body_len"], e["body_len"].as_u64().unwrap_or(0), "{file}");
        if let Some(ct) = e["content_type"].as_str() {
            assert!(
                f["content_type"].as_str().unwrap().starts_with(ct),
                "{file}"
            );
        }
        n += 1;
    }
    assert_eq!(n, 18);
}

#[test]
fn stream_prints_every_frame() {
    let o = run(&["msrp", "--compact", &vector("stream.msrp")]);
    assert!(o.status.success());
    let v = objects(&o);
    let offs: Vec<u64> = v.iter().map(|f| f["offset"].as_u64().unwrap()).collect();
    assert_eq!(offs, [0, 200, 472, 883, 1560]);
    assert_eq!(v[1]["body"], "Hello");
    assert_eq!(v[1]["byte_range"]["total"], 5);
    assert_eq!(v[3]["body_len"], 338);
    assert!(v[3]["body_hex"].is_string());
}

#[test]
fn invalid_vectors_fail() {
    // framed, but a receiver would answer 400
    let o = run(&["msrp", "--compact", &vector("bad_missing_to_path.msrp")]);
    assert_eq!(o.status.code(), Some(1));
    let v = objects(&o);
    assert_eq!(v[0]["check"]["status"], 400);
    assert!(String::from_utf8_lossy(&o.stderr).contains("answer 400"));
    // --no-validate prints it and succeeds
    let o = run(&[
        "msrp",
        "--no-validate",
        "--compact",
        &vector("bad_missing_to_path.msrp"),
    ]);
    assert!(o.status.success());
    // cannot be framed at all
    let o = run(&["msrp", &vector("bad_lf_only.msrp")]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("BareLf"));
    // usage error
    let o = run(&["msrp", "--bogus", &vector("stream.msrp")]);
    assert_eq!(o.status.code(), Some(2));
}
