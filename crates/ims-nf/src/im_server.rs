//! The IM server: an IMS application server for page-mode messaging on one ims-net SIP
//! endpoint (UDP and TCP).
//!
//! - **SMS over IP** (TS 24.341 §5.3, TS 23.204): a MESSAGE with `application/vnd.3gpp.sms`
//!   is answered 202 Accepted and its RP message handed to the sans-IO [`IpSmGw`]; what the
//!   IP-SM-GW wants sent (RP-ACK/RP-ERROR to the submitter, RP-DATA(SMS-DELIVER) to the
//!   recipient, SMS-STATUS-REPORTs) leaves as new MESSAGE requests through the S-CSCF, with the
//!   service's own URI in From and P-Asserted-Identity (TS 24.341 Annex B.6) — the S-CSCF
//!   serving the recipient, learnt from its third-party REGISTER, else the configured one
//!   (TS 24.229 §5.7.3). A delivery that meets a temporary failure (no answer, 408, 480,
//!   5xx, RP-ERROR other than a permanent cause) stays stored and is retried by the
//!   IP-SM-GW's back-off timer, on RP-SMMA, or when the recipient registers; a permanent
//!   one (404, 403, 415, 488, 6xx, RP-ERROR 21/95/96/97/99) ends it at once with the status
//!   report ([`Failure`], TS 23.040 §11.1, TS 23.204 §6.0a.1). An MSISDN-less submission
//!   (recipient by SIP URI) is answered once its first attempt's SIP outcome is known: RP-ACK,
//!   or RP-ERROR when the terminating network refused it for good (TS 23.204 §6.3a).
//! - **Third-party registration** (TS 24.229 §5.4.1.7): a REGISTER whose To is the registered
//!   IMPU (its body may be the `message/sip` of the UE's 200 OK, whose P-Associated-URI names the
//!   implicit registration set) is answered 200; with Expires > 0 the stored messages of that
//!   user are delivered at once, and its Contact (the S-CSCF's own URI) is where requests for
//!   the set go from then on.
//! - **Page-mode IM** (RFC 3428, RFC 3862, RFC 5438): any other MESSAGE (text/plain,
//!   message/cpim, message/imdn+xml, ...) is relayed as a **B2BUA** (TS 24.229 §5.7.5): a new
//!   MESSAGE with the same Request-URI, From URI, To, P-Asserted-Identity and body goes along the
//!   Route set the S-CSCF left after our own entry (so the S-CSCF continues its iFC evaluation
//!   from the `odi` it put there), and the final answer (200 or 202, or the failure) is relayed
//!   to the sender. IMDN notifications are ordinary MESSAGEs and take the same path. With
//!   [`ImServerConfig::network_imdn`] the server acts as the network for delivery
//!   notifications: when a CPIM message asks for `positive-delivery` (or `negative-delivery`) and
//!   the relayed MESSAGE gets a 2xx (or fails), it sends the `message/imdn+xml` notification back
//!   to the sender itself.
//!
//! Stored short messages live in a [`FileSmsStore`] when [`ImServerConfig::store`] names a
//! directory (or in Redis), so they survive a restart. A message is durable before the server
//! promises to deliver it: the RP-ACK of an SMS-SUBMIT and the 202 of a stored IM leave only
//! once the store has confirmed the write (within [`ImServerConfig::store_wait`]); otherwise
//! the submitter gets RP-ERROR 41 "temporary failure" (the IM sender the 480) and nothing is
//! kept. A short message is delivered at most once per acknowledgement: an SMS-DELIVER leaves
//! only once the store holds its attempt (its RP-MR), a SIP failure ends only that attempt and
//! the recipient's RP-ACK naming any attempt of the message completes it, and the removal that
//! RP-ACK causes reaches the store even after an outage (the Redis writer keeps failed writes
//! until Redis takes them); a message reloaded with an attempt in flight is tried again after
//! TR1N ([`IpSmGwConfig::ack_wait`]). Subscribers are numbered through [`Numbering`]: the
//! IP-SM-GW keys everything by `tel:+MSISDN`, and addresses recipients by their SIP IMPU.
//!
//! ```no_run
//! use ims_nf::im_server::{ImServer, ImServerConfig, Numbering};
//! # async fn run() -> Result<(), ims_nf::im_server::ImServerError> {
//! let mut cfg = ImServerConfig::new(
//!     "127.0.0.1:7070".parse().unwrap(),
//!     "ims.example.org",
//!     "sip:term@127.0.0.1:6060",
//! );
//! cfg.numbering.add("+15550001", ["sip:alice@ims.example.org"]);
//! cfg.store = Some("/var/lib/ims-rs/sms".into());
//! let server = ImServer::start(cfg).await?;
//! println!("IM server on {}", server.local_addr());
//! # Ok(()) }
//! ```

use crate::cscf::uri_of;
use crate::ipsmgw::sgd::{self as sgd_map, MoInput, MtResult, Originator, SgdIdentity};
use crate::ipsmgw::{
    Action, Failure, FileSmsStore, IpSmGw, IpSmGwConfig, MemorySmsStore, SmsStore,
};
use crate::runtime::{random16, unix_now};
use bytes::Bytes;
use ims_diameter::Command as _;
use ims_msrp::cpim::Cpim;
use ims_msrp::imdn::{Disposition, Imdn, Notification};
use ims_net::sip::{Endpoint, EndpointConfig, Incoming, NetError};
use ims_sip::{HeaderName, Message, Method, OwnedMessage, RequestBuilder};
use ims_txn::ua::{Answer, UaEvent};
use ims_txn::TxnId;
use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

pub use crate::ipsmgw::CONTENT_TYPE as SMS_CONTENT_TYPE;

#[cfg(feature = "redis")]
#[path = "im_redis.rs"]
mod im_redis;

/// The IMDN name space (RFC 5438 §5).
pub const IMDN_NS: &str = "urn:ietf:params:imdn";

/// How many sent notifications are remembered to avoid duplicates.
const NOTIFIED_MEMORY: usize = 4096;

/// The page-mode size limit (octets of body): larger messages use large mode (TS 24.247 §5.2,
/// RFC 3428 §4).
pub const PAGE_MODE_LIMIT: usize = 1300;

/// Most page-mode IMs kept for unregistered recipients (oldest dropped first).
const MAX_STORED_IM: usize = 10_000;

/// Delivery attempts of a stored IM before it is dropped.
const STORED_IM_ATTEMPTS: u8 = 3;

/// Longest wait of the answer to a MESSAGE carrying the recipient's RP-ACK/RP-ERROR (or an
/// RP-SMMA) for the store to confirm what it changed (the removal of the delivered message):
/// under the 32 s (64·T1, Timer F) its sender's transaction lives, so that over UDP a crash
/// meanwhile is repaired by the retransmission reaching the restarted server.
const RP_ANSWER_HOLD: Duration = Duration::from_secs(24);

/// Piece size of large-mode chunks (`ims_msrp::session::Config::piece_size`).
const LARGE_MODE_PIECE: usize = 1024;

/// How long large-mode delivery waits for the answer, the connection and the REPORT.
const LARGE_MODE_TIMEOUT: Duration = Duration::from_secs(15);

/// One subscriber's number and public identities.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NumberEntry {
    /// E.164 number with `+` (`+15550001`).
    pub msisdn: String,
    /// Its IMPUs; the first `sip:` one is where short messages are addressed.
    pub impus: Vec<String>,
    /// Its IMSI, when known ([`Numbering::set_imsi`]): the User-Name an SMSC's SGd TFR names the
    /// recipient by, and the User-Name of the OFRs it submits.
    pub imsi: Option<String>,
}

/// The MSISDN map: which IMPUs belong to which number.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Numbering {
    entries: Vec<NumberEntry>,
}

/// An identity without brackets, parameters or headers, scheme in lower case
/// (`<sip:Alice@x;user=phone>` → `sip:Alice@x`).
pub fn bare_uri(value: &str) -> String {
    let u = crate::cscf::uri_in(value);
    let u = &u[..u.find([';', '?']).unwrap_or(u.len())];
    // one allocation: the scheme (up to the first ':') lower-cased in place
    let mut bare = u.to_string();
    if let Some(colon) = bare.find(':') {
        bare[..colon].make_ascii_lowercase();
    }
    bare
}

/// The user part of `sip:<IMSI>@…` when it is 6 to 15 digits (an IMSI).
fn imsi_user(uri: &str) -> Option<String> {
    let user = uri.strip_prefix("sip:")?.split_once('@')?.0;
    ((6..=15).contains(&user.len()) && user.bytes().all(|b| b.is_ascii_digit()))
        .then(|| user.to_string())
}

impl Numbering {
    /// An empty map.
    pub fn new() -> Numbering {
        Numbering::default()
    }

    /// Adds a subscriber: `msisdn` (with or without `+`) and its IMPUs (a `tel:` IMPU of the same
    /// number need not be listed).
    pub fn add<I, S>(&mut self, msisdn: &str, impus: I) -> &mut Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let msisdn = format!("+{}", msisdn.trim_start_matches('+'));
        self.entries.push(NumberEntry {
            msisdn,
            impus: impus.into_iter().map(|s| bare_uri(&s.into())).collect(),
            imsi: None,
        });
        self
    }

    /// Gives the subscriber of `msisdn` (with or without `+`) its IMSI; false when the number
    /// is not listed.
    pub fn set_imsi(&mut self, msisdn: &str, imsi: &str) -> bool {
        let msisdn = format!("+{}", msisdn.trim_start_matches('+'));
        match self.entries.iter_mut().find(|e| e.msisdn == msisdn) {
            Some(e) => {
                e.imsi = Some(imsi.to_string());
                true
            }
            None => false,
        }
    }

    /// The IMSI of the subscriber `id` names: the one set with [`Numbering::set_imsi`], else
    /// the user part of an IMPU `sip:<15 digits>@…` (an IMSI-derived IMPU, TS 23.003 §13.4B).
    pub fn imsi_of(&self, id: &str) -> Option<String> {
        let e = self.entry(id)?;
        e.imsi
            .clone()
            .or_else(|| e.impus.iter().find_map(|u| imsi_user(u)))
    }

    /// The canonical identity ([`Numbering::canonical`]) of the subscriber with IMSI `imsi`
    /// (as [`Numbering::imsi_of`] reads it).
    pub fn by_imsi(&self, imsi: &str) -> Option<String> {
        self.entries
            .iter()
            .find(|e| {
                e.imsi.as_deref() == Some(imsi)
                    || (e.imsi.is_none()
                        && e.impus.iter().any(|u| imsi_user(u) == Some(imsi.into())))
            })
            .map(|e| format!("tel:{}", e.msisdn))
    }

    /// Builds the map from implicit registration sets: each set with a `tel:+…` IMPU is one
    /// subscriber of that number.
    pub fn from_sets<'a>(sets: impl IntoIterator<Item = &'a [String]>) -> Numbering {
        let mut n = Numbering::new();
        for set in sets {
            if let Some(tel) = set.iter().find_map(|u| {
                bare_uri(u)
                    .strip_prefix("tel:")
                    .filter(|d| d.starts_with('+'))
                    .map(str::to_string)
            }) {
                n.add(&tel, set.iter().cloned());
            }
        }
        n
    }

    /// Whether no subscriber is listed.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Number of subscribers listed.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    fn entry(&self, id: &str) -> Option<&NumberEntry> {
        let id = bare_uri(id);
        let digits = id
            .strip_prefix("tel:")
            .map(|d| format!("+{}", d.trim_start_matches('+')));
        self.entries.iter().find(|e| {
            digits.as_deref() == Some(e.msisdn.as_str())
                || e.impus.iter().any(|u| u.eq_ignore_ascii_case(&id))
        })
    }

    /// The key the IP-SM-GW uses for an identity: `tel:+MSISDN` of a listed subscriber, else
    /// the bare URI itself.
    pub fn canonical(&self, id: &str) -> String {
        match self.entry(id) {
            Some(e) => format!("tel:{}", e.msisdn),
            None => bare_uri(id),
        }
    }

    /// Whether `id` (an IMPU or `tel:` number) is a listed subscriber.
    pub fn knows(&self, id: &str) -> bool {
        self.entry(id).is_some()
    }

    /// Where to address a request for `id`: the subscriber's first SIP IMPU, else `id`.
    pub fn address(&self, id: &str) -> String {
        self.entry(id)
            .and_then(|e| e.impus.iter().find(|u| u.starts_with("sip:")).cloned())
            .unwrap_or_else(|| bare_uri(id))
    }
}

