//! Transaction identification and matching (RFC 3261 §17.1.3, §17.2.3, RFC 2543 fallback).

use crate::error::TxnError;
use ims_sip::headers::MAGIC_COOKIE;
use ims_sip::{Host, Message, Method};
use smallvec::SmallVec;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::net::SocketAddr;

/// A SIP transport, as the transaction layer needs to know it: reliable or not (RFC 3261 §17:
/// retransmission timers A, E, G run only on unreliable transports; D, I, J, K are zero on reliable
/// ones).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Transport {
    /// UDP (unreliable).
    Udp,
    /// TCP.
    Tcp,
    /// TLS over TCP.
    Tls,
    /// SCTP.
    Sctp,
    /// WebSocket (RFC 7118).
    Ws,
    /// Secure WebSocket (RFC 7118).
    Wss,
}

impl Transport {
    /// True for every transport but UDP.
    pub fn is_reliable(self) -> bool {
        !matches!(self, Transport::Udp)
    }
    /// The Via transport token (`UDP`, `TCP`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
            Transport::Tls => "TLS",
            Transport::Sctp => "SCTP",
            Transport::Ws => "WS",
            Transport::Wss => "WSS",
        }
    }
    /// Reads a Via transport token (case-insensitive); `None` for an unknown one.
    pub fn from_token(s: &str) -> Option<Transport> {
        // compared in place (no upper-cased copy: one per URI `transport` parameter located)
        [
            Transport::Udp,
            Transport::Tcp,
            Transport::Tls,
            Transport::Sctp,
            Transport::Ws,
            Transport::Wss,
        ]
        .into_iter()
        .find(|t| t.as_str().eq_ignore_ascii_case(s))
    }
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The other end of a message: where a request came from (responses go back there, RFC 3261
/// §18.2.2) or where the TU wants a request sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Remote {
    /// Transport used.
    pub transport: Transport,
    /// Socket address of the peer.
    pub addr: SocketAddr,
}

impl Remote {
    /// A UDP peer.
    pub fn udp(addr: SocketAddr) -> Self {
        Remote {
            transport: Transport::Udp,
            addr,
        }
    }
    /// A TCP peer.
    pub fn tcp(addr: SocketAddr) -> Self {
        Remote {
            transport: Transport::Tcp,
            addr,
        }
    }
}

/// Which side of a transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    /// The client transaction sends the request.
    Client,
    /// The server transaction sends the responses.
    Server,
}

/// What identifies a transaction (RFC 3261 §17.1.3 and §17.2.3).
///
/// - Client: the top Via branch of the request and the CSeq method.
/// - Server, RFC 3261 branch (`z9hG4bK…`): the branch, the top Via sent-by and the method, with
///   ACK counted as INVITE (an ACK for a non-2xx answer belongs to the INVITE transaction).
/// - Server, RFC 2543 peer (no magic cookie): Request-URI, From tag, Call-ID, CSeq number and the
///   whole top Via, packed into the branch; the To tag is checked by the layer for ACK.
///
/// The parts are kept in one buffer, inline up to 64 bytes (a key of a typical request costs no
/// allocation), with their hash computed once when the key is built: the layer's tables only mix
/// that stored value (a keyed hash, see the crate's `hash` module).
#[derive(Clone)]
pub struct TxnKey {
    /// Hash of `side`, the part lengths and `text`, computed once.
    hash: u64,
    side: Side,
    method_len: u32,
    branch_len: u32,
    /// method, branch, sent-by, one after the other
    text: SmallVec<[u8; 64]>,
}

impl PartialEq for TxnKey {
    fn eq(&self, other: &Self) -> bool {
        self.hash == other.hash
            && self.side == other.side
            && self.method_len == other.method_len
            && self.branch_len == other.branch_len
            && self.text[..] == other.text[..]
    }
}

impl Eq for TxnKey {}

impl Hash for TxnKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // equal keys have equal stored hashes
        state.write_u64(self.hash);
    }
}

