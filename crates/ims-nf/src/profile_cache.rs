//! The user profiles an S-CSCF holds, parsed once per *shape* and shared.
//!
//! Every registration carries the HSS's `IMSSubscription` XML (Cx User-Data, TS 29.228 Annex
//! D/E). Its text differs from one subscriber to the next only in the identities —
//! `<PrivateID>` and each `<PublicIdentity><Identity>` — while the service profiles around them
//! (barring, initial filter criteria, media profile) are usually the same for thousands of
//! users. Parsing that document (and compiling its iFC regular expressions) on every REGISTER was
//! a fifth of the S-CSCF's CPU per registration.
//!
//! [`ProfileCache::get`] cuts the identities out of the document (the *skeleton*: the text with
//! each identity replaced by a numbered slot), parses and compiles each distinct skeleton once
//! and keeps it behind an [`Arc`]; a [`Profile`] is that shared shape plus the user's own
//! identities. The skeleton is the whole document but for those texts, so two users share a
//! shape only when everything else is byte for byte the same. A document the cut cannot handle
//! exactly (an identity with markup, an entity reference, a namespace prefix, attributes) is
//! parsed whole, as before, and not cached: the answer is always what
//! [`ImsSubscription::from_xml`] gives.
//!
//! ```
//! use ims_nf::profile_cache::ProfileCache;
//! let cache = ProfileCache::new(16);
//! let xml = |id: &str| format!(
//!     "<IMSSubscription><PrivateID>{id}@ims.example.org</PrivateID><ServiceProfile>\
//!      <PublicIdentity><Identity>sip:{id}@ims.example.org</Identity></PublicIdentity>\
//!      <PublicIdentity><BarringIndication>1</BarringIndication><Identity>tel:+1{id}</Identity>\
//!      </PublicIdentity></ServiceProfile></IMSSubscription>");
//! let alice = cache.get(&xml("555001")).unwrap();
//! let bob = cache.get(&xml("555002")).unwrap();
//! assert_eq!(cache.shapes(), 1); // one parse for both
//! let (set, barred) = bob.identities("sip:555002@ims.example.org");
//! assert_eq!(set, ["sip:555002@ims.example.org", "tel:+1555002"]);
//! assert_eq!(barred, ["tel:+1555002"]);
//! assert_eq!(alice.service_profile_of("tel:+1555001"), Some(0));
//! ```

use crate::ifc::FilterSet;
use crate::subscription::ImsSubscription;
use crate::xml::XmlError;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

/// The text a slot is written as in a skeleton: `SLOT` and its number.
const SLOT: &str = "ims-rs-profile-slot-";

/// The elements whose text is cut out: the private identity and each public identity.
const CUT: [&str; 2] = ["PrivateID", "Identity"];

/// A parsed document shape shared by every user whose profile has it.
#[derive(Debug)]
struct Shape {
    /// The parsed skeleton (or, for a document parsed whole, the document itself).
    subscription: ImsSubscription,
    /// For a skeleton: per service profile, per public identity, the slot holding its identity;
    /// `None` for a document parsed whole (its identities are in `subscription`).
    slots: Option<Vec<Vec<usize>>>,
    /// Each service profile's iFCs compiled, on first use (`None`: they do not compile).
    filters: OnceLock<Vec<Option<FilterSet>>>,
}

/// One user's profile: a shared shape (the document with the identities cut out) and the
/// user's identities.
#[derive(Debug, Clone)]
pub struct Profile {
    shape: Arc<Shape>,
    /// The identities cut out, by slot.
    values: Vec<Box<str>>,
}

impl Profile {
    /// The profile as [`ImsSubscription::from_xml`] gives it (a copy, with the identities in).
    pub fn subscription(&self) -> ImsSubscription {
        let mut s = self.shape.subscription.clone();
        if let Some(slots) = &self.shape.slots {
            s.private_id = self.values[0].to_string();
            for (sp, ids) in s.service_profiles.iter_mut().zip(slots) {
                for (pi, &slot) in sp.public_identities.iter_mut().zip(ids) {
                    pi.identity = self.values[slot].to_string();
                }
            }
        }
        s
    }

