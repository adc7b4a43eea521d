//! Offer/answer helpers (RFC 3264): answering an offer, hold and resume.

use crate::attr::{Attr, Direction, Setup};
use crate::builder::{
    AttributeBuf, ConnectionBuf, MediaBuilder, OriginBuf, SessionBuilder, TimingBuf,
};
use crate::error::Error;
use crate::fmtp::FmtpAnswer;
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
    /// This side's format parameters (`mode-set=0,2,4,7; octet-align=1`,
    /// `profile-level-id=42e01f; packetization-mode=1`, `0-15`), negotiated against the offered
    /// `a=fmtp` for AMR, AMR-WB, H264 and telephone-event (see [`answer`]). `None` accepts any
    /// offered configuration and echoes the offer's `a=fmtp`.
    pub fmtp: Option<String>,
}

impl Codec {
    /// A mono codec, any format parameters.
    pub fn new(name: &str, clock_rate: u32) -> Self {
        Codec {
            name: name.to_owned(),
            clock_rate,
            channels: 1,
            fmtp: None,
        }
    }
    /// Sets this side's format parameters (see [`Codec::fmtp`]).
    pub fn with_fmtp(mut self, params: &str) -> Self {
        self.fmtp = Some(params.to_owned());
        self
    }
}

/// How the answer's `b=` lines are chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BandwidthPolicy {
    /// Only this side's [`LocalMedia::bandwidths`] (RFC 3264 §6.1 / RFC 3890: the answer's
    /// `b=` is what the answerer wants to receive).
    #[default]
    Own,
    /// Every media-level `b=` of the offer is answered: with this side's value for that type
    /// when it has one, else the offered value; this side's other types are added.
    Mirror,
}

/// One SDES key this side can use (RFC 4568): its crypto suite and this side's own key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SdesKey {
    /// Crypto suite (`AES_CM_128_HMAC_SHA1_80`), matched without case.
    pub suite: String,
    /// This side's key parameters (`inline:<base64 key||salt>[|lifetime][|MKI:len]`).
    pub key_params: String,
    /// Session parameters to answer with, if any.
    pub session_params: Option<String>,
}

/// DTLS-SRTP (RFC 5763 / RFC 5764) or other DTLS/TLS media: this side's certificate
/// fingerprint and the role it takes when the offer says `actpass`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DtlsConfig {
    /// Hash function of the fingerprint (`sha-256`, RFC 8122 §5).
    pub hash_func: String,
    /// The fingerprint: colon-separated upper-case hex.
    pub fingerprint: String,
    /// The role answered to `actpass`: `active` (RECOMMENDED by RFC 5763 §5, the handshake
    /// starts at once) or `passive`.
    pub actpass_answer: crate::Setup<'static>,
}

