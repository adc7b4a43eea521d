//! MSRP (RFC 4975/4976): incremental framer, URIs, chunking, reports, sessions and relays, CPIM
//! (RFC 3862) and IMDN (RFC 5438).
//!
//! This crate does no I/O and reads no clock: bytes and the time come in as arguments, frames
//! and bytes to send come out.
//!
//! ```
//! use ims_msrp::{Event, Framer, Method, Flag};
//!
//! let wire = b"MSRP a786hjs2 SEND\r\n\
//! To-Path: msrp://bob.example.com:8888/9di4eae923wzd;tcp\r\n\
//! From-Path: msrp://alice.example.com:7777/iau39soe2843z;tcp\r\n\
//! Message-ID: 87652491\r\n\
//! Byte-Range: 1-5/5\r\n\
//! Content-Type: text/plain\r\n\
//! \r\n\
//! Hello\r\n\
//! -------a786hjs2$\r\n";
//!
//! let mut framer = Framer::default();
//! framer.push(wire);
//! let Some(Event::Frame(frame)) = framer.poll()? else { panic!("one whole frame") };
//! frame.check()?; // the RFC 4975 §7 receiver checks; Err(e).status() would be 400
//! let head = &frame.head;
//! assert_eq!(head.method(), Some(Method::Send));
//! assert_eq!(head.transaction_id(), "a786hjs2");
//! assert_eq!(head.to_path()?[0].session_id(), Some("9di4eae923wzd"));
//! assert_eq!(head.byte_range()?.unwrap().total, Some(5));
//! assert_eq!(&frame.body[..], b"Hello");
//! assert_eq!(frame.flag, Flag::End);
//! assert_eq!(frame.to_bytes(), wire);
//! # Ok::<(), ims_msrp::Error>(())
//! ```
//!
//! # Shape
//! - [`Framer`]: bytes in any split → [`Event`]s; large bodies stream as [`bytes::Bytes`] slices.
//! - [`Head`] / [`Frame`]: zero-copy views with typed headers ([`headers`]) and
//!   [`Head::check`], whose error maps to the status to answer ([`Error::status`]).
//! - [`Uri`]: MSRP URIs and the RFC 4975 §6.1 comparison.
//! - [`FrameBuilder`]: requests, responses and REPORTs.
//! - [`session::Session`]: chunking, interruption, transaction timeouts, reassembly, reports.
//! - [`relay`]: RFC 4976 AUTH (client and relay) and the relay forwarding core.
//! - [`cpim`] and [`imdn`]: the `message/cpim` wrapper and disposition notifications.
//!
//! # Panics and limits
//! No input makes a parser panic, loop or allocate without bound: sizes are capped by
//! [`Limits`].

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod cpim;
mod encode;
mod error;
mod framer;
pub mod headers;
pub mod imdn;
mod message;
pub mod relay;
pub mod session;
mod uri;

pub use encode::{body_contains_end_line, end_line, FrameBuilder};
pub use error::{Error, ErrorKind};
pub use framer::{parse_frame, Event, Framer, Limits};
pub use message::{is_ident, status_comment, Flag, Frame, Head, Method};
pub use uri::{parse_path, path_to_string, Host, Path, PathBuf, Uri, UriBuf};
