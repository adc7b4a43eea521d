//! Interop with Wireshark's GSM RP (`gsm_a.rp`) and SMS TPDU (`gsm_sms`) dissectors: RP messages
//! made by ims-sms (every TPDU type, both directions, the answer builders, split parts) are put in
//! SIP MESSAGE bodies (`application/vnd.3gpp.sms`, TS 24.341) in a pcap and dissected by tshark.
//! For every packet tshark must name the same RP message type and reference and the same TPDU
//! type, read the same addresses, TP-MR, TP-FCS, TP-CT, text and ports as ims-sms does, and report
//! no malformed packet and no warning/error expert info in the RP or TPDU trees.
//!
//! A second test checks that broken messages are flagged by tshark and refused by ims-sms, so the
//! comparison cannot pass vacuously. Skipped (with a message) when tshark is not installed, unless
//! `IMS_REQUIRE_INTEROP=1`. `IMS_KEEP_PCAP=1` keeps the capture.

mod common;

use ims::sms::{
    self, answer, Address, Command, CommandType, DataCodingScheme, Deliver, Direction,
    FailureCause, InformationElement, NationalLanguage, ProtocolIdentifier, RpCause, RpMessage,
    ShiftTables, SplitOptions, Status, Submit, Timestamp, Tpdu, UserData, UserDataHeader,
    ValidityPeriod,
};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command as Process;

fn tshark() -> Option<PathBuf> {
    common::interop_tool("tshark", "install tshark (Debian package `tshark`)")
}

// ------------------------------------------------------------------------------------------
// pcap: Ethernet + IPv4 + UDP 127.0.0.1:5060 -> 127.0.0.1:5070, one SIP MESSAGE per packet
// ------------------------------------------------------------------------------------------

fn ipv4_checksum(h: &[u8]) -> u16 {
    let mut sum: u32 = h
        .chunks(2)
        .map(|w| u32::from(u16::from_be_bytes([w[0], w[1]])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

fn sip_message(i: usize, body: &[u8]) -> Vec<u8> {
    let mut m = format!(
        "MESSAGE sip:+447700900000@ims.mnc001.mcc001.3gppnetwork.org SIP/2.0\r\n\
         Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK-sms-{i:04}\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:+447700900123@ims.mnc001.mcc001.3gppnetwork.org>;tag=f{i}\r\n\
         To: <sip:+447700900000@ims.mnc001.mcc001.3gppnetwork.org>\r\n\
         Call-ID: sms-{i}@127.0.0.1\r\n\
         CSeq: {} MESSAGE\r\n\
         Content-Type: application/vnd.3gpp.sms\r\n\
         Content-Length: {}\r\n\r\n",
        i + 1,
        body.len()
    )
    .into_bytes();
    m.extend_from_slice(body);
    m
}

fn pcap(bodies: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&4u16.to_le_bytes());
    out.extend_from_slice(&[0; 8]);
    out.extend_from_slice(&65535u32.to_le_bytes());
    out.extend_from_slice(&1u32.to_le_bytes());
    for (i, body) in bodies.iter().enumerate() {
        let sip = sip_message(i, body);
        let udp_len = 8 + sip.len();
        let mut ip = [0u8; 20];
        ip[0] = 0x45;
        ip[2..4].copy_from_slice(&((20 + udp_len) as u16).to_be_bytes());
        ip[4..6].copy_from_slice(&(i as u16).to_be_bytes());
        ip[6] = 0x40;
        ip[8] = 64;
        ip[9] = 17;
        ip[12..16].copy_from_slice(&[127, 0, 0, 1]);
        ip[16..20].copy_from_slice(&[127, 0, 0, 1]);
        let ck = ipv4_checksum(&ip);
        ip[10..12].copy_from_slice(&ck.to_be_bytes());
        let mut frame = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 8, 0];
        frame.extend_from_slice(&ip);
        frame.extend_from_slice(&5060u16.to_be_bytes());
        frame.extend_from_slice(&5070u16.to_be_bytes());
        frame.extend_from_slice(&(udp_len as u16).to_be_bytes());
        frame.extend_from_slice(&[0, 0]);
        frame.extend_from_slice(&sip);
        out.extend_from_slice(&(1_700_000_000 + i as u32).to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes());
        out.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        out.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        out.extend_from_slice(&frame);
    }
    out
}

/// tshark's JSON per packet and the TPDU name of its `-V` tree ("GSM SMS TPDU (GSM 03.40) X").
fn dissect(
    tshark: &Path,
    dir: &Path,
    name: &str,
    bodies: &[Vec<u8>],
) -> Vec<(Value, Option<String>)> {
    let file = dir.join(format!("{name}.pcap"));
    std::fs::write(&file, pcap(bodies)).unwrap();
    let json = Process::new(tshark)
        .arg("-r")
        .arg(&file)
        .args(["-T", "json"])
        .output()
        .unwrap();
    assert!(
        json.status.success(),
        "tshark failed: {}",
        String::from_utf8_lossy(&json.stderr)
    );
    let packets: Vec<Value> = serde_json::from_slice(&json.stdout).expect("tshark JSON");
    assert_eq!(packets.len(), bodies.len(), "packet count");
    let text = Process::new(tshark)
        .arg("-r")
        .arg(&file)
        .arg("-V")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&text.stdout).into_owned();
    let mut names = vec![None; bodies.len()];
    let mut frame = 0usize;
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("Frame ") {
            if let Some(n) = rest.split(':').next().and_then(|n| n.parse::<usize>().ok()) {
                frame = n;
            }
        }
        if let Some(t) = line.trim().strip_prefix("GSM SMS TPDU (GSM 03.40) ") {
            names[frame - 1] = Some(t.trim().to_owned());
        }
    }
    packets.into_iter().zip(names).collect()
}

