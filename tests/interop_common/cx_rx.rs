//! The Cx and Rx exchange of the freeDiameter relay tests (`tests/diameter_freediameter.rs`, clear
//! text, and `crates/ims-net/tests/diameter_inband_tls.rs`, TLS after CER/CEA): a server node
//! (HSS and PCRF in one) answering MAR and AAR, and a client sending a MAR, an AAR and a
//! malformed control AAR through freeDiameter, checking each arrives intact and what
//! freeDiameter's parser said. Included with `#[path]` next to `interop_common` (it needs the
//! includer's `mod interop_common;`, `FD_HOST` and `SECS`). Also the plain MAR/MAA pair of the
//! TLS tests between our own nodes ([`serve_mar`], [`mar`]). Each includer uses a part.
#![allow(dead_code)]

use crate::interop_common::FreeDiameter;
use crate::{FD_HOST, SECS};
use ims_diameter::answer::error_answer;
use ims_diameter::base::VendorSpecificApplicationId;
use ims_diameter::cx::{Maa, Mar, SipAuthDataItem};
use ims_diameter::dict::{self, app};
use ims_diameter::rx::{Aaa, Aar, MediaComponentDescription};
use ims_diameter::{encode_message, AvpFlags, Command, Outcome};
use ims_net::diameter::{Incoming, Node};
use std::sync::{Arc, Mutex};

/// What the server node received, for comparison with what the client sent.
pub(crate) type Seen = Arc<Mutex<Vec<Incoming>>>;

/// A server node (HSS and PCRF in one) answering MAR and AAR, recording every request.
pub(crate) fn serve_cx_and_rx(server: &Node, seen: &Seen) {
    let (s, sn) = (server.clone(), seen.clone());
    server.handle(app::CX, Mar::CODE, move |req| {
        let (s, sn) = (s.clone(), sn.clone());
        async move {
            sn.lock().unwrap().push(req.clone());
            let mar = Mar::decode(&req.message.view()).expect("MAR intact");
            let mut maa = Maa {
                session_id: mar.session_id,
                vendor_specific_application_id: mar.vendor_specific_application_id,
                auth_session_state: mar.auth_session_state,
                origin_host: s.origin_host().to_owned().into(),
                origin_realm: s.origin_realm().to_owned().into(),
                user_name: Some(mar.user_name),
                public_identity: Some(mar.public_identity),
                sip_number_auth_items: Some(1),
                sip_auth_data_item: vec![SipAuthDataItem {
                    sip_item_number: Some(1),
                    sip_authentication_scheme: Some("Digest-AKAv1-MD5".into()),
                    sip_authenticate: Some(vec![0x11; 32].into()),
                    sip_authorization: Some(vec![0x22; 8].into()),
                    confidentiality_key: Some(vec![0x33; 16].into()),
                    integrity_key: Some(vec![0x44; 16].into()),
                    ..Default::default()
                }],
                ..Default::default()
            };
            maa.set_outcome(Outcome::SUCCESS);
            maa.encode_answer(req.message.header())
        }
    });
    let (s, sn) = (server.clone(), seen.clone());
    server.handle(app::RX, Aar::CODE, move |req| {
        let (s, sn) = (s.clone(), sn.clone());
        async move {
            sn.lock().unwrap().push(req.clone());
            let aar = match Aar::decode(&req.message.view()) {
                Ok(a) => a,
                Err(e) => {
                    return error_answer(req.message.bytes(), &e, &s.origin())
                        .expect("a request can be answered")
                }
            };
            let mut aaa = Aaa {
                session_id: aar.session_id,
                auth_application_id: app::RX,
                origin_host: s.origin_host().to_owned().into(),
                origin_realm: s.origin_realm().to_owned().into(),
                ..Default::default()
            };
            aaa.set_outcome(Outcome::SUCCESS);
            aaa.encode_answer(req.message.header())
        }
    });
}

