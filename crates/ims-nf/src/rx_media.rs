//! SDP to Rx service information (TS 29.213 §6.3 and Annex B, TS 29.214 §5.3): the
//! Media-Component-Description AVPs a P-CSCF puts in an AAR for an offer/answer exchange.
//!
//! `ue` is the SDP the served UE sent (its offer or its answer), `remote` the SDP sent to it.
//! Uplink is UE → network, downlink network → UE.

use ims_diameter::rx::{
    FlowStatus, FlowUsage, MediaComponentDescription, MediaSubComponent, MediaType,
};
use ims_sdp::{BandwidthType, Direction, Media, Session};
use std::borrow::Cow;
use std::ops::Range;

/// Which side offered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OfferFrom {
    /// The UE sent the offer (originating side, or a UE re-INVITE).
    Ue,
    /// The remote side sent the offer.
    Remote,
}

/// What [`media_components`] reads of one media description, borrowed from its SDP text.
#[derive(Debug, Clone, Copy)]
struct View<'a> {
    media: &'a str,
    port: u16,
    proto: &'a str,
    /// The connection address (media-level, else session-level).
    ip: Option<&'a str>,
    direction: Direction,
    bw_as: Option<u64>,
    bw_rr: Option<u64>,
    bw_rs: Option<u64>,
    rtp: bool,
    /// The RTCP port ([`rtcp_port`]).
    rtcp: Option<u16>,
    /// The description as written (m= line and its attributes).
    text: &'a str,
}

impl<'a> View<'a> {
    fn of(m: &Media<'a>) -> View<'a> {
        View {
            media: m.media,
            port: m.port,
            proto: m.proto,
            ip: m.connection().map(|c| c.address()),
            direction: m.direction(),
            bw_as: m.bandwidth(BandwidthType::As),
            bw_rr: m.bandwidth(BandwidthType::Rr),
            bw_rs: m.bandwidth(BandwidthType::Rs),
            rtp: m.is_rtp(),
            rtcp: rtcp_port(m),
            text: m.as_str(),
        }
    }
}

/// The media descriptions of one SDP body, read once and kept with the body (owned): a P-CSCF
/// keeps the offer's until its answer comes, and reads a body seen on both sides of a call
/// once ([`media_components_of`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SdpMedia {
    sdp: String,
    lines: Vec<Line>,
}

/// One media description of an [`SdpMedia`]: its text fields as ranges of the body.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Line {
    media: Range<usize>,
    port: u16,
    proto: Range<usize>,
    ip: Option<Range<usize>>,
    direction: Direction,
    bw_as: Option<u64>,
    bw_rr: Option<u64>,
    bw_rs: Option<u64>,
    rtp: bool,
    rtcp: Option<u16>,
    text: Range<usize>,
}

/// Where `part`, a slice of `base`, lies in it.
fn span(base: &str, part: &str) -> Option<Range<usize>> {
    let start = (part.as_ptr() as usize).checked_sub(base.as_ptr() as usize)?;
    let end = start.checked_add(part.len())?;
    base.get(start..end).is_some().then_some(start..end)
}

impl SdpMedia {
    /// Reads the media descriptions of `sdp`; `None` when it is not SDP that parses.
    pub fn parse(sdp: String) -> Option<SdpMedia> {
        let lines = {
            let s = Session::parse_str(&sdp).ok()?;
            let mut lines = Vec::with_capacity(s.media.len());
            for m in &s.media {
                let v = View::of(m);
                lines.push(Line {
                    media: span(&sdp, v.media)?,
                    port: v.port,
                    proto: span(&sdp, v.proto)?,
                    ip: match v.ip {
                        Some(ip) => Some(span(&sdp, ip)?),
                        None => None,
                    },
                    direction: v.direction,
                    bw_as: v.bw_as,
                    bw_rr: v.bw_rr,
                    bw_rs: v.bw_rs,
                    rtp: v.rtp,
                    rtcp: v.rtcp,
                    text: span(&sdp, v.text)?,
                });
            }
            lines
        };
        Some(SdpMedia { sdp, lines })
    }

    /// The SDP body.
    pub fn as_str(&self) -> &str {
        &self.sdp
    }

    /// How many media descriptions it has.
    pub fn len(&self) -> usize {
        self.lines.len()
    }

