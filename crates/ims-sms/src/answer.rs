//! Builders for the common flows of an IP-SM-GW or a UE (TS 24.341, TS 23.040 §10): the answers
//! to an RP-DATA, the SMS-SUBMIT to SMS-DELIVER conversion for mobile terminated delivery, and the
//! SMS-STATUS-REPORT for a submitted message that asked for one.

use crate::address::Address;
use crate::error::EncodeError;
use crate::params::{FailureCause, Status, Timestamp};
use crate::rp::{RpBody, RpCause, RpMessage};
use crate::tpdu::{Deliver, DeliverReport, Direction, StatusReport, Submit, SubmitReport, Tpdu};

fn require_data(rp: &RpMessage<'_>, from: Direction) -> Result<(), EncodeError> {
    match (&rp.body, rp.direction == from) {
        (RpBody::Data { .. }, true) => Ok(()),
        _ => Err(EncodeError::Mismatch(match from {
            Direction::MsToNetwork => "expected an RP-DATA from the MS",
            Direction::NetworkToMs => "expected an RP-DATA from the network",
        })),
    }
}

/// The network's RP-ACK to a mobile originated RP-DATA, carrying an SMS-SUBMIT-REPORT (RP-ACK
/// form) with the service centre time stamp.
pub fn submit_report_ack(rp_data: &RpMessage<'_>, scts: Timestamp) -> Result<Vec<u8>, EncodeError> {
    require_data(rp_data, Direction::MsToNetwork)?;
    let tpdu = Tpdu::SubmitReport(SubmitReport {
        failure_cause: None,
        pi_reserved: 0,
        service_centre_time_stamp: scts,
        pid: None,
        dcs: None,
        user_data: None,
    })
    .encode()?;
    RpMessage::ack(
        Direction::NetworkToMs,
        rp_data.message_reference,
        Some(&tpdu),
    )
    .encode()
}

/// The network's RP-ERROR to a mobile originated RP-DATA, with an SMS-SUBMIT-REPORT (RP-ERROR
/// form) carrying `fcs` when given.
pub fn submit_report_error(
    rp_data: &RpMessage<'_>,
    cause: RpCause,
    fcs: Option<(FailureCause, Timestamp)>,
) -> Result<Vec<u8>, EncodeError> {
    require_data(rp_data, Direction::MsToNetwork)?;
    let tpdu = fcs
        .map(|(f, scts)| {
            Tpdu::SubmitReport(SubmitReport {
                failure_cause: Some(f),
                pi_reserved: 0,
                service_centre_time_stamp: scts,
                pid: None,
                dcs: None,
                user_data: None,
            })
            .encode()
        })
        .transpose()?;
    RpMessage::error(
        Direction::NetworkToMs,
        rp_data.message_reference,
        cause,
        tpdu.as_deref(),
    )
    .encode()
}

/// The MS's RP-ACK to a mobile terminated RP-DATA (SMS-DELIVER), carrying an
/// SMS-DELIVER-REPORT (RP-ACK form, no optional fields).
pub fn deliver_report_ack(rp_data: &RpMessage<'_>) -> Result<Vec<u8>, EncodeError> {
    require_data(rp_data, Direction::NetworkToMs)?;
    let tpdu = Tpdu::DeliverReport(DeliverReport::default()).encode()?;
    RpMessage::ack(
        Direction::MsToNetwork,
        rp_data.message_reference,
        Some(&tpdu),
    )
    .encode()
}

/// The MS's RP-ERROR to a mobile terminated RP-DATA with an SMS-DELIVER-REPORT (RP-ERROR form)
/// carrying `fcs` (e.g. cause 22 with TP-FCS 0xD3 when the memory is full).
pub fn deliver_report_error(
    rp_data: &RpMessage<'_>,
    cause: RpCause,
    fcs: FailureCause,
) -> Result<Vec<u8>, EncodeError> {
    require_data(rp_data, Direction::NetworkToMs)?;
    let tpdu = Tpdu::DeliverReport(DeliverReport {
        failure_cause: Some(fcs),
        ..DeliverReport::default()
    })
    .encode()?;
    RpMessage::error(
        Direction::MsToNetwork,
        rp_data.message_reference,
        cause,
        Some(&tpdu),
    )
    .encode()
}

/// An RP-ERROR with a cause and no RP-User-Data, answering a message received in `received`
/// direction with reference `message_reference`.
pub fn rp_error(
    received: Direction,
    message_reference: u8,
    cause: RpCause,
) -> Result<Vec<u8>, EncodeError> {
    RpMessage::error(received.reverse(), message_reference, cause, None).encode()
}

/// The SMS-DELIVER that brings a submitted message to its recipient (TS 23.040 §10.2): the
/// submitter becomes TP-OA; TP-PID, TP-DCS, TP-UD and TP-RP are carried over; TP-SRI is set when
/// TP-SRR was.
pub fn deliver_from_submit(submit: &Submit, originator: Address, scts: Timestamp) -> Deliver {
    Deliver {
        more_messages_to_send: false,
        loop_prevention: false,
        status_report_indication: submit.status_report_request,
        reply_path: submit.reply_path,
        originator,
        pid: submit.pid,
        dcs: submit.dcs,
        service_centre_time_stamp: scts,
        user_data: submit.user_data.clone(),
    }
}

/// The SMS-STATUS-REPORT for a submitted message that asked for one (TP-SRR), `None` otherwise:
/// TP-MR and TP-RA from the SMS-SUBMIT, TP-SCTS when the SC took it, TP-DT when `status` was
/// reached.
pub fn status_report_for(
    submit: &Submit,
    scts: Timestamp,
    discharge_time: Timestamp,
    status: Status,
) -> Option<StatusReport> {
    submit.status_report_request.then(|| StatusReport {
        more_messages_to_send: false,
        loop_prevention: false,
        status_report_qualifier: false,
        message_reference: submit.message_reference,
        recipient: submit.destination.clone(),
        service_centre_time_stamp: scts,
        discharge_time,
        status,
        pi_reserved: None,
        pid: None,
        dcs: None,
        user_data: None,
    })
}
