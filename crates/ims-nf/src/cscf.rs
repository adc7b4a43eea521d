//! Routing decisions of the P-CSCF (TS 24.229 §5.2), I-CSCF (§5.3) and S-CSCF (§5.4.3) for
//! requests a transaction-stateful proxy hands them. The proxy core does RFC 3261 §16 (Via,
//! Record-Route, Max-Forwards, forking, best response); these types only say where a request
//! goes and what to add to it, or how to answer it.
//!
//! Each role runs its own proxy socket; the S-CSCF uses two (originating and terminating), so
//! the session case is known from where a request arrived, as the Service-Route and the
//! I-CSCF's Route point to different ports.

use crate::cx::{CxClient, CxFailure};
use crate::enum_dns::EnumTable;
use crate::hss::{result, UserAuthorizationType};
use crate::ifc::Context;
use crate::keyed_hash::{KeyedMap, KeyedSet, KeyedState};
use crate::registrar::Binding;
use crate::rx_media::{media_components_of, OfferFrom, SdpMedia};
use crate::store::{BindingStore, RegistrationRecord};
use crate::subscription::SessionCase;
use ims_diameter::rx::MediaComponentDescription;
use ims_sip::{HeaderName, Message, Method, Uri};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Where a request goes and what is added to it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Forward {
    /// A new Request-URI (`None`: keep it).
    pub request_uri: Option<String>,
    /// Route values pushed on top (first topmost), e.g. `<sip:scscf.example.org:6060;lr>`.
    pub routes: Vec<String>,
    /// Headers appended.
    pub headers: Vec<(String, String)>,
    /// Header names removed.
    pub remove: Vec<String>,
    /// The URI the next hop is resolved from (`None`: the proxy's own choice — the top Route,
    /// else the Request-URI).
    pub next_hop: Option<String>,
}

/// A routing decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Forward to these targets in parallel (one for most requests; one per contact at the
    /// terminating S-CSCF).
    Forward(Vec<Forward>),
    /// Answer with this status (the proxy builds the response).
    Reply(u16),
    /// Answer with this status and these extra headers (a 494 with the P-CSCF's
    /// Security-Server, RFC 3329 §2.3.1).
    ReplyWith(u16, Vec<(String, String)>),
    /// Drop the request without an answer (one from a UE outside its security associations,
    /// [`crate::sec_agree::SecAgree::accept_request`]).
    Discard,
}

fn one(f: Forward) -> Decision {
    Decision::Forward(vec![f])
}

pub(crate) fn lr(uri: &str) -> String {
    let mut s = String::with_capacity(uri.len() + 5);
    s.push('<');
    s.push_str(uri);
    if !uri.contains(";lr") {
        s.push_str(";lr");
    }
    s.push('>');
    s
}

/// The Route back to us after an application server: `<uri;odi=N;lr>` (written once).
fn lr_odi(uri: &str, odi: i32) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(uri.len() + 20);
    s.push('<');
    s.push_str(uri);
    let _ = write!(s, ";odi={odi}");
    if !uri.contains(";lr") {
        s.push_str(";lr");
    }
    s.push('>');
    s
}

/// The host of a `sip:`/`sips:` URI as written (an IPv6 reference with its brackets), read
/// without parsing the rest: after the userinfo's `@` (RFC 3261 §25.1: no unescaped `@`
/// elsewhere), up to the port, parameters or headers.
pub(crate) fn sip_host(uri: &str) -> Option<&str> {
    let (scheme, rest) = uri.split_once(':')?;
    if !(scheme.eq_ignore_ascii_case("sip") || scheme.eq_ignore_ascii_case("sips")) {
        return None;
    }
    let hostport = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
    let host = if hostport.starts_with('[') {
        &hostport[..=hostport.find(']')?]
    } else {
        hostport.split([':', ';', '?']).next().unwrap_or(hostport)
    };
    (!host.is_empty()).then_some(host)
}

/// The URI of a name-addr or Route value (`<sip:x;lr>` → `sip:x;lr`).
pub(crate) fn uri_of(value: &str) -> String {
    uri_in(value).to_string()
}

/// The served user's identity for a request: P-Asserted-Identity, else From.
fn asserted_identity(req: &Message<'_>) -> Option<String> {
    if let Some(v) = req.header(HeaderName::PAssertedIdentity) {
        return Some(uri_of(v.split(',').next().unwrap_or(v)));
    }
    req.from()
        .ok()
        .flatten()
        .map(|f| f.uri().as_str().to_string())
}

fn to_tag_of(m: &Message<'_>) -> Option<String> {
    m.to()
        .ok()
        .flatten()
        .and_then(|t| t.tag().map(str::to_string))
}

/// Whether a request is initial: its To has no tag (RFC 3261 §12.1.1, §12.2). Runs for every
/// request at each CSCF, so the To header's parameters are read without parsing its URI (a
/// typed To costs ≈1.5k instructions): [`has_tag_param`].
fn is_initial(req: &Message<'_>) -> bool {
    req.header(HeaderName::To).is_none_or(|v| !has_tag_param(v))
}

/// Whether a From/To value carries a valued `tag` header parameter: the parameters follow the
/// name-addr's `>` (a quoted display name may hold `<`, `>`, `;` and escaped quotes), or for an
/// addr-spec its first `;` (RFC 3261 §20.10: then they are header parameters). Agrees with
/// `NameAddrHeader::tag` on every value that parses.
fn has_tag_param(value: &str) -> bool {
    let b = value.as_bytes();
    let mut quoted = false;
    let mut i = 0;
    let params = loop {
        let Some(&c) = b.get(i) else {
            return false;
        };
        match c {
            b'\\' if quoted => i += 1,
            b'"' => quoted = !quoted,
            b'<' if !quoted => match value[i..].find('>') {
                Some(j) => break &value[i + j + 1..],
                None => return false,
            },
            b';' if !quoted => break &value[i..],
            _ => {}
        }
        i += 1;
    };
    params.split(';').any(|p| {
        p.split_once('=')
            .is_some_and(|(n, v)| n.trim().eq_ignore_ascii_case("tag") && !v.trim().is_empty())
    })
}

// ---------------------------------------------------------------------------------------------
// P-CSCF

/// P-CSCF settings.
#[derive(Debug, Clone)]
pub struct PcscfConfig {
    /// Our core-facing URI, put in Path so terminating requests come back to us
    /// (`sip:term@127.0.0.1:5061`).
    pub path_uri: String,
    /// The I-CSCF of the home network (`sip:127.0.0.1:5062`).
    pub icscf: String,
    /// P-Visited-Network-ID value (`"ims.example.org"`).
    pub visited_network_id: String,
    /// Host name used in P-Charging-Vector icid-generated-at.
    pub host: String,
}

/// What the P-CSCF knows about a registered UE (from the 200 OK to its REGISTER).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UeRegistration {
    /// P-Associated-URI values, default identity first.
    pub associated: Vec<String>,
    /// Service-Route values, top first.
    pub service_route: Vec<String>,
    /// When it ends (seconds since the epoch).
    pub expires_at: u64,
    /// Our URI in the registration's Path (that of the protected server port for a REGISTER
    /// over the SAs): the identity our reg event SUBSCRIBE asserts, since the S-CSCF accepts
    /// a subscription from a P-CSCF on the Path only (TS 24.229 §5.4.2.1.1).
    pub path: String,
}

/// Rx work the P-CSCF asks its caller to do (through an [`crate::pcrf::RxClient`]).
#[derive(Debug, Clone, PartialEq)]
pub enum RxAction {
    /// Send an AAR.
    Aar {
        /// The Rx session (one per SIP dialog).
        session_id: String,
        /// False for the first AAR of the session.
        update: bool,
        /// The media.
        media: Vec<MediaComponentDescription<'static>>,
        /// AF-Charging-Identifier (the ICID).
        icid: String,
    },
    /// Send an STR.
    Str {
        /// The Rx session.
        session_id: String,
    },
}

/// How many answered responses per call side are remembered to recognise retransmissions.
const AAR_HISTORY: usize = 4;

#[derive(Debug, Clone)]
struct CallState {
    /// The offer (its media read once, shared with the other side when it saw the same
    /// body) and who made it.
    offer: Option<(OfferFrom, Arc<SdpMedia>)>,
    /// The last answer authorised (read once; the other side of a call served here reuses it
    /// when the same body reaches it).
    answer: Option<Arc<SdpMedia>>,
    /// The Rx session, once opened.
    rx: Option<String>,
    icid: String,
    /// The served UE's dialog, to release the call (the first leg seen: with one P-CSCF
    /// serving both ends, the caller's).
    leg: Option<DialogLeg>,
    /// Media-Component-Numbers of the last AAR.
    media: Vec<u32>,
    /// Digests of the responses that triggered the last AARs (CSeq, status, To tag, SDP; the
    /// last [`AAR_HISTORY`]): a retransmission of one (a 2xx to INVITE retransmitted until the
    /// ACK, a reliable 18x until the PRACK, even one arriving late) changes nothing to authorise
    /// and sends no AAR (TS 29.214 §4.4.1: updates are for changed session information).
    aar_digests: Vec<u64>,
    /// The caller's From tag (tells which side an in-dialog message belongs to).
    caller_tag: Option<String>,
}

/// Calls by Call-ID and side: `true` for the state of a UE that is the caller, `false` for a
/// UE that is the callee. A P-CSCF serving both ends of a call (the all-in-one core) keeps
/// both, each with its own Rx session, as two P-CSCFs would. One entry per Call-ID holds both
/// sides, so a message costs one lookup by its borrowed Call-ID (no key copied).
#[derive(Debug, Default)]
struct Calls(KeyedMap<String, [Option<CallState>; 2]>);

impl Calls {
    fn get_mut(&mut self, call_id: &str, caller: bool) -> Option<&mut CallState> {
        self.0.get_mut(call_id)?[usize::from(caller)].as_mut()
    }

    /// Both sides of `call_id`: (`caller`'s, mutable; the other one).
    fn with_other(
        &mut self,
        call_id: &str,
        caller: bool,
    ) -> Option<(&mut CallState, Option<&CallState>)> {
        let [callee, caller_side] = self.0.get_mut(call_id)?;
        let (mine, other) = if caller {
            (caller_side, callee)
        } else {
            (callee, caller_side)
        };
        Some((mine.as_mut()?, other.as_ref()))
    }

    /// Removes one side (and the entry with its last side).
    fn remove(&mut self, call_id: &str, caller: bool) -> Option<CallState> {
        let sides = self.0.get_mut(call_id)?;
        let c = sides[usize::from(caller)].take();
        if sides.iter().all(Option::is_none) {
            self.0.remove(call_id);
        }
        c
    }

    /// The side of `call_id`, created with `new` when missing.
    fn entry(
        &mut self,
        call_id: &str,
        caller: bool,
        new: impl FnOnce() -> CallState,
    ) -> &mut CallState {
        if !self.0.contains_key(call_id) {
            self.0.insert(call_id.to_string(), Default::default());
        }
        let sides = self.0.get_mut(call_id).expect("inserted above");
        sides[usize::from(caller)].get_or_insert_with(new)
    }

    /// Every side: (Call-ID, its UE is the caller, state).
    fn iter(&self) -> impl Iterator<Item = (&str, bool, &CallState)> {
        self.0.iter().flat_map(|(id, sides)| {
            [false, true]
                .into_iter()
                .filter_map(move |s| Some((id.as_str(), s, sides[usize::from(s)].as_ref()?)))
        })
    }

    /// The side a message belongs to (true: the one whose UE is the caller). `ue_end`: a
    /// request sent by one of our UEs, or a response going to one; that UE is the caller when
    /// the From tag is the caller's.
    fn side_of(&self, call_id: &str, from_tag: Option<&str>, ue_end: bool) -> Option<bool> {
        let sides = self.0.get(call_id)?;
        let caller_tag = sides[1]
            .as_ref()
            .or(sides[0].as_ref())
            .and_then(|c| c.caller_tag.as_deref());
        let by_caller = from_tag.is_some() && from_tag == caller_tag;
        let side = ue_end == by_caller;
        sides[usize::from(side)].is_some().then_some(side)
    }
}

/// Texts kept as `<length>:<text>` fields one after the other in one string (unambiguous
/// whatever the texts hold): the compact per-UE records of the P-CSCF.
fn push_field(out: &mut String, text: &str) {
    push_dec(out, text.len() as u64);
    out.push(':');
    out.push_str(text);
}

/// Appends `n` in decimal (as `Display` writes it), without the formatting machinery.
fn push_dec(out: &mut String, n: u64) {
    ims_sip::push_decimal(out, n);
}

/// The length of the field `s` starts with and what follows its `:` (`None` unless `s` starts
/// with a decimal number, as `usize::from_str` reads one, and a `:`): a digit loop, not a
/// search and a number parser — the once-a-second pass reads two fields of every UE.
pub(crate) fn field_head(s: &str) -> Option<(usize, &str)> {
    let b = s.as_bytes();
    let start = usize::from(b.first() == Some(&b'+'));
    let mut n: usize = 0;
    let mut i = start;
    loop {
        match b.get(i)? {
            b':' if i > start => return Some((n, &s[i + 1..])),
            d @ b'0'..=b'9' => n = n.checked_mul(10)?.checked_add(usize::from(d - b'0'))?,
            _ => return None,
        }
        i += 1;
    }
}

/// The fields of a string written with [`push_field`], in order.
fn fields_of(s: &str) -> impl Iterator<Item = &str> + '_ {
    let mut rest = s;
    std::iter::from_fn(move || {
        let (n, r) = field_head(rest)?;
        let text = r.get(..n)?;
        rest = &r[n..];
        Some(text)
    })
}

/// The first field of a string written with [`push_field`] (empty when there is none).
fn first_field(s: &str) -> &str {
    fields_of(s).next().unwrap_or_default()
}

/// Where a registered UE's requests go and who we are on its registration's Path: the
/// Service-Route values (top first) and our URI in the Path ([`UeRegistration::path`]). Every
/// UE registered through the same S-CSCF (and P-CSCF port) has the same, so the UEs and their
/// reg event subscriptions share one copy ([`Hops`]).
#[derive(Debug, PartialEq, Eq)]
struct Hop {
    service_route: Box<[Box<str>]>,
    path: Box<str>,
}

impl Hop {
    fn is(&self, service_route: &[String], path: &str) -> bool {
        *self.path == *path
            && self.service_route.len() == service_route.len()
            && self
                .service_route
                .iter()
                .zip(service_route)
                .all(|(a, b)| **a == **b)
    }

    fn service_route(&self) -> Vec<String> {
        self.service_route.iter().map(|r| r.to_string()).collect()
    }
}

/// The [`Hop`]s in use, shared: a small bounded cache (at most [`Hops::MAX`]; a new one
/// replaces one no UE holds any more, else the oldest, which then only loses its sharing).
#[derive(Debug, Default)]
struct Hops(Vec<Arc<Hop>>);

impl Hops {
    const MAX: usize = 16;

    /// The shared copy of (`service_route`, `path`).
    fn get(&mut self, service_route: &[String], path: &str) -> Arc<Hop> {
        if let Some(h) = self.0.iter().find(|h| h.is(service_route, path)) {
            return h.clone();
        }
        if self.0.len() >= Self::MAX {
            let unused = self.0.iter().position(|h| Arc::strong_count(h) == 1);
            self.0.remove(unused.unwrap_or(0));
        }
        let h = Arc::new(Hop {
            service_route: service_route.iter().map(|r| r.as_str().into()).collect(),
            path: path.into(),
        });
        self.0.push(h.clone());
        h
    }
}

/// A registered UE as the P-CSCF keeps it (every registered UE has one, so compact: the
/// table's key and the identities are one string, the routes shared; the table's slots hold a
/// pointer, a third of them empty at the usual load). Found by its [`contact_key`] (the first
/// field of `text`).
#[derive(Debug)]
struct Ue(Box<UeData>);

/// What a [`Ue`] holds.
#[derive(Debug)]
struct UeData {
    /// The [`contact_key`], then the P-Associated-URI values (default identity first), each
    /// as a [`push_field`] field.
    text: Box<str>,
    /// Service-Route and our Path URI.
    hop: Arc<Hop>,
    /// When it ends (seconds since the epoch).
    expires_at: u64,
}

impl Ue {
    fn new(key: &str, associated: &[String], hop: Arc<Hop>, expires_at: u64) -> Ue {
        let mut text = String::with_capacity(
            key.len() + 4 + associated.iter().map(|a| a.len() + 4).sum::<usize>(),
        );
        push_field(&mut text, key);
        for a in associated {
            push_field(&mut text, a);
        }
        Ue(Box::new(UeData {
            text: text.into(),
            hop,
            expires_at,
        }))
    }

    fn key(&self) -> &str {
        first_field(&self.text)
    }

    /// The P-Associated-URI values, default identity first.
    fn associated(&self) -> impl Iterator<Item = &str> + '_ {
        fields_of(&self.text).skip(1)
    }

    /// The default public identity (first P-Associated-URI).
    fn default_impu(&self) -> Option<&str> {
        self.associated().next()
    }

    fn is_associated(&self, impu: &str) -> bool {
        self.associated().any(|a| a == impu)
    }

    fn registration(&self) -> UeRegistration {
        UeRegistration {
            associated: self.associated().map(str::to_string).collect(),
            service_route: self.hop.service_route(),
            expires_at: self.expires_at,
            path: self.hop.path.to_string(),
        }
    }
}

impl std::ops::Deref for Ue {
    type Target = UeData;
    fn deref(&self) -> &UeData {
        &self.0
    }
}

impl std::borrow::Borrow<str> for Ue {
    fn borrow(&self) -> &str {
        self.key()
    }
}

impl std::hash::Hash for Ue {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        // as `str` hashes, so look-ups by `&str` find it (Borrow contract)
        self.key().hash(state);
    }
}

impl PartialEq for Ue {
    fn eq(&self, other: &Ue) -> bool {
        self.key() == other.key()
    }
}

impl Eq for Ue {}

/// The registered UEs by [`contact_key`], and the [`Hop`]s they share.
#[derive(Debug, Default)]
struct Ues {
    by_key: KeyedSet<Ue>,
    hops: Hops,
}

/// The P-CSCF's subscription to a UE's registration state (TS 24.229 §5.2.3). Its texts are
/// in the key it is stored under ([`WatchKey`]).
#[derive(Debug, Clone)]
struct RegWatch {
    /// The route of the SUBSCRIBEs: the UE's Service-Route (the S-CSCF that registered it).
    routes: Arc<Hop>,
    /// Our identity in the SUBSCRIBE: our URI in the Path ([`UeRegistration::path`]) of the
    /// UE whose registration made the subscription (`me.path`).
    me: Arc<Hop>,
    cseq: u32,
    /// When the next (initial or refreshing) SUBSCRIBE is due.
    refresh_at: u64,
    /// The last reginfo version received.
    version: Option<u32>,
}

/// The texts of a [`RegWatch`], as [`push_field`] fields: the default public identity
/// subscribed to (the key in [`Watches::by_impu`]), the Call-ID, our tag, and the S-CSCF's tag
/// once known (no fourth field before). Shared with the Call-ID index.
#[derive(Debug, Clone)]
struct WatchKey(Arc<str>);

impl WatchKey {
    fn new(impu: &str, call_id: &str, tag: &str, remote_tag: Option<&str>) -> WatchKey {
        let mut text = String::with_capacity(impu.len() + call_id.len() + tag.len() + 24);
        push_field(&mut text, impu);
        push_field(&mut text, call_id);
        push_field(&mut text, tag);
        if let Some(t) = remote_tag {
            push_field(&mut text, t);
        }
        WatchKey(text.into())
    }

    fn field(&self, i: usize) -> Option<&str> {
        fields_of(&self.0).nth(i)
    }

    fn impu(&self) -> &str {
        first_field(&self.0)
    }

    fn call_id(&self) -> &str {
        self.field(1).unwrap_or_default()
    }

    fn tag(&self) -> &str {
        self.field(2).unwrap_or_default()
    }

    /// The S-CSCF's tag, once a 2xx (or a NOTIFY) told it.
    fn remote_tag(&self) -> Option<&str> {
        self.field(3)
    }
}

impl std::borrow::Borrow<str> for WatchKey {
    fn borrow(&self) -> &str {
        self.impu()
    }
}

impl std::hash::Hash for WatchKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        // as `str` hashes, so look-ups by `&str` find it (Borrow contract)
        self.impu().hash(state);
    }
}

impl PartialEq for WatchKey {
    fn eq(&self, other: &WatchKey) -> bool {
        self.impu() == other.impu()
    }
}

impl Eq for WatchKey {}

/// The P-CSCF's reg event subscriptions by default public identity, with an index by Call-ID
/// (NOTIFYs and the responses to our SUBSCRIBEs name them by Call-ID: a look-up, not a scan of
/// every subscription), and the UEs registered since the last look for due SUBSCRIBEs. The
/// Call-ID index holds the Call-ID's hash and the subscription's key (no copy of a text); a
/// lookup compares the Call-ID, and the rare other Call-ID with the same hash waits in
/// `by_call_more`.
#[derive(Debug, Default)]
struct Watches {
    /// Boxed: the table's slots (a third of them empty at the usual load) hold a pointer each,
    /// not the whole state.
    by_impu: KeyedMap<WatchKey, Box<RegWatch>>,
    /// Hash of the Call-ID → the subscription's key.
    by_call: KeyedMap<u64, WatchKey>,
    /// Keys whose Call-ID's hash is taken in `by_call` by another Call-ID.
    by_call_more: Vec<WatchKey>,
    hasher: KeyedState,
    /// [`contact_key`]s of the UEs registered since the last [`Pcscf::reg_subscriptions_due`]
    /// or [`Pcscf::new_reg_subscriptions_due`] (at most [`Watches::MAX_NEW`]; past that the
    /// next full pass finds them).
    new: Vec<String>,
}

