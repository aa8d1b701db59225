//! [`CoreStore`]: the gateway's [`Store`] over the platform database.
//!
//! One [`Store::write`] is one transaction: readings stored one row per message of the batch, skipping
//! those already stored (only the readings that are new go on), images and statuses recorded, the devices' `last_seen_at` moved forward,
//! and, when a site of the batch has rules, the devices' rule states locked, the new readings evaluated
//! in event-time order, alerts opened or closed and the states saved. A crash anywhere rolls all of it
//! back and the broker (or the spool) delivers the messages again.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use gw::{
    Accepted, AcceptedKind, AlertEvent, AlertKind, ClientId, CounterSnapshot, DeviceInfo,
    DeviceKind, DeviceStatus, Evaluator, NoDataRule, RefusalEntry, Rule, RuleConfig, RuleId,
    RuleStates, Store, StoreError, ThresholdRule, NO_SEQ,
};
use suyuan_core::model::{
    Device, DeviceKind as CoreKind, DeviceStatus as CoreStatus, IotRule, RuleKind,
};
use suyuan_core::store::iot::{
    self, NewDeviceImage, NewIotAlert, NewTelemetry, RefusalDelta, RefusalExample,
};
use suyuan_core::store::DbConnection;
use suyuan_core::{CoreError, CoreResult, Database};
use suyuan_iot_gateway as gw;

/// The platform database as the gateway's store.
#[derive(Debug, Clone)]
pub struct CoreStore {
    db: Database,
    rules: RuleConfig,
}

impl CoreStore {
    pub fn new(db: Database, rules: RuleConfig) -> Self {
        CoreStore { db, rules }
    }
}

/// Constraint violations are the data's fault (refuse it); anything else (pool timeout, lost connection,
/// lock, I/O) means nothing was written and a retry may succeed (spool it).
fn store_error(e: CoreError) -> StoreError {
    if e.is_constraint_violation() {
        StoreError::Rejected(e.to_string())
    } else {
        StoreError::Unavailable(e.to_string())
    }
}

fn device_info(d: Device) -> Option<DeviceInfo> {
    Some(DeviceInfo {
        id: d.id,
        client_id: ClientId::new(&d.client_id).ok()?,
        site: gw::SiteId(d.site_id.0),
        kind: match d.kind {
            CoreKind::Sensor => DeviceKind::Sensor,
            CoreKind::Camera => DeviceKind::Camera,
        },
        enabled: d.enabled,
    })
}

impl Store for CoreStore {
    fn device(&self, client_id: &ClientId) -> Result<Option<DeviceInfo>, StoreError> {
        let id = client_id.to_string();
        let found = self
            .db
            .read(|c| iot::device_by_client_id(c, &id))
            .map_err(store_error)?;
        Ok(found.and_then(device_info))
    }

    fn devices(&self) -> Result<Vec<DeviceInfo>, StoreError> {
        let all = self.db.read(iot::all_devices).map_err(store_error)?;
        Ok(all.into_iter().filter_map(device_info).collect())
    }

    fn write(&self, batch: &[Accepted]) -> Result<(), StoreError> {
        if batch.is_empty() {
            return Ok(());
        }
        self.db
            .write(|c| write_batch(c, batch, &self.rules))
            .map_err(store_error)
    }

    fn add_refusals(
        &self,
        counts: &CounterSnapshot,
        recent: &[RefusalEntry],
    ) -> Result<(), StoreError> {
        let deltas: Vec<RefusalDelta> = counts
            .counts
            .iter()
            .filter(|(_, n)| *n > 0)
            .map(|(reason, n)| RefusalDelta {
                reason: reason.code().to_owned(),
                refused: i64::try_from(*n).unwrap_or(i64::MAX),
                last: recent
                    .iter()
                    .rev()
                    .find(|e| e.refusal.reason == *reason)
                    .map(|e| RefusalExample {
                        at: e.received_at_ms,
                        topic: e.topic.clone(),
                        detail: e.refusal.detail.clone(),
                    }),
            })
            .collect();
        if deltas.is_empty() {
            return Ok(());
        }
        self.db
            .write(|c| iot::add_refusals(c, &deltas))
            .map_err(store_error)
    }

