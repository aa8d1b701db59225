//! What the gateway tests share: an in-memory store with an outage switch, brokers (embedded,
//! the system's Mosquitto, a Mosquitto of the test's own), a publishing device, and waiting.

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use suyuan_iot_gateway::{
    Accepted, AcceptedKind, ClientId, CounterSnapshot, DeviceInfo, DeviceKind, DeviceStatus, Error,
    Gateway, GatewayConfig, GatewayHandle, MqttSettings, ReadingKey, RefusalEntry, SiteId, Store,
    StoreError,
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

/// What the stand-in database holds.
#[derive(Debug, Default)]
pub struct Db {
    pub devices: Vec<DeviceInfo>,
    /// Readings under their idempotency key (as the unique index keeps them), with how often
    /// each was written (a redelivery writes it again and is absorbed).
    pub readings: BTreeMap<ReadingKey, (f64, u32)>,
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
                AcceptedKind::Readings(readings) => {
                    for r in readings {
                        let key = r.key();
                        let entry = db.readings.entry(key.clone()).or_insert((r.value, 0));
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

/// A device publishing at QoS 1 with rumqttc, counting the broker's acknowledgements.
pub struct Publisher {
    client: AsyncClient,
    acked: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl Publisher {
    /// Connects in the background; `persistent` keeps its session (and unacknowledged
    /// publishes) across a broker restart.
    pub fn connect(addr: SocketAddr, client_id: &str, persistent: bool) -> Publisher {
        let mut options = MqttOptions::new(client_id, addr.ip().to_string(), addr.port());
        options
            .set_keep_alive(Duration::from_secs(5))
            .set_clean_session(!persistent)
            .set_max_packet_size(64 * 1024 * 1024, 64 * 1024 * 1024);
        let (client, mut eventloop) = AsyncClient::new(options, 10);
        let acked = Arc::new(AtomicU64::new(0));
        let counter = acked.clone();
        let task = tokio::spawn(async move {
            loop {
                match eventloop.poll().await {
                    Ok(Event::Incoming(Packet::PubAck(_))) => {
                        counter.fetch_add(1, Ordering::SeqCst);
                    }
                    Ok(_) => {}
                    Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                }
            }
        });
        Publisher {
            client,
            acked,
            task,
        }
    }

    pub async fn publish(&self, topic: &str, payload: impl Into<Vec<u8>>) {
        self.client
            .publish(topic, QoS::AtLeastOnce, false, payload)
            .await
            .unwrap();
    }

    pub fn acked(&self) -> u64 {
        self.acked.load(Ordering::SeqCst)
    }

    /// Waits until the broker acknowledged `n` publishes.
    pub async fn wait_acked(&self, n: u64, timeout: Duration) {
        wait_until(
            &format!("the broker acknowledges {n} publishes"),
            timeout,
            || self.acked() >= n,
        )
        .await;
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A telemetry payload with a temperature and a humidity.
pub fn reading(seq: u64, ts_ms: i64) -> Vec<u8> {
    format!(
        r#"{{"ts": {ts_ms}, "seq": {seq}, "values": {{"temp_c": {}, "rh_pct": 80}}}}"#,
        2.0 + (seq % 50) as f64 / 10.0
    )
    .into_bytes()
}

/// The two keys [`reading`] stores.
pub fn reading_keys(device: &str, seq: u64, ts_ms: i64) -> [ReadingKey; 2] {
    let key = |metric: &str| ReadingKey {
        device: ClientId::new(device).unwrap(),
        metric: metric.to_owned(),
        ts_ms,
        seq: seq as i64,
    };
    [key("temp_c"), key("rh_pct")]
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

/// A loopback port nobody listens on (free when this returns).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn must_have_mqtt() -> bool {
    std::env::var_os("CI").is_some() || std::env::var_os("SUYUAN_REQUIRE_MQTT").is_some()
}

/// The system's Mosquitto on 127.0.0.1:1883, or `None` (after printing why) when it is not
/// running and neither `CI` nor `SUYUAN_REQUIRE_MQTT` is set.
pub fn system_mosquitto(test: &str) -> Option<SocketAddr> {
    let addr: SocketAddr = "127.0.0.1:1883".parse().unwrap();
    match TcpStream::connect_timeout(&addr, Duration::from_millis(500)) {
        Ok(_) => Some(addr),
        Err(e) if must_have_mqtt() => {
            panic!("{test}: no MQTT broker on {addr} ({e}), and CI or SUYUAN_REQUIRE_MQTT is set")
        }
        Err(e) => {
            eprintln!("SKIPPED {test}: no MQTT broker on {addr} ({e}); start Mosquitto or set SUYUAN_REQUIRE_MQTT=1 to make this a failure");
            None
        }
    }
}

/// Ends a persistent session on a broker (a clean-session connect discards it), so a test
/// leaves nothing queued on a shared broker.
pub async fn forget_session(addr: SocketAddr, client_id: &str) {
    let mut options = MqttOptions::new(client_id, addr.ip().to_string(), addr.port());
    options.set_clean_session(true);
    let (client, mut eventloop) = AsyncClient::new(options, 10);
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    let _ = client.try_disconnect();
                }
                Ok(Event::Outgoing(rumqttc::Outgoing::Disconnect)) | Err(_) => break,
                Ok(_) => {}
            }
        }
    })
    .await;
}

/// A Mosquitto of the test's own on a free loopback port, with persistence in a temporary
/// folder; it can be stopped and started again on the same port.
pub struct OwnMosquitto {
    pub dir: tempfile::TempDir,
    pub addr: SocketAddr,
    binary: PathBuf,
    child: Option<Child>,
}

impl OwnMosquitto {
    /// `None` (after printing why) when Mosquitto is not installed and neither `CI` nor
    /// `SUYUAN_REQUIRE_MQTT` is set.
    pub fn start(test: &str) -> Option<OwnMosquitto> {
        let binary = ["mosquitto", "/usr/sbin/mosquitto"]
            .into_iter()
            .map(PathBuf::from)
            .find(|b| {
                Command::new(b)
                    .arg("-h")
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status()
                    .is_ok()
            });
        let Some(binary) = binary else {
            assert!(
                !must_have_mqtt(),
                "{test}: mosquitto is not installed, and CI or SUYUAN_REQUIRE_MQTT is set"
            );
            eprintln!("SKIPPED {test}: mosquitto is not installed (apt-get install mosquitto)");
            return None;
        };
        let dir = tempfile::tempdir().unwrap();
        // Started as root, Mosquitto switches to the `mosquitto` user: it must still be able to
        // write its persistence file (without it, a restart loses every session).
        std::fs::set_permissions(
            dir.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o777),
        )
        .unwrap();
        let port = free_port();
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let config = format!(
            "listener {port} 127.0.0.1\nallow_anonymous true\npersistence true\npersistence_location {}/\nmax_queued_messages 0\nmax_inflight_messages 100\nmax_packet_size 67108864\nlog_dest file {}/mosquitto.log\n",
            dir.path().display(),
            dir.path().display()
        );
        std::fs::write(dir.path().join("mosquitto.conf"), config).unwrap();
        let mut broker = OwnMosquitto {
            dir,
            addr,
            binary,
            child: None,
        };
        broker.restart();
        Some(broker)
    }

    /// Starts it (again) and waits until it accepts connections.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "already running");
        let child = Command::new(&self.binary)
            .arg("-c")
            .arg(self.dir.path().join("mosquitto.conf"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect_timeout(&self.addr, Duration::from_millis(200)).is_err() {
            assert!(
                Instant::now() < deadline,
                "mosquitto did not start on {}",
                self.addr
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops it with SIGTERM, the way a service manager restarts it; Mosquitto writes its
    /// persistence file on the way out.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        // The shell's own `kill`: no package needed for it.
        let status = Command::new("sh")
            .arg("-c")
            .arg(format!("kill -TERM {}", child.id()))
            .status()
            .unwrap();
        assert!(status.success());
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if child.try_wait().unwrap().is_some() {
                break;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for OwnMosquitto {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
