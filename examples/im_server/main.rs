//! `im_server`: the IM application server on its own — IP-SM-GW for SMS over IP (TS 24.341) and
//! page-mode IM relay with IMDN (RFC 3428, RFC 5438) — against any S-CSCF that routes to it by
//! iFC. The all-in-one `cargo run --release --example cscf` starts the same server in-process.
//!
//! ```text
//! cargo run --release --example im_server -- --listen 127.0.0.1:7070 \
//!     --scscf sip:term@127.0.0.1:6060 --domain ims.example.org --store /var/lib/ims-rs/sms \
//!     --msisdn +15550001=sip:001010000000001@ims.example.org \
//!     --msisdn +15550002=sip:001010000000002@ims.example.org
//! cargo run --release --example im_server -- --subscribers examples/im_server/subscribers.toml
//! ```
//!
//! Options: `--listen IP:PORT` (default 127.0.0.1:7070), `--scscf URI` (where MT requests go,
//! default `sip:term@127.0.0.1:6060`), `--domain D` (default ims.example.org), `--identity URI`
//! (From/P-Asserted-Identity of what the server originates, default `sip:ipsmgw@<domain>`),
//! `--store DIR` (file-backed store of short messages and page-mode IMs, default
//! `target/ims-rs/sms`; `--store redis://HOST:PORT[/PREFIX]` keeps them in Redis instead, with
//! the `redis` feature; `--no-store` keeps messages in memory only), `--sc-address +NUMBER`,
//! `--msisdn +NUMBER=IMPU[,IMPU...]` (repeatable) and/or `--subscribers FILE` (TOML
//! `[[subscriber]] msisdn = "+1555…", impus = ["sip:…"]`), `--reject-unknown` (RP-ERROR 1 for
//! numbers not in the map), `--network-imdn` (send IMDN delivery notifications as the network),
//! `--check` (print the configuration and exit), `--msrps CERT.pem KEY.pem` (with the `tls`
//! feature: the anchor also takes `TCP/TLS/MSRP` offers, RFC 4975 §14, presenting this
//! certificate by its SDP `a=fingerprint`).
//!
//! SMSC interworking (TS 29.338 SGd): `--smsc HOST:PORT` names an external SMSC's Diameter
//! node; the IP-SM-GW then forwards every submission in an OFR and delivers the SMSC's TFRs
//! instead of acting as the SMSC itself (no local store of messages: it remembers which SMSC
//! waits for an absent or memory-full recipient and alerts it with Alert-Service-Centre when
//! the recipient registers or sends RP-SMMA). With it: `--smsc-host
//! NAME` (the SMSC's Diameter identity, default `smsc.<domain>`), `--smsc-realm REALM` (default
//! the domain), `--diameter-host NAME` / `--diameter-realm REALM` (ours, default
//! `ipsmgw.<domain>` / the domain), `--diameter-listen IP:PORT` (also accept the SMSC's
//! connection), and `--imsi +NUMBER=IMSI` (repeatable, or `imsi = "…"` in the subscribers
//! file: the IMSI a TFR's User-Name names, sent as the submitter's User-Name in OFRs).
//!
//! MSRP relay (RFC 4976): `--msrp-relay URI --msrp-relay-auth USER:PASSWORD` puts the session
//! anchor behind that relay (it AUTHs at start and offers the relay's Use-Path) and sends the
//! IM server's own large-mode deliveries through it too (`ImSessionConfig::relay` and
//! `ImServerConfig::msrp_relay` get the same relay); an `msrps:` relay needs `--msrp-relay-ca
//! CA.pem` (the `tls` feature) to check its certificate.
//!
//! The MSRP session anchor (large mode and chat, `ims::nf::im_session`) shares the SIP port:
//! point the originating iFC for `INVITE` with SDP `m=message` at the same URI. Its MSRP switch
//! listens on the SIP port + 3 (7073 by default).

