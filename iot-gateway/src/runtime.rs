//! The running gateway: MQTT in, checked messages into the database (or the spool), and the
//! acknowledgement only after that.
//!
//! # Tasks
//!
//! ```text
//!  broker ──► poller ──(unbounded channel)──► pipeline ──► Store::write ──► ack, in order
//!              │                                 │   └──► Spool::append_batch (fsync) ──► ack
//!              └── acks go out through the poller's event loop        │
//!                                                drain ◄─────────────┘  read_batch → write → confirm
//!  housekeeping: refusal counts to the database every few seconds, Store::tick about once a minute
//! ```
//!
//! - The **poller** ([`crate::mqtt`]) only polls the event loop; it never waits for the pipeline
//!   or for an acknowledgement.
//! - The **pipeline** takes up to `runtime.batch_max_messages` deliveries (or what arrived within
//!   `runtime.batch_wait_ms`), and on a blocking thread checks each one ([`parse_message`], the
//!   device's registration, the image), writes the batch in one [`Store::write`], and then
//!   acknowledges the batch's messages in arrival order. Refused messages are acknowledged and
//!   counted. When the database is unavailable the raw messages are appended to the [`Spool`]
//!   (one fsync for the batch) and acknowledged; while the spool holds anything, new messages go
//!   there too, so nothing overtakes an older message.
//! - The **drain** writes spooled messages back to the database oldest first, through the same
//!   checks, then confirms them to the spool; it retries with back-off while the database is away.
//! - When a message can be neither written nor spooled (the spool is full, or its disk fails), it
//!   is *not* acknowledged, and neither is anything after it: the pipeline keeps those messages
//!   and retries with back-off. The broker's in-flight window then fills and the broker keeps
//!   the rest — that is the store-and-forward of last resort.

use std::collections::VecDeque;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rumqttc::{AsyncClient, QoS};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, watch, Notify};
use tokio::task::JoinHandle;

use crate::config::GatewayConfig;
use crate::counters::{
    CounterSnapshot, Reason, RecentRefusals, Refusal, RefusalCounters, RefusalEntry,
};
use crate::devices::{DeviceCache, Lookup};
use crate::error::Error;
use crate::image::MediaStore;
use crate::message::{parse_message, Parsed};
use crate::mqtt::{self, now_ms, AckOutcome, Acker, Backoff, Delivery, LinkState, MqttSettings};
use crate::spool::{Spool, SpoolBatch, SpoolStats, SpooledMessage};
use crate::store::{Accepted, AcceptedKind, DeviceKind, Store, StoreError};
use crate::topic::Topics;

/// Most bytes of spooled messages drained in one batch.
const DRAIN_BATCH_BYTES: u64 = 32 * 1024 * 1024;

/// How long [`GatewayHandle::shutdown`] waits for a task before stopping it.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(30);

/// How long the disconnect may take once the last acknowledgement is queued.
const DISCONNECT_WAIT: Duration = Duration::from_secs(5);

/// Starts gateways.
#[derive(Debug)]
pub struct Gateway;

