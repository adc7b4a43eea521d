//! The command grammar and value checks of the typed decoders, each against the RFC 6733 result
//! code it must produce, and the answers built for them.

use ims_diameter::answer::{check_request, error_answer, reject, validate, Origin};
use ims_diameter::base::*;
use ims_diameter::cx::*;
use ims_diameter::rx::*;
use ims_diameter::{
    dict, encode_message, AvpFlags, AvpId, Command, ErrorKind, Header, Limits, Message, Outcome,
};
use std::borrow::Cow;

const REALM: &str = "ims.mnc001.mcc001.3gppnetwork.org";
const ORIGIN: Origin<'static> = Origin {
    host: "hss.ims.mnc001.mcc001.3gppnetwork.org",
    realm: REALM,
    state_id: None,
};

fn uar() -> Uar<'static> {
    Uar {
        session_id: format!("icscf.{REALM};1700000000;1").into(),
        vendor_specific_application_id: VendorSpecificApplicationId::cx(),
        auth_session_state: AuthSessionState::NoStateMaintained,
        origin_host: format!("icscf.{REALM}").into(),
        origin_realm: REALM.into(),
        destination_realm: REALM.into(),
        user_name: format!("alice@{REALM}").into(),
        public_identity: format!("sip:alice@{REALM}").into(),
        visited_network_identifier: Cow::Borrowed(REALM.as_bytes()),
        user_authorization_type: Some(UserAuthorizationType::Registration),
        ..Default::default()
    }
}

/// The UAR's AVPs with `edit` applied to the list of (def, data, flags) before encoding.
fn uar_with(edit: impl FnOnce(&mut Vec<(u32, u8, u32, Vec<u8>)>)) -> Vec<u8> {
    let good = uar().encode(1, 2);
    let msg = Message::parse(&good).unwrap();
    let mut avps: Vec<_> = msg
        .avps()
        .map(|a| (a.code(), a.flags().0, a.vendor_id(), a.data().to_vec()))
        .collect();
    edit(&mut avps);
    let mut out = Vec::new();
    encode_message(&mut out, msg.header(), |e| {
        for (c, f, v, d) in &avps {
            e.raw(*c, AvpFlags(*f), *v, d);
        }
    });
    out
}

fn err_of(bytes: &[u8]) -> ims_diameter::Error {
    match Message::parse(bytes) {
        Ok(m) => Uar::decode(&m).unwrap_err(),
        Err(e) => e,
    }
}

#[test]
fn valid_uar() {
    let b = uar().encode(1, 2);
    let m = Message::parse(&b).unwrap();
    check_request(&m, &[dict::app::CX]).unwrap();
    assert_eq!(reject(&b, &[dict::app::CX], &ORIGIN).unwrap(), None);
}

#[test]
fn missing_avp_5005() {
    let b = uar_with(|a| a.retain(|x| x.0 != dict::PUBLIC_IDENTITY.code));
    let e = err_of(&b);
    assert_eq!(
        (e.kind, e.avp),
        (ErrorKind::MissingAvp, Some(dict::PUBLIC_IDENTITY.id()))
    );
    let ans = error_answer(&b, &e, &ORIGIN).unwrap();
    let uaa = Uaa::decode(&Message::parse(&ans).unwrap()).unwrap();
    assert_eq!(uaa.outcome(), Some(Outcome::from_result_code(5005)));
    let f = &uaa.failed_avp[0].other[0];
    assert_eq!((f.code, f.vendor, &f.data[..]), (601, 10415, &[0u8][..]));
}

