//! Owned, editable session descriptions: [`SessionBuilder`] and [`MediaBuilder`].
//!
//! A builder writes lines in the order of RFC 8866 §9 with CRLF line ends. Built from a parsed
//! [`Session`] it keeps every line (unknown attributes included, in order), so a description
//! that was already in that order and used CRLF writes back byte for byte.

use crate::attr::{Attr, Direction};
use crate::error::Error;
use crate::session::{Connection, Media, Origin, Session};
use std::fmt::{self, Write as _};

/// An owned `o=` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OriginBuf {
    /// `username` (`-` when none).
    pub username: String,
    /// `sess-id` digits.
    pub session_id: String,
    /// `sess-version` digits.
    pub session_version: String,
    /// `nettype` (`IN`).
    pub net_type: String,
    /// `addrtype` (`IP4` / `IP6`).
    pub addr_type: String,
    /// Unicast address or domain name.
    pub address: String,
}

impl OriginBuf {
    /// `IN IP4` / `IN IP6` origin for `address` (IP6 when it contains a `:`).
    pub fn new(username: &str, session_id: u64, session_version: u64, address: &str) -> Self {
        OriginBuf {
            username: username.to_owned(),
            session_id: session_id.to_string(),
            session_version: session_version.to_string(),
            net_type: "IN".to_owned(),
            addr_type: if address.contains(':') { "IP6" } else { "IP4" }.to_owned(),
            address: address.to_owned(),
        }
    }
    /// Adds one to `sess-version` (decimal, any length), as every changed offer or answer must
    /// (RFC 3264 §8).
    pub fn bump_version(&mut self) {
        let mut digits: Vec<u8> = self.session_version.bytes().collect();
        let mut i = digits.len();
        loop {
            if i == 0 {
                digits.insert(0, b'1');
                break;
            }
            i -= 1;
            if digits[i] == b'9' {
                digits[i] = b'0';
            } else {
                digits[i] += 1;
                break;
            }
        }
        self.session_version = String::from_utf8(digits).unwrap_or_else(|_| "1".to_owned());
    }
}

impl From<&Origin<'_>> for OriginBuf {
    fn from(o: &Origin<'_>) -> Self {
        OriginBuf {
            username: o.username.to_owned(),
            session_id: o.session_id.to_owned(),
            session_version: o.session_version.to_owned(),
            net_type: o.net_type.to_owned(),
            addr_type: o.addr_type.to_owned(),
            address: o.address.to_owned(),
        }
    }
}

/// An owned `c=` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionBuf {
    /// `nettype` (`IN`).
    pub net_type: String,
    /// `addrtype` (`IP4` / `IP6`).
    pub addr_type: String,
    /// Address with any `/ttl` and `/count`.
    pub address: String,
}

impl ConnectionBuf {
    /// `IN IP4 <address>` or `IN IP6 <address>` (IP6 when it contains a `:`).
    pub fn new(address: &str) -> Self {
        ConnectionBuf {
            net_type: "IN".to_owned(),
            addr_type: if address.contains(':') { "IP6" } else { "IP4" }.to_owned(),
            address: address.to_owned(),
        }
    }
}

impl From<&Connection<'_>> for ConnectionBuf {
    fn from(c: &Connection<'_>) -> Self {
        ConnectionBuf {
            net_type: c.net_type.to_owned(),
            addr_type: c.addr_type.to_owned(),
            address: c.address_raw.to_owned(),
        }
    }
}

/// An owned `b=` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BandwidthBuf {
    /// `bwtype` (`AS`, `TIAS`, `RS`, `RR`, `CT`, ...).
    pub bw_type: String,
    /// Value.
    pub value: u64,
}

/// An owned `t=` line with its `r=` values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimingBuf {
    /// Start time.
    pub start: u64,
    /// Stop time.
    pub stop: u64,
    /// `r=` values.
    pub repeats: Vec<String>,
}

/// An owned `a=` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttributeBuf {
    /// Name.
    pub name: String,
    /// Value after `:`, if any.
    pub value: Option<String>,
}

