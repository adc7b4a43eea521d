//! The IP-SM-GW towards an external SMSC over SGd (TS 29.338 §6, TS 23.204 §6.1, §6.3): what an
//! RP message from a UE becomes in an MO-Forward-Short-Message-Request (OFR), what the
//! SMS-IWMSC's answer (OFA) becomes for the UE, what an SMS-GMSC's
//! MT-Forward-Short-Message-Request (TFR) becomes for the recipient, and how the recipient's
//! RP-ACK/RP-ERROR (or its absence) becomes the answer (TFA).
//!
//! Sans-IO: bytes and typed SGd commands in, bytes and typed SGd commands out; the IM server
//! ([`crate::im_server`]) owns the Diameter node and the SIP endpoint. With an SMSC the IP-SM-GW
//! stores no message: store and forward, retries and status reports are the SMSC's. It keeps
//! the Message Waiting Data ([`Mwd`]: which SMSC waits for which recipient, MNRF/MCEF) and
//! alerts those SMSCs with Alert-Service-Centre ([`alr`], S6c on the SGd connection, TS 29.338
//! §6.1) when the recipient registers or sends RP-SMMA ([`smma_answer`], [`alert_cause`]).
//!
//! Error mapping (TS 23.040 §11, the relay-layer interworking an IP-SM-GW does like an MSC):
//! - MO (OFA → RP cause, TS 24.011 §8.2.5.4): success → RP-ACK carrying the OFA's SM-RP-UI (the
//!   SMS-SUBMIT-REPORT) when there is one; DIAMETER_ERROR_SM_DELIVERY_FAILURE (5555) by its
//!   SM-Enumerated-Delivery-Failure-Cause: unknown service centre → 1 "unassigned number", SC
//!   congestion → 42 "congestion", invalid SME address → 21 "short message transfer rejected",
//!   user not SC user → 28 "unidentified subscriber", the MT-only causes → 38 "network out of
//!   order", the RP-ERROR carrying SM-Diagnostic-Info (the SMS-SUBMIT-REPORT) when present;
//!   DIAMETER_ERROR_FACILITY_NOT_SUPPORTED (5552) → 69 "requested facility not implemented";
//!   DIAMETER_ERROR_SERVICE_NOT_SUBSCRIBED (5556) → 50 "requested facility not subscribed";
//!   DIAMETER_ERROR_SERVICE_BARRED (5557) → 10 "call barred"; DIAMETER_ERROR_USER_UNKNOWN
//!   (5001) → 30 "unknown subscriber"; anything else — another error, no answer, no route —
//!   → 38 "network out of order" (a local or lower-layer failure).
//! - MT (UE → TFA, TS 23.040 §11.1): RP-ACK → DIAMETER_SUCCESS with the SMS-DELIVER-REPORT in
//!   SM-RP-UI; RP-ERROR 22 → 5555 MEMORY_CAPACITY_EXCEEDED, any other RP-ERROR → 5555
//!   EQUIPMENT_PROTOCOL_ERROR, both with the SMS-DELIVER-REPORT in SM-Diagnostic-Info; no
//!   RP-ACK/RP-ERROR within TR1N → 5555 EQUIPMENT_PROTOCOL_ERROR; a SIP failure response →
//!   5555 EQUIPMENT_PROTOCOL_ERROR; the recipient not registered (no third-party registration,
//!   or 480) → DIAMETER_ERROR_ABSENT_USER (5550) with Absent-User-Diagnostic-SM 11 "deregistered
//!   in the HSS/HLR for IMS"; a SIP transaction timeout (no final response, 408) → 5550 with 12
//!   "no response via the IP-SM-GW"; a recipient the IP-SM-GW cannot name →
//!   DIAMETER_ERROR_USER_UNKNOWN (5001).

use ims_diameter::base::{AuthSessionState, VendorSpecificApplicationId};
use ims_diameter::sgd::{
    tbcd, tbcd_digits, Ofa, Ofr, SmDeliveryFailureCause, SmEnumeratedDeliveryFailureCause,
    SmsmiCorrelationId, Tfa, Tfr, UserIdentifier,
};
use ims_diameter::{ExperimentalResultCode, Outcome};
use ims_sms::{decode, Address, Direction, RpBody, RpCause, RpMessage};
use std::borrow::Cow;

/// Absent-User-Diagnostic-SM "deregistered in the HSS/HLR for IMS" (TS 23.040 §3.3.2).
pub const ABSENT_DEREGISTERED_FOR_IMS: u32 = 11;
/// Absent-User-Diagnostic-SM "no response via the IP-SM-GW" (TS 23.040 §3.3.2).
pub const ABSENT_NO_RESPONSE_VIA_IP_SM_GW: u32 = 12;

/// The Diameter identities of an SGd exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SgdIdentity {
    /// Our Origin-Host.
    pub origin_host: String,
    /// Our Origin-Realm.
    pub origin_realm: String,
    /// The SMSC's Diameter host (Destination-Host of the OFR; `None`: routed by realm).
    pub smsc_host: Option<String>,
    /// The SMSC's realm (Destination-Realm of the OFR).
    pub smsc_realm: String,
}

/// Who submitted a short message (SM RP OA, TS 29.338 Table 6.2.1.1/1: User-Identifier).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Originator {
    /// The MSISDN (`+` and digits); for an MSISDN-less submitter the dummy MSISDN (TS 23.682
    /// §5.15: the dummy MSISDN and the IMSI go to the SMS-SC).
    pub msisdn: Option<String>,
    /// The IMSI, when known (User-Name).
    pub imsi: Option<String>,
    /// For a submitter without MSISDN: its SIP URI (SMSMI-Correlation-ID's
    /// Originating-SIP-URI, TS 23.204 §6.0a).
    pub sip_uri: Option<String>,
}

/// A mobile-originated RP-DATA to forward to the SMS-IWMSC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MoForward {
    /// The RP-Message-Reference (what the RP-ACK/RP-ERROR to the UE names).
    pub rp_mr: u8,
    /// The service centre the UE addressed (RP-DA: digits, no `+`).
    pub sc_address: String,
    /// The TPDU (SMS-SUBMIT or SMS-COMMAND) from RP-User-Data.
    pub tpdu: Vec<u8>,
}

