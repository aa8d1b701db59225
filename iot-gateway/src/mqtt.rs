//! The MQTT side of the gateway: connection settings, the event loop that is polled without
//! pause, and acknowledgements that can never reach the wrong message.
//!
//! Four traps shape this module:
//!
//! - The event loop must be polled continuously: it is what reads packets, writes queued acks
//!   and sends keep-alive pings. The poller does nothing else; it hands every publish to the
//!   pipeline over an unbounded channel (never awaiting the pipeline) and never awaits an
//!   acknowledgement itself — a poller waiting for room in the request channel that only it
//!   empties is a deadlock.
//! - `poll()` reconnects at once when called after an error, so a broker that is down would be
//!   hammered; the poller sleeps with exponential back-off and jitter between attempts.
//! - An acknowledgement carries only a packet id, and after a reconnect the broker reuses ids: an
//!   ack queued for a message of the old connection could acknowledge a *different* message of
//!   the new one (before it is stored), and rumqttd treats an unexpected ack as a protocol error.
//!   Every delivery therefore carries the *epoch* of its connection, and an ack is sent
//!   only while that connection is the current one. A stale ack is dropped: the broker redelivers
//!   the message on the new connection (persistent session), where the idempotent write absorbs
//!   it and its ack goes out then.
//! - Closing a socket that still has unread data makes the kernel send a reset, and the broker's
//!   kernel then discards what the broker had not read yet — the last acknowledgements among it.
//!   On a graceful stop the poller therefore reads on after its DISCONNECT until the broker closes
//!   the connection.
//!
//! The client uses MQTT 3.1.1, QoS 1, a persistent session (`clean_session = false`) under a
//! stable client id per replica, and manual acknowledgements.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::Rng;
use rumqttc::{
    AsyncClient, ConnectionError, Event, EventLoop, MqttOptions, Outgoing, Packet, PubAck, Publish,
    QoS, StateError, SubscribeFilter, SubscribeReasonCode,
};
use tokio::sync::{mpsc, watch, Notify};

use crate::error::Error;

/// The largest MQTT packet the gateway reads by default: 64 MiB.
///
/// rumqttc's own default is 10 KiB, far too small for images, and a packet over the limit is a
/// protocol error that drops the connection — after which the broker redelivers the same packet,
/// forever. So the limit is set well above `images.max_bytes` (oversized images are refused and
/// counted by the pipeline instead), and the broker must refuse anything larger than this from
/// publishers (Mosquitto: `max_packet_size 67108864`; the embedded broker does it by default).
pub const DEFAULT_MAX_PACKET_BYTES: usize = 64 * 1024 * 1024;

/// The client id used when none is given. Every replica needs its own: see [`MqttSettings`].
pub const DEFAULT_CLIENT_ID: &str = "suyuan-gateway";

/// How the gateway connects to the broker.
///
/// Written as a URL (see [`MqttSettings::from_url`]):
/// `mqtt://[user[:password]@]host[:port][?client_id=ID&keep_alive_s=30&max_packet_bytes=N&inflight=100]`.
///
/// The client id must be stable across restarts of one replica and different between replicas:
/// the broker keeps the replica's session (its subscriptions and the messages it has not
/// acknowledged) under that id while the replica is away, and hands it back when a process with
/// the same id connects again.
#[derive(Clone, PartialEq, Eq)]
pub struct MqttSettings {
    /// Broker host name or IP address.
    pub host: String,
    /// Broker port (1883).
    pub port: u16,
    /// This replica's client id ([`DEFAULT_CLIENT_ID`]).
    pub client_id: String,
    /// User name, when the broker requires one.
    pub username: Option<String>,
    /// Password (never printed by `Debug` or [`url`](Self::url)).
    pub password: Option<String>,
    /// Keep-alive interval (30 s): how soon a dead connection is noticed.
    pub keep_alive: Duration,
    /// Largest packet read ([`DEFAULT_MAX_PACKET_BYTES`]).
    pub max_packet_bytes: usize,
    /// Most unacknowledged publishes the client itself has out (100); the gateway only
    /// subscribes, so this matters little. The messages the *broker* has in flight to the
    /// gateway are the broker's setting (Mosquitto: `max_inflight_messages`).
    pub inflight: u16,
}

