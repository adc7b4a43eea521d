//! The Diameter node on tokio (RFC 6733 over TCP): one task per peer reads and writes its
//! connections and drives the sans-IO [`ims_diameter::peer::Peer`] (capabilities exchange,
//! watchdog, DPR, election, failover); the node routes requests with an
//! [`ims_diameter::routing::RoutingTable`], follows 3006 redirects, relays, and dispatches
//! received requests to handlers keyed by Application-Id and command code.
//!
//! A client (an S-CSCF) and a server (an HSS) on loopback:
//!
//! ```
//! use ims_diameter::{cx::{Maa, Mar}, dict::app, peer::Application, Command, Outcome};
//! use ims_net::diameter::{Node, NodeConfig};
//! use std::time::Duration;
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let mut cfg = NodeConfig::new("hss.ims.example.org", "ims.example.org");
//! cfg.applications = vec![Application::tgpp_auth(app::CX)];
//! let hss = Node::new(cfg.clone());
//! let addr = hss.listen("127.0.0.1:0".parse().unwrap()).await?;
//! let me = hss.clone();
//! hss.handle(app::CX, Mar::CODE, move |req| {
//!     let me = me.clone();
//!     async move {
//!         let mar = Mar::decode(&req.message.view()).unwrap();
//!         let mut maa = Maa {
//!             session_id: mar.session_id,
//!             vendor_specific_application_id: mar.vendor_specific_application_id,
//!             auth_session_state: mar.auth_session_state,
//!             origin_host: me.origin_host().into(),
//!             origin_realm: me.origin_realm().into(),
//!             ..Default::default()
//!         };
//!         maa.set_outcome(Outcome::SUCCESS);
//!         maa.encode_answer(req.message.header())
//!     }
//! });
//!
//! cfg.origin_host = "scscf.ims.example.org".into();
//! let scscf = Node::new(cfg);
//! scscf.add_peer("hss.ims.example.org", addr);
//! scscf.wait_open("hss.ims.example.org", Duration::from_secs(5)).await?;
//! let mar = Mar {
//!     session_id: scscf.session_id().into(),
//!     vendor_specific_application_id: ims_diameter::base::VendorSpecificApplicationId::cx(),
//!     origin_host: scscf.origin_host().into(),
//!     origin_realm: scscf.origin_realm().into(),
//!     destination_realm: "ims.example.org".into(),
//!     user_name: "alice@ims.example.org".into(),
//!     public_identity: "sip:alice@ims.example.org".into(),
//!     server_name: "sip:scscf.ims.example.org".into(),
//!     ..Default::default()
//! };
//! let maa = scscf.send(&mar).await?;
//! assert_eq!(maa.view().outcome(), Some(Outcome::SUCCESS));
//! # Ok::<(), ims_net::diameter::NodeError>(())
//! # }).unwrap();
//! ```
//!
//! TLS (RFC 6733 §13, feature `tls`): `Node::listen_tls` accepts on a dedicated port where
//! the TLS handshake starts right after the TCP connect and before the CER, and
//! `Node::add_peer_tls` connects that way; both sides authenticate with certificates
//! (`ClientAuth::Required` on the listener). The server certificate is checked
//! against the peer's DiameterIdentity. Plain TCP peers and listeners work beside them.
//!
//! Inband security (RFC 6733 §6.10, the RFC 3588 §2.1 way, feature `tls`): with
//! [`NodeConfig::inband_security`] offering TLS and `Node::set_inband_tls`, CER/CEA on a plain
//! TCP connection carry Inband-Security-Id TLS and, when both sides agree, the TLS handshake runs
//! on that same connection right after the CEA (the connecting side is the TLS client); the peer
//! opens only once it succeeds ([`PeerStatus::secure`]). No common mechanism: 5017
//! DIAMETER_NO_COMMON_SECURITY.
//!
//! Transports: TCP and TLS over TCP only. SCTP is not implemented (it could not be tested: the
//! build and CI kernels have no SCTP, `socket(AF_INET, SOCK_STREAM, IPPROTO_SCTP)` fails with
//! EPROTONOSUPPORT): discovery never picks SCTP candidates, and a 3006 redirect naming only
//! `aaa://…;transport=sctp` hosts gives [`NodeError::UnsupportedTransport`].
//!
//! Peer discovery ([`Node::set_resolver`]): results are kept for the DNS TTL (at most
//! [`NodeConfig::discovery_refresh`]) and then looked up again in the background; peers that
//! are no longer advertised are disconnected. Relayed requests trigger discovery too.
//!
//! Alternate peers (RFC 6733 §7.1.3): an answer 3004 DIAMETER_TOO_BUSY or 3002
//! DIAMETER_UNABLE_TO_DELIVER sends the request on to the next usable candidate, each once.
//! Duplicates (RFC 6733 §5.5.4, Appendix C): a request seen before from the same Origin-Host with
//! the same End-to-End Identifier is answered from the cache; one that arrives while the first
//! copy is still in its handler (a retransmission after failover, over another connection) gets
//! the same answer when it is ready, the handler running once.
//!
//! Capabilities update (RFC 6737, [`Node::update_applications`]): with
//! [`ims_diameter::peer::Application::CAPABILITIES_UPDATE`] advertised on both sides, a CUR
//! changes the common applications of an open connection without closing it.
//!
//! Stopping ([`Node::shutdown`], then [`Node::wait_stopped`]): listeners close, discovery
//! stops looking up, every peer gets DPR, and every task of the node ends.

use bytes::{Bytes, BytesMut};
use ims_diameter::answer::{check_request, error_answer, Origin};
use ims_diameter::base::DisconnectCause;
use ims_diameter::dict::{self, app};
use ims_diameter::discovery::{discover, Resolver, Transport};
use ims_diameter::peer::{
    result_answer, Application, Duplicate, Duplicates, EndToEnd, Event, InbandSecurity, Input,
    Output, Peer, PeerConfig, PeerState, PeerStats, RemoteInfo, Side, TlsRole, WatchdogState,
};
use ims_diameter::routing::{
    add_route_record, redirect_answer, redirect_of, Action, Decision, RedirectCache,
    RedirectHostUsage, Route, RouteAvps, RoutingTable,
};
use ims_diameter::{Command, DiameterUri, Message, OwnedMessage, ResultCode};
use std::borrow::Cow;
use std::collections::VecDeque;
// the node's maps are consulted per message: a cheaper hasher than SipHash (per-map seed)
use ims_diameter::fasthash::FastMap as HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;

/// How a node is set up.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// Origin-Host.
    pub origin_host: String,
    /// Origin-Realm.
    pub origin_realm: String,
    /// Host-IP-Address values advertised in CER/CEA (127.0.0.1 when empty).
    pub host_ip_addresses: Vec<IpAddr>,
    /// Vendor-Id.
    pub vendor_id: u32,
    /// Product-Name.
    pub product_name: String,
    /// Origin-State-Id (RFC 6733 §8.16): it must grow each time the node starts with its
    /// previous state lost, e.g. the start time in seconds ([`origin_state_id_at`]) or a
    /// counter kept on disk. Sent in CER/CEA, DWR/DWA and the node's error answers;
    /// [`Node::restart`] raises it by one. `None` (the default): not sent.
    pub origin_state_id: Option<u32>,
    /// Applications supported (advertised in CER/CEA; [`Application::RELAY`] for an agent).
    pub applications: Vec<Application>,
    /// Tw (RFC 3539; 30 s by default).
    pub watchdog_interval: Duration,
    /// Jitter applied to Tw (±2 s by default).
    pub watchdog_jitter: Duration,
    /// Default request timeout of [`Node::request`].
    pub request_timeout: Duration,
    /// Transport plus CER/CEA timeout.
    pub connect_timeout: Duration,
    /// Tc: reconnect interval for the peers we connect to (`None`: never).
    pub reconnect_interval: Option<Duration>,
    /// Accept CERs from hosts not added with [`Node::add_peer`] / [`Node::add_known_host`].
    pub accept_unknown_peers: bool,
    /// The routing table's routes (checked in order; realm `"*"` is the default route).
    pub routes: Vec<Route>,
    /// How many 3006 redirects [`Node::request`] follows.
    pub max_redirects: usize,
    /// Redirect-Max-Cache-Time sent in the 3006 answers of [`Action::Redirect`] routes.
    pub redirect_cache_time: u32,
    /// Redirect-Host-Usage sent in those answers.
    pub redirect_usage: RedirectHostUsage,
    /// Inband security on plain TCP connections (RFC 6733 §6.10 Inband-Security-Id, RFC 3588
    /// §2.1): with TLS offered and agreed in CER/CEA, the TLS handshake runs on the same
    /// connection right after the CEA, with the configuration of `Node::set_inband_tls`
    /// (feature `tls`; without one, an agreed handshake fails and the peer goes down).
    /// Connections that are TLS from the start (`Node::listen_tls`, `Node::add_peer_tls`)
    /// never use it. [`InbandSecurity::None`] by default.
    pub inband_security: InbandSecurity,
    /// How long the peers found by discovery (RFC 6733 §5.2) are kept before DNS is asked
    /// again (5 min by default); a shorter DNS TTL ([`Resolver::take_min_ttl`]) wins. Peers no
    /// longer advertised then are disconnected (DPR DO_NOT_WANT_TO_TALK_TO_YOU) and forgotten.
    pub discovery_refresh: Duration,
    /// Debugging only, off (`None`) by default: append the secrets of every TLS session of the
    /// node (TLS port and inband TLS, both directions) to this file in the NSS key log format,
    /// so Wireshark/tshark can decrypt a capture (`-o tls.keylog_file:FILE`). Anyone with the
    /// file reads the traffic. Feature `tls` (`ims_net::tls::KeyLogFile`); the file is opened
    /// (created 0600) when the node first uses a TLS configuration: `Node::listen_tls`
    /// reports a file that cannot be opened, `Node::add_peer_tls` / `Node::set_inband_tls`
    /// then go on without the key log.
    pub tls_key_log: Option<std::path::PathBuf>,
    /// Interop leniency, off (`false`) by default: a request whose Destination-Realm appears
    /// more than once, every copy naming the same realm (compared without case), is handled
    /// as if it had one (the repeats are removed before routing and handlers). Kamailio's
    /// `cdp` 5.6.3 sends such an STR after an ASR. Off, the request goes on as it came and a
    /// typed handler answers it 5009 DIAMETER_AVP_OCCURS_TOO_MANY_TIMES with the second
    /// Destination-Realm in Failed-AVP, which is what RFC 6733 asks: every command ABNF has
    /// `< Destination-Realm >` or `{ Destination-Realm }` — exactly one — and §7.1.5 makes an
    /// AVP present more often than its command allows a permanent failure (the AF then never
    /// learns that its session ended). Copies naming different realms stay a 5009 either way
    /// (no way to tell which one was meant).
    pub merge_repeated_destination_realm: bool,
    /// How long a received request is remembered, with its answer, for duplicate detection
    /// (RFC 6733 §5.5.4: a request retransmitted with the T flag after a failover gets the
    /// same answer; 240 s by default, the End-to-End Identifier's uniqueness time). The node
    /// forgets older ones on its timers too, so the answers a burst left behind are freed
    /// after this time even when no request follows.
    pub duplicate_window: Duration,
    /// At most this many requests are remembered (the oldest forgotten first; 100,000 by
    /// default). Each holds its answer's octets, so this bounds the memory of duplicate
    /// detection: a node answering large messages at a high rate may want fewer.
    pub duplicate_max: usize,
}

impl NodeConfig {
    /// Defaults: RFC timers, 10 s request timeout, unknown peers accepted, no routes.
    pub fn new(origin_host: &str, origin_realm: &str) -> NodeConfig {
        NodeConfig {
            origin_host: origin_host.to_owned(),
            origin_realm: origin_realm.to_owned(),
            host_ip_addresses: Vec::new(),
            vendor_id: 0,
            product_name: "ims-rs".to_owned(),
            origin_state_id: None,
            applications: Vec::new(),
            watchdog_interval: Duration::from_secs(30),
            watchdog_jitter: Duration::from_secs(2),
            request_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(10),
            reconnect_interval: Some(Duration::from_secs(30)),
            accept_unknown_peers: true,
            routes: Vec::new(),
            max_redirects: 2,
            redirect_cache_time: 300,
            redirect_usage: RedirectHostUsage::AllRealm,
            inband_security: InbandSecurity::None,
            discovery_refresh: Duration::from_secs(300),
            tls_key_log: None,
            merge_repeated_destination_realm: false,
            duplicate_window: Duration::from_secs(240),
            duplicate_max: 100_000,
        }
    }

    fn peer_config(
        &self,
        applications: Vec<Application>,
        expected: Option<&str>,
        seed: u64,
    ) -> PeerConfig {
        PeerConfig {
            host_ip_addresses: self.host_ip_addresses.clone(),
            vendor_id: self.vendor_id,
            product_name: self.product_name.clone(),
            origin_state_id: self.origin_state_id,
            applications,
            expected_peer: expected.map(str::to_owned),
            watchdog_interval: self.watchdog_interval,
            watchdog_jitter: self.watchdog_jitter,
            connect_timeout: self.connect_timeout,
            reconnect_interval: self.reconnect_interval,
            seed,
            inband_security: self.inband_security,
            ..PeerConfig::new(&self.origin_host, &self.origin_realm)
        }
    }
}

/// Why a node operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NodeError {
    /// A socket failed.
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    /// The message is not valid Diameter.
    #[error("diameter: {0}")]
    Invalid(#[from] ims_diameter::Error),
    /// No usable peer for the request (the Result-Code a relay would answer with).
    #[error("no route: {0}")]
    NoRoute(ResultCode),
    /// No answer before the timeout.
    #[error("request timed out")]
    Timeout,
    /// The peer is not known or did not open in time.
    #[error("peer {0} not open")]
    PeerNotOpen(String),
    /// The node's tasks are gone.
    #[error("node closed")]
    Closed,
    /// More 3006 redirects than `max_redirects`.
    #[error("too many redirects")]
    TooManyRedirects,
    /// Every host a 3006 redirect names is reachable only over a transport this node does not
    /// have (`aaa://host;transport=sctp` or `udp`: the node speaks TCP and TLS over TCP only,
    /// see the module documentation); the URIs are given.
    #[error("no supported transport to reach {0:?} (TCP only: SCTP is not available)")]
    UnsupportedTransport(Vec<String>),
}

/// A request received from a peer, given to a handler.
#[derive(Debug, Clone)]
pub struct Incoming {
    /// The request.
    pub message: OwnedMessage,
    /// The Origin-Host of the peer it came from (shared by every request of that peer).
    pub peer: Arc<str>,
}

type BoxFuture = Pin<Box<dyn Future<Output = Vec<u8>> + Send>>;
type Handler = Arc<dyn Fn(Incoming) -> BoxFuture + Send + Sync>;

/// What a peer task reports about its peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerStatus {
    /// RFC 6733 state.
    pub state: PeerState,
    /// RFC 3539 watchdog state.
    pub watchdog: WatchdogState,
    /// What the peer announced (after the first capabilities exchange).
    pub remote: Option<RemoteInfo>,
    /// Counters (DWR/DWA, DPA, requests, answers, failovers).
    pub stats: PeerStats,
    /// The connection in use is TLS (from the connect, or started inband after CER/CEA).
    pub secure: bool,
    /// Writes to the peer's connections: the messages ready at once (requests handed over
    /// together, the answers to requests read together) go out in one write, a single
    /// system call while the socket has room.
    pub writes: u64,
    /// Reads of the peer's connections that brought octets (a read may carry several
    /// messages).
    pub reads: u64,
}

impl PeerStatus {
    fn usable_for(&self, application_id: u32) -> bool {
        self.state.is_open()
            && self.watchdog == WatchdogState::Okay
            && self.remote.as_ref().is_some_and(|r| {
                application_id == app::COMMON
                    || r.common_applications
                        .iter()
                        .any(|a| *a == application_id || *a == app::RELAY)
            })
    }
}

type Reply = oneshot::Sender<Result<OwnedMessage, NodeError>>;