impl fmt::Debug for TxnKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TxnKey")
            .field("side", &self.side)
            .field("branch", &self.branch())
            .field("method", &self.method())
            .field("sent_by", &self.sent_by())
            .finish()
    }
}

impl fmt::Display for TxnKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let side = match self.side {
            Side::Client => "client",
            Side::Server => "server",
        };
        write!(f, "{side} {} {}", self.method(), self.branch())?;
        if !self.sent_by().is_empty() {
            write!(f, " {}", self.sent_by())?;
        }
        Ok(())
    }
}

fn method_of_cseq<'a>(m: &Message<'a>) -> Result<(u32, Method<'a>), TxnError> {
    let c = m.cseq()?.ok_or(TxnError::MissingHeader("CSeq"))?;
    Ok((c.seq, c.method))
}

/// Length of a part, as stored (messages are far below 4 GiB: the parser's limits).
fn part_len(s: &[u8]) -> u32 {
    u32::try_from(s.len()).unwrap_or(u32::MAX)
}

impl TxnKey {
    /// Builds a key from its parts; `sent_by` is written by `write_sent_by` after the branch.
    fn build(
        side: Side,
        method: &str,
        branch: &str,
        write_sent_by: impl FnOnce(&mut SmallVec<[u8; 64]>),
    ) -> TxnKey {
        let mut text = SmallVec::<[u8; 64]>::new();
        text.extend_from_slice(method.as_bytes());
        text.extend_from_slice(branch.as_bytes());
        write_sent_by(&mut text);
        let method_len = part_len(method.as_bytes());
        let branch_len = part_len(branch.as_bytes());
        let side_bit = match side {
            Side::Client => 0,
            Side::Server => 1u64 << 63,
        };
        let tag = side_bit ^ (u64::from(method_len) << 32) ^ u64::from(branch_len);
        TxnKey {
            hash: crate::hash::hash_bytes(&text, tag),
            side,
            method_len,
            branch_len,
            text,
        }
    }

    fn part(&self, from: usize, to: usize) -> &str {
        // the parts were copied from `&str`s and split at their lengths
        std::str::from_utf8(self.text.get(from..to).unwrap_or_default()).unwrap_or_default()
    }

    /// Client or server.
    pub fn side(&self) -> Side {
        self.side
    }

    /// The method of the transaction (INVITE for an ACK to a non-2xx).
    pub fn method(&self) -> &str {
        self.part(0, self.method_len as usize)
    }

    /// The branch (or the packed RFC 2543 identity).
    pub fn branch(&self) -> &str {
        let m = self.method_len as usize;
        self.part(m, m + self.branch_len as usize)
    }

    /// The top Via sent-by (`host:port`, host lowercased), server side with an RFC 3261 branch
    /// only; empty otherwise.
    pub fn sent_by(&self) -> &str {
        let from = self.method_len as usize + self.branch_len as usize;
        self.part(from, self.text.len())
    }

    /// The client key of a request the TU sends, or of a response received for it.
    pub fn client(m: &Message<'_>) -> Result<TxnKey, TxnError> {
        let via = m.top_via()?.ok_or(TxnError::MissingHeader("Via"))?;
        let branch = via.branch().ok_or(TxnError::MissingHeader("Via branch"))?;
        let (_, method) = method_of_cseq(m)?;
        Ok(Self::build(Side::Client, method.as_str(), branch, |_| {}))
    }

    /// The server key of a received request. An ACK gets the key of the INVITE it acknowledges.
    pub fn server(m: &Message<'_>) -> Result<TxnKey, TxnError> {
        let method = m.method().ok_or(TxnError::NotARequest)?;
        let method = if method == Method::Ack {
            Method::Invite
        } else {
            method
        };
        Self::server_with_method(m, method)
    }