/// This side's ICE parameters (RFC 8839) for one media stream: written into the answer, never
/// taken from the offer.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IceConfig {
    /// `a=ice-ufrag`.
    pub ufrag: String,
    /// `a=ice-pwd`.
    pub pwd: String,
    /// `a=ice-options` (`trickle`), if any.
    pub options: Option<String>,
    /// `a=candidate` values (`1 1 UDP 2130706431 192.0.2.1 49170 typ host`).
    pub candidates: Vec<String>,
    /// This side is an ICE lite agent (RFC 8445 §2.5): the answer carries the session-level
    /// `a=ice-lite` (RFC 8839 §5.3) when an answered stream uses ICE.
    pub lite: bool,
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
    /// How `b=` lines are answered.
    pub bandwidth_policy: BandwidthPolicy,
    /// `a=ptime` of the answer: the packetisation this side wants to receive (RFC 3264
    /// §6.1: ptime in an answer is the answerer's own), capped at the offer's `a=maxptime`.
    /// `None` writes no ptime.
    pub ptime: Option<u32>,
    /// SDES keys this side supports, in its order of preference (RFC 4568). An offered
    /// `RTP/SAVP(F)` stream with `a=crypto` is answered with the first offered line (offer
    /// order, RFC 4568 §7.1.1) whose suite is here, same tag, this side's key; with no
    /// supported suite (or no key at all) such a stream is rejected.
    pub crypto: Vec<SdesKey>,
    /// DTLS: answers `a=setup` and `a=fingerprint` when the offer carries a fingerprint. A
    /// `UDP/TLS/…` stream is rejected without it.
    pub dtls: Option<DtlsConfig>,
    /// ICE: this side's `a=ice-ufrag`, `a=ice-pwd`, `a=ice-options`, `a=candidate`, written when
    /// the offer uses ICE (it has `a=ice-ufrag`).
    pub ice: Option<IceConfig>,
    /// Answer `a=rtcp-mux` when the offer has it (RFC 5761 §5.1.1).
    pub rtcp_mux: bool,
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
            bandwidth_policy: BandwidthPolicy::Own,
            ptime: None,
            crypto: Vec::new(),
            dtls: None,
            ice: None,
            rtcp_mux: false,
        }
    }
    /// Adds a bandwidth line of this side (`AS`, `TIAS`, ...).
    pub fn bandwidth(mut self, bw_type: &str, value: u64) -> Self {
        self.bandwidths.push((bw_type.to_owned(), value));
        self
    }
    /// Answers every offered `b=` (see [`BandwidthPolicy::Mirror`]).
    pub fn mirror_bandwidth(mut self) -> Self {
        self.bandwidth_policy = BandwidthPolicy::Mirror;
        self
    }
    /// Sets the answer's `a=ptime`.
    pub fn ptime(mut self, ms: u32) -> Self {
        self.ptime = Some(ms);
        self
    }
    /// Adds an SDES suite with this side's key parameters.
    pub fn sdes(mut self, suite: &str, key_params: &str) -> Self {
        self.crypto.push(SdesKey {
            suite: suite.to_owned(),
            key_params: key_params.to_owned(),
            session_params: None,
        });
        self
    }
    /// Sets this side's DTLS fingerprint; `actpass` is answered `active`.
    pub fn dtls(mut self, hash_func: &str, fingerprint: &str) -> Self {
        self.dtls = Some(DtlsConfig {
            hash_func: hash_func.to_owned(),
            fingerprint: fingerprint.to_owned(),
            actpass_answer: crate::Setup::Active,
        });
        self
    }
    /// Sets this side's ICE parameters.
    pub fn ice(mut self, ice: IceConfig) -> Self {
        self.ice = Some(ice);
        self
    }
    /// Accepts `a=rtcp-mux`.
    pub fn rtcp_mux(mut self) -> Self {
        self.rtcp_mux = true;
        self
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
/// no codec in common are rejected with port 0. The `t=` lines are the offer's.
///
/// Per accepted stream (see [`LocalMedia`] for the knobs):
/// - payload types: the answer uses the offerer's payload type numbers, `a=rtpmap` and
///   `a=fmtp` for the common codecs, in the offer's order (RFC 3264 §6.1: "that same payload
///   type number SHOULD be used for that codec in the answer"); a codec this side would number
///   differently is still answered with the offer's number, so both directions use one map;
/// - `a=ptime` is this side's ([`LocalMedia::ptime`]), capped at the offer's `a=maxptime`;
/// - `b=` per [`BandwidthPolicy`];
/// - SDES `a=crypto` (RFC 4568 §7.1.2): first offered line with a supported suite, same tag,
///   own key; DTLS `a=setup` / `a=fingerprint` (RFC 5763 §5, RFC 4145 §4.1): `actpass` →
///   [`DtlsConfig::actpass_answer`], `active` → `passive`, `passive` → `active`, own
///   fingerprint; a secure profile (`RTP/SAVP`, `UDP/TLS/…`) that cannot be keyed is rejected;
/// - format parameters (`a=fmtp`) are negotiated per codec against [`Codec::fmtp`]: AMR and
///   AMR-WB (RFC 4867 §8.3: `octet-align`, `crc`, `robust-sorting`, `interleaving` must match,
///   `mode-set` is intersected), H.264 (RFC 6184 §8.2.2: same `packetization-mode` and
///   profile, the lower level, no `sprop-*` echoed), telephone-event (RFC 4733 §7.1.1: the
///   common events); a payload type whose configuration this side does not support is left
///   out (the stream is rejected when none is left). A codec without `fmtp` echoes the
///   offer's line;
/// - ICE attributes are this side's ([`IceConfig`]), only when the offer uses ICE, with the
///   session-level `a=ice-lite` when [`IceConfig::lite`]; nothing of the offer's ICE
///   (including its `a=ice-lite`, see [`is_ice_lite`]), crypto, fingerprint or setup lines is
///   copied;
/// - `a=rtcp-mux` when offered and accepted;
/// - preconditions of type `qos` as in TS 24.229 ([`AnswerConfig::local_qos`]); lines of other
///   precondition types (`sec`, RFC 5027) are not answered and not touched.
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
                let a = answer_media(offer, m, l, cfg)?;
                if a.is_some() {
                    used[i] = true;
                }
                a
            }
            _ => None,
        };
        out.media.push(answered.unwrap_or_else(|| reject(m)));
    }
    let lite = cfg
        .media
        .iter()
        .any(|l| l.ice.as_ref().is_some_and(|i| i.lite));
    let ice_answered = out
        .media
        .iter()
        .any(|mb| mb.port != 0 && mb.attributes.iter().any(|x| x.name == "ice-ufrag"));
    if lite && ice_answered {
        out.attributes.push(AttributeBuf::flag("ice-lite"));
    }
    Ok(out)
}