impl Gateway {
    /// Checks the settings, opens the spool (recovering it after a crash) and starts the tasks:
    /// the MQTT connection (which connects, and reconnects, in the background), the pipeline,
    /// the spool's drain and the housekeeping. Call from within a Tokio runtime; blocking work
    /// (the [`Store`], fsyncs, image decoding) runs on its blocking threads.
    ///
    /// Fails on an invalid setting, a spool folder that is locked by another process or damaged,
    /// or a media folder that cannot be created; not on an unreachable broker or database.
    pub async fn start(
        config: GatewayConfig,
        mqtt: MqttSettings,
        store: Arc<dyn Store>,
    ) -> Result<GatewayHandle, Error> {
        config.validate()?;
        mqtt.validate()?;
        let needed = config.images.max_bytes.saturating_add(64 * 1024);
        if mqtt.max_packet_bytes < needed {
            return Err(Error::Config {
                setting: "mqtt.max_packet_bytes",
                problem: format!(
                    "{} cannot hold an image of images.max_bytes ({}) with its topic",
                    mqtt.max_packet_bytes, config.images.max_bytes
                ),
            });
        }
        let topics = Topics::new(&config.topics)?;
        let spool_config = config.spool.clone();
        let media_dir = config.media_dir.clone();
        let spool = tokio::task::spawn_blocking(move || {
            std::fs::create_dir_all(&media_dir)
                .map_err(|e| Error::io("create folder", &media_dir, e))?;
            Spool::open(&spool_config)
        })
        .await
        .map_err(|e| Error::io("open", &config.spool.dir, std::io::Error::other(e)))??;
        if !spool.is_empty() {
            tracing::info!(
                pending = spool.pending(),
                "the spool holds messages from before the restart; they are written once the database is reachable"
            );
        }

        let filters = topics.subscriptions();
        let rc = &config.runtime;
        let core = Arc::new(Core {
            devices: Mutex::new(DeviceCache::new(
                Duration::from_millis(rc.device_refresh_ms),
                Duration::from_millis(rc.unknown_device_ttl_ms),
            )),
            media: MediaStore::new(&config.media_dir),
            recent: RecentRefusals::new(config.recent_refusals),
            spool: Mutex::new(Some(spool)),
            topics,
            store,
            counters: RefusalCounters::new(),
            flush: Mutex::new(FlushState::default()),
            tally: Tally::default(),
            spool_wake: Notify::new(),
            config,
        });
        core.update_spool_flags(&core.lock_spool());

        let (client, eventloop) = AsyncClient::new(mqtt.options(), mqtt::REQUEST_CHANNEL_CAPACITY);
        let acker = Arc::new(Acker::new(client));
        let link = Arc::new(LinkState::default());
        let (stop_tx, stop_rx) = watch::channel(false);
        let (tx, rx) = mpsc::unbounded_channel();
        let rc = &core.config.runtime;
        let poll_settings = mqtt::PollSettings {
            filters: filters.clone(),
            retry_min: Duration::from_millis(rc.retry_min_ms),
            retry_max: Duration::from_millis(rc.retry_max_ms),
            max_queued_qos0: rc.max_queued_qos0,
            url: mqtt.url(),
        };
        let poller = tokio::spawn(mqtt::run(
            eventloop,
            acker.clone(),
            tx,
            link.clone(),
            poll_settings,
            stop_rx.clone(),
        ));
        let pipeline = tokio::spawn(pipeline(
            core.clone(),
            acker.clone(),
            link.clone(),
            rx,
            stop_rx.clone(),
        ));
        let drain = tokio::spawn(drain(core.clone(), stop_rx.clone()));
        let housekeeping = tokio::spawn(housekeeping(core.clone(), stop_rx));
        tracing::info!(broker = %mqtt.url(), ?filters, "gateway started");
        Ok(GatewayHandle {
            core,
            link,
            acker,
            stop: stop_tx,
            tasks: Tasks {
                poller: Some(poller),
                pipeline: Some(pipeline),
                drain: Some(drain),
                housekeeping: Some(housekeeping),
            },
        })
    }
}

/// What the operator sees of a running gateway.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GatewayStats {
    /// Publishes read from the broker (a redelivery counts again).
    pub received: u64,
    /// Messages committed to the database, directly or from the spool.
    pub stored: u64,
    /// Messages refused whole (or in every part), acknowledged and counted by reason.
    pub refused: u64,
    /// Messages appended to the spool while the database was unavailable.
    pub spooled: u64,
    /// Spooled messages taken out of the spool again (stored or refused then).
    pub drained: u64,
    /// Acknowledgements sent.
    pub acked: u64,
    /// Acknowledgements not sent because the connection changed meanwhile (the broker
    /// redelivers those messages; the idempotent writes absorb them).
    pub stale_acks: u64,
    /// Messages received and waiting for the pipeline (held by a slow database or disk).
    pub queued: u64,
    /// QoS 0 messages dropped because too many were waiting.
    pub dropped_qos0: u64,
    /// Connected to the broker now.
    pub connected: bool,
    /// The broker has granted the gateway's subscriptions.
    pub subscribed: bool,
    /// Successful connections so far (1 + reconnections).
    pub connects: u64,
    /// The spool's figures.
    pub spool: SpoolStats,
    /// The spool is at or past `spool.alert_ratio`: the database has been away for long.
    pub spool_nearly_full: bool,
    /// The last append was refused for lack of room: messages are being left with the broker.
    pub spool_full: bool,
    /// Refusals by reason since start.
    pub refusals: CounterSnapshot,
}

/// A running gateway. Dropping it stops every task at once, like a crash (nothing more is
/// acknowledged); call [`shutdown`](Self::shutdown) to stop gracefully.
#[derive(Debug)]
pub struct GatewayHandle {
    core: Arc<Core>,
    link: Arc<LinkState>,
    acker: Arc<Acker>,
    stop: watch::Sender<bool>,
    tasks: Tasks,
}

#[derive(Debug)]
struct Tasks {
    poller: Option<JoinHandle<()>>,
    pipeline: Option<JoinHandle<()>>,
    drain: Option<JoinHandle<()>>,
    housekeeping: Option<JoinHandle<()>>,
}

