//! HTTP Digest for SIP (RFC 2617, RFC 7616, RFC 8760) and IMS-AKA (RFC 3310, RFC 4169) with
//! MILENAGE (3GPP TS 35.206).
//!
//! Sans-IO: time and randomness come in as arguments, nothing reads a clock or a socket.
//! Secrets are compared in constant time and never printed by `Debug`.
//!
//! ```
//! use ims_auth::{aka, digest, Algorithm, Challenge, Credentials, DigestServer, NonceCounts, Secret};
//! use ims_auth::milenage::{Milenage, OperatorKey};
//! use std::time::Duration;
//!
//! let now = Duration::from_secs(1_700_000_000); // since the caller's epoch
//! let server = DigestServer::new(b"a 32-octet secret shared by the S-CSCFs");
//! let mut counts = NonceCounts::new(10_000);
//!
//! // Digest MD5: 401 with a challenge, the UAC answers, the registrar verifies
//! let ch = server.challenge("ims.example.com", Algorithm::Md5, now, &[7; 16])?;
//! let www = ch.to_string(); // the WWW-Authenticate value
//! let req = digest::Request { method: "REGISTER", uri: "sip:ims.example.com", body: b"", cnonce: "0a4f113b", nc: 1 };
//! let auth = digest::answer(&Challenge::parse(&www)?, "alice@ims.example.com", b"secret", &req)?.to_string();
//! let creds = Credentials::parse(&auth)?;
//! server.verify(&creds, "REGISTER", b"", Secret::Password(b"secret"), now, Some(&mut counts))?;
//! // the same request again is a replay
//! assert!(server.verify(&creds, "REGISTER", b"", Secret::Password(b"secret"), now, Some(&mut counts)).is_err());
//!
//! // IMS-AKA: the HSS side makes a vector, the S-CSCF challenges with AKAv1-MD5
//! let k = [0x46; 16];
//! let hss = Milenage::new(&k, OperatorKey::Op([0xcd; 16]));
//! let mut sqn = aka::SqnGenerator::new(aka::DEFAULT_IND_BITS);
//! let av = aka::AuthVector::generate(&hss, [0x23; 16], sqn.next_sqn(), [0x80, 0x00]);
//! let ch = server.aka_challenge("ims.example.com", Algorithm::AkaV1Md5, &av, now)?.to_string();
//!
//! // the UE (its USIM holds K and OP) checks AUTN and answers with RES as the password
//! let mut usim = aka::Usim::new(Milenage::new(&k, OperatorKey::Op([0xcd; 16])), aka::DEFAULT_IND_BITS);
//! let (creds, keys) = digest::answer_aka(&Challenge::parse(&ch)?, &mut usim, "001010000000001@ims.example.com", &req)?;
//! assert_eq!(keys.unwrap().ck, av.ck);
//! let password = digest::aka_password(Algorithm::AkaV1Md5, &av).unwrap();
//! server.verify(&creds, "REGISTER", b"", Secret::Password(&password), now, Some(&mut counts))?;
//! # Ok::<(), ims_auth::AuthError>(())
//! ```
//!
//! # Shape
//! - [`digest`]: [`Challenge`] and [`Credentials`] parse and print header values;
//!   [`digest::answer`] / [`digest::answer_aka`] are the UAC; [`DigestServer`] issues stateless
//!   nonces (expiry + HMAC tag) and verifies, with [`NonceCounts`] for replays.
//! - [`milenage`]: f1, f1*, f2, f3, f4, f5, f5* with OP or OPc.
//! - [`aka`]: vectors, SQN management (TS 33.102 Annex C), USIM, resynchronisation, AKA nonces
//!   and the AKAv2 password.
//! - [`encoding`]: base64, hex, constant-time comparison.
//! - [`precis`]: RFC 8265 preparation of user names and passwords for `charset=UTF-8`.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod aka;
pub mod digest;
pub mod encoding;
mod error;
pub mod milenage;
pub mod precis;

pub use digest::{
    Algorithm, AuthenticationInfo, Challenge, Credentials, DigestClient, DigestServer, KeptNonce,
    NonceCounts, Qop, Secret, Verified,
};
pub use error::AuthError;
