//! The zero-copy session description view (RFC 8866 §5) and its parser.

use crate::attr::{Attr, Direction};
use crate::error::{Error, ErrorKind};
use std::fmt;
use std::net::IpAddr;

/// Size and count limits applied to untrusted input. The defaults are far above any real IMS
/// offer (a VoLTE offer with video is under 2 KiB) and keep the worst case small.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Whole description, bytes. Default 64 KiB.
    pub max_size: usize,
    /// Lines. Default 2048.
    pub max_lines: usize,
    /// One line without its line end, bytes. Default 8 KiB.
    pub max_line_len: usize,
    /// Media descriptions (`m=` lines). Default 64.
    pub max_media: usize,
    /// `a=` lines in one section (session level or one media). Default 256.
    pub max_attributes: usize,
    /// Formats on one `m=` line, and each of `b=`, `c=`, `t=`, `r=`, `e=`, `p=` per section.
    /// Default 128.
    pub max_fields: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_size: 64 * 1024,
            max_lines: 2048,
            max_line_len: 8 * 1024,
            max_media: 64,
            max_attributes: 256,
            max_fields: 128,
        }
    }
}

/// Parser settings: limits plus leniency switches. The line order of RFC 8866 §9 is enforced by
/// default; the switches below are off by default unless noted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParserConfig {
    /// Limits applied while parsing.
    pub limits: Limits,
    /// Accept lines in any order within their section (session level or one media description).
    ///
    /// Background: RFC 8866 §5 fixes the order of lines "to enable parser errors to be more
    /// easily detected"; some senders put `c=` after `t=` (RFC 3264 §9 Figure 1 does; erratum
    /// 2099).
    pub allow_any_order: bool,
    /// Accept an empty `s=` line. On by default.
    ///
    /// Background: RFC 8866 §5.3 says `s=` MUST NOT be empty (use `s= ` or `s=-`), but RFC 3264
    /// §10 and the RFC 4475 torture messages send `s=` with nothing after it.
    pub allow_empty_session_name: bool,
}

impl Default for ParserConfig {
    fn default() -> Self {
        ParserConfig {
            limits: Limits::default(),
            allow_any_order: false,
            allow_empty_session_name: true,
        }
    }
}

/// `o=<username> <sess-id> <sess-version> <nettype> <addrtype> <unicast-address>` (RFC 8866 §5.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Origin<'a> {
    /// `username` (`-` when none).
    pub username: &'a str,
    /// `sess-id`, decimal digits (may exceed 64 bits).
    pub session_id: &'a str,
    /// `sess-version`, decimal digits.
    pub session_version: &'a str,
    /// `nettype` (`IN`).
    pub net_type: &'a str,
    /// `addrtype` (`IP4`, `IP6`).
    pub addr_type: &'a str,
    /// `unicast-address`: an address or a domain name.
    pub address: &'a str,
}

impl Origin<'_> {
    /// `sess-version` as a number, `None` when it does not fit 64 bits.
    pub fn version(&self) -> Option<u64> {
        self.session_version.parse().ok()
    }
}

impl fmt::Display for Origin<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} {} {} {} {}",
            self.username,
            self.session_id,
            self.session_version,
            self.net_type,
            self.addr_type,
            self.address
        )
    }
}

/// `c=<nettype> <addrtype> <connection-address>` (RFC 8866 §5.7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Connection<'a> {
    /// `nettype` (`IN`).
    pub net_type: &'a str,
    /// `addrtype` (`IP4`, `IP6`).
    pub addr_type: &'a str,
    /// `connection-address` as written, with any `/ttl` and `/count` suffixes.
    pub address_raw: &'a str,
}

impl<'a> Connection<'a> {
    /// The address without the multicast `/ttl` or `/count` suffixes.
    pub fn address(&self) -> &'a str {
        self.address_raw
            .split('/')
            .next()
            .unwrap_or(self.address_raw)
    }
    /// The address as an IP address, `None` for a domain name.
    pub fn ip(&self) -> Option<IpAddr> {
        self.address().parse().ok()
    }
    /// The IPv4 multicast TTL (`224.2.1.1/127`), if written.
    pub fn ttl(&self) -> Option<u8> {
        if !self.addr_type.eq_ignore_ascii_case("IP4") {
            return None;
        }
        self.address_raw.split('/').nth(1)?.parse().ok()
    }
    /// The number of multicast addresses (`/count`), 1 when absent.
    pub fn count(&self) -> u32 {
        let n = if self.addr_type.eq_ignore_ascii_case("IP4") {
            2
        } else {
            1
        };
        self.address_raw
            .split('/')
            .nth(n)
            .and_then(|c| c.parse().ok())
            .unwrap_or(1)
    }
}

impl fmt::Display for Connection<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} {}",
            self.net_type, self.addr_type, self.address_raw
        )
    }
}

/// A `b=` bandwidth type (RFC 8866 §5.8, RFC 3556, RFC 3890).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BandwidthType<'a> {
    /// `CT`: conference total, kbit/s.
    Ct,
    /// `AS`: application specific maximum, kbit/s.
    As,
    /// `TIAS`: transport independent application specific maximum, bit/s (RFC 3890).
    Tias,
    /// `RS`: RTCP bandwidth for senders, bit/s (RFC 3556).
    Rs,
    /// `RR`: RTCP bandwidth for receivers, bit/s (RFC 3556).
    Rr,
    /// Any other token, as written.
    Unknown(&'a str),
}

impl<'a> BandwidthType<'a> {
    /// The type for a token (case-sensitive as registered, but matched without case).
    pub fn from_token(t: &'a str) -> Self {
        if t.eq_ignore_ascii_case("AS") {
            BandwidthType::As
        } else if t.eq_ignore_ascii_case("CT") {
            BandwidthType::Ct
        } else if t.eq_ignore_ascii_case("TIAS") {
            BandwidthType::Tias
        } else if t.eq_ignore_ascii_case("RS") {
            BandwidthType::Rs
        } else if t.eq_ignore_ascii_case("RR") {
            BandwidthType::Rr
        } else {
            BandwidthType::Unknown(t)
        }
    }
    /// The token.
    pub fn as_str(&self) -> &'a str {
        match self {
            BandwidthType::Ct => "CT",
            BandwidthType::As => "AS",
            BandwidthType::Tias => "TIAS",
            BandwidthType::Rs => "RS",
            BandwidthType::Rr => "RR",
            BandwidthType::Unknown(t) => t,
        }
    }
}

