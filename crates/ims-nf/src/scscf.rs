//! The S-CSCF registrar (TS 24.229 §5.4.1): REGISTER → MAR → 401 (IMS-AKA or digest) →
//! REGISTER with credentials → SAR → 200 with Path, Service-Route and P-Associated-URI; AKA
//! re-synchronisation; re-registration; de-registration by the user; GRUUs (RFC 5627) in the
//! 200. Network-side changes: the registration timer ([`Scscf::expire`], SAR
//! TIMEOUT_DEREGISTRATION), HSS de-registration ([`Scscf::terminate`], Cx RTR) and profile
//! update ([`Scscf::push_profile`], Cx PPR), S-CSCF de-registration ([`Scscf::deregister`]), and
//! the third-party REGISTERs to application servers ([`Scscf::third_party_registers`]). Every
//! change is reported as a [`RegEvent`] for the reg event notifier ([`crate::reginfo::Notifier`]).
//!
//! The HSS is reached through a [`CxClient`] and registrations are kept in a [`BindingStore`],
//! so the same code runs with an in-process HSS and memory store (tests) or Diameter and Redis.
//! Time (`now`, seconds since the Unix epoch) and randomness (`salt`) come from the caller.

use crate::cx::{CxClient, CxFailure, MarQuery, SarQuery};
use crate::hss::{result, CxResult};
use crate::hss::{AuthItem, AuthScheme, ServerAssignmentType};
use crate::ifc::Context;
use crate::keyed_hash::{KeyedMap, KeyedState};
use crate::registrar::{self, Binding, RegistrarConfig};
use crate::store::{BindingStore, RegState, RegistrationRecord};
use crate::subscription::{DefaultHandling, ImsSubscription, RegistrationType, SessionCase};
use ims_auth::digest::{
    Algorithm, Credentials, DigestServer, IssuedNonce, KeptNonce, NonceCounts, Secret,
};
use ims_auth::AuthError;
use ims_sip::{HeaderName, Message, OwnedMessage, ResponseBuilder};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// S-CSCF settings.
#[derive(Debug, Clone)]
pub struct ScscfConfig {
    /// Server-Name sent to the HSS (`sip:scscf.ims.example.org:6060`).
    pub server_name: String,
    /// Digest realm (the home domain).
    pub realm: String,
    /// The Service-Route URI returned at registration (`sip:orig@scscf.ims.example.org:6060;lr`).
    pub service_route: String,
    /// Registrar policy.
    pub registrar: RegistrarConfig,
    /// Key of the stateless digest nonces (shared by S-CSCF instances behind one name).
    pub nonce_secret: Vec<u8>,
}

/// What a REGISTER changed, for the caller to act on (reg event NOTIFYs, third-party REGISTER).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegEvent {
    /// Bindings were added or refreshed.
    Registered {
        /// True for an initial registration (SAR REGISTRATION).
        initial: bool,
        /// The record as stored.
        record: RegistrationRecord,
    },
    /// The last binding went away (SAR USER_DEREGISTRATION sent).
    Deregistered {
        /// The record as it was.
        record: RegistrationRecord,
    },
    /// Bindings expired without a refresh (the registration timer, TS 24.229 §5.4.1.7); when
    /// none is left, SAR TIMEOUT_DEREGISTRATION was sent and the record removed.
    Expired {
        /// The record after the expiry (`bindings` are those left; empty when de-registered).
        record: RegistrationRecord,
        /// The bindings that expired.
        expired: Vec<Binding>,
    },
    /// The HSS de-registered the user (Cx RTR, TS 29.228 §6.1.3): every binding is gone.
    Terminated {
        /// The record as it was.
        record: RegistrationRecord,
        /// The Deregistration-Reason.
        reason: DeregistrationReason,
    },
}

/// Why the HSS de-registers a user (Deregistration-Reason of an RTR, TS 29.229 §6.3.17).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeregistrationReason {
    /// Reason-Code: 0 PERMANENT_TERMINATION, 1 NEW_SERVER_ASSIGNED, 2 SERVER_CHANGE,
    /// 3 REMOVE_S-CSCF.
    pub code: u32,
    /// Reason-Info (free text for the UE).
    pub info: Option<String>,
}

impl DeregistrationReason {
    /// True when the UE is asked to register again (the contacts are `deactivated` in the reg
    /// event, TS 24.229 §5.4.1.5): NEW_SERVER_ASSIGNED and SERVER_CHANGE; otherwise they are
    /// `rejected`.
    pub fn reregister(&self) -> bool {
        matches!(self.code, 1 | 2)
    }
}

impl RegEvent {
    /// The record concerned.
    pub fn record(&self) -> &RegistrationRecord {
        match self {
            RegEvent::Registered { record, .. }
            | RegEvent::Deregistered { record }
            | RegEvent::Expired { record, .. }
            | RegEvent::Terminated { record, .. } => record,
        }
    }

    /// True when the user is no longer registered after this event.
    pub fn is_deregistration(&self) -> bool {
        match self {
            RegEvent::Registered { .. } => false,
            RegEvent::Deregistered { .. } | RegEvent::Terminated { .. } => true,
            RegEvent::Expired { record, .. } => record.bindings.is_empty(),
        }
    }
}

/// The answer to one REGISTER.
///
/// Two outcomes are equal when their responses have the same bytes, statuses and events.
#[derive(Debug, Clone)]
pub struct RegisterOutcome {
    /// The response to send, read as a message where it was written (whoever sends it has
    /// nothing to parse; [`OwnedMessage::bytes`] are the bytes). A response the parser would
    /// not read back (a header text copied from the request that it refuses) is replaced by a
    /// 500.
    pub response: OwnedMessage,
    /// The status code of `response`.
    pub status: u16,
    /// What changed, when something did.
    pub event: Option<RegEvent>,
}

impl PartialEq for RegisterOutcome {
    fn eq(&self, other: &Self) -> bool {
        self.status == other.status
            && self.event == other.event
            && self.response.bytes() == other.response.bytes()
    }
}

impl Eq for RegisterOutcome {}

/// `text`, a message this crate wrote, read once where it is made: the cores hand their
/// responses and requests on as messages, and nothing downstream parses their bytes again.
pub(crate) fn own_message(text: impl Into<Vec<u8>>) -> Result<OwnedMessage, ims_sip::ParseError> {
    OwnedMessage::parse_datagram(bytes::Bytes::from(text.into()))
}

/// The response `b` renders, read as a message, or, when the parser refuses it, a 500 to
/// `req` (then `*status` becomes 500): the S-CSCF's and the notifier's responses are handed on
/// as messages, never as bytes to parse again.
pub(crate) fn built_response(
    b: ResponseBuilder,
    req: &Message<'_>,
    status: &mut u16,
) -> OwnedMessage {
    // indexed as written (`build`): no parse of what was just written
    match b.build() {
        Ok(m) => m,
        Err(_) => {
            *status = 500;
            ResponseBuilder::from_request(req, 500)
                .build()
                // the copied lines are the request's own (which the parser read); a status line
                // and Content-Length alone are always read back
                .or_else(|_| ResponseBuilder::new(500, None).build())
                .expect("a bare 500 is read back")
        }
    }
}

/// A challenge awaiting the UE's answer: it is answered once (taken when verified).
struct Pending {
    /// Which nonce answers it: RAND for AKA ([`PendingSecret::Password`]), the salt of the
    /// nonce for digest ([`PendingSecret::Ha1`]) — the nonce of an earlier challenge to the same
    /// IMPI (or a replay of its answer) is not an answer to this one.
    nonce: [u8; 16],
    secret: PendingSecret,
    /// The nonce as issued: an answer carrying it is recognised by its text
    /// ([`DigestServer::verify_kept`]), without the nonce's HMAC computed again.
    kept: KeptNonce,
}

enum PendingSecret {
    /// XRES (AKA).
    Password(Vec<u8>),
    /// HA1 (digest).
    Ha1(String),
}

impl Pending {
    /// True when `issued` (what the nonce of the credentials is, `None`: not one of ours) is
    /// the nonce of this challenge. A digest nonce that is not ours is let through so the
    /// verification refuses it (403), as for a wrong response; an AKA one is challenged afresh.
    fn answered_by(&self, issued: Option<&IssuedNonce>) -> bool {
        match (&self.secret, issued) {
            (PendingSecret::Password(_), Some(n)) => n.rand() == Some(self.nonce),
            (PendingSecret::Password(_), None) => false,
            (PendingSecret::Ha1(_), Some(n)) => n.prefix == self.nonce,
            (PendingSecret::Ha1(_), None) => true,
        }
    }
}

/// The S-CSCF registrar.
pub struct Scscf<C, S> {
    cfg: ScscfConfig,
    cx: C,
    store: S,
    digest: DigestServer,
    /// Vectors awaiting the UE's answer, by IMPI (timer reg-await-auth: the nonce lifetime).
    pending: Mutex<KeyedMap<String, Pending>>,
    /// The nonce counts of the answers being registered: recorded when the answer is verified
    /// and its challenge taken from `pending` (one step, under `pending`'s lock), forgotten
    /// when the registration is done (the challenge is gone, so the nonce is never accepted
    /// again): nothing is kept per registered user.
    counts: Mutex<NonceCounts>,
    /// The registrations this S-CSCF holds, by the record's IMPU: the IMPI and the earliest
    /// binding expiry (drives the registration timer and finds the IMPUs of an RTR/PPR).
    /// Boxed strings, exactly as long as the identity: one of these per registered user.
    served: Mutex<KeyedMap<Box<str>, Served>>,
    /// Hashes [`Served::impi`] (keyed per process).
    impi_hasher: KeyedState,
    /// CSeq of third-party REGISTERs (one Call-ID per IMPU and AS, so it only grows).
    tpr_cseq: std::sync::atomic::AtomicU32,
    /// The user profiles (Cx User-Data), parsed once per shape and shared.
    profiles: std::sync::Arc<crate::profile_cache::ProfileCache>,
    /// Policy: challenge even REGISTERs that came over the UE's security associations
    /// (`integrity-protected="yes"`); off by default ([`Scscf::reauthenticate_protected`]).
    reauth_protected: bool,
}

#[derive(Debug, Clone)]
struct Served {
    /// A hash of the IMPI ([`Scscf::impi_hash`]), not a copy: it only preselects the records
    /// of an RTR/PPR, whose IMPI is then compared on the loaded record.
    impi: u64,
    next_expiry: u64,
}

impl<C, S> std::fmt::Debug for Scscf<C, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scscf")
            .field("server_name", &self.cfg.server_name)
            .finish_non_exhaustive()
    }
}

/// True when an Authorization value carries `integrity-protected="yes"` or `"tls-connected"`
/// (set by the P-CSCF, TS 24.229 §5.2.2.1 / §7.2A.7.2).
fn integrity_protected(auth: &str) -> bool {
    // the usual Authorization has no such parameter (the P-CSCF removes the UE's own and adds
    // one only over SAs or TLS): one scan for the name in any case answers it, the split below
    // (≈ 3.7 k instructions per REGISTER) runs only when the name is there
    const NAME: &[u8] = b"integrity-protected";
    let b = auth.as_bytes();
    let mut at = 0;
    let mut named = false;
    while let Some(p) = memchr::memchr2(b'i', b'I', &b[at..]) {
        let i = at + p;
        if b.get(i..i + NAME.len())
            .is_some_and(|w| w.eq_ignore_ascii_case(NAME))
        {
            named = true;
            break;
        }
        at = i + 1;
    }
    named
        && auth.split(',').any(|p| {
            let p = p.trim();
            let p = p
                .get(..7)
                .filter(|d| d.eq_ignore_ascii_case("digest "))
                .map_or(p, |_| p[7..].trim_start());
            p.split_once('=').is_some_and(|(k, v)| {
                k.trim().eq_ignore_ascii_case("integrity-protected") && {
                    // compared without a lowercased copy (one per parameter)
                    let v = v.trim().trim_matches('"');
                    v.eq_ignore_ascii_case("yes") || v.eq_ignore_ascii_case("tls-connected")
                }
            })
        })
}