    /// The identity of public identity `pi` of service profile `sp`.
    fn identity(&self, sp: usize, pi: usize) -> &str {
        match &self.shape.slots {
            Some(slots) => &self.values[slots[sp][pi]],
            None => &self.shape.subscription.service_profiles[sp].public_identities[pi].identity,
        }
    }

    /// Every public identity, in document order: (identity, barred).
    fn public_identities(&self) -> impl Iterator<Item = (usize, &str, bool)> + '_ {
        self.shape
            .subscription
            .service_profiles
            .iter()
            .enumerate()
            .flat_map(move |(i, sp)| {
                sp.public_identities
                    .iter()
                    .enumerate()
                    .map(move |(j, pi)| (i, self.identity(i, j), pi.barring_indication))
            })
    }

    /// The implicit registration set of `impu` (`impu` first, then every other public identity
    /// in order) and the barred identities among them (TS 24.229 §5.4.1.2.2).
    pub fn identities(&self, impu: &str) -> (Vec<String>, Vec<String>) {
        let mut set = vec![impu.to_string()];
        let mut barred = Vec::new();
        for (_, id, bar) in self.public_identities() {
            if id != impu {
                set.push(id.to_string());
            }
            if bar {
                barred.push(id.to_string());
            }
        }
        (set, barred)
    }

    /// The index of the service profile holding `impu` (as
    /// [`ImsSubscription::profile_of`]).
    pub fn service_profile_of(&self, impu: &str) -> Option<usize> {
        self.public_identities()
            .find(|(_, id, _)| *id == impu)
            .map(|(i, _, _)| i)
    }

    /// Number of service profiles (at least one in a valid document).
    pub fn service_profiles(&self) -> usize {
        self.shape.subscription.service_profiles.len()
    }

    /// Service profile `sp`'s iFCs compiled (once per shape); `None` when they do not compile
    /// or there is no such profile.
    pub fn filters(&self, sp: usize) -> Option<&FilterSet> {
        self.shape
            .filters
            .get_or_init(|| {
                self.shape
                    .subscription
                    .service_profiles
                    .iter()
                    .map(|p| FilterSet::compile(&p.initial_filter_criteria).ok())
                    .collect()
            })
            .get(sp)?
            .as_ref()
    }
}

/// Shapes by skeleton, bounded (emptied when full: a new shape then costs one parse again).
#[derive(Debug)]
pub struct ProfileCache {
    shapes: Mutex<HashMap<Box<str>, Arc<Shape>, SkeletonHash>>,
    max: usize,
    /// The last documents [`ProfileCache::get`] answered and their profiles, newest last: an
    /// S-CSCF asks for a registration's document twice (the binding's implicit set, then the
    /// third-party REGISTERs), and the same text gives the same profile.
    recent: Mutex<std::collections::VecDeque<(Box<str>, Profile)>>,
}

/// How many documents [`ProfileCache::recent`] holds (enough for the registrations completing
/// between a binding and its third-party REGISTERs).
const RECENT: usize = 4;

impl Default for ProfileCache {
    fn default() -> Self {
        ProfileCache::new(1024)
    }
}

/// Cuts the identities out of `doc`: the skeleton and the texts cut, in document order. `None`
/// when an identity's text holds markup or an entity reference (the parser would not give it
/// back as written).
fn cut(doc: &str) -> Option<(String, Vec<Box<str>>)> {
    let (skeleton, raw) = cut_raw(doc)?;
    Some((skeleton, raw.into_iter().map(|t| t.trim().into()).collect()))
}

