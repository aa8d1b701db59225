//! What the in-process gateway tests share: an in-memory store with an outage switch, the gateway's
//! settings, payloads and waiting on the gateway's counters. Brokers and devices come from
//! [`crate::support::mqtt`], the one MQTT harness of the test binary.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub use crate::support::mqtt::reading_payload;
use suyuan_iot_gateway::{
    Accepted, AcceptedKind, ClientId, CounterSnapshot, DeviceInfo, DeviceKind, DeviceStatus, Error,
    Gateway, GatewayConfig, GatewayHandle, MqttSettings, RefusalEntry, SiteId, Store, StoreError,
};

/// Gateway clock now, ms.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// A topic prefix no other test run uses (the system broker is shared and keeps sessions).
pub fn unique_prefix(name: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("test-{name}-{}-{nanos}/v1", std::process::id())
}

pub fn unique_id(name: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("{name}-{}-{nanos}", std::process::id())
}

/// A stored reading's identity, as the database's unique index on telemetry has it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ReadingKey {
    pub device_id: i64,
    pub ts_ms: i64,
    pub seq: Option<i64>,
}

/// What the stand-in database holds.
#[derive(Debug, Default)]
pub struct Db {
    pub devices: Vec<DeviceInfo>,
    /// Readings (one per telemetry message) under their idempotency key, as the unique index keeps
    /// them, with how often each was written (a redelivery writes it again and is absorbed).
    pub readings: BTreeMap<ReadingKey, (usize, u32)>,
    /// Keys in the order they were first inserted.
    pub order: Vec<ReadingKey>,
    /// Images by content hash, with how often each was written.
    pub images: BTreeMap<String, u32>,
    pub statuses: Vec<(i64, DeviceStatus)>,
    /// Refusal deltas added up, as the database's totals.
    pub refusals: Option<CounterSnapshot>,
    pub refusal_entries: Vec<RefusalEntry>,
    pub ticks: u64,
}

/// An in-memory [`Store`] with a switch that makes every call fail as `Unavailable`.
#[derive(Debug, Default)]
pub struct FakeStore {
    db: Mutex<Db>,
    down: AtomicBool,
    /// A device id whose messages the database refuses (a constraint), 0 for none.
    reject_device: AtomicI64,
    /// How long each write takes, ms (a database under load).
    write_delay_ms: AtomicU64,
    pub failed_writes: AtomicU64,
}

impl FakeStore {
    pub fn with_devices(devices: Vec<DeviceInfo>) -> Arc<FakeStore> {
        let store = FakeStore::default();
        store.db().devices = devices;
        Arc::new(store)
    }

    pub fn db(&self) -> MutexGuard<'_, Db> {
        self.db.lock().unwrap()
    }

    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }

    pub fn set_write_delay(&self, delay: Duration) {
        self.write_delay_ms
            .store(delay.as_millis() as u64, Ordering::SeqCst);
    }

    pub fn reject_device(&self, id: i64) {
        self.reject_device.store(id, Ordering::SeqCst);
    }

    fn check_up(&self) -> Result<(), StoreError> {
        if self.down.load(Ordering::SeqCst) {
            Err(StoreError::Unavailable("switched off by the test".into()))
        } else {
            Ok(())
        }
    }

    pub fn reading_count(&self) -> usize {
        self.db().readings.len()
    }
}

impl Store for FakeStore {
    fn device(&self, client_id: &ClientId) -> Result<Option<DeviceInfo>, StoreError> {
        self.check_up()?;
        Ok(self
            .db()
            .devices
            .iter()
            .find(|d| &d.client_id == client_id)
            .cloned())
    }

    fn devices(&self) -> Result<Vec<DeviceInfo>, StoreError> {
        self.check_up()?;
        Ok(self.db().devices.clone())
    }

