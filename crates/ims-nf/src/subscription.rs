//! The IMS subscription profile the HSS sends in Cx User-Data (TS 29.228 Annex D/E,
//! `IMSSubscription` of CxDataType.xsd): public identities with barring and identity type, initial
//! filter criteria, and core network service authorisation.

use crate::xml::{leaf, leaf_int, Element, XmlError, XmlLimits};

/// `<IMSSubscription>`: one private identity and its service profiles.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ImsSubscription {
    /// `<PrivateID>`: the IMPI.
    pub private_id: String,
    /// `<ServiceProfile>` elements (at least one on the wire).
    pub service_profiles: Vec<ServiceProfile>,
}

/// `<ServiceProfile>`: the identities sharing one set of services.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ServiceProfile {
    /// `<PublicIdentity>` elements.
    pub public_identities: Vec<PublicIdentity>,
    /// `<CoreNetworkServicesAuthorization><SubscribedMediaProfileId>`.
    pub subscribed_media_profile_id: Option<u32>,
    /// `<InitialFilterCriteria>` elements, in document order (evaluate by [`InitialFilterCriteria::priority`]).
    pub initial_filter_criteria: Vec<InitialFilterCriteria>,
    /// `<SharedIFCSetID>` values.
    pub shared_ifc_set_ids: Vec<u32>,
}

/// `tIdentityType` (TS 29.228 Table E.x).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdentityType {
    /// 0 PUBLIC_USER_IDENTITY.
    PublicUserIdentity,
    /// 1 DISTINCT_PSI.
    DistinctPsi,
    /// 2 WILDCARDED_PSI.
    WildcardedPsi,
    /// 3 WILDCARDED_IMPU.
    WildcardedImpu,
    /// Any other value, kept.
    Unknown(u32),
}

impl IdentityType {
    /// The wire value.
    pub fn code(self) -> u32 {
        match self {
            IdentityType::PublicUserIdentity => 0,
            IdentityType::DistinctPsi => 1,
            IdentityType::WildcardedPsi => 2,
            IdentityType::WildcardedImpu => 3,
            IdentityType::Unknown(c) => c,
        }
    }
    /// From the wire value.
    pub fn from_code(c: u32) -> IdentityType {
        match c {
            0 => IdentityType::PublicUserIdentity,
            1 => IdentityType::DistinctPsi,
            2 => IdentityType::WildcardedPsi,
            3 => IdentityType::WildcardedImpu,
            c => IdentityType::Unknown(c),
        }
    }
}

/// `<PublicIdentity>`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PublicIdentity {
    /// `<Identity>`: a SIP or tel URI.
    pub identity: String,
    /// `<BarringIndication>`: barred identities may not originate or receive requests but are
    /// still listed in P-Associated-URI (TS 24.229 §5.4.1.2.2).
    pub barring_indication: bool,
    /// `<Extension><IdentityType>`.
    pub identity_type: Option<IdentityType>,
    /// `<Extension><WildcardedPSI>` (or WildcardedIMPU), the regular expression the identity
    /// stands for.
    pub wildcarded: Option<String>,
    /// `<Extension><Extension><DisplayName>`.
    pub display_name: Option<String>,
    /// `<Extension><Extension><AliasIdentityGroupID>`.
    pub alias_identity_group_id: Option<String>,
}

/// `<InitialFilterCriteria>` (TS 29.228 Annex B.2.2).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct InitialFilterCriteria {
    /// `<Priority>`: lower values are evaluated first.
    pub priority: i32,
    /// `<TriggerPoint>`; absent means the filter always matches.
    pub trigger_point: Option<TriggerPoint>,
    /// `<ApplicationServer>`.
    pub application_server: ApplicationServer,
    /// `<ProfilePartIndicator>`: applies only in that registration state when present.
    pub profile_part_indicator: Option<ProfilePartIndicator>,
}

/// `<ProfilePartIndicator>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProfilePartIndicator {
    /// 0 REGISTERED.
    Registered,
    /// 1 UNREGISTERED.
    Unregistered,
}

