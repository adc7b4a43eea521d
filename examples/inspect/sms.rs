//! `inspect sms`: one SMS over IP RP message (the body of a SIP MESSAGE with `Content-Type:
//! application/vnd.3gpp.sms`, TS 24.341) as JSON, with its TPDU decoded and its text.
//!
//! ```text
//! cargo run --example inspect -- sms [--direction ms-to-network|network-to-ms] [--compact] FILE
//! ```
//!
//! FILE holds the RP message as hex (whitespace ignored) or as raw octets. Without
//! `--direction` the direction is the one the RP-MTI gives; with it, a message of the other
//! direction is refused (RP cause 97).
//!
//! Output object: `rp` (`{message_type, mti, direction, message_reference}` plus, by type,
//! `rp_originator_address` / `rp_destination_address` (`null` or `{ton, npi, digits}`),
//! `rp_cause` (`{value, name, diagnostic_hex}`) and `rp_user_data_length`), and `tpdu` (`null`
//! or `{type, hex, ...}` with every field of the TPDU: addresses `{ton, npi, value,
//! alphanumeric}`, time stamps `{..., iso8601}`, `tp_dcs` `{raw, alphabet, compressed, class}`,
//! `tp_vp`, and `tp_ud` `{udl, udh, text, payload_hex}`).
//!
//! A decoding error prints `{error: {code, message, offset, rp_cause, message_reference,
//! answer_hex}}` on stderr (the RP-ERROR to send back, when there is one) and exits 1.

use super::{emit, read_input, Failure};
use ims::sms::{
    self, Address, Alphabet, DataCodingScheme, Direction, InformationElement, RpBody, Timestamp,
    Tpdu, UserData, ValidityPeriod,
};
use serde_json::{json, Value};

/// One line about the codec.
pub(crate) const ABOUT: &str =
    "one SMS over IP RP message (TS 24.011) with its TPDU (TS 23.040), hex or binary";

/// The `sms` options.
pub(crate) const OPTIONS: &[(&str, &str)] = &[
    (
        "--direction D",
        "ms-to-network or network-to-ms (default: what the RP-MTI says)",
    ),
    ("--compact", "print the JSON on one line"),
];

/// Runs `inspect sms`.
pub(crate) fn run(args: &[String]) -> Result<(), Failure> {
    let mut direction = None;
    let mut compact = false;
    let mut file = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let value = |v: Option<&String>| {
            v.cloned()
                .ok_or_else(|| Failure::Usage("--direction needs a value".into()))
        };
        let d = match a.as_str() {
            "--compact" => {
                compact = true;
                continue;
            }
            "--direction" => value(it.next())?,
            s if s.starts_with("--direction=") => s["--direction=".len()..].to_owned(),
            s if s.starts_with('-') && s != "-" => {
                return Err(Failure::Usage(format!("unknown option '{s}'")))
            }
            s => {
                if file.replace(s.to_owned()).is_some() {
                    return Err(Failure::Usage(format!("unexpected argument '{s}'")));
                }
                continue;
            }
        };
        direction = Some(match d.as_str() {
            "ms-to-network" => Direction::MsToNetwork,
            "network-to-ms" => Direction::NetworkToMs,
            other => return Err(Failure::Usage(format!("unknown direction '{other}'"))),
        });
    }
    let file =
        file.ok_or_else(|| Failure::Usage("missing FILE (use - for standard input)".into()))?;
    let raw = read_input(&file)?;
    let bytes = as_hex(&raw).unwrap_or(raw);
    let rp = match direction {
        Some(d) => sms::RpMessage::decode(&bytes, d),
        None => sms::RpMessage::decode_any(&bytes),
    };
    let result = rp.and_then(|rp| rp.tpdu().map(|t| (rp, t)));
    match result {
        Ok((rp, tpdu)) => emit(
            &json!({
                "rp": rp_json(&rp),
                "tpdu": tpdu.as_ref().map_or(Value::Null, |t| tpdu_json(t, rp.user_data().unwrap_or_default())),
            }),
            compact,
        ),
        Err(e) => {
            let d = direction.unwrap_or(if bytes.first().is_some_and(|b| b & 1 == 1) {
                Direction::NetworkToMs
            } else {
                Direction::MsToNetwork
            });
            let v = json!({"error": {
                "code": e.kind.code(),
                "message": e.kind.to_string(),
                "offset": e.offset,
                "rp_cause": e.rp_cause().map(|c| c.0),
                "message_reference": e.message_reference,
                "answer_hex": e.answer(&bytes, d).map(|a| hex(&a)),
            }});
            eprintln!("{}", serde_json::to_string_pretty(&v).expect("JSON value"));
            Err(Failure::Failed)
        }
    }
}

