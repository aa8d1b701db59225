//! Fault tests of the IoT gateway as it runs beyond one machine: the real `suyuan gateway` process
//! (built beside this test binary) between a Mosquitto and the database, with devices publishing at
//! QoS 1 at a controlled rate. Each test counts what the broker acknowledged to the device and what
//! the database holds: every acknowledged message stored, once — `2 × N` readings for `N`
//! two-metric messages, as many distinct `(device, metric, ts, seq)` keys as rows — while the
//! database goes away, the gateway is killed, the broker is killed, or one of two replicas dies.
//!
//! The gateway's log (stderr) and Mosquitto's are kept in the test's temporary folder and printed
//! when a test fails. Mosquitto and PostgreSQL missing here: the tests say `SKIPPED` and pass,
//! unless `CI`, `SUYUAN_REQUIRE_MQTT` or `SUYUAN_REQUIRE_POSTGRES` is set.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use suyuan_server::iot::run::{BrokerChoice, RunningGateway};

use crate::support::mqtt::{
    self, database_url, mosquitto_pub_file, mosquitto_pub_lines, mosquitto_pub_program,
    query_count, reading_counts, reading_payload, wait_for_quiet, wait_for_readings,
    wait_handled_up_to_marker, wait_until_ingesting, ForgetSessionOnDrop, GatewayProcess,
    GatewaySpec, Mosquitto, PgProxy, PublishPlan, Publisher, ReadingCounts,
};
use crate::support::{TestApp, World};

crate::both_backends!(
    readings_and_images_arrive_once,
    readings_and_images_arrive_once_embedded,
    gateway_killed_and_restarted,
    broker_restarted,
);

mod postgres_only {
    use crate::support::{Backend, TestApp};

    #[test]
    fn database_unreachable_mid_stream() {
        if let Some(app) = TestApp::start(Backend::Postgres) {
            super::database_unreachable_mid_stream(app);
        }
    }

    #[test]
    fn two_replicas_one_killed() {
        if let Some(app) = TestApp::start(Backend::Postgres) {
            super::two_replicas_one_killed(app);
        }
    }
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap()
        .to_rfc3339()
        .replace('+', "%2B")
        .replace(':', "%3A")
}

/// A fresh suffix for client ids (the system broker is shared and keeps sessions).
fn run_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..12].to_owned()
}

/// Registers a device on the cooperative's plot, as the operator would.
fn register(app: &TestApp, w: &World, client_id: &str, kind: &str) -> i64 {
    let (status, d) = app.post(
        "/api/v1/devices",
        Some(&w.operator.token),
        &json!({"site_id": w.plot, "client_id": client_id, "kind": kind, "name": "冷库温湿度"}),
    );
    assert_eq!(status, 201, "{d}");
    mqtt::remember_device_password(client_id, d["password"].as_str().unwrap());
    d["id"].as_i64().unwrap()
}

fn telemetry_topic(w: &World, device: &str) -> String {
    format!("suyuan/v1/{}/{device}/telemetry", w.plot.0)
}

fn jpeg() -> Vec<u8> {
    let pixels = image::RgbImage::from_fn(640, 480, |x, y| {
        image::Rgb([(x % 256) as u8, (y % 256) as u8, 90])
    });
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 85)
        .encode_image(&pixels)
        .unwrap();
    out
}

/// The readings API's points for the plot over `[from, to)`.
fn api_points(app: &TestApp, w: &World, from: i64, to: i64) -> Vec<Value> {
    let (status, r) = app.get(
        &format!(
            "/api/v1/sites/{}/readings?from={}&to={}&limit=10000",
            w.plot.0,
            rfc3339(from),
            rfc3339(to)
        ),
        Some(&w.farmer.token),
    );
    assert_eq!(status, 200, "{r}");
    assert_eq!(r["truncated"], false, "{r}");
    r["points"].as_array().unwrap().clone()
}