impl Tasks {
    fn abort_all(&mut self) {
        for task in [
            &mut self.pipeline,
            &mut self.drain,
            &mut self.housekeeping,
            &mut self.poller,
        ] {
            if let Some(t) = task.take() {
                t.abort();
            }
        }
    }
}

impl GatewayHandle {
    /// Counters, connection state and the spool's figures.
    pub fn stats(&self) -> GatewayStats {
        let t = &self.core.tally;
        let spool = self.core.spool_stats();
        GatewayStats {
            received: self.link.received.load(Ordering::Relaxed),
            stored: t.stored.load(Ordering::Relaxed),
            refused: t.refused.load(Ordering::Relaxed),
            spooled: t.spooled.load(Ordering::Relaxed),
            drained: t.drained.load(Ordering::Relaxed),
            acked: t.acked.load(Ordering::Relaxed),
            stale_acks: t.stale_acks.load(Ordering::Relaxed),
            queued: self.link.queued.load(Ordering::Relaxed) as u64,
            dropped_qos0: self.link.dropped_qos0.load(Ordering::Relaxed),
            connected: self.link.connected.load(Ordering::Relaxed),
            subscribed: self.link.subscribed.load(Ordering::Relaxed),
            connects: self.link.connects.load(Ordering::Relaxed),
            spool_nearly_full: t.spool_nearly_full.load(Ordering::Relaxed),
            spool_full: t.spool_full.load(Ordering::Relaxed),
            spool,
            refusals: self.core.counters.snapshot(),
        }
    }

    /// The latest refused messages with their topic and detail, newest last.
    pub fn recent_refusals(&self) -> Vec<RefusalEntry> {
        self.core.recent.list()
    }

    /// Stops gracefully: the pipeline finishes the batch it is on and acknowledges it, the drain
    /// finishes its batch, refusal counts are flushed once more, and the client disconnects.
    /// Messages received but not yet taken into a batch stay unacknowledged, so the broker
    /// delivers them again (to this client id's next session, or to another replica).
    pub async fn shutdown(mut self) {
        self.stop.send_replace(true);
        for task in [
            self.tasks.pipeline.take(),
            self.tasks.drain.take(),
            self.tasks.housekeeping.take(),
        ]
        .into_iter()
        .flatten()
        {
            join_or_abort(task, SHUTDOWN_WAIT).await;
        }
        let core = self.core.clone();
        let _ = tokio::task::spawn_blocking(move || core.flush_refusals()).await;
        // The disconnect is queued behind the last acknowledgements, so they go out first.
        if self.acker.client().try_disconnect().is_err() {
            tracing::debug!("the MQTT event loop had already stopped");
        }
        if let Some(poller) = self.tasks.poller.take() {
            join_or_abort(poller, DISCONNECT_WAIT).await;
        }
        tracing::info!("gateway stopped");
    }

    /// Stops every task at once without acknowledging anything more or disconnecting cleanly,
    /// as a crash would (the broker sees the connection drop). For tests of crash behaviour.
    pub fn abort(mut self) {
        self.tasks.abort_all();
    }
}

impl Drop for GatewayHandle {
    fn drop(&mut self) {
        self.tasks.abort_all();
    }
}

async fn join_or_abort(mut task: JoinHandle<()>, wait: Duration) {
    if tokio::time::timeout(wait, &mut task).await.is_err() {
        tracing::warn!("a gateway task did not stop in time; stopping it");
        task.abort();
    }
}

/// Message counts for [`GatewayStats`].
#[derive(Debug, Default)]
struct Tally {
    stored: AtomicU64,
    refused: AtomicU64,
    spooled: AtomicU64,
    drained: AtomicU64,
    acked: AtomicU64,
    stale_acks: AtomicU64,
    spool_nearly_full: AtomicBool,
    spool_full: AtomicBool,
    /// The last write found the database unavailable (for logging the change only).
    db_down: AtomicBool,
}

/// Refusals not yet added to the database.
#[derive(Debug, Default)]
struct FlushState {
    /// The counters as of the last successful flush.
    flushed: Option<CounterSnapshot>,
    /// Refused messages since then (the newest `recent_refusals`).
    entries: VecDeque<RefusalEntry>,
}

/// Everything the tasks share. Its methods block (database, disk, image decoding) and run on
/// blocking threads.
struct Core {
    config: GatewayConfig,
    topics: Topics,
    store: Arc<dyn Store>,
    media: MediaStore,
    /// `None` after a failed write, until it is opened again (the old handle must release its
    /// folder lock first).
    spool: Mutex<Option<Spool>>,
    devices: Mutex<DeviceCache>,
    counters: RefusalCounters,
    recent: RecentRefusals,
    flush: Mutex<FlushState>,
    tally: Tally,
    /// Wakes the drain when something was spooled.
    spool_wake: Notify,
}

