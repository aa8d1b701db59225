//! The broker restarts in the middle of a stream: a device publishing at QoS 1 with a
//! persistent session keeps going, the gateway reconnects with back-off, and every message the
//! broker acknowledged to the device is stored exactly once.

use std::time::Duration;

use suyuan_iot_gateway::DeviceKind;

use super::support::*;
use crate::support::mqtt::{AsyncDevice, Mosquitto};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_restart_mid_stream_loses_nothing() {
    let test = "a_broker_restart_mid_stream_loses_nothing";
    let Some(mut broker) = Mosquitto::start(test) else {
        return;
    };
    let addr = broker.addr();
    let prefix = unique_prefix("restart");
    let data = tempfile::tempdir().unwrap();
    let store = FakeStore::with_devices(vec![device(1, "cold-01", 1, DeviceKind::Sensor, true)]);
    let gateway = start_gateway(
        gateway_config(data.path(), &prefix, None),
        mqtt_settings(addr, "gw-restart"),
        store.clone(),
    )
    .await;
    wait_subscribed(&gateway).await;

    let device = AsyncDevice::connect(addr, "dev-restart", true);
    let topic = format!("{prefix}/1/cold-01/telemetry");
    let t0 = now_ms() - 120_000;
    const N: u64 = 1500;
    for seq in 0..N {
        if seq == 600 {
            // Some of the stream is in flight to the gateway, some not yet acknowledged to the
            // device, when the broker goes down.
            broker.terminate();
            wait_until(
                "the gateway notices the broker is gone",
                Duration::from_secs(5),
                || !gateway.stats().connected,
            )
            .await;
            broker.restart();
        }
        device.publish(&topic, reading(seq, t0 + seq as i64)).await;
        if seq % 50 == 0 {
            // Paces the device on purpose: a stream, not one burst.
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    device.wait_acked(N, Duration::from_secs(60)).await;
    wait_until(
        "every acknowledged reading is stored",
        Duration::from_secs(30),
        || store.reading_count() as u64 == N,
    )
    .await;

    let stats = gateway.stats();
    assert!(stats.connects >= 2, "reconnected: {stats:?}");
    assert_eq!(stats.refused, 0, "{stats:?}");
    {
        let db = store.db();
        let mut want: Vec<_> = (0..N)
            .map(|seq| reading_key(1, seq, t0 + seq as i64))
            .collect();
        want.sort();
        let stored: Vec<_> = db.readings.keys().cloned().collect();
        assert_eq!(stored, want, "every published reading, exactly once");
        let redelivered = db.readings.values().filter(|(_, w)| *w > 1).count();
        eprintln!(
            "broker restart: {} messages received for {N} published, {redelivered} readings written again (absorbed), {} stale acks",
            stats.received, stats.stale_acks
        );
    }
    gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_graceful_shutdown_mid_stream_acknowledges_exactly_what_it_stored_on_mosquitto() {
    let test = "a_graceful_shutdown_mid_stream_acknowledges_exactly_what_it_stored_on_mosquitto";
    let Some(broker) = Mosquitto::start(test) else {
        return;
    };
    graceful_shutdown_mid_stream(broker.addr()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_graceful_shutdown_mid_stream_acknowledges_exactly_what_it_stored_on_the_embedded_broker()
{
    let broker = suyuan_iot_gateway::EmbeddedBroker::start(
        "127.0.0.1:0".parse().unwrap(),
        suyuan_iot_gateway::BrokerConfig::default(),
    )
    .unwrap();
    graceful_shutdown_mid_stream(broker.local_addr()).await;
}

/// Stops the gateway gracefully while a stream is coming in and a slow write is in hand, then
/// starts it again under the same client id: the broker must redeliver exactly what was not
/// acknowledged, and nothing that was stored.
async fn graceful_shutdown_mid_stream(addr: std::net::SocketAddr) {
    let prefix = unique_prefix("graceful");
    let data = tempfile::tempdir().unwrap();
    let store = FakeStore::with_devices(vec![device(1, "cold-01", 1, DeviceKind::Sensor, true)]);
    // A slow database: the shutdown finds a batch being written, which must be acknowledged
    // before the client disconnects (a crash at that moment would have it delivered again).
    store.set_write_delay(Duration::from_millis(50));
    let config = gateway_config(data.path(), &prefix, None);
    let id = unique_id("gw-graceful");
    let gateway = start_gateway(config.clone(), mqtt_settings(addr, &id), store.clone()).await;
    wait_subscribed(&gateway).await;
    let mut gateway = Some(gateway);

    let device = AsyncDevice::connect(addr, &unique_id("dev-graceful"), false);
    let topic = format!("{prefix}/1/cold-01/telemetry");
    let t0 = now_ms() - 120_000;
    const N: u64 = 3000;
    for seq in 0..N {
        device.publish(&topic, reading(seq, t0 + seq as i64)).await;
        if seq == N / 2 {
            // Stop in the middle of the stream, with a batch in hand.
            wait_until("the gateway is busy", Duration::from_secs(10), || {
                store.reading_count() > 200
            })
            .await;
            if let Some(gateway) = gateway.take() {
                gateway.shutdown().await;
            }
        }
    }
    device.wait_acked(N, Duration::from_secs(20)).await;
    let first = store.db().readings.len() as u64;
    assert!(first > 0 && first < N, "{first}");

    // The same client id again: the broker redelivers exactly what was not acknowledged.
    let again = start_gateway(config, mqtt_settings(addr, &id), store.clone()).await;
    wait_until("every reading is stored", Duration::from_secs(20), || {
        store.reading_count() as u64 == N
    })
    .await;
    wait_until(
        "the gateway has acknowledged everything it received",
        Duration::from_secs(10),
        || {
            let s = again.stats();
            s.queued == 0 && s.acked + s.stale_acks >= s.received
        },
    )
    .await;
    let stats = again.stats();
    let rewritten = store.db().readings.values().filter(|(_, w)| *w > 1).count() as u64;
    assert_eq!(
        rewritten, 0,
        "a message stored before the shutdown came again: its ack was lost ({stats:?})"
    );
    assert_eq!(stats.received, N - first, "{stats:?}");
    again.shutdown().await;
}
