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

mod commit;
mod core;
mod decide;
mod refusals;
mod spooling;
mod tasks;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use rumqttc::AsyncClient;
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use self::core::Core;
use crate::config::GatewayConfig;
use crate::counters::{CounterSnapshot, RefusalEntry};
use crate::error::Error;
use crate::mqtt::{self, Acker, LinkState, MqttSettings};
use crate::spool::{Spool, SpoolStats};
use crate::store::Store;
use crate::topic::Topics;

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
        let core = Arc::new(Core::new(config, topics, store, spool));
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
        let pipeline = tokio::spawn(tasks::pipeline(
            core.clone(),
            acker.clone(),
            link.clone(),
            rx,
            stop_rx.clone(),
        ));
        let drain = tokio::spawn(tasks::drain(core.clone(), stop_rx.clone()));
        let housekeeping = tokio::spawn(tasks::housekeeping(core.clone(), stop_rx));
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
