//! Interop with Wireshark's MSRP dissector: frames made by ims-msrp's session, relay and AUTH
//! cores (every method, chunked SEND with `+`/`$`/`#`, responses, REPORTs, AUTH with digest,
//! Use-Path) are written into a libpcap file as TCP segments of one connection
//! 127.0.0.1:40000 <-> 127.0.0.1:2855 (three-way handshake, then one frame per segment with exact
//! sequence and acknowledgement numbers: tshark 4.0's MSRP dissector reads one PDU per segment)
//! and dissected with `-d tcp.port==2855,msrp`. For every frame, tshark's transaction id (start
//! line and end line), method or status code, Message-ID, Byte-Range and continuation flag must
//! equal ours, with no malformed packet and no expert info.
//!
//! A second test breaks frames on purpose and asserts that the comparison flags them.
//!
//! Skips when `tshark` is not on PATH unless `IMS_REQUIRE_INTEROP=1`.

// The frames are made on a virtual clock; nothing waits on it.
#![allow(clippy::disallowed_methods)]

mod common;

mod tcp_pcap;

use ims::msrp::relay::{AuthClient, AuthOutcome, Relay, RelayConfig};
use ims::msrp::session::{Config, Outgoing, Session, Transmit};
use ims::msrp::{parse_frame, Flag, Frame, FrameBuilder, UriBuf};
use std::path::Path;
use std::process::Command;
use std::time::Instant;
use tcp_pcap::TcpPcap;

const CLIENT: u16 = 40000;
const SERVER: u16 = 2855;

/// What we expect tshark to read from one frame.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Fields {
    tids: String,
    method: String,
    status: String,
    message_id: String,
    byte_range: String,
    flag: String,
}

fn ours(f: &Frame) -> Fields {
    let h = &f.head;
    Fields {
        tids: format!("{0},{0}", h.transaction_id()),
        method: h
            .method()
            .map(|m| m.as_str().to_owned())
            .unwrap_or_default(),
        status: h.status().map(|s| s.to_string()).unwrap_or_default(),
        message_id: h.message_id().unwrap_or("").to_owned(),
        byte_range: h.header("Byte-Range").unwrap_or("").to_owned(),
        flag: match f.flag {
            Flag::End => "$",
            Flag::Continue => "+",
            Flag::Abort => "#",
        }
        .to_owned(),
    }
}

fn uri(s: &str) -> UriBuf {
    UriBuf::parse(s).unwrap()
}