    /// The server key a request would have with another method: the INVITE a CANCEL targets
    /// (RFC 3261 §9.2) is `server_with_method(cancel, Method::Invite)`.
    pub fn server_with_method(m: &Message<'_>, method: Method<'_>) -> Result<TxnKey, TxnError> {
        let via = m.top_via()?.ok_or(TxnError::MissingHeader("Via"))?;
        let (seq, _) = method_of_cseq(m)?;
        if via.has_rfc3261_branch() {
            let branch = via.branch().unwrap_or(MAGIC_COOKIE);
            // `host[:port]`, host lowercased
            return Ok(Self::build(Side::Server, method.as_str(), branch, |t| {
                let start = t.len();
                match via.host() {
                    Host::Domain(d) => t.extend_from_slice(d.as_bytes()),
                    Host::Ipv4(a) => push_ipv4(t, a),
                    Host::Ipv6(s) => {
                        t.push(b'[');
                        t.extend_from_slice(s.as_bytes());
                        t.push(b']');
                    }
                }
                t[start..].make_ascii_lowercase();
                if let Some(p) = via.port() {
                    t.push(b':');
                    push_u16_bytes(t, p);
                }
            }));
        }
        // RFC 3261 §17.2.3, RFC 2543 compatibility
        let from_tag = m.from()?.and_then(|f| f.tag()).unwrap_or("");
        let call_id = m.call_id()?.ok_or(TxnError::MissingHeader("Call-ID"))?;
        let ruri = m.request_uri_str().unwrap_or("");
        let top_via = via.to_string();
        let packed = format!(
            "2543|{ruri}|{from_tag}|{}|{seq}|{top_via}",
            call_id.as_str()
        );
        Ok(Self::build(Side::Server, method.as_str(), &packed, |_| {}))
    }

    /// True for the INVITE transactions (client or server).
    pub fn is_invite(&self) -> bool {
        self.method() == "INVITE"
    }
}

/// Appends the dotted quad of `a` (what `Ipv4Addr`'s `Display` writes).
fn push_ipv4(t: &mut SmallVec<[u8; 64]>, a: std::net::Ipv4Addr) {
    for (i, o) in a.octets().into_iter().enumerate() {
        if i > 0 {
            t.push(b'.');
        }
        if o >= 100 {
            t.push(b'0' + o / 100);
        }
        if o >= 10 {
            t.push(b'0' + o / 10 % 10);
        }
        t.push(b'0' + o % 10);
    }
}

