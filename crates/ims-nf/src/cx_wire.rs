//! Cx on the wire (TS 29.229): the HSS side ([`HssCxServer`] answers UAR, MAR, SAR and LIR octets
//! from an [`Hss`](crate::hss::Hss)) and the CSCF side ([`DiameterCx`], a [`CxClient`] that sends typed requests
//! through any [`DiameterRequester`], e.g. the ims-net Diameter node).

use crate::cx::{CxClient, CxFailure, LocalHss, MaaAnswer, MarQuery, SarQuery};
use crate::hss::{
    result, AuthItem, AuthScheme, CxResult, LiaDecision, SaaDecision, ScscfCapabilities,
    ServerAssignmentType, UaaDecision, UserAuthorizationType,
};
use crate::scscf::{DeregistrationReason, RegEvent, Scscf};
use crate::store::BindingStore;
use ims_auth::aka::AuthVector;
use ims_auth::digest::Algorithm;
use ims_diameter::base::{AuthSessionState, VendorSpecificApplicationId};
use ims_diameter::cx::{
    self, Lia, Lir, Maa, Mar, Ppa, Ppr, Rta, Rtr, Saa, Sar, ServerCapabilities, SipAuthDataItem,
    SipDigestAuthenticate, Uaa, Uar,
};
use ims_diameter::dict::{app, command};
use ims_diameter::{Command, Message, Origin, Outcome};
use std::borrow::Cow;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};

/// Answers Cx requests with an in-process HSS; with an [`SlfTable`] it also acts as the
/// Subscription Locator Function (Dx: TS 29.228, TS 29.229 §6.1): a request for a user that
/// the table assigns to another HSS is answered 3006 DIAMETER_REDIRECT_INDICATION naming it.
#[derive(Debug, Clone)]
pub struct HssCxServer {
    origin_host: String,
    origin_realm: String,
    hss: LocalHss,
    slf: Option<std::sync::Arc<SlfTable>>,
}

/// The SLF's table (TS 23.228 §4.8.1, TS 29.228 Dx): which HSS (its Diameter identity) holds the
/// subscription of a private or public user identity, and how long clients may cache a redirect.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SlfTable {
    users: std::collections::HashMap<String, String>,
    /// Redirect-Max-Cache-Time of the redirects (seconds; 0 sends DONT_CACHE).
    pub cache_time: u32,
}

impl SlfTable {
    /// An empty table whose redirects may be cached for `cache_time` seconds.
    pub fn new(cache_time: u32) -> SlfTable {
        SlfTable {
            users: std::collections::HashMap::new(),
            cache_time,
        }
    }

    /// Assigns an identity (IMPI `user@realm`, or IMPU `sip:`/`tel:` URI) to the HSS `host`.
    pub fn insert(&mut self, identity: &str, host: &str) {
        self.users
            .insert(identity.to_ascii_lowercase(), host.to_string());
    }

    /// The HSS of an identity.
    pub fn lookup(&self, identity: &str) -> Option<&str> {
        self.users
            .get(&identity.to_ascii_lowercase())
            .map(String::as_str)
    }

    /// How many identities it knows.
    pub fn len(&self) -> usize {
        self.users.len()
    }

    /// True when it knows none.
    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }

    /// The HSS of a Cx/Dx request: by User-Name (IMPI) first, else by the first
    /// Public-Identity (LIR, SAR without User-Name).
    pub fn route(&self, request: &Message<'_>) -> Option<&str> {
        let user = request
            .find(ims_diameter::dict::USER_NAME)
            .and_then(|a| a.utf8().ok())
            .and_then(|u| self.lookup(u));
        user.or_else(|| {
            request
                .find_all(ims_diameter::dict::PUBLIC_IDENTITY)
                .filter_map(|a| a.utf8().ok())
                .find_map(|u| self.lookup(u))
        })
    }
}

impl HssCxServer {
    /// An HSS answering as `origin_host` in `origin_realm`.
    pub fn new(origin_host: &str, origin_realm: &str, hss: LocalHss) -> HssCxServer {
        HssCxServer {
            origin_host: origin_host.to_string(),
            origin_realm: origin_realm.to_string(),
            hss,
            slf: None,
        }
    }

    /// Makes this server the SLF too: requests for identities `table` assigns to another HSS are
    /// redirected there (3006 with Redirect-Host `aaa://<host>`, Redirect-Host-Usage ALL_USER
    /// and Redirect-Max-Cache-Time, RFC 6733 §6.13), the others are answered here (an SLF
    /// without subscribers answers 5001 DIAMETER_ERROR_USER_UNKNOWN).
    pub fn with_slf(mut self, table: SlfTable) -> HssCxServer {
        self.slf = Some(std::sync::Arc::new(table));
        self
    }

    /// The in-process HSS (for provisioning, RTR and PPR triggers).
    pub fn hss(&self) -> &LocalHss {
        &self.hss
    }

    /// The answer to one request's octets. A faulty request gets the protocol or permanent
    /// failure answer RFC 6733 §7 asks for (with Failed-AVP); `None` when there is nothing to
    /// answer (an answer, or octets too short to be a message).
    pub async fn answer(&self, request: &[u8]) -> Option<Vec<u8>> {
        let origin = Origin {
            host: &self.origin_host,
            realm: &self.origin_realm,
            state_id: None,
        };
        // the four requests answered here are checked and decoded in one walk of their octets
        // (`Command::decode_message`: the header and AVP checks of `Message::parse` and the
        // grammar of the typed decoder, with the errors `answer::reject` finds for them);
        // anything else takes the checks of `reject` and is answered only when faulty
        let code = ims_diameter::Header::parse(request)
            .ok()
            .filter(|h| h.flags.is_request() && h.application_id == app::CX)
            .map(|h| h.code);
        match code {
            Some(command::USER_AUTHORIZATION) => match Uar::decode_message(request) {
                Ok((msg, r)) => self.uaa(&msg, r, &origin).await,
                Err(e) => ims_diameter::answer::error_answer(request, &e, &origin),
            },
            Some(command::MULTIMEDIA_AUTH) => match Mar::decode_message(request) {
                Ok((msg, r)) => self.maa(&msg, r, &origin).await,
                Err(e) => ims_diameter::answer::error_answer(request, &e, &origin),
            },
            Some(command::SERVER_ASSIGNMENT) => match Sar::decode_message(request) {
                Ok((msg, r)) => self.saa(&msg, r, &origin).await,
                Err(e) => ims_diameter::answer::error_answer(request, &e, &origin),
            },
            Some(command::LOCATION_INFO) => match Lir::decode_message(request) {
                Ok((msg, r)) => self.lia(&msg, r, &origin).await,
                Err(e) => ims_diameter::answer::error_answer(request, &e, &origin),
            },
            _ => match ims_diameter::answer::reject(request, &[app::CX], &origin) {
                Ok(Some(err)) => Some(err),
                // valid, but no request answered here: only the SLF's redirect
                Ok(None) => self.slf_redirect(&Message::parse(request).ok()?, &origin),
                Err(_) => None,
            },
        }
    }

    /// The SLF's 3006 answer when its table assigns the request's user to another HSS.
    fn slf_redirect(&self, msg: &Message<'_>, origin: &Origin<'_>) -> Option<Vec<u8>> {
        let slf = self.slf.as_ref()?;
        let host = slf
            .route(msg)
            .filter(|h| !h.eq_ignore_ascii_case(&self.origin_host))?;
        use ims_diameter::routing::{redirect_answer, RedirectHostUsage};
        let usage = if slf.cache_time == 0 {
            RedirectHostUsage::DontCache
        } else {
            RedirectHostUsage::AllUser
        };
        Some(redirect_answer(
            msg,
            &[host.to_string()],
            usage,
            slf.cache_time,
            origin,
        ))
    }

    /// The answer to a decoded Uar (after the SLF's redirect).
    async fn uaa(&self, msg: &Message<'_>, r: Uar<'_>, origin: &Origin<'_>) -> Option<Vec<u8>> {
        if let Some(a) = self.slf_redirect(msg, origin) {
            return Some(a);
        }
        let h = msg.header();
        let oh: Cow<'_, str> = Cow::Borrowed(&self.origin_host);
        let or: Cow<'_, str> = Cow::Borrowed(&self.origin_realm);
        let t = match r.user_authorization_type {
            Some(cx::UserAuthorizationType::DeRegistration) => {
                UserAuthorizationType::DeRegistration
            }
            Some(cx::UserAuthorizationType::RegistrationAndCapabilities) => {
                UserAuthorizationType::RegistrationAndCapabilities
            }
            _ => UserAuthorizationType::Registration,
        };
        let d = match self.hss.uar(&r.user_name, &r.public_identity, t).await {
            Ok(d) => d,
            Err(CxFailure::Result(res)) => UaaDecision {
                result: res,
                server_name: None,
                server_capabilities: None,
            },
            Err(CxFailure::Unreachable(_)) => return None,
        };
        let mut a = Uaa {
            session_id: r.session_id,
            vendor_specific_application_id: VendorSpecificApplicationId::cx(),
            auth_session_state: AuthSessionState::NoStateMaintained,
            origin_host: oh,
            origin_realm: or,
            server_name: d.server_name.map(Cow::Owned),
            server_capabilities: d
                .server_capabilities
                .as_ref()
                .and_then(capabilities_to_wire),
            ..Default::default()
        };
        a.set_outcome(d.result);
        Some(a.encode_answer(h))
    }

