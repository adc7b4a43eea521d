//! The MSRP user agent behind `msrp_chat`: a SIP UA on the ims-net [`Endpoint`] that sets up
//! `m=message … TCP/MSRP` sessions (RFC 4975 §8, RFC 5547 for files) and an
//! [`MsrpConnection`] per session. The tests include this file too.

use bytes::Bytes;
use ims::msrp::headers::FailureReport;
use ims::msrp::session::{Config as MsrpConfig, Outgoing, Session, SessionEvent};
use ims::msrp::UriBuf;
use ims::net::msrp::{ConnConfig, ConnEvent, MsrpConnection};
use ims::net::sip::{Endpoint, EndpointConfig, Incoming};
use ims::sdp::{MediaType, Session as Sdp};
use ims::txn::dialog::DialogId;
use ims::txn::ua::{Answer, EndReason, InviteParams, UaEvent};
use ims::txn::{Remote, TxnId};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;
use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;
use tokio::time::Instant;

/// Settings shared by every mode.
#[derive(Debug, Clone)]
pub(crate) struct Opts {
    /// Local SIP address (port 0: any).
    pub(crate) sip: SocketAddr,
    /// Local MSRP listen address (port 0: any).
    pub(crate) msrp: SocketAddr,
    /// The host our MSRP URIs name in `a=path` (a host name such as `localhost`, resolved by
    /// the peer); `None`: the IP literal 127.0.0.1.
    pub(crate) msrp_host: Option<String>,
    /// User part of our SIP URI.
    pub(crate) user: String,
    /// Domain of our SIP URI.
    pub(crate) domain: String,
    /// Where INVITEs go (the IM server / P-CSCF); `None`: the Request-URI's host.
    pub(crate) proxy: Option<SocketAddr>,
    /// Largest MSRP chunk body we send.
    pub(crate) chunk_size: usize,
    /// Largest message we accept (`a=max-size`).
    pub(crate) max_size: u64,
    /// Give up after this long.
    pub(crate) timeout: Duration,
    /// `msrps:` (RFC 4975 §14, feature `tls`): our certificate. Offers and answers are then
    /// `TCP/TLS/MSRP` with its `a=fingerprint`, and the peer's certificate must have the
    /// fingerprint of the peer's SDP.
    #[cfg(feature = "tls")]
    pub(crate) tls: Option<ims::net::tls::Identity>,
    /// RFC 4976: MSRP through this relay (plain TCP). Each session opens its own connection to
    /// it and authenticates (AUTH, digest); `a=path` is then the relay's Use-Path and our URI,
    /// what we send carries the Use-Path before the peer's path, and the peer's frames come
    /// back on that connection (we never connect to the peer or accept from it).
    pub(crate) relay: Option<RelayOpts>,
}

/// An MSRP relay to go through ([`Opts::relay`]).
#[derive(Debug, Clone)]
pub(crate) struct RelayOpts {
    /// Its URI without session-id, host as an IP literal (`msrp://192.0.2.9:2855;tcp`).
    pub(crate) uri: String,
    /// Digest user name.
    pub(crate) user: String,
    /// Digest password.
    pub(crate) password: String,
}

impl Default for Opts {
    fn default() -> Self {
        Opts {
            sip: SocketAddr::from(([127, 0, 0, 1], 0)),
            msrp: SocketAddr::from(([127, 0, 0, 1], 0)),
            msrp_host: None,
            user: "alice".into(),
            domain: "ims.example".into(),
            proxy: None,
            chunk_size: 2048,
            max_size: 1 << 32,
            timeout: Duration::from_secs(60),
            #[cfg(feature = "tls")]
            tls: None,
            relay: None,
        }
    }
}

/// What the offer is for.
#[derive(Debug, Clone)]
pub(crate) enum Offer {
    /// Session-mode chat (TS 24.247 §5.3).
    Chat,
    /// One large message (TS 24.247 §5.2).
    Large,
    /// An RFC 5547 file push.
    File {
        /// file-selector name.
        name: String,
        /// Its size.
        size: u64,
        /// Its media type.
        content_type: String,
    },
}

/// A live session.
#[derive(Debug)]
pub(crate) struct Call {
    /// The SIP dialog.
    pub(crate) dialog: DialogId,
    /// The MSRP connection.
    pub(crate) conn: MsrpConnection,
    /// Our MSRP session-id.
    pub(crate) sid: String,
    /// The peer's SDP.
    pub(crate) peer_sdp: String,
    /// For an answered INVITE: its Via hops and P-Asserted-Identity (which proxies and
    /// servers it crossed, and whom the network asserted).
    pub(crate) received: Option<(usize, Option<String>)>,
}

/// The user agent.
pub(crate) struct Ua {
    /// The SIP endpoint.
    pub(crate) ep: Endpoint,
    incoming: Incoming,
    listener: TcpListener,
    opts: Opts,
    seq: u64,
    /// Page-mode MESSAGEs received (answered 200) while waiting for sessions.
    pub(crate) pages: Vec<ims::sip::OwnedMessage>,
}

