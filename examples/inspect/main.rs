//! `inspect`: a tshark-like decoder that prints one protocol message as one JSON object.
//!
//! ```text
//! cargo run --example inspect -- sip [--stream] [--no-validate] [--compact] FILE
//! cargo run --example inspect -- sip - < message.sip
//! ```
//!
//! Each codec is a subcommand with its own handler in [`CODECS`]; a later codec (SDP, Diameter,
//! SMS, MSRP) adds one entry there and one function. Exit status: 0 when the message was decoded
//! and printed, 1 when it failed to parse or was rejected (details on stderr), 2 on a usage error
//! (unknown subcommand or option, missing or unreadable FILE).
//!
//! # `sip` output
//! The message is parsed with [`ims::sip::parse_datagram`] (or [`ims::sip::parse`] with
//! `--stream`) and checked with [`ims::sip::validate`] unless `--no-validate` is given. Every
//! value comes from the crate's own accessors:
//!
//! - `kind` (`"request"`/`"response"`), `method` and `request_uri` or `status` and `reason`,
//!   `version` (`"SIP/2.0"`);
//! - `headers`: `[long_name, raw_value]` pairs in wire order, compact names expanded; the raw value
//!   keeps internal folding;
//! - `body_offset` (where the body starts in the input) and `body_len`, and `body` (the body as
//!   text) when it is UTF-8, else `body_hex` (lowercase hex);
//! - typed views, `null` when the header is absent: `via` (array of `{transport, host, port,
//!   branch, received, rport}`; `rport` is `true` when present without a value), `from` / `to`
//!   (`{display_name, uri, tag}`, the display name unquoted), `call_id`, `cseq` (`{seq, method}`),
//!   `contact` (array of `{uri, expires, params}`, `{"uri": "*"}` for `*`; `params` maps each
//!   contact-param name as written to its unquoted value, or `true` for a flag; the first of
//!   repeated names wins), `content_type` (the media type as the typed view writes it back) and
//!   `max_forwards`;
//! - `parts` when the Content-Type is `multipart/*`: array of `{content_type, len}` (with nested
//!   `parts` for a nested multipart part; `content_type` is `null` when the part has none).
//!
//! A typed view that fails to parse (possible with `--no-validate`, or for a malformed multipart
//! body) is shown as `{"error": {kind, message, offset, header}}` in place of its value. Offsets
//! count from the start of the message, except in a `parts` error, where they count from the start
//! of the body (as `Message::multipart` reports them).

mod diameter;
mod digest;
mod msrp;
mod sdp;
mod sms;

use ims::sip::headers::{Contact, ContentType, NameAddrHeader, Via};
use ims::sip::multipart::Part;
use ims::sip::{
    self, HeaderName, Limits, Message, ParseError, Rejection, StartLine, Status, ValidationConfig,
};
use serde_json::{json, Map, Value};
use std::io::{Read, Write};
use std::process::ExitCode;

/// One subcommand.
struct Codec {
    /// The subcommand name.
    name: &'static str,
    /// One line saying what it decodes.
    about: &'static str,
    /// Options the subcommand accepts, with their help text.
    options: &'static [(&'static str, &'static str)],
    /// The handler, given the arguments after the subcommand name.
    run: fn(&[String]) -> Result<(), Failure>,
}

/// The codecs, in the order the usage text lists them.
const CODECS: &[Codec] = &[
    Codec {
        name: "sip",
        about: "one SIP message (RFC 3261), parsed with datagram rules (RFC 3261 §18.3)\n\
            and validated as a UAS would (RFC 3261 §8.2)",
        options: SIP_OPTIONS,
        run: sip_cmd,
    },
    Codec {
        name: "sdp",
        about: sdp::ABOUT,
        options: sdp::OPTIONS,
        run: sdp::run,
    },
    Codec {
        name: "digest",
        about: digest::ABOUT,
        options: digest::OPTIONS,
        run: digest::run,
    },
    Codec {
        name: "msrp",
        about: msrp::ABOUT,
        options: msrp::OPTIONS,
        run: msrp::run,
    },
    Codec {
        name: "sms",
        about: sms::ABOUT,
        options: sms::OPTIONS,
        run: sms::run,
    },
    Codec {
        name: "diameter",
        about: diameter::ABOUT,
        options: diameter::OPTIONS,
        run: diameter::run,
    },
];

