//! `msrp_chat`: an MSRP client on ims-net — a SIP UA that sets up `m=message … TCP/MSRP`
//! sessions (RFC 4975), large-mode messages (TS 24.247 §5.2), session-mode chat (§5.3) and
//! RFC 5547 file transfer, through the IM server's session anchor or directly to a peer.
//! Prints one JSON line per event on stdout.
//!
//! ```text
//! msrp_chat [--sip ADDR] [--msrp ADDR] [--msrp-host NAME] [--user NAME] [--proxy ADDR]
//!           [--to SIP-URI] [--chunk-size N] [--timeout SECS] [--tls CERT.pem KEY.pem]
//!           [--relay MSRP-URI --relay-user NAME --relay-password PW] MODE
//!   --msrp-host                the host our MSRP URIs name in a=path (default 127.0.0.1;
//!                              a name such as localhost is resolved by the peer)
//!   --tls                      msrps (TCP/TLS/MSRP, RFC 4975 §14; feature `tls`) with this
//!                              certificate, announced by its SDP a=fingerprint
//!   --relay                    MSRP through this RFC 4976 relay (msrp://IP:PORT;tcp): each
//!                              session AUTHs to it with the digest user and password, puts
//!                              its Use-Path in a=path and runs over that one connection
//!   send-large FILE            one message with FILE's bytes (INVITE, SEND, report, BYE)
//!   chat [--count N] [--expect N]   N generated messages (default: lines of stdin),
//!                              wait for N messages from the peer
//!   send-file FILE             RFC 5547 push of FILE
//!   listen [--out DIR] [--echo] [--busy CODE] [--sessions N] [--bye-after N]
//!
//! # Bob listens, Alice sends a 1 MB file through the IM server (SIP 7072) to him:
//! cargo run --example msrp_chat -- --sip 127.0.0.1:7201 --user bob listen --out /tmp
//! cargo run --example msrp_chat -- --proxy 127.0.0.1:7072 --to sip:bob@127.0.0.1:7201 send-file f.bin
//! ```

mod client;

use bytes::Bytes;
use client::{ListenOpts, Opts, RelayOpts, Ua};
use std::io::BufRead;
use std::path::PathBuf;
use std::time::Duration;

fn usage() -> ! {
    eprintln!(
        "usage: msrp_chat [--sip ADDR] [--msrp ADDR] [--msrp-host NAME] [--user NAME] [--proxy ADDR] [--to URI] \
         [--chunk-size N] [--timeout SECS] [--relay MSRP-URI --relay-user NAME \
         --relay-password PW] send-large FILE | chat [--count N] [--expect N] | \
         send-file FILE | listen [--out DIR] [--echo] [--busy CODE] [--sessions N] [--bye-after N]"
    );
    std::process::exit(2)
}

fn value<T: std::str::FromStr>(a: Option<String>, what: &str) -> T {
    match a.and_then(|v| v.parse().ok()) {
        Some(v) => v,
        None => {
            eprintln!("{what} needs a valid value");
            usage()
        }
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let mut opts = Opts::default();
    let mut to: Option<String> = None;
    let mut mode: Option<String> = None;
    let mut file: Option<PathBuf> = None;
    let mut count: Option<usize> = None;
    let mut expect = 0usize;
    let mut lo = ListenOpts::default();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--sip" => opts.sip = value(args.next(), "--sip"),
            "--msrp" => opts.msrp = value(args.next(), "--msrp"),
            "--msrp-host" => opts.msrp_host = Some(value(args.next(), "--msrp-host")),
            "--user" => opts.user = value(args.next(), "--user"),
            "--proxy" => opts.proxy = Some(value(args.next(), "--proxy")),
            "--to" => to = Some(value(args.next(), "--to")),
            "--chunk-size" => opts.chunk_size = value(args.next(), "--chunk-size"),
            #[cfg(feature = "tls")]
            "--tls" => {
                // msrps with our certificate: --tls CERT.pem KEY.pem
                let (c, k): (String, String) =
                    (value(args.next(), "--tls"), value(args.next(), "--tls"));
                let id = ims::net::tls::Identity::from_pem_files(&c, &k).unwrap_or_else(|e| {
                    eprintln!("--tls: {e}");
                    std::process::exit(2)
                });
                opts.tls = Some(id);
            }
            "--relay" => {
                let uri: String = value(args.next(), "--relay");
                let r = opts.relay.get_or_insert(RelayOpts {
                    uri: String::new(),
                    user: String::new(),
                    password: String::new(),
                });
                r.uri = uri;
            }
            "--relay-user" => {
                let user: String = value(args.next(), "--relay-user");
                if let Some(r) = opts.relay.as_mut() {
                    r.user = user;
                } else {
                    eprintln!("--relay-user needs --relay first");
                    usage()
                }
            }
            "--relay-password" => {
                let pw: String = value(args.next(), "--relay-password");
                if let Some(r) = opts.relay.as_mut() {
                    r.password = pw;
                } else {
                    eprintln!("--relay-password needs --relay first");
                    usage()
                }
            }
            "--timeout" => opts.timeout = Duration::from_secs(value(args.next(), "--timeout")),
            "--count" => count = Some(value(args.next(), "--count")),
            "--expect" => expect = value(args.next(), "--expect"),
            "--out" => lo.out_dir = Some(value(args.next(), "--out")),
            "--echo" => lo.echo = true,
            "--busy" => lo.busy = Some(value(args.next(), "--busy")),
            "--sessions" => lo.sessions = Some(value(args.next(), "--sessions")),
            "--bye-after" => lo.bye_after = Some(value(args.next(), "--bye-after")),
            "-h" | "--help" => usage(),
            m if mode.is_none() => mode = Some(m.to_owned()),
            f if file.is_none() && matches!(mode.as_deref(), Some("send-large" | "send-file")) => {
                file = Some(f.into())
            }
            other => {
                eprintln!("unknown argument {other}");
                usage()
            }
        }
    }
    let mut emit = |v: serde_json::Value| println!("{v}");
    let mut ua = match Ua::bind(opts).await {
        Ok(u) => u,
        Err(e) => {
            eprintln!("bind: {e}");
            std::process::exit(1)
        }
    };
    eprintln!("msrp_chat: SIP {} ({})", ua.sip_addr(), ua.sip_uri());
    let need_to = || to.clone().unwrap_or_else(|| usage());
    let r = match mode.as_deref() {
        Some("send-large") => {
            let f = file.clone().unwrap_or_else(|| usage());
            match std::fs::read(&f) {
                Ok(b) => {
                    client::send_large(&mut ua, &need_to(), "text/plain", Bytes::from(b), &mut emit)
                        .await
                }
                Err(e) => Err(format!("{}: {e}", f.display())),
            }
        }
        Some("send-file") => {
            let f = file.clone().unwrap_or_else(|| usage());
            client::send_file(&mut ua, &need_to(), &f, &mut emit).await
        }
        Some("chat") => {
            let msgs: Vec<String> = match count {
                Some(n) => (1..=n).map(|i| format!("message {i:06}")).collect(),
                None => std::io::stdin()
                    .lock()
                    .lines()
                    .map_while(Result::ok)
                    .filter(|l| !l.is_empty())
                    .collect(),
            };
            client::chat(&mut ua, &need_to(), msgs, expect, &mut emit).await
        }
        Some("listen") => client::listen(&mut ua, &lo, &mut emit).await.map(|v| {
            println!("{v}");
            v
        }),
        _ => usage(),
    };
    ua.ep.shutdown();
    if let Err(e) = r {
        println!("{}", serde_json::json!({"event": "error", "error": e}));
        std::process::exit(1);
    }
}
