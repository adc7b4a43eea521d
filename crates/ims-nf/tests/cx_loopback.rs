//! The S-CSCF registrar against the embedded HSS over real Diameter Cx on 127.0.0.1: two ims-net
//! nodes (capabilities exchange, then MAR/MAA and SAR/SAA on the wire), an IMS-AKA registration
//! answered by a simulated USIM, and the HSS going away (the S-CSCF answers 504, no hang).

use ims_auth::aka::{Usim, DEFAULT_IND_BITS};
use ims_auth::digest::{self, Challenge, Request};
use ims_auth::milenage::{Milenage, OperatorKey};
use ims_diameter::dict::app;
use ims_diameter::peer::Application;
use ims_net::diameter::{Node, NodeConfig};
use ims_nf::cx::LocalHss;
use ims_nf::cx_wire::{DiameterCx, HssCxServer};
use ims_nf::hss::{AkaCredentials, Credentials, Hss, Subscriber};
use ims_nf::registrar::RegistrarConfig;
use ims_nf::scscf::{RegEvent, Scscf, ScscfConfig};
use ims_nf::store::MemoryStore;
use ims_nf::subscription::{ImsSubscription, PublicIdentity, ServiceProfile};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const IMPI: &str = "001010000000001@ims.example.org";
const IMPU: &str = "sip:001010000000001@ims.example.org";
const K: [u8; 16] = *b"0123456789abcdef";
const OPC: [u8; 16] = *b"fedcba9876543210";

fn register(cseq: u32, auth: Option<&str>) -> Vec<u8> {
    let auth = auth.map_or(String::new(), |a| format!("Authorization: {a}\r\n"));
    format!(
        "REGISTER sip:ims.example.org SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK-{cseq}\r\n\
Max-Forwards: 70\r\nFrom: <{IMPU}>;tag=f\r\nTo: <{IMPU}>\r\nCall-ID: c1\r\nCSeq: {cseq} REGISTER\r\n\
Contact: <sip:ue@10.0.0.1:5060>;expires=600\r\n{auth}Content-Length: 0\r\n\r\n"
    )
    .into_bytes()
}

#[tokio::test]
async fn aka_registration_over_diameter_cx() {
    let mut hss = Hss::new(None);
    hss.add_subscriber(Subscriber {
        subscription: ImsSubscription {
            private_id: IMPI.into(),
            service_profiles: vec![ServiceProfile {
                public_identities: vec![
                    PublicIdentity::new(IMPU),
                    PublicIdentity::new("tel:+15550001"),
                ],
                ..ServiceProfile::default()
            }],
        },
        credentials: Credentials {
            aka: Some(AkaCredentials::new(K, OperatorKey::Opc(OPC), [0x80, 0], 0)),
            password: None,
        },
    });
    let mut n = 0u8;
    let local = LocalHss::new(Arc::new(Mutex::new(hss)), "ims.example.org", move || {
        n = n.wrapping_add(1);
        [n; 16]
    });

    let mut cfg = NodeConfig::new("hss.ims.example.org", "ims.example.org");
    cfg.applications = vec![Application::tgpp_auth(app::CX)];
    let hss_node = Node::new(cfg.clone());
    let addr = hss_node
        .listen("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    ims_nf::net::serve_hss(
        &hss_node,
        HssCxServer::new("hss.ims.example.org", "ims.example.org", local),
    );
    cfg.origin_host = "scscf.ims.example.org".into();
    cfg.request_timeout = Duration::from_secs(2);
    let scscf_node = Node::new(cfg);
    scscf_node.add_peer("hss.ims.example.org", addr);
    scscf_node
        .wait_open("hss.ims.example.org", Duration::from_secs(5))
        .await
        .unwrap();

    let scscf = Scscf::new(
        ScscfConfig {
            server_name: "sip:scscf.ims.example.org:6060".into(),
            realm: "ims.example.org".into(),
            service_route: "sip:orig@scscf.ims.example.org:6060;lr".into(),
            registrar: RegistrarConfig::default(),
            nonce_secret: b"a secret of thirty-two octets!!!".to_vec(),
        },
        DiameterCx::new(
            scscf_node.clone(),
            "scscf.ims.example.org",
            "ims.example.org",
            "ims.example.org",
        ),
        MemoryStore::new(),
    );
    let now = 1_700_000_000;
    let r1 = register(1, None);
    let o = scscf
        .register(&ims_sip::parse_datagram(&r1).unwrap(), now, [1; 16])
        .await;
    assert_eq!(o.status, 401);
    let m = ims_sip::parse_datagram(o.response.bytes()).unwrap();
    let www = m.header_str("WWW-Authenticate").unwrap().to_string();
    let mut usim = Usim::new(Milenage::new(&K, OperatorKey::Opc(OPC)), DEFAULT_IND_BITS);
    let req = Request {
        method: "REGISTER",
        uri: "sip:ims.example.org",
        body: b"",
        cnonce: "0a1b2c",
        nc: 1,
    };
    let (creds, keys) =
        digest::answer_aka(&Challenge::parse(&www).unwrap(), &mut usim, IMPI, &req).unwrap();
    assert!(keys.is_some(), "the USIM accepts the HSS's AUTN");
    let r2 = register(2, Some(&creds.to_string()));
    let o = scscf
        .register(&ims_sip::parse_datagram(&r2).unwrap(), now, [2; 16])
        .await;
    assert_eq!(
        o.status,
        200,
        "{}",
        String::from_utf8_lossy(o.response.bytes())
    );
    let Some(RegEvent::Registered {
        initial: true,
        record,
    }) = o.event
    else {
        panic!("registered")
    };
    assert_eq!(record.implicit_set, [IMPU, "tel:+15550001"]);

    // the HSS goes away: the next REGISTER is answered 504, promptly
    hss_node.shutdown();
    scscf_node
        .wait_closed("hss.ims.example.org", Duration::from_secs(5))
        .await
        .ok();
    let r3 = register(3, None);
    let o = tokio::time::timeout(
        Duration::from_secs(5),
        scscf.register(&ims_sip::parse_datagram(&r3).unwrap(), now, [3; 16]),
    )
    .await
    .expect("an answer within 5 s, not a hang");
    assert_eq!(o.status, 504);
}
