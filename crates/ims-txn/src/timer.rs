//! Timer names and values (RFC 3261 Table 4 and §17, RFC 6026 §8.4 / §8.11).

use smallvec::SmallVec;
use std::time::{Duration, Instant};

/// The timers of the transaction layer, named as in RFC 3261 Table 4 and RFC 6026.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Timer {
    /// INVITE request retransmit interval, unreliable transports only (starts at T1, doubles).
    A,
    /// INVITE transaction timeout (64·T1).
    B,
    /// Proxy INVITE transaction timeout (> 3 min, RFC 3261 §16.8); used by the proxy core.
    C,
    /// Wait time for response retransmits in the INVITE client Completed state (≥ 32 s
    /// unreliable, 0 reliable).
    D,
    /// Non-INVITE request retransmit interval, unreliable only (T1 doubling up to T2; T2 in
    /// Proceeding).
    E,
    /// Non-INVITE transaction timeout (64·T1).
    F,
    /// INVITE response retransmit interval, unreliable only (T1 doubling up to T2).
    G,
    /// Wait time for ACK receipt (64·T1).
    H,
    /// Wait time for ACK retransmits (T4 unreliable, 0 reliable).
    I,
    /// Wait time for non-INVITE request retransmits (64·T1 unreliable, 0 reliable).
    J,
    /// Wait time for response retransmits (T4 unreliable, 0 reliable).
    K,
    /// Wait time in the INVITE server Accepted state (64·T1, RFC 6026 §8.7).
    L,
    /// Wait time in the INVITE client Accepted state (64·T1, RFC 6026 §8.4).
    M,
    /// The 200 ms after which an INVITE server transaction answers 100 Trying itself unless the
    /// TU has sent a provisional response (RFC 3261 §17.2.1).
    Trying,
}

/// The running timers of one transaction and when each fires. At most two run at once (A and B,
/// E and F, G and H), so they sit inline; a 14-slot table per transaction was 224 bytes.
#[derive(Debug, Default)]
pub(crate) struct Armed(SmallVec<[(Timer, Instant); 2]>);

impl Armed {
    /// When `t` fires, `None` when it is not running.
    pub(crate) fn get(&self, t: Timer) -> Option<Instant> {
        self.0.iter().find(|(x, _)| *x == t).map(|(_, at)| *at)
    }
    /// Starts (or restarts) `t`.
    pub(crate) fn set(&mut self, t: Timer, at: Instant) {
        match self.0.iter_mut().find(|(x, _)| *x == t) {
            Some(slot) => slot.1 = at,
            None => self.0.push((t, at)),
        }
    }
    /// Stops `t`.
    pub(crate) fn clear(&mut self, t: Timer) {
        self.0.retain(|(x, _)| *x != t);
    }
    /// Stops every timer.
    pub(crate) fn clear_all(&mut self) {
        self.0.clear();
    }
}

/// Timer base values. Every duration of Table 4 derives from these.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimerConfig {
    /// RTT estimate, default 500 ms.
    pub t1: Duration,
    /// Maximum retransmit interval for non-INVITE requests and INVITE responses, default 4 s.
    pub t2: Duration,
    /// Maximum duration a message remains in the network, default 5 s.
    pub t4: Duration,
    /// Timer D on unreliable transports, default 32 s ("at least 32 s").
    pub d: Duration,
    /// Delay before the INVITE server transaction sends 100 Trying itself, default 200 ms.
    pub trying: Duration,
    /// Timer C of the proxy core, default 180 s ("greater than 3 minutes" is the guidance; 180 s
    /// is the floor).
    pub c: Duration,
}

impl Default for TimerConfig {
    fn default() -> Self {
        TimerConfig {
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            t4: Duration::from_secs(5),
            d: Duration::from_secs(32),
            trying: Duration::from_millis(200),
            c: Duration::from_secs(180),
        }
    }
}

impl TimerConfig {
    /// 64·T1: Timers B, F, H, J (unreliable), L and M.
    pub fn t1x64(&self) -> Duration {
        self.t1 * 64
    }
}
