//! The scan log: every scan is queued here by the page and written in batches by a thread of its own.
//!
//! The page never waits for the database: it queues the scan ([`ScanLog::log`]) and answers. The writer
//! takes whatever has queued up (up to [`BATCH`] events) and writes it in one transaction, applying the
//! counterfeit rules on the way (`suyuan_core::store::scans::record`). When the database fails it keeps
//! the batch and tries again with back-off, so nothing queued is dropped; the queue is bounded
//! ([`QUEUE`] events), so a database that stays away eventually slows the pages rather than exhausting
//! memory. [`ScanLog::flush`] waits until everything queued before it is stored (graceful shutdown,
//! tests, benchmarks).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use suyuan_core::model::{ScanEvent, ScanRules};
use suyuan_core::store::scans;
use suyuan_core::Database;
use tokio::sync::{mpsc, oneshot};

/// Events written per transaction at most.
pub const BATCH: usize = 1000;
/// Events queued at most before `log` waits.
pub const QUEUE: usize = 100_000;
/// How long the writer gathers scans after the first one before it writes them: a few large
/// transactions rather than many small ones (each commit waits for the disk; on PostgreSQL each statement
/// is a round trip), while a scan still reaches the database well within a second.
pub const GATHER: Duration = Duration::from_millis(50);

enum Item {
    Event(ScanEvent),
    Flush(oneshot::Sender<()>),
}

/// Counters for operators and benchmarks.
#[derive(Debug, Default)]
pub struct ScanLogStats {
    /// Scans queued by the pages.
    pub queued: AtomicU64,
    /// Scans committed to the database.
    pub stored: AtomicU64,
}

/// The handle pages log through; cheap to clone.
#[derive(Debug, Clone)]
pub struct ScanLog {
    tx: mpsc::Sender<Item>,
    stats: Arc<ScanLogStats>,
}

impl ScanLog {
    /// Starts the writer thread over `db`.
    pub fn start(db: Database, rules: ScanRules) -> std::io::Result<ScanLog> {
        let (tx, rx) = mpsc::channel(QUEUE);
        let stats = Arc::new(ScanLogStats::default());
        let counters = stats.clone();
        std::thread::Builder::new()
            .name("scan-log".into())
            .spawn(move || write_loop(db, rules, rx, &counters))?;
        Ok(ScanLog { tx, stats })
    }

    /// Queues a scan (or a shared location). Waits only when [`QUEUE`] events are already waiting.
    pub async fn log(&self, event: ScanEvent) {
        if matches!(event, ScanEvent::Scan(_)) {
            self.stats.queued.fetch_add(1, Ordering::Relaxed);
        }
        if self.tx.send(Item::Event(event)).await.is_err() {
            tracing::error!("the scan log's writer has stopped; a scan was not logged");
        }
    }

    /// Returns once everything queued before the call is stored.
    pub async fn flush(&self) {
        let (done, wait) = oneshot::channel();
        if self.tx.send(Item::Flush(done)).await.is_ok() {
            let _ = wait.await;
        }
    }

    /// The counters.
    pub fn stats(&self) -> &ScanLogStats {
        &self.stats
    }
}

fn write_loop(db: Database, rules: ScanRules, mut rx: mpsc::Receiver<Item>, stats: &ScanLogStats) {
    let mut events = Vec::with_capacity(BATCH);
    let mut flushes = Vec::new();
    while let Some(first) = rx.blocking_recv() {
        let deadline = std::time::Instant::now() + GATHER;
        let mut next = Some(first);
        loop {
            while let Some(item) = next.take() {
                match item {
                    Item::Event(e) => events.push(e),
                    Item::Flush(done) => flushes.push(done),
                }
                if events.len() < BATCH {
                    next = rx.try_recv().ok();
                }
            }
            // A flush (shutdown, tests) is answered at once; otherwise gather until the batch is full
            // or the time is up.
            if !flushes.is_empty() || events.len() >= BATCH || std::time::Instant::now() >= deadline
            {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
            next = rx.try_recv().ok();
        }
        let mut backoff = Duration::from_millis(50);
        while !events.is_empty() {
            match db.write(|c| scans::record(c, &events, &rules)) {
                Ok(n) => {
                    stats.stored.fetch_add(n as u64, Ordering::Relaxed);
                    events.clear();
                }
                Err(e) => {
                    tracing::warn!(
                        "scan log: writing {} scans failed ({e}); retrying in {:?}",
                        events.len(),
                        backoff
                    );
                    std::thread::sleep(backoff);
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
        for done in flushes.drain(..) {
            let _ = done.send(());
        }
    }
}
