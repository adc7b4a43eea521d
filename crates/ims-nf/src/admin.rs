//! The embedded HSS's administration interface: provision subscribers and start the
//! HSS-initiated Cx procedures — network de-registration (RTR, TS 29.228 §6.1.3) and profile
//! update (PPR, §6.1.4) — towards the S-CSCF that serves the user, over real Diameter.
//!
//! [`HssAdmin`] is the typed API; [`serve_http`] puts a minimal HTTP/1.1 + JSON front on it
//! (one request per connection, bounded head and body):
//!
//! | request | body | does |
//! |---|---|---|
//! | `POST /subscribers` | [`subscriber_from_json`] | adds or replaces a subscriber |
//! | `GET /subscribers/<impi>` | — | registration state and S-CSCF |
//! | `POST /rtr` | `{"impi", "reason"?: 0‥3, "info"?, "impus"?}` | RTR, answers the RTA's result |
//! | `POST /ppr` | `{"impi", "ifc_xml"? \| "user_data"?, "charging"?: {"ecf","ecf2","ccf","ccf2"}}` | PPR |
//! | `GET /pcrf/sessions` | — | the embedded PCRF's Rx sessions |
//! | `POST /pcrf/asr` | `{"session_id"?, "cause"?: 0‥3}` | ASR to the P-CSCF (every session when none is named) |
//! | `POST /pcrf/rar` | `{"session_id"?, "action"?: "loss_of_bearer" \| "release_of_bearer" \| n, "flows"?: [n]}` | RAR with Specific-Action (default loss of bearer) for the media components `flows` (default all) |
//!
//! The `/pcrf/` endpoints exist when the PCRF is embedded too ([`HssAdmin::set_pcrf`]); they
//! answer `{"sessions": [{"session_id", "result"}]}` with the ASA/RAA result of each. A RAR
//! reporting the loss or release of every bearer of a session (no `flows`) falls back to an
//! ASR when the AF does not answer it or answers an error
//! ([`report_bearer_event`], [`HssAdmin::pcrf_bearer_report`]):
//! such an entry carries `"result"` (the RAA's code, `null` without an RAA), `"rar_error"` and
//! `"asr": {"result", "error"?, "removed"}`.
//!
//! Answers are JSON: `{"result": 2001, ...}` (the RTA/PPA Result-Code or Experimental-Result-Code)
//! or `{"error": "..."}` with 400 (bad request), 404 (unknown subscriber), 409 (not registered
//! at any S-CSCF) or 502 (the S-CSCF did not answer).
//!
//! ```text
//! curl -d '{"impi":"001010000000001@ims.example.org","reason":0,"info":"bye"}' http://127.0.0.1:8080/rtr
//! ```

use crate::cx::LocalHss;
use crate::cx_wire::{answer_code, ChargingAddresses, DiameterRequester, HssInitiated};
use crate::hss::{AkaCredentials, Credentials, RegistrationState, Subscriber};
use crate::pcrf::{report_bearer_event, BearerReport, Pcrf, PcrfRequest, RarFailure};
use crate::scscf::DeregistrationReason;
use crate::subscription::{ImsSubscription, PublicIdentity, ServiceProfile};
use ims_auth::milenage::OperatorKey;
use ims_diameter::rx::{AbortCause, SpecificAction};
use ims_diameter::{Command, Origin};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Why an admin operation failed (with the HTTP status [`serve_http`] answers).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AdminError {
    /// 400: the request is malformed or incomplete.
    #[error("bad request: {0}")]
    BadRequest(String),
    /// 404: no such subscriber.
    #[error("unknown subscriber {0}")]
    UnknownSubscriber(String),
    /// 409: the subscriber is not registered (no S-CSCF to send to).
    #[error("{0} is not registered")]
    NotRegistered(String),
    /// 502: the S-CSCF did not answer (or answered garbage).
    #[error("S-CSCF did not answer: {0}")]
    NoAnswer(String),
}

impl AdminError {
    /// The HTTP status for this error.
    pub fn status(&self) -> u16 {
        match self {
            AdminError::BadRequest(_) => 400,
            AdminError::UnknownSubscriber(_) => 404,
            AdminError::NotRegistered(_) => 409,
            AdminError::NoAnswer(_) => 502,
        }
    }
}

/// What an RTR or PPR achieved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pushed {
    /// The S-CSCF's Server-Name (SIP URI) the request was for.
    pub server_name: String,
    /// Its Diameter host.
    pub destination_host: String,
    /// The answer's Result-Code or Experimental-Result-Code (2001 on success).
    pub result: u32,
}

/// The administration API of an embedded HSS: provisioning, RTR and PPR.
pub struct HssAdmin<R> {
    pcrf: std::sync::OnceLock<PcrfControl<R>>,
    hss: LocalHss,
    requester: R,
    requests: HssInitiated,
    realm: String,
    scscf_hosts: HashMap<String, String>,
    default_scscf_host: String,
    /// More embedded HSSs (behind an SLF): RTR and PPR for their users leave from them.
    others: std::sync::Mutex<Vec<Arc<OtherHss<R>>>>,
    /// The start time (Unix seconds) in the high 32 bits of RTR/PPR Session-Ids.
    started: u64,
}