impl AttributeBuf {
    /// `a=<name>:<value>`.
    pub fn new(name: &str, value: impl Into<String>) -> Self {
        AttributeBuf {
            name: name.to_owned(),
            value: Some(value.into()),
        }
    }
    /// `a=<name>` (a property attribute).
    pub fn flag(name: &str) -> Self {
        AttributeBuf {
            name: name.to_owned(),
            value: None,
        }
    }
    /// From a typed attribute (its canonical text).
    pub fn from_attr(a: &Attr<'_>) -> Self {
        let text = a.to_string();
        match text.split_once(':') {
            Some((n, v)) => AttributeBuf::new(n, v),
            None => AttributeBuf::flag(&text),
        }
    }
    /// The typed value.
    pub fn typed(&self) -> Result<Attr<'_>, Error> {
        Attr::parse(&self.name, self.value.as_deref()).map_err(|kind| Error::new(kind, 0, 0))
    }
}

impl fmt::Display for AttributeBuf {
    /// `name[:value]` (no `a=` prefix, no line end).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.value {
            Some(v) => write!(f, "{}:{v}", self.name),
            None => f.write_str(&self.name),
        }
    }
}

/// An owned media description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaBuilder {
    /// `media` token.
    pub media: String,
    /// Port (0 rejects the stream).
    pub port: u16,
    /// `/<number of ports>`.
    pub port_count: Option<u16>,
    /// `proto`.
    pub proto: String,
    /// Formats in order (at least one is needed on the wire).
    pub formats: Vec<String>,
    /// `i=`.
    pub info: Option<String>,
    /// `c=` lines.
    pub connections: Vec<ConnectionBuf>,
    /// `b=` lines.
    pub bandwidths: Vec<BandwidthBuf>,
    /// `k=`.
    pub key: Option<String>,
    /// `a=` lines in order.
    pub attributes: Vec<AttributeBuf>,
}

impl MediaBuilder {
    /// `m=<media> <port> <proto>` with no formats or attributes yet.
    pub fn new(media: &str, port: u16, proto: &str) -> Self {
        MediaBuilder {
            media: media.to_owned(),
            port,
            port_count: None,
            proto: proto.to_owned(),
            formats: Vec::new(),
            info: None,
            connections: Vec::new(),
            bandwidths: Vec::new(),
            key: None,
            attributes: Vec::new(),
        }
    }
    /// Adds a format.
    pub fn format(mut self, f: impl Into<String>) -> Self {
        self.formats.push(f.into());
        self
    }
    /// Adds an RTP payload type with its `a=rtpmap` (and `a=fmtp` when `fmtp` is given).
    pub fn codec(mut self, pt: u8, rtpmap: &str, fmtp: Option<&str>) -> Self {
        self.formats.push(pt.to_string());
        self.attributes
            .push(AttributeBuf::new("rtpmap", format!("{pt} {rtpmap}")));
        if let Some(f) = fmtp {
            self.attributes
                .push(AttributeBuf::new("fmtp", format!("{pt} {f}")));
        }
        self
    }
    /// Adds a `c=` line.
    pub fn connection(mut self, c: ConnectionBuf) -> Self {
        self.connections.push(c);
        self
    }
    /// Adds a `b=` line.
    pub fn bandwidth(mut self, bw_type: &str, value: u64) -> Self {
        self.bandwidths.push(BandwidthBuf {
            bw_type: bw_type.to_owned(),
            value,
        });
        self
    }
    /// Adds `a=<name>:<value>`.
    pub fn attr(mut self, name: &str, value: impl Into<String>) -> Self {
        self.attributes.push(AttributeBuf::new(name, value));
        self
    }
    /// Adds `a=<name>`.
    pub fn flag(mut self, name: &str) -> Self {
        self.attributes.push(AttributeBuf::flag(name));
        self
    }
    /// The direction attribute of this media, if any (the last one wins).
    pub fn own_direction(&self) -> Option<Direction> {
        self.attributes
            .iter()
            .rev()
            .find_map(|a| Direction::from_name(&a.name).filter(|_| a.value.is_none()))
    }
    /// Replaces every direction attribute with one `a=<dir>` in the place of the first (or at
    /// the end).
    pub fn set_direction(&mut self, dir: Direction) {
        let at = self
            .attributes
            .iter()
            .position(|a| Direction::from_name(&a.name).is_some() && a.value.is_none());
        self.attributes
            .retain(|a| !(Direction::from_name(&a.name).is_some() && a.value.is_none()));
        let new = AttributeBuf::flag(dir.as_str());
        match at {
            Some(i) => self.attributes.insert(i.min(self.attributes.len()), new),
            None => self.attributes.push(new),
        }
    }
    /// Attributes named `name`.
    pub fn attributes_named<'s>(
        &'s self,
        name: &'s str,
    ) -> impl Iterator<Item = &'s AttributeBuf> + 's {
        self.attributes
            .iter()
            .filter(move |a| a.name.eq_ignore_ascii_case(name))
    }
    /// Removes every attribute named `name`.
    pub fn remove_attributes(&mut self, name: &str) {
        self.attributes
            .retain(|a| !a.name.eq_ignore_ascii_case(name));
    }
}