/// Frames from our cores, each with its direction (0: client to 2855, 1: back).
fn frames() -> Vec<(usize, Vec<u8>)> {
    let now = Instant::now();
    let alice = "msrp://127.0.0.1:40000/alice77;tcp";
    let bob = "msrp://127.0.0.1:2855/bob88;tcp";
    let mut ca = Config::new(uri(alice), vec![uri(bob)]);
    ca.chunk_size = 16;
    let mut a = Session::new(ca, 1);
    let mut b = Session::new(Config::new(uri(bob), vec![uri(alice)]), 2);
    let mut out = Vec::new();
    let push =
        |out: &mut Vec<(usize, Vec<u8>)>, dir: usize, t: &Transmit| out.push((dir, t.to_vec()));
    // a chunked message with a success report, a chat message, an aborted one, a bind
    let mut m = Outgoing::new("text/plain", "The quick brown fox jumps over the lazy dog");
    m.success_report = true;
    a.send(m);
    a.send(Outgoing::new("text/plain;charset=UTF-8", "h\u{e9}llo"));
    let big = a.send(Outgoing::new("application/octet-stream", vec![0x5au8; 40]));
    a.send(Outgoing::new(
        "message/cpim",
        ims::msrp::cpim::CpimBuilder::new("<sip:a@x>", "<sip:b@x>")
            .content("text/plain", b"hi")
            .to_bytes(),
    ));
    let mut n = 0;
    while let Some(t) = a.poll_transmit(now) {
        n += 1;
        if n == 5 {
            a.abort(&big);
        }
        push(&mut out, 0, &t);
        let (f, _) = parse_frame(&t.to_vec()).unwrap();
        b.handle_frame(now, f);
        while let Some(r) = b.poll_transmit(now) {
            push(&mut out, 1, &r);
        }
    }
    // a bodiless SEND, a 481, an extension method
    out.push((
        0,
        FrameBuilder::request("bind0001", "SEND")
            .to_path(bob)
            .from_path(alice)
            .header("Message-ID", "bind0001")
            .header("Byte-Range", "1-0/0")
            .to_bytes(),
    ));
    out.push((
        1,
        FrameBuilder::response("bind0001", 481, None)
            .to_path(alice)
            .from_path(bob)
            .to_bytes(),
    ));
    out.push((
        0,
        FrameBuilder::request("nick0001", "NICKNAME")
            .to_path(bob)
            .from_path(alice)
            .header("Use-Nickname", "\"Alice\"")
            .to_bytes(),
    ));
    out.push((
        1,
        FrameBuilder::response("nick0001", 501, None)
            .to_path(alice)
            .from_path(bob)
            .to_bytes(),
    ));
    // an interruptible chunk (RFC 4975 §7.1): ended with `+` mid-body under range-end `*` for a
    // chat message, then resumed at the next byte
    let mut cp = Config::new(uri(alice), vec![uri(bob)]);
    cp.piece_size = Some(20);
    cp.chunk_size = 1000;
    let mut p = Session::new(cp, 5);
    p.send(Outgoing::new("text/plain", "x".repeat(100)));
    let mut frame = Vec::new();
    let mut polls = 0;
    loop {
        if polls == 2 {
            p.send(Outgoing::new("text/plain", "chat"));
        }
        let Some(t) = p.poll_transmit(now) else { break };
        polls += 1;
        frame.extend_from_slice(&t.to_vec());
        if !p.mid_chunk() {
            out.push((0, std::mem::take(&mut frame)));
        }
    }
    let ranges: Vec<_> = out[out.len() - 3..]
        .iter()
        .map(|(_, b)| {
            let (f, _) = parse_frame(b).unwrap();
            (
                f.head.header("Byte-Range").unwrap().to_owned(),
                f.body.len(),
            )
        })
        .collect();
    assert_eq!(
        ranges,
        [
            ("1-*/100".to_owned(), 40),
            ("1-4/4".to_owned(), 4),
            ("41-*/100".to_owned(), 60)
        ]
    );
    // AUTH with a relay listening on 2855
    let relay_uri = "msrp://127.0.0.1:2855;tcp";
    let mut r = Relay::new(RelayConfig::new(uri(relay_uri), "relay.example"), 3);
    r.add_user("alice", "pw");
    let mut c = AuthClient::new(uri(alice), uri(relay_uri), "alice", "pw", Some(600), 4);
    let mut w = c.start();
    loop {
        out.push((0, w.clone()));
        let (f, _) = parse_frame(&w).unwrap();
        r.handle_frame(now, 1, f);
        let o = r.poll_output().unwrap().frame.to_vec();
        out.push((1, o.clone()));
        match c.handle_response(&parse_frame(&o).unwrap().0.head) {
            AuthOutcome::Send(x) => w = x,
            AuthOutcome::Done { .. } => break,
            AuthOutcome::Failed(s) => panic!("AUTH failed {s}"),
        }
    }
    out
}

struct Dissected {
    fields: Vec<Fields>,
    problems: Vec<String>,
}

fn dissect(tshark: &Path, dir: &Path, name: &str, frames: &[(usize, Vec<u8>)]) -> Dissected {
    let mut t = TcpPcap::new(CLIENT, SERVER);
    for (d, f) in frames {
        t.segment(*d, 0x18, f); // PSH|ACK
    }
    let pcap = dir.join(format!("{name}.pcap"));
    std::fs::write(&pcap, &t.buf).unwrap();
    let out = Command::new(tshark)
        .arg("-r")
        .arg(&pcap)
        .args([
            "-d",
            "tcp.port==2855,msrp",
            "-Y",
            "msrp",
            "-T",
            "fields",
            "-E",
            "separator=\t",
            "-E",
            "occurrence=a",
            "-E",
            "aggregator=,",
        ])
        .args([
            "-e",
            "msrp.transaction.id",
            "-e",
            "msrp.method",
            "-e",
            "msrp.status.code",
            "-e",
            "msrp.messageid",
            "-e",
            "msrp.byte.range",
            "-e",
            "msrp.cnt.flg",
            "-e",
            "_ws.expert.message",
            "-e",
            "_ws.malformed",
            "-e",
            "frame.protocols",
        ])
        .output()
        .expect("run tshark");
    assert!(
        out.status.success(),
        "tshark failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let mut fields = Vec::new();
    let mut problems = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let c: Vec<&str> = line.split('\t').collect();
        let g = |k: usize| c.get(k).copied().unwrap_or("").to_owned();
        fields.push(Fields {
            tids: g(0),
            method: g(1),
            status: g(2),
            message_id: g(3),
            byte_range: g(4),
            flag: g(5),
        });
        if !g(6).is_empty() {
            problems.push(format!("packet {i}: expert info: {}", g(6)));
        }
        if !g(7).is_empty() || g(8).contains("malformed") {
            problems.push(format!("packet {i}: malformed"));
        }
    }
    Dissected { fields, problems }
}

