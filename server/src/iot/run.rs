//! Running the gateway: inside `suyuan serve` (with the embedded broker unless `SUYUAN_MQTT_URL` names
//! another) or alone as `suyuan gateway`.
//!
//! The gateway gets a Tokio runtime of its own on its own thread, so that ingestion at full speed never
//! shares a thread with the HTTP workers, and a slow database never stalls a page.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use suyuan_core::Database;
use suyuan_iot_gateway::broker::{BrokerConfig, BrokerError};
use suyuan_iot_gateway::front::DeviceBroker;
use suyuan_iot_gateway::mqtt::MqttSettings;
use suyuan_iot_gateway::runtime::{Gateway, GatewayHandle, GatewayStats};
use suyuan_iot_gateway::GatewayConfig;

use super::store::CoreStore;

/// Messages per database transaction.
pub const BATCH_MESSAGES: usize = 1_000;

/// Which broker the gateway reads from.
#[derive(Debug, Clone)]
pub enum BrokerChoice {
    /// Start the embedded broker for devices on this address (the one-command run); a taken address
    /// is an error.
    Embedded(SocketAddr),
    /// The same on this address, or on a free port when it is taken (the address was not asked for:
    /// a machine with Mosquitto on 1883 still runs the demo). [`RunningGateway::broker_moved`] says
    /// whether it moved.
    EmbeddedPreferred(SocketAddr),
    /// Connect to a running broker (`mqtt://user:pass@host:port?client_id=…`), subscribing through the
    /// shared subscription group when one is given (several replicas).
    External {
        url: String,
        share_group: Option<String>,
    },
}

/// A running gateway (and the embedded broker, when it started one). Dropping it stops both.
#[derive(Debug)]
pub struct RunningGateway {
    handle: Option<GatewayHandle>,
    runtime: Option<tokio::runtime::Runtime>,
    broker: Option<DeviceBroker>,
    /// The broker's address as devices reach it.
    pub broker_url: String,
    /// The preferred address was taken and the embedded broker listens on another port.
    pub broker_moved: bool,
}

impl RunningGateway {
    /// Starts the broker (if embedded) and the gateway over `db`, keeping the spool under `data` and the
    /// camera images in `media` (`data/media` when `None`).
    pub fn start(
        db: Database,
        data: &Path,
        media: Option<&Path>,
        broker: BrokerChoice,
    ) -> anyhow::Result<RunningGateway> {
        let mut config = GatewayConfig::under_data(data);
        // A thousand messages per transaction: the commit's fixed costs shared by more readings (measured
        // by `cargo bench --bench gateway`). The broker must allow twice that in flight.
        config.runtime.batch_max_messages = BATCH_MESSAGES;
        if let Some(media) = media {
            config.media_dir = media.to_path_buf();
        }
        if let BrokerChoice::External { share_group, .. } = &broker {
            // Replicas on an external broker split the stream through one shared subscription
            // (`$share/suyuan/...`). A single gateway subscribes plainly: Mosquitto keeps plain
            // subscriptions across its own restarts, and shared ones not.
            config.topics.share_group = share_group.clone();
        }
        let store = Arc::new(CoreStore::new(db, config.rules.clone()));
        let broker_config = BrokerConfig {
            max_inflight: 2 * BATCH_MESSAGES,
            ..BrokerConfig::default()
        };
        let start_embedded =
            |addr| DeviceBroker::start(addr, broker_config.clone(), &config.topics, store.clone());
        let (broker, mut mqtt, broker_moved) = match broker {
            BrokerChoice::Embedded(addr) => {
                let b = start_embedded(addr)?;
                let mqtt = MqttSettings::from_url(&b.gateway_url())?;
                (Some(b), mqtt, false)
            }
            BrokerChoice::EmbeddedPreferred(addr) => {
                let (b, moved) = match start_embedded(addr) {
                    Ok(b) => (b, false),
                    Err(BrokerError::PortTaken(_)) => {
                        (start_embedded(SocketAddr::new(addr.ip(), 0))?, true)
                    }
                    Err(e) => return Err(e.into()),
                };
                let mqtt = MqttSettings::from_url(&b.gateway_url())?;
                (Some(b), mqtt, moved)
            }
            BrokerChoice::External { url, .. } => (
                None,
                MqttSettings::from_url(&url).context("SUYUAN_MQTT_URL")?,
                false,
            ),
        };
        if mqtt.client_id.is_empty() {
            mqtt.client_id = suyuan_iot_gateway::mqtt::DEFAULT_CLIENT_ID.into();
        }
        let broker_url = broker
            .as_ref()
            .map_or_else(|| mqtt.url(), DeviceBroker::url);
        // Built and started on a thread of its own: the caller may be inside an async runtime.
        let (runtime, handle) = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .thread_name("gateway")
                .enable_all()
                .build()
                .context("starting the gateway's runtime")?;
            let handle = runtime
                .block_on(Gateway::start(config, mqtt, store))
                .context("starting the IoT gateway")?;
            anyhow::Ok((runtime, handle))
        })
        .join()
        .map_err(|_| anyhow::anyhow!("the gateway's start-up thread panicked"))??;
        Ok(RunningGateway {
            handle: Some(handle),
            runtime: Some(runtime),
            broker,
            broker_url,
            broker_moved,
        })
    }

    /// Counters of the running gateway.
    pub fn stats(&self) -> Option<GatewayStats> {
        self.handle.as_ref().map(GatewayHandle::stats)
    }

    /// Stops gracefully: the batch in hand is written and acknowledged, then the broker stops.
    pub fn stop(mut self) {
        self.stop_now();
    }

    fn stop_now(&mut self) {
        let (handle, runtime) = (self.handle.take(), self.runtime.take());
        // On a thread of its own: the caller may itself be inside an async runtime (the HTTP server's),
        // where blocking on another runtime is not allowed.
        let stopped = std::thread::spawn(move || {
            if let Some(rt) = runtime {
                if let Some(handle) = handle {
                    rt.block_on(handle.shutdown());
                }
                rt.shutdown_timeout(std::time::Duration::from_secs(5));
            }
        })
        .join();
        if stopped.is_err() {
            tracing::error!("the gateway did not stop cleanly");
        }
        if let Some(b) = self.broker.take() {
            b.shutdown();
        }
    }
}

impl Drop for RunningGateway {
    fn drop(&mut self) {
        self.stop_now();
    }
}
