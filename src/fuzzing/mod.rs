//! Fuzzing entry points shared by the cargo-fuzz targets in `fuzz/` and by the stable corpus
//! replay test `tests/fuzz_corpus.rs`.
//!
//! Each function takes arbitrary bytes, drives as much of the [`crate::sip`] API as it can reach
//! from them, and panics only when an invariant that must hold for *every* input is broken (an
//! oracle). Invalid input is expected and is simply rejected by the parser; it never panics here.
//!
//! Not a stable API: hidden from the documentation and meant for the fuzzers only.

pub mod diameter;
pub mod diameter_peer;
pub mod digest_header;
pub mod sdp;
pub mod sms;
pub mod txn;

pub mod msrp;
pub mod nf;

use crate::sip::{
    self, headers, headers::TypedHeader, multipart, Edit, Frame, Framer, Host, Limits, Message,
    ParseError, ParserConfig, Role, SipUri, Status, TelUri, Uri, ValidationConfig,
};

/// The Via value the edit oracle pushes.
const FUZZ_VIA: &str = "SIP/2.0/UDP fuzz.invalid:5060;branch=z9hG4bK-fuzz";
/// Its branch.
const FUZZ_BRANCH: &str = "z9hG4bK-fuzz";

/// Parses `data` as a SIP message every way the crate offers (datagram, lenient datagram, stream)
/// and, when it parses, calls every accessor, typed header, multipart and validation entry point
/// and checks the splice-edit oracles:
///
/// - a message re-serialised by an untouched [`Edit`] is byte-identical when its lines end in CRLF,
///   and re-parses to the same headers and body otherwise;
/// - after `push_via`, `pop_route` and `decrement_max_forwards` the result re-parses, has one more
///   Via (ours on top), one Route element fewer when one was popped, and the new Max-Forwards;
/// - stream and datagram parsing agree, strict and lenient parsing agree, error offsets stay inside
///   the input, and a typed header's `Display` output parses again as that header (CSeq: to an
///   equal value).
pub fn sip_message(data: &[u8]) {
    let strict = ParserConfig::default();
    let lenient = ParserConfig {
        allow_lf_line_endings: true,
        ..ParserConfig::default()
    };

    let dgram = sip::parse_datagram(data);
    match &dgram {
        Ok(m) => {
            assert_eq!(
                m.as_bytes(),
                &data[..m.len()],
                "a datagram message must be a prefix of its input"
            );
            check_message(m, &strict);
        }
        Err(e) => check_error(e, data.len(), "parse_datagram"),
    }

    // Leniency is monotone: what the strict parser accepts, the lenient one accepts identically.
    match lenient.parse_datagram(data) {
        Ok(m) => {
            if let Ok(s) = &dgram {
                assert_eq!(m.as_bytes(), s.as_bytes(), "strict and lenient disagree");
                assert_eq!(
                    m.header_count(),
                    s.header_count(),
                    "strict and lenient disagree"
                );
                assert_eq!(m.body(), s.body(), "strict and lenient disagree");
            }
            check_message(&m, &lenient);
        }
        Err(e) => {
            check_error(&e, data.len(), "lenient parse_datagram");
            if let Ok(s) = &dgram {
                panic!("strict parse accepted ({s:?}) what lenient parse refused: {e}");
            }
        }
    }

    if let Ok(om) = sip::OwnedMessage::parse(data.to_vec().into()) {
        check_owned_shortcuts(&om, false);
        // and again with the top Via and CSeq kept from a first ask
        let om = sip::OwnedMessage::parse(om.bytes().clone()).expect("parses again");
        let _ = (om.as_message().top_via(), om.as_message().cseq());
        check_owned_shortcuts(&om, true);
    }

    match sip::parse(data) {
        Ok(Status::Complete((m, n))) => {
            assert!(
                n <= data.len(),
                "stream parse used {n} of {} bytes",
                data.len()
            );
            assert_eq!(
                n,
                m.len(),
                "stream parse: used length differs from message length"
            );
            assert_eq!(
                m.as_bytes(),
                &data[..n],
                "stream message is not the input prefix"
            );
            // A complete stream message is also a valid datagram with the same content.
            match sip::parse_datagram(&data[..n]) {
                Ok(d) => {
                    assert_eq!(d.as_bytes(), m.as_bytes(), "stream/datagram disagree");
                    assert_eq!(
                        d.header_count(),
                        m.header_count(),
                        "stream/datagram disagree"
                    );
                    assert_eq!(d.body(), m.body(), "stream/datagram disagree");
                }
                Err(e) => {
                    panic!("stream parse accepted {n} bytes that parse_datagram refuses: {e}")
                }
            }
            check_message(&m, &strict);
        }
        Ok(Status::Partial(more)) => {
            if let Some(k) = more {
                assert!(k > 0, "Partial(Some(0))");
                // Supplying exactly the announced number of body bytes must finish the message
                // (or fail for another reason, e.g. bad UTF-8 in the header section).
                if k <= Limits::default().max_message_size {
                    let mut padded = data.to_vec();
                    padded.resize(data.len() + k, b'x');
                    match sip::parse(&padded) {
                        Ok(Status::Complete((_, n))) => assert_eq!(
                            n,
                            padded.len(),
                            "Partial(Some({k})) then a message of another length"
                        ),
                        Ok(Status::Partial(p)) => {
                            panic!("Partial(Some({k})) and still Partial({p:?}) after {k} bytes")
                        }
                        Err(e) => check_error(&e, padded.len(), "padded stream parse"),
                    }
                }
            }
        }
        Err(e) => check_error(&e, data.len(), "parse"),
    }
}

