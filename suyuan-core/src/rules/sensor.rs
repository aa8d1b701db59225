//! Sensor rules: thresholds and silent devices, on event time, as pure state machines.
//!
//! Two kinds of rule ([`IotRule`]), both per site and optionally narrowed to one device:
//!
//! - **threshold**: a metric outside `[min, max]` for at least the rule's duration (a cold store above
//!   8 °C for 30 minutes) opens an alert; the first value back in range closes it;
//! - **no data**: a device silent for the rule's duration (15 minutes) opens an alert; its next message
//!   closes it.
//!
//! **Event time.** Durations are measured between the messages' own `ts`, not between arrival times, so a
//! backlog flushed after an outage is judged on what actually happened in the room. A breach that starts
//! with one message and is confirmed by a later one is assumed to have lasted in between, however far
//! apart they are (silence is the no-data rule's business).
//!
//! **Late messages.** A message is *late* when it arrives more than `lateness_ms` after its `ts` (judged
//! on the gateway's receive time, which its spool keeps, so spooling does not make a live message late).
//! An alert opened or closed by a late message carries `late = true`: history being filled in, recorded
//! and shown, but not raised as a fresh live alarm.
//!
//! **Order.** Each (rule, device) state machine moves forward in event time only. A message older than
//! the newest one already evaluated for that pair is *out of order*: it is stored, but does not move the
//! state, because the interval it belongs to was already decided. [`Evaluator::observe_all`] sorts a
//! batch by `ts` first, so this only drops messages that arrive after newer ones of the same device.
//!
//! **Alert times.** `opened_at_ms` is when the excursion *began* (the first out-of-range value), so an
//! alert's interval covers the whole excursion; `confirmed_at_ms` is when it had lasted long enough. A
//! no-data alert opens at `last_seen + silence`.
//!
//! **State.** Everything the evaluator knows is in [`RuleStates`], saved per device as JSON by
//! `store::iot::ingest` (locked with the device's rows, so replicas never evaluate one device at once).

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::model::{AlertKind, IotRule, RuleKind};
use crate::SiteId;

/// One telemetry message as the rules see it: a device's values at one instant.
#[derive(Debug, Clone, Copy)]
pub struct Sample<'a> {
    /// The device's row id.
    pub device: i64,
    /// Its site.
    pub site: SiteId,
    /// Device time of the message, ms since the epoch.
    pub ts_ms: i64,
    /// When the gateway received it (gateway clock), ms.
    pub received_at_ms: i64,
    /// Metric name (with its unit suffix) → value.
    pub metrics: &'a [(String, f64)],
}

/// Whether a message received at `received_at_ms` about `ts_ms` is history being filled in.
pub fn is_late(ts_ms: i64, received_at_ms: i64, lateness_ms: i64) -> bool {
    received_at_ms.saturating_sub(ts_ms) > lateness_ms
}

/// An alert began.
#[derive(Debug, Clone, PartialEq)]
pub struct Opened {
    /// The rule that raised it.
    pub rule: i64,
    /// [`AlertKind::SensorThreshold`] or [`AlertKind::SensorNoData`].
    pub kind: AlertKind,
    pub site: SiteId,
    /// The device's row id.
    pub device: i64,
    /// The metric (threshold alerts).
    pub metric: Option<String>,
    /// When the excursion or the silence began (event time).
    pub opened_at_ms: i64,
    /// When it had lasted long enough (event time of the confirming message; the clock for no data).
    pub confirmed_at_ms: i64,
    /// The confirming value (threshold alerts).
    pub value: Option<f64>,
    /// Backfill: recorded, not a fresh live alarm.
    pub late: bool,
}

/// An alert ended.
#[derive(Debug, Clone, PartialEq)]
pub struct Closed {
    pub rule: i64,
    pub kind: AlertKind,
    pub site: SiteId,
    pub device: i64,
    pub metric: Option<String>,
    /// When it began (as in [`Opened::opened_at_ms`]), to find the open alert.
    pub opened_at_ms: i64,
    /// Event time of the first value back in range, or of the first message after the silence (never
    /// before `opened_at_ms`).
    pub closed_at_ms: i64,
    /// The closing value.
    pub value: Option<f64>,
    /// The value farthest out of range during the alert (threshold alerts).
    pub peak: Option<f64>,
    /// The closing message was late.
    pub late: bool,
}

