//! Runs the `inspect` example binary (`examples/inspect/`) on the SIP vectors and checks its
//! JSON output, its stderr reports and its exit status.
//!
//! `cargo test` builds examples into `target/<profile>/examples/`; `cargo test --test inspect`
//! alone does not, so build it first (`cargo build --example inspect`) when running this test by
//! itself.

mod inspect_common;

use inspect_common::run as run_with_stdin;
use serde_json::{json, Value};
use std::process::Output;

fn vector(rel: &str) -> String {
    format!("{}/tests/vectors/{rel}", env!("CARGO_MANIFEST_DIR"))
}

fn run(args: &[&str]) -> Output {
    run_with_stdin(args, None)
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Asserts exit 0 and parses stdout as exactly one JSON object.
fn json_ok(o: &Output) -> Value {
    assert_eq!(
        o.status.code(),
        Some(0),
        "expected exit 0; stderr:\n{}",
        stderr(o)
    );
    let v: Value = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not one JSON value ({e}):\n{}",
            String::from_utf8_lossy(&o.stdout)
        )
    });
    assert!(v.is_object(), "stdout is not a JSON object: {v}");
    v
}

fn inspect_ok(rel: &str) -> Value {
    json_ok(&run(&["sip", &vector(rel)]))
}

/// Asserts the exit status and an empty stdout; returns stderr.
fn fails(o: &Output, code: i32) -> String {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(code), "stderr:\n{err}");
    assert!(
        o.stdout.is_empty(),
        "stdout should be empty: {}",
        String::from_utf8_lossy(&o.stdout)
    );
    err
}

fn header_names(v: &Value) -> Vec<&str> {
    v["headers"]
        .as_array()
        .expect("headers array")
        .iter()
        .map(|h| h[0].as_str().expect("header name"))
        .collect()
}

#[test]
fn register_request() {
    let v = inspect_ok("sip-bench/1.sip");
    assert_eq!(v["kind"], "request");
    assert_eq!(v["method"], "REGISTER");
    assert_eq!(v["request_uri"], "sip:ims.mnc001.mcc001.3gppnetwork.org");
    assert_eq!(v["version"], "SIP/2.0");
    assert!(v.get("status").is_none() && v.get("reason").is_none());
    assert_eq!(
        header_names(&v),
        [
            "Via",
            "Max-Forwards",
            "Route",
            "From",
            "To",
            "Call-ID",
            "CSeq",
            "Contact",
            "Expires",
            "Supported",
            "Require",
            "Proxy-Require",
            "Allow",
            "Authorization",
            "Security-Client",
            "Security-Verify",
            "P-Access-Network-Info",
            "User-Agent",
            "Content-Length",
        ]
    );
    assert_eq!(
        v["headers"][0],
        json!([
            "Via",
            "SIP/2.0/UDP 10.20.30.40:5060;branch=z9hG4bK-524287-1---2f1c9a8e4b3d7c60;rport"
        ])
    );
    assert_eq!(
        v["headers"][9],
        json!(["Supported", "path, gruu, sec-agree"])
    );
    assert_eq!(
        v["via"],
        json!([{
            "transport": "UDP",
            "host": "10.20.30.40",
            "port": 5060,
            "branch": "z9hG4bK-524287-1---2f1c9a8e4b3d7c60",
            "received": null,
            "rport": true,
        }])
    );
    assert_eq!(
        v["from"],
        json!({
            "display_name": null,
            "uri": "sip:001010123456789@ims.mnc001.mcc001.3gppnetwork.org",
            "tag": "4fa3e1c2",
        })
    );
    assert_eq!(
        v["to"],
        json!({
            "display_name": null,
            "uri": "sip:001010123456789@ims.mnc001.mcc001.3gppnetwork.org",
            "tag": null,
        })
    );
    assert_eq!(v["call_id"], "1bd4a2c9f08e7d63@10.20.30.40");
    assert_eq!(v["cseq"], json!({ "seq": 2, "method": "REGISTER" }));
    assert_eq!(
        v["contact"],
        json!([{
            "uri": "sip:001010123456789@10.20.30.40:5060",
            "expires": 600000,
            "params": {
                "+sip.instance": "<urn:gsma:imei:35209900-176148-0>",
                "+g.3gpp.icsi-ref": "urn%3Aurn-7%3A3gpp-service.ims.icsi.mmtel",
                "+g.3gpp.smsip": true,
                "audio": true,
                "video": true,
                "expires": "600000",
                "reg-id": "1",
            },
        }])
    );
    assert_eq!(v["content_type"], Value::Null);
    assert_eq!(v["max_forwards"], 70);
    assert_eq!(v["body_len"], 0);
    assert_eq!(v["body"], "");
    assert!(v.get("body_hex").is_none());
    assert!(v.get("parts").is_none());
}

