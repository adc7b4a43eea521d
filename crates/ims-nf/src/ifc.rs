//! Initial filter criteria evaluation (TS 29.228 Annex B and F, TS 24.229 §5.4.3.2/§5.4.3.3):
//! which application servers a request visits, in priority order.

use crate::subscription::{
    InitialFilterCriteria, ProfilePartIndicator, RegistrationType, SessionCase, SptKind,
};
use ims_sip::{headers::ContentType, Limits, Message, Method};
use regex_lite::{Regex, RegexBuilder};

/// An iFC whose regular expression does not compile.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("iFC priority {priority}: invalid regular expression {pattern:?}: {message}")]
pub struct IfcError {
    /// The priority of the offending iFC.
    pub priority: i32,
    /// The pattern.
    pub pattern: String,
    /// The regex compiler's message.
    pub message: String,
}

/// Largest compiled size of one iFC regular expression (bytes), and deepest nesting: an HSS is
/// trusted, but a profile is still input.
const REGEX_SIZE_LIMIT: usize = 64 * 1024;
const REGEX_NEST_LIMIT: u32 = 32;

fn compile(pattern: &str, priority: i32) -> Result<Regex, IfcError> {
    RegexBuilder::new(pattern)
        .size_limit(REGEX_SIZE_LIMIT)
        .nest_limit(REGEX_NEST_LIMIT)
        .build()
        .map_err(|e| IfcError {
            priority,
            pattern: pattern.to_string(),
            message: e.to_string(),
        })
}

enum Test {
    RequestUri(Regex),
    Method(String),
    Header {
        name: String,
        content: Option<Regex>,
    },
    SessionCase(SessionCase),
    Sdp {
        line: String,
        content: Option<Regex>,
    },
}

struct CompiledSpt {
    negated: bool,
    groups: Vec<u32>,
    test: Test,
    registration_types: Vec<RegistrationType>,
}

struct CompiledIfc {
    ifc: InitialFilterCriteria,
    cnf: bool,
    spts: Vec<CompiledSpt>,
}

/// The facts about a request that iFC evaluation needs besides the request itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Context {
    /// The session case the S-CSCF is handling.
    pub session_case: SessionCase,
    /// Whether the served user is registered (selects iFCs by ProfilePartIndicator).
    pub registered: bool,
    /// For REGISTER: initial, re- or de-registration (TS 29.228 B.2.2 RegistrationType).
    pub registration_type: Option<RegistrationType>,
}

/// A service profile's iFCs compiled for evaluation, ordered by priority.
pub struct FilterSet {
    entries: Vec<CompiledIfc>,
}

impl std::fmt::Debug for FilterSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.entries.iter().map(|e| &e.ifc))
            .finish()
    }
}

impl FilterSet {
    /// Compiles the iFCs (their regular expressions once, here) and orders them by priority
    /// (lower first; equal priorities keep document order).
    pub fn compile(ifcs: &[InitialFilterCriteria]) -> Result<FilterSet, IfcError> {
        let mut entries = Vec::with_capacity(ifcs.len());
        for ifc in ifcs {
            let p = ifc.priority;
            let (cnf, spts) = match &ifc.trigger_point {
                None => (true, Vec::new()),
                Some(tp) => {
                    let mut spts = Vec::with_capacity(tp.spts.len());
                    for s in &tp.spts {
                        let test = match &s.kind {
                            SptKind::RequestUri(r) => Test::RequestUri(compile(r, p)?),
                            SptKind::Method(m) => Test::Method(m.clone()),
                            SptKind::SipHeader { header, content } => Test::Header {
                                name: header.clone(),
                                content: content.as_deref().map(|c| compile(c, p)).transpose()?,
                            },
                            SptKind::SessionCase(c) => Test::SessionCase(*c),
                            SptKind::SessionDescription { line, content } => Test::Sdp {
                                line: line.clone(),
                                content: content.as_deref().map(|c| compile(c, p)).transpose()?,
                            },
                        };
                        spts.push(CompiledSpt {
                            negated: s.condition_negated,
                            groups: if s.groups.is_empty() {
                                vec![0]
                            } else {
                                s.groups.clone()
                            },
                            test,
                            registration_types: s.registration_types.clone(),
                        });
                    }
                    (tp.condition_type_cnf, spts)
                }
            };
            entries.push(CompiledIfc {
                ifc: ifc.clone(),
                cnf,
                spts,
            });
        }
        entries.sort_by_key(|e| e.ifc.priority);
        Ok(FilterSet { entries })
    }

