//! Token lists, media types, event, reason, warning, caller preferences, security agreement and the
//! 3GPP P-headers.

use super::{whole, TypedHeader};
use crate::error::ParseError;
use crate::method::Method;
use crate::params::Params;
use crate::scan::TOKEN;
use crate::HeaderName;
use std::fmt;

/// `token *( SEMI generic-param )`: the shape of Event, Subscription-State, Content-Disposition,
/// Reason, P-Access-Network-Info and Security-* values.
fn token_params<'a>(s: &'a str, what: &'static str) -> Result<(&'a str, Params<'a>), ParseError> {
    whole(s, |c| {
        let t = c.token(what)?;
        let p = Params::parse_header(c)?;
        Ok((t, p))
    })
}

/// `generic-param *( SEMI generic-param )` without a leading `;` (P-Charging-Vector and
/// P-Charging-Function-Addresses).
fn bare_params(s: &str) -> Result<Params<'_>, ParseError> {
    whole(s, |c| {
        let start = c.pos;
        c.token("parameter name")?;
        if c.sep(b'=') {
            if c.peek() == Some(b'"') {
                c.quoted_string()?;
            } else if c.take_class(&GEN).is_empty() {
                return Err(c.err("parameter value"));
            }
        }
        Params::parse_header(c)?;
        Ok(Params::from_raw(&c.s[start..c.pos], false))
    })
}

crate::scan::byte_table!(GEN, |c: u8| TOKEN[c as usize]
    || matches!(c, b':' | b'[' | b']'));

macro_rules! token_list {
    ($(#[$doc:meta])* $ty:ident, $name:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub struct $ty<'a>(pub &'a str);

        impl<'a> TypedHeader<'a> for $ty<'a> {
            const NAME: HeaderName = HeaderName::$name;
            const LIST: bool = true;
            fn parse(s: &'a str) -> Result<Self, ParseError> {
                whole(s, |c| c.token($what).map($ty))
            }
        }

        impl fmt::Display for $ty<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.0)
            }
        }
    };
}

token_list!(
    /// One Supported option-tag (RFC 3261 §20.37).
    Supported, Supported, "option-tag");
token_list!(
    /// One Require option-tag (RFC 3261 §20.32).
    Require, Require, "option-tag");
token_list!(
    /// One Proxy-Require option-tag (RFC 3261 §20.29).
    ProxyRequire, ProxyRequire, "option-tag");
token_list!(
    /// One Unsupported option-tag (RFC 3261 §20.40).
    Unsupported, Unsupported, "option-tag");
token_list!(
    /// One Allow-Events event type (RFC 6665 §8.2.2).
    AllowEvents, AllowEvents, "event-type");
token_list!(
    /// One Content-Encoding content-coding (RFC 3261 §20.12).
    ContentEncoding, ContentEncoding, "content-coding");
token_list!(
    /// One Request-Disposition directive (RFC 3841 §10).
    RequestDisposition, RequestDisposition, "directive");

/// One Allow method (RFC 3261 §20.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Allow<'a>(pub Method<'a>);

impl<'a> TypedHeader<'a> for Allow<'a> {
    const NAME: HeaderName = HeaderName::Allow;
    const LIST: bool = true;
    fn parse(s: &'a str) -> Result<Self, ParseError> {
        whole(s, |c| {
            c.token("Method").map(|m| Allow(Method::from_token(m)))
        })
    }
}

impl fmt::Display for Allow<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// Privacy (RFC 3323 §4.2): `priv-value *( ";" priv-value )`, e.g. `id;header`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Privacy<'a>(pub &'a str);

impl<'a> TypedHeader<'a> for Privacy<'a> {
    const NAME: HeaderName = HeaderName::Privacy;
    fn parse(s: &'a str) -> Result<Self, ParseError> {
        whole(s, |c| {
            let start = c.pos;
            c.token("priv-value")?;
            while c.sep(b';') {
                c.token("priv-value")?;
            }
            Ok(Privacy(&c.s[start..c.pos]))
        })
    }
}

