//! `inspect sdp`: one session description (RFC 8866) as JSON.
//!
//! ```text
//! cargo run --example inspect -- sdp [--sip] [--any-order] [--compact] FILE
//! ```
//!
//! Output object: `version` (0), `origin` (`{username, session_id, session_version, net_type,
//! addr_type, address}`), `name`, `info`, `uri`, `emails`, `phones`, `connection`
//! (`{net_type, addr_type, address, ttl, count}` or `null`), `bandwidths` (`[{type, value}]`),
//! `timings` (`[{start, stop, repeats}]`), `zone`, `key`, `direction` (the session-level
//! attribute or `null`), `attributes` and `media`.
//!
//! Each `media` element: `media`, `port`, `port_count`, `proto`, `formats` (array of strings),
//! `line`, `info`, `connection` (its own `c=`, else the session's), `direction` (its own, else the
//! session's, else `sendrecv`), `bandwidths`, `attributes`, and `rtpmap` (`{pt: {encoding,
//! clock_rate, params}}`) / `fmtp` (`{format: params}`) summaries.
//!
//! Each attribute is `{name, value, line, typed}`: `typed` is the attribute's typed reading
//! (`{kind, ...fields}`), `{"kind": "other"}` for names the crate does not type, or
//! `{"error": {kind, message, line, offset}}` when its value is malformed.
//!
//! `--sip` reads a SIP message and decodes its body. `--any-order` accepts lines out of RFC 8866
//! order. A parse error prints the error (kind, line, offset) on stderr and exits 1.

use super::{emit, parse_args, read_input, Failure};
use ims::sdp::{
    parse_with, Attr, Attribute, Bandwidth, Connection, Error, Media, ParserConfig, Session,
};
use serde_json::{json, Map, Value};

/// The `sdp` options.
pub(crate) const OPTIONS: &[(&str, &str)] = &[
    (
        "--sip",
        "FILE is a SIP message (datagram rules): decode its body",
    ),
    (
        "--any-order",
        "accept lines out of the RFC 8866 order (e.g. c= after t=)",
    ),
    ("--compact", "print the JSON object on one line"),
];

/// One-line description for the usage text.
pub(crate) const ABOUT: &str = "one SDP session description (RFC 8866) with typed attributes\n\
     (RFC 3264, 3312, 4145, 4568, 4975, 5547, 5888, 8122)";

/// The handler.
pub(crate) fn run(args: &[String]) -> Result<(), Failure> {
    let (flags, path) = parse_args(args, OPTIONS)?;
    let buf = read_input(path)?;
    let body: &[u8] = if flags.contains(&"--sip") {
        match ims::sip::parse_datagram(&buf) {
            Ok(m) => {
                let start = m.body_offset();
                &buf[start..start + m.body().len()]
            }
            Err(e) => {
                eprintln!("inspect sdp: the SIP message does not parse: {e}");
                return Err(Failure::Failed);
            }
        }
    } else {
        &buf
    };
    let cfg = ParserConfig {
        allow_any_order: flags.contains(&"--any-order"),
        ..ParserConfig::default()
    };
    let s = parse_with(body, &cfg).map_err(|e| {
        eprintln!("inspect sdp: parse error: {e}");
        eprintln!("  kind: {:?}", e.kind);
        eprintln!("  line: {}", e.line);
        eprintln!("  offset: {}", e.offset);
        Failure::Failed
    })?;
    emit(&session_json(&s), flags.contains(&"--compact"))
}

fn error_json(e: &Error) -> Value {
    json!({ "error": {
        "kind": format!("{:?}", e.kind),
        "message": e.kind.to_string(),
        "line": e.line,
        "offset": e.offset,
    }})
}

fn connection_json(c: Option<Connection<'_>>) -> Value {
    match c {
        None => Value::Null,
        Some(c) => json!({
            "net_type": c.net_type,
            "addr_type": c.addr_type,
            "address": c.address(),
            "ttl": c.ttl(),
            "count": c.count(),
        }),
    }
}

