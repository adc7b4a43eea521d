//! The registration event package body (RFC 3680 §5, `application/reginfo+xml`): what the S-CSCF
//! NOTIFYs to the UE and the P-CSCF on every registration change (TS 24.229 §5.4.2.1.2), and what
//! they parse to learn of a network de-registration.

use crate::keyed_hash::{KeyedMap, KeyedSet, KeyedState};
use crate::registrar::Binding;
use crate::scscf::RegEvent;
use crate::scscf::{built_response, own_message};
use crate::store::RegistrationRecord;
use crate::xml::{escape, Element, XmlError, XmlLimits};
use ims_sip::{HeaderName, Message, OwnedMessage};

/// `<reginfo>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegInfo {
    /// `version`: incremented by one for every NOTIFY of a subscription.
    pub version: u32,
    /// `state`: `full` or `partial`.
    pub full: bool,
    /// `<registration>` elements.
    pub registrations: Vec<Registration>,
}

/// `<registration>`: one address-of-record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    /// `aor`.
    pub aor: String,
    /// `id`.
    pub id: String,
    /// `state`.
    pub state: RegistrationState,
    /// `<contact>` elements.
    pub contacts: Vec<ContactInfo>,
}

/// Registration `state` (RFC 3680 §5.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegistrationState {
    /// `init`: no active contacts yet.
    Init,
    /// `active`: at least one active contact.
    Active,
    /// `terminated`: no longer registered.
    Terminated,
}

/// `<contact>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactInfo {
    /// `id`.
    pub id: String,
    /// `state`: true for `active`, false for `terminated`.
    pub active: bool,
    /// `event` that brought it to this state.
    pub event: ContactEvent,
    /// `expires` (seconds).
    pub expires: Option<u64>,
    /// `<uri>`.
    pub uri: String,
    /// `<display-name>`.
    pub display_name: Option<String>,
    /// `<unknown-param name="…">value</unknown-param>`: contact parameters such as
    /// `+sip.instance` (values as written, quotes included).
    pub unknown_params: Vec<(String, String)>,
}

/// Contact `event` (RFC 3680 §5.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContactEvent {
    /// `registered`.
    Registered,
    /// `created`.
    Created,
    /// `refreshed`.
    Refreshed,
    /// `shortened`.
    Shortened,
    /// `expired`.
    Expired,
    /// `deactivated`: the network asks the UE to re-register.
    Deactivated,
    /// `probation`.
    Probation,
    /// `unregistered`.
    Unregistered,
    /// `rejected`.
    Rejected,
}

impl RegistrationState {
    fn as_str(self) -> &'static str {
        match self {
            RegistrationState::Init => "init",
            RegistrationState::Active => "active",
            RegistrationState::Terminated => "terminated",
        }
    }
}

impl ContactEvent {
    /// The attribute value.
    pub fn as_str(self) -> &'static str {
        match self {
            ContactEvent::Registered => "registered",
            ContactEvent::Created => "created",
            ContactEvent::Refreshed => "refreshed",
            ContactEvent::Shortened => "shortened",
            ContactEvent::Expired => "expired",
            ContactEvent::Deactivated => "deactivated",
            ContactEvent::Probation => "probation",
            ContactEvent::Unregistered => "unregistered",
            ContactEvent::Rejected => "rejected",
        }
    }
    fn parse(s: &str) -> Option<ContactEvent> {
        Some(match s {
            "registered" => ContactEvent::Registered,
            "created" => ContactEvent::Created,
            "refreshed" => ContactEvent::Refreshed,
            "shortened" => ContactEvent::Shortened,
            "expired" => ContactEvent::Expired,
            "deactivated" => ContactEvent::Deactivated,
            "probation" => ContactEvent::Probation,
            "unregistered" => ContactEvent::Unregistered,
            "rejected" => ContactEvent::Rejected,
            _ => return None,
        })
    }
}

fn attr<'e>(el: &'e Element, name: &'static str) -> Result<&'e str, XmlError> {
    el.attr(name).ok_or_else(|| XmlError::Missing {
        parent: el.name.clone(),
        child: name,
    })
}

fn invalid(element: &str, value: &str) -> XmlError {
    XmlError::Value {
        element: element.to_string(),
        value: value.to_string(),
    }
}

impl RegInfo {
    /// The MIME type of the body.
    pub const CONTENT_TYPE: &'static str = "application/reginfo+xml";

    /// Parses a reginfo document.
    ///
    /// A document in the layout [`RegInfo::to_xml`] writes (what an S-CSCF of ours sends on
    /// every registration) is read by a direct scan (`fast::parse`); any other document by
    /// the general XML reader. Both give the same value for any document the scan accepts.
    pub fn parse(doc: &[u8]) -> Result<RegInfo, XmlError> {
        if let Some(r) = fast::parse(doc, &XmlLimits::default()) {
            return Ok(r);
        }
        Self::parse_tree(doc)
    }

    /// [`RegInfo::parse`] through the general XML reader only, never the direct scan: the
    /// oracle the fuzz target holds the scan to.
    #[doc(hidden)]
    pub fn parse_general(doc: &[u8]) -> Result<RegInfo, XmlError> {
        Self::parse_tree(doc)
    }

    /// [`RegInfo::parse`] through the element tree of the general XML reader.
    fn parse_tree(doc: &[u8]) -> Result<RegInfo, XmlError> {
        let root = Element::parse(doc, &XmlLimits::default())?;
        if root.name != "reginfo" {
            return Err(XmlError::Root {
                expected: "reginfo",
                found: root.name,
            });
        }
        let version = attr(&root, "version")?;
        let version = version
            .parse()
            .map_err(|_| invalid("reginfo version", version))?;
        let full = match attr(&root, "state")? {
            "full" => true,
            "partial" => false,
            v => return Err(invalid("reginfo state", v)),
        };
        let mut registrations = Vec::new();
        for r in root.children_named("registration") {
            let state = match attr(r, "state")? {
                "init" => RegistrationState::Init,
                "active" => RegistrationState::Active,
                "terminated" => RegistrationState::Terminated,
                v => return Err(invalid("registration state", v)),
            };
            let mut contacts = Vec::new();
            for c in r.children_named("contact") {
                let active = match attr(c, "state")? {
                    "active" => true,
                    "terminated" => false,
                    v => return Err(invalid("contact state", v)),
                };
                let ev = attr(c, "event")?;
                let expires = match c.attr("expires") {
                    None => None,
                    Some(v) => Some(v.parse().map_err(|_| invalid("contact expires", v))?),
                };
                contacts.push(ContactInfo {
                    id: attr(c, "id")?.to_string(),
                    active,
                    event: ContactEvent::parse(ev).ok_or_else(|| invalid("contact event", ev))?,
                    expires,
                    uri: c.required_text("uri")?.to_string(),
                    display_name: c.child_text("display-name").map(str::to_string),
                    unknown_params: c
                        .children_named("unknown-param")
                        .map(|p| (p.attr("name").unwrap_or("").to_string(), p.text.clone()))
                        .collect(),
                });
            }
            registrations.push(Registration {
                aor: attr(r, "aor")?.to_string(),
                id: attr(r, "id")?.to_string(),
                state,
                contacts,
            });
        }
        Ok(RegInfo {
            version,
            full,
            registrations,
        })
    }

    /// Writes the document.
    pub fn to_xml(&self) -> String {
        // pieces appended, no formatting machinery: one document per NOTIFY
        let mut o = String::with_capacity(256 + 256 * self.registrations.len());
        o.push_str(
            "<?xml version=\"1.0\"?>\r\n<reginfo xmlns=\"urn:ietf:params:xml:ns:reginfo\" version=\"",
        );
        push_dec(&mut o, u64::from(self.version));
        o.push_str("\" state=\"");
        o.push_str(if self.full { "full" } else { "partial" });
        o.push_str("\">\r\n");
        for r in &self.registrations {
            o.push_str("  <registration aor=\"");
            o.push_str(&escape(&r.aor));
            o.push_str("\" id=\"");
            o.push_str(&escape(&r.id));
            o.push_str("\" state=\"");
            o.push_str(r.state.as_str());
            o.push_str("\">\r\n");
            for c in &r.contacts {
                o.push_str("    <contact id=\"");
                o.push_str(&escape(&c.id));
                o.push_str("\" state=\"");
                o.push_str(if c.active { "active" } else { "terminated" });
                o.push_str("\" event=\"");
                o.push_str(c.event.as_str());
                o.push('"');
                if let Some(e) = c.expires {
                    o.push_str(" expires=\"");
                    push_dec(&mut o, e);
                    o.push('"');
                }
                o.push_str(">\r\n      <uri>");
                o.push_str(&escape(&c.uri));
                o.push_str("</uri>\r\n");
                if let Some(d) = &c.display_name {
                    o.push_str("      <display-name>");
                    o.push_str(&escape(d));
                    o.push_str("</display-name>\r\n");
                }
                for (n, v) in &c.unknown_params {
                    o.push_str("      <unknown-param name=\"");
                    o.push_str(&escape(n));
                    o.push_str("\">");
                    o.push_str(&escape(v));
                    o.push_str("</unknown-param>\r\n");
                }
                o.push_str("    </contact>\r\n");
            }
            o.push_str("  </registration>\r\n");
        }
        o.push_str("</reginfo>\r\n");
        o
    }
}

/// Appends `n` in decimal (as `Display` writes it), without the formatting machinery.
fn push_dec(out: &mut String, n: u64) {
    ims_sip::push_decimal(out, n);
}

/// A direct scan of the reginfo documents [`RegInfo::to_xml`] writes: the declaration, then
/// `reginfo` / `registration` / `contact` elements with double-quoted attributes, `uri`,
/// `display-name` and `unknown-param` children, whitespace between tags. It gives up (`None`)
/// on anything else — other elements or markup, a value it would have to read differently from
/// the XML reader (character references, whitespace at the ends of a text, control
/// characters, `<` or `>` in a value), a value [`RegInfo::parse_tree`] refuses, a document
/// past the limits — and [`RegInfo::parse`] then uses the general reader. Whatever it accepts,
/// `parse_tree` reads as the same value (tests: `fast_scan_agrees_with_the_tree`).
mod fast {
    use super::*;
    use std::borrow::Cow;

