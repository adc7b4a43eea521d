//! The Diameter peer state machine over TCP (RFC 6733 §5.6) with the transport watchdog of
//! RFC 3539 §3.4 (DWR/DWA), capabilities exchange (§5.3), disconnection (§5.4), the
//! pending-request table keyed by Hop-by-Hop Identifier with failover (§5.5.4), and a duplicate
//! detector keyed by End-to-End Identifier (§6.1.9 / RFC 3539 §3.6).
//!
//! Sans-IO in the quinn shape: the owner feeds [`Peer::handle_input`] (transport up/down, octets
//! read) and [`Peer::handle_timeout`], calls the user commands ([`Peer::connect`],
//! [`Peer::send_request`], [`Peer::send_answer`], [`Peer::disconnect`]), and drains
//! [`Peer::poll_output`] (connect, transmit, close, events) and [`Peer::poll_timeout`].
//!
//! A peer has up to two transports, as in the RFC: the one it opened ([`Side::Initiator`], "I")
//! and the one the peer opened to it ([`Side::Responder`], "R"). When both are opened at once,
//! the election of §5.6.4 keeps exactly one (the Origin-Hosts compared as octets with ASCII case
//! ignored). A message a state does not allow closes its transport with the RFC's transition
//! (e.g. anything but a CEA in Wait-I-CEA: Closed at once). DPR/DPA does not cut requests in
//! flight: see [`Peer::disconnect`].
//!
//! Inband security ([`PeerConfig::inband_security`], RFC 6733 §6.10 / RFC 3588 §2.1): when CER
//! and CEA agree on Inband-Security-Id TLS, the peer enters [`PeerState::TlsHandshake`] and asks
//! the owner to run the handshake on the same transport ([`Output::StartTls`]); it opens on
//! [`Input::TlsEstablished`].
//!
//! Capabilities update (RFC 6737, Application-Id 10, CUR/CUA command 328): with
//! [`Application::CAPABILITIES_UPDATE`] advertised by both sides, [`Peer::update_capabilities`]
//! sends our new application list on the open connection and a received CUR replaces the
//! peer's ([`Event::CapabilitiesUpdated`]); no application left in common is answered 5010
//! DIAMETER_NO_COMMON_APPLICATION and followed by DPR. A CUR without CUA is sent once more after
//! Tw (T flag), and after another Tw the connection is closed and reopened after Tc, so that
//! CER/CEA carry the new list ([`CUR_RETRANSMISSIONS`] says why).
//!
//! ```
//! use ims_diameter::peer::{Application, Event, Output, Peer, PeerConfig, PeerState, Side};
//! use std::time::{Duration, Instant};
//!
//! let t0 = Instant::now();
//! let cfg = |host: &str| PeerConfig {
//!     applications: vec![Application::tgpp_auth(ims_diameter::dict::app::CX)],
//!     ..PeerConfig::new(host, "ims.example.org")
//! };
//! let mut client = Peer::new(cfg("scscf.ims.example.org"), t0);
//! let mut server = Peer::new(cfg("hss.ims.example.org"), t0);
//!
//! client.connect(t0);
//! assert!(matches!(client.poll_output(), Some(Output::Connect)));
//! client.handle_input(t0, ims_diameter::peer::Input::Connected);
//! server.accept().unwrap();
//! // shuttle octets both ways until both are open
//! for _ in 0..4 {
//!     while let Some(o) = client.poll_output() {
//!         if let Output::Transmit { bytes, .. } = o {
//!             server.handle_input(t0, ims_diameter::peer::Input::Data(Side::Responder, &bytes));
//!         }
//!     }
//!     while let Some(o) = server.poll_output() {
//!         if let Output::Transmit { bytes, .. } = o {
//!             client.handle_input(t0, ims_diameter::peer::Input::Data(Side::Initiator, &bytes));
//!         }
//!     }
//! }
//! assert_eq!(client.state(), PeerState::IOpen);
//! assert_eq!(server.state(), PeerState::ROpen);
//! assert_eq!(client.remote().unwrap().origin_host, "hss.ims.example.org");
//! ```

use crate::answer::{error_answer, Origin};
use crate::base::{Cea, Cer, DisconnectCause, Dpa, Dpr, Dwa, Dwr, VendorSpecificApplicationId};
use crate::dict::{self, app, command as cmd};
use crate::error::Error;
use crate::framer::Framer;
use crate::message::{Flags, Limits, Message, OwnedMessage};
use crate::result::ResultCode;
use crate::types::Address;
use crate::Command;
use bytes::{Bytes, BytesMut};
use std::borrow::Cow;
use std::collections::VecDeque;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One application a node supports, as advertised in CER/CEA.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Application {
    /// Application-Id.
    pub id: u32,
    /// The Vendor-Id of a vendor-specific application (sent in a Vendor-Specific-Application-Id),
    /// 0 for an IETF application (sent as a bare Auth-/Acct-Application-Id).
    pub vendor_id: u32,
    /// True for an accounting application (Acct-Application-Id), false for authorization.
    pub accounting: bool,
}

impl Application {
    /// An authorization application of 3GPP (vendor 10415), e.g. Cx or Rx.
    pub const fn tgpp_auth(id: u32) -> Application {
        Application {
            id,
            vendor_id: dict::VENDOR_3GPP,
            accounting: false,
        }
    }
    /// An IETF authorization application.
    pub const fn auth(id: u32) -> Application {
        Application {
            id,
            vendor_id: 0,
            accounting: false,
        }
    }
    /// The relay application (0xffffffff): an agent that relays every application.
    pub const RELAY: Application = Application::auth(app::RELAY);
    /// The Capabilities Update application (RFC 6737, Application-Id 10): with it in
    /// [`PeerConfig::applications`] on both sides, [`Peer::update_capabilities`] changes the
    /// advertised applications of an open connection with CUR/CUA.
    pub const CAPABILITIES_UPDATE: Application = Application::auth(CAPABILITIES_UPDATE_APPLICATION);
}

/// How a peer is configured: its identity as advertised in CER/CEA and its timers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerConfig {
    /// Our Origin-Host (a DiameterIdentity).
    pub origin_host: String,
    /// Our Origin-Realm.
    pub origin_realm: String,
    /// Host-IP-Address values (at least one is sent; 127.0.0.1 when empty).
    pub host_ip_addresses: Vec<IpAddr>,
    /// Vendor-Id (0 by default).
    pub vendor_id: u32,
    /// Product-Name.
    pub product_name: String,
    /// Origin-State-Id (RFC 6733 §8.16), e.g. the boot time; `None` to send none.
    pub origin_state_id: Option<u32>,
    /// The applications we support.
    pub applications: Vec<Application>,
    /// The Origin-Host the remote peer must announce; a CER from another host is answered with
    /// 3010 DIAMETER_UNKNOWN_PEER. `None` accepts any host.
    pub expected_peer: Option<String>,
    /// Tw, the watchdog interval (RFC 3539 §3.4.1: default 30 s, at least 6 s on the wire; any
    /// value is accepted here so tests can run fast).
    pub watchdog_interval: Duration,
    /// The largest jitter added to or removed from Tw (RFC 3539 §3.4.1: ±2 s); zero for none.
    pub watchdog_jitter: Duration,
    /// How long to wait for the transport and then for the CEA before giving up.
    pub connect_timeout: Duration,
    /// How long to wait for a DPA before closing anyway.
    pub disconnect_timeout: Duration,
    /// Tc (RFC 6733 §2.1): reconnect after a transport failure when we are the initiator; `None`
    /// never reconnects on its own.
    pub reconnect_interval: Option<Duration>,
    /// A seed for the Hop-by-Hop Identifiers and the watchdog jitter.
    pub seed: u64,
    /// Limits applied to every received message.
    pub limits: Limits,
    /// Inband security (RFC 6733 §6.10 Inband-Security-Id, the RFC 3588 §2.1 way to start TLS):
    /// what CER/CEA offer on a transport that is not already TLS, and whether TLS is started on
    /// it right after the capabilities exchange ([`Output::StartTls`]).
    pub inband_security: InbandSecurity,
}

/// Inband-Security-Id NO_INBAND_SECURITY (RFC 6733 §6.10).
pub const NO_INBAND_SECURITY: u32 = 0;
/// Inband-Security-Id TLS (RFC 6733 §6.10).
pub const INBAND_TLS: u32 = 1;

/// What the capabilities exchange offers for inband security (RFC 6733 §6.10, RFC 3588 §2.1 and
/// §5.3): with TLS agreed, both sides start a TLS handshake on the same TCP connection right after
/// the CER/CEA (the initiator is the TLS client) and the peer opens only when it succeeds. Not
/// used on a transport that is already TLS (RFC 6733 §13: TLS from the connect on a dedicated
/// port, see [`Peer::set_secure`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum InbandSecurity {
    /// No Inband-Security-Id sent (an absent AVP means NO_INBAND_SECURITY); a peer offering only
    /// TLS is refused with 5017 DIAMETER_NO_COMMON_SECURITY.
    #[default]
    None,
    /// NO_INBAND_SECURITY and TLS both offered: TLS when the peer offers it, clear otherwise.
    TlsOptional,
    /// Only TLS offered: a peer that does not offer TLS is refused (5017).
    TlsRequired,
}

impl InbandSecurity {
    /// The Inband-Security-Id values sent in a CER.
    pub const fn offered(self) -> &'static [u32] {
        match self {
            InbandSecurity::None => &[],
            InbandSecurity::TlsOptional => &[NO_INBAND_SECURITY, INBAND_TLS],
            InbandSecurity::TlsRequired => &[INBAND_TLS],
        }
    }

    const fn accepts(self, isi: u32) -> bool {
        match self {
            InbandSecurity::None => isi == NO_INBAND_SECURITY,
            InbandSecurity::TlsOptional => isi == NO_INBAND_SECURITY || isi == INBAND_TLS,
            InbandSecurity::TlsRequired => isi == INBAND_TLS,
        }
    }

    /// The mechanism both sides agree on, given what the peer advertised (an empty list is
    /// NO_INBAND_SECURITY): `Some(true)` TLS, `Some(false)` clear, `None` no common security.
    pub fn agree(self, theirs: &[u32]) -> Option<bool> {
        let has = |v: u32| {
            if theirs.is_empty() {
                v == NO_INBAND_SECURITY
            } else {
                theirs.contains(&v)
            }
        };
        if self.accepts(INBAND_TLS) && has(INBAND_TLS) {
            Some(true)
        } else if self.accepts(NO_INBAND_SECURITY) && has(NO_INBAND_SECURITY) {
            Some(false)
        } else {
            None
        }
    }
}

