//! The SIP endpoint on tokio: UDP, TCP and TLS transports under the sans-IO transaction and dialog
//! layer of [`ims_txn`].
//!
//! One task per [`Endpoint`] owns the [`ims_txn::ua::UserAgent`] (and through it the
//! [`ims_txn::TransactionLayer`]) and is driven by socket reads, a timer
//! (`tokio::time::sleep_until` on `poll_timeout`) and a command channel; the core below never
//! reads a clock. Transports:
//! - UDP, with RFC 3581 `received`/`rport` on received requests and responses sent back to the
//!   source address and port;
//! - TCP, one connection per flow reused in both directions, RFC 3261 §18.3 framing with the
//!   RFC 5626 CRLF keep-alive (pings answered, optional pings on idle flows);
//! - TLS (feature `tls`, RFC 3261 §26.2, `sips:`/`transport=tls`): flows reused like TCP ones,
//!   see [`EndpointConfig`]'s `tls` field and the `ims_net::tls` module; a connection opened
//!   for a request whose next-hop URI (top Route, else Request-URI) has a domain checks the
//!   server certificate against that domain (RFC 5922 §4.1), else against the configured
//!   server name or the address; on an endpoint that listens for TLS on its own port, requests
//!   sent over TLS carry that port in their Via;
//! - the RFC 3261 §18.1.1 switch from UDP to TCP for requests over the MTU limit (1300 bytes);
//! - an unparsable request datagram is answered 400 with a Warning naming the parse error when
//!   its Via, From, To, Call-ID and CSeq are readable, else dropped; both are counted
//!   ([`Endpoint::malformed`]); on TCP/TLS the same 400 goes back on the connection when the
//!   message's Content-Length was readable, so framing resynchronises (RFC 3261 §18.3), and the
//!   connection is closed only when framing is lost ([`Endpoint::transport_stats`]);
//! - idle TCP/TLS connections (no bytes received, keep-alives included, no message sent, no live
//!   transaction) are closed after [`EndpointConfig::idle_timeout`];
//! - [`resolve`]: RFC 3263 NAPTR/SRV/A server location over a [`resolve::Dns`] trait;
//! - [`ProxyEndpoint`]: a transaction-stateful proxy, or a stateless one (RFC 3261 §16.11).
//!
//! A call between two endpoints on loopback:
//!
//! ```
//! use ims_net::sip::{Endpoint, EndpointConfig};
//! use ims_txn::ua::{Answer, InviteParams, UaEvent};
//! use ims_txn::Remote;
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let (uas, mut incoming) = Endpoint::bind(EndpointConfig::default()).await?;
//! let (uac, _events) = Endpoint::bind(EndpointConfig::default()).await?;
//! let bob = uas.clone();
//! tokio::spawn(async move {
//!     while let Some(ev) = incoming.recv().await {
//!         if let UaEvent::IncomingInvite { txn, .. } = ev {
//!             bob.respond(txn, Answer::new(180)).await.unwrap();
//!             bob.respond(txn, Answer::new(200).body("application/sdp", "v=0\r\n")).await.unwrap();
//!         }
//!     }
//! });
//! let mut call = uac.invite(InviteParams {
//!     request_uri: format!("sip:bob@{}", uas.local_addr()),
//!     from: "<sip:alice@example.com>".into(),
//!     to: "<sip:bob@example.com>".into(),
//!     remote: Remote::udp(uas.local_addr()),
//!     headers: vec![],
//!     body: None,
//! }).await?;
//! let mut codes = vec![];
//! while let Some(r) = call.next().await {
//!     codes.push(r?.status().unwrap());
//! }
//! assert_eq!(codes.last(), Some(&200)); // 180 may come first, then the 200 (the core ACKs it)
//! # Ok::<(), ims_net::sip::NetError>(()) }).unwrap();
//! ```

mod driver;
mod endpoint;
mod error;
mod local;
pub mod proxy;
pub mod resolve;
mod transport;
mod udp;

pub use driver::TransportStats;
pub use endpoint::{ClientPort, ClientTransaction, Endpoint, EndpointConfig, Incoming};
pub use error::NetError;
pub use local::LocalLinks;
pub use proxy::{Locations, ProxyEndpoint, ProxyEvents};
