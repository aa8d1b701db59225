//! The IoT data layer on both databases: devices registered by operators (credentials shown once),
//! the gateway's store (`CoreStore`) writing readings, images and statuses idempotently, rules evaluated
//! in the same transaction (threshold with a minimum duration, late backfill marked late, no-data),
//! refusal counts, and the API that reads it all back, with who may see what.

use serde_json::{json, Value};
use suyuan_iot_gateway as gw;
use suyuan_server::iot::store::CoreStore;

use crate::support::{TestApp, World};
use gw::{Accepted, AcceptedKind, DeviceStatus, Reading, Store};

crate::both_backends!(
    devices_are_registered_by_operators,
    readings_are_stored_once_and_read_back,
    metrics_of_one_instant_sent_apart_are_merged,
    replicas_writing_the_same_batch_store_it_once,
    threshold_rule_opens_and_closes_on_event_time,
    late_backfill_and_no_data,
    images_and_statuses,
    refusals_are_counted_for_operators,
);

const MIN: i64 = 60_000;

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap()
        .to_rfc3339()
}

fn encode(text: &str) -> String {
    text.replace('+', "%2B").replace(':', "%3A")
}

/// Registers a device on the cooperative's plot as the operator; returns (id, client id).
fn device(app: &TestApp, w: &World, client_id: &str, kind: &str) -> i64 {
    let (status, d) = app.post(
        "/api/v1/devices",
        Some(&w.operator.token),
        &json!({"site_id": w.plot, "client_id": client_id, "kind": kind, "name": "1号冷库温湿度"}),
    );
    assert_eq!(status, 201, "{d}");
    d["id"].as_i64().unwrap()
}

fn store(app: &TestApp) -> CoreStore {
    CoreStore::new(app.db.clone(), gw::RuleConfig::default())
}

fn temp(w: &World, device_id: i64, ts: i64, seq: i64, value: f64, received: i64) -> Accepted {
    Accepted {
        received_at_ms: received,
        device_id,
        site: gw::SiteId(w.plot.0),
        what: AcceptedKind::Telemetry(vec![Reading {
            ts_ms: ts,
            seq: Some(seq),
            values: vec![("temp_c".into(), value)],
        }]),
    }
}

/// A message from a device that sends no sequence numbers: `metrics` measured at `ts`.
fn unsequenced(w: &World, device_id: i64, ts: i64, metrics: &[(&str, f64)]) -> Accepted {
    Accepted {
        received_at_ms: ts + 500,
        device_id,
        site: gw::SiteId(w.plot.0),
        what: AcceptedKind::Telemetry(vec![Reading {
            ts_ms: ts,
            seq: None,
            values: metrics.iter().map(|(m, v)| ((*m).into(), *v)).collect(),
        }]),
    }
}

/// A site's readings over `[from, to)` through the API, as (metric, ts, value).
fn points(app: &TestApp, w: &World, from: i64, to: i64) -> Vec<(String, i64, f64)> {
    let (status, r) = app.get(
        &format!(
            "/api/v1/sites/{}/readings?from={}&to={}&limit=10000",
            w.plot.0,
            encode(&rfc3339(from)),
            encode(&rfc3339(to))
        ),
        Some(&w.farmer.token),
    );
    assert_eq!(status, 200, "{r}");
    let mut out: Vec<(String, i64, f64)> = r["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["metric"].as_str().unwrap().to_owned(),
                p["ts"].as_i64().unwrap(),
                p["value"].as_f64().unwrap(),
            )
        })
        .collect();
    out.sort_by(|a, b| (a.1, &a.0).cmp(&(b.1, &b.0)));
    out
}

fn alerts(app: &TestApp, w: &World) -> Vec<Value> {
    let (status, page) = app.get(
        &format!("/api/v1/alerts?site_id={}", w.plot.0),
        Some(&w.farmer.token),
    );
    assert_eq!(status, 200, "{page}");
    page["items"].as_array().unwrap().clone()
}

