//! Wireshark reads our Diameter over TLS: a live capture of two of our nodes on 127.0.0.1, once
//! over TLS from the connect (RFC 6733 §13, the 5658-style TLS port) and once with TLS started
//! after CER/CEA on a plain connection (inband security, RFC 6733 §6.10 / RFC 3588 §2.1), is
//! decrypted by tshark with the TLS session keys one node wrote
//! ([`NodeConfig::tls_key_log`], NSS key log format, `-o tls.keylog_file:FILE`).
//!
//! Each connection carries CER/CEA, DWR/DWA in both directions (Tw = 1 s), a Cx MAR/MAA, an Rx
//! AAR/AAA (two media components) and DPR/DPA. tshark must dissect every one of those commands,
//! with no malformed packet and no expert info of Warning or Error severity in the Diameter or
//! TLS layers; the MAR, MAA, AAR and AAA must show exactly the fields and AVP values that were
//! on the wire (the bytes the receiving node got: command code, flags, Application-Id,
//! identifiers, every AVP code in pre-order, Session-Id, Origin-Host, Result-Code, User-Name,
//! Public-Identity, Server-Name, Flow-Description, Media-Component-Number,
//! Max-Requested-Bandwidth-UL); the base commands their Origin-Host, the Cx and Rx
//! application ids in CER/CEA, Inband-Security-Id, Result-Code 2001 and the Disconnect-Cause we
//! sent. Without the key log tshark sees no Diameter after the CEA (checked too: the keys are what
//! makes it readable).
//!
//! Skips when `tshark` or `openssl` is missing unless `IMS_REQUIRE_INTEROP=1`. `IMS_KEEP_PCAP=1`
//! keeps the capture and the key log.
#![cfg(feature = "tls")]

mod common;
#[path = "interop_common/cx_rx.rs"]
mod cx_rx;
#[path = "interop_common/diameter_fields.rs"]
mod diameter_fields;
mod interop_common;

use cx_rx::{serve_cx_and_rx, Seen};
use diameter_fields::{expected, FIELDS};
use ims::diameter::base::{DisconnectCause, VendorSpecificApplicationId};
use ims::diameter::cx::{Mar, SipAuthDataItem};
use ims::diameter::dict::app;
use ims::diameter::peer::{Application, InbandSecurity};
use ims::diameter::Outcome;
use ims::net::diameter::{Node, NodeConfig};
use ims::net::tls::{ClientAuth, Identity, TlsConfig, Trust};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Needed by `cx_rx` (its freeDiameter relay part, unused here).
const FD_HOST: &str = "fd.test.example";
const SECS: Duration = Duration::from_secs(10);
const REALM: &str = "test.example";
const SERVER: &str = "hss.test.example";
const CLIENT: &str = "pcscf.test.example";

fn tls(pki: &interop_common::Pki, stem: &str, name: &str) -> TlsConfig {
    let (pem, key) = pki.leaf(stem, name);
    TlsConfig::new(
        Some(Identity::from_pem_files(pem, key).expect("leaf")),
        Trust::ca_pem_file(pki.path("ca.pem")).unwrap(),
        ClientAuth::Required,
    )
    .unwrap()
}

fn cfg(host: &str, inband: InbandSecurity, key_log: Option<PathBuf>) -> NodeConfig {
    let mut c = NodeConfig::new(host, REALM);
    c.applications = vec![
        Application::tgpp_auth(app::CX),
        Application::tgpp_auth(app::RX),
    ];
    c.vendor_id = 32473;
    c.connect_timeout = Duration::from_secs(5);
    c.reconnect_interval = None;
    c.watchdog_interval = Duration::from_secs(1);
    c.watchdog_jitter = Duration::ZERO;
    c.inband_security = inband;
    c.tls_key_log = key_log;
    c
}

