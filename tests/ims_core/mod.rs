//! The all-in-one core as the CSCF interop tests set it up: two demo subscribers (the IMS-AKA
//! keys of the shipped SIPp scenarios), the ENUM rule for +1 numbers, ports from a base, and SIPp
//! run to completion.

#![allow(dead_code)]

use ims::nf::enum_dns::{EnumTable, Naptr};
use ims::nf::hss::{AkaCredentials, Credentials, Subscriber};
use ims::nf::registrar::RegistrarConfig;
use ims::nf::runtime::{
    CoreConfig, CoreOptions, CoreStore, ImOptions, ImsCore, Peer, Ports, Roles,
};
use ims::nf::store::MemoryStore;
use ims::nf::subscription::{ImsSubscription, PublicIdentity, ServiceProfile};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::process::Command;

/// 127.0.0.1.
pub(crate) const LO: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

pub(crate) fn scenario(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples/sipp")
        .join(name)
}

pub(crate) fn subscriber(n: u32) -> Subscriber {
    let impi = format!("00101000000000{n}@ims.example.org");
    Subscriber {
        subscription: ImsSubscription {
            private_id: impi.clone(),
            service_profiles: vec![ServiceProfile {
                public_identities: vec![
                    PublicIdentity::new(format!("sip:{impi}")),
                    PublicIdentity::new(format!("tel:+1555000{n}")),
                    PublicIdentity::new(format!("sip:+1555000{n}@ims.example.org")),
                ],
                ..ServiceProfile::default()
            }],
        },
        credentials: Credentials {
            // the raw octets SIPp uses for aka_K / aka_OP / aka_AMF in the scenarios
            aka: Some(AkaCredentials::new(
                *b"ims-rs-demo-K-01",
                ims::auth::milenage::OperatorKey::Op(*b"ims-rs-demo-OP-1"),
                *b"AM",
                0,
            )),
            password: Some("secret".into()),
        },
    }
}

pub(crate) fn config(base: u16, roles: Roles, hss: Peer, pcrf: Peer) -> CoreConfig {
    let mut enum_table = EnumTable::new("e164.arpa");
    enum_table.insert_default(Naptr {
        order: 100,
        preference: 10,
        flags: "u".into(),
        services: "E2U+sip".into(),
        regexp: r"!^\+(.*)$!sip:+\1@ims.example.org!".into(),
        replacement: ".".into(),
    });
    CoreConfig {
        domain: "ims.example.org".into(),
        ip: LO,
        ports: Ports {
            pcscf: base,
            icscf: base + 2,
            scscf_term: base + 10,
            scscf_orig: base + 11,
        },
        roles,
        hss,
        pcrf,
        subscribers: vec![subscriber(1), subscriber(2)],
        enum_table,
        registrar: RegistrarConfig::default(),
        nonce_secret: b"a test secret of 32 octets......".to_vec(),
        admin: None,
        im: ImOptions {
            port: base + 20,
            ..ImOptions::default()
        },
    }
}

/// The all-in-one core of the CSCF tests (every role): SIP ports from `base` ([`config`]), the
/// embedded HSS and PCRF listening on `diameter` (`[hss, pcrf]` ports), the admin interface on
/// `admin` when given.
pub(crate) fn all_in_one(base: u16, diameter: [u16; 2], admin: Option<u16>) -> CoreConfig {
    let mut cfg = config(
        base,
        Roles::ALL,
        Peer::Embedded(SocketAddr::new(LO, diameter[0])),
        Peer::Embedded(SocketAddr::new(LO, diameter[1])),
    );
    cfg.admin = admin.map(|p| SocketAddr::new(LO, p));
    cfg
}

/// Starts a core (panics when it does not).
pub(crate) async fn start(cfg: CoreConfig) -> ImsCore {
    ImsCore::start(cfg).await.expect("core starts")
}