/// Settings of an [`ImServer`].
#[derive(Debug, Clone)]
pub struct ImServerConfig {
    /// Where to listen (UDP and TCP on the same port).
    pub listen: SocketAddr,
    /// Home domain.
    pub domain: String,
    /// The S-CSCF that requests the server originates go through (pushed as a loose Route):
    /// its terminating side, e.g. `sip:term@127.0.0.1:6060`. A request for a user whose
    /// third-party REGISTER is live goes to the S-CSCF that sent that REGISTER (its Contact)
    /// instead; this one is the fallback.
    pub scscf: String,
    /// The service's own URI, in From and P-Asserted-Identity of what it originates
    /// (default `sip:ipsmgw@<domain>`).
    pub identity: String,
    /// Where stored short messages and page-mode IMs live so they survive a restart: a
    /// directory (file-backed store), or with the `redis` feature `redis://HOST:PORT[/PREFIX]`
    /// (two Redis hashes, `PREFIX` + `sms` and `PREFIX` + `im`, default prefix `ims:im:`).
    /// `None`: in memory only.
    pub store: Option<PathBuf>,
    /// IP-SM-GW policy (SC address, attempts, back-off, validity).
    pub ipsmgw: IpSmGwConfig,
    /// The MSISDN map.
    pub numbering: Numbering,
    /// Answer submissions to numbers missing from [`ImServerConfig::numbering`] with RP-ERROR
    /// unknown subscriber (cause 30, TS 24.011 §8.2.5.4) instead of trying them.
    pub reject_unknown: bool,
    /// Send IMDN delivery notifications as the network (RFC 5438 §7.2 intermediary) for CPIM
    /// messages that ask for them.
    pub network_imdn: bool,
    /// How often the retry timer of the IP-SM-GW is looked at.
    pub tick: Duration,
    /// Largest page-mode body (octets). A message the server must deliver that is larger goes
    /// out in large mode instead: INVITE with an MSRP offer, one SEND, BYE (TS 24.247 §5.2;
    /// RFC 3428 §4 puts the MESSAGE limit at 1300 octets).
    pub page_limit: usize,
    /// Keep page-mode IMs whose relay met a temporary failure — the recipient is not
    /// registered (480), unreachable for now (408), or the network failed for a while (500,
    /// 503, 504, …, see [`Failure::of_sip`]) within [`ImServerConfig::page_answer_wait`] —
    /// and deliver them when the recipient registers, or after the IP-SM-GW's back-off, like
    /// short messages; the sender gets 202 Accepted. A CPIM message sent again while held
    /// (same sender and `imdn.Message-ID`) gets 202 and is not kept twice. A
    /// stored IM meeting a permanent failure (404, 403, 415, 488, 6xx) is dropped at once
    /// with the `failed` IMDN when asked for. Off: the failure is relayed.
    pub store_im: bool,
    /// How long a stored page-mode IM is kept: when it expires the sender gets a `failed`
    /// IMDN if the message asked for `negative-delivery` (RFC 5438 §7.2), and the message is
    /// dropped. Default three days, like [`IpSmGwConfig::validity`].
    pub im_validity: Duration,
    /// How long a message accepted for later delivery may wait for the store to confirm its
    /// write (Redis answers asynchronously) before the promise is made: a short message's
    /// RP-ACK, a stored IM's 202. When the write fails or is not confirmed in time the short
    /// message gets RP-ERROR cause 41 "temporary failure" (TS 24.011 Annex E; the MESSAGE
    /// itself was already answered 202, TS 24.341 §5.3.2.4) and the IM its 480, and neither is
    /// kept. Default 3 s.
    pub store_wait: Duration,
    /// How long after a page-mode MESSAGE arrived a temporary failure of its relay (408, 480,
    /// 5xx, …) may still be turned into 202 and the message kept ([`ImServerConfig::store_im`]):
    /// the 202 must reach a sender still waiting, whose transaction (64·T1 = 32 s, Timer F)
    /// began before ours. A failure that comes later — our own Timer F is one — is relayed.
    /// Default 24 s.
    pub page_answer_wait: Duration,
    /// The MSRP relay (RFC 4976) the server's own large-mode deliveries go through — set it
    /// to the session anchor's ([`crate::im_session::ImSessionConfig::relay`]): for each
    /// delivery the server connects to the relay (TLS for an `msrps:` relay) and AUTHs with
    /// the session's URI, offers the relay's Use-Path before that URI in `a=path` (the relay
    /// in `c=`/`m=`, and for `msrps:` its certificate's `a=fingerprint`), and sends over that
    /// connection (To-Path: the Use-Path, then the recipient's path). A relay that cannot be
    /// reached or refuses the AUTH fails the delivery with 503 (a stored message is tried
    /// again later). `None`: the server connects to the recipient's path itself.
    pub msrp_relay: Option<crate::im_session::AnchorRelay>,
    /// An external SMSC reached over SGd (TS 29.338): when set, the IP-SM-GW forwards every
    /// RP-DATA a UE submits (SMS-SUBMIT, SMS-COMMAND) in an MO-Forward-Short-Message-Request
    /// and answers the UE from the OFA (RP-ACK with the SMS-SUBMIT-REPORT, or RP-ERROR with the
    /// mapped cause, [`crate::ipsmgw::sgd`]), and delivers the SMSC's
    /// MT-Forward-Short-Message-Requests to registered recipients, answering each from the
    /// recipient's RP-ACK/RP-ERROR — an unregistered or unreachable recipient is reported
    /// absent (DIAMETER_ERROR_ABSENT_USER) instead of stored: store and forward is the SMSC's.
    /// The IP-SM-GW then keeps the Message Waiting Data itself ([`crate::ipsmgw::sgd::Mwd`]:
    /// which SMSC waits for whom, absent or memory full; in the store with
    /// [`ImServerConfig::store`], so it survives a restart) and alerts the waiting SMSCs with
    /// Alert-Service-Centre (S6c ALR on the SGd connection, TS 29.338 §6.1) when the recipient
    /// registers (absent, memory not full) or sends RP-SMMA, which is answered RP-ACK once the
    /// alerts went through (RP-ERROR with the TS 23.040 §11.2 cause when one failed). In the
    /// specifications the HSS keeps that data and alerts (TS 23.204 §6.x); without an S6c HSS
    /// the IP-SM-GW alerts the SMS-GMSC directly, as an MME or SGSN does over SGd.
    /// A submission to a recipient addressed by SIP URI (MSISDN-less, TS 23.204 §6.0a.1) is
    /// still tried in IMS directly. `None` (the default): the IP-SM-GW acts as the SMSC.
    pub smsc: Option<SmscConfig>,
}

/// An external SMSC (SMS-IWMSC for MO, SMS-GMSC for MT) reached over SGd ([`ImServerConfig::smsc`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmscConfig {
    /// Where the SMSC's Diameter node listens (the IM server connects, and reconnects every
    /// 5 s while the connection is down).
    pub addr: SocketAddr,
    /// Its Diameter identity (the Origin-Host it presents in CER/CEA; Destination-Host of the
    /// OFRs).
    pub host: String,
    /// Its realm (Destination-Realm of the OFRs).
    pub realm: String,
    /// Our Origin-Host (default `ipsmgw.<domain>`).
    pub origin_host: String,
    /// Our Origin-Realm (default the domain).
    pub origin_realm: String,
    /// Also accept Diameter connections here (an SMSC that connects to the IP-SM-GW itself).
    pub listen: Option<SocketAddr>,
    /// How long an OFR waits for its OFA (default 10 s); without one the UE gets RP-ERROR 38.
    pub request_timeout: Duration,
    /// Longest wait for a recipient's RP-ACK/RP-ERROR to a TFR's RP-DATA after its MESSAGE got
    /// a 2xx (default 30 s, within TR1N, TS 24.011); a TFR's SM-Delivery-Timer shortens it.
    pub mt_answer_wait: Duration,
}

impl SmscConfig {
    /// The SMSC `host` of `realm` at `addr`, for an IM server of `domain`: our identity
    /// `ipsmgw.<domain>` in realm `domain`, the default waits.
    pub fn new(addr: SocketAddr, host: &str, realm: &str, domain: &str) -> SmscConfig {
        SmscConfig {
            addr,
            host: host.to_string(),
            realm: realm.to_string(),
            origin_host: format!("ipsmgw.{domain}"),
            origin_realm: domain.to_string(),
            listen: None,
            request_timeout: Duration::from_secs(10),
            mt_answer_wait: Duration::from_secs(30),
        }
    }
}

impl ImServerConfig {
    /// Defaults for `listen`, `domain` and the S-CSCF URI.
    pub fn new(listen: SocketAddr, domain: &str, scscf: &str) -> ImServerConfig {
        ImServerConfig {
            listen,
            domain: domain.to_string(),
            scscf: scscf.to_string(),
            identity: format!("sip:ipsmgw@{domain}"),
            store: None,
            ipsmgw: IpSmGwConfig::default(),
            numbering: Numbering::new(),
            reject_unknown: false,
            network_imdn: false,
            tick: Duration::from_secs(1),
            page_limit: PAGE_MODE_LIMIT,
            store_im: true,
            im_validity: Duration::from_secs(3 * 24 * 3600),
            store_wait: Duration::from_secs(3),
            page_answer_wait: Duration::from_secs(24),
            msrp_relay: None,
            smsc: None,
        }
    }
}

/// Why the server did not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ImServerError {
    /// The SIP socket could not be bound.
    #[error("SIP: {0}")]
    Sip(#[from] NetError),
    /// The store directory could not be read or created.
    #[error("SMS store: {0}")]
    Store(#[from] std::io::Error),
    /// The Diameter node toward the SMSC could not listen where told.
    #[error("SGd: {0}")]
    Diameter(String),
}

/// Counters of a running server.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ImStats {
    /// SMS MESSAGEs received (answered 202).
    pub sms_received: u64,
    /// SMS MESSAGEs sent (RP-ACK/RP-ERROR, SMS-DELIVER, status reports).
    pub sms_sent: u64,
    /// SMS MESSAGEs sent that got no 2xx.
    pub sms_failed: u64,
    /// Page-mode MESSAGEs relayed.
    pub im_relayed: u64,
    /// IMDN notifications generated by the server.
    pub imdn_sent: u64,
    /// Third-party REGISTERs received.
    pub registers: u64,
    /// Page-mode IMs stored for an unregistered recipient.
    pub im_stored: u64,
    /// Messages delivered in large mode (INVITE + MSRP SEND + BYE) by the server itself.
    pub large_sent: u64,
    /// Stored page-mode IMs dropped undelivered (expired, or out of attempts or room).
    pub im_expired: u64,
    /// Messages refused because the store did not confirm them ([`ImServerConfig::store_wait`]).
    pub store_refused: u64,
    /// MO-Forward-Short-Message-Requests sent to the SMSC ([`ImServerConfig::smsc`]).
    pub sgd_ofr: u64,
    /// MT-Forward-Short-Message-Requests received from the SMSC.
    pub sgd_tfr: u64,
    /// Alert-Service-Centre-Requests sent to SMSCs waiting for a recipient (on its RP-SMMA or
    /// registration).
    pub sgd_alr: u64,
}

#[derive(Default)]
struct Counters {
    sms_received: AtomicU64,
    sms_sent: AtomicU64,
    sms_failed: AtomicU64,
    im_relayed: AtomicU64,
    imdn_sent: AtomicU64,
    registers: AtomicU64,
    im_stored: AtomicU64,
    large_sent: AtomicU64,
    im_expired: AtomicU64,
    store_refused: AtomicU64,
    sgd_ofr: AtomicU64,
    sgd_tfr: AtomicU64,
    sgd_alr: AtomicU64,
}

fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

type Gw = IpSmGw<Box<dyn SmsStore>>;

/// What one IP-SM-GW call wrote to the store: the store's mark taken before, and the
/// messages ([`IpSmGw::written`]).
struct Written {
    mark: u64,
    ids: Vec<u64>,
}

struct Shared {
    cfg: ImServerConfig,
    endpoint: Endpoint,
    gw: Mutex<Gw>,
    registered: Mutex<HashSet<String>>,
    /// The S-CSCF serving each registered identity (canonical), from its third-party REGISTER.
    serving: Mutex<std::collections::HashMap<String, String>>,
    /// `(sender, imdn.Message-ID)` of the notifications sent lately: a message the server relays
    /// on both the originating and the terminating leg is notified once.
    notified: Mutex<std::collections::VecDeque<(String, String)>>,
    counters: Counters,
    outbox: mpsc::UnboundedSender<Action>,
    others: Option<mpsc::UnboundedSender<UaEvent>>,
    /// Page-mode IMs waiting for their recipient's registration.
    stored_im: Mutex<std::collections::VecDeque<StoredIm>>,
    /// Where they are persisted (with [`ImServerConfig::store`]).
    im_store: Option<ImStore>,
    im_seq: AtomicU64,
    /// The SGd side toward the SMSC ([`ImServerConfig::smsc`]).
    sgd: Option<Sgd>,
}

/// The IP-SM-GW's Diameter node toward the SMSC and the MT deliveries waiting for their
/// recipient's RP-ACK/RP-ERROR.
struct Sgd {
    node: ims_net::diameter::Node,
    id: SgdIdentity,
    /// `(recipient (canonical), RP-MR)` of each RP-DATA sent for a TFR.
    pending: Mutex<std::collections::HashMap<(String, u8), oneshot::Sender<MtResult>>>,
    /// The SMSCs waiting to be alerted, per recipient (kept in the store, see
    /// [`ImServerConfig::smsc`]).
    mwd: Mutex<sgd_map::Mwd>,
}

/// A page-mode IM kept for an unregistered recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
struct StoredIm {
    /// The recipient (canonical identity, see [`Numbering::canonical`]).
    to: String,
    page: Page,
    attempts: u8,
    /// When it was stored (seconds since the epoch).
    stored_at: u64,
    /// When to try it again (seconds since the epoch; 0: when its recipient registers).
    next_attempt: u64,
    /// Its key in the store (a file path, or a Redis hash field), when persisted.
    key: Option<String>,
    /// Its identity, kept in the store: every delivery attempt — also after a restart —
    /// carries the same Call-ID (`<id>@<domain>`) and From tag (`<id>`), with the attempt's
    /// number as CSeq (rising, like the REGISTERs of one Call-ID, RFC 3261 §8.1.1.5,
    /// §10.2.4), so the recipient can tell a repeat of a message it took from a new message
    /// even for text/plain, which has no `imdn.Message-ID` (RFC 3261 §8.1.1.4: the Call-ID
    /// with the From tag names the exchange). A repeat never has the CSeq of an attempt
    /// still in progress: it is not a merged request (§8.2.2.2, 482).
    id: String,
}

impl StoredIm {
    fn to_json(&self) -> String {
        let p = &self.page;
        serde_json::json!({
            "to": self.to, "request_uri": p.request_uri, "from_uri": p.from_uri,
            "from_display": p.from_display, "to_header": p.to, "asserted": p.asserted,
            "content_type": p.content_type, "body": hex(&p.body), "attempts": self.attempts,
            "stored_at": self.stored_at, "next_attempt": self.next_attempt, "id": self.id,
        })
        .to_string()
    }

    /// The record written by [`StoredIm::to_json`]; `None` when it is not one.
    fn from_json(text: &[u8], key: String) -> Option<StoredIm> {
        let v = serde_json::from_slice::<serde_json::Value>(text).ok()?;
        let s = |k: &str| v[k].as_str().map(str::to_owned);
        Some(StoredIm {
            to: s("to")?,
            page: Page {
                request_uri: s("request_uri")?,
                from_uri: s("from_uri").unwrap_or_default(),
                from_display: s("from_display"),
                to: s("to_header").unwrap_or_default(),
                asserted: s("asserted"),
                routes: Vec::new(),
                max_forwards: 70,
                content_type: s("content_type").unwrap_or_else(|| "text/plain".into()),
                body: unhex(&s("body")?)?,
            },
            attempts: v["attempts"]
                .as_u64()
                .and_then(|a| u8::try_from(a).ok())
                .unwrap_or(0),
            // records of an older version have no time: their age counts from the restart
            stored_at: v["stored_at"].as_u64().unwrap_or_else(unix_now),
            next_attempt: v["next_attempt"].as_u64().unwrap_or(0),
            // records of an older version have none: one derived from their key (stable
            // across restarts from now on)
            id: s("id").unwrap_or_else(|| legacy_id(&key)),
            key: Some(key),
        })
    }
}

/// The identity of a stored IM written before identities were kept: FNV-1a of its key.
fn legacy_id(key: &str) -> String {
    let h = key.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("{h:016x}")
}

/// A name for a stored IM that sorts in arrival order.
fn stored_name(seq: u64) -> String {
    format!("{:012}-{seq:08}-{}", unix_now(), token())
}

/// Where stored page-mode IMs are persisted.
#[derive(Debug, Clone)]
enum ImStore {
    Files(ImFileStore),
    #[cfg(feature = "redis")]
    Redis(im_redis::RedisMirror),
}

impl ImStore {
    /// Writes `m` under its key ([`StoredIm::key`], replacing that record in one step), or a
    /// new one, and returns the key.
    fn save(&self, m: &StoredIm, seq: u64) -> Option<String> {
        match self {
            ImStore::Files(f) => match &m.key {
                Some(path) => f.write(m, path).ok().map(|()| path.clone()),
                None => f.save(m, seq).ok(),
            },
            #[cfg(feature = "redis")]
            ImStore::Redis(r) => {
                let name = m.key.clone().unwrap_or_else(|| stored_name(seq));
                r.set("im", &name, m.to_json().into_bytes());
                Some(name)
            }
        }
    }

    /// Removes the record `key`; false when that already failed (the file store; Redis
    /// answers later, see [`ImStore::confirm_im`]).
    fn remove(&self, key: &str) -> bool {
        match self {
            ImStore::Files(_) => ImFileStore::remove(key),
            #[cfg(feature = "redis")]
            ImStore::Redis(r) => {
                r.del("im", key);
                true
            }
        }
    }

    /// Writes the Message Waiting Data of `user` (`None`: nothing waits any more, the record
    /// goes). The file store writes at once; Redis later (confirm with [`ImStore::confirm_mwd`]).
    fn save_mwd(&self, user: &str, w: Option<&sgd_map::MessageWaiting>) {
        match self {
            ImStore::Files(f) => {
                let r = match w {
                    Some(w) => f.write_mwd(user, w),
                    None => f.remove_mwd(user),
                };
                if let Err(e) = r {
                    eprintln!("im server: message waiting data of {user}: {e}");
                }
            }
            #[cfg(feature = "redis")]
            ImStore::Redis(r) => match w {
                Some(w) => r.set("mwd", user, w.to_json(user).into_bytes()),
                None => r.del("mwd", user),
            },
        }
    }