impl Watches {
    const MAX_NEW: usize = 4096;

    fn len(&self) -> usize {
        self.by_impu.len()
    }

    fn call_hash(&self, call_id: &str) -> u64 {
        std::hash::BuildHasher::hash_one(&self.hasher, call_id)
    }

    /// The key of the subscription with this Call-ID.
    fn key_of_call(&self, call_id: &str) -> Option<WatchKey> {
        self.by_call
            .get(&self.call_hash(call_id))
            .into_iter()
            .chain(&self.by_call_more)
            .find(|k| k.call_id() == call_id)
            .cloned()
    }

    fn index_call(&mut self, key: &WatchKey) {
        let h = self.call_hash(key.call_id());
        match self.by_call.entry(h) {
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert(key.clone());
            }
            std::collections::hash_map::Entry::Occupied(_) => self.by_call_more.push(key.clone()),
        }
    }

    fn unindex_call(&mut self, key: &WatchKey) {
        let h = self.call_hash(key.call_id());
        if self
            .by_call
            .get(&h)
            .is_some_and(|k| Arc::ptr_eq(&k.0, &key.0))
        {
            self.by_call.remove(&h);
        } else {
            self.by_call_more.retain(|k| !Arc::ptr_eq(&k.0, &key.0));
        }
    }

    fn remove(&mut self, impu: &str) -> Option<RegWatch> {
        let (key, w) = self.by_impu.remove_entry(impu)?;
        self.unindex_call(&key);
        Some(*w)
    }

    /// The subscription of `impu`, made by `make` (its Call-ID, tag and state) when there is
    /// none.
    fn get_or_insert_with(
        &mut self,
        impu: &str,
        make: impl FnOnce() -> (String, String, RegWatch),
    ) -> &mut RegWatch {
        if !self.by_impu.contains_key(impu) {
            let (call_id, tag, w) = make();
            let key = WatchKey::new(impu, &call_id, &tag, None);
            self.index_call(&key);
            self.by_impu.insert(key, Box::new(w));
        }
        self.by_impu.get_mut(impu).expect("inserted above")
    }

    /// The key (texts) of `impu`'s subscription.
    fn key(&self, impu: &str) -> Option<&WatchKey> {
        self.by_impu.get_key_value(impu).map(|(k, _)| k)
    }

    /// Sets the S-CSCF's tag of `impu`'s subscription (a new key with the same identity).
    fn set_remote_tag(&mut self, impu: &str, tag: Option<&str>) {
        let Some(old) = self.key(impu) else {
            return;
        };
        if old.remote_tag() == tag {
            return;
        }
        let new = WatchKey::new(impu, old.call_id(), old.tag(), tag);
        let (old, w) = self.by_impu.remove_entry(impu).expect("found above");
        self.unindex_call(&old);
        self.index_call(&new);
        self.by_impu.insert(new, w);
    }
}

/// What a reg event NOTIFY made the P-CSCF do.
#[derive(Debug, Clone, PartialEq)]
pub struct RegNotifyOutcome {
    /// The status to answer the NOTIFY with.
    pub status: u16,
    /// Contacts (host:port keys) whose registration state was removed (their SAs end with
    /// [`Pcscf::end_sas`], after the releases).
    pub removed: Vec<String>,
    /// The calls of those UEs to release (see [`Pcscf::on_reg_notify`]).
    pub releases: Vec<Release>,
}

/// What the P-CSCF stores of a served UE's dialog to release it itself (TS 24.229 §5.2.6.3.4:
/// the Record-Route list and dialog ID of the responses; §5.2.8.1.2: the BYEs).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct DialogLeg {
    /// The UE sent the initial INVITE.
    ue_is_caller: bool,
    /// The UE's identity (From of a caller, To of a callee) and tag.
    ue_uri: String,
    ue_tag: Option<String>,
    /// The UE's Contact (remote target of requests toward it).
    ue_contact: Option<String>,
    /// Highest CSeq of the UE's requests in the dialog.
    ue_cseq: u32,
    /// The other party's identity, tag and Contact.
    remote_uri: String,
    remote_tag: Option<String>,
    remote_contact: Option<String>,
    /// Route values toward the other party (the route set without us), top first.
    route_to_remote: Vec<String>,
    /// Highest CSeq of the other party's requests.
    remote_cseq: u32,
    /// A 2xx confirmed the dialog.
    confirmed: bool,
}

/// A request the P-CSCF sends itself (without Via: the sending endpoint adds it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnRequest {
    /// The request (no Via).
    pub request: String,
    /// Where to send it (the URI the next hop is resolved from).
    pub next_hop: String,
}

/// A reg event SUBSCRIBE the P-CSCF sends itself (TS 24.229 §5.2.3; without Via: the sending
/// endpoint adds it).
///
/// Two are equal when their next hops are and their requests have the same bytes.
#[derive(Debug, Clone)]
pub struct RegSubscribe {
    /// The request, read as a message where it was written (nothing to parse before
    /// sending). `Err` when the texts it is made of (the
    /// IMPU, the UE's Service-Route, our URIs) make a request the parser refuses: it cannot be
    /// sent (and the subscription is tried again as after no answer, 32 s later).
    pub request: Result<ims_sip::OwnedMessage, ims_sip::ParseError>,
    /// Where to send it (the URI the next hop is resolved from).
    pub next_hop: String,
}

impl PartialEq for RegSubscribe {
    fn eq(&self, other: &Self) -> bool {
        self.next_hop == other.next_hop
            && match (&self.request, &other.request) {
                (Ok(a), Ok(b)) => a.bytes() == b.bytes(),
                (Err(a), Err(b)) => a == b,
                _ => false,
            }
    }
}

impl Eq for RegSubscribe {}

/// The P-CSCF's release of a call (TS 24.229 §5.2.8.1.2): a BYE to the served UE and one
/// toward the other party along the route set, each with a Reason header, then the Rx STR. A
/// call still being set up is cancelled instead (§5.2.8.1.1): the proxy holding its INVITE
/// sends CANCEL toward the callee and an error response to the caller.
#[derive(Debug, Clone, PartialEq)]
pub struct Release {
    /// The BYEs: to the UE first, then toward the core (none for a call being set up).
    pub byes: Vec<OwnRequest>,
    /// The STR ending the Rx session (`None`: the call had none).
    pub str: Option<RxAction>,
    /// For a call still being set up: its Call-ID and side (true: our UE is the caller), whose
    /// pending INVITE the proxy cancels (CANCEL toward the callee with [`Release::reason`],
    /// error response toward the caller).
    pub reject_invite: Option<(String, bool)>,
    /// The Reason header value of the BYEs / CANCELs (RFC 3326).
    pub reason: String,
}

/// The P-CSCF.
#[derive(Debug)]
pub struct Pcscf {
    cfg: PcscfConfig,
    ues: Mutex<Ues>,
    calls: Mutex<Calls>,
    watches: Mutex<Watches>,
    counter: AtomicU64,
    sec_agree: Option<crate::sec_agree::SecAgree>,
    /// [`contact_key`] of our own URI (`cfg.path_uri`): Record-Route entries with it are ours.
    own_key: String,
}

/// The key a UE is known by: its contact's host and port.
fn contact_key(uri: &str) -> String {
    let mut key = match Uri::parse(uri) {
        Ok(Uri::Sip(s)) => format!("{}:{}", s.host(), s.port().unwrap_or(5060)),
        _ => uri.to_string(),
    };
    key.make_ascii_lowercase();
    key
}

/// True when `uri` has the [`contact_key`] `key` (`host:port`, lower case), without building
/// the key of `uri`: a Record-Route entry is checked this way on every response of a dialog.
fn has_contact_key(uri: &str, key: &str) -> bool {
    let Ok(Uri::Sip(s)) = Uri::parse(uri) else {
        return uri.eq_ignore_ascii_case(key);
    };
    let Some((host, port)) = key.rsplit_once(':') else {
        return false;
    };
    if port.parse::<u16>().ok() != Some(s.port().unwrap_or(5060)) {
        return false;
    }
    match s.host() {
        ims_sip::Host::Domain(d) => d.eq_ignore_ascii_case(host),
        ims_sip::Host::Ipv4(a) => host.parse::<std::net::Ipv4Addr>().ok() == Some(a),
        ims_sip::Host::Ipv6(v6) => host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .is_some_and(|h| h.eq_ignore_ascii_case(v6)),
    }
}

/// `s` becomes `v`, in its own buffer when it fits.
fn set(s: &mut String, v: &str) {
    s.clear();
    s.push_str(v);
}

/// `slot` becomes `v`, reusing the string it holds.
fn set_opt(slot: &mut Option<String>, v: Option<&str>) {
    match (slot.as_mut(), v) {
        (Some(s), Some(v)) => set(s, v),
        (_, v) => *slot = v.map(str::to_string),
    }
}

/// The URI of a name-addr or Route value, borrowed.
pub(crate) fn uri_in(value: &str) -> &str {
    let v = value.trim();
    match (v.find('<'), v.find('>')) {
        (Some(a), Some(b)) if a < b => &v[a + 1..b],
        _ => v.split(';').next().unwrap_or(v),
    }
}

impl Pcscf {
    /// A P-CSCF.
    pub fn new(cfg: PcscfConfig) -> Pcscf {
        Pcscf {
            own_key: contact_key(&cfg.path_uri),
            cfg,
            ues: Mutex::new(Ues::default()),
            calls: Mutex::new(Calls::default()),
            watches: Mutex::new(Watches::default()),
            counter: AtomicU64::new(1),
            sec_agree: None,
        }
    }

    /// This P-CSCF with security agreement (RFC 3329, TS 33.203 §7): UEs offering
    /// `ipsec-3gpp` in Security-Client get SAs set up through `sec`.
    pub fn with_sec_agree(mut self, sec: crate::sec_agree::SecAgree) -> Pcscf {
        self.sec_agree = Some(sec);
        self
    }

    /// The security agreement state, when enabled.
    pub fn sec_agree(&self) -> Option<&crate::sec_agree::SecAgree> {
        self.sec_agree.as_ref()
    }

    /// A response on its way to a UE, rewritten when it must be (TS 24.229 §5.2.2.1): a 401 to
    /// a REGISTER loses the `ck`/`ik` of its WWW-Authenticate and, with security agreement,
    /// gains our Security-Server (the temporary SAs are set up then). `None`: relay as is.
    pub fn filter_response(&self, resp: &Message<'_>, now: u64) -> Option<ims_sip::OwnedMessage> {
        if resp.status() != Some(401)
            || resp.cseq().ok().flatten().map(|c| c.method) != Some(Method::Register)
        {
            return None;
        }
        let via = resp.via().next()?.ok()?;
        let ue_ip = via
            .received()
            .unwrap_or(via.host().to_string().as_str())
            .parse::<std::net::IpAddr>()
            .ok();
        match (&self.sec_agree, ue_ip) {
            (Some(sec), Some(ip)) => sec.on_challenge(resp, ip, now),
            _ => {
                let www = resp.header(HeaderName::WwwAuthenticate)?;
                let (clean, ck, ik) = crate::sec_agree::take_keys(www);
                if ck.is_none() && ik.is_none() {
                    return None;
                }
                let mut e = resp.edit();
                e.set(HeaderName::WwwAuthenticate, clean);
                e.to_owned_message().ok()
            }
        }
    }

    /// The registration of the UE whose contact is `contact_uri`.
    pub fn registration(&self, contact_uri: &str) -> Option<UeRegistration> {
        self.ues
            .lock()
            .expect("P-CSCF lock is never poisoned")
            .by_key
            .get(contact_key(contact_uri).as_str())
            .map(Ue::registration)
    }

    fn charging_vector(&self) -> String {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        format!(
            "icid-value=\"{}-{n:x}\";icid-generated-at={}",
            self.cfg.host, self.cfg.host
        )
    }

    fn icid_of(v: &str) -> Option<String> {
        let i = v.find("icid-value=")? + "icid-value=".len();
        let rest = &v[i..];
        let rest = rest.strip_prefix('"').unwrap_or(rest);
        Some(rest.split(['"', ';']).next().unwrap_or(rest).to_string())
    }

    /// Whether a request from the UE at `src` may be processed, with security agreement on
    /// ([`crate::sec_agree::SecAgree::accept_request`]; always true without). `protected`: it
    /// arrived on our protected server port.
    pub fn admits(&self, req: &Message<'_>, src: std::net::SocketAddr, protected: bool) -> bool {
        let Some(sec) = &self.sec_agree else {
            return true;
        };
        let contact = req
            .contacts()
            .next()
            .and_then(|c| c.ok())
            .and_then(|c| c.uri())
            .and_then(|u| {
                let u = u.as_sip()?;
                let ip = u.host().to_string();
                let ip = ip.trim_start_matches('[').trim_end_matches(']');
                Some(std::net::SocketAddr::new(
                    ip.parse().ok()?,
                    u.port().unwrap_or(5060),
                ))
            });
        sec.accept_request(
            src,
            protected,
            req.method() == Some(Method::Register),
            contact,
        )
    }

    /// A request from a UE.
    pub fn from_ue(&self, req: &Message<'_>, now: u64) -> Decision {
        self.from_ue_on(req, now, false)
    }

    /// A request from a UE; `protected`: it arrived on our protected server port (over the
    /// UE's SA). A REGISTER with security agreement is checked and cleaned here
    /// ([`crate::sec_agree::SecAgree::on_register`]).
    pub fn from_ue_on(&self, req: &Message<'_>, now: u64, protected: bool) -> Decision {
        let Some(method) = req.method() else {
            return Decision::Reply(400);
        };
        if method == Method::Register {
            let mut sec = match &self.sec_agree {
                Some(s) => match s.on_register(req, protected, now) {
                    Ok(e) => e.unwrap_or_default(),
                    // RFC 3329 §2.3.1: the 494 lists the mechanisms we support
                    Err(code) => {
                        return Decision::ReplyWith(
                            code,
                            vec![("Security-Server".into(), s.supported_mechanisms())],
                        )
                    }
                },
                None => crate::sec_agree::RegisterEdits::default(),
            };
            // only this P-CSCF says whether a REGISTER came over an SA (TS 24.229 §5.2.2.1):
            // an `integrity-protected` the UE wrote itself does not go further
            if !sec.remove.iter().any(|h| h == "Authorization") {
                if let Some(clean) = req
                    .header(HeaderName::Authorization)
                    .and_then(crate::sec_agree::without_integrity_protected)
                {
                    sec.remove.push("Authorization".into());
                    sec.headers.push(("Authorization".into(), clean));
                }
            }
            // TS 24.229 §5.2.2: a REGISTER over the SAs gets the protected server port in its
            // Path, so terminating requests come to it and leave toward the UE over the SAs
            let path = match (&self.sec_agree, protected) {
                (Some(s), true) => lr(&s.protected_uri("term")),
                _ => lr(&self.cfg.path_uri),
            };
            let mut headers: Vec<(String, String)> = vec![
                ("Path".into(), path),
                (
                    "P-Visited-Network-ID".into(),
                    format!("\"{}\"", self.cfg.visited_network_id),
                ),
                ("P-Charging-Vector".into(), self.charging_vector()),
            ];
            headers.extend(sec.headers);
            return one(Forward {
                routes: vec![lr(&self.cfg.icscf)],
                headers,
                remove: sec.remove,
                ..Forward::default()
            });
        }
        if !is_initial(req) {
            self.track_request(req, true);
            return one(Forward::default());
        }
        // an initial request: the UE must be registered from this contact
        let key = req
            .contacts()
            .next()
            .and_then(|c| c.ok())
            .and_then(|c| c.uri())
            .map(|u| contact_key(u.as_str()));
        // what is needed of the registration, read under the lock (no copy of the rest)
        let (asserted, service_route) = {
            let ues = self.ues.lock().expect("P-CSCF lock is never poisoned");
            let reg = key
                .as_deref()
                .and_then(|k| ues.by_key.get(k))
                .filter(|r| r.expires_at > now);
            let Some(reg) = reg else {
                return Decision::Reply(403);
            };
            // P-Preferred-Identity must be one of the UE's (TS 24.229 §5.2.6.3.1)
            let asserted = match req.header_str("P-Preferred-Identity") {
                Some(p) => {
                    let p = uri_of(p);
                    if !reg.is_associated(&p) {
                        return Decision::Reply(403);
                    }
                    p
                }
                None => reg.default_impu().unwrap_or_default().to_string(),
            };
            (asserted, reg.hop.service_route())
        };
        let mut headers = vec![("P-Asserted-Identity".into(), format!("<{asserted}>"))];
        let icid = match req.header(HeaderName::PChargingVector) {
            Some(v) => Self::icid_of(v).unwrap_or_default(),
            None => {
                let v = self.charging_vector();
                let icid = Self::icid_of(&v).unwrap_or_default();
                headers.push(("P-Charging-Vector".into(), v));
                icid
            }
        };
        if method == Method::Invite {
            self.remember_offer(req, OfferFrom::Ue, icid);
        }
        one(Forward {
            routes: service_route,
            headers,
            remove: vec!["P-Preferred-Identity".into(), "P-Asserted-Identity".into()],
            ..Forward::default()
        })
    }

    /// A request from the core toward a UE (its Request-URI is the UE's contact).
    pub fn from_core(&self, req: &Message<'_>) -> Decision {
        if req.method() == Some(Method::Invite) && is_initial(req) {
            let icid = req
                .header(HeaderName::PChargingVector)
                .and_then(Self::icid_of)
                .unwrap_or_default();
            self.remember_offer(req, OfferFrom::Remote, icid);
        } else {
            self.track_request(req, false);
        }
        one(Forward::default())
    }

    fn remember_offer(&self, req: &Message<'_>, from: OfferFrom, icid: String) {
        let Some(call_id) = req.header(HeaderName::CallId) else {
            return;
        };
        let body = std::str::from_utf8(req.body())
            .ok()
            .filter(|b| b.starts_with("v=0"));
        // From read once: the caller's tag and the dialog's
        let from_h = req.from().ok().flatten();
        let leg = from_h
            .as_ref()
            .and_then(|f| Self::initial_leg(req, f, from == OfferFrom::Ue));
        let caller_tag = from_h.and_then(|f| f.tag().map(str::to_string));
        let mut calls = self.calls.lock().expect("P-CSCF lock is never poisoned");
        // the same offer on the other side (one P-CSCF serving both ends): read once
        let side = from == OfferFrom::Ue;
        let offer = body.and_then(|b| {
            let shared = calls
                .0
                .get(call_id)
                .and_then(|sides| sides[usize::from(!side)].as_ref())
                .and_then(|o| o.offer.as_ref())
                .filter(|(_, o)| o.as_str() == b)
                .map(|(_, o)| o.clone());
            let media = match shared {
                Some(m) => m,
                None => Arc::new(SdpMedia::parse(b.to_string())?),
            };
            Some((from, media))
        });
        let c = calls.entry(call_id, side, || CallState {
            offer: None,
            answer: None,
            rx: None,
            icid: String::new(),
            leg: None,
            media: Vec::new(),
            aar_digests: Vec::new(),
            caller_tag,
        });
        c.offer = offer;
        c.icid = icid;
        if c.leg.is_none() {
            c.leg = leg;
        }
    }

    /// The served UE's side of a dialog from its initial INVITE (`from_ue`: the UE is the caller).
    fn initial_leg(
        req: &Message<'_>,
        from: &ims_sip::headers::NameAddrHeader<'_>,
        from_ue: bool,
    ) -> Option<DialogLeg> {
        let to = req.to().ok().flatten()?;
        let cseq = req.cseq().ok().flatten()?.seq;
        let contact = req
            .contacts()
            .next()
            .and_then(|c| c.ok())
            .and_then(|c| c.uri())
            .map(|u| u.as_str().to_string());
        let from_uri = from.uri().as_str().to_string();
        let to_uri = to.uri().as_str().to_string();
        let from_tag = from.tag().map(str::to_string);
        Some(if from_ue {
            DialogLeg {
                ue_is_caller: true,
                ue_uri: from_uri,
                ue_tag: from_tag,
                ue_contact: contact,
                ue_cseq: cseq,
                remote_uri: to_uri,
                ..DialogLeg::default()
            }
        } else {
            DialogLeg {
                ue_is_caller: false,
                ue_uri: to_uri,
                remote_uri: from_uri,
                remote_tag: from_tag,
                remote_contact: contact,
                // the route set as it reaches us, before our own Record-Route: toward the caller
                route_to_remote: req
                    .list(HeaderName::RecordRoute)
                    .map(|(_, v)| v.trim().to_string())
                    .collect(),
                remote_cseq: cseq,
                ..DialogLeg::default()
            }
        })
    }

    /// Host and port of our own URI (Record-Route entries naming it are ours).
    fn is_us(&self, route: &str) -> bool {
        has_contact_key(uri_in(route), &self.own_key)
    }

    /// A 2xx (or a 1xx with a To tag: the early dialog) to the initial INVITE: the dialog's
    /// other tag, Contact and route set.
    fn learn_leg(
        &self,
        resp: &Message<'_>,
        to_tag: Option<&str>,
        leg: &mut DialogLeg,
        confirmed: bool,
    ) {
        let Some(to_tag) = to_tag else {
            return;
        };
        let contact = resp.contacts().next().and_then(|c| c.ok());
        let contact = contact.as_ref().and_then(|c| c.uri()).map(|u| u.as_str());
        // the 2xx after a 1xx of the same dialog usually repeats its values: the strings of the
        // first are rewritten in place (no allocation when they fit)
        if leg.ue_is_caller {
            set_opt(&mut leg.remote_tag, Some(to_tag));
            set_opt(&mut leg.remote_contact, contact);
            // the caller's route set is the Record-Route list reversed; we are its first hop
            let routes = &mut leg.route_to_remote;
            let mut n = 0;
            for (_, v) in resp.list(HeaderName::RecordRoute) {
                match routes.get_mut(n) {
                    Some(r) => set(r, v.trim()),
                    None => routes.push(v.trim().to_string()),
                }
                n += 1;
            }
            routes.truncate(n);
            routes.reverse();
            let ours = routes.iter().take_while(|r| self.is_us(r)).count();
            routes.drain(..ours);
        } else {
            set_opt(&mut leg.ue_tag, Some(to_tag));
            set_opt(&mut leg.ue_contact, contact);
        }
        leg.confirmed = confirmed;
    }

