//! The `msrp_chat` user agents around the IM server's session anchor, shared by
//! `tests/im_msrp_session.rs` (MSRP) and `tests/im_msrp_tls.rs` (msrps): B listening in its own
//! task, the events B reports, A's large-mode message and A's chat summary. Each of those test
//! binaries includes the example's client code as `client` and this file with `#[path]`, hence
//! the `dead_code` allowance.

#![allow(dead_code)]

use super::client::{self, ListenOpts, Ua};
use bytes::Bytes;
use serde_json::Value;
use std::time::Duration;

/// What [`listen`]'s task yields: B's events and the outcome of its `listen`.
pub(crate) type BobTask = tokio::task::JoinHandle<(Vec<Value>, Result<Value, String>)>;

/// B (bound as `ua`) listens with `lopts` in a task, which shuts B's endpoint down when
/// `listen` returns; B's SIP URI and the task.
pub(crate) fn listen(mut ua: Ua, lopts: ListenOpts) -> (String, BobTask) {
    let uri = ua.sip_uri();
    let task = tokio::spawn(async move {
        let mut events = Vec::new();
        let r = client::listen(&mut ua, &lopts, &mut |v| events.push(v)).await;
        ua.ep.shutdown();
        (events, r)
    });
    (uri, task)
}

/// The events of `kind`.
pub(crate) fn of_kind<'a>(events: &'a [Value], kind: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["event"] == kind).collect()
}

/// B's events, once B's task ended within `wait` and its `listen` ran without error.
pub(crate) async fn bob_events(task: BobTask, wait: Duration) -> Vec<Value> {
    let (events, r) = tokio::time::timeout(wait, task)
        .await
        .expect("bob ends")
        .unwrap();
    r.expect("bob's listen ran");
    events
}

/// A sends `body` (`content_type`) to `to` as one large-mode message; A's summary.
pub(crate) async fn send_large(alice: &mut Ua, to: &str, content_type: &str, body: &[u8]) -> Value {
    client::send_large(
        alice,
        to,
        content_type,
        Bytes::copy_from_slice(body),
        &mut |_| {},
    )
    .await
    .expect("large message sent")
}

/// A's summary of a chat of `n` messages that B echoed: all `n` sent, each with a success
/// REPORT, all `n` echoes received in order, and the BYE answered 200.
pub(crate) fn assert_echo_chat(sum: &Value, n: usize) {
    assert_eq!(sum["sent"], n);
    assert_eq!(sum["reports_ok"], n, "{sum}");
    assert_eq!(sum["received"], n, "{sum}");
    assert_eq!(sum["echo_in_order"], true, "{sum}");
    assert_eq!(sum["bye"], 200);
}