    /// The scan's position in the document.
    struct Cursor<'a> {
        s: &'a str,
        at: usize,
        elements: usize,
        max_elements: usize,
    }

    /// The most attributes an element may have for the scan.
    const MAX_ATTRS: usize = 8;

    /// An element's attributes: name and raw value (checked by [`until`]), in order.
    struct Attrs<'a> {
        list: [(&'a str, &'a str); MAX_ATTRS],
        len: usize,
    }

    impl<'a> Attrs<'a> {
        fn get(&self, name: &str) -> Option<&'a str> {
            self.list[..self.len]
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| *v)
        }
    }

    /// The five entity references of XML and what they stand for.
    const ENTITIES: [(&str, char); 5] = [
        ("&lt;", '<'),
        ("&gt;", '>'),
        ("&amp;", '&'),
        ("&quot;", '"'),
        ("&apos;", '\''),
    ];

    /// Where the value at the start of `s` ends: at the first `quote` (`b'"'` or `b'<'`), then
    /// that octet (`None`: at the end of `s`). `None` when the value before it holds a control
    /// character, `<` or `>`, or an `&` that does not start one of the five entity references.
    fn until(s: &str, quote: u8) -> Option<(usize, Option<u8>)> {
        let b = s.as_bytes();
        let end = memchr::memchr(quote, b).unwrap_or(b.len());
        let v = &b[..end];
        // no early exit: the check runs over many octets at a time
        let bad = v.iter().fold(false, |bad, &c| {
            bad | (c < 0x20) | (c == 0x7f) | (c == b'<') | (c == b'>')
        });
        if bad {
            return None;
        }
        // every `&` starts one of the five entity references (none holds `"` or `<`, so the
        // end found above is the end of the value)
        let mut at = 0;
        while let Some(i) = memchr::memchr(b'&', &v[at..]) {
            let rest = &s[at + i..end];
            let (e, _) = ENTITIES.iter().find(|(e, _)| rest.starts_with(e))?;
            at += i + e.len();
        }
        Some((end, (end < b.len()).then_some(quote)))
    }

    /// A value [`until`] took, with its entity references replaced.
    fn unescape(raw: &str) -> Cow<'_, str> {
        let Some(first) = raw.find('&') else {
            return Cow::Borrowed(raw);
        };
        let mut out = String::with_capacity(raw.len());
        out.push_str(&raw[..first]);
        let mut rest = &raw[first..];
        while let Some(i) = rest.find('&') {
            out.push_str(&rest[..i]);
            rest = &rest[i..];
            match ENTITIES.iter().find(|(e, _)| rest.starts_with(e)) {
                Some((e, c)) => {
                    out.push(*c);
                    rest = &rest[e.len()..];
                }
                None => {
                    // not after `until`; kept as written
                    out.push('&');
                    rest = &rest[1..];
                }
            }
        }
        out.push_str(rest);
        Cow::Owned(out)
    }

    /// An attribute value as a string of the result.
    fn owned(raw: &str) -> String {
        unescape(raw).into_owned()
    }

    fn is_name_byte(b: u8) -> bool {
        b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.'
    }

    /// An attribute name the scan reads: ASCII letters, digits, `-`, `_`, `.`, starting with a
    /// letter (no namespace prefix).
    fn name_len(s: &str) -> usize {
        match s.bytes().next() {
            Some(b) if b.is_ascii_alphabetic() => {
                s.bytes().take_while(|&b| is_name_byte(b)).count()
            }
            _ => 0,
        }
    }

    impl<'a> Cursor<'a> {
        fn rest(&self) -> &'a str {
            &self.s[self.at..]
        }

        /// Skips XML whitespace (what the reader trims: space, tab, CR, LF).
        fn ws(&mut self) {
            let n = self
                .rest()
                .bytes()
                .take_while(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
                .count();
            self.at += n;
        }

        fn eat(&mut self, lit: &str) -> Option<()> {
            self.rest().starts_with(lit).then(|| self.at += lit.len())
        }

        fn peek(&self, lit: &str) -> bool {
            self.rest().starts_with(lit)
        }

        /// `<name` then ` attr="value"`… then `>`: the attributes (`None` for a repeated name,
        /// a prefixed one, a value [`until`] refuses, more than [`MAX_ATTRS`]).
        fn open(&mut self, name: &str) -> Option<Attrs<'a>> {
            self.eat("<")?;
            self.eat(name)?;
            self.elements += 1;
            if self.elements > self.max_elements {
                return None;
            }
            let mut attrs = Attrs {
                list: [("", ""); MAX_ATTRS],
                len: 0,
            };
            loop {
                if self.eat(">").is_some() {
                    return Some(attrs);
                }
                self.eat(" ")?;
                let rest = self.rest();
                let n = name_len(rest);
                let key = &rest[..n];
                if n == 0 || attrs.len == MAX_ATTRS || attrs.get(key).is_some() {
                    return None;
                }
                self.at += n;
                self.eat("=\"")?;
                let rest = self.rest();
                let (end, Some(b'"')) = until(rest, b'"')? else {
                    return None;
                };
                attrs.list[attrs.len] = (key, &rest[..end]);
                attrs.len += 1;
                self.at += end + 1;
            }
        }

        /// `</name>`, taken whole or not at all (the loops probe for it: a partial match must
        /// leave the cursor where it was).
        fn close(&mut self, name: &str) -> Option<()> {
            let r = self.rest().as_bytes();
            let n = name.len();
            let whole = r.len() > n + 2
                && r.starts_with(b"</")
                && &r[2..2 + n] == name.as_bytes()
                && r[2 + n] == b'>';
            whole.then(|| self.at += n + 3)
        }

        /// The text of an element opened by the caller, then `</name>`: unescaped, `None`
        /// when the reader would trim it.
        fn text(&mut self, name: &str) -> Option<String> {
            let rest = self.rest();
            let (end, Some(b'<')) = until(rest, b'<')? else {
                return None;
            };
            let raw = &rest[..end];
            self.at += end;
            self.close(name)?;
            let t = unescape(raw);
            (t.trim() == t).then(|| t.into_owned())
        }
    }

    /// The document as [`RegInfo::parse_tree`] reads it, when it has the layout of
    /// [`RegInfo::to_xml`] (see the module).
    pub(super) fn parse(doc: &[u8], limits: &XmlLimits) -> Option<RegInfo> {
        if doc.len() > limits.max_size || limits.max_depth < 4 {
            return None;
        }
        let s = std::str::from_utf8(doc).ok()?;
        let mut c = Cursor {
            s,
            at: 0,
            elements: 0,
            max_elements: limits.max_elements,
        };
        if c.eat("<?xml version=\"1.0\"?>").is_some() {
            c.ws();
        }
        let root = c.open("reginfo")?;
        let version = unescape(root.get("version")?).parse().ok()?;
        let full = match &*unescape(root.get("state")?) {
            "full" => true,
            "partial" => false,
            _ => return None,
        };
        let mut registrations = Vec::new();
        loop {
            c.ws();
            if c.close("reginfo").is_some() {
                break;
            }
            let r = c.open("registration")?;
            let state = match &*unescape(r.get("state")?) {
                "init" => RegistrationState::Init,
                "active" => RegistrationState::Active,
                "terminated" => RegistrationState::Terminated,
                _ => return None,
            };
            let mut contacts = Vec::new();
            loop {
                c.ws();
                if c.close("registration").is_some() {
                    break;
                }
                let a = c.open("contact")?;
                let active = match &*unescape(a.get("state")?) {
                    "active" => true,
                    "terminated" => false,
                    _ => return None,
                };
                let event = ContactEvent::parse(&unescape(a.get("event")?))?;
                let expires = match a.get("expires") {
                    None => None,
                    Some(v) => Some(unescape(v).parse().ok()?),
                };
                let id = owned(a.get("id")?);
                c.ws();
                (c.open("uri")?.len == 0).then_some(())?;
                let uri = c.text("uri")?;
                c.ws();
                let mut display_name = None;
                if c.peek("<display-name>") {
                    c.open("display-name")?;
                    display_name = Some(c.text("display-name")?);
                    c.ws();
                }
                let mut unknown_params = Vec::new();
                while c.peek("<unknown-param ") {
                    let p = c.open("unknown-param")?;
                    if p.len != 1 {
                        return None;
                    }
                    let name = owned(p.get("name")?);
                    unknown_params.push((name, c.text("unknown-param")?));
                    c.ws();
                }
                c.close("contact")?;
                contacts.push(ContactInfo {
                    id,
                    active,
                    event,
                    expires,
                    uri,
                    display_name,
                    unknown_params,
                });
            }
            registrations.push(Registration {
                aor: owned(r.get("aor")?),
                id: owned(r.get("id")?),
                state,
                contacts,
            });
        }
        c.ws();
        (c.at == s.len()).then_some(RegInfo {
            version,
            full,
            registrations,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// The notifier (RFC 6665 + RFC 3680 at the S-CSCF, TS 24.229 §5.4.2.1)

/// The longest reg event subscription granted (TS 24.229 §5.1.1.3: the UE asks for 600000 s).
pub const MAX_SUBSCRIPTION: u32 = 600_000;

/// One reg event subscription (a dialog where the S-CSCF is the notifier).
///
/// Kept compact — every registered UE has one (its P-CSCF's, TS 24.229 §5.2.3): the dialog
/// identifiers and the other texts are one shared string (the notifier's indexes point at it),
/// the subscriber's contact URI and its From value around the tag shared by every subscription
/// from that P-CSCF, and what the last NOTIFY told of each contact a small array.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegSubscription {
    /// The texts, each as `<length>:<text>`, one after the other (one allocation): the
    /// Call-ID and the subscriber's tag (together: the dialog key, see [`dialog_key`]), the
    /// IMPU subscribed to (the SUBSCRIBE's Request-URI), our tag (the To tag of the 200), our
    /// URI (the SUBSCRIBE's To URI, our From; empty when it is the IMPU), then the route set
    /// (the SUBSCRIBE's Record-Route values, in order).
    text: std::sync::Arc<str>,
    /// What the subscriber's subscriptions share ([`peer_text`]): its Contact URI (the
    /// NOTIFY's Request-URI) and its From value (our To) without the tag, which `text` holds.
    peer: std::sync::Arc<str>,
    /// Our next CSeq.
    cseq: u32,
    /// The next reginfo `version`.
    version: u32,
    /// When it ends (seconds since the epoch).
    expires_at: u64,
    /// What the last NOTIFY told of each active contact, by contact id (the 32-bit value the
    /// id is the hex of): when it ends (seconds since the epoch). After the first full NOTIFY,
    /// later ones are partial (RFC 3680 §5: `state="partial"`) and carry only the contacts that
    /// are new, refreshed (a new expiry) or terminated.
    notified: smallvec::SmallVec<[(u32, u64); 1]>,
}

/// The key of a dialog: Call-ID and subscriber's tag, each as `<length>:<text>` (unambiguous;
/// the start of a subscription's `text`).
fn dialog_key(call_id: &str, remote_tag: &str) -> String {
    let mut k = String::with_capacity(call_id.len() + remote_tag.len() + 8);
    push_field(&mut k, call_id);
    push_field(&mut k, remote_tag);
    k
}

/// Appends `text` as a field: `<length>:<text>`.
fn push_field(o: &mut String, text: &str) {
    push_dec(o, text.len() as u64);
    o.push(':');
    o.push_str(text);
}

/// The text of the field (`<length>:<text>`) at `at` in `s`, and where the next one starts.
fn field_at(s: &str, at: usize) -> Option<(&str, usize)> {
    let rest = s.get(at..)?;
    // the length by a digit loop (a NOTIFY reads a dozen fields)
    let (n, r) = crate::cscf::field_head(rest)?;
    let text = r.get(..n)?;
    Some((text, at + (rest.len() - r.len()) + n))
}

/// Where the field after the first `n` of `s` starts (`s.len()` when there are fewer).
fn after_fields(s: &str, n: usize) -> usize {
    let mut at = 0;
    for _ in 0..n {
        match field_at(s, at) {
            Some((_, next)) => at = next,
            None => return s.len(),
        }
    }
    at
}

/// The text a subscriber's subscriptions share: its Contact URI `target`, then its From value
/// `from` cut around the tag value `tag` (the part before, the part after: three fields), or
/// the whole From value (two fields) when `tag` does not follow a `tag=` in it. A P-CSCF
/// subscribes for each of its UEs with one Contact and one From URI, so they all share one.
fn peer_text(target: &str, from: &str, tag: &str) -> String {
    let cut = (!tag.is_empty()).then(|| tag_at(from, tag)).flatten();
    let mut t = String::with_capacity(target.len() + from.len() + 12);
    push_field(&mut t, target);
    match cut {
        Some(i) => {
            let (before, after) = (&from[..i], &from[i + tag.len()..]);
            push_field(&mut t, before);
            push_field(&mut t, after);
        }
        None => {
            push_field(&mut t, from);
        }
    }
    t
}

/// Where `tag` (not empty) first stands right after a `tag=` (any case) in `from`: each `=`
/// looked at (memchr) instead of each occurrence of the tag searched for. A tag holding a `=`
/// (never a token) is searched for as [`tag_at_by_search`] does, whose non-overlapping
/// occurrences could then differ.
fn tag_at(from: &str, tag: &str) -> Option<usize> {
    if tag.contains('=') {
        return tag_at_by_search(from, tag);
    }
    let b = from.as_bytes();
    let mut at = 0;
    while let Some(p) = memchr::memchr(b'=', &b[at..]) {
        let i = at + p + 1;
        if i >= 4
            && b[i - 4..i - 1].eq_ignore_ascii_case(b"tag")
            && b[i..].starts_with(tag.as_bytes())
        {
            return Some(i);
        }
        at = i;
    }
    None
}

/// [`tag_at`] by searching for the tag's (non-overlapping) occurrences.
fn tag_at_by_search(from: &str, tag: &str) -> Option<usize> {
    from.match_indices(tag).map(|(i, _)| i).find(|&i| {
        from[..i]
            .get(i.saturating_sub(4)..)
            .is_some_and(|p| p.eq_ignore_ascii_case("tag="))
    })
}

/// The dialog key a subscription's `text` (or a dialog key) starts with.
fn dialog_part(s: &str) -> &str {
    &s[..after_fields(s, 2)]
}

/// The value a contact id of ours (`short_id`: at most 8 hex digits) stands for; `None` for any
/// other id (such a contact is then always reported as changed).
fn contact_key(id: &str) -> Option<u32> {
    (!id.is_empty() && id.len() <= 8 && id.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| u32::from_str_radix(id, 16).ok())
        .flatten()
}

impl RegSubscription {
    /// The fields of `text`, in order.
    fn fields(&self) -> impl Iterator<Item = &str> + '_ {
        let mut at = 0;
        std::iter::from_fn(move || {
            let (t, next) = field_at(&self.text, at)?;
            at = next;
            Some(t)
        })
    }

    fn text_at(&self, i: usize) -> &str {
        self.fields().nth(i).unwrap_or_default()
    }

    /// The route set as kept in `text` (`<length>:<value>` each).
    fn routes_text(&self) -> &str {
        &self.text[after_fields(&self.text, 5)..]
    }

    /// The field `i` of `peer` ([`peer_text`]).
    fn peer_at(&self, i: usize) -> Option<&str> {
        let mut at = 0;
        for _ in 0..i {
            at = field_at(&self.peer, at)?.1;
        }
        field_at(&self.peer, at).map(|(t, _)| t)
    }

    /// The IMPU subscribed to (the SUBSCRIBE's Request-URI).
    pub fn aor(&self) -> &str {
        self.text_at(2)
    }

    /// Call-ID of the dialog.
    pub fn call_id(&self) -> &str {
        self.text_at(0)
    }

    /// The subscriber's tag.
    pub fn remote_tag(&self) -> &str {
        self.text_at(1)
    }

    /// Our tag (the To tag of the 200).
    pub fn local_tag(&self) -> &str {
        self.text_at(3)
    }

    /// The subscriber's From value (with its tag), our To.
    pub fn remote(&self) -> std::borrow::Cow<'_, str> {
        let before = self.peer_at(1).unwrap_or_default();
        match self.peer_at(2) {
            Some(after) => format!("{before}{}{after}", self.remote_tag()).into(),
            None => before.into(),
        }
    }

    /// Our URI (the SUBSCRIBE's To URI), our From.
    pub fn local_uri(&self) -> &str {
        match self.text_at(4) {
            "" => self.aor(),
            u => u,
        }
    }

    /// The subscriber's Contact URI (the NOTIFY's Request-URI).
    pub fn remote_target(&self) -> &str {
        self.peer_at(0).unwrap_or_default()
    }

    /// The route set (the SUBSCRIBE's Record-Route values, in order).
    pub fn route_set(&self) -> impl Iterator<Item = &str> + '_ {
        self.fields().skip(5)
    }

    /// Our next CSeq.
    pub fn cseq(&self) -> u32 {
        self.cseq
    }

    /// When it ends (seconds since the epoch).
    pub fn expires_at(&self) -> u64 {
        self.expires_at
    }

    /// The next reginfo `version`.
    pub fn version(&self) -> u32 {
        self.version
    }
}