/// Which end of the inband TLS handshake we are ([`Output::StartTls`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TlsRole {
    /// We opened the connection: TLS client.
    Client,
    /// The peer opened it: TLS server.
    Server,
}

impl PeerConfig {
    /// A configuration with the RFC defaults (Tw 30 s ±2 s, Tc 30 s) and no application.
    pub fn new(origin_host: &str, origin_realm: &str) -> PeerConfig {
        PeerConfig {
            origin_host: origin_host.to_owned(),
            origin_realm: origin_realm.to_owned(),
            host_ip_addresses: Vec::new(),
            vendor_id: 0,
            product_name: "ims-rs".to_owned(),
            origin_state_id: None,
            applications: Vec::new(),
            expected_peer: None,
            watchdog_interval: Duration::from_secs(30),
            watchdog_jitter: Duration::from_secs(2),
            connect_timeout: Duration::from_secs(10),
            disconnect_timeout: Duration::from_secs(5),
            reconnect_interval: Some(Duration::from_secs(30)),
            seed: 0x2545_f491_4f6c_dd1d,
            limits: Limits::default(),
            inband_security: InbandSecurity::None,
        }
    }

    fn origin(&self) -> Origin<'_> {
        Origin {
            host: &self.origin_host,
            realm: &self.origin_realm,
            state_id: self.origin_state_id,
        }
    }

    fn addresses<'s>(&self) -> crate::Repeated<Address<'s>, 2> {
        let ips: Vec<IpAddr> = if self.host_ip_addresses.is_empty() {
            vec![IpAddr::from([127, 0, 0, 1])]
        } else {
            self.host_ip_addresses.clone()
        };
        ips.into_iter()
            .map(|ip| match ip {
                IpAddr::V4(a) => Address::Ipv4(a),
                IpAddr::V6(a) => Address::Ipv6(a),
            })
            .collect()
    }

    /// Fills the application AVPs of a CER or CEA.
    fn applications_into<'s>(
        &self,
        auth: &mut crate::Repeated<u32, 4>,
        acct: &mut crate::Repeated<u32, 4>,
        vsai: &mut crate::Repeated<VendorSpecificApplicationId<'s>, 2>,
        vendors: &mut crate::Repeated<u32, 4>,
    ) {
        for a in &self.applications {
            match (a.vendor_id, a.accounting) {
                (0, false) => auth.push(a.id),
                (0, true) => acct.push(a.id),
                (v, acc) => {
                    vsai.push(VendorSpecificApplicationId {
                        vendor_id: v,
                        auth_application_id: (!acc).then_some(a.id),
                        acct_application_id: acc.then_some(a.id),
                        ..Default::default()
                    });
                    if !vendors.contains(&v) {
                        vendors.push(v);
                    }
                }
            }
        }
    }

    fn cer(&self, secure: bool) -> Cer<'_> {
        let mut c = Cer {
            origin_host: self.origin_host.as_str().into(),
            origin_realm: self.origin_realm.as_str().into(),
            host_ip_address: self.addresses(),
            vendor_id: self.vendor_id,
            product_name: self.product_name.as_str().into(),
            origin_state_id: self.origin_state_id,
            ..Default::default()
        };
        self.applications_into(
            &mut c.auth_application_id,
            &mut c.acct_application_id,
            &mut c.vendor_specific_application_id,
            &mut c.supported_vendor_id,
        );
        if !secure {
            c.inband_security_id
                .extend(self.inband_security.offered().iter().copied());
        }
        c
    }

    fn cea(&self, result_code: u32) -> Cea<'_> {
        let mut c = Cea {
            result_code,
            origin_host: self.origin_host.as_str().into(),
            origin_realm: self.origin_realm.as_str().into(),
            host_ip_address: self.addresses(),
            vendor_id: self.vendor_id,
            product_name: self.product_name.as_str().into(),
            origin_state_id: self.origin_state_id,
            ..Default::default()
        };
        self.applications_into(
            &mut c.auth_application_id,
            &mut c.acct_application_id,
            &mut c.vendor_specific_application_id,
            &mut c.supported_vendor_id,
        );
        c
    }
}

/// Which of the two transports of a peer (RFC 6733 §5.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    /// The transport we opened ("I").
    Initiator,
    /// The transport the peer opened to us ("R").
    Responder,
}

impl Side {
    const fn index(self) -> usize {
        match self {
            Side::Initiator => 0,
            Side::Responder => 1,
        }
    }
}

/// The peer states of RFC 6733 §5.6.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PeerState {
    /// No transport.
    Closed,
    /// Waiting for our transport to come up.
    WaitConnAck,
    /// CER sent on our transport, waiting for the CEA.
    WaitICea,
    /// Waiting for our transport while the peer's CER (on its transport) is held for the election.
    WaitConnAckElect,
    /// Both transports up: the election decides which survives.
    WaitReturns,
    /// Open on the peer's transport.
    ROpen,
    /// Open on our transport.
    IOpen,
    /// DPR sent, waiting for the DPA.
    Closing,
    /// CER/CEA succeeded with inband TLS agreed (RFC 3588 §2.1): the TLS handshake runs on the
    /// active transport ([`Output::StartTls`]); open once [`Input::TlsEstablished`] comes.
    TlsHandshake,
}

impl PeerState {
    /// True in R-Open and I-Open.
    pub const fn is_open(self) -> bool {
        matches!(self, PeerState::ROpen | PeerState::IOpen)
    }
}

/// The watchdog states of RFC 3539 §3.4.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WatchdogState {
    /// The connection was never up.
    Initial,
    /// Traffic flows; requests may be sent.
    Okay,
    /// A DWR went unanswered for Tw: requests failed over, the connection is not used.
    Suspect,
    /// The connection is closed.
    Down,
    /// Reconnected: three DWAs must come back before the connection is used again.
    Reopen,
}

/// Why a peer went down.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DownReason {
    /// The transport failed or was closed by the remote side.
    TransportClosed,
    /// The transport could not be opened, or no CEA came in time.
    ConnectFailed,
    /// The CER/CEA exchange failed with this Result-Code (e.g. 5010
    /// DIAMETER_NO_COMMON_APPLICATION, 3010 DIAMETER_UNKNOWN_PEER) or a malformed message.
    CapabilitiesRejected(u32),
    /// The watchdog closed the connection (two Tw without answer).
    WatchdogTimeout,
    /// We sent DPR (and got a DPA or gave up waiting).
    LocalDisconnect(DisconnectCause),
    /// The peer sent DPR.
    RemoteDisconnect(DisconnectCause),
    /// An invalid message length made the stream impossible to follow.
    FramingError,
    /// The inband TLS handshake after CER/CEA failed or did not finish in time.
    TlsHandshakeFailed,
    /// Our CUR (RFC 6737) got no CUA, even after its retransmission
    /// ([`CUR_RETRANSMISSIONS`]): the connection is closed and, on our side of the connection
    /// (we connect), opened again after Tc so that a new CER/CEA carries the applications.
    CapabilitiesUpdateTimeout,
}

/// How often an unanswered CUR is sent again before the connection is given up.
///
/// RFC 6737 defines no timer for the CUA; a CUR is answered by the peer itself (never relayed,
/// RFC 6737 §3), like a DWR, so we give it the watchdog's time: Tw (RFC 3539 §3.4.1,
/// [`PeerConfig::watchdog_interval`]) for each attempt, and as many attempts as the watchdog
/// gives a silent peer before it declares the connection down (OKAY → SUSPECT after one Tw,
/// DOWN after the second). So: CUR, after Tw without CUA the same CUR again with the T flag
/// (RFC 6733 §3: a retransmission, so the peer can drop a duplicate by its End-to-End
/// Identifier), after another Tw without CUA the connection is closed
/// ([`DownReason::CapabilitiesUpdateTimeout`]) — the capabilities are then exchanged the
/// RFC 6733 §5.3 way, with CER/CEA on the new connection.
pub const CUR_RETRANSMISSIONS: u8 = 1;

/// How many received requests waiting for our answer a peer tracks for the graceful close after
/// DPR/DPA ([`Peer::disconnect`]); beyond it the close does not wait for the others.
pub const MAX_TRACKED_REQUESTS: usize = 65_536;

/// What the remote peer announced in its CER or CEA.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteInfo {
    /// Origin-Host.
    pub origin_host: String,
    /// Origin-Realm.
    pub origin_realm: String,
    /// Product-Name.
    pub product_name: String,
    /// Origin-State-Id.
    pub origin_state_id: Option<u32>,
    /// The Application-Ids both sides support (the intersection; everything of ours when the peer
    /// is a relay).
    pub common_applications: Vec<u32>,
    /// The Application-Ids the peer advertised (Auth-, Acct- and Vendor-Specific-Application-Id
    /// of its CER/CEA, or of its last CUR, RFC 6737).
    pub advertised_applications: Vec<u32>,
}

impl RemoteInfo {
    /// The peer advertised the Capabilities Update application (RFC 6737, Application-Id 10).
    pub fn supports_capabilities_update(&self) -> bool {
        self.advertised_applications
            .contains(&CAPABILITIES_UPDATE_APPLICATION)
    }
}

/// The Diameter Capabilities Update application (RFC 6737 §4, Application-Id 10): a node that
/// supports CUR/CUA advertises it in CER/CEA (e.g. with [`Application::CAPABILITIES_UPDATE`]).
pub const CAPABILITIES_UPDATE_APPLICATION: u32 = 10;
/// Capabilities-Update-Request/Answer (RFC 6737 §3, Command Code 328).
pub const CAPABILITIES_UPDATE: u32 = 328;

/// A request the peer did not get an answer for: after a failover it must be sent elsewhere
/// (its T flag is already set in `bytes`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingRequest {
    /// The tag the request was sent with.
    pub tag: u64,
    /// The request octets (Hop-by-Hop Identifier as last sent; T flag set for a failover).
    pub bytes: Bytes,
    /// When the request times out.
    pub deadline: Instant,
}

