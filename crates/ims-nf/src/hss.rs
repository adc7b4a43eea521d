//! The HSS's Cx procedures (TS 29.228 §6, result codes of TS 29.229 §6.2) as a sans-IO core:
//! subscribers with their AKA and digest credentials, registration state and assigned S-CSCF
//! per private identity, and the decisions behind UAA, MAA, SAA and LIA. The Diameter glue
//! (decoding the request AVPs, encoding the answer) lives beside it; this module only decides.

use crate::subscription::{ImsSubscription, ProfilePartIndicator};
use ims_auth::aka::{self, AuthVector, SqnGenerator};
use ims_auth::digest::{self, Algorithm};
use ims_auth::milenage::{Milenage, OperatorKey};
use ims_diameter::Outcome;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// A Cx outcome: Result-Code (base, RFC 6733) or Experimental-Result (3GPP, Vendor-Id 10415),
/// as ims-diameter models it.
pub type CxResult = Outcome;

/// The results the Cx procedures use (TS 29.229 §6.2, RFC 6733 §7.1).
pub mod result {
    use ims_diameter::{dict::VENDOR_3GPP, Outcome};

    /// DIAMETER_SUCCESS (2001).
    pub const SUCCESS: Outcome = Outcome::from_result_code(2001);
    /// DIAMETER_AUTHORIZATION_REJECTED (5003).
    pub const AUTHORIZATION_REJECTED: Outcome = Outcome::from_result_code(5003);
    /// DIAMETER_UNABLE_TO_COMPLY (5012).
    pub const UNABLE_TO_COMPLY: Outcome = Outcome::from_result_code(5012);
    /// DIAMETER_FIRST_REGISTRATION (2001).
    pub const FIRST_REGISTRATION: Outcome = Outcome::experimental(VENDOR_3GPP, 2001);
    /// DIAMETER_SUBSEQUENT_REGISTRATION (2002).
    pub const SUBSEQUENT_REGISTRATION: Outcome = Outcome::experimental(VENDOR_3GPP, 2002);
    /// DIAMETER_UNREGISTERED_SERVICE (2003).
    pub const UNREGISTERED_SERVICE: Outcome = Outcome::experimental(VENDOR_3GPP, 2003);
    /// DIAMETER_SERVER_SELECTION (2005): sent by HSSs of TS 29.229 before V7.2.0 (deprecated
    /// since) in a UAA carrying a Server-Name and/or Server-Capabilities, leaving it to the
    /// I-CSCF whether to select a new S-CSCF; never sent by [`super::Hss`].
    pub const SERVER_SELECTION: Outcome = Outcome::experimental(VENDOR_3GPP, 2005);
    /// DIAMETER_ERROR_USER_UNKNOWN (5001).
    pub const USER_UNKNOWN: Outcome = Outcome::experimental(VENDOR_3GPP, 5001);
    /// DIAMETER_ERROR_IDENTITIES_DONT_MATCH (5002).
    pub const IDENTITIES_DONT_MATCH: Outcome = Outcome::experimental(VENDOR_3GPP, 5002);
    /// DIAMETER_ERROR_IDENTITY_NOT_REGISTERED (5003).
    pub const IDENTITY_NOT_REGISTERED: Outcome = Outcome::experimental(VENDOR_3GPP, 5003);
    /// DIAMETER_ERROR_ROAMING_NOT_ALLOWED (5004).
    pub const ROAMING_NOT_ALLOWED: Outcome = Outcome::experimental(VENDOR_3GPP, 5004);
    /// DIAMETER_ERROR_IDENTITY_ALREADY_REGISTERED (5005).
    pub const IDENTITY_ALREADY_REGISTERED: Outcome = Outcome::experimental(VENDOR_3GPP, 5005);
    /// DIAMETER_ERROR_AUTH_SCHEME_NOT_SUPPORTED (5006).
    pub const AUTH_SCHEME_NOT_SUPPORTED: Outcome = Outcome::experimental(VENDOR_3GPP, 5006);
    /// DIAMETER_ERROR_IN_ASSIGNMENT_TYPE (5007).
    pub const IN_ASSIGNMENT_TYPE: Outcome = Outcome::experimental(VENDOR_3GPP, 5007);
}

/// Authentication credentials of a private identity.
#[derive(Clone)]
pub struct Credentials {
    /// IMS-AKA: Milenage with K and OP/OPc, AMF, and the SQN source.
    pub aka: Option<AkaCredentials>,
    /// The digest password (for `SIP Digest` / `Digest-MD5`).
    pub password: Option<String>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("aka", &self.aka.is_some())
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// IMS-AKA credentials.
#[derive(Clone, Debug)]
pub struct AkaCredentials {
    /// Milenage keyed with K and OPc.
    pub milenage: Milenage,
    /// Authentication management field.
    pub amf: [u8; 2],
    /// The home network's SQN.
    pub sqn: SqnGenerator,
}

impl AkaCredentials {
    /// From K, OP or OPc, AMF and the last used SEQ.
    pub fn new(k: [u8; 16], op: OperatorKey, amf: [u8; 2], seq: u64) -> AkaCredentials {
        AkaCredentials {
            milenage: Milenage::new(&k, op),
            amf,
            sqn: SqnGenerator::new(5).with_seq(seq),
        }
    }
}

/// A subscriber: private identity, profile, credentials.
#[derive(Clone, Debug)]
pub struct Subscriber {
    /// The subscription profile (its PrivateID is the IMPI).
    pub subscription: ImsSubscription,
    /// Credentials.
    pub credentials: Credentials,
}

/// Registration state of a private identity's implicit set (TS 29.228 §6.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegistrationState {
    /// NOT_REGISTERED.
    NotRegistered,
    /// REGISTERED.
    Registered,
    /// UNREGISTERED: an S-CSCF holds the profile for unregistered services.
    Unregistered,
}

/// `User-Authorization-Type` (TS 29.229 §6.3.24).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserAuthorizationType {
    /// 0 REGISTRATION.
    Registration,
    /// 1 DE_REGISTRATION.
    DeRegistration,
    /// 2 REGISTRATION_AND_CAPABILITIES.
    RegistrationAndCapabilities,
}

/// `Server-Assignment-Type` (TS 29.229 §6.3.15).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerAssignmentType {
    /// 0 NO_ASSIGNMENT.
    NoAssignment,
    /// 1 REGISTRATION.
    Registration,
    /// 2 RE_REGISTRATION.
    ReRegistration,
    /// 3 UNREGISTERED_USER.
    UnregisteredUser,
    /// 4 TIMEOUT_DEREGISTRATION.
    TimeoutDeregistration,
    /// 5 USER_DEREGISTRATION.
    UserDeregistration,
    /// 6 TIMEOUT_DEREGISTRATION_STORE_SERVER_NAME.
    TimeoutDeregistrationStoreServerName,
    /// 7 USER_DEREGISTRATION_STORE_SERVER_NAME.
    UserDeregistrationStoreServerName,
    /// 8 ADMINISTRATIVE_DEREGISTRATION.
    AdministrativeDeregistration,
    /// 9 AUTHENTICATION_FAILURE.
    AuthenticationFailure,
    /// 10 AUTHENTICATION_TIMEOUT.
    AuthenticationTimeout,
    /// 11 DEREGISTRATION_TOO_MUCH_DATA.
    DeregistrationTooMuchData,
    /// Any other value (answered with DIAMETER_ERROR_IN_ASSIGNMENT_TYPE).
    Other(u32),
}

