//! The Redis registration store against a real `redis-server` started on 127.0.0.1: two stores
//! (two S-CSCF processes) share one registration, a third connecting later (a restarted S-CSCF)
//! still finds it, and a removal is seen by all.

#![cfg(feature = "redis")]

mod common;

use ims::nf::redis::RedisStore;
use ims::nf::registrar::Binding;
use ims::nf::store::{BindingStore, RegState, RegistrationRecord};

fn record() -> RegistrationRecord {
    RegistrationRecord {
        impu: "sip:+15550001@ims.example.org".into(),
        impi: "001010000000001@ims.example.org".into(),
        implicit_set: vec![
            "sip:+15550001@ims.example.org".into(),
            "tel:+15550001".into(),
        ],
        barred: vec![],
        bindings: vec![Binding {
            uri: "sip:+15550001@10.0.0.1:5060".into(),
            params: ";+g.3gpp.smsip".into(),
            instance_id: None,
            reg_id: None,
            call_id: "c1".into(),
            cseq: 1,
            expires_at: 1_900_000_000,
            path: vec!["<sip:term@127.0.0.1:5060;lr>".into()],
            q: None,
        }],
        state: RegState::Registered,
        user_data: Some("<IMSSubscription><PrivateID>x</PrivateID></IMSSubscription>".into()),
        charging: None,
        reginfo_version: 0,
    }
}

#[tokio::test]
async fn two_stores_share_registrations_through_redis_server() {
    let Some(server) = common::RedisServer::start("store").await else {
        return;
    };
    let addr = server.addr();
    let a = RedisStore::connect(&addr, "ims:reg:")
        .await
        .expect("redis-server answers");
    let b = RedisStore::connect(&addr, "ims:reg:").await.unwrap();

    let rec = record();
    a.save(&rec).await.unwrap();
    // the other S-CSCF finds it by either identity of the implicit set
    assert_eq!(b.load("tel:+15550001").await.unwrap().as_ref(), Some(&rec));
    assert_eq!(
        b.load("sip:+15550001@ims.example.org").await.unwrap(),
        Some(rec.clone())
    );
    // a separate key space is not confused with ours
    let other = RedisStore::connect(&addr, "other:").await.unwrap();
    assert!(other.load("tel:+15550001").await.unwrap().is_none());
    // a "restarted" store (new connection) still has it; removal is seen by everyone
    drop(a);
    let c = RedisStore::connect(&addr, "ims:reg:").await.unwrap();
    assert!(c.load("tel:+15550001").await.unwrap().is_some());
    c.remove(&rec).await.unwrap();
    assert!(b.load("tel:+15550001").await.unwrap().is_none());
    assert!(b
        .load("sip:+15550001@ims.example.org")
        .await
        .unwrap()
        .is_none());
}
