//! RFC 4475 and RFC 5118 torture messages: every vector in `tests/vectors/sip-torture` (copied from
//! `shared/vectors`) gets the verdict its INDEX.md gives.

use ims::sip::{
    self, headers, parse_datagram, validate, ErrorKind, HeaderName, Host, Message, Method,
    ParserConfig, Role, Uri, ValidationConfig,
};

fn load(name: &str) -> Vec<u8> {
    let p = format!(
        "{}/tests/vectors/sip-torture/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&p).unwrap_or_else(|e| panic!("{p}: {e}"))
}

fn uas() -> ValidationConfig {
    ValidationConfig::default()
}

fn proxy() -> ValidationConfig {
    ValidationConfig {
        role: Role::Proxy,
        ..Default::default()
    }
}

/// VALID: parses, validates, and an untouched edit re-serializes byte for byte.
fn valid(raw: &[u8]) -> Message<'_> {
    let m = parse_datagram(raw).unwrap_or_else(|e| panic!("parse failed: {e}"));
    if let Err(r) = validate(&m, &uas()) {
        panic!("validate refused a valid message: {r}");
    }
    assert_eq!(
        m.edit().to_vec(),
        m.as_bytes(),
        "untouched message must re-serialize byte for byte"
    );
    for v in m.via() {
        v.expect("every Via parses");
    }
    m
}

/// PARSES: syntax is fine; returns the message for the higher-layer checks.
fn parses(raw: &[u8]) -> Message<'_> {
    let m = parse_datagram(raw).unwrap_or_else(|e| panic!("parse failed: {e}"));
    assert_eq!(m.edit().to_vec(), m.as_bytes());
    m
}

fn rejected_by_parse(raw: &[u8]) -> sip::ParseError {
    match parse_datagram(raw) {
        Ok(m) => panic!("parse accepted an invalid message: {m:?}"),
        Err(e) => e,
    }
}

fn status(raw: &[u8], cfg: &ValidationConfig) -> u16 {
    let m = parse_datagram(raw).unwrap_or_else(|e| panic!("parse failed: {e}"));
    match validate(&m, cfg) {
        Ok(()) => 200,
        Err(r) => r.status,
    }
}

// ---- RFC 4475 §3.1.1: valid messages ----

#[test]
fn rfc4475_3_1_1_1_wsinv() {
    let raw = load("wsinv.dat");
    let m = valid(&raw);
    assert_eq!(m.method(), Some(Method::Invite));
    assert_eq!(
        m.request_uri_str(),
        Some("sip:vivekg@chair-dnrc.example.com;unknownparam")
    );
    assert_eq!(m.to().unwrap().unwrap().tag(), Some("1918181833n"));
    assert_eq!(m.from().unwrap().unwrap().tag(), Some("98asjd8"));
    assert_eq!(
        m.from().unwrap().unwrap().display_name().as_deref(),
        Some("J Rosenberg \\\"")
    );
    assert_eq!(m.max_forwards().unwrap(), Some(68));
    let cseq = m.cseq().unwrap().unwrap();
    assert_eq!((cseq.seq, cseq.method), (9, Method::Invite));
    let vias: Vec<_> = m.via().map(Result::unwrap).collect();
    assert_eq!(vias.len(), 3);
    assert_eq!(vias[0].transport(), "UDP");
    assert_eq!(vias[0].host(), Host::Ipv4("192.0.2.2".parse().unwrap()));
    assert_eq!(vias[0].branch(), Some("390skdjuw"));
    assert_eq!(vias[1].transport(), "TCP");
    assert_eq!(vias[1].branch(), Some("z9hG4bK9ikj8"));
    assert_eq!(
        vias[2].host(),
        Host::Ipv4("192.168.255.111".parse().unwrap())
    );
    assert_eq!(vias[2].branch(), Some("z9hG4bK30239"));
    assert_eq!(m.body().len(), 150);
    assert_eq!(m.header(HeaderName::Subject), Some(""));
    assert!(m
        .header_str("NewFangledHeader")
        .unwrap()
        .starts_with("newfangled value"));
    assert_eq!(
        m.header_str("UnknownHeaderWithUnusualValue"),
        Some(";;,,;;,;")
    );
    let c = m.contacts().next().unwrap().unwrap();
    assert_eq!(
        c.addr().unwrap().display_name().as_deref(),
        Some("Quoted string \"\"")
    );
    assert_eq!(c.params().get("newparam"), Some(Some("newvalue")));
    assert!(c.params().contains("secondparam"));
    assert_eq!(c.q(), Some(330));
    let route = m.get::<headers::Route>().unwrap().unwrap();
    assert!(route.uri().as_sip().unwrap().lr());
}

