//! The one error type of the crate: what went wrong, at which byte, in which header.

use crate::HeaderName;
use core::fmt;

/// What a parser found wrong. Every variant names the grammar element (RFC 3261 §25) that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The start line is neither a Request-Line nor a Status-Line.
    StartLine,
    /// The Method token of a Request-Line.
    Method,
    /// The Request-URI (RFC 3261 §25.1 `Request-URI`).
    RequestUri,
    /// `SIP-Version` is not `SIP/<digits>.<digits>`.
    Version,
    /// The Status-Code is not exactly three digits.
    StatusCode,
    /// The Reason-Phrase has a control character.
    ReasonPhrase,
    /// A header field name is not a token.
    HeaderName,
    /// A header line has no `:` after its name.
    HeaderColon,
    /// A header value has a bad character (a lone CR, a control byte) or bad UTF-8.
    HeaderValue,
    /// A line ends in a bare LF (allowed only with `ParserConfig::allow_lf_line_endings`).
    BareLf,
    /// A lone CR not followed by LF.
    BareCr,
    /// The Content-Length value is not a non-negative decimal integer.
    ContentLength,
    /// Two Content-Length headers disagree, so the body cannot be framed.
    ContentLengthConflict,
    /// Content-Length is larger than the bytes that follow the header section in a datagram.
    BodyTruncated,
    /// A message on a stream transport has no Content-Length (RFC 3261 §18.3).
    MissingContentLength,
    /// The header section does not end with an empty line.
    UnterminatedHeaders,
    /// The message is larger than `Limits::max_message_size`.
    MessageTooLarge,
    /// More headers than `Limits::max_headers`.
    TooManyHeaders,
    /// A header line longer than `Limits::max_header_len`.
    HeaderTooLong,
    /// A URI longer than `Limits::max_uri_len`.
    UriTooLong,
    /// A body larger than `Limits::max_body_size`.
    BodyTooLarge,
    /// Multipart bodies nested deeper than `Limits::max_multipart_depth`.
    MultipartTooDeep,
    /// More body parts than `Limits::max_multipart_parts`.
    TooManyParts,
    /// A multipart body without its boundary delimiters (RFC 2046 §5.1.1).
    Multipart,
    /// A typed value did not match its grammar; the text names the element that was expected.
    Syntax(&'static str),
    /// A number is larger than its field allows (CSeq > 2^31-1, port > 65535, Max-Forwards > 255, ...).
    Overflow(&'static str),
    /// A header that the operation needs is absent.
    Missing,
    /// The input is empty.
    Empty,
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            ErrorKind::StartLine => "invalid start line",
            ErrorKind::Method => "invalid method token",
            ErrorKind::RequestUri => "invalid Request-URI",
            ErrorKind::Version => "invalid SIP-Version",
            ErrorKind::StatusCode => "Status-Code is not three digits",
            ErrorKind::ReasonPhrase => "invalid Reason-Phrase",
            ErrorKind::HeaderName => "invalid header name",
            ErrorKind::HeaderColon => "missing ':' after header name",
            ErrorKind::HeaderValue => "invalid byte in header value",
            ErrorKind::BareLf => "line ends in LF without CR",
            ErrorKind::BareCr => "CR not followed by LF",
            ErrorKind::ContentLength => "invalid Content-Length",
            ErrorKind::ContentLengthConflict => "conflicting Content-Length values",
            ErrorKind::BodyTruncated => "Content-Length larger than the message",
            ErrorKind::MissingContentLength => "Content-Length is mandatory on stream transports",
            ErrorKind::UnterminatedHeaders => "header section not terminated by an empty line",
            ErrorKind::MessageTooLarge => "message exceeds the size limit",
            ErrorKind::TooManyHeaders => "too many headers",
            ErrorKind::HeaderTooLong => "header line exceeds the length limit",
            ErrorKind::UriTooLong => "URI exceeds the length limit",
            ErrorKind::BodyTooLarge => "body exceeds the size limit",
            ErrorKind::MultipartTooDeep => "multipart nesting exceeds the limit",
            ErrorKind::TooManyParts => "too many multipart body parts",
            ErrorKind::Multipart => "malformed multipart body",
            ErrorKind::Syntax(what) => return write!(f, "syntax error: expected {what}"),
            ErrorKind::Overflow(what) => return write!(f, "{what} out of range"),
            ErrorKind::Missing => "missing header",
            ErrorKind::Empty => "empty input",
        };
        f.write_str(s)
    }
}

/// A parse failure: the kind, the byte offset from the start of the input, and the header it was in.
///
/// `Copy` and allocation-free, so rejecting hostile input costs nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub struct ParseError {
    /// What was wrong.
    pub kind: ErrorKind,
    /// Byte offset from the start of the parsed input (the message, or the value for a lone typed parse).
    pub offset: usize,
    /// The header whose line or value failed, if the error is inside one.
    pub header: Option<HeaderName>,
}

impl ParseError {
    pub(crate) const fn new(kind: ErrorKind, offset: usize) -> Self {
        ParseError {
            kind,
            offset,
            header: None,
        }
    }
    pub(crate) const fn syntax(what: &'static str, offset: usize) -> Self {
        ParseError {
            kind: ErrorKind::Syntax(what),
            offset,
            header: None,
        }
    }
    /// Shifts the offset by `base` and names the header, used when a value parser's error is lifted
    /// into the message.
    pub(crate) fn within(mut self, header: HeaderName, base: usize) -> Self {
        self.offset += base;
        if self.header.is_none() {
            self.header = Some(header);
        }
        self
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at byte {}", self.kind, self.offset)?;
        if let Some(h) = self.header {
            write!(f, " in {h}")?;
        }
        Ok(())
    }
}
