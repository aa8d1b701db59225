//! The embedded broker's door: devices log in with the credentials the API issued, publish only on
//! their own topics, read nothing, and are cut off when disabled or rotated; and the port it takes
//! when 1883 is held by another broker.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rumqttc::{
    Client, ConnectReturnCode, Connection, ConnectionError, Event, MqttOptions, Packet, QoS,
};
use serde_json::{json, Value};
use suyuan_server::iot::run::{BrokerChoice, RunningGateway};

use crate::support::mqtt::{query_count, reading_payload};
use crate::support::{TestApp, World};

crate::both_backends!(
    a_login_needs_the_issued_credentials,
    a_device_publishing_outside_its_topics_is_cut_off,
    a_device_reads_nothing,
    a_disabled_device_is_refused_and_cut_off,
    rotated_credentials_replace_the_old_ones,
    only_operators_disable_and_rotate,
    a_large_image_passes_the_front,
);

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

struct Device {
    id: i64,
    client_id: String,
    password: String,
}

fn register(app: &TestApp, w: &World, kind: &str) -> Device {
    let client_id = format!("auth-{}", &uuid::Uuid::new_v4().simple().to_string()[..10]);
    let (status, d) = app.post(
        "/api/v1/devices",
        Some(&w.operator.token),
        &json!({"site_id": w.plot, "client_id": client_id, "kind": kind, "name": "冷库温湿度"}),
    );
    assert_eq!(status, 201, "{d}");
    Device {
        id: d["id"].as_i64().unwrap(),
        client_id,
        password: d["password"].as_str().unwrap().to_owned(),
    }
}

fn start_gateway(app: &TestApp, data: &std::path::Path) -> (RunningGateway, SocketAddr) {
    let gateway = RunningGateway::start(
        app.db.clone(),
        data,
        None,
        BrokerChoice::Embedded("127.0.0.1:0".parse().unwrap()),
    )
    .unwrap();
    let addr = gateway
        .broker_url
        .strip_prefix("mqtt://")
        .unwrap()
        .parse()
        .unwrap();
    (gateway, addr)
}

/// A connection attempt; `Ok` once the broker accepted it, `Err` with the refusal otherwise.
/// Why a login did not give a connection.
#[derive(Debug)]
enum ConnectFailure {
    /// The broker answered the CONNECT with this code.
    Refused(ConnectReturnCode),
    /// No CONNACK: the connection failed, or nothing answered.
    Other(String),
}

impl std::fmt::Display for ConnectFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConnectFailure::Refused(code) => write!(f, "refused with {code:?}"),
            ConnectFailure::Other(e) => f.write_str(e),
        }
    }
}

fn connect(
    broker: SocketAddr,
    client_id: &str,
    login: Option<(&str, &str)>,
) -> Result<(Client, Connection), ConnectFailure> {
    let mut opts = MqttOptions::new(client_id, broker.ip().to_string(), broker.port());
    opts.set_keep_alive(Duration::from_secs(5));
    opts.set_max_packet_size(64 << 20, 64 << 20);
    opts.set_clean_session(true);
    if let Some((user, pass)) = login {
        opts.set_credentials(user, pass);
    }
    let (client, mut conn) = Client::new(opts, 10);
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        match conn.recv_timeout(Duration::from_millis(500)) {
            Ok(Ok(Event::Incoming(Packet::ConnAck(ack)))) => {
                return if ack.code == ConnectReturnCode::Success {
                    Ok((client, conn))
                } else {
                    Err(ConnectFailure::Refused(ack.code))
                };
            }
            Ok(Ok(_)) | Err(_) => {}
            Ok(Err(ConnectionError::ConnectionRefused(code))) => {
                return Err(ConnectFailure::Refused(code))
            }
            Ok(Err(e)) => return Err(ConnectFailure::Other(e.to_string())),
        }
    }
    Err(ConnectFailure::Other("no answer".into()))
}

/// The code the broker refused a login with; fails the test when `who` got in or was not answered.
fn refusal(attempt: Result<(Client, Connection), ConnectFailure>, who: &str) -> ConnectReturnCode {
    match attempt {
        Ok(_) => panic!("{who} was let in"),
        Err(ConnectFailure::Refused(code)) => code,
        Err(ConnectFailure::Other(e)) => panic!("{who}: the broker did not refuse the login ({e})"),
    }
}