/// Something that happened on the peer, for the owner to act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The capabilities exchange succeeded: the peer is open.
    Open(RemoteInfo),
    /// A capabilities update (RFC 6737 CUR/CUA) succeeded on the open connection: the peer's
    /// CUR was accepted, or the CUA to ours said DIAMETER_SUCCESS. The new common applications
    /// are in [`RemoteInfo::common_applications`].
    CapabilitiesUpdated(RemoteInfo),
    /// The watchdog changed state (RFC 3539).
    Watchdog(WatchdogState),
    /// A DWR or DWA of the open peer carried another non-zero Origin-State-Id than the one it
    /// announced before (in its CER/CEA or an earlier DWR/DWA): it restarted and lost its state
    /// (RFC 6733 §8.16). [`RemoteInfo::origin_state_id`] holds `current` now. (Origin-State-Id 0
    /// means "infer nothing" and is ignored.)
    OriginStateChanged {
        /// The Origin-State-Id it sent before (`None` if its CER/CEA had none).
        previous: Option<u32>,
        /// The new one.
        current: u32,
    },
    /// A request for an application (not CER/DWR/DPR) arrived; answer with [`Peer::send_answer`].
    Request(OwnedMessage),
    /// The answer to the request sent with `tag`.
    Answer {
        /// The tag given to [`Peer::send_request`].
        tag: u64,
        /// The answer.
        answer: OwnedMessage,
    },
    /// No answer came before the request's deadline (the request is forgotten).
    Timeout {
        /// The tag given to [`Peer::send_request`].
        tag: u64,
    },
    /// The connection is suspect or down: these requests had no answer and should be sent to
    /// another peer (RFC 6733 §5.5.4); the T flag is set.
    Failover(Vec<PendingRequest>),
    /// The peer is no longer open.
    Down(DownReason),
    /// A received message was dropped.
    Discarded(Discard),
}

/// Why a received message was dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Discard {
    /// It could not be parsed and was not a request that could be answered.
    Malformed(Error),
    /// An answer whose Hop-by-Hop Identifier matches no pending request (RFC 6733 §6.2: answers
    /// that cannot be matched are discarded), e.g. one that came after its timeout.
    UnknownHopByHop(u32),
}

/// What the owner must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Open the initiator transport to the peer, then report [`Input::Connected`] or
    /// [`Input::ConnectFailed`].
    Connect,
    /// Write these octets on that transport.
    Transmit {
        /// The transport.
        side: Side,
        /// A whole message.
        bytes: Bytes,
    },
    /// Close that transport (after writing what was queued).
    Close(Side),
    /// Start the TLS handshake on that transport, after writing what was queued (the CEA on
    /// the responder); then report [`Input::TlsEstablished`], or [`Input::TransportClosed`] when
    /// it fails. Nothing more is read from the transport in clear after the CER/CEA.
    StartTls {
        /// The transport.
        side: Side,
        /// Client (we connected) or server.
        role: TlsRole,
    },
    /// An event.
    Event(Event),
}

/// What the owner reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input<'a> {
    /// The initiator transport is up.
    Connected,
    /// The initiator transport could not be opened.
    ConnectFailed,
    /// Octets read from that transport.
    Data(Side, &'a [u8]),
    /// That transport was closed by the remote side or failed.
    TransportClosed(Side),
    /// The TLS handshake asked for by [`Output::StartTls`] succeeded on that transport (the
    /// owner has checked the peer's certificate).
    TlsEstablished(Side),
}

/// Counters of what a peer exchanged (for metrics and tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PeerStats {
    /// DWRs sent.
    pub dwr_sent: u64,
    /// DWAs received.
    pub dwa_received: u64,
    /// DWRs received (and answered).
    pub dwr_received: u64,
    /// DPRs received (and answered).
    pub dpr_received: u64,
    /// DPAs received.
    pub dpa_received: u64,
    /// Application requests sent.
    pub requests_sent: u64,
    /// Answers matched to a pending request.
    pub answers_received: u64,
    /// Application requests received.
    pub requests_received: u64,
    /// Requests handed back for failover.
    pub failovers: u64,
}