/// `<TriggerPoint>`: service point triggers combined in conjunctive or disjunctive normal form.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TriggerPoint {
    /// `<ConditionTypeCNF>`: true for CNF (AND of groups, each an OR of its SPTs), false for DNF
    /// (OR of groups, each an AND of its SPTs).
    pub condition_type_cnf: bool,
    /// `<SPT>` elements.
    pub spts: Vec<Spt>,
}

/// `<SPT>`: one service point trigger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spt {
    /// `<ConditionNegated>`.
    pub condition_negated: bool,
    /// `<Group>` values: the groups this SPT belongs to.
    pub groups: Vec<u32>,
    /// What it tests.
    pub kind: SptKind,
    /// `<Extension><RegistrationType>` values, for REGISTER method SPTs (empty = any).
    pub registration_types: Vec<RegistrationType>,
}

/// The test of an SPT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SptKind {
    /// `<RequestURI>`: a regular expression the Request-URI must match.
    RequestUri(String),
    /// `<Method>`: the request method.
    Method(String),
    /// `<SIPHeader>`: the header must be present, and when `content` is set, one of its values
    /// must match that regular expression.
    SipHeader {
        /// `<Header>`: the header name.
        header: String,
        /// `<Content>`: a regular expression.
        content: Option<String>,
    },
    /// `<SessionCase>`.
    SessionCase(SessionCase),
    /// `<SessionDescription>`: an SDP line of type `line` (e.g. `m`) whose value matches `content`.
    SessionDescription {
        /// `<Line>`: the SDP line type.
        line: String,
        /// `<Content>`: a regular expression.
        content: Option<String>,
    },
}

/// `<SessionCase>` (TS 29.228 Annex B.2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionCase {
    /// 0 ORIGINATING_SESSION.
    Originating,
    /// 1 TERMINATING_REGISTERED.
    TerminatingRegistered,
    /// 2 TERMINATING_UNREGISTERED.
    TerminatingUnregistered,
    /// 3 ORIGINATING_UNREGISTERED.
    OriginatingUnregistered,
    /// 4 ORIGINATING_CDIV.
    OriginatingCdiv,
}

impl SessionCase {
    /// The wire value.
    pub fn code(self) -> u32 {
        match self {
            SessionCase::Originating => 0,
            SessionCase::TerminatingRegistered => 1,
            SessionCase::TerminatingUnregistered => 2,
            SessionCase::OriginatingUnregistered => 3,
            SessionCase::OriginatingCdiv => 4,
        }
    }
    /// From the wire value.
    pub fn from_code(c: u32) -> Option<SessionCase> {
        Some(match c {
            0 => SessionCase::Originating,
            1 => SessionCase::TerminatingRegistered,
            2 => SessionCase::TerminatingUnregistered,
            3 => SessionCase::OriginatingUnregistered,
            4 => SessionCase::OriginatingCdiv,
            _ => return None,
        })
    }
}

/// `<RegistrationType>` of a REGISTER SPT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegistrationType {
    /// 0 INITIAL_REGISTRATION.
    Initial,
    /// 1 RE-REGISTRATION.
    Reregistration,
    /// 2 DE-REGISTRATION.
    Deregistration,
}

impl RegistrationType {
    /// The wire value.
    pub fn code(self) -> u32 {
        match self {
            RegistrationType::Initial => 0,
            RegistrationType::Reregistration => 1,
            RegistrationType::Deregistration => 2,
        }
    }
    fn from_code(c: u32) -> Option<RegistrationType> {
        Some(match c {
            0 => RegistrationType::Initial,
            1 => RegistrationType::Reregistration,
            2 => RegistrationType::Deregistration,
            _ => return None,
        })
    }
}

/// `<DefaultHandling>`: what the S-CSCF does when the AS does not answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DefaultHandling {
    /// 0 SESSION_CONTINUED.
    #[default]
    SessionContinued,
    /// 1 SESSION_TERMINATED.
    SessionTerminated,
}