impl std::fmt::Debug for Core {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Core")
            .field("topics", &self.topics)
            .field("media", &self.media)
            .finish_non_exhaustive()
    }
}

/// What to do with one message.
#[derive(Debug)]
enum Decision {
    /// Nothing to store: the message is refused whole, or each of its parts is.
    Refuse(Vec<Refusal>),
    /// Write it; the refused parts are counted once it is.
    Store(Accepted, Vec<Refusal>),
    /// Cannot be decided now (the database or the media disk is away): spool it, or retry.
    Defer,
}

/// The outcome of one accepted message's write.
#[derive(Debug)]
enum WriteResult {
    Stored,
    Rejected(String),
    Unavailable,
}

/// Why a drain step ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DrainStep {
    /// A batch was written and confirmed.
    Progress,
    /// The spool is empty.
    Idle,
    /// The database (or disk) is away; try again later.
    Retry,
}

impl Core {
    fn lock_spool(&self) -> MutexGuard<'_, Option<Spool>> {
        self.spool.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn spool_stats(&self) -> SpoolStats {
        match &*self.lock_spool() {
            Some(spool) => spool.stats(),
            None => SpoolStats {
                pending: 0,
                disk_bytes: 0,
                max_bytes: self.config.spool.max_bytes,
                fill_ratio: 0.0,
                nearly_full: false,
                segments: 0,
                torn_bytes_dropped: 0,
                corrupt_bytes_dropped: 0,
            },
        }
    }

    /// Opens the spool again after a failed write (the failed handle refuses appends because
    /// the file's state after a failed fsync is unknown; reopening checks it record by record).
    fn reopen_spool(&self, slot: &mut Option<Spool>) -> bool {
        if slot.is_some() {
            return true;
        }
        match Spool::open(&self.config.spool) {
            Ok(spool) => {
                tracing::info!("spool reopened");
                *slot = Some(spool);
                true
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot reopen the spool");
                false
            }
        }
    }

    fn update_spool_flags(&self, slot: &Option<Spool>) {
        let Some(spool) = slot else { return };
        let stats = spool.stats();
        let was = self
            .tally
            .spool_nearly_full
            .swap(stats.nearly_full, Ordering::Relaxed);
        if stats.nearly_full && !was {
            tracing::warn!(
                disk_bytes = stats.disk_bytes,
                max_bytes = stats.max_bytes,
                pending = stats.pending,
                "spool is nearly full: the database has been unreachable for long; when the spool is full the gateway stops acknowledging and the broker holds the messages"
            );
        } else if was && !stats.nearly_full {
            tracing::info!(
                disk_bytes = stats.disk_bytes,
                "spool is no longer nearly full"
            );
        }
    }