    /// Whether it has no media description.
    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    fn views(&self) -> impl ExactSizeIterator<Item = View<'_>> + '_ {
        let t = |r: &Range<usize>| self.sdp.get(r.clone()).unwrap_or_default();
        self.lines.iter().map(move |l| View {
            media: t(&l.media),
            port: l.port,
            proto: t(&l.proto),
            ip: l.ip.as_ref().map(t),
            direction: l.direction,
            bw_as: l.bw_as,
            bw_rr: l.bw_rr,
            bw_rs: l.bw_rs,
            rtp: l.rtp,
            rtcp: l.rtcp,
            text: t(&l.text),
        })
    }
}

fn media_type(m: &View<'_>) -> MediaType {
    match m.media {
        "audio" => MediaType::Audio,
        "video" => MediaType::Video,
        "data" => MediaType::Data,
        "application" => MediaType::Application,
        "control" => MediaType::Control,
        "text" => MediaType::Text,
        "message" => MediaType::Message,
        // TS 29.214 §5.3.19: OTHER (0xFFFFFFFF) for anything else
        _ => MediaType::Unknown(-1),
    }
}

/// Flow-Status from the UE's direction attribute (TS 29.213 Table 6.3.2): what the UE sends is
/// uplink.
fn flow_status(ue: &View<'_>, remote: &View<'_>) -> FlowStatus {
    if ue.port == 0 || remote.port == 0 {
        return FlowStatus::Removed;
    }
    match ue.direction {
        Direction::SendRecv => FlowStatus::Enabled,
        Direction::SendOnly => FlowStatus::EnabledUplink,
        Direction::RecvOnly => FlowStatus::EnabledDownlink,
        Direction::Inactive => FlowStatus::Disabled,
    }
}

fn proto_number(proto: &str) -> u8 {
    let p = proto.to_ascii_uppercase();
    if p.starts_with("TCP") || p.contains("/TCP") {
        6
    } else {
        17
    }
}

/// The two Flow-Descriptions (uplink "permit in", downlink "permit out") of one flow (TS 29.214
/// §5.3.8: IPFilterRule with the UE as source of the uplink).
fn flow_descriptions(
    proto: u8,
    ue_ip: &str,
    ue_port: u16,
    remote_ip: &str,
    remote_port: u16,
) -> [Cow<'static, str>; 2] {
    [
        flow_description("out", proto, (remote_ip, remote_port), (ue_ip, ue_port)),
        flow_description("in", proto, (ue_ip, ue_port), (remote_ip, remote_port)),
    ]
}

/// `permit <dir> <proto> from <ip>[ <port>] to <ip>[ <port>]` (port 0: any port), written in
/// one buffer.
fn flow_description(dir: &str, proto: u8, from: (&str, u16), to: (&str, u16)) -> Cow<'static, str> {
    use std::fmt::Write;
    let mut s = String::with_capacity(40 + from.0.len() + to.0.len());
    s.push_str("permit ");
    s.push_str(dir);
    let _ = write!(s, " {proto} from ");
    for (i, (ip, port)) in [from, to].into_iter().enumerate() {
        if i == 1 {
            s.push_str(" to ");
        }
        s.push_str(ip);
        if port != 0 {
            let _ = write!(s, " {port}");
        }
    }
    s.into()
}

fn rtcp_port(m: &Media<'_>) -> Option<u16> {
    if m.has_attribute("rtcp-mux") {
        return None;
    }
    match m.attribute("rtcp").map(|a| a.typed()) {
        Some(Ok(ims_sdp::Attr::Rtcp(r))) => Some(r.port),
        _ => m.port.checked_add(1),
    }
}

/// Codec-Data (TS 29.214 §5.3.7): `uplink|downlink` LF `offer|answer` LF, then the media
/// description as written (m= line and its attributes).
fn codec_data(dir: &str, role: &str, m: &View<'_>) -> Cow<'static, [u8]> {
    let text = m.text.as_bytes();
    let mut v = Vec::with_capacity(dir.len() + role.len() + 2 + text.len());
    v.extend_from_slice(dir.as_bytes());
    v.push(b'\n');
    v.extend_from_slice(role.as_bytes());
    v.push(b'\n');
    v.extend_from_slice(text);
    Cow::Owned(v)
}

/// The Media-Component-Descriptions for one offer/answer exchange. Media lines are paired by
/// position (RFC 3264 §6); a line the answer rejected (port 0) gets Flow-Status REMOVED.
pub fn media_components(
    ue: &Session<'_>,
    remote: &Session<'_>,
    offer_from: OfferFrom,
) -> Vec<MediaComponentDescription<'static>> {
    components(
        ue.media.iter().map(View::of),
        remote.media.iter().map(View::of),
        offer_from,
    )
}

