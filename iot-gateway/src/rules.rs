//! Alert rules on sensor readings, evaluated on event time, as pure state machines.
//!
//! Two kinds of rule, both per site (optionally narrowed to one device):
//!
//! - a [`ThresholdRule`]: a metric outside `[min, max]` for at least `min_duration_ms` (a cold
//!   store above 8 °C for 30 minutes) opens an alert; the first reading back in range closes it;
//! - a [`NoDataRule`]: a device silent for `silence_ms` (15 minutes) opens an alert; its next
//!   reading closes it.
//!
//! **Event time.** Durations are measured between the readings' own `ts`, not between arrival
//! times, so a backlog flushed after an outage is judged on what actually happened in the room. A
//! breach that starts with one reading and is confirmed by a later one is assumed to have lasted
//! in between, however far apart the readings are (silence is the no-data rule's business).
//!
//! **Late readings.** A reading is *late* when it arrives more than `lateness_ms` after its
//! `ts` (judged on the gateway's `received_at_ms`, which the spool keeps, so spooling does not
//! make a live reading late). An alert opened or closed by a late reading carries `late = true`:
//! it is history being filled in, recorded and shown, but not to be raised as a fresh live alarm.
//!
//! **Order.** Each (rule, device) state machine moves forward in event time only. A reading older
//! than the newest one already evaluated for that pair is *out of order*: it is stored (elsewhere)
//! but does not move the state, because the interval it belongs to was already decided. Devices
//! send their backlog oldest first, and [`Evaluator::observe_message`] sorts a message's readings
//! by `ts`, so this only drops readings that arrive after newer ones of the same device.
//!
//! **Alert times.** `opened_at_ms` is when the excursion *began* (the first out-of-range
//! reading), so an alert's interval covers the whole excursion; `confirmed_at_ms` is when it had
//! lasted long enough to become an alert. A no-data alert opens at `last_seen + silence_ms`.
//!
//! **State.** Everything the evaluator knows is in [`RuleStates`], which serialises with serde,
//! so it can be saved and restored, or rebuilt by replaying stored readings. With several gateway
//! replicas on a shared subscription, one device's messages can reach different replicas: rule
//! evaluation then belongs in one place (one evaluator fed from the database, or the state kept
//! in the database per device), not in each replica.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::config::RuleConfig;
use crate::reading::Reading;
use crate::topic::{ClientId, SiteId};

/// A rule's database id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RuleId(pub i64);

/// A metric that must stay within `[min, max]` (either bound optional, both inclusive).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ThresholdRule {
    /// The rule.
    pub id: RuleId,
    /// The site it watches.
    pub site: SiteId,
    /// Only this device, or every device at the site.
    pub device: Option<ClientId>,
    /// The metric, e.g. `temp_c`.
    pub metric: String,
    /// Lowest allowed value.
    pub min: Option<f64>,
    /// Highest allowed value.
    pub max: Option<f64>,
    /// How long the metric must stay out of range before an alert opens (0: at once).
    pub min_duration_ms: i64,
}

impl ThresholdRule {
    /// Whether a value is allowed.
    pub fn in_range(&self, value: f64) -> bool {
        self.min.is_none_or(|min| value >= min) && self.max.is_none_or(|max| value <= max)
    }

    /// How far outside the range a value is (0 inside), to keep the worst value of an excursion.
    fn excess(&self, value: f64) -> f64 {
        let below = self.min.map_or(0.0, |min| min - value);
        let above = self.max.map_or(0.0, |max| value - max);
        below.max(above).max(0.0)
    }

    fn applies_to(&self, reading: &Reading) -> bool {
        self.site == reading.site
            && self.metric == reading.metric
            && self.device.as_ref().is_none_or(|d| *d == reading.device)
    }
}

/// A device that must send something at least every `silence_ms`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NoDataRule {
    /// The rule.
    pub id: RuleId,
    /// The site it watches.
    pub site: SiteId,
    /// Only this device, or every device at the site.
    pub device: Option<ClientId>,
    /// Longest allowed silence.
    pub silence_ms: i64,
}