/// Every acknowledged message stored, once.
fn assert_stored_once(counts: ReadingCounts, acked: u64, what: &str) {
    let expected = 2 * acked as i64;
    assert_eq!(
        counts,
        ReadingCounts {
            rows: expected,
            distinct_keys: expected
        },
        "{what}: {acked} messages of 2 readings acknowledged to the device, so {expected} readings, each once"
    );
}

fn spec(db_url: String, mqtt_url: String, data: &Path) -> GatewaySpec {
    GatewaySpec {
        database_url: db_url,
        mqtt_url,
        data_dir: data.to_owned(),
        share_group: None,
    }
}

/// Readings from `mosquitto_pub` and one JPEG (sent twice, as a device retrying would) through the
/// system's Mosquitto and a `suyuan gateway` process: each reading stored once, the image once,
/// its original and thumbnail in the media folder.
fn readings_and_images_arrive_once(app: TestApp) {
    let test = "readings_and_images_arrive_once";
    let Some(broker) = mqtt::system_broker(test) else {
        return;
    };
    let Some(pub_program) = mosquitto_pub_program(test) else {
        return;
    };
    let _only_gateway_on_the_system_broker = mqtt::system_broker_lock();
    let started = Instant::now();
    let w = World::build(&app);
    let run = run_id();
    let sensor = format!("t1-sensor-{run}");
    let camera = format!("t1-cam-{run}");
    register(&app, &w, &sensor, "sensor");
    register(&app, &w, &camera, "camera");
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let gw_id = format!("gw-t1-{run}");
    // Dropped after the gateway: its persistent session must not stay on the shared broker.
    let _forget = ForgetSessionOnDrop {
        addr: broker,
        client_id: gw_id.clone(),
    };
    let mut gw = GatewayProcess::start(
        "gw",
        spec(
            database_url(&app.test_db),
            format!("mqtt://{broker}?client_id={gw_id}"),
            &data,
        ),
        tmp.path(),
    );
    wait_until_ingesting(
        &pub_program,
        &app.test_db,
        broker,
        w.plot.0,
        &sensor,
        &mut [&mut gw],
    );

    const N: u64 = 500;
    let t0 = now_ms() - 2 * 3_600_000;
    let lines: Vec<String> = (0..N)
        .map(|seq| reading_payload(seq, t0 + seq as i64 * 1000))
        .collect();
    let acked = mosquitto_pub_lines(
        &pub_program,
        broker,
        &sensor,
        &telemetry_topic(&w, &sensor),
        &lines,
        250.0,
    );
    assert_eq!(acked, N, "mosquitto_pub's PUBACKs");

    let photo = jpeg();
    let photo_path = tmp.path().join("photo.jpg");
    std::fs::write(&photo_path, &photo).unwrap();
    let taken = now_ms() - 60_000;
    let image_topic = format!("suyuan/v1/{}/{camera}/image/jpeg/{taken}", w.plot.0);
    for _ in 0..2 {
        assert_eq!(
            mosquitto_pub_file(&pub_program, broker, &camera, &image_topic, &photo_path),
            1
        );
    }

    let counts = wait_for_readings(&app.test_db, 2 * N as i64, Duration::from_secs(30));
    // Both copies of the image handled, so that "stored once" below is about the second one too.
    wait_handled_up_to_marker(
        &pub_program,
        &app.test_db,
        broker,
        w.plot.0,
        &camera,
        Duration::from_secs(30),
    );
    gw.assert_running();
    let tally = gw.terminate();
    assert_stored_once(
        counts,
        acked,
        &format!("mosquitto_pub through the system broker; gateway {tally:?}"),
    );
    let points = api_points(&app, &w, t0, t0 + N as i64 * 1000);
    assert_eq!(
        points.len() as u64,
        2 * N,
        "the readings API shows each once"
    );
    assert_eq!(
        query_count(&app.test_db, "SELECT count(*) AS n FROM device_images"),
        1,
        "the image sent twice is stored once"
    );
    let (status, list) = app.get(
        &format!(
            "/api/v1/sites/{}/images?from={}&to={}",
            w.plot.0,
            rfc3339(taken - 1000),
            rfc3339(taken + 1000)
        ),
        Some(&w.farmer.token),
    );
    assert_eq!(status, 200, "{list}");
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{list}");
    assert_eq!(
        (items[0]["width"].as_i64(), items[0]["height"].as_i64()),
        (Some(640), Some(480))
    );
    let sha = items[0]["sha256"].as_str().unwrap();
    let original = data
        .join("media")
        .join(&sha[..2])
        .join(&sha[2..4])
        .join(format!("{sha}.jpg"));
    assert_eq!(
        std::fs::read(&original).unwrap(),
        photo,
        "the original, byte for byte"
    );
    assert!(original
        .with_file_name(format!("{sha}.thumb.jpg"))
        .is_file());
    assert_eq!(tally.refused, 0, "{tally:?}");
    assert_eq!(tally.spooled, 0, "{tally:?}");
    assert!(
        tally.stored > N + 2,
        "the readings, the two image messages and the status: {tally:?}"
    );
    eprintln!(
        "{test} ({:?}): {acked} acknowledged, {} readings stored, 1 image; gateway {tally:?}; {:.1} s",
        app.test_db.backend,
        counts.rows,
        started.elapsed().as_secs_f64()
    );
}

