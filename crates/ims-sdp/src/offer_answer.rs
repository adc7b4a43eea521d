//! Offer/answer helpers (RFC 3264): answering an offer, hold and resume.

use crate::attr::{Attr, Direction, Setup};
use crate::builder::{
    AttributeBuf, ConnectionBuf, MediaBuilder, OriginBuf, SessionBuilder, TimingBuf,
};
use crate::error::Error;
use crate::precondition::PreconditionState;
use crate::session::{Media, Session};
use crate::{PrecondDirection, StatusType};

/// A codec this side supports (matched by encoding name, clock rate and channels).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Codec {
    /// Encoding name as in `a=rtpmap` (`AMR-WB`, `telephone-event`); compared without case.
    pub name: String,
    /// Clock rate in Hz.
    pub clock_rate: u32,
    /// Audio channels (1 when `a=rtpmap` has no encoding parameters).
    pub channels: u32,
}

impl Codec {
    /// A mono codec.
    pub fn new(name: &str, clock_rate: u32) -> Self {
        Codec {
            name: name.to_owned(),
            clock_rate,
            channels: 1,
        }
    }
}

/// What this side can do for one media type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalMedia {
    /// Media type token (`audio`, `video`, `message`).
    pub media: String,
    /// The port to answer with.
    pub port: u16,
    /// Supported codecs, for RTP media. Ignored for other protocols (MSRP's `*`, T.38), whose
    /// offered formats are accepted as they are.
    pub codecs: Vec<Codec>,
    /// The directions this side is willing to use; the answer is the offer's direction seen from
    /// this side, restricted to this.
    pub direction: Direction,
    /// Extra attributes for the answered media (`a=path`, `a=accept-types`, `a=ptime`, ...).
    pub attributes: Vec<AttributeBuf>,
    /// Bandwidth lines for the answered media.
    pub bandwidths: Vec<(String, u64)>,
}

impl LocalMedia {
    /// `media` on `port`, `sendrecv`, no codecs yet.
    pub fn new(media: &str, port: u16) -> Self {
        LocalMedia {
            media: media.to_owned(),
            port,
            codecs: Vec::new(),
            direction: Direction::SendRecv,
            attributes: Vec::new(),
            bandwidths: Vec::new(),
        }
    }
    /// Adds a supported codec.
    pub fn codec(mut self, c: Codec) -> Self {
        self.codecs.push(c);
        self
    }
    /// Adds an attribute to every answer of this media type.
    pub fn attr(mut self, name: &str, value: impl Into<String>) -> Self {
        self.attributes.push(AttributeBuf::new(name, value));
        self
    }
}

/// How to answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnswerConfig {
    /// This side's `o=` line.
    pub origin: OriginBuf,
    /// This side's session-level `c=`.
    pub connection: ConnectionBuf,
    /// What this side accepts, per media type. Each entry answers at most one offered stream.
    pub media: Vec<LocalMedia>,
    /// Answer the offer's preconditions (RFC 3312) as a UE does in its 183 (TS 24.229
    /// §5.1.4.2): the answerer's local segment as given, and a request to confirm the offerer's
    /// segment when it is not yet reserved.
    pub local_qos: Option<PrecondDirection>,
}

/// The static RTP payload types of RFC 3551 §6 that are still seen: `(pt, name, rate)`.
const STATIC_PT: &[(u8, &str, u32)] = &[
    (0, "PCMU", 8000),
    (3, "GSM", 8000),
    (4, "G723", 8000),
    (8, "PCMA", 8000),
    (9, "G722", 8000),
    (13, "CN", 8000),
    (18, "G729", 8000),
    (26, "JPEG", 90000),
    (31, "H261", 90000),
    (32, "MPV", 90000),
    (34, "H263", 90000),
];

/// The codec an offered payload type names: its `a=rtpmap`, else the static table.
fn offered_codec(m: &Media<'_>, pt: u8) -> Option<(String, u32, u32)> {
    for a in m.attributes_named("rtpmap") {
        if let Ok(Attr::Rtpmap(r)) = a.typed() {
            if r.payload_type == pt {
                return Some((r.encoding.to_owned(), r.clock_rate, r.channels()));
            }
        }
    }
    STATIC_PT
        .iter()
        .find(|(p, _, _)| *p == pt)
        .map(|(_, n, r)| ((*n).to_owned(), *r, 1))
}

/// Answers `offer` (RFC 3264 §6): one media description per offered one, in the same order;
/// streams offered with port 0, streams of a type `cfg` has no entry for, and RTP streams with
/// no codec in common are rejected with port 0. Accepted RTP streams keep the offered payload
/// type numbers, `a=rtpmap` and `a=fmtp` of the common codecs in the offer's order. The `t=`
/// lines are the offer's.
pub fn answer(offer: &Session<'_>, cfg: &AnswerConfig) -> Result<SessionBuilder, Error> {
    let mut out = SessionBuilder::new(cfg.origin.clone()).connection(cfg.connection.clone());
    out.timings = offer
        .timings
        .iter()
        .map(|t| TimingBuf {
            start: t.start,
            stop: t.stop,
            repeats: Vec::new(),
        })
        .collect();
    let mut used = vec![false; cfg.media.len()];
    for m in &offer.media {
        let local = cfg
            .media
            .iter()
            .enumerate()
            .find(|(i, l)| !used[*i] && l.media.eq_ignore_ascii_case(m.media));
        let answered = match local {
            Some((i, l)) if m.port != 0 => {
                let a = answer_media(m, l, cfg)?;
                if a.is_some() {
                    used[i] = true;
                }
                a
            }
            _ => None,
        };
        out.media.push(answered.unwrap_or_else(|| reject(m)));
    }
    Ok(out)
}

