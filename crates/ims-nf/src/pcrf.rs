//! Rx (TS 29.214): the PCRF side ([`Pcrf`] decisions, [`PcrfRxServer`] answering AAR and STR
//! octets, and the ASR / RAR it sends when a bearer is lost) and the P-CSCF side ([`RxClient`],
//! [`DiameterRx`] sending AAR/STR, [`answer_pcrf_request`] answering ASR/RAR).

use crate::cx_wire::DiameterRequester;
use ims_diameter::base::TerminationCause;
use ims_diameter::dict::{app, command, VENDOR_3GPP};
use ims_diameter::rx::{
    Aaa, Aar, AbortCause, AcceptableServiceInfo, Asa, Asr, FlowStatus, MediaComponentDescription,
    MediaType, Raa, Rar, RxRequestType, SpecificAction, Sta, Str,
};
use ims_diameter::{Command, IpFilterRule, Message, Origin, Outcome};
use std::borrow::Cow;
use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// INVALID_SERVICE_INFORMATION (5061, 3GPP).
pub const INVALID_SERVICE_INFORMATION: Outcome = Outcome::experimental(VENDOR_3GPP, 5061);
/// REQUESTED_SERVICE_NOT_AUTHORIZED (5063, 3GPP).
pub const REQUESTED_SERVICE_NOT_AUTHORIZED: Outcome = Outcome::experimental(VENDOR_3GPP, 5063);
/// DIAMETER_UNKNOWN_SESSION_ID (5002).
pub const UNKNOWN_SESSION_ID: Outcome = Outcome::from_result_code(5002);

/// One AF session the PCRF authorised.
#[derive(Debug, Clone, PartialEq)]
pub struct RxSession {
    /// Session-Id.
    pub session_id: String,
    /// The AF (P-CSCF) that opened it: where ASR and RAR go.
    pub af_host: String,
    /// Its realm.
    pub af_realm: String,
    /// The media components as last authorised.
    pub media: Vec<AuthorizedMedia>,
    /// AF-Charging-Identifier (the ICID).
    pub af_charging_identifier: Option<Vec<u8>>,
    /// Specific-Action subscriptions.
    pub specific_actions: Vec<SpecificAction>,
}

/// PCRF policy and sessions.
#[derive(Debug, Default)]
pub struct Pcrf {
    sessions: HashMap<String, RxSession>,
    /// Largest total Max-Requested-Bandwidth (UL + DL, bit/s) authorised per session; `None`: any.
    pub max_bandwidth: Option<u64>,
}

impl Pcrf {
    /// A PCRF with an optional per-session bandwidth limit.
    pub fn new(max_bandwidth: Option<u64>) -> Pcrf {
        Pcrf {
            sessions: HashMap::new(),
            max_bandwidth,
        }
    }

    /// The session with this Session-Id.
    pub fn session(&self, id: &str) -> Option<&RxSession> {
        self.sessions.get(id)
    }

