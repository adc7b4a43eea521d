//! Concatenated short messages (TS 23.040 §9.2.3.24.1): [`split`] a text into the fewest parts of
//! the smallest encoding, and reassemble received parts with [`Reassembler`], sans-IO (the caller
//! gives the time).

use crate::alphabet::{NationalLanguage, Septets, ShiftTables};
use crate::params::DataCodingScheme;
use crate::ud::{header_septets, InformationElement, UserData, UserDataHeader, MAX_UD_OCTETS};
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// How [`split`] encodes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SplitOptions {
    /// The concatenation reference for a multi-part message (the caller keeps a counter).
    pub reference: u16,
    /// Use the 16-bit reference element (IEI 0x08) instead of the 8-bit one (IEI 0x00).
    pub sixteen_bit_reference: bool,
    /// National languages whose shift tables may be used when the default alphabet cannot
    /// represent the text (single shift, locking shift, or both, whichever gives fewer parts).
    pub national_languages: Vec<NationalLanguage>,
    /// Never use GSM 7 bit.
    pub force_ucs2: bool,
    /// Refuse texts needing more parts (at most 255).
    pub max_parts: u8,
}

impl Default for SplitOptions {
    fn default() -> SplitOptions {
        SplitOptions {
            reference: 0,
            sixteen_bit_reference: false,
            national_languages: Vec::new(),
            force_ucs2: false,
            max_parts: 255,
        }
    }
}

/// The result of [`split`]: the coding scheme and one user data per part (with its header).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Split {
    /// TP-DCS for every part (GSM 7 bit or UCS2, no class).
    pub dcs: DataCodingScheme,
    /// The GSM 7 bit tables used (default for UCS2).
    pub tables: ShiftTables,
    /// The parts, in order.
    pub parts: Vec<UserData>,
}

/// Why a text could not be split.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SplitError {
    /// More parts than [`SplitOptions::max_parts`].
    #[error("text needs {needed} parts, more than {max}")]
    TooManyParts {
        /// Parts needed.
        needed: usize,
        /// The limit.
        max: u8,
    },
}

/// A character's encoding cost unit: septets (GSM 7 bit) or octets (UCS2).
fn costs(text: &str, tables: Option<ShiftTables>) -> Option<Vec<usize>> {
    match tables {
        Some(t) => text
            .chars()
            .map(|c| t.encode_char(c).map(Septets::len))
            .collect(),
        None => Some(text.chars().map(|c| c.len_utf16() * 2).collect()),
    }
}

fn national_elements(t: ShiftTables) -> Vec<InformationElement> {
    let mut v = Vec::new();
    if let Some(l) = t.locking {
        v.push(InformationElement::NationalLockingShift(l));
    }
    if let Some(l) = t.single {
        v.push(InformationElement::NationalSingleShift(l));
    }
    v
}

/// Capacity of one part in septets (GSM 7 bit) or octets (UCS2, rounded down to whole units).
fn capacity(header_octets: usize, gsm7: bool) -> usize {
    let h = if header_octets == 0 {
        0
    } else {
        header_octets + 1
    };
    if gsm7 {
        160 - if h == 0 { 0 } else { header_septets(h).0 }
    } else {
        (MAX_UD_OCTETS - h) & !1
    }
}

/// A part's characters: start and end indices.
type Range = (usize, usize);

/// Cuts the character costs into parts of at most `cap`; returns the character ranges.
fn cut(costs: &[usize], cap: usize) -> Vec<Range> {
    let mut parts = Vec::new();
    let (mut start, mut used) = (0, 0);
    for (i, &c) in costs.iter().enumerate() {
        if used + c > cap {
            parts.push((start, i));
            start = i;
            used = 0;
        }
        used += c;
    }
    if start < costs.len() || parts.is_empty() {
        parts.push((start, costs.len()));
    }
    parts
}

