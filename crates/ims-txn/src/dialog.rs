//! Dialog state (RFC 3261 §12): creation on the UAC and UAS sides, route sets from
//! Record-Route, remote target refresh, local/remote CSeq rules and in-dialog request building
//! with loose and strict routing.
//!
//! A [`Dialog`] is plain data; the UA core ([`crate::ua`]) keeps one per dialog and drives it.

use crate::TxnError;
use ims_sip::headers::{Contact, RecordRoute};
use ims_sip::{HeaderName, Message, Method, RequestBuilder, Uri};
use std::fmt;

/// Dialog identifier (RFC 3261 §12): Call-ID, local tag, remote tag.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DialogId {
    /// Call-ID.
    pub call_id: String,
    /// Our tag (From tag on the UAC side, To tag on the UAS side).
    pub local_tag: String,
    /// The peer's tag.
    pub remote_tag: String,
}

impl fmt::Display for DialogId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{};l={};r={}",
            self.call_id, self.local_tag, self.remote_tag
        )
    }
}

impl DialogId {
    /// The id of the dialog a received request belongs to (To tag is ours).
    pub fn of_received_request(m: &Message<'_>) -> Option<DialogId> {
        Some(DialogId {
            call_id: m.call_id().ok()??.as_str().to_owned(),
            local_tag: m.to_tag()?.to_owned(),
            remote_tag: m.from_tag()?.to_owned(),
        })
    }
    /// The id of the dialog a received response belongs to (From tag is ours).
    pub fn of_received_response(m: &Message<'_>) -> Option<DialogId> {
        Some(DialogId {
            call_id: m.call_id().ok()??.as_str().to_owned(),
            local_tag: m.from_tag()?.to_owned(),
            remote_tag: m.to_tag()?.to_owned(),
        })
    }
}

/// Dialog state (RFC 3261 §12).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DialogState {
    /// Created by a provisional response with a To tag.
    Early,
    /// Created or confirmed by a 2xx.
    Confirmed,
    /// Ended (BYE, non-2xx to the INVITE, timeout).
    Terminated,
}

/// One dialog (RFC 3261 §12.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dialog {
    /// Identifier.
    pub id: DialogId,
    /// Early, confirmed or terminated.
    pub state: DialogState,
    /// True when we sent the dialog-creating request.
    pub is_uac: bool,
    /// Local CSeq: the last one we used (`None` until we send a request, UAS side).
    pub local_seq: Option<u32>,
    /// Remote CSeq: the last one received (`None` until the peer sends a request, UAC side).
    pub remote_seq: Option<u32>,
    /// Our From/To value, with our tag.
    pub local: String,
    /// The peer's From/To value, with its tag.
    pub remote: String,
    /// The remote target: the URI of the peer's Contact.
    pub remote_target: String,
    /// The route set, in the order the Route header lists it.
    pub route_set: Vec<String>,
    /// The dialog was created over sips (RFC 3261 §12.1.1).
    pub secure: bool,
}

fn contact_uri(m: &Message<'_>) -> Option<String> {
    match m.get::<Contact<'_>>().ok()?? {
        Contact::Addr(a) => Some(a.uri().as_str().to_owned()),
        Contact::Star => None,
    }
}

fn record_routes(m: &Message<'_>) -> Result<Vec<String>, TxnError> {
    m.get_all::<RecordRoute<'_>>()
        .map(|r| r.map(|r| r.to_string()).map_err(TxnError::Parse))
        .collect()
}

/// Whether a Route value (a `name-addr`) is a loose router (`;lr`).
pub fn is_loose(route: &str) -> bool {
    ims_sip::headers::NameAddrHeader::parse(route)
        .ok()
        .and_then(|r| r.uri().as_sip().map(|s| s.lr()))
        .unwrap_or(false)
}