/// The octets of a hex text (whitespace ignored), or `None` when the input is not hex.
fn as_hex(raw: &[u8]) -> Option<Vec<u8>> {
    let digits: Vec<u8> = raw
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    if digits.is_empty() || digits.len() & 1 == 1 || !digits.iter().all(u8::is_ascii_hexdigit) {
        return None;
    }
    let s = std::str::from_utf8(&digits).ok()?;
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok())
        .collect()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn address_json(a: &Address) -> Value {
    json!({
        "ton": a.ton.code(),
        "npi": a.npi.code(),
        "value": a.value,
        "alphanumeric": a.is_alphanumeric(),
    })
}

fn rp_json(rp: &sms::RpMessage<'_>) -> Value {
    let mut v = json!({
        "message_type": rp.name(),
        "mti": rp.mti(),
        "direction": rp.direction.as_str(),
        "message_reference": rp.message_reference,
    });
    match &rp.body {
        RpBody::Data {
            originator,
            destination,
            user_data,
        } => {
            v["rp_originator_address"] = originator.as_ref().map_or(Value::Null, address_json);
            v["rp_destination_address"] = destination.as_ref().map_or(Value::Null, address_json);
            v["rp_user_data_length"] = json!(user_data.len());
        }
        RpBody::Ack { user_data } => {
            v["rp_user_data_length"] = json!(user_data.map(<[u8]>::len));
        }
        RpBody::Error {
            cause,
            diagnostic,
            user_data,
            ..
        } => {
            v["rp_cause"] = json!({
                "value": cause.0,
                "name": cause.name(),
                "diagnostic_hex": (!diagnostic.is_empty()).then(|| hex(diagnostic)),
            });
            v["rp_user_data_length"] = json!(user_data.map(<[u8]>::len));
        }
        RpBody::Smma => {}
    }
    v
}

fn ts_json(t: &Timestamp) -> Value {
    json!({
        "year": t.full_year(),
        "month": t.month,
        "day": t.day,
        "hour": t.hour,
        "minute": t.minute,
        "second": t.second,
        "tz_quarter_hours": t.tz_quarter_hours,
        "iso8601": t.to_string(),
    })
}

fn dcs_json(d: DataCodingScheme) -> Value {
    json!({
        "raw": d.0,
        "alphabet": match d.alphabet() {
            Alphabet::Gsm7 => "gsm7",
            Alphabet::EightBit => "8bit",
            Alphabet::Ucs2 => "ucs2",
        },
        "compressed": d.compressed(),
        "class": d.class().map(|c| c as u8),
    })
}

/// The members of a concatenation element (TS 23.040 §9.2.3.24.1 and .8).
fn concat_json(v: &mut Value, name: &str, reference: u16, total: u8, sequence: u8) {
    v["name"] = json!(name);
    v["reference"] = json!(reference);
    v["total"] = json!(total);
    v["sequence"] = json!(sequence);
}

/// The members of an application port addressing element (TS 23.040 §9.2.3.24.3 and .4).
fn port_json(v: &mut Value, name: &str, destination: u16, originator: u16) {
    v["name"] = json!(name);
    v["destination_port"] = json!(destination);
    v["originator_port"] = json!(originator);
}

fn ie_json(e: &InformationElement) -> Value {
    let mut v = json!({"iei": e.iei()});
    match e {
        InformationElement::Concat8 {
            reference,
            total,
            sequence,
        } => concat_json(
            &mut v,
            "concatenated_8bit_reference",
            u16::from(*reference),
            *total,
            *sequence,
        ),
        InformationElement::Concat16 {
            reference,
            total,
            sequence,
        } => concat_json(
            &mut v,
            "concatenated_16bit_reference",
            *reference,
            *total,
            *sequence,
        ),
        InformationElement::Port8 {
            destination,
            originator,
        } => port_json(
            &mut v,
            "application_port_8bit",
            u16::from(*destination),
            u16::from(*originator),
        ),
        InformationElement::Port16 {
            destination,
            originator,
        } => port_json(&mut v, "application_port_16bit", *destination, *originator),
        InformationElement::SpecialMessageIndication { indication, count } => {
            v["name"] = json!("special_sms_message_indication");
            v["indication"] = json!(indication);
            v["count"] = json!(count);
        }
        InformationElement::NationalSingleShift(l) => {
            v["name"] = json!("national_language_single_shift");
            v["language"] = json!(l.code());
        }
        InformationElement::NationalLockingShift(l) => {
            v["name"] = json!("national_language_locking_shift");
            v["language"] = json!(l.code());
        }
        InformationElement::Other { data, .. } => {
            v["name"] = json!("other");
            v["data_hex"] = json!(hex(data));
        }
    }
    v
}

fn ud_json(u: &UserData, dcs: DataCodingScheme) -> Value {
    let text = u.text(dcs);
    json!({
        "udl": u.udl(dcs).ok(),
        "udl_unit": if dcs.udl_in_septets() { "septets" } else { "octets" },
        "udh": u.header.as_ref().map(|h| json!({
            "ies": h.elements.iter().map(ie_json).collect::<Vec<_>>(),
        })),
        "payload_hex": if text.is_none() { Some(hex(&u.body)) } else { None },
        "text": text,
    })
}

