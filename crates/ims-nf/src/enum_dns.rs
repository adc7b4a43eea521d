//! ENUM (RFC 6116): E.164 numbers to SIP URIs through NAPTR records (RFC 3403) — the domain
//! name of a number, the NAPTR regexp rewrite, and a static table the CSCF uses when no DNS
//! is configured.

use ims_net::sip::resolve::Dns;
use regex_lite::RegexBuilder;
use std::collections::HashMap;
use std::sync::Arc;

/// Why a number could not be translated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EnumError {
    /// Not an E.164 number (`+` and 1 to 15 digits, visual separators allowed).
    #[error("not an E.164 number: {0:?}")]
    NotE164(String),
    /// A NAPTR regexp field is not `delim ere delim repl delim [i]`, or its ERE does not compile.
    #[error("invalid NAPTR regexp {0:?}")]
    BadRegexp(String),
    /// No record for the number (the CSCF answers 404 or breaks out to the CS domain).
    #[error("no ENUM record for {0}")]
    NotFound(String),
    /// Non-terminal records chained more than the allowed number of times.
    #[error("ENUM rewrite loop")]
    Loop,
}

/// One NAPTR record (RFC 3403 §4.1) as ENUM uses it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Naptr {
    /// ORDER: lower first.
    pub order: u16,
    /// PREFERENCE: lower first among equal orders.
    pub preference: u16,
    /// FLAGS: `u` for a terminal rule producing a URI, empty for a non-terminal one.
    pub flags: String,
    /// SERVICES, e.g. `E2U+sip`.
    pub services: String,
    /// REGEXP: `!^\+(.*)$!sip:\1@ims.example.org!`.
    pub regexp: String,
    /// REPLACEMENT: the next domain for a non-terminal rule (`.` when unused).
    pub replacement: String,
}

/// The normalised digits of an E.164 number (`+44 7700-900.123` → `447700900123`).
pub fn e164_digits(number: &str) -> Result<String, EnumError> {
    let n = number.trim();
    let rest = n
        .strip_prefix('+')
        .ok_or_else(|| EnumError::NotE164(number.to_string()))?;
    let mut digits = String::with_capacity(15);
    for c in rest.chars() {
        match c {
            '0'..='9' => digits.push(c),
            '-' | '.' | '(' | ')' | ' ' => {}
            _ => return Err(EnumError::NotE164(number.to_string())),
        }
    }
    if digits.is_empty() || digits.len() > 15 {
        return Err(EnumError::NotE164(number.to_string()));
    }
    Ok(digits)
}

/// The ENUM domain of a number (RFC 6116 §2.4): digits reversed, dot-separated, under `apex`
/// (`e164.arpa` for the public tree).
pub fn enum_domain(number: &str, apex: &str) -> Result<String, EnumError> {
    let d = e164_digits(number)?;
    let mut out = String::with_capacity(d.len() * 2 + apex.len());
    for c in d.chars().rev() {
        out.push(c);
        out.push('.');
    }
    out.push_str(apex);
    Ok(out)
}

/// Applies a NAPTR REGEXP field (RFC 3402 §3.2: `delim ere delim repl delim flags`) to the
/// application unique string (for ENUM, `+` and the digits). Returns `None` when the ERE does not
/// match.
pub fn apply_regexp(field: &str, aus: &str) -> Result<Option<String>, EnumError> {
    let bad = || EnumError::BadRegexp(field.to_string());
    let mut chars = field.chars();
    let delim = chars.next().ok_or_else(bad)?;
    if delim.is_ascii_digit() || delim == '\\' || delim == 'i' {
        return Err(bad());
    }
    let body = chars.as_str();
    // split on unescaped delimiters
    let mut parts = Vec::with_capacity(3);
    let mut cur = String::new();
    let mut it = body.chars();
    while let Some(c) = it.next() {
        if c == '\\' {
            match it.next() {
                Some(n) if n == delim => cur.push(n),
                Some(n) => {
                    cur.push('\\');
                    cur.push(n);
                }
                None => return Err(bad()),
            }
        } else if c == delim {
            parts.push(std::mem::take(&mut cur));
        } else {
            cur.push(c);
        }
    }
    if parts.len() != 2 {
        return Err(bad());
    }
    let flags = cur;
    let case_insensitive = match flags.as_str() {
        "" => false,
        "i" => true,
        _ => return Err(bad()),
    };
    let re = RegexBuilder::new(&parts[0])
        .case_insensitive(case_insensitive)
        .size_limit(64 * 1024)
        .nest_limit(32)
        .build()
        .map_err(|_| bad())?;
    let Some(caps) = re.captures(aus) else {
        return Ok(None);
    };
    // replacement: \1..\9 back-references, \\ a backslash; anything else literal
    let mut out = String::new();
    let mut r = parts[1].chars();
    while let Some(c) = r.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match r.next() {
            Some(d @ '1'..='9') => {
                let i = d as usize - '0' as usize;
                out.push_str(caps.get(i).map_or("", |m| m.as_str()));
            }
            Some(o) => out.push(o),
            None => return Err(bad()),
        }
    }
    Ok(Some(out))
}