#[test]
fn rfc4475_3_1_1_2_intmeth() {
    let raw = load("intmeth.dat");
    let m = valid(&raw);
    let method = m.method().unwrap();
    assert_eq!(
        method,
        Method::Other("!interesting-Method0123456789_*+`.%indeed'~")
    );
    assert_eq!(m.cseq().unwrap().unwrap().method, method);
    let ruri = m.request_uri().unwrap();
    let sip = ruri.as_sip().unwrap();
    assert_eq!(
        sip.user(),
        Some("1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*")
    );
    assert_eq!(
        sip.password(),
        Some("&it+has=1,weird!*pas$wo~d_too.(doesn't-it)")
    );
    assert_eq!(sip.host(), Host::Domain("example.com"));
    let to = m.to().unwrap().unwrap();
    assert_eq!(
        to.display_name().as_deref(),
        Some("BEL:\x07 NUL:\x00 DEL:\x7f")
    );
    let from = m.from().unwrap().unwrap();
    assert_eq!(
        from.addr.display_name_raw(),
        Some("token1~` token2'+_ token3*%!.-")
    );
    assert_eq!(from.tag(), Some("_token~1'+`*%!-."));
    assert_eq!(
        m.call_id().unwrap().unwrap().as_str(),
        "intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{"
    );
    assert_eq!(m.max_forwards().unwrap(), Some(255));
    assert!(m
        .header_str("extensionHeader-!.%*+_`'~")
        .unwrap()
        .starts_with('\u{feff}'));
    // an endpoint that implements only the usual methods answers 501
    let cfg = ValidationConfig {
        methods: Some(vec!["INVITE".into(), "ACK".into(), "BYE".into()]),
        ..uas()
    };
    assert_eq!(validate(&m, &cfg).unwrap_err().status, 501);
}

#[test]
fn rfc4475_3_1_1_3_esc01() {
    let raw = load("esc01.dat");
    let m = valid(&raw);
    let ruri = m.request_uri().unwrap();
    let u = ruri.as_sip().unwrap();
    assert_eq!(
        u.user(),
        Some("sips%3Auser%40example.com"),
        "escaped user, not a sips URI"
    );
    assert_eq!(u.user_decoded().unwrap().as_ref(), b"sips:user@example.com");
    assert_eq!(u.host(), Host::Domain("example.net"));
    let to = m.to().unwrap().unwrap();
    assert!(to
        .uri()
        .equivalent(&Uri::parse("sip:user@example.com").unwrap()));
    let c = m.contacts().next().unwrap().unwrap();
    assert!(c
        .uri()
        .unwrap()
        .equivalent(&Uri::parse("sip:caller@host5.example.net;lr;name=value%25%34%31").unwrap()));
    assert_eq!(
        m.header(HeaderName::CallId),
        Some("esc01.239409asdfakjkn23onasd0-3234")
    );
    assert_eq!(m.header(HeaderName::ContentType), Some("application/sdp"));
}

#[test]
fn rfc4475_3_1_1_4_escnull() {
    let raw = load("escnull.dat");
    let m = valid(&raw);
    let to = m.to().unwrap().unwrap();
    let user = to.uri().as_sip().unwrap().user_decoded().unwrap();
    assert_eq!(
        user.as_ref(),
        b"null-\0-null",
        "must not truncate at the decoded NUL"
    );
    let contacts: Vec<_> = m.contacts().map(Result::unwrap).collect();
    assert_eq!(contacts.len(), 2);
    assert_eq!(
        contacts[1]
            .uri()
            .unwrap()
            .as_sip()
            .unwrap()
            .user_decoded()
            .unwrap()
            .as_ref(),
        b"\0\0"
    );
    assert_eq!(m.content_length(), Some(0));
}