impl ServerAssignmentType {
    /// From the wire value.
    pub fn from_code(c: u32) -> ServerAssignmentType {
        use ServerAssignmentType::*;
        match c {
            0 => NoAssignment,
            1 => Registration,
            2 => ReRegistration,
            3 => UnregisteredUser,
            4 => TimeoutDeregistration,
            5 => UserDeregistration,
            6 => TimeoutDeregistrationStoreServerName,
            7 => UserDeregistrationStoreServerName,
            8 => AdministrativeDeregistration,
            9 => AuthenticationFailure,
            10 => AuthenticationTimeout,
            11 => DeregistrationTooMuchData,
            c => Other(c),
        }
    }
}

/// The S-CSCF capabilities the operator requires for its users: what the HSS puts in the
/// Server-Capabilities AVP of a UAA or LIA when no S-CSCF is assigned (TS 29.228 §6.1.1.1,
/// §6.1.4.1; TS 29.229 §6.3.4: `Server-Capabilities ::= *[Mandatory-Capability]
/// *[Optional-Capability] *[Server-Name]`). The capability numbers are operator-defined; the
/// I-CSCF picks an S-CSCF offering every mandatory one and as many optional ones as it can,
/// preferring the `server_names` listed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScscfCapabilities {
    /// Mandatory-Capability values.
    pub mandatory: Vec<u32>,
    /// Optional-Capability values.
    pub optional: Vec<u32>,
    /// Server-Name values (SIP URIs of preferred S-CSCFs).
    pub server_names: Vec<String>,
}

impl ScscfCapabilities {
    /// True when it carries nothing: the HSS then omits Server-Capabilities (an empty Grouped
    /// AVP tells the I-CSCF nothing, and Kamailio's cdp drops a message carrying one).
    pub fn is_empty(&self) -> bool {
        self.mandatory.is_empty() && self.optional.is_empty() && self.server_names.is_empty()
    }
}

/// What the HSS answers a UAR with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UaaDecision {
    /// The result.
    pub result: CxResult,
    /// `Server-Name` when an S-CSCF is assigned.
    pub server_name: Option<String>,
    /// `Server-Capabilities` when the I-CSCF must pick an S-CSCF itself and the HSS has
    /// capabilities configured ([`Hss::scscf_capabilities`]); never `Some` of an empty set from
    /// [`Hss`]. `None` with no `server_name` on success: the I-CSCF picks from its own list.
    pub server_capabilities: Option<ScscfCapabilities>,
}

/// One `SIP-Auth-Data-Item` of an MAA.
#[derive(Clone, PartialEq, Eq)]
pub enum AuthItem {
    /// `Digest-AKAv1-MD5`: SIP-Authenticate = RAND ‖ AUTN, SIP-Authorization = XRES,
    /// Confidentiality-Key = CK, Integrity-Key = IK.
    Aka(AuthVector),
    /// `SIP Digest`: SIP-Digest-Authenticate with Digest-Realm, Digest-Algorithm and Digest-HA1.
    Digest {
        /// The realm.
        realm: String,
        /// The algorithm (MD5).
        algorithm: Algorithm,
        /// HA1 in lowercase hex.
        ha1: String,
    },
}

impl std::fmt::Debug for AuthItem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AuthItem::Aka(v) => f.debug_tuple("Aka").field(v).finish(),
            AuthItem::Digest {
                realm, algorithm, ..
            } => f
                .debug_struct("Digest")
                .field("realm", realm)
                .field("algorithm", algorithm)
                .finish_non_exhaustive(),
        }
    }
}

/// The authentication scheme an MAR asks for (`SIP-Authentication-Scheme`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthScheme {
    /// `Digest-AKAv1-MD5`.
    AkaV1,
    /// `SIP Digest` (also accepted: `Digest-MD5`, `Digest`).
    Digest,
    /// `Unknown`: the HSS picks (AKA when the subscriber has AKA credentials).
    Unknown,
}

impl AuthScheme {
    /// From the `SIP-Authentication-Scheme` text.
    pub fn parse(s: &str) -> Option<AuthScheme> {
        Some(match s {
            "Digest-AKAv1-MD5" => AuthScheme::AkaV1,
            "SIP Digest" | "Digest-MD5" | "Digest" | "HTTP_DIGEST_MD5" => AuthScheme::Digest,
            "Unknown" => AuthScheme::Unknown,
            _ => return None,
        })
    }
    /// The scheme text for the answer.
    pub fn as_str(self) -> &'static str {
        match self {
            AuthScheme::AkaV1 => "Digest-AKAv1-MD5",
            AuthScheme::Digest => "SIP Digest",
            AuthScheme::Unknown => "Unknown",
        }
    }
}

/// The parts of an MAR the HSS decides on.
#[derive(Debug, Clone, Copy)]
pub struct MarRequest<'a> {
    /// `User-Name`: the IMPI.
    pub impi: &'a str,
    /// `Public-Identity`.
    pub impu: &'a str,
    /// `SIP-Authentication-Scheme`.
    pub scheme: AuthScheme,
    /// `SIP-Number-Auth-Items` (1 to 5 are produced).
    pub count: u32,
    /// `Server-Name`: the S-CSCF asking.
    pub server_name: &'a str,
    /// `SIP-Authorization` after a synchronisation failure: RAND ‖ AUTS.
    pub resync: Option<&'a [u8]>,
    /// The digest realm for `SIP Digest`.
    pub realm: &'a str,
}

/// What the HSS answers an SAR with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SaaDecision {
    /// The result.
    pub result: CxResult,
    /// `User-Data` (the IMSSubscription XML) when it is to be sent.
    pub user_data: Option<String>,
    /// `User-Name` (the IMPI), sent with user data.
    pub user_name: Option<String>,
    /// `Associated-Identities`: the other IMPIs sharing the IMPU (none in this HSS's model).
    pub associated_identities: Vec<String>,
}

/// What the HSS answers an LIR with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiaDecision {
    /// The result.
    pub result: CxResult,
    /// `Server-Name` of the S-CSCF serving the identity.
    pub server_name: Option<String>,
    /// `Server-Capabilities` when the I-CSCF must select an S-CSCF (for unregistered services)
    /// and the HSS has capabilities configured; never `Some` of an empty set from [`Hss`].
    pub server_capabilities: Option<ScscfCapabilities>,
}

#[derive(Debug, Clone)]
struct State {
    registration: RegistrationState,
    /// Shared with every other user assigned to the same S-CSCF (see [`intern`]).
    server_name: Option<Arc<str>>,
}

/// At most this many distinct S-CSCF names are shared; beyond (a misbehaving peer naming a new
/// server in every request) each user gets its own copy, so the table stays bounded.
const MAX_SHARED_SERVER_NAMES: usize = 64;

/// The shared copy of `name`: an HSS serves a handful of S-CSCFs, so storing one `Arc` per
/// name instead of one string per registered user saves an allocation per user.
fn intern(names: &mut HashSet<Arc<str>>, name: &str) -> Arc<str> {
    if let Some(n) = names.get(name) {
        return n.clone();
    }
    let n: Arc<str> = Arc::from(name);
    if names.len() < MAX_SHARED_SERVER_NAMES {
        names.insert(n.clone());
    }
    n
}

