//! The six TPDUs of TS 23.040 §9.2.2. TP-MTI alone is ambiguous (00 is SMS-DELIVER from the
//! network but SMS-DELIVER-REPORT from the MS), so [`Tpdu::decode`] takes the [`Direction`] and the
//! RP message ([`Carrier`]) that carried it; reports also need the carrier to tell the RP-ACK form
//! from the RP-ERROR form (which adds TP-FCS).

use crate::address::Address;
use crate::error::{DecodeError, EncodeError, ErrorKind};
use crate::params::{
    CommandType, DataCodingScheme, FailureCause, ProtocolIdentifier, Status, Timestamp,
    ValidityPeriod,
};
use crate::ud::UserData;

/// Which way an RP message (and the TPDU it carries) travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// From the MS (the UE) to the network (the SMSC / IP-SM-GW): mobile originated.
    MsToNetwork,
    /// From the network to the MS: mobile terminated.
    NetworkToMs,
}

impl Direction {
    /// The other direction (the one an answer travels in).
    pub fn reverse(self) -> Direction {
        match self {
            Direction::MsToNetwork => Direction::NetworkToMs,
            Direction::NetworkToMs => Direction::MsToNetwork,
        }
    }

    /// `ms_to_network` or `network_to_ms`.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::MsToNetwork => "ms_to_network",
            Direction::NetworkToMs => "network_to_ms",
        }
    }
}

/// The RP message that carries a TPDU (TS 24.011 §7.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Carrier {
    /// RP-DATA: SMS-SUBMIT, SMS-COMMAND (MS to network); SMS-DELIVER, SMS-STATUS-REPORT (network to MS).
    RpData,
    /// RP-ACK: the RP-ACK form of SMS-DELIVER-REPORT / SMS-SUBMIT-REPORT.
    RpAck,
    /// RP-ERROR: the RP-ERROR form of SMS-DELIVER-REPORT / SMS-SUBMIT-REPORT (with TP-FCS).
    RpError,
}

impl Carrier {
    fn as_code(self) -> &'static str {
        match self {
            Carrier::RpData => "rp_data",
            Carrier::RpAck => "rp_ack",
            Carrier::RpError => "rp_error",
        }
    }
}

/// SMS-DELIVER (§9.2.2.1): network to MS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deliver {
    /// TP-MMS inverted: true when more messages are waiting (TP-MMS bit 0).
    pub more_messages_to_send: bool,
    /// TP-LP: loop prevention.
    pub loop_prevention: bool,
    /// TP-SRI: a status report will be returned to the SME.
    pub status_report_indication: bool,
    /// TP-RP: reply path.
    pub reply_path: bool,
    /// TP-OA.
    pub originator: Address,
    /// TP-PID.
    pub pid: ProtocolIdentifier,
    /// TP-DCS.
    pub dcs: DataCodingScheme,
    /// TP-SCTS.
    pub service_centre_time_stamp: Timestamp,
    /// TP-UDL/TP-UD (TP-UDHI follows the header's presence).
    pub user_data: UserData,
}

/// SMS-DELIVER-REPORT (§9.2.2.1a): MS to network, in RP-ACK or (with TP-FCS) RP-ERROR.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DeliverReport {
    /// TP-FCS: present exactly in the RP-ERROR form.
    pub failure_cause: Option<FailureCause>,
    /// TP-PI bits 8-4 as received (reserved and extension bits); presence bits are derived.
    pub pi_reserved: u8,
    /// TP-PID.
    pub pid: Option<ProtocolIdentifier>,
    /// TP-DCS.
    pub dcs: Option<DataCodingScheme>,
    /// TP-UDL/TP-UD.
    pub user_data: Option<UserData>,
}

/// SMS-SUBMIT (§9.2.2.2): MS to network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Submit {
    /// TP-RD: reject duplicates.
    pub reject_duplicates: bool,
    /// TP-RP: reply path.
    pub reply_path: bool,
    /// TP-SRR: a status report is requested.
    pub status_report_request: bool,
    /// TP-MR.
    pub message_reference: u8,
    /// TP-DA.
    pub destination: Address,
    /// TP-PID.
    pub pid: ProtocolIdentifier,
    /// TP-DCS.
    pub dcs: DataCodingScheme,
    /// TP-VP; its format gives TP-VPF.
    pub validity_period: Option<ValidityPeriod>,
    /// TP-UDL/TP-UD.
    pub user_data: UserData,
}