    /// Number of open sessions.
    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    /// True when none are open.
    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }

    /// Decides an AAR: creates or updates the session. On a bandwidth excess, answers
    /// REQUESTED_SERVICE_NOT_AUTHORIZED with the acceptable service (TS 29.214 §4.4.1).
    pub fn aa(&mut self, aar: &Aar<'_>) -> (Outcome, Option<AcceptableServiceInfo<'static>>) {
        for mcd in &aar.media_component_description {
            for sub in &mcd.media_sub_component {
                if sub
                    .flow_description
                    .iter()
                    .any(|d| IpFilterRule::parse(d).is_err())
                {
                    return (INVALID_SERVICE_INFORMATION, None);
                }
            }
        }
        let update = aar.rx_request_type == Some(RxRequestType::UpdateRequest)
            || self.sessions.contains_key(aar.session_id.as_ref());
        if aar.rx_request_type == Some(RxRequestType::UpdateRequest)
            && !self.sessions.contains_key(aar.session_id.as_ref())
        {
            return (UNKNOWN_SESSION_ID, None);
        }
        if let Some(max) = self.max_bandwidth {
            let total: u64 = aar
                .media_component_description
                .iter()
                .map(|m| {
                    u64::from(m.max_requested_bandwidth_ul.unwrap_or(0))
                        + u64::from(m.max_requested_bandwidth_dl.unwrap_or(0))
                })
                .sum();
            if total > max {
                let half = u32::try_from(max / 2).unwrap_or(u32::MAX);
                return (
                    REQUESTED_SERVICE_NOT_AUTHORIZED,
                    Some(AcceptableServiceInfo {
                        max_requested_bandwidth_ul: Some(half),
                        max_requested_bandwidth_dl: Some(half),
                        ..Default::default()
                    }),
                );
            }
        }
        let media: Vec<AuthorizedMedia> = aar
            .media_component_description
            .iter()
            .map(AuthorizedMedia::of)
            .collect();
        let entry = self
            .sessions
            .entry(aar.session_id.to_string())
            .or_insert_with(|| RxSession {
                session_id: aar.session_id.to_string(),
                af_host: aar.origin_host.to_string(),
                af_realm: aar.origin_realm.to_string(),
                media: Vec::new(),
                af_charging_identifier: None,
                specific_actions: Vec::new(),
            });
        if update {
            // an update replaces the components it names, keeps the others
            for m in media {
                match entry.media.iter_mut().find(|e| e.number == m.number) {
                    Some(e) => *e = m,
                    None => entry.media.push(m),
                }
            }
        } else {
            entry.media = media;
        }
        if let Some(c) = &aar.af_charging_identifier {
            entry.af_charging_identifier = Some(c.to_vec());
        }
        if !aar.specific_action.is_empty() {
            entry.specific_actions = aar.specific_action.to_vec();
        }
        (Outcome::SUCCESS, None)
    }

    /// Decides an STR: removes the session.
    pub fn st(&mut self, session_id: &str) -> Outcome {
        match self.sessions.remove(session_id) {
            Some(_) => Outcome::SUCCESS,
            None => UNKNOWN_SESSION_ID,
        }
    }

    /// Removes every session opened by the AF `af_host` (compared without case), e.g. when
    /// its Diameter node restarted with its state lost (a new Origin-State-Id, RFC 6733 §8.16,
    /// `ims_net::diameter::Node::on_peer_restart`): it will never end them with an STR.
    /// Returns their Session-Ids, sorted.
    pub fn drop_sessions_of(&mut self, af_host: &str) -> Vec<String> {
        let mut gone: Vec<String> = self
            .sessions
            .values()
            .filter(|s| s.af_host.eq_ignore_ascii_case(af_host))
            .map(|s| s.session_id.clone())
            .collect();
        for id in &gone {
            self.sessions.remove(id);
        }
        gone.sort();
        gone
    }

    /// The Session-Ids of the sessions it holds.
    pub fn session_ids(&self) -> Vec<String> {
        let mut v: Vec<String> = self.sessions.keys().cloned().collect();
        v.sort();
        v
    }

    /// An Abort-Session-Request for a session (TS 29.214 §4.4.4: the PCRF ends the AF session,
    /// e.g. when the IP-CAN session is gone); `None` for an unknown session.
    pub fn abort(
        &self,
        session_id: &str,
        origin: &Origin<'_>,
        cause: AbortCause,
    ) -> Option<Asr<'static>> {
        let s = self.sessions.get(session_id)?;
        Some(Asr {
            session_id: s.session_id.clone().into(),
            origin_host: origin.host.to_string().into(),
            origin_realm: origin.realm.to_string().into(),
            destination_realm: s.af_realm.clone().into(),
            destination_host: s.af_host.clone().into(),
            auth_application_id: app::RX,
            abort_cause: cause,
            ..Default::default()
        })
    }

    /// A Re-Auth-Request reporting `actions` for a session (TS 29.214 §4.4.6), for the media
    /// components `flows` (empty: all of them); `None` for an unknown session.
    pub fn reauth(
        &self,
        session_id: &str,
        origin: &Origin<'_>,
        actions: &[SpecificAction],
        flows: &[u32],
    ) -> Option<Rar<'static>> {
        let s = self.sessions.get(session_id)?;
        Some(Rar {
            session_id: s.session_id.clone().into(),
            origin_host: origin.host.to_string().into(),
            origin_realm: origin.realm.to_string().into(),
            destination_realm: s.af_realm.clone().into(),
            destination_host: s.af_host.clone().into(),
            auth_application_id: app::RX,
            specific_action: actions.to_vec().into(),
            flows: flows
                .iter()
                .map(|n| ims_diameter::rx::Flows {
                    media_component_number: *n,
                    ..Default::default()
                })
                .collect::<Vec<_>>()
                .into(),
            ..Default::default()
        })
    }

    /// The bearer of a session was lost: a RAR reporting INDICATION_OF_LOSS_OF_BEARER when the AF
    /// subscribed to it, else an ASR (TS 29.214 §4.4.6.2, §4.4.4).
    pub fn bearer_lost(&self, session_id: &str, origin: &Origin<'_>) -> Option<PcrfRequest> {
        let s = self.sessions.get(session_id)?;
        if s.specific_actions
            .contains(&SpecificAction::IndicationOfLossOfBearer)
        {
            Some(PcrfRequest::Rar(Box::new(Rar {
                session_id: s.session_id.clone().into(),
                origin_host: origin.host.to_string().into(),
                origin_realm: origin.realm.to_string().into(),
                destination_realm: s.af_realm.clone().into(),
                destination_host: s.af_host.clone().into(),
                auth_application_id: app::RX,
                specific_action: vec![SpecificAction::IndicationOfLossOfBearer].into(),
                ..Default::default()
            })))
        } else {
            Some(PcrfRequest::Asr(Box::new(Asr {
                session_id: s.session_id.clone().into(),
                origin_host: origin.host.to_string().into(),
                origin_realm: origin.realm.to_string().into(),
                destination_realm: s.af_realm.clone().into(),
                destination_host: s.af_host.clone().into(),
                auth_application_id: app::RX,
                abort_cause: AbortCause::BearerReleased,
                ..Default::default()
            })))
        }
    }
}