/// The HSS core.
#[derive(Debug, Default)]
pub struct Hss {
    /// Boxed: a `Subscriber` is ≈0.9 KB (AKA credentials with their key schedule), and a map's
    /// empty slots (a third to a half of them) would each take that much.
    subscribers: HashMap<String, Box<Subscriber>>,
    /// IMPU → IMPI.
    owners: HashMap<String, String>,
    state: HashMap<String, State>,
    /// The S-CSCF names in [`State::server_name`], shared.
    server_names: HashSet<Arc<str>>,
    /// When set, UAA for a first registration names this S-CSCF instead of sending capabilities.
    default_server_name: Option<String>,
    /// Draw RANDs again while RES would contain a zero octet (see [`Hss::avoid_zero_res`]).
    avoid_zero_res: bool,
    /// Server-Capabilities of answers naming no S-CSCF (see [`Hss::scscf_capabilities`]).
    capabilities: ScscfCapabilities,
    /// Per-subscriber S-CSCF capabilities by IMPI ([`Hss::set_subscriber_capabilities`]).
    subscriber_capabilities: HashMap<String, ScscfCapabilities>,
    /// The User-Data of the subscription shapes met, written once each.
    user_data: UserDataShapes,
}

/// At most this many subscription shapes keep their User-Data text (an HSS's subscribers share
/// a handful of service profiles); the subscriptions of other shapes are written whole.
const MAX_USER_DATA_SHAPES: usize = 8;

/// The User-Data documents (TS 29.228 Annex D/E) of the subscription *shapes* met — a shape is
/// a subscription but for its private and public identities — each cut where the identities
/// go. An SAA's User-Data is then its shape's pieces with the subscriber's identities written
/// between them, escaped as [`ImsSubscription::to_xml`] writes them: the same text, without
/// writing the service profiles (their iFCs: ≈18 k instructions per registration) again. No
/// per-subscriber state: a bounded table of shapes.
#[derive(Debug, Default)]
struct UserDataShapes(Vec<UserDataShape>);

#[derive(Debug)]
struct UserDataShape {
    /// A subscription of this shape (its identities do not count).
    like: ImsSubscription,
    /// Its document cut at the identities (private identity first, then each public identity in
    /// document order): one more piece than identities; `None` when the cut did not give the
    /// document back (that shape is then written whole).
    pieces: Option<Vec<String>>,
}

impl UserDataShapes {
    /// `sub` as [`ImsSubscription::to_xml`] writes it.
    fn document(&mut self, sub: &ImsSubscription) -> String {
        if let Some(e) = self.0.iter().find(|e| same_shape(&e.like, sub)) {
            return match &e.pieces {
                Some(p) => join_identities(p, sub),
                None => sub.to_xml(),
            };
        }
        let xml = sub.to_xml();
        if self.0.len() < MAX_USER_DATA_SHAPES {
            let pieces = cut_at_identities(sub).filter(|p| join_identities(p, sub) == xml);
            self.0.push(UserDataShape {
                like: sub.clone(),
                pieces,
            });
        }
        xml
    }
}

/// The identities of `sub` in the order [`ImsSubscription::to_xml`] writes them.
fn identities_of(sub: &ImsSubscription) -> impl Iterator<Item = &str> + '_ {
    std::iter::once(sub.private_id.as_str())
        .chain(sub.public_identities().map(|p| p.identity.as_str()))
}

/// The document of `sub` cut where its identities are written: `sub` written with a marker in
/// place of each identity, split at the markers; `None` when a marker is not found in order.
fn cut_at_identities(sub: &ImsSubscription) -> Option<Vec<String>> {
    let marker = |k: usize| format!("\u{1}ims-rs-user-data-{k}\u{1}");
    let mut marked = sub.clone();
    let mut k = 0;
    marked.private_id = marker(k);
    for sp in &mut marked.service_profiles {
        for p in &mut sp.public_identities {
            k += 1;
            p.identity = marker(k);
        }
    }
    let doc = marked.to_xml();
    let mut pieces = Vec::with_capacity(k + 2);
    let mut rest = doc.as_str();
    for j in 0..=k {
        let m = marker(j);
        let at = rest.find(&m)?;
        pieces.push(rest[..at].to_owned());
        rest = &rest[at + m.len()..];
    }
    pieces.push(rest.to_owned());
    Some(pieces)
}

/// The document whose pieces (see [`cut_at_identities`]) are `pieces`, with the identities of
/// `sub` (escaped) between them.
fn join_identities(pieces: &[String], sub: &ImsSubscription) -> String {
    let ids = identities_of(sub);
    let mut out = String::with_capacity(
        pieces.iter().map(String::len).sum::<usize>()
            + identities_of(sub).map(str::len).sum::<usize>(),
    );
    let mut it = pieces.iter();
    if let Some(first) = it.next() {
        out.push_str(first);
    }
    for (piece, id) in it.zip(ids) {
        out.push_str(&crate::xml::escape(id));
        out.push_str(piece);
    }
    out
}

/// True when `a` and `b` are the same but for their identities (`private_id` and each public
/// identity's `identity`): [`ImsSubscription::to_xml`] writes them the same but for those texts.
/// Every field is named, so a field added to these types must be decided on here.
fn same_shape(a: &ImsSubscription, b: &ImsSubscription) -> bool {
    use crate::subscription::{PublicIdentity, ServiceProfile};
    let ImsSubscription {
        private_id: _,
        service_profiles: sa,
    } = a;
    let ImsSubscription {
        private_id: _,
        service_profiles: sb,
    } = b;
    let same_identity = |p: &PublicIdentity, q: &PublicIdentity| {
        let PublicIdentity {
            identity: _,
            barring_indication,
            identity_type,
            wildcarded,
            display_name,
            alias_identity_group_id,
        } = p;
        *barring_indication == q.barring_indication
            && *identity_type == q.identity_type
            && *wildcarded == q.wildcarded
            && *display_name == q.display_name
            && *alias_identity_group_id == q.alias_identity_group_id
    };
    let same_profile = |x: &ServiceProfile, y: &ServiceProfile| {
        let ServiceProfile {
            public_identities,
            subscribed_media_profile_id,
            initial_filter_criteria,
            shared_ifc_set_ids,
        } = x;
        *subscribed_media_profile_id == y.subscribed_media_profile_id
            && public_identities.len() == y.public_identities.len()
            && public_identities
                .iter()
                .zip(&y.public_identities)
                .all(|(p, q)| same_identity(p, q))
            && *shared_ifc_set_ids == y.shared_ifc_set_ids
            && *initial_filter_criteria == y.initial_filter_criteria
    };
    sa.len() == sb.len() && sa.iter().zip(sb).all(|(x, y)| same_profile(x, y))
}

impl Hss {
    /// An empty HSS. `default_server_name`: the S-CSCF to assign on first registration (None: let
    /// the I-CSCF choose from Server-Capabilities).
    pub fn new(default_server_name: Option<String>) -> Hss {
        Hss {
            default_server_name,
            ..Hss::default()
        }
    }

    /// Interoperability with UEs that handle RES as a C string (SIPp 3.6 does, so about 3 % of
    /// random vectors fail there): draw RAND again (at most 16 times) while f2 would yield a RES
    /// with a zero octet. Any RAND is as good as another to the HSS, so this costs nothing but
    /// a few AES blocks.
    pub fn avoid_zero_res(mut self, on: bool) -> Hss {
        self.avoid_zero_res = on;
        self
    }

    /// The S-CSCF capabilities sent in Server-Capabilities when a UAA (first registration, or a
    /// UAR of type REGISTRATION_AND_CAPABILITIES) or an LIA (unregistered services) names no
    /// S-CSCF (TS 29.228 §6.1.1.1, §6.1.4.1). Empty (the default): Server-Capabilities is
    /// omitted and the I-CSCF selects from its own S-CSCF list.
    pub fn scscf_capabilities(mut self, capabilities: ScscfCapabilities) -> Hss {
        self.capabilities = capabilities;
        self
    }

    /// The configured S-CSCF capabilities.
    pub fn capabilities(&self) -> &ScscfCapabilities {
        &self.capabilities
    }