/// SMS-SUBMIT-REPORT (§9.2.2.2a): network to MS, in RP-ACK or (with TP-FCS) RP-ERROR.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubmitReport {
    /// TP-FCS: present exactly in the RP-ERROR form.
    pub failure_cause: Option<FailureCause>,
    /// TP-PI bits 8-4 as received.
    pub pi_reserved: u8,
    /// TP-SCTS.
    pub service_centre_time_stamp: Timestamp,
    /// TP-PID.
    pub pid: Option<ProtocolIdentifier>,
    /// TP-DCS.
    pub dcs: Option<DataCodingScheme>,
    /// TP-UDL/TP-UD.
    pub user_data: Option<UserData>,
}

/// SMS-STATUS-REPORT (§9.2.2.3): network to MS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusReport {
    /// TP-MMS inverted: true when more messages are waiting.
    pub more_messages_to_send: bool,
    /// TP-LP.
    pub loop_prevention: bool,
    /// TP-SRQ: false for the result of an SMS-SUBMIT, true for an SMS-COMMAND.
    pub status_report_qualifier: bool,
    /// TP-MR of the SMS-SUBMIT (or SMS-COMMAND) reported on.
    pub message_reference: u8,
    /// TP-RA: the recipient address.
    pub recipient: Address,
    /// TP-SCTS of the message reported on.
    pub service_centre_time_stamp: Timestamp,
    /// TP-DT: discharge time.
    pub discharge_time: Timestamp,
    /// TP-ST.
    pub status: Status,
    /// TP-PI bits 8-4 when TP-PI is present; `None` when it is absent (and nothing follows TP-ST
    /// unless a field below is set).
    pub pi_reserved: Option<u8>,
    /// TP-PID.
    pub pid: Option<ProtocolIdentifier>,
    /// TP-DCS.
    pub dcs: Option<DataCodingScheme>,
    /// TP-UDL/TP-UD.
    pub user_data: Option<UserData>,
}

/// SMS-COMMAND (§9.2.2.4): MS to network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    /// TP-SRR.
    pub status_report_request: bool,
    /// TP-UDHI: TP-CD starts with a header.
    pub user_data_header_indication: bool,
    /// TP-MR.
    pub message_reference: u8,
    /// TP-PID.
    pub pid: ProtocolIdentifier,
    /// TP-CT.
    pub command_type: CommandType,
    /// TP-MN: the TP-MR of the message the command applies to.
    pub message_number: u8,
    /// TP-DA.
    pub destination: Address,
    /// TP-CD (TP-CDL is its length, at most 157).
    pub command_data: Vec<u8>,
}

/// Maximum TP-CDL (TS 23.040 §9.2.3.20).
pub const MAX_COMMAND_DATA: usize = 157;

/// Any TPDU.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(clippy::large_enum_variant)]
pub enum Tpdu {
    /// SMS-DELIVER.
    Deliver(Deliver),
    /// SMS-DELIVER-REPORT.
    DeliverReport(DeliverReport),
    /// SMS-SUBMIT.
    Submit(Submit),
    /// SMS-SUBMIT-REPORT.
    SubmitReport(SubmitReport),
    /// SMS-STATUS-REPORT.
    StatusReport(StatusReport),
    /// SMS-COMMAND.
    Command(Command),
}

/// The optional fields of a report: TP-PID, TP-DCS, TP-UD.
type OptionalTail = (
    Option<ProtocolIdentifier>,
    Option<DataCodingScheme>,
    Option<UserData>,
);

struct Reader<'a> {
    b: &'a [u8],
    pos: usize,
    name: &'static str,
}

impl<'a> Reader<'a> {
    fn truncated(&self, field: &'static str, at: usize) -> DecodeError {
        DecodeError::new(
            ErrorKind::TpduTruncated {
                tpdu: self.name,
                field,
                at,
                len: self.b.len(),
            },
            at,
        )
    }

    fn u8(&mut self, field: &'static str) -> Result<u8, DecodeError> {
        let v = *self
            .b
            .get(self.pos)
            .ok_or_else(|| self.truncated(field, self.pos))?;
        self.pos += 1;
        Ok(v)
    }

