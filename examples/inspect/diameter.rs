//! `inspect diameter`: one Diameter message (RFC 6733) as JSON, AVPs named from the dictionary.
//!
//! ```text
//! cargo run --example inspect -- diameter [--no-validate] [--compact] FILE
//! ```
//!
//! FILE holds the raw octets of one message, or the same as hex text (whitespace ignored; detected
//! when the file is only hex digits and whitespace). The object: `version`, `length`, `flags`
//! (`{R, P, E, T}` booleans), `command_code`, `command` (`"UAR"`/`"UAA"`, `null` when unknown),
//! `application_id`, `application`, `hop_by_hop` / `end_to_end` (`"0x…"`), and `avps`: an array
//! of `{code, vendor, name, flags: {V, M, P}, length}` plus, by dictionary type, `value` (numbers,
//! text, addresses, `{value, name}` for Enumerated, `{ntp, unix}` for Time, `{text, rule}` for
//! IPFilterRule, `{text, uri}` for DiameterURI), `hex` for octet strings (and `text` when it is
//! printable UTF-8), or nested `avps` for Grouped. An AVP whose value does not decode gets
//! `"error"`.
//!
//! Unless `--no-validate`, the message is checked as a receiver would (the typed command's
//! grammar and values, [`ims::diameter::answer::validate`]): a failure adds `"check": {kind,
//! message, offset, avp, result_code}` and the exit status is 1. A message that does not parse
//! (header, lengths, AVP framing) is reported on stderr with its result code; exit 1.

use super::{emit, parse_args, read_input, Failure};
use ims::diameter::dict::{self, AvpType};
use ims::diameter::{answer, Avp, AvpIter, Error, Message};
use serde_json::{json, Map, Value};

/// The `diameter` options.
pub(crate) const OPTIONS: &[(&str, &str)] = &[
    (
        "--no-validate",
        "skip the command grammar check (a parse error still fails)",
    ),
    ("--compact", "print the JSON object on one line"),
];

/// One-line description for the usage text.
pub(crate) const ABOUT: &str =
    "one Diameter message (RFC 6733; base, Cx/Dx, Rx), raw octets or hex,\n\
     AVPs named from the dictionary and checked against the command grammar";

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Hex text to octets, when the whole input is hex digits and whitespace.
fn unhex(buf: &[u8]) -> Option<Vec<u8>> {
    let digits: Vec<u8> = buf
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    if digits.is_empty() || digits.len() % 2 != 0 || !digits.iter().all(u8::is_ascii_hexdigit) {
        return None;
    }
    digits
        .chunks(2)
        .map(|p| u8::from_str_radix(std::str::from_utf8(p).ok()?, 16).ok())
        .collect()
}

fn error_json(e: &Error) -> Value {
    json!({
        "kind": format!("{:?}", e.kind),
        "message": e.kind.to_string(),
        "offset": e.offset,
        "avp": e.avp.map(|a| a.to_string()),
        "result_code": e.result_code(),
    })
}

fn value_json(a: &Avp<'_>, ty: AvpType, o: &mut Map<String, Value>) -> Result<(), Error> {
    let mut put = |k: &str, v: Value| {
        o.insert(k.to_owned(), v);
    };
    match ty {
        AvpType::Unsigned32 => put("value", a.u32()?.into()),
        AvpType::Unsigned64 => put("value", a.u64()?.into()),
        AvpType::Integer32 => put("value", a.i32()?.into()),
        AvpType::Integer64 => put("value", a.i64()?.into()),
        AvpType::Float32 => put("value", json!(a.f32()?)),
        AvpType::Float64 => put("value", json!(a.f64()?)),
        AvpType::Enumerated => {
            let v = a.i32()?;
            let name = a.def().and_then(|d| d.enum_name(v));
            put("value", json!({"value": v, "name": name}));
        }
        AvpType::UTF8String | AvpType::DiameterIdentity => put("value", a.utf8()?.into()),
        AvpType::DiameterURI => {
            let text = a.utf8()?;
            put(
                "value",
                json!({"text": text, "uri": a.uri().ok().map(|u| json!({
                    "secure": u.secure, "host": u.host, "port": u.port_or_default(),
                    "transport": u.transport.map(|t| format!("{t:?}").to_lowercase()),
                    "protocol": u.protocol.map(|p| format!("{p:?}").to_lowercase()),
                }))}),
            );
        }
        AvpType::IPFilterRule => {
            let text = a.utf8()?;
            put(
                "value",
                json!({"text": text, "rule": a.ip_filter_rule().ok().map(|r| json!({
                    "action": format!("{:?}", r.action).to_lowercase(),
                    "direction": format!("{:?}", r.direction).to_lowercase(),
                    "protocol": r.protocol,
                    "src": r.src.to_string(),
                    "dst": r.dst.to_string(),
                    "options": r.options,
                }))}),
            );
        }
        AvpType::Address => put("value", a.address()?.to_string().into()),
        AvpType::Time => {
            let t = a.time()?;
            put("value", json!({"ntp": t.0, "unix": t.to_unix()}));
        }
        AvpType::Grouped => put("avps", avps_json(a.grouped()?)),
        AvpType::OctetString => {
            put("hex", hex(a.data()).into());
            if let Ok(t) = std::str::from_utf8(a.data()) {
                if t.chars()
                    .all(|c| !c.is_control() || c == '\n' || c == '\r' || c == '\t')
                {
                    put("text", t.into());
                }
            }
        }
    }
    Ok(())
}

