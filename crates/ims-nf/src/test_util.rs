//! Helpers shared by the unit tests of this crate.

/// Runs `f`, a future built over in-process requesters, which completes at its first poll.
pub(crate) fn block_on<F: std::future::Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match f.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(v) => v,
        std::task::Poll::Pending => panic!("in-process futures complete at once"),
    }
}

/// `m`, a message handed on as built (never parsed), read as a [`ims_sip::Message`] after
/// checking that it is exactly what [`ims_sip::OwnedMessage::parse_datagram`] of its bytes
/// gives: the same bytes, start line, header lines (name, spelling, value, where each value
/// starts), body and Content-Length.
pub(crate) fn checked(m: &ims_sip::OwnedMessage) -> ims_sip::Message<'_> {
    let parsed = ims_sip::OwnedMessage::parse_datagram(m.bytes().clone()).expect("its bytes parse");
    let (a, b) = (m.as_message(), parsed.as_message());
    assert_eq!(m.bytes(), parsed.bytes());
    assert_eq!(a.start_line_str(), b.start_line_str());
    assert_eq!(
        (a.method(), a.status(), a.request_uri_str(), a.reason()),
        (b.method(), b.status(), b.request_uri_str(), b.reason())
    );
    assert!(a.headers().eq(b.headers()), "{:?}", m.bytes());
    assert_eq!(a.header_count(), b.header_count());
    assert_eq!((a.body(), a.body_offset()), (b.body(), b.body_offset()));
    assert_eq!(a.content_length(), b.content_length());
    assert_eq!(
        (m.is_request(), m.status()),
        (parsed.is_request(), parsed.status())
    );
    a
}

/// The text of a request handed on as built ([`checked`] against the parse of its bytes).
pub(crate) fn checked_text(r: &Result<ims_sip::OwnedMessage, ims_sip::ParseError>) -> String {
    let m = r.as_ref().expect("the request was built");
    checked(m);
    String::from_utf8(m.bytes().to_vec()).expect("text")
}