enum Cmd {
    Request {
        bytes: Bytes,
        deadline: Instant,
        reply: Reply,
    },
    Answer(Bytes),
    Accept(Conn, Bytes),
    Connected(Conn),
    ConnectFailed,
    /// The inband TLS handshake (generation of the clear connection) succeeded / failed.
    #[cfg_attr(not(feature = "tls"), allow(dead_code))]
    TlsUp(Side, u64, Conn),
    #[cfg_attr(not(feature = "tls"), allow(dead_code))]
    TlsFailed(Side, u64),
    Disconnect(DisconnectCause),
    /// RFC 6737: advertise these applications from now on (CUR on an open connection).
    UpdateApplications(Vec<Application>),
    /// The node forgot the peer (discovery dropped it): the task ends once it is closed.
    Forget,
}

type BoxRead = Box<dyn AsyncRead + Send + Unpin>;
type BoxWrite = Box<dyn AsyncWrite + Send + Unpin>;

/// A peer connection: TCP, or TLS over TCP (RFC 6733 §13).
enum Conn {
    Tcp(TcpStream),
    #[cfg(feature = "tls")]
    Tls(Box<crate::tls::TlsStream<TcpStream>>),
}

impl Conn {
    fn is_tls(&self) -> bool {
        match self {
            Conn::Tcp(_) => false,
            #[cfg(feature = "tls")]
            Conn::Tls(_) => true,
        }
    }

    async fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Conn::Tcp(s) => s.read(buf).await,
            #[cfg(feature = "tls")]
            Conn::Tls(s) => s.read(buf).await,
        }
    }

    fn split(self) -> (ReadHalf, WriteHalf) {
        match self {
            Conn::Tcp(s) => {
                let _ = s.set_nodelay(true);
                let (r, w) = s.into_split();
                (ReadHalf::Tcp(r), WriteHalf::Tcp(w))
            }
            #[cfg(feature = "tls")]
            Conn::Tls(s) => {
                let (r, w) = tokio::io::split(*s);
                (ReadHalf::Other(Box::new(r)), WriteHalf::Other(Box::new(w)))
            }
        }
    }

    /// Reads exactly one Diameter message (header, then the length it announces), so nothing
    /// after it is consumed (the TLS handshake may follow a CER/CEA).
    async fn read_message(&mut self, max: usize) -> Option<Vec<u8>> {
        let mut v = vec![0u8; 4];
        let mut got = 0;
        while got < 4 {
            match self.read(&mut v[got..]).await {
                Ok(0) | Err(_) => return None,
                Ok(n) => got += n,
            }
        }
        let len = message_length(&v, max)?;
        v.resize(len, 0);
        while got < len {
            match self.read(&mut v[got..]).await {
                Ok(0) | Err(_) => return None,
                Ok(n) => got += n,
            }
        }
        Some(v)
    }
}

/// The Message Length of a header's first 4 octets, when plausible (20 octets to `max`).
fn message_length(first4: &[u8], max: usize) -> Option<usize> {
    let len = u32::from_be_bytes([0, first4[1], first4[2], first4[3]]) as usize;
    (first4[0] == 1 && (20..=max).contains(&len)).then_some(len)
}

/// The read half of a peer connection (TCP kept concrete so an inband TLS upgrade can reunite
/// it with its write half).
enum ReadHalf {
    Tcp(OwnedReadHalf),
    #[cfg_attr(not(feature = "tls"), allow(dead_code))]
    Other(BoxRead),
}

impl ReadHalf {
    /// Reads into `buf` (cancel safe: nothing is read when the future is dropped unfinished).
    async fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            ReadHalf::Tcp(r) => r.read(buf).await,
            ReadHalf::Other(r) => r.read(buf).await,
        }
    }

    /// Reads into `buf`'s spare capacity (not zeroed first), appending (cancel safe).
    async fn read_buf(&mut self, buf: &mut BytesMut) -> std::io::Result<usize> {
        match self {
            ReadHalf::Tcp(r) => r.read_buf(buf).await,
            ReadHalf::Other(r) => r.read_buf(buf).await,
        }
    }
}

/// The write half of a peer connection.
enum WriteHalf {
    Tcp(OwnedWriteHalf),
    #[cfg_attr(not(feature = "tls"), allow(dead_code))]
    Other(BoxWrite),
}

impl WriteHalf {
    /// Writes what the socket takes now without waiting (TCP only: TLS records are written by
    /// [`WriteHalf::send`]); how many octets were written.
    fn send_now(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        let WriteHalf::Tcp(w) = self else {
            return Ok(0);
        };
        let mut done = 0;
        while done < bytes.len() {
            match w.try_write(&bytes[done..]) {
                Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
                Ok(n) => done += n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(e),
            }
        }
        Ok(done)
    }

    /// [`WriteHalf::send_now`] for several messages in one write (a vectored write of at
    /// most [`MAX_BATCH`] of them); how many octets were written in all.
    fn send_now_all(&mut self, msgs: &[Bytes]) -> std::io::Result<usize> {
        if let [one] = msgs {
            return self.send_now(one);
        }
        let WriteHalf::Tcp(w) = self else {
            return Ok(0);
        };
        let total: usize = msgs.iter().map(Bytes::len).sum();
        let mut done = 0;
        while done < total {
            // the slices of what is left: the rest of a message partly written, then the others
            let mut iov = [std::io::IoSlice::new(&[]); MAX_BATCH];
            let (mut n, mut skip) = (0, done);
            for m in msgs {
                if skip >= m.len() {
                    skip -= m.len();
                    continue;
                }
                if n == iov.len() {
                    break;
                }
                iov[n] = std::io::IoSlice::new(&m[skip..]);
                skip = 0;
                n += 1;
            }
            match w.try_write_vectored(&iov[..n]) {
                Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
                Ok(k) => done += k,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(e),
            }
        }
        Ok(done)
    }

    async fn send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        match self {
            WriteHalf::Tcp(w) => w.write_all(bytes).await,
            // flush: TLS buffers records
            WriteHalf::Other(w) => {
                w.write_all(bytes).await?;
                w.flush().await
            }
        }
    }

    async fn shutdown(&mut self) {
        let _ = match self {
            WriteHalf::Tcp(w) => w.shutdown().await,
            WriteHalf::Other(w) => w.shutdown().await,
        };
    }
}

/// The reading side of one connection, read by its peer task itself (no task and no channel
/// per connection: each read's octets go straight to the [`Peer`]). Every read is cancel safe
/// (a partly read message is kept here between reads), so the task reads inside `select!`.
struct Reader {
    /// The generation of the connection ([`PeerTask::attach`]).
    gen: u64,
    half: ReadHalf,
    /// One whole message per read and nothing after it (a plain TCP connection that may switch
    /// to TLS inband: the handshake may follow a CER/CEA).
    exact: bool,
    /// After a CER/CEA read exactly: not read until the peer has decided between going on in
    /// clear ([`PeerTask::resume_readers`], in bulk from then on) and the inband TLS handshake
    /// ([`PeerTask::start_tls`], which takes the TCP read half).
    paused: bool,
    max: usize,
    /// Exact reads: the message read so far (its first `got` octets; 4 octets until the
    /// header's length is known).
    frame: Vec<u8>,
    got: usize,
    /// Bulk reads: one block the reads fill from its front; each read's octets are split off
    /// and handed over as they are (no copy, no allocation per read); a new block once less
    /// than `READ_MIN` is left (the old one lives on while octets split from it are alive).
    buf: BytesMut,
}

/// What one read of a connection gave.
enum Read {
    /// Octets (bulk), or one whole message (exact).
    Data(Bytes),
    /// End of stream, a read error, or (exact) a header with an implausible length.
    Closed,
}

impl Reader {
    const READ_BLOCK: usize = 16 * 1024;
    const READ_MIN: usize = 4 * 1024;

    fn new(gen: u64, half: ReadHalf, exact: bool, paused: bool, max: usize) -> Reader {
        Reader {
            gen,
            half,
            exact,
            paused,
            max,
            frame: Vec::new(),
            got: 0,
            buf: BytesMut::new(),
        }
    }

    /// The next octets (bulk) or whole message (exact; after a CER/CEA the reader pauses).
    /// Cancel safe: what a dropped call had read is kept for the next one.
    async fn next(&mut self) -> Read {
        if !self.exact {
            if self.buf.capacity() - self.buf.len() < Self::READ_MIN {
                self.buf.reserve(Self::READ_BLOCK);
            }
            return match self.half.read_buf(&mut self.buf).await {
                Ok(0) | Err(_) => Read::Closed,
                Ok(_) => Read::Data(self.buf.split().freeze()),
            };
        }
        if self.frame.len() < 4 {
            self.frame.resize(4, 0);
        }
        loop {
            match self.half.read(&mut self.frame[self.got..]).await {
                Ok(0) | Err(_) => return Read::Closed,
                Ok(n) => self.got += n,
            }
            if self.got < self.frame.len() {
                continue;
            }
            if self.frame.len() == 4 {
                // the header's first word: now the whole message's length is known
                let Some(len) = message_length(&self.frame, self.max) else {
                    return Read::Closed;
                };
                self.frame.resize(len, 0);
                continue;
            }
            let v = std::mem::take(&mut self.frame);
            self.got = 0;
            let command = u32::from_be_bytes([0, v[5], v[6], v[7]]);
            self.paused = command == dict::command::CAPABILITIES_EXCHANGE;
            return Read::Data(Bytes::from(v));
        }
    }
}

/// Whether the connection in `slot` is read now (there is one and it is not paused).
fn reading(slot: &Option<Reader>) -> bool {
    slot.as_ref().is_some_and(|r| !r.paused)
}

/// The next read of the connection in `slot` (never ready while there is none or it is
/// paused: `select!` branches are disabled by [`reading`] then, so this is not even polled);
/// a closed connection's reader is dropped. Returns the connection's generation.
async fn read_side(slot: &mut Option<Reader>) -> (u64, Read) {
    let Some(r) = slot.as_mut().filter(|r| !r.paused) else {
        return std::future::pending().await;
    };
    let got = r.next().await;
    let gen = r.gen;
    if matches!(got, Read::Closed) {
        *slot = None;
    }
    (gen, got)
}

/// What a peer task does while one of its writes waits for room in the socket
/// ([`while_writing`]): its readers, what they read meanwhile, its command channel, the
/// commands received meanwhile, and the requests it holds answers for.
struct Waiting<'t> {
    readers: &'t mut [Option<Reader>; 2],
    backlog: &'t mut VecDeque<(Side, u64, Read)>,
    rx: &'t mut mpsc::UnboundedReceiver<Cmd>,
    queued: &'t mut VecDeque<Cmd>,
    replies: &'t mut HashMap<u64, (Reply, Instant)>,
}

/// How long after its deadline a request whose peer task waits in a write is told it timed out
/// (the task's own timers do not run then).
const WRITE_WAIT_GRACE: Duration = Duration::from_millis(100);

impl Waiting<'_> {
    /// The earliest deadline (plus [`WRITE_WAIT_GRACE`]) of a request not yet told.
    fn next_deadline(&self) -> Option<Instant> {
        let held = self.replies.values().map(|(_, d)| *d);
        let queued = self.queued.iter().filter_map(|c| match c {
            Cmd::Request {
                deadline, reply, ..
            } if !reply.is_closed() => Some(*deadline),
            _ => None,
        });
        held.chain(queued).min().map(|d| d + WRITE_WAIT_GRACE)
    }

    /// Tells every request past its deadline (plus [`WRITE_WAIT_GRACE`]) at `t` that it timed
    /// out, as the requester's own timer did before: held ones are forgotten (a late answer or
    /// timeout finds no reply), queued ones keep their place with a reply nobody waits for (so
    /// what is sent on the wire does not change).
    fn time_out(&mut self, t: Instant) {
        self.replies.retain(|_, (reply, deadline)| {
            let due = *deadline + WRITE_WAIT_GRACE <= t;
            if due {
                let (dead, _) = oneshot::channel();
                let _ = std::mem::replace(reply, dead).send(Err(NodeError::Timeout));
            }
            !due
        });
        for c in self.queued.iter_mut() {
            if let Cmd::Request {
                deadline, reply, ..
            } = c
            {
                if *deadline + WRITE_WAIT_GRACE <= t && !reply.is_closed() {
                    let (dead, _) = oneshot::channel();
                    let _ = std::mem::replace(reply, dead).send(Err(NodeError::Timeout));
                }
            }
        }
    }
}

/// Runs `io` (a write, or the shutdown of a connection) to its end while the task goes on
/// reading both connections and taking commands in (handled once `io` is done, in order), so
/// a peer that only reads once its own writes are through is never kept waiting for us, and
/// tells the requests whose deadline passes meanwhile that they timed out.
async fn while_writing<T>(io: impl Future<Output = T>, mut wait: Waiting<'_>) -> T {
    tokio::pin!(io);
    let mut open = true;
    loop {
        let next = wait.next_deadline();
        let [r0, r1] = &mut *wait.readers;
        let (read0, read1) = (reading(r0), reading(r1));
        let guard = async {
            match next {
                Some(t) => tokio::time::sleep_until(t).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            biased;
            res = &mut io => return res,
            (gen, got) = read_side(r0), if read0 => {
                wait.backlog.push_back((Side::Initiator, gen, got));
            }
            (gen, got) = read_side(r1), if read1 => {
                wait.backlog.push_back((Side::Responder, gen, got));
            }
            c = wait.rx.recv(), if open => match c {
                Some(c) => wait.queued.push_back(c),
                None => open = false,
            },
            () = guard => wait.time_out(Instant::now()),
        }
    }
}

/// TLS settings of a peer (a no-op type without the `tls` feature).
#[cfg(feature = "tls")]
type PeerTls = Option<crate::tls::TlsConfig>;
#[cfg(not(feature = "tls"))]
type PeerTls = Option<NoTls>;
/// Stands for a TLS configuration without the `tls` feature: never built.
#[cfg(not(feature = "tls"))]
#[derive(Clone)]
enum NoTls {}

#[derive(Clone)]
struct PeerHandle {
    tx: mpsc::UnboundedSender<Cmd>,
    status: watch::Receiver<PeerStatus>,
}

struct Inner {
    cfg: NodeConfig,
    table: RoutingTable,
    peers: Mutex<HashMap<String, PeerHandle>>,
    known: Mutex<HashMap<String, SocketAddr>>,
    handlers: RwLock<HashMap<(u32, u32), Handler>>,
    e2e: Mutex<EndToEnd>,
    sessions: Mutex<(u32, u32)>,
    dups: Mutex<Duplicates>,
    /// Copies of a request that arrived while the first one was still being handled (a
    /// retransmission after failover, RFC 6733 §5.5.4 / Appendix C), by (lower-case
    /// Origin-Host, End-to-End Identifier): the peer task and Hop-by-Hop Identifier each
    /// copy is answered with, when the answer is ready.
    dup_waiters: Mutex<HashMap<(String, u32), Vec<DupWaiter>>>,
    redirects: Mutex<RedirectCache>,
    seed: Mutex<u64>,
    /// The Hop-by-Hop Identifier of the next request sent to a peer: one counter for all peers,
    /// so the identifier is written before the octets are shared (each peer uses it as is
    /// unless it is still pending there, [`Peer::send_request_bytes`]).
    hop_by_hop: std::sync::atomic::AtomicU32,
    /// Peer discovery (RFC 6733 §5.2): the DNS lookups, and the hosts found per realm.
    resolver: Mutex<Option<SharedResolver>>,
    discovered: Mutex<HashMap<String, Discovered>>,
    /// The TLS configuration of inband security (TLS after CER/CEA on plain TCP).
    #[cfg(feature = "tls")]
    inband_tls: Mutex<Option<crate::tls::TlsConfig>>,
    /// The opened [`NodeConfig::tls_key_log`].
    #[cfg(feature = "tls")]
    key_log: Mutex<Option<Arc<crate::tls::KeyLogFile>>>,
    /// `true` once [`Node::shutdown`] ran: listeners, discovery and peer tasks stop.
    stop: watch::Sender<bool>,
    /// The applications advertised now ([`NodeConfig::applications`], then
    /// [`Node::update_applications`]).
    applications: Mutex<Vec<Application>>,
    /// Every task the node spawned that has not ended yet.
    tasks: Arc<Tasks>,
    /// The listeners, bound again by [`Node::restart`]: (bound address, TLS from the connect).
    listeners: Mutex<Vec<(SocketAddr, PeerTls)>>,
    /// The peers added with [`Node::add_peer`] / `Node::add_peer_tls`, connected to again by
    /// [`Node::restart`].
    configured: Mutex<Vec<(String, SocketAddr, PeerTls)>>,
    /// Our Origin-State-Id now ([`NodeConfig::origin_state_id`], raised by [`Node::restart`]).
    state_id: Mutex<Option<u32>>,
    /// The last Origin-State-Id each node (lower-case Origin-Host) sent (CER/CEA, DWR/DWA,
    /// requests, answers).
    peer_state_ids: Mutex<HashMap<String, u32>>,
    /// Called when a peer comes back with another Origin-State-Id ([`Node::on_peer_restart`]).
    restart_hooks: RwLock<Vec<RestartHook>>,
}

type RestartHook = Arc<dyn Fn(&PeerRestart) + Send + Sync>;

/// A copy of a request waiting for its first copy's answer: the peer task it came from and its
/// Hop-by-Hop Identifier.
type DupWaiter = (mpsc::UnboundedSender<Cmd>, u32);

/// A Diameter node (a peer, or the Origin-Host of a request or answer) that showed another
/// Origin-State-Id than the one it sent before: it restarted and lost its state
/// (RFC 6733 §8.16). See [`Node::on_peer_restart`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerRestart {
    /// Its Origin-Host.
    pub origin_host: String,
    /// The Origin-State-Id it sent before.
    pub previous: u32,
    /// The new one (in its CER/CEA, DWR/DWA, request or answer).
    pub current: u32,
}