/// What the evaluator decides.
#[derive(Debug, Clone, PartialEq)]
pub enum SensorEvent {
    Opened(Opened),
    Closed(Closed),
}

/// Where a threshold rule stands for one device.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "phase")]
pub enum ThresholdPhase {
    /// In range.
    Normal,
    /// Out of range since `since_ms`, not yet for long enough.
    Breaching {
        /// Event time of the first out-of-range value.
        since_ms: i64,
        /// Worst value so far.
        peak: f64,
    },
    /// An alert is open.
    Open {
        /// When the excursion began.
        opened_at_ms: i64,
        /// Worst value so far.
        peak: f64,
    },
}

/// One threshold state machine: a rule and a device.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ThresholdState {
    /// Newest event time evaluated (older messages are out of order).
    pub last_ts_ms: i64,
    pub phase: ThresholdPhase,
}

/// One no-data state machine: a rule and a device.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NoDataState {
    /// The device's site (for the events).
    pub site: SiteId,
    /// Newest event time seen from the device.
    pub last_seen_ms: i64,
    /// `opened_at_ms` of the open alert, if any.
    pub open_since_ms: Option<i64>,
}

/// Everything the evaluator knows, by (rule, device).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RuleStates {
    threshold: HashMap<(i64, i64), ThresholdState>,
    no_data: HashMap<(i64, i64), NoDataState>,
}

/// One device's states as stored: lists, since JSON maps need string keys.
///
/// Entries are `[rule, state]`. Older rows hold `[rule, client id, state]`; they are read the same way
/// (the row already says which device), so an upgrade keeps open alerts' states.
#[derive(Default, Serialize, Deserialize)]
struct DeviceStatesRepr {
    threshold: Vec<Entry<ThresholdState>>,
    no_data: Vec<Entry<NoDataState>>,
}

#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum Entry<S> {
    Current(i64, S),
    WithClientId(i64, String, S),
}

impl<S> Entry<S> {
    fn rule(&self) -> i64 {
        match self {
            Entry::Current(rule, _) | Entry::WithClientId(rule, _, _) => *rule,
        }
    }

    fn into_parts(self) -> (i64, S) {
        match self {
            Entry::Current(rule, s) | Entry::WithClientId(rule, _, s) => (rule, s),
        }
    }
}

impl RuleStates {
    /// The threshold state of a rule and device.
    pub fn threshold(&self, rule: i64, device: i64) -> Option<&ThresholdState> {
        self.threshold.get(&(rule, device))
    }

    /// The no-data state of a rule and device.
    pub fn no_data(&self, rule: i64, device: i64) -> Option<&NoDataState> {
        self.no_data.get(&(rule, device))
    }

    /// Adds one device's stored states. A document that cannot be read (written by a future version)
    /// is skipped, so that the device starts afresh rather than blocking ingestion.
    pub fn load_device(&mut self, device: i64, json: &str) -> bool {
        let Ok(repr) = serde_json::from_str::<DeviceStatesRepr>(json) else {
            return false;
        };
        for e in repr.threshold {
            let (rule, s) = e.into_parts();
            self.threshold.insert((rule, device), s);
        }
        for e in repr.no_data {
            let (rule, s) = e.into_parts();
            self.no_data.insert((rule, device), s);
        }
        true
    }

    /// Each device's states as the JSON document stored for it, devices in id order, entries in rule
    /// order (so that the same states always give the same text).
    pub fn to_device_json(&self) -> Result<Vec<(i64, String)>, serde_json::Error> {
        let mut by_device: std::collections::BTreeMap<i64, DeviceStatesRepr> = Default::default();
        for (&(rule, device), s) in &self.threshold {
            by_device
                .entry(device)
                .or_default()
                .threshold
                .push(Entry::Current(rule, s.clone()));
        }
        for (&(rule, device), s) in &self.no_data {
            by_device
                .entry(device)
                .or_default()
                .no_data
                .push(Entry::Current(rule, s.clone()));
        }
        by_device
            .into_iter()
            .map(|(device, mut repr)| {
                repr.threshold.sort_by_key(Entry::rule);
                repr.no_data.sort_by_key(Entry::rule);
                Ok((device, serde_json::to_string(&repr)?))
            })
            .collect()
    }
}

