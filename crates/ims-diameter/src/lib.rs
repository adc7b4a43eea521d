//! Diameter base (RFC 6733), dictionary, Cx/Dx (TS 29.229), Rx (TS 29.214) and SGd (TS 29.338)
//! commands, peer state machine and watchdog (RFC 3539).
//!
//! This crate does no I/O and reads no clock: it turns octets into views and typed commands, and
//! typed commands into octets.
//!
//! ```
//! use ims_diameter::{cx::{Maa, Mar}, dict, Command, Message, Outcome};
//! use std::borrow::Cow;
//!
//! // a Multimedia-Auth-Request from the S-CSCF, as a plain struct
//! let mar = Mar {
//!     session_id: "scscf.ims.mnc001.mcc001.3gppnetwork.org;1700000000;7".into(),
//!     vendor_specific_application_id: ims_diameter::base::VendorSpecificApplicationId::cx(),
//!     auth_session_state: ims_diameter::base::AuthSessionState::NoStateMaintained,
//!     origin_host: "scscf.ims.mnc001.mcc001.3gppnetwork.org".into(),
//!     origin_realm: "ims.mnc001.mcc001.3gppnetwork.org".into(),
//!     destination_realm: "ims.mnc001.mcc001.3gppnetwork.org".into(),
//!     user_name: "alice@ims.mnc001.mcc001.3gppnetwork.org".into(),
//!     public_identity: "sip:alice@ims.mnc001.mcc001.3gppnetwork.org".into(),
//!     sip_number_auth_items: 1,
//!     sip_auth_data_item: ims_diameter::cx::SipAuthDataItem {
//!         sip_authentication_scheme: Some("Digest-AKAv1-MD5".into()),
//!         ..Default::default()
//!     },
//!     server_name: "sip:scscf.ims.mnc001.mcc001.3gppnetwork.org:6060".into(),
//!     ..Default::default()
//! };
//! let wire = mar.encode(0x0000_0201, 0x6d30_0201);
//!
//! // the HSS side: a zero-copy view, then the typed request borrowing from it
//! let msg = Message::parse(&wire)?;
//! assert_eq!(msg.code(), 303);
//! assert_eq!(msg.find(dict::PUBLIC_IDENTITY).unwrap().utf8()?, "sip:alice@ims.mnc001.mcc001.3gppnetwork.org");
//! let req = Mar::decode(&msg)?;
//! assert!(matches!(req.user_name, Cow::Borrowed(_)));
//!
//! // its answer copies the identifiers and the Session-Id
//! let mut maa = Maa {
//!     session_id: req.session_id.clone(),
//!     vendor_specific_application_id: req.vendor_specific_application_id.clone(),
//!     auth_session_state: req.auth_session_state,
//!     origin_host: "hss.ims.mnc001.mcc001.3gppnetwork.org".into(),
//!     origin_realm: "ims.mnc001.mcc001.3gppnetwork.org".into(),
//!     ..Default::default()
//! };
//! maa.set_outcome(Outcome::SUCCESS);
//! let answer = maa.encode_answer(msg.header());
//! let a = Message::parse(&answer)?;
//! assert_eq!((a.hop_by_hop(), a.end_to_end(), a.is_request()), (0x201, 0x6d30_0201, false));
//! assert_eq!(a.outcome(), Some(Outcome::SUCCESS));
//! # Ok::<(), ims_diameter::Error>(())
//! ```
//!
//! # Shape
//! - [`Message::parse`] checks the header and walks the top-level AVPs once; [`Message::avps`]
//!   then iterates [`Avp`] views, and [`Avp::grouped`] opens a Grouped AVP lazily (checked on
//!   entry, depth bounded by [`Limits`]). Every RFC 6733 data type has an accessor on [`Avp`]
//!   ([`Address`], [`Time`], [`DiameterUri`], [`IpFilterRule`], ...).
//! - [`Encoder`] / [`encode_message`] append AVPs with back-filled lengths and padding.
//! - [`dict`]: the static dictionary (base, Cx/Dx, Rx, the TS 29.212 / 29.061 AVPs Rx reuses,
//!   S6c/SGd of TS 29.338).
//! - Typed commands ([`base`], [`cx`], [`rx`], [`s6c`], [`sgd`]) are plain structs with pub fields implementing
//!   [`Command`]: decoding checks the command grammar (required, fixed position, max occurrences)
//!   and values; unmodelled AVPs are kept in `other`. Repeated AVPs that usually occur once or
//!   twice are [`Repeated`] fields (a few values inline, no allocation).
//! - [`answer`]: protocol-error and permanent-failure answers with the Failed-AVP RFC 6733 asks
//!   for, and [`answer::validate`] / [`answer::reject`] for servers.
//! - [`Framer`] cuts a TCP stream into messages (and `DiameterCodec` with feature `tokio`).
//! - [`discovery`]: dynamic peer discovery (RFC 6733 §5.2, S-NAPTR `aaa+ap<id>` of RFC 6408, SRV
//!   priority and weight) over a DNS [`discovery::Resolver`] trait.
//!
//! # Panics and limits
//! No input makes a decoder panic, loop or allocate without bound: message size, AVP count per
//! level and nesting depth are capped by [`Limits`].

// `unsafe` only where a benchmark proved it pays (callgrind, `examples/perf.rs`): the ASCII text
// fast path `avp::text`, which allows it explicitly, with a SAFETY note.
#![deny(unsafe_code)]
#![deny(missing_docs)]

#[macro_use]
mod macros;

pub mod answer;
mod avp;
pub mod base;
mod command;
pub mod cx;
pub mod dict;
pub mod discovery;
mod encode;
mod error;
pub mod fasthash;
mod framer;
pub mod grammar;
mod message;
pub mod peer;
pub mod repeated;
mod result;
pub mod routing;
pub mod rx;
pub mod s6c;
pub mod sgd;
#[doc(hidden)]
pub mod testing;
mod types;

pub use answer::Origin;
pub use avp::{Avp, AvpFlags, AvpIter, RawAvp};
pub use command::Command;
pub use encode::{encode_message, write_message, AvpValue, EncodeBuf, Encoder, Writer};
pub use error::{AvpId, Error, ErrorKind};
pub use framer::{decode_frame, Framer};
#[cfg(feature = "tokio")]
pub use framer::{CodecError, DiameterCodec};
pub use message::{frame_length, Flags, Header, Limits, Message, OwnedMessage, HEADER_LEN};
pub use repeated::Repeated;
pub use result::{ExperimentalResultCode, Outcome, ResultCode};
pub use types::{
    Address, DiameterUri, FilterAction, FilterAddress, FilterDirection, FilterEndpoint,
    IpFilterRule, PortRange, Time, UriProtocol, UriTransport,
};
