//! Property tests for ims-sip: random but valid URIs and messages are rendered, parsed back, and every
//! part the generator chose must come out of the typed accessors unchanged; an untouched edit must
//! reproduce the bytes; proxy edits (push_via / pop_route / decrement_max_forwards) must change exactly
//! what they are meant to.
//!
//! Generators follow the RFC 3261 §25.1 / RFC 3966 grammar (the character classes are spelled out next
//! to each strategy). Case counts are modest (`CASES`) so the file runs in a few seconds in debug.

use ims::sip::headers::{self, Contact, NameAddrHeader, Via};
use ims::sip::{
    parse, parse_datagram, reason_phrase, HeaderName, Host, Message, Method, Params,
    RequestBuilder, ResponseBuilder, SipUri, Status, TelUri, Uri, Version,
};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::select;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

const CASES: u32 = 256;

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: CASES,
        // failing inputs are reported in the panic message; no regression files in the tree
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

type ParamList = Vec<(String, Option<String>)>;

// ---------------------------------------------------------------------------------------------
// Small helpers
// ---------------------------------------------------------------------------------------------

/// splitmix64: derives independent-looking values from one generated seed.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Fisher-Yates driven by a generated seed (so a failing case is reproducible from its Debug output).
fn shuffled<T>(mut v: Vec<T>, seed: u64) -> Vec<T> {
    let mut s = seed;
    for i in (1..v.len()).rev() {
        s = mix(s);
        let j = (s % (i as u64 + 1)) as usize;
        v.swap(i, j);
    }
    v
}

/// Keeps the first parameter of each name (case-insensitive): generated URIs and headers never
/// repeat a parameter name (which of two `transport`s would count?). See
/// `uri_equivalence_with_repeated_parameter` for what happens when one does.
fn dedupe(v: ParamList) -> ParamList {
    let mut seen = Vec::<String>::new();
    v.into_iter()
        .filter(|(n, _)| {
            let l = n.to_ascii_lowercase();
            if seen.contains(&l) {
                false
            } else {
                seen.push(l);
                true
            }
        })
        .collect()
}

fn render_params(ps: &[(String, Option<String>)]) -> String {
    let mut s = String::new();
    for (n, v) in ps {
        s.push(';');
        s.push_str(n);
        if let Some(v) = v {
            s.push('=');
            s.push_str(v);
        }
    }
    s
}

/// Header parameters with optional linear white space around `;` and `=` (SEMI and EQUAL are
/// `SWS ";" SWS` and `SWS "=" SWS`, RFC 3261 §25.1). `lws == 0` writes none.
fn render_header_params(ps: &[(String, Option<String>)], lws: u64) -> String {
    let mut s = String::new();
    for (i, (n, v)) in ps.iter().enumerate() {
        let r = if lws == 0 { 0 } else { mix(lws ^ i as u64) };
        let ws = |k: u32| [" ", "", "", "\t"][((r >> (8 * k)) % 4) as usize];
        if lws != 0 {
            s.push_str(ws(0));
        }
        s.push(';');
        if lws != 0 {
            s.push_str(ws(1));
        }
        s.push_str(n);
        if let Some(v) = v {
            if lws != 0 {
                s.push_str(ws(2));
            }
            s.push('=');
            if lws != 0 {
                s.push_str(ws(3));
            }
            s.push_str(v);
        }
    }
    s
}

/// Occasionally a seed for white space, mostly none.
fn lws_seed() -> impl Strategy<Value = u64> {
    prop_oneof![3 => Just(0u64), 1 => 1..u64::MAX]
}

fn params_of(p: Params<'_>) -> ParamList {
    p.iter()
        .map(|x| (x.name.to_owned(), x.value.map(str::to_owned)))
        .collect()
}

/// The first parameter called `name` in a generated list, as `Params::get` would answer.
fn param_get<'a>(ps: &'a [(String, Option<String>)], name: &str) -> Option<Option<&'a str>> {
    ps.iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_deref())
}

/// Position of the first alphanumeric character of `s` that is not part of a `%HH` escape.
fn unescaped_alnum(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            i += 3;
        } else if b[i].is_ascii_alphanumeric() {
            return Some(i);
        } else {
            i += 1;
        }
    }
    None
}

fn fail(msg: String) -> TestCaseError {
    TestCaseError::fail(msg)
}

// ---------------------------------------------------------------------------------------------
// Character classes (RFC 3261 §25.1): the non-alphanumeric characters each allows besides escapes
// (`unreserved` = alphanum / mark, mark = - _ . ! ~ * ' ( ) )
// ---------------------------------------------------------------------------------------------

/// user = 1*( unreserved / escaped / user-unreserved ), user-unreserved = & = + $ , ; ? /
const USER_CH: &str = "_.!~*'()-&=+$,;?/";
/// password = *( unreserved / escaped / & = + $ , )
const PASS_CH: &str = "_.!~*'()-&=+$,";
/// paramchar = param-unreserved / unreserved / escaped; param-unreserved = [ ] / : & + $
const PARAM_CH: &str = "_.!~*'()-[]/:&+$";
/// hnv-unreserved / unreserved / escaped; hnv-unreserved = [ ] / ? : + $
const HNV_CH: &str = "_.!~*'()-[]/?:+$";
/// token = 1*(alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" / "'" / "~")
const TOKEN_CH: &str = "-.!%*_+`'~";

fn alnum_and(marks: &str) -> Vec<char> {
    ('a'..='z')
        .chain('A'..='Z')
        .chain('0'..='9')
        .chain(marks.chars())
        .collect()
}

/// `min..=max` characters out of `chars` (cheaper to generate than a regex strategy).
fn text(chars: Vec<char>, min: usize, max: usize) -> impl Strategy<Value = String> {
    vec(select(chars), min..=max).prop_map(|v| v.into_iter().collect())
}

fn token(max: usize) -> impl Strategy<Value = String> {
    text(alnum_and(TOKEN_CH), 1, max)
}

/// qdtext in ASCII: SP / %x21 / %x23-5B / %x5D-7E
fn qdtext_ascii() -> Vec<char> {
    (' '..='~').filter(|&c| c != '"' && c != '\\').collect()
}
/// uric without '%' (escapes are generated separately), for opaque absolute URIs
const URIC_CH: &str = "_.!~*'()-;/?:@&=+$,";

/// Text over alphanumerics plus `marks`, with `%HH` escapes of arbitrary bytes mixed in. Returns the
/// text as written and the bytes it decodes to.
fn escaped_text(marks: &'static str, min: usize, max: usize) -> BoxedStrategy<(String, Vec<u8>)> {
    let class = alnum_and(marks);
    let atom = prop_oneof![
        5 => select(class).prop_map(|c| (c.to_string(), vec![c as u8])),
        1 => (any::<u8>(), any::<bool>()).prop_map(|(b, upper)| {
            let s = if upper { format!("%{b:02X}") } else { format!("%{b:02x}") };
            (s, vec![b])
        }),
    ];
    vec(atom, min..=max)
        .prop_map(|atoms| {
            let mut s = String::new();
            let mut d = Vec::new();
            for (a, b) in atoms {
                s.push_str(&a);
                d.extend(b);
            }
            (s, d)
        })
        .boxed()
}

// ---------------------------------------------------------------------------------------------
// Hosts
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
enum GenHost {
    Domain(String),
    V4(Ipv4Addr, String),
    V6(Ipv6Addr, String),
}

impl GenHost {
    fn render(&self) -> String {
        match self {
            GenHost::Domain(d) => d.clone(),
            GenHost::V4(_, t) => t.clone(),
            GenHost::V6(_, t) => format!("[{t}]"),
        }
    }
    fn check(&self, h: Host<'_>) -> Result<(), TestCaseError> {
        match (self, h) {
            (GenHost::Domain(d), Host::Domain(p)) => prop_assert_eq!(d.as_str(), p),
            (GenHost::V4(a, _), Host::Ipv4(b)) => {
                prop_assert_eq!(*a, b);
                prop_assert_eq!(h.ip(), Some(IpAddr::V4(*a)));
            }
            (GenHost::V6(a, t), Host::Ipv6(p)) => {
                prop_assert_eq!(t.as_str(), p);
                prop_assert_eq!(h.ip(), Some(IpAddr::V6(*a)));
            }
            (g, p) => return Err(fail(format!("host kind: generated {g:?}, parsed {p:?}"))),
        }
        prop_assert!(h.equivalent(&h));
        Ok(())
    }
}

