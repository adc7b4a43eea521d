//! Realm-based request routing (RFC 6733 §6.1, §2.7 routing table) and redirection (§6.13,
//! §6.12–§6.14 Redirect-Host, Redirect-Host-Usage, Redirect-Max-Cache-Time).
//!
//! Sans-IO: [`RoutingTable::decide`] says what a node does with a request (handle it, forward it to
//! a peer, redirect it, or answer with an error); [`redirect_of`] reads a 3006
//! DIAMETER_REDIRECT_INDICATION answer and [`RedirectCache`] remembers it as long as its usage
//! and cache time allow, which is how a Dx client follows an SLF (TS 29.228 §5.6, TS 23.228
//! §5.8.1).
//!
//! ```
//! use ims_diameter::routing::{Action, Decision, Route, RoutingTable};
//! use ims_diameter::{Command, Message};
//!
//! let mut table = RoutingTable::new("icscf.ims.example.org", "ims.example.org");
//! table.add(Route::new("hss.example.net", Action::Relay, &["dra.example.net"]));
//! table.add(Route::new("ims.example.org", Action::Local, &[]));
//!
//! let uar = ims_diameter::cx::Uar {
//!     origin_host: "pcscf.ims.example.org".into(),
//!     destination_realm: "hss.example.net".into(),
//!     ..Default::default()
//! }
//! .encode(1, 1);
//! match table.decide(&Message::parse(&uar)?) {
//!     Decision::Forward { action, peers } => {
//!         assert_eq!(action, Action::Relay);
//!         assert_eq!(peers, vec!["dra.example.net"]);
//!     }
//!     other => panic!("{other:?}"),
//! }
//! # Ok::<(), ims_diameter::Error>(())
//! ```

use crate::answer::Origin;
use crate::dict;
use crate::encode::encode_message;
use crate::message::{Flags, Message};
use crate::result::ResultCode;
use std::time::{Duration, Instant};

/// What a node does with requests for a realm (RFC 6733 §2.7 Local Action).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// Handle the request here.
    Local,
    /// Forward it unchanged (but for Route-Record) to a peer (§2.8.2).
    Relay,
    /// Forward it to a peer, possibly applying local policy (§2.8.3).
    Proxy,
    /// Answer 3006 with the route's peers as Redirect-Host (§2.8.4).
    Redirect,
}

/// One entry of the routing table: a realm (and optionally one application) with its action and
/// the peers (Diameter identities, in order of preference) that serve it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// The Destination-Realm it matches (case-insensitive), `"*"` for the default route.
    pub realm: String,
    /// The Application-Id it is limited to, `None` for all.
    pub application_id: Option<u32>,
    /// The action.
    pub action: Action,
    /// The peers (Origin-Host identities) to forward to, or the hosts to redirect to (written
    /// as Redirect-Host `aaa://host` unless they are already DiameterURIs).
    pub peers: Vec<String>,
}

impl Route {
    /// A route for every application of `realm`.
    pub fn new(realm: &str, action: Action, peers: &[&str]) -> Route {
        Route {
            realm: realm.to_owned(),
            application_id: None,
            action,
            peers: peers.iter().map(|p| (*p).to_owned()).collect(),
        }
    }

    /// The same route limited to one application.
    pub fn for_application(mut self, application_id: u32) -> Route {
        self.application_id = Some(application_id);
        self
    }

    fn matches(&self, realm: &str, app: u32) -> bool {
        (self.realm == "*" || self.realm.eq_ignore_ascii_case(realm))
            && self.application_id.is_none_or(|a| a == app)
    }
}

/// The decision for one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision<'t> {
    /// Handle it here.
    Local,
    /// Send it to the first usable of these peers (Destination-Host first when it names one).
    Forward {
        /// Relay or Proxy.
        action: Action,
        /// Candidate peers in order.
        peers: Vec<&'t str>,
    },
    /// Answer 3006 DIAMETER_REDIRECT_INDICATION naming these hosts.
    Redirect {
        /// The hosts (Redirect-Host values).
        hosts: &'t [String],
    },
    /// Answer with this Result-Code: 3003 DIAMETER_REALM_NOT_SERVED (no route), 3005
    /// DIAMETER_LOOP_DETECTED (our identity is in a Route-Record), 3002
    /// DIAMETER_UNABLE_TO_DELIVER (a non-proxiable request for elsewhere).
    Reject(ResultCode),
}

/// The AVPs of a request that routing reads, found in one walk
/// ([`RoutingTable::route_avps`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RouteAvps<'m> {
    /// The first Destination-Host, if UTF-8 (as [`Message::destination_host`]).
    pub destination_host: Option<&'m str>,
    /// The first Destination-Realm, if UTF-8 (as [`Message::destination_realm`]).
    pub destination_realm: Option<&'m str>,
    /// A Route-Record names the local host (RFC 6733 §6.1.3: a loop).
    pub looped: bool,
    /// The first Origin-Host, if UTF-8 (as [`Message::origin_host`]; found in the same walk
    /// for a receiver's duplicate detection).
    pub origin_host: Option<&'m str>,
    /// The first Origin-State-Id, if 4 octets.
    pub origin_state_id: Option<u32>,
}

/// The routing table of a node (RFC 6733 §2.7): checked in insertion order, the first match wins;
/// the route with realm `"*"` is the default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoutingTable {
    local_host: String,
    local_realm: String,
    routes: Vec<Route>,
}

impl RoutingTable {
    /// A table for a node with this identity; requests for its realm are local unless a route
    /// says otherwise.
    pub fn new(local_host: &str, local_realm: &str) -> RoutingTable {
        RoutingTable {
            local_host: local_host.to_owned(),
            local_realm: local_realm.to_owned(),
            routes: Vec::new(),
        }
    }

