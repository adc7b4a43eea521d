//! The IP-SM-GW for SMS over IP (TS 24.341 §5.3, TS 23.204): it receives the RP messages UEs put
//! in SIP MESSAGE requests (`application/vnd.3gpp.sms`), acknowledges submissions, delivers them
//! to the recipient as SMS-DELIVER, stores what cannot be delivered (unregistered recipient,
//! memory capacity exceeded) and retries on registration, on RP-SMMA or after a back-off, and
//! sends SMS-STATUS-REPORTs when asked to.
//!
//! Sans-IO: inputs are `(sender IMPU, body, now)`; outputs are [`Action`]s (MESSAGE bodies to send
//! to an IMPU); timers through [`IpSmGw::poll_timeout`] / [`IpSmGw::handle_timeout`]. Time is
//! seconds since the Unix epoch. Storage is behind [`SmsStore`] ([`FileSmsStore`] by default).

use ims_sms::{
    answer, decode, Address, Direction, FailureCause, RpBody, RpCause, RpMessage, Status,
    Timestamp, Tpdu,
};
use std::collections::BTreeMap;
use std::path::PathBuf;

#[path = "ipsmgw_sgd.rs"]
pub mod sgd;

/// The MIME type of an SMS over IP body.
pub const CONTENT_TYPE: &str = "application/vnd.3gpp.sms";

/// IP-SM-GW policy.
#[derive(Debug, Clone)]
pub struct IpSmGwConfig {
    /// The service centre address put in RP-OA of MT RP-DATA (international digits, e.g.
    /// `+15550000`).
    pub sc_address: String,
    /// Delivery attempts before giving up.
    pub max_attempts: u32,
    /// Seconds between attempts after a temporary failure (doubled after each).
    pub retry_interval: u64,
    /// Seconds a message is kept at most (its validity).
    pub validity: u64,
    /// The dummy MSISDN put in TP-OA of an SMS-DELIVER whose sender has no MSISDN when the
    /// recipient is addressed by SIP URI (MSISDN-less operation, TS 24.341 Annex B.7, TS 23.204
    /// §6.0a: a value that tells the recipient the sender is MSISDN-less; operator-chosen).
    pub dummy_msisdn: String,
    /// Seconds the IP-SM-GW waits for the recipient's RP-ACK/RP-ERROR to an RP-DATA: TS 24.011
    /// timer TR1N (35–45 s, §10, Table 10.1). A message reloaded from the store with an attempt
    /// in flight (its SIP transaction died with the previous process) is tried again once
    /// this has passed since that attempt, instead of waiting for its back-off.
    pub ack_wait: u64,
}

impl Default for IpSmGwConfig {
    fn default() -> Self {
        IpSmGwConfig {
            sc_address: "+15550000".into(),
            max_attempts: 5,
            retry_interval: 30,
            validity: 3 * 24 * 3600,
            dummy_msisdn: "+000000000000000".into(),
            ack_wait: 40,
        }
    }
}

/// Something to send: a MESSAGE to `to` with an `application/vnd.3gpp.sms` body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Action {
    /// The IMPU to send to (`tel:+…` or a SIP URI).
    pub to: String,
    /// The RP message.
    pub body: Vec<u8>,
    /// For an SMS-DELIVER to a recipient addressed by SIP URI (MSISDN-less operation, TS
    /// 24.341 Annex B.7): the sender, whose SIP URI goes in the `<From>` of the
    /// `application/vnd.3gpp.sms+xml` short-message-info sent along (Annex C.1).
    pub msisdn_less_from: Option<String>,
    /// For an SMS-DELIVER: which delivery attempt it is. When the MESSAGE carrying it gets no
    /// 2xx, hand it to [`IpSmGw::attempt_failed`] (only that attempt of that message failed).
    pub attempt: Option<Attempt>,
}

/// One delivery attempt of a stored message: the RP-DATA(SMS-DELIVER) sent with `rp_mr`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attempt {
    /// The message ([`StoredSms::id`]).
    pub id: u64,
    /// The RP-Message-Reference of that RP-DATA (what the recipient's RP-ACK names).
    pub rp_mr: u8,
}

impl Action {
    fn new(to: impl Into<String>, body: Vec<u8>) -> Action {
        Action {
            to: to.into(),
            body,
            msisdn_less_from: None,
            attempt: None,
        }
    }
}

/// How a delivery attempt that failed counts: the IP-SM-GW's view of TS 23.040 §11.1 (the
/// error an IP-SM-GW reports for a failed SMS-DELIVER: a SIP transaction timeout is "absent
/// subscriber", a SIP failure response or an RP-ERROR other than memory capacity exceeded an
/// "equipment protocol error") with the SC's choice between trying again and giving up (TS
/// 23.040 §9.2.3.15 TP-Status; TS 23.204 §6.0a.1: on a permanent error the IP-SM-GW makes no
/// further attempt and tells the sender that delivery failed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// Worth trying again: kept, retried after the back-off, on registration or on RP-SMMA,
    /// within [`IpSmGwConfig::max_attempts`] and [`IpSmGwConfig::validity`].
    Temporary,
    /// The recipient is not registered (480): kept for its registration (the SC's "absent
    /// subscriber", TS 23.040 §11.1, waits for the alert); the back-off keeps trying as a
    /// safety net, but such attempts do not use up [`IpSmGwConfig::max_attempts`]: only the
    /// [`IpSmGwConfig::validity`] bounds the wait (status report 0x46 when it is over).
    Absent,
    /// The recipient's memory is full (RP-ERROR cause 22, TP-FCS 0xD0/0xD3): kept without a
    /// retry timer until the recipient sends RP-SMMA or registers (within the validity).
    MemoryFull,
    /// Trying again would meet the same refusal: the message leaves the store at once and the
    /// sender's SMS-STATUS-REPORT (when TP-SRR asked for one) carries this TP-Status.
    Permanent(Status),
}

impl Failure {
    /// The outcome of the MESSAGE carrying an SMS-DELIVER (or a page-mode IM) that got no 2xx:
    /// its final status, `None` when none came (Timer F, a transport error).
    ///
    /// Absent: 480 (not registered). Temporary: no answer, 408 (a SIP transaction timeout is
    /// "absent subscriber", TS 23.040 §11.1, but it may have reached a registered recipient),
    /// 486, 429, 491 and the server failures 500, 502, 503, 504, 580 (RFC 3261 §21.5: the
    /// request may succeed later). Permanent, TP-Status by meaning:
    /// 404, 410, 484, 604 "not obtainable"; 403, 600, 603 "connection rejected by SME"; 405,
    /// 415, 416, 420, 488, 501, 606 "incompatible destination"; any other 3xx (redirections
    /// are not followed), 4xx, 5xx (505, 513) and 6xx "remote procedure error" — the same
    /// request would be refused again.
    pub fn of_sip(status: Option<u16>) -> Failure {
        let Some(code) = status else {
            return Failure::Temporary;
        };
        match code {
            480 => Failure::Absent,
            408 | 486 | 429 | 491 | 500 | 502 | 503 | 504 | 580 => Failure::Temporary,
            404 | 410 | 484 | 604 => Failure::Permanent(Status::NOT_OBTAINABLE),
            403 | 600 | 603 => Failure::Permanent(Status::CONNECTION_REJECTED),
            405 | 415 | 416 | 420 | 488 | 501 | 606 => {
                Failure::Permanent(Status::INCOMPATIBLE_DESTINATION)
            }
            300..=699 => Failure::Permanent(Status::REMOTE_PROCEDURE_ERROR),
            // not a failure status (1xx, 2xx) or not a status at all: nothing proves a refusal
            _ => Failure::Temporary,
        }
    }

    /// Whether the message is given up at once (a permanent failure).
    pub fn is_permanent(self) -> bool {
        matches!(self, Failure::Permanent(_))
    }

    /// The recipient's RP-ERROR to an RP-DATA(SMS-DELIVER): its RP-Cause and the TP-FCS of the
    /// SMS-DELIVER-REPORT it carries, if any (the TP-FCS says more and is read first).
    ///
    /// Memory full: cause 22, TP-FCS 0xD0 or 0xD3. Temporary: TP-FCS 0xD4 (toolkit busy) and
    /// 0xD2 (error in MS); causes 81 (invalid reference), 98 (not compatible with the protocol
    /// state), 111 (protocol error, unspecified), the network causes (38, 41, 42, 47) and any
    /// cause not listed (TS 24.011 §8.2.5.4). Permanent: TP-FCS 0x80-0x9F (TP-PID/TP-DCS not
    /// supported), 0xB0 (TPDU not supported), 0xD1 (no SMS storage) "incompatible
    /// destination", 0xD5 (data download error) "remote procedure error"; cause 21 "short
    /// message transfer rejected" (the recipient does not want it, TS 24.011 Annex E)
    /// "connection rejected by SME"; 95, 96, 97, 99 (the message itself is malformed for the
    /// recipient: sending it again meets the same error) "remote procedure error".
    pub fn of_rp_error(cause: RpCause, fcs: Option<FailureCause>) -> Failure {
        match fcs.map(|f| f.0) {
            Some(0xD0 | 0xD3) => return Failure::MemoryFull,
            Some(0xD2 | 0xD4) => return Failure::Temporary,
            Some(0x80..=0x9F | 0xB0 | 0xD1) => {
                return Failure::Permanent(Status::INCOMPATIBLE_DESTINATION)
            }
            Some(0xD5) => return Failure::Permanent(Status::REMOTE_PROCEDURE_ERROR),
            _ => {}
        }
        match cause.0 {
            22 => Failure::MemoryFull,
            21 => Failure::Permanent(Status::CONNECTION_REJECTED),
            95 | 96 | 97 | 99 => Failure::Permanent(Status::REMOTE_PROCEDURE_ERROR),
            _ => Failure::Temporary,
        }
    }
}

/// Most RP-MRs of earlier attempts remembered per message ([`StoredSms::earlier`]).
const EARLIER_ATTEMPTS: usize = 8;

/// A short message in the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSms {
    /// Store key.
    pub id: u64,
    /// Who submitted it (IMPU).
    pub sender: String,
    /// Who it goes to (IMPU).
    pub recipient: String,
    /// The SMS-SUBMIT TPDU as received (re-decoded to build the DELIVER and the status report).
    pub submit: Vec<u8>,
    /// When the IP-SM-GW accepted it (seconds since the epoch).
    pub accepted_at: u64,
    /// Attempts made.
    pub attempts: u32,
    /// When to try next (0: waiting for registration or RP-SMMA).
    pub next_attempt: u64,
    /// RP-MR of the RP-DATA in flight, if any.
    pub in_flight: Option<u8>,
    /// When the last attempt was made (seconds since the epoch; 0: unknown, a record of an
    /// older version).
    pub last_attempt: u64,
    /// RP-MRs of earlier attempts (oldest first, at most 8): a SIP failure or the retry
    /// timer ended them without an answer, but the SMS-DELIVER may have arrived all the same
    /// (a lost 2xx, a TCP connection reset after the request went out), so the recipient's
    /// RP-ACK naming one of them still completes the message — it is not delivered again.
    pub earlier: Vec<u8>,
    /// The last attempt found the recipient unregistered ([`Failure::Absent`]): it waits for
    /// the registration within its validity, whatever the attempts made.
    pub absent: bool,
}

