//! A small bounded element tree over quick-xml, enough for the 3GPP and IETF documents the network
//! functions exchange (Cx User-Data, reginfo). Namespaces are dropped (local names only),
//! attributes are kept, comments and processing instructions are skipped.

use quick_xml::events::Event;
use quick_xml::Reader;

/// Bounds on a document, so a hostile peer cannot make us build an unbounded tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct XmlLimits {
    /// Largest accepted document in bytes.
    pub max_size: usize,
    /// Deepest accepted nesting.
    pub max_depth: usize,
    /// Most elements in one document.
    pub max_elements: usize,
}

impl Default for XmlLimits {
    fn default() -> Self {
        XmlLimits {
            max_size: 256 * 1024,
            max_depth: 16,
            max_elements: 20_000,
        }
    }
}

/// What was wrong with an XML document.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum XmlError {
    /// Not well-formed XML (quick-xml's message and the byte offset where reading stopped).
    #[error("malformed XML at byte {offset}: {message}")]
    Malformed {
        /// Byte offset in the document.
        offset: u64,
        /// What the reader reported.
        message: String,
    },
    /// A limit of [`XmlLimits`] was exceeded.
    #[error("XML document exceeds the {0} limit")]
    Limit(&'static str),
    /// No root element.
    #[error("XML document has no root element")]
    Empty,
    /// A required element is missing.
    #[error("missing element <{child}> in <{parent}>")]
    Missing {
        /// The element that should contain it.
        parent: String,
        /// The missing element's name.
        child: &'static str,
    },
    /// An element's text is not a valid value.
    #[error("invalid value {value:?} in <{element}>")]
    Value {
        /// The element.
        element: String,
        /// Its text.
        value: String,
    },
    /// The root element is not the expected one.
    #[error("expected root element <{expected}>, found <{found}>")]
    Root {
        /// The expected name.
        expected: &'static str,
        /// The name found.
        found: String,
    },
}

/// One element: local name, attributes, text content (concatenated, unescaped) and children.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Element {
    /// Local name (no namespace prefix).
    pub name: String,
    /// Attributes as (local name, unescaped value), in document order.
    pub attrs: Vec<(String, String)>,
    /// Character data directly inside this element, trimmed.
    pub text: String,
    /// Child elements in order.
    pub children: Vec<Element>,
}

fn local(name: &[u8]) -> String {
    let n = match name.iter().rposition(|&c| c == b':') {
        Some(i) => &name[i + 1..],
        None => name,
    };
    String::from_utf8_lossy(n).into_owned()
}

impl Element {
    /// Parses a document into its root element.
    pub fn parse(doc: &[u8], limits: &XmlLimits) -> Result<Element, XmlError> {
        if doc.len() > limits.max_size {
            return Err(XmlError::Limit("size"));
        }
        let mut reader = Reader::from_reader(doc);
        reader.config_mut().trim_text(true);
        let mut stack: Vec<Element> = Vec::new();
        let mut count = 0usize;
        let mut root: Option<Element> = None;
        let mut buf = Vec::new();
        let malformed = |r: &Reader<&[u8]>, e: &dyn std::fmt::Display| XmlError::Malformed {
            offset: r.buffer_position(),
            message: e.to_string(),
        };
        loop {
            buf.clear();
            let ev = reader
                .read_event_into(&mut buf)
                .map_err(|e| malformed(&reader, &e))?;
            let is_empty = matches!(ev, Event::Empty(_));
            match ev {
                Event::Start(s) | Event::Empty(s) => {
                    count += 1;
                    if count > limits.max_elements {
                        return Err(XmlError::Limit("element count"));
                    }
                    if stack.len() >= limits.max_depth {
                        return Err(XmlError::Limit("depth"));
                    }
                    if root.is_some() {
                        return Err(XmlError::Malformed {
                            offset: reader.buffer_position(),
                            message: "content after the root element".into(),
                        });
                    }
                    let mut el = Element {
                        name: local(s.name().as_ref()),
                        ..Element::default()
                    };
                    for a in s.attributes() {
                        let a = a.map_err(|e| malformed(&reader, &e))?;
                        let v = a.unescape_value().map_err(|e| malformed(&reader, &e))?;
                        el.attrs.push((local(a.key.as_ref()), v.into_owned()));
                    }
                    if is_empty {
                        match stack.last_mut() {
                            Some(p) => p.children.push(el),
                            None => root = Some(el),
                        }
                    } else {
                        stack.push(el);
                    }
                }
                Event::End(_) => {
                    // quick-xml checks that end names match their start
                    let el = stack.pop().ok_or(XmlError::Malformed {
                        offset: reader.buffer_position(),
                        message: "unbalanced end tag".into(),
                    })?;
                    match stack.last_mut() {
                        Some(p) => p.children.push(el),
                        None => root = Some(el),
                    }
                }
                Event::Text(t) => {
                    let s = t.unescape().map_err(|e| malformed(&reader, &e))?;
                    if let Some(top) = stack.last_mut() {
                        top.text.push_str(s.trim());
                    } else if !s.trim().is_empty() {
                        return Err(XmlError::Malformed {
                            offset: reader.buffer_position(),
                            message: "text outside the root element".into(),
                        });
                    }
                }
                Event::CData(c) => {
                    if let Some(top) = stack.last_mut() {
                        top.text.push_str(&String::from_utf8_lossy(&c));
                    }
                }
                Event::Eof => break,
                Event::Decl(_) | Event::PI(_) | Event::Comment(_) | Event::DocType(_) => {}
            }
        }
        if !stack.is_empty() {
            return Err(XmlError::Malformed {
                offset: reader.buffer_position(),
                message: "unclosed element".into(),
            });
        }
        root.ok_or(XmlError::Empty)
    }