    fn tick(&self, now_ms: i64) -> Result<(), StoreError> {
        self.db
            .write(|c| tick(c, now_ms, &self.rules))
            .map_err(store_error)
    }
}

/// The device registry the embedded broker's front checks logins and open connections against.
impl gw::DeviceRegistry for CoreStore {
    fn authenticate(
        &self,
        client_id: &ClientId,
        password: &str,
    ) -> Result<Option<gw::DeviceGrant>, StoreError> {
        let login = self
            .db
            .read(|c| iot::device_login(c, client_id.as_str(), password))
            .map_err(store_error)?;
        Ok(login.map(|l| gw::DeviceGrant {
            site: gw::SiteId(l.site_id.0),
            stamp: l.stamp,
        }))
    }

    fn credentials(&self) -> Result<HashMap<ClientId, String>, StoreError> {
        let all = self.db.read(iot::device_credentials).map_err(store_error)?;
        Ok(all
            .into_iter()
            .filter(|d| d.enabled)
            .filter_map(|d| Some((ClientId::new(&d.client_id).ok()?, d.password_hash)))
            .collect())
    }

    fn refused(&self, entry: &RefusalEntry) -> Result<(), StoreError> {
        let delta = RefusalDelta {
            reason: entry.refusal.reason.code().to_owned(),
            refused: 1,
            last: Some(RefusalExample {
                at: entry.received_at_ms,
                topic: entry.topic.clone(),
                detail: entry.refusal.detail.clone(),
            }),
        };
        self.db
            .write(|c| iot::add_refusals(c, &[delta]))
            .map_err(store_error)
    }
}

