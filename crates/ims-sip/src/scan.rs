//! Character classes of RFC 3261 §25.1 as lookup tables, and a small cursor the typed parsers share.

use crate::error::ParseError;

macro_rules! byte_table {
    ($name:ident, |$c:ident: u8| $e:expr) => {
        pub(crate) static $name: [bool; 256] = {
            let mut t = [false; 256];
            let mut i = 0;
            while i < 256 {
                let $c = i as u8;
                t[i] = $e;
                i += 1;
            }
            t
        };
    };
}

pub(crate) use byte_table;

const fn is_alnum(c: u8) -> bool {
    c.is_ascii_alphanumeric()
}
const fn is_mark(c: u8) -> bool {
    matches!(
        c,
        b'-' | b'_' | b'.' | b'!' | b'~' | b'*' | b'\'' | b'(' | b')'
    )
}
const fn is_unreserved(c: u8) -> bool {
    is_alnum(c) || is_mark(c)
}

// token = 1*(alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" / "'" / "~")
byte_table!(TOKEN, |c: u8| is_alnum(c)
    || matches!(
        c,
        b'-' | b'.' | b'!' | b'%' | b'*' | b'_' | b'+' | b'`' | b'\'' | b'~'
    ));
// user = 1*( unreserved / escaped / user-unreserved ); '%' handled by the escape check
byte_table!(USER, |c: u8| is_unreserved(c)
    || matches!(
        c,
        b'&' | b'=' | b'+' | b'$' | b',' | b';' | b'?' | b'/' | b'%'
    ));
// password = *( unreserved / escaped / "&" / "=" / "+" / "$" / "," )
byte_table!(PASSWORD, |c: u8| is_unreserved(c)
    || matches!(c, b'&' | b'=' | b'+' | b'$' | b',' | b'%'));
// paramchar = param-unreserved / unreserved / escaped
byte_table!(PARAMCHAR, |c: u8| is_unreserved(c)
    || matches!(
        c,
        b'[' | b']' | b'/' | b':' | b'&' | b'+' | b'$' | b'%'
    ));
// hname / hvalue characters: hnv-unreserved / unreserved / escaped
byte_table!(HNV, |c: u8| is_unreserved(c)
    || matches!(
        c,
        b'[' | b']' | b'/' | b'?' | b':' | b'+' | b'$' | b'%'
    ));
// uric = reserved / unreserved / escaped (absoluteURI), plus brackets for IPv6 literals
byte_table!(URIC, |c: u8| is_unreserved(c)
    || matches!(
        c,
        b';' | b'/'
            | b'?'
            | b':'
            | b'@'
            | b'&'
            | b'='
            | b'+'
            | b'$'
            | b','
            | b'%'
            | b'['
            | b']'
            | b'#'
    ));
// word = 1*(alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" / "'" / "~" /
//        "(" / ")" / "<" / ">" / ":" / "\" / DQUOTE / "/" / "[" / "]" / "?" / "{" / "}" )
byte_table!(WORD, |c: u8| TOKEN_FN(c)
    || matches!(
        c,
        b'(' | b')' | b'<' | b'>' | b':' | b'\\' | b'"' | b'/' | b'[' | b']' | b'?' | b'{' | b'}'
    ));

#[allow(non_snake_case)]
const fn TOKEN_FN(c: u8) -> bool {
    is_alnum(c)
        || matches!(
            c,
            b'-' | b'.' | b'!' | b'%' | b'*' | b'_' | b'+' | b'`' | b'\'' | b'~'
        )
}

#[inline]
pub(crate) fn is_token(s: &[u8]) -> bool {
    !s.is_empty() && s.iter().all(|&c| TOKEN[c as usize])
}

/// The first `c` in `b`: a plain loop for the short strings of URIs and header values (cheaper
/// than a SIMD call's set-up), `memchr` for long ones.
#[inline]
pub(crate) fn find(b: &[u8], c: u8) -> Option<usize> {
    if b.len() <= 64 {
        b.iter().position(|&x| x == c)
    } else {
        memchr::memchr(c, b)
    }
}

/// `escaped = "%" HEXDIG HEXDIG` everywhere `%` occurs; the class table already allowed `%`.
pub(crate) fn check_escapes(s: &[u8]) -> Option<usize> {
    let mut i = 0;
    while let Some(p) = find(&s[i..], b'%') {
        let at = i + p;
        if at + 2 >= s.len() || !(s[at + 1].is_ascii_hexdigit() && s[at + 2].is_ascii_hexdigit()) {
            return Some(at);
        }
        i = at + 3;
    }
    None
}