/// Why a command was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PeerError {
    /// The peer is not open (or its watchdog is not OKAY), so it must not carry requests.
    #[error("peer not open")]
    NotOpen,
    /// The octets are not a Diameter message of the expected kind.
    #[error("not a valid diameter {0}")]
    Invalid(&'static str),
    /// The responder transport is already in use.
    #[error("responder transport already in use")]
    Busy,
    /// The peer (or this node) does not advertise the Capabilities Update application
    /// (RFC 6737): the new applications apply from the next capabilities exchange.
    #[error("the peer does not support capabilities update (RFC 6737)")]
    UpdateUnsupported,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Timer {
    Connect,
    Watchdog,
    Disconnect,
    Reconnect,
    CapabilitiesUpdate,
}

/// The Diameter peer state machine (see the [module documentation](self)).
#[derive(Debug)]
pub struct Peer {
    cfg: PeerConfig,
    state: PeerState,
    watchdog: WatchdogState,
    /// Transport presence and framer, per side.
    conns: [Option<Framer>; 2],
    /// The side that is open (or the one we wait on).
    active: Option<Side>,
    /// The CER received on R held during an election: (its header, remote info).
    held_cer: Option<(crate::message::Header, RemoteInfo, bool)>,
    /// Per side: the transport is TLS (from the connect, or after the inband handshake).
    secure: [bool; 2],
    /// What the peer announced, while the inband TLS handshake runs.
    handshake_info: Option<RemoteInfo>,
    remote: Option<RemoteInfo>,
    /// Raised each time `remote` changes ([`Peer::remote_version`]).
    remote_version: u64,
    initiator: bool,
    out: VecDeque<Output>,
    timers: [Option<Instant>; 5],
    pending: crate::fasthash::FastMap<u32, PendingRequest>,
    next_hbh: u32,
    rng: u64,
    dwr_pending: bool,
    num_dwa: i32,
    was_open: bool,
    disconnect_cause: Option<DisconnectCause>,
    /// The peer's DPR was answered while requests were outstanding: the Disconnect-Cause it gave
    /// (the connection stays in Closing for their answers, see [`Peer::disconnect`]).
    remote_cause: Option<DisconnectCause>,
    /// Our DPR was answered, but requests are still outstanding on the connection.
    dpa_received: bool,
    /// Hop-by-Hop Identifiers of the requests received and not yet answered (at most
    /// [`MAX_TRACKED_REQUESTS`]).
    unanswered: std::collections::HashSet<u32>,
    /// The Hop-by-Hop Identifier of our CUR waiting for its CUA (RFC 6737).
    cur_pending: Option<u32>,
    /// That CUR (for its retransmission) and how often it was sent again.
    cur_sent: Option<(Bytes, u8)>,
    stats: PeerStats,
}

const fn timer_index(t: Timer) -> usize {
    match t {
        Timer::Connect => 0,
        Timer::Watchdog => 1,
        Timer::Disconnect => 2,
        Timer::Reconnect => 3,
        Timer::CapabilitiesUpdate => 4,
    }
}

const TIMERS: [Timer; 5] = [
    Timer::Connect,
    Timer::Watchdog,
    Timer::Disconnect,
    Timer::Reconnect,
    Timer::CapabilitiesUpdate,
];

impl Peer {
    /// A closed peer. `now` seeds nothing: the state machine reads no clock, it only stores
    /// deadlines derived from the `now` of later calls.
    pub fn new(cfg: PeerConfig, _now: Instant) -> Peer {
        let rng = cfg.seed | 1;
        let mut p = Peer {
            cfg,
            state: PeerState::Closed,
            watchdog: WatchdogState::Initial,
            conns: [None, None],
            active: None,
            held_cer: None,
            secure: [false; 2],
            handshake_info: None,
            remote: None,
            remote_version: 0,
            initiator: false,
            out: VecDeque::new(),
            timers: [None; 5],
            pending: crate::fasthash::FastMap::default(),
            next_hbh: 0,
            rng,
            dwr_pending: false,
            num_dwa: 0,
            was_open: false,
            disconnect_cause: None,
            remote_cause: None,
            dpa_received: false,
            unanswered: std::collections::HashSet::new(),
            cur_pending: None,
            cur_sent: None,
            stats: PeerStats::default(),
        };
        p.next_hbh = p.random() as u32;
        p
    }

    /// The configuration.
    pub fn config(&self) -> &PeerConfig {
        &self.cfg
    }
    /// The RFC 6733 state.
    pub fn state(&self) -> PeerState {
        self.state
    }
    /// The RFC 3539 watchdog state.
    pub fn watchdog(&self) -> WatchdogState {
        self.watchdog
    }
    /// The transport in use once open (or the one the CEA is awaited on).
    pub fn active_side(&self) -> Option<Side> {
        self.active
    }
    /// What the peer announced, once the capabilities exchange succeeded.
    pub fn remote(&self) -> Option<&RemoteInfo> {
        self.remote.as_ref()
    }
    /// A number that changes each time [`Peer::remote`] does (capabilities exchange or update,
    /// a new Origin-State-Id): an owner mirroring the remote information compares this instead
    /// of the information itself.
    pub fn remote_version(&self) -> u64 {
        self.remote_version
    }
    /// True when requests may be sent: open and watchdog OKAY.
    pub fn is_usable(&self) -> bool {
        self.state.is_open() && self.watchdog == WatchdogState::Okay
    }
    /// What was exchanged so far.
    pub fn stats(&self) -> PeerStats {
        self.stats
    }
    /// How many requests wait for an answer.
    pub fn pending_requests(&self) -> usize {
        self.pending.len()
    }
    /// True when the transport in use is TLS (from the connect, or started inband after
    /// CER/CEA).
    pub fn is_secure(&self) -> bool {
        self.active.is_some_and(|s| self.secure[s.index()])
    }

    /// Marks that transport as TLS from the start (RFC 6733 §13, a dedicated TLS port): its
    /// CER/CEA carry no Inband-Security-Id and no inband handshake is started on it. Call before
    /// [`Input::Connected`] (initiator) or right after [`Peer::accept`] (responder).
    pub fn set_secure(&mut self, side: Side) {
        self.secure[side.index()] = true;
    }

    fn random(&mut self) -> u64 {
        // xorshift64*
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn hop_by_hop(&mut self) -> u32 {
        self.next_hbh = self.next_hbh.wrapping_add(1);
        self.next_hbh
    }

    fn set_timer(&mut self, t: Timer, at: Option<Instant>) {
        self.timers[timer_index(t)] = at;
    }

    fn event(&mut self, e: Event) {
        self.out.push_back(Output::Event(e));
    }

    fn transmit(&mut self, side: Side, bytes: impl Into<Bytes>) {
        self.out.push_back(Output::Transmit {
            side,
            bytes: bytes.into(),
        });
    }

    fn close_side(&mut self, side: Side) {
        self.secure[side.index()] = false;
        if self.conns[side.index()].take().is_some() {
            self.out.push_back(Output::Close(side));
        }
    }

    /// SetWatchdog (RFC 3539 §3.4.1): Tw from now, with jitter.
    fn set_watchdog(&mut self, now: Instant) {
        let tw = self.cfg.watchdog_interval;
        let j = self.cfg.watchdog_jitter.as_millis() as u64;
        let at = if j == 0 {
            now + tw
        } else {
            let r = self.random() % (2 * j + 1);
            let ms = tw.as_millis() as u64 + r;
            now + Duration::from_millis(ms.saturating_sub(j).max(1))
        };
        self.set_timer(Timer::Watchdog, Some(at));
    }

    fn set_watchdog_state(&mut self, w: WatchdogState) {
        if self.watchdog != w {
            self.watchdog = w;
            self.event(Event::Watchdog(w));
        }
    }

    // ---------------------------------------------------------------- user commands

    /// Start connecting (we are the initiator): emits [`Output::Connect`]. Ignored unless closed.
    pub fn connect(&mut self, now: Instant) {
        self.initiator = true;
        if self.state != PeerState::Closed {
            return;
        }
        self.set_timer(Timer::Reconnect, None);
        self.state = PeerState::WaitConnAck;
        self.set_timer(Timer::Connect, Some(now + self.cfg.connect_timeout));
        self.out.push_back(Output::Connect);
    }

    /// Attach a transport the peer opened to us; its first message must be a CER.
    /// [`PeerError::Busy`] when we already have one (close the new transport).
    pub fn accept(&mut self) -> Result<(), PeerError> {
        let i = Side::Responder.index();
        if self.conns[i].is_some() || self.state.is_open() || self.state == PeerState::Closing {
            return Err(PeerError::Busy);
        }
        self.conns[i] = Some(Framer::with_limits(self.cfg.limits));
        Ok(())
    }

    /// Sends a request (its Hop-by-Hop Identifier is replaced by a fresh one, which is returned);
    /// the answer comes back as [`Event::Answer`] with `tag`, or [`Event::Timeout`] at `deadline`.
    pub fn send_request(
        &mut self,
        now: Instant,
        tag: u64,
        request: &[u8],
        deadline: Instant,
    ) -> Result<u32, PeerError> {
        let _ = now;
        if !self.is_usable() {
            return Err(PeerError::NotOpen);
        }
        let msg = Message::parse(request).map_err(|_| PeerError::Invalid("request"))?;
        if !msg.is_request() {
            return Err(PeerError::Invalid("request"));
        }
        // (a fresh identifier is never one still pending: some may come from the owner, see
        // `send_request_bytes`)
        let hbh = loop {
            let h = self.hop_by_hop();
            if !self.pending.contains_key(&h) {
                break h;
            }
        };
        let mut b = BytesMut::from(msg.as_bytes());
        b[12..16].copy_from_slice(&hbh.to_be_bytes());
        self.send_pending(tag, hbh, b.freeze(), deadline)
    }

    /// [`Peer::send_request`] for a request the owner holds as [`Bytes`] with a Hop-by-Hop
    /// Identifier it chose (e.g. from a counter shared by all its peers): sent as it is
    /// (shared, not copied) when that identifier is not pending on this peer; otherwise copied
    /// with a fresh one, as [`Peer::send_request`] does. Returns the identifier used. Only the
    /// header is checked ([`crate::Header::check`], a request, Message Length within the
    /// octets): the owner built the request or parsed it already.
    pub fn send_request_bytes(
        &mut self,
        now: Instant,
        tag: u64,
        request: Bytes,
        deadline: Instant,
    ) -> Result<u32, PeerError> {
        if !self.is_usable() {
            return Err(PeerError::NotOpen);
        }
        // the header rules only (the owner built the request, or parsed it): the AVPs are not
        // walked again
        let h = crate::message::Header::parse(&request)
            .ok()
            .filter(|h| h.check().is_ok() && h.flags.is_request())
            .filter(|h| h.length as usize <= request.len())
            .ok_or(PeerError::Invalid("request"))?;
        let (hbh, len) = (h.hop_by_hop, h.length as usize);
        if self.pending.contains_key(&hbh) {
            return self.send_request(now, tag, &request, deadline);
        }
        let mut request = request;
        request.truncate(len);
        self.send_pending(tag, hbh, request, deadline)
    }

    /// Records a request sent with Hop-by-Hop Identifier `hbh` (its octets `bytes`) as pending
    /// and transmits it.
    fn send_pending(
        &mut self,
        tag: u64,
        hbh: u32,
        bytes: Bytes,
        deadline: Instant,
    ) -> Result<u32, PeerError> {
        let side = self.active.ok_or(PeerError::NotOpen)?;
        self.pending.insert(
            hbh,
            PendingRequest {
                tag,
                bytes: bytes.clone(),
                deadline,
            },
        );
        self.transmit(side, bytes);
        self.stats.requests_sent += 1;
        Ok(hbh)
    }

    /// Sends an answer (to a request received from this peer); the octets are copied (see
    /// [`Peer::send_answer_bytes`]).
    pub fn send_answer(&mut self, now: Instant, answer: &[u8]) -> Result<(), PeerError> {
        let h = self.check_answer(answer)?;
        self.send_checked_answer(now, h, Bytes::copy_from_slice(answer));
        Ok(())
    }

    /// [`Peer::send_answer`] with octets the caller holds as [`Bytes`]: they are transmitted as
    /// they are (shared, not copied).
    pub fn send_answer_bytes(&mut self, now: Instant, answer: Bytes) -> Result<(), PeerError> {
        let h = self.check_answer(&answer)?;
        self.send_checked_answer(now, h, answer);
        Ok(())
    }

    /// Sends an answer [`Peer::check_answer`] accepted (its header `h`).
    fn send_checked_answer(&mut self, now: Instant, h: crate::message::Header, answer: Bytes) {
        if let Some(side) = self.active {
            self.transmit(side, answer);
        }
        self.unanswered.remove(&h.hop_by_hop);
        self.finish_closing(now);
    }

    /// An answer may be sent now (open or closing) and `answer` is one: its header.
    fn check_answer(&self, answer: &[u8]) -> Result<crate::message::Header, PeerError> {
        if !self.state.is_open() && self.state != PeerState::Closing {
            return Err(PeerError::NotOpen);
        }
        let h = crate::message::Header::parse(answer).map_err(|_| PeerError::Invalid("answer"))?;
        if h.flags.is_request() {
            return Err(PeerError::Invalid("answer"));
        }
        self.active.ok_or(PeerError::NotOpen)?;
        Ok(h)
    }

    /// In Closing after the DPR/DPA exchange: closes once no request is outstanding either way.
    fn finish_closing(&mut self, now: Instant) {
        if self.state != PeerState::Closing
            || !self.pending.is_empty()
            || !self.unanswered.is_empty()
        {
            return;
        }
        if let Some(cause) = self.remote_cause {
            self.go_down(now, DownReason::RemoteDisconnect(cause));
        } else if self.dpa_received {
            let cause = self.disconnect_cause.unwrap_or(DisconnectCause::Rebooting);
            self.go_down(now, DownReason::LocalDisconnect(cause));
        }
    }

    /// Sends DPR with this Disconnect-Cause (RFC 6733 §5.4); the transport is closed when the DPA
    /// arrives or after `disconnect_timeout`. A peer that is not open is simply closed.
    ///
    /// Requests in flight are not cut off by the DPR/DPA exchange (RFC 6733 §5.4 warns of the
    /// race): after the DPA, and after answering the peer's DPR, the connection stays in
    /// [`PeerState::Closing`] until every request sent on it is answered (or times out) and
    /// every request received on it is answered with [`Peer::send_answer`], at most
    /// `disconnect_timeout` after the DPR; what is still unanswered then fails over. No new
    /// request is sent ([`PeerError::NotOpen`]) and requests received meanwhile are answered
    /// 3002 DIAMETER_UNABLE_TO_DELIVER so they go elsewhere.
    pub fn disconnect(&mut self, now: Instant, cause: DisconnectCause) {
        self.initiator = false;
        self.set_timer(Timer::Reconnect, None);
        if !self.state.is_open() {
            if self.state != PeerState::Closed && self.state != PeerState::Closing {
                self.go_down(now, DownReason::LocalDisconnect(cause));
            }
            return;
        }
        let Some(side) = self.active else { return };
        let hbh = self.hop_by_hop();
        let e2e = self.random() as u32;
        let dpr = Dpr {
            origin_host: self.cfg.origin_host.as_str().into(),
            origin_realm: self.cfg.origin_realm.as_str().into(),
            disconnect_cause: cause,
            ..Default::default()
        };
        let bytes = dpr.encode(hbh, e2e);
        self.transmit(side, bytes);
        self.state = PeerState::Closing;
        self.disconnect_cause = Some(cause);
        self.set_timer(Timer::Watchdog, None);
        self.set_timer(Timer::Disconnect, Some(now + self.cfg.disconnect_timeout));
    }

    // ---------------------------------------------------------------- quinn-style driver

    /// The next thing to do.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    /// The earliest deadline (a protocol timer or a pending request's).
    pub fn poll_timeout(&self) -> Option<Instant> {
        let t = self.timers.iter().flatten().min().copied();
        let p = self.pending.values().map(|p| p.deadline).min();
        match (t, p) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Runs every timer that is due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        let mut expired: Vec<u32> = self
            .pending
            .iter()
            .filter(|(_, p)| p.deadline <= now)
            .map(|(h, _)| *h)
            .collect();
        expired.sort_unstable();
        for h in expired {
            if let Some(p) = self.pending.remove(&h) {
                self.event(Event::Timeout { tag: p.tag });
            }
        }
        self.finish_closing(now);
        for t in TIMERS {
            match self.timers[timer_index(t)] {
                Some(at) if at <= now => {
                    self.set_timer(t, None);
                    self.on_timer(now, t);
                }
                _ => {}
            }
        }
    }

    fn on_timer(&mut self, now: Instant, t: Timer) {
        match t {
            Timer::Connect => {
                if matches!(
                    self.state,
                    PeerState::WaitConnAck
                        | PeerState::WaitICea
                        | PeerState::WaitConnAckElect
                        | PeerState::WaitReturns
                ) {
                    self.go_down(now, DownReason::ConnectFailed);
                } else if self.state == PeerState::TlsHandshake {
                    self.go_down(now, DownReason::TlsHandshakeFailed);
                }
            }
            Timer::Disconnect => {
                if self.state == PeerState::Closing {
                    let reason = match self.remote_cause {
                        Some(c) => DownReason::RemoteDisconnect(c),
                        None => DownReason::LocalDisconnect(
                            self.disconnect_cause.unwrap_or(DisconnectCause::Rebooting),
                        ),
                    };
                    self.go_down(now, reason);
                }
            }
            Timer::Reconnect => {
                if self.state == PeerState::Closed && self.initiator {
                    self.connect(now);
                }
            }
            Timer::Watchdog => self.watchdog_timer(now),
            Timer::CapabilitiesUpdate => self.cur_timer(now),
        }
    }

    /// No CUA within Tw: the CUR once more with the T flag, then the connection is closed
    /// (see [`CUR_RETRANSMISSIONS`]).
    fn cur_timer(&mut self, now: Instant) {
        let (Some(side), Some((bytes, sent))) = (self.active, self.cur_sent.take()) else {
            return;
        };
        if !self.state.is_open() || self.cur_pending.is_none() {
            return;
        }
        if sent >= CUR_RETRANSMISSIONS {
            self.go_down(now, DownReason::CapabilitiesUpdateTimeout);
            return;
        }
        let mut b = BytesMut::from(&bytes[..]);
        b[4] |= Flags::RETRANSMIT;
        let b = b.freeze();
        self.transmit(side, b.to_vec());
        self.cur_sent = Some((b, sent + 1));
        self.set_timer(
            Timer::CapabilitiesUpdate,
            Some(now + self.cfg.watchdog_interval),
        );
    }

    /// The timer transitions of RFC 3539 §3.4.1.
    fn watchdog_timer(&mut self, now: Instant) {
        if !self.state.is_open() {
            return;
        }
        match self.watchdog {
            WatchdogState::Okay if !self.dwr_pending => {
                self.send_dwr();
                self.set_watchdog(now);
            }
            WatchdogState::Okay => {
                self.failover();
                self.set_watchdog(now);
                self.set_watchdog_state(WatchdogState::Suspect);
            }
            WatchdogState::Suspect => self.go_down(now, DownReason::WatchdogTimeout),
            WatchdogState::Reopen if !self.dwr_pending => {
                self.send_dwr();
                self.set_watchdog(now);
            }
            WatchdogState::Reopen => {
                if self.num_dwa < 0 {
                    self.go_down(now, DownReason::WatchdogTimeout);
                } else {
                    self.num_dwa = -1;
                    self.set_watchdog(now);
                }
            }
            WatchdogState::Initial | WatchdogState::Down => {}
        }
    }

    fn send_dwr(&mut self) {
        let Some(side) = self.active else { return };
        let hbh = self.hop_by_hop();
        let e2e = self.random() as u32;
        let dwr = Dwr {
            origin_host: self.cfg.origin_host.as_str().into(),
            origin_realm: self.cfg.origin_realm.as_str().into(),
            origin_state_id: self.cfg.origin_state_id,
            ..Default::default()
        };
        let bytes = dwr.encode(hbh, e2e);
        self.transmit(side, bytes);
        self.dwr_pending = true;
        self.stats.dwr_sent += 1;
    }

    /// Failover (RFC 3539 §3.4.1, RFC 6733 §5.5.4): every pending request, with the T flag.
    fn failover(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        self.stats.failovers += self.pending.len() as u64;
        let mut list: Vec<(u32, PendingRequest)> = self.pending.drain().collect();
        list.sort_unstable_by_key(|(h, _)| *h);
        let reqs = list
            .into_iter()
            .map(|(_, mut p)| {
                let mut b = BytesMut::from(&p.bytes[..]);
                b[4] |= Flags::RETRANSMIT;
                p.bytes = b.freeze();
                p
            })
            .collect();
        self.event(Event::Failover(reqs));
    }

    /// Closes every transport and goes to Closed (and the watchdog to DOWN).
    fn go_down(&mut self, now: Instant, reason: DownReason) {
        let was_up = self.state != PeerState::Closed;
        self.close_side(Side::Initiator);
        self.close_side(Side::Responder);
        self.failover();
        self.state = PeerState::Closed;
        self.active = None;
        self.held_cer = None;
        self.handshake_info = None;
        self.secure = [false; 2];
        self.dwr_pending = false;
        self.cur_pending = None;
        self.cur_sent = None;
        self.disconnect_cause = None;
        self.remote_cause = None;
        self.dpa_received = false;
        self.unanswered.clear();
        for t in [
            Timer::Connect,
            Timer::Watchdog,
            Timer::Disconnect,
            Timer::CapabilitiesUpdate,
        ] {
            self.set_timer(t, None);
        }
        if self.was_open {
            self.set_watchdog_state(WatchdogState::Down);
        }
        let reconnect = match &reason {
            DownReason::LocalDisconnect(_) => false,
            DownReason::RemoteDisconnect(c) => *c != DisconnectCause::DoNotWantToTalkToYou,
            DownReason::CapabilitiesRejected(_) => false,
            _ => true,
        };
        if was_up {
            self.event(Event::Down(reason));
        }
        if reconnect && self.initiator {
            if let Some(tc) = self.cfg.reconnect_interval {
                self.set_timer(Timer::Reconnect, Some(now + tc));
            }
        }
    }

    /// Enters R-Open or I-Open on `side` and starts the watchdog (INITIAL→OKAY, DOWN→REOPEN).
    fn open(&mut self, now: Instant, side: Side, remote: RemoteInfo) {
        self.state = match side {
            Side::Initiator => PeerState::IOpen,
            Side::Responder => PeerState::ROpen,
        };
        self.active = Some(side);
        self.set_timer(Timer::Connect, None);
        self.remote = Some(remote.clone());
        self.remote_version += 1;
        self.dwr_pending = false;
        self.event(Event::Open(remote));
        self.set_watchdog(now);
        if self.was_open {
            // RFC 3539 §3.4.1: DOWN, connection up: send a DWR at once and wait for three DWAs.
            self.num_dwa = 0;
            self.set_watchdog_state(WatchdogState::Reopen);
            self.send_dwr();
        } else {
            self.set_watchdog_state(WatchdogState::Okay);
        }
        self.was_open = true;
    }

    /// [`Input::Data`] for octets the owner holds as [`Bytes`]: whole messages in them are
    /// not copied (the requests and answers reported share their storage); only a message
    /// that is not complete yet is copied into the peer's buffer.
    pub fn handle_data(&mut self, now: Instant, side: Side, data: Bytes) {
        let Some(f) = self.conns[side.index()].as_mut() else {
            return;
        };
        f.push_bytes(data);
        self.on_frames(now, side);
    }

    /// Feeds what the transports did.
    pub fn handle_input(&mut self, now: Instant, input: Input<'_>) {
        match input {
            Input::Connected => self.on_connected(now),
            Input::ConnectFailed => self.on_connect_failed(now),
            Input::TransportClosed(side) => self.on_closed(now, side),
            Input::Data(side, data) => self.on_data(now, side, data),
            Input::TlsEstablished(side) => self.on_tls_established(now, side),
        }
    }

    fn on_tls_established(&mut self, now: Instant, side: Side) {
        if self.state != PeerState::TlsHandshake || self.active != Some(side) {
            return;
        }
        if self.conns[side.index()].is_none() {
            self.go_down(now, DownReason::TlsHandshakeFailed);
            return;
        }
        self.secure[side.index()] = true;
        match self.handshake_info.take() {
            Some(info) => self.open(now, side, info),
            None => self.go_down(now, DownReason::TlsHandshakeFailed),
        }
    }

    /// Inband TLS agreed: wait for the handshake on `side` (bounded by the connect timeout).
    fn start_tls(&mut self, now: Instant, side: Side, info: RemoteInfo) {
        self.state = PeerState::TlsHandshake;
        self.active = Some(side);
        self.handshake_info = Some(info);
        self.set_timer(Timer::Connect, Some(now + self.cfg.connect_timeout));
        let role = match side {
            Side::Initiator => TlsRole::Client,
            Side::Responder => TlsRole::Server,
        };
        self.out.push_back(Output::StartTls { side, role });
    }

    fn on_connected(&mut self, now: Instant) {
        match self.state {
            PeerState::WaitConnAck => {
                self.conns[0] = Some(Framer::with_limits(self.cfg.limits));
                self.send_cer();
                self.state = PeerState::WaitICea;
            }
            PeerState::WaitConnAckElect => {
                self.conns[0] = Some(Framer::with_limits(self.cfg.limits));
                self.send_cer();
                self.state = PeerState::WaitReturns;
                self.elect(now);
            }
            _ => {
                // a late connection nobody waits for
                self.out.push_back(Output::Close(Side::Initiator));
            }
        }
    }

    fn on_connect_failed(&mut self, now: Instant) {
        match self.state {
            PeerState::WaitConnAck => self.go_down(now, DownReason::ConnectFailed),
            PeerState::WaitConnAckElect => {
                // I-Rcv-Conn-Nack: answer the held CER on R
                self.win_on_responder(now);
            }
            _ => {}
        }
    }

    fn on_closed(&mut self, now: Instant, side: Side) {
        self.secure[side.index()] = false;
        if self.conns[side.index()].take().is_none() {
            return;
        }
        self.after_disconnect(now, side);
    }

    /// A protocol error on `side` (a message its state does not allow, or octets that cannot be
    /// framed): the transport is closed and the state moves as if the peer had disconnected it
    /// (RFC 6733 §5.6: Wait-I-CEA, I-Rcv-Non-CEA: Error → Closed; Wait-Returns: as I-Peer-Disc
    /// or R-Peer-Disc).
    fn protocol_error(&mut self, now: Instant, side: Side) {
        if self.conns[side.index()].is_none() {
            return;
        }
        self.close_side(side);
        self.after_disconnect(now, side);
    }

    /// The state transitions after `side` went away (its framer already dropped).
    fn after_disconnect(&mut self, now: Instant, side: Side) {
        if self.active == Some(side) && self.state == PeerState::TlsHandshake {
            self.go_down(now, DownReason::TlsHandshakeFailed);
            return;
        }
        if self.active == Some(side) && (self.state.is_open() || self.state == PeerState::Closing) {
            let reason = match (self.state, self.remote_cause, self.disconnect_cause) {
                (PeerState::Closing, Some(c), _) => DownReason::RemoteDisconnect(c),
                (PeerState::Closing, None, Some(c)) => DownReason::LocalDisconnect(c),
                _ => DownReason::TransportClosed,
            };
            self.go_down(now, reason);
            return;
        }
        match (self.state, side) {
            (PeerState::WaitICea, Side::Initiator) => self.go_down(now, DownReason::ConnectFailed),
            (PeerState::WaitReturns, Side::Initiator) => self.win_on_responder(now),
            (PeerState::WaitReturns, Side::Responder) => {
                self.held_cer = None;
                self.state = PeerState::WaitICea;
            }
            (PeerState::WaitConnAckElect, Side::Responder) => {
                self.held_cer = None;
                self.state = PeerState::WaitConnAck;
            }
            _ => {}
        }
    }

    fn send_cer(&mut self) {
        let hbh = self.hop_by_hop();
        let e2e = self.random() as u32;
        let bytes = self.cfg.cer(self.secure[0]).encode(hbh, e2e);
        self.transmit(Side::Initiator, bytes);
    }

    fn on_data(&mut self, now: Instant, side: Side, data: &[u8]) {
        let Some(f) = self.conns[side.index()].as_mut() else {
            return;
        };
        f.push(data);
        self.on_frames(now, side);
    }

    /// Handles every complete message buffered for `side`.
    fn on_frames(&mut self, now: Instant, side: Side) {
        loop {
            let Some(f) = self.conns[side.index()].as_mut() else {
                return;
            };
            match f.next_frame() {
                Ok(Some(frame)) => self.on_frame(now, side, frame),
                Ok(None) => return,
                Err(_) => {
                    if self.active == Some(side) {
                        self.go_down(now, DownReason::FramingError);
                    } else {
                        self.protocol_error(now, side);
                    }
                    return;
                }
            }
        }
    }

    fn on_frame(&mut self, now: Instant, side: Side, frame: Bytes) {
        if self.state == PeerState::TlsHandshake && self.active == Some(side) {
            // RFC 3588 §2.1: after the CEA only the TLS handshake may cross this transport
            self.go_down(now, DownReason::TlsHandshakeFailed);
            return;
        }
        let msg = match OwnedMessage::parse(frame.clone(), &self.cfg.limits) {
            Ok(m) => m,
            Err(e) => {
                if let Some(a) = error_answer(&frame, &e, &self.cfg.origin()) {
                    self.transmit(side, a);
                } else {
                    self.event(Event::Discarded(Discard::Malformed(e)));
                }
                return;
            }
        };
        let view = msg.view();
        let (code, req) = (view.code(), view.is_request());
        // before open, only the capabilities exchange is allowed
        if code == cmd::CAPABILITIES_EXCHANGE {
            if req {
                self.on_cer(now, side, &msg);
            } else {
                self.on_cea(now, side, &msg);
            }
            return;
        }
        let on_active =
            self.active == Some(side) && (self.state.is_open() || self.state == PeerState::Closing);
        if !on_active {
            // anything else on a transport that is not open: drop it and the transport (in
            // Wait-I-CEA the peer is closed at once: I-Rcv-Non-CEA, RFC 6733 §5.6)
            self.protocol_error(now, side);
            return;
        }
        // RFC 3539: any message received in OKAY/SUSPECT resets the watchdog
        let is_dwa = code == cmd::DEVICE_WATCHDOG && !req;
        match self.watchdog {
            WatchdogState::Okay if !is_dwa => self.set_watchdog(now),
            WatchdogState::Suspect if !is_dwa => {
                self.set_watchdog(now);
                self.set_watchdog_state(WatchdogState::Okay);
            }
            _ => {}
        }
        match (code, req) {
            (CAPABILITIES_UPDATE, true) => self.on_cur(now, side, &msg),
            (CAPABILITIES_UPDATE, false) if self.cur_pending == Some(view.hop_by_hop()) => {
                self.on_cua(&msg)
            }
            (cmd::DEVICE_WATCHDOG, true) => {
                self.stats.dwr_received += 1;
                self.note_origin_state(&view);
                let dwa = Dwa {
                    result_code: ResultCode::Success.code(),
                    origin_host: self.cfg.origin_host.as_str().into(),
                    origin_realm: self.cfg.origin_realm.as_str().into(),
                    origin_state_id: self.cfg.origin_state_id,
                    ..Default::default()
                };
                let a = dwa.encode_answer(view.header());
                self.transmit(side, a);
            }
            (cmd::DEVICE_WATCHDOG, false) => {
                self.stats.dwa_received += 1;
                self.note_origin_state(&view);
                self.on_dwa(now)
            }
            (cmd::DISCONNECT_PEER, true) => {
                self.stats.dpr_received += 1;
                let cause = Dpr::decode(&view)
                    .map(|d| d.disconnect_cause)
                    .unwrap_or(DisconnectCause::Rebooting);
                let dpa = Dpa {
                    result_code: ResultCode::Success.code(),
                    origin_host: self.cfg.origin_host.as_str().into(),
                    origin_realm: self.cfg.origin_realm.as_str().into(),
                    ..Default::default()
                };
                let a = dpa.encode_answer(view.header());
                self.transmit(side, a);
                if self.pending.is_empty() && self.unanswered.is_empty() {
                    self.go_down(now, DownReason::RemoteDisconnect(cause));
                } else if self.state != PeerState::Closing || self.remote_cause.is_none() {
                    // requests in flight either way: wait for their answers (RFC 6733 §5.4
                    // race), bounded by the disconnect timeout
                    self.state = PeerState::Closing;
                    self.remote_cause = Some(cause);
                    self.cur_pending = None;
                    self.cur_sent = None;
                    for t in [Timer::Watchdog, Timer::CapabilitiesUpdate] {
                        self.set_timer(t, None);
                    }
                    self.set_timer(Timer::Disconnect, Some(now + self.cfg.disconnect_timeout));
                }
            }
            (cmd::DISCONNECT_PEER, false) => {
                self.stats.dpa_received += 1;
                if self.state == PeerState::Closing && self.remote_cause.is_none() {
                    self.dpa_received = true;
                    self.finish_closing(now);
                }
            }
            (_, true) => {
                if self.state == PeerState::Closing {
                    // RFC 6733 §5.4: no new work once DPR is sent; answer 3002 so it goes elsewhere
                    let a = result_answer(
                        &view,
                        ResultCode::UnableToDeliver.code(),
                        &self.cfg.origin(),
                    );
                    self.transmit(side, a);
                    return;
                }
                self.stats.requests_received += 1;
                if self.unanswered.len() < MAX_TRACKED_REQUESTS {
                    self.unanswered.insert(view.hop_by_hop());
                }
                self.event(Event::Request(msg));
            }
            (_, false) => match self.pending.remove(&view.hop_by_hop()) {
                Some(p) => {
                    self.stats.answers_received += 1;
                    self.event(Event::Answer {
                        tag: p.tag,
                        answer: msg,
                    });
                    self.finish_closing(now);
                }
                None => self.event(Event::Discarded(Discard::UnknownHopByHop(
                    view.hop_by_hop(),
                ))),
            },
        }
    }

    /// RFC 6733 §8.16: a DWR/DWA (hop by hop, so in the peer's own order) with another
    /// non-zero Origin-State-Id than the peer's last one means it restarted.
    fn note_origin_state(&mut self, view: &Message<'_>) {
        let Some(current) = view
            .find(dict::ORIGIN_STATE_ID)
            .and_then(|a| a.u32().ok())
            .filter(|s| *s != 0)
        else {
            return;
        };
        let Some(remote) = self.remote.as_mut() else {
            return;
        };
        if remote.origin_state_id == Some(current) {
            return;
        }
        let previous = remote.origin_state_id.replace(current);
        self.remote_version += 1;
        self.event(Event::OriginStateChanged { previous, current });
    }

    /// The DWA transitions of RFC 3539 §3.4.1.
    fn on_dwa(&mut self, now: Instant) {
        self.dwr_pending = false;
        match self.watchdog {
            WatchdogState::Okay => self.set_watchdog(now),
            WatchdogState::Suspect => {
                self.set_watchdog(now);
                self.set_watchdog_state(WatchdogState::Okay);
            }
            WatchdogState::Reopen => {
                self.num_dwa += 1;
                if self.num_dwa >= 3 {
                    self.set_watchdog(now);
                    self.set_watchdog_state(WatchdogState::Okay);
                }
            }
            _ => {}
        }
    }

    /// Process-CER: checks a CER and computes the remote info and whether inband TLS is agreed,
    /// or the failing Result-Code with the answer to send.
    fn process_cer(&self, msg: &OwnedMessage, secure: bool) -> Result<(RemoteInfo, bool), Vec<u8>> {
        let view = msg.view();
        let cer = match Cer::decode(&view) {
            Ok(c) => c,
            Err(e) => {
                return Err(error_answer(msg.bytes(), &e, &self.cfg.origin()).unwrap_or_default())
            }
        };
        let reject = |rc: ResultCode| {
            let mut cea = self.cfg.cea(rc.code());
            if rc == ResultCode::UnknownPeer {
                cea.error_message = Some("unknown peer".into());
            }
            let mut h = view.header().answer();
            if rc.code() / 1000 == 3 {
                h.flags.0 |= Flags::ERROR;
            }
            let mut v = Vec::new();
            cea.encode_into(&h, &mut v);
            v
        };
        if let Some(exp) = &self.cfg.expected_peer {
            if !exp.eq_ignore_ascii_case(&cer.origin_host) {
                return Err(reject(ResultCode::UnknownPeer));
            }
        }
        let theirs = advertised(
            &cer.auth_application_id,
            &cer.acct_application_id,
            &cer.vendor_specific_application_id,
        );
        let common = self.common_applications(&theirs);
        if common.is_empty() {
            return Err(reject(ResultCode::NoCommonApplication));
        }
        // RFC 3588 §5.3 / RFC 6733 §6.10: on a clear transport, a common Inband-Security-Id
        let tls = if secure {
            false
        } else {
            match self.cfg.inband_security.agree(&cer.inband_security_id) {
                Some(tls) => tls,
                None => return Err(reject(ResultCode::NoCommonSecurity)),
            }
        };
        Ok((
            RemoteInfo {
                origin_host: cer.origin_host.into_owned(),
                origin_realm: cer.origin_realm.into_owned(),
                product_name: cer.product_name.into_owned(),
                origin_state_id: cer.origin_state_id,
                common_applications: common,
                advertised_applications: theirs,
            },
            tls,
        ))
    }

    /// The intersection of our applications with the peer's (RFC 6733 §5.3: the relay
    /// application on either side matches everything).
    fn common_applications(&self, theirs: &[u32]) -> Vec<u32> {
        let ours: Vec<u32> = self.cfg.applications.iter().map(|a| a.id).collect();
        let mut common: Vec<u32> = if theirs.contains(&app::RELAY) {
            ours.iter().copied().filter(|a| *a != app::RELAY).collect()
        } else if ours.contains(&app::RELAY) {
            theirs.to_vec()
        } else {
            ours.iter()
                .copied()
                .filter(|a| theirs.contains(a))
                .collect()
        };
        if common.is_empty() && theirs.contains(&app::RELAY) && ours.contains(&app::RELAY) {
            common.push(app::RELAY);
        }
        common.dedup();
        common
    }

    fn on_cer(&mut self, now: Instant, side: Side, msg: &OwnedMessage) {
        if side == Side::Initiator {
            // a CER on our own transport is not allowed (in Wait-I-CEA: I-Rcv-Non-CEA)
            self.protocol_error(now, side);
            return;
        }
        let info = match self.process_cer(msg, self.secure[side.index()]) {
            Ok((i, tls)) => (i, tls),
            Err(answer) => {
                if !answer.is_empty() {
                    self.transmit(side, answer);
                }
                self.close_side(side);
                return;
            }
        };
        match self.state {
            PeerState::Closed => {
                // R-Conn-CER: R-Accept, Process-CER, R-Snd-CEA
                self.held_cer = Some((*msg.header(), info.0, info.1));
                self.win_on_responder(now);
            }
            PeerState::WaitConnAck => {
                self.held_cer = Some((*msg.header(), info.0, info.1));
                self.state = PeerState::WaitConnAckElect;
            }
            PeerState::WaitICea => {
                self.held_cer = Some((*msg.header(), info.0, info.1));
                self.state = PeerState::WaitReturns;
                self.elect(now);
            }
            _ => {
                // R-Reject: we already have a connection (or a second CER on this transport)
                self.protocol_error(now, side);
            }
        }
    }

    /// Elect (RFC 6733 §5.6.4): the higher Origin-Host wins and keeps its responder transport.
    fn elect(&mut self, now: Instant) {
        let Some((_, info, _)) = &self.held_cer else {
            return;
        };
        if wins_election(&self.cfg.origin_host, &info.origin_host) {
            // Win-Election: I-Disc, R-Snd-CEA
            self.close_side(Side::Initiator);
            self.win_on_responder(now);
        }
        // otherwise wait for the CEA on our transport
    }

    /// R-Snd-CEA for the held CER, then R-Open.
    fn win_on_responder(&mut self, now: Instant) {
        let Some((h, info, tls)) = self.held_cer.take() else {
            self.go_down(now, DownReason::ConnectFailed);
            return;
        };
        let mut v = Vec::new();
        let mut cea = self.cfg.cea(ResultCode::Success.code());
        // the CEA names the one mechanism chosen (none on a TLS transport or when not configured)
        if tls {
            cea.inband_security_id.push(INBAND_TLS);
        } else if !self.secure[Side::Responder.index()]
            && self.cfg.inband_security != InbandSecurity::None
        {
            cea.inband_security_id.push(NO_INBAND_SECURITY);
        }
        cea.encode_into(&h.answer(), &mut v);
        self.transmit(Side::Responder, v);
        if tls {
            // RFC 3588 §2.1: the TLS handshake starts once the CEA is sent
            self.start_tls(now, Side::Responder, info);
        } else {
            self.open(now, Side::Responder, info);
        }
    }

    fn supports_update(&self) -> bool {
        self.cfg
            .applications
            .iter()
            .any(|a| a.id == CAPABILITIES_UPDATE_APPLICATION)
    }

    /// Replaces the applications we advertise (RFC 6737 Capabilities Update). On an open
    /// connection whose peer advertised the Capabilities Update application (and we too, see
    /// [`Application::CAPABILITIES_UPDATE`]) a CUR with every application we now support is sent;
    /// [`Event::CapabilitiesUpdated`] follows its successful CUA. Otherwise the applications are
    /// only stored for the next CER/CEA and [`PeerError::UpdateUnsupported`] is returned when
    /// the peer is open (the caller may disconnect and reconnect instead). Identity and
    /// security are not changed by an update (RFC 6737 §3). An unanswered CUR is retransmitted
    /// after Tw and the connection closed after another Tw ([`CUR_RETRANSMISSIONS`]).
    pub fn update_capabilities(
        &mut self,
        now: Instant,
        applications: Vec<Application>,
    ) -> Result<(), PeerError> {
        self.cfg.applications = applications;
        if !self.state.is_open() {
            return Ok(());
        }
        let remote_ok = self
            .remote
            .as_ref()
            .is_some_and(RemoteInfo::supports_capabilities_update);
        let Some(side) = self.active.filter(|_| remote_ok && self.supports_update()) else {
            return Err(PeerError::UpdateUnsupported);
        };
        let hbh = self.hop_by_hop();
        let e2e = self.random() as u32;
        let cur = self.cfg.cer(true); // CUR: the CER's AVPs without Inband-Security-Id
        let h = crate::message::Header {
            version: 1,
            length: 0,
            flags: Flags(Flags::REQUEST),
            code: CAPABILITIES_UPDATE,
            application_id: CAPABILITIES_UPDATE_APPLICATION,
            hop_by_hop: hbh,
            end_to_end: e2e,
        };
        let mut v = Vec::new();
        cur.encode_into(&h, &mut v);
        self.cur_pending = Some(hbh);
        self.cur_sent = Some((Bytes::copy_from_slice(&v), 0));
        self.set_timer(
            Timer::CapabilitiesUpdate,
            Some(now + self.cfg.watchdog_interval),
        );
        self.transmit(side, v);
        Ok(())
    }

    /// A CUR on the open connection (RFC 6737 §3.1): the peer's applications are replaced and
    /// the common ones computed again; none in common → CUA 5010 and DPR.
    fn on_cur(&mut self, now: Instant, side: Side, msg: &OwnedMessage) {
        let view = msg.view();
        let answer = |rc: ResultCode| {
            let mut h = view.header().answer();
            if rc.code() / 1000 == 3 {
                h.flags.0 |= Flags::ERROR;
            }
            let cua = Dpa {
                result_code: rc.code(),
                origin_host: self.cfg.origin_host.as_str().into(),
                origin_realm: self.cfg.origin_realm.as_str().into(),
                ..Default::default()
            };
            let mut v = Vec::new();
            cua.encode_into(&h, &mut v);
            v
        };
        if !self.supports_update() || view.application_id() != CAPABILITIES_UPDATE_APPLICATION {
            let a = answer(ResultCode::ApplicationUnsupported);
            self.transmit(side, a);
            return;
        }
        let cur = match Cer::decode_avps(view.avps()) {
            Ok(c) => c,
            Err(e) => {
                if let Some(a) = error_answer(msg.bytes(), &e, &self.cfg.origin()) {
                    self.transmit(side, a);
                }
                return;
            }
        };
        let same_host = self
            .remote
            .as_ref()
            .is_some_and(|r| r.origin_host.eq_ignore_ascii_case(&cur.origin_host));
        if !same_host {
            // RFC 6737 §3: an update cannot change the peer's identity
            let a = answer(ResultCode::UnknownPeer);
            self.transmit(side, a);
            return;
        }
        let theirs = advertised(
            &cur.auth_application_id,
            &cur.acct_application_id,
            &cur.vendor_specific_application_id,
        );
        let common = self.common_applications(&theirs);
        if common.iter().all(|a| *a == CAPABILITIES_UPDATE_APPLICATION) {
            let a = answer(ResultCode::NoCommonApplication);
            self.transmit(side, a);
            // RFC 6737 §3.2: the connection SHOULD then be closed
            self.disconnect(now, DisconnectCause::DoNotWantToTalkToYou);
            return;
        }
        let a = answer(ResultCode::Success);
        self.transmit(side, a);
        if let Some(r) = self.remote.as_mut() {
            r.common_applications = common;
            r.advertised_applications = theirs;
            self.remote_version += 1;
            let r = r.clone();
            self.event(Event::CapabilitiesUpdated(r));
        }
    }

    /// The CUA to our CUR: on success the common applications follow our new ones.
    fn on_cua(&mut self, msg: &OwnedMessage) {
        self.cur_pending = None;
        self.cur_sent = None;
        self.set_timer(Timer::CapabilitiesUpdate, None);
        let rc = msg.view().outcome().map_or(0, |o| o.code());
        let theirs = self
            .remote
            .as_ref()
            .map(|r| r.advertised_applications.clone())
            .unwrap_or_default();
        let common = self.common_applications(&theirs);
        if rc != ResultCode::Success.code() {
            // 5010: the peer disconnects (RFC 6737 §3.2); nothing else to do here
            return;
        }
        if let Some(r) = self.remote.as_mut() {
            r.common_applications = common;
            self.remote_version += 1;
            let r = r.clone();
            self.event(Event::CapabilitiesUpdated(r));
        }
    }

    fn on_cea(&mut self, now: Instant, side: Side, msg: &OwnedMessage) {
        let waiting = side == Side::Initiator
            && matches!(self.state, PeerState::WaitICea | PeerState::WaitReturns);
        if !waiting {
            return;
        }
        let view = msg.view();
        let cea = match Cea::decode(&view) {
            Ok(c) => c,
            Err(_) => {
                let rc = view.outcome().map_or(0, |o| o.code());
                self.go_down(now, DownReason::CapabilitiesRejected(rc));
                return;
            }
        };
        if cea.result_code != ResultCode::Success.code() {
            self.go_down(now, DownReason::CapabilitiesRejected(cea.result_code));
            return;
        }
        if let Some(exp) = &self.cfg.expected_peer {
            if !exp.eq_ignore_ascii_case(&cea.origin_host) {
                self.go_down(
                    now,
                    DownReason::CapabilitiesRejected(ResultCode::UnknownPeer.code()),
                );
                return;
            }
        }
        let theirs = advertised(
            &cea.auth_application_id,
            &cea.acct_application_id,
            &cea.vendor_specific_application_id,
        );
        let common = self.common_applications(&theirs);
        if common.is_empty() {
            self.go_down(
                now,
                DownReason::CapabilitiesRejected(ResultCode::NoCommonApplication.code()),
            );
            return;
        }
        let tls = if self.secure[Side::Initiator.index()] {
            false
        } else {
            match self.cfg.inband_security.agree(&cea.inband_security_id) {
                Some(tls) => tls,
                None => {
                    self.go_down(
                        now,
                        DownReason::CapabilitiesRejected(ResultCode::NoCommonSecurity.code()),
                    );
                    return;
                }
            }
        };
        let info = RemoteInfo {
            origin_host: cea.origin_host.into_owned(),
            origin_realm: cea.origin_realm.into_owned(),
            product_name: cea.product_name.into_owned(),
            origin_state_id: cea.origin_state_id,
            common_applications: common,
            advertised_applications: theirs,
        };
        if self.state == PeerState::WaitReturns {
            // I-Rcv-CEA: R-Disc
            self.held_cer = None;
            self.close_side(Side::Responder);
        }
        if tls {
            self.start_tls(now, Side::Initiator, info);
        } else {
            self.open(now, Side::Initiator, info);
        }
    }
}

/// Elect (RFC 6733 §5.6.4): true when our Origin-Host lexicographically succeeds the peer's,
/// both compared as octet strings with the ASCII letters compared without case (DiameterIdentities
/// are DNS names), so both sides of a simultaneous connect reach opposite results even when their
/// identities differ only in case of some letters.
fn wins_election(local: &str, remote: &str) -> bool {
    let lower = |s: &str| {
        s.bytes()
            .map(|b| b.to_ascii_lowercase())
            .collect::<Vec<u8>>()
    };
    lower(local) > lower(remote)
}

/// The Application-Ids a CER/CEA/CUR advertises (RFC 6737 §3: the Vendor-Id of a
/// Vendor-Specific-Application-Id plays no part).
fn advertised(auth: &[u32], acct: &[u32], vsai: &[VendorSpecificApplicationId<'_>]) -> Vec<u32> {
    auth.iter()
        .chain(acct)
        .copied()
        .chain(vsai.iter().flat_map(|v| {
            v.auth_application_id
                .into_iter()
                .chain(v.acct_application_id)
        }))
        .collect()
}

/// A minimal answer to `request` with this Result-Code (E bit for 3xxx): Session-Id (copied),
/// Origin-Host, Origin-Realm, Origin-State-Id, Result-Code, and the Proxy-Info AVPs copied
/// (RFC 6733 §7.2 answer-message). Used for 3002, 3003, 3005 and the like by agents and nodes.
pub fn result_answer(request: &Message<'_>, result_code: u32, origin: &Origin<'_>) -> Vec<u8> {
    let mut h = request.header().answer();
    if result_code / 1000 == 3 {
        h.flags.0 |= Flags::ERROR;
    }
    let mut v = Vec::with_capacity(128);
    crate::encode::encode_message(&mut v, &h, |e| {
        if let Some(s) = request.find(dict::SESSION_ID) {
            e.copy(&s);
        }
        e.utf8(dict::ORIGIN_HOST, origin.host);
        e.utf8(dict::ORIGIN_REALM, origin.realm);
        if let Some(s) = origin.state_id {
            e.u32(dict::ORIGIN_STATE_ID, s);
        }
        e.u32(dict::RESULT_CODE, result_code);
        for p in request.find_all(dict::PROXY_INFO) {
            e.copy(&p);
        }
    });
    v
}

/// What [`Duplicates::check`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Duplicate {
    /// Not seen before: handle it (and call [`Duplicates::answered`] with the answer).
    New,
    /// Seen and still being handled: drop this copy.
    InProgress,
    /// Seen and answered: send this answer again (its Hop-by-Hop Identifier must be set to the
    /// new request's, which [`Duplicates::check`] does).
    Answered(Bytes),
}

/// Duplicate request detection (RFC 6733 §6.1.9, RFC 3539 §3.6): requests are remembered by
/// (Origin-Host, End-to-End Identifier) for `window` (RFC 6733 suggests at least the failover
/// time; 4 minutes by default), with the answer once it is sent. One per node, shared by peers,
/// since a retransmission after failover arrives from another peer.
///
/// Origin-Host is compared without ASCII case; each origin's name is stored once (lower case,
/// shared by its entries and the expiry queue), so a request from an origin already known
/// allocates no name (and none at all when its Origin-Host is already lower case).
#[derive(Debug)]
pub struct Duplicates {
    window: Duration,
    max: usize,
    /// Per origin (lower-case name), its End-to-End Identifiers seen: when, and the answer.
    seen: crate::fasthash::FastMap<Arc<str>, crate::fasthash::FastMap<u32, Seen>>,
    /// How many requests `seen` holds.
    count: usize,
    /// Arrival order, for expiry (the name shared with `seen`'s key).
    order: VecDeque<(Instant, Arc<str>, u32)>,
}

/// When a request was seen, and its answer once sent.
type Seen = (Instant, Option<Bytes>);

/// A table holding `len` entries in room for `capacity` is worth shrinking: at most a quarter
/// used, and big enough for the copy to matter (halving the room at most every time it
/// quarters keeps the cost of shrinking proportional to what was removed).
fn sparse(len: usize, capacity: usize) -> bool {
    capacity > 1024 && len <= capacity / 4
}

/// `host` in lower case, borrowed when it already is.
fn lower_host(host: &str) -> Cow<'_, str> {
    if host.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(host.to_ascii_lowercase())
    } else {
        Cow::Borrowed(host)
    }
}

