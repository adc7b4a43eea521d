//! Scalar and simple headers: Call-ID, CSeq, Max-Forwards, Expires, Min-Expires, Content-Length,
//! RSeq, RAck, Session-Expires, Min-SE, Retry-After, Date, Timestamp, Subject, User-Agent, Server,
//! Priority, In-Reply-To.

use super::{whole, TypedHeader};
use crate::error::{ErrorKind, ParseError};
use crate::method::Method;
use crate::params::Params;
use crate::scan::{Cursor, WORD};
use crate::HeaderName;
use std::fmt;

fn number(c: &mut Cursor<'_>, what: &'static str) -> Result<u32, ParseError> {
    let at = c.pos;
    let d = c.digits();
    crate::scan::parse_u32(d, what).map_err(|e| ParseError {
        offset: e.offset + at,
        ..e
    })
}

/// Call-ID (RFC 3261 §20.8): `callid = word [ "@" word ]`, compared byte for byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CallId<'a>(pub &'a str);

impl<'a> TypedHeader<'a> for CallId<'a> {
    const NAME: HeaderName = HeaderName::CallId;
    fn parse(s: &'a str) -> Result<Self, ParseError> {
        whole(s, |c| {
            let start = c.pos;
            if c.take_class(&WORD).is_empty() {
                return Err(c.err("word"));
            }
            if c.eat(b'@') && c.take_class(&WORD).is_empty() {
                return Err(c.err("word after '@'"));
            }
            Ok(CallId(&c.s[start..c.pos]))
        })
    }
}

impl<'a> CallId<'a> {
    /// The Call-ID text.
    pub fn as_str(&self) -> &'a str {
        self.0
    }
}

impl fmt::Display for CallId<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

/// In-Reply-To (RFC 3261 §20.21): one Call-ID per list element.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InReplyTo<'a>(pub CallId<'a>);

impl<'a> TypedHeader<'a> for InReplyTo<'a> {
    const NAME: HeaderName = HeaderName::InReplyTo;
    const LIST: bool = true;
    fn parse(s: &'a str) -> Result<Self, ParseError> {
        CallId::parse(s).map(InReplyTo)
    }
}

impl fmt::Display for InReplyTo<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// CSeq (RFC 3261 §20.16): `1*DIGIT LWS Method`.
///
/// ```
/// use ims_sip::{headers::{CSeq, TypedHeader}, Method};
/// let c = CSeq::parse("4711 INVITE").unwrap();
/// assert_eq!((c.seq, c.method), (4711, Method::Invite));
/// assert!(CSeq::parse("36893488147419103232 INVITE").is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CSeq<'a> {
    /// The sequence number (a 32-bit unsigned integer).
    pub seq: u32,
    /// The method.
    pub method: Method<'a>,
}

impl<'a> TypedHeader<'a> for CSeq<'a> {
    const NAME: HeaderName = HeaderName::CSeq;
    fn parse(s: &'a str) -> Result<Self, ParseError> {
        whole(s, |c| {
            let seq = number(c, "CSeq number")?;
            let before = c.pos;
            c.skip_lws();
            if c.pos == before {
                return Err(c.err("LWS"));
            }
            let m = c.token("Method")?;
            Ok(CSeq {
                seq,
                method: Method::from_token(m),
            })
        })
    }
}

impl fmt::Display for CSeq<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.seq, self.method)
    }
}

/// RAck (RFC 3262 §7.2): `response-num LWS CSeq-num LWS Method`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RAck<'a> {
    /// The RSeq of the acknowledged response.
    pub rseq: u32,
    /// The CSeq number of the request it answered.
    pub cseq: u32,
    /// The method of that request.
    pub method: Method<'a>,
}

impl<'a> TypedHeader<'a> for RAck<'a> {
    const NAME: HeaderName = HeaderName::RAck;
    fn parse(s: &'a str) -> Result<Self, ParseError> {
        whole(s, |c| {
            let rseq = number(c, "response-num")?;
            c.skip_lws();
            let cseq = number(c, "CSeq-num")?;
            c.skip_lws();
            let m = c.token("Method")?;
            Ok(RAck {
                rseq,
                cseq,
                method: Method::from_token(m),
            })
        })
    }
}

impl fmt::Display for RAck<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {}", self.rseq, self.cseq, self.method)
    }
}

macro_rules! number_header {
    ($(#[$doc:meta])* $ty:ident, $name:ident, $int:ty, $what:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $ty(pub $int);

        impl<'a> TypedHeader<'a> for $ty {
            const NAME: HeaderName = HeaderName::$name;
            fn parse(s: &'a str) -> Result<Self, ParseError> {
                whole(s, |c| {
                    let at = c.pos;
                    let v = number(c, $what)?;
                    <$int>::try_from(v).map($ty).map_err(|_| ParseError::new(ErrorKind::Overflow($what), at))
                })
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}", self.0)
            }
        }
    };
}

number_header!(
    /// Max-Forwards (RFC 3261 §20.22): 0 to 255.
    MaxForwards, MaxForwards, u8, "Max-Forwards");