/// What an RP message from a UE is, with an SMSC configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MoInput {
    /// An RP-DATA to forward in an OFR.
    Forward(MoForward),
    /// A malformed RP-DATA: this answer (RP-ERROR) goes back to the UE, nothing is forwarded.
    Reject(Vec<u8>),
    /// Not an RP-DATA (an RP-ACK/RP-ERROR answering an MT RP-DATA, an RP-SMMA).
    NotData,
}

/// Reads an RP message a UE sent: an RP-DATA becomes what the OFR carries. `default_sc` (digits)
/// stands in for an empty RP-DA.
pub fn mo_input(body: &[u8], default_sc: &str) -> MoInput {
    let Some(&first) = body.first() else {
        return MoInput::NotData;
    };
    // RP-MTI 0: RP-DATA from the MS (TS 24.011 §8.2.2)
    if first & 0x07 != 0 {
        return MoInput::NotData;
    }
    let rp = match RpMessage::decode(body, Direction::MsToNetwork) {
        Ok(rp) => rp,
        Err(e) => {
            return match e.answer(body, Direction::MsToNetwork) {
                Some(a) => MoInput::Reject(a),
                None => MoInput::NotData,
            }
        }
    };
    match rp.body {
        RpBody::Data {
            destination,
            user_data,
            ..
        } if !user_data.is_empty() => {
            let sc = destination
                .map(|a| a.value)
                .filter(|v| tbcd(v).is_some())
                .unwrap_or_else(|| default_sc.trim_start_matches('+').to_string());
            MoInput::Forward(MoForward {
                rp_mr: rp.message_reference,
                sc_address: sc,
                tpdu: user_data.to_vec(),
            })
        }
        RpBody::Data { .. } => ims_sms::answer::rp_error(
            Direction::MsToNetwork,
            rp.message_reference,
            RpCause::INVALID_MANDATORY_INFORMATION,
        )
        .map_or(MoInput::NotData, MoInput::Reject),
        _ => MoInput::NotData,
    }
}

/// The OFR forwarding `fwd` from `from` (TS 29.338 §6.2.1.1, §6.3.2.2): SC-Address = the RP-DA
/// (TBCD digits), User-Identifier = the submitter's MSISDN (TBCD) and IMSI (User-Name) as far
/// as known, SM-RP-UI = the TPDU, SMSMI-Correlation-ID with the submitter's SIP URI (and the
/// recipient's, when addressed by one) for an MSISDN-less submitter (TS 23.204 §6.0a).
/// Auth-Session-State NO_STATE_MAINTAINED, Vendor-Specific-Application-Id {10415, SGd}.
pub fn ofr(
    session_id: String,
    id: &SgdIdentity,
    fwd: &MoForward,
    from: &Originator,
    to_sip_uri: Option<&str>,
) -> Ofr<'static> {
    let correlation =
        (from.sip_uri.is_some() || to_sip_uri.is_some()).then(|| SmsmiCorrelationId {
            originating_sip_uri: from.sip_uri.clone().map(Cow::Owned),
            destination_sip_uri: to_sip_uri.map(|u| Cow::Owned(u.to_string())),
            ..Default::default()
        });
    Ofr {
        session_id: session_id.into(),
        vendor_specific_application_id: Some(VendorSpecificApplicationId::sgd()),
        auth_session_state: AuthSessionState::NoStateMaintained,
        origin_host: id.origin_host.clone().into(),
        origin_realm: id.origin_realm.clone().into(),
        destination_host: id.smsc_host.clone().map(Cow::Owned),
        destination_realm: id.smsc_realm.clone().into(),
        sc_address: tbcd(&fwd.sc_address).unwrap_or_default().into(),
        user_identifier: UserIdentifier {
            user_name: from.imsi.clone().map(Cow::Owned),
            msisdn: from.msisdn.as_deref().and_then(tbcd).map(Cow::Owned),
            ..Default::default()
        },
        sm_rp_ui: fwd.tpdu.clone().into(),
        smsmi_correlation_id: correlation,
        ..Default::default()
    }
}

/// The RP cause for an OFA that is not a success (see the module documentation), `None` for a
/// success.
pub fn mo_cause(ofa: &Ofa<'_>) -> Option<RpCause> {
    let outcome = ofa.outcome()?;
    if outcome.is_success() {
        return None;
    }
    Some(match outcome.code() {
        5555 => match ofa
            .sm_delivery_failure_cause
            .as_ref()
            .map(|c| c.sm_enumerated_delivery_failure_cause)
        {
            Some(SmEnumeratedDeliveryFailureCause::UnknownServiceCentre) => {
                RpCause::UNASSIGNED_NUMBER
            }
            Some(SmEnumeratedDeliveryFailureCause::ScCongestion) => RpCause::CONGESTION,
            Some(SmEnumeratedDeliveryFailureCause::InvalidSmeAddress) => {
                RpCause::SHORT_MESSAGE_TRANSFER_REJECTED
            }
            Some(SmEnumeratedDeliveryFailureCause::UserNotScUser) => {
                RpCause::UNIDENTIFIED_SUBSCRIBER
            }
            _ => RpCause::NETWORK_OUT_OF_ORDER,
        },
        5552 => RpCause::FACILITY_NOT_IMPLEMENTED,
        5556 => RpCause::FACILITY_NOT_SUBSCRIBED,
        5557 => RpCause::CALL_BARRED,
        5001 => RpCause::UNKNOWN_SUBSCRIBER,
        _ => RpCause::NETWORK_OUT_OF_ORDER,
    })
}

/// The answer to the UE's RP-DATA `rp_mr` from the OFA (`None`: no answer came, or it was not a
/// valid OFA): RP-ACK with the SMS-SUBMIT-REPORT, or RP-ERROR with the mapped cause (and the
/// SMS-SUBMIT-REPORT of SM-Diagnostic-Info when present).
pub fn mo_answer(rp_mr: u8, ofa: Option<&Ofa<'_>>) -> Option<Vec<u8>> {
    let dir = Direction::NetworkToMs;
    let Some(ofa) = ofa else {
        return RpMessage::error(dir, rp_mr, RpCause::NETWORK_OUT_OF_ORDER, None)
            .encode()
            .ok();
    };
    match mo_cause(ofa) {
        None if ofa.outcome().is_some() => RpMessage::ack(dir, rp_mr, ofa.sm_rp_ui.as_deref())
            .encode()
            .ok(),
        // an answer without an outcome is no answer
        None => RpMessage::error(dir, rp_mr, RpCause::NETWORK_OUT_OF_ORDER, None)
            .encode()
            .ok(),
        Some(cause) => {
            let report = ofa
                .sm_delivery_failure_cause
                .as_ref()
                .and_then(|c| c.sm_diagnostic_info.as_deref());
            RpMessage::error(dir, rp_mr, cause, report).encode().ok()
        }
    }
}

