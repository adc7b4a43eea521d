//! Temporary GRUUs (RFC 5627 §3.2) through the `BindingStore`: an S-CSCF registers a UE that
//! supports GRUU (digest, `+sip.instance`), its 200 carries a `temp-gruu`; the S-CSCF stored it
//! as an alias of the instance's public GRUU, so the routing of *another* S-CSCF instance
//! sharing the store (a second store handle: another process with Redis) sends a request to that
//! temp-GRUU to that instance's contact only, until the contact's registration ends.
//!
//! `in_memory`: a `MemoryStore` (its clones share the map). `in_redis` (feature `redis`): a
//! `redis-server` started on a free port of 127.0.0.1 and two `RedisStore` connections; also
//! checks that Redis drops the alias when it expires (`SET … EX`).

mod common;

use ims::auth::digest::{self, Challenge, Request};
use ims::nf::cscf::{Decision, ScscfRouting};
use ims::nf::cx::LocalHss;
use ims::nf::hss::{Credentials, Hss, Subscriber};
use ims::nf::registrar::RegistrarConfig;
use ims::nf::scscf::{Scscf, ScscfConfig};
use ims::nf::store::{BindingStore, MemoryStore};
use ims::nf::subscription::{ImsSubscription, PublicIdentity, ServiceProfile};
use std::sync::{Arc, Mutex};

const IMPI: &str = "bob@ims.example.org";
const IMPU: &str = "sip:bob@ims.example.org";

fn scscf<S: BindingStore>(store: S) -> Scscf<LocalHss, S> {
    let mut hss = Hss::new(None);
    hss.add_subscriber(Subscriber {
        subscription: ImsSubscription {
            private_id: IMPI.into(),
            service_profiles: vec![ServiceProfile {
                public_identities: vec![PublicIdentity::new(IMPU)],
                ..ServiceProfile::default()
            }],
        },
        credentials: Credentials {
            aka: None,
            password: Some("secret".into()),
        },
    });
    let mut n = 0u8;
    let cx = LocalHss::new(Arc::new(Mutex::new(hss)), "ims.example.org", move || {
        n = n.wrapping_add(1);
        [n; 16]
    });
    Scscf::new(
        ScscfConfig {
            server_name: "sip:scscf.ims.example.org:6060".into(),
            realm: "ims.example.org".into(),
            service_route: "sip:orig@scscf.ims.example.org:6060;lr".into(),
            registrar: RegistrarConfig::default(),
            nonce_secret: b"0123456789abcdef0123456789abcdef".to_vec(),
        },
        cx,
        store,
    )
}

fn register(cseq: u32, host: &str, instance: &str, auth: &str) -> Vec<u8> {
    format!(
        "REGISTER sip:ims.example.org SIP/2.0\r\nVia: SIP/2.0/UDP {host}:5060;branch=z9hG4bK-{cseq}{instance}\r\n\
Max-Forwards: 70\r\nFrom: <{IMPU}>;tag=f1\r\nTo: <{IMPU}>\r\nCall-ID: reg-{instance}\r\nCSeq: {cseq} REGISTER\r\n\
Contact: <sip:bob@{host}:5060>;+sip.instance=\"<urn:uuid:{instance}>\";expires=600\r\nSupported: path, gruu\r\n\
Path: <sip:term@pcscf.ims.example.org;lr>\r\nAuthorization: {auth}\r\nContent-Length: 0\r\n\r\n"
    )
    .into_bytes()
}

/// Registers instance `instance` from `host` with digest; returns the 200's temp-gruu.
async fn register_instance<S: BindingStore>(
    s: &Scscf<LocalHss, S>,
    host: &str,
    instance: &str,
    now: u64,
) -> String {
    // a fresh nonce per instance (the salt is the digest nonce's randomness)
    let salt = 2 * instance.parse::<u8>().unwrap_or(0);
    let ask = format!(
        "Digest username=\"{IMPI}\",realm=\"ims.example.org\",nonce=\"\",uri=\"sip:ims.example.org\",response=\"\",algorithm=MD5"
    );
    let m = register(1, host, instance, &ask);
    let o = s
        .register(&ims::sip::parse_datagram(&m).unwrap(), now, [salt; 16])
        .await;
    assert_eq!(o.status, 401);
    let r = ims::sip::parse_datagram(o.response.bytes()).unwrap();
    let ch = Challenge::parse(r.header_str("WWW-Authenticate").unwrap())
        .unwrap()
        .into_owned();
    let req = Request {
        method: "REGISTER",
        uri: "sip:ims.example.org",
        body: b"",
        cnonce: "c0ffee",
        nc: 1,
    };
    let creds = digest::answer(&ch, IMPI, b"secret", &req).unwrap();
    let m = register(2, host, instance, &creds.to_string());
    let o = s
        .register(&ims::sip::parse_datagram(&m).unwrap(), now, [salt + 1; 16])
        .await;
    assert_eq!(
        o.status,
        200,
        "{}",
        String::from_utf8_lossy(o.response.bytes())
    );
    let r = ims::sip::parse_datagram(o.response.bytes()).unwrap();
    let ours = r
        .headers_of(ims::sip::HeaderName::Contact)
        .map(|h| h.value().to_string())
        .find(|c| c.contains(host))
        .expect("our Contact in the 200");
    let i = ours.find("temp-gruu=\"").expect("a temp-gruu") + "temp-gruu=\"".len();
    ours[i..].split('"').next().unwrap().to_string()
}

