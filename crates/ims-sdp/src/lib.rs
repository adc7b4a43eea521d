//! SDP (RFC 8866): zero-copy parse and serialize, typed attributes, preconditions (RFC 3312),
//! MSRP attributes (RFC 4975 §8, RFC 5547, RFC 6135) and offer/answer (RFC 3264).
//!
//! This crate does no I/O: it turns bytes into views and views into bytes.
//!
//! ```
//! use ims_sdp::{Attr, BandwidthType, Direction, Session};
//!
//! let offer = b"v=0\r\n\
//! o=- 2890844527 2890844527 IN IP4 10.30.0.77\r\n\
//! s=-\r\n\
//! c=IN IP4 10.30.0.77\r\n\
//! t=0 0\r\n\
//! m=audio 40018 RTP/AVP 116 111\r\n\
//! b=AS:49\r\n\
//! a=rtpmap:116 AMR-WB/16000/1\r\n\
//! a=fmtp:116 mode-change-capability=2;max-red=0\r\n\
//! a=rtpmap:111 telephone-event/16000\r\n\
//! a=fmtp:111 0-15\r\n\
//! a=curr:qos local none\r\n\
//! a=des:qos mandatory local sendrecv\r\n\
//! a=sendrecv\r\n";
//!
//! let sdp = Session::parse(offer)?;
//! assert_eq!(sdp.as_str().as_bytes(), offer); // untouched input writes back byte for byte
//! let audio = &sdp.media[0];
//! assert_eq!((audio.media, audio.port, audio.proto), ("audio", 40018, "RTP/AVP"));
//! assert_eq!(audio.formats().collect::<Vec<_>>(), ["116", "111"]);
//! assert_eq!(audio.connection().unwrap().address(), "10.30.0.77"); // from session level
//! assert_eq!(audio.direction(), Direction::SendRecv);
//! assert_eq!(audio.bandwidth(BandwidthType::As), Some(49));
//! let Attr::Rtpmap(amr) = audio.attributes[0].typed()? else { panic!() };
//! assert_eq!((amr.encoding, amr.clock_rate), ("AMR-WB", 16000));
//!
//! // hold it: an owned copy with a=sendonly and sess-version + 1
//! let mut held = sdp.to_builder();
//! ims_sdp::hold(&mut held);
//! let text = held.build();
//! let again = Session::parse_str(&text)?;
//! assert_eq!(again.media[0].direction(), Direction::SendOnly);
//! assert_eq!(again.origin.session_version, "2890844528");
//! # Ok::<(), ims_sdp::Error>(())
//! ```
//!
//! # Shape
//! - [`Session::parse`] returns a [`Session`] borrowing the input; `Display` writes back the
//!   exact input. Lines keep their order: session- and media-level attributes, unknown ones
//!   included, are [`Attribute`]s in order; [`Attribute::typed`] gives an [`Attr`].
//! - [`Media`] accessors fall back to the session level where RFC 8866 says so
//!   ([`Media::connection`], [`Media::direction`]).
//! - [`SessionBuilder`] / [`MediaBuilder`] own and edit a description and write it in RFC 8866
//!   order with CRLF.
//! - [`answer`], [`hold`], [`resume`]: RFC 3264 offer/answer; [`PreconditionState`]: RFC 3312
//!   preconditions for the 183 / UPDATE flow.
//!
//! # For the network functions
//! - P-CSCF, Rx Media-Component-Description (TS 29.214): [`Media::media_type`], [`Media::port`],
//!   [`Media::connection`] (session fallback), [`Media::direction`] (session fallback, default
//!   `sendrecv`), [`Media::bandwidth`] with [`BandwidthType::As`] / `Rs` / `Rr`,
//!   [`Media::rtpmap`] / [`Media::fmtp`] and [`Media::as_str`] (the media description as written,
//!   for Codec-Data).
//! - IM server (MSRP, RFC 4975 §8): [`Media::msrp_path`], [`Media::accept_types`],
//!   [`Media::accept_wrapped_types`], [`Media::max_size`], [`Media::setup`] (RFC 6135).
//!
//! # Panics and limits
//! No input makes the parser panic, loop or allocate without bound: sizes and counts are capped
//! by [`Limits`]. Errors carry the 1-based line number and the byte offset.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod attr;
mod builder;
mod error;
mod fmtp;
mod offer_answer;
mod precondition;
mod session;

pub use attr::{
    Attr, ConnectionMode, Crypto, Direction, FileDate, FileRange, FileSelector, Fingerprint, Fmtp,
    Group, PrecondDesired, PrecondDirection, PrecondStatus, Rtcp, Rtpmap, Setup, SpaceList,
    StatusType, Strength,
};
pub use builder::{
    AttributeBuf, BandwidthBuf, ConnectionBuf, MediaBuilder, OriginBuf, SessionBuilder, TimingBuf,
};
pub use error::{Error, ErrorKind};
pub use offer_answer::{
    answer, hold, hold_media, is_held_by_peer, is_ice_lite, reject, resume, resume_media,
    AnswerConfig, BandwidthPolicy, Codec, DtlsConfig, IceConfig, LocalMedia, SdesKey,
};
pub use precondition::{DirStatus, PreconditionState, Segment};
pub use session::{
    parse_with, Attribute, Bandwidth, BandwidthType, Connection, Limits, Media, MediaType, Origin,
    ParserConfig, Session, Timing,
};
