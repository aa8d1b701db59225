//! The broker restarts in the middle of a stream: a device publishing at QoS 1 with a
//! persistent session keeps going, the gateway reconnects with back-off, and every message the
//! broker acknowledged to the device is stored exactly once.

use std::time::Duration;

use suyuan_iot_gateway::DeviceKind;

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_restart_mid_stream_loses_nothing() {
    let test = "a_broker_restart_mid_stream_loses_nothing";
    let Some(mut broker) = OwnMosquitto::start(test) else {
        return;
    };
    let addr = broker.addr;
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

    let device = Publisher::connect(addr, "dev-restart", true);
    let topic = format!("{prefix}/1/cold-01/telemetry");
    let t0 = now_ms() - 120_000;
    const N: u64 = 1500;
    for seq in 0..N {
        if seq == 600 {
            // Some of the stream is in flight to the gateway, some not yet acknowledged to the
            // device, when the broker goes down.
            broker.stop();
            tokio::time::sleep(Duration::from_millis(300)).await;
            assert!(
                tokio::time::timeout(Duration::from_secs(2), async {
                    while gateway.stats().connected {
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                })
                .await
                .is_ok(),
                "the gateway notices the broker is gone"
            );
            broker.restart();
        }
        device.publish(&topic, reading(seq, t0 + seq as i64)).await;
        if seq % 50 == 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    device.wait_acked(N, Duration::from_secs(60)).await;
    wait_until(
        "every acknowledged reading is stored",
        Duration::from_secs(30),
        || store.reading_count() as u64 == 2 * N,
    )
    .await;

    let stats = gateway.stats();
    assert!(stats.connects >= 2, "reconnected: {stats:?}");
    assert_eq!(stats.refused, 0, "{stats:?}");
    {
        let db = store.db();
        let mut want: Vec<_> = (0..N)
            .flat_map(|seq| reading_keys("cold-01", seq, t0 + seq as i64))
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
