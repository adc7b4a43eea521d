//! # ims-rs
//!
//! An embeddable SIP/IMS protocol library: the pieces an IMS core (P-/I-/S-CSCF, application
//! servers, SMS gateways) is built from, each sans-IO, zero-copy and strict on bad input.
//!
//! | module | crate | what |
//! |---|---|---|
//! | [`sip`] | `ims-sip` | SIP messages: parse, typed headers, URIs, multipart, splice edits, framing |
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

pub use ims_sip as sip;

#[doc(hidden)]
pub mod fuzzing;