impl From<&Media<'_>> for MediaBuilder {
    fn from(m: &Media<'_>) -> Self {
        MediaBuilder {
            media: m.media.to_owned(),
            port: m.port,
            port_count: m.port_count,
            proto: m.proto.to_owned(),
            formats: m.formats().map(str::to_owned).collect(),
            info: m.info.map(str::to_owned),
            connections: m.connections.iter().map(ConnectionBuf::from).collect(),
            bandwidths: m
                .bandwidths
                .iter()
                .map(|b| BandwidthBuf {
                    bw_type: b.bw_type.to_owned(),
                    value: b.value,
                })
                .collect(),
            key: m.key.map(str::to_owned),
            attributes: m
                .attributes
                .iter()
                .map(|a| AttributeBuf {
                    name: a.name.to_owned(),
                    value: a.value.map(str::to_owned),
                })
                .collect(),
        }
    }
}

/// An owned session description; `Display` / [`SessionBuilder::build`] write it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionBuilder {
    /// `o=`.
    pub origin: OriginBuf,
    /// `s=` (`-` by default).
    pub name: String,
    /// `i=`.
    pub info: Option<String>,
    /// `u=`.
    pub uri: Option<String>,
    /// `e=` lines.
    pub emails: Vec<String>,
    /// `p=` lines.
    pub phones: Vec<String>,
    /// Session-level `c=`.
    pub connection: Option<ConnectionBuf>,
    /// Session-level `b=` lines.
    pub bandwidths: Vec<BandwidthBuf>,
    /// `t=` lines (at least one is written: `t=0 0` when empty).
    pub timings: Vec<TimingBuf>,
    /// `z=`.
    pub zone: Option<String>,
    /// `k=`.
    pub key: Option<String>,
    /// Session-level `a=` lines.
    pub attributes: Vec<AttributeBuf>,
    /// Media descriptions.
    pub media: Vec<MediaBuilder>,
}

impl SessionBuilder {
    /// A description with `origin`, `s=-`, `t=0 0` and nothing else.
    pub fn new(origin: OriginBuf) -> Self {
        SessionBuilder {
            origin,
            name: "-".to_owned(),
            info: None,
            uri: None,
            emails: Vec::new(),
            phones: Vec::new(),
            connection: None,
            bandwidths: Vec::new(),
            timings: vec![TimingBuf {
                start: 0,
                stop: 0,
                repeats: Vec::new(),
            }],
            zone: None,
            key: None,
            attributes: Vec::new(),
            media: Vec::new(),
        }
    }
    /// Sets the session-level `c=`.
    pub fn connection(mut self, c: ConnectionBuf) -> Self {
        self.connection = Some(c);
        self
    }
    /// Adds a session-level `a=<name>:<value>`.
    pub fn attr(mut self, name: &str, value: impl Into<String>) -> Self {
        self.attributes.push(AttributeBuf::new(name, value));
        self
    }
    /// Adds a media description.
    pub fn media(mut self, m: MediaBuilder) -> Self {
        self.media.push(m);
        self
    }
    /// The text of the description.
    pub fn build(&self) -> String {
        self.to_string()
    }
    /// The session-level direction attribute, if any.
    pub fn direction(&self) -> Option<Direction> {
        self.attributes
            .iter()
            .rev()
            .find_map(|a| Direction::from_name(&a.name).filter(|_| a.value.is_none()))
    }
}

