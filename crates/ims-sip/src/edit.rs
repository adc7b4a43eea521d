//! Splicing edits: change a parsed message the way a proxy does, copying every untouched byte.

use crate::error::{ErrorKind, ParseError};
use crate::headers::ViaHead;
use crate::message::{LinePiece, Message, OwnedMessage};
use crate::scan::CommaSplit;
use crate::HeaderName;
use bytes::Bytes;
use smallvec::SmallVec;
use std::borrow::Cow;

/// A replacement body and its Content-Type.
type NewBody<'a> = (Cow<'a, [u8]>, Option<Cow<'a, str>>);

#[derive(Debug, Clone)]
enum Slot<'a> {
    /// An original header line, copied byte for byte (name spelling, folding and all).
    Keep(u32),
    /// An original header whose value is replaced; the original name spelling is kept.
    Replace(u32, Cow<'a, str>),
    /// A new header line: its name as [`HeaderName::from_bytes`] reads it (worked out once,
    /// when the line is added: every later search of the slots asks for it), the name as
    /// written, the value.
    New(HeaderName, Cow<'a, str>, Cow<'a, str>),
}

/// A pending edit of a [`Message`]. Nothing is rendered until [`Edit::write_to`]; untouched header
/// lines are copied from the original bytes.
///
/// ```
/// let raw = b"INVITE sip:bob@biloxi.example.com SIP/2.0\r\n\
/// Via: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bK776asdhds\r\n\
/// Max-Forwards: 70\r\nRoute: <sip:p1.example.com;lr>,<sip:p2.example.com;lr>\r\n\
/// To: Bob <sip:bob@biloxi.example.com>\r\nFrom: Alice <sip:alice@atlanta.example.com>;tag=1928301774\r\n\
/// Call-ID: a84b4c76e66710\r\nCSeq: 314159 INVITE\r\nContent-Length: 0\r\n\r\n";
/// let msg = ims_sip::parse_datagram(raw).unwrap();
/// let mut e = msg.edit();
/// e.push_via("SIP/2.0/UDP p1.example.com;branch=z9hG4bK2d4790.1");
/// assert_eq!(e.pop_route().as_deref(), Some("<sip:p1.example.com;lr>"));
/// assert_eq!(e.decrement_max_forwards().unwrap(), 69);
/// let out = e.to_vec();
/// let fwd = ims_sip::parse_datagram(&out).unwrap();
/// assert_eq!(fwd.via().count(), 2);
/// assert_eq!(fwd.header(ims_sip::HeaderName::Route), Some("<sip:p2.example.com;lr>"));
/// ```
#[derive(Debug, Clone)]
pub struct Edit<'a, 'm> {
    msg: &'m Message<'a>,
    start_line: Option<Cow<'a, str>>,
    slots: SmallVec<[Slot<'a>; 32]>,
    body: Option<NewBody<'a>>,
    /// The Via front given to [`Edit::push_via_after`] (the top Via of the result is read from
    /// it, only its parameters are parsed).
    via_head: Option<ViaHead>,
}

impl<'a, 'm> Edit<'a, 'm> {
    pub(crate) fn new(msg: &'m Message<'a>) -> Self {
        let slots = (0..msg.header_count() as u32).map(Slot::Keep).collect();
        Edit {
            msg,
            start_line: None,
            slots,
            body: None,
            via_head: None,
        }
    }

