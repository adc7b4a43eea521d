//! Via (RFC 3261 §20.42, §18.2.1; rport RFC 3581; IPv6 received RFC 5118 §4.5).

use super::{whole, TypedHeader};
use crate::error::{ErrorKind, ParseError};
use crate::params::Params;
use crate::scan::{Cursor, Span};
use crate::uri::{parse_host_prefix, parse_ipv4, Host};
use crate::HeaderName;
use std::fmt;
use std::net::IpAddr;

/// The magic cookie that marks an RFC 3261 branch (§8.1.1.7).
pub const MAGIC_COOKIE: &str = "z9hG4bK";

/// One via-parm: `sent-protocol LWS sent-by *( SEMI via-params )`.
///
/// ```
/// use ims_sip::headers::{TypedHeader, Via};
/// let v = Via::parse("SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK776;rport").unwrap();
/// assert_eq!(v.transport(), "UDP");
/// assert_eq!(v.port(), Some(5060));
/// assert_eq!(v.branch(), Some("z9hG4bK776"));
/// assert_eq!(v.rport(), Some(None));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Via<'a> {
    protocol_name: &'a str,
    protocol_version: &'a str,
    transport: &'a str,
    host: Host<'a>,
    port: Option<u16>,
    params: Params<'a>,
    /// The value of the first `branch` parameter, noted while the parameters are checked (the
    /// transaction layer asks for it several times per message).
    branch: Option<&'a str>,
}

impl<'a> TypedHeader<'a> for Via<'a> {
    const NAME: HeaderName = HeaderName::Via;
    const LIST: bool = true;
    fn parse(s: &'a str) -> Result<Self, ParseError> {
        // the Vias UAs and proxies write, read in one pass; anything else the general way
        if let Some(v) = plain_via(s) {
            return Ok(v);
        }
        parse_whole(s)
    }
}

/// The general parse of a Via value (`whole` of `head` and the parameters).
fn parse_whole(s: &str) -> Result<Via<'_>, ParseError> {
    {
        whole(s, |c| {
            let (protocol_name, protocol_version, transport, host, port) = head(c)?;
            let mut branch = None;
            let params = Params::parse_header_with(c, |n, v| {
                let ok = via_param_ok(n, v);
                if ok && branch.is_none() && is_branch(n) {
                    branch = Some(v);
                }
                ok
            })?;
            let v = Via {
                protocol_name,
                protocol_version,
                transport,
                host,
                port,
                params,
                branch: branch.flatten(),
            };
            Ok(v)
        })
    }
}

/// [`Via::parse`] of a value written the way UAs and proxies write theirs — `token/token/token`,
/// one space, the sent-by, then `;name[=value]` parameters, without blanks or quotes anywhere
/// else — read in one pass; `None` for any other text (and wherever the general parse could
/// read it otherwise), which the general parse then reads. Where it answers, it answers what
/// the general parse does: each part is the same maximal run of the same characters, read by
/// the same functions (`parse_host_prefix`, `parse_port`, `via_param_ok`), at the same offsets.
fn plain_via(s: &str) -> Option<Via<'_>> {
    use crate::scan::{is_lws, TOKEN};
    let b = s.as_bytes();
    let token_end = |from: usize| {
        let mut i = from;
        while i < b.len() && TOKEN[b[i] as usize] {
            i += 1;
        }
        i
    };
    let e1 = token_end(0);
    if e1 == 0 || b.get(e1) != Some(&b'/') {
        return None;
    }
    let e2 = token_end(e1 + 1);
    if e2 == e1 + 1 || b.get(e2) != Some(&b'/') {
        return None;
    }
    let e3 = token_end(e2 + 1);
    if e3 == e2 + 1 || b.get(e3) != Some(&b' ') {
        return None;
    }
    let hs = e3 + 1;
    if b.get(hs).is_none_or(|&c| is_lws(c)) {
        return None;
    }
    let (host, n) = parse_host_prefix(&s[hs..]).ok()?;
    let mut i = hs + n;
    let mut port = None;
    if b.get(i) == Some(&b':') {
        let mut c = Cursor { s, pos: i + 1 };
        port = Some(parse_port(&mut c).ok()?);
        i = c.pos;
    }
    let params_start = i;
    let branch = plain_params(s, i)?;
    Some(Via {
        protocol_name: &s[..e1],
        protocol_version: &s[e1 + 1..e2],
        transport: &s[e2 + 1..e3],
        host,
        port,
        params: Params::header_raw(if params_start == b.len() {
            ""
        } else {
            &s[params_start..]
        }),
        branch,
    })
}

