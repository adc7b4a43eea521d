//! SGd (TS 29.338) between two nodes over 127.0.0.1, as the IP-SM-GW and the SMS-IWMSC/GMSC
//! use it: the IP-SM-GW forwards an MO short message with OFR and gets the SMS-SUBMIT-REPORT
//! back in the OFA; the SMS-GMSC delivers an MT short message with TFR to the IP-SM-GW, which
//! answers with a TFA (success with the SMS-DELIVER-REPORT, or 5550 absent user). Both nodes
//! advertise SGd (16777313, vendor 10415) in CER/CEA; requests to an application the peer did not
//! advertise would not be sent. When the user becomes reachable the IP-SM-GW alerts the SMSC
//! with Alert-Service-Centre, which on SGd carries the S6c Application-Id (16777312, TS 29.338
//! §5.3.2.5 / §6.1): it reaches an SMSC that advertises S6c, and is not sent to one that does not.

use ims_diameter::base::{AuthSessionState, VendorSpecificApplicationId};
use ims_diameter::dict::{app, command as cmd};
use ims_diameter::peer::Application;
use ims_diameter::s6c::{Ala, Alr, ServingNode, SMS_GMSC_ALERT_EVENT_UE_AVAILABLE_FOR_MT_SMS};
use ims_diameter::sgd::{Ofa, Ofr, Tfa, Tfr, UserIdentifier, TFR_FLAG_MORE_MESSAGES_TO_SEND};
use ims_diameter::{Command, ExperimentalResultCode, Outcome, ResultCode};
use ims_net::diameter::{Node, NodeConfig, NodeError};
use std::borrow::Cow;
use std::sync::{Arc, Mutex};
use std::time::Duration;

mod common;

const SECS: Duration = Duration::from_secs(5);
/// The SMSC listens in 10800-10899 (H5's range).
const PORTS: u16 = 10800;
const IMS: &str = "ims.example.org";
const SMS: &str = "sms.example.org";
/// SMS-SUBMIT to +44 7956 34120, "Hi".
const SUBMIT: &[u8] = b"\x01\x05\x0b\x91\x44\x97\x65\x43\x21\xf0\x00\x00\x02\xc8\x34";
/// SMS-SUBMIT-REPORT for RP-ACK.
const SUBMIT_REPORT: &[u8] = b"\x01\x00\x52\x11\x72\x12\x00\x00\x00";
/// SMS-DELIVER from +44 7912 34567, "Hi".
const DELIVER: &[u8] =
    b"\x04\x0b\x91\x44\x97\x21\x43\x65\xf7\x00\x00\x52\x11\x72\x12\x00\x00\x00\x02\xc8\x34";
/// +44 7900 000001 in TBCD digits.
const SC: &[u8] = b"\x44\x97\x00\x00\x00\x10";

fn cfg(host: &str, realm: &str) -> NodeConfig {
    let mut c = NodeConfig::new(host, realm);
    c.applications = vec![Application::tgpp_auth(app::SGD)];
    c.watchdog_jitter = Duration::ZERO;
    c.request_timeout = SECS;
    c
}