fn reply(req: &Message<'_>, status: u16, extra: &[(&str, String)]) -> RegisterOutcome {
    let mut b = ResponseBuilder::from_request(req, status);
    for (n, v) in extra {
        b = b.header(n, v);
    }
    let mut status = status;
    let response = built_response(b, req, &mut status);
    RegisterOutcome {
        response,
        status,
        event: None,
    }
}

/// The implicit registration set of `impu` (itself first, then the rest in profile order) and
/// its barred identities.
fn identities(profile: Option<&ImsSubscription>, impu: &str) -> (Vec<String>, Vec<String>) {
    match profile {
        Some(p) => {
            let mut set: Vec<String> = vec![impu.to_string()];
            for pi in p.public_identities() {
                if pi.identity != impu {
                    set.push(pi.identity.clone());
                }
            }
            let barred = p
                .public_identities()
                .filter(|pi| pi.barring_indication)
                .map(|pi| pi.identity.clone())
                .collect();
            (set, barred)
        }
        None => (vec![impu.to_string()], Vec::new()),
    }
}

/// The IMPI a UE without an Authorization header stands for (TS 24.229 §5.4.1.2.1: derived
/// from the IMPU): `sip:user@domain` → `user@domain`.
fn derive_impi(impu: &str) -> Option<String> {
    let rest = impu
        .strip_prefix("sip:")
        .or_else(|| impu.strip_prefix("sips:"))?;
    let end = rest.find([';', '?']).unwrap_or(rest.len());
    let s = &rest[..end];
    s.contains('@').then(|| s.to_string())
}

impl<C: CxClient, S: BindingStore> Scscf<C, S> {
    /// An S-CSCF using `cx` and `store`.
    pub fn new(cfg: ScscfConfig, cx: C, store: S) -> Scscf<C, S> {
        let digest = DigestServer::new(&cfg.nonce_secret);
        Scscf {
            cfg,
            cx,
            store,
            digest,
            pending: Mutex::default(),
            counts: Mutex::new(NonceCounts::new(100_000)),
            served: Mutex::default(),
            impi_hasher: KeyedState::default(),
            tpr_cseq: std::sync::atomic::AtomicU32::new(1),
            profiles: std::sync::Arc::default(),
            reauth_protected: false,
        }
    }

    /// Policy for REGISTERs the P-CSCF received integrity-protected (`integrity-protected="yes"`
    /// or `"tls-connected"` in Authorization) from a user registered here: `true` challenges
    /// every one of them (a re-authentication), `false` (the default) refreshes, changes or ends
    /// the registration without a new challenge (TS 24.229 §5.4.1.2.2: the S-CSCF *may*
    /// require authentication of any REGISTER, and *shall* for those not integrity-protected).
    pub fn reauthenticate_protected(mut self, every: bool) -> Self {
        self.reauth_protected = every;
        self
    }

    fn track(&self, rec: &RegistrationRecord) {
        let impi = self.impi_hash(&rec.impi);
        let mut served = self.served.lock().expect("served lock is never poisoned");
        match rec.bindings.iter().map(|b| b.expires_at).min() {
            // a refresh updates the entry in place (no new key, IMPI kept when unchanged)
            Some(next_expiry) => match served.get_mut(rec.impu.as_str()) {
                Some(s) => {
                    s.impi = impi;
                    s.next_expiry = next_expiry;
                }
                None => {
                    served.insert(rec.impu.as_str().into(), Served { impi, next_expiry });
                }
            },
            None => {
                served.remove(rec.impu.as_str());
            }
        }
    }

    /// Takes over a registration found in a shared store (saved by another S-CSCF instance,
    /// or before a restart) so the registration timer, RTR and PPR cover it.
    pub fn adopt(&self, rec: &RegistrationRecord) {
        self.track(rec);
    }

    fn untrack(&self, rec: &RegistrationRecord) {
        self.served
            .lock()
            .expect("served lock is never poisoned")
            .remove(rec.impu.as_str());
    }

    /// The records' IMPUs this S-CSCF holds for `impi`.
    fn impus_of(&self, impi: &str) -> Vec<String> {
        let h = self.impi_hash(impi);
        let served = self.served.lock().expect("served lock is never poisoned");
        let mut v: Vec<String> = served
            .iter()
            .filter(|(_, s)| s.impi == h)
            .map(|(k, _)| k.to_string())
            .collect();
        v.sort();
        v
    }

    /// The key of `impi` in [`Served`].
    fn impi_hash(&self, impi: &str) -> u64 {
        use std::hash::BuildHasher;
        self.impi_hasher.hash_one(impi)
    }

    /// Number of registrations (implicit sets) held.
    pub fn registrations(&self) -> usize {
        self.served
            .lock()
            .expect("served lock is never poisoned")
            .len()
    }

    /// When the next binding expires (seconds since the Unix epoch), for the caller's timer.
    pub fn next_expiry(&self) -> Option<u64> {
        self.served
            .lock()
            .expect("served lock is never poisoned")
            .values()
            .map(|s| s.next_expiry)
            .min()
    }

    /// The registration timer (TS 24.229 §5.4.1.7, RFC 3261 §10.3): removes every binding
    /// expired at `now`; a registration left without binding is de-registered towards the HSS
    /// with SAR TIMEOUT_DEREGISTRATION and removed from the store. Returns what changed.
    pub async fn expire(&self, now: u64) -> Vec<RegEvent> {
        let due: Vec<String> = {
            let served = self.served.lock().expect("served lock is never poisoned");
            served
                .iter()
                .filter(|(_, s)| s.next_expiry <= now)
                .map(|(k, _)| k.to_string())
                .collect()
        };
        let mut events = Vec::new();
        for impu in due {
            let mut rec = match self.store.load(&impu).await {
                Ok(Some(r)) => r,
                Ok(None) => {
                    self.served
                        .lock()
                        .expect("served lock is never poisoned")
                        .remove(impu.as_str());
                    continue;
                }
                // the store is unreachable: try again at the next tick
                Err(_) => continue,
            };
            let expired = registrar::expire(&mut rec.bindings, now);
            if rec.bindings.is_empty() {
                let _ = self
                    .cx
                    .sar(SarQuery {
                        impi: Some(rec.impi.clone()),
                        impu: rec.impu.clone(),
                        server_name: self.cfg.server_name.clone(),
                        assignment: ServerAssignmentType::TimeoutDeregistration,
                        user_data_available: false,
                    })
                    .await;
                if self.store.remove(&rec).await.is_err() {
                    continue;
                }
                self.untrack(&rec);
            } else {
                if self.store.save(&rec).await.is_err() {
                    continue;
                }
                self.track(&rec);
            }
            if !expired.is_empty() {
                events.push(RegEvent::Expired {
                    record: rec,
                    expired,
                });
            }
        }
        events
    }

    /// Network-initiated de-registration by the HSS (Cx RTR, TS 29.228 §6.1.3,
    /// TS 24.229 §5.4.1.5): removes the registrations of `impus` (all of `impi`'s when empty).
    /// No SAR follows (the HSS already de-registered). `Err(DIAMETER_ERROR_USER_UNKNOWN)` when
    /// this S-CSCF holds none of them.
    pub async fn terminate(
        &self,
        impi: &str,
        impus: &[String],
        reason: DeregistrationReason,
    ) -> Result<Vec<RegEvent>, CxResult> {
        let mut keys: Vec<String> = impus.to_vec();
        if keys.is_empty() {
            keys = self.impus_of(impi);
        }
        let mut events: Vec<RegEvent> = Vec::new();
        for k in keys {
            let rec = match self.store.load(&k).await {
                Ok(Some(r)) => r,
                Ok(None) => continue,
                Err(_) => return Err(result::UNABLE_TO_COMPLY),
            };
            if rec.impi != impi || events.iter().any(|e| e.record().impu == rec.impu) {
                continue;
            }
            if self.store.remove(&rec).await.is_err() {
                return Err(result::UNABLE_TO_COMPLY);
            }
            self.untrack(&rec);
            events.push(RegEvent::Terminated {
                record: rec,
                reason: reason.clone(),
            });
        }
        if events.is_empty() {
            return Err(result::USER_UNKNOWN);
        }
        Ok(events)
    }

    /// Profile update by the HSS (Cx PPR, TS 29.228 §6.1.4): replaces the stored user profile
    /// (`user_data`, the `IMSSubscription` XML: the implicit set and barring are re-read) and/or
    /// the charging information of `impi`'s registrations. `Err(DIAMETER_ERROR_USER_UNKNOWN)`
    /// when this S-CSCF holds none; `Err(DIAMETER_UNABLE_TO_COMPLY)` for a profile that does
    /// not parse. Returns the updated records.
    pub async fn push_profile(
        &self,
        impi: &str,
        user_data: Option<&str>,
        charging: Option<&str>,
    ) -> Result<Vec<RegistrationRecord>, CxResult> {
        let profile = match user_data {
            Some(x) => Some(
                ImsSubscription::from_xml(x.as_bytes()).map_err(|_| result::UNABLE_TO_COMPLY)?,
            ),
            None => None,
        };
        let mut out = Vec::new();
        for k in self.impus_of(impi) {
            let mut rec = match self.store.load(&k).await {
                Ok(Some(r)) => r,
                Ok(None) => continue,
                Err(_) => return Err(result::UNABLE_TO_COMPLY),
            };
            if rec.impi != impi {
                // another user's record whose IMPI hashes alike (see `Served::impi`)
                continue;
            }
            if let (Some(p), Some(x)) = (&profile, user_data) {
                // the implicit set may change: drop the old keys first
                if self.store.remove(&rec).await.is_err() {
                    return Err(result::UNABLE_TO_COMPLY);
                }
                let (set, barred) = identities(Some(p), &rec.impu);
                rec.implicit_set = set;
                rec.barred = barred;
                rec.user_data = Some(x.to_string());
            }
            if let Some(c) = charging {
                rec.charging = Some(c.to_string());
            }
            if self.store.save(&rec).await.is_err() {
                return Err(result::UNABLE_TO_COMPLY);
            }
            out.push(rec);
        }
        if out.is_empty() {
            return Err(result::USER_UNKNOWN);
        }
        Ok(out)
    }

    /// The configuration.
    pub fn config(&self) -> &ScscfConfig {
        &self.cfg
    }