/// hostname = *( domainlabel "." ) toplabel [ "." ]
fn domain() -> impl Strategy<Value = String> {
    // domainlabel = alphanum / alphanum *( alphanum / "-" ) alphanum; toplabel starts with ALPHA
    let label = |first: Vec<char>| {
        (
            select(first),
            proptest::option::of((text(alnum_and("-"), 0, 6), select(alnum_and("")))),
        )
            .prop_map(|(a, rest)| match rest {
                None => a.to_string(),
                Some((mid, z)) => format!("{a}{mid}{z}"),
            })
    };
    let alpha: Vec<char> = ('a'..='z').chain('A'..='Z').collect();
    (
        vec(label(alnum_and("")), 0..3),
        label(alpha),
        proptest::bool::weighted(0.1),
    )
        .prop_map(|(labels, top, dot)| {
            let mut s = labels.join(".");
            if !s.is_empty() {
                s.push('.');
            }
            s.push_str(&top);
            if dot {
                s.push('.');
            }
            s
        })
}

/// IPv4address = 1*3DIGIT "." 1*3DIGIT "." 1*3DIGIT "." 1*3DIGIT, sometimes zero-padded.
fn ipv4() -> impl Strategy<Value = (Ipv4Addr, String)> {
    (any::<[u8; 4]>(), proptest::bool::weighted(0.1)).prop_map(|(o, pad)| {
        let a = Ipv4Addr::from(o);
        let t = if pad {
            o.iter()
                .map(|b| format!("{b:03}"))
                .collect::<Vec<_>>()
                .join(".")
        } else {
            a.to_string()
        };
        (a, t)
    })
}

/// IPv6 in several spellings: compressed (std), upper case, all eight groups, and with an IPv4 tail.
fn ipv6() -> impl Strategy<Value = (Ipv6Addr, String)> {
    (any::<[u16; 8]>(), any::<u8>(), 0..4u8).prop_map(|(mut g, zeros, form)| {
        for (i, x) in g.iter_mut().enumerate() {
            if zeros & (1 << i) != 0 {
                *x = 0;
            }
        }
        let a = Ipv6Addr::from(g);
        let t = match form {
            0 => a.to_string(),
            1 => a.to_string().to_ascii_uppercase(),
            2 => g
                .iter()
                .map(|x| format!("{x:x}"))
                .collect::<Vec<_>>()
                .join(":"),
            _ => {
                let head = g[..6]
                    .iter()
                    .map(|x| format!("{x:X}"))
                    .collect::<Vec<_>>()
                    .join(":");
                let [a0, a1] = g[6].to_be_bytes();
                let [a2, a3] = g[7].to_be_bytes();
                format!("{head}:{a0}.{a1}.{a2}.{a3}")
            }
        };
        (a, t)
    })
}

fn host() -> impl Strategy<Value = GenHost> {
    prop_oneof![
        3 => domain().prop_map(GenHost::Domain),
        2 => ipv4().prop_map(|(a, t)| GenHost::V4(a, t)),
        2 => ipv6().prop_map(|(a, t)| GenHost::V6(a, t)),
    ]
}

// ---------------------------------------------------------------------------------------------
// URIs
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
struct GenSip {
    scheme: String,
    user: Option<(String, Vec<u8>)>,
    password: Option<String>,
    host: GenHost,
    port: Option<u16>,
    params: ParamList,
    headers: Vec<(String, String)>,
}

impl GenSip {
    fn render(&self) -> String {
        let mut s = format!("{}:", self.scheme);
        if let Some((u, _)) = &self.user {
            s.push_str(u);
            if let Some(p) = &self.password {
                s.push(':');
                s.push_str(p);
            }
            s.push('@');
        }
        s.push_str(&self.host.render());
        if let Some(p) = self.port {
            s.push_str(&format!(":{p}"));
        }
        s.push_str(&render_params(&self.params));
        if !self.headers.is_empty() {
            s.push('?');
            let hs: Vec<String> = self
                .headers
                .iter()
                .map(|(n, v)| format!("{n}={v}"))
                .collect();
            s.push_str(&hs.join("&"));
        }
        s
    }

    fn check(&self, u: &SipUri<'_>) -> Result<(), TestCaseError> {
        prop_assert_eq!(u.is_secure(), self.scheme.eq_ignore_ascii_case("sips"));
        prop_assert_eq!(u.user(), self.user.as_ref().map(|(t, _)| t.as_str()));
        prop_assert_eq!(
            u.user_decoded().map(|c| c.into_owned()),
            self.user.as_ref().map(|(_, d)| d.clone())
        );
        prop_assert_eq!(u.password(), self.password.as_deref());
        self.host.check(u.host())?;
        prop_assert_eq!(u.port(), self.port);
        prop_assert_eq!(params_of(u.params()), self.params.clone());
        prop_assert_eq!(u.params().as_str(), render_params(&self.params));
        let p = &self.params;
        prop_assert_eq!(u.transport(), param_get(p, "transport").flatten());
        prop_assert_eq!(u.lr(), param_get(p, "lr").is_some());
        prop_assert_eq!(u.maddr(), param_get(p, "maddr").flatten());
        prop_assert_eq!(u.user_param(), param_get(p, "user").flatten());
        prop_assert_eq!(u.gr(), param_get(p, "gr"));
        prop_assert_eq!(u.ob(), param_get(p, "ob").is_some());
        let hs: Vec<(String, String)> = u
            .header_pairs()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        prop_assert_eq!(hs, self.headers.clone());
        prop_assert_eq!(u.headers().is_some(), !self.headers.is_empty());
        prop_assert!(u.equivalent(u), "not equivalent to itself");
        Ok(())
    }

    /// Plain enough to be written as an addr-spec (no `;`, `?` or `,` that would end it early).
    fn addr_spec_safe(&self) -> bool {
        !self.render().contains([';', '?', ',', ' '])
    }
}

fn sip_uri_params() -> impl Strategy<Value = ParamList> {
    let transport = select(vec!["udp", "tcp", "tls", "sctp", "ws", "wss", "UDP", "TCP"]);
    let user = select(vec!["phone", "ip", "dialstring"]);
    let generic = (
        escaped_text(PARAM_CH, 0, 6),
        proptest::option::of(escaped_text(PARAM_CH, 1, 8)),
    )
        .prop_map(|((n, _), v)| (format!("x{n}"), v.map(|(t, _)| t)));
    (
        proptest::option::of((transport, any::<bool>())),
        proptest::option::of(user),
        any::<bool>(),
        proptest::option::of(host()),
        proptest::option::of(proptest::option::of(
            "urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}",
        )),
        any::<bool>(),
        proptest::option::of(any::<u8>()),
        vec(generic, 0..3),
        any::<u64>(),
    )
        .prop_map(|(transport, user, lr, maddr, gr, ob, ttl, generic, seed)| {
            let mut v: ParamList = Vec::new();
            if let Some((t, cap)) = transport {
                let name = if cap { "Transport" } else { "transport" };
                v.push((name.into(), Some(t.into())));
            }
            if let Some(u) = user {
                v.push(("user".into(), Some(u.into())));
            }
            if lr {
                v.push(("lr".into(), None));
            }
            if let Some(h) = maddr {
                v.push(("maddr".into(), Some(h.render())));
            }
            if let Some(g) = gr {
                v.push(("gr".into(), g));
            }
            if ob {
                v.push(("ob".into(), None));
            }
            if let Some(t) = ttl {
                v.push(("ttl".into(), Some(t.to_string())));
            }
            v.extend(generic);
            shuffled(dedupe(v), seed)
        })
}

fn sip_uri() -> impl Strategy<Value = GenSip> {
    let user = prop_oneof![
        3 => escaped_text(USER_CH, 1, 12),
        1 => "\\+[0-9]{6,15}".prop_map(|s: String| { let b = s.clone().into_bytes(); (s, b) }),
    ];
    let hdr =
        (escaped_text(HNV_CH, 1, 6), escaped_text(HNV_CH, 0, 8)).prop_map(|(n, v)| (n.0, v.0));
    (
        select(vec!["sip", "sips", "SIP", "Sips"]),
        proptest::option::weighted(0.8, user),
        proptest::option::weighted(0.15, escaped_text(PASS_CH, 0, 8)),
        host(),
        proptest::option::of(any::<u16>()),
        sip_uri_params(),
        proptest::option::weighted(0.2, vec(hdr, 1..3)),
    )
        .prop_map(
            |(scheme, user, password, host, port, params, headers)| GenSip {
                scheme: scheme.to_owned(),
                password: if user.is_some() {
                    password.map(|p| p.0)
                } else {
                    None
                },
                user,
                host,
                port,
                params,
                headers: headers.unwrap_or_default(),
            },
        )
}