#[test]
fn too_many_5009() {
    let b = uar_with(|a| {
        let x = a
            .iter()
            .find(|x| x.0 == dict::USER_NAME.code)
            .unwrap()
            .clone();
        a.push(x);
    });
    let e = err_of(&b);
    assert_eq!(e.kind, ErrorKind::AvpOccursTooManyTimes);
    assert_eq!(e.result_code(), Some(5009));
    let ans = error_answer(&b, &e, &ORIGIN).unwrap();
    let f = Message::parse(&ans)
        .unwrap()
        .find(dict::FAILED_AVP)
        .unwrap();
    let inner = f.grouped().unwrap().next().unwrap();
    assert_eq!(inner.code(), 1, "the second User-Name, as received");
    // Media-Sub-Component allows 0*2 Flow-Description
    let mut msc = MediaSubComponent {
        flow_number: 1,
        ..Default::default()
    };
    msc.flow_description = ims_diameter::repeated!["permit out 17 from any to any".into(); 3];
    let aar = Aar {
        session_id: "p;1;1".into(),
        auth_application_id: dict::app::RX,
        origin_host: "p".into(),
        origin_realm: "r".into(),
        destination_realm: "r".into(),
        media_component_description: ims_diameter::repeated![MediaComponentDescription {
            media_component_number: 1,
            media_sub_component: ims_diameter::repeated![msc],
            ..Default::default()
        }],
        ..Default::default()
    };
    let b = aar.encode(1, 1);
    let e = Aar::decode(&Message::parse(&b).unwrap()).unwrap_err();
    assert_eq!(
        (e.kind, e.avp),
        (
            ErrorKind::AvpOccursTooManyTimes,
            Some(dict::FLOW_DESCRIPTION.id())
        )
    );
}

#[test]
fn fixed_position_and_not_allowed_5008() {
    let b = uar_with(|a| a.swap(0, 1));
    assert_eq!(err_of(&b).kind, ErrorKind::AvpNotAllowed);
    // Vendor-Specific-Application-Id admits no other AVP
    let vsai = {
        let mut v = Vec::new();
        ims_diameter::Encoder::new(&mut v).u32(dict::VENDOR_ID, 10415);
        ims_diameter::Encoder::new(&mut v).u32(dict::AUTH_APPLICATION_ID, dict::app::CX);
        ims_diameter::Encoder::new(&mut v).u32(dict::ORIGIN_STATE_ID, 1);
        v
    };
    let b = uar_with(|a| a[1].3 = vsai);
    let e = err_of(&b);
    assert_eq!(
        (e.kind, e.avp),
        (ErrorKind::AvpNotAllowed, Some(dict::ORIGIN_STATE_ID.id()))
    );
    let ans = error_answer(&b, &e, &ORIGIN).unwrap();
    assert!(Message::parse(&ans)
        .unwrap()
        .find(dict::FAILED_AVP)
        .is_some());
}

#[test]
fn unknown_m_bit_5001_and_unknown_optional_kept() {
    let b = uar_with(|a| a.push((77, 0xc0, 32473, vec![1, 2, 3])));
    let e = err_of(&b);
    assert_eq!(
        (e.kind, e.avp),
        (ErrorKind::AvpUnsupported, Some(AvpId::new(77, 32473)))
    );
    let b = uar_with(|a| a.push((77, 0x80, 32473, vec![1, 2, 3])));
    let m = Message::parse(&b).unwrap();
    let u = Uar::decode(&m).unwrap();
    assert_eq!(u.other.len(), 1);
    assert_eq!(u.encode(1, 2), b, "unknown AVP kept for re-encode");
}

#[test]
fn invalid_value_5004_and_length_5014() {
    // User-Authorization-Type with 3 octets: wrong length for Enumerated
    let b = uar_with(|a| a.iter_mut().find(|x| x.0 == 623).unwrap().3 = vec![0, 0, 0]);
    let e = err_of(&b);
    assert_eq!(
        (e.kind, e.result_code()),
        (ErrorKind::InvalidAvpLength, Some(5014))
    );
    let ans = error_answer(&b, &e, &ORIGIN).unwrap();
    let f = Message::parse(&ans)
        .unwrap()
        .find(dict::FAILED_AVP)
        .unwrap();
    assert_eq!(
        f.grouped().unwrap().next().unwrap().data(),
        &[0, 0, 0],
        "copy of the AVP"
    );
    // User-Name that is not UTF-8
    let b = uar_with(|a| a.iter_mut().find(|x| x.0 == 1).unwrap().3 = vec![0xff, 0xfe]);
    assert_eq!(err_of(&b).result_code(), Some(5004));
    // Host-IP-Address with a truncated IPv6 address
    let mut cer = Cer {
        origin_host: "a".into(),
        origin_realm: "b".into(),
        vendor_id: 1,
        product_name: "p".into(),
        ..Default::default()
    };
    cer.host_ip_address.push(ims_diameter::Address::Other {
        family: 2,
        value: &[0; 5],
    });
    let b = cer.encode(1, 1);
    let e = Cer::decode(&Message::parse(&b).unwrap()).unwrap_err();
    assert_eq!(e.result_code(), Some(5014));
}