fn device_login(broker: SocketAddr, d: &Device) -> (Client, Connection) {
    connect(broker, &d.client_id, Some((&d.client_id, &d.password)))
        .unwrap_or_else(|e| panic!("{} refused: {e}", d.client_id))
}

/// Polls until the connection ends (true) or `within` passes (false), handing every incoming
/// packet to `seen`.
#[must_use = "whether the connection ended is either the point or what makes the packets seen mean anything"]
fn closed_within(conn: &mut Connection, within: Duration, mut seen: impl FnMut(&Packet)) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        match conn.recv_timeout(Duration::from_millis(200)) {
            Ok(Ok(Event::Incoming(p))) => seen(&p),
            Ok(Ok(_)) | Err(_) => {}
            Ok(Err(_)) => return true,
        }
    }
    false
}

fn telemetry(site: i64, client_id: &str) -> String {
    format!("suyuan/v1/{site}/{client_id}/telemetry")
}

fn readings_of(app: &TestApp, device_id: i64) -> i64 {
    query_count(
        &app.test_db,
        &format!("SELECT count(*) AS n FROM readings WHERE device_id = {device_id}"),
    )
}

/// Publishes a good reading as `d` until it is stored (the gateway is subscribed then).
fn publish_until_stored(app: &TestApp, broker: SocketAddr, w: &World, d: &Device) {
    let (client, mut conn) = device_login(broker, d);
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut seq = 0u64;
    loop {
        client
            .publish(
                telemetry(w.plot.0, &d.client_id),
                QoS::AtLeastOnce,
                false,
                reading_payload(seq, now_ms() - 1000),
            )
            .unwrap();
        seq += 1;
        let until = Instant::now() + Duration::from_secs(1);
        while Instant::now() < until {
            let _ = conn.recv_timeout(Duration::from_millis(100));
        }
        if readings_of(app, d.id) > 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the reading of {} was not stored within 30 s",
            d.client_id
        );
    }
    let _ = client.disconnect();
    let _ = conn.recv_timeout(Duration::from_millis(200));
}

fn refusals(app: &TestApp, w: &World) -> Value {
    let (status, body) = app.get("/api/v1/gateway/refusals", Some(&w.operator.token));
    assert_eq!(status, 200, "{body}");
    body
}

fn refused(app: &TestApp, w: &World, reason: &str) -> i64 {
    let body = refusals(app, w);
    body.as_array()
        .unwrap_or_else(|| panic!("refusals: {body}"))
        .iter()
        .find(|r| r["reason"] == reason)
        .map_or(0, |r| r["refused"].as_i64().unwrap())
}

fn a_login_needs_the_issued_credentials(app: TestApp) {
    let w = World::build(&app);
    let d = register(&app, &w, "sensor");
    let data = tempfile::tempdir().unwrap();
    let (_gateway, broker) = start_gateway(&app, data.path());

    let anonymous = connect(broker, &d.client_id, None);
    assert_eq!(
        refusal(anonymous, "a device without credentials"),
        ConnectReturnCode::NotAuthorized
    );
    let wrong = connect(
        broker,
        &d.client_id,
        Some((&d.client_id, "not-the-password")),
    );
    assert_eq!(
        refusal(wrong, "a wrong password"),
        ConnectReturnCode::BadUserNamePassword
    );
    let other_name = connect(broker, "someone-else", Some((&d.client_id, &d.password)));
    assert_eq!(
        refusal(other_name, "a client id other than the user name"),
        ConnectReturnCode::BadUserNamePassword
    );
    let unknown = connect(broker, "nobody-01", Some(("nobody-01", &d.password)));
    assert_eq!(
        refusal(unknown, "an unregistered device"),
        ConnectReturnCode::BadUserNamePassword
    );
    let (_client, _conn) = device_login(broker, &d);
    assert!(refused(&app, &w, "bad_credentials") >= 4);
}