/// The same through the embedded broker (`suyuan serve`'s one-machine run), in process.
fn readings_and_images_arrive_once_embedded(app: TestApp) {
    let test = "readings_and_images_arrive_once_embedded";
    let Some(pub_program) = mosquitto_pub_program(test) else {
        return;
    };
    let started = Instant::now();
    let w = World::build(&app);
    let sensor = "t1e-sensor";
    let camera = "t1e-cam";
    register(&app, &w, sensor, "sensor");
    register(&app, &w, camera, "camera");
    let data = tempfile::tempdir().unwrap();
    let gateway = RunningGateway::start(
        app.db.clone(),
        data.path(),
        None,
        BrokerChoice::Embedded("127.0.0.1:0".parse().unwrap()),
    )
    .unwrap();
    let broker: std::net::SocketAddr = gateway
        .broker_url
        .strip_prefix("mqtt://")
        .unwrap_or_else(|| panic!("broker_url {}", gateway.broker_url))
        .parse()
        .unwrap();
    assert_ne!(broker.port(), 0);
    wait_until_ingesting(
        &pub_program,
        &app.test_db,
        broker,
        w.plot.0,
        sensor,
        &mut [],
    );

    const N: u64 = 500;
    let t0 = now_ms() - 2 * 3_600_000;
    let lines: Vec<String> = (0..N)
        .map(|seq| reading_payload(seq, t0 + seq as i64 * 1000))
        .collect();
    let acked = mosquitto_pub_lines(
        &pub_program,
        broker,
        sensor,
        &telemetry_topic(&w, sensor),
        &lines,
        500.0,
    );
    assert_eq!(acked, N, "mosquitto_pub's PUBACKs");
    let photo_path = data.path().join("photo.jpg");
    std::fs::write(&photo_path, jpeg()).unwrap();
    let taken = now_ms() - 60_000;
    let image_topic = format!("suyuan/v1/{}/{camera}/image/jpeg/{taken}", w.plot.0);
    for _ in 0..2 {
        assert_eq!(
            mosquitto_pub_file(&pub_program, broker, camera, &image_topic, &photo_path),
            1
        );
    }
    let counts = wait_for_readings(&app.test_db, 2 * N as i64, Duration::from_secs(30));
    assert_stored_once(counts, acked, "mosquitto_pub through the embedded broker");
    assert_eq!(
        api_points(&app, &w, t0, t0 + N as i64 * 1000).len() as u64,
        2 * N
    );
    // Both copies of the image handled, so that "stored once" below is about the second one too.
    wait_handled_up_to_marker(
        &pub_program,
        &app.test_db,
        broker,
        w.plot.0,
        camera,
        Duration::from_secs(30),
    );
    assert_eq!(
        query_count(&app.test_db, "SELECT count(*) AS n FROM device_images"),
        1
    );
    let stats = gateway.stats().unwrap();
    assert_eq!(stats.refused, 0, "{stats:?}");
    assert_eq!(stats.spooled, 0, "{stats:?}");
    assert!(stats.stored > N + 2, "{stats:?}");
    assert_eq!(stats.acked, stats.received, "{stats:?}");
    gateway.stop();
    eprintln!(
        "{test} ({:?}): {acked} acknowledged, {} readings stored, 1 image; stored {} received {} acked {}; {:.1} s",
        app.test_db.backend,
        counts.rows,
        stats.stored,
        stats.received,
        stats.acked,
        started.elapsed().as_secs_f64()
    );
}