/// Splits `text` into the fewest short messages: the default GSM 7 bit alphabet when it can
/// represent the text, else the allowed national language tables, else UCS2. A part never ends
/// inside an escape sequence or a surrogate pair. Multi-part messages carry the concatenation
/// element (and every part repeats the national language elements).
pub fn split(text: &str, options: &SplitOptions) -> Result<Split, SplitError> {
    let concat_len = if options.sixteen_bit_reference { 6 } else { 5 };
    let mut candidates: Vec<Option<ShiftTables>> = Vec::new();
    if !options.force_ucs2 {
        candidates.push(Some(ShiftTables::DEFAULT));
        for &l in &options.national_languages {
            candidates.push(Some(ShiftTables {
                locking: None,
                single: Some(l),
            }));
            if l.has_locking_table() {
                candidates.push(Some(ShiftTables {
                    locking: Some(l),
                    single: None,
                }));
                candidates.push(Some(ShiftTables {
                    locking: Some(l),
                    single: Some(l),
                }));
            }
        }
    }
    candidates.push(None);

    // the best candidate so far: its tables (None: UCS2) and its parts' character ranges
    let mut best: Option<(Option<ShiftTables>, Vec<Range>)> = None;
    for cand in candidates {
        let Some(c) = costs(text, cand) else { continue };
        let gsm7 = cand.is_some();
        let nat: usize = cand.map_or(0, |t| national_elements(t).len() * 3);
        let total: usize = c.iter().sum();
        let single_cap = capacity(nat, gsm7);
        let ranges = if total <= single_cap {
            vec![(0, c.len())]
        } else {
            cut(&c, capacity(nat + concat_len, gsm7))
        };
        let better = match &best {
            None => true,
            Some((_, r)) => ranges.len() < r.len(),
        };
        if better {
            best = Some((cand, ranges));
        }
    }
    let (tables, ranges) = best.expect("UCS2 is always a candidate");
    if ranges.len() > usize::from(options.max_parts) {
        return Err(SplitError::TooManyParts {
            needed: ranges.len(),
            max: options.max_parts,
        });
    }
    let chars: Vec<char> = text.chars().collect();
    let total = ranges.len();
    let parts = ranges
        .iter()
        .enumerate()
        .map(|(i, &(a, b))| {
            let piece: String = chars[a..b].iter().collect();
            let mut elements = Vec::new();
            if total > 1 {
                elements.push(if options.sixteen_bit_reference {
                    InformationElement::Concat16 {
                        reference: options.reference,
                        total: total as u8,
                        sequence: (i + 1) as u8,
                    }
                } else {
                    InformationElement::Concat8 {
                        reference: options.reference as u8,
                        total: total as u8,
                        sequence: (i + 1) as u8,
                    }
                });
            }
            let body = match tables {
                Some(t) => {
                    elements.extend(national_elements(t));
                    t.encode(&piece).expect("costs checked every character")
                }
                None => UserData::ucs2(&piece).body,
            };
            UserData {
                header: (!elements.is_empty()).then_some(UserDataHeader { elements }),
                body,
            }
        })
        .collect();
    Ok(Split {
        dcs: if tables.is_some() {
            DataCodingScheme::GSM7
        } else {
            DataCodingScheme::UCS2
        },
        tables: tables.unwrap_or_default(),
        parts,
    })
}

/// Reassembly limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReassemblyLimits {
    /// Messages being reassembled at once; a new one beyond this evicts the oldest.
    pub max_pending: usize,
    /// How long a message may stay incomplete.
    pub timeout: Duration,
}

impl Default for ReassemblyLimits {
    fn default() -> ReassemblyLimits {
        ReassemblyLimits {
            max_pending: 1024,
            timeout: Duration::from_secs(300),
        }
    }
}

/// What identifies one concatenated message: originator, reference and number of parts.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ConcatKey {
    /// The originator (TP-OA digits or text, or any string the caller chooses).
    pub originator: String,
    /// The concatenation reference.
    pub reference: u16,
    /// The number of parts.
    pub total: u8,
}

