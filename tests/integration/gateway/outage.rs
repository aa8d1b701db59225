//! The database goes away in the middle of a stream and comes back: every message published is
//! stored exactly once, in the order it was published, through the spool.

use std::time::Duration;

use suyuan_iot_gateway::{BrokerConfig, DeviceKind, EmbeddedBroker};

use super::support::*;
use crate::support::mqtt::AsyncDevice;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_outage_mid_stream_is_spooled_and_drained_in_order() {
    let broker =
        EmbeddedBroker::start("127.0.0.1:0".parse().unwrap(), BrokerConfig::default()).unwrap();
    let addr = broker.local_addr();
    let prefix = unique_prefix("outage");
    let data = tempfile::tempdir().unwrap();
    let store = FakeStore::with_devices(vec![device(1, "cold-01", 1, DeviceKind::Sensor, true)]);
    let gateway = start_gateway(
        gateway_config(data.path(), &prefix, None),
        mqtt_settings(addr, &unique_id("gw-outage")),
        store.clone(),
    )
    .await;
    wait_subscribed(&gateway).await;

    let device = AsyncDevice::connect(addr, &unique_id("dev-outage"), false);
    let topic = format!("{prefix}/1/cold-01/telemetry");
    let t0 = now_ms() - 120_000;
    const N: u64 = 1500;
    let mut spooled_while_down = 0;
    for seq in 0..N {
        if seq == 300 {
            device.wait_acked(seq, Duration::from_secs(10)).await;
            store.set_down(true);
        }
        if seq == 1100 {
            // By now the gateway has taken some of the stream into its spool.
            wait_until("messages are spooled", Duration::from_secs(10), || {
                gateway.stats().spool.pending > 0
            })
            .await;
            spooled_while_down = gateway.stats().spool.pending;
            store.set_down(false);
        }
        device.publish(&topic, reading(seq, t0 + seq as i64)).await;
        if seq % 50 == 0 {
            // A controlled rate: about 5,000 messages a second.
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    device.wait_acked(N, Duration::from_secs(30)).await;
    wait_until("every reading is stored", Duration::from_secs(30), || {
        store.reading_count() as u64 == N
    })
    .await;
    wait_until(
        "the spool is drained and counted",
        Duration::from_secs(10),
        || {
            let s = gateway.stats();
            s.spool.pending == 0 && s.stored == N && s.drained == s.spooled
        },
    )
    .await;

    let stats = gateway.stats();
    assert!(spooled_while_down > 0);
    assert!(stats.spooled >= spooled_while_down, "{stats:?}");
    assert_eq!(stats.drained, stats.spooled, "{stats:?}");
    assert_eq!(stats.stored, N, "{stats:?}");
    assert_eq!(stats.refused, 0, "{stats:?}");
    assert!(
        store
            .failed_writes
            .load(std::sync::atomic::Ordering::Relaxed)
            > 0
    );

    {
        let db = store.db();
        let mut want: Vec<_> = (0..N)
            .map(|seq| reading_key(1, seq, t0 + seq as i64))
            .collect();
        want.sort();
        let stored: Vec<_> = db.readings.keys().cloned().collect();
        assert_eq!(stored, want, "exactly once");
        // In order: no message overtook an older one, across the switch to the spool and back.
        let seqs: Vec<i64> = db.order.iter().map(|k| k.seq.unwrap_or(-1)).collect();
        assert!(seqs.windows(2).all(|w| w[0] <= w[1]), "stored out of order");
    }
    gateway.shutdown().await;
}