/// Checks `s` against a class table with `%` escapes; returns the offset of the first bad byte.
#[inline]
pub(crate) fn check_class(s: &[u8], table: &[bool; 256]) -> Option<usize> {
    if let Some(p) = s.iter().position(|&c| !table[c as usize]) {
        return Some(p);
    }
    check_escapes(s)
}

/// Whitespace inside a header value: SP, HTAB, and the CR LF of a fold (the message parser has
/// already checked that every CR LF inside a value is followed by SP or HTAB).
#[inline]
pub(crate) const fn is_lws(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\r' | b'\n')
}

/// Where a piece of text lies inside a larger one (`start..end` byte offsets): a parsed value
/// kept without borrowing its message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Span {
    start: u32,
    end: u32,
}

impl Span {
    /// Where `part` lies inside `base`; `None` when it is not a slice of `base` (an empty part
    /// is the empty span at 0: any empty slice reads the same).
    pub(crate) fn of(base: &str, part: &str) -> Option<Span> {
        if part.is_empty() {
            return Some(Span { start: 0, end: 0 });
        }
        let start = (part.as_ptr() as usize).checked_sub(base.as_ptr() as usize)?;
        let end = start.checked_add(part.len())?;
        if end > base.len() {
            return None;
        }
        Some(Span {
            start: u32::try_from(start).ok()?,
            end: u32::try_from(end).ok()?,
        })
    }
    /// The span `start..end`; `None` when it is reversed or leaves `u32`.
    pub(crate) fn from_range(start: usize, end: usize) -> Option<Span> {
        (start <= end).then_some(())?;
        Some(Span {
            start: u32::try_from(start).ok()?,
            end: u32::try_from(end).ok()?,
        })
    }
    /// The first offset.
    #[inline]
    pub(crate) fn start(self) -> usize {
        self.start as usize
    }
    /// The offset after the last byte.
    #[inline]
    pub(crate) fn end(self) -> usize {
        self.end as usize
    }
    /// The text at this span of `base`; `None` when it does not fit.
    #[inline]
    pub(crate) fn get(self, base: &str) -> Option<&str> {
        base.get(self.start as usize..self.end as usize)
    }
    /// The span of the same text moved `by` bytes (the line it lies in was copied to another
    /// offset); the empty span stays (it reads the same anywhere). `None` when it leaves `u32`.
    #[inline]
    pub(crate) fn shifted(self, by: i64) -> Option<Span> {
        if self.end == self.start {
            return Some(self);
        }
        let at = |x: u32| u32::try_from(i64::from(x) + by).ok();
        Some(Span {
            start: at(self.start)?,
            end: at(self.end)?,
        })
    }
}

/// A cursor over one header value (or part of one). Offsets in errors are relative to `base`.
#[derive(Clone, Copy)]
pub(crate) struct Cursor<'a> {
    pub(crate) s: &'a str,
    pub(crate) pos: usize,
}