/// Parses `data` (when it is UTF-8) as a URI and as a host.
///
/// Oracles: a parsed URI is equivalent to itself, prints back exactly as its input, is
/// equivalent (both ways) to the same URI with an upper-cased scheme when that parses, parses
/// again inside `<...>` as a name-addr with the same URI, and its host prints as a host that
/// parses again to an equivalent host. The scheme-specific parsers agree with [`Uri::parse`].
pub fn sip_uri(data: &[u8]) {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let _ = sip::pct_decode(s);
    let _ = sip::unquote(s);

    match Uri::parse(s) {
        Ok(u) => check_uri(&u, s),
        Err(e) => {
            check_error(&e, s.len(), "Uri::parse");
            if let Ok(su) = SipUri::parse(s) {
                panic!("SipUri::parse accepted {su:?} but Uri::parse refused: {e}");
            }
            if let Ok(tu) = TelUri::parse(s) {
                panic!("TelUri::parse accepted {tu:?} but Uri::parse refused: {e}");
            }
        }
    }
    if let Ok(su) = SipUri::parse(s) {
        assert_eq!(su.as_str(), s, "SipUri::as_str");
        assert!(su.equivalent(&su), "SipUri not equivalent to itself: {s:?}");
    }
    if let Ok(tu) = TelUri::parse(s) {
        assert_eq!(tu.as_str(), s, "TelUri::as_str");
        assert!(tu.equivalent(&tu), "TelUri not equivalent to itself: {s:?}");
    }
    if let Ok(a) = sip::AbsoluteUri::parse(s) {
        assert_eq!(a.as_str(), s, "AbsoluteUri::as_str");
        let _ = (a.scheme(), a.rest());
    }
    match Host::parse(s) {
        Ok(h) => check_host(&h),
        Err(e) => check_error(&e, s.len(), "Host::parse"),
    }
}

/// Feeds `data[1..]` to a [`Framer`] in chunks whose size comes from `data[0]` (low 6 bits: 1 to
/// 64 bytes; bit 6: a client-side framer, [`Framer::client`]; bit 7: accept bare-LF line ends),
/// draining `next_frame` after every push until `Ok(None)` or the first error.
///
/// Oracles: the frames are exactly the input, in order (the bytes of the returned messages and
/// keep-alives never exceed the input length and each frame matches the next input bytes); each
/// message equals what a stream parse of the remaining input gives; the same messages come out
/// when the whole input is pushed at once; and the framer never sits on a message that a stream
/// parse of the remaining input would complete.
pub fn sip_framer(data: &[u8]) {
    let Some((&sel, input)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(sel & 0x3f) + 1;
    let client = sel & 0x40 != 0;
    let cfg = ParserConfig {
        allow_lf_line_endings: sel & 0x80 != 0,
        ..ParserConfig::default()
    };
    let chunked = run_framer(input, &cfg, client, chunk);
    let whole = run_framer(input, &cfg, client, input.len().max(1));
    // The result may not depend on how the bytes were split (keep-alives aside: a CRLF CRLF seen at
    // once is a ping, seen in two reads it is two pongs).
    assert_eq!(
        chunked.messages.len(),
        whole.messages.len(),
        "chunk size {chunk} changed the number of messages (errors: chunked {:?}, whole {:?})",
        chunked.error,
        whole.error
    );
    assert!(
        chunked.messages == whole.messages,
        "chunk size {chunk} changed the messages"
    );
    assert_eq!(
        chunked.error.is_some(),
        whole.error.is_some(),
        "chunk size {chunk} changed the outcome: chunked {:?}, whole {:?}",
        chunked.error,
        whole.error
    );
}

struct FramerRun {
    /// The bytes of every message returned, in order.
    messages: Vec<Vec<u8>>,
    error: Option<ParseError>,
}

fn run_framer(input: &[u8], cfg: &ParserConfig, client: bool, chunk: usize) -> FramerRun {
    let mut framer = if client {
        Framer::client(*cfg)
    } else {
        Framer::new(*cfg)
    };
    let mut run = FramerRun {
        messages: Vec::new(),
        error: None,
    };
    // bytes of the input accounted for by returned frames
    let mut pos = 0usize;
    'feed: for piece in input.chunks(chunk) {
        if let Err(e) = framer.push(piece) {
            run.error = Some(e);
            break;
        }
        loop {
            match framer.next_frame() {
                Ok(None) => break,
                Ok(Some(frame)) => {
                    let len = match &frame {
                        Frame::Ping => {
                            assert!(
                                input[pos..].starts_with(b"\r\n\r\n"),
                                "Ping where the input has {:?}",
                                &input[pos..input.len().min(pos + 4)]
                            );
                            4
                        }
                        Frame::Pong => {
                            if input[pos..].starts_with(b"\r\n") {
                                2
                            } else if cfg.allow_lf_line_endings && input.get(pos) == Some(&b'\n') {
                                1
                            } else {
                                panic!(
                                    "Pong where the input has {:?}",
                                    &input[pos..input.len().min(pos + 2)]
                                );
                            }
                        }
                        Frame::Message(om) => {
                            let bytes = om.bytes();
                            assert!(
                                pos + bytes.len() <= input.len(),
                                "framer returned {} bytes from a {}-byte input",
                                pos + bytes.len(),
                                input.len()
                            );
                            assert_eq!(
                                &bytes[..],
                                &input[pos..pos + bytes.len()],
                                "framed message is not the next input bytes"
                            );
                            match cfg.parse(&input[pos..]) {
                                Ok(Status::Complete((m, n))) => {
                                    assert_eq!(n, bytes.len(), "framer and stream parse disagree");
                                    assert_eq!(m.header_count(), om.as_message().header_count());
                                }
                                other => panic!(
                                    "framer returned a message that stream parse gives as {other:?}"
                                ),
                            }
                            exercise_owned(om);
                            run.messages.push(bytes.to_vec());
                            bytes.len()
                        }
                    };
                    pos += len;
                    assert!(
                        pos <= input.len(),
                        "frames total {pos} bytes from a {}-byte input",
                        input.len()
                    );
                    assert!(
                        pos + framer.buffered() <= input.len(),
                        "framer holds more bytes than it was given"
                    );
                }
                Err(e) => {
                    let _ = e.to_string();
                    run.error = Some(e);
                    break 'feed;
                }
            }
        }
    }
    if run.error.is_none() && pos < input.len() {
        // Everything was fed and the framer wants more: then no complete message may be waiting.
        let rest = &input[pos..];
        let keepalive = rest.starts_with(b"\r\n")
            || (cfg.allow_lf_line_endings && rest.first() == Some(&b'\n'));
        if !keepalive {
            if let Ok(Status::Complete((_, n))) = cfg.parse(rest) {
                panic!(
                    "framer returned Ok(None) although the buffered {} bytes hold a complete \
                     {n}-byte message",
                    rest.len()
                );
            }
        }
    }
    run
}

