//! # ims-rs
//!
//! An embeddable SIP/IMS protocol library: the pieces an IMS core (P-/I-/S-CSCF, application
//! servers, SMS gateways) is built from, each sans-IO, zero-copy and strict on bad input.
//!
//! | module | crate | what |
//! |---|---|---|
//! | [`sip`] | `ims-sip` | SIP messages: parse, typed headers, URIs, multipart, splice edits, framing |
//! | [`sdp`] | `ims-sdp` | SDP: parse, typed attributes, preconditions, MSRP attributes, offer/answer |
//! | [`auth`] | `ims-auth` | HTTP Digest and IMS-AKA (Milenage) |
//! | [`sms`] | `ims-sms` | SMS over IP: RP, TPDUs, alphabets, concatenation |
//! | [`msrp`] | `ims-msrp` | MSRP: framer, URIs, chunking, reports, relays |
//! | [`diameter`] | `ims-diameter` | Diameter base, Cx/Dx, Rx, peer state machine |
//! | [`txn`] | `ims-txn` | SIP transactions, dialogs, proxy core |
//! | [`net`] | `ims-net` | tokio transports: SIP endpoint, Diameter node, MSRP connections |
//! | [`nf`] | `ims-nf` | network functions: subscription profiles, iFC, registrar, ENUM, reg event |
//!
//! ```
//! let raw = b"MESSAGE sip:+447700900123@ims.example.com SIP/2.0\r\n\
//! Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK-1\r\nMax-Forwards: 70\r\n\
//! From: <sip:alice@ims.example.com>;tag=a1\r\nTo: <sip:+447700900123@ims.example.com>\r\n\
//! Call-ID: c1@192.0.2.1\r\nCSeq: 1 MESSAGE\r\nContent-Type: application/vnd.3gpp.sms\r\n\
//! Content-Length: 2\r\n\r\n\x00\x01";
//! let msg = ims::sip::parse_datagram(raw)?;
//! assert_eq!(msg.body(), &[0, 1]);
//! # Ok::<(), ims::sip::ParseError>(())
//! ```

#![forbid(unsafe_code)]

pub use ims_auth as auth;
pub use ims_diameter as diameter;
pub use ims_msrp as msrp;
pub use ims_net as net;
pub use ims_nf as nf;
pub use ims_sdp as sdp;
pub use ims_sip as sip;
pub use ims_sms as sms;
pub use ims_txn as txn;

#[doc(hidden)]
pub mod fuzzing;