    /// Server-Capabilities for an answer about `impi` naming no S-CSCF: the subscriber's own
    /// ([`Hss::set_subscriber_capabilities`]), else the HSS-wide ones; `None` when neither is
    /// configured.
    fn capabilities_to_send(&self, impi: &str) -> Option<ScscfCapabilities> {
        self.subscriber_capabilities
            .get(impi)
            .or(Some(&self.capabilities))
            .filter(|c| !c.is_empty())
            .cloned()
    }

    /// The S-CSCF capabilities one subscriber (by IMPI) requires, instead of the HSS-wide ones
    /// of [`Hss::scscf_capabilities`] (TS 29.228 §6.1.1.1, §6.1.4.1: the HSS returns the
    /// capabilities of the user). A first registration of that subscriber is then answered
    /// with these in Server-Capabilities and no Server-Name, even when the HSS has a default
    /// S-CSCF ([`Hss::new`]), so the I-CSCF selects an S-CSCF offering them; an LIA for its
    /// unregistered services likewise. An empty set removes the subscriber's own capabilities.
    pub fn set_subscriber_capabilities(&mut self, impi: &str, capabilities: ScscfCapabilities) {
        if capabilities.is_empty() {
            self.subscriber_capabilities.remove(impi);
        } else {
            self.subscriber_capabilities
                .insert(impi.to_string(), capabilities);
        }
    }

    /// The S-CSCF capabilities the subscriber `impi` has of its own, when set.
    pub fn subscriber_capabilities(&self, impi: &str) -> Option<&ScscfCapabilities> {
        self.subscriber_capabilities.get(impi)
    }

    /// The S-CSCF to name in an answer that assigns one where none is stored: the default
    /// S-CSCF, unless the subscriber has capabilities of its own for the I-CSCF to select by.
    fn default_server_for(&self, impi: &str) -> Option<&String> {
        self.default_server_name
            .as_ref()
            .filter(|_| !self.subscriber_capabilities.contains_key(impi))
    }

    /// Provisions (or replaces) a subscriber.
    pub fn add_subscriber(&mut self, s: Subscriber) {
        let impi = s.subscription.private_id.clone();
        for p in s.subscription.public_identities() {
            self.owners.insert(p.identity.clone(), impi.clone());
        }
        self.state.entry(impi.clone()).or_insert(State {
            registration: RegistrationState::NotRegistered,
            server_name: None,
        });
        self.subscribers.insert(impi, Box::new(s));
    }

    /// The subscriber with this private identity.
    pub fn subscriber(&self, impi: &str) -> Option<&Subscriber> {
        self.subscribers.get(impi).map(|s| &**s)
    }

    /// The IMPI owning `impu`.
    pub fn owner_of(&self, impu: &str) -> Option<&str> {
        self.owners.get(impu).map(String::as_str)
    }

    /// Registration state and S-CSCF of a private identity.
    pub fn registration(&self, impi: &str) -> Option<(RegistrationState, Option<&str>)> {
        self.state
            .get(impi)
            .map(|s| (s.registration, s.server_name.as_deref()))
    }

    fn check_pair(&self, impi: &str, impu: &str) -> Result<&Subscriber, CxResult> {
        let Some(owner) = self.owners.get(impu) else {
            return Err(result::USER_UNKNOWN);
        };
        let Some(sub) = self.subscribers.get(impi) else {
            return Err(result::USER_UNKNOWN);
        };
        if owner != impi {
            return Err(result::IDENTITIES_DONT_MATCH);
        }
        Ok(sub)
    }

    /// User-Authorization-Request (TS 29.228 §6.1.1.1).
    pub fn user_authorization(
        &self,
        impi: &str,
        impu: &str,
        auth_type: UserAuthorizationType,
    ) -> UaaDecision {
        let fail = |result| UaaDecision {
            result,
            server_name: None,
            server_capabilities: None,
        };
        let sub = match self.check_pair(impi, impu) {
            Ok(s) => s,
            Err(r) => return fail(r),
        };
        let barred = sub
            .subscription
            .public_identities()
            .find(|p| p.identity == impu)
            .is_some_and(|p| p.barring_indication);
        if barred {
            return fail(result::AUTHORIZATION_REJECTED);
        }
        let st = &self.state[impi];
        match auth_type {
            UserAuthorizationType::DeRegistration => match &st.server_name {
                Some(n) if st.registration != RegistrationState::NotRegistered => UaaDecision {
                    result: result::SUCCESS,
                    server_name: Some(n.to_string()),
                    server_capabilities: None,
                },
                _ => fail(result::IDENTITY_NOT_REGISTERED),
            },
            // TS 29.228 §6.1.1.1: the capabilities for a new selection (the I-CSCF's S-CSCF did
            // not answer), DIAMETER_SUCCESS and no S-CSCF name, whatever the registration state
            UserAuthorizationType::RegistrationAndCapabilities => UaaDecision {
                result: result::SUCCESS,
                server_name: None,
                server_capabilities: self.capabilities_to_send(impi),
            },
            UserAuthorizationType::Registration => match (&st.server_name, st.registration) {
                (Some(n), RegistrationState::Registered | RegistrationState::Unregistered) => {
                    UaaDecision {
                        result: result::SUBSEQUENT_REGISTRATION,
                        server_name: Some(n.to_string()),
                        server_capabilities: None,
                    }
                }
                // an S-CSCF was assigned by an earlier MAR but registration did not complete
                (Some(n), RegistrationState::NotRegistered) => UaaDecision {
                    result: result::SUBSEQUENT_REGISTRATION,
                    server_name: Some(n.to_string()),
                    server_capabilities: None,
                },
                (None, _) => match self.default_server_for(impi) {
                    Some(n) => UaaDecision {
                        result: result::FIRST_REGISTRATION,
                        server_name: Some(n.clone()),
                        server_capabilities: None,
                    },
                    None => UaaDecision {
                        result: result::FIRST_REGISTRATION,
                        server_name: None,
                        server_capabilities: self.capabilities_to_send(impi),
                    },
                },
            },
        }
    }

    /// Multimedia-Auth-Request (TS 29.228 §6.3.1); `random` supplies the RANDs.
    pub fn multimedia_auth(
        &mut self,
        req: &MarRequest<'_>,
        random: &mut dyn FnMut() -> [u8; 16],
    ) -> Result<(AuthScheme, Vec<AuthItem>), CxResult> {
        let MarRequest {
            impi,
            impu,
            scheme,
            count,
            server_name,
            resync,
            realm,
        } = *req;
        self.check_pair(impi, impu)?;
        let sub = self
            .subscribers
            .get_mut(impi)
            .expect("check_pair found the subscriber");
        let scheme = match scheme {
            AuthScheme::Unknown if sub.credentials.aka.is_some() => AuthScheme::AkaV1,
            AuthScheme::Unknown => AuthScheme::Digest,
            s => s,
        };
        let items = match scheme {
            AuthScheme::AkaV1 => {
                let aka = sub
                    .credentials
                    .aka
                    .as_mut()
                    .ok_or(result::AUTH_SCHEME_NOT_SUPPORTED)?;
                if let Some(ra) = resync {
                    // SIP-Authorization = RAND (16) ‖ AUTS (14), TS 29.229 §6.3.13
                    if ra.len() != 30 {
                        return Err(result::UNABLE_TO_COMPLY);
                    }
                    let rand: [u8; 16] = ra[..16].try_into().expect("16 bytes");
                    let sqn_ms = aka::resync(&aka.milenage, &rand, &ra[16..])
                        .map_err(|_| result::AUTHORIZATION_REJECTED)?;
                    aka.sqn.resync(sqn_ms);
                }
                let avoid = self.avoid_zero_res;
                (0..count.clamp(1, 5))
                    .map(|_| {
                        let mut rand = random();
                        for _ in 0..16 {
                            if !avoid || !aka.milenage.f2(&rand).contains(&0) {
                                break;
                            }
                            rand = random();
                        }
                        let sqn = aka.sqn.next_sqn();
                        AuthItem::Aka(AuthVector::generate(&aka.milenage, rand, sqn, aka.amf))
                    })
                    .collect()
            }
            AuthScheme::Digest => {
                let pw = sub
                    .credentials
                    .password
                    .as_deref()
                    .ok_or(result::AUTH_SCHEME_NOT_SUPPORTED)?;
                vec![AuthItem::Digest {
                    realm: realm.to_string(),
                    algorithm: Algorithm::Md5,
                    ha1: digest::ha1(Algorithm::Md5, impi, realm, pw.as_bytes()),
                }]
            }
            AuthScheme::Unknown => unreachable!("resolved above"),
        };
        // TS 29.228 §6.3.1: the HSS stores the S-CSCF name while authentication is pending
        let st = self
            .state
            .get_mut(impi)
            .expect("state exists per subscriber");
        if st.server_name.is_none() || st.registration == RegistrationState::NotRegistered {
            st.server_name = Some(intern(&mut self.server_names, server_name));
        }
        Ok((scheme, items))
    }