    fn slot_name(&self, s: &Slot<'a>) -> HeaderName {
        match s {
            Slot::Keep(i) | Slot::Replace(i, _) => self.msg.index().headers[*i as usize].name,
            Slot::New(k, _, _) => *k,
        }
    }
    fn slot_value<'s>(&'s self, s: &'s Slot<'a>) -> &'s str {
        match s {
            Slot::Keep(i) => {
                let h = &self.msg.index().headers[*i as usize];
                &self.msg.head()[h.value_start()..h.value_end()]
            }
            Slot::Replace(_, v) | Slot::New(_, _, v) => v,
        }
    }
    fn position(&self, name: HeaderName) -> Option<usize> {
        self.slots.iter().position(|s| self.slot_name(s) == name)
    }

    /// Replaces the start line (without CRLF), e.g. a new Request-URI after retargeting.
    pub fn set_start_line(&mut self, line: impl Into<Cow<'a, str>>) -> &mut Self {
        self.start_line = Some(line.into());
        self
    }
    /// Replaces the Request-URI of a request, keeping method and version.
    pub fn set_request_uri(&mut self, uri: &str) -> &mut Self {
        if let Some(m) = self.msg.method() {
            let line = format!("{} {} {}", m, uri, self.msg.version());
            self.start_line = Some(Cow::Owned(line));
        }
        self
    }
    /// Inserts a header line above the first line of the same name (or at the top when there is
    /// none): how Via and Record-Route are pushed.
    pub fn push_front(
        &mut self,
        name: impl Into<Cow<'a, str>>,
        value: impl Into<Cow<'a, str>>,
    ) -> &mut Self {
        let name = name.into();
        let known = HeaderName::from_bytes(name.as_bytes());
        let at = if known == HeaderName::Other {
            None
        } else {
            self.position(known)
        };
        self.slots
            .insert(at.unwrap_or(0), Slot::New(known, name, value.into()));
        self
    }
    /// Appends a header line after all others.
    pub fn push_back(
        &mut self,
        name: impl Into<Cow<'a, str>>,
        value: impl Into<Cow<'a, str>>,
    ) -> &mut Self {
        let name = name.into();
        let known = HeaderName::from_bytes(name.as_bytes());
        self.slots.push(Slot::New(known, name, value.into()));
        self
    }
    /// Pushes a Via value on top (RFC 3261 §16.6 step 8).
    pub fn push_via(&mut self, value: impl Into<Cow<'a, str>>) -> &mut Self {
        self.push_front("Via", value)
    }
    /// [`Edit::push_via`] of a Via `value` written as the front `head` then the request's
    /// parameters (`;branch=…`): the message [`Edit::to_owned_message`] gives keeps its new top
    /// Via with only the parameters read (the front is parsed once, for all the requests an
    /// element forwards). The same message as `push_via(value)`; a value that does not start
    /// with `head` is simply parsed.
    pub fn push_via_after(&mut self, head: &ViaHead, value: impl Into<Cow<'a, str>>) -> &mut Self {
        self.via_head = Some(head.clone());
        self.push_front("Via", value)
    }
    /// Pushes a Record-Route value on top (RFC 3261 §16.6 step 4).
    pub fn push_record_route(&mut self, value: impl Into<Cow<'a, str>>) -> &mut Self {
        self.push_front("Record-Route", value)
    }
    /// Removes the first value of a (possibly comma-separated) header and returns it; the rest of
    /// that line stays.
    pub fn pop_first(&mut self, name: HeaderName) -> Option<String> {
        let i = self.position(name)?;
        // an original line borrows the message, so only the popped value is copied
        let value: Cow<'a, str> = match &self.slots[i] {
            Slot::Keep(k) => {
                let h = &self.msg.index().headers[*k as usize];
                Cow::Borrowed(&self.msg.head()[h.value_start()..h.value_end()])
            }
            Slot::Replace(_, v) | Slot::New(_, _, v) => Cow::Owned(v.to_string()),
        };
        let mut parts = CommaSplit::new(&value);
        let first = parts.next().map(|(_, e)| e.to_owned())?;
        match parts.next() {
            None => {
                self.slots.remove(i);
            }
            Some((rest_at, _)) => {
                // keep the remaining elements exactly as written
                let rest = match &value {
                    Cow::Borrowed(v) => Cow::Borrowed(&v[rest_at..]),
                    Cow::Owned(v) => Cow::Owned(v[rest_at..].to_owned()),
                };
                self.slots[i] = match &self.slots[i] {
                    Slot::Keep(k) | Slot::Replace(k, _) => Slot::Replace(*k, rest),
                    Slot::New(k, n, _) => Slot::New(*k, n.clone(), rest),
                };
            }
        }
        Some(first)
    }
    /// Removes the topmost Route value (RFC 3261 §16.4, §16.12).
    pub fn pop_route(&mut self) -> Option<String> {
        self.pop_first(HeaderName::Route)
    }
    /// Removes the topmost Via value (a proxy forwarding a response, RFC 3261 §16.7 step 3).
    pub fn pop_via(&mut self) -> Option<String> {
        self.pop_first(HeaderName::Via)
    }
    /// Removes every line of this header. Returns how many lines went.
    pub fn remove(&mut self, name: HeaderName) -> usize {
        let before = self.slots.len();
        let names: SmallVec<[HeaderName; 32]> =
            self.slots.iter().map(|s| self.slot_name(s)).collect();
        let mut k = 0;
        self.slots.retain(|_| {
            let keep = names[k] != name;
            k += 1;
            keep
        });
        before - self.slots.len()
    }
    /// Removes every line of an extension header (case-insensitive name).
    pub fn remove_named(&mut self, name: &str) -> usize {
        let known = HeaderName::from_bytes(name.as_bytes());
        if known != HeaderName::Other {
            return self.remove(known);
        }
        let before = self.slots.len();
        let msg = self.msg;
        self.slots.retain(|s| match s {
            Slot::Keep(i) | Slot::Replace(i, _) => !msg
                .header_at(*i as usize)
                .is_some_and(|h| h.raw_name().eq_ignore_ascii_case(name)),
            Slot::New(_, n, _) => !n.eq_ignore_ascii_case(name),
        });
        before - self.slots.len()
    }
    /// Sets a header to one value: replaces the first line's value (keeping its name spelling and
    /// position), removes further lines, or appends when absent.
    pub fn set(&mut self, name: HeaderName, value: impl Into<Cow<'a, str>>) -> &mut Self {
        let value = value.into();
        match self.position(name) {
            Some(i) => {
                self.slots[i] = match &self.slots[i] {
                    Slot::Keep(k) | Slot::Replace(k, _) => Slot::Replace(*k, value),
                    Slot::New(k, n, _) => Slot::New(*k, n.clone(), value),
                };
                // drop later lines of the same header, if any
                if self.slots[i + 1..]
                    .iter()
                    .any(|s| self.slot_name(s) == name)
                {
                    let names: SmallVec<[HeaderName; 32]> =
                        self.slots.iter().map(|s| self.slot_name(s)).collect();
                    let mut k = 0;
                    self.slots.retain(|_| {
                        k += 1;
                        k - 1 <= i || names[k - 1] != name
                    });
                }
            }
            None => {
                self.slots.push(Slot::New(
                    // the name written is the canonical one: the name it reads as
                    HeaderName::from_bytes(name.as_str().as_bytes()),
                    Cow::Borrowed(name.as_str()),
                    value,
                ));
            }
        }
        self
    }
    /// Decrements Max-Forwards (RFC 3261 §16.6 step 3), adding `Max-Forwards: 70` when absent.
    /// Fails when it is already 0 (answer 483) or unparsable (answer 400).
    pub fn decrement_max_forwards(&mut self) -> Result<u8, ParseError> {
        let Some(i) = self.position(HeaderName::MaxForwards) else {
            self.push_back("Max-Forwards", "70");
            return Ok(70);
        };
        let v = self.slot_value(&self.slots[i]);
        let n: u8 = v.parse().map_err(|_| ParseError {
            kind: ErrorKind::Overflow("Max-Forwards"),
            offset: 0,
            header: Some(HeaderName::MaxForwards),
        })?;
        if n == 0 {
            return Err(ParseError {
                kind: ErrorKind::Overflow("Max-Forwards"),
                offset: 0,
                header: Some(HeaderName::MaxForwards),
            });
        }
        let new = n - 1;
        self.set(HeaderName::MaxForwards, max_forwards_text(new));
        Ok(new)
    }
    /// Replaces the body (and Content-Type when given); Content-Length is rewritten on output.
    pub fn set_body(
        &mut self,
        body: impl Into<Cow<'a, [u8]>>,
        content_type: Option<&'a str>,
    ) -> &mut Self {
        self.body = Some((body.into(), content_type.map(Cow::Borrowed)));
        self
    }

    /// Writes the edited message: untouched lines copied, changed ones rendered.
    fn render(&self, out: &mut Vec<u8>) {
        self.render_with(out, |_, _| {});
    }

    /// [`Edit::render`], telling `rec` where each header line starts and how it was made (not
    /// for a replaced body: its Content-Type and Content-Length lines are not reported).
    fn render_with(&self, out: &mut Vec<u8>, mut rec: impl FnMut(usize, LinePiece)) {
        let msg = self.msg;
        let untouched = self.start_line.is_none()
            && self.body.is_none()
            && !msg.index().bare_lf
            && self.slots.len() == msg.header_count()
            && self
                .slots
                .iter()
                .enumerate()
                .all(|(i, s)| matches!(s, Slot::Keep(k) if *k as usize == i));
        if untouched {
            // nothing changed: the message is its own serialization
            let base = out.len();
            for (i, h) in msg.index().headers.iter().enumerate() {
                rec(base + h.start(), LinePiece::Copied(i as u32));
            }
            out.extend_from_slice(msg.as_bytes());
            return;
        }
        let head = msg.head().as_bytes();
        match &self.start_line {
            Some(l) => {
                out.extend_from_slice(l.as_bytes());
                out.extend_from_slice(b"\r\n");
            }
            None => {
                // the start line as received; a bare-LF terminator (lenient mode) becomes CRLF
                let sl = msg.start_line_str().len();
                out.extend_from_slice(&head[..sl]);
                out.extend_from_slice(b"\r\n");
            }
        }
        let new_len = self.body.as_ref().map(|(b, _)| b.len());
        let mut wrote_cl = false;
        let mut wrote_ct = false;
        // adjacent original lines copied in one piece: the start and end in `head` of the run
        // not yet written (a bare-LF line is written alone, normalised)
        let mut run = (0, 0);
        let flush = |out: &mut Vec<u8>, run: &mut (usize, usize)| {
            if run.1 > run.0 {
                out.extend_from_slice(&head[run.0..run.1]);
            }
            *run = (0, 0);
        };
        for s in &self.slots {
            let name = self.slot_name(s);
            // everything but a plain copied line writes at once: what is pending goes first
            if !matches!(s, Slot::Keep(_))
                || (new_len.is_some()
                    && matches!(name, HeaderName::ContentLength | HeaderName::ContentType))
            {
                flush(out, &mut run);
            }
            if let Some(len) = new_len {
                if name == HeaderName::ContentLength {
                    if !wrote_cl {
                        out.extend_from_slice(b"Content-Length: ");
                        out.extend_from_slice(crate::decimal(&mut [0; 20], len as u64));
                        out.extend_from_slice(b"\r\n");
                        wrote_cl = true;
                    }
                    continue;
                }
                if name == HeaderName::ContentType {
                    if let Some((_, Some(ct))) = &self.body {
                        if !wrote_ct {
                            out.extend_from_slice(b"Content-Type: ");
                            out.extend_from_slice(ct.as_bytes());
                            out.extend_from_slice(b"\r\n");
                            wrote_ct = true;
                        }
                        continue;
                    }
                }
            }
            match s {
                Slot::Keep(i) => {
                    let h = &msg.index().headers[*i as usize];
                    // a bare-LF input line is normalised to CRLF
                    if head[h.end() - 1] == b'\n' && head[h.end() - 2] != b'\r' {
                        flush(out, &mut run);
                        rec(out.len(), LinePiece::Copied(*i));
                        out.extend_from_slice(&head[h.start()..h.end() - 1]);
                        out.extend_from_slice(b"\r\n");
                        continue;
                    }
                    if run.1 != h.start() {
                        flush(out, &mut run);
                        run = (h.start(), h.start());
                    }
                    rec(out.len() + (run.1 - run.0), LinePiece::Copied(*i));
                    run.1 = h.end();
                }
                Slot::Replace(i, v) => {
                    let h = &msg.index().headers[*i as usize];
                    rec(out.len(), written(h.name_end() - h.start(), v.len()));
                    out.extend_from_slice(&head[h.start()..h.name_end()]);
                    out.extend_from_slice(b": ");
                    out.extend_from_slice(v.as_bytes());
                    out.extend_from_slice(b"\r\n");
                }
                Slot::New(_, n, v) => {
                    rec(out.len(), written(n.len(), v.len()));
                    out.extend_from_slice(n.as_bytes());
                    out.extend_from_slice(b": ");
                    out.extend_from_slice(v.as_bytes());
                    out.extend_from_slice(b"\r\n");
                }
            }
        }
        flush(out, &mut run);
        if let Some((body, ct)) = &self.body {
            if !wrote_ct {
                if let Some(ct) = ct {
                    out.extend_from_slice(b"Content-Type: ");
                    out.extend_from_slice(ct.as_bytes());
                    out.extend_from_slice(b"\r\n");
                }
            }
            if !wrote_cl {
                out.extend_from_slice(b"Content-Length: ");
                out.extend_from_slice(crate::decimal(&mut [0; 20], body.len() as u64));
                out.extend_from_slice(b"\r\n");
            }
            out.extend_from_slice(b"\r\n");
            out.extend_from_slice(body);
        } else {
            out.extend_from_slice(b"\r\n");
            out.extend_from_slice(msg.body());
        }
    }

    /// Appends the edited message to `out`.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        out.reserve(self.msg.len() + 256);
        self.render(out);
    }
    /// The edited message as bytes.
    pub fn to_vec(&self) -> Vec<u8> {
        let mut v = Vec::new();
        self.write_to(&mut v);
        v
    }
    /// The edited message, parsed again into an [`OwnedMessage`] (stream rules: it must have a
    /// Content-Length).
    ///
    /// When the body is the original one and its Content-Length lines are kept as they were, the
    /// index is built from the pieces written (copied lines keep their parsed offsets, written
    /// ones are `name: value` lines) instead of scanning the bytes again; the result is the same
    /// (`OwnedMessage::assemble` gives up, and the bytes are parsed, whenever it could differ).
    pub fn to_owned_message(&self) -> Result<OwnedMessage, ParseError> {
        if let Some(m) = self.to_owned_fast() {
            return Ok(m);
        }
        self.to_owned_parsed()
    }

    /// [`Edit::to_owned_message`] by parsing the written bytes.
    fn to_owned_parsed(&self) -> Result<OwnedMessage, ParseError> {
        OwnedMessage::parse(Bytes::from(self.to_vec()))
    }

    /// [`Edit::to_owned_message`] without scanning the result again, when that is certain to give
    /// the same message.
    fn to_owned_fast(&self) -> Option<OwnedMessage> {
        let idx = self.msg.index();
        if self.body.is_some()
            || idx.bare_lf
            || idx.cl_conflict
            || idx.content_length != Some(self.msg.body().len() as u32)
            || self.slots.iter().any(|s| {
                !matches!(s, Slot::Keep(_)) && self.slot_name(s) == HeaderName::ContentLength
            })
        {
            return None;
        }
        // the exact size: `Bytes::from` a vector with spare capacity allocates a second block
        let mut out = Vec::with_capacity(self.fast_len());
        let mut lines: SmallVec<[(u32, LinePiece); 32]> = SmallVec::new();
        let mut fits = true;
        self.render_with(&mut out, |at, piece| match u32::try_from(at) {
            Ok(at) => lines.push((at, piece)),
            Err(_) => fits = false,
        });
        if !fits {
            return None;
        }
        let sl_end = match &self.start_line {
            Some(l) => l.len(),
            None => self.msg.start_line_str().len(),
        };
        OwnedMessage::assemble(
            Bytes::from(out),
            sl_end,
            self.start_line.is_none(),
            idx,
            &lines,
            self.via_head.as_ref(),
        )
    }
}

