//! The decision core: a batch of decided messages written in one transaction, spooled from the first
//! one that cannot be written, refused where the database rejects them, and how many of them, from the
//! first, are now safe to acknowledge; and the spool's drain through the same steps.
//!
//! The order rule that makes MQTT's in-order acknowledgements safe: nothing overtakes a message that
//! had to be spooled, so once the spool holds anything, newer messages go there too until it drains.

use std::sync::atomic::Ordering;

use super::core::Core;
use super::decide::Decision;
use crate::counters::{Reason, Refusal};
use crate::mqtt::Delivery;
use crate::spool::{Spool, SpoolBatch, SpooledMessage};
use crate::store::{Accepted, StoreError};

/// Most bytes of spooled messages drained in one batch.
const DRAIN_BATCH_BYTES: u64 = 32 * 1024 * 1024;

/// The outcome of one accepted message's write.
#[derive(Debug)]
pub(super) enum WriteResult {
    Stored,
    Rejected(String),
    Unavailable,
}

/// Why a drain step ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum DrainStep {
    /// A batch was written and confirmed.
    Progress,
    /// The spool is empty.
    Idle,
    /// The database (or disk) is away; try again later.
    Retry,
}

/// A decision, with accepted messages moved to their own list (for one `Store::write`).
#[derive(Debug)]
pub(super) enum Planned {
    Refuse(Vec<Refusal>),
    /// Index into the accepted list, and the refused parts.
    Store(usize, Vec<Refusal>),
    Defer,
}

impl Core {
    /// Writes accepted messages in one transaction; when the database rejects the batch, one by
    /// one to find the culprits. Returns one outcome per message; after the first `Unavailable`,
    /// every later one is `Unavailable` too (nothing may overtake it).
    pub(super) fn write_all(&self, accepted: &[Accepted]) -> Vec<WriteResult> {
        if accepted.is_empty() {
            return Vec::new();
        }
        match self.store.write(accepted) {
            Ok(()) => {
                if self.tally.db_down.swap(false, Ordering::Relaxed) {
                    tracing::info!("database reachable again");
                }
                return accepted.iter().map(|_| WriteResult::Stored).collect();
            }
            Err(StoreError::Unavailable(e)) => {
                if !self.tally.db_down.swap(true, Ordering::Relaxed) {
                    tracing::warn!(error = %e, "database unavailable; messages go to the spool");
                }
                return accepted.iter().map(|_| WriteResult::Unavailable).collect();
            }
            Err(StoreError::Rejected(e)) => {
                tracing::warn!(error = %e, messages = accepted.len(), "the database rejected a batch; writing its messages one by one");
            }
        }
        let mut out = Vec::with_capacity(accepted.len());
        let mut unavailable = false;
        for one in accepted {
            if unavailable {
                out.push(WriteResult::Unavailable);
                continue;
            }
            match self.store.write(std::slice::from_ref(one)) {
                Ok(()) => out.push(WriteResult::Stored),
                Err(StoreError::Rejected(e)) => out.push(WriteResult::Rejected(e)),
                Err(StoreError::Unavailable(_)) => {
                    unavailable = true;
                    out.push(WriteResult::Unavailable);
                }
            }
        }
        out
    }