fn exercise_owned(om: &sip::OwnedMessage) {
    let m = om.as_message();
    let _ = (
        m.top_via(),
        m.from(),
        m.to(),
        m.call_id(),
        m.cseq(),
        m.max_forwards(),
    );
    let _ = om.body_bytes();
    let _ = format!("{om}{om:?}");
}

/// Error offsets point into the input (or at its end).
fn check_error(e: &ParseError, len: usize, what: &str) {
    let _ = format!("{e} {e:?} {}", e.kind);
    assert!(
        e.offset <= len,
        "{what}: error offset {} past a {len}-byte input: {e}",
        e.offset
    );
}

fn line_ends_are_crlf(head: &[u8]) -> bool {
    head.iter()
        .enumerate()
        .all(|(i, &c)| c != b'\n' || (i > 0 && head[i - 1] == b'\r'))
}

fn check_message(m: &Message<'_>, cfg: &ParserConfig) {
    let len = m.len();
    assert!(!m.is_empty(), "a parsed message is empty");
    let _ = format!("{m:?}{m}");
    let _ = (
        m.start_line(),
        m.start_line_str(),
        m.version(),
        m.content_length(),
    );
    let _ = m.content_length_conflict();
    assert!(m.body_offset() <= len, "body offset past the end");
    assert_eq!(
        m.body(),
        &m.as_bytes()[m.body_offset()..],
        "body is not the tail of the message"
    );
    if let Some(cl) = m.content_length() {
        if !m.content_length_conflict() {
            assert_eq!(
                m.body().len(),
                cl as usize,
                "body length differs from Content-Length"
            );
        }
    }
    if m.is_request() {
        let method = m.method().expect("a request has a method");
        let _ = (method.as_str(), method.is_known(), method.to_string());
        assert!(
            m.request_uri_str().is_some(),
            "a request without Request-URI text"
        );
        let u = m
            .request_uri()
            .expect("the Request-URI of a parsed request parses");
        check_uri(&u, u.as_str());
        assert!(m.status().is_none() && m.reason().is_none());
    } else {
        let code = m.status().expect("a response has a status");
        assert!((100..=999).contains(&code), "status code {code}");
        let _ = m.reason();
        assert!(m.method().is_none() && m.request_uri().is_none());
    }

    // raw headers
    let bytes = m.as_bytes();
    for (i, h) in m.headers().enumerate() {
        let off = h.value_offset();
        let v = h.value();
        assert!(off + v.len() <= len, "header value past the end");
        assert_eq!(
            &bytes[off..off + v.len()],
            v.as_bytes(),
            "header value_offset is wrong"
        );
        assert_eq!(m.header_at(i), Some(h));
        let _ = (h.name(), h.long_name());
        assert!(
            m.headers_named(h.raw_name()).any(|x| x == h),
            "headers_named({:?}) misses its own header",
            h.raw_name()
        );
        assert!(m.header_str(h.raw_name()).is_some());
        assert!(m.has(h.name()));
        let _ = m.header(h.name());
        for (o, e) in m.list(h.name()) {
            assert!(o + e.len() <= len, "list element past the end");
            assert_eq!(
                &bytes[o..o + e.len()],
                e.as_bytes(),
                "list element offset is wrong"
            );
        }
    }
    assert_eq!(m.header_at(m.header_count()), None);

    typed_headers(m);

    // multipart
    let limits = Limits::default();
    if let Ok(Some(parts)) = m.multipart(&limits) {
        check_parts(m.body(), &parts, &limits, 1);
    }
    if let Some(b) = m
        .get::<headers::ContentType>()
        .ok()
        .flatten()
        .and_then(|ct| ct.0.param("boundary"))
    {
        if let Ok(parts) = multipart::parse(m.body(), &b, &limits) {
            check_parts(m.body(), &parts, &limits, 1);
        }
    }

    // validation
    let uas = ValidationConfig::default();
    let proxy = ValidationConfig {
        role: Role::Proxy,
        ..ValidationConfig::default()
    };
    let picky = ValidationConfig {
        methods: Some(vec!["INVITE".into(), "MESSAGE".into(), "REGISTER".into()]),
        max_message_size: Some(512),
        ..ValidationConfig::default()
    };
    for vc in [&uas, &proxy, &picky] {
        if let Err(r) = sip::validate(m, vc) {
            assert!(
                (400..700).contains(&r.status),
                "validate answered {} ({r})",
                r.status
            );
            let _ = (r.warning("fuzz.invalid"), r.to_string());
        }
    }

    // owned copy
    let om = m.to_owned_message();
    let om_view = om.as_message();
    assert_eq!(
        om_view.as_bytes(),
        m.as_bytes(),
        "to_owned_message changed the bytes"
    );
    assert_eq!(om_view.header_count(), m.header_count());
    assert_eq!(&om.body_bytes()[..], m.body());
    let _ = format!("{om}{om:?}");

    check_edits(m, cfg);
}

