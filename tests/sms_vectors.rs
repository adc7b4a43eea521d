//! The SMS over IP vectors (`tests/vectors/sms/`, copied from the shared vector set): every valid
//! vector decodes to what its JSON file says and re-encodes byte for byte (RP message and TPDU);
//! every invalid one gives the error code, offset and RP cause (and RP-ERROR answer) INDEX.md names.

use ims::sms::{
    self, Address, Alphabet, CodingGroup, DataCodingScheme, Direction, InformationElement, RpBody,
    RpMessage, Timestamp, Tpdu, UserData, ValidityPeriod,
};
use serde_json::Value;
use std::path::PathBuf;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/vectors/sms")
}

fn unhex(s: &str) -> Vec<u8> {
    let s = s.trim();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn load(name: &str) -> Value {
    let p = dir().join(format!("{name}.json"));
    serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap()
}

fn names() -> Vec<(String, bool)> {
    let v: Value =
        serde_json::from_str(&std::fs::read_to_string(dir().join("vectors.json")).unwrap())
            .unwrap();
    v.as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["name"].as_str().unwrap().to_owned(),
                e["valid"].as_bool().unwrap(),
            )
        })
        .collect()
}

fn direction(s: &str) -> Direction {
    match s {
        "ms_to_network" => Direction::MsToNetwork,
        "network_to_ms" => Direction::NetworkToMs,
        other => panic!("direction {other}"),
    }
}

fn u(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a number: {v}"))
}

fn check_rp_address(a: Option<&Address>, j: &Value, what: &str) {
    let len = u(&j["length"]);
    match a {
        None => assert_eq!(len, 0, "{what}: absent but JSON length {len}"),
        Some(a) => {
            assert_eq!(a.value, j["digits"].as_str().unwrap(), "{what} digits");
            assert_eq!(
                u64::from(a.ton.code()),
                u(&j["type_of_number"]),
                "{what} TON"
            );
            assert_eq!(
                u64::from(a.npi.code()),
                u(&j["numbering_plan"]),
                "{what} NPI"
            );
            let mut enc = Vec::new();
            a.encode_rp(&mut enc).unwrap();
            assert_eq!(
                hex(&enc),
                j["encoded_hex"].as_str().unwrap(),
                "{what} encoding"
            );
            assert_eq!(u64::from(enc[0]), len, "{what} length");
        }
    }
}

fn check_tp_address(a: &Address, j: &Value, what: &str) {
    assert_eq!(
        u64::from(a.type_of_address()),
        u(&j["type_of_address"]),
        "{what} TOA"
    );
    assert_eq!(u64::from(a.ton.code()), u(&j["ton"]), "{what} TON");
    assert_eq!(u64::from(a.npi.code()), u(&j["npi"]), "{what} NPI");
    let value = j
        .get("digits")
        .or_else(|| j.get("alphanumeric"))
        .and_then(Value::as_str)
        .unwrap();
    assert_eq!(a.value, value, "{what} value");
    assert_eq!(
        a.is_alphanumeric(),
        j.get("alphanumeric").is_some(),
        "{what} kind"
    );
    let mut enc = Vec::new();
    a.encode_tp(&mut enc).unwrap();
    assert_eq!(
        hex(&enc),
        j["encoded_hex"].as_str().unwrap(),
        "{what} encoding"
    );
    assert_eq!(
        u64::from(enc[0]),
        u(&j["length_semi_octets"]),
        "{what} length"
    );
}