    /// Decides what to do with one message. With `defer_checks`, only the checks that need
    /// neither the database nor the media folder are made (the spool is not empty, so the
    /// message is spooled and fully checked when drained).
    fn decide(
        &self,
        topic: &str,
        payload: &[u8],
        received_at_ms: i64,
        defer_checks: bool,
    ) -> Decision {
        let parsed = match parse_message(
            &self.topics,
            &self.config.telemetry,
            topic,
            payload,
            received_at_ms,
        ) {
            Ok(p) => p,
            Err(refusal) => return Decision::Refuse(vec![refusal]),
        };
        // Cheap, and keeps an oversized payload out of the spool.
        if matches!(parsed, Parsed::ImageJpeg { .. })
            && payload.len() > self.config.images.max_bytes
        {
            return Decision::Refuse(vec![Refusal::new(
                Reason::ImageTooLarge,
                format!(
                    "{} bytes, limit {}",
                    payload.len(),
                    self.config.images.max_bytes
                ),
            )]);
        }
        if defer_checks {
            return Decision::Defer;
        }
        let from = parsed.topic();
        let lookup = {
            let mut devices = self.devices.lock().unwrap_or_else(|e| e.into_inner());
            devices.lookup(self.store.as_ref(), &from.device)
        };
        let device = match lookup {
            Lookup::Found(d) => d,
            Lookup::Unknown => {
                return Decision::Refuse(vec![Refusal::new(
                    Reason::UnknownDevice,
                    format!("client id {} is not a registered device", from.device),
                )])
            }
            Lookup::Unavailable(e) => {
                tracing::debug!(error = %e, device = %from.device, "cannot look the device up now");
                return Decision::Defer;
            }
        };
        if !device.enabled {
            return Decision::Refuse(vec![Refusal::new(
                Reason::DeviceDisabled,
                format!("device {} is disabled", from.device),
            )]);
        }
        if device.site != from.site {
            return Decision::Refuse(vec![Refusal::new(
                Reason::WrongSite,
                format!(
                    "device {} is registered at site {}, not {}",
                    from.device, device.site, from.site
                ),
            )]);
        }
        let (what, parts) = match parsed {
            Parsed::Telemetry { telemetry, .. } => {
                if telemetry.readings.is_empty() {
                    let mut refusals = telemetry.refusals;
                    if refusals.is_empty() {
                        refusals.push(Refusal::new(Reason::NoValues, "no readings"));
                    }
                    return Decision::Refuse(refusals);
                }
                (
                    AcceptedKind::Telemetry(telemetry.readings),
                    telemetry.refusals,
                )
            }
            Parsed::ImageJpeg { ts_ms, .. } => {
                if device.kind != DeviceKind::Camera {
                    return Decision::Refuse(vec![Refusal::new(
                        Reason::WrongDeviceKind,
                        format!(
                            "device {} is registered as a sensor, not a camera",
                            device.client_id
                        ),
                    )]);
                }
                match self.media.store_jpeg(payload, &self.config.images) {
                    Ok(image) => (AcceptedKind::Image { ts_ms, image }, Vec::new()),
                    Err(e) => match e.refusal() {
                        Some(r) => return Decision::Refuse(vec![r.clone()]),
                        None => {
                            tracing::warn!(error = %e, "cannot store an image now");
                            return Decision::Defer;
                        }
                    },
                }
            }
            Parsed::Status { status, .. } => (AcceptedKind::Status(status), Vec::new()),
        };
        Decision::Store(
            Accepted {
                received_at_ms,
                device_id: device.id,
                site: device.site,
                what,
            },
            parts,
        )
    }

    /// Writes accepted messages in one transaction; when the database rejects the batch, one by
    /// one to find the culprits. Returns one outcome per message; after the first `Unavailable`,
    /// every later one is `Unavailable` too (nothing may overtake it).
    fn write_all(&self, accepted: &[Accepted]) -> Vec<WriteResult> {
        if accepted.is_empty() {
            return Vec::new();
        }
        match self.store.write(accepted) {
            Ok(()) => {
                if self.tally.db_down.swap(false, Ordering::Relaxed) {
                    tracing::info!("database reachable again");
                }
                return accepted.iter().map(|_| WriteResult::Stored).collect();
            }
            Err(StoreError::Unavailable(e)) => {
                if !self.tally.db_down.swap(true, Ordering::Relaxed) {
                    tracing::warn!(error = %e, "database unavailable; messages go to the spool");
                }
                return accepted.iter().map(|_| WriteResult::Unavailable).collect();
            }
            Err(StoreError::Rejected(e)) => {
                tracing::warn!(error = %e, messages = accepted.len(), "the database rejected a batch; writing its messages one by one");
            }
        }
        let mut out = Vec::with_capacity(accepted.len());
        let mut unavailable = false;
        for one in accepted {
            if unavailable {
                out.push(WriteResult::Unavailable);
                continue;
            }
            match self.store.write(std::slice::from_ref(one)) {
                Ok(()) => out.push(WriteResult::Stored),
                Err(StoreError::Rejected(e)) => out.push(WriteResult::Rejected(e)),
                Err(StoreError::Unavailable(_)) => {
                    unavailable = true;
                    out.push(WriteResult::Unavailable);
                }
            }
        }
        out
    }

