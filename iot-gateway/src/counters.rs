//! Why a message was refused, as stable codes, and how often.
//!
//! A refused message is acknowledged to the broker (so that it is not redelivered forever), never
//! stored, and counted here, so that the operator can see that a device is misconfigured or
//! failing. The codes are part of the API and of the gateway's README: they are never renamed,
//! only added. Counting is one relaxed atomic increment, cheap enough for every message on the hot
//! path; [`RefusalCounters::snapshot`] gives the API a consistent-enough copy (each counter is read
//! once; counters never go down). [`RecentRefusals`] keeps the last few refusals with their topic
//! and detail, because a count says *that* something is wrong and the operator needs *which device*
//! and *what*.
//!
//! Counters live in one process: with several gateway replicas, each one serves its own snapshot
//! and the API adds them up (or each replica writes its snapshot to the database periodically).

use std::collections::VecDeque;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

/// A stable reason code for refusing a message, or part of one.
///
/// Serialised as the snake_case [`code`](Reason::code); the order of [`Reason::ALL`] is the order
/// in the API's snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// The topic's client id is not a registered device (decided against the database).
    UnknownDevice,
    /// The device publishes under a site that is not its own (decided against the database).
    WrongSite,
    /// The device is registered but disabled (decided against the database).
    DeviceDisabled,
    /// The topic is not one of the documented forms under the configured prefix.
    BadTopic,
    /// A telemetry or status payload is larger than the configured limit.
    PayloadTooLarge,
    /// The payload is not JSON, or not the documented shape (missing or unknown fields, wrong types,
    /// duplicate keys).
    MalformedJson,
    /// A reading has no values, or a backlog array is empty.
    NoValues,
    /// A backlog array holds more readings than the limit.
    TooManyReadings,
    /// One reading holds more metrics than the limit.
    TooManyMetrics,
    /// A metric name is not `[a-z][a-z0-9_]*` of the allowed length.
    BadMetricName,
    /// A metric name does not end in a known unit suffix.
    UnknownUnit,
    /// A value is not a finite JSON number (a string, null, boolean, object or array).
    NotFinite,
    /// A value is outside the plausible range of its unit (a sensor fault, not a measurement).
    OutOfRange,
    /// A reading's `ts` is before 2020-01-01 or too far in the future of the gateway's clock.
    TimestampOutOfRange,
    /// `seq` is larger than the database can hold (2^63 − 1).
    BadSeq,
    /// A status payload is neither `online` nor `offline`.
    BadStatus,
    /// The image payload is not a decodable JPEG (wrong magic, truncated, corrupt).
    NotJpeg,
    /// The image payload is larger than the byte limit.
    ImageTooLarge,
    /// The JPEG header declares more pixels than the limit (refused before decoding).
    ImageTooManyPixels,
    /// A device registered as a sensor published an image (decoding and storing images is
    /// costly, so only cameras may).
    WrongDeviceKind,
    /// The database refused the data itself (a constraint), so storing it again would fail again.
    RejectedByDatabase,
    /// A device published on a topic that is not its own (another device's, another site's, or
    /// outside the documented forms); the embedded broker closed its connection and dropped the
    /// message.
    ForeignTopic,
    /// A connection to the embedded broker was refused: no, unknown or wrong credentials, a
    /// disabled device, or a last will outside the device's own status topic.
    BadCredentials,
}

impl Reason {
    /// Every reason, in a fixed order.
    pub const ALL: [Reason; 23] = [
        Reason::UnknownDevice,
        Reason::WrongSite,
        Reason::DeviceDisabled,
        Reason::BadTopic,
        Reason::PayloadTooLarge,
        Reason::MalformedJson,
        Reason::NoValues,
        Reason::TooManyReadings,
        Reason::TooManyMetrics,
        Reason::BadMetricName,
        Reason::UnknownUnit,
        Reason::NotFinite,
        Reason::OutOfRange,
        Reason::TimestampOutOfRange,
        Reason::BadSeq,
        Reason::BadStatus,
        Reason::NotJpeg,
        Reason::ImageTooLarge,
        Reason::ImageTooManyPixels,
        Reason::WrongDeviceKind,
        Reason::RejectedByDatabase,
        Reason::ForeignTopic,
        Reason::BadCredentials,
    ];