fn check_timestamp(t: &Timestamp, j: &Value, what: &str) {
    assert_eq!(u64::from(t.full_year()), u(&j["year"]), "{what} year");
    assert_eq!(u64::from(t.month), u(&j["month"]), "{what} month");
    assert_eq!(u64::from(t.day), u(&j["day"]), "{what} day");
    assert_eq!(u64::from(t.hour), u(&j["hour"]), "{what} hour");
    assert_eq!(u64::from(t.minute), u(&j["minute"]), "{what} minute");
    assert_eq!(u64::from(t.second), u(&j["second"]), "{what} second");
    assert_eq!(
        i64::from(t.tz_quarter_hours),
        j["tz_quarter_hours"].as_i64().unwrap(),
        "{what} time zone"
    );
    assert_eq!(
        t.to_string(),
        j["iso8601"].as_str().unwrap(),
        "{what} ISO 8601"
    );
    assert_eq!(
        hex(&t.encode().unwrap()),
        j["encoded_hex"].as_str().unwrap(),
        "{what} encoding"
    );
}

fn check_dcs(d: DataCodingScheme, j: &Value) {
    assert_eq!(u64::from(d.0), u(&j["raw"]), "TP-DCS raw");
    let alphabet = match d.alphabet() {
        Alphabet::Gsm7 => "gsm7",
        Alphabet::EightBit => "8bit",
        Alphabet::Ucs2 => "ucs2",
    };
    assert_eq!(alphabet, j["alphabet"].as_str().unwrap(), "TP-DCS alphabet");
    assert_eq!(
        d.compressed(),
        j["compressed"].as_bool().unwrap(),
        "TP-DCS compressed"
    );
    assert_eq!(
        d.class().is_none(),
        j["message_class"].is_null(),
        "TP-DCS class"
    );
    if j["group"] == "general" {
        assert!(matches!(d.group(), CodingGroup::General { .. }));
    }
}

fn check_ud(ud: &UserData, dcs: DataCodingScheme, j: &Value) {
    assert_eq!(ud.udl(dcs).unwrap() as u64, u(&j["udl"]), "TP-UDL");
    match (&ud.header, j["udh"].is_null()) {
        (None, true) => {}
        (Some(h), false) => {
            let jh = &j["udh"];
            let enc = h.encode().unwrap();
            assert_eq!(hex(&enc), jh["hex"].as_str().unwrap(), "UDH octets");
            assert_eq!(u64::from(enc[0]), u(&jh["udhl"]), "UDHL");
            let ies = jh["ies"].as_array().unwrap();
            assert_eq!(h.elements.len(), ies.len(), "IE count");
            for (e, je) in h.elements.iter().zip(ies) {
                assert_eq!(u64::from(e.iei()), u(&je["iei"]), "IEI");
                match *e {
                    InformationElement::Concat8 {
                        reference,
                        total,
                        sequence,
                    } => {
                        assert_eq!(u64::from(reference), u(&je["reference"]));
                        assert_eq!(u64::from(total), u(&je["max_parts"]));
                        assert_eq!(u64::from(sequence), u(&je["sequence"]));
                    }
                    InformationElement::Concat16 {
                        reference,
                        total,
                        sequence,
                    } => {
                        assert_eq!(u64::from(reference), u(&je["reference"]));
                        assert_eq!(u64::from(total), u(&je["max_parts"]));
                        assert_eq!(u64::from(sequence), u(&je["sequence"]));
                    }
                    InformationElement::Port16 {
                        destination,
                        originator,
                    } => {
                        assert_eq!(u64::from(destination), u(&je["destination_port"]));
                        assert_eq!(u64::from(originator), u(&je["originator_port"]));
                    }
                    ref other => panic!("IE not expected by the vectors: {other:?}"),
                }
            }
            if dcs.udl_in_septets() {
                let (hs, fill) = ims::sms::header_septets(enc.len());
                assert_eq!(hs as u64, u(&j["header_septets"]), "header septets");
                assert_eq!(u64::from(fill), u(&j["fill_bits"]), "fill bits");
            }
        }
        (h, _) => panic!("UDH presence differs: ours {h:?}, JSON {}", j["udh"]),
    }
    match j.get("text").and_then(Value::as_str) {
        Some(t) => assert_eq!(ud.text(dcs).as_deref(), Some(t), "text"),
        None => {
            assert_eq!(ud.text(dcs), None, "binary user data has no text");
            assert_eq!(hex(&ud.body), j["payload_hex"].as_str().unwrap(), "payload");
        }
    }
    if let Some(ts) = j.get("text_septets") {
        assert_eq!(ud.body.len() as u64, u(ts), "text septets");
    }
    let mut enc = Vec::new();
    ud.encode(dcs, &mut enc).unwrap();
    assert_eq!(
        hex(&enc[1..]),
        j["ud_hex"].as_str().unwrap(),
        "TP-UD octets"
    );
}