impl StoredSms {
    /// Ends the attempt in flight without an answer; its RP-MR stays acceptable.
    fn end_attempt(&mut self) {
        if let Some(mr) = self.in_flight.take() {
            self.earlier.retain(|m| *m != mr);
            if self.earlier.len() >= EARLIER_ATTEMPTS {
                self.earlier.remove(0);
            }
            self.earlier.push(mr);
        }
    }
}

/// A submission the IP-SM-GW accepted ([`IpSmGw::receive_submission`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    /// Its store key ([`StoredSms::id`]).
    pub id: u64,
    /// The RP-Message-Reference of the submitter's RP-DATA (what its RP-ACK/RP-ERROR names).
    pub rp_mr: u8,
    /// The submitter (IMPU).
    pub sender: String,
}

/// Where stored messages live, so they survive a restart.
pub trait SmsStore: Send {
    /// Saves (or replaces) a message.
    fn save(&mut self, sms: &StoredSms) -> std::io::Result<()>;
    /// Removes a message.
    fn remove(&mut self, id: u64) -> std::io::Result<()>;
    /// Every stored message.
    fn load_all(&mut self) -> std::io::Result<Vec<StoredSms>>;
}

/// No persistence (tests, or when losing messages on restart is acceptable).
#[derive(Debug, Default)]
pub struct MemorySmsStore;

impl SmsStore for MemorySmsStore {
    fn save(&mut self, _: &StoredSms) -> std::io::Result<()> {
        Ok(())
    }
    fn remove(&mut self, _: u64) -> std::io::Result<()> {
        Ok(())
    }
    fn load_all(&mut self) -> std::io::Result<Vec<StoredSms>> {
        Ok(Vec::new())
    }
}

impl SmsStore for Box<dyn SmsStore> {
    fn save(&mut self, sms: &StoredSms) -> std::io::Result<()> {
        (**self).save(sms)
    }
    fn remove(&mut self, id: u64) -> std::io::Result<()> {
        (**self).remove(id)
    }
    fn load_all(&mut self) -> std::io::Result<Vec<StoredSms>> {
        (**self).load_all()
    }
}

/// One file per message in a directory (written to a temporary name, then renamed).
#[derive(Debug)]
pub struct FileSmsStore {
    dir: PathBuf,
}

impl FileSmsStore {
    /// Uses (and creates) `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> std::io::Result<FileSmsStore> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir)?;
        Ok(FileSmsStore { dir })
    }

    fn path(&self, id: u64) -> PathBuf {
        self.dir.join(format!("{id:016x}.sms"))
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

impl StoredSms {
    pub(crate) fn to_text(&self) -> String {
        // one field per line; identities cannot contain line breaks (they came from SIP URIs)
        let mut t = format!(
            "v1\n{}\n{}\n{}\n{}\n{}\n{}\n{}\n",
            self.id,
            self.sender,
            self.recipient,
            hex(&self.submit),
            self.accepted_at,
            self.attempts,
            self.next_attempt
        );
        // optional lines (older records lack them): the RP-MR of the attempt in flight ("-":
        // none), so that the recipient's RP-ACK still matches after a restart; when it was
        // made; the RP-MRs of earlier attempts
        let in_flight = self
            .in_flight
            .map_or_else(|| "-".to_string(), |m| m.to_string());
        let earlier: Vec<String> = self.earlier.iter().map(u8::to_string).collect();
        t.push_str(&format!(
            "{in_flight}\n{}\n{}\n{}\n",
            self.last_attempt,
            earlier.join(","),
            u8::from(self.absent)
        ));
        t
    }

    pub(crate) fn from_text(s: &str) -> Option<StoredSms> {
        let mut l = s.lines();
        if l.next()? != "v1" {
            return None;
        }
        Some(StoredSms {
            id: l.next()?.parse().ok()?,
            sender: l.next()?.to_string(),
            recipient: l.next()?.to_string(),
            submit: unhex(l.next()?)?,
            accepted_at: l.next()?.parse().ok()?,
            attempts: l.next()?.parse().ok()?,
            next_attempt: l.next()?.parse().ok()?,
            in_flight: l.next().and_then(|m| m.parse().ok()),
            last_attempt: l.next().and_then(|m| m.parse().ok()).unwrap_or(0),
            earlier: l
                .next()
                .map(|m| m.split(',').filter_map(|x| x.parse().ok()).collect())
                .unwrap_or_default(),
            absent: l.next() == Some("1"),
        })
    }
}

impl SmsStore for FileSmsStore {
    fn save(&mut self, sms: &StoredSms) -> std::io::Result<()> {
        let tmp = self.dir.join(format!("{:016x}.tmp", sms.id));
        std::fs::write(&tmp, sms.to_text())?;
        std::fs::rename(tmp, self.path(sms.id))
    }

    fn remove(&mut self, id: u64) -> std::io::Result<()> {
        match std::fs::remove_file(self.path(id)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    fn load_all(&mut self) -> std::io::Result<Vec<StoredSms>> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(&self.dir)? {
            let p = e?.path();
            if p.extension().is_some_and(|x| x == "sms") {
                if let Some(s) = std::fs::read_to_string(&p)
                    .ok()
                    .and_then(|t| StoredSms::from_text(&t))
                {
                    out.push(s);
                }
            }
        }
        out.sort_by_key(|s| s.id);
        Ok(out)
    }
}

/// The MSISDN of an IMPU: `tel:+1555…` or `sip:+1555…@…` → `+1555…`.
fn msisdn(impu: &str) -> Option<String> {
    let rest = impu
        .strip_prefix("tel:")
        .or_else(|| impu.strip_prefix("sip:"))
        .or_else(|| impu.strip_prefix("sips:"))?;
    let end = rest.find(['@', ';', '?']).unwrap_or(rest.len());
    let n = &rest[..end];
    let digits = n.strip_prefix('+')?;
    (!digits.is_empty() && digits.len() <= 15 && digits.bytes().all(|b| b.is_ascii_digit()))
        .then(|| n.to_string())
}

/// The calendar time of `now` (seconds since the epoch, UTC): `(year, month, day, hour, minute,
/// second)`.
pub fn civil(now: u64) -> (i64, u8, u8, u8, u8, u8) {
    let days = now / 86_400;
    let secs = now % 86_400;
    // civil-from-days (proleptic Gregorian)
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u8;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u8;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (
        year,
        month,
        day,
        (secs / 3600) as u8,
        (secs / 60 % 60) as u8,
        (secs % 60) as u8,
    )
}

/// The calendar time of `now` (UTC) as a TP-SCTS.
pub fn timestamp(now: u64) -> Timestamp {
    let (year, month, day, hour, minute, second) = civil(now);
    Timestamp {
        year: (year.rem_euclid(100)) as u8,
        month,
        day,
        hour,
        minute,
        second,
        tz_quarter_hours: 0,
    }
}

/// The RP-Cause answering an MSISDN-less submission whose delivery failed for good with
/// TP-Status `status` (TS 24.011 §8.2.5.4, Annex E): not obtainable -> 30 unknown subscriber,
/// connection rejected -> 21 short message transfer rejected, incompatible destination -> 69
/// requested facility not implemented, else 127 interworking, unspecified.
fn mo_cause(status: Status) -> RpCause {
    match status {
        Status::NOT_OBTAINABLE => RpCause::UNKNOWN_SUBSCRIBER,
        Status::CONNECTION_REJECTED => RpCause::SHORT_MESSAGE_TRANSFER_REJECTED,
        Status::INCOMPATIBLE_DESTINATION => RpCause::FACILITY_NOT_IMPLEMENTED,
        _ => RpCause::INTERWORKING_UNSPECIFIED,
    }
}

/// Seconds from an attempt (the `attempts`-th) to the next one.
fn backoff(cfg: &IpSmGwConfig, attempts: u32) -> u64 {
    cfg.retry_interval.saturating_mul(1u64 << attempts.min(10))
}

/// Whether a recipient IMPU is a known subscriber.
type Directory = Box<dyn Fn(&str) -> bool + Send>;

/// The IP-SM-GW core.
pub struct IpSmGw<S = MemorySmsStore> {
    cfg: IpSmGwConfig,
    store: S,
    queue: BTreeMap<u64, StoredSms>,
    next_id: u64,
    next_mr: u8,
    /// Decides whether a recipient exists at all (an HSS lookup); unknown ones get RP-ERROR 30.
    directory: Option<Directory>,
    /// The messages whose stored record the last call saved or removed.
    written: Vec<u64>,
    /// The RP-ACKs of MSISDN-less submissions held until their first delivery attempt's SIP
    /// outcome (in memory only: a restart meanwhile leaves the submitter to its TR1M).
    held: BTreeMap<u64, Action>,
}

impl<S> std::fmt::Debug for IpSmGw<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IpSmGw")
            .field("queued", &self.queue.len())
            .finish_non_exhaustive()
    }
}

impl<S: SmsStore> IpSmGw<S> {
    /// An IP-SM-GW over `store`, with what the store holds queued again. A message whose
    /// attempt was in flight (its MESSAGE transaction died with the previous process) keeps
    /// that attempt's RP-MR, so the recipient's RP-ACK — a retransmission reaching this
    /// process — still completes it, and is tried again [`IpSmGwConfig::ack_wait`] (TR1N)
    /// after that attempt when no answer came, not after its back-off; it counts as one of
    /// the [`IpSmGwConfig::max_attempts`].
    pub fn new(cfg: IpSmGwConfig, mut store: S) -> std::io::Result<IpSmGw<S>> {
        let mut queue = BTreeMap::new();
        for mut s in store.load_all()? {
            if s.in_flight.is_some() {
                // older records do not say when: the back-off the attempt set tells
                let sent = match s.last_attempt {
                    0 => s.next_attempt.saturating_sub(backoff(&cfg, s.attempts)),
                    t => t,
                };
                let resume = sent.saturating_add(cfg.ack_wait);
                if s.next_attempt == 0 || resume < s.next_attempt {
                    s.next_attempt = resume;
                }
            }
            queue.insert(s.id, s);
        }
        let next_id = queue.keys().next_back().map_or(1, |k| k + 1);
        // attempts in flight at a restart keep their RP-MR; new ones count on from the highest
        let next_mr = queue
            .values()
            .flat_map(|s| s.in_flight.iter().chain(&s.earlier).copied())
            .max()
            .unwrap_or(0);
        Ok(IpSmGw {
            cfg,
            store,
            queue,
            next_id,
            next_mr,
            directory: None,
            written: Vec::new(),
            held: BTreeMap::new(),
        })
    }

    /// Sets the subscriber directory consulted for MO submissions.
    pub fn with_directory(mut self, known: impl Fn(&str) -> bool + Send + 'static) -> Self {
        self.directory = Some(Box::new(known));
        self
    }

