//! The error type of the crate.

use ims_sip::ParseError;

/// What went wrong when the transaction user or the network handed the layer something unusable.
///
/// Network input that cannot be matched to a transaction (a request without a Via branch, a
/// response without a CSeq) is reported here so the caller can drop it or answer 400 statelessly;
/// the state machines are never left inconsistent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TxnError {
    /// A header needed to identify the transaction is missing (RFC 3261 §8.1.1: Via, CSeq, Call-ID,
    /// From, To).
    #[error("missing {0} header")]
    MissingHeader(&'static str),
    /// A header needed to identify the transaction does not parse.
    #[error("bad header: {0}")]
    Parse(#[from] ParseError),
    /// A request was expected (a response was given).
    #[error("a request was expected")]
    NotARequest,
    /// A response was expected (a request was given).
    #[error("a response was expected")]
    NotAResponse,
    /// The TU asked to create a client transaction for ACK; ACK for a 2xx is sent statelessly
    /// (RFC 3261 §17.1.1.3 / §13.2.2.4), ACK for non-2xx is made by the transaction itself.
    #[error("ACK does not create a client transaction")]
    AckTransaction,
    /// No transaction with this id exists (it terminated, or never existed).
    #[error("no such transaction")]
    NoSuchTransaction,
    /// A transaction with the same key already exists (the TU reused a branch).
    #[error("a transaction with this branch and method already exists")]
    Duplicate,
    /// The message does not fit the transaction or its state (a 1xx after a final response, a
    /// response on a client transaction, a response whose CSeq does not match).
    #[error("invalid in this transaction state: {0}")]
    InvalidState(&'static str),
    /// The dialog layer refused the message (wrong Call-ID/tags, CSeq out of order, ...).
    #[error("dialog: {0}")]
    Dialog(&'static str),
}
