//! Fuzz oracles for the documents and values the network functions read from their peers
//! ([`crate::nf`]): the XML bodies (`nf_xml`: Cx User-Data, reg-event `reginfo`, the bounded
//! element tree under both, the S-CSCF's profile-shape cache) and the header values and stored
//! records (`nf_values`: RFC 3329 Security-Client/-Server/-Verify lists, the challenge key
//! extraction of the P-CSCF, ENUM numbers and NAPTR REGEXP fields, the SDP the P-CSCF reads for
//! Rx, the registrar's stored record).

use crate::nf::{
    enum_dns,
    ifc::FilterSet,
    profile_cache::ProfileCache,
    reginfo::RegInfo,
    rx_media::SdpMedia,
    sec_agree,
    store::RegistrationRecord,
    subscription::ImsSubscription,
    xml::{Element, XmlError, XmlLimits},
};

fn check_xml_error(e: &XmlError, len: usize, what: &str) {
    if let XmlError::Malformed { offset, .. } = e {
        assert!(
            *offset <= len as u64,
            "{what}: error offset {offset} past {len} bytes ({e})"
        );
    }
    // every error displays (the CSCFs put it in a Warning or a log line)
    assert!(!e.to_string().is_empty(), "{what}: empty error text");
}

/// Reads `data` as each XML document the network functions accept and checks:
///
/// - the element tree stays inside its limits and a malformed document's offset is inside it;
/// - `RegInfo::parse` (a direct scan of the layout our S-CSCF writes, else the XML reader) gives
///   the value the XML reader alone gives, or refuses what it refuses;
/// - a `reginfo` that parses is written back by `to_xml` into a document that parses to the same
///   value;
/// - an `IMSSubscription` likewise, its iFCs compile or are refused without a panic, and the
///   S-CSCF's profile cache (which cuts the identities out and shares the rest by shape) gives the
///   same subscription as the plain parse, or the same refusal, on a miss and on a hit.
pub fn nf_xml(data: &[u8]) {
    let limits = XmlLimits::default();
    match Element::parse(data, &limits) {
        Ok(root) => {
            let mut elements = 0usize;
            let mut stack = vec![(&root, 1usize)];
            while let Some((e, depth)) = stack.pop() {
                elements += 1;
                assert!(
                    depth <= limits.max_depth,
                    "element tree deeper than its limit"
                );
                stack.extend(e.children.iter().map(|c| (c, depth + 1)));
            }
            assert!(
                elements <= limits.max_elements,
                "more elements than the limit"
            );
        }
        Err(e) => check_xml_error(&e, data.len(), "xml"),
    }

    // the direct scan of our own layout gives what the general reader gives, or steps aside
    let general = RegInfo::parse_general(data);
    match (&RegInfo::parse(data), &general) {
        (Ok(a), Ok(b)) => assert_eq!(a, b, "reginfo: the direct scan and the XML reader differ"),
        (Ok(a), Err(e)) => {
            panic!("reginfo: the direct scan accepts what the XML reader refuses ({e}): {a:?}")
        }
        (Err(_), Ok(_)) => panic!("reginfo: refused, but the XML reader accepts it"),
        (Err(_), Err(_)) => {}
    }
    match RegInfo::parse(data) {
        Ok(r) => {
            let written = r.to_xml();
            let again = RegInfo::parse(written.as_bytes()).unwrap_or_else(|e| {
                panic!("reginfo written by to_xml does not parse: {e}\n{written}")
            });
            assert_eq!(again, r, "reginfo changed through to_xml:\n{written}");
        }
        Err(e) => check_xml_error(&e, data.len(), "reginfo"),
    }

    let plain = ImsSubscription::from_xml(data);
    match &plain {
        Ok(s) => {
            let written = s.to_xml();
            let again = ImsSubscription::from_xml(written.as_bytes()).unwrap_or_else(|e| {
                panic!("IMSSubscription written by to_xml does not parse: {e}\n{written}")
            });
            assert_eq!(
                &again, s,
                "IMSSubscription changed through to_xml:\n{written}"
            );
            for sp in &s.service_profiles {
                let _ = FilterSet::compile(&sp.initial_filter_criteria);
            }
        }
        Err(e) => check_xml_error(e, data.len(), "IMSSubscription"),
    }

    if let Ok(doc) = std::str::from_utf8(data) {
        let cache = ProfileCache::new(4);
        for pass in ["miss", "hit"] {
            match (cache.get(doc), &plain) {
                (Ok(p), Ok(s)) => {
                    assert_eq!(&p.subscription(), s, "profile cache ({pass}) differs");
                    for i in 0..p.service_profiles() {
                        let _ = p.filters(i);
                    }
                }
                (Err(_), Err(_)) => {}
                (Ok(_), Err(e)) => {
                    panic!("profile cache ({pass}) accepts what from_xml refuses: {e}")
                }
                (Err(e), Ok(_)) => {
                    panic!("profile cache ({pass}) refuses what from_xml accepts: {e}")
                }
            }
        }
    }
}

/// Reads `data` as a Security-Client/-Server/-Verify value, a WWW-Authenticate challenge the
/// P-CSCF takes its keys from, and a registrar record from a store, and checks:
///
/// - every mechanism that parses is written by `Display` into text that parses to the same
///   mechanism, and a list is refused past its bound;
/// - the challenge with its `ck`/`ik` taken out gives no keys and itself when taken again, and the
///   option-tag and Authorization rewrites never panic;
/// - a number with an ENUM domain gives its digits reversed under the apex, a NAPTR REGEXP field
///   (first line) applied to the rest never panics, nor does the P-CSCF's SDP reading for Rx;
/// - a stored record that decodes is encoded into bytes that decode to the same record (and
///   encode to the same bytes).
pub fn nf_values(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(list) = sec_agree::parse_list(text.split(',')) {
            for m in &list {
                let shown = m.to_string();
                let again = sec_agree::parse_mechanism(&shown)
                    .unwrap_or_else(|e| panic!("{shown:?} (Display of {m:?}) does not parse: {e}"));
                assert!(again.same_as(m), "{shown:?} parses to {again:?}, not {m:?}");
            }
            assert!(sec_agree::same_list(&list, &list));
        }
        let (rest, _, _) = sec_agree::take_keys(text);
        let (again, ck, ik) = sec_agree::take_keys(&rest);
        assert_eq!(again, rest, "take_keys is not idempotent on {text:?}");
        assert!(ck.is_none() && ik.is_none(), "keys left in {rest:?}");
        let _ = sec_agree::without_sec_agree(text);
        let _ = sec_agree::without_integrity_protected(text);

        if let Ok(domain) = enum_dns::enum_domain(text, "e164.arpa") {
            let digits = enum_dns::e164_digits(text).expect("digits of a number with a domain");
            let want: String = digits.chars().rev().flat_map(|c| [c, '.']).collect();
            assert_eq!(
                domain,
                format!("{want}e164.arpa"),
                "ENUM domain of {text:?}"
            );
        }
        // a NAPTR REGEXP field and the string it applies to, one per line
        if let Some((field, aus)) = text.split_once('\n') {
            let _ = enum_dns::apply_regexp(field, aus);
        }
        let _ = SdpMedia::parse(text.to_string());
    }

    if let Ok(r) = RegistrationRecord::decode(data) {
        let bytes = r.encode();
        let again = RegistrationRecord::decode(&bytes)
            .unwrap_or_else(|e| panic!("an encoded record does not decode: {e}"));
        assert_eq!(again, r, "record changed through encode");
        assert_eq!(again.encode(), bytes, "encode is not stable");
    }
}