#[test]
fn unauthorized_response() {
    let v = inspect_ok("sip-bench/2.sip");
    assert_eq!(v["kind"], "response");
    assert_eq!(v["status"], 401);
    assert_eq!(v["reason"], "Unauthorized");
    assert_eq!(v["version"], "SIP/2.0");
    assert!(v.get("method").is_none() && v.get("request_uri").is_none());
    assert_eq!(
        header_names(&v),
        [
            "Via",
            "From",
            "To",
            "Call-ID",
            "CSeq",
            "WWW-Authenticate",
            "Security-Server",
            "Server",
            "Content-Length",
        ]
    );
    assert_eq!(
        v["via"],
        json!([{
            "transport": "UDP",
            "host": "10.20.30.40",
            "port": 5060,
            "branch": "z9hG4bK-524287-1---2f1c9a8e4b3d7c5f",
            "received": "10.20.30.40",
            "rport": 5060,
        }])
    );
    assert_eq!(v["from"]["tag"], "4fa3e1c2");
    assert_eq!(
        v["to"],
        json!({
            "display_name": null,
            "uri": "sip:001010123456789@ims.mnc001.mcc001.3gppnetwork.org",
            "tag": "a6b3c0d9e7",
        })
    );
    assert_eq!(v["call_id"], "1bd4a2c9f08e7d63@10.20.30.40");
    assert_eq!(v["cseq"], json!({ "seq": 1, "method": "REGISTER" }));
    // absent headers are null
    assert_eq!(v["contact"], Value::Null);
    assert_eq!(v["content_type"], Value::Null);
    assert_eq!(v["max_forwards"], Value::Null);
    assert_eq!(v["body_len"], 0);
}