impl Edit<'_, '_> {
    /// The length [`Edit::render`] writes, on the fast path of [`Edit::to_owned_message`] (the
    /// original body, no bare-LF line: the checks of `to_owned_fast`).
    fn fast_len(&self) -> usize {
        let msg = self.msg;
        let start = match &self.start_line {
            Some(l) => l.len(),
            None => msg.start_line_str().len(),
        };
        let lines: usize = self
            .slots
            .iter()
            .map(|s| match s {
                Slot::Keep(i) => {
                    let h = &msg.index().headers[*i as usize];
                    h.end() - h.start()
                }
                Slot::Replace(i, v) => {
                    let h = &msg.index().headers[*i as usize];
                    h.name_end() - h.start() + 4 + v.len()
                }
                Slot::New(_, n, v) => n.len() + 4 + v.len(),
            })
            .sum();
        start + 2 + lines + 2 + msg.body().len()
    }
}

/// `n` in decimal: a slice of a constant below 100 (every forwarded request writes one), else
/// written.
fn max_forwards_text(n: u8) -> Cow<'static, str> {
    const ONES: &str = "0123456789";
    const TENS: &str = "10111213141516171819202122232425262728293031323334353637383940414243444546474849\
                        50515253545556575859606162636465666768697071727374757677787980818283848586878889\
                        90919293949596979899";
    let n = usize::from(n);
    match n {
        0..=9 => Cow::Borrowed(&ONES[n..n + 1]),
        10..=99 => Cow::Borrowed(&TENS[2 * (n - 10)..2 * (n - 10) + 2]),
        _ => {
            let mut v = String::with_capacity(3);
            crate::push_decimal(&mut v, n as u64);
            Cow::Owned(v)
        }
    }
}