/// The last document [`cut_raw`] cut on this thread, and its cut: the skeleton and where each
/// text is. The S-CSCF cuts the same User-Data twice per registration ([`ProfileCache::get`],
/// then the store's key of the record): the second cut is this copy (the document compared
/// whole, ≈ 0.5 k instructions against ≈ 5 k for the cut).
struct LastCut {
    doc: String,
    skeleton: String,
    texts: Vec<(usize, usize)>,
}

thread_local! {
    static LAST_CUT: std::cell::RefCell<Option<LastCut>> = const { std::cell::RefCell::new(None) };
}

/// [`cut`] with the texts as written (not trimmed).
fn cut_raw(doc: &str) -> Option<(String, Vec<&str>)> {
    let kept = LAST_CUT.with(|last| {
        let last = last.borrow();
        let c = last.as_ref().filter(|c| c.doc == doc)?;
        Some((c.skeleton.clone(), c.texts.clone()))
    });
    let (skeleton, texts) = match kept {
        Some(k) => k,
        None => {
            let (skeleton, texts) = cut_ranges(doc)?;
            LAST_CUT.with(|last| {
                *last.borrow_mut() = Some(LastCut {
                    doc: doc.to_string(),
                    skeleton: skeleton.clone(),
                    texts: texts.clone(),
                });
            });
            (skeleton, texts)
        }
    };
    Some((skeleton, texts.iter().map(|&(a, b)| &doc[a..b]).collect()))
}

