//! Fuzz oracles for [`crate::sms`]: the RP layer (`sms_rp`) and the TPDUs (`sms_tpdu`), both
//! directions.

use crate::sms::{
    self, Carrier, DecodeError, Direction, Reassembler, RpBody, RpMessage, SplitOptions, Tpdu,
};

fn check_error(e: &DecodeError, len: usize, what: &str) {
    assert!(
        e.offset <= len,
        "{what}: error offset {} past {len} octets ({e})",
        e.offset
    );
    let shown = e.to_string();
    assert!(shown.starts_with(e.kind.code()), "{what}: {shown:?}");
    if let Some(c) = e.rp_cause() {
        assert!(
            [95, 96, 97, 98, 99, 111].contains(&c.0),
            "{what}: unexpected answer cause {c}"
        );
    }
}

/// Decodes `data` as an RP message in both directions and in the direction its RP-MTI gives.
///
/// Oracles: a decoded message re-encodes, and the encoding decodes to an equal message; its TPDU
/// (when it decodes) re-encodes and decodes again to an equal TPDU (via [`tpdu_round_trip`]);
/// decoding in the direction of the RP-MTI agrees with `decode_any`; error offsets stay inside
/// the input; an error's answer, when there is one, is a decodable RP-ERROR with the received
/// RP-MR going the other way.
pub fn sms_rp(data: &[u8]) {
    let any = RpMessage::decode_any(data);
    for dir in [Direction::MsToNetwork, Direction::NetworkToMs] {
        match RpMessage::decode(data, dir) {
            Ok(rp) => {
                assert_eq!(rp.direction, dir);
                assert_eq!(
                    any.as_ref().ok(),
                    Some(&rp),
                    "decode and decode_any disagree"
                );
                let enc = rp
                    .encode()
                    .unwrap_or_else(|e| panic!("{rp:?} does not re-encode: {e}"));
                assert!(enc.len() <= data.len(), "re-encoding grew the message");
                // bits 8-4 of the first octet are spare (TS 24.011 §8.2.2): not kept
                assert_eq!([enc[0], enc[1]], [data[0] & 7, data[1]], "MTI/MR changed");
                let again = RpMessage::decode(&enc, dir)
                    .unwrap_or_else(|e| panic!("re-encoded {enc:02x?} does not decode: {e}"));
                assert_eq!(again, rp, "RP round trip");
                match rp.tpdu() {
                    Ok(Some(t)) => {
                        let carrier = match rp.body {
                            RpBody::Data { .. } => Carrier::RpData,
                            RpBody::Ack { .. } => Carrier::RpAck,
                            _ => Carrier::RpError,
                        };
                        tpdu_round_trip(&t, dir, carrier);
                        assert_eq!(again.tpdu().ok().flatten().as_ref(), Some(&t));
                    }
                    Ok(None) => {}
                    Err(e) => {
                        check_error(&e, data.len(), "tpdu");
                        assert_eq!(e.message_reference, Some(data[1]));
                        check_answer(&e, data, dir);
                    }
                }
                match sms::decode(data, dir) {
                    Ok(s) => assert_eq!(s.rp, rp),
                    Err(e) => check_error(&e, data.len(), "decode"),
                }
            }
            Err(e) => {
                check_error(&e, data.len(), "RpMessage::decode");
                check_answer(&e, data, dir);
            }
        }
    }
}

fn check_answer(e: &DecodeError, data: &[u8], dir: Direction) {
    if let Some(a) = e.answer(data, dir) {
        let rp = RpMessage::decode(&a, dir.reverse())
            .unwrap_or_else(|x| panic!("answer {a:02x?} does not decode: {x}"));
        assert_eq!(Some(rp.message_reference), e.message_reference);
        match rp.body {
            RpBody::Error { cause, .. } => assert_eq!(Some(cause), e.rp_cause()),
            other => panic!("answer is not an RP-ERROR: {other:?}"),
        }
    }
}

/// The TPDU re-encodes and decodes to an equal value with the same direction and carrier; its
/// text, when there is one, survives `split` and reassembly.
fn tpdu_round_trip(t: &Tpdu, dir: Direction, carrier: Carrier) {
    assert_eq!(t.direction(), dir, "{} in the wrong direction", t.name());
    if carrier != Carrier::RpData {
        assert_eq!(t.carrier(), carrier, "{} report form", t.name());
    }
    let enc = t
        .encode()
        .unwrap_or_else(|e| panic!("{t:?} does not re-encode: {e}"));
    let again = Tpdu::decode(&enc, dir, carrier)
        .unwrap_or_else(|e| panic!("re-encoded {enc:02x?} does not decode: {e}"));
    assert_eq!(&again, t, "TPDU round trip");
    assert_eq!(
        again.encode().as_deref().ok(),
        Some(&enc[..]),
        "encoding is not stable"
    );
    if let Some(text) = t.text() {
        split_round_trip(&text);
    }
}

fn split_round_trip(text: &str) {
    let opts = SplitOptions {
        reference: 0x1234,
        sixteen_bit_reference: true,
        national_languages: vec![
            sms::NationalLanguage::Turkish,
            sms::NationalLanguage::Portuguese,
        ],
        ..SplitOptions::default()
    };
    let split = sms::split(text, &opts).expect("a short message's text fits 255 parts");
    let mut r = Reassembler::default();
    let now = reference_instant();
    let mut done = None;
    for p in &split.parts {
        if let sms::PushResult::Complete(m) = r.push(now, "fuzz", split.dcs, p) {
            done = m.text;
        }
    }
    assert_eq!(
        done.as_deref(),
        Some(text),
        "split/reassemble changed the text"
    );
}

/// One fixed instant for the reassembler (it only compares instants it is given).
fn reference_instant() -> std::time::Instant {
    use std::sync::OnceLock;
    static T: OnceLock<std::time::Instant> = OnceLock::new();
    #[allow(clippy::disallowed_methods)] // fuzz harness, not protocol code
    *T.get_or_init(std::time::Instant::now)
}

/// Decodes `data[1..]` as a TPDU; `data[0] % 6` picks the direction and carrier (MS to network /
/// network to MS, in RP-DATA, RP-ACK or RP-ERROR).
///
/// Oracles: a decoded TPDU has the requested direction and carrier, re-encodes, decodes again to
/// an equal value and re-encodes identically; its text survives split and reassembly; error
/// offsets stay inside the input.
pub fn sms_tpdu(data: &[u8]) {
    let Some((&sel, tpdu)) = data.split_first() else {
        return;
    };
    let dir = if sel % 2 == 0 {
        Direction::MsToNetwork
    } else {
        Direction::NetworkToMs
    };
    let carrier = match (sel / 2) % 3 {
        0 => Carrier::RpData,
        1 => Carrier::RpAck,
        _ => Carrier::RpError,
    };
    match Tpdu::decode(tpdu, dir, carrier) {
        Ok(t) => tpdu_round_trip(&t, dir, carrier),
        Err(e) => check_error(&e, tpdu.len(), "Tpdu::decode"),
    }
}