/// Starts a core with `options` and an in-memory store (panics when it does not).
pub(crate) async fn start_with(cfg: CoreConfig, options: CoreOptions) -> ImsCore {
    ImsCore::start_with_options(cfg, CoreStore::Memory(MemoryStore::new()), options)
        .await
        .expect("core starts")
}

/// [`all_in_one`], started.
pub(crate) async fn start_core(base: u16, diameter: [u16; 2], admin: Option<u16>) -> ImsCore {
    start(all_in_one(base, diameter, admin)).await
}

/// Polls `f` every 50 ms until it holds; panics after 15 s naming `what`.
pub(crate) async fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    for _ in 0..300 {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

/// Runs SIPp to completion (bounded) and returns its exit status and stdout.
pub(crate) async fn sipp(bin: &Path, dir: &Path, args: &[&str]) -> (bool, String) {
    let child = Command::new(bin)
        .args(args)
        .args(["-nostdin", "-timeout", "30", "-trace_err"])
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start sipp");
    let out = tokio::time::timeout(Duration::from_secs(45), child.wait_with_output())
        .await
        .expect("sipp finishes within 45 s")
        .expect("sipp output");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

/// [`sipp`] as the demo user `n` of [`subscriber`] (`-s 00101000000000n`, `-au` its IMPI: the
/// IMS-AKA keys of the scenarios) on 127.0.0.1:`port`, one call of scenario file `sf` toward
/// `target`; `extra` arguments (`-key`s, `-mp`) go before the local address.
pub(crate) async fn sipp_ue(
    bin: &Path,
    dir: &Path,
    n: u32,
    target: &str,
    sf: &str,
    port: &str,
    extra: &[&str],
) -> (bool, String) {
    let imsi = format!("00101000000000{n}");
    let impi = format!("{imsi}@ims.example.org");
    let mut args = vec![target, "-sf", sf, "-s", &imsi, "-au", &impi];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["-i", "127.0.0.1", "-p", port, "-m", "1"]);
    sipp(bin, dir, &args).await
}

/// A live tshark capture of Diameter on some TCP ports of the loopback.
pub(crate) struct DiameterCapture {
    live: crate::common::LiveCapture,
    tshark: PathBuf,
    ports: Vec<u16>,
    /// Ports where SIP also runs over TCP (decoded as SIP).
    sip_tcp: Vec<u16>,
}

/// Starts capturing `ports` into `dir/core.pcap`; `None` without tshark (or capture rights).
pub(crate) async fn capture_diameter(
    tshark: Option<PathBuf>,
    dir: &Path,
    ports: &[u16],
) -> Option<DiameterCapture> {
    capture_with_sip(tshark, dir, ports, &[]).await
}

/// [`capture_diameter`] that also captures SIP on the UDP `sip_ports`.
pub(crate) async fn capture_with_sip(
    tshark: Option<PathBuf>,
    dir: &Path,
    ports: &[u16],
    sip_ports: &[u16],
) -> Option<DiameterCapture> {
    let tshark = tshark?;
    let file = dir.join("core.pcap");
    let filter = ports
        .iter()
        .map(|p| format!("tcp port {p}"))
        .chain(sip_ports.iter().map(|p| format!("udp port {p}")))
        .collect::<Vec<_>>()
        .join(" or ");
    let live = crate::common::LiveCapture::start(&tshark, &filter, file).await?;
    Some(DiameterCapture {
        live,
        tshark,
        ports: ports.to_vec(),
        sip_tcp: Vec::new(),
    })
}

/// [`capture_with_sip`] with SIP over UDP and TCP on `sip_ports` (a request over 1,300 bytes
/// goes over TCP, RFC 3261 §18.1.1).
pub(crate) async fn capture_with_sip_any(
    tshark: Option<PathBuf>,
    dir: &Path,
    ports: &[u16],
    sip_ports: &[u16],
) -> Option<DiameterCapture> {
    let tcp: Vec<u16> = ports.iter().chain(sip_ports).copied().collect();
    let mut c = capture_with_sip(tshark, dir, &tcp, sip_ports).await?;
    c.ports = ports.to_vec();
    c.sip_tcp = sip_ports.to_vec();
    Some(c)
}

/// One captured Diameter message: the tshark fields asked for, by name.
#[derive(Debug, Clone)]
pub(crate) struct Frame(pub(crate) std::collections::HashMap<String, String>);

impl Frame {
    pub(crate) fn get(&self, field: &str) -> &str {
        self.0.get(field).map_or("", String::as_str)
    }
    pub(crate) fn is_request(&self) -> bool {
        matches!(self.get("diameter.flags.request"), "True" | "1")
    }
    pub(crate) fn code(&self) -> &str {
        self.get("diameter.cmd.code")
    }
    /// No malformed packet and no expert info.
    pub(crate) fn clean(&self) -> bool {
        self.get("_ws.expert").is_empty() && self.get("_ws.malformed").is_empty()
    }
}

impl DiameterCapture {
    /// Stops the capture and returns every Diameter message with the code, request flag,
    /// Result-Code, Experimental-Result-Code, expert/malformed markers, TCP ports and `extra`
    /// fields.
    pub(crate) async fn frames(self, extra: &[&str]) -> Vec<Frame> {
        self.frames_where("diameter", &[], extra).await
    }

    /// [`DiameterCapture::frames`] with another display filter (e.g. `diameter || sip`), the
    /// `sip_ports` (UDP) decoded as SIP.
    pub(crate) async fn frames_where(
        self,
        filter: &str,
        sip_ports: &[u16],
        extra: &[&str],
    ) -> Vec<Frame> {
        let file = self.live.stop().await;
        let mut fields = vec![
            "diameter.cmd.code",
            "diameter.flags.request",
            "diameter.Result-Code",
            "diameter.Experimental-Result-Code",
            "_ws.expert",
            "_ws.malformed",
            "tcp.srcport",
            "tcp.dstport",
            "diameter.Session-Id",
        ];
        fields.extend_from_slice(extra);
        let mut cmd = Command::new(&self.tshark);
        cmd.arg("-r").arg(&file);
        for p in &self.ports {
            cmd.args(["-d", &format!("tcp.port=={p},diameter")]);
        }
        for p in sip_ports {
            cmd.args(["-d", &format!("udp.port=={p},sip")]);
        }
        for p in &self.sip_tcp {
            cmd.args(["-d", &format!("tcp.port=={p},sip")]);
        }
        // JSON of the whole dissection: one TCP segment may carry several Diameter messages
        // (a node writes what it has queued in one go), and `-T fields` would merge their
        // values into one comma-separated line with no way to tell which Result-Code is whose
        cmd.args(["-Y", filter, "-T", "json", "--no-duplicate-keys"]);
        let out = cmd.output().await.expect("tshark reads the capture");
        let packets: serde_json::Value =
            serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Array(Vec::new()));
        frames_of_packets(&packets, &fields)
    }
}

