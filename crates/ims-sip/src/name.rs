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

/// Words of eight bytes that hold the longest known name (`P-Charging-Function-Addresses`, 29).
const PAT_WORDS: usize = 4;

/// A known spelling (long or compact) as eight-byte words: the lower-case bytes, the bits that
/// fold case (0x20 on letters only, so a byte matches exactly itself or its other case) and the
/// bytes that belong to the name.
#[derive(Clone, Copy)]
struct Pattern {
    lower: [u64; PAT_WORDS],
    fold: [u64; PAT_WORDS],
    mask: [u64; PAT_WORDS],
    len: usize,
    name: HeaderName,
}

const fn pattern(s: &[u8], name: HeaderName) -> Pattern {
    let mut p = Pattern {
        lower: [0; PAT_WORDS],
        fold: [0; PAT_WORDS],
        mask: [0; PAT_WORDS],
        len: s.len(),
        name,
    };
    let mut i = 0;
    while i < s.len() {
        let c = s[i];
        let (w, sh) = (i / 8, (i % 8) * 8);
        p.lower[w] |= (c.to_ascii_lowercase() as u64) << sh;
        if c.is_ascii_alphabetic() {
            p.fold[w] |= 0x20 << sh;
        }
        p.mask[w] |= 0xff << sh;
        i += 1;
    }
    p
}

const N_COMPACT: usize = {
    let mut n = 0;
    let mut i = 0;
    while i < HeaderName::ALL.len() {
        if HeaderName::ALL[i].compact().is_some() {
            n += 1;
        }
        i += 1;
    }
    n
};

/// Every known spelling: long names, then compact forms.
static PATTERNS: [Pattern; HeaderName::ALL.len() + N_COMPACT] = {
    let mut t = [pattern(b"", HeaderName::Other); HeaderName::ALL.len() + N_COMPACT];
    let mut i = 0;
    let mut n = 0;
    while i < HeaderName::ALL.len() {
        let h = HeaderName::ALL[i];
        t[n] = pattern(h.as_str().as_bytes(), h);
        n += 1;
        if let Some(c) = h.compact() {
            t[n] = pattern(&[c as u8], h);
            n += 1;
        }
        i += 1;
    }
    t
};

const LINE_BITS: u32 = 9;
const LINE_SIZE: usize = 1 << LINE_BITS;

/// Hash of a spelling from its length and its first eight bytes (at most `len` of them) with bit
/// 0x20 set (the exact compare after the hash decides; the hash only has to spread the names).
#[inline(always)]
const fn line_hash(key: u64, len: usize) -> usize {
    ((key ^ len as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - LINE_BITS)) as usize
}

/// The bytes below `len` of a word (all of them from 8 on).
#[inline(always)]
const fn low_bytes(len: usize) -> u64 {
    if len >= 8 {
        u64::MAX
    } else {
        (1u64 << (8 * len)) - 1
    }
}

/// Open-addressing table over `PATTERNS`: slot value is the index plus one, 0 for empty.
static LINE_TABLE: [u8; LINE_SIZE] = {
    let mut t = [0u8; LINE_SIZE];
    let mut i = 0;
    while i < PATTERNS.len() {
        let p = &PATTERNS[i];
        let mut h = line_hash(
            (p.lower[0] | 0x2020_2020_2020_2020) & low_bytes(p.len),
            p.len,
        );
        while t[h] != 0 {
            h = (h + 1) & (LINE_SIZE - 1);
        }
        t[h] = (i + 1) as u8;
        i += 1;
    }
    t
};

#[inline(always)]
fn word_at(b: &[u8], at: usize) -> Option<u64> {
    b.get(at..at + 8)
        .map(|s| u64::from_le_bytes(s.try_into().expect("eight bytes")))
}

/// Marks the bytes of `x` equal to `c`: the lowest marked byte is exact, higher ones may be false
/// positives.
#[inline(always)]
pub(crate) const fn byte_eq_mask(x: u64, c: u8) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let y = x ^ (ONES * c as u64);
    y.wrapping_sub(ONES) & !y & HIGHS
}

