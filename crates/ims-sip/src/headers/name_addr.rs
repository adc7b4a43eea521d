//! name-addr / addr-spec headers: From, To, Contact, Route, Record-Route, Path, Service-Route,
//! P-Asserted-Identity, P-Preferred-Identity, P-Associated-URI, P-Called-Party-ID, P-Served-User,
//! Refer-To, Referred-By, Reply-To.

use super::{whole, TypedHeader};
use crate::error::ParseError;
use crate::params::Params;
use crate::scan::{unquote, Cursor, TOKEN};
use crate::uri::Uri;
use crate::HeaderName;
use std::borrow::Cow;
use std::fmt;

/// `name-addr / addr-spec` (RFC 3261 §25.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NameAddr<'a> {
    display_name: Option<&'a str>,
    uri: Uri<'a>,
    angle: bool,
}

impl<'a> NameAddr<'a> {
    /// The display name as written (quoted or a run of tokens).
    pub fn display_name_raw(&self) -> Option<&'a str> {
        self.display_name
    }
    /// The display name with quotes removed and quoted-pairs resolved.
    pub fn display_name(&self) -> Option<Cow<'a, str>> {
        self.display_name.map(unquote)
    }
    /// The URI.
    pub fn uri(&self) -> Uri<'a> {
        self.uri
    }
    /// True when the URI was written in `<...>` (name-addr form). Without brackets, `;` parameters
    /// after the URI are header parameters, never URI parameters (RFC 3261 §20).
    pub fn is_name_addr(&self) -> bool {
        self.angle
    }

    /// Parses a name-addr or addr-spec at the cursor.
    pub(crate) fn parse_at(
        c: &mut Cursor<'a>,
        allow_addr_spec: bool,
    ) -> Result<NameAddr<'a>, ParseError> {
        let (display_name, at, angle) = Self::split_at(c, allow_addr_spec)?;
        let uri = Uri::parse(&c.s[at..c.pos - usize::from(angle)]).map_err(|e| ParseError {
            offset: e.offset + at,
            ..e
        })?;
        Ok(NameAddr {
            display_name,
            uri,
            angle,
        })
    }

    /// The syntax of a name-addr or addr-spec at the cursor but its URI's: the display name, the
    /// offset of the URI text, and whether it is in `<>`. The cursor ends after the `>` or the
    /// addr-spec; the URI text is `c.s[offset..c.pos - 1]` in brackets, `c.s[offset..c.pos]`
    /// otherwise.
    fn split_at(
        c: &mut Cursor<'a>,
        allow_addr_spec: bool,
    ) -> Result<(Option<&'a str>, usize, bool), ParseError> {
        c.skip_lws();
        let mut display_name = None;
        match c.peek() {
            Some(b'"') => {
                display_name = Some(c.quoted_string()?);
                c.skip_lws();
                if c.peek() != Some(b'<') {
                    return Err(c.err("'<' after display-name"));
                }
            }
            Some(b'<') => {}
            _ => {
                // *(token LWS) followed by '<' is a display name; anything else is an addr-spec
                let save = c.pos;
                let mut last_end = save;
                loop {
                    let t = c.take_class(&TOKEN);
                    if t.is_empty() {
                        break;
                    }
                    last_end = c.pos;
                    c.skip_lws();
                }
                if c.peek() == Some(b'<') && last_end > save {
                    display_name = Some(&c.s[save..last_end]);
                } else {
                    c.pos = save;
                }
            }
        }
        if c.eat(b'<') {
            let start = c.pos;
            let close = crate::scan::find(&c.bytes()[start..], b'>').ok_or(c.err("'>'"))?;
            c.pos = start + close + 1;
            return Ok((display_name, start, true));
        }
        if !allow_addr_spec {
            return Err(c.err("'<'"));
        }
        // addr-spec: the URI ends at ';' (header params) or LWS; it may not contain ',', ';' or '?'
        let start = c.pos;
        let b = c.bytes();
        let mut e = start;
        while e < b.len() && !matches!(b[e], b';' | b',' | b' ' | b'\t' | b'\r' | b'\n') {
            e += 1;
        }
        let text = &c.s[start..e];
        if text.is_empty() {
            return Err(c.err("addr-spec"));
        }
        if let Some(q) = text.find('?') {
            return Err(ParseError::syntax(
                "name-addr (a URI with '?' must be in <>)",
                start + q,
            ));
        }
        c.pos = e;
        Ok((None, start, false))
    }
}