impl<'a> Privacy<'a> {
    /// The priv-values (`header`, `session`, `user`, `none`, `critical`, `id`, or extensions).
    pub fn values(&self) -> impl Iterator<Item = &'a str> {
        self.0
            .split(';')
            .map(|v| v.trim_matches(|c: char| c.is_ascii_whitespace()))
    }
    /// True when `v` is among the values (case-insensitive).
    pub fn contains(&self, v: &str) -> bool {
        self.values().any(|x| x.eq_ignore_ascii_case(v))
    }
}

impl fmt::Display for Privacy<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

/// `m-type SLASH m-subtype *( SEMI m-parameter )` (RFC 3261 §20.15), also a media-range in Accept.
///
/// ```
/// use ims_sip::headers::{ContentType, TypedHeader};
/// let ct = ContentType::parse("multipart/mixed;boundary=\"unique-boundary-1\"").unwrap();
/// assert!(ct.0.is("multipart", "mixed"));
/// assert_eq!(ct.0.param("boundary").as_deref(), Some("unique-boundary-1"));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MediaType<'a> {
    /// The type (`application`).
    pub mtype: &'a str,
    /// The subtype (`sdp`, `vnd.3gpp.sms`).
    pub subtype: &'a str,
    /// Parameters (`charset`, `boundary`, `q` in Accept).
    pub params: Params<'a>,
}

impl<'a> MediaType<'a> {
    /// Parses one media type.
    pub fn parse(s: &'a str) -> Result<Self, ParseError> {
        whole(s, |c| {
            let mtype = c.token("m-type")?;
            if !c.sep(b'/') {
                return Err(c.err("'/'"));
            }
            let subtype = c.token("m-subtype")?;
            let params = Params::parse_header(c)?;
            Ok(MediaType {
                mtype,
                subtype,
                params,
            })
        })
    }
    /// Case-insensitive type/subtype match.
    pub fn is(&self, mtype: &str, subtype: &str) -> bool {
        self.mtype.eq_ignore_ascii_case(mtype) && self.subtype.eq_ignore_ascii_case(subtype)
    }
    /// True when this (a media-range, possibly with `*`) accepts `mtype/subtype`.
    pub fn matches(&self, mtype: &str, subtype: &str) -> bool {
        (self.mtype == "*" || self.mtype.eq_ignore_ascii_case(mtype))
            && (self.subtype == "*" || self.subtype.eq_ignore_ascii_case(subtype))
    }
    /// A parameter value, unquoted.
    pub fn param(&self, name: &str) -> Option<std::borrow::Cow<'a, str>> {
        self.params.value(name)
    }
}

impl fmt::Display for MediaType<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}{}", self.mtype, self.subtype, self.params)
    }
}

/// Content-Type (RFC 3261 §20.15).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContentType<'a>(pub MediaType<'a>);

impl<'a> TypedHeader<'a> for ContentType<'a> {
    const NAME: HeaderName = HeaderName::ContentType;
    fn parse(s: &'a str) -> Result<Self, ParseError> {
        MediaType::parse(s).map(ContentType)
    }
}

impl fmt::Display for ContentType<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// One Accept media-range (RFC 3261 §20.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Accept<'a>(pub MediaType<'a>);

impl<'a> TypedHeader<'a> for Accept<'a> {
    const NAME: HeaderName = HeaderName::Accept;
    const LIST: bool = true;
    fn parse(s: &'a str) -> Result<Self, ParseError> {
        MediaType::parse(s).map(Accept)
    }
}

impl fmt::Display for Accept<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

macro_rules! token_params_header {
    ($(#[$doc:meta])* $ty:ident, $name:ident, $field:ident, $what:literal, list = $list:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub struct $ty<'a> {
            #[doc = concat!("The ", $what, ".")]
            pub $field: &'a str,
            /// The parameters.
            pub params: Params<'a>,
        }

        impl<'a> TypedHeader<'a> for $ty<'a> {
            const NAME: HeaderName = HeaderName::$name;
            const LIST: bool = $list;
            fn parse(s: &'a str) -> Result<Self, ParseError> {
                token_params(s, $what).map(|($field, params)| $ty { $field, params })
            }
        }

        impl fmt::Display for $ty<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}{}", self.$field, self.params)
            }
        }
    };
}