/// Why a subcommand did not print its result.
#[derive(Debug)]
enum Failure {
    /// Bad command line or unreadable input: print this and the usage, exit 2.
    Usage(String),
    /// The input was bad (or the output could not be written); already reported. Exit 1.
    Failed,
}

fn usage() -> String {
    let mut s = String::from(
        "usage: inspect <codec> [options] <FILE | ->\n       inspect --help\n\n\
         Decodes one message read from FILE (standard input for -) and prints it as one JSON\n\
         object on standard output.\n\ncodecs:\n",
    );
    for c in CODECS {
        let opts: String = c.options.iter().map(|(o, _)| format!(" [{o}]")).collect();
        s.push_str(&format!("  {}{opts} <FILE | ->\n", c.name));
        for line in c.about.lines() {
            s.push_str(&format!("      {line}\n"));
        }
        for (o, help) in c.options {
            s.push_str(&format!("      {o:<15} {help}\n"));
        }
    }
    s.push_str(
        "\nexit status: 0 decoded and printed; 1 parse error or validation rejection (details on\n\
         stderr); 2 usage error (unknown codec or option, missing or unreadable FILE)\n",
    );
    s
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        None => Err(Failure::Usage("missing codec".into())),
        Some("-h" | "--help" | "help") => {
            print!("{}", usage());
            return ExitCode::SUCCESS;
        }
        Some(name) => match CODECS.iter().find(|c| c.name == name) {
            Some(codec) => (codec.run)(&args[1..]),
            None => Err(Failure::Usage(format!("unknown codec '{name}'"))),
        },
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Failed) => ExitCode::from(1),
        Err(Failure::Usage(msg)) => {
            eprint!("inspect: {msg}\n\n{}", usage());
            ExitCode::from(2)
        }
    }
}

/// Splits `args` into the flags present (each must be one of `known`) and the one FILE operand.
/// `--` ends the options; `-` alone is an operand (standard input).
fn parse_args<'a>(
    args: &'a [String],
    known: &[(&str, &str)],
) -> Result<(Vec<&'a str>, &'a str), Failure> {
    let mut flags = Vec::new();
    let mut operands = Vec::new();
    let mut options_done = false;
    for a in args {
        if !options_done && a == "--" {
            options_done = true;
        } else if !options_done && a.starts_with('-') && a != "-" {
            if !known.iter().any(|(o, _)| o == a) {
                return Err(Failure::Usage(format!("unknown option '{a}'")));
            }
            flags.push(a.as_str());
        } else {
            operands.push(a.as_str());
        }
    }
    match operands.as_slice() {
        [] => Err(Failure::Usage(
            "missing FILE (use - for standard input)".into(),
        )),
        [file] => Ok((flags, file)),
        [_, extra, ..] => Err(Failure::Usage(format!("unexpected argument '{extra}'"))),
    }
}

/// Reads FILE, or standard input for `-`.
fn read_input(path: &str) -> Result<Vec<u8>, Failure> {
    let res = if path == "-" {
        let mut buf = Vec::new();
        std::io::stdin().lock().read_to_end(&mut buf).map(|_| buf)
    } else {
        std::fs::read(path)
    };
    res.map_err(|e| Failure::Usage(format!("cannot read '{path}': {e}")))
}

/// Prints the JSON object and a newline on standard output.
fn emit(v: &Value, compact: bool) -> Result<(), Failure> {
    let text = if compact {
        serde_json::to_string(v)
    } else {
        serde_json::to_string_pretty(v)
    }
    .expect("a serde_json::Value always serializes");
    let mut out = std::io::stdout().lock();
    writeln!(out, "{text}")
        .and_then(|()| out.flush())
        .map_err(|e| {
            eprintln!("inspect: cannot write output: {e}");
            Failure::Failed
        })
}