/// A NOTIFY to send (without Via: the sending endpoint adds it), and where to send it.
///
/// Two are equal when their fields are, the requests compared by their bytes.
#[derive(Debug, Clone)]
pub struct Notify {
    /// The URI to resolve the next hop from (the first route, else the remote target).
    pub next_hop: String,
    /// The request, read as a message where it was written (nothing to parse before
    /// sending). `Err` when the dialog's texts (its route set,
    /// remote target or tags, from the SUBSCRIBE) make a request the parser refuses: it cannot
    /// be sent, and the subscription ends as for a failed NOTIFY ([`Notifier::remove`]).
    pub request: Result<OwnedMessage, ims_sip::ParseError>,
    /// The subscription's Call-ID and subscriber tag (for [`Notifier::remove`] when the NOTIFY
    /// fails).
    pub dialog: (String, String),
}

impl PartialEq for Notify {
    fn eq(&self, other: &Self) -> bool {
        self.next_hop == other.next_hop
            && self.dialog == other.dialog
            && crate::scscf::same_built(&self.request, &other.request)
    }
}

impl Eq for Notify {}

/// What a SUBSCRIBE gets: the response, and (for a 2xx) the NOTIFY that follows at once.
///
/// Two are equal when their fields are, the responses compared by their bytes.
#[derive(Debug, Clone)]
pub struct SubscribeOutcome {
    /// The status of `response`.
    pub status: u16,
    /// The response, read as a message where it was written (nothing to parse before
    /// sending). A response the parser would not read back (a
    /// header text copied from the SUBSCRIBE that it refuses) is replaced by a 500 (and
    /// `status` is 500, `notify` none).
    pub response: OwnedMessage,
    /// The immediate NOTIFY (RFC 6665 §4.2.1.2) with the full state.
    pub notify: Option<Notify>,
}

impl PartialEq for SubscribeOutcome {
    fn eq(&self, other: &Self) -> bool {
        self.status == other.status
            && self.notify == other.notify
            && self.response.bytes() == other.response.bytes()
    }
}

impl Eq for SubscribeOutcome {}

fn uri_in(value: &str) -> String {
    uri_part(value).to_string()
}

/// The URI in a name-addr (between `<` and `>`) or addr-spec value (before its parameters).
fn uri_part(value: &str) -> &str {
    let v = value.trim();
    match (v.find('<'), v.find('>')) {
        (Some(a), Some(b)) if a < b => &v[a + 1..b],
        _ => v.split(';').next().unwrap_or(v),
    }
}

/// True when the hosts are written the same but for letter case (`Host`'s text compared
/// lowercased), without writing them.
fn same_host(a: &ims_sip::Host<'_>, b: &ims_sip::Host<'_>) -> bool {
    use ims_sip::Host;
    match (a, b) {
        (Host::Domain(x), Host::Domain(y)) | (Host::Ipv6(x), Host::Ipv6(y)) => {
            x.eq_ignore_ascii_case(y)
        }
        (Host::Ipv4(x), Host::Ipv4(y)) => x == y,
        _ => a.to_string().eq_ignore_ascii_case(&b.to_string()),
    }
}

fn short_id(s: &str) -> String {
    let mut h = Fnv::default();
    h.bytes(s.as_bytes());
    h.id()
}

/// FNV-1a over what is written to it: [`short_id`] of a text written in pieces, without the
/// text.
struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv {
    fn bytes(&mut self, b: &[u8]) {
        for &b in b {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }

    /// A stable, attribute-safe id: the low 32 bits in lowercase hex, as `{:x}` writes them.
    fn id(&self) -> String {
        let v = self.0 & 0xffff_ffff;
        let digits = (64 - v.leading_zeros()).div_ceil(4).max(1);
        (0..digits)
            .rev()
            .map(|i| char::from(b"0123456789abcdef"[((v >> (4 * i)) & 15) as usize]))
            .collect()
    }
}

impl std::fmt::Write for Fnv {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.bytes(s.as_bytes());
        Ok(())
    }
}

/// The reginfo id of a binding's contact: [`short_id`] of
/// `format!("{}|{:?}|{:?}", uri, instance_id, reg_id)`, hashed piece by piece (the `Debug`
/// form of a text written directly when it escapes nothing).
fn contact_id(uri: &str, instance_id: Option<&str>, reg_id: Option<u32>) -> String {
    let mut h = Fnv::default();
    h.bytes(uri.as_bytes());
    h.bytes(b"|");
    match instance_id {
        None => h.bytes(b"None"),
        Some(i)
            if i.bytes()
                .all(|b| (b' '..=b'~').contains(&b) && b != b'"' && b != b'\\') =>
        {
            h.bytes(b"Some(\"");
            h.bytes(i.as_bytes());
            h.bytes(b"\")");
        }
        Some(i) => {
            use std::fmt::Write as _;
            let _ = write!(h, "Some({i:?})");
        }
    }
    h.bytes(b"|");
    match reg_id {
        None => h.bytes(b"None"),
        Some(n) => {
            let mut d = String::with_capacity(16);
            d.push_str("Some(");
            push_dec(&mut d, u64::from(n));
            d.push(')');
            h.bytes(d.as_bytes());
        }
    }
    h.id()
}

/// The contact parameters of a binding as reginfo `unknown-param`s (`;+sip.instance="<…>"` →
/// `("+sip.instance", "\"<…>\"")`).
fn unknown_params(params: &str) -> Vec<(String, String)> {
    params
        .split(';')
        .filter(|p| !p.trim().is_empty())
        .map(|p| match p.split_once('=') {
            Some((n, v)) => (n.trim().to_string(), v.trim().to_string()),
            None => (p.trim().to_string(), String::new()),
        })
        .collect()
}

fn contact_info(b: &Binding, active: bool, event: ContactEvent, now: u64) -> ContactInfo {
    ContactInfo {
        id: contact_id(&b.uri, b.instance_id.as_deref(), b.reg_id),
        active,
        event,
        expires: Some(if active { b.remaining(now) } else { 0 }),
        uri: b.uri.clone(),
        display_name: None,
        unknown_params: unknown_params(&b.params),
    }
}

/// The reginfo `<registration>` elements of an implicit registration set after `event` (or,
/// with `None`, the current state of `record`): the current contacts are active (`registered`,
/// `refreshed` or `created`), those the event removed are terminated (`expired`,
/// `unregistered`, `deactivated` or `rejected`).
pub fn registrations(
    record: &RegistrationRecord,
    event: Option<&RegEvent>,
    now: u64,
) -> Vec<Registration> {
    let mut contacts = Vec::new();
    let active_event = match event {
        Some(RegEvent::Registered { initial: true, .. }) | None => ContactEvent::Registered,
        Some(_) => ContactEvent::Refreshed,
    };
    let live_bindings: &[Binding] = match event {
        Some(RegEvent::Deregistered { .. }) | Some(RegEvent::Terminated { .. }) => &[],
        _ => &record.bindings,
    };
    for b in live_bindings {
        contacts.push(contact_info(b, true, active_event, now));
    }
    match event {
        Some(RegEvent::Expired { expired, .. }) => {
            for b in expired {
                contacts.push(contact_info(b, false, ContactEvent::Expired, now));
            }
        }
        Some(RegEvent::Deregistered { record }) => {
            for b in &record.bindings {
                contacts.push(contact_info(b, false, ContactEvent::Unregistered, now));
            }
        }
        Some(RegEvent::Terminated { record, reason }) => {
            let ev = if reason.reregister() {
                ContactEvent::Deactivated
            } else {
                ContactEvent::Rejected
            };
            for b in &record.bindings {
                contacts.push(contact_info(b, false, ev, now));
            }
        }
        _ => {}
    }
    let state = if contacts.iter().any(|c| c.active) {
        RegistrationState::Active
    } else {
        RegistrationState::Terminated
    };
    record
        .implicit_set
        .iter()
        .map(|aor| Registration {
            aor: aor.clone(),
            id: short_id(aor),
            state,
            contacts: contacts.clone(),
        })
        .collect()
}

/// The reg event notifier of an S-CSCF: the subscriptions, the answers to SUBSCRIBE and the
/// NOTIFYs on every registration change. Sans-IO: the caller sends what it returns.
#[derive(Debug, Default)]
pub struct Notifier {
    contact: String,
    subs: Subs,
}

/// The subscriptions by dialog, with an index by IMPU: a registration change (every REGISTER)
/// finds its subscriptions without looking at all of them (a scan cost O(registered users) per
/// REGISTER). The indexes share the dialog key (no copy of it); the IMPU index holds the IMPU's
/// hash and is compared on lookup, so a hash collision only adds a candidate. A second index
/// orders the subscriptions by expiry, so the once-a-second expiry check looks only at those
/// due. The subscribers' contact URIs and From values are interned ([`peer_text`]: one P-CSCF
/// subscribes for all its UEs).
/// A subscription in the dialog table of `Subs`, found by its dialog key.
#[derive(Debug)]
struct SubBox(Box<RegSubscription>);

impl std::borrow::Borrow<str> for SubBox {
    fn borrow(&self) -> &str {
        dialog_part(&self.0.text)
    }
}

impl std::hash::Hash for SubBox {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        // as `str` hashes, so look-ups by `&str` find it (Borrow contract)
        dialog_part(&self.0.text).hash(state);
    }
}

impl PartialEq for SubBox {
    fn eq(&self, other: &SubBox) -> bool {
        dialog_part(&self.0.text) == dialog_part(&other.0.text)
    }
}

impl Eq for SubBox {}

#[derive(Debug, Default)]
struct Subs {
    by_dialog: KeyedSet<SubBox>,
    by_expiry: std::collections::BTreeSet<(u64, std::sync::Arc<str>)>,
    /// The IMPU index: the first subscription to an IMPU (hash) here, any further ones in
    /// `by_aor_more` in the order they came (almost every IMPU has one subscription: its
    /// P-CSCF's, so the common slot holds just one key).
    by_aor: KeyedMap<u64, std::sync::Arc<str>>,
    by_aor_more: KeyedMap<u64, Vec<std::sync::Arc<str>>>,
    /// The texts subscriptions share ([`peer_text`]), one per subscriber.
    peers: KeyedSet<std::sync::Arc<str>>,
    hasher: KeyedState,
}

impl Subs {
    fn aor_hash(&self, aor: &str) -> u64 {
        std::hash::BuildHasher::hash_one(&self.hasher, aor)
    }

    fn len(&self) -> usize {
        self.by_dialog.len()
    }

    fn is_empty(&self) -> bool {
        self.by_dialog.is_empty()
    }

    /// The subscription of a dialog key (or of a subscription's `text`).
    fn get(&self, key: &str) -> Option<&RegSubscription> {
        self.by_dialog.get(dialog_part(key)).map(|b| &*b.0)
    }

    /// The shared copy of a subscriber's [`peer_text`].
    fn peer(&mut self, text: &str) -> std::sync::Arc<str> {
        if let Some(t) = self.peers.get(text) {
            return t.clone();
        }
        let t: std::sync::Arc<str> = text.into();
        self.peers.insert(t.clone());
        t
    }

