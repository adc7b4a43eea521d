//! Interop with Wireshark's SIP dissector: messages made by the builders, the IMS vectors and proxy
//! edits of them are written into a libpcap file (UDP 127.0.0.1:5060 <-> 127.0.0.1:5070, one message
//! per packet) and dissected by `tshark`. For every packet, what tshark reads (method / status, Call-ID,
//! CSeq, top Via branch, ...) must equal what ims-sip's typed accessors return for the same bytes, and
//! tshark must report no malformed packet and no warning/error expert info.
//!
//! A second test feeds deliberately broken messages through the same checks and asserts that they are
//! flagged, so a regression in the comparison machinery cannot make the first test pass vacuously.
//!
//! When `tshark` is not on `PATH` the tests print why and pass, unless `IMS_REQUIRE_INTEROP=1`, in which
//! case they fail. Set `IMS_KEEP_PCAP=1` to keep the capture files (their directory is printed).

mod common;

use ims::sip::{parse_datagram, HeaderName, Message, Method, RequestBuilder, ResponseBuilder};
use serde_json::Value;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The UA side (sends requests).
const UA_PORT: u16 = 5060;
/// The proxy side (sends responses).
const PROXY_PORT: u16 = 5070;

// ---------------------------------------------------------------------------------------------
// Finding tshark
// ---------------------------------------------------------------------------------------------

/// The tshark binary, or `None` (after saying why) when the test should be skipped.
fn tshark() -> Option<PathBuf> {
    common::interop_tool("tshark", "install tshark (Debian package `tshark`)")
}

fn tshark_version(tshark: &Path) -> String {
    let out = Command::new(tshark)
        .arg("--version")
        .output()
        .expect("run tshark --version");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .next()
        .unwrap_or("unknown")
        .to_owned()
}

// ---------------------------------------------------------------------------------------------
// Classic libpcap writer: global header, then per packet a record header + Ethernet + IPv4 + UDP.
// ---------------------------------------------------------------------------------------------

const LINKTYPE_ETHERNET: u32 = 1;
const SNAPLEN: u32 = 65535;

struct Pcap {
    buf: Vec<u8>,
    packets: u32,
}

impl Pcap {
    fn new() -> Pcap {
        let mut buf = Vec::new();
        buf.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes()); // magic, microsecond timestamps
        buf.extend_from_slice(&2u16.to_le_bytes()); // version major
        buf.extend_from_slice(&4u16.to_le_bytes()); // version minor
        buf.extend_from_slice(&0i32.to_le_bytes()); // thiszone
        buf.extend_from_slice(&0u32.to_le_bytes()); // sigfigs
        buf.extend_from_slice(&SNAPLEN.to_le_bytes());
        buf.extend_from_slice(&LINKTYPE_ETHERNET.to_le_bytes());
        Pcap { buf, packets: 0 }
    }

    /// Appends one UDP datagram 127.0.0.1:`src` -> 127.0.0.1:`dst`.
    fn push_udp(&mut self, src: u16, dst: u16, payload: &[u8]) {
        let udp_len = 8 + payload.len();
        let ip_len = 20 + udp_len;
        assert!(ip_len <= usize::from(u16::MAX), "datagram too large");
        let mut frame = Vec::with_capacity(14 + ip_len);
        // Ethernet II: locally administered MACs, EtherType IPv4
        let (mac_src, mac_dst) = if src == UA_PORT {
            ([0x02, 0, 0, 0, 0, 0x01], [0x02, 0, 0, 0, 0, 0x02])
        } else {
            ([0x02, 0, 0, 0, 0, 0x02], [0x02, 0, 0, 0, 0, 0x01])
        };
        frame.extend_from_slice(&mac_dst);
        frame.extend_from_slice(&mac_src);
        frame.extend_from_slice(&0x0800u16.to_be_bytes());
        // IPv4 header, no options
        let mut ip = [0u8; 20];
        ip[0] = 0x45; // version 4, IHL 5
        ip[2..4].copy_from_slice(&(ip_len as u16).to_be_bytes());
        ip[4..6].copy_from_slice(&(self.packets as u16).to_be_bytes()); // identification
        ip[6] = 0x40; // DF
        ip[8] = 64; // TTL
        ip[9] = 17; // UDP
        ip[12..16].copy_from_slice(&[127, 0, 0, 1]);
        ip[16..20].copy_from_slice(&[127, 0, 0, 1]);
        let ck = ipv4_checksum(&ip);
        ip[10..12].copy_from_slice(&ck.to_be_bytes());
        frame.extend_from_slice(&ip);
        // UDP header; checksum 0 = "not computed" (allowed over IPv4)
        frame.extend_from_slice(&src.to_be_bytes());
        frame.extend_from_slice(&dst.to_be_bytes());
        frame.extend_from_slice(&(udp_len as u16).to_be_bytes());
        frame.extend_from_slice(&0u16.to_be_bytes());
        frame.extend_from_slice(payload);
        // record header: a fixed, made-up timestamp one second apart per packet
        let len = frame.len() as u32;
        assert!(len <= SNAPLEN);
        self.buf
            .extend_from_slice(&(1_700_000_000 + self.packets).to_le_bytes());
        self.buf.extend_from_slice(&0u32.to_le_bytes());
        self.buf.extend_from_slice(&len.to_le_bytes()); // incl_len
        self.buf.extend_from_slice(&len.to_le_bytes()); // orig_len
        self.buf.extend_from_slice(&frame);
        self.packets += 1;
    }
}

