//! Registration state behind the [`BindingStore`] trait: an in-memory default and, with the
//! `redis` feature, a Redis backend so several S-CSCF processes share registrations and a
//! restarted one keeps them.
//!
//! A [`RegistrationRecord`] is stored under every public identity of its implicit registration
//! set, so a lookup by any of them (tel URI or SIP URI) finds it.

use crate::keyed_hash::{KeyedMap, KeyedSet};
use crate::registrar::Binding;
use std::future::Future;
use std::sync::{Arc, Mutex};

/// Registration state of an implicit registration set (TS 29.228 §6.1.2 and TS 24.229 §5.4.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegState {
    /// Bindings exist.
    Registered,
    /// No bindings, but the S-CSCF holds the profile for unregistered services (SAR
    /// UNREGISTERED_USER).
    Unregistered,
}

/// Everything an S-CSCF keeps about one registered user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistrationRecord {
    /// The IMPU the UE registered (first of the implicit set).
    pub impu: String,
    /// The private identity.
    pub impi: String,
    /// The implicit registration set: every IMPU registered together (incl. `impu` and barred
    /// ones), in P-Associated-URI order.
    pub implicit_set: Vec<String>,
    /// Which of those are barred (TS 24.229 §5.4.1.2.2: listed but unusable).
    pub barred: Vec<String>,
    /// The contact bindings.
    pub bindings: Vec<Binding>,
    /// State.
    pub state: RegState,
    /// The Cx User-Data XML (`IMSSubscription`), as the HSS sent it.
    pub user_data: Option<String>,
    /// Charging-Information from the SAA (ECF/CCF addresses), as text.
    pub charging: Option<String>,
    /// Version counter of the reg event documents sent for this set.
    pub reginfo_version: u32,
}

