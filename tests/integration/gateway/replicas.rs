//! Two gateway replicas share the subscription on Mosquitto; one of them dies mid-stream without
//! acknowledging what it held.
//!
//! What Mosquitto 2.0 does, and what this test pins down: a shared subscription's messages are
//! handed out round robin to the group's members *including a member whose persistent session
//! is offline* — they queue in that session, as do the messages it had in flight unacknowledged.
//! Nothing is lost, but that share waits until a process with the same client id connects again.
//! (A clean-session member would lose its in-flight messages when it dies, which is why the
//! gateway never uses one.) So the operator's rule is: restart a dead replica under its own
//! client id. This test kills replica A, shows that part of the stream then waits, restarts A
//! under the same id and checks that everything is stored exactly once.

use std::time::Duration;

use suyuan_iot_gateway::DeviceKind;

use super::support::*;
use crate::support::mqtt::{AsyncDevice, Mosquitto};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_replica_gets_its_share_back_when_it_returns_under_its_id() {
    let test = "a_killed_replica_gets_its_share_back_when_it_returns_under_its_id";
    let Some(broker) = Mosquitto::start(test) else {
        return;
    };
    let addr = broker.addr();
    let prefix = unique_prefix("replicas");
    let store = FakeStore::with_devices(vec![device(1, "cold-01", 1, DeviceKind::Sensor, true)]);
    let data_a = tempfile::tempdir().unwrap();
    let data_b = tempfile::tempdir().unwrap();
    let config_a = gateway_config(data_a.path(), &prefix, Some("suyuan"));
    let config_b = gateway_config(data_b.path(), &prefix, Some("suyuan"));
    let a = start_gateway(config_a.clone(), mqtt_settings(addr, "gw-a"), store.clone()).await;
    let b = start_gateway(config_b, mqtt_settings(addr, "gw-b"), store.clone()).await;
    wait_subscribed(&a).await;
    wait_subscribed(&b).await;

    let device = AsyncDevice::connect(addr, "dev-replicas", false);
    let topic = format!("{prefix}/1/cold-01/telemetry");
    let t0 = now_ms() - 120_000;
    const N: u64 = 2000;
    let mut a = Some(a);
    for seq in 0..N {
        if seq == 800 {
            let a = a.take().unwrap();
            let before = a.stats();
            assert!(before.received > 0, "both replicas get a share: {before:?}");
            // Killed: its unacknowledged messages stay with the broker.
            a.abort();
        }
        device.publish(&topic, reading(seq, t0 + seq as i64)).await;
        if seq % 50 == 0 {
            // Paces the device on purpose: a stream, not one burst.
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    device.wait_acked(N, Duration::from_secs(30)).await;

    // While A is away, B keeps storing its share, and A's share waits in A's session.
    wait_until(
        "replica B has stored everything it received",
        Duration::from_secs(10),
        || {
            let s = b.stats();
            s.queued == 0 && s.stored + s.refused >= s.received
        },
    )
    .await;
    let waiting = N - store.reading_count() as u64;
    assert!(waiting > 0, "part of the stream waits for replica A");
    assert!(b.stats().stored > 400, "{:?}", b.stats());

    // A comes back under its own client id (a service manager's restart) and gets its share.
    let a2 = start_gateway(config_a, mqtt_settings(addr, "gw-a"), store.clone()).await;
    wait_until("every reading is stored", Duration::from_secs(30), || {
        store.reading_count() as u64 == N
    })
    .await;
    assert!(a2.stats().received > 0, "{:?}", a2.stats());

    {
        let db = store.db();
        let mut want: Vec<_> = (0..N)
            .map(|seq| reading_key(1, seq, t0 + seq as i64))
            .collect();
        want.sort();
        let stored: Vec<_> = db.readings.keys().cloned().collect();
        assert_eq!(stored, want, "every published reading, exactly once");
        eprintln!(
            "replicas: {} readings were waiting for the killed replica; B stored {} messages, the restarted A {}",
            waiting,
            b.stats().stored,
            a2.stats().stored
        );
    }
    a2.shutdown().await;
    b.shutdown().await;
}