/// True when the description's sender is an ICE lite agent (session-level `a=ice-lite`,
/// RFC 8839 §5.3). The offer's `a=ice-lite` is never copied into an answer; a full agent that
/// answers a lite offerer takes the controlling role (RFC 8445 §6.1.1).
pub fn is_ice_lite(s: &Session<'_>) -> bool {
    s.attributes.iter().any(|a| a.is("ice-lite"))
}

/// The rejected form of an offered stream: same media, proto and formats, port 0.
pub fn reject(m: &Media<'_>) -> MediaBuilder {
    let mut r = MediaBuilder::new(m.media, 0, m.proto);
    r.formats = m.formats().map(str::to_owned).collect();
    r
}

/// The media-level attribute `name`, else the session-level one (RFC 8866 §5.13: fingerprint,
/// setup, ice-ufrag, ice-pwd may be written at session level).
fn with_fallback<'s, 'a>(
    s: &'s Session<'a>,
    m: &'s Media<'a>,
    name: &str,
) -> Option<&'s crate::Attribute<'a>> {
    m.attribute(name).or_else(|| s.attribute(name))
}

/// Secure RTP profiles (RFC 3711 / RFC 5124 / RFC 5764): `RTP/SAVP`, `RTP/SAVPF`,
/// `UDP/TLS/RTP/SAVP(F)`.
fn is_srtp(proto: &str) -> bool {
    proto
        .split('/')
        .any(|p| p.eq_ignore_ascii_case("SAVP") || p.eq_ignore_ascii_case("SAVPF"))
}

fn is_dtls(proto: &str) -> bool {
    proto
        .split('/')
        .any(|p| p.eq_ignore_ascii_case("TLS") || p.eq_ignore_ascii_case("DTLS"))
}

/// RFC 4568 §7.1.2: the first offered `a=crypto` (offer order) whose suite this side supports,
/// answered with the same tag and this side's key.
fn answer_crypto(m: &Media<'_>, l: &LocalMedia) -> Option<AttributeBuf> {
    m.attributes_named("crypto").find_map(|attr| {
        let Ok(Attr::Crypto(c)) = attr.typed() else {
            return None;
        };
        let k = l
            .crypto
            .iter()
            .find(|k| k.suite.eq_ignore_ascii_case(c.suite))?;
        let mut v = format!("{} {} {}", c.tag, c.suite, k.key_params);
        if let Some(sp) = &k.session_params {
            v.push(' ');
            v.push_str(sp);
        }
        Some(AttributeBuf::new("crypto", v))
    })
}

/// RFC 4145 §4.1 / RFC 5763 §5: the answer's `a=setup` for an offered one (absent = active).
fn answer_setup(offered: Option<Setup<'_>>, actpass: Setup<'static>) -> Setup<'static> {
    match offered {
        Some(Setup::ActPass) => match actpass {
            Setup::Passive => Setup::Passive,
            _ => Setup::Active,
        },
        Some(Setup::Active) | None => Setup::Passive,
        Some(Setup::Passive) => Setup::Active,
        Some(Setup::HoldConn) => Setup::HoldConn,
        Some(Setup::Unknown(_)) => Setup::Active,
    }
}