token_params_header!(
    /// Content-Disposition (RFC 3261 §20.11): `session`, `render`, `icon`, `alert`, `by-reference`...
    ContentDisposition, ContentDisposition, disposition, "disp-type", list = false);
token_params_header!(
    /// Event (RFC 6665 §8.2.1): event package with `id` and other params.
    Event, Event, package, "event-type", list = false);
token_params_header!(
    /// Subscription-State (RFC 6665 §8.2.3): `active`/`pending`/`terminated` with `expires`, `reason`,
    /// `retry-after`.
    SubscriptionState, SubscriptionState, state, "substate-value", list = false);
token_params_header!(
    /// One Reason value (RFC 3326): protocol (`SIP`, `Q.850`) with `cause` and `text`.
    Reason, Reason, protocol, "protocol", list = true);
token_params_header!(
    /// One P-Access-Network-Info value (RFC 7315 §4.4): access-type with access-info.
    PAccessNetworkInfo, PAccessNetworkInfo, access_type, "access-type", list = true);
token_params_header!(
    /// One sec-mechanism (RFC 3329 §2.2): `ipsec-3gpp`, `tls`, `digest` with alg, ealg, spi-c,
    /// spi-s, port-c, port-s, q.
    SecurityMechanism, SecurityClient, mechanism, "mechanism-name", list = true);

impl<'a> Event<'a> {
    /// The `id` parameter.
    pub fn id(&self) -> Option<&'a str> {
        self.params.get("id").flatten()
    }
}

impl<'a> SubscriptionState<'a> {
    /// `expires`.
    pub fn expires(&self) -> Option<u32> {
        self.params
            .get("expires")
            .flatten()
            .and_then(|v| v.parse().ok())
    }
    /// `reason`.
    pub fn reason(&self) -> Option<&'a str> {
        self.params.get("reason").flatten()
    }
}

impl<'a> Reason<'a> {
    /// `cause`.
    pub fn cause(&self) -> Option<u16> {
        self.params
            .get("cause")
            .flatten()
            .and_then(|v| v.parse().ok())
    }
    /// `text`, unquoted.
    pub fn text(&self) -> Option<std::borrow::Cow<'a, str>> {
        self.params.value("text")
    }
}

impl<'a> SecurityMechanism<'a> {
    /// A numeric parameter (`spi-c`, `spi-s`, `port-c`, `port-s`).
    pub fn number(&self, name: &str) -> Option<u32> {
        self.params.get(name).flatten().and_then(|v| v.parse().ok())
    }
    /// `alg`.
    pub fn alg(&self) -> Option<&'a str> {
        self.params.get("alg").flatten()
    }
    /// `ealg`.
    pub fn ealg(&self) -> Option<&'a str> {
        self.params.get("ealg").flatten()
    }
}

macro_rules! sec_header {
    ($(#[$doc:meta])* $ty:ident, $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub struct $ty<'a>(pub SecurityMechanism<'a>);

        impl<'a> core::ops::Deref for $ty<'a> {
            type Target = SecurityMechanism<'a>;
            fn deref(&self) -> &SecurityMechanism<'a> {
                &self.0
            }
        }

        impl<'a> TypedHeader<'a> for $ty<'a> {
            const NAME: HeaderName = HeaderName::$name;
            const LIST: bool = true;
            fn parse(s: &'a str) -> Result<Self, ParseError> {
                <SecurityMechanism<'a> as TypedHeader<'a>>::parse(s).map($ty)
            }
        }

        impl fmt::Display for $ty<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }
    };
}

sec_header!(
    /// One Security-Client mechanism (RFC 3329).
    SecurityClient, SecurityClient);
sec_header!(
    /// One Security-Server mechanism (RFC 3329).
    SecurityServer, SecurityServer);
sec_header!(
    /// One Security-Verify mechanism (RFC 3329).
    SecurityVerify, SecurityVerify);

