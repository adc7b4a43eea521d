//! Checks above pure syntax that RFC 3261 §8.2 (UAS) and §16.3 (proxy) and RFC 4475 expect, each
//! mapped to the status code to answer.

use crate::error::{ErrorKind, ParseError};
use crate::headers::{self, TypedHeader};
use crate::message::{Message, Version};
use crate::method::{reason_phrase, Method};
use crate::HeaderName;
use std::fmt;

/// Which element is checking: a UAS applies §8.2 (Require, Content-Type, Accept), a proxy §16.3
/// (Max-Forwards, Proxy-Require).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Role {
    /// A user agent server (or a registrar, or an application server acting as one).
    #[default]
    Uas,
    /// A proxy.
    Proxy,
}

/// What the checking element supports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationConfig {
    /// UAS or proxy rules.
    pub role: Role,
    /// Option-tags understood (Require for a UAS, Proxy-Require for a proxy); others answer 420.
    pub supported: Vec<String>,
    /// Body media types a UAS accepts (`type/subtype`, `*` allowed); others answer 415.
    pub accepted_types: Vec<String>,
    /// Request-URI schemes handled; others answer 416.
    pub schemes: Vec<String>,
    /// Methods a UAS implements; `None` accepts any. An unknown method answers 501, a known one
    /// not listed answers 405.
    pub methods: Option<Vec<String>>,
    /// A message larger than this answers 513.
    pub max_message_size: Option<usize>,
}

impl Default for ValidationConfig {
    fn default() -> Self {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect();
        ValidationConfig {
            role: Role::Uas,
            supported: s(&[
                "100rel",
                "timer",
                "path",
                "gruu",
                "outbound",
                "sec-agree",
                "precondition",
                "replaces",
                "histinfo",
                "norefersub",
                "eventlist",
                "from-change",
                "199",
                "recipient-list-message",
            ]),
            accepted_types: s(&[
                "application/sdp",
                "application/vnd.3gpp.sms",
                "application/3gpp-ims+xml",
                "application/reginfo+xml",
                "application/pidf+xml",
                "application/resource-lists+xml",
                "application/vnd.3gpp.ussd+xml",
                "application/im-iscomposing+xml",
                "message/cpim",
                "message/sipfrag",
                "text/plain",
                "multipart/mixed",
                "multipart/related",
                "multipart/alternative",
            ]),
            schemes: s(&["sip", "sips", "tel"]),
            methods: None,
            max_message_size: None,
        }
    }
}

/// Why a message was rejected and what to answer.
///
/// For a request, answer with [`Rejection::status`] (and put [`Rejection::unsupported`] in an
/// Unsupported header for 420). For a response, discard it: no answer is possible.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// The status code to send (400, 405, 406, 415, 416, 420, 483, 501, 505, 513 ...).
    pub status: u16,
    /// The default reason phrase of that status.
    pub reason: &'static str,
    /// A human-readable detail for a Warning (399) or Reason header.
    pub text: String,
    /// Option-tags that caused a 420.
    pub unsupported: Vec<String>,
    /// The syntax error behind a 400, when there is one.
    pub error: Option<ParseError>,
}

impl Rejection {
    fn new(status: u16, text: impl Into<String>) -> Self {
        Rejection {
            status,
            reason: reason_phrase(status),
            text: text.into(),
            unsupported: Vec::new(),
            error: None,
        }
    }
    fn bad(e: ParseError) -> Self {
        let text = match e.header {
            Some(h) => format!("Bad {h} header: {}", e.kind),
            None => e.to_string(),
        };
        Rejection {
            error: Some(e),
            ..Rejection::new(400, text)
        }
    }
    /// A Warning header value (`399 <agent> "<text>"`, RFC 3261 §20.43).
    pub fn warning(&self, agent: &str) -> String {
        let mut s = format!("399 {agent} ");
        crate::scan::write_quoted(&mut s, &self.text);
        s
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: {}", self.status, self.reason, self.text)
    }
}

impl std::error::Error for Rejection {}