/// One [`Frame`] per Diameter message of each captured packet (one per packet without
/// Diameter): the `diameter.*` fields are looked up inside that message's own tree, the
/// others (TCP ports, SIP, expert and malformed markers) in the whole packet; a field found
/// several times gives its values joined by `,`, as `tshark -T fields` prints them.
pub(crate) fn frames_of_packets(packets: &serde_json::Value, fields: &[&str]) -> Vec<Frame> {
    let mut frames = Vec::new();
    for packet in packets.as_array().into_iter().flatten() {
        let layers = &packet["_source"]["layers"];
        let pdus: Vec<&serde_json::Value> = match &layers["diameter"] {
            serde_json::Value::Array(list) => list.iter().collect(),
            serde_json::Value::Null => vec![],
            one => vec![one],
        };
        let frame = |pdu: Option<&serde_json::Value>| {
            Frame(
                fields
                    .iter()
                    .map(|f| {
                        let within = match pdu {
                            Some(pdu) if f.starts_with("diameter.") => pdu,
                            _ => layers,
                        };
                        let mut found = Vec::new();
                        json_field(within, f, &mut found);
                        (f.to_string(), found.join(","))
                    })
                    .collect(),
            )
        };
        if pdus.is_empty() {
            frames.push(frame(None));
        } else {
            frames.extend(pdus.into_iter().map(|pdu| frame(Some(pdu))));
        }
    }
    frames
}