impl NoDataRule {
    fn applies_to(&self, site: SiteId, device: &ClientId) -> bool {
        self.site == site && self.device.as_ref().is_none_or(|d| d == device)
    }
}

/// Any rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Rule {
    /// Out of range for too long.
    Threshold(ThresholdRule),
    /// Silent for too long.
    NoData(NoDataRule),
}

impl Rule {
    /// The rule's id.
    pub fn id(&self) -> RuleId {
        match self {
            Rule::Threshold(r) => r.id,
            Rule::NoData(r) => r.id,
        }
    }
}

/// Which kind of rule raised an alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    /// A [`ThresholdRule`].
    Threshold,
    /// A [`NoDataRule`].
    NoData,
}

/// An alert began.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertOpened {
    /// The rule that raised it.
    pub rule: RuleId,
    /// Its kind.
    pub kind: AlertKind,
    /// Where.
    pub site: SiteId,
    /// Which device.
    pub device: ClientId,
    /// The metric (threshold alerts).
    pub metric: Option<String>,
    /// When the excursion or the silence began (event time).
    pub opened_at_ms: i64,
    /// When it had lasted long enough (event time of the confirming reading; the gateway's
    /// clock for a no-data alert).
    pub confirmed_at_ms: i64,
    /// The confirming reading's value (threshold alerts).
    pub value: Option<f64>,
    /// Backfill: recorded, not a fresh live alarm.
    pub late: bool,
}

/// An alert ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertClosed {
    /// The rule that raised it.
    pub rule: RuleId,
    /// Its kind.
    pub kind: AlertKind,
    /// Where.
    pub site: SiteId,
    /// Which device.
    pub device: ClientId,
    /// The metric (threshold alerts).
    pub metric: Option<String>,
    /// When it began (as in [`AlertOpened::opened_at_ms`]), to find the open alert.
    pub opened_at_ms: i64,
    /// The event time of the first reading back in range, or of the first reading after the
    /// silence (never before `opened_at_ms`).
    pub closed_at_ms: i64,
    /// The closing reading's value.
    pub value: Option<f64>,
    /// The value farthest out of range during the alert (threshold alerts).
    pub peak: Option<f64>,
    /// The closing reading was late.
    pub late: bool,
}

/// What the evaluator reports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "event")]
pub enum AlertEvent {
    /// An alert began.
    Opened(AlertOpened),
    /// An alert ended.
    Closed(AlertClosed),
}