/// One Warning value (RFC 3261 §20.43): `warn-code SP warn-agent SP warn-text`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Warning<'a> {
    /// The three-digit warn-code.
    pub code: u16,
    /// The warn-agent (hostport or pseudonym).
    pub agent: &'a str,
    /// The warn-text, quotes included.
    pub text: &'a str,
}

impl<'a> TypedHeader<'a> for Warning<'a> {
    const NAME: HeaderName = HeaderName::Warning;
    const LIST: bool = true;
    fn parse(s: &'a str) -> Result<Self, ParseError> {
        whole(s, |c| {
            let d = c.digits();
            if d.len() != 3 {
                return Err(ParseError::syntax("three-digit warn-code", 0));
            }
            let code = d.parse().map_err(|_| c.err("warn-code"))?;
            if !c.eat(b' ') {
                return Err(c.err("SP"));
            }
            let start = c.pos;
            let b = c.bytes();
            while c.pos < b.len() && b[c.pos] != b' ' {
                c.pos += 1;
            }
            let agent = &c.s[start..c.pos];
            if agent.is_empty()
                || !agent
                    .bytes()
                    .all(|x| TOKEN[x as usize] || matches!(x, b':' | b'[' | b']'))
            {
                return Err(ParseError::syntax("warn-agent", start));
            }
            if !c.eat(b' ') {
                return Err(c.err("SP"));
            }
            let text = c.quoted_string()?;
            Ok(Warning { code, agent, text })
        })
    }
}

impl fmt::Display for Warning<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:03} {} {}", self.code, self.agent, self.text)
    }
}

macro_rules! star_params {
    ($(#[$doc:meta])* $ty:ident, $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub struct $ty<'a> {
            /// Feature parameters (`+g.3gpp.icsi-ref="..."`, `require`, `explicit`, ...).
            pub params: Params<'a>,
        }

        impl<'a> TypedHeader<'a> for $ty<'a> {
            const NAME: HeaderName = HeaderName::$name;
            const LIST: bool = true;
            fn parse(s: &'a str) -> Result<Self, ParseError> {
                whole(s, |c| {
                    c.expect(b'*', "'*'")?;
                    Ok($ty { params: Params::parse_header(c)? })
                })
            }
        }

        impl fmt::Display for $ty<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "*{}", self.params)
            }
        }
    };
}

star_params!(
    /// One Accept-Contact value (RFC 3841 §10): `* *( SEMI ac-params )`.
    AcceptContact, AcceptContact);
star_params!(
    /// One Reject-Contact value (RFC 3841 §10): `* *( SEMI rc-params )`.
    RejectContact, RejectContact);

/// One P-Visited-Network-ID value (RFC 7315 §4.3): `( token / quoted-string ) *( SEMI generic-param )`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PVisitedNetworkId<'a> {
    /// The network id as written (quotes kept).
    pub network: &'a str,
    /// Parameters.
    pub params: Params<'a>,
}

impl<'a> TypedHeader<'a> for PVisitedNetworkId<'a> {
    const NAME: HeaderName = HeaderName::PVisitedNetworkId;
    const LIST: bool = true;
    fn parse(s: &'a str) -> Result<Self, ParseError> {
        whole(s, |c| {
            let network = if c.peek() == Some(b'"') {
                c.quoted_string()?
            } else {
                c.token("vnetwork")?
            };
            Ok(PVisitedNetworkId {
                network,
                params: Params::parse_header(c)?,
            })
        })
    }
}

impl fmt::Display for PVisitedNetworkId<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.network, self.params)
    }
}

/// P-Charging-Vector (RFC 7315 §4.6): `icid-value` plus `icid-generated-at`, `orig-ioi`,
/// `term-ioi` and extensions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PChargingVector<'a>(pub Params<'a>);

impl<'a> TypedHeader<'a> for PChargingVector<'a> {
    const NAME: HeaderName = HeaderName::PChargingVector;
    fn parse(s: &'a str) -> Result<Self, ParseError> {
        let p = bare_params(s)?;
        if !p
            .iter()
            .next()
            .is_some_and(|f| f.name.eq_ignore_ascii_case("icid-value") && f.value.is_some())
        {
            return Err(ParseError::syntax("icid-value", 0));
        }
        Ok(PChargingVector(p))
    }
}

