//! One-step recall: the batch and every batch made from it, forward through the lineage, in one transaction.

use super::alerts::{self, NewAlert};
use super::batches;
use super::lineage::reachable_ids;
use super::records::append;
use super::rows::RecordRow;
use super::DbConnection;
use crate::chain::canonical_json;
use crate::error::{CoreError, CoreResult};
use crate::model::*;
use crate::policy;
use crate::time::now_millis;
use crate::BatchId;

/// Recalls `origin` and everything downstream: each batch is marked recalled and gets a `recall` record in its
/// chain naming the origin and the reason. Batches recalled before are left as they are and reported.
pub fn recall(
    conn: &mut DbConnection,
    actor: &Actor,
    origin: BatchId,
    reason: &str,
) -> CoreResult<RecallOutcome> {
    super::super::model::org::non_empty("reason", reason, 500)?;
    let origin_batch = batches::get_for_update(conn, origin)?;
    policy::ensure_recall(actor, &origin_batch)?;
    if origin_batch.status == BatchStatus::Recalled {
        return Err(CoreError::conflict(
            "already_recalled",
            format!(
                "batch {} was already recalled: {}",
                origin_batch.lot_code,
                origin_batch.status_reason.unwrap_or_default()
            ),
        ));
    }
    let mut ids = reachable_ids(conn, origin, Direction::Forward)?;
    ids.sort_unstable();
    let now = now_millis();
    let details = RecordDetails::Recall(Recall {
        reason: reason.to_owned(),
        origin_batch_id: origin,
    });
    let details = serde_json::to_value(&details)
        .map(|v| canonical_json(&v))
        .map_err(|e| CoreError::Internal(e.to_string()))?;
    let status_reason = format!("召回 recalled (batch {}): {reason}", origin_batch.lot_code);
    let mut outcome = RecallOutcome {
        origin,
        reason: reason.to_owned(),
        recalled: Vec::new(),
        already_recalled: Vec::new(),
    };
    let recall_id = uuid::Uuid::new_v4();
    for id in std::iter::once(origin.0).chain(ids) {
        let batch = if id == origin.0 {
            origin_batch.clone()
        } else {
            batches::get_for_update(conn, BatchId(id))?
        };
        if batch.status == BatchStatus::Recalled {
            outcome.already_recalled.push(batch.id);
            continue;
        }
        batches::set_status(conn, batch.id, BatchStatus::Recalled, Some(&status_reason))?;
        let mut row = RecordRow {
            id: 0,
            client_id: uuid::Uuid::new_v5(&recall_id, &id.to_be_bytes()).to_string(),
            batch_id: id,
            seq: batch.record_count + 1,
            kind: RecordKind::Recall.as_str().to_owned(),
            event_time: now,
            received_at: now,
            site_id: None,
            actor_user_id: actor.user_id.0,
            org_id: actor.org_id.0,
            details: details.clone(),
            attachments: "[]".into(),
            flags: "[]".into(),
            supersedes_id: None,
            prev_hash: batch.head_hash.clone(),
            hash: String::new(),
        };
        append(conn, &mut row)?;
        outcome.recalled.push(batch.id);
    }
    alerts::open(
        conn,
        NewAlert {
            kind: "recall",
            severity: "critical",
            org_id: Some(origin_batch.org_id),
            batch_id: Some(origin),
            record_id: None,
            message: format!(
                "召回 recall of batch {} and {} downstream batches: {reason}",
                origin_batch.lot_code,
                outcome.recalled.len().saturating_sub(1)
            ),
        },
    )?;
    Ok(outcome)
}
