//! The `msrp_chat` example binary as a user runs it, two processes talking directly (no core):
//!
//! `send_large_from_one_process_to_a_listening_one`: Bob runs `msrp_chat --user bob listen
//! --sessions 1`, Alice `msrp_chat --to sip:bob@… send-large FILE` with 150,000 random bytes
//! (TS 24.247 §5.2: INVITE with an MSRP offer, chunked SEND, success REPORT, BYE). Alice's
//! JSON says the message was sent with a 200 REPORT and a 200 to her BYE, with the file's
//! SHA-256; Bob's says he got one session from Alice's MSRP URI, one message of that size and
//! hash, her BYE, and that he is done; both exit 0.
//!
//! Skips when the example is not built (`cargo test` builds it), unless
//! `IMS_REQUIRE_INTEROP=1`. Ports 5593-5598 (lead's range).

mod common;

use serde_json::Value;
use sha2::{Digest, Sha256};
use std::process::{Command, Stdio};
use std::time::Duration;

fn events(out: &[u8]) -> Vec<Value> {
    String::from_utf8_lossy(out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?} is not JSON: {e}")))
        .collect()
}

fn one<'a>(events: &'a [Value], kind: &str) -> &'a Value {
    let v: Vec<&Value> = events.iter().filter(|e| e["event"] == kind).collect();
    assert_eq!(v.len(), 1, "one {kind:?} event in {events:?}");
    v[0]
}

#[test]
fn send_large_from_one_process_to_a_listening_one() {
    let Some(bin) = common::example_binary("msrp_chat") else {
        return;
    };
    let dir = common::TempDir::new("msrp-chat-bin", "x", "IMS_KEEP_CAPTURES");
    let file = dir.path().join("large.bin");
    // pseudo-random bytes (xorshift): no compressible runs, every octet value
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let body: Vec<u8> = (0..150_000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect();
    std::fs::write(&file, &body).expect("write the file");
    let want = format!("{:x}", Sha256::digest(&body));

    let bob = Command::new(&bin)
        .args(["--sip", "127.0.0.1:5595", "--msrp", "127.0.0.1:5596"])
        .args([
            "--user",
            "bob",
            "--timeout",
            "30",
            "listen",
            "--sessions",
            "1",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start Bob's msrp_chat");
    // Bob binds before he reads anything; give the process a moment to start
    std::thread::sleep(Duration::from_millis(500));
    let alice = Command::new(&bin)
        .args(["--sip", "127.0.0.1:5597", "--msrp", "127.0.0.1:5598"])
        .args(["--user", "alice", "--timeout", "30"])
        .args(["--to", "sip:bob@127.0.0.1:5595", "send-large"])
        .arg(&file)
        .output()
        .expect("run Alice's msrp_chat");
    let bob = bob.wait_with_output().expect("Bob's msrp_chat ends");
    let show = |o: &std::process::Output| {
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    };
    assert!(alice.status.success(), "Alice: {}", show(&alice));
    assert!(bob.status.success(), "Bob: {}", show(&bob));

    let a = events(&alice.stdout);
    let sent = one(&a, "sent");
    assert_eq!(sent["size"], 150_000);
    assert_eq!(sent["sha256"], want.as_str());
    assert_eq!(sent["report"], 200, "success REPORT");
    assert_eq!(sent["bye"], 200, "Bob answered the BYE");

    let b = events(&bob.stdout);
    let session = one(&b, "session");
    assert_eq!(
        session["peer_path"][0]
            .as_str()
            .map(|p| p.contains("127.0.0.1:5598")),
        Some(true),
        "Alice's MSRP URI: {session}"
    );
    let msg = one(&b, "message");
    assert_eq!(msg["size"], 150_000);
    assert_eq!(msg["sha256"], want.as_str(), "Bob hashed the bytes he got");
    assert_eq!(msg["message_id"], sent["message_id"]);
    assert_eq!(one(&b, "bye")["messages"], 1);
    assert_eq!(one(&b, "done")["sessions"], 1);
}