/// One more HSS the interface administers.
struct OtherHss<R> {
    hss: LocalHss,
    requester: R,
    requests: HssInitiated,
}

impl<R> std::fmt::Debug for HssAdmin<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HssAdmin")
            .field("realm", &self.realm)
            .field("default_scscf_host", &self.default_scscf_host)
            .finish_non_exhaustive()
    }
}

impl<R: DiameterRequester> HssAdmin<R> {
    /// Administers `hss`; HSS-initiated requests leave through `requester` (the HSS's Diameter
    /// node) as `origin_host` in `realm`, to `default_scscf_host` unless
    /// [`HssAdmin::with_scscf`] maps the S-CSCF's Server-Name to another host.
    pub fn new(
        hss: LocalHss,
        requester: R,
        origin_host: &str,
        realm: &str,
        default_scscf_host: &str,
    ) -> HssAdmin<R> {
        HssAdmin {
            pcrf: std::sync::OnceLock::new(),
            hss,
            requester,
            requests: HssInitiated::new(origin_host, realm),
            realm: realm.to_string(),
            scscf_hosts: HashMap::new(),
            default_scscf_host: default_scscf_host.to_string(),
            others: std::sync::Mutex::new(Vec::new()),
            started: 0,
        }
    }

    /// Puts `unix_secs` (the process's start time) in the high 32 bits of the Session-Ids of
    /// the RTRs and PPRs it sends (RFC 6733 §8.8), so a restarted HSS never reuses one.
    pub fn starting_at(mut self, unix_secs: u64) -> Self {
        self.requests = self.requests.starting_at(unix_secs);
        self.started = unix_secs;
        self
    }

    /// Administers one more HSS (several behind an SLF): de-registration, profile pushes, state
    /// and iFC changes of its users go to it, and its RTRs and PPRs leave through `requester`
    /// as `origin_host`. New subscribers still go to the first HSS.
    pub fn add_hss(&self, hss: LocalHss, requester: R, origin_host: &str) {
        self.others
            .lock()
            .expect("admin lock is never poisoned")
            .push(Arc::new(OtherHss {
                hss,
                requester,
                requests: HssInitiated::new(origin_host, &self.realm).starting_at(self.started),
            }));
    }

    /// The other HSS holding `impi`, if it is not the first one's.
    fn other_for(&self, impi: &str) -> Option<Arc<OtherHss<R>>> {
        let known = |h: &LocalHss| {
            h.hss()
                .lock()
                .expect("HSS lock is never poisoned")
                .subscriber(impi)
                .is_some()
        };
        if known(&self.hss) {
            return None;
        }
        self.others
            .lock()
            .expect("admin lock is never poisoned")
            .iter()
            .find(|o| known(&o.hss))
            .cloned()
    }

    /// Adds the embedded PCRF to the interface (`/pcrf/*`): its requests leave through
    /// `requester` (the PCRF's Diameter node) as `origin_host` in `realm`. Only the first call
    /// counts.
    pub fn set_pcrf(
        &self,
        pcrf: Arc<std::sync::Mutex<Pcrf>>,
        requester: R,
        origin_host: &str,
        realm: &str,
    ) {
        let _ = self.pcrf.set(PcrfControl {
            pcrf,
            requester,
            origin_host: origin_host.to_string(),
            realm: realm.to_string(),
        });
    }

    fn pcrf(&self) -> Result<&PcrfControl<R>, AdminError> {
        self.pcrf
            .get()
            .ok_or_else(|| AdminError::BadRequest("no embedded PCRF here".into()))
    }

    /// The embedded PCRF's Rx sessions.
    pub fn pcrf_sessions(&self) -> Result<Vec<String>, AdminError> {
        Ok(self
            .pcrf()?
            .pcrf
            .lock()
            .expect("PCRF lock is never poisoned")
            .session_ids())
    }

    fn pcrf_targets(&self, session: Option<&str>) -> Result<Vec<String>, AdminError> {
        let all = self.pcrf_sessions()?;
        match session {
            Some(s) if all.iter().any(|a| a == s) => Ok(vec![s.to_string()]),
            Some(s) => Err(AdminError::UnknownSubscriber(format!("Rx session {s}"))),
            None => Ok(all),
        }
    }

    /// Sends an ASR for `session` (every session when `None`) to the AF that opened it, and
    /// returns each ASA's result.
    pub async fn pcrf_asr(
        &self,
        session: Option<&str>,
        cause: AbortCause,
    ) -> Result<Vec<(String, u32)>, AdminError> {
        let c = self.pcrf()?;
        let mut out = Vec::new();
        for (sid, req) in c.requests(self.pcrf_targets(session)?, |p, sid, origin| {
            p.abort(sid, origin, cause).map(|a| a.encode(0, 0))
        }) {
            out.push((sid, c.send(req).await?));
        }
        Ok(out)
    }

