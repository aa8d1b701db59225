//! Readings, a backlog, an image and a status arrive exactly once; every kind of bad message is
//! refused, counted and reported, and the gateway keeps going — on the embedded broker and on
//! the system's Mosquitto.

use std::net::SocketAddr;
use std::time::Duration;

use suyuan_iot_gateway::{BrokerConfig, DeviceKind, DeviceStatus, EmbeddedBroker, Reason};

use super::support::*;
use crate::support::mqtt::{forget_session, system_broker, AsyncDevice};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_broker_stores_once_and_refuses_the_rest() {
    let broker =
        EmbeddedBroker::start("127.0.0.1:0".parse().unwrap(), BrokerConfig::default()).unwrap();
    ingest_and_refuse(broker.local_addr(), &unique_prefix("embedded")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn system_mosquitto_stores_once_and_refuses_the_rest() {
    let Some(addr) = system_broker("system_mosquitto_stores_once_and_refuses_the_rest") else {
        return;
    };
    ingest_and_refuse(addr, &unique_prefix("mosquitto")).await;
}

async fn ingest_and_refuse(addr: SocketAddr, prefix: &str) {
    let data = tempfile::tempdir().unwrap();
    let store = FakeStore::with_devices(vec![
        device(1, "cold-01", 1, DeviceKind::Sensor, true),
        device(2, "cam-01", 1, DeviceKind::Camera, true),
        device(3, "off-01", 1, DeviceKind::Sensor, false),
    ]);
    let gateway_id = unique_id("gw-ingest");
    let gateway = start_gateway(
        gateway_config(data.path(), prefix, None),
        mqtt_settings(addr, &gateway_id),
        store.clone(),
    )
    .await;
    wait_subscribed(&gateway).await;

    let device = AsyncDevice::connect(addr, &unique_id("dev-ingest"), false);
    let t0 = now_ms() - 60_000;
    let telemetry = |site: u32, dev: &str| format!("{prefix}/{site}/{dev}/telemetry");
    let mut published = 0u64;
    let mut expected = Vec::new();

    // Good: 40 readings, a backlog of three, an image, a status.
    for seq in 0..40u64 {
        let ts = t0 + seq as i64 * 1000;
        device
            .publish(&telemetry(1, "cold-01"), reading(seq, ts))
            .await;
        expected.push(reading_key(1, seq, ts));
        published += 1;
    }
    let backlog: Vec<serde_json::Value> = (100..103u64)
        .map(|seq| {
            let ts = t0 - 3_600_000 + seq as i64;
            expected.push(reading_key(1, seq, ts));
            serde_json::from_slice(&reading(seq, ts)).unwrap()
        })
        .collect();
    device
        .publish(
            &telemetry(1, "cold-01"),
            serde_json::to_vec(&backlog).unwrap(),
        )
        .await;
    let picture = jpeg(320, 240, 7);
    device
        .publish(
            &format!("{prefix}/1/cam-01/image/jpeg/{t0}"),
            picture.clone(),
        )
        .await;
    device
        .publish(&format!("{prefix}/1/cold-01/status"), "online")
        .await;
    published += 3;

    // Bad, each once.
    let bad: Vec<(String, Vec<u8>, Reason)> = vec![
        (
            telemetry(1, "cold-01"),
            b"\x00\x01 not json".to_vec(),
            Reason::MalformedJson,
        ),
        (
            telemetry(1, "cold-01"),
            format!(r#"{{"ts": {t0}, "values": {{"temp_c": NaN}}}}"#).into_bytes(),
            Reason::MalformedJson,
        ),
        (
            telemetry(1, "cold-01"),
            format!(r#"{{"ts": {t0}, "seq": 9999, "values": {{"temp_c": "4.1"}}}}"#).into_bytes(),
            Reason::NotFinite,
        ),
        (
            format!("{prefix}/1/cam-01/image/jpeg/{t0}"),
            b"\x89PNG\r\n\x1a\n not a jpeg".to_vec(),
            Reason::NotJpeg,
        ),
        (
            format!("{prefix}/01/cold-01/telemetry"),
            reading(1, t0),
            Reason::BadTopic,
        ),
        (
            telemetry(1, "ghost-9"),
            reading(1, t0),
            Reason::UnknownDevice,
        ),
        (
            telemetry(2, "cold-01"),
            reading(5000, t0),
            Reason::WrongSite,
        ),
        (
            telemetry(1, "off-01"),
            reading(1, t0),
            Reason::DeviceDisabled,
        ),
        (
            format!("{prefix}/1/cold-01/image/jpeg/{t0}"),
            jpeg(32, 32, 1),
            Reason::WrongDeviceKind,
        ),
        (
            telemetry(1, "cold-01"),
            vec![b' '; 50 * 1024 * 1024],
            Reason::PayloadTooLarge,
        ),
        (
            format!("{prefix}/1/cam-01/image/jpeg/{t0}"),
            {
                let mut big = picture.clone();
                big.resize(12 * 1000 * 1000, 0);
                big
            },
            Reason::ImageTooLarge,
        ),
        (
            // A valid JPEG whose header claims 30,000 × 30,000 pixels (2.7 GB decoded): refused from
            // the header, never decoded.
            format!("{prefix}/1/cam-01/image/jpeg/{t0}"),
            {
                let mut bomb = jpeg(16, 16, 3);
                let sof = bomb
                    .windows(2)
                    .position(|m| m == [0xFF, 0xC0] || m == [0xFF, 0xC2])
                    .unwrap();
                bomb[sof + 5..sof + 7].copy_from_slice(&30_000u16.to_be_bytes());
                bomb[sof + 7..sof + 9].copy_from_slice(&30_000u16.to_be_bytes());
                bomb
            },
            Reason::ImageTooManyPixels,
        ),
    ];
    for (topic, payload, _) in &bad {
        device.publish(topic, payload.clone()).await;
        published += 1;
    }

    // And the gateway keeps going: ten more readings after the 50 MB one.
    for seq in 40..50u64 {
        let ts = t0 + seq as i64 * 1000;
        device
            .publish(&telemetry(1, "cold-01"), reading(seq, ts))
            .await;
        expected.push(reading_key(1, seq, ts));
        published += 1;
    }
    device.wait_acked(published, Duration::from_secs(30)).await;

    let good_messages = 40 + 3 + 10;
    wait_until(
        "every message is stored or refused",
        Duration::from_secs(30),
        || {
            let s = gateway.stats();
            s.stored + s.refused >= published
                && s.refusals.total() == bad.len() as u64
                && s.acked == published
        },
    )
    .await;
    let stats = gateway.stats();
    assert_eq!(stats.stored, good_messages, "{stats:?}");
    assert_eq!(stats.refused, bad.len() as u64, "{stats:?}");
    assert!(stats.connected);
    assert_eq!(stats.spooled, 0);

    {
        let db = store.db();
        let stored: Vec<_> = db.readings.keys().cloned().collect();
        let mut want = expected.clone();
        want.sort();
        assert_eq!(
            stored, want,
            "exactly the good readings, none of the refused ones"
        );
        assert!(
            db.readings.values().all(|(_, writes)| *writes == 1),
            "no redelivery here"
        );
        assert_eq!(db.images.len(), 1);
        assert_eq!(
            db.images.keys().next().unwrap(),
            &suyuan_iot_gateway::sha256_hex(&picture)
        );
        assert_eq!(db.statuses, vec![(1, DeviceStatus::Online)]);
    }
    let media = data.path().join("media");
    let sha = suyuan_iot_gateway::sha256_hex(&picture);
    assert!(media
        .join(&sha[..2])
        .join(&sha[2..4])
        .join(format!("{sha}.thumb.jpg"))
        .exists());

    // Each refusal counted under its code, and reported to the database.
    let mut by_reason = std::collections::BTreeMap::new();
    for (_, _, reason) in &bad {
        *by_reason.entry(*reason).or_insert(0u64) += 1;
    }
    for (reason, n) in &by_reason {
        assert_eq!(stats.refusals.get(*reason), *n, "{reason}: {stats:?}");
    }
    assert_eq!(stats.refusals.total(), bad.len() as u64);
    wait_until(
        "refusals reach the database",
        Duration::from_secs(5),
        || {
            store
                .db()
                .refusals
                .as_ref()
                .is_some_and(|r| r.total() == bad.len() as u64)
        },
    )
    .await;
    let recent = gateway.recent_refusals();
    assert!(recent
        .iter()
        .any(|e| e.refusal.reason == Reason::UnknownDevice && e.topic.contains("ghost-9")));
    assert!(store.db().ticks >= 1, "the no-data rules' clock runs");

    gateway.shutdown().await;
    tokio::task::spawn_blocking(move || forget_session(addr, &gateway_id))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_the_database_rejects_is_refused_and_its_batch_neighbours_are_stored() {
    let broker =
        EmbeddedBroker::start("127.0.0.1:0".parse().unwrap(), BrokerConfig::default()).unwrap();
    let addr = broker.local_addr();
    let prefix = unique_prefix("rejected");
    let data = tempfile::tempdir().unwrap();
    let store = FakeStore::with_devices(vec![
        device(1, "cold-01", 1, DeviceKind::Sensor, true),
        device(2, "cold-02", 1, DeviceKind::Sensor, true),
    ]);
    store.reject_device(2);
    let mut config = gateway_config(data.path(), &prefix, None);
    // One batch for the lot, so the rejection has neighbours.
    config.runtime.batch_wait_ms = 200;
    let gateway = start_gateway(
        config,
        mqtt_settings(addr, &unique_id("gw-rej")),
        store.clone(),
    )
    .await;
    wait_subscribed(&gateway).await;

    let device = AsyncDevice::connect(addr, &unique_id("dev-rej"), false);
    let t0 = now_ms() - 60_000;
    for seq in 0..20u64 {
        let dev = if seq % 5 == 4 { "cold-02" } else { "cold-01" };
        device
            .publish(
                &format!("{prefix}/1/{dev}/telemetry"),
                reading(seq, t0 + seq as i64),
            )
            .await;
    }
    device.wait_acked(20, Duration::from_secs(10)).await;
    wait_until(
        "all 20 are stored or refused",
        Duration::from_secs(10),
        || {
            let s = gateway.stats();
            s.stored + s.refused == 20 && s.acked == 20
        },
    )
    .await;
    let stats = gateway.stats();
    assert_eq!(stats.stored, 16, "{stats:?}");
    assert_eq!(stats.refused, 4, "{stats:?}");
    assert_eq!(stats.refusals.get(Reason::RejectedByDatabase), 4);
    assert_eq!(stats.acked, 20, "refused messages are acknowledged too");
    assert_eq!(store.reading_count(), 16);
    gateway.shutdown().await;
}