impl fmt::Debug for MqttSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MqttSettings")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("client_id", &self.client_id)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("keep_alive", &self.keep_alive)
            .field("max_packet_bytes", &self.max_packet_bytes)
            .field("inflight", &self.inflight)
            .finish()
    }
}

impl MqttSettings {
    /// Settings for a broker, with defaults for everything else.
    pub fn new(host: impl Into<String>, port: u16, client_id: impl Into<String>) -> Self {
        MqttSettings {
            host: host.into(),
            port,
            client_id: client_id.into(),
            username: None,
            password: None,
            keep_alive: Duration::from_secs(30),
            max_packet_bytes: DEFAULT_MAX_PACKET_BYTES,
            inflight: 100,
        }
    }

    /// Parses `mqtt://[user[:password]@]host[:port][?key=value&...]` (`tcp://` is accepted too;
    /// the port defaults to 1883; an IPv6 address is written in brackets, `mqtt://[::1]:1883`).
    /// User name, password and values are percent-decoded. Keys: `client_id`, `keep_alive_s`,
    /// `max_packet_bytes`, `inflight`; any other key is an error, so a typo does not pass
    /// silently. TLS (`mqtts://`) is not supported: run the broker beside the gateway or reach it
    /// over a private network.
    pub fn from_url(url: &str) -> Result<Self, Error> {
        let rest = url
            .strip_prefix("mqtt://")
            .or_else(|| url.strip_prefix("tcp://"))
            .ok_or_else(|| url_error(format!("{url:?} must start with mqtt:// (or tcp://)")))?;
        let (authority, query) = match rest.split_once('?') {
            Some((a, q)) => (a, Some(q)),
            None => (rest, None),
        };
        let authority = authority.strip_suffix('/').unwrap_or(authority);
        if authority.contains('/') {
            return Err(url_error("a broker URL has no path".into()));
        }
        let (userinfo, hostport) = match authority.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, authority),
        };
        let (host, port) = split_host_port(hostport)?;
        let mut settings = MqttSettings::new(host, port, DEFAULT_CLIENT_ID);
        if let Some(userinfo) = userinfo {
            let (user, pass) = match userinfo.split_once(':') {
                Some((u, p)) => (u, Some(p)),
                None => (userinfo, None),
            };
            settings.username = Some(percent_decode(user)?);
            settings.password = pass.map(percent_decode).transpose()?;
        }
        for pair in query.into_iter().flat_map(|q| q.split('&')) {
            if pair.is_empty() {
                continue;
            }
            let (key, value) = pair
                .split_once('=')
                .ok_or_else(|| url_error(format!("query part {pair:?} is not key=value")))?;
            let value = percent_decode(value)?;
            let number = |what: &str| {
                value
                    .parse::<u64>()
                    .map_err(|_| url_error(format!("{what}={value:?} is not a number")))
            };
            match key {
                "client_id" => settings.client_id = value.clone(),
                "keep_alive_s" => settings.keep_alive = Duration::from_secs(number(key)?),
                "max_packet_bytes" => {
                    settings.max_packet_bytes = usize::try_from(number(key)?)
                        .map_err(|_| url_error("max_packet_bytes is too large".into()))?;
                }
                "inflight" => {
                    settings.inflight = u16::try_from(number(key)?)
                        .map_err(|_| url_error("inflight must be at most 65535".into()))?;
                }
                other => {
                    return Err(url_error(format!(
                    "unknown key {other:?} (client_id, keep_alive_s, max_packet_bytes, inflight)"
                )))
                }
            }
        }
        settings.validate()?;
        Ok(settings)
    }

    /// The broker's address as a URL without the password, for logs.
    pub fn url(&self) -> String {
        let user = match &self.username {
            Some(u) => format!("{u}@"),
            None => String::new(),
        };
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        format!(
            "mqtt://{user}{host}:{}?client_id={}",
            self.port, self.client_id
        )
    }

    /// Checks the settings, so that a bad one stops the gateway at start.
    pub fn validate(&self) -> Result<(), Error> {
        if self.host.is_empty() {
            return Err(url_error("the host is empty".into()));
        }
        if self.client_id.is_empty()
            || self.client_id.len() > 256
            || self.client_id.chars().any(char::is_control)
        {
            return Err(Error::Config {
                setting: "mqtt.client_id",
                problem: format!(
                    "{:?} must be 1 to 256 bytes without control characters",
                    self.client_id
                ),
            });
        }
        if !(self.keep_alive.is_zero() || self.keep_alive >= Duration::from_secs(1)) {
            return Err(Error::Config {
                setting: "mqtt.keep_alive",
                problem: "must be 0 (off) or at least one second".into(),
            });
        }
        if self.max_packet_bytes < 64 * 1024 {
            return Err(Error::Config {
                setting: "mqtt.max_packet_bytes",
                problem: "must be at least 64 KiB".into(),
            });
        }
        if self.inflight == 0 {
            return Err(Error::Config {
                setting: "mqtt.inflight",
                problem: "must be positive".into(),
            });
        }
        Ok(())
    }

    /// rumqttc's options: persistent session, manual acks, large incoming packets, and a request
    /// channel large enough that queuing an ack never waits (a broker has at most 65,535
    /// unacknowledged QoS 1 messages out to one client: that is the packet id space).
    pub(crate) fn options(&self) -> MqttOptions {
        let mut options = MqttOptions::new(self.client_id.clone(), self.host.clone(), self.port);
        options
            .set_keep_alive(self.keep_alive)
            .set_clean_session(false)
            .set_manual_acks(true)
            .set_max_packet_size(self.max_packet_bytes, 256 * 1024)
            .set_inflight(self.inflight)
            .set_request_channel_capacity(REQUEST_CHANNEL_CAPACITY);
        if let Some(user) = &self.username {
            options.set_credentials(user.clone(), self.password.clone().unwrap_or_default());
        }
        options
    }
}