impl Default for Duplicates {
    fn default() -> Self {
        Duplicates::new(Duration::from_secs(240), 100_000)
    }
}

impl Duplicates {
    /// Remember requests for `window`, at most `max` of them (the oldest are forgotten first).
    pub fn new(window: Duration, max: usize) -> Duplicates {
        Duplicates {
            window,
            max: max.max(1),
            seen: crate::fasthash::FastMap::default(),
            count: 0,
            order: VecDeque::new(),
        }
    }

    /// Forgets the requests older than the window (and the oldest beyond `max`), and gives
    /// back the memory of tables left sparse by a burst. [`Duplicates::check`] does this on
    /// each request; a node calls it on its timers as well, so what a burst left behind is
    /// freed when the requests stop too.
    pub fn expire(&mut self, now: Instant) {
        let mut popped = false;
        while let Some((t, _, _)) = self.order.front() {
            if now.saturating_duration_since(*t) < self.window && self.order.len() <= self.max {
                break;
            }
            popped = true;
            if let Some((t, h, e)) = self.order.pop_front() {
                if let Some(m) = self.seen.get_mut(&h) {
                    if m.get(&e).is_some_and(|v| v.0 == t) {
                        m.remove(&e);
                        self.count -= 1;
                        if m.is_empty() {
                            self.seen.remove(&h);
                        } else if sparse(m.len(), m.capacity()) {
                            m.shrink_to(m.len() * 2);
                        }
                    }
                }
            }
        }
        if popped && sparse(self.order.len(), self.order.capacity()) {
            self.order.shrink_to(self.order.len() * 2);
        }
    }