number_header!(
    /// Expires (RFC 3261 §20.19): delta-seconds.
    Expires, Expires, u32, "Expires");
number_header!(
    /// Min-Expires (RFC 3261 §20.23): delta-seconds.
    MinExpires, MinExpires, u32, "Min-Expires");
number_header!(
    /// Content-Length (RFC 3261 §20.14).
    ContentLength, ContentLength, u32, "Content-Length");
number_header!(
    /// RSeq (RFC 3262 §7.1): 1 to 2^31-1.
    RSeq, RSeq, u32, "RSeq");

/// Session-Expires (RFC 4028 §4): `delta-seconds *( SEMI se-params )`, `refresher=uac|uas`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionExpires<'a> {
    /// The session interval in seconds.
    pub delta: u32,
    /// Parameters (`refresher`, extensions).
    pub params: Params<'a>,
}

impl<'a> SessionExpires<'a> {
    /// The `refresher` parameter (`uac` or `uas`).
    pub fn refresher(&self) -> Option<&'a str> {
        self.params.get("refresher").flatten()
    }
}

/// Min-SE (RFC 4028 §5): `delta-seconds *( SEMI generic-param )`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MinSe<'a> {
    /// The minimum session interval in seconds.
    pub delta: u32,
    /// Extension parameters.
    pub params: Params<'a>,
}

/// Retry-After (RFC 3261 §20.33): `delta-seconds [ comment ] *( SEMI retry-param )`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryAfter<'a> {
    /// Seconds to wait.
    pub delta: u32,
    /// The comment, with its parentheses, if any.
    pub comment: Option<&'a str>,
    /// Parameters (`duration`, extensions).
    pub params: Params<'a>,
}

fn comment<'a>(c: &mut Cursor<'a>) -> Result<&'a str, ParseError> {
    // comment = LPAREN *(ctext / quoted-pair / comment) RPAREN
    let start = c.pos;
    let b = c.bytes();
    let mut depth = 0usize;
    while c.pos < b.len() {
        match b[c.pos] {
            b'(' => depth += 1,
            b')' => {
                depth -= 1;
                if depth == 0 {
                    c.pos += 1;
                    return Ok(&c.s[start..c.pos]);
                }
            }
            b'\\' => c.pos += 1,
            _ => {}
        }
        if depth > 32 {
            return Err(c.err("comment nesting"));
        }
        c.pos += 1;
    }
    Err(ParseError::syntax("')'", start))
}

macro_rules! delta_params {
    ($ty:ident, $name:ident) => {
        impl<'a> TypedHeader<'a> for $ty<'a> {
            const NAME: HeaderName = HeaderName::$name;
            fn parse(s: &'a str) -> Result<Self, ParseError> {
                whole(s, |c| {
                    let delta = number(c, "delta-seconds")?;
                    let params = Params::parse_header(c)?;
                    Ok($ty { delta, params })
                })
            }
        }
        impl fmt::Display for $ty<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}{}", self.delta, self.params)
            }
        }
    };
}
delta_params!(SessionExpires, SessionExpires);
delta_params!(MinSe, MinSe);

impl<'a> TypedHeader<'a> for RetryAfter<'a> {
    const NAME: HeaderName = HeaderName::RetryAfter;
    fn parse(s: &'a str) -> Result<Self, ParseError> {
        whole(s, |c| {
            let delta = number(c, "delta-seconds")?;
            let save = c.pos;
            c.skip_lws();
            let cm = if c.peek() == Some(b'(') {
                Some(comment(c)?)
            } else {
                c.pos = save;
                None
            };
            let params = Params::parse_header(c)?;
            Ok(RetryAfter {
                delta,
                comment: cm,
                params,
            })
        })
    }
}

impl fmt::Display for RetryAfter<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.delta)?;
        if let Some(c) = self.comment {
            write!(f, " {c}")?;
        }
        write!(f, "{}", self.params)
    }
}

/// Date (RFC 3261 §20.17): `rfc1123-date`, which must be in GMT.
///
/// ```
/// use ims_sip::headers::{Date, TypedHeader};
/// let d = Date::parse("Sat, 13 Nov 2010 23:29:00 GMT").unwrap();
/// assert_eq!((d.year, d.month, d.day, d.hour), (2010, 11, 13, 23));
/// assert!(Date::parse("Fri, 01 Jan 2010 16:00:00 EST").is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Date {
    /// Day of the week, 0 = Monday.
    pub weekday: u8,
    /// Day of the month.
    pub day: u8,
    /// Month, 1 to 12.
    pub month: u8,
    /// Year.
    pub year: u16,
    /// Hour.
    pub hour: u8,
    /// Minute.
    pub minute: u8,
    /// Second.
    pub second: u8,
}

const WKDAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

