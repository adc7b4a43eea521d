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

            const ALL: &'static [HeaderName] = &[$( HeaderName::$var, )*];
            const NAMES: &'static [&'static str] = &[$( $name, )*];

            /// The compact form (RFC 3261 §7.3.3), if the header has one.
            pub const fn compact(self) -> Option<char> {
                match self {
                    $( $( HeaderName::$var => Some($compact), )? )*
                    _ => None,
                }
            }

            /// Looks up a name case-insensitively, accepting long and compact forms.
            /// Returns `Other` for names this crate does not know (or that are not tokens).
            pub fn from_bytes(name: &[u8]) -> HeaderName {
                if !crate::scan::is_token(name) {
                    return HeaderName::Other;
                }
                Self::from_token(name)
            }

            /// `from_bytes` for input already known to be a non-empty token.
            #[inline]
            pub(crate) fn from_token(name: &[u8]) -> HeaderName {
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

const TABLE_BITS: usize = 9;
const TABLE_SIZE: usize = 1 << TABLE_BITS;

/// Hash of a name from its length and three of its bytes, case-folded.
#[inline]
const fn name_hash(n: &[u8]) -> usize {
    let len = n.len();
    let a = (n[0] | 0x20) as usize;
    let b = (n[len / 2] | 0x20) as usize;
    let c = (n[len - 1] | 0x20) as usize;
    (len.wrapping_mul(0x9E5).wrapping_add(a.wrapping_mul(0x3B))
        ^ b.wrapping_mul(0x1F3)
        ^ c.wrapping_mul(0x71))
        & (TABLE_SIZE - 1)
}

/// Open-addressing table of the long names, built at compile time: slot value is the index into
/// `HeaderName::ALL` plus one, 0 for empty.
static TABLE: [u8; TABLE_SIZE] = {
    let mut t = [0u8; TABLE_SIZE];
    let mut i = 0;
    while i < HeaderName::ALL.len() {
        let mut h = name_hash(HeaderName::ALL[i].as_str().as_bytes());
        while t[h] != 0 {
            h = (h + 1) & (TABLE_SIZE - 1);
        }
        t[h] = (i + 1) as u8;
        i += 1;
    }
    t
};

/// Long-name lookup: one hash, usually one probe, one folded compare.
#[inline]
fn lookup(name: &[u8]) -> HeaderName {
    let mut h = name_hash(name);
    loop {
        let v = TABLE[h];
        if v == 0 {
            return HeaderName::Other;
        }
        if eq_fold(name, HeaderName::NAMES[v as usize - 1].as_bytes()) {
            return HeaderName::ALL[v as usize - 1];
        }
        h = (h + 1) & (TABLE_SIZE - 1);
    }
}

/// Case-insensitive equality of a token against a canonical header name, eight bytes at a time.
///
/// Setting bit 0x20 lower-cases ASCII letters and leaves digits and `-` alone; among token
/// characters only `_` changes into something else (DEL), which no canonical name contains, so
/// equality after the fold is exactly ASCII case-insensitive equality.
#[inline]
fn eq_fold(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    const FOLD: u64 = 0x2020_2020_2020_2020;
    let n = a.len();
    let w = |s: &[u8], at: usize| {
        u64::from_le_bytes(s[at..at + 8].try_into().expect("8 bytes in range"))
    };
    let h = |s: &[u8], at: usize| {
        u32::from_le_bytes(s[at..at + 4].try_into().expect("4 bytes in range"))
    };
    if n >= 8 {
        // whole words, then one overlapping word for the tail
        let mut i = 0;
        while i + 8 < n {
            if w(a, i) | FOLD != w(b, i) | FOLD {
                return false;
            }
            i += 8;
        }
        w(a, n - 8) | FOLD == w(b, n - 8) | FOLD
    } else if n >= 4 {
        h(a, 0) | 0x2020_2020 == h(b, 0) | 0x2020_2020
            && h(a, n - 4) | 0x2020_2020 == h(b, n - 4) | 0x2020_2020
    } else {
        a.iter().zip(b).all(|(x, y)| x | 0x20 == y | 0x20)
    }
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