/// `b=<bwtype>:<bandwidth>` (RFC 8866 §5.8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bandwidth<'a> {
    /// The type token as written.
    pub bw_type: &'a str,
    /// The value (kbit/s for AS and CT, bit/s for TIAS, RS, RR).
    pub value: u64,
}

impl<'a> Bandwidth<'a> {
    /// The typed bandwidth type.
    pub fn kind(&self) -> BandwidthType<'a> {
        BandwidthType::from_token(self.bw_type)
    }
}

impl fmt::Display for Bandwidth<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.bw_type, self.value)
    }
}

/// One `t=<start-time> <stop-time>` line with its `r=` lines (RFC 8866 §5.9, §5.10).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timing<'a> {
    /// Start time, NTP seconds (0 = unbounded).
    pub start: u64,
    /// Stop time, NTP seconds (0 = unbounded).
    pub stop: u64,
    /// The values of the `r=` lines that follow, as written.
    pub repeats: Vec<&'a str>,
}

/// One `a=<name>[:<value>]` line (RFC 8866 §5.13), kept as written. [`Attribute::typed`] parses
/// the value of the attributes this crate knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attribute<'a> {
    /// The attribute name.
    pub name: &'a str,
    /// The value after the first `:`, `None` for a property attribute.
    pub value: Option<&'a str>,
    pub(crate) line: u32,
    pub(crate) offset: u32,
}

impl<'a> Attribute<'a> {
    /// An attribute not read from a description (line and offset 0).
    pub fn new(name: &'a str, value: Option<&'a str>) -> Self {
        Attribute {
            name,
            value,
            line: 0,
            offset: 0,
        }
    }
    /// 1-based line number in the description (0 when not parsed from one).
    pub fn line(&self) -> usize {
        self.line as usize
    }
    /// Byte offset of the line in the description.
    pub fn offset(&self) -> usize {
        self.offset as usize
    }
    /// The typed value (see [`Attr`]); unknown names give [`Attr::Other`].
    pub fn typed(&self) -> Result<Attr<'a>, Error> {
        Attr::parse(self.name, self.value)
            .map_err(|kind| Error::new(kind, self.line(), self.offset()))
    }
    /// True when the name is `name` (attribute names compare case-sensitively in RFC 8866, but
    /// this accepts any case).
    pub fn is(&self, name: &str) -> bool {
        self.name.eq_ignore_ascii_case(name)
    }
}

impl fmt::Display for Attribute<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.value {
            Some(v) => write!(f, "{}:{v}", self.name),
            None => f.write_str(self.name),
        }
    }
}

/// A media type (the first field of `m=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MediaType<'a> {
    /// `audio`.
    Audio,
    /// `video`.
    Video,
    /// `text`.
    Text,
    /// `application`.
    Application,
    /// `message` (MSRP, RFC 4975).
    Message,
    /// `image` (T.38).
    Image,
    /// Any other token.
    Unknown(&'a str),
}

impl<'a> MediaType<'a> {
    /// The type for a token.
    pub fn from_token(t: &'a str) -> Self {
        match t {
            "audio" => MediaType::Audio,
            "video" => MediaType::Video,
            "text" => MediaType::Text,
            "application" => MediaType::Application,
            "message" => MediaType::Message,
            "image" => MediaType::Image,
            other => MediaType::Unknown(other),
        }
    }
    /// The token.
    pub fn as_str(&self) -> &'a str {
        match self {
            MediaType::Audio => "audio",
            MediaType::Video => "video",
            MediaType::Text => "text",
            MediaType::Application => "application",
            MediaType::Message => "message",
            MediaType::Image => "image",
            MediaType::Unknown(t) => t,
        }
    }
}

/// One media description: the `m=` line and the lines up to the next `m=` (RFC 8866 §5.14).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Media<'a> {
    /// `media` token (`audio`, `video`, `message`, ...).
    pub media: &'a str,
    /// Transport port; 0 means the stream is rejected or disabled (RFC 3264 §5.1).
    pub port: u16,
    /// The `/<number of ports>` suffix, if written.
    pub port_count: Option<u16>,
    /// `proto` (`RTP/AVP`, `RTP/AVPF`, `TCP/MSRP`, `udptl`, ...).
    pub proto: &'a str,
    pub(crate) formats: &'a str,
    pub(crate) raw: &'a str,
    /// `i=` value.
    pub info: Option<&'a str>,
    /// `c=` lines of this media description (more than one only for multicast).
    pub connections: Vec<Connection<'a>>,
    /// `b=` lines of this media description.
    pub bandwidths: Vec<Bandwidth<'a>>,
    /// `k=` value (obsolete, kept).
    pub key: Option<&'a str>,
    /// `a=` lines in order.
    pub attributes: Vec<Attribute<'a>>,
    pub(crate) line: u32,
    pub(crate) session_connection: Option<Connection<'a>>,
    pub(crate) session_direction: Option<Direction>,
}