fn a_device_publishing_outside_its_topics_is_cut_off(app: TestApp) {
    let w = World::build(&app);
    let a = register(&app, &w, "sensor");
    let b = register(&app, &w, "sensor");
    let data = tempfile::tempdir().unwrap();
    let (_gateway, broker) = start_gateway(&app, data.path());
    publish_until_stored(&app, broker, &w, &a);

    // On another device's topic.
    let (client, mut conn) = device_login(broker, &a);
    client
        .publish(
            telemetry(w.plot.0, &b.client_id),
            QoS::AtLeastOnce,
            false,
            reading_payload(1, now_ms() - 2000),
        )
        .unwrap();
    let mut acked = false;
    assert!(
        closed_within(&mut conn, Duration::from_secs(5), |p| acked |=
            matches!(p, Packet::PubAck(_))),
        "publishing on another device's topic did not end the connection"
    );
    assert!(!acked, "the broker acknowledged another device's topic");

    // Under its own client id on another organisation's site.
    let (client, mut conn) = device_login(broker, &a);
    client
        .publish(
            telemetry(w.line.0, &a.client_id),
            QoS::AtLeastOnce,
            false,
            reading_payload(2, now_ms() - 2000),
        )
        .unwrap();
    assert!(
        closed_within(&mut conn, Duration::from_secs(5), |_| {}),
        "publishing on another site's topic did not end the connection"
    );

    // A good message after both is stored: had the others gone through, they would be by now.
    let before = readings_of(&app, a.id);
    let (client, mut conn) = device_login(broker, &a);
    client
        .publish(
            telemetry(w.plot.0, &a.client_id),
            QoS::AtLeastOnce,
            false,
            reading_payload(3, now_ms() - 500),
        )
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    while readings_of(&app, a.id) == before && Instant::now() < deadline {
        let _ = conn.recv_timeout(Duration::from_millis(100));
    }
    assert!(
        readings_of(&app, a.id) > before,
        "the good reading was not stored"
    );
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(readings_of(&app, b.id), 0, "A's message was stored as B's");
    assert_eq!(
        query_count(
            &app.test_db,
            &format!(
                "SELECT count(*) AS n FROM readings r JOIN devices d ON d.id = r.device_id \
                 WHERE d.client_id = '{}' AND d.site_id <> {}",
                a.client_id, w.plot.0
            )
        ),
        0
    );
    assert!(
        refused(&app, &w, "foreign_topic") >= 2,
        "{}",
        refusals(&app, &w)
    );
}

fn a_device_reads_nothing(app: TestApp) {
    let w = World::build(&app);
    let spy = register(&app, &w, "sensor");
    let other = register(&app, &w, "sensor");
    let data = tempfile::tempdir().unwrap();
    let (_gateway, broker) = start_gateway(&app, data.path());

    let (client, mut conn) = device_login(broker, &spy);
    client.subscribe("#", QoS::AtLeastOnce).unwrap();
    client
        .subscribe(telemetry(w.plot.0, &other.client_id), QoS::AtLeastOnce)
        .unwrap();
    let mut subacks = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    while subacks.len() < 2 && Instant::now() < deadline {
        if let Ok(Ok(Event::Incoming(Packet::SubAck(ack)))) =
            conn.recv_timeout(Duration::from_millis(200))
        {
            subacks.push(ack);
        }
    }
    assert_eq!(subacks.len(), 2, "no SUBACKs");
    for ack in &subacks {
        assert!(
            ack.return_codes
                .iter()
                .all(|c| *c == rumqttc::SubscribeReasonCode::Failure),
            "a subscription was granted: {ack:?}"
        );
    }
    // The other device's message reaches the gateway, and not the spy.
    publish_until_stored(&app, broker, &w, &other);
    let mut leaked = 0;
    let closed = closed_within(&mut conn, Duration::from_secs(2), |p| {
        if matches!(p, Packet::Publish(_)) {
            leaked += 1;
        }
    });
    assert!(
        !closed,
        "the spy's connection ended: that it received nothing would prove nothing"
    );
    assert_eq!(leaked, 0, "a device received others' messages");
}

fn a_disabled_device_is_refused_and_cut_off(app: TestApp) {
    let w = World::build(&app);
    let d = register(&app, &w, "sensor");
    let data = tempfile::tempdir().unwrap();
    let (_gateway, broker) = start_gateway(&app, data.path());
    let (_client, mut conn) = device_login(broker, &d);

    let (status, body) = app.post(
        &format!("/api/v1/devices/{}/disable", d.id),
        Some(&w.operator.token),
        &json!({}),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["enabled"], false);
    assert!(
        closed_within(&mut conn, Duration::from_secs(8), |_| {}),
        "the disabled device's open connection stayed open"
    );
    assert_eq!(
        refusal(
            connect(broker, &d.client_id, Some((&d.client_id, &d.password))),
            "a disabled device"
        ),
        ConnectReturnCode::BadUserNamePassword
    );

    let (status, body) = app.post(
        &format!("/api/v1/devices/{}/enable", d.id),
        Some(&w.operator.token),
        &json!({}),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["enabled"], true);
    let _ = device_login(broker, &d);
}