fn rand_id() -> String {
    use std::collections::hash_map::RandomState;
    use std::hash::{BuildHasher, Hasher};
    let mut h = RandomState::new().build_hasher();
    h.write_u64(u64::from(std::process::id()));
    format!("{:016x}", h.finish())
}

fn msrp_media_path(sdp: &Sdp<'_>) -> Option<Vec<String>> {
    sdp.media.iter().find_map(|m| {
        (m.media_type() == MediaType::Message && !m.is_rejected())
            .then(|| m.msrp_path().map(|p| p.iter().map(str::to_owned).collect()))
            .flatten()
    })
}

/// Connection settings for a session of this kind. `MsrpConnection::send` waits for the
/// connection task, which itself waits while the event channel is full: an application that
/// sends while it does not read events (chat echo, 1000 queued messages) would deadlock with a
/// small channel. Chat and large-mode sessions therefore get a deep event channel (events are
/// small and read promptly); a file transfer keeps the default so that received file data
/// back-pressures the sender.
fn conn_config(kind: &Offer) -> ConnConfig {
    match kind {
        Offer::File { .. } => ConnConfig::default(),
        Offer::Chat | Offer::Large => ConnConfig {
            event_capacity: 1 << 20,
            ..ConnConfig::default()
        },
    }
}

/// The MSRP path the peer's SDP names (where our frames go: the peer itself, or a relay or
/// anchor in between).
fn peer_path(sdp: &str) -> Vec<String> {
    Sdp::parse_str(sdp)
        .ok()
        .and_then(|s| msrp_media_path(&s))
        .unwrap_or_default()
}

fn offer_is_file(sdp: &str) -> bool {
    sdp.contains("a=file-selector")
}