fn check_parts(body: &[u8], parts: &[multipart::Part<'_>], limits: &Limits, depth: usize) {
    let (lo, hi) = (body.as_ptr() as usize, body.as_ptr() as usize + body.len());
    for p in parts {
        let (a, b) = (
            p.body.as_ptr() as usize,
            p.body.as_ptr() as usize + p.body.len(),
        );
        assert!(
            p.body.is_empty() || (lo <= a && b <= hi),
            "multipart part is not a slice of its body"
        );
        let _ = (p.header("content-type"), p.header("Content-ID"), p.offset);
        if let Some(Ok(ct)) = p.content_type() {
            let _ = (ct.to_string(), ct.is("multipart", "mixed"));
            if ct.mtype.eq_ignore_ascii_case("multipart") && depth < 8 {
                if let Ok(inner) = p.parts(limits, depth) {
                    check_parts(p.body, &inner, limits, depth + 1);
                }
            }
        }
    }
}

/// Calls `get_all` for a typed header, exercises `Debug`/`Display`, and checks that the `Display`
/// output parses again as the same header.
macro_rules! typed {
    ($m:expr, $($t:ident),+ $(,)?) => {$(
        for r in $m.get_all::<headers::$t>() {
            match r {
                Ok(v) => {
                    let shown = v.to_string();
                    let _ = format!("{v:?}");
                    if let Err(e) = <headers::$t as TypedHeader>::parse(&shown) {
                        panic!(
                            "{}: Display output {shown:?} of {v:?} does not parse again: {e}",
                            stringify!($t)
                        );
                    }
                }
                Err(e) => check_error(&e, $m.len(), stringify!($t)),
            }
        }
        let _ = $m.get::<headers::$t>();
    )+};
}

fn typed_headers(m: &Message<'_>) {
    typed!(
        m,
        From,
        To,
        Route,
        RecordRoute,
        Path,
        ServiceRoute,
        PAssertedIdentity,
        PPreferredIdentity,
        PAssociatedUri,
        PCalledPartyId,
        PServedUser,
        ReferTo,
        ReferredBy,
        ReplyTo,
        Contact,
        Via,
        CSeq,
        CallId,
        InReplyTo,
        ContentLength,
        Date,
        Expires,
        MaxForwards,
        MinExpires,
        MinSe,
        Priority,
        RAck,
        RSeq,
        RetryAfter,
        Server,
        SessionExpires,
        Subject,
        Timestamp,
        UserAgent,
        Accept,
        AcceptContact,
        Allow,
        AllowEvents,
        ContentDisposition,
        ContentEncoding,
        ContentType,
        Event,
        PAccessNetworkInfo,
        PChargingFunctionAddresses,
        PChargingVector,
        PVisitedNetworkId,
        Privacy,
        ProxyRequire,
        Reason,
        RejectContact,
        Replaces,
        RequestDisposition,
        Require,
        SecurityClient,
        SecurityServer,
        SecurityVerify,
        SubscriptionState,
        Supported,
        Unsupported,
        Warning,
        Authorization,
        ProxyAuthorization,
        WwwAuthenticate,
        ProxyAuthenticate,
        AuthenticationInfo,
    );

    // the named accessors and the accessors of the values they return
    for v in m.via() {
        let Ok(v) = v else { continue };
        let _ = (
            v.protocol_name(),
            v.protocol_version(),
            v.transport(),
            v.port(),
        );
        let _ = (
            v.branch(),
            v.has_rfc3261_branch(),
            v.received(),
            v.received_ip(),
        );
        let _ = (v.rport(), v.maddr(), v.ttl(), v.params().len());
        check_host(&v.host());
        for p in v.params().iter() {
            let _ = p.text();
        }
    }
    let top = m.top_via();
    if let (Ok(Some(t)), Some(Ok(first))) = (&top, m.via().next()) {
        assert_eq!(*t, first, "top_via differs from the first via()");
    }
    for h in [m.from(), m.to()] {
        if let Ok(Some(h)) = h {
            let _ = (
                h.tag(),
                h.display_name(),
                h.addr.display_name_raw(),
                h.addr.is_name_addr(),
            );
            check_uri(&h.uri(), h.uri().as_str());
        }
    }
    if let Ok(Some(c)) = m.call_id() {
        let _ = c.as_str();
    }
    if let Ok(Some(c)) = m.cseq() {
        let shown = c.to_string();
        let again = <headers::CSeq as TypedHeader>::parse(&shown);
        assert_eq!(again.ok(), Some(c), "CSeq Display round trip");
    }
    for c in m.contacts() {
        let Ok(c) = c else { continue };
        let _ = (
            c.addr(),
            c.params(),
            c.uri(),
            c.expires(),
            c.q(),
            c.instance(),
            c.reg_id(),
        );
        let _ = (c.has_feature("+g.3gpp.smsip"), c.feature("+sip.instance"));
    }
    let _ = m.max_forwards();
    for a in m.get_all::<headers::Authorization>().flatten() {
        let _ = (
            a.is_digest(),
            a.username(),
            a.realm(),
            a.nonce(),
            a.uri(),
            a.response(),
        );
        let _ = (
            a.algorithm(),
            a.cnonce(),
            a.nc(),
            a.qop(),
            a.opaque(),
            a.auts(),
            a.stale(),
        );
    }
    for a in m.get_all::<headers::AuthenticationInfo>().flatten() {
        let _ = (
            a.nextnonce(),
            a.rspauth(),
            a.0.as_str(),
            a.0.get("qop"),
            a.0.value("x"),
        );
    }
    for e in m.get_all::<headers::Event>().flatten() {
        let _ = e.id();
    }
    for s in m.get_all::<headers::SubscriptionState>().flatten() {
        let _ = (s.expires(), s.reason());
    }
    for r in m.get_all::<headers::Reason>().flatten() {
        let _ = (r.cause(), r.text());
    }
    for s in m.get_all::<headers::SecurityClient>().flatten() {
        let _ = (s.alg(), s.ealg(), s.number("spi-c"), s.number("port-s"));
    }
    for p in m.get_all::<headers::PChargingVector>().flatten() {
        let _ = (p.icid(), p.orig_ioi(), p.term_ioi());
    }
    for p in m.get_all::<headers::PChargingFunctionAddresses>().flatten() {
        let _ = (p.ccf().count(), p.ecf().count());
    }
    for r in m.get_all::<headers::Replaces>().flatten() {
        let _ = (r.to_tag(), r.from_tag(), r.early_only());
    }
    for p in m.get_all::<headers::Privacy>().flatten() {
        let _ = (p.values().count(), p.contains("id"));
    }
    for s in m.get_all::<headers::SessionExpires>().flatten() {
        let _ = s.refresher();
    }
}

fn check_edits(m: &Message<'_>, cfg: &ParserConfig) {
    let limits = &cfg.limits;
    let head = &m.as_bytes()[..m.body_offset()];

    // an untouched edit
    let untouched = m.edit();
    let out = untouched.to_vec();
    check_owned_edit(&untouched, &out);
    if line_ends_are_crlf(head) {
        assert!(
            out == m.as_bytes(),
            "an untouched edit changed a CRLF message:\n in: {:?}\nout: {:?}",
            String::from_utf8_lossy(m.as_bytes()),
            String::from_utf8_lossy(&out)
        );
    } else {
        match cfg.parse_datagram(&out) {
            Ok(re) => {
                assert_eq!(re.header_count(), m.header_count(), "untouched edit: header count");
                assert_eq!(re.body(), m.body(), "untouched edit: body");
            }
            Err(e) => panic!(
                "an untouched edit of a bare-LF message does not parse again ({e}):\n in: {:?}\nout: {:?}",
                String::from_utf8_lossy(m.as_bytes()),
                String::from_utf8_lossy(&out)
            ),
        }
    }

    // the proxy's forwarding edits
    let mut e: Edit<'_, '_> = m.edit();
    e.push_via(FUZZ_VIA);
    let popped = e.pop_route();
    let Ok(mf) = e.decrement_max_forwards() else {
        return;
    };
    let out = e.to_vec();
    check_owned_edit(&e, &out);
    if out.len() > limits.max_message_size
        || m.header_count() + 2 > limits.max_headers
        || m.body().len() > limits.max_body_size
    {
        return;
    }
    let re = match cfg.parse_datagram(&out) {
        Ok(re) => re,
        Err(err) => panic!(
            "forwarding edit does not parse again ({err}):\n in: {:?}\nout: {:?}",
            String::from_utf8_lossy(m.as_bytes()),
            String::from_utf8_lossy(&out)
        ),
    };
    assert_eq!(re.body(), m.body(), "forwarding edit changed the body");
    assert_eq!(
        re.via().count(),
        m.via().count() + 1,
        "forwarding edit: Via count\n in: {:?}\nout: {:?}",
        String::from_utf8_lossy(m.as_bytes()),
        String::from_utf8_lossy(&out)
    );
    match re.top_via() {
        Ok(Some(v)) => assert_eq!(v.branch(), Some(FUZZ_BRANCH), "pushed Via is not on top"),
        other => panic!("pushed Via does not parse: {other:?}"),
    }
    let routes = |x: &Message<'_>| {
        x.list(sip::HeaderName::Route)
            .filter(|(_, e)| !e.is_empty())
            .count()
    };
    let popped_one = popped.as_deref().is_some_and(|p| !p.is_empty());
    assert_eq!(
        routes(&re) + usize::from(popped_one),
        routes(m),
        "forwarding edit: Route count (popped {popped:?})\n in: {:?}\nout: {:?}",
        String::from_utf8_lossy(m.as_bytes()),
        String::from_utf8_lossy(&out)
    );
    assert_eq!(
        re.max_forwards().ok(),
        Some(Some(mf)),
        "forwarding edit: Max-Forwards"
    );
}

