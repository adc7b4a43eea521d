//! tokio transports for ims: SIP endpoint (UDP/TCP, TLS with the `tls` feature), Diameter node,
//! MSRP connections.

#![forbid(unsafe_code)]

pub mod diameter;
pub mod msrp;
pub mod sip;
#[cfg(feature = "tls")]
pub mod tls;