#[test]
fn rfc4475_3_1_1_5_esc02() {
    let raw = load("esc02.dat");
    let m = valid(&raw);
    assert_eq!(
        m.method(),
        Some(Method::Other("RE%47IST%45R")),
        "not REGISTER"
    );
    assert_eq!(m.contacts().count(), 2, "C%6Fntact is not Contact");
    assert_eq!(
        m.header_str("C%6Fntact"),
        Some("<sip:alias2@host2.example.com>")
    );
    assert_eq!(
        m.to().unwrap().unwrap().display_name().as_deref(),
        Some("%Z%45")
    );
    assert_eq!(
        m.top_via().unwrap().unwrap().branch(),
        Some("z9hG4bK209%fzsnel234")
    );
}

#[test]
fn rfc4475_3_1_1_6_lwsdisp() {
    let raw = load("lwsdisp.dat");
    let m = valid(&raw);
    let f = m.from().unwrap().unwrap();
    assert_eq!(f.display_name().as_deref(), Some("caller"));
    assert_eq!(f.uri().as_str(), "sip:caller@example.com");
    assert_eq!(f.tag(), Some("323"));
}

#[test]
fn rfc4475_3_1_1_7_longreq() {
    let raw = load("longreq.dat");
    let m = valid(&raw);
    let vias: Vec<_> = m.via().map(Result::unwrap).collect();
    assert_eq!(vias.len(), 34);
    assert_eq!(vias[0].host(), Host::Domain("sip33.example.com"));
    assert!(vias[33].branch().unwrap().len() > 100);
    assert!(m.to().unwrap().unwrap().display_name().unwrap().len() > 70);
    assert!(m.call_id().unwrap().unwrap().as_str().len() > 100);
    assert!(m.from().unwrap().unwrap().tag().unwrap().len() > 100);
    assert!(m
        .headers()
        .any(|h| h.raw_name().starts_with("Unknown-LongLong")));
}

#[test]
fn rfc4475_3_1_1_8_dblreq() {
    let raw = load("dblreq.dat");
    let m = valid(&raw);
    assert_eq!(m.method(), Some(Method::Register));
    assert!(m.body().is_empty());
    assert!(
        raw.len() - m.len() > 400,
        "the trailing INVITE is not part of the message"
    );
    // the trailing bytes are a complete INVITE of their own
    let mut rest = &raw[m.len()..];
    while let Some(r) = rest.strip_prefix(b"\r\n") {
        rest = r;
    }
    let rest = parse_datagram(rest).unwrap();
    assert_eq!(rest.method(), Some(Method::Invite));
}

#[test]
fn rfc4475_3_1_1_9_semiuri() {
    let raw = load("semiuri.dat");
    let m = valid(&raw);
    let ruri = m.request_uri().unwrap();
    let u = ruri.as_sip().unwrap();
    assert_eq!(u.user(), Some("user;par=u%40example.net"));
    assert_eq!(u.host(), Host::Domain("example.com"));
    assert!(u.params().is_empty());
    let accept: Vec<_> = m
        .get_all::<headers::Accept>()
        .map(|a| a.unwrap().to_string())
        .collect();
    assert_eq!(
        accept,
        [
            "application/sdp",
            "application/pkcs7-mime",
            "multipart/mixed",
            "multipart/signed",
            "message/sip",
            "message/sipfrag"
        ]
    );
}

#[test]
fn rfc4475_3_1_1_10_transports() {
    let raw = load("transports.dat");
    let m = valid(&raw);
    let t: Vec<_> = m.via().map(|v| v.unwrap().transport()).collect();
    assert_eq!(t, ["UDP", "SCTP", "TLS", "UNKNOWN", "TCP"]);
    assert_eq!(
        m.call_id().unwrap().unwrap().as_str(),
        "transports.kijh4akdnaqjkwendsasfdj"
    );
}

#[test]
fn rfc4475_3_1_1_11_mpart01() {
    let raw = load("mpart01.dat");
    let m = valid(&raw);
    assert_eq!(m.body().len(), 553);
    let parts = m.multipart(&Default::default()).unwrap().unwrap();
    assert_eq!(parts.len(), 2);
    assert_eq!(parts[0].header("Content-Type"), Some("text/plain"));
    assert!(parts[0].body.starts_with(b"Hello"));
    assert!(parts[1]
        .header("Content-Type")
        .unwrap()
        .starts_with("application/octet-stream"));
    assert!(
        parts[1].body.contains(&b'\n') && parts[1].body.iter().any(|&b| b > 0x7f),
        "binary part kept byte for byte"
    );
    // the binary part is exactly the bytes between its headers and the closing delimiter
    let start = m
        .body()
        .windows(parts[1].body.len())
        .position(|w| w == parts[1].body)
        .unwrap();
    assert!(m.body()[start + parts[1].body.len()..].starts_with(b"\r\n--7a9cbec02ceef655--"));
}

