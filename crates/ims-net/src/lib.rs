//! tokio transports for ims: SIP endpoint (UDP/TCP), Diameter node, MSRP connections.

#![forbid(unsafe_code)]

pub mod diameter;
pub mod msrp;
pub mod sip;