/// A request the PCRF sends to the AF.
#[derive(Debug, Clone, PartialEq)]
pub enum PcrfRequest {
    /// Re-Auth-Request.
    Rar(Box<Rar<'static>>),
    /// Abort-Session-Request.
    Asr(Box<Asr<'static>>),
}

impl PcrfRequest {
    /// Encodes it with these identifiers.
    pub fn encode(&self, hop_by_hop: u32, end_to_end: u32) -> Vec<u8> {
        match self {
            PcrfRequest::Rar(r) => r.encode(hop_by_hop, end_to_end),
            PcrfRequest::Asr(a) => a.encode(hop_by_hop, end_to_end),
        }
    }
}

/// Why a RAR did not settle a report to the AF (see [`report_bearer_event`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RarFailure {
    /// No answer: the request timed out (the Diameter node's request timeout) or could not be
    /// sent. Kamailio 5.6.3's `ims_qos` never answers a RAR.
    NoAnswer(String),
    /// An answer with this non-success Result-Code / Experimental-Result-Code (3xxx, 4xxx,
    /// 5xxx), or 0 for an answer without a result.
    Refused(u32),
}

/// How [`report_bearer_event`] ended.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum BearerReport {
    /// The AF answered the RAR with this success code: it takes care of the session itself
    /// (and ends it with an STR when it releases it, TS 29.214 §4.4.6.2).
    Reauthorized(u32),
    /// The PCRF ended the AF session with an ASR (TS 29.214 §4.4.4).
    Aborted {
        /// Why the RAR sent first failed; `None` when the ASR was the only request (the AF
        /// had not subscribed to the bearer event, see [`Pcrf::bearer_lost`]).
        rar: Option<RarFailure>,
        /// The ASA's result code, or why there is none.
        asa: Result<u32, String>,
        /// The PCRF removed the session itself: no successful ASA, so no STR will come (the
        /// IP-CAN bearer is gone anyway). With ASA 2001 the session stays until the AF's STR.
        removed: bool,
    },
    /// The AF answered the RAR DIAMETER_UNKNOWN_SESSION_ID (5002): it holds no such session,
    /// so no ASR is sent and the PCRF removed the session.
    Removed,
    /// The PCRF holds no session with that Session-Id: nothing was sent.
    UnknownSession,
}

/// The result code of an answer's octets (0 when it has none or does not parse).
fn answer_result(answer: &[u8]) -> u32 {
    Message::parse(answer)
        .ok()
        .and_then(|m| m.outcome())
        .map_or(0, |o| o.code())
}

/// Sends a PCRF-initiated request about a session's bearers — a RAR from [`Pcrf::reauth`] or
/// [`Pcrf::bearer_lost`], or an ASR — through `requester` (the PCRF's Diameter node, whose
/// request timeout bounds the wait), falling back to an ASR when the RAR does not settle it.
///
/// TS 29.214 §4.4.6.2: the PCRF reports a loss or release of bearer with a RAR when the AF
/// subscribed to it; §4.4.4: the PCRF ends the AF session with an ASR when the session cannot
/// go on (e.g. all bearers lost). A RAR that gets no RAA (a timeout), or an RAA with an error
/// result, leaves the AF unaware while the bearer is gone, so the PCRF then sends an ASR
/// (Abort-Cause BEARER_RELEASED) for the session. An RAA 5002 DIAMETER_UNKNOWN_SESSION_ID
/// means the AF holds no such session: the PCRF forgets it instead. When the ASR is not
/// answered with success either, the PCRF removes the session itself.
///
/// `pcrf` is locked only between the exchanges, never across an `await`.
pub async fn report_bearer_event<R: DiameterRequester>(
    pcrf: &Mutex<Pcrf>,
    requester: &R,
    origin: &Origin<'_>,
    request: PcrfRequest,
) -> BearerReport {
    let lock = || pcrf.lock().expect("PCRF lock is never poisoned");
    let (session_id, rar) = match request {
        PcrfRequest::Asr(a) => (a.session_id.to_string(), PcrfRequest::Asr(a)),
        PcrfRequest::Rar(r) => (r.session_id.to_string(), PcrfRequest::Rar(r)),
    };
    if lock().session(&session_id).is_none() {
        return BearerReport::UnknownSession;
    }
    let failure = match &rar {
        PcrfRequest::Asr(_) => None,
        PcrfRequest::Rar(_) => {
            let failure = match requester.request(rar.encode(0, 0)).await {
                Err(e) => RarFailure::NoAnswer(e),
                Ok(raa) => {
                    let code = answer_result(&raa);
                    if (2000..3000).contains(&code) {
                        return BearerReport::Reauthorized(code);
                    }
                    if code == UNKNOWN_SESSION_ID.code() {
                        lock().st(&session_id);
                        return BearerReport::Removed;
                    }
                    RarFailure::Refused(code)
                }
            };
            Some(failure)
        }
    };
    let asr = match (&rar, &failure) {
        (PcrfRequest::Asr(a), _) => Some(a.encode(0, 0)),
        _ => lock()
            .abort(&session_id, origin, AbortCause::BearerReleased)
            .map(|a| a.encode(0, 0)),
    };
    let Some(asr) = asr else {
        // the AF ended the session (STR) while the RAR was pending
        return BearerReport::UnknownSession;
    };
    let asa = match requester.request(asr).await {
        Ok(a) => Ok(answer_result(&a)),
        Err(e) => Err(e),
    };
    let removed = !matches!(asa, Ok(c) if (2000..3000).contains(&c));
    if removed {
        lock().st(&session_id);
    }
    BearerReport::Aborted {
        rar: failure,
        asa,
        removed,
    }
}

