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
        cmd.args(["-Y", filter, "-T", "fields", "-E", "separator=|"]);
        for f in &fields {
            cmd.args(["-e", f]);
        }
        let out = cmd.output().await.expect("tshark reads the capture");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| {
                Frame(
                    fields
                        .iter()
                        .zip(l.split('|'))
                        .map(|(f, v)| (f.to_string(), v.to_string()))
                        .collect(),
                )
            })
            .collect()
    }
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