/// The `;name[=value]` parameters of `s` from `i` to its end as [`plain_via`] reads them: the
/// value of the first `branch` parameter, `None` (the general parse decides) for anything else
/// than plain parameters that are valid via-params.
fn plain_params(s: &str, mut i: usize) -> Option<Option<&str>> {
    use crate::params::GEN_VALUE;
    use crate::scan::TOKEN;
    let b = s.as_bytes();
    let token_end = |from: usize| {
        let mut i = from;
        while i < b.len() && TOKEN[b[i] as usize] {
            i += 1;
        }
        i
    };
    let mut branch = None;
    while i < b.len() {
        if b[i] != b';' {
            return None;
        }
        let name_end = token_end(i + 1);
        if name_end == i + 1 {
            return None;
        }
        let name = &s[i + 1..name_end];
        i = name_end;
        let mut value = None;
        // the value is a token (all its bytes token characters, noted on the way)
        let mut token = false;
        if b.get(i) == Some(&b'=') {
            let start = i + 1;
            let mut end = start;
            let mut all = true;
            while end < b.len() && GEN_VALUE[b[end] as usize] {
                all &= TOKEN[b[end] as usize];
                end += 1;
            }
            // a quoted value, a blank or nothing after `=`: the general parse decides
            if end == start {
                return None;
            }
            value = Some(&s[start..end]);
            token = all;
            i = end;
        }
        if !via_param_ok_with(name, value, || token) {
            return None;
        }
        if branch.is_none() && is_branch(name) {
            branch = value;
        }
    }
    Some(branch)
}

/// The front of the Via value an element writes on every request it sends —
/// `SIP/2.0/<transport> <sent-by>` (RFC 3261 §18.2.1, §8.1.1.7) — parsed once.
/// [`crate::Edit::push_via_after`] and [`crate::OwnedMessage::with_via_above`] take a Via value
/// written as this front then a request's parameters (`;branch=…`), and the message they give
/// keeps its top Via with only those parameters read: the front is not parsed again for each
/// request.
///
/// ```
/// use ims_sip::headers::ViaHead;
/// let head = ViaHead::new("UDP", "127.0.0.1:5060").unwrap();
/// assert_eq!(head.as_str(), "SIP/2.0/UDP 127.0.0.1:5060");
/// assert!(ViaHead::new("UDP", "bad host").is_none());
/// ```
#[derive(Debug, Clone)]
pub struct ViaHead(std::sync::Arc<HeadInner>);

#[derive(Debug)]
struct HeadInner {
    text: String,
    /// The parse of `text` (no parameters), as offsets into it.
    spans: ViaSpans,
}

impl ViaHead {
    /// `SIP/2.0/<transport> <sent_by>`; `None` unless it is the front of a Via read in one
    /// pass, without parameters (a token transport, a host and an optional port).
    pub fn new(transport: &str, sent_by: &str) -> Option<ViaHead> {
        let mut text = String::with_capacity(9 + transport.len() + sent_by.len());
        text.push_str("SIP/2.0/");
        text.push_str(transport);
        text.push(' ');
        text.push_str(sent_by);
        let v = plain_via(&text)?;
        if !v.params.as_str().is_empty() || v.branch.is_some() {
            return None;
        }
        let spans = v.spans_in(&text)?;
        Some(ViaHead(std::sync::Arc::new(HeadInner { text, spans })))
    }

    /// The text written: `SIP/2.0/<transport> <sent-by>`.
    pub fn as_str(&self) -> &str {
        &self.0.text
    }

    /// [`Via::parse`] of a Via `value` that starts with this front, then has only plain
    /// parameters, as offsets into `value`: the front's kept parts, the parameters read as
    /// [`plain_via`] reads them. `None` when `value` is anything else (the caller parses).
    pub(crate) fn spans_of(&self, value: &str) -> Option<ViaSpans> {
        let text = self.0.text.as_str();
        let rest = value.strip_prefix(text)?;
        // what follows the sent-by must end it: parameters or nothing
        if !(rest.is_empty() || rest.starts_with(';')) {
            return None;
        }
        let branch = plain_params(value, text.len())?;
        let front = self.0.spans.get(value)?;
        Via {
            params: Params::header_raw(rest),
            branch,
            ..front
        }
        .spans_in(value)
    }
}

/// `sent-protocol LWS sent-by` at the cursor: protocol name, version, transport, host, port.
#[allow(clippy::type_complexity)]
fn head<'a>(
    c: &mut Cursor<'a>,
) -> Result<(&'a str, &'a str, &'a str, Host<'a>, Option<u16>), ParseError> {
    let protocol_name = c.token("protocol-name")?;
    if !c.sep(b'/') {
        return Err(c.err("'/'"));
    }
    let protocol_version = c.token("protocol-version")?;
    if !c.sep(b'/') {
        return Err(c.err("'/'"));
    }
    let transport = c.token("transport")?;
    let before = c.pos;
    c.skip_lws();
    if c.pos == before {
        return Err(c.err("LWS before sent-by"));
    }
    let (host, n) = parse_host_prefix(c.rest()).map_err(|e| ParseError {
        offset: e.offset + c.pos,
        ..e
    })?;
    c.pos += n;
    let mut port = None;
    if c.sep(b':') {
        port = Some(parse_port(c)?);
    }
    Ok((protocol_name, protocol_version, transport, host, port))
}