/// What the PCRF keeps of one authorised media component.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthorizedMedia {
    /// Media-Component-Number.
    pub number: u32,
    /// Media-Type.
    pub media_type: Option<MediaType>,
    /// Max-Requested-Bandwidth-UL (bit/s).
    pub max_ul: Option<u32>,
    /// Max-Requested-Bandwidth-DL (bit/s).
    pub max_dl: Option<u32>,
    /// Flow-Status.
    pub flow_status: Option<FlowStatus>,
    /// Number of Media-Sub-Components (IP flows).
    pub flows: usize,
}

impl AuthorizedMedia {
    fn of(m: &MediaComponentDescription<'_>) -> AuthorizedMedia {
        AuthorizedMedia {
            number: m.media_component_number,
            media_type: m.media_type,
            max_ul: m.max_requested_bandwidth_ul,
            max_dl: m.max_requested_bandwidth_dl,
            flow_status: m.flow_status,
            flows: m.media_sub_component.len(),
        }
    }
}

/// Answers Rx requests (AAR, STR) for a shared [`Pcrf`].
#[derive(Debug, Clone)]
pub struct PcrfRxServer {
    origin_host: String,
    origin_realm: String,
    pcrf: Arc<Mutex<Pcrf>>,
}

impl PcrfRxServer {
    /// A PCRF answering as `origin_host` in `origin_realm`.
    pub fn new(origin_host: &str, origin_realm: &str, pcrf: Arc<Mutex<Pcrf>>) -> PcrfRxServer {
        PcrfRxServer {
            origin_host: origin_host.to_string(),
            origin_realm: origin_realm.to_string(),
            pcrf,
        }
    }

    /// The shared PCRF state.
    pub fn pcrf(&self) -> &Arc<Mutex<Pcrf>> {
        &self.pcrf
    }

    /// The origin it answers as.
    pub fn origin(&self) -> Origin<'_> {
        Origin {
            host: &self.origin_host,
            realm: &self.origin_realm,
            state_id: None,
        }
    }

    /// The answer to one request's octets (protocol errors answered as RFC 6733 §7 says).
    pub fn answer(&self, request: &[u8]) -> Option<Vec<u8>> {
        // The typed decode of an Rx AAR or STR request is the whole of what
        // `answer::check_request` checks for it, so a well-formed request is decoded once; any
        // failure (or another command) takes the error path, which finds the same fault again
        // and answers it as RFC 6733 §7 says.
        let reject = || match ims_diameter::answer::reject(request, &[app::RX], &self.origin()) {
            Ok(Some(err)) => Some(err),
            Ok(None) | Err(_) => None,
        };
        let Ok(msg) = Message::parse(request) else {
            return reject();
        };
        if msg.application_id() != app::RX || !msg.is_request() || msg.flags().is_error() {
            return reject();
        }
        let h = msg.header();
        match msg.code() {
            command::AA => {
                let Ok(r) = Aar::decode(&msg) else {
                    return reject();
                };
                let mut pcrf = self.pcrf.lock().expect("PCRF lock is never poisoned");
                let (outcome, acceptable) = pcrf.aa(&r);
                let mut a = Aaa {
                    session_id: r.session_id,
                    auth_application_id: app::RX,
                    origin_host: Cow::Borrowed(&self.origin_host),
                    origin_realm: Cow::Borrowed(&self.origin_realm),
                    acceptable_service_info: acceptable,
                    ..Default::default()
                };
                a.set_outcome(outcome);
                Some(a.encode_answer(h))
            }
            command::SESSION_TERMINATION => {
                let Ok(r) = Str::decode(&msg) else {
                    return reject();
                };
                let outcome = self
                    .pcrf
                    .lock()
                    .expect("PCRF lock is never poisoned")
                    .st(&r.session_id);
                let a = Sta {
                    session_id: r.session_id,
                    origin_host: Cow::Borrowed(&self.origin_host),
                    origin_realm: Cow::Borrowed(&self.origin_realm),
                    // STA carries Result-Code only (TS 29.214 §5.6.5)
                    result_code: Some(outcome.code()),
                    ..Default::default()
                };
                Some(a.encode_answer(h))
            }
            _ => reject(),
        }
    }
}

/// Why an Rx exchange failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RxFailure {
    /// The PCRF refused (its result).
    #[error("PCRF answered {0:?}")]
    Refused(Outcome),
    /// No usable answer.
    #[error("PCRF unreachable: {0}")]
    Unreachable(String),
}

/// What a P-CSCF asks the PCRF.
pub trait RxClient: Send + Sync + 'static {
    /// Sends an AAR for `session_id` (a new one when `update` is false).
    fn aar(
        &self,
        session_id: &str,
        update: bool,
        media: Vec<MediaComponentDescription<'static>>,
        icid: Option<&str>,
    ) -> impl Future<Output = Result<(), RxFailure>> + Send;
    /// Sends an STR for `session_id`.
    fn str(&self, session_id: &str) -> impl Future<Output = Result<(), RxFailure>> + Send;
    /// A new Session-Id.
    fn new_session_id(&self) -> String;
}

/// An [`RxClient`] speaking Diameter through a [`DiameterRequester`].
#[derive(Debug)]
pub struct DiameterRx<R> {
    requester: R,
    origin_host: String,
    origin_realm: String,
    destination_realm: String,
    next: AtomicU64,
}