#[tokio::test]
async fn ofr_and_tfr_between_an_ip_sm_gw_and_an_smsc() {
    // the SMSC (SMS-IWMSC for MO, SMS-GMSC for MT)
    let smsc = Node::new(cfg("smsc.sms.example.org", SMS));
    let addr = common::listen_in(&smsc, PORTS).await;
    smsc.handle(app::SGD, cmd::MO_FORWARD_SHORT_MESSAGE, |req| async move {
        let v = req.message.view();
        let ofr = Ofr::decode(&v).expect("a valid OFR");
        let mut ofa = Ofa::answering(&ofr, "smsc.sms.example.org", SMS);
        if ofr.sm_rp_ui == SUBMIT && ofr.sc_address == SC {
            ofa.set_outcome(Outcome::SUCCESS);
            ofa.sm_rp_ui = Some(Cow::Borrowed(SUBMIT_REPORT));
        } else {
            ofa.set_outcome(Outcome::tgpp(ExperimentalResultCode::SmDeliveryFailure));
        }
        ofa.encode_answer(v.header())
    });
    // the IP-SM-GW: an MT short message for a user it cannot reach is 5550 absent user
    let ipsmgw = Node::new(cfg("ipsmgw.ims.example.org", IMS));
    ipsmgw.handle(app::SGD, cmd::MT_FORWARD_SHORT_MESSAGE, |req| async move {
        let v = req.message.view();
        let tfr = Tfr::decode(&v).expect("a valid TFR");
        let mut tfa = Tfa::answering(&tfr, "ipsmgw.ims.example.org", IMS);
        if tfr.user_name == "001010000000001" {
            tfa.set_outcome(Outcome::SUCCESS);
            tfa.sm_rp_ui = Some(Cow::Borrowed(b"\x00\x00"));
        } else {
            tfa.set_outcome(Outcome::tgpp(ExperimentalResultCode::AbsentUser));
            tfa.absent_user_diagnostic_sm = Some(12);
        }
        tfa.encode_answer(v.header())
    });
    ipsmgw.add_peer("smsc.sms.example.org", addr);
    ipsmgw
        .wait_open("smsc.sms.example.org", SECS)
        .await
        .unwrap();
    smsc.wait_open("ipsmgw.ims.example.org", SECS)
        .await
        .unwrap();

    // MO: IP-SM-GW → SMS-IWMSC
    let ofr = Ofr {
        session_id: ipsmgw.session_id().into(),
        vendor_specific_application_id: Some(VendorSpecificApplicationId::sgd()),
        auth_session_state: AuthSessionState::NoStateMaintained,
        origin_host: ipsmgw.origin_host().into(),
        origin_realm: IMS.into(),
        destination_realm: SMS.into(),
        sc_address: Cow::Borrowed(SC),
        user_identifier: UserIdentifier {
            msisdn: Some(Cow::Borrowed(b"\x44\x97\x12\x34\x56\xf7")),
            ..Default::default()
        },
        sm_rp_ui: Cow::Borrowed(SUBMIT),
        ..Default::default()
    };
    let a = ipsmgw.send(&ofr).await.unwrap();
    let ofa = Ofa::decode(&a.view()).unwrap();
    assert_eq!(ofa.outcome(), Some(Outcome::SUCCESS));
    assert_eq!(ofa.sm_rp_ui.as_deref(), Some(SUBMIT_REPORT));
    assert_eq!(ofa.session_id, ofr.session_id);

    // MT: SMS-GMSC → IP-SM-GW, the recipient reachable, then one that is not
    for (imsi, want) in [
        ("001010000000001", Outcome::SUCCESS),
        (
            "001010000000002",
            Outcome::tgpp(ExperimentalResultCode::AbsentUser),
        ),
    ] {
        let tfr = Tfr {
            session_id: smsc.session_id().into(),
            vendor_specific_application_id: Some(VendorSpecificApplicationId::sgd()),
            auth_session_state: AuthSessionState::NoStateMaintained,
            origin_host: smsc.origin_host().into(),
            origin_realm: SMS.into(),
            destination_host: ipsmgw.origin_host().into(),
            destination_realm: IMS.into(),
            user_name: imsi.into(),
            sc_address: Cow::Borrowed(SC),
            sm_rp_ui: Cow::Borrowed(DELIVER),
            tfr_flags: Some(TFR_FLAG_MORE_MESSAGES_TO_SEND),
            ..Default::default()
        };
        let a = smsc.send(&tfr).await.unwrap();
        let tfa = Tfa::decode(&a.view()).unwrap();
        assert_eq!(tfa.outcome(), Some(want), "{imsi}");
        if want.is_success() {
            assert_eq!(tfa.sm_rp_ui.as_deref(), Some(&b"\x00\x00"[..]));
        } else {
            assert_eq!(tfa.absent_user_diagnostic_sm, Some(12));
        }
    }
    ipsmgw.shutdown();
    smsc.shutdown();
    ipsmgw.wait_stopped(SECS).await.unwrap();
    smsc.wait_stopped(SECS).await.unwrap();
}

/// What the SMSC saw of an ALR: Application-Id, SC-Address, MSISDN, SMS-GMSC-Alert-Event.
type Seen = (u32, Vec<u8>, Vec<u8>, Option<u32>);