    /// Ends the SAs of the UEs a reg event NOTIFY removed ([`RegNotifyOutcome::removed`],
    /// `host:port` keys): their SAs end with the registration (TS 33.203 §7.4). Call it once
    /// the BYEs of [`RegNotifyOutcome::releases`] are answered (or given up): until then they
    /// and the UE's answers travel over the SAs, as every request toward a UE with SAs does
    /// (TS 33.203 §7.1, TS 24.229 §5.2.8.1.2).
    pub fn end_sas(&self, removed: &[String]) {
        let Some(sec) = &self.sec_agree else {
            return;
        };
        for k in removed {
            if let Some((ip, port)) = k.rsplit_once(':') {
                if let Ok(ip) = ip.trim_matches(['[', ']']).parse() {
                    sec.forget_ue(ip, port.parse().ok());
                }
            }
        }
    }

    /// Releases the call whose Rx session is `rx_session` (ASR, or loss of all its bearers):
    /// the BYEs to send with `reason` (an RFC 3326 Reason value) and the STR. A confirmed
    /// dialog gets a BYE both ways (TS 24.229 §5.2.8.1.2); an early one (a 1xx with a To tag
    /// arrived) one BYE toward the callee on the caller's behalf, which the callee answers with
    /// 487 to the INVITE (RFC 3261 §15.1.2), so the caller gets the error response. `None`
    /// when no call has that session.
    pub fn release(&self, rx_session: &str, reason: &str) -> Option<Release> {
        let mut calls = self.calls.lock().expect("P-CSCF lock is never poisoned");
        let (call_id, side) = calls
            .iter()
            .find(|(_, _, c)| c.rx.as_deref() == Some(rx_session))
            .map(|(id, side, _)| (id.to_string(), side))?;
        let c = calls.remove(&call_id, side)?;
        drop(calls);
        Some(self.over_sas(Self::release_call(&call_id, c, reason)))
    }

    /// With security agreement, a BYE of the P-CSCF's own toward a UE with SAs goes by way of
    /// our protected server port (a Route naming it, as the Path of the UE's protected
    /// REGISTER does): from there it leaves from the protected client port like every request
    /// toward that UE (TS 33.203 §7.1, TS 24.229 §5.2.8.1.2), and the UE's answer comes back
    /// over the SA.
    fn over_sas(&self, mut r: Release) -> Release {
        let Some(sec) = &self.sec_agree else {
            return r;
        };
        let peers = sec.protected_peers();
        for b in &mut r.byes {
            let addr = match Uri::parse(&b.next_hop) {
                Ok(Uri::Sip(u)) => {
                    let host = u.host().to_string();
                    host.trim_start_matches('[')
                        .trim_end_matches(']')
                        .parse::<std::net::IpAddr>()
                        .ok()
                        .map(|ip| std::net::SocketAddr::new(ip, u.port().unwrap_or(5060)))
                }
                _ => None,
            };
            let protected = addr.is_some_and(|a| peers.read().is_ok_and(|p| p.contains(&a)));
            if !protected {
                continue;
            }
            let via = sec.protected_uri("term");
            if let Some(i) = b.request.find("\r\n") {
                b.request
                    .insert_str(i + 2, &format!("Route: <{via};lr>\r\n"));
            }
            b.next_hop = via;
        }
        r
    }

    /// The BYEs (and STR) that end one side of a call.
    fn release_call(call_id: &str, c: CallState, reason: &str) -> Release {
        let str = c.rx.map(|session_id| RxAction::Str { session_id });
        let Some(leg) = c.leg else {
            return Release {
                byes: Vec::new(),
                str,
                reject_invite: None,
                reason: reason.to_string(),
            };
        };
        if !leg.confirmed {
            // TS 24.229 §5.2.8.1.1: a session being set up is cancelled — CANCEL toward the
            // callee and an appropriate response to the caller, both by the proxy holding the
            // INVITE; no BYE in the early dialog
            return Release {
                byes: Vec::new(),
                str,
                reject_invite: Some((call_id.to_string(), leg.ue_is_caller)),
                reason: reason.to_string(),
            };
        }
        let tag = |t: &Option<String>| {
            t.as_deref()
                .map(|t| format!(";tag={t}"))
                .unwrap_or_default()
        };
        let bye =
            |ruri: &str, routes: &[String], from: (&str, String), to: (&str, String), cseq: u32| {
                let mut r = format!("BYE {ruri} SIP/2.0\r\n");
                for route in routes {
                    r.push_str(&format!("Route: {route}\r\n"));
                }
                r.push_str(&format!(
                    "Max-Forwards: 70\r\nFrom: <{}>{}\r\nTo: <{}>{}\r\nCall-ID: {call_id}\r\n\
CSeq: {cseq} BYE\r\nReason: {reason}\r\nContent-Length: 0\r\n\r\n",
                    from.0, from.1, to.0, to.1
                ));
                r
            };
        let mut byes = Vec::new();
        if let Some(ue) = leg.ue_contact.as_ref() {
            byes.push(OwnRequest {
                request: bye(
                    ue,
                    &[],
                    (&leg.remote_uri, tag(&leg.remote_tag)),
                    (&leg.ue_uri, tag(&leg.ue_tag)),
                    leg.remote_cseq.saturating_add(1),
                ),
                next_hop: ue.clone(),
            });
        }
        if let Some(remote) = leg.remote_contact.as_ref() {
            byes.push(OwnRequest {
                request: bye(
                    remote,
                    &leg.route_to_remote,
                    (&leg.ue_uri, tag(&leg.ue_tag)),
                    (&leg.remote_uri, tag(&leg.remote_tag)),
                    leg.ue_cseq.saturating_add(1),
                ),
                next_hop: leg
                    .route_to_remote
                    .first()
                    .map(|r| uri_of(r))
                    .unwrap_or_else(|| remote.clone()),
            });
        }
        Release {
            byes,
            str,
            reject_invite: None,
            reason: reason.to_string(),
        }
    }

    /// The Media-Component-Numbers last authorised for an Rx session (to tell whether a loss
    /// of bearer reported for some of them takes all the call's media).
    pub fn rx_media(&self, rx_session: &str) -> Option<Vec<u32>> {
        self.calls
            .lock()
            .expect("P-CSCF lock is never poisoned")
            .iter()
            .find(|(_, _, c)| c.rx.as_deref() == Some(rx_session))
            .map(|(_, _, c)| c.media.clone())
    }

    /// In-dialog requests: CSeqs are tracked for a later release and re-INVITE/UPDATE offers
    /// remembered (a BYE or CANCEL ends the side's Rx session: [`Pcscf::rx_on_end`]).
    fn track_request(&self, req: &Message<'_>, from_ue: bool) {
        let (Some(call_id), Ok(Some(cseq)), Some(_)) = (
            req.header(HeaderName::CallId),
            req.cseq(),
            req.header(HeaderName::From),
        ) else {
            return;
        };
        let mut calls = self.calls.lock().expect("P-CSCF lock is never poisoned");
        let Some(side) = calls.side_of(call_id, req.from_tag(), from_ue) else {
            return;
        };
        let Some(c) = calls.get_mut(call_id, side) else {
            return;
        };
        if let Some(leg) = c.leg.as_mut() {
            if from_ue {
                leg.ue_cseq = leg.ue_cseq.max(cseq.seq);
            } else {
                leg.remote_cseq = leg.remote_cseq.max(cseq.seq);
            }
        }
        // an UPDATE (RFC 3311) or re-INVITE with SDP is a new offer; its 2xx answers it
        if matches!(req.method(), Some(Method::Invite | Method::Update)) {
            if let Ok(b) = std::str::from_utf8(req.body()) {
                if b.starts_with("v=0") {
                    let who = if from_ue {
                        OfferFrom::Ue
                    } else {
                        OfferFrom::Remote
                    };
                    c.offer = SdpMedia::parse(b.to_string()).map(|m| (who, Arc::new(m)));
                }
            }
        }
    }

    /// The Rx work for a BYE or CANCEL (`from_ue`: sent by one of our UEs, else arriving from
    /// the core): STR for that side's Rx session.
    pub fn rx_on_end(&self, req: &Message<'_>, from_ue: bool) -> Option<RxAction> {
        if !matches!(req.method(), Some(Method::Bye | Method::Cancel)) {
            return None;
        }
        let call_id = req.header(HeaderName::CallId)?;
        req.header(HeaderName::From)?;
        let mut calls = self.calls.lock().expect("P-CSCF lock is never poisoned");
        let side = calls.side_of(call_id, req.from_tag(), from_ue)?;
        let c = calls.remove(call_id, side)?;
        c.rx.map(|session_id| RxAction::Str { session_id })
    }

    /// A response relayed toward the UE or the core, for the request method `method`: a 200 to
    /// a REGISTER records the UE's registration; a 183 or 2xx to an INVITE with SDP yields an AAR
    /// (TS 29.214 §4.4.1: at the answer, and again at every new offer/answer). `to_ue`: the
    /// response goes to one of our UEs (else toward the core); with it the side of the call is
    /// known, and each side has its own Rx session.
    pub fn on_response(
        &self,
        resp: &Message<'_>,
        now: u64,
        to_ue: bool,
        new_rx_session: impl FnOnce() -> String,
    ) -> Option<RxAction> {
        let cseq = resp.cseq().ok().flatten()?;
        let status = resp.status()?;
        match cseq.method {
            Method::Register if status == 200 => {
                self.record_registration(resp, now);
                None
            }
            Method::Invite if status >= 300 => {
                // the call failed (or the network released it while it was set up): the side
                // ends, with its Rx session
                let call_id = resp.header(HeaderName::CallId)?;
                resp.header(HeaderName::From)?;
                let mut calls = self.calls.lock().expect("P-CSCF lock is never poisoned");
                let side = calls.side_of(call_id, resp.from_tag(), to_ue)?;
                if calls
                    .get_mut(call_id, side)?
                    .leg
                    .as_ref()
                    .is_some_and(|l| l.confirmed)
                {
                    return None; // a failed re-INVITE: the call goes on
                }
                let c = calls.remove(call_id, side)?;
                c.rx.map(|session_id| RxAction::Str { session_id })
            }
            Method::Invite | Method::Update
                if ((101..200).contains(&status) && cseq.method == Method::Invite)
                    || (200..300).contains(&status) =>
            {
                let call_id = resp.header(HeaderName::CallId)?;
                resp.header(HeaderName::From)?;
                // the To tag, read once: the dialog's and the retransmission digest's (the
                // tags read without parsing the URIs)
                let to_tag = resp.to_tag();
                let mut calls = self.calls.lock().expect("P-CSCF lock is never poisoned");
                let side = calls.side_of(call_id, resp.from_tag(), to_ue)?;
                let (c, other) = calls.with_other(call_id, side)?;
                if cseq.method == Method::Invite {
                    if let Some(leg) = c.leg.as_mut().filter(|l| !l.confirmed) {
                        self.learn_leg(resp, to_tag, leg, (200..300).contains(&status));
                    }
                }
                let answer = std::str::from_utf8(resp.body())
                    .ok()
                    .filter(|b| b.starts_with("v=0"))?;
                let digest = {
                    use std::hash::{Hash, Hasher};
                    let mut h = std::collections::hash_map::DefaultHasher::new();
                    (cseq.seq, cseq.method.as_str(), status).hash(&mut h);
                    to_tag.hash(&mut h);
                    answer.hash(&mut h);
                    h.finish()
                };
                if c.aar_digests.contains(&digest) {
                    return None; // a retransmission: already authorised
                }
                let (from, offer) = c.offer.as_ref()?;
                // the answer the other side authorised already (same body): read once
                let answer = match other
                    .and_then(|o| o.answer.as_ref())
                    .filter(|a| a.as_str() == answer)
                {
                    Some(a) => a.clone(),
                    None => Arc::new(SdpMedia::parse(answer.to_string())?),
                };
                let (ue, remote) = match from {
                    OfferFrom::Ue => (&**offer, &*answer),
                    OfferFrom::Remote => (&*answer, &**offer),
                };
                let media = media_components_of(ue, remote, *from);
                c.answer = Some(answer);
                c.media = media.iter().map(|m| m.media_component_number).collect();
                if c.aar_digests.len() == AAR_HISTORY {
                    c.aar_digests.remove(0);
                }
                c.aar_digests.push(digest);
                let (session_id, update) = match &c.rx {
                    Some(s) => (s.clone(), true),
                    None => {
                        let s = new_rx_session();
                        c.rx = Some(s.clone());
                        (s, false)
                    }
                };
                Some(RxAction::Aar {
                    session_id,
                    update,
                    media,
                    icid: c.icid.clone(),
                })
            }
            _ => None,
        }
    }

    fn record_registration(&self, resp: &Message<'_>, now: u64) {
        let associated: Vec<String> = resp
            .list(HeaderName::PAssociatedUri)
            .map(|(_, v)| uri_of(v))
            .collect();
        let service_route: Vec<String> = resp
            .list(HeaderName::ServiceRoute)
            .map(|(_, v)| v.trim().to_string())
            .collect();
        // the registrar echoes the Path (RFC 3327 §5.3): ours is our URI or, over the SAs,
        // the protected server port's
        let protected = self
            .sec_agree
            .as_ref()
            .map(|s| contact_key(&s.protected_uri("term")));
        let path = resp
            .list(HeaderName::Path)
            .map(|(_, v)| uri_in(v))
            .find(|u| {
                // compared without building the key of each Path entry
                has_contact_key(u, &self.own_key)
                    || protected.as_ref().is_some_and(|p| has_contact_key(u, p))
            })
            .map_or_else(
                || self.cfg.path_uri.clone(),
                |u| u.split(';').next().unwrap_or(u).to_string(),
            );
        let mut ues = self.ues.lock().expect("P-CSCF lock is never poisoned");
        let mut registered = Vec::new();
        let mut hop = None;
        // the contacts read once (each read parses them): the UEs, whether there is any, and
        // the SAs' lifetimes below
        let sec_call = self.sec_agree.as_ref().zip(resp.header(HeaderName::CallId));
        let mut sa_contacts: Vec<(String, u64)> = Vec::new();
        let mut any_contact = false;
        for c in resp.contacts() {
            any_contact = true;
            let Ok(c) = c else {
                continue;
            };
            let (Some(uri), expires) = (c.uri(), c.expires().unwrap_or(0)) else {
                continue;
            };
            let key = contact_key(uri.as_str());
            if expires == 0 {
                ues.by_key.remove(key.as_str());
            } else {
                let hop = hop
                    .get_or_insert_with(|| ues.hops.get(&service_route, &path))
                    .clone();
                let ue = Ue::new(&key, &associated, hop, now + u64::from(expires));
                if sec_call.is_some() {
                    sa_contacts.push((key.clone(), now + u64::from(expires)));
                }
                registered.push(key);
                ues.by_key.replace(ue);
            }
        }
        if !any_contact {
            // de-registration: the 200 lists no contact any more; forget the UE by its identity
            ues.by_key
                .retain(|r| r.associated().all(|a| !associated.iter().any(|x| x == a)));
        }
        drop(ues);
        if !registered.is_empty() {
            // for the reg event SUBSCRIBE after the 200 ([`Pcscf::new_reg_subscriptions_due`])
            let mut watches = self.watches.lock().expect("P-CSCF lock is never poisoned");
            let room = Watches::MAX_NEW.saturating_sub(watches.new.len());
            watches.new.extend(registered.into_iter().take(room));
        }
        if let Some((sec, call_id)) = sec_call {
            // the SAs live as long as the UE's contact (TS 33.203 §7.4): the contacts with a
            // URI and a non-zero expires, as registered above
            sec.on_registered(call_id, &sa_contacts);
        }
    }

    /// The reg event SUBSCRIBEs due at `now` (TS 24.229 §5.2.3): an initial one for each
    /// registered UE's default public user identity that has no subscription yet (after the 200
    /// to its REGISTER), and a refresh for each subscription past half its time. `contact` is
    /// the URI the NOTIFYs reach us at; `fresh` makes Call-IDs and tags. Sent along the UE's
    /// Service-Route to its S-CSCF, from and asserting our own URI, `Expires: 600000`.
    pub fn reg_subscriptions_due(
        &self,
        now: u64,
        contact: &str,
        mut fresh: impl FnMut() -> String,
    ) -> Vec<RegSubscribe> {
        let ues = self.ues.lock().expect("P-CSCF lock is never poisoned");
        let mut watches = self.watches.lock().expect("P-CSCF lock is never poisoned");
        watches.new.clear();
        let mut out = Vec::new();
        for ue in &ues.by_key {
            Self::reg_subscription_of(&mut watches, ue, now, contact, &mut fresh, &mut out);
        }
        out
    }

    /// Like [`Pcscf::reg_subscriptions_due`], for the UEs registered since the last look only
    /// (what a 200 to a REGISTER makes due, without going through every registered UE; the
    /// refreshes are left to `reg_subscriptions_due`, e.g. once a second).
    pub fn new_reg_subscriptions_due(
        &self,
        now: u64,
        contact: &str,
        mut fresh: impl FnMut() -> String,
    ) -> Vec<RegSubscribe> {
        let ues = self.ues.lock().expect("P-CSCF lock is never poisoned");
        let mut watches = self.watches.lock().expect("P-CSCF lock is never poisoned");
        let mut new = std::mem::take(&mut watches.new);
        let mut out = Vec::new();
        for key in &new {
            if let Some(ue) = ues.by_key.get(key.as_str()) {
                Self::reg_subscription_of(&mut watches, ue, now, contact, &mut fresh, &mut out);
            }
        }
        // the list's allocation is kept for the next ones
        new.clear();
        if watches.new.is_empty() {
            watches.new = new;
        }
        out
    }

    /// The SUBSCRIBE due for `ue` at `now`, if any, added to `out`.
    fn reg_subscription_of(
        watches: &mut Watches,
        ue: &Ue,
        now: u64,
        contact: &str,
        fresh: &mut impl FnMut() -> String,
        out: &mut Vec<RegSubscribe>,
    ) {
        if ue.expires_at <= now {
            return;
        }
        let Some(impu) = ue.default_impu() else {
            return;
        };
        // the common case of the once-a-second pass: subscribed, not due (one look-up)
        if watches
            .by_impu
            .get(impu)
            .is_some_and(|w| w.refresh_at > now)
        {
            return;
        }
        let w = watches.get_or_insert_with(impu, || {
            let w = RegWatch {
                routes: ue.hop.clone(),
                me: ue.hop.clone(),
                cseq: 0,
                refresh_at: now,
                version: None,
            };
            (fresh(), fresh(), w)
        });
        if w.refresh_at > now {
            return;
        }
        w.cseq += 1;
        // answered or not within 32 s (Timer F), this is tried again then
        w.refresh_at = now + 32;
        let key = watches.key(impu).expect("inserted above").clone();
        let w = watches.by_impu.get_mut(impu).expect("inserted above");
        if key.remote_tag().is_none() {
            // initial (or again after a failure): the UE's current S-CSCF
            w.routes.clone_from(&ue.hop);
        }
        let w = &*w;
        let routes = &w.routes.service_route;
        let me = &*w.me.path;
        // pieces appended, no formatting machinery
        let mut r = String::with_capacity(
            320 + 2 * (impu.len() + me.len())
                + contact.len()
                + routes.iter().map(|r| r.len() + 9).sum::<usize>(),
        );
        r.push_str("SUBSCRIBE ");
        r.push_str(impu);
        r.push_str(" SIP/2.0\r\n");
        for route in routes.iter() {
            r.push_str("Route: ");
            r.push_str(route);
            r.push_str("\r\n");
        }
        r.push_str("Max-Forwards: 70\r\nFrom: <");
        r.push_str(me);
        r.push_str(">;tag=");
        r.push_str(key.tag());
        r.push_str("\r\nTo: <");
        r.push_str(impu);
        r.push('>');
        if let Some(t) = key.remote_tag() {
            r.push_str(";tag=");
            r.push_str(t);
        }
        r.push_str("\r\nCall-ID: ");
        r.push_str(key.call_id());
        r.push_str("\r\nCSeq: ");
        push_dec(&mut r, u64::from(w.cseq));
        r.push_str(" SUBSCRIBE\r\nContact: <");
        r.push_str(contact);
        r.push_str(">\r\nP-Asserted-Identity: <");
        r.push_str(me);
        r.push_str(">\r\nEvent: reg\r\nExpires: 600000\r\nContent-Length: 0\r\n\r\n");
        out.push(RegSubscribe {
            request: crate::scscf::own_message(r),
            next_hop: routes
                .first()
                .map(|r| uri_of(r))
                .unwrap_or_else(|| impu.to_string()),
        });
    }

    /// The final response to one of our reg event SUBSCRIBEs (`None`: no answer, a timeout or
    /// transport error): a 2xx starts or refreshes the subscription (next refresh at half the
    /// granted Expires); a failure ends it and a new one is tried after 32 s.
    pub fn on_reg_subscribe_response(&self, call_id: &str, resp: Option<&Message<'_>>, now: u64) {
        let mut watches = self.watches.lock().expect("P-CSCF lock is never poisoned");
        let Some(key) = watches.key_of_call(call_id) else {
            return;
        };
        let impu = key.impu();
        let Some(w) = watches.by_impu.get_mut(impu) else {
            return;
        };
        match resp.filter(|r| r.status().is_some_and(|s| (200..300).contains(&s))) {
            Some(r) => {
                let granted = r
                    .header(HeaderName::Expires)
                    .and_then(|e| e.trim().parse::<u64>().ok())
                    .unwrap_or(600_000);
                if granted == 0 {
                    watches.remove(impu);
                    return;
                }
                w.refresh_at = now + (granted / 2).max(1);
                if let Some(tag) = to_tag_of(r) {
                    watches.set_remote_tag(impu, Some(&tag));
                }
            }
            None => {
                w.version = None;
                w.refresh_at = now + 32;
                watches.set_remote_tag(impu, None);
            }
        }
    }

