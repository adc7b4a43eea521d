//! SIP methods (RFC 3261 §7.1 and the extension RFCs). Methods are case-sensitive.

use std::fmt;

/// A request method. Unknown methods keep their token in [`Method::Other`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Method<'a> {
    /// INVITE (RFC 3261).
    Invite,
    /// ACK (RFC 3261).
    Ack,
    /// BYE (RFC 3261).
    Bye,
    /// CANCEL (RFC 3261).
    Cancel,
    /// REGISTER (RFC 3261).
    Register,
    /// OPTIONS (RFC 3261).
    Options,
    /// PRACK (RFC 3262).
    Prack,
    /// SUBSCRIBE (RFC 6665).
    Subscribe,
    /// NOTIFY (RFC 6665).
    Notify,
    /// PUBLISH (RFC 3903).
    Publish,
    /// INFO (RFC 6086).
    Info,
    /// REFER (RFC 3515).
    Refer,
    /// MESSAGE (RFC 3428).
    Message,
    /// UPDATE (RFC 3311).
    Update,
    /// An extension method, as written.
    Other(&'a str),
}

impl<'a> Method<'a> {
    /// Maps a method token (case-sensitive, RFC 3261 §7.1).
    pub fn from_token(s: &'a str) -> Method<'a> {
        match s {
            "INVITE" => Method::Invite,
            "ACK" => Method::Ack,
            "BYE" => Method::Bye,
            "CANCEL" => Method::Cancel,
            "REGISTER" => Method::Register,
            "OPTIONS" => Method::Options,
            "PRACK" => Method::Prack,
            "SUBSCRIBE" => Method::Subscribe,
            "NOTIFY" => Method::Notify,
            "PUBLISH" => Method::Publish,
            "INFO" => Method::Info,
            "REFER" => Method::Refer,
            "MESSAGE" => Method::Message,
            "UPDATE" => Method::Update,
            other => Method::Other(other),
        }
    }
    /// The method token.
    pub fn as_str(&self) -> &'a str {
        match *self {
            Method::Invite => "INVITE",
            Method::Ack => "ACK",
            Method::Bye => "BYE",
            Method::Cancel => "CANCEL",
            Method::Register => "REGISTER",
            Method::Options => "OPTIONS",
            Method::Prack => "PRACK",
            Method::Subscribe => "SUBSCRIBE",
            Method::Notify => "NOTIFY",
            Method::Publish => "PUBLISH",
            Method::Info => "INFO",
            Method::Refer => "REFER",
            Method::Message => "MESSAGE",
            Method::Update => "UPDATE",
            Method::Other(s) => s,
        }
    }
    /// True for methods this crate knows by name.
    pub fn is_known(&self) -> bool {
        !matches!(self, Method::Other(_))
    }
    /// A known method without its lifetime; an extension method's token otherwise.
    pub(crate) fn known(self) -> Result<Method<'static>, &'a str> {
        Ok(match self {
            Method::Invite => Method::Invite,
            Method::Ack => Method::Ack,
            Method::Bye => Method::Bye,
            Method::Cancel => Method::Cancel,
            Method::Register => Method::Register,
            Method::Options => Method::Options,
            Method::Prack => Method::Prack,
            Method::Subscribe => Method::Subscribe,
            Method::Notify => Method::Notify,
            Method::Publish => Method::Publish,
            Method::Info => Method::Info,
            Method::Refer => Method::Refer,
            Method::Message => Method::Message,
            Method::Update => Method::Update,
            Method::Other(s) => return Err(s),
        })
    }
}

impl fmt::Display for Method<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The default reason phrase for a status code (RFC 3261 §21 and extensions).
pub fn reason_phrase(code: u16) -> &'static str {
    match code {
        100 => "Trying",
        180 => "Ringing",
        181 => "Call Is Being Forwarded",
        182 => "Queued",
        183 => "Session Progress",
        199 => "Early Dialog Terminated",
        200 => "OK",
        202 => "Accepted",
        204 => "No Notification",
        300 => "Multiple Choices",
        301 => "Moved Permanently",
        302 => "Moved Temporarily",
        305 => "Use Proxy",
        380 => "Alternative Service",
        400 => "Bad Request",
        401 => "Unauthorized",
        402 => "Payment Required",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        407 => "Proxy Authentication Required",
        408 => "Request Timeout",
        410 => "Gone",
        412 => "Conditional Request Failed",
        413 => "Request Entity Too Large",
        414 => "Request-URI Too Long",
        415 => "Unsupported Media Type",
        416 => "Unsupported URI Scheme",
        417 => "Unknown Resource-Priority",
        420 => "Bad Extension",
        421 => "Extension Required",
        422 => "Session Interval Too Small",
        423 => "Interval Too Brief",
        429 => "Provide Referrer Identity",
        433 => "Anonymity Disallowed",
        439 => "First Hop Lacks Outbound Support",
        440 => "Max-Breadth Exceeded",
        469 => "Bad Info Package",
        470 => "Consent Needed",
        480 => "Temporarily Unavailable",
        481 => "Call/Transaction Does Not Exist",
        482 => "Loop Detected",
        483 => "Too Many Hops",
        484 => "Address Incomplete",
        485 => "Ambiguous",
        486 => "Busy Here",
        487 => "Request Terminated",
        488 => "Not Acceptable Here",
        489 => "Bad Event",
        491 => "Request Pending",
        493 => "Undecipherable",
        494 => "Security Agreement Required",
        500 => "Server Internal Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Server Time-out",
        505 => "Version Not Supported",
        513 => "Message Too Large",
        580 => "Precondition Failure",
        600 => "Busy Everywhere",
        603 => "Decline",
        604 => "Does Not Exist Anywhere",
        606 => "Not Acceptable",
        607 => "Unwanted",
        _ => "",
    }
}