/// An Origin-State-Id for a node starting at `time` with no state kept from an earlier run:
/// the seconds since the Unix epoch (RFC 6733 §8.16 suggests the boot time), so a later start
/// gets a higher value (until 2106). Pass the process's start time (`SystemTime::now()` at
/// start-up) into [`NodeConfig::origin_state_id`].
pub fn origin_state_id_at(time: std::time::SystemTime) -> u32 {
    time.duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as u32)
}

/// Counts the node's live tasks (see [`Node::wait_stopped`]).
#[derive(Default)]
struct Tasks {
    live: std::sync::atomic::AtomicUsize,
    idle: tokio::sync::Notify,
}

/// Held by a spawned task's future: counted from the spawn until the future is dropped (it
/// ended or was aborted).
struct TaskGuard(Arc<Tasks>);

impl TaskGuard {
    fn new(tasks: &Arc<Tasks>) -> TaskGuard {
        tasks.live.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        TaskGuard(tasks.clone())
    }
}

impl Drop for TaskGuard {
    fn drop(&mut self) {
        if self
            .0
            .live
            .fetch_sub(1, std::sync::atomic::Ordering::SeqCst)
            == 1
        {
            self.0.idle.notify_waiters();
        }
    }
}

type SharedResolver = Arc<Mutex<Box<dyn Resolver + Send>>>;

/// What discovery found for a realm.
struct Discovered {
    /// The hosts, in the order discovery ranks them.
    hosts: Vec<String>,
    /// The hosts discovery added itself (dropped when no longer advertised).
    owned: Vec<String>,
    /// When DNS must be asked again (TTL, at most `discovery_refresh`).
    expires: Instant,
    /// A refresh task runs for the realm.
    refreshing: bool,
}

/// A Diameter node: peers, routing, handlers (see the [module documentation](self)). Cheap to
/// clone.
#[derive(Clone)]
pub struct Node {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("origin_host", &self.inner.cfg.origin_host)
            .finish()
    }
}

fn now() -> std::time::Instant {
    Instant::now().into_std()
}

fn key(host: &str) -> String {
    host.to_ascii_lowercase()
}

/// [`key`] for a lookup: the name itself when it has no upper-case letter (no copy).
fn lookup_key(host: &str) -> Cow<'_, str> {
    if host.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(host.to_ascii_lowercase())
    } else {
        Cow::Borrowed(host)
    }
}

/// [`NodeConfig::merge_repeated_destination_realm`]: `req` without the second and later
/// Destination-Realm AVPs when every copy names the same realm; otherwise `req` unchanged.
fn merge_repeated_destination_realm(req: OwnedMessage) -> OwnedMessage {
    let view = req.view();
    let copies: Vec<_> = view.find_all(dict::DESTINATION_REALM).collect();
    let [first, repeats @ ..] = copies.as_slice() else {
        return req;
    };
    if repeats.is_empty()
        || !repeats
            .iter()
            .all(|a| a.data().eq_ignore_ascii_case(first.data()))
    {
        return req;
    }
    let bytes = req.bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut at = 0;
    for a in repeats {
        let end = a.offset() + a.as_bytes().len().div_ceil(4) * 4;
        out.extend_from_slice(&bytes[at..a.offset()]);
        at = end.min(bytes.len());
    }
    out.extend_from_slice(&bytes[at..]);
    let len = (out.len() as u32).to_be_bytes();
    out[1..4].copy_from_slice(&len[1..]);
    // the same AVPs less some whole ones: it parses as the original did
    OwnedMessage::parse(Bytes::from(out), &ims_diameter::Limits::default()).unwrap_or(req)
}