    /// Number of iFCs.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The iFCs that match `request` in `ctx`, in priority order. The S-CSCF forwards to the first
    /// one's application server; when the request comes back (ODI) it continues after it.
    pub fn matching<'s, 'r: 's>(
        &'s self,
        request: &'s Message<'r>,
        ctx: Context,
    ) -> impl Iterator<Item = &'s InitialFilterCriteria> + 's {
        self.entries
            .iter()
            .filter(move |e| e.applies(request, ctx))
            .map(|e| &e.ifc)
    }

    /// The first matching iFC whose priority is greater than `after` (or the first at all): the
    /// next application server in the chain.
    pub fn next_after(
        &self,
        request: &Message<'_>,
        ctx: Context,
        after: Option<i32>,
    ) -> Option<&InitialFilterCriteria> {
        self.entries
            .iter()
            .filter(|e| after.is_none_or(|a| e.ifc.priority > a))
            .find(|e| e.applies(request, ctx))
            .map(|e| &e.ifc)
    }
}

impl CompiledIfc {
    fn applies(&self, req: &Message<'_>, ctx: Context) -> bool {
        match self.ifc.profile_part_indicator {
            Some(ProfilePartIndicator::Registered) if !ctx.registered => return false,
            Some(ProfilePartIndicator::Unregistered) if ctx.registered => return false,
            _ => {}
        }
        if self.spts.is_empty() {
            return true;
        }
        let mut groups: Vec<u32> = self
            .spts
            .iter()
            .flat_map(|s| s.groups.iter().copied())
            .collect();
        groups.sort_unstable();
        groups.dedup();
        let members = |g: u32| self.spts.iter().filter(move |s| s.groups.contains(&g));
        if self.cnf {
            // CNF: every group has at least one true SPT
            groups.iter().all(|&g| members(g).any(|s| s.eval(req, ctx)))
        } else {
            // DNF: some group has all its SPTs true
            groups.iter().any(|&g| members(g).all(|s| s.eval(req, ctx)))
        }
    }
}

impl CompiledSpt {
    fn eval(&self, req: &Message<'_>, ctx: Context) -> bool {
        self.test(req, ctx) != self.negated
    }

    fn test(&self, req: &Message<'_>, ctx: Context) -> bool {
        match &self.test {
            Test::RequestUri(re) => req.request_uri_str().is_some_and(|u| re.is_match(u)),
            Test::Method(m) => {
                let Some(method) = req.method() else {
                    return false;
                };
                if method.as_str() != m {
                    return false;
                }
                // TS 29.228 B.2.2: RegistrationType narrows a REGISTER method SPT
                if method == Method::Register && !self.registration_types.is_empty() {
                    return ctx
                        .registration_type
                        .is_some_and(|t| self.registration_types.contains(&t));
                }
                true
            }
            Test::Header { name, content } => {
                let mut values = req.headers_named(name).map(|h| h.value());
                match content {
                    None => values.next().is_some(),
                    Some(re) => values.any(|v| re.is_match(v)),
                }
            }
            Test::SessionCase(c) => *c == ctx.session_case,
            Test::Sdp { line, content } => sdp_lines(req).any(|(t, v)| {
                t == line.as_str() && content.as_ref().is_none_or(|re| re.is_match(v))
            }),
        }
    }
}

/// The `type=value` lines of the request's SDP body (a plain `application/sdp` body or the SDP
/// part of a multipart body).
fn sdp_lines<'a>(req: &Message<'a>) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
    let sdp: &'a [u8] = match req.get::<ContentType>() {
        Ok(Some(ct)) if is_sdp(ct.0.mtype, ct.0.subtype) => req.body(),
        Ok(Some(ct)) if ct.0.mtype.eq_ignore_ascii_case("multipart") => req
            .multipart(&Limits::default())
            .ok()
            .flatten()
            .and_then(|parts| {
                parts
                    .into_iter()
                    .find(|p| matches!(p.content_type(), Some(Ok(t)) if is_sdp(t.mtype, t.subtype)))
            })
            .map_or(&[][..], |p| p.body),
        _ => &[],
    };
    std::str::from_utf8(sdp)
        .unwrap_or("")
        .lines()
        .filter_map(|l| l.split_once('='))
}