    fn take<const N: usize>(&mut self, field: &'static str) -> Result<&'a [u8; N], DecodeError> {
        let s = self
            .b
            .get(self.pos..self.pos + N)
            .ok_or_else(|| self.truncated(field, self.pos))?;
        self.pos += N;
        Ok(s.try_into().expect("slice of length N"))
    }

    fn address(&mut self, field: &'static str) -> Result<Address, DecodeError> {
        let (a, end) = Address::decode_tp(self.b, self.pos, self.name, field)?;
        self.pos = end;
        Ok(a)
    }

    fn timestamp(&mut self, field: &'static str) -> Result<Timestamp, DecodeError> {
        let at = self.pos;
        let b = self.take::<7>(field)?;
        Timestamp::decode(b, field, at)
    }

    fn user_data(&mut self, dcs: DataCodingScheme, udhi: bool) -> Result<UserData, DecodeError> {
        let (ud, end) = UserData::decode(self.b, self.pos, dcs, udhi, self.name)?;
        self.pos = end;
        Ok(ud)
    }

    /// TP-PI and the optional TP-PID, TP-DCS, TP-UDL/UD it announces.
    fn optional_tail(&mut self, pi: u8, udhi: bool) -> Result<OptionalTail, DecodeError> {
        let pid = if pi & 1 != 0 {
            Some(ProtocolIdentifier(self.u8("TP-PID")?))
        } else {
            None
        };
        let dcs = if pi & 2 != 0 {
            Some(DataCodingScheme(self.u8("TP-DCS")?))
        } else {
            None
        };
        let ud = if pi & 4 != 0 {
            Some(self.user_data(dcs.unwrap_or_default(), udhi)?)
        } else {
            None
        };
        Ok((pid, dcs, ud))
    }
}

fn bit(b: u8, n: u8) -> bool {
    b >> n & 1 != 0
}

impl Tpdu {
    /// Decodes a TPDU sent in `direction` inside `carrier`. Offsets in errors count from the
    /// start of `b`.
    pub fn decode(b: &[u8], direction: Direction, carrier: Carrier) -> Result<Tpdu, DecodeError> {
        let Some(&first) = b.first() else {
            return Err(DecodeError::new(
                ErrorKind::TpduTruncated {
                    tpdu: "TPDU",
                    field: "TP-MTI",
                    at: 0,
                    len: 0,
                },
                0,
            ));
        };
        let mti = first & 3;
        let (name, is_report) = match (direction, mti) {
            (_, 3) => return Err(DecodeError::new(ErrorKind::ReservedTpMti, 0)),
            (Direction::MsToNetwork, 0) => ("SMS-DELIVER-REPORT", true),
            (Direction::MsToNetwork, 1) => ("SMS-SUBMIT", false),
            (Direction::MsToNetwork, _) => ("SMS-COMMAND", false),
            (Direction::NetworkToMs, 0) => ("SMS-DELIVER", false),
            (Direction::NetworkToMs, 1) => ("SMS-SUBMIT-REPORT", true),
            (Direction::NetworkToMs, _) => ("SMS-STATUS-REPORT", false),
        };
        if is_report == (carrier == Carrier::RpData) {
            return Err(DecodeError::new(
                ErrorKind::TpduNotAllowed {
                    mti,
                    tpdu: name,
                    carrier: carrier.as_code(),
                },
                0,
            ));
        }
        let mut r = Reader { b, pos: 1, name };
        let udhi = bit(first, 6);
        Ok(match (direction, mti) {
            (Direction::MsToNetwork, 0) => {
                let failure_cause = if carrier == Carrier::RpError {
                    Some(FailureCause(r.u8("TP-FCS")?))
                } else {
                    None
                };
                let pi = r.u8("TP-PI")?;
                let (pid, dcs, user_data) = r.optional_tail(pi, udhi)?;
                Tpdu::DeliverReport(DeliverReport {
                    failure_cause,
                    pi_reserved: pi & 0xF8,
                    pid,
                    dcs,
                    user_data,
                })
            }
            (Direction::MsToNetwork, 1) => {
                let message_reference = r.u8("TP-MR")?;
                let destination = r.address("TP-DA")?;
                let pid = ProtocolIdentifier(r.u8("TP-PID")?);
                let dcs = DataCodingScheme(r.u8("TP-DCS")?);
                let validity_period = match (first >> 3) & 3 {
                    0b00 => None,
                    0b10 => Some(ValidityPeriod::Relative(r.u8("TP-VP")?)),
                    0b11 => Some(ValidityPeriod::Absolute(r.timestamp("TP-VP")?)),
                    _ => Some(ValidityPeriod::Enhanced(*r.take::<7>("TP-VP")?)),
                };
                let user_data = r.user_data(dcs, udhi)?;
                Tpdu::Submit(Submit {
                    reject_duplicates: bit(first, 2),
                    reply_path: bit(first, 7),
                    status_report_request: bit(first, 5),
                    message_reference,
                    destination,
                    pid,
                    dcs,
                    validity_period,
                    user_data,
                })
            }
            (Direction::MsToNetwork, _) => {
                let message_reference = r.u8("TP-MR")?;
                let pid = ProtocolIdentifier(r.u8("TP-PID")?);
                let command_type = CommandType(r.u8("TP-CT")?);
                let message_number = r.u8("TP-MN")?;
                let destination = r.address("TP-DA")?;
                let cdl_at = r.pos;
                let cdl = usize::from(r.u8("TP-CDL")?);
                if cdl > MAX_COMMAND_DATA {
                    return Err(DecodeError::new(
                        ErrorKind::TpUdlTooLarge {
                            udl: cdl as u8,
                            unit: "octets",
                        },
                        cdl_at,
                    ));
                }
                let command_data = b
                    .get(r.pos..r.pos + cdl)
                    .ok_or_else(|| r.truncated("TP-CD", r.pos))?
                    .to_vec();
                Tpdu::Command(Command {
                    status_report_request: bit(first, 5),
                    user_data_header_indication: udhi,
                    message_reference,
                    pid,
                    command_type,
                    message_number,
                    destination,
                    command_data,
                })
            }
            (Direction::NetworkToMs, 0) => {
                let originator = r.address("TP-OA")?;
                let pid = ProtocolIdentifier(r.u8("TP-PID")?);
                let dcs = DataCodingScheme(r.u8("TP-DCS")?);
                let service_centre_time_stamp = r.timestamp("TP-SCTS")?;
                let user_data = r.user_data(dcs, udhi)?;
                Tpdu::Deliver(Deliver {
                    more_messages_to_send: !bit(first, 2),
                    loop_prevention: bit(first, 3),
                    status_report_indication: bit(first, 5),
                    reply_path: bit(first, 7),
                    originator,
                    pid,
                    dcs,
                    service_centre_time_stamp,
                    user_data,
                })
            }
            (Direction::NetworkToMs, 1) => {
                let failure_cause = if carrier == Carrier::RpError {
                    Some(FailureCause(r.u8("TP-FCS")?))
                } else {
                    None
                };
                let pi = r.u8("TP-PI")?;
                let service_centre_time_stamp = r.timestamp("TP-SCTS")?;
                let (pid, dcs, user_data) = r.optional_tail(pi, udhi)?;
                Tpdu::SubmitReport(SubmitReport {
                    failure_cause,
                    pi_reserved: pi & 0xF8,
                    service_centre_time_stamp,
                    pid,
                    dcs,
                    user_data,
                })
            }
            (Direction::NetworkToMs, _) => {
                let message_reference = r.u8("TP-MR")?;
                let recipient = r.address("TP-RA")?;
                let service_centre_time_stamp = r.timestamp("TP-SCTS")?;
                let discharge_time = r.timestamp("TP-DT")?;
                let status = Status(r.u8("TP-ST")?);
                let (pi_reserved, pid, dcs, user_data) = if r.pos < b.len() {
                    let pi = r.u8("TP-PI")?;
                    let (p, d, u) = r.optional_tail(pi, udhi)?;
                    (Some(pi & 0xF8), p, d, u)
                } else {
                    (None, None, None, None)
                };
                Tpdu::StatusReport(StatusReport {
                    more_messages_to_send: !bit(first, 2),
                    loop_prevention: bit(first, 3),
                    status_report_qualifier: bit(first, 5),
                    message_reference,
                    recipient,
                    service_centre_time_stamp,
                    discharge_time,
                    status,
                    pi_reserved,
                    pid,
                    dcs,
                    user_data,
                })
            }
        })
    }