fn unix_secs() -> u64 {
    #[allow(clippy::disallowed_methods)] // the node is above the sans-IO line
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Node {
    /// A node with no peer and no listener (call [`Node::listen`] / [`Node::add_peer`] inside a
    /// tokio runtime).
    pub fn new(cfg: NodeConfig) -> Node {
        let secs = unix_secs();
        let seed = secs
            .wrapping_mul(0x9e37_79b9_7f4a_7c15)
            .wrapping_add(u64::from(std::process::id()))
            ^ (cfg.origin_host.len() as u64).rotate_left(17);
        let mut table = RoutingTable::new(&cfg.origin_host, &cfg.origin_realm);
        for r in &cfg.routes {
            table.add(r.clone());
        }
        Node {
            inner: Arc::new(Inner {
                table,
                peers: Mutex::new(HashMap::default()),
                known: Mutex::new(HashMap::default()),
                handlers: RwLock::new(HashMap::default()),
                e2e: Mutex::new(EndToEnd::new(secs, seed as u32)),
                sessions: Mutex::new((secs as u32, (seed >> 32) as u32)),
                dups: Mutex::new(Duplicates::new(cfg.duplicate_window, cfg.duplicate_max)),
                dup_waiters: Mutex::new(HashMap::default()),
                redirects: Mutex::new(RedirectCache::new()),
                seed: Mutex::new(seed | 1),
                hop_by_hop: std::sync::atomic::AtomicU32::new((seed >> 16) as u32),
                resolver: Mutex::new(None),
                discovered: Mutex::new(HashMap::default()),
                #[cfg(feature = "tls")]
                inband_tls: Mutex::new(None),
                #[cfg(feature = "tls")]
                key_log: Mutex::new(None),
                stop: watch::Sender::new(false),
                tasks: Arc::default(),
                listeners: Mutex::new(Vec::new()),
                configured: Mutex::new(Vec::new()),
                applications: Mutex::new(cfg.applications.clone()),
                state_id: Mutex::new(cfg.origin_state_id),
                peer_state_ids: Mutex::new(HashMap::default()),
                restart_hooks: RwLock::new(Vec::new()),
                cfg,
            }),
        }
    }

    /// Origin-Host.
    pub fn origin_host(&self) -> &str {
        &self.inner.cfg.origin_host
    }
    /// Origin-Realm.
    pub fn origin_realm(&self) -> &str {
        &self.inner.cfg.origin_realm
    }
    /// The Origin AVPs for building answers ([`ims_diameter::answer::error_answer`]).
    pub fn origin(&self) -> Origin<'_> {
        Origin {
            host: &self.inner.cfg.origin_host,
            realm: &self.inner.cfg.origin_realm,
            state_id: self.origin_state_id(),
        }
    }

    /// Our Origin-State-Id now: [`NodeConfig::origin_state_id`], plus one per
    /// [`Node::restart`].
    pub fn origin_state_id(&self) -> Option<u32> {
        *self.inner.state_id.lock().expect("state id lock")
    }

    /// Calls `f` whenever a Diameter node shows another Origin-State-Id than the one it sent
    /// before: it restarted and lost its state (RFC 6733 §8.16), so sessions tied to it can be
    /// cleaned up (e.g. a PCRF's Rx sessions of a P-CSCF). Any message may carry it: a peer's
    /// CER/CEA and DWR/DWA (any other value counts: they arrive in the order sent) and every
    /// request or answer, for its Origin-Host, possibly a node behind a relay (only a higher
    /// value counts: a lower one is a late message of the old run). Before `f` runs the node
    /// itself forgets that origin's requests kept for duplicate detection (a reused
    /// End-to-End Identifier is a new request now; for a request that shows the change, before
    /// it is checked). Requests we had sent to a restarted peer were already failed over or
    /// ended when its old connection went down. A node that sends no Origin-State-Id, or 0
    /// ("infer nothing"), is never reported; the first value seen from a node is only
    /// remembered. `f` runs on the peer's task: keep it short.
    pub fn on_peer_restart(&self, f: impl Fn(&PeerRestart) + Send + Sync + 'static) {
        self.inner
            .restart_hooks
            .write()
            .expect("restart hooks lock")
            .push(Arc::new(f));
    }

    /// A peer opened: compare its Origin-State-Id with the last one seen.
    fn peer_opened(&self, info: &RemoteInfo) {
        if let Some(current) = info.origin_state_id {
            self.note_origin_state(&info.origin_host, current, true);
        }
    }

    /// The Origin-State-Id of a request or answer (RFC 6733 §8.16: any message may carry one),
    /// for its Origin-Host.
    fn message_origin_state(&self, view: &Message<'_>) {
        let (host, state) = origin_of(view);
        self.origin_state_of(host, state);
    }

    /// [`Node::message_origin_state`] with the message's Origin-Host and Origin-State-Id
    /// already read ([`origin_of`]).
    fn origin_state_of(&self, origin_host: Option<&str>, state: Option<u32>) {
        if let (Some(host), Some(current)) = (origin_host, state) {
            self.note_origin_state(host, current, false);
        }
    }

    /// `origin_host` sent Origin-State-Id `current`: remembered; another value than the last one
    /// means it restarted (its duplicates forgotten, [`Node::on_peer_restart`] hooks called).
    /// `in_order` is true for the hop-by-hop messages of the peer itself (CER/CEA, DWR/DWA),
    /// which arrive in the order it sent them: any change counts. A request or answer may have
    /// crossed agents on other paths than a later one, so only a higher value counts there (a
    /// lower one is a message of the old run arriving late). 0 means "infer nothing"
    /// (RFC 6733 §8.16) and is ignored.
    fn note_origin_state(&self, origin_host: &str, current: u32, in_order: bool) {
        if current == 0 {
            return;
        }
        let previous = {
            let mut ids = self
                .inner
                .peer_state_ids
                .lock()
                .expect("peer state ids lock");
            let host = origin_host.to_ascii_lowercase();
            match ids.get(&host).copied() {
                Some(p) if p == current || (!in_order && current < p) => return,
                p => {
                    ids.insert(host, current);
                    p
                }
            }
        };
        let Some(previous) = previous else {
            return;
        };
        self.inner
            .dups
            .lock()
            .expect("dups lock")
            .forget_origin(origin_host);
        let restart = PeerRestart {
            origin_host: origin_host.to_owned(),
            previous,
            current,
        };
        let hooks = self
            .inner
            .restart_hooks
            .read()
            .expect("restart hooks lock")
            .clone();
        for h in hooks {
            h(&restart);
        }
    }

    /// Writes a fresh Hop-by-Hop Identifier into a request about to be sent (see
    /// [`Inner::hop_by_hop`]).
    fn set_hop_by_hop(&self, request: &mut [u8]) {
        if let Some(h) = request.get_mut(12..16) {
            let id = self
                .inner
                .hop_by_hop
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            h.copy_from_slice(&id.to_be_bytes());
        }
    }

    /// A fresh End-to-End Identifier.
    pub fn next_end_to_end(&self) -> u32 {
        self.inner.e2e.lock().expect("e2e lock").next_id()
    }

    /// A fresh Session-Id `<Origin-Host>;<high 32 bits>;<low 32 bits>` (RFC 6733 §8.8).
    pub fn session_id(&self) -> String {
        let mut s = self.inner.sessions.lock().expect("session lock");
        s.1 = s.1.wrapping_add(1);
        format!("{};{};{}", self.inner.cfg.origin_host, s.0, s.1)
    }

    /// Spawns a task of the node (counted until it ends, see [`Node::wait_stopped`]).
    fn spawn<F>(&self, f: F) -> tokio::task::JoinHandle<()>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let guard = TaskGuard::new(&self.inner.tasks);
        tokio::spawn(async move {
            let _guard = guard;
            f.await;
        })
    }

    /// `true` once [`Node::shutdown`] has been called.
    pub fn is_stopped(&self) -> bool {
        *self.inner.stop.borrow()
    }

    /// Accepts on `l` until the node stops (the listener is closed then).
    async fn accept(&self, l: &TcpListener) -> Option<TcpStream> {
        let mut stop = self.inner.stop.subscribe();
        tokio::select! {
            r = l.accept() => r.ok().map(|(s, _)| s),
            _ = stop.wait_for(|s| *s) => None,
        }
    }

    /// Listens for peers on `addr`; returns the bound address.
    pub async fn listen(&self, addr: SocketAddr) -> Result<SocketAddr, NodeError> {
        let l = TcpListener::bind(addr).await?;
        let local = l.local_addr()?;
        self.inner
            .listeners
            .lock()
            .expect("listeners lock")
            .push((local, None));
        self.serve(l);
        Ok(local)
    }

    /// Accepts plain TCP peers on `l` until the node stops.
    fn serve(&self, l: TcpListener) {
        let node = self.clone();
        self.spawn(async move {
            while let Some(s) = node.accept(&l).await {
                let n = node.clone();
                node.spawn(async move {
                    let node = n;
                    let _ = s.set_nodelay(true);
                    node.on_accept(Conn::Tcp(s)).await;
                });
            }
        });
    }

    /// Listens for peers over TLS on `addr` (RFC 6733 §13: a dedicated port, 5658 by default,
    /// where the TLS handshake comes right after the TCP connect); returns the bound address.
    /// `tls` needs an identity; use [`crate::tls::ClientAuth::Required`] for the mutual
    /// authentication the RFC asks for. Feature `tls`.
    #[cfg(feature = "tls")]
    pub async fn listen_tls(
        &self,
        addr: SocketAddr,
        tls: crate::tls::TlsConfig,
    ) -> Result<SocketAddr, NodeError> {
        if !tls.has_server() {
            return Err(NodeError::Io(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                crate::tls::TlsError::NoIdentity,
            )));
        }
        let tls = self
            .with_key_log(tls)
            .map_err(|e| NodeError::Io(std::io::Error::other(e)))?;
        let l = TcpListener::bind(addr).await?;
        let local = l.local_addr()?;
        self.inner
            .listeners
            .lock()
            .expect("listeners lock")
            .push((local, Some(tls.clone())));
        self.serve_tls(l, tls);
        Ok(local)
    }

    /// Accepts TLS peers on `l` until the node stops.
    #[cfg(feature = "tls")]
    fn serve_tls(&self, l: TcpListener, tls: crate::tls::TlsConfig) {
        let node = self.clone();
        self.spawn(async move {
            while let Some(s) = node.accept(&l).await {
                let n = node.clone();
                let tls = tls.clone();
                node.spawn(async move {
                    let node = n;
                    let _ = s.set_nodelay(true);
                    let to = node.inner.cfg.connect_timeout;
                    if let Ok(Ok(t)) = tokio::time::timeout(to, tls.accept(s)).await {
                        // with CA trust, the client certificate must name the CER's Origin-Host
                        let cert = crate::tls::peer_certificate(&t)
                            .filter(|_| tls.trusts_by_name())
                            .unwrap_or_default();
                        node.on_accept_checked(Conn::Tls(Box::new(t)), cert).await;
                    }
                });
            }
        });
    }

    /// Sets the TLS configuration of inband security (RFC 3588 §2.1, RFC 6733 §6.10): on plain
    /// TCP connections (from [`Node::listen`] and [`Node::add_peer`]), when
    /// [`NodeConfig::inband_security`] offers TLS and the peer agrees in CER/CEA, the handshake
    /// starts on the same connection right after the CEA: we are the TLS client on the
    /// connections we open, the server on those we accept (`tls` then needs an identity). The
    /// peer's certificate is checked as on the TLS port ([`Node::listen_tls`],
    /// [`Node::add_peer_tls`]): the server's against the peer's DiameterIdentity, the client's,
    /// with CA trust, against the CER's Origin-Host. Feature `tls`.
    #[cfg(feature = "tls")]
    pub fn set_inband_tls(&self, tls: crate::tls::TlsConfig) {
        let tls = self.with_key_log(tls.clone()).unwrap_or(tls);
        *self.inner.inband_tls.lock().expect("tls lock") = Some(tls);
    }

    /// `tls` writing its secrets to [`NodeConfig::tls_key_log`] when one is configured.
    #[cfg(feature = "tls")]
    fn with_key_log(
        &self,
        tls: crate::tls::TlsConfig,
    ) -> Result<crate::tls::TlsConfig, crate::tls::TlsError> {
        let Some(path) = &self.inner.cfg.tls_key_log else {
            return Ok(tls);
        };
        let mut log = self.inner.key_log.lock().expect("key log lock");
        let file = match &*log {
            Some(f) => f.clone(),
            None => log.insert(crate::tls::KeyLogFile::create(path)?).clone(),
        };
        Ok(tls.with_key_log(file))
    }

    /// Reads the first message (the CER) of an inbound connection to find its peer.
    async fn on_accept(&self, s: Conn) {
        self.on_accept_checked(s, Vec::new()).await;
    }

    /// [`Node::on_accept`]; when `cert` (DER) is not empty it must name the CER's Origin-Host
    /// (TLS with CA trust: the certificate authenticates that identity), else the connection is
    /// dropped.
    async fn on_accept_checked(&self, mut s: Conn, cert: Vec<u8>) {
        // exactly the first message: an inband TLS handshake may follow the CEA
        let max = ims_diameter::Limits::default().max_message_size;
        let read = async {
            let frame = s.read_message(max).await?;
            let host = Message::parse(&frame).ok()?.origin_host()?.to_owned();
            Some((frame, host))
        };
        let Ok(Some((seen, host))) =
            tokio::time::timeout(self.inner.cfg.connect_timeout, read).await
        else {
            return;
        };
        if self.is_stopped() {
            return;
        }
        #[cfg(feature = "tls")]
        if !cert.is_empty() && !crate::tls::names_host(&cert, &host) {
            return;
        }
        #[cfg(not(feature = "tls"))]
        let _ = cert;
        let known = self
            .inner
            .known
            .lock()
            .expect("known lock")
            .contains_key(&key(&host));
        let handle = {
            let peers = self.inner.peers.lock().expect("peers lock");
            peers.get(&key(&host)).cloned()
        };
        let handle = match handle {
            Some(h) => h,
            None if known || self.inner.cfg.accept_unknown_peers => {
                self.spawn_peer(&host, None, known, Default::default())
            }
            None => return,
        };
        let _ = handle.tx.send(Cmd::Accept(s, Bytes::from(seen)));
    }

    fn next_seed(&self) -> u64 {
        let mut s = self.inner.seed.lock().expect("seed lock");
        *s = s.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        *s
    }

    fn spawn_peer(
        &self,
        host: &str,
        addr: Option<SocketAddr>,
        expected: bool,
        tls: PeerTls,
    ) -> PeerHandle {
        let mut peers = self.inner.peers.lock().expect("peers lock");
        if let Some(h) = peers.get(&key(host)) {
            return h.clone();
        }
        let apps = self.applications();
        let mut cfg = self
            .inner
            .cfg
            .peer_config(apps, expected.then_some(host), self.next_seed());
        cfg.origin_state_id = self.origin_state_id();
        let peer = Peer::new(cfg, now());
        let (tx, rx) = mpsc::unbounded_channel();
        let (st_tx, st_rx) = watch::channel(PeerStatus {
            state: PeerState::Closed,
            watchdog: WatchdogState::Initial,
            remote: None,
            stats: PeerStats::default(),
            secure: false,
            writes: 0,
            reads: 0,
        });
        let handle = PeerHandle {
            tx: tx.clone(),
            status: st_rx,
        };
        peers.insert(key(host), handle.clone());
        let task = PeerTask {
            stop: self.inner.stop.subscribe(),
            forgotten: false,
            node: self.clone(),
            host: host.to_owned(),
            addr,
            peer,
            tx,
            status: st_tx,
            writers: [None, None],
            tls,
            readers: [None, None],
            backlog: Default::default(),
            handshakes: [None, None],
            handshaking: [None; 2],
            gen: 0,
            replies: HashMap::default(),
            rx,
            queued: VecDeque::new(),
            next_tag: 0,
            name: None,
            remote_seen: 0,
            batch: Vec::new(),
            batch_side: None,
            batch_octets: 0,
            writes: 0,
            reads: 0,
            held: None,
        };
        self.spawn(task.run(addr.is_some()));
        handle
    }

    /// Adds a peer we connect to (and reconnect to after Tc); its CER/CEA must name `host`.
    pub fn add_peer(&self, host: &str, addr: SocketAddr) {
        self.inner
            .known
            .lock()
            .expect("known lock")
            .insert(key(host), addr);
        self.configure_peer(host, addr, Default::default());
        self.spawn_peer(host, Some(addr), true, Default::default());
    }

    /// Remembers a peer we connect to, for [`Node::restart`].
    fn configure_peer(&self, host: &str, addr: SocketAddr, tls: PeerTls) {
        let mut c = self.inner.configured.lock().expect("configured lock");
        if !c.iter().any(|(h, _, _)| key(h) == key(host)) {
            c.push((host.to_owned(), addr, tls));
        }
    }

    /// Adds a peer we connect to over TLS (RFC 6733 §13: TLS right after the TCP connect, on
    /// the peer's TLS port, 5658 by default); its certificate is checked with `tls`'s trust
    /// against `host` (unless `tls` names another server name), and our identity in `tls` is
    /// presented when the peer asks. Reconnects after Tc like [`Node::add_peer`]. Feature `tls`.
    #[cfg(feature = "tls")]
    pub fn add_peer_tls(&self, host: &str, addr: SocketAddr, tls: crate::tls::TlsConfig) {
        self.inner
            .known
            .lock()
            .expect("known lock")
            .insert(key(host), addr);
        let tls = self.with_key_log(tls.clone()).unwrap_or(tls);
        self.configure_peer(host, addr, Some(tls.clone()));
        self.spawn_peer(host, Some(addr), true, Some(tls));
    }

    /// Records where `host` can be reached without connecting: it is connected on demand (a
    /// redirect or a route naming it) and accepted when it connects to us.
    pub fn add_known_host(&self, host: &str, addr: SocketAddr) {
        self.inner
            .known
            .lock()
            .expect("known lock")
            .insert(key(host), addr);
    }

    /// Sets the DNS lookups of dynamic peer discovery (RFC 6733 §5.2, RFC 6408): a request for a
    /// Destination-Realm with no usable peer then looks the realm up (NAPTR, else the
    /// `_diameter._tcp` SRV records, else the realm's own A/AAAA records on port 3868) and
    /// connects to what it finds. The resolver runs on tokio's blocking pool, so a real DNS
    /// client may block.
    pub fn set_resolver(&self, resolver: impl Resolver + Send + 'static) {
        *self.inner.resolver.lock().expect("resolver lock") =
            Some(Arc::new(Mutex::new(Box::new(resolver))));
    }

    /// Discovers the peers serving `application_id` in `realm` with the resolver of
    /// [`Node::set_resolver`] and adds them (TCP candidates with an address; connected to like
    /// [`Node::add_peer`], their CEA must name the discovered host, except for the realm-address
    /// fallback, where the peer is known by the realm name and any Origin-Host is accepted). Returns their host names in
    /// the order discovery ranks them (empty without a resolver or when nothing is found).
    /// Hosts that already have a peer are kept as they are.
    pub async fn discover_peers(&self, realm: &str, application_id: u32) -> Vec<String> {
        if self.is_stopped() {
            return Vec::new();
        }
        let Some(resolver) = self.inner.resolver.lock().expect("resolver lock").clone() else {
            return Vec::new();
        };
        // TLS-port candidates (`aaas+`/`diameter.tls.tcp`, `_diameters._tcp`) when the node has
        // a TLS configuration, preferred over TCP; SCTP never (no SCTP transport here)
        #[cfg(feature = "tls")]
        let tls = self.inner.inband_tls.lock().expect("tls lock").clone();
        #[cfg(feature = "tls")]
        let transports: Vec<Transport> = if tls.is_some() {
            vec![Transport::TlsTcp, Transport::Tcp]
        } else {
            vec![Transport::Tcp]
        };
        #[cfg(not(feature = "tls"))]
        let transports = vec![Transport::Tcp];
        let mut seed = self.next_seed();
        let name = realm.to_owned();
        let (found, ttl) = tokio::task::spawn_blocking(move || {
            let mut dns = resolver.lock().expect("resolver lock");
            let mut random = |n: u32| {
                seed = seed
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                ((seed >> 33) % (u64::from(n) + 1)) as u32
            };
            let _ = dns.take_min_ttl();
            let found = discover(&mut **dns, &name, application_id, &transports, &mut random);
            (found, dns.take_min_ttl())
        })
        .await
        .unwrap_or_default();
        let mut owned = self
            .inner
            .discovered
            .lock()
            .expect("discovered lock")
            .get(&key(realm))
            .map(|d| d.owned.clone())
            .unwrap_or_default();
        let mut hosts: Vec<String> = Vec::new();
        for c in found {
            let Some(ip) = c.addresses.first() else {
                continue;
            };
            if hosts.iter().any(|h| h.eq_ignore_ascii_case(&c.host)) {
                continue;
            }
            if !self.has_peer(&c.host) {
                let addr = SocketAddr::new(*ip, c.port);
                if c.transport == Transport::TlsTcp {
                    #[cfg(feature = "tls")]
                    if let Some(tls) = &tls {
                        self.add_peer_tls(&c.host, addr, tls.clone());
                    }
                } else if c.host.eq_ignore_ascii_case(realm) {
                    // the realm's own address (no NAPTR, no SRV): its DiameterIdentity is not
                    // known in advance, so the CEA's Origin-Host is not checked
                    self.inner
                        .known
                        .lock()
                        .expect("known lock")
                        .insert(key(&c.host), addr);
                    self.spawn_peer(&c.host, Some(addr), false, Default::default());
                } else {
                    self.add_peer(&c.host, addr);
                }
                owned.push(c.host.clone());
            }
            hosts.push(c.host);
        }
        // peers discovery added that DNS no longer advertises are let go
        let gone: Vec<String> = owned
            .iter()
            .filter(|o| !hosts.iter().any(|h| h.eq_ignore_ascii_case(o)))
            .cloned()
            .collect();
        owned.retain(|o| hosts.iter().any(|h| h.eq_ignore_ascii_case(o)));
        for g in &gone {
            self.forget_peer(g);
        }
        let keep = self
            .inner
            .cfg
            .discovery_refresh
            .min(ttl.unwrap_or(Duration::MAX));
        let mut map = self.inner.discovered.lock().expect("discovered lock");
        if hosts.is_empty() {
            map.remove(&key(realm));
            return hosts;
        }
        let refreshing = map.get(&key(realm)).is_some_and(|d| d.refreshing);
        map.insert(
            key(realm),
            Discovered {
                hosts: hosts.clone(),
                owned,
                expires: Instant::now() + keep,
                refreshing: true,
            },
        );
        drop(map);
        if !refreshing {
            self.spawn(refresh_loop(
                Arc::downgrade(&self.inner),
                self.inner.stop.subscribe(),
                realm.to_owned(),
                application_id,
            ));
        }
        hosts
    }

    /// Disconnects a peer (DPR DO_NOT_WANT_TO_TALK_TO_YOU, no reconnection) and forgets it.
    fn forget_peer(&self, host: &str) {
        let _ = self.disconnect(host, DisconnectCause::DoNotWantToTalkToYou);
        self.inner
            .configured
            .lock()
            .expect("configured lock")
            .retain(|(h, _, _)| key(h) != key(host));
        if let Some(h) = self.inner.peers.lock().expect("peers lock").get(&key(host)) {
            let _ = h.tx.send(Cmd::Forget);
        }
        self.inner
            .peers
            .lock()
            .expect("peers lock")
            .remove(&key(host));
        self.inner
            .known
            .lock()
            .expect("known lock")
            .remove(&key(host));
        // RFC 6733 §6.14: no cached redirect names a host that is gone
        self.inner
            .redirects
            .lock()
            .expect("redirect lock")
            .forget_host(host);
    }

    /// The hosts discovery found for `realm` (see [`Node::discover_peers`]).
    pub fn discovered_peers(&self, realm: &str) -> Vec<String> {
        self.inner
            .discovered
            .lock()
            .expect("discovered lock")
            .get(&key(realm))
            .map(|d| d.hosts.clone())
            .unwrap_or_default()
    }

    /// The discovered hosts of `realm` while their DNS data is fresh.
    fn fresh_discovered(&self, realm: &str) -> Vec<String> {
        self.inner
            .discovered
            .lock()
            .expect("discovered lock")
            .get(&key(realm))
            .filter(|d| d.expires > Instant::now())
            .map(|d| d.hosts.clone())
            .unwrap_or_default()
    }

    /// For a request whose candidates are all unusable: discovers its Destination-Realm's peers
    /// (once per realm while they last) and waits for the first to open. Returns the new
    /// candidates, or `None` when discovery has nothing to add.
    async fn discover_for(
        &self,
        realm: &str,
        app_id: u32,
        candidates: &[Cow<'_, str>],
        deadline: Instant,
    ) -> Option<Vec<String>> {
        if self.inner.resolver.lock().expect("resolver lock").is_none() {
            return None;
        }
        if candidates.iter().any(|h| self.peer_usable(h, app_id)) {
            return None;
        }
        let mut hosts = self.fresh_discovered(realm);
        if hosts.is_empty() {
            hosts = self.discover_peers(realm, app_id).await;
        }
        if hosts.is_empty() {
            return None;
        }
        // wait for one of them to open (they connect in parallel)
        while !hosts.iter().any(|h| self.peer_usable(h, app_id)) && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let mut out = hosts;
        for c in candidates {
            if !out.iter().any(|o| o.eq_ignore_ascii_case(c)) {
                out.push(c.clone().into_owned());
            }
        }
        Some(out)
    }

    /// `host` has a peer (without cloning its status).
    fn has_peer(&self, host: &str) -> bool {
        let peers = self.inner.peers.lock().expect("peers lock");
        peers.contains_key(&*lookup_key(host))
    }

    /// `host` has a peer usable for `app_id` (without cloning its status).
    fn peer_usable(&self, host: &str, app_id: u32) -> bool {
        let peers = self.inner.peers.lock().expect("peers lock");
        peers
            .get(&*lookup_key(host))
            .is_some_and(|h| h.status.borrow().usable_for(app_id))
    }

    /// The status of a peer.
    pub fn peer_status(&self, host: &str) -> Option<PeerStatus> {
        let peers = self.inner.peers.lock().expect("peers lock");
        peers.get(&key(host)).map(|h| h.status.borrow().clone())
    }

    /// Every peer with its status.
    pub fn peers(&self) -> Vec<(String, PeerStatus)> {
        let peers = self.inner.peers.lock().expect("peers lock");
        peers
            .iter()
            .map(|(k, h)| (k.clone(), h.status.borrow().clone()))
            .collect()
    }

    /// Waits until `host` is open with its watchdog OKAY.
    pub async fn wait_open(&self, host: &str, timeout: Duration) -> Result<RemoteInfo, NodeError> {
        self.wait_status(host, timeout, |s| s.usable_for(app::COMMON))
            .await
            .and_then(|s| {
                s.remote
                    .ok_or_else(|| NodeError::PeerNotOpen(host.to_owned()))
            })
    }

    /// Waits until `host` is closed (e.g. after [`Node::disconnect`]).
    pub async fn wait_closed(&self, host: &str, timeout: Duration) -> Result<(), NodeError> {
        self.wait_status(host, timeout, |s| s.state == PeerState::Closed)
            .await
            .map(drop)
    }

    async fn wait_status(
        &self,
        host: &str,
        timeout: Duration,
        f: impl Fn(&PeerStatus) -> bool,
    ) -> Result<PeerStatus, NodeError> {
        let deadline = Instant::now() + timeout;
        loop {
            let h = self
                .inner
                .peers
                .lock()
                .expect("peers lock")
                .get(&key(host))
                .cloned();
            if let Some(mut h) = h {
                let r = tokio::time::timeout_at(deadline, h.status.wait_for(|s| f(s))).await;
                return match r {
                    Ok(Ok(s)) => Ok(s.clone()),
                    Ok(Err(_)) => Err(NodeError::Closed),
                    Err(_) => Err(NodeError::PeerNotOpen(host.to_owned())),
                };
            }
            if Instant::now() >= deadline {
                return Err(NodeError::PeerNotOpen(host.to_owned()));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Sends DPR with `cause` to a peer (RFC 6733 §5.4) and stops reconnecting to it.
    pub fn disconnect(&self, host: &str, cause: DisconnectCause) -> Result<(), NodeError> {
        let peers = self.inner.peers.lock().expect("peers lock");
        let h = peers
            .get(&key(host))
            .ok_or_else(|| NodeError::PeerNotOpen(host.to_owned()))?;
        h.tx.send(Cmd::Disconnect(cause))
            .map_err(|_| NodeError::Closed)
    }

    /// Stops the node: its listeners close, discovery stops (no DNS lookup from now on, the
    /// refresh tasks end), every open peer gets DPR (REBOOTING, RFC 6733 §5.4) and no peer
    /// reconnects; each peer's task ends once its connection is closed (DPA received, the
    /// disconnect timeout, or the peer gone). Requests still pending on a peer fail with
    /// [`NodeError::Closed`] when its task ends, new ones fail at once. Wait for the tasks with
    /// [`Node::wait_stopped`].
    pub fn shutdown(&self) {
        self.inner.stop.send_replace(true);
        let peers = self.inner.peers.lock().expect("peers lock");
        for h in peers.values() {
            let _ = h.tx.send(Cmd::Disconnect(DisconnectCause::Rebooting));
        }
    }

    /// After [`Node::shutdown`]: waits until every task the node spawned (listeners, peers,
    /// inband TLS handshakes, discovery refreshes, request handlers) has ended, or
    /// `timeout` passes ([`NodeError::Timeout`]). With a handler that never returns, the wait
    /// times out.
    pub async fn wait_stopped(&self, timeout: Duration) -> Result<(), NodeError> {
        let tasks = &self.inner.tasks;
        let idle = async {
            loop {
                let notified = tasks.idle.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                if tasks.live.load(std::sync::atomic::Ordering::SeqCst) == 0 {
                    return;
                }
                notified.await;
            }
        };
        tokio::time::timeout(timeout, idle)
            .await
            .map_err(|_| NodeError::Timeout)
    }

    /// Starts a stopped node again ([`Node::shutdown`]): waits up to `timeout` for its old
    /// tasks to end ([`Node::wait_stopped`]), then binds every listener again on the address it
    /// had (same port; `Node::listen_tls` ones with their TLS configuration) and connects again
    /// to every peer added with [`Node::add_peer`] / `Node::add_peer_tls` (fresh CER/CEA).
    /// Peers that had connected to us reconnect by themselves; peers found by discovery are
    /// looked up again on the next request that needs them. Handlers, routes, the resolver,
    /// the inband TLS configuration and [`Node::update_applications`] are kept. The state of
    /// the old run (pending requests, connections) is lost, so the Origin-State-Id, when one
    /// is configured, goes up by one (RFC 6733 §8.16) and the new CER/CEA and DWR/DWA carry it
    /// ([`Node::origin_state_id`]): peers learn that we restarted. Returns the listening
    /// addresses. On a running node it does nothing and returns them too.
    ///
    /// Errors: [`NodeError::Timeout`] when old tasks are still running (e.g. a handler that
    /// never returns), [`NodeError::Io`] when a listener cannot be bound again (the node stays
    /// stopped then; call again).
    pub async fn restart(&self, timeout: Duration) -> Result<Vec<SocketAddr>, NodeError> {
        let listeners = self.inner.listeners.lock().expect("listeners lock").clone();
        let addrs: Vec<SocketAddr> = listeners.iter().map(|(a, _)| *a).collect();
        if !self.is_stopped() {
            return Ok(addrs);
        }
        self.wait_stopped(timeout).await?;
        // bind everything first: a port taken meanwhile leaves the node stopped
        let mut bound = Vec::with_capacity(listeners.len());
        for (addr, tls) in listeners {
            bound.push((TcpListener::bind(addr).await?, tls));
        }
        // the old peer tasks have ended: drop their handles and discovery's results
        self.inner.peers.lock().expect("peers lock").clear();
        let owned: Vec<String> = {
            let mut d = self.inner.discovered.lock().expect("discovery lock");
            let owned = d
                .values()
                .flat_map(|x| x.owned.iter().map(|h| key(h)))
                .collect();
            d.clear();
            owned
        };
        {
            let mut id = self.inner.state_id.lock().expect("state id lock");
            *id = id.map(|v| v.wrapping_add(1));
        }
        self.inner.stop.send_replace(false);
        for (l, tls) in bound {
            match tls {
                None => self.serve(l),
                #[cfg(feature = "tls")]
                Some(t) => self.serve_tls(l, t),
                #[cfg(not(feature = "tls"))]
                Some(t) => match t {},
            }
        }
        let configured = self
            .inner
            .configured
            .lock()
            .expect("configured lock")
            .clone();
        for (host, addr, tls) in configured {
            if !owned.contains(&key(&host)) {
                self.spawn_peer(&host, Some(addr), true, tls);
            }
        }
        Ok(addrs)
    }

    /// How many tasks of the node are running (0 once [`Node::wait_stopped`] returned `Ok`).
    pub fn running_tasks(&self) -> usize {
        self.inner
            .tasks
            .live
            .load(std::sync::atomic::Ordering::SeqCst)
    }

    /// The applications the node advertises now.
    pub fn applications(&self) -> Vec<Application> {
        self.inner
            .applications
            .lock()
            .expect("applications lock")
            .clone()
    }

    /// Changes the applications the node advertises without closing its connections (RFC 6737
    /// Capabilities Update): every open peer that advertised the Capabilities Update application
    /// gets a CUR with the new list (include [`Application::CAPABILITIES_UPDATE`] in it, and in
    /// [`NodeConfig::applications`], to keep the ability); when its CUA says DIAMETER_SUCCESS the
    /// common applications in [`PeerStatus::remote`] change and requests are routed by them. A
    /// peer that shares nothing any more answers 5010 and disconnects. Other peers, and every
    /// later capabilities exchange, get the new list in their next CER/CEA. A peer that leaves
    /// the CUR unanswered gets it once more after Tw; after another Tw its connection is closed
    /// and, for the peers we connect to, opened again after Tc with a CER carrying the new list
    /// (see [`ims_diameter::peer::CUR_RETRANSMISSIONS`]).
    pub fn update_applications(&self, applications: Vec<Application>) {
        *self.inner.applications.lock().expect("applications lock") = applications.clone();
        let peers = self.inner.peers.lock().expect("peers lock");
        for h in peers.values() {
            let _ = h.tx.send(Cmd::UpdateApplications(applications.clone()));
        }
    }

    /// Registers the handler of requests with this Application-Id and command code. The future
    /// returns the answer octets (e.g. `Maa { .. }.encode_answer(req.message.header())`).
    /// Requests without a handler are routed by the table: relayed, redirected, or answered
    /// 3001/3007.
    pub fn handle<F, Fut>(&self, application_id: u32, command_code: u32, f: F)
    where
        F: Fn(Incoming) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Vec<u8>> + Send + 'static,
    {
        let h: Handler = Arc::new(move |i| Box::pin(f(i)));
        self.inner
            .handlers
            .write()
            .expect("handlers lock")
            .insert((application_id, command_code), h);
    }

    /// Encodes a typed request with a fresh End-to-End Identifier and sends it
    /// ([`Node::request`]).
    pub async fn send<'a, C: Command<'a>>(&self, request: &C) -> Result<OwnedMessage, NodeError> {
        let bytes = request.encode(0, self.next_end_to_end());
        self.request(bytes).await
    }

    /// Sends a request (its Hop-by-Hop Identifier is set per peer) and waits for the answer, with
    /// the configured timeout.
    pub async fn request(&self, request: Vec<u8>) -> Result<OwnedMessage, NodeError> {
        self.request_with_timeout(request, self.inner.cfg.request_timeout)
            .await
    }

    /// [`Node::request`] with its own timeout. The peer is chosen as RFC 6733 §6.1 says:
    /// a cached redirect, else Destination-Host if it is a peer, else the realm's route, else any
    /// open peer that supports the application. A 3006 answer is followed (up to
    /// `max_redirects`: the request goes to the Redirect-Host, connecting to it if it is only
    /// known by address, and the redirect is cached as its Redirect-Host-Usage says).
    pub async fn request_with_timeout(
        &self,
        request: Vec<u8>,
        timeout: Duration,
    ) -> Result<OwnedMessage, NodeError> {
        let deadline = Instant::now() + timeout;
        // shared, not copied, with the peer task that sends it (kept for a redirect): its
        // Hop-by-Hop Identifier is written before
        let mut request = request;
        self.set_hop_by_hop(&mut request);
        let mut req = Bytes::from(request);
        let mut forced: Option<Vec<String>> = None;
        let mut redirects = 0;
        loop {
            // parsed once per attempt; the candidates borrow their names from it and from
            // the routing table where they can
            let msg = Message::parse(&req)?;
            let app_id = msg.application_id();
            let discover = forced.is_none();
            // Destination-Host, Destination-Realm and Route-Record found in one walk
            let route = self.inner.table.route_avps(&msg);
            // the common case: no redirect cached for it and a Destination-Host that is a
            // usable peer, the first candidate, used without listing the others
            let plain = discover
                && self
                    .inner
                    .redirects
                    .lock()
                    .expect("redirect lock")
                    .lookup(now(), &msg)
                    .is_none();
            // without a Destination-Host (Cx/Rx towards a realm): the first candidate that
            // `send_listed` would send to, found without listing them all
            let direct = match route.destination_host {
                Some(h) => plain.then_some(Cow::Borrowed(h)),
                None if plain => self.first_candidate(&msg, &route, app_id),
                None => None,
            };
            let sent = match direct {
                Some(host) => {
                    self.send_direct(&host, &msg, &route, app_id, req.clone(), deadline)
                        .await
                }
                None => None,
            };
            let answer = match sent {
                Some(answer) => answer?,
                None => {
                    self.send_listed(forced.take(), &msg, &route, app_id, req.clone(), deadline)
                        .await?
                }
            };
            let Some(redirect) = redirect_of(&answer.view()) else {
                return Ok(answer);
            };
            redirects += 1;
            if redirects > self.inner.cfg.max_redirects {
                return Err(NodeError::TooManyRedirects);
            }
            self.inner
                .redirects
                .lock()
                .expect("redirect lock")
                .insert(now(), &msg, &redirect);
            let unsupported: Vec<String> = redirect
                .hosts
                .iter()
                .filter(|u| {
                    DiameterUri::parse(u).is_ok_and(|p| {
                        p.transport
                            .is_some_and(|t| t != ims_diameter::UriTransport::Tcp)
                    })
                })
                .cloned()
                .collect();
            if !redirect.hosts.is_empty() && unsupported.len() == redirect.hosts.len() {
                return Err(NodeError::UnsupportedTransport(unsupported));
            }
            let hosts = self.ensure_hosts(&redirect.hosts, deadline).await;
            if hosts.is_empty() {
                return Ok(answer);
            }
            // the request goes to the redirected host by name (TS 29.228 §6.3 Dx)
            let mut request = set_destination_host(&req, &hosts[0]);
            self.set_hop_by_hop(&mut request);
            req = Bytes::from(request);
            forced = Some(hosts);
        }
    }

    /// Sends a locally originated request to the first usable of its candidates (`forced`: those
    /// of a redirect; else [`Node::candidates`], discovery for its realm when none is usable).
    async fn send_listed(
        &self,
        forced: Option<Vec<String>>,
        msg: &Message<'_>,
        route: &RouteAvps<'_>,
        app_id: u32,
        req: Bytes,
        deadline: Instant,
    ) -> Result<OwnedMessage, NodeError> {
        let discover = forced.is_none();
        let mut candidates: Vec<Cow<'_, str>> = match forced {
            Some(f) => f.into_iter().map(Cow::Owned).collect(),
            None => self.candidates(msg, route),
        };
        if let Some(realm) = route.destination_realm.filter(|_| discover) {
            if let Some(c) = self
                .discover_for(realm, app_id, &candidates, deadline)
                .await
            {
                candidates = c.into_iter().map(Cow::Owned).collect();
            }
        }
        self.send_to_candidates(&candidates, app_id, req, deadline, None)
            .await
    }

    /// [`Node::send_listed`] for a request whose Destination-Host `host` (no redirect cached
    /// for it) is a usable peer: sent to it with no candidate list made; only an answer asking
    /// for another peer (RFC 6733 §7.1.3) makes the list, for the peers after it. `None` when
    /// `host` is not usable (nothing was sent).
    async fn send_direct(
        &self,
        host: &str,
        msg: &Message<'_>,
        route: &RouteAvps<'_>,
        app_id: u32,
        req: Bytes,
        deadline: Instant,
    ) -> Option<Result<OwnedMessage, NodeError>> {
        let (tx, rx) = oneshot::channel();
        self.dispatch_to(host, app_id, req.clone(), deadline, tx)
            .ok()?;
        let answer = match wait_answer(rx, deadline).await {
            Ok(a) => a,
            Err(e) => return Some(Err(e)),
        };
        if !alternate_peer_wanted(&answer.view()) {
            return Some(Ok(answer));
        }
        let candidates = self.candidates(msg, route);
        if self.pick(&candidates, app_id, &[host]).is_none() {
            return Some(Ok(answer));
        }
        Some(
            self.send_to_candidates(&candidates, app_id, req, deadline, Some(host))
                .await,
        )
    }

    /// The peers a locally originated request may go to, in order.
    /// (Names are borrowed from the request and the routing table; only the redirect cache's
    /// and the peer table's, read under their locks, are copied, each once.)
    /// `route`: the request's routing AVPs ([`RoutingTable::route_avps`]).
    fn candidates<'a>(&'a self, msg: &Message<'a>, route: &RouteAvps<'a>) -> Vec<Cow<'a, str>> {
        let mut out: Vec<Cow<'a, str>> = Vec::with_capacity(4);
        fn push<'a>(out: &mut Vec<Cow<'a, str>>, h: Cow<'a, str>) {
            if !out.iter().any(|o| o.eq_ignore_ascii_case(&h)) {
                out.push(h);
            }
        }
        if let Some(hosts) = self
            .inner
            .redirects
            .lock()
            .expect("redirect lock")
            .lookup(now(), msg)
        {
            for h in hosts {
                let h = DiameterUri::parse(h).map_or(h.as_str(), |u| u.host);
                if !out.iter().any(|o| o.eq_ignore_ascii_case(h)) {
                    out.push(Cow::Owned(h.to_owned()));
                }
            }
        }
        if let Some(h) = route.destination_host {
            push(&mut out, Cow::Borrowed(h));
        }
        if let Decision::Forward { peers, .. } = self.inner.table.decide_with(msg, route) {
            for p in peers {
                push(&mut out, Cow::Borrowed(p));
            }
        }
        let app_id = msg.application_id();
        // the statuses are read in place under the lock (not cloned with their RemoteInfo)
        let realm = route.destination_realm;
        let peers = self.inner.peers.lock().expect("peers lock");
        // only the peers not named yet (the same order as sorting all and skipping those)
        let mut others: Vec<(&str, bool)> = peers
            .iter()
            .filter_map(|(h, p)| {
                if out.iter().any(|o| o.eq_ignore_ascii_case(h)) {
                    return None;
                }
                let s = p.status.borrow();
                if !s.usable_for(app_id) {
                    return None;
                }
                let direct = s.remote.as_ref().is_some_and(|r| {
                    realm.is_some_and(|d| d.eq_ignore_ascii_case(&r.origin_realm))
                });
                Some((h.as_str(), direct))
            })
            .collect();
        // peers of the destination realm first, then agents
        others.sort_unstable_by(|(h1, d1), (h2, d2)| (!*d1, h1).cmp(&(!*d2, h2)));
        out.extend(others.into_iter().map(|(h, _)| Cow::Owned(h.to_owned())));
        out
    }

    /// The first of [`Node::candidates`] usable for `app_id` (the peer [`Node::dispatch`] picks
    /// from them) for a request with no Destination-Host and no cached redirect: the first
    /// usable peer its route names, else the usable peer first in the order of the others
    /// (the destination realm's peers, then agents, by name), found in one pass over the peers
    /// with no list made. `None` when none is usable.
    fn first_candidate<'a>(
        &'a self,
        msg: &Message<'a>,
        route: &RouteAvps<'a>,
        app_id: u32,
    ) -> Option<Cow<'a, str>> {
        let named = match self.inner.table.decide_with(msg, route) {
            Decision::Forward { peers, .. } => peers,
            _ => Vec::new(),
        };
        let peers = self.inner.peers.lock().expect("peers lock");
        let usable = |h: &str| {
            peers
                .get(&*lookup_key(h))
                .is_some_and(|p| p.status.borrow().usable_for(app_id))
        };
        if let Some(p) = named.into_iter().find(|p| usable(p)) {
            return Some(Cow::Borrowed(p));
        }
        let realm = route.destination_realm;
        peers
            .iter()
            .filter_map(|(h, p)| {
                let s = p.status.borrow();
                if !s.usable_for(app_id) {
                    return None;
                }
                let direct = s.remote.as_ref().is_some_and(|r| {
                    realm.is_some_and(|d| d.eq_ignore_ascii_case(&r.origin_realm))
                });
                Some((!direct, h.as_str()))
            })
            .min()
            .map(|(_, h)| Cow::Owned(h.to_owned()))
    }

    /// Makes sure redirect hosts have peers (connecting to those known by address or whose URI
    /// names an address); returns their host names.
    async fn ensure_hosts(&self, uris: &[String], deadline: Instant) -> Vec<String> {
        let mut hosts = Vec::new();
        for u in uris {
            let (host, port) = match DiameterUri::parse(u) {
                // SCTP/UDP URIs: no such transport here (skipped; all of them → an error)
                Ok(p)
                    if p.transport
                        .is_some_and(|t| t != ims_diameter::UriTransport::Tcp) =>
                {
                    continue
                }
                Ok(p) => (p.host.to_owned(), p.port_or_default()),
                Err(_) => (u.clone(), 3868),
            };
            let has_peer = self.has_peer(&host);
            if !has_peer {
                let known = self
                    .inner
                    .known
                    .lock()
                    .expect("known lock")
                    .get(&key(&host))
                    .copied();
                let addr = match known {
                    Some(a) => Some(a),
                    None => tokio::net::lookup_host((host.trim_matches(['[', ']']), port))
                        .await
                        .ok()
                        .and_then(|mut i| i.next()),
                };
                let Some(addr) = addr else { continue };
                self.add_peer(&host, addr);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if self.wait_open(&host, left).await.is_ok() {
                hosts.push(host);
            }
        }
        hosts
    }

    /// Sends to the first usable candidate (not `exclude`); waits for the answer. An answer
    /// 3004 DIAMETER_TOO_BUSY or 3002 DIAMETER_UNABLE_TO_DELIVER (E bit) makes the request go
    /// to the next usable candidate (RFC 6733 §7.1.3: "SHOULD attempt to send the message to an
    /// alternate peer"), the same octets (End-to-End Identifier kept, T flag not set: it was
    /// answered), each peer at most once; the last such answer is returned when none is left.
    async fn send_to_candidates(
        &self,
        candidates: &[Cow<'_, str>],
        app_id: u32,
        bytes: Bytes,
        deadline: Instant,
        exclude: Option<&str>,
    ) -> Result<OwnedMessage, NodeError> {
        // names borrowed from `candidates` (allocates only on a second attempt)
        let mut tried: Vec<&str> = exclude.into_iter().collect();
        loop {
            let (tx, rx) = oneshot::channel();
            let Some(via) = self.dispatch(candidates, app_id, bytes.clone(), deadline, &tried, tx)
            else {
                return Err(NodeError::NoRoute(ResultCode::UnableToDeliver));
            };
            let answer = wait_answer(rx, deadline).await?;
            if !alternate_peer_wanted(&answer.view()) {
                return Ok(answer);
            }
            tried.push(via);
            if self.pick(candidates, app_id, &tried).is_none() {
                return Ok(answer);
            }
        }
    }

    /// The first usable candidate not in `exclude`.
    fn pick<'c>(
        &self,
        candidates: &'c [Cow<'_, str>],
        app_id: u32,
        exclude: &[&str],
    ) -> Option<&'c str> {
        let peers = self.inner.peers.lock().expect("peers lock");
        candidates
            .iter()
            .filter(|c| !exclude.iter().any(|e| e.eq_ignore_ascii_case(c)))
            .find(|c| {
                peers
                    .get(&*lookup_key(c))
                    .is_some_and(|h| h.status.borrow().usable_for(app_id))
            })
            .map(|c| &**c)
    }

    /// Hands the request to the first usable candidate's task (the reply goes to `reply`);
    /// returns that candidate (`None`: there was none, `reply` got the error).
    fn dispatch<'c>(
        &self,
        candidates: &'c [Cow<'_, str>],
        app_id: u32,
        bytes: Bytes,
        deadline: Instant,
        exclude: &[&str],
        reply: Reply,
    ) -> Option<&'c str> {
        let peers = self.inner.peers.lock().expect("peers lock");
        let pick = candidates
            .iter()
            .filter(|c| !exclude.iter().any(|e| e.eq_ignore_ascii_case(c)))
            .filter_map(|c| peers.get(&*lookup_key(c)).map(|h| (c, h)))
            .find(|(_, h)| h.status.borrow().usable_for(app_id));
        match pick {
            Some((name, h)) => {
                if let Err(mpsc::error::SendError(Cmd::Request { reply, .. })) =
                    h.tx.send(Cmd::Request {
                        bytes,
                        deadline,
                        reply,
                    })
                {
                    let _ = reply.send(Err(NodeError::Closed));
                }
                Some(&**name)
            }
            None => {
                let _ = reply.send(Err(NodeError::NoRoute(ResultCode::UnableToDeliver)));
                None
            }
        }
    }

    /// Hands the request to `host`'s task when it is a peer usable for `app_id` (the reply goes
    /// to `reply`); gives `reply` back otherwise.
    fn dispatch_to(
        &self,
        host: &str,
        app_id: u32,
        bytes: Bytes,
        deadline: Instant,
        reply: Reply,
    ) -> Result<(), Reply> {
        let peers = self.inner.peers.lock().expect("peers lock");
        match peers.get(&*lookup_key(host)) {
            Some(h) if h.status.borrow().usable_for(app_id) => {
                if let Err(mpsc::error::SendError(Cmd::Request { reply, .. })) =
                    h.tx.send(Cmd::Request {
                        bytes,
                        deadline,
                        reply,
                    })
                {
                    let _ = reply.send(Err(NodeError::Closed));
                }
                Ok(())
            }
            _ => Err(reply),
        }
    }

    /// Failover (RFC 6733 §5.5.4): re-sends a pending request (T flag set) to another peer.
    fn resubmit(&self, from: &str, bytes: Bytes, deadline: Instant, reply: Reply) {
        let Ok(msg) = Message::parse(&bytes) else {
            let _ = reply.send(Err(NodeError::NoRoute(ResultCode::UnableToDeliver)));
            return;
        };
        let c = self.candidates(&msg, &self.inner.table.route_avps(&msg));
        let app_id = msg.application_id();
        // (the candidates borrow from the request: the peer task gets a shared reference)
        self.dispatch(&c, app_id, bytes.clone(), deadline, &[from], reply);
    }

    /// [`NodeConfig::merge_repeated_destination_realm`] applied to a received request.
    fn merged(&self, req: OwnedMessage) -> OwnedMessage {
        if self.inner.cfg.merge_repeated_destination_realm {
            merge_repeated_destination_realm(req)
        } else {
            req
        }
    }

    /// What to do with a request received from a peer (already [`Node::merged`]), decided
    /// without waiting: an answer at once (redirect, error), its handler, or a relay (with
    /// discovery first for a realm without a route).
    fn plan<'m>(&'m self, view: &Message<'m>) -> Plan<'m> {
        self.plan_with(view, &self.inner.table.route_avps(view))
    }

    /// [`Node::plan`] with the request's routing AVPs already found
    /// ([`RoutingTable::route_avps`] of the same request).
    fn plan_with<'m>(&'m self, view: &Message<'m>, route: &RouteAvps<'m>) -> Plan<'m> {
        let handler = self
            .inner
            .handlers
            .read()
            .expect("handlers lock")
            .get(&(view.application_id(), view.code()))
            .cloned();
        let decision = self.inner.table.decide_with(view, route);
        match decision {
            Decision::Local => {}
            Decision::Forward { action, peers } if handler.is_none() || action != Action::Local => {
                let peers: Vec<Cow<'_, str>> = peers.into_iter().map(Cow::Borrowed).collect();
                return Plan::Relay(peers, route.destination_realm);
            }
            Decision::Forward { .. } => {}
            Decision::Redirect { hosts } => {
                let hosts = hosts.to_vec();
                return Plan::Answer(redirect_answer(
                    view,
                    &hosts,
                    self.inner.cfg.redirect_usage,
                    self.inner.cfg.redirect_cache_time,
                    &self.origin(),
                ));
            }
            Decision::Reject(ResultCode::RealmNotServed) => {
                // a realm we have no route for: discovery may find its peers (RFC 6733 §5.2)
                return match route.destination_realm {
                    Some(realm) => Plan::Discover(realm),
                    None => Plan::Answer(result_answer(
                        view,
                        ResultCode::RealmNotServed.code(),
                        &self.origin(),
                    )),
                };
            }
            Decision::Reject(rc) => {
                return Plan::Answer(result_answer(view, rc.code(), &self.origin()))
            }
        }
        if let Some(h) = handler {
            return Plan::Handle(h);
        }
        let apps: Vec<u32> = self.applications().iter().map(|a| a.id).collect();
        // no handler: 3007 for an application we do not serve, else the request's own fault,
        // else 3001 DIAMETER_COMMAND_UNSUPPORTED
        let a = match check_request(view, &apps) {
            Err(e) => error_answer(view.as_bytes(), &e, &self.origin()),
            Ok(()) => None,
        }
        .unwrap_or_else(|| {
            result_answer(view, ResultCode::CommandUnsupported.code(), &self.origin())
        });
        Plan::Answer(a)
    }

    /// The handler's answer to `req`; one that panics gets its request answered 5012
    /// DIAMETER_UNABLE_TO_COMPLY (caught where it is polled: no task of its own).
    async fn handled(&self, fut: BoxFuture, req: &OwnedMessage) -> Vec<u8> {
        match CatchUnwind(fut).await {
            Ok(a) => a,
            Err(_) => self.unable_to_comply(req),
        }
    }

    /// The 5012 DIAMETER_UNABLE_TO_COMPLY answer to `req` (its handler panicked).
    fn unable_to_comply(&self, req: &OwnedMessage) -> Vec<u8> {
        result_answer(
            &req.view(),
            ResultCode::UnableToComply.code(),
            &self.origin(),
        )
    }

    /// What to answer to a request received from `peer` (already [`Node::merged`]): handler,
    /// relay, redirect, error.
    async fn answer_request(&self, req: OwnedMessage, peer: Arc<str>) -> Vec<u8> {
        let view = req.view();
        match self.plan(&view) {
            Plan::Answer(a) => a,
            Plan::Handle(h) => {
                let fut = h(Incoming {
                    message: req.clone(),
                    peer,
                });
                self.handled(fut, &req).await
            }
            Plan::Relay(peers, realm) => self.relay(&req, &peer, &peers, realm).await,
            Plan::Discover(realm) => {
                let deadline = Instant::now() + self.inner.cfg.request_timeout;
                let app_id = view.application_id();
                if let Some(c) = self.discover_for(realm, app_id, &[], deadline).await {
                    let c: Vec<Cow<'_, str>> = c.into_iter().map(Cow::Owned).collect();
                    return self.relay(&req, &peer, &c, Some(realm)).await;
                }
                result_answer(&view, ResultCode::RealmNotServed.code(), &self.origin())
            }
        }
    }

    /// Records the answer to a new request `m` (its Origin-Host `origin_host`, as
    /// [`Message::origin_host`] reads it) for its duplicates and sends it to the copies that
    /// came while it was handled; returns it (for the peer the request came from).
    fn answered(&self, m: &OwnedMessage, origin_host: Option<&str>, a: Vec<u8>) -> Bytes {
        let view = m.view();
        // shared with the duplicate cache, not copied
        let a = Bytes::from(a);
        self.inner.dups.lock().expect("dups lock").answered_origin(
            origin_host,
            view.end_to_end(),
            a.clone(),
        );
        let waiters = origin_host.and_then(|h| {
            let mut w = self.inner.dup_waiters.lock().expect("dup waiters lock");
            // (the lower-case key is made only when some copy waits)
            if w.is_empty() {
                return None;
            }
            w.remove(&(h.to_ascii_lowercase(), view.end_to_end()))
        });
        for (peer_tx, hop_by_hop) in waiters.into_iter().flatten() {
            let mut copy = a.to_vec();
            if copy.len() >= 16 {
                copy[12..16].copy_from_slice(&hop_by_hop.to_be_bytes());
            }
            let _ = peer_tx.send(Cmd::Answer(Bytes::from(copy)));
        }
        a
    }

    /// Relays a request (RFC 6733 §6.1.9: Route-Record added, same End-to-End Identifier) and
    /// returns the answer with the original Hop-by-Hop Identifier.
    /// `realm`: the request's Destination-Realm (found by the caller).
    async fn relay(
        &self,
        req: &OwnedMessage,
        from: &str,
        peers: &[Cow<'_, str>],
        realm: Option<&str>,
    ) -> Vec<u8> {
        let view = req.view();
        let mut fwd = add_route_record(req.bytes(), from);
        // a locally unique Hop-by-Hop Identifier on the next hop (RFC 6733 §6.1.9)
        self.set_hop_by_hop(&mut fwd);
        let deadline = Instant::now() + self.inner.cfg.request_timeout;
        // no usable next hop toward another realm: discovery (RFC 6733 §5.2) for relays too
        let mut peers = peers.to_vec();
        if let Some(realm) = realm.filter(|r| !r.eq_ignore_ascii_case(&self.inner.cfg.origin_realm))
        {
            if let Some(c) = self
                .discover_for(realm, view.application_id(), &peers, deadline)
                .await
            {
                peers = c.into_iter().map(Cow::Owned).collect();
            }
        }
        match self
            .send_to_candidates(
                &peers,
                view.application_id(),
                Bytes::from(fwd),
                deadline,
                Some(from),
            )
            .await
        {
            Ok(a) => {
                let mut b = a.bytes().to_vec();
                b[12..16].copy_from_slice(&view.hop_by_hop().to_be_bytes());
                b
            }
            Err(_) => result_answer(&view, ResultCode::UnableToDeliver.code(), &self.origin()),
        }
    }
}