/// `<ApplicationServer>`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ApplicationServer {
    /// `<ServerName>`: the AS SIP URI.
    pub server_name: String,
    /// `<DefaultHandling>`.
    pub default_handling: DefaultHandling,
    /// `<ServiceInfo>`, passed to the AS in a third-party REGISTER body.
    pub service_info: Option<String>,
    /// `<Extension><IncludeRegisterRequest/>`.
    pub include_register_request: bool,
    /// `<Extension><IncludeRegisterResponse/>`.
    pub include_register_response: bool,
}

fn value<T: std::str::FromStr>(el: &Element, name: &'static str) -> Result<Option<T>, XmlError> {
    match el.child(name) {
        None => Ok(None),
        Some(c) => c.text.parse().map(Some).map_err(|_| XmlError::Value {
            element: name.to_string(),
            value: c.text.clone(),
        }),
    }
}

fn boolean(el: &Element, name: &'static str) -> Result<Option<bool>, XmlError> {
    match el.child(name) {
        None => Ok(None),
        Some(c) => match c.text.as_str() {
            "1" | "true" => Ok(Some(true)),
            "0" | "false" => Ok(Some(false)),
            v => Err(XmlError::Value {
                element: name.to_string(),
                value: v.to_string(),
            }),
        },
    }
}

fn bad(element: &str, value: impl Into<String>) -> XmlError {
    XmlError::Value {
        element: element.to_string(),
        value: value.into(),
    }
}

impl ImsSubscription {
    /// Parses the Cx User-Data XML document.
    pub fn from_xml(doc: &[u8]) -> Result<ImsSubscription, XmlError> {
        Self::from_xml_with(doc, &XmlLimits::default())
    }

    /// Parses with explicit limits.
    pub fn from_xml_with(doc: &[u8], limits: &XmlLimits) -> Result<ImsSubscription, XmlError> {
        let root = Element::parse(doc, limits)?;
        if root.name != "IMSSubscription" {
            return Err(XmlError::Root {
                expected: "IMSSubscription",
                found: root.name,
            });
        }
        let private_id = root.required_text("PrivateID")?.to_string();
        let mut service_profiles = Vec::new();
        for sp in root.children_named("ServiceProfile") {
            service_profiles.push(ServiceProfile::from_element(sp)?);
        }
        if service_profiles.is_empty() {
            return Err(XmlError::Missing {
                parent: root.name,
                child: "ServiceProfile",
            });
        }
        Ok(ImsSubscription {
            private_id,
            service_profiles,
        })
    }

    /// Writes the document (UTF-8, with an XML declaration).
    pub fn to_xml(&self) -> String {
        let mut o = String::with_capacity(512);
        o.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?><IMSSubscription>");
        leaf(&mut o, "PrivateID", &self.private_id);
        for sp in &self.service_profiles {
            sp.write(&mut o);
        }
        o.push_str("</IMSSubscription>");
        o
    }

    /// Every public identity of every service profile, in order.
    pub fn public_identities(&self) -> impl Iterator<Item = &PublicIdentity> + '_ {
        self.service_profiles
            .iter()
            .flat_map(|sp| sp.public_identities.iter())
    }

    /// The service profile holding `impu` (compared as written, ignoring ASCII case of the scheme
    /// and host is the caller's job: identities are stored canonical).
    pub fn profile_of(&self, impu: &str) -> Option<&ServiceProfile> {
        self.service_profiles
            .iter()
            .find(|sp| sp.public_identities.iter().any(|p| p.identity == impu))
    }
}

impl ServiceProfile {
    fn from_element(sp: &Element) -> Result<ServiceProfile, XmlError> {
        let mut out = ServiceProfile::default();
        for pi in sp.children_named("PublicIdentity") {
            out.public_identities
                .push(PublicIdentity::from_element(pi)?);
        }
        if out.public_identities.is_empty() {
            return Err(XmlError::Missing {
                parent: sp.name.clone(),
                child: "PublicIdentity",
            });
        }
        if let Some(c) = sp.child("CoreNetworkServicesAuthorization") {
            out.subscribed_media_profile_id = value(c, "SubscribedMediaProfileId")?;
        }
        for ifc in sp.children_named("InitialFilterCriteria") {
            out.initial_filter_criteria
                .push(InitialFilterCriteria::from_element(ifc)?);
        }
        for id in sp.children_named("SharedIFCSetID") {
            out.shared_ifc_set_ids.push(
                id.text
                    .parse()
                    .map_err(|_| bad("SharedIFCSetID", &id.text))?,
            );
        }
        Ok(out)
    }

