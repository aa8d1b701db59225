//! What the gateway fault tests need around the real `suyuan gateway` process: the binary, the
//! system's Mosquitto and Mosquittos of a test's own (persistent, killable, restartable on the same
//! port), the gateway process with its logs, a device that publishes at QoS 1 at a controlled rate
//! and counts the broker's acknowledgements, a TCP proxy in front of PostgreSQL that can be cut,
//! and the row counts a test compares with what was acknowledged.
//!
//! Every process started here is ended by its own id when its owner is dropped, and its log is
//! printed when the test fails. Traffic stays on the loopback interface.

use std::fmt::Write as _;
use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use diesel::{Connection, PgConnection, RunQueryDsl, SqliteConnection};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use suyuan_core::db::DatabaseUrl;

use super::TestDb;

/// The system's Mosquitto.
pub const SYSTEM_BROKER: &str = "127.0.0.1:1883";

/// The `suyuan` binary. These tests belong to the package that owns it, so cargo builds it (from
/// the same sources, with the same profile) before it runs them and names its path here.
pub fn suyuan_binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_suyuan"))
}

fn mqtt_required() -> bool {
    std::env::var_os("CI").is_some() || std::env::var_os("SUYUAN_REQUIRE_MQTT").is_some()
}

/// Skips (returns `None` after saying why) or fails, as the module doc of `support` describes.
fn unavailable<T>(test: &str, what: String) -> Option<T> {
    assert!(
        !mqtt_required(),
        "{test}: {what}, and CI or SUYUAN_REQUIRE_MQTT is set"
    );
    eprintln!(
        "SKIPPED {test}: {what}; start it, or set SUYUAN_REQUIRE_MQTT=1 to make this a failure"
    );
    None
}

/// The system's Mosquitto on 127.0.0.1:1883, or `None` when it is not running here and not
/// required.
pub fn system_broker(test: &str) -> Option<SocketAddr> {
    let addr: SocketAddr = SYSTEM_BROKER.parse().expect("address");
    match TcpStream::connect_timeout(&addr, Duration::from_millis(500)) {
        Ok(_) => Some(addr),
        Err(e) => unavailable(test, format!("no MQTT broker on {addr} ({e})")),
    }
}

static SYSTEM_BROKER_LOCK: Mutex<()> = Mutex::new(());

/// Held by a test that runs a gateway on the system's broker. Gateways on an external broker all
/// join the shared subscription `$share/suyuan/suyuan/v1/...`, so two tests' gateways there at
/// once would take each other's messages (and refuse them as unknown devices of another database).
pub fn system_broker_lock() -> MutexGuard<'static, ()> {
    SYSTEM_BROKER_LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

fn find_program(test: &str, names: &[&str]) -> Option<PathBuf> {
    let found = names.iter().map(PathBuf::from).find(|b| {
        Command::new(b)
            .arg("--help")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok()
    });
    match found {
        Some(p) => Some(p),
        None => unavailable(
            test,
            format!(
                "{} is not installed (apt-get install mosquitto mosquitto-clients)",
                names[0]
            ),
        ),
    }
}

/// `mosquitto_pub`, or `None` when it is not installed and not required.
pub fn mosquitto_pub_program(test: &str) -> Option<PathBuf> {
    find_program(test, &["mosquitto_pub", "/usr/bin/mosquitto_pub"])
}