/// Headers that may appear at most once (RFC 3261 §7.3.1: not a comma list).
const SINGLE: &[HeaderName] = &[
    HeaderName::To,
    HeaderName::From,
    HeaderName::CSeq,
    HeaderName::CallId,
    HeaderName::MaxForwards,
    HeaderName::ContentType,
    HeaderName::Expires,
    HeaderName::MinExpires,
    HeaderName::Date,
    HeaderName::RSeq,
    HeaderName::RAck,
    HeaderName::SessionExpires,
    HeaderName::MinSe,
    HeaderName::Event,
    HeaderName::SubscriptionState,
    HeaderName::ContentDisposition,
    HeaderName::Replaces,
    HeaderName::ReferTo,
    HeaderName::PChargingVector,
    HeaderName::PChargingFunctionAddresses,
];

fn check<'a, T: TypedHeader<'a>>(m: &Message<'a>, names: &Names) -> Result<(), Rejection> {
    if !names.has(T::NAME) {
        return Ok(());
    }
    for v in m.get_all::<T>() {
        v.map_err(Rejection::bad)?;
    }
    Ok(())
}

// every known name has a bit in a `u128`
const _: () = assert!((HeaderName::Other as usize) < 128);

/// The header names a message has, and those it has on more than one line: one pass over its
/// lines instead of a search per checked header (a REGISTER was searched ≈40 times).
struct Names {
    seen: u128,
    repeated: u128,
}

impl Names {
    fn of(m: &Message<'_>) -> Names {
        let (mut seen, mut repeated) = (0u128, 0u128);
        for h in m.index().headers.iter() {
            let bit = Names::bit(h.name);
            repeated |= seen & bit;
            seen |= bit;
        }
        Names { seen, repeated }
    }
    #[inline]
    fn bit(name: HeaderName) -> u128 {
        1u128 << (name as usize)
    }
    #[inline]
    fn has(&self, name: HeaderName) -> bool {
        self.seen & Names::bit(name) != 0
    }
    #[inline]
    fn repeated(&self, name: HeaderName) -> bool {
        self.repeated & Names::bit(name) != 0
    }
}

/// Rejects CTL characters in header values (RFC 3261 §25.1 `TEXT-UTF8char`), except inside a
/// quoted-pair, and a raw NUL anywhere outside one.
fn check_ctl(m: &Message<'_>) -> Result<(), Rejection> {
    for h in m.headers() {
        let b = h.value().as_bytes();
        // almost every value has no control character at all: one vectorisable pass says so
        // (HTAB, CR and LF are allowed; the exact walk below is only needed when one is there)
        let any_ctl = b.iter().fold(false, |seen, &c| {
            seen | ((c < 0x20 && c != b'\t' && c != b'\r' && c != b'\n') || c == 0x7f)
        });
        if !any_ctl {
            continue;
        }
        let mut in_q = false;
        let mut i = 0;
        while i < b.len() {
            let c = b[i];
            match c {
                b'"' => in_q = !in_q,
                b'\\' if in_q => i += 1,
                b'\t' | b'\r' | b'\n' => {}
                c if c < 0x20 || c == 0x7f => {
                    let mut e = ParseError::new(ErrorKind::HeaderValue, h.value_offset() + i);
                    e.header = Some(h.name());
                    return Err(Rejection::bad(e));
                }
                _ => {}
            }
            i += 1;
        }
    }
    Ok(())
}

/// Checks a parsed message and names the answer when it must be refused.
///
/// ```
/// let raw = b"OPTIONS sip:user@example.com SIP/2.0\r\nTo: sip:user@example.com\r\n\
/// From: sip:caller@example.org;tag=33242\r\nMax-Forwards: 3\r\nCall-ID: mismatch01.sdf8w\r\n\
/// CSeq: 8 INVITE\r\nVia: SIP/2.0/UDP host1.example.com;branch=z9hG4bKkdjuw\r\nl: 0\r\n\r\n";
/// let msg = ims_sip::parse_datagram(raw).unwrap();
/// let r = ims_sip::validate(&msg, &Default::default()).unwrap_err();
/// assert_eq!(r.status, 400);
/// ```
pub fn validate(m: &Message<'_>, cfg: &ValidationConfig) -> Result<(), Rejection> {
    validate_uri(m, cfg).map(|_| ())
}

