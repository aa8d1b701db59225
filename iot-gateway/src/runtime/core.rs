//! What the gateway's tasks share: the settings, the store, the media folder, the spool, the device
//! cache, the refusal counters and the tallies the operator sees. Its methods block (database, disk,
//! image decoding) and run on blocking threads; each concern's methods live in a module of their own.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;

use crate::config::GatewayConfig;
use crate::counters::{CounterSnapshot, RecentRefusals, RefusalCounters, RefusalEntry};
use crate::devices::DeviceCache;
use crate::image::MediaStore;
use crate::spool::Spool;
use crate::store::Store;
use crate::topic::Topics;

/// Message counts for [`GatewayStats`].
#[derive(Debug, Default)]
pub(super) struct Tally {
    pub(super) stored: AtomicU64,
    pub(super) refused: AtomicU64,
    pub(super) spooled: AtomicU64,
    pub(super) drained: AtomicU64,
    pub(super) acked: AtomicU64,
    pub(super) stale_acks: AtomicU64,
    pub(super) spool_nearly_full: AtomicBool,
    pub(super) spool_full: AtomicBool,
    /// The last write found the database unavailable (for logging the change only).
    pub(super) db_down: AtomicBool,
}

/// Refusals not yet added to the database.
#[derive(Debug, Default)]
pub(super) struct FlushState {
    /// The counters as of the last successful flush.
    pub(super) flushed: Option<CounterSnapshot>,
    /// Refused messages since then (the newest `recent_refusals`).
    pub(super) entries: VecDeque<RefusalEntry>,
}

/// Everything the tasks share. Its methods block (database, disk, image decoding) and run on
/// blocking threads.
pub(super) struct Core {
    pub(super) config: GatewayConfig,
    pub(super) topics: Topics,
    pub(super) store: Arc<dyn Store>,
    pub(super) media: MediaStore,
    /// `None` after a failed write, until it is opened again (the old handle must release its
    /// folder lock first).
    pub(super) spool: Mutex<Option<Spool>>,
    pub(super) devices: Mutex<DeviceCache>,
    pub(super) counters: RefusalCounters,
    pub(super) recent: RecentRefusals,
    pub(super) flush: Mutex<FlushState>,
    pub(super) tally: Tally,
    /// Wakes the drain when something was spooled.
    pub(super) spool_wake: Notify,
}

impl std::fmt::Debug for Core {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Core")
            .field("topics", &self.topics)
            .field("media", &self.media)
            .finish_non_exhaustive()
    }
}

impl Core {
    /// The shared state of a gateway over `store`, with its spool already opened (and recovered).
    pub(super) fn new(
        config: GatewayConfig,
        topics: Topics,
        store: Arc<dyn Store>,
        spool: Spool,
    ) -> Core {
        let rc = &config.runtime;
        Core {
            devices: Mutex::new(DeviceCache::new(
                Duration::from_millis(rc.device_refresh_ms),
                Duration::from_millis(rc.unknown_device_ttl_ms),
            )),
            media: MediaStore::new(&config.media_dir),
            recent: RecentRefusals::new(config.recent_refusals),
            spool: Mutex::new(Some(spool)),
            topics,
            store,
            counters: RefusalCounters::new(),
            flush: Mutex::new(FlushState::default()),
            tally: Tally::default(),
            spool_wake: Notify::new(),
            config,
        }
    }
}