    /// Decides and writes (or spools) a batch of live deliveries. Returns how many of them, from
    /// the first, are now safe to acknowledge; the rest could be neither written nor spooled.
    fn commit_live(&self, batch: &[Delivery]) -> usize {
        let spooling = self.lock_spool().as_ref().is_some_and(|s| !s.is_empty());
        let mut decisions = Vec::with_capacity(batch.len());
        let mut accepted = Vec::new();
        for d in batch {
            let decision = self.decide(
                &d.publish.topic,
                &d.publish.payload,
                d.received_at_ms,
                spooling,
            );
            decisions.push(match decision {
                Decision::Store(a, parts) => {
                    accepted.push(a);
                    Planned::Store(accepted.len() - 1, parts)
                }
                Decision::Refuse(r) => Planned::Refuse(r),
                Decision::Defer => Planned::Defer,
            });
        }
        // Everything before the first deferred message may be written now; from it on, the
        // messages go to the spool in order.
        let mut cut = decisions
            .iter()
            .position(|p| matches!(p, Planned::Defer))
            .unwrap_or(decisions.len());
        let writable = decisions[..cut]
            .iter()
            .filter(|p| matches!(p, Planned::Store(..)))
            .count();
        let written = self.write_all(&accepted[..writable]);
        if let Some(first) = written
            .iter()
            .position(|w| matches!(w, WriteResult::Unavailable))
        {
            cut = decisions
                .iter()
                .position(|p| matches!(p, Planned::Store(slot, _) if *slot == first))
                .unwrap_or(cut);
        }

        let to_spool: Vec<SpooledMessage> = batch[cut..]
            .iter()
            .zip(&decisions[cut..])
            .filter(|(_, p)| !matches!(p, Planned::Refuse(_)))
            .map(|(d, _)| SpooledMessage {
                topic: d.publish.topic.clone(),
                payload: d.publish.payload.to_vec(),
                received_at_ms: d.received_at_ms,
            })
            .collect();
        let safe = if to_spool.is_empty() || self.append_to_spool(&to_spool) {
            batch.len()
        } else {
            cut
        };
        if safe == batch.len() && self.tally.spool_full.swap(false, Ordering::Relaxed) {
            tracing::info!("messages are safe again (spool has room or the database is back); acknowledging resumes");
        }

        for (i, (d, planned)) in batch[..safe].iter().zip(&decisions[..safe]).enumerate() {
            let topic = &d.publish.topic;
            match planned {
                Planned::Refuse(refusals) => {
                    self.tally.refused.fetch_add(1, Ordering::Relaxed);
                    self.refuse_all(topic, d.received_at_ms, refusals);
                }
                Planned::Store(slot, parts) if i < cut => {
                    self.record_written(topic, d.received_at_ms, written.get(*slot), parts);
                }
                // Spooled (counted when appended); checked and counted again when drained.
                Planned::Store(..) | Planned::Defer => {}
            }
        }
        safe
    }

    fn record_written(
        &self,
        topic: &str,
        received_at_ms: i64,
        written: Option<&WriteResult>,
        parts: &[Refusal],
    ) {
        match written {
            Some(WriteResult::Stored) => {
                self.tally.stored.fetch_add(1, Ordering::Relaxed);
            }
            Some(WriteResult::Rejected(e)) => {
                self.tally.refused.fetch_add(1, Ordering::Relaxed);
                self.refuse(
                    topic,
                    received_at_ms,
                    Refusal::new(Reason::RejectedByDatabase, e.clone()),
                );
            }
            Some(WriteResult::Unavailable) | None => return,
        }
        self.refuse_all(topic, received_at_ms, parts);
    }

    /// Appends to the spool with one fsync. `false`: not durable, do not acknowledge.
    fn append_to_spool(&self, messages: &[SpooledMessage]) -> bool {
        let mut slot = self.lock_spool();
        if !self.reopen_spool(&mut slot) {
            return false;
        }
        let Some(spool) = slot.as_mut() else {
            return false;
        };
        let result = spool.append_batch(messages);
        let ok = match result {
            Ok(_) => {
                // Counted under the lock, so the drain's count never runs ahead of it.
                self.tally
                    .spooled
                    .fetch_add(messages.len() as u64, Ordering::Relaxed);
                true
            }
            Err(e @ Error::SpoolFull { .. }) => {
                if !self.tally.spool_full.swap(true, Ordering::Relaxed) {
                    tracing::error!(error = %e, "spool is full: messages are no longer acknowledged and stay with the broker until the database is back");
                }
                false
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot append to the spool; messages stay unacknowledged");
                *slot = None;
                return false;
            }
        };
        self.update_spool_flags(&slot);
        drop(slot);
        if ok {
            self.spool_wake.notify_one();
        }
        ok
    }