fn hex(d: &[u8]) -> String {
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// The SHA-256 of `data` in hex.
pub(crate) fn sha256_hex(data: &[u8]) -> String {
    hex(&Sha256::digest(data))
}

fn file_name_ok(n: &str) -> bool {
    !n.is_empty() && !n.contains(['/', '\\']) && n != "." && n != ".."
}

/// What a `listen` run does with each session.
#[derive(Debug, Clone, Default)]
pub(crate) struct ListenOpts {
    /// Refuse INVITEs with this status (486 Busy Here…).
    pub(crate) busy: Option<u16>,
    /// Send every text message back.
    pub(crate) echo: bool,
    /// Write received files (and large messages) here.
    pub(crate) out_dir: Option<PathBuf>,
    /// Stop after this many sessions.
    pub(crate) sessions: Option<usize>,
    /// Send BYE after this many received messages.
    pub(crate) bye_after: Option<usize>,
}

impl Ua {
    /// Binds SIP and the MSRP listener.
    pub(crate) async fn bind(opts: Opts) -> Result<Ua, String> {
        let (ep, incoming) = Endpoint::bind(EndpointConfig {
            addr: opts.sip,
            user: opts.user.clone(),
            ..EndpointConfig::default()
        })
        .await
        .map_err(|e| e.to_string())?;
        let listener = TcpListener::bind(opts.msrp)
            .await
            .map_err(|e| e.to_string())?;
        Ok(Ua {
            ep,
            incoming,
            listener,
            opts,
            seq: 0,
            pages: Vec::new(),
        })
    }

    /// Our SIP address.
    pub(crate) fn sip_addr(&self) -> SocketAddr {
        self.ep.local_addr()
    }

    /// Our SIP URI (what peers put in a Request-URI to reach us directly).
    pub(crate) fn sip_uri(&self) -> String {
        format!("sip:{}@{}", self.opts.user, self.ep.local_addr())
    }

    pub(crate) fn msrp_port(&self) -> u16 {
        self.listener.local_addr().map(|a| a.port()).unwrap_or(9)
    }

    fn new_sid(&mut self) -> String {
        self.seq += 1;
        format!("{}s{}", &rand_id()[..10], self.seq)
    }

    /// Whether we use `msrps:` (a certificate is configured).
    #[cfg(feature = "tls")]
    fn uses_tls(&self) -> bool {
        self.tls().is_some()
    }

    /// Whether we use `msrps:`: never without the `tls` feature.
    #[cfg(not(feature = "tls"))]
    fn uses_tls(&self) -> bool {
        false
    }

    /// Our certificate when we use `msrps:`.
    #[cfg(feature = "tls")]
    fn tls(&self) -> Option<&ims::net::tls::Identity> {
        self.opts.tls.as_ref()
    }

    fn local_uri(&self, sid: &str) -> String {
        let host = self.opts.msrp_host.as_deref().unwrap_or("127.0.0.1");
        #[cfg(feature = "tls")]
        if self.tls().is_some() {
            return format!("msrps://{host}:{}/{sid};tcp", self.msrp_port());
        }
        format!("msrp://{host}:{}/{sid};tcp", self.msrp_port())
    }

    fn sdp_head(&self) -> String {
        #[allow(unused_mut)]
        let (mut proto, mut fingerprint) = ("TCP/MSRP", String::new());
        #[cfg(feature = "tls")]
        if let Some(id) = self.tls() {
            proto = "TCP/TLS/MSRP";
            fingerprint = format!("a=fingerprint:{}\r\n", id.fingerprint());
        }
        format!(
            "v=0\r\no={} {} 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
m=message {} {proto} *\r\n{fingerprint}",
            self.opts.user,
            self.seq,
            self.msrp_port()
        )
    }

    /// The TLS settings toward a peer whose SDP is `sdp` (RFC 4975 §14.1: its certificate must
    /// have the SDP's `a=fingerprint`); `client_auth`: as the passive end, require the peer's
    /// certificate.
    #[cfg(feature = "tls")]
    fn tls_toward(&self, sdp: &str, client_auth: bool) -> Result<ims::net::tls::TlsConfig, String> {
        use ims::net::tls::{ClientAuth, Fingerprint, TlsConfig, Trust};
        let id = self.tls().ok_or("no certificate")?;
        let s = Sdp::parse_str(sdp).map_err(|e| e.to_string())?;
        let fp = s
            .media
            .iter()
            .find(|m| m.media_type() == MediaType::Message)
            .and_then(|m| m.attribute("fingerprint"))
            .or_else(|| s.attribute("fingerprint"))
            .and_then(|a| a.value)
            .ok_or("the peer's SDP has no a=fingerprint")?;
        let fp = Fingerprint::parse(fp).map_err(|e| e.to_string())?;
        let auth = if client_auth {
            ClientAuth::Required
        } else {
            ClientAuth::None
        };
        TlsConfig::new(Some(id.clone()), Trust::fingerprints([fp]), auth).map_err(|e| e.to_string())
    }

    /// `a=path`: the relay's Use-Path (`via`, empty without a relay), then our URI.
    fn path_attr(&self, sid: &str, via: &[String]) -> String {
        via.iter()
            .cloned()
            .chain([self.local_uri(sid)])
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// With [`Opts::relay`]: a connection to the relay, authenticated for our URI of session
    /// `sid` (RFC 4976 §5), and the Use-Path it granted. `None` without a relay.
    async fn relay_link(
        &self,
        sid: &str,
    ) -> Result<Option<(tokio::net::TcpStream, Vec<String>)>, String> {
        let Some(r) = &self.opts.relay else {
            return Ok(None);
        };
        let relay = UriBuf::parse(&r.uri).map_err(|e| format!("--relay {}: {e}", r.uri))?;
        let addr = {
            let u = relay.uri();
            format!("{}:{}", u.host_str(), u.port_or_default())
        };
        let mut s = tokio::net::TcpStream::connect(&addr)
            .await
            .map_err(|e| format!("MSRP relay {addr}: {e}"))?;
        s.set_nodelay(true).map_err(|e| e.to_string())?;
        let local = UriBuf::parse(&self.local_uri(sid)).map_err(|e| e.to_string())?;
        let seed = u64::from_str_radix(&rand_id()[..15], 16).unwrap_or(7);
        let mut auth =
            ims::msrp::relay::AuthClient::new(local, relay, &r.user, &r.password, None, seed);
        let (use_path, _expires) = ims::net::msrp::relay_auth(&mut s, &mut auth, self.opts.timeout)
            .await
            .map_err(|e| format!("MSRP relay AUTH: {e}"))?;
        Ok(Some((
            s,
            use_path.iter().map(|u| u.as_str().to_owned()).collect(),
        )))
    }

    fn offer(&self, sid: &str, kind: &Offer, via: &[String]) -> String {
        let mut s = self.sdp_head();
        match kind {
            Offer::Chat | Offer::Large => {
                s += "a=accept-types:text/plain message/cpim application/octet-stream\r\n";
            }
            Offer::File {
                name,
                size,
                content_type,
            } => {
                s += &format!("a=accept-types:{content_type}\r\n");
                s += "a=sendonly\r\n";
                s +=
                    &format!("a=file-selector:name:\"{name}\" type:{content_type} size:{size}\r\n");
                s += &format!("a=file-transfer-id:{}\r\n", &rand_id()[..12]);
                s += "a=file-disposition:attachment\r\n";
            }
        }
        s += &format!(
            "a=path:{}\r\na=max-size:{}\r\n",
            self.path_attr(sid, via),
            self.opts.max_size
        );
        s
    }

    fn answer_sdp(&self, sid: &str, offer: &Sdp<'_>, via: &[String]) -> String {
        let mut s = self.sdp_head();
        let m = offer
            .media
            .iter()
            .find(|m| m.media_type() == MediaType::Message);
        let accept = m
            .and_then(|m| m.accept_types())
            .map(|a| a.0.to_owned())
            .unwrap_or_else(|| "*".into());
        s += &format!("a=accept-types:{accept}\r\n");
        if let Some(m) = m {
            if m.has_attribute("sendonly") {
                s += "a=recvonly\r\n";
            }
            for n in ["file-selector", "file-transfer-id", "file-disposition"] {
                if let Some(v) = m.attribute(n).and_then(|a| a.value) {
                    s += &format!("a={n}:{v}\r\n");
                }
            }
        }
        s += &format!(
            "a=path:{}\r\na=max-size:{}\r\n",
            self.path_attr(sid, via),
            self.opts.max_size
        );
        s
    }

    fn session(&self, sid: &str, peer_path: &[String]) -> Result<Session, String> {
        let local = UriBuf::parse(&self.local_uri(sid)).map_err(|e| e.to_string())?;
        let remote = peer_path
            .iter()
            .map(|u| UriBuf::parse(u).map_err(|e| format!("peer path {u}: {e}")))
            .collect::<Result<Vec<_>, _>>()?;
        let mut cfg = MsrpConfig::new(local, remote);
        cfg.chunk_size = self.opts.chunk_size;
        cfg.max_message_size = self.opts.max_size;
        let seed = u64::from_str_radix(&rand_id()[..15], 16).unwrap_or(7);
        Ok(Session::new(cfg, seed))
    }

    /// Sends an INVITE to `target` and, once answered, connects MSRP (the offerer connects,
    /// RFC 4975 §5.4). Err carries the final status for a refused INVITE (`"486"`).
    pub(crate) async fn call(&mut self, target: &str, kind: Offer) -> Result<Call, String> {
        let sid = self.new_sid();
        let link = self.relay_link(&sid).await?;
        let via = link.as_ref().map(|l| l.1.clone()).unwrap_or_default();
        let offer = self.offer(&sid, &kind, &via);
        let remote = match self.opts.proxy {
            Some(p) => Remote::udp(p),
            None => *self
                .ep
                .locate(target)
                .await
                .map_err(|e| e.to_string())?
                .first()
                .ok_or("no SIP target")?,
        };
        let mut inv = self
            .ep
            .invite(InviteParams {
                request_uri: target.to_owned(),
                from: format!("<sip:{}@{}>", self.opts.user, self.opts.domain),
                to: format!("<{target}>"),
                remote,
                headers: vec![],
                body: Some(("application/sdp".into(), offer.into_bytes())),
            })
            .await
            .map_err(|e| e.to_string())?;
        let ok = loop {
            let r = inv
                .next()
                .await
                .ok_or("INVITE: no final response")?
                .map_err(|e| format!("INVITE: {e}"))?;
            let code = r.as_message().status().unwrap_or(0);
            if code >= 300 {
                return Err(code.to_string());
            }
            if code >= 200 {
                break r;
            }
        };
        let m = ok.as_message();
        let dialog = DialogId::of_received_response(&m).ok_or("2xx without tags")?;
        let body = String::from_utf8_lossy(m.body()).into_owned();
        let peer = Sdp::parse_str(&body).map_err(|e| format!("answer SDP: {e}"))?;
        let path = msrp_media_path(&peer).ok_or("no MSRP path in the answer")?;
        let first = ims::msrp::Uri::parse(&path[0]).map_err(|e| e.to_string())?;
        let addr = format!("{}:{}", first.host_str(), first.port_or_default());
        if let Some((stream, via)) = link {
            // through our relay: its Use-Path, then the peer's path (RFC 4976 §6.1)
            let to: Vec<String> = via.into_iter().chain(path).collect();
            let session = self.session(&sid, &to)?;
            let conn =
                MsrpConnection::spawn_with_sessions(stream, conn_config(&kind), vec![session]);
            drop(peer);
            return Ok(Call {
                dialog,
                conn,
                sid,
                peer_sdp: body,
                received: None,
            });
        }
        let session = self.session(&sid, &path)?;
        #[cfg(feature = "tls")]
        let conn = if self.tls().is_some() {
            let tls = self.tls_toward(&body, false)?;
            MsrpConnection::connect_tls(addr, conn_config(&kind), &tls, None)
                .await
                .map_err(|e| format!("MSRP TLS connect: {e}"))?
        } else {
            MsrpConnection::connect(addr, conn_config(&kind))
                .await
                .map_err(|e| format!("MSRP connect: {e}"))?
        };
        #[cfg(not(feature = "tls"))]
        let conn = MsrpConnection::connect(addr, conn_config(&kind))
            .await
            .map_err(|e| format!("MSRP connect: {e}"))?;
        conn.add_session(session).await.map_err(|e| e.to_string())?;
        drop(peer);
        Ok(Call {
            dialog,
            conn,
            sid,
            peer_sdp: body,
            received: None,
        })
    }

    /// Waits for an INVITE and answers it (or refuses it with `busy`). `Ok(None)`: refused.
    pub(crate) async fn accept(&mut self, busy: Option<u16>) -> Result<Option<Call>, String> {
        let (txn, msg) = loop {
            match self.incoming.recv().await.ok_or("SIP endpoint stopped")? {
                UaEvent::IncomingInvite { txn, msg, .. } => {
                    // we answer in the offered transport (RFC 3264 §6) or not at all: with a
                    // certificate only TCP/TLS/MSRP (msrps), without one only TCP/MSRP
                    let offered_tls = Sdp::parse(msg.as_message().body()).ok().and_then(|s| {
                        s.media
                            .iter()
                            .find(|m| m.media_type() == MediaType::Message && !m.is_rejected())
                            .map(|m| m.proto.eq_ignore_ascii_case("TCP/TLS/MSRP"))
                    });
                    if offered_tls.is_some_and(|t| t != self.uses_tls()) {
                        let why = if self.uses_tls() {
                            "399 msrp_chat \"msrps (TCP/TLS/MSRP) only\""
                        } else {
                            "399 msrp_chat \"TCP/MSRP only\""
                        };
                        let _ = self
                            .ep
                            .respond(txn, Answer::new(488).header("Warning", why))
                            .await;
                        continue;
                    }
                    break (txn, msg);
                }
                UaEvent::IncomingRequest { txn, msg, .. } => {
                    let _ = self.ep.respond(txn, Answer::new(200)).await;
                    self.keep_page(msg);
                }
                _ => {}
            }
        };
        if let Some(code) = busy {
            let _ = self.ep.respond(txn, Answer::new(code)).await;
            return Ok(None);
        }
        self.answer(txn, msg).await.map(Some)
    }

    /// The offerer's MSRP connection to our listener, carrying the session toward `path`.
    async fn accepted(
        &self,
        body: &str,
        kind: &Offer,
        session: Session,
    ) -> Result<MsrpConnection, String> {
        // the offerer connects to us
        let (s, _) = tokio::time::timeout(self.opts.timeout, self.listener.accept())
            .await
            .map_err(|_| "no MSRP connection from the offerer")?
            .map_err(|e| e.to_string())?;
        s.set_nodelay(true).map_err(|e| e.to_string())?;
        #[cfg(feature = "tls")]
        let conn = if self.tls().is_some() {
            let tls = self.tls_toward(body, true)?;
            MsrpConnection::accept_tls(s, conn_config(kind), &tls)
                .await
                .map_err(|e| format!("MSRP TLS accept: {e}"))?
        } else {
            MsrpConnection::spawn(s, conn_config(kind))
        };
        #[cfg(not(feature = "tls"))]
        let conn = {
            let _ = body;
            MsrpConnection::spawn(s, conn_config(kind))
        };
        conn.add_session(session).await.map_err(|e| e.to_string())?;
        Ok(conn)
    }

    async fn answer(&mut self, txn: TxnId, msg: ims::sip::OwnedMessage) -> Result<Call, String> {
        let m = msg.as_message();
        let body = String::from_utf8_lossy(m.body()).into_owned();
        let Ok(offer) = Sdp::parse_str(&body) else {
            let _ = self.ep.respond(txn, Answer::new(488)).await;
            return Err("offer is not SDP".into());
        };
        let Some(path) = msrp_media_path(&offer) else {
            let _ = self.ep.respond(txn, Answer::new(488)).await;
            return Err("no MSRP stream offered".into());
        };
        let sid = self.new_sid();
        let link = match self.relay_link(&sid).await {
            Ok(l) => l,
            Err(e) => {
                let _ = self.ep.respond(txn, Answer::new(500)).await;
                return Err(e);
            }
        };
        let via = link.as_ref().map(|l| l.1.clone()).unwrap_or_default();
        let answer = self.answer_sdp(&sid, &offer, &via);
        let to: Vec<String> = via.iter().cloned().chain(path).collect();
        let session = self.session(&sid, &to)?;
        let mut dialog = None;
        let kind = if offer_is_file(&body) {
            Offer::File {
                name: String::new(),
                size: 0,
                content_type: String::new(),
            }
        } else {
            Offer::Chat
        };
        // through a relay: the session runs on our relay connection from before the answer
        // leaves (the peer's first frame may follow it at once)
        let (relayed, session) = match link {
            Some((stream, _)) => (
                Some(MsrpConnection::spawn_with_sessions(
                    stream,
                    conn_config(&kind),
                    vec![session],
                )),
                None,
            ),
            None => (None, Some(session)),
        };
        self.ep
            .respond(
                txn,
                Answer::new(200).body("application/sdp", answer.clone()),
            )
            .await
            .map_err(|e| e.to_string())?;
        let conn = match (relayed, session) {
            (Some(c), _) => c,
            (None, Some(session)) => self.accepted(&body, &kind, session).await?,
            (None, None) => return Err("no MSRP session".into()),
        };
        // the dialog id: Call-ID, our To tag (from the confirmed dialog), their From tag
        let call_id = m
            .call_id()
            .ok()
            .flatten()
            .map(|c| c.as_str().to_owned())
            .unwrap_or_default();
        let their_tag = m
            .from()
            .ok()
            .flatten()
            .and_then(|f| f.tag().map(str::to_owned))
            .unwrap_or_default();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while dialog.is_none() {
            match tokio::time::timeout_at(deadline, self.incoming.recv()).await {
                Ok(Some(UaEvent::DialogConfirmed(d)))
                | Ok(Some(UaEvent::AckReceived { dialog: d, .. }))
                    if d.call_id == call_id && d.remote_tag == their_tag =>
                {
                    dialog = Some(d)
                }
                Ok(Some(_)) => {}
                _ => return Err("no dialog for the answered INVITE".into()),
            }
        }
        let vias = m
            .headers_named("Via")
            .map(|h| h.value().split(',').count())
            .sum();
        let asserted = m.header_str("P-Asserted-Identity").map(str::to_owned);
        Ok(Call {
            dialog: dialog.expect("set above"),
            conn,
            sid,
            peer_sdp: body,
            received: Some((vias, asserted)),
        })
    }

    fn keep_page(&mut self, msg: ims::sip::OwnedMessage) {
        if msg.as_message().method() == Some(ims::sip::Method::Message) && self.pages.len() < 1000 {
            self.pages.push(msg);
        }
    }

    /// Ends a call with BYE; returns the BYE's status.
    pub(crate) async fn hangup(&self, call: &Call) -> Result<u16, String> {
        let t = self.ep.bye(&call.dialog).await.map_err(|e| e.to_string())?;
        let r = t.final_response().await.map_err(|e| e.to_string())?;
        call.conn.close().await;
        Ok(r.as_message().status().unwrap_or(0))
    }

    /// The next SIP event that ends `call` (a BYE from the peer).
    async fn bye_of(&mut self, dialog: &DialogId) -> bool {
        loop {
            match self.incoming.recv().await {
                Some(UaEvent::DialogTerminated { dialog: d, reason }) if &d == dialog => {
                    return matches!(reason, EndReason::ByeReceived)
                }
                Some(UaEvent::IncomingRequest { txn, msg, .. }) => {
                    let _ = self.ep.respond(txn, Answer::new(200)).await;
                    self.keep_page(msg);
                }
                Some(_) => {}
                None => return false,
            }
        }
    }
}

/// Events of one MSRP session, and a BYE from the peer.
enum Step {
    Msrp(SessionEvent),
    Bye,
    Closed,
}

async fn step(ua: &mut Ua, call: &mut Call) -> Step {
    let dialog = call.dialog.clone();
    tokio::select! {
        biased;
        ev = call.conn.next_event() => match ev {
            Some(ConnEvent::Session { event, .. }) => Step::Msrp(event),
            Some(ConnEvent::Closed(_)) | None => Step::Closed,
            Some(_) => Step::Msrp(SessionEvent::StrayResponse { transaction_id: String::new() }),
        },
        bye = ua.bye_of(&dialog) => if bye { Step::Bye } else { Step::Closed },
    }
}

fn message_json(kind: &str, id: &str, ct: &str, body: &[u8]) -> Value {
    let mut v = json!({"event": kind, "message_id": id, "content_type": ct, "size": body.len(),
        "sha256": sha256_hex(body)});
    if body.len() <= 256 {
        v["text"] = Value::String(String::from_utf8_lossy(body).into_owned());
    }
    v
}

/// Large mode (TS 24.247 §5.2): INVITE, one SEND (chunked), wait for the success report, BYE.
pub(crate) async fn send_large(
    ua: &mut Ua,
    target: &str,
    content_type: &str,
    body: Bytes,
    emit: &mut (dyn FnMut(Value) + Send),
) -> Result<Value, String> {
    let started = Instant::now();
    let mut call = ua.call(target, Offer::Large).await?;
    emit(json!({"event": "connected", "session": call.sid,
        "peer_path": peer_path(&call.peer_sdp)}));
    let mut m = Outgoing::new(content_type, body.clone());
    m.success_report = true;
    let id = call
        .conn
        .send(&call.sid, m)
        .await
        .map_err(|e| e.to_string())?
        .ok_or("no session")?;
    let deadline = tokio::time::Instant::now() + ua.opts.timeout;
    let status = loop {
        let s = tokio::time::timeout_at(deadline, step(ua, &mut call))
            .await
            .map_err(|_| "timed out waiting for the report")?;
        match s {
            Step::Msrp(SessionEvent::Report {
                message_id, status, ..
            }) if message_id == id => break status,
            Step::Msrp(SessionEvent::SendFailed { status, .. }) => break status,
            Step::Msrp(_) => {}
            Step::Bye => return Err("BYE before the report".into()),
            Step::Closed => return Err("MSRP connection closed before the report".into()),
        }
    };
    let bye = ua.hangup(&call).await?;
    let v = json!({"event": "sent", "message_id": id, "size": body.len(),
        "sha256": sha256_hex(&body), "report": status, "bye": bye,
        "ms": started.elapsed().as_millis() as u64});
    emit(v.clone());
    Ok(v)
}

/// Session-mode chat: sends `messages` (each with a success report), collects what the peer
/// sends until `expect` messages arrived and every report is in, then BYE (unless the peer
/// ended first).
pub(crate) async fn chat(
    ua: &mut Ua,
    target: &str,
    messages: Vec<String>,
    expect: usize,
    emit: &mut (dyn FnMut(Value) + Send),
) -> Result<Value, String> {
    let mut call = ua.call(target, Offer::Chat).await?;
    emit(json!({"event": "connected", "session": call.sid,
        "peer_path": peer_path(&call.peer_sdp)}));
    let started = Instant::now();
    let mut ids = Vec::with_capacity(messages.len());
    for t in &messages {
        let mut m = Outgoing::new("text/plain", Bytes::from(t.clone()));
        m.success_report = true;
        let id = call
            .conn
            .send(&call.sid, m)
            .await
            .map_err(|e| e.to_string())?
            .ok_or("no session")?;
        ids.push(id);
    }
    let want: std::collections::HashMap<&str, usize> = ids
        .iter()
        .enumerate()
        .map(|(i, s)| (s.as_str(), i))
        .collect();
    let mut reported = vec![false; ids.len()];
    let (mut reports_ok, mut failed) = (0usize, 0usize);
    let mut received: Vec<String> = Vec::new();
    let mut ended_by_peer = false;
    let deadline = tokio::time::Instant::now() + ua.opts.timeout;
    while reports_ok + failed < ids.len() || received.len() < expect {
        let Ok(s) = tokio::time::timeout_at(deadline, step(ua, &mut call)).await else {
            break;
        };
        match s {
            Step::Msrp(SessionEvent::Report {
                message_id, status, ..
            }) => {
                if let Some(&i) = want.get(message_id.as_str()) {
                    if !reported[i] {
                        reported[i] = true;
                        if status == 200 {
                            reports_ok += 1;
                        } else {
                            failed += 1;
                        }
                    }
                }
            }
            Step::Msrp(SessionEvent::SendFailed { status, .. }) => {
                failed += 1;
                emit(json!({"event": "send_failed", "status": status}));
            }
            Step::Msrp(SessionEvent::Message {
                message_id,
                content_type,
                body,
            }) => {
                emit(message_json("message", &message_id, &content_type, &body));
                received.push(String::from_utf8_lossy(&body).into_owned());
            }
            Step::Msrp(_) => {}
            Step::Bye => {
                ended_by_peer = true;
                emit(json!({"event": "bye"}));
                break;
            }
            Step::Closed => {
                // the peer's BYE usually comes with the closing of its connection
                let d = call.dialog.clone();
                if let Ok(true) = tokio::time::timeout(Duration::from_secs(2), ua.bye_of(&d)).await
                {
                    ended_by_peer = true;
                    emit(json!({"event": "bye"}));
                }
                break;
            }
        }
    }
    let elapsed = started.elapsed();
    let bye = if ended_by_peer {
        call.conn.close().await;
        0
    } else {
        ua.hangup(&call).await?
    };
    let in_order = received.iter().zip(messages.iter()).all(|(r, s)| r == s);
    let v = json!({"event": "summary", "sent": ids.len(), "reports_ok": reports_ok,
        "failed": failed, "received": received.len(), "echo_in_order": in_order,
        "ended_by_peer": ended_by_peer, "bye": bye, "ms": elapsed.as_millis() as u64});
    emit(v.clone());
    Ok(v)
}

/// RFC 5547 file push: INVITE with `a=file-selector`, the file streamed in one SEND, the
/// success report, BYE.
pub(crate) async fn send_file(
    ua: &mut Ua,
    target: &str,
    path: &std::path::Path,
    emit: &mut (dyn FnMut(Value) + Send),
) -> Result<Value, String> {
    let started = Instant::now();
    let mut f = tokio::fs::File::open(path)
        .await
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let size = f.metadata().await.map_err(|e| e.to_string())?.len();
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "file".into());
    let ct = "application/octet-stream";
    let mut call = ua
        .call(
            target,
            Offer::File {
                name: name.clone(),
                size,
                content_type: ct.into(),
            },
        )
        .await?;
    emit(json!({"event": "connected", "session": call.sid,
        "peer_path": peer_path(&call.peer_sdp)}));
    let mut m = Outgoing::stream(ct, Some(size));
    m.success_report = true;
    m.failure_report = FailureReport::Yes;
    let id = call
        .conn
        .send(&call.sid, m)
        .await
        .map_err(|e| e.to_string())?
        .ok_or("no session")?;
    let mut hash = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = f.read(&mut buf).await.map_err(|e| e.to_string())?;
        if n == 0 {
            break;
        }
        hash.update(&buf[..n]);
        call.conn
            .push_body(&call.sid, &id, Bytes::copy_from_slice(&buf[..n]))
            .await
            .map_err(|e| e.to_string())?;
    }
    call.conn
        .finish(&call.sid, &id)
        .await
        .map_err(|e| e.to_string())?;
    let deadline = tokio::time::Instant::now() + ua.opts.timeout;
    let status = loop {
        let s = tokio::time::timeout_at(deadline, step(ua, &mut call))
            .await
            .map_err(|_| "timed out waiting for the report")?;
        match s {
            Step::Msrp(SessionEvent::Report {
                message_id, status, ..
            }) if message_id == id => break status,
            Step::Msrp(SessionEvent::SendFailed { status, .. }) => break status,
            Step::Msrp(_) => {}
            Step::Bye => return Err("BYE before the report".into()),
            Step::Closed => return Err("MSRP connection closed before the report".into()),
        }
    };
    let bye = ua.hangup(&call).await?;
    let v = json!({"event": "sent", "file": name, "size": size, "sha256": hex(&hash.finalize()),
        "report": status, "bye": bye, "ms": started.elapsed().as_millis() as u64});
    emit(v.clone());
    Ok(v)
}