#[test]
fn rfc4475_3_1_1_12_unreason() {
    let raw = load("unreason.dat");
    let m = valid(&raw);
    assert_eq!(m.status(), Some(200));
    assert_eq!(
        m.reason(),
        Some("= 2**3 * 5**2 но сто девяносто девять - простое")
    );
}

#[test]
fn rfc4475_3_1_1_13_noreason() {
    let raw = load("noreason.dat");
    let m = valid(&raw);
    assert_eq!(m.status(), Some(100));
    assert_eq!(m.reason(), Some(""));
}

// ---- RFC 4475 §3.1.2: invalid messages ----

#[test]
fn rfc4475_3_1_2_1_badinv01() {
    let raw = load("badinv01.dat");
    assert_eq!(status(&raw, &uas()), 400);
    let m = parse_datagram(&raw).unwrap();
    let e = m.via().find_map(Result::err).unwrap();
    assert_eq!(e.header, Some(HeaderName::Via));
    assert!(m.contacts().next().unwrap().is_err());
}

#[test]
fn rfc4475_3_1_2_2_clerr() {
    let raw = load("clerr.dat");
    assert_eq!(rejected_by_parse(&raw).kind, ErrorKind::BodyTruncated);
    // on a stream the parser waits for the rest
    assert!(matches!(
        sip::parse(&raw),
        Ok(sip::Status::Partial(Some(_)))
    ));
}

#[test]
fn rfc4475_3_1_2_3_ncl() {
    let e = rejected_by_parse(&load("ncl.dat"));
    assert_eq!(
        (e.kind, e.header),
        (ErrorKind::ContentLength, Some(HeaderName::ContentLength))
    );
}

#[test]
fn rfc4475_3_1_2_4_scalar02() {
    let raw = load("scalar02.dat");
    let m = parse_datagram(&raw).unwrap();
    let e = validate(&m, &uas()).unwrap_err();
    assert_eq!(e.status, 400);
    assert_eq!(e.error.unwrap().header, Some(HeaderName::CSeq));
    assert!(matches!(
        m.max_forwards().unwrap_err().kind,
        ErrorKind::Overflow(_)
    ));
    assert_eq!(
        m.contacts().next().unwrap().unwrap().expires(),
        Some(u32::MAX)
    );
}

#[test]
fn rfc4475_3_1_2_5_scalarlg() {
    let raw = load("scalarlg.dat");
    let m = parse_datagram(&raw).unwrap();
    assert_eq!(m.status(), Some(503));
    assert!(
        validate(&m, &uas()).is_err(),
        "a receiver discards this response"
    );
    assert!(m.cseq().is_err());
    assert!(m.get::<headers::RetryAfter>().is_err());
    assert!(m.get::<headers::Warning>().is_err(), "four-digit warn-code");
}

#[test]
fn rfc4475_3_1_2_6_quotbal() {
    let raw = load("quotbal.dat");
    assert_eq!(status(&raw, &uas()), 400);
    assert!(parse_datagram(&raw).unwrap().to().is_err());
}

#[test]
fn rfc4475_3_1_2_7_ltgtruri() {
    assert_eq!(
        rejected_by_parse(&load("ltgtruri.dat")).kind,
        ErrorKind::RequestUri
    );
}

#[test]
fn rfc4475_3_1_2_8_lwsruri() {
    assert_eq!(
        rejected_by_parse(&load("lwsruri.dat")).kind,
        ErrorKind::RequestUri
    );
}

#[test]
fn rfc4475_3_1_2_9_lwsstart() {
    assert_eq!(
        rejected_by_parse(&load("lwsstart.dat")).kind,
        ErrorKind::RequestUri
    );
}

#[test]
fn rfc4475_3_1_2_10_trws() {
    assert_eq!(
        rejected_by_parse(&load("trws.dat")).kind,
        ErrorKind::Version
    );
}

#[test]
fn rfc4475_3_1_2_11_escruri() {
    let raw = load("escruri.dat");
    let m = parse_datagram(&raw).unwrap();
    assert_eq!(
        m.request_uri().unwrap().as_sip().unwrap().headers(),
        Some("Route=%3Csip:example.com%3E")
    );
    assert_eq!(validate(&m, &uas()).unwrap_err().status, 400);
    assert_eq!(validate(&m, &proxy()).unwrap_err().status, 400);
}