/// [`media_components`] of SDP bodies read before ([`SdpMedia`]).
pub fn media_components_of(
    ue: &SdpMedia,
    remote: &SdpMedia,
    offer_from: OfferFrom,
) -> Vec<MediaComponentDescription<'static>> {
    components(ue.views(), remote.views(), offer_from)
}

fn components<'a>(
    ue: impl ExactSizeIterator<Item = View<'a>>,
    remote: impl ExactSizeIterator<Item = View<'a>>,
    offer_from: OfferFrom,
) -> Vec<MediaComponentDescription<'static>> {
    let (ue_role, remote_role) = match offer_from {
        OfferFrom::Ue => ("offer", "answer"),
        OfferFrom::Remote => ("answer", "offer"),
    };
    let mut out = Vec::with_capacity(ue.len().min(remote.len()));
    for (i, (u, r)) in ue.zip(remote).enumerate() {
        let (u, r) = (&u, &r);
        let n = i as u32 + 1;
        let ue_ip = u.ip.unwrap_or("any");
        let remote_ip = r.ip.unwrap_or("any");
        let proto = proto_number(u.proto);
        let status = flow_status(u, r);
        // bandwidth in bit/s: what the UE sends is bounded by what the remote receives (b=AS of
        // the remote SDP), what it receives by its own b=AS
        let kbps = |v: Option<u64>| v.map(|v| v.saturating_mul(1000) as u32);
        let mut mcd = MediaComponentDescription {
            media_component_number: n,
            media_type: Some(media_type(u)),
            max_requested_bandwidth_ul: kbps(r.bw_as),
            max_requested_bandwidth_dl: kbps(u.bw_as),
            rr_bandwidth: u.bw_rr.map(|v| v as u32),
            rs_bandwidth: u.bw_rs.map(|v| v as u32),
            flow_status: Some(status),
            codec_data: [
                codec_data("uplink", ue_role, u),
                codec_data("downlink", remote_role, r),
            ]
            .into(),
            ..Default::default()
        };
        // a removed component has no flows; the others an RTP flow (and its RTCP) or one flow,
        // each built in the description's inline storage
        if status != FlowStatus::Removed {
            mcd.media_sub_component.push(MediaSubComponent {
                flow_number: 1,
                flow_description: flow_descriptions(proto, ue_ip, u.port, remote_ip, r.port).into(),
                ..Default::default()
            });
            if u.rtp {
                if let (Some(ur), Some(rr)) = (u.rtcp, r.rtcp) {
                    mcd.media_sub_component.push(MediaSubComponent {
                        flow_number: 2,
                        flow_description: flow_descriptions(proto, ue_ip, ur, remote_ip, rr).into(),
                        flow_usage: Some(FlowUsage::Rtcp),
                        ..Default::default()
                    });
                }
            }
        }
        out.push(mcd);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An MMTel offer from the UE and the callee's answer (shape of TS 26.114 examples).
    const OFFER: &str = "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n\
m=audio 40000 RTP/AVP 116 111\r\nb=AS:49\r\nb=RS:0\r\nb=RR:2000\r\na=rtpmap:116 AMR-WB/16000/1\r\n\
a=rtpmap:111 telephone-event/16000\r\na=sendrecv\r\n\
m=video 40002 RTP/AVPF 99\r\nb=AS:315\r\na=rtpmap:99 H264/90000\r\na=rtcp-mux\r\na=sendrecv\r\n";
    const ANSWER: &str = "v=0\r\no=- 2 1 IN IP4 10.0.0.2\r\ns=-\r\nc=IN IP4 10.0.0.2\r\nt=0 0\r\n\
m=audio 50000 RTP/AVP 116\r\nb=AS:38\r\na=rtpmap:116 AMR-WB/16000/1\r\na=recvonly\r\n\
m=video 0 RTP/AVPF 99\r\n";

    #[test]
    fn mmtel_offer_answer_maps_to_two_components() {
        let ue = Session::parse_str(OFFER).unwrap();
        let remote = Session::parse_str(ANSWER).unwrap();
        let mcd = media_components(&ue, &remote, OfferFrom::Ue);
        assert_eq!(mcd.len(), 2);
        let a = &mcd[0];
        assert_eq!(a.media_type, Some(MediaType::Audio));
        assert_eq!(a.max_requested_bandwidth_ul, Some(38_000));
        assert_eq!(a.max_requested_bandwidth_dl, Some(49_000));
        assert_eq!((a.rs_bandwidth, a.rr_bandwidth), (Some(0), Some(2000)));
        assert_eq!(a.flow_status, Some(FlowStatus::Enabled));
        assert_eq!(a.media_sub_component.len(), 2);
        assert_eq!(
            a.media_sub_component[0].flow_description,
            [
                "permit out 17 from 10.0.0.2 50000 to 10.0.0.1 40000",
                "permit in 17 from 10.0.0.1 40000 to 10.0.0.2 50000"
            ]
        );
        assert_eq!(a.media_sub_component[1].flow_usage, Some(FlowUsage::Rtcp));
        assert_eq!(
            a.media_sub_component[1].flow_description[0],
            "permit out 17 from 10.0.0.2 50001 to 10.0.0.1 40001"
        );
        assert!(a.codec_data[0].starts_with(b"uplink\noffer\nm=audio 40000"));
        assert!(a.codec_data[1].starts_with(b"downlink\nanswer\nm=audio 50000"));
        // every Flow-Description is a valid IPFilterRule
        for d in &a.media_sub_component[0].flow_description {
            ims_diameter::IpFilterRule::parse(d).unwrap();
        }
        // the rejected video stream
        assert_eq!(mcd[1].flow_status, Some(FlowStatus::Removed));
        assert!(mcd[1].media_sub_component.is_empty());
    }

    #[test]
    fn sdp_read_once_gives_the_same_components() {
        let msrp_ue = "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n\
m=message 2855 TCP/MSRP *\r\na=path:msrp://10.0.0.1:2855/s1;tcp\r\na=sendonly\r\n";
        let msrp_remote = "v=0\r\no=- 1 1 IN IP4 10.0.0.2\r\ns=-\r\nt=0 0\r\n\
m=message 2856 TCP/MSRP *\r\nc=IN IP6 ::2\r\na=rtcp:9\r\na=recvonly\r\n";
        // session-level direction and no connection line at all
        let bare = "v=0\r\no=- 1 1 IN IP4 10.0.0.3\r\ns=-\r\nt=0 0\r\na=inactive\r\n\
m=audio 7000 RTP/AVP 0\r\nb=RR:0\r\na=rtcp:7005\r\n";
        for (ue, remote) in [
            (OFFER, ANSWER),
            (ANSWER, OFFER),
            (msrp_ue, msrp_remote),
            (bare, OFFER),
            (OFFER, bare),
        ] {
            for from in [OfferFrom::Ue, OfferFrom::Remote] {
                let parsed = media_components(
                    &Session::parse_str(ue).unwrap(),
                    &Session::parse_str(remote).unwrap(),
                    from,
                );
                let u = SdpMedia::parse(ue.to_string()).unwrap();
                let r = SdpMedia::parse(remote.to_string()).unwrap();
                assert_eq!(u.as_str(), ue);
                assert_eq!(u.len(), Session::parse_str(ue).unwrap().media.len());
                assert_eq!(media_components_of(&u, &r, from), parsed);
            }
        }
        assert_eq!(SdpMedia::parse("v=0\r\nnot sdp".into()), None);
    }

    #[test]
    fn directions_and_msrp() {
        let ue = Session::parse_str(
            "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n\
m=message 2855 TCP/MSRP *\r\na=path:msrp://10.0.0.1:2855/s1;tcp\r\na=sendonly\r\n",
        )
        .unwrap();
        let remote = Session::parse_str(
            "v=0\r\no=- 1 1 IN IP4 10.0.0.2\r\ns=-\r\nc=IN IP4 10.0.0.2\r\nt=0 0\r\n\
m=message 2856 TCP/MSRP *\r\na=path:msrp://10.0.0.2:2856/s2;tcp\r\na=recvonly\r\n",
        )
        .unwrap();
        let mcd = media_components(&ue, &remote, OfferFrom::Remote);
        assert_eq!(mcd[0].media_type, Some(MediaType::Message));
        assert_eq!(mcd[0].flow_status, Some(FlowStatus::EnabledUplink));
        assert_eq!(mcd[0].media_sub_component.len(), 1, "no RTCP flow for MSRP");
        assert!(mcd[0].media_sub_component[0].flow_description[0].starts_with("permit out 6 "));
        assert!(mcd[0].codec_data[0].starts_with(b"uplink\nanswer\n"));
    }
}