    /// Decides and writes (or spools) a batch of live deliveries. Returns how many of them, from
    /// the first, are now safe to acknowledge; the rest could be neither written nor spooled.
    pub(super) fn commit_live(&self, batch: &[Delivery]) -> usize {
        let spooling = self.lock_spool().as_ref().is_some_and(|s| !s.is_empty());
        let mut decisions = Vec::with_capacity(batch.len());
        let mut accepted = Vec::new();
        for d in batch {
            let decision = self.decide(
                &d.publish.topic,
                &d.publish.payload,
                d.received_at_ms,
                spooling,
            );
            decisions.push(match decision {
                Decision::Store(a, parts) => {
                    accepted.push(a);
                    Planned::Store(accepted.len() - 1, parts)
                }
                Decision::Refuse(r) => Planned::Refuse(r),
                Decision::Defer => Planned::Defer,
            });
        }
        // Everything before the first deferred message may be written now; from it on, the
        // messages go to the spool in order.
        let mut cut = decisions
            .iter()
            .position(|p| matches!(p, Planned::Defer))
            .unwrap_or(decisions.len());
        let writable = decisions[..cut]
            .iter()
            .filter(|p| matches!(p, Planned::Store(..)))
            .count();
        let written = self.write_all(&accepted[..writable]);
        if let Some(first) = written
            .iter()
            .position(|w| matches!(w, WriteResult::Unavailable))
        {
            cut = decisions
                .iter()
                .position(|p| matches!(p, Planned::Store(slot, _) if *slot == first))
                .unwrap_or(cut);
        }

        let to_spool: Vec<SpooledMessage> = batch[cut..]
            .iter()
            .zip(&decisions[cut..])
            .filter(|(_, p)| !matches!(p, Planned::Refuse(_)))
            .map(|(d, _)| SpooledMessage {
                topic: d.publish.topic.clone(),
                payload: d.publish.payload.to_vec(),
                received_at_ms: d.received_at_ms,
            })
            .collect();
        let safe = if to_spool.is_empty() || self.append_to_spool(&to_spool) {
            batch.len()
        } else {
            cut
        };
        if safe == batch.len() && self.tally.spool_full.swap(false, Ordering::Relaxed) {
            tracing::info!("messages are safe again (spool has room or the database is back); acknowledging resumes");
        }

        for (i, (d, planned)) in batch[..safe].iter().zip(&decisions[..safe]).enumerate() {
            let topic = &d.publish.topic;
            match planned {
                Planned::Refuse(refusals) => {
                    self.tally.refused.fetch_add(1, Ordering::Relaxed);
                    self.refuse_all(topic, d.received_at_ms, refusals);
                }
                Planned::Store(slot, parts) if i < cut => {
                    self.record_written(topic, d.received_at_ms, written.get(*slot), parts);
                }
                // Spooled (counted when appended); checked and counted again when drained.
                Planned::Store(..) | Planned::Defer => {}
            }
        }
        safe
    }

    pub(super) fn record_written(
        &self,
        topic: &str,
        received_at_ms: i64,
        written: Option<&WriteResult>,
        parts: &[Refusal],
    ) {
        match written {
            Some(WriteResult::Stored) => {
                self.tally.stored.fetch_add(1, Ordering::Relaxed);
            }
            Some(WriteResult::Rejected(e)) => {
                self.tally.refused.fetch_add(1, Ordering::Relaxed);
                self.refuse(
                    topic,
                    received_at_ms,
                    Refusal::new(Reason::RejectedByDatabase, e.clone()),
                );
            }
            Some(WriteResult::Unavailable) | None => return,
        }
        self.refuse_all(topic, received_at_ms, parts);
    }

    /// Writes the oldest spooled messages and confirms them.
    pub(super) fn drain_once(&self) -> DrainStep {
        let batch: SpoolBatch = {
            let mut slot = self.lock_spool();
            if !self.reopen_spool(&mut slot) {
                return DrainStep::Retry;
            }
            let Some(spool) = slot.as_ref() else {
                return DrainStep::Retry;
            };
            if spool.is_empty() {
                return DrainStep::Idle;
            }
            match spool.read_batch(self.config.runtime.batch_max_messages, DRAIN_BATCH_BYTES) {
                Ok(b) => b,
                Err(e) => {
                    tracing::error!(error = %e, "cannot read the spool");
                    *slot = None;
                    return DrainStep::Retry;
                }
            }
        };
        if batch.messages.is_empty() {
            return DrainStep::Idle;
        }
        let mut decisions = Vec::with_capacity(batch.messages.len());
        let mut accepted = Vec::new();
        for m in &batch.messages {
            match self.decide(&m.topic, &m.payload, m.received_at_ms, false) {
                Decision::Store(a, parts) => {
                    accepted.push(a);
                    decisions.push(Planned::Store(accepted.len() - 1, parts));
                }
                Decision::Refuse(r) => decisions.push(Planned::Refuse(r)),
                Decision::Defer => return DrainStep::Retry,
            }
        }
        let written = self.write_all(&accepted);
        if written
            .iter()
            .any(|w| matches!(w, WriteResult::Unavailable))
        {
            return DrainStep::Retry;
        }
        {
            let mut slot = self.lock_spool();
            let Some(spool) = slot.as_mut() else {
                return DrainStep::Retry;
            };
            if let Err(e) = spool.confirm(&batch) {
                // Written but not confirmed: the batch comes again and the idempotent writes
                // absorb it.
                tracing::error!(error = %e, "cannot move the spool's cursor");
                *slot = None;
                return DrainStep::Retry;
            }
            self.tally
                .drained
                .fetch_add(batch.messages.len() as u64, Ordering::Relaxed);
            self.update_spool_flags(&slot);
            if slot.as_ref().is_some_and(Spool::is_empty) {
                tracing::info!("spool drained");
            }
        }
        for (m, planned) in batch.messages.iter().zip(&decisions) {
            match planned {
                Planned::Refuse(refusals) => {
                    self.tally.refused.fetch_add(1, Ordering::Relaxed);
                    self.refuse_all(&m.topic, m.received_at_ms, refusals);
                }
                Planned::Store(slot, parts) => {
                    self.record_written(&m.topic, m.received_at_ms, written.get(*slot), parts);
                }
                Planned::Defer => {}
            }
        }
        DrainStep::Progress
    }
}