    fn write(&self, o: &mut String) {
        o.push_str("<ServiceProfile>");
        for p in &self.public_identities {
            p.write(o);
        }
        if let Some(id) = self.subscribed_media_profile_id {
            o.push_str("<CoreNetworkServicesAuthorization>");
            leaf_int(o, "SubscribedMediaProfileId", i64::from(id));
            o.push_str("</CoreNetworkServicesAuthorization>");
        }
        for ifc in &self.initial_filter_criteria {
            ifc.write(o);
        }
        for id in &self.shared_ifc_set_ids {
            leaf_int(o, "SharedIFCSetID", i64::from(*id));
        }
        o.push_str("</ServiceProfile>");
    }
}

impl PublicIdentity {
    /// An unbarred public user identity.
    pub fn new(identity: impl Into<String>) -> PublicIdentity {
        PublicIdentity {
            identity: identity.into(),
            ..PublicIdentity::default()
        }
    }

    fn from_element(pi: &Element) -> Result<PublicIdentity, XmlError> {
        let mut out = PublicIdentity {
            identity: pi.required_text("Identity")?.to_string(),
            barring_indication: boolean(pi, "BarringIndication")?.unwrap_or(false),
            ..PublicIdentity::default()
        };
        if let Some(ext) = pi.child("Extension") {
            out.identity_type = value::<u32>(ext, "IdentityType")?.map(IdentityType::from_code);
            out.wildcarded = ext
                .child_text("WildcardedPSI")
                .or_else(|| ext.child_text("WildcardedIMPU"))
                .map(str::to_string);
            if let Some(ext2) = ext.child("Extension") {
                out.display_name = ext2.child_text("DisplayName").map(str::to_string);
                out.alias_identity_group_id =
                    ext2.child_text("AliasIdentityGroupID").map(str::to_string);
                if out.wildcarded.is_none() {
                    out.wildcarded = ext2
                        .child("Extension")
                        .and_then(|e3| e3.child_text("WildcardedIMPU"))
                        .map(str::to_string);
                }
            }
        }
        Ok(out)
    }

    fn write(&self, o: &mut String) {
        o.push_str("<PublicIdentity>");
        if self.barring_indication {
            o.push_str("<BarringIndication>1</BarringIndication>");
        }
        leaf(o, "Identity", &self.identity);
        let ext2 = self.display_name.is_some() || self.alias_identity_group_id.is_some();
        if self.identity_type.is_some() || self.wildcarded.is_some() || ext2 {
            o.push_str("<Extension>");
            if let Some(t) = self.identity_type {
                leaf_int(o, "IdentityType", i64::from(t.code()));
            }
            if let Some(w) = &self.wildcarded {
                leaf(o, "WildcardedPSI", w);
            }
            if ext2 {
                o.push_str("<Extension>");
                if let Some(d) = &self.display_name {
                    leaf(o, "DisplayName", d);
                }
                if let Some(a) = &self.alias_identity_group_id {
                    leaf(o, "AliasIdentityGroupID", a);
                }
                o.push_str("</Extension>");
            }
            o.push_str("</Extension>");
        }
        o.push_str("</PublicIdentity>");
    }
}

impl InitialFilterCriteria {
    fn from_element(el: &Element) -> Result<InitialFilterCriteria, XmlError> {
        let priority = value(el, "Priority")?.ok_or(XmlError::Missing {
            parent: el.name.clone(),
            child: "Priority",
        })?;
        let trigger_point = el
            .child("TriggerPoint")
            .map(TriggerPoint::from_element)
            .transpose()?;
        let asv = el.child("ApplicationServer").ok_or(XmlError::Missing {
            parent: el.name.clone(),
            child: "ApplicationServer",
        })?;
        let profile_part_indicator = match value::<u32>(el, "ProfilePartIndicator")? {
            None => None,
            Some(0) => Some(ProfilePartIndicator::Registered),
            Some(1) => Some(ProfilePartIndicator::Unregistered),
            Some(v) => return Err(bad("ProfilePartIndicator", v.to_string())),
        };
        Ok(InitialFilterCriteria {
            priority,
            trigger_point,
            application_server: ApplicationServer::from_element(asv)?,
            profile_part_indicator,
        })
    }