    /// Sends a RAR with `actions` for the media components `flows` (all when empty) of
    /// `session` (every session when `None`), and returns each RAA's result.
    pub async fn pcrf_rar(
        &self,
        session: Option<&str>,
        actions: &[SpecificAction],
        flows: &[u32],
    ) -> Result<Vec<(String, u32)>, AdminError> {
        let c = self.pcrf()?;
        let mut out = Vec::new();
        for (sid, req) in c.requests(self.pcrf_targets(session)?, |p, sid, origin| {
            p.reauth(sid, origin, actions, flows)
                .map(|a| a.encode(0, 0))
        }) {
            out.push((sid, c.send(req).await?));
        }
        Ok(out)
    }

    /// Reports the loss or release (`action`) of every bearer of `session` (every session when
    /// `None`) with a RAR, falling back to an ASR when the AF does not answer it or answers an
    /// error ([`report_bearer_event`], TS 29.214 §4.4.4,
    /// §4.4.6.2). Returns each session's report.
    pub async fn pcrf_bearer_report(
        &self,
        session: Option<&str>,
        action: SpecificAction,
    ) -> Result<Vec<(String, BearerReport)>, AdminError> {
        let c = self.pcrf()?;
        let mut out = Vec::new();
        for (sid, req) in c.requests(self.pcrf_targets(session)?, |p, sid, origin| {
            p.reauth(sid, origin, &[action], &[])
        }) {
            let report = report_bearer_event(
                &c.pcrf,
                &c.requester,
                &c.origin(),
                PcrfRequest::Rar(Box::new(req)),
            )
            .await;
            out.push((sid, report));
        }
        Ok(out)
    }

    /// The Diameter host of the S-CSCF whose Server-Name is `server_name`.
    pub fn with_scscf(mut self, server_name: &str, diameter_host: &str) -> HssAdmin<R> {
        self.scscf_hosts
            .insert(server_name.to_string(), diameter_host.to_string());
        self
    }

    fn host_of(&self, server_name: &str) -> String {
        self.scscf_hosts
            .get(server_name)
            .cloned()
            .unwrap_or_else(|| self.default_scscf_host.clone())
    }

    /// Adds (or replaces) a subscriber.
    pub fn add_subscriber(&self, s: Subscriber) {
        self.hss
            .hss()
            .lock()
            .expect("HSS lock is never poisoned")
            .add_subscriber(s);
    }

    /// The registration state of `impi` and its S-CSCF.
    pub fn state(&self, impi: &str) -> Option<(RegistrationState, Option<String>)> {
        let other = self.other_for(impi);
        let local = other.as_ref().map_or(&self.hss, |o| &o.hss);
        let hss = local.hss().lock().expect("HSS lock is never poisoned");
        hss.registration(impi)
            .map(|(st, name)| (st, name.map(str::to_string)))
    }

    async fn send(
        &self,
        other: Option<&OtherHss<R>>,
        server_name: String,
        host: String,
        req: Vec<u8>,
    ) -> Result<Pushed, AdminError> {
        let requester = other.map_or(&self.requester, |o| &o.requester);
        let answer = requester.request(req).await.map_err(AdminError::NoAnswer)?;
        let result = answer_code(&answer)
            .ok_or_else(|| AdminError::NoAnswer("answer without a result code".into()))?;
        Ok(Pushed {
            server_name,
            destination_host: host,
            result,
        })
    }

    /// Administrative de-registration: the HSS forgets the registration and sends an RTR with
    /// `reason` for `impus` (all of the IMPI's when empty) to the S-CSCF that served it.
    pub async fn deregister(
        &self,
        impi: &str,
        impus: &[String],
        reason: DeregistrationReason,
    ) -> Result<Pushed, AdminError> {
        let other = self.other_for(impi);
        let (server, all) = {
            let local = other.as_ref().map_or(&self.hss, |o| &o.hss);
            let mut hss = local.hss().lock().expect("HSS lock is never poisoned");
            if hss.subscriber(impi).is_none() {
                return Err(AdminError::UnknownSubscriber(impi.to_string()));
            }
            hss.deregister(impi)
                .ok_or_else(|| AdminError::NotRegistered(impi.to_string()))?
        };
        let impus = if impus.is_empty() { &all } else { impus };
        let host = self.host_of(&server);
        let requests = other.as_ref().map_or(&self.requests, |o| &o.requests);
        let req = requests.rtr(&host, &self.realm, impi, impus, &reason);
        self.send(other.as_deref(), server, host, req).await
    }