/// The RP-DATA (network → MS) with reference `rp_mr` carrying the TFR's TPDU, its RP-OA the
/// TFR's SC-Address (`default_sc`, digits, when that is not a TBCD number).
pub fn mt_rp_data(rp_mr: u8, tfr: &Tfr<'_>, default_sc: &str) -> Option<Vec<u8>> {
    let sc = tbcd_digits(&tfr.sc_address)
        .filter(|d| !d.is_empty())
        .unwrap_or_else(|| default_sc.trim_start_matches('+').to_string());
    RpMessage::data_mt(rp_mr, Address::international(&sc), &tfr.sm_rp_ui)
        .encode()
        .ok()
}

/// How an MT delivery attempt for a TFR ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MtResult {
    /// The recipient's RP-ACK, with its SMS-DELIVER-REPORT if any.
    Acked(Option<Vec<u8>>),
    /// The recipient's RP-ERROR: its cause and SMS-DELIVER-REPORT if any.
    Refused {
        /// RP-Cause.
        cause: RpCause,
        /// The SMS-DELIVER-REPORT (RP-ERROR form).
        report: Option<Vec<u8>>,
    },
    /// The recipient has no live registration (or the MESSAGE got 480).
    NotRegistered,
    /// The MESSAGE got no final response (a SIP transaction timeout, 408).
    NoSipAnswer,
    /// The MESSAGE got this failure response.
    SipRefused(u16),
    /// The MESSAGE got a 2xx but no RP-ACK/RP-ERROR came within TR1N.
    NoRpAnswer,
    /// The IP-SM-GW cannot name the recipient (User-Name / SMSMI-Correlation-ID unknown).
    UnknownUser,
}

impl MtResult {
    /// The result of a MESSAGE's final status (`None`: none came) that is not a 2xx.
    pub fn of_sip(status: Option<u16>) -> MtResult {
        match status {
            None | Some(408) => MtResult::NoSipAnswer,
            Some(480) => MtResult::NotRegistered,
            Some(c) => MtResult::SipRefused(c),
        }
    }
}

/// The recipient's answer to an MT RP-DATA: its RP-Message-Reference and the result, `None`
/// when `body` is not a valid RP-ACK/RP-ERROR from an MS.
pub fn mt_answer_of(body: &[u8]) -> Option<(u8, MtResult)> {
    let sms = decode(body, Direction::MsToNetwork).ok()?;
    let mr = sms.rp.message_reference;
    match sms.rp.body {
        RpBody::Ack { user_data } => Some((mr, MtResult::Acked(user_data.map(<[u8]>::to_vec)))),
        RpBody::Error {
            cause, user_data, ..
        } => Some((
            mr,
            MtResult::Refused {
                cause,
                report: user_data.map(<[u8]>::to_vec),
            },
        )),
        _ => None,
    }
}

/// The TFA for `tfr` from `origin_host` / `origin_realm` reporting `result` (see the module
/// documentation for the mapping).
pub fn tfa<'a>(
    tfr: &Tfr<'a>,
    origin_host: &'a str,
    origin_realm: &'a str,
    result: &'a MtResult,
) -> Tfa<'a> {
    let mut a = Tfa::answering(tfr, origin_host, origin_realm);
    let failure = |cause, report: &'a Option<Vec<u8>>| SmDeliveryFailureCause {
        sm_enumerated_delivery_failure_cause: cause,
        sm_diagnostic_info: report.as_deref().map(Cow::Borrowed),
        ..Default::default()
    };
    match result {
        MtResult::Acked(report) => {
            a.set_outcome(Outcome::SUCCESS);
            a.sm_rp_ui = report.as_deref().map(Cow::Borrowed);
        }
        MtResult::Refused { cause, report } => {
            a.set_outcome(Outcome::tgpp(ExperimentalResultCode::SmDeliveryFailure));
            let c = if *cause == RpCause::MEMORY_CAPACITY_EXCEEDED {
                SmEnumeratedDeliveryFailureCause::MemoryCapacityExceeded
            } else {
                SmEnumeratedDeliveryFailureCause::EquipmentProtocolError
            };
            a.sm_delivery_failure_cause = Some(failure(c, report));
        }
        MtResult::SipRefused(_) | MtResult::NoRpAnswer => {
            a.set_outcome(Outcome::tgpp(ExperimentalResultCode::SmDeliveryFailure));
            a.sm_delivery_failure_cause = Some(failure(
                SmEnumeratedDeliveryFailureCause::EquipmentProtocolError,
                &None,
            ));
        }
        MtResult::NotRegistered => {
            a.set_outcome(Outcome::tgpp(ExperimentalResultCode::AbsentUser));
            a.absent_user_diagnostic_sm = Some(ABSENT_DEREGISTERED_FOR_IMS);
        }
        MtResult::NoSipAnswer => {
            a.set_outcome(Outcome::tgpp(ExperimentalResultCode::AbsentUser));
            a.absent_user_diagnostic_sm = Some(ABSENT_NO_RESPONSE_VIA_IP_SM_GW);
        }
        MtResult::UnknownUser => {
            a.set_outcome(Outcome::tgpp(ExperimentalResultCode::UserUnknown));
        }
    }
    a
}

/// Why an SMSC's message waits for its recipient: the flags of the Message Waiting Data
/// (TS 23.040 §3.2.6): MNRF (absent) or MCEF (memory capacity exceeded).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitReason {
    /// The recipient was absent (not registered, 480, no SIP answer): MNRF.
    Absent,
    /// The recipient's memory was full (RP-ERROR 22): MCEF.
    MemoryCapacityExceeded,
}

