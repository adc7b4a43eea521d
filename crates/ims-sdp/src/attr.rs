//! Typed attribute values: RTP (RFC 8866 §6, RFC 3605, RFC 5761), grouping (RFC 5888), ICE
//! candidates (RFC 8839, kept as text), connection setup (RFC 4145, RFC 6135), fingerprints
//! (RFC 8122), SDES crypto (RFC 4568), preconditions (RFC 3312, RFC 4032), MSRP (RFC 4975 §8) and
//! file transfer (RFC 5547).
//!
//! [`Attr::parse`] turns a name and value into an [`Attr`]; its `Display` writes `name[:value]`
//! back in canonical form, which parses again to an equal value.

use crate::error::ErrorKind;
use crate::session::{fields, is_digits, is_token, parse_c, Connection};
use std::fmt;

/// Media direction (RFC 8866 §6.7, RFC 3264 §5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// `sendrecv`.
    SendRecv,
    /// `sendonly`.
    SendOnly,
    /// `recvonly`.
    RecvOnly,
    /// `inactive`.
    Inactive,
}

impl Direction {
    /// The direction for an attribute name.
    pub fn from_name(name: &str) -> Option<Direction> {
        Some(match name {
            "sendrecv" => Direction::SendRecv,
            "sendonly" => Direction::SendOnly,
            "recvonly" => Direction::RecvOnly,
            "inactive" => Direction::Inactive,
            _ => return None,
        })
    }
    /// The attribute name.
    pub fn as_str(&self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }
    /// True when this side sends.
    pub fn sends(&self) -> bool {
        matches!(self, Direction::SendRecv | Direction::SendOnly)
    }
    /// True when this side receives.
    pub fn receives(&self) -> bool {
        matches!(self, Direction::SendRecv | Direction::RecvOnly)
    }
    /// The direction with the given send and receive flags.
    pub fn from_flags(send: bool, recv: bool) -> Direction {
        match (send, recv) {
            (true, true) => Direction::SendRecv,
            (true, false) => Direction::SendOnly,
            (false, true) => Direction::RecvOnly,
            (false, false) => Direction::Inactive,
        }
    }
    /// The direction seen from the peer: `sendonly` ↔ `recvonly` (RFC 3264 §6.1).
    pub fn reverse(&self) -> Direction {
        Direction::from_flags(self.receives(), self.sends())
    }
    /// Both restrictions at once (`sendrecv ∩ recvonly = recvonly`, `sendonly ∩ recvonly =
    /// inactive`).
    pub fn intersect(&self, other: Direction) -> Direction {
        Direction::from_flags(
            self.sends() && other.sends(),
            self.receives() && other.receives(),
        )
    }
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `a=rtpmap:<payload type> <encoding name>/<clock rate>[/<encoding parameters>]` (RFC 8866 §6.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rtpmap<'a> {
    /// RTP payload type, 0–127.
    pub payload_type: u8,
    /// Encoding name (`AMR-WB`, `telephone-event`, `H264`).
    pub encoding: &'a str,
    /// Clock rate in Hz.
    pub clock_rate: u32,
    /// Encoding parameters (channels for audio), if written.
    pub params: Option<&'a str>,
}

impl Rtpmap<'_> {
    /// Audio channels: the encoding parameters as a number, 1 when absent.
    pub fn channels(&self) -> u32 {
        self.params.and_then(|p| p.parse().ok()).unwrap_or(1)
    }
}

impl fmt::Display for Rtpmap<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}/{}",
            self.payload_type, self.encoding, self.clock_rate
        )?;
        if let Some(p) = self.params {
            write!(f, "/{p}")?;
        }
        Ok(())
    }
}

/// `a=fmtp:<format> <format specific parameters>` (RFC 8866 §6.15).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fmtp<'a> {
    /// The format (payload type number for RTP).
    pub format: &'a str,
    /// The parameters as written (may be empty).
    pub params: &'a str,
}

impl<'a> Fmtp<'a> {
    /// `name=value` pairs separated by `;` (the common convention; `value` is `None` for a bare
    /// name such as `0-15` in telephone-event).
    pub fn pairs(&self) -> impl Iterator<Item = (&'a str, Option<&'a str>)> + 'a {
        self.params
            .split(';')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(|p| match p.split_once('=') {
                Some((k, v)) => (k.trim(), Some(v.trim())),
                None => (p, None),
            })
    }
    /// The value of parameter `name` (any case).
    pub fn get(&self, name: &str) -> Option<&'a str> {
        self.pairs()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .and_then(|(_, v)| v)
    }
}

impl fmt::Display for Fmtp<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.params.is_empty() {
            f.write_str(self.format)
        } else {
            write!(f, "{} {}", self.format, self.params)
        }
    }
}

/// `a=rtcp:<port> [<nettype> <addrtype> <connection-address>]` (RFC 3605).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rtcp<'a> {
    /// RTCP port.
    pub port: u16,
    /// RTCP address, if written.
    pub connection: Option<Connection<'a>>,
}

impl fmt::Display for Rtcp<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.port)?;
        if let Some(c) = &self.connection {
            write!(f, " {c}")?;
        }
        Ok(())
    }
}

/// `a=group:<semantics> *(SP <identification-tag>)` (RFC 5888).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Group<'a> {
    /// Semantics (`LS`, `FID`, `BUNDLE`, ...).
    pub semantics: &'a str,
    tags: &'a str,
}