/// PostgreSQL goes away mid-stream (a proxy between gateway and database closes every connection
/// and refuses new ones), then comes back. The gateway acknowledges nothing it has not stored or
/// spooled; it spools while the database is away and drains the spool afterwards.
fn database_unreachable_mid_stream(app: TestApp) {
    let test = "database_unreachable_mid_stream";
    let Some(broker) = Mosquitto::start(test) else {
        return;
    };
    let Some(pub_program) = mosquitto_pub_program(test) else {
        return;
    };
    let started = Instant::now();
    let w = World::build(&app);
    let sensor = "t2-sensor";
    register(&app, &w, sensor, "sensor");
    let tmp = tempfile::tempdir().unwrap();
    let direct = database_url(&app.test_db);
    let proxy = PgProxy::start(mqtt::pg_server_addr(&direct));
    let mut gw = GatewayProcess::start(
        "gw",
        spec(
            proxy.url_through(&direct),
            broker.gateway_url("gw-a"),
            &tmp.path().join("data"),
        ),
        tmp.path(),
    );
    wait_until_ingesting(
        &pub_program,
        &app.test_db,
        broker.addr(),
        w.plot.0,
        sensor,
        &mut [&mut gw],
    );

    const N: u64 = 3_000;
    let device = Publisher::start(
        broker.addr(),
        "t2-device",
        PublishPlan {
            topic: telemetry_topic(&w, sensor),
            count: N,
            per_second: 200.0,
            first_ts_ms: now_ms() - 2 * 3_600_000,
        },
    );
    device.wait_acked(N / 4, Duration::from_secs(30));
    let before_cut = reading_counts(&app.test_db).rows;
    assert!(before_cut > 0, "the gateway was storing before the cut");
    proxy.cut();
    let cut_at = Instant::now();
    // The outage lasts until the gateway has noticed it and spooled, and the device has published a
    // tenth of its messages more meanwhile.
    gw.wait_for_log("messages go to the spool", Duration::from_secs(30));
    device.wait_acked(device.acked() + N / 10, Duration::from_secs(30));
    let outage = cut_at.elapsed();
    let during_cut = reading_counts(&app.test_db).rows;
    proxy.restore();
    let report = device.finish(Duration::from_secs(60));
    assert_eq!(
        (report.acked, report.lost_session),
        (N, false),
        "{report:?}"
    );
    let counts = wait_for_readings(&app.test_db, 2 * N as i64, Duration::from_secs(60));
    gw.assert_running();
    let log = gw.log_of_last_run();
    let tally = gw.terminate();
    assert_stored_once(
        counts,
        report.acked,
        &format!("after the database came back; gateway {tally:?}"),
    );
    assert_eq!(tally.refused, 0, "{tally:?}");
    assert!(tally.stored >= N, "{tally:?}");
    assert!(
        tally.spooled > 0
            && log.contains("messages go to the spool")
            && log.contains("spool drained"),
        "the gateway spooled during the {outage:?} outage and drained afterwards: {tally:?}\n{log}"
    );
    eprintln!(
        "{test}: {} acknowledged, {} readings stored ({} before the cut, {} at its end); {} connections refused by the cut proxy; gateway {tally:?}; outage {:.1} s; {:.1} s",
        report.acked,
        counts.rows,
        before_cut,
        during_cut,
        proxy.refused(),
        outage.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
}

/// The gateway process is SIGKILLed mid-stream and started again with the same client id and data
/// folder: the broker kept its persistent session (the messages it had not acknowledged, and those
/// published while it was away), and everything arrives once.
fn gateway_killed_and_restarted(app: TestApp) {
    let test = "gateway_killed_and_restarted";
    let Some(broker) = Mosquitto::start(test) else {
        return;
    };
    let Some(pub_program) = mosquitto_pub_program(test) else {
        return;
    };
    let started = Instant::now();
    let w = World::build(&app);
    let sensor = "t3-sensor";
    register(&app, &w, sensor, "sensor");
    let tmp = tempfile::tempdir().unwrap();
    let mut gw = GatewayProcess::start(
        "gw",
        spec(
            database_url(&app.test_db),
            broker.gateway_url("gw-a"),
            &tmp.path().join("data"),
        ),
        tmp.path(),
    );
    wait_until_ingesting(
        &pub_program,
        &app.test_db,
        broker.addr(),
        w.plot.0,
        sensor,
        &mut [&mut gw],
    );
    const N: u64 = 3_000;
    let device = Publisher::start(
        broker.addr(),
        "t3-device",
        PublishPlan {
            topic: telemetry_topic(&w, sensor),
            count: N,
            per_second: 250.0,
            first_ts_ms: now_ms() - 2 * 3_600_000,
        },
    );
    device.wait_acked(N / 3, Duration::from_secs(30));
    let at_kill = reading_counts(&app.test_db).rows;
    assert!(at_kill > 0, "the gateway was storing");
    gw.kill();
    // Away while the device publishes a tenth of its messages: the broker keeps them in the gateway's
    // session.
    device.wait_acked(device.acked() + N / 10, Duration::from_secs(30));
    let while_dead = reading_counts(&app.test_db).rows;
    gw.restart();
    let report = device.finish(Duration::from_secs(60));
    assert_eq!(
        (report.acked, report.lost_session),
        (N, false),
        "{report:?}"
    );
    let counts = wait_for_readings(&app.test_db, 2 * N as i64, Duration::from_secs(60));
    gw.assert_running();
    let log = gw.log_of_last_run();
    let tally = gw.terminate();
    assert_stored_once(
        counts,
        report.acked,
        &format!("after the gateway was killed and restarted; restarted gateway {tally:?}"),
    );
    assert!(
        log.contains("session_present=true"),
        "the restarted gateway resumed its session:\n{log}"
    );
    assert_eq!(tally.refused, 0, "{tally:?}");
    assert!(
        tally.stored as i64 >= N as i64 - while_dead / 2,
        "the restarted gateway stored at least what was missing: {tally:?}"
    );
    eprintln!(
        "{test} ({:?}): {} acknowledged, {} readings stored ({at_kill} when killed, {while_dead} while dead); restarted gateway {tally:?}; {:.1} s",
        app.test_db.backend,
        report.acked,
        counts.rows,
        started.elapsed().as_secs_f64()
    );
}

/// The broker (Mosquitto with persistence) is stopped mid-stream (SIGTERM, as a service manager
/// restarts it) and started again on the same port over the same persistence file; device and gateway reconnect on their own, resume their
/// sessions, and every message the broker acknowledged is stored once.
///
/// A trap this test guards against: Mosquitto (2.0) writes a persistent session's plain
/// subscriptions to its persistence file but not its shared ones (`$share/...`). After a restart a
/// shared subscriber's session is back (`session_present`) without its subscriptions, and messages
/// published before it subscribes again are delivered to nobody. So a single `suyuan gateway`
/// subscribes plainly (its messages queue in its session while it is away) and subscribes again on
/// every connection anyway; replicas that share (`--share-group`) accept that window.
fn broker_restarted(app: TestApp) {
    let test = "broker_restarted";
    let Some(mut broker) = Mosquitto::start(test) else {
        return;
    };
    let Some(pub_program) = mosquitto_pub_program(test) else {
        return;
    };
    let started = Instant::now();
    let w = World::build(&app);
    let sensor = "t4-sensor";
    register(&app, &w, sensor, "sensor");
    let tmp = tempfile::tempdir().unwrap();
    let mut gw = GatewayProcess::start(
        "gw",
        spec(
            database_url(&app.test_db),
            broker.gateway_url("gw-a"),
            &tmp.path().join("data"),
        ),
        tmp.path(),
    );
    wait_until_ingesting(
        &pub_program,
        &app.test_db,
        broker.addr(),
        w.plot.0,
        sensor,
        &mut [&mut gw],
    );
    const N: u64 = 3_000;
    let device = Publisher::start(
        broker.addr(),
        "t4-device",
        PublishPlan {
            topic: telemetry_topic(&w, sensor),
            count: N,
            per_second: 250.0,
            first_ts_ms: now_ms() - 2 * 3_600_000,
        },
    );
    device.wait_acked(2 * N / 5, Duration::from_secs(30));
    // Stopped as a service manager restarts it. (A SIGKILL can lose what Mosquitto acknowledged after
    // its last save of the persistence file, even saving on every change: that loss is the broker's,
    // and the gateway cannot see or prevent it.)
    let errors_before = device.connection_errors();
    broker.terminate();
    let acked_at_kill = device.acked();
    // Away until both clients have lost their connection to it.
    device.wait_connection_lost(errors_before, Duration::from_secs(30));
    gw.wait_for_log("MQTT connection lost", Duration::from_secs(30));
    broker.restart();
    let report = device.finish(Duration::from_secs(60));
    assert!(
        !report.lost_session,
        "the restarted broker had lost the device's session: {report:?}"
    );
    assert_eq!(report.acked, N, "{report:?}");
    assert!(report.connects >= 2, "the device reconnected: {report:?}");
    let counts = wait_for_readings(&app.test_db, 2 * N as i64, Duration::from_secs(60));
    gw.assert_running();
    let log = gw.log_of_last_run();
    let tally = gw.terminate();
    assert!(
        log.contains("MQTT connection restored") && log.contains("session_present=true"),
        "the gateway reconnected and resumed its session:\n{log}"
    );
    assert_stored_once(
        counts,
        report.acked,
        &format!(
            "after the broker restarted ({acked_at_kill} acknowledged when it was killed); gateway {tally:?}"
        ),
    );
    assert_eq!(tally.refused, 0, "{tally:?}");
    assert!(tally.stored >= N, "{tally:?}");
    eprintln!(
        "{test} ({:?}): {} acknowledged ({acked_at_kill} when the broker was killed), {} readings stored; device {report:?}; gateway {tally:?}; {:.1} s",
        app.test_db.backend,
        report.acked,
        counts.rows,
        started.elapsed().as_secs_f64()
    );
}

/// Two replicas (`gw-a`, `gw-b`: own spools, one database) share the subscription
/// (`$share/suyuan/suyuan/v1/...`, `suyuan gateway --share-group suyuan`); `gw-b`
/// is SIGKILLed mid-stream and later started again under its own client id.
///
/// What Mosquitto (2.0) does with a killed member of a shared subscription that has a persistent
/// session: the messages it had in flight, unacknowledged, stay in its session; and the group keeps
/// handing it its round-robin share while it is away, queued in that session. Nothing goes to the
/// surviving replica in its place, so that share waits — this test shows it waiting — until a
/// process connects with the same client id again and receives it. Hence the operator's rule: a
/// dead replica is restarted under its own client id (a replica retired for good must have its
/// session ended, or its share keeps queuing).
fn two_replicas_one_killed(app: TestApp) {
    let test = "two_replicas_one_killed";
    let Some(broker) = Mosquitto::start(test) else {
        return;
    };
    let Some(pub_program) = mosquitto_pub_program(test) else {
        return;
    };
    let started = Instant::now();
    let w = World::build(&app);
    let sensor = "t5-sensor";
    register(&app, &w, sensor, "sensor");
    let tmp = tempfile::tempdir().unwrap();
    let db_url = database_url(&app.test_db);
    let mut gw_a = GatewayProcess::start(
        "gw-a",
        GatewaySpec {
            share_group: Some("suyuan".into()),
            ..spec(
                db_url.clone(),
                broker.gateway_url("gw-a"),
                &tmp.path().join("data-a"),
            )
        },
        tmp.path(),
    );
    wait_until_ingesting(
        &pub_program,
        &app.test_db,
        broker.addr(),
        w.plot.0,
        sensor,
        &mut [&mut gw_a],
    );
    let mut gw_b = GatewayProcess::start(
        "gw-b",
        GatewaySpec {
            share_group: Some("suyuan".into()),
            ..spec(
                db_url,
                broker.gateway_url("gw-b"),
                &tmp.path().join("data-b"),
            )
        },
        tmp.path(),
    );
    gw_b.wait_for_log("MQTT connected", Duration::from_secs(20));
    for gw in [&gw_a, &gw_b] {
        assert!(
            gw.log_of_last_run()
                .contains("$share/suyuan/suyuan/v1/+/+/telemetry"),
            "{} joins the shared subscription:\n{}",
            gw.name,
            gw.log_of_last_run()
        );
    }
    // Publishing starts once the broker has granted both replicas their share of the subscription.
    for gw in [&mut gw_a, &mut gw_b] {
        gw.wait_for_log("MQTT subscriptions granted", Duration::from_secs(20));
    }

    const N: u64 = 3_000;
    let device = Publisher::start(
        broker.addr(),
        "t5-device",
        PublishPlan {
            topic: telemetry_topic(&w, sensor),
            count: N,
            per_second: 250.0,
            first_ts_ms: now_ms() - 2 * 3_600_000,
        },
    );
    device.wait_acked(2 * N / 5, Duration::from_secs(30));
    gw_b.kill();
    let report = device.finish(Duration::from_secs(60));
    assert_eq!(
        (report.acked, report.lost_session),
        (N, false),
        "{report:?}"
    );
    // gw-a stores its share; gw-b's waits in gw-b's session.
    let while_b_dead = wait_for_quiet(
        &app.test_db,
        Duration::from_secs(2),
        Duration::from_secs(30),
    );
    gw_a.assert_running();
    assert!(
        while_b_dead < 2 * N as i64,
        "Mosquitto handed the killed replica's share to the other one ({while_b_dead} of {} readings stored while gw-b was dead): the doc comment of this test is out of date",
        2 * N
    );
    gw_b.restart();
    let counts = wait_for_readings(&app.test_db, 2 * N as i64, Duration::from_secs(60));
    gw_a.assert_running();
    gw_b.assert_running();
    let a = gw_a.terminate();
    let b = gw_b.terminate();
    assert_stored_once(
        counts,
        report.acked,
        &format!("after the killed replica came back under its client id; gw-a {a:?}, restarted gw-b {b:?}"),
    );
    assert_eq!((a.refused, b.refused), (0, 0), "{a:?} {b:?}");
    assert!(
        a.received < N,
        "gw-a received only its share, not every message: {a:?}"
    );
    assert!(b.stored > 0, "the restarted gw-b stored its share: {b:?}");
    eprintln!(
        "{test}: {} acknowledged, {} readings stored; {while_b_dead} stored while gw-b was dead ({} waiting for it); gw-a {a:?}; restarted gw-b {b:?}; {:.1} s",
        report.acked,
        counts.rows,
        2 * N as i64 - while_b_dead,
        started.elapsed().as_secs_f64()
    );
}
