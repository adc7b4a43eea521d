//! Registrar bindings (RFC 3261 §10.3, RFC 5626 §6, RFC 5627, TS 24.229 §5.4.1): applying a
//! REGISTER's contacts to the bindings of an address-of-record, sans-IO.
//!
//! Time is seconds since the Unix epoch, passed by the caller, so bindings can be stored
//! outside the process (Redis) and survive a restart.

use ims_sip::headers::{CSeq, CallId, Contact};
use ims_sip::{HeaderName, Message, Uri};

/// Registrar policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistrarConfig {
    /// Shortest accepted registration interval; shorter non-zero ones get 423 with Min-Expires.
    pub min_expires: u32,
    /// Longest granted interval; longer requests are shortened to it.
    pub max_expires: u32,
    /// Interval when the request names none (RFC 3261 §10.3 step 7 leaves it to the registrar).
    pub default_expires: u32,
    /// Most bindings one address-of-record may hold.
    pub max_contacts: usize,
}

impl Default for RegistrarConfig {
    fn default() -> Self {
        RegistrarConfig {
            min_expires: 60,
            max_expires: 600_000,
            default_expires: 3600,
            max_contacts: 10,
        }
    }
}

/// One contact bound to an address-of-record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    /// The contact URI, as the UE wrote it.
    pub uri: String,
    /// The contact-params other than `expires`, as written (each starting with `;`), kept so the
    /// 200 OK and reg event echo them (feature tags such as `+g.3gpp.smsip`).
    pub params: String,
    /// `+sip.instance` (RFC 5626), unquoted.
    pub instance_id: Option<String>,
    /// `reg-id` (RFC 5626).
    pub reg_id: Option<u32>,
    /// Call-ID of the REGISTER that last refreshed it.
    pub call_id: String,
    /// CSeq of that REGISTER.
    pub cseq: u32,
    /// When it expires (seconds since the Unix epoch).
    pub expires_at: u64,
    /// The Path header values of that REGISTER, top first (RFC 3327): the route to the UE.
    pub path: Vec<String>,
    /// `q` in thousandths.
    pub q: Option<u16>,
}

impl Binding {
    /// Seconds left at `now` (0 once expired).
    pub fn remaining(&self, now: u64) -> u64 {
        self.expires_at.saturating_sub(now)
    }

    /// The Contact value for a 200 OK or a reg event: `<uri>;params;expires=N`.
    pub fn contact_value(&self, now: u64) -> String {
        format!(
            "<{}>{};expires={}",
            self.uri,
            self.params,
            self.remaining(now)
        )
    }

    fn same_contact(&self, uri: &str, instance: Option<&str>, reg_id: Option<u32>) -> bool {
        // RFC 5626 §6: with an instance-id and a reg-id, the pair identifies the flow; RFC 5627:
        // an instance-id alone identifies the device; otherwise compare URIs (RFC 3261 §10.3).
        match (instance, self.instance_id.as_deref()) {
            (Some(i), Some(mine)) => return i == mine && reg_id == self.reg_id,
            (Some(_), None) | (None, Some(_)) => {}
            (None, None) => {}
        }
        match (Uri::parse(uri), Uri::parse(&self.uri)) {
            (Ok(a), Ok(b)) => a.equivalent(&b),
            _ => uri == self.uri,
        }
    }
}

/// Why a REGISTER is refused, with the status to answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RegisterError {
    /// 400: malformed (Contact `*` with other contacts or a non-zero Expires; missing Call-ID or
    /// CSeq; an unparsable Contact).
    #[error("400 Bad Request: {0}")]
    BadRequest(&'static str),
    /// 423 Interval Too Brief; answer with `Min-Expires: min`.
    #[error("423 Interval Too Brief (Min-Expires {min})")]
    IntervalTooBrief {
        /// The value for the Min-Expires header.
        min: u32,
    },
    /// 500: the request is older than the binding (same Call-ID, CSeq not higher; RFC 3261 §10.3
    /// step 6).
    #[error("500 Server Internal Error: out-of-order REGISTER")]
    OutOfOrder,
    /// 403: more contacts than the registrar allows.
    #[error("403 Forbidden: too many contacts")]
    TooManyContacts,
}