impl MtResult {
    /// Whether this failed delivery leaves the SMSC waiting for an alert, and why: an absent
    /// recipient (TFA 5550) or a full memory (TFA 5555 MEMORY_CAPACITY_EXCEEDED).
    pub fn wait_reason(&self) -> Option<WaitReason> {
        match self {
            MtResult::NotRegistered | MtResult::NoSipAnswer => Some(WaitReason::Absent),
            MtResult::Refused { cause, .. } if *cause == RpCause::MEMORY_CAPACITY_EXCEEDED => {
                Some(WaitReason::MemoryCapacityExceeded)
            }
            _ => None,
        }
    }
}

/// A service centre waiting to be alerted (one MWD entry, TS 23.040 §3.2.6): the SMS-GMSC that
/// sent the TFR, as its Origin-Host/-Realm and SC-Address named it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaitingCentre {
    /// The TFR's Origin-Host (Destination-Host of the ALR).
    pub host: String,
    /// The TFR's Origin-Realm (Destination-Realm of the ALR).
    pub realm: String,
    /// The TFR's SC-Address octets, as received (SC-Address of the ALR).
    pub sc_address: Vec<u8>,
}

impl WaitingCentre {
    /// The SMSC that sent `tfr`.
    pub fn of(tfr: &Tfr<'_>) -> WaitingCentre {
        WaitingCentre {
            host: tfr.origin_host.to_string(),
            realm: tfr.origin_realm.to_string(),
            sc_address: tfr.sc_address.to_vec(),
        }
    }
}

/// The Message Waiting Data the IP-SM-GW keeps for one recipient.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MessageWaiting {
    /// The service centres holding messages for it, in the order they failed.
    pub centres: Vec<WaitingCentre>,
    /// MNRF: a delivery failed because the recipient was absent.
    pub not_reachable: bool,
    /// MCEF: a delivery failed because its memory was full.
    pub memory_exceeded: bool,
    /// The IMSI the last TFR named (User-Name), given back in the ALR's User-Identifier.
    pub imsi: Option<String>,
    /// For a recipient without MSISDN: its SIP URI (the TFR's Destination-SIP-URI), given back
    /// in the ALR's SMSMI-Correlation-ID.
    pub sip_uri: Option<String>,
}

impl MessageWaiting {
    /// The record kept in the store: one JSON object naming `user`.
    pub fn to_json(&self, user: &str) -> String {
        let centres: Vec<serde_json::Value> = self
            .centres
            .iter()
            .map(|c| {
                serde_json::json!({"host": c.host, "realm": c.realm,
                    "sc_address": to_hex(&c.sc_address)})
            })
            .collect();
        serde_json::json!({
            "user": user, "centres": centres, "mnrf": self.not_reachable,
            "mcef": self.memory_exceeded, "imsi": self.imsi, "sip_uri": self.sip_uri,
        })
        .to_string()
    }

    /// The user and record [`MessageWaiting::to_json`] wrote; `None` when `text` is not one.
    pub fn from_json(text: &[u8]) -> Option<(String, MessageWaiting)> {
        let v: serde_json::Value = serde_json::from_slice(text).ok()?;
        let user = v.get("user")?.as_str()?.to_string();
        let centres = v
            .get("centres")?
            .as_array()?
            .iter()
            .map(|c| {
                Some(WaitingCentre {
                    host: c.get("host")?.as_str()?.to_string(),
                    realm: c.get("realm")?.as_str()?.to_string(),
                    sc_address: from_hex(c.get("sc_address")?.as_str()?)?,
                })
            })
            .collect::<Option<Vec<_>>>()?;
        let text_of = |k: &str| v.get(k).and_then(|x| x.as_str()).map(str::to_string);
        Some((
            user,
            MessageWaiting {
                centres,
                not_reachable: v.get("mnrf")?.as_bool()?,
                memory_exceeded: v.get("mcef")?.as_bool()?,
                imsi: text_of("imsi"),
                sip_uri: text_of("sip_uri"),
            },
        ))
    }
}

fn to_hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn from_hex(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// The Message Waiting Data of every recipient (by canonical identity), kept by the IP-SM-GW
/// toward an external SMSC: which SMS-GMSCs wait to be alerted for whom, and why (TS 23.040
/// §3.2.6, §10.3). The rules are the HLR's of TS 23.040 §10.3 (figures 20a-c):
/// - a TFR that failed because the recipient was absent adds its SMSC and sets MNRF; one that
///   failed on a full memory adds its SMSC and sets MCEF ([`Mwd::record`]);
/// - the recipient registering again ([`Mwd::registered`]): with MNRF set and MCEF clear every
///   waiting SMSC is alerted and the data cleared; with MCEF set only MNRF is cleared (the
///   memory is still full: the alert waits for the RP-SMMA);
/// - the recipient's RP-SMMA ([`Mwd::memory_available`]): every waiting SMSC is alerted and the
///   data cleared;
/// - the SMSCs whose alert failed with a temporary cause are put back ([`Mwd::restore`]) and
///   alerted on the next occasion.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Mwd {
    users: std::collections::BTreeMap<String, MessageWaiting>,
}

impl Mwd {
    /// Empty.
    pub fn new() -> Mwd {
        Mwd::default()
    }

    /// Records that `centre`'s TFR for `user` failed for `reason`; `imsi` / `sip_uri`: how the
    /// TFR named the recipient (User-Name, Destination-SIP-URI).
    pub fn record(
        &mut self,
        user: &str,
        centre: WaitingCentre,
        reason: WaitReason,
        imsi: Option<&str>,
        sip_uri: Option<&str>,
    ) {
        let w = self.users.entry(user.to_string()).or_default();
        if !w.centres.contains(&centre) {
            w.centres.push(centre);
        }
        match reason {
            WaitReason::Absent => w.not_reachable = true,
            WaitReason::MemoryCapacityExceeded => w.memory_exceeded = true,
        }
        if let Some(i) = imsi.filter(|i| !i.is_empty()) {
            w.imsi = Some(i.to_string());
        }
        if let Some(u) = sip_uri {
            w.sip_uri = Some(u.to_string());
        }
    }

