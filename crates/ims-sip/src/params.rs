//! Parameter lists: `;name=value` pairs after a URI, a Via, a name-addr or a media type.
//!
//! A [`Params`] is a validated view over the raw text; iterating re-tokenizes it lazily and never
//! allocates. Names compare case-insensitively (RFC 3261 §7.3.1).

use crate::error::ParseError;
use crate::scan::{is_lws, unquote, Cursor, PARAMCHAR, TOKEN};
use std::borrow::Cow;
use std::fmt;

/// One parameter: a name and an optional value, both exactly as written (a quoted value keeps its
/// quotes; a URI parameter keeps its `%` escapes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Param<'a> {
    /// The parameter name as written.
    pub name: &'a str,
    /// The value as written, `None` for a flag parameter such as `lr` or `rport`.
    pub value: Option<&'a str>,
}

impl<'a> Param<'a> {
    /// The value with surrounding quotes removed and quoted-pairs resolved.
    pub fn text(&self) -> Option<Cow<'a, str>> {
        self.value.map(unquote)
    }
}

/// A validated list of parameters (header `generic-param`s or URI `uri-parameter`s).
#[derive(Clone, Copy, Default, PartialEq, Eq)]
pub struct Params<'a> {
    raw: &'a str,
    uri: bool,
}

impl fmt::Debug for Params<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl fmt::Display for Params<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.raw)
    }
}

impl<'a> Params<'a> {
    /// An empty list.
    pub const EMPTY: Params<'static> = Params {
        raw: "",
        uri: false,
    };

    /// Header parameters already validated by [`Params::parse_header_with`], from their raw text
    /// (a cached parse rebuilt from its offsets).
    pub(crate) fn header_raw(raw: &'a str) -> Params<'a> {
        Params { raw, uri: false }
    }
    /// True for URI parameters (`uri-parameter` grammar), false for header parameters.
    pub(crate) fn is_uri(&self) -> bool {
        self.uri
    }
    /// The raw text, starting at the first `;` (empty when there are none).
    pub fn as_str(&self) -> &'a str {
        self.raw
    }
    /// True when there are no parameters.
    pub fn is_empty(&self) -> bool {
        self.raw.is_empty()
    }
    /// Iterates the parameters in order.
    pub fn iter(&self) -> ParamIter<'a> {
        ParamIter {
            s: self.raw,
            pos: 0,
        }
    }
    /// The first parameter called `name` (case-insensitive): `Some(None)` for a flag,
    /// `Some(Some(v))` for a value, `None` when absent.
    pub fn get(&self, name: &str) -> Option<Option<&'a str>> {
        self.iter()
            .find(|p| p.name.eq_ignore_ascii_case(name))
            .map(|p| p.value)
    }
    /// The value of `name`, unquoted; `None` when absent or a flag.
    pub fn value(&self, name: &str) -> Option<Cow<'a, str>> {
        self.get(name).flatten().map(unquote)
    }
    /// True when a parameter called `name` is present (with or without a value).
    pub fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }
    /// Number of parameters.
    pub fn len(&self) -> usize {
        self.iter().count()
    }
    /// Whether these are URI parameters (no LWS, `%` escapes) rather than header parameters.
    pub fn is_uri_params(&self) -> bool {
        self.uri
    }

    pub(crate) fn from_raw(raw: &'a str, uri: bool) -> Self {
        Params { raw, uri }
    }

    /// Parses `*( SEMI generic-param )` at the cursor (RFC 3261 §25.1): `token [EQUAL gen-value]`,
    /// `gen-value = token / host / quoted-string`. Stops before anything that is not `;`.
    pub(crate) fn parse_header(cur: &mut Cursor<'a>) -> Result<Params<'a>, ParseError> {
        Self::parse_header_with(cur, |_, _| true)
    }

    /// [`Params::parse_header`] that also hands each `(name, value)` to `check`; a `false` from it
    /// fails the parse at that parameter (used for Via and Contact params with a value grammar).
    #[inline]
    pub(crate) fn parse_header_with(
        cur: &mut Cursor<'a>,
        mut check: impl FnMut(&'a str, Option<&'a str>) -> bool,
    ) -> Result<Params<'a>, ParseError> {
        let start_probe = {
            let mut c = *cur;
            c.skip_lws();
            c.pos
        };
        let mut end = cur.pos;
        let mut any = false;
        while cur.sep(b';') {
            any = true;
            let at = cur.pos;
            let name = cur.token("parameter name")?;
            let mut value = None;
            if cur.sep(b'=') {
                if cur.peek() == Some(b'"') {
                    value = Some(cur.quoted_string()?);
                } else {
                    let v = cur.take_class(&GEN_VALUE);
                    if v.is_empty() {
                        return Err(cur.err("parameter value"));
                    }
                    value = Some(v);
                }
            }
            if !check(name, value) {
                return Err(ParseError::syntax("parameter value", at));
            }
            end = cur.pos;
        }
        if !any {
            return Ok(Params {
                raw: "",
                uri: false,
            });
        }
        Ok(Params {
            raw: &cur.s[start_probe..end],
            uri: false,
        })
    }

    /// Parses `*( ";" uri-parameter )` (RFC 3261 §19.1.1): `pname [ "=" pvalue ]` over paramchar.
    pub(crate) fn parse_uri(cur: &mut Cursor<'a>) -> Result<Params<'a>, ParseError> {
        let start = cur.pos;
        while cur.eat(b';') {
            let n = cur.take_class(&PARAMCHAR);
            if n.is_empty() {
                return Err(cur.err("uri-parameter name"));
            }
            if let Some(p) = crate::scan::check_escapes(n.as_bytes()) {
                return Err(ParseError::syntax("escaped", cur.pos - n.len() + p));
            }
            if cur.eat(b'=') {
                let v = cur.take_class(&PARAMCHAR);
                if v.is_empty() {
                    return Err(cur.err("uri-parameter value"));
                }
                if let Some(p) = crate::scan::check_escapes(v.as_bytes()) {
                    return Err(ParseError::syntax("escaped", cur.pos - v.len() + p));
                }
            }
        }
        Ok(Params {
            raw: &cur.s[start..cur.pos],
            uri: true,
        })
    }
}