#[test]
fn application_and_command_unsupported() {
    let mut b = uar().encode(1, 2);
    b[8..12].copy_from_slice(&4u32.to_be_bytes()); // Application-Id 4 (credit control)
    let m = Message::parse(&b).unwrap();
    let e = check_request(&m, &[dict::app::CX]).unwrap_err();
    assert_eq!(e.result_code(), Some(3007));
    let ans = reject(&b, &[dict::app::CX], &ORIGIN).unwrap().unwrap();
    let a = Message::parse(&ans).unwrap();
    assert!(a.flags().is_error());
    assert_eq!(a.session_id(), m.session_id());
    AnswerMessage::decode(&a).unwrap();
    let mut b = uar().encode(1, 2);
    b[5..8].copy_from_slice(&[0, 1, 50]); // command 306 in Cx
    let e = check_request(&Message::parse(&b).unwrap(), &[dict::app::CX]).unwrap_err();
    assert_eq!(e.result_code(), Some(3001));
}

#[test]
fn depth_limit() {
    // 20 nested Proxy-Info-like groups (code 284) in a DWR; parse is lazy, opening them is bounded
    let mut inner = Vec::new();
    for _ in 0..20 {
        let mut v = Vec::new();
        ims_diameter::Encoder::new(&mut v)
            .grouped(dict::PROXY_INFO, |e| e.raw(0, AvpFlags(0), 0, &[]));
        let _ = v;
        let mut w = Vec::new();
        let prev = std::mem::take(&mut inner);
        ims_diameter::Encoder::new(&mut w).grouped(dict::PROXY_INFO, |e| {
            if !prev.is_empty() {
                let m = prev.clone();
                e.raw(dict::PROXY_INFO.code, AvpFlags(0x40), 0, &m[8..]);
            }
        });
        inner = w;
    }
    let mut b = Vec::new();
    encode_message(&mut b, &Header::request(280, 0, false, 1, 1), |e| {
        e.utf8(dict::ORIGIN_HOST, "a");
        e.utf8(dict::ORIGIN_REALM, "b");
        e.raw(dict::PROXY_INFO.code, AvpFlags(0x40), 0, &inner[8..]);
    });
    let limits = Limits {
        max_depth: 4,
        ..Limits::default()
    };
    let m = Message::parse_with(&b, &limits).unwrap();
    let mut a = m.find(dict::PROXY_INFO).unwrap();
    let mut depth = 0;
    let err = loop {
        match a.grouped() {
            Ok(mut it) => match it.next() {
                Some(x) => {
                    a = x;
                    depth += 1;
                }
                None => break None,
            },
            Err(e) => break Some(e),
        }
    };
    assert_eq!(err.map(|e| e.kind), Some(ErrorKind::LimitExceeded));
    assert_eq!(depth, 4);
    let _ = validate(&m);
}

#[test]
fn answer_copies_ids_session_and_proxy_info() {
    let mut req = uar();
    req.proxy_info.push(ProxyInfo {
        proxy_host: "dra.x".into(),
        proxy_state: Cow::Borrowed(b"st"),
        other: vec![],
    });
    let b = req.encode(0xabc, 0xdef);
    let m = Message::parse(&b).unwrap();
    let e = ims_diameter::Error {
        kind: ErrorKind::MissingAvp,
        offset: m.len(),
        avp: Some(dict::SERVER_NAME.id()),
    };
    let ans = error_answer(
        &b,
        &e,
        &Origin {
            state_id: Some(9),
            ..ORIGIN
        },
    )
    .unwrap();
    let a = Uaa::decode(&Message::parse(&ans).unwrap()).unwrap();
    assert_eq!(a.session_id, req.session_id);
    assert_eq!(a.proxy_info, req.proxy_info);
    let h = Message::parse(&ans).unwrap();
    assert_eq!(
        (h.hop_by_hop(), h.end_to_end(), h.flags().is_proxiable()),
        (0xabc, 0xdef, true)
    );
    assert_eq!(a.origin_host, ORIGIN.host);
    assert_eq!(Uaa::CODE, 300);
    let _ = Dwr::NAME;
}
