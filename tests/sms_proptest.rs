//! Property tests for ims-sms: random TPDUs of all six types encode and decode to themselves
//! (inside their RP message too), and `split` followed by reassembly (parts in any order, some
//! duplicated) returns any Unicode text.

use ims::sms::{
    self, Address, Command, CommandType, DataCodingScheme, Deliver, DeliverReport, Direction,
    FailureCause, InformationElement, NationalLanguage, NumberingPlan, ProtocolIdentifier,
    PushResult, Reassembler, RpMessage, SplitOptions, Status, StatusReport, Submit, SubmitReport,
    Timestamp, Tpdu, TypeOfNumber, UserData, UserDataHeader, ValidityPeriod,
};
use proptest::prelude::*;

fn address() -> impl Strategy<Value = Address> {
    prop_oneof![
        ("[0-9*#abc]{0,20}", 0u8..8, 0u8..16).prop_filter_map(
            "not alphanumeric",
            |(d, ton, npi)| {
                let ton = TypeOfNumber::from_code(ton);
                (ton != TypeOfNumber::Alphanumeric).then(|| Address {
                    ton,
                    npi: NumberingPlan::from_code(npi),
                    value: d,
                })
            }
        ),
        "[A-Za-z0-9 ]{0,11}".prop_map(|s| Address::alphanumeric(&s)),
    ]
}

fn timestamp() -> impl Strategy<Value = Timestamp> {
    (
        0u8..100,
        1u8..13,
        1u8..32,
        0u8..24,
        0u8..60,
        0u8..60,
        -79i8..80,
    )
        .prop_map(
            |(year, month, day, hour, minute, second, tz_quarter_hours)| Timestamp {
                year,
                month,
                day,
                hour,
                minute,
                second,
                tz_quarter_hours,
            },
        )
}

fn element() -> impl Strategy<Value = InformationElement> {
    prop_oneof![
        (any::<u8>(), any::<u8>(), any::<u8>()).prop_map(|(reference, total, sequence)| {
            InformationElement::Concat8 {
                reference,
                total,
                sequence,
            }
        }),
        (any::<u16>(), any::<u8>(), any::<u8>()).prop_map(|(reference, total, sequence)| {
            InformationElement::Concat16 {
                reference,
                total,
                sequence,
            }
        }),
        (any::<u16>(), any::<u16>()).prop_map(|(destination, originator)| {
            InformationElement::Port16 {
                destination,
                originator,
            }
        }),
        (any::<u8>(), any::<u8>()).prop_map(|(destination, originator)| {
            InformationElement::Port8 {
                destination,
                originator,
            }
        }),
        (any::<u8>(), any::<u8>()).prop_map(|(indication, count)| {
            InformationElement::SpecialMessageIndication { indication, count }
        }),
        (1u8..14)
            .prop_map(|l| InformationElement::NationalSingleShift(NationalLanguage::from_code(l))),
        (1u8..14)
            .prop_map(|l| InformationElement::NationalLockingShift(NationalLanguage::from_code(l))),
        (0x70u8..0x80, proptest::collection::vec(any::<u8>(), 0..6))
            .prop_map(|(iei, data)| InformationElement::Other { iei, data }),
    ]
}

/// A TP-DCS and user data that fits it.
fn user_data() -> impl Strategy<Value = (DataCodingScheme, UserData)> {
    (
        prop_oneof![
            Just(0x00u8),
            Just(0x04),
            Just(0x08),
            Just(0x11),
            Just(0xF5),
            Just(0xC8),
            Just(0xE2),
            Just(0x24)
        ],
        proptest::option::of(proptest::collection::vec(element(), 0..4)),
        proptest::collection::vec(any::<u8>(), 0..160),
    )
        .prop_map(|(dcs, elements, raw)| {
            let dcs = DataCodingScheme(dcs);
            let header = elements.map(|elements| UserDataHeader { elements });
            let h = header.as_ref().map_or(0, |h| h.encode().unwrap().len());
            let body: Vec<u8> = if dcs.udl_in_septets() {
                let cap = 160 - ims::sms::header_septets(h).0.min(160);
                raw.iter().take(cap).map(|b| b & 0x7f).collect()
            } else {
                raw.iter().take(140 - h).copied().collect()
            };
            (dcs, UserData { header, body })
        })
}