/// A threshold rule, as evaluated.
#[derive(Debug, Clone)]
struct Threshold {
    id: i64,
    site: SiteId,
    device: Option<i64>,
    metric: String,
    min: Option<f64>,
    max: Option<f64>,
    min_duration_ms: i64,
}

impl Threshold {
    fn in_range(&self, value: f64) -> bool {
        self.min.is_none_or(|min| value >= min) && self.max.is_none_or(|max| value <= max)
    }

    /// How far outside the range a value is (0 inside), to keep the worst value of an excursion.
    fn excess(&self, value: f64) -> f64 {
        let below = self.min.map_or(0.0, |min| min - value);
        let above = self.max.map_or(0.0, |max| value - max);
        below.max(above).max(0.0)
    }

    fn watches(&self, site: SiteId, device: i64) -> bool {
        self.site == site && self.device.is_none_or(|d| d == device)
    }
}

/// A no-data rule, as evaluated.
#[derive(Debug, Clone)]
struct NoData {
    id: i64,
    site: SiteId,
    device: Option<i64>,
    silence_ms: i64,
}

impl NoData {
    fn watches(&self, site: SiteId, device: i64) -> bool {
        self.site == site && self.device.is_none_or(|d| d == device)
    }
}

/// Evaluates a set of rules over messages as they are stored.
#[derive(Debug, Clone)]
pub struct Evaluator {
    threshold: Vec<Threshold>,
    no_data: Vec<NoData>,
    lateness_ms: i64,
    states: RuleStates,
}

impl Evaluator {
    /// An evaluator of `rules` (disabled ones are ignored) continuing from saved `states`; states of
    /// rules no longer present are dropped.
    pub fn new(rules: &[IotRule], lateness_ms: i64, mut states: RuleStates) -> Self {
        let mut threshold = Vec::new();
        let mut no_data = Vec::new();
        for r in rules.iter().filter(|r| r.enabled) {
            match r.kind {
                RuleKind::Threshold => threshold.push(Threshold {
                    id: r.id,
                    site: r.site_id,
                    device: r.device_id,
                    metric: r.metric.clone().unwrap_or_default(),
                    min: r.min_value,
                    max: r.max_value,
                    min_duration_ms: r.duration_ms,
                }),
                RuleKind::NoData => no_data.push(NoData {
                    id: r.id,
                    site: r.site_id,
                    device: r.device_id,
                    silence_ms: r.duration_ms,
                }),
            }
        }
        states
            .threshold
            .retain(|(id, _), _| threshold.iter().any(|r| r.id == *id));
        states
            .no_data
            .retain(|(id, _), _| no_data.iter().any(|r| r.id == *id));
        Evaluator {
            threshold,
            no_data,
            lateness_ms,
            states,
        }
    }

    /// The state, to save.
    pub fn states(&self) -> &RuleStates {
        &self.states
    }

