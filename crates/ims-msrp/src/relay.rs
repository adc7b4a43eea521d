//! RFC 4976 relays: the AUTH exchange (client side and relay side, HTTP Digest with `qop=auth`),
//! Use-Path and Expires handling, and the relay forwarding core that rewrites To-Path and
//! From-Path hop by hop. Sans-IO: connections are opaque [`ConnId`]s the caller maps to sockets.
//!
//! ```
//! use ims_msrp::relay::{AuthClient, AuthOutcome, Relay, RelayConfig, RelayOutput, Target};
//! use ims_msrp::{parse_frame, UriBuf};
//! use std::time::Instant;
//!
//! let now = Instant::now();
//! let mut relay = Relay::new(RelayConfig::new(UriBuf::parse("msrps://relay.example.com:2855;tcp")?, "relay.example.com"), 7);
//! relay.add_user("alice", "secret");
//! let mut alice = AuthClient::new(
//!     UriBuf::parse("msrps://alice.example.com:9892/98cjs;tcp")?,
//!     UriBuf::parse("msrps://relay.example.com:2855;tcp")?,
//!     "alice", "secret", Some(900), 42,
//! );
//! let mut wire = alice.start();
//! let use_path = loop {
//!     let (req, _) = parse_frame(&wire)?;
//!     relay.handle_frame(now, 1, req);
//!     let Some(RelayOutput { target: Target::Conn(1), frame }) = relay.poll_output() else { panic!() };
//!     let (resp, _) = parse_frame(&frame.to_vec())?;
//!     match alice.handle_response(&resp.head) {
//!         AuthOutcome::Send(next) => wire = next,
//!         AuthOutcome::Done { use_path, expires } => { assert_eq!(expires, 900); break use_path }
//!         AuthOutcome::Failed(code) => panic!("{code}"),
//!     }
//! };
//! assert!(use_path[0].as_str().starts_with("msrps://relay.example.com:2855/"));
//! # Ok::<(), ims_msrp::Error>(())
//! ```

use crate::encode::{end_line, FrameBuilder};
use crate::framer::Event;
use crate::headers::{name, FailureReport};
use crate::message::{Frame, Head, Method};
use crate::session::Transmit;
use crate::uri::{Uri, UriBuf};
use bytes::Bytes;
use md5::{Digest, Md5};
use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

fn hex(d: &[u8]) -> String {
    const H: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(d.len() * 2);
    for b in d {
        s.push(H[usize::from(b >> 4)] as char);
        s.push(H[usize::from(b & 15)] as char);
    }
    s
}

fn md5_hex(parts: &[&str]) -> String {
    let mut h = Md5::new();
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            h.update(b":");
        }
        h.update(p.as_bytes());
    }
    hex(&h.finalize())
}

/// The RFC 2617 digest `response` for an MSRP AUTH (method `AUTH`, digest-uri = the To-Path URI
/// of the AUTH request, RFC 4976 §5.1), with `qop=auth`.
#[allow(clippy::too_many_arguments)]
pub fn digest_response(
    username: &str,
    realm: &str,
    password: &str,
    nonce: &str,
    nc: &str,
    cnonce: &str,
    uri: &str,
) -> String {
    let ha1 = md5_hex(&[username, realm, password]);
    let ha2 = md5_hex(&["AUTH", uri]);
    md5_hex(&[&ha1, nonce, nc, cnonce, "auth", &ha2])
}

fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// What the client does next after a response to its AUTH.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthOutcome {
    /// Send this AUTH (with credentials, or a larger Expires after 423).
    Send(Vec<u8>),
    /// Authorized: put `use_path` in front of the To-Path of what is sent through the relay and
    /// advertise it in SDP; it lasts `expires` seconds.
    Done {
        /// The Use-Path URIs.
        use_path: Vec<UriBuf>,
        /// Seconds the relay grants.
        expires: u32,
    },
    /// The relay refused (status code), or the response made no sense (0).
    Failed(u16),
}