#[test]
fn tortuous_invite_expands_compact_names() {
    let v = inspect_ok("sip-torture/wsinv.dat");
    assert_eq!(v["kind"], "request");
    assert_eq!(v["method"], "INVITE");
    assert_eq!(
        v["request_uri"],
        "sip:vivekg@chair-dnrc.example.com;unknownparam"
    );
    // `s`, `v` and `m` come out as their long names; odd spellings as canonical names
    assert_eq!(
        header_names(&v),
        [
            "To",
            "From",
            "Max-Forwards",
            "Call-ID",
            "Content-Length",
            "CSeq",
            "Via",
            "Subject",
            "NewFangledHeader",
            "UnknownHeaderWithUnusualValue",
            "Content-Type",
            "Route",
            "Via",
            "Contact",
        ]
    );
    // raw values keep their folding
    assert_eq!(
        v["headers"][12][1],
        "SIP  / 2.0  / TCP     spindle.example.com   ;\r\n  branch  =   z9hG4bK9ikj8  ,\r\n \
         SIP  /    2.0   / UDP  192.168.255.111   ; branch=\r\n z9hG4bK30239"
    );
    assert_eq!(v["headers"][7], json!(["Subject", ""]));
    assert_eq!(
        v["via"],
        json!([
            {"transport": "UDP", "host": "192.0.2.2", "port": null, "branch": "390skdjuw",
             "received": null, "rport": null},
            {"transport": "TCP", "host": "spindle.example.com", "port": null,
             "branch": "z9hG4bK9ikj8", "received": null, "rport": null},
            {"transport": "UDP", "host": "192.168.255.111", "port": null,
             "branch": "z9hG4bK30239", "received": null, "rport": null},
        ])
    );
    assert_eq!(
        v["to"],
        json!({
            "display_name": null,
            "uri": "sip:vivekg@chair-dnrc.example.com",
            "tag": "1918181833n",
        })
    );
    assert_eq!(
        v["from"],
        json!({
            "display_name": "J Rosenberg \\\"",
            "uri": "sip:jdrosen@example.com",
            "tag": "98asjd8",
        })
    );
    assert_eq!(v["call_id"], "wsinv.ndaksdj@192.0.2.1");
    assert_eq!(v["cseq"], json!({ "seq": 9, "method": "INVITE" }));
    assert_eq!(v["max_forwards"], 68);
    assert_eq!(
        v["contact"],
        json!([{
            "uri": "sip:jdrosen@example.com",
            "expires": null,
            "params": { "newparam": "newvalue", "secondparam": true, "q": "0.33" },
        }])
    );
    assert_eq!(v["content_type"], "application/sdp");
    assert_eq!(v["body_len"], 150);
    let body = v["body"].as_str().expect("text body");
    assert!(body.starts_with("v=0\r\no=mhandley 29739 7272939 IN IP4 192.0.2.3\r\n"));
    assert_eq!(body.len(), 150);
}

#[test]
fn multipart_parts() {
    let v = inspect_ok("sip-torture/mpart01.dat");
    assert_eq!(v["method"], "MESSAGE");
    assert_eq!(
        v["content_type"],
        "multipart/mixed;boundary=7a9cbec02ceef655"
    );
    assert_eq!(
        v["parts"],
        json!([
            { "content_type": "text/plain", "len": 5 },
            { "content_type": "application/octet-stream", "len": 342 },
        ])
    );
    assert_eq!(v["body_len"], 553);
    // the binary part is not UTF-8: the body comes as hex
    assert!(v.get("body").is_none());
    let hex = v["body_hex"].as_str().expect("body_hex");
    assert_eq!(hex.len(), 2 * 553);
    let expected_start: String = b"--7a9cbec02ceef655\r\n"
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert!(hex.starts_with(&expected_start), "{hex}");
    assert_eq!(
        v["contact"],
        json!([{ "uri": "sip:fluffy@127.0.0.1:5070", "expires": null, "params": {} }])
    );
}

#[test]
fn stdin_input() {
    let raw = std::fs::read(vector("sip-bench/2.sip")).expect("vector");
    let from_stdin = json_ok(&run_with_stdin(&["sip", "-"], Some(&raw)));
    assert_eq!(from_stdin, inspect_ok("sip-bench/2.sip"));
    assert_eq!(from_stdin["status"], 401);

    // --compact: the same object on one line
    let o = run_with_stdin(&["sip", "--compact", "-"], Some(&raw));
    assert_eq!(json_ok(&o), from_stdin);
    let text = String::from_utf8(o.stdout).expect("utf-8");
    assert_eq!(text.trim_end().lines().count(), 1);
}

#[test]
fn star_contact() {
    let raw = b"REGISTER sip:example.com SIP/2.0\r\n\
Via: SIP/2.0/TCP 192.0.2.1:5060;branch=z9hG4bK-star\r\n\
From: <sip:u@example.com>;tag=1\r\nTo: <sip:u@example.com>\r\nCall-ID: star@192.0.2.1\r\n\
CSeq: 3 REGISTER\r\nContact: *\r\nExpires: 0\r\nContent-Length: 0\r\n\r\n";
    let v = json_ok(&run_with_stdin(&["sip", "-"], Some(raw)));
    assert_eq!(v["contact"], json!([{ "uri": "*" }]));
    assert_eq!(v["max_forwards"], Value::Null);
}