    /// The TPDU's name, e.g. `SMS-SUBMIT`.
    pub fn name(&self) -> &'static str {
        match self {
            Tpdu::Deliver(_) => "SMS-DELIVER",
            Tpdu::DeliverReport(_) => "SMS-DELIVER-REPORT",
            Tpdu::Submit(_) => "SMS-SUBMIT",
            Tpdu::SubmitReport(_) => "SMS-SUBMIT-REPORT",
            Tpdu::StatusReport(_) => "SMS-STATUS-REPORT",
            Tpdu::Command(_) => "SMS-COMMAND",
        }
    }

    /// TP-MTI.
    pub fn mti(&self) -> u8 {
        match self {
            Tpdu::Deliver(_) | Tpdu::DeliverReport(_) => 0,
            Tpdu::Submit(_) | Tpdu::SubmitReport(_) => 1,
            Tpdu::StatusReport(_) | Tpdu::Command(_) => 2,
        }
    }

    /// The direction this TPDU travels in.
    pub fn direction(&self) -> Direction {
        match self {
            Tpdu::DeliverReport(_) | Tpdu::Submit(_) | Tpdu::Command(_) => Direction::MsToNetwork,
            _ => Direction::NetworkToMs,
        }
    }

    /// The RP message that carries it: reports with TP-FCS go in RP-ERROR, without in RP-ACK.
    pub fn carrier(&self) -> Carrier {
        match self {
            Tpdu::DeliverReport(DeliverReport {
                failure_cause: f, ..
            })
            | Tpdu::SubmitReport(SubmitReport {
                failure_cause: f, ..
            }) => {
                if f.is_some() {
                    Carrier::RpError
                } else {
                    Carrier::RpAck
                }
            }
            _ => Carrier::RpData,
        }
    }