/// The client side of RFC 4976 §5: AUTH, 401 challenge, AUTH with credentials, 200 with Use-Path.
#[derive(Debug)]
pub struct AuthClient {
    local: UriBuf,
    relay: UriBuf,
    user: String,
    password: String,
    expires: Option<u32>,
    seed: u64,
    seq: u64,
    nc: u32,
    tid: String,
    tries: u8,
    sent_credentials: bool,
}

impl AuthClient {
    /// A client at `local` authenticating to `relay` (its URI, without session-id).
    pub fn new(
        local: UriBuf,
        relay: UriBuf,
        user: &str,
        password: &str,
        expires: Option<u32>,
        seed: u64,
    ) -> AuthClient {
        AuthClient {
            local,
            relay,
            user: user.into(),
            password: password.into(),
            expires,
            seed: splitmix(seed),
            seq: 0,
            nc: 0,
            tid: String::new(),
            tries: 0,
            sent_credentials: false,
        }
    }

    fn next_tid(&mut self) -> String {
        self.seq += 1;
        self.tid = format!("{:08x}a{}", splitmix(self.seed ^ self.seq) as u32, self.seq);
        self.tid.clone()
    }

    fn request(&mut self, auth: Option<String>) -> Vec<u8> {
        let tid = self.next_tid();
        let mut b = FrameBuilder::request(&tid, "AUTH")
            .to_path(self.relay.as_str())
            .from_path(self.local.as_str());
        if let Some(a) = auth {
            b = b.header(name::AUTHORIZATION, &a);
        }
        if let Some(e) = self.expires {
            b = b.header(name::EXPIRES, &e.to_string());
        }
        b.to_bytes()
    }

    /// The first AUTH.
    pub fn start(&mut self) -> Vec<u8> {
        self.request(None)
    }

    /// Handles the relay's response.
    pub fn handle_response(&mut self, h: &Head) -> AuthOutcome {
        if h.transaction_id() != self.tid || self.tries > 4 {
            return AuthOutcome::Failed(0);
        }
        self.tries += 1;
        match h.status() {
            Some(200) => {
                let Ok(Some(up)) = h.use_path() else {
                    return AuthOutcome::Failed(0);
                };
                let use_path = up.iter().map(Uri::to_owned_uri).collect();
                let expires = h.expires().ok().flatten().or(self.expires).unwrap_or(0);
                AuthOutcome::Done { use_path, expires }
            }
            Some(401) => {
                let Ok(Some(ch)) = h.www_authenticate() else {
                    return AuthOutcome::Failed(401);
                };
                // credentials were refused (a stale nonce excepted): do not loop
                let stale = ch
                    .get("stale")
                    .is_some_and(|v| v.eq_ignore_ascii_case("true"));
                if self.sent_credentials && !stale {
                    return AuthOutcome::Failed(401);
                }
                self.sent_credentials = true;
                let (Some(realm), Some(nonce)) = (ch.get("realm"), ch.get("nonce")) else {
                    return AuthOutcome::Failed(401);
                };
                self.nc += 1;
                let nc = format!("{:08x}", self.nc);
                let cnonce = format!("{:016x}", splitmix(self.seed ^ 0xc0ff_ee00 ^ self.seq));
                let uri = self.relay.as_str().to_owned();
                let resp =
                    digest_response(&self.user, realm, &self.password, nonce, &nc, &cnonce, &uri);
                let mut a = format!(
                    "Digest username=\"{}\", realm=\"{realm}\", nonce=\"{nonce}\", uri=\"{uri}\", qop=auth, nc={nc}, cnonce=\"{cnonce}\", response=\"{resp}\"",
                    self.user
                );
                if let Some(o) = ch.get("opaque") {
                    a.push_str(&format!(", opaque=\"{o}\""));
                }
                AuthOutcome::Send(self.request(Some(a)))
            }
            Some(423) => match h.min_expires().ok().flatten() {
                Some(m) => {
                    self.expires = Some(m);
                    self.sent_credentials = false;
                    AuthOutcome::Send(self.request(None))
                }
                None => AuthOutcome::Failed(423),
            },
            Some(c) => AuthOutcome::Failed(c),
            None => AuthOutcome::Failed(0),
        }
    }
}

