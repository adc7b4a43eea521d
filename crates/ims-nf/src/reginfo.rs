//! The registration event package body (RFC 3680 §5, `application/reginfo+xml`): what the S-CSCF
//! NOTIFYs to the UE and the P-CSCF on every registration change (TS 24.229 §5.4.2.1.2), and what
//! they parse to learn of a network de-registration.

use crate::xml::{escape, Element, XmlError, XmlLimits};
use std::fmt::Write as _;

/// `<reginfo>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegInfo {
    /// `version`: incremented by one for every NOTIFY of a subscription.
    pub version: u32,
    /// `state`: `full` or `partial`.
    pub full: bool,
    /// `<registration>` elements.
    pub registrations: Vec<Registration>,
}

/// `<registration>`: one address-of-record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    /// `aor`.
    pub aor: String,
    /// `id`.
    pub id: String,
    /// `state`.
    pub state: RegistrationState,
    /// `<contact>` elements.
    pub contacts: Vec<ContactInfo>,
}

/// Registration `state` (RFC 3680 §5.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegistrationState {
    /// `init`: no active contacts yet.
    Init,
    /// `active`: at least one active contact.
    Active,
    /// `terminated`: no longer registered.
    Terminated,
}

/// `<contact>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactInfo {
    /// `id`.
    pub id: String,
    /// `state`: true for `active`, false for `terminated`.
    pub active: bool,
    /// `event` that brought it to this state.
    pub event: ContactEvent,
    /// `expires` (seconds).
    pub expires: Option<u64>,
    /// `<uri>`.
    pub uri: String,
    /// `<display-name>`.
    pub display_name: Option<String>,
    /// `<unknown-param name="…">value</unknown-param>`: contact parameters such as
    /// `+sip.instance` (values as written, quotes included).
    pub unknown_params: Vec<(String, String)>,
}

/// Contact `event` (RFC 3680 §5.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContactEvent {
    /// `registered`.
    Registered,
    /// `created`.
    Created,
    /// `refreshed`.
    Refreshed,
    /// `shortened`.
    Shortened,
    /// `expired`.
    Expired,
    /// `deactivated`: the network asks the UE to re-register.
    Deactivated,
    /// `probation`.
    Probation,
    /// `unregistered`.
    Unregistered,
    /// `rejected`.
    Rejected,
}

impl RegistrationState {
    fn as_str(self) -> &'static str {
        match self {
            RegistrationState::Init => "init",
            RegistrationState::Active => "active",
            RegistrationState::Terminated => "terminated",
        }
    }
}

impl ContactEvent {
    /// The attribute value.
    pub fn as_str(self) -> &'static str {
        match self {
            ContactEvent::Registered => "registered",
            ContactEvent::Created => "created",
            ContactEvent::Refreshed => "refreshed",
            ContactEvent::Shortened => "shortened",
            ContactEvent::Expired => "expired",
            ContactEvent::Deactivated => "deactivated",
            ContactEvent::Probation => "probation",
            ContactEvent::Unregistered => "unregistered",
            ContactEvent::Rejected => "rejected",
        }
    }
    fn parse(s: &str) -> Option<ContactEvent> {
        Some(match s {
            "registered" => ContactEvent::Registered,
            "created" => ContactEvent::Created,
            "refreshed" => ContactEvent::Refreshed,
            "shortened" => ContactEvent::Shortened,
            "expired" => ContactEvent::Expired,
            "deactivated" => ContactEvent::Deactivated,
            "probation" => ContactEvent::Probation,
            "unregistered" => ContactEvent::Unregistered,
            "rejected" => ContactEvent::Rejected,
            _ => return None,
        })
    }
}

fn attr<'e>(el: &'e Element, name: &'static str) -> Result<&'e str, XmlError> {
    el.attr(name).ok_or_else(|| XmlError::Missing {
        parent: el.name.clone(),
        child: name,
    })
}

fn invalid(element: &str, value: &str) -> XmlError {
    XmlError::Value {
        element: element.to_string(),
        value: value.to_string(),
    }
}

impl RegInfo {
    /// The MIME type of the body.
    pub const CONTENT_TYPE: &'static str = "application/reginfo+xml";

