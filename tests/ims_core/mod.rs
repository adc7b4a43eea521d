//! The all-in-one core as the CSCF interop tests set it up: two demo subscribers (the IMS-AKA
//! keys of the shipped SIPp scenarios), the ENUM rule for +1 numbers, ports from a base, and SIPp
//! run to completion.

#![allow(dead_code)]

use ims::nf::enum_dns::{EnumTable, Naptr};
use ims::nf::hss::{AkaCredentials, Credentials, Subscriber};
use ims::nf::registrar::RegistrarConfig;
use ims::nf::runtime::{CoreConfig, ImOptions, Peer, Ports, Roles};
use ims::nf::subscription::{ImsSubscription, PublicIdentity, ServiceProfile};
use std::net::{IpAddr, Ipv4Addr};
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