#[derive(Debug, Clone)]
struct GenTel {
    scheme: String,
    number: String,
    params: ParamList,
}

const fn is_visual(c: char) -> bool {
    matches!(c, '-' | '.' | '(' | ')')
}

impl GenTel {
    fn render(&self) -> String {
        format!(
            "{}:{}{}",
            self.scheme,
            self.number,
            render_params(&self.params)
        )
    }
    fn check(&self, t: &TelUri<'_>) -> Result<(), TestCaseError> {
        prop_assert_eq!(t.number(), self.number.as_str());
        prop_assert_eq!(t.is_global(), self.number.starts_with('+'));
        let digits: String = self.number.chars().filter(|&c| !is_visual(c)).collect();
        prop_assert_eq!(t.digits(), digits.clone());
        prop_assert_eq!(params_of(t.params()), self.params.clone());
        prop_assert_eq!(t.ext(), param_get(&self.params, "ext").flatten());
        prop_assert_eq!(t.isub(), param_get(&self.params, "isub").flatten());
        prop_assert_eq!(
            t.phone_context(),
            param_get(&self.params, "phone-context").flatten()
        );
        prop_assert!(t.equivalent(t), "not equivalent to itself");
        // RFC 3966 §4: visual separators do not count
        let plain = format!("tel:{digits}{}", render_params(&self.params));
        let p = TelUri::parse(&plain).map_err(|e| fail(format!("{plain}: {e}")))?;
        prop_assert!(t.equivalent(&p), "{} !~ {}", t.as_str(), plain);
        Ok(())
    }
}

fn tel_uri() -> impl Strategy<Value = GenTel> {
    // global-number-digits = "+" *phonedigit DIGIT *phonedigit
    let global = "\\+[0-9().-]{0,3}[0-9][0-9().-]{0,12}";
    // local-number-digits = *phonedigit-hex (HEXDIG / "*" / "#") *phonedigit-hex
    let local = "[0-9A-Fa-f*#().-]{0,3}[0-9A-Fa-f*#][0-9A-Fa-f*#().-]{0,8}";
    let context = prop_oneof![domain(), "\\+[0-9][0-9().-]{0,8}".prop_map(|s: String| s),];
    let generic = ("x-[a-z0-9-]{1,6}", proptest::option::of("[A-Za-z0-9]{1,6}"));
    (
        select(vec!["tel", "TEL", "Tel"]),
        prop_oneof![
            global.prop_map(|n: String| (n, true)),
            local.prop_map(|n: String| (n, false)),
        ],
        context,
        proptest::option::of("[0-9][0-9().-]{0,5}"),
        proptest::option::of("[A-Za-z0-9.-]{1,8}"),
        vec(generic, 0..3),
        any::<u64>(),
    )
        .prop_map(
            |(scheme, (number, global), ctx, ext, isub, generic, seed)| {
                let mut v: ParamList = Vec::new();
                if let Some(e) = ext {
                    v.push(("ext".into(), Some(e)));
                }
                if let Some(i) = isub {
                    v.push(("isub".into(), Some(i)));
                }
                // phone-context belongs to (and is required for) local numbers
                if !global {
                    v.push(("phone-context".into(), Some(ctx)));
                }
                v.extend(generic);
                GenTel {
                    scheme: scheme.into(),
                    number,
                    params: shuffled(dedupe(v), seed),
                }
            },
        )
}

#[derive(Debug, Clone)]
struct GenOther {
    scheme: String,
    rest: String,
}

fn other_uri() -> impl Strategy<Value = GenOther> {
    prop_oneof![
        "(service:sos(\\.[a-z]{2,8})?|uuid:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|gsma:imei:[0-9]{8}-[0-9]{6}-0)"
            .prop_map(|r: String| GenOther { scheme: "urn".into(), rest: r }),
        ("[a-z]{2,8}:", escaped_text(URIC_CH, 1, 16)).prop_map(|(nid, (nss, _))| GenOther {
            scheme: "urn".into(),
            rest: format!("{nid}{nss}"),
        }),
        ("[a-z0-9._-]{1,10}", domain()).prop_map(|(u, d)| GenOther {
            scheme: "im".into(),
            rest: format!("{u}@{d}"),
        }),
        (select(vec!["pres", "mailto", "URN", "cid"]), "[a-z0-9._-]{1,10}@", domain()).prop_map(
            |(s, u, d)| GenOther { scheme: s.into(), rest: format!("{u}{d}") }
        ),
    ]
}

#[derive(Debug, Clone)]
enum GenUri {
    Sip(GenSip),
    Tel(GenTel),
    Other(GenOther),
}

impl GenUri {
    fn render(&self) -> String {
        match self {
            GenUri::Sip(s) => s.render(),
            GenUri::Tel(t) => t.render(),
            GenUri::Other(o) => format!("{}:{}", o.scheme, o.rest),
        }
    }
    fn addr_spec_safe(&self) -> bool {
        match self {
            GenUri::Sip(s) => s.addr_spec_safe(),
            other => !other.render().contains([';', '?', ',', ' ']),
        }
    }
    /// Every generated part equals the parsed one; `as_str`/`to_string` give the text back; the URI
    /// is equivalent to itself.
    fn check(&self, u: &Uri<'_>) -> Result<(), TestCaseError> {
        let text = self.render();
        prop_assert_eq!(u.as_str(), text.as_str());
        prop_assert_eq!(u.to_string(), text.clone());
        prop_assert!(u.equivalent(u), "{} not equivalent to itself", text);
        match (self, u) {
            (GenUri::Sip(g), Uri::Sip(p)) => g.check(p),
            (GenUri::Tel(g), Uri::Tel(p)) => g.check(p),
            (GenUri::Other(g), Uri::Other(p)) => {
                prop_assert_eq!(p.scheme(), g.scheme.as_str());
                prop_assert_eq!(p.rest(), g.rest.as_str());
                prop_assert_eq!(u.scheme(), g.scheme.as_str());
                Ok(())
            }
            (g, p) => Err(fail(format!("URI kind: generated {g:?}, parsed {p:?}"))),
        }
    }
    fn parse_and_check(&self) -> Result<(), TestCaseError> {
        let text = self.render();
        let u = Uri::parse(&text).map_err(|e| fail(format!("{text:?} refused: {e}")))?;
        self.check(&u)
    }
}

fn any_uri() -> impl Strategy<Value = GenUri> {
    prop_oneof![
        6 => sip_uri().prop_map(GenUri::Sip),
        2 => tel_uri().prop_map(GenUri::Tel),
        1 => other_uri().prop_map(GenUri::Other),
    ]
}

// ---------------------------------------------------------------------------------------------
// Header pieces
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
enum Display {
    None,
    /// `*(token LWS)`, as written
    Tokens(String),
    /// a quoted-string as written, and its text
    Quoted(String, String),
}

fn display() -> impl Strategy<Value = (Display, bool)> {
    // qdtext ASCII: SP / %x21 / %x23-5B / %x5D-7E; quoted-pair = "\" %x00-09 / %x0B-0C / %x0E-7F
    let piece = prop_oneof![
        8 => select(qdtext_ascii()).prop_map(|c| (c.to_string(), c.to_string())),
        2 => select(vec!['"', '\\']).prop_map(|c| (format!("\\{c}"), c.to_string())),
        1 => select(('!'..='~').collect::<Vec<_>>()).prop_map(|c| (format!("\\{c}"), c.to_string())),
        1 => select(vec!["é", "ß", "日本", "€", "\t"]).prop_map(|s| (s.to_owned(), s.to_owned())),
    ];
    let quoted = vec(piece, 0..12).prop_map(|ps| {
        let raw: String = ps.iter().map(|p| p.0.as_str()).collect();
        let text: String = ps.iter().map(|p| p.1.as_str()).collect();
        Display::Quoted(format!("\"{raw}\""), text)
    });
    let tokens = (vec(token(12), 1..=3), select(vec![" ", "  ", "\t"]))
        .prop_map(|(ts, sep)| Display::Tokens(ts.join(sep)));
    (
        prop_oneof![
            2 => Just(Display::None),
            1 => tokens,
            2 => quoted,
        ],
        any::<bool>(),
    )
}