    fn insert(&mut self, sub: RegSubscription) {
        let key = sub.text.clone();
        self.remove(&key);
        let h = self.aor_hash(sub.aor());
        match self.by_aor.entry(h) {
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert(key.clone());
            }
            std::collections::hash_map::Entry::Occupied(_) => {
                self.by_aor_more.entry(h).or_default().push(key.clone());
            }
        }
        self.by_expiry.insert((sub.expires_at, key.clone()));
        self.by_dialog.insert(SubBox(Box::new(sub)));
    }

    /// Removes the subscription of a dialog key (or of a subscription's `text`).
    fn remove(&mut self, key: &str) -> Option<RegSubscription> {
        let sub = self.by_dialog.take(dialog_part(key))?.0;
        let key = sub.text.clone();
        self.by_expiry.remove(&(sub.expires_at, key.clone()));
        let h = self.aor_hash(sub.aor());
        if self
            .by_aor
            .get(&h)
            .is_some_and(|k| std::sync::Arc::ptr_eq(k, &key))
        {
            // the next one (in the order they came) takes its place
            let next = self
                .by_aor_more
                .get_mut(&h)
                .and_then(|more| (!more.is_empty()).then(|| more.remove(0)));
            if self.by_aor_more.get(&h).is_some_and(Vec::is_empty) {
                self.by_aor_more.remove(&h);
            }
            match next {
                Some(next) => {
                    self.by_aor.insert(h, next);
                }
                None => {
                    self.by_aor.remove(&h);
                }
            }
        } else if let std::collections::hash_map::Entry::Occupied(mut e) = self.by_aor_more.entry(h)
        {
            e.get_mut().retain(|k| !std::sync::Arc::ptr_eq(k, &key));
            if e.get().is_empty() {
                e.remove();
            }
        }
        self.release_peer(&sub.peer);
        Some(*sub)
    }

    /// Forgets the shared copy of a [`peer_text`] when the subscription leaving (the holder of
    /// `peer`) was the last one sharing it.
    fn release_peer(&mut self, peer: &std::sync::Arc<str>) {
        // held by `peers` and by the subscription leaving only
        if std::sync::Arc::strong_count(peer) == 2 {
            self.peers.remove(&**peer);
        }
    }

    /// The dialogs of the subscriptions whose expiry is at or before `now`, earliest first.
    fn due(&self, now: u64) -> Vec<std::sync::Arc<str>> {
        self.by_expiry
            .iter()
            .take_while(|(at, _)| *at <= now)
            .map(|(_, k)| k.clone())
            .collect()
    }

    fn values(&self) -> impl Iterator<Item = &RegSubscription> {
        self.by_dialog.iter().map(|b| &*b.0)
    }

    /// The dialogs of the subscriptions to `aor`.
    fn keys_for<'a>(&'a self, aor: &'a str) -> impl Iterator<Item = &'a std::sync::Arc<str>> + 'a {
        let h = self.aor_hash(aor);
        self.by_aor
            .get(&h)
            .into_iter()
            .chain(self.by_aor_more.get(&h).into_iter().flatten())
            .filter(move |k| self.get(k).is_some_and(|s| s.aor() == aor))
    }
}

impl Notifier {
    /// A notifier whose dialogs have `contact` (a URI reaching this S-CSCF) as Contact.
    pub fn new(contact: impl Into<String>) -> Notifier {
        Notifier {
            contact: contact.into(),
            subs: Subs::default(),
        }
    }

    /// Number of live subscriptions.
    pub fn len(&self) -> usize {
        self.subs.len()
    }

    /// True when there is none.
    pub fn is_empty(&self) -> bool {
        self.subs.is_empty()
    }

    /// True when `req` is a SUBSCRIBE for the reg event package.
    pub fn is_reg_subscribe(req: &Message<'_>) -> bool {
        req.method() == Some(ims_sip::Method::Subscribe)
            && req.header(HeaderName::Event).is_some_and(|e| {
                e.split(';')
                    .next()
                    .is_some_and(|p| p.trim().eq_ignore_ascii_case("reg"))
            })
    }

    /// TS 24.229 §5.4.2.1.1: who may subscribe to the registration state of `record` — the user
    /// (the P-Asserted-Identity, else the From URI, is one of its implicit set) or a P-CSCF on the
    /// user's Path (same host and port as a Path entry of a binding).
    pub fn may_subscribe(req: &Message<'_>, record: &RegistrationRecord) -> bool {
        // borrowed texts and hosts compared in place (no copies; one per SUBSCRIBE and Path
        // entry before)
        let from;
        let who = match req.header(HeaderName::PAssertedIdentity) {
            Some(p) => uri_part(p.split(',').next().unwrap_or(p)),
            None => match req.from().ok().flatten() {
                Some(f) => {
                    from = f.uri().as_str().to_string();
                    from.as_str()
                }
                None => return false,
            },
        };
        if record.implicit_set.iter().any(|i| i == who) {
            return true;
        }
        let Ok(me) = ims_sip::Uri::parse(who) else {
            return false;
        };
        let Some(me) = me.as_sip() else {
            return false;
        };
        record.bindings.iter().flat_map(|b| b.path.iter()).any(|p| {
            ims_sip::Uri::parse(uri_part(p)).is_ok_and(|u| {
                u.as_sip()
                    .is_some_and(|u| u.port() == me.port() && same_host(&u.host(), &me.host()))
            })
        })
    }

    /// A SUBSCRIBE (initial, refresh, or with `Expires: 0` an unsubscribe) for the registration
    /// state of its Request-URI, whose current state is `record` (`None`: not registered →
    /// 480 for an initial SUBSCRIBE). `tag` is a fresh local tag for a new dialog.
    pub fn subscribe(
        &mut self,
        req: &Message<'_>,
        record: Option<&RegistrationRecord>,
        now: u64,
        tag: &str,
    ) -> SubscribeOutcome {
        let fail = |mut status: u16| SubscribeOutcome {
            response: built_response(
                ims_sip::ResponseBuilder::from_request(req, status),
                req,
                &mut status,
            ),
            status,
            notify: None,
        };
        let (Some(from), Some(to), Some(call_id)) = (
            req.from().ok().flatten(),
            req.to().ok().flatten(),
            req.call_id().ok().flatten(),
        ) else {
            return fail(400);
        };
        let Some(remote_tag) = from.tag() else {
            return fail(400);
        };
        let key = dialog_key(call_id.as_str(), remote_tag);
        let expires = match req.header(HeaderName::Expires) {
            Some(v) => match v.trim().parse::<u64>() {
                Ok(n) => n.min(u64::from(MAX_SUBSCRIPTION)),
                Err(_) => return fail(400),
            },
            None => 3761, // RFC 3680 §4.2: the default
        };
        let local_tag = match to.tag() {
            Some(t) => {
                // a refresh: it must match a dialog
                match self.subs.get(&key) {
                    Some(s) if s.local_tag() == t => t.to_string(),
                    _ => return fail(481),
                }
            }
            None => {
                match record {
                    None => return fail(480),
                    Some(r) if !Self::may_subscribe(req, r) => return fail(403),
                    Some(_) => {}
                }
                tag.to_string()
            }
        };
        let Some(remote_target) = req
            .contacts()
            .next()
            .and_then(|c| c.ok())
            .and_then(|c| c.uri())
            .map(|u| u.as_str().to_string())
        else {
            return fail(400);
        };
        // the 200 first: a SUBSCRIBE whose 200 the parser would not read back gets a 500 and
        // changes nothing
        let mut status = 200;
        let mut v = String::with_capacity(self.contact.len() + 2);
        v.push('<');
        v.push_str(&self.contact);
        v.push('>');
        let b = ims_sip::ResponseBuilder::from_request_with_tag(req, 200, Some(&local_tag))
            .header("Contact", &v);
        v.clear();
        push_dec(&mut v, expires);
        let response = built_response(b.header("Expires", &v), req, &mut status);
        if status != 200 {
            return SubscribeOutcome {
                status,
                response,
                notify: None,
            };
        }
        let aor = req
            .request_uri_str()
            .map(|u| u.split(';').next().unwrap_or(u).to_string())
            .unwrap_or_default();
        let old = self.subs.get(&key);
        let cseq = old.map_or(1, |s| s.cseq);
        let version = old.map_or(0, |s| s.version);
        let refresh = to.tag().is_some();
        let routes = match old {
            Some(s) if refresh => s.routes_text().to_string(),
            _ if refresh => String::new(),
            _ => {
                let mut routes = String::new();
                for (_, v) in req.list(HeaderName::RecordRoute) {
                    let v = v.trim();
                    push_field(&mut routes, v);
                }
                routes
            }
        };
        let aor = match old {
            Some(s) if refresh => s.aor().to_string(),
            _ => aor,
        };
        let notified = old.map(|s| s.notified.clone()).unwrap_or_default();
        let remote = req.header(HeaderName::From).unwrap_or_default().trim();
        let local_uri = to.uri().as_str();
        let local_uri = if local_uri != aor { local_uri } else { "" };
        let mut text = String::with_capacity(
            key.len() + aor.len() + local_tag.len() + local_uri.len() + routes.len() + 16,
        );
        text.push_str(&key);
        for t in [aor.as_str(), local_tag.as_str(), local_uri] {
            push_field(&mut text, t);
        }
        text.push_str(&routes);
        let sub = RegSubscription {
            text: text.into(),
            peer: self
                .subs
                .peer(&peer_text(&remote_target, remote, remote_tag)),
            cseq,
            expires_at: now + expires,
            version,
            notified,
        };
        // the new state replaces the dialog's old one (a refresh's)
        self.subs.remove(&key);
        // the immediate NOTIFY: full state, or the final one for an unsubscribe (which is not
        // kept)
        let regs = record
            .map(|r| registrations(r, None, now))
            .unwrap_or_default();
        let notify = if expires == 0 {
            let (n, s) = self.notify(sub, regs, now, Some("timeout"), true);
            self.subs.release_peer(&s.peer);
            Some(n)
        } else {
            let (n, s) = self.notify(sub, regs, now, None, true);
            self.subs.insert(s);
            Some(n)
        };
        SubscribeOutcome {
            status: 200,
            response,
            notify,
        }
    }

    /// Builds one NOTIFY of `s` (advancing its CSeq and version): with `full` the whole state,
    /// otherwise (RFC 3680 §5, `state="partial"`) only the contacts whose state, event or
    /// expiry differ from what `s` was last told, and the registrations holding them.
    fn notify(
        &self,
        mut s: RegSubscription,
        registrations: Vec<Registration>,
        now: u64,
        terminated: Option<&str>,
        full: bool,
    ) -> (Notify, RegSubscription) {
        let seen = |c: &ContactInfo| now + c.expires.unwrap_or(0);
        let notified = registrations
            .iter()
            .flat_map(|r| r.contacts.iter())
            .filter(|c| c.active)
            .filter_map(|c| Some((contact_key(&c.id)?, seen(c))))
            .collect();
        let changed: Vec<Registration> = if full {
            registrations
        } else {
            registrations
                .iter()
                .filter_map(|r| {
                    let contacts: Vec<ContactInfo> = r
                        .contacts
                        .iter()
                        .filter(|c| {
                            !c.active
                                || contact_key(&c.id)
                                    .is_none_or(|k| !s.notified.contains(&(k, seen(c))))
                        })
                        .cloned()
                        .collect();
                    (!contacts.is_empty() || r.state != RegistrationState::Active).then(|| {
                        Registration {
                            contacts,
                            ..r.clone()
                        }
                    })
                })
                .collect()
        };
        s.notified = notified;
        let body = RegInfo {
            version: s.version,
            full,
            registrations: changed,
        }
        .to_xml();
        let mut m = String::with_capacity(512 + body.len());
        // the texts read in one pass (each accessor would read `text` from its start)
        let mut fields = s.fields();
        let mut next = || fields.next().unwrap_or_default();
        let (call_id, remote_tag, aor, local_tag, local_uri) =
            (next(), next(), next(), next(), next());
        let local_uri = if local_uri.is_empty() { aor } else { local_uri };
        let target = s.remote_target();
        // pieces appended, no formatting machinery
        m.push_str("NOTIFY ");
        m.push_str(target);
        m.push_str(" SIP/2.0\r\n");
        let mut first_route = None;
        for r in fields {
            first_route.get_or_insert(r);
            m.push_str("Route: ");
            m.push_str(r);
            m.push_str("\r\n");
        }
        let (before, after) = (s.peer_at(1).unwrap_or_default(), s.peer_at(2));
        m.push_str("Max-Forwards: 70\r\nFrom: <");
        m.push_str(local_uri);
        m.push_str(">;tag=");
        m.push_str(local_tag);
        m.push_str("\r\nTo: ");
        m.push_str(before);
        if let Some(after) = after {
            m.push_str(remote_tag);
            m.push_str(after);
        }
        m.push_str("\r\nCall-ID: ");
        m.push_str(call_id);
        m.push_str("\r\nCSeq: ");
        push_dec(&mut m, u64::from(s.cseq));
        m.push_str(" NOTIFY\r\nContact: <");
        m.push_str(&self.contact);
        m.push_str(">\r\nEvent: reg\r\nSubscription-State: ");
        match terminated {
            Some(reason) => {
                m.push_str("terminated;reason=");
                m.push_str(reason);
            }
            None => {
                m.push_str("active;expires=");
                push_dec(&mut m, s.expires_at.saturating_sub(now));
            }
        }
        m.push_str("\r\nContent-Type: ");
        m.push_str(RegInfo::CONTENT_TYPE);
        m.push_str("\r\nContent-Length: ");
        push_dec(&mut m, body.len() as u64);
        m.push_str("\r\n\r\n");
        m.push_str(&body);
        // parsed where it is written (the parser indexes a short message faster than the
        // builder's written-lines path, measured): handed on as a message
        let request = own_message(m);
        let next_hop = first_route.map_or_else(|| target.to_string(), uri_in);
        let dialog = (call_id.to_string(), remote_tag.to_string());
        s.cseq += 1;
        s.version += 1;
        (
            Notify {
                next_hop,
                request,
                dialog,
            },
            s,
        )
    }