impl RegistrationRecord {
    /// Serialises to a self-delimiting byte string (fields as `len:bytes`).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(256);
        self.encode_into(&mut out, self.user_data.as_deref(), None);
        out
    }

    /// [`encode`](Self::encode) into `out`, with `user_data` as the profile. `compact` (the
    /// [`MemoryStore`]'s own form, never persisted): an `impi` that is `impu` without its
    /// `sip:` is written `~`, an implicit-set entry equal to `impu` `=`, a Path value the
    /// store's [`Templates`] hold as `^<its number>;` (no length: no field starts so).
    fn encode_into(
        &self,
        out: &mut Vec<u8>,
        user_data: Option<&str>,
        mut compact: Option<&mut Templates>,
    ) {
        // written without `fmt` or a `String` per field (the S-CSCF saves a record at every
        // registration): lengths and numbers as decimal digits straight into `out`
        let put = |out: &mut Vec<u8>, s: &[u8]| {
            push_dec(out, s.len() as u64);
            out.push(b':');
            out.extend_from_slice(s);
        };
        // a field holding the decimal text of `n`
        let put_num = |out: &mut Vec<u8>, n: u64| {
            let mut buf = [0u8; 20];
            put(out, ims_sip::decimal(&mut buf, n));
        };
        // `=value`, or empty for `None`
        let put_opt = |out: &mut Vec<u8>, v: Option<&str>| match v {
            None => put(out, b""),
            Some(v) => {
                push_dec(out, v.len() as u64 + 1);
                out.extend_from_slice(b":=");
                out.extend_from_slice(v.as_bytes());
            }
        };
        put(out, b"v1");
        put(out, self.impu.as_bytes());
        if compact.is_some() && self.impu.strip_prefix("sip:") == Some(self.impi.as_str()) {
            // the IMPI is the IMPU without its scheme (IMSI-derived identities, TS 23.003
            // §13.3 / §13.4B): `~` (no field starts so)
            out.push(b'~');
        } else {
            put(out, self.impi.as_bytes());
        }
        put_num(out, self.implicit_set.len() as u64);
        for s in &self.implicit_set {
            if compact.is_some() && *s == self.impu {
                out.push(b'=');
            } else {
                put(out, s.as_bytes());
            }
        }
        put_num(out, self.barred.len() as u64);
        for s in &self.barred {
            put(out, s.as_bytes());
        }
        put(
            out,
            match self.state {
                RegState::Registered => b"R",
                RegState::Unregistered => b"U",
            },
        );
        put_opt(out, user_data);
        put_opt(out, self.charging.as_deref());
        put_num(out, u64::from(self.reginfo_version));
        put_num(out, self.bindings.len() as u64);
        for b in &self.bindings {
            put(out, b.uri.as_bytes());
            put(out, b.params.as_bytes());
            put_opt(out, b.instance_id.as_deref());
            match b.reg_id {
                Some(r) => put_num(out, u64::from(r)),
                None => put(out, b""),
            }
            put(out, b.call_id.as_bytes());
            put_num(out, u64::from(b.cseq));
            put_num(out, b.expires_at);
            put_num(out, b.path.len() as u64);
            for p in &b.path {
                match compact.as_deref_mut().and_then(|t| t.path_id(p)) {
                    Some(id) => {
                        out.push(b'^');
                        push_dec(out, u64::from(id));
                        out.push(b';');
                    }
                    None => put(out, p.as_bytes()),
                }
            }
            match b.q {
                Some(q) => put_num(out, u64::from(q)),
                None => put(out, b""),
            }
        }
    }

    /// Reads what [`encode`](Self::encode) wrote.
    pub fn decode(b: &[u8]) -> Result<RegistrationRecord, StoreError> {
        Self::decode_with(b, None)
    }

    /// [`decode`](Self::decode); `compact`: what `encode_into` wrote with these templates.
    fn decode_with(
        mut b: &[u8],
        compact: Option<&Templates>,
    ) -> Result<RegistrationRecord, StoreError> {
        fn take<'a>(b: &mut &'a [u8]) -> Result<&'a str, StoreError> {
            let colon = b
                .iter()
                .position(|&c| c == b':')
                .filter(|&i| i <= 10)
                .ok_or(StoreError::Corrupt)?;
            let n: usize = std::str::from_utf8(&b[..colon])
                .ok()
                .and_then(|s| s.parse().ok())
                .ok_or(StoreError::Corrupt)?;
            let rest = &b[colon + 1..];
            if rest.len() < n {
                return Err(StoreError::Corrupt);
            }
            let s = std::str::from_utf8(&rest[..n]).map_err(|_| StoreError::Corrupt)?;
            *b = &rest[n..];
            Ok(s)
        }
        fn num<T: std::str::FromStr>(b: &mut &[u8]) -> Result<T, StoreError> {
            take(b)?.parse().map_err(|_| StoreError::Corrupt)
        }
        fn opt(s: &str) -> Result<Option<String>, StoreError> {
            match s {
                "" => Ok(None),
                s => s
                    .strip_prefix('=')
                    .map(|v| Some(v.to_string()))
                    .ok_or(StoreError::Corrupt),
            }
        }
        fn count(b: &mut &[u8]) -> Result<usize, StoreError> {
            let n: usize = num(b)?;
            // every element takes at least two bytes, so a count larger than that is corrupt
            if n > b.len() / 2 {
                return Err(StoreError::Corrupt);
            }
            Ok(n)
        }
        if take(&mut b)? != "v1" {
            return Err(StoreError::Corrupt);
        }
        let impu = take(&mut b)?.to_string();
        let impi = match b.strip_prefix(b"~").filter(|_| compact.is_some()) {
            Some(rest) => {
                b = rest;
                impu.strip_prefix("sip:")
                    .ok_or(StoreError::Corrupt)?
                    .to_string()
            }
            None => take(&mut b)?.to_string(),
        };
        let n = count(&mut b)?;
        let implicit_set = (0..n)
            .map(
                |_| match b.strip_prefix(b"=").filter(|_| compact.is_some()) {
                    Some(rest) => {
                        b = rest;
                        Ok(impu.clone())
                    }
                    None => take(&mut b).map(str::to_string),
                },
            )
            .collect::<Result<_, _>>()?;
        let n = count(&mut b)?;
        let barred = (0..n)
            .map(|_| take(&mut b).map(str::to_string))
            .collect::<Result<_, _>>()?;
        let state = match take(&mut b)? {
            "R" => RegState::Registered,
            "U" => RegState::Unregistered,
            _ => return Err(StoreError::Corrupt),
        };
        let user_data = opt(take(&mut b)?)?;
        let charging = opt(take(&mut b)?)?;
        let reginfo_version = num(&mut b)?;
        let n = count(&mut b)?;
        let mut bindings = Vec::with_capacity(n);
        for _ in 0..n {
            let uri = take(&mut b)?.to_string();
            let params = take(&mut b)?.to_string();
            let instance_id = opt(take(&mut b)?)?;
            let reg_id = match take(&mut b)? {
                "" => None,
                s => Some(s.parse().map_err(|_| StoreError::Corrupt)?),
            };
            let call_id = take(&mut b)?.to_string();
            let cseq = num(&mut b)?;
            let expires_at = num(&mut b)?;
            let np = count(&mut b)?;
            let path = (0..np)
                .map(|_| match (b.strip_prefix(b"^"), compact) {
                    (Some(rest), Some(t)) => {
                        // a shared Path value: `^<number>;`
                        let end = rest
                            .iter()
                            .position(|&c| c == b';')
                            .ok_or(StoreError::Corrupt)?;
                        let id: usize = std::str::from_utf8(&rest[..end])
                            .ok()
                            .and_then(|s| s.parse().ok())
                            .ok_or(StoreError::Corrupt)?;
                        b = &rest[end + 1..];
                        t.paths
                            .get(id)
                            .map(|p| p.to_string())
                            .ok_or(StoreError::Corrupt)
                    }
                    _ => take(&mut b).map(str::to_string),
                })
                .collect::<Result<_, _>>()?;
            let q = match take(&mut b)? {
                "" => None,
                s => Some(s.parse().map_err(|_| StoreError::Corrupt)?),
            };
            bindings.push(Binding {
                uri,
                params,
                instance_id,
                reg_id,
                call_id,
                cseq,
                expires_at,
                path,
                q,
            });
        }
        if !b.is_empty() {
            return Err(StoreError::Corrupt);
        }
        Ok(RegistrationRecord {
            impu,
            impi,
            implicit_set,
            barred,
            bindings,
            state,
            user_data,
            charging,
            reginfo_version,
        })
    }

    /// The keys the record is stored under: every IMPU of the implicit set (and `impu`).
    pub fn keys(&self) -> impl Iterator<Item = &str> + '_ {
        std::iter::once(self.impu.as_str()).chain(
            self.implicit_set
                .iter()
                .map(String::as_str)
                .filter(move |k| *k != self.impu),
        )
    }
}