    /// A reg event NOTIFY from the S-CSCF (RFC 3680, TS 24.229 §5.2.3): every contact the body
    /// shows `terminated` (expired, deactivated, unregistered, rejected...) and every
    /// registration in state `terminated` removes the UE's registration state here, and that
    /// UE's calls are released (BYEs and STR, as for an ASR; TS 24.229 §5.2.8). Full and
    /// partial bodies are applied the same way (each element says its own state); a version
    /// older than one already seen is ignored. A terminated Subscription-State ends the
    /// subscription. 481 for an unknown subscription, 400 for a body that is not reginfo.
    pub fn on_reg_notify(&self, req: &Message<'_>, reason: &str) -> RegNotifyOutcome {
        let outcome = |status| RegNotifyOutcome {
            status,
            removed: Vec::new(),
            releases: Vec::new(),
        };
        let Some(call_id) = req.header(HeaderName::CallId) else {
            return outcome(400);
        };
        let mut watches = self.watches.lock().expect("P-CSCF lock is never poisoned");
        let Some(key) = watches.key_of_call(call_id) else {
            return outcome(481);
        };
        let Ok(info) = crate::reginfo::RegInfo::parse(req.body()) else {
            return outcome(400);
        };
        let impu = key.impu().to_string();
        if key.remote_tag().is_none() {
            // the NOTIFY may overtake the 200 (RFC 6665 §4.1.2.4)
            watches.set_remote_tag(&impu, req.from_tag());
        }
        let w = watches.by_impu.get_mut(impu.as_str()).expect("indexed");
        if w.version.is_some_and(|v| info.version < v) {
            return outcome(200);
        }
        w.version = Some(info.version);
        if req
            .header(HeaderName::SubscriptionState)
            .is_some_and(|s| s.trim().to_ascii_lowercase().starts_with("terminated"))
        {
            watches.remove(&impu);
        }
        drop(watches);
        let mut removed = Vec::new();
        // something ended: only then can the subscription have lost its last UE here (a NOTIFY
        // that only confirms active contacts — the first one of every registration — needs no
        // look through every registered UE)
        let any_ended = info.registrations.iter().any(|r| {
            r.state == crate::reginfo::RegistrationState::Terminated
                || r.contacts.iter().any(|c| !c.active)
        });
        {
            let mut ues = self.ues.lock().expect("P-CSCF lock is never poisoned");
            for reg in &info.registrations {
                let gone_all = reg.state == crate::reginfo::RegistrationState::Terminated;
                for c in reg.contacts.iter().filter(|c| !c.active || gone_all) {
                    let key = contact_key(&c.uri);
                    if ues
                        .by_key
                        .get(key.as_str())
                        .is_some_and(|r| r.is_associated(&reg.aor))
                    {
                        ues.by_key.remove(key.as_str());
                        removed.push(key);
                    }
                }
                if gone_all {
                    ues.by_key.retain(|r| {
                        let gone = r.is_associated(&reg.aor);
                        if gone {
                            removed.push(r.key().to_string());
                        }
                        !gone
                    });
                }
            }
            // nobody left under this subscription: it has no purpose any more
            if any_ended
                && !ues
                    .by_key
                    .iter()
                    .any(|r| r.default_impu() == Some(impu.as_str()))
            {
                self.watches
                    .lock()
                    .expect("P-CSCF lock is never poisoned")
                    .remove(&impu);
            }
        }
        removed.sort();
        removed.dedup();
        // release the calls those UEs take part in; their SAs stay until the BYEs are done
        // ([`Pcscf::end_sas`]): a BYE toward a UE with SAs goes over them (TS 33.203 §7.1)
        let mut releases = Vec::new();
        let mut calls = self.calls.lock().expect("P-CSCF lock is never poisoned");
        let keys: Vec<(String, bool)> = calls
            .iter()
            .filter(|(_, _, c)| {
                c.leg
                    .as_ref()
                    .and_then(|l| l.ue_contact.as_deref())
                    .is_some_and(|u| removed.contains(&contact_key(u)))
            })
            .map(|(id, side, _)| (id.to_string(), side))
            .collect();
        for (call_id, side) in keys {
            if let Some(c) = calls.remove(&call_id, side) {
                releases.push(Self::release_call(&call_id, c, reason));
            }
        }
        drop(calls);
        let releases = releases.into_iter().map(|r| self.over_sas(r)).collect();
        RegNotifyOutcome {
            status: 200,
            removed,
            releases,
        }
    }

    /// The Rx sessions open: (Call-ID, our UE is the caller, Session-Id), one per side of a
    /// call served here.
    pub fn rx_sessions(&self) -> Vec<(String, bool, String)> {
        self.calls
            .lock()
            .expect("P-CSCF lock is never poisoned")
            .iter()
            .filter_map(|(call_id, caller, c)| {
                c.rx.clone().map(|rx| (call_id.to_string(), caller, rx))
            })
            .collect()
    }

    /// Number of reg event subscriptions held (started or pending).
    pub fn reg_subscriptions(&self) -> usize {
        self.watches
            .lock()
            .expect("P-CSCF lock is never poisoned")
            .len()
    }
}

// ---------------------------------------------------------------------------------------------
// I-CSCF

/// I-CSCF settings.
#[derive(Debug, Clone)]
pub struct IcscfConfig {
    /// S-CSCF URIs to pick from when the HSS sends Server-Capabilities (first one wins here).
    pub scscfs: Vec<String>,
}

/// The I-CSCF: UAR for REGISTER, LIR for terminating requests, ENUM for tel URIs.
///
/// S-CSCF selection (TS 24.229 §5.3.1.2, §5.3.2.1; TS 29.228 §6.1.1.1, §6.1.4.1): an answer
/// naming an S-CSCF (Server-Name) is followed whatever its success code — DIAMETER_SUCCESS
/// (de-registration), DIAMETER_FIRST_REGISTRATION when the HSS assigns one itself,
/// DIAMETER_SUBSEQUENT_REGISTRATION, DIAMETER_UNREGISTERED_SERVICE, and the deprecated
/// DIAMETER_SERVER_SELECTION of older HSSs (the assigned S-CSCF is kept). An answer naming none
/// is a selection ([`Icscf::select`]): from its Server-Capabilities when it carries some, else the
/// first configured S-CSCF; with no S-CSCF to choose a REGISTER gets 600 (Busy Everywhere) and a
/// terminating request 480. A de-registration answered without a Server-Name has no S-CSCF to
/// reach and gets 403: none is selected for it.
#[derive(Debug)]
pub struct Icscf<C> {
    cfg: IcscfConfig,
    cx: C,
    enum_table: EnumTable,
    /// The capabilities of the S-CSCFs of `cfg.scscfs` (by URI; an S-CSCF not listed offers none).
    offered: HashMap<String, Vec<u32>>,
}

fn impi_of(req: &Message<'_>, impu: &str) -> Option<String> {
    if let Some(auth) = req.header(HeaderName::Authorization) {
        if let Ok(c) = ims_auth::Credentials::parse(auth) {
            if !c.username.is_empty() {
                return Some(c.username.to_string());
            }
        }
    }
    let rest = impu.strip_prefix("sip:")?;
    let end = rest.find([';', '?']).unwrap_or(rest.len());
    Some(rest[..end].to_string()).filter(|s| s.contains('@'))
}

fn is_deregistration(req: &Message<'_>) -> bool {
    let header_zero = req
        .header(HeaderName::Expires)
        .is_some_and(|v| v.trim() == "0");
    // every contact read once, none collected (one list per REGISTER at each CSCF before)
    let mut any = false;
    for c in req.contacts().flatten() {
        any = true;
        let zero = match c.expires() {
            Some(e) => e == 0,
            None => header_zero,
        };
        if !zero {
            return false;
        }
    }
    any
}

/// A REGISTER the I-CSCF sent on to an S-CSCF, for selecting another one when that S-CSCF does
/// not answer ([`Icscf::reselect`], TS 24.229 §5.3.1.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reselection {
    /// The private identity of the UAR.
    pub impi: String,
    /// The public identity being registered.
    pub impu: String,
    /// The S-CSCFs the REGISTER was sent to, the current one last.
    pub tried: Vec<String>,
    /// The HSS named the current S-CSCF (Server-Name): its capabilities are still to be asked
    /// for (UAR with REGISTRATION_AND_CAPABILITIES).
    pub named: bool,
    /// The Server-Capabilities of the selection.
    pub capabilities: Option<crate::hss::ScscfCapabilities>,
}

impl<C: CxClient> Icscf<C> {
    /// An I-CSCF asking the HSS through `cx`.
    pub fn new(cfg: IcscfConfig, cx: C, enum_table: EnumTable) -> Icscf<C> {
        Icscf {
            cfg,
            cx,
            enum_table,
            offered: HashMap::new(),
        }
    }

    /// The capabilities (operator-defined numbers, TS 29.228 §6.7) the S-CSCF `uri` of
    /// [`IcscfConfig::scscfs`] offers, matched against the Mandatory-/Optional-Capability values
    /// of a Server-Capabilities the HSS sends ([`Icscf::select`]).
    pub fn with_scscf_capabilities(
        mut self,
        uri: impl Into<String>,
        capabilities: Vec<u32>,
    ) -> Self {
        self.offered.insert(uri.into(), capabilities);
        self
    }

    /// The S-CSCF for an answer naming `server_name` or carrying `capabilities`:
    /// - a Server-Name is the assigned S-CSCF: it is kept;
    /// - with Server-Capabilities, first the S-CSCFs it names (in order: the HSS's preference)
    ///   unless one is configured here without a mandatory capability, then the configured
    ///   S-CSCFs offering every mandatory capability, those offering more of the optional ones
    ///   first (configuration order among equals); `None` when none qualifies;
    /// - with neither, the first configured S-CSCF.
    pub fn select(
        &self,
        server_name: Option<&str>,
        capabilities: Option<&crate::hss::ScscfCapabilities>,
    ) -> Option<String> {
        if let Some(n) = server_name {
            return Some(n.to_string());
        }
        self.select_excluding(capabilities, &[])
    }

    /// [`Icscf::select`] without a Server-Name, skipping the S-CSCFs of `excluded` (those that
    /// did not answer, TS 24.229 §5.3.1.3).
    pub fn select_excluding(
        &self,
        capabilities: Option<&crate::hss::ScscfCapabilities>,
        excluded: &[String],
    ) -> Option<String> {
        let allowed = |s: &String| !excluded.contains(s);
        let Some(caps) = capabilities else {
            return self.cfg.scscfs.iter().find(|s| allowed(s)).cloned();
        };
        let offers_mandatory = |offered: &[u32]| caps.mandatory.iter().all(|m| offered.contains(m));
        if let Some(n) = caps.server_names.iter().find(|n| {
            allowed(n)
                && self
                    .offered
                    .get(n.as_str())
                    .is_none_or(|o| offers_mandatory(o))
        }) {
            return Some(n.clone());
        }
        let none = Vec::new();
        self.cfg
            .scscfs
            .iter()
            .filter(|s| allowed(s))
            .map(|s| (s, self.offered.get(s).unwrap_or(&none)))
            .filter(|(_, o)| offers_mandatory(o))
            // max_by_key keeps the last of equals: rank by (optional count, earlier first)
            .enumerate()
            .max_by_key(|(i, (_, o))| {
                let optional = caps.optional.iter().filter(|c| o.contains(c)).count();
                (optional, std::cmp::Reverse(*i))
            })
            .map(|(_, (s, _))| s.clone())
    }

    /// Whether a REGISTER sent on after `r` could go to another S-CSCF should the one selected
    /// not answer: some S-CSCF configured here, or named in the capabilities of `r`, is not
    /// among those tried. When none is, the proxy's own handling (its 408/500) is all there is.
    pub fn may_reselect(&self, r: &Reselection) -> bool {
        let untried = |s: &String| !r.tried.contains(s);
        self.cfg.scscfs.iter().any(untried)
            || r.capabilities
                .as_ref()
                .is_some_and(|c| c.server_names.iter().any(untried))
    }

    /// The next S-CSCF for a REGISTER whose S-CSCF (the last of [`Reselection::tried`]) did not
    /// answer — no response, or a transport error (TS 24.229 §5.3.1.3; TS 23.380 §4.3.2): when
    /// the HSS had named that S-CSCF, a new UAR with User-Authorization-Type
    /// REGISTRATION_AND_CAPABILITIES asks for the capabilities (TS 29.228 §6.1.1.1); when it had
    /// been selected by capabilities, those are used again. The S-CSCFs tried are excluded;
    /// the one selected is appended to them. `Ok(None)`: none is left.
    pub async fn reselect(&self, r: &mut Reselection) -> Result<Option<String>, CxFailure> {
        if r.named {
            let d = self
                .cx
                .uar(
                    &r.impi,
                    &r.impu,
                    UserAuthorizationType::RegistrationAndCapabilities,
                )
                .await?;
            r.named = false;
            r.capabilities = d.server_capabilities;
        }
        let next = self.select_excluding(r.capabilities.as_ref(), &r.tried);
        if let Some(s) = &next {
            r.tried.push(s.clone());
        }
        Ok(next)
    }

    /// [`Icscf::route`] for a REGISTER, with what [`Icscf::reselect`] needs when the request is
    /// forwarded to an S-CSCF for a registration (not a de-registration: the S-CSCF holding the
    /// registration is the only one that can end it).
    pub async fn route_register(&self, req: &Message<'_>) -> (Decision, Option<Reselection>) {
        let Some(impu) = req
            .to()
            .ok()
            .flatten()
            .map(|t| t.uri().as_str().to_string())
        else {
            return (Decision::Reply(400), None);
        };
        let Some(impi) = impi_of(req, &impu) else {
            return (Decision::Reply(403), None);
        };
        let t = if is_deregistration(req) {
            UserAuthorizationType::DeRegistration
        } else {
            UserAuthorizationType::Registration
        };
        match self.cx.uar(&impi, &impu, t).await {
            Ok(d) if t == UserAuthorizationType::DeRegistration && d.server_name.is_none() => {
                (Decision::Reply(403), None)
            }
            Ok(d) => match self.select(d.server_name.as_deref(), d.server_capabilities.as_ref()) {
                Some(s) => {
                    let forward = one(Forward {
                        routes: vec![lr(&s)],
                        ..Forward::default()
                    });
                    let r = (t == UserAuthorizationType::Registration).then(|| Reselection {
                        impi,
                        impu,
                        tried: vec![s],
                        named: d.server_name.is_some(),
                        capabilities: d.server_capabilities,
                    });
                    (forward, r)
                }
                None => (Decision::Reply(600), None),
            },
            Err(CxFailure::Unreachable(_)) => (Decision::Reply(504), None),
            Err(CxFailure::Result(_)) => (Decision::Reply(403), None),
        }
    }