    /// The stable snake_case code.
    pub fn code(self) -> &'static str {
        match self {
            Reason::UnknownDevice => "unknown_device",
            Reason::WrongSite => "wrong_site",
            Reason::DeviceDisabled => "device_disabled",
            Reason::BadTopic => "bad_topic",
            Reason::PayloadTooLarge => "payload_too_large",
            Reason::MalformedJson => "malformed_json",
            Reason::NoValues => "no_values",
            Reason::TooManyReadings => "too_many_readings",
            Reason::TooManyMetrics => "too_many_metrics",
            Reason::BadMetricName => "bad_metric_name",
            Reason::UnknownUnit => "unknown_unit",
            Reason::NotFinite => "not_finite",
            Reason::OutOfRange => "out_of_range",
            Reason::TimestampOutOfRange => "timestamp_out_of_range",
            Reason::BadSeq => "bad_seq",
            Reason::BadStatus => "bad_status",
            Reason::NotJpeg => "not_jpeg",
            Reason::ImageTooLarge => "image_too_large",
            Reason::ImageTooManyPixels => "image_too_many_pixels",
            Reason::WrongDeviceKind => "wrong_device_kind",
            Reason::RejectedByDatabase => "rejected_by_database",
            Reason::ForeignTopic => "foreign_topic",
            Reason::BadCredentials => "bad_credentials",
        }
    }

    /// The reason with this code, if any.
    pub fn from_code(code: &str) -> Option<Reason> {
        Reason::ALL.into_iter().find(|r| r.code() == code)
    }

    fn index(self) -> usize {
        // `ALL` lists the variants in declaration order, so the discriminant is the index.
        self as usize
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// A refusal: the stable reason and a detail for the operator (which field, which value).
///
/// The detail never holds more than a short excerpt of the payload, so a hostile device cannot
/// fill logs or the API with its bytes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, thiserror::Error)]
#[error("{reason}: {detail}")]
pub struct Refusal {
    /// The stable code.
    pub reason: Reason,
    /// What exactly was wrong, safe to show to an operator.
    pub detail: String,
}

impl Refusal {
    /// A refusal with a detail.
    pub fn new(reason: Reason, detail: impl Into<String>) -> Self {
        let mut detail = detail.into();
        truncate_on_char_boundary(&mut detail, MAX_DETAIL_CHARS);
        Refusal { reason, detail }
    }
}

/// The longest detail kept, in bytes.
const MAX_DETAIL_CHARS: usize = 200;

fn truncate_on_char_boundary(s: &mut String, max: usize) {
    if s.len() <= max {
        return;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.truncate(end);
    s.push('…');
}

/// One counter per [`Reason`], updated from any thread without a lock.
#[derive(Debug, Default)]
pub struct RefusalCounters {
    counts: [AtomicU64; Reason::ALL.len()],
}

impl RefusalCounters {
    /// All counters at zero.
    pub fn new() -> Self {
        Self::default()
    }

    /// Counts one refusal.
    pub fn record(&self, reason: Reason) {
        self.record_n(reason, 1);
    }

    /// Counts `n` refusals of one reason (e.g. several bad metrics in one message).
    pub fn record_n(&self, reason: Reason, n: u64) {
        self.counts[reason.index()].fetch_add(n, Ordering::Relaxed);
    }

    /// The current count of one reason.
    pub fn get(&self, reason: Reason) -> u64 {
        self.counts[reason.index()].load(Ordering::Relaxed)
    }

    /// All counts, for the API.
    pub fn snapshot(&self) -> CounterSnapshot {
        CounterSnapshot {
            counts: Reason::ALL.iter().map(|&r| (r, self.get(r))).collect(),
        }
    }
}

/// A copy of the counters, every reason present (zeros included) so that a dashboard's columns
/// do not come and go.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CounterSnapshot {
    /// `(reason, count)` in the order of [`Reason::ALL`].
    pub counts: Vec<(Reason, u64)>,
}

impl CounterSnapshot {
    /// The count of one reason.
    pub fn get(&self, reason: Reason) -> u64 {
        self.counts
            .iter()
            .find(|(r, _)| *r == reason)
            .map_or(0, |(_, n)| *n)
    }

    /// All refusals together.
    pub fn total(&self) -> u64 {
        self.counts.iter().map(|(_, n)| n).sum()
    }

    /// What was counted since `earlier` (a snapshot of the same counters): the delta a replica
    /// adds to the database's totals. Counters never go down, so no entry is negative.
    pub fn since(&self, earlier: &CounterSnapshot) -> CounterSnapshot {
        CounterSnapshot {
            counts: self
                .counts
                .iter()
                .map(|&(reason, n)| (reason, n.saturating_sub(earlier.get(reason))))
                .collect(),
        }
    }

    /// Adds another replica's snapshot to this one.
    pub fn add(&mut self, other: &CounterSnapshot) {
        for (reason, n) in &other.counts {
            match self.counts.iter_mut().find(|(r, _)| r == reason) {
                Some((_, mine)) => *mine += n,
                None => self.counts.push((*reason, *n)),
            }
        }
    }
}

/// One refused message as the operator sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RefusalEntry {
    /// When the gateway received the message (ms since the epoch, gateway clock).
    pub received_at_ms: i64,
    /// The topic it came on (names the site and device when the topic parsed).
    pub topic: String,
    /// Why.
    pub refusal: Refusal,
}