/// [`validate`], handing back the Request-URI it parsed for its checks when it accepts a
/// request (`None` for a response): a proxy that goes on to look at the Request-URI (RFC 3261
/// §16.4) does not parse it again. The answer is [`validate`]'s in every case.
pub fn validate_uri<'a>(
    m: &Message<'a>,
    cfg: &ValidationConfig,
) -> Result<Option<crate::Uri<'a>>, Rejection> {
    check_size(m, cfg)?;
    check_syntax(m)?;
    check_policy(m, cfg)
}

/// The checks of [`validate`] that depend on the checking element's [`ValidationConfig`]: message
/// size (513), Request-URI scheme (416), CSeq method (400/501), and by role Max-Forwards (483)
/// and Proxy-Require (420) for a proxy; methods (405/501), Require (420), body types and
/// encodings (415) and Accept (406) for a UAS — without the syntax checks (mandatory and
/// single-value headers, control characters, the typed parse of every checked header).
///
/// For a message whose syntax an element of the same process already checked: a request a
/// co-located role forwarded or wrote with this crate's encoder (ims-net's in-process hand-off
/// between the CSCF roles of one core). A malformed header it does not look at goes unnoticed.
///
/// ```
/// let raw = b"OPTIONS sip:user@example.com SIP/2.0\r\nTo: sip:user@example.com\r\n\
/// From: sip:caller@example.org;tag=33242\r\nMax-Forwards: 0\r\nCall-ID: a01\r\n\
/// CSeq: 8 OPTIONS\r\nVia: SIP/2.0/UDP host1.example.com;branch=z9hG4bKkdjuw\r\nl: 0\r\n\r\n";
/// let msg = ims_sip::parse_datagram(raw).unwrap();
/// let cfg = ims_sip::ValidationConfig { role: ims_sip::Role::Proxy, ..Default::default() };
/// assert_eq!(ims_sip::validate_policy(&msg, &cfg).unwrap_err().status, 483);
/// ```
pub fn validate_policy(m: &Message<'_>, cfg: &ValidationConfig) -> Result<(), Rejection> {
    validate_policy_uri(m, cfg).map(|_| ())
}

/// [`validate_policy`], handing back the Request-URI it parsed when it accepts a request
/// (`None` for a response), as [`validate_uri`] does. The answer is [`validate_policy`]'s in
/// every case.
pub fn validate_policy_uri<'a>(
    m: &Message<'a>,
    cfg: &ValidationConfig,
) -> Result<Option<crate::Uri<'a>>, Rejection> {
    check_size(m, cfg)?;
    check_policy(m, cfg)
}

fn check_size(m: &Message<'_>, cfg: &ValidationConfig) -> Result<(), Rejection> {
    if let Some(max) = cfg.max_message_size {
        if m.len() > max {
            return Err(Rejection::new(
                513,
                format!("message of {} bytes exceeds {max}", m.len()),
            ));
        }
    }
    Ok(())
}