    /// Routes a request arriving at the I-CSCF.
    pub async fn route(&self, req: &Message<'_>) -> Decision {
        let Some(method) = req.method() else {
            return Decision::Reply(400);
        };
        if method == Method::Register {
            return self.route_register(req).await.0;
        }
        if !is_initial(req) {
            return one(Forward::default());
        }
        // terminating: tel URI through ENUM, then LIR
        let Some(ruri) = req.request_uri_str() else {
            return Decision::Reply(400);
        };
        let mut target = ruri.to_string();
        let mut new_ruri = None;
        if let Some(number) = ruri.strip_prefix("tel:") {
            let number = number.split(';').next().unwrap_or(number);
            match self.enum_table.lookup(number).await {
                Ok(uri) => {
                    target = uri.clone();
                    new_ruri = Some(uri);
                }
                Err(_) => return Decision::Reply(404),
            }
        }
        let impu = target.split(';').next().unwrap_or(&target).to_string();
        match self.cx.lir(&impu).await {
            Ok(d) => match self.select(d.server_name.as_deref(), d.server_capabilities.as_ref()) {
                Some(s) => one(Forward {
                    request_uri: new_ruri,
                    routes: vec![lr(&s)],
                    ..Forward::default()
                }),
                None => Decision::Reply(480),
            },
            Err(CxFailure::Unreachable(_)) => Decision::Reply(504),
            Err(CxFailure::Result(r)) if r == result::IDENTITY_NOT_REGISTERED => {
                Decision::Reply(480)
            }
            Err(CxFailure::Result(_)) => Decision::Reply(404),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// S-CSCF routing

/// S-CSCF routing settings.
#[derive(Debug, Clone)]
pub struct ScscfRouting {
    /// Our originating URI (the Service-Route target, `sip:orig@127.0.0.1:6061`): application
    /// servers send requests back here.
    pub orig_uri: String,
    /// Our terminating URI (where the I-CSCF sends terminating requests,
    /// `sip:term@127.0.0.1:6060`): application servers of the terminating case send back here.
    pub term_uri: String,
    /// The home domains we serve.
    pub home_domains: Vec<String>,
    /// The I-CSCF to send terminating requests of home users to.
    pub icscf: String,
    /// The user profiles' parsed shapes: the iFCs of each initial request are evaluated from
    /// a shape parsed and compiled once, not from the stored document each time. Share the
    /// registrar's ([`crate::scscf::Scscf::profiles`]) or start an empty one (`Default`).
    pub profiles: std::sync::Arc<crate::profile_cache::ProfileCache>,
}

/// The store key of a temporary GRUU (RFC 5627 §3.2): the URI without parameters, lower case.
/// The S-CSCF stores each one it issues as an alias of the public GRUU of the same instance
/// ([`BindingStore::save_alias`]); only the issuing domain can resolve them.
pub(crate) fn temp_gruu_key(uri: &str) -> String {
    uri.split(';').next().unwrap_or(uri).to_ascii_lowercase()
}

/// The public GRUU of a Request-URI that is one of our temporary GRUUs (it must carry `gr`).
async fn resolve_temp_gruu<S: BindingStore>(store: &S, ruri: &str, now: u64) -> Option<String> {
    let has_gr = ruri.split(';').skip(1).any(|p| {
        p.split('=')
            .next()
            .is_some_and(|n| n.trim().eq_ignore_ascii_case("gr"))
    });
    if !has_gr {
        return None;
    }
    store
        .load_alias(&temp_gruu_key(ruri), now)
        .await
        .ok()
        .flatten()
}

fn as_forward(server: &str, back: Option<String>, served: &str) -> Forward {
    let mut routes = vec![lr(server)];
    routes.extend(back);
    Forward {
        routes,
        headers: vec![("P-Served-User".into(), format!("<{served}>"))],
        ..Forward::default()
    }
}

impl ScscfRouting {
    /// Whether a Request-URI is of our network: a tel URI, or a SIP URI whose host is one of
    /// our domains (the host read without parsing the whole URI, [`sip_host`]).
    fn home(&self, uri: &str) -> bool {
        if uri.get(..4).is_some_and(|s| s.eq_ignore_ascii_case("tel:")) {
            return true;
        }
        sip_host(uri).is_some_and(|h| self.home_domains.iter().any(|d| d.eq_ignore_ascii_case(h)))
    }

    /// The first iFC application server after priority `after` for this request and case.
    fn next_as(
        profiles: &crate::profile_cache::ProfileCache,
        rec: &RegistrationRecord,
        req: &Message<'_>,
        case: SessionCase,
        after: Option<i32>,
    ) -> Option<(String, i32)> {
        // the same answer as parsing the document: the service profile holding the IMPU (else
        // the first), its iFCs compiled (none when they do not compile)
        let profile = profiles.get(rec.user_data.as_deref()?).ok()?;
        let sp = profile
            .service_profile_of(&rec.impu)
            .or((profile.service_profiles() > 0).then_some(0))?;
        let set = profile.filters(sp)?;
        let ctx = Context {
            session_case: case,
            registered: !rec.bindings.is_empty(),
            registration_type: None,
        };
        set.next_after(req, ctx, after)
            .map(|i| (i.application_server.server_name.clone(), i.priority))
    }

    /// An originating request (it arrived on the originating port) at `now` (seconds since the
    /// epoch). `odi` is the priority of the last application server the request visited, from
    /// the Route we put in (`None` the first time).
    pub async fn originating<S: BindingStore>(
        &self,
        store: &S,
        req: &Message<'_>,
        odi: Option<i32>,
        now: u64,
    ) -> Decision {
        if !is_initial(req) {
            // in-dialog: along the route set (the proxy core follows the Route headers)
            return one(Forward::default());
        }
        let Some(served) = asserted_identity(req) else {
            return Decision::Reply(403);
        };
        let Ok(Some(rec)) = store.load(&served).await else {
            return Decision::Reply(403);
        };
        if rec.barred.contains(&served) {
            return Decision::Reply(403);
        }
        if let Some((server, prio)) =
            Self::next_as(&self.profiles, &rec, req, SessionCase::Originating, odi)
        {
            let back = lr_odi(&self.orig_uri, prio);
            return one(as_forward(&server, Some(back), &served));
        }
        let Some(ruri) = req.request_uri_str() else {
            return Decision::Reply(400);
        };
        if resolve_temp_gruu(store, ruri, now).await.is_some() {
            // a temporary GRUU we issued: only we can resolve it — to our terminating side
            return one(Forward {
                routes: vec![lr(&self.term_uri)],
                ..Forward::default()
            });
        }
        if self.home(ruri) {
            // the terminating side of our own network: through the I-CSCF (LIR there)
            one(Forward {
                routes: vec![lr(&self.icscf)],
                ..Forward::default()
            })
        } else {
            one(Forward::default())
        }
    }

    /// A terminating request (it arrived on the terminating port from the I-CSCF, or back from an
    /// application server with `odi`).
    pub async fn terminating<S: BindingStore>(
        &self,
        store: &S,
        req: &Message<'_>,
        odi: Option<i32>,
        now: u64,
    ) -> Decision {
        if !is_initial(req) {
            return one(Forward::default());
        }
        let Some(ruri) = req.request_uri_str() else {
            return Decision::Reply(400);
        };
        // a temporary GRUU routes as the public GRUU of the same instance (RFC 5627 §3.2)
        let public = resolve_temp_gruu(store, ruri, now).await;
        let ruri = public.as_deref().unwrap_or(ruri);
        let impu = ruri.split(';').next().unwrap_or(ruri).to_string();
        let rec = match store.load(&impu).await {
            Ok(Some(r)) => r,
            Ok(None) => return Decision::Reply(480),
            Err(_) => return Decision::Reply(500),
        };
        // a public GRUU (RFC 5627 §3.1, `aor;gr=urn`) reaches only that device's contacts
        let gruu = gruu_instance(ruri);
        let live: Vec<&Binding> = rec
            .bindings
            .iter()
            .filter(|b| b.expires_at > now)
            .filter(|b| {
                gruu.as_deref().is_none_or(|g| {
                    b.instance_id
                        .as_deref()
                        .is_some_and(|i| i.trim_start_matches('<').trim_end_matches('>') == g)
                })
            })
            .collect();
        let case = if live.is_empty() {
            SessionCase::TerminatingUnregistered
        } else {
            SessionCase::TerminatingRegistered
        };
        if let Some((server, prio)) = Self::next_as(&self.profiles, &rec, req, case, odi) {
            // back to us afterwards on the terminating side: the term port is the one the
            // I-CSCF used; the AS routes by Route, so it comes back with the odi
            let back = lr_odi(&self.term_uri, prio);
            return one(as_forward(&server, Some(back), &impu));
        }
        if live.is_empty() {
            return Decision::Reply(480);
        }
        Decision::Forward(
            live.into_iter()
                .map(|b| Forward {
                    request_uri: Some(b.uri.clone()),
                    routes: b.path.clone(),
                    headers: vec![("P-Called-Party-ID".into(), format!("<{impu}>"))],
                    ..Forward::default()
                })
                .collect(),
        )
    }
}

/// The instance URN of a public GRUU Request-URI (`sip:bob@example.org;gr=urn:uuid:…` →
/// `urn:uuid:…`); `None` without a valued `gr` parameter.
fn gruu_instance(ruri: &str) -> Option<String> {
    ruri.split(';').skip(1).find_map(|p| {
        let (n, v) = p.split_once('=')?;
        (n.trim().eq_ignore_ascii_case("gr") && !v.is_empty())
            .then(|| v.trim().trim_matches('"').to_string())
    })
}

/// Whether the Route value the proxy removed (our own URI, topmost) asks the S-CSCF for the
/// originating case (TS 24.229 §5.4.3.1): it carries the `orig` URI parameter — an AS
/// originating a request on behalf of a user (§5.7.3) — or the user part `orig` our
/// Service-Route and `odi` Routes use (§5.4.1.2.2F). The proxy took the value off, parameter
/// included, as §5.4.3.1 asks.
pub fn asks_originating(route: Option<&str>) -> bool {
    let Some(r) = route else {
        return false;
    };
    let uri = uri_in(r);
    let (user, hostpart) = match uri.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, uri),
    };
    let user_orig = user.is_some_and(|u| {
        u.split_once(':')
            .map_or(u, |(_, rest)| rest)
            .eq_ignore_ascii_case("orig")
    });
    user_orig
        || hostpart
            .split('?')
            .next()
            .unwrap_or(hostpart)
            .split(';')
            .skip(1)
            .any(|p| {
                p.split('=')
                    .next()
                    .is_some_and(|n| n.trim().eq_ignore_ascii_case("orig"))
            })
}

/// The `odi` parameter of the Route value the proxy removed (`<sip:orig@h:p;lr;odi=3>` → 3).
pub fn odi_of(route: Option<&str>) -> Option<i32> {
    let r = route?;
    let i = r.find(";odi=")? + 5;
    r[i..]
        .split(|c: char| !c.is_ascii_digit() && c != '-')
        .next()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fields as read before [`field_head`]: `split_once(':')` and `usize::from_str`.
    fn fields_by_parse(s: &str) -> Vec<&str> {
        let mut rest = s;
        std::iter::from_fn(move || {
            let (n, r) = rest.split_once(':')?;
            let n: usize = n.parse().ok()?;
            let text = r.get(..n)?;
            rest = &r[n..];
            Some(text)
        })
        .collect()
    }

    proptest::proptest! {
        #[test]
        fn fields_and_numbers_are_written_as_formatted(t in "[a-z:0-9é]{0,12}", n in proptest::num::u64::ANY) {
            let mut s = String::new();
            push_field(&mut s, &t);
            proptest::prop_assert_eq!(s, format!("{}:{t}", t.len()));
            let mut d = String::new();
            push_dec(&mut d, n);
            proptest::prop_assert_eq!(d, n.to_string());
        }

        /// The digit loop reads the fields of any text as the search and number parser did
        /// (texts written by `push_field`, and any other: signs, overflow, no colon).
        #[test]
        fn fields_read_by_the_digit_loop_are_those_of_the_parser(
            texts in proptest::collection::vec("[a-z:0-9+é]{0,12}", 0..5),
            junk in "[0-9+:a-]{0,24}",
        ) {
            let mut s = String::new();
            for t in &texts {
                push_field(&mut s, t);
            }
            let read: Vec<&str> = fields_of(&s).collect();
            proptest::prop_assert_eq!(&read, &texts.iter().map(String::as_str).collect::<Vec<_>>());
            proptest::prop_assert_eq!(read, fields_by_parse(&s));
            for t in [junk.clone(), format!("{s}{junk}"), format!("99999999999999999999999:{junk}")] {
                proptest::prop_assert_eq!(fields_of(&t).collect::<Vec<_>>(), fields_by_parse(&t));
            }
        }
    }
    use crate::cx::LocalHss;
    use crate::hss::{Credentials, Hss, Subscriber};
    use crate::store::{MemoryStore, RegState};
    use crate::subscription::{
        ApplicationServer, ImsSubscription, InitialFilterCriteria, PublicIdentity, ServiceProfile,
        Spt, SptKind, TriggerPoint,
    };
    use crate::test_util::block_on;
    use std::sync::Arc;

    /// A P-CSCF that has relayed alice's REGISTER 200 (`REG_200`): alice is registered.
    fn registered_pcscf() -> Pcscf {
        let p = pcscf();
        p.on_response(
            &ims_sip::parse_datagram(REG_200.as_bytes()).unwrap(),
            0,
            true,
            || unreachable!(),
        );
        p
    }

    fn pcscf() -> Pcscf {
        Pcscf::new(PcscfConfig {
            path_uri: "sip:term@127.0.0.1:5061".into(),
            icscf: "sip:127.0.0.1:5062".into(),
            visited_network_id: "ims.example.org".into(),
            host: "pcscf.ims.example.org".into(),
        })
    }

    const REG_200: &str = "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK-1\r\n\
From: <sip:alice@ims.example.org>;tag=1\r\nTo: <sip:alice@ims.example.org>;tag=2\r\nCall-ID: r1\r\n\
CSeq: 2 REGISTER\r\nContact: <sip:alice@10.0.0.1:5060>;expires=600\r\n\
Service-Route: <sip:orig@127.0.0.1:6061;lr>\r\n\
P-Associated-URI: <sip:alice@ims.example.org>, <tel:+15550001>\r\nContent-Length: 0\r\n\r\n";

    fn invite(extra: &str, body: &str) -> String {
        format!(
            "INVITE sip:bob@ims.example.org SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK-2\r\n\
Max-Forwards: 70\r\nFrom: <sip:alice@ims.example.org>;tag=a\r\nTo: <sip:bob@ims.example.org>\r\n\
Call-ID: c1\r\nCSeq: 1 INVITE\r\nContact: <sip:alice@10.0.0.1:5060>\r\n{extra}\
Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
    }

    const OFFER: &str = "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0\r\n";
    const ANSWER: &str = "v=0\r\no=- 2 1 IN IP4 10.0.0.2\r\ns=-\r\nc=IN IP4 10.0.0.2\r\nt=0 0\r\nm=audio 50000 RTP/AVP 0\r\n";

    /// The contact loop answers as the list it replaced did (the oracle: every contact
    /// collected, then `expires == 0`, or no `expires` and `Expires: 0`).
    #[test]
    fn deregistration_is_read_as_from_the_list_of_contacts() {
        let old = |req: &Message<'_>| {
            let header_zero = req
                .header(HeaderName::Expires)
                .is_some_and(|v| v.trim() == "0");
            let contacts: Vec<ims_sip::headers::Contact<'_>> = req.contacts().flatten().collect();
            !contacts.is_empty()
                && contacts
                    .iter()
                    .all(|c| c.expires() == Some(0) || (c.expires().is_none() && header_zero))
        };
        for contacts in [
            "",
            "Contact: *\r\n",
            "Contact: <sip:a@x>\r\n",
            "Contact: <sip:a@x>;expires=0\r\n",
            "Contact: <sip:a@x>;expires=600\r\n",
            "Contact: <sip:a@x>;expires=0, <sip:b@x>\r\n",
            "Contact: <sip:a@x>;expires=0\r\nContact: <sip:b@x>;expires=0\r\n",
            "Contact: <sip:a@x>;expires=0, <sip:b@x>;expires=1\r\n",
            "Contact: <bad\r\n",
            "Contact: <sip:a@x>;expires=x\r\n",
        ] {
            for expires in ["", "Expires: 0\r\n", "Expires: 600\r\n", "Expires:  0 \r\n"] {
                let text = format!("REGISTER sip:ims.example.org SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK1\r\n\
From: <sip:a@x>;tag=1\r\nTo: <sip:a@x>\r\nCall-ID: c\r\nCSeq: 1 REGISTER\r\n{contacts}{expires}Content-Length: 0\r\n\r\n");
                if let Ok(req) = ims_sip::parse_datagram(text.as_bytes()) {
                    assert_eq!(is_deregistration(&req), old(&req), "{text}");
                }
            }
        }
    }

    #[test]
    fn pcscf_register_then_originating_call_with_rx() {
        let p = pcscf();
        let reg = "REGISTER sip:ims.example.org SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK-r\r\n\
Max-Forwards: 70\r\nFrom: <sip:alice@ims.example.org>;tag=1\r\nTo: <sip:alice@ims.example.org>\r\n\
Call-ID: r1\r\nCSeq: 1 REGISTER\r\nContact: <sip:alice@10.0.0.1:5060>\r\nContent-Length: 0\r\n\r\n";
        let Decision::Forward(f) = p.from_ue(&ims_sip::parse_datagram(reg.as_bytes()).unwrap(), 0)
        else {
            panic!()
        };
        assert_eq!(f[0].routes, ["<sip:127.0.0.1:5062;lr>"]);
        assert!(f[0]
            .headers
            .iter()
            .any(|(n, v)| n == "Path" && v == "<sip:term@127.0.0.1:5061;lr>"));
        // not registered yet: an INVITE is refused
        let inv = invite("", OFFER);
        assert_eq!(
            p.from_ue(&ims_sip::parse_datagram(inv.as_bytes()).unwrap(), 10),
            Decision::Reply(403)
        );
        p.on_response(
            &ims_sip::parse_datagram(REG_200.as_bytes()).unwrap(),
            0,
            true,
            || unreachable!(),
        );
        let r = p.registration("sip:alice@10.0.0.1:5060").unwrap();
        assert_eq!(r.associated, ["sip:alice@ims.example.org", "tel:+15550001"]);
        let Decision::Forward(f) = p.from_ue(&ims_sip::parse_datagram(inv.as_bytes()).unwrap(), 10)
        else {
            panic!()
        };
        assert_eq!(f[0].routes, ["<sip:orig@127.0.0.1:6061;lr>"]);
        assert!(f[0].headers.contains(&(
            "P-Asserted-Identity".into(),
            "<sip:alice@ims.example.org>".into()
        )));
        // a P-Preferred-Identity that is not the UE's is refused
        let bad = invite(
            "P-Preferred-Identity: <sip:mallory@ims.example.org>\r\n",
            OFFER,
        );
        assert_eq!(
            p.from_ue(&ims_sip::parse_datagram(bad.as_bytes()).unwrap(), 10),
            Decision::Reply(403)
        );
        // the 183 with SDP opens the Rx session, the 200 updates it, the BYE ends it
        let resp = |code: u16, reason: &str| {
            format!(
                "SIP/2.0 {code} {reason}\r\nVia: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK-2\r\n\
From: <sip:alice@ims.example.org>;tag=a\r\nTo: <sip:bob@ims.example.org>;tag=b\r\nCall-ID: c1\r\n\
CSeq: 1 INVITE\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{ANSWER}",
                ANSWER.len()
            )
        };
        let r183 = resp(183, "Session Progress");
        let a = p
            .on_response(
                &ims_sip::parse_datagram(r183.as_bytes()).unwrap(),
                11,
                true,
                || "rx1".into(),
            )
            .unwrap();
        let RxAction::Aar {
            session_id,
            update,
            media,
            icid,
        } = a
        else {
            panic!()
        };
        assert_eq!(
            (session_id.as_str(), update, media.len()),
            ("rx1", false, 1)
        );
        assert!(icid.starts_with("pcscf.ims.example.org-"));
        let r200 = resp(200, "OK");
        let a = p
            .on_response(
                &ims_sip::parse_datagram(r200.as_bytes()).unwrap(),
                12,
                true,
                || unreachable!(),
            )
            .unwrap();
        assert!(matches!(a, RxAction::Aar { update: true, .. }));
        // a retransmitted 200 (the caller's ACK lost) and a retransmitted 183 authorise nothing new
        for again in [&r200, &r183, &r200] {
            let again = ims_sip::parse_datagram(again.as_bytes()).unwrap();
            assert_eq!(p.on_response(&again, 12, true, || unreachable!()), None);
        }
        let bye = "BYE sip:bob@10.0.0.2 SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK-3\r\n\
Max-Forwards: 70\r\nFrom: <sip:alice@ims.example.org>;tag=a\r\nTo: <sip:bob@ims.example.org>;tag=b\r\n\
Call-ID: c1\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n";
        let bye = ims_sip::parse_datagram(bye.as_bytes()).unwrap();
        assert_eq!(p.from_ue(&bye, 13), one(Forward::default()));
        assert_eq!(
            p.rx_on_end(&bye, true),
            Some(RxAction::Str {
                session_id: "rx1".into()
            })
        );
    }

    #[test]
    fn pcscf_release_sends_bye_both_ways_with_the_dialog_state() {
        let p = registered_pcscf();
        let inv = invite("", OFFER);
        assert!(matches!(
            p.from_ue(&ims_sip::parse_datagram(inv.as_bytes()).unwrap(), 10),
            Decision::Forward(_)
        ));
        // the 200 as it reaches the caller: Record-Route of both P-CSCF sides and the S-CSCFs
        let ok = format!(
            "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK-2\r\n\
Record-Route: <sip:127.0.0.1:5061;lr>\r\nRecord-Route: <sip:127.0.0.1:6060;lr>\r\n\
Record-Route: <sip:127.0.0.1:6061;lr>\r\nRecord-Route: <sip:127.0.0.1:5061;lr>\r\n\
From: <sip:alice@ims.example.org>;tag=a\r\nTo: <sip:bob@ims.example.org>;tag=b\r\nCall-ID: c1\r\n\
CSeq: 1 INVITE\r\nContact: <sip:bob@10.0.0.2:5070>\r\nContent-Type: application/sdp\r\n\
Content-Length: {}\r\n\r\n{ANSWER}",
            ANSWER.len()
        );
        let Some(RxAction::Aar { session_id, .. }) = p.on_response(
            &ims_sip::parse_datagram(ok.as_bytes()).unwrap(),
            11,
            true,
            || "rx9".into(),
        ) else {
            panic!("AAR at the 200")
        };
        assert_eq!(p.rx_media("rx9"), Some(vec![1]));
        // a re-INVITE from the callee (CSeq 7) and one from the caller (CSeq 2) raise each side
        let reinvite = |from: &str, to: &str, cseq: u32| {
            format!(
                "INVITE sip:x@10.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.9;branch=z9hG4bK-{cseq}\r\n\
Max-Forwards: 70\r\nFrom: {from}\r\nTo: {to}\r\nCall-ID: c1\r\nCSeq: {cseq} INVITE\r\n\
Content-Length: 0\r\n\r\n"
            )
        };
        let r = reinvite(
            "<sip:bob@ims.example.org>;tag=b",
            "<sip:alice@ims.example.org>;tag=a",
            7,
        );
        p.from_core(&ims_sip::parse_datagram(r.as_bytes()).unwrap());
        let r = reinvite(
            "<sip:alice@ims.example.org>;tag=a",
            "<sip:bob@ims.example.org>;tag=b",
            2,
        );
        p.from_ue(&ims_sip::parse_datagram(r.as_bytes()).unwrap(), 12);
        assert!(p.release("nope", "SIP ;cause=503").is_none());
        let rel = p.release(&session_id, "SIP ;cause=503").unwrap();
        assert_eq!(
            rel.str,
            Some(RxAction::Str {
                session_id: "rx9".into()
            })
        );
        assert_eq!(rel.byes.len(), 2);
        // to the UE: at its contact, as from the callee, above the callee's CSeq
        let to_ue = ims_sip::parse_datagram(rel.byes[0].request.as_bytes()).unwrap();
        assert_eq!(rel.byes[0].next_hop, "sip:alice@10.0.0.1:5060");
        assert_eq!(to_ue.request_uri_str(), Some("sip:alice@10.0.0.1:5060"));
        assert_eq!(to_ue.from().unwrap().unwrap().tag(), Some("b"));
        assert_eq!(to_ue.to().unwrap().unwrap().tag(), Some("a"));
        assert_eq!(to_ue.cseq().unwrap().unwrap().seq, 8);
        assert_eq!(to_ue.header_str("Reason"), Some("SIP ;cause=503"));
        assert_eq!(to_ue.list(HeaderName::Route).count(), 0);
        // toward the callee: along the route set without us, as from the caller
        let to_core = ims_sip::parse_datagram(rel.byes[1].request.as_bytes()).unwrap();
        assert_eq!(to_core.request_uri_str(), Some("sip:bob@10.0.0.2:5070"));
        let routes: Vec<&str> = to_core.list(HeaderName::Route).map(|(_, v)| v).collect();
        assert_eq!(
            routes,
            [
                "<sip:127.0.0.1:6061;lr>",
                "<sip:127.0.0.1:6060;lr>",
                "<sip:127.0.0.1:5061;lr>"
            ]
        );
        assert_eq!(rel.byes[1].next_hop, "sip:127.0.0.1:6061;lr");
        assert_eq!(to_core.from().unwrap().unwrap().tag(), Some("a"));
        assert_eq!(to_core.to().unwrap().unwrap().tag(), Some("b"));
        assert_eq!(to_core.cseq().unwrap().unwrap().seq, 3);
        // released: the session is gone
        assert!(p.release(&session_id, "SIP ;cause=503").is_none());
    }

    /// RFC 3261 §13.2.2.4: the 2xx recomputes the route set (and the remote target) the 1xx of
    /// its early dialog gave; the caller's BYE follows the 2xx's, shorter, Record-Route list.
    #[test]
    fn the_2xx_route_set_and_contact_replace_those_of_the_early_dialog() {
        let p = registered_pcscf();
        let inv = invite("", OFFER);
        p.from_ue(&ims_sip::parse_datagram(inv.as_bytes()).unwrap(), 10);
        let resp = |code: &str, rr: &[&str], contact: &str, body: &str| {
            let rr: String = rr
                .iter()
                .map(|r| format!("Record-Route: {r}\r\n"))
                .collect();
            format!(
                "SIP/2.0 {code}\r\nVia: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK-2\r\n{rr}\
From: <sip:alice@ims.example.org>;tag=a\r\nTo: <sip:bob@ims.example.org>;tag=b\r\n\
Call-ID: c1\r\nCSeq: 1 INVITE\r\nContact: <{contact}>\r\nContent-Type: application/sdp\r\n\
Content-Length: {}\r\n\r\n{body}",
                body.len()
            )
        };
        let ringing = resp(
            "180 Ringing",
            &[
                "<sip:early-callee-side.example.org;lr>",
                "<sip:127.0.0.1:5061;lr>",
                "<sip:127.0.0.1:6060;lr>",
                "<sip:127.0.0.1:6061;lr>",
                "<sip:127.0.0.1:5061;lr>",
            ],
            "sip:bob@10.0.0.3:5090;transport=tcp",
            "",
        );
        let ringing = ims_sip::parse_datagram(ringing.as_bytes()).unwrap();
        assert_eq!(p.on_response(&ringing, 11, true, || unreachable!()), None);
        let ok = resp(
            "200 OK",
            &[
                "<sip:127.0.0.1:6060;lr>",
                "<sip:127.0.0.1:6061;lr>",
                "<sip:127.0.0.1:5061;lr>",
            ],
            "sip:bob@10.0.0.2:5070",
            ANSWER,
        );
        let ok = ims_sip::parse_datagram(ok.as_bytes()).unwrap();
        let Some(RxAction::Aar { session_id, .. }) = p.on_response(&ok, 12, true, || "rx7".into())
        else {
            panic!("AAR at the 200")
        };
        let rel = p.release(&session_id, "SIP ;cause=503").unwrap();
        let to_core = ims_sip::parse_datagram(rel.byes[1].request.as_bytes()).unwrap();
        assert_eq!(to_core.request_uri_str(), Some("sip:bob@10.0.0.2:5070"));
        let routes: Vec<&str> = to_core.list(HeaderName::Route).map(|(_, v)| v).collect();
        assert_eq!(
            routes,
            ["<sip:127.0.0.1:6061;lr>", "<sip:127.0.0.1:6060;lr>"]
        );
        assert_eq!(rel.byes[1].next_hop, "sip:127.0.0.1:6061;lr");
        assert_eq!(to_core.to().unwrap().unwrap().tag(), Some("b"));
    }

    /// A 1xx/2xx of the test call, `to_ue` or toward the core, with these extra header lines.
    fn call_resp(code: u16, extra: &str) -> String {
        format!(
            "SIP/2.0 {code} X\r\nVia: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK-2\r\n{extra}\
From: <sip:alice@ims.example.org>;tag=a\r\nTo: <sip:bob@ims.example.org>;tag=b\r\nCall-ID: c1\r\n\
CSeq: 1 INVITE\r\nContact: <sip:bob@10.0.0.2:5070>\r\nContent-Type: application/sdp\r\n\
Content-Length: {}\r\n\r\n{ANSWER}",
            ANSWER.len()
        )
    }

    #[test]
    fn one_pcscf_serving_both_ends_keeps_one_rx_session_per_side() {
        let p = registered_pcscf();
        // bob registered at the same P-CSCF
        let bob_200 = REG_200
            .replace("alice@10.0.0.1:5060", "bob@10.0.0.2:5070")
            .replace("sip:alice@ims.example.org", "sip:bob@ims.example.org")
            .replace("tel:+15550001", "tel:+15550002");
        p.on_response(
            &ims_sip::parse_datagram(bob_200.as_bytes()).unwrap(),
            0,
            true,
            || unreachable!(),
        );
        let inv = invite("", OFFER);
        let inv = ims_sip::parse_datagram(inv.as_bytes()).unwrap();
        assert!(matches!(p.from_ue(&inv, 10), Decision::Forward(_)));
        // the INVITE comes back from the core toward bob
        assert!(matches!(p.from_core(&inv), Decision::Forward(_)));
        let r183 = call_resp(183, "");
        let r183 = ims_sip::parse_datagram(r183.as_bytes()).unwrap();
        // bob's 183 passes toward the core (callee side), then toward alice (caller side)
        let mut n = 0;
        let mut ids = || {
            n += 1;
            format!("rx{n}")
        };
        let callee = p.on_response(&r183, 11, false, &mut ids).unwrap();
        let caller = p.on_response(&r183, 11, true, &mut ids).unwrap();
        let (
            RxAction::Aar {
                session_id: s1,
                update: u1,
                ..
            },
            RxAction::Aar {
                session_id: s2,
                update: u2,
                ..
            },
        ) = (callee, caller)
        else {
            panic!()
        };
        assert_eq!(
            (s1.as_str(), u1, s2.as_str(), u2),
            ("rx1", false, "rx2", false)
        );
        // the 200 updates each side's own session
        let ok = call_resp(200, "");
        let ok = ims_sip::parse_datagram(ok.as_bytes()).unwrap();
        let a = p.on_response(&ok, 12, false, || unreachable!()).unwrap();
        assert!(
            matches!(a, RxAction::Aar { ref session_id, update: true, .. } if session_id == "rx1")
        );
        let a = p.on_response(&ok, 12, true, || unreachable!()).unwrap();
        assert!(
            matches!(a, RxAction::Aar { ref session_id, update: true, .. } if session_id == "rx2")
        );
        // bob hangs up: from bob (callee side), then from the core toward alice (caller side)
        let bye = "BYE sip:alice@10.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.2:5070;branch=z9hG4bK-9\r\n\
Max-Forwards: 70\r\nFrom: <sip:bob@ims.example.org>;tag=b\r\nTo: <sip:alice@ims.example.org>;tag=a\r\n\
Call-ID: c1\r\nCSeq: 5 BYE\r\nContent-Length: 0\r\n\r\n";
        let bye = ims_sip::parse_datagram(bye.as_bytes()).unwrap();
        assert_eq!(
            p.rx_on_end(&bye, true),
            Some(RxAction::Str {
                session_id: "rx1".into()
            })
        );
        assert_eq!(
            p.rx_on_end(&bye, false),
            Some(RxAction::Str {
                session_id: "rx2".into()
            })
        );
        assert_eq!(p.rx_on_end(&bye, false), None);
    }

    #[test]
    fn release_of_a_call_being_set_up_cancels_it() {
        let p = registered_pcscf();
        let inv = invite("", OFFER);
        p.from_ue(&ims_sip::parse_datagram(inv.as_bytes()).unwrap(), 10);
        // a 183 without a To tag (no early dialog yet): the session opens all the same
        let no_tag = call_resp(183, "").replace(";tag=b", "");
        let Some(RxAction::Aar { session_id, .. }) = p.on_response(
            &ims_sip::parse_datagram(no_tag.as_bytes()).unwrap(),
            11,
            true,
            || "rx5".into(),
        ) else {
            panic!()
        };
        let r183 = call_resp(
            183,
            "Record-Route: <sip:127.0.0.1:6061;lr>\r\nRecord-Route: <sip:127.0.0.1:5061;lr>\r\n",
        );
        p.on_response(
            &ims_sip::parse_datagram(r183.as_bytes()).unwrap(),
            11,
            true,
            || unreachable!(),
        );
        let rel = p.release(&session_id, "SIP ;cause=503").unwrap();
        // TS 24.229 §5.2.8.1.1: no BYE in the early dialog; the proxy cancels the INVITE
        assert!(rel.byes.is_empty(), "{:?}", rel.byes);
        assert_eq!(rel.reason, "SIP ;cause=503");
        assert!(rel.str.is_some());
        assert_eq!(
            rel.reject_invite,
            Some(("c1".into(), true)),
            "CANCEL toward the callee, 503 to the caller"
        );
        assert!(p.rx_sessions().is_empty(), "the call is gone");
    }

    #[test]
    fn a_failed_invite_ends_its_rx_session() {
        let p = registered_pcscf();
        p.from_ue(
            &ims_sip::parse_datagram(invite("", OFFER).as_bytes()).unwrap(),
            10,
        );
        let r183 = call_resp(183, "");
        assert!(p
            .on_response(
                &ims_sip::parse_datagram(r183.as_bytes()).unwrap(),
                11,
                true,
                || { "rx3".into() }
            )
            .is_some());
        let busy = call_resp(486, "");
        assert_eq!(
            p.on_response(
                &ims_sip::parse_datagram(busy.as_bytes()).unwrap(),
                12,
                true,
                || { unreachable!() }
            ),
            Some(RxAction::Str {
                session_id: "rx3".into()
            })
        );
        assert!(p.release("rx3", "x").is_none());
    }

    /// The 200 to user `i`'s REGISTER from contact 10.0.1.`i`:5060.
    fn reg_200_of(i: u32) -> String {
        REG_200
            .replace("alice@10.0.0.1:5060", &format!("u{i}@10.0.1.{i}:5060"))
            .replace("sip:alice@ims", &format!("sip:u{i}@ims"))
            .replace("tel:+15550001", &format!("tel:+1555000{i}"))
    }

    /// The SUBSCRIBEs' Request-URIs.
    fn subscribed(due: &[RegSubscribe]) -> Vec<String> {
        let mut v: Vec<String> = due
            .iter()
            .map(|r| {
                let m = crate::test_util::checked(r.request.as_ref().unwrap());
                m.request_uri_str().unwrap().to_string()
            })
            .collect();
        v.sort();
        v
    }

    #[test]
    fn registered_ues_keep_what_the_200_said_and_share_their_routes() {
        let p = pcscf();
        for i in 1..=3 {
            p.on_response(
                &ims_sip::parse_datagram(reg_200_of(i).as_bytes()).unwrap(),
                5,
                true,
                || unreachable!(),
            );
        }
        assert_eq!(
            p.registration("sip:u2@10.0.1.2:5060"),
            Some(UeRegistration {
                associated: vec!["sip:u2@ims.example.org".into(), "tel:+15550002".into()],
                service_route: vec!["<sip:orig@127.0.0.1:6061;lr>".into()],
                expires_at: 605,
                path: "sip:term@127.0.0.1:5061".into(),
            })
        );
        // another S-CSCF's UE (two Service-Route values), one contact with a host name
        let other = reg_200_of(4)
            .replace("u4@10.0.1.4:5060", "u4@UE4.Example.COM")
            .replace(
                "Service-Route: <sip:orig@127.0.0.1:6061;lr>\r\n",
                "Service-Route: <sip:orig@10.1.1.1:6061;lr>\r\nService-Route: <sip:as@10.1.1.2;lr>\r\n",
            );
        p.on_response(
            &ims_sip::parse_datagram(other.as_bytes()).unwrap(),
            5,
            true,
            || unreachable!(),
        );
        let r4 = p.registration("sip:u4@ue4.example.com:5060").unwrap();
        assert_eq!(
            r4.service_route,
            ["<sip:orig@10.1.1.1:6061;lr>", "<sip:as@10.1.1.2;lr>"]
        );
        assert_eq!(r4.associated, ["sip:u4@ims.example.org", "tel:+15550004"]);
        // the UEs of one S-CSCF hold one copy of its route, so do their subscriptions
        let mut n = 0;
        let due = p.reg_subscriptions_due(6, "sip:pcscf@127.0.0.1:7000", || {
            n += 1;
            format!("id{n}")
        });
        assert_eq!(due.len(), 4);
        let ues = p.ues.lock().unwrap();
        let hop = |k: &str| ues.by_key.get(k).unwrap().hop.clone();
        assert!(Arc::ptr_eq(&hop("10.0.1.1:5060"), &hop("10.0.1.3:5060")));
        assert!(!Arc::ptr_eq(
            &hop("10.0.1.1:5060"),
            &hop("ue4.example.com:5060")
        ));
        let watches = p.watches.lock().unwrap();
        let w = &watches.by_impu["sip:u3@ims.example.org"];
        assert!(Arc::ptr_eq(&w.routes, &hop("10.0.1.1:5060")));
        assert!(Arc::ptr_eq(&w.me, &hop("10.0.1.1:5060")));
        assert_eq!(ues.hops.0.len(), 2);
        drop((ues, watches));
        // a de-registration (no contact in the 200) forgets the UE by its identities
        let dereg = reg_200_of(2).replace("Contact: <sip:u2@10.0.1.2:5060>;expires=600\r\n", "");
        p.on_response(
            &ims_sip::parse_datagram(dereg.as_bytes()).unwrap(),
            7,
            true,
            || unreachable!(),
        );
        assert!(p.registration("sip:u2@10.0.1.2:5060").is_none());
        assert!(p.registration("sip:u1@10.0.1.1:5060").is_some());
        // many routes: the shared copies stay few, each UE keeps its own route
        for i in 10..60 {
            let r = reg_200_of(i).replace("orig@127.0.0.1:6061", &format!("orig@10.2.0.{i}:6061"));
            p.on_response(
                &ims_sip::parse_datagram(r.as_bytes()).unwrap(),
                8,
                true,
                || unreachable!(),
            );
        }
        assert!(p.ues.lock().unwrap().hops.0.len() <= Hops::MAX);
        for i in 10..60 {
            let r = p
                .registration(&format!("sip:u{i}@10.0.1.{i}:5060"))
                .unwrap();
            assert_eq!(r.service_route, [format!("<sip:orig@10.2.0.{i}:6061;lr>")]);
        }
        assert_eq!(
            p.registration("sip:u1@10.0.1.1:5060")
                .unwrap()
                .service_route,
            ["<sip:orig@127.0.0.1:6061;lr>"]
        );
    }

    #[test]
    fn a_failed_reg_subscription_is_tried_again_along_the_ues_current_route() {
        let p = pcscf();
        let mut n = 0;
        let mut fresh = || {
            n += 1;
            format!("id{n}")
        };
        let contact = "sip:pcscf@127.0.0.1:7000";
        p.on_response(
            &ims_sip::parse_datagram(reg_200_of(1).as_bytes()).unwrap(),
            0,
            true,
            || unreachable!(),
        );
        let due = p.new_reg_subscriptions_due(1, contact, &mut fresh);
        {
            // the SUBSCRIBE, as it was written with `format!`
            let watches = p.watches.lock().unwrap();
            let impu = "sip:u1@ims.example.org";
            let (key, w) = (watches.key(impu).unwrap(), &watches.by_impu[impu]);
            let mut r = format!("SUBSCRIBE {impu} SIP/2.0\r\n");
            for route in w.routes.service_route.iter() {
                r.push_str(&format!("Route: {route}\r\n"));
            }
            r.push_str(&format!(
                "Max-Forwards: 70\r\nFrom: <{me}>;tag={}\r\nTo: <{impu}>\r\n\
Call-ID: {}\r\nCSeq: {} SUBSCRIBE\r\nContact: <{contact}>\r\nP-Asserted-Identity: <{me}>\r\n\
Event: reg\r\nExpires: 600000\r\nContent-Length: 0\r\n\r\n",
                key.tag(),
                key.call_id(),
                w.cseq,
                me = w.me.path,
            ));
            assert_eq!(crate::test_util::checked_text(&due[0].request), r);
        }
        let first = crate::test_util::checked(due[0].request.as_ref().unwrap());
        let call_id = first.header(HeaderName::CallId).unwrap().to_string();
        assert_eq!(call_id, "id1");
        assert_eq!(first.from_tag(), Some("id2"));
        let ok = |tag: &str| {
            format!(
                "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:7000;branch=z9hG4bK-s\r\n\
From: <sip:term@127.0.0.1:5061>;tag=id2\r\nTo: <sip:u1@ims.example.org>{tag}\r\n\
Call-ID: {call_id}\r\nCSeq: 1 SUBSCRIBE\r\nExpires: 600\r\nContent-Length: 0\r\n\r\n"
            )
        };
        // a 2xx without a To tag keeps none; with one, the refreshes carry it
        p.on_reg_subscribe_response(
            &call_id,
            Some(&ims_sip::parse_datagram(ok("").as_bytes()).unwrap()),
            2,
        );
        assert_eq!(
            p.watches
                .lock()
                .unwrap()
                .by_impu
                .keys()
                .next()
                .unwrap()
                .remote_tag(),
            None
        );
        p.on_reg_subscribe_response(
            &call_id,
            Some(&ims_sip::parse_datagram(ok(";tag=s9").as_bytes()).unwrap()),
            2,
        );
        // the UE re-registers through another S-CSCF: the dialog keeps its route set
        let moved = reg_200_of(1).replace("orig@127.0.0.1:6061", "orig@10.3.3.3:6061");
        p.on_response(
            &ims_sip::parse_datagram(moved.as_bytes()).unwrap(),
            100,
            true,
            || unreachable!(),
        );
        let due = p.reg_subscriptions_due(302, contact, &mut fresh);
        let refresh = crate::test_util::checked(due[0].request.as_ref().unwrap());
        assert_eq!(refresh.to().unwrap().unwrap().tag(), Some("s9"));
        assert_eq!(
            refresh.header_str("Route"),
            Some("<sip:orig@127.0.0.1:6061;lr>")
        );
        assert_eq!(refresh.cseq().unwrap().unwrap().seq, 2);
        // it fails (no answer): the next try is an initial SUBSCRIBE along the current route,
        // in the same dialog identifiers, still asserting the first registration's Path
        p.on_reg_subscribe_response(&call_id, None, 334);
        assert!(p.reg_subscriptions_due(365, contact, &mut fresh).is_empty());
        let due = p.reg_subscriptions_due(366, contact, &mut fresh);
        let again = crate::test_util::checked(due[0].request.as_ref().unwrap());
        assert!(again.to().unwrap().unwrap().tag().is_none());
        assert_eq!(
            again.header_str("Route"),
            Some("<sip:orig@10.3.3.3:6061;lr>")
        );
        assert_eq!(due[0].next_hop, "sip:orig@10.3.3.3:6061;lr");
        assert_eq!(again.header(HeaderName::CallId), Some(call_id.as_str()));
        assert_eq!(again.from_tag(), Some("id2"));
        assert_eq!(
            again.header_str("P-Asserted-Identity"),
            Some("<sip:term@127.0.0.1:5061>")
        );
        assert_eq!(again.cseq().unwrap().unwrap().seq, 3);
        // a NOTIFY that overtakes the 200 gives the S-CSCF's tag
        let notify = format!(
            "NOTIFY sip:pcscf@127.0.0.1:7000 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:6061;branch=z9hG4bK-n\r\n\
From: <sip:u1@ims.example.org>;tag=s10\r\nTo: <sip:term@127.0.0.1:5061>;tag=id2\r\n\
Call-ID: {call_id}\r\nCSeq: 1 NOTIFY\r\nEvent: reg\r\nSubscription-State: active;expires=600\r\n\
Content-Type: application/reginfo+xml\r\nContent-Length: 0\r\n\r\n"
        );
        // (a body that is not reginfo: 400, the tag is not taken)
        assert_eq!(
            p.on_reg_notify(&ims_sip::parse_datagram(notify.as_bytes()).unwrap(), "x")
                .status,
            400
        );
        let body = "<?xml version=\"1.0\"?>\r\n<reginfo xmlns=\"urn:ietf:params:xml:ns:reginfo\" version=\"0\" state=\"full\">\r\n\
<registration aor=\"sip:u1@ims.example.org\" id=\"r1\" state=\"active\">\r\n\
<contact id=\"c1\" state=\"active\" event=\"registered\"><uri>sip:u1@10.0.1.1:5060</uri></contact>\r\n\
</registration>\r\n</reginfo>\r\n";
        let notify = notify.replace(
            "Content-Length: 0\r\n\r\n",
            &format!("Content-Length: {}\r\n\r\n{body}", body.len()),
        );
        assert_eq!(
            p.on_reg_notify(&ims_sip::parse_datagram(notify.as_bytes()).unwrap(), "x")
                .status,
            200
        );
        p.on_reg_subscribe_response(
            &call_id,
            Some(&ims_sip::parse_datagram(ok("").as_bytes()).unwrap()),
            367,
        );
        let due = p.reg_subscriptions_due(367 + 300, contact, &mut fresh);
        let refresh = crate::test_util::checked(due[0].request.as_ref().unwrap());
        assert_eq!(refresh.to().unwrap().unwrap().tag(), Some("s10"));
        assert_eq!(p.reg_subscriptions(), 1);
    }

    #[test]
    fn watches_find_a_call_id_whose_hash_another_one_holds() {
        let mut w = Watches::default();
        let state = |me: &Arc<Hop>| RegWatch {
            routes: me.clone(),
            me: me.clone(),
            cseq: 0,
            refresh_at: 0,
            version: None,
        };
        let hop = Hops::default().get(&["<sip:s;lr>".to_string()], "sip:p");
        w.get_or_insert_with("sip:a@x", || ("ca".into(), "ta".into(), state(&hop)));
        // b's Call-ID hash slot is held by a's subscription (a collision)
        let a = w.key("sip:a@x").unwrap().clone();
        let hb = w.call_hash("cb");
        w.by_call.insert(hb, a.clone());
        w.get_or_insert_with("sip:b@x", || ("cb".into(), "tb".into(), state(&hop)));
        assert_eq!(w.by_call_more.len(), 1);
        assert_eq!(w.key_of_call("cb").unwrap().impu(), "sip:b@x");
        assert_eq!(w.key_of_call("ca").unwrap().impu(), "sip:a@x");
        assert!(w.key_of_call("cc").is_none());
        // a new tag re-keys b in the list it is in
        w.set_remote_tag("sip:b@x", Some("rb"));
        let b = w.key_of_call("cb").unwrap();
        assert_eq!(
            (b.impu(), b.tag(), b.remote_tag()),
            ("sip:b@x", "tb", Some("rb"))
        );
        assert_eq!(w.by_call_more.len(), 1);
        assert!(w.remove("sip:b@x").is_some());
        assert!(w.by_call_more.is_empty());
        assert!(w.key_of_call("cb").is_none());
        assert_eq!(w.key_of_call("ca").unwrap().impu(), "sip:a@x");
        w.by_call.remove(&hb);
        assert!(w.remove("sip:a@x").is_some());
        assert!(w.by_call.is_empty() && w.by_impu.is_empty());
    }

    #[test]
    fn after_a_register_only_the_new_ues_are_looked_at_refreshes_once_a_second() {
        let p = pcscf();
        let mut n = 0;
        let mut fresh = || {
            n += 1;
            format!("id{n}")
        };
        let contact = "sip:pcscf@127.0.0.1:7000";
        for i in 1..=3 {
            p.on_response(
                &ims_sip::parse_datagram(reg_200_of(i).as_bytes()).unwrap(),
                0,
                true,
                || unreachable!(),
            );
        }
        // the three new UEs' initial SUBSCRIBEs, once
        let due = p.new_reg_subscriptions_due(1, contact, &mut fresh);
        assert_eq!(
            subscribed(&due),
            [
                "sip:u1@ims.example.org",
                "sip:u2@ims.example.org",
                "sip:u3@ims.example.org"
            ]
        );
        assert!(p
            .new_reg_subscriptions_due(1, contact, &mut fresh)
            .is_empty());
        // u4 registers: only its SUBSCRIBE, not u1-u3's (pending, due again at 33)
        p.on_response(
            &ims_sip::parse_datagram(reg_200_of(4).as_bytes()).unwrap(),
            40,
            true,
            || unreachable!(),
        );
        let due = p.new_reg_subscriptions_due(40, contact, &mut fresh);
        assert_eq!(subscribed(&due), ["sip:u4@ims.example.org"]);
        // the retries of u1-u3 (unanswered for 32 s) come with the pass through everyone
        let due = p.reg_subscriptions_due(40, contact, &mut fresh);
        assert_eq!(
            subscribed(&due),
            [
                "sip:u1@ims.example.org",
                "sip:u2@ims.example.org",
                "sip:u3@ims.example.org"
            ]
        );
        assert_eq!(p.reg_subscriptions(), 4);
    }

    #[test]
    fn reg_event_answers_and_notifies_find_their_subscription_by_call_id() {
        let p = pcscf();
        let mut n = 0;
        let mut fresh = || {
            n += 1;
            format!("id{n}")
        };
        for i in 1..=40 {
            p.on_response(
                &ims_sip::parse_datagram(reg_200_of(i).as_bytes()).unwrap(),
                0,
                true,
                || unreachable!(),
            );
        }
        let due = p.reg_subscriptions_due(1, "sip:pcscf@127.0.0.1:7000", &mut fresh);
        assert_eq!(due.len(), 40);
        let call_of = |uri: &str| {
            due.iter()
                .map(|r| crate::test_util::checked(r.request.as_ref().unwrap()))
                .find(|m| m.request_uri_str() == Some(uri))
                .map(|m| m.header(HeaderName::CallId).unwrap().to_string())
                .unwrap()
        };
        let answer = |call_id: &str, expires: u32| {
            format!(
                "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:7000;branch=z9hG4bK-s\r\n\
From: <sip:term@127.0.0.1:5061>;tag=x\r\nTo: <sip:u@ims.example.org>;tag=s1\r\n\
Call-ID: {call_id}\r\nCSeq: 1 SUBSCRIBE\r\nExpires: {expires}\r\nContent-Length: 0\r\n\r\n"
            )
        };
        // u17's subscription is refused (Expires: 0): that one ends, no other
        let c17 = call_of("sip:u17@ims.example.org");
        p.on_reg_subscribe_response(
            &c17,
            Some(&ims_sip::parse_datagram(answer(&c17, 0).as_bytes()).unwrap()),
            2,
        );
        assert_eq!(p.reg_subscriptions(), 39);
        // u23's is granted 600 s: its refresh is due at 302, the others' retries at 33
        let c23 = call_of("sip:u23@ims.example.org");
        p.on_reg_subscribe_response(
            &c23,
            Some(&ims_sip::parse_datagram(answer(&c23, 600).as_bytes()).unwrap()),
            2,
        );
        let due = p.reg_subscriptions_due(33, "sip:pcscf@127.0.0.1:7000", &mut fresh);
        assert_eq!(due.len(), 39, "all but u23 (answered)");
        assert!(!subscribed(&due).contains(&"sip:u23@ims.example.org".to_string()));
        // u17 is still registered: a new subscription, in a new dialog
        let again = due
            .iter()
            .map(|r| crate::test_util::checked(r.request.as_ref().unwrap()))
            .find(|m| m.request_uri_str() == Some("sip:u17@ims.example.org"))
            .map(|m| m.header(HeaderName::CallId).unwrap().to_string())
            .unwrap();
        assert_ne!(again, c17);
        assert_eq!(p.reg_subscriptions(), 40);
        // a NOTIFY in u23's dialog reaches it; one in u17's ended dialog gets 481
        let notify = |call_id: &str, aor: &str| {
            let body = format!(
                "<?xml version=\"1.0\"?>\r\n<reginfo xmlns=\"urn:ietf:params:xml:ns:reginfo\" version=\"0\" state=\"full\">\r\n\
<registration aor=\"{aor}\" id=\"r1\" state=\"active\">\r\n\
<contact id=\"c1\" state=\"active\" event=\"registered\"><uri>sip:x@10.9.9.9:5060</uri></contact>\r\n\
</registration>\r\n</reginfo>\r\n"
            );
            format!(
                "NOTIFY sip:pcscf@127.0.0.1:7000 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:6061;branch=z9hG4bK-n\r\n\
From: <{aor}>;tag=s1\r\nTo: <sip:term@127.0.0.1:5061>;tag=x\r\n\
Call-ID: {call_id}\r\nCSeq: 1 NOTIFY\r\nEvent: reg\r\nSubscription-State: active;expires=600\r\n\
Content-Type: application/reginfo+xml\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )
        };
        let n23 = notify(&c23, "sip:u23@ims.example.org");
        assert_eq!(
            p.on_reg_notify(&ims_sip::parse_datagram(n23.as_bytes()).unwrap(), "x")
                .status,
            200
        );
        let n17 = notify(&c17, "sip:u17@ims.example.org");
        assert_eq!(
            p.on_reg_notify(&ims_sip::parse_datagram(n17.as_bytes()).unwrap(), "x")
                .status,
            481
        );
        assert_eq!(p.reg_subscriptions(), 40);
    }

    #[test]
    fn pcscf_subscribes_to_reg_and_a_terminated_contact_removes_the_ue() {
        let p = pcscf();
        let mut n = 0;
        let mut fresh = || {
            n += 1;
            format!("id{n}")
        };
        assert!(p
            .reg_subscriptions_due(0, "sip:pcscf@127.0.0.1:7000", &mut fresh)
            .is_empty());
        p.on_response(
            &ims_sip::parse_datagram(REG_200.as_bytes()).unwrap(),
            0,
            true,
            || unreachable!(),
        );
        let due = p.reg_subscriptions_due(1, "sip:pcscf@127.0.0.1:7000", &mut fresh);
        assert_eq!(due.len(), 1);
        let sub = crate::test_util::checked(due[0].request.as_ref().unwrap());
        assert_eq!(sub.method(), Some(Method::Subscribe));
        assert_eq!(sub.request_uri_str(), Some("sip:alice@ims.example.org"));
        assert_eq!(due[0].next_hop, "sip:orig@127.0.0.1:6061;lr");
        assert_eq!(
            sub.header_str("Route"),
            Some("<sip:orig@127.0.0.1:6061;lr>")
        );
        assert_eq!(sub.header_str("Event"), Some("reg"));
        assert_eq!(sub.header_str("Expires"), Some("600000"));
        assert_eq!(
            sub.header_str("P-Asserted-Identity"),
            Some("<sip:term@127.0.0.1:5061>")
        );
        assert_eq!(
            sub.header_str("Contact"),
            Some("<sip:pcscf@127.0.0.1:7000>")
        );
        assert!(sub.to().unwrap().unwrap().tag().is_none());
        // pending: nothing more until answered or 32 s pass
        assert!(p
            .reg_subscriptions_due(2, "sip:pcscf@127.0.0.1:7000", &mut fresh)
            .is_empty());
        let call_id = sub.header(HeaderName::CallId).unwrap().to_string();
        let ok = format!(
            "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:7000;branch=z9hG4bK-s\r\n\
From: <sip:term@127.0.0.1:5061>;tag=id2\r\nTo: <sip:alice@ims.example.org>;tag=s1\r\n\
Call-ID: {call_id}\r\nCSeq: 1 SUBSCRIBE\r\nExpires: 600\r\nContent-Length: 0\r\n\r\n"
        );
        p.on_reg_subscribe_response(
            &call_id,
            Some(&ims_sip::parse_datagram(ok.as_bytes()).unwrap()),
            2,
        );
        assert!(p
            .reg_subscriptions_due(301, "sip:pcscf@127.0.0.1:7000", &mut fresh)
            .is_empty());
        // the refresh at half the granted time, in the dialog
        let due = p.reg_subscriptions_due(302, "sip:pcscf@127.0.0.1:7000", &mut fresh);
        let refresh = crate::test_util::checked(due[0].request.as_ref().unwrap());
        assert_eq!(refresh.to().unwrap().unwrap().tag(), Some("s1"));
        assert_eq!(refresh.cseq().unwrap().unwrap().seq, 2);
        assert_eq!(refresh.header(HeaderName::CallId), Some(call_id.as_str()));
        assert_eq!(p.reg_subscriptions(), 1);

        // a call of alice's is up
        p.from_ue(
            &ims_sip::parse_datagram(invite("", OFFER).as_bytes()).unwrap(),
            10,
        );
        let ok = call_resp(200, "Record-Route: <sip:127.0.0.1:5061;lr>\r\n");
        let Some(RxAction::Aar { session_id, .. }) = p.on_response(
            &ims_sip::parse_datagram(ok.as_bytes()).unwrap(),
            11,
            true,
            || "rx7".into(),
        ) else {
            panic!()
        };
        let notify = |cid: &str, version: u32, state: &str, event: &str, sub_state: &str| {
            let body = format!(
                "<?xml version=\"1.0\"?>\r\n<reginfo xmlns=\"urn:ietf:params:xml:ns:reginfo\" version=\"{version}\" state=\"partial\">\r\n\
<registration aor=\"sip:alice@ims.example.org\" id=\"r1\" state=\"{}\">\r\n\
<contact id=\"c1\" state=\"{state}\" event=\"{event}\"><uri>sip:alice@10.0.0.1:5060</uri></contact>\r\n\
</registration>\r\n</reginfo>\r\n",
                if state == "active" { "active" } else { "terminated" }
            );
            format!(
                "NOTIFY sip:pcscf@127.0.0.1:7000 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:6061;branch=z9hG4bK-n{version}\r\n\
From: <sip:alice@ims.example.org>;tag=s1\r\nTo: <sip:term@127.0.0.1:5061>;tag=id2\r\n\
Call-ID: {cid}\r\nCSeq: {} NOTIFY\r\nEvent: reg\r\nSubscription-State: {sub_state}\r\n\
Content-Type: application/reginfo+xml\r\nContent-Length: {}\r\n\r\n{body}",
                version + 1,
                body.len()
            )
        };
        // unknown subscription: 481
        let n481 = notify("other", 0, "active", "registered", "active");
        assert_eq!(
            p.on_reg_notify(&ims_sip::parse_datagram(n481.as_bytes()).unwrap(), "x")
                .status,
            481
        );
        // active: nothing changes
        let n0 = notify(&call_id, 0, "active", "registered", "active;expires=600");
        let o = p.on_reg_notify(&ims_sip::parse_datagram(n0.as_bytes()).unwrap(), "x");
        assert_eq!((o.status, o.removed.len(), o.releases.len()), (200, 0, 0));
        assert!(p.registration("sip:alice@10.0.0.1:5060").is_some());
        // the network de-registers alice: her state goes, her call is released
        let n1 = notify(
            &call_id,
            1,
            "terminated",
            "rejected",
            "terminated;reason=rejected",
        );
        let o = p.on_reg_notify(
            &ims_sip::parse_datagram(n1.as_bytes()).unwrap(),
            "SIP ;cause=480",
        );
        assert_eq!(o.status, 200);
        assert_eq!(o.removed, ["10.0.0.1:5060"]);
        assert!(p.registration("sip:alice@10.0.0.1:5060").is_none());
        assert_eq!(o.releases.len(), 1);
        assert_eq!(o.releases[0].byes.len(), 2);
        assert_eq!(o.releases[0].str, Some(RxAction::Str { session_id }));
        assert_eq!(p.reg_subscriptions(), 0, "the subscription ended");
        // and an INVITE from her is refused again
        assert_eq!(
            p.from_ue(
                &ims_sip::parse_datagram(invite("", OFFER).as_bytes()).unwrap(),
                20
            ),
            Decision::Reply(403)
        );
    }

    #[test]
    fn a_temp_gruu_we_issued_routes_to_its_instance_only() {
        let store = MemoryStore::new();
        let binding = |host: &str, inst: &str| Binding {
            uri: format!("sip:bob@{host}"),
            params: String::new(),
            instance_id: Some(format!("<urn:uuid:{inst}>")),
            reg_id: None,
            call_id: "r".into(),
            cseq: 1,
            expires_at: 10_000,
            path: vec!["<sip:term@127.0.0.1:5061;lr>".into()],
            q: None,
        };
        let rec = RegistrationRecord {
            impu: "sip:bob@ims.example.org".into(),
            impi: "bob@ims.example.org".into(),
            implicit_set: vec!["sip:bob@ims.example.org".into()],
            barred: vec![],
            bindings: vec![binding("10.0.0.2", "1"), binding("10.0.0.3", "2")],
            state: RegState::Registered,
            user_data: None,
            charging: None,
            reginfo_version: 0,
        };
        block_on(store.save(&rec)).unwrap();
        // the S-CSCF issued it with the 200 and stored it as an alias until 10,000
        block_on(store.save_alias(
            &temp_gruu_key("sip:tgruu.5e1f@ims.example.org;gr"),
            &crate::registrar::pub_gruu(&rec.impu, "<urn:uuid:2>"),
            0,
            10_000,
        ))
        .unwrap();
        let r = ScscfRouting {
            orig_uri: "sip:orig@127.0.0.1:6061".into(),
            term_uri: "sip:term@127.0.0.1:6060".into(),
            home_domains: vec!["ims.example.org".into()],
            icscf: "sip:127.0.0.1:5062".into(),
            profiles: Default::default(),
        };
        let inv = |ruri: &str| {
            format!(
                "INVITE {ruri} SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK-g\r\n\
Max-Forwards: 70\r\nFrom: <sip:bob@ims.example.org>;tag=1\r\nTo: <{ruri}>\r\n\
P-Asserted-Identity: <sip:bob@ims.example.org>\r\nCall-ID: g1\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
            )
        };
        // originating: only we can resolve it, so to our terminating side (not the I-CSCF)
        let t = inv("sip:tgruu.5e1f@ims.example.org;gr");
        let m = ims_sip::parse_datagram(t.as_bytes()).unwrap();
        let Decision::Forward(f) = block_on(r.originating(&store, &m, None, 0)) else {
            panic!()
        };
        assert_eq!(f[0].routes, ["<sip:term@127.0.0.1:6060;lr>"]);
        // terminating: only the contact of instance 2, with the Request-URI set to it
        let Decision::Forward(f) = block_on(r.terminating(&store, &m, None, 100)) else {
            panic!()
        };
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].request_uri.as_deref(), Some("sip:bob@10.0.0.3"));
        // once its registration is over, it resolves no more
        assert_eq!(
            block_on(r.terminating(&store, &m, None, 10_000)),
            Decision::Reply(480)
        );
        let Decision::Forward(f) = block_on(r.originating(&store, &m, None, 10_000)) else {
            panic!()
        };
        assert_eq!(f[0].routes, ["<sip:127.0.0.1:5062;lr>"], "to the I-CSCF");
        // a temp-gruu we did not issue (or without `gr`) is an unknown user
        let other = inv("sip:tgruu.dead@ims.example.org;gr");
        let m = ims_sip::parse_datagram(other.as_bytes()).unwrap();
        let Decision::Forward(f) = block_on(r.originating(&store, &m, None, 0)) else {
            panic!()
        };
        assert_eq!(f[0].routes, ["<sip:127.0.0.1:5062;lr>"], "to the I-CSCF");
        assert_eq!(
            block_on(r.terminating(&store, &m, None, 100)),
            Decision::Reply(480)
        );
        let no_gr = inv("sip:tgruu.5e1f@ims.example.org");
        let m = ims_sip::parse_datagram(no_gr.as_bytes()).unwrap();
        assert_eq!(
            block_on(r.terminating(&store, &m, None, 100)),
            Decision::Reply(480)
        );
    }