    /// A TFR from `centre` reached `user` after all (the SMSC retried on its own): that SMSC
    /// no longer waits (as a successful Report-SM-Delivery-Status clears its MWD entry at the
    /// HLR, TS 23.040 §10.2); the flags go with the last entry. True when something changed.
    pub fn delivered(&mut self, user: &str, centre: &WaitingCentre) -> bool {
        let Some(w) = self.users.get_mut(user) else {
            return false;
        };
        let before = w.centres.len();
        w.centres.retain(|c| c != centre);
        let changed = w.centres.len() != before;
        if w.centres.is_empty() {
            self.users.remove(user);
        }
        changed
    }

    /// `user` registered: the data to alert with (taken out) when MNRF was set and MCEF clear;
    /// with MCEF set MNRF is cleared and nothing is alerted; `None` too when nothing waits.
    pub fn registered(&mut self, user: &str) -> Option<MessageWaiting> {
        let w = self.users.get_mut(user)?;
        if w.memory_exceeded {
            w.not_reachable = false;
            return None;
        }
        if !w.not_reachable {
            return None;
        }
        self.users.remove(user)
    }

    /// `user` sent RP-SMMA (memory available, and reachable): every waiting SMSC is to be
    /// alerted; the data is taken out (`None`: nothing waits).
    pub fn memory_available(&mut self, user: &str) -> Option<MessageWaiting> {
        self.users.remove(user)
    }

    /// Puts back what an alert could not clear: `w`'s centres (those whose alert failed with a
    /// temporary cause) with its flags, merged with what was recorded meanwhile.
    pub fn restore(&mut self, user: &str, w: MessageWaiting) {
        if w.centres.is_empty() {
            return;
        }
        let cur = self.users.entry(user.to_string()).or_default();
        for c in w.centres {
            if !cur.centres.contains(&c) {
                cur.centres.push(c);
            }
        }
        cur.not_reachable |= w.not_reachable;
        cur.memory_exceeded |= w.memory_exceeded;
        if cur.imsi.is_none() {
            cur.imsi = w.imsi;
        }
        if cur.sip_uri.is_none() {
            cur.sip_uri = w.sip_uri;
        }
    }

    /// Loads a record ([`MessageWaiting::from_json`]).
    pub fn insert(&mut self, user: &str, w: MessageWaiting) {
        if !w.centres.is_empty() {
            self.users.insert(user.to_string(), w);
        }
    }

    /// What waits for `user`.
    pub fn get(&self, user: &str) -> Option<&MessageWaiting> {
        self.users.get(user)
    }

    /// The recipients something waits for.
    pub fn len(&self) -> usize {
        self.users.len()
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }
}