fn opt_u8(v: &Value) -> Option<u8> {
    v.as_u64().map(|x| x as u8)
}

fn check_tpdu(t: &Tpdu, j: &Value) {
    assert_eq!(t.name(), j["type"].as_str().unwrap(), "TPDU type");
    assert_eq!(u64::from(t.mti()), u(&j["tp_mti"]), "TP-MTI");
    let enc = t.encode().unwrap();
    assert_eq!(hex(&enc), j["hex"].as_str().unwrap(), "TPDU re-encoding");
    assert_eq!(u64::from(enc[0]), u(&j["first_octet"]), "first octet");
    let udhi = t.user_data().is_some_and(|u| u.header.is_some());
    if let Some(x) = j.get("tp_udhi") {
        assert_eq!(udhi, x.as_bool().unwrap(), "TP-UDHI");
    }
    match t {
        Tpdu::Submit(s) => {
            assert_eq!(s.reject_duplicates, j["tp_rd"].as_bool().unwrap());
            assert_eq!(s.status_report_request, j["tp_srr"].as_bool().unwrap());
            assert_eq!(s.reply_path, j["tp_rp"].as_bool().unwrap());
            assert_eq!(u64::from(s.message_reference), u(&j["tp_mr"]));
            assert_eq!(
                u64::from(
                    s.validity_period
                        .as_ref()
                        .map_or(0, ValidityPeriod::format_bits)
                ),
                u(&j["tp_vpf"])
            );
            match (&s.validity_period, &j["tp_vp"]) {
                (None, Value::Null) => {}
                (Some(ValidityPeriod::Relative(r)), jv) => {
                    assert_eq!(jv["format"], "relative");
                    assert_eq!(u64::from(*r), u(&jv["raw"]));
                    assert_eq!(
                        s.validity_period.unwrap().duration().unwrap().as_secs(),
                        u(&jv["seconds"])
                    );
                }
                (Some(ValidityPeriod::Absolute(ts)), jv) => {
                    assert_eq!(jv["format"], "absolute");
                    check_timestamp(ts, &jv["timestamp"], "TP-VP");
                }
                (vp, jv) => panic!("TP-VP {vp:?} vs {jv}"),
            }
            check_tp_address(&s.destination, &j["tp_da"], "TP-DA");
            assert_eq!(u64::from(s.pid.0), u(&j["tp_pid"]));
            check_dcs(s.dcs, &j["tp_dcs"]);
            assert_eq!(s.user_data.udl(s.dcs).unwrap() as u64, u(&j["tp_udl"]));
            check_ud(&s.user_data, s.dcs, &j["tp_ud"]);
        }
        Tpdu::Deliver(d) => {
            assert_eq!(
                d.more_messages_to_send,
                j["more_messages_to_send"].as_bool().unwrap()
            );
            assert_eq!(
                u8::from(!d.more_messages_to_send),
                opt_u8(&j["tp_mms_bit"]).unwrap()
            );
            assert_eq!(d.loop_prevention, j["tp_lp"].as_bool().unwrap());
            assert_eq!(d.status_report_indication, j["tp_sri"].as_bool().unwrap());
            assert_eq!(d.reply_path, j["tp_rp"].as_bool().unwrap());
            check_tp_address(&d.originator, &j["tp_oa"], "TP-OA");
            assert_eq!(u64::from(d.pid.0), u(&j["tp_pid"]));
            check_dcs(d.dcs, &j["tp_dcs"]);
            check_timestamp(&d.service_centre_time_stamp, &j["tp_scts"], "TP-SCTS");
            assert_eq!(d.user_data.udl(d.dcs).unwrap() as u64, u(&j["tp_udl"]));
            check_ud(&d.user_data, d.dcs, &j["tp_ud"]);
        }
        Tpdu::DeliverReport(r) => {
            let variant = if r.failure_cause.is_some() {
                "RP-ERROR"
            } else {
                "RP-ACK"
            };
            assert_eq!(variant, j["variant"].as_str().unwrap());
            assert_eq!(r.failure_cause.map(|f| f.0), opt_u8(&j["tp_fcs"]), "TP-FCS");
            if let Some(f) = r.failure_cause {
                assert_eq!(f.name(), j["tp_fcs_name"].as_str().unwrap());
            }
            assert_eq!(
                enc[1 + usize::from(r.failure_cause.is_some())],
                opt_u8(&j["tp_pi"]).unwrap()
            );
            assert_eq!(r.pid.map(|p| p.0), opt_u8(&j["tp_pid"]));
            assert_eq!(r.dcs.map(|p| p.0), opt_u8(&j["tp_dcs"]));
            assert_eq!(r.user_data.is_none(), j["tp_ud"].is_null());
        }
        Tpdu::SubmitReport(r) => {
            let variant = if r.failure_cause.is_some() {
                "RP-ERROR"
            } else {
                "RP-ACK"
            };
            assert_eq!(variant, j["variant"].as_str().unwrap());
            assert_eq!(r.failure_cause.map(|f| f.0), opt_u8(&j["tp_fcs"]), "TP-FCS");
            assert_eq!(
                enc[1 + usize::from(r.failure_cause.is_some())],
                opt_u8(&j["tp_pi"]).unwrap()
            );
            check_timestamp(&r.service_centre_time_stamp, &j["tp_scts"], "TP-SCTS");
            assert_eq!(r.pid.map(|p| p.0), opt_u8(&j["tp_pid"]));
            assert_eq!(r.dcs.map(|p| p.0), opt_u8(&j["tp_dcs"]));
            assert_eq!(r.user_data.is_none(), j["tp_ud"].is_null());
        }
        Tpdu::StatusReport(r) => {
            assert_eq!(
                r.more_messages_to_send,
                j["more_messages_to_send"].as_bool().unwrap()
            );
            assert_eq!(r.loop_prevention, j["tp_lp"].as_bool().unwrap());
            assert_eq!(r.status_report_qualifier, j["tp_srq"].as_bool().unwrap());
            assert_eq!(u64::from(r.message_reference), u(&j["tp_mr"]));
            check_tp_address(&r.recipient, &j["tp_ra"], "TP-RA");
            check_timestamp(&r.service_centre_time_stamp, &j["tp_scts"], "TP-SCTS");
            check_timestamp(&r.discharge_time, &j["tp_dt"], "TP-DT");
            assert_eq!(u64::from(r.status.0), u(&j["tp_st"]));
            assert_eq!(r.pi_reserved.is_none(), j["tp_pi"].is_null());
        }
        Tpdu::Command(c) => {
            assert_eq!(c.status_report_request, j["tp_srr"].as_bool().unwrap());
            assert_eq!(u64::from(c.message_reference), u(&j["tp_mr"]));
            assert_eq!(u64::from(c.pid.0), u(&j["tp_pid"]));
            assert_eq!(u64::from(c.command_type.0), u(&j["tp_ct"]));
            assert_eq!(c.command_type.name(), j["tp_ct_name"].as_str().unwrap());
            assert_eq!(u64::from(c.message_number), u(&j["tp_mn"]));
            check_tp_address(&c.destination, &j["tp_da"], "TP-DA");
            assert_eq!(c.command_data.len() as u64, u(&j["tp_cdl"]));
            assert_eq!(hex(&c.command_data), j["tp_cd_hex"].as_str().unwrap());
        }
    }
}