impl<'a> Media<'a> {
    /// 1-based line number of the `m=` line.
    pub fn line(&self) -> usize {
        self.line as usize
    }
    /// The typed media type.
    pub fn media_type(&self) -> MediaType<'a> {
        MediaType::from_token(self.media)
    }
    /// The `fmt` list as written (space separated).
    pub fn formats_str(&self) -> &'a str {
        self.formats
    }
    /// The formats in order (RTP payload types, `*` for MSRP, `t38`, ...).
    pub fn formats(&self) -> impl Iterator<Item = &'a str> + 'a {
        self.formats.split(' ').filter(|s| !s.is_empty())
    }
    /// The formats that are RTP payload type numbers.
    pub fn payload_types(&self) -> impl Iterator<Item = u8> + 'a {
        self.formats().filter_map(|f| f.parse().ok())
    }
    /// True when the port is 0 (a rejected or disabled stream).
    pub fn is_rejected(&self) -> bool {
        self.port == 0
    }
    /// True when `proto` is an RTP profile (`RTP/AVP`, `RTP/SAVPF`, `UDP/TLS/RTP/SAVPF`, ...).
    pub fn is_rtp(&self) -> bool {
        self.proto.split('/').any(|p| p.eq_ignore_ascii_case("RTP"))
    }
    /// The connection for this media: its first `c=` line, else the session-level one.
    pub fn connection(&self) -> Option<Connection<'a>> {
        self.connections
            .first()
            .copied()
            .or(self.session_connection)
    }
    /// The direction: the media's direction attribute, else the session-level one, else
    /// `sendrecv` (RFC 8866 §6.7).
    pub fn direction(&self) -> Direction {
        self.own_direction()
            .or(self.session_direction)
            .unwrap_or(Direction::SendRecv)
    }
    /// The direction attribute of this media description itself, if any (the last one wins).
    pub fn own_direction(&self) -> Option<Direction> {
        self.attributes
            .iter()
            .rev()
            .find_map(|a| Direction::from_name(a.name).filter(|_| a.value.is_none()))
    }
    /// The value of the first `b=` of `kind` at media level.
    pub fn bandwidth(&self, kind: BandwidthType<'_>) -> Option<u64> {
        self.bandwidths
            .iter()
            .find(|b| b.kind() == kind)
            .map(|b| b.value)
    }
    /// Attributes named `name` (any case), in order.
    pub fn attributes_named<'s>(
        &'s self,
        name: &'s str,
    ) -> impl Iterator<Item = &'s Attribute<'a>> + 's {
        self.attributes.iter().filter(move |a| a.is(name))
    }
    /// The first attribute named `name`.
    pub fn attribute(&self, name: &str) -> Option<&Attribute<'a>> {
        self.attributes.iter().find(|a| a.is(name))
    }
    /// True when an attribute named `name` is present.
    pub fn has_attribute(&self, name: &str) -> bool {
        self.attribute(name).is_some()
    }
    /// Every attribute parsed into its typed form, in order.
    pub fn typed_attributes(&self) -> impl Iterator<Item = Result<Attr<'a>, Error>> + '_ {
        self.attributes.iter().map(Attribute::typed)
    }
    /// The whole media description as written: from `m=` to the end of its last line,
    /// line ends included (what TS 29.214 Codec-Data quotes).
    pub fn as_str(&self) -> &'a str {
        self.raw
    }
    /// The value of the first attribute `name` in its typed form, skipping malformed ones.
    fn typed_first(&self, name: &str) -> Option<Attr<'a>> {
        self.attributes_named(name).find_map(|a| a.typed().ok())
    }
    /// MSRP `a=path` (RFC 4975 §8.2): the URIs, this endpoint's own last.
    pub fn msrp_path(&self) -> Option<crate::SpaceList<'a>> {
        match self.typed_first("path")? {
            Attr::Path(p) => Some(p),
            _ => None,
        }
    }
    /// MSRP `a=accept-types` (RFC 4975 §8.6).
    pub fn accept_types(&self) -> Option<crate::SpaceList<'a>> {
        match self.typed_first("accept-types")? {
            Attr::AcceptTypes(p) => Some(p),
            _ => None,
        }
    }
    /// MSRP `a=accept-wrapped-types` (RFC 4975 §8.6).
    pub fn accept_wrapped_types(&self) -> Option<crate::SpaceList<'a>> {
        match self.typed_first("accept-wrapped-types")? {
            Attr::AcceptWrappedTypes(p) => Some(p),
            _ => None,
        }
    }
    /// MSRP `a=max-size` in octets (RFC 4975 §8.6).
    pub fn max_size(&self) -> Option<u64> {
        match self.typed_first("max-size")? {
            Attr::MaxSize(n) => Some(n),
            _ => None,
        }
    }
    /// `a=setup` (RFC 4145 / RFC 6135); `None` when absent (MSRP then means `active`).
    pub fn setup(&self) -> Option<crate::Setup<'a>> {
        match self.typed_first("setup")? {
            Attr::Setup(s) => Some(s),
            _ => None,
        }
    }
    /// The `a=rtpmap` of payload type `pt`.
    pub fn rtpmap(&self, pt: u8) -> Option<crate::Rtpmap<'a>> {
        self.attributes_named("rtpmap")
            .find_map(|a| match a.typed() {
                Ok(Attr::Rtpmap(r)) if r.payload_type == pt => Some(r),
                _ => None,
            })
    }
    /// The `a=fmtp` of format `format`.
    pub fn fmtp(&self, format: &str) -> Option<crate::Fmtp<'a>> {
        self.attributes_named("fmtp").find_map(|a| match a.typed() {
            Ok(Attr::Fmtp(f)) if f.format == format => Some(f),
            _ => None,
        })
    }
}

/// A parsed session description that borrows its input.
///
/// Untouched, it writes back exactly the bytes it was parsed from ([`Session::as_str`],
/// `Display`). To change it, take a [`crate::SessionBuilder`] with [`Session::to_builder`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session<'a> {
    src: &'a str,
    /// `o=` line.
    pub origin: Origin<'a>,
    /// `s=` value.
    pub name: &'a str,
    /// `i=` value.
    pub info: Option<&'a str>,
    /// `u=` value.
    pub uri: Option<&'a str>,
    /// `e=` values.
    pub emails: Vec<&'a str>,
    /// `p=` values.
    pub phones: Vec<&'a str>,
    /// Session-level `c=`.
    pub connection: Option<Connection<'a>>,
    /// Session-level `b=` lines.
    pub bandwidths: Vec<Bandwidth<'a>>,
    /// `t=` lines with their `r=` lines.
    pub timings: Vec<Timing<'a>>,
    /// `z=` value.
    pub zone: Option<&'a str>,
    /// Session-level `k=` value.
    pub key: Option<&'a str>,
    /// Session-level `a=` lines in order.
    pub attributes: Vec<Attribute<'a>>,
    /// Media descriptions in order.
    pub media: Vec<Media<'a>>,
}