fn is_sdp(t: &str, s: &str) -> bool {
    t.eq_ignore_ascii_case("application") && s.eq_ignore_ascii_case("sdp")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::subscription::{ApplicationServer, Spt, TriggerPoint};

    fn ifc(priority: i32, cnf: bool, spts: Vec<Spt>, server: &str) -> InitialFilterCriteria {
        InitialFilterCriteria {
            priority,
            trigger_point: Some(TriggerPoint {
                condition_type_cnf: cnf,
                spts,
            }),
            application_server: ApplicationServer::new(server),
            profile_part_indicator: None,
        }
    }

    fn grp(mut s: Spt, groups: &[u32]) -> Spt {
        s.groups = groups.to_vec();
        s
    }

    const MESSAGE: &[u8] = b"MESSAGE sip:+15550002@ims.example.org SIP/2.0\r\n\
Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK-1\r\nMax-Forwards: 70\r\n\
From: <sip:+15550001@ims.example.org>;tag=1\r\nTo: <tel:+15550002>\r\nCall-ID: c1\r\n\
CSeq: 1 MESSAGE\r\nContent-Type: application/vnd.3gpp.sms\r\nContent-Length: 0\r\n\r\n";

    const INVITE: &[u8] = b"INVITE sip:bob@ims.example.org SIP/2.0\r\n\
Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK-2\r\nMax-Forwards: 70\r\n\
From: <sip:alice@ims.example.org>;tag=1\r\nTo: <sip:bob@ims.example.org>\r\nCall-ID: c2\r\n\
CSeq: 1 INVITE\r\nContent-Type: application/sdp\r\nContent-Length: 69\r\n\r\n\
v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nt=0 0\r\nm=message 2855 TCP/MSRP *\r\n";

    fn ctx(case: SessionCase) -> Context {
        Context {
            session_case: case,
            registered: true,
            registration_type: None,
        }
    }

    #[test]
    fn dnf_and_cnf_follow_annex_b() {
        let msg = ims_sip::parse_datagram(MESSAGE).unwrap();
        let sms = Spt::new(SptKind::SipHeader {
            header: "Content-Type".into(),
            content: Some(r"application/vnd\.3gpp\.sms".into()),
        });
        let method = Spt::new(SptKind::Method("MESSAGE".into()));
        let orig = Spt::new(SptKind::SessionCase(SessionCase::Originating));
        let invite = Spt::new(SptKind::Method("INVITE".into()));
        // DNF: (MESSAGE ∧ sms) ∨ (INVITE)
        let dnf = ifc(
            5,
            false,
            vec![
                grp(method.clone(), &[0]),
                grp(sms.clone(), &[0]),
                grp(invite.clone(), &[1]),
            ],
            "sip:ipsmgw",
        );
        // CNF: (MESSAGE ∨ INVITE) ∧ (orig)
        let cnf = ifc(
            1,
            true,
            vec![
                grp(method.clone(), &[0]),
                grp(invite.clone(), &[0]),
                grp(orig, &[1]),
            ],
            "sip:as1",
        );
        let set = FilterSet::compile(&[dnf, cnf]).unwrap();
        let hit: Vec<_> = set
            .matching(&msg, ctx(SessionCase::Originating))
            .map(|i| i.application_server.server_name.as_str())
            .collect();
        assert_eq!(hit, ["sip:as1", "sip:ipsmgw"]);
        let hit: Vec<_> = set
            .matching(&msg, ctx(SessionCase::TerminatingRegistered))
            .map(|i| i.application_server.server_name.as_str())
            .collect();
        assert_eq!(hit, ["sip:ipsmgw"]);
        assert_eq!(
            set.next_after(&msg, ctx(SessionCase::Originating), Some(1))
                .map(|i| i.priority),
            Some(5)
        );
        assert!(set
            .next_after(&msg, ctx(SessionCase::Originating), Some(5))
            .is_none());
    }

    #[test]
    fn negation_sdp_and_request_uri() {
        let inv = ims_sip::parse_datagram(INVITE).unwrap();
        let msrp = Spt::new(SptKind::SessionDescription {
            line: "m".into(),
            content: Some("^message .*MSRP".into()),
        });
        let mut not_bob = Spt::new(SptKind::RequestUri("^sip:bob@".into()));
        not_bob.condition_negated = true;
        let set = FilterSet::compile(&[
            ifc(0, true, vec![msrp.clone()], "sip:im"),
            ifc(1, true, vec![msrp, grp(not_bob, &[1])], "sip:never"),
        ])
        .unwrap();
        let hit: Vec<_> = set
            .matching(&inv, ctx(SessionCase::TerminatingRegistered))
            .map(|i| i.application_server.server_name.as_str())
            .collect();
        assert_eq!(hit, ["sip:im"]);
    }

    /// The SessionDescription SPT of `examples/cscf/ims.toml` (TS 29.228 B.2.2: line `m`,
    /// content `^message `): an MSRP offer matches, an audio-only offer and a MESSAGE do not.
    #[test]
    fn session_description_spt_selects_msrp_offers() {
        let inv = ims_sip::parse_datagram(INVITE).unwrap();
        let audio = INVITE
            .windows(7)
            .position(|w| w == b"message")
            .map(|i| {
                let mut v = INVITE[..i].to_vec();
                v.extend_from_slice(b"audio 2855 RTP/AVP 0 18\r\n");
                v
            })
            .unwrap();
        let audio = ims_sip::parse_datagram(&audio).unwrap();
        let msg = ims_sip::parse_datagram(MESSAGE).unwrap();
        let spts = vec![
            Spt::new(SptKind::SessionCase(SessionCase::Originating)),
            Spt::new(SptKind::Method("INVITE".into())),
            Spt::new(SptKind::SessionDescription {
                line: "m".into(),
                content: Some("^message ".into()),
            }),
        ];
        let set = FilterSet::compile(&[ifc(50, false, spts, "sip:127.0.0.1:7070")]).unwrap();
        let orig = ctx(SessionCase::Originating);
        assert_eq!(set.matching(&inv, orig).count(), 1);
        assert_eq!(set.matching(&audio, orig).count(), 0, "audio-only offer");
        assert_eq!(set.matching(&msg, orig).count(), 0, "no SDP");
        assert_eq!(
            set.matching(&inv, ctx(SessionCase::TerminatingRegistered))
                .count(),
            0,
            "originating only"
        );
        // a line type other than m= never matches the content
        let other = Spt::new(SptKind::SessionDescription {
            line: "a".into(),
            content: Some("^message ".into()),
        });
        let set = FilterSet::compile(&[ifc(1, false, vec![other], "sip:x")]).unwrap();
        assert_eq!(set.matching(&inv, orig).count(), 0);
    }

    #[test]
    fn register_types_and_profile_part() {
        let reg = ims_sip::parse_datagram(
            b"REGISTER sip:ims.example.org SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK-3\r\n\
Max-Forwards: 70\r\nFrom: <sip:a@ims.example.org>;tag=1\r\nTo: <sip:a@ims.example.org>\r\n\
Call-ID: c3\r\nCSeq: 1 REGISTER\r\nContent-Length: 0\r\n\r\n",
        )
        .unwrap();
        let mut s = Spt::new(SptKind::Method("REGISTER".into()));
        s.registration_types = vec![RegistrationType::Initial, RegistrationType::Deregistration];
        let mut f = ifc(0, true, vec![s], "sip:as");
        f.profile_part_indicator = Some(ProfilePartIndicator::Registered);
        let set = FilterSet::compile(&[f]).unwrap();
        let c = |t, registered| Context {
            session_case: SessionCase::Originating,
            registered,
            registration_type: Some(t),
        };
        assert_eq!(
            set.matching(&reg, c(RegistrationType::Initial, true))
                .count(),
            1
        );
        assert_eq!(
            set.matching(&reg, c(RegistrationType::Reregistration, true))
                .count(),
            0
        );
        assert_eq!(
            set.matching(&reg, c(RegistrationType::Deregistration, false))
                .count(),
            0
        );
    }

    #[test]
    fn no_trigger_point_always_matches_and_bad_regex_is_reported() {
        let msg = ims_sip::parse_datagram(MESSAGE).unwrap();
        let always = InitialFilterCriteria {
            priority: 3,
            trigger_point: None,
            application_server: ApplicationServer::new("sip:all"),
            profile_part_indicator: None,
        };
        let set = FilterSet::compile(&[always]).unwrap();
        assert_eq!(set.matching(&msg, ctx(SessionCase::Originating)).count(), 1);
        let e = FilterSet::compile(&[ifc(
            7,
            true,
            vec![Spt::new(SptKind::RequestUri("(".into()))],
            "sip:x",
        )])
        .unwrap_err();
        assert_eq!(e.priority, 7);
    }
}