    /// The user profiles' parsed shapes, shared with the session routing
    /// ([`crate::cscf::ScscfRouting::profiles`]): each shape is parsed and its iFCs compiled once.
    pub fn profiles(&self) -> std::sync::Arc<crate::profile_cache::ProfileCache> {
        self.profiles.clone()
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// The Cx client.
    pub fn cx(&self) -> &C {
        &self.cx
    }

    /// Handles a REGISTER at `now` (seconds since the Unix epoch); `salt` is fresh randomness
    /// for a digest nonce.
    pub async fn register(&self, req: &Message<'_>, now: u64, salt: [u8; 16]) -> RegisterOutcome {
        let Some(to) = req.to().ok().flatten() else {
            return reply(req, 400, &[("Warning", "399 scscf \"bad To\"".into())]);
        };
        let impu = to.uri().as_str().to_string();
        let creds = match req.header(HeaderName::Authorization) {
            None => None,
            Some(v) => match Credentials::parse(v) {
                Ok(c) => Some(c),
                Err(_) => {
                    return reply(
                        req,
                        400,
                        &[("Warning", "399 scscf \"bad Authorization\"".into())],
                    )
                }
            },
        };
        let impi = match creds.as_ref().map(|c| c.username.to_string()) {
            Some(u) if !u.is_empty() => u,
            _ => match derive_impi(&impu) {
                Some(i) => i,
                None => return reply(req, 403, &[]),
            },
        };
        let now_d = Duration::from_secs(now);
        // TS 24.229 §5.4.1.2.2: a REGISTER that came over the UE's SAs, with no authentication
        // ongoing (no reg-await-auth) for a user registered here under this IMPI, is not
        // challenged again unless policy says so
        if !self.reauth_protected
            && req
                .header(HeaderName::Authorization)
                .is_some_and(integrity_protected)
            && !self
                .pending
                .lock()
                .expect("pending lock is never poisoned")
                .contains_key(&impi)
            && matches!(
                self.store.load_bindings(&impu).await,
                Ok(Some(r)) if r.impi == impi && r.state == RegState::Registered
            )
        {
            return self.bind(req, &impi, &impu, now).await;
        }
        // the algorithm a UE asks for in an Authorization without a response (TS 24.229)
        let requested = creds.as_ref().and_then(|c| c.algorithm().ok());
        let Some(creds) = creds.filter(|c| !c.nonce.is_empty()) else {
            return self
                .challenge(req, &impi, &impu, requested, None, false, now_d, salt)
                .await;
        };
        // AKA synchronisation failure: the UE sent AUTS instead of a response (RFC 3310 §3.4)
        if creds.auts_bytes().is_some() {
            return match self
                .digest
                .verify_resync(&creds, "REGISTER", req.body(), now_d)
            {
                Ok(r) => {
                    let mut ra = r.rand.to_vec();
                    ra.extend_from_slice(&r.auts);
                    self.challenge(req, &impi, &impu, requested, Some(ra), false, now_d, salt)
                        .await
                }
                Err(_) => reply(req, 403, &[]),
            };
        }
        // the challenge is taken (removed from `pending`) in the same step as its answer is
        // verified and the nonce count recorded: of two copies of one REGISTER, only one
        // passes; the other finds no challenge pending and is challenged afresh
        let mut tag = None;
        // `None`: no challenge pending — not our challenge (or it expired and was dropped, or
        // was answered already): challenge afresh
        let verified = 'v: {
            let mut pending = self.pending.lock().expect("pending lock is never poisoned");
            let Some(p) = pending.get(&impi) else {
                break 'v Ok(None);
            };
            let secret = match &p.secret {
                PendingSecret::Password(pw) => Secret::Password(pw),
                PendingSecret::Ha1(h) => Secret::Ha1(h),
            };
            let mut counts = self.counts.lock().expect("counts lock is never poisoned");
            // the answer to the challenge pending carries its nonce: known by its text (what
            // `verify_if` below finds and answers for it, without the HMAC)
            let verified = match self.digest.verify_kept(
                &creds,
                &p.kept,
                "REGISTER",
                req.body(),
                secret,
                now_d,
                Some(&mut counts),
            ) {
                Ok(None) => {
                    // a nonce not of the challenge pending is not an answer to it: challenge
                    // afresh; otherwise verify (the nonce is checked once for both)
                    self.digest.verify_if(
                        &creds,
                        "REGISTER",
                        req.body(),
                        secret,
                        now_d,
                        Some(&mut counts),
                        |issued| {
                            tag = issued.map(|n| n.tag);
                            p.answered_by(issued)
                        },
                    )
                }
                answered => {
                    tag = Some(p.kept.issued().tag);
                    answered
                }
            };
            match &verified {
                // answered (registered below), or failed: the challenge is used up
                Ok(Some(_)) => {
                    pending.remove(&impi);
                }
                Err(e) if !matches!(e, AuthError::Stale) => {
                    pending.remove(&impi);
                }
                _ => {}
            }
            verified
        };
        match verified {
            Ok(None) => {
                return self
                    .challenge(req, &impi, &impu, requested, None, false, now_d, salt)
                    .await;
            }
            Ok(Some(_)) => {}
            Err(AuthError::Stale) => {
                return self
                    .challenge(req, &impi, &impu, requested, None, true, now_d, salt)
                    .await
            }
            Err(_) => {
                // TS 24.229 §5.4.1.2.1: authentication failed
                let _ = self
                    .cx
                    .sar(SarQuery {
                        impi: Some(impi.clone()),
                        impu: impu.clone(),
                        server_name: self.cfg.server_name.clone(),
                        assignment: ServerAssignmentType::AuthenticationFailure,
                        user_data_available: false,
                    })
                    .await;
                return reply(req, 403, &[]);
            }
        }
        let out = self.bind(req, &impi, &impu, now).await;
        // the challenge is gone: its nonce is never accepted again, its counts can go
        if let Some(tag) = tag {
            self.counts
                .lock()
                .expect("counts lock is never poisoned")
                .forget(&tag);
        }
        out
    }

    #[allow(clippy::too_many_arguments)]
    async fn challenge(
        &self,
        req: &Message<'_>,
        impi: &str,
        impu: &str,
        requested: Option<Algorithm>,
        resync: Option<Vec<u8>>,
        stale: bool,
        now: Duration,
        salt: [u8; 16],
    ) -> RegisterOutcome {
        let scheme = match requested {
            Some(a) if a.is_aka() => AuthScheme::AkaV1,
            Some(Algorithm::Md5) => AuthScheme::Digest,
            _ => AuthScheme::Unknown,
        };
        let maa = self
            .cx
            .mar(MarQuery {
                impi: impi.to_string(),
                impu: impu.to_string(),
                scheme,
                server_name: self.cfg.server_name.clone(),
                resync,
            })
            .await;
        let maa = match maa {
            Ok(m) => m,
            Err(CxFailure::Unreachable(_)) => return reply(req, 504, &[]),
            Err(CxFailure::Result(_)) => return reply(req, 403, &[]),
        };
        let Some(item) = maa.items.into_iter().next() else {
            return reply(req, 500, &[]);
        };
        let (challenge, pending) = match item {
            AuthItem::Aka(av) => {
                let (ch, kept) = match self.digest.aka_challenge_kept(
                    &self.cfg.realm,
                    Algorithm::AkaV1Md5,
                    &av,
                    now,
                ) {
                    Ok(c) => c,
                    Err(_) => return reply(req, 500, &[]),
                };
                // TS 24.229 §5.4.1.2.1: CK and IK go to the P-CSCF in the challenge (it removes
                // them before forwarding to the UE)
                let mut s = ch.to_string();
                s.push_str(",ck=\"");
                s.push_str(&ims_auth::encoding::hex_encode(&av.ck));
                s.push_str("\",ik=\"");
                s.push_str(&ims_auth::encoding::hex_encode(&av.ik));
                s.push('"');
                (
                    s,
                    Pending {
                        nonce: av.rand,
                        secret: PendingSecret::Password(av.xres.to_vec()),
                        kept,
                    },
                )
            }
            AuthItem::Digest { ha1, .. } => {
                let (ch, kept) =
                    match self
                        .digest
                        .challenge_kept(&self.cfg.realm, Algorithm::Md5, now, &salt)
                    {
                        Ok(c) => c,
                        Err(_) => return reply(req, 500, &[]),
                    };
                (
                    ch.to_string(),
                    Pending {
                        nonce: salt,
                        secret: PendingSecret::Ha1(ha1),
                        kept,
                    },
                )
            }
        };
        let challenge = if stale {
            format!("{challenge},stale=true")
        } else {
            challenge
        };
        self.pending
            .lock()
            .expect("pending lock is never poisoned")
            .insert(impi.to_string(), pending);
        reply(req, 401, &[("WWW-Authenticate", challenge)])
    }

    async fn bind(&self, req: &Message<'_>, impi: &str, impu: &str, now: u64) -> RegisterOutcome {
        // shared, not copied: only the bindings are taken over (and the profile when the HSS
        // sends none)
        let existing = match self.store.load_shared(impu).await {
            Ok(r) => r,
            Err(_) => return reply(req, 500, &[]),
        };
        let mut bindings = existing
            .as_ref()
            .map(|r| r.bindings.clone())
            .unwrap_or_default();
        let out = match registrar::apply(&mut bindings, req, now, &self.cfg.registrar) {
            Ok(o) => o,
            Err(e) => {
                let extra = match e {
                    registrar::RegisterError::IntervalTooBrief { min } => {
                        vec![("Min-Expires", min.to_string())]
                    }
                    _ => vec![],
                };
                return reply(req, e.status(), &extra);
            }
        };
        let was_registered = existing
            .as_ref()
            .is_some_and(|r| r.state == RegState::Registered && !out.was_unregistered);
        if bindings.is_empty() {
            // de-registration (or a query while not registered)
            let Some(rec) = existing else {
                return self.ok(req, None, &[], now);
            };
            let rec = Arc::unwrap_or_clone(rec);
            let _ = self
                .cx
                .sar(SarQuery {
                    impi: Some(impi.to_string()),
                    impu: impu.to_string(),
                    server_name: self.cfg.server_name.clone(),
                    assignment: ServerAssignmentType::UserDeregistration,
                    user_data_available: false,
                })
                .await;
            if self.store.remove(&rec).await.is_err() {
                return reply(req, 500, &[]);
            }
            self.untrack(&rec);
            let mut o = self.ok(req, None, &[], now);
            o.event = Some(RegEvent::Deregistered { record: rec });
            return o;
        }
        let assignment = if was_registered {
            ServerAssignmentType::ReRegistration
        } else {
            ServerAssignmentType::Registration
        };
        let have_data = existing.as_ref().is_some_and(|r| r.user_data.is_some());
        let saa = self
            .cx
            .sar(SarQuery {
                impi: Some(impi.to_string()),
                impu: impu.to_string(),
                server_name: self.cfg.server_name.clone(),
                assignment,
                user_data_available: was_registered && have_data,
            })
            .await;
        let saa = match saa {
            Ok(s) => s,
            Err(CxFailure::Unreachable(_)) => return reply(req, 504, &[]),
            Err(CxFailure::Result(_)) => return reply(req, 403, &[]),
        };
        let (user_data, implicit_set, barred) = match (saa.user_data, existing.as_deref()) {
            // the HSS sent no profile (re-registration, TS 29.228 §6.1.2): the stored one is
            // unchanged, and so are the implicit set and barring derived from it for this IMPU
            // — no need to parse it again
            (None, Some(r)) if r.impu == impu && r.user_data.is_some() => (
                r.user_data.clone(),
                r.implicit_set.clone(),
                r.barred.clone(),
            ),
            (sent, existing) => {
                let user_data = sent.or_else(|| existing.and_then(|r| r.user_data.clone()));
                // parsed once per profile shape, shared by the users that have it
                let (set, barred) = match user_data.as_deref().map(|x| self.profiles.get(x)) {
                    Some(Ok(p)) => p.identities(impu),
                    _ => identities(None, impu),
                };
                (user_data, set, barred)
            }
        };
        let rec = RegistrationRecord {
            impu: impu.to_string(),
            impi: impi.to_string(),
            implicit_set,
            barred,
            bindings,
            state: RegState::Registered,
            user_data,
            charging: existing.as_ref().and_then(|r| r.charging.clone()),
            reginfo_version: existing.as_ref().map_or(0, |r| r.reginfo_version),
        };
        if self.store.save(&rec).await.is_err() {
            return reply(req, 500, &[]);
        }
        self.track(&rec);
        let mut o = self.ok(req, Some(&rec), &rec.implicit_set, now);
        // the temporary GRUUs of the 200 (RFC 5627 §3.2) resolve through the store, for as long
        // as their contact is registered (the same Call-ID gives the same one: a refresh
        // extends it); every S-CSCF sharing the store routes them
        if o.status == 200
            && rec.impu.starts_with("sip")
            && req
                .list(HeaderName::Supported)
                .any(|(_, v)| v.trim().eq_ignore_ascii_case("gruu"))
        {
            for b in rec.bindings.iter().filter(|b| b.expires_at > now) {
                if let Some(inst) = b.instance_id.as_deref() {
                    let temp = self.temp_gruu(&rec.impu, inst, &b.call_id);
                    let public = registrar::pub_gruu(&rec.impu, inst);
                    let _ = self
                        .store
                        .save_alias(
                            &crate::cscf::temp_gruu_key(&temp),
                            &public,
                            now,
                            b.expires_at,
                        )
                        .await;
                }
            }
        }
        o.event = Some(RegEvent::Registered {
            initial: !was_registered,
            record: rec,
        });
        o
    }