    /// TP-DCS, when the TPDU has one.
    pub fn dcs(&self) -> Option<DataCodingScheme> {
        match self {
            Tpdu::Deliver(d) => Some(d.dcs),
            Tpdu::Submit(s) => Some(s.dcs),
            Tpdu::DeliverReport(r) => r.user_data.as_ref().map(|_| r.dcs.unwrap_or_default()),
            Tpdu::SubmitReport(r) => r.user_data.as_ref().map(|_| r.dcs.unwrap_or_default()),
            Tpdu::StatusReport(r) => r.user_data.as_ref().map(|_| r.dcs.unwrap_or_default()),
            Tpdu::Command(_) => None,
        }
    }

    /// TP-UD, when present.
    pub fn user_data(&self) -> Option<&UserData> {
        match self {
            Tpdu::Deliver(d) => Some(&d.user_data),
            Tpdu::Submit(s) => Some(&s.user_data),
            Tpdu::DeliverReport(r) => r.user_data.as_ref(),
            Tpdu::SubmitReport(r) => r.user_data.as_ref(),
            Tpdu::StatusReport(r) => r.user_data.as_ref(),
            Tpdu::Command(_) => None,
        }
    }

    /// The short message text (GSM 7 bit or UCS2 user data), without the header.
    pub fn text(&self) -> Option<String> {
        self.user_data()?.text(self.dcs()?)
    }

    /// Encodes the TPDU.
    pub fn encode(&self) -> Result<Vec<u8>, EncodeError> {
        let mut out = Vec::with_capacity(176);
        self.encode_into(&mut out)?;
        Ok(out)
    }