/// What a node does with a request it received ([`Node::plan`]; names borrowed from the request
/// and the routing table).
enum Plan<'m> {
    /// This answer, at once (redirect, routing error, no handler).
    Answer(Vec<u8>),
    /// The request's handler answers it.
    Handle(Handler),
    /// Relayed to one of these peers (the request's Destination-Realm given for discovery).
    Relay(Vec<Cow<'m, str>>, Option<&'m str>),
    /// No route for this Destination-Realm: discovery may find its peers, else 3003.
    Discover(&'m str),
}

/// A handler's future whose panic is caught where it is polled (the panic is reported by the
/// panic hook as in a task of its own; the request is then answered 5012).
struct CatchUnwind(BoxFuture);

impl Future for CatchUnwind {
    type Output = std::thread::Result<Vec<u8>>;

    fn poll(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        let fut = &mut self.0;
        // not polled again after a panic: the answer is then Ready(Err)
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| fut.as_mut().poll(cx))) {
            Ok(std::task::Poll::Pending) => std::task::Poll::Pending,
            Ok(std::task::Poll::Ready(a)) => std::task::Poll::Ready(Ok(a)),
            Err(p) => std::task::Poll::Ready(Err(p)),
        }
    }
}

/// The answer a peer task sends to `rx`. No timer of its own: the peer task reports the
/// timeout at `deadline` ([`Event::Timeout`]), and while it waits for a write it reports it
/// itself 100 ms after `deadline` ([`while_writing`]); a task that ends drops `rx`'s sender.
async fn wait_answer(
    rx: oneshot::Receiver<Result<OwnedMessage, NodeError>>,
    deadline: Instant,
) -> Result<OwnedMessage, NodeError> {
    let _ = deadline;
    match rx.await {
        Ok(r) => r,
        Err(_) => Err(NodeError::Closed),
    }
}