    fn hss_with(ifcs: Vec<InitialFilterCriteria>) -> (LocalHss, ImsSubscription) {
        let sub = ImsSubscription {
            private_id: "bob@ims.example.org".into(),
            service_profiles: vec![ServiceProfile {
                public_identities: vec![
                    PublicIdentity::new("sip:bob@ims.example.org"),
                    PublicIdentity::new("tel:+15550002"),
                ],
                initial_filter_criteria: ifcs,
                ..ServiceProfile::default()
            }],
        };
        let mut h = Hss::new(Some("sip:127.0.0.1:6060".into()));
        h.add_subscriber(Subscriber {
            subscription: sub.clone(),
            credentials: Credentials {
                aka: None,
                password: Some("pw".into()),
            },
        });
        (
            LocalHss::new(Arc::new(Mutex::new(h)), "ims.example.org", || [1; 16]),
            sub,
        )
    }

    #[test]
    fn icscf_uar_lir_and_enum() {
        let (cx, _) = hss_with(vec![]);
        let mut enum_table = EnumTable::new("e164.arpa");
        enum_table
            .insert_uri("+15550002", "sip:bob@ims.example.org")
            .unwrap();
        let i = Icscf::new(
            IcscfConfig {
                scscfs: vec!["sip:127.0.0.1:6060".into()],
            },
            cx.clone(),
            enum_table,
        );
        let reg = "REGISTER sip:ims.example.org SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK-r\r\n\
Max-Forwards: 70\r\nFrom: <sip:bob@ims.example.org>;tag=1\r\nTo: <sip:bob@ims.example.org>\r\n\
Call-ID: r1\r\nCSeq: 1 REGISTER\r\nContact: <sip:bob@10.0.0.2>\r\nContent-Length: 0\r\n\r\n";
        let d = block_on(i.route(&ims_sip::parse_datagram(reg.as_bytes()).unwrap()));
        assert_eq!(
            d,
            one(Forward {
                routes: vec!["<sip:127.0.0.1:6060;lr>".into()],
                ..Forward::default()
            })
        );
        let unknown = reg.replace("bob@", "eve@");
        assert_eq!(
            block_on(i.route(&ims_sip::parse_datagram(unknown.as_bytes()).unwrap())),
            Decision::Reply(403)
        );
        // terminating to a tel URI: ENUM, then LIR (not registered yet → 480)
        let inv = "INVITE tel:+15550002 SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK-i\r\n\
Max-Forwards: 70\r\nFrom: <sip:alice@ims.example.org>;tag=1\r\nTo: <tel:+15550002>\r\n\
Call-ID: i1\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n";
        let m = ims_sip::parse_datagram(inv.as_bytes()).unwrap();
        assert_eq!(block_on(i.route(&m)), Decision::Reply(480));
        cx.hss().lock().unwrap().server_assignment(
            None,
            "sip:bob@ims.example.org",
            "sip:127.0.0.1:6060",
            crate::hss::ServerAssignmentType::Registration,
            false,
        );
        let Decision::Forward(f) = block_on(i.route(&m)) else {
            panic!()
        };
        assert_eq!(f[0].request_uri.as_deref(), Some("sip:bob@ims.example.org"));
        assert_eq!(f[0].routes, ["<sip:127.0.0.1:6060;lr>"]);
        let nobody = inv.replace("tel:+15550002 SIP", "tel:+15559999 SIP");
        assert_eq!(
            block_on(i.route(&ims_sip::parse_datagram(nobody.as_bytes()).unwrap())),
            Decision::Reply(404)
        );
    }