/// The most non-terminal rewrites followed for one number (RFC 6116 §2.5 leaves the bound to
/// the client; RFC 3402 §4 asks for loop protection).
pub const MAX_REWRITES: usize = 5;

/// What one domain's records say (RFC 3402 §3, RFC 6116 §2.5).
enum Step {
    /// A terminal `u` record of an accepted service matched: the URI.
    Uri(String),
    /// No terminal record matched; look up NAPTR again at this domain.
    Next(String),
    /// Nothing usable.
    None,
}

/// Picks from `recs` in ORDER/PREFERENCE order: the first terminal (`u`) record of an accepted
/// service whose regexp matches `aus`, else the first non-terminal (empty flags) record's
/// REPLACEMENT. Records of lower priority ORDER are only considered when no record of a better
/// ORDER produced a URI (RFC 3403 §4.1 lets a client move on when it cannot use a record).
fn step(recs: &[Naptr], aus: &str, services: &[&str]) -> Result<Step, EnumError> {
    let mut usable: Vec<&Naptr> = recs
        .iter()
        .filter(|n| {
            (n.flags.is_empty() && !n.replacement.is_empty() && n.replacement != ".")
                || (n.flags.eq_ignore_ascii_case("u") && is_e2u(&n.services, services))
        })
        .collect();
    usable.sort_by_key(|n| (n.order, n.preference));
    let mut next = None;
    for n in usable {
        if n.flags.is_empty() {
            if next.is_none() {
                next = Some(n.replacement.clone());
            }
        } else if let Some(uri) = apply_regexp(&n.regexp, aus)? {
            return Ok(Step::Uri(uri));
        }
    }
    Ok(next.map_or(Step::None, Step::Next))
}

/// A static ENUM zone: NAPTR records by domain, resolved like DNS would; optionally backed by
/// a real DNS ([`EnumTable::set_dns`]) consulted through [`EnumTable::lookup`] for numbers
/// the table does not know.
#[derive(Clone, Default)]
pub struct EnumTable {
    apex: String,
    records: HashMap<String, Vec<Naptr>>,
    /// Records that apply to every number without one of its own (a catch-all rule such as
    /// "every +1555 number lives on this IMS domain" is written as a regexp here).
    default: Vec<Naptr>,
    dns: Option<Arc<dyn Dns>>,
}

impl std::fmt::Debug for EnumTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnumTable")
            .field("apex", &self.apex)
            .field("records", &self.records)
            .field("default", &self.default)
            .field("dns", &self.dns.is_some())
            .finish()
    }
}

impl EnumTable {
    /// An empty table under `apex` (usually `e164.arpa`).
    pub fn new(apex: impl Into<String>) -> EnumTable {
        EnumTable {
            apex: apex.into(),
            ..EnumTable::default()
        }
    }

    /// Adds a record for the domain of `number`.
    pub fn insert(&mut self, number: &str, naptr: Naptr) -> Result<(), EnumError> {
        let d = enum_domain(number, &self.apex)?;
        self.records.entry(d).or_default().push(naptr);
        Ok(())
    }