/// The syntax part of [`validate`], in its order.
fn check_syntax(m: &Message<'_>) -> Result<(), Rejection> {
    if m.version() != Version::SIP_2_0 {
        return Err(Rejection::new(
            505,
            format!("{} is not supported", m.version()),
        ));
    }
    if m.content_length_conflict() {
        return Err(Rejection::new(
            400,
            "Multiple conflicting Content-Length values",
        ));
    }
    let names = Names::of(m);
    for name in [
        HeaderName::To,
        HeaderName::From,
        HeaderName::CSeq,
        HeaderName::CallId,
        HeaderName::Via,
    ] {
        if !names.has(name) {
            return Err(Rejection {
                error: Some(ParseError {
                    kind: ErrorKind::Missing,
                    offset: 0,
                    header: Some(name),
                }),
                ..Rejection::new(400, format!("Missing {name} header"))
            });
        }
    }
    for &name in SINGLE {
        if names.repeated(name) {
            return Err(Rejection::new(
                400,
                format!("Multiple values in single-value header {name}"),
            ));
        }
    }
    check_ctl(m)?;
    if m.via_count() == 0 {
        return Err(Rejection::new(400, "Empty Via header"));
    }
    check::<headers::Via>(m, &names)?;
    check::<headers::From>(m, &names)?;
    check::<headers::To>(m, &names)?;
    check::<headers::CallId>(m, &names)?;
    m.cseq().map_err(Rejection::bad)?;
    check::<headers::MaxForwards>(m, &names)?;
    let (contacts, star) = check_contacts(m, &names)?;
    check::<headers::ContentType>(m, &names)?;
    check::<headers::Date>(m, &names)?;
    check::<headers::Route>(m, &names)?;
    check::<headers::RecordRoute>(m, &names)?;
    check::<headers::Require>(m, &names)?;
    check::<headers::ProxyRequire>(m, &names)?;
    check::<headers::Supported>(m, &names)?;
    check::<headers::Accept>(m, &names)?;
    check::<headers::Warning>(m, &names)?;
    check::<headers::RetryAfter>(m, &names)?;
    check::<headers::RSeq>(m, &names)?;
    check::<headers::RAck>(m, &names)?;
    check::<headers::Timestamp>(m, &names)?;
    check::<headers::SessionExpires>(m, &names)?;
    check::<headers::Event>(m, &names)?;
    check::<headers::SubscriptionState>(m, &names)?;
    check::<headers::PAssertedIdentity>(m, &names)?;
    check::<headers::Path>(m, &names)?;
    check::<headers::ServiceRoute>(m, &names)?;
    // Expires: an overlarge value means the maximum (RFC 3261 §20.19), only bad syntax is an error
    for v in m.get_all::<headers::Expires>() {
        if let Err(e) = v {
            if !matches!(e.kind, ErrorKind::Overflow(_)) {
                return Err(Rejection::bad(e));
            }
        }
    }
    if star && contact_star_misused(m, contacts) {
        return Err(Rejection::new(
            400,
            "Contact: * must be alone, in a REGISTER with Expires: 0",
        ));
    }
    Ok(())
}

/// The configuration-dependent part of [`validate`], in its order.
fn check_policy<'a>(
    m: &Message<'a>,
    cfg: &ValidationConfig,
) -> Result<Option<crate::Uri<'a>>, Rejection> {
    let Some(method) = m.method() else {
        return Ok(None);
    };
    let Some(cseq) = m.cseq().map_err(Rejection::bad)? else {
        return Err(Rejection::new(400, "Missing CSeq header"));
    };
    // Request-URI (§8.2.2.1, §16.3 step 2)
    let ruri = m
        .request_uri()
        .expect("the Request-URI was checked when the message was parsed");
    if !cfg
        .schemes
        .iter()
        .any(|s| s.eq_ignore_ascii_case(ruri.scheme()))
    {
        return Err(Rejection::new(
            416,
            format!("Unsupported URI scheme {}", ruri.scheme()),
        ));
    }
    if ruri.as_sip().is_some_and(|u| u.headers().is_some()) {
        return Err(Rejection::new(
            400,
            "Header fields are not allowed in a Request-URI (RFC 3261 §19.1.1)",
        ));
    }
    if cseq.method != method {
        // RFC 4475 §3.1.2.18: an unknown method answers 501 before the mismatch matters
        if !method.is_known() && cfg.role == Role::Uas {
            return Err(Rejection::new(
                501,
                format!("Method {method} is not implemented"),
            ));
        }
        return Err(Rejection::new(
            400,
            format!("CSeq method {} does not match {method}", cseq.method),
        ));
    }
    match cfg.role {
        Role::Proxy => {
            if m.max_forwards().map_err(Rejection::bad)? == Some(0) {
                return Err(Rejection::new(483, "Max-Forwards reached 0"));
            }
            let bad = unsupported(m, HeaderName::ProxyRequire, cfg);
            if !bad.is_empty() {
                return Err(Rejection {
                    unsupported: bad,
                    ..Rejection::new(420, "Unsupported Proxy-Require")
                });
            }
        }
        Role::Uas => {
            if let Some(methods) = &cfg.methods {
                if !methods.iter().any(|x| x == method.as_str()) {
                    let st = if method.is_known() { 405 } else { 501 };
                    return Err(Rejection::new(
                        st,
                        format!("Method {method} is not supported here"),
                    ));
                }
            }
            if !matches!(method, Method::Ack | Method::Cancel) {
                let bad = unsupported(m, HeaderName::Require, cfg);
                if !bad.is_empty() {
                    return Err(Rejection {
                        unsupported: bad,
                        ..Rejection::new(420, "Unsupported Require")
                    });
                }
            }
            if !m.body().is_empty() {
                if let Some(ct) = m.get::<headers::ContentType>().map_err(Rejection::bad)? {
                    let ok = cfg.accepted_types.iter().any(|t| {
                        let (a, b) = t.split_once('/').unwrap_or((t, "*"));
                        (a == "*" || ct.0.mtype.eq_ignore_ascii_case(a))
                            && (b == "*" || ct.0.subtype.eq_ignore_ascii_case(b))
                    });
                    if !ok {
                        return Err(Rejection::new(
                            415,
                            format!("Unsupported Content-Type {}/{}", ct.0.mtype, ct.0.subtype),
                        ));
                    }
                }
                if m.has(HeaderName::ContentEncoding) {
                    for e in m.get_all::<headers::ContentEncoding>() {
                        let e = e.map_err(Rejection::bad)?;
                        if !e.0.eq_ignore_ascii_case("identity") {
                            return Err(Rejection::new(
                                415,
                                format!("Unsupported Content-Encoding {}", e.0),
                            ));
                        }
                    }
                }
            }
            // An offer in an INVITE needs an SDP answer the UAC accepts (RFC 3261 §13.2.1, RFC 4475 §3.3.15)
            if method == Method::Invite && m.has(HeaderName::Accept) {
                let sdp_offer = m
                    .get::<headers::ContentType>()
                    .ok()
                    .flatten()
                    .is_some_and(|c| c.0.is("application", "sdp"));
                if sdp_offer
                    && !m
                        .get_all::<headers::Accept>()
                        .flatten()
                        .any(|a| a.0.matches("application", "sdp"))
                {
                    return Err(Rejection::new(
                        406,
                        "Accept does not allow application/sdp for the answer",
                    ));
                }
            }
        }
    }
    Ok(Some(ruri))
}