/// The URI inside a Route value (`<sip:p1.example.com;lr>` → `sip:p1.example.com;lr`).
pub fn route_uri(route: &str) -> String {
    ims_sip::headers::NameAddrHeader::parse(route)
        .map(|r| r.uri().as_str().to_owned())
        .unwrap_or_else(|_| route.trim_matches(|c| c == '<' || c == '>').to_owned())
}

/// A strict router's URI as a Request-URI (RFC 3261 §12.2.1.1 removes the parameters not allowed
/// there; per the §19.1.1 table those are the `method` parameter and the headers part).
fn strict_request_uri(uri: &str) -> String {
    let no_headers = uri.split('?').next().unwrap_or(uri);
    no_headers
        .split(';')
        .filter(|p| !p.to_ascii_lowercase().starts_with("method="))
        .collect::<Vec<_>>()
        .join(";")
}

impl Dialog {
    /// UAC side (RFC 3261 §12.1.2): our request and a response with a To tag (101–199 or 2xx).
    pub fn uac(request: &Message<'_>, response: &Message<'_>) -> Result<Dialog, TxnError> {
        let id = DialogId::of_received_response(response).ok_or(TxnError::Dialog(
            "response without Call-ID, From tag or To tag",
        ))?;
        let code = response.status().ok_or(TxnError::NotAResponse)?;
        let mut route_set = record_routes(response)?;
        route_set.reverse();
        let seq = request.cseq()?.ok_or(TxnError::MissingHeader("CSeq"))?.seq;
        let remote_target = contact_uri(response)
            .or_else(|| request.request_uri_str().map(str::to_owned))
            .unwrap_or_default();
        Ok(Dialog {
            id,
            state: if code < 200 {
                DialogState::Early
            } else {
                DialogState::Confirmed
            },
            is_uac: true,
            local_seq: Some(seq),
            remote_seq: None,
            local: request
                .header(HeaderName::From)
                .ok_or(TxnError::MissingHeader("From"))?
                .to_owned(),
            remote: response
                .header(HeaderName::To)
                .ok_or(TxnError::MissingHeader("To"))?
                .to_owned(),
            remote_target,
            route_set,
            secure: request
                .request_uri()
                .is_some_and(|u| u.scheme().eq_ignore_ascii_case("sips")),
        })
    }

    /// UAS side (RFC 3261 §12.1.1): the received request and the To tag we answer with.
    /// `early` for a 101–199 answer, confirmed for a 2xx.
    pub fn uas(request: &Message<'_>, local_tag: &str, early: bool) -> Result<Dialog, TxnError> {
        let call_id = request
            .call_id()?
            .ok_or(TxnError::MissingHeader("Call-ID"))?;
        let from = request.from()?.ok_or(TxnError::MissingHeader("From"))?;
        let remote_tag = from
            .tag()
            .ok_or(TxnError::Dialog("request without From tag"))?;
        let seq = request.cseq()?.ok_or(TxnError::MissingHeader("CSeq"))?.seq;
        let to = request
            .header(HeaderName::To)
            .ok_or(TxnError::MissingHeader("To"))?;
        let local = if request.to()?.and_then(|t| t.tag()).is_some() {
            to.to_owned()
        } else {
            format!("{to};tag={local_tag}")
        };
        Ok(Dialog {
            id: DialogId {
                call_id: call_id.as_str().to_owned(),
                local_tag: local_tag.to_owned(),
                remote_tag: remote_tag.to_owned(),
            },
            state: if early {
                DialogState::Early
            } else {
                DialogState::Confirmed
            },
            is_uac: false,
            local_seq: None,
            remote_seq: Some(seq),
            local,
            remote: request
                .header(HeaderName::From)
                .ok_or(TxnError::MissingHeader("From"))?
                .to_owned(),
            remote_target: contact_uri(request).unwrap_or_default(),
            route_set: record_routes(request)?,
            secure: request
                .request_uri()
                .is_some_and(|u| u.scheme().eq_ignore_ascii_case("sips")),
        })
    }