/// A loopback port nobody listens on (free when this returns).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// Polls `done` every 50 ms until it holds or `timeout` passes; says whether it held.
#[must_use = "assert on it: a wait that timed out is a failure to report"]
pub fn wait_until(timeout: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if done() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Removes ANSI colour sequences from a log.
fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' && chars.peek() == Some(&'[') {
            for d in chars.by_ref() {
                if d.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn read_text(path: &Path) -> String {
    strip_ansi(&String::from_utf8_lossy(
        &std::fs::read(path).unwrap_or_default(),
    ))
}

/// The last `lines` lines of a text.
fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

fn send_signal(pid: u32, signal: &str) {
    let status = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -{signal} {pid} failed");
}

/// Waits for a child to exit; SIGKILLs it after `timeout`. Returns whether it exited by itself.
#[must_use = "a child that had to be killed did not stop the way the caller asked"]
fn wait_exit(child: &mut Child, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if child.try_wait().ok().flatten().is_some() {
            return true;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

// ---------------------------------------------------------------------------------------------
// A Mosquitto of the test's own

/// A Mosquitto of the test's own on a free loopback port, with persistence in a temporary folder,
/// saved after every change (so that even a SIGKILL keeps the sessions and queued messages), no
/// limit on queued messages and 100 in flight per client. It can be killed and started again on
/// the same port over the same persistence file.
pub struct Mosquitto {
    pub port: u16,
    dir: tempfile::TempDir,
    binary: PathBuf,
    child: Option<Child>,
    test: String,
}

impl Mosquitto {
    /// `None` (after saying why) when Mosquitto is not installed and not required.
    pub fn start(test: &str) -> Option<Mosquitto> {
        let binary = find_program(test, &["mosquitto", "/usr/sbin/mosquitto"])?;
        let dir = tempfile::tempdir().expect("temp dir");
        // Started as root, Mosquitto switches to the `mosquitto` user, which must be able to
        // write its persistence file and log here.
        std::fs::set_permissions(
            dir.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o777),
        )
        .expect("chmod");
        let port = free_port();
        let config = format!(
            "listener {port} 127.0.0.1\n\
             allow_anonymous true\n\
             persistence true\n\
             persistence_location {dir}/\n\
             autosave_on_changes true\n\
             autosave_interval 1\n\
             max_queued_messages 0\n\
             max_inflight_messages 100\n\
             max_packet_size 67108864\n\
             log_dest file {dir}/mosquitto.log\n\
             log_type error\nlog_type warning\nlog_type notice\n",
            dir = dir.path().display()
        );
        std::fs::write(dir.path().join("mosquitto.conf"), config).expect("write config");
        let mut broker = Mosquitto {
            port,
            dir,
            binary,
            child: None,
            test: test.to_owned(),
        };
        broker.restart();
        Some(broker)
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// The gateway's `--mqtt-url` for this broker.
    pub fn gateway_url(&self, client_id: &str) -> String {
        format!("mqtt://127.0.0.1:{}?client_id={client_id}", self.port)
    }

    /// Starts it (again, on the same port and persistence file) and waits until it accepts
    /// connections.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "mosquitto is already running");
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let mut child = Command::new(&self.binary)
                .arg("-c")
                .arg(self.dir.path().join("mosquitto.conf"))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start mosquitto");
            let up = wait_until(Duration::from_secs(5), || {
                TcpStream::connect_timeout(&self.addr(), Duration::from_millis(200)).is_ok()
                    || child.try_wait().ok().flatten().is_some()
            });
            if up && child.try_wait().ok().flatten().is_none() {
                self.child = Some(child);
                return;
            }
            // The port may still be held by the previous process for a moment.
            let _ = child.kill();
            let _ = child.wait();
            assert!(
                Instant::now() < deadline,
                "{}: mosquitto did not start on port {}:\n{}",
                self.test,
                self.port,
                tail(&self.log(), 40)
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// SIGKILL: no goodbye, no last save.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM, the way a service manager stops it; Mosquitto saves its state on the way out.
    pub fn terminate(&mut self) {
        if let Some(mut child) = self.child.take() {
            send_signal(child.id(), "TERM");
            assert!(
                wait_exit(&mut child, Duration::from_secs(10)),
                "{}: mosquitto did not stop within 10 s of SIGTERM (killed, so it saved nothing):\n{}",
                self.test,
                self.log()
            );
        }
    }

    pub fn log(&self) -> String {
        read_text(&self.dir.path().join("mosquitto.log"))
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            eprintln!(
                "---- {}: mosquitto on port {} (last 60 lines of its log) ----\n{}",
                self.test,
                self.port,
                tail(&self.log(), 60)
            );
        }
    }
}

/// Ends a persistent session on a broker: a clean-session connect under the same client id
/// discards it. Used on the system's broker, where a gateway's session left behind would stay a
/// member of the shared subscription and keep taking a share of every later message.
pub fn forget_session(addr: SocketAddr, client_id: &str) {
    let client_id = client_id.to_owned();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async move {
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
    });
}

/// Forgets a gateway's session on the system's broker when dropped (after the gateway, so declare
/// it before the gateway), also when the test fails.
pub struct ForgetSessionOnDrop {
    pub addr: SocketAddr,
    pub client_id: String,
}

impl Drop for ForgetSessionOnDrop {
    fn drop(&mut self) {
        forget_session(self.addr, &self.client_id);
    }
}

// ---------------------------------------------------------------------------------------------
// The gateway process

/// How a gateway process is started.
#[derive(Debug, Clone)]
pub struct GatewaySpec {
    /// `DATABASE_URL`.
    pub database_url: String,
    /// `--mqtt-url`, with the replica's client id.
    pub mqtt_url: String,
    /// `--data`: the spool (`DATA/spool`) and the media (`DATA/media`).
    pub data_dir: PathBuf,
    /// `--share-group` (replicas splitting the stream); none subscribes plainly.
    pub share_group: Option<String>,
}

/// The counters `suyuan gateway` prints when it stops gracefully.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GatewayTally {
    pub received: u64,
    pub stored: u64,
    pub refused: u64,
    pub spooled: u64,
}

impl GatewayTally {
    /// Parses `stopping: 12 received, 10 stored, 0 refused, 0 spooled`.
    fn parse(stdout: &str) -> Option<GatewayTally> {
        let line = stdout.lines().find(|l| l.starts_with("stopping:"))?;
        let mut tally = GatewayTally::default();
        for part in line.trim_start_matches("stopping:").split(',') {
            let mut words = part.split_whitespace();
            let n: u64 = words.next()?.parse().ok()?;
            match words.next()? {
                "received" => tally.received = n,
                "stored" => tally.stored = n,
                "refused" => tally.refused = n,
                "spooled" => tally.spooled = n,
                _ => {}
            }
        }
        Some(tally)
    }
}

/// `suyuan gateway` as a child process; each start's stdout and stderr go to files of their own.
pub struct GatewayProcess {
    pub name: String,
    spec: GatewaySpec,
    logs: PathBuf,
    child: Option<Child>,
    /// (stdout, stderr) of each start, oldest first.
    runs: Vec<(PathBuf, PathBuf)>,
}

impl GatewayProcess {
    /// Starts `suyuan gateway`; logs go to `logs/{name}.{n}.stdout|stderr`.
    pub fn start(name: &str, spec: GatewaySpec, logs: &Path) -> GatewayProcess {
        let mut gw = GatewayProcess {
            name: name.to_owned(),
            spec,
            logs: logs.to_owned(),
            child: None,
            runs: Vec::new(),
        };
        gw.restart();
        gw
    }

    /// Starts it again with the same client id, data folder (spool) and database.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "{} is already running", self.name);
        let n = self.runs.len() + 1;
        let out = self.logs.join(format!("{}.{n}.stdout", self.name));
        let err = self.logs.join(format!("{}.{n}.stderr", self.name));
        let mut cmd = Command::new(suyuan_binary());
        cmd.arg("gateway")
            .arg("--mqtt-url")
            .arg(&self.spec.mqtt_url)
            .arg("--data")
            .arg(&self.spec.data_dir);
        if let Some(group) = &self.spec.share_group {
            cmd.arg("--share-group").arg(group);
        }
        let child = cmd
            .env("DATABASE_URL", &self.spec.database_url)
            .env("SUYUAN_LOG", "info,rumqttd=off")
            .env("NO_COLOR", "1")
            .env_remove("SUYUAN_MQTT_URL")
            .env_remove("SUYUAN_DATA")
            .stdin(Stdio::null())
            .stdout(File::create(&out).expect("stdout file"))
            .stderr(File::create(&err).expect("stderr file"))
            .spawn()
            .expect("start suyuan gateway");
        self.runs.push((out, err));
        self.child = Some(child);
    }

    /// SIGKILL, the way a crash or the OOM killer ends it: nothing more is written or
    /// acknowledged.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().expect("SIGKILL the gateway");
            let _ = child.wait();
        }
    }

    /// SIGTERM (a graceful stop) and the counters it printed on the way out.
    pub fn terminate(&mut self) -> GatewayTally {
        let mut child = self.child.take().expect("the gateway is running");
        send_signal(child.id(), "TERM");
        let by_itself = wait_exit(&mut child, Duration::from_secs(20));
        assert!(
            by_itself,
            "{} did not stop within 20 s of SIGTERM:\n{}",
            self.name,
            tail(&self.stderr(), 40)
        );
        let stdout = self.stdout_of_last_run();
        GatewayTally::parse(&stdout).unwrap_or_else(|| {
            panic!(
                "{} printed no `stopping:` line; stdout: {stdout}\nstderr:\n{}",
                self.name,
                tail(&self.stderr(), 40)
            )
        })
    }

    /// Panics with the log when the process has exited by itself.
    pub fn assert_running(&mut self) {
        if let Some(child) = self.child.as_mut() {
            if let Ok(Some(status)) = child.try_wait() {
                panic!(
                    "{} exited by itself ({status}):\n{}",
                    self.name,
                    tail(&self.stderr(), 60)
                );
            }
        }
    }

    fn stdout_of_last_run(&self) -> String {
        self.runs
            .last()
            .map(|(out, _)| read_text(out))
            .unwrap_or_default()
    }

    /// The stderr (its log) of the latest start.
    pub fn log_of_last_run(&self) -> String {
        self.runs
            .last()
            .map(|(_, err)| read_text(err))
            .unwrap_or_default()
    }

    /// Every start's stderr, labelled.
    pub fn stderr(&self) -> String {
        let mut all = String::new();
        for (i, (_, err)) in self.runs.iter().enumerate() {
            let _ = writeln!(all, "[{} start {}: {}]", self.name, i + 1, err.display());
            all.push_str(&read_text(err));
        }
        all
    }

    /// Waits until the latest start's log contains `needle`.
    pub fn wait_for_log(&mut self, needle: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while !self.log_of_last_run().contains(needle) {
            self.assert_running();
            assert!(
                Instant::now() < deadline,
                "{}: no {needle:?} in its log within {timeout:?}:\n{}",
                self.name,
                tail(&self.log_of_last_run(), 40)
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for GatewayProcess {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            eprintln!(
                "---- {} (suyuan gateway) stderr, last 80 lines ----\n{}",
                self.name,
                tail(&self.stderr(), 80)
            );
        }
    }
}

/// `DATABASE_URL` for a gateway process on a test's database.
pub fn database_url(db: &TestDb) -> String {
    match &db.url {
        DatabaseUrl::Postgres(url) => url.clone(),
        DatabaseUrl::Sqlite { path, .. } => format!("sqlite://{}", path.display()),
    }
}

// ---------------------------------------------------------------------------------------------
// A device publishing at QoS 1

/// A device publishing at QoS 1 from the test's own Tokio runtime, message by message as the test says,
/// counting the broker's acknowledgements (the paced [`Publisher`] runs a planned stream on a thread).
pub struct AsyncDevice {
    client: AsyncClient,
    acked: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl AsyncDevice {
    /// Connects in the background; `persistent` keeps its session (and unacknowledged
    /// publishes) across a broker restart.
    pub fn connect(addr: SocketAddr, client_id: &str, persistent: bool) -> AsyncDevice {
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
        AsyncDevice {
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
        let deadline = Instant::now() + timeout;
        while self.acked() < n {
            assert!(
                Instant::now() < deadline,
                "timed out waiting until the broker acknowledges {n} publishes ({} so far)",
                self.acked()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for AsyncDevice {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// What a [`Publisher`] sends: telemetry messages `0..count` at `per_second`, message `seq` with
/// `ts = first_ts_ms + seq × 1000` and two metrics.
#[derive(Debug, Clone)]
pub struct PublishPlan {
    pub topic: String,
    pub count: u64,
    pub per_second: f64,
    pub first_ts_ms: i64,
}

/// The telemetry payload of message `seq`: `temp_c` and `rh_pct`.
pub fn reading_payload(seq: u64, ts_ms: i64) -> String {
    format!(
        r#"{{"ts": {ts_ms}, "seq": {seq}, "values": {{"temp_c": {:.1}, "rh_pct": 80}}}}"#,
        2.0 + (seq % 50) as f64 / 10.0
    )
}

#[derive(Debug, Default)]
struct PublisherShared {
    acked: AtomicU64,
    queued: AtomicU64,
    connects: AtomicU64,
    connection_errors: AtomicU64,
    /// The broker answered a reconnect without our session: rumqttc then drops the publishes
    /// it had not had acknowledged.
    lost_session: AtomicBool,
    stop: AtomicBool,
}

/// What a publisher did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PublishReport {
    /// Publishes the broker acknowledged (PUBACKs received).
    pub acked: u64,
    /// Publishes handed to the client.
    pub queued: u64,
    /// Successful connections (1 + reconnections).
    pub connects: u64,
    pub connection_errors: u64,
    pub lost_session: bool,
}

/// A device: a rumqttc client on a runtime and thread of its own, QoS 1, a persistent session
/// under a stable client id, the event loop polled without pause (with back-off after an error),
/// and every PUBACK counted. Across a broker restart rumqttc sends the unacknowledged publishes
/// again on the resumed session, so in the end every message is acknowledged exactly once.
pub struct Publisher {
    shared: Arc<PublisherShared>,
    count: u64,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Publisher {
    pub fn start(broker: SocketAddr, client_id: &str, plan: PublishPlan) -> Publisher {
        let shared = Arc::new(PublisherShared::default());
        let count = plan.count;
        let inner = shared.clone();
        let client_id = client_id.to_owned();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(publish(broker, client_id, plan, inner));
        });
        Publisher {
            shared,
            count,
            thread: Some(thread),
        }
    }

    pub fn acked(&self) -> u64 {
        self.shared.acked.load(Ordering::SeqCst)
    }

    /// Connection errors so far.
    pub fn connection_errors(&self) -> u64 {
        self.shared.connection_errors.load(Ordering::SeqCst)
    }

    /// Waits until the device has had a connection error since it had `before` (the broker went away).
    pub fn wait_connection_lost(&self, before: u64, timeout: Duration) {
        assert!(
            wait_until(timeout, || self.connection_errors() > before),
            "the device did not notice the broker going away within {timeout:?}"
        );
    }

    /// Waits until at least `n` publishes are acknowledged.
    pub fn wait_acked(&self, n: u64, timeout: Duration) {
        assert!(
            wait_until(timeout, || self.acked() >= n),
            "the broker acknowledged only {} of {n} publishes within {timeout:?} ({} connections, {} connection errors)",
            self.acked(),
            self.shared.connects.load(Ordering::SeqCst),
            self.shared.connection_errors.load(Ordering::SeqCst),
        );
    }

    /// Waits until every message is published and acknowledged (or `timeout`), then stops.
    pub fn finish(mut self, timeout: Duration) -> PublishReport {
        // Whether every publish was acknowledged is in the report (`acked`), which each caller asserts
        // on with the rest of it.
        let _all_acked = wait_until(timeout, || self.acked() >= self.count);
        self.stop();
        PublishReport {
            acked: self.acked(),
            queued: self.shared.queued.load(Ordering::SeqCst),
            connects: self.shared.connects.load(Ordering::SeqCst),
            connection_errors: self.shared.connection_errors.load(Ordering::SeqCst),
            lost_session: self.shared.lost_session.load(Ordering::SeqCst),
        }
    }

    fn stop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn publish(
    broker: SocketAddr,
    client_id: String,
    plan: PublishPlan,
    shared: Arc<PublisherShared>,
) {
    let mut options = MqttOptions::new(client_id, broker.ip().to_string(), broker.port());
    options
        .set_keep_alive(Duration::from_secs(5))
        .set_clean_session(false)
        .set_inflight(100);
    let (client, mut eventloop) = AsyncClient::new(options, 1_000);
    let polled = shared.clone();
    let poller = tokio::spawn(async move {
        let mut backoff = Duration::from_millis(50);
        let mut connected_before = false;
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Packet::PubAck(_))) => {
                    polled.acked.fetch_add(1, Ordering::SeqCst);
                }
                Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                    polled.connects.fetch_add(1, Ordering::SeqCst);
                    if connected_before && !ack.session_present {
                        polled.lost_session.store(true, Ordering::SeqCst);
                    }
                    connected_before = true;
                    backoff = Duration::from_millis(50);
                }
                Ok(_) => {}
                Err(_) => {
                    polled.connection_errors.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                }
            }
        }
    });
    let start = tokio::time::Instant::now();
    for seq in 0..plan.count {
        if shared.stop.load(Ordering::SeqCst) {
            break;
        }
        tokio::time::sleep_until(start + Duration::from_secs_f64(seq as f64 / plan.per_second))
            .await;
        let ts = plan.first_ts_ms + seq as i64 * 1000;
        // Not `publish().await`: while the broker is away the request channel fills up, and a
        // stop must still get through.
        loop {
            match client.try_publish(
                plan.topic.clone(),
                QoS::AtLeastOnce,
                false,
                reading_payload(seq, ts),
            ) {
                Ok(()) => break,
                Err(_) if !shared.stop.load(Ordering::SeqCst) => {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                Err(_) => return poller.abort(),
            }
        }
        shared.queued.fetch_add(1, Ordering::SeqCst);
    }
    while !shared.stop.load(Ordering::SeqCst) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    poller.abort();
}

// ---------------------------------------------------------------------------------------------
// mosquitto_pub

/// The MQTT passwords the API issued to the tests' devices, by client id: the embedded broker checks
/// them (and a system Mosquitto that allows anonymous clients ignores them).
static DEVICE_PASSWORDS: std::sync::Mutex<std::collections::BTreeMap<String, String>> =
    std::sync::Mutex::new(std::collections::BTreeMap::new());

/// Remembers a device's password, for the `mosquitto_pub` helpers below.
pub fn remember_device_password(client_id: &str, password: &str) {
    DEVICE_PASSWORDS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(client_id.to_owned(), password.to_owned());
}

/// `-u client_id -P password` when the device's password is known.
fn login_args(client_id: &str) -> Vec<String> {
    let passwords = DEVICE_PASSWORDS.lock().unwrap_or_else(|e| e.into_inner());
    match passwords.get(client_id) {
        Some(pw) => vec!["-u".into(), client_id.into(), "-P".into(), pw.clone()],
        None => Vec::new(),
    }
}

/// Publishes `lines` as one message each (`mosquitto_pub -l -q 1`), about `per_second` a second,
/// and returns how many PUBACKs it reported receiving.
pub fn mosquitto_pub_lines(
    program: &Path,
    broker: SocketAddr,
    client_id: &str,
    topic: &str,
    lines: &[String],
    per_second: f64,
) -> u64 {
    let mut child = Command::new(program)
        .args([
            "-h",
            &broker.ip().to_string(),
            "-p",
            &broker.port().to_string(),
        ])
        .args(login_args(client_id))
        .args(["-q", "1", "-d", "-i", client_id, "-t", topic, "-l"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start mosquitto_pub");
    let mut stdin = child.stdin.take().expect("stdin");
    let stdout = child.stdout.take().expect("stdout");
    // Read its debug output while writing, so that a full pipe never stalls it.
    let reader = std::thread::spawn(move || {
        BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .filter(|l| l.contains("received PUBACK"))
            .count() as u64
    });
    let start = Instant::now();
    for (i, line) in lines.iter().enumerate() {
        let due = start + Duration::from_secs_f64(i as f64 / per_second);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        writeln!(stdin, "{line}").expect("write to mosquitto_pub");
    }
    drop(stdin);
    let finished = wait_exit(&mut child, Duration::from_secs(30));
    let acked = reader.join().unwrap_or(0);
    assert!(finished, "mosquitto_pub did not finish within 30 s");
    acked
}

/// Publishes a file as one message (`mosquitto_pub -f -q 1`); returns the PUBACKs it reported.
pub fn mosquitto_pub_file(
    program: &Path,
    broker: SocketAddr,
    client_id: &str,
    topic: &str,
    file: &Path,
) -> u64 {
    let out = Command::new(program)
        .args([
            "-h",
            &broker.ip().to_string(),
            "-p",
            &broker.port().to_string(),
        ])
        .args(login_args(client_id))
        .args(["-q", "1", "-d", "-i", client_id, "-t", topic, "-f"])
        .arg(file)
        .output()
        .expect("run mosquitto_pub");
    assert!(
        out.status.success(),
        "mosquitto_pub -f failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains("received PUBACK"))
        .count() as u64
}

/// Publishes `online` to the device's status topic until the gateway has recorded it: the
/// gateway is then subscribed and writing. (Messages published before its first subscription
/// would reach nobody.)
pub fn wait_until_ingesting(
    program: &Path,
    db: &TestDb,
    broker: SocketAddr,
    site: i64,
    device: &str,
    gateways: &mut [&mut GatewayProcess],
) {
    let topic = format!("suyuan/v1/{site}/{device}/status");
    let online = format!(
        "SELECT count(*) AS n FROM devices WHERE client_id = '{device}' AND status = 'online'"
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        for g in gateways.iter_mut() {
            g.assert_running();
        }
        let _ = Command::new(program)
            .args([
                "-h",
                &broker.ip().to_string(),
                "-p",
                &broker.port().to_string(),
            ])
            .args(["-q", "1", "-i", device, "-t", &topic, "-m", "online"])
            .args(login_args(device))
            .output();
        if wait_until(Duration::from_secs(1), || query_count(db, &online) == 1) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the gateway did not record the status of {device} within 30 s"
        );
    }
}

/// Publishes `online` once on the status topic of `device` (which has reported no status before) and
/// waits until the database has it. The gateway handles one broker's messages in order, and `device`
/// published its earlier messages under the same client id, so once the status is recorded every
/// earlier message of `device` has been handled: a marker for "the gateway is done with what the
/// device sent", where a pause would only hope so.
pub fn wait_handled_up_to_marker(
    program: &Path,
    db: &TestDb,
    broker: SocketAddr,
    site: i64,
    device: &str,
    timeout: Duration,
) {
    let online = format!(
        "SELECT count(*) AS n FROM devices WHERE client_id = '{device}' AND status = 'online'"
    );
    assert_eq!(
        query_count(db, &online),
        0,
        "{device} reported a status before: it cannot serve as a marker"
    );
    let out = Command::new(program)
        .args([
            "-h",
            &broker.ip().to_string(),
            "-p",
            &broker.port().to_string(),
        ])
        .args(login_args(device))
        .args(["-q", "1", "-i", device, "-t"])
        .arg(format!("suyuan/v1/{site}/{device}/status"))
        .args(["-m", "online"])
        .output()
        .expect("run mosquitto_pub");
    assert!(
        out.status.success(),
        "mosquitto_pub of the marker failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        wait_until(timeout, || query_count(db, &online) == 1),
        "the gateway did not record the marker status of {device} within {timeout:?}: it has not handled what {device} sent before"
    );
}

// ---------------------------------------------------------------------------------------------
// A TCP proxy in front of PostgreSQL

#[derive(Debug)]
struct ProxyShared {
    upstream: SocketAddr,
    up: AtomicBool,
    stop: AtomicBool,
    /// Both ends of every open connection, to close them when the proxy is cut.
    open: Mutex<Vec<TcpStream>>,
    accepted: AtomicU64,
    refused: AtomicU64,
}

/// A TCP proxy on a free loopback port that copies bytes both ways to PostgreSQL; [`cut`] closes
/// every connection and refuses new ones (accepts and closes them at once) until [`restore`].
///
/// [`cut`]: PgProxy::cut
/// [`restore`]: PgProxy::restore
pub struct PgProxy {
    pub port: u16,
    shared: Arc<ProxyShared>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl PgProxy {
    pub fn start(upstream: SocketAddr) -> PgProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        let port = listener.local_addr().expect("addr").port();
        let shared = Arc::new(ProxyShared {
            upstream,
            up: AtomicBool::new(true),
            stop: AtomicBool::new(false),
            open: Mutex::new(Vec::new()),
            accepted: AtomicU64::new(0),
            refused: AtomicU64::new(0),
        });
        let inner = shared.clone();
        let thread = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if inner.stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(client) = conn else { continue };
                if !inner.up.load(Ordering::SeqCst) {
                    inner.refused.fetch_add(1, Ordering::SeqCst);
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                }
                let Ok(server) = TcpStream::connect(inner.upstream) else {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                };
                inner.accepted.fetch_add(1, Ordering::SeqCst);
                let _ = client.set_nodelay(true);
                let _ = server.set_nodelay(true);
                {
                    let mut open = inner.open.lock().unwrap_or_else(|e| e.into_inner());
                    for s in [&client, &server] {
                        if let Ok(c) = s.try_clone() {
                            open.push(c);
                        }
                    }
                }
                for (from, to) in [(&client, &server), (&server, &client)] {
                    let (Ok(mut from), Ok(mut to)) = (from.try_clone(), to.try_clone()) else {
                        continue;
                    };
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut from, &mut to);
                        let _ = from.shutdown(Shutdown::Both);
                        let _ = to.shutdown(Shutdown::Both);
                    });
                }
            }
        });
        PgProxy {
            port,
            shared,
            thread: Some(thread),
        }
    }

    /// Closes every connection and refuses new ones.
    pub fn cut(&self) {
        self.shared.up.store(false, Ordering::SeqCst);
        let mut open = self.shared.open.lock().unwrap_or_else(|e| e.into_inner());
        for s in open.drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
    }

    /// Lets connections through again.
    pub fn restore(&self) {
        self.shared.up.store(true, Ordering::SeqCst);
    }

    /// Connections refused while cut.
    pub fn refused(&self) -> u64 {
        self.shared.refused.load(Ordering::SeqCst)
    }

    /// `url` (a PostgreSQL URL) with its host and port replaced by the proxy's.
    pub fn url_through(&self, url: &str) -> String {
        let (before, _, after) = split_pg_authority(url);
        format!("{before}127.0.0.1:{}{after}", self.port)
    }
}