pub(crate) fn parse_port(c: &mut Cursor<'_>) -> Result<u16, ParseError> {
    let d = c.digits();
    if d.is_empty() {
        return Err(c.err("port"));
    }
    if d.len() > 5 {
        return Err(ParseError::new(
            ErrorKind::Overflow("port"),
            c.pos - d.len(),
        ));
    }
    // at most five digits: a u32 holds them (no `str::parse` machinery)
    let v = d.bytes().fold(0u32, |v, c| v * 10 + u32::from(c - b'0'));
    u16::try_from(v).map_err(|_| ParseError::new(ErrorKind::Overflow("port"), c.pos - d.len()))
}

impl<'a> Via<'a> {
    /// `SIP` in `SIP/2.0/UDP`.
    pub fn protocol_name(&self) -> &'a str {
        self.protocol_name
    }
    /// `2.0` in `SIP/2.0/UDP`.
    pub fn protocol_version(&self) -> &'a str {
        self.protocol_version
    }
    /// The transport token as written (`UDP`, `TCP`, `TLS`, `SCTP`, `WS`, or an extension).
    pub fn transport(&self) -> &'a str {
        self.transport
    }
    /// sent-by host.
    pub fn host(&self) -> Host<'a> {
        self.host
    }
    /// sent-by port.
    pub fn port(&self) -> Option<u16> {
        self.port
    }
    /// All via-params.
    pub fn params(&self) -> Params<'a> {
        self.params
    }
    /// The sent-by host and port of a Via value `s`, read without its parameters: for every
    /// `s` that [`Via::parse`](TypedHeader::parse) accepts, its `(host(), port())`; `None` when
    /// the part before the parameters does not parse. A proxy looking for its own Via among all
    /// of a request's (RFC 3261 §16.3 step 4) parses the parameters of its own ones only.
    ///
    /// ```
    /// use ims_sip::headers::Via;
    /// use ims_sip::Host;
    /// let (host, port) = Via::sent_by_of("SIP/2.0/UDP pcscf.example.com:5060;branch=z9hG4bK1").unwrap();
    /// assert_eq!((host, port), (Host::Domain("pcscf.example.com"), Some(5060)));
    /// assert!(Via::sent_by_of("SIP/2.0 pcscf.example.com").is_none());
    /// ```
    pub fn sent_by_of(s: &'a str) -> Option<(Host<'a>, Option<u16>)> {
        let mut c = Cursor::new(s);
        c.skip_lws();
        let (_, _, _, host, port) = head(&mut c).ok()?;
        // what `parse` reads next: parameters after optional LWS, or the end
        c.skip_lws();
        matches!(c.peek(), None | Some(b';')).then_some((host, port))
    }
    /// The branch parameter.
    pub fn branch(&self) -> Option<&'a str> {
        self.branch
    }

    /// This Via as offsets into `base`, the text every part of it borrows from (the message's
    /// header section); `None` if a part lies outside it.
    pub(crate) fn spans_in(self, base: &str) -> Option<ViaSpans> {
        Some(ViaSpans {
            protocol_name: Span::of(base, self.protocol_name)?,
            protocol_version: Span::of(base, self.protocol_version)?,
            transport: Span::of(base, self.transport)?,
            host: match self.host {
                Host::Domain(d) => HostSpan::Domain(Span::of(base, d)?),
                Host::Ipv4(a) => HostSpan::Ipv4(a),
                Host::Ipv6(s) => HostSpan::Ipv6(Span::of(base, s)?),
            },
            port: self.port,
            params: if self.params.is_uri() {
                return None;
            } else {
                Span::of(base, self.params.as_str())?
            },
            branch: match self.branch {
                Some(b) => Some(Span::of(base, b)?),
                None => None,
            },
        })
    }
    /// True when the branch starts with the RFC 3261 magic cookie and has more after it
    /// (a bare `z9hG4bK` cannot identify a transaction, RFC 4475 §3.2.1).
    pub fn has_rfc3261_branch(&self) -> bool {
        self.branch()
            .is_some_and(|b| b.len() > MAGIC_COOKIE.len() && b.starts_with(MAGIC_COOKIE))
    }
    /// The received parameter as written (brackets allowed, RFC 5118 §4.5).
    pub fn received(&self) -> Option<&'a str> {
        self.params.get("received").flatten()
    }
    /// The received parameter as an address.
    pub fn received_ip(&self) -> Option<IpAddr> {
        self.received().and_then(parse_received)
    }
    /// rport (RFC 3581): `Some(None)` when present without a value (a request for it),
    /// `Some(Some(port))` when filled in.
    pub fn rport(&self) -> Option<Option<u16>> {
        self.params
            .get("rport")
            .map(|v| v.and_then(|p| p.parse().ok()))
    }
    /// maddr.
    pub fn maddr(&self) -> Option<&'a str> {
        self.params.get("maddr").flatten()
    }
    /// ttl.
    pub fn ttl(&self) -> Option<u8> {
        self.params
            .get("ttl")
            .flatten()
            .and_then(|v| v.parse().ok())
    }
}