fn rotated_credentials_replace_the_old_ones(app: TestApp) {
    let w = World::build(&app);
    let d = register(&app, &w, "sensor");
    let data = tempfile::tempdir().unwrap();
    let (_gateway, broker) = start_gateway(&app, data.path());
    let (_client, mut conn) = device_login(broker, &d);

    let (status, body) = app.post(
        &format!("/api/v1/devices/{}/credentials", d.id),
        Some(&w.operator.token),
        &json!({}),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["username"], d.client_id.as_str());
    let new_password = body["password"].as_str().unwrap().to_owned();
    assert_ne!(new_password, d.password);
    assert!(
        closed_within(&mut conn, Duration::from_secs(8), |_| {}),
        "the connection made with the old password stayed open"
    );
    assert_eq!(
        refusal(
            connect(broker, &d.client_id, Some((&d.client_id, &d.password))),
            "the old password"
        ),
        ConnectReturnCode::BadUserNamePassword
    );
    let rotated = Device {
        password: new_password,
        ..d
    };
    publish_until_stored(&app, broker, &w, &rotated);
}

fn only_operators_disable_and_rotate(app: TestApp) {
    let w = World::build(&app);
    let d = register(&app, &w, "sensor");
    for path in ["disable", "enable", "credentials"] {
        let url = format!("/api/v1/devices/{}/{path}", d.id);
        let (status, body) = app.post(&url, Some(&w.farmer.token), &json!({}));
        assert_eq!(status, 403, "{path}: {body}");
        let (status, _) = app.post(&url, None, &json!({}));
        assert_eq!(status, 401, "{path}");
    }
    let (status, _) = app.post(
        "/api/v1/devices/999999/disable",
        Some(&w.operator.token),
        &json!({}),
    );
    assert_eq!(status, 404);
}