    /// The answer to a decoded Mar (after the SLF's redirect).
    async fn maa(&self, msg: &Message<'_>, r: Mar<'_>, origin: &Origin<'_>) -> Option<Vec<u8>> {
        if let Some(a) = self.slf_redirect(msg, origin) {
            return Some(a);
        }
        let h = msg.header();
        let oh: Cow<'_, str> = Cow::Borrowed(&self.origin_host);
        let or: Cow<'_, str> = Cow::Borrowed(&self.origin_realm);
        let item = &r.sip_auth_data_item;
        let scheme = item
            .sip_authentication_scheme
            .as_deref()
            .and_then(AuthScheme::parse)
            .unwrap_or(AuthScheme::Unknown);
        let res = self
            .hss
            .mar(MarQuery {
                impi: r.user_name.to_string(),
                impu: r.public_identity.to_string(),
                scheme,
                server_name: r.server_name.to_string(),
                resync: item.sip_authorization.as_deref().map(<[u8]>::to_vec),
            })
            .await;
        let mut a = Maa {
            session_id: r.session_id,
            vendor_specific_application_id: VendorSpecificApplicationId::cx(),
            auth_session_state: AuthSessionState::NoStateMaintained,
            origin_host: oh,
            origin_realm: or,
            user_name: Some(r.user_name),
            public_identity: Some(r.public_identity),
            ..Default::default()
        };
        match res {
            Ok(m) => {
                a.sip_number_auth_items = Some(m.items.len() as u32);
                a.sip_auth_data_item = m
                    .items
                    .iter()
                    .enumerate()
                    .map(|(i, it)| auth_item_to_wire(i as u32 + 1, m.scheme, it))
                    .collect();
                a.set_outcome(result::SUCCESS);
            }
            Err(CxFailure::Result(res)) => a.set_outcome(res),
            Err(CxFailure::Unreachable(_)) => return None,
        }
        Some(a.encode_answer(h))
    }

    /// The answer to a decoded Sar (after the SLF's redirect).
    async fn saa(&self, msg: &Message<'_>, r: Sar<'_>, origin: &Origin<'_>) -> Option<Vec<u8>> {
        if let Some(a) = self.slf_redirect(msg, origin) {
            return Some(a);
        }
        let h = msg.header();
        let oh: Cow<'_, str> = Cow::Borrowed(&self.origin_host);
        let or: Cow<'_, str> = Cow::Borrowed(&self.origin_realm);
        let impu = r.public_identity.first()?.to_string();
        let d = self
            .hss
            .sar(SarQuery {
                impi: r.user_name.as_deref().map(str::to_string),
                impu,
                server_name: r.server_name.to_string(),
                assignment: ServerAssignmentType::from_code(
                    u32::try_from(r.server_assignment_type.to_i32()).unwrap_or(u32::MAX),
                ),
                user_data_available: r.user_data_already_available
                    == cx::UserDataAlreadyAvailable::UserDataAlreadyAvailable,
            })
            .await;
        let d = match d {
            Ok(d) => d,
            Err(CxFailure::Result(res)) => SaaDecision {
                result: res,
                user_data: None,
                user_name: None,
                associated_identities: Vec::new(),
            },
            Err(CxFailure::Unreachable(_)) => return None,
        };
        let mut a = Saa {
            session_id: r.session_id,
            vendor_specific_application_id: VendorSpecificApplicationId::cx(),
            auth_session_state: AuthSessionState::NoStateMaintained,
            origin_host: oh,
            origin_realm: or,
            user_name: d.user_name.map(Cow::Owned),
            user_data: d.user_data.map(|x| Cow::Owned(x.into_bytes())),
            ..Default::default()
        };
        a.set_outcome(d.result);
        Some(a.encode_answer(h))
    }

    /// The answer to a decoded Lir (after the SLF's redirect).
    async fn lia(&self, msg: &Message<'_>, r: Lir<'_>, origin: &Origin<'_>) -> Option<Vec<u8>> {
        if let Some(a) = self.slf_redirect(msg, origin) {
            return Some(a);
        }
        let h = msg.header();
        let oh: Cow<'_, str> = Cow::Borrowed(&self.origin_host);
        let or: Cow<'_, str> = Cow::Borrowed(&self.origin_realm);
        let d = match self.hss.lir(&r.public_identity).await {
            Ok(d) => d,
            Err(CxFailure::Result(res)) => LiaDecision {
                result: res,
                server_name: None,
                server_capabilities: None,
            },
            Err(CxFailure::Unreachable(_)) => return None,
        };
        let mut a = Lia {
            session_id: r.session_id,
            vendor_specific_application_id: VendorSpecificApplicationId::cx(),
            auth_session_state: AuthSessionState::NoStateMaintained,
            origin_host: oh,
            origin_realm: or,
            server_name: d.server_name.map(Cow::Owned),
            server_capabilities: d
                .server_capabilities
                .as_ref()
                .and_then(capabilities_to_wire),
            ..Default::default()
        };
        a.set_outcome(d.result);
        Some(a.encode_answer(h))
    }
}

/// The Server-Capabilities AVP for `c`; `None` for an empty set (TS 29.229 §6.3.4 allows a
/// group with no members, but it says nothing, and Kamailio's cdp drops a message carrying an
/// AVP without data).
fn capabilities_to_wire(c: &ScscfCapabilities) -> Option<ServerCapabilities<'static>> {
    if c.is_empty() {
        return None;
    }
    Some(ServerCapabilities {
        mandatory_capability: c.mandatory.clone().into(),
        optional_capability: c.optional.clone().into(),
        server_name: c
            .server_names
            .iter()
            .map(|n| Cow::Owned(n.clone()))
            .collect::<Vec<_>>()
            .into(),
        ..Default::default()
    })
}

/// The capabilities a received Server-Capabilities AVP carries.
fn capabilities_of_wire(c: &ServerCapabilities<'_>) -> ScscfCapabilities {
    ScscfCapabilities {
        mandatory: c.mandatory_capability.to_vec(),
        optional: c.optional_capability.to_vec(),
        server_names: c.server_name.iter().map(|n| n.to_string()).collect(),
    }
}

fn auth_item_to_wire(n: u32, scheme: AuthScheme, it: &AuthItem) -> SipAuthDataItem<'static> {
    match it {
        AuthItem::Aka(v) => {
            let mut authenticate = v.rand.to_vec();
            authenticate.extend_from_slice(&v.autn);
            SipAuthDataItem {
                sip_item_number: Some(n),
                sip_authentication_scheme: Some(scheme.as_str().into()),
                sip_authenticate: Some(authenticate.into()),
                sip_authorization: Some(v.xres.to_vec().into()),
                confidentiality_key: Some(v.ck.to_vec().into()),
                integrity_key: Some(v.ik.to_vec().into()),
                ..Default::default()
            }
        }
        AuthItem::Digest {
            realm,
            algorithm,
            ha1,
        } => SipAuthDataItem {
            sip_item_number: Some(n),
            sip_authentication_scheme: Some(scheme.as_str().into()),
            sip_digest_authenticate: Some(SipDigestAuthenticate {
                digest_realm: realm.clone().into(),
                digest_algorithm: Some(algorithm.as_str().to_string().into()),
                digest_qop: "auth".into(),
                digest_ha1: ha1.clone().into(),
                ..Default::default()
            }),
            ..Default::default()
        },
    }
}

fn auth_item_from_wire(it: &SipAuthDataItem<'_>) -> Option<(AuthScheme, AuthItem)> {
    let scheme = it
        .sip_authentication_scheme
        .as_deref()
        .and_then(AuthScheme::parse)?;
    match scheme {
        AuthScheme::AkaV1 => {
            let a = it.sip_authenticate.as_deref()?;
            let x = it.sip_authorization.as_deref()?;
            if a.len() != 32 || x.len() != 8 {
                return None;
            }
            Some((
                scheme,
                AuthItem::Aka(AuthVector {
                    rand: a[..16].try_into().ok()?,
                    autn: a[16..].try_into().ok()?,
                    xres: x.try_into().ok()?,
                    ck: it.confidentiality_key.as_deref()?.try_into().ok()?,
                    ik: it.integrity_key.as_deref()?.try_into().ok()?,
                }),
            ))
        }
        AuthScheme::Digest => {
            let d = it.sip_digest_authenticate.as_ref()?;
            Some((
                scheme,
                AuthItem::Digest {
                    realm: d.digest_realm.to_string(),
                    algorithm: d
                        .digest_algorithm
                        .as_deref()
                        .and_then(Algorithm::from_token)
                        .unwrap_or(Algorithm::Md5),
                    ha1: d.digest_ha1.to_string(),
                },
            ))
        }
        AuthScheme::Unknown => None,
    }
}