impl<'a> Group<'a> {
    /// The identification tags (`a=mid` values) in order.
    pub fn tags(&self) -> impl Iterator<Item = &'a str> + 'a {
        fields(self.tags)
    }
}

impl fmt::Display for Group<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.semantics)?;
        for t in self.tags() {
            write!(f, " {t}")?;
        }
        Ok(())
    }
}

/// `a=setup` (RFC 4145 §4, used by MSRP in RFC 6135).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Setup<'a> {
    /// `active`: this side opens the connection.
    Active,
    /// `passive`: this side accepts it.
    Passive,
    /// `actpass`: either.
    ActPass,
    /// `holdconn`: not now.
    HoldConn,
    /// Any other token.
    Unknown(&'a str),
}

impl<'a> Setup<'a> {
    fn parse(s: &'a str) -> Setup<'a> {
        match s {
            "active" => Setup::Active,
            "passive" => Setup::Passive,
            "actpass" => Setup::ActPass,
            "holdconn" => Setup::HoldConn,
            other => Setup::Unknown(other),
        }
    }
    /// The token.
    pub fn as_str(&self) -> &'a str {
        match self {
            Setup::Active => "active",
            Setup::Passive => "passive",
            Setup::ActPass => "actpass",
            Setup::HoldConn => "holdconn",
            Setup::Unknown(s) => s,
        }
    }
    /// The answer's setup for an offered one (RFC 4145 §4.1, RFC 6135 §4.1): `actpass` and
    /// `passive` are answered `active`, `active` is answered `passive`.
    pub fn answer(&self) -> Setup<'static> {
        match self {
            Setup::Active => Setup::Passive,
            Setup::HoldConn => Setup::HoldConn,
            _ => Setup::Active,
        }
    }
}

/// `a=connection` (RFC 4145 §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConnectionMode<'a> {
    /// `new`.
    New,
    /// `existing`.
    Existing,
    /// Any other token.
    Unknown(&'a str),
}

impl<'a> ConnectionMode<'a> {
    /// The token.
    pub fn as_str(&self) -> &'a str {
        match self {
            ConnectionMode::New => "new",
            ConnectionMode::Existing => "existing",
            ConnectionMode::Unknown(s) => s,
        }
    }
}

/// `a=fingerprint:<hash-func> <fingerprint>` (RFC 8122).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fingerprint<'a> {
    /// Hash function (`sha-256`).
    pub hash_func: &'a str,
    /// Colon-separated upper-case hex bytes.
    pub fingerprint: &'a str,
}

/// `a=crypto:<tag> <crypto-suite> <key-params> [<session-params>]` (RFC 4568 §9.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Crypto<'a> {
    /// Tag, 1–9 digits.
    pub tag: u32,
    /// Crypto suite (`AES_CM_128_HMAC_SHA1_80`).
    pub suite: &'a str,
    /// Key parameters as written (`inline:...`, several separated by `;`).
    pub key_params: &'a str,
    /// Session parameters as written, if any.
    pub session_params: Option<&'a str>,
}

impl<'a> Crypto<'a> {
    /// The key parameters: `(method, info)` pairs (`("inline", "<key||salt>|2^20|1:32")`).
    pub fn keys(&self) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
        self.key_params.split(';').filter_map(|k| k.split_once(':'))
    }
}

impl fmt::Display for Crypto<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {}", self.tag, self.suite, self.key_params)?;
        if let Some(s) = self.session_params {
            write!(f, " {s}")?;
        }
        Ok(())
    }
}

/// `status-type` of a precondition (RFC 3312 §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StatusType {
    /// `e2e`: end to end.
    E2e,
    /// `local`: the writer's access segment.
    Local,
    /// `remote`: the peer's access segment.
    Remote,
}

impl StatusType {
    fn parse(s: &str) -> Result<StatusType, ErrorKind> {
        Ok(match s {
            "e2e" => StatusType::E2e,
            "local" => StatusType::Local,
            "remote" => StatusType::Remote,
            _ => return Err(ErrorKind::Syntax("status-type e2e / local / remote")),
        })
    }
    /// The token.
    pub fn as_str(&self) -> &'static str {
        match self {
            StatusType::E2e => "e2e",
            StatusType::Local => "local",
            StatusType::Remote => "remote",
        }
    }
    /// The same segment named by the peer: `local` ↔ `remote`.
    pub fn reverse(&self) -> StatusType {
        match self {
            StatusType::E2e => StatusType::E2e,
            StatusType::Local => StatusType::Remote,
            StatusType::Remote => StatusType::Local,
        }
    }
}

/// `strength-tag` of a desired-status line (RFC 3312 §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Strength {
    /// `unknown` (only in answers to offers without preconditions).
    Unknown,
    /// `failure`: the precondition failed.
    Failure,
    /// `none`: no precondition.
    None,
    /// `optional`: try, but go on without it.
    Optional,
    /// `mandatory`: the session must not start without it.
    Mandatory,
}

impl Strength {
    fn parse(s: &str) -> Result<Strength, ErrorKind> {
        Ok(match s {
            "mandatory" => Strength::Mandatory,
            "optional" => Strength::Optional,
            "none" => Strength::None,
            "failure" => Strength::Failure,
            "unknown" => Strength::Unknown,
            _ => return Err(ErrorKind::Syntax("strength-tag")),
        })
    }
    /// The token.
    pub fn as_str(&self) -> &'static str {
        match self {
            Strength::Mandatory => "mandatory",
            Strength::Optional => "optional",
            Strength::None => "none",
            Strength::Failure => "failure",
            Strength::Unknown => "unknown",
        }
    }
}