    /// Profile update: replaces the subscriber's profile (when `subscription` is given) and
    /// pushes it and/or `charging` to the S-CSCF with a PPR.
    pub async fn push_profile(
        &self,
        impi: &str,
        subscription: Option<ImsSubscription>,
        charging: Option<ChargingAddresses>,
    ) -> Result<Pushed, AdminError> {
        let other = self.other_for(impi);
        let (server, xml) = {
            let local = other.as_ref().map_or(&self.hss, |o| &o.hss);
            let mut hss = local.hss().lock().expect("HSS lock is never poisoned");
            let Some(current) = hss.subscriber(impi).map(|s| s.subscription.clone()) else {
                return Err(AdminError::UnknownSubscriber(impi.to_string()));
            };
            let new = subscription.is_some();
            let (server, xml) = hss
                .update_profile(subscription.unwrap_or(current))
                .ok_or_else(|| AdminError::UnknownSubscriber(impi.to_string()))?;
            (server, new.then_some(xml))
        };
        let server = server.ok_or_else(|| AdminError::NotRegistered(impi.to_string()))?;
        if xml.is_none() && charging.is_none() {
            return Err(AdminError::BadRequest(
                "nothing to push: give a profile or charging information".into(),
            ));
        }
        let host = self.host_of(&server);
        let requests = other.as_ref().map_or(&self.requests, |o| &o.requests);
        let req = requests.ppr(&host, &self.realm, impi, xml.as_deref(), charging.as_ref());
        self.send(other.as_deref(), server, host, req).await
    }

    /// The subscription of `impi` with its service profile's iFCs replaced by `ifc_xml` (one or
    /// more `<InitialFilterCriteria>` elements, TS 29.228 Annex E).
    pub fn with_ifcs(&self, impi: &str, ifc_xml: &str) -> Result<ImsSubscription, AdminError> {
        let other = self.other_for(impi);
        let current = {
            let local = other.as_ref().map_or(&self.hss, |o| &o.hss);
            let hss = local.hss().lock().expect("HSS lock is never poisoned");
            hss.subscriber(impi)
                .map(|s| s.subscription.clone())
                .ok_or_else(|| AdminError::UnknownSubscriber(impi.to_string()))?
        };
        replace_ifcs(current, ifc_xml)
    }
}

/// `sub` with the iFCs of every service profile replaced by those of `ifc_xml`.
fn replace_ifcs(mut sub: ImsSubscription, ifc_xml: &str) -> Result<ImsSubscription, AdminError> {
    for sp in &mut sub.service_profiles {
        sp.initial_filter_criteria.clear();
    }
    let xml = sub.to_xml();
    let Some(at) = xml.find("</ServiceProfile>") else {
        return Err(AdminError::BadRequest(
            "subscription without a service profile".into(),
        ));
    };
    let mut with = String::with_capacity(xml.len() + ifc_xml.len());
    with.push_str(&xml[..at]);
    with.push_str(ifc_xml);
    with.push_str(&xml[at..]);
    let parsed = ImsSubscription::from_xml(with.as_bytes())
        .map_err(|e| AdminError::BadRequest(format!("ifc_xml: {e}")))?;
    // the same iFCs for every service profile
    let ifcs = parsed
        .service_profiles
        .first()
        .map(|sp| sp.initial_filter_criteria.clone())
        .unwrap_or_default();
    for sp in &mut sub.service_profiles {
        sp.initial_filter_criteria = ifcs.clone();
    }
    Ok(sub)
}

fn hex_n<const N: usize>(v: &Value, what: &str) -> Result<Option<[u8; N]>, AdminError> {
    match v.get(what) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => {
            let b = ims_auth::encoding::hex_decode(s)
                .map_err(|_| AdminError::BadRequest(format!("{what}: not hex")))?;
            <[u8; N]>::try_from(b)
                .map(Some)
                .map_err(|_| AdminError::BadRequest(format!("{what}: need {N} octets")))
        }
        Some(_) => Err(AdminError::BadRequest(format!("{what}: a hex string"))),
    }
}

fn str_of<'v>(v: &'v Value, what: &str) -> Result<Option<&'v str>, AdminError> {
    match v.get(what) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(AdminError::BadRequest(format!("{what}: a string"))),
    }
}

fn strings(v: &Value, what: &str) -> Result<Vec<String>, AdminError> {
    match v.get(what) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(a)) => a
            .iter()
            .map(|x| {
                x.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| AdminError::BadRequest(format!("{what}: strings")))
            })
            .collect(),
        Some(_) => Err(AdminError::BadRequest(format!("{what}: an array"))),
    }
}