    /// Appends a route.
    pub fn add(&mut self, route: Route) {
        self.routes.push(route);
    }

    /// The routes.
    pub fn routes(&self) -> &[Route] {
        &self.routes
    }

    /// The AVPs routing reads from a request, found in ONE walk of its top-level AVPs (for
    /// [`RoutingTable::decide_with`], and for a caller that needs Destination-Host or
    /// Destination-Realm too: no second walk).
    pub fn route_avps<'m>(&self, request: &Message<'m>) -> RouteAvps<'m> {
        let mut r = RouteAvps::default();
        // the first occurrence of each, read as `Message::destination_host` /
        // `destination_realm` read it (a first one that is not UTF-8 gives `None`)
        let (mut host_seen, mut realm_seen) = (false, false);
        let (mut origin_seen, mut state_seen) = (false, false);
        for a in request.avps() {
            if a.vendor_id() != 0 {
                continue;
            }
            match a.code() {
                c if c == dict::ORIGIN_HOST.code && !origin_seen => {
                    origin_seen = true;
                    r.origin_host = a.utf8().ok();
                }
                c if c == dict::ORIGIN_STATE_ID.code && !state_seen => {
                    state_seen = true;
                    r.origin_state_id = a.u32().ok();
                }
                c if c == dict::DESTINATION_HOST.code && !host_seen => {
                    host_seen = true;
                    r.destination_host = a.utf8().ok();
                }
                c if c == dict::DESTINATION_REALM.code && !realm_seen => {
                    realm_seen = true;
                    r.destination_realm = a.utf8().ok();
                }
                c if c == dict::ROUTE_RECORD.code && !r.looped => {
                    r.looped = a
                        .utf8()
                        .is_ok_and(|h| h.eq_ignore_ascii_case(&self.local_host));
                }
                _ => {}
            }
        }
        r
    }

    /// Decides what to do with a received (or locally originated) request, RFC 6733 §6.1.4–6.1.6:
    /// a request whose Route-Record names us is a loop (3005); one for our realm without a
    /// Destination-Host, or for us, is local; one naming another host goes to that host; the
    /// others follow the first matching route (3003 when none matches).
    pub fn decide<'t>(&'t self, request: &Message<'t>) -> Decision<'t> {
        self.decide_with(request, &self.route_avps(request))
    }

    /// [`RoutingTable::decide`] with the request's routing AVPs already found
    /// ([`RoutingTable::route_avps`] of the same request).
    pub fn decide_with<'t>(&'t self, request: &Message<'_>, avps: &RouteAvps<'t>) -> Decision<'t> {
        if avps.looped {
            return Decision::Reject(ResultCode::LoopDetected);
        }
        let dest_host = avps.destination_host;
        let dest_realm = avps.destination_realm;
        let for_us = dest_host.is_some_and(|h| h.eq_ignore_ascii_case(&self.local_host));
        let our_realm = dest_realm.is_none_or(|r| r.eq_ignore_ascii_case(&self.local_realm));
        let app = request.application_id();
        let route = self
            .routes
            .iter()
            .find(|r| r.realm != "*" && r.matches(dest_realm.unwrap_or(&self.local_realm), app))
            .or_else(|| {
                self.routes
                    .iter()
                    .find(|r| r.matches("*", app) && r.realm == "*")
            });
        if for_us
            || (our_realm && dest_host.is_none() && route.is_none_or(|r| r.action == Action::Local))
        {
            return Decision::Local;
        }
        if !request.flags().is_proxiable() {
            return Decision::Reject(ResultCode::UnableToDeliver);
        }
        match route {
            Some(r) if r.action == Action::Redirect => Decision::Redirect { hosts: &r.peers },
            Some(r) if r.action == Action::Local && dest_host.is_none() => Decision::Local,
            Some(r) => {
                let mut peers: Vec<&str> = dest_host.into_iter().collect();
                peers.extend(
                    r.peers
                        .iter()
                        .map(String::as_str)
                        .filter(|p| !dest_host.is_some_and(|h| h.eq_ignore_ascii_case(p))),
                );
                Decision::Forward {
                    action: if r.action == Action::Local {
                        Action::Relay
                    } else {
                        r.action
                    },
                    peers,
                }
            }
            None => match dest_host {
                // a Destination-Host in our realm: it may be a directly connected peer
                Some(h) if our_realm => Decision::Forward {
                    action: Action::Relay,
                    peers: vec![h],
                },
                _ => Decision::Reject(ResultCode::RealmNotServed),
            },
        }
    }
}

enumerated! {
    /// Redirect-Host-Usage (RFC 6733 §6.13): what later requests a redirection applies to.
    pub enum RedirectHostUsage: dict::REDIRECT_HOST_USAGE {
        DontCache = 0,
        AllSession = 1,
        AllRealm = 2,
        RealmAndApplication = 3,
        AllApplication = 4,
        AllHost = 5,
        AllUser = 6,
    }
}

/// A 3006 DIAMETER_REDIRECT_INDICATION answer, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redirect {
    /// Redirect-Host values (DiameterURI text), in order.
    pub hosts: Vec<String>,
    /// Redirect-Host-Usage (Don't Cache when absent).
    pub usage: RedirectHostUsage,
    /// Redirect-Max-Cache-Time in seconds (required unless Don't Cache).
    pub max_cache_time: Option<u32>,
}

impl Redirect {
    /// The host part of each Redirect-Host (URIs that do not parse are kept as written).
    pub fn host_names(&self) -> Vec<&str> {
        self.hosts
            .iter()
            .map(|h| crate::DiameterUri::parse(h).map_or(h.as_str(), |u| u.host))
            .collect()
    }
}

