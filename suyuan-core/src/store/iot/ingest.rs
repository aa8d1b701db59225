//! What the gateway hands over, written in one transaction: the straight line from an MQTT message to its
//! row and its alerts.
//!
//! [`ingest`] stores a batch of accepted messages — each telemetry message one `telemetry` row, images
//! and statuses recorded, the devices' last-seen times moved forward — then, when the batch's sites have
//! rules, loads and locks the rule states of the devices whose messages were new, lets
//! [`crate::rules::sensor`] decide, opens or closes the alerts it reports (worded by
//! [`crate::texts::sensor`]) and saves the states. Only what this transaction inserted is evaluated, so a
//! redelivery changes nothing; a crash anywhere rolls all of it back and the broker (or the gateway's
//! spool) delivers the messages again. [`tick`] is the no-data rules' clock.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::error::CoreResult;
use crate::model::{AlertKind, DeviceStatus, IotRule};
use crate::rules::sensor::{self, Evaluator, RuleStates, Sample, SensorEvent};
use crate::store::DbConnection;
use crate::texts;
use crate::SiteId;

use super::{
    all_devices, close_iot_alert, enabled_no_data_rules, enabled_rules_for_sites, insert_image,
    insert_telemetry, lock_rule_states, open_iot_alert, save_rule_states, set_device_status,
    touch_devices, NewDeviceImage, NewIotAlert, NewTelemetry, NO_SEQ,
};

/// One telemetry message: a device's values of one or more metrics at one instant (an array payload
/// carrying a backlog is several).
#[derive(Debug, Clone, PartialEq)]
pub struct TelemetryMessage {
    /// The device's row id.
    pub device_id: i64,
    pub site_id: SiteId,
    /// Device time, ms since the epoch.
    pub ts: i64,
    /// The device's sequence number, when it sends one.
    pub seq: Option<i64>,
    /// Gateway clock when the message arrived, ms: decides whether it is late.
    pub received_at: i64,
    /// Metric name (with its unit suffix) → value, in payload order.
    pub metrics: Vec<(String, f64)>,
}

/// One message the gateway accepted.
#[derive(Debug, Clone, PartialEq)]
pub enum Incoming {
    Telemetry(TelemetryMessage),
    /// A camera image, its files already in the media folder.
    Image(NewDeviceImage),
    /// A device's retained `online` / `offline`, received at `at`.
    Status {
        device_id: i64,
        status: DeviceStatus,
        at: i64,
    },
}

/// Writes a batch of accepted messages and evaluates the sensor rules on what was new; see the module
/// doc. `lateness_ms`: a message arriving later than this after its own time is backfill.
pub fn ingest(c: &mut DbConnection, batch: Vec<Incoming>, lateness_ms: i64) -> CoreResult<()> {
    let mut rows: Vec<NewTelemetry> = Vec::new();
    let mut sites: BTreeSet<SiteId> = BTreeSet::new();
    let mut seen: BTreeMap<i64, i64> = BTreeMap::new();
    let mut saw = |device: i64, ts: i64| {
        let s = seen.entry(device).or_insert(ts);
        *s = (*s).max(ts);
    };
    for message in batch {
        match message {
            Incoming::Telemetry(m) => {
                sites.insert(m.site_id);
                saw(m.device_id, m.ts);
                rows.push(NewTelemetry {
                    device_id: m.device_id,
                    ts: m.ts,
                    seq: m.seq.unwrap_or(NO_SEQ),
                    site_id: m.site_id.0,
                    received_at: m.received_at,
                    late: sensor::is_late(m.ts, m.received_at, lateness_ms),
                    metrics: m.metrics,
                });
            }
            Incoming::Image(image) => {
                saw(image.device_id, image.taken_at);
                insert_image(c, &image)?;
            }
            Incoming::Status {
                device_id,
                status,
                at,
            } => set_device_status(c, device_id, status, at)?,
        }
    }
    // Rules first: without any on these sites, nothing needs to know which messages are new.
    let sites: Vec<SiteId> = sites.into_iter().collect();
    let rules = if sites.is_empty() {
        Vec::new()
    } else {
        enabled_rules_for_sites(c, &sites)?
    };
    let fresh = insert_telemetry(c, &rows, !rules.is_empty())?;
    touch_devices(c, &seen.into_iter().collect::<Vec<_>>())?;
    if fresh.is_empty() || rules.is_empty() {
        return Ok(());
    }
    let devices: Vec<i64> = fresh
        .iter()
        .map(|m| m.device_id)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let samples: Vec<Sample<'_>> = fresh
        .iter()
        .map(|m| Sample {
            device: m.device_id,
            site: SiteId(m.site_id),
            ts_ms: m.ts,
            received_at_ms: m.received_at,
            metrics: &m.metrics,
        })
        .collect();
    evaluate(c, &rules, &devices, lateness_ms, &HashMap::new(), |ev| {
        ev.observe_all(&samples)
    })
}