/// An answer that asks for another peer (RFC 6733 §7.1.3): the E bit with Result-Code 3004
/// DIAMETER_TOO_BUSY, or 3002 DIAMETER_UNABLE_TO_DELIVER (e.g. from an agent without a route,
/// or a peer closing after DPR).
fn alternate_peer_wanted(answer: &Message<'_>) -> bool {
    answer.flags().is_error()
        && answer
            .find(dict::RESULT_CODE)
            .and_then(|a| a.u32().ok())
            .is_some_and(|rc| {
                rc == ResultCode::TooBusy.code() || rc == ResultCode::UnableToDeliver.code()
            })
}

/// The first Origin-Host (if UTF-8) and Origin-State-Id (if 4 octets) of a message, found in
/// one walk (as [`Message::origin_host`] and a `find` of Origin-State-Id read them).
fn origin_of<'m>(view: &Message<'m>) -> (Option<&'m str>, Option<u32>) {
    let (mut host, mut state) = (None, None);
    let (mut host_seen, mut state_seen) = (false, false);
    for a in view.avps() {
        if a.vendor_id() != 0 {
            continue;
        }
        if a.code() == dict::ORIGIN_HOST.code && !host_seen {
            host_seen = true;
            host = a.utf8().ok();
        } else if a.code() == dict::ORIGIN_STATE_ID.code && !state_seen {
            state_seen = true;
            state = a.u32().ok();
        }
        if host_seen && state_seen {
            break;
        }
    }
    (host, state)
}