/// Every (key, string value) leaf under `v`, depth first.
fn leaves<'a>(v: &'a Value, out: &mut Vec<(&'a str, &'a str)>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                match x {
                    Value::String(s) => out.push((k.as_str(), s.as_str())),
                    Value::Array(a) => {
                        for y in a {
                            if let Value::String(s) = y {
                                out.push((k.as_str(), s.as_str()));
                            } else {
                                leaves(y, out);
                            }
                        }
                    }
                    _ => leaves(x, out),
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|x| leaves(x, out)),
        _ => {}
    }
}

/// The SIP body subtree that holds the `gsm_a.rp` and `gsm_sms` trees.
fn body_tree(p: &Value) -> &Value {
    &p["_source"]["layers"]["sip"]["sip.msg_body"]
}

fn first<'a>(l: &[(&str, &'a str)], key: &str) -> Option<&'a str> {
    l.iter().find(|(k, _)| *k == key).map(|(_, v)| *v)
}

/// Malformed markers anywhere, expert items of warning/error severity inside the RP/TPDU trees.
fn problems(p: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let s = p.to_string();
    if s.contains("_ws.malformed") {
        out.push("malformed packet".into());
    }
    for tree in ["gsm_a.rp", "gsm_sms"] {
        let mut l = Vec::new();
        leaves(&body_tree(p)[tree], &mut l);
        for (k, v) in &l {
            if *k == "_ws.expert.severity" {
                let sev = u32::from_str_radix(v.trim_start_matches("0x"), 16).unwrap_or(0);
                if sev >= 0x0060_0000 {
                    out.push(format!("expert info severity {v} in {tree}: {l:?}"));
                }
            }
        }
    }
    out
}

/// What tshark and ims-sms are compared on.
#[derive(Debug, PartialEq, Eq, Default)]
struct Seen {
    rp_type: String,
    rp_mr: String,
    tpdu: Option<String>,
    addresses: Vec<String>,
    tp_mr: Option<String>,
    fcs: Option<String>,
    command_type: Option<String>,
    text: Option<String>,
    ports: Option<(String, String)>,
}

