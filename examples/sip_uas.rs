//! A SIP user agent server on the ims-net [`Endpoint`]: answers every INVITE with 180 Ringing
//! then 200 OK with an SDP answer (or, with `--prack`, a reliable 183 Session Progress and the
//! 200 once its PRACK arrived, RFC 3262), lets the UA core handle ACK, BYE and CANCEL, and
//! answers other requests (OPTIONS, MESSAGE, INFO...) 200.
//!
//! ```text
//! cargo run --example sip_uas -- [--addr 127.0.0.1:5070] [--prack] [--udp-only | --tcp-only]
//!     [--tls CERT.pem KEY.pem CA.pem]   # feature `tls`: also SIP over TLS (port + 1)
//! sipp -sn uac 127.0.0.1:5070 -m 10             # SIPp calls it
//! sipp -sf examples/sipp/prack_uac.xml 127.0.0.1:5070 -m 10   # with --prack
//! ```

use ims::net::sip::{Endpoint, EndpointConfig};
use ims::txn::ua::{Answer, UaEvent};
use ims::txn::TxnId;
use std::collections::HashMap;
use std::net::SocketAddr;

const SDP: &str = "v=0\r\no=ims-uas 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\n\
t=0 0\r\nm=audio 49170 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n";

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut cfg = EndpointConfig {
        user: "uas".into(),
        addr: "127.0.0.1:5070".parse::<SocketAddr>()?,
        ..EndpointConfig::default()
    };
    let mut prack = false;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--addr" => cfg.addr = args.next().ok_or("--addr needs a value")?.parse()?,
            "--prack" => prack = true,
            "--udp-only" => cfg.tcp = false,
            "--tcp-only" => cfg.udp = false,
            #[cfg(feature = "tls")]
            "--tls" => {
                use ims::net::tls::{ClientAuth, Identity, TlsConfig, Trust};
                let mut next = || args.next().ok_or("--tls needs CERT KEY CA");
                let (cert, key, ca) = (next()?, next()?, next()?);
                let id = Identity::from_pem_files(cert, key)?;
                cfg.tls = Some(TlsConfig::new(
                    Some(id),
                    Trust::ca_pem_file(ca)?,
                    ClientAuth::None,
                )?);
            }
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    let (ep, mut incoming) = Endpoint::bind(cfg).await?;
    eprintln!(
        "UAS listening on {} ({:?}, TLS on {:?}), Contact {}",
        ep.local_addr(),
        ep.transports(),
        ep.tls_addr(),
        ep.contact()
    );

    // INVITEs waiting for their PRACK, by (Call-ID, caller's tag)
    let mut waiting: HashMap<(String, String), TxnId> = HashMap::new();
    while let Some(ev) = incoming.recv().await {
        match ev {
            UaEvent::IncomingInvite { txn, msg, remote } => {
                let m = msg.as_message();
                let call_id = m
                    .call_id()?
                    .map(|c| c.as_str().to_owned())
                    .unwrap_or_default();
                eprintln!("INVITE {call_id} from {remote:?}");
                if prack {
                    let tag = m
                        .from()?
                        .and_then(|f| f.tag())
                        .unwrap_or_default()
                        .to_owned();
                    waiting.insert((call_id, tag), txn);
                    ep.respond(txn, Answer::new(183).reliable()).await?;
                } else {
                    ep.respond(txn, Answer::new(180)).await?;
                    ep.respond(txn, Answer::new(200).body("application/sdp", SDP))
                        .await?;
                }
            }
            UaEvent::PrackReceived { dialog, rseq } => {
                eprintln!("PRACK for RSeq {rseq} in {dialog}");
                if let Some(txn) =
                    waiting.remove(&(dialog.call_id.clone(), dialog.remote_tag.clone()))
                {
                    ep.respond(txn, Answer::new(200).body("application/sdp", SDP))
                        .await?;
                }
            }
            UaEvent::IncomingRequest { txn, msg, .. } => {
                eprintln!("{}", msg.as_message().start_line_str());
                ep.respond(txn, Answer::new(200)).await?;
            }
            UaEvent::DialogConfirmed(d) => eprintln!("confirmed {d}"),
            UaEvent::DialogTerminated { dialog, reason } => {
                eprintln!("ended {dialog}: {reason:?}");
            }
            UaEvent::Cancelled { invite } => eprintln!("cancelled {invite}"),
            _ => {}
        }
    }
    Ok(())
}
