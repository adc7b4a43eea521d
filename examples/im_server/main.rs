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
//! The MSRP session anchor (large mode and chat, `ims::nf::im_session`) shares the SIP port:
//! point the originating iFC for `INVITE` with SDP `m=message` at the same URI. Its MSRP switch
//! listens on the SIP port + 3 (7073 by default).

use ims::nf::im_server::{ImServer, ImServerConfig, Numbering};
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
}

fn usage() -> ExitCode {
    eprintln!(
        "usage: im_server [--listen IP:PORT] [--scscf URI] [--domain D] [--identity URI] [--store DIR | --no-store] \
         [--sc-address +NUMBER] [--msisdn +NUMBER=IMPU[,IMPU...]]... [--subscribers FILE] \
         [--reject-unknown] [--network-imdn] [--check] [--msrps CERT KEY]"
    );
    ExitCode::from(2)
}

fn load_subscribers(path: &str, n: &mut Numbering) -> Result<(), String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
    let f: SubscribersFile = toml::from_str(&text).map_err(|e| format!("{path}: {e}"))?;
    for s in f.subscribers {
        n.add(&s.msisdn, s.impus);
    }
    Ok(())
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
        // large mode and session mode (TS 24.247): the MSRP session anchor shares the SIP port
        // (the iFC names one URI), its MSRP switch listens on the SIP port + 3 (7073); B legs
        // follow the Route the S-CSCF left (odi), else go to the caller's S-CSCF as its
        // third-party REGISTER named it, else to the configured S-CSCF (ims_nf::im_session)
        let mut anchor_cfg = ims::nf::im_session::ImSessionConfig {
            route: vec![format!("<{};lr>", scscf.trim_end_matches(";lr"))],
            serving: Some(server.serving_scscf()),
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
