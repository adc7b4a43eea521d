//! Precondition state (RFC 3312 §5, updated by RFC 4032) and the 183 / UPDATE flow of
//! 3GPP TS 24.229 §6.1.2 / §5.1.3.
//!
//! A [`PreconditionState`] is the table of RFC 3312 §5 as one side sees it: for each segment
//! (`e2e`, `local`, `remote`) and each direction (send, receive) the current status, the desired
//! strength and whether confirmation was asked for. Lines always speak from the writer's point of
//! view, so the receiver turns them around with [`PreconditionState::from_peer`] (`local` ↔
//! `remote`, `send` ↔ `recv`).
//!
//! ```
//! use ims_sdp::{PreconditionState, PrecondDirection, Session, StatusType};
//!
//! // the UE's INVITE offer: nothing reserved yet, both segments mandatory
//! let offer = "v=0\r\no=ue 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n\
//!              m=audio 4000 RTP/AVP 0\r\na=curr:qos local none\r\na=curr:qos remote none\r\n\
//!              a=des:qos mandatory local sendrecv\r\na=des:qos mandatory remote sendrecv\r\n";
//! let offer = Session::parse_str(offer)?;
//! let theirs = PreconditionState::from_media(&offer.media[0])?.unwrap();
//!
//! // the callee answers in a 183: its own segment not reserved yet, and it asks to be told when
//! // the caller's segment is
//! let mut mine = PreconditionState::from_peer(&theirs);
//! mine.set_current(StatusType::Local, PrecondDirection::None);
//! mine.request_confirmation(StatusType::Remote, PrecondDirection::SendRecv);
//! let lines: Vec<String> = mine.to_attributes("qos").iter().map(|a| a.to_string()).collect();
//! assert_eq!(lines, [
//!     "curr:qos local none", "curr:qos remote none",
//!     "des:qos mandatory local sendrecv", "des:qos mandatory remote sendrecv",
//!     "conf:qos remote sendrecv",
//! ]);
//! assert!(!mine.met());
//! # Ok::<(), ims_sdp::Error>(())
//! ```

use crate::attr::{Attr, PrecondDirection, StatusType, Strength};
use crate::builder::{AttributeBuf, MediaBuilder};
use crate::error::Error;
use crate::session::Media;

/// One direction of one segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DirStatus {
    /// Resources are reserved (current status).
    pub current: bool,
    /// Desired strength, `None` when no `des` line covers this direction.
    pub desired: Option<Strength>,
    /// Confirmation was asked for (`conf`).
    pub confirm: bool,
}

/// The send and receive directions of one segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Segment {
    /// Media the writer sends.
    pub send: DirStatus,
    /// Media the writer receives.
    pub recv: DirStatus,
}

impl Segment {
    fn reversed(&self) -> Segment {
        Segment {
            send: self.recv,
            recv: self.send,
        }
    }
    fn current(&self) -> PrecondDirection {
        PrecondDirection::from_flags(self.send.current, self.recv.current)
    }
    fn met(&self) -> bool {
        [self.send, self.recv]
            .iter()
            .all(|d| d.desired != Some(Strength::Mandatory) || d.current)
    }
}

/// The precondition table of one media description (type `qos`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PreconditionState {
    /// `e2e` status, when used.
    pub e2e: Option<Segment>,
    /// `local` status (the writer's access network), when used.
    pub local: Option<Segment>,
    /// `remote` status (the peer's access network), when used.
    pub remote: Option<Segment>,
}

impl PreconditionState {
    /// Segmented status (`local` and `remote`), nothing reserved, both directions of both
    /// segments at `strength`: what a UE puts in its initial INVITE (TS 24.229 §5.1.3.1).
    pub fn segmented(strength: Strength) -> Self {
        let d = DirStatus {
            current: false,
            desired: Some(strength),
            confirm: false,
        };
        let seg = Segment { send: d, recv: d };
        PreconditionState {
            e2e: None,
            local: Some(seg),
            remote: Some(seg),
        }
    }