/// The Alert-Service-Centre-Request telling `centre` that the recipient it holds messages for
/// can receive them again (TS 29.338 §5.3.2.5; on the SGd connection with the S6c
/// Application-Id, §6.1): SC-Address as the TFR gave it, User-Identifier = the recipient's
/// MSISDN (`msisdn`, `+` and digits: MSISDN-Alert) and the IMSI the TFR named,
/// SMSMI-Correlation-ID{Destination-SIP-URI} for a recipient without MSISDN,
/// SMS-GMSC-Alert-Event "UE available for MT SMS", Serving-Node = this IP-SM-GW
/// (IP-SM-GW-Name/-Realm).
pub fn alr<'a>(
    session_id: String,
    id: &'a SgdIdentity,
    msisdn: Option<&str>,
    w: &'a MessageWaiting,
    centre: &'a WaitingCentre,
) -> ims_diameter::s6c::Alr<'a> {
    use ims_diameter::s6c::{Alr, ServingNode, SMS_GMSC_ALERT_EVENT_UE_AVAILABLE_FOR_MT_SMS};
    Alr {
        session_id: session_id.into(),
        vendor_specific_application_id: Some(VendorSpecificApplicationId::s6c()),
        auth_session_state: AuthSessionState::NoStateMaintained,
        origin_host: Cow::Borrowed(&id.origin_host),
        origin_realm: Cow::Borrowed(&id.origin_realm),
        destination_host: Some(Cow::Borrowed(&centre.host)),
        destination_realm: Cow::Borrowed(&centre.realm),
        sc_address: Cow::Borrowed(&centre.sc_address),
        user_identifier: UserIdentifier {
            msisdn: msisdn.and_then(tbcd).map(Cow::Owned),
            user_name: w.imsi.as_deref().map(Cow::Borrowed),
            ..Default::default()
        },
        smsmi_correlation_id: w.sip_uri.as_deref().map(|u| SmsmiCorrelationId {
            destination_sip_uri: Some(Cow::Borrowed(u)),
            ..Default::default()
        }),
        sms_gmsc_alert_event: Some(SMS_GMSC_ALERT_EVENT_UE_AVAILABLE_FOR_MT_SMS),
        serving_node: Some(ServingNode {
            ip_sm_gw_name: Some(Cow::Borrowed(&id.origin_host)),
            ip_sm_gw_realm: Some(Cow::Borrowed(&id.origin_realm)),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// What an alert's answer means for the UE whose RP-SMMA triggered it: `None` when the SMSC
/// took it (success), else the RP-Cause of the RP-ERROR, as TS 23.040 §11.2 maps the errors of
/// ReadyForSM (memory available) — DIAMETER_ERROR_USER_UNKNOWN (5001) → 30 "unknown
/// subscriber", DIAMETER_ERROR_FACILITY_NOT_SUPPORTED (5552) → 69 "requested facility not
/// implemented", anything else (another error, a missing or invalid AVP, no answer, no route:
/// a system failure or a local failure) → 38 "network out of order".
pub fn alert_cause(ala: Option<&ims_diameter::s6c::Ala<'_>>) -> Option<RpCause> {
    let Some(outcome) = ala.and_then(|a| a.outcome()) else {
        return Some(RpCause::NETWORK_OUT_OF_ORDER);
    };
    if outcome.is_success() {
        return None;
    }
    Some(match outcome.code() {
        5001 => RpCause::UNKNOWN_SUBSCRIBER,
        5552 => RpCause::FACILITY_NOT_IMPLEMENTED,
        _ => RpCause::NETWORK_OUT_OF_ORDER,
    })
}

/// Whether an alert that failed with `cause` is worth trying again later (the centre stays
/// waiting): every cause but "unknown subscriber" and "facility not implemented".
pub fn alert_retryable(cause: RpCause) -> bool {
    cause != RpCause::UNKNOWN_SUBSCRIBER && cause != RpCause::FACILITY_NOT_IMPLEMENTED
}

/// The RP-Message-Reference of an RP-SMMA from the MS, `None` for any other body.
pub fn smma_of(body: &[u8]) -> Option<u8> {
    let rp = RpMessage::decode(body, Direction::MsToNetwork).ok()?;
    matches!(rp.body, RpBody::Smma).then_some(rp.message_reference)
}

/// The answer to the UE's RP-SMMA `rp_mr`: RP-ACK when every alert went through (`cause`
/// `None`), else RP-ERROR with `cause` (TS 24.011 §7.3.4, TS 23.040 §11.2).
pub fn smma_answer(rp_mr: u8, cause: Option<RpCause>) -> Option<Vec<u8>> {
    let dir = Direction::NetworkToMs;
    match cause {
        None => RpMessage::ack(dir, rp_mr, None).encode().ok(),
        Some(c) => RpMessage::error(dir, rp_mr, c, None).encode().ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ims_diameter::{Command, Message};

    const TPDU: &[u8] = b"\x01\x05\x0b\x91\x44\x97\x65\x43\x21\xf0\x00\x00\x02\xc8\x34";

    fn id() -> SgdIdentity {
        SgdIdentity {
            origin_host: "ipsmgw.ims.example.org".into(),
            origin_realm: "ims.example.org".into(),
            smsc_host: Some("smsc.sms.example.org".into()),
            smsc_realm: "sms.example.org".into(),
        }
    }

    #[test]
    fn an_rp_data_becomes_an_ofr_with_the_rp_da_as_sc_address() {
        let body = RpMessage::data_mo(9, Address::international("447900000001"), TPDU)
            .encode()
            .unwrap();
        let MoInput::Forward(fwd) = mo_input(&body, "+15550000") else {
            panic!("forwarded")
        };
        assert_eq!((fwd.rp_mr, fwd.sc_address.as_str()), (9, "447900000001"));
        let from = Originator {
            msisdn: Some("+15550001".into()),
            imsi: Some("001010000000001".into()),
            sip_uri: None,
        };
        let ofr = ofr("s;1".into(), &id(), &fwd, &from, None);
        let wire = ofr.encode(1, 2);
        let got = Ofr::decode(&Message::parse(&wire).unwrap()).unwrap();
        assert_eq!(&*got.sc_address, b"\x44\x97\x00\x00\x00\x10");
        assert_eq!(got.sm_rp_ui.as_ref(), TPDU);
        assert_eq!(
            got.user_identifier.msisdn.as_deref(),
            Some(&b"\x51\x55\x00\x10"[..])
        );
        assert_eq!(
            got.user_identifier.user_name.as_deref(),
            Some("001010000000001")
        );
        assert!(got.smsmi_correlation_id.is_none());
        assert_eq!(
            got.destination_host.as_deref(),
            Some("smsc.sms.example.org")
        );
        // not RP-DATA: left to the IP-SM-GW core; an empty RP-User-Data: RP-ERROR 96
        let smma = RpMessage::smma(1).encode().unwrap();
        assert_eq!(mo_input(&smma, "1"), MoInput::NotData);
        let empty = RpMessage::data_mo(4, Address::international("1"), &[])
            .encode()
            .unwrap();
        let MoInput::Reject(e) = mo_input(&empty, "1") else {
            panic!("rejected")
        };
        let e = RpMessage::decode(&e, Direction::NetworkToMs).unwrap();
        assert!(matches!(
            e.body,
            RpBody::Error { cause, .. } if cause == RpCause::INVALID_MANDATORY_INFORMATION
        ));
    }

    fn ofa_with(outcome: Outcome, cause: Option<SmEnumeratedDeliveryFailureCause>) -> Ofa<'static> {
        let mut a = Ofa::default();
        a.set_outcome(outcome);
        a.sm_delivery_failure_cause = cause.map(|c| SmDeliveryFailureCause {
            sm_enumerated_delivery_failure_cause: c,
            sm_diagnostic_info: Some(Cow::Borrowed(b"\x01\xd0")),
            ..Default::default()
        });
        a
    }

    #[test]
    fn ofa_outcomes_map_to_rp_causes() {
        use SmEnumeratedDeliveryFailureCause as C;
        let sdf = Outcome::tgpp(ExperimentalResultCode::SmDeliveryFailure);
        for (ofa, want) in [
            (ofa_with(Outcome::SUCCESS, None), None),
            (ofa_with(sdf, Some(C::UnknownServiceCentre)), Some(1)),
            (ofa_with(sdf, Some(C::ScCongestion)), Some(42)),
            (ofa_with(sdf, Some(C::InvalidSmeAddress)), Some(21)),
            (ofa_with(sdf, Some(C::UserNotScUser)), Some(28)),
            (ofa_with(sdf, Some(C::EquipmentProtocolError)), Some(38)),
            (
                ofa_with(
                    Outcome::tgpp(ExperimentalResultCode::FacilityNotSupported),
                    None,
                ),
                Some(69),
            ),
            (
                ofa_with(
                    Outcome::tgpp(ExperimentalResultCode::ServiceNotSubscribed),
                    None,
                ),
                Some(50),
            ),
            (
                ofa_with(Outcome::tgpp(ExperimentalResultCode::ServiceBarred), None),
                Some(10),
            ),
            (
                ofa_with(Outcome::tgpp(ExperimentalResultCode::UserUnknown), None),
                Some(30),
            ),
            (ofa_with(Outcome::from_result_code(3002), None), Some(38)),
        ] {
            assert_eq!(mo_cause(&ofa).map(|c| c.0), want, "{:?}", ofa.outcome());
            let rp = mo_answer(5, Some(&ofa)).unwrap();
            let rp = RpMessage::decode(&rp, Direction::NetworkToMs).unwrap();
            assert_eq!(rp.message_reference, 5);
            match (rp.body, want) {
                (RpBody::Ack { .. }, None) => {}
                (
                    RpBody::Error {
                        cause, user_data, ..
                    },
                    Some(w),
                ) => {
                    assert_eq!(cause.0, w);
                    // the SM-Diagnostic-Info travels as the RP-ERROR's report
                    let has = ofa.sm_delivery_failure_cause.is_some();
                    assert_eq!(user_data.is_some(), has);
                }
                (b, w) => panic!("{b:?} for {w:?}"),
            }
        }
        // no answer: 38
        let rp = mo_answer(6, None).unwrap();
        let rp = RpMessage::decode(&rp, Direction::NetworkToMs).unwrap();
        assert!(matches!(rp.body, RpBody::Error { cause, .. } if cause.0 == 38));
    }

    #[test]
    fn mt_results_map_to_tfa_outcomes() {
        let tfr = Tfr {
            session_id: "smsc;1".into(),
            sc_address: Cow::Borrowed(b"\x44\x97\x00\x00\x00\x10"),
            sm_rp_ui: Cow::Borrowed(b"\x04\x00"),
            ..Default::default()
        };
        let rp = mt_rp_data(3, &tfr, "+1").unwrap();
        let m = RpMessage::decode(&rp, Direction::NetworkToMs).unwrap();
        let RpBody::Data {
            originator,
            user_data,
            ..
        } = m.body
        else {
            panic!("RP-DATA")
        };
        assert_eq!(originator.unwrap().value, "447900000001");
        assert_eq!(user_data, b"\x04\x00");
        let report = Some(vec![0u8, 0xd0]);
        for (r, code, cause, diag) in [
            (MtResult::Acked(Some(vec![0, 0])), 2001, None, None),
            (
                MtResult::Refused {
                    cause: RpCause::MEMORY_CAPACITY_EXCEEDED,
                    report: report.clone(),
                },
                5555,
                Some(SmEnumeratedDeliveryFailureCause::MemoryCapacityExceeded),
                None,
            ),
            (
                MtResult::Refused {
                    cause: RpCause::PROTOCOL_ERROR_UNSPECIFIED,
                    report: None,
                },
                5555,
                Some(SmEnumeratedDeliveryFailureCause::EquipmentProtocolError),
                None,
            ),
            (
                MtResult::SipRefused(403),
                5555,
                Some(SmEnumeratedDeliveryFailureCause::EquipmentProtocolError),
                None,
            ),
            (
                MtResult::NoRpAnswer,
                5555,
                Some(SmEnumeratedDeliveryFailureCause::EquipmentProtocolError),
                None,
            ),
            (MtResult::NotRegistered, 5550, None, Some(11)),
            (MtResult::of_sip(Some(480)), 5550, None, Some(11)),
            (MtResult::of_sip(None), 5550, None, Some(12)),
            (MtResult::of_sip(Some(408)), 5550, None, Some(12)),
            (MtResult::UnknownUser, 5001, None, None),
        ] {
            let a = tfa(&tfr, "ipsmgw", "ims", &r);
            assert_eq!(a.outcome().map(|o| o.code()), Some(code), "{r:?}");
            assert_eq!(
                a.sm_delivery_failure_cause
                    .as_ref()
                    .map(|c| c.sm_enumerated_delivery_failure_cause),
                cause,
                "{r:?}"
            );
            assert_eq!(a.absent_user_diagnostic_sm, diag, "{r:?}");
            if let MtResult::Acked(rep) = &r {
                assert_eq!(a.sm_rp_ui.as_deref(), rep.as_deref());
            }
            if let MtResult::Refused { report: rep, .. } = &r {
                let d = a.sm_delivery_failure_cause.as_ref().unwrap();
                assert_eq!(d.sm_diagnostic_info.as_deref(), rep.as_deref());
            }
            assert_eq!(a.session_id, "smsc;1");
        }
        // the UE's answers
        let ack = RpMessage::ack(Direction::MsToNetwork, 3, Some(b"\x00\x00"))
            .encode()
            .unwrap();
        assert_eq!(
            mt_answer_of(&ack),
            Some((3, MtResult::Acked(Some(vec![0, 0]))))
        );
        let err = RpMessage::error(Direction::MsToNetwork, 4, RpCause(22), None)
            .encode()
            .unwrap();
        assert_eq!(
            mt_answer_of(&err),
            Some((
                4,
                MtResult::Refused {
                    cause: RpCause(22),
                    report: None
                }
            ))
        );
        assert_eq!(mt_answer_of(&RpMessage::smma(1).encode().unwrap()), None);
    }

    fn centre(n: u8) -> WaitingCentre {
        WaitingCentre {
            host: format!("smsc{n}.sms.example.org"),
            realm: "sms.example.org".into(),
            sc_address: vec![0x44, 0x97, 0x00, 0x00, 0x00, 0x10 + n],
        }
    }

    #[test]
    fn message_waiting_data_follows_the_hlr_rules_and_survives_json() {
        const BOB: &str = "tel:+15550002";
        // which failed deliveries leave the SMSC waiting
        assert_eq!(
            MtResult::NotRegistered.wait_reason(),
            Some(WaitReason::Absent)
        );
        assert_eq!(
            MtResult::NoSipAnswer.wait_reason(),
            Some(WaitReason::Absent)
        );
        let full = MtResult::Refused {
            cause: RpCause::MEMORY_CAPACITY_EXCEEDED,
            report: None,
        };
        assert_eq!(full.wait_reason(), Some(WaitReason::MemoryCapacityExceeded));
        for r in [
            MtResult::Acked(None),
            MtResult::Refused {
                cause: RpCause(111),
                report: None,
            },
            MtResult::SipRefused(403),
            MtResult::NoRpAnswer,
            MtResult::UnknownUser,
        ] {
            assert_eq!(r.wait_reason(), None, "{r:?}");
        }
        // absent → registration alerts, once; the same SMSC twice is one entry
        let mut mwd = Mwd::new();
        assert_eq!(mwd.registered(BOB), None);
        mwd.record(
            BOB,
            centre(1),
            WaitReason::Absent,
            Some("001010000000002"),
            None,
        );
        mwd.record(
            BOB,
            centre(1),
            WaitReason::Absent,
            Some("001010000000002"),
            None,
        );
        mwd.record(BOB, centre(2), WaitReason::Absent, None, None);
        let w = mwd.registered(BOB).expect("alerted on registration");
        assert_eq!(w.centres, vec![centre(1), centre(2)]);
        assert_eq!(w.imsi.as_deref(), Some("001010000000002"));
        assert!(mwd.is_empty() && mwd.registered(BOB).is_none());
        // memory full → registration alerts nothing (MNRF cleared), RP-SMMA alerts
        mwd.record(BOB, centre(1), WaitReason::Absent, None, None);
        mwd.record(
            BOB,
            centre(3),
            WaitReason::MemoryCapacityExceeded,
            None,
            None,
        );
        assert_eq!(mwd.registered(BOB), None);
        let w = mwd.get(BOB).unwrap();
        assert!(!w.not_reachable && w.memory_exceeded && w.centres.len() == 2);
        // the record read back from its JSON is the same
        let json = w.to_json(BOB);
        assert_eq!(
            MessageWaiting::from_json(json.as_bytes()),
            Some((BOB.to_string(), w.clone()))
        );
        assert_eq!(MessageWaiting::from_json(b"{\"user\":1}"), None);
        let w = mwd.memory_available(BOB).expect("alerted on RP-SMMA");
        assert_eq!(w.centres, vec![centre(1), centre(3)]);
        assert_eq!(mwd.memory_available(BOB), None);
        // a failed alert is put back, merged with what came meanwhile
        mwd.record(BOB, centre(2), WaitReason::Absent, None, Some("sip:bob@x"));
        mwd.restore(
            BOB,
            MessageWaiting {
                centres: vec![centre(3)],
                memory_exceeded: true,
                ..w
            },
        );
        let w = mwd.get(BOB).unwrap();
        assert_eq!(w.centres, vec![centre(2), centre(3)]);
        assert!(w.not_reachable && w.memory_exceeded);
        assert_eq!(w.sip_uri.as_deref(), Some("sip:bob@x"));
        mwd.restore("tel:+1", MessageWaiting::default());
        assert_eq!(mwd.len(), 1, "nothing to put back: no record");
        // a TFR that got through after all: that SMSC no longer waits
        assert!(mwd.delivered(BOB, &centre(2)));
        assert!(!mwd.delivered(BOB, &centre(2)));
        assert_eq!(mwd.get(BOB).unwrap().centres, vec![centre(3)]);
        assert!(mwd.delivered(BOB, &centre(3)));
        assert!(mwd.is_empty(), "the last entry takes the record");
    }

    #[test]
    fn an_alert_names_the_centre_the_user_and_this_ip_sm_gw() {
        use ims_diameter::s6c::{Ala, Alr};
        let w = MessageWaiting {
            centres: vec![centre(1)],
            not_reachable: true,
            imsi: Some("001010000000002".into()),
            sip_uri: Some("sip:bob@ims.example.org".into()),
            ..Default::default()
        };
        let ident = id();
        let wire = alr("s;9".into(), &ident, Some("+15550002"), &w, &w.centres[0]).encode(1, 2);
        let m = Message::parse(&wire).unwrap();
        assert_eq!(m.header().application_id, ims_diameter::dict::app::S6C);
        let got = Alr::decode(&m).unwrap();
        assert_eq!(
            got.vendor_specific_application_id,
            Some(VendorSpecificApplicationId::s6c())
        );
        assert_eq!(got.auth_session_state, AuthSessionState::NoStateMaintained);
        assert_eq!(got.origin_host, "ipsmgw.ims.example.org");
        assert_eq!(
            got.destination_host.as_deref(),
            Some("smsc1.sms.example.org")
        );
        assert_eq!(got.destination_realm, "sms.example.org");
        assert_eq!(&*got.sc_address, &centre(1).sc_address[..]);
        assert_eq!(
            got.user_identifier.msisdn.as_deref(),
            Some(&b"\x51\x55\x00\x20"[..])
        );
        assert_eq!(
            got.user_identifier.user_name.as_deref(),
            Some("001010000000002")
        );
        assert_eq!(
            got.smsmi_correlation_id
                .as_ref()
                .and_then(|c| c.destination_sip_uri.as_deref()),
            Some("sip:bob@ims.example.org")
        );
        assert_eq!(got.sms_gmsc_alert_event, Some(1));
        let node = got.serving_node.as_ref().unwrap();
        assert_eq!(
            node.ip_sm_gw_name.as_deref(),
            Some("ipsmgw.ims.example.org")
        );
        assert_eq!(node.ip_sm_gw_realm.as_deref(), Some("ims.example.org"));
        // the answers, for the UE's RP-SMMA
        let ala = |o: Outcome| {
            let mut a = Ala::answering(&got, "smsc", "sms");
            a.set_outcome(o);
            a
        };
        assert_eq!(alert_cause(Some(&ala(Outcome::SUCCESS))), None);
        assert_eq!(
            alert_cause(Some(&ala(Outcome::tgpp(
                ExperimentalResultCode::UserUnknown
            )))),
            Some(RpCause::UNKNOWN_SUBSCRIBER)
        );
        assert_eq!(
            alert_cause(Some(&ala(Outcome::tgpp(
                ExperimentalResultCode::FacilityNotSupported
            )))),
            Some(RpCause::FACILITY_NOT_IMPLEMENTED)
        );
        assert_eq!(
            alert_cause(Some(&ala(Outcome::from_result_code(5012)))),
            Some(RpCause::NETWORK_OUT_OF_ORDER)
        );
        assert_eq!(alert_cause(None), Some(RpCause::NETWORK_OUT_OF_ORDER));
        assert!(alert_retryable(RpCause::NETWORK_OUT_OF_ORDER));
        assert!(!alert_retryable(RpCause::UNKNOWN_SUBSCRIBER));
        let smma = RpMessage::smma(5).encode().unwrap();
        assert_eq!(smma_of(&smma), Some(5));
        assert_eq!(
            smma_of(
                &RpMessage::data_mo(5, Address::international("1"), TPDU)
                    .encode()
                    .unwrap()
            ),
            None
        );
        let ack = smma_answer(5, None).unwrap();
        let ack = RpMessage::decode(&ack, Direction::NetworkToMs).unwrap();
        assert!(matches!(ack.body, RpBody::Ack { user_data: None }) && ack.message_reference == 5);
        let err = smma_answer(5, Some(RpCause::NETWORK_OUT_OF_ORDER)).unwrap();
        let err = RpMessage::decode(&err, Direction::NetworkToMs).unwrap();
        assert!(matches!(
            err.body,
            RpBody::Error { cause, .. } if cause == RpCause::NETWORK_OUT_OF_ORDER
        ));
    }
}