fn invite(ruri: &str) -> String {
    format!(
        "INVITE {ruri} SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.9;branch=z9hG4bK-g\r\n\
Max-Forwards: 70\r\nFrom: <{IMPU}>;tag=1\r\nTo: <{ruri}>\r\n\
P-Asserted-Identity: <{IMPU}>\r\nCall-ID: g1\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
    )
}

fn routing() -> ScscfRouting {
    ScscfRouting {
        orig_uri: "sip:orig@127.0.0.1:6061".into(),
        term_uri: "sip:term@127.0.0.1:6060".into(),
        home_domains: vec!["ims.example.org".into()],
        icscf: "sip:127.0.0.1:5062".into(),
        profiles: Default::default(),
    }
}

/// The issuing S-CSCF writes through `issuer`; another instance routes with `other`.
async fn issue_then_route_elsewhere<S: BindingStore>(issuer: S, other: S) -> String {
    let now = 1_700_000_000;
    let s = scscf(issuer);
    register_instance(&s, "10.0.0.2", "1", now).await;
    let temp = register_instance(&s, "10.0.0.3", "2", now).await;
    assert!(
        temp.starts_with("sip:tgruu.") && temp.ends_with(";gr"),
        "{temp}"
    );
    let r = routing();
    let inv = invite(&temp);
    let m = ims::sip::parse_datagram(inv.as_bytes()).unwrap();
    // another instance, the same store: only instance 2's contact
    let d = r.terminating(&other, &m, None, now + 10).await;
    let Decision::Forward(f) = d else {
        panic!("not routed: {d:?}")
    };
    assert_eq!(f.len(), 1, "{f:?}");
    assert_eq!(f[0].request_uri.as_deref(), Some("sip:bob@10.0.0.3:5060"));
    // originating (bob calls his other device): a temp-GRUU of ours goes to our terminating
    // side, not the I-CSCF
    let Decision::Forward(f) = r.originating(&other, &m, None, now + 10).await else {
        panic!("routed")
    };
    assert_eq!(f[0].routes, ["<sip:term@127.0.0.1:6060;lr>"]);
    // after the registration's expiry it resolves no more
    assert_eq!(
        r.terminating(&other, &m, None, now + 601).await,
        Decision::Reply(480)
    );
    // one that was never issued is an unknown user
    let forged = invite("sip:tgruu.0123456789abcdef0123456789abcdef@ims.example.org;gr");
    let m = ims::sip::parse_datagram(forged.as_bytes()).unwrap();
    assert_eq!(
        r.terminating(&other, &m, None, now + 10).await,
        Decision::Reply(480)
    );
    temp
}

#[tokio::test]
async fn in_memory() {
    let store = MemoryStore::new();
    issue_then_route_elsewhere(store.clone(), store).await;
}

#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_redis() {
    use ims::nf::redis::RedisStore;
    let Some(server) = common::RedisServer::start("gruu").await else {
        return;
    };
    let addr = server.addr();
    let connect = || async {
        RedisStore::connect(&addr, "ims:gruu:")
            .await
            .expect("redis-server answers")
    };
    let (a, b) = (connect().await, connect().await);
    issue_then_route_elsewhere(a, b).await;
    // Redis itself drops an alias at its expiry
    let c = connect().await;
    c.save_alias("sip:tgruu.short@ims.example.org", "sip:x;gr=y", 100, 101)
        .await
        .unwrap();
    assert_eq!(
        c.load_alias("sip:tgruu.short@ims.example.org", 100)
            .await
            .unwrap()
            .as_deref(),
        Some("sip:x;gr=y")
    );
    let mut gone = false;
    for _ in 0..60 {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        if c.load_alias("sip:tgruu.short@ims.example.org", 100)
            .await
            .unwrap()
            .is_none()
        {
            gone = true;
            break;
        }
    }
    assert!(gone, "the alias outlived its EX");
}
