//! What Wireshark's Diameter dissector is asked for and what we expect it to read, shared by
//! `tests/diameter_tshark.rs` (our typed commands written into a pcap) and
//! `tests/diameter_tls_tshark.rs` (a live capture of our node over TLS, decrypted with its key
//! log): the fields of [`FIELDS`] and, from the bytes we sent, their values ([`expected`]).
//! Included with `#[path]`.
#![allow(dead_code)]

use ims::diameter::dict::{self, AvpType};
use ims::diameter::{AvpIter, Message};

/// The tshark fields compared: command code, flags, Application-Id, the two identifiers, the
/// AVP codes in pre-order (nested AVPs included), then the values of some AVPs.
pub(crate) const FIELDS: &[&str] = &[
    "diameter.cmd.code",
    "diameter.flags",
    "diameter.applicationId",
    "diameter.hopbyhopid",
    "diameter.endtoendid",
    "diameter.avp.code",
    "diameter.Session-Id",
    "diameter.Origin-Host",
    "diameter.Result-Code",
    "diameter.Experimental-Result-Code",
    "diameter.User-Name",
    "diameter.Public-Identity",
    "diameter.Server-Name",
    "diameter.Flow-Description",
    "diameter.Media-Component-Number",
    "diameter.Max-Requested-Bandwidth-UL",
];

fn preorder(it: AvpIter<'_>, out: &mut Vec<String>) {
    for a in it {
        out.push(a.code().to_string());
        if a.def().is_some_and(|d| d.ty == AvpType::Grouped) {
            if let Ok(g) = a.grouped() {
                preorder(g, out);
            }
        }
    }
}

fn all_values(m: &Message<'_>, def: &dict::AvpDef) -> String {
    fn walk(it: AvpIter<'_>, def: &dict::AvpDef, out: &mut Vec<String>) {
        for a in it {
            if a.is(def) {
                out.push(match def.ty {
                    AvpType::Unsigned32 | AvpType::Enumerated => a.u32().unwrap().to_string(),
                    // tshark shows text up to the first NUL (a zero-filled Failed-AVP example)
                    _ => a.utf8().unwrap().trim_end_matches('\0').to_owned(),
                });
            }
            if a.def().is_some_and(|d| d.ty == AvpType::Grouped) {
                if let Ok(g) = a.grouped() {
                    walk(g, def, out);
                }
            }
        }
    }
    let mut v = Vec::new();
    walk(m.avps(), def, &mut v);
    v.join("|")
}

pub(crate) fn expected(bytes: &[u8]) -> Vec<String> {
    let m = Message::parse(bytes).expect("our message parses");
    let mut codes = Vec::new();
    preorder(m.avps(), &mut codes);
    vec![
        m.code().to_string(),
        format!("0x{:02x}", m.flags().0),
        m.application_id().to_string(),
        format!("0x{:08x}", m.hop_by_hop()),
        format!("0x{:08x}", m.end_to_end()),
        codes.join("|"),
        all_values(&m, dict::SESSION_ID),
        all_values(&m, dict::ORIGIN_HOST),
        all_values(&m, dict::RESULT_CODE),
        all_values(&m, dict::EXPERIMENTAL_RESULT_CODE),
        all_values(&m, dict::USER_NAME),
        all_values(&m, dict::PUBLIC_IDENTITY),
        all_values(&m, dict::SERVER_NAME),
        all_values(&m, dict::FLOW_DESCRIPTION),
        all_values(&m, dict::MEDIA_COMPONENT_NUMBER),
        all_values(&m, dict::MAX_REQUESTED_BANDWIDTH_UL),
    ]
}