/// The proxy's and user agent's shortcuts around an edit give, whenever they answer, exactly
/// the message the edit gives: `OwnedMessage::without_first_value(name)` against
/// `Edit::pop_first(name)` + `to_owned_message`, `OwnedMessage::with_line_above` against
/// `Edit::push_front` + `to_owned_message` (same bytes, header lines, top Via and CSeq, which
/// also equal a fresh parse's), and `keep_values_of` a shifted twin keeps only what a fresh
/// parse of its own bytes finds. `kept` says whether `om` kept its top Via and CSeq already.
fn check_owned_shortcuts(om: &sip::OwnedMessage, kept: bool) {
    use sip::HeaderName as N;
    let same = |fast: &sip::OwnedMessage, slow: &sip::OwnedMessage, what: &str| {
        let show = || String::from_utf8_lossy(om.bytes()).into_owned();
        let (f, s) = (fast.as_message(), slow.as_message());
        assert_eq!(
            f.as_bytes(),
            s.as_bytes(),
            "{what} (kept {kept}): bytes of {}",
            show()
        );
        assert_eq!(f.body_offset(), s.body_offset(), "{what}: body offset");
        assert_eq!(f.start_line_str(), s.start_line_str(), "{what}: start line");
        assert!(
            f.headers().eq(s.headers()),
            "{what} (kept {kept}): header lines of {}",
            show()
        );
        let fresh =
            sip::OwnedMessage::parse(fast.bytes().clone()).expect("a shortcut's bytes parse");
        let fresh = fresh.as_message();
        assert_eq!(
            f.top_via(),
            fresh.top_via(),
            "{what} (kept {kept}): top Via of {}",
            show()
        );
        assert_eq!(
            f.cseq(),
            fresh.cseq(),
            "{what} (kept {kept}): CSeq of {}",
            show()
        );
        assert_eq!(s.top_via(), fresh.top_via(), "{what}: the edit's top Via");
        assert_eq!(s.cseq(), fresh.cseq(), "{what}: the edit's CSeq");
    };
    for name in [
        N::Via,
        N::Route,
        N::RecordRoute,
        N::CSeq,
        N::Contact,
        N::CallId,
    ] {
        let Some(fast) = om.without_first_value(name) else {
            continue;
        };
        let m = om.as_message();
        let mut e = m.edit();
        let popped = e.pop_first(name);
        assert!(
            popped.is_some(),
            "without_first_value({name:?}) answered, the edit popped nothing"
        );
        let slow = e
            .to_owned_message()
            .expect("the edit gives a message where the shortcut did");
        same(&fast, &slow, "without_first_value");
        // a twin with the lines moved: what it keeps is what its own bytes parse to
        let twin = sip::OwnedMessage::parse(fast.bytes().clone()).expect("parses");
        twin.keep_values_of(om);
        let fresh = sip::OwnedMessage::parse(fast.bytes().clone()).expect("parses");
        assert_eq!(
            twin.as_message().top_via(),
            fresh.as_message().top_via(),
            "keep_values_of: top Via"
        );
        assert_eq!(
            twin.as_message().cseq(),
            fresh.as_message().cseq(),
            "keep_values_of: CSeq"
        );
    }
    for (name, value) in [
        ("Via", FUZZ_VIA),
        ("v", FUZZ_VIA),
        ("Record-Route", "<sip:fuzz.invalid;lr>"),
        ("Route", "<sip:a.invalid;lr>, <sip:b.invalid>"),
        ("X-Fuzz", "1"),
    ] {
        let Some(fast) = om.with_line_above(name, value) else {
            continue;
        };
        let m = om.as_message();
        let mut e = m.edit();
        e.push_front(name, value);
        let slow = e
            .to_owned_message()
            .expect("the edit gives a message where the shortcut did");
        same(&fast, &slow, "with_line_above");
    }
    // the receive-side Via fix (RFC 3581 §4) keeps its top Via without a parse: what it carries
    // is what its bytes parse to, and the branch and sent-by are the old ones
    let old = om.as_message().top_via().ok().flatten();
    for (received, rport) in [
        (Some(std::net::IpAddr::from([192, 0, 2, 7])), Some(5062)),
        (
            Some(std::net::IpAddr::from([0x2001, 0xdb8, 0, 0, 0, 0, 0, 1])),
            None,
        ),
        (None, Some(1)),
    ] {
        let Some(fast) = om.with_top_via_received(received, rport, &ParserConfig::default()) else {
            continue;
        };
        let fresh =
            sip::OwnedMessage::parse(fast.bytes().clone()).expect("the fixed message parses");
        same(&fast, &fresh, "with_top_via_received");
        let old = old
            .as_ref()
            .expect("the fix answered for a message whose top Via did not parse");
        let m = fast.as_message();
        let new = m
            .top_via()
            .ok()
            .flatten()
            .expect("the fixed top Via parses");
        assert_eq!(new.branch(), old.branch(), "with_top_via_received: branch");
        assert_eq!(new.host(), old.host(), "with_top_via_received: host");
        assert_eq!(new.port(), old.port(), "with_top_via_received: port");
        if let (Some(ip), None) = (received, old.received()) {
            assert_eq!(
                new.received_ip(),
                Some(ip),
                "with_top_via_received: received"
            );
        }
    }
}