#[test]
fn rfc4475_3_1_2_12_baddate() {
    let raw = load("baddate.dat");
    let m = parse_datagram(&raw).unwrap();
    let r = validate(&m, &uas()).unwrap_err();
    assert_eq!(
        (r.status, r.error.unwrap().header),
        (400, Some(HeaderName::Date))
    );
}

#[test]
fn rfc4475_3_1_2_13_regbadct() {
    let raw = load("regbadct.dat");
    let m = parse_datagram(&raw).unwrap();
    let r = validate(&m, &uas()).unwrap_err();
    assert_eq!(
        (r.status, r.error.unwrap().header),
        (400, Some(HeaderName::Contact))
    );
}

#[test]
fn rfc4475_3_1_2_14_badaspec() {
    let raw = load("badaspec.dat");
    let m = parse_datagram(&raw).unwrap();
    assert_eq!(
        m.from().unwrap().unwrap().display_name().as_deref(),
        Some("Bell, Alexander")
    );
    let r = validate(&m, &uas()).unwrap_err();
    assert_eq!(
        (r.status, r.error.unwrap().header),
        (400, Some(HeaderName::To))
    );
}

#[test]
fn rfc4475_3_1_2_15_baddn() {
    // the archive's file lacks the empty line that ends the header section
    assert_eq!(
        rejected_by_parse(&load("baddn.dat")).kind,
        ErrorKind::UnterminatedHeaders
    );
    let raw = load("rfc4475-variants/baddn-terminated.dat");
    let m = parse_datagram(&raw).unwrap();
    assert!(m.from().is_err());
    let r = validate(&m, &uas()).unwrap_err();
    assert_eq!(
        (r.status, r.error.unwrap().header),
        (400, Some(HeaderName::From))
    );
}

#[test]
fn rfc4475_3_1_2_16_badvers() {
    let raw = load("badvers.dat");
    let m = parse_datagram(&raw).unwrap();
    assert_eq!(m.version(), sip::Version { major: 7, minor: 0 });
    assert_eq!(validate(&m, &uas()).unwrap_err().status, 505);
}

#[test]
fn rfc4475_3_1_2_17_mismatch01() {
    assert_eq!(status(&load("mismatch01.dat"), &uas()), 400);
}

#[test]
fn rfc4475_3_1_2_18_mismatch02() {
    let raw = load("mismatch02.dat");
    assert_eq!(status(&raw, &uas()), 501);
    assert_eq!(status(&raw, &proxy()), 400);
    assert_eq!(parse_datagram(&raw).unwrap().body().len(), 138);
}

#[test]
fn rfc4475_3_1_2_19_bigcode() {
    assert_eq!(
        rejected_by_parse(&load("bigcode.dat")).kind,
        ErrorKind::StatusCode
    );
}

// ---- RFC 4475 §3.2-3.4: syntactically valid, refused or handled above the parser ----

#[test]
fn rfc4475_3_2_1_badbranch() {
    let raw = load("badbranch.dat");
    let m = parses(&raw);
    assert_eq!(status(&raw, &uas()), 200);
    let v = m.top_via().unwrap().unwrap();
    assert_eq!(v.branch(), Some("z9hG4bK"));
    assert!(
        !v.has_rfc3261_branch(),
        "the bare cookie cannot identify a transaction"
    );
}

#[test]
fn rfc4475_3_3_1_insuf() {
    let raw = load("insuf.dat");
    parses(&raw);
    let m = parse_datagram(&raw).unwrap();
    let r = validate(&m, &uas()).unwrap_err();
    assert_eq!((r.status, r.error.unwrap().kind), (400, ErrorKind::Missing));
}

#[test]
fn rfc4475_3_3_2_unkscm() {
    let raw = load("unkscm.dat");
    let m = parses(&raw);
    assert!(
        matches!(m.request_uri().unwrap(), Uri::Other(u) if u.scheme() == "nobodyKnowsThisScheme")
    );
    assert_eq!(status(&raw, &uas()), 416);
    assert_eq!(status(&raw, &proxy()), 416);
}