/// How long, after sending DISCONNECT, the poller waits for the broker to close the connection.
const CLOSE_WAIT: Duration = Duration::from_secs(2);

/// Room for every possible unacknowledged message's ack plus a few subscribes and a disconnect.
pub(crate) const REQUEST_CHANNEL_CAPACITY: usize = 65_535 + 64;

fn url_error(problem: String) -> Error {
    Error::Config {
        setting: "mqtt.url",
        problem,
    }
}

fn split_host_port(hostport: &str) -> Result<(String, u16), Error> {
    let (host, port) = if let Some(rest) = hostport.strip_prefix('[') {
        let (host, after) = rest
            .split_once(']')
            .ok_or_else(|| url_error("an IPv6 address is missing its ]".into()))?;
        let port = match after {
            "" => None,
            p => Some(
                p.strip_prefix(':')
                    .ok_or_else(|| url_error(format!("unexpected {p:?} after the address")))?,
            ),
        };
        (host, port)
    } else {
        match hostport.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (hostport, None),
        }
    };
    let port = match port {
        None => 1883,
        Some(p) => p
            .parse()
            .map_err(|_| url_error(format!("port {p:?} is not a number from 0 to 65535")))?,
    };
    if host.is_empty() {
        return Err(url_error("the host is empty".into()));
    }
    Ok((host.to_owned(), port))
}

fn percent_decode(s: &str) -> Result<String, Error> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| url_error(format!("bad percent escape in {s:?}")))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| url_error(format!("{s:?} does not decode to UTF-8")))
}

/// One publish as the pipeline receives it.
#[derive(Debug)]
pub(crate) struct Delivery {
    /// The packet as read (topic, payload, QoS and packet id for the ack).
    pub publish: Publish,
    /// Gateway clock when it was read, ms since the epoch.
    pub received_at_ms: i64,
    /// The connection it came on.
    pub epoch: u64,
}

/// Sends acknowledgements, but only for deliveries of the current connection.
///
/// The pipeline queues a batch's PUBACKs here at once; the poller, which owns the event loop, writes
/// them to the connection in one go, in the order queued, with one flush (one system call) for the
/// batch. Handing them to rumqttc's request channel instead makes its event loop write and flush each
/// PUBACK on its own: a system call per message for the gateway and a packet per message for the broker
/// to read, which at tens of thousands of messages a second cost more than the database.
#[derive(Debug)]
pub(crate) struct Acker {
    client: AsyncClient,
    /// The current connection's epoch and the packet ids waiting to be written. One lock, so that a
    /// new epoch and the purge of queued acks cannot interleave with queuing.
    queue: Mutex<AckQueue>,
    /// Set when acks are queued: wakes the poller.
    ready: Notify,
    /// The event loop is gone: nothing can be sent any more.
    closed: AtomicBool,
}