impl<'a> Session<'a> {
    /// Parses a description with the default [`ParserConfig`].
    pub fn parse(input: &'a [u8]) -> Result<Session<'a>, Error> {
        parse_with(input, &ParserConfig::default())
    }
    /// Parses a description given as text.
    pub fn parse_str(input: &'a str) -> Result<Session<'a>, Error> {
        parse_with(input.as_bytes(), &ParserConfig::default())
    }
    /// The bytes it was parsed from, untouched.
    pub fn as_str(&self) -> &'a str {
        self.src
    }
    /// The first session-level attribute named `name`.
    pub fn attribute(&self, name: &str) -> Option<&Attribute<'a>> {
        self.attributes.iter().find(|a| a.is(name))
    }
    /// Session-level attributes named `name`, in order.
    pub fn attributes_named<'s>(
        &'s self,
        name: &'s str,
    ) -> impl Iterator<Item = &'s Attribute<'a>> + 's {
        self.attributes.iter().filter(move |a| a.is(name))
    }
    /// The session-level direction attribute, if any.
    pub fn direction(&self) -> Option<Direction> {
        self.attributes
            .iter()
            .rev()
            .find_map(|a| Direction::from_name(a.name).filter(|_| a.value.is_none()))
    }
    /// The value of the first session-level `b=` of `kind`.
    pub fn bandwidth(&self, kind: BandwidthType<'_>) -> Option<u64> {
        self.bandwidths
            .iter()
            .find(|b| b.kind() == kind)
            .map(|b| b.value)
    }
}

impl fmt::Display for Session<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.src)
    }
}

/// Parses a description with `cfg`.
pub fn parse_with<'a>(input: &'a [u8], cfg: &ParserConfig) -> Result<Session<'a>, Error> {
    Parser::new(input, cfg)?.run()
}

// ---------------------------------------------------------------------------------------------

fn is_token_char(b: u8) -> bool {
    // RFC 8866 §9 token-char: %x21 / %x23-27 / %x2A-2B / %x2D-2E / %x30-39 / %x41-5A / %x5E-7E
    matches!(b, 0x21 | 0x23..=0x27 | 0x2A..=0x2B | 0x2D..=0x2E | 0x30..=0x39 | 0x41..=0x5A | 0x5E..=0x7E)
}

pub(crate) fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(is_token_char)
}

pub(crate) fn is_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// Splits on single or repeated spaces.
pub(crate) fn fields(s: &str) -> impl Iterator<Item = &str> {
    s.split(' ').filter(|f| !f.is_empty())
}

fn parse_u64(s: &str, what: &'static str) -> Result<u64, ErrorKind> {
    if !is_digits(s) {
        return Err(ErrorKind::Syntax(what));
    }
    s.parse().map_err(|_| ErrorKind::Overflow(what))
}

/// Session-level order index (RFC 8866 §9 `session-description`).
fn session_rank(t: u8) -> Option<u8> {
    Some(match t {
        b'v' => 0,
        b'o' => 1,
        b's' => 2,
        b'i' => 3,
        b'u' => 4,
        b'e' => 5,
        b'p' => 6,
        b'c' => 7,
        b'b' => 8,
        b't' => 9,
        b'r' => 10,
        b'z' => 11,
        b'k' => 12,
        b'a' => 13,
        _ => return None,
    })
}

/// Media-level order index (`media-description`).
fn media_rank(t: u8) -> Option<u8> {
    Some(match t {
        b'm' => 0,
        b'i' => 1,
        b'c' => 2,
        b'b' => 3,
        b'k' => 4,
        b'a' => 5,
        _ => return None,
    })
}

struct Parser<'a, 'c> {
    src: &'a str,
    cfg: &'c ParserConfig,
}

struct Line<'a> {
    no: usize,
    offset: usize,
    kind: u8,
    value: &'a str,
}

impl<'a, 'c> Parser<'a, 'c> {
    fn new(input: &'a [u8], cfg: &'c ParserConfig) -> Result<Self, Error> {
        if input.len() > cfg.limits.max_size {
            return Err(Error::new(ErrorKind::TooLarge, 0, cfg.limits.max_size));
        }
        let src = match std::str::from_utf8(input) {
            Ok(s) => s,
            Err(e) => {
                let at = e.valid_up_to();
                let line = 1 + memchr::memchr_iter(b'\n', &input[..at]).count();
                return Err(Error::new(ErrorKind::Utf8, line, at));
            }
        };
        Ok(Parser { src, cfg })
    }