/// A connection of the relay, as the caller numbers them.
pub type ConnId = u64;

/// Where an output frame goes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Target {
    /// An existing connection.
    Conn(ConnId),
    /// The next hop by URI: the caller reuses a connection to that authority or opens one
    /// (RFC 4975 §8.5).
    Uri(UriBuf),
}

/// A frame (or part of a streamed frame) to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayOutput {
    /// Where.
    pub target: Target,
    /// What (for a streamed chunk: the head with an empty tail, then body parts, then the tail).
    pub frame: Transmit,
}

/// Relay settings.
#[derive(Debug, Clone)]
pub struct RelayConfig {
    /// The relay's URI without session-id (`msrps://relay.example.com:2855;tcp`).
    pub uri: UriBuf,
    /// The digest realm.
    pub realm: String,
    /// Expires granted when the AUTH has none (RFC 4976 §5.1).
    pub default_expires: u32,
    /// Smallest Expires accepted: below it, 423 with Min-Expires.
    pub min_expires: u32,
    /// Largest Expires granted: above it, this value is granted instead.
    pub max_expires: u32,
}

impl RelayConfig {
    /// Defaults: 1800 s granted, 60 s minimum, 3600 s maximum.
    pub fn new(uri: UriBuf, realm: &str) -> RelayConfig {
        RelayConfig {
            uri,
            realm: realm.into(),
            default_expires: 1800,
            min_expires: 60,
            max_expires: 3600,
        }
    }
}

#[derive(Debug)]
struct Binding {
    conn: ConnId,
    /// The client's own URI (the From-Path of its AUTH): frames for it go on `conn`.
    client: UriBuf,
    expires: Instant,
}

#[derive(Debug)]
struct Forwarded {
    /// The connection the request came from (the previous hop).
    from_conn: ConnId,
    /// Where a failure REPORT goes: the From-Path the sender used (without our URI).
    report_to: String,
    message_id: Option<String>,
    byte_range: Option<String>,
    report: bool,
}

/// Is `u` the endpoint of a binding's client URI `client`: same scheme, host, port and
/// transport, any session-id. A client runs many sessions (RFC 4975 §5.4, one URI each) over
/// the connection it authenticated on, and the Use-Path session-id before `u` already named
/// that binding (RFC 4976 §6.2).
fn same_endpoint(u: &Uri<'_>, client: &Uri<'_>) -> bool {
    u.is_secure() == client.is_secure()
        && u.port_or_default() == client.port_or_default()
        && u.transport().eq_ignore_ascii_case(client.transport())
        && (u.host() == client.host() || u.host_str().eq_ignore_ascii_case(client.host_str()))
}

/// A streamed chunk being passed through: where its parts go.
#[derive(Debug)]
struct Stream {
    target: Option<Target>,
    tid: String,
}

/// The relay core (RFC 4976 §6): authenticates clients, hands out Use-Path URIs, and forwards
/// SEND and REPORT requests hop by hop, answering each hop itself.
#[derive(Debug)]
pub struct Relay {
    cfg: RelayConfig,
    users: HashMap<String, String>,
    seed: u64,
    seq: u64,
    nonces: VecDeque<String>,
    bindings: HashMap<String, Binding>,
    forwarded: HashMap<String, Forwarded>,
    streams: HashMap<ConnId, Stream>,
    out: VecDeque<RelayOutput>,
    /// A target in the middle of a streamed chunk from this connection.
    busy: HashMap<Target, ConnId>,
    /// Output held back while its target is busy with another connection's chunk.
    held: HashMap<Target, VecDeque<Held>>,
}

#[derive(Debug)]
struct Held {
    src: ConnId,
    out: RelayOutput,
    starts: bool,
    ends: bool,
}