impl fmt::Display for NameAddr<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(d) = self.display_name {
            write!(f, "{d} ")?;
        }
        if self.angle {
            write!(f, "<{}>", self.uri)
        } else {
            write!(f, "{}", self.uri)
        }
    }
}

/// A name-addr or addr-spec followed by header parameters: the shape of From, To, Route, Path and
/// the P-*-Identity headers.
///
/// ```
/// use ims_sip::headers::NameAddrHeader;
/// let f = NameAddrHeader::parse("\"Alice\" <sip:alice@atlanta.example.com>;tag=1928301774").unwrap();
/// assert_eq!(f.display_name().as_deref(), Some("Alice"));
/// assert_eq!(f.tag(), Some("1928301774"));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NameAddrHeader<'a> {
    /// The address.
    pub addr: NameAddr<'a>,
    /// The header parameters after it.
    pub params: Params<'a>,
}

impl<'a> NameAddrHeader<'a> {
    /// Parses `( name-addr / addr-spec ) *( SEMI generic-param )`.
    pub fn parse(s: &'a str) -> Result<Self, ParseError> {
        Self::parse_checked(s, true)
    }
    /// Like [`NameAddrHeader::parse`] but the URI must be in `<>` (Route, Record-Route, Path,
    /// Service-Route: `rec-route = name-addr *( SEMI rr-param )`).
    pub fn parse_name_addr_only(s: &'a str) -> Result<Self, ParseError> {
        Self::parse_checked(s, false)
    }
    /// Both forms; a `tag` parameter must have a token value (`tag-param = "tag" EQUAL token`,
    /// RFC 3261 §25.1).
    fn parse_checked(s: &'a str, allow_addr_spec: bool) -> Result<Self, ParseError> {
        whole(s, |c| {
            let addr = NameAddr::parse_at(c, allow_addr_spec)?;
            let params = Params::parse_header_with(c, |n, v| {
                !(n.len() == 3 && n.eq_ignore_ascii_case("tag"))
                    || v.is_some_and(|t| crate::scan::is_token(t.as_bytes()))
            })?;
            Ok(NameAddrHeader { addr, params })
        })
    }
    /// The `tag` parameter of a From or To value `s`, read as [`NameAddrHeader::parse`] reads it
    /// but without parsing the URI (a scan for its end): for every `s` that `parse` accepts,
    /// `Ok(parse(s)?.tag())`; a fault before or after the URI is `parse`'s error, a fault inside
    /// the URI is not looked for.
    ///
    /// ```
    /// use ims_sip::headers::NameAddrHeader;
    /// let to = "\"Bob\" <sip:bob@biloxi.example.com>;tag=a6c85cf";
    /// assert_eq!(NameAddrHeader::parse_tag(to), Ok(Some("a6c85cf")));
    /// assert_eq!(NameAddrHeader::parse_tag("<sip:bob@biloxi.example.com>"), Ok(None));
    /// ```
    pub fn parse_tag(s: &'a str) -> Result<Option<&'a str>, ParseError> {
        whole(s, |c| {
            NameAddr::split_at(c, true)?;
            let mut tag = None;
            Params::parse_header_with(c, |n, v| {
                if n.len() == 3 && n.eq_ignore_ascii_case("tag") {
                    if tag.is_none() {
                        tag = Some(v);
                    }
                    v.is_some_and(|t| crate::scan::is_token(t.as_bytes()))
                } else {
                    true
                }
            })?;
            Ok(tag.flatten())
        })
    }
    /// Appends exactly what `Display` writes (`to_string()`), without the formatting machinery
    /// (a proxy renders the Route it pops for each request).
    ///
    /// ```
    /// use ims_sip::headers::NameAddrHeader;
    /// let r = NameAddrHeader::parse("<sip:scscf.example.com;lr> ; orig;x=\"1\"").unwrap();
    /// let mut s = String::new();
    /// r.write_to(&mut s);
    /// assert_eq!(s, r.to_string());
    /// assert_eq!(s, "<sip:scscf.example.com;lr>;orig;x=\"1\"");
    /// ```
    pub fn write_to(&self, out: &mut String) {
        let a = &self.addr;
        if let Some(d) = a.display_name {
            out.push_str(d);
            out.push(' ');
        }
        if a.angle {
            out.push('<');
            out.push_str(a.uri.as_str());
            out.push('>');
        } else {
            out.push_str(a.uri.as_str());
        }
        for p in self.params.iter() {
            out.push(';');
            out.push_str(p.name);
            if let Some(v) = p.value {
                out.push('=');
                out.push_str(v);
            }
        }
    }
    /// The URI.
    pub fn uri(&self) -> Uri<'a> {
        self.addr.uri
    }
    /// The display name, unquoted.
    pub fn display_name(&self) -> Option<Cow<'a, str>> {
        self.addr.display_name()
    }
    /// The `tag` parameter (From/To).
    pub fn tag(&self) -> Option<&'a str> {
        self.params.get("tag").flatten()
    }
}