fn ipv4_checksum(h: &[u8; 20]) -> u16 {
    let mut sum: u32 = h
        .chunks(2)
        .map(|w| u32::from(u16::from_be_bytes([w[0], w[1]])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

// ---------------------------------------------------------------------------------------------
// The message set
// ---------------------------------------------------------------------------------------------

struct Case {
    label: String,
    bytes: Vec<u8>,
}

impl Case {
    fn new(label: impl Into<String>, bytes: Vec<u8>) -> Case {
        Case {
            label: label.into(),
            bytes,
        }
    }
}

const DOMAIN: &str = "ims.mnc001.mcc001.3gppnetwork.org";

/// RP-DATA (MS to network) carrying an SMS-SUBMIT "Hello" (3GPP TS 24.011 / 23.040), as in
/// sip-bench/5.sip with another message reference.
const RP_DATA: [u8; 30] = [
    0x00, 0x02, 0x00, 0x07, 0x91, 0x44, 0x77, 0x58, 0x10, 0x06, 0x50, 0x12, 0x01, 0x2b, 0x0c, 0x91,
    0x44, 0x77, 0x21, 0x43, 0x65, 0x87, 0x00, 0x00, 0x05, 0xc8, 0x32, 0x9b, 0xfd, 0x06,
];

fn sdp(addr: &str, port: u16, version: u32) -> String {
    format!(
        "v=0\r\no=- 4711 {version} IN IP4 {addr}\r\ns=-\r\nc=IN IP4 {addr}\r\nt=0 0\r\n\
         m=audio {port} RTP/AVP 116 111\r\nb=AS:49\r\na=rtpmap:116 AMR-WB/16000/1\r\n\
         a=fmtp:116 mode-change-capability=2;max-red=0\r\na=rtpmap:111 telephone-event/16000\r\n\
         a=fmtp:111 0-15\r\na=ptime:20\r\na=maxptime:240\r\na=sendrecv\r\n"
    )
}

fn built(b: RequestBuilder) -> Vec<u8> {
    b.build()
        .unwrap_or_else(|e| panic!("RequestBuilder output does not parse: {e}"))
        .bytes()
        .to_vec()
}

fn built_resp(b: ResponseBuilder) -> Vec<u8> {
    b.build()
        .unwrap_or_else(|e| panic!("ResponseBuilder output does not parse: {e}"))
        .bytes()
        .to_vec()
}

fn builder_cases() -> Vec<Case> {
    let ue = format!("sip:001010000012345@{DOMAIN}");
    let mut out = Vec::new();

    let register = built(
        RequestBuilder::new(Method::Register, &format!("sip:{DOMAIN}"))
            .header(
                "Via",
                "SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK-reg-0001;rport",
            )
            .header("Max-Forwards", 70)
            .header("Route", "<sip:127.0.0.1:5070;lr>")
            .header("From", format!("<{ue}>;tag=reg-f1"))
            .header("To", format!("<{ue}>"))
            .header("Call-ID", "reg-7f3a9c0d@127.0.0.1")
            .header("CSeq", "2 REGISTER")
            .header(
                "Contact",
                "<sip:001010000012345@127.0.0.1:5060>;expires=600000;\
                 +sip.instance=\"<urn:gsma:imei:35209900-176148-1>\";+g.3gpp.smsip",
            )
            .header("Expires", 600000)
            .header("Supported", "path, gruu, sec-agree")
            .header(
                "Authorization",
                format!(
                    "Digest username=\"001010000012345@{DOMAIN}\",realm=\"{DOMAIN}\",\
                     uri=\"sip:{DOMAIN}\",nonce=\"qdvN5V3XoE0u8VmFOcLLWo2vYkVyhgAAHKp7nDx0yQs=\",\
                     response=\"6629fae49393a05397450978507c4ef1\",algorithm=AKAv1-MD5,\
                     cnonce=\"0a4f113b\",nc=00000001,qop=auth"
                ),
            )
            .header("User-Agent", "ims-rs interop test"),
    );
    let reg_msg = parse_datagram(&register).unwrap();
    out.push(Case::new(
        "builder 200 to REGISTER (from_request)",
        built_resp(
            ResponseBuilder::from_request(&reg_msg, 200)
                .header(
                    "Contact",
                    "<sip:001010000012345@127.0.0.1:5060>;expires=600000",
                )
                .header("Path", format!("<sip:term@pcscf.{DOMAIN};lr>"))
                .header("Service-Route", format!("<sip:orig@scscf.{DOMAIN};lr>")),
        ),
    ));
    out.insert(
        0,
        Case::new("builder REGISTER with Authorization", register),
    );

    let invite = built(
        RequestBuilder::new(
            Method::Invite,
            &format!("sip:+447700900123@{DOMAIN};user=phone"),
        )
        .header(
            "Via",
            "SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK-inv-0001;rport",
        )
        .header("Max-Forwards", 70)
        .header(
            "Route",
            "<sip:127.0.0.1:5070;lr>, <sip:orig@scscf.example.net;lr>",
        )
        .header("Record-Route", "<sip:127.0.0.1:5070;lr>")
        .header(
            "From",
            format!("\"Alice \\\"A\\\" Smith\" <{ue}>;tag=inv-f1"),
        )
        .header("To", "<tel:+447700900123>")
        .header("Call-ID", "inv-1b2c3d4e@127.0.0.1")
        .header("CSeq", "1 INVITE")
        .header("Contact", "<sip:001010000012345@127.0.0.1:5060>")
        .header("Supported", "100rel, timer, precondition")
        .header(
            "Allow",
            "INVITE, ACK, CANCEL, BYE, UPDATE, PRACK, MESSAGE, OPTIONS",
        )
        .body("application/sdp", sdp("127.0.0.1", 40000, 1)),
    );
    let inv_msg = parse_datagram(&invite).unwrap();
    let trying = built_resp(ResponseBuilder::from_request(&inv_msg, 100));
    let ringing = built_resp(
        ResponseBuilder::from_request(&inv_msg, 183)
            .header("Contact", "<sip:+447700900123@127.0.0.2:5060>")
            .header("Require", "100rel, precondition")
            .header("RSeq", 9021)
            .body("application/sdp", sdp("127.0.0.2", 40018, 1)),
    );
    let rng_msg = parse_datagram(&ringing).unwrap();
    let to_with_tag = rng_msg.header(HeaderName::To).unwrap().to_owned();
    out.push(Case::new("builder INVITE with SDP", invite.clone()));
    out.push(Case::new("builder 100 Trying (from_request)", trying));
    out.push(Case::new(
        "builder 183 with RSeq/Require (from_request)",
        ringing.clone(),
    ));

    out.push(Case::new(
        "builder BYE",
        built(
            RequestBuilder::new(Method::Bye, "sip:+447700900123@127.0.0.2:5060")
                .header(
                    "Via",
                    "SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK-bye-0001;rport",
                )
                .header("Max-Forwards", 70)
                .header("Route", "<sip:127.0.0.1:5070;lr>")
                .header(
                    "From",
                    format!("\"Alice \\\"A\\\" Smith\" <{ue}>;tag=inv-f1"),
                )
                .header("To", &to_with_tag)
                .header("Call-ID", "inv-1b2c3d4e@127.0.0.1")
                .header("CSeq", "3 BYE")
                .header("Reason", "Q.850;cause=16;text=\"Normal call clearing\""),
        ),
    ));

    out.push(Case::new(
        "builder MESSAGE with binary application/vnd.3gpp.sms",
        built(
            RequestBuilder::new(Method::Message, &format!("sip:+447785016005@{DOMAIN}"))
                .header(
                    "Via",
                    "SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK-sms-0001;rport",
                )
                .header("Max-Forwards", 70)
                .header("Route", "<sip:127.0.0.1:5070;lr>")
                .header("From", format!("<{ue}>;tag=sms-f1"))
                .header("To", format!("<sip:+447785016005@{DOMAIN}>"))
                .header("Call-ID", "sms-0a1b2c3d@127.0.0.1")
                .header("CSeq", "11 MESSAGE")
                .header("Request-Disposition", "no-fork")
                .header("Accept-Contact", "*;+g.3gpp.smsip")
                .body("application/vnd.3gpp.sms", RP_DATA.to_vec()),
        ),
    ));

    let reginfo = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n\
         <reginfo xmlns=\"urn:ietf:params:xml:ns:reginfo\" version=\"0\" state=\"full\">\r\n\
         <registration aor=\"{ue}\" id=\"a1\" state=\"active\">\r\n\
         <contact id=\"c1\" state=\"active\" event=\"registered\" expires=\"600000\">\r\n\
         <uri>sip:001010000012345@127.0.0.1:5060</uri>\r\n\
         </contact>\r\n</registration>\r\n</reginfo>\r\n"
    );
    out.push(Case::new(
        "builder NOTIFY reg event",
        built(
            RequestBuilder::new(Method::Notify, "sip:001010000012345@127.0.0.1:5060")
                .header("Via", "SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK-ntf-0001")
                .header("Max-Forwards", 70)
                .header(
                    "Route",
                    "<sip:127.0.0.1:5070;lr>,<sip:term@pcscf.example.net;lr>",
                )
                .header("From", format!("<{ue}>;tag=scscf-1"))
                .header("To", format!("<{ue}>;tag=ue-1"))
                .header("Call-ID", "sub-9e8d7c6b@127.0.0.1")
                .header("CSeq", "3 NOTIFY")
                .header("Contact", format!("<sip:scscf.{DOMAIN}:6060>"))
                .header("Event", "reg")
                .header("Subscription-State", "active;expires=600000")
                .body("application/reginfo+xml", reginfo),
        ),
    ));

    // compact header names (RFC 3261 §7.3.3) and an extension header
    out.push(Case::new(
        "builder OPTIONS with compact header names",
        built(
            RequestBuilder::new(Method::Options, &format!("sip:{DOMAIN}"))
                .header("v", "SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK-opt-0001")
                .header("Max-Forwards", 70)
                .header("f", format!("<{ue}>;tag=opt-f1"))
                .header("t", format!("<sip:{DOMAIN}>"))
                .header("i", "opt-5a4b3c2d@127.0.0.1")
                .header("CSeq", "7 OPTIONS")
                .header("k", "path")
                .header("X-Interop-Test", "ims-rs")
                .header("l", 0),
        ),
    ));

    // an extension method (RFC 3261 §7.1: any token)
    out.push(Case::new(
        "builder extension method",
        built(
            RequestBuilder::new(Method::Other("X-PING.v2"), &format!("sip:{DOMAIN}"))
                .header("Via", "SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK-ext-0001")
                .header("Max-Forwards", 1)
                .header("From", format!("<{ue}>;tag=ext-f1"))
                .header("To", format!("<sip:{DOMAIN}>"))
                .header("Call-ID", "ext-1a2b@127.0.0.1")
                .header("CSeq", "1 X-PING.v2"),
        ),
    ));

    // a 2xx to INVITE made with from_request and a second Via (as a proxy would have sent it)
    let two_via = {
        let mut e = inv_msg.edit();
        e.push_via("SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-prx-inv-1");
        e.to_vec()
    };
    let two_via_msg = parse_datagram(&two_via).unwrap();
    out.push(Case::new(
        "builder 200 to a proxied INVITE (from_request, 2 Via)",
        built_resp(
            ResponseBuilder::from_request(&two_via_msg, 200)
                .header("Contact", "<sip:+447700900123@127.0.0.2:5060>")
                .body("application/sdp", sdp("127.0.0.2", 40018, 2)),
        ),
    ));
    out
}

fn vector_cases() -> Vec<Case> {
    let mut out = Vec::new();
    for dir in ["tests/vectors/sip-bench", "tests/vectors/ims"] {
        let full = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
        let mut files: Vec<PathBuf> = std::fs::read_dir(&full)
            .unwrap_or_else(|e| panic!("{}: {e}", full.display()))
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "sip"))
            .collect();
        files.sort();
        assert!(!files.is_empty(), "no .sip files in {}", full.display());
        for f in files {
            let bytes = std::fs::read(&f).unwrap();
            parse_datagram(&bytes).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
            out.push(Case::new(format!("{dir}/{}", file_name(&f)), bytes));
        }
    }
    out
}

