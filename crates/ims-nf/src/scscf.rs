//! The S-CSCF registrar (TS 24.229 §5.4.1): REGISTER → MAR → 401 (IMS-AKA or digest) →
//! REGISTER with credentials → SAR → 200 with Path, Service-Route and P-Associated-URI; AKA
//! re-synchronisation; re-registration; de-registration by the user.
//!
//! The HSS is reached through a [`CxClient`] and registrations are kept in a [`BindingStore`],
//! so the same code runs with an in-process HSS and memory store (tests) or Diameter and Redis.
//! Time (`now`, seconds since the Unix epoch) and randomness (`salt`) come from the caller.

use crate::cx::{CxClient, CxFailure, MarQuery, SarQuery};
use crate::hss::{AuthItem, AuthScheme, ServerAssignmentType};
use crate::registrar::{self, RegistrarConfig};
use crate::store::{BindingStore, RegState, RegistrationRecord};
use crate::subscription::ImsSubscription;
use ims_auth::digest::{Algorithm, Credentials, DigestServer, NonceCounts, Secret};
use ims_auth::AuthError;
use ims_sip::{HeaderName, Message, ResponseBuilder};
use std::collections::HashMap;
use std::sync::Mutex;
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
}

/// The answer to one REGISTER.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisterOutcome {
    /// The response to send.
    pub response: Vec<u8>,
    /// The status code of `response`.
    pub status: u16,
    /// What changed, when something did.
    pub event: Option<RegEvent>,
}

#[derive(Clone)]
struct Pending {
    rand: Option<[u8; 16]>,
    secret: PendingSecret,
}

#[derive(Clone)]
enum PendingSecret {
    Password(Vec<u8>),
    Ha1(String),
}

/// The S-CSCF registrar.
pub struct Scscf<C, S> {
    cfg: ScscfConfig,
    cx: C,
    store: S,
    digest: DigestServer,
    /// Vectors awaiting the UE's answer, by IMPI (timer reg-await-auth: the nonce lifetime).
    pending: Mutex<HashMap<String, Pending>>,
    counts: Mutex<NonceCounts>,
}

impl<C, S> std::fmt::Debug for Scscf<C, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scscf")
            .field("server_name", &self.cfg.server_name)
            .finish_non_exhaustive()
    }
}