    /// The NOTIFYs a registration change causes: every subscription to an IMPU of the record's
    /// implicit set gets the new state; when the set is no longer registered the subscriptions
    /// end (`Subscription-State: terminated;reason=deactivated`, or `rejected` for an HSS
    /// de-registration that does not ask the UE to register again). These NOTIFYs are partial
    /// (RFC 3680 §5): only the contacts that changed since the subscription's last NOTIFY.
    pub fn on_change(&mut self, event: &RegEvent, now: u64) -> Vec<Notify> {
        let record = event.record();
        let ends = event.is_deregistration();
        let reason = match event {
            RegEvent::Terminated { reason, .. } if !reason.reregister() => "rejected",
            _ => "deactivated",
        };
        // the subscriptions to the record's IMPU and its implicit set, from the index
        let mut keys: Vec<std::sync::Arc<str>> = Vec::new();
        for aor in std::iter::once(&record.impu).chain(&record.implicit_set) {
            for k in self.subs.keys_for(aor) {
                if !keys.iter().any(|o| std::sync::Arc::ptr_eq(o, k)) {
                    keys.push(k.clone());
                }
            }
        }
        if keys.is_empty() {
            // nobody to tell (a first registration: its subscriptions come after the 200); the
            // state is not worked out for nobody
            return Vec::new();
        }
        let regs = registrations(record, Some(event), now);
        let mut out = Vec::new();
        for k in keys {
            let s = self.subs.remove(&k).expect("key from the map");
            let (n, s) = self.notify(s, regs.clone(), now, ends.then_some(reason), false);
            if !ends {
                self.subs.insert(s);
            }
            out.push(n);
        }
        out
    }

    /// Ends the subscriptions that expired at `now` (`terminated;reason=timeout`, RFC 6665
    /// §4.2.2), with the state of their IMPU from `state_of`.
    pub fn expire(
        &mut self,
        now: u64,
        mut state_of: impl FnMut(&str) -> Option<RegistrationRecord>,
    ) -> Vec<Notify> {
        let mut out = Vec::new();
        for k in self.subs.due(now) {
            let s = self.subs.remove(&k).expect("key from the map");
            let regs = state_of(s.aor())
                .map(|r| registrations(&r, None, now))
                .unwrap_or_default();
            out.push(self.notify(s, regs, now, Some("timeout"), true).0);
        }
        out
    }

    /// Ends a subscription without a NOTIFY: its NOTIFY failed with 481, another error or a
    /// timeout (RFC 6665 §4.2.2). True when it existed.
    pub fn remove(&mut self, dialog: &(String, String)) -> bool {
        self.subs
            .remove(&dialog_key(&dialog.0, &dialog.1))
            .is_some()
    }

    /// The IMPU of the subscription with this dialog (Call-ID, subscriber's tag), if any.
    pub fn aor_of(&self, call_id: &str, remote_tag: &str) -> Option<&str> {
        self.subs
            .get(&dialog_key(call_id, remote_tag))
            .map(RegSubscription::aor)
    }

    /// The IMPUs of the subscriptions due to end at `now` (from the expiry index: only those).
    pub fn due(&self, now: u64) -> Vec<String> {
        self.subs
            .due(now)
            .iter()
            .filter_map(|k| self.subs.get(k).map(|s| s.aor().to_string()))
            .collect()
    }