impl<R: DiameterRequester> DiameterRx<R> {
    /// A client identifying itself as `origin_host`/`origin_realm`, asking the PCRF of
    /// `destination_realm`.
    pub fn new(
        requester: R,
        origin_host: &str,
        origin_realm: &str,
        destination_realm: &str,
    ) -> Self {
        DiameterRx {
            requester,
            origin_host: origin_host.to_string(),
            origin_realm: origin_realm.to_string(),
            destination_realm: destination_realm.to_string(),
            next: AtomicU64::new(1),
        }
    }

    async fn send(&self, req: Vec<u8>) -> Result<Outcome, RxFailure> {
        let raw = self
            .requester
            .request(req)
            .await
            .map_err(RxFailure::Unreachable)?;
        let m = Message::parse(&raw).map_err(|e| RxFailure::Unreachable(e.to_string()))?;
        m.outcome()
            .ok_or_else(|| RxFailure::Unreachable("answer without a result".into()))
    }
}

impl<R: DiameterRequester> RxClient for DiameterRx<R> {
    async fn aar(
        &self,
        session_id: &str,
        update: bool,
        media: Vec<MediaComponentDescription<'static>>,
        icid: Option<&str>,
    ) -> Result<(), RxFailure> {
        // borrowed text: the request is encoded right here
        let req = Aar {
            session_id: Cow::Borrowed(session_id),
            auth_application_id: app::RX,
            origin_host: Cow::Borrowed(&self.origin_host),
            origin_realm: Cow::Borrowed(&self.origin_realm),
            destination_realm: Cow::Borrowed(&self.destination_realm),
            media_component_description: media.into(),
            af_charging_identifier: icid.map(|i| Cow::Borrowed(i.as_bytes())),
            specific_action: if update {
                Default::default()
            } else {
                vec![
                    SpecificAction::IndicationOfLossOfBearer,
                    SpecificAction::IndicationOfReleaseOfBearer,
                ]
                .into()
            },
            rx_request_type: Some(if update {
                RxRequestType::UpdateRequest
            } else {
                RxRequestType::InitialRequest
            }),
            ..Default::default()
        };
        let o = self.send(req.encode(0, 0)).await?;
        if o.is_success() {
            Ok(())
        } else {
            Err(RxFailure::Refused(o))
        }
    }

    async fn str(&self, session_id: &str) -> Result<(), RxFailure> {
        let req = Str {
            session_id: Cow::Borrowed(session_id),
            origin_host: Cow::Borrowed(&self.origin_host),
            origin_realm: Cow::Borrowed(&self.origin_realm),
            destination_realm: Cow::Borrowed(&self.destination_realm),
            auth_application_id: app::RX,
            termination_cause: TerminationCause::DiameterLogout,
            ..Default::default()
        };
        let o = self.send(req.encode(0, 0)).await?;
        if o.is_success() {
            Ok(())
        } else {
            Err(RxFailure::Refused(o))
        }
    }

    fn new_session_id(&self) -> String {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        format!("{};rx;{n}", self.origin_host)
    }
}

/// What a PCRF request means for the P-CSCF.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PcrfEvent {
    /// ASR, or RAR with loss/release of bearer: release the call (BYE both ways, then STR) —
    /// for a RAR only when the bearers of all its media are gone (TS 24.229 §5.2.8.1.2).
    Release {
        /// The Rx Session-Id.
        session_id: String,
        /// The Media-Component-Numbers whose bearers are lost (a RAR's Flows; empty: all of
        /// them, as for an ASR).
        flows: Vec<u32>,
        /// It was an ASR (the AF must end the session with an STR whatever its media).
        abort: bool,
    },
    /// Another RAR (informational).
    Notified {
        /// The Rx Session-Id.
        session_id: String,
    },
}