use ims::nf::im_server::{ImServer, ImServerConfig, Numbering, SmscConfig};
use ims::nf::im_session::AnchorRelay;
use serde::Deserialize;
use std::process::ExitCode;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SubscribersFile {
    #[serde(default, rename = "subscriber")]
    subscribers: Vec<SubscriberToml>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SubscriberToml {
    msisdn: String,
    impus: Vec<String>,
    #[serde(default)]
    imsi: Option<String>,
}

fn usage() -> ExitCode {
    eprintln!(
        "usage: im_server [--listen IP:PORT] [--scscf URI] [--domain D] [--identity URI] [--store DIR | --no-store] \
         [--sc-address +NUMBER] [--msisdn +NUMBER=IMPU[,IMPU...]]... [--subscribers FILE] \
         [--reject-unknown] [--network-imdn] [--check] [--msrps CERT KEY] \
         [--smsc HOST:PORT [--smsc-host NAME] [--smsc-realm REALM] [--diameter-host NAME] [--diameter-realm REALM] \
         [--diameter-listen IP:PORT]] [--imsi +NUMBER=IMSI]... \
         [--msrp-relay URI --msrp-relay-auth USER:PASSWORD [--msrp-relay-ca CA.pem]]"
    );
    ExitCode::from(2)
}

fn load_subscribers(path: &str, n: &mut Numbering) -> Result<(), String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
    let f: SubscribersFile = toml::from_str(&text).map_err(|e| format!("{path}: {e}"))?;
    for s in f.subscribers {
        n.add(&s.msisdn, s.impus);
        if let Some(imsi) = s.imsi {
            n.set_imsi(&s.msisdn, &imsi);
        }
    }
    Ok(())
}

/// The SMSC options, once every argument is read.
#[derive(Default)]
struct SmscArgs {
    addr: Option<String>,
    host: Option<String>,
    realm: Option<String>,
    our_host: Option<String>,
    our_realm: Option<String>,
    listen: Option<std::net::SocketAddr>,
}

impl SmscArgs {
    fn config(self, domain: &str) -> Result<Option<SmscConfig>, String> {
        let Some(addr) = self.addr else {
            if self.host.is_some() || self.realm.is_some() || self.listen.is_some() {
                return Err("--smsc-host/--smsc-realm/--diameter-listen need --smsc".into());
            }
            return Ok(None);
        };
        use std::net::ToSocketAddrs;
        let sock = addr
            .to_socket_addrs()
            .map_err(|e| format!("--smsc {addr}: {e}"))?
            .next()
            .ok_or_else(|| format!("--smsc {addr}: no address"))?;
        let realm = self.realm.unwrap_or_else(|| domain.to_string());
        let host = self.host.unwrap_or_else(|| format!("smsc.{realm}"));
        let mut c = SmscConfig::new(sock, &host, &realm, domain);
        if let Some(h) = self.our_host {
            c.origin_host = h;
        }
        if let Some(r) = self.our_realm {
            c.origin_realm = r;
        }
        c.listen = self.listen;
        Ok(Some(c))
    }
}

/// `--msrp-relay URI`, `--msrp-relay-auth USER:PASSWORD` and (feature `tls`) `--msrp-relay-ca
/// CA.pem`: the relay the anchor and the IM server's large-mode deliveries go through.
fn msrp_relay(
    uri: Option<String>,
    auth: Option<String>,
    ca: Option<String>,
) -> Result<Option<AnchorRelay>, String> {
    let (uri, auth) = match (uri, auth) {
        (None, None) if ca.is_none() => return Ok(None),
        (Some(u), Some(a)) => (u, a),
        (None, _) => return Err("--msrp-relay-auth/--msrp-relay-ca without --msrp-relay".into()),
        (Some(_), None) => return Err("--msrp-relay needs --msrp-relay-auth".into()),
    };
    let parsed = ims::msrp::Uri::parse(&uri).map_err(|e| format!("--msrp-relay {uri}: {e}"))?;
    let (user, password) = auth
        .split_once(':')
        .ok_or("--msrp-relay-auth: USER:PASSWORD")?;
    // (the default fills the TLS trust when the `tls` feature adds that field)
    #[allow(unused_mut, clippy::needless_update)]
    let mut relay = AnchorRelay {
        uri: uri.clone(),
        user: user.to_string(),
        password: password.to_string(),
        ..AnchorRelay::default()
    };
    match (parsed.is_secure(), ca) {
        (false, None) => {}
        (false, Some(_)) => return Err("--msrp-relay-ca is for an msrps: relay".into()),
        #[cfg(feature = "tls")]
        (true, Some(ca)) => {
            use ims::net::tls::{ClientAuth, TlsConfig, Trust};
            let trust =
                Trust::ca_pem_file(&ca).map_err(|e| format!("--msrp-relay-ca {ca}: {e}"))?;
            relay.tls = Some(
                TlsConfig::new(None, trust, ClientAuth::None)
                    .map_err(|e| format!("--msrp-relay-ca {ca}: {e}"))?,
            );
        }
        (true, _) => {
            return Err(format!(
                "--msrp-relay {uri}: an msrps: relay needs --msrp-relay-ca (feature tls)"
            ))
        }
    }
    Ok(Some(relay))
}