    /// A response in this dialog on the UAC side: a 2xx confirms an early dialog and recomputes
    /// its route set (RFC 3261 §13.2.2.4); a Contact refreshes the remote target (§12.2.1.2).
    pub fn on_response(&mut self, response: &Message<'_>) -> Result<(), TxnError> {
        let code = response.status().ok_or(TxnError::NotAResponse)?;
        let method = response.cseq()?.map(|c| c.method);
        if (200..300).contains(&code) && self.state == DialogState::Early && self.is_uac {
            self.state = DialogState::Confirmed;
            let mut rs = record_routes(response)?;
            rs.reverse();
            self.route_set = rs;
            self.remote = response
                .header(HeaderName::To)
                .unwrap_or(&self.remote)
                .to_owned();
        }
        let refresh = matches!(method, Some(Method::Invite | Method::Update));
        if (refresh && code < 300) || self.state == DialogState::Early {
            if let Some(c) = contact_uri(response) {
                self.remote_target = c;
            }
        }
        Ok(())
    }

    /// A request received in this dialog (RFC 3261 §12.2.2): CSeq order and target refresh.
    /// `Err(500)` for a request out of order.
    pub fn on_request(&mut self, request: &Message<'_>) -> Result<(), u16> {
        let cseq = request.cseq().ok().flatten().ok_or(400u16)?;
        if cseq.method != Method::Ack && cseq.method != Method::Cancel {
            if let Some(r) = self.remote_seq {
                if cseq.seq < r {
                    return Err(500);
                }
            }
            self.remote_seq = Some(cseq.seq);
        }
        if matches!(cseq.method, Method::Invite | Method::Update) {
            if let Some(c) = contact_uri(request) {
                self.remote_target = c;
            }
        }
        Ok(())
    }

    /// The next local CSeq (RFC 3261 §12.2.1.1: one more than the last, starting at 1 on the UAS
    /// side).
    pub fn next_seq(&mut self) -> u32 {
        let n = self.local_seq.map_or(1, |s| s.wrapping_add(1));
        self.local_seq = Some(n);
        n
    }

    /// Request-URI and Route values for a request in this dialog (RFC 3261 §12.2.1.1): loose
    /// routing keeps the remote target as Request-URI; a strict router in front takes the
    /// Request-URI and the remote target goes last in Route.
    pub fn target_and_routes(&self) -> (String, Vec<String>) {
        match self.route_set.first() {
            None => (self.remote_target.clone(), Vec::new()),
            Some(first) if is_loose(first) => (self.remote_target.clone(), self.route_set.clone()),
            Some(first) => {
                let mut routes: Vec<String> = self.route_set[1..].to_vec();
                routes.push(format!("<{}>", self.remote_target));
                (strict_request_uri(&route_uri(first)), routes)
            }
        }
    }

    /// The URI the next hop is resolved from (RFC 3261 §8.1.2): the first Route, else the
    /// Request-URI.
    pub fn next_hop_uri(&self) -> String {
        let (ruri, routes) = self.target_and_routes();
        routes.first().map(|r| route_uri(r)).unwrap_or(ruri)
    }

    /// Starts a request in this dialog (RFC 3261 §12.2.1.1) with the given CSeq number: start
    /// line, Route, From, To, Call-ID, CSeq and Max-Forwards. The caller adds Via (with a new
    /// branch), Contact and the body.
    pub fn request(&self, method: Method<'_>, seq: u32) -> RequestBuilder {
        let (ruri, routes) = self.target_and_routes();
        let mut b = RequestBuilder::new(method, &ruri);
        for r in &routes {
            b = b.header("Route", r);
        }
        b.header("Max-Forwards", 70)
            .header("From", &self.local)
            .header("To", &self.remote)
            .header("Call-ID", &self.id.call_id)
            .header("CSeq", format_args!("{seq} {method}"))
    }

    /// The URI of the remote target, parsed.
    pub fn remote_target_uri(&self) -> Option<Uri<'_>> {
        Uri::parse(&self.remote_target).ok()
    }
}
