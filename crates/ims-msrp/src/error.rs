//! The one error type of the crate: what went wrong and where, and the MSRP status that answers it.

use core::fmt;

/// What was wrong. Each variant names the RFC 4975 §9 grammar element or the limit that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The start line is not `MSRP SP transact-id SP (method / status-code [SP comment])`.
    StartLine,
    /// The transaction id is not an `ident` (4 to 32 of `[A-Za-z0-9.+%=-]`, alphanumeric first).
    TransactionId,
    /// The start line's transaction id cannot delimit a frame: empty, longer than
    /// `Limits::max_tid_len`, a non-printable byte, or not an `ident` with
    /// `Limits::strict_transaction_id`. The stream is lost.
    UnframeableTransactionId,
    /// A line ends in a bare LF: MSRP lines end in CRLF.
    BareLf,
    /// A header line has no `:` after its name.
    HeaderColon,
    /// A header name is not a token.
    HeaderName,
    /// A header value has a control character or is not UTF-8.
    HeaderValue,
    /// The first header is not To-Path or the second is not From-Path (RFC 4975 §7.1).
    PathOrder,
    /// A mandatory header is missing; the text names it.
    Missing(&'static str),
    /// A typed header value does not match its grammar; the text names the header.
    Syntax(&'static str),
    /// A number does not fit its field (Byte-Range beyond u64, port > 65535, ...).
    Overflow(&'static str),
    /// A Byte-Range that is syntactically fine but wrong: start 0, end before start.
    ByteRange,
    /// An MSRP URI does not match RFC 4975 §9 `MSRP-URI`; the text says which part.
    Uri(&'static str),
    /// A body without a Content-Type header (RFC 4975 §7.1 `content-stuff`).
    BodyWithoutContentType,
    /// A response carrying a body (responses have none, RFC 4975 §7.2).
    ResponseWithBody,
    /// The header section is larger than `Limits::max_head_size`.
    HeadTooLarge,
    /// A header line longer than `Limits::max_header_len`.
    HeaderTooLong,
    /// More headers than `Limits::max_headers`.
    TooManyHeaders,
    /// A chunk body larger than `Limits::max_chunk_size` without an end-line: the stream is lost.
    ChunkTooLarge,
    /// The data ends in the middle of a frame (only from the one-shot parsers).
    Incomplete,
    /// A CPIM (RFC 3862) or IMDN (RFC 5438) body does not match its grammar.
    Body(&'static str),
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ErrorKind::StartLine => f.write_str("invalid start line"),
            ErrorKind::TransactionId => f.write_str("invalid transaction id"),
            ErrorKind::UnframeableTransactionId => {
                f.write_str("transaction id cannot delimit a frame")
            }
            ErrorKind::BareLf => f.write_str("line ends in LF without CR"),
            ErrorKind::HeaderColon => f.write_str("missing ':' after header name"),
            ErrorKind::HeaderName => f.write_str("invalid header name"),
            ErrorKind::HeaderValue => f.write_str("invalid byte in header value"),
            ErrorKind::PathOrder => {
                f.write_str("To-Path and From-Path must be the first two headers")
            }
            ErrorKind::Missing(h) => write!(f, "missing {h} header"),
            ErrorKind::Syntax(h) => write!(f, "invalid {h}"),
            ErrorKind::Overflow(h) => write!(f, "{h} out of range"),
            ErrorKind::ByteRange => f.write_str("Byte-Range start is 0 or end is before start"),
            ErrorKind::Uri(what) => write!(f, "invalid MSRP URI: {what}"),
            ErrorKind::BodyWithoutContentType => f.write_str("body without Content-Type"),
            ErrorKind::ResponseWithBody => f.write_str("response with a body"),
            ErrorKind::HeadTooLarge => f.write_str("header section too large"),
            ErrorKind::HeaderTooLong => f.write_str("header line too long"),
            ErrorKind::TooManyHeaders => f.write_str("too many headers"),
            ErrorKind::ChunkTooLarge => {
                f.write_str("chunk larger than the limit without an end-line")
            }
            ErrorKind::Incomplete => f.write_str("incomplete frame"),
            ErrorKind::Body(what) => write!(f, "invalid {what} body"),
        }
    }
}

/// A parse or validation error: its [`ErrorKind`] and the byte offset where it was found (from the
/// start of the frame, of the URI or of the body that was being parsed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[error("{kind} at byte {offset}")]
pub struct Error {
    /// What was wrong.
    pub kind: ErrorKind,
    /// Where, in bytes from the start of the parsed input.
    pub offset: usize,
}

impl Error {
    /// An error of `kind` at `offset`.
    pub const fn new(kind: ErrorKind, offset: usize) -> Error {
        Error { kind, offset }
    }

    /// True when the byte stream cannot be delimited any more after this error, so the connection
    /// must be closed (no response can be framed, RFC 4975 §7.1).
    pub fn is_fatal(&self) -> bool {
        matches!(
            self.kind,
            ErrorKind::StartLine
                | ErrorKind::UnframeableTransactionId
                | ErrorKind::BareLf
                | ErrorKind::HeadTooLarge
                | ErrorKind::HeaderTooLong
                | ErrorKind::TooManyHeaders
                | ErrorKind::ChunkTooLarge
        )
    }

    /// The MSRP status a receiver answers a request that failed this way with: 400 for every
    /// syntax fault, 413 for a chunk that is too large.
    pub fn status(&self) -> u16 {
        match self.kind {
            ErrorKind::ChunkTooLarge => 413,
            _ => 400,
        }
    }
}