fn validity() -> impl Strategy<Value = Option<ValidityPeriod>> {
    prop_oneof![
        Just(None),
        any::<u8>().prop_map(|v| Some(ValidityPeriod::Relative(v))),
        timestamp().prop_map(|t| Some(ValidityPeriod::Absolute(t))),
        any::<[u8; 7]>().prop_map(|e| Some(ValidityPeriod::Enhanced(e))),
    ]
}

fn optional_tail() -> impl Strategy<
    Value = (
        Option<ProtocolIdentifier>,
        Option<DataCodingScheme>,
        Option<UserData>,
    ),
> {
    (
        proptest::option::of(any::<u8>()),
        proptest::option::of(user_data()),
        any::<bool>(),
    )
        .prop_map(|(pid, ud, with_dcs)| {
            let (dcs, ud) = match ud {
                Some((d, u)) if with_dcs => (Some(d), Some(u)),
                Some((_, u)) => {
                    // no TP-DCS: the user data reads as GSM 7 bit
                    let (_, u2) = (DataCodingScheme::GSM7, u);
                    let body = u2.body.iter().map(|b| b & 0x7f).collect();
                    (None, Some(UserData { header: None, body }))
                }
                None => (None, None),
            };
            (pid.map(ProtocolIdentifier), dcs, ud)
        })
}