fn check_valid(name: &str, j: &Value) {
    let bytes = unhex(&std::fs::read_to_string(dir().join(format!("{name}.hex"))).unwrap());
    assert_eq!(
        hex(&bytes),
        j["hex"].as_str().unwrap(),
        "{name}: .hex and .json differ"
    );
    let jr = &j["rp"];
    let dir = direction(jr["direction"].as_str().unwrap());
    let sms = sms::decode(&bytes, dir).unwrap_or_else(|e| panic!("{name}: {e}"));
    let rp = &sms.rp;
    assert_eq!(rp.name(), jr["message_type"].as_str().unwrap(), "{name}");
    assert_eq!(u64::from(rp.mti()), u(&jr["mti"]), "{name}");
    assert_eq!(rp.direction, dir);
    assert_eq!(
        u64::from(rp.message_reference),
        u(&jr["message_reference"]),
        "{name}"
    );
    match &rp.body {
        RpBody::Data {
            originator,
            destination,
            user_data,
        } => {
            check_rp_address(originator.as_ref(), &jr["rp_originator_address"], "RP-OA");
            check_rp_address(destination.as_ref(), &jr["rp_destination_address"], "RP-DA");
            assert_eq!(
                user_data.len() as u64,
                u(&jr["rp_user_data"]["length"]),
                "{name}"
            );
        }
        RpBody::Ack { user_data } => match user_data {
            Some(ud) => assert_eq!(ud.len() as u64, u(&jr["rp_user_data"]["length"])),
            None => assert!(jr["rp_user_data"].is_null()),
        },
        RpBody::Error {
            cause,
            diagnostic,
            user_data,
            ..
        } => {
            let jc = &jr["rp_cause"];
            assert_eq!(u64::from(cause.0), u(&jc["value"]), "{name}");
            assert_eq!(cause.name(), jc["name"].as_str().unwrap(), "{name}");
            assert_eq!(1 + diagnostic.len() as u64, u(&jc["length"]));
            assert_eq!(diagnostic.is_empty(), jc["diagnostic_hex"].is_null());
            match user_data {
                Some(ud) => assert_eq!(ud.len() as u64, u(&jr["rp_user_data"]["length"])),
                None => assert!(jr["rp_user_data"].is_null()),
            }
        }
        RpBody::Smma => {}
    }
    match (&sms.tpdu, &j["tpdu"]) {
        (None, Value::Null) => {}
        (Some(t), jt) if !jt.is_null() => {
            check_tpdu(t, jt);
            assert_eq!(hex(rp.user_data().unwrap()), jt["hex"].as_str().unwrap());
        }
        (t, jt) => panic!("{name}: TPDU {t:?} vs {jt}"),
    }
    // RP re-encoding, with the TPDU re-encoded from its decoded value
    let tpdu_bytes = sms.tpdu.as_ref().map(|t| t.encode().unwrap());
    let mut body = rp.body.clone();
    match &mut body {
        RpBody::Data { user_data, .. } => *user_data = tpdu_bytes.as_deref().unwrap(),
        RpBody::Ack { user_data } | RpBody::Error { user_data, .. } => {
            *user_data = tpdu_bytes.as_deref()
        }
        RpBody::Smma => {}
    }
    let again = RpMessage::new(rp.direction, rp.message_reference, body)
        .encode()
        .unwrap();
    assert_eq!(hex(&again), hex(&bytes), "{name}: RP re-encoding");
    // and through the convenience encoder
    if let (
        Some(t),
        RpBody::Data {
            originator,
            destination,
            ..
        },
    ) = (&sms.tpdu, &rp.body)
    {
        let sc = originator.as_ref().or(destination.as_ref()).unwrap();
        assert_eq!(
            hex(&sms::encode_rp(rp.message_reference, sc, t, None).unwrap()),
            hex(&bytes)
        );
    }
    // the other direction must not decode as the same thing
    match sms::decode(&bytes, dir.reverse()) {
        Err(e) => assert_eq!(e.rp_cause().map(|c| c.0), Some(97), "{name}: {e}"),
        Ok(s) => panic!("{name} decoded in the wrong direction: {s:?}"),
    }
}

