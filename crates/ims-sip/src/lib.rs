//! SIP message syntax (RFC 3261 and the IMS extensions): zero-copy parsing, typed headers, URIs,
//! multipart bodies, splicing edits, builders, validation and stream framing.
//!
//! This crate does no I/O and reads no clock: it turns bytes into views and views into bytes.
//!
//! ```
//! use ims_sip::{headers::Contact, HeaderName, Method};
//!
//! let raw = b"REGISTER sip:ims.mnc001.mcc001.3gppnetwork.org SIP/2.0\r\n\
//! Via: SIP/2.0/UDP 10.20.30.40:5060;branch=z9hG4bK-524287-1;rport\r\n\
//! Max-Forwards: 70\r\n\
//! From: <sip:001010123456789@ims.mnc001.mcc001.3gppnetwork.org>;tag=4fa3e1c2\r\n\
//! To: <sip:001010123456789@ims.mnc001.mcc001.3gppnetwork.org>\r\n\
//! Call-ID: 1bd4a2c9f08e7d63@10.20.30.40\r\n\
//! CSeq: 1 REGISTER\r\n\
//! Contact: <sip:001010123456789@10.20.30.40:5060>;+sip.instance=\"<urn:gsma:imei:35209900-176148-0>\";expires=600000\r\n\
//! Supported: path, gruu, sec-agree\r\n\
//! Content-Length: 0\r\n\r\n";
//!
//! let msg = ims_sip::parse_datagram(raw)?;
//! assert_eq!(msg.method(), Some(Method::Register));
//! assert_eq!(msg.top_via()?.unwrap().branch(), Some("z9hG4bK-524287-1"));
//! assert_eq!(msg.from()?.unwrap().tag(), Some("4fa3e1c2"));
//! assert_eq!(msg.cseq()?.unwrap().seq, 1);
//! let contact = msg.contacts().next().unwrap()?;
//! assert_eq!(contact.expires(), Some(600000));
//! assert_eq!(msg.list(HeaderName::Supported).map(|(_, t)| t).collect::<Vec<_>>(), ["path", "gruu", "sec-agree"]);
//! assert!(ims_sip::validate(&msg, &ims_sip::ValidationConfig::default()).is_ok());
//!
//! // a proxy forwards it by splicing: untouched lines are copied byte for byte
//! let mut fwd = msg.edit();
//! fwd.push_via("SIP/2.0/UDP 10.10.0.10:5060;branch=z9hG4bK-pcscf-1");
//! fwd.decrement_max_forwards()?;
//! let out = fwd.to_vec();
//! assert_eq!(ims_sip::parse_datagram(&out)?.max_forwards()?, Some(69));
//! # Ok::<(), ims_sip::ParseError>(())
//! ```
//!
//! # Shape
//! - [`parse`] (stream: Content-Length required, `Status::Partial` for more bytes) and
//!   [`parse_datagram`] (UDP rules of RFC 3261 §18.3) return a [`Message`] that borrows the input.
//!   [`OwnedMessage`] holds a `bytes::Bytes` instead.
//! - Header values are found in one pass; typed views ([`headers`]) parse on access.
//! - [`Edit`] changes a message by splicing; [`RequestBuilder`] / [`ResponseBuilder`] make new ones.
//! - [`validate()`] applies the RFC 3261 §8.2 / §16.3 checks and names the status to answer.
//! - [`Framer`] cuts a byte stream into messages and keep-alives (RFC 5626).
//! - [`multipart`] iterates and builds `multipart/*` bodies (RFC 2046, RFC 5621).
//!
//! # Panics and limits
//! No input makes a parser panic, loop or allocate without bound: sizes and counts are capped by
//! [`Limits`].

// `unsafe` only where a benchmark proved it pays (`benches/sip_icount.rs`): the SIMD line-end search
// and ASCII checks in `message.rs`, each function allowing it explicitly, each block with a SAFETY
// note.
#![deny(unsafe_code)]
#![deny(missing_docs)]

mod builder;
mod decimal;
mod edit;
mod error;
mod framer;
pub mod headers;
mod message;
mod method;
pub mod multipart;
mod name;
mod params;
mod scan;
mod uri;
mod validate;

#[cfg(feature = "tokio")]
mod codec;
#[cfg(feature = "rsip")]
pub mod rsip_compat;

pub use builder::{RequestBuilder, ResponseBuilder};
pub use decimal::{decimal, push_decimal};
pub use edit::Edit;
pub use error::{ErrorKind, ParseError};
pub use framer::{Frame, Framer};
pub use message::{
    parse, parse_datagram, Header, Limits, Message, OwnedMessage, ParserConfig, StartLine, Status,
    Version,
};
pub use method::{reason_phrase, Method};
pub use name::HeaderName;
pub use params::{Param, ParamIter, Params};
pub use scan::unquote;
pub use uri::{pct_decode, AbsoluteUri, Host, SipUri, TelUri, Uri};
pub use validate::{
    validate, validate_policy, validate_policy_uri, validate_uri, Rejection, Role, ValidationConfig,
};

#[cfg(feature = "tokio")]
pub use codec::SipCodec;