fn avps_json(it: AvpIter<'_>) -> Value {
    it.map(|a| {
        let f = a.flags();
        let mut o = Map::new();
        o.insert("code".into(), a.code().into());
        o.insert("vendor".into(), a.vendor_id().into());
        o.insert("name".into(), a.name().map_or(Value::Null, Value::from));
        o.insert(
            "flags".into(),
            json!({"V": f.is_vendor(), "M": f.is_mandatory(), "P": f.is_protected()}),
        );
        o.insert("length".into(), a.as_bytes().len().into());
        // Failed-AVP holds AVPs of any kind: show them, but do not judge them
        let ty = a.def().map_or(AvpType::OctetString, |d| d.ty);
        if let Err(e) = value_json(&a, ty, &mut o) {
            o.insert("hex".into(), hex(a.data()).into());
            o.insert("error".into(), error_json(&e));
        }
        Value::Object(o)
    })
    .collect()
}

fn message_json(m: &Message<'_>) -> Value {
    let h = m.header();
    let cmd = dict::command(h.code, h.application_id);
    json!({
        "version": h.version,
        "length": h.length,
        "flags": {"R": h.flags.is_request(), "P": h.flags.is_proxiable(), "E": h.flags.is_error(), "T": h.flags.is_retransmit()},
        "command_code": h.code,
        "command": cmd.map(|c| if h.flags.is_request() { c.request } else { c.answer }),
        "application_id": h.application_id,
        "application": dict::application_name(h.application_id),
        "hop_by_hop": format!("0x{:08x}", h.hop_by_hop),
        "end_to_end": format!("0x{:08x}", h.end_to_end),
        "avps": avps_json(m.avps()),
    })
}

/// The `diameter` subcommand.
pub(crate) fn run(args: &[String]) -> Result<(), Failure> {
    let (flags, path) = parse_args(args, OPTIONS)?;
    let raw = read_input(path)?;
    let buf = unhex(&raw).unwrap_or(raw);
    let msg = Message::parse(&buf).map_err(|e| {
        eprintln!("inspect diameter: parse error: {e}");
        eprintln!("  kind: {:?}", e.kind);
        eprintln!("  offset: {}", e.offset);
        if let Some(a) = e.avp {
            eprintln!("  avp: {a}");
        }
        match e.result_code() {
            Some(rc) => eprintln!("  result_code: {rc}"),
            None => eprintln!("  result_code: - (incomplete: wait for more octets)"),
        }
        Failure::Failed
    })?;
    if msg.len() < buf.len() {
        eprintln!(
            "inspect diameter: note: {} octets after the message ignored",
            buf.len() - msg.len()
        );
    }
    let mut v = message_json(&msg);
    let mut failed = false;
    if !flags.contains(&"--no-validate") {
        if let Err(e) = answer::validate(&msg) {
            eprintln!("inspect diameter: rejected: {e}");
            v["check"] = error_json(&e);
            failed = true;
        }
    }
    emit(&v, flags.contains(&"--compact"))?;
    if failed {
        Err(Failure::Failed)
    } else {
        Ok(())
    }
}
