//! Every typed header: parse a realistic value (RFC / 3GPP examples), check the fields, write it
//! back with `Display` and parse that again.

use ims_sip::headers::*;
use ims_sip::{HeaderName, Method, Uri};

/// Parses `v`, renders it with `Display`, parses the rendering and checks it renders the same.
fn rt<T>(v: &'static str) -> T
where
    T: TypedHeader<'static> + std::fmt::Display,
{
    let t = T::parse(v).unwrap_or_else(|e| panic!("{v}: {e}"));
    let shown: &'static str = Box::leak(t.to_string().into_boxed_str());
    let again = T::parse(shown).unwrap_or_else(|e| panic!("re-rendered {shown:?}: {e}"));
    assert_eq!(again.to_string(), shown, "{v}");
    t
}

#[test]
fn via() {
    let v: Via = rt("SIP/2.0/TCP [2001:db8::9:1]:5061;branch=z9hG4bK-1;received=192.0.2.1;rport=5060;ttl=16;maddr=224.2.0.1");
    assert_eq!(v.transport(), "TCP");
    assert_eq!(v.port(), Some(5061));
    assert_eq!(v.rport(), Some(Some(5060)));
    assert_eq!(v.ttl(), Some(16));
    assert_eq!(v.maddr(), Some("224.2.0.1"));
    assert!(v.has_rfc3261_branch());
    for bad in [
        "SIP/2.0/UDP",
        "SIP/2.0 UDP h",
        "SIP/2.0/UDP h;branch",
        "SIP/2.0/UDP h;rport=70000",
        "SIP/2.0/UDP h;received=host.example.com",
        "SIP/2.0/UDP h;ttl=256",
        "SIP/2.0/UDP h:99999",
        "SIP/2.0/UDP h;;x",
    ] {
        assert!(Via::parse(bad).is_err(), "{bad}");
    }
}

#[test]
fn from_to_and_name_addr_family() {
    let f: From = rt("\"Alice \\\"A\\\"\" <sip:alice@atlanta.example.com>;tag=88sja8x");
    assert_eq!(f.display_name().as_deref(), Some("Alice \"A\""));
    assert_eq!(f.tag(), Some("88sja8x"));
    let t: To = rt("sip:bob@biloxi.example.com;tag=a6c85cf");
    assert!(!t.addr.is_name_addr());
    assert_eq!(t.tag(), Some("a6c85cf"));
    let r: Route = rt("<sip:p1.example.com;lr>");
    assert!(r.uri().as_sip().unwrap().lr());
    assert!(
        Route::parse("sip:p1.example.com;lr").is_err(),
        "rec-route needs name-addr"
    );
    let _: RecordRoute = rt("<sip:mo@10.10.0.10:5060;lr;ftag=9a3c2e1b>");
    let _: Path = rt("<sip:term@pcscf.example.com;lr>");
    let _: ServiceRoute = rt("<sip:orig@scscf.example.com:6060;lr>");
    let p: PAssertedIdentity = rt("\"Cullen Jennings\" <sip:fluffy@cisco.com>");
    assert_eq!(p.display_name().as_deref(), Some("Cullen Jennings"));
    let p: PAssertedIdentity = rt("tel:+14085264000");
    assert!(matches!(p.uri(), Uri::Tel(_)));
    let _: PPreferredIdentity = rt("<sip:user1@example.com>");
    let _: PAssociatedUri = rt("<sip:+447700900123@ims.example.com;user=phone>");
    let _: PCalledPartyId = rt("<sip:user1-business@example.com>");
    let s: PServedUser = rt("<sip:user@example.com>;sescase=orig;regstate=reg");
    assert_eq!(s.params.get("sescase"), Some(Some("orig")));
    let r: ReferTo = rt("<sip:bob@biloxi.example.com?Replaces=12345%40192.168.118.3%3Bto-tag%3D12345%3Bfrom-tag%3D5FFE-3994>");
    assert!(r
        .uri()
        .as_sip()
        .unwrap()
        .headers()
        .unwrap()
        .starts_with("Replaces="));
    let _: ReferredBy =
        rt("<sip:referrer@atlanta.example.com>;cid=\"20398823.2UWQFN309shb3@atlanta.example.com\"");
    let _: ReplyTo = rt("Bob <sip:bob@biloxi.example.com>");
}

#[test]
fn contact() {
    let c: Contact = rt("\"Mr. Watson\" <sip:watson@worcester.example.com>;q=0.7;expires=3600;+sip.instance=\"<urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6>\";reg-id=1;+g.3gpp.icsi-ref=\"urn%3Aurn-7%3A3gpp-service.ims.icsi.mmtel\";audio");
    assert_eq!(c.q(), Some(700));
    assert_eq!(c.expires(), Some(3600));
    assert_eq!(
        c.instance().as_deref(),
        Some("<urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6>")
    );
    assert_eq!(c.reg_id(), Some(1));
    assert_eq!(
        c.feature("+g.3gpp.icsi-ref").as_deref(),
        Some("urn%3Aurn-7%3A3gpp-service.ims.icsi.mmtel")
    );
    assert!(c.has_feature("audio"));
    assert_eq!(Contact::parse("*").unwrap(), Contact::Star);
    assert!(Contact::parse("<sip:a@b.c>;q=1.5").is_err());
    assert!(Contact::parse("<sip:a@b.c>;expires=soon").is_err());
    assert_eq!(
        Contact::parse("<sip:a@b.c>;expires=99999999999999")
            .unwrap()
            .expires(),
        Some(u32::MAX)
    );
}

#[test]
fn scalars() {
    let c: CSeq = rt("4711 INVITE");
    assert_eq!((c.seq, c.method), (4711, Method::Invite));
    assert_eq!(
        rt::<CallId>("a84b4c76e66710@pc33.atlanta.example.com").0,
        "a84b4c76e66710@pc33.atlanta.example.com"
    );
    assert!(CallId::parse("a b").is_err());
    assert_eq!(rt::<MaxForwards>("70").0, 70);
    assert!(MaxForwards::parse("256").is_err());
    assert_eq!(rt::<Expires>("600000").0, 600000);
    assert_eq!(rt::<MinExpires>("3600").0, 3600);
    assert_eq!(rt::<ContentLength>("0").0, 0);
    assert_eq!(rt::<RSeq>("988789").0, 988789);
    let r: RAck = rt("776656 1 INVITE");
    assert_eq!((r.rseq, r.cseq, r.method), (776656, 1, Method::Invite));
    let s: SessionExpires = rt("1800;refresher=uac");
    assert_eq!((s.delta, s.refresher()), (1800, Some("uac")));
    assert_eq!(rt::<MinSe>("90").delta, 90);
    let ra: RetryAfter = rt("18000;duration=3600");
    assert_eq!(ra.delta, 18000);
    let ra: RetryAfter = rt("120 (I'm in a meeting)");
    assert_eq!(ra.comment, Some("(I'm in a meeting)"));
    let d: Date = rt("Sat, 13 Nov 2010 23:29:00 GMT");
    assert_eq!((d.weekday, d.minute), (5, 29));
    let ts: Timestamp = rt("54.21 0.3");
    assert_eq!((ts.value, ts.delay), ("54.21", Some("0.3")));
    assert_eq!(rt::<Subject>("Need more boxes").0, "Need more boxes");
    assert_eq!(rt::<UserAgent>("Softphone Beta1.5").0, "Softphone Beta1.5");
    assert_eq!(rt::<Server>("HomeServer v2").0, "HomeServer v2");
    assert_eq!(rt::<Priority>("emergency").0, "emergency");
    assert_eq!(
        rt::<InReplyTo>("70710@saturn.bell-tel.com").0 .0,
        "70710@saturn.bell-tel.com"
    );
}

#[test]
fn auth() {
    let a = Authorization::parse(r#"Digest username="user1@home1.net", realm="home1.net", nonce="A34Cm+Fva37UYWpGNB34JP", algorithm=AKAv1-MD5, uri="sip:home1.net", response="6629fae49393a05397450978507c4ef1", qop=auth, nc=00000001, cnonce="0a4f113b", auts="CjkyMzRfOiwg5CfsJ2w=""#).unwrap();
    assert!(a.is_digest());
    assert_eq!(a.algorithm().as_deref(), Some("AKAv1-MD5"));
    assert_eq!(a.auts().as_deref(), Some("CjkyMzRfOiwg5CfsJ2w="));
    assert_eq!(a.nc().as_deref(), Some("00000001"));
    let p: ProxyAuthorization = rt(
        r#"Digest username="alice", realm="atlanta.example.com", nonce="wf84f1ceczx41ae6cbe5aea9c8e88d359", opaque="", uri="sip:bob@biloxi.example.com", response="42ce3cef44b22f50c6a6071bc8""#,
    );
    assert_eq!(p.opaque().as_deref(), Some(""));
    let w: WwwAuthenticate = rt(
        r#"Digest realm="ims.example.com", nonce="CjPk9mRqNuT25eRkajM09uTl9nM09uTl9nMz5OX25PZz==", algorithm=AKAv2-MD5, qop="auth,auth-int", ik="0123456789abcdeedcba9876543210", ck="9876543210abcdeedcba0123456789""#,
    );
    assert_eq!(w.qop().as_deref(), Some("auth,auth-int"));
    assert_eq!(
        w.param("ik").as_deref(),
        Some("0123456789abcdeedcba9876543210")
    );
    let _: ProxyAuthenticate = rt(
        r#"Digest realm="atlanta.example.com", domain="sip:ss1.example.com", qop="auth", nonce="f84f1cec41e6cbe5aea9c8e88d359", opaque="", stale=FALSE, algorithm=MD5"#,
    );
    let i: AuthenticationInfo = rt(
        r#"nextnonce="47364c23432d2e131a5fb210812c", rspauth="1b4cf5e72d3ac41d9f0b7e26a8c3d510", qop=auth"#,
    );
    assert_eq!(
        i.nextnonce().as_deref(),
        Some("47364c23432d2e131a5fb210812c")
    );
    let ip = Authorization::parse(r#"Digest username="u@h", realm="h", nonce="", uri="sip:h", response="", integrity-protected="yes""#).unwrap();
    assert_eq!(ip.param("integrity-protected").as_deref(), Some("yes"));
    let other = Authorization::parse("NoOneKnowsThisScheme opaque-data=here").unwrap();
    assert!(!other.is_digest());
    assert!(Authorization::parse("Digest realm=").is_err());
    assert!(Authorization::parse(r#"Digest realm="unterminated"#).is_err());
}

#[test]
fn lists_and_media() {
    assert_eq!(rt::<Allow>("PRACK").0, Method::Prack);
    assert_eq!(rt::<Supported>("100rel").0, "100rel");
    assert_eq!(rt::<Require>("sec-agree").0, "sec-agree");
    assert_eq!(rt::<ProxyRequire>("sec-agree").0, "sec-agree");
    assert_eq!(rt::<Unsupported>("foo").0, "foo");
    assert_eq!(rt::<AllowEvents>("presence.winfo").0, "presence.winfo");
    assert_eq!(rt::<ContentEncoding>("gzip").0, "gzip");
    assert_eq!(rt::<RequestDisposition>("no-fork").0, "no-fork");
    let p: Privacy = rt("id;header");
    assert!(p.contains("id") && p.contains("header") && !p.contains("user"));
    let ct: ContentType = rt("application/vnd.3gpp.sms");
    assert!(ct.0.is("application", "vnd.3gpp.sms"));
    let ct: ContentType = rt("multipart/related;type=\"application/sdp\";boundary=\"b1\"");
    assert_eq!(ct.0.param("type").as_deref(), Some("application/sdp"));
    let a: Accept = rt("application/*;q=0.5");
    assert!(a.0.matches("application", "sdp"));
    assert!(!a.0.matches("text", "plain"));
    let cd: ContentDisposition = rt("signal;handling=optional");
    assert_eq!(cd.disposition, "signal");
    let e: Event = rt("reg;id=5");
    assert_eq!((e.package, e.id()), ("reg", Some("5")));
    let s: SubscriptionState = rt("terminated;reason=timeout;expires=0");
    assert_eq!(
        (s.state, s.reason(), s.expires()),
        ("terminated", Some("timeout"), Some(0))
    );
    let r: Reason = rt("Q.850;cause=16;text=\"Terminated\"");
    assert_eq!(
        (r.protocol, r.cause(), r.text().as_deref()),
        ("Q.850", Some(16), Some("Terminated"))
    );
    let w: Warning = rt("301 isi.edu \"Incompatible network address type 'E.164'\"");
    assert_eq!((w.code, w.agent), (301, "isi.edu"));
    assert!(Warning::parse("1812 overture \"In Progress\"").is_err());
    let ac: AcceptContact =
        rt("*;+g.3gpp.icsi-ref=\"urn%3Aurn-7%3A3gpp-service.ims.icsi.mmtel\";require;explicit");
    assert!(ac.params.contains("explicit"));
    let _: RejectContact = rt("*;actor=\"msg-taker\";video");
    assert!(AcceptContact::parse("sip:x@y").is_err());
}

#[test]
fn ims_p_headers_and_sec_agree() {
    let v: PVisitedNetworkId = rt("\"Visited network number 1\"");
    assert_eq!(v.network, "\"Visited network number 1\"");
    let _: PVisitedNetworkId = rt("other.net");
    let a: PAccessNetworkInfo = rt("3GPP-E-UTRAN-FDD;utran-cell-id-3gpp=0010100010019B01");
    assert_eq!(a.access_type, "3GPP-E-UTRAN-FDD");
    assert_eq!(
        a.params.get("utran-cell-id-3gpp"),
        Some(Some("0010100010019B01"))
    );
    let cv: PChargingVector = rt("icid-value=\"AyretyU0dm+6O2IrT5tAFrbHLso=023551024\";orig-ioi=home1.net;term-ioi=home2.net");
    assert_eq!(
        cv.icid().as_deref(),
        Some("AyretyU0dm+6O2IrT5tAFrbHLso=023551024")
    );
    assert_eq!(cv.orig_ioi().as_deref(), Some("home1.net"));
    assert_eq!(cv.term_ioi().as_deref(), Some("home2.net"));
    assert!(
        PChargingVector::parse("orig-ioi=home1.net").is_err(),
        "icid-value comes first"
    );
    let cf: PChargingFunctionAddresses =
        rt("ccf=192.1.1.1;ccf=192.1.1.2;ecf=192.1.1.3;ecf=192.1.1.4");
    assert_eq!(cf.ccf().count(), 2);
    assert_eq!(
        cf.ecf().map(|c| c.into_owned()).collect::<Vec<_>>(),
        ["192.1.1.3", "192.1.1.4"]
    );
    let sc: SecurityClient = rt("ipsec-3gpp;alg=hmac-sha-1-96;ealg=null;spi-c=3929102;spi-s=3929103;port-c=41227;port-s=5060");
    assert_eq!(
        (sc.mechanism, sc.alg(), sc.ealg()),
        ("ipsec-3gpp", Some("hmac-sha-1-96"), Some("null"))
    );
    assert_eq!(
        (sc.number("spi-c"), sc.number("port-s")),
        (Some(3929102), Some(5060))
    );
    let _: SecurityServer = rt(
        "ipsec-3gpp;q=0.1;alg=hmac-sha-1-96;spi-c=98765432;spi-s=909767;port-c=5058;port-s=5059",
    );
    let _: SecurityVerify = rt("tls;q=0.2");
    let r: Replaces = rt("98732@sip.example.com;from-tag=r33th4x0r;to-tag=ff87ff;early-only");
    assert_eq!(
        (r.call_id, r.to_tag(), r.from_tag(), r.early_only()),
        (
            "98732@sip.example.com",
            Some("ff87ff"),
            Some("r33th4x0r"),
            true
        )
    );
    assert!(Replaces::parse("98732@sip.example.com;to-tag=a").is_err());
}

#[test]
fn header_name_lookup() {
    let cases = [
        ("Via", HeaderName::Via),
        ("v", HeaderName::Via),
        ("V", HeaderName::Via),
        ("vIA", HeaderName::Via),
        ("i", HeaderName::CallId),
        ("CALL-ID", HeaderName::CallId),
        ("m", HeaderName::Contact),
        ("e", HeaderName::ContentEncoding),
        ("l", HeaderName::ContentLength),
        ("c", HeaderName::ContentType),
        ("f", HeaderName::From),
        ("s", HeaderName::Subject),
        ("k", HeaderName::Supported),
        ("t", HeaderName::To),
        ("o", HeaderName::Event),
        ("u", HeaderName::AllowEvents),
        ("r", HeaderName::ReferTo),
        ("b", HeaderName::ReferredBy),
        ("x", HeaderName::SessionExpires),
        ("y", HeaderName::Identity),
        ("a", HeaderName::AcceptContact),
        ("j", HeaderName::RejectContact),
        ("d", HeaderName::RequestDisposition),
        (
            "p-charging-function-addresses",
            HeaderName::PChargingFunctionAddresses,
        ),
        ("WWW-Authenticate", HeaderName::WwwAuthenticate),
        ("Max-Forwards", HeaderName::MaxForwards),
        ("X-Custom", HeaderName::Other),
        ("C%6Fntact", HeaderName::Other),
        ("Via ", HeaderName::Other),
        ("Max\rForwards", HeaderName::Other),
        ("z", HeaderName::Other),
        ("", HeaderName::Other),
    ];
    for (s, n) in cases {
        assert_eq!(HeaderName::from_bytes(s.as_bytes()), n, "{s:?}");
    }
    // every known name maps back to itself in upper and lower case
    let all = [
        HeaderName::Accept,
        HeaderName::AuthenticationInfo,
        HeaderName::PAccessNetworkInfo,
        HeaderName::SecurityVerify,
        HeaderName::ServiceRoute,
        HeaderName::PAssertedIdentity,
        HeaderName::RSeq,
        HeaderName::RAck,
        HeaderName::MinSe,
        HeaderName::Replaces,
        HeaderName::Privacy,
        HeaderName::Timestamp,
        HeaderName::InReplyTo,
        HeaderName::Date,
    ];
    for n in all {
        assert_eq!(
            HeaderName::from_bytes(n.as_str().to_ascii_uppercase().as_bytes()),
            n
        );
        assert_eq!(
            HeaderName::from_bytes(n.as_str().to_ascii_lowercase().as_bytes()),
            n
        );
    }
}
