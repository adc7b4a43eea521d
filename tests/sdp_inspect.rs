//! Runs `inspect sdp` (examples/inspect/sdp.rs) on SDP vectors and checks its JSON, its error
//! report and its exit status.
//!
//! `cargo test` builds examples; `cargo test --test sdp_inspect` alone does not, so build the
//! binary first (`cargo build --example inspect`) when running this test by itself.

mod inspect_common;

use inspect_common::{json_ok, run};

fn vector(rel: &str) -> String {
    format!("{}/tests/vectors/{rel}", env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn sdp_of_a_sip_message() {
    let v = json_ok(&run(&["sdp", "--sip", &vector("ims/invite_183.sip")], None));
    assert_eq!(v["origin"]["address"], "10.30.0.77");
    assert_eq!(v["origin"]["session_id"], "2890844527");
    assert_eq!(v["connection"]["address"], "10.30.0.77");
    let m = &v["media"][0];
    assert_eq!(m["media"], "audio");
    assert_eq!(m["port"], 40018);
    assert_eq!(m["proto"], "RTP/AVP");
    assert_eq!(m["formats"], serde_json::json!(["116", "111"]));
    assert_eq!(m["direction"], "sendrecv");
    assert_eq!(m["connection"]["address"], "10.30.0.77");
    assert_eq!(m["bandwidths"][0]["type"], "AS");
    assert_eq!(m["bandwidths"][0]["value"], 49);
    assert_eq!(m["rtpmap"]["116"]["encoding"], "AMR-WB");
    let attrs = m["attributes"].as_array().unwrap();
    assert_eq!(attrs.len(), 12);
    assert_eq!(attrs[0]["typed"]["kind"], "rtpmap");
    let des = attrs.iter().find(|a| a["name"] == "des").unwrap();
    assert_eq!(des["typed"]["strength"], "mandatory");
    assert_eq!(des["line"], 16);
}

#[test]
fn mmtel_offer_and_msrp_from_stdin() {
    let v = json_ok(&run(&["sdp", &vector("sdp/mmtel_offer.sdp")], None));
    assert_eq!(v["origin"]["addr_type"], "IP6");
    assert_eq!(v["media"].as_array().unwrap().len(), 2);
    assert_eq!(v["media"][1]["proto"], "RTP/AVPF");
    assert_eq!(
        v["media"][1]["fmtp"]["112"],
        "profile-level-id=42e01f;packetization-mode=1;sprop-parameter-sets=Z0LgH9oCgPZA,aM4G4g=="
    );

    let msrp =
        "v=0\r\no=alice 1 1 IN IP4 a.example.com\r\ns=-\r\nc=IN IP4 a.example.com\r\nt=0 0\r\n\
                m=message 7654 TCP/MSRP *\r\na=accept-types:message/cpim text/plain\r\n\
                a=path:msrp://a.example.com:7654/jshA7weztas;tcp\r\na=x-custom:1\r\n";
    let v = json_ok(&run(&["sdp", "--compact", "-"], Some(msrp.as_bytes())));
    let a = &v["media"][0]["attributes"];
    assert_eq!(
        a[0]["typed"]["types"],
        serde_json::json!(["message/cpim", "text/plain"])
    );
    assert_eq!(
        a[1]["typed"]["uris"][0],
        "msrp://a.example.com:7654/jshA7weztas;tcp"
    );
    assert_eq!(a[2]["typed"]["kind"], "other");
    assert_eq!(v["media"][0]["formats"], serde_json::json!(["*"]));
}

#[test]
fn errors_exit_1_with_the_line() {
    let bad = b"v=0\r\no=- 1 1 IN IP4 a\r\ns=-\r\nt=0 0\r\nc=IN IP4 a\r\n";
    let o = run(&["sdp", "-"], Some(bad));
    assert_eq!(o.status.code(), Some(1));
    assert!(o.stdout.is_empty());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("kind: OutOfOrder('c')") && err.contains("line: 5"),
        "{err}"
    );
    // the same with --any-order decodes
    let v = json_ok(&run(&["sdp", "--any-order", "-"], Some(bad)));
    assert_eq!(v["connection"]["address"], "a");
    // a malformed typed attribute is reported in place, the rest still decodes
    let t = b"v=0\r\no=- 1 1 IN IP4 a\r\ns=-\r\nt=0 0\r\nm=audio 1 RTP/AVP 96\r\na=rtpmap:96 X\r\n";
    let v = json_ok(&run(&["sdp", "-"], Some(t)));
    let e = &v["media"][0]["attributes"][0]["typed"]["error"];
    assert_eq!(e["line"], 6);
    assert_eq!(e["message"], "syntax error: expected clock rate");
    // usage errors exit 2
    assert_eq!(run(&["sdp", "--bogus", "-"], None).status.code(), Some(2));
}