/// `Edit::to_owned_message` (which may index the pieces it wrote instead of scanning them) is
/// exactly `OwnedMessage::parse` of the edit's bytes: same answer, same headers, and the top Via
/// and CSeq it carries are those the parse finds.
fn check_owned_edit(e: &Edit<'_, '_>, out: &[u8]) {
    let fast = e.to_owned_message();
    let parsed = sip::OwnedMessage::parse(out.to_vec().into());
    match (&fast, &parsed) {
        (Ok(f), Ok(p)) => {
            let (f, p) = (f.as_message(), p.as_message());
            let show = || String::from_utf8_lossy(out).into_owned();
            assert_eq!(f.as_bytes(), p.as_bytes(), "owned edit: bytes");
            assert_eq!(
                f.start_line_str(),
                p.start_line_str(),
                "owned edit: start line"
            );
            assert_eq!(f.body_offset(), p.body_offset(), "owned edit: body offset");
            assert_eq!(
                f.header_count(),
                p.header_count(),
                "owned edit: header count of {}",
                show()
            );
            for (a, b) in f.headers().zip(p.headers()) {
                assert_eq!(a, b, "owned edit: header of {}", show());
            }
            assert_eq!(
                f.top_via(),
                p.top_via(),
                "owned edit: top Via of {}",
                show()
            );
            assert_eq!(f.cseq(), p.cseq(), "owned edit: CSeq of {}", show());
            assert_eq!(f.via().count(), p.via().count(), "owned edit: Via count");
        }
        (Err(a), Err(b)) => assert_eq!(
            a,
            b,
            "owned edit: errors differ for {:?}",
            String::from_utf8_lossy(out)
        ),
        (a, b) => panic!(
            "owned edit and parse disagree for {:?}: {a:?} / {b:?}",
            String::from_utf8_lossy(out)
        ),
    }
}