/// The last `capacity` refusals, oldest dropped first.
///
/// A mutex is fine here: refusals are the exception, and the critical section is a push.
#[derive(Debug)]
pub struct RecentRefusals {
    capacity: usize,
    entries: Mutex<VecDeque<RefusalEntry>>,
}

impl RecentRefusals {
    /// Keeps at most `capacity` entries.
    pub fn new(capacity: usize) -> Self {
        RecentRefusals {
            capacity,
            entries: Mutex::new(VecDeque::with_capacity(capacity)),
        }
    }

    /// Remembers a refusal.
    pub fn push(&self, entry: RefusalEntry) {
        if self.capacity == 0 {
            return;
        }
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() == self.capacity {
            entries.pop_front();
        }
        let mut entry = entry;
        truncate_on_char_boundary(&mut entry.topic, MAX_DETAIL_CHARS);
        entries.push_back(entry);
    }

    /// The remembered refusals, newest last.
    pub fn list(&self) -> Vec<RefusalEntry> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.iter().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_lists_every_reason_in_declaration_order_with_unique_codes() {
        for (i, r) in Reason::ALL.iter().enumerate() {
            assert_eq!(r.index(), i, "{r} is out of place in Reason::ALL");
            assert_eq!(Reason::from_code(r.code()), Some(*r));
            let json = serde_json::to_string(r).unwrap();
            assert_eq!(json, format!("\"{}\"", r.code()));
        }
        let mut codes: Vec<_> = Reason::ALL.iter().map(|r| r.code()).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), Reason::ALL.len());
    }

    #[test]
    fn counters_count_from_many_threads() {
        let counters = std::sync::Arc::new(RefusalCounters::new());
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let c = counters.clone();
                std::thread::spawn(move || {
                    for _ in 0..1000 {
                        c.record(Reason::NotFinite);
                    }
                    c.record_n(Reason::BadTopic, 2);
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        let snap = counters.snapshot();
        assert_eq!(snap.get(Reason::NotFinite), 4000);
        assert_eq!(snap.get(Reason::BadTopic), 8);
        assert_eq!(snap.get(Reason::NotJpeg), 0);
        assert_eq!(snap.total(), 4008);
        assert_eq!(snap.counts.len(), Reason::ALL.len());

        let mut sum = snap.clone();
        sum.add(&snap);
        assert_eq!(sum.get(Reason::NotFinite), 8000);

        counters.record(Reason::NotJpeg);
        let delta = counters.snapshot().since(&snap);
        assert_eq!(delta.total(), 1);
        assert_eq!(delta.get(Reason::NotJpeg), 1);
        assert_eq!(delta.counts.len(), Reason::ALL.len());
    }

    #[test]
    fn recent_refusals_keep_the_newest_and_short_details() {
        let recent = RecentRefusals::new(2);
        for i in 0..3 {
            recent.push(RefusalEntry {
                received_at_ms: i,
                topic: format!("t{i}"),
                refusal: Refusal::new(Reason::MalformedJson, "x".repeat(1000)),
            });
        }
        let list = recent.list();
        assert_eq!(list.len(), 2);
        assert_eq!(list[0].received_at_ms, 1);
        assert_eq!(list[1].received_at_ms, 2);
        assert!(list[1].refusal.detail.len() <= MAX_DETAIL_CHARS + '…'.len_utf8());
    }

    #[test]
    fn detail_is_cut_on_a_character_boundary() {
        let r = Refusal::new(Reason::BadTopic, "温".repeat(100));
        assert!(r.detail.ends_with('…'));
        assert!(r.detail.len() <= MAX_DETAIL_CHARS + 3);
    }
}