fn compare(frames: &[(usize, Vec<u8>)], d: &Dissected) -> Vec<String> {
    let mut bad = d.problems.clone();
    if d.fields.len() != frames.len() {
        bad.push(format!(
            "tshark saw {} MSRP packets, we wrote {}",
            d.fields.len(),
            frames.len()
        ));
    }
    for (i, ((_, bytes), theirs)) in frames.iter().zip(&d.fields).enumerate() {
        let mine = match parse_frame(bytes) {
            Ok((f, _)) => ours(&f),
            Err(e) => {
                bad.push(format!("frame {i}: we cannot parse our own frame: {e}"));
                continue;
            }
        };
        if mine != *theirs {
            bad.push(format!(
                "frame {i}: ours {mine:?}\n            tshark {theirs:?}"
            ));
        }
    }
    bad
}

#[test]
fn tshark_decodes_our_frames() {
    let Some(tshark) = common::interop_tool("tshark", "install tshark (Debian package `tshark`)")
    else {
        return;
    };
    let dir = common::TempDir::new("msrp", "tshark", "IMS_KEEP_PCAP");
    let fs = frames();
    let methods: std::collections::BTreeSet<String> = fs
        .iter()
        .map(|(_, b)| parse_frame(b).unwrap().0)
        .map(|f| {
            f.head
                .method()
                .map(|m| m.as_str().to_owned())
                .unwrap_or_else(|| f.head.status().unwrap().to_string())
        })
        .collect();
    for want in [
        "SEND", "REPORT", "AUTH", "NICKNAME", "200", "401", "481", "501",
    ] {
        assert!(methods.contains(want), "{want} missing from {methods:?}");
    }
    let flags: std::collections::BTreeSet<_> = fs
        .iter()
        .map(|(_, b)| parse_frame(b).unwrap().0.flag.as_byte())
        .collect();
    assert_eq!(flags.len(), 3, "all three flags are exercised");
    let d = dissect(&tshark, dir.path(), "ours", &fs);
    let bad = compare(&fs, &d);
    assert!(
        bad.is_empty(),
        "{} frames; tshark disagrees:\n{}",
        fs.len(),
        bad.join("\n")
    );
    eprintln!("tshark agrees on {} MSRP frames ({methods:?})", fs.len());
}

#[test]
fn tshark_checks_can_fail() {
    let Some(tshark) = common::interop_tool("tshark", "install tshark (Debian package `tshark`)")
    else {
        return;
    };
    let dir = common::TempDir::new("msrp", "tshark-neg", "IMS_KEEP_PCAP");
    let good = FrameBuilder::request("abcd1234", "SEND")
        .to_path("msrp://127.0.0.1:2855/b;tcp")
        .from_path("msrp://127.0.0.1:40000/a;tcp")
        .header("Message-ID", "m0000001")
        .header("Byte-Range", "1-2/2")
        .body("text/plain", "hi")
        .to_bytes();
    // a frame whose end-line tid tshark reads differently from ours: our parser ends it at the
    // real end-line, tshark at the first line starting with -------
    let mut tricky = good.clone();
    let at = tricky.len() - b"\r\n-------abcd1234$\r\n".len();
    tricky.splice(at..at, b"\r\n-------zzzz9999+".iter().copied());
    let text = String::from_utf8(tricky.clone())
        .unwrap()
        .replace("1-2/2", "1-20/20");
    let fs = vec![(0, good), (0, text.into_bytes())];
    let d = dissect(&tshark, dir.path(), "neg", &fs);
    let bad = compare(&fs, &d);
    assert!(
        !bad.is_empty(),
        "the comparison did not notice a mismatching end-line"
    );
}
