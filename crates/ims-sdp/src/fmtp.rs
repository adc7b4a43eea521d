//! Format-parameter negotiation for [`crate::answer`]: which offered `a=fmtp` configurations
//! this side can accept, and the `a=fmtp` line of the answer.
//!
//! Each rule is the payload format's own offer/answer section:
//! - AMR and AMR-WB (RFC 4867 §8.3): `octet-align`, `crc`, `robust-sorting` and `interleaving`
//!   describe the payload format configuration and must be the same in offer and answer (a
//!   configuration this side does not support is not accepted); `mode-set` can only be
//!   restricted: the answer's mode-set is the offered one intersected with this side's
//!   (an empty intersection rejects the payload type);
//! - H.264 (RFC 6184 §8.2.2): `packetization-mode` must be the same; the profile of
//!   `profile-level-id` (profile_idc and profile-iop) must be the same, and the level answered
//!   is the lower of the offered level and this side's; the offerer's `sprop-*` parameters
//!   describe the offerer's own stream and are not echoed;
//! - telephone-event (RFC 4733 §7.1.1): the answer lists the events both sides support
//!   (no fmtp means `0-15`, RFC 4733 §2.4.1); none in common rejects the payload type.
//!
//! A [`crate::Codec`] without format parameters accepts whatever configuration is offered and
//! the offer's `a=fmtp` is echoed as it is (the behaviour before this negotiation existed). With
//! [`crate::Codec::fmtp`] set, its parameters are this side's complete configuration: a
//! parameter it does not name has the payload format's default value. To support several
//! configurations (both AMR alignments, both H.264 packetization modes), list the codec once
//! per configuration.

/// How the answer writes the `a=fmtp` of an accepted payload type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum FmtpAnswer {
    /// Echo the offer's line as it was written (or write none if the offer had none).
    Keep,
    /// Write these parameters (none at all when empty).
    Params(String),
}

impl FmtpAnswer {
    /// For the writer: `Params("")` (every offered parameter dropped) writes no `a=fmtp`,
    /// like `Keep` of an offer without one. Whether the offer's own line is echoed is decided
    /// on the unfiltered value.
    pub(crate) fn filter_empty(self) -> FmtpAnswer {
        match self {
            FmtpAnswer::Params(p) if p.is_empty() => FmtpAnswer::Keep,
            x => x,
        }
    }
}

fn pairs(params: &str) -> Vec<(&str, Option<&str>)> {
    params
        .split(';')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (k.trim(), Some(v.trim())),
            None => (p, None),
        })
        .collect()
}

fn get<'a>(pairs: &[(&'a str, Option<&'a str>)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .and_then(|(_, v)| *v)
}

fn join(pairs: &[(String, Option<String>)]) -> String {
    let mut s = String::new();
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            s.push_str("; ");
        }
        s.push_str(k);
        if let Some(v) = v {
            s.push('=');
            s.push_str(v);
        }
    }
    s
}

fn owned(pairs: &[(&str, Option<&str>)]) -> Vec<(String, Option<String>)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.map(str::to_owned)))
        .collect()
}

/// Sets (or appends) `name=value` in `pairs`; `None` removes it.
fn set(pairs: &mut Vec<(String, Option<String>)>, name: &str, value: Option<String>) {
    match (
        pairs.iter().position(|(k, _)| k.eq_ignore_ascii_case(name)),
        value,
    ) {
        (Some(i), Some(v)) => pairs[i].1 = Some(v),
        (Some(i), None) => {
            pairs.remove(i);
        }
        (None, Some(v)) => pairs.push((name.to_owned(), Some(v))),
        (None, None) => {}
    }
}

/// Negotiates the format parameters of one offered payload type of codec `encoding` against
/// this side's `local` parameters. `None`: this configuration is not acceptable.
pub(crate) fn negotiate(
    encoding: &str,
    offered: Option<&str>,
    local: Option<&str>,
) -> Option<FmtpAnswer> {
    let Some(local) = local else {
        return Some(FmtpAnswer::Keep);
    };
    if encoding.eq_ignore_ascii_case("AMR") {
        amr(offered, local, 7)
    } else if encoding.eq_ignore_ascii_case("AMR-WB") {
        amr(offered, local, 8)
    } else if encoding.eq_ignore_ascii_case("H264") {
        h264(offered, local)
    } else if encoding.eq_ignore_ascii_case("telephone-event") {
        telephone_event(offered, local)
    } else {
        Some(FmtpAnswer::Keep)
    }
}

/// A `mode-set` as a bit set of modes `0..=max_mode`; `None` when malformed.
fn mode_set(v: &str, max_mode: u8) -> Option<u16> {
    let mut set = 0u16;
    for m in v.split(',') {
        let m: u8 = m.trim().parse().ok()?;
        if m > max_mode {
            return None;
        }
        set |= 1 << m;
    }
    (set != 0).then_some(set)
}