    /// Appends the TPDU to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        let udhi = |u: Option<&UserData>| u8::from(u.is_some_and(|u| u.header.is_some())) << 6;
        match self {
            Tpdu::Deliver(d) => {
                out.push(
                    u8::from(!d.more_messages_to_send) << 2
                        | u8::from(d.loop_prevention) << 3
                        | u8::from(d.status_report_indication) << 5
                        | udhi(Some(&d.user_data))
                        | u8::from(d.reply_path) << 7,
                );
                d.originator.encode_tp(out)?;
                out.extend_from_slice(&[d.pid.0, d.dcs.0]);
                out.extend_from_slice(&d.service_centre_time_stamp.encode()?);
                d.user_data.encode(d.dcs, out)?;
            }
            Tpdu::Submit(s) => {
                let vpf = s
                    .validity_period
                    .as_ref()
                    .map_or(0, ValidityPeriod::format_bits);
                out.push(
                    1 | u8::from(s.reject_duplicates) << 2
                        | vpf << 3
                        | u8::from(s.status_report_request) << 5
                        | udhi(Some(&s.user_data))
                        | u8::from(s.reply_path) << 7,
                );
                out.push(s.message_reference);
                s.destination.encode_tp(out)?;
                out.extend_from_slice(&[s.pid.0, s.dcs.0]);
                match &s.validity_period {
                    None => {}
                    Some(ValidityPeriod::Relative(v)) => out.push(*v),
                    Some(ValidityPeriod::Absolute(t)) => out.extend_from_slice(&t.encode()?),
                    Some(ValidityPeriod::Enhanced(e)) => out.extend_from_slice(e),
                }
                s.user_data.encode(s.dcs, out)?;
            }
            Tpdu::DeliverReport(r) => {
                out.push(udhi(r.user_data.as_ref()));
                if let Some(f) = r.failure_cause {
                    out.push(f.0);
                }
                encode_tail(out, Some(r.pi_reserved), r.pid, r.dcs, r.user_data.as_ref())?;
            }
            Tpdu::SubmitReport(r) => {
                out.push(1 | udhi(r.user_data.as_ref()));
                if let Some(f) = r.failure_cause {
                    out.push(f.0);
                }
                out.push(pi_octet(r.pi_reserved, r.pid, r.dcs, r.user_data.as_ref()));
                out.extend_from_slice(&r.service_centre_time_stamp.encode()?);
                encode_optional(out, r.pid, r.dcs, r.user_data.as_ref())?;
            }
            Tpdu::StatusReport(r) => {
                out.push(
                    2 | u8::from(!r.more_messages_to_send) << 2
                        | u8::from(r.loop_prevention) << 3
                        | u8::from(r.status_report_qualifier) << 5
                        | udhi(r.user_data.as_ref()),
                );
                out.push(r.message_reference);
                r.recipient.encode_tp(out)?;
                out.extend_from_slice(&r.service_centre_time_stamp.encode()?);
                out.extend_from_slice(&r.discharge_time.encode()?);
                out.push(r.status.0);
                encode_tail(out, r.pi_reserved, r.pid, r.dcs, r.user_data.as_ref())?;
            }
            Tpdu::Command(c) => {
                out.push(
                    2 | u8::from(c.status_report_request) << 5
                        | u8::from(c.user_data_header_indication) << 6,
                );
                out.extend_from_slice(&[
                    c.message_reference,
                    c.pid.0,
                    c.command_type.0,
                    c.message_number,
                ]);
                c.destination.encode_tp(out)?;
                if c.command_data.len() > MAX_COMMAND_DATA {
                    return Err(EncodeError::TooLong("TP-CD"));
                }
                out.push(c.command_data.len() as u8);
                out.extend_from_slice(&c.command_data);
            }
        }
        Ok(())
    }
}

/// The TP-PI octet: reserved bits as kept, presence bits from the fields.
fn pi_octet(
    reserved: u8,
    pid: Option<ProtocolIdentifier>,
    dcs: Option<DataCodingScheme>,
    ud: Option<&UserData>,
) -> u8 {
    reserved & 0xF8
        | u8::from(pid.is_some())
        | u8::from(dcs.is_some()) << 1
        | u8::from(ud.is_some()) << 2
}

/// The optional TP-PID, TP-DCS and TP-UDL/UD.
fn encode_optional(
    out: &mut Vec<u8>,
    pid: Option<ProtocolIdentifier>,
    dcs: Option<DataCodingScheme>,
    ud: Option<&UserData>,
) -> Result<(), EncodeError> {
    if let Some(p) = pid {
        out.push(p.0);
    }
    if let Some(d) = dcs {
        out.push(d.0);
    }
    if let Some(u) = ud {
        u.encode(dcs.unwrap_or_default(), out)?;
    }
    Ok(())
}

/// TP-PI (when present or needed) and the optional fields it announces.
fn encode_tail(
    out: &mut Vec<u8>,
    pi_reserved: Option<u8>,
    pid: Option<ProtocolIdentifier>,
    dcs: Option<DataCodingScheme>,
    ud: Option<&UserData>,
) -> Result<(), EncodeError> {
    if pi_reserved.is_none() && pid.is_none() && dcs.is_none() && ud.is_none() {
        return Ok(());
    }
    out.push(pi_octet(pi_reserved.unwrap_or(0), pid, dcs, ud));
    encode_optional(out, pid, dcs, ud)
}