    fn write(&self, o: &mut String) {
        o.push_str("<InitialFilterCriteria>");
        leaf_int(o, "Priority", i64::from(self.priority));
        if let Some(tp) = &self.trigger_point {
            tp.write(o);
        }
        self.application_server.write(o);
        if let Some(p) = self.profile_part_indicator {
            let v = match p {
                ProfilePartIndicator::Registered => 0,
                ProfilePartIndicator::Unregistered => 1,
            };
            leaf_int(o, "ProfilePartIndicator", v);
        }
        o.push_str("</InitialFilterCriteria>");
    }
}

impl TriggerPoint {
    fn from_element(el: &Element) -> Result<TriggerPoint, XmlError> {
        let condition_type_cnf = boolean(el, "ConditionTypeCNF")?.ok_or(XmlError::Missing {
            parent: el.name.clone(),
            child: "ConditionTypeCNF",
        })?;
        let mut spts = Vec::new();
        for s in el.children_named("SPT") {
            spts.push(Spt::from_element(s)?);
        }
        Ok(TriggerPoint {
            condition_type_cnf,
            spts,
        })
    }

    fn write(&self, o: &mut String) {
        o.push_str("<TriggerPoint>");
        leaf_int(o, "ConditionTypeCNF", i64::from(self.condition_type_cnf));
        for s in &self.spts {
            s.write(o);
        }
        o.push_str("</TriggerPoint>");
    }
}

impl Spt {
    /// An SPT in group 0, not negated.
    pub fn new(kind: SptKind) -> Spt {
        Spt {
            condition_negated: false,
            groups: vec![0],
            kind,
            registration_types: Vec::new(),
        }
    }

    fn from_element(el: &Element) -> Result<Spt, XmlError> {
        let condition_negated = boolean(el, "ConditionNegated")?.unwrap_or(false);
        let mut groups = Vec::new();
        for g in el.children_named("Group") {
            groups.push(g.text.parse().map_err(|_| bad("Group", &g.text))?);
        }
        let kind = if let Some(t) = el.child_text("RequestURI") {
            SptKind::RequestUri(t.to_string())
        } else if let Some(t) = el.child_text("Method") {
            SptKind::Method(t.to_string())
        } else if let Some(h) = el.child("SIPHeader") {
            SptKind::SipHeader {
                header: h.required_text("Header")?.to_string(),
                content: h.child_text("Content").map(str::to_string),
            }
        } else if let Some(t) = el.child_text("SessionCase") {
            let c = t
                .parse()
                .ok()
                .and_then(SessionCase::from_code)
                .ok_or_else(|| bad("SessionCase", t))?;
            SptKind::SessionCase(c)
        } else if let Some(d) = el.child("SessionDescription") {
            SptKind::SessionDescription {
                line: d.required_text("Line")?.to_string(),
                content: d.child_text("Content").map(str::to_string),
            }
        } else {
            return Err(XmlError::Missing {
                parent: el.name.clone(),
                child: "RequestURI|Method|SIPHeader|SessionCase|SessionDescription",
            });
        };
        let mut registration_types = Vec::new();
        if let Some(ext) = el.child("Extension") {
            for r in ext.children_named("RegistrationType") {
                let v = r
                    .text
                    .parse()
                    .ok()
                    .and_then(RegistrationType::from_code)
                    .ok_or_else(|| bad("RegistrationType", &r.text))?;
                registration_types.push(v);
            }
        }
        Ok(Spt {
            condition_negated,
            groups,
            kind,
            registration_types,
        })
    }