    /// Cuts the input into lines, checking the line syntax. Trailing empty lines are dropped.
    fn lines(&self) -> Result<Vec<Line<'a>>, Error> {
        let limits = &self.cfg.limits;
        let bytes = self.src.as_bytes();
        let mut out = Vec::new();
        let mut start = 0;
        let mut no = 0;
        let mut empty_at: Option<(usize, usize)> = None;
        // NUL and CR not followed by LF, in one pass each over the whole input
        let line_of = |at: usize| 1 + memchr::memchr_iter(b'\n', &bytes[..at]).count();
        if let Some(i) = memchr::memchr(0, bytes) {
            return Err(Error::new(ErrorKind::Nul, line_of(i), i));
        }
        if let Some(i) =
            memchr::memchr_iter(b'\r', bytes).find(|&i| bytes.get(i + 1) != Some(&b'\n'))
        {
            return Err(Error::new(ErrorKind::BareCr, line_of(i), i));
        }
        while start < bytes.len() {
            no += 1;
            if no > limits.max_lines {
                return Err(Error::new(ErrorKind::TooManyLines, no, start));
            }
            let (end, next) = match memchr::memchr(b'\n', &bytes[start..]) {
                Some(i) => {
                    let nl = start + i;
                    let end = if nl > start && bytes[nl - 1] == b'\r' {
                        nl - 1
                    } else {
                        nl
                    };
                    (end, nl + 1)
                }
                None => (bytes.len(), bytes.len()),
            };
            let raw = &bytes[start..end];
            if raw.len() > limits.max_line_len {
                return Err(Error::new(ErrorKind::LineTooLong, no, start));
            }
            if raw.is_empty() {
                if empty_at.is_none() {
                    empty_at = Some((no, start));
                }
            } else {
                if let Some((eno, eoff)) = empty_at {
                    return Err(Error::new(ErrorKind::EmptyLine, eno, eoff));
                }
                if raw.len() < 2 || raw[1] != b'=' {
                    return Err(Error::new(ErrorKind::NotTypeValue, no, start));
                }
                out.push(Line {
                    no,
                    offset: start,
                    kind: raw[0],
                    // both cut points are ASCII bytes, so the slice is on char boundaries
                    value: &self.src[start + 2..end],
                });
            }
            start = next;
        }
        if out.is_empty() {
            return Err(Error::new(ErrorKind::Empty, 0, 0));
        }
        Ok(out)
    }

    fn run(self) -> Result<Session<'a>, Error> {
        let lines = self.lines()?;
        let limits = &self.cfg.limits;
        let lenient = self.cfg.allow_any_order;

        let first = &lines[0];
        if first.kind != b'v' {
            return Err(Error::new(ErrorKind::Missing('v'), first.no, first.offset));
        }

        let mut origin = None;
        let mut name = None;
        let mut info = None;
        let mut uri = None;
        let mut emails = Vec::new();
        let mut phones = Vec::new();
        let mut connection = None;
        let mut bandwidths = Vec::new();
        let mut timings: Vec<Timing<'a>> = Vec::new();
        let mut zone = None;
        let mut key = None;
        let mut attributes = Vec::new();
        let mut media: Vec<Media<'a>> = Vec::new();

        let mut rank = 0u8;
        let mut last_kind = 0u8;
        let mut in_media = false;
        // byte offset of each media description's m= line
        let mut media_starts: Vec<usize> = Vec::new();

        for l in &lines {
            let err = |kind: ErrorKind| Error::new(kind, l.no, l.offset);
            let t = l.kind;
            let v = l.value;
            if t == b'm' {
                if origin.is_none() {
                    return Err(err(ErrorKind::Missing('o')));
                }
                if name.is_none() {
                    return Err(err(ErrorKind::Missing('s')));
                }
                if timings.is_empty() {
                    return Err(err(ErrorKind::Missing('t')));
                }
                if media.len() >= limits.max_media {
                    return Err(err(ErrorKind::TooManyMedia));
                }
                let m = parse_m(v, l.no).map_err(err)?;
                if m.formats().count() > limits.max_fields {
                    return Err(err(ErrorKind::TooManyFields));
                }
                media.push(m);
                media_starts.push(l.offset);
                in_media = true;
                rank = 0;
                last_kind = b'm';
                continue;
            }
            if in_media {
                let Some(r) = media_rank(t) else {
                    return Err(err(if session_rank(t).is_some() {
                        ErrorKind::OutOfOrder(t as char)
                    } else {
                        ErrorKind::UnknownType(t as char)
                    }));
                };
                if !lenient && r < rank {
                    return Err(err(ErrorKind::OutOfOrder(t as char)));
                }
                rank = rank.max(r);
                let m = media
                    .last_mut()
                    .expect("in_media implies a media description");
                match t {
                    b'i' => {
                        if m.info.is_some() {
                            return Err(err(ErrorKind::Duplicate('i')));
                        }
                        m.info = Some(v);
                    }
                    b'c' => {
                        if m.connections.len() >= limits.max_fields {
                            return Err(err(ErrorKind::TooManyFields));
                        }
                        m.connections.push(parse_c(v).map_err(err)?);
                    }
                    b'b' => {
                        if m.bandwidths.len() >= limits.max_fields {
                            return Err(err(ErrorKind::TooManyFields));
                        }
                        m.bandwidths.push(parse_b(v).map_err(err)?);
                    }
                    b'k' => {
                        if m.key.is_some() {
                            return Err(err(ErrorKind::Duplicate('k')));
                        }
                        m.key = Some(v);
                    }
                    _ => {
                        if m.attributes.len() >= limits.max_attributes {
                            return Err(err(ErrorKind::TooManyAttributes));
                        }
                        m.attributes.push(parse_a(v, l).map_err(err)?);
                    }
                }
                last_kind = t;
                continue;
            }
            let Some(r) = session_rank(t) else {
                return Err(err(ErrorKind::UnknownType(t as char)));
            };
            // `t=` may follow `r=` (another time description); `r=` only follows `t=` or `r=`
            let t_after_r = t == b't' && last_kind == b'r';
            if t == b'r' && last_kind != b't' && last_kind != b'r' && !lenient {
                return Err(err(ErrorKind::OutOfOrder('r')));
            }
            if !lenient && r < rank && !t_after_r {
                return Err(err(ErrorKind::OutOfOrder(t as char)));
            }
            rank = rank.max(r);
            match t {
                b'v' => {
                    if l.no != first.no {
                        return Err(err(ErrorKind::Duplicate('v')));
                    }
                    if v != "0" {
                        return Err(err(ErrorKind::Version));
                    }
                }
                b'o' => {
                    if origin.is_some() {
                        return Err(err(ErrorKind::Duplicate('o')));
                    }
                    origin = Some(parse_o(v).map_err(err)?);
                }
                b's' => {
                    if name.is_some() {
                        return Err(err(ErrorKind::Duplicate('s')));
                    }
                    if v.is_empty() && !self.cfg.allow_empty_session_name {
                        return Err(err(ErrorKind::Syntax("a session name")));
                    }
                    name = Some(v);
                }
                b'i' => {
                    if info.is_some() {
                        return Err(err(ErrorKind::Duplicate('i')));
                    }
                    info = Some(v);
                }
                b'u' => {
                    if uri.is_some() {
                        return Err(err(ErrorKind::Duplicate('u')));
                    }
                    uri = Some(v);
                }
                b'e' | b'p' => {
                    let list = if t == b'e' { &mut emails } else { &mut phones };
                    if list.len() >= limits.max_fields {
                        return Err(err(ErrorKind::TooManyFields));
                    }
                    list.push(v);
                }
                b'c' => {
                    if connection.is_some() {
                        return Err(err(ErrorKind::Duplicate('c')));
                    }
                    connection = Some(parse_c(v).map_err(err)?);
                }
                b'b' => {
                    if bandwidths.len() >= limits.max_fields {
                        return Err(err(ErrorKind::TooManyFields));
                    }
                    bandwidths.push(parse_b(v).map_err(err)?);
                }
                b't' => {
                    if timings.len() >= limits.max_fields {
                        return Err(err(ErrorKind::TooManyFields));
                    }
                    timings.push(parse_t(v).map_err(err)?);
                }
                b'r' => {
                    let Some(last) = timings.last_mut() else {
                        return Err(err(ErrorKind::OutOfOrder('r')));
                    };
                    if last.repeats.len() >= limits.max_fields {
                        return Err(err(ErrorKind::TooManyFields));
                    }
                    check_r(v).map_err(err)?;
                    last.repeats.push(v);
                }
                b'z' => {
                    if zone.is_some() {
                        return Err(err(ErrorKind::Duplicate('z')));
                    }
                    check_z(v).map_err(err)?;
                    zone = Some(v);
                }
                b'k' => {
                    if key.is_some() {
                        return Err(err(ErrorKind::Duplicate('k')));
                    }
                    key = Some(v);
                }
                _ => {
                    if attributes.len() >= limits.max_attributes {
                        return Err(err(ErrorKind::TooManyAttributes));
                    }
                    attributes.push(parse_a(v, l).map_err(err)?);
                }
            }
            last_kind = t;
        }

        let end = lines.last().map_or(0, |l| l.no);
        let at_end = |c: char| Error::new(ErrorKind::Missing(c), end, self.src.len());
        let origin = origin.ok_or_else(|| at_end('o'))?;
        let name = name.ok_or_else(|| at_end('s'))?;
        if timings.is_empty() {
            return Err(at_end('t'));
        }
        let session_direction = attributes.iter().rev().find_map(|a: &Attribute<'a>| {
            Direction::from_name(a.name).filter(|_| a.value.is_none())
        });
        let n = media.len();
        for (i, m) in media.iter_mut().enumerate() {
            m.session_connection = connection;
            m.session_direction = session_direction;
            let end = if i + 1 < n {
                media_starts[i + 1]
            } else {
                self.src.len()
            };
            // both ends are line starts (after an LF) or the end of the input
            m.raw = self.src.get(media_starts[i]..end).unwrap_or("");
        }
        Ok(Session {
            src: self.src,
            origin,
            name,
            info,
            uri,
            emails,
            phones,
            connection,
            bandwidths,
            timings,
            zone,
            key,
            attributes,
            media,
        })
    }
}