/// Through freeDiameter (peer [`FD_HOST`]) from `client` to the node served by
/// [`serve_cx_and_rx`] (realm `home.test.example`), which records into `seen`: a Cx MAR whose MAA
/// comes back intact and which the server got field for field with freeDiameter's
/// Route-Record; an Rx AAR/AAA likewise, parsed by freeDiameter (its message dump names them)
/// with nothing flagged; then a control AAR with a 2-octet Media-Component-Number, flagged in
/// freeDiameter's log and answered 5014 by the server. Returns the Session-Ids of the MAR, the
/// AAR and the control AAR.
pub(crate) async fn cx_and_rx_through(
    client: &Node,
    seen: &Seen,
    fdd: &FreeDiameter,
) -> [String; 3] {
    // Cx MAR through the relay, routed by Destination-Realm
    let mar = Mar {
        session_id: client.session_id().into(),
        vendor_specific_application_id: VendorSpecificApplicationId::cx(),
        origin_host: client.origin_host().to_owned().into(),
        origin_realm: client.origin_realm().to_owned().into(),
        destination_realm: "home.test.example".into(),
        user_name: "alice@home.test.example".into(),
        public_identity: "sip:alice@home.test.example".into(),
        sip_number_auth_items: 1,
        sip_auth_data_item: SipAuthDataItem {
            sip_authentication_scheme: Some("Digest-AKAv1-MD5".into()),
            ..Default::default()
        },
        server_name: "sip:scscf.visited.test.example:6060".into(),
        ..Default::default()
    };
    let e2e = client.next_end_to_end();
    let answer = client
        .request(mar.encode(0, e2e))
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", fdd.log()));
    let v = answer.view();
    assert_eq!(v.outcome(), Some(Outcome::SUCCESS), "{}", fdd.log());
    assert_eq!(v.end_to_end(), e2e);
    let maa = Maa::decode(&v).expect("MAA intact after the relay");
    assert_eq!(maa.origin_host, "hss.home.test.example");
    assert_eq!(maa.sip_auth_data_item.len(), 1);
    let item = &maa.sip_auth_data_item[0];
    assert_eq!(item.sip_authenticate.as_deref(), Some(&[0x11; 32][..]));
    assert_eq!(item.confidentiality_key.as_deref(), Some(&[0x33; 16][..]));
    assert_eq!(item.integrity_key.as_deref(), Some(&[0x44; 16][..]));
    // the server got our MAR field for field, from freeDiameter, with its Route-Record
    {
        let got = seen.lock().unwrap();
        let req = &got[0];
        assert_eq!(&*req.peer, FD_HOST);
        let rv = req.message.view();
        let back = Mar::decode(&rv).unwrap();
        assert_eq!(back.session_id, mar.session_id);
        assert_eq!(back.user_name, mar.user_name);
        assert_eq!(back.public_identity, mar.public_identity);
        assert_eq!(back.server_name, mar.server_name);
        assert_eq!(back.sip_auth_data_item, mar.sip_auth_data_item);
        assert_eq!(
            back.vendor_specific_application_id,
            mar.vendor_specific_application_id
        );
        let rr: Vec<&str> = rv
            .find_all(dict::ROUTE_RECORD)
            .filter_map(|a| a.utf8().ok())
            .collect();
        assert_eq!(rr, vec!["scscf.visited.test.example"]);
    }

    // Rx AAR with a media component
    let aar = Aar {
        session_id: client.session_id().into(),
        auth_application_id: app::RX,
        origin_host: client.origin_host().to_owned().into(),
        origin_realm: client.origin_realm().to_owned().into(),
        destination_realm: "home.test.example".into(),
        media_component_description: ims_diameter::repeated![MediaComponentDescription {
            media_component_number: 1,
            max_requested_bandwidth_ul: Some(64_000),
            max_requested_bandwidth_dl: Some(128_000),
            ..Default::default()
        }],
        ..Default::default()
    };
    let answer = client
        .send(&aar)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", fdd.log()));
    let v = answer.view();
    assert_eq!(v.outcome(), Some(Outcome::SUCCESS), "{}", fdd.log());
    let aaa = Aaa::decode(&v).expect("AAA intact");
    assert_eq!(aaa.session_id, aar.session_id);
    assert_eq!(aaa.origin_host, "hss.home.test.example");
    {
        let got = seen.lock().unwrap();
        assert_eq!(got.len(), 2);
        let back = Aar::decode(&got[1].message.view()).unwrap();
        assert_eq!(back.session_id, aar.session_id);
        assert_eq!(
            back.media_component_description,
            aar.media_component_description
        );
    }

    // freeDiameter parsed both Rx messages, and found nothing wrong so far
    fdd.wait_log("'AA-Answer'", SECS);
    let log = fdd.log();
    assert!(log.contains("'AA-Request'"), "{log}");
    assert!(log.contains("'Max-Requested-Bandwidth-DL'(515)"), "{log}");
    assert!(
        !log.contains("Bad message") && !log.contains("Invalid"),
        "{log}"
    );

    // the control: a Media-Component-Number (Unsigned32) of 2 octets. freeDiameter flags it
    // while parsing (as a relay it forwards it anyway); the server answers 5014
    let mut bad = Vec::new();
    let sid = client.session_id();
    encode_message(&mut bad, &Aar::header(0, client.next_end_to_end()), |e| {
        e.utf8(dict::SESSION_ID, &sid);
        e.u32(dict::AUTH_APPLICATION_ID, app::RX);
        e.utf8(dict::ORIGIN_HOST, client.origin_host());
        e.utf8(dict::ORIGIN_REALM, client.origin_realm());
        e.utf8(dict::DESTINATION_REALM, "home.test.example");
        e.grouped(dict::MEDIA_COMPONENT_DESCRIPTION, |g| {
            g.raw(
                518,
                AvpFlags(AvpFlags::MANDATORY),
                dict::VENDOR_3GPP,
                &[0, 1],
            );
        });
    });
    let answer = client.request(bad).await.unwrap();
    let rc = answer.view().outcome().map(|o| o.code());
    assert_eq!(rc, Some(5014), "{}", fdd.log());
    fdd.wait_log("Invalid length AVP: 'Media-Component-Number'(518)", SECS);
    [
        mar.session_id.to_string(),
        aar.session_id.to_string(),
        sid.to_string(),
    ]
}

/// An HSS answering every MAR with a bare successful MAA.
pub(crate) fn serve_mar(hss: &Node) {
    let me = hss.clone();
    hss.handle(app::CX, Mar::CODE, move |req| {
        let me = me.clone();
        async move {
            let mar = Mar::decode(&req.message.view()).unwrap();
            let mut maa = Maa {
                session_id: mar.session_id,
                vendor_specific_application_id: mar.vendor_specific_application_id,
                auth_session_state: mar.auth_session_state,
                origin_host: me.origin_host().into(),
                origin_realm: me.origin_realm().into(),
                ..Default::default()
            };
            maa.set_outcome(Outcome::SUCCESS);
            maa.encode_answer(req.message.header())
        }
    });
}

/// A MAR from `node` for alice in realm `test.example`.
pub(crate) fn mar(node: &Node) -> Mar<'_> {
    Mar {
        session_id: node.session_id().into(),
        vendor_specific_application_id: VendorSpecificApplicationId::cx(),
        origin_host: node.origin_host().into(),
        origin_realm: node.origin_realm().into(),
        destination_realm: "test.example".into(),
        user_name: "alice@test.example".into(),
        public_identity: "sip:alice@test.example".into(),
        server_name: "sip:scscf.test.example".into(),
        ..Default::default()
    }
}