impl<'a> TypedHeader<'a> for Date {
    const NAME: HeaderName = HeaderName::Date;
    fn parse(s: &'a str) -> Result<Self, ParseError> {
        // wkday "," SP 2DIGIT SP month SP 4DIGIT SP 2DIGIT ":" 2DIGIT ":" 2DIGIT SP "GMT"
        let b = s.as_bytes();
        let err = |at| ParseError::syntax("rfc1123-date", at);
        if b.len() != 29
            || &b[3..5] != b", "
            || b[7] != b' '
            || b[11] != b' '
            || b[16] != b' '
            || b[19] != b':'
            || b[22] != b':'
            || b[25] != b' '
        {
            return Err(err(0));
        }
        if &s[26..] != "GMT" {
            return Err(ParseError::syntax("\"GMT\"", 26));
        }
        let num = |r: std::ops::Range<usize>| -> Result<u16, ParseError> {
            let d = &b[r.clone()];
            if !d.iter().all(u8::is_ascii_digit) {
                return Err(err(r.start));
            }
            Ok(d.iter().fold(0u16, |a, &c| a * 10 + u16::from(c - b'0')))
        };
        let weekday = WKDAYS.iter().position(|w| *w == &s[..3]).ok_or(err(0))? as u8;
        let month = MONTHS.iter().position(|m| *m == &s[8..11]).ok_or(err(8))? as u8 + 1;
        let d = Date {
            weekday,
            day: num(5..7)? as u8,
            month,
            year: num(12..16)?,
            hour: num(17..19)? as u8,
            minute: num(20..22)? as u8,
            second: num(23..25)? as u8,
        };
        if d.day == 0 || d.day > 31 || d.hour > 23 || d.minute > 59 || d.second > 60 {
            return Err(err(5));
        }
        Ok(d)
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}, {:02} {} {:04} {:02}:{:02}:{:02} GMT",
            WKDAYS[self.weekday as usize % 7],
            self.day,
            MONTHS[(self.month as usize + 11) % 12],
            self.year,
            self.hour,
            self.minute,
            self.second
        )
    }
}

/// Timestamp (RFC 3261 §20.38): `1*(DIGIT) [ "." *(DIGIT) ] [ LWS delay ]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timestamp<'a> {
    /// The timestamp as written.
    pub value: &'a str,
    /// The delay as written, if any.
    pub delay: Option<&'a str>,
}

fn decimal<'a>(c: &mut Cursor<'a>, what: &'static str) -> Result<&'a str, ParseError> {
    let start = c.pos;
    let i = c.digits();
    if c.eat(b'.') {
        c.digits();
    } else if i.is_empty() {
        return Err(c.err(what));
    }
    if c.pos == start || &c.s[start..c.pos] == "." {
        return Err(c.err(what));
    }
    Ok(&c.s[start..c.pos])
}

impl<'a> TypedHeader<'a> for Timestamp<'a> {
    const NAME: HeaderName = HeaderName::Timestamp;
    fn parse(s: &'a str) -> Result<Self, ParseError> {
        whole(s, |c| {
            let value = decimal(c, "timestamp")?;
            if c.at_end() {
                return Ok(Timestamp { value, delay: None });
            }
            c.skip_lws();
            let delay = decimal(c, "delay")?;
            Ok(Timestamp {
                value,
                delay: Some(delay),
            })
        })
    }
}

impl fmt::Display for Timestamp<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.value)?;
        if let Some(d) = self.delay {
            write!(f, " {d}")?;
        }
        Ok(())
    }
}

fn check_text(s: &str) -> Result<(), ParseError> {
    match s
        .bytes()
        .position(|c| (c < 0x20 && !matches!(c, b'\t' | b'\r' | b'\n')) || c == 0x7f)
    {
        Some(p) => Err(ParseError::syntax("TEXT-UTF8", p)),
        None => Ok(()),
    }
}

macro_rules! text_header {
    ($(#[$doc:meta])* $ty:ident, $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub struct $ty<'a>(pub &'a str);

        impl<'a> TypedHeader<'a> for $ty<'a> {
            const NAME: HeaderName = HeaderName::$name;
            fn parse(s: &'a str) -> Result<Self, ParseError> {
                check_text(s)?;
                Ok($ty(s))
            }
        }

        impl fmt::Display for $ty<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.0)
            }
        }
    };
}

text_header!(
    /// Subject (RFC 3261 §20.36): free text, may be empty.
    Subject, Subject);
text_header!(
    /// User-Agent (RFC 3261 §20.41): product tokens and comments, as written.
    UserAgent, UserAgent);
text_header!(
    /// Server (RFC 3261 §20.35): product tokens and comments, as written.
    Server, Server);

/// Priority (RFC 3261 §20.26): `emergency`, `urgent`, `normal`, `non-urgent` or an extension token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Priority<'a>(pub &'a str);

impl<'a> TypedHeader<'a> for Priority<'a> {
    const NAME: HeaderName = HeaderName::Priority;
    fn parse(s: &'a str) -> Result<Self, ParseError> {
        whole(s, |c| c.token("priority-value").map(Priority))
    }
}

impl fmt::Display for Priority<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}