    /// Reads the `curr`, `des` and `conf` lines of type `qos` of a media description; `None`
    /// when it has none. Lines of other types (`sec`, …) are skipped unread.
    pub fn from_media(m: &Media<'_>) -> Result<Option<Self>, Error> {
        let mut st = PreconditionState::default();
        let mut any = false;
        for a in &m.attributes {
            if !matches!(a.name, "curr" | "des" | "conf") {
                continue;
            }
            // other precondition types are opaque here: not read, never an error
            let ty = a.value.and_then(|v| v.split_ascii_whitespace().next());
            if !ty.is_some_and(|t| t.eq_ignore_ascii_case("qos")) {
                continue;
            }
            let (ty, status, dir, f): (_, _, _, &dyn Fn(&mut DirStatus)) = match a.typed()? {
                Attr::Curr(s) => (s.precondition_type, s.status_type, s.direction, &|d| {
                    d.current = true
                }),
                Attr::Conf(s) => (s.precondition_type, s.status_type, s.direction, &|d| {
                    d.confirm = true
                }),
                Attr::Des(s) => {
                    if s.precondition_type != "qos" {
                        continue;
                    }
                    any = true;
                    let seg = st.segment_mut(s.status_type);
                    for (covered, d) in [
                        (s.direction.send(), &mut seg.send),
                        (s.direction.recv(), &mut seg.recv),
                    ] {
                        if covered {
                            // the strongest line wins when two cover the same direction
                            d.desired = Some(d.desired.map_or(s.strength, |x| x.max(s.strength)));
                        }
                    }
                    continue;
                }
                _ => continue,
            };
            if ty != "qos" {
                continue;
            }
            any = true;
            let seg = st.segment_mut(status);
            if dir.send() {
                f(&mut seg.send);
            }
            if dir.recv() {
                f(&mut seg.recv);
            }
        }
        Ok(any.then_some(st))
    }

    fn segment_mut(&mut self, t: StatusType) -> &mut Segment {
        let s = match t {
            StatusType::E2e => &mut self.e2e,
            StatusType::Local => &mut self.local,
            StatusType::Remote => &mut self.remote,
        };
        s.get_or_insert_with(Segment::default)
    }

    /// The same table as the peer writes it: `local` ↔ `remote`, `send` ↔ `recv`.
    pub fn reversed(&self) -> Self {
        PreconditionState {
            e2e: self.e2e.map(|s| s.reversed()),
            local: self.remote.map(|s| s.reversed()),
            remote: self.local.map(|s| s.reversed()),
        }
    }

    /// This side's view after receiving the peer's lines: [`reversed`](Self::reversed), with the
    /// peer's confirmation requests dropped (they ask this side to report, they are not part of
    /// what this side writes; see [`confirmation_requested`](Self::confirmation_requested)).
    pub fn from_peer(peer: &PreconditionState) -> Self {
        let mut s = peer.reversed();
        for seg in [&mut s.e2e, &mut s.local, &mut s.remote]
            .into_iter()
            .flatten()
        {
            seg.send.confirm = false;
            seg.recv.confirm = false;
        }
        s
    }

    /// The directions of this side's `local` (or `e2e`) segment the peer asked to be told about
    /// in `peer` (its `conf` lines on `remote` / `e2e`).
    pub fn confirmation_requested(peer: &PreconditionState) -> PrecondDirection {
        let r = peer.reversed();
        let seg = r.local.or(r.e2e).unwrap_or_default();
        PrecondDirection::from_flags(seg.send.confirm, seg.recv.confirm)
    }

    /// Sets the current status of a segment (replacing what was there).
    pub fn set_current(&mut self, t: StatusType, dir: PrecondDirection) {
        let seg = self.segment_mut(t);
        seg.send.current = dir.send();
        seg.recv.current = dir.recv();
    }

    /// The current status of a segment (`none` when the segment is absent).
    pub fn current(&self, t: StatusType) -> PrecondDirection {
        let s = match t {
            StatusType::E2e => self.e2e,
            StatusType::Local => self.local,
            StatusType::Remote => self.remote,
        };
        s.map_or(PrecondDirection::None, |s| s.current())
    }

