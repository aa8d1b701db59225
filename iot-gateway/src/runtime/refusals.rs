//! Refusals: counted by reason, remembered (the newest), and added to the database every few seconds
//! so that the API shows every replica's; and the no-data rules' clock, which the same housekeeping
//! drives.

use std::collections::VecDeque;

use super::core::Core;
use crate::counters::{Refusal, RefusalEntry};
use crate::mqtt::now_ms;

impl Core {
    pub(super) fn refuse_all(&self, topic: &str, received_at_ms: i64, refusals: &[Refusal]) {
        for r in refusals {
            self.refuse(topic, received_at_ms, r.clone());
        }
    }

    pub(super) fn refuse(&self, topic: &str, received_at_ms: i64, refusal: Refusal) {
        tracing::debug!(topic, reason = %refusal.reason, detail = %refusal.detail, "refused");
        self.counters.record(refusal.reason);
        let entry = RefusalEntry {
            received_at_ms,
            topic: topic.to_owned(),
            refusal,
        };
        self.recent.push(entry.clone());
        let mut flush = self.flush.lock().unwrap_or_else(|e| e.into_inner());
        if flush.entries.len() >= self.config.recent_refusals.max(1) {
            flush.entries.pop_front();
        }
        flush.entries.push_back(entry);
    }

    /// Adds the refusals counted since the last successful flush to the database; on failure
    /// they stay for the next one.
    pub(super) fn flush_refusals(&self) {
        let now = self.counters.snapshot();
        let (delta, entries) = {
            let mut flush = self.flush.lock().unwrap_or_else(|e| e.into_inner());
            let delta = match &flush.flushed {
                Some(before) => now.since(before),
                None => now.clone(),
            };
            (delta, std::mem::take(&mut flush.entries))
        };
        if delta.total() == 0 && entries.is_empty() {
            return;
        }
        let entries: Vec<RefusalEntry> = entries.into();
        match self.store.add_refusals(&delta, &entries) {
            Ok(()) => {
                let mut flush = self.flush.lock().unwrap_or_else(|e| e.into_inner());
                flush.flushed = Some(now);
            }
            Err(e) => {
                tracing::debug!(error = %e, "cannot add refusal counts now; keeping them for the next try");
                let mut flush = self.flush.lock().unwrap_or_else(|e| e.into_inner());
                let newer = std::mem::take(&mut flush.entries);
                let capacity = self.config.recent_refusals.max(1);
                let mut all: VecDeque<RefusalEntry> = entries.into_iter().chain(newer).collect();
                while all.len() > capacity {
                    all.pop_front();
                }
                flush.entries = all;
            }
        }
    }

    pub(super) fn tick(&self) {
        if let Err(e) = self.store.tick(now_ms()) {
            tracing::debug!(error = %e, "cannot evaluate the no-data rules now");
        }
    }
}
