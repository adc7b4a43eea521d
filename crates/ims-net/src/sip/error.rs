//! The error type of the SIP endpoint.

use ims_txn::TxnError;

/// What went wrong in the SIP endpoint: binding sockets, resolving a target, a request the
/// transaction layer refused, a transaction that failed on the wire.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NetError {
    /// A socket operation failed (bind, connect, read, write).
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
    /// The transaction or dialog layer refused the operation.
    #[error("transaction layer: {0}")]
    Txn(#[from] TxnError),
    /// A message could not be built or parsed.
    #[error("SIP syntax: {0}")]
    Parse(#[from] ims_sip::ParseError),
    /// No final response arrived in time (RFC 3261 Timer B or F).
    #[error("transaction timed out (no final response before Timer B/F)")]
    Timeout,
    /// The transport could not deliver the request (RFC 3261 §17.1.4: connection refused, reset).
    #[error("transport error")]
    Transport,
    /// RFC 3263 server location found no target for the URI.
    #[error("no server found for {0}")]
    NotFound(String),
    /// The URI cannot be resolved (not a SIP or SIPS URI, bad host).
    #[error("cannot resolve {0}")]
    BadUri(String),
    /// The endpoint is configured without the transport the target needs.
    #[error("transport {0} is not enabled on this endpoint")]
    TransportDisabled(ims_txn::Transport),
    /// The endpoint task has stopped (shut down or panicked).
    #[error("the endpoint has stopped")]
    Closed,
}