impl<'a> PChargingVector<'a> {
    /// The IMS Charging Identifier, unquoted.
    pub fn icid(&self) -> Option<std::borrow::Cow<'a, str>> {
        self.0.value("icid-value")
    }
    /// `orig-ioi`.
    pub fn orig_ioi(&self) -> Option<std::borrow::Cow<'a, str>> {
        self.0.value("orig-ioi")
    }
    /// `term-ioi`.
    pub fn term_ioi(&self) -> Option<std::borrow::Cow<'a, str>> {
        self.0.value("term-ioi")
    }
}

impl fmt::Display for PChargingVector<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.as_str())
    }
}

/// P-Charging-Function-Addresses (RFC 7315 §4.5): `ccf` and `ecf` parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PChargingFunctionAddresses<'a>(pub Params<'a>);

impl<'a> TypedHeader<'a> for PChargingFunctionAddresses<'a> {
    const NAME: HeaderName = HeaderName::PChargingFunctionAddresses;
    fn parse(s: &'a str) -> Result<Self, ParseError> {
        bare_params(s).map(PChargingFunctionAddresses)
    }
}

impl<'a> PChargingFunctionAddresses<'a> {
    /// The `ccf` values, unquoted.
    pub fn ccf(&self) -> impl Iterator<Item = std::borrow::Cow<'a, str>> + 'a {
        self.0
            .iter()
            .filter(|p| p.name.eq_ignore_ascii_case("ccf"))
            .filter_map(|p| p.text())
    }
    /// The `ecf` values, unquoted.
    pub fn ecf(&self) -> impl Iterator<Item = std::borrow::Cow<'a, str>> + 'a {
        self.0
            .iter()
            .filter(|p| p.name.eq_ignore_ascii_case("ecf"))
            .filter_map(|p| p.text())
    }
}

impl fmt::Display for PChargingFunctionAddresses<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.as_str())
    }
}

/// Replaces (RFC 3891 §6.1): `callid *( SEMI replaces-param )` with `to-tag`, `from-tag`,
/// `early-only`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Replaces<'a> {
    /// The Call-ID of the dialog to replace.
    pub call_id: &'a str,
    /// Parameters.
    pub params: Params<'a>,
}

impl<'a> TypedHeader<'a> for Replaces<'a> {
    const NAME: HeaderName = HeaderName::Replaces;
    fn parse(s: &'a str) -> Result<Self, ParseError> {
        whole(s, |c| {
            let start = c.pos;
            if c.take_class(&crate::scan::WORD).is_empty() {
                return Err(c.err("callid"));
            }
            if c.eat(b'@') && c.take_class(&crate::scan::WORD).is_empty() {
                return Err(c.err("callid"));
            }
            let call_id = &c.s[start..c.pos];
            let params = Params::parse_header(c)?;
            let r = Replaces { call_id, params };
            if r.to_tag().is_none() || r.from_tag().is_none() {
                return Err(ParseError::syntax("to-tag and from-tag", 0));
            }
            Ok(r)
        })
    }
}

impl<'a> Replaces<'a> {
    /// `to-tag`.
    pub fn to_tag(&self) -> Option<&'a str> {
        self.params.get("to-tag").flatten()
    }
    /// `from-tag`.
    pub fn from_tag(&self) -> Option<&'a str> {
        self.params.get("from-tag").flatten()
    }
    /// `early-only`.
    pub fn early_only(&self) -> bool {
        self.params.contains("early-only")
    }
}

impl fmt::Display for Replaces<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.call_id, self.params)
    }
}

impl<'a> SecurityMechanism<'a> {
    /// Parses one sec-mechanism.
    pub fn parse_value(s: &'a str) -> Result<Self, ParseError> {
        <SecurityMechanism<'a> as TypedHeader<'a>>::parse(s)
    }
}