impl RegisterError {
    /// The SIP status code to answer.
    pub fn status(&self) -> u16 {
        match self {
            RegisterError::BadRequest(_) => 400,
            RegisterError::IntervalTooBrief { .. } => 423,
            RegisterError::OutOfOrder => 500,
            RegisterError::TooManyContacts => 403,
        }
    }
}

/// What a REGISTER did to the bindings.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Outcome {
    /// Contacts bound for the first time.
    pub added: Vec<Binding>,
    /// Contacts whose binding was refreshed.
    pub refreshed: Vec<Binding>,
    /// Contacts removed (expires 0 or `*`).
    pub removed: Vec<Binding>,
    /// The AOR had no live binding before this request (an initial registration for the HSS:
    /// SAR REGISTRATION rather than RE_REGISTRATION).
    pub was_unregistered: bool,
}

impl Outcome {
    /// True when the request was a query (no Contact).
    pub fn is_query(&self) -> bool {
        self.added.is_empty() && self.refreshed.is_empty() && self.removed.is_empty()
    }
}

/// Drops the bindings that expired at `now`, returning them.
pub fn expire(bindings: &mut Vec<Binding>, now: u64) -> Vec<Binding> {
    let mut gone = Vec::new();
    bindings.retain(|b| {
        if b.expires_at <= now {
            gone.push(b.clone());
            false
        } else {
            true
        }
    });
    gone
}

/// Applies `register` to `bindings` (the AOR's current bindings) at `now`, as RFC 3261 §10.3
/// steps 6–8 say. On error the bindings are unchanged.
pub fn apply(
    bindings: &mut Vec<Binding>,
    register: &Message<'_>,
    now: u64,
    cfg: &RegistrarConfig,
) -> Result<Outcome, RegisterError> {
    expire(bindings, now);
    let was_unregistered = bindings.is_empty();
    let call_id = register
        .get::<CallId>()
        .ok()
        .flatten()
        .ok_or(RegisterError::BadRequest("missing or invalid Call-ID"))?
        .0
        .to_string();
    let cseq = register
        .get::<CSeq>()
        .ok()
        .flatten()
        .ok_or(RegisterError::BadRequest("missing or invalid CSeq"))?
        .seq;
    let header_expires = match register.header(HeaderName::Expires) {
        None => None,
        Some(v) => Some(
            v.trim()
                .parse::<u64>()
                .map(|n| u32::try_from(n).unwrap_or(u32::MAX))
                .map_err(|_| RegisterError::BadRequest("invalid Expires"))?,
        ),
    };
    let contacts: Vec<Contact<'_>> = register
        .contacts()
        .collect::<Result<_, _>>()
        .map_err(|_| RegisterError::BadRequest("invalid Contact"))?;
    let path: Vec<String> = register
        .list(HeaderName::Path)
        .map(|(_, v)| v.to_string())
        .collect();

    let mut out = Outcome {
        was_unregistered,
        ..Outcome::default()
    };
    if contacts.is_empty() {
        return Ok(out);
    }
    if contacts.iter().any(|c| matches!(c, Contact::Star)) {
        // step 6: `*` must be alone and come with Expires: 0
        if contacts.len() != 1 || header_expires != Some(0) {
            return Err(RegisterError::BadRequest(
                "Contact * needs Expires: 0 and no other Contact",
            ));
        }
        if bindings
            .iter()
            .any(|b| b.call_id == call_id && cseq <= b.cseq)
        {
            return Err(RegisterError::OutOfOrder);
        }
        out.removed = std::mem::take(bindings);
        return Ok(out);
    }

    // work on a copy so an error leaves the bindings as they were
    let mut next = bindings.clone();
    for c in &contacts {
        let Contact::Addr(a) = c else { continue };
        let uri = a.uri().as_str().to_string();
        let instance = c.instance().map(|s| s.into_owned());
        let reg_id = c.reg_id();
        let requested = c
            .expires()
            .or(header_expires)
            .unwrap_or(cfg.default_expires);
        if requested != 0 && requested < cfg.min_expires {
            return Err(RegisterError::IntervalTooBrief {
                min: cfg.min_expires,
            });
        }
        let granted = requested.min(cfg.max_expires);
        let params = strip_expires(a.params.as_str());
        let existing = next
            .iter()
            .position(|b| b.same_contact(&uri, instance.as_deref(), reg_id));
        if let Some(i) = existing {
            let b = &next[i];
            if b.call_id == call_id && cseq <= b.cseq {
                return Err(RegisterError::OutOfOrder);
            }
            if granted == 0 {
                out.removed.push(next.remove(i));
                continue;
            }
        } else if granted == 0 {
            continue;
        }
        let nb = Binding {
            uri,
            params,
            instance_id: instance,
            reg_id,
            call_id: call_id.clone(),
            cseq,
            expires_at: now + u64::from(granted),
            path: path.clone(),
            q: c.q(),
        };
        match existing {
            Some(i) => {
                next[i] = nb.clone();
                out.refreshed.push(nb);
            }
            None => {
                next.push(nb.clone());
                out.added.push(nb);
            }
        }
    }
    if next.len() > cfg.max_contacts {
        return Err(RegisterError::TooManyContacts);
    }
    *bindings = next;
    Ok(out)
}