/// A subscriber from JSON: `{"impi", "impus": [...], "barred"?: [...], "k"?: hex, "op"? | "opc"?:
/// hex, "amf"?: hex (default 8000), "sqn"?: number, "password"?, "ifc_xml"?}` (`user_data`, a
/// whole `IMSSubscription` document, replaces `impus`/`barred`/`ifc_xml`).
pub fn subscriber_from_json(v: &Value) -> Result<Subscriber, AdminError> {
    let impi = str_of(v, "impi")?
        .ok_or_else(|| AdminError::BadRequest("impi is required".into()))?
        .to_string();
    let subscription = match str_of(v, "user_data")? {
        Some(x) => {
            let s = ImsSubscription::from_xml(x.as_bytes())
                .map_err(|e| AdminError::BadRequest(format!("user_data: {e}")))?;
            if s.private_id != impi {
                return Err(AdminError::BadRequest(
                    "user_data: PrivateID differs from impi".into(),
                ));
            }
            s
        }
        None => {
            let impus = strings(v, "impus")?;
            if impus.is_empty() {
                return Err(AdminError::BadRequest("impus is required".into()));
            }
            let barred = strings(v, "barred")?;
            let sub = ImsSubscription {
                private_id: impi.clone(),
                service_profiles: vec![ServiceProfile {
                    public_identities: impus
                        .iter()
                        .map(|u| {
                            let mut p = PublicIdentity::new(u.clone());
                            p.barring_indication = barred.contains(u);
                            p
                        })
                        .collect(),
                    ..ServiceProfile::default()
                }],
            };
            match str_of(v, "ifc_xml")? {
                Some(x) => replace_ifcs(sub, x)?,
                None => sub,
            }
        }
    };
    let aka = match hex_n::<16>(v, "k")? {
        Some(k) => {
            let key = match (hex_n::<16>(v, "op")?, hex_n::<16>(v, "opc")?) {
                (Some(op), None) => OperatorKey::Op(op),
                (None, Some(opc)) => OperatorKey::Opc(opc),
                _ => return Err(AdminError::BadRequest("give op or opc with k".into())),
            };
            let amf = hex_n::<2>(v, "amf")?.unwrap_or([0x80, 0]);
            let sqn = match v.get("sqn") {
                None | Some(Value::Null) => 0,
                Some(n) => n
                    .as_u64()
                    .ok_or_else(|| AdminError::BadRequest("sqn: a number".into()))?,
            };
            Some(AkaCredentials::new(k, key, amf, sqn))
        }
        None => None,
    };
    let password = str_of(v, "password")?.map(str::to_string);
    if aka.is_none() && password.is_none() {
        return Err(AdminError::BadRequest(
            "give k (AKA) and/or password".into(),
        ));
    }
    Ok(Subscriber {
        subscription,
        credentials: Credentials { aka, password },
    })
}

fn charging_from_json(v: &Value) -> Result<Option<ChargingAddresses>, AdminError> {
    let Some(c) = v.get("charging").filter(|c| !c.is_null()) else {
        return Ok(None);
    };
    Ok(Some(ChargingAddresses {
        primary_ecf: str_of(c, "ecf")?.map(str::to_string),
        secondary_ecf: str_of(c, "ecf2")?.map(str::to_string),
        primary_ccf: str_of(c, "ccf")?.map(str::to_string),
        secondary_ccf: str_of(c, "ccf2")?.map(str::to_string),
    }))
}

fn pushed_json(p: &Pushed) -> Value {
    json!({
        "result": p.result,
        "scscf": p.server_name,
        "destination_host": p.destination_host,
    })
}

/// The embedded PCRF behind `/pcrf/*`.
struct PcrfControl<R> {
    pcrf: Arc<std::sync::Mutex<Pcrf>>,
    requester: R,
    origin_host: String,
    realm: String,
}

impl<R: DiameterRequester> PcrfControl<R> {
    /// The PCRF's Origin-Host and Origin-Realm.
    fn origin(&self) -> Origin<'_> {
        Origin {
            host: &self.origin_host,
            realm: &self.realm,
            state_id: None,
        }
    }

    /// The request `build` makes for each of the sessions `sids` it knows, built under one
    /// lock each (the requests are sent after the lock is released).
    fn requests<T>(
        &self,
        sids: Vec<String>,
        build: impl Fn(&Pcrf, &str, &Origin<'_>) -> Option<T>,
    ) -> Vec<(String, T)> {
        let origin = self.origin();
        sids.into_iter()
            .filter_map(|sid| {
                let req = build(
                    &self.pcrf.lock().expect("PCRF lock is never poisoned"),
                    &sid,
                    &origin,
                )?;
                Some((sid, req))
            })
            .collect()
    }

    async fn send(&self, req: Vec<u8>) -> Result<u32, AdminError> {
        let answer = self
            .requester
            .request(req)
            .await
            .map_err(AdminError::NoAnswer)?;
        answer_code(&answer).ok_or_else(|| AdminError::NoAnswer("answer without a result".into()))
    }
}

fn reports_json(v: Vec<(String, BearerReport)>) -> Value {
    let one = |(s, r): (String, BearerReport)| match r {
        BearerReport::Reauthorized(code) => json!({ "session_id": s, "result": code }),
        BearerReport::Aborted { rar, asa, removed } => {
            let (raa, rar_error) = match rar {
                Some(RarFailure::Refused(code)) => (json!(code), format!("RAA {code}")),
                Some(RarFailure::NoAnswer(e)) => (Value::Null, format!("no RAA: {e}")),
                None => (Value::Null, "no RAR sent".to_string()),
            };
            let asr = match asa {
                Ok(code) => json!({ "result": code, "removed": removed }),
                Err(e) => json!({ "result": Value::Null, "error": e, "removed": removed }),
            };
            json!({ "session_id": s, "result": raa, "rar_error": rar_error, "asr": asr })
        }
        BearerReport::Removed => {
            json!({ "session_id": s, "result": 5002, "removed": true })
        }
        _ => json!({ "session_id": s, "result": Value::Null, "error": "no such session" }),
    };
    json!({ "sessions": v.into_iter().map(one).collect::<Vec<_>>() })
}