fn answer_media(
    offer: &Session<'_>,
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
            let offered_fmtp = m.fmtp(f).map(|x| x.params);
            let Some(fmtp) = l
                .codecs
                .iter()
                .filter(|c| {
                    c.name.eq_ignore_ascii_case(&name) && c.clock_rate == rate && c.channels == ch
                })
                .find_map(|c| crate::fmtp::negotiate(&name, offered_fmtp, c.fmtp.as_deref()))
            else {
                continue;
            };
            a.formats.push(f.to_owned());
            for attr in &m.attributes {
                let fmt = attr.value.and_then(|v| v.split(' ').next());
                if fmt != Some(f) {
                    continue;
                }
                if attr.is("rtpmap") || attr.is("fmtp") && fmtp == FmtpAnswer::Keep {
                    a.attributes.push(AttributeBuf {
                        name: attr.name.to_owned(),
                        value: attr.value.map(str::to_owned),
                    });
                }
                if attr.is("rtpmap") {
                    if let FmtpAnswer::Params(p) = fmtp.clone().filter_empty() {
                        a.attributes
                            .push(AttributeBuf::new("fmtp", format!("{f} {p}")));
                    }
                }
            }
            if let FmtpAnswer::Params(p) = fmtp.clone().filter_empty() {
                // a static payload type without a=rtpmap still gets its a=fmtp
                if !a.attributes.iter().any(|x| {
                    x.name == "fmtp"
                        && x.value.as_deref().and_then(|v| v.split(' ').next()) == Some(f)
                }) {
                    a.attributes
                        .push(AttributeBuf::new("fmtp", format!("{f} {p}")));
                }
            }
        }
        if a.formats.is_empty() {
            return Ok(None);
        }
        if let Some(p) = l.ptime {
            let max = m
                .attributes_named("maxptime")
                .find_map(|x| match x.typed() {
                    Ok(Attr::MaxPtime(n)) => Some(n),
                    _ => None,
                });
            let p = max.map_or(p, |mx| p.min(mx));
            a.attributes.push(AttributeBuf::new("ptime", p.to_string()));
        }
    }
    // DTLS (RFC 5763 §5): own fingerprint and the answered role
    let fingerprint_offered = with_fallback(offer, m, "fingerprint").is_some();
    let mut setup_done = false;
    match &l.dtls {
        Some(d) if fingerprint_offered => {
            let offered = with_fallback(offer, m, "setup").and_then(|x| match x.typed() {
                Ok(Attr::Setup(s)) => Some(s),
                _ => None,
            });
            let role = answer_setup(offered, d.actpass_answer);
            a.attributes.push(AttributeBuf::new("setup", role.as_str()));
            a.attributes.push(AttributeBuf::new(
                "fingerprint",
                format!("{} {}", d.hash_func, d.fingerprint),
            ));
            setup_done = true;
        }
        _ if is_dtls(m.proto) => return Ok(None),
        _ => {}
    }
    // SDES (RFC 4568): only for SRTP profiles keyed in the SDP
    if is_srtp(m.proto) && !is_dtls(m.proto) {
        match answer_crypto(m, l) {
            Some(c) => a.attributes.push(c),
            None => return Ok(None),
        }
    }
    if l.rtcp_mux && m.has_attribute("rtcp-mux") {
        a.attributes.push(AttributeBuf::flag("rtcp-mux"));
    }
    if let Some(ice) = &l.ice {
        if with_fallback(offer, m, "ice-ufrag").is_some() {
            a.attributes
                .push(AttributeBuf::new("ice-ufrag", ice.ufrag.clone()));
            a.attributes
                .push(AttributeBuf::new("ice-pwd", ice.pwd.clone()));
            if let Some(o) = &ice.options {
                a.attributes
                    .push(AttributeBuf::new("ice-options", o.clone()));
            }
            for c in &ice.candidates {
                a.attributes.push(AttributeBuf::new("candidate", c.clone()));
            }
        }
    }
    if !m.is_rtp() {
        a.formats = m.formats().map(str::to_owned).collect();
    }
    if !setup_done && !m.is_rtp() {
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
    match l.bandwidth_policy {
        BandwidthPolicy::Own => {
            for (t, v) in &l.bandwidths {
                a = a.bandwidth(t, *v);
            }
        }
        BandwidthPolicy::Mirror => {
            for b in &m.bandwidths {
                let own = l
                    .bandwidths
                    .iter()
                    .find(|(t, _)| t.eq_ignore_ascii_case(b.bw_type));
                a = a.bandwidth(b.bw_type, own.map_or(b.value, |(_, v)| *v));
            }
            for (t, v) in &l.bandwidths {
                if !m
                    .bandwidths
                    .iter()
                    .any(|b| b.bw_type.eq_ignore_ascii_case(t))
                {
                    a = a.bandwidth(t, *v);
                }
            }
        }
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