/// Sends a Diameter request and resolves to the answer's octets. The implementation assigns
/// the hop-by-hop and end-to-end identifiers (the request is encoded with zeros there) and
/// routes by Destination-Realm/-Host; an error means no answer (peer down, timeout).
pub trait DiameterRequester: Send + Sync + 'static {
    /// Sends `request` and awaits its answer.
    fn request(&self, request: Vec<u8>) -> impl Future<Output = Result<Vec<u8>, String>> + Send;

    /// [`DiameterRequester::request`] with the answer's octets as shared [`bytes::Bytes`]: an
    /// implementation that holds them so (the ims-net node keeps each answer read as a slice of
    /// its read buffer) gives them without a copy. The default wraps `request`'s vector.
    fn request_shared(
        &self,
        request: Vec<u8>,
    ) -> impl Future<Output = Result<bytes::Bytes, String>> + Send {
        let answer = self.request(request);
        async move { answer.await.map(bytes::Bytes::from) }
    }
}

/// The first Session-Id counter of a run started at `unix_secs`: the time in the high 32 bits,
/// 1 in the low ones.
fn session_start(unix_secs: u64) -> u64 {
    ((unix_secs & 0xffff_ffff) << 32) | 1
}

/// Appends the decimal digits of `v`.
fn push_decimal(s: &mut String, v: u32) {
    let mut buf = [0u8; 10];
    let mut v = v;
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    // ASCII digits: always UTF-8
    s.push_str(std::str::from_utf8(&buf[i..]).unwrap_or_default());
}

/// The Session-Id of counter `n` (RFC 6733 §8.8: `<DiameterIdentity>;<high 32 bits>;<low 32
/// bits>`), written straight into a buffer of its exact size (one allocation; `format!` cost
/// ≈1,100 instructions per request, a third of a UAR's encoding).
fn session_text(host: &str, n: u64) -> String {
    let mut s = String::with_capacity(host.len() + 22);
    s.push_str(host);
    s.push(';');
    push_decimal(&mut s, (n >> 32) as u32);
    s.push(';');
    push_decimal(&mut s, n as u32);
    s
}

/// The part of the Session-Ids that changes only with their high 32 bits (`<host>;<high>;`),
/// made once.
#[derive(Debug)]
struct SessionPrefix {
    high: u32,
    text: String,
}

impl SessionPrefix {
    fn new(host: &str, high: u32) -> SessionPrefix {
        let mut text = String::with_capacity(host.len() + 12);
        text.push_str(host);
        text.push(';');
        push_decimal(&mut text, high);
        text.push(';');
        SessionPrefix { high, text }
    }

    /// [`session_text`] of `n` (with the prefix when its high bits are the prefix's).
    fn session_text(&self, host: &str, n: u64) -> String {
        if (n >> 32) as u32 != self.high {
            return session_text(host, n);
        }
        let mut s = String::with_capacity(self.text.len() + 10);
        s.push_str(&self.text);
        push_decimal(&mut s, n as u32);
        s
    }
}

/// A [`CxClient`] speaking Diameter Cx through a [`DiameterRequester`].
#[derive(Debug)]
pub struct DiameterCx<R> {
    requester: R,
    origin_host: String,
    origin_realm: String,
    destination_realm: String,
    session: AtomicU64,
    prefix: SessionPrefix,
}

impl<R: DiameterRequester> DiameterCx<R> {
    /// A client identifying itself as `origin_host`/`origin_realm`, asking the HSS of
    /// `destination_realm`.
    pub fn new(
        requester: R,
        origin_host: &str,
        origin_realm: &str,
        destination_realm: &str,
    ) -> DiameterCx<R> {
        DiameterCx {
            requester,
            origin_host: origin_host.to_string(),
            origin_realm: origin_realm.to_string(),
            destination_realm: destination_realm.to_string(),
            session: AtomicU64::new(1),
            prefix: SessionPrefix::new(origin_host, 0),
        }
    }

    /// Starts the Session-Ids' high 32 bits at `unix_secs` (the process's start time), as RFC
    /// 6733 §8.8 recommends, so a restarted client never reuses an earlier run's Session-Id
    /// (without it they start at `<host>;0;1`).
    pub fn starting_at(mut self, unix_secs: u64) -> Self {
        let start = session_start(unix_secs);
        self.session.store(start, Ordering::Relaxed);
        self.prefix = SessionPrefix::new(&self.origin_host, (start >> 32) as u32);
        self
    }

    fn session_id(&self) -> Cow<'static, str> {
        // RFC 6733 §8.8: <DiameterIdentity>;<high 32 bits>;<low 32 bits>
        let n = self.session.fetch_add(1, Ordering::Relaxed);
        self.prefix.session_text(&self.origin_host, n).into()
    }

    /// Sends `req` and resolves to the answer's octets (decoded by [`decoded`]; shared with the
    /// requester, not copied).
    async fn exchange(&self, req: Vec<u8>) -> Result<bytes::Bytes, CxFailure> {
        self.requester
            .request_shared(req)
            .await
            .map_err(CxFailure::Unreachable)
    }
}

/// The text of a User-Data AVP: its bytes as they are when they are UTF-8 (the XML the HSS
/// sends; `str::from_utf8` checks a block at a time), else with U+FFFD for each bad sequence
/// (`String::from_utf8_lossy`, which walks every byte, only then).
fn utf8_text(d: &[u8]) -> String {
    match std::str::from_utf8(d) {
        Ok(s) => s.to_owned(),
        Err(_) => String::from_utf8_lossy(d).into_owned(),
    }
}

fn outcome(o: Option<Outcome>) -> CxResult {
    o.unwrap_or(result::UNABLE_TO_COMPLY)
}

fn bad_answer(e: ims_diameter::Error) -> CxFailure {
    CxFailure::Unreachable(format!("undecodable answer: {e}"))
}

/// The answer `raw` decoded as `A` (message checks and typed decode in one walk); the errors of
/// a separate parse, command check and decode: "malformed answer" when the octets are no
/// message or not `A`'s command, else "undecodable answer: …".
fn decoded<'r, A: Command<'r> + Default>(raw: &'r [u8]) -> Result<A, CxFailure> {
    match A::decode_message(raw) {
        Ok((_, a)) => Ok(a),
        Err(e) if Message::parse(raw).is_ok_and(|m| m.code() == A::CODE) => Err(bad_answer(e)),
        Err(_) => Err(CxFailure::Unreachable("malformed answer".into())),
    }
}

impl<R: DiameterRequester> CxClient for DiameterCx<R> {
    async fn uar(
        &self,
        impi: &str,
        impu: &str,
        auth_type: UserAuthorizationType,
    ) -> Result<UaaDecision, CxFailure> {
        let req = Uar {
            session_id: self.session_id(),
            vendor_specific_application_id: VendorSpecificApplicationId::cx(),
            auth_session_state: AuthSessionState::NoStateMaintained,
            origin_host: Cow::Borrowed(&self.origin_host),
            origin_realm: Cow::Borrowed(&self.origin_realm),
            destination_realm: Cow::Borrowed(&self.destination_realm),
            user_name: Cow::Borrowed(impi),
            public_identity: Cow::Borrowed(impu),
            visited_network_identifier: Cow::Borrowed(self.origin_realm.as_bytes()),
            user_authorization_type: Some(match auth_type {
                UserAuthorizationType::Registration => cx::UserAuthorizationType::Registration,
                UserAuthorizationType::DeRegistration => cx::UserAuthorizationType::DeRegistration,
                UserAuthorizationType::RegistrationAndCapabilities => {
                    cx::UserAuthorizationType::RegistrationAndCapabilities
                }
            }),
            ..Default::default()
        };
        let raw = self.exchange(req.encode(0, 0)).await?;
        let a: Uaa<'_> = decoded(&raw)?;
        let d = UaaDecision {
            result: outcome(a.outcome()),
            server_name: a.server_name.map(|s| s.into_owned()),
            server_capabilities: a.server_capabilities.as_ref().map(capabilities_of_wire),
        };
        if d.result.is_success() {
            Ok(d)
        } else {
            Err(CxFailure::Result(d.result))
        }
    }