    /// Parses a reginfo document.
    pub fn parse(doc: &[u8]) -> Result<RegInfo, XmlError> {
        let root = Element::parse(doc, &XmlLimits::default())?;
        if root.name != "reginfo" {
            return Err(XmlError::Root {
                expected: "reginfo",
                found: root.name,
            });
        }
        let version = attr(&root, "version")?;
        let version = version
            .parse()
            .map_err(|_| invalid("reginfo version", version))?;
        let full = match attr(&root, "state")? {
            "full" => true,
            "partial" => false,
            v => return Err(invalid("reginfo state", v)),
        };
        let mut registrations = Vec::new();
        for r in root.children_named("registration") {
            let state = match attr(r, "state")? {
                "init" => RegistrationState::Init,
                "active" => RegistrationState::Active,
                "terminated" => RegistrationState::Terminated,
                v => return Err(invalid("registration state", v)),
            };
            let mut contacts = Vec::new();
            for c in r.children_named("contact") {
                let active = match attr(c, "state")? {
                    "active" => true,
                    "terminated" => false,
                    v => return Err(invalid("contact state", v)),
                };
                let ev = attr(c, "event")?;
                let expires = match c.attr("expires") {
                    None => None,
                    Some(v) => Some(v.parse().map_err(|_| invalid("contact expires", v))?),
                };
                contacts.push(ContactInfo {
                    id: attr(c, "id")?.to_string(),
                    active,
                    event: ContactEvent::parse(ev).ok_or_else(|| invalid("contact event", ev))?,
                    expires,
                    uri: c.required_text("uri")?.to_string(),
                    display_name: c.child_text("display-name").map(str::to_string),
                    unknown_params: c
                        .children_named("unknown-param")
                        .map(|p| (p.attr("name").unwrap_or("").to_string(), p.text.clone()))
                        .collect(),
                });
            }
            registrations.push(Registration {
                aor: attr(r, "aor")?.to_string(),
                id: attr(r, "id")?.to_string(),
                state,
                contacts,
            });
        }
        Ok(RegInfo {
            version,
            full,
            registrations,
        })
    }

    /// Writes the document.
    pub fn to_xml(&self) -> String {
        let mut o = String::with_capacity(256 + 256 * self.registrations.len());
        let _ = write!(
            o,
            "<?xml version=\"1.0\"?>\r\n<reginfo xmlns=\"urn:ietf:params:xml:ns:reginfo\" version=\"{}\" state=\"{}\">\r\n",
            self.version,
            if self.full { "full" } else { "partial" }
        );
        for r in &self.registrations {
            let _ = write!(
                o,
                "  <registration aor=\"{}\" id=\"{}\" state=\"{}\">\r\n",
                escape(&r.aor),
                escape(&r.id),
                r.state.as_str()
            );
            for c in &r.contacts {
                let _ = write!(
                    o,
                    "    <contact id=\"{}\" state=\"{}\" event=\"{}\"",
                    escape(&c.id),
                    if c.active { "active" } else { "terminated" },
                    c.event.as_str()
                );
                if let Some(e) = c.expires {
                    let _ = write!(o, " expires=\"{e}\"");
                }
                let _ = write!(o, ">\r\n      <uri>{}</uri>\r\n", escape(&c.uri));
                if let Some(d) = &c.display_name {
                    let _ = write!(o, "      <display-name>{}</display-name>\r\n", escape(d));
                }
                for (n, v) in &c.unknown_params {
                    let _ = write!(
                        o,
                        "      <unknown-param name=\"{}\">{}</unknown-param>\r\n",
                        escape(n),
                        escape(v)
                    );
                }
                o.push_str("    </contact>\r\n");
            }
            o.push_str("  </registration>\r\n");
        }
        o.push_str("</reginfo>\r\n");
        o
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 3680 §6 example (the first NOTIFY body).
    const RFC3680: &str = r#"<?xml version="1.0"?>
<reginfo xmlns="urn:ietf:params:xml:ns:reginfo" version="0" state="full">
  <registration aor="sip:joe@example.com" id="a7" state="active">
    <contact id="76" state="active" event="registered" duration-registered="7322" q="0.8">
      <uri>sip:joe@pc887.example.com</uri>
    </contact>
    <contact id="77" state="terminated" event="expired" duration-registered="3600">
      <uri>sip:joe@university.edu</uri>
    </contact>
  </registration>
</reginfo>"#;

    #[test]
    fn parses_the_rfc_example_and_round_trips() {
        let r = RegInfo::parse(RFC3680.as_bytes()).unwrap();
        assert!(r.full);
        assert_eq!(r.version, 0);
        let reg = &r.registrations[0];
        assert_eq!(reg.aor, "sip:joe@example.com");
        assert_eq!(reg.state, RegistrationState::Active);
        assert_eq!(reg.contacts.len(), 2);
        assert!(reg.contacts[0].active);
        assert_eq!(reg.contacts[1].event, ContactEvent::Expired);
        assert_eq!(reg.contacts[1].uri, "sip:joe@university.edu");
        let again = RegInfo::parse(r.to_xml().as_bytes()).unwrap();
        assert_eq!(r, again);
    }

    #[test]
    fn ims_notify_with_instance_round_trips() {
        let r = RegInfo {
            version: 3,
            full: false,
            registrations: vec![Registration {
                aor: "sip:+15550001@ims.example.org".into(),
                id: "r1".into(),
                state: RegistrationState::Terminated,
                contacts: vec![ContactInfo {
                    id: "c1".into(),
                    active: false,
                    event: ContactEvent::Deactivated,
                    expires: Some(0),
                    uri: "sip:+15550001@10.0.0.1:5060".into(),
                    display_name: Some("A & B".into()),
                    unknown_params: vec![(
                        "+sip.instance".into(),
                        "\"<urn:gsma:imei:35209900-176148-0>\"".into(),
                    )],
                }],
            }],
        };
        let xml = r.to_xml();
        assert!(xml.contains("&lt;urn:gsma:imei"));
        assert_eq!(RegInfo::parse(xml.as_bytes()).unwrap(), r);
        assert!(RegInfo::parse(xml.replace("deactivated", "gone").as_bytes()).is_err());
    }
}