/// A name-addr or addr-spec with header parameters: the shape of From, To, Contact, Route.
#[derive(Debug, Clone)]
struct GenNameAddr {
    display: Display,
    /// space between display name and `<`
    space: bool,
    uri: GenUri,
    angle: bool,
    params: ParamList,
    /// white space around the parameters' `;` and `=`
    lws: u64,
}

impl GenNameAddr {
    fn render(&self) -> String {
        let mut s = String::new();
        match &self.display {
            Display::None => {}
            Display::Tokens(t) => s.push_str(t),
            Display::Quoted(raw, _) => s.push_str(raw),
        }
        if !matches!(self.display, Display::None) && self.space {
            s.push(' ');
        }
        if self.angle {
            s.push('<');
            s.push_str(&self.uri.render());
            s.push('>');
        } else {
            s.push_str(&self.uri.render());
        }
        s.push_str(&render_header_params(&self.params, self.lws));
        s
    }

    fn check(&self, h: &NameAddrHeader<'_>) -> Result<(), TestCaseError> {
        let a = &h.addr;
        match &self.display {
            Display::None => prop_assert_eq!(a.display_name_raw(), None),
            Display::Tokens(t) => {
                prop_assert_eq!(a.display_name_raw(), Some(t.as_str()));
                let d = a.display_name();
                prop_assert_eq!(d.as_deref(), Some(t.as_str()));
            }
            Display::Quoted(raw, text) => {
                prop_assert_eq!(a.display_name_raw(), Some(raw.as_str()));
                let d = a.display_name();
                prop_assert_eq!(d.as_deref(), Some(text.as_str()));
            }
        }
        prop_assert_eq!(a.is_name_addr(), self.angle);
        self.uri.check(&a.uri())?;
        prop_assert_eq!(params_of(h.params), self.params.clone());
        prop_assert_eq!(h.tag(), param_get(&self.params, "tag").flatten());
        Ok(())
    }
}

/// generic-param = token [ EQUAL gen-value ]; gen-value = token / host / quoted-string
fn header_param() -> impl Strategy<Value = (String, Option<String>)> {
    (
        "x[a-z0-9-]{0,6}",
        proptest::option::of(prop_oneof![
            token(12),
            text(qdtext_ascii(), 0, 8).prop_map(|s| format!("\"{s}\"")),
            host().prop_map(|h| h.render()),
        ]),
    )
}

/// A name-addr with `fixed` parameters first (e.g. a tag) and generic ones, shuffled.
fn name_addr(
    uri: BoxedStrategy<GenUri>,
    fixed: BoxedStrategy<ParamList>,
    force_angle: bool,
) -> impl Strategy<Value = GenNameAddr> {
    (
        display(),
        uri,
        any::<bool>(),
        fixed,
        vec(header_param(), 0..3),
        any::<u64>(),
        lws_seed(),
    )
        .prop_map(
            move |((display, space), uri, angle, mut fixed, generic, seed, lws)| {
                let angle = force_angle
                    || angle
                    || !matches!(display, Display::None)
                    || !uri.addr_spec_safe();
                fixed.extend(generic);
                GenNameAddr {
                    display,
                    space,
                    uri,
                    angle,
                    params: shuffled(dedupe(fixed), seed),
                    lws,
                }
            },
        )
}

/// A `tag` parameter: always (From) or sometimes (To).
fn tag_param(always: bool) -> BoxedStrategy<ParamList> {
    let tag = |t: String| vec![("tag".to_owned(), Some(t))];
    if always {
        token(12).prop_map(tag).boxed()
    } else {
        proptest::option::of(token(12))
            .prop_map(move |t| t.map(tag).unwrap_or_default())
            .boxed()
    }
}

#[derive(Debug, Clone)]
struct GenVia {
    transport: String,
    host: GenHost,
    port: Option<u16>,
    branch: String,
    received: Option<(IpAddr, String)>,
    rport: Option<Option<u16>>,
    params: ParamList,
    /// white space around `/` in the sent-protocol and around the parameters' `;` and `=`
    lws: u64,
}

impl GenVia {
    fn render(&self) -> String {
        // SLASH = SWS "/" SWS; the sent-by needs LWS before it
        let sl = if self.lws & 1 == 0 { "/" } else { " / " };
        let sp = if self.lws & 2 == 0 { " " } else { "  " };
        let mut s = format!("SIP{sl}2.0{sl}{}{sp}{}", self.transport, self.host.render());
        if let Some(p) = self.port {
            s.push_str(&format!(":{p}"));
        }
        s.push_str(&render_header_params(&self.params, self.lws));
        s
    }
    fn check(&self, v: &Via<'_>) -> Result<(), TestCaseError> {
        prop_assert_eq!(v.protocol_name(), "SIP");
        prop_assert_eq!(v.protocol_version(), "2.0");
        prop_assert_eq!(v.transport(), self.transport.as_str());
        self.host.check(v.host())?;
        prop_assert_eq!(v.port(), self.port);
        prop_assert_eq!(v.branch(), Some(self.branch.as_str()));
        prop_assert!(v.has_rfc3261_branch());
        prop_assert_eq!(v.received(), self.received.as_ref().map(|r| r.1.as_str()));
        prop_assert_eq!(v.received_ip(), self.received.as_ref().map(|r| r.0));
        prop_assert_eq!(v.rport(), self.rport);
        prop_assert_eq!(params_of(v.params()), self.params.clone());
        Ok(())
    }
}

fn via() -> impl Strategy<Value = GenVia> {
    let received = prop_oneof![
        ipv4().prop_map(|(a, t)| (IpAddr::V4(a), t)),
        ipv6().prop_map(|(a, t)| (IpAddr::V6(a), t)),
        ipv6().prop_map(|(a, t)| (IpAddr::V6(a), format!("[{t}]"))),
    ];
    (
        prop_oneof![
            4 => select(vec!["UDP", "TCP", "TLS", "SCTP", "WS", "WSS"]).prop_map(str::to_owned),
            1 => "[A-Za-z][A-Za-z0-9-]{1,5}".prop_map(|s: String| s),
        ],
        host(),
        proptest::option::of(any::<u16>()),
        token(16),
        proptest::option::of(received),
        proptest::option::of(proptest::option::of(any::<u16>())),
        vec(header_param(), 0..2),
        any::<u64>(),
        lws_seed(),
    )
        .prop_map(
            |(transport, host, port, b, received, rport, generic, seed, lws)| {
                let branch = format!("z9hG4bK{b}");
                let mut v: ParamList = vec![("branch".into(), Some(branch.clone()))];
                if let Some((_, t)) = &received {
                    v.push(("received".into(), Some(t.clone())));
                }
                if let Some(r) = rport {
                    v.push(("rport".into(), r.map(|p| p.to_string())));
                }
                v.extend(generic);
                GenVia {
                    transport,
                    host,
                    port,
                    branch,
                    received,
                    rport,
                    params: shuffled(dedupe(v), seed),
                    lws,
                }
            },
        )
}

#[derive(Debug, Clone)]
struct GenContact {
    na: GenNameAddr,
    expires: Option<u32>,
    q: Option<u16>,
    instance: Option<String>,
    reg_id: Option<u32>,
    features: Vec<String>,
}

impl GenContact {
    fn check(&self, c: &Contact<'_>) -> Result<(), TestCaseError> {
        let Contact::Addr(h) = c else {
            return Err(fail(format!("expected an address, got {c:?}")));
        };
        self.na.check(h)?;
        prop_assert_eq!(c.expires(), self.expires);
        prop_assert_eq!(c.q(), self.q);
        let instance = c.instance();
        prop_assert_eq!(instance.as_deref(), self.instance.as_deref());
        prop_assert_eq!(c.reg_id(), self.reg_id);
        for f in &self.features {
            prop_assert!(c.has_feature(f), "feature {} missing", f);
        }
        Ok(())
    }
}

/// qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] ), with its value in thousandths.
fn qvalue() -> impl Strategy<Value = (String, u16)> {
    prop_oneof![
        proptest::option::of("[0-9]{0,3}").prop_map(|f| match f {
            None => ("0".to_owned(), 0),
            Some(d) => {
                let mut n: u16 = 0;
                for c in d.bytes().chain(std::iter::repeat(b'0')).take(3) {
                    n = n * 10 + u16::from(c - b'0');
                }
                (format!("0.{d}"), n)
            }
        }),
        proptest::option::of("0{0,3}").prop_map(|f| match f {
            None => ("1".to_owned(), 1000),
            Some(z) => (format!("1.{z}"), 1000),
        }),
    ]
}