    /// Whether the writes since `mark` to the Message Waiting Data of `user` are durable,
    /// waiting at most `wait` (always true for the file store).
    async fn confirm_mwd(&self, mark: u64, user: &str, wait: Duration) -> bool {
        match self {
            ImStore::Files(_) => {
                let _ = (mark, user, wait);
                true
            }
            #[cfg(feature = "redis")]
            ImStore::Redis(r) => tokio::time::timeout(wait, r.confirm(mark, &[("mwd", user)]))
                .await
                .unwrap_or(false),
        }
    }

    /// The number of the next write, for [`ImStore::confirm`].
    fn mark(&self) -> u64 {
        match self {
            ImStore::Files(_) => 0,
            #[cfg(feature = "redis")]
            ImStore::Redis(r) => r.mark(),
        }
    }

    /// Whether the writes since `mark` to the stored IM `key` are durable, waiting at most
    /// `wait` (the file store writes synchronously and reports its failures at once: always
    /// true here).
    async fn confirm_im(&self, mark: u64, key: &str, wait: Duration) -> bool {
        match self {
            ImStore::Files(_) => {
                let _ = (mark, key, wait);
                true
            }
            #[cfg(feature = "redis")]
            ImStore::Redis(r) => tokio::time::timeout(wait, r.confirm(mark, &[("im", key)]))
                .await
                .unwrap_or(false),
        }
    }

    /// As [`ImStore::confirm_im`] for the stored short messages `ids` ([`IpSmGw::written`]).
    async fn confirm_sms(&self, mark: u64, ids: &[u64], wait: Duration) -> bool {
        match self {
            ImStore::Files(_) => {
                let _ = (mark, ids, wait);
                true
            }
            #[cfg(feature = "redis")]
            ImStore::Redis(r) => {
                let fields: Vec<String> = ids.iter().map(|id| im_redis::sms_field(*id)).collect();
                let fields: Vec<(&str, &str)> =
                    fields.iter().map(|f| ("sms", f.as_str())).collect();
                tokio::time::timeout(wait, r.confirm(mark, &fields))
                    .await
                    .unwrap_or(false)
            }
        }
    }

    /// Waits until every write so far has reached the store.
    async fn flush(&self) {
        match self {
            ImStore::Files(_) => {}
            #[cfg(feature = "redis")]
            ImStore::Redis(r) => r.flush().await,
        }
    }
}

/// The short message store, the IM store and the IMs it holds, as [`ImServerConfig::store`]
/// says.
async fn open_stores(
    store: Option<&std::path::Path>,
) -> std::io::Result<(
    Box<dyn SmsStore>,
    Option<ImStore>,
    Vec<StoredIm>,
    Vec<MwdRecord>,
)> {
    let Some(loc) = store else {
        return Ok((Box::new(MemorySmsStore), None, Vec::new(), Vec::new()));
    };
    if let Some(url) = loc.to_str().filter(|s| s.starts_with("redis://")) {
        #[cfg(feature = "redis")]
        {
            let (addr, prefix) = im_redis::parse_url(url).ok_or_else(|| {
                std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("bad URL {url}"))
            })?;
            let mirror = im_redis::RedisMirror::connect(&addr, &prefix).await?;
            let ims = mirror
                .load("im")
                .await?
                .into_iter()
                .filter_map(|(field, v)| StoredIm::from_json(&v, field))
                .collect();
            let mwd = mirror
                .load("mwd")
                .await?
                .into_iter()
                .filter_map(|(_, v)| sgd_map::MessageWaiting::from_json(&v))
                .collect();
            let sms = im_redis::RedisSmsStore::open(mirror.clone()).await?;
            return Ok((Box::new(sms), Some(ImStore::Redis(mirror)), ims, mwd));
        }
        #[cfg(not(feature = "redis"))]
        return Err(std::io::Error::new(
            std::io::ErrorKind::Unsupported,
            format!("{url}: built without the `redis` feature"),
        ));
    }
    let files = ImFileStore::new(loc)?;
    let ims = files.load_all()?;
    let mwd = files.load_mwd()?;
    Ok((
        Box::new(FileSmsStore::new(loc)?),
        Some(ImStore::Files(files)),
        ims,
        mwd,
    ))
}

/// A recipient's Message Waiting Data as read from the store.
type MwdRecord = (String, sgd_map::MessageWaiting);

/// Stored page-mode IMs as one JSON file each under `<store>/im/` (written when stored,
/// removed when delivered or given up), so they survive a restart like short messages.
/// The Message Waiting Data toward an external SMSC lives under `<store>/mwd/`, one JSON file
/// per recipient (named by the hex of its identity).
#[derive(Debug, Clone)]
struct ImFileStore {
    dir: PathBuf,
    mwd: PathBuf,
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

impl ImFileStore {
    fn new(store: &std::path::Path) -> std::io::Result<ImFileStore> {
        let dir = store.join("im");
        std::fs::create_dir_all(&dir)?;
        let mwd = store.join("mwd");
        std::fs::create_dir_all(&mwd)?;
        Ok(ImFileStore { dir, mwd })
    }

    fn mwd_path(&self, user: &str) -> PathBuf {
        self.mwd.join(format!("{}.json", hex(user.as_bytes())))
    }

    /// Writes `user`'s Message Waiting Data atomically (a temporary file renamed over it).
    fn write_mwd(&self, user: &str, w: &sgd_map::MessageWaiting) -> std::io::Result<()> {
        let path = self.mwd_path(user);
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, w.to_json(user))?;
        std::fs::rename(&tmp, path)
    }

    fn remove_mwd(&self, user: &str) -> std::io::Result<()> {
        match std::fs::remove_file(self.mwd_path(user)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// Every recipient's Message Waiting Data; unreadable files are skipped.
    fn load_mwd(&self) -> std::io::Result<Vec<MwdRecord>> {
        Ok(std::fs::read_dir(&self.mwd)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .filter_map(|p| sgd_map::MessageWaiting::from_json(&std::fs::read(p).ok()?))
            .collect())
    }

    /// Writes `m` under a new name and returns its path; names sort in arrival order.
    fn save(&self, m: &StoredIm, seq: u64) -> std::io::Result<String> {
        let path = self
            .dir
            .join(format!("{}.json", stored_name(seq)))
            .into_os_string()
            .into_string()
            .map_err(|_| std::io::Error::other("store path is not UTF-8"))?;
        self.write(m, &path)?;
        Ok(path)
    }

    /// Writes `m` to `path` atomically (a temporary file renamed over it).
    fn write(&self, m: &StoredIm, path: &str) -> std::io::Result<()> {
        let path = std::path::Path::new(path);
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, m.to_json())?;
        std::fs::rename(&tmp, path)
    }

    /// Every stored IM, oldest first; unreadable files are skipped.
    fn load_all(&self) -> std::io::Result<Vec<StoredIm>> {
        let mut names: Vec<String> = std::fs::read_dir(&self.dir)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .filter_map(|p| p.into_os_string().into_string().ok())
            .collect();
        names.sort();
        Ok(names
            .into_iter()
            .filter_map(|path| StoredIm::from_json(&std::fs::read(&path).ok()?, path))
            .collect())
    }

    /// Removes a stored IM's file; false when it is still there.
    fn remove(path: &str) -> bool {
        match std::fs::remove_file(path) {
            Ok(()) => true,
            Err(e) => e.kind() == std::io::ErrorKind::NotFound,
        }
    }
}

/// A running IM server. Dropping it does not stop it; call [`ImServer::shutdown`].
pub struct ImServer {
    shared: Arc<Shared>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl std::fmt::Debug for ImServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImServer")
            .field("local", &self.shared.endpoint.local_addr())
            .finish_non_exhaustive()
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn token() -> String {
    hex(&random16()[..8])
}

/// RFC 3339 UTC time of `now` (seconds since the epoch), as CPIM `DateTime` wants it.
pub fn datetime(now: u64) -> String {
    let (y, mo, d, h, mi, s) = crate::ipsmgw::civil(now);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
}

/// What an incoming request asks for, read out of the message (owned, so nothing borrowed
/// crosses an await).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Request {
    Sms {
        from: String,
        body: Vec<u8>,
        /// The recipient's SIP URI from the short-message-info `<To>` (MSISDN-less operation,
        /// TS 24.341 Annex B.7).
        to_uri: Option<String>,
    },
    Register {
        identities: Vec<String>,
        expires: u32,
        /// The S-CSCF that sent it (its Contact, TS 24.229 §5.4.1.7).
        scscf: Option<String>,
    },
    Page(Page),
    Options,
    Forbidden,
    Other,
}

/// A page-mode MESSAGE to relay.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Page {
    request_uri: String,
    from_uri: String,
    from_display: Option<String>,
    to: String,
    asserted: Option<String>,
    routes: Vec<String>,
    max_forwards: u8,
    content_type: String,
    body: Vec<u8>,
}

fn content_type(m: &Message<'_>) -> String {
    m.header(HeaderName::ContentType)
        .map(|v| v.split(';').next().unwrap_or(v).trim().to_ascii_lowercase())
        .unwrap_or_default()
}

/// The served identity: the first P-Asserted-Identity, else From.
fn served(m: &Message<'_>) -> Option<String> {
    if let Some((_, v)) = m.list(HeaderName::PAssertedIdentity).next() {
        return Some(bare_uri(v));
    }
    m.from().ok().flatten().map(|f| bare_uri(f.uri().as_str()))
}

/// The Expires of a REGISTER: the header, else the first Contact's `expires`, else 3600.
fn register_expires(m: &Message<'_>) -> u32 {
    if let Some(v) = m
        .header(HeaderName::Expires)
        .and_then(|v| v.trim().parse().ok())
    {
        return v;
    }
    m.list(HeaderName::Contact)
        .find_map(|(_, c)| {
            c.split(';')
                .skip(1)
                .find_map(|p| p.trim().strip_prefix("expires="))
                .and_then(|v| v.trim().parse().ok())
        })
        .unwrap_or(3600)
}

/// The MIME type of the short-message-info XML body (TS 24.341 Annex C.1).
pub const SMS_INFO_CONTENT_TYPE: &str = "application/vnd.3gpp.sms+xml";

/// The feature-capability indicator of MSISDN-less operation (TS 24.341 Annex D.2), in the
/// Feature-Caps of the MESSAGE the IP-SM-GW sends to a recipient addressed by SIP URI.
const MSISDN_LESS_FEATURE_CAPS: &str = "*;+g.3gpp.smsip-msisdn-less";

/// A multipart/mixed SMS over IP body: the RP message, and the `<To>` of the
/// short-message-info part when there is one (TS 24.341 Annex B.7, C.1).
fn sms_parts(m: &Message<'_>) -> Option<(Vec<u8>, Option<String>)> {
    let parts = m.multipart(&ims_sip::Limits::default()).ok()??;
    let is = |p: &ims_sip::multipart::Part<'_>, t: &str| {
        p.content_type()
            .and_then(Result::ok)
            .is_some_and(|c| format!("{}/{}", c.mtype, c.subtype).eq_ignore_ascii_case(t))
    };
    let rp = parts
        .iter()
        .find(|p| is(p, SMS_CONTENT_TYPE))?
        .body
        .to_vec();
    let to = parts
        .iter()
        .find(|p| is(p, SMS_INFO_CONTENT_TYPE))
        .and_then(|p| crate::xml::Element::parse(p.body, &crate::xml::XmlLimits::default()).ok())
        .filter(|x| x.name == "short-message-info")
        .and_then(|x| x.child_text("To").map(bare_uri))
        .filter(|u| u.starts_with("sip:") || u.starts_with("sips:"));
    Some((rp, to))
}

/// The multipart/mixed body of an MSISDN-less SMS-DELIVER (TS 24.341 Annex B.7): the RP
/// message and the short-message-info naming the sender in `<From>`; `(content type, body)`.
fn msisdn_less_body(rp: &[u8], from: &str) -> (String, Vec<u8>) {
    let boundary = format!("ims-rs-sms-{}", token());
    let xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n<short-message-info><From>{}</From></short-message-info>\r\n",
        crate::xml::escape(from)
    );
    let mut b = Vec::with_capacity(rp.len() + xml.len() + 200);
    b.extend_from_slice(
        format!("--{boundary}\r\nContent-Type: {SMS_CONTENT_TYPE}\r\n\r\n").as_bytes(),
    );
    b.extend_from_slice(rp);
    b.extend_from_slice(
        format!("\r\n--{boundary}\r\nContent-Type: {SMS_INFO_CONTENT_TYPE}\r\n\r\n{xml}")
            .as_bytes(),
    );
    b.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/mixed;boundary={boundary}"), b)
}

fn classify(msg: &OwnedMessage, local: SocketAddr, numbering: &Numbering) -> Request {
    let m = msg.as_message();
    match m.method() {
        Some(Method::Message) => {
            let ct = content_type(&m);
            let sms = if ct == SMS_CONTENT_TYPE {
                Some((m.body().to_vec(), None))
            } else if ct == "multipart/mixed" {
                sms_parts(&m)
            } else {
                None
            };
            if let Some((body, to_uri)) = sms {
                return match served(&m) {
                    Some(from) => Request::Sms {
                        from: numbering.canonical(&from),
                        body,
                        to_uri,
                    },
                    None => Request::Forbidden,
                };
            }
            let me = local.to_string();
            let mut routes: Vec<String> = m
                .list(HeaderName::Route)
                .map(|(_, v)| v.trim().to_string())
                .collect();
            // drop our own entries at the top (the S-CSCF routed the request to us by Route)
            while routes.first().is_some_and(|r| uri_of(r).contains(&me)) {
                routes.remove(0);
            }
            let from = m.from().ok().flatten();
            Request::Page(Page {
                request_uri: m.request_uri_str().unwrap_or_default().to_string(),
                from_uri: from
                    .as_ref()
                    .map(|f| f.uri().as_str().to_string())
                    .unwrap_or_default(),
                from_display: from
                    .as_ref()
                    .and_then(|f| f.display_name().map(|d| d.into_owned())),
                to: m
                    .header(HeaderName::To)
                    .unwrap_or_default()
                    .trim()
                    .to_string(),
                asserted: m
                    .header(HeaderName::PAssertedIdentity)
                    .map(|v| v.trim().to_string()),
                routes,
                max_forwards: m.max_forwards().ok().flatten().unwrap_or(70),
                content_type: m
                    .header(HeaderName::ContentType)
                    .unwrap_or("text/plain")
                    .trim()
                    .to_string(),
                body: m.body().to_vec(),
            })
        }
        Some(Method::Register) => {
            let mut ids = Vec::new();
            if let Some(t) = m.to().ok().flatten() {
                ids.push(t.uri().as_str().to_string());
            }
            // TS 24.229 §5.4.1.7: the body may carry the UE's REGISTER or the S-CSCF's 200 OK
            // as message/sip; its P-Associated-URI lists the implicit registration set
            if content_type(&m) == "message/sip" {
                if let Ok(inner) = OwnedMessage::parse_datagram(Bytes::copy_from_slice(m.body())) {
                    let im = inner.as_message();
                    ids.extend(
                        im.headers_named("P-Associated-URI")
                            .flat_map(|h| {
                                h.value()
                                    .split(',')
                                    .map(|v| v.trim().to_string())
                                    .collect::<Vec<_>>()
                            })
                            .filter(|v| !v.is_empty()),
                    );
                }
            }
            let mut identities: Vec<String> = Vec::new();
            for i in ids {
                let c = numbering.canonical(&i);
                if !identities.contains(&c) {
                    identities.push(c);
                }
            }
            // TS 24.229 §5.4.1.7: the S-CSCF puts its own SIP URI in the Contact
            let scscf = m
                .list(HeaderName::Contact)
                .next()
                .map(|(_, c)| uri_of(c))
                .filter(|u| u.starts_with("sip:") || u.starts_with("sips:"));
            Request::Register {
                identities,
                expires: register_expires(&m),
                scscf,
            }
        }
        Some(Method::Options) => Request::Options,
        _ => Request::Other,
    }
}