fn from_tshark(p: &Value, tpdu_name: Option<String>) -> Seen {
    let mut rp = Vec::new();
    leaves(&body_tree(p)["gsm_a.rp"], &mut rp);
    let mut tp = Vec::new();
    leaves(&body_tree(p)["gsm_sms"], &mut tp);
    let addresses = tp
        .iter()
        .filter(|(k, _)| matches!(*k, "gsm_sms.tp-oa" | "gsm_sms.tp-da" | "gsm_sms.tp-ra"))
        .map(|(_, v)| v.to_string())
        .collect();
    let num = |v: &str| {
        u32::from_str_radix(
            v.trim_start_matches("0x"),
            if v.starts_with("0x") { 16 } else { 10 },
        )
        .map(|n| n.to_string())
        .unwrap_or_else(|_| v.to_owned())
    };
    Seen {
        rp_type: first(&rp, "gsm_a.rp.msg_type").map(num).unwrap_or_default(),
        rp_mr: first(&rp, "gsm_a.rp.rp_message_reference")
            .map(num)
            .unwrap_or_default(),
        // tshark writes "SMS-SUBMIT REPORT" where TS 23.040 (and ims-sms) write SMS-SUBMIT-REPORT
        tpdu: tpdu_name.map(|n| n.replace(' ', "-")),
        addresses,
        tp_mr: first(&tp, "gsm_sms.tp-mr").map(num),
        fcs: first(&tp, "gsm_sms.tp-fcs").map(num),
        command_type: first(&tp, "gsm_sms.tp.command_type").map(num),
        text: first(&tp, "gsm_sms.sms_text").map(str::to_owned),
        ports: first(&tp, "gsm_sms.destination_port")
            .zip(first(&tp, "gsm_sms.originator_port"))
            .map(|(a, b)| (a.to_owned(), b.to_owned())),
    }
}

fn from_ims(body: &[u8], dir: Direction) -> Seen {
    let m =
        sms::decode(body, dir).unwrap_or_else(|e| panic!("ims-sms refuses its own output: {e}"));
    let mut s = Seen {
        rp_type: m.rp.mti().to_string(),
        rp_mr: m.rp.message_reference.to_string(),
        ..Seen::default()
    };
    let Some(t) = &m.tpdu else { return s };
    s.tpdu = Some(t.name().to_owned());
    let addr = |a: &Address| a.value.clone();
    match t {
        Tpdu::Deliver(d) => s.addresses.push(addr(&d.originator)),
        Tpdu::Submit(x) => {
            s.addresses.push(addr(&x.destination));
            s.tp_mr = Some(x.message_reference.to_string());
        }
        Tpdu::StatusReport(r) => {
            s.addresses.push(addr(&r.recipient));
            s.tp_mr = Some(r.message_reference.to_string());
        }
        Tpdu::Command(c) => {
            s.addresses.push(addr(&c.destination));
            s.tp_mr = Some(c.message_reference.to_string());
            s.command_type = Some(c.command_type.0.to_string());
        }
        Tpdu::DeliverReport(r) => s.fcs = r.failure_cause.map(|f| f.0.to_string()),
        Tpdu::SubmitReport(r) => s.fcs = r.failure_cause.map(|f| f.0.to_string()),
    }
    s.text = t.text();
    s.ports = t
        .user_data()
        .and_then(|u| u.header.as_ref())
        .and_then(|h| h.ports())
        .map(|(a, b)| (a.to_string(), b.to_string()));
    s
}

/// Whether the message's user data header selects a national language table.
fn national_language(body: &[u8], dir: Direction) -> bool {
    let m = sms::decode(body, dir).unwrap();
    m.tpdu
        .as_ref()
        .and_then(Tpdu::user_data)
        .and_then(|u| u.header.as_ref())
        .is_some_and(|h| h.shift_tables() != ShiftTables::DEFAULT)
}

// ------------------------------------------------------------------------------------------
// The messages
// ------------------------------------------------------------------------------------------