fn check_uri(u: &Uri<'_>, s: &str) {
    assert_eq!(u.as_str(), s, "Uri::as_str is not the input");
    assert_eq!(u.to_string(), s, "Uri Display is not the input");
    assert!(u.equivalent(u), "URI not equivalent to itself: {s:?}");
    let scheme = u.scheme();
    assert!(
        !scheme.is_empty() && s.len() > scheme.len() && s.as_bytes()[scheme.len()] == b':',
        "bad scheme {scheme:?} of {s:?}"
    );
    match u {
        Uri::Sip(su) => {
            assert_eq!(su.to_string(), s, "SipUri Display");
            let _ = (
                su.is_secure(),
                su.user(),
                su.user_decoded(),
                su.password(),
                su.port(),
            );
            let _ = (
                su.transport(),
                su.lr(),
                su.maddr(),
                su.user_param(),
                su.gr(),
                su.ob(),
            );
            let _ = (su.headers(), su.header_pairs().count(), su.params().len());
            for p in su.params().iter() {
                let _ = p.text();
            }
            check_host(&su.host());
        }
        Uri::Tel(tu) => {
            assert_eq!(tu.to_string(), s, "TelUri Display");
            let _ = (tu.number(), tu.is_global(), tu.digits(), tu.phone_context());
            let _ = (tu.ext(), tu.isub(), tu.params().len());
        }
        Uri::Other(a) => {
            let _ = (a.scheme(), a.rest());
        }
    }
    let _ = (u.as_sip(), u.as_tel());

    // The scheme is case-insensitive.
    let upper = format!("{}{}", scheme.to_ascii_uppercase(), &s[scheme.len()..]);
    if let Ok(v) = Uri::parse(&upper) {
        assert!(
            u.equivalent(&v) && v.equivalent(u),
            "{s:?} and {upper:?} are not equivalent"
        );
    }

    // Any URI may stand in a name-addr.
    if !s.contains('>') {
        let na = format!("<{s}>");
        match headers::NameAddrHeader::parse(&na) {
            Ok(h) => assert_eq!(h.uri().as_str(), s, "name-addr changed the URI"),
            Err(e) => panic!("{na:?} is not a name-addr although {s:?} is a URI: {e}"),
        }
    }
}