#[derive(Debug, Default)]
struct AckQueue {
    epoch: u64,
    pkids: Vec<u16>,
}

/// What became of an acknowledgement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AckOutcome {
    /// Queued for the current connection (or nothing to ack: QoS 0).
    Sent,
    /// The message came on an earlier connection; the broker redelivers it.
    Stale,
    /// The event loop has stopped.
    Closed,
}

impl Acker {
    pub(crate) fn new(client: AsyncClient) -> Self {
        Acker {
            client,
            queue: Mutex::new(AckQueue::default()),
            ready: Notify::new(),
            closed: AtomicBool::new(false),
        }
    }

    fn queue(&self) -> std::sync::MutexGuard<'_, AckQueue> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn epoch(&self) -> u64 {
        self.queue().epoch
    }

    /// Queues the PUBACKs of deliveries, in order, and wakes the poller; one outcome per delivery.
    pub(crate) fn ack_all<'a>(
        &self,
        deliveries: impl IntoIterator<Item = &'a Delivery>,
    ) -> Vec<AckOutcome> {
        let mut out = Vec::new();
        let queued = {
            let mut queue = self.queue();
            let before = queue.pkids.len();
            let closed = self.closed.load(Ordering::Acquire);
            for d in deliveries {
                out.push(if d.publish.qos == QoS::AtMostOnce {
                    AckOutcome::Sent
                } else if closed {
                    AckOutcome::Closed
                } else if d.epoch != queue.epoch {
                    AckOutcome::Stale
                } else {
                    queue.pkids.push(d.publish.pkid);
                    AckOutcome::Sent
                });
            }
            queue.pkids.len() > before
        };
        if queued {
            self.ready.notify_one();
        }
        out
    }

    /// Writes the queued PUBACKs to the connection and flushes it once. Without a connection they
    /// are dropped: the connection they belong to is gone, and the broker delivers those messages
    /// again. A write error is left to the event loop, whose next poll meets it and reconnects.
    async fn write_queued(&self, eventloop: &mut EventLoop) {
        let pkids = std::mem::take(&mut self.queue().pkids);
        let Some(network) = eventloop.network.as_mut() else {
            return;
        };
        for pkid in pkids {
            if let Err(e) = network.write(Packet::PubAck(PubAck::new(pkid))).await {
                tracing::debug!(error = %e, "writing PUBACKs failed; the broker redelivers");
                return;
            }
        }
        if let Err(e) = network.flush().await {
            tracing::debug!(error = %e, "flushing PUBACKs failed; the broker redelivers");
        }
    }

    /// Called by the poller when the connection is lost: later acks of earlier deliveries are
    /// dropped, and acks still queued are purged (`EventLoop::clean` also drops any PUBACK left
    /// in rumqttc's own channel and keeps other requests).
    fn next_epoch(&self, eventloop: &mut EventLoop) {
        let mut queue = self.queue();
        queue.epoch += 1;
        queue.pkids.clear();
        eventloop.clean();
    }

    fn close(&self) {
        self.closed.store(true, Ordering::Release);
    }

    pub(crate) fn client(&self) -> &AsyncClient {
        &self.client
    }
}

/// Connection figures shared with the gateway's handle.
#[derive(Debug, Default)]
pub(crate) struct LinkState {
    pub connected: AtomicBool,
    /// The broker has granted the subscriptions (they live on in the persistent session).
    pub subscribed: AtomicBool,
    pub connects: AtomicU64,
    pub received: AtomicU64,
    pub dropped_qos0: AtomicU64,
    /// Deliveries handed to the pipeline and not yet taken by it.
    pub queued: AtomicUsize,
    pub queued_qos0: AtomicUsize,
}

/// How the poller behaves.
#[derive(Debug, Clone)]
pub(crate) struct PollSettings {
    pub filters: Vec<String>,
    pub retry_min: Duration,
    pub retry_max: Duration,
    pub max_queued_qos0: usize,
    pub url: String,
}