/// What one run captured: the pcap, the key log, the server's port, and the application
/// messages as the receiving node got them (label, bytes).
struct Run {
    pcap: PathBuf,
    key_log: PathBuf,
    port: u16,
    app_messages: Vec<(&'static str, Vec<u8>)>,
}

async fn poll(what: &str, mut f: impl FnMut() -> bool) {
    for _ in 0..200 {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

/// Two nodes exchange CER/CEA, DWR/DWA, MAR/MAA, AAR/AAA and DPR/DPA over TLS (`inband`: TLS
/// after CER/CEA on a plain connection; else TLS from the connect) under a live capture. The
/// server writes the key log on the TLS port (`Node::listen_tls`), the client in the inband
/// case (`Node::set_inband_tls`).
async fn exchange(
    tshark: &Path,
    pki: &interop_common::Pki,
    dir: &Path,
    inband: bool,
) -> Option<Run> {
    let tag = if inband { "inband" } else { "tlsport" };
    let key_log = dir.join(format!("{tag}.keys"));
    let isi = if inband {
        InbandSecurity::TlsRequired
    } else {
        InbandSecurity::None
    };
    let server = Node::new(cfg(SERVER, isi, (!inband).then(|| key_log.clone())));
    let seen: Seen = Seen::default();
    serve_cx_and_rx(&server, &seen);
    let server_tls = tls(pki, &format!("{tag}-hss"), SERVER);
    let any: std::net::SocketAddr = "127.0.0.1:0".parse().unwrap();
    let addr = if inband {
        server.set_inband_tls(server_tls);
        server.listen(any).await.unwrap()
    } else {
        server.listen_tls(any, server_tls).await.unwrap()
    };
    let cap = common::LiveCapture::start(
        tshark,
        &format!("tcp port {}", addr.port()),
        dir.join(format!("{tag}.pcap")),
    )
    .await?;

    let client = Node::new(cfg(CLIENT, isi, inband.then(|| key_log.clone())));
    let client_tls = tls(pki, &format!("{tag}-pcscf"), CLIENT);
    if inband {
        client.set_inband_tls(client_tls);
        client.add_peer(SERVER, addr);
    } else {
        client.add_peer_tls(SERVER, addr, client_tls);
    }
    client.wait_open(SERVER, SECS).await.unwrap();
    assert!(client.peer_status(SERVER).unwrap().secure);

    // Cx MAR → MAA
    let mar = Mar {
        session_id: client.session_id().into(),
        vendor_specific_application_id: VendorSpecificApplicationId::cx(),
        origin_host: CLIENT.into(),
        origin_realm: REALM.into(),
        destination_realm: REALM.into(),
        user_name: "alice@test.example".into(),
        public_identity: "sip:alice@test.example".into(),
        sip_number_auth_items: 1,
        sip_auth_data_item: SipAuthDataItem {
            sip_authentication_scheme: Some("Digest-AKAv1-MD5".into()),
            ..Default::default()
        },
        server_name: "sip:scscf.test.example:6060".into(),
        ..Default::default()
    };
    let maa = client.send(&mar).await.unwrap();
    assert_eq!(maa.view().outcome(), Some(Outcome::SUCCESS));
    // Rx AAR (two media components, flows, codec data) → AAA
    let mut aar = ims::diameter::testing::rx_aar();
    aar.session_id = client.session_id().into();
    aar.origin_host = CLIENT.into();
    aar.origin_realm = REALM.into();
    aar.destination_realm = REALM.into();
    let aaa = client.send(&aar).await.unwrap();
    assert_eq!(aaa.view().outcome(), Some(Outcome::SUCCESS));
    // watchdogs both ways (Tw = 1 s)
    poll("DWR/DWA both ways", || {
        let s = client.peer_status(SERVER).unwrap().stats;
        s.dwr_sent >= 1 && s.dwa_received >= 1 && s.dwr_received >= 1
    })
    .await;
    // DPR/DPA
    client
        .disconnect(SERVER, DisconnectCause::DoNotWantToTalkToYou)
        .unwrap();
    client.wait_closed(SERVER, SECS).await.unwrap();
    server.wait_closed(CLIENT, SECS).await.unwrap();
    let pcap = cap.stop().await;
    client.shutdown();
    server.shutdown();

    let got = seen.lock().unwrap();
    assert_eq!(got.len(), 2, "the server got the MAR and the AAR");
    let app_messages = vec![
        ("MAR", got[0].message.bytes().to_vec()),
        ("MAA", maa.bytes().to_vec()),
        ("AAR", got[1].message.bytes().to_vec()),
        ("AAA", aaa.bytes().to_vec()),
    ];
    Some(Run {
        pcap,
        key_log,
        port: addr.port(),
        app_messages,
    })
}

/// The tshark Lua dissector for a connection where TLS starts after CER/CEA: on the port named
/// by `IMS_DIAMETER_PORT`, Diameter until the first TLS handshake record (content type 22,
/// version 3.x) of the TCP stream, TLS from that frame on.
const INBAND_LUA: &str = r#"
local diameter = Dissector.get("diameter")
local tls = Dissector.get("tls")
local stream = Field.new("tcp.stream")
local proto = Proto("diameter_inband", "Diameter, TLS after CER/CEA")
local tls_from = {}
function proto.dissector(tvb, pinfo, tree)
  local s = stream()()
  local from = tls_from[s]
  if from == nil and tvb:len() >= 2 and tvb(0, 1):uint() == 0x16 and tvb(1, 1):uint() == 0x03 then
    from = pinfo.number
    tls_from[s] = from
  end
  if from ~= nil and pinfo.number >= from then
    return tls:call(tvb, pinfo, tree)
  end
  return diameter:call(tvb, pinfo, tree)
end
DissectorTable.get("tcp.port"):add(tonumber(os.getenv("IMS_DIAMETER_PORT")), proto)
"#;

// ---------------------------------------------------------------------------------------------
// Reading tshark's PDML
// ---------------------------------------------------------------------------------------------

/// One Diameter message as tshark dissected it: every field `name` → its `show` values in order.
#[derive(Debug, Default)]
struct Pdu {
    frame: u32,
    fields: HashMap<String, Vec<String>>,
}

impl Pdu {
    fn all(&self, name: &str) -> Vec<String> {
        self.fields.get(name).cloned().unwrap_or_default()
    }
    fn joined(&self, name: &str) -> String {
        self.all(name).join("|")
    }
    fn is_request(&self) -> bool {
        self.all("diameter.flags.request")
            .first()
            .is_some_and(|v| v == "1" || v == "True")
    }
    fn command(&self) -> String {
        let code = self.joined("diameter.cmd.code");
        format!("{code}{}", if self.is_request() { "R" } else { "A" })
    }
}

/// What tshark said: the Diameter PDUs in order, and the problems (malformed packets, expert
/// infos of Warning or Error severity in the Diameter or TLS layers).
#[derive(Debug, Default)]
struct Dissection {
    pdus: Vec<Pdu>,
    problems: Vec<String>,
}

fn attr<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    let key = format!(" {name}=\"");
    let at = line.find(&key)? + key.len();
    let end = line[at..].find('"')?;
    Some(&line[at..at + end])
}

fn unescape(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&#x0a;", "\n")
        .replace("&#x0d;", "\r")
        .replace("&amp;", "&")
}

/// Runs tshark on the capture (`-T pdml`) with the key log (or none) and the decode-as rules;
/// splits its output into Diameter PDUs (each `<proto name="diameter">` element) and problems.
fn dissect(tshark: &Path, run: &Run, inband: bool, with_keys: bool) -> Dissection {
    let mut cmd = std::process::Command::new(tshark);
    cmd.arg("-r").arg(&run.pcap);
    if with_keys {
        cmd.arg("-o")
            .arg(format!("tls.keylog_file:{}", run.key_log.display()));
    }
    let p = run.port;
    if inband {
        // Wireshark's Diameter dissector does not follow inband TLS (it has no STARTTLS
        // hand-off): a small Lua dissector on the port passes the CER/CEA to it and, from the
        // first TLS handshake record on, the connection to the TLS dissector
        let lua = run.pcap.with_extension("lua");
        std::fs::write(&lua, INBAND_LUA).unwrap();
        cmd.arg("-X")
            .arg(format!("lua_script:{}", lua.display()))
            .env("IMS_DIAMETER_PORT", p.to_string());
    } else {
        cmd.args(["-d", &format!("tcp.port=={p},tls")]);
    }
    // the TLS payload is Diameter; RDPMT's heuristic would otherwise claim a CER
    cmd.args(["-d", &format!("tls.port=={p},diameter")])
        .args(["--disable-protocol", "rdpmt"])
        .args(["-T", "pdml"]);
    let out = cmd.output().expect("run tshark");
    assert!(
        out.status.success(),
        "tshark failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let mut d = Dissection::default();
    let mut frame = 0u32;
    // the open proto element: (name, its indentation)
    let mut proto: Option<(String, usize)> = None;
    let mut current: Option<Pdu> = None;
    // a multi-line value (Codec-Data's SDP) continues on lines not starting with '<'
    let mut lines: Vec<String> = Vec::new();
    for l in text.lines() {
        match lines.last_mut() {
            Some(prev) if !l.trim_start().starts_with('<') => {
                prev.push('\n');
                prev.push_str(l);
            }
            _ => lines.push(l.to_owned()),
        }
    }
    for line in &lines {
        let indent = line.len() - line.trim_start().len();
        let t = line.trim_start();
        if t.starts_with("<packet>") {
            frame += 1;
        }
        if let Some((_, at)) = &proto {
            if indent <= *at {
                if let Some(p) = current.take() {
                    d.pdus.push(p);
                }
                proto = None;
            }
        }
        if t.starts_with("<proto ") {
            let name = attr(t, "name").unwrap_or_default().to_owned();
            if name == "_ws.malformed" {
                d.problems.push(format!("frame {frame}: malformed ({t})"));
            }
            if name == "diameter" {
                current = Some(Pdu {
                    frame,
                    ..Pdu::default()
                });
            }
            if proto.is_none() && !t.ends_with("/>") {
                proto = Some((name, indent));
            }
            continue;
        }
        if !t.starts_with("<field ") {
            continue;
        }
        let (Some(name), Some(show)) = (attr(t, "name"), attr(t, "show")) else {
            continue;
        };
        let layer = proto.as_ref().map_or("", |(n, _)| n.as_str());
        if name == "_ws.expert.severity" && (layer == "diameter" || layer == "tls") {
            if let Ok(v) = show.parse::<u64>() {
                // 4194304 warn, 8388608 error (epan/proto.h PI_*)
                if v >= 0x0040_0000 {
                    d.problems
                        .push(format!("frame {frame}: {layer} expert info {v}"));
                }
            }
        }
        if name == "_ws.expert.message" && (layer == "diameter" || layer == "tls") {
            d.problems
                .push(format!("frame {frame}: {layer}: {}", unescape(show)));
        }
        if let Some(p) = current.as_mut() {
            p.fields
                .entry(name.to_owned())
                .or_default()
                .push(unescape(show));
        }
    }
    if let Some(p) = current.take() {
        d.pdus.push(p);
    }
    d
}

// ---------------------------------------------------------------------------------------------
// The checks
// ---------------------------------------------------------------------------------------------

/// Everything wrong with tshark's reading of a run (empty: all good).
fn check(run: &Run, d: &Dissection, inband: bool) -> Vec<String> {
    let mut bad = d.problems.clone();
    let cmds: Vec<String> = d.pdus.iter().map(Pdu::command).collect();
    // every command we exchanged, in both directions of the exchange
    for want in [
        "257R", "257A", "280R", "280A", "303R", "303A", "265R", "265A", "282R", "282A",
    ] {
        if !cmds.iter().any(|c| c == want) {
            bad.push(format!("{want} not dissected; tshark saw {cmds:?}"));
        }
    }
    if cmds.first().map(String::as_str) != Some("257R")
        || cmds.get(1).map(String::as_str) != Some("257A")
    {
        bad.push(format!(
            "the connection does not start with CER/CEA: {cmds:?}"
        ));
    }
    if cmds.len() >= 2 && cmds[cmds.len() - 2..] != ["282R".to_owned(), "282A".to_owned()] {
        bad.push(format!(
            "the connection does not end with DPR/DPA: {cmds:?}"
        ));
    }
    for p in &d.pdus {
        let c = p.command();
        let origin = p.joined("diameter.Origin-Host");
        let want_origin = if c == "257R" { CLIENT } else { SERVER };
        if c.starts_with("257") {
            if origin != want_origin {
                bad.push(format!("{c}: Origin-Host {origin:?}, want {want_origin}"));
            }
            let apps = p.all("diameter.Auth-Application-Id");
            for a in [app::CX, app::RX] {
                if !apps.contains(&a.to_string()) {
                    bad.push(format!("{c}: Auth-Application-Id {a} missing: {apps:?}"));
                }
            }
            let isi = p.joined("diameter.Inband-Security-Id");
            let want = if inband { "1" } else { "" };
            if isi != want {
                bad.push(format!("{c}: Inband-Security-Id {isi:?}, want {want:?}"));
            }
        } else if !origin.is_empty() && origin != CLIENT && origin != SERVER {
            bad.push(format!("{c}: Origin-Host {origin:?}"));
        } else if origin.is_empty() {
            bad.push(format!("{c}: no Origin-Host"));
        }
        if ["257A", "280A", "282A"].contains(&c.as_str())
            && p.joined("diameter.Result-Code") != "2001"
        {
            bad.push(format!(
                "{c}: Result-Code {:?}",
                p.joined("diameter.Result-Code")
            ));
        }
        if c == "282R" && p.joined("diameter.Disconnect-Cause") != "2" {
            bad.push(format!(
                "DPR: Disconnect-Cause {:?}, want 2 (DO_NOT_WANT_TO_TALK_TO_YOU)",
                p.joined("diameter.Disconnect-Cause")
            ));
        }
    }
    // the application messages, field for field as they were on the wire
    for (label, bytes) in &run.app_messages {
        let want = expected(bytes);
        let hbh = &want[3];
        let e2e = &want[4];
        let Some(p) = d.pdus.iter().find(|p| {
            p.joined("diameter.cmd.code") == want[0]
                && &p.joined("diameter.hopbyhopid") == hbh
                && &p.joined("diameter.endtoendid") == e2e
                && p.joined("diameter.flags") == want[1]
        }) else {
            bad.push(format!("{label} ({want:?}) not dissected"));
            continue;
        };
        for (k, f) in FIELDS.iter().enumerate() {
            let t = p.joined(f);
            if t != want[k] {
                bad.push(format!(
                    "{label} (frame {}): {f}: ours {:?}\n    tshark {t:?}",
                    p.frame, want[k]
                ));
            }
        }
    }
    bad
}

async fn decodes(inband: bool) {
    let Some(tshark) = common::interop_tool("tshark", "install tshark (Debian package `tshark`)")
    else {
        return;
    };
    let tag = if inband { "inband" } else { "tlsport" };
    let Some(pki) = interop_common::Pki::new("diam-tls-tshark", tag, "IMS_KEEP_PCAP") else {
        return;
    };
    let dir = common::TempDir::new("diameter-tls-tshark", tag, "IMS_KEEP_PCAP");
    let run = exchange(&tshark, &pki, dir.path(), inband)
        .await
        .expect("tshark could not start a capture on lo");
    let keys = std::fs::read_to_string(&run.key_log).expect("the key log was written");
    // TLS 1.3 (rustls' default): the handshake and traffic secrets of the session
    for label in [
        "CLIENT_HANDSHAKE_TRAFFIC_SECRET",
        "SERVER_HANDSHAKE_TRAFFIC_SECRET",
        "CLIENT_TRAFFIC_SECRET_0",
        "SERVER_TRAFFIC_SECRET_0",
    ] {
        assert!(keys.contains(label), "{label} not in the key log:\n{keys}");
    }

    let d = dissect(&tshark, &run, inband, true);
    let bad = check(&run, &d, inband);
    assert!(
        bad.is_empty(),
        "{tag}: tshark saw {:?}; disagrees:\n{}",
        d.pdus.iter().map(Pdu::command).collect::<Vec<_>>(),
        bad.join("\n")
    );
    // the comparison notices a value that differs from what was on the wire
    let mut altered = Run {
        app_messages: run.app_messages.clone(),
        pcap: run.pcap.clone(),
        key_log: run.key_log.clone(),
        port: run.port,
    };
    let mar = &mut altered.app_messages[0].1;
    let sid = ims::diameter::Message::parse(mar)
        .unwrap()
        .find(ims::diameter::dict::SESSION_ID)
        .unwrap()
        .offset()
        + 8;
    mar[sid] ^= 0x20;
    let bad = check(&altered, &d, inband);
    assert!(
        bad.iter().any(|b| b.contains("MAR")),
        "{tag}: an altered Session-Id went unnoticed: {bad:?}"
    );
    // without the keys, nothing after the CEA is readable (the check above is not vacuous)
    let blind = dissect(&tshark, &run, inband, false);
    let seen: Vec<String> = blind.pdus.iter().map(Pdu::command).collect();
    let clear = if inband { 2 } else { 0 };
    assert!(
        blind
            .pdus
            .iter()
            .all(|p| p.joined("diameter.cmd.code") == "257"),
        "{tag}: Diameter readable without the keys: {seen:?}"
    );
    assert_eq!(seen.len(), clear, "{tag}: in clear: {seen:?}");
    eprintln!(
        "{tag}: tshark decrypted and dissected {} Diameter messages: {:?}",
        d.pdus.len(),
        d.pdus.iter().map(Pdu::command).collect::<Vec<_>>()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tshark_decrypts_diameter_on_the_tls_port() {
    decodes(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tshark_decrypts_diameter_with_inband_tls() {
    decodes(true).await;
}

#[tokio::test]
async fn no_key_log_unless_configured() {
    // the key log is opt-in: a default configuration names no file
    assert!(NodeConfig::new(SERVER, REALM).tls_key_log.is_none());
}