fn sessions_json(v: Vec<(String, u32)>) -> Value {
    json!({
        "sessions": v
            .into_iter()
            .map(|(s, r)| json!({ "session_id": s, "result": r }))
            .collect::<Vec<_>>()
    })
}

/// Handles one admin request (method, path, JSON body) → (HTTP status, JSON answer).
pub async fn handle<R: DiameterRequester>(
    admin: &HssAdmin<R>,
    method: &str,
    path: &str,
    body: &[u8],
) -> (u16, Value) {
    match route(admin, method, path, body).await {
        Ok(v) => (200, v),
        Err(e) => (e.status(), json!({ "error": e.to_string() })),
    }
}

async fn route<R: DiameterRequester>(
    admin: &HssAdmin<R>,
    method: &str,
    path: &str,
    body: &[u8],
) -> Result<Value, AdminError> {
    let parse = || -> Result<Value, AdminError> {
        serde_json::from_slice(body).map_err(|e| AdminError::BadRequest(format!("JSON: {e}")))
    };
    match (method, path) {
        ("POST", "/subscribers") => {
            let s = subscriber_from_json(&parse()?)?;
            let impi = s.subscription.private_id.clone();
            admin.add_subscriber(s);
            Ok(json!({ "added": impi }))
        }
        ("GET", p) if p.starts_with("/subscribers/") => {
            let impi = &p["/subscribers/".len()..];
            let (st, server) = admin
                .state(impi)
                .ok_or_else(|| AdminError::UnknownSubscriber(impi.to_string()))?;
            Ok(json!({
                "impi": impi,
                "state": format!("{st:?}"),
                "scscf": server,
            }))
        }
        ("POST", "/rtr") => {
            let v = parse()?;
            let impi = str_of(&v, "impi")?
                .ok_or_else(|| AdminError::BadRequest("impi is required".into()))?;
            let code = match v.get("reason") {
                None | Some(Value::Null) => 0,
                Some(n) => n
                    .as_u64()
                    .filter(|n| *n <= 3)
                    .ok_or_else(|| AdminError::BadRequest("reason: 0..3".into()))?
                    as u32,
            };
            let reason = DeregistrationReason {
                code,
                info: str_of(&v, "info")?.map(str::to_string),
            };
            let impus = strings(&v, "impus")?;
            admin
                .deregister(impi, &impus, reason)
                .await
                .map(|p| pushed_json(&p))
        }
        ("POST", "/ppr") => {
            let v = parse()?;
            let impi = str_of(&v, "impi")?
                .ok_or_else(|| AdminError::BadRequest("impi is required".into()))?;
            let subscription = match (str_of(&v, "user_data")?, str_of(&v, "ifc_xml")?) {
                (Some(x), None) => Some(
                    ImsSubscription::from_xml(x.as_bytes())
                        .map_err(|e| AdminError::BadRequest(format!("user_data: {e}")))?,
                ),
                (None, Some(x)) => Some(admin.with_ifcs(impi, x)?),
                (None, None) => None,
                (Some(_), Some(_)) => {
                    return Err(AdminError::BadRequest(
                        "give user_data or ifc_xml, not both".into(),
                    ))
                }
            };
            if subscription.as_ref().is_some_and(|s| s.private_id != impi) {
                return Err(AdminError::BadRequest(
                    "user_data: PrivateID differs from impi".into(),
                ));
            }
            admin
                .push_profile(impi, subscription, charging_from_json(&v)?)
                .await
                .map(|p| pushed_json(&p))
        }
        ("GET", "/pcrf/sessions") => Ok(json!({ "sessions": admin.pcrf_sessions()? })),
        ("POST", "/pcrf/asr") => {
            let v = parse()?;
            let cause = match v.get("cause") {
                None | Some(Value::Null) => AbortCause::BearerReleased,
                Some(n) => AbortCause::from_i32(
                    n.as_i64()
                        .filter(|n| (0..=3).contains(n))
                        .ok_or_else(|| AdminError::BadRequest("cause: 0..3".into()))?
                        as i32,
                ),
            };
            admin
                .pcrf_asr(str_of(&v, "session_id")?, cause)
                .await
                .map(sessions_json)
        }
        ("POST", "/pcrf/rar") => {
            let v = parse()?;
            let action = match v.get("action") {
                None | Some(Value::Null) => SpecificAction::IndicationOfLossOfBearer,
                Some(Value::String(a)) if a == "loss_of_bearer" => {
                    SpecificAction::IndicationOfLossOfBearer
                }
                Some(Value::String(a)) if a == "release_of_bearer" => {
                    SpecificAction::IndicationOfReleaseOfBearer
                }
                Some(n) => SpecificAction::from_i32(
                    n.as_i64()
                        .and_then(|n| i32::try_from(n).ok())
                        .ok_or_else(|| {
                            AdminError::BadRequest(
                                "action: loss_of_bearer, release_of_bearer or a number".into(),
                            )
                        })?,
                ),
            };
            let flows = match v.get("flows") {
                None | Some(Value::Null) => Vec::new(),
                Some(Value::Array(a)) => a
                    .iter()
                    .map(|n| n.as_u64().and_then(|n| u32::try_from(n).ok()))
                    .collect::<Option<Vec<u32>>>()
                    .ok_or_else(|| AdminError::BadRequest("flows: numbers".into()))?,
                Some(_) => return Err(AdminError::BadRequest("flows: an array".into())),
            };
            let bearers_gone = matches!(
                action,
                SpecificAction::IndicationOfLossOfBearer
                    | SpecificAction::IndicationOfReleaseOfBearer
            );
            if bearers_gone && flows.is_empty() {
                // every bearer: an unanswered or refused RAR ends the session with an ASR
                admin
                    .pcrf_bearer_report(str_of(&v, "session_id")?, action)
                    .await
                    .map(reports_json)
            } else {
                admin
                    .pcrf_rar(str_of(&v, "session_id")?, &[action], &flows)
                    .await
                    .map(sessions_json)
            }
        }
        _ => Err(AdminError::BadRequest(format!(
            "no such endpoint: {method} {path}"
        ))),
    }
}