#[cfg(test)]
mod tests {
    //! The decision core against a stand-in store that can be taken down or made to reject a device:
    //! what is written, spooled, refused, and how much of a batch is safe to acknowledge.

    use std::sync::atomic::{AtomicBool, AtomicI64};
    use std::sync::{Arc, Mutex};

    use rumqttc::{Publish, QoS};

    use super::*;
    use crate::config::GatewayConfig;
    use crate::counters::{CounterSnapshot, RefusalEntry};
    use crate::store::{AcceptedKind, DeviceInfo, DeviceKind, Store};
    use crate::topic::{ClientId, SiteId, Topics};

    const T0: i64 = 1_750_000_000_000;

    /// Written (device, seq) in commit order; `down` answers Unavailable, `reject` one device Rejected.
    #[derive(Default)]
    struct FakeStore {
        written: Mutex<Vec<(i64, Option<i64>)>>,
        down: AtomicBool,
        reject: AtomicI64,
    }

    impl Store for FakeStore {
        fn device(&self, client_id: &ClientId) -> Result<Option<DeviceInfo>, StoreError> {
            Ok(self
                .devices()?
                .into_iter()
                .find(|d| &d.client_id == client_id))
        }

        fn devices(&self) -> Result<Vec<DeviceInfo>, StoreError> {
            let device = |id, name: &str| DeviceInfo {
                id,
                client_id: ClientId::new(name).unwrap(),
                site: SiteId(1),
                kind: DeviceKind::Sensor,
                enabled: true,
            };
            Ok(vec![device(1, "cold-01"), device(2, "cold-02")])
        }

        fn write(&self, batch: &[Accepted]) -> Result<(), StoreError> {
            if self.down.load(Ordering::SeqCst) {
                return Err(StoreError::Unavailable("down".into()));
            }
            let reject = self.reject.load(Ordering::SeqCst);
            if batch.iter().any(|m| m.device_id == reject) {
                return Err(StoreError::Rejected(format!("device {reject}")));
            }
            let mut written = self.written.lock().unwrap();
            for m in batch {
                if let AcceptedKind::Telemetry(readings) = &m.what {
                    written.extend(readings.iter().map(|r| (m.device_id, r.seq)));
                }
            }
            Ok(())
        }

        fn add_refusals(&self, _: &CounterSnapshot, _: &[RefusalEntry]) -> Result<(), StoreError> {
            Ok(())
        }

        fn tick(&self, _: i64) -> Result<(), StoreError> {
            Ok(())
        }
    }

    struct Rig {
        _dir: tempfile::TempDir,
        store: Arc<FakeStore>,
        core: Core,
    }

    fn rig() -> Rig {
        let dir = tempfile::tempdir().unwrap();
        let config = GatewayConfig::under_data(dir.path());
        let topics = Topics::new(&config.topics).unwrap();
        let spool = Spool::open(&config.spool).unwrap();
        let store = Arc::new(FakeStore::default());
        let core = Core::new(config, topics, store.clone(), spool);
        Rig {
            _dir: dir,
            store,
            core,
        }
    }

    /// Telemetry message `seq` of a device, as the poller hands it over.
    fn delivery(device: &str, seq: i64) -> Delivery {
        let payload = format!(
            r#"{{"ts": {}, "seq": {seq}, "values": {{"temp_c": 4}}}}"#,
            T0 + seq
        );
        Delivery {
            publish: Publish::new(
                format!("suyuan/v1/1/{device}/telemetry"),
                QoS::AtLeastOnce,
                payload,
            ),
            received_at_ms: T0 + seq,
            epoch: 1,
        }
    }

