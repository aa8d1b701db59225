//! The devices' door to the embedded broker: an MQTT 3.1.1 front on the public port that checks
//! every device's credentials and topics, in front of rumqttd on an internal loopback port.
//!
//! rumqttd 0.20 can check a login (`external_auth`) but has no topic ACLs (its tenant prefixes need
//! TLS client certificates), so on its own any device could publish under another device's topics
//! or subscribe to `#`. Here:
//!
//! - rumqttd listens on `127.0.0.1:0` and accepts only a random login made for this process, which
//!   the gateway and this front use ([`DeviceBroker::gateway_url`]);
//! - a device connects to the front with client id = user name = its registered client id and the
//!   password the API issued; the [`DeviceRegistry`] checks them (and that the device is enabled).
//!   A last will is allowed only on the device's own status topic. A refused CONNECT is answered
//!   with a CONNACK refusal code, counted as `bad_credentials` and closed;
//! - after that the front reads each packet from the device with rumqttc's MQTT codec: a PUBLISH
//!   must be on `{prefix}/{its site}/{its client id}/telemetry | status | image/jpeg/{ts}`, or the
//!   connection is closed and counted as `foreign_topic` (the message never reaches the broker);
//!   a SUBSCRIBE is answered with a failure SUBACK (devices read nothing); everything else is
//!   forwarded as it came. The broker's packets to the device are copied through whole;
//! - every [`RECHECK_EVERY`] the front asks the registry for the current credentials and closes
//!   the connection of a device that was disabled or whose password was rotated since it
//!   connected.

use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener as StdListener};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::BytesMut;
use rumqttc::mqttbytes::{self, v4, PacketType, Protocol};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{oneshot, Notify, Semaphore};

use crate::broker::{BrokerConfig, BrokerError, EmbeddedBroker, ServerThread};
use crate::config::TopicConfig;
use crate::counters::{Reason, Refusal, RefusalEntry};
use crate::store::StoreError;
use crate::topic::{ClientId, SiteId, Topics};

/// How often open connections are checked against the registry (a disabled or rotated device is
/// disconnected within about this long).
pub const RECHECK_EVERY: Duration = Duration::from_secs(2);

/// Password checks running at once: a flood of connection attempts must not start a hash
/// computation (and its memory) per attempt.
const CONCURRENT_LOGINS: usize = 4;

/// The device registry, as the front checks connections against it. The `suyuan` binary
/// implements it over the platform database. Calls block; the front makes them from blocking
/// threads.
pub trait DeviceRegistry: Send + Sync + 'static {
    /// The device `client_id` when `password` is its current password and it is enabled.
    fn authenticate(
        &self,
        client_id: &ClientId,
        password: &str,
    ) -> Result<Option<DeviceGrant>, StoreError>;

    /// The current credential stamp of every enabled device: a connection made under another
    /// stamp (or of a device absent here) is closed.
    fn credentials(&self) -> Result<HashMap<ClientId, String>, StoreError>;

    /// Records a refused connection or publish (shown with the gateway's refusals).
    fn refused(&self, entry: &RefusalEntry) -> Result<(), StoreError>;
}

/// What an authenticated device may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceGrant {
    /// The only site it publishes for.
    pub site: SiteId,
    /// Changes whenever its credentials change (rotation); compared with
    /// [`DeviceRegistry::credentials`].
    pub stamp: String,
}

/// The embedded broker with its device front: what `suyuan serve` runs.
#[derive(Debug)]
pub struct DeviceBroker {
    addr: SocketAddr,
    // Declared before `internal`, so that dropping stops the front (closing every device's
    // connection) before the broker behind it.
    front: ServerThread,
    internal: EmbeddedBroker,
    login: (String, String),
}

