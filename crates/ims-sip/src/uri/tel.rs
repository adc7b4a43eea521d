//! `tel:` URIs (RFC 3966): global and local numbers, visual separators, phone-context, isub, ext.

use super::params_agree;
use crate::error::ParseError;
use crate::params::Params;
use crate::scan::Cursor;
use std::fmt;

/// A `tel:` URI, borrowing its text.
///
/// ```
/// use ims_sip::TelUri;
/// let t = TelUri::parse("tel:+1-201-555-0123;ext=1234").unwrap();
/// assert!(t.is_global());
/// assert_eq!(t.digits(), "+12015550123");
/// assert_eq!(t.ext(), Some("1234"));
/// let local = TelUri::parse("tel:7042;phone-context=example.com").unwrap();
/// assert_eq!(local.phone_context(), Some("example.com"));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TelUri<'a> {
    raw: &'a str,
    number: &'a str,
    params: Params<'a>,
}

const fn is_visual(c: u8) -> bool {
    matches!(c, b'-' | b'.' | b'(' | b')')
}

impl<'a> TelUri<'a> {
    /// Parses a complete `tel:` URI.
    pub fn parse(s: &'a str) -> Result<TelUri<'a>, ParseError> {
        let b = s.as_bytes();
        if b.len() < 4 || !b[..4].eq_ignore_ascii_case(b"tel:") {
            return Err(ParseError::syntax("\"tel:\"", 0));
        }
        let end = crate::scan::find(&b[4..], b';').map_or(b.len(), |i| i + 4);
        let number = &s[4..end];
        let nb = number.as_bytes();
        let global = nb.first() == Some(&b'+');
        if global {
            // "+" *phonedigit DIGIT *phonedigit
            if !nb[1..].iter().all(|&c| c.is_ascii_digit() || is_visual(c))
                || !nb[1..].iter().any(|c| c.is_ascii_digit())
            {
                return Err(ParseError::syntax("global-number-digits", 4));
            }
        } else if nb.is_empty()
            || !nb
                .iter()
                .all(|&c| c.is_ascii_hexdigit() || c == b'*' || c == b'#' || is_visual(c))
            || !nb
                .iter()
                .any(|&c| c.is_ascii_hexdigit() || c == b'*' || c == b'#')
        {
            return Err(ParseError::syntax("local-number-digits", 4));
        }
        let mut cur = Cursor { s, pos: end };
        let params = Params::parse_uri(&mut cur)?;
        if !cur.at_end() {
            return Err(cur.err("end of tel URI"));
        }
        for p in params.iter() {
            // pname = 1*( alphanum / "-" )
            if !p
                .name
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-')
            {
                return Err(ParseError::syntax("tel parameter name", end));
            }
            if p.name.eq_ignore_ascii_case("ext") {
                let ok = p.value.is_some_and(|v| {
                    !v.is_empty() && v.bytes().all(|c| c.is_ascii_digit() || is_visual(c))
                });
                if !ok {
                    return Err(ParseError::syntax("extension", end));
                }
            }
        }
        let t = TelUri {
            raw: s,
            number,
            params,
        };
        if !global && t.phone_context().is_none() {
            return Err(ParseError::syntax("phone-context for a local number", end));
        }
        Ok(t)
    }
    /// The URI as written.
    pub fn as_str(&self) -> &'a str {
        self.raw
    }
    /// The number as written, visual separators included.
    pub fn number(&self) -> &'a str {
        self.number
    }
    /// True for a global number (`+` E.164).
    pub fn is_global(&self) -> bool {
        self.number.starts_with('+')
    }
    /// The number without visual separators (`+1-201-555-0123` → `+12015550123`).
    pub fn digits(&self) -> String {
        self.number
            .bytes()
            .filter(|&c| !is_visual(c))
            .map(char::from)
            .collect()
    }
    /// All parameters.
    pub fn params(&self) -> Params<'a> {
        self.params
    }
    /// `phone-context` (a domain name or global number digits).
    pub fn phone_context(&self) -> Option<&'a str> {
        self.params.get("phone-context").flatten()
    }
    /// `ext`.
    pub fn ext(&self) -> Option<&'a str> {
        self.params.get("ext").flatten()
    }
    /// `isub` (ISDN subaddress).
    pub fn isub(&self) -> Option<&'a str> {
        self.params.get("isub").flatten()
    }
    /// RFC 3966 §4: same kind, same digits (ignoring separators, case-insensitive hex), and the same
    /// parameter set.
    pub fn equivalent(&self, o: &TelUri<'_>) -> bool {
        let strip = |s: &str| -> Vec<u8> {
            s.bytes()
                .filter(|&c| !is_visual(c))
                .map(|c| c.to_ascii_lowercase())
                .collect()
        };
        if strip(self.number) != strip(o.number) || self.params.len() != o.params.len() {
            return false;
        }
        let names_in = |a: Params<'_>, b: Params<'_>| a.iter().all(|p| b.contains(p.name));
        names_in(self.params, o.params)
            && names_in(o.params, self.params)
            && params_agree(self.params, o.params)
            && params_agree(o.params, self.params)
    }
}

impl fmt::Display for TelUri<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.raw)
    }
}