fn contact() -> impl Strategy<Value = GenContact> {
    let fixed = (
        proptest::option::of(any::<u32>()),
        proptest::option::of(qvalue()),
        proptest::option::of(prop_oneof![
            "<urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}>"
                .prop_map(|s: String| s),
            "<urn:gsma:imei:[0-9]{8}-[0-9]{6}-0>".prop_map(|s: String| s),
        ]),
        proptest::option::of(1..100u32),
        proptest::sample::subsequence(
            vec![
                "+g.3gpp.smsip",
                "audio",
                "video",
                "+sip.ice",
                "+g.oma.sip-im",
            ],
            0..3,
        ),
    );
    (
        fixed,
        any_uri(),
        display(),
        any::<bool>(),
        vec(header_param(), 0..2),
        any::<u64>(),
        lws_seed(),
    )
        .prop_map(
            |(
                (expires, q, instance, reg_id, features),
                uri,
                (display, space),
                angle,
                generic,
                seed,
                lws,
            )| {
                let mut v: ParamList = Vec::new();
                if let Some(e) = expires {
                    v.push(("expires".into(), Some(e.to_string())));
                }
                if let Some((t, _)) = &q {
                    v.push(("q".into(), Some(t.clone())));
                }
                if let Some(i) = &instance {
                    v.push(("+sip.instance".into(), Some(format!("\"{i}\""))));
                }
                if let Some(r) = reg_id {
                    v.push(("reg-id".into(), Some(r.to_string())));
                }
                for f in &features {
                    v.push(((*f).to_owned(), None));
                }
                v.extend(generic);
                let angle = angle || !matches!(display, Display::None) || !uri.addr_spec_safe();
                GenContact {
                    na: GenNameAddr {
                        display,
                        space,
                        uri,
                        angle,
                        params: shuffled(dedupe(v), seed),
                        lws,
                    },
                    expires,
                    q: q.map(|q| q.1),
                    instance,
                    reg_id,
                    features: features.into_iter().map(str::to_owned).collect(),
                }
            },
        )
}

/// How list elements are spread over header lines: element `i > 0` starts a new line when bit `i`
/// of `breaks` is set; elements on one line are joined by "," or ", ".
#[derive(Debug, Clone, Copy)]
struct Layout {
    breaks: u8,
    /// COMMA = SWS "," SWS: index into `JOINS`
    join: u8,
}

const JOINS: [&str; 4] = [",", ", ", " , ", " ,"];

impl Layout {
    fn group(&self, elems: &[String]) -> Vec<String> {
        let mut lines: Vec<String> = Vec::new();
        for (i, e) in elems.iter().enumerate() {
            let new_line = i == 0 || self.breaks & (1 << (i % 8)) != 0;
            match lines.last_mut() {
                Some(l) if !new_line => {
                    l.push_str(JOINS[usize::from(self.join) % JOINS.len()]);
                    l.push_str(e);
                }
                _ => lines.push(e.clone()),
            }
        }
        lines
    }
}

fn layout() -> impl Strategy<Value = Layout> {
    (any::<u8>(), any::<u8>()).prop_map(|(breaks, join)| Layout { breaks, join })
}

// ---------------------------------------------------------------------------------------------
// Messages
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum K {
    Via,
    MaxForwards,
    Route,
    RecordRoute,
    From,
    To,
    CallId,
    CSeq,
    Contact,
    Supported,
    Require,
    Ext,
    ContentType,
    ContentLength,
}

/// Spellings of each header name: canonical, compact (RFC 3261 §7.3.3) and other cases.
fn name_variants(k: K) -> &'static [&'static str] {
    match k {
        K::Via => &["Via", "v", "VIA", "via", "V"],
        K::MaxForwards => &["Max-Forwards", "max-forwards", "MAX-FORWARDS"],
        K::Route => &["Route", "ROUTE", "route"],
        K::RecordRoute => &["Record-Route", "record-route", "RECORD-ROUTE"],
        K::From => &["From", "f", "FROM", "F"],
        K::To => &["To", "t", "TO", "T"],
        K::CallId => &["Call-ID", "i", "call-id", "Call-Id", "I"],
        K::CSeq => &["CSeq", "CSEQ", "cseq"],
        K::Contact => &["Contact", "m", "CONTACT", "M"],
        K::Supported => &["Supported", "k", "SUPPORTED", "K"],
        K::Require => &["Require", "REQUIRE", "require"],
        K::Ext => &[],
        K::ContentType => &["Content-Type", "c", "content-type", "C"],
        K::ContentLength => &["Content-Length", "l", "content-length", "L"],
    }
}

#[derive(Debug, Clone)]
enum GenStart {
    Request { method: String, uri: GenUri },
    Response { code: u16, reason: Option<String> },
}

#[derive(Debug, Clone)]
enum GenContacts {
    Star,
    List(Vec<GenContact>, Layout),
}

/// Hand rendering: header blocks in a shuffled order and random whitespace around the colon and at
/// the end of the line (all of which the parser must ignore).
#[derive(Debug, Clone, Copy)]
struct Hand {
    order: u64,
    ws: u64,
}

#[derive(Debug, Clone)]
struct GenMsg {
    start: GenStart,
    vias: Vec<GenVia>,
    via_layout: Layout,
    max_forwards: Option<u8>,
    routes: Vec<GenNameAddr>,
    route_layout: Layout,
    record_routes: Vec<GenNameAddr>,
    rr_layout: Layout,
    from: GenNameAddr,
    to: GenNameAddr,
    call_id: String,
    cseq: (u32, String),
    contacts: Option<GenContacts>,
    supported: (Vec<String>, Layout),
    require: (Vec<String>, Layout),
    extensions: Vec<(String, String)>,
    body: Vec<u8>,
    content_type: Option<String>,
    names: u64,
    /// `None`: made with RequestBuilder / ResponseBuilder.
    hand: Option<Hand>,
}

impl GenMsg {
    /// Header blocks (all lines of one kind) in canonical order, before naming.
    fn blocks(&self) -> Vec<(K, Vec<String>)> {
        let mut b = Vec::new();
        let vias: Vec<String> = self.vias.iter().map(GenVia::render).collect();
        b.push((K::Via, self.via_layout.group(&vias)));
        if let Some(mf) = self.max_forwards {
            b.push((K::MaxForwards, vec![mf.to_string()]));
        }
        let routes: Vec<String> = self.routes.iter().map(GenNameAddr::render).collect();
        b.push((K::Route, self.route_layout.group(&routes)));
        let rr: Vec<String> = self.record_routes.iter().map(GenNameAddr::render).collect();
        b.push((K::RecordRoute, self.rr_layout.group(&rr)));
        b.push((K::From, vec![self.from.render()]));
        b.push((K::To, vec![self.to.render()]));
        b.push((K::CallId, vec![self.call_id.clone()]));
        b.push((K::CSeq, vec![format!("{} {}", self.cseq.0, self.cseq.1)]));
        match &self.contacts {
            None => {}
            Some(GenContacts::Star) => b.push((K::Contact, vec!["*".into()])),
            Some(GenContacts::List(cs, l)) => {
                let cs: Vec<String> = cs.iter().map(|c| c.na.render()).collect();
                b.push((K::Contact, l.group(&cs)));
            }
        }
        b.push((K::Supported, self.supported.1.group(&self.supported.0)));
        b.push((K::Require, self.require.1.group(&self.require.0)));
        for (n, v) in &self.extensions {
            // the name travels in the value slot; see `name_for`
            b.push((K::Ext, vec![format!("{n}\u{0}{v}")]));
        }
        b.retain(|(_, lines)| !lines.is_empty());
        b
    }

    /// `(name, value)` of one line: known headers get a spelling picked by the seed.
    fn name_for(&self, k: K, line: &str, i: usize) -> (String, String) {
        if k == K::Ext {
            let (n, v) = line.split_once('\u{0}').unwrap();
            return (n.to_owned(), v.to_owned());
        }
        let vs = name_variants(k);
        let pick = mix(self.names ^ ((i as u64) << 8) ^ (k as u64)) as usize;
        // the canonical spelling half of the time
        let name = if pick & 1 == 0 {
            vs[0]
        } else {
            vs[(pick >> 1) % vs.len()]
        };
        (name.to_owned(), line.to_owned())
    }

