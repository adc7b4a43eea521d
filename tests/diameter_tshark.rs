//! Interop with Wireshark's Diameter dissector: every typed command of ims-diameter (base CER/CEA,
//! DWR/DWA, DPR/DPA; Cx UAR/UAA, SAR/SAA, LIR/LIA, MAR/MAA, RTR/RTA, PPR/PPA; Rx AAR/AAA,
//! RAR/RAA, STR/STA, ASR/ASA; SGd OFR/OFA, TFR/TFA in a capture of their own, with the SGd
//! values: SC-Address, SM-RP-UI, TFR-Flags, SM-Delivery-Timer, Absent-User-Diagnostic-SM and
//! SM-Delivery-Failure-Cause's members; S6c SRR/SRA, ALR/ALA, RDR/RDA in a third, with SC-Address,
//! SMS-GMSC-Alert-Event, Serving-Node's IP-SM-GW and MME members, SM-RP-MTI, SRR-Flags,
//! MWD-Status, the absent-user diagnostics, SM-Delivery-Outcome's members and RDR-Flags)
//! filled with realistic IMS values, plus the protocol-error and
//! permanent-failure answers of `answer::error_answer`, is encoded and written into a libpcap file
//! as TCP segments of one connection 127.0.0.1:40001 <-> 127.0.0.1:3868 (handshake, then one
//! message per segment with exact sequence numbers). tshark must decode every one with no
//! malformed packet and no expert info of Warning or Error severity, and read the values we set:
//! command code, flags, Application-Id, Hop-by-Hop and End-to-End identifiers, the AVP code
//! sequence in pre-order (nested AVPs included), and the values of Session-Id, Origin-Host,
//! Result-Code, Experimental-Result-Code, User-Name, Public-Identity, Server-Name,
//! Flow-Description, Media-Component-Number and Max-Requested-Bandwidth-UL.
//!
//! A second test breaks messages on purpose and asserts that the comparison flags them.
//!
//! Skips when `tshark` is not on PATH unless `IMS_REQUIRE_INTEROP=1`. `IMS_KEEP_PCAP=1` keeps the
//! capture.

mod common;

mod tcp_pcap;

#[path = "interop_common/diameter_fields.rs"]
mod diameter_fields;

use diameter_fields::{expected, FIELDS};
use ims::diameter::answer::{error_answer, Origin};
use ims::diameter::base::*;
use ims::diameter::cx::*;
use ims::diameter::dict;
use ims::diameter::rx::*;
use ims::diameter::{
    Address, Command, Error, ErrorKind, ExperimentalResultCode, Header, Message, Outcome, Time,
};
use std::borrow::Cow;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::Path;
use std::process::Command as Cmd;
use tcp_pcap::TcpPcap;

const CLIENT: u16 = 40001;
const SERVER: u16 = 3868;

// ---------------------------------------------------------------------------------------------
// The messages: realistic IMS values
// ---------------------------------------------------------------------------------------------

const REALM: &str = "ims.mnc001.mcc001.3gppnetwork.org";
const PCRF_REALM: &str = "epc.mnc001.mcc001.3gppnetwork.org";

fn host(h: &str) -> Cow<'static, str> {
    format!("{h}.{REALM}").into()
}
fn realm() -> Cow<'static, str> {
    REALM.into()
}
fn sid(h: &str, n: u32) -> Cow<'static, str> {
    format!("{h}.{REALM};1700000000;{n}").into()
}
fn impi() -> Cow<'static, str> {
    format!("alice@{REALM}").into()
}
fn impu() -> Cow<'static, str> {
    format!("sip:alice@{REALM}").into()
}

const USER_DATA: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\
<IMSSubscription><PrivateID>alice@ims.mnc001.mcc001.3gppnetwork.org</PrivateID>\
<ServiceProfile><PublicIdentity><Identity>sip:alice@ims.mnc001.mcc001.3gppnetwork.org</Identity>\
</PublicIdentity><PublicIdentity><Identity>tel:+15550100001</Identity></PublicIdentity>\
<InitialFilterCriteria><Priority>0</Priority><TriggerPoint><ConditionTypeCNF>0</ConditionTypeCNF>\
<SPT><ConditionNegated>0</ConditionNegated><Group>0</Group><Method>MESSAGE</Method></SPT>\
</TriggerPoint><ApplicationServer><ServerName>sip:ipsmgw.ims.mnc001.mcc001.3gppnetwork.org</ServerName>\
<DefaultHandling>0</DefaultHandling></ApplicationServer></InitialFilterCriteria></ServiceProfile>\
</IMSSubscription>";

struct Case {
    label: &'static str,
    /// 0 client (requests from the CSCF/P-CSCF), 1 server
    from: usize,
    bytes: Vec<u8>,
}

fn vsai() -> VendorSpecificApplicationId<'static> {
    VendorSpecificApplicationId::cx()
}

fn media(
    n: u32,
    video: bool,
    ue_port: u16,
    remote_port: u16,
) -> MediaComponentDescription<'static> {
    let flow = |num: u32, ue: u16, rem: u16, usage: Option<FlowUsage>| MediaSubComponent {
        flow_number: num,
        flow_description: ims::diameter::repeated![
            format!("permit out 17 from 192.0.2.10 {rem} to 10.0.0.2 {ue}").into(),
            format!("permit in 17 from 10.0.0.2 {ue} to 192.0.2.10 {rem}").into(),
        ],
        flow_usage: usage,
        ..Default::default()
    };
    let (bw, codec) = if video {
        (384_000, "uplink\noffer\nm=video 50010 RTP/AVP 102\na=rtpmap:102 H264/90000\na=fmtp:102 profile-level-id=42e01f")
    } else {
        (41_000, "uplink\noffer\nm=audio 50000 RTP/AVP 116 111\na=rtpmap:116 AMR-WB/16000/1\na=rtpmap:111 telephone-event/16000")
    };
    MediaComponentDescription {
        media_component_number: n,
        media_sub_component: ims::diameter::repeated![
            flow(1, ue_port, remote_port, None),
            flow(2, ue_port + 1, remote_port + 1, Some(FlowUsage::Rtcp)),
        ],
        af_application_identifier: Some(Cow::Borrowed(b"urn:urn-7:3gpp-service.ims.icsi.mmtel")),
        media_type: Some(if video {
            MediaType::Video
        } else {
            MediaType::Audio
        }),
        max_requested_bandwidth_ul: Some(bw),
        max_requested_bandwidth_dl: Some(bw),
        flow_status: Some(FlowStatus::Enabled),
        rr_bandwidth: Some(2000),
        rs_bandwidth: Some(600),
        codec_data: ims::diameter::repeated![
            Cow::Owned(codec.as_bytes().to_vec()),
            Cow::Owned(
                codec
                    .replace("uplink\noffer", "downlink\nanswer")
                    .into_bytes(),
            ),
        ],
        ..Default::default()
    }
}