/// The ALR the IP-SM-GW sends when a user the SMSC holds messages for can receive them again.
fn alr(ipsmgw: &Node, sc: &'static [u8]) -> Alr<'static> {
    Alr {
        session_id: ipsmgw.session_id().into(),
        vendor_specific_application_id: Some(VendorSpecificApplicationId::s6c()),
        auth_session_state: AuthSessionState::NoStateMaintained,
        origin_host: ipsmgw.origin_host().to_owned().into(),
        origin_realm: IMS.into(),
        destination_host: Some("smsc.sms.example.org".into()),
        destination_realm: SMS.into(),
        sc_address: Cow::Borrowed(sc),
        user_identifier: UserIdentifier {
            msisdn: Some(Cow::Borrowed(b"\x44\x97\x21\x43\x65\xf7")),
            user_name: Some("001010000000002".into()),
            ..Default::default()
        },
        sms_gmsc_alert_event: Some(SMS_GMSC_ALERT_EVENT_UE_AVAILABLE_FOR_MT_SMS),
        serving_node: Some(ServingNode {
            ip_sm_gw_name: Some(ipsmgw.origin_host().to_owned().into()),
            ip_sm_gw_realm: Some(IMS.into()),
            ..Default::default()
        }),
        ..Default::default()
    }
}

#[tokio::test]
async fn alert_service_centre_over_the_sgd_connection_uses_s6c() {
    // an SMSC that serves SGd and S6c (alerts), and records the ALRs it gets
    let mut c = cfg("smsc.sms.example.org", SMS);
    c.applications.push(Application::tgpp_auth(app::S6C));
    let smsc = Node::new(c);
    let addr = common::listen_in(&smsc, PORTS + 100).await;
    let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
    let log = seen.clone();
    smsc.handle(app::S6C, cmd::ALERT_SERVICE_CENTRE, move |req| {
        let log = log.clone();
        async move {
            let v = req.message.view();
            let alr = Alr::decode(&v).expect("a valid ALR");
            log.lock().unwrap().push((
                v.application_id(),
                alr.sc_address.to_vec(),
                alr.user_identifier
                    .msisdn
                    .as_deref()
                    .unwrap_or_default()
                    .to_vec(),
                alr.sms_gmsc_alert_event,
            ));
            let mut ala = Ala::answering(&alr, "smsc.sms.example.org", SMS);
            // an alert for a Service Centre it is not: 5001 (TS 29.338 §5.3.2.6 leaves the
            // codes to the base protocol; any failure the IP-SM-GW must see)
            if alr.sc_address == SC {
                ala.set_outcome(Outcome::SUCCESS);
            } else {
                ala.set_outcome(Outcome::tgpp(ExperimentalResultCode::from_u32(5001)));
            }
            ala.encode_answer(v.header())
        }
    });
    let mut c = cfg("ipsmgw.ims.example.org", IMS);
    c.applications.push(Application::tgpp_auth(app::S6C));
    let ipsmgw = Node::new(c);
    ipsmgw.add_peer("smsc.sms.example.org", addr);
    ipsmgw
        .wait_open("smsc.sms.example.org", SECS)
        .await
        .unwrap();

    let a = ipsmgw.send(&alr(&ipsmgw, SC)).await.unwrap();
    let v = a.view();
    assert_eq!((v.code(), v.application_id()), (8_388_648, app::S6C));
    let ala = Ala::decode(&v).unwrap();
    assert_eq!(ala.outcome(), Some(Outcome::SUCCESS));
    let a = ipsmgw
        .send(&alr(&ipsmgw, b"\x44\x97\x00\x00\x00\x20"))
        .await
        .unwrap();
    let ala = Ala::decode(&a.view()).unwrap();
    assert_eq!(ala.outcome().map(|o| o.code()), Some(5001));
    {
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 2);
        assert_eq!(
            seen[0],
            (
                app::S6C,
                SC.to_vec(),
                b"\x44\x97\x21\x43\x65\xf7".to_vec(),
                Some(SMS_GMSC_ALERT_EVENT_UE_AVAILABLE_FOR_MT_SMS)
            )
        );
    }

    // an SMSC that advertises SGd only: the ALR is not sent to it (no peer for S6c)
    let sgd_only = Node::new(cfg("smsc2.sms.example.org", SMS));
    let addr2 = common::listen_in(&sgd_only, PORTS + 100).await;
    ipsmgw.add_peer("smsc2.sms.example.org", addr2);
    ipsmgw
        .wait_open("smsc2.sms.example.org", SECS)
        .await
        .unwrap();
    let mut to_sgd_only = alr(&ipsmgw, SC);
    to_sgd_only.destination_host = Some("smsc2.sms.example.org".into());
    smsc.shutdown();
    smsc.wait_stopped(SECS).await.unwrap();
    match ipsmgw.send(&to_sgd_only).await {
        Err(NodeError::NoRoute(rc)) => assert_eq!(rc, ResultCode::UnableToDeliver),
        other => panic!("an ALR to an SGd-only SMSC: {other:?}"),
    }
    assert_eq!(seen.lock().unwrap().len(), 2);
    ipsmgw.shutdown();
    sgd_only.shutdown();
    ipsmgw.wait_stopped(SECS).await.unwrap();
    sgd_only.wait_stopped(SECS).await.unwrap();
}