impl Drop for PgProxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        self.cut();
        // Wake the accept loop so that it sees the stop.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Splits `postgres://user@host:port/db?…` into (`postgres://user@`, `host:port`, `/db?…`).
fn split_pg_authority(url: &str) -> (&str, &str, &str) {
    let scheme_end = url.find("://").map_or(0, |i| i + 3);
    let rest = &url[scheme_end..];
    let authority_len = rest.find(['/', '?']).unwrap_or(rest.len());
    let authority = &rest[..authority_len];
    let host_start = authority.rfind('@').map_or(0, |i| i + 1);
    let start = scheme_end + host_start;
    let end = scheme_end + authority_len;
    (&url[..start], &url[start..end], &url[end..])
}

/// The PostgreSQL server's address in a URL (port 5432 when none is given).
pub fn pg_server_addr(url: &str) -> SocketAddr {
    let (_, hostport, _) = split_pg_authority(url);
    let hostport = if hostport.contains(':') {
        hostport.to_owned()
    } else {
        format!("{hostport}:5432")
    };
    hostport
        .to_socket_addrs()
        .expect("resolve the PostgreSQL host")
        .next()
        .expect("an address for the PostgreSQL host")
}

// ---------------------------------------------------------------------------------------------
// Counting rows

#[derive(diesel::QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

