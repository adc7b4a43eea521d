//! Typed header values (RFC 3261 §20 and the IMS extension RFCs).
//!
//! Each type is a zero-copy view over one header value (one element of a comma-separated list for
//! list headers). Get them from a message with [`crate::Message::get`] / [`crate::Message::get_all`],
//! or parse a value directly with [`TypedHeader::parse`]. `Display` writes the value back.

use crate::error::ParseError;
use crate::HeaderName;

mod auth;
mod core;
mod misc;
mod name_addr;
mod via;

pub use self::auth::{
    AuthParams, AuthenticationInfo, Authorization, Challenge, Credentials, ProxyAuthenticate,
    ProxyAuthorization, WwwAuthenticate,
};
pub use self::core::{
    CSeq, CallId, ContentLength, Date, Expires, InReplyTo, MaxForwards, MinExpires, MinSe,
    Priority, RAck, RSeq, RetryAfter, Server, SessionExpires, Subject, Timestamp, UserAgent,
};
pub use self::misc::{
    Accept, AcceptContact, Allow, AllowEvents, ContentDisposition, ContentEncoding, ContentType,
    Event, MediaType, PAccessNetworkInfo, PChargingFunctionAddresses, PChargingVector,
    PVisitedNetworkId, Privacy, ProxyRequire, Reason, RejectContact, Replaces, RequestDisposition,
    Require, SecurityClient, SecurityMechanism, SecurityServer, SecurityVerify, SubscriptionState,
    Supported, Unsupported, Warning,
};
pub use self::name_addr::{
    Contact, From, NameAddr, NameAddrHeader, PAssertedIdentity, PAssociatedUri, PCalledPartyId,
    PPreferredIdentity, PServedUser, Path, RecordRoute, ReferTo, ReferredBy, ReplyTo, Route,
    ServiceRoute, To,
};
pub(crate) use self::via::ViaSpans;
pub use self::via::{Via, ViaHead, MAGIC_COOKIE};

/// A header value type with a known name.
pub trait TypedHeader<'a>: Sized {
    /// The header this type reads.
    const NAME: HeaderName;
    /// Whether the header is a comma-separated list (RFC 3261 §7.3.1), so one line may carry several
    /// values.
    const LIST: bool = false;
    /// Parses one value (one list element for list headers). Offsets in errors are relative to `value`.
    fn parse(value: &'a str) -> Result<Self, ParseError>;
}

/// Runs a value parser that must consume everything (trailing LWS allowed).
pub(crate) fn whole<'a, T>(
    s: &'a str,
    f: impl FnOnce(&mut crate::scan::Cursor<'a>) -> Result<T, ParseError>,
) -> Result<T, ParseError> {
    let mut c = crate::scan::Cursor::new(s);
    c.skip_lws();
    let v = f(&mut c)?;
    c.skip_lws();
    if !c.at_end() {
        return Err(c.err("end of value"));
    }
    Ok(v)
}
