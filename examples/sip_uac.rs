//! A SIP user agent client on the ims-net [`Endpoint`]: places calls (INVITE with an SDP offer,
//! waits for the 200 — the UA core ACKs it and PRACKs reliable provisional responses — holds the
//! call briefly, then BYE) to a target and reports how many completed. The target is located
//! with RFC 3263 ([`Endpoint::locate`]): an IP literal with a port here, or a name in the
//! endpoint's DNS table.
//!
//! ```text
//! cargo run --example sip_uac -- sip:service@127.0.0.1:5070 [--calls 10] [--tcp] [--hold-ms 100]
//! cargo run --example sip_uac --features tls -- sips:service@127.0.0.1:5071 --tls-ca CA.pem
//! sipp -sn uas -p 5070                           # SIPp answers
//! sipp -sf examples/sipp/prack_uas.xml -p 5070   # SIPp answers with a reliable 183
//! ```
//! Exits 1 unless every call completed.

use ims::net::sip::{Endpoint, EndpointConfig};
use ims::txn::dialog::DialogId;
use ims::txn::ua::InviteParams;
use ims::txn::{Remote, Transport};
use std::time::Duration;

const SDP: &str = "v=0\r\no=ims-uac 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\n\
t=0 0\r\nm=audio 49170 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n";

async fn call(ep: &Endpoint, uri: &str, to: Remote, hold: Duration) -> Result<(), String> {
    let mut invite = ep
        .invite(InviteParams {
            request_uri: uri.to_owned(),
            from: "\"ims-rs\" <sip:uac@ims.example>".into(),
            to: format!("<{uri}>"),
            remote: to,
            headers: vec![],
            body: Some(("application/sdp".into(), SDP.into())),
        })
        .await
        .map_err(|e| e.to_string())?;
    let ok = loop {
        let r = invite
            .next()
            .await
            .ok_or("INVITE: no final response")?
            .map_err(|e| format!("INVITE: {e}"))?;
        let code = r.as_message().status().unwrap_or(0);
        eprintln!("  {}", r.as_message().start_line_str());
        if (200..300).contains(&code) {
            break r;
        }
        if code >= 300 {
            return Err(format!("INVITE answered {code}"));
        }
    };
    let dialog = DialogId::of_received_response(&ok.as_message()).ok_or("2xx without tags")?;
    tokio::time::sleep(hold).await;
    let bye = ep.bye(&dialog).await.map_err(|e| e.to_string())?;
    let r = bye
        .final_response()
        .await
        .map_err(|e| format!("BYE: {e}"))?;
    match r.as_message().status() {
        Some(200) => Ok(()),
        other => Err(format!("BYE answered {other:?}")),
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut uri = None;
    let mut calls = 1usize;
    let mut tcp = false;
    let mut hold = Duration::from_millis(100);
    #[cfg_attr(not(feature = "tls"), allow(unused_mut))]
    let mut cfg = EndpointConfig {
        user: "uac".into(),
        ..EndpointConfig::default()
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--calls" => calls = args.next().ok_or("--calls needs a value")?.parse()?,
            "--tcp" => tcp = true,
            #[cfg(feature = "tls")]
            "--tls-ca" => {
                use ims::net::tls::{ClientAuth, TlsConfig, Trust};
                let ca = args.next().ok_or("--tls-ca needs a value")?;
                cfg.tls = Some(TlsConfig::new(
                    None,
                    Trust::ca_pem_file(ca)?,
                    ClientAuth::None,
                )?);
            }
            "--hold-ms" => {
                hold = Duration::from_millis(args.next().ok_or("--hold-ms needs a value")?.parse()?)
            }
            u if uri.is_none() => uri = Some(u.to_owned()),
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    let uri = uri.unwrap_or_else(|| "sip:service@127.0.0.1:5070".into());
    let (ep, _incoming) = Endpoint::bind(cfg).await?;
    let mut to = *ep.locate(&uri).await?.first().ok_or("no target")?;
    if tcp {
        to.transport = Transport::Tcp;
    }
    eprintln!("UAC {} calling {uri} at {to:?}", ep.local_addr());
    let mut done = 0;
    for i in 0..calls {
        match call(&ep, &uri, to, hold).await {
            Ok(()) => done += 1,
            Err(e) => eprintln!("call {i}: {e}"),
        }
    }
    println!("calls completed {done}/{calls}");
    ep.shutdown();
    if done != calls {
        std::process::exit(1);
    }
    Ok(())
}