fn check_invalid(name: &str, j: &Value) {
    let bytes = unhex(&std::fs::read_to_string(dir().join(format!("{name}.hex"))).unwrap());
    let ans = &j["expected_answer"];
    // the direction to decode in: the answer goes the other way
    let dir = match ans["direction"].as_str().unwrap_or("") {
        "network_to_ms" => Direction::MsToNetwork,
        "ms_to_network" => Direction::NetworkToMs,
        _ => Direction::MsToNetwork,
    };
    let err = sms::decode(&bytes, dir).expect_err(name);
    assert_eq!(
        err.kind.to_string(),
        j["error"].as_str().unwrap(),
        "{name}: error text"
    );
    assert_eq!(err.offset as u64, u(&j["error_offset"]), "{name}: offset");
    match ans["action"].as_str().unwrap() {
        "send RP-ERROR" => {
            let cause = u(&ans["rp_cause"]) as u8;
            let mr = u(&ans["rp_message_reference"]) as u8;
            assert_eq!(err.rp_cause().map(|c| c.0), Some(cause), "{name}: cause");
            assert_eq!(
                err.rp_cause().unwrap().name(),
                ans["rp_cause_name"].as_str().unwrap()
            );
            assert_eq!(err.message_reference, Some(mr), "{name}: RP-MR");
            let answer = err.answer(&bytes, dir).expect("an answer");
            let a = RpMessage::decode(&answer, dir.reverse()).unwrap();
            assert_eq!(a.message_reference, mr);
            assert!(matches!(a.body, RpBody::Error { cause: c, .. } if c.0 == cause));
        }
        other => {
            assert!(other.starts_with("ignore"), "{name}: action {other}");
            assert_eq!(err.rp_cause(), None, "{name}");
            assert_eq!(err.answer(&bytes, dir), None, "{name}");
        }
    }
}