fn devices_are_registered_by_operators(app: TestApp) {
    let w = World::build(&app);
    let (status, d) = app.post(
        "/api/v1/devices",
        Some(&w.operator.token),
        &json!({"site_id": w.plot, "client_id": "coldroom-1.t", "kind": "sensor", "name": "冷库温度"}),
    );
    assert_eq!(status, 201, "{d}");
    assert_eq!(d["username"], "coldroom-1.t");
    assert!(d["password"].as_str().unwrap().len() >= 32);
    assert_eq!(
        d["org_id"],
        json!(w.coop),
        "the site's organisation owns it"
    );
    assert_eq!(d["status"], "unknown");
    let before = app.counts();
    for (token, body, status, code) in [
        (
            &w.farmer.token,
            json!({"site_id": w.plot, "client_id": "x1", "kind": "sensor", "name": "n"}),
            403,
            "forbidden",
        ),
        (
            &w.operator.token,
            json!({"site_id": w.plot, "client_id": "coldroom-1.t", "kind": "sensor", "name": "n"}),
            409,
            "client_id_taken",
        ),
        (
            &w.operator.token,
            json!({"site_id": w.plot, "client_id": "bad id/+", "kind": "sensor", "name": "n"}),
            422,
            "invalid_client_id",
        ),
        (
            &w.operator.token,
            json!({"site_id": w.plot, "client_id": "x2", "kind": "drone", "name": "n"}),
            422,
            "invalid_body",
        ),
        (
            &w.operator.token,
            json!({"site_id": 999_999, "client_id": "x3", "kind": "sensor", "name": "n"}),
            404,
            "not_found",
        ),
        (
            &w.operator.token,
            json!({"site_id": w.plot, "client_id": "x4", "kind": "camera", "name": " "}),
            422,
            "invalid_name",
        ),
    ] {
        let (s, e) = app.post("/api/v1/devices", Some(token), &body);
        assert_eq!(
            (s, e["error"].as_str()),
            (status, Some(code)),
            "{body}: {e}"
        );
    }
    assert_eq!(app.counts(), before, "refusals store nothing");
    let (_, mine) = app.get("/api/v1/devices", Some(&w.farmer.token));
    assert_eq!(mine["items"].as_array().unwrap().len(), 1);
    assert!(
        mine["items"][0].get("password").is_none()
            && mine["items"][0].get("password_hash").is_none()
    );
    let (_, theirs) = app.get("/api/v1/devices", Some(&w.other_farmer.token));
    assert!(theirs["items"].as_array().unwrap().is_empty());
    let id = d["id"].as_i64().unwrap();
    assert_eq!(
        app.get(
            &format!("/api/v1/devices/{id}"),
            Some(&w.other_farmer.token)
        )
        .0,
        404
    );
    assert_eq!(
        app.get(&format!("/api/v1/devices/{id}"), Some(&w.regulator.token))
            .0,
        200
    );
    let password = d["password"].as_str().unwrap().to_owned();
    app.db
        .read(|c| {
            assert!(suyuan_core::store::iot::device_login(c, "coldroom-1.t", &password)?.is_some());
            assert_eq!(
                suyuan_core::store::iot::device_login(c, "coldroom-1.t", "guess")?,
                None
            );
            Ok(())
        })
        .unwrap();
}