/// A loose Route toward `uri`.
fn route_to(uri: &str) -> String {
    format!("<{};lr>", uri.trim_end_matches(";lr"))
}

/// A MESSAGE the server originates: a fresh Call-ID and From tag, CSeq 1 — or, with `same`,
/// the Call-ID, From tag and CSeq `(call_id, tag, cseq)` of an attempt of one stored message —
/// the given Route set.
#[allow(clippy::too_many_arguments)]
fn new_message(
    request_uri: &str,
    from: &str,
    to: &str,
    routes: &[String],
    max_forwards: u8,
    headers: &[(&str, String)],
    content_type: &str,
    body: Vec<u8>,
    host: &str,
    same: Option<(&str, &str, u32)>,
) -> Result<OwnedMessage, ims_sip::ParseError> {
    let (call_id, tag, cseq) = match same {
        Some((c, t, n)) => (c.to_owned(), t.to_owned(), n.max(1)),
        None => (format!("{}@{host}", token()), token(), 1),
    };
    let mut b = RequestBuilder::new(Method::Message, request_uri)
        .header("Max-Forwards", max_forwards)
        .header("From", format!("{from};tag={tag}"))
        .header("To", to)
        .header("Call-ID", call_id)
        .header("CSeq", format!("{cseq} MESSAGE"));
    for r in routes {
        b = b.header("Route", r);
    }
    for (n, v) in headers {
        b = b.header(n, v);
    }
    b.body(content_type, body).build()
}

fn angle(uri: &str) -> String {
    if uri.starts_with('<') {
        uri.to_string()
    } else {
        format!("<{uri}>")
    }
}

/// The CPIM-wrapped `message/imdn+xml` notification for a message (RFC 5438 §7.1.1): from the
/// recipient to the sender, `Content-Disposition: notification`.
pub fn imdn_body(
    recipient: &str,
    sender: &str,
    original: &Cpim<'_>,
    delivered: bool,
    now: u64,
) -> Option<Vec<u8>> {
    let message_id = original.ns_header(IMDN_NS, "Message-ID")?;
    let n = Imdn {
        message_id: message_id.to_string(),
        datetime: original
            .datetime()
            .map_or_else(|| datetime(now), str::to_string),
        recipient_uri: Some(bare_uri(recipient)),
        original_recipient_uri: None,
        notification: Notification::Delivery,
        status: if delivered { "delivered" } else { "failed" }.into(),
    };
    let xml = n.to_xml();
    let mut v = format!(
        "From: {}\r\nTo: {}\r\nNS: imdn <{IMDN_NS}>\r\nimdn.Message-ID: {}\r\nDateTime: {}\r\n\r\n\
         Content-Type: {}\r\nContent-Disposition: notification\r\nContent-Length: {}\r\n\r\n",
        angle(&bare_uri(recipient)),
        angle(&bare_uri(sender)),
        token(),
        datetime(now),
        ims_msrp::imdn::CONTENT_TYPE,
        xml.len()
    )
    .into_bytes();
    v.extend_from_slice(xml.as_bytes());
    Some(v)
}

/// Whether a relayed page-mode MESSAGE that met `code` after `elapsed` (since the server
/// received it) may be kept for later delivery: a temporary failure ([`Failure::of_sip`]:
/// 408, 480, 486, 5xx, …) whose answer, 202, can still reach the sender — `elapsed` under
/// `answer_wait` ([`ImServerConfig::page_answer_wait`]). A later failure (our own Timer F
/// after 64·T1, a downstream 408 or 5xx that took as long) is relayed: the sender's own
/// transaction, started before ours with the same timer, has ended by then and it has told
/// its user the message failed; a 202 would reach no one, and storing would deliver a message
/// its sender believes lost (and may send again).
fn keep_for_later(code: u16, elapsed: Duration, answer_wait: Duration) -> bool {
    !(200..300).contains(&code)
        && !Failure::of_sip(Some(code)).is_permanent()
        && elapsed < answer_wait
}

/// The `imdn.Message-ID` of a CPIM body (RFC 5438 §6.3: with the sender's URI it names the
/// message), if any.
fn cpim_message_id(content_type: &str, body: &[u8]) -> Option<String> {
    if !content_type
        .to_ascii_lowercase()
        .starts_with("message/cpim")
    {
        return None;
    }
    let c = Cpim::parse(body).ok()?;
    c.ns_header(IMDN_NS, "Message-ID").map(str::to_owned)
}

/// Which delivery notification a CPIM body asks for, if any: `(positive, negative)`.
fn wants_imdn(content_type: &str, body: &[u8]) -> Option<(bool, bool)> {
    if !content_type
        .to_ascii_lowercase()
        .starts_with("message/cpim")
    {
        return None;
    }
    let c = Cpim::parse(body).ok()?;
    // a notification never asks for another one
    if c.content_type().and_then(Result::ok).is_some_and(|t| {
        t.to_string()
            .to_ascii_lowercase()
            .starts_with("message/imdn")
    }) {
        return None;
    }
    let d = Disposition::parse(c.ns_header(IMDN_NS, "Disposition-Notification")?);
    (d.positive_delivery || d.negative_delivery)
        .then_some((d.positive_delivery, d.negative_delivery))
}

impl Shared {
    fn host(&self) -> String {
        self.endpoint.local_addr().to_string()
    }