impl From<&Session<'_>> for SessionBuilder {
    fn from(s: &Session<'_>) -> Self {
        SessionBuilder {
            origin: OriginBuf::from(&s.origin),
            name: s.name.to_owned(),
            info: s.info.map(str::to_owned),
            uri: s.uri.map(str::to_owned),
            emails: s.emails.iter().map(|e| (*e).to_owned()).collect(),
            phones: s.phones.iter().map(|e| (*e).to_owned()).collect(),
            connection: s.connection.as_ref().map(ConnectionBuf::from),
            bandwidths: s
                .bandwidths
                .iter()
                .map(|b| BandwidthBuf {
                    bw_type: b.bw_type.to_owned(),
                    value: b.value,
                })
                .collect(),
            timings: s
                .timings
                .iter()
                .map(|t| TimingBuf {
                    start: t.start,
                    stop: t.stop,
                    repeats: t.repeats.iter().map(|r| (*r).to_owned()).collect(),
                })
                .collect(),
            zone: s.zone.map(str::to_owned),
            key: s.key.map(str::to_owned),
            attributes: s
                .attributes
                .iter()
                .map(|a| AttributeBuf {
                    name: a.name.to_owned(),
                    value: a.value.map(str::to_owned),
                })
                .collect(),
            media: s.media.iter().map(MediaBuilder::from).collect(),
        }
    }
}

impl Session<'_> {
    /// An owned, editable copy.
    pub fn to_builder(&self) -> SessionBuilder {
        SessionBuilder::from(self)
    }
}

fn write_attrs(f: &mut fmt::Formatter<'_>, attrs: &[AttributeBuf]) -> fmt::Result {
    for a in attrs {
        match &a.value {
            Some(v) => write!(f, "a={}:{v}\r\n", a.name)?,
            None => write!(f, "a={}\r\n", a.name)?,
        }
    }
    Ok(())
}

fn write_bw(f: &mut fmt::Formatter<'_>, bws: &[BandwidthBuf]) -> fmt::Result {
    for b in bws {
        write!(f, "b={}:{}\r\n", b.bw_type, b.value)?;
    }
    Ok(())
}

fn write_c(f: &mut fmt::Formatter<'_>, c: &ConnectionBuf) -> fmt::Result {
    write!(f, "c={} {} {}\r\n", c.net_type, c.addr_type, c.address)
}

impl fmt::Display for SessionBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let o = &self.origin;
        f.write_str("v=0\r\n")?;
        write!(
            f,
            "o={} {} {} {} {} {}\r\n",
            o.username, o.session_id, o.session_version, o.net_type, o.addr_type, o.address
        )?;
        write!(f, "s={}\r\n", self.name)?;
        if let Some(i) = &self.info {
            write!(f, "i={i}\r\n")?;
        }
        if let Some(u) = &self.uri {
            write!(f, "u={u}\r\n")?;
        }
        for e in &self.emails {
            write!(f, "e={e}\r\n")?;
        }
        for p in &self.phones {
            write!(f, "p={p}\r\n")?;
        }
        if let Some(c) = &self.connection {
            write_c(f, c)?;
        }
        write_bw(f, &self.bandwidths)?;
        if self.timings.is_empty() {
            f.write_str("t=0 0\r\n")?;
        }
        for t in &self.timings {
            write!(f, "t={} {}\r\n", t.start, t.stop)?;
            for r in &t.repeats {
                write!(f, "r={r}\r\n")?;
            }
        }
        if let Some(z) = &self.zone {
            write!(f, "z={z}\r\n")?;
        }
        if let Some(k) = &self.key {
            write!(f, "k={k}\r\n")?;
        }
        write_attrs(f, &self.attributes)?;
        for m in &self.media {
            write!(f, "m={} {}", m.media, m.port)?;
            if let Some(n) = m.port_count {
                write!(f, "/{n}")?;
            }
            write!(f, " {}", m.proto)?;
            for fmt in &m.formats {
                f.write_char(' ')?;
                f.write_str(fmt)?;
            }
            f.write_str("\r\n")?;
            if let Some(i) = &m.info {
                write!(f, "i={i}\r\n")?;
            }
            for c in &m.connections {
                write_c(f, c)?;
            }
            write_bw(f, &m.bandwidths)?;
            if let Some(k) = &m.key {
                write!(f, "k={k}\r\n")?;
            }
            write_attrs(f, &m.attributes)?;
        }
        Ok(())
    }
}