    /// Asks the peer to confirm when the given directions of a segment are reserved.
    pub fn request_confirmation(&mut self, t: StatusType, dir: PrecondDirection) {
        let seg = self.segment_mut(t);
        seg.send.confirm = dir.send();
        seg.recv.confirm = dir.recv();
    }

    /// Sets the desired strength of both directions of a segment.
    pub fn set_desired(&mut self, t: StatusType, strength: Strength) {
        let seg = self.segment_mut(t);
        seg.send.desired = Some(strength);
        seg.recv.desired = Some(strength);
    }

    /// True when every mandatory desired direction is currently reserved (RFC 3312 §6: the
    /// session may proceed, e.g. the callee may alert).
    pub fn met(&self) -> bool {
        [self.e2e, self.local, self.remote]
            .iter()
            .flatten()
            .all(Segment::met)
    }

    /// True when some desired strength is `failure` (RFC 3312 §8).
    pub fn failed(&self) -> bool {
        [self.e2e, self.local, self.remote]
            .iter()
            .flatten()
            .any(|s| {
                s.send.desired == Some(Strength::Failure)
                    || s.recv.desired == Some(Strength::Failure)
            })
    }

    /// The `curr`, `des` and `conf` lines for this table, in that order per kind and segment
    /// (`e2e`, `local`, `remote`).
    pub fn to_attributes(&self, precondition_type: &str) -> Vec<AttributeBuf> {
        let segs = [
            (StatusType::E2e, self.e2e),
            (StatusType::Local, self.local),
            (StatusType::Remote, self.remote),
        ];
        let mut out = Vec::new();
        for (t, s) in segs {
            if let Some(s) = s {
                out.push(AttributeBuf::new(
                    "curr",
                    format!(
                        "{precondition_type} {} {}",
                        t.as_str(),
                        s.current().as_str()
                    ),
                ));
            }
        }
        for (t, s) in segs {
            let Some(s) = s else { continue };
            let line = |strength: Strength, dir: PrecondDirection| {
                AttributeBuf::new(
                    "des",
                    format!(
                        "{precondition_type} {} {} {}",
                        strength.as_str(),
                        t.as_str(),
                        dir.as_str()
                    ),
                )
            };
            match (s.send.desired, s.recv.desired) {
                (Some(a), Some(b)) if a == b => out.push(line(a, PrecondDirection::SendRecv)),
                (a, b) => {
                    if let Some(a) = a {
                        out.push(line(a, PrecondDirection::Send));
                    }
                    if let Some(b) = b {
                        out.push(line(b, PrecondDirection::Recv));
                    }
                }
            }
        }
        for (t, s) in segs {
            let Some(s) = s else { continue };
            let d = PrecondDirection::from_flags(s.send.confirm, s.recv.confirm);
            if d != PrecondDirection::None {
                out.push(AttributeBuf::new(
                    "conf",
                    format!("{precondition_type} {} {}", t.as_str(), d.as_str()),
                ));
            }
        }
        out
    }

    /// Replaces the `curr` / `des` / `conf` lines of type `qos` in `m` with this table's,
    /// placed where the first of them was, or at the end. Lines of other precondition types
    /// (`sec`, RFC 5027, or unknown ones) stay as they are.
    pub fn apply(&self, m: &mut MediaBuilder) {
        let is_pre = |a: &AttributeBuf| {
            matches!(a.name.as_str(), "curr" | "des" | "conf")
                && a.value
                    .as_deref()
                    .and_then(|v| v.split_ascii_whitespace().next())
                    .is_some_and(|t| t.eq_ignore_ascii_case("qos"))
        };
        let at = m.attributes.iter().position(is_pre);
        m.attributes.retain(|a| !is_pre(a));
        let new = self.to_attributes("qos");
        let at = at.unwrap_or(m.attributes.len()).min(m.attributes.len());
        m.attributes.splice(at..at, new);
    }
}