    fn written(rig: &Rig) -> Vec<(i64, Option<i64>)> {
        rig.store.written.lock().unwrap().clone()
    }

    fn refused(rig: &Rig, reason: Reason) -> u64 {
        rig.core.counters.snapshot().get(reason)
    }

    fn pending(rig: &Rig) -> u64 {
        rig.core.lock_spool().as_ref().map_or(0, Spool::pending)
    }

    #[test]
    fn a_written_batch_is_safe_whole_and_stored_in_order() {
        let rig = rig();
        let batch = [
            delivery("cold-01", 1),
            delivery("cold-02", 2),
            delivery("cold-01", 3),
        ];
        assert_eq!(rig.core.commit_live(&batch), 3);
        assert_eq!(written(&rig), [(1, Some(1)), (2, Some(2)), (1, Some(3))]);
        assert_eq!(rig.core.tally.stored.load(Ordering::SeqCst), 3);
        assert_eq!(pending(&rig), 0);
    }

    #[test]
    fn an_unavailable_database_spools_the_batch_and_it_is_safe() {
        let rig = rig();
        rig.store.down.store(true, Ordering::SeqCst);
        let batch = [delivery("cold-01", 1), delivery("cold-01", 2)];
        assert_eq!(
            rig.core.commit_live(&batch),
            2,
            "spooled is safe to acknowledge"
        );
        assert!(written(&rig).is_empty());
        assert_eq!(pending(&rig), 2);
        assert_eq!(rig.core.tally.spooled.load(Ordering::SeqCst), 2);
        // While the spool holds anything, newer messages go behind them, even with the database back.
        rig.store.down.store(false, Ordering::SeqCst);
        assert_eq!(rig.core.commit_live(&[delivery("cold-01", 3)]), 1);
        assert!(written(&rig).is_empty(), "nothing overtakes the spool");
        assert_eq!(pending(&rig), 3);
    }

    #[test]
    fn the_drain_writes_the_spool_in_order_once_the_database_is_back() {
        let rig = rig();
        rig.store.down.store(true, Ordering::SeqCst);
        let batch = [
            delivery("cold-01", 1),
            delivery("cold-02", 2),
            delivery("cold-01", 3),
        ];
        assert_eq!(rig.core.commit_live(&batch), 3);
        assert_eq!(rig.core.drain_once(), DrainStep::Retry, "still down");
        assert_eq!(pending(&rig), 3, "kept for the next try");
        rig.store.down.store(false, Ordering::SeqCst);
        assert_eq!(rig.core.drain_once(), DrainStep::Progress);
        assert_eq!(written(&rig), [(1, Some(1)), (2, Some(2)), (1, Some(3))]);
        assert_eq!(pending(&rig), 0);
        assert_eq!(rig.core.tally.drained.load(Ordering::SeqCst), 3);
        assert_eq!(rig.core.drain_once(), DrainStep::Idle);
        // Drained: live messages are written directly again.
        assert_eq!(rig.core.commit_live(&[delivery("cold-01", 4)]), 1);
        assert_eq!(written(&rig).last(), Some(&(1, Some(4))));
    }

    #[test]
    fn a_rejected_message_is_refused_and_counted_and_its_neighbours_are_stored() {
        let rig = rig();
        rig.store.reject.store(2, Ordering::SeqCst);
        let batch = [
            delivery("cold-01", 1),
            delivery("cold-02", 2),
            delivery("cold-01", 3),
        ];
        assert_eq!(
            rig.core.commit_live(&batch),
            3,
            "a refusal is acknowledged too"
        );
        assert_eq!(written(&rig), [(1, Some(1)), (1, Some(3))]);
        assert_eq!(refused(&rig, Reason::RejectedByDatabase), 1);
        assert_eq!(rig.core.tally.refused.load(Ordering::SeqCst), 1);
        assert_eq!(pending(&rig), 0, "never retried");
    }

    #[test]
    fn a_message_that_is_wrong_in_itself_is_refused_without_a_write() {
        let rig = rig();
        let mut bad = delivery("cold-01", 1);
        bad.publish.payload = "not json".into();
        let batch = [bad, delivery("stranger", 2), delivery("cold-01", 3)];
        assert_eq!(rig.core.commit_live(&batch), 3);
        assert_eq!(written(&rig), [(1, Some(3))]);
        assert_eq!(refused(&rig, Reason::MalformedJson), 1);
        assert_eq!(refused(&rig, Reason::UnknownDevice), 1);
    }
}