/// `direction-tag` of a precondition line (RFC 3312 §5): which media directions it covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PrecondDirection {
    /// `none`.
    None,
    /// `send`.
    Send,
    /// `recv`.
    Recv,
    /// `sendrecv`.
    SendRecv,
}

impl PrecondDirection {
    fn parse(s: &str) -> Result<PrecondDirection, ErrorKind> {
        Ok(match s {
            "none" => PrecondDirection::None,
            "send" => PrecondDirection::Send,
            "recv" => PrecondDirection::Recv,
            "sendrecv" => PrecondDirection::SendRecv,
            _ => {
                return Err(ErrorKind::Syntax(
                    "direction-tag none / send / recv / sendrecv",
                ))
            }
        })
    }
    /// The token.
    pub fn as_str(&self) -> &'static str {
        match self {
            PrecondDirection::None => "none",
            PrecondDirection::Send => "send",
            PrecondDirection::Recv => "recv",
            PrecondDirection::SendRecv => "sendrecv",
        }
    }
    /// From send and receive flags.
    pub fn from_flags(send: bool, recv: bool) -> PrecondDirection {
        match (send, recv) {
            (true, true) => PrecondDirection::SendRecv,
            (true, false) => PrecondDirection::Send,
            (false, true) => PrecondDirection::Recv,
            (false, false) => PrecondDirection::None,
        }
    }
    /// Covers the send direction.
    pub fn send(&self) -> bool {
        matches!(self, PrecondDirection::Send | PrecondDirection::SendRecv)
    }
    /// Covers the receive direction.
    pub fn recv(&self) -> bool {
        matches!(self, PrecondDirection::Recv | PrecondDirection::SendRecv)
    }
    /// As seen by the peer: `send` ↔ `recv`.
    pub fn reverse(&self) -> PrecondDirection {
        PrecondDirection::from_flags(self.recv(), self.send())
    }
}

/// `a=curr:` and `a=conf:` values: `<precondition-type> <status-type> <direction-tag>` (RFC 3312 §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PrecondStatus<'a> {
    /// Precondition type (`qos`).
    pub precondition_type: &'a str,
    /// Which segment.
    pub status_type: StatusType,
    /// Which directions.
    pub direction: PrecondDirection,
}

impl fmt::Display for PrecondStatus<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} {}",
            self.precondition_type,
            self.status_type.as_str(),
            self.direction.as_str()
        )
    }
}

/// `a=des:` value: `<precondition-type> <strength-tag> <status-type> <direction-tag>` (RFC 3312 §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PrecondDesired<'a> {
    /// Precondition type (`qos`).
    pub precondition_type: &'a str,
    /// How strongly it is wanted.
    pub strength: Strength,
    /// Which segment.
    pub status_type: StatusType,
    /// Which directions.
    pub direction: PrecondDirection,
}

impl fmt::Display for PrecondDesired<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} {} {}",
            self.precondition_type,
            self.strength.as_str(),
            self.status_type.as_str(),
            self.direction.as_str()
        )
    }
}

/// A space-separated list kept as written: MSRP `a=path` URIs, `accept-types` media types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpaceList<'a>(pub &'a str);

impl<'a> SpaceList<'a> {
    /// The items in order.
    pub fn iter(&self) -> impl Iterator<Item = &'a str> + 'a {
        fields(self.0)
    }
    /// The first item (for `a=path`: the URI of the next hop).
    pub fn first(&self) -> Option<&'a str> {
        self.iter().next()
    }
    /// The last item (for `a=path`: the endpoint's own URI, RFC 4975 §8.1).
    pub fn last(&self) -> Option<&'a str> {
        self.iter().last()
    }
    /// True when `item` is listed (media types compare without case; `*` matches anything).
    pub fn contains(&self, item: &str) -> bool {
        self.iter().any(|t| {
            t == "*"
                || t.eq_ignore_ascii_case(item)
                || t.strip_suffix("/*").is_some_and(|major| {
                    item.split_once('/')
                        .is_some_and(|(m, _)| m.eq_ignore_ascii_case(major))
                })
        })
    }
}

impl fmt::Display for SpaceList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, t) in self.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            f.write_str(t)?;
        }
        Ok(())
    }
}

/// `a=file-selector` (RFC 5547 §6): the file an MSRP file transfer describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FileSelector<'a> {
    /// `name:"..."` without the quotes.
    pub name: Option<&'a str>,
    /// `type:` media type with any parameters.
    pub file_type: Option<&'a str>,
    /// `size:` in octets.
    pub size: Option<u64>,
    /// `hash:<algorithm>:<value>`.
    pub hash: Option<(&'a str, &'a str)>,
}

impl fmt::Display for FileSelector<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut sep = "";
        if let Some(n) = self.name {
            write!(f, "name:\"{n}\"")?;
            sep = " ";
        }
        if let Some(t) = self.file_type {
            write!(f, "{sep}type:{t}")?;
            sep = " ";
        }
        if let Some(s) = self.size {
            write!(f, "{sep}size:{s}")?;
            sep = " ";
        }
        if let Some((a, h)) = self.hash {
            write!(f, "{sep}hash:{a}:{h}")?;
        }
        Ok(())
    }
}