    /// Writes the oldest spooled messages and confirms them.
    fn drain_once(&self) -> DrainStep {
        let batch: SpoolBatch = {
            let mut slot = self.lock_spool();
            if !self.reopen_spool(&mut slot) {
                return DrainStep::Retry;
            }
            let Some(spool) = slot.as_ref() else {
                return DrainStep::Retry;
            };
            if spool.is_empty() {
                return DrainStep::Idle;
            }
            match spool.read_batch(self.config.runtime.batch_max_messages, DRAIN_BATCH_BYTES) {
                Ok(b) => b,
                Err(e) => {
                    tracing::error!(error = %e, "cannot read the spool");
                    *slot = None;
                    return DrainStep::Retry;
                }
            }
        };
        if batch.messages.is_empty() {
            return DrainStep::Idle;
        }
        let mut decisions = Vec::with_capacity(batch.messages.len());
        let mut accepted = Vec::new();
        for m in &batch.messages {
            match self.decide(&m.topic, &m.payload, m.received_at_ms, false) {
                Decision::Store(a, parts) => {
                    accepted.push(a);
                    decisions.push(Planned::Store(accepted.len() - 1, parts));
                }
                Decision::Refuse(r) => decisions.push(Planned::Refuse(r)),
                Decision::Defer => return DrainStep::Retry,
            }
        }
        let written = self.write_all(&accepted);
        if written
            .iter()
            .any(|w| matches!(w, WriteResult::Unavailable))
        {
            return DrainStep::Retry;
        }
        {
            let mut slot = self.lock_spool();
            let Some(spool) = slot.as_mut() else {
                return DrainStep::Retry;
            };
            if let Err(e) = spool.confirm(&batch) {
                // Written but not confirmed: the batch comes again and the idempotent writes
                // absorb it.
                tracing::error!(error = %e, "cannot move the spool's cursor");
                *slot = None;
                return DrainStep::Retry;
            }
            self.tally
                .drained
                .fetch_add(batch.messages.len() as u64, Ordering::Relaxed);
            self.update_spool_flags(&slot);
            if slot.as_ref().is_some_and(Spool::is_empty) {
                tracing::info!("spool drained");
            }
        }
        for (m, planned) in batch.messages.iter().zip(&decisions) {
            match planned {
                Planned::Refuse(refusals) => {
                    self.tally.refused.fetch_add(1, Ordering::Relaxed);
                    self.refuse_all(&m.topic, m.received_at_ms, refusals);
                }
                Planned::Store(slot, parts) => {
                    self.record_written(&m.topic, m.received_at_ms, written.get(*slot), parts);
                }
                Planned::Defer => {}
            }
        }
        DrainStep::Progress
    }

    fn refuse_all(&self, topic: &str, received_at_ms: i64, refusals: &[Refusal]) {
        for r in refusals {
            self.refuse(topic, received_at_ms, r.clone());
        }
    }

    fn refuse(&self, topic: &str, received_at_ms: i64, refusal: Refusal) {
        tracing::debug!(topic, reason = %refusal.reason, detail = %refusal.detail, "refused");
        self.counters.record(refusal.reason);
        let entry = RefusalEntry {
            received_at_ms,
            topic: topic.to_owned(),
            refusal,
        };
        self.recent.push(entry.clone());
        let mut flush = self.flush.lock().unwrap_or_else(|e| e.into_inner());
        if flush.entries.len() >= self.config.recent_refusals.max(1) {
            flush.entries.pop_front();
        }
        flush.entries.push_back(entry);
    }

    /// Adds the refusals counted since the last successful flush to the database; on failure
    /// they stay for the next one.
    fn flush_refusals(&self) {
        let now = self.counters.snapshot();
        let (delta, entries) = {
            let mut flush = self.flush.lock().unwrap_or_else(|e| e.into_inner());
            let delta = match &flush.flushed {
                Some(before) => now.since(before),
                None => now.clone(),
            };
            (delta, std::mem::take(&mut flush.entries))
        };
        if delta.total() == 0 && entries.is_empty() {
            return;
        }
        let entries: Vec<RefusalEntry> = entries.into();
        match self.store.add_refusals(&delta, &entries) {
            Ok(()) => {
                let mut flush = self.flush.lock().unwrap_or_else(|e| e.into_inner());
                flush.flushed = Some(now);
            }
            Err(e) => {
                tracing::debug!(error = %e, "cannot add refusal counts now; keeping them for the next try");
                let mut flush = self.flush.lock().unwrap_or_else(|e| e.into_inner());
                let newer = std::mem::take(&mut flush.entries);
                let capacity = self.config.recent_refusals.max(1);
                let mut all: VecDeque<RefusalEntry> = entries.into_iter().chain(newer).collect();
                while all.len() > capacity {
                    all.pop_front();
                }
                flush.entries = all;
            }
        }
    }

    fn tick(&self) {
        if let Err(e) = self.store.tick(now_ms()) {
            tracing::debug!(error = %e, "cannot evaluate the no-data rules now");
        }
    }
}

/// A decision, with accepted messages moved to their own list (for one `Store::write`).
#[derive(Debug)]
enum Planned {
    Refuse(Vec<Refusal>),
    /// Index into the accepted list, and the refused parts.
    Store(usize, Vec<Refusal>),
    Defer,
}