/// `name` is `branch` (case-insensitive).
fn is_branch(name: &str) -> bool {
    name.len() == 6 && name.eq_ignore_ascii_case("branch")
}

/// A [`Via`] as offsets into the text it was parsed from (see [`Via::spans_in`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct ViaSpans {
    protocol_name: Span,
    protocol_version: Span,
    transport: Span,
    host: HostSpan,
    port: Option<u16>,
    params: Span,
    branch: Option<Span>,
}

#[derive(Debug, Clone, Copy)]
enum HostSpan {
    Domain(Span),
    Ipv4(std::net::Ipv4Addr),
    Ipv6(Span),
}

impl ViaSpans {
    /// The spans of the same Via moved `by` bytes (its line copied to another offset).
    pub(crate) fn shifted(self, by: i64) -> Option<ViaSpans> {
        Some(ViaSpans {
            protocol_name: self.protocol_name.shifted(by)?,
            protocol_version: self.protocol_version.shifted(by)?,
            transport: self.transport.shifted(by)?,
            host: match self.host {
                HostSpan::Domain(d) => HostSpan::Domain(d.shifted(by)?),
                HostSpan::Ipv4(a) => HostSpan::Ipv4(a),
                HostSpan::Ipv6(s) => HostSpan::Ipv6(s.shifted(by)?),
            },
            port: self.port,
            params: self.params.shifted(by)?,
            branch: match self.branch {
                Some(b) => Some(b.shifted(by)?),
                None => None,
            },
        })
    }
    /// The Via again, its parts taken from `base` (the text [`Via::spans_in`] was given); `None`
    /// when an offset does not fit `base`.
    pub(crate) fn get<'a>(&self, base: &'a str) -> Option<Via<'a>> {
        Some(Via {
            protocol_name: self.protocol_name.get(base)?,
            protocol_version: self.protocol_version.get(base)?,
            transport: self.transport.get(base)?,
            host: match self.host {
                HostSpan::Domain(d) => Host::Domain(d.get(base)?),
                HostSpan::Ipv4(a) => Host::Ipv4(a),
                HostSpan::Ipv6(s) => Host::Ipv6(s.get(base)?),
            },
            port: self.port,
            params: Params::header_raw(self.params.get(base)?),
            branch: match self.branch {
                Some(b) => Some(b.get(base)?),
                None => None,
            },
        })
    }
}