/// `a=file-date` (RFC 5547 §6): quoted RFC 5322 date-times.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FileDate<'a> {
    /// `creation:"..."`.
    pub creation: Option<&'a str>,
    /// `modification:"..."`.
    pub modification: Option<&'a str>,
    /// `read:"..."`.
    pub read: Option<&'a str>,
}

impl fmt::Display for FileDate<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut sep = "";
        for (n, v) in [
            ("creation", self.creation),
            ("modification", self.modification),
            ("read", self.read),
        ] {
            if let Some(v) = v {
                write!(f, "{sep}{n}:\"{v}\"")?;
                sep = " ";
            }
        }
        Ok(())
    }
}

/// `a=file-range:<start>-<stop>` (RFC 5547 §6): 1-based octets, `*` for an unknown end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileRange {
    /// First octet, from 1.
    pub start: u64,
    /// Last octet, `None` for `*`.
    pub stop: Option<u64>,
}

impl fmt::Display for FileRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.stop {
            Some(s) => write!(f, "{}-{s}", self.start),
            None => write!(f, "{}-*", self.start),
        }
    }
}

/// A typed attribute. Names this crate does not know, and known names used as the other kind
/// (a value on `a=rtcp-mux`), are [`Attr::Other`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Attr<'a> {
    /// `a=rtpmap`.
    Rtpmap(Rtpmap<'a>),
    /// `a=fmtp`.
    Fmtp(Fmtp<'a>),
    /// `a=ptime` in milliseconds.
    Ptime(u32),
    /// `a=maxptime` in milliseconds.
    MaxPtime(u32),
    /// `a=sendrecv` / `sendonly` / `recvonly` / `inactive`.
    Direction(Direction),
    /// `a=rtcp` (RFC 3605).
    Rtcp(Rtcp<'a>),
    /// `a=rtcp-mux` (RFC 5761).
    RtcpMux,
    /// `a=mid` (RFC 5888).
    Mid(&'a str),
    /// `a=group` (RFC 5888).
    Group(Group<'a>),
    /// `a=candidate` (RFC 8839), kept as text.
    Candidate(&'a str),
    /// `a=setup` (RFC 4145, RFC 6135).
    Setup(Setup<'a>),
    /// `a=connection` (RFC 4145).
    Connection(ConnectionMode<'a>),
    /// `a=fingerprint` (RFC 8122).
    Fingerprint(Fingerprint<'a>),
    /// `a=crypto` (RFC 4568).
    Crypto(Crypto<'a>),
    /// `a=curr` (RFC 3312).
    Curr(PrecondStatus<'a>),
    /// `a=des` (RFC 3312).
    Des(PrecondDesired<'a>),
    /// `a=conf` (RFC 3312).
    Conf(PrecondStatus<'a>),
    /// `a=path` (RFC 4975 §8.2): MSRP URIs, the endpoint's own last.
    Path(SpaceList<'a>),
    /// `a=accept-types` (RFC 4975 §8.6).
    AcceptTypes(SpaceList<'a>),
    /// `a=accept-wrapped-types` (RFC 4975 §8.6).
    AcceptWrappedTypes(SpaceList<'a>),
    /// `a=max-size` in octets (RFC 4975 §8.6).
    MaxSize(u64),
    /// `a=file-selector` (RFC 5547).
    FileSelector(FileSelector<'a>),
    /// `a=file-transfer-id` (RFC 5547).
    FileTransferId(&'a str),
    /// `a=file-disposition` (RFC 5547).
    FileDisposition(&'a str),
    /// `a=file-date` (RFC 5547).
    FileDate(FileDate<'a>),
    /// `a=file-icon` (RFC 5547): a `cid:` URL.
    FileIcon(&'a str),
    /// `a=file-range` (RFC 5547).
    FileRange(FileRange),
    /// Any other attribute, as written.
    Other {
        /// Name.
        name: &'a str,
        /// Value, if any.
        value: Option<&'a str>,
    },
}

fn num<T: std::str::FromStr>(s: &str, what: &'static str) -> Result<T, ErrorKind> {
    if !is_digits(s) {
        return Err(ErrorKind::Syntax(what));
    }
    s.parse().map_err(|_| ErrorKind::Overflow(what))
}

/// The first space-separated field and the rest after it.
fn next_field(s: &str) -> (&str, &str) {
    let s = s.trim_start_matches(' ');
    match s.find(' ') {
        Some(i) => (&s[..i], &s[i..]),
        None => (s, ""),
    }
}

/// Printable, no space and no quote: safe to write back unquoted.
fn plain(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_graphic() && b != b'"')
}

fn need<'a>(v: Option<&'a str>, what: &'static str) -> Result<&'a str, ErrorKind> {
    match v {
        Some(v) if !v.trim().is_empty() => Ok(v.trim_matches(' ')),
        _ => Err(ErrorKind::Syntax(what)),
    }
}

/// `key:"quoted"` / `key:value` items of file-selector and file-date.
fn selector_items(v: &str) -> Result<Vec<(&str, &str)>, ErrorKind> {
    let mut out = Vec::new();
    let mut rest = v.trim_start_matches(' ');
    while !rest.is_empty() {
        let (k, after) = rest
            .split_once(':')
            .ok_or(ErrorKind::Syntax("selector:value"))?;
        if !is_token(k) {
            return Err(ErrorKind::Syntax("a selector name"));
        }
        let (val, next) = if let Some(q) = after.strip_prefix('"') {
            let end = q.find('"').ok_or(ErrorKind::Syntax("closing quote"))?;
            (&q[..end], &q[end + 1..])
        } else {
            match after.find(' ') {
                Some(i) => (&after[..i], &after[i..]),
                None => (after, ""),
            }
        };
        if !next.is_empty() && !next.starts_with(' ') {
            return Err(ErrorKind::Syntax("space between selectors"));
        }
        out.push((k, val));
        if out.len() > 16 {
            return Err(ErrorKind::TooManyFields);
        }
        rest = next.trim_start_matches(' ');
    }
    Ok(out)
}

impl<'a> Attr<'a> {
    /// Parses the value of attribute `name`.
    pub fn parse(name: &'a str, value: Option<&'a str>) -> Result<Attr<'a>, ErrorKind> {
        if let Some(d) = Direction::from_name(name) {
            return match value {
                None => Ok(Attr::Direction(d)),
                Some(_) => Err(ErrorKind::Syntax("no value on a direction attribute")),
            };
        }
        Ok(match name {
            "rtpmap" => {
                let v = need(value, "rtpmap value")?;
                let (pt, enc) = v
                    .split_once(' ')
                    .ok_or(ErrorKind::Syntax("<payload type> <encoding>/<clock rate>"))?;
                let payload_type: u8 = num(pt, "payload type")?;
                if payload_type > 127 {
                    return Err(ErrorKind::Overflow("payload type"));
                }
                let enc = enc.trim_matches(' ');
                let mut parts = enc.splitn(3, '/');
                let encoding = parts.next().unwrap_or("");
                if !is_token(encoding) {
                    return Err(ErrorKind::Syntax("an encoding name"));
                }
                let clock_rate = num(parts.next().unwrap_or(""), "clock rate")?;
                let params = parts.next();
                if let Some(p) = params {
                    if !is_token(p) {
                        return Err(ErrorKind::Syntax("encoding parameters"));
                    }
                }
                Attr::Rtpmap(Rtpmap {
                    payload_type,
                    encoding,
                    clock_rate,
                    params,
                })
            }
            "fmtp" => {
                let v = need(value, "fmtp value")?;
                let (format, params) = match v.split_once(' ') {
                    Some((f, p)) => (f, p.trim_matches(' ')),
                    None => (v, ""),
                };
                if !is_token(format) {
                    return Err(ErrorKind::Syntax("a format"));
                }
                Attr::Fmtp(Fmtp { format, params })
            }
            "ptime" => Attr::Ptime(num(need(value, "ptime")?, "ptime")?),
            "maxptime" => Attr::MaxPtime(num(need(value, "maxptime")?, "maxptime")?),
            "rtcp" => {
                let v = need(value, "rtcp port")?;
                let (p, rest) = match v.split_once(' ') {
                    Some((p, r)) => (p, Some(r)),
                    None => (v, None),
                };
                let port: u64 = num(p, "rtcp port")?;
                let port = u16::try_from(port).map_err(|_| ErrorKind::Overflow("rtcp port"))?;
                let connection = match rest {
                    Some(r) => Some(parse_c(r)?),
                    None => None,
                };
                Attr::Rtcp(Rtcp { port, connection })
            }
            "rtcp-mux" if value.is_none() => Attr::RtcpMux,
            "mid" => {
                let v = need(value, "mid")?;
                if !is_token(v) {
                    return Err(ErrorKind::Syntax("an identification-tag"));
                }
                Attr::Mid(v)
            }
            "group" => {
                let v = need(value, "group semantics")?;
                let (semantics, tags) = v.split_once(' ').unwrap_or((v, ""));
                if !is_token(semantics) || !fields(tags).all(is_token) {
                    return Err(ErrorKind::Syntax("<semantics> *(SP <tag>)"));
                }
                Attr::Group(Group { semantics, tags })
            }
            "candidate" => Attr::Candidate(need(value, "candidate")?),
            "setup" => {
                let v = need(value, "setup role")?;
                if !is_token(v) {
                    return Err(ErrorKind::Syntax("a setup role"));
                }
                Attr::Setup(Setup::parse(v))
            }
            "connection" => {
                let v = need(value, "connection")?;
                if !is_token(v) {
                    return Err(ErrorKind::Syntax("new / existing"));
                }
                Attr::Connection(match v {
                    "new" => ConnectionMode::New,
                    "existing" => ConnectionMode::Existing,
                    o => ConnectionMode::Unknown(o),
                })
            }
            "fingerprint" => {
                let v = need(value, "fingerprint")?;
                let (h, fp) = v
                    .split_once(' ')
                    .ok_or(ErrorKind::Syntax("<hash-func> <fingerprint>"))?;
                let fp = fp.trim_matches(' ');
                if !is_token(h)
                    || fp.is_empty()
                    || !fp.bytes().all(|b| b.is_ascii_hexdigit() || b == b':')
                {
                    return Err(ErrorKind::Syntax("<hash-func> <hex:hex:...>"));
                }
                Attr::Fingerprint(Fingerprint {
                    hash_func: h,
                    fingerprint: fp,
                })
            }
            "crypto" => {
                let v = need(value, "crypto")?;
                let (tag_s, rest) = next_field(v);
                let (suite, rest) = next_field(rest);
                let (key_params, rest) = next_field(rest);
                if tag_s.len() > 9 {
                    return Err(ErrorKind::Overflow("crypto tag"));
                }
                let tag = num(tag_s, "crypto tag")?;
                if !is_token(suite) || !key_params.contains(':') {
                    return Err(ErrorKind::Syntax("<crypto-suite> <method>:<key info>"));
                }
                let rest = rest.trim_matches(' ');
                Attr::Crypto(Crypto {
                    tag,
                    suite,
                    key_params,
                    session_params: (!rest.is_empty()).then_some(rest),
                })
            }
            "curr" | "conf" => {
                let v = need(value, "precondition status")?;
                let mut it = fields(v);
                let precondition_type = it.next().unwrap_or("");
                if !is_token(precondition_type) {
                    return Err(ErrorKind::Syntax("a precondition-type"));
                }
                let status_type = StatusType::parse(it.next().unwrap_or(""))?;
                let direction = PrecondDirection::parse(it.next().unwrap_or(""))?;
                if it.next().is_some() {
                    return Err(ErrorKind::Syntax("<type> <status-type> <direction-tag>"));
                }
                let s = PrecondStatus {
                    precondition_type,
                    status_type,
                    direction,
                };
                if name == "curr" {
                    Attr::Curr(s)
                } else {
                    Attr::Conf(s)
                }
            }
            "des" => {
                let v = need(value, "desired status")?;
                let mut it = fields(v);
                let precondition_type = it.next().unwrap_or("");
                if !is_token(precondition_type) {
                    return Err(ErrorKind::Syntax("a precondition-type"));
                }
                let strength = Strength::parse(it.next().unwrap_or(""))?;
                let status_type = StatusType::parse(it.next().unwrap_or(""))?;
                let direction = PrecondDirection::parse(it.next().unwrap_or(""))?;
                if it.next().is_some() {
                    return Err(ErrorKind::Syntax(
                        "<type> <strength> <status-type> <direction-tag>",
                    ));
                }
                Attr::Des(PrecondDesired {
                    precondition_type,
                    strength,
                    status_type,
                    direction,
                })
            }
            "path" => {
                let v = need(value, "MSRP URIs")?;
                if !fields(v).all(|u| {
                    let l = u.to_ascii_lowercase();
                    (l.starts_with("msrp://") || l.starts_with("msrps://"))
                        && u.bytes().all(|b| b.is_ascii_graphic())
                }) {
                    return Err(ErrorKind::Syntax("msrp: or msrps: URIs"));
                }
                Attr::Path(SpaceList(v))
            }
            "accept-types" | "accept-wrapped-types" => {
                let v = need(value, "media types")?;
                if !fields(v).all(|t| {
                    t == "*"
                        || t.split_once('/')
                            .is_some_and(|(a, b)| is_token(a) && is_token(b))
                }) {
                    return Err(ErrorKind::Syntax("type/subtype or *"));
                }
                if name == "accept-types" {
                    Attr::AcceptTypes(SpaceList(v))
                } else {
                    Attr::AcceptWrappedTypes(SpaceList(v))
                }
            }
            "max-size" => Attr::MaxSize(num(need(value, "max-size")?, "max-size")?),
            "file-selector" => {
                let v = need(value, "file selectors")?;
                let mut s = FileSelector::default();
                for (k, val) in selector_items(v)? {
                    match k {
                        "name" if !val.contains('"') => s.name = Some(val),
                        "type" => {
                            if !val.contains('/') || !plain(val) {
                                return Err(ErrorKind::Syntax("type:<type>/<subtype>"));
                            }
                            s.file_type = Some(val)
                        }
                        "size" => s.size = Some(num(val, "file size")?),
                        "hash" => {
                            let (a, h) = val
                                .split_once(':')
                                .ok_or(ErrorKind::Syntax("hash:<algorithm>:<value>"))?;
                            if !is_token(a) || !plain(h) {
                                return Err(ErrorKind::Syntax("hash:<algorithm>:<value>"));
                            }
                            s.hash = Some((a, h))
                        }
                        _ => return Err(ErrorKind::Syntax("name / type / size / hash selector")),
                    }
                }
                Attr::FileSelector(s)
            }
            "file-transfer-id" => {
                let v = need(value, "file-transfer-id")?;
                if !v.bytes().all(|b| b.is_ascii_graphic()) {
                    return Err(ErrorKind::Syntax("a file-transfer-id"));
                }
                Attr::FileTransferId(v)
            }
            "file-disposition" => {
                let v = need(value, "file-disposition")?;
                if !is_token(v) {
                    return Err(ErrorKind::Syntax("a disposition token"));
                }
                Attr::FileDisposition(v)
            }
            "file-date" => {
                let v = need(value, "file dates")?;
                let mut d = FileDate::default();
                for (k, val) in selector_items(v)? {
                    match k {
                        _ if val.contains('"') => {
                            return Err(ErrorKind::Syntax("a quoted date-time"))
                        }
                        "creation" => d.creation = Some(val),
                        "modification" => d.modification = Some(val),
                        "read" => d.read = Some(val),
                        _ => return Err(ErrorKind::Syntax("creation / modification / read")),
                    }
                }
                Attr::FileDate(d)
            }
            "file-icon" => {
                let v = need(value, "file-icon")?;
                if !v.bytes().all(|b| b.is_ascii_graphic()) {
                    return Err(ErrorKind::Syntax("a cid: URL"));
                }
                Attr::FileIcon(v)
            }
            "file-range" => {
                let v = need(value, "file-range")?;
                let (a, b) = v
                    .split_once('-')
                    .ok_or(ErrorKind::Syntax("<start>-<stop>"))?;
                let start = num(a, "file-range start")?;
                let stop = if b == "*" {
                    None
                } else {
                    Some(num(b, "file-range stop")?)
                };
                Attr::FileRange(FileRange { start, stop })
            }
            _ => Attr::Other { name, value },
        })
    }

    /// The attribute name.
    pub fn name(&self) -> &'a str {
        match self {
            Attr::Rtpmap(_) => "rtpmap",
            Attr::Fmtp(_) => "fmtp",
            Attr::Ptime(_) => "ptime",
            Attr::MaxPtime(_) => "maxptime",
            Attr::Direction(d) => d.as_str(),
            Attr::Rtcp(_) => "rtcp",
            Attr::RtcpMux => "rtcp-mux",
            Attr::Mid(_) => "mid",
            Attr::Group(_) => "group",
            Attr::Candidate(_) => "candidate",
            Attr::Setup(_) => "setup",
            Attr::Connection(_) => "connection",
            Attr::Fingerprint(_) => "fingerprint",
            Attr::Crypto(_) => "crypto",
            Attr::Curr(_) => "curr",
            Attr::Des(_) => "des",
            Attr::Conf(_) => "conf",
            Attr::Path(_) => "path",
            Attr::AcceptTypes(_) => "accept-types",
            Attr::AcceptWrappedTypes(_) => "accept-wrapped-types",
            Attr::MaxSize(_) => "max-size",
            Attr::FileSelector(_) => "file-selector",
            Attr::FileTransferId(_) => "file-transfer-id",
            Attr::FileDisposition(_) => "file-disposition",
            Attr::FileDate(_) => "file-date",
            Attr::FileIcon(_) => "file-icon",
            Attr::FileRange(_) => "file-range",
            Attr::Other { name, .. } => name,
        }
    }
}

impl fmt::Display for Attr<'_> {
    /// `name[:value]` in canonical form (no `a=` prefix, no line end).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.name();
        match self {
            Attr::Rtpmap(r) => write!(f, "{n}:{r}"),
            Attr::Fmtp(x) => write!(f, "{n}:{x}"),
            Attr::Ptime(x) | Attr::MaxPtime(x) => write!(f, "{n}:{x}"),
            Attr::Direction(_) | Attr::RtcpMux => f.write_str(n),
            Attr::Rtcp(r) => write!(f, "{n}:{r}"),
            Attr::Mid(x) | Attr::Candidate(x) | Attr::FileTransferId(x) => write!(f, "{n}:{x}"),
            Attr::FileDisposition(x) | Attr::FileIcon(x) => write!(f, "{n}:{x}"),
            Attr::Group(g) => write!(f, "{n}:{g}"),
            Attr::Setup(s) => write!(f, "{n}:{}", s.as_str()),
            Attr::Connection(c) => write!(f, "{n}:{}", c.as_str()),
            Attr::Fingerprint(x) => write!(f, "{n}:{} {}", x.hash_func, x.fingerprint),
            Attr::Crypto(c) => write!(f, "{n}:{c}"),
            Attr::Curr(s) | Attr::Conf(s) => write!(f, "{n}:{s}"),
            Attr::Des(d) => write!(f, "{n}:{d}"),
            Attr::Path(l) | Attr::AcceptTypes(l) | Attr::AcceptWrappedTypes(l) => {
                write!(f, "{n}:{l}")
            }
            Attr::MaxSize(x) => write!(f, "{n}:{x}"),
            Attr::FileSelector(s) => write!(f, "{n}:{s}"),
            Attr::FileDate(d) => write!(f, "{n}:{d}"),
            Attr::FileRange(r) => write!(f, "{n}:{r}"),
            Attr::Other { value: Some(v), .. } => write!(f, "{n}:{v}"),
            Attr::Other { value: None, .. } => f.write_str(n),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(line: &str) -> Attr<'_> {
        let (n, v) = match line.split_once(':') {
            Some((n, v)) => (n, Some(v)),
            None => (line, None),
        };
        let a = Attr::parse(n, v).unwrap_or_else(|e| panic!("{line}: {e}"));
        // Display is canonical: it parses again to the same text
        let shown = a.to_string();
        let (n2, v2) = match shown.split_once(':') {
            Some((n, v)) => (n, Some(v)),
            None => (shown.as_str(), None),
        };
        assert_eq!(Attr::parse(n2, v2).unwrap().to_string(), shown, "{line}");
        a
    }

    #[test]
    fn typed_values() {
        assert_eq!(
            t("rtpmap:116 AMR-WB/16000/1"),
            Attr::Rtpmap(Rtpmap {
                payload_type: 116,
                encoding: "AMR-WB",
                clock_rate: 16000,
                params: Some("1")
            })
        );
        let Attr::Fmtp(f) = t("fmtp:116 mode-change-capability=2; max-red=0") else {
            panic!()
        };
        assert_eq!(
            (f.get("max-red"), f.get("MODE-CHANGE-CAPABILITY")),
            (Some("0"), Some("2"))
        );
        let Attr::Fmtp(f) = t("fmtp:111 0-15") else {
            panic!()
        };
        assert_eq!(f.pairs().collect::<Vec<_>>(), [("0-15", None)]);
        assert_eq!(t("ptime:20"), Attr::Ptime(20));
        assert_eq!(t("maxptime:240"), Attr::MaxPtime(240));
        assert_eq!(t("inactive"), Attr::Direction(Direction::Inactive));
        let Attr::Rtcp(r) = t("rtcp:53020 IN IP6 2001:2345:6789:ABCD:EF01:2345:6789:ABCD") else {
            panic!()
        };
        assert_eq!((r.port, r.connection.unwrap().addr_type), (53020, "IP6"));
        assert_eq!(
            t("rtcp:9"),
            Attr::Rtcp(Rtcp {
                port: 9,
                connection: None
            })
        );
        assert_eq!(t("rtcp-mux"), Attr::RtcpMux);
        assert_eq!(t("mid:1"), Attr::Mid("1"));
        let Attr::Group(g) = t("group:BUNDLE audio video") else {
            panic!()
        };
        assert_eq!(
            (g.semantics, g.tags().collect::<Vec<_>>()),
            ("BUNDLE", vec!["audio", "video"])
        );
        assert!(
            matches!(t("candidate:1 1 UDP 2130706431 10.0.1.1 8998 typ host"), Attr::Candidate(c) if c.ends_with("host"))
        );
        assert_eq!(t("setup:actpass"), Attr::Setup(Setup::ActPass));
        assert_eq!(t("setup:other"), Attr::Setup(Setup::Unknown("other")));
        assert_eq!(
            t("connection:existing"),
            Attr::Connection(ConnectionMode::Existing)
        );
        let Attr::Fingerprint(fp) =
            t("fingerprint:sha-256 4A:AD:B9:B1:3F:82:18:3B:54:02:12:DF:3E:5D:49:6B:19:E5:7C:AB")
        else {
            panic!()
        };
        assert_eq!(fp.hash_func, "sha-256");
        // RFC 4568 §9.1
        let Attr::Crypto(c) = t("crypto:1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|2^20|1:32") else { panic!() };
        assert_eq!(
            (c.tag, c.suite, c.session_params),
            (1, "AES_CM_128_HMAC_SHA1_80", None)
        );
        assert_eq!(c.keys().next().unwrap().0, "inline");
        let Attr::Crypto(c) = t("crypto:2 F8_128_HMAC_SHA1_80 inline:MTIzNDU2Nzg5QUJDREUwMTIzNDU2Nzg5QUJjZGVm|2^20|1:4;inline:QUJjZGVmMTIzNDU2Nzg5QUJDREUwMTIzNDU2Nzg5|2^20|2:4 FEC_ORDER=FEC_SRTP") else { panic!() };
        assert_eq!(
            (c.keys().count(), c.session_params),
            (2, Some("FEC_ORDER=FEC_SRTP"))
        );
        let Attr::Des(d) = t("des:qos optional remote send") else {
            panic!()
        };
        assert_eq!(
            (d.strength, d.status_type, d.direction),
            (
                Strength::Optional,
                StatusType::Remote,
                PrecondDirection::Send
            )
        );
        assert!(
            matches!(t("conf:qos e2e recv"), Attr::Conf(c) if c.direction == PrecondDirection::Recv)
        );
        assert_eq!(t("max-size:65536"), Attr::MaxSize(65536));
        let Attr::AcceptTypes(a) =
            t("accept-types:message/cpim text/* application/im-iscomposing+xml")
        else {
            panic!()
        };
        assert!(a.contains("TEXT/plain") && a.contains("message/CPIM") && !a.contains("image/png"));
        assert_eq!(
            t("file-range:1-*"),
            Attr::FileRange(FileRange {
                start: 1,
                stop: None
            })
        );
        assert_eq!(
            t("file-disposition:render"),
            Attr::FileDisposition("render")
        );
        assert_eq!(
            t("x-unknown:with: colons"),
            Attr::Other {
                name: "x-unknown",
                value: Some("with: colons")
            }
        );
    }

    #[test]
    fn malformed_values() {
        for (n, v) in [
            ("rtpmap", Some("128 X/8000")),
            ("rtpmap", Some("96 X")),
            ("rtpmap", None),
            ("ptime", Some("20.5")),
            ("sendrecv", Some("x")),
            ("rtcp", Some("70000")),
            ("curr", Some("qos e2e maybe")),
            ("des", Some("qos strong e2e send")),
            ("des", Some("qos mandatory e2e")),
            ("path", Some("sip:x@y")),
            ("accept-types", Some("text")),
            ("file-selector", Some("name:\"unterminated")),
            ("file-selector", Some("colour:red")),
            ("file-range", Some("x-2")),
            ("crypto", Some("1234567890 SUITE inline:x")),
            ("fingerprint", Some("sha-1 zz")),
        ] {
            assert!(Attr::parse(n, v).is_err(), "{n}:{v:?} parsed");
        }
    }

    #[test]
    fn direction_algebra() {
        use Direction::*;
        assert_eq!(SendOnly.reverse(), RecvOnly);
        assert_eq!(SendRecv.intersect(RecvOnly), RecvOnly);
        assert_eq!(SendOnly.intersect(RecvOnly), Inactive);
        assert_eq!(PrecondDirection::Send.reverse(), PrecondDirection::Recv);
        assert_eq!(StatusType::Local.reverse(), StatusType::Remote);
        assert_eq!(Setup::Passive.answer(), Setup::Active);
    }
}