    /// The subscriptions (for inspection).
    pub fn subscriptions(&self) -> impl Iterator<Item = &RegSubscription> {
        self.subs.values()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fmt::Write as _;

    /// RFC 3680 §6 example (the first NOTIFY body).
    const RFC3680: &str = r#"<?xml version="1.0"?>
<reginfo xmlns="urn:ietf:params:xml:ns:reginfo" version="0" state="full">
  <registration aor="sip:joe@example.com" id="a7" state="active">
    <contact id="76" state="active" event="registered" duration-registered="7322" q="0.8">
      <uri>sip:joe@pc887.example.com</uri>
    </contact>
    <contact id="77" state="terminated" event="expired" duration-registered="3600">
      <uri>sip:joe@university.edu</uri>
    </contact>
  </registration>
</reginfo>"#;

    #[test]
    fn parses_the_rfc_example_and_round_trips() {
        let r = RegInfo::parse(RFC3680.as_bytes()).unwrap();
        assert!(r.full);
        assert_eq!(r.version, 0);
        let reg = &r.registrations[0];
        assert_eq!(reg.aor, "sip:joe@example.com");
        assert_eq!(reg.state, RegistrationState::Active);
        assert_eq!(reg.contacts.len(), 2);
        assert!(reg.contacts[0].active);
        assert_eq!(reg.contacts[1].event, ContactEvent::Expired);
        assert_eq!(reg.contacts[1].uri, "sip:joe@university.edu");
        let again = RegInfo::parse(r.to_xml().as_bytes()).unwrap();
        assert_eq!(r, again);
    }

    #[test]
    fn ims_notify_with_instance_round_trips() {
        let r = RegInfo {
            version: 3,
            full: false,
            registrations: vec![Registration {
                aor: "sip:+15550001@ims.example.org".into(),
                id: "r1".into(),
                state: RegistrationState::Terminated,
                contacts: vec![ContactInfo {
                    id: "c1".into(),
                    active: false,
                    event: ContactEvent::Deactivated,
                    expires: Some(0),
                    uri: "sip:+15550001@10.0.0.1:5060".into(),
                    display_name: Some("A & B".into()),
                    unknown_params: vec![(
                        "+sip.instance".into(),
                        "\"<urn:gsma:imei:35209900-176148-0>\"".into(),
                    )],
                }],
            }],
        };
        let xml = r.to_xml();
        assert!(xml.contains("&lt;urn:gsma:imei"));
        assert_eq!(RegInfo::parse(xml.as_bytes()).unwrap(), r);
        assert!(RegInfo::parse(xml.replace("deactivated", "gone").as_bytes()).is_err());
    }

    /// Any text, with what XML makes special (markup, entities, quotes, whitespace at the
    /// ends, control characters, non-ASCII).
    fn any_text() -> impl proptest::strategy::Strategy<Value = String> {
        "[ a-z0-9:@;=+.<>&\"'/\t\r\n\u{e9}\u{a0}\u{2003}-]{0,10}"
    }

    fn any_reginfo() -> impl proptest::strategy::Strategy<Value = RegInfo> {
        use proptest::prelude::*;
        let contact = (
            any_text(),
            any::<bool>(),
            0usize..9,
            proptest::option::of(any::<u64>()),
            any_text(),
            proptest::option::of(any_text()),
            proptest::collection::vec((any_text(), any_text()), 0..3),
        )
            .prop_map(
                |(id, active, ev, expires, uri, display_name, unknown_params)| ContactInfo {
                    id,
                    active,
                    event: [
                        ContactEvent::Registered,
                        ContactEvent::Created,
                        ContactEvent::Refreshed,
                        ContactEvent::Shortened,
                        ContactEvent::Expired,
                        ContactEvent::Deactivated,
                        ContactEvent::Probation,
                        ContactEvent::Unregistered,
                        ContactEvent::Rejected,
                    ][ev],
                    expires,
                    uri,
                    display_name,
                    unknown_params,
                },
            );
        let registration = (
            any_text(),
            any_text(),
            0usize..3,
            proptest::collection::vec(contact, 0..3),
        )
            .prop_map(|(aor, id, st, contacts)| Registration {
                aor,
                id,
                state: [
                    RegistrationState::Init,
                    RegistrationState::Active,
                    RegistrationState::Terminated,
                ][st],
                contacts,
            });
        (
            any::<u32>(),
            any::<bool>(),
            proptest::collection::vec(registration, 0..3),
        )
            .prop_map(|(version, full, registrations)| RegInfo {
                version,
                full,
                registrations,
            })
    }

    /// True when every text of `r` reads back as written (no whitespace at its ends, no
    /// control character): `to_xml` then writes a document the fast scan takes.
    fn plain(r: &RegInfo) -> bool {
        let ok = |t: &str| t.trim() == t && !t.chars().any(char::is_control);
        r.registrations.iter().all(|g| {
            ok(&g.aor)
                && ok(&g.id)
                && g.contacts.iter().all(|c| {
                    ok(&c.id)
                        && ok(&c.uri)
                        && c.display_name.as_deref().is_none_or(ok)
                        && c.unknown_params.iter().all(|(n, v)| ok(n) && ok(v))
                })
        })
    }

    proptest::proptest! {
        /// The fast scan accepts what `to_xml` writes and reads it as the tree does; on any
        /// document (written ones with bytes inserted, removed or replaced) it either gives
        /// up or agrees with the tree.
        #[test]
        fn fast_scan_agrees_with_the_tree(
            r in any_reginfo(),
            edits in proptest::collection::vec(
                (proptest::num::usize::ANY, 0u8..3, proptest::sample::select(
                    b" <>/&;=\"'!?-xa\n\t\xc3".to_vec())),
                0..4,
            ),
        ) {
            let doc = r.to_xml();
            let fast = fast::parse(doc.as_bytes(), &XmlLimits::default());
            if plain(&r) && !r.registrations.iter().any(|g| g.contacts.iter().any(|c| c.unknown_params.iter().any(|(n, _)| n.is_empty() || !n.starts_with(|c: char| c.is_ascii_alphabetic())))) {
                proptest::prop_assert_eq!(fast.as_ref(), Some(&r));
            }
            if let Some(f) = fast {
                proptest::prop_assert_eq!(RegInfo::parse_tree(doc.as_bytes()), Ok(f));
            }
            let mut bytes = doc.into_bytes();
            for (at, op, b) in edits {
                let at = at % (bytes.len() + 1);
                match op {
                    0 => bytes.insert(at, b),
                    1 if at < bytes.len() => {
                        bytes.remove(at);
                    }
                    _ if at < bytes.len() => bytes[at] = b,
                    _ => {}
                }
            }
            if let Some(f) = fast::parse(&bytes, &XmlLimits::default()) {
                proptest::prop_assert_eq!(RegInfo::parse_tree(&bytes), Ok(f));
            }
        }
    }

    #[test]
    fn the_notifiers_documents_take_the_fast_scan() {
        let mut n = Notifier::new("sip:orig@scscf.ims.example.org");
        let rec = record();
        let o = n.subscribe(
            &ims_sip::parse_datagram(&subscribe("")).unwrap(),
            Some(&rec),
            1000,
            "t",
        );
        let request = o.notify.unwrap().request;
        let m = crate::test_util::checked(request.as_ref().unwrap());
        let fast = fast::parse(m.body(), &XmlLimits::default()).expect("the layout of to_xml");
        assert_eq!(Ok(fast.clone()), RegInfo::parse_tree(m.body()));
        assert_eq!(fast.registrations.len(), 2);
        assert_eq!(
            fast.registrations[0].contacts[0].unknown_params,
            vec![("+sip.instance".to_string(), "\"<urn:uuid:1>\"".to_string())]
        );
        // the RFC's example (other attributes, no declaration of ours) too, and what is not
        // that layout goes to the tree
        assert_eq!(
            fast::parse(RFC3680.as_bytes(), &XmlLimits::default()).as_ref(),
            RegInfo::parse_tree(RFC3680.as_bytes()).ok().as_ref()
        );
        let commented = RFC3680.replace("<registration", "<!-- x --><registration");
        assert!(fast::parse(commented.as_bytes(), &XmlLimits::default()).is_none());
        assert_eq!(
            RegInfo::parse(commented.as_bytes()),
            RegInfo::parse_tree(RFC3680.as_bytes())
        );
    }

    #[test]
    fn a_closing_tag_cut_short_is_refused_by_the_scan_as_by_the_reader() {
        // found by the nf_xml fuzz target (its oracle: the scan gives the reader's value or
        // steps aside): `</` probed for `</registration>` and `</reginfo>` was taken even when
        // the name did not follow, so `</<contact …>` read as `<contact …>`
        let ours = RegInfo {
            version: 0,
            full: true,
            registrations: vec![Registration {
                aor: "sip:a@ims.example.org".into(),
                id: "a1".into(),
                state: RegistrationState::Active,
                contacts: vec![ContactInfo {
                    id: "c1".into(),
                    active: true,
                    event: ContactEvent::Registered,
                    expires: Some(600),
                    uri: "sip:a@127.0.0.1:5091".into(),
                    display_name: None,
                    unknown_params: vec![],
                }],
            }],
        }
        .to_xml();
        assert!(fast::parse(ours.as_bytes(), &XmlLimits::default()).is_some());
        for broken in [
            ours.replace("    <contact", "    </<contact"),
            ours.replace("  <registration", "  </<registration"),
            ours.replace("</registration>", "</registration"),
            ours.replace("</reginfo>", "</reginfo"),
            ours.replace("</registration>", "</registratio>"),
        ] {
            assert!(
                fast::parse(broken.as_bytes(), &XmlLimits::default()).is_none(),
                "{broken}"
            );
            assert!(RegInfo::parse(broken.as_bytes()).is_err(), "{broken}");
        }
    }

    /// `field_at` as written before the digit loop.
    fn field_at_by_parse(s: &str, at: usize) -> Option<(&str, usize)> {
        let rest = s.get(at..)?;
        let (n, r) = rest.split_once(':')?;
        let n: usize = n.parse().ok()?;
        let text = r.get(..n)?;
        Some((text, at + (rest.len() - r.len()) + n))
    }

    proptest::proptest! {
        #[test]
        fn field_at_answers_as_with_the_number_parser(s in "[0-9+:aé-]{0,24}", at in 0usize..26) {
            proptest::prop_assert_eq!(field_at(&s, at), field_at_by_parse(&s, at));
            let t = format!("3:abc{s}");
            proptest::prop_assert_eq!(field_at(&t, at), field_at_by_parse(&t, at));
            // written as `format!` wrote them
            let mut k = String::new();
            push_field(&mut k, &s);
            proptest::prop_assert_eq!(k, format!("{}:{s}", s.len()));
            proptest::prop_assert_eq!(dialog_key(&s, &t), format!("{}:{s}{}:{t}", s.len(), t.len()));
        }
    }

    /// `to_xml` as written with `write!`, before the appended pieces.
    fn to_xml_by_format(r: &RegInfo) -> String {
        let mut o = String::with_capacity(256 + 256 * r.registrations.len());
        let _ = write!(
            o,
            "<?xml version=\"1.0\"?>\r\n<reginfo xmlns=\"urn:ietf:params:xml:ns:reginfo\" version=\"{}\" state=\"{}\">\r\n",
            r.version,
            if r.full { "full" } else { "partial" }
        );
        for r in &r.registrations {
            let _ = write!(
                o,
                "  <registration aor=\"{}\" id=\"{}\" state=\"{}\">\r\n",
                escape(&r.aor),
                escape(&r.id),
                r.state.as_str()
            );
            for c in &r.contacts {
                let _ = write!(
                    o,
                    "    <contact id=\"{}\" state=\"{}\" event=\"{}\"",
                    escape(&c.id),
                    if c.active { "active" } else { "terminated" },
                    c.event.as_str()
                );
                if let Some(e) = c.expires {
                    let _ = write!(o, " expires=\"{e}\"");
                }
                let _ = write!(o, ">\r\n      <uri>{}</uri>\r\n", escape(&c.uri));
                if let Some(d) = &c.display_name {
                    let _ = write!(o, "      <display-name>{}</display-name>\r\n", escape(d));
                }
                for (n, v) in &c.unknown_params {
                    let _ = write!(
                        o,
                        "      <unknown-param name=\"{}\">{}</unknown-param>\r\n",
                        escape(n),
                        escape(v)
                    );
                }
                o.push_str("    </contact>\r\n");
            }
            o.push_str("  </registration>\r\n");
        }
        o.push_str("</reginfo>\r\n");
        o
    }

    proptest::proptest! {
        #[test]
        fn to_xml_writes_what_the_formatting_wrote(r in any_reginfo()) {
            proptest::prop_assert_eq!(r.to_xml(), to_xml_by_format(&r));
        }
    }

    proptest::proptest! {
        /// A contact's id hashed piece by piece is the one of the formatted text.
        #[test]
        fn contact_ids_are_those_of_the_formatted_text(
            uri in "[ -~é\u{7}]{0,16}",
            instance in proptest::option::of("[ -~é\u{7}\u{300}]{0,16}"),
            reg_id in proptest::option::of(proptest::num::u32::ANY),
            text in "[ -~é]{0,16}",
        ) {
            let old = |s: &str| {
                let mut h: u64 = 0xcbf2_9ce4_8422_2325;
                for b in s.bytes() {
                    h ^= u64::from(b);
                    h = h.wrapping_mul(0x0100_0000_01b3);
                }
                format!("{:x}", h & 0xffff_ffff)
            };
            proptest::prop_assert_eq!(
                contact_id(&uri, instance.as_deref(), reg_id),
                old(&format!("{}|{:?}|{:?}", uri, instance, reg_id))
            );
            proptest::prop_assert_eq!(short_id(&text), old(&text));
        }
    }

    fn record() -> RegistrationRecord {
        RegistrationRecord {
            impu: "sip:alice@ims.example.org".into(),
            impi: "alice@ims.example.org".into(),
            implicit_set: vec!["sip:alice@ims.example.org".into(), "tel:+1555".into()],
            barred: vec![],
            bindings: vec![Binding {
                uri: "sip:alice@10.0.0.1:5060".into(),
                params: ";+sip.instance=\"<urn:uuid:1>\"".into(),
                instance_id: Some("<urn:uuid:1>".into()),
                reg_id: None,
                call_id: "c".into(),
                cseq: 1,
                expires_at: 1600,
                path: vec![],
                q: None,
            }],
            state: crate::store::RegState::Registered,
            user_data: None,
            charging: None,
            reginfo_version: 0,
        }
    }

    fn subscribe(extra: &str) -> Vec<u8> {
        format!(
            "SUBSCRIBE sip:alice@ims.example.org SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK1\r\n\
Record-Route: <sip:pcscf.ims.example.org;lr>\r\nFrom: <sip:alice@ims.example.org>;tag=ue1\r\n\
To: <sip:alice@ims.example.org>{extra}\r\nCall-ID: sub1\r\nCSeq: 1 SUBSCRIBE\r\n\
Contact: <sip:alice@10.0.0.1:5060>\r\nEvent: reg\r\nExpires: 600\r\nContent-Length: 0\r\n\r\n"
        )
        .into_bytes()
    }

    fn notify_of(n: &Notify) -> (String, RegInfo) {
        let text = crate::test_util::checked_text(&n.request);
        let with_via = text.replacen("\r\n", "\r\nVia: SIP/2.0/UDP x;branch=z9hG4bK2\r\n", 1);
        let m = ims_sip::parse_datagram(with_via.as_bytes()).unwrap();
        (
            m.header_str("Subscription-State").unwrap().to_string(),
            RegInfo::parse(m.body()).unwrap(),
        )
    }

    /// The 200 and the NOTIFY are handed on as messages: each is exactly what the parse of its
    /// bytes gives, also for a SUBSCRIBE with compact names, folded values and a
    /// Record-Route list (which the builder does not index itself); the NOTIFY's text is the
    /// layout written before (line for line).
    #[test]
    fn the_messages_handed_on_are_what_their_bytes_parse_to() {
        let rec = record();
        let plain = String::from_utf8(subscribe("")).unwrap();
        let odd = plain
            .replace("From: <sip:alice@ims.example.org>;tag=ue1", "f: <sip:alice@ims.example.org>\r\n ;tag=ue1")
            .replace(
                "Record-Route: <sip:pcscf.ims.example.org;lr>",
                "Record-Route: <sip:a.example.org;lr>, <sip:b.example.org;lr>\r\nRecord-Route: <sip:c.example.org;lr>",
            )
            .replace("Call-ID: sub1", "i: sub1")
            .replace("Contact: <sip:alice@10.0.0.1:5060>", "m:  <sip:alice@10.0.0.1:5060>\t");
        for text in [plain, odd] {
            let mut n = Notifier::new("sip:orig@scscf.ims.example.org");
            let req = ims_sip::parse_datagram(text.as_bytes()).unwrap();
            let o = n.subscribe(&req, Some(&rec), 1000, "t1");
            assert_eq!(o.status, 200);
            let resp = crate::test_util::checked(&o.response);
            assert_eq!(resp.header_str("Expires"), Some("600"));
            assert_eq!(
                resp.header_str("Contact"),
                Some("<sip:orig@scscf.ims.example.org>")
            );
            let first = o.notify.unwrap();
            let notify = crate::test_util::checked_text(&first.request);
            let routes = req
                .list(HeaderName::RecordRoute)
                .map(|(_, r)| format!("Route: {}\r\n", r.trim()))
                .collect::<String>();
            let from = req.header_str("From").unwrap();
            let body =
                RegInfo::parse(crate::test_util::checked(first.request.as_ref().unwrap()).body())
                    .unwrap()
                    .to_xml();
            let want = format!(
                "NOTIFY sip:alice@10.0.0.1:5060 SIP/2.0\r\n{routes}Max-Forwards: 70\r\n\
From: <sip:alice@ims.example.org>;tag=t1\r\nTo: {from}\r\nCall-ID: sub1\r\nCSeq: 1 NOTIFY\r\n\
Contact: <sip:orig@scscf.ims.example.org>\r\nEvent: reg\r\nSubscription-State: active;expires=600\r\n\
Content-Type: application/reginfo+xml\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            );
            assert_eq!(notify, want);
            // a refresh and an unsubscribe too
            let to = "To: <sip:alice@ims.example.org>;tag=t1";
            for (cseq, expires) in [(2, 600), (3, 0)] {
                let again = text
                    .replace("To: <sip:alice@ims.example.org>", to)
                    .replace("CSeq: 1 SUBSCRIBE", &format!("CSeq: {cseq} SUBSCRIBE"))
                    .replace("Expires: 600", &format!("Expires: {expires}"));
                let o = n.subscribe(
                    &ims_sip::parse_datagram(again.as_bytes()).unwrap(),
                    Some(&rec),
                    1010,
                    "x",
                );
                assert_eq!(o.status, 200);
                crate::test_util::checked(&o.response);
                crate::test_util::checked_text(&o.notify.unwrap().request);
            }
            // an error response as well
            let o = n.subscribe(&req, None, 1000, "t2");
            assert_eq!(o.status, 480);
            crate::test_util::checked(&o.response);
        }
    }

    proptest::proptest! {
        /// The `=` scan finds the tag where the search for its occurrences found it, for any
        /// texts (tags with `=`, `tag=` repeated, other case, non-ASCII).
        #[test]
        fn the_tag_is_found_where_the_search_found_it(
            from in "([a-zA-Z<>;:@= ]|tag=|TaG=|é){0,24}",
            tag in "([a-c=]|ta|g=|é){1,5}",
        ) {
            proptest::prop_assert_eq!(tag_at(&from, &tag), tag_at_by_search(&from, &tag));
            let with = format!("{from};tag={tag}");
            proptest::prop_assert_eq!(tag_at(&with, &tag), tag_at_by_search(&with, &tag));
        }

        /// `may_subscribe` answers as it did when it wrote both hosts lowercased and compared
        /// the texts (the oracle below), for hosts of every kind, in any case, with and without
        /// ports, and for texts that are no URI.
        #[test]
        fn may_subscribe_answers_as_with_the_written_hosts(
            who in 0usize..12, paths in proptest::collection::vec(0usize..12, 0..3),
            by_pai in proptest::bool::ANY,
        ) {
            const URIS: [&str; 12] = [
                "<sip:pcscf.ims.example.org;lr>", "<sip:PCSCF.ims.Example.org:5060;lr>",
                "<sip:pcscf.ims.example.org:5060>", "sip:10.0.0.1;lr", "<sip:10.0.0.1:5061;lr>",
                "<sip:[fe80::1]:5061;lr>", "<sip:[FE80::1]:5061>", "<sip:[fe80::0:1]:5061>",
                "<sip:alice@ims.example.org>", "<tel:+15550001>", "not a uri", "<sip:é.example>",
            ];
            let mut rec = record();
            rec.implicit_set = vec!["sip:alice@ims.example.org".into()];
            rec.bindings[0].path = paths.iter().map(|&i| URIS[i].to_string()).collect();
            let text = String::from_utf8(subscribe("")).unwrap();
            let text = if by_pai {
                text.replace("Event: reg", &format!("P-Asserted-Identity: {}\r\nEvent: reg", URIS[who]))
            } else {
                text.replace("From: <sip:alice@ims.example.org>", &format!("From: {}", URIS[who]))
            };
            if let Ok(req) = ims_sip::parse_datagram(text.as_bytes()) {
                let old = {
                    let who = match req.header_str("P-Asserted-Identity") {
                        Some(p) => Some(uri_in(p.split(',').next().unwrap_or(p))),
                        None => req.from().ok().flatten().map(|f| f.uri().as_str().to_string()),
                    };
                    who.is_some_and(|who| {
                        rec.implicit_set.contains(&who) || {
                            let host_port = |u: &str| -> Option<(String, Option<u16>)> {
                                let u = ims_sip::Uri::parse(u).ok()?;
                                let s = u.as_sip()?;
                                Some((s.host().to_string().to_ascii_lowercase(), s.port()))
                            };
                            host_port(&who).is_some_and(|me| {
                                rec.bindings.iter().flat_map(|b| b.path.iter())
                                    .any(|p| host_port(&uri_in(p)).is_some_and(|h| h == me))
                            })
                        }
                    })
                };
                proptest::prop_assert_eq!(Notifier::may_subscribe(&req, &rec), old);
            }
        }
    }

    /// A response the parser would refuse is replaced by a 500 to the request (and the
    /// status says so); one it reads is handed on as written.
    #[test]
    fn a_response_that_would_not_parse_becomes_a_500() {
        let text = subscribe("");
        let req = ims_sip::parse_datagram(&text).unwrap();
        let mut status = 200;
        let b = ims_sip::ResponseBuilder::from_request(&req, 200).header("X Bad", "v");
        let m = built_response(b, &req, &mut status);
        assert_eq!(status, 500);
        let m = crate::test_util::checked(&m);
        assert_eq!(m.status(), Some(500));
        assert_eq!(m.header_str("Call-ID"), Some("sub1"));
        assert!(m.header_str("X Bad").is_none());
        let mut status = 200;
        let b = ims_sip::ResponseBuilder::from_request(&req, 200).header("X-Good", "a\r\n b");
        let m = built_response(b, &req, &mut status);
        assert_eq!(status, 200);
        assert_eq!(
            crate::test_util::checked(&m).header_str("X-Good"),
            Some("a\r\n b")
        );
    }

    #[test]
    fn subscriptions_from_one_subscriber_share_its_contact_and_from_uri() {
        let mut n = Notifier::new("sip:orig@scscf.ims.example.org");
        let rec = record();
        let base = String::from_utf8(subscribe("")).unwrap();
        // one P-CSCF's SUBSCRIBEs (one Contact, one From URI), each its own dialog
        let sub = |n: &mut Notifier, call_id: &str, tag: &str, from: &str| {
            let r = base
                .replace("<sip:alice@ims.example.org>;tag=ue1", from)
                .replace("Call-ID: sub1", &format!("Call-ID: {call_id}"))
                .replace(
                    "Event: reg",
                    "P-Asserted-Identity: <sip:alice@ims.example.org>\r\nEvent: reg",
                );
            let o = n.subscribe(
                &ims_sip::parse_datagram(r.as_bytes()).unwrap(),
                Some(&rec),
                1000,
                "t",
            );
            assert_eq!(o.status, 200);
            let request = o.notify.unwrap().request;
            let notify = crate::test_util::checked(request.as_ref().unwrap());
            // the NOTIFY goes to the Contact, To: the From exactly as it came
            assert_eq!(notify.request_uri_str(), Some("sip:alice@10.0.0.1:5060"));
            assert_eq!(notify.header_str("To"), Some(from));
            let s = n.subs.get(&dialog_key(call_id, tag)).unwrap();
            assert_eq!(s.remote(), from);
            assert_eq!(s.remote_target(), "sip:alice@10.0.0.1:5060");
            // the subscription's own text holds no copy of the From
            assert!(!s.text.to_ascii_lowercase().contains("tag="), "{}", s.text);
            s.peer.clone()
        };
        let a = sub(&mut n, "a", "ue1", "<sip:pcscf.ims.example.org;lr>;tag=ue1");
        // the tag's text also in the URI: cut where it follows `tag=`
        let b = sub(
            &mut n,
            "b",
            "pcscf",
            "<sip:pcscf.ims.example.org;lr>;tag=pcscf",
        );
        assert!(std::sync::Arc::ptr_eq(&a, &b));
        assert_eq!(n.subs.peers.len(), 1);
        // `TAG=` in capitals, a parameter after it: shared with its like only
        let c = sub(
            &mut n,
            "c",
            "c3",
            "<sip:pcscf.ims.example.org;lr>;TAG=c3;x=1",
        );
        let d = sub(
            &mut n,
            "d",
            "d4",
            "<sip:pcscf.ims.example.org;lr>;TAG=d4;x=1",
        );
        assert!(std::sync::Arc::ptr_eq(&c, &d) && !std::sync::Arc::ptr_eq(&a, &c));
        assert_eq!(n.subs.peers.len(), 2);
        drop((a, b, c, d));
        for (call_id, tag) in [("a", "ue1"), ("c", "c3"), ("b", "pcscf")] {
            assert!(n.remove(&(call_id.to_string(), tag.to_string())));
        }
        assert_eq!(n.subs.peers.len(), 1, "d's is left");
        assert!(n.remove(&("d".to_string(), "d4".to_string())));
        assert!(n.subs.peers.is_empty());
        // a From whose tag does not follow `tag=` is kept whole
        assert_eq!(
            peer_text("sip:t", "<sip:ue1@x>;t=ue1", "ue1"),
            "5:sip:t17:<sip:ue1@x>;t=ue1"
        );
        assert_eq!(
            peer_text("sip:t", "<sip:x>;tag=", ""),
            "5:sip:t12:<sip:x>;tag="
        );
        assert_eq!(
            peer_text("sip:t", "<sip:x>;tag=a1", "a1"),
            "5:sip:t12:<sip:x>;tag=0:"
        );
    }

    #[test]
    fn the_impu_index_keeps_every_subscription_in_the_order_they_came() {
        let sub = |call_id: &str, aor: &str| RegSubscription {
            text: format!("{}{}:{aor}0:0:", dialog_key(call_id, "x"), aor.len()).into(),
            peer: "7:sip:p@x0:".into(),
            cseq: 1,
            version: 0,
            expires_at: 100,
            notified: Default::default(),
        };
        let mut subs = Subs::default();
        for c in ["a", "b", "c", "d"] {
            subs.insert(sub(c, "sip:u@x"));
        }
        subs.insert(sub("e", "sip:v@x"));
        let keys = |subs: &Subs, aor: &str| {
            subs.keys_for(aor)
                .map(|k| subs.get(k).unwrap().call_id().to_string())
                .collect::<Vec<_>>()
        };
        assert_eq!(keys(&subs, "sip:u@x"), ["a", "b", "c", "d"]);
        subs.remove(&dialog_key("a", "x")).unwrap();
        assert_eq!(keys(&subs, "sip:u@x"), ["b", "c", "d"]);
        subs.remove(&dialog_key("c", "x")).unwrap();
        assert_eq!(keys(&subs, "sip:u@x"), ["b", "d"]);
        // a refresh (insert again) keeps the others' order and puts it last
        subs.insert(sub("b", "sip:u@x"));
        assert_eq!(keys(&subs, "sip:u@x"), ["d", "b"]);
        for c in ["b", "d"] {
            subs.remove(&dialog_key(c, "x")).unwrap();
        }
        assert_eq!(keys(&subs, "sip:u@x"), Vec::<String>::new());
        assert_eq!(keys(&subs, "sip:v@x"), ["e"]);
        assert!(subs.by_aor_more.is_empty());
        assert_eq!(subs.by_aor.len(), 1);
    }

    #[test]
    fn subscription_keeps_its_route_set_and_texts_in_one_allocation() {
        // two Record-Route values (one header with a comma list, one more header), a To URI
        // that is not the IMPU: all kept, in order, across a refresh
        let req = String::from_utf8(subscribe(""))
            .unwrap()
            .replace(
                "Record-Route: <sip:pcscf.ims.example.org;lr>\r\n",
                "Record-Route: <sip:a.example.org;lr>, <sip:b.example.org:5070;lr;x=1:2>\r\n\
Record-Route: <sip:c.example.org;lr>\r\n",
            )
            .replace(
                "To: <sip:alice@ims.example.org>",
                "To: <sip:alice@other.example.org>",
            );
        let m = ims_sip::parse_datagram(req.as_bytes()).unwrap();
        let mut n = Notifier::new("sip:orig@scscf.ims.example.org");
        let rec = record();
        let o = n.subscribe(&m, Some(&rec), 1000, "t1");
        assert_eq!(o.status, 200);
        let check = |n: &Notifier| {
            let s = n.subs.get(&dialog_key("sub1", "ue1")).unwrap();
            assert_eq!(
                s.route_set().collect::<Vec<_>>(),
                [
                    "<sip:a.example.org;lr>",
                    "<sip:b.example.org:5070;lr;x=1:2>",
                    "<sip:c.example.org;lr>"
                ]
            );
            assert_eq!(s.aor(), "sip:alice@ims.example.org");
            assert_eq!(s.local_tag(), "t1");
            assert_eq!(s.remote(), "<sip:alice@ims.example.org>;tag=ue1");
            assert_eq!(s.local_uri(), "sip:alice@other.example.org");
            assert_eq!(s.remote_target(), "sip:alice@10.0.0.1:5060");
        };
        check(&n);
        let first = o.notify.unwrap();
        assert_eq!(first.next_hop, "sip:a.example.org;lr");
        let text = crate::test_util::checked_text(&first.request);
        assert!(text.contains(
            "Route: <sip:a.example.org;lr>\r\nRoute: <sip:b.example.org:5070;lr;x=1:2>\r\n\
Route: <sip:c.example.org;lr>\r\nMax-Forwards"
        ));
        assert!(text.contains("From: <sip:alice@other.example.org>;tag=t1\r\n"));
        // a refresh (no Record-Route in it) keeps the dialog's route set
        let refresh = String::from_utf8(subscribe(";tag=t1"))
            .unwrap()
            .replace("Record-Route: <sip:pcscf.ims.example.org;lr>\r\n", "")
            .replace(
                "To: <sip:alice@ims.example.org>",
                "To: <sip:alice@other.example.org>",
            )
            .replace("CSeq: 1 ", "CSeq: 2 ");
        let m = ims_sip::parse_datagram(refresh.as_bytes()).unwrap();
        assert_eq!(n.subscribe(&m, Some(&rec), 1010, "t2").status, 200);
        check(&n);
        #[cfg(target_pointer_width = "64")]
        assert!(
            std::mem::size_of::<RegSubscription>() <= 72,
            "one per registered user: keep it in the 80-byte malloc class"
        );
    }

    #[test]
    fn notifier_subscribe_notify_and_terminate() {
        let mut n = Notifier::new("sip:orig@scscf.ims.example.org");
        let req = subscribe("");
        let m = ims_sip::parse_datagram(&req).unwrap();
        assert!(Notifier::is_reg_subscribe(&m));
        // not registered: 480
        assert_eq!(n.subscribe(&m, None, 1000, "t1").status, 480);
        let rec = record();
        let o = n.subscribe(&m, Some(&rec), 1000, "t1");
        assert_eq!(o.status, 200);
        let resp = crate::test_util::checked(&o.response);
        assert!(resp.header_str("To").unwrap().ends_with(";tag=t1"));
        assert_eq!(resp.header_str("Expires"), Some("600"));
        assert_eq!(
            resp.header_str("Record-Route"),
            Some("<sip:pcscf.ims.example.org;lr>")
        );
        let first = o.notify.unwrap();
        // along the route set to the subscriber's contact
        assert_eq!(first.next_hop, "sip:pcscf.ims.example.org;lr");
        let text = crate::test_util::checked_text(&first.request);
        assert!(text.starts_with(
            "NOTIFY sip:alice@10.0.0.1:5060 SIP/2.0\r\nRoute: <sip:pcscf.ims.example.org;lr>\r\n"
        ));
        assert!(text.contains("From: <sip:alice@ims.example.org>;tag=t1\r\nTo: <sip:alice@ims.example.org>;tag=ue1\r\n"));
        assert!(text.contains("CSeq: 1 NOTIFY\r\n") && text.contains("Event: reg\r\n"));
        let (state, info) = notify_of(&first);
        assert_eq!(state, "active;expires=600");
        assert_eq!(info.version, 0);
        assert!(info.full);
        assert_eq!(
            info.registrations.len(),
            2,
            "one per IMPU of the implicit set"
        );
        let r = &info.registrations[0];
        assert_eq!(r.state, RegistrationState::Active);
        assert_eq!(r.contacts[0].event, ContactEvent::Registered);
        assert_eq!(r.contacts[0].expires, Some(600));
        assert_eq!(r.contacts[0].unknown_params[0].0, "+sip.instance");

        // someone else: 403; the user's P-CSCF (on the Path): accepted
        let mut with_path = rec.clone();
        with_path.bindings[0].path = vec!["<sip:term@pcscf.ims.example.org:5060;lr>".into()];
        let eve = String::from_utf8(subscribe(""))
            .unwrap()
            .replace("From: <sip:alice@", "From: <sip:eve@");
        let eve = ims_sip::parse_datagram(eve.as_bytes()).unwrap();
        assert_eq!(n.subscribe(&eve, Some(&with_path), 1000, "t9").status, 403);
        let pcscf = String::from_utf8(subscribe(""))
            .unwrap()
            .replace("Call-ID: sub1", "Call-ID: sub-p")
            .replace("To: <sip:alice@ims.example.org>\r\n", "To: <sip:alice@ims.example.org>\r\nP-Asserted-Identity: <sip:pcscf.ims.example.org:5060>\r\n");
        let pcscf = ims_sip::parse_datagram(pcscf.as_bytes()).unwrap();
        assert!(Notifier::may_subscribe(&pcscf, &with_path));
        assert!(!Notifier::may_subscribe(&pcscf, &rec));

        // a refresh of an unknown dialog: 481; of ours: 200 and a NOTIFY with version 1
        let bad = subscribe(";tag=nope");
        assert_eq!(
            n.subscribe(
                &ims_sip::parse_datagram(&bad).unwrap(),
                Some(&rec),
                1100,
                "x"
            )
            .status,
            481
        );
        let refresh = subscribe(";tag=t1");
        let o = n.subscribe(
            &ims_sip::parse_datagram(&refresh).unwrap(),
            Some(&rec),
            1100,
            "x",
        );
        assert_eq!(o.status, 200);
        let (_, info) = notify_of(&o.notify.unwrap());
        assert_eq!(info.version, 1);
        assert_eq!(n.len(), 1);

        // a re-registration: refreshed, subscription goes on
        let mut rec = rec;
        rec.bindings[0].expires_at = 1800;
        let ev = RegEvent::Registered {
            initial: false,
            record: rec.clone(),
        };
        let out = n.on_change(&ev, 1200);
        assert_eq!(out.len(), 1);
        let (state, info) = notify_of(&out[0]);
        assert!(state.starts_with("active"));
        assert_eq!(info.version, 2);
        assert_eq!(
            info.registrations[0].contacts[0].event,
            ContactEvent::Refreshed
        );
        assert!(crate::test_util::checked_text(&out[0].request).contains("CSeq: 3 NOTIFY"));

        // another user's change: nothing
        let mut other = rec.clone();
        other.impu = "sip:bob@ims.example.org".into();
        other.implicit_set = vec![other.impu.clone()];
        assert!(n
            .on_change(&RegEvent::Deregistered { record: other }, 1200)
            .is_empty());

        // the binding expires: terminated, event expired, subscription over
        let mut after = rec.clone();
        let expired = std::mem::take(&mut after.bindings);
        let out = n.on_change(
            &RegEvent::Expired {
                record: after,
                expired,
            },
            1600,
        );
        let (state, info) = notify_of(&out[0]);
        assert_eq!(state, "terminated;reason=deactivated");
        assert_eq!(info.registrations[0].state, RegistrationState::Terminated);
        assert_eq!(
            info.registrations[0].contacts[0].event,
            ContactEvent::Expired
        );
        assert!(!info.registrations[0].contacts[0].active);
        assert!(n.is_empty());
    }

    #[test]
    fn notifies_after_the_first_are_partial_with_only_the_changed_contacts() {
        let mut rec = record();
        let mut second = rec.bindings[0].clone();
        second.uri = "sip:alice@10.0.0.2:5060".into();
        second.instance_id = Some("<urn:uuid:2>".into());
        second.params = ";+sip.instance=\"<urn:uuid:2>\"".into();
        rec.bindings.push(second);
        let mut n = Notifier::new("sip:orig@scscf");
        let m = subscribe("");
        let first = n
            .subscribe(
                &ims_sip::parse_datagram(&m).unwrap(),
                Some(&rec),
                1000,
                "t1",
            )
            .notify
            .unwrap();
        let (_, info) = notify_of(&first);
        assert!(info.full && info.version == 0);
        assert_eq!(info.registrations[0].contacts.len(), 2);
        assert!(crate::test_util::checked_text(&first.request).contains("state=\"full\""));

        // the second contact re-registers: a partial NOTIFY naming only it
        rec.bindings[1].expires_at = 1900;
        let out = n.on_change(
            &RegEvent::Registered {
                initial: false,
                record: rec.clone(),
            },
            1300,
        );
        let (state, info) = notify_of(&out[0]);
        assert!(state.starts_with("active"));
        assert!(
            !info.full,
            "RFC 3680 §5: partial after the first full NOTIFY"
        );
        assert!(crate::test_util::checked_text(&out[0].request).contains("state=\"partial\""));
        assert_eq!(info.version, 1);
        assert_eq!(
            info.registrations.len(),
            2,
            "both IMPUs of the implicit set"
        );
        let c = &info.registrations[0].contacts;
        assert_eq!(c.len(), 1, "only the changed contact: {c:?}");
        assert_eq!(c[0].uri, "sip:alice@10.0.0.2:5060");
        assert_eq!(c[0].event, ContactEvent::Refreshed);
        assert_eq!(c[0].expires, Some(600));

        // the first one expires: partial, only it, terminated; the registration stays active
        let mut after = rec.clone();
        let expired = vec![after.bindings.remove(0)];
        let out = n.on_change(
            &RegEvent::Expired {
                record: after.clone(),
                expired,
            },
            1600,
        );
        let (_, info) = notify_of(&out[0]);
        assert!(!info.full);
        assert_eq!(info.version, 2);
        assert_eq!(info.registrations[0].state, RegistrationState::Active);
        let c = &info.registrations[0].contacts;
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].uri, "sip:alice@10.0.0.1:5060");
        assert!(!c[0].active && c[0].event == ContactEvent::Expired);

        // a refresh of the subscription: full state again (RFC 6665 §4.2.1.2)
        let refresh = subscribe(";tag=t1");
        let o = n.subscribe(
            &ims_sip::parse_datagram(&refresh).unwrap(),
            Some(&after),
            1650,
            "x",
        );
        let (_, info) = notify_of(&o.notify.unwrap());
        assert!(info.full);
        assert_eq!(info.version, 3);
        assert_eq!(info.registrations[0].contacts.len(), 1);
    }