fn write_batch(c: &mut DbConnection, batch: &[Accepted], config: &RuleConfig) -> CoreResult<()> {
    let mut rows: Vec<NewTelemetry> = Vec::new();
    // device id → (client id, site), for the rules.
    let mut who: HashMap<i64, (ClientId, gw::SiteId)> = HashMap::new();
    let mut seen: BTreeMap<i64, i64> = BTreeMap::new();
    for msg in batch {
        match &msg.what {
            AcceptedKind::Readings(readings) => {
                // One row per object of the payload (a backlog array holds several): its readings share
                // the device's time and sequence number.
                if let Some(r) = readings.first() {
                    who.entry(msg.device_id)
                        .or_insert_with(|| (r.device.clone(), msg.site));
                }
                let mut latest = i64::MIN;
                for r in readings {
                    latest = latest.max(r.ts_ms);
                    let seq = r.seq.unwrap_or(NO_SEQ);
                    match rows.last_mut() {
                        Some(last)
                            if last.device_id == msg.device_id
                                && last.ts == r.ts_ms
                                && last.seq == seq =>
                        {
                            last.metrics.push((r.metric.clone(), r.value));
                        }
                        _ => rows.push(NewTelemetry {
                            device_id: msg.device_id,
                            ts: r.ts_ms,
                            seq,
                            site_id: msg.site.0,
                            received_at: msg.received_at_ms,
                            late: msg.received_at_ms.saturating_sub(r.ts_ms) > config.lateness_ms,
                            metrics: vec![(r.metric.clone(), r.value)],
                        }),
                    }
                }
                if latest > i64::MIN {
                    let s = seen.entry(msg.device_id).or_insert(latest);
                    *s = (*s).max(latest);
                }
            }
            AcceptedKind::Image { ts_ms, image } => {
                iot::insert_image(
                    c,
                    &NewDeviceImage {
                        device_id: msg.device_id,
                        site_id: msg.site.0,
                        taken_at: *ts_ms,
                        sha256: image.sha256.clone(),
                        bytes: i64::try_from(image.bytes).unwrap_or(i64::MAX),
                        width: i64::from(image.width),
                        height: i64::from(image.height),
                        path: image.path.clone(),
                        thumb_path: image.thumb_path.clone(),
                        received_at: msg.received_at_ms,
                    },
                )?;
                let s = seen.entry(msg.device_id).or_insert(*ts_ms);
                *s = (*s).max(*ts_ms);
            }
            AcceptedKind::Status(status) => {
                let status = match status {
                    DeviceStatus::Online => CoreStatus::Online,
                    DeviceStatus::Offline => CoreStatus::Offline,
                };
                iot::set_device_status(c, msg.device_id, status, msg.received_at_ms)?;
            }
        }
    }
    // Rules first: without any on these sites, nothing needs to know which readings are new.
    let sites: Vec<suyuan_core::SiteId> = who
        .values()
        .map(|(_, s)| suyuan_core::SiteId(s.0))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let rules = if sites.is_empty() {
        Vec::new()
    } else {
        iot::enabled_rules_for_sites(c, &sites)?
    };
    let inserted = iot::insert_telemetry(c, &rows, !rules.is_empty())?;
    iot::touch_devices(c, &seen.into_iter().collect::<Vec<_>>())?;
    if inserted.is_empty() || rules.is_empty() {
        return Ok(());
    }
    // Only the rows this transaction inserted are evaluated: a redelivery changes nothing.
    let fresh: BTreeSet<(i64, &str, i64, i64)> = inserted
        .iter()
        .map(|(d, m, t, s)| (*d, m.as_str(), *t, *s))
        .collect();
    let mut readings: Vec<(i64, gw::Reading)> = Vec::new();
    for msg in batch {
        if let AcceptedKind::Readings(rs) = &msg.what {
            for r in rs {
                let key = (
                    msg.device_id,
                    r.metric.as_str(),
                    r.ts_ms,
                    r.seq.unwrap_or(NO_SEQ),
                );
                if fresh.contains(&key) {
                    readings.push((msg.received_at_ms, r.clone()));
                }
            }
        }
    }
    let devices: Vec<i64> = inserted
        .iter()
        .map(|k| k.0)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    evaluate(c, &rules, &who, &devices, config, |ev| {
        let mut events = Vec::new();
        readings.sort_by_key(|(_, r)| r.ts_ms);
        for (received, r) in &readings {
            events.extend(ev.observe(r, *received));
        }
        events
    })
}

/// The no-data check: every device a no-data rule watches gets its last-seen time, then the evaluator's
/// clock moves to `now_ms`.
fn tick(c: &mut DbConnection, now_ms: i64, config: &RuleConfig) -> CoreResult<()> {
    let rules = iot::enabled_no_data_rules(c)?;
    if rules.is_empty() {
        return Ok(());
    }
    let sites: BTreeSet<i64> = rules.iter().map(|r| r.site_id.0).collect();
    let watched: Vec<Device> = iot::all_devices(c)?
        .into_iter()
        .filter(|d| sites.contains(&d.site_id.0) && d.enabled)
        .collect();
    let mut who = HashMap::new();
    for d in &watched {
        if let Ok(id) = ClientId::new(&d.client_id) {
            who.insert(d.id, (id, gw::SiteId(d.site_id.0)));
        }
    }
    let ids: Vec<i64> = who.keys().copied().collect();
    evaluate(c, &rules, &who, &ids, config, |ev| {
        for d in &watched {
            if let (Some((id, site)), Some(seen)) = (who.get(&d.id), d.last_seen_at) {
                ev.note_seen(*site, id, seen.timestamp_millis());
            }
        }
        ev.tick(now_ms)
    })
}

