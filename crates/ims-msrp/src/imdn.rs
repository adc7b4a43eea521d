//! IMDN (RFC 5438): the `Disposition-Notification` CPIM header and the
//! `message/imdn+xml` notification body.
//!
//! ```
//! use ims_msrp::imdn::{Imdn, Notification};
//! let n = Imdn {
//!     message_id: "Xs8Kq2Lm0p".into(),
//!     datetime: "2024-05-01T10:20:31.000Z".into(),
//!     recipient_uri: Some("sip:+15551230002@ims.example.net".into()),
//!     original_recipient_uri: None,
//!     notification: Notification::Delivery,
//!     status: "delivered".into(),
//! };
//! let xml = n.to_xml();
//! assert_eq!(Imdn::parse(&xml)?, n);
//! # Ok::<(), ims_msrp::Error>(())
//! ```

use crate::error::{Error, ErrorKind};

/// The IMDN name space (CPIM `NS: imdn <urn:ietf:params:imdn>`).
pub const NS: &str = "urn:ietf:params:imdn";
/// The XML name space of the body.
pub const XMLNS: &str = "urn:ietf:params:xml:ns:imdn";
/// The Content-Type of a notification.
pub const CONTENT_TYPE: &str = "message/imdn+xml";

/// Which notification (RFC 5438 §7.2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Notification {
    /// `<delivery-notification>`: delivered, failed, forbidden, error.
    Delivery,
    /// `<display-notification>`: displayed, forbidden, error.
    Display,
    /// `<processing-notification>`: processed, stored, forbidden, error.
    Processing,
}

impl Notification {
    fn tag(self) -> &'static str {
        match self {
            Notification::Delivery => "delivery-notification",
            Notification::Display => "display-notification",
            Notification::Processing => "processing-notification",
        }
    }
}

/// The values of `Disposition-Notification` (RFC 5438 §6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Disposition {
    /// `positive-delivery`.
    pub positive_delivery: bool,
    /// `negative-delivery`.
    pub negative_delivery: bool,
    /// `display`.
    pub display: bool,
    /// `processing`.
    pub processing: bool,
}

impl Disposition {
    /// Parses the comma-separated list (unknown values are ignored, as RFC 5438 §6.3 allows).
    pub fn parse(s: &str) -> Disposition {
        let mut d = Disposition::default();
        for v in s.split(',').map(str::trim) {
            match v.to_ascii_lowercase().as_str() {
                "positive-delivery" => d.positive_delivery = true,
                "negative-delivery" => d.negative_delivery = true,
                "display" => d.display = true,
                "processing" => d.processing = true,
                _ => {}
            }
        }
        d
    }
}

/// One disposition notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Imdn {
    /// The `imdn.Message-ID` of the message notified about.
    pub message_id: String,
    /// The `DateTime` of that message.
    pub datetime: String,
    /// The recipient, if given.
    pub recipient_uri: Option<String>,
    /// The original recipient, if given.
    pub original_recipient_uri: Option<String>,
    /// Which notification.
    pub notification: Notification,
    /// The status element name (`delivered`, `displayed`, `failed`, ...).
    pub status: String,
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn unesc(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

/// The text of the first `<tag>...</tag>` (namespace prefixes not supported).
fn element<'a>(xml: &'a str, tag: &str) -> Option<&'a str> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let s = xml.find(&open)? + open.len();
    let e = xml[s..].find(&close)? + s;
    Some(&xml[s..e])
}

impl Imdn {
    /// The XML body.
    pub fn to_xml(&self) -> String {
        let mut x = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n");
        x.push_str(&format!("<imdn xmlns=\"{XMLNS}\">\r\n"));
        x.push_str(&format!(
            "<message-id>{}</message-id>\r\n",
            esc(&self.message_id)
        ));
        x.push_str(&format!("<datetime>{}</datetime>\r\n", esc(&self.datetime)));
        if let Some(r) = &self.recipient_uri {
            x.push_str(&format!("<recipient-uri>{}</recipient-uri>\r\n", esc(r)));
        }
        if let Some(r) = &self.original_recipient_uri {
            x.push_str(&format!(
                "<original-recipient-uri>{}</original-recipient-uri>\r\n",
                esc(r)
            ));
        }
        let t = self.notification.tag();
        x.push_str(&format!(
            "<{t}><status><{}/></status></{t}>\r\n",
            self.status
        ));
        x.push_str("</imdn>\r\n");
        x
    }

    /// Parses a notification body (the RFC 5438 §9 schema, default name space only).
    pub fn parse(xml: &str) -> Result<Imdn, Error> {
        let e = |w| Error::new(ErrorKind::Body(w), 0);
        if !xml.contains("<imdn") || !xml.contains(XMLNS) {
            return Err(e("IMDN: no <imdn> root in its name space"));
        }
        let message_id = element(xml, "message-id").ok_or(e("IMDN: no <message-id>"))?;
        let datetime = element(xml, "datetime").ok_or(e("IMDN: no <datetime>"))?;
        let (notification, inner) = [
            Notification::Delivery,
            Notification::Display,
            Notification::Processing,
        ]
        .into_iter()
        .find_map(|n| element(xml, n.tag()).map(|i| (n, i)))
        .ok_or(e("IMDN: no notification element"))?;
        let status = element(inner, "status")
            .ok_or(e("IMDN: no <status>"))?
            .trim();
        let status = status
            .strip_prefix('<')
            .and_then(|s| s.split(['/', '>', ' ']).next())
            .filter(|s| !s.is_empty())
            .ok_or(e("IMDN: empty <status>"))?;
        Ok(Imdn {
            message_id: unesc(message_id.trim()),
            datetime: unesc(datetime.trim()),
            recipient_uri: element(xml, "recipient-uri").map(|s| unesc(s.trim())),
            original_recipient_uri: element(xml, "original-recipient-uri").map(|s| unesc(s.trim())),
            notification,
            status: status.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The RFC 5438 §7.2.1.1 example shape, with a display notification.
    #[test]
    fn parses_rfc_shape() {
        let x = r#"<?xml version="1.0" encoding="UTF-8"?>
<imdn xmlns="urn:ietf:params:xml:ns:imdn">
   <message-id>34jk324j</message-id>
   <datetime>2008-04-04T12:16:49-05:00</datetime>
   <display-notification>
      <status>
         <displayed/>
      </status>
   </display-notification>
</imdn>"#;
        let n = Imdn::parse(x).unwrap();
        assert_eq!(n.message_id, "34jk324j");
        assert_eq!(n.notification, Notification::Display);
        assert_eq!(n.status, "displayed");
        assert!(Imdn::parse("<imdn/>").is_err());
        let d = Disposition::parse("positive-delivery, display");
        assert!(d.positive_delivery && d.display && !d.negative_delivery);
    }
}
