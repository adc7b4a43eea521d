//! IMS network-function building blocks: the pieces a CSCF, an HSS or an IP-SM-GW is made of,
//! above the sans-IO protocol crates.
//!
//! ```
//! use ims_nf::ifc::{Context, FilterSet};
//! use ims_nf::subscription::{ImsSubscription, SessionCase};
//!
//! let user_data = br#"<IMSSubscription><PrivateID>alice@ims.example.org</PrivateID>
//! <ServiceProfile><PublicIdentity><Identity>sip:alice@ims.example.org</Identity></PublicIdentity>
//! <InitialFilterCriteria><Priority>0</Priority><TriggerPoint><ConditionTypeCNF>1</ConditionTypeCNF>
//! <SPT><Group>0</Group><Method>MESSAGE</Method></SPT></TriggerPoint>
//! <ApplicationServer><ServerName>sip:ipsmgw.ims.example.org</ServerName></ApplicationServer>
//! </InitialFilterCriteria></ServiceProfile></IMSSubscription>"#;
//! let profile = ImsSubscription::from_xml(user_data)?;
//! let ifcs = FilterSet::compile(&profile.service_profiles[0].initial_filter_criteria)?;
//!
//! let msg = ims_sip::parse_datagram(b"MESSAGE sip:bob@ims.example.org SIP/2.0\r\n\
//! Via: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK-1\r\nMax-Forwards: 70\r\n\
//! From: <sip:alice@ims.example.org>;tag=1\r\nTo: <sip:bob@ims.example.org>\r\n\
//! Call-ID: c1\r\nCSeq: 1 MESSAGE\r\nContent-Length: 0\r\n\r\n")?;
//! let ctx = Context { session_case: SessionCase::Originating, registered: true, registration_type: None };
//! let first = ifcs.matching(&msg, ctx).next().unwrap();
//! assert_eq!(first.application_server.server_name, "sip:ipsmgw.ims.example.org");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![forbid(unsafe_code)]

pub mod admin;
pub mod cscf;
pub mod cx;
pub mod cx_wire;
pub mod enum_dns;
pub mod hss;
pub mod ifc;
pub mod im_server;
pub mod im_session;
pub mod ipsmgw;
mod keyed_hash;
pub mod net;
pub mod pcrf;
pub mod profile_cache;
#[cfg(feature = "redis")]
pub mod redis;
pub mod reginfo;
pub mod registrar;
pub mod runtime;
pub mod rx_media;
pub mod scscf;
pub mod sec_agree;
pub mod store;
pub mod subscription;
#[cfg(test)]
mod test_util;
pub mod xml;
