//! Shared runner for the tests that drive the `inspect` example binary (`examples/inspect/`):
//! `tests/inspect.rs`, `tests/auth_inspect.rs`, `tests/sdp_inspect.rs`, `tests/sms_inspect.rs`.
//! Each test binary compiles this module separately, hence the `dead_code` allowances.

#![allow(dead_code)]

use serde_json::Value;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

/// The example binary next to this test: `target/<profile>/deps/<test>-<hash>` →
/// `target/<profile>/examples/inspect`.
pub(crate) fn inspect_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("test binary is in target/<profile>/deps");
    let bin = profile_dir
        .join("examples")
        .join(format!("inspect{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.is_file(),
        "the inspect example binary is missing at {}: build it with `cargo build --example inspect`",
        bin.display()
    );
    bin
}

/// Runs `inspect <args>`, feeding `stdin` when given (else stdin is null), and collects its
/// exit status, stdout and stderr.
pub(crate) fn run(args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut child = Command::new(inspect_bin())
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn inspect");
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .expect("piped stdin")
            .write_all(input)
            .expect("write stdin");
    }
    child.wait_with_output().expect("wait for inspect")
}

/// Asserts exit 0 (showing stderr otherwise) and parses stdout as exactly one JSON object.
pub(crate) fn json_ok(o: &Output) -> Value {
    assert_eq!(
        o.status.code(),
        Some(0),
        "stderr:\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&o.stdout).expect("stdout is one JSON object")
}
