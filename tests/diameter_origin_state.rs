//! What a PCRF does when an AF restarts (RFC 6733 §8.16 Origin-State-Id): two P-CSCFs (our
//! Diameter nodes, each with an Origin-State-Id) open Rx sessions at the ims-nf PCRF behind our
//! node; one P-CSCF stops and starts again with its state lost (`Node::restart`: its
//! Origin-State-Id goes up), so it will never send the STRs of its old sessions. The PCRF's node
//! sees the higher Origin-State-Id in the new CER (`Node::on_peer_restart`) and the PCRF drops
//! exactly that P-CSCF's sessions (`Pcrf::drop_sessions_of`); the other P-CSCF's stay.

use ims::diameter::dict::app;
use ims::diameter::peer::Application;
use ims::diameter::rx::{Aar, MediaComponentDescription, MediaSubComponent};
use ims::diameter::{Command, Outcome};
use ims::net::diameter::{Node, NodeConfig, PeerRestart};
use ims::nf::pcrf::{Pcrf, PcrfRxServer};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const REALM: &str = "ims.example.org";
const SECS: Duration = Duration::from_secs(10);

fn cfg(host: &str, state_id: Option<u32>) -> NodeConfig {
    let mut c = NodeConfig::new(host, REALM);
    c.applications = vec![Application::tgpp_auth(app::RX)];
    c.vendor_id = 10415;
    c.watchdog_jitter = Duration::ZERO;
    c.reconnect_interval = Some(Duration::from_millis(200));
    c.origin_state_id = state_id;
    c
}

/// An AAR from `node` for one audio flow from `port`.
fn aar(node: &Node, port: u16) -> Vec<u8> {
    let flows = [
        format!("permit out 17 from 192.0.2.20 {port} to 192.0.2.10 {port}"),
        format!("permit in 17 from 192.0.2.10 {port} to 192.0.2.20 {port}"),
    ];
    Aar {
        session_id: node.session_id().into(),
        auth_application_id: app::RX,
        origin_host: node.origin_host().to_owned().into(),
        origin_realm: REALM.into(),
        destination_realm: REALM.into(),
        media_component_description: ims::diameter::Repeated::from(vec![
            MediaComponentDescription {
                media_component_number: 1,
                media_sub_component: vec![MediaSubComponent {
                    flow_number: 1,
                    flow_description: flows.iter().map(|f| f.clone().into()).collect(),
                    ..Default::default()
                }]
                .into(),
                ..Default::default()
            },
        ]),
        ..Default::default()
    }
    .encode(0, node.next_end_to_end())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pcrf_drops_the_rx_sessions_of_a_restarted_pcscf() {
    // the PCRF behind our node, dropping the sessions of an AF that restarted
    let pcrf = Arc::new(Mutex::new(Pcrf::new(None)));
    let server = Arc::new(PcrfRxServer::new(
        "pcrf.ims.example.org",
        REALM,
        pcrf.clone(),
    ));
    let node = Node::new(cfg("pcrf.ims.example.org", Some(1)));
    for code in [Aar::CODE, ims::diameter::rx::Str::CODE] {
        let s = server.clone();
        node.handle(app::RX, code, move |req| {
            let s = s.clone();
            async move { s.answer(req.message.bytes()).unwrap_or_default() }
        });
    }
    // each restart reported, with the Session-Ids the PCRF dropped for it
    type Dropped = Arc<Mutex<Vec<(PeerRestart, Vec<String>)>>>;
    let restarts: Dropped = Arc::default();
    let (p, r) = (pcrf.clone(), restarts.clone());
    node.on_peer_restart(move |x| {
        let dropped = p.lock().unwrap().drop_sessions_of(&x.origin_host);
        r.lock().unwrap().push((x.clone(), dropped));
    });
    let addr = node.listen("127.0.0.1:0".parse().unwrap()).await.unwrap();

    // two P-CSCFs open sessions: two for pcscf1, one for pcscf2
    let pcscf1 = Node::new(cfg("pcscf1.ims.example.org", Some(100)));
    let pcscf2 = Node::new(cfg("pcscf2.ims.example.org", Some(200)));
    let mut ids = Vec::new();
    for (n, pcscf) in [(1, &pcscf1), (2, &pcscf2)] {
        pcscf.add_peer("pcrf.ims.example.org", addr);
        pcscf
            .wait_open("pcrf.ims.example.org", SECS)
            .await
            .unwrap_or_else(|e| panic!("pcscf{n}: {e}"));
    }
    for (pcscf, port) in [(&pcscf1, 40000), (&pcscf1, 40002), (&pcscf2, 40004)] {
        let req = aar(pcscf, port);
        let id = Aar::decode(&ims::diameter::Message::parse(&req).unwrap())
            .unwrap()
            .session_id
            .into_owned();
        let aaa = pcscf.request(req).await.unwrap();
        assert_eq!(aaa.view().outcome(), Some(Outcome::SUCCESS));
        ids.push(id);
    }
    assert_eq!(pcrf.lock().unwrap().len(), 3);

    // pcscf2 only reconnects (same run, same Origin-State-Id): nothing is dropped
    pcscf2.shutdown();
    pcscf2.wait_stopped(SECS).await.unwrap();
    node.wait_closed("pcscf2.ims.example.org", SECS)
        .await
        .unwrap();
    let again = Node::new(cfg("pcscf2.ims.example.org", Some(200)));
    again.add_peer("pcrf.ims.example.org", addr);
    again.wait_open("pcrf.ims.example.org", SECS).await.unwrap();

    // pcscf1 restarts with its state lost: Origin-State-Id 101 in its new CER
    pcscf1.shutdown();
    pcscf1.wait_stopped(SECS).await.unwrap();
    node.wait_closed("pcscf1.ims.example.org", SECS)
        .await
        .unwrap();
    pcscf1.restart(SECS).await.unwrap();
    pcscf1
        .wait_open("pcrf.ims.example.org", SECS)
        .await
        .unwrap();
    for _ in 0..200 {
        if !restarts.lock().unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let seen = restarts.lock().unwrap().clone();
    let mut mine = vec![ids[0].clone(), ids[1].clone()];
    mine.sort();
    assert_eq!(
        seen,
        vec![(
            PeerRestart {
                origin_host: "pcscf1.ims.example.org".into(),
                previous: 100,
                current: 101,
            },
            mine
        )]
    );
    assert_eq!(pcrf.lock().unwrap().session_ids(), vec![ids[2].clone()]);

    // the restarted P-CSCF opens a new session as usual
    let aaa = pcscf1.request(aar(&pcscf1, 40006)).await.unwrap();
    assert_eq!(aaa.view().outcome(), Some(Outcome::SUCCESS));
    assert_eq!(pcrf.lock().unwrap().len(), 2);
    for n in [&pcscf1, &again, &node] {
        n.shutdown();
        n.wait_stopped(SECS).await.unwrap();
    }
}