/// Exponential back-off with "equal jitter": each delay is drawn from [d/2, d], d doubling from
/// `min` up to `max`, so replicas that lost the broker together do not return in lock-step.
#[derive(Debug, Clone)]
pub(crate) struct Backoff {
    min: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    pub(crate) fn new(min: Duration, max: Duration) -> Self {
        Backoff {
            min,
            max,
            next: min,
        }
    }

    /// The delay to wait now; the one after is twice as long (up to the cap).
    pub(crate) fn next_delay(&mut self) -> Duration {
        let d = self.next;
        self.next = (self.next * 2).min(self.max);
        d.mul_f64(rand::thread_rng().gen_range(0.5..=1.0))
    }

    pub(crate) fn reset(&mut self) {
        self.next = self.min;
    }
}

/// Polls the event loop until `stop` is set and the disconnect has gone out (or the connection
/// is lost while stopping). Publishes go to `tx`; nothing here waits for the pipeline.
pub(crate) async fn run(
    mut eventloop: EventLoop,
    acker: Arc<Acker>,
    tx: mpsc::UnboundedSender<Delivery>,
    link: Arc<LinkState>,
    settings: PollSettings,
    mut stop: watch::Receiver<bool>,
) {
    let mut backoff = Backoff::new(settings.retry_min, settings.retry_max);
    let mut failures: u32 = 0;
    // Set once the DISCONNECT is out: see the `Outgoing::Disconnect` arm.
    let mut closing: Option<tokio::time::Instant> = None;
    loop {
        let event = match closing {
            Some(deadline) => match tokio::time::timeout_at(deadline, eventloop.poll()).await {
                Ok(event) => event,
                Err(_) => break,
            },
            None => tokio::select! {
                // Acks first: when acks are queued the poll is dropped and started again after
                // them. Where it can be pending (waiting for the broker, for a request, for the
                // keep-alive, or for the socket to take a write), dropping it loses nothing that a
                // reconnect would not bring back: bytes read or queued for writing stay in the
                // connection's buffers and decoded packets in rumqttc's state.
                biased;
                _ = acker.ready.notified() => {
                    acker.write_queued(&mut eventloop).await;
                    continue;
                }
                event = eventloop.poll() => event,
                // While stopping, a poll that hangs (broker gone) must not hold up the shutdown;
                // the handle also bounds the wait.
                _ = wait_stopping(&mut stop), if *stop.borrow() && !link.connected.load(Ordering::Acquire) => break,
            },
        };
        match event {
            // Closing: the pipeline has stopped; the broker delivers this again later.
            Ok(Event::Incoming(Packet::Publish(_))) if closing.is_some() => {}
            Ok(Event::Incoming(Packet::Publish(publish))) => {
                link.received.fetch_add(1, Ordering::Relaxed);
                if publish.qos == QoS::AtMostOnce {
                    // Nothing bounds QoS 0 traffic but this: at most once means it may be dropped.
                    if link.queued_qos0.load(Ordering::Relaxed) >= settings.max_queued_qos0 {
                        link.dropped_qos0.fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                    link.queued_qos0.fetch_add(1, Ordering::Relaxed);
                }
                link.queued.fetch_add(1, Ordering::Relaxed);
                let delivery = Delivery {
                    publish,
                    received_at_ms: now_ms(),
                    epoch: acker.epoch(),
                };
                // The pipeline has stopped (shutting down): the message stays unacknowledged
                // and the broker redelivers it.
                let _ = tx.send(delivery);
            }
            Ok(Event::Incoming(Packet::ConnAck(connack))) => {
                link.connected.store(true, Ordering::Release);
                link.connects.fetch_add(1, Ordering::Relaxed);
                backoff.reset();
                if failures > 0 {
                    tracing::info!(broker = %settings.url, session_present = connack.session_present, "MQTT connection restored");
                } else {
                    tracing::info!(broker = %settings.url, session_present = connack.session_present, "MQTT connected");
                }
                failures = 0;
                // Subscribe on every connection. A session the broker kept may still have lost
                // subscriptions: Mosquitto's persistence keeps plain subscriptions but not shared
                // ones (`$share/...`), so after a broker restart a shared subscriber is connected,
                // with `session_present`, and subscribed to nothing. Subscribing again to the same
                // filter is harmless.
                {
                    let filters = settings
                        .filters
                        .iter()
                        .map(|f| SubscribeFilter::new(f.clone(), QoS::AtLeastOnce));
                    if let Err(e) = acker.client().try_subscribe_many(filters) {
                        tracing::error!(error = %e, "could not queue the MQTT subscription");
                    }
                }
            }
            Ok(Event::Incoming(Packet::SubAck(suback))) => {
                let failed = suback
                    .return_codes
                    .iter()
                    .filter(|c| matches!(c, SubscribeReasonCode::Failure))
                    .count();
                if failed == 0 {
                    link.subscribed.store(true, Ordering::Release);
                    tracing::info!(filters = ?settings.filters, "MQTT subscriptions granted");
                } else {
                    tracing::error!(
                        failed,
                        filters = ?settings.filters,
                        "the broker refused {failed} of the gateway's subscriptions (check its ACL, and that it supports shared subscriptions when topics.share_group is set)"
                    );
                }
            }
            Ok(Event::Outgoing(Outgoing::Disconnect)) => {
                // Do not close the socket yet: the broker may still be sending, and closing a
                // socket with unread data makes the kernel send a reset, upon which the broker's
                // kernel discards what it has not read yet — the last acknowledgements among
                // it. Read on (dropping publishes) until the broker closes the connection.
                if *stop.borrow() {
                    closing = Some(tokio::time::Instant::now() + CLOSE_WAIT);
                }
            }
            Ok(_) => {}
            Err(e) => {
                let was_connected = link.connected.swap(false, Ordering::AcqRel);
                acker.next_epoch(&mut eventloop);
                if *stop.borrow() || closing.is_some() {
                    break;
                }
                if matches!(e, ConnectionError::RequestsDone) {
                    break;
                }
                failures = failures.saturating_add(1);
                let delay = backoff.next_delay();
                log_connection_error(&e, &settings, was_connected, failures, delay);
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = wait_stopping(&mut stop) => break,
                }
            }
        }
    }
    link.connected.store(false, Ordering::Release);
    acker.close();
}