    async fn mar(&self, q: MarQuery) -> Result<MaaAnswer, CxFailure> {
        let req = Mar {
            session_id: self.session_id(),
            vendor_specific_application_id: VendorSpecificApplicationId::cx(),
            auth_session_state: AuthSessionState::NoStateMaintained,
            origin_host: Cow::Borrowed(&self.origin_host),
            origin_realm: Cow::Borrowed(&self.origin_realm),
            destination_realm: Cow::Borrowed(&self.destination_realm),
            user_name: q.impi.into(),
            public_identity: q.impu.into(),
            sip_number_auth_items: 1,
            sip_auth_data_item: SipAuthDataItem {
                sip_authentication_scheme: Some(q.scheme.as_str().into()),
                sip_authorization: q.resync.map(Cow::Owned),
                ..Default::default()
            },
            server_name: q.server_name.into(),
            ..Default::default()
        };
        let raw = self.exchange(req.encode(0, 0)).await?;
        let a: Maa<'_> = decoded(&raw)?;
        let res = outcome(a.outcome());
        if !res.is_success() {
            return Err(CxFailure::Result(res));
        }
        let mut scheme = None;
        let mut items = Vec::new();
        for it in &a.sip_auth_data_item {
            let (s, item) = auth_item_from_wire(it)
                .ok_or_else(|| CxFailure::Unreachable("unusable SIP-Auth-Data-Item".into()))?;
            scheme = Some(s);
            items.push(item);
        }
        Ok(MaaAnswer {
            scheme: scheme.ok_or(CxFailure::Result(result::UNABLE_TO_COMPLY))?,
            items,
        })
    }

    async fn sar(&self, q: SarQuery) -> Result<SaaDecision, CxFailure> {
        use ServerAssignmentType as T;
        let code = match q.assignment {
            T::NoAssignment => 0,
            T::Registration => 1,
            T::ReRegistration => 2,
            T::UnregisteredUser => 3,
            T::TimeoutDeregistration => 4,
            T::UserDeregistration => 5,
            T::TimeoutDeregistrationStoreServerName => 6,
            T::UserDeregistrationStoreServerName => 7,
            T::AdministrativeDeregistration => 8,
            T::AuthenticationFailure => 9,
            T::AuthenticationTimeout => 10,
            T::DeregistrationTooMuchData => 11,
            T::Other(c) => c,
        };
        let req = Sar {
            session_id: self.session_id(),
            vendor_specific_application_id: VendorSpecificApplicationId::cx(),
            auth_session_state: AuthSessionState::NoStateMaintained,
            origin_host: Cow::Borrowed(&self.origin_host),
            origin_realm: Cow::Borrowed(&self.origin_realm),
            destination_realm: Cow::Borrowed(&self.destination_realm),
            user_name: q.impi.map(Cow::Owned),
            public_identity: vec![q.impu.into()].into(),
            server_name: q.server_name.into(),
            server_assignment_type: cx::ServerAssignmentType::from_i32(
                i32::try_from(code).unwrap_or(i32::MAX),
            ),
            user_data_already_available: if q.user_data_available {
                cx::UserDataAlreadyAvailable::UserDataAlreadyAvailable
            } else {
                cx::UserDataAlreadyAvailable::UserDataNotAvailable
            },
            ..Default::default()
        };
        let raw = self.exchange(req.encode(0, 0)).await?;
        let a: Saa<'_> = decoded(&raw)?;
        let d = SaaDecision {
            result: outcome(a.outcome()),
            user_data: a.user_data.map(|d| utf8_text(&d)),
            user_name: a.user_name.map(|s| s.into_owned()),
            associated_identities: a
                .associated_identities
                .map(|ai| ai.user_name.into_iter().map(|u| u.into_owned()).collect())
                .unwrap_or_default(),
        };
        if d.result.is_success() {
            Ok(d)
        } else {
            Err(CxFailure::Result(d.result))
        }
    }

    async fn lir(&self, impu: &str) -> Result<LiaDecision, CxFailure> {
        // borrowed text: the request is encoded right here (one LIR per terminating call)
        let req = Lir {
            session_id: self.session_id(),
            vendor_specific_application_id: VendorSpecificApplicationId::cx(),
            auth_session_state: AuthSessionState::NoStateMaintained,
            origin_host: Cow::Borrowed(&self.origin_host),
            origin_realm: Cow::Borrowed(&self.origin_realm),
            destination_realm: Cow::Borrowed(&self.destination_realm),
            public_identity: Cow::Borrowed(impu),
            ..Default::default()
        };
        let raw = self.exchange(req.encode(0, 0)).await?;
        let a: Lia<'_> = decoded(&raw)?;
        let d = LiaDecision {
            result: outcome(a.outcome()),
            server_name: a.server_name.map(|s| s.into_owned()),
            server_capabilities: a.server_capabilities.as_ref().map(capabilities_of_wire),
        };
        if d.result.is_success() {
            Ok(d)
        } else {
            Err(CxFailure::Result(d.result))
        }
    }
}

/// Charging function addresses (Charging-Information, TS 29.229 §6.3.19), as DiameterURI text.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChargingAddresses {
    /// Primary-Event-Charging-Function-Name.
    pub primary_ecf: Option<String>,
    /// Secondary-Event-Charging-Function-Name.
    pub secondary_ecf: Option<String>,
    /// Primary-Charging-Collection-Function-Name.
    pub primary_ccf: Option<String>,
    /// Secondary-Charging-Collection-Function-Name.
    pub secondary_ccf: Option<String>,
}

impl ChargingAddresses {
    fn to_wire(&self) -> cx::ChargingInformation<'static> {
        let c = |v: &Option<String>| v.clone().map(Cow::Owned);
        cx::ChargingInformation {
            primary_event_charging_function_name: c(&self.primary_ecf),
            secondary_event_charging_function_name: c(&self.secondary_ecf),
            primary_charging_collection_function_name: c(&self.primary_ccf),
            secondary_charging_collection_function_name: c(&self.secondary_ccf),
            ..Default::default()
        }
    }

    fn from_wire(w: &cx::ChargingInformation<'_>) -> ChargingAddresses {
        let c = |v: &Option<Cow<'_, str>>| v.as_deref().map(str::to_string);
        ChargingAddresses {
            primary_ecf: c(&w.primary_event_charging_function_name),
            secondary_ecf: c(&w.secondary_event_charging_function_name),
            primary_ccf: c(&w.primary_charging_collection_function_name),
            secondary_ccf: c(&w.secondary_charging_collection_function_name),
        }
    }

    /// The text kept in [`RegistrationRecord::charging`](crate::store::RegistrationRecord):
    /// `ecf=<uri>;ecf2=<uri>;ccf=<uri>;ccf2=<uri>` (absent ones left out).
    pub fn to_text(&self) -> String {
        let mut parts = Vec::new();
        for (n, v) in [
            ("ecf", &self.primary_ecf),
            ("ecf2", &self.secondary_ecf),
            ("ccf", &self.primary_ccf),
            ("ccf2", &self.secondary_ccf),
        ] {
            if let Some(v) = v {
                parts.push(format!("{n}={v}"));
            }
        }
        parts.join(";")
    }
}

/// Requests the HSS starts towards an S-CSCF (TS 29.228 §6.1.3 RTR, §6.1.4 PPR), encoded with
/// zero identifiers (the Diameter node sets them).
#[derive(Debug, Clone)]
pub struct HssInitiated {
    origin_host: String,
    origin_realm: String,
    session: std::sync::Arc<AtomicU64>,
}

impl HssInitiated {
    /// Requests from `origin_host`/`origin_realm` (the HSS).
    pub fn new(origin_host: &str, origin_realm: &str) -> HssInitiated {
        HssInitiated {
            origin_host: origin_host.to_string(),
            origin_realm: origin_realm.to_string(),
            session: std::sync::Arc::new(AtomicU64::new(1)),
        }
    }

    /// Starts the Session-Ids' high 32 bits at `unix_secs` (see [`DiameterCx::starting_at`]).
    pub fn starting_at(self, unix_secs: u64) -> Self {
        self.session
            .store(session_start(unix_secs), Ordering::Relaxed);
        self
    }