#[test]
fn stream_rules_need_content_length() {
    let raw = b"OPTIONS sip:u@example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK-ncl\r\n\
From: <sip:a@example.com>;tag=1\r\nTo: <sip:u@example.com>\r\nCall-ID: ncl@192.0.2.1\r\n\
CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\n\r\n";
    // datagram rules: a missing Content-Length means the rest of the datagram
    let v = json_ok(&run_with_stdin(&["sip", "-"], Some(raw)));
    assert_eq!(v["body_len"], 0);
    // stream rules: a parse error
    let err = fails(&run_with_stdin(&["sip", "--stream", "-"], Some(raw)), 1);
    assert!(err.contains("MissingContentLength"), "{err}");
    assert!(err.contains(&format!("offset: {}", raw.len())), "{err}");
    // and a message with one parses the same way under both
    let wsinv = vector("sip-torture/wsinv.dat");
    assert_eq!(
        json_ok(&run(&["sip", "--stream", &wsinv])),
        inspect_ok("sip-torture/wsinv.dat")
    );
}

#[test]
fn parse_error_exits_1_with_offset() {
    let err = fails(&run(&["sip", &vector("sip-torture/ltgtruri.dat")]), 1);
    // `INVITE <sip:user@example.com> SIP/2.0`: the Request-URI starts at byte 7
    assert!(err.contains("RequestUri"), "{err}");
    assert!(err.contains("offset: 7"), "{err}");
    // --no-validate does not hide a parse error
    let err = fails(
        &run(&["sip", "--no-validate", &vector("sip-torture/ltgtruri.dat")]),
        1,
    );
    assert!(err.contains("offset: 7"), "{err}");
}

#[test]
fn validation_rejection_exits_1() {
    let file = vector("sip-torture/insuf.dat");
    let err = fails(&run(&["sip", &file]), 1);
    assert!(err.contains("status: 400"), "{err}");
    assert!(err.contains("reason: Bad Request"), "{err}");
    assert!(err.contains("text: Missing To header"), "{err}");
    assert!(err.contains("offset: 0"), "{err}");
    assert!(err.contains("header: To"), "{err}");
    // --no-validate prints it, with the missing headers as null
    let v = json_ok(&run(&["sip", "--no-validate", &file]));
    assert_eq!(v["to"], Value::Null);
    assert_eq!(v["from"], Value::Null);
    assert_eq!(v["call_id"], Value::Null);
    assert_eq!(v["cseq"], json!({ "seq": 193942, "method": "INVITE" }));
    assert_eq!(v["body_len"], 152);
    assert_eq!(header_names(&v)[3], "Content-Length");
}

#[test]
fn usage_errors_exit_2() {
    let err = fails(&run(&["sdp-nope", &vector("sip-bench/1.sip")]), 2);
    assert!(err.contains("unknown codec 'sdp-nope'"), "{err}");
    assert!(err.contains("usage:"), "{err}");
    assert!(
        err.contains("--stream") && err.contains("--no-validate"),
        "{err}"
    );

    let missing = vector("sip-bench/no-such-file.sip");
    let err = fails(&run(&["sip", &missing]), 2);
    assert!(err.contains("cannot read"), "{err}");
    assert!(err.contains("usage:"), "{err}");

    for args in [
        &[][..],
        &["sip"][..],
        &["sip", "--bogus", "x.sip"][..],
        &["sip", "a.sip", "b.sip"][..],
    ] {
        let err = fails(&run(args), 2);
        assert!(err.contains("usage:"), "{args:?}: {err}");
    }

    let o = run(&["--help"]);
    assert_eq!(o.status.code(), Some(0));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("usage:") && out.contains("--no-validate"),
        "{out}"
    );
}