/// Reads a redirect from an answer: `Some` when its Result-Code is 3006 and it names at least
/// one Redirect-Host.
pub fn redirect_of(answer: &Message<'_>) -> Option<Redirect> {
    if answer.is_request()
        || answer.find(dict::RESULT_CODE)?.u32().ok()? != ResultCode::RedirectIndication.code()
    {
        return None;
    }
    let hosts: Vec<String> = answer
        .find_all(dict::REDIRECT_HOST)
        .filter_map(|a| a.utf8().ok().map(str::to_owned))
        .collect();
    if hosts.is_empty() {
        return None;
    }
    let usage = answer
        .find(dict::REDIRECT_HOST_USAGE)
        .and_then(|a| a.i32().ok())
        .map_or(RedirectHostUsage::DontCache, RedirectHostUsage::from_i32);
    let max_cache_time = answer
        .find(dict::REDIRECT_MAX_CACHE_TIME)
        .and_then(|a| a.u32().ok());
    Some(Redirect {
        hosts,
        usage,
        max_cache_time,
    })
}

/// The 3006 answer a redirect agent sends (RFC 6733 §6.13, E bit set): Session-Id copied,
/// Origin-Host/-Realm, Result-Code, one Redirect-Host per host (`aaa://host` unless already a
/// URI), Redirect-Host-Usage and Redirect-Max-Cache-Time, Proxy-Info copied.
pub fn redirect_answer(
    request: &Message<'_>,
    hosts: &[String],
    usage: RedirectHostUsage,
    max_cache_time: u32,
    origin: &Origin<'_>,
) -> Vec<u8> {
    let mut h = request.header().answer();
    h.flags.0 |= Flags::ERROR;
    let mut v = Vec::with_capacity(256);
    encode_message(&mut v, &h, |e| {
        if let Some(s) = request.find(dict::SESSION_ID) {
            e.copy(&s);
        }
        e.utf8(dict::ORIGIN_HOST, origin.host);
        e.utf8(dict::ORIGIN_REALM, origin.realm);
        e.u32(dict::RESULT_CODE, ResultCode::RedirectIndication.code());
        for host in hosts {
            if host.contains("://") {
                e.utf8(dict::REDIRECT_HOST, host);
            } else {
                e.utf8(dict::REDIRECT_HOST, &format!("aaa://{host}"));
            }
        }
        e.i32(dict::REDIRECT_HOST_USAGE, usage.to_i32());
        if usage != RedirectHostUsage::DontCache {
            e.u32(dict::REDIRECT_MAX_CACHE_TIME, max_cache_time);
        }
        for p in request.find_all(dict::PROXY_INFO) {
            e.copy(&p);
        }
    });
    v
}

/// The most redirections a [`RedirectCache`] keeps.
pub const MAX_CACHED_REDIRECTS: usize = 10_000;

#[derive(Debug, Clone, PartialEq, Eq)]
struct CacheEntry {
    usage: RedirectHostUsage,
    key: String,
    app: u32,
    hosts: Vec<String>,
    expires: Instant,
}

/// Remembers redirections (RFC 6733 §6.13) so later requests go straight to the redirected host:
/// keyed by Session-Id, Destination-Realm, Destination-Realm and Application-Id, Application-Id,
/// Destination-Host or User-Name as Redirect-Host-Usage says, for Redirect-Max-Cache-Time
/// seconds (RFC 6733 §6.14): an entry applies while `now < received + max_cache_time` and is
/// gone from that instant on (0 s: never applies). A redirect with a caching usage but without
/// Redirect-Max-Cache-Time (which the RFC requires then) is not cached. At most
/// [`MAX_CACHED_REDIRECTS`] entries are kept by default (the one expiring first goes).
#[derive(Debug, Clone)]
pub struct RedirectCache {
    entries: Vec<CacheEntry>,
    max: usize,
}

impl Default for RedirectCache {
    fn default() -> Self {
        RedirectCache::with_capacity(MAX_CACHED_REDIRECTS)
    }
}

/// The Application-Id part of a cache key: the request's for the two usages that name the
/// application (REALM_AND_APPLICATION, ALL_APPLICATION), 0 for the others, which apply to
/// every application (so a newer redirect of the same realm, host, user or session replaces
/// the older one whatever application either came from).
fn key_app(usage: RedirectHostUsage, request: &Message<'_>) -> u32 {
    match usage {
        RedirectHostUsage::RealmAndApplication | RedirectHostUsage::AllApplication => {
            request.application_id()
        }
        _ => 0,
    }
}

/// The rest of the cache key of `usage` (RFC 6733 §6.13): ALL_SESSION the Session-Id (octets
/// as sent), ALL_REALM and REALM_AND_APPLICATION the Destination-Realm, ALL_HOST the
/// Destination-Host (DiameterIdentities, ASCII case ignored), ALL_USER the User-Name,
/// ALL_APPLICATION nothing more than the application. `None`: the request lacks the AVP the
/// usage names (or the usage does not cache), so nothing is cached or found for it.
fn cache_key(usage: RedirectHostUsage, request: &Message<'_>) -> Option<String> {
    let s = |o: Option<&str>| o.map(str::to_ascii_lowercase);
    match usage {
        RedirectHostUsage::AllSession => request.session_id().map(str::to_owned),
        RedirectHostUsage::AllRealm | RedirectHostUsage::RealmAndApplication => {
            s(request.destination_realm())
        }
        RedirectHostUsage::AllApplication => Some(String::new()),
        RedirectHostUsage::AllHost => s(request.destination_host()),
        RedirectHostUsage::AllUser => request
            .find(dict::USER_NAME)
            .and_then(|a| a.utf8().ok())
            .map(str::to_owned),
        RedirectHostUsage::DontCache | RedirectHostUsage::Unknown(_) => None,
    }
}