fn file_name(p: &Path) -> String {
    p.file_name().unwrap().to_string_lossy().into_owned()
}

/// Proxy edits of every case: requests get push_via + pop_route + decrement_max_forwards (RFC 3261
/// §16.6), responses with more than one Via get pop_via (§16.7).
fn edited_cases(src: &[Case]) -> Vec<Case> {
    let mut out = Vec::new();
    for (i, c) in src.iter().enumerate() {
        let m = parse_datagram(&c.bytes).unwrap();
        let mut e = m.edit();
        if m.is_request() {
            let branch = format!("z9hG4bK-proxy-{i:04}");
            e.push_via(format!("SIP/2.0/UDP 127.0.0.1:5070;branch={branch}"));
            let popped = e.pop_route();
            let mf = e
                .decrement_max_forwards()
                .unwrap_or_else(|err| panic!("{}: Max-Forwards: {err}", c.label));
            let bytes = e.to_vec();
            let fwd = parse_datagram(&bytes)
                .unwrap_or_else(|err| panic!("{}: edited message: {err}", c.label));
            assert_eq!(
                fwd.top_via().unwrap().unwrap().branch(),
                Some(branch.as_str())
            );
            assert_eq!(fwd.max_forwards().unwrap(), Some(mf));
            out.push(Case::new(
                format!(
                    "{} + push_via/pop_route({})/decrement_max_forwards",
                    c.label,
                    if popped.is_some() { "popped" } else { "none" }
                ),
                bytes,
            ));
        } else if m.headers_of(HeaderName::Via).count() > 1 {
            e.pop_via().expect("a Via to pop");
            out.push(Case::new(format!("{} + pop_via", c.label), e.to_vec()));
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Running tshark and reading its JSON
// ---------------------------------------------------------------------------------------------

/// Writes `cases` into `dir/name.pcap` (requests UA->proxy, responses proxy->UA) and returns tshark's
/// `-T json` output, one element per packet.
fn dissect(tshark: &Path, dir: &Path, name: &str, cases: &[Case]) -> Vec<Value> {
    let mut pcap = Pcap::new();
    for c in cases {
        let is_response = c.bytes.starts_with(b"SIP/");
        let (src, dst) = if is_response {
            (PROXY_PORT, UA_PORT)
        } else {
            (UA_PORT, PROXY_PORT)
        };
        pcap.push_udp(src, dst, &c.bytes);
    }
    assert_eq!(pcap.packets as usize, cases.len());
    let file = dir.join(format!("{name}.pcap"));
    std::fs::write(&file, &pcap.buf).unwrap();
    let out = Command::new(tshark)
        // a private, empty configuration directory: no user preference can change the dissection
        .env("WIRESHARK_CONFIG_DIR", dir)
        .arg("-n")
        .arg("-r")
        .arg(&file)
        .args(["-T", "json", "--no-duplicate-keys"])
        .output()
        .expect("run tshark");
    assert!(
        out.status.success(),
        "tshark failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "tshark JSON does not parse: {e}\n{}",
            String::from_utf8_lossy(&out.stdout)
        )
    });
    let packets = v.as_array().expect("tshark JSON is an array").clone();
    assert_eq!(
        packets.len(),
        cases.len(),
        "tshark read {} packets, wrote {}",
        packets.len(),
        cases.len()
    );
    packets
}

fn layers(packet: &Value) -> &Value {
    &packet["_source"]["layers"]
}

/// The first element of a repeated field (`--no-duplicate-keys` turns repeats into arrays).
fn first(v: &Value) -> &Value {
    match v {
        Value::Array(a) => a.first().unwrap_or(&Value::Null),
        other => other,
    }
}

/// Follows `path` through nested objects, taking the first element of any array on the way.
fn at<'v>(v: &'v Value, path: &[&str]) -> Option<&'v Value> {
    let mut cur = first(v);
    for k in path {
        cur = first(cur.get(*k)?);
    }
    Some(cur)
}

