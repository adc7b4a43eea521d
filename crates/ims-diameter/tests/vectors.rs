//! The shared Diameter vectors (`tests/vectors/diameter/` at the repository root, copied from
//! /work/shared/vectors/diameter): every valid vector decodes to the header and AVP sequence of
//! `manifest.json` and to the key fields of `INDEX.md`, passes its command's grammar, and
//! re-encodes byte for byte, both generically (AVP tree) and through its typed command; every
//! invalid vector gives the result code (and Failed-AVP) INDEX.md names.

use ims_diameter::answer::{error_answer, validate, Origin};
use ims_diameter::base::*;
use ims_diameter::cx::*;
use ims_diameter::dict::{self, AvpType};
use ims_diameter::rx::*;
use ims_diameter::*;
use serde_json::Value;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/vectors/diameter")
}

fn vector(name: &str) -> Vec<u8> {
    std::fs::read(dir().join(format!("{name}.bin"))).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn manifest() -> Vec<Value> {
    let text = std::fs::read_to_string(dir().join("manifest.json")).expect("manifest.json");
    serde_json::from_str::<Value>(&text)
        .expect("manifest parses")
        .as_array()
        .expect("array")
        .clone()
}

fn hex_u32(v: &Value) -> u32 {
    u32::from_str_radix(v.as_str().unwrap().trim_start_matches("0x"), 16).unwrap()
}

/// AVP codes in pre-order (group before members), descending into every Grouped AVP the
/// dictionary knows, except Failed-AVP whose content is opaque to tshark's walk too only when
/// unknown.
fn preorder(avps: AvpIter<'_>, out: &mut Vec<u32>) {
    for a in avps {
        out.push(a.code());
        if a.def().is_some_and(|d| d.ty == AvpType::Grouped) {
            preorder(a.grouped().expect("group parses"), out);
        }
    }
}

/// Re-encodes an AVP sequence from its views (groups rebuilt member by member).
fn reencode<B: EncodeBuf>(avps: AvpIter<'_>, e: &mut Encoder<'_, B>) {
    for a in avps {
        if a.def().is_some_and(|d| d.ty == AvpType::Grouped) {
            let inner = a.grouped().unwrap();
            e.grouped_raw(a.code(), a.flags(), a.vendor_id(), |g| reencode(inner, g));
        } else {
            e.copy(&a);
        }
    }
}

fn typed_reencode(msg: &Message<'_>) -> Option<Vec<u8>> {
    fn go<'a, C: Command<'a>>(m: &Message<'a>) -> Vec<u8> {
        let c = C::decode(m).unwrap_or_else(|e| panic!("{}: {e}", C::NAME));
        let mut v = Vec::new();
        c.encode_into(m.header(), &mut v);
        v
    }
    let m = msg;
    Some(match (m.code(), m.is_request(), m.application_id()) {
        (_, false, _) if m.flags().is_error() => return None,
        (257, true, _) => go::<Cer<'_>>(m),
        (257, false, _) => go::<Cea<'_>>(m),
        (280, true, _) => go::<Dwr<'_>>(m),
        (280, false, _) => go::<Dwa<'_>>(m),
        (282, true, _) => go::<Dpr<'_>>(m),
        (282, false, _) => go::<Dpa<'_>>(m),
        (300, true, _) => go::<Uar<'_>>(m),
        (300, false, _) => go::<Uaa<'_>>(m),
        (301, true, _) => go::<Sar<'_>>(m),
        (301, false, _) => go::<Saa<'_>>(m),
        (302, true, _) => go::<Lir<'_>>(m),
        (302, false, _) => go::<Lia<'_>>(m),
        (303, true, _) => go::<Mar<'_>>(m),
        (303, false, _) => go::<Maa<'_>>(m),
        (304, true, _) => go::<Rtr<'_>>(m),
        (304, false, _) => go::<Rta<'_>>(m),
        (305, true, _) => go::<Ppr<'_>>(m),
        (305, false, _) => go::<Ppa<'_>>(m),
        (265, true, _) => go::<Aar<'_>>(m),
        (265, false, _) => go::<Aaa<'_>>(m),
        (258, true, _) => go::<Rar<'_>>(m),
        (258, false, _) => go::<Raa<'_>>(m),
        (275, true, _) => go::<Str<'_>>(m),
        (275, false, _) => go::<Sta<'_>>(m),
        (274, true, _) => go::<Asr<'_>>(m),
        (274, false, _) => go::<Asa<'_>>(m),
        _ => return None,
    })
}

#[test]
fn valid_vectors_decode_and_reencode() {
    let mut n = 0;
    for v in manifest().iter().filter(|v| v["valid"] == true) {
        let name = v["name"].as_str().unwrap();
        let bytes = vector(name);
        let msg = Message::parse(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(msg.len(), bytes.len(), "{name}");
        assert_eq!(msg.len() as u64, v["length"].as_u64().unwrap(), "{name}");
        assert_eq!(
            u64::from(msg.code()),
            v["command_code"].as_u64().unwrap(),
            "{name}"
        );
        assert_eq!(
            u64::from(msg.application_id()),
            v["application_id"].as_u64().unwrap(),
            "{name}"
        );
        let f = msg.flags();
        let flags: String = [
            (f.is_request(), 'R'),
            (f.is_proxiable(), 'P'),
            (f.is_error(), 'E'),
            (f.is_retransmit(), 'T'),
        ]
        .iter()
        .filter(|(b, _)| *b)
        .map(|(_, c)| *c)
        .collect();
        assert_eq!(
            if flags.is_empty() {
                "-".to_owned()
            } else {
                flags
            },
            v["flags"].as_str().unwrap(),
            "{name}"
        );
        assert_eq!(msg.hop_by_hop(), hex_u32(&v["hop_by_hop"]), "{name}");
        assert_eq!(msg.end_to_end(), hex_u32(&v["end_to_end"]), "{name}");
        let mut codes = Vec::new();
        preorder(msg.avps(), &mut codes);
        let want: Vec<u32> = v["avp_codes_preorder"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_u64().unwrap() as u32)
            .collect();
        assert_eq!(codes, want, "{name}: AVP pre-order");

        // generic re-encode
        let mut out = Vec::new();
        encode_message(&mut out, msg.header(), |e| reencode(msg.avps(), e));
        assert_eq!(out, bytes, "{name}: generic re-encode");

        // grammar and values
        let checked = validate(&msg);
        if name == "err_sar_unsupported_avp" {
            let e = checked.unwrap_err();
            assert_eq!(e.result_code(), Some(5001), "{name}");
            assert_eq!(e.avp, Some(AvpId::new(1, 32473)));
        } else {
            checked.unwrap_or_else(|e| panic!("{name}: {e}"));
            if let Some(typed) = typed_reencode(&msg) {
                assert_eq!(typed, bytes, "{name}: typed re-encode");
            }
        }
        n += 1;
    }
    // INDEX.md's table: 25 vectors plus the two err_* (the manifest marks 27 valid)
    assert_eq!(n, 27);
}

const REALM: &str = "ims.mnc001.mcc001.3gppnetwork.org";

fn s(x: &str) -> String {
    x.to_owned()
}

#[test]
fn base_key_fields() {
    let b = vector("base_cer");
    let cer = Cer::decode(&Message::parse(&b).unwrap()).unwrap();
    assert_eq!(
        cer.host_ip_address[..],
        [Address::Ipv4(Ipv4Addr::new(10, 0, 1, 30))]
    );
    assert_eq!(cer.vendor_id, 32473);
    assert_eq!(
        cer.vendor_specific_application_id[..],
        [
            VendorSpecificApplicationId::cx(),
            VendorSpecificApplicationId::rx()
        ]
    );
    assert!(cer.firmware_revision.is_some());
    assert_eq!(cer.origin_realm, REALM);
    let m = Message::parse(&b).unwrap();
    assert!(
        !m.find(dict::PRODUCT_NAME).unwrap().is_mandatory(),
        "Product-Name M clear"
    );
    assert!(!m.find(dict::FIRMWARE_REVISION).unwrap().is_mandatory());

    let b = vector("base_cea");
    let cea = Cea::decode(&Message::parse(&b).unwrap()).unwrap();
    assert_eq!(cea.result_code, 2001);
    assert_eq!(cea.host_ip_address.len(), 2);
    assert!(matches!(cea.host_ip_address[0], Address::Ipv4(_)));
    assert!(matches!(cea.host_ip_address[1], Address::Ipv6(_)));

    let b = vector("base_dpr");
    let dpr = Dpr::decode(&Message::parse(&b).unwrap()).unwrap();
    assert_eq!(dpr.disconnect_cause, DisconnectCause::Rebooting);
    assert_eq!(dpr.disconnect_cause.name(), Some("REBOOTING"));
    for n in ["base_dwa", "base_dpa"] {
        let b = vector(n);
        assert_eq!(
            Message::parse(&b).unwrap().outcome(),
            Some(Outcome::SUCCESS),
            "{n}"
        );
    }
    let b = vector("base_dwr");
    let dwr = Dwr::decode(&Message::parse(&b).unwrap()).unwrap();
    assert!(dwr.origin_state_id.is_some());
}

#[test]
fn cx_key_fields() {
    let b2 = vector("cx_uar_retransmit");
    let b = vector("cx_uar");
    let uar = Uar::decode(&Message::parse(&b).unwrap()).unwrap();
    assert_eq!(uar.user_name, format!("alice@{REALM}"));
    assert_eq!(uar.public_identity, format!("sip:alice@{REALM}"));
    assert_eq!(
        uar.user_authorization_type,
        Some(UserAuthorizationType::Registration)
    );
    assert_eq!(
        uar.vendor_specific_application_id,
        VendorSpecificApplicationId::cx()
    );
    assert!(uar.destination_host.is_none());
    let m2 = Message::parse(&b2).unwrap();
    assert!(m2.flags().is_retransmit());
    assert_eq!(m2.end_to_end(), Message::parse(&b).unwrap().end_to_end());
    assert_eq!(Uar::decode(&m2).unwrap(), uar);

    let b = vector("cx_uaa_first_registration");
    let uaa = Uaa::decode(&Message::parse(&b).unwrap()).unwrap();
    assert_eq!(
        uaa.outcome(),
        Some(Outcome::tgpp(ExperimentalResultCode::FirstRegistration))
    );
    assert_eq!(uaa.result_code, None);
    let caps = uaa.server_capabilities.as_ref().unwrap();
    assert_eq!(
        (
            caps.mandatory_capability.len(),
            caps.optional_capability.len()
        ),
        (1, 2)
    );

    let b = vector("cx_mar");
    let mar = Mar::decode(&Message::parse(&b).unwrap()).unwrap();
    assert_eq!(mar.sip_number_auth_items, 1);
    assert_eq!(
        mar.sip_auth_data_item.sip_authentication_scheme.as_deref(),
        Some("Digest-AKAv1-MD5")
    );
    assert!(!mar.server_name.is_empty());

    let b = vector("cx_maa");
    let maa = Maa::decode(&Message::parse(&b).unwrap()).unwrap();
    assert_eq!(maa.outcome(), Some(Outcome::SUCCESS));
    let item = &maa.sip_auth_data_item[0];
    let hex = |x: &[u8]| x.iter().map(|b| format!("{b:02x}")).collect::<String>();
    assert_eq!(
        hex(item.sip_authenticate.as_deref().unwrap()),
        "23553cbe9637a89d218ae64dae47bf3555f328b43577b9b94a9ffac354dfafb3"
    );
    assert_eq!(
        hex(item.sip_authorization.as_deref().unwrap()),
        "a54211d5e3ba50bf"
    );
    assert_eq!(
        hex(item.confidentiality_key.as_deref().unwrap()),
        "b40ba9a3c58b2a05bbf0d987b21bf8cb"
    );
    assert_eq!(
        hex(item.integrity_key.as_deref().unwrap()),
        "f769bcd751044604127672711c6d3441"
    );
    assert!(item.sip_item_number.is_some());

    let b = vector("cx_sar");
    let m = Message::parse(&b).unwrap();
    let sar = Sar::decode(&m).unwrap();
    assert_eq!(
        sar.server_assignment_type,
        ServerAssignmentType::Registration
    );
    assert_eq!(
        sar.user_data_already_available,
        UserDataAlreadyAvailable::UserDataNotAvailable
    );
    assert_eq!(
        (
            sar.supported_features[0].feature_list_id,
            sar.supported_features[0].feature_list
        ),
        (1, 1)
    );
    let sf = m.find(dict::SUPPORTED_FEATURES).unwrap();
    assert!(
        !sf.is_mandatory() && sf.flags().is_vendor(),
        "Supported-Features: V set, M clear"
    );

    let b = vector("cx_saa");
    let saa = Saa::decode(&Message::parse(&b).unwrap()).unwrap();
    let ud = saa.user_data.as_deref().unwrap();
    assert_eq!(ud.len(), 1212);
    assert!(std::str::from_utf8(ud).unwrap().contains("IMSSubscription"));
    let ci = saa.charging_information.as_ref().unwrap();
    let uri =
        DiameterUri::parse(ci.primary_event_charging_function_name.as_deref().unwrap()).unwrap();
    assert!(uri.host.ends_with(REALM) || !uri.host.is_empty());
    assert!(ci.primary_charging_collection_function_name.is_some());

    let b = vector("cx_lir");
    let lir = Lir::decode(&Message::parse(&b).unwrap()).unwrap();
    assert_eq!(lir.proxy_info.len(), 1);
    assert!(!lir.proxy_info[0].proxy_host.is_empty());
    assert_eq!(lir.route_record.len(), 1);

    let b = vector("cx_rtr");
    let rtr = Rtr::decode(&Message::parse(&b).unwrap()).unwrap();
    assert_eq!(rtr.public_identity.len(), 2);
    assert_eq!(
        rtr.deregistration_reason.reason_code,
        ReasonCode::PermanentTermination
    );
    assert!(rtr.deregistration_reason.reason_info.is_some());
    for n in ["cx_rta", "cx_ppa"] {
        let b = vector(n);
        assert_eq!(
            Message::parse(&b).unwrap().outcome(),
            Some(Outcome::SUCCESS),
            "{n}"
        );
    }
    let _ = s("");
}

#[test]
fn rx_key_fields() {
    let b = vector("rx_aar");
    let aar = Aar::decode(&Message::parse(&b).unwrap()).unwrap();
    assert_eq!(aar.auth_application_id, dict::app::RX);
    let mcd = &aar.media_component_description[0];
    assert_eq!(mcd.media_type, Some(MediaType::Audio));
    assert_eq!(
        (
            mcd.max_requested_bandwidth_ul,
            mcd.max_requested_bandwidth_dl
        ),
        (Some(41000), Some(41000))
    );
    assert_eq!(mcd.flow_status, Some(FlowStatus::Enabled));
    assert!(mcd.rr_bandwidth.is_some() && mcd.rs_bandwidth.is_some());
    assert_eq!(mcd.codec_data.len(), 2);
    assert_eq!(mcd.media_sub_component.len(), 2);
    let rtp = &mcd.media_sub_component[0];
    assert_eq!(rtp.flow_number, 1);
    assert_eq!(rtp.flow_description.len(), 2);
    let out = IpFilterRule::parse(&rtp.flow_description[0]).unwrap();
    assert_eq!(out.direction, FilterDirection::Out);
    assert_eq!(out.to_string(), rtp.flow_description[0]);
    let inn = IpFilterRule::parse(&rtp.flow_description[1]).unwrap();
    assert_eq!(inn.direction, FilterDirection::In);
    assert_eq!(mcd.media_sub_component[1].flow_usage, Some(FlowUsage::Rtcp));
    assert_eq!(aar.specific_action.len(), 7);
    assert!(aar
        .specific_action
        .iter()
        .all(|a| !matches!(a, SpecificAction::Unknown(_))));
    assert_eq!(aar.subscription_id.len(), 1);
    assert_eq!(aar.framed_ip_address.as_deref(), Some(&[10, 0, 0, 2][..]));
    assert!(aar.af_charging_identifier.is_some());

    let b = vector("rx_aaa");
    let aaa = Aaa::decode(&Message::parse(&b).unwrap()).unwrap();
    assert_eq!(aaa.outcome(), Some(Outcome::SUCCESS));
    assert_eq!(aaa.ip_can_type, Some(IpCanType::TgppEps));
    assert_eq!(aaa.rat_type, Some(RatType::Eutran));
    assert_eq!(aaa.access_network_charging_identifier[0].flows.len(), 1);
    assert!(matches!(
        aaa.access_network_charging_address,
        Some(Address::Ipv4(_) | Address::Ipv6(_))
    ));
    let m = Message::parse(&b).unwrap();
    assert!(
        !m.find(dict::RAT_TYPE).unwrap().is_mandatory(),
        "RAT-Type M clear"
    );

    let b = vector("rx_str");
    let st = Str::decode(&Message::parse(&b).unwrap()).unwrap();
    assert_eq!(st.termination_cause, TerminationCause::DiameterLogout);
    assert!(st.destination_host.is_some());
    let b = vector("rx_asr");
    let asr = Asr::decode(&Message::parse(&b).unwrap()).unwrap();
    assert_eq!(asr.abort_cause, AbortCause::BearerReleased);
    for n in ["rx_sta", "rx_asa", "rx_raa"] {
        let b = vector(n);
        assert_eq!(
            Message::parse(&b).unwrap().outcome(),
            Some(Outcome::SUCCESS),
            "{n}"
        );
    }
    let _ = IpAddr::V4(Ipv4Addr::LOCALHOST);
}

#[test]
fn error_vectors() {
    let b = vector("err_saa_avp_unsupported_ebit");
    let m = Message::parse(&b).unwrap();
    let am = AnswerMessage::decode(&m).unwrap();
    assert_eq!(am.result_code, 5001);
    let fa = am.failed_avp.unwrap();
    assert_eq!((fa.other[0].code, fa.other[0].vendor), (1, 32473));

    // a Cx server answers the SAR with the unknown M-bit AVP with 5001 and the AVP in Failed-AVP
    let b = vector("err_sar_unsupported_avp");
    let err = Sar::decode(&Message::parse(&b).unwrap()).unwrap_err();
    assert_eq!(err.kind, ErrorKind::AvpUnsupported);
    let origin = Origin {
        host: "hss.ims.mnc001.mcc001.3gppnetwork.org",
        realm: REALM,
        state_id: None,
    };
    let ans = error_answer(&b, &err, &origin).unwrap();
    let a = Message::parse(&ans).unwrap();
    assert!(
        !a.flags().is_error(),
        "5001 is not a protocol error: no E bit"
    );
    // the answer satisfies the SAA grammar (VSAI and Auth-Session-State copied)
    let saa = Saa::decode(&a).unwrap();
    assert_eq!(saa.outcome(), Some(Outcome::from_result_code(5001)));
    let f = &saa.failed_avp[0].other[0];
    assert_eq!((f.code, f.vendor, f.flags.is_mandatory()), (1, 32473, true));
    let req = Message::parse(&b).unwrap();
    assert_eq!(saa.session_id, req.session_id().unwrap());
    assert_eq!(
        (a.hop_by_hop(), a.end_to_end()),
        (req.hop_by_hop(), req.end_to_end())
    );
}

fn failed(ans: &[u8]) -> Option<RawAvp<'static>> {
    let a = Message::parse(ans).unwrap();
    let f = a.find(dict::FAILED_AVP)?;
    Some(f.grouped().unwrap().next().unwrap().to_raw().into_owned())
}

#[test]
fn invalid_vectors() {
    let origin = Origin {
        host: "dra.ims.mnc001.mcc001.3gppnetwork.org",
        realm: REALM,
        state_id: Some(7),
    };
    for v in manifest().iter().filter(|v| v["valid"] == false) {
        let name = v["name"].as_str().unwrap();
        let b = vector(name);
        let expected = v["expected_result_code"].as_u64().map(|c| c as u32);
        let err = match Message::parse(&b) {
            Ok(m) => validate(&m).expect_err(name),
            Err(e) => e,
        };
        match expected {
            None => {
                assert!(err.is_incomplete(), "{name}: {err}");
                assert!(error_answer(&b, &err, &origin).is_none(), "{name}");
                // the framer waits too
                let mut f = Framer::new();
                f.push(&b);
                assert_eq!(f.next_frame().unwrap(), None, "{name}");
                assert!(f.needed() > 0);
            }
            Some(rc) => {
                assert_eq!(err.result_code(), Some(rc), "{name}: {err}");
                let ans = error_answer(&b, &err, &origin).expect(name);
                let a = Message::parse(&ans).unwrap_or_else(|e| panic!("{name} answer: {e}"));
                assert!(!a.is_request());
                assert_eq!(
                    a.flags().is_error(),
                    (3000..4000).contains(&rc),
                    "{name}: E bit"
                );
                assert_eq!(a.outcome(), Some(Outcome::from_result_code(rc)), "{name}");
                assert_eq!(a.origin_host(), Some(origin.host));
                validate(&a).unwrap_or_else(|e| panic!("{name} answer does not validate: {e}"));
                let f = failed(&ans);
                match name {
                    "inv_avp_length_lt8" => {
                        let f = f.expect("Failed-AVP");
                        assert_eq!(
                            (f.code, &f.data[..]),
                            (283, &[0u8][..]),
                            "header + minimal payload"
                        );
                    }
                    "inv_avp_length_overrun" => {
                        let f = f.expect("Failed-AVP");
                        assert_eq!(f.code, 1);
                        assert!(f.data.iter().all(|b| *b == 0));
                    }
                    "inv_avp_reserved_bits" => {
                        let f = f.expect("Failed-AVP");
                        assert_eq!(f.code, 278);
                        assert_eq!(f.data.len(), 4);
                    }
                    "inv_header_only_no_avps" => {
                        let f = f.expect("Failed-AVP");
                        assert_eq!(
                            (f.code, &f.data[..]),
                            (264, &[0u8][..]),
                            "example Origin-Host"
                        );
                    }
                    _ => assert!(f.is_none(), "{name}: no Failed-AVP for a header fault"),
                }
            }
        }
    }
    // the framer refuses the unframeable ones (Message Length < 20)
    for name in ["inv_length_zero", "inv_length_below_header"] {
        let mut f = Framer::new();
        f.push(&vector(name));
        assert_eq!(
            f.next_frame().unwrap_err().kind,
            ErrorKind::InvalidMessageLength,
            "{name}"
        );
    }
    // inv_length_exceeds_buffer: needs exactly 64 more octets
    let b = vector("inv_length_exceeds_buffer");
    assert_eq!(
        Message::parse(&b).unwrap_err().kind,
        ErrorKind::Truncated { needed: 64 }
    );
    let b = vector("inv_header_only_truncated");
    assert_eq!(
        Message::parse(&b).unwrap_err().kind,
        ErrorKind::Truncated { needed: 136 }
    );
    assert_eq!(
        Message::parse(&[]).unwrap_err().kind,
        ErrorKind::Truncated { needed: 20 }
    );
}