impl RedirectCache {
    /// An empty cache.
    pub fn new() -> RedirectCache {
        RedirectCache::default()
    }

    /// An empty cache keeping at most `max` redirections (at least one).
    pub fn with_capacity(max: usize) -> RedirectCache {
        RedirectCache {
            entries: Vec::new(),
            max: max.max(1),
        }
    }

    /// Remembers `redirect`, the answer to `request`, if its usage allows caching.
    pub fn insert(&mut self, now: Instant, request: &Message<'_>, redirect: &Redirect) {
        let Some(key) = cache_key(redirect.usage, request) else {
            return;
        };
        let Some(secs) = redirect.max_cache_time else {
            return;
        };
        let app = key_app(redirect.usage, request);
        self.entries.retain(|e| {
            e.expires > now && !(e.usage == redirect.usage && e.key == key && e.app == app)
        });
        if secs == 0 {
            return;
        }
        if self.entries.len() >= self.max {
            if let Some(i) = self
                .entries
                .iter()
                .enumerate()
                .min_by_key(|(_, e)| e.expires)
                .map(|(i, _)| i)
            {
                self.entries.swap_remove(i);
            }
        }
        self.entries.push(CacheEntry {
            usage: redirect.usage,
            key,
            app,
            hosts: redirect.hosts.clone(),
            expires: now + Duration::from_secs(u64::from(secs)),
        });
    }

    /// The redirected hosts that apply to `request`, if any, in the precedence order of RFC 6733
    /// §6.13: ALL_SESSION, ALL_USER, REALM_AND_APPLICATION, ALL_REALM, ALL_APPLICATION, ALL_HOST.
    pub fn lookup(&mut self, now: Instant, request: &Message<'_>) -> Option<&[String]> {
        self.entries.retain(|e| e.expires > now);
        const ORDER: [RedirectHostUsage; 6] = [
            RedirectHostUsage::AllSession,
            RedirectHostUsage::AllUser,
            RedirectHostUsage::RealmAndApplication,
            RedirectHostUsage::AllRealm,
            RedirectHostUsage::AllApplication,
            RedirectHostUsage::AllHost,
        ];
        for usage in ORDER {
            // The key is built (scanning the request's AVPs, allocating) only for a usage that
            // has entries: with an empty cache a lookup costs nothing per request.
            if !self.entries.iter().any(|e| e.usage == usage) {
                continue;
            }
            let Some(key) = cache_key(usage, request) else {
                continue;
            };
            let app = key_app(usage, request);
            if let Some(i) = self
                .entries
                .iter()
                .position(|e| e.usage == usage && e.key == key && e.app == app)
            {
                return Some(&self.entries[i].hosts);
            }
        }
        None
    }

    /// Forgets `host` as a redirect target (RFC 6733 §6.14: once a host is no longer reachable,
    /// the cache entries created for it are deleted): it leaves every entry naming it (by the
    /// host of its DiameterURI, ASCII case ignored), and an entry left with no host goes.
    pub fn forget_host(&mut self, host: &str) {
        self.entries.retain_mut(|e| {
            e.hosts.retain(|h| {
                !crate::DiameterUri::parse(h)
                    .map_or(h.as_str(), |u| u.host)
                    .eq_ignore_ascii_case(host)
            });
            !e.hosts.is_empty()
        });
    }

