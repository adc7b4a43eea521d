//! `inspect msrp`: every frame of an MSRP byte stream (RFC 4975) as JSON.
//!
//! ```text
//! cargo run --example inspect -- msrp [--no-validate] [--compact] FILE
//! ```
//!
//! Prints one JSON object per frame, in stream order (pretty-printed, or one per line with
//! `--compact`). Each object: `offset` and `len` (where the frame sits in the input), `kind`
//! (`"request"`/`"response"`), `tid`, `method` or `status` and `comment`, `flag` (`"$"`, `"+"`,
//! `"#"`), `headers` (`[name, value]` pairs in wire order), typed views (`null` when absent):
//! `to_path` / `from_path` / `use_path` (arrays of `{uri, secure, user, host, port, session_id,
//! transport}`), `message_id`, `byte_range` (`{start, end, total}`, `null` for `*`),
//! `content_type`, `success_report`, `failure_report`, `status_header` (`{namespace, code,
//! comment}`), `expires`; `body_len`, and `body` (text) when the body is UTF-8 else `body_hex`.
//!
//! A typed view that does not parse shows as `{"error": ...}`. Unless `--no-validate`, each frame
//! is checked as a receiver would (RFC 4975 §7): a failing frame gets `"check": {kind, message,
//! offset, status}` and the exit status is 1. A stream that cannot be framed (no CRLF, no
//! end-line, a bad start line) prints the frames before the fault, reports the fault on stderr and
//! exits 1.

use super::{emit, parse_args, read_input, Failure};
use ims::msrp::{Error, Event, Flag, Frame, Framer, Limits, Uri};
use serde_json::{json, Value};

/// The `msrp` options.
pub(crate) const OPTIONS: &[(&str, &str)] = &[
    (
        "--no-validate",
        "skip the receiver checks (a framing error still fails)",
    ),
    ("--compact", "print each frame's JSON object on one line"),
];

/// One-line description for the usage text.
pub(crate) const ABOUT: &str =
    "every frame of an MSRP stream (RFC 4975/4976), one JSON object per frame";

fn error_json(e: &Error) -> Value {
    json!({"kind": format!("{:?}", e.kind), "message": e.kind.to_string(), "offset": e.offset, "status": e.status()})
}

fn uri_json(u: &Uri<'_>) -> Value {
    json!({
        "uri": u.as_str(),
        "secure": u.is_secure(),
        "user": u.userinfo(),
        "host": u.host().to_string(),
        "port": u.port(),
        "session_id": u.session_id(),
        "transport": u.transport(),
    })
}

fn typed<T>(r: Result<Option<T>, Error>, f: impl FnOnce(T) -> Value) -> Value {
    match r {
        Ok(Some(v)) => f(v),
        Ok(None) => Value::Null,
        Err(e) => json!({"error": error_json(&e)}),
    }
}

fn frame_json(f: &Frame, offset: usize, len: usize) -> Value {
    let h = &f.head;
    let path = |r: Result<Option<ims::msrp::Path<'_>>, Error>| {
        typed(r, |p| Value::Array(p.iter().map(uri_json).collect()))
    };
    let mut v = json!({
        "offset": offset,
        "len": len,
        "kind": if h.is_request() { "request" } else { "response" },
        "tid": h.transaction_id(),
        "flag": match f.flag { Flag::End => "$", Flag::Continue => "+", Flag::Abort => "#" },
        "headers": h.headers().map(|(n, v)| json!([n, v])).collect::<Vec<_>>(),
        "to_path": path(h.header("To-Path").map(|_| h.to_path()).transpose()),
        "from_path": path(h.header("From-Path").map(|_| h.from_path()).transpose()),
        "use_path": path(h.use_path()),
        "message_id": h.message_id(),
        "byte_range": typed(h.byte_range(), |b| json!({"start": b.start, "end": b.end, "total": b.total})),
        "content_type": typed(h.content_type(), |c| json!(c.to_string())),
        "success_report": typed(h.header("Success-Report").map(|_| h.success_report()).transpose(), |b| json!(b)),
        "failure_report": typed(h.header("Failure-Report").map(|_| h.failure_report()).transpose(), |b| json!(b.as_str())),
        "status_header": typed(h.status_header(), |s| json!({"namespace": s.namespace, "code": s.code, "comment": s.comment})),
        "expires": typed(h.expires(), |e| json!(e)),
        "body_len": f.body.len(),
    });
    let o = v.as_object_mut().expect("an object");
    match h.method() {
        Some(m) => {
            o.insert("method".into(), json!(m.as_str()));
        }
        None => {
            o.insert("status".into(), json!(h.status()));
            o.insert("comment".into(), json!(h.comment()));
        }
    }
    if !f.body.is_empty() {
        match std::str::from_utf8(&f.body) {
            Ok(s) => o.insert("body".into(), json!(s)),
            Err(_) => o.insert(
                "body_hex".into(),
                json!(f
                    .body
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect::<String>()),
            ),
        };
    }
    v
}

/// The handler.
pub(crate) fn run(args: &[String]) -> Result<(), Failure> {
    let (flags, path) = parse_args(args, OPTIONS)?;
    let check = !flags.contains(&"--no-validate");
    let compact = flags.contains(&"--compact");
    let buf = read_input(path)?;
    let mut framer = Framer::new(Limits {
        stream_threshold: usize::MAX,
        max_chunk_size: u64::MAX,
        ..Limits::default()
    });
    framer.push(&buf);
    let mut offset = 0;
    let mut failed = false;
    loop {
        match framer.poll() {
            Ok(Some(Event::Frame(f))) => {
                let len = f.to_bytes().len();
                let mut v = frame_json(&f, offset, len);
                if check {
                    if let Err(e) = f.check() {
                        eprintln!("inspect msrp: frame at byte {offset} fails the receiver checks: {e} (answer {})", e.status());
                        v.as_object_mut()
                            .expect("an object")
                            .insert("check".into(), error_json(&e));
                        failed = true;
                    }
                }
                offset += len;
                emit(&v, compact)?;
            }
            Ok(Some(_)) => unreachable!("no streaming with an unbounded threshold"),
            Ok(None) => {
                if framer.buffered() > 0 {
                    eprintln!(
                        "inspect msrp: framing error: incomplete frame ({} bytes from byte {offset} without an end-line)",
                        framer.buffered()
                    );
                    eprintln!("  kind: Incomplete");
                    eprintln!("  offset: {}", buf.len());
                    return Err(Failure::Failed);
                }
                break;
            }
            Err(e) => {
                eprintln!("inspect msrp: framing error: {e}");
                eprintln!("  kind: {:?}", e.kind);
                eprintln!("  offset: {}", e.offset);
                return Err(Failure::Failed);
            }
        }
    }
    if offset == 0 {
        eprintln!("inspect msrp: no frame in the input");
        return Err(Failure::Failed);
    }
    if failed {
        Err(Failure::Failed)
    } else {
        Ok(())
    }
}
