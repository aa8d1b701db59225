//! [`CoreStore`]: the gateway's [`Store`] over the platform database.
//!
//! A thin adapter: each accepted message becomes the core's [`Incoming`] as it is (a reading stays one
//! telemetry message), and one [`Store::write`] is one `store::iot::ingest` transaction — rows, rules and
//! alerts together; see there.

use std::collections::HashMap;

use gw::{
    Accepted, AcceptedKind, ClientId, CounterSnapshot, DeviceInfo, DeviceKind, DeviceStatus,
    RefusalEntry, RuleConfig, Store, StoreError,
};
use suyuan_core::model::{Device, DeviceKind as CoreKind, DeviceStatus as CoreStatus};
use suyuan_core::store::iot::{
    self, Incoming, NewDeviceImage, RefusalDelta, RefusalExample, TelemetryMessage,
};
use suyuan_core::{CoreError, Database};
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
        let lateness = self.rules.lateness_ms;
        self.db
            .write(|c| iot::ingest(c, incoming(batch), lateness))
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
        let lateness = self.rules.lateness_ms;
        self.db
            .write(|c| iot::tick(c, now_ms, lateness))
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

/// The gateway's accepted messages as the store takes them: one telemetry message per reading, as it came.
fn incoming(batch: &[Accepted]) -> Vec<Incoming> {
    let mut out = Vec::with_capacity(batch.len());
    for msg in batch {
        let site_id = suyuan_core::SiteId(msg.site.0);
        match &msg.what {
            AcceptedKind::Telemetry(readings) => {
                out.extend(readings.iter().map(|r| {
                    Incoming::Telemetry(TelemetryMessage {
                        device_id: msg.device_id,
                        site_id,
                        ts: r.ts_ms,
                        seq: r.seq,
                        received_at: msg.received_at_ms,
                        metrics: r.values.clone(),
                    })
                }));
            }
            AcceptedKind::Image { ts_ms, image } => out.push(Incoming::Image(NewDeviceImage {
                device_id: msg.device_id,
                site_id: site_id.0,
                taken_at: *ts_ms,
                sha256: image.sha256.clone(),
                bytes: i64::try_from(image.bytes).unwrap_or(i64::MAX),
                width: i64::from(image.width),
                height: i64::from(image.height),
                path: image.path.clone(),
                thumb_path: image.thumb_path.clone(),
                received_at: msg.received_at_ms,
            })),
            AcceptedKind::Status(status) => out.push(Incoming::Status {
                device_id: msg.device_id,
                status: match status {
                    DeviceStatus::Online => CoreStatus::Online,
                    DeviceStatus::Offline => CoreStatus::Offline,
                },
                at: msg.received_at_ms,
            }),
        }
    }
    out
}