fn readings_are_stored_once_and_read_back(app: TestApp) {
    let w = World::build(&app);
    let id = device(&app, &w, "t1", "sensor");
    let s = store(&app);
    let t0 = now_ms() - 60 * MIN;
    let batch: Vec<Accepted> = (0..50)
        .map(|i| {
            temp(
                &w,
                id,
                t0 + i * MIN,
                i,
                4.0 + (i % 3) as f64,
                t0 + i * MIN + 500,
            )
        })
        .collect();
    s.write(&batch).unwrap();
    s.write(&batch).unwrap();
    s.write(&batch[10..20]).unwrap();
    let path = format!(
        "/api/v1/sites/{}/readings?from={}&to={}",
        w.plot.0,
        encode(&rfc3339(t0)),
        encode(&rfc3339(t0 + 60 * MIN))
    );
    let (status, r) = app.get(&path, Some(&w.farmer.token));
    assert_eq!(status, 200, "{r}");
    let points = r["points"].as_array().unwrap();
    assert_eq!(points.len(), 50, "each reading stored once");
    assert_eq!(points[0]["unit"], "c");
    assert_eq!(points[0]["ts"], json!(t0));
    assert_eq!(points[49]["ts"], json!(t0 + 49 * MIN));
    assert_eq!(r["truncated"], false);
    let (_, r) = app.get(&format!("{path}&limit=10"), Some(&w.farmer.token));
    assert_eq!(
        (
            r["points"].as_array().unwrap().len(),
            r["truncated"].as_bool()
        ),
        (10, Some(true))
    );
    let (_, r) = app.get(&format!("{path}&metric=rh_pct"), Some(&w.farmer.token));
    assert!(r["points"].as_array().unwrap().is_empty());
    assert_eq!(
        app.get(&path, Some(&w.other_farmer.token)).0,
        404,
        "another cooperative's site"
    );
    assert_eq!(app.get(&path, Some(&w.regulator.token)).0, 200);
    let (s2, e) = app.get(
        &format!(
            "/api/v1/sites/{}/readings?from={}&to={}",
            w.plot.0,
            encode(&rfc3339(t0)),
            encode(&rfc3339(t0))
        ),
        Some(&w.farmer.token),
    );
    assert_eq!((s2, e["error"].as_str()), (422, Some("invalid_range")));
    let (_, dev) = app.get(&format!("/api/v1/devices/{id}"), Some(&w.farmer.token));
    assert_eq!(
        chrono::DateTime::parse_from_rfc3339(dev["last_seen_at"].as_str().unwrap())
            .unwrap()
            .timestamp_millis(),
        t0 + 49 * MIN
    );
}

/// A device without sequence numbers that reports the metrics of one instant in separate messages: the
/// messages share a stored row's key (device, ts, seq), and every metric is kept, once, the first value
/// winning, whether the messages come in one batch or in several; a rule sees a metric that arrives later.
fn metrics_of_one_instant_sent_apart_are_merged(app: TestApp) {
    let w = World::build(&app);
    let id = device(&app, &w, "room-2", "sensor");
    let (status, rule) = app.post(
        "/api/v1/rules",
        Some(&w.farmer.token),
        &json!({"site_id": w.plot, "kind": "threshold", "name": "湿度过高", "metric": "rh_pct", "max_value": 90.0, "duration_ms": 0}),
    );
    assert_eq!(status, 201, "{rule}");
    let s = store(&app);
    let t0 = now_ms() - 30 * MIN;
    let (t1, t2) = (t0 + MIN, t0 + 2 * MIN);
    // Two batches at t0: the temperature first, the humidity later (too high: the rule must see it).
    s.write(&[unsequenced(&w, id, t0, &[("temp_c", 4.0)])])
        .unwrap();
    s.write(&[unsequenced(&w, id, t0, &[("rh_pct", 95.0)])])
        .unwrap();
    // One batch at t1 holding both halves and a repeat of the temperature with another value.
    s.write(&[
        unsequenced(&w, id, t1, &[("temp_c", 5.0)]),
        unsequenced(&w, id, t1, &[("rh_pct", 85.0), ("temp_c", 7.0)]),
    ])
    .unwrap();
    // Redelivered, and a later value for a stored metric: nothing changes.
    s.write(&[
        unsequenced(&w, id, t0, &[("rh_pct", 95.0)]),
        unsequenced(&w, id, t0, &[("temp_c", 9.0), ("rh_pct", 20.0)]),
    ])
    .unwrap();
    s.write(&[unsequenced(
        &w,
        id,
        t2,
        &[("rh_pct", 80.0), ("temp_c", 4.5)],
    )])
    .unwrap();
    assert_eq!(
        points(&app, &w, t0, t0 + 10 * MIN),
        vec![
            ("rh_pct".to_owned(), t0, 95.0),
            ("temp_c".to_owned(), t0, 4.0),
            ("rh_pct".to_owned(), t1, 85.0),
            ("temp_c".to_owned(), t1, 5.0),
            ("rh_pct".to_owned(), t2, 80.0),
            ("temp_c".to_owned(), t2, 4.5),
        ]
    );
    let raised = alerts(&app, &w);
    assert_eq!(raised.len(), 1, "{raised:?}");
    assert_eq!(raised[0]["metric"], "rh_pct");
    assert_eq!(raised[0]["value"], 95.0);
    assert!(
        !raised[0]["closed_at"].is_null(),
        "closed by 85 % at t1: {raised:?}"
    );
}