    #[test]
    fn notifier_rtr_unsubscribe_and_timeout() {
        use crate::scscf::DeregistrationReason;
        let rec = record();
        let m = subscribe("");
        let m = ims_sip::parse_datagram(&m).unwrap();
        // RTR with PERMANENT_TERMINATION: rejected
        let mut n = Notifier::new("sip:orig@scscf");
        n.subscribe(&m, Some(&rec), 1000, "t1");
        let reason = DeregistrationReason {
            code: 0,
            info: None,
        };
        let out = n.on_change(
            &RegEvent::Terminated {
                record: rec.clone(),
                reason,
            },
            1001,
        );
        let (state, info) = notify_of(&out[0]);
        assert_eq!(state, "terminated;reason=rejected");
        assert_eq!(
            info.registrations[0].contacts[0].event,
            ContactEvent::Rejected
        );
        assert!(n.is_empty());
        // NEW_SERVER_ASSIGNED: deactivated (the UE registers again)
        n.subscribe(&m, Some(&rec), 1000, "t1");
        let reason = DeregistrationReason {
            code: 1,
            info: None,
        };
        let out = n.on_change(
            &RegEvent::Terminated {
                record: rec.clone(),
                reason,
            },
            1001,
        );
        let (state, info) = notify_of(&out[0]);
        assert_eq!(state, "terminated;reason=deactivated");
        assert_eq!(
            info.registrations[0].contacts[0].event,
            ContactEvent::Deactivated
        );
        // user de-registration: unregistered
        n.subscribe(&m, Some(&rec), 1000, "t1");
        let out = n.on_change(
            &RegEvent::Deregistered {
                record: rec.clone(),
            },
            1001,
        );
        let (_, info) = notify_of(&out[0]);
        assert_eq!(
            info.registrations[0].contacts[0].event,
            ContactEvent::Unregistered
        );
        // unsubscribe (Expires: 0): 200 and a final NOTIFY
        n.subscribe(&m, Some(&rec), 1000, "t1");
        assert_eq!(n.subs.peers.len(), 1);
        // a refresh keeps the one subscription and the one shared contact URI
        let refresh = subscribe(";tag=t1");
        let o = n.subscribe(
            &ims_sip::parse_datagram(&refresh).unwrap(),
            Some(&rec),
            1000,
            "x",
        );
        assert_eq!(o.status, 200);
        assert_eq!((n.subs.len(), n.subs.peers.len()), (1, 1));
        let unsub = String::from_utf8(subscribe(";tag=t1"))
            .unwrap()
            .replace("Expires: 600", "Expires: 0");
        let o = n.subscribe(
            &ims_sip::parse_datagram(unsub.as_bytes()).unwrap(),
            Some(&rec),
            1001,
            "x",
        );
        assert_eq!(o.status, 200);
        let (state, _) = notify_of(&o.notify.unwrap());
        assert_eq!(state, "terminated;reason=timeout");
        assert!(n.is_empty());
        // nobody subscribes from that contact any more: its shared URI is gone too
        assert!(n.subs.peers.is_empty());
        // expiry of the subscription
        let o = n.subscribe(&m, Some(&rec), 1000, "t1");
        // a failed NOTIFY ends it
        let d = o.notify.unwrap().dialog;
        assert_eq!(d, ("sub1".to_string(), "ue1".to_string()));
        assert!(n.remove(&d) && n.is_empty() && !n.remove(&d));
        n.subscribe(&m, Some(&rec), 1000, "t1");
        assert!(n.expire(1599, |_| Some(rec.clone())).is_empty());
        let out = n.expire(1600, |_| Some(rec.clone()));
        assert_eq!(notify_of(&out[0]).0, "terminated;reason=timeout");
        assert!(n.is_empty());
    }

