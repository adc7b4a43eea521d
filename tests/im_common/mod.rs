//! Fixtures shared by the IM server tests that run the all-in-one core
//! (`tests/im_server_page.rs`, `tests/im_session_core.rs`, `tests/im_server_sipp.rs`): the
//! demo subscribers' keys, their iFC and the ENUM table of `examples/cscf/ims.toml`; the
//! message bodies they send and read ([`bodies`]); and, for the tests that drive a stand-alone
//! IM server or session anchor (`tests/im_store.rs`, `tests/im_failures.rs`,
//! `tests/im_session_route.rs`, `tests/cscf_im_anchor_route.rs`), a client and scripted peers
//! ([`standalone`]). Each test binary compiles this module separately, hence the `dead_code`
//! allowances.

#![allow(dead_code)]

pub(crate) mod bodies;
pub(crate) mod sgd;
pub(crate) mod standalone;

use ims::auth::aka::Usim;
use ims::auth::digest;
use ims::auth::milenage::OperatorKey;
use ims::auth::Challenge;
use ims::net::sip::Endpoint;
use ims::nf::enum_dns::{EnumTable, Naptr};
use ims::nf::hss::{AkaCredentials, Credentials, Subscriber};
use ims::nf::subscription::{
    ApplicationServer, ImsSubscription, InitialFilterCriteria, PublicIdentity, ServiceProfile,
    SessionCase, Spt, SptKind, TriggerPoint,
};
use ims::sip::{Method, OwnedMessage, RequestBuilder};
use ims::txn::Remote;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

pub(crate) const LO: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
pub(crate) const K: [u8; 16] = *b"ims-rs-demo-K-01";
pub(crate) const OP: [u8; 16] = *b"ims-rs-demo-OP-1";
pub(crate) const WAIT: Duration = Duration::from_secs(10);

/// The private identity of demo subscriber `n`.
pub(crate) fn impi(n: u32) -> String {
    format!("00101000000000{n}@ims.example.org")
}

/// One iFC naming the IM server at `im`: the session case (if any), the method and the
/// Content-Type pattern (if any), all of which must match (DNF).
pub(crate) fn ifc(
    im: &str,
    priority: i32,
    case: Option<SessionCase>,
    method: &str,
    content: Option<&str>,
) -> InitialFilterCriteria {
    let mut spts = Vec::new();
    if let Some(c) = case {
        spts.push(Spt::new(SptKind::SessionCase(c)));
    }
    spts.push(Spt::new(SptKind::Method(method.into())));
    if let Some(c) = content {
        spts.push(Spt::new(SptKind::SipHeader {
            header: "Content-Type".into(),
            content: Some(c.into()),
        }));
    }
    InitialFilterCriteria {
        priority,
        trigger_point: Some(TriggerPoint {
            condition_type_cnf: false,
            spts,
        }),
        application_server: ApplicationServer::new(im.to_string()),
        profile_part_indicator: None,
    }
}

/// Demo subscriber `n` (sip:IMPI, tel:+1555000n, sip:+1555000n@ims.example.org) with the iFC
/// `ifcs`, AKA credentials and the password "secret".
pub(crate) fn subscriber(n: u32, ifcs: Vec<InitialFilterCriteria>) -> Subscriber {
    let impi = impi(n);
    Subscriber {
        subscription: ImsSubscription {
            private_id: impi.clone(),
            service_profiles: vec![ServiceProfile {
                public_identities: vec![
                    PublicIdentity::new(format!("sip:{impi}")),
                    PublicIdentity::new(format!("tel:+1555000{n}")),
                    PublicIdentity::new(format!("sip:+1555000{n}@ims.example.org")),
                ],
                initial_filter_criteria: ifcs,
                ..ServiceProfile::default()
            }],
        },
        credentials: Credentials {
            aka: Some(AkaCredentials::new(K, OperatorKey::Op(OP), *b"AM", 0)),
            password: Some("secret".into()),
        },
    }
}

/// The ENUM table of `examples/cscf/ims.toml`: every E.164 number maps to
/// `sip:+<number>@ims.example.org`.
pub(crate) fn enum_table() -> EnumTable {
    let mut enum_table = EnumTable::new("e164.arpa");
    enum_table.insert_default(Naptr {
        order: 100,
        preference: 10,
        flags: "u".into(),
        services: "E2U+sip".into(),
        regexp: r"!^\+(.*)$!sip:+\1@ims.example.org!".into(),
        replacement: ".".into(),
    });
    enum_table
}

/// The final response to `msg` sent over UDP to the P-CSCF at `pcscf` (within [`WAIT`]).
pub(crate) async fn send(ep: &Endpoint, pcscf: SocketAddr, msg: OwnedMessage) -> OwnedMessage {
    let t = ep
        .request(msg, Remote::udp(pcscf))
        .await
        .expect("request sent");
    tokio::time::timeout(WAIT, t.final_response())
        .await
        .expect("final response in time")
        .expect("final response")
}

/// REGISTER of demo subscriber `n` through the P-CSCF at `pcscf`, from `ep`'s contact: → 401
/// (AKA challenge) → REGISTER with `usim`'s answer → 200.
pub(crate) async fn register(ep: &Endpoint, pcscf: SocketAddr, n: u32, usim: &mut Usim) {
    let impi = impi(n);
    let impu = format!("sip:{impi}");
    let contact = ep.contact().to_string();
    let build = |cseq: u32, auth: String| {
        RequestBuilder::new(Method::Register, "sip:ims.example.org")
            .header("Max-Forwards", 70)
            .header("From", format!("<{impu}>;tag=reg{cseq}"))
            .header("To", format!("<{impu}>"))
            .header("Call-ID", format!("reg-{impi}"))
            .header("CSeq", format!("{cseq} REGISTER"))
            .header("Contact", format!("<{contact}>;expires=600"))
            .header("Supported", "path")
            .header("Authorization", auth)
            .build()
            .expect("REGISTER")
    };
    let first = format!(
        "Digest username=\"{impi}\",realm=\"ims.example.org\",nonce=\"\",uri=\"sip:ims.example.org\",response=\"\",algorithm=AKAv1-MD5"
    );
    // until the core's Diameter peers are up the CSCFs answer 504
    let mut r = send(ep, pcscf, build(1, first.clone())).await;
    for cseq in 2..40 {
        if r.as_message().status() != Some(504) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
        r = send(ep, pcscf, build(cseq, first.clone())).await;
    }
    let m = r.as_message();
    assert_eq!(m.status(), Some(401), "challenge");
    let www = m.header_str("WWW-Authenticate").expect("WWW-Authenticate");
    let ch = Challenge::parse(www).expect("AKA challenge");
    let req = digest::Request {
        method: "REGISTER",
        uri: "sip:ims.example.org",
        body: b"",
        cnonce: "0a4f113b",
        nc: 1,
    };
    let (creds, _) = digest::answer_aka(&ch, usim, &impi, &req).expect("AKA");
    let r = send(ep, pcscf, build(100, creds.to_string())).await;
    assert_eq!(r.as_message().status(), Some(200), "registered");
}

/// How many files named `*.ext` the store directory `dir` holds (panics when `dir` cannot be
/// read: the store made it).
pub(crate) fn files_with(dir: &std::path::Path, ext: &str) -> usize {
    std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("store directory {}: {e}", dir.display()))
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.path().extension().is_some_and(|x| x == ext))
        })
        .count()
}