impl fmt::Display for NameAddrHeader<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.addr)?;
        for p in self.params.iter() {
            write!(f, ";{}", p.name)?;
            if let Some(v) = p.value {
                write!(f, "={v}")?;
            }
        }
        Ok(())
    }
}

macro_rules! name_addr_header {
    ($(#[$doc:meta])* $ty:ident, $name:ident, list = $list:expr, angle_only = $angle:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub struct $ty<'a>(pub NameAddrHeader<'a>);

        impl<'a> core::ops::Deref for $ty<'a> {
            type Target = NameAddrHeader<'a>;
            fn deref(&self) -> &NameAddrHeader<'a> {
                &self.0
            }
        }

        impl<'a> TypedHeader<'a> for $ty<'a> {
            const NAME: HeaderName = HeaderName::$name;
            const LIST: bool = $list;
            fn parse(s: &'a str) -> Result<Self, ParseError> {
                let h = if $angle {
                    NameAddrHeader::parse_name_addr_only(s)?
                } else {
                    NameAddrHeader::parse(s)?
                };
                Ok($ty(h))
            }
        }

        impl fmt::Display for $ty<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }
    };
}

name_addr_header!(
    /// From (RFC 3261 §20.20): the initiator, with its `tag`.
    From, From, list = false, angle_only = false);
name_addr_header!(
    /// To (RFC 3261 §20.39): the target, with its `tag` once a dialog exists.
    To, To, list = false, angle_only = false);
name_addr_header!(
    /// One Route value (RFC 3261 §20.34).
    Route, Route, list = true, angle_only = true);
name_addr_header!(
    /// One Record-Route value (RFC 3261 §20.30).
    RecordRoute, RecordRoute, list = true, angle_only = true);
name_addr_header!(
    /// One Path value (RFC 3327).
    Path, Path, list = true, angle_only = true);
name_addr_header!(
    /// One Service-Route value (RFC 3608).
    ServiceRoute, ServiceRoute, list = true, angle_only = true);
name_addr_header!(
    /// One P-Asserted-Identity value (RFC 3325 §9.1).
    PAssertedIdentity, PAssertedIdentity, list = true, angle_only = false);
name_addr_header!(
    /// One P-Preferred-Identity value (RFC 3325 §9.2).
    PPreferredIdentity, PPreferredIdentity, list = true, angle_only = false);
name_addr_header!(
    /// One P-Associated-URI value (RFC 7315 §4.1).
    PAssociatedUri, PAssociatedUri, list = true, angle_only = true);
name_addr_header!(
    /// P-Called-Party-ID (RFC 7315 §4.2).
    PCalledPartyId, PCalledPartyId, list = false, angle_only = false);
name_addr_header!(
    /// P-Served-User (RFC 5502) with `sescase` and `regstate`.
    PServedUser, PServedUser, list = false, angle_only = false);