    fn write(&self, o: &mut String) {
        o.push_str("<SPT>");
        leaf_int(o, "ConditionNegated", i64::from(self.condition_negated));
        for g in &self.groups {
            leaf_int(o, "Group", i64::from(*g));
        }
        match &self.kind {
            SptKind::RequestUri(r) => leaf(o, "RequestURI", r),
            SptKind::Method(m) => leaf(o, "Method", m),
            SptKind::SipHeader { header, content } => {
                o.push_str("<SIPHeader>");
                leaf(o, "Header", header);
                if let Some(c) = content {
                    leaf(o, "Content", c);
                }
                o.push_str("</SIPHeader>");
            }
            SptKind::SessionCase(c) => {
                leaf_int(o, "SessionCase", i64::from(c.code()));
            }
            SptKind::SessionDescription { line, content } => {
                o.push_str("<SessionDescription>");
                leaf(o, "Line", line);
                if let Some(c) = content {
                    leaf(o, "Content", c);
                }
                o.push_str("</SessionDescription>");
            }
        }
        if !self.registration_types.is_empty() {
            o.push_str("<Extension>");
            for r in &self.registration_types {
                leaf_int(o, "RegistrationType", i64::from(r.code()));
            }
            o.push_str("</Extension>");
        }
        o.push_str("</SPT>");
    }
}

impl ApplicationServer {
    /// An AS with default handling SESSION_CONTINUED.
    pub fn new(server_name: impl Into<String>) -> ApplicationServer {
        ApplicationServer {
            server_name: server_name.into(),
            ..ApplicationServer::default()
        }
    }

    fn from_element(el: &Element) -> Result<ApplicationServer, XmlError> {
        let default_handling = match value::<u32>(el, "DefaultHandling")? {
            None | Some(0) => DefaultHandling::SessionContinued,
            Some(1) => DefaultHandling::SessionTerminated,
            Some(v) => return Err(bad("DefaultHandling", v.to_string())),
        };
        let ext = el.child("Extension");
        Ok(ApplicationServer {
            server_name: el.required_text("ServerName")?.to_string(),
            default_handling,
            service_info: el.child_text("ServiceInfo").map(str::to_string),
            include_register_request: ext
                .is_some_and(|e| e.child("IncludeRegisterRequest").is_some()),
            include_register_response: ext
                .is_some_and(|e| e.child("IncludeRegisterResponse").is_some()),
        })
    }