impl Relay {
    /// A relay. `seed` feeds nonces, session-ids and transaction ids (give it randomness).
    pub fn new(cfg: RelayConfig, seed: u64) -> Relay {
        Relay {
            cfg,
            users: HashMap::new(),
            seed: splitmix(seed),
            seq: 0,
            nonces: VecDeque::new(),
            bindings: HashMap::new(),
            forwarded: HashMap::new(),
            streams: HashMap::new(),
            out: VecDeque::new(),
            busy: HashMap::new(),
            held: HashMap::new(),
        }
    }

    /// Adds a user who may AUTH.
    pub fn add_user(&mut self, user: &str, password: &str) {
        self.users.insert(user.into(), password.into());
    }

    fn rand(&mut self) -> u64 {
        self.seq += 1;
        splitmix(self.seed ^ self.seq)
    }

    fn id(&mut self) -> String {
        let r = self.rand();
        format!("{:x}{}", r & 0xffff_ffff, self.seq)
    }

    /// The URI of one of our Use-Paths.
    fn use_uri(&self, sid: &str) -> String {
        let u = self.cfg.uri.uri();
        let scheme = if u.is_secure() { "msrps" } else { "msrp" };
        let port = u.port().map(|p| format!(":{p}")).unwrap_or_default();
        format!("{scheme}://{}{port}/{sid};{}", u.host_str(), u.transport())
    }