// ---------------------------------------------------------------------------------------------
// sip
// ---------------------------------------------------------------------------------------------

/// The `sip` options (see the usage text).
const SIP_OPTIONS: &[(&str, &str)] = &[
    (
        "--stream",
        "parse with stream rules instead: Content-Length is mandatory",
    ),
    (
        "--no-validate",
        "skip validation (a parse error still fails)",
    ),
    ("--compact", "print the JSON object on one line"),
];

fn sip_cmd(args: &[String]) -> Result<(), Failure> {
    let (flags, path) = parse_args(args, SIP_OPTIONS)?;
    let stream = flags.contains(&"--stream");
    let check = !flags.contains(&"--no-validate");
    let compact = flags.contains(&"--compact");
    let buf = read_input(path)?;

    let msg = if stream {
        match sip::parse(&buf) {
            Ok(Status::Complete((m, _))) => m,
            Ok(Status::Partial(more)) => {
                eprintln!("inspect sip: parse error: incomplete message (stream rules)");
                eprintln!("  kind: Incomplete");
                eprintln!("  offset: {}", buf.len());
                eprintln!("  header: -");
                match more {
                    Some(n) => eprintln!("  needed: {n} more bytes (Content-Length)"),
                    None => eprintln!("  needed: the rest of the header section"),
                }
                return Err(Failure::Failed);
            }
            Err(e) => return Err(report_parse_error(&e)),
        }
    } else {
        sip::parse_datagram(&buf).map_err(|e| report_parse_error(&e))?
    };
    if msg.len() < buf.len() {
        eprintln!(
            "inspect sip: note: {} bytes after the message (at byte {}) ignored",
            buf.len() - msg.len(),
            msg.len()
        );
    }
    if check {
        sip::validate(&msg, &ValidationConfig::default()).map_err(|r| report_rejection(&r))?;
    }
    emit(&sip_json(&msg), compact)
}

fn header_label(h: Option<HeaderName>) -> String {
    h.map_or_else(|| "-".to_owned(), |h| h.to_string())
}

fn report_parse_error(e: &ParseError) -> Failure {
    eprintln!("inspect sip: parse error: {e}");
    eprintln!("  kind: {:?}", e.kind);
    eprintln!("  offset: {}", e.offset);
    eprintln!("  header: {}", header_label(e.header));
    Failure::Failed
}

fn report_rejection(r: &Rejection) -> Failure {
    eprintln!("inspect sip: rejected: {r}");
    eprintln!("  status: {}", r.status);
    eprintln!("  reason: {}", r.reason);
    eprintln!("  text: {}", r.text);
    if !r.unsupported.is_empty() {
        eprintln!("  unsupported: {}", r.unsupported.join(", "));
    }
    if let Some(e) = &r.error {
        eprintln!("  error: {e}");
        eprintln!("  kind: {:?}", e.kind);
        eprintln!("  offset: {}", e.offset);
        eprintln!("  header: {}", header_label(e.header));
    }
    Failure::Failed
}

/// A typed view that failed to parse.
fn error_json(e: &ParseError) -> Value {
    json!({ "error": {
        "kind": format!("{:?}", e.kind),
        "message": e.kind.to_string(),
        "offset": e.offset,
        "header": e.header.map(|h| h.to_string()),
    }})
}

/// `null` when absent, the error object when it failed to parse, else `f` of the value.
fn typed<T>(r: Result<Option<T>, ParseError>, f: impl FnOnce(T) -> Value) -> Value {
    match r {
        Ok(Some(v)) => f(v),
        Ok(None) => Value::Null,
        Err(e) => error_json(&e),
    }
}

/// An array of every value of a list header, `null` when no line of it is present.
fn typed_list<T>(
    present: bool,
    values: impl Iterator<Item = Result<T, ParseError>>,
    f: impl Fn(T) -> Value,
) -> Value {
    if !present {
        return Value::Null;
    }
    values
        .map(|r| r.map_or_else(|e| error_json(&e), &f))
        .collect()
}

