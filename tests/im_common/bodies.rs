//! Message bodies the IM server tests send and read: RP-DATA with an SMS-SUBMIT, the
//! MSISDN-less multipart submission (TS 24.341 Annex B.7), CPIM IMs asking for IMDNs and the
//! IMDN a CPIM body carries.

use ims::msrp::cpim::{Cpim, CpimBuilder};
use ims::msrp::imdn::Imdn;
use ims::sip::OwnedMessage;
use ims::sms::{self, Address, RpMessage, Submit, Tpdu};

/// RP-DATA MO (RP-MR `rp_mr`, RP-DA +15550000) with an SMS-SUBMIT (TP-MR `tp_mr`) of `text`
/// to the international `number`, asking for a status report when `srr`.
pub(crate) fn rp_submit(rp_mr: u8, tp_mr: u8, number: &str, srr: bool, text: &str) -> Vec<u8> {
    rp_submit_rd(rp_mr, tp_mr, number, srr, false, text)
}

/// [`rp_submit`] with TP-RD (reject duplicates, TS 23.040 §9.2.3.25) as `rd`: how an MS
/// repeats a submission it heard no answer to (§9.2.3.6).
pub(crate) fn rp_submit_rd(
    rp_mr: u8,
    tp_mr: u8,
    number: &str,
    srr: bool,
    rd: bool,
    text: &str,
) -> Vec<u8> {
    let sub = Submit {
        reject_duplicates: rd,
        reply_path: false,
        status_report_request: srr,
        message_reference: tp_mr,
        destination: Address::international(number),
        pid: Default::default(),
        dcs: Default::default(),
        validity_period: None,
        user_data: sms::UserData::gsm7(text, Default::default()).expect("GSM 7-bit text"),
    };
    let tpdu = Tpdu::Submit(sub).encode().expect("SUBMIT");
    RpMessage::data_mo(rp_mr, Address::international("15550000"), &tpdu)
        .encode()
        .expect("RP-DATA")
}

/// A multipart/mixed (boundary `b1`) MSISDN-less submission (TS 24.341 Annex B.7): RP-DATA
/// (RP-MR 3) with an SMS-SUBMIT (TP-MR 9) of `text` whose TP-DA is the dummy MSISDN, asking for
/// a status report when `srr`, and a short-message-info whose `<To>` names `to`.
pub(crate) fn msisdn_less(to: &str, srr: bool, text: &str) -> Vec<u8> {
    let rp = rp_submit(3, 9, "000000000000000", srr, text);
    let mut body = b"--b1\r\nContent-Type: application/vnd.3gpp.sms\r\n\r\n".to_vec();
    body.extend_from_slice(&rp);
    body.extend_from_slice(
        format!(
            "\r\n--b1\r\nContent-Type: application/vnd.3gpp.sms+xml\r\n\r\n\
             <?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n\
             <short-message-info><To>{to}</To></short-message-info>\r\n--b1--\r\n"
        )
        .as_bytes(),
    );
    body
}

/// A CPIM IM from `from` to `to` with `text`, its IMDN Message-ID `id`, sent at `datetime`,
/// asking for the notifications `disposition` names.
pub(crate) fn cpim_asking(
    from: &str,
    to: &str,
    id: &str,
    disposition: &str,
    datetime: &str,
    text: &str,
) -> Vec<u8> {
    CpimBuilder::new(&format!("<{from}>"), &format!("<{to}>"))
        .ns("imdn", "urn:ietf:params:imdn")
        .header("imdn.Message-ID", id)
        .header("imdn.Disposition-Notification", disposition)
        .datetime(datetime)
        .content("text/plain;charset=UTF-8", text.as_bytes())
        .to_bytes()
}

/// The IMDN that the CPIM body of `m` carries (checked to be `message/imdn+xml`).
pub(crate) fn imdn_of(m: &OwnedMessage) -> Imdn {
    let c = Cpim::parse(m.as_message().body()).expect("CPIM");
    assert_eq!(
        c.content_type().unwrap().unwrap().to_string(),
        "message/imdn+xml"
    );
    Imdn::parse(std::str::from_utf8(c.body).unwrap()).expect("IMDN")
}