/// Runs `sql` (a query with one `bigint` column named `n`) on a connection of its own.
pub fn query_count(db: &TestDb, sql: &str) -> i64 {
    let row: Count = match &db.url {
        DatabaseUrl::Postgres(url) => {
            let mut c = PgConnection::establish(url).expect("connect");
            diesel::sql_query(sql).get_result(&mut c)
        }
        DatabaseUrl::Sqlite { path, .. } => {
            let mut c = SqliteConnection::establish(&path.to_string_lossy()).expect("connect");
            diesel::sql_query("PRAGMA busy_timeout = 10000")
                .execute(&mut c)
                .expect("busy timeout");
            diesel::sql_query(sql).get_result(&mut c)
        }
    }
    .unwrap_or_else(|e| panic!("{sql}: {e}"));
    row.n
}

/// Stored readings: rows, and distinct `(device, metric, ts, seq)` keys (equal unless the key
/// failed to keep out a duplicate).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadingCounts {
    pub rows: i64,
    pub distinct_keys: i64,
}

pub fn reading_counts(db: &TestDb) -> ReadingCounts {
    ReadingCounts {
        rows: query_count(db, "SELECT count(*) AS n FROM readings"),
        distinct_keys: query_count(
            db,
            "SELECT count(*) AS n FROM (SELECT DISTINCT device_id, metric, ts, seq FROM readings) k",
        ),
    }
}

