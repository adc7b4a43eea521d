//! Mobile-originated short messages per second through the IM server's IP-SM-GW
//! (`ims_nf::im_server`, TS 24.341): one iteration submits 500 SMS over SIP with at most 64 in
//! flight. Each SMS is the whole page-mode exchange on 127.0.0.1/UDP:
//!
//! ```text
//!   UE A ─MESSAGE RP-DATA(SMS-SUBMIT)─▶ IM server ─202─▶ A
//!   IM server ─MESSAGE RP-ACK(SUBMIT-REPORT)─▶ A ─200─▶      (this completes the SMS for the count)
//!   IM server ─MESSAGE RP-DATA(SMS-DELIVER)─▶ B ─200─▶
//!   B ─MESSAGE RP-ACK(DELIVER-REPORT)─▶ IM server ─202─▶ B
//! ```
//!
//! A and B are one ims-net endpoint standing in for the S-CSCF as well (the IM server's
//! `scscf` points at it), so the figure is the IM server's own cost plus one SIP UA's: four
//! MESSAGE transactions per SMS. Everything runs in this process on a 2-thread runtime.
//!
//! `cargo bench --bench im_sms -- --warm-up-time 1 --measurement-time 3`

#![allow(missing_docs)]

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ims::net::sip::{Endpoint, EndpointConfig};
use ims::nf::im_server::{ImServer, ImServerConfig, SMS_CONTENT_TYPE};
use ims::sip::{Method, OwnedMessage, RequestBuilder};
use ims::sms::{self, answer, Address, Direction, RpBody, RpMessage, Submit, Tpdu};
use ims::txn::ua::{Answer, UaEvent};
use ims::txn::Remote;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::sync::mpsc;

const N: usize = 500;
const WINDOW: usize = 64;
const IM: u16 = 7077;
const UE: u16 = 7078;

fn lo(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

fn message(from: &str, seq: u64, body: Vec<u8>) -> OwnedMessage {
    RequestBuilder::new(Method::Message, "sip:+15550000@ims.example.org")
        .header("Max-Forwards", 70)
        .header("From", format!("<{from}>;tag=b{seq}"))
        .header("To", "<sip:+15550000@ims.example.org>")
        .header("Call-ID", format!("bench-{seq}-{from}"))
        .header("CSeq", "1 MESSAGE")
        .body(SMS_CONTENT_TYPE, body)
        .build()
        .expect("MESSAGE")
}

fn submit(mr: u8) -> Vec<u8> {
    let tpdu = Tpdu::Submit(Submit {
        reject_duplicates: false,
        reply_path: false,
        status_report_request: false,
        message_reference: mr,
        destination: Address::international("15550002"),
        pid: Default::default(),
        dcs: Default::default(),
        validity_period: None,
        user_data: sms::UserData::gsm7("bench message", Default::default()).expect("text"),
    })
    .encode()
    .expect("SUBMIT");
    RpMessage::data_mo(mr, Address::international("15550000"), &tpdu)
        .encode()
        .expect("RP-DATA")
}

struct Ue {
    ep: Endpoint,
    seq: AtomicU64,
    rejected: AtomicU64,
}

impl Ue {
    /// Sends one RP message as `from`; counts anything but 202.
    async fn send(self: &Arc<Self>, from: &'static str, body: Vec<u8>) {
        let seq = self.seq.fetch_add(1, Ordering::Relaxed);
        let ok = match self
            .ep
            .request(message(from, seq, body), Remote::udp(lo(IM)))
            .await
        {
            Ok(t) => {
                matches!(t.final_response().await, Ok(r) if r.as_message().status() == Some(202))
            }
            Err(_) => false,
        };
        if !ok {
            self.rejected.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Submits `N` SMS keeping `WINDOW` in flight; returns when every RP-ACK arrived.
async fn batch(ue: &Arc<Ue>, acks: &mut mpsc::UnboundedReceiver<bool>) -> usize {
    let (mut sent, mut acked, mut errors) = (0usize, 0usize, 0usize);
    let go = |i: usize| {
        let ue = ue.clone();
        tokio::spawn(async move { ue.send("sip:a@ims.example.org", submit(i as u8)).await });
    };
    while sent < WINDOW.min(N) {
        go(sent);
        sent += 1;
    }
    while acked < N {
        match acks.recv().await {
            Some(ok) => {
                acked += 1;
                errors += usize::from(!ok);
            }
            None => break,
        }
        if sent < N {
            go(sent);
            sent += 1;
        }
    }
    errors
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let (server, ue, mut acks) = rt.block_on(async {
        let mut cfg = ImServerConfig::new(lo(IM), "ims.example.org", "sip:term@127.0.0.1:7078");
        cfg.numbering
            .add("+15550001", ["sip:a@ims.example.org"])
            .add("+15550002", ["sip:b@ims.example.org"]);
        let server = ImServer::start(cfg).await.expect("IM server");
        let (ep, mut incoming) = Endpoint::bind(EndpointConfig {
            addr: lo(UE),
            user: "ue".into(),
            ..EndpointConfig::default()
        })
        .await
        .expect("UE endpoint");
        let ue = Arc::new(Ue {
            ep,
            seq: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
        });
        let (tx, acks) = mpsc::unbounded_channel();
        let u = ue.clone();
        tokio::spawn(async move {
            while let Some(ev) = incoming.recv().await {
                let UaEvent::IncomingRequest { txn, msg, .. } = ev else {
                    continue;
                };
                let _ = u.ep.respond(txn, Answer::new(200)).await;
                let m = msg.as_message();
                let Ok(rp) = RpMessage::decode(m.body(), Direction::NetworkToMs) else {
                    continue;
                };
                match rp.body {
                    // SMS-DELIVER to B: B acknowledges it
                    RpBody::Data { .. } => {
                        let ack = answer::deliver_report_ack(&rp).expect("DELIVER-REPORT");
                        let u = u.clone();
                        tokio::spawn(async move { u.send("sip:b@ims.example.org", ack).await });
                    }
                    RpBody::Ack { .. } => {
                        let _ = tx.send(true);
                    }
                    _ => {
                        let _ = tx.send(false);
                    }
                }
            }
        });
        (server, ue, acks)
    });
    let mut g = c.benchmark_group("im_sms");
    g.throughput(Throughput::Elements(N as u64));
    g.sample_size(10);
    g.bench_function("mo_sms_submit_202_rp_ack_and_delivery_500", |b| {
        b.iter(|| {
            rt.block_on(async {
                let errors = batch(&ue, &mut acks).await;
                assert_eq!(errors, 0, "RP-ERROR answers");
            })
        })
    });
    g.finish();
    // the last DELIVERs' RP-ACKs from B may still be on the way
    rt.block_on(async {
        for _ in 0..100 {
            if server.queued() == 0 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    });
    assert_eq!(server.queued(), 0, "every delivery acknowledged by B");
    let st = server.stats();
    assert_eq!(ue.rejected.load(Ordering::Relaxed), 0, "non-202 answers");
    assert_eq!(st.sms_failed, 0, "{st:?}");
    println!(
        "im_sms: {} SMS MESSAGEs received, {} sent by the IM server, {} failed",
        st.sms_received, st.sms_sent, st.sms_failed
    );
    server.shutdown();
}

criterion_group!(benches, bench);
criterion_main!(benches);