/// Two gateway replicas can be handed the same messages (a redelivery after one was cut off): writing the
/// same batch from four threads at once stores every reading once, and every write succeeds.
fn replicas_writing_the_same_batch_store_it_once(app: TestApp) {
    let w = World::build(&app);
    let id = device(&app, &w, "twin-1", "sensor");
    let t0 = now_ms() - 60 * MIN;
    let batch: Vec<Accepted> = (0..300)
        .map(|i| temp(&w, id, t0 + i * 1000, i, 4.0, t0 + i * 1000 + 100))
        .collect();
    for round in 0..3 {
        let batch: Vec<Accepted> = batch[round * 100..(round + 1) * 100].to_vec();
        std::thread::scope(|scope| {
            let writers: Vec<_> = (0..4)
                .map(|_| {
                    let (s, batch) = (store(&app), batch.clone());
                    scope.spawn(move || s.write(&batch))
                })
                .collect();
            for w in writers {
                w.join().unwrap().expect("every replica's write succeeds");
            }
        });
    }
    let got = points(&app, &w, t0, t0 + 300 * 1000);
    assert_eq!(got.len(), 300, "each reading once");
    assert!(got.windows(2).all(|p| p[0].1 < p[1].1));
}

fn threshold_rule_opens_and_closes_on_event_time(app: TestApp) {
    let w = World::build(&app);
    let id = device(&app, &w, "cold-1", "sensor");
    let (status, rule) = app.post(
        "/api/v1/rules",
        Some(&w.farmer.token),
        &json!({"site_id": w.plot, "kind": "threshold", "name": "冷库超温", "metric": "temp_c", "max_value": 8.0, "duration_ms": 30 * MIN}),
    );
    assert_eq!(status, 201, "{rule}");
    for (token, body, status, code) in [
        (
            &w.farmer.token,
            json!({"site_id": w.plot, "kind": "threshold", "name": "x", "duration_ms": 0, "metric": "temp_c"}),
            422,
            "missing_limit",
        ),
        (
            &w.farmer.token,
            json!({"site_id": w.plot, "kind": "threshold", "name": "x", "duration_ms": 0, "max_value": 3}),
            422,
            "missing_metric",
        ),
        (
            &w.farmer.token,
            json!({"site_id": w.plot, "kind": "threshold", "name": "x", "duration_ms": 0, "metric": "t_c", "min_value": 9, "max_value": 3}),
            422,
            "invalid_limit",
        ),
        (
            &w.farmer.token,
            json!({"site_id": w.plot, "kind": "no_data", "name": "x", "duration_ms": 1000}),
            422,
            "invalid_duration",
        ),
        (
            &w.other_farmer.token,
            json!({"site_id": w.plot, "kind": "no_data", "name": "x", "duration_ms": 900000}),
            404,
            "not_found",
        ),
        (
            &w.regulator.token,
            json!({"site_id": w.plot, "kind": "no_data", "name": "x", "duration_ms": 900000}),
            403,
            "forbidden",
        ),
    ] {
        let (s, e) = app.post("/api/v1/rules", Some(token), &body);
        assert_eq!(
            (s, e["error"].as_str()),
            (status, Some(code)),
            "{body}: {e}"
        );
    }
    let s = store(&app);
    let t0 = now_ms() - 120 * MIN;
    // 20 minutes above 8 °C, then back: no alert.
    let short: Vec<Accepted> = [(0, 5.0), (5, 9.0), (15, 9.5), (25, 9.1), (26, 6.0)]
        .iter()
        .enumerate()
        .map(|(i, (m, v))| temp(&w, id, t0 + m * MIN, i as i64, *v, t0 + m * MIN + 1000))
        .collect();
    s.write(&short).unwrap();
    assert!(alerts(&app, &w).is_empty(), "20 minutes above is not 30");
    // 35 minutes above: opens at the start of the excursion, closes at the first reading back in range.
    let long: Vec<Accepted> = [(40, 9.0), (50, 10.0), (60, 11.0), (76, 9.0), (80, 4.0)]
        .iter()
        .enumerate()
        .map(|(i, (m, v))| temp(&w, id, t0 + m * MIN, 10 + i as i64, *v, t0 + m * MIN + 1000))
        .collect();
    // Written one message at a time, like a live stream, and then all again (a redelivery).
    for msg in &long[..4] {
        s.write(std::slice::from_ref(msg)).unwrap();
    }
    let open = alerts(&app, &w);
    assert_eq!(open.len(), 1, "{open:?}");
    assert_eq!(open[0]["kind"], "sensor_threshold");
    assert!(open[0]["closed_at"].is_null());
    assert_eq!(open[0]["late"], false);
    assert!(open[0]["message"].as_str().unwrap().contains("冷库超温"));
    s.write(&long).unwrap();
    let closed = alerts(&app, &w);
    assert_eq!(
        closed.len(),
        1,
        "a redelivery raises nothing new: {closed:?}"
    );
    let opened_at =
        chrono::DateTime::parse_from_rfc3339(closed[0]["opened_at"].as_str().unwrap()).unwrap();
    let closed_at =
        chrono::DateTime::parse_from_rfc3339(closed[0]["closed_at"].as_str().unwrap()).unwrap();
    assert_eq!(
        opened_at.timestamp_millis(),
        t0 + 40 * MIN,
        "opened when the excursion began"
    );
    assert_eq!(
        closed_at.timestamp_millis(),
        t0 + 80 * MIN,
        "closed by the first reading back in range"
    );
    // The regulator sees it too; another cooperative does not.
    let (_, all) = app.get("/api/v1/alerts", Some(&w.regulator.token));
    assert!(all["items"]
        .as_array()
        .unwrap()
        .iter()
        .any(|a| a["kind"] == "sensor_threshold"));
    let (_, other) = app.get("/api/v1/alerts", Some(&w.other_farmer.token));
    assert!(!other["items"]
        .as_array()
        .unwrap()
        .iter()
        .any(|a| a["kind"] == "sensor_threshold"));
}

