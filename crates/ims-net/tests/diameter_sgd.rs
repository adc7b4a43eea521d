//! SGd (TS 29.338) between two nodes over 127.0.0.1, as the IP-SM-GW and the SMS-IWMSC/GMSC
//! use it: the IP-SM-GW forwards an MO short message with OFR and gets the SMS-SUBMIT-REPORT
//! back in the OFA; the SMS-GMSC delivers an MT short message with TFR to the IP-SM-GW, which
//! answers with a TFA (success with the SMS-DELIVER-REPORT, or 5550 absent user). Both nodes
//! advertise SGd (16777313, vendor 10415) in CER/CEA; requests to an application the peer did not
//! advertise would not be sent.

use ims_diameter::base::{AuthSessionState, VendorSpecificApplicationId};
use ims_diameter::dict::{app, command as cmd};
use ims_diameter::peer::Application;
use ims_diameter::sgd::{Ofa, Ofr, Tfa, Tfr, UserIdentifier, TFR_FLAG_MORE_MESSAGES_TO_SEND};
use ims_diameter::{Command, ExperimentalResultCode, Outcome};
use ims_net::diameter::{Node, NodeConfig};
use std::borrow::Cow;
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