/// The no-data rules' clock: every enabled device on a site with a no-data rule gets its last-seen time,
/// then the evaluator's clock moves to `now_ms`. Called about once a minute by every gateway replica;
/// alerts are keyed on (rule, device, start), so replicas agree.
pub fn tick(c: &mut DbConnection, now_ms: i64, lateness_ms: i64) -> CoreResult<()> {
    let no_data = enabled_no_data_rules(c)?;
    if no_data.is_empty() {
        return Ok(());
    }
    let sites: Vec<SiteId> = no_data
        .iter()
        .map(|r| r.site_id)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    // Every rule of these sites, so that the threshold states saved with the no-data ones are kept.
    let rules = enabled_rules_for_sites(c, &sites)?;
    let watched: Vec<_> = all_devices(c)?
        .into_iter()
        .filter(|d| d.enabled && sites.contains(&d.site_id))
        .collect();
    let ids: Vec<i64> = watched.iter().map(|d| d.id).collect();
    let names: HashMap<i64, String> = watched
        .iter()
        .map(|d| (d.id, d.client_id.clone()))
        .collect();
    evaluate(c, &rules, &ids, lateness_ms, &names, |ev| {
        for d in &watched {
            if let Some(seen) = d.last_seen_at {
                ev.note_seen(d.site_id, d.id, seen.timestamp_millis());
            }
        }
        ev.tick(now_ms)
    })
}

/// Locks the devices' rule states, runs `step` on an evaluator holding them, records the alerts it
/// reports and saves the states. `names`: client ids to word no-data alerts with.
fn evaluate(
    c: &mut DbConnection,
    rules: &[IotRule],
    devices: &[i64],
    lateness_ms: i64,
    names: &HashMap<i64, String>,
    step: impl FnOnce(&mut Evaluator) -> Vec<SensorEvent>,
) -> CoreResult<()> {
    let mut states = RuleStates::default();
    for (device, json) in lock_rule_states(c, devices)? {
        // A state that cannot be read (written by another version) starts afresh rather than blocking
        // ingestion.
        states.load_device(device, &json);
    }
    let mut ev = Evaluator::new(rules, lateness_ms, states);
    let events = step(&mut ev);
    let by_id: HashMap<i64, &IotRule> = rules.iter().map(|r| (r.id, r)).collect();
    for event in &events {
        record(c, event, &by_id, names)?;
    }
    let json = ev
        .states()
        .to_device_json()
        .map_err(|e| crate::CoreError::Internal(format!("rule state: {e}")))?;
    save_rule_states(c, &json)
}

/// Opens or closes the alert an event reports.
fn record(
    c: &mut DbConnection,
    event: &SensorEvent,
    rules: &HashMap<i64, &IotRule>,
    names: &HashMap<i64, String>,
) -> CoreResult<()> {
    match event {
        SensorEvent::Opened(o) => {
            let Some(rule) = rules.get(&o.rule) else {
                return Ok(());
            };
            let message = match o.kind {
                AlertKind::SensorNoData => {
                    let name = names
                        .get(&o.device)
                        .cloned()
                        .unwrap_or_else(|| format!("#{}", o.device));
                    texts::sensor::no_data_opened(&rule.name, &name, rule.duration_ms, o.late)
                }
                _ => texts::sensor::threshold_opened(
                    &rule.name,
                    o.metric.as_deref().unwrap_or_default(),
                    o.value,
                    rule.min_value,
                    rule.max_value,
                    rule.duration_ms,
                    o.late,
                ),
            };
            open_iot_alert(
                c,
                &NewIotAlert {
                    kind: o.kind,
                    org_id: rule.org_id,
                    site_id: rule.site_id,
                    device_id: o.device,
                    rule_id: rule.id,
                    metric: o.metric.clone(),
                    value: o.value,
                    late: o.late,
                    message,
                    opened_at: o.opened_at_ms,
                },
            )?;
        }
        SensorEvent::Closed(cl) => {
            close_iot_alert(c, cl.rule, cl.device, cl.opened_at_ms, cl.closed_at_ms)?;
        }
    }
    Ok(())
}