    fn start_line(&self) -> String {
        match &self.start {
            GenStart::Request { method, uri } => format!("{method} {} SIP/2.0", uri.render()),
            GenStart::Response { code, reason } => format!(
                "SIP/2.0 {code} {}",
                reason.as_deref().unwrap_or(reason_phrase(*code))
            ),
        }
    }

    /// All header lines `(name, value)` in wire order, and the bytes.
    fn render(&self) -> (Vec<(String, String)>, Vec<u8>) {
        let mut lines = Vec::new();
        let mut i = 0;
        let blocks = self.blocks();
        let blocks = match self.hand {
            Some(h) => shuffled(blocks, h.order),
            None => blocks,
        };
        for (k, ls) in &blocks {
            for l in ls {
                lines.push(self.name_for(*k, l, i));
                i += 1;
            }
        }
        match self.hand {
            None => self.render_builder(lines),
            Some(h) => self.render_hand(lines, h),
        }
    }

    fn render_builder(&self, mut lines: Vec<(String, String)>) -> (Vec<(String, String)>, Vec<u8>) {
        macro_rules! fill {
            ($b:expr) => {{
                let mut b = $b;
                for (n, v) in &lines {
                    b = b.header(n, v);
                }
                let cl = self.name_for(K::ContentLength, "", 1000).0;
                if cl != "Content-Length" {
                    b = b.header(&cl, self.body.len());
                    lines.push((cl.clone(), self.body.len().to_string()));
                }
                if let Some(ct) = &self.content_type {
                    b = b.body(ct, self.body.clone());
                    lines.push(("Content-Type".into(), ct.clone()));
                } else {
                    assert!(self.body.is_empty());
                }
                if cl == "Content-Length" {
                    lines.push((cl, self.body.len().to_string()));
                }
                // build() parses what it rendered; it must agree with to_vec()
                let owned = b
                    .clone()
                    .build()
                    .unwrap_or_else(|e| panic!("builder output refused: {e}"));
                let bytes = b.to_vec();
                assert_eq!(owned.bytes().as_ref(), bytes.as_slice());
                bytes
            }};
        }
        let bytes = match &self.start {
            GenStart::Request { method, uri } => {
                fill!(RequestBuilder::new(
                    Method::from_token(method),
                    &uri.render()
                ))
            }
            GenStart::Response { code, reason } => {
                fill!(ResponseBuilder::new(*code, reason.as_deref()))
            }
        };
        (lines, bytes)
    }

    fn render_hand(
        &self,
        mut lines: Vec<(String, String)>,
        h: Hand,
    ) -> (Vec<(String, String)>, Vec<u8>) {
        if let Some(ct) = &self.content_type {
            lines.push(self.name_for(K::ContentType, ct, 1001));
        }
        lines.push(self.name_for(K::ContentLength, &self.body.len().to_string(), 1002));
        let mut out = self.start_line();
        out.push_str("\r\n");
        for (i, (n, v)) in lines.iter().enumerate() {
            let r = mix(h.ws ^ i as u64);
            let before = ["", "", "", " ", "\t"][(r % 5) as usize];
            let after = ["", " ", " ", " ", "  ", "\t"][((r >> 8) % 6) as usize];
            let trail = ["", "", "", " ", "\t "][((r >> 16) % 5) as usize];
            out.push_str(&format!("{n}{before}:{after}{v}{trail}\r\n"));
        }
        out.push_str("\r\n");
        let mut bytes = out.into_bytes();
        bytes.extend_from_slice(&self.body);
        (lines, bytes)
    }
}

fn method() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => select(vec![
            "INVITE", "ACK", "BYE", "CANCEL", "REGISTER", "OPTIONS", "PRACK", "SUBSCRIBE",
            "NOTIFY", "PUBLISH", "INFO", "REFER", "MESSAGE", "UPDATE",
        ])
        .prop_map(str::to_owned),
        1 => "[A-Z][A-Z0-9-]{1,10}".prop_map(|s: String| s),
        1 => token(12),
    ]
}

/// callid = word [ "@" word ]
fn call_id() -> impl Strategy<Value = String> {
    let word = r#"[A-Za-z0-9.!%*_+`'~()<>:\\"/\[\]?{}-]{1,16}"#;
    (word, proptest::option::of(word)).prop_map(|(a, b)| match b {
        Some(b) => format!("{a}@{b}"),
        None => a,
    })
}

fn option_tag() -> impl Strategy<Value = String> {
    prop_oneof![
        select(vec![
            "100rel",
            "timer",
            "path",
            "gruu",
            "outbound",
            "sec-agree",
            "precondition"
        ])
        .prop_map(str::to_owned),
        "[a-z0-9.+-]{1,10}".prop_map(|s: String| s),
    ]
}

/// Extension headers: names the crate does not know, distinct ignoring case; TEXT-UTF8 values.
fn extensions() -> impl Strategy<Value = Vec<(String, String)>> {
    let name = "X-[A-Za-z0-9-]{1,10}".prop_filter("unknown header name", |n: &String| {
        HeaderName::from_bytes(n.as_bytes()) == HeaderName::Other
    });
    let value = r"[!-~é日]([ -~é日\t]{0,20}[!-~é日])?";
    vec((name, value), 0..=3).prop_map(|v| {
        let mut seen = Vec::<String>::new();
        v.into_iter()
            .filter(|(n, _)| {
                let l = n.to_ascii_lowercase();
                !seen.contains(&l) && {
                    seen.push(l);
                    true
                }
            })
            .collect()
    })
}

fn body() -> impl Strategy<Value = (Vec<u8>, Option<String>)> {
    let ct = select(vec![
        "application/sdp",
        "application/vnd.3gpp.sms",
        "text/plain;charset=UTF-8",
        "application/octet-stream",
        "message/sipfrag",
    ]);
    // a body always has a Content-Type; an empty one sometimes does
    (vec(any::<u8>(), 0..64), ct, any::<bool>()).prop_map(|(b, ct, typed)| {
        let ct = (typed || !b.is_empty()).then(|| ct.to_owned());
        (b, ct)
    })
}

fn msg(request_only: bool) -> impl Strategy<Value = GenMsg> {
    let request = (method(), any_uri()).prop_map(|(method, uri)| GenStart::Request { method, uri });
    let response = (100..=699u16, proptest::option::of(r"[ -~\té]{0,20}"))
        .prop_map(|(code, reason)| GenStart::Response { code, reason });
    let start = if request_only {
        request.boxed()
    } else {
        prop_oneof![request, response].boxed()
    };
    let sip_boxed = || sip_uri().prop_map(GenUri::Sip).boxed();
    let route = move || name_addr(sip_boxed(), Just(Vec::new()).boxed(), true);
    let contacts = proptest::option::of(prop_oneof![
        1 => Just(GenContacts::Star),
        4 => (vec(contact(), 1..=3), layout()).prop_map(|(c, l)| GenContacts::List(c, l)),
    ]);
    let mf = proptest::option::weighted(0.9, prop_oneof![9 => 1..=255u8, 1 => Just(0u8)]);
    (
        start,
        (vec(via(), 1..=4), layout()),
        mf,
        (vec(route(), 0..=4), layout()),
        (vec(route(), 0..=3), layout()),
        name_addr(any_uri().boxed(), tag_param(true), false),
        name_addr(any_uri().boxed(), tag_param(false), false),
        (call_id(), any::<u32>(), method()),
        contacts,
        (
            (vec(option_tag(), 0..=4), layout()),
            (vec(option_tag(), 0..=3), layout()),
            extensions(),
            body(),
            any::<u64>(),
            proptest::option::of((any::<u64>(), any::<u64>())),
        ),
    )
        .prop_map(
            |(
                start,
                (vias, via_layout),
                max_forwards,
                (routes, route_layout),
                (record_routes, rr_layout),
                from,
                to,
                (call_id, seq, m),
                contacts,
                (supported, require, extensions, (body, content_type), names, hand),
            )| {
                // a request's CSeq carries its own method (RFC 3261 §8.1.1.5)
                let cseq_method = match &start {
                    GenStart::Request { method, .. } => method.clone(),
                    GenStart::Response { .. } => m,
                };
                GenMsg {
                    start,
                    vias,
                    via_layout,
                    max_forwards,
                    routes,
                    route_layout,
                    record_routes,
                    rr_layout,
                    from,
                    to,
                    call_id,
                    cseq: (seq, cseq_method),
                    contacts,
                    supported,
                    require,
                    extensions,
                    body,
                    content_type,
                    names,
                    hand: hand.map(|(order, ws)| Hand { order, ws }),
                }
            },
        )
}