impl ViaSpans {
    /// The receive-side fix of RFC 3261 §18.2.1 and RFC 3581 §4 written into the parameters of
    /// this Via (read from `base`): each value-less `rport` parameter becomes `rport=<rport>`
    /// (when `rport` is given) and `;received=<received>` is appended (when given), written as
    /// the `Display` of the port and address (an IPv6 address in brackets, RFC 5118 §4.5).
    ///
    /// Gives the span of `base` the new text replaces (the parameters), that text, and the
    /// spans of the Via a parse of `base` with the new text in place of the parameters gives:
    /// the parts before the parameters do not move, the parameters grow, the branch moves by
    /// what was written before it; the written values are valid via-params (a port, an
    /// address), the others are unchanged. `None` when nothing is asked, there are no
    /// parameters, or they hold a blank or a quote (their text splits into parameters at each
    /// `;` only without them).
    pub(crate) fn with_received(
        self,
        base: &[u8],
        received: Option<IpAddr>,
        rport: Option<u16>,
    ) -> Option<(Span, Vec<u8>, ViaSpans)> {
        if received.is_none() && rport.is_none() {
            return None;
        }
        let p = self.params;
        let text = base.get(p.start()..p.end())?;
        if text.first() != Some(&b';')
            || text
                .iter()
                .any(|&c| matches!(c, b' ' | b'\t' | b'"' | b'\r' | b'\n'))
        {
            return None;
        }
        // every other part lies before the parameters
        let before = |s: Span| s.end() <= p.start();
        let host_before = match self.host {
            HostSpan::Domain(s) | HostSpan::Ipv6(s) => before(s),
            HostSpan::Ipv4(_) => true,
        };
        if !(before(self.protocol_name)
            && before(self.protocol_version)
            && before(self.transport)
            && host_before)
        {
            return None;
        }
        let mut out = Vec::with_capacity(text.len() + 48);
        // bytes written before the branch's value
        let mut branch_by = 0i64;
        let mut i = 0;
        while i < text.len() {
            // text[i] is a `;`
            let end = memchr::memchr(b';', &text[i + 1..]).map_or(text.len(), |j| i + 1 + j);
            let part = &text[i + 1..end];
            out.push(b';');
            match rport {
                Some(port) if part.eq_ignore_ascii_case(b"rport") => {
                    out.extend_from_slice(b"rport=");
                    push_decimal(&mut out, port.into());
                    let grew = 1 + decimal_len(port.into()) as i64;
                    if self.branch.is_some_and(|b| p.start() + end <= b.start()) {
                        branch_by += grew;
                    }
                }
                _ => out.extend_from_slice(part),
            }
            i = end;
        }
        if let Some(a) = received {
            out.extend_from_slice(b";received=");
            match a {
                IpAddr::V4(a) => {
                    for (k, o) in a.octets().into_iter().enumerate() {
                        if k > 0 {
                            out.push(b'.');
                        }
                        push_decimal(&mut out, o.into());
                    }
                }
                IpAddr::V6(a) => out.extend_from_slice(format!("[{a}]").as_bytes()),
            }
        }
        let grown = Span::from_range(p.start(), p.start() + out.len())?;
        let spans = ViaSpans {
            params: grown,
            branch: match self.branch {
                Some(b) => Some(b.shifted(branch_by)?),
                None => None,
            },
            ..self
        };
        Some((p, out, spans))
    }
}

/// `n` in decimal, as `Display` writes it, appended to `out`.
fn push_decimal(out: &mut Vec<u8>, n: u32) {
    out.extend_from_slice(crate::decimal(&mut [0; 20], n.into()));
}

/// The number of decimal digits of `n`.
fn decimal_len(mut n: u32) -> usize {
    let mut k = 1;
    while n >= 10 {
        n /= 10;
        k += 1;
    }
    k
}

/// The value grammar of the via-params RFC 3261 §20.42 and RFC 3581 define.
fn via_param_ok(n: &str, value: Option<&str>) -> bool {
    via_param_ok_with(n, value, || {
        value.is_some_and(|v| crate::scan::is_token(v.as_bytes()))
    })
}

/// [`via_param_ok`] told whether `value` is a token (`crate::scan::is_token`; asked for a
/// `branch` only), as a scan that read its bytes already knows.
fn via_param_ok_with(n: &str, value: Option<&str>, token: impl FnOnce() -> bool) -> bool {
    // at most `len` (≤ 5) digits: a `u32` holds them (no `str::parse` machinery)
    let digits = |v: &str, max: u32, len: usize| {
        !v.is_empty()
            && v.len() <= len
            && v.bytes().all(|b| b.is_ascii_digit())
            && v.bytes().fold(0u32, |x, b| x * 10 + u32::from(b - b'0')) <= max
    };
    match n.len() {
        6 if n.eq_ignore_ascii_case("branch") => value.is_some() && token(),
        8 if n.eq_ignore_ascii_case("received") => {
            value.is_some_and(|v| parse_received(v).is_some())
        }
        5 if n.eq_ignore_ascii_case("rport") => value.is_none_or(|v| digits(v, 65535, 5)),
        3 if n.eq_ignore_ascii_case("ttl") => value.is_some_and(|v| digits(v, 255, 3)),
        5 if n.eq_ignore_ascii_case("maddr") => value.is_some_and(|v| Host::parse(v).is_ok()),
        _ => true,
    }
}

fn parse_received(v: &str) -> Option<IpAddr> {
    if let Some(a) = parse_ipv4(v) {
        return Some(IpAddr::V4(a));
    }
    let inner = v
        .strip_prefix('[')
        .and_then(|x| x.strip_suffix(']'))
        .unwrap_or(v);
    if crate::uri::is_ipv6(inner) {
        return Host::Ipv6(inner).ip();
    }
    None
}