    /// The Record-Route check without a key string answers as comparing [`contact_key`]s does.
    #[test]
    fn has_contact_key_agrees_with_contact_key() {
        let uris = [
            "sip:term@127.0.0.1:5061",
            "sip:127.0.0.1:5061;lr",
            "sip:term@127.0.0.1",
            "sip:127.0.0.1:5060",
            "sip:127.0.0.2:5061",
            "sip:PCSCF.Example.ORG:5061;lr",
            "sip:pcscf.example.org:5061",
            "sips:pcscf.example.org",
            "sip:[2001:DB8::1]:5061;lr",
            "sip:[2001:db8::1]:5061",
            "sip:[2001:db8::2]:5061",
            "tel:+15550001",
            "127.0.0.1:5061",
            "garbage<>",
        ];
        for own in uris {
            let key = contact_key(own);
            for u in uris {
                assert_eq!(
                    has_contact_key(u, &key),
                    contact_key(u) == key,
                    "{u} against {own} ({key})"
                );
            }
        }
    }

    /// A Cx client answering every UAR and LIR with a given decision: what is tested is what
    /// the I-CSCF does with each answer.
    struct Answers {
        uaa: crate::hss::UaaDecision,
        lia: crate::hss::LiaDecision,
    }

    impl CxClient for Answers {
        async fn uar(
            &self,
            _: &str,
            _: &str,
            _: UserAuthorizationType,
        ) -> Result<crate::hss::UaaDecision, CxFailure> {
            let d = self.uaa.clone();
            if d.result.is_success() {
                Ok(d)
            } else {
                Err(CxFailure::Result(d.result))
            }
        }
        async fn mar(&self, _: crate::cx::MarQuery) -> Result<crate::cx::MaaAnswer, CxFailure> {
            Err(CxFailure::Unreachable("not used".into()))
        }
        async fn sar(&self, _: crate::cx::SarQuery) -> Result<crate::hss::SaaDecision, CxFailure> {
            Err(CxFailure::Unreachable("not used".into()))
        }
        async fn lir(&self, _: &str) -> Result<crate::hss::LiaDecision, CxFailure> {
            let d = self.lia.clone();
            if d.result.is_success() {
                Ok(d)
            } else {
                Err(CxFailure::Result(d.result))
            }
        }
    }

    const S1: &str = "sip:s1.ims.example.org:6060";
    const S2: &str = "sip:s2.ims.example.org:6060";
    const S3: &str = "sip:s3.ims.example.org:6060";
    const ASSIGNED: &str = "sip:assigned.ims.example.org:6060";

    /// An I-CSCF whose HSS answers `uaa`/`lia`, choosing among S1 (offers 2), S2 (offers 1)
    /// and S3 (offers 1, 2, 3).
    fn icscf_answering(
        result: crate::hss::CxResult,
        server_name: Option<&str>,
        caps: Option<crate::hss::ScscfCapabilities>,
    ) -> Icscf<Answers> {
        Icscf::new(
            IcscfConfig {
                scscfs: vec![S1.into(), S2.into(), S3.into()],
            },
            Answers {
                uaa: crate::hss::UaaDecision {
                    result,
                    server_name: server_name.map(str::to_string),
                    server_capabilities: caps.clone(),
                },
                lia: crate::hss::LiaDecision {
                    result,
                    server_name: server_name.map(str::to_string),
                    server_capabilities: caps,
                },
            },
            EnumTable::new("e164.arpa"),
        )
        .with_scscf_capabilities(S1, vec![2])
        .with_scscf_capabilities(S2, vec![1])
        .with_scscf_capabilities(S3, vec![1, 2, 3])
    }