    /// Checks a received request. Requests without Origin-Host are always new.
    pub fn check(&mut self, now: Instant, request: &Message<'_>) -> Duplicate {
        self.check_origin(
            now,
            request.origin_host(),
            request.end_to_end(),
            request.hop_by_hop(),
        )
    }

    /// [`Duplicates::check`] of a request whose Origin-Host (`None`: none or not valid),
    /// End-to-End and Hop-by-Hop Identifiers the caller already read.
    pub fn check_origin(
        &mut self,
        now: Instant,
        origin_host: Option<&str>,
        end_to_end: u32,
        hop_by_hop: u32,
    ) -> Duplicate {
        self.expire(now);
        let Some(host) = origin_host else {
            return Duplicate::New;
        };
        let host = lower_host(host);
        let name = match self.seen.get_key_value(&*host) {
            Some((name, m)) => match m.get(&end_to_end) {
                Some((_, None)) => return Duplicate::InProgress,
                Some((_, Some(a))) => {
                    let mut b = BytesMut::from(&a[..]);
                    if b.len() >= 16 {
                        b[12..16].copy_from_slice(&hop_by_hop.to_be_bytes());
                    }
                    return Duplicate::Answered(b.freeze());
                }
                None => Arc::clone(name),
            },
            None => Arc::from(&*host),
        };
        self.order.push_back((now, Arc::clone(&name), end_to_end));
        self.seen
            .entry(name)
            .or_default()
            .insert(end_to_end, (now, None));
        self.count += 1;
        self.expire(now);
        Duplicate::New
    }

