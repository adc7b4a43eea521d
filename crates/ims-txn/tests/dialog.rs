//! Dialog state (RFC 3261 §12): creation, route sets, CSeq rules, target refresh, loose and strict
//! routing of in-dialog requests.

use ims_sip::{HeaderName, Method, OwnedMessage, RequestBuilder, ResponseBuilder};
use ims_txn::dialog::{Dialog, DialogState};

fn invite() -> OwnedMessage {
    RequestBuilder::new(Method::Invite, "sip:bob@biloxi.example.com")
        .header(
            "Via",
            "SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bK74bf9",
        )
        .header("Max-Forwards", 70)
        .header(
            "From",
            "Alice <sip:alice@atlanta.example.com>;tag=9fxced76sl",
        )
        .header("To", "Bob <sip:bob@biloxi.example.com>")
        .header("Call-ID", "3848276298220188511@atlanta.example.com")
        .header("CSeq", "2 INVITE")
        .header("Contact", "<sip:alice@client.atlanta.example.com>")
        .header(
            "Record-Route",
            "<sip:p1.example.com;lr>, <sip:p2.example.com;lr>",
        )
        .build()
        .unwrap()
}

fn answer(req: &OwnedMessage, code: u16, rr: &[&str], contact: &str) -> OwnedMessage {
    let m = req.as_message();
    let mut b = ResponseBuilder::new(code, None);
    for v in m.headers_of(HeaderName::Via) {
        b = b.header("Via", v.value());
    }
    b = b
        .header("From", m.header(HeaderName::From).unwrap())
        .header("To", "Bob <sip:bob@biloxi.example.com>;tag=8321234356")
        .header("Call-ID", m.header(HeaderName::CallId).unwrap())
        .header("CSeq", m.header(HeaderName::CSeq).unwrap())
        .header("Contact", contact);
    for r in rr {
        b = b.header("Record-Route", r);
    }
    b.build().unwrap()
}

#[test]
fn uac_dialog_reverses_record_route_and_uses_loose_routing() {
    let req = invite();
    let ok = answer(
        &req,
        200,
        &["<sip:p1.example.com;lr>", "<sip:p2.example.com;lr>"],
        "<sip:bob@192.0.2.4>",
    );
    let mut d = Dialog::uac(&req.as_message(), &ok.as_message()).unwrap();
    assert_eq!(d.state, DialogState::Confirmed);
    assert!(d.is_uac);
    assert_eq!(d.id.local_tag, "9fxced76sl");
    assert_eq!(d.id.remote_tag, "8321234356");
    assert_eq!(
        d.route_set,
        ["<sip:p2.example.com;lr>", "<sip:p1.example.com;lr>"]
    );
    assert_eq!(d.remote_target, "sip:bob@192.0.2.4");
    assert_eq!(d.local_seq, Some(2));
    assert_eq!(d.remote_seq, None);
    let seq = d.next_seq();
    assert_eq!(seq, 3);
    let bye = d
        .request(Method::Bye, seq)
        .header("Via", "SIP/2.0/UDP x;branch=z9hG4bK1")
        .build()
        .unwrap();
    let m = bye.as_message();
    assert_eq!(m.request_uri_str(), Some("sip:bob@192.0.2.4"));
    let routes: Vec<_> = m.headers_of(HeaderName::Route).map(|h| h.value()).collect();
    assert_eq!(
        routes,
        ["<sip:p2.example.com;lr>", "<sip:p1.example.com;lr>"]
    );
    assert_eq!(m.to().unwrap().unwrap().tag(), Some("8321234356"));
    assert_eq!(m.from().unwrap().unwrap().tag(), Some("9fxced76sl"));
    assert_eq!(m.cseq().unwrap().unwrap().seq, 3);
    assert_eq!(d.next_hop_uri(), "sip:p2.example.com;lr");
}