fn tpdu() -> impl Strategy<Value = Tpdu> {
    prop_oneof![
        (
            any::<[bool; 4]>(),
            address(),
            any::<u8>(),
            user_data(),
            timestamp()
        )
            .prop_map(|(f, originator, pid, (dcs, user_data), scts)| {
                Tpdu::Deliver(Deliver {
                    more_messages_to_send: f[0],
                    loop_prevention: f[1],
                    status_report_indication: f[2],
                    reply_path: f[3],
                    originator,
                    pid: ProtocolIdentifier(pid),
                    dcs,
                    service_centre_time_stamp: scts,
                    user_data,
                })
            }),
        (
            any::<[bool; 3]>(),
            any::<u8>(),
            address(),
            any::<u8>(),
            user_data(),
            validity()
        )
            .prop_map(|(f, mr, destination, pid, (dcs, user_data), vp)| {
                Tpdu::Submit(Submit {
                    reject_duplicates: f[0],
                    reply_path: f[1],
                    status_report_request: f[2],
                    message_reference: mr,
                    destination,
                    pid: ProtocolIdentifier(pid),
                    dcs,
                    validity_period: vp,
                    user_data,
                })
            }),
        (proptest::option::of(any::<u8>()), 0u8..32, optional_tail()).prop_map(
            |(fcs, r, (pid, dcs, user_data))| {
                Tpdu::DeliverReport(DeliverReport {
                    failure_cause: fcs.map(FailureCause),
                    pi_reserved: r << 3,
                    pid,
                    dcs,
                    user_data,
                })
            }
        ),
        (
            proptest::option::of(any::<u8>()),
            0u8..32,
            timestamp(),
            optional_tail()
        )
            .prop_map(|(fcs, r, scts, (pid, dcs, user_data))| {
                Tpdu::SubmitReport(SubmitReport {
                    failure_cause: fcs.map(FailureCause),
                    pi_reserved: r << 3,
                    service_centre_time_stamp: scts,
                    pid,
                    dcs,
                    user_data,
                })
            }),
        (
            any::<[bool; 3]>(),
            any::<u8>(),
            address(),
            timestamp(),
            timestamp(),
            any::<u8>(),
            proptest::option::of(0u8..32),
            optional_tail()
        )
            .prop_map(
                |(f, mr, recipient, scts, dt, st, pi, (pid, dcs, user_data))| {
                    Tpdu::StatusReport(StatusReport {
                        more_messages_to_send: f[0],
                        loop_prevention: f[1],
                        status_report_qualifier: f[2],
                        message_reference: mr,
                        recipient,
                        service_centre_time_stamp: scts,
                        discharge_time: dt,
                        status: Status(st),
                        pi_reserved: if pi.is_none()
                            && (pid.is_some() || dcs.is_some() || user_data.is_some())
                        {
                            Some(0)
                        } else {
                            pi.map(|r| r << 3)
                        },
                        pid,
                        dcs,
                        user_data,
                    })
                }
            ),
        (
            any::<[bool; 2]>(),
            any::<[u8; 4]>(),
            address(),
            proptest::collection::vec(any::<u8>(), 0..158)
        )
            .prop_map(|(f, b, destination, command_data)| {
                Tpdu::Command(Command {
                    status_report_request: f[0],
                    user_data_header_indication: f[1],
                    message_reference: b[0],
                    pid: ProtocolIdentifier(b[1]),
                    command_type: CommandType(b[2]),
                    message_number: b[3],
                    destination,
                    command_data,
                })
            }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn tpdu_encode_decode(t in tpdu(), mr in any::<u8>()) {
        let bytes = t.encode().unwrap();
        let back = Tpdu::decode(&bytes, t.direction(), t.carrier()).unwrap();
        prop_assert_eq!(&back, &t);
        // inside its RP message
        let sc = Address::international("447700900000");
        let rp = sms::encode_rp(mr, &sc, &t, None).unwrap();
        let got = sms::decode(&rp, t.direction()).unwrap();
        prop_assert_eq!(got.rp.message_reference, mr);
        prop_assert_eq!(got.tpdu.as_ref(), Some(&t));
        prop_assert_eq!(got.rp.encode().unwrap(), rp);
    }

    #[test]
    fn split_then_reassemble(text in "\\PC{0,700}", sixteen in any::<bool>(), reference in any::<u16>(),
                             order in any::<u64>(), langs in proptest::collection::vec(1u8..4, 0..3)) {
        let opts = SplitOptions {
            reference,
            sixteen_bit_reference: sixteen,
            national_languages: langs.into_iter().map(NationalLanguage::from_code).collect(),
            ..SplitOptions::default()
        };
        let split = sms::split(&text, &opts).unwrap();
        // every part fits one SMS-SUBMIT and no part ends inside an escape or a surrogate pair
        for p in &split.parts {
            let mut out = Vec::new();
            p.encode(split.dcs, &mut out).unwrap();
            let part_text = p.text(split.dcs).unwrap();
            let replacement = char::REPLACEMENT_CHARACTER;
            prop_assert!(!part_text.contains(replacement) || text.contains(replacement), "a part split a surrogate pair");
            prop_assert!(!ims::sms::alphabet::ends_in_escape(&p.body) || split.dcs != DataCodingScheme::GSM7);
        }
        let joined: String = split.parts.iter().map(|p| p.text(split.dcs).unwrap()).collect();
        prop_assert_eq!(&joined, &text);
        // reassemble in a shuffled order, the first part twice
        let mut idx: Vec<usize> = (0..split.parts.len()).collect();
        let mut seed = order;
        for i in (1..idx.len()).rev() {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            idx.swap(i, (seed >> 33) as usize % (i + 1));
        }
        idx.insert(0, idx[0]);
        #[allow(clippy::disallowed_methods)] // only a base for the instants the test passes in
        let now = std::time::Instant::now();
        let mut r = Reassembler::default();
        let mut got = None;
        for i in idx {
            match r.push(now, "+447700900456", split.dcs, &split.parts[i]) {
                PushResult::Complete(m) => got = m.text,
                PushResult::Pending { .. } | PushResult::Duplicate => {}
                PushResult::Invalid => prop_assert!(false, "invalid part"),
            }
        }
        prop_assert_eq!(got.as_deref(), Some(text.as_str()));
        prop_assert_eq!(r.pending(), 0);
    }

    #[test]
    fn rp_error_answers_round_trip(mr in any::<u8>(), cause in 0u8..128, diag in proptest::collection::vec(any::<u8>(), 0..2)) {
        let m = RpMessage::new(Direction::NetworkToMs, mr, ims::sms::RpBody::Error {
            cause: ims::sms::RpCause(cause),
            cause_extension: false,
            diagnostic: &diag,
            user_data: None,
        });
        let b = m.encode().unwrap();
        prop_assert_eq!(RpMessage::decode(&b, Direction::NetworkToMs).unwrap(), RpMessage::decode(&b, Direction::NetworkToMs).unwrap());
        let d = RpMessage::decode(&b, Direction::NetworkToMs).unwrap();
        prop_assert_eq!(d.encode().unwrap(), b);
    }
}