    fn session_id(&self) -> Cow<'static, str> {
        let n = self.session.fetch_add(1, Ordering::Relaxed);
        session_text(&self.origin_host, n).into()
    }

    /// Registration-Termination-Request to the S-CSCF `destination_host`: de-registers `impi`
    /// (`impus`: those IMPUs only; empty: all of them) for `reason`.
    pub fn rtr(
        &self,
        destination_host: &str,
        destination_realm: &str,
        impi: &str,
        impus: &[String],
        reason: &DeregistrationReason,
    ) -> Vec<u8> {
        Rtr {
            session_id: self.session_id(),
            vendor_specific_application_id: VendorSpecificApplicationId::cx(),
            auth_session_state: AuthSessionState::NoStateMaintained,
            origin_host: self.origin_host.clone().into(),
            origin_realm: self.origin_realm.clone().into(),
            destination_host: destination_host.to_string().into(),
            destination_realm: destination_realm.to_string().into(),
            user_name: impi.to_string().into(),
            public_identity: impus.iter().map(|i| Cow::Owned(i.clone())).collect(),
            deregistration_reason: cx::DeregistrationReason {
                reason_code: cx::ReasonCode::from_i32(i32::try_from(reason.code).unwrap_or(0)),
                reason_info: reason.info.clone().map(Cow::Owned),
                ..Default::default()
            },
            ..Default::default()
        }
        .encode(0, 0)
    }

    /// Push-Profile-Request to the S-CSCF `destination_host`: a new User-Data
    /// (`IMSSubscription` XML) and/or Charging-Information for `impi`.
    pub fn ppr(
        &self,
        destination_host: &str,
        destination_realm: &str,
        impi: &str,
        user_data: Option<&str>,
        charging: Option<&ChargingAddresses>,
    ) -> Vec<u8> {
        Ppr {
            session_id: self.session_id(),
            vendor_specific_application_id: VendorSpecificApplicationId::cx(),
            auth_session_state: AuthSessionState::NoStateMaintained,
            origin_host: self.origin_host.clone().into(),
            origin_realm: self.origin_realm.clone().into(),
            destination_host: destination_host.to_string().into(),
            destination_realm: destination_realm.to_string().into(),
            user_name: impi.to_string().into(),
            user_data: user_data.map(|x| Cow::Owned(x.as_bytes().to_vec())),
            charging_information: charging.map(ChargingAddresses::to_wire),
            ..Default::default()
        }
        .encode(0, 0)
    }
}

/// The S-CSCF's Cx server: answers the HSS's RTR (removes the registrations, RTA) and PPR
/// (replaces the stored profile or charging information, PPA) with an [`Scscf`].
#[derive(Debug)]
pub struct ScscfCxServer<C, S> {
    origin_host: String,
    origin_realm: String,
    scscf: std::sync::Arc<Scscf<C, S>>,
}

impl<C, S> Clone for ScscfCxServer<C, S> {
    fn clone(&self) -> Self {
        ScscfCxServer {
            origin_host: self.origin_host.clone(),
            origin_realm: self.origin_realm.clone(),
            scscf: self.scscf.clone(),
        }
    }
}

impl<C: CxClient, S: BindingStore> ScscfCxServer<C, S> {
    /// A server answering as `origin_host`/`origin_realm` for `scscf`.
    pub fn new(
        origin_host: &str,
        origin_realm: &str,
        scscf: std::sync::Arc<Scscf<C, S>>,
    ) -> ScscfCxServer<C, S> {
        ScscfCxServer {
            origin_host: origin_host.to_string(),
            origin_realm: origin_realm.to_string(),
            scscf,
        }
    }

    /// The answer to one RTR or PPR and the registration changes it made (for reg event
    /// NOTIFYs). A faulty request gets the RFC 6733 §7 error answer; an unknown user
    /// DIAMETER_ERROR_USER_UNKNOWN (5001, experimental). `None`: nothing to answer.
    pub async fn answer(&self, request: &[u8]) -> Option<(Vec<u8>, Vec<RegEvent>)> {
        let origin = Origin {
            host: &self.origin_host,
            realm: &self.origin_realm,
            state_id: None,
        };
        match ims_diameter::answer::reject(request, &[app::CX], &origin) {
            Ok(Some(err)) => return Some((err, Vec::new())),
            Ok(None) => {}
            Err(_) => return None,
        }
        let msg = Message::parse(request).ok()?;
        let h = msg.header();
        let oh: Cow<'_, str> = Cow::Borrowed(&self.origin_host);
        let or: Cow<'_, str> = Cow::Borrowed(&self.origin_realm);
        match msg.code() {
            command::REGISTRATION_TERMINATION => {
                let r = Rtr::decode(&msg).ok()?;
                let reason = DeregistrationReason {
                    code: u32::try_from(r.deregistration_reason.reason_code.to_i32()).unwrap_or(0),
                    info: r
                        .deregistration_reason
                        .reason_info
                        .as_deref()
                        .map(str::to_string),
                };
                let impus: Vec<String> = r.public_identity.iter().map(|i| i.to_string()).collect();
                let res = self.scscf.terminate(&r.user_name, &impus, reason).await;
                let mut a = Rta {
                    session_id: r.session_id.into_owned().into(),
                    vendor_specific_application_id: VendorSpecificApplicationId::cx(),
                    auth_session_state: AuthSessionState::NoStateMaintained,
                    origin_host: oh,
                    origin_realm: or,
                    ..Default::default()
                };
                let events = match res {
                    Ok(ev) => {
                        a.set_outcome(result::SUCCESS);
                        ev
                    }
                    Err(code) => {
                        a.set_outcome(code);
                        Vec::new()
                    }
                };
                Some((a.encode_answer(h), events))
            }
            command::PUSH_PROFILE => {
                let r = Ppr::decode(&msg).ok()?;
                let user_data = r.user_data.as_deref().map(utf8_text);
                let charging = r
                    .charging_information
                    .as_ref()
                    .map(|c| ChargingAddresses::from_wire(c).to_text());
                let res = self
                    .scscf
                    .push_profile(&r.user_name, user_data.as_deref(), charging.as_deref())
                    .await;
                let mut a = Ppa {
                    session_id: r.session_id.into_owned().into(),
                    vendor_specific_application_id: VendorSpecificApplicationId::cx(),
                    auth_session_state: AuthSessionState::NoStateMaintained,
                    origin_host: oh,
                    origin_realm: or,
                    ..Default::default()
                };
                a.set_outcome(match res {
                    Ok(_) => result::SUCCESS,
                    Err(code) => code,
                });
                Some((a.encode_answer(h), Vec::new()))
            }
            _ => None,
        }
    }
}