#[test]
fn rfc4475_3_3_3_novelsc() {
    let raw = load("novelsc.dat");
    let m = parses(&raw);
    assert_eq!(m.request_uri().unwrap().scheme(), "soap.beep");
    assert_eq!(status(&raw, &uas()), 416);
    let cfg = ValidationConfig {
        schemes: vec!["sip".into(), "soap.beep".into()],
        ..uas()
    };
    assert_eq!(status(&raw, &cfg), 200);
}

#[test]
fn rfc4475_3_3_4_unksm2() {
    let raw = load("unksm2.dat");
    let m = parses(&raw);
    assert_eq!(status(&raw, &uas()), 200);
    assert_eq!(m.to().unwrap().unwrap().uri().scheme(), "isbn");
    assert_eq!(
        m.from().unwrap().unwrap().uri().as_str(),
        "http://www.example.com"
    );
    assert_eq!(
        m.contacts()
            .next()
            .unwrap()
            .unwrap()
            .uri()
            .unwrap()
            .as_str(),
        "name:John_Smith"
    );
}

#[test]
fn rfc4475_3_3_5_bext01() {
    let raw = load("bext01.dat");
    parses(&raw);
    let m = parse_datagram(&raw).unwrap();
    let r = validate(&m, &uas()).unwrap_err();
    assert_eq!(r.status, 420);
    assert_eq!(
        r.unsupported,
        ["nothingSupportsThis", "nothingSupportsThisEither"]
    );
    let r = validate(&m, &proxy()).unwrap_err();
    assert_eq!(r.status, 420);
    assert_eq!(
        r.unsupported,
        ["noProxiesSupportThis", "norDoAnyProxiesSupportThis"]
    );
}

#[test]
fn rfc4475_3_3_6_invut() {
    let raw = load("invut.dat");
    parses(&raw);
    assert_eq!(status(&raw, &uas()), 415);
    assert_eq!(
        status(&raw, &proxy()),
        200,
        "a proxy does not look at the body"
    );
}

#[test]
fn rfc4475_3_3_7_regaut01() {
    let raw = load("regaut01.dat");
    let m = parses(&raw);
    assert_eq!(
        status(&raw, &uas()),
        200,
        "the registrar then challenges with 401"
    );
    let a = m.get::<headers::Authorization>().unwrap().unwrap();
    assert_eq!(a.scheme, "NoOneKnowsThisScheme");
    assert!(!a.is_digest());
    assert_eq!(a.param("opaque-data").as_deref(), Some("here"));
    assert_eq!(m.content_length(), Some(0));
}

#[test]
fn rfc4475_3_3_8_multi01() {
    let raw = load("multi01.dat");
    parses(&raw);
    assert_eq!(status(&raw, &uas()), 400);
    assert_eq!(status(&raw, &proxy()), 400);
}

#[test]
fn rfc4475_3_3_9_mcl01() {
    let raw = load("mcl01.dat");
    let m = parses(&raw);
    assert!(m.content_length_conflict());
    assert_eq!(status(&raw, &uas()), 400);
    assert_eq!(
        sip::parse(&raw).unwrap_err().kind,
        ErrorKind::ContentLengthConflict,
        "a stream cannot be framed"
    );
}

#[test]
fn rfc4475_3_3_10_bcast() {
    let raw = load("bcast.dat");
    let m = parses(&raw);
    assert_eq!(status(&raw, &uas()), 200);
    let v: Vec<_> = m.via().map(Result::unwrap).collect();
    assert_eq!(v[1].host(), Host::Ipv4(std::net::Ipv4Addr::BROADCAST));
}

#[test]
fn rfc4475_3_3_11_zeromf() {
    let raw = load("zeromf.dat");
    let m = parses(&raw);
    assert_eq!(m.max_forwards().unwrap(), Some(0));
    assert_eq!(status(&raw, &proxy()), 483);
    assert_eq!(status(&raw, &uas()), 200);
    assert!(m.edit().decrement_max_forwards().is_err());
}

#[test]
fn rfc4475_3_3_12_cparam01() {
    let raw = load("cparam01.dat");
    let m = parses(&raw);
    assert_eq!(status(&raw, &uas()), 200);
    let c = m.contacts().next().unwrap().unwrap();
    assert!(
        c.params().contains("unknownparam"),
        "a contact param, not a URI param"
    );
    assert!(c.uri().unwrap().as_sip().unwrap().params().is_empty());
}