fn check_host(h: &Host<'_>) {
    assert!(h.equivalent(h), "host not equivalent to itself: {h:?}");
    let _ = h.ip();
    let shown = h.to_string();
    match Host::parse(&shown) {
        Ok(h2) => assert!(
            h.equivalent(&h2) && h2.equivalent(h),
            "host {h:?} printed as {shown:?} parses as {h2:?}"
        ),
        Err(e) => panic!("host {h:?} printed as {shown:?} does not parse: {e}"),
    }
}

/// Builds a SIP message from `data` with the public builders and holds [`sip::RequestBuilder::build`]
/// / [`sip::ResponseBuilder::build`] (which index the lines as they write them, without parsing)
/// to the parse of the same message's bytes (`to_vec` + [`sip::OwnedMessage::parse`]):
///
/// - a message `build` gives is exactly what the parse gives: the same bytes, start line, headers
///   (name, spelling, value, offsets) and body, and the kept top Via and CSeq read the same;
/// - `build` fails only where the parse fails, or with its own refusals of what would not read
///   back as written (a header name that is not a token, a CR or LF in a value that does not
///   start a fold: [`sip::ErrorKind::HeaderName`], [`sip::ErrorKind::HeaderValue`]), pointing
///   inside the message it wrote.
///
/// Input: the first byte picks request or response and the start line's text; the rest is split
/// at NUL bytes into header name / value pairs (any text: empty names, CR and LF in values, folds,
/// blanks at the ends, non-tokens), a last lone piece becoming the body.
pub fn sip_builder(data: &[u8]) {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let pieces: Vec<std::borrow::Cow<'_, str>> = rest
        .split(|&b| b == 0)
        .map(String::from_utf8_lossy)
        .collect();
    let mut pairs = pieces.chunks_exact(2);
    let headers: Vec<(&str, &str)> = pairs.by_ref().map(|p| (&*p[0], &*p[1])).collect();
    let body = pairs.remainder().first().filter(|b| !b.is_empty());
    let pick = usize::from(first >> 1) % 4;
    // the same lines and body on either builder (they share their methods, not a trait)
    macro_rules! check_built {
        ($builder:expr) => {{
            let mut b = $builder;
            for (n, v) in &headers {
                b = b.header(n, v);
            }
            if let Some(body) = body {
                b = b.body("text/plain", body.as_bytes());
            }
            same_as_parsed(b.clone().build(), b.to_vec());
        }};
    }
    if first & 1 == 0 {
        let uri = [
            "sip:bob@example.com",
            "tel:+15551234",
            "not a uri",
            "sip:a@b\r\nX: y",
        ][pick];
        let method = [
            sip::Method::Register,
            sip::Method::Invite,
            sip::Method::Message,
            sip::Method::Notify,
        ][usize::from(first >> 3) % 4];
        check_built!(sip::RequestBuilder::new(method, uri));
    } else {
        let reason = [None, Some("Fine"), Some(""), Some("a\r\nb")][pick];
        let code = [100, 180, 200, 302, 401, 486, 503, 699][usize::from(first >> 3) % 8];
        check_built!(sip::ResponseBuilder::new(code, reason));
    }
}

/// The [`sip_builder`] oracle: `built` is what the parse of `bytes` gives.
fn same_as_parsed(built: Result<sip::OwnedMessage, ParseError>, bytes: Vec<u8>) {
    let len = bytes.len();
    let parsed = sip::OwnedMessage::parse(bytes.into());
    let (b, p) = match (built, parsed) {
        (Ok(b), Ok(p)) => (b, p),
        (Ok(b), Err(p)) => panic!("build gave {b:?}, the parse of its bytes failed: {p}"),
        (Err(e), parsed) => {
            // the builder's own refusals may come first, and may refuse text the parse reads
            // as another message (an injected blank line ends the header section early)
            let own = matches!(
                e.kind,
                sip::ErrorKind::HeaderName | sip::ErrorKind::HeaderValue
            );
            assert!(
                own || parsed.is_err(),
                "build failed ({e}) where the parse of its bytes succeeded"
            );
            assert!(e.offset <= len, "build's error {e} points past its message");
            return;
        }
    };
    assert_eq!(b.bytes(), p.bytes(), "built bytes differ from to_vec");
    let (bm, pm) = (b.as_message(), p.as_message());
    assert_eq!(bm.start_line_str(), pm.start_line_str());
    assert_eq!(bm.method(), pm.method());
    assert_eq!(bm.status(), pm.status());
    assert_eq!(bm.reason(), pm.reason());
    assert_eq!(bm.request_uri_str(), pm.request_uri_str());
    assert_eq!(bm.header_count(), pm.header_count());
    for (x, y) in bm.headers().zip(pm.headers()) {
        assert_eq!(
            (x.name(), x.raw_name(), x.value(), x.value_offset()),
            (y.name(), y.raw_name(), y.value(), y.value_offset()),
            "a header is indexed differently"
        );
    }
    assert_eq!(bm.body(), pm.body());
    assert_eq!(bm.body_offset(), pm.body_offset());
    assert_eq!(
        format!("{:?}", bm.top_via()),
        format!("{:?}", pm.top_via()),
        "top Via"
    );
    assert_eq!(
        format!("{:?}", bm.cseq()),
        format!("{:?}", pm.cseq()),
        "CSeq"
    );
}