    /// Server-Assignment-Request (TS 29.228 §6.1.2.1). `impi` may be absent (e.g. for
    /// UNREGISTERED_USER the S-CSCF may only know the IMPU).
    pub fn server_assignment(
        &mut self,
        impi: Option<&str>,
        impu: &str,
        server_name: &str,
        assignment: ServerAssignmentType,
        user_data_already_available: bool,
    ) -> SaaDecision {
        use ServerAssignmentType as T;
        let fail = |result| SaaDecision {
            result,
            user_data: None,
            user_name: None,
            associated_identities: Vec::new(),
        };
        let Some(owner) = self.owners.get(impu).cloned() else {
            return fail(result::USER_UNKNOWN);
        };
        if impi.is_some_and(|i| i != owner) {
            return fail(result::IDENTITIES_DONT_MATCH);
        }
        let st = self
            .state
            .get_mut(&owner)
            .expect("state exists per subscriber");
        let (subscribers, user_data) = (&self.subscribers, &mut self.user_data);
        let mut profile = || {
            subscribers
                .get(&owner)
                .map(|s| user_data.document(&s.subscription))
        };
        let mut with_data = |st_result: CxResult, send: bool| SaaDecision {
            result: st_result,
            user_data: if send { profile() } else { None },
            user_name: Some(owner.clone()),
            associated_identities: Vec::new(),
        };
        match assignment {
            T::Registration | T::ReRegistration => {
                st.registration = RegistrationState::Registered;
                st.server_name = Some(intern(&mut self.server_names, server_name));
                with_data(
                    result::SUCCESS,
                    !(assignment == T::ReRegistration && user_data_already_available),
                )
            }
            T::UnregisteredUser => {
                if st.registration == RegistrationState::Registered
                    && st.server_name.as_deref().is_some_and(|n| n != server_name)
                {
                    return fail(result::IDENTITY_ALREADY_REGISTERED);
                }
                st.registration = RegistrationState::Unregistered;
                st.server_name = Some(intern(&mut self.server_names, server_name));
                with_data(result::SUCCESS, !user_data_already_available)
            }
            T::NoAssignment => {
                if st.server_name.as_deref() != Some(server_name) {
                    return fail(result::UNABLE_TO_COMPLY);
                }
                with_data(result::SUCCESS, true)
            }
            T::TimeoutDeregistration
            | T::UserDeregistration
            | T::AdministrativeDeregistration
            | T::AuthenticationFailure
            | T::AuthenticationTimeout
            | T::DeregistrationTooMuchData => {
                st.registration = RegistrationState::NotRegistered;
                st.server_name = None;
                with_data(result::SUCCESS, false)
            }
            T::TimeoutDeregistrationStoreServerName | T::UserDeregistrationStoreServerName => {
                st.registration = RegistrationState::NotRegistered;
                st.server_name = Some(intern(&mut self.server_names, server_name));
                with_data(result::SUCCESS, false)
            }
            T::Other(_) => fail(result::IN_ASSIGNMENT_TYPE),
        }
    }

    /// Location-Info-Request (TS 29.228 §6.2.1.1).
    pub fn location_info(&self, impu: &str) -> LiaDecision {
        let fail = |result| LiaDecision {
            result,
            server_name: None,
            server_capabilities: None,
        };
        let Some(owner) = self.owners.get(impu) else {
            return fail(result::USER_UNKNOWN);
        };
        let st = &self.state[owner];
        match (st.registration, &st.server_name) {
            (RegistrationState::Registered, Some(n)) => LiaDecision {
                result: result::SUCCESS,
                server_name: Some(n.to_string()),
                server_capabilities: None,
            },
            (RegistrationState::Unregistered, Some(n)) => LiaDecision {
                result: result::UNREGISTERED_SERVICE,
                server_name: Some(n.to_string()),
                server_capabilities: None,
            },
            _ => {
                // services for unregistered users: an iFC without ProfilePartIndicator or
                // with UNREGISTERED applies while not registered
                let has_unreg_services = self.subscribers[owner]
                    .subscription
                    .profile_of(impu)
                    .is_some_and(|sp| {
                        sp.initial_filter_criteria.iter().any(|i| {
                            i.profile_part_indicator != Some(ProfilePartIndicator::Registered)
                        })
                    });
                if !has_unreg_services {
                    return fail(result::IDENTITY_NOT_REGISTERED);
                }
                match self.default_server_for(owner) {
                    Some(n) => LiaDecision {
                        result: result::UNREGISTERED_SERVICE,
                        server_name: Some(n.clone()),
                        server_capabilities: None,
                    },
                    None => LiaDecision {
                        result: result::UNREGISTERED_SERVICE,
                        server_name: None,
                        server_capabilities: self.capabilities_to_send(owner),
                    },
                }
            }
        }
    }

    /// Administrative de-registration (what triggers an RTR): marks the IMPI not registered and
    /// returns the S-CSCF to send the RTR to and the IMPUs concerned.
    pub fn deregister(&mut self, impi: &str) -> Option<(String, Vec<String>)> {
        let sub = self.subscribers.get(impi)?;
        let impus = sub
            .subscription
            .public_identities()
            .map(|p| p.identity.clone())
            .collect();
        let st = self.state.get_mut(impi)?;
        let server = st.server_name.take()?;
        st.registration = RegistrationState::NotRegistered;
        Some((server.to_string(), impus))
    }