impl<'a> Cursor<'a> {
    pub(crate) fn new(s: &'a str) -> Self {
        Cursor { s, pos: 0 }
    }
    #[inline]
    pub(crate) fn bytes(&self) -> &'a [u8] {
        self.s.as_bytes()
    }
    #[inline]
    pub(crate) fn peek(&self) -> Option<u8> {
        self.bytes().get(self.pos).copied()
    }
    #[inline]
    pub(crate) fn at_end(&self) -> bool {
        self.pos >= self.s.len()
    }
    pub(crate) fn rest(&self) -> &'a str {
        &self.s[self.pos..]
    }
    pub(crate) fn err(&self, what: &'static str) -> ParseError {
        ParseError::syntax(what, self.pos)
    }
    #[inline]
    pub(crate) fn skip_lws(&mut self) {
        let b = self.bytes();
        while self.pos < b.len() && is_lws(b[self.pos]) {
            self.pos += 1;
        }
    }
    /// Consumes `c` surrounded by optional LWS (the SWS c SWS separators of §25.1).
    pub(crate) fn sep(&mut self, c: u8) -> bool {
        let save = self.pos;
        self.skip_lws();
        if self.peek() == Some(c) {
            self.pos += 1;
            self.skip_lws();
            true
        } else {
            self.pos = save;
            false
        }
    }
    #[inline]
    pub(crate) fn eat(&mut self, c: u8) -> bool {
        if self.peek() == Some(c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }
    pub(crate) fn expect(&mut self, c: u8, what: &'static str) -> Result<(), ParseError> {
        if self.eat(c) {
            Ok(())
        } else {
            Err(self.err(what))
        }
    }
    /// Takes bytes while `table` allows them.
    #[inline]
    pub(crate) fn take_class(&mut self, table: &[bool; 256]) -> &'a str {
        let start = self.pos;
        let b = self.bytes();
        while self.pos < b.len() && table[b[self.pos] as usize] {
            self.pos += 1;
        }
        &self.s[start..self.pos]
    }
    pub(crate) fn token(&mut self, what: &'static str) -> Result<&'a str, ParseError> {
        let t = self.take_class(&TOKEN);
        if t.is_empty() {
            Err(self.err(what))
        } else {
            Ok(t)
        }
    }
    pub(crate) fn digits(&mut self) -> &'a str {
        let start = self.pos;
        let b = self.bytes();
        while self.pos < b.len() && b[self.pos].is_ascii_digit() {
            self.pos += 1;
        }
        &self.s[start..self.pos]
    }
    /// `quoted-string = SWS DQUOTE *(qdtext / quoted-pair) DQUOTE`; returns it with its quotes.
    pub(crate) fn quoted_string(&mut self) -> Result<&'a str, ParseError> {
        let start = self.pos;
        if !self.eat(b'"') {
            return Err(self.err("quoted-string"));
        }
        let b = self.bytes();
        loop {
            let Some(q) = memchr::memchr2(b'"', b'\\', &b[self.pos..]) else {
                return Err(ParseError::syntax("closing DQUOTE", start));
            };
            // qdtext = LWS / %x21 / %x23-5B / %x5D-7E / UTF8-NONASCII: no other control bytes
            let run = &b[self.pos..self.pos + q];
            if let Some(bad) = bad_qdtext(run) {
                return Err(ParseError::syntax("qdtext", self.pos + bad));
            }
            self.pos += q;
            if b[self.pos] == b'"' {
                self.pos += 1;
                return Ok(&self.s[start..self.pos]);
            }
            // quoted-pair = "\" (%x00-09 / %x0B-0C / %x0E-7F)
            match b.get(self.pos + 1) {
                Some(&c) if c <= 0x7f && c != b'\n' && c != b'\r' => self.pos += 2,
                _ => return Err(ParseError::syntax("quoted-pair", self.pos)),
            }
        }
    }
}

/// A byte qdtext refuses: a control byte other than HT, CR and LF, or DEL.
#[inline]
fn not_qdtext(c: u8) -> bool {
    (c < 0x20 && !matches!(c, b'\t' | b'\r' | b'\n')) || c == 0x7f
}

/// The offset of the first byte of `run` that qdtext refuses ([`not_qdtext`]). Eight bytes at a
/// time while none is below 0x20 or DEL (the usual quoted string: a nonce, a URI, a name), then
/// byte by byte from the word that has one.
fn bad_qdtext(run: &[u8]) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let mut i = 0;
    while let Some(w) = run.get(i..i + 8) {
        let x = u64::from_le_bytes(w.try_into().expect("a slice of 8 bytes"));
        // a byte below 0x20 sets its high bit in `below`; a DEL is a zero byte of `x ^ DEL`
        let below = x.wrapping_sub(ONES * 0x20) & !x & HIGH;
        let d = x ^ (ONES * 0x7f);
        let del = d.wrapping_sub(ONES) & !d & HIGH;
        if below | del != 0 {
            break;
        }
        i += 8;
    }
    run[i..].iter().position(|&c| not_qdtext(c)).map(|p| i + p)
}

/// Removes the surrounding quotes of a quoted-string and resolves its quoted-pairs.
pub fn unquote(s: &str) -> std::borrow::Cow<'_, str> {
    let inner = match s.strip_prefix('"').and_then(|t| t.strip_suffix('"')) {
        Some(i) => i,
        None => return std::borrow::Cow::Borrowed(s),
    };
    if !inner.contains('\\') {
        return std::borrow::Cow::Borrowed(inner);
    }
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(n) = chars.next() {
                out.push(n);
            }
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

/// Writes `s` as a quoted-string, escaping `"` and `\`.
pub(crate) fn write_quoted(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
}

/// Splits a list header value at top-level commas (not inside quotes or `<>`), RFC 3261 §7.3.1.
/// Yields `(offset, element)` with LWS trimmed; an empty element is yielded as empty so callers
/// can reject it.
pub(crate) struct CommaSplit<'a> {
    s: &'a str,
    pos: usize,
    done: bool,
}

impl<'a> CommaSplit<'a> {
    pub(crate) fn new(s: &'a str) -> Self {
        CommaSplit {
            s,
            pos: 0,
            done: false,
        }
    }
}