    /// Is `u` ours: the relay URI itself, or a live Use-Path session-id? Returns the session-id.
    fn ours<'u>(&self, u: &Uri<'u>) -> Option<Option<&'u str>> {
        let me = self.cfg.uri.uri();
        let same_authority =
            u.host() == me.host() || u.host_str().eq_ignore_ascii_case(me.host_str());
        if !same_authority || u.port_or_default() != me.port_or_default() {
            return None;
        }
        match u.session_id() {
            None => Some(None),
            Some(s) if self.bindings.contains_key(s) => Some(Some(s)),
            Some(_) => None,
        }
    }

    /// Queues output from `src`, keeping a streamed chunk's parts together on its target: while a
    /// target is in the middle of one connection's chunk, other connections' frames wait.
    fn emit(&mut self, src: ConnId, target: Target, frame: Transmit, starts: bool, ends: bool) {
        let owner = self.busy.get(&target).copied();
        let held_any = self.held.get(&target).is_some_and(|h| !h.is_empty());
        if owner.is_some_and(|o| o != src) || (owner.is_none() && held_any) {
            self.held
                .entry(target.clone())
                .or_default()
                .push_back(Held {
                    src,
                    out: RelayOutput { target, frame },
                    starts,
                    ends,
                });
            return;
        }
        self.out.push_back(RelayOutput {
            target: target.clone(),
            frame,
        });
        if starts && !ends {
            self.busy.insert(target, src);
        } else if ends {
            self.busy.remove(&target);
            self.release(&target);
        }
    }

    /// Moves held output of a target that became free to the output queue.
    fn release(&mut self, target: &Target) {
        let Some(q) = self.held.get_mut(target) else {
            return;
        };
        loop {
            let owner = self.busy.get(target).copied();
            let idx = match owner {
                Some(o) => q.iter().position(|h| h.src == o),
                None => (!q.is_empty()).then_some(0),
            };
            let Some(h) = idx.and_then(|i| q.remove(i)) else {
                break;
            };
            self.out.push_back(h.out);
            if h.starts && !h.ends {
                self.busy.insert(target.clone(), h.src);
            } else if h.ends {
                self.busy.remove(target);
            }
        }
        if q.is_empty() {
            self.held.remove(target);
        }
    }

    /// The next frame to write.
    pub fn poll_output(&mut self) -> Option<RelayOutput> {
        self.out.pop_front()
    }

    /// Drops expired Use-Path bindings.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.bindings.retain(|_, b| b.expires > now);
    }

    /// The earliest binding expiry.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.bindings.values().map(|b| b.expires).min()
    }

    /// Live Use-Path bindings.
    pub fn bindings(&self) -> usize {
        self.bindings.len()
    }

    /// A connection closed: its bindings and streams go.
    pub fn connection_closed(&mut self, conn: ConnId) {
        self.bindings.retain(|_, b| b.conn != conn);
        self.streams.remove(&conn);
    }

    fn respond(&mut self, conn: ConnId, h: &Head, code: u16, extra: &[(&str, String)]) {
        let to = h
            .from_path()
            .ok()
            .and_then(|p| p.first().map(|u| u.as_str().to_owned()));
        let Some(to) = to else { return };
        let from = h
            .to_path()
            .ok()
            .and_then(|p| p.first().map(|u| u.as_str().to_owned()))
            .unwrap_or_else(|| self.cfg.uri.as_str().to_owned());
        let mut b = FrameBuilder::response(h.transaction_id(), code, None)
            .to_path(&to)
            .from_path(&from);
        for (n, v) in extra {
            b = b.header(n, v);
        }
        let frame = Transmit {
            head: b.head_bytes(),
            body: Bytes::new(),
            tail: b.tail_bytes(),
        };
        self.emit(conn, Target::Conn(conn), frame, true, true);
    }

    /// Handles one framer event from connection `conn` (streamed chunks pass through).
    pub fn handle_event(&mut self, now: Instant, conn: ConnId, ev: Event) {
        match ev {
            Event::Frame(f) => self.handle_frame(now, conn, f),
            Event::Start(h) => {
                let routed = self.route(conn, &h);
                let target = routed.map(|(t, tid, head)| {
                    let frame = Transmit {
                        head,
                        body: Bytes::new(),
                        tail: Bytes::new(),
                    };
                    self.emit(conn, t.clone(), frame, true, false);
                    (t, tid)
                });
                match target {
                    Some((t, tid)) => self.streams.insert(
                        conn,
                        Stream {
                            target: Some(t),
                            tid,
                        },
                    ),
                    None => self.streams.insert(
                        conn,
                        Stream {
                            target: None,
                            tid: String::new(),
                        },
                    ),
                };
            }
            Event::Data(d) => {
                if let Some(Stream {
                    target: Some(t), ..
                }) = self.streams.get(&conn)
                {
                    let t = t.clone();
                    let frame = Transmit {
                        head: Bytes::new(),
                        body: d,
                        tail: Bytes::new(),
                    };
                    self.emit(conn, t, frame, false, false);
                }
            }
            Event::End(fl) => {
                if let Some(Stream {
                    target: Some(t),
                    tid,
                }) = self.streams.remove(&conn)
                {
                    let frame = Transmit {
                        head: Bytes::new(),
                        body: Bytes::new(),
                        tail: end_line(&tid, fl, true),
                    };
                    self.emit(conn, t, frame, false, true);
                }
            }
        }
    }

    /// Handles one whole frame from connection `conn`.
    pub fn handle_frame(&mut self, now: Instant, conn: ConnId, f: Frame) {
        let Frame { head, body, flag } = f;
        if !head.is_request() {
            self.on_response(&head);
            return;
        }
        if head.method() == Some(Method::Auth) {
            self.on_auth(now, conn, &head);
            return;
        }
        if let Some((t, tid, h)) = self.route(conn, &head) {
            let tail = end_line(&tid, flag, head.has_content_stuff());
            let frame = Transmit {
                head: h,
                body,
                tail,
            };
            self.emit(conn, t, frame, true, true);
        }
    }

    fn on_auth(&mut self, now: Instant, conn: ConnId, h: &Head) {
        if let Err(e) = h.check() {
            self.respond(conn, h, e.status(), &[]);
            return;
        }
        let to_ok = h
            .to_path()
            .map(|p| p.len() == 1 && self.ours(&p[0]) == Some(None))
            .unwrap_or(false);
        if !to_ok {
            self.respond(conn, h, 481, &[]);
            return;
        }
        let to_uri = h
            .to_path()
            .map(|p| p[0].as_str().to_owned())
            .unwrap_or_default();
        let authorized = match h.authorization() {
            Ok(Some(a)) if a.scheme.eq_ignore_ascii_case("Digest") => {
                let (Some(user), Some(nonce), Some(resp)) =
                    (a.get("username"), a.get("nonce"), a.get("response"))
                else {
                    self.respond(conn, h, 400, &[]);
                    return;
                };
                let known_nonce = self.nonces.iter().any(|n| n == nonce);
                let realm_ok = a.get("realm") == Some(self.cfg.realm.as_str());
                let uri = a.get("uri").unwrap_or(&to_uri);
                let qop_ok = a.get("qop").is_some_and(|q| q.eq_ignore_ascii_case("auth"));
                match self.users.get(user) {
                    Some(pw) if known_nonce && realm_ok && qop_ok => {
                        let expect = digest_response(
                            user,
                            &self.cfg.realm,
                            pw,
                            nonce,
                            a.get("nc").unwrap_or(""),
                            a.get("cnonce").unwrap_or(""),
                            uri,
                        );
                        expect.eq_ignore_ascii_case(resp)
                    }
                    _ => false,
                }
            }
            _ => false,
        };
        if !authorized {
            let nonce = format!("{:016x}{:016x}", self.rand(), self.rand());
            self.nonces.push_back(nonce.clone());
            if self.nonces.len() > 1024 {
                self.nonces.pop_front();
            }
            let ch = format!(
                "Digest realm=\"{}\", qop=\"auth\", nonce=\"{nonce}\"",
                self.cfg.realm
            );
            self.respond(conn, h, 401, &[(name::WWW_AUTHENTICATE, ch)]);
            return;
        }
        let expires = match h.expires() {
            Ok(Some(e)) if e < self.cfg.min_expires => {
                let m = self.cfg.min_expires.to_string();
                self.respond(conn, h, 423, &[(name::MIN_EXPIRES, m)]);
                return;
            }
            Ok(Some(e)) => e.min(self.cfg.max_expires),
            _ => self.cfg.default_expires,
        };
        let client = h
            .from_path()
            .map(|p| p[0].to_owned_uri())
            .expect("checked above");
        // a refresh (RFC 4976 §5.2: the client AUTHs again before its binding expires, on the
        // same connection): the same Use-Path, a new expiry, so the paths it advertised hold
        let known = self
            .bindings
            .iter()
            .find(|(_, b)| b.conn == conn && b.client.uri().equivalent(&client.uri()))
            .map(|(sid, _)| sid.clone());
        let sid = known.unwrap_or_else(|| self.id());
        let up = self.use_uri(&sid);
        self.bindings.insert(
            sid,
            Binding {
                conn,
                client,
                expires: now + Duration::from_secs(u64::from(expires)),
            },
        );
        self.respond(
            conn,
            h,
            200,
            &[(name::USE_PATH, up), (name::EXPIRES, expires.to_string())],
        );
    }

    /// Decides where a SEND/REPORT goes, answers the previous hop, and queues the rewritten head.
    /// Returns the target for the body and tail, and the new transaction id.
    fn route(&mut self, conn: ConnId, h: &Head) -> Option<(Target, String, Bytes)> {
        let method = h.method().unwrap_or(Method::Unknown(""));
        let is_report = method == Method::Report;
        let fr = h.failure_report().unwrap_or_default();
        let may_answer = !is_report && fr != FailureReport::No;
        if let Err(e) = h.check() {
            if may_answer {
                self.respond(conn, h, e.status(), &[]);
            }
            return None;
        }
        if !matches!(method, Method::Send | Method::Report) {
            if may_answer {
                self.respond(conn, h, 501, &[]);
            }
            return None;
        }
        let (Ok(to), Ok(from)) = (h.to_path(), h.from_path()) else {
            return None;
        };
        // RFC 4976 §6.2: the first To-Path URI must be ours, and something must follow it
        if to.len() < 2 || self.ours(&to[0]).is_none() {
            if may_answer {
                self.respond(conn, h, 481, &[]);
            }
            return None;
        }
        // consume every leading URI of ours (two clients of this relay talk through it twice)
        let mut i = 0;
        while i + 2 < to.len() && matches!(self.ours(&to[i + 1]), Some(Some(_))) {
            i += 1;
        }
        let next = &to[i + 1];
        let binding = match self.ours(&to[i]) {
            Some(Some(sid)) => self.bindings.get(sid),
            _ => None,
        };
        let target = match binding {
            // toward the client: any of its URIs, unless the frame comes from the client
            // itself (then it goes out, even to a URI of the same authority)
            Some(b)
                if next.equivalent(&b.client.uri())
                    || (b.conn != conn && same_endpoint(next, &b.client.uri())) =>
            {
                Target::Conn(b.conn)
            }
            _ => match self.ours(next) {
                Some(_) => {
                    if may_answer {
                        self.respond(conn, h, 481, &[]);
                    }
                    return None;
                }
                None => Target::Uri(next.to_owned_uri()),
            },
        };
        // rewrite: drop our URIs from To-Path, put them in front of From-Path (RFC 4976 §6.2)
        let new_to: Vec<&str> = to[i + 1..].iter().map(|u| u.as_str()).collect();
        let mut new_from: Vec<&str> = to[..=i].iter().rev().map(|u| u.as_str()).collect();
        new_from.extend(from.iter().map(|u| u.as_str()));
        let tid = self.id();
        let mut b = FrameBuilder::request(&tid, method.as_str())
            .to_path(&new_to.join(" "))
            .from_path(&new_from.join(" "));
        let mut ct = None;
        for (n, v) in h.headers().skip(2) {
            if n.eq_ignore_ascii_case(name::CONTENT_TYPE) {
                ct = Some(v);
            } else {
                b = b.header(n, v);
            }
        }
        let mut head = b.head_bytes().to_vec();
        if h.has_content_stuff() {
            head.extend_from_slice(b"Content-Type: ");
            head.extend_from_slice(ct.unwrap_or("application/octet-stream").as_bytes());
            head.extend_from_slice(b"\r\n\r\n");
        }
        if !is_report {
            self.forwarded.insert(
                tid.clone(),
                Forwarded {
                    from_conn: conn,
                    report_to: from
                        .iter()
                        .map(|u| u.as_str())
                        .collect::<Vec<_>>()
                        .join(" "),
                    message_id: h.message_id().map(str::to_owned),
                    byte_range: h.header(name::BYTE_RANGE).map(str::to_owned),
                    report: fr != FailureReport::No,
                },
            );
            if self.forwarded.len() > 65536 {
                self.forwarded.clear();
            }
            if fr == FailureReport::Yes {
                self.respond(conn, h, 200, &[]);
            }
        }
        Some((target, tid, Bytes::from(head)))
    }

    /// A response from the next hop: hop-by-hop, consumed here. An error becomes a failure REPORT
    /// toward the sender when it asked for one (RFC 4976 §6.4).
    fn on_response(&mut self, h: &Head) {
        let Some(f) = self.forwarded.remove(h.transaction_id()) else {
            return;
        };
        let code = h.status().unwrap_or(0);
        if code == 200 || !f.report {
            return;
        }
        let tid = self.id();
        let mut b = FrameBuilder::request(&tid, "REPORT")
            .to_path(&f.report_to)
            .from_path(self.cfg.uri.as_str());
        if let Some(m) = &f.message_id {
            b = b.header(name::MESSAGE_ID, m);
        }
        if let Some(r) = &f.byte_range {
            b = b.header(name::BYTE_RANGE, r);
        }
        b = b.header(
            name::STATUS,
            &format!("000 {code:03} {}", crate::message::status_comment(code)),
        );
        let frame = Transmit {
            head: b.head_bytes(),
            body: Bytes::new(),
            tail: b.tail_bytes(),
        };
        self.emit(f.from_conn, Target::Conn(f.from_conn), frame, true, true);
    }
}