    async fn send(&self, msg: OwnedMessage, next_hop: &str) -> Result<u16, NetError> {
        let remote = self
            .endpoint
            .locate(next_hop)
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| NetError::NotFound(next_hop.to_string()))?;
        let t = self.endpoint.request(msg, remote).await?;
        let r = t.final_response().await?;
        Ok(r.as_message().status().unwrap_or(500))
    }

    /// The S-CSCF serving `id` (TS 24.229 §5.7.3: an AS originating a request on behalf of a
    /// user routes it to the user's S-CSCF, whose address it may take from the third-party
    /// REGISTER): the Contact of the live third-party registration of `id`'s set, else the
    /// configured [`ImServerConfig::scscf`] (also when the learnt address cannot be located).
    async fn scscf_for(&self, id: &str) -> String {
        let key = self.cfg.numbering.canonical(id);
        let learnt = self
            .serving
            .lock()
            .expect("serving lock")
            .get(&key)
            .cloned();
        match learnt {
            Some(s) if s != self.cfg.scscf => match self.endpoint.locate(&s).await {
                Ok(t) if !t.is_empty() => s,
                _ => self.cfg.scscf.clone(),
            },
            _ => self.cfg.scscf.clone(),
        }
    }

    /// The loose Route toward the S-CSCF serving `id` ([`Shared::scscf_for`]).
    async fn scscf_route(&self, id: &str) -> String {
        route_to(&self.scscf_for(id).await)
    }

    /// The MESSAGE carrying one IP-SM-GW output through the S-CSCF (TS 24.341 Annex B.6),
    /// and that S-CSCF.
    async fn sms_request(&self, a: Action) -> Option<(OwnedMessage, String)> {
        let ruri = self.cfg.numbering.address(&a.to);
        let id = angle(&self.cfg.identity);
        let scscf = self.scscf_for(&a.to).await;
        let mut headers = vec![
            ("P-Asserted-Identity", id.clone()),
            ("Request-Disposition", "no-fork".into()),
            ("Accept-Contact", "*;+g.3gpp.smsip;require;explicit".into()),
        ];
        let (ct, body) = match &a.msisdn_less_from {
            // TS 24.341 Annex B.7: the sender's SIP URI travels in the short-message-info
            Some(from) => {
                headers.push(("Feature-Caps", MSISDN_LESS_FEATURE_CAPS.into()));
                msisdn_less_body(&a.body, &self.cfg.numbering.address(from))
            }
            None => (SMS_CONTENT_TYPE.to_string(), a.body),
        };
        let msg = new_message(
            &ruri,
            &id,
            &angle(&ruri),
            &[route_to(&scscf)],
            70,
            &headers,
            &ct,
            body,
            &self.host(),
            None,
        );
        Some((msg.ok()?, scscf))
    }

    /// Sends one IP-SM-GW output as a MESSAGE through the S-CSCF (TS 24.341 Annex B.6).
    async fn send_sms(&self, a: Action) {
        // an SMS-DELIVER attempt, whose SIP failure means "keep it for later" (a status
        // report or an RP answer that fails is not retried: TS 24.341 §5.3.2.4)
        let attempt = a.attempt;
        let Some((msg, scscf)) = self.sms_request(a).await else {
            return;
        };
        bump(&self.counters.sms_sent);
        // no final response (Timer F, a transport error): None
        let code = self.send(msg, &scscf).await.ok();
        if let Some(attempt) = attempt.filter(|_| code.is_some_and(|c| (200..300).contains(&c))) {
            // an MSISDN-less submitter waiting for this first attempt gets its RP-ACK
            let (out, w) = self.gw_call(|g| g.attempt_sent(attempt));
            self.settle(out, w).await;
        } else if !code.is_some_and(|c| (200..300).contains(&c)) {
            bump(&self.counters.sms_failed);
            if let Some(attempt) = attempt {
                // only this attempt failed: another one to the same recipient may be waiting
                // for its RP-ACK, and this one may still be acknowledged (a lost 2xx); a
                // permanent refusal ends the message (TS 23.204 §6.0a.1, TS 23.040 §11.1)
                let failure = Failure::of_sip(code);
                let (out, w) =
                    self.gw_call(|g| g.attempt_failed_with(attempt, failure, unix_now()));
                self.settle(out, w).await;
            }
        }
    }

    fn queue(&self, actions: Vec<Action>) {
        for a in actions {
            let _ = self.outbox.send(a);
        }
    }

    /// Runs `f` on the IP-SM-GW; with its result, the store mark taken before and the
    /// messages whose records it wrote ([`IpSmGw::written`]), for [`Shared::sms_durable`].
    fn gw_call<T>(&self, f: impl FnOnce(&mut Gw) -> T) -> (T, Written) {
        let mark = self.im_store.as_ref().map(ImStore::mark).unwrap_or(0);
        let mut gw = self.gw.lock().expect("IP-SM-GW lock");
        let r = f(&mut gw);
        let ids = gw.written().to_vec();
        (r, Written { mark, ids })
    }

    /// Whether the store confirmed the writes `w` (waiting at most `wait`): what the IP-SM-GW
    /// answered rests on them (an RP-ACK on the message being kept, a status report on its
    /// removal, an SMS-DELIVER on its attempt being recorded).
    async fn sms_durable(&self, w: &Written, wait: Duration) -> bool {
        match &self.im_store {
            Some(store) if !w.ids.is_empty() => store.confirm_sms(w.mark, &w.ids, wait).await,
            _ => true,
        }
    }

    /// Sends what the IP-SM-GW wants sent once the writes it rests on are confirmed (at most
    /// [`ImServerConfig::store_wait`]).
    async fn settle(&self, out: Vec<Action>, w: Written) {
        if !out.is_empty() {
            let durable = self.sms_durable(&w, self.cfg.store_wait).await;
            self.release(out, durable);
        }
    }

    /// Sends `out`; when the store did not confirm the writes it rests on (`durable` false),
    /// the SMS-DELIVERs stay unsent ([`IpSmGw::attempt_unsent`]: a restart would not know their
    /// RP-MR, so the recipient's RP-ACK could not stop a second delivery; they are tried again
    /// after the retry interval) and the rest leaves all the same (a status report or an RP
    /// answer: holding it back helps no one, and the removal it rests on is applied once the
    /// store is back).
    fn release(&self, out: Vec<Action>, durable: bool) {
        if durable {
            return self.queue(out);
        }
        let (held, send): (Vec<Action>, Vec<Action>) =
            out.into_iter().partition(|a| a.attempt.is_some());
        let mut send = send;
        if !held.is_empty() {
            let now = unix_now();
            let (answers, _) = self.gw_call(|g| {
                let mut answers = Vec::new();
                for a in held.iter().filter_map(|a| a.attempt) {
                    answers.extend(g.attempt_unsent(a, now));
                }
                answers
            });
            send.extend(answers);
        }
        self.queue(send);
    }

    async fn respond(&self, txn: TxnId, a: Answer) {
        let _ = self.endpoint.respond(txn, a).await;
    }

    async fn request(self: Arc<Self>, txn: TxnId, msg: OwnedMessage) {
        let req = classify(&msg, self.endpoint.local_addr(), &self.cfg.numbering);
        match req {
            Request::Sms { from, body, to_uri } => {
                bump(&self.counters.sms_received);
                // RP-DATA from the MS (MTI 0): a submission. TS 24.341 §5.3.2.4: 202 Accepted,
                // the RP answer follows in a MESSAGE of its own
                let submission = body.first().is_some_and(|b| b & 0x07 == 0);
                if submission {
                    self.respond(txn, Answer::new(202)).await;
                }
                if let Some(mr) = self.sgd.as_ref().and(sgd_map::smma_of(&body)) {
                    // memory available with an SMSC: the SMSCs waiting for this UE are
                    // alerted, then the UE hears how that went (RP-ACK / RP-ERROR)
                    self.respond(txn, Answer::new(202)).await;
                    tokio::spawn(async move { self.memory_available(&from, mr).await });
                    return;
                }
                if let Some(sgd) = &self.sgd {
                    if self.via_smsc(sgd, &from, &body, to_uri.as_deref()).await {
                        if !submission {
                            self.respond(txn, Answer::new(202)).await;
                        }
                        return;
                    }
                }
                let ((out, accepted), w) = self.gw_call(|g| {
                    g.receive_submission_to(&from, &body, unix_now(), to_uri.as_deref())
                });
                // the RP-ACK promises delivery: it leaves once the stored message is durable;
                // a status report once the delivered message is gone from the store, and the
                // answer to the recipient's RP-ACK as well (up to RP_ANSWER_HOLD: until then
                // a crash is repaired by the retransmission of that MESSAGE over UDP)
                let wait = if submission {
                    self.cfg.store_wait
                } else {
                    RP_ANSWER_HOLD
                };
                let durable = self.sms_durable(&w, wait).await;
                let out = match accepted {
                    Some(a) if !durable => {
                        bump(&self.counters.store_refused);
                        self.gw_call(|g| g.withdraw(a)).0
                    }
                    _ => out,
                };
                if !submission {
                    // the recipient's RP-ACK/RP-ERROR (or RP-SMMA) is answered once what it
                    // changed is stored: over UDP a crash before that leaves the MESSAGE
                    // unanswered, its retransmission reaches the restarted server, and the
                    // attempt recorded in flight matches it (no second delivery)
                    self.respond(txn, Answer::new(202)).await;
                }
                // (a withdrawn submission's RP-ERROR holds no SMS-DELIVER)
                self.release(out, durable);
            }
            Request::Register {
                identities,
                expires,
                scscf,
            } => {
                bump(&self.counters.registers);
                self.respond(txn, Answer::new(200)).await;
                {
                    let mut r = self.registered.lock().expect("registered lock");
                    let mut serving = self.serving.lock().expect("serving lock");
                    for i in &identities {
                        if expires > 0 {
                            r.insert(i.clone());
                            match &scscf {
                                Some(s) => serving.insert(i.clone(), s.clone()),
                                None => serving.remove(i),
                            };
                        } else {
                            r.remove(i);
                            serving.remove(i);
                        }
                    }
                }
                if expires > 0 {
                    if self.sgd.is_some() {
                        let s = self.clone();
                        let ids = identities.clone();
                        tokio::spawn(async move { s.alert_registered(&ids).await });
                    }
                    let (out, w) = self.gw_call(|g| g.registered(&identities, unix_now()));
                    self.settle(out, w).await;
                    let s = self.clone();
                    tokio::spawn(async move { s.deliver_stored(&identities).await });
                }
            }
            Request::Page(p) => self.relay(txn, p).await,
            Request::Options => {
                self.respond(
                    txn,
                    Answer::new(200).header("Allow", "MESSAGE, REGISTER, OPTIONS"),
                )
                .await
            }
            Request::Forbidden => self.respond(txn, Answer::new(403)).await,
            Request::Other => {
                self.respond(
                    txn,
                    Answer::new(405).header("Allow", "MESSAGE, REGISTER, OPTIONS"),
                )
                .await
            }
        }
    }

    /// Page-mode MESSAGE as a B2BUA: a new request along the remaining Route set.
    async fn relay(&self, txn: TxnId, p: Page) {
        if p.max_forwards == 0 {
            return self.respond(txn, Answer::new(483)).await;
        }
        if self.holds_im(&p) {
            // a CPIM message we already hold for later delivery, sent again by a sender that
            // did not hear our 202 (lost, or a crash of this server before it left): the copy
            // held is the one delivered (RFC 5438 §6.3 names a message by From and
            // imdn.Message-ID), this one is accepted as it was (RFC 3428 §7)
            return self.respond(txn, Answer::new(202)).await;
        }
        let routes = if p.routes.is_empty() {
            vec![self.scscf_route(&p.request_uri).await]
        } else {
            p.routes.clone()
        };
        let started = tokio::time::Instant::now();
        let Some(code) = self.forward_page(&p, &p.request_uri, &routes, None).await else {
            return self.respond(txn, Answer::new(400)).await;
        };
        // the recipient is not registered (480), unreachable for now (408 from a node on the
        // way), or the network failed for a while (5xx): keep the message for its
        // registration or a later attempt (like a short message) and tell the sender it was
        // accepted for later delivery (RFC 3428 §7) — while that answer can still reach it
        if keep_for_later(code, started.elapsed(), self.cfg.page_answer_wait)
            && self.cfg.store_im
            && self.store_im(&p, code).await
        {
            return self.respond(txn, Answer::new(202)).await;
        }
        self.respond(txn, Answer::new(code)).await;
        if !self.cfg.network_imdn {
            return;
        }
        let Some((positive, negative)) = wants_imdn(&p.content_type, &p.body) else {
            return;
        };
        let delivered = (200..300).contains(&code);
        if (delivered && positive) || (!delivered && negative) {
            self.send_imdn(&p, delivered).await;
        }
    }

    /// Sends `p` on to `request_uri` along `routes`: a MESSAGE, or in large mode when the body
    /// is over [`ImServerConfig::page_limit`]. The final status (`None`: not buildable).
    /// `stored`: the identity of the stored message it is and the attempt's number (the same
    /// Call-ID and From tag on every attempt, the number as CSeq, see `StoredIm::id`).
    async fn forward_page(
        &self,
        p: &Page,
        request_uri: &str,
        routes: &[String],
        stored: Option<(&str, u32)>,
    ) -> Option<u16> {
        let next_hop = uri_of(&routes[0]);
        let from = match &p.from_display {
            Some(d) => format!("\"{}\" <{}>", d.replace(['"', '\\'], ""), p.from_uri),
            None => angle(&p.from_uri),
        };
        if p.body.len() > self.cfg.page_limit {
            bump(&self.counters.im_relayed);
            // boxed: the large-mode session (relay connection, TLS, MSRP) would otherwise make
            // every future that may deliver an IM — each request's task, each stored-message
            // delivery — as large as its biggest state, copied whole at every spawn
            let large = self.send_large(p, &from, request_uri, routes, stored);
            return Some(Box::pin(large).await);
        }
        let mut headers = Vec::new();
        if let Some(a) = &p.asserted {
            headers.push(("P-Asserted-Identity", a.clone()));
        }
        let msg = new_message(
            request_uri,
            &from,
            &p.to,
            routes,
            p.max_forwards.saturating_sub(1),
            &headers,
            &p.content_type,
            p.body.clone(),
            &self.host(),
            stored
                .map(|(id, n)| (format!("{id}@{}", self.cfg.domain), id, n))
                .as_ref()
                .map(|(c, t, n)| (c.as_str(), *t, *n)),
        )
        .ok()?;
        bump(&self.counters.im_relayed);
        Some(match self.send(msg, &next_hop).await {
            Ok(c) => c,
            Err(NetError::Timeout) => 408,
            Err(_) => 503,
        })
    }

    /// Whether `p` is a CPIM message (by its sender and `imdn.Message-ID`) already held for
    /// later delivery.
    fn holds_im(&self, p: &Page) -> bool {
        let Some(id) = cpim_message_id(&p.content_type, &p.body) else {
            return false;
        };
        let from = bare_uri(&p.from_uri);
        self.stored_im
            .lock()
            .expect("stored IM lock")
            .iter()
            .any(|m| {
                bare_uri(&m.page.from_uri) == from
                    && cpim_message_id(&m.page.content_type, &m.page.body).as_deref()
                        == Some(id.as_str())
            })
    }

    /// Keeps `p`, whose relay met the temporary failure `code`, for its recipient; false when
    /// the recipient is not one of ours.
    async fn store_im(&self, p: &Page, code: u16) -> bool {
        let to = self.cfg.numbering.canonical(&p.request_uri);
        if !self.cfg.numbering.is_empty() && !self.cfg.numbering.knows(&to) {
            return false;
        }
        let now = unix_now();
        let mut m = StoredIm {
            to,
            page: p.clone(),
            attempts: 0,
            stored_at: now,
            next_attempt: self.retry_at(code, 0, now),
            key: None,
            id: token(),
        };
        if let Some(store) = &self.im_store {
            // the 202 promises delivery: only once the stored IM is durable
            let mark = store.mark();
            self.persist(&mut m);
            let durable = match &m.key {
                Some(k) => store.confirm_im(mark, k, self.cfg.store_wait).await,
                None => false,
            };
            if !durable {
                if let Some(k) = &m.key {
                    let _ = store.remove(k);
                }
                bump(&self.counters.store_refused);
                return false;
            }
        }
        let dropped = {
            let mut q = self.stored_im.lock().expect("stored IM lock");
            let oldest = if q.len() >= MAX_STORED_IM {
                q.pop_front()
            } else {
                None
            };
            q.push_back(m);
            oldest
        };
        bump(&self.counters.im_stored);
        if let Some(old) = dropped {
            self.give_up(old).await;
        }
        true
    }

    /// Writes `m` to the store, when there is one: over its previous record in one step (a
    /// crash leaves the old record or the new one, never none or two), or as a new record.
    fn persist(&self, m: &mut StoredIm) {
        let Some(store) = &self.im_store else { return };
        let seq = self.im_seq.fetch_add(1, Ordering::Relaxed);
        if let Some(k) = store.save(m, seq) {
            m.key = Some(k);
        }
    }

    /// Removes the record of a stored IM that is delivered or given up, and waits (at most
    /// [`ImServerConfig::store_wait`]) until the store confirms it, like the removal a short
    /// message's status report waits for: what the sender is told next (the IMDN) rests on
    /// the message being gone, so that a restart does not deliver it again. False when the
    /// removal was not confirmed (with Redis it is still applied once Redis takes writes).
    async fn unstore(&self, m: &StoredIm) -> bool {
        let (Some(store), Some(k)) = (&self.im_store, &m.key) else {
            return true;
        };
        let mark = store.mark();
        store.remove(k) && store.confirm_im(mark, k, self.cfg.store_wait).await
    }

    /// Drops a stored IM that will not be delivered; its sender gets a `failed` IMDN when the
    /// message asked for `negative-delivery` (RFC 5438 §7.2: the server accepted it with 202,
    /// so only it can tell), once the removal is confirmed.
    async fn give_up(&self, m: StoredIm) {
        self.unstore(&m).await;
        bump(&self.counters.im_expired);
        if wants_imdn(&m.page.content_type, &m.page.body).is_some_and(|(_, negative)| negative) {
            self.send_imdn(&m.page, false).await;
        }
    }

    /// Gives up the stored IMs older than [`ImServerConfig::im_validity`] at `now`.
    async fn expire_stored(&self, now: u64) {
        let validity = self.cfg.im_validity.as_secs();
        let expired: Vec<StoredIm> = {
            let mut q = self.stored_im.lock().expect("stored IM lock");
            if !q
                .iter()
                .any(|m| now.saturating_sub(m.stored_at) >= validity)
            {
                return;
            }
            let (old, keep): (Vec<_>, Vec<_>) = q
                .drain(..)
                .partition(|m| now.saturating_sub(m.stored_at) >= validity);
            q.extend(keep);
            old
        };
        for m in expired {
            self.give_up(m).await;
        }
    }

    /// When a stored IM whose last attempt (its `attempts`-th) met `code` is tried again: at
    /// its recipient's registration after a 480 (0), else after the IP-SM-GW's back-off
    /// ([`IpSmGwConfig::retry_interval`], doubled after each attempt).
    fn retry_at(&self, code: u16, attempts: u8, now: u64) -> u64 {
        if code == 480 {
            return 0;
        }
        let back_off = self
            .cfg
            .ipsmgw
            .retry_interval
            .saturating_mul(1u64 << attempts.min(10));
        now.saturating_add(back_off.max(1))
    }

    /// Delivers the IMs stored for `identities` (one registration set), in arrival order,
    /// through the S-CSCF's terminating side; those that still fail stay stored (bounded).
    async fn deliver_stored(&self, identities: &[String]) {
        let due = self.take_stored(|m| identities.contains(&m.to));
        self.deliver(due).await;
    }

    /// Tries again the stored IMs whose back-off is over at `now` (a temporary failure of a
    /// registered recipient: a 5xx, a timeout), with every other IM stored for the same
    /// recipients, in arrival order (a recipient that answers is reachable: what waited for
    /// its registration goes too, and nothing overtakes an older message).
    async fn retry_stored(&self, now: u64) {
        let due: HashSet<String> = {
            let q = self.stored_im.lock().expect("stored IM lock");
            q.iter()
                .filter(|m| m.next_attempt != 0 && m.next_attempt <= now)
                .map(|m| m.to.clone())
                .collect()
        };
        if due.is_empty() {
            return;
        }
        let due = self.take_stored(|m| due.contains(&m.to));
        self.deliver(due).await;
    }

    /// Takes the stored IMs `f` picks out of the queue (in arrival order).
    fn take_stored(&self, f: impl Fn(&StoredIm) -> bool) -> Vec<StoredIm> {
        let mut q = self.stored_im.lock().expect("stored IM lock");
        if !q.iter().any(&f) {
            return Vec::new();
        }
        let (due, keep): (Vec<_>, Vec<_>) = q.drain(..).partition(|m| f(m));
        q.extend(keep);
        due
    }

    /// Delivers stored IMs. A temporary failure (see [`Failure::of_sip`]) keeps the message
    /// for the next registration or back-off, up to [`STORED_IM_ATTEMPTS`]; a permanent one
    /// (404, 403, 415, 488, 6xx, …) gives it up at once: it leaves the store and its sender
    /// gets the `failed` IMDN when it asked for `negative-delivery` (RFC 5438 §7.2).
    async fn deliver(&self, due: Vec<StoredIm>) {
        for mut m in due {
            let routes = [self.scscf_route(&m.to).await];
            let ruri = self.cfg.numbering.address(&m.to);
            m.attempts += 1;
            self.mark_in_flight(&mut m).await;
            let code = self
                .forward_page(&m.page, &ruri, &routes, Some((&m.id, m.attempts.into())))
                .await;
            let delivered = code.is_some_and(|c| (200..300).contains(&c));
            if delivered {
                // the 202 the sender got becomes final: with the network's delivery
                // notification (RFC 5438 §7.2) when asked, once the record is gone
                self.unstore(&m).await;
                let positive = wants_imdn(&m.page.content_type, &m.page.body)
                    .is_some_and(|(positive, _)| positive);
                if self.cfg.network_imdn && positive {
                    self.send_imdn(&m.page, true).await;
                }
            } else if let Some(c) = code.filter(|c| {
                !Failure::of_sip(Some(*c)).is_permanent() && m.attempts < STORED_IM_ATTEMPTS
            }) {
                m.next_attempt = self.retry_at(c, m.attempts, unix_now());
                self.persist(&mut m);
                self.stored_im.lock().expect("stored IM lock").push_back(m);
            } else {
                self.give_up(m).await;
            }
        }
    }

    /// Records, before a stored IM goes out, that this attempt is in flight: the record says
    /// to try again [`IpSmGwConfig::ack_wait`] (TR1N, as for an SMS-DELIVER whose RP-ACK never
    /// came) from now, instead of "when the recipient registers". Should the server stop
    /// before the answer (a crash), the restarted one — which does not know the recipient is
    /// registered — hands the IM over again after that wait (at least once; the same body, so
    /// a CPIM `imdn.Message-ID` lets the recipient recognise it, RFC 5438 §6.3) rather than at
    /// the next re-registration. Waits (at most [`ImServerConfig::store_wait`]) for the store
    /// to confirm it; unconfirmed, the older record still holds the IM (later, not lost).
    async fn mark_in_flight(&self, m: &mut StoredIm) {
        let Some(store) = &self.im_store else { return };
        m.next_attempt = unix_now().saturating_add(self.cfg.ipsmgw.ack_wait.max(1));
        let mark = store.mark();
        self.persist(m);
        if let Some(k) = &m.key {
            store.confirm_im(mark, k, self.cfg.store_wait).await;
        }
    }

    /// Large mode (TS 24.247 §5.2, RFC 4975): INVITE with an MSRP offer toward `request_uri`
    /// along `routes`, the body in one SEND (chunked by the session) asking for a success
    /// REPORT, then BYE. We offer and connect (RFC 4975 §5.4, `a=setup:active` with the
    /// discard port, RFC 4145 §4). Returns the SIP failure status, 408 on a timeout, or the
    /// REPORT's status (200 when delivered).
    /// `stored`: as for `forward_page`, each attempt of a stored IM is an INVITE
    /// with the message's Call-ID and From tag and the attempt's number as CSeq.
    async fn send_large(
        &self,
        p: &Page,
        from: &str,
        request_uri: &str,
        routes: &[String],
        stored: Option<(&str, u32)>,
    ) -> u16 {
        use ims_txn::dialog::DialogId;
        use ims_txn::ua::InviteParams;
        let Ok(Some(remote)) = self
            .endpoint
            .locate(&uri_of(&routes[0]))
            .await
            .map(|t| t.into_iter().next())
        else {
            return 503;
        };
        let ip = self.endpoint.local_addr().ip();
        let sid = token();
        let mut local = format!("msrp://{}/{sid};tcp", SocketAddr::new(ip, 9));
        // through the anchor's relay: a connection and binding of our own for this session
        // (RFC 4976 §5), its Use-Path first in our path and the relay our first hop (§6.1)
        let mut link = None;
        if let Some(r) = &self.cfg.msrp_relay {
            local = crate::im_session::relay_local_uri(r, &ip.to_string(), 9, &sid);
            match crate::im_session::relayed_connection(r, &local, Default::default()).await {
                Ok(l) => link = Some(l),
                Err(e) => {
                    eprintln!("im server: large mode through the MSRP relay: {e}");
                    return 503;
                }
            }
        }
        let ct = p
            .content_type
            .split(';')
            .next()
            .unwrap_or("text/plain")
            .trim();
        let (c_host, m_port, path, proto, fingerprint) = match &link {
            Some(l) => (
                l.host.parse::<std::net::IpAddr>().unwrap_or(ip),
                l.port,
                l.use_path.join(" ") + " " + &local,
                if l.fingerprint.is_some() {
                    "TCP/TLS/MSRP"
                } else {
                    "TCP/MSRP"
                },
                l.fingerprint
                    .as_ref()
                    .map(|f| format!("a=fingerprint:{f}\r\n"))
                    .unwrap_or_default(),
            ),
            None => (ip, 9, local.clone(), "TCP/MSRP", String::new()),
        };
        let family = if c_host.is_ipv6() { "IP6" } else { "IP4" };
        let offer = format!(
            "v=0\r\no=ims-im {n} 1 IN {family} {c_host}\r\ns=-\r\nc=IN {family} {c_host}\r\n\
             t=0 0\r\nm=message {m_port} {proto} *\r\na=accept-types:{ct}\r\na=path:{path}\r\n\
             {fingerprint}a=sendonly\r\na=setup:active\r\na=max-size:{len}\r\n",
            n = unix_now(),
            len = p.body.len()
        );
        let mut headers: Vec<(String, String)> =
            routes.iter().map(|r| ("Route".into(), r.clone())).collect();
        if let Some(a) = &p.asserted {
            headers.push(("P-Asserted-Identity".into(), a.clone()));
        }
        let same = stored.map(|(id, n)| (format!("{id}@{}", self.cfg.domain), id.to_owned(), n));
        let inv = self
            .endpoint
            .invite_as(
                InviteParams {
                    request_uri: request_uri.to_string(),
                    from: from.to_string(),
                    to: p.to.split(";tag=").next().unwrap_or(&p.to).to_string(),
                    remote,
                    headers,
                    body: Some(("application/sdp".into(), offer.into_bytes())),
                },
                same,
            )
            .await;
        let Ok(mut inv) = inv else {
            if let Some(l) = link {
                l.conn.close().await;
            }
            return 503;
        };
        let answered = loop {
            match tokio::time::timeout(LARGE_MODE_TIMEOUT, inv.next()).await {
                Ok(Some(Ok(r))) => match r.as_message().status().unwrap_or(500) {
                    c if c < 200 => continue,
                    c if c >= 300 => break Err(c),
                    _ => break Ok(r),
                },
                Ok(Some(Err(NetError::Timeout))) | Err(_) => break Err(408),
                Ok(Some(Err(_))) | Ok(None) => break Err(503),
            }
        };
        let ok = match answered {
            Ok(r) => r,
            Err(code) => {
                if let Some(l) = link {
                    l.conn.close().await;
                }
                return code;
            }
        };
        let m = ok.as_message();
        let Some(dialog) = DialogId::of_received_response(&m) else {
            if let Some(l) = link {
                l.conn.close().await;
            }
            return 502;
        };
        let peer: Option<Vec<String>> = ims_sdp::Session::parse(m.body()).ok().and_then(|s| {
            s.media.iter().find_map(|md| {
                (md.media_type() == ims_sdp::MediaType::Message && !md.is_rejected())
                    .then(|| {
                        md.msrp_path()
                            .map(|p| p.iter().map(str::to_owned).collect())
                    })
                    .flatten()
            })
        });
        drop(m);
        let status = match peer {
            Some(path) if !path.is_empty() => match link {
                Some(l) => {
                    let to: Vec<String> = l.use_path.iter().cloned().chain(path).collect();
                    self.send_msrp(&local, &sid, &to, ct, &p.body, Some(l.conn))
                        .await
                }
                None => self.send_msrp(&local, &sid, &path, ct, &p.body, None).await,
            },
            _ => {
                if let Some(l) = link {
                    l.conn.close().await;
                }
                488
            }
        };
        if let Ok(t) = self.endpoint.bye(&dialog).await {
            let _ = tokio::time::timeout(LARGE_MODE_TIMEOUT, t.final_response()).await;
        }
        if status == 200 {
            bump(&self.counters.large_sent);
        }
        status
    }

    /// Connects to the answerer's MSRP path (or runs on `via`, a connection to our relay,
    /// `path` then starting with its Use-Path) and sends `body` in one message; the status of
    /// its REPORT (or of the failed transaction), 504 when nothing came back in time.
    async fn send_msrp(
        &self,
        local: &str,
        sid: &str,
        path: &[String],
        ct: &str,
        body: &[u8],
        via: Option<ims_net::msrp::MsrpConnection>,
    ) -> u16 {
        use ims_msrp::session::{Config as MsrpConfig, Outgoing, Session, SessionEvent};
        use ims_msrp::UriBuf;
        use ims_net::msrp::{ConnConfig, ConnEvent, MsrpConnection};
        let (Ok(local), Ok(remote)) = (
            UriBuf::parse(local),
            path.iter()
                .map(|u| UriBuf::parse(u))
                .collect::<Result<Vec<_>, _>>(),
        ) else {
            if let Some(c) = via {
                c.close().await;
            }
            return 488;
        };
        // the first hop: an IP literal or a host name (RFC 4975 §6.2: A/AAAA, no SRV; every
        // address tried within the wait, `ims_net::msrp::connect_host`, as the anchor does)
        let addr = ims_msrp::Uri::parse(&path[0])
            .ok()
            .map(|u| (u.host_str().to_owned(), u.port_or_default()))
            .filter(|(host, _)| !host.is_empty());
        let seed = u64::from_le_bytes(random16()[..8].try_into().unwrap_or([7; 8]));
        let mut mc = MsrpConfig::new(local, remote);
        // chunks leave piece by piece, so the peer's responses are never stuck behind a chunk
        // and a failure can end a chunk early with `#` (RFC 4975 §7.1)
        mc.piece_size = Some(LARGE_MODE_PIECE);
        let session = Session::new(mc, seed);
        let mut conn = match (via, addr) {
            (Some(c), _) => c,
            (None, Some((host, port))) => {
                let Ok((stream, _)) =
                    ims_net::msrp::connect_host(&host, port, LARGE_MODE_TIMEOUT).await
                else {
                    return 504;
                };
                let _ = stream.set_nodelay(true);
                MsrpConnection::spawn(stream, ConnConfig::default())
            }
            (None, None) => return 488,
        };
        let mut m = Outgoing::new(ct, Bytes::copy_from_slice(body));
        m.success_report = true;
        let sent = match conn.add_session(session).await {
            Ok(()) => conn.send(sid, m).await,
            Err(e) => Err(e),
        };
        let Ok(Some(id)) = sent else {
            conn.close().await;
            return 500;
        };
        let deadline = tokio::time::Instant::now() + LARGE_MODE_TIMEOUT;
        let status = loop {
            match tokio::time::timeout_at(deadline, conn.next_event()).await {
                Ok(Some(ConnEvent::Session { event, .. })) => match event {
                    SessionEvent::Report {
                        message_id, status, ..
                    } if message_id == id => break status,
                    SessionEvent::SendFailed { status, .. } => break status,
                    _ => {}
                },
                Ok(Some(ConnEvent::Closed(_))) | Ok(None) => break 503,
                Ok(Some(_)) => {}
                Err(_) => break 504,
            }
        };
        conn.close().await;
        status
    }

    /// The network's delivery notification back to the sender of `p`.
    async fn send_imdn(&self, p: &Page, delivered: bool) {
        let Ok(c) = Cpim::parse(&p.body) else { return };
        let sender = p
            .asserted
            .as_deref()
            .map(|a| bare_uri(a.split(',').next().unwrap_or(a)))
            .unwrap_or_else(|| bare_uri(&p.from_uri));
        let recipient = bare_uri(&p.request_uri);
        let Some(id) = c.ns_header(IMDN_NS, "Message-ID") else {
            return;
        };
        {
            let key = (self.cfg.numbering.canonical(&sender), id.to_string());
            let mut seen = self.notified.lock().expect("notified lock");
            if seen.contains(&key) {
                return;
            }
            if seen.len() >= NOTIFIED_MEMORY {
                seen.pop_front();
            }
            seen.push_back(key);
        }
        let now = unix_now();
        let Some(body) = imdn_body(&recipient, &sender, &c, delivered, now) else {
            return;
        };
        let ruri = self.cfg.numbering.address(&sender);
        let scscf = self.scscf_for(&sender).await;
        let Ok(msg) = new_message(
            &ruri,
            &angle(&recipient),
            &angle(&ruri),
            &[route_to(&scscf)],
            70,
            &[("P-Asserted-Identity", angle(&self.cfg.identity))],
            "message/cpim",
            body,
            &self.host(),
            None,
        ) else {
            return;
        };
        bump(&self.counters.imdn_sent);
        let _ = self.send(msg, &scscf).await;
    }
}