fn cases() -> Vec<Case> {
    let mut out = Vec::new();
    let mut hbh = 0x100u32;
    let mut push = |label: &'static str, from: usize, bytes: Vec<u8>| {
        out.push(Case { label, from, bytes });
    };
    let ids = |h: &mut u32| {
        *h += 1;
        (*h, 0x6d30_0000 | *h)
    };

    // --- base
    let (a, b) = ids(&mut hbh);
    let cer = Cer {
        origin_host: host("scscf"),
        origin_realm: realm(),
        host_ip_address: ims::diameter::repeated![
            Address::Ipv4(Ipv4Addr::new(10, 0, 1, 30)),
            Address::Ipv6("2001:db8::30".parse::<Ipv6Addr>().unwrap()),
        ],
        vendor_id: 32473,
        product_name: "ims-rs".into(),
        origin_state_id: Some(1_700_000_000),
        supported_vendor_id: ims::diameter::repeated![10415],
        auth_application_id: ims::diameter::repeated![dict::app::CX],
        inband_security_id: ims::diameter::repeated![0],
        vendor_specific_application_id: ims::diameter::repeated![
            VendorSpecificApplicationId::cx(),
            VendorSpecificApplicationId::rx(),
        ],
        firmware_revision: Some(1),
        ..Default::default()
    };
    let cer_b = cer.encode(a, b);
    push("CER", 0, cer_b.clone());
    let cea = Cea {
        result_code: 2001,
        origin_host: host("hss"),
        origin_realm: realm(),
        host_ip_address: ims::diameter::repeated![Address::Ipv4(Ipv4Addr::new(10, 0, 1, 40))],
        vendor_id: 32473,
        product_name: "ims-rs".into(),
        origin_state_id: Some(1_700_000_001),
        supported_vendor_id: ims::diameter::repeated![10415],
        vendor_specific_application_id: ims::diameter::repeated![VendorSpecificApplicationId::cx()],
        ..Default::default()
    };
    push(
        "CEA",
        1,
        cea.encode_answer(Message::parse(&cer_b).unwrap().header()),
    );
    let (a, b) = ids(&mut hbh);
    let dwr = Dwr {
        origin_host: host("scscf"),
        origin_realm: realm(),
        origin_state_id: Some(1_700_000_000),
        ..Default::default()
    };
    let dwr_b = dwr.encode(a, b);
    push("DWR", 0, dwr_b.clone());
    let dwa = Dwa {
        result_code: 2001,
        origin_host: host("hss"),
        origin_realm: realm(),
        origin_state_id: Some(1_700_000_001),
        ..Default::default()
    };
    push(
        "DWA",
        1,
        dwa.encode_answer(Message::parse(&dwr_b).unwrap().header()),
    );

    let (a, b) = ids(&mut hbh);
    let dpr = Dpr {
        origin_host: host("scscf"),
        origin_realm: realm(),
        disconnect_cause: DisconnectCause::Rebooting,
        ..Default::default()
    };
    let dpr_b = dpr.encode(a, b);
    push("DPR", 0, dpr_b.clone());
    let dpa = Dpa {
        result_code: 2001,
        origin_host: host("hss"),
        origin_realm: realm(),
        ..Default::default()
    };
    push(
        "DPA",
        1,
        dpa.encode_answer(Message::parse(&dpr_b).unwrap().header()),
    );

    // --- Cx
    let (a, b) = ids(&mut hbh);
    let uar = Uar {
        session_id: sid("icscf", 1),
        vendor_specific_application_id: vsai(),
        auth_session_state: AuthSessionState::NoStateMaintained,
        origin_host: host("icscf"),
        origin_realm: realm(),
        destination_realm: realm(),
        user_name: impi(),
        public_identity: impu(),
        visited_network_identifier: Cow::Borrowed(REALM.as_bytes()),
        user_authorization_type: Some(UserAuthorizationType::Registration),
        ..Default::default()
    };
    let uar_b = uar.encode(a, b);
    push("UAR", 0, uar_b.clone());
    let mut uaa = Uaa {
        session_id: uar.session_id.clone(),
        vendor_specific_application_id: vsai(),
        auth_session_state: AuthSessionState::NoStateMaintained,
        origin_host: host("hss"),
        origin_realm: realm(),
        server_capabilities: Some(ServerCapabilities {
            mandatory_capability: ims::diameter::repeated![1],
            optional_capability: ims::diameter::repeated![2, 3],
            ..Default::default()
        }),
        ..Default::default()
    };
    uaa.set_outcome(Outcome::tgpp(ExperimentalResultCode::FirstRegistration));
    push(
        "UAA",
        1,
        uaa.encode_answer(Message::parse(&uar_b).unwrap().header()),
    );

    let (a, b) = ids(&mut hbh);
    let mar = Mar {
        session_id: sid("scscf", 2),
        vendor_specific_application_id: vsai(),
        auth_session_state: AuthSessionState::NoStateMaintained,
        origin_host: host("scscf"),
        origin_realm: realm(),
        destination_host: Some(host("hss")),
        destination_realm: realm(),
        user_name: impi(),
        public_identity: impu(),
        sip_number_auth_items: 1,
        sip_auth_data_item: SipAuthDataItem {
            sip_authentication_scheme: Some("Digest-AKAv1-MD5".into()),
            ..Default::default()
        },
        server_name: format!("sip:scscf.{REALM}:6060").into(),
        ..Default::default()
    };
    let mar_b = mar.encode(a, b);
    push("MAR", 0, mar_b.clone());
    let unhex = |s: &str| -> Cow<'static, [u8]> {
        Cow::Owned(
            (0..s.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
                .collect(),
        )
    };
    let mut maa = Maa {
        session_id: mar.session_id.clone(),
        vendor_specific_application_id: vsai(),
        auth_session_state: AuthSessionState::NoStateMaintained,
        origin_host: host("hss"),
        origin_realm: realm(),
        user_name: Some(impi()),
        public_identity: Some(impu()),
        sip_number_auth_items: Some(1),
        sip_auth_data_item: vec![SipAuthDataItem {
            sip_item_number: Some(1),
            sip_authentication_scheme: Some("Digest-AKAv1-MD5".into()),
            sip_authenticate: Some(unhex(
                "23553cbe9637a89d218ae64dae47bf3555f328b43577b9b94a9ffac354dfafb3",
            )),
            sip_authorization: Some(unhex("a54211d5e3ba50bf")),
            confidentiality_key: Some(unhex("b40ba9a3c58b2a05bbf0d987b21bf8cb")),
            integrity_key: Some(unhex("f769bcd751044604127672711c6d3441")),
            ..Default::default()
        }],
        ..Default::default()
    };
    maa.set_outcome(Outcome::SUCCESS);
    push(
        "MAA",
        1,
        maa.encode_answer(Message::parse(&mar_b).unwrap().header()),
    );

    let (a, b) = ids(&mut hbh);
    let sar = Sar {
        session_id: sid("scscf", 3),
        vendor_specific_application_id: vsai(),
        auth_session_state: AuthSessionState::NoStateMaintained,
        origin_host: host("scscf"),
        origin_realm: realm(),
        destination_host: Some(host("hss")),
        destination_realm: realm(),
        user_name: Some(impi()),
        supported_features: ims::diameter::repeated![SupportedFeatures {
            vendor_id: 10415,
            feature_list_id: 1,
            feature_list: 1,
            ..Default::default()
        }],
        public_identity: ims::diameter::repeated![impu()],
        server_name: format!("sip:scscf.{REALM}:6060").into(),
        server_assignment_type: ServerAssignmentType::Registration,
        user_data_already_available: UserDataAlreadyAvailable::UserDataNotAvailable,
        ..Default::default()
    };
    let sar_b = sar.encode(a, b);
    push("SAR", 0, sar_b.clone());
    let mut saa = Saa {
        session_id: sar.session_id.clone(),
        vendor_specific_application_id: vsai(),
        auth_session_state: AuthSessionState::NoStateMaintained,
        origin_host: host("hss"),
        origin_realm: realm(),
        user_name: Some(impi()),
        user_data: Some(Cow::Borrowed(USER_DATA.as_bytes())),
        charging_information: Some(ChargingInformation {
            primary_event_charging_function_name: Some(
                format!("aaa://ecf.{REALM}:3868;transport=tcp").into(),
            ),
            primary_charging_collection_function_name: Some(format!("aaa://ccf.{REALM}").into()),
            ..Default::default()
        }),
        associated_identities: Some(AssociatedIdentities {
            user_name: ims::diameter::repeated![impi()],
            ..Default::default()
        }),
        ..Default::default()
    };
    saa.set_outcome(Outcome::SUCCESS);
    push(
        "SAA",
        1,
        saa.encode_answer(Message::parse(&sar_b).unwrap().header()),
    );

    let (a, b) = ids(&mut hbh);
    let lir = Lir {
        session_id: sid("icscf", 4),
        vendor_specific_application_id: vsai(),
        auth_session_state: AuthSessionState::NoStateMaintained,
        origin_host: host("icscf"),
        origin_realm: realm(),
        destination_realm: realm(),
        public_identity: "tel:+15550100001".into(),
        originating_request: None,
        ..Default::default()
    };
    let lir_b = lir.encode(a, b);
    push("LIR", 0, lir_b.clone());
    let mut lia = Lia {
        session_id: lir.session_id.clone(),
        vendor_specific_application_id: vsai(),
        auth_session_state: AuthSessionState::NoStateMaintained,
        origin_host: host("hss"),
        origin_realm: realm(),
        server_name: Some(format!("sip:scscf.{REALM}:6060").into()),
        ..Default::default()
    };
    lia.set_outcome(Outcome::SUCCESS);
    push(
        "LIA",
        1,
        lia.encode_answer(Message::parse(&lir_b).unwrap().header()),
    );

    // HSS-initiated: RTR, PPR (from the server side of the connection)
    let (a, b) = ids(&mut hbh);
    let rtr = Rtr {
        session_id: sid("hss", 5),
        vendor_specific_application_id: vsai(),
        auth_session_state: AuthSessionState::NoStateMaintained,
        origin_host: host("hss"),
        origin_realm: realm(),
        destination_host: host("scscf"),
        destination_realm: realm(),
        user_name: impi(),
        public_identity: ims::diameter::repeated![impu(), "tel:+15550100001".into()],
        deregistration_reason: DeregistrationReason {
            reason_code: ReasonCode::PermanentTermination,
            reason_info: Some("subscription cancelled".into()),
            ..Default::default()
        },
        ..Default::default()
    };
    let rtr_b = rtr.encode(a, b);
    push("RTR", 1, rtr_b.clone());
    let mut rta = Rta {
        session_id: rtr.session_id.clone(),
        vendor_specific_application_id: vsai(),
        auth_session_state: AuthSessionState::NoStateMaintained,
        origin_host: host("scscf"),
        origin_realm: realm(),
        ..Default::default()
    };
    rta.set_outcome(Outcome::SUCCESS);
    push(
        "RTA",
        0,
        rta.encode_answer(Message::parse(&rtr_b).unwrap().header()),
    );
    let (a, b) = ids(&mut hbh);
    let ppr = Ppr {
        session_id: sid("hss", 6),
        vendor_specific_application_id: vsai(),
        auth_session_state: AuthSessionState::NoStateMaintained,
        origin_host: host("hss"),
        origin_realm: realm(),
        destination_host: host("scscf"),
        destination_realm: realm(),
        user_name: impi(),
        user_data: Some(Cow::Borrowed(USER_DATA.as_bytes())),
        ..Default::default()
    };
    let ppr_b = ppr.encode(a, b);
    push("PPR", 1, ppr_b.clone());
    let mut ppa = Ppa {
        session_id: ppr.session_id.clone(),
        vendor_specific_application_id: vsai(),
        auth_session_state: AuthSessionState::NoStateMaintained,
        origin_host: host("scscf"),
        origin_realm: realm(),
        ..Default::default()
    };
    ppa.set_outcome(Outcome::SUCCESS);
    push(
        "PPA",
        0,
        ppa.encode_answer(Message::parse(&ppr_b).unwrap().header()),
    );

    // --- Rx
    let pcrf = || -> Cow<'static, str> { format!("pcrf.{PCRF_REALM}").into() };
    let (a, b) = ids(&mut hbh);
    let aar = Aar {
        session_id: sid("pcscf", 7),
        auth_application_id: dict::app::RX,
        origin_host: host("pcscf"),
        origin_realm: realm(),
        destination_realm: PCRF_REALM.into(),
        af_application_identifier: Some(Cow::Borrowed(b"urn:urn-7:3gpp-service.ims.icsi.mmtel")),
        media_component_description: ims::diameter::repeated![
            media(1, false, 50000, 40000),
            media(2, true, 50010, 40010),
        ],
        af_charging_identifier: Some(Cow::Borrowed(b"pcscf-icid-0001")),
        specific_action: ims::diameter::repeated![
            SpecificAction::ChargingCorrelationExchange,
            SpecificAction::IndicationOfLossOfBearer,
            SpecificAction::IndicationOfReleaseOfBearer,
            SpecificAction::IndicationOfSuccessfulResourcesAllocation,
        ],
        subscription_id: ims::diameter::repeated![SubscriptionId {
            subscription_id_type: SubscriptionIdType::EndUserSipUri,
            subscription_id_data: impu(),
            ..Default::default()
        }],
        framed_ip_address: Some(Cow::Borrowed(&[10, 0, 0, 2])),
        rx_request_type: Some(RxRequestType::InitialRequest),
        ..Default::default()
    };
    let aar_b = aar.encode(a, b);
    push("AAR", 0, aar_b.clone());
    let mut aaa = Aaa {
        session_id: aar.session_id.clone(),
        auth_application_id: dict::app::RX,
        origin_host: pcrf(),
        origin_realm: PCRF_REALM.into(),
        access_network_charging_identifier: ims::diameter::repeated![
            AccessNetworkChargingIdentifier {
                access_network_charging_identifier_value: Cow::Borrowed(&[0, 0, 0, 0x2a]),
                flows: ims::diameter::repeated![
                    Flows {
                        media_component_number: 1,
                        ..Default::default()
                    },
                    Flows {
                        media_component_number: 2,
                        flow_number: ims::diameter::repeated![1, 2],
                        ..Default::default()
                    },
                ],
                ..Default::default()
            }
        ],
        access_network_charging_address: Some(Address::Ipv4(Ipv4Addr::new(10, 0, 2, 1))),
        ip_can_type: Some(IpCanType::TgppEps),
        rat_type: Some(RatType::Eutran),
        ..Default::default()
    };
    aaa.set_outcome(Outcome::SUCCESS);
    push(
        "AAA",
        1,
        aaa.encode_answer(Message::parse(&aar_b).unwrap().header()),
    );
    let (a, b) = ids(&mut hbh);
    let rar = Rar {
        session_id: aar.session_id.clone(),
        origin_host: pcrf(),
        origin_realm: PCRF_REALM.into(),
        destination_realm: realm(),
        destination_host: host("pcscf"),
        auth_application_id: dict::app::RX,
        specific_action: ims::diameter::repeated![SpecificAction::IndicationOfLossOfBearer],
        flows: ims::diameter::repeated![Flows {
            media_component_number: 2,
            ..Default::default()
        }],
        user_location_info_time: Time::from_unix(1_700_000_100),
        ..Default::default()
    };
    let rar_b = rar.encode(a, b);
    push("RAR", 1, rar_b.clone());
    let mut raa = Raa {
        session_id: aar.session_id.clone(),
        origin_host: host("pcscf"),
        origin_realm: realm(),
        ..Default::default()
    };
    raa.set_outcome(Outcome::SUCCESS);
    push(
        "RAA",
        0,
        raa.encode_answer(Message::parse(&rar_b).unwrap().header()),
    );
    let (a, b) = ids(&mut hbh);
    let asr = Asr {
        session_id: aar.session_id.clone(),
        origin_host: pcrf(),
        origin_realm: PCRF_REALM.into(),
        destination_realm: realm(),
        destination_host: host("pcscf"),
        auth_application_id: dict::app::RX,
        abort_cause: AbortCause::BearerReleased,
        ..Default::default()
    };
    let asr_b = asr.encode(a, b);
    push("ASR", 1, asr_b.clone());
    let asa = Asa {
        session_id: aar.session_id.clone(),
        origin_host: host("pcscf"),
        origin_realm: realm(),
        result_code: Some(2001),
        ..Default::default()
    };
    push(
        "ASA",
        0,
        asa.encode_answer(Message::parse(&asr_b).unwrap().header()),
    );
    let (a, b) = ids(&mut hbh);
    let str_ = Str {
        session_id: aar.session_id.clone(),
        origin_host: host("pcscf"),
        origin_realm: realm(),
        destination_realm: PCRF_REALM.into(),
        auth_application_id: dict::app::RX,
        termination_cause: TerminationCause::DiameterLogout,
        destination_host: Some(pcrf()),
        ..Default::default()
    };
    let str_b = str_.encode(a, b);
    push("STR", 0, str_b.clone());
    let sta = Sta {
        session_id: aar.session_id.clone(),
        origin_host: pcrf(),
        origin_realm: PCRF_REALM.into(),
        result_code: Some(2001),
        ..Default::default()
    };
    push(
        "STA",
        1,
        sta.encode_answer(Message::parse(&str_b).unwrap().header()),
    );

    // --- error answers
    let hss = Origin {
        host: "hss.ims.mnc001.mcc001.3gppnetwork.org",
        realm: REALM,
        state_id: Some(1_700_000_001),
    };
    let (a, b) = ids(&mut hbh);
    let mut bad = uar.encode(a, b);
    bad[4] |= 0x01; // reserved command flag
    let e = Message::parse(&bad).unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidHeaderBits);
    push(
        "3008 answer (E bit)",
        1,
        error_answer(&bad, &e, &hss).unwrap(),
    );
    let (a, b) = ids(&mut hbh);
    let mut incomplete = sar.clone();
    incomplete.session_id = sid("scscf", 9);
    let sar2 = incomplete.encode(a, b);
    let e = Error {
        kind: ErrorKind::MissingAvp,
        offset: sar2.len(),
        avp: Some(dict::SERVER_NAME.id()),
    };
    push(
        "5005 SAA with Failed-AVP",
        1,
        error_answer(&sar2, &e, &hss).unwrap(),
    );
    let _ = Header::default();
    out
}