name_addr_header!(
    /// Refer-To (RFC 3515 §2.1).
    ReferTo, ReferTo, list = false, angle_only = false);
name_addr_header!(
    /// Referred-By (RFC 3892).
    ReferredBy, ReferredBy, list = false, angle_only = false);
name_addr_header!(
    /// Reply-To (RFC 3261 §20.31).
    ReplyTo, ReplyTo, list = false, angle_only = false);

/// One Contact value (RFC 3261 §20.10): `*` or an address with contact-params.
///
/// ```
/// use ims_sip::headers::{Contact, TypedHeader};
/// let c = Contact::parse("<sip:alice@192.0.2.4>;expires=600;+sip.instance=\"<urn:gsma:imei:35209900-176148-0>\";reg-id=1;+g.3gpp.smsip").unwrap();
/// assert_eq!(c.expires(), Some(600));
/// assert_eq!(c.instance().as_deref(), Some("<urn:gsma:imei:35209900-176148-0>"));
/// assert_eq!(c.reg_id(), Some(1));
/// assert!(c.has_feature("+g.3gpp.smsip"));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Contact<'a> {
    /// `Contact: *` (remove all bindings, REGISTER only).
    Star,
    /// An address with its parameters.
    Addr(NameAddrHeader<'a>),
}

impl<'a> TypedHeader<'a> for Contact<'a> {
    const NAME: HeaderName = HeaderName::Contact;
    const LIST: bool = true;
    fn parse(s: &'a str) -> Result<Self, ParseError> {
        if s.trim_matches(|c: char| c.is_ascii_whitespace()) == "*" {
            return Ok(Contact::Star);
        }
        let h = whole(s, |c| {
            let addr = NameAddr::parse_at(c, true)?;
            let params = Params::parse_header_with(c, |n, v| match n.len() {
                7 if n.eq_ignore_ascii_case("expires") => {
                    v.is_some_and(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
                }
                1 if n.eq_ignore_ascii_case("q") => v.is_some_and(is_qvalue),
                _ => true,
            })?;
            Ok(NameAddrHeader { addr, params })
        })?;
        Ok(Contact::Addr(h))
    }
}

/// `qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] )`
pub(crate) fn is_qvalue(v: &str) -> bool {
    let b = v.as_bytes();
    match b.first() {
        Some(b'0') => {
            b.len() == 1 || (b[1] == b'.' && b.len() <= 5 && b[2..].iter().all(u8::is_ascii_digit))
        }
        Some(b'1') => {
            b.len() == 1 || (b[1] == b'.' && b.len() <= 5 && b[2..].iter().all(|&c| c == b'0'))
        }
        _ => false,
    }
}

impl<'a> Contact<'a> {
    /// The address, `None` for `*`.
    pub fn addr(&self) -> Option<&NameAddrHeader<'a>> {
        match self {
            Contact::Star => None,
            Contact::Addr(a) => Some(a),
        }
    }
    /// The contact-params (empty for `*`).
    pub fn params(&self) -> Params<'a> {
        self.addr().map(|a| a.params).unwrap_or_default()
    }
    /// The URI, `None` for `*`.
    pub fn uri(&self) -> Option<Uri<'a>> {
        self.addr().map(|a| a.uri())
    }
    /// `expires` in seconds. A value too large for `u32` reads as `u32::MAX` (RFC 3261 §20.19
    /// lets a receiver treat an overlarge value as the maximum).
    pub fn expires(&self) -> Option<u32> {
        self.params()
            .get("expires")
            .flatten()
            .map(|v| v.parse().unwrap_or(u32::MAX))
    }
    /// `q` in thousandths (`q=0.7` is 700).
    pub fn q(&self) -> Option<u16> {
        let v = self.params().get("q").flatten()?;
        let (i, f) = v.split_once('.').unwrap_or((v, ""));
        let mut frac: u16 = 0;
        for (n, c) in f.bytes().chain(std::iter::repeat(b'0')).take(3).enumerate() {
            let _ = n;
            frac = frac * 10 + u16::from(c - b'0');
        }
        Some(i.parse::<u16>().ok()? * 1000 + frac)
    }
    /// `+sip.instance` (RFC 5626), unquoted, e.g. `<urn:uuid:...>`.
    pub fn instance(&self) -> Option<Cow<'a, str>> {
        self.params().value("+sip.instance")
    }
    /// `reg-id` (RFC 5626).
    pub fn reg_id(&self) -> Option<u32> {
        self.params()
            .get("reg-id")
            .flatten()
            .and_then(|v| v.parse().ok())
    }
    /// True when a feature tag (RFC 3840, e.g. `+g.3gpp.smsip`, `audio`) is present.
    pub fn has_feature(&self, tag: &str) -> bool {
        self.params().contains(tag)
    }
    /// The value of a feature tag, unquoted (`+g.3gpp.icsi-ref`).
    pub fn feature(&self, tag: &str) -> Option<Cow<'a, str>> {
        self.params().value(tag)
    }
}