/// A reassembled message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reassembled {
    /// The key (for a single message: reference 0, total 1).
    pub key: ConcatKey,
    /// The text (GSM 7 bit or UCS2), `None` for 8-bit data.
    pub text: Option<String>,
    /// The joined bodies: septets (GSM 7 bit) or octets.
    pub data: Vec<u8>,
    /// The header of the first part (ports, national language elements).
    pub header: Option<UserDataHeader>,
}

/// What [`Reassembler::push`] did with a part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushResult {
    /// The message is complete.
    Complete(Reassembled),
    /// Kept; more parts are awaited.
    Pending {
        /// Parts received so far.
        received: usize,
        /// Parts in the message.
        total: u8,
    },
    /// A part already received (ignored).
    Duplicate,
    /// A part with sequence number 0, beyond the total, or total 0 (ignored, TS 23.040
    /// §9.2.3.24.1).
    Invalid,
}

#[derive(Debug)]
struct Pending {
    first_seen: Instant,
    dcs: DataCodingScheme,
    parts: Vec<Option<UserData>>,
}

/// Reassembles concatenated short messages keyed by [`ConcatKey`]; parts may arrive in any order
/// and more than once. Sans-IO: the caller passes `now` and drives expiry with
/// [`Reassembler::poll_timeout`] / [`Reassembler::handle_timeout`].
#[derive(Debug, Default)]
pub struct Reassembler {
    limits: ReassemblyLimits,
    pending: HashMap<ConcatKey, Pending>,
}

fn joined(dcs: DataCodingScheme, parts: Vec<UserData>, key: ConcatKey) -> Reassembled {
    let header = parts.first().and_then(|p| p.header.clone());
    let data: Vec<u8> = parts.into_iter().flat_map(|p| p.body).collect();
    let ud = UserData {
        header: header.clone(),
        body: data,
    };
    Reassembled {
        key,
        text: ud.text(dcs),
        data: ud.body,
        header,
    }
}

impl Reassembler {
    /// A reassembler with these limits.
    pub fn new(limits: ReassemblyLimits) -> Reassembler {
        Reassembler {
            limits,
            pending: HashMap::new(),
        }
    }

    /// Messages being reassembled.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// Adds a received part (the user data and TP-DCS of an SMS-DELIVER or SMS-SUBMIT).
    pub fn push(
        &mut self,
        now: Instant,
        originator: &str,
        dcs: DataCodingScheme,
        user_data: &UserData,
    ) -> PushResult {
        let Some(c) = user_data.header.as_ref().and_then(UserDataHeader::concat) else {
            let key = ConcatKey {
                originator: originator.to_owned(),
                reference: 0,
                total: 1,
            };
            return PushResult::Complete(joined(dcs, vec![user_data.clone()], key));
        };
        if c.total == 0 || c.sequence == 0 || c.sequence > c.total {
            return PushResult::Invalid;
        }
        let key = ConcatKey {
            originator: originator.to_owned(),
            reference: c.reference,
            total: c.total,
        };
        if !self.pending.contains_key(&key) && self.pending.len() >= self.limits.max_pending {
            if let Some(oldest) = self
                .pending
                .iter()
                .min_by_key(|(_, p)| p.first_seen)
                .map(|(k, _)| k.clone())
            {
                self.pending.remove(&oldest);
            }
        }
        let entry = self.pending.entry(key.clone()).or_insert_with(|| Pending {
            first_seen: now,
            dcs,
            parts: vec![None; usize::from(c.total)],
        });
        let slot = &mut entry.parts[usize::from(c.sequence - 1)];
        if slot.is_some() {
            return PushResult::Duplicate;
        }
        *slot = Some(user_data.clone());
        let received = entry.parts.iter().filter(|p| p.is_some()).count();
        if received < usize::from(c.total) {
            return PushResult::Pending {
                received,
                total: c.total,
            };
        }
        let p = self.pending.remove(&key).expect("entry just filled");
        let parts = p
            .parts
            .into_iter()
            .map(|x| x.expect("all parts present"))
            .collect();
        PushResult::Complete(joined(p.dcs, parts, key))
    }