    #[test]
    fn registration_change_reaches_only_the_subscriptions_to_its_set() {
        let alice = record();
        let mut bob = record();
        bob.impu = "sip:bob@ims.example.org".into();
        bob.implicit_set = vec![bob.impu.clone()];
        let mut n = Notifier::new("sip:orig@scscf");
        // alice's set: one subscription to her IMPU, one to her tel URI; bob: one
        let to_alice = subscribe("");
        let to_alice = ims_sip::parse_datagram(&to_alice).unwrap();
        assert_eq!(n.subscribe(&to_alice, Some(&alice), 1000, "t1").status, 200);
        let tel = String::from_utf8(subscribe(""))
            .unwrap()
            .replacen("sip:alice@ims.example.org", "tel:+1555", 1)
            .replace("Call-ID: sub1", "Call-ID: sub2");
        let tel = ims_sip::parse_datagram(tel.as_bytes()).unwrap();
        assert_eq!(n.subscribe(&tel, Some(&alice), 1000, "t2").status, 200);
        let to_bob = String::from_utf8(subscribe(""))
            .unwrap()
            .replace("sip:alice@ims.example.org", "sip:bob@ims.example.org")
            .replace("Call-ID: sub1", "Call-ID: sub3");
        let to_bob = ims_sip::parse_datagram(to_bob.as_bytes()).unwrap();
        assert_eq!(n.subscribe(&to_bob, Some(&bob), 1000, "t3").status, 200);
        assert_eq!(n.len(), 3);
        let registered = |record: &RegistrationRecord| RegEvent::Registered {
            initial: false,
            record: record.clone(),
        };
        let mut dialogs: Vec<String> = n
            .on_change(&registered(&alice), 1001)
            .iter()
            .map(|x| x.dialog.0.clone())
            .collect();
        dialogs.sort();
        assert_eq!(dialogs, ["sub1", "sub2"]);
        let out = n.on_change(&registered(&bob), 1001);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].dialog.0, "sub3");
        // a refresh keeps the dialog reachable; a removed one is gone from the index too
        let refresh = String::from_utf8(subscribe(";tag=t1")).unwrap();
        let refresh = ims_sip::parse_datagram(refresh.as_bytes()).unwrap();
        assert_eq!(n.subscribe(&refresh, Some(&alice), 1002, "x").status, 200);
        assert_eq!(n.on_change(&registered(&alice), 1003).len(), 2);
        assert!(n.remove(&("sub2".to_string(), "ue1".to_string())));
        let out = n.on_change(&registered(&alice), 1004);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].dialog.0, "sub1");
        // de-registration ends alice's subscriptions, bob's stays
        n.on_change(
            &RegEvent::Deregistered {
                record: alice.clone(),
            },
            1005,
        );
        assert_eq!(n.len(), 1);
        assert!(n.on_change(&registered(&alice), 1006).is_empty());
        assert_eq!(n.on_change(&registered(&bob), 1006).len(), 1);
    }

    #[test]
    fn expiry_ends_only_the_subscriptions_due_and_follows_refreshes() {
        let rec = record();
        let mut n = Notifier::new("sip:orig@scscf");
        // three dialogs of 600 s subscribed at 1000, 1100, 1200
        for (i, at) in [(1, 1000), (2, 1100), (3, 1200)] {
            let r = String::from_utf8(subscribe(""))
                .unwrap()
                .replace("Call-ID: sub1", &format!("Call-ID: sub{i}"));
            let r = ims_sip::parse_datagram(r.as_bytes()).unwrap();
            assert_eq!(n.subscribe(&r, Some(&rec), at, "t").status, 200);
        }
        // sub1 refreshed at 1500: it now ends at 2100
        let refresh = String::from_utf8(subscribe(";tag=t")).unwrap();
        let refresh = ims_sip::parse_datagram(refresh.as_bytes()).unwrap();
        assert_eq!(n.subscribe(&refresh, Some(&rec), 1500, "x").status, 200);
        assert!(n.expire(1699, |_| Some(rec.clone())).is_empty());
        let ended =
            |out: Vec<Notify>| -> Vec<String> { out.into_iter().map(|x| x.dialog.0).collect() };
        assert_eq!(ended(n.expire(1700, |_| Some(rec.clone()))), ["sub2"]);
        assert_eq!(ended(n.expire(2099, |_| Some(rec.clone()))), ["sub3"]);
        assert_eq!(n.len(), 1);
        assert_eq!(ended(n.expire(2100, |_| Some(rec.clone()))), ["sub1"]);
        assert!(n.is_empty());
    }
}