    /// Evaluates messages oldest first (a batch, or a backlog array, need not be sorted; messages of the
    /// same `ts` keep their order).
    pub fn observe_all(&mut self, samples: &[Sample<'_>]) -> Vec<SensorEvent> {
        let mut order: Vec<&Sample<'_>> = samples.iter().collect();
        order.sort_by_key(|s| s.ts_ms);
        let mut events = Vec::new();
        for s in order {
            events.extend(self.observe(s));
        }
        events
    }

    /// Evaluates one stored message.
    pub fn observe(&mut self, sample: &Sample<'_>) -> Vec<SensorEvent> {
        let late = is_late(sample.ts_ms, sample.received_at_ms, self.lateness_ms);
        let mut events = Vec::new();
        for (metric, value) in sample.metrics {
            for rule in self
                .threshold
                .iter()
                .filter(|r| r.metric == *metric && r.watches(sample.site, sample.device))
            {
                let state = self
                    .states
                    .threshold
                    .entry((rule.id, sample.device))
                    .or_insert(ThresholdState {
                        last_ts_ms: sample.ts_ms,
                        phase: ThresholdPhase::Normal,
                    });
                if let Some(event) = step_threshold(rule, state, sample, *value, late) {
                    events.push(event);
                }
            }
        }
        for rule in self
            .no_data
            .iter()
            .filter(|r| r.watches(sample.site, sample.device))
        {
            let key = (rule.id, sample.device);
            match self.states.no_data.get_mut(&key) {
                None => {
                    self.states.no_data.insert(
                        key,
                        NoDataState {
                            site: sample.site,
                            last_seen_ms: sample.ts_ms,
                            open_since_ms: None,
                        },
                    );
                }
                Some(state) if sample.ts_ms > state.last_seen_ms => {
                    state.last_seen_ms = sample.ts_ms;
                    state.site = sample.site;
                    if let Some(opened_at_ms) = state.open_since_ms.take() {
                        events.push(SensorEvent::Closed(Closed {
                            rule: rule.id,
                            kind: AlertKind::SensorNoData,
                            site: sample.site,
                            device: sample.device,
                            metric: None,
                            opened_at_ms,
                            closed_at_ms: sample.ts_ms.max(opened_at_ms),
                            value: None,
                            peak: None,
                            late,
                        }));
                    }
                }
                Some(_) => {}
            }
        }
        events
    }

    /// Tells the no-data rules that a device was last heard of at `ts_ms` (from the database), so that
    /// a device silent since before a restart is noticed.
    pub fn note_seen(&mut self, site: SiteId, device: i64, ts_ms: i64) {
        for rule in self.no_data.iter().filter(|r| r.watches(site, device)) {
            let state = self
                .states
                .no_data
                .entry((rule.id, device))
                .or_insert(NoDataState {
                    site,
                    last_seen_ms: ts_ms,
                    open_since_ms: None,
                });
            state.last_seen_ms = state.last_seen_ms.max(ts_ms);
        }
    }

    /// Opens no-data alerts whose silence has run out by the clock `now_ms`. Each silence opens one
    /// alert, however often this is called.
    pub fn tick(&mut self, now_ms: i64) -> Vec<SensorEvent> {
        let mut events = Vec::new();
        for rule in &self.no_data {
            for (&(id, device), state) in self.states.no_data.iter_mut() {
                if id != rule.id || state.open_since_ms.is_some() {
                    continue;
                }
                let due = state.last_seen_ms.saturating_add(rule.silence_ms);
                if now_ms >= due {
                    state.open_since_ms = Some(due);
                    events.push(SensorEvent::Opened(Opened {
                        rule: rule.id,
                        kind: AlertKind::SensorNoData,
                        site: state.site,
                        device,
                        metric: None,
                        opened_at_ms: due,
                        confirmed_at_ms: now_ms,
                        value: None,
                        late: is_late(due, now_ms, self.lateness_ms),
                    }));
                }
            }
        }
        events.sort_by_key(|e| match e {
            SensorEvent::Opened(e) => (e.rule, e.device),
            SensorEvent::Closed(e) => (e.rule, e.device),
        });
        events
    }
}

/// One step of a threshold state machine.
fn step_threshold(
    rule: &Threshold,
    state: &mut ThresholdState,
    sample: &Sample<'_>,
    value: f64,
    late: bool,
) -> Option<SensorEvent> {
    let ts = sample.ts_ms;
    if ts < state.last_ts_ms {
        return None; // out of order: the interval was already decided
    }
    state.last_ts_ms = ts;
    let worse = |peak: f64| {
        if rule.excess(value) > rule.excess(peak) {
            value
        } else {
            peak
        }
    };
    let opened = |opened_at_ms: i64| {
        SensorEvent::Opened(Opened {
            rule: rule.id,
            kind: AlertKind::SensorThreshold,
            site: sample.site,
            device: sample.device,
            metric: Some(rule.metric.clone()),
            opened_at_ms,
            confirmed_at_ms: ts,
            value: Some(value),
            late,
        })
    };
    let in_range = rule.in_range(value);
    match state.phase {
        ThresholdPhase::Normal if in_range => None,
        ThresholdPhase::Normal if rule.min_duration_ms <= 0 => {
            state.phase = ThresholdPhase::Open {
                opened_at_ms: ts,
                peak: value,
            };
            Some(opened(ts))
        }
        ThresholdPhase::Normal => {
            state.phase = ThresholdPhase::Breaching {
                since_ms: ts,
                peak: value,
            };
            None
        }
        ThresholdPhase::Breaching { .. } if in_range => {
            state.phase = ThresholdPhase::Normal;
            None
        }
        ThresholdPhase::Breaching { since_ms, peak } => {
            let peak = worse(peak);
            if ts - since_ms >= rule.min_duration_ms {
                state.phase = ThresholdPhase::Open {
                    opened_at_ms: since_ms,
                    peak,
                };
                Some(opened(since_ms))
            } else {
                state.phase = ThresholdPhase::Breaching { since_ms, peak };
                None
            }
        }
        ThresholdPhase::Open { opened_at_ms, peak } if in_range => {
            state.phase = ThresholdPhase::Normal;
            Some(SensorEvent::Closed(Closed {
                rule: rule.id,
                kind: AlertKind::SensorThreshold,
                site: sample.site,
                device: sample.device,
                metric: Some(rule.metric.clone()),
                opened_at_ms,
                closed_at_ms: ts,
                value: Some(value),
                peak: Some(peak),
                late,
            }))
        }
        ThresholdPhase::Open { opened_at_ms, peak } => {
            state.phase = ThresholdPhase::Open {
                opened_at_ms,
                peak: worse(peak),
            };
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{OrgId, UserId};

    const T0: i64 = 1_750_000_000_000;
    const MIN: i64 = 60_000;
    const LATENESS: i64 = 5 * MIN;
    const DEVICE: i64 = 7;

    fn rule(id: i64, kind: RuleKind, duration_ms: i64) -> IotRule {
        IotRule {
            id,
            org_id: OrgId(1),
            site_id: SiteId(1),
            device_id: None,
            kind,
            name: "冷库".into(),
            metric: (kind == RuleKind::Threshold).then(|| "temp_c".into()),
            min_value: None,
            max_value: (kind == RuleKind::Threshold).then_some(8.0),
            duration_ms,
            enabled: true,
            created_by: UserId(1),
            created_at: chrono::DateTime::UNIX_EPOCH,
        }
    }

    fn cold_store() -> Evaluator {
        Evaluator::new(
            &[
                rule(10, RuleKind::Threshold, 30 * MIN),
                rule(20, RuleKind::NoData, 15 * MIN),
            ],
            LATENESS,
            RuleStates::default(),
        )
    }

    /// Feeds `(minute, value)` temperatures, each received `delay` minutes after its ts.
    fn feed(e: &mut Evaluator, values: &[(i64, f64)], delay: i64) -> Vec<SensorEvent> {
        values
            .iter()
            .flat_map(|&(m, v)| {
                let metrics = [("temp_c".to_owned(), v)];
                e.observe(&Sample {
                    device: DEVICE,
                    site: SiteId(1),
                    ts_ms: T0 + m * MIN,
                    received_at_ms: T0 + (m + delay) * MIN,
                    metrics: &metrics,
                })
            })
            .collect()
    }

    fn opened(events: &[SensorEvent]) -> Vec<&Opened> {
        events
            .iter()
            .filter_map(|e| match e {
                SensorEvent::Opened(o) => Some(o),
                SensorEvent::Closed(_) => None,
            })
            .collect()
    }

    fn closed(events: &[SensorEvent]) -> Vec<&Closed> {
        events
            .iter()
            .filter_map(|e| match e {
                SensorEvent::Closed(c) => Some(c),
                SensorEvent::Opened(_) => None,
            })
            .collect()
    }

    #[test]
    fn above_8_for_30_minutes_opens_then_closes_back_in_range() {
        let mut e = cold_store();
        let events = feed(
            &mut e,
            &[(0, 4.0), (5, 5.0), (10, 9.0), (25, 9.6), (39, 9.2)],
            0,
        );
        assert!(events.is_empty(), "29 minutes is not enough: {events:?}");
        let events = feed(&mut e, &[(40, 9.1)], 0);
        assert_eq!(
            events,
            [SensorEvent::Opened(Opened {
                rule: 10,
                kind: AlertKind::SensorThreshold,
                site: SiteId(1),
                device: DEVICE,
                metric: Some("temp_c".into()),
                opened_at_ms: T0 + 10 * MIN,
                confirmed_at_ms: T0 + 40 * MIN,
                value: Some(9.1),
                late: false,
            })]
        );
        assert!(feed(&mut e, &[(45, 10.5)], 0).is_empty(), "stays open");
        let events = feed(&mut e, &[(50, 6.0)], 0);
        let c = closed(&events);
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].opened_at_ms, T0 + 10 * MIN);
        assert_eq!(c[0].closed_at_ms, T0 + 50 * MIN);
        assert_eq!(c[0].peak, Some(10.5));
        assert_eq!(c[0].value, Some(6.0));
        assert!(!c[0].late);
    }

    #[test]
    fn a_short_excursion_raises_nothing() {
        let mut e = cold_store();
        let events = feed(
            &mut e,
            &[(0, 9.0), (10, 9.0), (20, 9.0), (25, 5.0), (30, 9.0)],
            0,
        );
        assert!(events.is_empty(), "{events:?}");
        // The breach timer restarted at minute 30.
        assert!(feed(&mut e, &[(55, 9.0)], 0).is_empty());
        assert_eq!(opened(&feed(&mut e, &[(60, 9.0)], 0)).len(), 1);
    }

    #[test]
    fn a_backfilled_excursion_is_marked_late() {
        let mut e = cold_store();
        // The device was offline for two hours and flushes its backlog, newest first, on reconnecting.
        let values: Vec<[(String, f64); 1]> = [4.0, 9.0, 9.0, 9.0, 5.0]
            .iter()
            .map(|v| [("temp_c".to_owned(), *v)])
            .collect();
        let minutes = [0, 10, 20, 40, 50];
        let backlog: Vec<Sample<'_>> = minutes
            .iter()
            .zip(&values)
            .rev()
            .map(|(m, metrics)| Sample {
                device: DEVICE,
                site: SiteId(1),
                ts_ms: T0 + m * MIN,
                received_at_ms: T0 + 120 * MIN,
                metrics,
            })
            .collect();
        let events = e.observe_all(&backlog);
        let o = opened(&events);
        assert_eq!(o.len(), 1);
        assert!(o[0].late);
        assert_eq!(o[0].opened_at_ms, T0 + 10 * MIN);
        let c = closed(&events);
        assert_eq!(c.len(), 1);
        assert!(c[0].late);
        assert_eq!(c[0].closed_at_ms, T0 + 50 * MIN);

        // Arriving within the lateness window is live.
        let mut e = cold_store();
        let events = feed(&mut e, &[(0, 9.0), (30, 9.0)], 4);
        assert!(!opened(&events)[0].late);
    }

    #[test]
    fn out_of_order_messages_do_not_move_the_state() {
        let mut e = cold_store();
        assert!(feed(&mut e, &[(0, 4.0), (60, 4.0)], 0).is_empty());
        // An old excursion arriving after newer messages: stored, but no alert.
        assert!(feed(&mut e, &[(10, 9.0), (50, 9.0)], 0).is_empty());
        assert_eq!(
            e.states().threshold(10, DEVICE).map(|s| s.phase),
            Some(ThresholdPhase::Normal)
        );
    }

    #[test]
    fn silence_opens_a_no_data_alert_once_and_data_closes_it() {
        let mut e = cold_store();
        feed(&mut e, &[(0, 4.0)], 0);
        assert!(
            e.tick(T0 + 14 * MIN).is_empty(),
            "14 minutes is not silence"
        );
        let events = e.tick(T0 + 15 * MIN);
        assert_eq!(
            events,
            [SensorEvent::Opened(Opened {
                rule: 20,
                kind: AlertKind::SensorNoData,
                site: SiteId(1),
                device: DEVICE,
                metric: None,
                opened_at_ms: T0 + 15 * MIN,
                confirmed_at_ms: T0 + 15 * MIN,
                value: None,
                late: false,
            })]
        );
        assert!(e.tick(T0 + 16 * MIN).is_empty(), "opened once");
        let events = feed(&mut e, &[(22, 4.0)], 0);
        let c = closed(&events);
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].kind, AlertKind::SensorNoData);
        assert_eq!(c[0].opened_at_ms, T0 + 15 * MIN);
        assert_eq!(c[0].closed_at_ms, T0 + 22 * MIN);
        // Silent again: a new alert from the new last message.
        assert!(e.tick(T0 + 36 * MIN).is_empty());
        assert_eq!(e.tick(T0 + 37 * MIN).len(), 1);
    }

    #[test]
    fn a_restart_notices_silence_from_stored_data_and_marks_it_late() {
        let mut e = cold_store();
        e.note_seen(SiteId(1), DEVICE, T0);
        let events = e.tick(T0 + 60 * MIN);
        let o = opened(&events);
        assert_eq!(o[0].opened_at_ms, T0 + 15 * MIN);
        assert!(o[0].late, "found 45 minutes after the fact");
        // A backlog whose first message predates the alert closes it at the alert's start.
        let c = feed(&mut e, &[(5, 4.0)], 55);
        assert_eq!(closed(&c)[0].closed_at_ms, T0 + 15 * MIN);
    }

    #[test]
    fn bounds_devices_sites_metrics_and_disabled_rules() {
        let mut only_device = rule(1, RuleKind::Threshold, 0);
        only_device.device_id = Some(DEVICE);
        only_device.min_value = Some(0.0);
        let mut disabled = rule(2, RuleKind::Threshold, 0);
        disabled.enabled = false;
        let mut e = Evaluator::new(&[only_device, disabled], LATENESS, RuleStates::default());
        let cold = [("temp_c".to_owned(), -3.0)];
        let humid = [("rh_pct".to_owned(), 99.0)];
        let at = |device, site, metrics| Sample {
            device,
            site: SiteId(site),
            ts_ms: T0,
            received_at_ms: T0,
            metrics,
        };
        assert!(e.observe(&at(DEVICE, 2, &cold)).is_empty(), "other site");
        assert!(e.observe(&at(8, 1, &cold)).is_empty(), "other device");
        assert!(e.observe(&at(DEVICE, 1, &humid)).is_empty(), "other metric");

        // Below min with no duration: opens at once, and only for rule 1; 0 and 8 are in range.
        let events = feed(&mut e, &[(0, -3.0), (1, -5.0), (2, 0.0)], 0);
        assert_eq!(opened(&events).len(), 1);
        assert_eq!(opened(&events)[0].rule, 1);
        assert_eq!(opened(&events)[0].opened_at_ms, T0);
        assert_eq!(closed(&events)[0].peak, Some(-5.0));
        assert!(feed(&mut e, &[(3, 8.0)], 0).is_empty());
    }

    #[test]
    fn state_survives_saving_mid_breach_and_a_removed_rule_is_dropped() {
        let mut e = cold_store();
        feed(&mut e, &[(0, 9.0), (20, 9.5)], 0);
        let saved = e.states().to_device_json().unwrap();
        assert_eq!(saved.len(), 1);
        let mut states = RuleStates::default();
        assert!(states.load_device(DEVICE, &saved[0].1));
        assert_eq!(&states, e.states());

        let mut restored =
            Evaluator::new(&[rule(10, RuleKind::Threshold, 30 * MIN)], LATENESS, states);
        assert!(restored.states().no_data(20, DEVICE).is_none());
        let events = feed(&mut restored, &[(30, 9.0)], 0);
        assert_eq!(opened(&events)[0].opened_at_ms, T0);
    }

    #[test]
    fn states_stored_with_client_ids_are_read() {
        let old = r#"{"threshold":[[10,"cold-01",{"last_ts_ms":1,"phase":{"phase":"open","opened_at_ms":1,"peak":9.5}}]],"no_data":[[20,"cold-01",{"site":1,"last_seen_ms":1,"open_since_ms":null}]]}"#;
        let mut states = RuleStates::default();
        assert!(states.load_device(DEVICE, old));
        assert_eq!(
            states.threshold(10, DEVICE).map(|s| s.phase),
            Some(ThresholdPhase::Open {
                opened_at_ms: 1,
                peak: 9.5
            })
        );
        assert_eq!(states.no_data(20, DEVICE).map(|s| s.site), Some(SiteId(1)));
        assert!(
            !states.load_device(DEVICE, "not json"),
            "unreadable: skipped"
        );
    }
}