/// The rejected form of an offered stream: same media, proto and formats, port 0.
pub fn reject(m: &Media<'_>) -> MediaBuilder {
    let mut r = MediaBuilder::new(m.media, 0, m.proto);
    r.formats = m.formats().map(str::to_owned).collect();
    r
}

fn answer_media(
    m: &Media<'_>,
    l: &LocalMedia,
    cfg: &AnswerConfig,
) -> Result<Option<MediaBuilder>, Error> {
    let mut a = MediaBuilder::new(m.media, l.port, m.proto);
    if m.is_rtp() {
        for f in m.formats() {
            let Ok(pt) = f.parse::<u8>() else { continue };
            let Some((name, rate, ch)) = offered_codec(m, pt) else {
                continue;
            };
            let ok = l.codecs.iter().any(|c| {
                c.name.eq_ignore_ascii_case(&name) && c.clock_rate == rate && c.channels == ch
            });
            if !ok {
                continue;
            }
            a.formats.push(f.to_owned());
            for attr in &m.attributes {
                if attr.is("rtpmap") || attr.is("fmtp") {
                    let fmt = attr.value.and_then(|v| v.split(' ').next());
                    if fmt == Some(f) {
                        a.attributes.push(AttributeBuf {
                            name: attr.name.to_owned(),
                            value: attr.value.map(str::to_owned),
                        });
                    }
                }
            }
        }
        if a.formats.is_empty() {
            return Ok(None);
        }
    } else {
        a.formats = m.formats().map(str::to_owned).collect();
        // MSRP over TCP (RFC 6135, RFC 4145): answer the connection role
        if let Some(attr) = m.attribute("setup") {
            if let Ok(Attr::Setup(s)) = attr.typed() {
                if !l.attributes.iter().any(|x| x.name == "setup") {
                    a.attributes
                        .push(AttributeBuf::new("setup", s.answer().as_str()));
                }
            }
        } else if m.proto.to_ascii_uppercase().contains("MSRP")
            && !l.attributes.iter().any(|x| x.name == "setup")
        {
            // no a=setup in the offer means active (RFC 6135 §4.1); the answerer is passive
            a.attributes
                .push(AttributeBuf::new("setup", Setup::Passive.as_str()));
        }
    }
    for (t, v) in &l.bandwidths {
        a = a.bandwidth(t, *v);
    }
    a.attributes.extend(l.attributes.iter().cloned());
    if let (Some(local_qos), Some(theirs)) = (cfg.local_qos, PreconditionState::from_media(m)?) {
        let mut mine = PreconditionState::from_peer(&theirs);
        if mine.e2e.is_some() && mine.local.is_none() {
            // end-to-end status: what this side knows is its own part
            let remote_part = mine.current(StatusType::E2e);
            mine.set_current(
                StatusType::E2e,
                PrecondDirection::from_flags(
                    local_qos.send() && remote_part.recv(),
                    local_qos.recv() && remote_part.send(),
                ),
            );
        } else {
            mine.set_current(StatusType::Local, local_qos);
            let remote = mine.current(StatusType::Remote);
            if remote != PrecondDirection::SendRecv {
                mine.request_confirmation(StatusType::Remote, PrecondDirection::SendRecv);
            }
        }
        mine.apply(&mut a);
    }
    let offered = m.direction();
    let dir = offered.reverse().intersect(l.direction);
    // sendrecv is the default (RFC 8866 §6.7): write it only when the offer wrote a direction
    if dir != Direction::SendRecv || m.own_direction().is_some() || m.session_direction.is_some() {
        a.set_direction(dir);
    }
    Ok(Some(a))
}

/// Puts one stream on hold (RFC 3264 §8.4): `sendrecv` becomes `sendonly`, `recvonly` becomes
/// `inactive`. `session_dir` is the session-level direction the stream inherits, if any.
pub fn hold_media(m: &mut MediaBuilder, session_dir: Option<Direction>) {
    let d = m
        .own_direction()
        .or(session_dir)
        .unwrap_or(Direction::SendRecv);
    m.set_direction(Direction::from_flags(d.sends(), false));
}

/// Takes one stream off hold: `sendonly` becomes `sendrecv`, `inactive` becomes `recvonly`.
pub fn resume_media(m: &mut MediaBuilder, session_dir: Option<Direction>) {
    let d = m
        .own_direction()
        .or(session_dir)
        .unwrap_or(Direction::SendRecv);
    m.set_direction(Direction::from_flags(d.sends(), true));
}

/// Puts every active stream (port not 0) on hold with [`hold_media`] and increments
/// `sess-version` (RFC 3264 §8).
pub fn hold(s: &mut SessionBuilder) {
    let session_dir = s.direction();
    for m in s.media.iter_mut().filter(|m| m.port != 0) {
        hold_media(m, session_dir);
    }
    s.origin.bump_version();
}

/// Takes every active stream off hold with [`resume_media`] and increments `sess-version`.
pub fn resume(s: &mut SessionBuilder) {
    let session_dir = s.direction();
    for m in s.media.iter_mut().filter(|m| m.port != 0) {
        resume_media(m, session_dir);
    }
    s.origin.bump_version();
}

/// True when the remote party put the stream on hold: its answer or offer says it will not send
/// (`sendonly` from it is fine, `recvonly` or `inactive` means held by it, RFC 3264 §8.4).
pub fn is_held_by_peer(m: &Media<'_>) -> bool {
    !m.direction().sends()
}
