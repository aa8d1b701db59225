//! The embedded MQTT broker of the one-command run (`suyuan serve`): rumqttd, in-process, on a
//! thread and runtime of its own.
//!
//! What rumqttd 0.20 does, as far as the gateway relies on it:
//!
//! - QoS 1 both ways; deliveries to a subscriber must be acknowledged in order (an ack out of
//!   order is an error to it — the gateway acknowledges in arrival order and never sends an ack
//!   across a reconnect).
//! - Persistent sessions (`clean_session = false`), **in memory**: a gateway that reconnects
//!   gets the messages it had not acknowledged, but a restart of the process loses the broker's
//!   state — messages a device published and the broker acknowledged, that the gateway had not
//!   yet stored, are gone with it. For a delivery guarantee across crashes of the whole machine,
//!   run Mosquitto with persistence instead (`SUYUAN_MQTT_URL`).
//! - Retained messages (not delivered to shared subscriptions, as MQTT 5 specifies).
//! - Shared subscriptions `$share/{group}/{filter}`, round robin. When a member with a persistent
//!   session disconnects, rumqttd moves the group's cursor back to that member's first
//!   unacknowledged message, so the other members get it (and possibly messages after it again:
//!   the idempotent writes absorb those).
//! - Messages live in an in-memory log per subscription filter of `log_segments` ×
//!   `log_segment_bytes`; a subscriber further behind than that (a gateway away for long during
//!   a burst) skips ahead and those messages are lost, so the log is sized generously.
//! - A publish larger than `max_packet_bytes` disconnects its publisher. The default equals the
//!   gateway client's [`DEFAULT_MAX_PACKET_BYTES`], so
//!   anything the broker accepts, the gateway can read (and refuse when it is over the image
//!   limit) — a larger packet would break the gateway's connection on every redelivery.
//!
//! rumqttd logs every client's disconnect, some at error level; filter its logs with
//! [`LOG_DIRECTIVE`]. Stopping an [`EmbeddedBroker`] stops listening and closes every connection;
//! rumqttd's router thread (and its in-memory log) stays until the process exits — the embedded
//! broker is meant to live as long as the process.

use std::net::{SocketAddr, TcpListener};
use std::sync::mpsc as std_mpsc;
use std::time::Duration;

use rumqttd::protocol::v4::V4;
use rumqttd::{
    ConnectionSettings, LinkType, Router, RouterConfig, Server, ServerSettings, Strategy,
};
use tokio::sync::oneshot;

use crate::mqtt::DEFAULT_MAX_PACKET_BYTES;

/// A `tracing` filter directive that keeps rumqttd's logs at warnings and errors; add it to the
/// process's filter (e.g. `EnvFilter::new("info,rumqttd=warn")`).
pub const LOG_DIRECTIVE: &str = "rumqttd=warn";

/// Settings of the embedded broker; the defaults suit the one-machine run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerConfig {
    /// Largest packet accepted from a client (64 MiB, the gateway's own maximum).
    pub max_packet_bytes: usize,
    /// Unacknowledged QoS 1 messages out to one client at a time (100).
    pub max_inflight: usize,
    /// Most clients connected at once (1,000: a county's devices and the gateway).
    pub max_connections: usize,
    /// How long a new connection may take to send its CONNECT packet (10 s).
    pub connect_timeout_ms: u16,
    /// Size of one segment of the in-memory message log (32 MiB).
    pub log_segment_bytes: usize,
    /// Segments kept per subscription filter (8, so 256 MiB at most per filter).
    pub log_segments: usize,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        BrokerConfig {
            max_packet_bytes: DEFAULT_MAX_PACKET_BYTES,
            max_inflight: 100,
            max_connections: 1_000,
            connect_timeout_ms: 10_000,
            log_segment_bytes: 32 * 1024 * 1024,
            log_segments: 8,
        }
    }
}

/// Why the embedded broker did not start.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    /// Something else listens on the address — most likely another MQTT broker.
    #[error("port {0} is taken (is another MQTT broker such as Mosquitto running?); use --mqtt-listen ADDR or SUYUAN_MQTT_URL to use that broker")]
    PortTaken(SocketAddr),
    /// The address cannot be listened on for another reason (not a local address, no
    /// permission for a port below 1024, ...).
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address asked for.
        addr: SocketAddr,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// A setting is out of range.
    #[error("invalid embedded broker setting {setting}: {problem}")]
    Config {
        /// The setting's name in [`BrokerConfig`].
        setting: &'static str,
        /// What is wrong with it.
        problem: String,
    },
    /// The broker's thread or runtime could not be started.
    #[error("the embedded MQTT broker could not start: {0}")]
    Start(String),
}