    /// Adds a terminal `E2U+sip` record mapping `number` to `uri`.
    pub fn insert_uri(&mut self, number: &str, uri: &str) -> Result<(), EnumError> {
        let escaped = uri.replace('\\', "\\\\").replace('!', "\\!");
        self.insert(
            number,
            Naptr {
                order: 10,
                preference: 10,
                flags: "u".into(),
                services: "E2U+sip".into(),
                regexp: format!("!^.*$!{escaped}!"),
                replacement: ".".into(),
            },
        )
    }

    /// Adds a catch-all record consulted for numbers with no record of their own.
    pub fn insert_default(&mut self, naptr: Naptr) {
        self.default.push(naptr);
    }

    /// Sends the numbers the table has no record for (and no catch-all matches) to DNS: NAPTR
    /// queries for their domain under this table's apex ([`resolve_dns`]).
    pub fn set_dns(&mut self, dns: Arc<dyn Dns>) {
        self.dns = Some(dns);
    }

    /// Resolves `number` to a SIP URI from the table only: the `E2U+sip` records of its domain
    /// in ORDER/PREFERENCE order, following non-terminal records at most [`MAX_REWRITES`] times
    /// (RFC 6116 §2.5).
    pub fn resolve(&self, number: &str) -> Result<String, EnumError> {
        let digits = e164_digits(number)?;
        let aus = format!("+{digits}");
        let mut domain = enum_domain(number, &self.apex)?;
        for _ in 0..MAX_REWRITES {
            let recs = match self.records.get(&domain) {
                Some(r) => r,
                None if domain.ends_with(&self.apex) => &self.default,
                None => return Err(EnumError::NotFound(aus)),
            };
            match step(recs, &aus, SIP)? {
                Step::Uri(u) => return Ok(u),
                Step::Next(d) => domain = d,
                Step::None => return Err(EnumError::NotFound(aus)),
            }
        }
        Err(EnumError::Loop)
    }

    /// Resolves `number`: from its own records in the table; else, when a DNS is set, from DNS
    /// ([`resolve_dns`] with `E2U+sip`); else (or when DNS has no answer) from the catch-all
    /// records.
    pub async fn lookup(&self, number: &str) -> Result<String, EnumError> {
        let Some(dns) = &self.dns else {
            return self.resolve(number);
        };
        if self.records.contains_key(&enum_domain(number, &self.apex)?) {
            return self.resolve(number);
        }
        match resolve_dns(&**dns, number, &self.apex, SIP).await {
            Err(EnumError::NotFound(_)) => self.resolve(number),
            r => r,
        }
    }
}

/// The `E2U+sip` service (RFC 3764).
pub const SIP: &[&str] = &["sip"];
/// The `E2U+sip` and `E2U+tel` services (RFC 3764, RFC 3966 `tel:` URIs).
pub const SIP_OR_TEL: &[&str] = &["sip", "tel"];

/// ENUM over DNS (RFC 6116 §2.4, §2.5, §3): queries NAPTR for the domain of `number` under
/// `apex` (`e164.arpa`), keeps terminal `u` records whose service is `E2U+<t>` for a `t` in
/// `services` (`sip`, `tel`; subtypes like `E2U+sip:x` accepted) and applies their REGEXP to
/// `+<digits>` in ORDER/PREFERENCE order; a non-terminal record (empty flags) sends the next
/// query to its REPLACEMENT, at most [`MAX_REWRITES`] times.
pub async fn resolve_dns(
    dns: &dyn Dns,
    number: &str,
    apex: &str,
    services: &[&str],
) -> Result<String, EnumError> {
    let digits = e164_digits(number)?;
    let aus = format!("+{digits}");
    let mut domain = enum_domain(number, apex)?;
    for _ in 0..MAX_REWRITES {
        let recs: Vec<Naptr> = dns
            .naptr(&domain)
            .await
            .into_iter()
            .map(|n| Naptr {
                order: n.order,
                preference: n.preference,
                flags: n.flags,
                services: n.services,
                regexp: n.regexp,
                replacement: n.replacement,
            })
            .collect();
        match step(&recs, &aus, services)? {
            Step::Uri(u) => return Ok(u),
            Step::Next(d) => domain = d,
            Step::None => return Err(EnumError::NotFound(aus)),
        }
    }
    Err(EnumError::Loop)
}