impl fmt::Display for Via<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{}/{} {}",
            self.protocol_name, self.protocol_version, self.transport, self.host
        )?;
        if let Some(p) = self.port {
            write!(f, ":{p}")?;
        }
        for p in self.params.iter() {
            write!(f, ";{}", p.name)?;
            if let Some(v) = p.value {
                write!(f, "={v}")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::{parse_port, TypedHeader, Via};
    use crate::error::{ErrorKind, ParseError};
    use crate::scan::Cursor;

    /// Where each part of a parsed Via lies in the text (offsets, not just equal text).
    fn layout(v: &Via<'_>, s: &str) -> String {
        let at = |p: &str| {
            if p.is_empty() {
                (0, 0)
            } else {
                let o = p.as_ptr() as usize - s.as_ptr() as usize;
                (o, o + p.len())
            }
        };
        let host = match v.host() {
            crate::uri::Host::Domain(d) | crate::uri::Host::Ipv6(d) => at(d),
            crate::uri::Host::Ipv4(_) => (0, 0),
        };
        format!(
            "{v:?} {:?} {:?} {:?} {host:?} {:?} {:?}",
            at(v.protocol_name()),
            at(v.protocol_version()),
            at(v.transport()),
            at(v.params().as_str()),
            v.branch().map(at)
        )
    }

    fn check_plain(s: &str) -> bool {
        let general = super::parse_whole(s);
        let plain = super::plain_via(s);
        if let Some(p) = &plain {
            let g = general
                .as_ref()
                .unwrap_or_else(|e| panic!("{s:?}: plain read, general {e:?}"));
            assert_eq!(layout(p, s), layout(g, s), "{s:?}");
        }
        let parsed = Via::parse(s);
        assert_eq!(
            parsed.as_ref().map(|v| layout(v, s)),
            general.as_ref().map(|v| layout(v, s)),
            "{s:?}"
        );
        plain.is_some()
    }

    /// The one-pass read of a plainly written Via is the general parse's, part by part and
    /// offset by offset, and `Via::parse` answers as the general parse does on any text.
    #[test]
    fn a_plain_via_is_read_as_the_general_parse_reads_it() {
        let mut answered = 0;
        let heads = [
            "SIP/2.0/UDP 127.0.0.1:5060",
            "SIP/2.0/TCP pcscf.ims.example.org",
            "SIP/2.0/TLS [2001:db8::1]:5061",
            "sip/2.0/udp h:0",
            "SIP/2.0/UDP h:65536",
            "SIP/2.0/UDP h:",
            "SIP/2.0/UDP  h",
            "SIP/2.0/UDP\th",
            "SIP / 2.0/UDP h",
            "SIP/2.0/UDP h.",
            "SIP/2.0/UDP -h",
            "SIP/2.0/UDP 1.2.3.4.5",
            "SIP/2.0/UDP 1.2.3.256:7",
            "SIP/2.0/ h",
            "SIP/2.0/UDP",
            " SIP/2.0/UDP h",
        ];
        let params = [
            "",
            ";branch=z9hG4bK-0123456789abcdef-1a",
            ";branch=z9hG4bK-1;rport",
            ";rport;branch=z9hG4bK1;received=127.0.0.1",
            ";branch=z9hG4bK1;rport=5060;received=[2001:db8::9]",
            ";BRANCH=a;branch=b",
            ";branch=",
            ";branch",
            ";branch=\"q\"",
            ";x=\"a;b\";branch=z9hG4bK1",
            "; branch=z9hG4bK1",
            ";branch =z9hG4bK1",
            ";branch= z9hG4bK1",
            ";branch=z9hG4bK1 ",
            ";branch=z9hG4bK1;",
            ";;branch=z9hG4bK1",
            ";received=300.1.1.1",
            ";rport=70000",
            ";ttl=256",
            ";maddr=bad host",
            ";maddr=1.2.3.4;ttl=3",
            ";x=a:b[c]",
            ";branch=z9:hG",
            ",SIP/2.0/UDP g",
            "x",
        ];
        for h in heads {
            for p in params {
                if check_plain(&format!("{h}{p}")) {
                    answered += 1;
                }
            }
        }
        assert!(answered > 30, "{answered}");
        for s in [
            "SIP/2.0/UDP 127.0.0.1:5002;branch=z9hG4bK-0123456789abcdef-1",
            "SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK-1;rport=5060;received=127.0.0.1",
        ] {
            assert!(check_plain(s), "{s}");
        }
    }

    proptest::proptest! {
        /// The same on any text of Via-like pieces.
        #[test]
        fn a_plain_via_is_read_as_the_general_parse_reads_it_on_any_text(
            s in "[A-Za-z0-9]{0,4}/[0-9.]{0,4}/[A-Za-z]{0,4}[ \t]{0,2}[a-z0-9.:\\[\\]-]{0,16}(;[a-zA-Z]{0,7}(=[a-zA-Z0-9.:\"\\[\\] -]{0,10})?){0,4}[ ,;]{0,1}"
        ) {
            check_plain(&s);
        }
    }

    /// `parse_port` reads the digits as `str::parse` did: the same port, the same errors.
    #[test]
    fn a_port_is_read_as_str_parse_reads_it() {
        let reference = |s: &str| -> Result<(u16, usize), ParseError> {
            let mut c = Cursor::new(s);
            let d = c.digits();
            if d.is_empty() {
                return Err(c.err("port"));
            }
            if d.len() > 5 {
                return Err(ParseError::new(
                    ErrorKind::Overflow("port"),
                    c.pos - d.len(),
                ));
            }
            let v: u32 = d.parse().map_err(|_| c.err("port"))?;
            let p = u16::try_from(v)
                .map_err(|_| ParseError::new(ErrorKind::Overflow("port"), c.pos - d.len()))?;
            Ok((p, c.pos))
        };
        for s in [
            "",
            "0",
            "5060",
            "05060",
            "65535",
            "65536",
            "99999",
            "123456",
            "00000",
            "1;x",
            "x",
            "7 ",
            "4294967296",
        ] {
            let mut c = Cursor::new(s);
            assert_eq!(
                parse_port(&mut c).map(|p| (p, c.pos)),
                reference(s),
                "{s:?}"
            );
        }
    }

    proptest::proptest! {
        /// The sent-by read without the parameters is the parse's wherever the parse accepts
        /// the value, and the branch noted while checking the parameters is the first one.
        #[test]
        fn sent_by_and_branch_are_the_parse(
            s in proptest::string::string_regex(
                " ?SIP ?/ ?2\\.0 ?/ ?(UDP|tls|X) ?(h\\.example\\.com|10\\.0\\.0\\.[0-9]{1,3}|\\[::1\\]|[a-z:.0-9]{0,6})( ?: ?[0-9]{0,6})? ?(;[ a-zA-Z0-9=.]{0,10}){0,3}[ ,x]?"
            ).unwrap(),
        ) {
            if let Ok(v) = Via::parse(&s) {
                proptest::prop_assert_eq!(Via::sent_by_of(&s), Some((v.host(), v.port())));
                proptest::prop_assert_eq!(v.branch(), v.params().get("branch").flatten());
            }
        }
    }

    #[test]
    fn sent_by_needs_what_the_parse_needs_before_the_parameters() {
        let v = "SIP/2.0/UDP 10.0.0.1:5060 ;branch=z9hG4bK1;Branch=z9hG4bK2";
        assert_eq!(Via::parse(v).unwrap().branch(), Some("z9hG4bK1"));
        assert!(Via::sent_by_of(v).is_some());
        for bad in [
            "SIP/2.0/UDP",
            "SIP/2.0/UDP 10.0.0.1:x",
            "SIP/2.0/UDP a b",
            "SIP/2.0/UDP a:99999",
        ] {
            assert!(Via::sent_by_of(bad).is_none(), "{bad}");
            assert!(Via::parse(bad).is_err(), "{bad}");
        }
    }
}

#[cfg(test)]
mod head_tests {
    use super::{TypedHeader, Via, ViaHead};

    /// The parse of `value` as [`Via::spans_in`] keeps it (what a written top Via keeps).
    fn parsed(value: &str) -> Option<String> {
        let v = <Via<'_> as TypedHeader<'_>>::parse(value).ok()?;
        v.spans_in(value).map(|s| format!("{s:?}"))
    }

    const TRANSPORTS: &[&str] = &["UDP", "TCP", "TLS", "WS", "x-t", "U DP", "", "UDP/"];
    const SENT_BY: &[&str] = &[
        "127.0.0.1:5060",
        "127.0.0.1",
        "pcscf.ims.example.org:5060",
        "pcscf.ims.example.org",
        "[2001:db8::1]:5060",
        "[2001:db8::1]",
        "10.0.0.1:99999",
        "10.0.0.1:",
        "host;x",
        "",
        "a b",
        "1.2.3.4.5",
        "-bad.example.org",
    ];
    const PARAMS: &[&str] = &[
        ";branch=z9hG4bK-0123456789abcdef-1",
        ";rport",
        ";received=192.0.2.1",
        ";received=bad",
        ";ttl=300",
        ";ttl=3",
        ";maddr=239.0.0.1",
        ";BRANCH=z9hG4bKx",
        ";branch=\"quoted\"",
        ";branch=",
        "; branch=a",
        ";x",
        ";",
        "x",
        ":5061",
        "5",
        ".org",
        ",SIP/2.0/UDP h",
        " ;branch=a",
        "",
    ];

    proptest::proptest! {
        /// A value written as a front then parameters is kept as the parse keeps it: where
        /// `spans_of` answers it answers the parse's spans, and it answers for every value
        /// the one-pass parse reads (so only the odd ones are left to the parse).
        #[test]
        fn a_head_and_params_read_as_the_parse_reads_them(
            t in 0usize..8,
            b in 0usize..13,
            params in proptest::collection::vec(0usize..20, 0..4),
        ) {
            let Some(head) = ViaHead::new(TRANSPORTS[t], SENT_BY[b]) else {
                // no head: the front alone is not a plain Via
                let front = format!("SIP/2.0/{} {}", TRANSPORTS[t], SENT_BY[b]);
                let plain = super::plain_via(&front);
                proptest::prop_assert!(plain.is_none_or(|v| !v.params().as_str().is_empty()));
                return Ok(());
            };
            let mut value = head.as_str().to_owned();
            for p in params {
                value.push_str(PARAMS[p]);
            }
            let fast = head.spans_of(&value).map(|s| format!("{s:?}"));
            if fast.is_some() {
                proptest::prop_assert_eq!(&fast, &parsed(&value), "{}", value);
            }
            let rest = &value[head.as_str().len()..];
            let separate = rest.is_empty() || rest.starts_with(';');
            if separate && super::plain_via(&value).is_some() && parsed(&value).is_some() {
                proptest::prop_assert!(fast.is_some(), "{}", value);
            }
        }
    }

    #[test]
    fn the_fronts_elements_write_are_heads() {
        for (t, b) in [
            ("UDP", "127.0.0.1:5060"),
            ("TLS", "[2001:db8::1]:5061"),
            ("TCP", "p.example.org"),
        ] {
            let h = ViaHead::new(t, b).expect(b);
            assert_eq!(h.as_str(), format!("SIP/2.0/{t} {b}"));
            let v = format!("{};branch=z9hG4bK-1;rport", h.as_str());
            assert!(h.spans_of(&v).is_some());
            assert_eq!(h.spans_of(&v).map(|s| format!("{s:?}")), parsed(&v));
            // another front is not read as this one
            assert!(h
                .spans_of("SIP/2.0/UDP 192.0.2.9;branch=z9hG4bK-1")
                .is_none());
        }
        assert!(ViaHead::new("UDP", "h;branch=z9hG4bK-1").is_none());
    }
}

#[cfg(test)]
mod param_tests {
    use super::via_param_ok;

    /// `via_param_ok` as it was (a `str::parse` for the digits, `is_token` for a branch): the
    /// oracle of the test below.
    fn old(n: &str, value: Option<&str>) -> bool {
        let digits = |v: &str, max: u32, len: usize| {
            !v.is_empty()
                && v.len() <= len
                && v.bytes().all(|b| b.is_ascii_digit())
                && v.parse::<u32>().is_ok_and(|x| x <= max)
        };
        match n.len() {
            6 if n.eq_ignore_ascii_case("branch") => {
                value.is_some_and(|v| crate::scan::is_token(v.as_bytes()))
            }
            8 if n.eq_ignore_ascii_case("received") => {
                value.is_some_and(|v| super::parse_received(v).is_some())
            }
            5 if n.eq_ignore_ascii_case("rport") => value.is_none_or(|v| digits(v, 65535, 5)),
            3 if n.eq_ignore_ascii_case("ttl") => value.is_some_and(|v| digits(v, 255, 3)),
            5 if n.eq_ignore_ascii_case("maddr") => {
                value.is_some_and(|v| crate::uri::Host::parse(v).is_ok())
            }
            _ => true,
        }
    }

    proptest::proptest! {
        /// The checks with the value's token-ness told (as `plain_params` tells it) and the
        /// digits folded are the old ones.
        #[test]
        fn via_params_are_checked_as_before(
            n in proptest::sample::select(vec!["branch", "BRANCH", "rport", "ttl", "received", "maddr", "x", "branc"]),
            v in proptest::option::of(proptest::string::string_regex("[0-9a-zA-Z.:;\\[\\]\\-\"%~ ]{0,8}").unwrap()),
        ) {
            let v = v.as_deref();
            proptest::prop_assert_eq!(via_param_ok(n, v), old(n, v));
            let token = v.is_some_and(|v| crate::scan::is_token(v.as_bytes()));
            proptest::prop_assert_eq!(super::via_param_ok_with(n, v, || token), old(n, v));
        }
    }

    #[test]
    fn port_and_ttl_limits_are_kept() {
        for (v, rport, ttl) in [
            ("0", true, true),
            ("255", true, true),
            ("256", true, false),
            ("65535", true, false),
            ("65536", false, false),
            ("99999", false, false),
            ("000001", false, false),
            ("", false, false),
        ] {
            assert_eq!(via_param_ok("rport", Some(v)), rport, "{v}");
            assert_eq!(via_param_ok("ttl", Some(v)), ttl, "{v}");
            assert_eq!(old("rport", Some(v)), rport, "{v}");
        }
    }
}