    /// A temporary GRUU (RFC 5627 §3.2): opaque, unguessable without the S-CSCF's secret, new
    /// for every registration Call-ID: `sip:tgruu.<hex>@<realm>;gr`.
    pub fn temp_gruu(&self, aor: &str, instance: &str, call_id: &str) -> String {
        let key = ims_auth::encoding::hex_encode(&self.cfg.nonce_secret);
        let h = ims_auth::digest::ha1(
            Algorithm::Md5,
            aor,
            instance,
            format!("{key}:{call_id}").as_bytes(),
        );
        format!("sip:tgruu.{h}@{};gr", self.cfg.realm)
    }

    fn ok(
        &self,
        req: &Message<'_>,
        rec: Option<&RegistrationRecord>,
        associated: &[String],
        now: u64,
    ) -> RegisterOutcome {
        let mut extra: Vec<(&str, String)> = Vec::new();
        for (_, p) in req.list(HeaderName::Path) {
            extra.push(("Path", p.to_string()));
        }
        if rec.is_some() {
            extra.push(("Service-Route", format!("<{}>", self.cfg.service_route)));
            let pau: Vec<String> = associated.iter().map(|u| format!("<{u}>")).collect();
            extra.push(("P-Associated-URI", pau.join(", ")));
            // RFC 5627 §5.2: a UE that supports GRUU and sent +sip.instance gets its GRUUs
            let gruu = req
                .list(HeaderName::Supported)
                .any(|(_, v)| v.trim().eq_ignore_ascii_case("gruu"));
            for b in rec.map(|r| r.bindings.as_slice()).unwrap_or_default() {
                let mut c = b.contact_value(now);
                if let (true, Some(inst), Some(r)) = (gruu, b.instance_id.as_deref(), rec) {
                    if r.impu.starts_with("sip") {
                        let (public, temp) = (
                            registrar::pub_gruu(&r.impu, inst),
                            self.temp_gruu(&r.impu, inst, &b.call_id),
                        );
                        c.push_str(&format!(";pub-gruu=\"{public}\";temp-gruu=\"{temp}\""));
                    }
                }
                extra.push(("Contact", c));
            }
            extra.push(("Supported", if gruu { "path, gruu" } else { "path" }.into()));
        }
        reply(req, 200, &extra)
    }
}

/// A third-party REGISTER the S-CSCF sends to an application server (TS 24.229 §5.4.1.7).
///
/// Two are equal when their fields are, the requests compared by their bytes.
#[derive(Debug, Clone)]
pub struct ThirdPartyRegister {
    /// The application server (`<ServerName>`): the Request-URI and where it goes.
    pub server_name: String,
    /// What to do when the AS does not answer 2xx (`SESSION_TERMINATED`: de-register the user).
    pub default_handling: DefaultHandling,
    /// The IMPU registered (the To).
    pub impu: String,
    /// True for a de-registration (Expires: 0).
    pub deregistration: bool,
    /// The request, without Via (the sending endpoint adds it), read as a message where it
    /// was written (nothing to parse before sending). `Err` when the texts it is made of (the
    /// AS name, the IMPU) make a request the parser refuses: it cannot be sent (an AS that
    /// does not answer).
    pub request: Result<OwnedMessage, ims_sip::ParseError>,
}

/// Two built messages (or the errors building them gave) are the same: the same octets.
pub(crate) fn same_built(
    a: &Result<OwnedMessage, ims_sip::ParseError>,
    b: &Result<OwnedMessage, ims_sip::ParseError>,
) -> bool {
    match (a, b) {
        (Ok(a), Ok(b)) => a.bytes() == b.bytes(),
        (Err(a), Err(b)) => a == b,
        _ => false,
    }
}

impl PartialEq for ThirdPartyRegister {
    fn eq(&self, other: &Self) -> bool {
        self.server_name == other.server_name
            && self.default_handling == other.default_handling
            && self.impu == other.impu
            && self.deregistration == other.deregistration
            && same_built(&self.request, &other.request)
    }
}

impl Eq for ThirdPartyRegister {}

/// The icid-value of a P-Charging-Vector value.
fn icid_value(v: &str) -> Option<String> {
    let i = v.find("icid-value=")? + "icid-value=".len();
    let rest = v[i..].trim_start_matches('"');
    let id = rest.split(['"', ';']).next()?.trim();
    (!id.is_empty()).then(|| id.to_string())
}

/// The stored charging information (`ecf=<uri>;ccf=<uri>;ccf2=<uri>`) as a
/// P-Charging-Function-Addresses value (RFC 7315 §4.5: `ccf="…"; ecf="…"`, primary first).
fn charging_function_addresses(stored: &str) -> Option<String> {
    let mut ccf = Vec::new();
    let mut ecf = Vec::new();
    for p in stored.split(';') {
        let Some((n, v)) = p.split_once('=') else {
            continue;
        };
        let v = format!("\"{}\"", v.trim().trim_matches('"'));
        match n.trim().to_ascii_lowercase().as_str() {
            "ccf" | "ccf2" => ccf.push(format!("ccf={v}")),
            "ecf" | "ecf2" => ecf.push(format!("ecf={v}")),
            _ => {}
        }
    }
    let all: Vec<String> = ccf.into_iter().chain(ecf).collect();
    (!all.is_empty()).then(|| all.join("; "))
}

impl<C: CxClient, S: BindingStore> Scscf<C, S> {
    /// The third-party REGISTERs for a registration change (TS 24.229 §5.4.1.7): one per iFC of
    /// the served IMPU's service profile whose trigger point matches the REGISTER — `register`
    /// is the UE's REGISTER and `response` the 200 the S-CSCF sent, or `None` for a
    /// network-initiated change (expiry, RTR), matched as a de-registration. Request-URI: the
    /// AS; From: the S-CSCF; To: the IMPU; Contact: the S-CSCF; Expires: the registration's
    /// remaining time or 0; body: the REGISTER and/or the 200 as `message/sip` when the iFC asks
    /// (IncludeRegisterRequest/-Response), and the ServiceInfo in `application/3gpp-ims+xml`.
    /// The Call-ID is the same for an IMPU and an AS (like a UA refreshing its registration) and
    /// the CSeq grows; the P-Charging-Vector's icid-value is the UE's REGISTER's (as the P-CSCF
    /// set it), else `icid` with the iFC's number, with `orig-ioi` our realm; the charging
    /// function addresses the HSS gave (SAA/PPA) go in P-Charging-Function-Addresses.
    pub fn third_party_registers(
        &self,
        event: &RegEvent,
        register: Option<(&Message<'_>, &[u8])>,
        now: u64,
        icid: &str,
    ) -> Vec<ThirdPartyRegister> {
        let record = event.record();
        // the profile's shape is parsed and its iFCs compiled once, for every user having it
        let Some(profile) = record
            .user_data
            .as_deref()
            .and_then(|x| self.profiles.get(x).ok())
        else {
            return Vec::new();
        };
        let Some(sp) = profile
            .service_profile_of(&record.impu)
            .or((profile.service_profiles() > 0).then_some(0))
        else {
            return Vec::new();
        };
        let Some(set) = profile.filters(sp) else {
            return Vec::new();
        };
        let (registration_type, expires) = match event {
            RegEvent::Registered { initial, record } => (
                if *initial {
                    RegistrationType::Initial
                } else {
                    RegistrationType::Reregistration
                },
                record
                    .bindings
                    .iter()
                    .map(|b| b.remaining(now))
                    .max()
                    .unwrap_or(0),
            ),
            RegEvent::Expired { record, .. } if !record.bindings.is_empty() => return Vec::new(),
            _ => (RegistrationType::Deregistration, 0),
        };
        // a network-initiated de-registration is matched as a de-REGISTER of the IMPU
        let synthetic;
        let req: Message<'_> = match register {
            Some((r, _)) => r.clone(),
            None => {
                synthetic = format!(
                    "REGISTER sip:{realm} SIP/2.0\r\nVia: SIP/2.0/UDP {realm};branch=z9hG4bKnetwork\r\n\
From: <{impu}>;tag=network\r\nTo: <{impu}>\r\nCall-ID: {icid}\r\nCSeq: 1 REGISTER\r\n\
Contact: *\r\nExpires: 0\r\nContent-Length: 0\r\n\r\n",
                    realm = self.cfg.realm,
                    impu = record.impu
                );
                match ims_sip::parse_datagram(synthetic.as_bytes()) {
                    Ok(m) => m,
                    Err(_) => return Vec::new(),
                }
            }
        };
        let ctx = Context {
            session_case: SessionCase::Originating,
            registered: true,
            registration_type: Some(registration_type),
        };
        let mut out = Vec::new();
        for (n, ifc) in set.matching(&req, ctx).enumerate() {
            let asv = &ifc.application_server;
            let mut parts: Vec<(&str, Vec<u8>)> = Vec::new();
            if let Some(info) = &asv.service_info {
                parts.push((
                    "application/3gpp-ims+xml",
                    format!(
                        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n<ims-3gpp version=\"1\"><service-info>{}</service-info></ims-3gpp>\r\n",
                        crate::xml::escape(info)
                    )
                    .into_bytes(),
                ));
            }
            if let Some((r, resp)) = register {
                if asv.include_register_request {
                    parts.push(("message/sip", r.as_bytes().to_vec()));
                }
                if asv.include_register_response {
                    parts.push(("message/sip", resp.to_vec()));
                }
            }
            let (content_type, body) = match parts.len() {
                0 => (None, Vec::new()),
                1 => {
                    let (t, b) = parts.pop().expect("one part");
                    (Some(t.to_string()), b)
                }
                _ => {
                    let boundary = "ims-rs-3rd-party-boundary";
                    let mut b = Vec::new();
                    for (t, p) in &parts {
                        b.extend_from_slice(
                            format!("--{boundary}\r\nContent-Type: {t}\r\n\r\n").as_bytes(),
                        );
                        b.extend_from_slice(p);
                        b.extend_from_slice(b"\r\n");
                    }
                    b.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
                    (Some(format!("multipart/mixed;boundary={boundary}")), b)
                }
            };
            use std::sync::atomic::Ordering;
            // monotonic across restarts too: never below the clock
            self.tpr_cseq
                .fetch_max((now & 0x3fff_ffff) as u32, Ordering::Relaxed);
            let cseq = self.tpr_cseq.fetch_add(1, Ordering::Relaxed);
            let dialog = short_tag_of(&[&record.impu, &asv.server_name, &self.cfg.server_name]);
            let ue_icid = register
                .and_then(|(r, _)| r.header(HeaderName::PChargingVector))
                .and_then(icid_value);
            let (me, realm, impu) = (&*self.cfg.server_name, &*self.cfg.realm, &*record.impu);
            // pieces appended, no formatting machinery (one per registration and AS)
            let mut m = String::with_capacity(
                400 + asv.server_name.len() + 2 * (me.len() + realm.len()) + impu.len(),
            );
            m.push_str("REGISTER ");
            m.push_str(&asv.server_name);
            m.push_str(" SIP/2.0\r\nMax-Forwards: 70\r\nFrom: <");
            m.push_str(me);
            m.push_str(">;tag=3pr");
            m.push_str(&short_tag(icid));
            m.push_str("\r\nTo: <");
            m.push_str(impu);
            m.push_str(">\r\nCall-ID: 3pr-");
            m.push_str(&dialog);
            m.push('@');
            m.push_str(realm);
            m.push_str("\r\nCSeq: ");
            push_dec(&mut m, u64::from(cseq));
            m.push_str(" REGISTER\r\nContact: <");
            m.push_str(me);
            m.push_str(">\r\nExpires: ");
            push_dec(&mut m, expires);
            m.push_str("\r\nP-Charging-Vector: icid-value=\"");
            match &ue_icid {
                Some(id) => m.push_str(id),
                None => {
                    m.push_str(icid);
                    m.push('-');
                    push_dec(&mut m, n as u64);
                }
            }
            m.push_str("\";orig-ioi=");
            m.push_str(realm);
            m.push_str("\r\n");
            if let Some(pcfa) = record
                .charging
                .as_deref()
                .and_then(charging_function_addresses)
            {
                m.push_str("P-Charging-Function-Addresses: ");
                m.push_str(&pcfa);
                m.push_str("\r\n");
            }
            if let Some(t) = content_type {
                m.push_str("Content-Type: ");
                m.push_str(&t);
                m.push_str("\r\n");
            }
            m.push_str("Content-Length: ");
            push_dec(&mut m, body.len() as u64);
            m.push_str("\r\n\r\n");
            let mut bytes = m.into_bytes();
            bytes.extend_from_slice(&body);
            let request = own_message(bytes);
            out.push(ThirdPartyRegister {
                server_name: asv.server_name.clone(),
                default_handling: asv.default_handling,
                impu: record.impu.clone(),
                deregistration: registration_type == RegistrationType::Deregistration,
                request,
            });
        }
        out
    }