fn late_backfill_and_no_data(app: TestApp) {
    let w = World::build(&app);
    let id = device(&app, &w, "cold-2", "sensor");
    for body in [
        json!({"site_id": w.plot, "kind": "threshold", "name": "冷库超温", "metric": "temp_c", "max_value": 8.0, "duration_ms": 30 * MIN}),
        json!({"site_id": w.plot, "kind": "no_data", "name": "冷库断线", "duration_ms": 15 * MIN}),
    ] {
        assert_eq!(
            app.post("/api/v1/rules", Some(&w.farmer.token), &body).0,
            201
        );
    }
    let s = store(&app);
    let now = now_ms();
    let t0 = now - 24 * 60 * MIN;
    // A device that was offline flushes yesterday's excursion today: the alert is marked late.
    let backlog: Vec<Accepted> = (0..8)
        .map(|i| temp(&w, id, t0 + i * 10 * MIN, i, 12.0, now))
        .collect();
    s.write(&backlog).unwrap();
    let a = alerts(&app, &w);
    assert_eq!(a.len(), 1, "{a:?}");
    assert_eq!(a[0]["late"], true, "{a:?}");
    assert!(a[0]["message"].as_str().unwrap().contains("补传"));
    // The device has been silent since the backlog's last reading: the no-data rule opens.
    s.tick(now).unwrap();
    s.tick(now).unwrap();
    let a = alerts(&app, &w);
    let no_data: Vec<&Value> = a.iter().filter(|x| x["kind"] == "sensor_no_data").collect();
    assert_eq!(
        no_data.len(),
        1,
        "once, however often the check runs: {a:?}"
    );
    assert!(no_data[0]["closed_at"].is_null());
    // Data arrives: it closes.
    s.write(&[temp(&w, id, now - 1000, 100, 4.0, now)]).unwrap();
    let a = alerts(&app, &w);
    let no_data: Vec<&Value> = a.iter().filter(|x| x["kind"] == "sensor_no_data").collect();
    assert!(!no_data[0]["closed_at"].is_null(), "{a:?}");
    // The no-data clock saved the device's states without losing the threshold rule's: the reading
    // back in range closes yesterday's excursion too.
    let threshold: Vec<&Value> = a
        .iter()
        .filter(|x| x["kind"] == "sensor_threshold")
        .collect();
    assert_eq!(threshold.len(), 1, "{a:?}");
    assert!(!threshold[0]["closed_at"].is_null(), "{a:?}");
}