/// Every generated field must come out of the typed accessors.
fn check_msg(m: &Message<'_>, g: &GenMsg, lines: &[(String, String)]) -> Result<(), TestCaseError> {
    prop_assert_eq!(m.version(), Version::SIP_2_0);
    match &g.start {
        GenStart::Request { method, uri } => {
            prop_assert!(m.is_request());
            prop_assert_eq!(m.method().map(|x| x.as_str()), Some(method.as_str()));
            let text = uri.render();
            prop_assert_eq!(m.request_uri_str(), Some(text.as_str()));
            let u = m
                .request_uri()
                .ok_or_else(|| fail("Request-URI not parsed".into()))?;
            uri.check(&u)?;
            prop_assert_eq!(m.status(), None);
        }
        GenStart::Response { code, reason } => {
            prop_assert!(!m.is_request());
            prop_assert_eq!(m.status(), Some(*code));
            prop_assert_eq!(
                m.reason(),
                Some(reason.as_deref().unwrap_or(reason_phrase(*code)))
            );
            prop_assert_eq!(m.method(), None);
        }
    }
    let start_line = g.start_line();
    prop_assert_eq!(m.start_line_str(), start_line.as_str());

    // every header line, in order, with its name as written and its value (LWS trimmed)
    let got: Vec<(String, String)> = m
        .headers()
        .map(|h| (h.raw_name().to_owned(), h.value().to_owned()))
        .collect();
    prop_assert_eq!(&got, &lines.to_vec());
    prop_assert_eq!(m.header_count(), lines.len());

    // Via
    let vias: Vec<Via<'_>> = m
        .via()
        .collect::<Result<_, _>>()
        .map_err(|e| fail(format!("Via: {e}")))?;
    prop_assert_eq!(vias.len(), g.vias.len());
    for (gv, v) in g.vias.iter().zip(&vias) {
        gv.check(v)?;
    }
    let top = m.top_via().map_err(|e| fail(format!("top Via: {e}")))?;
    prop_assert_eq!(top, Some(vias[0]));

    // From / To
    let from = m.from().map_err(|e| fail(format!("From: {e}")))?;
    g.from.check(&from.ok_or_else(|| fail("no From".into()))?)?;
    let to = m.to().map_err(|e| fail(format!("To: {e}")))?;
    g.to.check(&to.ok_or_else(|| fail("no To".into()))?)?;

    // Call-ID, CSeq, Max-Forwards
    let cid = m.call_id().map_err(|e| fail(format!("Call-ID: {e}")))?;
    prop_assert_eq!(cid.map(|c| c.as_str()), Some(g.call_id.as_str()));
    let cseq = m
        .cseq()
        .map_err(|e| fail(format!("CSeq: {e}")))?
        .ok_or_else(|| fail("no CSeq".into()))?;
    prop_assert_eq!(cseq.seq, g.cseq.0);
    prop_assert_eq!(cseq.method.as_str(), g.cseq.1.as_str());
    prop_assert_eq!(
        m.max_forwards()
            .map_err(|e| fail(format!("Max-Forwards: {e}")))?,
        g.max_forwards
    );

    // Contact
    let contacts: Vec<Contact<'_>> = m
        .contacts()
        .collect::<Result<_, _>>()
        .map_err(|e| fail(format!("Contact: {e}")))?;
    match &g.contacts {
        None => prop_assert!(contacts.is_empty()),
        Some(GenContacts::Star) => prop_assert_eq!(contacts, vec![Contact::Star]),
        Some(GenContacts::List(gc, _)) => {
            prop_assert_eq!(contacts.len(), gc.len());
            for (g, c) in gc.iter().zip(&contacts) {
                g.check(c)?;
            }
        }
    }

    // Route / Record-Route, typed and as raw list elements
    let routes: Vec<headers::Route<'_>> = m
        .get_all::<headers::Route<'_>>()
        .collect::<Result<_, _>>()
        .map_err(|e| fail(format!("Route: {e}")))?;
    prop_assert_eq!(routes.len(), g.routes.len());
    for (gr, r) in g.routes.iter().zip(&routes) {
        gr.check(&r.0)?;
    }
    let raw: Vec<&str> = m.list(HeaderName::Route).map(|(_, e)| e).collect();
    let want: Vec<String> = g.routes.iter().map(GenNameAddr::render).collect();
    prop_assert_eq!(raw, want.iter().map(String::as_str).collect::<Vec<_>>());
    let rrs: Vec<headers::RecordRoute<'_>> = m
        .get_all::<headers::RecordRoute<'_>>()
        .collect::<Result<_, _>>()
        .map_err(|e| fail(format!("Record-Route: {e}")))?;
    prop_assert_eq!(rrs.len(), g.record_routes.len());
    for (gr, r) in g.record_routes.iter().zip(&rrs) {
        gr.check(&r.0)?;
    }

    // Supported / Require
    let sup: Vec<&str> = m.list(HeaderName::Supported).map(|(_, t)| t).collect();
    prop_assert_eq!(
        &sup,
        &g.supported.0.iter().map(String::as_str).collect::<Vec<_>>()
    );
    let sup_typed: Vec<&str> = m
        .get_all::<headers::Supported<'_>>()
        .map(|r| r.map(|s| s.0))
        .collect::<Result<_, _>>()
        .map_err(|e| fail(format!("Supported: {e}")))?;
    prop_assert_eq!(sup_typed, sup);
    let req: Vec<&str> = m
        .get_all::<headers::Require<'_>>()
        .map(|r| r.map(|s| s.0))
        .collect::<Result<_, _>>()
        .map_err(|e| fail(format!("Require: {e}")))?;
    prop_assert_eq!(
        req,
        g.require.0.iter().map(String::as_str).collect::<Vec<_>>()
    );

    // extension headers, by name in any case
    for (n, v) in &g.extensions {
        let found: Vec<&str> = m.headers_named(n).map(|h| h.value()).collect();
        prop_assert_eq!(found, vec![v.as_str()]);
        prop_assert_eq!(m.header_str(&n.to_ascii_uppercase()), Some(v.as_str()));
    }

    // body
    prop_assert_eq!(m.body(), g.body.as_slice());
    prop_assert_eq!(m.content_length(), Some(g.body.len() as u32));
    prop_assert!(!m.content_length_conflict());
    prop_assert_eq!(m.header(HeaderName::ContentType), g.content_type.as_deref());
    Ok(())
}