fn mode_list(set: u16) -> String {
    (0..16)
        .filter(|m| set & (1 << m) != 0)
        .map(|m: u16| m.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

/// RFC 4867 §8.3.
fn amr(offered: Option<&str>, local: &str, max_mode: u8) -> Option<FmtpAnswer> {
    let o = pairs(offered.unwrap_or(""));
    let l = pairs(local);
    // payload format configuration: same values on both sides (defaults: 0 / absent)
    for (name, default) in [("octet-align", "0"), ("crc", "0"), ("robust-sorting", "0")] {
        let ov = get(&o, name).unwrap_or(default);
        let lv = get(&l, name).unwrap_or(default);
        if ov != lv {
            return None;
        }
    }
    if get(&o, "interleaving") != get(&l, "interleaving") {
        return None;
    }
    let all: u16 = (1 << (max_mode + 1)) - 1;
    let om = match get(&o, "mode-set") {
        Some(v) => Some(mode_set(v, max_mode)?),
        None => None,
    };
    let lm = match get(&l, "mode-set") {
        Some(v) => Some(mode_set(v, max_mode)?),
        None => None,
    };
    if om.is_none() && lm.is_none() {
        return Some(FmtpAnswer::Keep);
    }
    let both = om.unwrap_or(all) & lm.unwrap_or(all);
    if both == 0 {
        return None;
    }
    if om == Some(both) {
        return Some(FmtpAnswer::Keep);
    }
    let mut out = owned(&o);
    set(&mut out, "mode-set", Some(mode_list(both)));
    Some(FmtpAnswer::Params(join(&out)))
}

/// `profile-level-id` as (profile_idc, profile-iop, level_idc); RFC 6184 §8.1 default 42000A.
fn profile_level(v: Option<&str>) -> Option<(u8, u8, u8)> {
    let v = v.unwrap_or("42000A");
    if v.len() != 6 || !v.is_ascii() {
        return None;
    }
    let b = |i: usize| u8::from_str_radix(&v[i..i + 2], 16).ok();
    Some((b(0)?, b(2)?, b(4)?))
}

/// RFC 6184 §8.2.2.
fn h264(offered: Option<&str>, local: &str) -> Option<FmtpAnswer> {
    let o = pairs(offered.unwrap_or(""));
    let l = pairs(local);
    let mode = |p: &[(&str, Option<&str>)]| get(p, "packetization-mode").unwrap_or("0").to_owned();
    if mode(&o) != mode(&l) {
        return None;
    }
    let (op, oi, ol) = profile_level(get(&o, "profile-level-id"))?;
    let (lp, li, ll) = profile_level(get(&l, "profile-level-id"))?;
    if op != lp || oi != li {
        return None;
    }
    let level = ol.min(ll);
    let mut out: Vec<(String, Option<String>)> = owned(&o)
        .into_iter()
        .filter(|(k, _)| !k.to_ascii_lowercase().starts_with("sprop-"))
        .collect();
    if level != ol {
        set(
            &mut out,
            "profile-level-id",
            Some(format!("{op:02x}{oi:02x}{level:02x}")),
        );
    }
    let text = join(&out);
    if offered.unwrap_or("").trim() == text {
        return Some(FmtpAnswer::Keep);
    }
    Some(FmtpAnswer::Params(text))
}

/// RFC 4733 events as a 256-bit set; `None` when malformed.
fn events(v: &str) -> Option<[u64; 4]> {
    let mut set = [0u64; 4];
    for part in v.split(',') {
        let part = part.trim();
        let (a, b) = match part.split_once('-') {
            Some((a, b)) => (a.trim().parse::<u8>().ok()?, b.trim().parse::<u8>().ok()?),
            None => {
                let e = part.parse::<u8>().ok()?;
                (e, e)
            }
        };
        if a > b {
            return None;
        }
        for e in a..=b {
            set[usize::from(e / 64)] |= 1 << (e % 64);
        }
    }
    Some(set)
}

fn event_list(set: &[u64; 4]) -> String {
    let has = |e: u16| set[usize::from(e / 64)] & (1 << (e % 64)) != 0;
    let mut parts = Vec::new();
    let mut e = 0u16;
    while e < 256 {
        if has(e) {
            let start = e;
            while e + 1 < 256 && has(e + 1) {
                e += 1;
            }
            parts.push(if start == e {
                start.to_string()
            } else {
                format!("{start}-{e}")
            });
        }
        e += 1;
    }
    parts.join(",")
}

/// RFC 4733 §7.1.1.
fn telephone_event(offered: Option<&str>, local: &str) -> Option<FmtpAnswer> {
    let o = events(offered.map_or("0-15", str::trim))?;
    let l = events(local.trim())?;
    let both = [o[0] & l[0], o[1] & l[1], o[2] & l[2], o[3] & l[3]];
    if both == [0; 4] {
        return None;
    }
    if both == o && offered.is_some() {
        return Some(FmtpAnswer::Keep);
    }
    Some(FmtpAnswer::Params(event_list(&both)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Option<FmtpAnswer> {
        Some(FmtpAnswer::Params(s.to_owned()))
    }

    #[test]
    fn amr_rules() {
        let keep = Some(FmtpAnswer::Keep);
        // no local configuration: anything goes, echoed
        assert_eq!(negotiate("AMR", Some("octet-align=1"), None), keep);
        // alignment must match (default 0)
        assert_eq!(negotiate("AMR", Some("octet-align=1"), Some("")), None);
        assert_eq!(negotiate("AMR", None, Some("octet-align=1")), None);
        assert_eq!(
            negotiate("amr", Some("octet-align=1"), Some("octet-align=1")),
            keep
        );
        assert_eq!(negotiate("AMR", Some("octet-align=0"), Some("")), keep);
        assert_eq!(
            negotiate("AMR", Some("octet-align=1; crc=1"), Some("octet-align=1")),
            None
        );
        assert_eq!(
            negotiate(
                "AMR",
                Some("octet-align=1; interleaving=4"),
                Some("octet-align=1")
            ),
            None
        );
        // mode-set: intersection
        assert_eq!(
            negotiate("AMR", Some("mode-set=0,2,4,7"), Some("mode-set=0,2,5,7")),
            p("mode-set=0,2,7")
        );
        assert_eq!(
            negotiate("AMR", Some("mode-set=0,2,4,7"), Some("mode-set=1,3")),
            None
        );
        assert_eq!(
            negotiate("AMR", Some("mode-set=0,2"), Some("mode-set=0,2,4")),
            keep
        );
        assert_eq!(negotiate("AMR", None, Some("mode-set=7")), p("mode-set=7"));
        assert_eq!(
            negotiate(
                "AMR-WB",
                Some("mode-change-capability=2; max-red=0"),
                Some("mode-set=0,1,2,8")
            ),
            p("mode-change-capability=2; max-red=0; mode-set=0,1,2,8")
        );
        // AMR has modes 0..=7 only, AMR-WB 0..=8
        assert_eq!(negotiate("AMR", Some("mode-set=8"), Some("")), None);
        assert_eq!(negotiate("AMR-WB", Some("mode-set=8"), Some("")), keep);
    }

    #[test]
    fn h264_rules() {
        let keep = Some(FmtpAnswer::Keep);
        assert_eq!(
            negotiate("H264", Some("packetization-mode=1"), Some("")),
            None
        );
        assert_eq!(
            negotiate(
                "H264",
                Some("profile-level-id=42e01f; packetization-mode=1"),
                Some("profile-level-id=42e01f; packetization-mode=1")
            ),
            keep
        );
        // lower level answered
        assert_eq!(
            negotiate(
                "H264",
                Some("profile-level-id=42e01f; packetization-mode=1"),
                Some("profile-level-id=42e00d; packetization-mode=1")
            ),
            p("profile-level-id=42e00d; packetization-mode=1")
        );
        // other profile (main 4d) refused
        assert_eq!(
            negotiate(
                "H264",
                Some("profile-level-id=4d001f"),
                Some("profile-level-id=42001f")
            ),
            None
        );
        // sprop-parameter-sets not echoed
        assert_eq!(
            negotiate("H264", Some("profile-level-id=42e01f;packetization-mode=1;sprop-parameter-sets=Z0IACpZTBYmI,aMljiA=="), Some("profile-level-id=42e01f;packetization-mode=1")),
            p("profile-level-id=42e01f; packetization-mode=1")
        );
        // defaults: no profile-level-id on either side is 42000A
        assert_eq!(negotiate("H264", None, Some("")), keep);
        assert_eq!(
            negotiate("H264", Some("profile-level-id=zz0000"), Some("")),
            None
        );
    }

    #[test]
    fn telephone_event_rules() {
        let keep = Some(FmtpAnswer::Keep);
        assert_eq!(
            negotiate("telephone-event", Some("0-15"), Some("0-15")),
            keep
        );
        assert_eq!(
            negotiate("telephone-event", Some("0-16"), Some("0-15")),
            p("0-15")
        );
        assert_eq!(
            negotiate("telephone-event", Some("0-15,66,70"), Some("0-11,70")),
            p("0-11,70")
        );
        assert_eq!(negotiate("telephone-event", None, Some("0-9")), p("0-9"));
        assert_eq!(negotiate("telephone-event", None, Some("0-15")), p("0-15"));
        assert_eq!(negotiate("telephone-event", Some("66"), Some("0-15")), None);
        assert_eq!(
            negotiate("telephone-event", Some("9-3"), Some("0-15")),
            None
        );
        assert_eq!(event_list(&events("0-255").unwrap()), "0-255");
        assert_eq!(event_list(&events("255,0,1,2").unwrap()), "0-2,255");
    }
}