fn parse_o(v: &str) -> Result<Origin<'_>, ErrorKind> {
    let mut it = fields(v);
    let mut next = || it.next().ok_or(ErrorKind::Syntax("6 fields in o="));
    let o = Origin {
        username: next()?,
        session_id: next()?,
        session_version: next()?,
        net_type: next()?,
        addr_type: next()?,
        address: next()?,
    };
    if it.next().is_some() {
        return Err(ErrorKind::Syntax("6 fields in o="));
    }
    if !is_digits(o.session_id) {
        return Err(ErrorKind::Syntax("digits in sess-id"));
    }
    if !is_digits(o.session_version) {
        return Err(ErrorKind::Syntax("digits in sess-version"));
    }
    if !is_token(o.net_type) || !is_token(o.addr_type) {
        return Err(ErrorKind::Syntax("nettype and addrtype tokens in o="));
    }
    Ok(o)
}

pub(crate) fn parse_c(v: &str) -> Result<Connection<'_>, ErrorKind> {
    let mut it = fields(v);
    let c = Connection {
        net_type: it
            .next()
            .ok_or(ErrorKind::Syntax("c=<nettype> <addrtype> <address>"))?,
        addr_type: it
            .next()
            .ok_or(ErrorKind::Syntax("c=<nettype> <addrtype> <address>"))?,
        address_raw: it
            .next()
            .ok_or(ErrorKind::Syntax("c=<nettype> <addrtype> <address>"))?,
    };
    if it.next().is_some() || !is_token(c.net_type) || !is_token(c.addr_type) {
        return Err(ErrorKind::Syntax("c=<nettype> <addrtype> <address>"));
    }
    if !c.address_raw.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ErrorKind::Syntax("a connection address"));
    }
    Ok(c)
}

fn parse_b(v: &str) -> Result<Bandwidth<'_>, ErrorKind> {
    let (t, n) = v
        .split_once(':')
        .ok_or(ErrorKind::Syntax("b=<bwtype>:<bandwidth>"))?;
    if !is_token(t) {
        return Err(ErrorKind::Syntax("a bwtype token"));
    }
    Ok(Bandwidth {
        bw_type: t,
        value: parse_u64(n, "bandwidth")?,
    })
}

fn parse_t(v: &str) -> Result<Timing<'_>, ErrorKind> {
    let mut it = fields(v);
    let start = parse_u64(it.next().unwrap_or(""), "t= start time")?;
    let stop = parse_u64(it.next().unwrap_or(""), "t= stop time")?;
    if it.next().is_some() {
        return Err(ErrorKind::Syntax("t=<start-time> <stop-time>"));
    }
    Ok(Timing {
        start,
        stop,
        repeats: Vec::new(),
    })
}

/// `typed-time = 1*DIGIT [fixed-len-time-unit]`, optionally negative in `z=`.
fn is_typed_time(s: &str, signed: bool) -> bool {
    let s = if signed {
        s.strip_prefix('-').unwrap_or(s)
    } else {
        s
    };
    let s = s.strip_suffix(['d', 'h', 'm', 's']).unwrap_or(s);
    is_digits(s)
}

fn check_r(v: &str) -> Result<(), ErrorKind> {
    let n = fields(v).count();
    if n < 3 || !fields(v).all(|f| is_typed_time(f, false)) {
        return Err(ErrorKind::Syntax("r=<interval> <duration> <offsets>"));
    }
    Ok(())
}

fn check_z(v: &str) -> Result<(), ErrorKind> {
    let f: Vec<&str> = fields(v).collect();
    if f.is_empty()
        || f.len() % 2 != 0
        || !f
            .chunks(2)
            .all(|p| is_digits(p[0]) && is_typed_time(p[1], true))
    {
        return Err(ErrorKind::Syntax("z=<adjustment time> <offset> ..."));
    }
    Ok(())
}

fn parse_a<'a>(v: &'a str, l: &Line<'a>) -> Result<Attribute<'a>, ErrorKind> {
    // the name ends at the first ':' (an ASCII byte, so both slices are on char boundaries)
    let (name, value) = match memchr::memchr(b':', v.as_bytes()) {
        Some(i) => (&v[..i], Some(&v[i + 1..])),
        None => (v, None),
    };
    if !is_token(name) {
        return Err(ErrorKind::Syntax("an attribute name token"));
    }
    Ok(Attribute {
        name,
        value,
        line: l.no as u32,
        offset: l.offset as u32,
    })
}