/// `E2U+<t>` (RFC 6116 §3.4.3) for a `t` in `types`, case-insensitively, with or without a
/// subtype (`E2U+sip:x`).
fn is_e2u(services: &str, types: &[&str]) -> bool {
    let lower = services.to_ascii_lowercase();
    lower.strip_prefix("e2u+").is_some_and(|t| {
        let t = t.split(':').next().unwrap_or(t);
        types.iter().any(|w| w.eq_ignore_ascii_case(t))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc6116_domain_and_rewrite() {
        // RFC 6116 §2.4 example: +442079460148
        assert_eq!(
            enum_domain("+44 20 7946 0148", "e164.arpa").unwrap(),
            "8.4.1.0.6.4.9.7.0.2.4.4.e164.arpa"
        );
        // RFC 6116 §2.5 / RFC 3403: "!^.*$!sip:info@example.com!"
        assert_eq!(
            apply_regexp("!^.*$!sip:info@example.com!", "+442079460148").unwrap(),
            Some("sip:info@example.com".into())
        );
        assert_eq!(
            apply_regexp(r"!^\+(.*)$!sip:\1@ims.example.org;user=phone!", "+15550001").unwrap(),
            Some("sip:15550001@ims.example.org;user=phone".into())
        );
        assert_eq!(
            apply_regexp(r"/^\+1(.*)$/sip:\1@US.example/i", "+15550001").unwrap(),
            Some("sip:5550001@US.example".into())
        );
        assert_eq!(apply_regexp("!^\\+9!x!", "+15550001").unwrap(), None);
        assert!(apply_regexp("!^(!x!", "+1").is_err());
        assert!(apply_regexp("!a!b", "+1").is_err());
        assert!(e164_digits("15550001").is_err());
        assert!(e164_digits("+1234567890123456").is_err());
    }

    #[test]
    fn table_resolution_order_default_and_chain() {
        let mut t = EnumTable::new("e164.arpa");
        t.insert_uri("+15550001", "sip:+15550001@ims.example.org;user=phone")
            .unwrap();
        t.insert(
            "+15550002",
            Naptr {
                order: 100,
                preference: 10,
                flags: "u".into(),
                services: "E2U+sip".into(),
                regexp: "!^.*$!sip:second@x!".into(),
                replacement: ".".into(),
            },
        )
        .unwrap();
        t.insert(
            "+15550002",
            Naptr {
                order: 10,
                preference: 10,
                flags: "u".into(),
                services: "E2U+sip".into(),
                regexp: "!^.*$!sip:first@x!".into(),
                replacement: ".".into(),
            },
        )
        .unwrap();
        t.insert_default(Naptr {
            order: 10,
            preference: 10,
            flags: "u".into(),
            services: "E2U+sip".into(),
            regexp: r"!^(\+1555.*)$!sip:\1@ims.example.org;user=phone!".into(),
            replacement: ".".into(),
        });
        assert_eq!(
            t.resolve("+15550001").unwrap(),
            "sip:+15550001@ims.example.org;user=phone"
        );
        assert_eq!(t.resolve("+15550002").unwrap(), "sip:first@x");
        assert_eq!(
            t.resolve("+15559999").unwrap(),
            "sip:+15559999@ims.example.org;user=phone"
        );
        assert!(matches!(t.resolve("+4420"), Err(EnumError::NotFound(_))));
        // a non-terminal record pointing at itself is cut after 5 rewrites
        let d = enum_domain("+4420", "e164.arpa").unwrap();
        t.insert(
            "+4420",
            Naptr {
                order: 1,
                preference: 1,
                flags: String::new(),
                services: "E2U+sip".into(),
                regexp: String::new(),
                replacement: d,
            },
        )
        .unwrap();
        assert_eq!(t.resolve("+4420"), Err(EnumError::Loop));
    }
}
