//! The database stays away until the spool is full: the operator is warned at the alert ratio,
//! the gateway stops acknowledging (the broker keeps the rest), and once the database is back
//! every message is stored exactly once, in order.

use std::time::Duration;

use suyuan_iot_gateway::{BrokerConfig, DeviceKind, EmbeddedBroker};

use super::support::*;
use crate::support::mqtt::AsyncDevice;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_spool_stops_acknowledging_and_the_broker_keeps_the_rest() {
    let broker =
        EmbeddedBroker::start("127.0.0.1:0".parse().unwrap(), BrokerConfig::default()).unwrap();
    let addr = broker.local_addr();
    let prefix = unique_prefix("spoolfull");
    let data = tempfile::tempdir().unwrap();
    let store = FakeStore::with_devices(vec![device(1, "cold-01", 1, DeviceKind::Sensor, true)]);
    let mut config = gateway_config(data.path(), &prefix, None);
    // A tiny spool: room for about 150 readings.
    config.images.max_bytes = 4096;
    config.spool.segment_bytes = 8192;
    config.spool.max_bytes = 24 * 1024;
    config.spool.alert_ratio = 0.5;
    let gateway = start_gateway(
        config,
        mqtt_settings(addr, &unique_id("gw-full")),
        store.clone(),
    )
    .await;
    wait_subscribed(&gateway).await;
    store.set_down(true);

    let device = AsyncDevice::connect(addr, &unique_id("dev-full"), false);
    let topic = format!("{prefix}/1/cold-01/telemetry");
    let t0 = now_ms() - 120_000;
    const N: u64 = 600;
    for seq in 0..N {
        device.publish(&topic, reading(seq, t0 + seq as i64)).await;
    }
    device.wait_acked(N, Duration::from_secs(20)).await;
    wait_until(
        "the spool fills up and what is on disk is acknowledged",
        Duration::from_secs(20),
        || {
            let s = gateway.stats();
            s.spool_full && s.acked == s.spooled
        },
    )
    .await;
    let full = gateway.stats();
    assert!(full.spool_nearly_full, "{full:?}");
    assert!(full.spool.fill_ratio >= 0.5, "{full:?}");
    assert_eq!(full.stored, 0);
    assert!(
        full.acked < N,
        "only what is on disk is acknowledged: {full:?}"
    );
    // A window on purpose: what is checked is that nothing happens in it, and no event marks that.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(gateway.stats().acked, full.acked, "nothing more while full");
    assert_eq!(store.reading_count(), 0);

    store.set_down(false);
    wait_until("every reading is stored", Duration::from_secs(30), || {
        store.reading_count() as u64 == N
    })
    .await;
    wait_until("the alerts clear", Duration::from_secs(10), || {
        let s = gateway.stats();
        !s.spool_full
            && !s.spool_nearly_full
            && s.spool.pending == 0
            && s.stored == N
            && s.acked == N
    })
    .await;
    let stats = gateway.stats();
    assert_eq!(stats.stored, N, "{stats:?}");
    assert_eq!(stats.acked, N, "{stats:?}");
    {
        let db = store.db();
        assert!(db.readings.values().all(|(_, w)| *w == 1));
        let seqs: Vec<i64> = db.order.iter().map(|k| k.seq.unwrap_or(-1)).collect();
        assert!(seqs.windows(2).all(|w| w[0] <= w[1]), "stored out of order");
    }
    gateway.shutdown().await;
}