fn main() -> ExitCode {
    let mut cfg = ImServerConfig::new(
        "127.0.0.1:7070".parse().expect("literal address"),
        "ims.example.org",
        "sip:term@127.0.0.1:6060",
    );
    cfg.store = Some("target/ims-rs/sms".into());
    let mut identity = None;
    let mut check = false;
    let mut smsc = SmscArgs::default();
    let mut imsis: Vec<(String, String)> = Vec::new();
    let (mut relay_uri, mut relay_auth, mut relay_ca) = (None, None, None);
    #[cfg(feature = "tls")]
    let mut msrps = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || args.next();
        match a.as_str() {
            "--listen" => match value().and_then(|v| v.parse().ok()) {
                Some(v) => cfg.listen = v,
                None => return usage(),
            },
            "--scscf" => match value() {
                Some(v) => cfg.scscf = v,
                None => return usage(),
            },
            "--domain" => match value() {
                Some(v) => cfg.domain = v,
                None => return usage(),
            },
            "--identity" => match value() {
                Some(v) => identity = Some(v),
                None => return usage(),
            },
            "--store" => match value() {
                Some(v) => cfg.store = Some(v.into()),
                None => return usage(),
            },
            "--no-store" => cfg.store = None,
            "--sc-address" => match value() {
                Some(v) => cfg.ipsmgw.sc_address = v,
                None => return usage(),
            },
            "--msisdn" => match value().as_deref().and_then(|v| v.split_once('=')) {
                Some((n, impus)) => {
                    cfg.numbering.add(n, impus.split(',').map(str::to_string));
                }
                None => return usage(),
            },
            "--subscribers" => match value() {
                Some(v) => {
                    if let Err(e) = load_subscribers(&v, &mut cfg.numbering) {
                        eprintln!("im_server: {e}");
                        return ExitCode::FAILURE;
                    }
                }
                None => return usage(),
            },
            "--smsc" => match value() {
                Some(v) => smsc.addr = Some(v),
                None => return usage(),
            },
            "--smsc-host" => match value() {
                Some(v) => smsc.host = Some(v),
                None => return usage(),
            },
            "--smsc-realm" => match value() {
                Some(v) => smsc.realm = Some(v),
                None => return usage(),
            },
            "--diameter-host" => match value() {
                Some(v) => smsc.our_host = Some(v),
                None => return usage(),
            },
            "--diameter-realm" => match value() {
                Some(v) => smsc.our_realm = Some(v),
                None => return usage(),
            },
            "--diameter-listen" => match value().and_then(|v| v.parse().ok()) {
                Some(v) => smsc.listen = Some(v),
                None => return usage(),
            },
            "--imsi" => match value().as_deref().and_then(|v| v.split_once('=')) {
                Some((n, imsi)) => imsis.push((n.to_string(), imsi.to_string())),
                None => return usage(),
            },
            "--msrp-relay" => match value() {
                Some(v) => relay_uri = Some(v),
                None => return usage(),
            },
            "--msrp-relay-auth" => match value() {
                Some(v) => relay_auth = Some(v),
                None => return usage(),
            },
            "--msrp-relay-ca" => match value() {
                Some(v) => relay_ca = Some(v),
                None => return usage(),
            },
            "--reject-unknown" => cfg.reject_unknown = true,
            "--network-imdn" => cfg.network_imdn = true,
            "--check" => check = true,
            #[cfg(feature = "tls")]
            "--msrps" => match (value(), value()) {
                (Some(c), Some(k)) => match ims::net::tls::Identity::from_pem_files(&c, &k) {
                    Ok(id) => msrps = Some(id),
                    Err(e) => {
                        eprintln!("--msrps: {e}");
                        return ExitCode::FAILURE;
                    }
                },
                _ => return usage(),
            },
            "-h" | "--help" => {
                usage();
                return ExitCode::SUCCESS;
            }
            _ => return usage(),
        }
    }
    cfg.identity = identity.unwrap_or_else(|| format!("sip:ipsmgw@{}", cfg.domain));
    for (n, imsi) in imsis {
        if !cfg.numbering.set_imsi(&n, &imsi) {
            eprintln!("im_server: --imsi {n}={imsi}: {n} is not a numbered subscriber");
            return ExitCode::FAILURE;
        }
    }
    cfg.smsc = match smsc.config(&cfg.domain) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("im_server: {e}");
            return ExitCode::FAILURE;
        }
    };
    let relay = match msrp_relay(relay_uri, relay_auth, relay_ca) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("im_server: {e}");
            return ExitCode::FAILURE;
        }
    };
    // the anchor and the IM server's own large-mode deliveries use the same relay
    cfg.msrp_relay = relay.clone();
    println!(
        "im_server: {} via {}; identity {}; store {}; SC {}; {} numbered subscribers",
        cfg.listen,
        cfg.scscf,
        cfg.identity,
        cfg.store
            .as_ref()
            .map_or("memory".into(), |d| d.display().to_string()),
        cfg.ipsmgw.sc_address,
        cfg.numbering.len(),
    );
    match &cfg.smsc {
        Some(c) => println!(
            "im_server: SMSC {} ({} in {}) over SGd as {} in {}",
            c.addr, c.host, c.realm, c.origin_host, c.origin_realm
        ),
        None => println!("im_server: no SMSC: the IP-SM-GW acts as the SMSC"),
    }
    match &relay {
        Some(r) => println!("im_server: MSRP relay {} (user {})", r.uri, r.user),
        None => println!("im_server: no MSRP relay"),
    }
    if check {
        return ExitCode::SUCCESS;
    }
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("im_server: tokio: {e}");
            return ExitCode::FAILURE;
        }
    };
    let (listen, scscf) = (cfg.listen, cfg.scscf.clone());
    let has_smsc = cfg.smsc.is_some();
    rt.block_on(async {
        // INVITEs and dialog events go to the session anchor on the same endpoint
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let server = match ImServer::start_with(cfg, Some(tx)).await {
            Ok(s) => s,
            Err(e) => {
                eprintln!("im_server: {e}");
                return ExitCode::FAILURE;
            }
        };
        println!("im_server: running on {}; Ctrl-C stops", server.uri());
        if has_smsc {
            if server.wait_smsc(std::time::Duration::from_secs(5)).await {
                println!("im_server: SGd connection to the SMSC open");
            } else {
                println!("im_server: SGd connection to the SMSC not open yet (retried every 5 s)");
            }
        }
        // large mode and session mode (TS 24.247): the MSRP session anchor shares the SIP port
        // (the iFC names one URI), its MSRP switch listens on the SIP port + 3 (7073); B legs
        // follow the Route the S-CSCF left (odi), else go to the caller's S-CSCF as its
        // third-party REGISTER named it, else to the configured S-CSCF (ims_nf::im_session)
        let mut anchor_cfg = ims::nf::im_session::ImSessionConfig {
            route: vec![format!("<{};lr>", scscf.trim_end_matches(";lr"))],
            serving: Some(server.serving_scscf()),
            relay,
            ..ims::nf::im_session::ImSessionConfig::default()
        }
        .next_hop_uri(&scscf);
        #[cfg(feature = "tls")]
        {
            anchor_cfg.msrps = msrps;
        }
        anchor_cfg.msrp_addr =
            std::net::SocketAddr::new(listen.ip(), listen.port().wrapping_add(3));
        let endpoint = server.endpoint().clone();
        let anchor = match ims::nf::im_session::start_on(anchor_cfg, endpoint, rx).await {
            Ok(a) => {
                println!(
                    "im_server: MSRP session anchor on SIP {}, MSRP {}",
                    a.sip_addr(),
                    a.msrp_addr()
                );
                Some(a)
            }
            Err(e) => {
                eprintln!("im_server: MSRP session anchor not started: {e}");
                None
            }
        };
        let _ = tokio::signal::ctrl_c().await;
        if let Some(a) = anchor {
            a.shutdown();
        }
        server.shutdown();
        ExitCode::SUCCESS
    })
}
