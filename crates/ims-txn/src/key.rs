//! Transaction identification and matching (RFC 3261 §17.1.3, §17.2.3, RFC 2543 fallback).

use crate::error::TxnError;
use ims_sip::headers::MAGIC_COOKIE;
use ims_sip::{Message, Method};
use std::fmt::{self, Write as _};
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
        Some(match s.to_ascii_uppercase().as_str() {
            "UDP" => Transport::Udp,
            "TCP" => Transport::Tcp,
            "TLS" => Transport::Tls,
            "SCTP" => Transport::Sctp,
            "WS" => Transport::Ws,
            "WSS" => Transport::Wss,
            _ => return None,
        })
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
///   whole top Via, packed into `branch`; the To tag is checked by the layer for ACK.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TxnKey {
    /// Client or server.
    pub side: Side,
    /// The branch (or the packed RFC 2543 identity).
    pub branch: Box<str>,
    /// The method of the transaction (INVITE for an ACK to a non-2xx).
    pub method: Box<str>,
    /// The top Via sent-by (`host:port`, host lowercased), server side only.
    pub sent_by: Box<str>,
}

impl fmt::Display for TxnKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let side = match self.side {
            Side::Client => "client",
            Side::Server => "server",
        };
        write!(f, "{side} {} {}", self.method, self.branch)?;
        if !self.sent_by.is_empty() {
            write!(f, " {}", self.sent_by)?;
        }
        Ok(())
    }
}

fn method_of_cseq<'a>(m: &Message<'a>) -> Result<(u32, Method<'a>), TxnError> {
    let c = m.cseq()?.ok_or(TxnError::MissingHeader("CSeq"))?;
    Ok((c.seq, c.method))
}

impl TxnKey {
    /// The client key of a request the TU sends, or of a response received for it.
    pub fn client(m: &Message<'_>) -> Result<TxnKey, TxnError> {
        let via = m.top_via()?.ok_or(TxnError::MissingHeader("Via"))?;
        let branch = via.branch().ok_or(TxnError::MissingHeader("Via branch"))?;
        let (_, method) = method_of_cseq(m)?;
        Ok(TxnKey {
            side: Side::Client,
            branch: branch.into(),
            method: method.as_str().into(),
            sent_by: "".into(),
        })
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
            // `host[:port]`, host lowercased, written once (every request builds one)
            let mut sent_by = String::with_capacity(24);
            let _ = write!(sent_by, "{}", via.host());
            sent_by.make_ascii_lowercase();
            if let Some(p) = via.port() {
                sent_by.push(':');
                push_u16(&mut sent_by, p);
            }
            return Ok(TxnKey {
                side: Side::Server,
                branch: branch.into(),
                method: method.as_str().into(),
                sent_by: sent_by.into(),
            });
        }
        // RFC 3261 §17.2.3, RFC 2543 compatibility
        let from_tag = m.from()?.and_then(|f| f.tag()).unwrap_or("");
        let call_id = m.call_id()?.ok_or(TxnError::MissingHeader("Call-ID"))?;
        let ruri = m.request_uri_str().unwrap_or("");
        let top_via = via.to_string();
        Ok(TxnKey {
            side: Side::Server,
            branch: format!(
                "2543|{ruri}|{from_tag}|{}|{seq}|{top_via}",
                call_id.as_str()
            )
            .into(),
            method: method.as_str().into(),
            sent_by: "".into(),
        })
    }

    /// True for the INVITE transactions (client or server).
    pub fn is_invite(&self) -> bool {
        &*self.method == "INVITE"
    }
}

/// Appends the decimal digits of `n` (no formatting machinery: keys are built per request).
pub(crate) fn push_u16(s: &mut String, n: u16) {
    let mut buf = [0u8; 5];
    let mut i = buf.len();
    let mut n = n;
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    s.extend(buf[i..].iter().map(|&c| char::from(c)));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_written_in_decimal() {
        for n in [0u16, 7, 9, 10, 99, 100, 5060, 9999, 10000, 65535] {
            let mut s = String::from("h:");
            push_u16(&mut s, n);
            assert_eq!(s, format!("h:{n}"));
        }
    }

    #[test]
    fn server_keys_lowercase_the_sent_by() {
        let raw = b"OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP PC33.Example.COM:5066;branch=z9hG4bK1\r\n\
To: <sip:a@b>\r\nFrom: <sip:c@d>;tag=1\r\nCall-ID: x\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n";
        let m = ims_sip::parse_datagram(raw).unwrap();
        let k = TxnKey::server(&m).unwrap();
        assert_eq!(&*k.sent_by, "pc33.example.com:5066");
        let raw = b"OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.10;branch=z9hG4bK1\r\n\
To: <sip:a@b>\r\nFrom: <sip:c@d>;tag=1\r\nCall-ID: x\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n";
        let m = ims_sip::parse_datagram(raw).unwrap();
        assert_eq!(&*TxnKey::server(&m).unwrap().sent_by, "192.0.2.10");
    }
}