/// The SGd side (TS 29.338) of the IP-SM-GW toward an external SMSC ([`ImServerConfig::smsc`]).
impl Shared {
    /// An RP message from `from` (canonical) when an SMSC is configured: an RP-DATA goes to the
    /// SMS-IWMSC in an OFR and the UE gets the answer the OFA maps to, a malformed one its
    /// RP-ERROR; an RP-ACK/RP-ERROR answering the RP-DATA of a TFR completes that delivery.
    /// False: not handled here (the IP-SM-GW core takes it: an RP-SMMA, an answer to a stored
    /// message's delivery, an MSISDN-less submission to a SIP URI, tried in IMS first, TS
    /// 23.204 §6.0a.1).
    async fn via_smsc(&self, sgd: &Sgd, from: &str, body: &[u8], to_uri: Option<&str>) -> bool {
        if to_uri.is_none() {
            match sgd_map::mo_input(body, &self.cfg.ipsmgw.sc_address) {
                MoInput::Forward(fwd) => {
                    bump(&self.counters.sgd_ofr);
                    let ofr = sgd_map::ofr(
                        sgd.node.session_id(),
                        &sgd.id,
                        &fwd,
                        &self.originator(from),
                        None,
                    );
                    let answer = sgd.node.send(&ofr).await.ok();
                    let ofa = answer
                        .as_ref()
                        .and_then(|m| ims_diameter::sgd::Ofa::decode(&m.view()).ok());
                    if let Some(rp) = sgd_map::mo_answer(fwd.rp_mr, ofa.as_ref()) {
                        self.queue(vec![sms_action(from, rp)]);
                    }
                    return true;
                }
                MoInput::Reject(rp) => {
                    self.queue(vec![sms_action(from, rp)]);
                    return true;
                }
                MoInput::NotData => {}
            }
        }
        let Some((mr, result)) = sgd_map::mt_answer_of(body) else {
            return false;
        };
        let waiting = sgd
            .pending
            .lock()
            .expect("pending lock")
            .remove(&(from.to_string(), mr));
        match waiting {
            Some(tx) => {
                let _ = tx.send(result);
                true
            }
            None => false,
        }
    }

    /// The submitter `from` (canonical) as SM RP OA: its MSISDN and IMSI, or for one without
    /// MSISDN the dummy MSISDN and its SIP URI (TS 23.204 §6.0a, TS 23.682 §5.15).
    fn originator(&self, from: &str) -> Originator {
        let imsi = self.cfg.numbering.imsi_of(from);
        match from.strip_prefix("tel:").filter(|n| n.starts_with('+')) {
            Some(n) => Originator {
                msisdn: Some(n.to_string()),
                imsi,
                sip_uri: None,
            },
            None => Originator {
                msisdn: Some(self.cfg.ipsmgw.dummy_msisdn.clone()),
                imsi,
                sip_uri: Some(self.cfg.numbering.address(from)),
            },
        }
    }

    /// Answers the SMSC's TFR `req` (TS 29.338 §6.2.2) once its delivery ended.
    async fn mt_forward(&self, sgd: &Sgd, req: ims_net::diameter::Incoming) -> Vec<u8> {
        let view = req.message.view();
        let origin = ims_diameter::Origin {
            host: &sgd.id.origin_host,
            realm: &sgd.id.origin_realm,
            state_id: None,
        };
        let tfr = match ims_diameter::sgd::Tfr::decode(&view) {
            Ok(t) => t,
            Err(e) => {
                return ims_diameter::answer::error_answer(req.message.bytes(), &e, &origin)
                    .unwrap_or_else(|| ims_diameter::peer::result_answer(&view, 5012, &origin))
            }
        };
        bump(&self.counters.sgd_tfr);
        let (to, result) = self.mt_deliver(sgd, &tfr).await;
        match (to, result.wait_reason()) {
            (Some(user), Some(reason)) => {
                // the SMSC keeps the message and waits for our alert: remembered (durably)
                // before the TFA tells it so
                self.remember_waiting(sgd, &user, &tfr, reason).await;
            }
            (Some(user), None) if matches!(result, MtResult::Acked(_)) => {
                // delivered after all: this SMSC waits no more
                let mut mwd = sgd.mwd.lock().expect("mwd lock");
                if mwd.delivered(&user, &sgd_map::WaitingCentre::of(&tfr)) {
                    self.persist_mwd(&mwd, &user);
                }
            }
            _ => {}
        }
        sgd_map::tfa(&tfr, &sgd.id.origin_host, &sgd.id.origin_realm, &result)
            .encode_answer(view.header())
    }

    /// Records that the SMSC of `tfr` waits for `user` (its delivery failed for `reason`), in
    /// memory and in the store, and waits (at most [`ImServerConfig::store_wait`]) for the
    /// store to confirm it.
    async fn remember_waiting(
        &self,
        sgd: &Sgd,
        user: &str,
        tfr: &ims_diameter::sgd::Tfr<'_>,
        reason: sgd_map::WaitReason,
    ) {
        let centre = sgd_map::WaitingCentre::of(tfr);
        let sip_uri = tfr
            .smsmi_correlation_id
            .as_ref()
            .and_then(|c| c.destination_sip_uri.as_deref());
        let mark = self.im_store.as_ref().map(ImStore::mark);
        {
            let mut mwd = sgd.mwd.lock().expect("mwd lock");
            mwd.record(user, centre, reason, Some(&tfr.user_name), sip_uri);
            self.persist_mwd(&mwd, user);
        }
        if let (Some(st), Some(mark)) = (&self.im_store, mark) {
            if !st.confirm_mwd(mark, user, self.cfg.store_wait).await {
                eprintln!(
                    "im server: the store did not confirm the message waiting data of {user}"
                );
            }
        }
    }

    /// Writes what waits for `user` now (or its removal) to the store, if there is one.
    fn persist_mwd(&self, mwd: &sgd_map::Mwd, user: &str) {
        if let Some(st) = &self.im_store {
            st.save_mwd(user, mwd.get(user));
        }
    }