impl DeviceBroker {
    /// Starts rumqttd on an internal loopback port and the front on `listen` (port 0 picks a free
    /// port). A taken `listen` is [`BrokerError::PortTaken`].
    pub fn start(
        listen: SocketAddr,
        config: BrokerConfig,
        topics: &TopicConfig,
        registry: Arc<dyn DeviceRegistry>,
    ) -> Result<DeviceBroker, BrokerError> {
        let topics = Topics::new(topics).map_err(|e| BrokerError::Config {
            setting: "topics.prefix",
            problem: e.to_string(),
        })?;
        let listener = match StdListener::bind(listen) {
            Ok(l) => l,
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
        let listen_err = |source| BrokerError::Listen {
            addr: listen,
            source,
        };
        let addr = listener.local_addr().map_err(listen_err)?;
        listener.set_nonblocking(true).map_err(listen_err)?;

        let login = ("suyuan-internal".to_owned(), random_secret());
        let internal = EmbeddedBroker::start_with_login(
            SocketAddr::from(([127, 0, 0, 1], 0)),
            config.clone(),
            Some(login.clone()),
        )?;
        let shared = Arc::new(Shared {
            registry,
            topics,
            internal: internal.local_addr(),
            login: login.clone(),
            max_packet: config.max_packet_bytes,
            connect_timeout: Duration::from_millis(config.connect_timeout_ms.into()),
            logins: Semaphore::new(CONCURRENT_LOGINS),
            live: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(0),
        });
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<(), String>>();
        let thread = std::thread::Builder::new()
            .name("mqtt-front".to_owned())
            .spawn(move || run_front(listener, shared, ready_tx, stop_rx))
            .map_err(|e| BrokerError::Start(e.to_string()))?;
        match ready_rx.recv_timeout(Duration::from_secs(10)) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                let _ = thread.join();
                return Err(BrokerError::Start(e));
            }
            Err(_) => {
                return Err(BrokerError::Start(
                    "the MQTT front did not report back".into(),
                ))
            }
        }
        tracing::info!(%addr, "MQTT broker listening for devices (credentials and topics checked)");
        Ok(DeviceBroker {
            addr,
            front: ServerThread::new(stop_tx, thread),
            internal,
            login,
        })
    }

    /// The address devices connect to (with the actual port when 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The URL devices use: `mqtt://127.0.0.1:{port}` (the loopback address when listening on
    /// every interface).
    pub fn url(&self) -> String {
        crate::broker::url_of(self.addr)
    }

    /// The URL the gateway connects with: the internal port and this process's login.
    pub fn gateway_url(&self) -> String {
        let (user, pass) = &self.login;
        let port = self.internal.local_addr().port();
        format!("mqtt://{user}:{pass}@127.0.0.1:{port}")
    }

    /// Stops the front (closing every device's connection), then the broker.
    pub fn shutdown(mut self) {
        self.front.stop();
    }
}

fn random_secret() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 24];
    rand::thread_rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// What every connection task shares.
struct Shared {
    registry: Arc<dyn DeviceRegistry>,
    topics: Topics,
    internal: SocketAddr,
    login: (String, String),
    max_packet: usize,
    connect_timeout: Duration,
    logins: Semaphore,
    /// Open device connections, by connection number.
    live: Mutex<HashMap<u64, Live>>,
    next_id: AtomicU64,
}

struct Live {
    client_id: ClientId,
    stamp: String,
    close: Arc<Notify>,
}