/// Waits until `expected` rows are stored, then a second more, so that an extra row would show
/// too; gives up after `timeout`, or after 15 s without a new row. Returns the final counts.
pub fn wait_for_readings(db: &TestDb, expected: i64, timeout: Duration) -> ReadingCounts {
    let deadline = Instant::now() + timeout;
    let mut last = -1;
    let mut changed = Instant::now();
    loop {
        let n = query_count(db, "SELECT count(*) AS n FROM readings");
        if n >= expected {
            std::thread::sleep(Duration::from_secs(1));
            break;
        }
        if n != last {
            last = n;
            changed = Instant::now();
        }
        if Instant::now() >= deadline || changed.elapsed() >= Duration::from_secs(15) {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    reading_counts(db)
}

/// Waits until the number of stored readings has not changed for `quiet` (or `timeout`); returns it.
pub fn wait_for_quiet(db: &TestDb, quiet: Duration, timeout: Duration) -> i64 {
    let deadline = Instant::now() + timeout;
    let mut last = query_count(db, "SELECT count(*) AS n FROM readings");
    let mut since = Instant::now();
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
        let now = query_count(db, "SELECT count(*) AS n FROM readings");
        if now != last {
            last = now;
            since = Instant::now();
        } else if since.elapsed() >= quiet {
            break;
        }
    }
    last
}