    fn write(&self, o: &mut String) {
        o.push_str("<ApplicationServer>");
        leaf(o, "ServerName", &self.server_name);
        let dh = match self.default_handling {
            DefaultHandling::SessionContinued => 0,
            DefaultHandling::SessionTerminated => 1,
        };
        leaf_int(o, "DefaultHandling", dh);
        if let Some(si) = &self.service_info {
            leaf(o, "ServiceInfo", si);
        }
        if self.include_register_request || self.include_register_response {
            o.push_str("<Extension>");
            if self.include_register_request {
                o.push_str("<IncludeRegisterRequest/>");
            }
            if self.include_register_response {
                o.push_str("<IncludeRegisterResponse/>");
            }
            o.push_str("</Extension>");
        }
        o.push_str("</ApplicationServer>");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A profile in the shape the OpenIMSCore and PyHSS HSSs send: an implicit set of a SIP and a
    /// tel IMPU, one barred identity, an iFC for MESSAGE to the IM server and one for REGISTER.
    const PROFILE: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<IMSSubscription xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
  <PrivateID>001010000000001@ims.mnc001.mcc001.3gppnetwork.org</PrivateID>
  <ServiceProfile>
    <PublicIdentity>
      <Identity>sip:+15550001@ims.mnc001.mcc001.3gppnetwork.org</Identity>
      <Extension><IdentityType>0</IdentityType><Extension><DisplayName>Alice &amp; Co</DisplayName></Extension></Extension>
    </PublicIdentity>
    <PublicIdentity>
      <Identity>tel:+15550001</Identity>
    </PublicIdentity>
    <PublicIdentity>
      <BarringIndication>1</BarringIndication>
      <Identity>sip:001010000000001@ims.mnc001.mcc001.3gppnetwork.org</Identity>
    </PublicIdentity>
    <CoreNetworkServicesAuthorization><SubscribedMediaProfileId>1</SubscribedMediaProfileId></CoreNetworkServicesAuthorization>
    <InitialFilterCriteria>
      <Priority>10</Priority>
      <TriggerPoint>
        <ConditionTypeCNF>0</ConditionTypeCNF>
        <SPT><ConditionNegated>0</ConditionNegated><Group>0</Group><Method>MESSAGE</Method></SPT>
        <SPT><ConditionNegated>0</ConditionNegated><Group>0</Group>
          <SIPHeader><Header>Content-Type</Header><Content>application/vnd\.3gpp\.sms</Content></SIPHeader></SPT>
      </TriggerPoint>
      <ApplicationServer><ServerName>sip:ipsmgw.ims.example.org:5070</ServerName><DefaultHandling>0</DefaultHandling></ApplicationServer>
    </InitialFilterCriteria>
    <InitialFilterCriteria>
      <Priority>1</Priority>
      <TriggerPoint>
        <ConditionTypeCNF>1</ConditionTypeCNF>
        <SPT><ConditionNegated>0</ConditionNegated><Group>0</Group><Method>REGISTER</Method>
          <Extension><RegistrationType>0</RegistrationType><RegistrationType>2</RegistrationType></Extension></SPT>
      </TriggerPoint>
      <ApplicationServer><ServerName>sip:ipsmgw.ims.example.org:5070</ServerName><DefaultHandling>1</DefaultHandling>
        <ServiceInfo>sms</ServiceInfo><Extension><IncludeRegisterRequest/></Extension></ApplicationServer>
      <ProfilePartIndicator>0</ProfilePartIndicator>
    </InitialFilterCriteria>
  </ServiceProfile>
</IMSSubscription>"#;

    #[test]
    fn parses_a_full_profile() {
        let s = ImsSubscription::from_xml(PROFILE.as_bytes()).unwrap();
        assert_eq!(
            s.private_id,
            "001010000000001@ims.mnc001.mcc001.3gppnetwork.org"
        );
        let sp = &s.service_profiles[0];
        assert_eq!(sp.public_identities.len(), 3);
        assert_eq!(
            sp.public_identities[0].display_name.as_deref(),
            Some("Alice & Co")
        );
        assert_eq!(
            sp.public_identities[0].identity_type,
            Some(IdentityType::PublicUserIdentity)
        );
        assert!(sp.public_identities[2].barring_indication);
        assert_eq!(sp.subscribed_media_profile_id, Some(1));
        let ifc = &sp.initial_filter_criteria[1];
        assert_eq!(ifc.priority, 1);
        assert!(ifc.application_server.include_register_request);
        assert_eq!(
            ifc.application_server.default_handling,
            DefaultHandling::SessionTerminated
        );
        assert_eq!(
            ifc.trigger_point.as_ref().unwrap().spts[0].registration_types,
            [RegistrationType::Initial, RegistrationType::Deregistration]
        );
        assert_eq!(
            ifc.profile_part_indicator,
            Some(ProfilePartIndicator::Registered)
        );
        assert!(s.profile_of("tel:+15550001").is_some());
    }

    #[test]
    fn round_trips_through_xml() {
        let s = ImsSubscription::from_xml(PROFILE.as_bytes()).unwrap();
        let again = ImsSubscription::from_xml(s.to_xml().as_bytes()).unwrap();
        assert_eq!(s, again);
    }

    #[test]
    fn rejects_bad_documents() {
        assert!(matches!(
            ImsSubscription::from_xml(b"<Other/>"),
            Err(XmlError::Root { .. })
        ));
        assert!(matches!(
            ImsSubscription::from_xml(
                b"<IMSSubscription><PrivateID>x</PrivateID></IMSSubscription>"
            ),
            Err(XmlError::Missing {
                child: "ServiceProfile",
                ..
            })
        ));
        let bad_case = PROFILE.replace("<Method>MESSAGE</Method>", "<SessionCase>9</SessionCase>");
        assert!(matches!(
            ImsSubscription::from_xml(bad_case.as_bytes()),
            Err(XmlError::Value { .. })
        ));
    }

    /// The document `to_xml` writes, byte for byte: the sample profile without the whitespace
    /// between its tags and the namespace declaration (it is written in canonical order), and a
    /// second profile through every other branch (negative priority, several groups, session
    /// case, shared iFC sets, wildcard and alias, escaped texts), as the `write!` based writer
    /// wrote them.
    #[test]
    fn to_xml_writes_the_canonical_document() {
        let s = ImsSubscription::from_xml(PROFILE.as_bytes()).unwrap();
        let mut want = String::new();
        for line in PROFILE.lines() {
            want.push_str(line.trim());
        }
        let want = want
            .replace(
                r#" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance""#,
                "",
            )
            .replace(r#"<?xml version="1.0" encoding="UTF-8"?>"#, "");
        assert_eq!(
            s.to_xml(),
            format!(r#"<?xml version="1.0" encoding="UTF-8"?>{want}"#)
        );

        let spt = |kind, negated| Spt {
            condition_negated: negated,
            groups: vec![0, 7, 4294967295],
            kind,
            registration_types: vec![],
        };
        let other = ImsSubscription {
            private_id: "a&b@x".into(),
            service_profiles: vec![ServiceProfile {
                public_identities: vec![PublicIdentity {
                    identity: "sip:*@x".into(),
                    barring_indication: false,
                    identity_type: Some(IdentityType::from_code(2)),
                    wildcarded: Some("sip:!.*!@x".into()),
                    display_name: None,
                    alias_identity_group_id: Some("g<1>".into()),
                }],
                subscribed_media_profile_id: Some(4294967295),
                initial_filter_criteria: vec![InitialFilterCriteria {
                    priority: -2147483648,
                    trigger_point: Some(TriggerPoint {
                        condition_type_cnf: true,
                        spts: vec![
                            spt(SptKind::SessionCase(SessionCase::OriginatingCdiv), true),
                            spt(SptKind::RequestUri("^sip:'q'".into()), false),
                        ],
                    }),
                    application_server: ApplicationServer {
                        server_name: "sip:as".into(),
                        default_handling: DefaultHandling::SessionContinued,
                        service_info: Some("\"i\"".into()),
                        include_register_request: false,
                        include_register_response: true,
                    },
                    profile_part_indicator: Some(ProfilePartIndicator::Unregistered),
                }],
                shared_ifc_set_ids: vec![0, 12],
            }],
        };
        let groups = "<Group>0</Group><Group>7</Group><Group>4294967295</Group>";
        let want = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><IMSSubscription><PrivateID>a&amp;b@x</PrivateID>\
             <ServiceProfile><PublicIdentity><Identity>sip:*@x</Identity><Extension>\
             <IdentityType>2</IdentityType><WildcardedPSI>sip:!.*!@x</WildcardedPSI><Extension>\
             <AliasIdentityGroupID>g&lt;1&gt;</AliasIdentityGroupID></Extension></Extension></PublicIdentity>\
             <CoreNetworkServicesAuthorization><SubscribedMediaProfileId>4294967295</SubscribedMediaProfileId>\
             </CoreNetworkServicesAuthorization><InitialFilterCriteria><Priority>-2147483648</Priority>\
             <TriggerPoint><ConditionTypeCNF>1</ConditionTypeCNF><SPT><ConditionNegated>1</ConditionNegated>\
             {groups}<SessionCase>4</SessionCase></SPT><SPT><ConditionNegated>0</ConditionNegated>{groups}\
             <RequestURI>^sip:&apos;q&apos;</RequestURI></SPT></TriggerPoint><ApplicationServer>\
             <ServerName>sip:as</ServerName><DefaultHandling>0</DefaultHandling>\
             <ServiceInfo>&quot;i&quot;</ServiceInfo><Extension><IncludeRegisterResponse/></Extension>\
             </ApplicationServer><ProfilePartIndicator>1</ProfilePartIndicator></InitialFilterCriteria>\
             <SharedIFCSetID>0</SharedIFCSetID><SharedIFCSetID>12</SharedIFCSetID></ServiceProfile>\
             </IMSSubscription>"
        );
        assert_eq!(other.to_xml(), want);
    }
}