/// Takes deliveries in batches, commits them, acknowledges them in order.
async fn pipeline(
    core: Arc<Core>,
    acker: Arc<Acker>,
    link: Arc<LinkState>,
    mut rx: mpsc::UnboundedReceiver<Delivery>,
    mut stop: watch::Receiver<bool>,
) {
    let rc = core.config.runtime.clone();
    let batch_wait = Duration::from_millis(rc.batch_wait_ms);
    let mut backoff = Backoff::new(
        Duration::from_millis(rc.retry_min_ms),
        Duration::from_millis(rc.retry_max_ms),
    );
    // Messages that could be neither written nor spooled: retried first, before anything newer.
    let mut held: Vec<Delivery> = Vec::new();
    let took = |d: &Delivery| {
        link.queued.fetch_sub(1, Ordering::Relaxed);
        if d.publish.qos == QoS::AtMostOnce {
            link.queued_qos0.fetch_sub(1, Ordering::Relaxed);
        }
    };
    loop {
        if *stop.borrow() {
            break;
        }
        let mut batch = std::mem::take(&mut held);
        if batch.is_empty() {
            tokio::select! {
                d = rx.recv() => match d {
                    Some(d) => {
                        took(&d);
                        batch.push(d);
                    }
                    None => break,
                },
                _ = stop.wait_for(|s| *s) => break,
            }
        }
        let deadline = tokio::time::Instant::now() + batch_wait;
        let mut bytes: usize = batch.iter().map(|d| d.publish.payload.len()).sum();
        while batch.len() < rc.batch_max_messages && bytes < rc.batch_max_bytes {
            let next = match rx.try_recv() {
                Ok(d) => Some(d),
                Err(mpsc::error::TryRecvError::Disconnected) => None,
                Err(mpsc::error::TryRecvError::Empty) => {
                    tokio::time::timeout_at(deadline, rx.recv())
                        .await
                        .ok()
                        .flatten()
                }
            };
            let Some(d) = next else { break };
            took(&d);
            bytes += d.publish.payload.len();
            batch.push(d);
        }

        let worker = core.clone();
        let joined = tokio::task::spawn_blocking(move || {
            let safe = std::panic::catch_unwind(AssertUnwindSafe(|| worker.commit_live(&batch)));
            (safe, batch)
        })
        .await;
        let Ok((safe, mut batch)) = joined else {
            tracing::error!(
                "the pipeline's worker was cancelled; its messages stay unacknowledged"
            );
            break;
        };
        let safe = safe.unwrap_or_else(|_| {
            tracing::error!("checking a batch panicked; it stays unacknowledged and is retried");
            0
        });
        for outcome in acker.ack_all(&batch[..safe]) {
            match outcome {
                AckOutcome::Sent => core.tally.acked.fetch_add(1, Ordering::Relaxed),
                AckOutcome::Stale => core.tally.stale_acks.fetch_add(1, Ordering::Relaxed),
                AckOutcome::Closed => 0,
            };
        }
        if safe < batch.len() {
            held = batch.split_off(safe);
            let delay = backoff.next_delay();
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = stop.wait_for(|s| *s) => break,
            }
        } else {
            backoff.reset();
        }
    }
}

/// Writes the spool back to the database whenever it holds something.
async fn drain(core: Arc<Core>, mut stop: watch::Receiver<bool>) {
    let rc = &core.config.runtime;
    let mut backoff = Backoff::new(
        Duration::from_millis(rc.retry_min_ms),
        Duration::from_millis(rc.retry_max_ms),
    );
    loop {
        if *stop.borrow() {
            break;
        }
        let worker = core.clone();
        let step = tokio::task::spawn_blocking(move || {
            std::panic::catch_unwind(AssertUnwindSafe(|| worker.drain_once()))
                .unwrap_or(DrainStep::Retry)
        })
        .await
        .unwrap_or(DrainStep::Retry);
        match step {
            DrainStep::Progress => backoff.reset(),
            DrainStep::Idle => {
                backoff.reset();
                tokio::select! {
                    _ = core.spool_wake.notified() => {}
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    _ = stop.wait_for(|s| *s) => break,
                }
            }
            DrainStep::Retry => {
                let delay = backoff.next_delay();
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = stop.wait_for(|s| *s) => break,
                }
            }
        }
    }
}

/// Refusal counts to the database, and the no-data rules' clock.
async fn housekeeping(core: Arc<Core>, mut stop: watch::Receiver<bool>) {
    let rc = &core.config.runtime;
    let mut flush = tokio::time::interval(Duration::from_millis(rc.refusal_flush_ms));
    flush.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut tick = tokio::time::interval(Duration::from_millis(rc.tick_ms));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let work: fn(&Core) = tokio::select! {
            _ = flush.tick() => Core::flush_refusals,
            _ = tick.tick() => Core::tick,
            _ = stop.wait_for(|s| *s) => break,
        };
        let worker = core.clone();
        let _ = tokio::task::spawn_blocking(move || work(&worker)).await;
    }
}