    /// Alerts the SMSCs `w` names that `user` can take its messages again: one ALR each
    /// ([`sgd_map::alr`]); the first failure's RP-Cause, `None` when every SMSC took its
    /// alert. The SMSCs whose alert failed for a temporary reason (no answer, no route, 5012
    /// ...) stay waiting and are alerted on the next occasion.
    async fn alert(
        &self,
        sgd: &Sgd,
        user: &str,
        w: sgd_map::MessageWaiting,
    ) -> Option<ims_sms::RpCause> {
        let msisdn = user.strip_prefix("tel:").filter(|n| n.starts_with('+'));
        let mut again = sgd_map::MessageWaiting {
            centres: Vec::new(),
            ..w.clone()
        };
        let mut first = None;
        for c in &w.centres {
            bump(&self.counters.sgd_alr);
            let alr = sgd_map::alr(sgd.node.session_id(), &sgd.id, msisdn, &w, c);
            let answer = sgd.node.send(&alr).await;
            if let Err(e) = &answer {
                eprintln!("im server: Alert-Service-Centre to {}: {e}", c.host);
            }
            let ala = answer
                .as_ref()
                .ok()
                .and_then(|m| ims_diameter::s6c::Ala::decode(&m.view()).ok());
            if let Some(cause) = sgd_map::alert_cause(ala.as_ref()) {
                first.get_or_insert(cause);
                if sgd_map::alert_retryable(cause) {
                    again.centres.push(c.clone());
                }
            }
        }
        let mark = self.im_store.as_ref().map(ImStore::mark);
        {
            let mut mwd = sgd.mwd.lock().expect("mwd lock");
            mwd.restore(user, again);
            self.persist_mwd(&mwd, user);
        }
        if let (Some(st), Some(mark)) = (&self.im_store, mark) {
            let _ = st.confirm_mwd(mark, user, self.cfg.store_wait).await;
        }
        first
    }

    /// `user`'s RP-SMMA `rp_mr` with an SMSC: every SMSC waiting for it is alerted (TS 23.040
    /// §10.3 figure 20c), then the UE gets RP-ACK, or RP-ERROR with the cause of the first
    /// alert that failed (TS 23.040 §11.2); what the IP-SM-GW holds itself (MSISDN-less
    /// messages) is tried again too.
    async fn memory_available(&self, user: &str, rp_mr: u8) {
        let Some(sgd) = &self.sgd else { return };
        let waiting = sgd.mwd.lock().expect("mwd lock").memory_available(user);
        let cause = match waiting {
            Some(w) => self.alert(sgd, user, w).await,
            None => None,
        };
        if let Some(rp) = sgd_map::smma_answer(rp_mr, cause) {
            self.queue(vec![sms_action(user, rp)]);
        }
        let (out, w) = self.gw_call(|g| g.registered(&[user.to_string()], unix_now()));
        self.settle(out, w).await;
    }

    /// The registered `identities`: the SMSCs waiting for one that was absent (and whose
    /// memory is not known to be full) are alerted (TS 23.040 §10.3 figure 20a).
    async fn alert_registered(&self, identities: &[String]) {
        let Some(sgd) = &self.sgd else { return };
        let due: Vec<(String, sgd_map::MessageWaiting)> = {
            let mut mwd = sgd.mwd.lock().expect("mwd lock");
            let mut due = Vec::new();
            for i in identities {
                if mwd.get(i).is_none() {
                    continue;
                }
                match mwd.registered(i) {
                    Some(w) => due.push((i.clone(), w)),
                    // MNRF cleared, MCEF still set: written now, alerted on RP-SMMA
                    None => self.persist_mwd(&mwd, i),
                }
            }
            due
        };
        for (user, w) in due {
            let _ = self.alert(sgd, &user, w).await;
        }
    }

    /// Delivers a TFR's TPDU to its recipient: RP-DATA in a MESSAGE, then the recipient's
    /// RP-ACK/RP-ERROR (or what stood in its way); with the recipient (canonical) when the
    /// IP-SM-GW could name it.
    async fn mt_deliver(
        &self,
        sgd: &Sgd,
        tfr: &ims_diameter::sgd::Tfr<'_>,
    ) -> (Option<String>, MtResult) {
        let to = match self.mt_recipient(tfr) {
            Ok(to) => to,
            Err(r) => return (None, r),
        };
        let r = self.mt_deliver_to(sgd, tfr, &to.0, to.1).await;
        (Some(to.0), r)
    }

    /// The recipient of a TFR (canonical) and, for an MSISDN-less one, the sender's SIP URI;
    /// [`MtResult::UnknownUser`] when the IP-SM-GW cannot name it.
    fn mt_recipient(
        &self,
        tfr: &ims_diameter::sgd::Tfr<'_>,
    ) -> Result<(String, Option<String>), MtResult> {
        let correlation = tfr.smsmi_correlation_id.as_ref();
        // MSISDN-less (TS 23.204 §6.0a.2): the recipient by its SIP URI, the sender's along
        let (to, msisdn_less_from) =
            match correlation.and_then(|c| c.destination_sip_uri.as_deref()) {
                Some(uri) => (
                    self.cfg.numbering.canonical(uri),
                    correlation
                        .and_then(|c| c.originating_sip_uri.as_deref())
                        .map(str::to_string),
                ),
                None => match self.cfg.numbering.by_imsi(&tfr.user_name) {
                    Some(c) => (c, None),
                    None => {
                        // an IMSI-derived IMPU registered without a numbering entry
                        let impu = format!("sip:{}@{}", tfr.user_name, self.cfg.domain);
                        let c = self.cfg.numbering.canonical(&impu);
                        if !self
                            .registered
                            .lock()
                            .expect("registered lock")
                            .contains(&c)
                        {
                            return Err(MtResult::UnknownUser);
                        }
                        (c, None)
                    }
                },
            };
        Ok((to, msisdn_less_from))
    }

    /// Delivers a TFR's TPDU to `to` (canonical; `msisdn_less_from`: the sender's SIP URI of
    /// an MSISDN-less message).
    async fn mt_deliver_to(
        &self,
        sgd: &Sgd,
        tfr: &ims_diameter::sgd::Tfr<'_>,
        to: &str,
        msisdn_less_from: Option<String>,
    ) -> MtResult {
        if !self
            .registered
            .lock()
            .expect("registered lock")
            .contains(to)
        {
            return MtResult::NotRegistered;
        }
        let (mr, sc) = {
            let mut g = self.gw.lock().expect("IP-SM-GW lock");
            (g.next_rp_mr(), g.sc_address().to_string())
        };
        let Some(body) = sgd_map::mt_rp_data(mr, tfr, &sc) else {
            return MtResult::SipRefused(500);
        };
        let (tx, rx) = oneshot::channel();
        let key = (to.to_string(), mr);
        sgd.pending
            .lock()
            .expect("pending lock")
            .insert(key.clone(), tx);
        let a = Action {
            msisdn_less_from,
            ..sms_action(to, body)
        };
        let code = match self.sms_request(a).await {
            Some((msg, scscf)) => {
                bump(&self.counters.sms_sent);
                self.send(msg, &scscf).await.ok()
            }
            None => Some(500),
        };
        let forget = || sgd.pending.lock().expect("pending lock").remove(&key);
        if !code.is_some_and(|c| (200..300).contains(&c)) {
            bump(&self.counters.sms_failed);
            forget();
            return MtResult::of_sip(code);
        }
        let mut wait = self
            .cfg
            .smsc
            .as_ref()
            .map_or(Duration::from_secs(30), |c| c.mt_answer_wait);
        if let Some(t) = tfr.sm_delivery_timer {
            wait = wait.min(Duration::from_secs(u64::from(t)));
        }
        match tokio::time::timeout(wait, rx).await {
            Ok(Ok(r)) => r,
            _ => {
                forget();
                MtResult::NoRpAnswer
            }
        }
    }
}

/// An RP message for `to` with no delivery attempt attached.
fn sms_action(to: &str, body: Vec<u8>) -> Action {
    Action {
        to: to.to_string(),
        body,
        msisdn_less_from: None,
        attempt: None,
    }
}

impl ImServer {
    /// Binds the endpoint, loads the store and starts serving.
    pub async fn start(cfg: ImServerConfig) -> Result<ImServer, ImServerError> {
        Self::start_with(cfg, None).await
    }

    /// As [`ImServer::start`]; every endpoint event the page-mode server does not handle
    /// (INVITEs, dialog events, in-dialog requests) goes to `others` instead of being refused,
    /// so a session-mode part can share the endpoint ([`ImServer::endpoint`]).
    pub async fn start_with(
        cfg: ImServerConfig,
        others: Option<mpsc::UnboundedSender<UaEvent>>,
    ) -> Result<ImServer, ImServerError> {
        let (store, im_store, stored_im, waiting) = open_stores(cfg.store.as_deref()).await?;
        let mut gw = IpSmGw::new(cfg.ipsmgw.clone(), store)?;
        if cfg.reject_unknown && !cfg.numbering.is_empty() {
            let n = cfg.numbering.clone();
            gw = gw.with_directory(move |r| n.knows(r));
        }
        let (endpoint, incoming) = Endpoint::bind(EndpointConfig {
            addr: cfg.listen,
            user: "im".into(),
            reliable_provisional: false,
            ..EndpointConfig::default()
        })
        .await?;
        let sgd = match &cfg.smsc {
            Some(c) => {
                let sgd = Self::sgd_node(c).await?;
                {
                    let mut mwd = sgd.mwd.lock().expect("mwd lock");
                    for (user, w) in waiting {
                        mwd.insert(&user, w);
                    }
                }
                Some(sgd)
            }
            None => None,
        };
        let (outbox, mut out_rx) = mpsc::unbounded_channel::<Action>();
        let tick = cfg.tick;
        let shared = Arc::new(Shared {
            cfg,
            endpoint,
            gw: Mutex::new(gw),
            registered: Mutex::new(HashSet::new()),
            serving: Mutex::new(std::collections::HashMap::new()),
            notified: Mutex::new(std::collections::VecDeque::new()),
            counters: Counters::default(),
            outbox,
            others,
            stored_im: Mutex::new(stored_im.into()),
            im_store,
            im_seq: AtomicU64::new(0),
            sgd,
        });
        if let Some(sgd) = &shared.sgd {
            // TS 29.338 §6.2.2: the SMS-GMSC's MT-Forward-Short-Message-Request
            let weak = Arc::downgrade(&shared);
            let me = (sgd.id.origin_host.clone(), sgd.id.origin_realm.clone());
            sgd.node.handle(
                ims_diameter::dict::app::SGD,
                ims_diameter::dict::command::MT_FORWARD_SHORT_MESSAGE,
                move |req| {
                    let weak = weak.clone();
                    let me = me.clone();
                    async move {
                        if let Some(s) = weak.upgrade() {
                            if let Some(sgd) = &s.sgd {
                                return Box::pin(s.mt_forward(sgd, req)).await;
                            }
                        }
                        // stopping: DIAMETER_UNABLE_TO_DELIVER
                        let origin = ims_diameter::Origin {
                            host: &me.0,
                            realm: &me.1,
                            state_id: None,
                        };
                        ims_diameter::peer::result_answer(&req.message.view(), 3002, &origin)
                    }
                },
            );
        }
        let mut tasks = Vec::new();
        tasks.push(tokio::spawn(serve(shared.clone(), incoming)));
        let s = shared.clone();
        tasks.push(tokio::spawn(async move {
            while let Some(a) = out_rx.recv().await {
                let s = s.clone();
                tokio::spawn(async move { s.send_sms(a).await });
            }
        }));
        let s = shared.clone();
        tasks.push(tokio::spawn(async move {
            let mut t = tokio::time::interval(tick);
            loop {
                t.tick().await;
                let (out, w) = s.gw_call(|g| g.handle_timeout(unix_now()));
                if !out.is_empty() {
                    let s = s.clone();
                    tokio::spawn(async move { s.settle(out, w).await });
                }
                s.expire_stored(unix_now()).await;
                // (taken out of the queue at once: the next tick does not take them again)
                let r = s.clone();
                tokio::spawn(async move { r.retry_stored(unix_now()).await });
            }
        }));
        Ok(ImServer { shared, tasks })
    }

    /// The Diameter node toward the SMSC ([`ImServerConfig::smsc`]): advertises SGd
    /// (Vendor-Specific-Application-Id {10415, 16777313}) in CER/CEA, connects to the SMSC and
    /// keeps reconnecting every 5 s; listens too when the configuration says so.
    async fn sgd_node(c: &SmscConfig) -> Result<Sgd, ImServerError> {
        let mut nc = ims_net::diameter::NodeConfig::new(&c.origin_host, &c.origin_realm);
        // S6c too: Alert-Service-Centre runs on the SGd connection with the S6c
        // Application-Id (TS 29.338 §6.1, §5.3.2.5)
        nc.applications = vec![
            ims_diameter::peer::Application::tgpp_auth(ims_diameter::dict::app::SGD),
            ims_diameter::peer::Application::tgpp_auth(ims_diameter::dict::app::S6C),
        ];
        nc.request_timeout = c.request_timeout;
        nc.reconnect_interval = Some(Duration::from_secs(5));
        nc.connect_timeout = Duration::from_secs(5);
        let node = ims_net::diameter::Node::new(nc);
        if let Some(l) = c.listen {
            node.listen(l)
                .await
                .map_err(|e| ImServerError::Diameter(e.to_string()))?;
        }
        node.add_peer(&c.host, c.addr);
        Ok(Sgd {
            node,
            id: SgdIdentity {
                origin_host: c.origin_host.clone(),
                origin_realm: c.origin_realm.clone(),
                smsc_host: Some(c.host.clone()),
                smsc_realm: c.realm.clone(),
            },
            pending: Mutex::new(std::collections::HashMap::new()),
            mwd: Mutex::new(sgd_map::Mwd::new()),
        })
    }

    /// Waits until the Diameter connection to the SMSC ([`ImServerConfig::smsc`]) is open (CER/CEA
    /// done), at most `timeout`; false when it is not (or no SMSC is configured).
    pub async fn wait_smsc(&self, timeout: Duration) -> bool {
        match (&self.shared.sgd, &self.shared.cfg.smsc) {
            (Some(sgd), Some(c)) => sgd.node.wait_open(&c.host, timeout).await.is_ok(),
            _ => false,
        }
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.shared.endpoint.local_addr()
    }

    /// The URI application servers are named by in iFC (`sip:<ip>:<port>`).
    pub fn uri(&self) -> String {
        format!("sip:{}", self.local_addr())
    }

    /// The SIP endpoint (shared with a session-mode part started with [`ImServer::start_with`]).
    pub fn endpoint(&self) -> &Endpoint {
        &self.shared.endpoint
    }

    /// The S-CSCF serving a user, as its live third-party REGISTER named it (its Contact, TS
    /// 24.229 §5.4.1.7), for the session anchor's B legs
    /// ([`crate::im_session::ImSessionConfig::serving`]); `None` once the server is gone.
    pub fn serving_scscf(&self) -> crate::im_session::ServingScscf {
        let shared = Arc::downgrade(&self.shared);
        crate::im_session::ServingScscf::new(move |user| {
            let s = shared.upgrade()?;
            let key = s.cfg.numbering.canonical(user);
            let found = s.serving.lock().expect("serving lock").get(&key).cloned();
            found
        })
    }

    /// Recipients some SMSC waits to be alerted for (with [`ImServerConfig::smsc`]: a TFR's
    /// delivery failed on an absent recipient or a full memory, no alert went through yet).
    pub fn message_waiting(&self) -> usize {
        self.shared
            .sgd
            .as_ref()
            .map_or(0, |s| s.mwd.lock().expect("mwd lock").len())
    }