/// A running embedded broker. Dropping it stops it (see the module doc for what remains).
#[derive(Debug)]
pub struct EmbeddedBroker {
    addr: SocketAddr,
    server: ServerThread,
}

/// A server on a thread of its own, told to stop through a channel; stopping waits for the thread, so
/// that its port and connections are gone when it returns. Dropping it stops it.
#[derive(Debug)]
pub(crate) struct ServerThread {
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ServerThread {
    pub(crate) fn new(stop: oneshot::Sender<()>, thread: std::thread::JoinHandle<()>) -> Self {
        ServerThread {
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    pub(crate) fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for ServerThread {
    fn drop(&mut self) {
        self.stop();
    }
}

impl EmbeddedBroker {
    /// Starts the broker on `listen` (port 0 picks a free port; see [`local_addr`](Self::local_addr))
    /// and returns once it accepts connections.
    ///
    /// This broker checks no credentials and no topics: it only listens on a loopback address
    /// (for tests and benches on one machine). Devices are served by
    /// [`DeviceBroker`](crate::front::DeviceBroker), which puts this broker behind a login and
    /// its device front.
    pub fn start(listen: SocketAddr, config: BrokerConfig) -> Result<EmbeddedBroker, BrokerError> {
        Self::start_with_login(listen, config, None)
    }

    /// [`start`](Self::start), requiring the one login `(user, password)` when one is given.
    /// Without a login the address must be a loopback address.
    pub fn start_with_login(
        listen: SocketAddr,
        config: BrokerConfig,
        login: Option<(String, String)>,
    ) -> Result<EmbeddedBroker, BrokerError> {
        validate(&config)?;
        if login.is_none() && !listen.ip().is_loopback() {
            return Err(BrokerError::Config {
                setting: "listen",
                problem: format!(
                    "{listen}: a broker without a login listens on a loopback address only"
                ),
            });
        }
        // A clear error when the port is taken, before rumqttd (which would only log it). Binding
        // also resolves port 0 to a free port.
        let addr = match TcpListener::bind(listen) {
            Ok(probe) => probe.local_addr().map_err(|source| BrokerError::Listen {
                addr: listen,
                source,
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
                return Err(BrokerError::PortTaken(listen))
            }
            Err(source) => {
                return Err(BrokerError::Listen {
                    addr: listen,
                    source,
                })
            }
        };

        let router_config = RouterConfig {
            max_connections: config.max_connections,
            max_outgoing_packet_count: 200,
            max_segment_size: config.log_segment_bytes,
            max_segment_count: config.log_segments,
            custom_segment: None,
            initialized_filters: None,
            shared_subscriptions_strategy: Strategy::RoundRobin,
        };
        let server_settings = ServerSettings {
            name: "suyuan-mqtt".to_owned(),
            listen: addr,
            tls: None,
            next_connection_delay_ms: 1,
            connections: ConnectionSettings {
                connection_timeout_ms: config.connect_timeout_ms,
                max_payload_size: config.max_packet_bytes,
                max_inflight_count: config.max_inflight,
                auth: login.map(|(user, password)| [(user, password)].into_iter().collect()),
                external_auth: None,
                dynamic_filters: true,
            },
        };

        let (ready_tx, ready_rx) = std_mpsc::channel::<Result<(), BrokerError>>();
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("mqtt-broker".to_owned())
            .spawn(move || serve(addr, router_config, server_settings, ready_tx, stop_rx))
            .map_err(|e| BrokerError::Start(e.to_string()))?;
        match ready_rx.recv_timeout(Duration::from_secs(10)) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                let _ = thread.join();
                return Err(e);
            }
            Err(_) => {
                return Err(BrokerError::Start(
                    "the broker thread did not report back".into(),
                ))
            }
        }
        tracing::info!(%addr, "embedded MQTT broker listening");
        Ok(EmbeddedBroker {
            addr,
            server: ServerThread::new(stop_tx, thread),
        })
    }

    /// The address it listens on (with the actual port when 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// A URL for clients on this machine: `mqtt://127.0.0.1:{port}` (the loopback address when
    /// listening on every interface).
    pub fn url(&self) -> String {
        url_of(self.addr)
    }

    /// Stops listening and closes every connection (clients see the broker go away).
    pub fn shutdown(mut self) {
        self.server.stop();
    }
}

/// `mqtt://{host}:{port}` for clients on this machine (the loopback address for an unspecified one).
pub(crate) fn url_of(addr: SocketAddr) -> String {
    let host = match addr {
        SocketAddr::V4(a) if a.ip().is_unspecified() => "127.0.0.1".to_owned(),
        SocketAddr::V4(a) => a.ip().to_string(),
        SocketAddr::V6(a) if a.ip().is_unspecified() => "[::1]".to_owned(),
        SocketAddr::V6(a) => format!("[{}]", a.ip()),
    };
    format!("mqtt://{host}:{}", addr.port())
}

fn validate(config: &BrokerConfig) -> Result<(), BrokerError> {
    let bad = |setting, problem: &str| BrokerError::Config {
        setting,
        problem: problem.to_owned(),
    };
    if config.max_packet_bytes < 64 * 1024 {
        return Err(bad("max_packet_bytes", "must be at least 64 KiB"));
    }
    if config.max_inflight == 0 || config.max_inflight > usize::from(u16::MAX) {
        return Err(bad("max_inflight", "must be 1 to 65535"));
    }
    if config.max_connections == 0 {
        return Err(bad("max_connections", "must be positive"));
    }
    // rumqttd refuses (panics on) smaller values.
    if config.log_segment_bytes < 1024 {
        return Err(bad("log_segment_bytes", "must be at least 1 KiB"));
    }
    if config.log_segments == 0 {
        return Err(bad("log_segments", "must be positive"));
    }
    Ok(())
}

/// The broker thread: a current-thread runtime running rumqttd's server until told to stop;
/// dropping the runtime then closes every connection.
fn serve(
    addr: SocketAddr,
    router_config: RouterConfig,
    settings: ServerSettings,
    ready: std_mpsc::Sender<Result<(), BrokerError>>,
    stop: oneshot::Receiver<()>,
) {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            let _ = ready.send(Err(BrokerError::Start(e.to_string())));
            return;
        }
    };
    runtime.block_on(async move {
        let router_tx = Router::new(0, router_config).spawn();
        let mut server = Server::new(settings, router_tx, V4);
        let start = server.start(LinkType::Remote);
        tokio::pin!(start);
        // The server binds before its first await, so one poll tells whether it listens.
        tokio::select! {
            biased;
            result = &mut start => {
                let e = match result {
                    Ok(()) => BrokerError::Start("the server stopped at once".into()),
                    Err(e) => bind_error(addr, &e),
                };
                let _ = ready.send(Err(e));
                return;
            }
            () = std::future::ready(()) => {
                let _ = ready.send(Ok(()));
            }
        }
        tokio::select! {
            result = &mut start => {
                if let Err(e) = result {
                    tracing::error!(error = %e, "embedded MQTT broker stopped");
                }
            }
            _ = stop => {}
        }
    });
}

fn bind_error(addr: SocketAddr, e: &(dyn std::error::Error + 'static)) -> BrokerError {
    let io = e.source().and_then(|s| s.downcast_ref::<std::io::Error>());
    match io {
        Some(io) if io.kind() == std::io::ErrorKind::AddrInUse => BrokerError::PortTaken(addr),
        Some(io) => BrokerError::Listen {
            addr,
            source: std::io::Error::new(io.kind(), io.to_string()),
        },
        None => BrokerError::Start(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_taken_port_is_named_with_the_way_out() {
        let taken = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = taken.local_addr().unwrap();
        let err = EmbeddedBroker::start(addr, BrokerConfig::default()).unwrap_err();
        assert!(
            matches!(err, BrokerError::PortTaken(a) if a == addr),
            "{err}"
        );
        let message = err.to_string();
        assert!(message.contains(&addr.to_string()), "{message}");
        assert!(message.contains("Mosquitto"), "{message}");
        assert!(
            message.contains("--mqtt-listen ADDR or SUYUAN_MQTT_URL"),
            "{message}"
        );
    }

    #[test]
    fn starts_on_a_free_port_and_stops() {
        let broker =
            EmbeddedBroker::start("127.0.0.1:0".parse().unwrap(), BrokerConfig::default()).unwrap();
        let addr = broker.local_addr();
        assert_ne!(addr.port(), 0);
        assert_eq!(broker.url(), format!("mqtt://127.0.0.1:{}", addr.port()));
        // It holds the port now.
        assert!(matches!(
            EmbeddedBroker::start(addr, BrokerConfig::default()),
            Err(BrokerError::PortTaken(_))
        ));
        broker.shutdown();
        // And gives it back.
        let again = EmbeddedBroker::start(addr, BrokerConfig::default()).unwrap();
        drop(again);
    }

    #[test]
    fn bad_settings_are_refused() {
        let config = BrokerConfig {
            log_segment_bytes: 10,
            ..BrokerConfig::default()
        };
        assert!(matches!(
            EmbeddedBroker::start("127.0.0.1:0".parse().unwrap(), config),
            Err(BrokerError::Config {
                setting: "log_segment_bytes",
                ..
            })
        ));
    }
}
