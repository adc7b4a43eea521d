//! In-process hand-off between endpoints of one process: a datagram addressed to the UDP
//! address of another endpoint sharing the same [`LocalLinks`] is handed to that endpoint's task
//! as the same bytes, instead of going through the kernel (`sendto` + `recvfrom` + a wake-up).
//! When the sender still holds the message it sent in parsed form (a proxy's forwarded requests
//! and relayed or built responses), that goes along, and the receiver takes it instead of
//! parsing the bytes again — only when its own parse of those bytes would give exactly that
//! message ([`ims_sip::OwnedMessage::is_datagram_parse_with`]: its limits and leniency).
//!
//! The receiving endpoint treats it exactly as a datagram from the sender's UDP address: it is
//! parsed (or taken as parsed), its top Via gets `received`/`rport` as RFC 3581 says, and
//! responses go back the same way. Only UDP is handed over (a request the core sends over TCP, e.g. above the MTU limit,
//! takes the socket), and only between endpoints that were bound with the same table, so traffic
//! toward every other peer is untouched.

use super::transport::Inbound;
use bytes::Bytes;
use ims_sip::OwnedMessage;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use tokio::sync::mpsc;

/// A table of co-located endpoints by UDP address, shared by the endpoints of one process (for
/// example the P-, I- and S-CSCF roles of an all-in-one IMS core) that should hand their
/// datagrams to each other in memory.
///
/// Put a clone in each endpoint's [`super::EndpointConfig::local`]: an endpoint bound with UDP
/// registers its address (removed again when it stops), and a datagram one of them sends to a
/// registered address reaches that endpoint's task without a socket. The bytes are exactly those
/// the socket would have carried (Via, Path, Record-Route and the rest unchanged). An endpoint
/// bound to a wildcard address (`0.0.0.0`, `::`) takes no part: the address its peers see as the
/// source is not known there.
///
/// The endpoints of one table trust each other's syntax: what one hands over was written by the
/// ims-sip encoder of an element of this process, so a receiving proxy applies only its own
/// configuration's checks to it ([`ims_sip::validate_policy`]: size, scheme, Max-Forwards,
/// Proxy-Require), not the full syntax walk of [`ims_sip::validate`]. Put only endpoints whose
/// traffic you trust in one table.
#[derive(Debug, Clone, Default)]
pub struct LocalLinks {
    /// (address, inbound channel), one entry per address: a process has a handful of
    /// co-located endpoints, so a scan beats hashing the address at every hand-off.
    peers: Arc<RwLock<Peers>>,
}

type Peers = Vec<(SocketAddr, mpsc::UnboundedSender<Inbound>)>;

fn find(p: &Peers, at: SocketAddr) -> Option<&mpsc::UnboundedSender<Inbound>> {
    p.iter().find(|(a, _)| *a == at).map(|(_, tx)| tx)
}

impl LocalLinks {
    /// An empty table.
    pub fn new() -> LocalLinks {
        LocalLinks::default()
    }

    /// The addresses registered now.
    pub fn addresses(&self) -> Vec<SocketAddr> {
        self.peers
            .read()
            .map(|p| p.iter().map(|(a, _)| *a).collect())
            .unwrap_or_default()
    }

    pub(crate) fn register(&self, at: SocketAddr, tx: mpsc::UnboundedSender<Inbound>) {
        if let Ok(mut p) = self.peers.write() {
            match p.iter_mut().find(|(a, _)| *a == at) {
                Some(e) => e.1 = tx,
                None => p.push((at, tx)),
            }
        }
    }

    /// Removes `at` if it is still the endpoint whose inbound channel is `tx`.
    pub(crate) fn unregister(&self, at: SocketAddr, tx: &mpsc::UnboundedSender<Inbound>) {
        if let Ok(mut p) = self.peers.write() {
            p.retain(|(a, t)| !(*a == at && t.same_channel(tx)));
        }
    }

    /// Whether an endpoint is registered at `to`.
    pub(crate) fn has(&self, to: SocketAddr) -> bool {
        self.peers.read().is_ok_and(|p| find(&p, to).is_some())
    }

    /// Hands `bytes` from `from` to the endpoint registered at `to` — as `parsed`, the message
    /// they are, when the sender has it; gives the bytes back when there is none (or it
    /// stopped): the caller sends them on the socket.
    pub(crate) fn hand_over(
        &self,
        to: SocketAddr,
        from: SocketAddr,
        bytes: Bytes,
        parsed: Option<OwnedMessage>,
    ) -> Option<Bytes> {
        let tx = match self.peers.read() {
            Ok(p) => match find(&p, to) {
                Some(tx) => tx.clone(),
                None => return Some(bytes),
            },
            Err(_) => return Some(bytes),
        };
        let what = match parsed {
            // the message must be these very bytes
            Some(m) if m.bytes().as_ptr() == bytes.as_ptr() && m.bytes().len() == bytes.len() => {
                Inbound::Parsed(m, from)
            }
            _ => Inbound::Datagram(bytes, from),
        };
        match tx.send(what) {
            Ok(()) => None,
            Err(mpsc::error::SendError(Inbound::Datagram(b, _))) => Some(b),
            Err(mpsc::error::SendError(Inbound::Parsed(m, _))) => Some(m.bytes().clone()),
            Err(_) => None,
        }
    }
}

/// Removes the endpoint's entry when its task ends.
pub(crate) struct Registration {
    pub(crate) links: LocalLinks,
    pub(crate) at: SocketAddr,
    pub(crate) tx: mpsc::UnboundedSender<Inbound>,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.links.unregister(self.at, &self.tx);
    }
}