async fn wait_stopping(stop: &mut watch::Receiver<bool>) {
    // An error means the handle is gone: that is a stop as well.
    let _ = stop.wait_for(|s| *s).await;
}

fn log_connection_error(
    e: &ConnectionError,
    settings: &PollSettings,
    was_connected: bool,
    failures: u32,
    delay: Duration,
) {
    let retry_ms = delay.as_millis() as u64;
    if let ConnectionError::MqttState(StateError::Deserialization(
        rumqttc::Error::PayloadSizeLimitExceeded(size),
    )) = e
    {
        tracing::error!(
            size,
            broker = %settings.url,
            "a message larger than mqtt max_packet_bytes arrived; the broker will redeliver it on every connection. Lower the broker's maximum packet size (Mosquitto: max_packet_size) to at most the gateway's"
        );
        return;
    }
    if was_connected || failures == 1 {
        tracing::warn!(error = %e, broker = %settings.url, retry_ms, "MQTT connection lost; reconnecting");
    } else if failures.is_multiple_of(20) {
        tracing::warn!(error = %e, broker = %settings.url, failures, retry_ms, "MQTT broker still unreachable");
    } else {
        tracing::debug!(error = %e, broker = %settings.url, failures, retry_ms, "MQTT reconnect failed");
    }
}