/// Appends the decimal digits of `n`.
fn push_dec(out: &mut Vec<u8>, n: u64) {
    out.extend_from_slice(ims_sip::decimal(&mut [0; 20], n));
}

/// A store failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// A stored record does not decode.
    #[error("stored registration record is corrupt")]
    Corrupt,
    /// The backend failed (connection, protocol).
    #[error("store backend: {0}")]
    Backend(String),
}

/// Where registrations live. Methods are async so a networked backend fits; the in-memory one
/// completes immediately.
pub trait BindingStore: Send + Sync + 'static {
    /// The record whose implicit set contains `impu`.
    fn load(
        &self,
        impu: &str,
    ) -> impl Future<Output = Result<Option<RegistrationRecord>, StoreError>> + Send;
    /// Like [`load`](Self::load), but a store that keeps records in memory hands out the stored
    /// record itself instead of a deep copy (user data, bindings and identities included). The
    /// default wraps what `load` returns.
    fn load_shared(
        &self,
        impu: &str,
    ) -> impl Future<Output = Result<Option<Arc<RegistrationRecord>>, StoreError>> + Send {
        async move { Ok(self.load(impu).await?.map(Arc::new)) }
    }
    /// Like [`load_shared`](Self::load_shared), for a caller that reads no user profile: the
    /// record's [`RegistrationRecord::user_data`] may be `None` even when one is stored (a
    /// store that keeps profiles as shared skeletons skips putting the document back together).
    /// The default is `load_shared`.
    fn load_bindings(
        &self,
        impu: &str,
    ) -> impl Future<Output = Result<Option<Arc<RegistrationRecord>>, StoreError>> + Send {
        self.load_shared(impu)
    }
    /// True when a record's implicit set contains `impu`. The default loads the record.
    fn contains(&self, impu: &str) -> impl Future<Output = Result<bool, StoreError>> + Send {
        async move { Ok(self.load_bindings(impu).await?.is_some()) }
    }
    /// Stores `rec` under all its keys (replacing what was there).
    fn save(&self, rec: &RegistrationRecord)
        -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Removes the record stored under all of `rec`'s keys.
    fn remove(
        &self,
        rec: &RegistrationRecord,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Stores an alias: `alias` resolves to `target` until `expires_at` (seconds since the
    /// epoch; `now` is the present) — an S-CSCF's temporary GRUU to the public GRUU of the same
    /// instance (RFC 5627 §3.2), so every S-CSCF sharing the store resolves it.
    fn save_alias(
        &self,
        alias: &str,
        target: &str,
        now: u64,
        expires_at: u64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// What `alias` resolves to at `now` (`None`: unknown or expired).
    fn load_alias(
        &self,
        alias: &str,
        now: u64,
    ) -> impl Future<Output = Result<Option<String>, StoreError>> + Send;
}

/// One key of a stored record: the record in its compact encoded form
/// ([`RegistrationRecord::encode`], one exact-size allocation shared by the record's keys) and
/// where in it the identity the key is lies, so the map holds no copy of the identity strings.
#[derive(Debug, Clone)]
struct Key {
    /// The encoding, then (when the user profile is kept as a shared skeleton, see
    /// [`Templates`]) `T<skeleton id>:` and the profile's identity texts as `<len>:<text>`.
    rec: Arc<str>,
    /// Offset in `rec` of the identity's field (`<length>:<identity>`, as the encoding writes
    /// every field). The record's `impu` is the second field (see [`Key::first`]).
    at: u32,
    /// Length of the encoding in `rec`.
    split: u32,
}

/// The field (`<length>:<text>`) at `at` in `enc`: where its text starts and its length.
fn field_at(enc: &str, at: usize) -> Option<(usize, usize)> {
    let rest = enc.get(at..)?;
    let colon = rest.find(':')?;
    let n = rest[..colon].parse().ok()?;
    let start = at + colon + 1;
    (start.checked_add(n)? <= enc.len()).then_some((start, n))
}

/// The skeletons of the user profiles (Cx User-Data) the store holds: the XML of two users
/// differs only in their identities, so a record keeps the skeleton's number and its own
/// identity texts instead of the whole document (≈ 2.5 KB with five iFCs). Bounded: past
/// [`Templates::MAX`] shapes, new ones are kept whole.
#[derive(Debug, Default)]
struct Templates {
    ids: std::collections::HashMap<Arc<str>, u32, crate::profile_cache::SkeletonHash>,
    skeletons: Vec<Arc<str>>,
    /// The bindings' Path values (every UE behind one P-CSCF has the same), by number; at most
    /// [`Templates::MAX`], past that new ones are kept in the records.
    path_ids: KeyedMap<Arc<str>, u32>,
    paths: Vec<Arc<str>>,
}

impl Templates {
    const MAX: usize = 1024;

    /// The number of the Path value `p`, added if new and there is room.
    fn path_id(&mut self, p: &str) -> Option<u32> {
        if let Some(&id) = self.path_ids.get(p) {
            return Some(id);
        }
        if self.paths.len() >= Self::MAX {
            return None;
        }
        let id = u32::try_from(self.paths.len()).ok()?;
        let p: Arc<str> = p.into();
        self.paths.push(p.clone());
        self.path_ids.insert(p, id);
        Some(id)
    }

    /// The number of `skeleton`, added if new and there is room.
    fn id(&mut self, skeleton: String) -> Option<u32> {
        if let Some(&id) = self.ids.get(skeleton.as_str()) {
            return Some(id);
        }
        if self.skeletons.len() >= Self::MAX {
            return None;
        }
        let id = u32::try_from(self.skeletons.len()).ok()?;
        let s: Arc<str> = skeleton.into();
        self.skeletons.push(s.clone());
        self.ids.insert(s, id);
        Some(id)
    }
}

impl Key {
    fn as_str(&self) -> &str {
        field_at(&self.rec, self.at as usize)
            .and_then(|(start, len)| self.rec.get(start..start + len))
            .unwrap_or_default()
    }

    /// True for the record's `impu` (one key per record): the field after the first ("v1").
    fn first(&self) -> bool {
        field_at(&self.rec, 0).map(|(start, len)| start + len) == Some(self.at as usize)
    }

    /// The keys of `rec` (as [`RegistrationRecord::keys`]: `impu`, then every other IMPU of
    /// the implicit set), pointing into its encoding; the user profile as a skeleton of
    /// `templates` when it can be.
    fn all(rec: &RegistrationRecord, templates: &Mutex<Templates>) -> Result<Vec<Key>, StoreError> {
        let mut t = templates.lock().expect("templates lock");
        let cut = rec
            .user_data
            .as_deref()
            .and_then(crate::profile_cache::split_identities)
            .and_then(|(skeleton, values)| Some((t.id(skeleton)?, values)));
        let mut text = Vec::with_capacity(256);
        let user_data = match &cut {
            Some(_) => None,
            None => rec.user_data.as_deref(),
        };
        rec.encode_into(&mut text, user_data, Some(&mut t));
        drop(t);
        let split = text.len();
        if let Some((id, values)) = &cut {
            text.push(b'T');
            push_dec(&mut text, u64::from(*id));
            text.push(b':');
            let refs = Self::identities(rec);
            for v in values {
                // an identity of the record's own fields as `=<its number>;`
                match refs.clone().position(|r| r == *v) {
                    Some(i) => {
                        text.push(b'=');
                        push_dec(&mut text, i as u64);
                        text.push(b';');
                    }
                    None => {
                        push_dec(&mut text, v.len() as u64);
                        text.push(b':');
                        text.extend_from_slice(v.as_bytes());
                    }
                }
            }
        }
        let enc: Arc<str> = String::from_utf8(text)
            .map_err(|_| StoreError::Corrupt)?
            .into();
        // the fields in order: "v1", impu, impi, the set's size, the set
        // (offset of each field)
        let mut fields = Vec::with_capacity(4 + rec.implicit_set.len());
        let mut at = 0usize;
        while fields.len() < 4 + rec.implicit_set.len() {
            fields.push(at);
            if (fields.len() > 4 && enc[at..].starts_with('='))
                || (fields.len() == 3 && enc[at..].starts_with('~'))
            {
                // an implicit-set entry that is `impu` (no key of its own), or the IMPI
                // written as the IMPU without its scheme
                at += 1;
                continue;
            }
            let (start, n) = field_at(&enc, at).ok_or(StoreError::Corrupt)?;
            at = start + n;
        }
        let num = |n: usize| u32::try_from(n).map_err(|_| StoreError::Corrupt);
        let split = num(split)?;
        let mut keys = vec![Key {
            rec: enc.clone(),
            at: num(fields[1])?,
            split,
        }];
        for (i, k) in rec.implicit_set.iter().enumerate() {
            if *k != rec.impu {
                keys.push(Key {
                    rec: enc.clone(),
                    at: num(fields[4 + i])?,
                    split,
                });
            }
        }
        Ok(keys)
    }

    /// The identities a profile's texts may repeat (`impu`, `impi`, then the implicit set), by
    /// number: a text equal to one is kept as its number.
    fn identities(rec: &RegistrationRecord) -> impl Iterator<Item = &str> + Clone + '_ {
        [rec.impu.as_str(), rec.impi.as_str()]
            .into_iter()
            .chain(rec.implicit_set.iter().map(String::as_str))
    }

    /// The record, without its user profile when the profile is kept as a skeleton and
    /// `profile_wanted` is false ([`BindingStore::load_bindings`]).
    fn record(
        &self,
        templates: &Mutex<Templates>,
        profile_wanted: bool,
    ) -> Result<RegistrationRecord, StoreError> {
        let (enc, profile) = self
            .rec
            .split_at_checked(self.split as usize)
            .ok_or(StoreError::Corrupt)?;
        let t = templates.lock().expect("templates lock");
        let mut rec = RegistrationRecord::decode_with(enc.as_bytes(), Some(&t))?;
        if !profile_wanted && profile.starts_with('T') {
            return Ok(rec);
        }
        if let Some(p) = profile.strip_prefix('T') {
            let (id, mut rest) = p.split_once(':').ok_or(StoreError::Corrupt)?;
            let id: usize = id.parse().map_err(|_| StoreError::Corrupt)?;
            let mut values = Vec::new();
            while !rest.is_empty() {
                if let Some(r) = rest.strip_prefix('=') {
                    // one of the record's identities (see `Key::all`)
                    let (i, r) = r.split_once(';').ok_or(StoreError::Corrupt)?;
                    let i: usize = i.parse().map_err(|_| StoreError::Corrupt)?;
                    values.push(Self::identities(&rec).nth(i).ok_or(StoreError::Corrupt)?);
                    rest = r;
                    continue;
                }
                let (n, r) = rest.split_once(':').ok_or(StoreError::Corrupt)?;
                let n: usize = n.parse().map_err(|_| StoreError::Corrupt)?;
                let (v, r) = r.split_at_checked(n).ok_or(StoreError::Corrupt)?;
                values.push(v);
                rest = r;
            }
            let skeleton = t.skeletons.get(id).cloned().ok_or(StoreError::Corrupt)?;
            drop(t);
            let doc = crate::profile_cache::join_identities(&skeleton, &values)
                .ok_or(StoreError::Corrupt)?;
            rec.user_data = Some(doc);
        } else if !profile.is_empty() {
            return Err(StoreError::Corrupt);
        }
        Ok(rec)
    }
}

impl std::borrow::Borrow<str> for Key {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl std::hash::Hash for Key {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        // as `str` hashes, so lookups by `&str` find it (Borrow contract)
        self.as_str().hash(state);
    }
}

impl PartialEq for Key {
    fn eq(&self, other: &Key) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for Key {}

/// The default store: a map in this process. Records are kept encoded
/// ([`RegistrationRecord::encode`]: one exact-size allocation, about half the memory of the
/// record's own strings and vectors) and shared between their keys; a load decodes.
#[derive(Debug, Default, Clone)]
pub struct MemoryStore {
    map: Arc<Mutex<KeyedSet<Key>>>,
    /// The user profile skeletons the records share.
    templates: Arc<Mutex<Templates>>,
    /// [`BindingStore::save_alias`]: alias → (target, expiry).
    aliases: Arc<Mutex<Aliases>>,
}

/// Alias → (target, expiry in seconds since the epoch).
type Aliases = KeyedMap<Box<str>, (Box<str>, u64)>;

impl MemoryStore {
    /// An empty store.
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }

    /// Number of distinct records.
    pub fn len(&self) -> usize {
        let m = self.map.lock().expect("store lock is never poisoned");
        m.iter().filter(|k| k.first()).count()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl BindingStore for MemoryStore {
    async fn load(&self, impu: &str) -> Result<Option<RegistrationRecord>, StoreError> {
        let key = {
            let m = self.map.lock().expect("store lock is never poisoned");
            m.get(impu).cloned()
        };
        key.map(|k| k.record(&self.templates, true)).transpose()
    }

    async fn load_bindings(
        &self,
        impu: &str,
    ) -> Result<Option<Arc<RegistrationRecord>>, StoreError> {
        let key = {
            let m = self.map.lock().expect("store lock is never poisoned");
            m.get(impu).cloned()
        };
        key.map(|k| k.record(&self.templates, false).map(Arc::new))
            .transpose()
    }

    async fn contains(&self, impu: &str) -> Result<bool, StoreError> {
        let m = self.map.lock().expect("store lock is never poisoned");
        Ok(m.contains(impu))
    }

    async fn save(&self, rec: &RegistrationRecord) -> Result<(), StoreError> {
        let keys = Key::all(rec, &self.templates)?;
        let mut m = self.map.lock().expect("store lock is never poisoned");
        for k in keys {
            m.replace(k);
        }
        Ok(())
    }

    async fn remove(&self, rec: &RegistrationRecord) -> Result<(), StoreError> {
        let mut m = self.map.lock().expect("store lock is never poisoned");
        for k in rec.keys() {
            m.remove(k);
        }
        Ok(())
    }

    async fn save_alias(
        &self,
        alias: &str,
        target: &str,
        now: u64,
        expires_at: u64,
    ) -> Result<(), StoreError> {
        let mut m = self.aliases.lock().expect("store lock is never poisoned");
        // expired aliases go now and then (bounded by the live ones)
        if m.len() >= 64 && m.len().is_power_of_two() {
            m.retain(|_, (_, e)| *e > now);
        }
        m.insert(alias.into(), (target.into(), expires_at));
        Ok(())
    }

    async fn load_alias(&self, alias: &str, now: u64) -> Result<Option<String>, StoreError> {
        let m = self.aliases.lock().expect("store lock is never poisoned");
        Ok(m.get(alias)
            .filter(|(_, e)| *e > now)
            .map(|(t, _)| t.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn sample() -> RegistrationRecord {
        RegistrationRecord {
            impu: "sip:+15550001@ims.example.org".into(),
            impi: "001010000000001@ims.example.org".into(),
            implicit_set: vec![
                "sip:+15550001@ims.example.org".into(),
                "tel:+15550001".into(),
                "sip:barred@ims.example.org".into(),
            ],
            barred: vec!["sip:barred@ims.example.org".into()],
            bindings: vec![Binding {
                uri: "sip:+15550001@10.0.0.1:5060".into(),
                params: ";+sip.instance=\"<urn:gsma:imei:1>\";reg-id=1".into(),
                instance_id: Some("<urn:gsma:imei:1>".into()),
                reg_id: Some(1),
                call_id: "c1:x".into(),
                cseq: 7,
                expires_at: 1_800_000_000,
                path: vec!["<sip:term@pcscf;lr>".into()],
                q: None,
            }],
            state: RegState::Registered,
            user_data: Some("<IMSSubscription/>".into()),
            charging: None,
            reginfo_version: 2,
        }
    }

    #[test]
    fn encode_decode_round_trip_and_corruption() {
        let r = sample();
        let enc = r.encode();
        // the stored format (records outlive a version in Redis): `len:bytes` per field
        assert_eq!(
            String::from_utf8(enc.clone()).unwrap(),
            "2:v129:sip:+15550001@ims.example.org31:001010000000001@ims.example.org1:3\
             29:sip:+15550001@ims.example.org13:tel:+1555000126:sip:barred@ims.example.org1:1\
             26:sip:barred@ims.example.org1:R19:=<IMSSubscription/>0:1:21:1\
             27:sip:+15550001@10.0.0.1:506043:;+sip.instance=\"<urn:gsma:imei:1>\";reg-id=1\
             18:=<urn:gsma:imei:1>1:14:c1:x1:710:18000000001:119:<sip:term@pcscf;lr>0:"
        );
        assert_eq!(RegistrationRecord::decode(&enc).unwrap(), r);
        for cut in 0..enc.len() {
            assert!(
                RegistrationRecord::decode(&enc[..cut]).is_err(),
                "cut {cut}"
            );
        }
        let mut bad = enc.clone();
        bad.push(b'x');
        assert!(RegistrationRecord::decode(&bad).is_err());
        assert!(RegistrationRecord::decode(b"99999999999:x").is_err());
    }

    #[test]
    fn memory_store_shares_profile_skeletons_and_gives_the_profile_back() {
        let s = MemoryStore::new();
        let xml = |id: &str| {
            format!(
                "<?xml version=\"1.0\"?><IMSSubscription><PrivateID>{id}@x</PrivateID>\
                 <ServiceProfile><PublicIdentity><Identity> sip:{id}@x </Identity>\
                 </PublicIdentity><InitialFilterCriteria><Priority>1</Priority>\
                 <ApplicationServer><ServerName>sip:as@x</ServerName></ApplicationServer>\
                 </InitialFilterCriteria></ServiceProfile></IMSSubscription>"
            )
        };
        let mut records = Vec::new();
        for (i, id) in ["a", "bb", "ccc"].iter().enumerate() {
            let mut r = sample();
            r.impu = format!("sip:{id}@x");
            r.implicit_set = vec![r.impu.clone()];
            r.barred.clear();
            r.user_data = Some(xml(id));
            if i == 2 {
                // a document the cut does not apply to is kept whole
                r.user_data = Some(format!("{}<!-- ims-rs-profile-slot-0 -->", xml(id)));
            }
            records.push(r);
        }
        let w = std::task::Waker::noop();
        let mut cx = std::task::Context::from_waker(w);
        let mut run = |f: std::pin::Pin<&mut dyn Future<Output = ()>>| {
            assert!(f.poll(&mut cx).is_ready());
        };
        run(std::pin::pin!(async {
            for r in &records {
                s.save(r).await.unwrap();
            }
            for r in &records {
                assert_eq!(s.load(&r.impu).await.unwrap().as_ref(), Some(r));
                // without the profile: the rest as stored; a profile kept as a skeleton is
                // not put back together, one kept whole comes with the record
                let b = s.load_bindings(&r.impu).await.unwrap().unwrap();
                let whole = r.user_data.as_deref().is_some_and(|x| x.contains("slot-0"));
                assert_eq!(b.user_data.is_some(), whole, "{}", r.impu);
                assert_eq!(
                    RegistrationRecord {
                        user_data: r.user_data.clone(),
                        ..(*b).clone()
                    },
                    *r
                );
                assert!(s.contains(&r.impu).await.unwrap());
            }
            assert!(s.load_bindings("sip:nobody@x").await.unwrap().is_none());
            assert!(!s.contains("sip:nobody@x").await.unwrap());
        }));
        assert_eq!(s.templates.lock().unwrap().skeletons.len(), 1);
    }

    #[test]
    fn memory_store_keeps_the_identities_a_record_repeats_once() {
        let s = MemoryStore::new();
        let xml = |ids: &[&str]| {
            let mut x = String::from("<IMSSubscription><PrivateID>");
            x.push_str(ids[0]);
            x.push_str("</PrivateID><ServiceProfile>");
            for id in &ids[1..] {
                x.push_str("<PublicIdentity><Identity>");
                x.push_str(id);
                x.push_str("</Identity></PublicIdentity>");
            }
            x.push_str("</ServiceProfile></IMSSubscription>");
            x
        };
        let record = |impu: &str, impi: &str, set: &[&str], profile: &[&str]| {
            let mut r = sample();
            r.impu = impu.into();
            r.impi = impi.into();
            r.implicit_set = set.iter().map(|x| x.to_string()).collect();
            r.barred.clear();
            r.user_data = Some(xml(profile));
            r
        };
        let records = [
            // the usual: PrivateID, then the set's IMPUs, all repeated from the record
            record(
                "sip:u1@x",
                "u1@x",
                &["sip:u1@x", "tel:+1001"],
                &["u1@x", "sip:u1@x", "tel:+1001"],
            ),
            // texts that look like the compact form's references, an identity the record does
            // not hold, the IMPU twice and not first in the set
            record(
                "=0;",
                "=1;",
                &["tel:+1002", "=0;", "=x", "=0;"],
                &["=1;", "=", "sip:other@x", "=0;", "tel:+1002"],
            ),
            record("=", "", &["="], &["", "=", "="]),
            // an IMPI that is the IMPU without its scheme but looks like the compact form's
            // mark, and the empty one of the bare scheme
            record("sip:~", "~", &["sip:~"], &["~", "sip:~"]),
            record("sip:", "", &["sip:", "tel:+1003"], &["", "sip:"]),
            // …and not so: another scheme, a different case
            record("sips:u4@x", "u4@x", &["sips:u4@x"], &["u4@x"]),
            record("sip:U5@x", "u5@x", &["sip:U5@x"], &["u5@x"]),
        ];
        let mut records = records;
        // Path values: shared by number; one that looks like such a reference is kept as text
        records[1].bindings[0].path = vec!["^0;".into(), "<sip:term@pcscf;lr>".into()];
        records[2].bindings.push(Binding {
            uri: "sip:x@10.0.0.9".into(),
            path: vec![],
            ..records[2].bindings[0].clone()
        });
        let w = std::task::Waker::noop();
        let mut cx = std::task::Context::from_waker(w);
        let mut run = |f: std::pin::Pin<&mut dyn Future<Output = ()>>| {
            assert!(f.poll(&mut cx).is_ready());
        };
        run(std::pin::pin!(async {
            for r in &records {
                s.save(r).await.unwrap();
            }
            for r in &records {
                for k in r.keys() {
                    assert_eq!(s.load(k).await.unwrap().as_ref(), Some(r), "{k}");
                    let b = s.load_bindings(k).await.unwrap().unwrap();
                    assert_eq!(
                        RegistrationRecord {
                            user_data: r.user_data.clone(),
                            ..(*b).clone()
                        },
                        *r
                    );
                }
            }
            // the usual record is kept in less than its encoding: the IMPU once in the set,
            // the profile's three identities as references, the Path by number
            {
                let m = s.map.lock().unwrap();
                let k = m.get("sip:u1@x").unwrap();
                let full = records[0].encode().len();
                // the IMPI is the IMPU without `sip:`: one `~` for its field
                assert!(k.rec.starts_with("2:v18:sip:u1@x~1:2"), "{}", k.rec);
                assert!(
                    k.rec.len()
                        + 2 * "sip:u1@x".len()
                        + 2 * "u1@x".len()
                        + "tel:+1001".len()
                        + "<sip:term@pcscf;lr>".len()
                        <= full,
                    "{} of {full}: {}",
                    k.rec.len(),
                    k.rec
                );
                assert!(!k.rec.contains("<sip:term@pcscf;lr>"));
                assert_eq!(s.templates.lock().unwrap().paths.len(), 2);
                assert_eq!(m.get("tel:+1001").unwrap().as_str(), "tel:+1001");
            }
            s.remove(&records[1]).await.unwrap();
            for k in records[1].keys() {
                assert!(s.load(k).await.unwrap().is_none());
            }
            assert_eq!(
                s.load("sip:u1@x").await.unwrap().as_ref(),
                Some(&records[0])
            );
            assert_eq!(s.len(), records.len() - 1);
        }));
        // four shapes: two identities (the first and third profiles), four, one (the fourth
        // and fifth), none (the last two)
        assert_eq!(s.templates.lock().unwrap().skeletons.len(), 4);
    }

    #[test]
    fn memory_store_finds_by_any_identity() {
        let s = MemoryStore::new();
        let r = sample();
        let rt = |f: std::pin::Pin<&mut dyn Future<Output = ()>>| {
            // the memory store never pends: poll once with a no-op waker
            let w = std::task::Waker::noop();
            let mut cx = std::task::Context::from_waker(w);
            assert!(f.poll(&mut cx).is_ready());
        };
        rt(std::pin::pin!(async {
            s.save(&r).await.unwrap();
            assert_eq!(s.len(), 1);
            assert_eq!(s.load("tel:+15550001").await.unwrap().unwrap(), r);
            // every key holds the one stored encoding, not a copy, and gives the record back
            {
                let m = s.map.lock().unwrap();
                let (a, b) = (
                    m.get("tel:+15550001").unwrap(),
                    m.get(r.impu.as_str()).unwrap(),
                );
                assert!(Arc::ptr_eq(&a.rec, &b.rec));
                assert_eq!(m.len(), 3, "impu, tel URI and the barred IMPU");
                assert!(b.first() && !a.first());
                assert_eq!(m.iter().filter(|k| k.first()).count(), 1);
                #[cfg(target_pointer_width = "64")]
                assert_eq!(
                    std::mem::size_of::<Key>(),
                    24,
                    "one or more per registered user"
                );
            }
            let a = s.load_shared("tel:+15550001").await.unwrap().unwrap();
            assert_eq!(*a, r);
            // saving again replaces the record under every key
            let mut r2 = r.clone();
            r2.reginfo_version += 1;
            s.save(&r2).await.unwrap();
            assert_eq!(s.len(), 1);
            assert_eq!(
                s.load("sip:barred@ims.example.org").await.unwrap(),
                Some(r2)
            );
            assert!(s.load("sip:nobody@x").await.unwrap().is_none());
            s.remove(&r).await.unwrap();
            assert!(s.is_empty());
            assert!(s.load("tel:+15550001").await.unwrap().is_none());
        }));
    }
}
