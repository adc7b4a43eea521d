//! Header field names: the registry of known names, their compact forms (RFC 3261 §7.3.3 and the
//! IANA SIP header registry), and case-insensitive lookup.

use core::fmt;

macro_rules! header_names {
    ($( $(#[$doc:meta])* $var:ident = $name:literal $(, $compact:literal)? ;)*) => {
        /// A header field name.
        ///
        /// Known names are variants; anything else is [`HeaderName::Other`] and keeps its wire spelling
        /// in the message (see [`crate::Header::raw_name`]). Compact forms (`v`, `m`, `i`, ...) map to the
        /// same variant as their long form.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[non_exhaustive]
        pub enum HeaderName {
            $( $(#[$doc])* $var, )*
            /// An extension or unknown header; its name is kept verbatim on the [`crate::Header`].
            Other,
        }

        impl HeaderName {
            /// The canonical (long) name, e.g. `Call-ID` for `i`. `Other` has none.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $( HeaderName::$var => $name, )*
                    HeaderName::Other => "",
                }
            }

            /// The compact form (RFC 3261 §7.3.3), if the header has one.
            pub const fn compact(self) -> Option<char> {
                match self {
                    $( $( HeaderName::$var => Some($compact), )? )*
                    _ => None,
                }
            }

            /// Looks up a name case-insensitively, accepting long and compact forms.
            /// Returns `Other` for names this crate does not know.
            pub fn from_bytes(name: &[u8]) -> HeaderName {
                if name.len() == 1 {
                    return match name[0].to_ascii_lowercase() {
                        $( $( c if char::from(c) == $compact => HeaderName::$var, )? )*
                        _ => HeaderName::Other,
                    };
                }
                lookup(name)
            }
        }
    };
}

header_names! {
    /// Accept (RFC 3261 §20.1).
    Accept = "Accept";
    /// Accept-Contact (RFC 3841).
    AcceptContact = "Accept-Contact", 'a';
    /// Accept-Encoding (RFC 3261 §20.2).
    AcceptEncoding = "Accept-Encoding";
    /// Accept-Language (RFC 3261 §20.3).
    AcceptLanguage = "Accept-Language";
    /// Alert-Info (RFC 3261 §20.4).
    AlertInfo = "Alert-Info";
    /// Allow (RFC 3261 §20.5).
    Allow = "Allow";
    /// Allow-Events (RFC 6665).
    AllowEvents = "Allow-Events", 'u';
    /// Authentication-Info (RFC 3261 §20.6).
    AuthenticationInfo = "Authentication-Info";
    /// Authorization (RFC 3261 §20.7).
    Authorization = "Authorization";
    /// Call-ID (RFC 3261 §20.8).
    CallId = "Call-ID", 'i';
    /// Call-Info (RFC 3261 §20.9).
    CallInfo = "Call-Info";
    /// Contact (RFC 3261 §20.10).
    Contact = "Contact", 'm';
    /// Content-Disposition (RFC 3261 §20.11).
    ContentDisposition = "Content-Disposition";
    /// Content-Encoding (RFC 3261 §20.12).
    ContentEncoding = "Content-Encoding", 'e';
    /// Content-ID (RFC 2045, used by RFC 5621).
    ContentId = "Content-ID";
    /// Content-Language (RFC 3261 §20.13).
    ContentLanguage = "Content-Language";
    /// Content-Length (RFC 3261 §20.14).
    ContentLength = "Content-Length", 'l';
    /// Content-Type (RFC 3261 §20.15).
    ContentType = "Content-Type", 'c';
    /// CSeq (RFC 3261 §20.16).
    CSeq = "CSeq";
    /// Date (RFC 3261 §20.17).
    Date = "Date";
    /// Error-Info (RFC 3261 §20.18).
    ErrorInfo = "Error-Info";
    /// Event (RFC 6665).
    Event = "Event", 'o';
    /// Expires (RFC 3261 §20.19).
    Expires = "Expires";
    /// Feature-Caps (RFC 6809).
    FeatureCaps = "Feature-Caps";
    /// From (RFC 3261 §20.20).
    From = "From", 'f';
    /// History-Info (RFC 7044).
    HistoryInfo = "History-Info";
    /// Identity (RFC 8224).
    Identity = "Identity", 'y';
    /// In-Reply-To (RFC 3261 §20.21).
    InReplyTo = "In-Reply-To";
    /// Max-Forwards (RFC 3261 §20.22).
    MaxForwards = "Max-Forwards";
    /// MIME-Version (RFC 3261 §20.24).
    MimeVersion = "MIME-Version";
    /// Min-Expires (RFC 3261 §20.23).
    MinExpires = "Min-Expires";
    /// Min-SE (RFC 4028).
    MinSe = "Min-SE";
    /// Organization (RFC 3261 §20.25).
    Organization = "Organization";
    /// P-Access-Network-Info (RFC 7315 §4.4).
    PAccessNetworkInfo = "P-Access-Network-Info";
    /// P-Asserted-Identity (RFC 3325).
    PAssertedIdentity = "P-Asserted-Identity";
    /// P-Asserted-Service (RFC 6050).
    PAssertedService = "P-Asserted-Service";
    /// P-Associated-URI (RFC 7315 §4.1).
    PAssociatedUri = "P-Associated-URI";
    /// P-Called-Party-ID (RFC 7315 §4.2).
    PCalledPartyId = "P-Called-Party-ID";
    /// P-Charging-Function-Addresses (RFC 7315 §4.5).
    PChargingFunctionAddresses = "P-Charging-Function-Addresses";
    /// P-Charging-Vector (RFC 7315 §4.6).
    PChargingVector = "P-Charging-Vector";
    /// P-Early-Media (RFC 5009).
    PEarlyMedia = "P-Early-Media";
    /// P-Preferred-Identity (RFC 3325).
    PPreferredIdentity = "P-Preferred-Identity";
    /// P-Preferred-Service (RFC 6050).
    PPreferredService = "P-Preferred-Service";
    /// P-Profile-Key (RFC 5002).
    PProfileKey = "P-Profile-Key";
    /// P-Served-User (RFC 5502).
    PServedUser = "P-Served-User";
    /// P-Visited-Network-ID (RFC 7315 §4.3).
    PVisitedNetworkId = "P-Visited-Network-ID";
    /// Path (RFC 3327).
    Path = "Path";
    /// Priority (RFC 3261 §20.26).
    Priority = "Priority";
    /// Privacy (RFC 3323).
    Privacy = "Privacy";
    /// Proxy-Authenticate (RFC 3261 §20.27).
    ProxyAuthenticate = "Proxy-Authenticate";
    /// Proxy-Authorization (RFC 3261 §20.28).
    ProxyAuthorization = "Proxy-Authorization";
    /// Proxy-Require (RFC 3261 §20.29).
    ProxyRequire = "Proxy-Require";
    /// RAck (RFC 3262).
    RAck = "RAck";
    /// Reason (RFC 3326).
    Reason = "Reason";
    /// Record-Route (RFC 3261 §20.30).
    RecordRoute = "Record-Route";
    /// Refer-To (RFC 3515).
    ReferTo = "Refer-To", 'r';
    /// Referred-By (RFC 3892).
    ReferredBy = "Referred-By", 'b';
    /// Reject-Contact (RFC 3841).
    RejectContact = "Reject-Contact", 'j';
    /// Replaces (RFC 3891).
    Replaces = "Replaces";
    /// Reply-To (RFC 3261 §20.31).
    ReplyTo = "Reply-To";
    /// Request-Disposition (RFC 3841).
    RequestDisposition = "Request-Disposition", 'd';
    /// Require (RFC 3261 §20.32).
    Require = "Require";
    /// Retry-After (RFC 3261 §20.33).
    RetryAfter = "Retry-After";
    /// Route (RFC 3261 §20.34).
    Route = "Route";
    /// RSeq (RFC 3262).
    RSeq = "RSeq";
    /// Security-Client (RFC 3329).
    SecurityClient = "Security-Client";
    /// Security-Server (RFC 3329).
    SecurityServer = "Security-Server";
    /// Security-Verify (RFC 3329).
    SecurityVerify = "Security-Verify";
    /// Server (RFC 3261 §20.35).
    Server = "Server";
    /// Service-Route (RFC 3608).
    ServiceRoute = "Service-Route";
    /// Session-Expires (RFC 4028).
    SessionExpires = "Session-Expires", 'x';
    /// SIP-ETag (RFC 3903).
    SipETag = "SIP-ETag";
    /// SIP-If-Match (RFC 3903).
    SipIfMatch = "SIP-If-Match";
    /// Subject (RFC 3261 §20.36).
    Subject = "Subject", 's';
    /// Subscription-State (RFC 6665).
    SubscriptionState = "Subscription-State";
    /// Supported (RFC 3261 §20.37).
    Supported = "Supported", 'k';
    /// Target-Dialog (RFC 4538).
    TargetDialog = "Target-Dialog";
    /// Timestamp (RFC 3261 §20.38).
    Timestamp = "Timestamp";
    /// To (RFC 3261 §20.39).
    To = "To", 't';
    /// Unsupported (RFC 3261 §20.40).
    Unsupported = "Unsupported";
    /// User-Agent (RFC 3261 §20.41).
    UserAgent = "User-Agent";
    /// Via (RFC 3261 §20.42).
    Via = "Via", 'v';
    /// Warning (RFC 3261 §20.43).
    Warning = "Warning";
    /// WWW-Authenticate (RFC 3261 §20.44).
    WwwAuthenticate = "WWW-Authenticate";
}

/// Long-name lookup: dispatch on length and the first letter, then one case-insensitive compare.
fn lookup(name: &[u8]) -> HeaderName {
    use HeaderName::*;
    let candidates: &[HeaderName] = match (name.len(), name[0] | 0x20) {
        (2, b't') => &[To],
        (3, b'v') => &[Via],
        (4, b'c') => &[CSeq],
        (4, b'd') => &[Date],
        (4, b'f') => &[From],
        (4, b'p') => &[Path],
        (4, b'r') => &[RAck, RSeq],
        (5, b'a') => &[Allow],
        (5, b'e') => &[Event],
        (5, b'r') => &[Route],
        (6, b'a') => &[Accept],
        (6, b'm') => &[MinSe],
        (6, b'r') => &[Reason],
        (6, b's') => &[Server],
        (7, b'c') => &[CallId, Contact],
        (7, b'e') => &[Expires],
        (7, b'p') => &[Privacy],
        (7, b'r') => &[Require],
        (7, b's') => &[Subject],
        (7, b'w') => &[Warning],
        (8, b'i') => &[Identity],
        (8, b'p') => &[Priority],
        (8, b'r') => &[ReferTo, Replaces, ReplyTo],
        (8, b's') => &[SipETag],
        (9, b'c') => &[CallInfo],
        (9, b's') => &[Supported],
        (9, b't') => &[Timestamp],
        (10, b'a') => &[AlertInfo],
        (10, b'c') => &[ContentId],
        (10, b'e') => &[ErrorInfo],
        (10, b'u') => &[UserAgent],
        (11, b'i') => &[InReplyTo],
        (11, b'm') => &[MinExpires],
        (11, b'r') => &[ReferredBy, RetryAfter],
        (11, b'u') => &[Unsupported],
        (12, b'a') => &[AllowEvents],
        (12, b'c') => &[ContentType],
        (12, b'f') => &[FeatureCaps],
        (12, b'h') => &[HistoryInfo],
        (12, b'm') => &[MaxForwards, MimeVersion],
        (12, b'o') => &[Organization],
        (12, b'r') => &[RecordRoute],
        (12, b's') => &[SipIfMatch],
        (13, b'a') => &[Authorization],
        (13, b'p') => &[PEarlyMedia, PProfileKey, PServedUser, ProxyRequire],
        (13, b's') => &[ServiceRoute],
        (13, b't') => &[TargetDialog],
        (14, b'a') => &[AcceptContact],
        (14, b'c') => &[ContentLength],
        (14, b'r') => &[RejectContact],
        (15, b'a') => &[AcceptEncoding, AcceptLanguage],
        (15, b's') => &[
            SecurityClient,
            SecurityServer,
            SecurityVerify,
            SessionExpires,
        ],
        (16, b'c') => &[ContentEncoding, ContentLanguage],
        (16, b'p') => &[PAssociatedUri],
        (16, b'w') => &[WwwAuthenticate],
        (17, b'p') => &[PCalledPartyId, PChargingVector],
        (18, b'p') => &[PAssertedService, ProxyAuthenticate],
        (18, b's') => &[SubscriptionState],
        (19, b'a') => &[AuthenticationInfo],
        (19, b'c') => &[ContentDisposition],
        (19, b'p') => &[PAssertedIdentity, PPreferredService, ProxyAuthorization],
        (19, b'r') => &[RequestDisposition],
        (20, b'p') => &[PPreferredIdentity, PVisitedNetworkId],
        (21, b'p') => &[PAccessNetworkInfo],
        (29, b'p') => &[PChargingFunctionAddresses],
        _ => &[],
    };
    for &c in candidates {
        if c.as_str().as_bytes().eq_ignore_ascii_case(name) {
            return c;
        }
    }
    HeaderName::Other
}

impl fmt::Display for HeaderName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if *self == HeaderName::Other {
            "extension header"
        } else {
            self.as_str()
        })
    }
}
