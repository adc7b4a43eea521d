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
    answer, decode, Address, Direction, RpBody, RpCause, RpMessage, Status, Timestamp, Tpdu,
};
use std::collections::BTreeMap;
use std::path::PathBuf;

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
            "{in_flight}\n{}\n{}\n",
            self.last_attempt,
            earlier.join(",")
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
                out.extend(self.attempt(id, now));
                out
            }
            (RpBody::Data { .. }, Some(Tpdu::Command(cmd))) => {
                // TS 23.040 §9.2.3.19: delete a previously submitted message (TP-MN = its TP-MR)
                if cmd.command_type.0 == 2 {
                    let victim = self.queue.iter().find_map(|(id, s)| {
                        let same = s.sender == from
                            && matches!(
                                Tpdu::decode(&s.submit, Direction::MsToNetwork, ims_sms::Carrier::RpData),
                                Ok(Tpdu::Submit(ref sub)) if sub.message_reference == cmd.message_number
                            );
                        same.then_some(*id)
                    });
                    if let Some(id) = victim {
                        self.drop_message(id);
                    }
                }
                reply(answer::submit_report_ack(&sms.rp, timestamp(now)))
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
                let Some(s) = done.and_then(|id| self.drop_message(id)) else {
                    return Vec::new();
                };
                self.status_report(&s, Status::DELIVERED, now)
                    .into_iter()
                    .collect()
            }
            (RpBody::Error { cause, .. }, _) => {
                let failed = self
                    .queue
                    .iter()
                    .find(|(_, s)| s.recipient == from && s.in_flight == Some(mr))
                    .map(|(id, _)| *id);
                let Some(id) = failed else { return Vec::new() };
                self.failed(id, *cause == RpCause::MEMORY_CAPACITY_EXCEEDED, now)
            }
            (RpBody::Smma, _) => {
                // memory available again: RP-ACK and deliver what waits for this UE
                let mut out = reply(RpMessage::ack(Direction::NetworkToMs, mr, None).encode());
                out.extend(self.flush(&[from.to_string()], now));
                out
            }
        }
    }

    fn failed(&mut self, id: u64, wait_for_memory: bool, now: u64) -> Vec<Action> {
        let Some(s) = self.queue.get_mut(&id) else {
            return Vec::new();
        };
        s.end_attempt();
        if wait_for_memory {
            s.next_attempt = 0;
        }
        let give_up = s.attempts >= self.cfg.max_attempts
            || now.saturating_sub(s.accepted_at) >= self.cfg.validity;
        if give_up {
            let s = self.drop_message(id).expect("present just above");
            return self
                .status_report(&s, Status(0x62), now)
                .into_iter()
                .collect();
        }
        self.persist(id);
        Vec::new()
    }

    /// The MT MESSAGE carrying the delivery attempt `attempt` ([`Action::attempt`]) failed at
    /// the SIP level (no 2xx: recipient unregistered 480, unknown 404, timeout 408, transport
    /// error): keep the message for later, or give up after the configured attempts. Only that
    /// attempt ends: nothing changes when the message is gone (its RP-ACK came first) or
    /// another attempt of it is in flight. A SIP failure does not prove the SMS-DELIVER did not
    /// arrive, so the attempt's RP-MR stays acceptable ([`StoredSms::earlier`]).
    pub fn attempt_failed(&mut self, attempt: Attempt, now: u64) -> Vec<Action> {
        self.written.clear();
        let current = self
            .queue
            .get(&attempt.id)
            .is_some_and(|s| s.in_flight == Some(attempt.rp_mr));
        if !current {
            return Vec::new();
        }
        self.failed(attempt.id, false, now)
    }

    /// The SMS-DELIVER of `attempt` did not leave after all: the store did not confirm the
    /// record of the attempt in time, and a delivery whose RP-MR a restarted IP-SM-GW would
    /// not know could be made twice (the recipient's RP-ACK would match nothing). The attempt
    /// does not count; the message is tried again after [`IpSmGwConfig::retry_interval`].
    pub fn attempt_unsent(&mut self, attempt: Attempt, now: u64) {
        self.written.clear();
        let Some(s) = self.queue.get_mut(&attempt.id) else {
            return;
        };
        if s.in_flight != Some(attempt.rp_mr) {
            return;
        }
        s.in_flight = None;
        s.attempts = s.attempts.saturating_sub(1);
        s.next_attempt = now + self.cfg.retry_interval;
        self.persist(attempt.id);
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
            out.extend(self.failed(id, false, now));
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

    /// The next retry instant.
    pub fn poll_timeout(&self) -> Option<u64> {
        self.queue
            .values()
            .filter(|s| s.next_attempt != 0)
            .map(|s| s.next_attempt)
            .min()
    }

    /// Retries what is due at `now` (an attempt still in flight counts as failed: no answer).
    pub fn handle_timeout(&mut self, now: u64) -> Vec<Action> {
        self.written.clear();
        let due: Vec<u64> = self
            .queue
            .iter()
            .filter(|(_, s)| s.next_attempt != 0 && s.next_attempt <= now)
            .map(|(id, _)| *id)
            .collect();
        let mut out = Vec::new();
        for id in due {
            let expired = self
                .queue
                .get(&id)
                .is_some_and(|s| s.attempts >= self.cfg.max_attempts);
            if expired {
                out.extend(self.failed(id, false, now));
            } else {
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
        let sub = ims_sms::Submit {
            reject_duplicates: false,
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
        assert_eq!(gw.poll_timeout(), None);
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