/// The contact-params without `expires` (the registrar writes its own).
fn strip_expires(params: &str) -> String {
    let mut out = String::with_capacity(params.len());
    for p in split_params(params) {
        let name = p.split('=').next().unwrap_or("").trim();
        if !name.eq_ignore_ascii_case("expires") {
            out.push(';');
            out.push_str(p.trim());
        }
    }
    out
}

/// Splits `;a=1;b="x;y"` on the semicolons outside quotes.
fn split_params(s: &str) -> impl Iterator<Item = &str> {
    let mut parts = Vec::new();
    let mut start = 0;
    let mut quoted = false;
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            ';' if !quoted => {
                parts.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&s[start..]);
    parts.into_iter().filter(|p| !p.trim().is_empty())
}

/// The public GRUU of a device (RFC 5627 §3.1): the AOR with a `gr` parameter carrying the
/// instance-id's URN (`<urn:uuid:…>` → `urn:uuid:…`).
pub fn pub_gruu(aor: &str, instance_id: &str) -> String {
    let urn = instance_id.trim_start_matches('<').trim_end_matches('>');
    format!("{aor};gr={urn}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn register(call_id: &str, cseq: u32, extra: &str) -> Vec<u8> {
        format!(
            "REGISTER sip:ims.example.org SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK-{cseq}\r\n\
Max-Forwards: 70\r\nFrom: <sip:alice@ims.example.org>;tag=1\r\nTo: <sip:alice@ims.example.org>\r\n\
Call-ID: {call_id}\r\nCSeq: {cseq} REGISTER\r\n{extra}Content-Length: 0\r\n\r\n"
        )
        .into_bytes()
    }

    fn run(b: &mut Vec<Binding>, raw: &[u8], now: u64) -> Result<Outcome, RegisterError> {
        let m = ims_sip::parse_datagram(raw).unwrap();
        apply(b, &m, now, &RegistrarConfig::default())
    }

    const UE: &str = "Contact: <sip:alice@10.0.0.1:5060>;+sip.instance=\"<urn:gsma:imei:35209900-176148-0>\";reg-id=1;+g.3gpp.smsip;expires=600000\r\nPath: <sip:term@pcscf.ims.example.org;lr>\r\n";

    #[test]
    fn register_refresh_deregister() {
        let mut b = Vec::new();
        let o = run(&mut b, &register("c1", 1, UE), 1000).unwrap();
        assert!(o.was_unregistered);
        assert_eq!(o.added.len(), 1);
        assert_eq!(b[0].expires_at, 601_000);
        assert_eq!(b[0].reg_id, Some(1));
        assert_eq!(b[0].path, ["<sip:term@pcscf.ims.example.org;lr>"]);
        assert_eq!(
            b[0].contact_value(1000),
            "<sip:alice@10.0.0.1:5060>;+sip.instance=\"<urn:gsma:imei:35209900-176148-0>\";reg-id=1;+g.3gpp.smsip;expires=600000"
        );
        // refresh from a new port (same instance and reg-id replaces the flow)
        let moved = UE.replace("10.0.0.1:5060", "10.0.0.1:6000");
        let o = run(&mut b, &register("c1", 2, &moved), 2000).unwrap();
        assert!(!o.was_unregistered);
        assert_eq!((o.added.len(), o.refreshed.len()), (0, 1));
        assert_eq!(b.len(), 1);
        assert_eq!(b[0].uri, "sip:alice@10.0.0.1:6000");
        // a retransmitted or reordered older request is refused and changes nothing
        assert_eq!(
            run(&mut b, &register("c1", 2, &moved), 2001),
            Err(RegisterError::OutOfOrder)
        );
        // de-register with expires=0
        let gone = moved.replace("expires=600000", "expires=0");
        let o = run(&mut b, &register("c1", 3, &gone), 3000).unwrap();
        assert_eq!(o.removed.len(), 1);
        assert!(b.is_empty());
    }

    #[test]
    fn star_interval_and_query() {
        let mut b = Vec::new();
        run(
            &mut b,
            &register("c1", 1, "Contact: <sip:a@h1>\r\nExpires: 300\r\n"),
            0,
        )
        .unwrap();
        run(
            &mut b,
            &register("c2", 1, "Contact: <sip:a@h2>;expires=400\r\n"),
            0,
        )
        .unwrap();
        assert_eq!(b.len(), 2);
        assert_eq!(b[0].expires_at, 300);
        assert_eq!(b[1].expires_at, 400);
        // query: no contact, nothing changes
        assert!(run(&mut b, &register("c3", 1, ""), 10).unwrap().is_query());
        assert_eq!(
            run(
                &mut b,
                &register("c3", 2, "Contact: <sip:a@h3>;expires=30\r\n"),
                10
            ),
            Err(RegisterError::IntervalTooBrief { min: 60 })
        );
        assert_eq!(
            run(
                &mut b,
                &register("c3", 3, "Contact: *\r\nExpires: 10\r\n"),
                10
            )
            .unwrap_err()
            .status(),
            400
        );
        let o = run(
            &mut b,
            &register("c3", 4, "Contact: *\r\nExpires: 0\r\n"),
            10,
        )
        .unwrap();
        assert_eq!(o.removed.len(), 2);
        assert!(b.is_empty());
    }

    #[test]
    fn expiry_and_limits() {
        let mut b = Vec::new();
        run(
            &mut b,
            &register("c1", 1, "Contact: <sip:a@h1>;expires=100\r\n"),
            0,
        )
        .unwrap();
        assert!(expire(&mut b, 99).is_empty());
        assert_eq!(expire(&mut b, 100).len(), 1);
        let many: String = (0..11)
            .map(|i| format!("Contact: <sip:a@h{i}>\r\n"))
            .collect();
        assert_eq!(
            run(&mut b, &register("c9", 1, &many), 0),
            Err(RegisterError::TooManyContacts)
        );
        assert!(b.is_empty());
        // URI equivalence (RFC 3261 §19.1.4): host case does not make a second binding
        run(
            &mut b,
            &register("x", 1, "Contact: <sip:a@Host.example>\r\n"),
            0,
        )
        .unwrap();
        run(
            &mut b,
            &register("y", 1, "Contact: <sip:a@host.EXAMPLE>\r\n"),
            0,
        )
        .unwrap();
        assert_eq!(b.len(), 1);
    }

    #[test]
    fn gruu_and_params() {
        assert_eq!(
            pub_gruu(
                "sip:alice@example.com",
                "<urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6>"
            ),
            "sip:alice@example.com;gr=urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6"
        );
        assert_eq!(
            strip_expires(";a=\"x;expires=1\";Expires=5;b"),
            ";a=\"x;expires=1\";b"
        );
    }
}