/// The P-CSCF's answer to an ASR or RAR from the PCRF, and what it asks for.
pub fn answer_pcrf_request(request: &[u8], origin: &Origin<'_>) -> Option<(Vec<u8>, PcrfEvent)> {
    if let Ok(Some(err)) = ims_diameter::answer::reject(request, &[app::RX], origin) {
        return Some((
            err,
            PcrfEvent::Notified {
                session_id: String::new(),
            },
        ));
    }
    let msg = Message::parse(request).ok()?;
    let h = msg.header();
    match msg.code() {
        command::ABORT_SESSION => {
            let r = Asr::decode(&msg).ok()?;
            let a = Asa {
                session_id: r.session_id.to_string().into(),
                origin_host: origin.host.to_string().into(),
                origin_realm: origin.realm.to_string().into(),
                result_code: Some(Outcome::SUCCESS.code()),
                ..Default::default()
            };
            Some((
                a.encode_answer(h),
                PcrfEvent::Release {
                    session_id: r.session_id.into_owned(),
                    flows: Vec::new(),
                    abort: true,
                },
            ))
        }
        command::RE_AUTH => {
            let r = Rar::decode(&msg).ok()?;
            let mut a = Raa {
                session_id: r.session_id.to_string().into(),
                origin_host: origin.host.to_string().into(),
                origin_realm: origin.realm.to_string().into(),
                ..Default::default()
            };
            a.set_outcome(Outcome::SUCCESS);
            let release = r.specific_action.iter().any(|s| {
                matches!(
                    s,
                    SpecificAction::IndicationOfLossOfBearer
                        | SpecificAction::IndicationOfReleaseOfBearer
                )
            });
            let flows = r.flows.iter().map(|f| f.media_component_number).collect();
            let session_id = r.session_id.into_owned();
            Some((
                a.encode_answer(h),
                if release {
                    PcrfEvent::Release {
                        session_id,
                        flows,
                        abort: false,
                    }
                } else {
                    PcrfEvent::Notified { session_id }
                },
            ))
        }
        _ => None,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::rx_media::{media_components, OfferFrom};
    use crate::test_util::block_on;

    struct Loopback(PcrfRxServer);

    impl DiameterRequester for Loopback {
        async fn request(&self, request: Vec<u8>) -> Result<Vec<u8>, String> {
            self.0.answer(&request).ok_or_else(|| "no answer".into())
        }
    }

    const UE: &str = "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n\
m=audio 40000 RTP/AVP 116\r\nb=AS:49\r\na=rtpmap:116 AMR-WB/16000/1\r\n";
    const REMOTE: &str = "v=0\r\no=- 2 1 IN IP4 10.0.0.2\r\ns=-\r\nc=IN IP4 10.0.0.2\r\nt=0 0\r\n\
m=audio 50000 RTP/AVP 116\r\nb=AS:49\r\na=rtpmap:116 AMR-WB/16000/1\r\n";

    /// A PCRF, its Rx server, an AF (`pcscf.ims.example.org`) talking to it in process and the
    /// media components of the `UE`/`REMOTE` offer/answer.
    fn af_and_pcrf() -> (
        Arc<Mutex<Pcrf>>,
        PcrfRxServer,
        DiameterRx<Loopback>,
        Vec<MediaComponentDescription<'static>>,
    ) {
        let pcrf = Arc::new(Mutex::new(Pcrf::new(None)));
        let server = PcrfRxServer::new("pcrf.ims.example.org", "ims.example.org", pcrf.clone());
        let rx = DiameterRx::new(
            Loopback(server.clone()),
            "pcscf.ims.example.org",
            "ims.example.org",
            "ims.example.org",
        );
        let ue = ims_sdp::Session::parse_str(UE).unwrap();
        let remote = ims_sdp::Session::parse_str(REMOTE).unwrap();
        let media = media_components(&ue, &remote, OfferFrom::Ue);
        (pcrf, server, rx, media)
    }

    #[test]
    fn aar_update_str_and_loss_of_bearer() {
        let (pcrf, server, rx, media) = af_and_pcrf();
        let sid = rx.new_session_id();
        block_on(rx.aar(&sid, false, media.clone(), Some("icid-1"))).unwrap();
        {
            let p = pcrf.lock().unwrap();
            let s = p.session(&sid).unwrap();
            assert_eq!(s.media.len(), 1);
            assert_eq!(s.af_host, "pcscf.ims.example.org");
            assert_eq!(s.af_charging_identifier.as_deref(), Some(&b"icid-1"[..]));
        }
        block_on(rx.aar(&sid, true, media.clone(), None)).unwrap();
        // an update for a session the PCRF does not know
        assert_eq!(
            block_on(rx.aar("nope", true, media, None)),
            Err(RxFailure::Refused(UNKNOWN_SESSION_ID))
        );
        // the bearer is lost: a RAR (the P-CSCF subscribed), answered with RAA and a release
        let rar = pcrf
            .lock()
            .unwrap()
            .bearer_lost(&sid, &server.origin())
            .unwrap();
        assert!(matches!(rar, PcrfRequest::Rar(_)));
        let origin = Origin {
            host: "pcscf.ims.example.org",
            realm: "ims.example.org",
            state_id: None,
        };
        let (raa, ev) = answer_pcrf_request(&rar.encode(5, 6), &origin).unwrap();
        assert_eq!(
            ev,
            PcrfEvent::Release {
                session_id: sid.clone(),
                flows: vec![],
                abort: false,
            }
        );
        let raa = Message::parse(&raa).unwrap();
        assert_eq!(
            (raa.hop_by_hop(), raa.outcome()),
            (5, Some(Outcome::SUCCESS))
        );
        // a RAR naming one media component's bearer, and an ASR
        let p = pcrf.lock().unwrap();
        let rar = p
            .reauth(
                &sid,
                &server.origin(),
                &[SpecificAction::IndicationOfLossOfBearer],
                &[2],
            )
            .unwrap();
        let (_, ev) = answer_pcrf_request(&rar.encode(7, 8), &origin).unwrap();
        assert_eq!(
            ev,
            PcrfEvent::Release {
                session_id: sid.clone(),
                flows: vec![2],
                abort: false,
            }
        );
        let rar = p
            .reauth(
                &sid,
                &server.origin(),
                &[SpecificAction::ChargingCorrelationExchange],
                &[],
            )
            .unwrap();
        let (_, ev) = answer_pcrf_request(&rar.encode(9, 10), &origin).unwrap();
        assert_eq!(
            ev,
            PcrfEvent::Notified {
                session_id: sid.clone()
            }
        );
        let asr = p
            .abort(
                &sid,
                &server.origin(),
                AbortCause::InsufficientServerResources,
            )
            .unwrap();
        assert_eq!(p.session_ids(), std::slice::from_ref(&sid));
        assert!(p
            .abort("nope", &server.origin(), AbortCause::BearerReleased)
            .is_none());
        drop(p);
        let (asa, ev) = answer_pcrf_request(&asr.encode(11, 12), &origin).unwrap();
        assert_eq!(
            ev,
            PcrfEvent::Release {
                session_id: sid.clone(),
                flows: vec![],
                abort: true,
            }
        );
        assert_eq!(
            Message::parse(&asa).unwrap().outcome(),
            Some(Outcome::SUCCESS)
        );
        block_on(rx.str(&sid)).unwrap();
        assert!(pcrf.lock().unwrap().is_empty());
        assert_eq!(
            block_on(rx.str(&sid)),
            Err(RxFailure::Refused(UNKNOWN_SESSION_ID))
        );
    }

    /// A fake AF node: answers an ASR with ASA 2001 (or not at all), a RAR with `raa` — or
    /// never, as Kamailio 5.6.3's `ims_qos` (the requester then reports the Diameter node's
    /// request timeout). Records the command codes it received.
    pub(crate) struct FakeAf {
        pub(crate) raa: Option<u32>,
        pub(crate) answers_asr: bool,
        pub(crate) seen: Arc<Mutex<Vec<u32>>>,
    }

    impl FakeAf {
        pub(crate) fn new(raa: Option<u32>, answers_asr: bool) -> FakeAf {
            FakeAf {
                raa,
                answers_asr,
                seen: Arc::new(Mutex::new(Vec::new())),
            }
        }

        pub(crate) fn seen(&self) -> Vec<u32> {
            self.seen.lock().unwrap().clone()
        }
    }

    impl DiameterRequester for FakeAf {
        async fn request(&self, request: Vec<u8>) -> Result<Vec<u8>, String> {
            let m = Message::parse(&request).map_err(|e| e.to_string())?;
            self.seen.lock().unwrap().push(m.code());
            let origin = Origin {
                host: "pcscf.ims.example.org",
                realm: "ims.example.org",
                state_id: None,
            };
            match m.code() {
                command::RE_AUTH => {
                    let code = self.raa.ok_or("request timed out")?;
                    let r = Rar::decode(&m).map_err(|e| e.to_string())?;
                    let mut a = Raa {
                        session_id: r.session_id.into_owned().into(),
                        origin_host: origin.host.to_string().into(),
                        origin_realm: origin.realm.to_string().into(),
                        ..Default::default()
                    };
                    a.set_outcome(Outcome::from_result_code(code));
                    Ok(a.encode_answer(m.header()))
                }
                command::ABORT_SESSION if self.answers_asr => {
                    answer_pcrf_request(&request, &origin)
                        .map(|(a, _)| a)
                        .ok_or_else(|| "undecodable ASR".into())
                }
                _ => Err("request timed out".into()),
            }
        }
    }

    /// A PCRF holding one session `s1` of the AF, subscribed to loss/release of bearer.
    fn pcrf_with_session() -> (Arc<Mutex<Pcrf>>, PcrfRxServer) {
        let (pcrf, server, rx, media) = af_and_pcrf();
        block_on(rx.aar("s1", false, media, None)).unwrap();
        (pcrf, server)
    }

    fn lost(pcrf: &Mutex<Pcrf>, server: &PcrfRxServer) -> PcrfRequest {
        let req = pcrf
            .lock()
            .unwrap()
            .bearer_lost("s1", &server.origin())
            .unwrap();
        assert!(matches!(req, PcrfRequest::Rar(_)), "the AF subscribed");
        req
    }

    /// The loss of `s1`'s bearer reported to `af` ([`report_bearer_event`] with [`lost`]'s RAR).
    fn report_loss(pcrf: &Arc<Mutex<Pcrf>>, server: &PcrfRxServer, af: &FakeAf) -> BearerReport {
        block_on(report_bearer_event(
            pcrf,
            af,
            &server.origin(),
            lost(pcrf, server),
        ))
    }

    #[test]
    fn an_unanswered_rar_is_followed_by_an_asr() {
        let (pcrf, server) = pcrf_with_session();
        // Kamailio 5.6.3: no RAA ever; the ASR is answered 2001
        let af = FakeAf::new(None, true);
        let report = report_loss(&pcrf, &server, &af);
        assert_eq!(
            report,
            BearerReport::Aborted {
                rar: Some(RarFailure::NoAnswer("request timed out".into())),
                asa: Ok(2001),
                removed: false,
            }
        );
        assert_eq!(af.seen(), [command::RE_AUTH, command::ABORT_SESSION]);
        // the session stays until the AF's STR (TS 29.214 §4.4.4)
        assert_eq!(pcrf.lock().unwrap().session_ids(), ["s1"]);
        assert_eq!(pcrf.lock().unwrap().st("s1"), Outcome::SUCCESS);
    }

    #[test]
    fn an_asr_follows_a_refused_rar_and_an_unanswered_asr_removes_the_session() {
        for raa in [3001, 5012, 4001] {
            let (pcrf, server) = pcrf_with_session();
            let af = FakeAf::new(Some(raa), false);
            let report = report_loss(&pcrf, &server, &af);
            assert_eq!(
                report,
                BearerReport::Aborted {
                    rar: Some(RarFailure::Refused(raa)),
                    asa: Err("request timed out".into()),
                    removed: true,
                },
                "RAA {raa}"
            );
            assert_eq!(af.seen(), [command::RE_AUTH, command::ABORT_SESSION]);
            assert!(pcrf.lock().unwrap().is_empty(), "RAA {raa}");
        }
    }

    #[test]
    fn an_answered_rar_or_an_unknown_session_sends_no_asr() {
        let (pcrf, server) = pcrf_with_session();
        let af = FakeAf::new(Some(2001), true);
        let report = report_loss(&pcrf, &server, &af);
        assert_eq!(report, BearerReport::Reauthorized(2001));
        assert_eq!(af.seen(), [command::RE_AUTH]);
        assert_eq!(pcrf.lock().unwrap().len(), 1);
        // the AF does not know the session: forgotten, no ASR
        let af = FakeAf::new(Some(5002), true);
        let report = report_loss(&pcrf, &server, &af);
        assert_eq!(report, BearerReport::Removed);
        assert_eq!(af.seen(), [command::RE_AUTH]);
        assert!(pcrf.lock().unwrap().is_empty());
        // nothing held: nothing sent
        let asr = Asr {
            session_id: "s1".into(),
            ..Default::default()
        };
        let report = block_on(report_bearer_event(
            &pcrf,
            &af,
            &server.origin(),
            PcrfRequest::Asr(Box::new(asr)),
        ));
        assert_eq!(report, BearerReport::UnknownSession);
        assert_eq!(af.seen(), [command::RE_AUTH]);
    }

    #[test]
    fn without_a_subscription_the_asr_is_the_only_request() {
        let (pcrf, server) = pcrf_with_session();
        pcrf.lock()
            .unwrap()
            .sessions
            .get_mut("s1")
            .unwrap()
            .specific_actions
            .clear();
        let req = pcrf
            .lock()
            .unwrap()
            .bearer_lost("s1", &server.origin())
            .unwrap();
        let af = FakeAf::new(None, true);
        let report = block_on(report_bearer_event(&pcrf, &af, &server.origin(), req));
        assert_eq!(
            report,
            BearerReport::Aborted {
                rar: None,
                asa: Ok(2001),
                removed: false,
            }
        );
        assert_eq!(af.seen(), [command::ABORT_SESSION]);
    }

    #[test]
    fn faulty_requests_get_the_protocol_error_answer() {
        let pcrf = Arc::new(Mutex::new(Pcrf::new(None)));
        let server = PcrfRxServer::new("pcrf", "r", pcrf);
        let aar = Aar {
            session_id: "pcscf;1;2".into(),
            auth_application_id: app::RX,
            origin_host: "pcscf".into(),
            origin_realm: "r".into(),
            destination_realm: "r".into(),
            ..Default::default()
        }
        .encode(1, 2);
        let code_of = |answer: Option<Vec<u8>>| {
            let a = answer.expect("an answer");
            let m = Message::parse(&a).expect("a well-formed answer");
            (m.is_request(), m.outcome().map(|o| o.code()))
        };
        // decoded once and answered 2001
        assert_eq!(code_of(server.answer(&aar)), (false, Some(2001)));
        // a second Session-Id, after the fixed position the ABNF gives it: the AAR's typed
        // decode fails, 5008 DIAMETER_AVP_NOT_ALLOWED
        let mut twice = aar.clone();
        twice.extend_from_slice(&[0, 0, 1, 7, 0x40, 0, 0, 11, b'd', b'u', b'p', 0]);
        let len = (twice.len() as u32).to_be_bytes();
        twice[1..4].copy_from_slice(&len[1..]);
        assert_eq!(code_of(server.answer(&twice)), (false, Some(5008)));
        // an unknown Rx command: 3001 DIAMETER_COMMAND_UNSUPPORTED
        let mut unknown = aar.clone();
        unknown[5..8].copy_from_slice(&[0, 3, 0xe7]);
        assert_eq!(code_of(server.answer(&unknown)), (false, Some(3001)));
        // the AAR under the Cx application id: 3007 DIAMETER_APPLICATION_UNSUPPORTED
        let mut cx = aar.clone();
        cx[8..12].copy_from_slice(&app::CX.to_be_bytes());
        assert_eq!(code_of(server.answer(&cx)), (false, Some(3007)));
        // an answer is not answered
        let mut answer = aar;
        answer[4] &= !0x80;
        assert_eq!(server.answer(&answer), None);
    }

    #[test]
    fn bandwidth_policy_and_invalid_flows() {
        let pcrf = Arc::new(Mutex::new(Pcrf::new(Some(64_000))));
        let server = PcrfRxServer::new("pcrf", "r", pcrf);
        let rx = DiameterRx::new(Loopback(server), "pcscf", "r", "r");
        let ue = ims_sdp::Session::parse_str(UE).unwrap();
        let remote = ims_sdp::Session::parse_str(REMOTE).unwrap();
        let mut media = media_components(&ue, &remote, OfferFrom::Ue);
        assert_eq!(
            block_on(rx.aar("s1", false, media.clone(), None)),
            Err(RxFailure::Refused(REQUESTED_SERVICE_NOT_AUTHORIZED))
        );
        media[0].media_sub_component[0].flow_description[0] = "allow everything".into();
        assert_eq!(
            block_on(rx.aar("s2", false, media, None)),
            Err(RxFailure::Refused(INVALID_SERVICE_INFORMATION))
        );
    }
}