/// Every value of the field `name` anywhere under `v` (a subtree counts as the value `1`).
fn json_field(v: &serde_json::Value, name: &str, found: &mut Vec<String>) {
    match v {
        serde_json::Value::Object(map) => {
            for (k, x) in map {
                if k == name {
                    json_values(x, found);
                } else {
                    json_field(x, name, found);
                }
            }
        }
        serde_json::Value::Array(list) => list.iter().for_each(|x| json_field(x, name, found)),
        _ => {}
    }
}

fn json_values(v: &serde_json::Value, found: &mut Vec<String>) {
    match v {
        serde_json::Value::String(s) => found.push(s.clone()),
        serde_json::Value::Array(list) => list.iter().for_each(|x| json_values(x, found)),
        serde_json::Value::Null => {}
        other => found.push(if other.is_object() {
            "1".to_string()
        } else {
            other.to_string()
        }),
    }
}

#[test]
fn a_segment_with_two_diameter_messages_gives_two_frames() {
    // the shape `tshark -T json --no-duplicate-keys` gives a TCP segment holding an AAR and an
    // STA (trimmed), and a SIP packet
    let packets: serde_json::Value = serde_json::from_str(
        r#"[{"_source":{"layers":{"tcp":{"tcp.srcport":"5951","tcp.dstport":"40000"},
            "diameter":[
              {"diameter.flags":"0xc0","diameter.flags_tree":{"diameter.flags.request":"1"},
               "diameter.cmd.code":"265",
               "diameter.avp":{"diameter.avp_tree":{"diameter.Session-Id":"a;1"}}},
              {"diameter.flags_tree":{"diameter.flags.request":"0"},"diameter.cmd.code":"275",
               "diameter.avp":[{"diameter.avp_tree":{"diameter.Session-Id":"b;2"}},
                               {"diameter.avp_tree":{"diameter.Result-Code":"2001"}}]}]}}},
          {"_source":{"layers":{"udp":{},"sip":{"sip.Method":"INVITE"},
            "_ws.malformed":{"_ws.expert":{"_ws.expert.message":"x"}}}}}]"#,
    )
    .unwrap();
    let fields = [
        "diameter.cmd.code",
        "diameter.flags.request",
        "diameter.Result-Code",
        "diameter.Session-Id",
        "tcp.srcport",
        "_ws.malformed",
        "sip.Method",
    ];
    let frames = frames_of_packets(&packets, &fields);
    assert_eq!(frames.len(), 3);
    assert_eq!(frames[0].code(), "265");
    assert!(frames[0].is_request());
    assert_eq!(frames[0].get("diameter.Result-Code"), "");
    assert_eq!(frames[0].get("diameter.Session-Id"), "a;1");
    assert_eq!(frames[0].get("tcp.srcport"), "5951");
    assert_eq!(frames[1].code(), "275");
    assert!(!frames[1].is_request());
    assert_eq!(frames[1].get("diameter.Result-Code"), "2001");
    assert_eq!(frames[1].get("diameter.Session-Id"), "b;2");
    assert_eq!(frames[1].get("tcp.srcport"), "5951");
    assert!(frames[0].clean() && frames[1].clean());
    assert_eq!(frames[2].code(), "");
    assert_eq!(frames[2].get("sip.Method"), "INVITE");
    assert!(!frames[2].clean());
}

/// One HTTP/1.1 request to the admin interface: (status, body).
pub(crate) async fn admin_request(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    body: &str,
) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr)
        .await
        .expect("admin port");
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await.expect("write");
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut out))
        .await
        .expect("admin answers within 10 s")
        .expect("read");
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
    (status, body)
}