    /// `request` (a third-party REGISTER) with the next CSeq of its dialog, to send it again
    /// (`Err`: the parser refuses the text with the new CSeq, or `request` was one it refused).
    pub fn third_party_again(
        &self,
        request: &Result<OwnedMessage, ims_sip::ParseError>,
    ) -> Result<OwnedMessage, ims_sip::ParseError> {
        let request = request.as_ref().map_err(|e| *e)?;
        let cseq = self
            .tpr_cseq
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let text = String::from_utf8_lossy(request.bytes());
        let Some(start) = text.find("\r\nCSeq: ") else {
            return Ok(request.clone());
        };
        let Some(len) = text[start + 2..].find("\r\n") else {
            return Ok(request.clone());
        };
        let mut out = text[..start + 2].to_string();
        out.push_str(&format!("CSeq: {cseq} REGISTER"));
        out.push_str(&text[start + 2 + len..]);
        OwnedMessage::parse_datagram(bytes::Bytes::from(out.into_bytes()))
    }

    /// Network-initiated de-registration by the S-CSCF itself (TS 24.229 §5.4.1.5, e.g. a
    /// third-party REGISTER failed with DefaultHandling SESSION_TERMINATED): removes the
    /// registration of `impu` and tells the HSS with SAR ADMINISTRATIVE_DEREGISTRATION.
    pub async fn deregister(&self, impu: &str, reason: DeregistrationReason) -> Option<RegEvent> {
        let rec = self.store.load(impu).await.ok()??;
        let _ = self
            .cx
            .sar(SarQuery {
                impi: Some(rec.impi.clone()),
                impu: rec.impu.clone(),
                server_name: self.cfg.server_name.clone(),
                assignment: ServerAssignmentType::AdministrativeDeregistration,
                user_data_available: false,
            })
            .await;
        self.store.remove(&rec).await.ok()?;
        self.untrack(&rec);
        Some(RegEvent::Terminated {
            record: rec,
            reason,
        })
    }
}

fn short_tag(s: &str) -> String {
    short_tag_of(&[s])
}

/// [`short_tag`] of `parts` joined by `|`, without the joined text; the hash in lowercase hex
/// as `{:x}` writes it.
fn short_tag_of(parts: &[&str]) -> String {
    let mut h: u32 = 0x811c_9dc5;
    for (i, p) in parts.iter().enumerate() {
        let sep: &[u8] = if i > 0 { b"|" } else { b"" };
        for &b in sep.iter().chain(p.as_bytes()) {
            h ^= u32::from(b);
            h = h.wrapping_mul(0x0100_0193);
        }
    }
    let digits = (32 - h.leading_zeros()).div_ceil(4).max(1);
    (0..digits)
        .rev()
        .map(|i| char::from(b"0123456789abcdef"[((h >> (4 * i)) & 15) as usize]))
        .collect()
}