/// The header lines of a message as written (without CRLF; the generators never fold), minus
/// Max-Forwards and, when `drop_first_route`, the first Route line.
fn other_lines(msg: &[u8], drop_first_route: bool) -> Vec<(HeaderName, String)> {
    let text = String::from_utf8_lossy(msg);
    let head = &text[..text.find("\r\n\r\n").unwrap()];
    let mut dropped = !drop_first_route;
    head.split("\r\n")
        .skip(1)
        .map(|l| {
            let name = l.split([':', ' ', '\t']).next().unwrap();
            (HeaderName::from_bytes(name.as_bytes()), l.to_owned())
        })
        .filter(|(n, _)| match n {
            HeaderName::MaxForwards => false,
            HeaderName::Route if !dropped => {
                dropped = true;
                false
            }
            _ => true,
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(config())]

    /// SIP/SIPS URIs: render -> parse -> parts, text and reflexive equivalence.
    #[test]
    fn sip_uri_roundtrip(g in sip_uri()) {
        GenUri::Sip(g.clone()).parse_and_check()?;
        let text = g.render();
        // direct SipUri::parse gives the same value as Uri::parse
        let direct = SipUri::parse(&text).map_err(|e| fail(format!("{text}: {e}")))?;
        prop_assert_eq!(Uri::parse(&text).ok(), Some(Uri::Sip(direct)));
        // RFC 3261 §19.1.4: an unreserved character and its escape are equivalent, and the host
        // compares case-insensitively
        if let Some((u, _)) = &g.user {
            if let Some(i) = unescaped_alnum(u) {
                let c = u.as_bytes()[i];
                let mut g2 = g.clone();
                let mut u2 = u.clone();
                u2.replace_range(i..=i, &format!("%{c:02X}"));
                g2.user = Some((u2, g.user.as_ref().unwrap().1.clone()));
                if let GenHost::Domain(d) = &g.host {
                    g2.host = GenHost::Domain(d.to_ascii_uppercase());
                }
                let t2 = g2.render();
                let p2 = SipUri::parse(&t2).map_err(|e| fail(format!("{t2}: {e}")))?;
                prop_assert!(direct.equivalent(&p2), "{} !~ {}", text, t2);
                prop_assert!(p2.equivalent(&direct), "{} !~ {}", t2, text);
            }
        }
        // a different port is never equivalent (§19.1.4: explicit port vs none, or another port)
        let mut g3 = g.clone();
        g3.port = Some(g.port.map_or(5060, |p| p.wrapping_add(1)));
        let t3 = g3.render();
        let p3 = SipUri::parse(&t3).map_err(|e| fail(format!("{t3}: {e}")))?;
        prop_assert!(!direct.equivalent(&p3), "{} ~ {}", text, t3);
    }

    /// tel URIs (RFC 3966): global and local numbers, separators, ext / isub / phone-context.
    #[test]
    fn tel_uri_roundtrip(g in tel_uri()) {
        GenUri::Tel(g).parse_and_check()?;
    }

    /// Other absolute URIs are kept as written.
    #[test]
    fn other_uri_roundtrip(g in other_uri()) {
        GenUri::Other(g).parse_and_check()?;
    }

    /// Messages: build -> serialize -> parse_datagram and stream parse -> every field; an untouched
    /// edit re-serializes byte for byte; a stream prefix is Partial; datagram bytes past the
    /// Content-Length are ignored.
    #[test]
    fn message_roundtrip(
        g in msg(false),
        cut in any::<proptest::sample::Index>(),
        junk in vec(any::<u8>(), 1..16),
    ) {
        let (lines, bytes) = g.render();

        let m = parse_datagram(&bytes).map_err(|e| {
            fail(format!("parse_datagram: {e}\n{}", String::from_utf8_lossy(&bytes)))
        })?;
        prop_assert_eq!(m.as_bytes(), bytes.as_slice());
        check_msg(&m, &g, &lines)?;
        prop_assert_eq!(m.edit().to_vec(), bytes.clone());
        let owned = m.to_owned_message();
        check_msg(&owned.as_message(), &g, &lines)?;

        match parse(&bytes) {
            Ok(Status::Complete((s, n))) => {
                prop_assert_eq!(n, bytes.len());
                check_msg(&s, &g, &lines)?;
                prop_assert_eq!(s.edit().to_vec(), bytes.clone());
            }
            other => return Err(fail(format!("stream parse: {other:?}"))),
        }

        // a stream that has only part of the message asks for more
        let k = cut.index(bytes.len());
        match parse(&bytes[..k]) {
            Ok(Status::Partial(_)) => {}
            other => return Err(fail(format!("prefix of {k} bytes: {other:?}"))),
        }
        // the next message already in the stream buffer is not consumed
        let mut two = bytes.clone();
        two.extend_from_slice(&bytes);
        match parse(&two) {
            Ok(Status::Complete((_, n))) => prop_assert_eq!(n, bytes.len()),
            other => return Err(fail(format!("two messages: {other:?}"))),
        }
        // RFC 3261 §18.3: datagram bytes after Content-Length are not part of the message
        let mut padded = bytes.clone();
        padded.extend_from_slice(&junk);
        let p = parse_datagram(&padded).map_err(|e| fail(format!("padded datagram: {e}")))?;
        prop_assert_eq!(p.as_bytes(), bytes.as_slice());
        prop_assert_eq!(p.body(), g.body.as_slice());
    }

    /// Proxy edits: push_via + pop_route + decrement_max_forwards change the Via stack, the Route
    /// list and Max-Forwards as RFC 3261 §16.6 says, and leave every other line byte-identical.
    #[test]
    fn proxy_edit(g in msg(true), new_via in via()) {
        let (_, bytes) = g.render();
        let m = parse_datagram(&bytes).map_err(|e| fail(format!("parse: {e}")))?;
        let mut e = m.edit();
        let nv = new_via.render();
        e.push_via(nv.clone());
        let popped = e.pop_route();
        let mf = e.decrement_max_forwards();
        let out = e.to_vec();

        let route_elems: Vec<String> = g.routes.iter().map(GenNameAddr::render).collect();
        prop_assert_eq!(popped.as_deref(), route_elems.first().map(String::as_str));
        let want_mf = match g.max_forwards {
            None => Some(70),
            Some(0) => None,
            Some(n) => Some(n - 1),
        };
        prop_assert_eq!(mf.as_ref().ok().copied(), want_mf);

        let f = parse_datagram(&out).map_err(|e| {
            fail(format!("edited message: {e}\n{}", String::from_utf8_lossy(&out)))
        })?;
        match parse(&out) {
            Ok(Status::Complete((_, n))) => prop_assert_eq!(n, out.len()),
            other => return Err(fail(format!("edited message, stream parse: {other:?}"))),
        }
        prop_assert_eq!(f.start_line_str(), m.start_line_str());
        prop_assert_eq!(f.body(), m.body());

        // Via: the new one on top, then the old ones unchanged
        let vias: Vec<Via<'_>> = f.via().collect::<Result<_, _>>().map_err(|e| fail(format!("Via: {e}")))?;
        prop_assert_eq!(vias.len(), g.vias.len() + 1);
        new_via.check(&vias[0])?;
        for (gv, v) in g.vias.iter().zip(&vias[1..]) {
            gv.check(v)?;
        }
        prop_assert_eq!(f.header(HeaderName::Via), Some(nv.as_str()));

        // Route: the first element gone, the rest in order
        let raw: Vec<&str> = f.list(HeaderName::Route).map(|(_, e)| e).collect();
        let rest: Vec<&str> = route_elems.iter().skip(1).map(String::as_str).collect();
        prop_assert_eq!(raw, rest);
        let routes: Vec<headers::Route<'_>> = f
            .get_all::<headers::Route<'_>>()
            .collect::<Result<_, _>>()
            .map_err(|e| fail(format!("Route: {e}")))?;
        for (gr, r) in g.routes.iter().skip(1).zip(&routes) {
            gr.check(&r.0)?;
        }

        // Max-Forwards
        let want_after = match g.max_forwards {
            None => Some(70),
            Some(0) => Some(0),
            Some(n) => Some(n - 1),
        };
        prop_assert_eq!(f.max_forwards().map_err(|e| fail(format!("Max-Forwards: {e}")))?, want_after);
        prop_assert_eq!(f.headers_of(HeaderName::MaxForwards).count(), 1);

        // every other line byte for byte, in order: the old Via lines, the untouched Route lines
        // and all the rest; the only new lines are the pushed Via (above the first old one) and the
        // remainder of the first Route line when it held more than one element
        let first_route_replaced = g.routes.len() > 1 && g.route_layout.breaks & 0b10 == 0;
        let mut before = other_lines(&bytes, !g.routes.is_empty());
        let after = other_lines(&out, first_route_replaced);
        let first_via = before.iter().position(|(n, _)| *n == HeaderName::Via).unwrap();
        before.insert(first_via, (HeaderName::Via, format!("Via: {nv}")));
        let text = |v: Vec<(HeaderName, String)>| v.into_iter().map(|(_, l)| l).collect::<Vec<_>>();
        prop_assert_eq!(text(after), text(before));
    }
}

/// Equivalence must be reflexive for every URI the parser accepts. The grammar (RFC 3261 §25.1
/// `*( ";" uri-parameter )`, RFC 3966 `*par`) lets a parameter name repeat, and then
/// `SipUri::equivalent` / `TelUri::equivalent` compare each parameter with the *first* one of that
/// name on the other side, so a URI was not equivalent to itself (found by this suite, fixed).
#[test]
fn uri_equivalence_with_repeated_parameter() {
    for s in [
        "sip:alice@example.com;x=1;x=2",
        "sip:alice@example.com;X=1;x=2",
        "sip:alice@example.com;transport=udp;transport=tcp",
        "tel:+15551234567;x=1;x=2",
    ] {
        let u = Uri::parse(s).unwrap();
        assert!(u.equivalent(&u), "{s} is not equivalent to itself");
    }
}