fn via_json(v: Via<'_>) -> Value {
    json!({
        "transport": v.transport(),
        "host": v.host().to_string(),
        "port": v.port(),
        "branch": v.branch(),
        "received": v.received(),
        "rport": match v.rport() {
            None => Value::Null,
            Some(None) => Value::Bool(true),
            Some(Some(p)) => Value::from(p),
        },
    })
}

fn name_addr_json(h: &NameAddrHeader<'_>) -> Value {
    json!({
        "display_name": h.display_name(),
        "uri": h.uri().as_str(),
        "tag": h.tag(),
    })
}

fn contact_json(c: Contact<'_>) -> Value {
    let Contact::Addr(a) = c else {
        return json!({ "uri": "*" });
    };
    let mut params = Map::new();
    for p in c.params() {
        params
            .entry(p.name)
            .or_insert_with(|| p.text().map_or(Value::Bool(true), Value::from));
    }
    json!({
        "uri": a.uri().as_str(),
        "expires": c.expires(),
        "params": params,
    })
}

fn parts_json(parts: &[Part<'_>], limits: &Limits, depth: usize) -> Value {
    parts
        .iter()
        .map(|p| {
            let mut o = Map::new();
            let mut nested = None;
            let ct = match p.content_type() {
                None => Value::Null,
                Some(Err(e)) => error_json(&e),
                Some(Ok(mt)) => {
                    if mt.mtype.eq_ignore_ascii_case("multipart") {
                        nested = Some(match p.parts(limits, depth) {
                            Ok(inner) => parts_json(&inner, limits, depth + 1),
                            Err(e) => error_json(&e),
                        });
                    }
                    Value::from(mt.to_string())
                }
            };
            o.insert("content_type".into(), ct);
            o.insert("len".into(), p.body.len().into());
            if let Some(n) = nested {
                o.insert("parts".into(), n);
            }
            Value::Object(o)
        })
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The JSON view of a parsed SIP message (see the module documentation for the fields).
fn sip_json(m: &Message<'_>) -> Value {
    let mut o = Map::new();
    let mut put = |k: &str, v: Value| {
        o.insert(k.to_owned(), v);
    };
    match m.start_line() {
        StartLine::Request {
            method,
            uri,
            version,
        } => {
            put("kind", "request".into());
            put("method", method.as_str().into());
            put("request_uri", uri.into());
            put("version", version.to_string().into());
        }
        StartLine::Response {
            version,
            code,
            reason,
        } => {
            put("kind", "response".into());
            put("status", code.into());
            put("reason", reason.into());
            put("version", version.to_string().into());
        }
    }
    put(
        "headers",
        m.headers()
            .map(|h| json!([h.long_name(), h.value()]))
            .collect(),
    );
    put("via", typed_list(m.has(HeaderName::Via), m.via(), via_json));
    put("from", typed(m.from(), |h| name_addr_json(&h)));
    put("to", typed(m.to(), |h| name_addr_json(&h)));
    put("call_id", typed(m.call_id(), |c| c.as_str().into()));
    put(
        "cseq",
        typed(
            m.cseq(),
            |c| json!({ "seq": c.seq, "method": c.method.as_str() }),
        ),
    );
    put(
        "contact",
        typed_list(m.has(HeaderName::Contact), m.contacts(), contact_json),
    );
    let ct = m.get::<ContentType<'_>>();
    let ct_ok = ct.is_ok();
    put("content_type", typed(ct, |c| c.to_string().into()));
    put("max_forwards", typed(m.max_forwards(), Value::from));

    let body = m.body();
    put("body_offset", m.body_offset().into());
    put("body_len", body.len().into());
    let limits = Limits::default();
    match m.multipart(&limits) {
        Ok(Some(parts)) => put("parts", parts_json(&parts, &limits, 1)),
        Ok(None) => {}
        // a Content-Type that does not parse is already reported under content_type
        Err(e) if ct_ok => put("parts", error_json(&e)),
        Err(_) => {}
    }
    match std::str::from_utf8(body) {
        Ok(text) => put("body", text.into()),
        Err(_) => put("body_hex", hex(body).into()),
    }
    Value::Object(o)
}
