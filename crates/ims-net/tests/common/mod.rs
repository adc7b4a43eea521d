//! What the Diameter node tests share: a Cx node's configuration, a port of a helper's range,
//! a MAR and the MAA a scripted HSS answers it with. Each test binary compiles this module
//! separately and uses part of it, hence the `dead_code` allowance.
#![allow(dead_code)]

use ims_diameter::base::VendorSpecificApplicationId;
use ims_diameter::cx::{Maa, Mar};
use ims_diameter::dict::app;
use ims_diameter::peer::{result_answer, Application};
use ims_diameter::{Command, Framer, Outcome};
use ims_net::diameter::{Incoming, Node, NodeConfig};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// A node `host` of `realm` offering Cx, with no watchdog jitter and `timeout` per request.
pub(crate) fn cx_cfg(host: &str, realm: &str, timeout: Duration) -> NodeConfig {
    let mut c = NodeConfig::new(host, realm);
    c.applications = vec![Application::tgpp_auth(app::CX)];
    c.watchdog_jitter = Duration::ZERO;
    c.request_timeout = timeout;
    c
}

/// Listens on a free port of 127.0.0.1 in `base`..`base + 100`.
pub(crate) async fn listen_in(node: &Node, base: u16) -> SocketAddr {
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let start = (std::process::id() % 100) as u16;
    for _ in 0..100 {
        let port = base + (start + NEXT.fetch_add(1, Ordering::Relaxed)) % 100;
        if let Ok(a) = node.listen(([127, 0, 0, 1], port).into()).await {
            return a;
        }
    }
    panic!("no free port in {base}-{}", base + 99);
}

/// A MAR for `user@realm` (one vector, for the S-CSCF scscf.ims.example.org) from `origin_host`
/// of `origin_realm` to `realm`.
pub(crate) fn mar(
    session: &str,
    origin_host: &str,
    origin_realm: &str,
    realm: &str,
    user: &str,
) -> Mar<'static> {
    Mar {
        session_id: session.to_owned().into(),
        vendor_specific_application_id: VendorSpecificApplicationId::cx(),
        origin_host: origin_host.to_owned().into(),
        origin_realm: origin_realm.to_owned().into(),
        destination_realm: realm.to_owned().into(),
        user_name: format!("{user}@{realm}").into(),
        public_identity: format!("sip:{user}@{realm}").into(),
        sip_number_auth_items: 1,
        server_name: "sip:scscf.ims.example.org".into(),
        ..Default::default()
    }
}

/// `node`'s successful MAA to the MAR `req`.
pub(crate) fn maa_for(node: &Node, req: &Incoming) -> Vec<u8> {
    let mar = Mar::decode(&req.message.view()).expect("valid MAR");
    let mut maa = Maa {
        session_id: mar.session_id,
        vendor_specific_application_id: mar.vendor_specific_application_id,
        auth_session_state: mar.auth_session_state,
        origin_host: node.origin_host().to_owned().into(),
        origin_realm: node.origin_realm().to_owned().into(),
        user_name: Some(mar.user_name),
        ..Default::default()
    };
    maa.set_outcome(Outcome::SUCCESS);
    maa.encode_answer(req.message.header())
}

/// Makes `node` answer every MAR with [`maa_for`]; how many it answered.
pub(crate) fn answer_mars(node: &Node) -> Arc<AtomicUsize> {
    answer_mars_with(node, 2001, None)
}

/// Makes `node` answer every MAR with `result` (2001: [`maa_for`]; 3xxx: that error, E bit),
/// after `delay` when there is one; how many it answered.
pub(crate) fn answer_mars_with(
    node: &Node,
    result: u32,
    delay: Option<Duration>,
) -> Arc<AtomicUsize> {
    let count = Arc::new(AtomicUsize::new(0));
    let (n, c) = (node.clone(), count.clone());
    node.handle(app::CX, Mar::CODE, move |req| {
        let (n, c) = (n.clone(), c.clone());
        async move {
            c.fetch_add(1, Ordering::SeqCst);
            if let Some(delay) = delay {
                tokio::time::sleep(delay).await;
            }
            if result == 2001 {
                maa_for(&n, &req)
            } else {
                result_answer(&req.message.view(), result, &n.origin())
            }
        }
    });
    count
}

/// Reads what the node sends next on the raw connection `stream` (within `wait`) into `framer`;
/// the node must not close it.
pub(crate) async fn read_into(
    stream: &mut tokio::net::TcpStream,
    framer: &mut Framer,
    wait: Duration,
) {
    use tokio::io::AsyncReadExt;
    let mut buf = [0u8; 4096];
    let n = tokio::time::timeout(wait, stream.read(&mut buf))
        .await
        .expect("a message from the node in time")
        .unwrap();
    assert!(n > 0, "the node closed the connection");
    framer.push(&buf[..n]);
}