fn bandwidths_json(b: &[Bandwidth<'_>]) -> Value {
    b.iter()
        .map(|b| json!({ "type": b.bw_type, "value": b.value }))
        .collect()
}

fn typed_json(a: &Attribute<'_>) -> Value {
    let t = match a.typed() {
        Ok(t) => t,
        Err(e) => return error_json(&e),
    };
    match t {
        Attr::Rtpmap(r) => json!({"kind": "rtpmap", "payload_type": r.payload_type,
            "encoding": r.encoding, "clock_rate": r.clock_rate, "params": r.params}),
        Attr::Fmtp(f) => {
            let params: Map<String, Value> = f
                .pairs()
                .map(|(k, v)| (k.to_owned(), v.map_or(Value::Bool(true), Value::from)))
                .collect();
            json!({"kind": "fmtp", "format": f.format, "params": params})
        }
        Attr::Ptime(p) => json!({"kind": "ptime", "ms": p}),
        Attr::MaxPtime(p) => json!({"kind": "maxptime", "ms": p}),
        Attr::Direction(d) => json!({"kind": "direction", "direction": d.as_str()}),
        Attr::Rtcp(r) => json!({"kind": "rtcp", "port": r.port,
            "connection": connection_json(r.connection)}),
        Attr::RtcpMux => json!({"kind": "rtcp-mux"}),
        Attr::Mid(m) => json!({"kind": "mid", "mid": m}),
        Attr::Group(g) => json!({"kind": "group", "semantics": g.semantics,
            "tags": g.tags().collect::<Vec<_>>()}),
        Attr::Candidate(c) => json!({"kind": "candidate", "text": c}),
        Attr::Setup(s) => json!({"kind": "setup", "role": s.as_str()}),
        Attr::Connection(c) => json!({"kind": "connection", "mode": c.as_str()}),
        Attr::Fingerprint(f) => json!({"kind": "fingerprint", "hash_func": f.hash_func,
            "fingerprint": f.fingerprint}),
        Attr::Crypto(c) => json!({"kind": "crypto", "tag": c.tag, "suite": c.suite,
            "keys": c.keys().map(|(m, k)| json!([m, k])).collect::<Vec<_>>(),
            "session_params": c.session_params}),
        Attr::Curr(s) | Attr::Conf(s) => json!({"kind": t.name(),
            "precondition_type": s.precondition_type, "status_type": s.status_type.as_str(),
            "direction": s.direction.as_str()}),
        Attr::Des(d) => json!({"kind": "des", "precondition_type": d.precondition_type,
            "strength": d.strength.as_str(), "status_type": d.status_type.as_str(),
            "direction": d.direction.as_str()}),
        Attr::Path(p) => json!({"kind": "path", "uris": list(p)}),
        Attr::AcceptTypes(l) => json!({"kind": "accept-types", "types": list(l)}),
        Attr::AcceptWrappedTypes(l) => json!({"kind": "accept-wrapped-types", "types": list(l)}),
        Attr::MaxSize(n) => json!({"kind": "max-size", "octets": n}),
        Attr::FileSelector(s) => json!({"kind": "file-selector", "name": s.name,
            "type": s.file_type, "size": s.size,
            "hash": s.hash.map(|(a, h)| json!({"algorithm": a, "value": h}))}),
        Attr::FileTransferId(i) => json!({"kind": "file-transfer-id", "id": i}),
        Attr::FileDisposition(d) => json!({"kind": "file-disposition", "disposition": d}),
        Attr::FileDate(d) => json!({"kind": "file-date", "creation": d.creation,
            "modification": d.modification, "read": d.read}),
        Attr::FileIcon(i) => json!({"kind": "file-icon", "uri": i}),
        Attr::FileRange(r) => json!({"kind": "file-range", "start": r.start, "stop": r.stop}),
        _ => json!({"kind": "other"}),
    }
}

fn list(l: ims::sdp::SpaceList<'_>) -> Vec<&str> {
    l.iter().collect()
}

fn attributes_json(attrs: &[Attribute<'_>]) -> Value {
    attrs
        .iter()
        .map(|a| {
            json!({
                "name": a.name,
                "value": a.value,
                "line": a.line(),
                "typed": typed_json(a),
            })
        })
        .collect()
}

fn media_json(m: &Media<'_>) -> Value {
    let mut rtpmap = Map::new();
    let mut fmtp = Map::new();
    for a in &m.attributes {
        match a.typed() {
            Ok(Attr::Rtpmap(r)) => {
                rtpmap.insert(
                    r.payload_type.to_string(),
                    json!({"encoding": r.encoding, "clock_rate": r.clock_rate, "params": r.params}),
                );
            }
            Ok(Attr::Fmtp(f)) => {
                fmtp.insert(f.format.to_owned(), Value::from(f.params));
            }
            _ => {}
        }
    }
    json!({
        "media": m.media,
        "port": m.port,
        "port_count": m.port_count,
        "proto": m.proto,
        "formats": m.formats().collect::<Vec<_>>(),
        "line": m.line(),
        "info": m.info,
        "connection": connection_json(m.connection()),
        "direction": m.direction().as_str(),
        "bandwidths": bandwidths_json(&m.bandwidths),
        "rtpmap": rtpmap,
        "fmtp": fmtp,
        "attributes": attributes_json(&m.attributes),
    })
}

/// The JSON object for a parsed session.
pub(crate) fn session_json(s: &Session<'_>) -> Value {
    let o = &s.origin;
    json!({
        "version": 0,
        "origin": {
            "username": o.username,
            "session_id": o.session_id,
            "session_version": o.session_version,
            "net_type": o.net_type,
            "addr_type": o.addr_type,
            "address": o.address,
        },
        "name": s.name,
        "info": s.info,
        "uri": s.uri,
        "emails": s.emails,
        "phones": s.phones,
        "connection": connection_json(s.connection),
        "bandwidths": bandwidths_json(&s.bandwidths),
        "timings": s.timings.iter().map(|t| json!({
            "start": t.start, "stop": t.stop, "repeats": t.repeats,
        })).collect::<Vec<_>>(),
        "zone": s.zone,
        "key": s.key,
        "direction": s.direction().map(|d| d.as_str()),
        "attributes": attributes_json(&s.attributes),
        "media": s.media.iter().map(media_json).collect::<Vec<_>>(),
    })
}