#[test]
fn every_vector() {
    let all = names();
    assert!(all.len() >= 26, "only {} vectors", all.len());
    let (mut valid, mut invalid) = (0, 0);
    for (name, ok) in &all {
        let j = load(name);
        if *ok {
            check_valid(name, &j);
            valid += 1;
        } else {
            check_invalid(name, &j);
            invalid += 1;
        }
    }
    assert_eq!((valid, invalid), (19, 7));
}

#[test]
fn concatenated_vectors_reassemble_to_the_original() {
    use ims::sms::{PushResult, Reassembler};
    #[allow(clippy::disallowed_methods)] // the reassembler only compares instants it is given
    let now = std::time::Instant::now();
    let mut r = Reassembler::default();
    let mut out = None;
    for n in [3, 1, 2] {
        let name = format!("rp_data_mo_submit_concat_part{n}of3");
        let bytes = unhex(&std::fs::read_to_string(dir().join(format!("{name}.hex"))).unwrap());
        let sms = sms::decode(&bytes, Direction::MsToNetwork).unwrap();
        let Some(Tpdu::Submit(s)) = sms.tpdu else {
            panic!()
        };
        if let PushResult::Complete(m) = r.push(now, "ue", s.dcs, &s.user_data) {
            out = m.text;
        }
    }
    let text = out.expect("complete after three parts");
    assert_eq!(text.chars().count(), 400);
    assert!(text.starts_with("The quick brown fox"));
    // and our own split of that text gives the same three user data
    let split = sms::split(
        &text,
        &sms::SplitOptions {
            reference: 123,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(split.parts.len(), 3);
    for (i, p) in split.parts.iter().enumerate() {
        let name = format!("rp_data_mo_submit_concat_part{}of3", i + 1);
        let j = load(&name);
        let mut enc = Vec::new();
        p.encode(split.dcs, &mut enc).unwrap();
        assert_eq!(
            hex(&enc[1..]),
            j["tpdu"]["tp_ud"]["ud_hex"].as_str().unwrap(),
            "{name}"
        );
    }
}
