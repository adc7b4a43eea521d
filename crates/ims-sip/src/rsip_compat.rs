//! Conversion to and from [`rsip::SipMessage`] (feature `rsip`), through the wire form so nothing
//! either side understands is lost.

use crate::error::ParseError;
use crate::message::{Message, OwnedMessage};
use bytes::Bytes;

/// Converts a message to rsip's owned representation.
pub fn to_rsip(msg: &Message<'_>) -> Result<rsip::SipMessage, rsip::Error> {
    rsip::SipMessage::try_from(msg.as_bytes())
}

/// Converts an rsip message to an [`OwnedMessage`], parsing what rsip renders.
pub fn from_rsip(msg: &rsip::SipMessage) -> Result<OwnedMessage, ParseError> {
    OwnedMessage::parse_datagram(Bytes::from(msg.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_ways() {
        let raw = b"INVITE sip:bob@biloxi.example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bK776asdhds\r\nMax-Forwards: 70\r\n\
To: Bob <sip:bob@biloxi.example.com>\r\nFrom: Alice <sip:alice@atlanta.example.com>;tag=1928301774\r\n\
Call-ID: a84b4c76e66710@pc33.atlanta.example.com\r\nCSeq: 314159 INVITE\r\nContent-Length: 4\r\n\r\nv=0\n";
        let m = crate::parse_datagram(raw).unwrap();
        let r = to_rsip(&m).unwrap();
        let rsip::SipMessage::Request(req) = &r else {
            panic!("not a request")
        };
        assert_eq!(req.method, rsip::Method::Invite);
        let back = from_rsip(&r).unwrap();
        let b = back.as_message();
        assert_eq!(
            b.call_id().unwrap().unwrap().as_str(),
            "a84b4c76e66710@pc33.atlanta.example.com"
        );
        assert_eq!(b.cseq().unwrap().unwrap().seq, 314159);
        assert_eq!(b.body(), b"v=0\n");
        assert_eq!(
            b.top_via().unwrap().unwrap().branch(),
            Some("z9hG4bK776asdhds")
        );
    }
}