/// Gateway clock, ms since the epoch.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_with_defaults_and_escapes() {
        let s = MqttSettings::from_url("mqtt://127.0.0.1").unwrap();
        assert_eq!((s.host.as_str(), s.port), ("127.0.0.1", 1883));
        assert_eq!(s.client_id, DEFAULT_CLIENT_ID);
        assert_eq!(s.username, None);
        assert_eq!(s.max_packet_bytes, DEFAULT_MAX_PACKET_BYTES);

        let s = MqttSettings::from_url(
            "mqtt://gw%40county:p%3Ass@broker.local:11883/?client_id=gw-2&keep_alive_s=10&max_packet_bytes=33554432&inflight=50",
        )
        .unwrap();
        assert_eq!(s.host, "broker.local");
        assert_eq!(s.port, 11883);
        assert_eq!(s.username.as_deref(), Some("gw@county"));
        assert_eq!(s.password.as_deref(), Some("p:ss"));
        assert_eq!(s.client_id, "gw-2");
        assert_eq!(s.keep_alive, Duration::from_secs(10));
        assert_eq!(s.max_packet_bytes, 32 * 1024 * 1024);
        assert_eq!(s.inflight, 50);
        assert!(!format!("{s:?}").contains("p:ss"));
        assert!(!s.url().contains("p:ss"));
        assert_eq!(
            s.url(),
            "mqtt://gw@county@broker.local:11883?client_id=gw-2"
        );

        let s = MqttSettings::from_url("tcp://[::1]:1884").unwrap();
        assert_eq!((s.host.as_str(), s.port), ("::1", 1884));
        assert_eq!(s.url(), "mqtt://[::1]:1884?client_id=suyuan-gateway");
    }

    #[test]
    fn bad_urls_are_named() {
        for bad in [
            "http://x",
            "mqtts://x",
            "mqtt://",
            "mqtt://x:port",
            "mqtt://x:70000",
            "mqtt://x/path",
            "mqtt://x?clientid=a",
            "mqtt://x?client_id=",
            "mqtt://x?keep_alive_s=abc",
            "mqtt://x?inflight=0",
            "mqtt://x?max_packet_bytes=10",
            "mqtt://u%zz@x",
            "mqtt://[::1",
        ] {
            assert!(MqttSettings::from_url(bad).is_err(), "{bad}");
        }
    }

    fn delivery(pkid: u16, epoch: u64) -> Delivery {
        let mut publish = Publish::new("suyuan/v1/1/d/telemetry", QoS::AtLeastOnce, "{}");
        publish.pkid = pkid;
        Delivery {
            publish,
            received_at_ms: 0,
            epoch,
        }
    }

    #[tokio::test]
    async fn acks_never_cross_a_reconnect() {
        let settings = MqttSettings::new("127.0.0.1", 1, "gw-test");
        let (client, mut eventloop) = AsyncClient::new(settings.options(), 16);
        let acker = Acker::new(client);
        let sent = acker.ack_all(&[delivery(1, 0), delivery(2, 0)]);
        assert_eq!(sent, vec![AckOutcome::Sent; 2]);
        assert_eq!(acker.queue().pkids, vec![1, 2], "queued in arrival order");
        // The connection drops before the poller wrote them: they are purged, not sent on the next
        // connection (where packet ids 1 and 2 may be other messages).
        acker.next_epoch(&mut eventloop);
        assert!(acker.queue().pkids.is_empty());
        // A delivery of the old connection is not acknowledged any more; one of the new is.
        let mut qos0 = delivery(9, 0);
        qos0.publish.qos = QoS::AtMostOnce;
        assert_eq!(
            acker.ack_all(&[delivery(3, 0), delivery(1, 1), qos0]),
            vec![AckOutcome::Stale, AckOutcome::Sent, AckOutcome::Sent]
        );
        assert_eq!(acker.queue().pkids, vec![1], "nothing to send for QoS 0");
        // Without a connection, writing drops them (the broker redelivers).
        acker.write_queued(&mut eventloop).await;
        assert!(acker.queue().pkids.is_empty());
        acker.close();
        assert_eq!(acker.ack_all(&[delivery(4, 1)]), vec![AckOutcome::Closed]);
    }

    #[test]
    fn backoff_doubles_with_jitter_up_to_the_cap() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(10));
        let mut last_cap = Duration::ZERO;
        for i in 0..12 {
            let cap = (Duration::from_millis(100) * 2u32.pow(i)).min(Duration::from_secs(10));
            let d = b.next_delay();
            assert!(
                d >= cap / 2 && d <= cap,
                "{i}: {d:?} not in [{:?}, {cap:?}]",
                cap / 2
            );
            last_cap = cap;
        }
        assert_eq!(last_cap, Duration::from_secs(10));
        b.reset();
        assert!(b.next_delay() <= Duration::from_millis(100));
    }
}
