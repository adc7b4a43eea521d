//! Two S-CSCF instances sharing their registrations through Redis (`redis-server` started on
//! 127.0.0.1): the callee registers through core A (P-, I-, S-CSCF, embedded HSS/PCRF, Redis
//! store); a terminating call goes into a second S-CSCF, B (role `s` only, A's HSS over Diameter,
//! the same Redis), which finds the registration and routes the call along the callee's Path
//! (A's P-CSCF) to the UE. Then B is stopped and a fresh instance C (nothing in memory: a
//! restarted S-CSCF) routes a second call the same way.
//!
//! SIPp and redis-server are found with `common::interop_tool` (skip unless
//! `IMS_REQUIRE_INTEROP=1`).

#![cfg(feature = "redis")]

mod common;
mod ims_core;

use ims_core::{config, scenario, sipp, LO};

use ims::nf::redis::RedisStore;
use ims::nf::runtime::{CoreStore, ImsCore, Peer, Roles};
use ims::nf::store::BindingStore;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

async fn redis_store(addr: &str) -> RedisStore {
    RedisStore::connect(addr, "ims:reg:")
        .await
        .expect("redis-server answers")
}

/// A call from a SIPp UAC straight into the S-CSCF at `scscf` to `sip:+15550002@ims.example.org`, answered by
/// the callee's SIPp UAS on `uas_port` (which registered through core A).
async fn call_through(bin: &Path, dir: &Path, scscf: &str, uac_port: &str, uas_port: &str) {
    let (b, d, p) = (bin.to_path_buf(), dir.to_path_buf(), uas_port.to_string());
    let uas = tokio::spawn(async move {
        sipp(
            &b,
            &d,
            &[
                "-sf",
                scenario("ims_call_uas.xml").to_str().unwrap(),
                "-i",
                "127.0.0.1",
                "-p",
                &p,
                "-m",
                "1",
            ],
        )
        .await
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (ok, out) = sipp(
        bin,
        dir,
        &[
            scscf,
            "-sf",
            scenario("ims_call_term.xml").to_str().unwrap(),
            "-s",
            "001010000000001",
            "-key",
            "callee",
            // as the I-CSCF sends it after ENUM
            "sip:+15550002@ims.example.org",
            "-i",
            "127.0.0.1",
            "-p",
            uac_port,
            "-m",
            "1",
        ],
    )
    .await;
    assert!(ok, "caller through {scscf} failed:\n{out}");
    let (ok, out) = uas.await.expect("uas task");
    assert!(ok, "callee failed:\n{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_scscf_instances_share_registrations_in_redis() {
    let Some(bin) = common::interop_tool("sipp", "apt-get install sip-tester") else {
        return;
    };
    let Some(server) = common::RedisServer::start("cscf").await else {
        return;
    };
    let dir = common::TempDir::new("cscf", "redis", "IMS_KEEP_SIPP");
    let addr = server.addr();

    // core A: everything, embedded HSS and PCRF, registrations in Redis
    let a_cfg = config(
        24060,
        Roles::ALL,
        Peer::Embedded(SocketAddr::new(LO, 24860)),
        Peer::Embedded(SocketAddr::new(LO, 24861)),
    );
    let a = ImsCore::start_with_store(a_cfg, CoreStore::Redis(Arc::new(redis_store(&addr).await)))
        .await
        .expect("core A starts");
    // the callee registers through A
    let (ok, out) = sipp(
        &bin,
        dir.path(),
        &[
            "127.0.0.1:24060",
            "-sf",
            scenario("ims_register.xml").to_str().unwrap(),
            "-s",
            "001010000000002",
            "-au",
            "001010000000002@ims.example.org",
            "-i",
            "127.0.0.1",
            "-p",
            "24092",
            "-m",
            "1",
        ],
    )
    .await;
    assert!(ok, "callee registration failed:\n{out}");
    let check = redis_store(&addr).await;
    let rec = check
        .load("tel:+15550002")
        .await
        .expect("redis answers")
        .expect("the registration is in Redis");
    assert_eq!(rec.bindings.len(), 1);

    // S-CSCF B: only the S-CSCF role, A's HSS over Diameter, the same Redis
    let s_only = Roles {
        p: false,
        i: false,
        s: true,
        im: false,
    };
    let external = |host: &str, port: u16| Peer::External {
        host: host.into(),
        addr: SocketAddr::new(LO, port),
    };
    let b = ImsCore::start_with_store(
        config(
            24160,
            s_only,
            external("hss.ims.example.org", 24860),
            external("pcrf.ims.example.org", 24861),
        ),
        CoreStore::Redis(Arc::new(redis_store(&addr).await)),
    )
    .await
    .expect("S-CSCF B starts");
    assert_eq!(b.scscf_state(), Some((0, 0)), "B holds nothing in memory");
    call_through(&bin, dir.path(), "127.0.0.1:24170", "24191", "24092").await;

    // B goes away; C, a fresh instance, still finds the registration
    b.shutdown();
    let c = ImsCore::start_with_store(
        config(
            24260,
            s_only,
            external("hss.ims.example.org", 24860),
            external("pcrf.ims.example.org", 24861),
        ),
        CoreStore::Redis(Arc::new(redis_store(&addr).await)),
    )
    .await
    .expect("S-CSCF C starts");
    call_through(&bin, dir.path(), "127.0.0.1:24270", "24291", "24092").await;
    c.shutdown();
    a.shutdown();
}