    /// When the oldest incomplete message expires.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.pending
            .values()
            .map(|p| p.first_seen + self.limits.timeout)
            .min()
    }

    /// Drops the messages whose timeout has passed at `now`; returns their keys.
    pub fn handle_timeout(&mut self, now: Instant) -> Vec<ConcatKey> {
        let timeout = self.limits.timeout;
        let expired: Vec<ConcatKey> = self
            .pending
            .iter()
            .filter(|(_, p)| p.first_seen + timeout <= now)
            .map(|(k, _)| k.clone())
            .collect();
        for k in &expired {
            self.pending.remove(k);
        }
        expired
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alphabet::ends_in_escape;

    #[test]
    fn short_text_is_one_part_without_header() {
        let s = split("hello", &SplitOptions::default()).unwrap();
        assert_eq!(s.parts.len(), 1);
        assert!(s.parts[0].header.is_none());
        assert_eq!(s.dcs, DataCodingScheme::GSM7);
    }

    #[test]
    fn boundaries_160_153_70_67() {
        let o = SplitOptions::default();
        assert_eq!(split(&"a".repeat(160), &o).unwrap().parts.len(), 1);
        let two = split(&"a".repeat(161), &o).unwrap();
        assert_eq!(two.parts.len(), 2);
        assert_eq!(two.parts[0].body.len(), 153);
        assert_eq!(split(&"ж".repeat(70), &o).unwrap().parts.len(), 1);
        let u = split(&"ж".repeat(71), &o).unwrap();
        assert_eq!(u.dcs, DataCodingScheme::UCS2);
        assert_eq!(u.parts[0].body.len(), 134);
    }

    #[test]
    fn escape_never_split() {
        let text = format!("{}€", "a".repeat(152));
        let s = split(
            &format!("{text}{}", "b".repeat(20)),
            &SplitOptions::default(),
        )
        .unwrap();
        assert_eq!(s.parts[0].body.len(), 152);
        assert!(!ends_in_escape(&s.parts[0].body));
    }

    #[test]
    fn turkish_single_shift_beats_ucs2() {
        let o = SplitOptions {
            national_languages: vec![NationalLanguage::Turkish],
            ..SplitOptions::default()
        };
        let s = split("Güle güle, ışık ş", &o).unwrap();
        assert_eq!(s.dcs, DataCodingScheme::GSM7);
        assert_eq!(s.parts.len(), 1);
        assert_eq!(s.parts[0].text(s.dcs).unwrap(), "Güle güle, ışık ş");
    }

    #[test]
    #[allow(clippy::disallowed_methods)] // a test needs one real instant to offset from
    fn reassembly_out_of_order_duplicates_timeout() {
        let o = SplitOptions {
            reference: 7,
            ..SplitOptions::default()
        };
        let text = "x".repeat(400);
        let s = split(&text, &o).unwrap();
        assert_eq!(s.parts.len(), 3);
        let t0 = Instant::now();
        let mut r = Reassembler::default();
        assert!(matches!(
            r.push(t0, "447700900456", s.dcs, &s.parts[2]),
            PushResult::Pending {
                received: 1,
                total: 3
            }
        ));
        assert_eq!(
            r.push(t0, "447700900456", s.dcs, &s.parts[2]),
            PushResult::Duplicate
        );
        // same reference from another originator is another message
        assert!(matches!(
            r.push(t0, "other", s.dcs, &s.parts[0]),
            PushResult::Pending { .. }
        ));
        assert!(matches!(
            r.push(t0, "447700900456", s.dcs, &s.parts[0]),
            PushResult::Pending { .. }
        ));
        match r.push(t0, "447700900456", s.dcs, &s.parts[1]) {
            PushResult::Complete(m) => assert_eq!(m.text.as_deref(), Some(text.as_str())),
            other => panic!("{other:?}"),
        }
        assert_eq!(r.pending(), 1);
        let due = r.poll_timeout().unwrap();
        assert!(r.handle_timeout(due - Duration::from_millis(1)).is_empty());
        assert_eq!(r.handle_timeout(due).len(), 1);
        assert_eq!(r.pending(), 0);
    }
}