fn reply(req: &Message<'_>, status: u16, extra: &[(&str, String)]) -> RegisterOutcome {
    let mut b = ResponseBuilder::from_request(req, status);
    for (n, v) in extra {
        b = b.header(n, v);
    }
    RegisterOutcome {
        response: b.to_vec(),
        status,
        event: None,
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
            pending: Mutex::new(HashMap::new()),
            counts: Mutex::new(NonceCounts::new(100_000)),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &ScscfConfig {
        &self.cfg
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
        let pending = self
            .pending
            .lock()
            .expect("pending lock is never poisoned")
            .get(&impi)
            .cloned();
        let Some(p) = pending else {
            // not our challenge (or it expired and was dropped): challenge afresh
            return self
                .challenge(req, &impi, &impu, requested, None, false, now_d, salt)
                .await;
        };
        let issued_rand = self
            .digest
            .check_nonce(
                &creds.nonce,
                &creds.realm,
                requested.unwrap_or(Algorithm::Md5),
                now_d,
            )
            .ok()
            .and_then(|n| n.rand());
        if p.rand.is_some() && issued_rand != p.rand {
            return self
                .challenge(req, &impi, &impu, requested, None, false, now_d, salt)
                .await;
        }
        let secret = match &p.secret {
            PendingSecret::Password(pw) => Secret::Password(pw),
            PendingSecret::Ha1(h) => Secret::Ha1(h),
        };
        let verified = {
            let mut counts = self.counts.lock().expect("counts lock is never poisoned");
            self.digest.verify(
                &creds,
                "REGISTER",
                req.body(),
                secret,
                now_d,
                Some(&mut counts),
            )
        };
        match verified {
            Ok(_) => {}
            Err(AuthError::Stale) => {
                return self
                    .challenge(req, &impi, &impu, requested, None, true, now_d, salt)
                    .await
            }
            Err(_) => {
                self.pending
                    .lock()
                    .expect("pending lock is never poisoned")
                    .remove(&impi);
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
        self.pending
            .lock()
            .expect("pending lock is never poisoned")
            .remove(&impi);
        self.bind(req, &impi, &impu, now).await
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
                let ch =
                    match self
                        .digest
                        .aka_challenge(&self.cfg.realm, Algorithm::AkaV1Md5, &av, now)
                    {
                        Ok(c) => c,
                        Err(_) => return reply(req, 500, &[]),
                    };
                // TS 24.229 §5.4.1.2.1: CK and IK go to the P-CSCF in the challenge (it removes
                // them before forwarding to the UE)
                let mut s = ch.to_string();
                s.push_str(&format!(
                    ",ck=\"{}\",ik=\"{}\"",
                    ims_auth::encoding::hex_encode(&av.ck),
                    ims_auth::encoding::hex_encode(&av.ik)
                ));
                (
                    s,
                    Pending {
                        rand: Some(av.rand),
                        secret: PendingSecret::Password(av.xres.to_vec()),
                    },
                )
            }
            AuthItem::Digest { ha1, .. } => {
                let ch = match self
                    .digest
                    .challenge(&self.cfg.realm, Algorithm::Md5, now, &salt)
                {
                    Ok(c) => c,
                    Err(_) => return reply(req, 500, &[]),
                };
                (
                    ch.to_string(),
                    Pending {
                        rand: None,
                        secret: PendingSecret::Ha1(ha1),
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
        let existing = match self.store.load(impu).await {
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
        let user_data = saa
            .user_data
            .or_else(|| existing.as_ref().and_then(|r| r.user_data.clone()));
        let profile = user_data
            .as_deref()
            .and_then(|x| ImsSubscription::from_xml(x.as_bytes()).ok());
        let (implicit_set, barred) = match &profile {
            Some(p) => {
                let mut set: Vec<String> = Vec::new();
                // the registered IMPU first, then the rest of its implicit set
                set.push(impu.to_string());
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
        let mut o = self.ok(req, Some(&rec), &rec.implicit_set, now);
        o.event = Some(RegEvent::Registered {
            initial: !was_registered,
            record: rec,
        });
        o
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
            for b in rec.map(|r| r.bindings.as_slice()).unwrap_or_default() {
                extra.push(("Contact", b.contact_value(now)));
            }
            extra.push(("Supported", "path".into()));
        }
        reply(req, 200, &extra)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cx::LocalHss;
    use crate::hss::{AkaCredentials, Credentials as HssCreds, Hss, Subscriber};
    use crate::store::MemoryStore;
    use crate::subscription::{PublicIdentity, ServiceProfile};
    use ims_auth::aka::{self, Usim};
    use ims_auth::digest::{self, Challenge, Request};
    use ims_auth::milenage::{Milenage, OperatorKey};
    use std::sync::Arc;

    const IMPI: &str = "001010000000001@ims.example.org";
    const IMPU: &str = "sip:001010000000001@ims.example.org";
    const K: [u8; 16] = [0x46; 16];
    const OP: [u8; 16] = [0xcd; 16];

    fn scscf() -> Scscf<LocalHss, MemoryStore> {
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
            cx,
            MemoryStore::new(),
        )
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

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        // the in-process HSS and memory store never pend
        let mut f = std::pin::pin!(f);
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        match f.as_mut().poll(&mut cx) {
            std::task::Poll::Ready(v) => v,
            std::task::Poll::Pending => panic!("in-process futures complete at once"),
        }
    }

    fn header(resp: &[u8], name: &str) -> Option<String> {
        ims_sip::parse_datagram(resp)
            .unwrap()
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
        assert_eq!(o.status, 200, "{}", String::from_utf8_lossy(&o.response));
        let m = ims_sip::parse_datagram(&o.response).unwrap();
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
        assert_eq!(o.status, 200, "{}", String::from_utf8_lossy(&o.response));
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
}