/// Largest request head and body accepted.
const MAX_HEAD: usize = 16 * 1024;
const MAX_BODY: usize = 1024 * 1024;

fn reason_phrase(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        409 => "Conflict",
        413 => "Payload Too Large",
        502 => "Bad Gateway",
        _ => "Error",
    }
}

/// Reads one HTTP/1.1 request: (method, path, body), or the status to answer.
async fn read_request(s: &mut TcpStream) -> Result<(String, String, Vec<u8>), u16> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        if buf.len() > MAX_HEAD {
            return Err(413);
        }
        let n = s.read(&mut chunk).await.map_err(|_| 400u16)?;
        if n == 0 {
            return Err(400);
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = std::str::from_utf8(&buf[..head_end]).map_err(|_| 400u16)?;
    let mut lines = head.split("\r\n");
    let mut start = lines.next().unwrap_or("").split(' ');
    let (method, path) = match (start.next(), start.next()) {
        (Some(m), Some(p)) if !m.is_empty() => (m.to_string(), p.to_string()),
        _ => return Err(400),
    };
    let mut length = 0usize;
    for l in lines {
        if let Some((n, v)) = l.split_once(':') {
            if n.trim().eq_ignore_ascii_case("content-length") {
                length = v.trim().parse().map_err(|_| 400u16)?;
            }
        }
    }
    if length > MAX_BODY {
        return Err(413);
    }
    let mut body = buf[head_end + 4..].to_vec();
    while body.len() < length {
        let n = s.read(&mut chunk).await.map_err(|_| 400u16)?;
        if n == 0 {
            return Err(400);
        }
        body.extend_from_slice(&chunk[..n]);
    }
    body.truncate(length);
    Ok((method, path, body))
}

async fn write_response(s: &mut TcpStream, status: u16, body: &Value) {
    let body = body.to_string();
    let head = format!(
        "HTTP/1.1 {status} {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        reason_phrase(status),
        body.len()
    );
    let _ = s.write_all(head.as_bytes()).await;
    let _ = s.write_all(body.as_bytes()).await;
    let _ = s.shutdown().await;
}