fn at_str(v: &Value, path: &[&str]) -> Option<String> {
    at(v, path).and_then(Value::as_str).map(str::to_owned)
}

/// How many times a field occurs (1 for a plain value, n for an array).
fn count(v: Option<&Value>) -> usize {
    match v {
        None => 0,
        Some(Value::Array(a)) => a.len(),
        Some(_) => 1,
    }
}

const PI_SEVERITY_WARN: u64 = 0x0060_0000;
const PI_GROUP_MALFORMED: u64 = 0x0700_0000;

/// True when a body contains a NUL byte followed by a non-NUL byte: Wireshark 4.0 then reports
/// "Trailing stray characters" on `sip.msg_hdr`, because packet-sip.c adds that FT_STRING item over
/// the rest of the datagram (headers and body) before shrinking it, and proto.c flags any non-NUL
/// byte after the first NUL of a string item.
fn body_has_nul_then_data(body: &[u8]) -> bool {
    match body.iter().position(|&b| b == 0) {
        Some(i) => body[i..].iter().any(|&b| b != 0),
        None => false,
    }
}

/// Malformed markers and warning/error (or malformed-group) expert infos anywhere in the packet.
/// The one known Wireshark artifact for binary bodies (see [`body_has_nul_then_data`]) is tolerated,
/// and only in exactly that situation.
fn problems(packet: &Value, body: &[u8], tolerated: &mut Vec<String>) -> Vec<String> {
    fn walk(
        v: &Value,
        path: &str,
        body: &[u8],
        out: &mut Vec<String>,
        tolerated: &mut Vec<String>,
    ) {
        match v {
            Value::Array(a) => {
                for x in a {
                    walk(x, path, body, out, tolerated);
                }
            }
            Value::Object(o) => {
                for (k, x) in o {
                    let here = if path.is_empty() {
                        k.clone()
                    } else {
                        format!("{path}/{k}")
                    };
                    if k == "_ws.malformed" {
                        out.push(format!("malformed marker at {here}: {x}"));
                    }
                    if k == "_ws.expert" {
                        let items: Vec<&Value> = match x {
                            Value::Array(a) => a.iter().collect(),
                            other => vec![other],
                        };
                        for e in items {
                            let num = |f: &str| {
                                e.get(f)
                                    .and_then(Value::as_str)
                                    .and_then(|s| s.parse::<u64>().ok())
                                    .unwrap_or(0)
                            };
                            let (sev, group) =
                                (num("_ws.expert.severity"), num("_ws.expert.group"));
                            let msg = e
                                .get("_ws.expert.message")
                                .and_then(Value::as_str)
                                .unwrap_or("?");
                            if sev < PI_SEVERITY_WARN && group != PI_GROUP_MALFORMED {
                                continue;
                            }
                            let text = format!(
                                "expert info at {here}: {msg} (severity {sev:#x}, group {group:#x})"
                            );
                            if here == "sip/sip.msg_hdr_tree/_ws.expert"
                                && msg == "Trailing stray characters"
                                && body_has_nul_then_data(body)
                            {
                                tolerated.push(text);
                            } else {
                                out.push(text);
                            }
                        }
                    }
                    walk(x, &here, body, out, tolerated);
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    let l = layers(packet);
    if l.get("sip").is_none() {
        out.push(format!(
            "not dissected as SIP (frame.protocols = {})",
            at_str(l, &["frame", "frame.protocols"]).unwrap_or_default()
        ));
    }
    walk(l, "", body, &mut out, tolerated);
    out
}

/// The values compared between ims-sip and tshark, as strings (`None` = absent).
#[derive(Debug, PartialEq, Eq)]
struct Fields {
    method: Option<String>,
    status: Option<String>,
    request_uri: Option<String>,
    call_id: Option<String>,
    cseq_seq: Option<String>,
    cseq_method: Option<String>,
    top_via_branch: Option<String>,
    via_lines: usize,
    from_tag: Option<String>,
    to_tag: Option<String>,
    max_forwards: Option<String>,
    content_length: Option<String>,
}

const FIELD_NAMES: [&str; 12] = [
    "method",
    "status",
    "request_uri",
    "call_id",
    "cseq_seq",
    "cseq_method",
    "top_via_branch",
    "via_lines",
    "from_tag",
    "to_tag",
    "max_forwards",
    "content_length",
];

impl Fields {
    fn as_vec(&self) -> [String; 12] {
        let s = |o: &Option<String>| format!("{o:?}");
        [
            s(&self.method),
            s(&self.status),
            s(&self.request_uri),
            s(&self.call_id),
            s(&self.cseq_seq),
            s(&self.cseq_method),
            s(&self.top_via_branch),
            self.via_lines.to_string(),
            s(&self.from_tag),
            s(&self.to_tag),
            s(&self.max_forwards),
            s(&self.content_length),
        ]
    }

    /// What ims-sip's typed accessors say.
    fn from_ims(m: &Message<'_>) -> Fields {
        let cseq = m.cseq().expect("CSeq parses").expect("CSeq present");
        Fields {
            method: m.method().map(|x| x.as_str().to_owned()),
            status: m.status().map(|x| x.to_string()),
            request_uri: m.request_uri().map(|u| u.as_str().to_owned()),
            call_id: m
                .call_id()
                .expect("Call-ID parses")
                .map(|c| c.as_str().to_owned()),
            cseq_seq: Some(cseq.seq.to_string()),
            cseq_method: Some(cseq.method.as_str().to_owned()),
            top_via_branch: m
                .top_via()
                .expect("top Via parses")
                .and_then(|v| v.branch().map(str::to_owned)),
            via_lines: m.headers_of(HeaderName::Via).count(),
            from_tag: m
                .from()
                .expect("From parses")
                .and_then(|f| f.tag().map(str::to_owned)),
            to_tag: m
                .to()
                .expect("To parses")
                .and_then(|t| t.tag().map(str::to_owned)),
            max_forwards: m
                .max_forwards()
                .expect("Max-Forwards parses")
                .map(|n| n.to_string()),
            content_length: m.content_length().map(|n| n.to_string()),
        }
    }

    /// What tshark's SIP dissector says.
    fn from_tshark(packet: &Value) -> Fields {
        let sip = &layers(packet)["sip"];
        let h = at(sip, &["sip.msg_hdr_tree"]).unwrap_or(&Value::Null);
        Fields {
            method: at_str(sip, &["sip.Request-Line_tree", "sip.Method"]),
            status: at_str(sip, &["sip.Status-Line_tree", "sip.Status-Code"]),
            request_uri: at_str(sip, &["sip.Request-Line_tree", "sip.r-uri"]),
            call_id: at_str(h, &["sip.Call-ID"]),
            cseq_seq: at_str(h, &["sip.CSeq_tree", "sip.CSeq.seq"]),
            cseq_method: at_str(h, &["sip.CSeq_tree", "sip.CSeq.method"]),
            top_via_branch: at_str(h, &["sip.Via_tree", "sip.Via.branch"]),
            via_lines: count(h.get("sip.Via")),
            from_tag: at_str(h, &["sip.From_tree", "sip.from.tag"]),
            to_tag: at_str(h, &["sip.To_tree", "sip.to.tag"]),
            max_forwards: at_str(h, &["sip.Max-Forwards"]),
            content_length: at_str(h, &["sip.Content-Length"]),
        }
    }

    /// `name: ims=... tshark=...` for every differing field.
    fn diff(&self, tshark: &Fields) -> Vec<String> {
        let (a, b) = (self.as_vec(), tshark.as_vec());
        FIELD_NAMES
            .iter()
            .zip(a.iter().zip(b.iter()))
            .filter(|(_, (x, y))| x != y)
            .map(|(n, (x, y))| format!("{n}: ims-sip={x} tshark={y}"))
            .collect()
    }
}

// ---------------------------------------------------------------------------------------------
// The tests
// ---------------------------------------------------------------------------------------------

#[test]
fn tshark_agrees_with_ims_sip() {
    let Some(tshark) = tshark() else { return };
    let version = tshark_version(&tshark);
    eprintln!("using {} ({version})", tshark.display());

    let mut cases = builder_cases();
    let n_builder = cases.len();
    cases.extend(vector_cases());
    let n_vectors = cases.len() - n_builder;
    let edited = edited_cases(&cases);
    cases.extend(edited);
    assert!(cases.len() >= 12, "need at least 12 messages");
    eprintln!(
        "{} packets: {n_builder} from builders, {n_vectors} vectors, {} proxy edits",
        cases.len(),
        cases.len() - n_builder - n_vectors
    );

    let dir = common::TempDir::new("tshark", "agree", "IMS_KEEP_PCAP");
    let packets = dissect(&tshark, dir.path(), "interop", &cases);

    let mut failures = String::new();
    let mut tolerated = Vec::new();
    for (i, (c, p)) in cases.iter().zip(&packets).enumerate() {
        let frame = at_str(layers(p), &["frame", "frame.number"]).unwrap_or_default();
        assert_eq!(frame, (i + 1).to_string(), "packet order");
        let m = parse_datagram(&c.bytes).unwrap_or_else(|e| panic!("{}: {e}", c.label));
        let mut tol = Vec::new();
        let mut bad = problems(p, m.body(), &mut tol);
        tolerated.extend(
            tol.into_iter()
                .map(|t| format!("#{frame} {}: {t}", c.label)),
        );
        let ims = Fields::from_ims(&m);
        let ts = Fields::from_tshark(p);
        bad.extend(ims.diff(&ts));
        // the basics must be there at all: a comparison of two `None`s proves nothing
        if ims.call_id.is_none() || ims.top_via_branch.is_none() {
            bad.push("message lacks Call-ID or a Via branch".into());
        }
        if ims.method.is_none() == ims.status.is_none() {
            bad.push("neither (or both) method and status".into());
        }
        if !bad.is_empty() {
            let _ = writeln!(failures, "packet #{frame} ({}):", c.label);
            for b in bad {
                let _ = writeln!(failures, "    {b}");
            }
        }
    }
    for t in &tolerated {
        eprintln!("tolerated known Wireshark artifact: {t}");
    }
    assert!(
        failures.is_empty(),
        "tshark ({version}) disagrees with ims-sip:\n{failures}"
    );
    eprintln!(
        "{} packets agree ({} tolerated artifacts)",
        cases.len(),
        tolerated.len()
    );
}

/// The checks above must be able to fail: broken messages are flagged by tshark (and refused by
/// ims-sip), and a value mismatch is reported.
#[test]
fn tshark_checks_can_fail() {
    let Some(tshark) = tshark() else { return };
    let good = built(
        RequestBuilder::new(Method::Bye, "sip:bob@127.0.0.2:5060")
            .header("Via", "SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK-brk-0001")
            .header("Max-Forwards", 70)
            .header("From", "<sip:alice@example.com>;tag=a1")
            .header("To", "<sip:bob@example.com>;tag=b1")
            .header("Call-ID", "broken-1@127.0.0.1")
            .header("CSeq", "2 BYE")
            .header("User-Agent", "ims-rs"),
    );
    let text = String::from_utf8(good.clone()).unwrap();
    let broken: Vec<Case> = vec![
        Case::new(
            "Content-Length not a number",
            text.replace("Content-Length: 0", "Content-Length: 0x")
                .into_bytes(),
        ),
        Case::new(
            "header line without a colon",
            text.replace("User-Agent: ims-rs", "User-Agent ims-rs")
                .into_bytes(),
        ),
        Case::new(
            "header section not terminated by an empty line",
            good[..good.len() - 2].to_vec(),
        ),
        Case::new(
            "request line with a trailing space",
            text.replacen("SIP/2.0\r\n", "SIP/2.0 \r\n", 1).into_bytes(),
        ),
    ];
    // tshark 4.0 accepts these over UDP; ims-sip refuses them. Reported, not asserted on tshark.
    let lenient: Vec<Case> = vec![
        Case::new(
            "Content-Length larger than the datagram",
            text.replace("Content-Length: 0", "Content-Length: 40")
                .into_bytes(),
        ),
        Case::new(
            "CSeq number with trailing garbage",
            text.replace("CSeq: 2 BYE", "CSeq: 2x BYE").into_bytes(),
        ),
    ];
    let mut all = vec![Case::new("control (valid)", good.clone())];
    all.extend(broken);
    let n_broken = all.len();
    all.extend(lenient);

    let dir = common::TempDir::new("tshark", "broken", "IMS_KEEP_PCAP");
    let packets = dissect(&tshark, dir.path(), "broken", &all);

    // control: clean, and its fields agree
    let m = parse_datagram(&good).unwrap();
    let mut tol = Vec::new();
    assert_eq!(
        problems(&packets[0], m.body(), &mut tol),
        Vec::<String>::new()
    );
    let ims = Fields::from_ims(&m);
    let ts = Fields::from_tshark(&packets[0]);
    assert_eq!(ims.diff(&ts), Vec::<String>::new());

    // a value mismatch is caught by the comparison
    let other = text.replace("broken-1@127.0.0.1", "broken-2@127.0.0.1");
    let other = parse_datagram(other.as_bytes()).unwrap();
    let d = Fields::from_ims(&other).diff(&ts);
    assert!(
        d.len() == 1 && d[0].starts_with("call_id:"),
        "mismatch not reported: {d:?}"
    );

    for (c, p) in all[1..n_broken].iter().zip(&packets[1..n_broken]) {
        let mut tol = Vec::new();
        let body = c
            .bytes
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .map_or(&[][..], |i| &c.bytes[i + 4..]);
        let found = problems(p, body, &mut tol);
        assert!(
            !found.is_empty(),
            "{}: tshark did not flag a broken message",
            c.label
        );
        eprintln!("{}: tshark flagged {found:?}", c.label);
        assert!(
            parse_datagram(&c.bytes).is_err(),
            "{}: ims-sip accepted a broken message",
            c.label
        );
    }
    for (c, p) in all[n_broken..].iter().zip(&packets[n_broken..]) {
        let mut tol = Vec::new();
        let found = problems(p, &[], &mut tol);
        let refused = match parse_datagram(&c.bytes) {
            Err(e) => format!("parse error: {e}"),
            Ok(m) => match m.cseq() {
                Err(e) => format!("CSeq error: {e}"),
                Ok(_) => panic!("{}: ims-sip accepted it", c.label),
            },
        };
        eprintln!(
            "{}: ims-sip refuses ({refused}); tshark {}",
            c.label,
            if found.is_empty() {
                "does not flag it".to_owned()
            } else {
                format!("flags {found:?}")
            }
        );
    }
}