/// Appends Destination-Host when the request has none.
fn set_destination_host(req: &[u8], host: &str) -> Vec<u8> {
    let Ok(m) = Message::parse(req) else {
        return req.to_vec();
    };
    if m.destination_host().is_some() {
        return req.to_vec();
    }
    let mut v = req.to_vec();
    ims_diameter::Encoder::new(&mut v).utf8(dict::DESTINATION_HOST, host);
    let len = v.len() as u32;
    v[1..4].copy_from_slice(&len.to_be_bytes()[1..]);
    v
}

/// Opens a peer connection: TCP, then the TLS handshake when the peer is a TLS one.
async fn connect(addr: SocketAddr, tls: PeerTls, host: &str) -> std::io::Result<Conn> {
    let s = TcpStream::connect(addr).await?;
    let _ = s.set_nodelay(true);
    #[cfg(feature = "tls")]
    if let Some(tls) = tls {
        let name = if tls.has_server_name() {
            None
        } else {
            Some(host)
        };
        return Ok(Conn::Tls(Box::new(tls.connect(s, name).await?)));
    }
    #[cfg(not(feature = "tls"))]
    if let Some(t) = tls {
        match t {}
    }
    #[cfg(not(feature = "tls"))]
    let _ = host;
    Ok(Conn::Tcp(s))
}

/// Asks DNS again for `realm` whenever its discovery result expires (TTL or
/// `discovery_refresh`), while the node lives and discovery still finds peers there.
/// (Boxed with its type spelt out: it calls [`Node::discover_peers`], which spawns it.)
fn refresh_loop(
    node: std::sync::Weak<Inner>,
    stop: watch::Receiver<bool>,
    realm: String,
    app_id: u32,
) -> Pin<Box<dyn Future<Output = ()> + Send>> {
    Box::pin(refresh(node, stop, realm, app_id))
}