fn parse_m(v: &str, line: usize) -> Result<Media<'_>, ErrorKind> {
    const WHAT: &str = "m=<media> <port>[/<count>] <proto> <fmt> ...";
    let v = v.trim_end_matches(' ');
    let (media, rest) = v.split_once(' ').ok_or(ErrorKind::Syntax(WHAT))?;
    let rest = rest.trim_start_matches(' ');
    let (port_s, rest) = rest.split_once(' ').ok_or(ErrorKind::Syntax(WHAT))?;
    let rest = rest.trim_start_matches(' ');
    let (proto, formats) = rest.split_once(' ').ok_or(ErrorKind::Syntax(WHAT))?;
    let formats = formats.trim_start_matches(' ');
    if !is_token(media) {
        return Err(ErrorKind::Syntax("a media token"));
    }
    if proto.is_empty() || !proto.split('/').all(is_token) {
        return Err(ErrorKind::Syntax("a proto"));
    }
    if formats.is_empty() || !fields(formats).all(is_token) {
        return Err(ErrorKind::Syntax("fmt tokens"));
    }
    let (p, count) = match port_s.split_once('/') {
        Some((p, c)) => (p, Some(c)),
        None => (port_s, None),
    };
    let port = parse_u64(p, "port")?;
    let port = u16::try_from(port).map_err(|_| ErrorKind::Overflow("port"))?;
    let port_count = match count {
        Some(c) => Some(
            u16::try_from(parse_u64(c, "number of ports")?)
                .map_err(|_| ErrorKind::Overflow("number of ports"))?,
        ),
        None => None,
    };
    Ok(Media {
        media,
        port,
        port_count,
        proto,
        formats,
        raw: "",
        info: None,
        connections: Vec::new(),
        bandwidths: Vec::new(),
        key: None,
        attributes: Vec::new(),
        line: line as u32,
        session_connection: None,
        session_direction: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASIC: &str = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n";

    fn err(s: &str) -> Error {
        Session::parse_str(s).unwrap_err()
    }

    #[test]
    fn lf_only_and_missing_final_line_end_round_trip() {
        for text in [
            BASIC.replace("\r\n", "\n"),
            BASIC.trim_end().to_owned(),
            format!("{BASIC}\r\n\r\n"),
        ] {
            let s = Session::parse_str(&text).unwrap();
            assert_eq!(s.to_string(), text);
            assert_eq!(s.media[0].port, 4000);
            // the builder always writes CRLF in order
            assert_eq!(s.to_builder().build(), BASIC);
        }
    }

    #[test]
    fn errors_name_the_line() {
        let cases: &[(&str, ErrorKind, usize)] = &[
            ("", ErrorKind::Empty, 0),
            ("\r\n\r\n", ErrorKind::Empty, 0),
            ("o=- 1 1 IN IP4 a\r\n", ErrorKind::Missing('v'), 1),
            ("v=1\r\n", ErrorKind::Version, 1),
            ("v=0\r\no=- x 1 IN IP4 a\r\n", ErrorKind::Syntax("digits in sess-id"), 2),
            ("v=0\r\no=- 1 1 IN IP4\r\n", ErrorKind::Syntax("6 fields in o="), 2),
            ("v=0\r\no=- 1 1 IN IP4 a\r\ns=-\r\nx=1\r\nt=0 0\r\n", ErrorKind::UnknownType('x'), 4),
            ("v=0\r\no=- 1 1 IN IP4 a\r\ns=-\r\nt=0 0\r\nc=IN IP4 a\r\n", ErrorKind::OutOfOrder('c'), 5),
            ("v=0\r\no=- 1 1 IN IP4 a\r\ns=-\r\ns=x\r\nt=0 0\r\n", ErrorKind::Duplicate('s'), 4),
            ("v=0\r\no=- 1 1 IN IP4 a\r\ns=-\r\n", ErrorKind::Missing('t'), 3),
            ("v=0\r\no=- 1 1 IN IP4 a\r\nt=0 0\r\n", ErrorKind::Missing('s'), 3),
            ("v=0\r\no=- 1 1 IN IP4 a\r\ns=-\r\nt=0 0\r\nm=audio 70000 RTP/AVP 0\r\n", ErrorKind::Overflow("port"), 5),
            ("v=0\r\no=- 1 1 IN IP4 a\r\ns=-\r\nt=0 0\r\nm=audio 1 RTP/AVP\r\n", ErrorKind::Syntax("m=<media> <port>[/<count>] <proto> <fmt> ..."), 5),
            ("v=0\r\no=- 1 1 IN IP4 a\r\ns=-\r\nt=0 0\r\nm=audio 1 RTP/AVP 0\r\na=x\r\nc=IN IP4 a\r\n", ErrorKind::OutOfOrder('c'), 7),
            ("v=0\r\no=- 1 1 IN IP4 a\r\ns=-\r\nt=0 0\r\nm=audio 1 RTP/AVP 0\r\nt=0 0\r\n", ErrorKind::OutOfOrder('t'), 6),
            ("v=0\r\no=- 1 1 IN IP4 a\r\ns=-\r\nt=0 0\r\nb=AS:x\r\n", ErrorKind::OutOfOrder('b'), 5),
            ("v=0\r\no=- 1 1 IN IP4 a\r\ns=-\r\nb=AS:x\r\nt=0 0\r\n", ErrorKind::Syntax("bandwidth"), 4),
            ("v=0\r\no=- 1 1 IN IP4 a\r\ns=-\r\nb=AS:99999999999999999999\r\n", ErrorKind::Overflow("bandwidth"), 4),
            ("v=0\r\no=- 1 1 IN IP4 a\r\ns=-\r\nt=0 0\r\nr=1\r\n", ErrorKind::Syntax("r=<interval> <duration> <offsets>"), 5),
            ("v=0\r\no=- 1 1 IN IP4 a\r\ns=-\r\nt=0 0\r\n\r\na=x\r\n", ErrorKind::EmptyLine, 5),
            ("v=0\r\no=- 1 1 IN IP4 a\r\ns=-\r\nt=0 0\r\na=x\ry\r\n", ErrorKind::BareCr, 5),
            ("v=0\r\no=- 1 1 IN IP4 a\r\ns=-\r\nt=0 0\r\na=x\0\r\n", ErrorKind::Nul, 5),
            ("v=0\r\no=- 1 1 IN IP4 a\r\ns=-\r\nt=0 0\r\na =x\r\n", ErrorKind::NotTypeValue, 5),
            ("v=0\r\no=- 1 1 IN IP4 a\r\ns=-\r\nt=0 0\r\na=\r\n", ErrorKind::Syntax("an attribute name token"), 5),
        ];
        for (text, kind, line) in cases {
            let e = err(text);
            assert_eq!(e.kind, *kind, "{text:?}: {e}");
            if *line != 0 {
                assert_eq!(e.line, *line, "{text:?}: {e}");
            }
        }
        // invalid UTF-8 on line 3
        let mut bad = b"v=0\r\no=- 1 1 IN IP4 a\r\ns=".to_vec();
        bad.extend_from_slice(&[0xff, 0xfe, b'\r', b'\n']);
        let e = Session::parse(&bad).unwrap_err();
        assert_eq!((e.kind, e.line), (ErrorKind::Utf8, 3));
    }

    #[test]
    fn limits_are_enforced() {
        let small = ParserConfig {
            limits: Limits {
                max_size: 100,
                ..Limits::default()
            },
            ..ParserConfig::default()
        };
        let big = format!("{BASIC}{}", "a=x\r\n".repeat(40));
        assert_eq!(
            parse_with(big.as_bytes(), &small).unwrap_err().kind,
            ErrorKind::TooLarge
        );
        let many = format!("{BASIC}{}", "a=x\r\n".repeat(300));
        assert_eq!(
            Session::parse_str(&many).unwrap_err().kind,
            ErrorKind::TooManyAttributes
        );
        let media = format!(
            "v=0\r\no=- 1 1 IN IP4 a\r\ns=-\r\nt=0 0\r\n{}",
            "m=audio 1 RTP/AVP 0\r\n".repeat(65)
        );
        assert_eq!(
            Session::parse_str(&media).unwrap_err().kind,
            ErrorKind::TooManyMedia
        );
        let fmts = format!(
            "v=0\r\no=- 1 1 IN IP4 a\r\ns=-\r\nt=0 0\r\nm=audio 1 RTP/AVP{}\r\n",
            " 0".repeat(129)
        );
        assert_eq!(
            Session::parse_str(&fmts).unwrap_err().kind,
            ErrorKind::TooManyFields
        );
        let long = format!("{BASIC}a=x:{}\r\n", "y".repeat(9000));
        let e = Session::parse_str(&long).unwrap_err();
        assert_eq!((e.kind, e.line), (ErrorKind::LineTooLong, 7));
    }

    #[test]
    fn media_text_and_helpers() {
        let text = "v=0\r\no=- 1 1 IN IP4 a\r\ns=-\r\nt=0 0\r\nm=audio 1 RTP/AVP 96\r\na=rtpmap:96 AMR/8000\r\na=fmtp:96 mode-set=7\r\nm=message 2 TCP/MSRP *\r\na=accept-types:text/plain\r\na=path:msrp://h:1/x;tcp\r\na=max-size:10\r\n\r\n";
        let s = Session::parse_str(text).unwrap();
        assert_eq!(
            s.media[0].as_str(),
            "m=audio 1 RTP/AVP 96\r\na=rtpmap:96 AMR/8000\r\na=fmtp:96 mode-set=7\r\n"
        );
        assert!(
            s.media[1].as_str().starts_with("m=message")
                && s.media[1].as_str().ends_with("a=max-size:10\r\n\r\n")
        );
        assert_eq!(s.media[0].rtpmap(96).unwrap().encoding, "AMR");
        assert_eq!(s.media[0].fmtp("96").unwrap().get("mode-set"), Some("7"));
        let m = &s.media[1];
        assert_eq!(m.msrp_path().unwrap().last(), Some("msrp://h:1/x;tcp"));
        assert!(m.accept_types().unwrap().contains("text/plain"));
        assert_eq!(
            (m.max_size(), m.setup(), m.accept_wrapped_types()),
            (Some(10), None, None)
        );
    }

    #[test]
    fn repeat_and_zone_lines() {
        // RFC 8866 §5.10/§5.11 examples
        let text = "v=0\r\no=- 1 1 IN IP4 a\r\ns=-\r\nt=3034423619 3042462419\r\nr=604800 3600 0 90000\r\nr=7d 1h 0 25h\r\nt=0 0\r\nz=2882844526 -1h 2898848070 0\r\n";
        let s = Session::parse_str(text).unwrap();
        assert_eq!(s.timings.len(), 2);
        assert_eq!(s.timings[0].repeats, ["604800 3600 0 90000", "7d 1h 0 25h"]);
        assert_eq!(s.zone, Some("2882844526 -1h 2898848070 0"));
        assert_eq!(s.to_builder().build(), text);
    }

    #[test]
    fn session_level_fallbacks() {
        let text = "v=0\r\no=- 1 1 IN IP4 a\r\ns=-\r\nc=IN IP4 224.2.1.1/127/3\r\nt=0 0\r\na=recvonly\r\nm=audio 1 RTP/AVP 0\r\nm=video 2 RTP/AVP 31\r\nc=IN IP6 ff15::101/3\r\na=inactive\r\n";
        let s = Session::parse_str(text).unwrap();
        let (a, v) = (&s.media[0], &s.media[1]);
        assert_eq!(a.direction(), Direction::RecvOnly);
        assert_eq!(a.own_direction(), None);
        assert_eq!(v.direction(), Direction::Inactive);
        let c = a.connection().unwrap();
        assert_eq!(
            (c.address(), c.ttl(), c.count()),
            ("224.2.1.1", Some(127), 3)
        );
        let c = v.connection().unwrap();
        assert_eq!((c.address(), c.ttl(), c.count()), ("ff15::101", None, 3));
    }

    #[test]
    fn garbage_never_panics() {
        // a cheap deterministic sweep; the fuzz target does the real work
        let base = BASIC.as_bytes();
        let mut x: u32 = 12345;
        for _ in 0..20000 {
            let mut v = base.to_vec();
            for _ in 0..4 {
                x = x.wrapping_mul(1103515245).wrapping_add(12345);
                let i = (x >> 8) as usize % v.len();
                v[i] = (x >> 16) as u8;
            }
            if let Ok(s) = Session::parse(&v) {
                assert_eq!(s.as_str().as_bytes(), &v[..]);
                let again = s.to_builder().build();
                Session::parse_str(&again).unwrap();
            }
        }
    }
}
