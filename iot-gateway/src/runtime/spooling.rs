//! The spool as the running gateway holds it: reopened after a failed write (a failed fsync leaves the
//! file's state unknown), appended to with one fsync per batch, and watched for filling up.

use std::sync::atomic::Ordering;
use std::sync::MutexGuard;

use super::core::Core;
use crate::error::Error;
use crate::spool::{Spool, SpoolStats, SpooledMessage};

impl Core {
    pub(super) fn lock_spool(&self) -> MutexGuard<'_, Option<Spool>> {
        self.spool.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn spool_stats(&self) -> SpoolStats {
        match &*self.lock_spool() {
            Some(spool) => spool.stats(),
            None => SpoolStats {
                pending: 0,
                disk_bytes: 0,
                max_bytes: self.config.spool.max_bytes,
                fill_ratio: 0.0,
                nearly_full: false,
                segments: 0,
                torn_bytes_dropped: 0,
                corrupt_bytes_dropped: 0,
            },
        }
    }

    /// Opens the spool again after a failed write (the failed handle refuses appends because
    /// the file's state after a failed fsync is unknown; reopening checks it record by record).
    pub(super) fn reopen_spool(&self, slot: &mut Option<Spool>) -> bool {
        if slot.is_some() {
            return true;
        }
        match Spool::open(&self.config.spool) {
            Ok(spool) => {
                tracing::info!("spool reopened");
                *slot = Some(spool);
                true
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot reopen the spool");
                false
            }
        }
    }

    pub(super) fn update_spool_flags(&self, slot: &Option<Spool>) {
        let Some(spool) = slot else { return };
        let stats = spool.stats();
        let was = self
            .tally
            .spool_nearly_full
            .swap(stats.nearly_full, Ordering::Relaxed);
        if stats.nearly_full && !was {
            tracing::warn!(
                disk_bytes = stats.disk_bytes,
                max_bytes = stats.max_bytes,
                pending = stats.pending,
                "spool is nearly full: the database has been unreachable for long; when the spool is full the gateway stops acknowledging and the broker holds the messages"
            );
        } else if was && !stats.nearly_full {
            tracing::info!(
                disk_bytes = stats.disk_bytes,
                "spool is no longer nearly full"
            );
        }
    }

    /// Appends to the spool with one fsync. `false`: not durable, do not acknowledge.
    pub(super) fn append_to_spool(&self, messages: &[SpooledMessage]) -> bool {
        let mut slot = self.lock_spool();
        if !self.reopen_spool(&mut slot) {
            return false;
        }
        let Some(spool) = slot.as_mut() else {
            return false;
        };
        let result = spool.append_batch(messages);
        let ok = match result {
            Ok(_) => {
                // Counted under the lock, so the drain's count never runs ahead of it.
                self.tally
                    .spooled
                    .fetch_add(messages.len() as u64, Ordering::Relaxed);
                true
            }
            Err(e @ Error::SpoolFull { .. }) => {
                if !self.tally.spool_full.swap(true, Ordering::Relaxed) {
                    tracing::error!(error = %e, "spool is full: messages are no longer acknowledged and stay with the broker until the database is back");
                }
                false
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot append to the spool; messages stay unacknowledged");
                *slot = None;
                return false;
            }
        };
        self.update_spool_flags(&slot);
        drop(slot);
        if ok {
            self.spool_wake.notify_one();
        }
        ok
    }
}