async fn refresh(
    node: std::sync::Weak<Inner>,
    mut stop: watch::Receiver<bool>,
    realm: String,
    app_id: u32,
) {
    loop {
        let expires = {
            let Some(inner) = node.upgrade() else { return };
            let map = inner.discovered.lock().expect("discovered lock");
            match map.get(&key(&realm)) {
                Some(d) => d.expires,
                None => return,
            }
        };
        tokio::select! {
            _ = tokio::time::sleep_until(expires) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        let Some(inner) = node.upgrade() else { return };
        let n = Node { inner };
        if n.fresh_discovered(&realm).is_empty()
            && n.discover_peers(&realm, app_id).await.is_empty()
        {
            return;
        }
    }
}

/// The inband TLS handshake on a clear connection after CER/CEA (RFC 3588 §2.1): the
/// server's certificate must name `host` (unless `tls` names another server), the client's,
/// when one is sent and trust is by CA, too.
#[cfg(feature = "tls")]
async fn inband_handshake(
    tcp: TcpStream,
    tls: &crate::tls::TlsConfig,
    role: TlsRole,
    host: &str,
) -> Option<Conn> {
    let t = match role {
        TlsRole::Client => {
            let name = (!tls.has_server_name()).then_some(host);
            tls.connect(tcp, name).await.ok()?
        }
        TlsRole::Server => {
            let t = tls.accept(tcp).await.ok()?;
            if let Some(cert) = crate::tls::peer_certificate(&t) {
                if tls.trusts_by_name() && !crate::tls::names_host(&cert, host) {
                    return None;
                }
            }
            t
        }
    };
    Some(Conn::Tls(Box::new(t)))
}

struct PeerTask {
    /// The node's stop flag ([`Node::shutdown`]): the task ends once the peer is closed.
    stop: watch::Receiver<bool>,
    /// [`Cmd::Forget`] received: the task ends once the peer is closed.
    forgotten: bool,
    node: Node,
    host: String,
    addr: Option<SocketAddr>,
    peer: Peer,
    tx: mpsc::UnboundedSender<Cmd>,
    status: watch::Sender<PeerStatus>,
    writers: [Option<(u64, WriteHalf)>; 2],
    tls: PeerTls,
    /// Per side: the connection's reader (read by this task), what was read while a write
    /// waited ([`while_writing`]), the inband TLS handshake's task and the generation of the
    /// clear connection it runs on.
    readers: [Option<Reader>; 2],
    backlog: VecDeque<(Side, u64, Read)>,
    handshakes: [Option<tokio::task::JoinHandle<()>>; 2],
    handshaking: [Option<u64>; 2],
    gen: u64,
    /// The requests sent on this connection, by tag: their requester and deadline.
    replies: HashMap<u64, (Reply, Instant)>,
    /// The command channel, and the commands received while a write waited ([`while_writing`]).
    rx: mpsc::UnboundedReceiver<Cmd>,
    queued: VecDeque<Cmd>,
    next_tag: u64,
    /// The peer's name as [`Incoming::peer`] gives it ([`PeerTask::peer_name`]).
    name: Option<Arc<str>>,
    /// The [`Peer::remote_version`] the status shows.
    remote_seen: u64,
    /// Messages to write to `batch_side` ([`PeerTask::drain_now`]): consecutive transmits to
    /// one side, written together by [`PeerTask::flush_now`] (the vector is kept for its
    /// capacity).
    batch: Vec<Bytes>,
    batch_side: Option<Side>,
    batch_octets: usize,
    /// [`PeerStatus::writes`] and [`PeerStatus::reads`].
    writes: u64,
    reads: u64,
    /// An output [`PeerTask::drain_now`] took but could not carry out yet (a write waits).
    held: Option<Output>,
}

/// What [`PeerTask::drain_now`] leaves to [`PeerTask::wait_io`]: the rest of a write the
/// socket did not take at once, or the shutdown of a connection.
enum Io {
    Rest(Side, Bytes),
    Close(Side),
}

/// What is left of `msgs` after their first `n` octets were written: the rest of one message
/// as it is (shared), of several a copy.
fn remainder(msgs: &[Bytes], n: usize) -> Bytes {
    if let [one] = msgs {
        return one.slice(n.min(one.len())..);
    }
    let mut v = Vec::new();
    let mut skip = n;
    for m in msgs {
        let k = skip.min(m.len());
        v.extend_from_slice(&m[k..]);
        skip -= k;
    }
    Bytes::from(v)
}

/// At most this many messages go out in one write (a vectored write: that many slices).
const MAX_BATCH: usize = 32;
/// A batch takes no further message once it holds this many octets (a large message is
/// written on its own).
const MAX_BATCH_OCTETS: usize = 64 * 1024;

impl Cmd {
    /// A command that only hands the peer a message to send (its octets go out with those of
    /// the commands taken with it, in one write): the others change connections or state,
    /// and the outputs of the commands before them are written first.
    fn is_message(&self) -> bool {
        matches!(self, Cmd::Request { .. } | Cmd::Answer(_))
    }
}

impl Drop for PeerTask {
    fn drop(&mut self) {
        for h in self.handshakes.iter_mut().filter_map(Option::take) {
            h.abort();
        }
    }
}

const fn idx(s: Side) -> usize {
    match s {
        Side::Initiator => 0,
        Side::Responder => 1,
    }
}

impl PeerTask {
    async fn run(mut self, connect: bool) {
        if connect && !*self.stop.borrow() {
            self.peer.connect(now());
        }
        // one timer for the task's life: moved only to an earlier deadline; a deadline that
        // moved later (the watchdog restarted by each message, a request answered) lets it
        // fire early once, and it is set again then (the timer wheel is not touched for every
        // request and answer)
        let sleep = tokio::time::sleep(Duration::ZERO);
        tokio::pin!(sleep);
        let mut armed: Option<Instant> = None;
        loop {
            self.drain().await;
            if (self.forgotten || *self.stop.borrow()) && self.peer.state() == PeerState::Closed {
                // shut down or forgotten: the connections are dropped with the task
                return;
            }
            // what was read, then what was received, while a write waited: one at a time (as if
            // read or received now)
            if let Some((side, gen, got)) = self.backlog.pop_front() {
                self.on_read(side, gen, got);
                continue;
            }
            if let Some(cmd) = self.queued.pop_front() {
                let message = cmd.is_message();
                self.on_cmd(cmd);
                if message {
                    self.take_messages();
                }
                continue;
            }
            let next = self.peer.poll_timeout().map(Instant::from_std);
            if let Some(t) = next {
                if armed.is_none_or(|a| t < a) {
                    sleep.as_mut().reset(t);
                    armed = Some(t);
                }
            }
            let [r0, r1] = &mut self.readers;
            let (read0, read1) = (reading(r0), reading(r1));
            tokio::select! {
                c = self.rx.recv() => match c {
                    Some(cmd) => {
                        let message = cmd.is_message();
                        self.on_cmd(cmd);
                        if message {
                            self.take_messages();
                        }
                    }
                    None => return,
                },
                (gen, got) = read_side(r0), if read0 => self.on_read(Side::Initiator, gen, got),
                (gen, got) = read_side(r1), if read1 => self.on_read(Side::Responder, gen, got),
                () = sleep.as_mut(), if next.is_some() => {
                    armed = None;
                    // (runs only the timers due now: none after an early wake)
                    let t = now();
                    self.peer.handle_timeout(t);
                    // the watchdog wakes every peer task at least every Tw: requests
                    // past the duplicate window are forgotten even when none arrive
                    self.node.inner.dups.lock().expect("dups lock").expire(t);
                }
            }
        }
    }

    /// After a command handing over a message: the other such commands that follow it, those
    /// received while a write waited first, then those already in the channel (at most
    /// [`MAX_BATCH`] in all), so that their messages go out in one write. Any other command
    /// ends it and is kept for the next turn (in order: the messages before it are written
    /// first).
    fn take_messages(&mut self) {
        for _ in 1..MAX_BATCH {
            let next = match self.queued.front() {
                Some(c) if c.is_message() => self.queued.pop_front(),
                Some(_) => return,
                None => match self.rx.try_recv() {
                    Ok(c) if c.is_message() => Some(c),
                    Ok(c) => {
                        self.queued.push_back(c);
                        return;
                    }
                    Err(_) => return,
                },
            };
            if let Some(c) = next {
                self.on_cmd(c);
            }
        }
    }

    /// One read of the connection on `side` (generation `gen`): octets to the [`Peer`], or
    /// the end of the connection (ignored once it is no longer the side's current one).
    fn on_read(&mut self, side: Side, gen: u64, got: Read) {
        if !self.current(side, gen) {
            return;
        }
        let t = now();
        match got {
            // whole messages are not copied out of the octets read
            Read::Data(b) => {
                self.reads += 1;
                self.peer.handle_data(t, side, b);
            }
            Read::Closed => {
                self.writers[idx(side)] = None;
                self.peer.handle_input(t, Input::TransportClosed(side));
            }
        }
    }

    /// Attaches a connection on `side` and starts reading it. A plain TCP connection that may
    /// switch to TLS inband is read one message at a time and its reader pauses after a CER/CEA
    /// (from the start when `cer_read`: the node read the CER to find the peer) until the peer
    /// has decided (see [`PeerTask::resume_readers`] and [`PeerTask::start_tls`]).
    fn attach(&mut self, side: Side, s: Conn, cer_read: bool) -> u64 {
        self.gen += 1;
        let gen = self.gen;
        let i = idx(side);
        let inband = !s.is_tls() && self.peer.config().inband_security != InbandSecurity::None;
        let (r, w) = s.split();
        self.writers[i] = Some((gen, w));
        self.handshaking[i] = None;
        let max = self.peer.config().limits.max_message_size;
        self.readers[i] = Some(Reader::new(gen, r, inband, inband && cer_read, max));
        if let Some(old) = self.handshakes[i].take() {
            old.abort();
        }
        gen
    }

    /// Lets paused readers go on once the capabilities exchange is settled without inband TLS.
    fn resume_readers(&mut self) {
        let negotiating = matches!(
            self.peer.state(),
            PeerState::WaitConnAck
                | PeerState::WaitICea
                | PeerState::WaitConnAckElect
                | PeerState::WaitReturns
        );
        if negotiating {
            return;
        }
        for r in self.readers.iter_mut().flatten() {
            if std::mem::take(&mut r.paused) {
                // clear from now on: read in bulk
                r.exact = false;
            }
        }
    }

    /// [`Output::StartTls`]: takes the clear TCP connection (both halves) and runs the TLS
    /// handshake on it; [`Cmd::TlsUp`] or [`Cmd::TlsFailed`] reports the result.
    fn start_tls(&mut self, side: Side, role: TlsRole) {
        let i = idx(side);
        let writer = self.writers[i].take();
        let reader = self.readers[i].take();
        #[cfg(feature = "tls")]
        {
            let tls = self.node.inner.inband_tls.lock().expect("tls lock").clone();
            if let (Some(tls), Some((gen, WriteHalf::Tcp(w))), Some(ReadHalf::Tcp(r))) =
                (tls, writer, reader.map(|r| r.half))
            {
                self.handshaking[i] = Some(gen);
                let tx = self.tx.clone();
                let host = self.host.clone();
                let to = self.node.inner.cfg.connect_timeout;
                let h = self.node.spawn(async move {
                    let hs = async {
                        let tcp = r.reunite(w).ok()?;
                        inband_handshake(tcp, &tls, role, &host).await
                    };
                    let _ = match tokio::time::timeout(to, hs).await {
                        Ok(Some(c)) => tx.send(Cmd::TlsUp(side, gen, c)),
                        _ => tx.send(Cmd::TlsFailed(side, gen)),
                    };
                });
                if let Some(old) = self.handshakes[i].replace(h) {
                    old.abort();
                }
                return;
            }
        }
        #[cfg(not(feature = "tls"))]
        let _ = (writer, reader, role);
        // no TLS configuration (or no clear TCP connection): the handshake cannot run
        self.peer.handle_input(now(), Input::TransportClosed(side));
    }

    fn current(&self, side: Side, gen: u64) -> bool {
        self.writers[idx(side)]
            .as_ref()
            .is_some_and(|(g, _)| *g == gen)
    }

    fn on_cmd(&mut self, cmd: Cmd) {
        let t = now();
        match cmd {
            Cmd::Request {
                bytes,
                deadline,
                reply,
            } => {
                self.next_tag += 1;
                let tag = self.next_tag;
                // sent as it is when its Hop-by-Hop Identifier is free on this connection
                match self
                    .peer
                    .send_request_bytes(t, tag, bytes, deadline.into_std())
                {
                    Ok(_) => {
                        self.replies.insert(tag, (reply, deadline));
                    }
                    Err(_) => {
                        let _ = reply.send(Err(NodeError::PeerNotOpen(self.host.clone())));
                    }
                }
            }
            Cmd::Answer(a) => {
                let _ = self.peer.send_answer_bytes(t, a);
            }
            Cmd::Accept(s, initial) => {
                if self.peer.accept().is_ok() {
                    if s.is_tls() {
                        self.peer.set_secure(Side::Responder);
                    }
                    self.attach(Side::Responder, s, true);
                    self.peer.handle_data(t, Side::Responder, initial);
                }
            }
            Cmd::Connected(s) => {
                if self.peer.state() == PeerState::WaitConnAck
                    || self.peer.state() == PeerState::WaitConnAckElect
                {
                    if s.is_tls() {
                        self.peer.set_secure(Side::Initiator);
                    }
                    self.attach(Side::Initiator, s, false);
                    self.peer.handle_input(t, Input::Connected);
                }
            }
            Cmd::ConnectFailed => self.peer.handle_input(t, Input::ConnectFailed),
            Cmd::TlsUp(side, gen, conn) => {
                if self.handshaking[idx(side)] == Some(gen) {
                    self.attach(side, conn, false);
                    self.peer.handle_input(t, Input::TlsEstablished(side));
                }
            }
            Cmd::TlsFailed(side, gen) => {
                if self.handshaking[idx(side)] == Some(gen) {
                    self.handshaking[idx(side)] = None;
                    self.peer.handle_input(t, Input::TransportClosed(side));
                }
            }
            Cmd::Disconnect(cause) => self.peer.disconnect(t, cause),
            Cmd::Forget => self.forgotten = true,
            Cmd::UpdateApplications(apps) => {
                // a peer without RFC 6737 gets the list at its next capabilities exchange
                let _ = self.peer.update_capabilities(t, apps);
            }
        }
    }

    /// Writes the batch of messages to `batch_side` in one write, as far as the socket takes
    /// it now; what it does not take is left to [`PeerTask::wait_io`]. A failed write closes
    /// that side's connection.
    fn flush_now(&mut self) -> Option<Io> {
        let side = self.batch_side.take()?;
        let total = std::mem::take(&mut self.batch_octets);
        let (mut rest, mut failed) = (None, false);
        if let Some((_, w)) = self.writers[idx(side)].as_mut() {
            self.writes += 1;
            match w.send_now_all(&self.batch) {
                Ok(n) if n < total => rest = Some(Io::Rest(side, remainder(&self.batch, n))),
                Ok(_) => {}
                Err(_) => failed = true,
            }
        }
        // (the vector keeps its capacity)
        self.batch.clear();
        if failed {
            self.writers[idx(side)] = None;
            self.peer.handle_input(now(), Input::TransportClosed(side));
        }
        rest
    }

    /// Carries out what the peer asks for, as far as it can without waiting: what must wait
    /// (the rest of a write the socket did not take, the shutdown of a connection) is returned
    /// for [`PeerTask::wait_io`], the output it held up kept for the next call. Consecutive
    /// transmits (the answers to the requests of one read, the requests of the commands taken
    /// together) go to the socket together, once nothing else is asked for or before anything
    /// but an event is done; events (which write nothing: a request's answer made at once
    /// comes back as another transmit) do not end a batch.
    fn drain_now(&mut self) -> Option<Io> {
        if let Some(o) = self.held.take() {
            if let Some(io) = self.output(o) {
                return Some(io);
            }
        }
        loop {
            let Some(o) = self.peer.poll_output() else {
                self.batch_side?;
                if let Some(io) = self.flush_now() {
                    return Some(io);
                }
                // a failed write may have more to do (the connection closed)
                continue;
            };
            // the common outputs here, the others (and a transmit that ends a batch) in `output`
            match o {
                Output::Event(e) => self.on_event(e),
                Output::Transmit { side, bytes }
                    if self.batch_side.is_none_or(|s| s == side) && !self.batch_full() =>
                {
                    self.batch_side = Some(side);
                    self.batch_octets += bytes.len();
                    self.batch.push(bytes);
                }
                o => {
                    if let Some(io) = self.output(o) {
                        return Some(io);
                    }
                }
            }
        }
    }

    /// The batch takes no further message.
    fn batch_full(&self) -> bool {
        self.batch.len() >= MAX_BATCH || self.batch_octets >= MAX_BATCH_OCTETS
    }

    /// [`PeerTask::drain_now`] for one output: the batch written first unless it is an event
    /// (the output is held when that write must wait).
    fn output(&mut self, o: Output) -> Option<Io> {
        if self.batch_side.is_some() && !matches!(o, Output::Event(_)) {
            if let Some(io) = self.flush_now() {
                self.held = Some(o);
                return Some(io);
            }
        }
        match o {
            Output::Transmit { side, bytes } => {
                self.batch_side = Some(side);
                self.batch_octets += bytes.len();
                self.batch.push(bytes);
            }
            Output::Event(e) => self.on_event(e),
            Output::Connect => {
                let Some(addr) = self.addr else {
                    self.peer.handle_input(now(), Input::ConnectFailed);
                    return None;
                };
                let tx = self.tx.clone();
                let to = self.node.inner.cfg.connect_timeout;
                let tls = self.tls.clone();
                let host = self.host.clone();
                self.node.spawn(async move {
                    let c = tokio::time::timeout(to, connect(addr, tls, &host)).await;
                    match c {
                        Ok(Ok(s)) => {
                            let _ = tx.send(Cmd::Connected(s));
                        }
                        _ => {
                            let _ = tx.send(Cmd::ConnectFailed);
                        }
                    }
                });
            }
            Output::Close(side) => {
                if self.writers[idx(side)].is_some() {
                    return Some(Io::Close(side));
                }
                self.closed(side);
            }
            Output::StartTls { side, role } => self.start_tls(side, role),
        }
        None
    }

    /// The connection on `side` is closed: its reader and TLS handshake go too.
    fn closed(&mut self, side: Side) {
        let i = idx(side);
        self.readers[i] = None;
        if let Some(h) = self.handshakes[i].take() {
            h.abort();
        }
        self.handshaking[i] = None;
    }

    /// Does what [`PeerTask::drain_now`] left to wait for while the task reads on
    /// ([`while_writing`]).
    async fn wait_io(&mut self, io: Io) {
        let (side, rest) = match io {
            Io::Rest(side, rest) => (side, Some(rest)),
            Io::Close(side) => (side, None),
        };
        let i = idx(side);
        let wait = Waiting {
            readers: &mut self.readers,
            backlog: &mut self.backlog,
            rx: &mut self.rx,
            queued: &mut self.queued,
            replies: &mut self.replies,
        };
        match rest {
            Some(rest) => {
                let failed = match self.writers[i].as_mut() {
                    Some((_, w)) => while_writing(w.send(&rest), wait).await.is_err(),
                    None => false,
                };
                if failed {
                    self.writers[i] = None;
                    self.peer.handle_input(now(), Input::TransportClosed(side));
                }
            }
            None => {
                if let Some((_, mut w)) = self.writers[i].take() {
                    while_writing(w.shutdown(), wait).await;
                }
                self.closed(side);
            }
        }
    }

    /// Carries out what the peer asks for ([`PeerTask::drain_now`]), waiting where it must
    /// (rarely: in a future of its own, so the common path's future stays small), then
    /// updates the status.
    async fn drain(&mut self) {
        while let Some(io) = self.drain_now() {
            Box::pin(self.wait_io(io)).await;
        }
        self.resume_readers();
        // field by field: the RemoteInfo (3 strings, 2 lists) is compared and cloned only when
        // the peer says it changed (capabilities exchange or update, new Origin-State-Id), not
        // after every request and answer
        let peer = &self.peer;
        let (writes, reads) = (self.writes, self.reads);
        let remote_changed = self.remote_seen != peer.remote_version();
        self.remote_seen = peer.remote_version();
        self.status.send_if_modified(|s| {
            let (state, watchdog, stats, secure) = (
                peer.state(),
                peer.watchdog(),
                peer.stats(),
                peer.is_secure(),
            );
            let mut changed = false;
            if s.state != state {
                s.state = state;
                changed = true;
            }
            if s.watchdog != watchdog {
                s.watchdog = watchdog;
                changed = true;
            }
            // the counters are updated in place without waking the status's watchers: nobody
            // waits for a counter (they are read with the status), while each request and
            // answer changes them (a wake-up of every watcher slot per message otherwise)
            s.stats = stats;
            (s.writes, s.reads) = (writes, reads);
            if s.secure != secure {
                s.secure = secure;
                changed = true;
            }
            if remote_changed && s.remote.as_ref() != peer.remote() {
                s.remote = peer.remote().cloned();
                changed = true;
            }
            changed
        });
    }

    fn on_event(&mut self, e: Event) {
        match e {
            Event::Request(m) => self.on_request(m),
            Event::Answer { tag, answer } => {
                self.node.message_origin_state(&answer.view());
                if let Some((r, _)) = self.replies.remove(&tag) {
                    let _ = r.send(Ok(answer));
                }
            }
            Event::Timeout { tag } => {
                if let Some((r, _)) = self.replies.remove(&tag) {
                    let _ = r.send(Err(NodeError::Timeout));
                }
            }
            Event::Failover(list) => {
                for p in list {
                    if let Some((r, _)) = self.replies.remove(&p.tag) {
                        self.node
                            .resubmit(&self.host, p.bytes, Instant::from_std(p.deadline), r);
                    }
                }
            }
            Event::Open(info) => self.node.peer_opened(&info),
            Event::OriginStateChanged { current, .. } => {
                if let Some(r) = self.peer.remote() {
                    let host = r.origin_host.clone();
                    self.node.note_origin_state(&host, current, true);
                }
            }
            Event::CapabilitiesUpdated(_)
            | Event::Watchdog(_)
            | Event::Down(_)
            | Event::Discarded(_) => {}
        }
    }

    /// The Origin-Host the peer announced (else the name it was configured with), one shared
    /// copy for all its requests, made again only when the name changes.
    fn peer_name(&mut self) -> Arc<str> {
        let current = self
            .peer
            .remote()
            .map_or(self.host.as_str(), |r| r.origin_host.as_str());
        match &self.name {
            Some(n) if **n == *current => Arc::clone(n),
            _ => {
                let n: Arc<str> = Arc::from(current);
                self.name = Some(Arc::clone(&n));
                n
            }
        }
    }

    fn on_request(&mut self, m: OwnedMessage) {
        let view = m.view();
        // Origin-Host and Origin-State-Id (for both uses below) found in the walk that finds
        // the routing AVPs
        let route = self.node.inner.table.route_avps(&view);
        let (origin_host, state) = (route.origin_host, route.origin_state_id);
        // a restarted origin's requests are forgotten before this one is checked
        self.node.origin_state_of(origin_host, state);
        let dup = self
            .node
            .inner
            .dups
            .lock()
            .expect("dups lock")
            .check_origin(now(), origin_host, view.end_to_end(), view.hop_by_hop());
        match dup {
            Duplicate::InProgress => {
                // the first copy is still being handled (maybe for a connection that is gone
                // since, which is why this copy came): this one gets the same answer
                if let Some(host) = origin_host {
                    let key = (host.to_ascii_lowercase(), view.end_to_end());
                    self.node
                        .inner
                        .dup_waiters
                        .lock()
                        .expect("dup waiters lock")
                        .entry(key)
                        .or_default()
                        .push((self.tx.clone(), view.hop_by_hop()));
                }
            }
            Duplicate::Answered(a) => {
                let _ = self.peer.send_answer_bytes(now(), a);
            }
            Duplicate::New => {
                let peer = self.peer_name();
                let merge = self.node.inner.cfg.merge_repeated_destination_realm;
                let req = self.node.merged(m.clone());
                // decided here: an answer ready at once is sent by this task; a handler's own
                // future is polled here once (no other box around it); only a relay (or a
                // discovery) runs the whole answering in a future of its own
                let req_view = req.view();
                let plan = if merge {
                    self.node.plan(&req_view)
                } else {
                    // the same octets: the routing AVPs found above
                    self.node.plan_with(&req_view, &route)
                };
                let plan = match plan {
                    Plan::Answer(a) => Ok(a),
                    Plan::Handle(h) => Err(Some(h)),
                    Plan::Relay(..) | Plan::Discover(_) => Err(None),
                };
                let mut fut: BoxFuture = match plan {
                    Ok(a) => {
                        let a = self.node.answered(&m, origin_host, a);
                        let _ = self.peer.send_answer_bytes(now(), a);
                        return;
                    }
                    Err(Some(h)) => h(Incoming {
                        message: req.clone(),
                        peer,
                    }),
                    Err(None) => {
                        let node = self.node.clone();
                        let req = req.clone();
                        Box::pin(async move { node.answer_request(req, peer).await })
                    }
                };
                // polled once here: an answer ready at once (a handler that does not wait) is
                // sent by this task, with no task of its own; one that waits (a relay, a
                // handler awaiting something) gets a task, where it is polled again with that
                // task's waker (a future wakes the waker of its latest poll)
                let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
                let first = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    fut.as_mut().poll(&mut cx)
                }));
                match first {
                    Ok(std::task::Poll::Ready(a)) => {
                        let a = self.node.answered(&m, origin_host, a);
                        let _ = self.peer.send_answer_bytes(now(), a);
                    }
                    Err(_) => {
                        // the handler panicked: 5012 DIAMETER_UNABLE_TO_COMPLY
                        let a = self.node.unable_to_comply(&req);
                        let a = self.node.answered(&m, origin_host, a);
                        let _ = self.peer.send_answer_bytes(now(), a);
                    }
                    Ok(std::task::Poll::Pending) => {
                        let node = self.node.clone();
                        let tx = self.tx.clone();
                        self.node.spawn(async move {
                            let a = node.handled(fut, &req).await;
                            let a = node.answered(&m, m.view().origin_host(), a);
                            let _ = tx.send(Cmd::Answer(a));
                        });
                    }
                }
            }
        }
    }
}
