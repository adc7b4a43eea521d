//! A transaction-stateful SIP proxy on the ims-net [`ProxyEndpoint`] (RFC 3261 §16: Route and
//! Record-Route, loop detection, parallel forking with best-response selection and CANCEL of the
//! losing branches, Timer C) with a static location service.
//!
//! ```text
//! cargo run --release --example sip_proxy -- [--addr 127.0.0.2:5060] [--tcp]
//!     [--default 127.0.0.1:5070] [--user fork=127.0.0.1:5070,127.0.0.1:5072] [--no-record-route]
//! sipp -sn uas -p 5070                                        # a callee
//! sipp -sn uac 127.0.0.2:5060 -m 100 -r 50                    # calls through the proxy
//! ```
//! `--default` is where users without a `--user` entry go; `--user name=a,b` forks calls for
//! `name` to `a` and `b` in parallel. `--tcp` forwards over TCP.

use ims::net::sip::{EndpointConfig, Locations, ProxyEndpoint};
use ims::txn::{Remote, Transport};
use std::net::SocketAddr;

fn remotes(list: &str, transport: Transport) -> Result<Vec<Remote>, Box<dyn std::error::Error>> {
    list.split(',')
        .map(|a| {
            Ok(Remote {
                transport,
                addr: a.trim().parse::<SocketAddr>()?,
            })
        })
        .collect()
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut cfg = EndpointConfig {
        addr: "127.0.0.2:5060".parse()?,
        ..EndpointConfig::default()
    };
    let mut transport = Transport::Udp;
    let mut record_route = true;
    let mut default = None;
    let mut users = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--addr" => cfg.addr = args.next().ok_or("--addr needs a value")?.parse()?,
            "--tcp" => transport = Transport::Tcp,
            "--no-record-route" => record_route = false,
            "--default" => default = Some(args.next().ok_or("--default needs a value")?),
            "--user" => {
                let v = args.next().ok_or("--user needs name=addr[,addr]")?;
                let (name, list) = v.split_once('=').ok_or("--user needs name=addr[,addr]")?;
                users.push((name.to_owned(), list.to_owned()));
            }
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    let mut loc = Locations::default();
    if let Some(d) = default {
        loc.set_default(remotes(&d, transport)?);
    }
    for (name, list) in users {
        loc.add(&name, remotes(&list, transport)?);
    }
    let (proxy, events) = ProxyEndpoint::bind(cfg, record_route).await?;
    eprintln!("proxy {} listening on {}", proxy.uri(), proxy.local_addr());
    proxy.serve(events, loc).await;
    Ok(())
}
