//! SIP transactions (RFC 3261 §17, RFC 6026), dialogs and UA core (RFC 3261 §12–15) and proxy core
//! (RFC 3261 §16), sans-IO.
//!
//! Nothing here reads a clock or touches a socket: time comes in as `now: Instant`, messages come
//! in as [`ims_sip::OwnedMessage`] with the [`Remote`] they came from, and bytes to send come out
//! of [`TransactionLayer::poll_output`].
//!
//! ```
//! use ims_txn::{Config, Event, Input, Output, Remote, State, TransactionLayer};
//! use std::time::{Duration, Instant};
//!
//! let raw = b"OPTIONS sip:bob@biloxi.example.com SIP/2.0\r\n\
//! Via: SIP/2.0/UDP pc33.atlanta.example.com:5060;branch=z9hG4bK776asdhds\r\n\
//! Max-Forwards: 70\r\nTo: Bob <sip:bob@biloxi.example.com>\r\n\
//! From: Alice <sip:alice@atlanta.example.com>;tag=1928301774\r\n\
//! Call-ID: a84b4c76e66710@pc33.atlanta.example.com\r\nCSeq: 63104 OPTIONS\r\n\
//! Content-Length: 0\r\n\r\n";
//! let req = ims_sip::OwnedMessage::parse_datagram(bytes::Bytes::from_static(raw))?;
//! let peer = Remote::udp("192.0.2.4:5060".parse().unwrap());
//!
//! let t0 = Instant::now();
//! let mut layer = TransactionLayer::new(Config::default());
//! let txn = layer.send_request(t0, req, peer)?;
//! assert!(matches!(layer.poll_output(), Some(Output::Transmit(_))));
//! // Timer E: the first retransmission over UDP comes T1 = 500 ms later
//! assert_eq!(layer.poll_timeout(), Some(t0 + Duration::from_millis(500)));
//! layer.handle_timeout(t0 + Duration::from_millis(500));
//! assert!(matches!(layer.poll_output(), Some(Output::Transmit(_))));
//!
//! // the 200 OK completes the transaction; Timer K (T4 = 5 s) absorbs retransmissions
//! let ok = ims_sip::ResponseBuilder::from_request(&layer.request(txn).unwrap().as_message(), 200).build()?;
//! layer.handle_input(t0 + Duration::from_millis(700), Input::Received { msg: ok, remote: peer })?;
//! assert!(matches!(layer.poll_output(), Some(Output::Event(Event::Response { .. }))));
//! assert_eq!(layer.state(txn), Some(State::Completed));
//! layer.handle_timeout(t0 + Duration::from_millis(5700));
//! assert!(matches!(layer.poll_output(), Some(Output::Event(Event::Terminated { .. }))));
//! assert!(layer.is_empty());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Shape
//! - [`TransactionLayer`]: the four state machines of RFC 3261 §17 with the RFC 6026 Accepted
//!   states, matching (§17.1.3, §17.2.3 with the RFC 2543 fallback), CANCEL matched to its INVITE,
//!   merged-request detection (§8.2.2.2), every timer of Table 4 plus L and M.
//! - [`dialog`]: dialog state (§12): creation, route sets, CSeq rules, loose/strict routing.
//! - [`ua`]: the UA core (§13–15, RFC 3262, 3311, 4028) over a transaction layer: calls, forking,
//!   2xx/ACK retransmission, CANCEL, BYE, re-INVITE/UPDATE glare, PRACK, session timers.
//! - [`proxy`]: the proxy core (§16): validation, loops, Route/Record-Route, forking with a
//!   response context, CANCEL, Timer C, stateless helpers.
//!
//! All three user-facing cores ([`TransactionLayer`], [`ua::UserAgent`], [`proxy::Proxy`]) share
//! the shape `handle_input(now, …)` / `poll_output()` / `poll_timeout()` / `handle_timeout(now)`.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod dialog;
mod error;
mod hash;
mod key;
mod layer;
pub mod proxy;
mod sparse;
mod timer;
mod transaction;
pub mod ua;

pub use error::TxnError;
pub use key::{Remote, Side, Transport, TxnKey};
pub use layer::{Config, Event, Input, LosslessPeers, Output, TransactionLayer, Transmit, TxnId};
pub use timer::{Timer, TimerConfig};
pub use transaction::{Kind, State};