fn unsupported(m: &Message<'_>, name: HeaderName, cfg: &ValidationConfig) -> Vec<String> {
    m.list(name)
        .map(|(_, t)| t)
        .filter(|t| !t.is_empty() && !cfg.supported.iter().any(|s| s.eq_ignore_ascii_case(t)))
        .map(str::to_owned)
        .collect()
}

/// [`check`] for Contact, which also counts the values and says whether one is `*`.
fn check_contacts(m: &Message<'_>, names: &Names) -> Result<(usize, bool), Rejection> {
    let (mut count, mut star) = (0, false);
    if names.has(HeaderName::Contact) {
        for c in m.contacts() {
            count += 1;
            star |= matches!(c.map_err(Rejection::bad)?, headers::Contact::Star);
        }
    }
    Ok((count, star))
}

/// A `*` Contact (there is one among the `count` values) where RFC 3261 §10.2.2 forbids it.
fn contact_star_misused(m: &Message<'_>, count: usize) -> bool {
    // RFC 3261 §10.2.2: "*" only in REGISTER, alone, with Expires: 0
    let expires0 = m
        .get::<headers::Expires>()
        .ok()
        .flatten()
        .is_some_and(|e| e.0 == 0);
    count > 1 || m.method() != Some(Method::Register) || !expires0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(ruri: &str, extra: &str, cseq: &str) -> Vec<u8> {
        format!(
            "REGISTER {ruri} SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1\r\n\
             To: <sip:u@example.com>\r\nFrom: <sip:u@example.com>;tag=1\r\nCall-ID: c1\r\n\
             CSeq: {cseq}\r\n{extra}Content-Length: 0\r\n\r\n"
        )
        .into_bytes()
    }

    #[test]
    fn the_policy_part_gives_validates_answers_for_well_formed_messages() {
        let proxy = ValidationConfig {
            role: Role::Proxy,
            ..Default::default()
        };
        let uas = ValidationConfig {
            methods: Some(vec!["INVITE".into()]),
            max_message_size: Some(400),
            ..Default::default()
        };
        let cases: [(Vec<u8>, &ValidationConfig, Option<u16>); 8] = [
            (msg("sip:example.com", "", "1 REGISTER"), &proxy, None),
            (
                msg("sip:example.com", "Max-Forwards: 0\r\n", "1 REGISTER"),
                &proxy,
                Some(483),
            ),
            (
                msg("sip:example.com", "Proxy-Require: foo\r\n", "1 REGISTER"),
                &proxy,
                Some(420),
            ),
            (
                msg("mailto:u@example.com", "", "1 REGISTER"),
                &proxy,
                Some(416),
            ),
            (msg("sip:example.com", "", "1 INVITE"), &proxy, Some(400)),
            (msg("sip:example.com", "", "1 REGISTER"), &uas, Some(405)),
            (
                msg("sip:example.com", &"X-Pad: y\r\n".repeat(30), "1 REGISTER"),
                &uas,
                Some(513),
            ),
            (
                msg("sip:example.com", "Require: path\r\n", "1 REGISTER"),
                &ValidationConfig::default(),
                None,
            ),
        ];
        for (raw, cfg, want) in cases {
            let m = crate::parse_datagram(&raw).unwrap();
            let full = validate(&m, cfg).err().map(|r| r.status);
            let policy = validate_policy(&m, cfg).err().map(|r| r.status);
            assert_eq!(full, want, "{}", String::from_utf8_lossy(&raw));
            assert_eq!(policy, want, "{}", String::from_utf8_lossy(&raw));
        }
    }

    /// `validate_uri` / `validate_policy_uri` answer as `validate` / `validate_policy` and hand
    /// back the Request-URI `Message::request_uri` gives (none for a response).
    #[test]
    fn the_checks_hand_back_the_request_uri_they_parsed() {
        let proxy = ValidationConfig {
            role: Role::Proxy,
            ..Default::default()
        };
        let mut raws = vec![
            msg("sip:example.com", "", "1 REGISTER"),
            msg("sip:u@example.com:5070;lr;transport=tcp", "", "1 REGISTER"),
            msg("tel:+15551234", "", "1 REGISTER"),
            msg("sips:[::1]:5061", "", "1 REGISTER"),
            msg("sip:example.com", "Max-Forwards: 0\r\n", "1 REGISTER"),
            msg("mailto:u@example.com", "", "1 REGISTER"),
            msg("sip:example.com?subject=x", "", "1 REGISTER"),
            msg("sip:example.com", "", "1 INVITE"),
            msg("sip:example.com", "Call-ID: c2\r\n", "1 REGISTER"),
        ];
        raws.push(
            b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1\r\n\
To: <sip:u@example.com>\r\nFrom: <sip:u@example.com>;tag=1\r\nCall-ID: c1\r\n\
CSeq: 1 REGISTER\r\nContent-Length: 0\r\n\r\n"
                .to_vec(),
        );
        let mut oks = 0;
        for raw in &raws {
            let m = crate::parse_datagram(raw).unwrap();
            for cfg in [&proxy, &ValidationConfig::default()] {
                let what = String::from_utf8_lossy(raw);
                let (a, b) = (validate_uri(&m, cfg), validate(&m, cfg));
                match (&a, &b) {
                    (Ok(u), Ok(())) => {
                        assert_eq!(*u, m.request_uri(), "{what}");
                        oks += usize::from(u.is_some());
                    }
                    (Err(x), Err(y)) => assert_eq!((x.status, &x.text), (y.status, &y.text)),
                    _ => panic!("{what}: {a:?} / {b:?}"),
                }
                let (a, b) = (validate_policy_uri(&m, cfg), validate_policy(&m, cfg));
                match (&a, &b) {
                    (Ok(u), Ok(())) => assert_eq!(*u, m.request_uri(), "{what}"),
                    (Err(x), Err(y)) => assert_eq!((x.status, &x.text), (y.status, &y.text)),
                    _ => panic!("{what}: {a:?} / {b:?}"),
                }
            }
        }
        assert!(oks >= 4, "{oks}");
    }

    #[test]
    fn the_policy_part_skips_the_syntax_checks() {
        // a bad Contact and a second Call-ID: validate refuses, the policy part does not look
        for extra in ["Contact: <sip:u@[zz::1]>\r\n", "Call-ID: c2\r\n"] {
            let raw = msg("sip:example.com", extra, "1 REGISTER");
            let m = crate::parse_datagram(&raw).unwrap();
            assert_eq!(
                validate(&m, &ValidationConfig::default())
                    .unwrap_err()
                    .status,
                400
            );
            assert!(validate_policy(&m, &ValidationConfig::default()).is_ok());
        }
    }

    #[test]
    fn the_syntax_checks_answer_in_their_order() {
        let text = |extra: &str| -> Result<(), String> {
            let raw = msg("sip:example.com", extra, "1 REGISTER");
            let m = crate::parse_datagram(&raw).unwrap();
            validate(&m, &ValidationConfig::default()).map_err(|r| r.text)
        };
        let filler: String = (0..30).map(|i| format!("X-F{i}: {i}\r\n")).collect();
        let cases: [(String, Result<(), &str>); 10] = [
            (String::new(), Ok(())),
            (
                "Expires: 5\r\nFrom: <sip:v@example.com>\r\nExpires: 6\r\n".into(),
                Err("Multiple values in single-value header From"),
            ),
            // a repeat past the 24 inline header slots
            (
                format!("{filler}Expires: 5\r\nExpires: 6\r\n"),
                Err("Multiple values in single-value header Expires"),
            ),
            (format!("{filler}Expires: 5\r\n"), Ok(())),
            // the first failing check in `check_syntax`'s order: Contact before Date
            ("Date: nonsense\r\nContact: <sip:@>\r\n".into(), Err("bad")),
            ("Contact: *\r\nExpires: 0\r\n".into(), Ok(())),
            (
                "Contact: *\r\nContact: <sip:u@192.0.2.1>\r\nExpires: 0\r\n".into(),
                Err("Contact: * must be alone, in a REGISTER with Expires: 0"),
            ),
            (
                "Contact: *\r\nExpires: 60\r\n".into(),
                Err("Contact: * must be alone, in a REGISTER with Expires: 0"),
            ),
            (
                "Contact: <sip:u@192.0.2.1>, <sip:u@192.0.2.2>\r\nExpires: 0\r\n".into(),
                Ok(()),
            ),
            ("Route: <sip:p@example.com;lr>,\r\n".into(), Err("bad")),
        ];
        for (extra, want) in cases {
            let got = text(&extra);
            match want {
                Ok(()) => assert_eq!(got, Ok(()), "{extra}"),
                Err("bad") => assert!(got.is_err(), "{extra}: {got:?}"),
                Err(w) => assert_eq!(got, Err(w.to_owned()), "{extra}"),
            }
        }
        // which header a syntax error names: Contact is checked before Date
        let raw = msg(
            "sip:example.com",
            "Date: nonsense\r\nContact: <sip:@>\r\n",
            "1 REGISTER",
        );
        let m = crate::parse_datagram(&raw).unwrap();
        let r = validate(&m, &ValidationConfig::default()).unwrap_err();
        assert_eq!(r.error.and_then(|e| e.header), Some(HeaderName::Contact));
        // a missing mandatory header, named in order, and a Via line with no value
        let raw = b"OPTIONS sip:a@b SIP/2.0\r\nVia: \r\nTo: <sip:a@b>\r\nFrom: <sip:c@d>;tag=1\r\n\
Call-ID: x\r\nCSeq: 1 OPTIONS\r\n\r\n";
        let m = crate::parse_datagram(raw).unwrap();
        assert_eq!(
            validate(&m, &ValidationConfig::default()).unwrap_err().text,
            "Empty Via header"
        );
        let raw =
            b"OPTIONS sip:a@b SIP/2.0\r\nTo: <sip:a@b>\r\nCall-ID: x\r\nCSeq: 1 OPTIONS\r\n\r\n";
        let m = crate::parse_datagram(raw).unwrap();
        assert_eq!(
            validate(&m, &ValidationConfig::default()).unwrap_err().text,
            "Missing From header"
        );
    }
}