    /// Forgets every request of `origin_host` (compared without case), e.g. when it restarted
    /// with lost state (a new Origin-State-Id, RFC 6733 §8.16): it cannot retransmit what it
    /// sent before, so a reused End-to-End Identifier is a new request. Returns how many were
    /// forgotten.
    pub fn forget_origin(&mut self, origin_host: &str) -> usize {
        let n = self
            .seen
            .remove(&*lower_host(origin_host))
            .map_or(0, |m| m.len());
        self.count -= n;
        n
    }

    /// Records the answer sent to `request` so a duplicate gets it again.
    pub fn answered(&mut self, request: &Message<'_>, answer: Bytes) {
        self.answered_origin(request.origin_host(), request.end_to_end(), answer);
    }

    /// [`Duplicates::answered`] with the request's Origin-Host and End-to-End Identifier (the
    /// name is looked up as it is, lower-cased only when it has upper-case letters).
    pub fn answered_origin(&mut self, origin_host: Option<&str>, end_to_end: u32, answer: Bytes) {
        let Some(host) = origin_host else {
            return;
        };
        if let Some(v) = self
            .seen
            .get_mut(&*lower_host(host))
            .and_then(|m| m.get_mut(&end_to_end))
        {
            v.1 = Some(answer);
        }
    }

    /// How many requests are remembered.
    pub fn len(&self) -> usize {
        self.count
    }

    /// True when none is remembered.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }
}

/// End-to-End Identifiers (RFC 6733 §3): the high 12 bits from the low bits of the time the node
/// started, the low 20 bits a counter from a random start, so identifiers stay unique across
/// reboots for at least 4 minutes.
#[derive(Debug, Clone)]
pub struct EndToEnd {
    next: u32,
}

impl EndToEnd {
    /// `unix_secs`: the node's start time; `random`: any random value.
    pub fn new(unix_secs: u64, random: u32) -> EndToEnd {
        EndToEnd {
            next: ((unix_secs as u32 & 0xfff) << 20) | (random & 0x000f_ffff),
        }
    }

    /// The next identifier.
    pub fn next_id(&mut self) -> u32 {
        let v = self.next;
        self.next = (v & 0xfff0_0000) | (v.wrapping_add(1) & 0x000f_ffff);
        v
    }
}

#[cfg(test)]
mod tests;