    /// Messages waiting.
    pub fn queued(&self) -> impl Iterator<Item = &StoredSms> + '_ {
        self.queue.values()
    }

    fn sc(&self) -> Address {
        Address::international(self.cfg.sc_address.trim_start_matches('+'))
    }

    fn mr(&mut self) -> u8 {
        self.next_mr = self.next_mr.wrapping_add(1);
        self.next_mr
    }

    /// A fresh RP-Message-Reference for an MT RP-DATA sent outside the store (an SGd TFR's
    /// delivery, [`sgd`]), from the counter the stored messages' attempts use, so the two do
    /// not name the same reference at once.
    pub fn next_rp_mr(&mut self) -> u8 {
        self.mr()
    }

    /// The service centre address of MT RP-DATA ([`IpSmGwConfig::sc_address`]).
    pub fn sc_address(&self) -> &str {
        &self.cfg.sc_address
    }

    /// The messages ([`StoredSms::id`]) whose stored record the last call (`receive…`,
    /// `withdraw`, `delivery_failed`, `registered`, `handle_timeout`) saved or removed. With a
    /// store whose writes complete later (Redis), what that call returned rests on those
    /// writes: an RP-ACK on the message being kept, an SMS-DELIVER on its attempt being
    /// recorded (so that the recipient's RP-ACK matches after a restart), a status report on
    /// the message being gone (so that it is not delivered again after a restart). The caller
    /// confirms them with the store before sending the actions.
    pub fn written(&self) -> &[u64] {
        &self.written
    }

    fn wrote(&mut self, id: u64) {
        if !self.written.contains(&id) {
            self.written.push(id);
        }
    }

    /// Writes the message to the store; false when the store refused it.
    fn persist(&mut self, id: u64) -> bool {
        self.wrote(id);
        match self.queue.get(&id) {
            // a failed update leaves the message in memory; it is written again with the next
            // change (only the first write, which the RP-ACK depends on, is checked)
            Some(s) => self.store.save(s).is_ok(),
            None => false,
        }
    }

    fn drop_message(&mut self, id: u64) -> Option<StoredSms> {
        self.held.remove(&id);
        let s = self.queue.remove(&id)?;
        self.wrote(id);
        let _ = self.store.remove(id);
        Some(s)
    }

    /// The MT RP-DATA carrying the SMS-DELIVER of `sms`, marking it in flight.
    fn attempt(&mut self, id: u64, now: u64) -> Option<Action> {
        let mr = self.mr();
        let sc = self.sc();
        let s = self.queue.get_mut(&id)?;
        let Ok(Tpdu::Submit(submit)) =
            Tpdu::decode(&s.submit, Direction::MsToNetwork, ims_sms::Carrier::RpData)
        else {
            return None;
        };
        // a recipient addressed by SIP URI: MSISDN-less operation (TS 24.341 Annex B.7)
        let msisdn_less = !s.recipient.starts_with("tel:");
        let originator = match msisdn(&s.sender) {
            Some(n) => Address::international(n.trim_start_matches('+')),
            None if msisdn_less => {
                Address::international(self.cfg.dummy_msisdn.trim_start_matches('+'))
            }
            None => Address::alphanumeric(&s.sender.chars().take(11).collect::<String>()),
        };
        let deliver = answer::deliver_from_submit(&submit, originator, timestamp(s.accepted_at));
        let tpdu = Tpdu::Deliver(deliver).encode().ok()?;
        let body = RpMessage::data_mt(mr, sc, &tpdu).encode().ok()?;
        s.attempts += 1;
        // an attempt the retry timer replaces may still be answered
        s.end_attempt();
        s.in_flight = Some(mr);
        s.last_attempt = now;
        s.next_attempt = now + backoff(&self.cfg, s.attempts);
        let action = Action {
            to: s.recipient.clone(),
            body,
            msisdn_less_from: msisdn_less.then(|| s.sender.clone()),
            attempt: Some(Attempt { id, rp_mr: mr }),
        };
        self.persist(id);
        Some(action)
    }

    /// A status report to the sender of `s`, when it asked for one.
    fn status_report(&mut self, s: &StoredSms, status: Status, now: u64) -> Option<Action> {
        let Ok(Tpdu::Submit(submit)) =
            Tpdu::decode(&s.submit, Direction::MsToNetwork, ims_sms::Carrier::RpData)
        else {
            return None;
        };
        let sr =
            answer::status_report_for(&submit, timestamp(s.accepted_at), timestamp(now), status)?;
        let tpdu = Tpdu::StatusReport(sr).encode().ok()?;
        let mr = self.mr();
        let body = RpMessage::data_mt(mr, self.sc(), &tpdu).encode().ok()?;
        Some(Action::new(s.sender.clone(), body))
    }

    /// A body received from `from` (the sending UE's IMPU, from P-Asserted-Identity). The caller
    /// answers the MESSAGE with 202 Accepted (TS 24.341 §5.3.2.4) and sends the actions.
    ///
    /// An SMS-SUBMIT is acknowledged (RP-ACK) only once [`SmsStore::save`] took it: when the
    /// store refuses it the submitter gets RP-ERROR cause 41 "temporary failure" (TS 24.011
    /// §8.2.5.4, Annex E: the network is not working correctly for a short time, the MS may
    /// try again) and nothing is kept.
    pub fn receive(&mut self, from: &str, body: &[u8], now: u64) -> Vec<Action> {
        self.receive_submission(from, body, now).0
    }

    /// As [`IpSmGw::receive`], and when the body was an SMS-SUBMIT the IP-SM-GW accepted, which
    /// message that is. For a store whose writes complete later (Redis), the caller holds the
    /// actions until the store confirms the write, and calls [`IpSmGw::withdraw`] instead of
    /// sending them when it does not: the RP-ACK promises delivery, so it may only leave once
    /// the message is durable.
    pub fn receive_submission(
        &mut self,
        from: &str,
        body: &[u8],
        now: u64,
    ) -> (Vec<Action>, Option<Accepted>) {
        self.receive_submission_to(from, body, now, None)
    }

    /// As [`IpSmGw::receive_submission`]; an SMS-SUBMIT goes to `recipient` (a SIP URI) instead
    /// of its TP-DA when given: MSISDN-less operation (TS 24.341 Annex B.7), where the UE puts
    /// a dummy MSISDN in TP-DA and the recipient's SIP URI in the `<To>` of the
    /// short-message-info sent along.
    pub fn receive_submission_to(
        &mut self,
        from: &str,
        body: &[u8],
        now: u64,
        recipient: Option<&str>,
    ) -> (Vec<Action>, Option<Accepted>) {
        let mut accepted = None;
        self.written.clear();
        let out = self.receive_inner(from, body, now, recipient, &mut accepted);
        (out, accepted)
    }

    /// Takes back a submission [`IpSmGw::receive_submission`] accepted but whose store write
    /// was not confirmed (failed, or not in time): the message is dropped (its removal goes to
    /// the store after the write, so the store ends without it) and the answer to the
    /// submitter is RP-ERROR cause 41 "temporary failure" instead of the RP-ACK.
    pub fn withdraw(&mut self, accepted: Accepted) -> Vec<Action> {
        self.written.clear();
        let sender = self.drop_message(accepted.id).map(|s| s.sender);
        let to = sender.unwrap_or(accepted.sender);
        answer::rp_error(
            Direction::MsToNetwork,
            accepted.rp_mr,
            RpCause::TEMPORARY_FAILURE,
        )
        .map(|body| vec![Action::new(to, body)])
        .unwrap_or_default()
    }

    fn receive_inner(
        &mut self,
        from: &str,
        body: &[u8],
        now: u64,
        to_uri: Option<&str>,
        accepted: &mut Option<Accepted>,
    ) -> Vec<Action> {
        let sms = match decode(body, Direction::MsToNetwork) {
            Ok(s) => s,
            Err(e) => {
                return e
                    .answer(body, Direction::MsToNetwork)
                    .map(|b| vec![Action::new(from, b)])
                    .unwrap_or_default();
            }
        };
        let mr = sms.rp.message_reference;
        let reply = |b: Result<Vec<u8>, _>| -> Vec<Action> {
            b.map(|body| vec![Action::new(from, body)])
                .unwrap_or_default()
        };
        match (&sms.rp.body, sms.tpdu) {
            (RpBody::Data { user_data, .. }, Some(Tpdu::Submit(submit))) => {
                let recipient = match (to_uri, submit.destination.to_string()) {
                    (Some(uri), _) => uri.to_string(),
                    (None, d) if d.starts_with('+') => format!("tel:{d}"),
                    (None, d) => format!("tel:{d}"),
                };
                if self
                    .directory
                    .as_ref()
                    .is_some_and(|known| !known(&recipient))
                {
                    return reply(answer::rp_error(
                        Direction::MsToNetwork,
                        mr,
                        RpCause::UNKNOWN_SUBSCRIBER,
                    ));
                }
                if submit.reject_duplicates
                    && self.holds(from, submit.message_reference, &recipient)
                {
                    // TS 23.040 §9.2.3.25, §9.2.3.6: a submitter that heard nothing (its RP-ACK
                    // lost, e.g. to a crash of this server) repeats the SMS-SUBMIT with the
                    // same TP-MR and TP-RD set; the copy we still hold is the one delivered,
                    // this one is refused with TP-FCS 0xC5 "duplicate SM" (not delivered twice)
                    let fcs = (FailureCause::DUPLICATE_SM, timestamp(now));
                    return reply(answer::submit_report_error(
                        &sms.rp,
                        RpCause::PROTOCOL_ERROR_UNSPECIFIED,
                        Some(fcs),
                    ));
                }
                let id = self.next_id;
                self.next_id += 1;
                self.queue.insert(
                    id,
                    StoredSms {
                        id,
                        sender: from.to_string(),
                        recipient,
                        submit: user_data.to_vec(),
                        accepted_at: now,
                        attempts: 0,
                        next_attempt: now,
                        in_flight: None,
                        last_attempt: 0,
                        earlier: Vec::new(),
                        absent: false,
                    },
                );
                if !self.persist(id) {
                    // not stored: no promise to deliver it later (TS 24.011 Annex E cause 41)
                    self.queue.remove(&id);
                    return reply(answer::rp_error(
                        Direction::MsToNetwork,
                        mr,
                        RpCause::TEMPORARY_FAILURE,
                    ));
                }
                *accepted = Some(Accepted {
                    id,
                    rp_mr: mr,
                    sender: from.to_string(),
                });
                let mut out = reply(answer::submit_report_ack(&sms.rp, timestamp(now)));
                if to_uri.is_some() {
                    // MSISDN-less (TS 23.204 §6.0a.1, §6.3a): the terminating IMS network is
                    // tried first and the submitter hears how that went — RP-ERROR on a
                    // permanent refusal, else the RP-ACK — once its SIP outcome is known
                    if let Some(ack) = out.pop() {
                        self.held.insert(id, ack);
                    }
                    let deliver = self.attempt(id, now);
                    if deliver.is_none() {
                        out.extend(self.held.remove(&id));
                    }
                    out.extend(deliver);
                    return out;
                }
                out.extend(self.attempt(id, now));
                out
            }
            (RpBody::Data { .. }, Some(Tpdu::Command(cmd))) => {
                if !matches!(cmd.command_type.0, 0..=3) {
                    // reserved or SC-specific: TP-FCS 0xA1 "command unsupported" (§9.2.3.22)
                    let fcs = (FailureCause::COMMAND_UNSUPPORTED, timestamp(now));
                    return reply(answer::submit_report_error(
                        &sms.rp,
                        RpCause::PROTOCOL_ERROR_UNSPECIFIED,
                        Some(fcs),
                    ));
                }
                let mut out = reply(answer::submit_report_ack(&sms.rp, timestamp(now)));
                out.extend(self.command(from, &cmd, now));
                out
            }
            (RpBody::Data { .. }, _) => reply(answer::rp_error(
                Direction::MsToNetwork,
                mr,
                RpCause::INVALID_MANDATORY_INFORMATION,
            )),
            (RpBody::Ack { .. }, _) => {
                // the recipient's RP-ACK (SMS-DELIVER-REPORT) for a message in flight, else
                // for an earlier attempt of one (whose MESSAGE got no 2xx, or which the retry
                // timer replaced, but which arrived): either way it was delivered
                let of = |earlier: bool| {
                    self.queue
                        .iter()
                        .find(|(_, s)| {
                            s.recipient == from
                                && if earlier {
                                    s.earlier.contains(&mr)
                                } else {
                                    s.in_flight == Some(mr)
                                }
                        })
                        .map(|(id, _)| *id)
                };
                let done = of(false).or_else(|| of(true));
                let held = done.and_then(|id| self.held.remove(&id));
                let Some(s) = done.and_then(|id| self.drop_message(id)) else {
                    return Vec::new();
                };
                // (an MSISDN-less submitter still waiting hears it was accepted first)
                held.into_iter()
                    .chain(self.status_report(&s, Status::DELIVERED, now))
                    .collect()
            }
            (RpBody::Error { cause, .. }, tpdu) => {
                let failed = self
                    .queue
                    .iter()
                    .find(|(_, s)| s.recipient == from && s.in_flight == Some(mr))
                    .map(|(id, _)| *id);
                let Some(id) = failed else { return Vec::new() };
                let fcs = match tpdu {
                    Some(Tpdu::DeliverReport(r)) => r.failure_cause,
                    _ => None,
                };
                self.failed(id, Failure::of_rp_error(*cause, fcs), now)
            }
            (RpBody::Smma, _) => {
                // memory available again: RP-ACK and deliver what waits for this UE
                let mut out = reply(RpMessage::ack(Direction::NetworkToMs, mr, None).encode());
                out.extend(self.flush(&[from.to_string()], now));
                out
            }
        }
    }

    /// Whether a message `from` submitted with TP-MR `tp_mr` to `recipient` is still held (not
    /// delivered, given up or deleted yet): what TP-RD asks to refuse (TS 23.040 §9.2.3.25).
    fn holds(&self, from: &str, tp_mr: u8, recipient: &str) -> bool {
        self.queue.values().any(|s| {
            s.sender == from
                && s.recipient == recipient
                && matches!(
                    Tpdu::decode(&s.submit, Direction::MsToNetwork, ims_sms::Carrier::RpData),
                    Ok(Tpdu::Submit(sub)) if sub.message_reference == tp_mr
                )
        })
    }

    /// An SMS-COMMAND from `from` (TS 23.040 §9.2.2.4, §9.2.3.19) about the message it
    /// submitted with TP-MR = the command's TP-MN: 0 enquiry, 1 cancel the status report
    /// request, 2 delete, 3 request a status report. The result goes back in an
    /// SMS-STATUS-REPORT with TP-SRQ set (§9.2.3.26: the result of an SMS-COMMAND) naming the
    /// command's TP-MR — always for an enquiry (that is its answer), for the others when the
    /// command's TP-SRR asks for it. Its TP-ST: 0x49 "SM does not exist" when no such message
    /// waits (delivered, given up, deleted, or never submitted), 0x47 "SM deleted by the
    /// originating SME" after a delete, else 0x22 "no response from SME" in the "SC still
    /// trying" class (bits 6-5 = 01): the message waits for its next attempt.
    fn command(&mut self, from: &str, cmd: &ims_sms::Command, now: u64) -> Vec<Action> {
        let found = self.queue.iter().find_map(|(id, s)| {
            match Tpdu::decode(&s.submit, Direction::MsToNetwork, ims_sms::Carrier::RpData) {
                Ok(Tpdu::Submit(sub))
                    if s.sender == from && sub.message_reference == cmd.message_number =>
                {
                    Some((*id, s.accepted_at, sub))
                }
                _ => None,
            }
        });
        let kind = cmd.command_type.0;
        let (status, recipient, accepted_at) = match found {
            None => (Status(0x49), cmd.destination.clone(), now),
            Some((id, at, sub)) => {
                let status = match kind {
                    2 => {
                        self.drop_message(id);
                        Status(0x47)
                    }
                    1 | 3 => {
                        let mut changed = sub.clone();
                        changed.status_report_request = kind == 3;
                        if let (Ok(b), Some(s)) =
                            (Tpdu::Submit(changed).encode(), self.queue.get_mut(&id))
                        {
                            s.submit = b;
                            self.persist(id);
                        }
                        Status(0x22)
                    }
                    _ => Status(0x22),
                };
                (status, sub.destination, at)
            }
        };
        if kind != 0 && !cmd.status_report_request {
            return Vec::new();
        }
        let sr = ims_sms::StatusReport {
            more_messages_to_send: false,
            loop_prevention: false,
            status_report_qualifier: true,
            message_reference: cmd.message_reference,
            recipient,
            service_centre_time_stamp: timestamp(accepted_at),
            discharge_time: timestamp(now),
            status,
            pi_reserved: None,
            pid: None,
            dcs: None,
            user_data: None,
        };
        let Ok(tpdu) = Tpdu::StatusReport(sr).encode() else {
            return Vec::new();
        };
        let mr = self.mr();
        RpMessage::data_mt(mr, self.sc(), &tpdu)
            .encode()
            .map(|body| vec![Action::new(from, body)])
            .unwrap_or_default()
    }

    fn failed(&mut self, id: u64, failure: Failure, now: u64) -> Vec<Action> {
        let held = self.held.remove(&id);
        if let (Some(ack), Failure::Permanent(status)) = (&held, failure) {
            // an MSISDN-less submission whose first attempt was refused for good: the
            // submitter's RP-DATA is still unanswered, it gets the RP-ERROR (TS 23.204
            // §6.0a.1: "responds back to sender that SMS delivery has failed") and no status
            // report follows
            let to = ack.to.clone();
            let rp_mr = decode(&ack.body, Direction::NetworkToMs)
                .map(|r| r.rp.message_reference)
                .unwrap_or(0);
            self.drop_message(id);
            return answer::rp_error(Direction::MsToNetwork, rp_mr, mo_cause(status))
                .map(|body| vec![Action::new(to, body)])
                .unwrap_or_default();
        }
        let mut out: Vec<Action> = held.into_iter().collect();
        out.extend(self.failed_stored(id, failure, now));
        out
    }

    fn failed_stored(&mut self, id: u64, failure: Failure, now: u64) -> Vec<Action> {
        let Some(s) = self.queue.get_mut(&id) else {
            return Vec::new();
        };
        s.end_attempt();
        if failure == Failure::MemoryFull {
            s.next_attempt = 0;
        }
        s.absent = failure == Failure::Absent;
        let expired = now.saturating_sub(s.accepted_at) >= self.cfg.validity;
        let status = match failure {
            // final at once: no further attempt (TS 23.204 §6.0a.1)
            Failure::Permanent(status) => Some(status),
            _ if expired => Some(Status::VALIDITY_PERIOD_EXPIRED),
            _ if s.attempts >= self.cfg.max_attempts && !s.absent => {
                Some(Status::NO_RESPONSE_FROM_SME)
            }
            _ => None,
        };
        if let Some(status) = status {
            let s = self.drop_message(id).expect("present just above");
            return self.status_report(&s, status, now).into_iter().collect();
        }
        self.persist(id);
        Vec::new()
    }

    /// When `s` is due: its next attempt, else (waiting for registration or RP-SMMA) the end
    /// of its validity, when it is given up.
    fn due(&self, s: &StoredSms) -> u64 {
        let end = s.accepted_at.saturating_add(self.cfg.validity);
        match s.next_attempt {
            0 => end,
            t => t.min(end),
        }
    }

    /// The MT MESSAGE carrying the delivery attempt `attempt` ([`Action::attempt`]) failed at
    /// the SIP level (no 2xx: recipient unregistered 480, unknown 404, timeout 408, transport
    /// error): keep the message for later, or give up after the configured attempts. Only that
    /// attempt ends: nothing changes when the message is gone (its RP-ACK came first) or
    /// another attempt of it is in flight. A SIP failure does not prove the SMS-DELIVER did not
    /// arrive, so the attempt's RP-MR stays acceptable ([`StoredSms::earlier`]).
    pub fn attempt_failed(&mut self, attempt: Attempt, now: u64) -> Vec<Action> {
        self.attempt_failed_with(attempt, Failure::Temporary, now)
    }

    /// As [`IpSmGw::attempt_failed`], counted as `failure` (see [`Failure::of_sip`]): a
    /// permanent one ends the message at once — it leaves the store and its sender gets the
    /// SMS-STATUS-REPORT with that TP-Status when TP-SRR asked for one — even though the
    /// SMS-DELIVER may have arrived (the recipient's RP-ACK then finds nothing; a status
    /// report already went out).
    pub fn attempt_failed_with(
        &mut self,
        attempt: Attempt,
        failure: Failure,
        now: u64,
    ) -> Vec<Action> {
        self.written.clear();
        let current = self
            .queue
            .get(&attempt.id)
            .is_some_and(|s| s.in_flight == Some(attempt.rp_mr));
        if !current {
            return Vec::new();
        }
        self.failed(attempt.id, failure, now)
    }

    /// The SMS-DELIVER of `attempt` did not leave after all: the store did not confirm the
    /// record of the attempt in time, and a delivery whose RP-MR a restarted IP-SM-GW would
    /// not know could be made twice (the recipient's RP-ACK would match nothing). The attempt
    /// does not count; the message is tried again after [`IpSmGwConfig::retry_interval`].
    /// The actions returned are the RP-ACK of an MSISDN-less submission held for this
    /// attempt (the message is stored: it is accepted).
    pub fn attempt_unsent(&mut self, attempt: Attempt, now: u64) -> Vec<Action> {
        self.written.clear();
        let Some(s) = self.queue.get_mut(&attempt.id) else {
            return Vec::new();
        };
        if s.in_flight != Some(attempt.rp_mr) {
            return Vec::new();
        }
        s.in_flight = None;
        s.attempts = s.attempts.saturating_sub(1);
        s.next_attempt = now + self.cfg.retry_interval;
        self.persist(attempt.id);
        self.held.remove(&attempt.id).into_iter().collect()
    }

    /// The MESSAGE carrying `attempt` got a 2xx: the SMS-DELIVER reached the recipient's
    /// network. Returns the RP-ACK of an MSISDN-less submission held until then (TS 23.204
    /// §6.3a), else nothing; the message stays until the recipient's RP-ACK.
    pub fn attempt_sent(&mut self, attempt: Attempt) -> Vec<Action> {
        self.written.clear();
        self.held.remove(&attempt.id).into_iter().collect()
    }

    /// As [`IpSmGw::attempt_failed`] for every attempt in flight to `to` (when the caller did
    /// not keep [`Action::attempt`]: it also ends the attempts of other messages to `to`
    /// whose MESSAGE did get its 2xx; their RP-ACK still completes them).
    pub fn delivery_failed(&mut self, to: &str, now: u64) -> Vec<Action> {
        self.written.clear();
        let ids: Vec<u64> = self
            .queue
            .iter()
            .filter(|(_, s)| s.recipient == to && s.in_flight.is_some())
            .map(|(id, _)| *id)
            .collect();
        let mut out = Vec::new();
        for id in ids {
            out.extend(self.failed(id, Failure::Temporary, now));
        }
        out
    }

    /// One of `identities` (an implicit registration set) registered: deliver what waits for it.
    pub fn registered(&mut self, identities: &[String], now: u64) -> Vec<Action> {
        self.written.clear();
        self.flush(identities, now)
    }

    fn flush(&mut self, identities: &[String], now: u64) -> Vec<Action> {
        let ids: Vec<u64> = self
            .queue
            .iter()
            .filter(|(_, s)| s.in_flight.is_none() && identities.contains(&s.recipient))
            .map(|(id, _)| *id)
            .collect();
        ids.into_iter()
            .filter_map(|id| self.attempt(id, now))
            .collect()
    }

    /// The next retry instant, or the end of the validity of a message waiting for its
    /// recipient's registration or RP-SMMA.
    pub fn poll_timeout(&self) -> Option<u64> {
        self.queue.values().map(|s| self.due(s)).min()
    }

    /// Retries what is due at `now` (an attempt still in flight counts as failed: no answer),
    /// and gives up what is out of attempts or past its validity (status report 0x62 "no
    /// response from SME" or 0x46 "validity period expired", when TP-SRR asked for one).
    pub fn handle_timeout(&mut self, now: u64) -> Vec<Action> {
        self.written.clear();
        let due: Vec<u64> = self
            .queue
            .iter()
            .filter(|(_, s)| self.due(s) <= now)
            .map(|(id, _)| *id)
            .collect();
        let mut out = Vec::new();
        for id in due {
            let expired = self.queue.get(&id).is_some_and(|s| {
                (s.attempts >= self.cfg.max_attempts && !(s.absent && s.in_flight.is_none()))
                    || now.saturating_sub(s.accepted_at) >= self.cfg.validity
            });
            if expired {
                out.extend(self.failed(id, Failure::Temporary, now));
            } else {
                // (no SIP outcome in time: a held MSISDN-less answer is an RP-ACK)
                out.extend(self.held.remove(&id));
                out.extend(self.attempt(id, now));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALICE: &str = "sip:+15550001@ims.example.org";
    const BOB: &str = "tel:+15550002";

    /// RP-DATA (MS→network, MR 7) with SMS-SUBMIT "hello" to +15550002, TP-SRR set.
    fn submit(srr: bool, tp_mr: u8) -> Vec<u8> {
        submit_to("15550002", srr, tp_mr)
    }

    fn submit_to(dest: &str, srr: bool, tp_mr: u8) -> Vec<u8> {
        submit_rd(dest, srr, tp_mr, false)
    }

    /// [`submit_to`] with TP-RD (reject duplicates) as `rd`.
    fn submit_rd(dest: &str, srr: bool, tp_mr: u8, rd: bool) -> Vec<u8> {
        let sub = ims_sms::Submit {
            reject_duplicates: rd,
            reply_path: false,
            status_report_request: srr,
            message_reference: tp_mr,
            destination: Address::international(dest),
            pid: Default::default(),
            dcs: Default::default(),
            validity_period: None,
            user_data: ims_sms::UserData::gsm7("hello", Default::default()).unwrap(),
        };
        let tpdu = Tpdu::Submit(sub).encode().unwrap();
        RpMessage::data_mo(7, Address::international("15550000"), &tpdu)
            .encode()
            .unwrap()
    }

    fn rp(body: &[u8], dir: Direction) -> ims_sms::Sms<'_> {
        decode(body, dir).unwrap()
    }

    /// TS 23.040 §9.2.3.25/§9.2.3.6: a submitter that got no RP-ACK repeats the SMS-SUBMIT
    /// with the same TP-MR and TP-RD set; while the first copy is held it is refused with
    /// TP-FCS 0xC5 and nothing more is delivered; once it is gone, or without TP-RD, or with
    /// another TP-MR / TP-DA / sender, the submission is a new message.
    #[test]
    fn a_repeated_submission_with_tp_rd_is_refused_as_a_duplicate_while_held() {
        let mut gw = IpSmGw::new(IpSmGwConfig::default(), MemorySmsStore).unwrap();
        let now = 1_700_000_000;
        let out = gw.receive(ALICE, &submit_rd("15550002", true, 9, false), now);
        let (mr, _) = delivery(&out);
        // the repeat: same TP-MR and TP-DA, TP-RD set
        let out = gw.receive(ALICE, &submit_rd("15550002", true, 9, true), now + 40);
        assert_eq!(out.len(), 1, "only the refusal: {out:?}");
        assert_eq!(out[0].to, ALICE);
        let e = rp(&out[0].body, Direction::NetworkToMs);
        assert_eq!((e.rp.name(), e.rp.message_reference), ("RP-ERROR", 7));
        let Some(Tpdu::SubmitReport(r)) = &e.tpdu else {
            panic!("SMS-SUBMIT-REPORT")
        };
        assert_eq!(r.failure_cause, Some(FailureCause::DUPLICATE_SM));
        assert_eq!(gw.queued().count(), 1);
        // another TP-MR, another destination or another sender: new messages
        let accepted = |gw: &mut IpSmGw, from: &str, dest: &str, tp_mr: u8, rd: bool, t: u64| {
            let out = gw.receive(from, &submit_rd(dest, true, tp_mr, rd), t);
            rp(&out[0].body, Direction::NetworkToMs).rp.name() == "RP-ACK"
        };
        assert!(accepted(&mut gw, ALICE, "15550002", 10, true, now + 41));
        assert!(accepted(&mut gw, ALICE, "15550003", 9, true, now + 41));
        let carol = "sip:+15550004@ims.example.org";
        assert!(accepted(&mut gw, carol, "15550002", 9, true, now + 41));
        assert_eq!(gw.queued().count(), 4);
        // the first one delivered (Bob's RP-ACK): a repeat of it is a new message (none held)
        let out = gw.receive(BOB, &bob_acks(mr), now + 42);
        assert_eq!(out.len(), 1, "the status report");
        assert_eq!(gw.queued().count(), 3);
        assert!(accepted(&mut gw, ALICE, "15550002", 9, true, now + 43));
        // without TP-RD the SC accepts a copy it still holds (§9.2.3.25: TP-RD 0)
        assert!(accepted(&mut gw, ALICE, "15550002", 9, false, now + 44));
        assert_eq!(gw.queued().count(), 5);
    }

    #[test]
    fn mo_submit_mt_deliver_ack_and_status_report() {
        let mut gw = IpSmGw::new(IpSmGwConfig::default(), MemorySmsStore).unwrap();
        let now = 1_700_000_000;
        let out = gw.receive(ALICE, &submit(true, 42), now);
        assert_eq!(out.len(), 2);
        // RP-ACK with SMS-SUBMIT-REPORT to Alice
        assert_eq!(out[0].to, ALICE);
        let ack = rp(&out[0].body, Direction::NetworkToMs);
        assert_eq!((ack.rp.name(), ack.rp.message_reference), ("RP-ACK", 7));
        assert!(matches!(ack.tpdu, Some(Tpdu::SubmitReport(_))));
        // RP-DATA with SMS-DELIVER to Bob, originator Alice's MSISDN
        assert_eq!(out[1].to, BOB);
        let mt = rp(&out[1].body, Direction::NetworkToMs);
        let Some(Tpdu::Deliver(d)) = &mt.tpdu else {
            panic!("DELIVER")
        };
        assert_eq!(d.originator.to_string(), "+15550001");
        assert!(d.status_report_indication);
        assert_eq!(mt.tpdu.as_ref().unwrap().text().as_deref(), Some("hello"));
        // Bob's RP-ACK with a DELIVER-REPORT: Alice gets a STATUS-REPORT
        let bob_ack = answer::deliver_report_ack(&mt.rp).unwrap();
        let out = gw.receive(BOB, &bob_ack, now + 1);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].to, ALICE);
        let sr = rp(&out[0].body, Direction::NetworkToMs);
        let Some(Tpdu::StatusReport(s)) = &sr.tpdu else {
            panic!("STATUS-REPORT")
        };
        assert_eq!((s.message_reference, s.status), (42, Status::DELIVERED));
        assert_eq!(gw.queued().count(), 0);
    }

    #[test]
    fn memory_full_waits_for_smma_and_unregistered_waits_for_registration() {
        let mut gw = IpSmGw::new(IpSmGwConfig::default(), MemorySmsStore).unwrap();
        let now = 1_700_000_000;
        let out = gw.receive(ALICE, &submit(false, 1), now);
        let mt = rp(&out[1].body, Direction::NetworkToMs);
        // memory capacity exceeded: no retry timer, wait for RP-SMMA
        let err = answer::deliver_report_error(
            &mt.rp,
            RpCause::MEMORY_CAPACITY_EXCEEDED,
            ims_sms::FailureCause::MEMORY_CAPACITY_EXCEEDED,
        )
        .unwrap();
        assert!(gw.receive(BOB, &err, now).is_empty());
        assert_eq!(
            gw.poll_timeout(),
            Some(now + IpSmGwConfig::default().validity),
            "no retry timer: only the end of its validity"
        );
        let smma = RpMessage::smma(9).encode().unwrap();
        let out = gw.receive(BOB, &smma, now + 60);
        assert_eq!(out.len(), 2, "RP-ACK to the SMMA and the delivery");
        assert_eq!(rp(&out[0].body, Direction::NetworkToMs).rp.name(), "RP-ACK");
        assert_eq!(out[1].to, BOB);
        // the recipient is unregistered: SIP 480, then it registers
        assert!(gw.delivery_failed(BOB, now + 61).is_empty());
        let out = gw.registered(
            &["sip:+15550002@ims.example.org".into(), BOB.into()],
            now + 70,
        );
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].to, BOB);
    }

    #[test]
    fn retries_then_status_report_on_final_failure() {
        let cfg = IpSmGwConfig {
            max_attempts: 2,
            retry_interval: 10,
            ..IpSmGwConfig::default()
        };
        let mut gw = IpSmGw::new(cfg, MemorySmsStore).unwrap();
        let now = 1_700_000_000;
        gw.receive(ALICE, &submit(true, 5), now);
        assert!(gw.delivery_failed(BOB, now).is_empty());
        let t = gw.poll_timeout().unwrap();
        assert_eq!(t, now + 20);
        let out = gw.handle_timeout(t);
        assert_eq!(out.len(), 1, "second attempt");
        let out = gw.delivery_failed(BOB, t + 1);
        assert_eq!(out.len(), 1, "gave up: status report");
        let sr = rp(&out[0].body, Direction::NetworkToMs);
        let Some(Tpdu::StatusReport(s)) = &sr.tpdu else {
            panic!()
        };
        assert_eq!(s.status, Status(0x62));
        assert_eq!(gw.queued().count(), 0);
    }

    #[test]
    fn bad_input_unknown_recipient_and_command_delete() {
        let mut gw = IpSmGw::new(IpSmGwConfig::default(), MemorySmsStore)
            .unwrap()
            .with_directory(|r| r == BOB);
        let now = 1_700_000_000;
        // truncated RP message: RP-ERROR with the decoder's cause
        let out = gw.receive(ALICE, &[0x00, 0x07], now);
        let e = rp(&out[0].body, Direction::NetworkToMs);
        assert_eq!(e.rp.name(), "RP-ERROR");
        // unknown recipient: RP-ERROR 30
        let to_carol = submit_to("15550003", false, 3);
        let out = gw.receive(ALICE, &to_carol, now);
        let Some(e) = out.first().map(|a| rp(&a.body, Direction::NetworkToMs)) else {
            panic!()
        };
        assert!(
            matches!(e.rp.body, RpBody::Error { cause, .. } if cause == RpCause::UNKNOWN_SUBSCRIBER)
        );
        // delete a stored message with SMS-COMMAND
        gw.receive(ALICE, &submit(false, 9), now);
        gw.delivery_failed(BOB, now);
        assert_eq!(gw.queued().count(), 1);
        let cmd = ims_sms::Command {
            status_report_request: false,
            user_data_header_indication: false,
            message_reference: 10,
            pid: Default::default(),
            command_type: ims_sms::CommandType(2),
            message_number: 9,
            destination: Address::international("15550002"),
            command_data: Vec::new(),
        };
        let tpdu = Tpdu::Command(cmd).encode().unwrap();
        let body = RpMessage::data_mo(11, Address::international("15550000"), &tpdu)
            .encode()
            .unwrap();
        let out = gw.receive(ALICE, &body, now);
        assert_eq!(rp(&out[0].body, Direction::NetworkToMs).rp.name(), "RP-ACK");
        assert_eq!(gw.queued().count(), 0);
    }

    #[test]
    fn file_store_survives_a_restart() {
        let dir = std::env::temp_dir().join(format!("ims-nf-sms-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let now = 1_700_000_000;
        {
            let mut gw =
                IpSmGw::new(IpSmGwConfig::default(), FileSmsStore::new(&dir).unwrap()).unwrap();
            gw.receive(ALICE, &submit(false, 1), now);
            gw.delivery_failed(BOB, now);
        }
        let mut gw =
            IpSmGw::new(IpSmGwConfig::default(), FileSmsStore::new(&dir).unwrap()).unwrap();
        assert_eq!(gw.queued().count(), 1);
        let out = gw.registered(&[BOB.into()], now + 5);
        assert_eq!(out.len(), 1);
        let mt = rp(&out[0].body, Direction::NetworkToMs);
        assert_eq!(mt.tpdu.unwrap().text().as_deref(), Some("hello"));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn an_attempt_in_flight_survives_a_restart_so_its_rp_ack_still_matches() {
        let dir = std::env::temp_dir().join(format!("ims-nf-sms-mr-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let now = 1_700_000_000;
        let deliver_mr = {
            let mut gw =
                IpSmGw::new(IpSmGwConfig::default(), FileSmsStore::new(&dir).unwrap()).unwrap();
            let out = gw.receive(ALICE, &submit(true, 1), now);
            let id = gw.queued().next().unwrap().id;
            assert_eq!(gw.written(), [id], "saved, then its attempt recorded");
            rp(&out[1].body, Direction::NetworkToMs)
                .rp
                .message_reference
        };
        // restart right after the SMS-DELIVER left: Bob's RP-ACK reaches the new instance
        let mut gw =
            IpSmGw::new(IpSmGwConfig::default(), FileSmsStore::new(&dir).unwrap()).unwrap();
        assert_eq!(gw.queued().next().unwrap().in_flight, Some(deliver_mr));
        assert!(
            gw.registered(&[BOB.into()], now + 1).is_empty(),
            "not sent again while its attempt is in flight"
        );
        let ack = RpMessage::ack(Direction::MsToNetwork, deliver_mr, None)
            .encode()
            .unwrap();
        let out = gw.receive(BOB, &ack, now + 2);
        assert_eq!(gw.queued().count(), 0, "delivered once");
        let id = 1;
        assert_eq!(gw.written(), [id], "the removal the status report rests on");
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].to, ALICE, "the status report");
        assert!(std::fs::read_dir(&dir).unwrap().next().is_none());
        // the next attempt does not reuse the RP-MR of the one in flight at the restart
        gw.receive(ALICE, &submit(false, 2), now + 3);
        assert_ne!(gw.queued().next().unwrap().in_flight, Some(deliver_mr));
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A store whose writes fail while `down`; it records what was written and removed.
    #[derive(Default)]
    struct FlakyStore {
        down: bool,
        saved: Vec<u64>,
        removed: Vec<u64>,
    }

    impl SmsStore for FlakyStore {
        fn save(&mut self, sms: &StoredSms) -> std::io::Result<()> {
            if self.down {
                return Err(std::io::Error::other("store down"));
            }
            self.saved.push(sms.id);
            Ok(())
        }
        fn remove(&mut self, id: u64) -> std::io::Result<()> {
            self.removed.push(id);
            Ok(())
        }
        fn load_all(&mut self) -> std::io::Result<Vec<StoredSms>> {
            Ok(Vec::new())
        }
    }

    fn rp_cause(a: &Action) -> Option<RpCause> {
        match rp(&a.body, Direction::NetworkToMs).rp.body {
            RpBody::Error { cause, .. } => Some(cause),
            _ => None,
        }
    }

    /// `a` is RP-ERROR cause 41 (temporary failure) to Alice naming her RP-DATA (RP-MR 7).
    fn assert_temporary_failure_to_alice(a: &Action) {
        assert_eq!(a.to, ALICE);
        assert_eq!(rp_cause(a), Some(RpCause::TEMPORARY_FAILURE));
        assert_eq!(rp(&a.body, Direction::NetworkToMs).rp.message_reference, 7);
    }

    #[test]
    fn a_submission_the_store_refuses_gets_rp_error_41_not_an_ack() {
        let store = FlakyStore {
            down: true,
            ..FlakyStore::default()
        };
        let mut gw = IpSmGw::new(IpSmGwConfig::default(), store).unwrap();
        let now = 1_700_000_000;
        let (out, accepted) = gw.receive_submission(ALICE, &submit(false, 3), now);
        assert_eq!(accepted, None);
        assert_eq!(out.len(), 1, "only the answer, no delivery attempt");
        assert_temporary_failure_to_alice(&out[0]);
        assert_eq!(gw.queued().count(), 0);
        // the store is back: the same submission is accepted
        gw.store.down = false;
        let (out, accepted) = gw.receive_submission(ALICE, &submit(false, 3), now);
        let a = accepted.expect("accepted");
        assert_eq!((a.rp_mr, a.sender.as_str()), (7, ALICE));
        assert_eq!(rp(&out[0].body, Direction::NetworkToMs).rp.name(), "RP-ACK");
        assert_eq!(out.len(), 2);
        assert!(gw.store.saved.contains(&a.id));
    }

    #[test]
    fn a_withdrawn_submission_is_dropped_and_answered_rp_error_41() {
        let mut gw = IpSmGw::new(IpSmGwConfig::default(), FlakyStore::default()).unwrap();
        let now = 1_700_000_000;
        let (_, accepted) = gw.receive_submission(ALICE, &submit(true, 4), now);
        let a = accepted.expect("accepted");
        assert_eq!(gw.queued().count(), 1);
        let out = gw.withdraw(a.clone());
        assert_eq!(out.len(), 1);
        assert_temporary_failure_to_alice(&out[0]);
        assert_eq!(gw.queued().count(), 0);
        assert_eq!(gw.store.removed, [a.id], "the removal follows the write");
        // a late RP-ACK from the recipient for the withdrawn attempt finds nothing
        assert!(gw
            .receive(
                BOB,
                &RpMessage::ack(Direction::MsToNetwork, 1, None)
                    .encode()
                    .unwrap(),
                now
            )
            .is_empty());
        // non-submissions are not "accepted"
        let smma = RpMessage::smma(9).encode().unwrap();
        assert_eq!(gw.receive_submission(BOB, &smma, now).1, None);
    }

    /// The RP-MR and [`Attempt`] of the SMS-DELIVER in `out` (to Bob).
    fn delivery(out: &[Action]) -> (u8, Attempt) {
        let a = out
            .iter()
            .find(|a| a.to == BOB)
            .expect("an SMS-DELIVER to Bob");
        let mr = rp(&a.body, Direction::NetworkToMs).rp.message_reference;
        let att = a.attempt.expect("a delivery names its attempt");
        assert_eq!(att.rp_mr, mr);
        (mr, att)
    }

    fn bob_acks(mr: u8) -> Vec<u8> {
        RpMessage::ack(Direction::MsToNetwork, mr, None)
            .encode()
            .unwrap()
    }

    #[test]
    fn a_sip_failure_ends_only_its_attempt_and_a_late_rp_ack_still_completes_it() {
        let mut gw = IpSmGw::new(IpSmGwConfig::default(), MemorySmsStore).unwrap();
        let now = 1_700_000_000;
        let (mr1, a1) = delivery(&gw.receive(ALICE, &submit(true, 1), now));
        let (mr2, a2) = delivery(&gw.receive(ALICE, &submit(true, 2), now));
        assert_ne!(a1.id, a2.id);
        // the MESSAGE of the first gets no 2xx (its 200 lost, a TCP reset): only it ends
        assert!(gw.attempt_failed(a1, now + 1).is_empty());
        assert_eq!(gw.written(), [a1.id]);
        let q: Vec<_> = gw.queued().map(|s| (s.id, s.in_flight)).collect();
        assert_eq!(q, [(a1.id, None), (a2.id, Some(mr2))]);
        // Bob got both all the same: each RP-ACK completes its message, one status report each
        let out = gw.receive(BOB, &bob_acks(mr2), now + 2);
        assert_eq!((out.len(), out[0].to.as_str()), (1, ALICE));
        let out = gw.receive(BOB, &bob_acks(mr1), now + 3);
        assert_eq!(
            (out.len(), out[0].to.as_str()),
            (1, ALICE),
            "the late RP-ACK counts"
        );
        assert_eq!(gw.queued().count(), 0);
        assert_eq!(gw.poll_timeout(), None, "nothing left to deliver again");
        // a SIP failure reported after the RP-ACK changes nothing
        assert!(gw.attempt_failed(a2, now + 4).is_empty());
        assert!(gw.written().is_empty());
    }

    #[test]
    fn an_rp_ack_for_an_attempt_the_retry_timer_replaced_completes_the_message() {
        let mut gw = IpSmGw::new(IpSmGwConfig::default(), MemorySmsStore).unwrap();
        let now = 1_700_000_000;
        let (mr1, _) = delivery(&gw.receive(ALICE, &submit(true, 1), now));
        // no answer in time: the retry timer sends it again with another RP-MR
        let t = gw.poll_timeout().unwrap();
        let (mr2, _) = delivery(&gw.handle_timeout(t));
        assert_ne!(mr1, mr2);
        assert_eq!(gw.queued().next().unwrap().earlier, [mr1]);
        // the first attempt's RP-ACK arrives late: delivered, one status report, no more retries
        let out = gw.receive(BOB, &bob_acks(mr1), t + 1);
        assert_eq!((out.len(), out[0].to.as_str()), (1, ALICE));
        assert_eq!(gw.queued().count(), 0);
        assert!(gw.handle_timeout(t + 100_000).is_empty());
        // the second attempt's RP-ACK finds nothing: no second status report
        assert!(gw.receive(BOB, &bob_acks(mr2), t + 2).is_empty());
    }

    #[test]
    fn a_message_reloaded_in_flight_is_retried_after_tr1n_not_its_back_off() {
        let dir = std::env::temp_dir().join(format!("ims-nf-sms-tr1n-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let now = 1_700_000_000;
        let cfg = IpSmGwConfig {
            max_attempts: 2,
            ..IpSmGwConfig::default()
        };
        let mr1 = {
            let mut gw = IpSmGw::new(cfg.clone(), FileSmsStore::new(&dir).unwrap()).unwrap();
            let (mr, _) = delivery(&gw.receive(ALICE, &submit(true, 1), now));
            assert_eq!(
                gw.poll_timeout(),
                Some(now + 60),
                "the back-off of attempt 1"
            );
            mr
        };
        // restart 5 s later: the attempt's transaction is gone with the old process
        let mut gw = IpSmGw::new(cfg.clone(), FileSmsStore::new(&dir).unwrap()).unwrap();
        let s = gw.queued().next().unwrap();
        assert_eq!((s.in_flight, s.last_attempt), (Some(mr1), now));
        assert_eq!(
            gw.poll_timeout(),
            Some(now + cfg.ack_wait),
            "TR1N after the attempt"
        );
        assert!(
            gw.registered(&[BOB.into()], now + 5).is_empty(),
            "its RP-ACK may still come"
        );
        assert!(gw.handle_timeout(now + cfg.ack_wait - 1).is_empty());
        let (mr2, _) = delivery(&gw.handle_timeout(now + cfg.ack_wait));
        assert_ne!(mr2, mr1);
        // bounded: that was the last attempt; a restart while it is in flight gives up at TR1N
        drop(gw);
        let mut gw = IpSmGw::new(cfg.clone(), FileSmsStore::new(&dir).unwrap()).unwrap();
        assert_eq!(gw.queued().next().unwrap().earlier, [mr1]);
        let t = now + 2 * cfg.ack_wait;
        assert_eq!(gw.poll_timeout(), Some(t));
        let out = gw.handle_timeout(t);
        assert_eq!(out.len(), 1, "the status report");
        let Some(Tpdu::StatusReport(sr)) = rp(&out[0].body, Direction::NetworkToMs).tpdu else {
            panic!("STATUS-REPORT")
        };
        assert_eq!((out[0].to.as_str(), sr.status), (ALICE, Status(0x62)));
        assert_eq!(gw.queued().count(), 0);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn an_attempt_not_sent_does_not_count() {
        let cfg = IpSmGwConfig {
            max_attempts: 1,
            ..IpSmGwConfig::default()
        };
        let mut gw = IpSmGw::new(cfg.clone(), MemorySmsStore).unwrap();
        let now = 1_700_000_000;
        let (_, a) = delivery(&gw.receive(ALICE, &submit(true, 1), now));
        gw.attempt_unsent(a, now + 3);
        assert_eq!(gw.written(), [a.id]);
        let s = gw.queued().next().unwrap();
        assert_eq!((s.attempts, s.in_flight), (0, None));
        assert!(s.earlier.is_empty(), "it never left: no RP-ACK can name it");
        assert_eq!(gw.poll_timeout(), Some(now + 3 + cfg.retry_interval));
        // the one allowed attempt is still there
        let (_, b) = delivery(&gw.handle_timeout(now + 3 + cfg.retry_interval));
        assert_eq!(b.id, a.id);
        // a stale report about an attempt no longer in flight changes nothing
        gw.attempt_unsent(a, now + 40);
        assert!(gw.written().is_empty());
    }

    #[test]
    fn records_of_the_older_format_still_load() {
        let old = "v1\n3\nsip:a@x\ntel:+15550002\n0102\n100\n1\n160\n9\n";
        let s = StoredSms::from_text(old).unwrap();
        assert_eq!((s.in_flight, s.last_attempt), (Some(9), 0));
        assert!(s.earlier.is_empty());
        let t = StoredSms {
            in_flight: None,
            last_attempt: 120,
            earlier: vec![4, 9],
            absent: true,
            ..s.clone()
        };
        assert_eq!(StoredSms::from_text(&t.to_text()), Some(t.clone()));
        // a reader of the older format sees no attempt in flight
        assert_eq!(t.to_text().lines().nth(8), Some("-"));
        // an older record in flight: its attempt time comes from the back-off (160 - 60)
        let cfg = IpSmGwConfig::default();
        let reloaded = IpSmGw::new(cfg.clone(), OneRecord(Some(s))).unwrap();
        assert_eq!(reloaded.poll_timeout(), Some(100 + cfg.ack_wait));
    }

    struct OneRecord(Option<StoredSms>);

    impl SmsStore for OneRecord {
        fn save(&mut self, _: &StoredSms) -> std::io::Result<()> {
            Ok(())
        }
        fn remove(&mut self, _: u64) -> std::io::Result<()> {
            Ok(())
        }
        fn load_all(&mut self) -> std::io::Result<Vec<StoredSms>> {
            Ok(self.0.take().into_iter().collect())
        }
    }

    /// Alice's SMS (TP-SRR set) to Bob, its SMS-DELIVER sent: `(gw, the DELIVER's RP, attempt)`.
    fn one_in_flight(cfg: IpSmGwConfig, now: u64) -> (IpSmGw, Vec<u8>, Attempt) {
        let mut gw = IpSmGw::new(cfg, MemorySmsStore).unwrap();
        let out = gw.receive(ALICE, &submit(true, 1), now);
        let (_, a) = delivery(&out);
        let body = out.iter().find(|a| a.to == BOB).unwrap().body.clone();
        (gw, body, a)
    }

    /// `out` is exactly Alice's SMS-STATUS-REPORT; its TP-Status.
    fn report_status(out: &[Action]) -> Status {
        assert_eq!(out.len(), 1, "one status report");
        assert_eq!(out[0].to, ALICE);
        let Some(Tpdu::StatusReport(sr)) = rp(&out[0].body, Direction::NetworkToMs).tpdu else {
            panic!("STATUS-REPORT")
        };
        sr.status
    }

    #[test]
    fn permanent_sip_failures_end_the_message_temporary_ones_keep_it() {
        let now = 1_700_000_000;
        for (code, status) in [
            (404, Status::NOT_OBTAINABLE),
            (604, Status::NOT_OBTAINABLE),
            (403, Status::CONNECTION_REJECTED),
            (603, Status::CONNECTION_REJECTED),
            (405, Status::INCOMPATIBLE_DESTINATION),
            (415, Status::INCOMPATIBLE_DESTINATION),
            (488, Status::INCOMPATIBLE_DESTINATION),
            (400, Status::REMOTE_PROCEDURE_ERROR),
            (302, Status::REMOTE_PROCEDURE_ERROR),
        ] {
            let (mut gw, _, a) = one_in_flight(IpSmGwConfig::default(), now);
            let f = Failure::of_sip(Some(code));
            assert_eq!(f, Failure::Permanent(status), "{code}");
            let out = gw.attempt_failed_with(a, f, now + 1);
            assert_eq!(report_status(&out), status, "{code}");
            assert!(status.is_final_failure());
            assert_eq!(gw.queued().count(), 0, "{code}: out of the store");
            assert_eq!(gw.written(), [a.id], "{code}: its removal");
            assert_eq!(gw.poll_timeout(), None, "{code}: no retry");
        }
        assert_eq!(Failure::of_sip(Some(480)), Failure::Absent);
        for code in [None, Some(408), Some(480), Some(500), Some(503), Some(504)] {
            let (mut gw, _, a) = one_in_flight(IpSmGwConfig::default(), now);
            let f = Failure::of_sip(code);
            assert!(!f.is_permanent(), "{code:?}");
            if code != Some(480) {
                assert_eq!(f, Failure::Temporary, "{code:?}");
            }
            assert!(gw.attempt_failed_with(a, f, now + 1).is_empty());
            assert_eq!(gw.queued().count(), 1, "{code:?}: kept");
            assert_eq!(gw.poll_timeout(), Some(now + 60), "{code:?}: retried");
            // registration delivers it again
            assert_eq!(gw.registered(&[BOB.into()], now + 2).len(), 1);
        }
    }

    #[test]
    fn an_rp_error_with_a_permanent_cause_ends_the_message() {
        let now = 1_700_000_000;
        let err = |deliver: &[u8], cause: RpCause, fcs: Option<u8>| {
            let mt = rp(deliver, Direction::NetworkToMs);
            match fcs {
                Some(f) => {
                    answer::deliver_report_error(&mt.rp, cause, ims_sms::FailureCause(f)).unwrap()
                }
                None => {
                    RpMessage::error(Direction::MsToNetwork, mt.rp.message_reference, cause, None)
                        .encode()
                        .unwrap()
                }
            }
        };
        for (cause, fcs, status) in [
            (
                RpCause::INVALID_MANDATORY_INFORMATION,
                None,
                Status::REMOTE_PROCEDURE_ERROR,
            ),
            (
                RpCause::SEMANTICALLY_INCORRECT_MESSAGE,
                None,
                Status::REMOTE_PROCEDURE_ERROR,
            ),
            (
                RpCause::SHORT_MESSAGE_TRANSFER_REJECTED,
                None,
                Status::CONNECTION_REJECTED,
            ),
            // the TP-FCS says more than the RP cause: DCS not supported
            (
                RpCause::PROTOCOL_ERROR_UNSPECIFIED,
                Some(0x90),
                Status::INCOMPATIBLE_DESTINATION,
            ),
        ] {
            let (mut gw, deliver, _) = one_in_flight(IpSmGwConfig::default(), now);
            let out = gw.receive(BOB, &err(&deliver, cause, fcs), now + 1);
            assert_eq!(report_status(&out), status, "{cause:?} {fcs:?}");
            assert_eq!(gw.queued().count(), 0, "{cause:?}: out of the store");
        }
        for (cause, fcs) in [
            (RpCause::PROTOCOL_ERROR_UNSPECIFIED, None),
            (RpCause::MESSAGE_NOT_COMPATIBLE, None),
            (RpCause::TEMPORARY_FAILURE, None),
            (RpCause::PROTOCOL_ERROR_UNSPECIFIED, Some(0xD4)),
        ] {
            let (mut gw, deliver, _) = one_in_flight(IpSmGwConfig::default(), now);
            assert!(gw
                .receive(BOB, &err(&deliver, cause, fcs), now + 1)
                .is_empty());
            assert_eq!(gw.queued().count(), 1, "{cause:?} {fcs:?}: kept");
            assert_eq!(gw.poll_timeout(), Some(now + 60), "{cause:?}: retried");
        }
        // SIM storage full with an unspecified cause: waits for RP-SMMA like cause 22
        let (mut gw, deliver, _) = one_in_flight(IpSmGwConfig::default(), now);
        let e = err(&deliver, RpCause::PROTOCOL_ERROR_UNSPECIFIED, Some(0xD0));
        assert!(gw.receive(BOB, &e, now + 1).is_empty());
        assert_eq!(gw.queued().next().unwrap().next_attempt, 0);
    }

    #[test]
    fn a_message_waiting_for_memory_is_given_up_at_the_end_of_its_validity() {
        let cfg = IpSmGwConfig {
            validity: 600,
            ..IpSmGwConfig::default()
        };
        let now = 1_700_000_000;
        let (mut gw, deliver, _) = one_in_flight(cfg, now);
        let mt = rp(&deliver, Direction::NetworkToMs);
        let full = answer::deliver_report_error(
            &mt.rp,
            RpCause::MEMORY_CAPACITY_EXCEEDED,
            ims_sms::FailureCause::MEMORY_CAPACITY_EXCEEDED,
        )
        .unwrap();
        assert!(gw.receive(BOB, &full, now + 1).is_empty());
        assert_eq!(gw.poll_timeout(), Some(now + 600));
        assert!(gw.handle_timeout(now + 599).is_empty());
        let out = gw.handle_timeout(now + 600);
        assert_eq!(report_status(&out), Status::VALIDITY_PERIOD_EXPIRED);
        assert_eq!(gw.queued().count(), 0);
        assert_eq!(gw.poll_timeout(), None);
    }

    /// An SMS-COMMAND from Alice (RP-MR 11, TP-MR 10) of `kind` about her message TP-MR `number`.
    fn command_body(kind: u8, number: u8, srr: bool) -> Vec<u8> {
        let cmd = ims_sms::Command {
            status_report_request: srr,
            user_data_header_indication: false,
            message_reference: 10,
            pid: Default::default(),
            command_type: ims_sms::CommandType(kind),
            message_number: number,
            destination: Address::international("15550002"),
            command_data: Vec::new(),
        };
        let tpdu = Tpdu::Command(cmd).encode().unwrap();
        RpMessage::data_mo(11, Address::international("15550000"), &tpdu)
            .encode()
            .unwrap()
    }

    /// `out` is the RP-ACK to the command then, when `report`, the command's result report:
    /// its TP-ST.
    fn command_result(out: &[Action], report: bool) -> Option<Status> {
        assert_eq!(rp(&out[0].body, Direction::NetworkToMs).rp.name(), "RP-ACK");
        assert_eq!(out.len(), 1 + usize::from(report), "{out:?}");
        let a = out.get(1)?;
        assert_eq!(a.to, ALICE);
        let Some(Tpdu::StatusReport(sr)) = rp(&a.body, Direction::NetworkToMs).tpdu else {
            panic!("STATUS-REPORT")
        };
        assert!(sr.status_report_qualifier, "the result of a command");
        assert_eq!(sr.message_reference, 10, "names the command");
        Some(sr.status)
    }

    #[test]
    fn sms_commands_enquire_change_the_report_request_and_delete() {
        let mut gw = IpSmGw::new(IpSmGwConfig::default(), MemorySmsStore).unwrap();
        let now = 1_700_000_000;
        gw.receive(ALICE, &submit(false, 9), now);
        gw.delivery_failed(BOB, now);
        // enquiry: always answered; the message waits, the SC still trying
        let out = gw.receive(ALICE, &command_body(0, 9, false), now + 1);
        assert_eq!(command_result(&out, true), Some(Status(0x22)));
        // about a message that does not exist (or is someone else's)
        let out = gw.receive(ALICE, &command_body(0, 77, false), now + 1);
        assert_eq!(command_result(&out, true), Some(Status(0x49)));
        let out = gw.receive(BOB, &command_body(2, 9, false), now + 1);
        assert_eq!(out.len(), 1);
        assert_eq!(gw.queued().count(), 1, "Bob cannot delete Alice's message");
        // request a status report after all (TP-SRR 0 on the command: no result report)
        let out = gw.receive(ALICE, &command_body(3, 9, false), now + 2);
        assert_eq!(command_result(&out, false), None);
        assert_eq!(gw.written(), [1], "the changed message is written");
        let deliver = gw.registered(&[BOB.into()], now + 3);
        let Some(Tpdu::Deliver(d)) = rp(&deliver[0].body, Direction::NetworkToMs).tpdu else {
            panic!("DELIVER")
        };
        assert!(d.status_report_indication, "the DELIVER now asks too");
        // and cancel it again, asking for the command's result
        let out = gw.receive(ALICE, &command_body(1, 9, true), now + 4);
        assert_eq!(command_result(&out, true), Some(Status(0x22)));
        let (mr, _) = delivery(&deliver);
        assert!(
            gw.receive(BOB, &bob_acks(mr), now + 5).is_empty(),
            "delivered: no status report any more"
        );
        // delete, with the command's result
        gw.receive(ALICE, &submit(true, 12), now + 6);
        gw.delivery_failed(BOB, now + 6);
        let out = gw.receive(ALICE, &command_body(2, 12, true), now + 7);
        assert_eq!(command_result(&out, true), Some(Status(0x47)));
        assert_eq!(gw.queued().count(), 0);
        // a command type the SC does not know: RP-ERROR with TP-FCS 0xA1
        let out = gw.receive(ALICE, &command_body(0x40, 12, false), now + 8);
        let e = rp(&out[0].body, Direction::NetworkToMs);
        assert_eq!(e.rp.name(), "RP-ERROR");
        let Some(Tpdu::SubmitReport(r)) = e.tpdu else {
            panic!("SUBMIT-REPORT")
        };
        assert_eq!(r.failure_cause, Some(FailureCause(0xA1)));
    }

    #[test]
    fn an_unregistered_recipient_does_not_use_up_the_attempts_only_the_validity() {
        let cfg = IpSmGwConfig {
            max_attempts: 2,
            retry_interval: 10,
            validity: 3600,
            ..IpSmGwConfig::default()
        };
        let now = 1_700_000_000;
        let (mut gw, _, a) = one_in_flight(cfg, now);
        assert!(gw.attempt_failed_with(a, Failure::Absent, now).is_empty());
        // the back-off goes on trying past max_attempts while the recipient is away
        let mut t = now;
        for _ in 0..4 {
            t = gw.poll_timeout().unwrap();
            let out = gw.handle_timeout(t);
            let (_, a) = delivery(&out);
            assert!(gw.attempt_failed_with(a, Failure::Absent, t).is_empty());
            assert_eq!(gw.queued().count(), 1, "kept at attempt {}", a.rp_mr);
        }
        assert!(gw.queued().next().unwrap().attempts > 2);
        assert!(gw.queued().next().unwrap().absent);
        // the recipient registers: delivered and acknowledged
        let out = gw.registered(&[BOB.into()], t + 1);
        let (mr, _) = delivery(&out);
        let out = gw.receive(BOB, &bob_acks(mr), t + 2);
        assert_eq!(report_status(&out), Status::DELIVERED);
        // another one for the same absent recipient ends at its validity, not its attempts
        let (mut gw, _, a) = one_in_flight(
            IpSmGwConfig {
                max_attempts: 1,
                retry_interval: 1000,
                validity: 3600,
                ..IpSmGwConfig::default()
            },
            now,
        );
        assert!(gw.attempt_failed_with(a, Failure::Absent, now).is_empty());
        let t = gw.poll_timeout().unwrap();
        assert_eq!(t, now + 2000);
        let (_, a) = delivery(&gw.handle_timeout(t));
        assert!(gw.attempt_failed_with(a, Failure::Absent, t).is_empty());
        assert_eq!(
            gw.poll_timeout(),
            Some(now + 3600),
            "the end of its validity"
        );
        let out = gw.handle_timeout(now + 3600);
        assert_eq!(report_status(&out), Status::VALIDITY_PERIOD_EXPIRED);
        // whereas a temporary failure at the last attempt gives up (0x62)
        let (mut gw, _, a) = one_in_flight(
            IpSmGwConfig {
                max_attempts: 1,
                ..IpSmGwConfig::default()
            },
            now,
        );
        let out = gw.attempt_failed_with(a, Failure::Temporary, now);
        assert_eq!(report_status(&out), Status::NO_RESPONSE_FROM_SME);
    }

    #[test]
    fn an_msisdn_less_submission_is_answered_once_its_first_attempt_is_known() {
        const CAROL: &str = "sip:carol@ims.example.org";
        let now = 1_700_000_000;
        let mut gw = IpSmGw::new(IpSmGwConfig::default(), MemorySmsStore).unwrap();
        let first = |gw: &mut IpSmGw| {
            let (out, accepted) =
                gw.receive_submission_to(ALICE, &submit(true, 1), now, Some(CAROL));
            assert!(accepted.is_some());
            assert_eq!(out.len(), 1, "only the SMS-DELIVER: the RP-ACK waits");
            assert_eq!(out[0].to, CAROL);
            out[0].attempt.unwrap()
        };
        // refused for good: RP-ERROR naming Alice's RP-DATA (RP-MR 7), no status report
        let a = first(&mut gw);
        let out = gw.attempt_failed_with(a, Failure::of_sip(Some(404)), now + 1);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].to, ALICE);
        let e = rp(&out[0].body, Direction::NetworkToMs);
        assert_eq!(e.rp.message_reference, 7);
        assert_eq!(rp_cause(&out[0]), Some(RpCause::UNKNOWN_SUBSCRIBER));
        assert_eq!(gw.queued().count(), 0);
        // reached the recipient's network: RP-ACK, and the message waits for Carol's RP-ACK
        let a = first(&mut gw);
        let out = gw.attempt_sent(a);
        assert_eq!(out.len(), 1);
        assert_eq!(rp(&out[0].body, Direction::NetworkToMs).rp.name(), "RP-ACK");
        assert!(gw.attempt_sent(a).is_empty(), "answered once");
        assert_eq!(gw.queued().count(), 1);
        let out = gw.receive(CAROL, &bob_acks(a.rp_mr), now + 2);
        assert_eq!(report_status(&out), Status::DELIVERED);
        // a temporary failure: RP-ACK (it is kept for later), then the usual retries
        let a = first(&mut gw);
        let out = gw.attempt_failed_with(a, Failure::Temporary, now + 1);
        assert_eq!(out.len(), 1);
        assert_eq!(rp(&out[0].body, Direction::NetworkToMs).rp.name(), "RP-ACK");
        assert_eq!(gw.queued().count(), 1);
        // a later permanent failure of the stored message: the status report, as usual
        let t = gw.poll_timeout().unwrap();
        let out = gw.handle_timeout(t);
        let b = out[0].attempt.unwrap();
        let out = gw.attempt_failed_with(b, Failure::of_sip(Some(404)), t);
        assert_eq!(report_status(&out), Status::NOT_OBTAINABLE);
    }

    #[test]
    fn calendar() {
        let t = timestamp(1_700_000_000); // 2023-11-14 22:13:20 UTC
        assert_eq!(
            (t.year, t.month, t.day, t.hour, t.minute, t.second),
            (23, 11, 14, 22, 13, 20)
        );
        let t = timestamp(951_782_400); // 2000-02-29
        assert_eq!((t.year, t.month, t.day), (0, 2, 29));
        assert_eq!(
            msisdn("sip:+15550001@x;user=phone").as_deref(),
            Some("+15550001")
        );
        assert_eq!(msisdn("sip:alice@x"), None);
    }
}
