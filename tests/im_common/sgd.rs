//! An SMSC for the SGd tests (`tests/im_sgd*.rs`): our Diameter node acting as the SMS-IWMSC
//! (answering OFRs by the SMS-SUBMIT's TP-DA) and the SMS-GMSC (sending TFRs).

use ims::diameter::base::{AuthSessionState, VendorSpecificApplicationId};
use ims::diameter::dict::{app, command as cmd};
use ims::diameter::peer::Application;
use ims::diameter::sgd::{
    tbcd, Ofa, Ofr, SmDeliveryFailureCause, SmEnumeratedDeliveryFailureCause, Tfa, Tfr,
};
use ims::diameter::{Command, ExperimentalResultCode, Outcome};
use ims::net::diameter::{Node, NodeConfig};
use ims::sms::{self, Direction, Tpdu};
use std::borrow::Cow;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::sync::mpsc;

use super::LO;

pub(crate) const SMSC_HOST: &str = "smsc.sms.example.org";
pub(crate) const SMS_REALM: &str = "sms.example.org";
pub(crate) const IPSMGW_HOST: &str = "ipsmgw.ims.example.org";
pub(crate) const SECS: Duration = Duration::from_secs(10);
/// The SMS-SUBMIT-REPORT (RP-ACK form) the SMSC returns in an OFA.
pub(crate) const SUBMIT_REPORT: &[u8] = b"\x01\x00\x52\x11\x72\x12\x00\x00\x00";
/// An SMS-SUBMIT-REPORT (RP-ERROR form) with TP-FCS 0xC0 "SC busy".
pub(crate) const SUBMIT_REPORT_BUSY: &[u8] = b"\x01\xc0\x00\x52\x11\x72\x12\x00\x00\x00";
/// SMS-DELIVER from +44 7912 34567, "Hi".
pub(crate) const DELIVER: &[u8] =
    b"\x04\x0b\x91\x44\x97\x21\x43\x65\xf7\x00\x00\x52\x11\x72\x12\x00\x00\x00\x02\xc8\x34";

/// Our Diameter node as the SMSC on 127.0.0.1:`port`: every OFR it gets goes to the returned
/// channel; it answers by the SMS-SUBMIT's TP-DA: 15550002 success with [`SUBMIT_REPORT`]
/// (`report`: else without SM-RP-UI), 15550009 5555 SC congestion (with
/// [`SUBMIT_REPORT_BUSY`] as SM-Diagnostic-Info when `report`), 15550008 5552, 15550007 only
/// after 3 s (too late).
pub(crate) async fn smsc(port: u16, report: bool) -> (Node, mpsc::UnboundedReceiver<Vec<u8>>) {
    let mut c = NodeConfig::new(SMSC_HOST, SMS_REALM);
    c.applications = vec![Application::tgpp_auth(app::SGD)];
    c.watchdog_jitter = Duration::ZERO;
    c.request_timeout = SECS;
    let node = Node::new(c);
    node.listen(SocketAddr::new(LO, port))
        .await
        .expect("SMSC listens");
    let (tx, rx) = mpsc::unbounded_channel();
    node.handle(app::SGD, cmd::MO_FORWARD_SHORT_MESSAGE, move |req| {
        let tx = tx.clone();
        async move {
            let v = req.message.view();
            let _ = tx.send(req.message.bytes().to_vec());
            let ofr = Ofr::decode(&v).expect("a valid OFR");
            let dest =
                match Tpdu::decode(&ofr.sm_rp_ui, Direction::MsToNetwork, sms::Carrier::RpData) {
                    Ok(Tpdu::Submit(s)) => s.destination.value,
                    other => panic!("an SMS-SUBMIT: {other:?}"),
                };
            let mut ofa = Ofa::answering(&ofr, SMSC_HOST, SMS_REALM);
            match dest.as_str() {
                "15550002" => {
                    ofa.set_outcome(Outcome::SUCCESS);
                    ofa.sm_rp_ui = report.then_some(Cow::Borrowed(SUBMIT_REPORT));
                }
                "15550009" => {
                    ofa.set_outcome(Outcome::tgpp(ExperimentalResultCode::SmDeliveryFailure));
                    ofa.sm_delivery_failure_cause = Some(SmDeliveryFailureCause {
                        sm_enumerated_delivery_failure_cause:
                            SmEnumeratedDeliveryFailureCause::ScCongestion,
                        sm_diagnostic_info: report.then_some(Cow::Borrowed(SUBMIT_REPORT_BUSY)),
                        ..Default::default()
                    });
                }
                "15550008" => {
                    ofa.set_outcome(Outcome::tgpp(ExperimentalResultCode::FacilityNotSupported))
                }
                _ => {
                    tokio::time::sleep(Duration::from_secs(3)).await;
                    ofa.set_outcome(Outcome::SUCCESS);
                }
            }
            ofa.encode_answer(v.header())
        }
    });
    (node, rx)
}

/// A TFR from the SMSC for `imsi` carrying [`DELIVER`], from the service centre +44 7900 000001.
pub(crate) fn tfr(smsc: &Node, imsi: &str) -> Tfr<'static> {
    Tfr {
        session_id: smsc.session_id().into(),
        vendor_specific_application_id: Some(VendorSpecificApplicationId::sgd()),
        auth_session_state: AuthSessionState::NoStateMaintained,
        origin_host: SMSC_HOST.into(),
        origin_realm: SMS_REALM.into(),
        destination_host: IPSMGW_HOST.into(),
        destination_realm: "ims.example.org".into(),
        user_name: imsi.to_string().into(),
        sc_address: tbcd("447900000001").unwrap().into(),
        sm_rp_ui: Cow::Borrowed(DELIVER),
        ..Default::default()
    }
}

/// Sends a TFR in a task of its own: the TFA's octets come on the returned handle.
pub(crate) fn send_tfr(smsc: &Node, t: Tfr<'static>) -> tokio::task::JoinHandle<Vec<u8>> {
    let smsc = smsc.clone();
    tokio::spawn(async move { smsc.send(&t).await.expect("a TFA").bytes().to_vec() })
}

pub(crate) fn tfa_of(bytes: &[u8]) -> Tfa<'_> {
    Tfa::decode(&ims::diameter::Message::parse(bytes).unwrap()).expect("a valid TFA")
}