fn ts(minute: u8, tz: i8) -> Timestamp {
    Timestamp {
        year: 24,
        month: 3,
        day: 15,
        hour: 14,
        minute,
        second: 45,
        tz_quarter_hours: tz,
    }
}

fn sc() -> Address {
    Address::international("447700900000")
}

fn submit(
    mr: u8,
    text_ud: (DataCodingScheme, UserData),
    srr: bool,
    vp: Option<ValidityPeriod>,
) -> Submit {
    Submit {
        reject_duplicates: false,
        reply_path: false,
        status_report_request: srr,
        message_reference: mr,
        destination: Address::international("447700900456"),
        pid: ProtocolIdentifier::DEFAULT,
        dcs: text_ud.0,
        validity_period: vp,
        user_data: text_ud.1,
    }
}

fn cases() -> Vec<(String, Vec<u8>, Direction)> {
    let mut out: Vec<(String, Vec<u8>, Direction)> = Vec::new();
    let mut push =
        |label: &str, body: Vec<u8>, dir: Direction| out.push((label.to_owned(), body, dir));
    let mo = Direction::MsToNetwork;
    let mt = Direction::NetworkToMs;

    let gsm = |t: &str| {
        (
            DataCodingScheme::GSM7,
            UserData::gsm7(t, Default::default()).unwrap(),
        )
    };
    let s1 = submit(
        7,
        gsm("Hello from ims-rs: 5€ [ok] {x} ~^|"),
        true,
        Some(ValidityPeriod::Relative(167)),
    );
    let rp1 = sms::encode_rp(1, &sc(), &Tpdu::Submit(s1.clone()), None).unwrap();
    push(
        "SMS-SUBMIT GSM7 + extension, SRR, relative VP",
        rp1.clone(),
        mo,
    );
    push(
        "SMS-SUBMIT UCS2 with a surrogate pair",
        sms::encode_rp(
            2,
            &sc(),
            &Tpdu::Submit(submit(
                8,
                (DataCodingScheme::UCS2, UserData::ucs2("Grüße 😀 你好")),
                false,
                None,
            )),
            None,
        )
        .unwrap(),
        mo,
    );
    let port = UserData {
        header: Some(UserDataHeader {
            elements: vec![InformationElement::Port16 {
                destination: 2948,
                originator: 9200,
            }],
        }),
        body: vec![0x01, 0x06, 0x03, 0xC4, 0xAF, 0x87],
    };
    push(
        "SMS-SUBMIT 8-bit with 16-bit ports, absolute VP",
        sms::encode_rp(
            3,
            &sc(),
            &Tpdu::Submit(submit(
                9,
                (DataCodingScheme::EIGHT_BIT, port),
                false,
                Some(ValidityPeriod::Absolute(ts(0, -20))),
            )),
            None,
        )
        .unwrap(),
        mo,
    );
    // a 3-part split (8-bit reference) and a 2-part UCS2 split (16-bit reference)
    let long = "SMS over IP: RP-DATA in a SIP MESSAGE. ".repeat(9);
    let sp = sms::split(
        &long,
        &SplitOptions {
            reference: 0x42,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(sp.parts.len(), 3);
    for (i, p) in sp.parts.iter().enumerate() {
        let t = Tpdu::Submit(submit(20 + i as u8, (sp.dcs, p.clone()), false, None));
        push(
            &format!("split part {} of 3", i + 1),
            sms::encode_rp(10 + i as u8, &sc(), &t, None).unwrap(),
            mo,
        );
    }
    let sp = sms::split(
        &"Приветствие! ".repeat(7),
        &SplitOptions {
            reference: 0xBEEF,
            sixteen_bit_reference: true,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(sp.parts.len(), 2);
    for (i, p) in sp.parts.iter().enumerate() {
        let t = Tpdu::Submit(submit(30 + i as u8, (sp.dcs, p.clone()), false, None));
        push(
            &format!("UCS2 split part {} of 2", i + 1),
            sms::encode_rp(20 + i as u8, &sc(), &t, None).unwrap(),
            mo,
        );
    }
    // national language single shift: a Turkish text that needs it
    let sp = sms::split(
        "Çağrı: İstanbul'da ş ğ ı",
        &SplitOptions {
            national_languages: vec![NationalLanguage::Turkish],
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!((sp.parts.len(), sp.dcs), (1, DataCodingScheme::GSM7));
    push(
        "SMS-SUBMIT Turkish national language shift",
        sms::encode_rp(
            25,
            &sc(),
            &Tpdu::Submit(submit(35, (sp.dcs, sp.parts[0].clone()), false, None)),
            None,
        )
        .unwrap(),
        mo,
    );
    push(
        "SMS-COMMAND delete",
        sms::encode_rp(
            26,
            &sc(),
            &Tpdu::Command(Command {
                status_report_request: false,
                user_data_header_indication: false,
                message_reference: 44,
                pid: ProtocolIdentifier::DEFAULT,
                command_type: CommandType::DELETE,
                message_number: 7,
                destination: Address::international("447700900456"),
                command_data: Vec::new(),
            }),
            None,
        )
        .unwrap(),
        mo,
    );
    push("RP-SMMA", RpMessage::smma(27).encode().unwrap(), mo);

    // network answers and mobile terminated messages, made by the builders
    let rp1_msg = RpMessage::decode(&rp1, mo).unwrap();
    push(
        "SMS-SUBMIT-REPORT in RP-ACK (answer::submit_report_ack)",
        answer::submit_report_ack(&rp1_msg, ts(30, 4)).unwrap(),
        mt,
    );
    push(
        "SMS-SUBMIT-REPORT in RP-ERROR (answer::submit_report_error)",
        answer::submit_report_error(
            &rp1_msg,
            RpCause::INVALID_MANDATORY_INFORMATION,
            Some((FailureCause::INVALID_SME_ADDRESS, ts(30, 4))),
        )
        .unwrap(),
        mt,
    );
    push(
        "RP-ERROR cause 41 (answer::rp_error)",
        answer::rp_error(mo, 1, RpCause::TEMPORARY_FAILURE).unwrap(),
        mt,
    );
    let deliver =
        answer::deliver_from_submit(&s1, Address::international("447700900123"), ts(31, 4));
    let rp_deliver = sms::encode_rp(40, &sc(), &Tpdu::Deliver(deliver), None).unwrap();
    push(
        "SMS-DELIVER converted from the SUBMIT",
        rp_deliver.clone(),
        mt,
    );
    push(
        "SMS-DELIVER from an alphanumeric originator",
        sms::encode_rp(
            41,
            &sc(),
            &Tpdu::Deliver(Deliver {
                more_messages_to_send: true,
                loop_prevention: false,
                status_report_indication: false,
                reply_path: false,
                originator: Address::alphanumeric("ims-rs"),
                pid: ProtocolIdentifier::DEFAULT,
                dcs: DataCodingScheme::GSM7,
                service_centre_time_stamp: ts(32, -8),
                user_data: UserData::gsm7("Your code is 424242", Default::default()).unwrap(),
            }),
            None,
        )
        .unwrap(),
        mt,
    );
    let report = answer::status_report_for(&s1, ts(30, 4), ts(33, 4), Status::DELIVERED)
        .expect("TP-SRR was set");
    push(
        "SMS-STATUS-REPORT (answer::status_report_for)",
        sms::encode_rp(42, &sc(), &Tpdu::StatusReport(report), None).unwrap(),
        mt,
    );
    // the MS answers the DELIVER
    let rp_d = RpMessage::decode(&rp_deliver, mt).unwrap();
    push(
        "SMS-DELIVER-REPORT in RP-ACK (answer::deliver_report_ack)",
        answer::deliver_report_ack(&rp_d).unwrap(),
        mo,
    );
    push(
        "SMS-DELIVER-REPORT in RP-ERROR (answer::deliver_report_error)",
        answer::deliver_report_error(
            &rp_d,
            RpCause::MEMORY_CAPACITY_EXCEEDED,
            FailureCause::MEMORY_CAPACITY_EXCEEDED,
        )
        .unwrap(),
        mo,
    );
    out
}

#[test]
fn tshark_agrees_with_ims_sms() {
    let Some(tshark) = tshark() else { return };
    let cases = cases();
    let dir = common::TempDir::new("tshark", "sms", "IMS_KEEP_PCAP");
    let bodies: Vec<Vec<u8>> = cases.iter().map(|c| c.1.clone()).collect();
    let packets = dissect(&tshark, dir.path(), "sms", &bodies);
    let mut failures = Vec::new();
    let mut types = std::collections::BTreeSet::new();
    for ((label, body, d), (p, name)) in cases.iter().zip(packets) {
        let ours = from_ims(body, *d);
        let theirs = from_tshark(&p, name);
        if let Some(t) = &ours.tpdu {
            types.insert(format!("{t} {d:?}"));
        }
        let mut bad = problems(&p);
        let mut theirs = theirs;
        if national_language(body, *d) {
            // tshark 4.0 does not implement the national language shift tables: it shows U+FFFD
            // for each character outside the default alphabet. Check exactly that, then compare
            // the rest.
            let (o, t) = (
                ours.text.clone().unwrap_or_default(),
                theirs.text.clone().unwrap_or_default(),
            );
            let ok = o.chars().count() == t.chars().count()
                && o.chars().zip(t.chars()).all(|(a, b)| {
                    a == b
                        || (b == char::REPLACEMENT_CHARACTER
                            && ShiftTables::DEFAULT.encode_char(a).is_none())
                });
            if !ok {
                bad.push(format!(
                    "national language text: ims-sms {o:?}, tshark {t:?}"
                ));
            }
            theirs.text = ours.text.clone();
        }
        if ours != theirs {
            bad.push(format!("ims-sms {ours:?}\n      tshark  {theirs:?}"));
        }
        if !bad.is_empty() {
            failures.push(format!("{label}:\n    {}", bad.join("\n    ")));
        }
    }
    assert!(
        failures.is_empty(),
        "tshark disagrees:\n{}",
        failures.join("\n")
    );
    assert_eq!(types.len(), 6, "every TPDU type: {types:?}");
    eprintln!("{} packets agree ({} TPDU types)", cases.len(), types.len());
}

/// The comparison can fail: truncated TPDUs are flagged by tshark and refused by ims-sms, and a
/// changed address is reported as a difference.
#[test]
fn tshark_checks_can_fail() {
    let Some(tshark) = tshark() else { return };
    let good = cases().remove(0).1;
    // cut the TPDU after TP-DA (the RP-User-Data length adjusted): TP-PID, TP-DCS, TP-UDL missing
    let mut cut = good[..12 + 1 + 1 + 8].to_vec();
    cut[11] = (cut.len() - 12) as u8;
    // TP-UDL larger than the data
    let mut overrun = good.clone();
    let udl_at = 12 + 2 + 8 + 2 + 1;
    overrun[udl_at] = 160;
    let dir = common::TempDir::new("tshark", "sms-broken", "IMS_KEEP_PCAP");
    let packets = dissect(
        &tshark,
        dir.path(),
        "broken",
        &[good.clone(), cut.clone(), overrun.clone()],
    );
    assert!(problems(&packets[0].0).is_empty());
    for (b, (p, _)) in [cut, overrun].iter().zip(&packets[1..]) {
        assert!(!problems(p).is_empty(), "tshark did not flag {b:02x?}");
        let e = sms::decode(b, Direction::MsToNetwork).expect_err("ims-sms accepted a broken TPDU");
        assert_eq!(e.rp_cause(), Some(RpCause::INVALID_MANDATORY_INFORMATION));
    }
    let mut ours = from_ims(&good, Direction::MsToNetwork);
    let theirs = from_tshark(&packets[0].0, packets[0].1.clone());
    assert_eq!(ours, theirs);
    ours.addresses[0].push('9');
    assert_ne!(ours, theirs, "a changed address went unnoticed");
}
