//! In-process hand-off between co-located SIP endpoints (`ims_net::sip::LocalLinks`): a datagram
//! to a co-located endpoint's UDP address arrives as the socket would have delivered it, in
//! memory; everyone else still gets it on the socket.

use ims_net::sip::{Endpoint, EndpointConfig, Incoming, LocalLinks};
use ims_sip::{Method, OwnedMessage, RequestBuilder};
use ims_txn::ua::{Answer, UaEvent};
use ims_txn::Remote;
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(10);

async fn bind(local: Option<LocalLinks>) -> (Endpoint, Incoming) {
    Endpoint::bind(EndpointConfig {
        local,
        ..EndpointConfig::default()
    })
    .await
    .expect("bind on 127.0.0.1")
}

/// Answers every out-of-dialog request 200 and passes it on.
fn answer_all(
    ep: Endpoint,
    mut inc: Incoming,
) -> tokio::sync::mpsc::UnboundedReceiver<OwnedMessage> {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(ev) = inc.recv().await {
            if let UaEvent::IncomingRequest { txn, msg, .. } = ev {
                let _ = tx.send(msg);
                let _ = ep.respond(txn, Answer::new(200)).await;
            }
        }
    });
    rx
}

fn message(to: &Remote, id: &str) -> OwnedMessage {
    RequestBuilder::new(Method::Message, &format!("sip:bob@{}", to.addr))
        .header("Max-Forwards", 70)
        .header("From", "<sip:alice@ims.example>;tag=m1")
        .header("To", "<sip:bob@ims.example>")
        .header("Call-ID", format!("{id}@ims.example"))
        .header("CSeq", "1 MESSAGE")
        .body("text/plain", b"hello".to_vec())
        .build()
        .expect("valid MESSAGE")
}

/// Sends a [`message`] from `from` to `to`, asserts its 200 and returns the MESSAGE as the UAS
/// (answering into `seen`) saw it.
async fn send_message(
    from: &Endpoint,
    to: &Remote,
    id: &str,
    seen: &mut tokio::sync::mpsc::UnboundedReceiver<OwnedMessage>,
) -> OwnedMessage {
    let t = from.request(message(to, id), *to).await.unwrap();
    let resp = tokio::time::timeout(LIMIT, t.final_response())
        .await
        .expect("answered in time")
        .expect("a final response");
    assert_eq!(resp.as_message().status(), Some(200));
    tokio::time::timeout(LIMIT, seen.recv())
        .await
        .unwrap()
        .unwrap()
}

/// The top Via as the UAS saw it.
fn top_via(m: &OwnedMessage) -> String {
    m.as_message()
        .top_via()
        .expect("a readable Via")
        .expect("a Via")
        .to_string()
}

#[tokio::test]
async fn co_located_endpoints_exchange_datagrams_in_memory_and_others_use_the_socket() {
    let links = LocalLinks::new();
    let (uas, inc) = bind(Some(links.clone())).await;
    let (uac, _uac_events) = bind(Some(links.clone())).await;
    let (outsider, _outsider_events) = bind(None).await;
    let mut seen = answer_all(uas.clone(), inc);
    let mut registered = links.addresses();
    registered.sort();
    let mut want = vec![uas.local_addr(), uac.local_addr()];
    want.sort();
    assert_eq!(registered, want, "the endpoints with the table, only");

    // co-located: request and response in memory
    let to = Remote::udp(uas.local_addr());
    let got = send_message(&uac, &to, "local", &mut seen).await;
    // what a socket datagram from the UAC's address gets: rport filled in, no `received`
    let via = top_via(&got);
    let port = uac.local_addr().port();
    assert!(
        via.starts_with(&format!("SIP/2.0/UDP 127.0.0.1:{port};")),
        "{via}"
    );
    assert!(via.contains(&format!("rport={port}")), "{via}");
    assert!(!via.contains("received="), "{via}");
    assert_eq!(got.as_message().body(), b"hello");
    let (c, s) = (uac.transport_stats(), uas.transport_stats());
    assert_eq!((c.in_process_sent, c.in_process_received), (1, 1), "{c:?}");
    assert_eq!((s.in_process_sent, s.in_process_received), (1, 1), "{s:?}");

    // an endpoint without the table: on the socket both ways, and the same Via treatment
    let got = send_message(&outsider, &to, "outside", &mut seen).await;
    let via = top_via(&got);
    let port = outsider.local_addr().port();
    assert!(via.contains(&format!("rport={port}")), "{via}");
    let s = uas.transport_stats();
    assert_eq!(
        (s.in_process_sent, s.in_process_received),
        (1, 1),
        "the outsider's request and its response went over the socket: {s:?}"
    );
    assert_eq!(outsider.transport_stats().in_process_received, 0);

    // a stopped endpoint leaves the table
    uas.shutdown();
    let gone = tokio::time::timeout(LIMIT, async {
        while links.addresses().contains(&to.addr) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    assert!(gone.is_ok(), "the stopped UAS is still in the table");
    assert_eq!(links.addresses(), vec![uac.local_addr()]);
}

/// The live transactions of `ep` once they settle (the answering task may still be sending).
async fn transactions(ep: &Endpoint, want: usize) -> usize {
    let mut n = ep.transactions().await.expect("running");
    for _ in 0..100 {
        if n == want {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
        n = ep.transactions().await.expect("running");
    }
    n
}

#[tokio::test]
async fn transactions_with_a_co_located_endpoint_end_with_their_final_response() {
    let links = LocalLinks::new();
    let (uas, inc) = bind(Some(links.clone())).await;
    let (uac, _uac_events) = bind(Some(links.clone())).await;
    let (outsider, _outsider_events) = bind(None).await;
    let mut seen = answer_all(uas.clone(), inc);
    let to = Remote::udp(uas.local_addr());

    // in memory: nothing is lost, so neither side keeps its transaction for retransmissions
    // (Timer K at the client, J at the server are zero)
    send_message(&uac, &to, "lossless", &mut seen).await;
    assert_eq!(
        transactions(&uac, 0).await,
        0,
        "the UAC keeps its client transaction"
    );
    assert_eq!(
        transactions(&uas, 0).await,
        0,
        "the UAS keeps its server transaction"
    );

    // over the socket: the client waits Timer K (T4 = 5 s), the server Timer J (64·T1 = 32 s)
    send_message(&outsider, &to, "socket", &mut seen).await;
    assert_eq!(transactions(&outsider, 1).await, 1);
    assert_eq!(transactions(&uas, 1).await, 1);
}