/// A written `name: value` line of these lengths.
fn written(name_len: usize, value_len: usize) -> LinePiece {
    LinePiece::Written {
        name_len: u32::try_from(name_len).unwrap_or(u32::MAX),
        value_len: u32::try_from(value_len).unwrap_or(u32::MAX),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::{kept_facts, parse_facts};
    use crate::ParserConfig;

    const REGISTER: &str = "REGISTER sip:ims.example.org SIP/2.0\r\n\
Via: SIP/2.0/UDP 127.0.0.1:5090;branch=z9hG4bK-1;rport\r\n\
Max-Forwards: 70\r\nRoute: <sip:127.0.0.1:5060;lr>, <sip:orig@127.0.0.1:5065;lr>\r\n\
From: <sip:001@ims.example.org>;tag=1\r\nTo: <sip:001@ims.example.org>\r\n\
Call-ID: c1\r\nCSeq: 2 REGISTER\r\nContact: <sip:001@127.0.0.1:5090>;expires=600\r\n\
Authorization: Digest username=\"001@ims.example.org\", realm=\"ims.example.org\",\r\n nonce=\"n\", uri=\"sip:ims.example.org\", response=\"\"\r\n\
v: SIP/2.0/UDP 10.0.0.1\r\nl: 5\r\nX-Extra:   spaced value  \r\n\r\nhello";

    /// Base messages: requests and a response, folded and compact lines, more than the 24
    /// inline header slots, a message without Content-Length (datagram), one whose
    /// Content-Lengths conflict, one with bare LF line ends.
    pub(super) fn bases() -> Vec<(OwnedMessage, &'static str)> {
        let mut v = Vec::new();
        let dgram = |s: String| OwnedMessage::parse_datagram(Bytes::from(s)).unwrap();
        v.push((dgram(REGISTER.into()), "register"));
        let mut many =
            String::from("INVITE sip:b@x SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK2\r\n");
        for i in 0..30 {
            many.push_str(&format!("Record-Route: <sip:p{i}.x;lr>\r\n"));
        }
        many.push_str("From: <sip:a@x>;tag=1\r\nTo: <sip:b@x>\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n");
        v.push((dgram(many), "many"));
        v.push((
            dgram("SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP a;branch=z9hG4bK3\r\nVia: SIP/2.0/UDP b;branch=z9hG4bK4\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\nContent-Length: 2\r\n\r\nok".into()),
            "response",
        ));
        v.push((
            dgram("MESSAGE sip:b@x SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK5\r\nCall-ID: c\r\nCSeq: 1 MESSAGE\r\n\r\nbody".into()),
            "no content-length",
        ));
        v.push((
            dgram("MESSAGE sip:b@x SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK5\r\nContent-Length: 4\r\nl: 3\r\nCall-ID: c\r\n\r\nbody".into()),
            "conflict",
        ));
        let lenient = ParserConfig {
            allow_lf_line_endings: true,
            ..ParserConfig::default()
        };
        v.push((
            OwnedMessage::parse_datagram_with(
                Bytes::from_static(b"OPTIONS sip:b@x SIP/2.0\nVia: SIP/2.0/UDP h;branch=z9hG4bK6\nContent-Length: 0\n\n"),
                &lenient,
            )
            .unwrap(),
            "bare lf",
        ));
        v
    }

    /// The edits: each a name and what it does to an `Edit`.
    type Op = (&'static str, fn(&mut Edit<'_, '_>));
    fn ops() -> Vec<Op> {
        vec![
            ("nothing", |_| {}),
            ("push via", |e| {
                e.push_via("SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK-abc-1");
            }),
            ("pop route", |e| {
                e.pop_route();
            }),
            ("pop via", |e| {
                e.pop_via();
            }),
            ("max-forwards", |e| {
                let _ = e.decrement_max_forwards();
            }),
            ("record-route", |e| {
                e.push_record_route("<sip:127.0.0.1:5064;lr>");
            }),
            ("path", |e| {
                e.push_front("Path", "<sip:term@127.0.0.1:5060;lr>");
            }),
            ("route on top", |e| {
                e.push_front("Route", "<sip:scscf@127.0.0.1:5065;lr;orig>");
            }),
            ("extension", |e| {
                e.push_back("P-Visited-Network-ID", "\"ims.example.org\"");
            }),
            ("compact name", |e| {
                e.push_back("i", "other-call-id");
            }),
            ("mixed case", |e| {
                e.push_back("rOUTE", "<sip:x;lr>");
            }),
            ("empty value", |e| {
                e.push_back("Supported", "");
            }),
            ("utf-8 value", |e| {
                e.push_back("Subject", "caf\u{e9} \u{2615}");
            }),
            ("remove", |e| {
                e.remove(HeaderName::Route);
            }),
            ("remove extension", |e| {
                e.remove_named("x-extra");
            }),
            ("set", |e| {
                e.set(HeaderName::CallId, "replaced");
            }),
            ("set absent", |e| {
                e.set(HeaderName::Expires, "600");
            }),
            ("request uri", |e| {
                e.set_request_uri("sip:scscf@127.0.0.1:5064");
            }),
            ("start line", |e| {
                e.set_start_line("SIP/2.0 401 Unauthorized");
            }),
            // what the parser would read otherwise, or refuse: the parse decides
            ("leading blank", |e| {
                e.push_back("Subject", " x");
            }),
            ("trailing tab", |e| {
                e.push_back("Subject", "x\t");
            }),
            ("folded value", |e| {
                e.push_back("Subject", "a\r\n b");
            }),
            ("line break", |e| {
                e.push_back("Subject", "a\r\nVia: SIP/2.0/UDP evil");
            }),
            ("bare cr", |e| {
                e.push_back("Subject", "a\rb");
            }),
            ("bad name", |e| {
                e.push_back("Bad Name", "x");
            }),
            ("colon name", |e| {
                e.push_back("X:Y", "x");
            }),
            ("empty name", |e| {
                e.push_back("", "x");
            }),
            ("new content-length", |e| {
                e.set(HeaderName::ContentLength, "0");
            }),
            ("no content-length", |e| {
                e.remove(HeaderName::ContentLength);
            }),
            ("new body", |e| {
                e.set_body(&b"v=0\r\n"[..], Some("application/sdp"));
            }),
            ("bad uri", |e| {
                e.set_request_uri("not a uri");
            }),
            ("start line break", |e| {
                e.set_start_line("OPTIONS sip:x SIP/2.0\r\nVia: x");
            }),
            ("long line", |e| {
                e.push_back("Subject", "y".repeat(20_000));
            }),
            ("compact via on top", |e| {
                e.push_front("v", "SIP/2.0/TCP 10.0.0.9;branch=z9hG4bK-v");
            }),
            ("mixed case max-forwards", |e| {
                e.push_back("max-FORWARDS", "9");
                let _ = e.decrement_max_forwards();
            }),
            ("set absent extension", |e| {
                e.set(HeaderName::Other, "x");
            }),
        ]
    }

    /// How many top Via / CSeq values the fast path carried (checked against a fresh parse).
    static CARRIED: [std::sync::atomic::AtomicUsize; 2] = [
        std::sync::atomic::AtomicUsize::new(0),
        std::sync::atomic::AtomicUsize::new(0),
    ];

    /// The values `f` carries are those a fresh parse of its bytes gives.
    fn check_carried(f: &OwnedMessage, what: &str) -> (bool, bool) {
        let fresh = OwnedMessage::parse(f.bytes().clone()).expect("parses");
        let m = fresh.as_message();
        let (via, cseq) = kept_facts(f);
        if let Some(v) = &via {
            assert_eq!(
                v,
                &format!("{:?}", m.get::<crate::headers::Via<'_>>()),
                "{what}"
            );
            CARRIED[0].fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        if let Some(c) = &cseq {
            assert_eq!(
                c,
                &format!("{:?}", m.get::<crate::headers::CSeq<'_>>()),
                "{what}"
            );
            CARRIED[1].fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        // and the typed asks of the new message give the parse's values
        let n = f.as_message();
        assert_eq!(n.top_via(), m.get::<crate::headers::Via<'_>>(), "{what}");
        assert_eq!(n.cseq(), m.get::<crate::headers::CSeq<'_>>(), "{what}");
        (via.is_some(), cseq.is_some())
    }

    fn check(e: &Edit<'_, '_>, what: &str) -> bool {
        // the name a new line was given when it was added is the one its text reads as (the
        // general lookup every slot search made before the names were kept)
        for s in &e.slots {
            if let Slot::New(kept, n, _) = s {
                assert_eq!(*kept, HeaderName::from_bytes(n.as_bytes()), "{what}: {n:?}");
            }
        }
        let parsed = e.to_owned_parsed();
        let fast = e.to_owned_fast();
        match (&fast, &parsed) {
            (Some(f), Ok(p)) => {
                assert_eq!(parse_facts(f), parse_facts(p), "{what}");
                check_carried(f, what);
                // the fast path's buffer is allocated at its exact size
                assert_eq!(e.fast_len(), f.bytes().len(), "{what}");
            }
            (Some(f), Err(err)) => panic!("{what}: built {f} where the parse fails: {err}"),
            (None, _) => {}
        }
        // the public answer is the parse's in every case
        match (e.to_owned_message(), parsed) {
            (Ok(a), Ok(b)) => assert_eq!(parse_facts(&a), parse_facts(&b), "{what}"),
            (Err(a), Err(b)) => assert_eq!(a, b, "{what}"),
            (a, b) => panic!("{what}: {a:?} / {b:?}"),
        }
        fast.is_some()
    }

    #[test]
    fn copied_lines_are_written_in_order_around_the_changed_ones() {
        let lenient = ParserConfig {
            allow_lf_line_endings: true,
            ..ParserConfig::default()
        };
        let raw = "MESSAGE sip:b@x SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK5\r\n\
                   Content-Type: text/plain\r\nX-A: 1\nX-B: 2\r\nContent-Length: 4\r\n\
                   Call-ID: c\r\nCSeq: 1 MESSAGE\r\n\r\nbody";
        let m = OwnedMessage::parse_datagram_with(Bytes::from_static(raw.as_bytes()), &lenient)
            .unwrap();
        let msg = m.as_message();
        let mut e = msg.edit();
        e.push_via("SIP/2.0/UDP p;branch=z9hG4bK6");
        e.set(HeaderName::CallId, "d");
        e.set_body(&b"hello"[..], Some("text/x"));
        assert_eq!(
            String::from_utf8(e.to_vec()).unwrap(),
            "MESSAGE sip:b@x SIP/2.0\r\nVia: SIP/2.0/UDP p;branch=z9hG4bK6\r\n\
             Via: SIP/2.0/UDP h;branch=z9hG4bK5\r\nContent-Type: text/x\r\nX-A: 1\r\n\
             X-B: 2\r\nContent-Length: 5\r\nCall-ID: d\r\nCSeq: 1 MESSAGE\r\n\r\nhello"
        );
        let mut e = msg.edit();
        e.remove_named("X-A");
        e.push_back("X-C", "3");
        assert_eq!(
            String::from_utf8(e.to_vec()).unwrap(),
            "MESSAGE sip:b@x SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK5\r\n\
             Content-Type: text/plain\r\nX-B: 2\r\nContent-Length: 4\r\n\
             Call-ID: c\r\nCSeq: 1 MESSAGE\r\nX-C: 3\r\n\r\nbody"
        );
    }

    #[test]
    fn assembled_messages_carry_the_top_via_and_cseq_they_wrote() {
        let bases = bases();
        let (register, response) = (&bases[0].0, &bases[2].0);
        for asked in [false, true] {
            let msg = register.as_message();
            if asked {
                // what a transaction layer does with a received request before forwarding it
                assert!(msg.top_via().unwrap().is_some() && msg.cseq().unwrap().is_some());
            }
            // a Via pushed (and the usual proxy edits): the written Via is parsed once, here;
            // the CSeq line is copied, and so is its kept value when the original had one
            let mut e = msg.edit();
            e.push_via("SIP/2.0/UDP 127.0.0.1:5062;branch=z9hG4bK-5a-1");
            let _ = e.decrement_max_forwards();
            e.pop_route();
            let f = e.to_owned_fast().expect("fast");
            assert_eq!(check_carried(&f, "push via"), (true, asked));
            let v = f.as_message().top_via().unwrap().unwrap();
            assert_eq!(v.branch(), Some("z9hG4bK-5a-1"));
            // nothing changed: both copied
            let f = msg.edit().to_owned_fast().expect("fast");
            assert_eq!(check_carried(&f, "untouched"), (asked, asked));
            // a new CSeq line: not carried, and the ask reads the new one
            let mut e = msg.edit();
            e.set(HeaderName::CSeq, "3 REGISTER");
            let f = e.to_owned_fast().expect("fast");
            assert_eq!(check_carried(&f, "new cseq"), (asked, false));
            assert_eq!(f.as_message().cseq().unwrap().unwrap().seq, 3);
            // the top Via line removed: the next one is the top (not the original's kept one)
            let mut e = msg.edit();
            e.remove(HeaderName::Via);
            e.push_back("Via", "SIP/2.0/TCP [::1]:7;branch=z9hG4bK9, SIP/2.0/UDP x");
            let f = e.to_owned_fast().expect("fast");
            assert_eq!(check_carried(&f, "via moved down"), (true, asked));
            assert_eq!(f.as_message().top_via().unwrap().unwrap().port(), Some(7));

            // a response relayed: its top Via popped, the next line's Via is the new top
            let msg = response.as_message();
            if asked {
                assert!(msg.top_via().unwrap().is_some() && msg.cseq().unwrap().is_some());
            }
            let mut e = msg.edit();
            assert!(e.pop_via().is_some());
            let f = e.to_owned_fast().expect("fast");
            assert_eq!(check_carried(&f, "pop via"), (false, asked));
            let v = f.as_message().top_via().unwrap().unwrap();
            assert_eq!(v.branch(), Some("z9hG4bK4"));
            // no Via at all: known absent
            let mut e = msg.edit();
            e.remove(HeaderName::Via);
            let f = e.to_owned_fast().expect("fast");
            assert_eq!(check_carried(&f, "no via"), (true, asked));
            assert_eq!(f.as_message().top_via(), Ok(None));
        }
        // the carried values are shared by the clones of the new message
        let msg = register.as_message();
        let mut e = msg.edit();
        e.push_via("SIP/2.0/UDP 127.0.0.1:5062;branch=z9hG4bK-5a-2");
        let f = e.to_owned_message().unwrap();
        let c = f.clone();
        assert_eq!(kept_facts(&c).0, kept_facts(&f).0);
        assert!(kept_facts(&c).0.is_some());
    }

    #[test]
    fn an_edit_indexed_from_its_pieces_is_what_the_parse_gives() {
        let mut fast = 0;
        let mut total = 0;
        for (m, base) in bases() {
            let msg = m.as_message();
            // half the time with the original's top Via and CSeq kept (carried when copied)
            if base.len() % 2 == 0 {
                let _ = (msg.top_via(), msg.cseq());
            }
            for (name, op) in ops() {
                let mut e = msg.edit();
                op(&mut e);
                total += 1;
                fast += usize::from(check(&e, &format!("{base} / {name}")));
                // and combined with the usual proxy edits
                let mut e = msg.edit();
                e.push_via("SIP/2.0/UDP 127.0.0.1:5062;branch=z9hG4bK-x-2");
                let _ = e.decrement_max_forwards();
                e.pop_route();
                op(&mut e);
                total += 1;
                fast += usize::from(check(&e, &format!("{base} / proxy + {name}")));
            }
        }
        assert!(fast > 0 && fast < total, "{fast} of {total}");
        let carried = |i: usize| CARRIED[i].load(std::sync::atomic::Ordering::Relaxed);
        assert!(
            carried(0) > 0 && carried(1) > 0,
            "carried {} {}",
            carried(0),
            carried(1)
        );
        // the usual edits of messages with a Content-Length take the fast path
        for (m, base) in bases().into_iter().take(3) {
            let msg = m.as_message();
            for (name, op) in &ops()[..19] {
                let mut e = msg.edit();
                op(&mut e);
                assert!(e.to_owned_fast().is_some(), "{base} / {name}");
            }
        }
    }

    /// `OwnedMessage::without_first_value` gives exactly what `pop_first` and
    /// `to_owned_message` give (bytes, index, kept values), and takes its own path for the pops
    /// a proxy makes (its Route on a request, its Via on a response).
    #[test]
    fn a_value_popped_without_an_edit_is_the_edits_message() {
        let dgram = |s: &str| OwnedMessage::parse_datagram(Bytes::from(s.to_owned())).unwrap();
        let tail = "From: <sip:a@x>;tag=1\r\nTo: <sip:b@x>\r\nCall-ID: c\r\nCSeq: 7 REGISTER\r\n\
                    Max-Forwards: 70\r\nContent-Length: 2\r\n\r\nok";
        let mut extra: Vec<(OwnedMessage, String)> = Vec::new();
        for (i, route) in [
            "Route: <sip:p.x;lr>",
            "Route: <sip:p.x;lr>,<sip:s.x;lr>",
            "Route: <sip:p.x;lr> ,  <sip:s.x;lr>, <sip:t.x;lr>",
            "Route:<sip:p.x;lr>, <sip:s.x;lr>",
            "Route:   <sip:p.x;lr>, <sip:s.x;lr>",
            "Route: <sip:p.x;lr>, <sip:s.x;lr>  ",
            "Route: \"a, b\" <sip:p.x;lr>, <sip:s.x;lr>",
            "Route: <sip:p.x;lr>,\r\n <sip:s.x;lr>",
            "Route: <sip:p.x;lr>, <sip:s.x;lr>\r\nRoute: <sip:t.x;lr>",
            "Route:\r\nRoute: <sip:p.x;lr>",
            "rOUTE: <sip:p.x;lr>, <sip:s.x;lr>",
            "Route: <sip:p.x;lr>,",
            "Route: ,<sip:p.x;lr>",
        ]
        .into_iter()
        .enumerate()
        {
            for via in [
                "Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK-1",
                "Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK-1, SIP/2.0/UDP h;branch=z9hG4bK-2",
                "v: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK-1,SIP/2.0/UDP h;branch=z9hG4bK-2\r\nVia: SIP/2.0/UDP g;branch=z9hG4bK-3",
            ] {
                for route_first in [false, true] {
                    let (a, b) = if route_first { (route, via) } else { (via, route) };
                    let raw = format!("REGISTER sip:x SIP/2.0\r\n{a}\r\n{b}\r\n{tail}");
                    extra.push((dgram(&raw), format!("route {i} / {via} / {route_first}")));
                    let resp = format!("SIP/2.0 200 OK\r\n{a}\r\n{b}\r\n{tail}");
                    extra.push((dgram(&resp), format!("response {i} / {via} / {route_first}")));
                }
            }
        }
        let names = [
            HeaderName::Route,
            HeaderName::Via,
            HeaderName::CSeq,
            HeaderName::CallId,
            HeaderName::MaxForwards,
            HeaderName::From,
            HeaderName::Contact,
            HeaderName::Authorization,
            HeaderName::RecordRoute,
            HeaderName::ContentLength,
            HeaderName::Other,
        ];
        let mut own = 0;
        let mut total = 0;
        let all = bases()
            .into_iter()
            .map(|(m, b)| (m, b.to_owned()))
            .chain(extra);
        for (m, base) in all {
            for asked in 0..4u8 {
                // a copy per ask: the original's kept values are none, the top Via, the CSeq, both
                let m = OwnedMessage::parse_datagram(m.bytes().clone()).unwrap_or(m.clone());
                let msg = m.as_message();
                if asked & 1 != 0 {
                    let _ = msg.top_via();
                }
                if asked & 2 != 0 {
                    let _ = msg.cseq();
                }
                for name in names {
                    let what = format!("{base} / {name:?} / asked {asked}");
                    let mut e = msg.edit();
                    e.pop_first(name);
                    let edited = e.to_owned_message();
                    total += 1;
                    let Some(f) = m.without_first_value(name) else {
                        continue;
                    };
                    own += 1;
                    let edited = edited.unwrap_or_else(|err| panic!("{what}: {err}"));
                    assert_eq!(parse_facts(&f), parse_facts(&edited), "{what}");
                    assert_eq!(kept_facts(&f), kept_facts(&edited), "{what}");
                    check_carried(&f, &what);
                }
            }
        }
        assert!(own > total / 4 && own < total, "{own} of {total}");
        // the pops of a proxy take this path: one Route value, one of two, the top Via line
        for (raw, name) in [
            (
                "REGISTER sip:x SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK-1\r\nRoute: <sip:p.x;lr>\r\n",
                HeaderName::Route,
            ),
            (
                "REGISTER sip:x SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK-1\r\nRoute: <sip:p.x;lr>, <sip:s.x;lr>\r\n",
                HeaderName::Route,
            ),
            (
                "SIP/2.0 401 Unauthorized\r\nVia: SIP/2.0/UDP p;branch=z9hG4bK-2\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK-1\r\n",
                HeaderName::Via,
            ),
        ] {
            let m = dgram(&format!("{raw}{tail}"));
            assert!(m.without_first_value(name).is_some(), "{raw}");
        }
    }

    /// `OwnedMessage::with_line_above` gives exactly what `push_front` and `to_owned_message`
    /// give (bytes, index, kept values), and takes its own path for a UA's Via.
    #[test]
    fn a_line_pushed_without_an_edit_is_the_edits_message() {
        let dgram = |s: &str| OwnedMessage::parse_datagram(Bytes::from(s.to_owned())).unwrap();
        let tail = "From: <sip:a@x>;tag=1\r\nTo: <sip:b@x>\r\nCall-ID: c\r\nCSeq: 7 NOTIFY\r\n\
                    Content-Length: 2\r\n\r\nok";
        let mut msgs: Vec<(OwnedMessage, String)> = bases()
            .into_iter()
            .map(|(m, b)| (m, b.to_owned()))
            .collect();
        for (i, head) in [
            "Via: SIP/2.0/UDP h;branch=z9hG4bK-1\r\n",
            "X-A: 1\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK-1\r\nRoute: <sip:p;lr>\r\n",
            "Route: <sip:p;lr>\r\nv: SIP/2.0/UDP h;branch=z9hG4bK-1, SIP/2.0/UDP g\r\n",
            "",
        ]
        .into_iter()
        .enumerate()
        {
            msgs.push((
                dgram(&format!("NOTIFY sip:x SIP/2.0\r\n{head}{tail}")),
                format!("notify {i}"),
            ));
            msgs.push((
                dgram(&format!("SIP/2.0 200 OK\r\n{head}{tail}")),
                format!("ok {i}"),
            ));
        }
        let pushes: [(&str, &str); 14] = [
            ("Via", "SIP/2.0/UDP 127.0.0.1:5064;branch=z9hG4bK-ua-1"),
            ("v", "SIP/2.0/TCP u;branch=z9hG4bK-2"),
            ("Via", "SIP/2.0/UDP bad host"),
            ("Route", "<sip:s;lr>"),
            ("rOUTE", "<sip:s;lr>"),
            ("Record-Route", "<sip:rr;lr>"),
            ("CSeq", "9 NOTIFY"),
            ("X-New", "1"),
            ("Subject", ""),
            ("Subject", " lead"),
            ("Subject", "trail\t"),
            ("Subject", "a\r\n b"),
            ("Content-Length", "2"),
            ("Bad Name", "x"),
        ];
        let mut own = 0;
        let mut total = 0;
        for (m, base) in &msgs {
            for asked in 0..4u8 {
                let m = OwnedMessage::parse_datagram(m.bytes().clone()).unwrap_or(m.clone());
                let msg = m.as_message();
                if asked & 1 != 0 {
                    let _ = msg.top_via();
                }
                if asked & 2 != 0 {
                    let _ = msg.cseq();
                }
                for (name, value) in pushes {
                    let what = format!("{base} / {name}: {value:?} / asked {asked}");
                    let mut e = msg.edit();
                    e.push_front(name, value);
                    let edited = e.to_owned_message();
                    total += 1;
                    let Some(f) = m.with_line_above(name, value) else {
                        continue;
                    };
                    own += 1;
                    let edited = edited.unwrap_or_else(|err| panic!("{what}: {err}"));
                    assert_eq!(parse_facts(&f), parse_facts(&edited), "{what}");
                    assert_eq!(kept_facts(&f), kept_facts(&edited), "{what}");
                    check_carried(&f, &what);
                }
            }
        }
        assert!(own > total / 4 && own < total, "{own} of {total}");
        let m = dgram(&format!(
            "NOTIFY sip:x SIP/2.0\r\nRoute: <sip:p;lr>\r\nMax-Forwards: 70\r\n{tail}"
        ));
        let f = m
            .with_line_above("Via", "SIP/2.0/UDP 127.0.0.1:5064;branch=z9hG4bK-ua-1")
            .expect("a UA's Via");
        assert!(kept_facts(&f).0.is_some());
    }

    /// `OwnedMessage::keep_values_of`: a message takes the top Via and CSeq its twin parsed
    /// only where its own lines hold the same values, and then answers as its own parse.
    /// The start-line asks of an owned message are the view's.
    #[test]
    fn the_owned_start_line_asks_are_the_views() {
        let mut msgs: Vec<OwnedMessage> = bases().into_iter().map(|(m, _)| m).collect();
        for start in [
            "INVITE sip:b@x SIP/2.0",
            "REGISTER sip:x SIP/2.0",
            "FOO-bar.1 sip:x SIP/2.0",
            "invite sip:x SIP/2.0",
            "SIP/2.0 200 OK",
            "SIP/2.0 199 Odd phrase",
            "SIP/2.0 699 x",
        ] {
            let text = format!(
                "{start}\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nCSeq: 1 X\r\nContent-Length: 0\r\n\r\n"
            );
            msgs.push(OwnedMessage::parse_datagram(Bytes::from(text)).unwrap());
        }
        for m in &msgs {
            let v = m.as_message();
            assert_eq!(m.is_request(), v.is_request());
            assert_eq!(m.status(), v.status());
            assert_eq!(m.method(), v.method());
        }
    }

    #[test]
    fn a_message_keeps_the_values_of_a_twin_only_for_equal_lines() {
        let dgram = |s: &str| OwnedMessage::parse_datagram(Bytes::from(s.to_owned())).unwrap();
        // (the bases a default parse reads: each message is parsed afresh below)
        let mut msgs: Vec<(OwnedMessage, String)> = bases()
            .into_iter()
            .filter(|(m, _)| OwnedMessage::parse_datagram(m.bytes().clone()).is_ok())
            .map(|(m, b)| (m, b.to_owned()))
            .collect();
        let tail =
            "From: <sip:a@x>;tag=1\r\nTo: <sip:b@x>\r\nCall-ID: c\r\nContent-Length: 0\r\n\r\n";
        for (i, (via, cseq)) in [
            ("Via: SIP/2.0/UDP h;branch=z9hG4bK-1", "CSeq: 1 REGISTER"),
            ("Via: SIP/2.0/UDP h;branch=z9hG4bK-1", "CSeq: 2 REGISTER"),
            ("Via: SIP/2.0/UDP h;branch=z9hG4bK-2", "CSeq: 1 FOO"),
            ("Via:  SIP/2.0/UDP h;branch=z9hG4bK-1", "CSeq:  1 REGISTER"),
            (
                "Via: SIP/2.0/UDP h;branch=z9hG4bK-1, SIP/2.0/UDP g",
                "CSeq: 1 FOO",
            ),
            (
                "Via:\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK-1",
                "CSeq: x REGISTER",
            ),
            ("Via: SIP/2.0/UDP h;branch=", "CSeq: 1 REGISTER"),
            ("X-A: 1", "CSeq: 1 REGISTER"),
        ]
        .into_iter()
        .enumerate()
        {
            // a request, its response (the lines copied further down) and a proxy's response
            // (its own Via above the request's)
            let req = format!("REGISTER sip:x SIP/2.0\r\n{via}\r\n{cseq}\r\n{tail}");
            msgs.push((dgram(&req), format!("request {i}")));
            let resp = format!("SIP/2.0 200 OK\r\nX-Pad: padding\r\n{via}\r\n{tail}{cseq}\r\n\r\n")
                .replace("Content-Length: 0\r\n\r\n", "Content-Length: 0\r\n");
            msgs.push((dgram(&resp), format!("response {i}")));
            let upstream = format!(
                "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP p;branch=z9hG4bK-9\r\n{via}\r\n{cseq}\r\n{tail}"
            );
            msgs.push((dgram(&upstream), format!("upstream {i}")));
        }
        let fresh = |m: &OwnedMessage| OwnedMessage::parse_datagram(m.bytes().clone()).unwrap();
        let mut kept = [0usize; 2];
        for (a, an) in &msgs {
            for (b, bn) in &msgs {
                for asked in 0..4u8 {
                    let (a, b) = (fresh(a), fresh(b));
                    let tb = b.as_message();
                    if asked & 1 != 0 {
                        let _ = tb.top_via();
                    }
                    if asked & 2 != 0 {
                        let _ = tb.cseq();
                    }
                    a.keep_values_of(&b);
                    let what = format!("{an} of {bn} / asked {asked}");
                    let (via, cseq) = kept_facts(&a);
                    // kept only what the twin had, and the asks answer as the parse does
                    assert!(via.is_none() || asked & 1 != 0, "{what}");
                    assert!(cseq.is_none() || asked & 2 != 0, "{what}");
                    if OwnedMessage::parse(a.bytes().clone()).is_ok() {
                        check_carried(&a, &what);
                    }
                    let p = fresh(&a);
                    assert_eq!(a.as_message().top_via(), p.as_message().top_via(), "{what}");
                    assert_eq!(a.as_message().cseq(), p.as_message().cseq(), "{what}");
                    kept[0] += usize::from(via.is_some());
                    kept[1] += usize::from(cseq.is_some());
                }
            }
        }
        assert!(kept[0] > 0 && kept[1] > 0, "{kept:?}");
        // the two cases it is for: a response built from its request, and a proxy's response
        // with its own Via popped, each given the request's parses
        let req = dgram(&format!(
            "REGISTER sip:x SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK-1;rport\r\nCSeq: 7 REGISTER\r\n{tail}"
        ));
        let _ = (req.as_message().top_via(), req.as_message().cseq());
        let resp = crate::ResponseBuilder::from_request(&req.as_message(), 401)
            .build()
            .unwrap();
        resp.keep_values_of(&req);
        assert!(matches!(kept_facts(&resp), (Some(_), Some(_))));
        let up = dgram(&format!(
            "SIP/2.0 401 Unauthorized\r\nVia: SIP/2.0/UDP p;branch=z9hG4bK-9\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK-1;rport\r\nCSeq: 7 REGISTER\r\n{tail}"
        ));
        let popped = up.without_first_value(HeaderName::Via).unwrap();
        popped.keep_values_of(&req);
        assert!(matches!(kept_facts(&popped), (Some(_), Some(_))));
        check_carried(&popped, "popped");
        // a twin with another value gives nothing
        let other = dgram(&format!(
            "REGISTER sip:x SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK-2;rport\r\nCSeq: 8 REGISTER\r\n{tail}"
        ));
        let _ = (other.as_message().top_via(), other.as_message().cseq());
        let resp = crate::ResponseBuilder::from_request(&req.as_message(), 401)
            .build()
            .unwrap();
        resp.keep_values_of(&other);
        assert_eq!(kept_facts(&resp), (None, None));
    }

    #[test]
    fn max_forwards_is_written_in_decimal_and_borrowed_below_100() {
        for n in 0..=u8::MAX {
            let t = max_forwards_text(n);
            assert_eq!(t, n.to_string());
            assert_eq!(matches!(t, Cow::Borrowed(_)), n < 100, "{n}");
        }
    }

    proptest::proptest! {
        /// Random sequences of edits on the base messages: the index built from the pieces is
        /// the parse's, and the fast path never builds a message the parse refuses.
        #[test]
        fn random_edit_sequences_index_as_the_parse(
            base in 0usize..6,
            seq in proptest::collection::vec(0usize..36, 0..6),
            asked in 0u8..4,
        ) {
            let bases = bases();
            let ops = ops();
            let m = &bases[base % bases.len()].0;
            let msg = m.as_message();
            // the original's kept values: none, the top Via, the CSeq, both
            if asked & 1 != 0 {
                let _ = msg.top_via();
            }
            if asked & 2 != 0 {
                let _ = msg.cseq();
            }
            let mut e = msg.edit();
            let mut what = bases[base % bases.len()].1.to_owned();
            for i in seq {
                let (name, op) = &ops[i % ops.len()];
                op(&mut e);
                what.push_str(" / ");
                what.push_str(name);
            }
            check(&e, &what);
        }
    }

    /// The top Via's received/rport fix as a transport writes it with `str` pieces (RFC 3581
    /// §4): every `;`-separated part after the first whose trimmed text is `rport` becomes
    /// `rport=<port>`, `;received=<address>` goes at the end of the element.
    fn received_splice(
        m: &OwnedMessage,
        received: Option<std::net::IpAddr>,
        rport: Option<u16>,
    ) -> Option<Vec<u8>> {
        let msg = m.as_message();
        let bytes = m.bytes();
        let (_, elem) = msg.list(HeaderName::Via).find(|(_, e)| !e.is_empty())?;
        let start = elem.as_ptr() as usize - bytes.as_ptr() as usize;
        let mut with = String::new();
        for (i, part) in elem.split(';').enumerate() {
            if i > 0 {
                with.push(';');
            }
            match rport {
                Some(p) if i > 0 && part.trim().eq_ignore_ascii_case("rport") => {
                    with.push_str(&format!("rport={p}"))
                }
                _ => with.push_str(part),
            }
        }
        match received {
            Some(std::net::IpAddr::V4(a)) => with.push_str(&format!(";received={a}")),
            Some(std::net::IpAddr::V6(a)) => with.push_str(&format!(";received=[{a}]")),
            None => {}
        }
        let mut out = bytes[..start].to_vec();
        out.extend_from_slice(with.as_bytes());
        out.extend_from_slice(&bytes[start + elem.len()..]);
        Some(out)
    }

    #[test]
    fn a_received_via_keeps_the_value_a_parse_of_the_splice_gives() {
        let cfg = ParserConfig::default();
        let elems = [
            "SIP/2.0/UDP 127.0.0.1:5090;branch=z9hG4bK-1;rport",
            "SIP/2.0/UDP ue.example.org;rport;branch=z9hG4bK-1",
            "SIP/2.0/UDP h:5060;RPORT;branch=z9hG4bK-1;rport",
            "SIP/2.0/UDP h;rport;Rport;rport;branch=z9hG4bKx",
            "SIP/2.0/UDP h;branch=z9hG4bK-1;rport=5",
            "SIP/2.0/UDP h;branch=z9hG4bK-1",
            "SIP/2.0/UDP h;branch=z9hG4bK-1; rport",
            "SIP/2.0/UDP h;rport ;branch=z9hG4bK-1",
            "SIP/2.0/UDP h;x=\"a;rport\";branch=z9hG4bK-1",
            "SIP/2.0/UDP h;rport;branch=z9hG4bK-1, SIP/2.0/UDP g;rport",
            "SIP/2.0/UDP h;rport;branch=z9hG4bK-1 , SIP/2.0/UDP g",
            "SIP/2.0/UDP [::1]:5060;rport;branch=z9hG4bK-1",
            "SIP/2.0/TCP [2001:db8::9];branch=z9hG4bK-1;rport",
            "SIP/2.0/UDP h",
            "SIP/2.0/UDP h:7",
            "SIP/2.0/UDP h;received=1.2.3.4;rport",
            "SIP/2.0/UDP h ;rport;branch=z9hG4bK-1",
            "SIP/2.0/UDP h;branch=z9hG4bK-1;rport;ttl=3;maddr=x.y",
            "SIP/2.0/UDP h;rport;branch=z9hG4bK-1   ",
            "SIP/2.0/UDP h;branch=z9hG4bK-1;rportx;xrport;rport",
            "SIP/2.0/UDP h;branch=;rport",
            "SIP/2.0/UDP h;rport;branch=z9hG4bK-1;rport=",
            "sip / 2.0 / udp h;rport;branch=z9hG4bK-1",
            "SIP/2.0/UDP h;rport;branch=z9hG4bK-1;x=y,",
            "SIP/2.0/UDP h;rport=70000",
            "SIP/2.0/UDP h;rport;BRANCH=z9hG4bK-9;branch=z9hG4bK-2",
        ];
        let layouts = [
            ("Via: ", ""),
            ("v: ", ""),
            ("Via:\r\nVia: ", ""),
            ("Via: ", "\r\nVia: SIP/2.0/UDP p;branch=z9hG4bK-p"),
            ("X-A: 1\r\nVia:   ", ""),
            ("Via: ", "\r\n folded;x"),
        ];
        let tail =
            "\r\nFrom: <sip:a@x>;tag=1\r\nTo: <sip:b@x>\r\nCall-ID: c\r\nCSeq: 7 REGISTER\r\n\
                    Content-Length: 2\r\n\r\nok";
        let received: [Option<std::net::IpAddr>; 5] = [
            None,
            Some("127.0.0.1".parse().unwrap()),
            Some("10.200.3.45".parse().unwrap()),
            Some("::1".parse().unwrap()),
            Some("2001:db8::1:0".parse().unwrap()),
        ];
        let rports = [None, Some(0u16), Some(5), Some(5060), Some(65535)];
        let (mut answered, mut total) = (0, 0);
        for elem in elems {
            for (before, after) in layouts {
                let text = format!("REGISTER sip:x SIP/2.0\r\n{before}{elem}{after}{tail}");
                let Ok(orig) = OwnedMessage::parse_datagram_with(Bytes::from(text), &cfg) else {
                    continue;
                };
                for asked in 0..4u8 {
                    for rcv in received {
                        for rport in rports {
                            let m = OwnedMessage::parse_datagram_with(orig.bytes().clone(), &cfg)
                                .unwrap();
                            if asked & 1 != 0 {
                                let _ = m.as_message().top_via();
                            }
                            if asked & 2 != 0 {
                                let _ = m.as_message().cseq();
                            }
                            let what = format!(
                                "{before:?}{elem:?}{after:?} {rcv:?} {rport:?} asked {asked}"
                            );
                            total += 1;
                            let Some(f) = m.with_top_via_received(rcv, rport, &cfg) else {
                                // it answers for a request asked for its Via and written without
                                // blanks or quotes in the parameters
                                let plain = !elem.contains([' ', '"']) && !before.ends_with("   ");
                                let answerable = asked & 1 != 0
                                    && (rcv.is_some() || rport.is_some())
                                    && plain
                                    && elem.contains(";branch=z9")
                                    && !elem.contains("rport=")
                                    && !elem.ends_with(',')
                                    && !after.contains("folded");
                                assert!(!answerable, "{what}: no answer");
                                continue;
                            };
                            answered += 1;
                            assert!(asked & 1 != 0, "{what}: answered without a kept Via");
                            let expect = received_splice(&m, rcv, rport).expect("a top Via");
                            assert_eq!(&f.bytes()[..], &expect[..], "{what}: bytes");
                            let fresh =
                                OwnedMessage::parse_datagram_with(Bytes::from(expect), &cfg)
                                    .expect("the splice parses");
                            assert_eq!(parse_facts(&f), parse_facts(&fresh), "{what}: index");
                            let fm = fresh.as_message();
                            let (via, _) = kept_facts(&f);
                            assert_eq!(
                                via,
                                Some(format!("{:?}", fm.get::<crate::headers::Via<'_>>())),
                                "{what}: kept Via"
                            );
                            let n = f.as_message();
                            assert_eq!(n.top_via(), fm.top_via(), "{what}: top Via");
                            assert_eq!(n.cseq(), fm.cseq(), "{what}: CSeq");
                            let v = n.top_via().unwrap().unwrap();
                            let asked_rport = m.as_message().top_via().unwrap().unwrap().rport();
                            match rport {
                                Some(p) if asked_rport == Some(None) => {
                                    assert_eq!(v.rport(), Some(Some(p)), "{what}: rport")
                                }
                                _ => assert_eq!(v.rport(), asked_rport, "{what}: rport kept"),
                            }
                            let had = m.as_message().top_via().unwrap().unwrap().received_ip();
                            match rcv {
                                Some(a) if had.is_none() => {
                                    assert_eq!(v.received_ip(), Some(a), "{what}: received")
                                }
                                _ => assert_eq!(v.received_ip(), had, "{what}: received kept"),
                            }
                        }
                    }
                }
            }
        }
        assert!(answered > total / 8, "{answered} of {total}");
    }
}

#[cfg(test)]
mod via_head_tests {
    use super::tests::bases;
    use crate::headers::ViaHead;
    use crate::message::{kept_facts, parse_facts};

    /// `push_via_after(head, params)` is `push_via(head + params)` (bytes, index, kept top Via
    /// and CSeq), and so is `with_via_above` of `with_line_above("Via", …)`; the top Via is kept.
    #[test]
    fn a_via_written_after_a_head_is_the_via_written_whole() {
        let heads = [
            ViaHead::new("UDP", "127.0.0.1:5062").unwrap(),
            ViaHead::new("TCP", "scscf.ims.example.org").unwrap(),
            ViaHead::new("TLS", "[2001:db8::1]:5061").unwrap(),
        ];
        let params = [
            ";branch=z9hG4bK-0123456789abcdef-1",
            ";branch=z9hG4bK1a2b;rport",
            "",
            ";branch=\"q\"",
            ";received=bad;branch=z9hG4bK-2",
            ",SIP/2.0/UDP other;branch=z9hG4bK-3",
        ];
        let mut kept = 0;
        for (m, base) in bases() {
            let msg = m.as_message();
            for h in &heads {
                for p in params {
                    let whole = format!("{}{p}", h.as_str());
                    let what = format!("{base} / {whole}");
                    let mut a = msg.edit();
                    a.push_via_after(h, whole.clone());
                    let mut b = msg.edit();
                    b.push_via(whole.clone());
                    match (a.to_owned_message(), b.to_owned_message()) {
                        (Ok(a), Ok(b)) => {
                            assert_eq!(parse_facts(&a), parse_facts(&b), "{what}");
                            assert_eq!(kept_facts(&a), kept_facts(&b), "{what}");
                            kept += usize::from(kept_facts(&a).0.is_some());
                            // and what a fresh parse says
                            let fresh = crate::OwnedMessage::parse(a.bytes().clone()).unwrap();
                            assert_eq!(
                                a.as_message().top_via(),
                                fresh.as_message().top_via(),
                                "{what}"
                            );
                        }
                        (a, b) => assert_eq!(a.is_ok(), b.is_ok(), "{what}"),
                    }
                    let a = m.with_via_above(h, &whole);
                    let b = m.with_line_above("Via", &whole);
                    assert_eq!(a.is_some(), b.is_some(), "{what}");
                    if let (Some(a), Some(b)) = (a, b) {
                        assert_eq!(parse_facts(&a), parse_facts(&b), "{what}");
                        assert_eq!(kept_facts(&a), kept_facts(&b), "{what}");
                    }
                }
            }
        }
        assert!(kept > 0);
    }
}