impl fmt::Display for Contact<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Contact::Star => f.write_str("*"),
            Contact::Addr(a) => fmt::Display::fmt(a, f),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::NameAddrHeader;

    #[test]
    fn tags_are_read_as_the_parse_reads_them() {
        for (s, tag) in [
            ("\"A;tag=no\" <sip:a@x;tag=no>;tag=yes", Some("yes")),
            ("Bob Smith <sip:b@x>;x=1;TAG=t2;tag=t3", Some("t2")),
            ("sip:a@x;tag=1928", Some("1928")),
            ("<sip:a@x>", None),
            ("  <tel:+1234;phone-context=x> ; tag = z9 ", Some("z9")),
        ] {
            assert_eq!(NameAddrHeader::parse(s).unwrap().tag(), tag, "{s}");
            assert_eq!(NameAddrHeader::parse_tag(s), Ok(tag), "{s}");
        }
        // faults outside the URI: the same error
        for s in [
            "<sip:a@x>;tag=\"q\"",
            "<sip:a@x>;tag",
            "\"open <sip:a@x>",
            "<sip:a@x",
            "sip:a@x?h=1",
            "<sip:a@x> junk",
            "",
        ] {
            assert_eq!(
                NameAddrHeader::parse_tag(s).unwrap_err(),
                NameAddrHeader::parse(s).unwrap_err(),
                "{s}"
            );
        }
        // a fault in the URI alone is not looked for
        assert!(NameAddrHeader::parse("<sip:@>;tag=1").is_err());
        assert_eq!(NameAddrHeader::parse_tag("<sip:@>;tag=1"), Ok(Some("1")));
    }

    proptest::proptest! {
        /// Whatever the value: where the parse accepts it, the tag is the parse's tag; where the
        /// tag read fails, the parse fails too.
        #[test]
        fn a_tag_read_agrees_with_the_parse(
            s in proptest::string::string_regex(
                "[ \"A-Za-z]{0,6}<?(sip|tel|x)?:?[a-z@.;=+0-9]{0,12}>?[ ;]{0,2}((tag|TAG|x)[ =]{0,2}[a-z0-9\"]{0,4};?){0,3}"
            ).unwrap(),
        ) {
            let full = NameAddrHeader::parse(&s);
            let tag = NameAddrHeader::parse_tag(&s);
            if let Ok(h) = full {
                proptest::prop_assert_eq!(tag, Ok(h.tag()));
            }
            if let Err(e) = tag {
                proptest::prop_assert!(full.is_err(), "{} {:?}", s, e);
            }
        }

        /// `write_to` appends what `Display` writes.
        #[test]
        fn written_as_displayed(
            s in proptest::string::string_regex(
                "[ \"A-Za-z]{0,6}<?(sip|tel|x)?:?[a-z@.;=+0-9]{0,12}>?[ ;]{0,2}((lr|orig|x)[ =]{0,2}[a-z0-9\"]{0,4};?){0,3}"
            ).unwrap(),
        ) {
            if let Ok(h) = NameAddrHeader::parse(&s) {
                let mut out = String::from("x");
                h.write_to(&mut out);
                proptest::prop_assert_eq!(out, format!("x{h}"));
            }
        }
    }
}