fn images_and_statuses(app: TestApp) {
    let w = World::build(&app);
    let cam = device(&app, &w, "plot-cam-1", "camera");
    let media = tempfile::tempdir().unwrap();
    let mut jpeg = Vec::new();
    let img = image::RgbImage::from_fn(640, 480, |x, y| {
        image::Rgb([(x % 256) as u8, (y % 256) as u8, 90])
    });
    image::DynamicImage::ImageRgb8(img)
        .write_to(
            &mut std::io::Cursor::new(&mut jpeg),
            image::ImageFormat::Jpeg,
        )
        .unwrap();
    let stored = gw::MediaStore::new(media.path())
        .store_jpeg(&jpeg, &gw::ImageLimits::default())
        .unwrap();
    let s = store(&app);
    let taken = now_ms() - 5 * MIN;
    let msg = Accepted {
        received_at_ms: now_ms(),
        device_id: cam,
        site: gw::SiteId(w.plot.0),
        what: AcceptedKind::Image {
            ts_ms: taken,
            image: stored.clone(),
        },
    };
    s.write(std::slice::from_ref(&msg)).unwrap();
    s.write(&[msg]).unwrap();
    let status = |st: DeviceStatus, at: i64| Accepted {
        received_at_ms: at,
        device_id: cam,
        site: gw::SiteId(w.plot.0),
        what: AcceptedKind::Status(st),
    };
    s.write(&[status(DeviceStatus::Online, now_ms() - 1000)])
        .unwrap();
    // An older retained message arriving late does not overwrite the newer state.
    s.write(&[status(DeviceStatus::Offline, now_ms() - 60_000)])
        .unwrap();
    let (_, dev) = app.get(&format!("/api/v1/devices/{cam}"), Some(&w.farmer.token));
    assert_eq!(dev["status"], "online", "{dev}");
    let list = app.get(
        &format!(
            "/api/v1/sites/{}/images?from={}&to={}",
            w.plot.0,
            encode(&rfc3339(taken - MIN)),
            encode(&rfc3339(taken + MIN))
        ),
        Some(&w.farmer.token),
    );
    assert_eq!(list.0, 200, "{}", list.1);
    let items = list.1["items"].as_array().unwrap().clone();
    assert_eq!(items.len(), 1, "stored once: {items:?}");
    assert_eq!(items[0]["sha256"], stored.sha256);
    assert_eq!(
        (items[0]["width"].as_i64(), items[0]["height"].as_i64()),
        (Some(640), Some(480))
    );
    // This test server serves no media folder; the rows are there, the bytes are served by `suyuan serve`.
    assert_eq!(
        app.fetch(
            items[0]["href"].as_str().unwrap(),
            Some(&w.farmer.token),
            None
        )
        .0,
        404
    );
    assert_eq!(
        app.fetch(items[0]["href"].as_str().unwrap(), None, None).0,
        401
    );
}

fn refusals_are_counted_for_operators(app: TestApp) {
    let w = World::build(&app);
    let s = store(&app);
    let counters = gw::RefusalCounters::new();
    counters.record(gw::Reason::UnknownDevice);
    counters.record(gw::Reason::UnknownDevice);
    counters.record(gw::Reason::NotJpeg);
    let recent = vec![gw::RefusalEntry {
        received_at_ms: now_ms(),
        topic: "suyuan/v1/1/ghost/telemetry".into(),
        refusal: gw::Refusal::new(gw::Reason::UnknownDevice, "no device ghost"),
    }];
    s.add_refusals(&counters.snapshot(), &recent).unwrap();
    s.add_refusals(&counters.snapshot(), &[]).unwrap();
    let (status, r) = app.get("/api/v1/gateway/refusals", Some(&w.operator.token));
    assert_eq!(status, 200, "{r}");
    let unknown = r
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["reason"] == "unknown_device")
        .unwrap();
    assert_eq!(unknown["refused"], 4, "summed over flushes (and replicas)");
    assert_eq!(unknown["last_topic"], "suyuan/v1/1/ghost/telemetry");
    assert_eq!(
        app.get("/api/v1/gateway/refusals", Some(&w.farmer.token)).0,
        403
    );
}
