//! `inspect digest`: one Digest challenge or credentials value (RFC 7616, RFC 3310) as JSON.
//!
//! ```text
//! cargo run --example inspect -- digest [--challenge | --credentials] [--compact] FILE
//! ```
//!
//! FILE holds a header value (`Digest realm="…", …`) or a whole header line
//! (`WWW-Authenticate: Digest …`, `Authorization: Digest …`, the Proxy- forms too); trailing
//! line ends are ignored. Without an option the header name decides, else credentials are tried
//! first (they need `username`), then a challenge.
//!
//! Output object: `kind` (`"challenge"` / `"credentials"`), every parameter the typed view has
//! (unquoted; absent ones `null`), `algorithm` (as written, `null` for the MD5 default) and
//! `algorithm_known` (the registered token, `MD5` when absent, `null` when unsupported), `extra` (other
//! parameters, values as written) and, when the nonce is an AKA nonce (RFC 3310 §3.2:
//! base64(RAND ‖ AUTN ‖ server data)), `aka_nonce` with `rand`, `autn` (hex, split into
//! `sqn_xor_ak`, `amf`, `mac`) and `server_data_len`. Credentials add `nc_value` (the count as a
//! number) and, with `auts`, `auts_hex`. A parse error prints the error on stderr and exits 1.

use super::{emit, parse_args, read_input, Failure};
use ims::auth::aka::AkaNonce;
use ims::auth::encoding::hex_encode;
use ims::auth::{AuthError, Challenge, Credentials};
use serde_json::{json, Map, Value};

/// The `digest` options.
pub(crate) const OPTIONS: &[(&str, &str)] = &[
    (
        "--challenge",
        "decode as WWW-Authenticate / Proxy-Authenticate",
    ),
    (
        "--credentials",
        "decode as Authorization / Proxy-Authorization",
    ),
    ("--compact", "print the JSON object on one line"),
];

/// One-line description for the usage text.
pub(crate) const ABOUT: &str =
    "one HTTP Digest challenge or credentials value (RFC 2617, 7616, 8760)\n\
     with the AKA nonce of RFC 3310 decoded";

#[derive(Clone, Copy, PartialEq)]
enum Want {
    Challenge,
    Credentials,
    Either,
}

/// The handler.
pub(crate) fn run(args: &[String]) -> Result<(), Failure> {
    let (flags, path) = parse_args(args, OPTIONS)?;
    let buf = read_input(path)?;
    let Ok(text) = std::str::from_utf8(&buf) else {
        eprintln!("inspect digest: the input is not UTF-8");
        return Err(Failure::Failed);
    };
    let mut text = text.trim_end_matches(['\r', '\n']);
    let mut want = match (
        flags.contains(&"--challenge"),
        flags.contains(&"--credentials"),
    ) {
        (true, true) => {
            return Err(Failure::Usage(
                "--challenge and --credentials exclude each other".into(),
            ))
        }
        (true, false) => Want::Challenge,
        (false, true) => Want::Credentials,
        (false, false) => Want::Either,
    };
    if let Some((name, value)) = text.split_once(':') {
        let n = name.trim().to_ascii_lowercase();
        let kind = match n.as_str() {
            "www-authenticate" | "proxy-authenticate" => Some(Want::Challenge),
            "authorization" | "proxy-authorization" => Some(Want::Credentials),
            _ => None,
        };
        if let Some(k) = kind {
            text = value.trim_start();
            if want == Want::Either {
                want = k;
            }
        }
    }
    let v = match want {
        Want::Challenge => Challenge::parse(text).map(|c| challenge_json(&c)),
        Want::Credentials => Credentials::parse(text).map(|c| credentials_json(&c)),
        Want::Either => match Credentials::parse(text) {
            Ok(c) => Ok(credentials_json(&c)),
            Err(_) => Challenge::parse(text).map(|c| challenge_json(&c)),
        },
    }
    .map_err(|e| report(&e))?;
    emit(&v, flags.contains(&"--compact"))
}

fn report(e: &AuthError) -> Failure {
    eprintln!("inspect digest: {e}");
    eprintln!("  answer: SIP {}", e.sip_status());
    Failure::Failed
}

fn opt(v: &Option<std::borrow::Cow<'_, str>>) -> Value {
    v.as_deref().map_or(Value::Null, |s| json!(s))
}

fn algorithm(
    raw: &Option<std::borrow::Cow<'_, str>>,
    known: Option<&'static str>,
) -> [(String, Value); 2] {
    [
        ("algorithm".into(), opt(raw)),
        (
            "algorithm_known".into(),
            known.map_or(Value::Null, |a| json!(a)),
        ),
    ]
}

fn extra(e: &[(std::borrow::Cow<'_, str>, std::borrow::Cow<'_, str>)]) -> Value {
    Value::Array(e.iter().map(|(n, v)| json!([n, v])).collect())
}

fn aka(nonce: &str) -> Value {
    match AkaNonce::parse(nonce) {
        Ok(n) => json!({
            "rand": hex_encode(&n.rand),
            "autn": hex_encode(&n.autn),
            "sqn_xor_ak": hex_encode(&n.autn[..6]),
            "amf": hex_encode(&n.autn[6..8]),
            "mac": hex_encode(&n.autn[8..]),
            "server_data_len": n.server_data.len(),
        }),
        Err(_) => Value::Null,
    }
}

fn challenge_json(c: &Challenge<'_>) -> Value {
    let mut m = Map::new();
    m.insert("kind".into(), json!("challenge"));
    m.insert("realm".into(), json!(c.realm));
    m.insert("nonce".into(), json!(c.nonce));
    for (k, v) in algorithm(&c.algorithm, c.algorithm().ok().map(|a| a.as_str())) {
        m.insert(k, v);
    }
    m.insert("qop".into(), opt(&c.qop));
    m.insert(
        "qop_options".into(),
        json!(c.qop_options().map(|q| q.as_str()).collect::<Vec<_>>()),
    );
    m.insert("opaque".into(), opt(&c.opaque));
    m.insert("domain".into(), opt(&c.domain));
    m.insert("stale".into(), json!(c.stale));
    m.insert("extra".into(), extra(&c.extra));
    m.insert("aka_nonce".into(), aka(&c.nonce));
    Value::Object(m)
}

fn credentials_json(c: &Credentials<'_>) -> Value {
    let mut m = Map::new();
    m.insert("kind".into(), json!("credentials"));
    m.insert("username".into(), json!(c.username));
    m.insert("realm".into(), json!(c.realm));
    m.insert("nonce".into(), json!(c.nonce));
    m.insert("uri".into(), json!(c.uri));
    m.insert("response".into(), json!(c.response));
    for (k, v) in algorithm(&c.algorithm, c.algorithm().ok().map(|a| a.as_str())) {
        m.insert(k, v);
    }
    m.insert("cnonce".into(), opt(&c.cnonce));
    m.insert("opaque".into(), opt(&c.opaque));
    m.insert(
        "qop".into(),
        c.qop.map_or(Value::Null, |q| json!(q.as_str())),
    );
    m.insert("nc".into(), opt(&c.nc));
    m.insert(
        "nc_value".into(),
        c.nonce_count().map_or(Value::Null, |n| json!(n)),
    );
    m.insert("auts".into(), opt(&c.auts));
    m.insert(
        "auts_hex".into(),
        match c.auts_bytes() {
            Some(Ok(b)) => json!(hex_encode(&b)),
            _ => Value::Null,
        },
    );
    m.insert("extra".into(), extra(&c.extra));
    m.insert("aka_nonce".into(), aka(&c.nonce));
    Value::Object(m)
}