/// Locks the devices' rule states, runs `step` on an evaluator holding them, records the alerts it
/// raises and saves the states.
fn evaluate(
    c: &mut DbConnection,
    rules: &[IotRule],
    who: &HashMap<i64, (ClientId, gw::SiteId)>,
    devices: &[i64],
    config: &RuleConfig,
    step: impl FnOnce(&mut Evaluator) -> Vec<AlertEvent>,
) -> CoreResult<()> {
    let by_client: HashMap<&ClientId, i64> = who.iter().map(|(id, (cid, _))| (cid, *id)).collect();
    let gw_rules: Vec<Rule> = rules
        .iter()
        .filter_map(|r| {
            let device = match r.device_id {
                Some(d) => Some(who.get(&d)?.0.clone()),
                None => None,
            };
            Some(match r.kind {
                RuleKind::Threshold => Rule::Threshold(ThresholdRule {
                    id: RuleId(r.id),
                    site: gw::SiteId(r.site_id.0),
                    device,
                    metric: r.metric.clone().unwrap_or_default(),
                    min: r.min_value,
                    max: r.max_value,
                    min_duration_ms: r.duration_ms,
                }),
                RuleKind::NoData => Rule::NoData(NoDataRule {
                    id: RuleId(r.id),
                    site: gw::SiteId(r.site_id.0),
                    device,
                    silence_ms: r.duration_ms,
                }),
            })
        })
        .collect();
    let stored = iot::lock_rule_states(c, devices)?;
    let mut states = RuleStates::default();
    for (_, json) in &stored {
        // A state that cannot be read (written by another version) starts afresh rather than blocking ingestion.
        if let Ok(s) = serde_json::from_str::<RuleStates>(json) {
            states.merge(s);
        }
    }
    let mut ev = Evaluator::with_states(gw_rules, config, states);
    let events = step(&mut ev);
    let by_rule: HashMap<i64, &IotRule> = rules.iter().map(|r| (r.id, r)).collect();
    for event in events {
        record_alert(c, &event, &by_rule, &by_client)?;
    }
    let split = ev.states().clone().split_by_device();
    let mut out = Vec::new();
    for (client, s) in split {
        if let Some(id) = by_client.get(&client) {
            let json = serde_json::to_string(&s)
                .map_err(|e| CoreError::Internal(format!("rule state: {e}")))?;
            out.push((*id, json));
        }
    }
    iot::save_rule_states(c, &out)
}

fn record_alert(
    c: &mut DbConnection,
    event: &AlertEvent,
    rules: &HashMap<i64, &IotRule>,
    devices: &HashMap<&ClientId, i64>,
) -> CoreResult<()> {
    match event {
        AlertEvent::Opened(o) => {
            let (Some(rule), Some(&device_id)) = (rules.get(&o.rule.0), devices.get(&o.device))
            else {
                return Ok(());
            };
            let minutes = rule.duration_ms / 60_000;
            let late = if o.late { "（补传数据）" } else { "" };
            let (kind, severity, message) = match o.kind {
                AlertKind::Threshold => (
                    "sensor_threshold",
                    "critical",
                    format!(
                        "{}：{} 读数 {} 超出 {}–{}，持续 {minutes} 分钟以上{late}",
                        rule.name,
                        o.metric.clone().unwrap_or_default(),
                        o.value.map(|v| format!("{v}")).unwrap_or_default(),
                        rule.min_value
                            .map(|v| v.to_string())
                            .unwrap_or_else(|| "−∞".into()),
                        rule.max_value
                            .map(|v| v.to_string())
                            .unwrap_or_else(|| "∞".into()),
                    ),
                ),
                AlertKind::NoData => (
                    "sensor_no_data",
                    "warning",
                    format!(
                        "{}：设备 {} 已 {minutes} 分钟无数据{late}",
                        rule.name, o.device
                    ),
                ),
            };
            iot::open_iot_alert(
                c,
                &NewIotAlert {
                    kind,
                    severity,
                    org_id: rule.org_id,
                    site_id: rule.site_id,
                    device_id,
                    rule_id: rule.id,
                    metric: o.metric.clone(),
                    value: o.value,
                    late: o.late,
                    message,
                    opened_at: o.opened_at_ms,
                },
            )?;
        }
        AlertEvent::Closed(cl) => {
            if let Some(&device_id) = devices.get(&cl.device) {
                iot::close_iot_alert(c, cl.rule.0, device_id, cl.opened_at_ms, cl.closed_at_ms)?;
            }
        }
    }
    Ok(())
}