impl<'a> Iterator for CommaSplit<'a> {
    type Item = (usize, &'a str);
    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let b = self.s.as_bytes();
        let start = self.pos;
        let mut i = start;
        // jump from one special byte to the next: ',' ends an element unless inside "..." or <...>
        while let Some(p) = memchr::memchr3(b',', b'"', b'<', &b[i..]) {
            i += p;
            match b[i] {
                b',' => break,
                b'"' => {
                    // skip the quoted string, honouring quoted-pairs
                    i += 1;
                    loop {
                        match memchr::memchr2(b'"', b'\\', &b[i..]) {
                            None => i = b.len(),
                            Some(q) if b[i + q] == b'\\' => {
                                i = (i + q + 2).min(b.len());
                                continue;
                            }
                            Some(q) => i += q + 1,
                        }
                        break;
                    }
                }
                // a URI in <...> holds no quotes
                _ => i = memchr::memchr(b'>', &b[i..]).map_or(b.len(), |q| i + q + 1),
            }
        }
        if i >= b.len() || b[i] != b',' {
            i = b.len();
        }
        let end = i;
        if i >= b.len() {
            self.done = true;
        } else {
            self.pos = i + 1;
        }
        let mut s0 = start;
        let mut e0 = end;
        while s0 < e0 && is_lws(b[s0]) {
            s0 += 1;
        }
        while e0 > s0 && is_lws(b[e0 - 1]) {
            e0 -= 1;
        }
        Some((s0, &self.s[s0..e0]))
    }
}

/// Parses a decimal number that must fit in `u32`; `what` names the field for the error.
pub(crate) fn parse_u32(s: &str, what: &'static str) -> Result<u32, ParseError> {
    if s.is_empty() || !s.bytes().all(|c| c.is_ascii_digit()) {
        return Err(ParseError::syntax(what, 0));
    }
    let mut v: u64 = 0;
    for c in s.bytes() {
        v = v * 10 + u64::from(c - b'0');
        if v > u64::from(u32::MAX) {
            return Err(ParseError::new(crate::ErrorKind::Overflow(what), 0));
        }
    }
    Ok(v as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// The word-at-a-time scan finds the byte the byte-by-byte one finds, on any bytes.
        #[test]
        fn qdtext_faults_are_found_as_byte_by_byte(
            run in proptest::collection::vec(proptest::prop_oneof![
                0x20u8..0x7f, 0u8..0x20, proptest::strategy::Just(0x7fu8), 0x80u8..=0xff,
            ], 0..40),
            clean in proptest::collection::vec(0x20u8..0x7f, 0..40),
        ) {
            let naive = |r: &[u8]| r.iter().position(|&c| not_qdtext(c));
            proptest::prop_assert_eq!(bad_qdtext(&run), naive(&run));
            // a long clean run with the odd bytes after it
            let mut v = clean.clone();
            v.extend_from_slice(&run);
            proptest::prop_assert_eq!(bad_qdtext(&v), naive(&v));
        }
    }

    #[test]
    fn qdtext_faults_at_every_offset_are_found() {
        for len in 0..24 {
            for at in 0..len {
                for c in [0u8, 0x1f, 0x7f, b'\t', b'\r', b'\n', 0x80, 0xff, b' ', b'~'] {
                    let mut v = vec![b'a'; len];
                    v[at] = c;
                    let want = v.iter().position(|&c| not_qdtext(c));
                    assert_eq!(bad_qdtext(&v), want, "{len} {at} {c:#x}");
                }
            }
        }
    }

    fn split(s: &str) -> Vec<&str> {
        CommaSplit::new(s).map(|(_, e)| e).collect()
    }

    #[test]
    fn comma_split_respects_quotes_and_angles() {
        assert_eq!(split("a, b ,c"), ["a", "b", "c"]);
        assert_eq!(
            split(r#""x, \"y," <sip:a,b@h>;p=1, <sip:c>"#),
            [r#""x, \"y," <sip:a,b@h>;p=1"#, "<sip:c>"]
        );
        assert_eq!(split("a,,b"), ["a", "", "b"]);
        assert_eq!(split("a,"), ["a", ""]);
        assert_eq!(split(""), [""]);
        assert_eq!(split(r#""unterminated, x"#), [r#""unterminated, x"#]);
        assert_eq!(split("<sip:open, x"), ["<sip:open, x"]);
    }

    #[test]
    fn quoted_strings() {
        let mut c = Cursor::new(r#""a\"b" rest"#);
        assert_eq!(c.quoted_string().unwrap(), r#""a\"b""#);
        assert!(Cursor::new("\"abc").quoted_string().is_err());
        assert!(Cursor::new("\"a\x01b\"").quoted_string().is_err());
        assert!(Cursor::new("\"a\\\nb\"").quoted_string().is_err());
        assert_eq!(
            Cursor::new("\"\\\x00\"").quoted_string().unwrap(),
            "\"\\\x00\""
        );
    }
}
