//! The one error type of the crate: what failed, and which SIP answer it calls for.

use core::fmt;

/// Why a challenge, credentials, nonce or AKA value was rejected.
///
/// [`AuthError::sip_status`] names the response a registrar or proxy sends back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// The header value does not match the `challenge` / `credentials` grammar (RFC 3261 §25.1).
    #[error("malformed auth header: {0}")]
    Syntax(ims_sip::ParseError),
    /// The auth-scheme is not `Digest`.
    #[error("auth-scheme {0:?} is not Digest")]
    NotDigest(String),
    /// A parameter the operation needs is absent.
    #[error("missing digest parameter {0}")]
    MissingParam(&'static str),
    /// A parameter is present more than once, or its value is not what its grammar allows.
    #[error("invalid digest parameter {0}")]
    BadParam(&'static str),
    /// The `algorithm` is not one this crate computes (the value as received).
    #[error("unsupported digest algorithm {0:?}")]
    UnsupportedAlgorithm(String),
    /// The credentials name another realm, algorithm or nonce kind than the server issued.
    #[error("credentials do not match the challenge: {0}")]
    Mismatch(&'static str),
    /// The nonce was not issued by this server (bad integrity tag, bad encoding, wrong realm).
    #[error("nonce was not issued by this server")]
    InvalidNonce,
    /// The nonce is genuine and the response right, but the nonce has expired: challenge
    /// again with `stale=true` (RFC 7616 §3.3) so the client retries without asking its user.
    #[error("nonce is stale")]
    Stale,
    /// The `response` does not match: wrong password, or tampered request.
    #[error("digest response does not match")]
    WrongResponse,
    /// The nonce-count did not increase: a replayed request (RFC 7616 §3.4).
    #[error("nonce count {nc:08x} replayed (last accepted {last:08x})")]
    Replay {
        /// The nc of the rejected request.
        nc: u32,
        /// The highest nc accepted so far for that nonce.
        last: u32,
    },
    /// The credentials have no `qop`, and this server requires one (RFC 2069 compatibility
    /// mode cannot detect replays).
    #[error("qop required")]
    QopRequired,
    /// AKA: the MAC in AUTN (MAC-A, f1) or in AUTS (MAC-S, f1*) is wrong (TS 33.102 §6.3.3).
    #[error("AKA MAC verification failed")]
    MacFailure,
    /// A binary field has the wrong length.
    #[error("{what}: expected {expected} octets, got {got}")]
    Length {
        /// Which field.
        what: &'static str,
        /// The length the spec fixes.
        expected: usize,
        /// The length received.
        got: usize,
    },
    /// A value is not valid base64 (RFC 4648 §4) or hex.
    #[error("invalid {0} encoding")]
    Encoding(&'static str),
    /// The `rspauth` of an Authentication-Info header is not what the server sharing our
    /// secret would have computed (RFC 2617 §3.2.3, RFC 7616 §3.5): the response is not
    /// authenticated. A client-side error.
    #[error("rspauth does not match: the server is not authenticated")]
    RspauthMismatch,
    /// With `charset=UTF-8`, the user name or password is refused by its PRECIS profile
    /// (RFC 7616 §4, RFC 8265): see [`crate::precis`].
    #[error("{what} refused by PRECIS: {error}")]
    Precis {
        /// `username` or `password`.
        what: &'static str,
        /// Why.
        error: crate::precis::PrecisError,
    },
}

impl AuthError {
    /// The SIP status a server answers with (RFC 3261 §22, TS 24.229 §5.4.1.2):
    /// a new challenge (401) when the client can retry, 403 when it used the wrong secret,
    /// 400 for a malformed header.
    pub fn sip_status(&self) -> u16 {
        match self {
            AuthError::Syntax(_)
            | AuthError::NotDigest(_)
            | AuthError::MissingParam(_)
            | AuthError::BadParam(_)
            | AuthError::Length { .. }
            | AuthError::Encoding(_)
            | AuthError::Precis { .. } => 400,
            AuthError::WrongResponse | AuthError::MacFailure | AuthError::RspauthMismatch => 403,
            AuthError::UnsupportedAlgorithm(_)
            | AuthError::Mismatch(_)
            | AuthError::InvalidNonce
            | AuthError::Stale
            | AuthError::Replay { .. }
            | AuthError::QopRequired => 401,
        }
    }
    /// True when the next challenge should carry `stale=true`.
    pub fn is_stale(&self) -> bool {
        matches!(self, AuthError::Stale)
    }
}

impl From<ims_sip::ParseError> for AuthError {
    fn from(e: ims_sip::ParseError) -> Self {
        AuthError::Syntax(e)
    }
}

/// Writes `bytes` as lowercase hex.
pub(crate) struct Hex<'a>(pub(crate) &'a [u8]);

impl fmt::Display for Hex<'_> {
    /// Up to 32 bytes per `write_str` through a stack buffer (a `write!` per byte was ≈290
    /// instructions a byte: CK/IK and digests are written on every registration).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut buf = [0u8; 64];
        for chunk in self.0.chunks(32) {
            for (i, &b) in chunk.iter().enumerate() {
                buf[2 * i] = DIGITS[usize::from(b >> 4)];
                buf[2 * i + 1] = DIGITS[usize::from(b & 15)];
            }
            let text = std::str::from_utf8(&buf[..2 * chunk.len()]).map_err(|_| fmt::Error)?;
            f.write_str(text)?;
        }
        Ok(())
    }
}