#[test]
fn rfc4475_3_3_13_cparam02() {
    let raw = load("cparam02.dat");
    let m = parses(&raw);
    assert_eq!(status(&raw, &uas()), 200);
    let c = m.contacts().next().unwrap().unwrap();
    assert!(c.params().is_empty());
    assert!(
        c.uri()
            .unwrap()
            .as_sip()
            .unwrap()
            .params()
            .contains("unknownparam"),
        "a URI param"
    );
}

#[test]
fn rfc4475_3_3_14_regescrt() {
    let raw = load("regescrt.dat");
    let m = parses(&raw);
    assert_eq!(status(&raw, &uas()), 200);
    let c = m.contacts().next().unwrap().unwrap();
    let u = c.uri().unwrap();
    let pairs: Vec<_> = u.as_sip().unwrap().header_pairs().collect();
    assert_eq!(pairs, [("Route", "%3Csip:sip.example.com%3E")]);
    assert_eq!(m.content_length(), Some(0));
}

#[test]
fn rfc4475_3_3_15_sdp01() {
    let raw = load("sdp01.dat");
    parses(&raw);
    assert_eq!(status(&raw, &uas()), 406);
}

#[test]
fn rfc4475_3_4_1_inv2543() {
    let raw = load("inv2543.dat");
    let m = parses(&raw);
    assert_eq!(status(&raw, &uas()), 200);
    assert_eq!(m.content_length(), None);
    assert_eq!(
        m.body().len(),
        raw.len() - m.body_offset(),
        "body runs to the end of the datagram"
    );
    let v = m.top_via().unwrap().unwrap();
    assert_eq!(v.branch(), None);
    assert_eq!(m.from().unwrap().unwrap().tag(), None);
    assert_eq!(m.max_forwards().unwrap(), None);
    let rr = m.get::<headers::RecordRoute>().unwrap().unwrap();
    assert_eq!(rr.uri().as_sip().unwrap().maddr(), Some("ss1.example.com"));
    assert!(
        sip::parse(&raw).is_err(),
        "no Content-Length is fatal on a stream"
    );
}

// ---- RFC 5118 ----

#[test]
fn rfc5118_4_1_ipv6_good() {
    let raw = load("ipv6-good.dat");
    let m = valid(&raw);
    let ruri = m.request_uri().unwrap();
    assert_eq!(ruri.as_sip().unwrap().host(), Host::Ipv6("2001:db8::10"));
    assert_eq!(
        m.top_via().unwrap().unwrap().host().ip(),
        Some("2001:db8::9:1".parse().unwrap())
    );
    let c = m.contacts().next().unwrap().unwrap();
    assert_eq!(
        c.uri().unwrap().as_sip().unwrap().host(),
        Host::Ipv6("2001:db8::1")
    );
}

#[test]
fn rfc5118_4_2_ipv6_bad() {
    assert_eq!(
        rejected_by_parse(&load("ipv6-bad.dat")).kind,
        ErrorKind::RequestUri
    );
}

#[test]
fn rfc5118_4_3_port_ambiguous() {
    let raw = load("port-ambiguous.dat");
    let m = valid(&raw);
    let ruri = m.request_uri().unwrap();
    let u = ruri.as_sip().unwrap();
    assert_eq!(u.host(), Host::Ipv6("2001:db8::10:5070"));
    assert_eq!(u.port(), None);
}

#[test]
fn rfc5118_4_4_port_unambiguous() {
    let raw = load("port-unambiguous.dat");
    let m = valid(&raw);
    let ruri = m.request_uri().unwrap();
    let u = ruri.as_sip().unwrap();
    assert_eq!(u.host(), Host::Ipv6("2001:db8::10"));
    assert_eq!(u.port(), Some(5070));
}

#[test]
fn rfc5118_4_5_via_received_param_with_delim() {
    let raw = load("via-received-param-with-delim.dat");
    let m = valid(&raw);
    let v = m.top_via().unwrap().unwrap();
    assert_eq!(v.received(), Some("[2001:db8::9:255]"));
    assert_eq!(v.received_ip(), Some("2001:db8::9:255".parse().unwrap()));
}

#[test]
fn rfc5118_4_5_via_received_param_no_delim() {
    let raw = load("via-received-param-no-delim.dat");
    let m = valid(&raw);
    let v = m.top_via().unwrap().unwrap();
    assert_eq!(v.received_ip(), Some("2001:db8::9:255".parse().unwrap()));
}