/// Serves the admin API on `listener` until the task is dropped: one request per connection,
/// each within 10 s.
pub async fn serve_http<R: DiameterRequester>(listener: TcpListener, admin: Arc<HssAdmin<R>>) {
    loop {
        let Ok((mut s, _)) = listener.accept().await else {
            continue;
        };
        let admin = admin.clone();
        tokio::spawn(async move {
            let req = tokio::time::timeout(Duration::from_secs(10), read_request(&mut s)).await;
            let (status, body) = match req {
                Ok(Ok((m, p, b))) => handle(&admin, &m, &p, &b).await,
                Ok(Err(code)) => (code, json!({ "error": reason_phrase(code) })),
                Err(_) => return,
            };
            write_response(&mut s, status, &body).await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hss::Hss;
    use crate::pcrf::tests::FakeAf;
    use crate::pcrf::PcrfRxServer;
    use crate::test_util::block_on;
    use ims_diameter::dict::command;

    /// `POST /pcrf/rar` (all bearers lost) to an AF that never answers RARs (Kamailio 5.6.3):
    /// the PCRF ends the session with an ASR instead of leaving it up with a 502.
    #[test]
    fn pcrf_rar_unanswered_falls_back_to_an_asr() {
        let pcrf = Arc::new(std::sync::Mutex::new(Pcrf::new(None)));
        let server = PcrfRxServer::new("pcrf.ims.example.org", "ims.example.org", pcrf.clone());
        let aar = ims_diameter::rx::Aar {
            session_id: "s1".into(),
            auth_application_id: ims_diameter::dict::app::RX,
            origin_host: "pcscf.ims.example.org".into(),
            origin_realm: "ims.example.org".into(),
            destination_realm: "ims.example.org".into(),
            specific_action: vec![SpecificAction::IndicationOfLossOfBearer].into(),
            ..Default::default()
        };
        let aaa = server.answer(&aar.encode(1, 1)).unwrap();
        assert_eq!(answer_code(&aaa), Some(2001));
        let local = LocalHss::new(
            Arc::new(std::sync::Mutex::new(Hss::new(None))),
            "ims.example.org",
            || [0; 16],
        );
        let admin = HssAdmin::new(
            local,
            FakeAf::new(Some(2001), true),
            "hss.ims.example.org",
            "ims.example.org",
            "scscf.ims.example.org",
        );
        let af = FakeAf::new(None, true);
        let seen = af.seen.clone();
        admin.set_pcrf(pcrf.clone(), af, "pcrf.ims.example.org", "ims.example.org");
        let (status, body) = block_on(handle(
            &admin,
            "POST",
            "/pcrf/rar",
            br#"{"session_id":"s1","action":"loss_of_bearer"}"#,
        ));
        assert_eq!(status, 200, "{body}");
        assert_eq!(
            *seen.lock().unwrap(),
            [command::RE_AUTH, command::ABORT_SESSION]
        );
        let s = &body["sessions"][0];
        assert_eq!(s["session_id"], "s1", "{body}");
        assert_eq!(s["result"], Value::Null, "no RAA: {body}");
        assert_eq!(s["asr"]["result"], 2001, "{body}");
        assert_eq!(s["asr"]["removed"], false, "{body}");
        // a partial loss (flows named) keeps the plain RAR: no RAA is an error, no ASR
        let (status, _) = block_on(handle(
            &admin,
            "POST",
            "/pcrf/rar",
            br#"{"session_id":"s1","action":"loss_of_bearer","flows":[1]}"#,
        ));
        assert_eq!(status, 502);
        assert_eq!(seen.lock().unwrap().len(), 3);
        assert_eq!(pcrf.lock().unwrap().session_ids(), ["s1"]);
    }

    #[test]
    fn subscriber_from_json_with_ifcs() {
        let v: Value = serde_json::from_str(
            r#"{"impi":"alice@ims.example.org","impus":["sip:alice@ims.example.org","tel:+15551234"],
            "barred":["tel:+15551234"],"k":"465b5ce8b199b49faa5f0a2ee238a6bc",
            "op":"cdc202d5123e20f62b6d676ac72cb318","amf":"b9b9","sqn":32,"password":"pw",
            "ifc_xml":"<InitialFilterCriteria><Priority>5</Priority><TriggerPoint><ConditionTypeCNF>0</ConditionTypeCNF><SPT><ConditionNegated>0</ConditionNegated><Group>0</Group><Method>REGISTER</Method></SPT></TriggerPoint><ApplicationServer><ServerName>sip:127.0.0.1:7070</ServerName><DefaultHandling>0</DefaultHandling></ApplicationServer></InitialFilterCriteria>"}"#,
        )
        .unwrap();
        let s = subscriber_from_json(&v).unwrap();
        assert_eq!(s.subscription.private_id, "alice@ims.example.org");
        let sp = &s.subscription.service_profiles[0];
        assert_eq!(sp.public_identities.len(), 2);
        assert!(sp.public_identities[1].barring_indication);
        assert_eq!(sp.initial_filter_criteria.len(), 1);
        assert_eq!(sp.initial_filter_criteria[0].priority, 5);
        assert_eq!(
            sp.initial_filter_criteria[0].application_server.server_name,
            "sip:127.0.0.1:7070"
        );
        assert!(s.credentials.aka.is_some());
        assert_eq!(s.credentials.password.as_deref(), Some("pw"));

        for bad in [
            r#"{"impus":["sip:a@b"],"password":"x"}"#,
            r#"{"impi":"a@b","password":"x"}"#,
            r#"{"impi":"a@b","impus":["sip:a@b"]}"#,
            r#"{"impi":"a@b","impus":["sip:a@b"],"k":"00"}"#,
            r#"{"impi":"a@b","impus":["sip:a@b"],"k":"465b5ce8b199b49faa5f0a2ee238a6bc"}"#,
            r#"{"impi":"a@b","impus":["sip:a@b"],"password":"x","ifc_xml":"<Nope"}"#,
        ] {
            let v: Value = serde_json::from_str(bad).unwrap();
            let e = subscriber_from_json(&v).unwrap_err();
            assert_eq!(e.status(), 400, "{bad}: {e}");
        }
    }
}