// ---------------------------------------------------------------------------------------------
// What tshark reads, and what we expect it to read
// ---------------------------------------------------------------------------------------------

struct Dissected {
    rows: Vec<Vec<String>>,
    problems: Vec<String>,
}

fn dissect(tshark: &Path, dir: &Path, name: &str, cases: &[Case]) -> Dissected {
    dissect_fields(tshark, dir, name, cases, FIELDS)
}

/// [`dissect`] asking tshark for `fields`.
fn dissect_fields(
    tshark: &Path,
    dir: &Path,
    name: &str,
    cases: &[Case],
    fields: &[&str],
) -> Dissected {
    let mut t = TcpPcap::new(CLIENT, SERVER);
    for c in cases {
        t.segment(c.from, 0x18, &c.bytes);
    }
    let pcap = dir.join(format!("{name}.pcap"));
    std::fs::write(&pcap, &t.buf).unwrap();
    let mut cmd = Cmd::new(tshark);
    cmd.arg("-r").arg(&pcap).args([
        "-Y",
        "diameter",
        "-T",
        "fields",
        "-E",
        "separator=\t",
        "-E",
        "occurrence=a",
        "-E",
        "aggregator=|",
    ]);
    for f in fields {
        cmd.args(["-e", f]);
    }
    cmd.args([
        "-e",
        "_ws.expert.severity",
        "-e",
        "_ws.expert.message",
        "-e",
        "_ws.malformed",
    ]);
    let out = cmd.output().expect("run tshark");
    assert!(
        out.status.success(),
        "tshark failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let mut rows = Vec::new();
    let mut problems = Vec::new();
    let n = fields.len();
    for (i, line) in text.lines().enumerate() {
        let c: Vec<String> = line.split('\t').map(str::to_owned).collect();
        let g = |k: usize| c.get(k).cloned().unwrap_or_default();
        // severities: 2097152 note, 4194304 warn, 8388608 error (epan/proto.h PI_*)
        let sev = g(n);
        let msgs = g(n + 1);
        for (s, m) in sev.split('|').zip(msgs.split('|')) {
            if let Ok(v) = s.parse::<u64>() {
                if v >= 0x0040_0000 {
                    problems.push(format!(
                        "packet {i} ({}): expert info: {m}",
                        cases.get(i).map_or("?", |c| c.label)
                    ));
                }
            }
        }
        if !g(n + 2).is_empty() {
            problems.push(format!("packet {i}: malformed"));
        }
        rows.push(c[..n.min(c.len())].to_vec());
    }
    Dissected { rows, problems }
}

/// Compares tshark's rows with `want` (what we meant to send, from [`expected`]).
fn compare(cases: &[Case], want: &[Vec<String>], d: &Dissected) -> Vec<String> {
    compare_fields(cases, want, d, FIELDS)
}

/// [`compare`] of the values of `fields`.
fn compare_fields(
    cases: &[Case],
    want: &[Vec<String>],
    d: &Dissected,
    fields: &[&str],
) -> Vec<String> {
    let mut bad = d.problems.clone();
    if d.rows.len() != cases.len() {
        bad.push(format!(
            "tshark saw {} Diameter packets, we wrote {}",
            d.rows.len(),
            cases.len()
        ));
    }
    for ((c, mine), theirs) in cases.iter().zip(want).zip(&d.rows) {
        for (k, (m, t)) in mine.iter().zip(theirs).enumerate() {
            if m != t {
                bad.push(format!(
                    "{}: {}: ours {m:?}\n    tshark {t:?}",
                    c.label, fields[k]
                ));
            }
        }
    }
    bad
}

fn tshark() -> Option<std::path::PathBuf> {
    common::interop_tool("tshark", "install tshark (Debian package `tshark`)")
}

#[test]
fn tshark_decodes_every_typed_command() {
    let Some(tshark) = tshark() else { return };
    let dir = common::TempDir::new("diameter", "tshark", "IMS_KEEP_PCAP");
    let cs = cases();
    assert_eq!(cs.len(), 28, "26 typed commands and 2 error answers");
    let want: Vec<_> = cs.iter().map(|c| expected(&c.bytes)).collect();
    let d = dissect(&tshark, dir.path(), "ours", &cs);
    let bad = compare(&cs, &want, &d);
    assert!(
        bad.is_empty(),
        "{} messages; tshark disagrees:\n{}",
        cs.len(),
        bad.join("\n")
    );
    eprintln!("tshark agrees on {} Diameter messages", cs.len());
}

#[test]
fn tshark_checks_can_fail() {
    let Some(tshark) = tshark() else { return };
    let dir = common::TempDir::new("diameter", "tshark-neg", "IMS_KEEP_PCAP");
    let mut cs: Vec<Case> = cases()
        .into_iter()
        .filter(|c| c.label == "UAR" || c.label == "AAR")
        .collect();
    let want: Vec<_> = cs.iter().map(|c| expected(&c.bytes)).collect();
    // an AVP length that runs past the message: malformed for tshark
    let uar = &mut cs[0].bytes;
    let last = uar.len() - 12;
    uar[last + 7] = 200;
    // a Session-Id changed behind our back: the value comparison must notice
    let aar = Message::parse(&cs[1].bytes).unwrap();
    let at = aar.find(dict::SESSION_ID).unwrap().offset() + 8;
    cs[1].bytes[at] ^= 0x20;
    let d = dissect(&tshark, dir.path(), "broken", &cs);
    let bad = compare(&cs, &want, &d);
    assert!(
        bad.iter().any(|b| b.contains("UAR")),
        "the broken length went unnoticed: {bad:?}"
    );
    assert!(
        bad.iter()
            .any(|b| b.contains("AAR") && b.contains("Session-Id")),
        "the changed Session-Id went unnoticed: {bad:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// SGd (TS 29.338): OFR/OFA and TFR/TFA as the IP-SM-GW and the SMSC exchange them
// ---------------------------------------------------------------------------------------------

/// The fields compared for SGd: the header and AVP codes of [`FIELDS`], then SGd values.
const SGD_FIELDS: &[&str] = &[
    "diameter.cmd.code",
    "diameter.flags",
    "diameter.applicationId",
    "diameter.hopbyhopid",
    "diameter.endtoendid",
    "diameter.avp.code",
    "diameter.Session-Id",
    "diameter.Origin-Host",
    "diameter.Result-Code",
    "diameter.Experimental-Result-Code",
    "diameter.User-Name",
    "diameter.SC-Address",
    "diameter.SM-RP-UI",
    "diameter.TFR-Flags",
    "diameter.SM-Delivery-Timer",
    "diameter.Absent-User-Diagnostic-SM",
    "diameter.SM-Enumerated-Delivery-Failure-Cause",
    "diameter.SM-Diagnostic-Info",
];

/// What we expect tshark to read for [`SGD_FIELDS`], from the octets we wrote: the common
/// columns as [`expected`] computes them, OctetStrings as hex, integers in decimal.
fn sgd_expected(bytes: &[u8]) -> Vec<String> {
    let mut v = expected(bytes);
    v.truncate(11); // up to User-Name, the same columns as FIELDS
    let m = Message::parse(bytes).unwrap();
    fn all(it: ims::diameter::AvpIter<'_>, def: &dict::AvpDef, out: &mut Vec<String>) {
        for a in it {
            if a.is(def) {
                out.push(match def.ty {
                    dict::AvpType::OctetString => {
                        a.data().iter().map(|b| format!("{b:02x}")).collect()
                    }
                    _ => a.u32().unwrap().to_string(),
                });
            }
            if a.def().is_some_and(|d| d.ty == dict::AvpType::Grouped) {
                if let Ok(g) = a.grouped() {
                    all(g, def, out);
                }
            }
        }
    }
    for def in [
        dict::SC_ADDRESS,
        dict::SM_RP_UI,
        dict::TFR_FLAGS,
        dict::SM_DELIVERY_TIMER,
        dict::ABSENT_USER_DIAGNOSTIC_SM,
        dict::SM_ENUMERATED_DELIVERY_FAILURE_CAUSE,
        dict::SM_DIAGNOSTIC_INFO,
    ] {
        let mut out = Vec::new();
        all(m.avps(), def, &mut out);
        v.push(out.join("|"));
    }
    v
}

fn sgd_cases() -> Vec<Case> {
    use ims::diameter::sgd::*;
    let mut out = Vec::new();
    let ipsmgw = host("ipsmgw");
    const SMS_REALM: &str = "sms.mnc001.mcc001.3gppnetwork.org";
    let iwmsc: Cow<'static, str> = format!("iwmsc.{SMS_REALM}").into();
    // +44 7900 000001 (TBCD digits, TS 29.338: no nature-of-address octet)
    let sc: Cow<'static, [u8]> = Cow::Borrowed(b"\x44\x97\x00\x00\x00\x10");
    // SMS-SUBMIT to +44 7956 34120, "Hi" (TS 23.040 §9.2.2.2)
    let submit: &[u8] = b"\x01\x05\x0b\x91\x44\x97\x65\x43\x21\xf0\x00\x00\x02\xc8\x34";
    let ofr = Ofr {
        session_id: sid("ipsmgw", 40),
        vendor_specific_application_id: Some(VendorSpecificApplicationId::sgd()),
        auth_session_state: AuthSessionState::NoStateMaintained,
        origin_host: ipsmgw.clone(),
        origin_realm: realm(),
        destination_realm: SMS_REALM.into(),
        sc_address: sc.clone(),
        user_identifier: UserIdentifier {
            msisdn: Some(Cow::Borrowed(b"\x44\x97\x12\x34\x56\xf7")),
            ..Default::default()
        },
        sm_rp_ui: Cow::Borrowed(submit),
        ..Default::default()
    };
    let ofr_b = ofr.encode(0x401, 0x6d30_0401);
    out.push(Case {
        label: "OFR",
        from: 0,
        bytes: ofr_b.clone(),
    });
    let mut ofa = Ofa::answering(&ofr, "iwmsc.sms.mnc001.mcc001.3gppnetwork.org", SMS_REALM);
    ofa.set_outcome(Outcome::SUCCESS);
    // No SM-RP-UI (it is optional): Wireshark 4.0 hands the SM-RP-UI of OFR *and* OFA to its
    // GSM SMS dissector in the MS-to-SC direction, so an SMS-SUBMIT-REPORT (MTI 01 from the SC,
    // TS 23.040 §9.2.2.2a) is read as an SMS-SUBMIT and flagged malformed; the same holds for the
    // SMS-DELIVER-REPORT in a TFA. Those TPDUs are checked by crates/ims-diameter/tests/sgd.rs and
    // crates/ims-net/tests/diameter_sgd.rs instead.
    out.push(Case {
        label: "OFA",
        from: 1,
        bytes: ofa.encode_answer(Message::parse(&ofr_b).unwrap().header()),
    });
    // the SMS-GMSC delivers an SMS-DELIVER to the IP-SM-GW serving the recipient
    let tfr = Tfr {
        session_id: format!("{iwmsc};1700000000;41").into(),
        vendor_specific_application_id: Some(VendorSpecificApplicationId::sgd()),
        auth_session_state: AuthSessionState::NoStateMaintained,
        origin_host: iwmsc.clone(),
        origin_realm: SMS_REALM.into(),
        destination_host: ipsmgw.clone(),
        destination_realm: realm(),
        user_name: "001010000000001".into(),
        sc_address: sc.clone(),
        sm_rp_ui: Cow::Borrowed(
            b"\x04\x0b\x91\x44\x97\x21\x43\x65\xf7\x00\x00\x52\x11\x72\x12\x00\x00\x00\x02\xc8\x34",
        ),
        tfr_flags: Some(TFR_FLAG_MORE_MESSAGES_TO_SEND),
        sm_delivery_timer: Some(600),
        sm_delivery_start_time: Some(Time(3_973_000_000)),
        ..Default::default()
    };
    let tfr_b = tfr.encode(0x402, 0x6d30_0402);
    out.push(Case {
        label: "TFR",
        from: 1,
        bytes: tfr_b.clone(),
    });
    let mut tfa = Tfa::answering(&tfr, "ipsmgw.ims.mnc001.mcc001.3gppnetwork.org", REALM);
    tfa.set_outcome(Outcome::tgpp(ExperimentalResultCode::SmDeliveryFailure));
    tfa.sm_delivery_failure_cause = Some(SmDeliveryFailureCause {
        sm_enumerated_delivery_failure_cause:
            SmEnumeratedDeliveryFailureCause::MemoryCapacityExceeded,
        // SMS-DELIVER-REPORT for RP-ERROR, TP-FCS 0xd3 "memory capacity exceeded"
        sm_diagnostic_info: Some(Cow::Borrowed(b"\x00\xd3\x00")),
        ..Default::default()
    });
    out.push(Case {
        label: "TFA (5555 SM delivery failure)",
        from: 0,
        bytes: tfa.encode_answer(Message::parse(&tfr_b).unwrap().header()),
    });
    let (tfr2, mut tfa2) = (tfr.clone(), tfa.clone());
    let mut tfr2 = tfr2;
    tfr2.session_id = format!("{iwmsc};1700000000;42").into();
    tfr2.tfr_flags = None;
    let tfr2_b = tfr2.encode(0x403, 0x6d30_0403);
    out.push(Case {
        label: "TFR (last message)",
        from: 1,
        bytes: tfr2_b.clone(),
    });
    tfa2.session_id = tfr2.session_id.clone();
    tfa2.set_outcome(Outcome::tgpp(ExperimentalResultCode::AbsentUser));
    tfa2.sm_delivery_failure_cause = None;
    tfa2.absent_user_diagnostic_sm = Some(12);
    tfa2.requested_retransmission_time = Some(Time(3_973_000_600));
    out.push(Case {
        label: "TFA (5550 absent user)",
        from: 0,
        bytes: tfa2.encode_answer(Message::parse(&tfr2_b).unwrap().header()),
    });
    out
}

#[test]
fn tshark_decodes_the_sgd_commands() {
    let Some(tshark) = tshark() else { return };
    let dir = common::TempDir::new("diameter", "tshark-sgd", "IMS_KEEP_PCAP");
    let cs = sgd_cases();
    let want: Vec<_> = cs.iter().map(|c| sgd_expected(&c.bytes)).collect();
    // the values we set are in what we expect tshark to read (so a tshark that printed
    // nothing could not pass)
    assert_eq!(want[0][0], "8388645");
    assert_eq!(want[0][2], "16777313");
    assert_eq!(want[0][12], "01050b914497654321f0000002c834");
    assert_eq!(want[2][13], "1");
    assert_eq!(want[2][14], "600");
    assert_eq!(want[3][9], "5555");
    assert_eq!(want[3][16], "0");
    assert_eq!(want[5][9], "5550");
    assert_eq!(want[5][15], "12");
    let d = dissect_fields(&tshark, dir.path(), "sgd", &cs, SGD_FIELDS);
    let bad = compare_fields(&cs, &want, &d, SGD_FIELDS);
    assert!(
        bad.is_empty(),
        "{} SGd messages; tshark disagrees:\n{}",
        cs.len(),
        bad.join("\n")
    );
    eprintln!("tshark agrees on {} SGd messages", cs.len());
}

// ---------------------------------------------------------------------------------------------
// S6c (TS 29.338 §5): SRR/SRA, ALR/ALA, RDR/RDA
// ---------------------------------------------------------------------------------------------

/// The fields compared for S6c: the header and AVP codes of [`FIELDS`], then S6c values.
const S6C_FIELDS: &[&str] = &[
    "diameter.cmd.code",
    "diameter.flags",
    "diameter.applicationId",
    "diameter.hopbyhopid",
    "diameter.endtoendid",
    "diameter.avp.code",
    "diameter.Session-Id",
    "diameter.Origin-Host",
    "diameter.Result-Code",
    "diameter.Experimental-Result-Code",
    "diameter.User-Name",
    "diameter.SC-Address",
    "diameter.SMS-GMSC-Alert-Event",
    "diameter.IP-SM-GW-Name",
    "diameter.IP-SM-GW-Realm",
    "diameter.SM-RP-MTI",
    "diameter.SRR-Flags",
    "diameter.MWD-Status",
    "diameter.MME-Name",
    "diameter.MME-Absent-User-Diagnostic-SM",
    "diameter.SM-Delivery-Cause",
    "diameter.Absent-User-Diagnostic-SM",
    "diameter.RDR-Flags",
];

/// What we expect tshark to read for [`S6C_FIELDS`] (OctetStrings as hex, identities as text,
/// integers in decimal).
fn s6c_expected(bytes: &[u8]) -> Vec<String> {
    let mut v = expected(bytes);
    v.truncate(11);
    let m = Message::parse(bytes).unwrap();
    fn all(it: ims::diameter::AvpIter<'_>, def: &dict::AvpDef, out: &mut Vec<String>) {
        for a in it {
            if a.is(def) {
                out.push(match def.ty {
                    dict::AvpType::OctetString => {
                        a.data().iter().map(|b| format!("{b:02x}")).collect()
                    }
                    dict::AvpType::DiameterIdentity => a.utf8().unwrap().to_owned(),
                    _ => a.u32().unwrap().to_string(),
                });
            }
            if a.def().is_some_and(|d| d.ty == dict::AvpType::Grouped) {
                if let Ok(g) = a.grouped() {
                    all(g, def, out);
                }
            }
        }
    }
    for def in [
        dict::SC_ADDRESS,
        dict::SMS_GMSC_ALERT_EVENT,
        dict::IP_SM_GW_NAME,
        dict::IP_SM_GW_REALM,
        dict::SM_RP_MTI,
        dict::SRR_FLAGS,
        dict::MWD_STATUS,
        dict::MME_NAME,
        dict::MME_ABSENT_USER_DIAGNOSTIC_SM,
        dict::SM_DELIVERY_CAUSE,
        dict::ABSENT_USER_DIAGNOSTIC_SM,
        dict::RDR_FLAGS,
    ] {
        let mut out = Vec::new();
        all(m.avps(), def, &mut out);
        v.push(out.join("|"));
    }
    v
}

fn s6c_cases() -> Vec<Case> {
    use ims::diameter::s6c::*;
    use ims::diameter::sgd::{
        tbcd, DeliveryOutcome, SmDeliveryCause, SmDeliveryOutcome, UserIdentifier,
    };
    let mut out = Vec::new();
    let ipsmgw = host("ipsmgw");
    const SMS_REALM: &str = "sms.mnc001.mcc001.3gppnetwork.org";
    const HSS_REALM: &str = "epc.mnc001.mcc001.3gppnetwork.org";
    let gmsc: Cow<'static, str> = format!("gmsc.{SMS_REALM}").into();
    let hss: Cow<'static, str> = format!("hss.{HSS_REALM}").into();
    let sc: Cow<'static, [u8]> = Cow::Borrowed(b"\x44\x97\x00\x00\x00\x10");
    let msisdn: Cow<'static, [u8]> = Cow::Borrowed(b"\x44\x97\x21\x43\x65\xf7");
    // SMS-GMSC → HSS: where is +44 7912 34567?
    let srr = Srr {
        session_id: format!("{gmsc};1700000000;50").into(),
        vendor_specific_application_id: Some(VendorSpecificApplicationId::s6c()),
        auth_session_state: AuthSessionState::NoStateMaintained,
        origin_host: gmsc.clone(),
        origin_realm: SMS_REALM.into(),
        destination_realm: HSS_REALM.into(),
        msisdn: Some(msisdn.clone()),
        sc_address: Some(sc.clone()),
        sm_rp_mti: Some(SmRpMti::SmDeliver),
        srr_flags: Some(SRR_FLAG_GPRS_INDICATOR | SRR_FLAG_SM_RP_PRI),
        ..Default::default()
    };
    let srr_b = srr.encode(0x501, 0x6d30_0501);
    out.push(Case {
        label: "SRR",
        from: 0,
        bytes: srr_b.clone(),
    });
    let mut sra = Sra::answering(&srr, "hss.epc.mnc001.mcc001.3gppnetwork.org", HSS_REALM);
    sra.set_outcome(Outcome::SUCCESS);
    sra.user_name = Some("001010000000001".into());
    sra.serving_node = Some(ServingNode {
        mme_name: Some("mme1.epc.mnc001.mcc001.3gppnetwork.org".into()),
        mme_realm: Some(HSS_REALM.into()),
        mme_number_for_mt_sms: Some(tbcd("447900000200").unwrap().into()),
        ..Default::default()
    });
    out.push(Case {
        label: "SRA",
        from: 1,
        bytes: sra.encode_answer(Message::parse(&srr_b).unwrap().header()),
    });
    let mut srr2 = srr.clone();
    srr2.session_id = format!("{gmsc};1700000000;51").into();
    srr2.srr_flags = None;
    let srr2_b = srr2.encode(0x502, 0x6d30_0502);
    out.push(Case {
        label: "SRR (again)",
        from: 0,
        bytes: srr2_b.clone(),
    });
    let mut absent = Sra::answering(&srr2, "hss.epc.mnc001.mcc001.3gppnetwork.org", HSS_REALM);
    absent.set_outcome(Outcome::tgpp(ExperimentalResultCode::AbsentUser));
    absent.mwd_status = Some(MWD_STATUS_MNRF_SET);
    absent.mme_absent_user_diagnostic_sm = Some(1);
    out.push(Case {
        label: "SRA (5550 absent user)",
        from: 1,
        bytes: absent.encode_answer(Message::parse(&srr2_b).unwrap().header()),
    });
    // IP-SM-GW → SMS-GMSC: the user is reachable again (ALR on SGd, S6c Application-Id)
    let alr = Alr {
        session_id: sid("ipsmgw", 52),
        vendor_specific_application_id: Some(VendorSpecificApplicationId::s6c()),
        auth_session_state: AuthSessionState::NoStateMaintained,
        origin_host: ipsmgw.clone(),
        origin_realm: realm(),
        destination_host: Some(gmsc.clone()),
        destination_realm: SMS_REALM.into(),
        sc_address: sc.clone(),
        user_identifier: UserIdentifier {
            user_name: Some("001010000000001".into()),
            msisdn: Some(msisdn.clone()),
            ..Default::default()
        },
        maximum_ue_availability_time: Some(Time(3_973_000_900)),
        sms_gmsc_alert_event: Some(SMS_GMSC_ALERT_EVENT_UE_AVAILABLE_FOR_MT_SMS),
        serving_node: Some(ServingNode {
            ip_sm_gw_name: Some(ipsmgw.clone()),
            ip_sm_gw_realm: Some(realm()),
            ..Default::default()
        }),
        ..Default::default()
    };
    let alr_b = alr.encode(0x503, 0x6d30_0503);
    out.push(Case {
        label: "ALR",
        from: 0,
        bytes: alr_b.clone(),
    });
    let mut ala = Ala::answering(&alr, "gmsc.sms.mnc001.mcc001.3gppnetwork.org", SMS_REALM);
    ala.set_outcome(Outcome::SUCCESS);
    out.push(Case {
        label: "ALA",
        from: 1,
        bytes: ala.encode_answer(Message::parse(&alr_b).unwrap().header()),
    });
    // IP-SM-GW → HSS: the delivery failed, the user is absent (deregistered for IMS)
    let rdr = Rdr {
        session_id: sid("ipsmgw", 53),
        vendor_specific_application_id: Some(VendorSpecificApplicationId::s6c()),
        auth_session_state: AuthSessionState::NoStateMaintained,
        origin_host: ipsmgw.clone(),
        origin_realm: realm(),
        destination_host: Some(hss.clone()),
        destination_realm: HSS_REALM.into(),
        user_identifier: UserIdentifier {
            msisdn: Some(msisdn.clone()),
            ..Default::default()
        },
        sc_address: sc.clone(),
        sm_delivery_outcome: SmDeliveryOutcome {
            ip_sm_gw: Some(DeliveryOutcome {
                sm_delivery_cause: Some(SmDeliveryCause::AbsentUser),
                absent_user_diagnostic_sm: Some(11),
                ..Default::default()
            }),
            ..Default::default()
        },
        rdr_flags: Some(RDR_FLAG_SINGLE_ATTEMPT_DELIVERY),
        ..Default::default()
    };
    let rdr_b = rdr.encode(0x504, 0x6d30_0504);
    out.push(Case {
        label: "RDR",
        from: 0,
        bytes: rdr_b.clone(),
    });
    let mut rda = Rda::answering(&rdr, "hss.epc.mnc001.mcc001.3gppnetwork.org", HSS_REALM);
    rda.set_outcome(Outcome::SUCCESS);
    rda.user_identifier = Some(UserIdentifier {
        msisdn: Some(msisdn),
        ..Default::default()
    });
    out.push(Case {
        label: "RDA",
        from: 1,
        bytes: rda.encode_answer(Message::parse(&rdr_b).unwrap().header()),
    });
    out
}

#[test]
fn tshark_decodes_the_s6c_commands() {
    let Some(tshark) = tshark() else { return };
    let dir = common::TempDir::new("diameter", "tshark-s6c", "IMS_KEEP_PCAP");
    let cs = s6c_cases();
    let want: Vec<_> = cs.iter().map(|c| s6c_expected(&c.bytes)).collect();
    // the values we set are in what we expect tshark to read
    assert_eq!(want[0][0], "8388647");
    assert_eq!(want[0][2], "16777312");
    assert_eq!(want[0][11], "449700000010");
    assert_eq!(want[0][15], "0");
    assert_eq!(want[0][16], "3");
    assert_eq!(want[1][18], "mme1.epc.mnc001.mcc001.3gppnetwork.org");
    assert_eq!(want[3][9], "5550");
    assert_eq!(want[3][17], "2");
    assert_eq!(want[3][19], "1");
    assert_eq!(want[4][0], "8388648");
    assert_eq!(want[4][2], "16777312");
    assert_eq!(want[4][10], "001010000000001");
    assert_eq!(want[4][12], "1");
    assert_eq!(want[4][13], "ipsmgw.ims.mnc001.mcc001.3gppnetwork.org");
    assert_eq!(want[5][8], "2001");
    assert_eq!(want[6][20], "1");
    assert_eq!(want[6][21], "11");
    assert_eq!(want[6][22], "1");
    let d = dissect_fields(&tshark, dir.path(), "s6c", &cs, S6C_FIELDS);
    let bad = compare_fields(&cs, &want, &d, S6C_FIELDS);
    assert!(
        bad.is_empty(),
        "{} S6c messages; tshark disagrees:\n{}",
        cs.len(),
        bad.join("\n")
    );
    eprintln!("tshark agrees on {} S6c messages", cs.len());
}