#[test]
fn strict_router_takes_the_request_uri() {
    let req = invite();
    // the last proxy (first in our route set) is a strict router: no ;lr
    let ok = answer(
        &req,
        200,
        &["<sip:p1.example.com;lr>", "<sip:p2.example.com>"],
        "<sip:bob@192.0.2.4>",
    );
    let d = Dialog::uac(&req.as_message(), &ok.as_message()).unwrap();
    let (ruri, routes) = d.target_and_routes();
    assert_eq!(ruri, "sip:p2.example.com");
    assert_eq!(routes, ["<sip:p1.example.com;lr>", "<sip:bob@192.0.2.4>"]);
    let r = d
        .request(Method::Info, 3)
        .header("Via", "SIP/2.0/UDP x;branch=z9hG4bK2")
        .build()
        .unwrap();
    assert_eq!(r.as_message().request_uri_str(), Some("sip:p2.example.com"));
    assert_eq!(d.next_hop_uri(), "sip:p1.example.com;lr");
}

#[test]
fn no_route_set_targets_the_contact() {
    let req = invite();
    let ok = answer(&req, 200, &[], "<sip:bob@192.0.2.4:5070;transport=tcp>");
    let d = Dialog::uac(&req.as_message(), &ok.as_message()).unwrap();
    assert!(d.route_set.is_empty());
    assert_eq!(
        d.target_and_routes(),
        ("sip:bob@192.0.2.4:5070;transport=tcp".into(), vec![])
    );
}

#[test]
fn early_dialog_confirmed_by_2xx_recomputes_route_set() {
    let req = invite();
    let ringing = answer(
        &req,
        180,
        &["<sip:p1.example.com;lr>"],
        "<sip:bob@192.0.2.4>",
    );
    let mut d = Dialog::uac(&req.as_message(), &ringing.as_message()).unwrap();
    assert_eq!(d.state, DialogState::Early);
    assert_eq!(d.route_set, ["<sip:p1.example.com;lr>"]);
    let ok = answer(
        &req,
        200,
        &["<sip:p1.example.com;lr>", "<sip:p9.example.com;lr>"],
        "<sip:bob@192.0.2.99>",
    );
    d.on_response(&ok.as_message()).unwrap();
    assert_eq!(d.state, DialogState::Confirmed);
    assert_eq!(
        d.route_set,
        ["<sip:p9.example.com;lr>", "<sip:p1.example.com;lr>"]
    );
    assert_eq!(d.remote_target, "sip:bob@192.0.2.99");
}

#[test]
fn uas_dialog_keeps_record_route_order_and_checks_cseq() {
    let req = invite();
    let mut d = Dialog::uas(&req.as_message(), "8321234356", false).unwrap();
    assert!(!d.is_uac);
    assert_eq!(
        d.route_set,
        ["<sip:p1.example.com;lr>", "<sip:p2.example.com;lr>"]
    );
    assert_eq!(d.remote_target, "sip:alice@client.atlanta.example.com");
    assert_eq!(d.remote_seq, Some(2));
    assert_eq!(d.local_seq, None);
    assert_eq!(d.local, "Bob <sip:bob@biloxi.example.com>;tag=8321234356");
    // our first request starts the local sequence
    assert_eq!(d.next_seq(), 1);
    let in_dialog = |seq: u32, method: Method<'_>, contact: &str| {
        RequestBuilder::new(method, "sip:bob@192.0.2.4")
            .header(
                "Via",
                "SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bKnew",
            )
            .header(
                "From",
                "Alice <sip:alice@atlanta.example.com>;tag=9fxced76sl",
            )
            .header("To", "Bob <sip:bob@biloxi.example.com>;tag=8321234356")
            .header("Call-ID", "3848276298220188511@atlanta.example.com")
            .header("CSeq", format!("{seq} {method}"))
            .header("Contact", contact)
            .build()
            .unwrap()
    };
    // a re-INVITE refreshes the remote target
    let re = in_dialog(3, Method::Invite, "<sip:alice@198.51.100.7>");
    d.on_request(&re.as_message()).unwrap();
    assert_eq!(d.remote_seq, Some(3));
    assert_eq!(d.remote_target, "sip:alice@198.51.100.7");
    // INFO does not refresh it
    let info = in_dialog(4, Method::Info, "<sip:alice@203.0.113.1>");
    d.on_request(&info.as_message()).unwrap();
    assert_eq!(d.remote_target, "sip:alice@198.51.100.7");
    // an older CSeq is out of order: 500 (RFC 3261 §12.2.2)
    let old = in_dialog(3, Method::Info, "<sip:alice@198.51.100.7>");
    assert_eq!(d.on_request(&old.as_message()), Err(500));
}