/// [`cut_raw`] without the copy of the last cut: the texts as where they are in `doc`.
fn cut_ranges(doc: &str) -> Option<(String, Vec<(usize, usize)>)> {
    // the open tags of CUT, written exactly so
    const OPEN: [&str; 2] = ["<PrivateID>", "<Identity>"];
    let mut skeleton = String::with_capacity(doc.len());
    let mut values = Vec::new();
    // their substring searchers, built once (memchr's vectorised search: ≈50 k instructions per
    // registration less than `str::find` over a User-Data document)
    static FINDERS: OnceLock<[memchr::memmem::Finder<'static>; 2]> = OnceLock::new();
    let finders = FINDERS.get_or_init(|| OPEN.map(memchr::memmem::Finder::new));
    // doc[..done] is in the skeleton; next[k]: where OPEN[k] is next met, searched again only
    // once the cut passed it (one pass over the document per name)
    let mut done = 0;
    let mut next = [0, 1].map(|k| finders[k].find(doc.as_bytes()));
    loop {
        for (k, n) in next.iter_mut().enumerate() {
            if n.is_some_and(|at| at < done) {
                *n = finders[k].find(&doc.as_bytes()[done..]).map(|i| done + i);
            }
        }
        let Some((at, k)) = (0..OPEN.len())
            .filter_map(|k| next[k].map(|at| (at, k)))
            .min()
        else {
            skeleton.push_str(&doc[done..]);
            return Some((skeleton, values));
        };
        let name = CUT[k];
        let open = OPEN[k].len();
        let body = &doc[at + open..];
        let end = body.find('<')?;
        let text = &body[..end];
        let close = &body[end..];
        let closes = close.starts_with("</")
            && close[2..].starts_with(name)
            && close[2 + name.len()..].starts_with('>');
        if text.contains('&') || !closes {
            return None;
        }
        skeleton.push_str(&doc[done..at + open]);
        skeleton.push_str(SLOT);
        ims_sip::push_decimal(&mut skeleton, values.len() as u64);
        values.push((at + open, at + open + text.len()));
        done = at + open + end;
    }
}

/// A cheap hasher for skeletons (documents of a few KB from the HSS, not attacker-chosen keys;
/// the tables holding them are bounded): eight bytes per step, FxHash style, instead of SipHash
/// over the whole text on every registration.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct SkeletonHasher(u64);

impl std::hash::Hasher for SkeletonHasher {
    fn write(&mut self, bytes: &[u8]) {
        const K: u64 = 0x517c_c1b7_2722_0a95;
        let mut h = self.0;
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let w = u64::from_le_bytes(c.try_into().expect("chunks of eight bytes"));
            h = (h.rotate_left(5) ^ w).wrapping_mul(K);
        }
        for &b in chunks.remainder() {
            h = (h.rotate_left(5) ^ u64::from(b)).wrapping_mul(K);
        }
        self.0 = h;
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

/// Builds [`SkeletonHasher`]s.
pub(crate) type SkeletonHash = std::hash::BuildHasherDefault<SkeletonHasher>;

/// `doc` as a skeleton and the identity texts cut out of it, as written, such that
/// [`join_identities`] gives `doc` back byte for byte; `None` when the cut does not apply (or
/// `doc` already holds a slot's text somewhere).
pub(crate) fn split_identities(doc: &str) -> Option<(String, Vec<&str>)> {
    // memchr's vectorised search, its searcher built once (`str::contains` over the whole
    // document cost ≈ 1.9 k instructions per registration)
    static FINDER: OnceLock<memchr::memmem::Finder<'static>> = OnceLock::new();
    let finder = FINDER.get_or_init(|| memchr::memmem::Finder::new(SLOT));
    if finder.find(doc.as_bytes()).is_some() {
        return None;
    }
    cut_raw(doc)
}

/// The document [`split_identities`] cut into `skeleton` and `values`; `None` when they do not
/// fit together.
pub(crate) fn join_identities(skeleton: &str, values: &[&str]) -> Option<String> {
    let mut out =
        String::with_capacity(skeleton.len() + values.iter().map(|v| v.len()).sum::<usize>());
    let mut rest = skeleton;
    while let Some(at) = rest.find(SLOT) {
        out.push_str(&rest[..at]);
        let digits = &rest[at + SLOT.len()..];
        let n = digits.bytes().take_while(u8::is_ascii_digit).count();
        out.push_str(values.get(digits[..n].parse::<usize>().ok()?)?);
        rest = &digits[n..];
    }
    out.push_str(rest);
    Some(out)
}

/// The slot a parsed field names, when it is exactly a slot's text.
fn slot_of(text: &str) -> Option<usize> {
    let n = text.strip_prefix(SLOT)?;
    (!n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        .then(|| n.parse().ok())
        .flatten()
}

impl ProfileCache {
    /// A cache of at most `max` shapes.
    pub fn new(max: usize) -> ProfileCache {
        ProfileCache {
            shapes: Mutex::new(HashMap::default()),
            max,
            recent: Mutex::new(std::collections::VecDeque::with_capacity(RECENT)),
        }
    }

    /// Number of shapes held.
    pub fn shapes(&self) -> usize {
        self.shapes.lock().expect("profile cache lock").len()
    }

    /// The profile `doc` describes; the same error as [`ImsSubscription::from_xml`] when it
    /// does not parse.
    pub fn get(&self, doc: &str) -> Result<Profile, XmlError> {
        if let Some(p) = self
            .recent
            .lock()
            .expect("profile cache lock")
            .iter()
            .rev()
            .find(|(d, _)| **d == *doc)
        {
            return Ok(p.1.clone());
        }
        let p = self.get_uncached(doc)?;
        let mut recent = self.recent.lock().expect("profile cache lock");
        if recent.len() >= RECENT {
            recent.pop_front();
        }
        recent.push_back((doc.into(), p.clone()));
        Ok(p)
    }

    /// [`ProfileCache::get`] without the recent documents.
    fn get_uncached(&self, doc: &str) -> Result<Profile, XmlError> {
        let Some((skeleton, values)) = cut(doc) else {
            return Self::whole(doc);
        };
        if let Some(shape) = self
            .shapes
            .lock()
            .expect("profile cache lock")
            .get(skeleton.as_str())
        {
            return Ok(Profile {
                shape: shape.clone(),
                values,
            });
        }
        let subscription = ImsSubscription::from_xml(skeleton.as_bytes())?;
        // every slot must come back exactly once, as the private identity or a public identity
        let mut seen = vec![false; values.len()];
        let mut take = |text: &str| -> Option<usize> {
            let s = slot_of(text)?;
            (!std::mem::replace(seen.get_mut(s)?, true)).then_some(s)
        };
        let private = take(&subscription.private_id);
        let slots: Option<Vec<Vec<usize>>> = subscription
            .service_profiles
            .iter()
            .map(|sp| {
                sp.public_identities
                    .iter()
                    .map(|pi| take(&pi.identity))
                    .collect()
            })
            .collect();
        let (Some(0), Some(slots)) = (private, slots) else {
            return Self::whole(doc);
        };
        if seen.iter().any(|s| !s) {
            return Self::whole(doc);
        }
        let shape = Arc::new(Shape {
            subscription,
            slots: Some(slots),
            filters: OnceLock::new(),
        });
        let mut shapes = self.shapes.lock().expect("profile cache lock");
        if shapes.len() >= self.max {
            shapes.clear();
        }
        shapes.insert(skeleton.into_boxed_str(), shape.clone());
        Ok(Profile { shape, values })
    }

    /// `doc` parsed whole, not cached.
    fn whole(doc: &str) -> Result<Profile, XmlError> {
        Ok(Profile {
            shape: Arc::new(Shape {
                subscription: ImsSubscription::from_xml(doc.as_bytes())?,
                slots: None,
                filters: OnceLock::new(),
            }),
            values: Vec::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::subscription::{
        ApplicationServer, InitialFilterCriteria, PublicIdentity, ServiceProfile, Spt, SptKind,
        TriggerPoint,
    };

    fn sub(id: &str, ifc_server: &str) -> ImsSubscription {
        let ifc = InitialFilterCriteria {
            priority: 10,
            trigger_point: Some(TriggerPoint {
                condition_type_cnf: false,
                spts: vec![Spt::new(SptKind::Method("REGISTER".into()))],
            }),
            application_server: ApplicationServer::new(ifc_server),
            ..InitialFilterCriteria::default()
        };
        let barred = PublicIdentity {
            barring_indication: true,
            ..PublicIdentity::new(format!("sip:{id}-barred@ims.example.org"))
        };
        ImsSubscription {
            private_id: format!("{id}@ims.example.org"),
            service_profiles: vec![
                ServiceProfile {
                    public_identities: vec![
                        PublicIdentity::new(format!("sip:{id}@ims.example.org")),
                        PublicIdentity::new(format!("tel:+1{id}")),
                    ],
                    initial_filter_criteria: vec![ifc],
                    ..ServiceProfile::default()
                },
                ServiceProfile {
                    public_identities: vec![barred],
                    ..ServiceProfile::default()
                },
            ],
        }
    }

    #[test]
    fn a_shared_shape_gives_what_a_whole_parse_gives() {
        let cache = ProfileCache::new(8);
        for id in ["555001", "555002", "555003"] {
            let s = sub(id, "sip:as.ims.example.org");
            let p = cache.get(&s.to_xml()).unwrap();
            assert_eq!(p.subscription(), s);
            assert!(p.shape.slots.is_some());
            let impu = format!("sip:{id}@ims.example.org");
            let whole = ImsSubscription::from_xml(s.to_xml().as_bytes()).unwrap();
            let mut set = vec![impu.clone()];
            set.extend(
                whole
                    .public_identities()
                    .map(|p| p.identity.clone())
                    .filter(|i| *i != impu),
            );
            let barred: Vec<String> = whole
                .public_identities()
                .filter(|p| p.barring_indication)
                .map(|p| p.identity.clone())
                .collect();
            assert_eq!(p.identities(&impu), (set, barred));
            assert_eq!(p.service_profile_of(&format!("tel:+1{id}")), Some(0));
            assert_eq!(
                p.service_profile_of(&format!("sip:{id}-barred@ims.example.org")),
                Some(1)
            );
            assert_eq!(p.service_profile_of("sip:nobody@ims.example.org"), None);
            assert!(p.filters(0).is_some());
            assert!(p.filters(2).is_none());
        }
        assert_eq!(cache.shapes(), 1);
        // another AS: another shape
        let p = cache
            .get(&sub("555001", "sip:other.ims.example.org").to_xml())
            .unwrap();
        assert_eq!(p.subscription(), sub("555001", "sip:other.ims.example.org"));
        assert_eq!(cache.shapes(), 2);
    }

    #[test]
    fn documents_the_cut_cannot_handle_are_parsed_whole() {
        let cache = ProfileCache::new(8);
        let escaped = "<IMSSubscription><PrivateID>a&amp;b@x</PrivateID><ServiceProfile>\
            <PublicIdentity><Identity>sip:a@x</Identity></PublicIdentity></ServiceProfile>\
            </IMSSubscription>";
        let prefixed = "<c:IMSSubscription xmlns:c=\"urn:x\"><c:PrivateID>a@x</c:PrivateID>\
            <c:ServiceProfile><c:PublicIdentity><c:Identity>sip:a@x</c:Identity>\
            </c:PublicIdentity></c:ServiceProfile></c:IMSSubscription>";
        // an identity written as a slot: not mistaken for one
        let lookalike = format!(
            "<IMSSubscription><PrivateID>a@x</PrivateID><ServiceProfile><PublicIdentity>\
             <Identity >{SLOT}0</Identity></PublicIdentity></ServiceProfile></IMSSubscription>"
        );
        for doc in [escaped, prefixed, &lookalike] {
            let whole = ImsSubscription::from_xml(doc.as_bytes());
            match cache.get(doc) {
                Ok(p) => {
                    assert!(p.shape.slots.is_none(), "{doc}");
                    assert_eq!(p.subscription(), whole.unwrap());
                }
                Err(e) => assert_eq!(Err(e), whole.map(|_| ()), "{doc}"),
            }
        }
        assert_eq!(cache.shapes(), 0);
        assert!(cache.get("<IMSSubscription>").is_err());
        assert!(cache.get("not xml").is_err());
    }

    /// The cut kept from the last document is that document's cut: documents one after the
    /// other, again, in another order, equal texts in other allocations, documents differing in
    /// one identity or one byte only, and documents the cut refuses.
    #[test]
    fn the_kept_cut_is_the_cut_of_the_document() {
        let one = sub("1", "sip:as.ims.example.org").to_xml();
        let docs = [
            one.clone(),
            sub("2", "sip:as.ims.example.org").to_xml(),
            sub("1", "sip:other.ims.example.org").to_xml(),
            one.replacen("1@", "7@", 1),
            "<a><Identity>x</PrivateID></a>".to_string(),
            "<a><Identity>x&amp;y</Identity></a>".to_string(),
            "<a><Identity>x</Identity><PrivateID> y </PrivateID></a>".to_string(),
            String::new(),
        ];
        let direct = |d: &str| {
            cut_ranges(d).map(|(s, r)| {
                let texts: Vec<String> = r.iter().map(|&(a, b)| d[a..b].to_string()).collect();
                (s, texts)
            })
        };
        let kept = |d: &str| {
            cut_raw(d).map(|(s, v)| (s, v.into_iter().map(str::to_string).collect::<Vec<_>>()))
        };
        for d in docs.iter().chain(docs.iter().rev()).chain(docs.iter()) {
            let copy = d.clone();
            for doc in [d, d, &copy] {
                assert_eq!(kept(doc), direct(doc), "{doc}");
            }
        }
        assert!(direct(&one).is_some() && direct(&docs[4]).is_none());
    }

    #[test]
    fn split_and_join_give_the_document_back() {
        let doc = sub(" 555001", "sip:as.ims.example.org").to_xml();
        let (skeleton, values) = split_identities(&doc).unwrap();
        assert_eq!(values.len(), 4);
        assert!(
            values.contains(&" 555001@ims.example.org"),
            "as written: {values:?}"
        );
        assert_eq!(join_identities(&skeleton, &values).unwrap(), doc);
        let (other, _) = split_identities(&sub("9", "sip:as.ims.example.org").to_xml()).unwrap();
        assert_eq!(other, skeleton);
        assert!(join_identities(&skeleton, &values[..1]).is_none());
        assert!(split_identities(&format!("<a>{SLOT}1</a>")).is_none());
    }

    #[test]
    fn identities_are_cut_in_document_order_whatever_the_tag() {
        let doc = "<IMSSubscription><ServiceProfile><PublicIdentity><Identity>sip:a@x</Identity>\
            </PublicIdentity><PublicIdentity><Identity>tel:+1</Identity></PublicIdentity>\
            </ServiceProfile><PrivateID>a@x</PrivateID><ServiceProfile><PublicIdentity>\
            <Identity>sip:b@x</Identity></PublicIdentity></ServiceProfile></IMSSubscription>";
        let (skeleton, values) = split_identities(doc).unwrap();
        assert_eq!(values, ["sip:a@x", "tel:+1", "a@x", "sip:b@x"]);
        assert_eq!(skeleton.matches(SLOT).count(), 4);
        assert!(skeleton.contains("<PrivateID>ims-rs-profile-slot-2</PrivateID>"));
        assert_eq!(join_identities(&skeleton, &values).unwrap(), doc);
        // an open tag closed by another name: no cut
        assert!(split_identities("<a><Identity>x</PrivateID></a>").is_none());
    }

    /// A document asked for again (among the last few) gives the profile it gave, without a
    /// cut or a parse; any other text is cut or parsed.
    #[test]
    fn a_document_asked_for_again_gives_the_same_profile() {
        let cache = ProfileCache::new(8);
        let docs: Vec<String> = (0..6)
            .map(|n| sub(&format!("55500{n}"), "sip:as.ims.example.org").to_xml())
            .collect();
        // a document parsed whole (an entity reference): a new shape per parse
        let whole = sub("555&amp;9", "sip:as.ims.example.org").to_xml();
        assert!(cut(&whole).is_none());
        for d in docs.iter().chain([&whole]) {
            let a = cache.get(d).unwrap();
            let b = cache.get(d).unwrap();
            assert_eq!(a.subscription(), b.subscription());
            assert_eq!(
                a.subscription(),
                ImsSubscription::from_xml(d.as_bytes()).unwrap()
            );
            assert!(Arc::ptr_eq(&a.shape, &b.shape));
        }
        // the whole-parsed document is recent: the same parse answers
        let again = cache.get(&whole).unwrap();
        assert!(Arc::ptr_eq(&again.shape, &cache.get(&whole).unwrap().shape));
        // past the bound, it is parsed again (a new shape)
        for d in &docs[..RECENT] {
            cache.get(d).unwrap();
        }
        assert!(!Arc::ptr_eq(
            &again.shape,
            &cache.get(&whole).unwrap().shape
        ));
        // a text differing in one identity byte is not taken for a recent one
        let one = sub("555001", "sip:as.ims.example.org").to_xml();
        let other = one.replace("555001@", "555011@");
        cache.get(&one).unwrap();
        assert_eq!(
            cache.get(&other).unwrap().subscription(),
            ImsSubscription::from_xml(other.as_bytes()).unwrap()
        );
        assert!(cache.recent.lock().unwrap().len() <= RECENT);
        // errors are not kept
        assert!(cache.get("<IMSSubscription>").is_err());
        assert!(cache.get("<IMSSubscription>").is_err());
    }

    #[test]
    fn the_cache_is_bounded() {
        let cache = ProfileCache::new(2);
        for n in 0..5 {
            cache
                .get(&sub("1", &format!("sip:as{n}.ims.example.org")).to_xml())
                .unwrap();
            assert!(cache.shapes() <= 2);
        }
    }

    /// What a cut must give: the skeleton with each text replaced by its slot, so that joining
    /// the texts back into it gives the document; and no cut where the texts are not plain.
    fn check_cut(doc: &str) -> Result<(), String> {
        match cut_raw(doc) {
            Some((skeleton, values)) => {
                if values.iter().any(|v| v.contains(['<', '&'])) {
                    return Err(format!("{doc:?}: markup in a cut text {values:?}"));
                }
                match join_identities(&skeleton, &values) {
                    Some(back) if back == doc => Ok(()),
                    other => Err(format!(
                        "{doc:?}: {skeleton:?} + {values:?} joins to {other:?}"
                    )),
                }
            }
            None => Ok(()),
        }
    }

    #[test]
    fn the_cut_joins_back_to_the_document() {
        let cut_some = [
            sub("555001", "sip:as.ims.example.org").to_xml(),
            sub(" 1 ", "sip:as.ims.example.org;x=<y>").to_xml(),
            String::new(),
            "<".into(),
            "<Identity>x</Identity>".into(),
            "<<Identity>a</Identity><PrivateID>b</PrivateID>".into(),
            "<Identity></Identity><Identity>é</Identity>ü<".into(),
        ];
        for doc in &cut_some {
            assert!(cut_raw(doc).is_some(), "{doc:?}");
            check_cut(doc).unwrap();
        }
        let not_cut = [
            "<Identity>",
            "<Identity>x",
            "<Identity>x</Identity",
            "<Identity>&amp;</Identity>",
            "<Identity>a</PrivateID>",
            "<PrivateID><Identity>a</Identity></PrivateID>",
        ];
        for doc in not_cut {
            assert_eq!(cut_raw(doc), None, "{doc:?}");
        }
    }

    proptest::proptest! {
        /// Documents made of tag fragments, text and markup: whatever is cut joins back to the
        /// document, with plain texts only.
        #[test]
        fn any_cut_joins_back_to_the_document(
            parts in proptest::collection::vec(
                proptest::prop_oneof![
                    proptest::strategy::Just("<PrivateID>".to_owned()),
                    proptest::strategy::Just("</PrivateID>".to_owned()),
                    proptest::strategy::Just("<Identity>".to_owned()),
                    proptest::strategy::Just("</Identity>".to_owned()),
                    proptest::strategy::Just("<PublicIdentity>".to_owned()),
                    proptest::strategy::Just("</".to_owned()),
                    proptest::strategy::Just("<".to_owned()),
                    proptest::strategy::Just("&amp;".to_owned()),
                    "[a-z@:. é>]{0,6}",
                ],
                0..24,
            )
        ) {
            let doc = parts.concat();
            if let Err(e) = check_cut(&doc) {
                proptest::prop_assert!(false, "{}", e);
            }
        }
    }

    #[test]
    fn decimal_slots_are_written_as_to_string_does() {
        for n in [0usize, 1, 9, 10, 99, 100, 12345, usize::MAX] {
            let mut s = String::from("x");
            ims_sip::push_decimal(&mut s, n as u64);
            assert_eq!(s, format!("x{n}"));
        }
    }

    #[test]
    fn the_skeleton_hasher_tells_documents_apart() {
        use std::hash::BuildHasher;
        let h = |s: &str| SkeletonHash::default().hash_one(s);
        assert_eq!(h("abc"), h("abc"));
        assert_ne!(h("abcdefgh1"), h("abcdefgh2"));
        assert_ne!(h("abcdefgh"), h("abcdefgi"));
        assert_ne!(h(""), h("a"));
    }
}