/// The Result-Code or Experimental-Result-Code of an answer's octets.
pub fn answer_code(answer: &[u8]) -> Option<u32> {
    Message::parse(answer).ok()?.outcome().map(|o| o.code())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hss::{AkaCredentials, Credentials, Hss, Subscriber};
    use crate::subscription::{ImsSubscription, PublicIdentity, ServiceProfile};
    use crate::test_util::block_on;
    use ims_auth::milenage::OperatorKey;
    use std::sync::{Arc, Mutex};

    /// A requester that hands the octets to the HSS server directly: every request and answer is
    /// really encoded and decoded.
    struct Loopback(HssCxServer);

    impl DiameterRequester for Loopback {
        async fn request(&self, request: Vec<u8>) -> Result<Vec<u8>, String> {
            self.0
                .answer(&request)
                .await
                .ok_or_else(|| "no answer".to_string())
        }
    }

    fn client() -> DiameterCx<Loopback> {
        client_with(ScscfCapabilities::default())
    }

    fn client_with(capabilities: ScscfCapabilities) -> DiameterCx<Loopback> {
        let mut h = Hss::new(None).scscf_capabilities(capabilities);
        h.add_subscriber(Subscriber {
            subscription: ImsSubscription {
                private_id: "alice@ims.example.org".into(),
                service_profiles: vec![ServiceProfile {
                    public_identities: vec![PublicIdentity::new("sip:alice@ims.example.org")],
                    ..ServiceProfile::default()
                }],
            },
            credentials: Credentials {
                aka: Some(AkaCredentials::new(
                    [1; 16],
                    OperatorKey::Opc([2; 16]),
                    [0x80, 0],
                    0,
                )),
                password: Some("pw".into()),
            },
        });
        let local = LocalHss::new(Arc::new(Mutex::new(h)), "ims.example.org", || [7; 16]);
        DiameterCx::new(
            Loopback(HssCxServer::new(
                "hss.ims.example.org",
                "ims.example.org",
                local,
            )),
            "scscf.ims.example.org",
            "ims.example.org",
            "ims.example.org",
        )
    }

    /// The raw UAA of the HSS behind `c` to a first registration of alice.
    fn raw_uaa(c: &DiameterCx<Loopback>, auth_type: cx::UserAuthorizationType) -> Vec<u8> {
        let uar = Uar {
            session_id: "s;9".into(),
            vendor_specific_application_id: VendorSpecificApplicationId::cx(),
            auth_session_state: AuthSessionState::NoStateMaintained,
            origin_host: "icscf.ims.example.org".into(),
            origin_realm: "ims.example.org".into(),
            destination_realm: "ims.example.org".into(),
            user_name: "alice@ims.example.org".into(),
            public_identity: "sip:alice@ims.example.org".into(),
            user_authorization_type: Some(auth_type),
            ..Default::default()
        }
        .encode(1, 2);
        block_on(c.requester.0.answer(&uar)).unwrap()
    }

    /// TS 29.229 §6.3.4: Server-Capabilities ::= *[Mandatory-Capability] *[Optional-Capability]
    /// *[Server-Name]. The HSS sends what is configured, and omits the AVP rather than send an
    /// empty group (Kamailio cdp 5.6.3 drops a message with an AVP of no data).
    #[test]
    fn uaa_server_capabilities_are_the_configured_ones_and_never_empty() {
        use cx::UserAuthorizationType as T;
        for t in [T::Registration, T::RegistrationAndCapabilities] {
            let a = raw_uaa(&client(), t);
            let m = Message::parse(&a).unwrap();
            // TS 29.228 §6.1.1.1: capabilities asked for are answered with DIAMETER_SUCCESS
            let expected = match t {
                T::RegistrationAndCapabilities => result::SUCCESS,
                _ => result::FIRST_REGISTRATION,
            };
            assert_eq!(m.outcome(), Some(expected), "{t:?}");
            assert!(
                m.find(ims_diameter::dict::SERVER_CAPABILITIES).is_none(),
                "{t:?}: no empty Server-Capabilities"
            );
            assert!(m.find(ims_diameter::dict::SERVER_NAME).is_none(), "{t:?}");
        }
        let caps = ScscfCapabilities {
            mandatory: vec![1, 3],
            optional: vec![2],
            server_names: vec!["sip:scscf1.ims.example.org:6060".into()],
        };
        let c = client_with(caps.clone());
        for t in [T::Registration, T::RegistrationAndCapabilities] {
            let a = raw_uaa(&c, t);
            let m = Message::parse(&a).unwrap();
            // TS 29.228 §6.1.1.1: capabilities asked for are answered with DIAMETER_SUCCESS
            let expected = match t {
                T::RegistrationAndCapabilities => result::SUCCESS,
                _ => result::FIRST_REGISTRATION,
            };
            assert_eq!(m.outcome(), Some(expected), "{t:?}");
            let group = m.find(ims_diameter::dict::SERVER_CAPABILITIES).unwrap();
            assert_eq!(group.vendor_id(), ims_diameter::dict::VENDOR_3GPP);
            // members in order, each 3GPP vendor-specific with its value
            let members: Vec<(u32, Vec<u8>)> = group
                .grouped()
                .unwrap()
                .map(|avp| {
                    assert_eq!(avp.vendor_id(), ims_diameter::dict::VENDOR_3GPP);
                    (avp.code(), avp.data().to_vec())
                })
                .collect();
            assert_eq!(
                members,
                [
                    (604, 1u32.to_be_bytes().to_vec()),
                    (604, 3u32.to_be_bytes().to_vec()),
                    (605, 2u32.to_be_bytes().to_vec()),
                    (602, b"sip:scscf1.ims.example.org:6060".to_vec()),
                ],
                "{t:?}"
            );
            assert!(m.find(ims_diameter::dict::SERVER_NAME).is_none(), "{t:?}");
        }
        // the I-CSCF side reads them back
        let uaa = block_on(c.uar(
            "alice@ims.example.org",
            "sip:alice@ims.example.org",
            UserAuthorizationType::Registration,
        ))
        .unwrap();
        assert_eq!(uaa.server_name, None);
        assert_eq!(uaa.server_capabilities, Some(caps));
        // once an S-CSCF is assigned, the UAA names it instead
        block_on(c.mar(MarQuery {
            impi: "alice@ims.example.org".into(),
            impu: "sip:alice@ims.example.org".into(),
            scheme: AuthScheme::AkaV1,
            server_name: "sip:scscf2.ims.example.org".into(),
            resync: None,
        }))
        .unwrap();
        let a = raw_uaa(&c, T::Registration);
        let m = Message::parse(&a).unwrap();
        assert_eq!(m.outcome(), Some(result::SUBSEQUENT_REGISTRATION));
        assert!(m.find(ims_diameter::dict::SERVER_CAPABILITIES).is_none());
        assert!(m.find(ims_diameter::dict::SERVER_NAME).is_some());
    }

    /// An HSS of TS 29.229 before V7.2.0: every UAA is DIAMETER_SERVER_SELECTION (2005) with
    /// the given Server-Name and Server-Capabilities.
    struct OldHss(Option<&'static str>, ScscfCapabilities);

    impl DiameterRequester for OldHss {
        async fn request(&self, request: Vec<u8>) -> Result<Vec<u8>, String> {
            let m = Message::parse(&request).map_err(|e| e.to_string())?;
            let r = Uar::decode(&m).map_err(|e| e.to_string())?;
            let mut a = Uaa {
                session_id: r.session_id.into_owned().into(),
                vendor_specific_application_id: VendorSpecificApplicationId::cx(),
                auth_session_state: AuthSessionState::NoStateMaintained,
                origin_host: "hss.ims.example.org".into(),
                origin_realm: "ims.example.org".into(),
                server_name: self.0.map(Cow::Borrowed),
                server_capabilities: capabilities_to_wire(&self.1),
                ..Default::default()
            };
            a.set_outcome(result::SERVER_SELECTION);
            Ok(a.encode_answer(m.header()))
        }
    }

    /// TS 29.229 §6.2 (before V7.2.0): DIAMETER_SERVER_SELECTION is a success; the I-CSCF keeps
    /// a named S-CSCF and otherwise selects one from the Server-Capabilities.
    #[test]
    fn a_server_selection_uaa_routes_the_register() {
        use crate::cscf::{Decision, Icscf, IcscfConfig};
        let caps = ScscfCapabilities {
            mandatory: vec![4],
            optional: vec![],
            server_names: vec![],
        };
        let reg = "REGISTER sip:ims.example.org SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK-r\r\n\
Max-Forwards: 70\r\nFrom: <sip:alice@ims.example.org>;tag=1\r\nTo: <sip:alice@ims.example.org>\r\n\
Call-ID: r1\r\nCSeq: 1 REGISTER\r\nContact: <sip:alice@10.0.0.1>\r\nContent-Length: 0\r\n\r\n";
        let reg = ims_sip::parse_datagram(reg.as_bytes()).unwrap();
        for (named, want) in [
            (
                Some("sip:old.ims.example.org"),
                "<sip:old.ims.example.org;lr>",
            ),
            (None, "<sip:s4.ims.example.org;lr>"),
        ] {
            let cx = DiameterCx::new(
                OldHss(named, caps.clone()),
                "icscf.ims.example.org",
                "ims.example.org",
                "ims.example.org",
            );
            let uaa = block_on(cx.uar(
                "alice@ims.example.org",
                "sip:alice@ims.example.org",
                UserAuthorizationType::Registration,
            ))
            .unwrap();
            assert_eq!(uaa.result, result::SERVER_SELECTION);
            assert_eq!(uaa.server_capabilities.as_ref(), Some(&caps));
            let i = Icscf::new(
                IcscfConfig {
                    scscfs: vec![
                        "sip:s1.ims.example.org".into(),
                        "sip:s4.ims.example.org".into(),
                    ],
                },
                cx,
                crate::enum_dns::EnumTable::new("e164.arpa"),
            )
            .with_scscf_capabilities("sip:s4.ims.example.org", vec![4]);
            let Decision::Forward(f) = block_on(i.route(&reg)) else {
                panic!("{named:?}: forwarded")
            };
            assert_eq!(f[0].routes, [want], "{named:?}");
        }
    }

    #[test]
    fn session_ids_carry_the_start_time_in_their_high_part() {
        // RFC 6733 §8.8: <DiameterIdentity>;<high 32 bits>;<low 32 bits>, the high part
        // "the time the Diameter node was started"
        let c = client();
        assert_eq!(c.session_id(), "scscf.ims.example.org;0;1");
        let c = client().starting_at(1_790_000_000);
        assert_eq!(c.session_id(), "scscf.ims.example.org;1790000000;1");
        assert_eq!(c.session_id(), "scscf.ims.example.org;1790000000;2");
        let h = HssInitiated::new("hss.ims.example.org", "ims.example.org").starting_at(7);
        assert_eq!(h.session_id(), "hss.ims.example.org;7;1");
        assert_eq!(h.clone().session_id(), "hss.ims.example.org;7;2");
    }

    #[test]
    fn session_text_is_the_formatted_host_and_counter_halves() {
        for n in [
            0u64,
            1,
            9,
            10,
            99,
            4_294_967_295,
            4_294_967_296,
            (1_790_000_000 << 32) | 1,
            (1_000_000_000 << 32) | 1_000_000_000,
            u64::MAX,
        ] {
            for host in ["", "scscf.ims.example.org"] {
                let want = format!("{host};{};{}", n >> 32, n & 0xffff_ffff);
                assert_eq!(session_text(host, n), want, "{n}");
                // with a prefix of the same high bits, and of others (a wrapped counter)
                for high in [(n >> 32) as u32, 0, 7, u32::MAX] {
                    let p = SessionPrefix::new(host, high);
                    assert_eq!(p.session_text(host, n), want, "{n} {high}");
                }
            }
        }
    }

    #[test]
    fn slf_redirects_to_the_users_hss_and_answers_its_own() {
        // an HSS that is also the SLF: alice is here, bob on hss2 (by IMPI and by IMPU)
        let c = client();
        let mut table = SlfTable::new(60);
        table.insert("alice@ims.example.org", "hss.ims.example.org");
        table.insert("Bob@ims.example.org", "hss2.ims.example.org");
        table.insert("sip:bob@ims.example.org", "hss2.ims.example.org");
        assert_eq!(table.len(), 3);
        let server = c.requester.0.clone().with_slf(table);
        let uar = |impi: &str, impu: &str| {
            Uar {
                session_id: "s;1".into(),
                vendor_specific_application_id: VendorSpecificApplicationId::cx(),
                auth_session_state: AuthSessionState::NoStateMaintained,
                origin_host: "icscf.ims.example.org".into(),
                origin_realm: "ims.example.org".into(),
                destination_realm: "ims.example.org".into(),
                user_name: impi.to_string().into(),
                public_identity: impu.to_string().into(),
                ..Default::default()
            }
            .encode(1, 2)
        };
        let a = block_on(server.answer(&uar("bob@ims.example.org", "sip:bob@ims.example.org")))
            .unwrap();
        let m = Message::parse(&a).unwrap();
        let r = ims_diameter::routing::redirect_of(&m).expect("a 3006 redirect");
        assert_eq!(r.hosts, ["aaa://hss2.ims.example.org"]);
        assert_eq!(r.usage, ims_diameter::routing::RedirectHostUsage::AllUser);
        assert_eq!(r.max_cache_time, Some(60));
        assert!(m.flags().is_error());
        assert_eq!(m.session_id(), Some("s;1"));
        // LIR has no User-Name: the SLF goes by Public-Identity
        let lir = Lir {
            session_id: "s;2".into(),
            vendor_specific_application_id: VendorSpecificApplicationId::cx(),
            auth_session_state: AuthSessionState::NoStateMaintained,
            origin_host: "icscf.ims.example.org".into(),
            origin_realm: "ims.example.org".into(),
            destination_realm: "ims.example.org".into(),
            public_identity: "sip:bob@ims.example.org".into(),
            ..Default::default()
        }
        .encode(3, 4);
        let a = block_on(server.answer(&lir)).unwrap();
        let r = ims_diameter::routing::redirect_of(&Message::parse(&a).unwrap()).unwrap();
        assert_eq!(r.host_names(), ["hss2.ims.example.org"]);
        // alice is ours: answered here; nobody: 5001 from here
        let a = block_on(server.answer(&uar("alice@ims.example.org", "sip:alice@ims.example.org")))
            .unwrap();
        let m = Message::parse(&a).unwrap();
        assert!(ims_diameter::routing::redirect_of(&m).is_none());
        assert_eq!(m.outcome(), Some(result::FIRST_REGISTRATION));
        let a = block_on(server.answer(&uar("eve@ims.example.org", "sip:eve@ims.example.org")))
            .unwrap();
        assert_eq!(
            Message::parse(&a).unwrap().outcome(),
            Some(result::USER_UNKNOWN)
        );
        // cache time 0: DONT_CACHE and no Redirect-Max-Cache-Time
        let mut t0 = SlfTable::new(0);
        t0.insert("bob@ims.example.org", "hss2.ims.example.org");
        let a = block_on(
            c.requester
                .0
                .clone()
                .with_slf(t0)
                .answer(&uar("bob@ims.example.org", "sip:bob@ims.example.org")),
        )
        .unwrap();
        let r = ims_diameter::routing::redirect_of(&Message::parse(&a).unwrap()).unwrap();
        assert_eq!(r.usage, ims_diameter::routing::RedirectHostUsage::DontCache);
        assert_eq!(r.max_cache_time, None);
    }

    #[test]
    fn cx_procedures_round_trip_through_the_wire() {
        let c = client();
        let impi = "alice@ims.example.org";
        let impu = "sip:alice@ims.example.org";
        let uaa = block_on(c.uar(impi, impu, UserAuthorizationType::Registration)).unwrap();
        assert_eq!(uaa.result, result::FIRST_REGISTRATION);
        // no S-CSCF and no capabilities configured: neither Server-Name nor Server-Capabilities
        assert_eq!((uaa.server_name, uaa.server_capabilities), (None, None));
        let e = block_on(c.uar(
            impi,
            "sip:bob@ims.example.org",
            UserAuthorizationType::Registration,
        ))
        .unwrap_err();
        assert_eq!(e, CxFailure::Result(result::USER_UNKNOWN));
        let maa = block_on(c.mar(MarQuery {
            impi: impi.into(),
            impu: impu.into(),
            scheme: AuthScheme::AkaV1,
            server_name: "sip:scscf.ims.example.org".into(),
            resync: None,
        }))
        .unwrap();
        let AuthItem::Aka(v) = &maa.items[0] else {
            panic!("AKA")
        };
        assert_eq!(v.rand, [7; 16]);
        let maa = block_on(c.mar(MarQuery {
            impi: impi.into(),
            impu: impu.into(),
            scheme: AuthScheme::Digest,
            server_name: "sip:scscf.ims.example.org".into(),
            resync: None,
        }))
        .unwrap();
        assert!(matches!(&maa.items[0], AuthItem::Digest { ha1, .. } if ha1.len() == 32));
        let saa = block_on(c.sar(SarQuery {
            impi: Some(impi.into()),
            impu: impu.into(),
            server_name: "sip:scscf.ims.example.org".into(),
            assignment: ServerAssignmentType::Registration,
            user_data_available: false,
        }))
        .unwrap();
        assert!(saa
            .user_data
            .unwrap()
            .contains("<PrivateID>alice@ims.example.org</PrivateID>"));
        let lia = block_on(c.lir(impu)).unwrap();
        assert_eq!(
            lia.server_name.as_deref(),
            Some("sip:scscf.ims.example.org")
        );
    }

    #[test]
    fn faulty_requests_get_protocol_answers() {
        let c = client();
        let mar = Mar {
            session_id: "s;1;1".into(),
            vendor_specific_application_id: VendorSpecificApplicationId::cx(),
            auth_session_state: AuthSessionState::NoStateMaintained,
            origin_host: "x".into(),
            origin_realm: "y".into(),
            destination_realm: "z".into(),
            user_name: "alice@ims.example.org".into(),
            public_identity: "sip:alice@ims.example.org".into(),
            sip_number_auth_items: 1,
            server_name: "sip:s".into(),
            ..Default::default()
        };
        let wire = mar.encode(1, 1);
        // an Application-Id the HSS does not serve: 3007 DIAMETER_APPLICATION_UNSUPPORTED
        let mut bad = wire.clone();
        bad[8..12].copy_from_slice(&4u32.to_be_bytes());
        let ans = block_on(c.requester.0.answer(&bad)).unwrap();
        let a = Message::parse(&ans).unwrap();
        assert_eq!(a.outcome().map(|o| o.code()), Some(3007));
        assert_eq!((a.hop_by_hop(), a.is_request()), (1, false));
        // an answer is never answered
        let ans = block_on(c.requester.0.answer(&wire)).unwrap();
        assert!(block_on(c.requester.0.answer(&ans)).is_none());
    }

    #[test]
    fn mutated_requests_get_the_answers_of_reject_then_decode() {
        // the HSS decodes its four requests in one walk; every fault must still get the answer
        // `answer::reject` gives (the former path: reject, then parse and decode again), and
        // the valid ones an answer to themselves; nothing answered where reject finds nothing
        // to answer
        let c = client();
        let s = &c.requester.0;
        let origin = Origin {
            host: &s.origin_host,
            realm: &s.origin_realm,
            state_id: None,
        };
        let vsai = VendorSpecificApplicationId::cx;
        let requests = [
            Uar {
                session_id: "i;1;1".into(),
                vendor_specific_application_id: vsai(),
                origin_host: "icscf".into(),
                origin_realm: "ims.example.org".into(),
                destination_realm: "ims.example.org".into(),
                user_name: "alice@ims.example.org".into(),
                public_identity: "sip:alice@ims.example.org".into(),
                visited_network_identifier: b"ims.example.org".to_vec().into(),
                user_authorization_type: Some(cx::UserAuthorizationType::Registration),
                ..Default::default()
            }
            .encode(3, 4),
            Mar {
                session_id: "s;1;2".into(),
                vendor_specific_application_id: vsai(),
                origin_host: "scscf".into(),
                origin_realm: "ims.example.org".into(),
                destination_realm: "ims.example.org".into(),
                user_name: "alice@ims.example.org".into(),
                public_identity: "sip:alice@ims.example.org".into(),
                sip_number_auth_items: 1,
                sip_auth_data_item: SipAuthDataItem {
                    sip_authentication_scheme: Some("Digest-AKAv1-MD5".into()),
                    ..Default::default()
                },
                server_name: "sip:scscf.ims.example.org".into(),
                ..Default::default()
            }
            .encode(5, 6),
            Sar {
                session_id: "s;1;3".into(),
                vendor_specific_application_id: vsai(),
                origin_host: "scscf".into(),
                origin_realm: "ims.example.org".into(),
                destination_realm: "ims.example.org".into(),
                user_name: Some("alice@ims.example.org".into()),
                public_identity: vec!["sip:alice@ims.example.org".into()].into(),
                server_name: "sip:scscf.ims.example.org".into(),
                server_assignment_type: cx::ServerAssignmentType::Registration,
                ..Default::default()
            }
            .encode(7, 8),
            Lir {
                session_id: "s;1;4".into(),
                vendor_specific_application_id: vsai(),
                origin_host: "scscf".into(),
                origin_realm: "ims.example.org".into(),
                destination_realm: "ims.example.org".into(),
                public_identity: "sip:alice@ims.example.org".into(),
                ..Default::default()
            }
            .encode(9, 10),
        ];
        let mut variants = Vec::new();
        for r in &requests {
            variants.push(r.clone());
            for i in 0..r.len() {
                for f in [|b: u8| b ^ 0xff, |_| 0, |b: u8| b.wrapping_add(1)] {
                    let mut m = r.clone();
                    m[i] = f(m[i]);
                    variants.push(m);
                }
            }
            variants.extend((0..r.len()).map(|n| r[..n].to_vec()));
        }
        // the former path for a request reject finds valid: parsed and decoded again, then
        // answered by the same code (`None` where the decoder fails: not one of the four)
        let former = |m: &[u8]| {
            let msg = Message::parse(m).unwrap();
            let a = match msg.code() {
                command::USER_AUTHORIZATION => Uar::decode(&msg)
                    .ok()
                    .and_then(|r| block_on(s.uaa(&msg, r, &origin))),
                command::MULTIMEDIA_AUTH => Mar::decode(&msg)
                    .ok()
                    .and_then(|r| block_on(s.maa(&msg, r, &origin))),
                command::SERVER_ASSIGNMENT => Sar::decode(&msg)
                    .ok()
                    .and_then(|r| block_on(s.saa(&msg, r, &origin))),
                command::LOCATION_INFO => Lir::decode(&msg)
                    .ok()
                    .and_then(|r| block_on(s.lia(&msg, r, &origin))),
                _ => None,
            };
            a.map(|a| summary(&a))
        };
        // what an answer says (a MAA's vectors change from one MAR to the next)
        fn summary(a: &[u8]) -> (u32, bool, u32, u32, Option<String>, Option<u32>) {
            let m = Message::parse(a).unwrap();
            (
                m.code(),
                m.is_request(),
                m.hop_by_hop(),
                m.end_to_end(),
                m.session_id().map(str::to_string),
                m.outcome().map(|o| o.code()),
            )
        }
        let (mut faults, mut nothing, mut answered, mut unanswered) = (0, 0, 0, 0);
        for m in &variants {
            let got = block_on(s.answer(m));
            match ims_diameter::answer::reject(m, &[app::CX], &origin) {
                Ok(Some(err)) => {
                    faults += 1;
                    assert_eq!(got.as_deref(), Some(&err[..]), "{m:02x?}");
                }
                Err(_) => {
                    nothing += 1;
                    assert_eq!(got, None, "{m:02x?}");
                }
                Ok(None) => {
                    let want = former(m);
                    assert_eq!(got.as_deref().map(summary), want, "{m:02x?}");
                    if want.is_some() {
                        answered += 1;
                    } else {
                        unanswered += 1;
                    }
                }
            }
        }
        // every kind of case is met
        assert!(faults > 500 && nothing > 100 && answered > 100 && unanswered > 0);
    }

    #[test]
    fn rtr_and_ppr_reach_the_scscf_through_the_wire() {
        use crate::registrar::Binding;
        use crate::scscf::{Scscf, ScscfConfig};
        use crate::store::{MemoryStore, RegState, RegistrationRecord};
        let hss_side = HssInitiated::new("hss.ims.example.org", "ims.example.org");
        let local = LocalHss::new(
            Arc::new(Mutex::new(Hss::new(None))),
            "ims.example.org",
            || [7; 16],
        );
        let scscf = Arc::new(Scscf::new(
            ScscfConfig {
                server_name: "sip:scscf.ims.example.org".into(),
                realm: "ims.example.org".into(),
                service_route: "sip:orig@scscf.ims.example.org;lr".into(),
                registrar: crate::registrar::RegistrarConfig::default(),
                nonce_secret: vec![1; 32],
            },
            local,
            MemoryStore::new(),
        ));
        let server = ScscfCxServer::new("scscf.ims.example.org", "ims.example.org", scscf.clone());
        let rec = RegistrationRecord {
            impu: "sip:alice@ims.example.org".into(),
            impi: "alice@ims.example.org".into(),
            implicit_set: vec!["sip:alice@ims.example.org".into(), "tel:+1555".into()],
            barred: vec![],
            bindings: vec![Binding {
                uri: "sip:alice@10.0.0.1".into(),
                params: String::new(),
                instance_id: None,
                reg_id: None,
                call_id: "c".into(),
                cseq: 1,
                expires_at: u64::MAX / 2,
                path: vec![],
                q: None,
            }],
            state: RegState::Registered,
            user_data: None,
            charging: None,
            reginfo_version: 0,
        };
        block_on(scscf.store().save(&rec)).unwrap();
        scscf.adopt(&rec);

        // PPR with charging information: PPA 2001, stored
        let charging = ChargingAddresses {
            primary_ccf: Some("aaa://ccf.ims.example.org".into()),
            primary_ecf: Some("aaa://ecf.ims.example.org".into()),
            ..Default::default()
        };
        let req = hss_side.ppr(
            "scscf.ims.example.org",
            "ims.example.org",
            "alice@ims.example.org",
            None,
            Some(&charging),
        );
        let m = Message::parse(&req).unwrap();
        let p = Ppr::decode(&m).unwrap();
        assert_eq!(p.destination_host, "scscf.ims.example.org");
        let (answer, ev) = block_on(server.answer(&req)).unwrap();
        assert!(ev.is_empty());
        assert_eq!(answer_code(&answer), Some(2001));
        let a = Message::parse(&answer).unwrap();
        assert_eq!(a.code(), command::PUSH_PROFILE);
        assert!(!a.is_request());
        let stored = block_on(scscf.store().load("tel:+1555")).unwrap().unwrap();
        assert_eq!(
            stored.charging.as_deref(),
            Some("ecf=aaa://ecf.ims.example.org;ccf=aaa://ccf.ims.example.org")
        );
        // PPR for someone else: DIAMETER_ERROR_USER_UNKNOWN (experimental 5001)
        let req = hss_side.ppr(
            "scscf.ims.example.org",
            "ims.example.org",
            "bob@ims.example.org",
            None,
            Some(&charging),
        );
        let (answer, _) = block_on(server.answer(&req)).unwrap();
        assert_eq!(answer_code(&answer), Some(5001));
        assert!(Ppa::decode(&Message::parse(&answer).unwrap())
            .unwrap()
            .experimental_result
            .is_some());

        // RTR with a Deregistration-Reason: RTA 2001 and a Terminated event
        let reason = DeregistrationReason {
            code: 0,
            info: Some("gone".into()),
        };
        let req = hss_side.rtr(
            "scscf.ims.example.org",
            "ims.example.org",
            "alice@ims.example.org",
            &[],
            &reason,
        );
        let r = Rtr::decode(&Message::parse(&req).unwrap()).unwrap();
        assert_eq!(
            r.deregistration_reason.reason_code,
            cx::ReasonCode::PermanentTermination
        );
        assert_eq!(r.deregistration_reason.reason_info.as_deref(), Some("gone"));
        let (answer, ev) = block_on(server.answer(&req)).unwrap();
        assert_eq!(answer_code(&answer), Some(2001));
        assert_eq!(
            Message::parse(&answer).unwrap().code(),
            command::REGISTRATION_TERMINATION
        );
        assert_eq!(ev.len(), 1);
        assert!(matches!(&ev[0], RegEvent::Terminated { reason: r, .. } if *r == reason));
        assert!(block_on(scscf.store().load("sip:alice@ims.example.org"))
            .unwrap()
            .is_none());
        // again: nobody left
        let (answer, ev) = block_on(server.answer(&req)).unwrap();
        assert_eq!(answer_code(&answer), Some(5001));
        assert!(ev.is_empty());
        // a request of another application gets the protocol error answer
        let mut bad = req.clone();
        bad[8..12].copy_from_slice(&4u32.to_be_bytes());
        let (answer, _) = block_on(server.answer(&bad)).unwrap();
        assert_eq!(answer_code(&answer), Some(3007));
    }

    #[test]
    fn user_data_text_is_what_from_utf8_lossy_gives() {
        let cases: [&[u8]; 6] = [
            b"",
            b"<IMSSubscription><PrivateID>a@b</PrivateID></IMSSubscription>",
            "caf\u{e9} \u{1f600}".as_bytes(),
            b"ab\xffcd",
            b"\xe2\x82",
            b"ok\xc3(\xa9 tail",
        ];
        for d in cases {
            assert_eq!(utf8_text(d), String::from_utf8_lossy(d), "{d:?}");
        }
        assert_eq!(utf8_text(b"a\xffb"), "a\u{fffd}b");
    }
}