    /// Replaces a subscriber's profile (what triggers a PPR): returns the S-CSCF holding it (if
    /// any) and the new User-Data to push.
    pub fn update_profile(
        &mut self,
        subscription: ImsSubscription,
    ) -> Option<(Option<String>, String)> {
        let impi = subscription.private_id.clone();
        let sub = self.subscribers.get_mut(&impi)?;
        for p in sub.subscription.public_identities() {
            self.owners.remove(&p.identity);
        }
        for p in subscription.public_identities() {
            self.owners.insert(p.identity.clone(), impi.clone());
        }
        let xml = subscription.to_xml();
        sub.subscription = subscription;
        let server = self.state.get(&impi).and_then(|s| match s.registration {
            RegistrationState::NotRegistered => None,
            _ => s.server_name.as_deref().map(str::to_string),
        });
        Some((server, xml))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::subscription::{PublicIdentity, ServiceProfile};
    use ims_auth::aka::{SqnMs, Usim};

    const IMPI: &str = "001010000000001@ims.example.org";
    const IMPU: &str = "sip:+15550001@ims.example.org";
    const SCSCF: &str = "sip:scscf.ims.example.org:6060";
    // TS 35.208 test set 1
    const K: [u8; 16] = [
        0x46, 0x5b, 0x5c, 0xe8, 0xb1, 0x99, 0xb4, 0x9f, 0xaa, 0x5f, 0x0a, 0x2e, 0xe2, 0x38, 0xa6,
        0xbc,
    ];
    const OP: [u8; 16] = [
        0xcd, 0xc2, 0x02, 0xd5, 0x12, 0x3e, 0x20, 0xf6, 0x2b, 0x6d, 0x67, 0x6a, 0xc7, 0x2c, 0xb3,
        0x18,
    ];

    fn hss(default: Option<&str>) -> Hss {
        let mut h = Hss::new(default.map(str::to_string));
        let mut barred = PublicIdentity::new("sip:barred@ims.example.org");
        barred.barring_indication = true;
        h.add_subscriber(Subscriber {
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
            credentials: Credentials {
                aka: Some(AkaCredentials::new(K, OperatorKey::Op(OP), [0x80, 0x00], 0)),
                password: Some("secret".into()),
            },
        });
        h
    }

    fn rng() -> impl FnMut() -> [u8; 16] {
        let mut n = 0u8;
        move || {
            n = n.wrapping_add(1);
            [n; 16]
        }
    }

    /// An SAA's User-Data is the subscription's `to_xml` text whatever the shapes met (more
    /// than the table holds, shapes differing in one field only, identities needing escapes, a
    /// field holding a cut marker's text), and the shapes met first are written from pieces.
    #[test]
    fn user_data_is_the_subscriptions_document_whatever_its_shape() {
        use crate::subscription::{
            ApplicationServer, IdentityType, InitialFilterCriteria, PublicIdentity, ServiceProfile,
            Spt, SptKind, TriggerPoint,
        };
        let ifc = |prio: i32, method: &str, server: &str| InitialFilterCriteria {
            priority: prio,
            trigger_point: Some(TriggerPoint {
                condition_type_cnf: false,
                spts: vec![Spt::new(SptKind::Method(method.into()))],
            }),
            application_server: ApplicationServer::new(server),
            ..InitialFilterCriteria::default()
        };
        let shape = |k: usize, u: usize| -> ImsSubscription {
            let user = match u % 3 {
                0 => format!("u{k}x{u}"),
                1 => format!("u{k}&<'\"{u}"),
                _ => format!("{u}-{}", "long".repeat(k + 1)),
            };
            let mut pis = vec![
                PublicIdentity::new(format!("sip:{user}@ims.example.org")),
                PublicIdentity::new(format!("tel:+1555{u:04}")),
            ];
            let mut sp = ServiceProfile {
                initial_filter_criteria: vec![
                    ifc(10, "REGISTER", "sip:as.example.org"),
                    ifc(20, "MESSAGE", "sip:im.example.org"),
                ],
                ..ServiceProfile::default()
            };
            match k {
                0 => {}
                1 => pis[1].barring_indication = true,
                2 => pis[0].display_name = Some("A & B".into()),
                3 => pis[1].identity_type = Some(IdentityType::DistinctPsi),
                // the marker of the next identity's place, written before it
                4 => pis[0].wildcarded = Some("\u{1}ims-rs-user-data-2\u{1}".into()),
                5 => {
                    sp.initial_filter_criteria.pop();
                }
                6 => sp.subscribed_media_profile_id = Some(3),
                7 => sp.shared_ifc_set_ids = vec![1, 2],
                8 => pis.push(PublicIdentity::new(format!("sip:{user}.3@ims.example.org"))),
                9 => sp.initial_filter_criteria[0].priority = 11,
                // per-user display names: a shape per user, past the table's bound
                _ => pis[0].display_name = Some(format!("user {u}")),
            }
            sp.public_identities = pis;
            let mut sps = vec![sp];
            if k == 8 {
                sps.push(ServiceProfile {
                    public_identities: vec![PublicIdentity::new(format!("sip:{user}.4@x"))],
                    ..ServiceProfile::default()
                });
            }
            ImsSubscription {
                private_id: format!("{user}@ims.example.org"),
                service_profiles: sps,
            }
        };
        let mut h = Hss::new(Some(SCSCF.into()));
        let mut subs = Vec::new();
        for u in 0..6 {
            for k in 0..12 {
                let sub = shape(k, 100 * k + u);
                h.add_subscriber(Subscriber {
                    subscription: sub.clone(),
                    credentials: Credentials {
                        aka: None,
                        password: Some("pw".into()),
                    },
                });
                subs.push(sub);
            }
        }
        for round in 0..2 {
            for sub in &subs {
                let impu = &sub.service_profiles[0].public_identities[0].identity;
                let saa = h.server_assignment(
                    Some(&sub.private_id),
                    impu,
                    SCSCF,
                    if round == 0 {
                        ServerAssignmentType::Registration
                    } else {
                        ServerAssignmentType::NoAssignment
                    },
                    false,
                );
                assert_eq!(saa.result, result::SUCCESS, "{impu}");
                assert_eq!(saa.user_data, Some(sub.to_xml()), "{impu}");
            }
        }
        let shapes = &h.user_data.0;
        assert_eq!(shapes.len(), MAX_USER_DATA_SHAPES);
        // the marker in a field makes its shape's cut fail: written whole; the others cut
        let whole: Vec<_> = shapes.iter().filter(|e| e.pieces.is_none()).collect();
        assert_eq!(whole.len(), 1);
        assert!(whole[0].like.service_profiles[0].public_identities[0]
            .wildcarded
            .is_some());
    }

    #[test]
    fn assigned_server_names_are_shared_and_bounded() {
        let mut h = hss(Some(SCSCF));
        let second = ImsSubscription {
            private_id: "bob@ims.example.org".into(),
            service_profiles: vec![ServiceProfile {
                public_identities: vec![PublicIdentity::new("sip:bob@ims.example.org")],
                ..ServiceProfile::default()
            }],
        };
        h.add_subscriber(Subscriber {
            subscription: second,
            credentials: Credentials {
                aka: None,
                password: Some("pw".into()),
            },
        });
        for (impi, impu) in [
            (IMPI, IMPU),
            ("bob@ims.example.org", "sip:bob@ims.example.org"),
        ] {
            let saa = h.server_assignment(
                Some(impi),
                impu,
                SCSCF,
                ServerAssignmentType::Registration,
                false,
            );
            assert_eq!(saa.result, result::SUCCESS);
        }
        let a = h.state[IMPI].server_name.clone().unwrap();
        let b = h.state["bob@ims.example.org"].server_name.clone().unwrap();
        assert_eq!(&*a, SCSCF);
        // one copy of the name for both users
        assert!(Arc::ptr_eq(&a, &b));
        let lia = h.location_info(IMPU);
        assert_eq!(lia.server_name.as_deref(), Some(SCSCF));
        // a flood of distinct names does not grow the shared table past its bound
        let mut names = HashSet::new();
        for i in 0..(MAX_SHARED_SERVER_NAMES + 10) {
            let n = intern(&mut names, &format!("sip:s{i}.example.org"));
            assert_eq!(&*n, format!("sip:s{i}.example.org"));
        }
        assert_eq!(names.len(), MAX_SHARED_SERVER_NAMES);
    }

    /// TS 29.228 §6.1.4.1: an LIA for an unregistered user with services for unregistered
    /// users and no S-CSCF to name carries the configured capabilities, or none (never empty).
    #[test]
    fn lia_for_unregistered_services_carries_the_configured_capabilities() {
        let caps = ScscfCapabilities {
            mandatory: vec![7],
            optional: vec![],
            server_names: vec!["sip:scscf9.ims.example.org".into()],
        };
        for configured in [None, Some(caps)] {
            let mut h = hss(None).scscf_capabilities(configured.clone().unwrap_or_default());
            let mut sub = h.subscriber(IMPI).unwrap().clone();
            with_unregistered_service(&mut sub);
            h.add_subscriber(sub);
            let lia = h.location_info(IMPU);
            assert_eq!(lia.result, result::UNREGISTERED_SERVICE);
            assert_eq!(lia.server_name, None);
            assert_eq!(lia.server_capabilities, configured);
            let uaa = h.user_authorization(
                IMPI,
                IMPU,
                UserAuthorizationType::RegistrationAndCapabilities,
            );
            assert_eq!(uaa.server_capabilities, configured);
        }
        // a default S-CSCF is named instead
        let h = hss(Some(SCSCF)).scscf_capabilities(ScscfCapabilities {
            mandatory: vec![1],
            ..Default::default()
        });
        let uaa = h.user_authorization(IMPI, IMPU, UserAuthorizationType::Registration);
        assert_eq!(
            (uaa.server_name.as_deref(), uaa.server_capabilities),
            (Some(SCSCF), None)
        );
        assert!(ScscfCapabilities::default().is_empty());
    }

    /// Gives the first service profile an iFC (with no trigger point) toward an application
    /// server, so that the user has services while unregistered (TS 29.228 §6.1.4.1).
    fn with_unregistered_service(sub: &mut Subscriber) {
        sub.subscription.service_profiles[0]
            .initial_filter_criteria
            .push(crate::subscription::InitialFilterCriteria {
                priority: 1,
                trigger_point: None,
                application_server: crate::subscription::ApplicationServer::new(
                    "sip:as.ims.example.org",
                ),
                profile_part_indicator: None,
            });
    }

    /// TS 29.228 §6.1.1.1, §6.1.4.1: a subscriber with capabilities of its own gets them in
    /// Server-Capabilities (and no default S-CSCF named) for a first registration and for its
    /// unregistered services; other subscribers keep the HSS-wide answer; once an S-CSCF is
    /// assigned, it is named; clearing them restores the default.
    #[test]
    fn per_subscriber_capabilities_replace_the_hss_wide_ones() {
        let wide = ScscfCapabilities {
            mandatory: vec![1],
            ..Default::default()
        };
        let own = ScscfCapabilities {
            mandatory: vec![5],
            optional: vec![6],
            server_names: vec![],
        };
        for default in [None, Some(SCSCF)] {
            let mut h = hss(default).scscf_capabilities(wide.clone());
            let mut bob = h.subscriber(IMPI).unwrap().clone();
            bob.subscription.private_id = "bob@ims.example.org".into();
            bob.subscription.service_profiles[0].public_identities =
                vec![PublicIdentity::new("sip:bob@ims.example.org")];
            with_unregistered_service(&mut bob);
            h.add_subscriber(bob);
            h.set_subscriber_capabilities("bob@ims.example.org", own.clone());
            assert_eq!(h.subscriber_capabilities("bob@ims.example.org"), Some(&own));
            assert_eq!(h.subscriber_capabilities(IMPI), None);
            let bob_uaa = |h: &Hss| {
                h.user_authorization(
                    "bob@ims.example.org",
                    "sip:bob@ims.example.org",
                    UserAuthorizationType::Registration,
                )
            };
            let uaa = bob_uaa(&h);
            assert_eq!(uaa.result, result::FIRST_REGISTRATION, "{default:?}");
            assert_eq!(
                (uaa.server_name, uaa.server_capabilities),
                (None, Some(own.clone())),
                "{default:?}"
            );
            let uaa = h.user_authorization(
                "bob@ims.example.org",
                "sip:bob@ims.example.org",
                UserAuthorizationType::RegistrationAndCapabilities,
            );
            assert_eq!(uaa.server_capabilities, Some(own.clone()));
            let lia = h.location_info("sip:bob@ims.example.org");
            assert_eq!(lia.result, result::UNREGISTERED_SERVICE);
            assert_eq!(
                (lia.server_name, lia.server_capabilities),
                (None, Some(own.clone())),
                "{default:?}"
            );
            // alice keeps the HSS-wide answer
            let uaa = h.user_authorization(IMPI, IMPU, UserAuthorizationType::Registration);
            match default {
                Some(n) => assert_eq!(
                    (uaa.server_name.as_deref(), uaa.server_capabilities),
                    (Some(n), None)
                ),
                None => assert_eq!(
                    (uaa.server_name, uaa.server_capabilities),
                    (None, Some(wide.clone()))
                ),
            }
            // the S-CSCF the I-CSCF selected is assigned: named from now on
            let saa = h.server_assignment(
                Some("bob@ims.example.org"),
                "sip:bob@ims.example.org",
                "sip:s5.ims.example.org",
                ServerAssignmentType::Registration,
                false,
            );
            assert_eq!(saa.result, result::SUCCESS);
            let uaa = bob_uaa(&h);
            assert_eq!(uaa.result, result::SUBSEQUENT_REGISTRATION);
            assert_eq!(
                (uaa.server_name.as_deref(), uaa.server_capabilities),
                (Some("sip:s5.ims.example.org"), None)
            );
            // de-registered and cleared: the HSS-wide answer again
            h.server_assignment(
                Some("bob@ims.example.org"),
                "sip:bob@ims.example.org",
                "sip:s5.ims.example.org",
                ServerAssignmentType::UserDeregistration,
                false,
            );
            h.set_subscriber_capabilities("bob@ims.example.org", ScscfCapabilities::default());
            assert_eq!(h.subscriber_capabilities("bob@ims.example.org"), None);
            let uaa = bob_uaa(&h);
            assert_eq!(
                (uaa.server_name.as_deref(), uaa.server_capabilities),
                match default {
                    Some(n) => (Some(n), None),
                    None => (None, Some(wide.clone())),
                }
            );
        }
    }

    #[test]
    fn registration_flow_uar_mar_sar_lir() {
        let mut h = hss(None);
        let uaa = h.user_authorization(IMPI, IMPU, UserAuthorizationType::Registration);
        assert_eq!(uaa.result, result::FIRST_REGISTRATION);
        // nothing configured: no Server-Capabilities (never an empty set)
        assert_eq!(uaa.server_capabilities, None);
        assert_eq!(uaa.server_name, None);
        assert_eq!(
            h.user_authorization("x@y", IMPU, UserAuthorizationType::Registration)
                .result,
            result::USER_UNKNOWN
        );
        assert_eq!(
            h.user_authorization(IMPI, "sip:nobody@x", UserAuthorizationType::Registration)
                .result,
            result::USER_UNKNOWN
        );
        assert_eq!(
            h.user_authorization(
                IMPI,
                "sip:barred@ims.example.org",
                UserAuthorizationType::Registration
            )
            .result,
            result::AUTHORIZATION_REJECTED
        );
        // MAR: an AKA vector the USIM accepts
        let (scheme, items) = h
            .multimedia_auth(
                &MarRequest {
                    impi: IMPI,
                    impu: IMPU,
                    scheme: AuthScheme::Unknown,
                    count: 1,
                    server_name: SCSCF,
                    resync: None,
                    realm: "ims.example.org",
                },
                &mut rng(),
            )
            .unwrap();
        assert_eq!(scheme, AuthScheme::AkaV1);
        let AuthItem::Aka(v) = &items[0] else {
            panic!("AKA item")
        };
        let mut usim = Usim::new(Milenage::new(&K, OperatorKey::Op(OP)), 5);
        let keys = usim.authenticate(&v.rand, &v.autn).unwrap();
        assert!(v.check_res(&keys.res));
        // LIR before registration completes: not registered, no unregistered services
        assert_eq!(
            h.location_info(IMPU).result,
            result::IDENTITY_NOT_REGISTERED
        );
        // SAR REGISTRATION
        let saa = h.server_assignment(
            Some(IMPI),
            IMPU,
            SCSCF,
            ServerAssignmentType::Registration,
            false,
        );
        assert_eq!(saa.result, result::SUCCESS);
        let profile = ImsSubscription::from_xml(saa.user_data.unwrap().as_bytes()).unwrap();
        assert_eq!(profile.private_id, IMPI);
        // now registered: subsequent UAR names the S-CSCF, LIR too (by the tel URI as well)
        let uaa = h.user_authorization(IMPI, IMPU, UserAuthorizationType::Registration);
        assert_eq!(
            (uaa.result, uaa.server_name.as_deref()),
            (result::SUBSEQUENT_REGISTRATION, Some(SCSCF))
        );
        let lia = h.location_info("tel:+15550001");
        assert_eq!(
            (lia.result, lia.server_name.as_deref()),
            (result::SUCCESS, Some(SCSCF))
        );
        // re-registration with data already available sends no User-Data
        let saa = h.server_assignment(
            Some(IMPI),
            IMPU,
            SCSCF,
            ServerAssignmentType::ReRegistration,
            true,
        );
        assert!(saa.user_data.is_none());
        // user de-registration
        let saa = h.server_assignment(
            Some(IMPI),
            IMPU,
            SCSCF,
            ServerAssignmentType::UserDeregistration,
            false,
        );
        assert_eq!(saa.result, result::SUCCESS);
        assert_eq!(
            h.registration(IMPI),
            Some((RegistrationState::NotRegistered, None))
        );
        assert_eq!(
            h.user_authorization(IMPI, IMPU, UserAuthorizationType::DeRegistration)
                .result,
            result::IDENTITY_NOT_REGISTERED
        );
        assert_eq!(
            h.server_assignment(
                Some(IMPI),
                IMPU,
                SCSCF,
                ServerAssignmentType::Other(99),
                false
            )
            .result,
            result::IN_ASSIGNMENT_TYPE
        );
    }

    #[test]
    fn aka_resync_after_usim_sqn_ahead() {
        let mut h = hss(Some(SCSCF));
        // the USIM has already seen a much higher SQN (e.g. after an HSS restore)
        let m = Milenage::new(&K, OperatorKey::Op(OP));
        let mut ms = SqnMs::new(5);
        ms.accept(aka::Sqn::from_parts(1000, 0, 5));
        let mut usim = Usim::with_sqn(m, ms);
        let mut r = rng();
        let (_, items) = h
            .multimedia_auth(
                &MarRequest {
                    impi: IMPI,
                    impu: IMPU,
                    scheme: AuthScheme::AkaV1,
                    count: 1,
                    server_name: SCSCF,
                    resync: None,
                    realm: "r",
                },
                &mut r,
            )
            .unwrap();
        let AuthItem::Aka(v) = &items[0] else {
            panic!()
        };
        let Err(ims_auth::aka::AkaFailure::SyncFailure { auts }) =
            usim.authenticate(&v.rand, &v.autn)
        else {
            panic!("stale SQN must give a sync failure")
        };
        let mut ra = v.rand.to_vec();
        ra.extend_from_slice(&auts);
        let (_, items) = h
            .multimedia_auth(
                &MarRequest {
                    impi: IMPI,
                    impu: IMPU,
                    scheme: AuthScheme::AkaV1,
                    count: 1,
                    server_name: SCSCF,
                    resync: Some(&ra),
                    realm: "r",
                },
                &mut r,
            )
            .unwrap();
        let AuthItem::Aka(v2) = &items[0] else {
            panic!()
        };
        assert!(usim.authenticate(&v2.rand, &v2.autn).is_ok());
        // a tampered AUTS is refused
        ra[20] ^= 1;
        assert_eq!(
            h.multimedia_auth(
                &MarRequest {
                    impi: IMPI,
                    impu: IMPU,
                    scheme: AuthScheme::AkaV1,
                    count: 1,
                    server_name: SCSCF,
                    resync: Some(&ra),
                    realm: "r"
                },
                &mut r
            )
            .unwrap_err(),
            result::AUTHORIZATION_REJECTED
        );
    }

    #[test]
    fn zero_octets_in_res_can_be_avoided() {
        let mut h = hss(Some(SCSCF)).avoid_zero_res(true);
        let mut n = 0u32;
        let mut rand = move || {
            n += 1;
            let mut r = [0u8; 16];
            r[..4].copy_from_slice(&n.to_be_bytes());
            r
        };
        let req = MarRequest {
            impi: IMPI,
            impu: IMPU,
            scheme: AuthScheme::AkaV1,
            count: 1,
            server_name: SCSCF,
            resync: None,
            realm: "r",
        };
        let mut seen_zero_before = false;
        let m = Milenage::new(&K, OperatorKey::Op(OP));
        for i in 1..=300u32 {
            let mut r = [0u8; 16];
            r[..4].copy_from_slice(&i.to_be_bytes());
            seen_zero_before |= m.f2(&r).contains(&0);
        }
        assert!(
            seen_zero_before,
            "the sequence does produce a RES with a zero octet"
        );
        for _ in 0..300 {
            let (_, items) = h.multimedia_auth(&req, &mut rand).unwrap();
            let AuthItem::Aka(v) = &items[0] else {
                panic!()
            };
            assert!(!v.xres.contains(&0));
        }
    }

    #[test]
    fn digest_ha1_rtr_and_ppr() {
        let mut h = hss(Some(SCSCF));
        let (s, items) = h
            .multimedia_auth(
                &MarRequest {
                    impi: IMPI,
                    impu: IMPU,
                    scheme: AuthScheme::Digest,
                    count: 1,
                    server_name: SCSCF,
                    resync: None,
                    realm: "ims.example.org",
                },
                &mut rng(),
            )
            .unwrap();
        assert_eq!(s, AuthScheme::Digest);
        let AuthItem::Digest { ha1, .. } = &items[0] else {
            panic!()
        };
        assert_eq!(
            ha1,
            &digest::ha1(Algorithm::Md5, IMPI, "ims.example.org", b"secret")
        );
        h.server_assignment(
            None,
            "tel:+15550001",
            SCSCF,
            ServerAssignmentType::Registration,
            false,
        );
        let mut sub = h.subscriber(IMPI).unwrap().subscription.clone();
        sub.service_profiles[0]
            .public_identities
            .push(PublicIdentity::new("sip:new@ims.example.org"));
        let (server, xml) = h.update_profile(sub).unwrap();
        assert_eq!(server.as_deref(), Some(SCSCF));
        assert!(xml.contains("sip:new@ims.example.org"));
        assert_eq!(h.owner_of("sip:new@ims.example.org"), Some(IMPI));
        let (server, impus) = h.deregister(IMPI).unwrap();
        assert_eq!(server, SCSCF);
        assert_eq!(impus.len(), 4);
        assert_eq!(
            h.location_info(IMPU).result,
            result::IDENTITY_NOT_REGISTERED
        );
    }
}