impl Shared {
    fn live(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Live>> {
        self.live.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records a refusal from a blocking thread; a failure to record is logged, never fatal.
    async fn refuse(self: &Arc<Self>, topic: String, refusal: Refusal) {
        tracing::warn!(%topic, %refusal, "MQTT connection refused");
        let entry = RefusalEntry {
            received_at_ms: now_ms(),
            topic,
            refusal,
        };
        let shared = Arc::clone(self);
        let recorded = tokio::task::spawn_blocking(move || shared.registry.refused(&entry)).await;
        if let Ok(Err(e)) = recorded {
            tracing::error!(error = %e, "could not record an MQTT refusal");
        }
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The front's thread: accepts connections and rechecks open ones until told to stop; dropping
/// the runtime then closes every connection.
fn run_front(
    listener: StdListener,
    shared: Arc<Shared>,
    ready: std::sync::mpsc::Sender<Result<(), String>>,
    stop: oneshot::Receiver<()>,
) {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            let _ = ready.send(Err(e.to_string()));
            return;
        }
    };
    runtime.block_on(async move {
        let listener = match tokio::net::TcpListener::from_std(listener) {
            Ok(l) => l,
            Err(e) => {
                let _ = ready.send(Err(e.to_string()));
                return;
            }
        };
        let _ = ready.send(Ok(()));
        tokio::spawn(recheck(Arc::clone(&shared)));
        let accept = async {
            loop {
                match listener.accept().await {
                    Ok((stream, peer)) => {
                        let shared = Arc::clone(&shared);
                        tokio::spawn(async move {
                            if let Err(e) = serve_device(stream, &shared).await {
                                tracing::debug!(%peer, error = %e, "MQTT device connection ended");
                            }
                        });
                    }
                    Err(e) => {
                        // Out of file descriptors and the like: wait rather than spin.
                        tracing::warn!(error = %e, "MQTT accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            }
        };
        tokio::select! {
            () = accept => {}
            _ = stop => {}
        }
    });
}

/// Closes the connections whose device was disabled or whose credentials changed.
async fn recheck(shared: Arc<Shared>) {
    let mut every = tokio::time::interval(RECHECK_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        if shared.live().is_empty() {
            continue;
        }
        let registry = Arc::clone(&shared.registry);
        let current = match tokio::task::spawn_blocking(move || registry.credentials()).await {
            Ok(Ok(current)) => current,
            Ok(Err(e)) => {
                // The database is away: keep the connections (the gateway spools meanwhile).
                tracing::warn!(error = %e, "cannot recheck MQTT connections");
                continue;
            }
            Err(_) => continue,
        };
        for live in shared.live().values() {
            if current.get(&live.client_id) != Some(&live.stamp) {
                tracing::info!(client_id = %live.client_id, "closing the connection of a disabled or rotated device");
                live.close.notify_one();
            }
        }
    }
}

/// Why a connection ended early.
#[derive(Debug, thiserror::Error)]
enum Ended {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("malformed MQTT: {0}")]
    Mqtt(#[from] mqttbytes::Error),
    #[error("{0}")]
    Protocol(&'static str),
}

/// Reads one whole packet: its fixed header and its bytes (`None` when the peer closed).
/// Cancel-safe: what was read stays in `buf`.
async fn read_frame<R: AsyncRead + Unpin>(
    stream: &mut R,
    buf: &mut BytesMut,
    max: usize,
) -> Result<Option<(mqttbytes::FixedHeader, BytesMut)>, Ended> {
    loop {
        match mqttbytes::check(buf.iter(), max) {
            Ok(header) => return Ok(Some((header, buf.split_to(header.frame_length())))),
            Err(mqttbytes::Error::InsufficientBytes(n)) => {
                buf.reserve(n);
                if stream.read_buf(buf).await? == 0 {
                    return Ok(None);
                }
            }
            Err(e) => return Err(e.into()),
        }
    }
}

async fn send(stream: &mut TcpStream, packet: v4::Packet) -> Result<(), Ended> {
    let mut out = BytesMut::new();
    packet.write(&mut out, usize::MAX)?;
    stream.write_all(&out).await?;
    Ok(())
}

async fn refuse_connect(device: &mut TcpStream, code: v4::ConnectReturnCode) -> Result<(), Ended> {
    send(device, v4::Packet::ConnAck(v4::ConnAck::new(code, false))).await?;
    device.shutdown().await?;
    Ok(())
}

/// One device's connection, from CONNECT to close.
async fn serve_device(mut device: TcpStream, shared: &Arc<Shared>) -> Result<(), Ended> {
    let _ = device.set_nodelay(true);
    let mut dbuf = BytesMut::with_capacity(4096);
    let first = tokio::time::timeout(
        shared.connect_timeout,
        read_frame(&mut device, &mut dbuf, shared.max_packet),
    )
    .await
    .map_err(|_| Ended::Protocol("no CONNECT in time"))??;
    let Some((header, frame)) = first else {
        return Ok(());
    };
    if header.packet_type()? != PacketType::Connect {
        return Err(Ended::Protocol("the first packet is not CONNECT"));
    }
    // rumqttc's codec reads the level of an MQTT 5 CONNECT too (any other level is an error); the
    // front and the broker speak 3.1.1 only.
    let mut connect = v4::Connect::read(header, frame.freeze())?;
    if connect.protocol != Protocol::V4 {
        return refuse_connect(&mut device, v4::ConnectReturnCode::RefusedProtocolVersion).await;
    }

    let (device_id, grant) = match authenticate(&connect, shared).await {
        Ok(found) => found,
        Err((code, refusal)) => {
            let excerpt: String = connect.client_id.chars().take(64).collect();
            shared.refuse(format!("CONNECT {excerpt}"), refusal).await;
            return refuse_connect(&mut device, code).await;
        }
    };

    // Pass the CONNECT on under the internal login.
    let mut broker = TcpStream::connect(shared.internal).await?;
    let _ = broker.set_nodelay(true);
    connect.login = Some(v4::Login::new(
        shared.login.0.clone(),
        shared.login.1.clone(),
    ));
    let mut out = BytesMut::new();
    v4::Packet::Connect(connect).write(&mut out, usize::MAX)?;
    broker.write_all(&out).await?;

    let close = Arc::new(Notify::new());
    let conn = shared.next_id.fetch_add(1, Ordering::Relaxed);
    shared.live().insert(
        conn,
        Live {
            client_id: device_id.clone(),
            stamp: grant.stamp.clone(),
            close: Arc::clone(&close),
        },
    );
    let result = relay(
        &mut device,
        &mut broker,
        dbuf,
        shared,
        &device_id,
        &grant,
        &close,
    )
    .await;
    shared.live().remove(&conn);
    result
}

/// Checks a CONNECT's login and last will against the registry.
async fn authenticate(
    connect: &v4::Connect,
    shared: &Arc<Shared>,
) -> Result<(ClientId, DeviceGrant), (v4::ConnectReturnCode, Refusal)> {
    use v4::ConnectReturnCode as Code;
    let bad = |code, detail: String| (code, Refusal::new(Reason::BadCredentials, detail));
    let Some(login) = &connect.login else {
        return Err(bad(Code::NotAuthorized, "no user name and password".into()));
    };
    let Ok(client_id) = ClientId::new(&connect.client_id) else {
        return Err(bad(Code::BadClientId, "not a device client id".into()));
    };
    if login.username != connect.client_id {
        return Err(bad(
            Code::BadUserNamePassword,
            format!("client id {client_id}: the user name must be the client id"),
        ));
    }
    let permit = shared.logins.acquire().await;
    let registry = Arc::clone(&shared.registry);
    let (id, password) = (client_id.clone(), login.password.clone());
    let found = tokio::task::spawn_blocking(move || registry.authenticate(&id, &password)).await;
    drop(permit);
    let grant = match found {
        Ok(Ok(Some(grant))) => grant,
        Ok(Ok(None)) => {
            return Err(bad(
                Code::BadUserNamePassword,
                format!("client id {client_id}: unknown or disabled device, or wrong password"),
            ))
        }
        Ok(Err(e)) => {
            return Err(bad(
                Code::ServiceUnavailable,
                format!("client id {client_id}: credentials not checked ({e})"),
            ))
        }
        Err(_) => {
            return Err(bad(
                Code::ServiceUnavailable,
                format!("client id {client_id}: credentials not checked"),
            ))
        }
    };
    if let Some(will) = &connect.last_will {
        if will.topic != shared.topics.status(grant.site, &client_id) {
            return Err(bad(
                Code::NotAuthorized,
                format!("client id {client_id}: a last will only on its own status topic"),
            ));
        }
    }
    Ok((client_id, grant))
}

/// Whether a device may publish on `topic`: one of its own topics.
fn own_topic(
    topics: &Topics,
    device: &ClientId,
    grant: &DeviceGrant,
    topic: &str,
) -> Result<(), String> {
    match topics.parse(topic) {
        Ok(t) if t.device == *device && t.site == grant.site => Ok(()),
        Ok(t) => Err(format!(
            "device {device} of site {} published as device {} of site {}",
            grant.site, t.device, t.site
        )),
        Err(bad) => Err(format!("device {device}: {bad}")),
    }
}

/// Relays packets both ways until either side closes, the device breaks a rule, or the registry
/// revokes its credentials.
async fn relay(
    device: &mut TcpStream,
    broker: &mut TcpStream,
    mut dbuf: BytesMut,
    shared: &Arc<Shared>,
    device_id: &ClientId,
    grant: &DeviceGrant,
    close: &Notify,
) -> Result<(), Ended> {
    let mut bbuf = BytesMut::with_capacity(1024);
    loop {
        tokio::select! {
            frame = read_frame(device, &mut dbuf, shared.max_packet) => {
                let Some((header, frame)) = frame? else { return Ok(()) };
                match header.packet_type()? {
                    PacketType::Publish => {
                        let bytes = frame.freeze();
                        let publish = v4::Publish::read(header, bytes.clone())?;
                        if let Err(detail) = own_topic(&shared.topics, device_id, grant, &publish.topic) {
                            shared
                                .refuse(publish.topic, Refusal::new(Reason::ForeignTopic, detail))
                                .await;
                            return Ok(());
                        }
                        broker.write_all(&bytes).await?;
                    }
                    PacketType::Subscribe => {
                        let subscribe = v4::Subscribe::read(header, frame.freeze())?;
                        let failures = vec![v4::SubscribeReasonCode::Failure; subscribe.filters.len()];
                        send(device, v4::Packet::SubAck(v4::SubAck::new(subscribe.pkid, failures))).await?;
                    }
                    PacketType::Connect => return Err(Ended::Protocol("a second CONNECT")),
                    PacketType::Disconnect => {
                        // A clean goodbye: the broker drops the last will.
                        broker.write_all(&frame).await?;
                        return Ok(());
                    }
                    _ => broker.write_all(&frame).await?,
                }
            }
            frame = read_frame(broker, &mut bbuf, shared.max_packet) => {
                let Some((_, frame)) = frame? else { return Ok(()) };
                device.write_all(&frame).await?;
            }
            () = close.notified() => return Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_devices_own_topics_are_its_own() {
        let topics = Topics::new(&TopicConfig::default()).unwrap();
        let me = ClientId::new("cold-01").unwrap();
        let grant = DeviceGrant {
            site: SiteId(3),
            stamp: String::new(),
        };
        let p = topics.prefix().to_owned();
        for ok in [
            format!("{p}/3/cold-01/telemetry"),
            format!("{p}/3/cold-01/status"),
            format!("{p}/3/cold-01/image/jpeg/1764806400000"),
        ] {
            assert_eq!(own_topic(&topics, &me, &grant, &ok), Ok(()), "{ok}");
        }
        for bad in [
            format!("{p}/3/cold-02/telemetry"),
            format!("{p}/4/cold-01/telemetry"),
            format!("{p}/3/cold-01/other"),
            format!("{p}/3/cold-01/telemetry/x"),
            "elsewhere/3/cold-01/telemetry".to_owned(),
            format!("{p}/+/cold-01/telemetry"),
        ] {
            assert!(own_topic(&topics, &me, &grant, &bad).is_err(), "{bad}");
        }
    }
}