/// Appends the decimal digits of `n`.
fn push_u16_bytes(t: &mut SmallVec<[u8; 64]>, n: u16) {
    t.extend_from_slice(ims_sip::decimal(&mut [0; 20], u64::from(n)));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_written_in_decimal() {
        for n in [0u16, 7, 9, 10, 99, 100, 5060, 9999, 10000, 65535] {
            let mut s = SmallVec::<[u8; 64]>::from_slice(b"h:");
            push_u16_bytes(&mut s, n);
            assert_eq!(&s[..], format!("h:{n}").as_bytes());
        }
    }

    #[test]
    fn server_keys_lowercase_the_sent_by() {
        let raw = b"OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP PC33.Example.COM:5066;branch=z9hG4bK1\r\n\
To: <sip:a@b>\r\nFrom: <sip:c@d>;tag=1\r\nCall-ID: x\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n";
        let m = ims_sip::parse_datagram(raw).unwrap();
        let k = TxnKey::server(&m).unwrap();
        assert_eq!(k.sent_by(), "pc33.example.com:5066");
        let raw = b"OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.10;branch=z9hG4bK1\r\n\
To: <sip:a@b>\r\nFrom: <sip:c@d>;tag=1\r\nCall-ID: x\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n";
        let m = ims_sip::parse_datagram(raw).unwrap();
        assert_eq!(TxnKey::server(&m).unwrap().sent_by(), "192.0.2.10");
    }

    fn request(method: &str, via: &str, cseq: &str) -> Vec<u8> {
        format!(
            "{method} sip:a@b SIP/2.0\r\nVia: {via}\r\nTo: <sip:a@b>\r\nFrom: <sip:c@d>;tag=1\r\n\
Call-ID: x\r\nCSeq: {cseq}\r\nContent-Length: 0\r\n\r\n"
        )
        .into_bytes()
    }

    fn server_key(method: &str, via: &str, cseq: &str) -> TxnKey {
        let raw = request(method, via, cseq);
        TxnKey::server(&ims_sip::parse_datagram(&raw).unwrap()).unwrap()
    }

    fn hash_of(k: &TxnKey) -> u64 {
        use std::hash::BuildHasher;
        // one fixed hasher for every call (a `RandomState` each time would differ)
        std::hash::BuildHasherDefault::<std::collections::hash_map::DefaultHasher>::default()
            .hash_one(k)
    }

    #[test]
    fn server_keys_match_as_rfc_3261_17_2_3_says() {
        let via = "SIP/2.0/UDP Host.Example.com:5060;branch=z9hG4bK-abc";
        let inv = server_key("INVITE", via, "1 INVITE");
        assert_eq!(inv.side(), Side::Server);
        assert_eq!(inv.method(), "INVITE");
        assert_eq!(inv.branch(), "z9hG4bK-abc");
        assert_eq!(inv.sent_by(), "host.example.com:5060");
        assert!(inv.is_invite());
        // the ACK of a non-2xx final response matches the INVITE (method ACK counted as INVITE)
        let ack = server_key("ACK", via, "1 ACK");
        assert_eq!(ack, inv);
        assert_eq!(hash_of(&ack), hash_of(&inv));
        // the sent-by host compares case-insensitively, the rest does not change the key
        let other_case = server_key(
            "INVITE",
            "SIP/2.0/UDP HOST.example.COM:5060;branch=z9hG4bK-abc;rport",
            "1 INVITE",
        );
        assert_eq!(other_case, inv);
        // a CANCEL has its own transaction and targets the INVITE's
        let cancel = server_key("CANCEL", via, "1 CANCEL");
        assert_ne!(cancel, inv);
        let raw = request("CANCEL", via, "1 CANCEL");
        let m = ims_sip::parse_datagram(&raw).unwrap();
        assert_eq!(TxnKey::server_with_method(&m, Method::Invite).unwrap(), inv);
        // branch (case-sensitive), sent-by host or port, method: different transactions
        for (method, via) in [
            (
                "INVITE",
                "SIP/2.0/UDP host.example.com:5060;branch=z9hG4bK-ABC",
            ),
            (
                "INVITE",
                "SIP/2.0/UDP host.example.com:5061;branch=z9hG4bK-abc",
            ),
            ("INVITE", "SIP/2.0/UDP host.example.com;branch=z9hG4bK-abc"),
            (
                "INVITE",
                "SIP/2.0/UDP host.example.net:5060;branch=z9hG4bK-abc",
            ),
            ("OPTIONS", via),
        ] {
            let k = server_key(method, via, &format!("1 {method}"));
            assert_ne!(k, inv, "{method} {via}");
        }
        // a client key of the same branch and method is another transaction
        let raw = request("INVITE", via, "1 INVITE");
        let c = TxnKey::client(&ims_sip::parse_datagram(&raw).unwrap()).unwrap();
        assert_eq!(
            (c.side(), c.method(), c.branch(), c.sent_by()),
            (Side::Client, "INVITE", "z9hG4bK-abc", "")
        );
        assert_ne!(c, inv);
    }

    #[test]
    fn rfc_2543_requests_are_matched_on_the_packed_identity() {
        let via = "SIP/2.0/UDP host.example.com:5060;branch=1234";
        let inv = server_key("INVITE", via, "7 INVITE");
        assert_eq!(inv.sent_by(), "");
        assert!(
            inv.branch().starts_with("2543|sip:a@b|1|x|7|"),
            "{}",
            inv.branch()
        );
        assert!(inv.branch().ends_with("branch=1234"), "{}", inv.branch());
        assert_eq!(server_key("ACK", via, "7 ACK"), inv);
        assert_ne!(server_key("INVITE", via, "8 INVITE"), inv);
        // no branch at all
        let bare = server_key("INVITE", "SIP/2.0/UDP host.example.com:5060", "7 INVITE");
        assert_ne!(bare, inv);
        // a bare magic cookie is not an RFC 3261 branch (RFC 4475 §3.2.1)
        let cookie = server_key("INVITE", "SIP/2.0/UDP h;branch=z9hG4bK", "7 INVITE");
        assert!(cookie.branch().starts_with("2543|"));
    }

    #[test]
    fn ip_hosts_are_written_as_their_text() {
        for (via, sent_by) in [
            ("SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKa", "10.0.0.1:5060"),
            ("SIP/2.0/UDP 255.100.9.0;branch=z9hG4bKa", "255.100.9.0"),
            (
                "SIP/2.0/UDP [2001:DB8::1]:5060;branch=z9hG4bKa",
                "[2001:db8::1]:5060",
            ),
            ("SIP/2.0/UDP h:0;branch=z9hG4bKa", "h:0"),
            ("SIP/2.0/UDP h:65535;branch=z9hG4bKa", "h:65535"),
        ] {
            assert_eq!(server_key("INFO", via, "1 INFO").sent_by(), sent_by);
        }
    }

    proptest::proptest! {
        /// Two keys are equal exactly when their side, method, branch and sent-by are, inline or
        /// not (long branches leave the inline buffer), and equal keys hash equal.
        #[test]
        fn keys_are_equal_when_their_parts_are(
            a in "[a-zA-Z0-9.!%*_+`'~-]{1,12}",
            b in "[a-zA-Z0-9.!%*_+`'~-]{1,12}",
            long in 0usize..3,
            host in "[a-zA-Z]([a-zA-Z0-9-]{0,18}[a-zA-Z0-9])?",
            port in proptest::option::of(0u16..),
            methods in (0usize..4, 0usize..4),
            sides in (proptest::bool::ANY, proptest::bool::ANY),
            same_branch in proptest::bool::ANY,
        ) {
            let ms = ["INVITE", "REGISTER", "ACK", "BYE"];
            let branch_a = format!("z9hG4bK{a}{}", "x".repeat(long * 40));
            let branch_b = if same_branch { branch_a.clone() } else { format!("z9hG4bK{b}") };
            let port_s = port.map(|p| format!(":{p}")).unwrap_or_default();
            let mut keys = Vec::new();
            for (branch, method, client) in [
                (&branch_a, ms[methods.0], sides.0),
                (&branch_b, ms[methods.1], sides.1),
            ] {
                let via = format!("SIP/2.0/UDP {host}{port_s};branch={branch}");
                let raw = request(method, &via, &format!("1 {method}"));
                let m = ims_sip::parse_datagram(&raw).unwrap();
                let k = if client { TxnKey::client(&m) } else { TxnKey::server(&m) }.unwrap();
                let expect_method = if !client && method == "ACK" { "INVITE" } else { method };
                proptest::prop_assert_eq!(k.method(), expect_method);
                proptest::prop_assert_eq!(k.branch(), branch.as_str());
                let sent_by = if client { String::new() } else { format!("{}{port_s}", host.to_ascii_lowercase()) };
                proptest::prop_assert_eq!(k.sent_by(), sent_by.as_str());
                keys.push(k);
            }
            let parts = |k: &TxnKey| (k.side(), k.method().to_owned(), k.branch().to_owned(), k.sent_by().to_owned());
            proptest::prop_assert_eq!(keys[0] == keys[1], parts(&keys[0]) == parts(&keys[1]));
            if keys[0] == keys[1] {
                proptest::prop_assert_eq!(hash_of(&keys[0]), hash_of(&keys[1]));
            }
            let copy = keys[0].clone();
            proptest::prop_assert_eq!(&copy, &keys[0]);
            proptest::prop_assert_eq!(hash_of(&copy), hash_of(&keys[0]));
        }
    }
}