/// Appends `n` in decimal (as `Display` writes it), without the formatting machinery.
fn push_dec(out: &mut String, n: u64) {
    ims_sip::push_decimal(out, n);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cx::LocalHss;
    use crate::hss::{AkaCredentials, Credentials as HssCreds, Hss, Subscriber};
    use crate::store::MemoryStore;
    use crate::subscription::{PublicIdentity, ServiceProfile};
    use crate::test_util::block_on;
    use ims_auth::aka::{self, Usim};
    use ims_auth::digest::{self, Challenge, Request};
    use ims_auth::milenage::{Milenage, OperatorKey};

    const IMPI: &str = "001010000000001@ims.example.org";
    const IMPU: &str = "sip:001010000000001@ims.example.org";
    const K: [u8; 16] = [0x46; 16];
    const OP: [u8; 16] = [0xcd; 16];

    fn scscf() -> Scscf<LocalHss, MemoryStore> {
        scscf_over(|cx| cx)
    }

    /// `scscf()` with its Cx client wrapped by `wrap`.
    fn scscf_over<C: CxClient>(wrap: impl FnOnce(LocalHss) -> C) -> Scscf<C, MemoryStore> {
        let mut hss = Hss::new(None);
        let mut barred = PublicIdentity::new("sip:barred@ims.example.org");
        barred.barring_indication = true;
        hss.add_subscriber(Subscriber {
            subscription: ImsSubscription {
                private_id: IMPI.into(),
                service_profiles: vec![ServiceProfile {
                    public_identities: vec![
                        PublicIdentity::new(IMPU),
                        PublicIdentity::new("tel:+15550001"),
                        barred,
                    ],
                    ..ServiceProfile::default()
                }],
            },
            credentials: HssCreds {
                aka: Some(AkaCredentials::new(K, OperatorKey::Op(OP), [0x80, 0], 0)),
                password: Some("secret".into()),
            },
        });
        let mut n = 0u8;
        let cx = LocalHss::new(Arc::new(Mutex::new(hss)), "ims.example.org", move || {
            n = n.wrapping_add(1);
            [n; 16]
        });
        Scscf::new(
            ScscfConfig {
                server_name: "sip:scscf.ims.example.org:6060".into(),
                realm: "ims.example.org".into(),
                service_route: "sip:orig@scscf.ims.example.org:6060;lr".into(),
                registrar: RegistrarConfig::default(),
                nonce_secret: b"0123456789abcdef0123456789abcdef".to_vec(),
            },
            wrap(cx),
            MemoryStore::new(),
        )
    }

    /// The in-process HSS, yielding to the executor before each request: REGISTERs handled
    /// on one executor interleave at every Cx request (MAR, SAR), as over Diameter.
    struct Yielding(LocalHss);

    impl CxClient for Yielding {
        async fn uar(
            &self,
            impi: &str,
            impu: &str,
            auth_type: crate::hss::UserAuthorizationType,
        ) -> Result<crate::hss::UaaDecision, CxFailure> {
            tokio::task::yield_now().await;
            self.0.uar(impi, impu, auth_type).await
        }
        async fn mar(&self, q: MarQuery) -> Result<crate::cx::MaaAnswer, CxFailure> {
            tokio::task::yield_now().await;
            self.0.mar(q).await
        }
        async fn sar(&self, q: SarQuery) -> Result<crate::hss::SaaDecision, CxFailure> {
            tokio::task::yield_now().await;
            self.0.sar(q).await
        }
        async fn lir(&self, impu: &str) -> Result<crate::hss::LiaDecision, CxFailure> {
            tokio::task::yield_now().await;
            self.0.lir(impu).await
        }
    }

    /// Nothing kept per registered user for its nonce: the counts of the answers being
    /// registered are forgotten when the registration is done.
    fn no_counts_left<C>(s: &Scscf<C, MemoryStore>) {
        assert_eq!(s.counts.lock().unwrap().len(), 0);
    }

    /// The status of a response and whether it is a 401 with `stale=true`.
    fn status_stale(o: &RegisterOutcome) -> (u16, bool) {
        let www = header(&o.response, "WWW-Authenticate");
        (o.status, www.is_some_and(|w| w.contains("stale=true")))
    }

    /// An AKA challenge (a REGISTER without credentials, CSeq `cseq`) and the UE's answer to
    /// it (CSeq `cseq + 1`).
    async fn challenged_answer<C: CxClient>(
        s: &Scscf<C, MemoryStore>,
        usim: &mut Usim,
        cseq: u32,
        now: u64,
    ) -> Vec<u8> {
        let r = register(cseq, None, 600);
        let o = s
            .register(&ims_sip::parse_datagram(&r).unwrap(), now, [cseq as u8; 16])
            .await;
        assert_eq!(o.status, 401);
        let www = header(&o.response, "WWW-Authenticate").unwrap();
        let (creds, keys) =
            digest::answer_aka(&Challenge::parse(&www).unwrap(), usim, IMPI, &REQ).unwrap();
        assert!(keys.is_some());
        register(cseq + 1, Some(&creds.to_string()), 600)
    }

    #[test]
    fn an_answer_registers_once_however_often_and_however_concurrently_it_comes() {
        let now = 1_700_000_000;
        let mut usim = Usim::new(
            Milenage::new(&K, OperatorKey::Op(OP)),
            aka::DEFAULT_IND_BITS,
        );
        // in sequence: the copy finds no challenge pending and is challenged afresh (not stale)
        let s = scscf();
        let r2 = block_on(challenged_answer(&s, &mut usim, 1, now));
        let m2 = ims_sip::parse_datagram(&r2).unwrap();
        assert_eq!(
            status_stale(&block_on(s.register(&m2, now, [2; 16]))),
            (200, false)
        );
        no_counts_left(&s);
        assert_eq!(
            status_stale(&block_on(s.register(&m2, now, [3; 16]))),
            (401, false)
        );
        // …also once the nonce has expired
        assert_eq!(
            status_stale(&block_on(s.register(&m2, now + 400, [4; 16]))),
            (401, false)
        );
        no_counts_left(&s);

        // two copies at once on one executor, interleaving at each Cx request (the first is in
        // its SAR when the second arrives): one 200, the other a fresh challenge
        let s = scscf_over(Yielding);
        // (a new HSS: its SQNs start again, so does the USIM)
        let mut usim = Usim::new(
            Milenage::new(&K, OperatorKey::Op(OP)),
            aka::DEFAULT_IND_BITS,
        );
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        for round in 0..4u32 {
            let r = rt.block_on(challenged_answer(&s, &mut usim, 10 * round + 1, now));
            let m = ims_sip::parse_datagram(&r).unwrap();
            let (a, b) = rt.block_on(async {
                tokio::join!(
                    s.register(&m, now, [0xa0; 16]),
                    s.register(&m, now, [0xb0; 16])
                )
            });
            let mut got = [status_stale(&a), status_stale(&b)];
            got.sort();
            assert_eq!(got, [(200, false), (401, false)], "round {round}");
            no_counts_left(&s);
        }

        // two copies on two threads at the same moment, many times: never two 200s
        let s = Arc::new(scscf());
        let mut usim = Usim::new(
            Milenage::new(&K, OperatorKey::Op(OP)),
            aka::DEFAULT_IND_BITS,
        );
        for round in 0..200u32 {
            let r = block_on(challenged_answer(&s, &mut usim, 10 * round + 1, now));
            let go = Arc::new(std::sync::Barrier::new(2));
            let copies: Vec<_> = (0..2u8)
                .map(|i| {
                    let (s, r, go) = (s.clone(), r.clone(), go.clone());
                    std::thread::spawn(move || {
                        let m = ims_sip::parse_datagram(&r).unwrap();
                        go.wait();
                        status_stale(&block_on(s.register(&m, now, [0xc0 + i; 16])))
                    })
                })
                .collect();
            let mut got: Vec<_> = copies.into_iter().map(|t| t.join().unwrap()).collect();
            got.sort();
            assert_eq!(got, [(200, false), (401, false)], "round {round}");
            no_counts_left(&s);
        }
    }

    #[test]
    fn an_answer_comes_once_per_challenge_and_stale_only_while_it_is_pending() {
        let s = scscf();
        let now = 1_700_000_000;
        let first = format!(
            "Digest username=\"{IMPI}\",realm=\"ims.example.org\",nonce=\"\",uri=\"sip:ims.example.org\",response=\"\",algorithm=MD5"
        );
        let digest_challenge = |cseq: u32, salt: u8| {
            let o = block_on(s.register(
                &ims_sip::parse_datagram(&register(cseq, Some(&first), 600)).unwrap(),
                now,
                [salt; 16],
            ));
            assert_eq!(o.status, 401);
            Challenge::parse(&header(&o.response, "WWW-Authenticate").unwrap())
                .unwrap()
                .into_owned()
        };
        // MD5 digest: answered, registered, nothing kept
        let ch1 = digest_challenge(1, 9);
        let good1 = register(
            2,
            Some(
                &digest::answer(&ch1, IMPI, b"secret", &REQ)
                    .unwrap()
                    .to_string(),
            ),
            600,
        );
        let m1 = ims_sip::parse_datagram(&good1).unwrap();
        assert_eq!(
            status_stale(&block_on(s.register(&m1, now, [1; 16]))),
            (200, false)
        );
        no_counts_left(&s);
        // a new challenge to the same user, within the first nonce's lifetime: the first answer
        // (its nonce still valid, its counts forgotten) is no answer to it
        let ch2 = digest_challenge(3, 8);
        assert_eq!(
            status_stale(&block_on(s.register(&m1, now + 1, [2; 16]))),
            (401, false)
        );
        assert!(block_on(s.store().load(IMPU)).unwrap().unwrap().bindings[0].cseq == 2);
        // (that 401 challenged afresh: the answer to the second challenge came too late)
        let good2 = register(
            4,
            Some(
                &digest::answer(&ch2, IMPI, b"secret", &REQ)
                    .unwrap()
                    .to_string(),
            ),
            600,
        );
        let m2 = ims_sip::parse_datagram(&good2).unwrap();
        assert_eq!(
            status_stale(&block_on(s.register(&m2, now + 1, [3; 16]))),
            (401, false)
        );
        no_counts_left(&s);

        // AKA: an answer after the nonce's lifetime, its challenge still pending: stale
        let mut usim = Usim::new(
            Milenage::new(&K, OperatorKey::Op(OP)),
            aka::DEFAULT_IND_BITS,
        );
        let late = block_on(challenged_answer(&s, &mut usim, 10, now));
        let m = ims_sip::parse_datagram(&late).unwrap();
        assert_eq!(
            status_stale(&block_on(s.register(&m, now + 300, [4; 16]))),
            (401, true)
        );
        // …and once more: the stale 401 replaced the challenge, so now it is no answer at all
        assert_eq!(
            status_stale(&block_on(s.register(&m, now + 300, [5; 16]))),
            (401, false)
        );
        no_counts_left(&s);
    }

    fn register(cseq: u32, auth: Option<&str>, expires: u32) -> Vec<u8> {
        let auth = auth.map_or(String::new(), |a| format!("Authorization: {a}\r\n"));
        format!(
            "REGISTER sip:ims.example.org SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK-{cseq}\r\n\
Max-Forwards: 70\r\nFrom: <{IMPU}>;tag=f1\r\nTo: <{IMPU}>\r\nCall-ID: reg1\r\nCSeq: {cseq} REGISTER\r\n\
Contact: <sip:ue@10.0.0.1:5060>;expires={expires}\r\nPath: <sip:term@pcscf.ims.example.org;lr>\r\n{auth}\
Content-Length: 0\r\n\r\n"
        )
        .into_bytes()
    }

    fn header(resp: &OwnedMessage, name: &str) -> Option<String> {
        crate::test_util::checked(resp)
            .header_str(name)
            .map(str::to_string)
    }

    const REQ: Request<'static> = Request {
        method: "REGISTER",
        uri: "sip:ims.example.org",
        body: b"",
        cnonce: "c0ffee",
        nc: 1,
    };

    #[test]
    fn aka_registration_reregistration_and_deregistration() {
        let s = scscf();
        let now = 1_700_000_000;
        let r1 = register(1, None, 600);
        let o = block_on(s.register(&ims_sip::parse_datagram(&r1).unwrap(), now, [1; 16]));
        assert_eq!(o.status, 401);
        let www = header(&o.response, "WWW-Authenticate").unwrap();
        assert!(www.contains("algorithm=AKAv1-MD5"));
        assert!(www.contains("ik=\""));
        // the UE answers with RES
        let mut usim = Usim::new(
            Milenage::new(&K, OperatorKey::Op(OP)),
            aka::DEFAULT_IND_BITS,
        );
        let (creds, _) =
            digest::answer_aka(&Challenge::parse(&www).unwrap(), &mut usim, IMPI, &REQ).unwrap();
        let r2 = register(2, Some(&creds.to_string()), 600);
        let o = block_on(s.register(&ims_sip::parse_datagram(&r2).unwrap(), now, [2; 16]));
        assert_eq!(
            o.status,
            200,
            "{}",
            String::from_utf8_lossy(o.response.bytes())
        );
        let m = crate::test_util::checked(&o.response);
        assert_eq!(
            m.header_str("Service-Route"),
            Some("<sip:orig@scscf.ims.example.org:6060;lr>")
        );
        assert_eq!(
            m.header_str("Path"),
            Some("<sip:term@pcscf.ims.example.org;lr>")
        );
        let pau = m.header_str("P-Associated-URI").unwrap();
        assert!(pau.starts_with(&format!("<{IMPU}>")));
        assert!(pau.contains("<tel:+15550001>") && pau.contains("<sip:barred@ims.example.org>"));
        assert_eq!(
            m.header_str("Contact"),
            Some("<sip:ue@10.0.0.1:5060>;expires=600")
        );
        assert!(matches!(
            o.event,
            Some(RegEvent::Registered { initial: true, .. })
        ));
        // registered by any identity of the implicit set
        let rec = block_on(s.store().load("tel:+15550001")).unwrap().unwrap();
        assert_eq!(rec.barred, ["sip:barred@ims.example.org"]);
        // the same credentials again are a replay: refused
        let o = block_on(s.register(&ims_sip::parse_datagram(&r2).unwrap(), now, [3; 16]));
        assert_ne!(o.status, 200);

        // re-registration: challenge again, then RE_REGISTRATION
        let r3 = register(3, None, 600);
        let o = block_on(s.register(&ims_sip::parse_datagram(&r3).unwrap(), now + 100, [4; 16]));
        let www = header(&o.response, "WWW-Authenticate").unwrap();
        let (creds, _) =
            digest::answer_aka(&Challenge::parse(&www).unwrap(), &mut usim, IMPI, &REQ).unwrap();
        let r4 = register(4, Some(&creds.to_string()), 600);
        let o = block_on(s.register(&ims_sip::parse_datagram(&r4).unwrap(), now + 100, [5; 16]));
        assert_eq!(o.status, 200);
        assert!(matches!(
            o.event,
            Some(RegEvent::Registered { initial: false, .. })
        ));
        // the HSS sent no profile this time (user data already available): the stored profile,
        // implicit set and barring are kept as they were
        let again = block_on(s.store().load_shared("tel:+15550001"))
            .unwrap()
            .unwrap();
        assert_eq!(again.implicit_set, rec.implicit_set);
        assert_eq!(again.barred, rec.barred);
        assert!(again.user_data.is_some());
        assert_eq!(again.user_data, rec.user_data);
        assert_eq!(again.bindings[0].cseq, 4);

        // de-registration
        let r5 = register(5, None, 0);
        let o = block_on(s.register(&ims_sip::parse_datagram(&r5).unwrap(), now + 200, [6; 16]));
        let www = header(&o.response, "WWW-Authenticate").unwrap();
        let (creds, _) =
            digest::answer_aka(&Challenge::parse(&www).unwrap(), &mut usim, IMPI, &REQ).unwrap();
        let r6 = register(6, Some(&creds.to_string()), 0);
        let o = block_on(s.register(&ims_sip::parse_datagram(&r6).unwrap(), now + 200, [7; 16]));
        assert_eq!(o.status, 200);
        assert!(matches!(o.event, Some(RegEvent::Deregistered { .. })));
        assert!(block_on(s.store().load(IMPU)).unwrap().is_none());
        let hss = s.cx().hss().lock().unwrap();
        assert_eq!(
            hss.registration(IMPI).unwrap().0,
            crate::hss::RegistrationState::NotRegistered
        );
    }

    /// `integrity_protected` as it was (a lowercased copy of each value): the oracle below.
    fn integrity_protected_with_copies(auth: &str) -> bool {
        auth.split(',').any(|p| {
            let p = p.trim();
            let p = p
                .get(..7)
                .filter(|d| d.eq_ignore_ascii_case("digest "))
                .map_or(p, |_| p[7..].trim_start());
            p.split_once('=').is_some_and(|(k, v)| {
                k.trim().eq_ignore_ascii_case("integrity-protected")
                    && matches!(
                        v.trim().trim_matches('"').to_ascii_lowercase().as_str(),
                        "yes" | "tls-connected"
                    )
            })
        })
    }

    #[test]
    fn integrity_protected_answers_as_with_lowercased_copies() {
        for v in [
            "yes",
            "YES",
            "\"Yes\"",
            "\"tls-connected\"",
            "TLS-Connected",
            "no",
            "\"no\"",
            "",
            "\"\"",
            "y\u{e9}s",
            "\"yes",
            "yes\"\"",
            " \t yes ",
            "ye s",
            "\u{130}yes",
            "tls-connected2",
        ] {
            for auth in [
                format!("Digest username=\"u\", integrity-protected={v}"),
                format!("Digest integrity-protected={v}, realm=\"r\""),
                format!("digest   Integrity-Protected = {v}"),
                format!("Digest realm=\"a,b\",integrity-protected={v},nonce=\"n\""),
                format!("integrity-protected={v}"),
                format!("Digest integrity-protected {v}"),
            ] {
                assert_eq!(
                    integrity_protected(&auth),
                    integrity_protected_with_copies(&auth),
                    "{auth}"
                );
            }
        }
        assert!(integrity_protected("Digest integrity-protected=\"yes\""));
        assert!(!integrity_protected("Digest integrity-protected=\"no\""));
    }

    proptest::proptest! {
        #[test]
        fn integrity_protected_answers_as_with_lowercased_copies_on_any_text(
            auth in "[ ,=\"a-zA-Z\u{e9}\u{130}\t-]{0,40}(integrity-protected|INTEGRITY-PROTECTED)?[ =\"]{0,3}(yes|YeS|tls-connected|no)?[ ,\"a-z]{0,10}"
        ) {
            proptest::prop_assert_eq!(integrity_protected(&auth), integrity_protected_with_copies(&auth));
        }
    }

    #[test]
    fn an_integrity_protected_register_is_not_challenged_again_unless_policy_says_so() {
        for every in [false, true] {
            let s = scscf().reauthenticate_protected(every);
            let now = 1_700_000_000;
            let mut usim = Usim::new(
                Milenage::new(&K, OperatorKey::Op(OP)),
                aka::DEFAULT_IND_BITS,
            );
            // an unprotected REGISTER claiming integrity protection (the P-CSCF strips a
            // UE-written one; here none is registered yet): challenged all the same
            let claim = format!(
                "Digest username=\"{IMPI}\",realm=\"ims.example.org\",nonce=\"\",uri=\"sip:ims.example.org\",response=\"\",algorithm=AKAv1-MD5,integrity-protected=\"yes\""
            );
            let r1 = register(1, Some(&claim), 600);
            let o = block_on(s.register(&ims_sip::parse_datagram(&r1).unwrap(), now, [1; 16]));
            assert_eq!(o.status, 401, "not registered: authenticate first");
            let www = header(&o.response, "WWW-Authenticate").unwrap();
            let (creds, _) =
                digest::answer_aka(&Challenge::parse(&www).unwrap(), &mut usim, IMPI, &REQ)
                    .unwrap();
            let r2 = register(
                2,
                Some(&format!("{creds},integrity-protected=\"yes\"")),
                600,
            );
            let o = block_on(s.register(&ims_sip::parse_datagram(&r2).unwrap(), now, [2; 16]));
            assert_eq!(o.status, 200);
            // re-registration over the SAs (the P-CSCF wrote integrity-protected="yes"), the
            // old credentials repeated as TS 24.229 §5.1.1.4.1 has the UE do
            let rereg = format!("{creds},integrity-protected=\"yes\"");
            let r3 = register(3, Some(&rereg), 900);
            let o = block_on(s.register(&ims_sip::parse_datagram(&r3).unwrap(), now + 60, [3; 16]));
            if every {
                assert_eq!(o.status, 401, "policy: re-authenticate every REGISTER");
                continue;
            }
            assert_eq!(
                o.status,
                200,
                "{}",
                String::from_utf8_lossy(o.response.bytes())
            );
            assert!(matches!(
                o.event,
                Some(RegEvent::Registered { initial: false, .. })
            ));
            let rec = block_on(s.store().load(IMPU)).unwrap().unwrap();
            assert_eq!(rec.bindings[0].expires_at, now + 60 + 900);
            // not protected: challenged
            let r4 = register(4, Some(&format!("{creds},integrity-protected=\"no\"")), 900);
            let o = block_on(s.register(&ims_sip::parse_datagram(&r4).unwrap(), now + 70, [4; 16]));
            assert_eq!(o.status, 401);
            // while that challenge is pending (reg-await-auth), a protected one is challenged
            // too (TS 24.229 §5.4.1.2.2 applies only with no authentication ongoing)
            let r5 = register(5, Some(&rereg), 900);
            let o = block_on(s.register(&ims_sip::parse_datagram(&r5).unwrap(), now + 71, [5; 16]));
            assert_ne!(o.status, 200);
        }
        // de-registration over the SAs, no authentication ongoing: no challenge either
        let s = scscf();
        let now = 1_700_000_000;
        let mut usim = Usim::new(
            Milenage::new(&K, OperatorKey::Op(OP)),
            aka::DEFAULT_IND_BITS,
        );
        let o = block_on(s.register(
            &ims_sip::parse_datagram(&register(1, None, 600)).unwrap(),
            now,
            [1; 16],
        ));
        let www = header(&o.response, "WWW-Authenticate").unwrap();
        let (creds, _) =
            digest::answer_aka(&Challenge::parse(&www).unwrap(), &mut usim, IMPI, &REQ).unwrap();
        let auth = format!("{creds},integrity-protected=\"yes\"");
        let o = block_on(s.register(
            &ims_sip::parse_datagram(&register(2, Some(&auth), 600)).unwrap(),
            now,
            [2; 16],
        ));
        assert_eq!(o.status, 200);
        let o = block_on(s.register(
            &ims_sip::parse_datagram(&register(3, Some(&auth), 0)).unwrap(),
            now + 5,
            [3; 16],
        ));
        assert_eq!(o.status, 200);
        assert!(matches!(o.event, Some(RegEvent::Deregistered { .. })));
    }

    #[test]
    fn wrong_password_is_403_and_digest_md5_works() {
        let s = scscf();
        let now = 1_700_000_000;
        // ask for MD5 digest explicitly (an Authorization without response)
        let first = format!(
            "Digest username=\"{IMPI}\",realm=\"ims.example.org\",nonce=\"\",uri=\"sip:ims.example.org\",response=\"\",algorithm=MD5"
        );
        let r1 = register(1, Some(&first), 600);
        let o = block_on(s.register(&ims_sip::parse_datagram(&r1).unwrap(), now, [9; 16]));
        assert_eq!(o.status, 401);
        let www = header(&o.response, "WWW-Authenticate").unwrap();
        assert!(www.contains("algorithm=MD5"));
        let ch = Challenge::parse(&www).unwrap();
        let bad = digest::answer(&ch, IMPI, b"wrong", &REQ).unwrap();
        let r2 = register(2, Some(&bad.to_string()), 600);
        let o = block_on(s.register(&ims_sip::parse_datagram(&r2).unwrap(), now, [9; 16]));
        assert_eq!(o.status, 403);
        // challenge again and answer right
        let o = block_on(s.register(
            &ims_sip::parse_datagram(&register(3, Some(&first), 600)).unwrap(),
            now,
            [8; 16],
        ));
        let ch = Challenge::parse(&header(&o.response, "WWW-Authenticate").unwrap())
            .unwrap()
            .into_owned();
        let good = digest::answer(&ch, IMPI, b"secret", &REQ).unwrap();
        let o = block_on(s.register(
            &ims_sip::parse_datagram(&register(4, Some(&good.to_string()), 600)).unwrap(),
            now,
            [7; 16],
        ));
        assert_eq!(
            o.status,
            200,
            "{}",
            String::from_utf8_lossy(o.response.bytes())
        );
    }

    #[test]
    fn aka_resync_and_unknown_user() {
        let s = scscf();
        let now = 1_700_000_000;
        let o = block_on(s.register(
            &ims_sip::parse_datagram(&register(1, None, 600)).unwrap(),
            now,
            [1; 16],
        ));
        let www = header(&o.response, "WWW-Authenticate").unwrap();
        // a USIM that has seen a higher SQN answers with AUTS
        let mut ms = aka::SqnMs::new(aka::DEFAULT_IND_BITS);
        ms.accept(aka::Sqn::from_parts(500, 0, aka::DEFAULT_IND_BITS));
        let mut usim = Usim::with_sqn(Milenage::new(&K, OperatorKey::Op(OP)), ms);
        let (creds, keys) =
            digest::answer_aka(&Challenge::parse(&www).unwrap(), &mut usim, IMPI, &REQ).unwrap();
        assert!(keys.is_none(), "sync failure gives no keys");
        assert!(creds.to_string().contains("auts="));
        let o = block_on(s.register(
            &ims_sip::parse_datagram(&register(2, Some(&creds.to_string()), 600)).unwrap(),
            now,
            [2; 16],
        ));
        assert_eq!(o.status, 401, "resync gives a fresh challenge");
        let www = header(&o.response, "WWW-Authenticate").unwrap();
        let (creds, keys) =
            digest::answer_aka(&Challenge::parse(&www).unwrap(), &mut usim, IMPI, &REQ).unwrap();
        assert!(
            keys.is_some(),
            "the re-synchronised vector is fresh for the USIM"
        );
        let o = block_on(s.register(
            &ims_sip::parse_datagram(&register(3, Some(&creds.to_string()), 600)).unwrap(),
            now,
            [3; 16],
        ));
        assert_eq!(o.status, 200);

        let unknown = String::from_utf8(register(1, None, 600))
            .unwrap()
            .replace(IMPU, "sip:nobody@ims.example.org");
        let o = block_on(s.register(
            &ims_sip::parse_datagram(unknown.as_bytes()).unwrap(),
            now,
            [1; 16],
        ));
        assert_eq!(o.status, 403);
    }

    /// Registers IMPU with AKA at `now` for `expires` seconds (with `extra` headers).
    fn registered(
        s: &Scscf<LocalHss, MemoryStore>,
        now: u64,
        expires: u32,
        extra: &str,
    ) -> Vec<u8> {
        let with = |cseq: u32, auth: Option<&str>| {
            let r = String::from_utf8(register(cseq, auth, expires)).unwrap();
            r.replace(
                "Content-Length: 0\r\n",
                &format!("{extra}Content-Length: 0\r\n"),
            )
            .into_bytes()
        };
        let r1 = with(1, None);
        let o = block_on(s.register(&ims_sip::parse_datagram(&r1).unwrap(), now, [1; 16]));
        let www = header(&o.response, "WWW-Authenticate").unwrap();
        let mut usim = Usim::new(
            Milenage::new(&K, OperatorKey::Op(OP)),
            aka::DEFAULT_IND_BITS,
        );
        let (creds, _) =
            digest::answer_aka(&Challenge::parse(&www).unwrap(), &mut usim, IMPI, &REQ).unwrap();
        let r2 = with(2, Some(&creds.to_string()));
        let o = block_on(s.register(&ims_sip::parse_datagram(&r2).unwrap(), now, [2; 16]));
        assert_eq!(
            o.status,
            200,
            "{}",
            String::from_utf8_lossy(o.response.bytes())
        );
        crate::test_util::checked(&o.response);
        o.response.bytes().to_vec()
    }

    fn hss_state(s: &Scscf<LocalHss, MemoryStore>) -> crate::hss::RegistrationState {
        s.cx().hss().lock().unwrap().registration(IMPI).unwrap().0
    }

    #[test]
    fn registration_timer_sends_timeout_deregistration() {
        let s = scscf();
        let now = 1_700_000_000;
        registered(&s, now, 600, "");
        assert_eq!(s.registrations(), 1);
        assert_eq!(s.next_expiry(), Some(now + 600));
        // nothing is due a second early
        assert!(block_on(s.expire(now + 599)).is_empty());
        assert!(block_on(s.store().load(IMPU)).unwrap().is_some());
        let ev = block_on(s.expire(now + 600));
        assert_eq!(ev.len(), 1);
        match &ev[0] {
            RegEvent::Expired { record, expired } => {
                assert!(record.bindings.is_empty());
                assert_eq!(expired.len(), 1);
                assert_eq!(expired[0].uri, "sip:ue@10.0.0.1:5060");
            }
            e => panic!("{e:?}"),
        }
        assert!(ev[0].is_deregistration());
        // the store and the HSS (SAR TIMEOUT_DEREGISTRATION) forgot it
        assert!(block_on(s.store().load("tel:+15550001")).unwrap().is_none());
        assert_eq!(hss_state(&s), crate::hss::RegistrationState::NotRegistered);
        assert_eq!(s.registrations(), 0);
        assert_eq!(s.next_expiry(), None);
    }

    #[test]
    fn rtr_removes_registrations_and_ppr_replaces_the_profile() {
        let s = scscf();
        let now = 1_700_000_000;
        let reason = DeregistrationReason {
            code: 2,
            info: Some("moved".into()),
        };
        // nothing registered: DIAMETER_ERROR_USER_UNKNOWN
        assert_eq!(
            block_on(s.terminate(IMPI, &[], reason.clone())).unwrap_err(),
            result::USER_UNKNOWN
        );
        assert_eq!(
            block_on(s.push_profile(IMPI, None, Some("ccf=x"))).unwrap_err(),
            result::USER_UNKNOWN
        );
        registered(&s, now, 600, "");
        // PPR: a new profile without the barred identity, and charging information
        let mut sub = s
            .cx()
            .hss()
            .lock()
            .unwrap()
            .subscriber(IMPI)
            .unwrap()
            .subscription
            .clone();
        sub.service_profiles[0].public_identities.pop();
        let xml = sub.to_xml();
        let recs = block_on(s.push_profile(IMPI, Some(&xml), Some("ccf=aaa://ccf"))).unwrap();
        assert_eq!(recs.len(), 1);
        let rec = block_on(s.store().load(IMPU)).unwrap().unwrap();
        assert_eq!(rec.user_data.as_deref(), Some(xml.as_str()));
        assert_eq!(rec.charging.as_deref(), Some("ccf=aaa://ccf"));
        assert!(rec.barred.is_empty());
        assert!(block_on(s.store().load("sip:barred@ims.example.org"))
            .unwrap()
            .is_none());
        assert_eq!(
            block_on(s.push_profile(IMPI, Some("<nope"), None)).unwrap_err(),
            result::UNABLE_TO_COMPLY
        );
        // RTR for another IMPI: unknown; for ours (by IMPU of the implicit set): removed
        assert_eq!(
            block_on(s.terminate("x@y", &["tel:+15550001".into()], reason.clone())).unwrap_err(),
            result::USER_UNKNOWN
        );
        let ev = block_on(s.terminate(IMPI, &["tel:+15550001".into()], reason.clone())).unwrap();
        assert_eq!(ev.len(), 1);
        assert!(matches!(&ev[0], RegEvent::Terminated { reason: r, .. } if r.reregister()));
        assert!(block_on(s.store().load(IMPU)).unwrap().is_none());
        assert_eq!(s.registrations(), 0);
        // a call now finds nobody (the S-CSCF's routing answers 480 on an empty store)
        assert_eq!(
            block_on(s.terminate(IMPI, &[], reason)).unwrap_err(),
            result::USER_UNKNOWN
        );
    }

    #[test]
    fn gruu_in_the_200_only_when_supported_with_an_instance() {
        let s = scscf();
        let now = 1_700_000_000;
        let resp = registered(&s, now, 600, "");
        assert!(!String::from_utf8_lossy(&resp).contains("gruu="));
        let s = scscf();
        let resp = registered(&s, now, 600, "Supported: gruu\r\n");
        // no +sip.instance: no GRUU
        assert!(!String::from_utf8_lossy(&resp).contains("gruu="));
        let s = scscf();
        let instance = "Supported: path, gruu\r\n";
        let resp = {
            // the Contact with an instance-id (RFC 5627 §4.1)
            let with = |cseq: u32, auth: Option<&str>| {
                String::from_utf8(register(cseq, auth, 600))
                    .unwrap()
                    .replace(
                        "Contact: <sip:ue@10.0.0.1:5060>;expires=600",
                        "Contact: <sip:ue@10.0.0.1:5060>;+sip.instance=\"<urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6>\";expires=600",
                    )
                    .replace("Content-Length: 0\r\n", &format!("{instance}Content-Length: 0\r\n"))
                    .into_bytes()
            };
            let o = block_on(s.register(
                &ims_sip::parse_datagram(&with(1, None)).unwrap(),
                now,
                [1; 16],
            ));
            let www = header(&o.response, "WWW-Authenticate").unwrap();
            let mut usim = Usim::new(
                Milenage::new(&K, OperatorKey::Op(OP)),
                aka::DEFAULT_IND_BITS,
            );
            let (creds, _) =
                digest::answer_aka(&Challenge::parse(&www).unwrap(), &mut usim, IMPI, &REQ)
                    .unwrap();
            let o = block_on(s.register(
                &ims_sip::parse_datagram(&with(2, Some(&creds.to_string()))).unwrap(),
                now,
                [2; 16],
            ));
            assert_eq!(o.status, 200);
            o.response
        };
        let contact = header(&resp, "Contact").unwrap();
        assert!(
            contact.contains(&format!(
                "pub-gruu=\"{IMPU};gr=urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6\""
            )),
            "{contact}"
        );
        let t = s.temp_gruu(
            IMPU,
            "<urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6>",
            "reg1",
        );
        assert!(t.starts_with("sip:tgruu.") && t.ends_with("@ims.example.org;gr"));
        assert!(contact.contains(&format!("temp-gruu=\"{t}\"")), "{contact}");
        assert_ne!(
            t,
            s.temp_gruu(
                IMPU,
                "<urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6>",
                "reg2"
            )
        );
        assert!(header(&resp, "Supported").unwrap().contains("gruu"));
    }

    #[test]
    fn third_party_register_per_matching_ifc() {
        use crate::subscription::{
            ApplicationServer, InitialFilterCriteria, Spt, SptKind, TriggerPoint,
        };
        let s = scscf();
        let now = 1_700_000_000;
        // the subscriber gets two iFCs: REGISTER to an IM server (with the REGISTER and the
        // 200 included, SESSION_TERMINATED) and MESSAGE to another AS
        {
            let mut hss = s.cx().hss().lock().unwrap();
            let mut sub = hss.subscriber(IMPI).unwrap().subscription.clone();
            let mut reg = Spt::new(SptKind::Method("REGISTER".into()));
            reg.groups = vec![0];
            let mut msg = Spt::new(SptKind::Method("MESSAGE".into()));
            msg.groups = vec![0];
            let mut im = ApplicationServer::new("sip:127.0.0.1:7070".to_string());
            im.default_handling = DefaultHandling::SessionTerminated;
            im.include_register_request = true;
            im.include_register_response = true;
            sub.service_profiles[0].initial_filter_criteria = vec![
                InitialFilterCriteria {
                    priority: 1,
                    trigger_point: Some(TriggerPoint {
                        condition_type_cnf: false,
                        spts: vec![reg],
                    }),
                    application_server: im,
                    profile_part_indicator: None,
                },
                InitialFilterCriteria {
                    priority: 2,
                    trigger_point: Some(TriggerPoint {
                        condition_type_cnf: false,
                        spts: vec![msg],
                    }),
                    application_server: ApplicationServer::new("sip:127.0.0.1:7071".to_string()),
                    profile_part_indicator: None,
                },
            ];
            hss.update_profile(sub);
        }
        let r2 = String::from_utf8(register(9, None, 600)).unwrap();
        let resp = registered(&s, now, 600, "");
        let rec = block_on(s.store().load(IMPU)).unwrap().unwrap();
        // the UE's REGISTER as the P-CSCF passed it on, and charging addresses from the HSS
        let r2 = r2.replacen(
            "\r\n",
            "\r\nP-Charging-Vector: icid-value=\"pcscf-77\";icid-generated-at=pcscf\r\n",
            1,
        );
        let mut rec = rec;
        rec.charging = Some("ecf=aaa://ecf.ims.example.org;ccf=aaa://ccf.ims.example.org".into());
        let ev = RegEvent::Registered {
            initial: true,
            record: rec.clone(),
        };
        let req = ims_sip::parse_datagram(r2.as_bytes()).unwrap();
        let t = s.third_party_registers(&ev, Some((&req, &resp)), now + 10, "c1");
        assert_eq!(t.len(), 1, "only the REGISTER iFC matches");
        assert_eq!(t[0].server_name, "sip:127.0.0.1:7070");
        assert_eq!(t[0].default_handling, DefaultHandling::SessionTerminated);
        assert!(!t[0].deregistration);
        let text = crate::test_util::checked_text(&t[0].request);
        assert!(
            text.starts_with("REGISTER sip:127.0.0.1:7070 SIP/2.0\r\n"),
            "{text}"
        );
        {
            // the request as it was written with `format!`
            let old_tag = |s: &str| {
                let mut h: u32 = 0x811c_9dc5;
                for b in s.bytes() {
                    h ^= u32::from(b);
                    h = h.wrapping_mul(0x0100_0193);
                }
                format!("{h:x}")
            };
            let cfg = s.config();
            let dialog = old_tag(&format!(
                "{}|{}|{}",
                rec.impu, "sip:127.0.0.1:7070", cfg.server_name
            ));
            let cseq = text
                .split("\r\nCSeq: ")
                .nth(1)
                .unwrap()
                .split(' ')
                .next()
                .unwrap();
            let mut m = format!(
                "REGISTER {as_} SIP/2.0\r\nMax-Forwards: 70\r\nFrom: <{me}>;tag=3pr{tag}\r\nTo: <{impu}>\r\n\
Call-ID: 3pr-{dialog}@{realm}\r\nCSeq: {cseq} REGISTER\r\nContact: <{me}>\r\nExpires: {expires}\r\n\
P-Charging-Vector: icid-value=\"{icid_here}\";orig-ioi={realm}\r\n",
                as_ = "sip:127.0.0.1:7070",
                me = cfg.server_name,
                tag = old_tag("c1"),
                impu = rec.impu,
                realm = cfg.realm,
                expires = 590,
                icid_here = "pcscf-77",
            );
            m.push_str(&format!(
                "P-Charging-Function-Addresses: {}\r\n",
                charging_function_addresses(rec.charging.as_deref().unwrap()).unwrap()
            ));
            let body_at = text.find("\r\n\r\n").unwrap() + 4;
            let ct = text
                .split("\r\nContent-Type: ")
                .nth(1)
                .unwrap()
                .split("\r\n")
                .next()
                .unwrap();
            m.push_str(&format!("Content-Type: {ct}\r\n"));
            m.push_str(&format!("Content-Length: {}\r\n\r\n", text.len() - body_at));
            assert_eq!(&text[..body_at], m);
            // the tag of texts joined by `|`, hashed piece by piece
            for parts in [&["a", "b", "c"][..], &[""], &["", ""], &["sip:x@y|z"]] {
                assert_eq!(short_tag_of(parts), old_tag(&parts.join("|")));
            }
            // and the fallback icid (no P-Charging-Vector in the REGISTER)
            let plain = register(9, None, 600);
            let plain = ims_sip::parse_datagram(&plain).unwrap();
            let t2 = s.third_party_registers(&ev, Some((&plain, &resp)), now + 10, "c1");
            let t2 = crate::test_util::checked_text(&t2[0].request);
            assert!(
                t2.contains("P-Charging-Vector: icid-value=\"c1-0\";orig-ioi="),
                "{t2}"
            );
        }
        // Via is the sender's: the request parses once one is added
        let with_via = text.replacen(
            "\r\n",
            "\r\nVia: SIP/2.0/UDP 127.0.0.1;branch=z9hG4bK1\r\n",
            1,
        );
        let m = ims_sip::parse_datagram(with_via.as_bytes()).unwrap();
        assert_eq!(m.header_str("To"), Some(format!("<{IMPU}>").as_str()));
        assert_eq!(
            m.header_str("Contact"),
            Some("<sip:scscf.ims.example.org:6060>")
        );
        assert_eq!(m.header_str("Expires"), Some("590"));
        // TS 24.229 §5.4.1.7: the REGISTER's icid, our orig-ioi, the charging functions
        assert_eq!(
            m.header_str("P-Charging-Vector"),
            Some("icid-value=\"pcscf-77\";orig-ioi=ims.example.org")
        );
        assert_eq!(
            m.header_str("P-Charging-Function-Addresses"),
            Some("ccf=\"aaa://ccf.ims.example.org\"; ecf=\"aaa://ecf.ims.example.org\"")
        );
        // sent again (after a 503 or no answer): same dialog, a higher CSeq, nothing else changed
        let again = crate::test_util::checked_text(&s.third_party_again(&t[0].request));
        let again = again.replacen(
            "\r\n",
            "\r\nVia: SIP/2.0/UDP 127.0.0.1;branch=z9hG4bK2\r\n",
            1,
        );
        let again_m = ims_sip::parse_datagram(again.as_bytes()).unwrap();
        assert!(again_m.cseq().unwrap().unwrap().seq > m.cseq().unwrap().unwrap().seq);
        assert_eq!(again_m.header_str("Call-ID"), m.header_str("Call-ID"));
        assert_eq!(again_m.body(), m.body());
        assert!(m
            .header_str("Content-Type")
            .unwrap()
            .starts_with("multipart/mixed;boundary="));
        let body = String::from_utf8_lossy(m.body());
        assert!(body.contains("message/sip") && body.contains("REGISTER sip:ims.example.org"));
        assert!(body.contains("SIP/2.0 200"));
        // a network-initiated de-registration: Expires 0, no body
        let ev = RegEvent::Expired {
            record: RegistrationRecord {
                bindings: vec![],
                ..rec.clone()
            },
            expired: rec.bindings.clone(),
        };
        let t = s.third_party_registers(&ev, None, now + 700, "c2");
        assert_eq!(t.len(), 1);
        assert!(t[0].deregistration);
        let text = crate::test_util::checked_text(&t[0].request);
        assert!(
            text.contains("Expires: 0\r\n") && text.ends_with("Content-Length: 0\r\n\r\n"),
            "{text}"
        );
        // an S-CSCF-initiated de-registration tells the HSS
        let ev = block_on(s.deregister(
            IMPU,
            DeregistrationReason {
                code: 0,
                info: None,
            },
        ))
        .unwrap();
        assert!(ev.is_deregistration());
        assert_eq!(hss_state(&s), crate::hss::RegistrationState::NotRegistered);
    }
}