#[test]
fn rfc5118_4_6_ipv6_in_sdp() {
    let raw = load("ipv6-in-sdp.dat");
    let m = valid(&raw);
    assert_eq!(m.body().len(), 251);
    assert!(std::str::from_utf8(m.body()).unwrap().contains("IN IP6"));
}

#[test]
fn rfc5118_4_7_mult_ip_in_header() {
    let raw = load("mult-ip-in-header.dat");
    let m = valid(&raw);
    let v: Vec<_> = m.via().map(Result::unwrap).collect();
    assert_eq!(v.len(), 3);
    assert_eq!(
        (v[0].host(), v[0].port()),
        (Host::Ipv6("2001:db8::9:1"), Some(6050))
    );
    assert_eq!(v[1].host(), Host::Ipv4("192.0.2.1".parse().unwrap()));
    assert_eq!(v[2].received_ip(), Some("192.0.2.200".parse().unwrap()));
}

#[test]
fn rfc5118_4_8_mult_ip_in_sdp() {
    let raw = load("mult-ip-in-sdp.dat");
    let m = valid(&raw);
    assert_eq!(m.body().len(), 189);
}

#[test]
fn rfc5118_4_9_ipv4_mapped_ipv6() {
    let raw = load("ipv4-mapped-ipv6.dat");
    let m = valid(&raw);
    let v = m.top_via().unwrap().unwrap();
    assert_eq!(
        (v.host().ip(), v.port()),
        (Some("::ffff:192.0.2.10".parse().unwrap()), Some(19823))
    );
    assert_eq!(m.body().len(), 245);
}

#[test]
fn rfc5118_4_10_ipv6_bug_abnf_3_colons() {
    let raw = load("ipv6-bug-abnf-3-colons.dat");
    let m = valid(&raw);
    let ruri = m.request_uri().unwrap();
    let h = ruri.as_sip().unwrap().host();
    assert_eq!(h, Host::Ipv6("2001:db8:::192.0.2.1"));
    assert_eq!(
        h.ip(),
        Some("2001:db8::192.0.2.1".parse().unwrap()),
        "tolerated as the two-colon form"
    );
}

#[test]
fn rfc5118_4_10_ipv6_correct_abnf_2_colons() {
    let raw = load("ipv6-correct-abnf-2-colons.dat");
    let m = valid(&raw);
    let ruri = m.request_uri().unwrap();
    assert_eq!(
        ruri.as_sip().unwrap().host().ip(),
        Some("2001:db8::192.0.2.1".parse().unwrap())
    );
}

/// The byte-exact RFC 5118 archive members use bare LF; the leniency switch reads them, and the
/// two whose header section is not closed are refused as unterminated.
#[test]
fn rfc5118_archive_members_with_lf_switch() {
    let lenient = ParserConfig {
        allow_lf_line_endings: true,
        ..Default::default()
    };
    let dir = format!(
        "{}/tests/vectors/sip-torture/rfc5118-archive",
        env!("CARGO_MANIFEST_DIR")
    );
    let mut n = 0;
    for e in std::fs::read_dir(dir).unwrap() {
        let path = e.unwrap().path();
        let raw = std::fs::read(&path).unwrap();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        assert_eq!(
            parse_datagram(&raw).unwrap_err().kind,
            ErrorKind::BareLf,
            "{name}: strict mode wants CRLF"
        );
        let r = lenient.parse_datagram(&raw);
        match name.as_str() {
            "ipv6-bug-abnf-3-colons.dat" | "ipv6-correct-abnf-2-colons.dat" => {
                assert_eq!(
                    r.unwrap_err().kind,
                    ErrorKind::UnterminatedHeaders,
                    "{name}"
                )
            }
            "ipv6-bad.dat" => assert_eq!(r.unwrap_err().kind, ErrorKind::RequestUri),
            // archive Content-Length values that exceed the LF body are refused on a datagram
            "ipv6-in-sdp.dat" | "mult-ip-in-sdp.dat" => {
                let e = r.unwrap_err();
                assert_eq!(e.kind, ErrorKind::BodyTruncated, "{name}");
            }
            _ => {
                let m = r.unwrap_or_else(|e| panic!("{name}: {e}"));
                validate(&m, &uas()).unwrap_or_else(|e| panic!("{name}: {e}"));
            }
        }
        n += 1;
    }
    assert_eq!(n, 12);
}