/// A camera's image of several MB goes through the front to the broker and the gateway (which
/// refuses it here: it is no JPEG) on the same connection.
fn a_large_image_passes_the_front(app: TestApp) {
    let w = World::build(&app);
    let cam = register(&app, &w, "camera");
    let data = tempfile::tempdir().unwrap();
    let (_gateway, broker) = start_gateway(&app, data.path());
    let sensor = register(&app, &w, "sensor");
    publish_until_stored(&app, broker, &w, &sensor);

    let (client, mut conn) = device_login(broker, &cam);
    let topic = format!(
        "suyuan/v1/{}/{}/image/jpeg/{}",
        w.plot.0,
        cam.client_id,
        now_ms() - 1000
    );
    let payload = vec![0x5a_u8; 6 << 20];
    client
        .publish(topic, QoS::AtLeastOnce, false, payload)
        .unwrap();
    let mut acked = false;
    let deadline = Instant::now() + Duration::from_secs(20);
    while !acked && Instant::now() < deadline {
        match conn.recv_timeout(Duration::from_millis(200)) {
            Ok(Ok(Event::Incoming(Packet::PubAck(_)))) => acked = true,
            Ok(Err(e)) => panic!("the connection ended: {e}"),
            _ => {}
        }
    }
    assert!(acked, "no PUBACK for a 6 MiB image");
    let deadline = Instant::now() + Duration::from_secs(15);
    while refused(&app, &w, "not_jpeg") == 0 {
        assert!(
            Instant::now() < deadline,
            "the gateway did not see the image: {}",
            refusals(&app, &w)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// When 1883 (or the address asked for by default) is taken, the embedded broker moves to a free
/// port and says so; an address asked for explicitly that is taken stays an error.
#[test]
fn a_taken_default_port_moves_and_a_taken_explicit_one_is_an_error() {
    let Some(app) = TestApp::start(crate::support::Backend::Sqlite) else {
        return;
    };
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let data = tempfile::tempdir().unwrap();

    let moved = RunningGateway::start(
        app.db.clone(),
        data.path(),
        None,
        BrokerChoice::EmbeddedPreferred(addr),
    )
    .unwrap();
    assert!(moved.broker_moved);
    let url = moved.broker_url.clone();
    assert!(url.starts_with("mqtt://127.0.0.1:"), "{url}");
    assert_ne!(url, format!("mqtt://{addr}"));
    drop(moved);

    let err = RunningGateway::start(
        app.db.clone(),
        data.path(),
        None,
        BrokerChoice::Embedded(addr),
    )
    .unwrap_err();
    assert!(format!("{err:#}").contains("is taken"), "{err:#}");
}

// ---------------------------------------------------------------------------------------------
// An external Mosquitto configured by `suyuan mqtt-auth`

mod mosquitto {
    use crate::support::{Backend, TestApp};

    #[test]
    fn sqlite() {
        if let Some(app) = TestApp::start(Backend::Sqlite) {
            super::mosquitto_files_from_the_registry(app);
        }
    }

    #[test]
    fn postgres() {
        if let Some(app) = TestApp::start(Backend::Postgres) {
            super::mosquitto_files_from_the_registry(app);
        }
    }
}

/// A Mosquitto of this test's own, on a free port, with the generated files and no anonymous
/// clients. Killed when dropped.
struct OwnMosquitto {
    binary: &'static str,
    child: Option<std::process::Child>,
    port: u16,
    dir: tempfile::TempDir,
}

impl OwnMosquitto {
    fn start() -> Option<OwnMosquitto> {
        let binary = [
            "/usr/sbin/mosquitto",
            "/usr/local/sbin/mosquitto",
            "/usr/bin/mosquitto",
        ]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists());
        let Some(binary) = binary else {
            assert!(
                std::env::var_os("SUYUAN_REQUIRE_MQTT").is_none()
                    && std::env::var_os("CI").is_none(),
                "mosquitto is not installed"
            );
            eprintln!("SKIPPED: mosquitto is not installed");
            return None;
        };
        let dir = tempfile::tempdir().unwrap();
        // Started as root, Mosquitto reads its files as the `mosquitto` user.
        std::fs::set_permissions(
            dir.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let d = dir.path().display();
        std::fs::write(
            dir.path().join("mosquitto.conf"),
            format!(
                "listener {port} 127.0.0.1\n\
                 allow_anonymous false\n\
                 password_file {d}/passwd\n\
                 acl_file {d}/acl\n\
                 persistence false\n\
                 log_dest file {d}/mosquitto.log\n\
                 log_type error\nlog_type warning\nlog_type notice\n"
            ),
        )
        .unwrap();
        std::fs::write(dir.path().join("mosquitto.log"), "").unwrap();
        std::fs::set_permissions(
            dir.path().join("mosquitto.log"),
            std::os::unix::fs::PermissionsExt::from_mode(0o666),
        )
        .unwrap();
        Some(OwnMosquitto {
            binary,
            child: None,
            port,
            dir,
        })
    }

    /// Starts it (once its files are written) and waits until it accepts connections.
    fn run(&mut self) {
        let child = std::process::Command::new(self.binary)
            .arg("-c")
            .arg(self.dir.path().join("mosquitto.conf"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        self.child = Some(child);
        self.wait_listening();
    }

    fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    fn wait_listening(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(self.addr()).is_err() {
            assert!(
                Instant::now() < deadline,
                "mosquitto did not start: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Reloads the password and ACL files.
    fn reload(&self) {
        let status = std::process::Command::new("kill")
            .args(["-HUP", &self.child.as_ref().unwrap().id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        std::thread::sleep(Duration::from_millis(500));
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("mosquitto.log")).unwrap_or_default()
    }
}

impl Drop for OwnMosquitto {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn mosquitto_files_from_the_registry(app: TestApp) {
    use suyuan_server::commands::mqtt_auth::{write_files, MqttAuthArgs};
    let w = World::build(&app);
    let a = register(&app, &w, "sensor");
    let b = register(&app, &w, "sensor");
    // A device registered before hashes were stored in Mosquitto's form.
    let legacy = register(&app, &w, "sensor");
    let argon = suyuan_core::auth::hash_password(&legacy.password).unwrap();
    app.test_db.raw(&format!(
        "UPDATE devices SET password_hash = '{argon}' WHERE id = {}",
        legacy.id
    ));
    let Some(mut broker) = OwnMosquitto::start() else {
        return;
    };
    let gateway_password = "gw-secret-0123456789";
    let args = MqttAuthArgs {
        data: suyuan_server::commands::DataArgs {
            data_dir: broker.dir.path().to_owned(),
            database_url: None,
            media_dir: None,
        },
        password_file: broker.dir.path().join("passwd"),
        acl_file: broker.dir.path().join("acl"),
        gateway_user: "suyuan-gateway".into(),
        gateway_password: gateway_password.into(),
        prefix: "suyuan/v1".into(),
    };
    let generate = |args: &MqttAuthArgs| {
        let report = write_files(&app.db, args).unwrap();
        for f in [&args.password_file, &args.acl_file] {
            std::fs::set_permissions(f, std::os::unix::fs::PermissionsExt::from_mode(0o644))
                .unwrap();
        }
        report
    };
    let report = generate(&args);
    assert!(
        report.need_rotation.contains(&legacy.client_id),
        "{report:?}"
    );
    assert!(report.devices >= 2, "{report:?}");
    broker.run();
    let addr = broker.addr();

    // The gateway's user reads everything under the prefix.
    let (gw, mut gw_conn) = connect(
        addr,
        "suyuan-gateway",
        Some(("suyuan-gateway", gateway_password)),
    )
    .unwrap_or_else(|e| panic!("gateway refused: {e}\n{}", broker.log()));
    gw.subscribe("suyuan/v1/#", QoS::AtLeastOnce).unwrap();
    // What a connection receives within `within`; it must stay open meanwhile, or receiving nothing
    // would prove nothing.
    let received = |conn: &mut Connection, within: Duration| {
        let mut topics = Vec::new();
        let closed = closed_within(conn, within, |p| {
            if let Packet::Publish(p) = p {
                topics.push(p.topic.clone());
            }
        });
        assert!(
            !closed,
            "a connection ended while listening (received {topics:?})"
        );
        topics
    };
    received(&mut gw_conn, Duration::from_millis(500));

    assert_eq!(
        refusal(connect(addr, &a.client_id, None), "anonymous"),
        ConnectReturnCode::NotAuthorized
    );
    assert_eq!(
        refusal(
            connect(addr, &a.client_id, Some((&a.client_id, "wrong"))),
            "a wrong password"
        ),
        ConnectReturnCode::NotAuthorized
    );
    assert_eq!(
        refusal(
            connect(
                addr,
                &legacy.client_id,
                Some((&legacy.client_id, &legacy.password))
            ),
            "a device without a Mosquitto hash"
        ),
        ConnectReturnCode::NotAuthorized
    );

    // A device reads nothing.
    let (spy, mut spy_conn) = device_login(addr, &b);
    spy.subscribe("#", QoS::AtLeastOnce).unwrap();
    received(&mut spy_conn, Duration::from_millis(500));

    let (dev, mut dev_conn) = device_login(addr, &a);
    let own = telemetry(w.plot.0, &a.client_id);
    let foreign = telemetry(w.plot.0, &b.client_id);
    let other_site = telemetry(w.line.0, &a.client_id);
    for topic in [&foreign, &other_site, &own] {
        dev.publish(
            topic.as_str(),
            QoS::AtLeastOnce,
            false,
            reading_payload(1, now_ms()),
        )
        .unwrap();
    }
    received(&mut dev_conn, Duration::from_millis(500));
    let got = received(&mut gw_conn, Duration::from_secs(2));
    assert_eq!(got, vec![own.clone()], "what the gateway's user received");
    assert!(
        received(&mut spy_conn, Duration::from_millis(500)).is_empty(),
        "a device subscribed to # received messages"
    );

    // Disabled, and B rotated: regenerate, reload.
    let (status, _) = app.post(
        &format!("/api/v1/devices/{}/disable", a.id),
        Some(&w.operator.token),
        &json!({}),
    );
    assert_eq!(status, 200);
    let (status, rotated) = app.post(
        &format!("/api/v1/devices/{}/credentials", b.id),
        Some(&w.operator.token),
        &json!({}),
    );
    assert_eq!(status, 200);
    generate(&args);
    broker.reload();
    assert_eq!(
        refusal(
            connect(addr, &a.client_id, Some((&a.client_id, &a.password))),
            "a disabled device after the reload"
        ),
        ConnectReturnCode::NotAuthorized
    );
    assert_eq!(
        refusal(
            connect(addr, &b.client_id, Some((&b.client_id, &b.password))),
            "an old password after the reload"
        ),
        ConnectReturnCode::NotAuthorized
    );
    let new_b = rotated["password"].as_str().unwrap();
    connect(addr, &b.client_id, Some((&b.client_id, new_b)))
        .unwrap_or_else(|e| panic!("the rotated password refused: {e}\n{}", broker.log()));
}
