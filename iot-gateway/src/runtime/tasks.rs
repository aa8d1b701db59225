//! The gateway's long-running tasks: the pipeline (batches from the poller, committed, acknowledged in
//! order), the spool's drain, and the housekeeping (refusal counts, the rules' clock). Each runs its
//! blocking work on Tokio's blocking threads and stops on the shared stop signal.

use std::panic::AssertUnwindSafe;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use rumqttc::QoS;
use tokio::sync::{mpsc, watch};

use super::commit::DrainStep;
use super::core::Core;
use crate::mqtt::{AckOutcome, Acker, Backoff, Delivery, LinkState};

/// Takes deliveries in batches, commits them, acknowledges them in order.
pub(super) async fn pipeline(
    core: Arc<Core>,
    acker: Arc<Acker>,
    link: Arc<LinkState>,
    mut rx: mpsc::UnboundedReceiver<Delivery>,
    mut stop: watch::Receiver<bool>,
) {
    let rc = core.config.runtime.clone();
    let batch_wait = Duration::from_millis(rc.batch_wait_ms);
    let mut backoff = Backoff::new(
        Duration::from_millis(rc.retry_min_ms),
        Duration::from_millis(rc.retry_max_ms),
    );
    // Messages that could be neither written nor spooled: retried first, before anything newer.
    let mut held: Vec<Delivery> = Vec::new();
    let took = |d: &Delivery| {
        link.queued.fetch_sub(1, Ordering::Relaxed);
        if d.publish.qos == QoS::AtMostOnce {
            link.queued_qos0.fetch_sub(1, Ordering::Relaxed);
        }
    };
    loop {
        if *stop.borrow() {
            break;
        }
        let mut batch = std::mem::take(&mut held);
        if batch.is_empty() {
            tokio::select! {
                d = rx.recv() => match d {
                    Some(d) => {
                        took(&d);
                        batch.push(d);
                    }
                    None => break,
                },
                _ = stop.wait_for(|s| *s) => break,
            }
        }
        let deadline = tokio::time::Instant::now() + batch_wait;
        let mut bytes: usize = batch.iter().map(|d| d.publish.payload.len()).sum();
        while batch.len() < rc.batch_max_messages && bytes < rc.batch_max_bytes {
            let next = match rx.try_recv() {
                Ok(d) => Some(d),
                Err(mpsc::error::TryRecvError::Disconnected) => None,
                Err(mpsc::error::TryRecvError::Empty) => {
                    tokio::time::timeout_at(deadline, rx.recv())
                        .await
                        .ok()
                        .flatten()
                }
            };
            let Some(d) = next else { break };
            took(&d);
            bytes += d.publish.payload.len();
            batch.push(d);
        }

        let worker = core.clone();
        let joined = tokio::task::spawn_blocking(move || {
            let safe = std::panic::catch_unwind(AssertUnwindSafe(|| worker.commit_live(&batch)));
            (safe, batch)
        })
        .await;
        let Ok((safe, mut batch)) = joined else {
            tracing::error!(
                "the pipeline's worker was cancelled; its messages stay unacknowledged"
            );
            break;
        };
        let safe = safe.unwrap_or_else(|_| {
            tracing::error!("checking a batch panicked; it stays unacknowledged and is retried");
            0
        });
        for outcome in acker.ack_all(&batch[..safe]) {
            match outcome {
                AckOutcome::Sent => core.tally.acked.fetch_add(1, Ordering::Relaxed),
                AckOutcome::Stale => core.tally.stale_acks.fetch_add(1, Ordering::Relaxed),
                AckOutcome::Closed => 0,
            };
        }
        if safe < batch.len() {
            held = batch.split_off(safe);
            let delay = backoff.next_delay();
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = stop.wait_for(|s| *s) => break,
            }
        } else {
            backoff.reset();
        }
    }
}

/// Writes the spool back to the database whenever it holds something.
pub(super) async fn drain(core: Arc<Core>, mut stop: watch::Receiver<bool>) {
    let rc = &core.config.runtime;
    let mut backoff = Backoff::new(
        Duration::from_millis(rc.retry_min_ms),
        Duration::from_millis(rc.retry_max_ms),
    );
    loop {
        if *stop.borrow() {
            break;
        }
        let worker = core.clone();
        let step = tokio::task::spawn_blocking(move || {
            std::panic::catch_unwind(AssertUnwindSafe(|| worker.drain_once()))
                .unwrap_or(DrainStep::Retry)
        })
        .await
        .unwrap_or(DrainStep::Retry);
        match step {
            DrainStep::Progress => backoff.reset(),
            DrainStep::Idle => {
                backoff.reset();
                tokio::select! {
                    _ = core.spool_wake.notified() => {}
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    _ = stop.wait_for(|s| *s) => break,
                }
            }
            DrainStep::Retry => {
                let delay = backoff.next_delay();
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = stop.wait_for(|s| *s) => break,
                }
            }
        }
    }
}

/// Refusal counts to the database, and the no-data rules' clock.
pub(super) async fn housekeeping(core: Arc<Core>, mut stop: watch::Receiver<bool>) {
    let rc = &core.config.runtime;
    let mut flush = tokio::time::interval(Duration::from_millis(rc.refusal_flush_ms));
    flush.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut tick = tokio::time::interval(Duration::from_millis(rc.tick_ms));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let work: fn(&Core) = tokio::select! {
            _ = flush.tick() => Core::flush_refusals,
            _ = tick.tick() => Core::tick,
            _ = stop.wait_for(|s| *s) => break,
        };
        let worker = core.clone();
        let _ = tokio::task::spawn_blocking(move || work(&worker)).await;
    }
}