/// Answers sessions: prints every message, writes files, echoes, refuses when busy.
pub(crate) async fn listen(
    ua: &mut Ua,
    lo: &ListenOpts,
    emit: &mut (dyn FnMut(Value) + Send),
) -> Result<Value, String> {
    let mut sessions = 0usize;
    let mut total_messages = 0usize;
    loop {
        if lo.sessions.is_some_and(|n| sessions >= n) {
            break;
        }
        let call = ua.accept(lo.busy).await?;
        sessions += 1;
        let Some(mut call) = call else {
            emit(json!({"event": "refused", "status": lo.busy}));
            continue;
        };
        let offer = Sdp::parse_str(&call.peer_sdp).ok();
        let file_name = offer.as_ref().and_then(|o| {
            o.media.iter().find_map(|m| {
                let v = m.attribute("file-selector")?.value?;
                let i = v.find("name:\"")? + 6;
                let n = &v[i..];
                Some(n[..n.find('"')?].to_owned())
            })
        });
        drop(offer);
        let (vias, asserted) = call.received.clone().unwrap_or_default();
        emit(
            json!({"event": "session", "session": call.sid, "file": file_name,
            "local_uri": ua.local_uri(&call.sid),
            "peer_path": peer_path(&call.peer_sdp), "via_hops": vias, "asserted": asserted}),
        );
        let mut n_msgs = 0usize;
        let mut bye_seen = false;
        let mut file: Option<(tokio::fs::File, PathBuf)> = None;
        let mut hash = Sha256::new();
        loop {
            let next = if bye_seen {
                match tokio::time::timeout(Duration::from_secs(2), call.conn.next_event()).await {
                    Ok(Some(ConnEvent::Session { event, .. })) => Step::Msrp(event),
                    Ok(Some(_)) => continue,
                    _ => Step::Closed,
                }
            } else {
                step(ua, &mut call).await
            };
            match next {
                Step::Msrp(SessionEvent::Message {
                    message_id,
                    content_type,
                    body,
                }) => {
                    n_msgs += 1;
                    total_messages += 1;
                    emit(message_json("message", &message_id, &content_type, &body));
                    if lo.echo && content_type.starts_with("text/") {
                        let mut m = Outgoing::new(&content_type, body.clone());
                        m.success_report = true;
                        let _ = call.conn.send(&call.sid, m).await;
                    }
                    if let (Some(dir), Some(n)) = (&lo.out_dir, &file_name) {
                        if file_name_ok(n) {
                            let _ = tokio::fs::write(dir.join(n), &body).await;
                        }
                    }
                }
                Step::Msrp(SessionEvent::MessageData {
                    message_id,
                    data,
                    offset,
                    ..
                }) => {
                    if offset == 0 {
                        hash = Sha256::new();
                        let name = file_name
                            .clone()
                            .filter(|n| file_name_ok(n))
                            .unwrap_or_else(|| format!("{message_id}.bin"));
                        if let Some(dir) = &lo.out_dir {
                            let p = dir.join(name);
                            match tokio::fs::File::create(&p).await {
                                Ok(f) => file = Some((f, p)),
                                Err(e) => return Err(format!("{}: {e}", p.display())),
                            }
                        }
                    }
                    hash.update(&data);
                    if let Some((f, _)) = &mut file {
                        use tokio::io::AsyncWriteExt;
                        f.write_all(&data).await.map_err(|e| e.to_string())?;
                    }
                }
                Step::Msrp(SessionEvent::MessageComplete {
                    message_id,
                    content_type,
                    size,
                }) => {
                    n_msgs += 1;
                    total_messages += 1;
                    let path = match file.take() {
                        Some((mut f, p)) => {
                            use tokio::io::AsyncWriteExt;
                            f.flush().await.map_err(|e| e.to_string())?;
                            Some(p.display().to_string())
                        }
                        None => None,
                    };
                    let digest = std::mem::replace(&mut hash, Sha256::new()).finalize();
                    emit(json!({"event": "message", "message_id": message_id,
                        "content_type": content_type, "size": size, "sha256": hex(&digest),
                        "file": path}));
                }
                Step::Msrp(SessionEvent::MessageAborted {
                    message_id,
                    received,
                }) => {
                    emit(
                        json!({"event": "aborted", "message_id": message_id, "received": received}),
                    );
                }
                Step::Msrp(SessionEvent::Report {
                    message_id, status, ..
                }) => {
                    emit(json!({"event": "report", "message_id": message_id, "status": status}));
                }
                Step::Msrp(_) => {}
                Step::Bye => {
                    emit(json!({"event": "bye", "messages": n_msgs}));
                    // what the peer sent before its BYE may still be on the way: read the
                    // connection until it closes
                    bye_seen = true;
                    continue;
                }
                Step::Closed => {
                    if !bye_seen {
                        // the peer's BYE usually comes with the closing of its connection
                        let d = call.dialog.clone();
                        match tokio::time::timeout(Duration::from_secs(2), ua.bye_of(&d)).await {
                            Ok(true) => emit(json!({"event": "bye", "messages": n_msgs})),
                            _ => emit(json!({"event": "closed", "messages": n_msgs})),
                        }
                    }
                    call.conn.close().await;
                    break;
                }
            }
            if !bye_seen && lo.bye_after.is_some_and(|n| n_msgs >= n) {
                let st = ua.hangup(&call).await?;
                emit(json!({"event": "bye_sent", "status": st, "messages": n_msgs}));
                break;
            }
        }
    }
    Ok(json!({"event": "done", "sessions": sessions, "messages": total_messages}))
}