    /// Short messages waiting in the store.
    pub fn queued(&self) -> usize {
        self.shared
            .gw
            .lock()
            .expect("IP-SM-GW lock")
            .queued()
            .count()
    }

    /// Page-mode IMs waiting for their recipient to register.
    pub fn stored_ims(&self) -> usize {
        self.shared.stored_im.lock().expect("stored IM lock").len()
    }

    /// Whether a third-party registration for `impu` is live.
    pub fn is_registered(&self, impu: &str) -> bool {
        let c = self.shared.cfg.numbering.canonical(impu);
        self.shared
            .registered
            .lock()
            .expect("registered lock")
            .contains(&c)
    }

    /// The counters.
    pub fn stats(&self) -> ImStats {
        let c = &self.shared.counters;
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        ImStats {
            sms_received: g(&c.sms_received),
            sms_sent: g(&c.sms_sent),
            sms_failed: g(&c.sms_failed),
            im_relayed: g(&c.im_relayed),
            imdn_sent: g(&c.imdn_sent),
            registers: g(&c.registers),
            im_stored: g(&c.im_stored),
            large_sent: g(&c.large_sent),
            im_expired: g(&c.im_expired),
            store_refused: g(&c.store_refused),
            sgd_ofr: g(&c.sgd_ofr),
            sgd_tfr: g(&c.sgd_tfr),
            sgd_alr: g(&c.sgd_alr),
        }
    }

    /// Waits until every change to the stored messages made so far has reached the store
    /// (with Redis, updates after the first write — attempts, removals — are asynchronous;
    /// the file store writes at once). Call it before a planned restart.
    pub async fn sync_store(&self) {
        if let Some(store) = &self.shared.im_store {
            store.flush().await;
        }
    }

    /// Stops the endpoint and the tasks.
    pub fn shutdown(&self) {
        self.shared.endpoint.shutdown();
        if let Some(sgd) = &self.shared.sgd {
            sgd.node.shutdown();
        }
        for t in &self.tasks {
            t.abort();
        }
    }
}

async fn serve(shared: Arc<Shared>, mut incoming: Incoming) {
    while let Some(ev) = incoming.recv().await {
        match ev {
            UaEvent::IncomingRequest {
                txn,
                dialog: None,
                msg,
            } => {
                let s = shared.clone();
                tokio::spawn(async move { s.request(txn, msg).await });
            }
            other => {
                // no session-mode part (or it stopped): page mode only
                let unhandled = match &shared.others {
                    Some(tx) => tx.send(other).err().map(|e| e.0),
                    None => Some(other),
                };
                match unhandled {
                    Some(UaEvent::IncomingInvite { txn, .. }) => {
                        let _ = shared.endpoint.respond(txn, Answer::new(488)).await;
                    }
                    // no dialogs either (RFC 3261 §12.2.2)
                    Some(UaEvent::IncomingRequest { txn, .. }) => {
                        let _ = shared.endpoint.respond(txn, Answer::new(481)).await;
                    }
                    _ => {}
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numbering() -> Numbering {
        let sets = [
            vec![
                "sip:001010000000001@ims.example.org".to_string(),
                "tel:+15550001".to_string(),
                "sip:+15550001@ims.example.org".to_string(),
            ],
            vec!["sip:bob@ims.example.org".to_string()],
        ];
        Numbering::from_sets(sets.iter().map(|s| s.as_slice()))
    }

    /// `bare_uri` as it was written first (two allocations and a `format!`): the oracle.
    fn bare_uri_by_format(value: &str) -> String {
        let u = uri_of(value);
        let end = u.find([';', '?']).unwrap_or(u.len());
        let u = &u[..end];
        match u.split_once(':') {
            Some((scheme, rest)) => format!("{}:{rest}", scheme.to_ascii_lowercase()),
            None => u.to_string(),
        }
    }

    #[test]
    fn a_bare_uri_is_the_uri_without_brackets_parameters_or_headers_scheme_lowered() {
        for (value, bare) in [
            ("<sip:Alice@x;user=phone>", "sip:Alice@x"),
            (
                "\"A\" <SIP:Bob@Example.org:5060;transport=udp>;tag=1",
                "sip:Bob@Example.org:5060",
            ),
            ("Tel:+15550001;phone-context=x", "tel:+15550001"),
            ("sips:c@d?subject=x", "sips:c@d"),
            ("  <sip:e@f>  ", "sip:e@f"),
            ("no-scheme", "no-scheme"),
            ("", ""),
            ("<Sip:x@y", "<sip:x@y"),
            ("ÄB:c", "Äb:c"),
        ] {
            assert_eq!(bare_uri(value), bare, "{value:?}");
            assert_eq!(bare_uri(value), bare_uri_by_format(value), "{value:?}");
        }
    }

    proptest::proptest! {
        #[test]
        fn a_bare_uri_is_what_the_format_gave(value in "[<>;?: \"aA-zZ0-9@.éÄ]{0,40}") {
            proptest::prop_assert_eq!(bare_uri(&value), bare_uri_by_format(&value));
        }
    }

    #[test]
    fn stored_ims_round_trip_through_their_files_in_order() {
        let dir = std::env::temp_dir().join(format!("ims-rs-im-store-{}", token()));
        let files = ImFileStore::new(&dir).unwrap();
        let page = |body: &[u8], ct: &str| Page {
            request_uri: "tel:+15550002".into(),
            from_uri: "sip:a@ims.example.org".into(),
            from_display: Some("Alice".into()),
            to: "<tel:+15550002>".into(),
            asserted: Some("<sip:a@ims.example.org>".into()),
            routes: Vec::new(),
            max_forwards: 70,
            content_type: ct.into(),
            body: body.to_vec(),
        };
        let mut a = StoredIm {
            to: "tel:+15550002".into(),
            page: page(b"first", "text/plain"),
            attempts: 1,
            stored_at: 1_700_000_000,
            next_attempt: 0,
            key: None,
            id: "0123456789abcdef".into(),
        };
        let mut b = StoredIm {
            to: "tel:+15550002".into(),
            page: page(&[0, 1, 2, 255], "message/cpim"),
            attempts: 0,
            stored_at: 1_700_000_001,
            next_attempt: 1_700_000_031,
            key: None,
            id: "fedcba9876543210".into(),
        };
        a.key = Some(files.save(&a, 1).unwrap());
        b.key = Some(files.save(&b, 2).unwrap());
        std::fs::write(dir.join("im").join("zz-garbage.json"), b"{not json").unwrap();
        let back = files.load_all().unwrap();
        assert_eq!(back, [a.clone(), b.clone()], "garbage skipped, order kept");
        // an update replaces the record in place (same name, so the same place in the order)
        a.attempts = 2;
        files.write(&a, a.key.as_ref().unwrap()).unwrap();
        assert_eq!(files.load_all().unwrap(), [a.clone(), b.clone()]);
        assert!(ImFileStore::remove(a.key.as_ref().unwrap()));
        assert!(ImFileStore::remove(a.key.as_ref().unwrap()), "already gone");
        assert_eq!(files.load_all().unwrap(), [b]);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn page_mode_failures_kept_for_later_are_the_temporary_ones_the_sender_still_hears() {
        let wait = Duration::from_secs(24);
        let early = Duration::from_millis(50);
        for code in [408, 480, 500, 503, 504, 486] {
            assert!(keep_for_later(code, early, wait), "{code}");
            // after the answer window (our own Timer F at 32 s is one): relayed
            assert!(!keep_for_later(code, wait, wait), "{code} late");
            assert!(
                !keep_for_later(code, Duration::from_secs(32), wait),
                "{code}"
            );
        }
        // 2xx: delivered; permanent: relayed (and failed IMDN)
        for code in [200, 202, 404, 403, 415, 488, 603, 604, 302] {
            assert!(!keep_for_later(code, early, wait), "{code}");
        }
    }

    #[test]
    fn a_cpim_message_is_named_by_its_imdn_message_id() {
        let body = b"From: <sip:a@x>\r\nTo: <sip:b@x>\r\nNS: imdn <urn:ietf:params:imdn>\r\n\
imdn.Message-ID: 34jk324j\r\nDateTime: 2026-11-26T23:00:00Z\r\n\r\n\
Content-Type: text/plain\r\nContent-Length: 2\r\n\r\nhi";
        assert_eq!(
            cpim_message_id("Message/CPIM", body).as_deref(),
            Some("34jk324j")
        );
        assert_eq!(cpim_message_id("text/plain", body), None);
        assert_eq!(cpim_message_id("message/cpim", b"not cpim"), None);
    }

    #[test]
    fn numbering_maps_impus_to_msisdn_and_back() {
        let n = numbering();
        for id in [
            "sip:001010000000001@ims.example.org",
            "<sip:001010000000001@ims.example.org>",
            "SIP:+15550001@ims.example.org;user=phone",
            "tel:+15550001",
            "tel:15550001",
        ] {
            assert_eq!(n.canonical(id), "tel:+15550001", "{id}");
        }
        assert_eq!(
            n.address("tel:+15550001"),
            "sip:001010000000001@ims.example.org"
        );
        // a set without a tel URI is not numbered
        assert_eq!(
            n.canonical("sip:bob@ims.example.org"),
            "sip:bob@ims.example.org"
        );
        assert!(!n.knows("tel:+15550009"));
        assert_eq!(n.address("tel:+15550009"), "tel:+15550009");
    }

    fn parse(s: &str, body: &[u8]) -> OwnedMessage {
        let mut v = s.replace("LEN", &body.len().to_string()).into_bytes();
        v.extend_from_slice(body);
        OwnedMessage::parse_datagram(Bytes::from(v)).unwrap()
    }

    const LOCAL: &str = "127.0.0.1:7070";

    #[test]
    fn classifies_sms_page_and_third_party_register() {
        let n = numbering();
        let local: SocketAddr = LOCAL.parse().unwrap();
        let sms = parse(
            "MESSAGE sip:+15550000@ims.example.org SIP/2.0\r\nVia: SIP/2.0/UDP 1.2.3.4;branch=z9hG4bK1\r\n\
             Route: <sip:127.0.0.1:7070;lr>, <sip:orig@127.0.0.1:6061;odi=10;lr>\r\n\
             From: <sip:001010000000001@ims.example.org>;tag=a\r\nTo: <sip:+15550000@ims.example.org>\r\n\
             P-Asserted-Identity: <sip:001010000000001@ims.example.org>\r\n\
             Call-ID: c\r\nCSeq: 1 MESSAGE\r\nContent-Type: application/vnd.3gpp.sms\r\nContent-Length: LEN\r\n\r\n",
            &[0, 1, 0, 0],
        );
        assert_eq!(
            classify(&sms, local, &n),
            Request::Sms {
                from: "tel:+15550001".into(),
                body: vec![0, 1, 0, 0],
                to_uri: None
            }
        );
        let page = parse(
            "MESSAGE sip:bob@ims.example.org SIP/2.0\r\nVia: SIP/2.0/UDP 1.2.3.4;branch=z9hG4bK2\r\n\
             Max-Forwards: 60\r\nRoute: <sip:127.0.0.1:7070;lr>\r\nRoute: <sip:orig@127.0.0.1:6061;odi=20;lr>\r\n\
             From: \"Alice\" <sip:001010000000001@ims.example.org>;tag=a\r\nTo: <sip:bob@ims.example.org>\r\n\
             P-Asserted-Identity: <sip:001010000000001@ims.example.org>\r\n\
             Call-ID: c2\r\nCSeq: 1 MESSAGE\r\nContent-Type: text/plain\r\nContent-Length: LEN\r\n\r\n",
            b"hi",
        );
        let Request::Page(p) = classify(&page, local, &n) else {
            panic!("page mode")
        };
        assert_eq!(p.routes, ["<sip:orig@127.0.0.1:6061;odi=20;lr>"]);
        assert_eq!(p.max_forwards, 60);
        assert_eq!(p.from_display.as_deref(), Some("Alice"));
        assert_eq!(p.body, b"hi");
        let inner = "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 1.2.3.4;branch=z9hG4bK9\r\n\
             From: <sip:001010000000001@ims.example.org>;tag=1\r\nTo: <sip:001010000000001@ims.example.org>;tag=2\r\n\
             Call-ID: r\r\nCSeq: 2 REGISTER\r\n\
             P-Associated-URI: <sip:001010000000001@ims.example.org>, <tel:+15550001>, <sip:carol@ims.example.org>\r\n\
             Content-Length: 0\r\n\r\n";
        let reg = parse(
            "REGISTER sip:127.0.0.1:7070 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:6060;branch=z9hG4bK3\r\n\
             From: <sip:scscf.ims.example.org>;tag=s\r\nTo: <sip:001010000000001@ims.example.org>\r\n\
             Call-ID: r3\r\nCSeq: 1 REGISTER\r\nContact: <sip:scscf.ims.example.org>\r\nExpires: 600\r\n\
             Content-Type: message/sip\r\nContent-Length: LEN\r\n\r\n",
            inner.as_bytes(),
        );
        assert_eq!(
            classify(&reg, local, &n),
            Request::Register {
                identities: vec!["tel:+15550001".into(), "sip:carol@ims.example.org".into()],
                expires: 600,
                scscf: Some("sip:scscf.ims.example.org".into())
            }
        );
        let dereg = parse(
            "REGISTER sip:127.0.0.1:7070 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:6060;branch=z9hG4bK4\r\n\
             From: <sip:scscf.ims.example.org>;tag=s\r\nTo: <sip:001010000000001@ims.example.org>\r\n\
             Call-ID: r4\r\nCSeq: 2 REGISTER\r\nContact: <sip:scscf.ims.example.org>;expires=0\r\n\
             Content-Length: LEN\r\n\r\n",
            b"",
        );
        assert_eq!(
            classify(&dereg, local, &n),
            Request::Register {
                identities: vec!["tel:+15550001".into()],
                expires: 0,
                scscf: Some("sip:scscf.ims.example.org".into())
            }
        );
    }

    #[test]
    fn imdn_for_a_cpim_message_that_asks_for_one() {
        let body = ims_msrp::cpim::CpimBuilder::new(
            "<sip:alice@ims.example.org>",
            "<sip:bob@ims.example.org>",
        )
        .ns("imdn", IMDN_NS)
        .header("imdn.Message-ID", "m-1")
        .header(
            "imdn.Disposition-Notification",
            "positive-delivery, display",
        )
        .datetime("2026-11-25T21:00:00Z")
        .content("text/plain", b"hi")
        .to_bytes();
        assert_eq!(wants_imdn("message/cpim", &body), Some((true, false)));
        assert_eq!(wants_imdn("text/plain", &body), None);
        let c = Cpim::parse(&body).unwrap();
        let n = imdn_body(
            "sip:bob@ims.example.org",
            "sip:alice@ims.example.org",
            &c,
            true,
            1_700_000_000,
        )
        .unwrap();
        let nc = Cpim::parse(&n).unwrap();
        assert_eq!(nc.from(), Some("<sip:bob@ims.example.org>"));
        assert_eq!(
            nc.content_type().unwrap().unwrap().to_string(),
            "message/imdn+xml"
        );
        let x = Imdn::parse(std::str::from_utf8(nc.body).unwrap()).unwrap();
        assert_eq!(
            (x.message_id.as_str(), x.status.as_str()),
            ("m-1", "delivered")
        );
        assert_eq!(x.notification, Notification::Delivery);
        // the notification itself asks for nothing
        assert_eq!(wants_imdn("message/cpim", &n), None);
        assert_eq!(datetime(1_700_000_000), "2023-11-14T22:13:20Z");
    }
}