    /// How many redirections are remembered.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when none is.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// Appends a Route-Record AVP naming `peer_host` (the peer the request came from) to a request
/// being relayed or proxied (RFC 6733 §6.1.9), updating Message Length.
pub fn add_route_record(request: &[u8], peer_host: &str) -> Vec<u8> {
    let mut v = request.to_vec();
    crate::Encoder::new(&mut v).utf8(dict::ROUTE_RECORD, peer_host);
    let len = v.len() as u32;
    if v.len() >= 4 {
        v[1..4].copy_from_slice(&len.to_be_bytes()[1..]);
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cx::{Lir, Uar};
    use crate::Command;

    /// The origin of the virtual clock.
    fn t0() -> Instant {
        #[allow(clippy::disallowed_methods)] // origin of the virtual clock, never read again
        Instant::now()
    }

    fn uar(realm: &str, host: Option<&str>) -> Vec<u8> {
        Uar {
            session_id: "icscf;1;2".into(),
            origin_host: "icscf.ims.example.org".into(),
            origin_realm: "ims.example.org".into(),
            destination_realm: realm.into(),
            destination_host: host.map(Into::into),
            user_name: "alice@ims.example.org".into(),
            public_identity: "sip:alice@ims.example.org".into(),
            ..Default::default()
        }
        .encode(1, 2)
    }

    fn table() -> RoutingTable {
        let mut t = RoutingTable::new("icscf.ims.example.org", "ims.example.org");
        t.add(Route::new(
            "hss.example.net",
            Action::Proxy,
            &["dra1", "dra2"],
        ));
        t.add(Route::new(
            "slf.example.net",
            Action::Redirect,
            &["hss2.example.net"],
        ));
        t.add(
            Route::new("cx.example.net", Action::Relay, &["hss-cx"]).for_application(dict::app::CX),
        );
        t
    }

    #[test]
    fn route_avps_are_found_in_one_walk_as_the_message_reads_them() {
        let t = table();
        let m = uar("hss.example.net", Some("dra2"));
        let msg = Message::parse(&m).unwrap();
        let r = t.route_avps(&msg);
        assert_eq!(r.destination_host, msg.destination_host());
        assert_eq!(r.destination_realm, msg.destination_realm());
        assert_eq!(
            (r.destination_host, r.destination_realm, r.looped),
            (Some("dra2"), Some("hss.example.net"), false)
        );
        assert_eq!(t.decide_with(&msg, &r), t.decide(&msg));
        // Route-Record: another host is no loop, ours (any case) is; a second Destination-Host
        // does not replace the first; a first one that is not UTF-8 reads as none
        let other = add_route_record(&m, "dra1");
        let ours = add_route_record(&other, "ICSCF.ims.example.org");
        let mut twice = ours.clone();
        crate::Encoder::new(&mut twice).utf8(dict::DESTINATION_HOST, "dra1");
        let len = twice.len() as u32;
        twice[1..4].copy_from_slice(&len.to_be_bytes()[1..]);
        let msg = Message::parse(&other).unwrap();
        assert!(!t.route_avps(&msg).looped);
        let msg = Message::parse(&twice).unwrap();
        let r = t.route_avps(&msg);
        assert!(r.looped);
        assert_eq!(r.destination_host, Some("dra2"));
        assert_eq!(
            t.decide_with(&msg, &r),
            Decision::Reject(ResultCode::LoopDetected)
        );
        let mut bad = Vec::new();
        crate::encode_message(&mut bad, Message::parse(&m).unwrap().header(), |e| {
            e.octets(dict::DESTINATION_HOST, b"\xff\xfe");
            e.utf8(dict::DESTINATION_HOST, "dra1");
            e.utf8(dict::DESTINATION_REALM, "hss.example.net");
        });
        let msg = Message::parse(&bad).unwrap();
        let r = t.route_avps(&msg);
        assert_eq!((r.destination_host, msg.destination_host()), (None, None));
        assert_eq!(r.destination_realm, Some("hss.example.net"));
        // Origin-Host and Origin-State-Id in the same walk, the first of each, as the message
        // reads them (none, a valid one, one that is not UTF-8 / not 4 octets)
        let msg = Message::parse(&m).unwrap();
        let r = t.route_avps(&msg);
        assert_eq!(r.origin_host, msg.origin_host());
        assert!(r.origin_host.is_some());
        assert_eq!(r.origin_state_id, None);
        let mut with_state = Vec::new();
        crate::encode_message(&mut with_state, msg.header(), |e| {
            e.utf8(dict::ORIGIN_HOST, "icscf.ims.example.org");
            e.u32(dict::ORIGIN_STATE_ID, 7);
            e.utf8(dict::ORIGIN_HOST, "other.ims.example.org");
            e.u32(dict::ORIGIN_STATE_ID, 8);
        });
        let r = t.route_avps(&Message::parse(&with_state).unwrap());
        assert_eq!(
            (r.origin_host, r.origin_state_id),
            (Some("icscf.ims.example.org"), Some(7))
        );
        let mut odd = Vec::new();
        crate::encode_message(&mut odd, msg.header(), |e| {
            e.octets(dict::ORIGIN_HOST, b"\xff");
            e.octets(dict::ORIGIN_STATE_ID, b"\x00\x07");
            e.utf8(dict::ORIGIN_HOST, "icscf.ims.example.org");
        });
        let odd = Message::parse(&odd).unwrap();
        let r = t.route_avps(&odd);
        assert_eq!((r.origin_host, odd.origin_host()), (None, None));
        assert_eq!(r.origin_state_id, None);
    }

    #[test]
    fn local_realm_is_local() {
        let t = table();
        let m = uar("ims.example.org", None);
        assert_eq!(t.decide(&Message::parse(&m).unwrap()), Decision::Local);
        let m = uar("ims.example.org", Some("icscf.ims.example.org"));
        assert_eq!(t.decide(&Message::parse(&m).unwrap()), Decision::Local);
    }

    #[test]
    fn destination_host_in_our_realm_is_forwarded_to_it() {
        let t = table();
        let m = uar("ims.example.org", Some("hss.ims.example.org"));
        assert_eq!(
            t.decide(&Message::parse(&m).unwrap()),
            Decision::Forward {
                action: Action::Relay,
                peers: vec!["hss.ims.example.org"]
            }
        );
    }

    #[test]
    fn realm_routes_with_destination_host_first() {
        let t = table();
        let m = uar("HSS.example.net", None);
        assert_eq!(
            t.decide(&Message::parse(&m).unwrap()),
            Decision::Forward {
                action: Action::Proxy,
                peers: vec!["dra1", "dra2"]
            }
        );
        let m = uar("hss.example.net", Some("dra2"));
        assert_eq!(
            t.decide(&Message::parse(&m).unwrap()),
            Decision::Forward {
                action: Action::Proxy,
                peers: vec!["dra2", "dra1"]
            }
        );
    }

    #[test]
    fn application_specific_route() {
        let t = table();
        let m = uar("cx.example.net", None);
        assert!(matches!(
            t.decide(&Message::parse(&m).unwrap()),
            Decision::Forward {
                action: Action::Relay,
                ..
            }
        ));
        // an Rx request for that realm does not match the Cx-only route
        let mut rx = m.clone();
        rx[8..12].copy_from_slice(&dict::app::RX.to_be_bytes());
        assert_eq!(
            t.decide(&Message::parse(&rx).unwrap()),
            Decision::Reject(ResultCode::RealmNotServed)
        );
    }

    #[test]
    fn unknown_realm_is_3003_unless_default_route() {
        let mut t = table();
        let m = uar("nowhere.example.com", None);
        assert_eq!(
            t.decide(&Message::parse(&m).unwrap()),
            Decision::Reject(ResultCode::RealmNotServed)
        );
        t.add(Route::new("*", Action::Relay, &["default-dra"]));
        assert_eq!(
            t.decide(&Message::parse(&m).unwrap()),
            Decision::Forward {
                action: Action::Relay,
                peers: vec!["default-dra"]
            }
        );
    }

    #[test]
    fn route_record_loop_is_3005() {
        let t = table();
        let m = add_route_record(&uar("hss.example.net", None), "icscf.ims.example.org");
        let msg = Message::parse(&m).unwrap();
        assert_eq!(
            msg.find(dict::ROUTE_RECORD).unwrap().utf8().unwrap(),
            "icscf.ims.example.org"
        );
        assert_eq!(t.decide(&msg), Decision::Reject(ResultCode::LoopDetected));
        // a Route-Record of another host is fine
        let m = add_route_record(&uar("hss.example.net", None), "pcscf.ims.example.org");
        assert!(matches!(
            t.decide(&Message::parse(&m).unwrap()),
            Decision::Forward { .. }
        ));
    }

    #[test]
    fn non_proxiable_request_for_elsewhere_is_3002() {
        let t = table();
        let mut m = uar("hss.example.net", None);
        m[4] &= !Flags::PROXIABLE;
        assert_eq!(
            t.decide(&Message::parse(&m).unwrap()),
            Decision::Reject(ResultCode::UnableToDeliver)
        );
    }

    #[test]
    fn redirect_answer_round_trip_and_cache() {
        let t = table();
        let req = uar("slf.example.net", None);
        let msg = Message::parse(&req).unwrap();
        let Decision::Redirect { hosts } = t.decide(&msg) else {
            panic!()
        };
        let origin = Origin {
            host: "slf.example.net",
            realm: "example.net",
            state_id: None,
        };
        let ans = redirect_answer(&msg, hosts, RedirectHostUsage::AllRealm, 60, &origin);
        let a = Message::parse(&ans).unwrap();
        assert!(a.flags().is_error());
        assert_eq!((a.hop_by_hop(), a.end_to_end()), (1, 2));
        crate::answer::validate(&a).unwrap();
        let r = redirect_of(&a).unwrap();
        assert_eq!(r.hosts, vec!["aaa://hss2.example.net".to_owned()]);
        assert_eq!(r.host_names(), vec!["hss2.example.net"]);
        assert_eq!(r.usage, RedirectHostUsage::AllRealm);
        assert_eq!(r.max_cache_time, Some(60));

        let now = t0();
        let mut c = RedirectCache::new();
        c.insert(now, &msg, &r);
        // another request to the same realm (different user, another command) hits
        let lir = Lir {
            session_id: "x;1".into(),
            origin_host: "scscf".into(),
            origin_realm: "ims.example.org".into(),
            destination_realm: "slf.example.net".into(),
            public_identity: "sip:bob@ims.example.org".into(),
            ..Default::default()
        }
        .encode(5, 6);
        let lm = Message::parse(&lir).unwrap();
        assert_eq!(c.lookup(now, &lm).unwrap(), ["aaa://hss2.example.net"]);
        // another realm misses, and the entry expires
        let other = uar("hss.example.net", None);
        assert!(c.lookup(now, &Message::parse(&other).unwrap()).is_none());
        assert!(c.lookup(now + Duration::from_secs(61), &lm).is_none());
        assert!(c.is_empty());
    }

    #[test]
    fn dont_cache_is_not_cached_and_usage_keys_differ() {
        let req = uar("slf.example.net", None);
        let msg = Message::parse(&req).unwrap();
        let now = t0();
        let mut c = RedirectCache::new();
        let r = Redirect {
            hosts: vec!["aaa://hss1".into()],
            usage: RedirectHostUsage::DontCache,
            max_cache_time: Some(60),
        };
        c.insert(now, &msg, &r);
        assert!(c.is_empty());
        let r = Redirect {
            usage: RedirectHostUsage::AllUser,
            ..r
        };
        c.insert(now, &msg, &r);
        assert!(c.lookup(now, &msg).is_some());
        let other_user = Uar {
            session_id: "icscf;1;3".into(),
            origin_host: "icscf.ims.example.org".into(),
            origin_realm: "ims.example.org".into(),
            destination_realm: "slf.example.net".into(),
            user_name: "bob@ims.example.org".into(),
            ..Default::default()
        }
        .encode(1, 3);
        assert!(c
            .lookup(now, &Message::parse(&other_user).unwrap())
            .is_none());
    }

    fn redirect(host: &str, usage: RedirectHostUsage, secs: u32) -> Redirect {
        Redirect {
            hosts: vec![format!("aaa://{host}")],
            usage,
            max_cache_time: Some(secs),
        }
    }

    #[test]
    fn cached_redirects_follow_the_rfc_precedence() {
        // RFC 6733 §6.13: ALL_SESSION, ALL_USER, REALM_AND_APPLICATION, ALL_REALM,
        // ALL_APPLICATION, ALL_HOST — ALL_HOST comes last
        let req = uar("slf.example.net", Some("slf1.example.net"));
        let msg = Message::parse(&req).unwrap();
        let now = t0();
        let mut c = RedirectCache::new();
        // each inserted one outranks all those before it
        for (host, usage) in [
            ("by-host", RedirectHostUsage::AllHost),
            ("by-app", RedirectHostUsage::AllApplication),
            ("by-realm", RedirectHostUsage::AllRealm),
            ("by-realm-app", RedirectHostUsage::RealmAndApplication),
            ("by-user", RedirectHostUsage::AllUser),
            ("by-session", RedirectHostUsage::AllSession),
        ] {
            c.insert(now, &msg, &redirect(host, usage, 60));
            assert_eq!(c.lookup(now, &msg).unwrap(), [format!("aaa://{host}")]);
        }
        assert_eq!(c.len(), 6);
        // each expires on its own: the next in precedence takes over
        let mut c2 = RedirectCache::new();
        c2.insert(
            now,
            &msg,
            &redirect("by-host", RedirectHostUsage::AllHost, 120),
        );
        c2.insert(
            now,
            &msg,
            &redirect("by-realm", RedirectHostUsage::AllRealm, 60),
        );
        assert_eq!(c2.lookup(now, &msg).unwrap(), ["aaa://by-realm"]);
        let later = now + Duration::from_secs(60);
        assert_eq!(c2.lookup(later, &msg).unwrap(), ["aaa://by-host"]);
        assert_eq!(c2.len(), 1);
    }

    #[test]
    fn redirect_max_cache_time_bounds_an_entry_exactly() {
        let req = uar("slf.example.net", None);
        let msg = Message::parse(&req).unwrap();
        let now = t0();
        let mut c = RedirectCache::new();
        c.insert(
            now,
            &msg,
            &redirect("hss1", RedirectHostUsage::AllRealm, 60),
        );
        // applies for 60 s, not at 60 s
        let just_before = now + Duration::from_secs(60) - Duration::from_millis(1);
        assert!(c.lookup(just_before, &msg).is_some());
        assert!(c.lookup(now + Duration::from_secs(60), &msg).is_none());
        // a newer redirect for the same realm replaces the old one and restarts its time
        let t1 = now + Duration::from_secs(30);
        c.insert(
            now,
            &msg,
            &redirect("hss1", RedirectHostUsage::AllRealm, 60),
        );
        c.insert(t1, &msg, &redirect("hss2", RedirectHostUsage::AllRealm, 60));
        assert_eq!(c.len(), 1);
        assert_eq!(
            c.lookup(now + Duration::from_secs(89), &msg).unwrap(),
            ["aaa://hss2"]
        );
        assert!(c.lookup(now + Duration::from_secs(90), &msg).is_none());
        // 0 s and a missing Redirect-Max-Cache-Time: not cached at all
        c.insert(now, &msg, &redirect("hss3", RedirectHostUsage::AllRealm, 0));
        assert!(c.is_empty());
        let mut r = redirect("hss3", RedirectHostUsage::AllRealm, 60);
        r.max_cache_time = None;
        c.insert(now, &msg, &r);
        assert!(c.is_empty());
        // expired entries go when another is inserted, not only on lookup
        let other = uar("other.example.net", None);
        let other = Message::parse(&other).unwrap();
        c.insert(
            now,
            &msg,
            &redirect("hss1", RedirectHostUsage::AllRealm, 10),
        );
        c.insert(
            now + Duration::from_secs(10),
            &other,
            &redirect("hss4", RedirectHostUsage::AllRealm, 10),
        );
        assert_eq!(c.len(), 1);
    }

    #[test]
    fn the_redirect_cache_is_bounded() {
        let now = t0();
        assert_eq!(RedirectCache::new().max, MAX_CACHED_REDIRECTS);
        const MAX: usize = 8;
        let mut c = RedirectCache::with_capacity(MAX);
        for i in 0..MAX + 5 {
            let req = uar(&format!("r{i}.example.net"), None);
            let msg = Message::parse(&req).unwrap();
            // later realms are kept longer
            let secs = 100 + i as u32;
            c.insert(
                now,
                &msg,
                &redirect("hss", RedirectHostUsage::AllRealm, secs),
            );
        }
        assert_eq!(c.len(), MAX);
        // the ones expiring first went
        let first = uar("r0.example.net", None);
        assert!(c.lookup(now, &Message::parse(&first).unwrap()).is_none());
        let last = uar(&format!("r{}.example.net", MAX + 4), None);
        assert!(c.lookup(now, &Message::parse(&last).unwrap()).is_some());
    }

    /// A request with the AVPs the redirect cache keys read (`None`: the AVP is absent).
    fn keyed(
        app: u32,
        session: &str,
        realm: &str,
        host: Option<&str>,
        user: Option<&str>,
    ) -> Vec<u8> {
        let mut v = Vec::new();
        encode_message(
            &mut v,
            &crate::message::Header::request(300, app, true, 1, 2),
            |e| {
                e.utf8(dict::SESSION_ID, session);
                e.utf8(dict::ORIGIN_HOST, "client.example.org");
                e.utf8(dict::ORIGIN_REALM, "example.org");
                e.utf8(dict::DESTINATION_REALM, realm);
                if let Some(h) = host {
                    e.utf8(dict::DESTINATION_HOST, h);
                }
                if let Some(u) = user {
                    e.utf8(dict::USER_NAME, u);
                }
            },
        );
        v
    }

    /// Per Redirect-Host-Usage value (RFC 6733 §6.13): the requests a cached redirect applies
    /// to and those it does not, a newer redirect of the same key replacing the older one
    /// whatever application either came from (unless the application is part of the key), and
    /// Redirect-Max-Cache-Time ending each.
    #[test]
    fn each_redirect_host_usage_keys_on_what_the_rfc_names() {
        use RedirectHostUsage as U;
        const CX: u32 = dict::app::CX;
        const RX: u32 = 16_777_236;
        let base = || {
            keyed(
                CX,
                "s;1",
                "hss.example.net",
                Some("hss1.example.net"),
                Some("alice"),
            )
        };
        // (usage, requests it applies to, requests it does not apply to)
        type Requests = Vec<Vec<u8>>;
        let cases: [(U, Requests, Requests); 6] = [
            (
                U::AllSession,
                vec![
                    keyed(RX, "s;1", "other.example.net", None, Some("bob")),
                    keyed(CX, "s;1", "hss.example.net", None, None),
                ],
                vec![
                    keyed(
                        CX,
                        "s;2",
                        "hss.example.net",
                        Some("hss1.example.net"),
                        Some("alice"),
                    ),
                    // Session-Id is compared octet for octet
                    keyed(
                        CX,
                        "S;1",
                        "hss.example.net",
                        Some("hss1.example.net"),
                        Some("alice"),
                    ),
                ],
            ),
            (
                U::AllRealm,
                vec![
                    keyed(RX, "s;9", "HSS.Example.NET", None, None),
                    keyed(
                        CX,
                        "s;8",
                        "hss.example.net",
                        Some("hss7.example.net"),
                        Some("bob"),
                    ),
                ],
                vec![keyed(
                    CX,
                    "s;1",
                    "hss.example.org",
                    Some("hss1.example.net"),
                    Some("alice"),
                )],
            ),
            (
                U::RealmAndApplication,
                vec![keyed(CX, "s;9", "hss.EXAMPLE.net", None, Some("bob"))],
                vec![
                    keyed(
                        RX,
                        "s;1",
                        "hss.example.net",
                        Some("hss1.example.net"),
                        Some("alice"),
                    ),
                    keyed(
                        CX,
                        "s;1",
                        "other.example.net",
                        Some("hss1.example.net"),
                        Some("alice"),
                    ),
                ],
            ),
            (
                U::AllApplication,
                vec![keyed(CX, "s;9", "other.example.net", None, None)],
                vec![keyed(
                    RX,
                    "s;1",
                    "hss.example.net",
                    Some("hss1.example.net"),
                    Some("alice"),
                )],
            ),
            (
                U::AllHost,
                vec![
                    keyed(
                        RX,
                        "s;9",
                        "other.example.net",
                        Some("HSS1.example.net"),
                        None,
                    ),
                    keyed(
                        CX,
                        "s;8",
                        "hss.example.net",
                        Some("hss1.example.net"),
                        Some("bob"),
                    ),
                ],
                vec![
                    keyed(
                        CX,
                        "s;1",
                        "hss.example.net",
                        Some("hss2.example.net"),
                        Some("alice"),
                    ),
                    keyed(CX, "s;1", "hss.example.net", None, Some("alice")),
                ],
            ),
            (
                U::AllUser,
                vec![keyed(RX, "s;9", "other.example.net", None, Some("alice"))],
                vec![
                    keyed(
                        CX,
                        "s;1",
                        "hss.example.net",
                        Some("hss1.example.net"),
                        Some("bob"),
                    ),
                    keyed(CX, "s;1", "hss.example.net", Some("hss1.example.net"), None),
                ],
            ),
        ];
        for (usage, hits, misses) in cases {
            let now = t0();
            let mut c = RedirectCache::new();
            let first = base();
            c.insert(
                now,
                &Message::parse(&first).unwrap(),
                &redirect("a", usage, 60),
            );
            for h in &hits {
                let m = Message::parse(h).unwrap();
                assert_eq!(c.lookup(now, &m).unwrap(), ["aaa://a"], "{usage:?} hit");
            }
            for m in &misses {
                let m = Message::parse(m).unwrap();
                assert!(c.lookup(now, &m).is_none(), "{usage:?} miss");
            }
            // a newer redirect that a hit request received replaces the entry when the key is
            // the same (the hit requests all share the first request's key), and restarts its
            // Redirect-Max-Cache-Time
            let later = now + Duration::from_secs(30);
            let h0 = Message::parse(&hits[0]).unwrap();
            c.insert(later, &h0, &redirect("b", usage, 60));
            assert_eq!(c.len(), 1, "{usage:?} replaced");
            let m = Message::parse(&first).unwrap();
            assert_eq!(c.lookup(later, &m).unwrap(), ["aaa://b"], "{usage:?} newer");
            assert!(c.lookup(now + Duration::from_secs(89), &m).is_some());
            assert!(
                c.lookup(now + Duration::from_secs(90), &m).is_none(),
                "{usage:?} expiry"
            );
            assert!(c.is_empty());
            // a request without the AVP the usage keys on leaves nothing cached
            let bare = keyed(RX, "s;5", "hss.example.net", None, None);
            let bare = Message::parse(&bare).unwrap();
            c.insert(now, &bare, &redirect("c", usage, 60));
            let cached = !c.is_empty();
            let needs = matches!(usage, U::AllHost | U::AllUser);
            assert_eq!(cached, !needs, "{usage:?} without its AVP");
        }
    }

    #[test]
    fn an_unreachable_host_leaves_the_redirect_cache() {
        let now = t0();
        let mut c = RedirectCache::new();
        let r1 = keyed(dict::app::CX, "s;1", "one.example.net", None, None);
        let r2 = keyed(dict::app::CX, "s;2", "two.example.net", None, None);
        let (m1, m2) = (Message::parse(&r1).unwrap(), Message::parse(&r2).unwrap());
        let mut both = redirect("hss1.example.net", RedirectHostUsage::AllRealm, 60);
        both.hosts
            .push("aaa://hss2.example.net:3868;transport=tcp".into());
        c.insert(now, &m1, &both);
        c.insert(
            now,
            &m2,
            &redirect("HSS2.example.net", RedirectHostUsage::AllRealm, 60),
        );
        c.forget_host("hss2.EXAMPLE.net");
        assert_eq!(c.len(), 1);
        assert_eq!(c.lookup(now, &m1).unwrap(), ["aaa://hss1.example.net"]);
        assert!(c.lookup(now, &m2).is_none());
        c.forget_host("hss1.example.net");
        assert!(c.is_empty());
    }

    #[test]
    fn redirect_of_ignores_other_answers() {
        let req = uar("x", None);
        let msg = Message::parse(&req).unwrap();
        let origin = Origin {
            host: "h",
            realm: "r",
            state_id: None,
        };
        let a = crate::peer::result_answer(&msg, 3002, &origin);
        assert!(redirect_of(&Message::parse(&a).unwrap()).is_none());
        assert!(redirect_of(&msg).is_none());
    }
}