    fn write(&self, batch: &[Accepted]) -> Result<(), StoreError> {
        if let Err(e) = self.check_up() {
            self.failed_writes.fetch_add(1, Ordering::Relaxed);
            return Err(e);
        }
        let delay = self.write_delay_ms.load(Ordering::SeqCst);
        if delay > 0 {
            std::thread::sleep(Duration::from_millis(delay));
        }
        let rejected = self.reject_device.load(Ordering::SeqCst);
        if batch.iter().any(|m| m.device_id == rejected) {
            return Err(StoreError::Rejected(format!(
                "device {rejected} violates a constraint"
            )));
        }
        let mut db = self.db();
        for msg in batch {
            match &msg.what {
                AcceptedKind::Telemetry(readings) => {
                    for r in readings {
                        let key = ReadingKey {
                            device_id: msg.device_id,
                            ts_ms: r.ts_ms,
                            seq: r.seq,
                        };
                        let entry = db.readings.entry(key).or_insert((r.values.len(), 0));
                        entry.1 += 1;
                        if entry.1 == 1 {
                            db.order.push(key);
                        }
                    }
                }
                AcceptedKind::Image { image, .. } => {
                    *db.images.entry(image.sha256.clone()).or_insert(0) += 1;
                }
                AcceptedKind::Status(s) => db.statuses.push((msg.device_id, *s)),
            }
        }
        Ok(())
    }

    fn add_refusals(
        &self,
        counts: &CounterSnapshot,
        recent: &[RefusalEntry],
    ) -> Result<(), StoreError> {
        self.check_up()?;
        let mut db = self.db();
        match &mut db.refusals {
            Some(total) => total.add(counts),
            None => db.refusals = Some(counts.clone()),
        }
        db.refusal_entries.extend_from_slice(recent);
        Ok(())
    }

    fn tick(&self, _now_ms: i64) -> Result<(), StoreError> {
        self.check_up()?;
        self.db().ticks += 1;
        Ok(())
    }
}

pub fn device(id: i64, client_id: &str, site: i64, kind: DeviceKind, enabled: bool) -> DeviceInfo {
    DeviceInfo {
        id,
        client_id: ClientId::new(client_id).unwrap(),
        site: SiteId(site),
        kind,
        enabled,
    }
}

/// Settings with short intervals, so that tests see flushes and retries quickly.
pub fn gateway_config(data: &Path, prefix: &str, share_group: Option<&str>) -> GatewayConfig {
    let mut config = GatewayConfig::under_data(data);
    config.topics.prefix = prefix.to_owned();
    config.topics.share_group = share_group.map(str::to_owned);
    config.runtime.batch_wait_ms = 5;
    config.runtime.refusal_flush_ms = 200;
    config.runtime.tick_ms = 1_000;
    config.runtime.retry_min_ms = 20;
    config.runtime.retry_max_ms = 500;
    config
}

pub fn mqtt_settings(addr: SocketAddr, client_id: &str) -> MqttSettings {
    let mut s = MqttSettings::new(addr.ip().to_string(), addr.port(), client_id);
    s.keep_alive = Duration::from_secs(5);
    s
}

/// Starts a gateway, retrying while the spool folder is still locked by an aborted one whose
/// last blocking call has not returned yet.
pub async fn start_gateway(
    config: GatewayConfig,
    mqtt: MqttSettings,
    store: Arc<FakeStore>,
) -> GatewayHandle {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match Gateway::start(config.clone(), mqtt.clone(), store.clone()).await {
            Ok(handle) => return handle,
            Err(Error::SpoolLocked(_)) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("gateway did not start: {e}"),
        }
    }
}

/// Waits until the gateway holds its subscriptions.
pub async fn wait_subscribed(gateway: &GatewayHandle) {
    wait_until("the gateway subscribes", Duration::from_secs(10), || {
        gateway.stats().subscribed
    })
    .await;
}

/// Polls `done` every 20 ms until it holds; panics with `what` after `timeout`.
pub async fn wait_until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A telemetry payload with a temperature and a humidity.
pub fn reading(seq: u64, ts_ms: i64) -> Vec<u8> {
    reading_payload(seq, ts_ms).into_bytes()
}

/// The key [`reading`] is stored under, for device `device_id`.
pub fn reading_key(device_id: i64, seq: u64, ts_ms: i64) -> ReadingKey {
    ReadingKey {
        device_id,
        ts_ms,
        seq: Some(seq as i64),
    }
}

/// A small real JPEG.
pub fn jpeg(width: u32, height: u32, seed: u8) -> Vec<u8> {
    let pixels = image::RgbImage::from_fn(width, height, |x, y| {
        image::Rgb([x as u8 ^ seed, y as u8, seed.wrapping_mul(3)])
    });
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 85)
        .encode_image(&pixels)
        .unwrap();
    out
}