    fn caps(mandatory: &[u32], optional: &[u32], names: &[&str]) -> crate::hss::ScscfCapabilities {
        crate::hss::ScscfCapabilities {
            mandatory: mandatory.to_vec(),
            optional: optional.to_vec(),
            server_names: names.iter().map(|n| n.to_string()).collect(),
        }
    }

    const REGISTER: &str =
        "REGISTER sip:ims.example.org SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK-r\r\n\
Max-Forwards: 70\r\nFrom: <sip:bob@ims.example.org>;tag=1\r\nTo: <sip:bob@ims.example.org>\r\n\
Call-ID: r1\r\nCSeq: 1 REGISTER\r\nContact: <sip:bob@10.0.0.2>\r\nContent-Length: 0\r\n\r\n";

    fn routed(i: &Icscf<Answers>, req: &str) -> Decision {
        block_on(i.route(&ims_sip::parse_datagram(req.as_bytes()).unwrap()))
    }

    fn to(uri: &str) -> Decision {
        one(Forward {
            routes: vec![lr(uri)],
            ..Forward::default()
        })
    }

    /// What a case of [`icscf_follows_each_uaa_result_code`] gives and expects: its name, the
    /// UAA's result, Server-Name and Server-Capabilities, and the routing decision.
    type UaaCase = (
        &'static str,
        crate::hss::CxResult,
        Option<&'static str>,
        Option<crate::hss::ScscfCapabilities>,
        Decision,
    );

    /// TS 24.229 §5.3.1.2, TS 29.228 §6.1.1.1, TS 29.229 §6.2: each UAA result with and without
    /// a Server-Name and Server-Capabilities routes the REGISTER where it must.
    #[test]
    fn icscf_follows_each_uaa_result_code() {
        use crate::hss::result::*;
        let want_1_and_2 = || Some(caps(&[1], &[2], &[]));
        let cases: Vec<UaaCase> = vec![
            // an S-CSCF already serves the user: kept, whatever capabilities come along
            (
                "subsequent",
                SUBSEQUENT_REGISTRATION,
                Some(ASSIGNED),
                want_1_and_2(),
                to(ASSIGNED),
            ),
            (
                "subsequent, name only",
                SUBSEQUENT_REGISTRATION,
                Some(ASSIGNED),
                None,
                to(ASSIGNED),
            ),
            // the HSS assigns one itself
            (
                "first, named",
                FIRST_REGISTRATION,
                Some(ASSIGNED),
                None,
                to(ASSIGNED),
            ),
            // the I-CSCF selects: mandatory 1 (S2, S3), optional 2 (only S3)
            (
                "first, capabilities",
                FIRST_REGISTRATION,
                None,
                want_1_and_2(),
                to(S3),
            ),
            // mandatory only: the first configured one offering it
            (
                "first, mandatory only",
                FIRST_REGISTRATION,
                None,
                Some(caps(&[1], &[], &[])),
                to(S2),
            ),
            // optional only: every S-CSCF qualifies, the one offering most optional ones wins
            (
                "first, optional only",
                FIRST_REGISTRATION,
                None,
                Some(caps(&[], &[3, 2], &[])),
                to(S3),
            ),
            // nothing offers capability 9: no S-CSCF for the user
            (
                "first, unmet",
                FIRST_REGISTRATION,
                None,
                Some(caps(&[9], &[], &[])),
                Decision::Reply(600),
            ),
            // the HSS's preferred S-CSCF names come first, even one unknown here
            (
                "first, preferred",
                FIRST_REGISTRATION,
                None,
                Some(caps(&[1], &[], &[ASSIGNED, S3])),
                to(ASSIGNED),
            ),
            // … unless it is known here not to offer a mandatory capability
            (
                "first, preferred unfit",
                FIRST_REGISTRATION,
                None,
                Some(caps(&[1], &[], &[S1, S3])),
                to(S3),
            ),
            // neither name nor capabilities: the I-CSCF's own first S-CSCF
            ("first, nothing", FIRST_REGISTRATION, None, None, to(S1)),
            // a pre-Rel-7 HSS: the named S-CSCF is kept, else a selection from the capabilities
            (
                "server selection, named",
                SERVER_SELECTION,
                Some(ASSIGNED),
                want_1_and_2(),
                to(ASSIGNED),
            ),
            (
                "server selection, capabilities",
                SERVER_SELECTION,
                None,
                want_1_and_2(),
                to(S3),
            ),
            // failures
            (
                "user unknown",
                USER_UNKNOWN,
                None,
                None,
                Decision::Reply(403),
            ),
            (
                "identities don't match",
                IDENTITIES_DONT_MATCH,
                None,
                None,
                Decision::Reply(403),
            ),
            (
                "roaming not allowed",
                ROAMING_NOT_ALLOWED,
                None,
                None,
                Decision::Reply(403),
            ),
            (
                "authorization rejected",
                AUTHORIZATION_REJECTED,
                None,
                None,
                Decision::Reply(403),
            ),
        ];
        for (what, result, name, c, want) in cases {
            let i = icscf_answering(result, name, c);
            assert_eq!(routed(&i, REGISTER), want, "{what}");
        }
        // a de-registration goes to the S-CSCF the HSS names, and to none without a name
        let dereg = REGISTER.replace(
            "Contact: <sip:bob@10.0.0.2>",
            "Contact: <sip:bob@10.0.0.2>;expires=0",
        );
        let i = icscf_answering(SUCCESS, Some(ASSIGNED), None);
        assert_eq!(routed(&i, &dereg), to(ASSIGNED));
        let i = icscf_answering(SUCCESS, None, want_1_and_2());
        assert_eq!(routed(&i, &dereg), Decision::Reply(403));
        let i = icscf_answering(IDENTITY_NOT_REGISTERED, None, None);
        assert_eq!(routed(&i, &dereg), Decision::Reply(403));
        // no configured S-CSCF and nothing in the answer
        let mut i = icscf_answering(FIRST_REGISTRATION, None, None);
        i.cfg.scscfs.clear();
        assert_eq!(routed(&i, REGISTER), Decision::Reply(600));
    }

    /// TS 24.229 §5.3.2.1, TS 29.228 §6.1.4.1: the LIA's S-CSCF, or one selected from its
    /// Server-Capabilities for unregistered services.
    #[test]
    fn icscf_follows_each_lia_result_code() {
        use crate::hss::result::*;
        let inv = "INVITE sip:bob@ims.example.org SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK-i\r\n\
Max-Forwards: 70\r\nFrom: <sip:alice@ims.example.org>;tag=1\r\nTo: <sip:bob@ims.example.org>\r\n\
Call-ID: i1\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n";
        let i = icscf_answering(SUCCESS, Some(ASSIGNED), None);
        assert_eq!(routed(&i, inv), to(ASSIGNED));
        let i = icscf_answering(UNREGISTERED_SERVICE, None, Some(caps(&[3], &[], &[])));
        assert_eq!(routed(&i, inv), to(S3));
        let i = icscf_answering(
            UNREGISTERED_SERVICE,
            Some(ASSIGNED),
            Some(caps(&[3], &[], &[])),
        );
        assert_eq!(routed(&i, inv), to(ASSIGNED));
        let i = icscf_answering(UNREGISTERED_SERVICE, None, Some(caps(&[7], &[], &[])));
        assert_eq!(routed(&i, inv), Decision::Reply(480));
        let i = icscf_answering(IDENTITY_NOT_REGISTERED, None, None);
        assert_eq!(routed(&i, inv), Decision::Reply(480));
        let i = icscf_answering(USER_UNKNOWN, None, None);
        assert_eq!(routed(&i, inv), Decision::Reply(404));
    }

    #[test]
    fn scscf_ifc_to_as_then_contacts() {
        let ifc = InitialFilterCriteria {
            priority: 0,
            trigger_point: Some(TriggerPoint {
                condition_type_cnf: true,
                spts: vec![Spt::new(SptKind::Method("MESSAGE".into()))],
            }),
            application_server: ApplicationServer::new("sip:127.0.0.1:7070"),
            profile_part_indicator: None,
        };
        let (_, sub) = hss_with(vec![ifc]);
        let store = MemoryStore::new();
        let rec = RegistrationRecord {
            impu: "sip:bob@ims.example.org".into(),
            impi: "bob@ims.example.org".into(),
            implicit_set: vec!["sip:bob@ims.example.org".into(), "tel:+15550002".into()],
            barred: vec![],
            bindings: vec![Binding {
                uri: "sip:bob@10.0.0.2:5060".into(),
                params: String::new(),
                instance_id: None,
                reg_id: None,
                call_id: "r".into(),
                cseq: 1,
                expires_at: 1000,
                path: vec!["<sip:term@127.0.0.1:5061;lr>".into()],
                q: None,
            }],
            state: RegState::Registered,
            user_data: Some(sub.to_xml()),
            charging: None,
            reginfo_version: 0,
        };
        block_on(store.save(&rec)).unwrap();
        let r = ScscfRouting {
            orig_uri: "sip:orig@127.0.0.1:6061".into(),
            term_uri: "sip:term@127.0.0.1:6060".into(),
            home_domains: vec!["ims.example.org".into()],
            icscf: "sip:127.0.0.1:5062".into(),
            profiles: Default::default(),
        };
        let msg = "MESSAGE sip:bob@ims.example.org SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK-m\r\n\
Max-Forwards: 70\r\nFrom: <sip:alice@ims.example.org>;tag=1\r\nTo: <sip:bob@ims.example.org>\r\n\
Call-ID: m1\r\nCSeq: 1 MESSAGE\r\nContent-Length: 0\r\n\r\n";
        let m = ims_sip::parse_datagram(msg.as_bytes()).unwrap();
        // terminating MESSAGE: the iFC sends it to the AS first, with the way back
        let Decision::Forward(f) = block_on(r.terminating(&store, &m, None, 10)) else {
            panic!()
        };
        assert_eq!(
            f[0].routes,
            [
                "<sip:127.0.0.1:7070;lr>",
                "<sip:term@127.0.0.1:6060;odi=0;lr>"
            ]
        );
        assert_eq!(odi_of(Some("<sip:term@127.0.0.1:6061;odi=0;lr>")), Some(0));
        // back from the AS: to the contact through the Path
        let Decision::Forward(f) = block_on(r.terminating(&store, &m, Some(0), 10)) else {
            panic!()
        };
        assert_eq!(f[0].request_uri.as_deref(), Some("sip:bob@10.0.0.2:5060"));
        assert_eq!(f[0].routes, ["<sip:term@127.0.0.1:5061;lr>"]);
        // a public GRUU: only the device with that instance-id (RFC 5627 §3.1)
        let mut two = rec.clone();
        two.bindings[0].instance_id = Some("<urn:uuid:a>".into());
        let mut b2 = two.bindings[0].clone();
        b2.uri = "sip:bob@10.0.0.3:5060".into();
        b2.instance_id = Some("<urn:uuid:b>".into());
        two.bindings.push(b2);
        let gstore = MemoryStore::new();
        block_on(gstore.save(&two)).unwrap();
        let inv_g = msg
            .replace(
                "MESSAGE sip:bob@ims.example.org",
                "INVITE sip:bob@ims.example.org;gr=urn:uuid:b",
            )
            .replace("MESSAGE", "INVITE");
        let m = ims_sip::parse_datagram(inv_g.as_bytes()).unwrap();
        let Decision::Forward(f) = block_on(r.terminating(&gstore, &m, Some(0), 10)) else {
            panic!()
        };
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].request_uri.as_deref(), Some("sip:bob@10.0.0.3:5060"));
        let inv_x = inv_g.replace("urn:uuid:b", "urn:uuid:zz");
        let m = ims_sip::parse_datagram(inv_x.as_bytes()).unwrap();
        assert_eq!(
            block_on(r.terminating(&gstore, &m, Some(0), 10)),
            Decision::Reply(480)
        );
        assert_eq!(gruu_instance("sip:a@b;gr"), None);
        // expired binding: 480 (no unregistered services for INVITE here)
        let inv = msg.replace("MESSAGE", "INVITE");
        let m = ims_sip::parse_datagram(inv.as_bytes()).unwrap();
        assert_eq!(
            block_on(r.terminating(&store, &m, None, 2000)),
            Decision::Reply(480)
        );
        // originating from an unregistered user: 403; from Bob: to the I-CSCF
        assert_eq!(
            block_on(r.originating(&store, &m, None, 0)),
            Decision::Reply(403)
        );
        let from_bob = inv
            .replace(
                "From: <sip:alice@ims.example.org>",
                "From: <sip:bob@ims.example.org>",
            )
            .replace("INVITE sip:bob@", "INVITE sip:carol@");
        let m = ims_sip::parse_datagram(from_bob.as_bytes()).unwrap();
        let Decision::Forward(f) = block_on(r.originating(&store, &m, None, 0)) else {
            panic!()
        };
        assert_eq!(f[0].routes, ["<sip:127.0.0.1:5062;lr>"]);
    }

    /// The cheap To-tag check agrees with the parsed To header on values of every shape.
    #[test]
    fn the_orig_parameter_or_user_part_asks_for_originating_processing() {
        for r in [
            "<sip:127.0.0.1:6310;lr;orig>",
            "<sip:scscf.example.org;ORIG;lr>",
            "<sip:127.0.0.1:6310;orig=1;lr>",
            "<sip:orig@127.0.0.1:6311;lr>",
            "<sip:orig@127.0.0.1:6311;odi=3;lr>",
        ] {
            assert!(asks_originating(Some(r)), "{r}");
        }
        for r in [
            "<sip:127.0.0.1:6310;lr>",
            "<sip:term@127.0.0.1:6310;lr>",
            "<sip:origin@127.0.0.1:6310;lr>",
            "<sip:127.0.0.1:6310;lr;origin>",
            "<sip:127.0.0.1:6310;lr?orig=1>",
            "<sip:127.0.0.1:6310;lr>;orig",
        ] {
            assert!(!asks_originating(Some(r)), "{r}");
        }
        assert!(!asks_originating(None));
    }

    #[test]
    fn sip_host_agrees_with_the_parsed_uri() {
        for u in [
            "sip:alice@ims.example.org",
            "sip:ims.example.org",
            "SIP:alice@IMS.example.org:5060;transport=udp",
            "sips:+15550001;isub=1@ims.example.org;user=phone",
            "sip:alice:secret@ims.example.org?subject=x",
            "sip:alice@[2001:db8::1]:5060;lr",
            "sip:[::1]",
            "sip:127.0.0.1:6060;lr;orig",
        ] {
            let Ok(Uri::Sip(p)) = Uri::parse(u) else {
                panic!("{u} parses");
            };
            assert!(
                sip_host(u).is_some_and(|h| h.eq_ignore_ascii_case(&p.host().to_string())),
                "{u}: {:?} vs {}",
                sip_host(u),
                p.host()
            );
        }
        for u in ["tel:+15550001", "mailto:a@b", "sip:", "sip:a@"] {
            assert_eq!(sip_host(u), None, "{u}");
        }
        assert_eq!(lr_odi("sip:orig@h:1", 3), "<sip:orig@h:1;odi=3;lr>");
        assert_eq!(lr_odi("sip:x;lr", -1), "<sip:x;lr;odi=-1>");
        assert_eq!(lr("sip:h"), "<sip:h;lr>");
        assert_eq!(lr("sip:h;lr"), "<sip:h;lr>");
    }

    #[test]
    fn has_tag_param_agrees_with_the_parsed_to_header() {
        let values = [
            "<sip:bob@example.org>",
            "<sip:bob@example.org>;tag=a1",
            "<sip:bob@example.org;tag=inside>",
            "<sip:bob@example.org;tag=inside>;tag=out",
            "sip:bob@example.org;tag=x",
            "sip:bob@example.org",
            "\"Bob <x>; tag=no\" <sip:bob@example.org>",
            "\"Bob \\\" ;tag=no\" <sip:bob@example.org>;TAG=y",
            "Bob <sip:bob@example.org> ; tag = z ;foo",
            "<sip:bob@example.org>;tagx=1;xtag=2",
            "<sip:bob@example.org>;foo=bar;tag=9f8e",
            "<tel:+15550001>;tag=t",
        ];
        for v in values {
            let raw = format!(
                "BYE sip:b@example.org SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK-1\r\n\
                 To: {v}\r\nFrom: <sip:a@example.org>;tag=1\r\nCall-ID: c\r\nCSeq: 1 BYE\r\n\
                 Content-Length: 0\r\n\r\n"
            );
            let m = ims_sip::parse_datagram(raw.as_bytes()).unwrap();
            let parsed = m.to().unwrap().expect("a To").tag().is_some();
            assert_eq!(has_tag_param(v), parsed, "{v}");
            assert_eq!(is_initial(&m), !parsed, "{v}");
        }
    }

    /// A Cx client answering a REGISTRATION UAR with `first` and a REGISTRATION_AND_CAPABILITIES
    /// one with `capabilities`, recording the User-Authorization-Type of each UAR.
    struct Reselecting {
        first: crate::hss::UaaDecision,
        capabilities: crate::hss::UaaDecision,
        asked: Mutex<Vec<UserAuthorizationType>>,
    }

    impl CxClient for Reselecting {
        async fn uar(
            &self,
            _: &str,
            _: &str,
            t: UserAuthorizationType,
        ) -> Result<crate::hss::UaaDecision, CxFailure> {
            self.asked.lock().unwrap().push(t);
            Ok(match t {
                UserAuthorizationType::RegistrationAndCapabilities => self.capabilities.clone(),
                _ => self.first.clone(),
            })
        }
        async fn mar(&self, _: crate::cx::MarQuery) -> Result<crate::cx::MaaAnswer, CxFailure> {
            Err(CxFailure::Unreachable("not used".into()))
        }
        async fn sar(&self, _: crate::cx::SarQuery) -> Result<crate::hss::SaaDecision, CxFailure> {
            Err(CxFailure::Unreachable("not used".into()))
        }
        async fn lir(&self, _: &str) -> Result<crate::hss::LiaDecision, CxFailure> {
            Err(CxFailure::Unreachable("not used".into()))
        }
    }

    fn reselecting(
        first: (Option<&str>, Option<crate::hss::ScscfCapabilities>),
        capabilities: Option<crate::hss::ScscfCapabilities>,
    ) -> Icscf<Reselecting> {
        use crate::hss::result::*;
        let uaa = |result, name: Option<&str>, caps| crate::hss::UaaDecision {
            result,
            server_name: name.map(str::to_string),
            server_capabilities: caps,
        };
        let result = if first.0.is_some() {
            SUBSEQUENT_REGISTRATION
        } else {
            FIRST_REGISTRATION
        };
        Icscf::new(
            IcscfConfig {
                scscfs: vec![S1.into(), S2.into(), S3.into()],
            },
            Reselecting {
                first: uaa(result, first.0, first.1),
                capabilities: uaa(SUCCESS, None, capabilities),
                asked: Mutex::new(Vec::new()),
            },
            EnumTable::new("e164.arpa"),
        )
        .with_scscf_capabilities(S1, vec![2])
        .with_scscf_capabilities(S2, vec![1])
        .with_scscf_capabilities(S3, vec![1, 2, 3])
    }

    /// TS 24.229 §5.3.1.3, TS 29.228 §6.1.1.1: an S-CSCF the HSS named that does not answer is
    /// replaced by one selected from the capabilities of a new UAR with
    /// REGISTRATION_AND_CAPABILITIES, never the one that failed; one selected by capabilities is
    /// replaced from the same capabilities, without a new UAR; none left: `None`.
    #[test]
    fn icscf_reselects_an_scscf_that_does_not_answer() {
        use UserAuthorizationType::*;
        let req = ims_sip::parse_datagram(REGISTER.as_bytes()).unwrap();
        // named S3; the capabilities (mandatory 1: S2, S3) leave S2
        let i = reselecting((Some(S3), None), Some(caps(&[1], &[], &[])));
        let (d, r) = block_on(i.route_register(&req));
        assert_eq!(d, to(S3));
        let mut r = r.expect("a registration can be re-selected");
        assert!(r.named && i.may_reselect(&r));
        assert_eq!(block_on(i.reselect(&mut r)), Ok(Some(S2.to_string())));
        assert_eq!(
            *i.cx.asked.lock().unwrap(),
            [Registration, RegistrationAndCapabilities]
        );
        assert_eq!(r.tried, [S3, S2]);
        assert_eq!(block_on(i.reselect(&mut r)), Ok(None));
        // no further UAR: the capabilities are known now
        assert_eq!(i.cx.asked.lock().unwrap().len(), 2);

        // named, and the answer carries no capabilities: the configured ones in order
        let i = reselecting((Some(S1), None), None);
        let mut r = block_on(i.route_register(&req)).1.unwrap();
        assert_eq!(block_on(i.reselect(&mut r)), Ok(Some(S2.to_string())));
        assert_eq!(block_on(i.reselect(&mut r)), Ok(Some(S3.to_string())));
        assert!(!i.may_reselect(&r));
        assert_eq!(block_on(i.reselect(&mut r)), Ok(None));

        // selected by capabilities (HSS prefers S1, mandatory 2: S1, S3): S3 next, no new UAR
        let i = reselecting((None, Some(caps(&[2], &[], &[S1]))), None);
        let (d, r) = block_on(i.route_register(&req));
        assert_eq!(d, to(S1));
        let mut r = r.unwrap();
        assert!(!r.named);
        assert_eq!(block_on(i.reselect(&mut r)), Ok(Some(S3.to_string())));
        assert_eq!(block_on(i.reselect(&mut r)), Ok(None));
        assert_eq!(*i.cx.asked.lock().unwrap(), [Registration]);

        // a de-registration is never re-selected: only the S-CSCF holding it can end it
        let dereg = REGISTER.replace("Content-Length: 0", "Expires: 0\r\nContent-Length: 0");
        let i = reselecting((Some(S1), None), None);
        let (_, r) =
            block_on(i.route_register(&ims_sip::parse_datagram(dereg.as_bytes()).unwrap()));
        assert_eq!(r, None);
    }
}