// gen-value = token / host / quoted-string; host adds ':' '[' ']' for IPv6.
crate::scan::byte_table!(GEN_VALUE, |c: u8| TOKEN[c as usize]
    || matches!(c, b':' | b'[' | b']'));

impl<'a> IntoIterator for Params<'a> {
    type Item = Param<'a>;
    type IntoIter = ParamIter<'a>;
    fn into_iter(self) -> ParamIter<'a> {
        self.iter()
    }
}

/// Iterator over a [`Params`].
#[derive(Clone)]
pub struct ParamIter<'a> {
    s: &'a str,
    pos: usize,
}

impl<'a> Iterator for ParamIter<'a> {
    type Item = Param<'a>;
    fn next(&mut self) -> Option<Param<'a>> {
        let b = self.s.as_bytes();
        // skip LWS and the ';'
        while self.pos < b.len() && (is_lws(b[self.pos]) || b[self.pos] == b';') {
            if b[self.pos] == b';' {
                self.pos += 1;
                break;
            }
            self.pos += 1;
        }
        while self.pos < b.len() && is_lws(b[self.pos]) {
            self.pos += 1;
        }
        if self.pos >= b.len() {
            return None;
        }
        let ns = self.pos;
        while self.pos < b.len() && !matches!(b[self.pos], b'=' | b';') && !is_lws(b[self.pos]) {
            self.pos += 1;
        }
        let name = &self.s[ns..self.pos];
        while self.pos < b.len() && is_lws(b[self.pos]) {
            self.pos += 1;
        }
        let mut value = None;
        if self.pos < b.len() && b[self.pos] == b'=' {
            self.pos += 1;
            while self.pos < b.len() && is_lws(b[self.pos]) {
                self.pos += 1;
            }
            let vs = self.pos;
            if b.get(vs) == Some(&b'"') {
                let mut c = Cursor { s: self.s, pos: vs };
                // validated at construction, so this succeeds
                let q = c.quoted_string().map(|q| q.len()).unwrap_or(b.len() - vs);
                self.pos = vs + q;
            } else {
                while self.pos < b.len() && b[self.pos] != b';' && !is_lws(b[self.pos]) {
                    self.pos += 1;
                }
            }
            value = Some(&self.s[vs..self.pos]);
        }
        Some(Param { name, value })
    }
}