/// The common start of a header line, `known-name ":"` with nothing between name and colon,
/// recognised a word at a time: returns the name and the offset of the colon in `line`.
///
/// `None` sends the caller to the general path (an unknown name, whitespace before the colon, no
/// colon in the first 32 bytes, fewer than eight bytes per word left in the buffer, a malformed
/// line): that path decides, so this one only has to be right when it answers. It answers only when
/// the bytes before the first `:` are exactly a known spelling, case aside, which is what the
/// general path's token check and `from_token` lookup would conclude.
#[inline(always)]
pub(crate) fn match_known_line(line: &[u8]) -> Option<(HeaderName, usize)> {
    const FOLD: u64 = 0x2020_2020_2020_2020;
    let w0 = word_at(line, 0)?;
    let m = byte_eq_mask(w0, b':');
    if m != 0 {
        let len = (m.trailing_zeros() / 8) as usize;
        let key = (w0 | FOLD) & ((1u64 << (8 * len)) - 1);
        return probe(key, len, |p| (w0 | p.fold[0]) & p.mask[0] == p.lower[0]);
    }
    let key = w0 | FOLD;
    let eq0 = |p: &Pattern| (w0 | p.fold[0]) == p.lower[0];
    let w1 = word_at(line, 8)?;
    let m = byte_eq_mask(w1, b':');
    if m != 0 {
        let len = 8 + (m.trailing_zeros() / 8) as usize;
        return probe(key, len, |p| {
            eq0(p) && (w1 | p.fold[1]) & p.mask[1] == p.lower[1]
        });
    }
    let w2 = word_at(line, 16)?;
    let m = byte_eq_mask(w2, b':');
    if m != 0 {
        let len = 16 + (m.trailing_zeros() / 8) as usize;
        return probe(key, len, |p| {
            eq0(p) && (w1 | p.fold[1]) == p.lower[1] && (w2 | p.fold[2]) & p.mask[2] == p.lower[2]
        });
    }
    let w3 = word_at(line, 24)?;
    let m = byte_eq_mask(w3, b':');
    if m != 0 {
        let len = 24 + (m.trailing_zeros() / 8) as usize;
        return probe(key, len, |p| {
            eq0(p)
                && (w1 | p.fold[1]) == p.lower[1]
                && (w2 | p.fold[2]) == p.lower[2]
                && (w3 | p.fold[3]) & p.mask[3] == p.lower[3]
        });
    }
    None
}

/// Walks the probe sequence of `(key, len)` until `eq` accepts a pattern of that length.
#[inline(always)]
fn probe(key: u64, len: usize, eq: impl Fn(&Pattern) -> bool) -> Option<(HeaderName, usize)> {
    let mut h = line_hash(key, len);
    loop {
        let p = PATTERNS.get((LINE_TABLE[h] as usize).wrapping_sub(1))?;
        if p.len == len && eq(p) {
            return Some((p.name, len));
        }
        h = (h + 1) & (LINE_SIZE - 1);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn spellings() -> Vec<(String, HeaderName)> {
        let mut v = Vec::new();
        for &h in HeaderName::ALL {
            v.push((h.as_str().to_string(), h));
            if let Some(c) = h.compact() {
                v.push((c.to_string(), h));
            }
        }
        v
    }

    #[test]
    fn every_spelling_is_recognised_in_any_case() {
        for (s, h) in spellings() {
            for name in [s.clone(), s.to_ascii_lowercase(), s.to_ascii_uppercase()] {
                let line = format!("{name}: value of some length\r\n");
                assert_eq!(
                    match_known_line(line.as_bytes()),
                    Some((h, name.len())),
                    "{name}"
                );
                // the general path agrees
                assert_eq!(HeaderName::from_bytes(name.as_bytes()), h);
            }
        }
    }

    #[test]
    fn near_misses_go_to_the_general_path() {
        let cases: &[&[u8]] = &[
            b"Via : SIP/2.0/UDP h\r\n",  // whitespace before the colon
            b"Vias: SIP/2.0/UDP h\r\n",  // unknown name
            b"X-Via: SIP/2.0/UDP h\r\n", // unknown name
            b"Call\rID: abc@host\r\n",   // CR where the name has '-' (CR | 0x20 == '-')
            b"Call\x0dID: abc@host\r\n", // same, spelled in hex
            b"Max-Forwards\x00: 70\r\n", // NUL before the colon
            b": empty name\r\n\r\n",
            b"Via:",                                           // fewer than eight bytes
            b"P-Charging-Function-Addresse: x\r\n",            // one letter short
            b"P-Charging-Function-Addressesx: x\r\n",          // one letter long
            b"Content-Lengthhhhhhhhhhhhhhhhhhhhhhhhhh: 0\r\n", // no colon within 32 bytes
            b"C@ll-ID: abc@host\r\n",                          // '@' | 0x20 is '`', not 'a'
            b"V\xc9a: x\r\n", // non-ASCII where a letter is expected
        ];
        for c in cases {
            assert_eq!(
                match_known_line(c),
                None,
                "{:?}",
                String::from_utf8_lossy(c)
            );
        }
    }

    #[test]
    fn probe_sequences_are_short() {
        // every spelling sits within a few slots of its hash: the lookup stays cheap
        for p in PATTERNS.iter() {
            let mut h = line_hash(
                (p.lower[0] | 0x2020_2020_2020_2020) & low_bytes(p.len),
                p.len,
            );
            let mut steps = 0;
            while PATTERNS[LINE_TABLE[h] as usize - 1].name != p.name
                || PATTERNS[LINE_TABLE[h] as usize - 1].len != p.len
            {
                h = (h + 1) & (LINE_SIZE - 1);
                steps += 1;
            }
            assert!(steps <= 4, "{:?} needs {steps} probes", p.name);
        }
    }
}