fn vp_json(vp: &Option<ValidityPeriod>) -> Value {
    match vp {
        None => Value::Null,
        Some(ValidityPeriod::Relative(r)) => json!({
            "format": "relative", "raw": r,
            "seconds": ValidityPeriod::relative_duration(*r).as_secs(),
        }),
        Some(ValidityPeriod::Absolute(t)) => json!({"format": "absolute", "timestamp": ts_json(t)}),
        Some(v @ ValidityPeriod::Enhanced(e)) => json!({
            "format": "enhanced", "hex": hex(e),
            "seconds": v.duration().map(|d| d.as_secs()),
        }),
    }
}

fn tpdu_json(t: &Tpdu, raw: &[u8]) -> Value {
    let mut v = json!({"type": t.name(), "tp_mti": t.mti(), "hex": hex(raw)});
    let opt = |x: Option<u8>| json!(x);
    match t {
        Tpdu::Submit(s) => {
            v["tp_rd"] = json!(s.reject_duplicates);
            v["tp_srr"] = json!(s.status_report_request);
            v["tp_rp"] = json!(s.reply_path);
            v["tp_mr"] = json!(s.message_reference);
            v["tp_da"] = address_json(&s.destination);
            v["tp_pid"] = json!(s.pid.0);
            v["tp_dcs"] = dcs_json(s.dcs);
            v["tp_vp"] = vp_json(&s.validity_period);
            v["tp_ud"] = ud_json(&s.user_data, s.dcs);
        }
        Tpdu::Deliver(d) => {
            v["more_messages_to_send"] = json!(d.more_messages_to_send);
            v["tp_lp"] = json!(d.loop_prevention);
            v["tp_sri"] = json!(d.status_report_indication);
            v["tp_rp"] = json!(d.reply_path);
            v["tp_oa"] = address_json(&d.originator);
            v["tp_pid"] = json!(d.pid.0);
            v["tp_dcs"] = dcs_json(d.dcs);
            v["tp_scts"] = ts_json(&d.service_centre_time_stamp);
            v["tp_ud"] = ud_json(&d.user_data, d.dcs);
        }
        Tpdu::DeliverReport(r) => {
            v["variant"] = json!(if r.failure_cause.is_some() {
                "RP-ERROR"
            } else {
                "RP-ACK"
            });
            v["tp_fcs"] = opt(r.failure_cause.map(|f| f.0));
            v["tp_fcs_name"] = json!(r.failure_cause.map(|f| f.name()));
            v["tp_pid"] = opt(r.pid.map(|p| p.0));
            v["tp_dcs"] = r.dcs.map_or(Value::Null, dcs_json);
            v["tp_ud"] = r
                .user_data
                .as_ref()
                .map_or(Value::Null, |u| ud_json(u, r.dcs.unwrap_or_default()));
        }
        Tpdu::SubmitReport(r) => {
            v["variant"] = json!(if r.failure_cause.is_some() {
                "RP-ERROR"
            } else {
                "RP-ACK"
            });
            v["tp_fcs"] = opt(r.failure_cause.map(|f| f.0));
            v["tp_fcs_name"] = json!(r.failure_cause.map(|f| f.name()));
            v["tp_scts"] = ts_json(&r.service_centre_time_stamp);
            v["tp_pid"] = opt(r.pid.map(|p| p.0));
            v["tp_dcs"] = r.dcs.map_or(Value::Null, dcs_json);
            v["tp_ud"] = r
                .user_data
                .as_ref()
                .map_or(Value::Null, |u| ud_json(u, r.dcs.unwrap_or_default()));
        }
        Tpdu::StatusReport(r) => {
            v["more_messages_to_send"] = json!(r.more_messages_to_send);
            v["tp_lp"] = json!(r.loop_prevention);
            v["tp_srq"] = json!(r.status_report_qualifier);
            v["tp_mr"] = json!(r.message_reference);
            v["tp_ra"] = address_json(&r.recipient);
            v["tp_scts"] = ts_json(&r.service_centre_time_stamp);
            v["tp_dt"] = ts_json(&r.discharge_time);
            v["tp_st"] = json!(r.status.0);
            v["tp_st_category"] = json!(r.status.category());
            v["tp_pi_present"] = json!(
                r.pi_reserved.is_some()
                    || r.pid.is_some()
                    || r.dcs.is_some()
                    || r.user_data.is_some()
            );
            v["tp_ud"] = r
                .user_data
                .as_ref()
                .map_or(Value::Null, |u| ud_json(u, r.dcs.unwrap_or_default()));
        }
        Tpdu::Command(c) => {
            v["tp_srr"] = json!(c.status_report_request);
            v["tp_udhi"] = json!(c.user_data_header_indication);
            v["tp_mr"] = json!(c.message_reference);
            v["tp_pid"] = json!(c.pid.0);
            v["tp_ct"] = json!(c.command_type.0);
            v["tp_ct_name"] = json!(c.command_type.name());
            v["tp_mn"] = json!(c.message_number);
            v["tp_da"] = address_json(&c.destination);
            v["tp_cd_hex"] = json!(hex(&c.command_data));
        }
    }
    v
}