    /// The first child named `name`.
    pub fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }

    /// Every child named `name`.
    pub fn children_named<'s>(&'s self, name: &'s str) -> impl Iterator<Item = &'s Element> + 's {
        self.children.iter().filter(move |c| c.name == name)
    }

    /// The text of the first child named `name`.
    pub fn child_text(&self, name: &str) -> Option<&str> {
        self.child(name).map(|c| c.text.as_str())
    }

    /// The text of a required child.
    pub fn required_text(&self, name: &'static str) -> Result<&str, XmlError> {
        self.child_text(name).ok_or_else(|| XmlError::Missing {
            parent: self.name.clone(),
            child: name,
        })
    }

    /// The value of attribute `name`.
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Escapes text for element content or a double-quoted attribute value.
pub fn escape(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.contains(['<', '>', '&', '"', '\'']) {
        return s.into();
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out.into()
}

/// Appends `<name>text</name>` to `out`.
pub(crate) fn leaf(out: &mut String, name: &str, text: &str) {
    out.push('<');
    out.push_str(name);
    out.push('>');
    out.push_str(&escape(text));
    out.push_str("</");
    out.push_str(name);
    out.push('>');
}

/// `<name>n</name>` with `n` in decimal (as `Display` writes it), without the formatting
/// machinery: profiles are written on every registration.
pub(crate) fn leaf_int(out: &mut String, name: &str, n: i64) {
    out.push('<');
    out.push_str(name);
    out.push('>');
    if n < 0 {
        out.push('-');
    }
    ims_sip::push_decimal(out, n.unsigned_abs());
    out.push_str("</");
    out.push_str(name);
    out.push('>');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tree_with_namespaces_entities_and_attributes() {
        let doc = br#"<?xml version="1.0"?><!-- c --><r:root xmlns:r="urn:x" a="1&amp;2"><a> x &lt; y </a><b/><a>2</a></r:root>"#;
        let r = Element::parse(doc, &XmlLimits::default()).unwrap();
        assert_eq!(r.name, "root");
        assert_eq!(r.attr("a"), Some("1&2"));
        assert_eq!(r.child_text("a"), Some("x < y"));
        assert_eq!(r.children_named("a").count(), 2);
        assert!(r.child("b").is_some());
    }

    #[test]
    fn limits_and_malformed() {
        let deep = "<a>".repeat(40) + &"</a>".repeat(40);
        assert_eq!(
            Element::parse(deep.as_bytes(), &XmlLimits::default()),
            Err(XmlError::Limit("depth"))
        );
        assert!(matches!(
            Element::parse(b"<a><b></a>", &XmlLimits::default()),
            Err(XmlError::Malformed { .. })
        ));
        assert!(matches!(
            Element::parse(b"<a></a><b/>", &XmlLimits::default()),
            Err(XmlError::Malformed { .. })
        ));
        assert_eq!(
            Element::parse(b"  ", &XmlLimits::default()),
            Err(XmlError::Empty)
        );
        assert!(Element::parse(b"<a>", &XmlLimits::default()).is_err());
    }

    #[test]
    fn escape_round_trip() {
        let s = "a<b>&\"c'";
        let doc = format!("<x>{}</x>", escape(s));
        assert_eq!(
            Element::parse(doc.as_bytes(), &XmlLimits::default())
                .unwrap()
                .text,
            s
        );
    }
}