/// Where a threshold rule stands for one device.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "phase")]
pub enum ThresholdPhase {
    /// In range.
    Normal,
    /// Out of range since `since_ms`, not yet for long enough.
    Breaching {
        /// Event time of the first out-of-range reading.
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
    /// Newest event time evaluated (readings older than this are out of order).
    pub last_ts_ms: i64,
    /// Where it stands.
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

/// Everything the evaluator knows, serialisable (as two lists, since JSON maps need string keys).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(into = "RuleStatesRepr", from = "RuleStatesRepr")]
pub struct RuleStates {
    threshold: HashMap<(RuleId, ClientId), ThresholdState>,
    no_data: HashMap<(RuleId, ClientId), NoDataState>,
}

impl RuleStates {
    /// The threshold state of a rule and device.
    pub fn threshold(&self, rule: RuleId, device: &ClientId) -> Option<&ThresholdState> {
        self.threshold.get(&(rule, device.clone()))
    }

    /// The no-data state of a rule and device.
    pub fn no_data(&self, rule: RuleId, device: &ClientId) -> Option<&NoDataState> {
        self.no_data.get(&(rule, device.clone()))
    }

    /// Adds another set of states (e.g. another device's, stored separately); `other` wins on a clash.
    pub fn merge(&mut self, other: RuleStates) {
        self.threshold.extend(other.threshold);
        self.no_data.extend(other.no_data);
    }

    /// Splits the states by device, so that each device's can be stored (and locked) on its own.
    pub fn split_by_device(self) -> HashMap<ClientId, RuleStates> {
        let mut out: HashMap<ClientId, RuleStates> = HashMap::new();
        for ((rule, device), state) in self.threshold {
            out.entry(device.clone())
                .or_default()
                .threshold
                .insert((rule, device), state);
        }
        for ((rule, device), state) in self.no_data {
            out.entry(device.clone())
                .or_default()
                .no_data
                .insert((rule, device), state);
        }
        out
    }
}

#[derive(Serialize, Deserialize)]
struct RuleStatesRepr {
    threshold: Vec<(RuleId, ClientId, ThresholdState)>,
    no_data: Vec<(RuleId, ClientId, NoDataState)>,
}

impl From<RuleStates> for RuleStatesRepr {
    fn from(s: RuleStates) -> Self {
        let mut threshold: Vec<_> = s
            .threshold
            .into_iter()
            .map(|((r, d), st)| (r, d, st))
            .collect();
        threshold.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
        let mut no_data: Vec<_> = s
            .no_data
            .into_iter()
            .map(|((r, d), st)| (r, d, st))
            .collect();
        no_data.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
        RuleStatesRepr { threshold, no_data }
    }
}

impl From<RuleStatesRepr> for RuleStates {
    fn from(r: RuleStatesRepr) -> Self {
        RuleStates {
            threshold: r
                .threshold
                .into_iter()
                .map(|(r, d, s)| ((r, d), s))
                .collect(),
            no_data: r.no_data.into_iter().map(|(r, d, s)| ((r, d), s)).collect(),
        }
    }
}

/// Evaluates a set of rules over readings as they are stored.
#[derive(Debug, Clone)]
pub struct Evaluator {
    threshold: Vec<ThresholdRule>,
    no_data: Vec<NoDataRule>,
    lateness_ms: i64,
    states: RuleStates,
}

impl Evaluator {
    /// An evaluator with no history.
    pub fn new(rules: Vec<Rule>, config: &RuleConfig) -> Self {
        Self::with_states(rules, config, RuleStates::default())
    }

    /// An evaluator that continues from saved states (states of rules no longer present are
    /// dropped).
    pub fn with_states(rules: Vec<Rule>, config: &RuleConfig, states: RuleStates) -> Self {
        let mut evaluator = Evaluator {
            threshold: Vec::new(),
            no_data: Vec::new(),
            lateness_ms: config.lateness_ms,
            states,
        };
        evaluator.set_rules(rules);
        evaluator
    }

    /// Replaces the rules (an operator edited them), keeping the state of rules that remain.
    pub fn set_rules(&mut self, rules: Vec<Rule>) {
        self.threshold.clear();
        self.no_data.clear();
        for rule in rules {
            match rule {
                Rule::Threshold(r) => self.threshold.push(r),
                Rule::NoData(r) => self.no_data.push(r),
            }
        }
        let threshold_ids: Vec<RuleId> = self.threshold.iter().map(|r| r.id).collect();
        let no_data_ids: Vec<RuleId> = self.no_data.iter().map(|r| r.id).collect();
        self.states
            .threshold
            .retain(|(id, _), _| threshold_ids.contains(id));
        self.states
            .no_data
            .retain(|(id, _), _| no_data_ids.contains(id));
    }

    /// The state, to save.
    pub fn states(&self) -> &RuleStates {
        &self.states
    }

    /// Evaluates the readings of one message, oldest first (a backlog array need not be sorted).
    pub fn observe_message(
        &mut self,
        readings: &[Reading],
        received_at_ms: i64,
    ) -> Vec<AlertEvent> {
        let mut order: Vec<&Reading> = readings.iter().collect();
        order.sort_by_key(|r| r.ts_ms);
        let mut events = Vec::new();
        for reading in order {
            events.extend(self.observe(reading, received_at_ms));
        }
        events
    }

    /// Evaluates one stored reading that the gateway received at `received_at_ms`.
    pub fn observe(&mut self, reading: &Reading, received_at_ms: i64) -> Vec<AlertEvent> {
        let late = received_at_ms.saturating_sub(reading.ts_ms) > self.lateness_ms;
        let mut events = Vec::new();
        for rule in self.threshold.iter().filter(|r| r.applies_to(reading)) {
            let key = (rule.id, reading.device.clone());
            let state = self.states.threshold.entry(key).or_insert(ThresholdState {
                last_ts_ms: reading.ts_ms,
                phase: ThresholdPhase::Normal,
            });
            if let Some(event) = step_threshold(rule, state, reading, late) {
                events.push(event);
            }
        }
        for rule in self
            .no_data
            .iter()
            .filter(|r| r.applies_to(reading.site, &reading.device))
        {
            let key = (rule.id, reading.device.clone());
            match self.states.no_data.get_mut(&key) {
                None => {
                    self.states.no_data.insert(
                        key,
                        NoDataState {
                            site: reading.site,
                            last_seen_ms: reading.ts_ms,
                            open_since_ms: None,
                        },
                    );
                }
                Some(state) if reading.ts_ms > state.last_seen_ms => {
                    state.last_seen_ms = reading.ts_ms;
                    state.site = reading.site;
                    if let Some(opened_at_ms) = state.open_since_ms.take() {
                        events.push(AlertEvent::Closed(AlertClosed {
                            rule: rule.id,
                            kind: AlertKind::NoData,
                            site: reading.site,
                            device: reading.device.clone(),
                            metric: None,
                            opened_at_ms,
                            closed_at_ms: reading.ts_ms.max(opened_at_ms),
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

    /// Tells the no-data rules that a device was last heard of at `ts_ms` (at start, from the
    /// newest stored reading), so that a device silent since before the restart is noticed.
    pub fn note_seen(&mut self, site: SiteId, device: &ClientId, ts_ms: i64) {
        for rule in self.no_data.iter().filter(|r| r.applies_to(site, device)) {
            let state = self
                .states
                .no_data
                .entry((rule.id, device.clone()))
                .or_insert(NoDataState {
                    site,
                    last_seen_ms: ts_ms,
                    open_since_ms: None,
                });
            state.last_seen_ms = state.last_seen_ms.max(ts_ms);
        }
    }

    /// Opens no-data alerts whose silence has run out by the gateway's clock `now_ms`. Call it
    /// periodically (e.g. every 30 s); each silence opens one alert, however often it is called.
    pub fn tick(&mut self, now_ms: i64) -> Vec<AlertEvent> {
        let mut events = Vec::new();
        for rule in &self.no_data {
            for ((id, device), state) in self.states.no_data.iter_mut() {
                if *id != rule.id || state.open_since_ms.is_some() {
                    continue;
                }
                let due = state.last_seen_ms.saturating_add(rule.silence_ms);
                if now_ms >= due {
                    state.open_since_ms = Some(due);
                    events.push(AlertEvent::Opened(AlertOpened {
                        rule: rule.id,
                        kind: AlertKind::NoData,
                        site: state.site,
                        device: device.clone(),
                        metric: None,
                        opened_at_ms: due,
                        confirmed_at_ms: now_ms,
                        value: None,
                        late: now_ms.saturating_sub(due) > self.lateness_ms,
                    }));
                }
            }
        }
        events.sort_by(|a, b| event_order(a).cmp(&event_order(b)));
        events
    }
}

fn event_order(event: &AlertEvent) -> (RuleId, &ClientId) {
    match event {
        AlertEvent::Opened(e) => (e.rule, &e.device),
        AlertEvent::Closed(e) => (e.rule, &e.device),
    }
}

/// One step of a threshold state machine.
fn step_threshold(
    rule: &ThresholdRule,
    state: &mut ThresholdState,
    reading: &Reading,
    late: bool,
) -> Option<AlertEvent> {
    let ts = reading.ts_ms;
    if ts < state.last_ts_ms {
        return None; // out of order: the interval was already decided
    }
    state.last_ts_ms = ts;
    let value = reading.value;
    let worse = |peak: f64| {
        if rule.excess(value) > rule.excess(peak) {
            value
        } else {
            peak
        }
    };
    let opened = |opened_at_ms: i64| {
        AlertEvent::Opened(AlertOpened {
            rule: rule.id,
            kind: AlertKind::Threshold,
            site: reading.site,
            device: reading.device.clone(),
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
            Some(AlertEvent::Closed(AlertClosed {
                rule: rule.id,
                kind: AlertKind::Threshold,
                site: reading.site,
                device: reading.device.clone(),
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
    use crate::reading::Unit;

    const T0: i64 = 1_750_000_000_000;
    const MIN: i64 = 60_000;

    fn device() -> ClientId {
        ClientId::new("cold-01").unwrap()
    }

    fn reading(minute: i64, value: f64) -> Reading {
        Reading {
            site: SiteId(1),
            device: device(),
            ts_ms: T0 + minute * MIN,
            seq: None,
            metric: "temp_c".into(),
            value,
            unit: Unit::Celsius,
        }
    }

    fn cold_store() -> Evaluator {
        Evaluator::new(
            vec![
                Rule::Threshold(ThresholdRule {
                    id: RuleId(10),
                    site: SiteId(1),
                    device: None,
                    metric: "temp_c".into(),
                    min: None,
                    max: Some(8.0),
                    min_duration_ms: 30 * MIN,
                }),
                Rule::NoData(NoDataRule {
                    id: RuleId(20),
                    site: SiteId(1),
                    device: None,
                    silence_ms: 15 * MIN,
                }),
            ],
            &RuleConfig::default(),
        )
    }

    /// Feeds `(minute, value)` readings, each received `delay` minutes after its ts.
    fn feed(e: &mut Evaluator, readings: &[(i64, f64)], delay: i64) -> Vec<AlertEvent> {
        readings
            .iter()
            .flat_map(|&(m, v)| e.observe(&reading(m, v), T0 + (m + delay) * MIN))
            .collect()
    }

    fn opened(events: &[AlertEvent]) -> Vec<&AlertOpened> {
        events
            .iter()
            .filter_map(|e| match e {
                AlertEvent::Opened(o) => Some(o),
                _ => None,
            })
            .collect()
    }

    fn closed(events: &[AlertEvent]) -> Vec<&AlertClosed> {
        events
            .iter()
            .filter_map(|e| match e {
                AlertEvent::Closed(c) => Some(c),
                _ => None,
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
            [AlertEvent::Opened(AlertOpened {
                rule: RuleId(10),
                kind: AlertKind::Threshold,
                site: SiteId(1),
                device: device(),
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
        // The device was offline for two hours and flushes its backlog on reconnecting.
        let backlog: Vec<Reading> = [(0, 4.0), (10, 9.0), (20, 9.0), (40, 9.0), (50, 5.0)]
            .iter()
            .rev() // unsorted in the message: observe_message sorts
            .map(|&(m, v)| reading(m, v))
            .collect();
        let events = e.observe_message(&backlog, T0 + 120 * MIN);
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
    fn out_of_order_readings_do_not_move_the_state() {
        let mut e = cold_store();
        assert!(feed(&mut e, &[(0, 4.0), (60, 4.0)], 0).is_empty());
        // An old excursion arriving after newer readings: stored elsewhere, no alert here.
        assert!(feed(&mut e, &[(10, 9.0), (50, 9.0)], 0).is_empty());
        assert_eq!(
            e.states().threshold(RuleId(10), &device()).unwrap().phase,
            ThresholdPhase::Normal
        );
    }

    #[test]
    fn silence_opens_a_no_data_alert_once_and_data_closes_it() {
        let mut e = cold_store();
        feed(&mut e, &[(0, 4.0)], 0);
        assert!(e.tick(T0 + 14 * MIN).is_empty());
        let events = e.tick(T0 + 15 * MIN);
        assert_eq!(
            events,
            [AlertEvent::Opened(AlertOpened {
                rule: RuleId(20),
                kind: AlertKind::NoData,
                site: SiteId(1),
                device: device(),
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
        assert_eq!(c[0].kind, AlertKind::NoData);
        assert_eq!(c[0].opened_at_ms, T0 + 15 * MIN);
        assert_eq!(c[0].closed_at_ms, T0 + 22 * MIN);
        // Silent again: a new alert from the new last reading.
        assert!(e.tick(T0 + 36 * MIN).is_empty());
        assert_eq!(e.tick(T0 + 37 * MIN).len(), 1);
    }

    #[test]
    fn a_gateway_restart_notices_silence_from_stored_data_and_marks_it_late() {
        let mut e = cold_store();
        e.note_seen(SiteId(1), &device(), T0);
        let events = e.tick(T0 + 60 * MIN);
        let o = opened(&events);
        assert_eq!(o[0].opened_at_ms, T0 + 15 * MIN);
        assert!(o[0].late, "found 45 minutes after the fact");
        // A backlog whose first reading predates the alert closes it at the alert's start.
        let c = feed(&mut e, &[(5, 4.0)], 55);
        assert_eq!(closed(&c)[0].closed_at_ms, T0 + 15 * MIN);
    }

    #[test]
    fn bounds_devices_and_sites() {
        let mut e = Evaluator::new(
            vec![Rule::Threshold(ThresholdRule {
                id: RuleId(1),
                site: SiteId(1),
                device: Some(device()),
                metric: "temp_c".into(),
                min: Some(0.0),
                max: Some(8.0),
                min_duration_ms: 0,
            })],
            &RuleConfig::default(),
        );
        let mut other_site = reading(0, -3.0);
        other_site.site = SiteId(2);
        assert!(e.observe(&other_site, T0).is_empty());
        let mut other_device = reading(0, -3.0);
        other_device.device = ClientId::new("cold-02").unwrap();
        assert!(e.observe(&other_device, T0).is_empty());
        let mut humidity = reading(0, 99.0);
        humidity.metric = "rh_pct".into();
        assert!(e.observe(&humidity, T0).is_empty());

        // Below min with no duration: opens at once; 0 and 8 are in range.
        let events = feed(&mut e, &[(0, -3.0), (1, -5.0), (2, 0.0)], 0);
        assert_eq!(opened(&events)[0].opened_at_ms, T0);
        assert_eq!(closed(&events)[0].peak, Some(-5.0));
        assert!(feed(&mut e, &[(3, 8.0)], 0).is_empty());
    }

    #[test]
    fn state_survives_serialisation_mid_breach() {
        let mut e = cold_store();
        feed(&mut e, &[(0, 9.0), (20, 9.5)], 0);
        let json = serde_json::to_string(e.states()).unwrap();
        let states: RuleStates = serde_json::from_str(&json).unwrap();
        assert_eq!(&states, e.states());

        let rules = vec![Rule::Threshold(ThresholdRule {
            id: RuleId(10),
            site: SiteId(1),
            device: None,
            metric: "temp_c".into(),
            min: None,
            max: Some(8.0),
            min_duration_ms: 30 * MIN,
        })];
        let mut restored = Evaluator::with_states(rules, &RuleConfig::default(), states);
        assert!(
            restored.states().no_data(RuleId(20), &device()).is_none(),
            "removed rule's state dropped"
        );
        let events = feed(&mut restored, &[(30, 9.0)], 0);
        assert_eq!(opened(&events)[0].opened_at_ms, T0);
    }
}
