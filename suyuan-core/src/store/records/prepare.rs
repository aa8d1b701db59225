//! What single capture and `/records/sync` check the same way before a record is chained: the writer's
//! right to record it on the batch, its stored text forms, whether its client id was used before (the
//! same record sent again, or the 409 `record_conflict` that shows the stored one only to those who may
//! still read it), and the row itself. One place, so a record answers the same by either path.

use diesel::prelude::*;
use serde::Serialize;

use crate::chain::canonical_json;
use crate::error::{CoreError, CoreResult};
use crate::model::*;
use crate::on_backend;
use crate::policy;
use crate::schema::batches::dsl as b;
use crate::store::rows::{BatchRow, RecordRow};
use crate::store::DbConnection;
use crate::time::now_millis;
use crate::BatchId;

pub(super) fn to_json_text<T: Serialize>(v: &T) -> CoreResult<String> {
    serde_json::to_value(v)
        .map(|v| canonical_json(&v))
        .map_err(|e| CoreError::Internal(e.to_string()))
}

/// A record that passed the checks every capture makes first, single or synced: its shape, then the
/// writer's right to record it on the batch; with the text forms that are stored and compared.
pub(crate) struct Prepared {
    pub client_id: String,
    pub details: String,
    pub attachments: String,
}

impl Prepared {
    /// Checks the writer may record this kind on the batch and serialises the record. (Its shape is
    /// checked by [`NewRecord::validate`] before the batch is even read.)
    pub(crate) fn check(
        actor: &Actor,
        batch: &Batch,
        rel: policy::BatchRelation,
        new: &NewRecord,
    ) -> CoreResult<Prepared> {
        policy::ensure_write_record(actor, batch, new.details.kind(), rel)?;
        Ok(Prepared {
            client_id: new.client_id.to_string(),
            details: to_json_text(&new.details)?,
            attachments: to_json_text(&new.attachments)?,
        })
    }

    /// Whether `stored`, found under this record's client id, is this same record sent again.
    fn is_resend_of(&self, stored: &RecordRow, batch_id: BatchId, new: &NewRecord) -> bool {
        stored.batch_id == batch_id.0
            && stored.event_time == new.event_time.timestamp_millis()
            && stored.site_id == new.site_id.map(|s| s.0)
            && stored.details == self.details
            && stored.attachments == self.attachments
    }

    /// The answer to a record whose client id is taken: the stored record when it is the same, else the
    /// 409 [`conflict`], which shows the stored record only when `readable` says the writer may still read
    /// its batch (asked only then).
    pub(crate) fn resend(
        &self,
        stored: RecordRow,
        batch_id: BatchId,
        new: &NewRecord,
        readable: impl FnOnce(i64) -> CoreResult<bool>,
    ) -> CoreResult<Record> {
        let same = self.is_resend_of(&stored, batch_id, new);
        let stored_batch = stored.batch_id;
        let record = stored.into_model()?;
        if same {
            return Ok(record);
        }
        let readable = readable(stored_batch)?;
        Err(conflict(new, readable.then_some(record)))
    }

    /// The row of the record at the head of `batch`'s chain (its hash is the chain's to compute).
    pub(crate) fn into_row(
        self,
        actor: &Actor,
        batch: &Batch,
        new: &NewRecord,
        flags: &[String],
    ) -> CoreResult<RecordRow> {
        Ok(RecordRow {
            id: 0,
            client_id: self.client_id,
            batch_id: batch.id.0,
            seq: batch.record_count + 1,
            kind: new.details.kind().as_str().to_owned(),
            event_time: new.event_time.timestamp_millis(),
            received_at: now_millis(),
            site_id: new.site_id.map(|s| s.0),
            actor_user_id: actor.user_id.0,
            org_id: actor.org_id.0,
            details: self.details,
            attachments: self.attachments,
            flags: to_json_text(&flags)?,
            supersedes_id: match &new.details {
                RecordDetails::Correction(c) => Some(c.supersedes.0),
                _ => None,
            },
            prev_hash: batch.head_hash.clone(),
            hash: String::new(),
        })
    }
}

/// The 409 for a client id the writer's organisation already used for another record. Client ids are
/// unique per organisation, so the stored record is always one the organisation wrote; it is shown only
/// when the caller may still read its batch (`stored` is null otherwise).
fn conflict(new: &NewRecord, stored: Option<Record>) -> CoreError {
    let message = match stored {
        Some(_) => format!(
            "a different record was already stored under client_id {}",
            new.client_id
        ),
        None => format!(
            "client_id {} was already used by your organisation, on a batch you may no longer read",
            new.client_id
        ),
    };
    CoreError::Conflict {
        code: "record_conflict",
        message,
        details: Some(serde_json::json!({ "stored": stored, "submitted": new })),
    }
}

/// Which of these batches the actor may read (see [`policy::can_read_batch`]); one query, two for
/// inspectors.
pub(super) fn readable_batches(
    conn: &mut DbConnection,
    actor: &Actor,
    ids: &[i64],
) -> CoreResult<std::collections::HashSet<i64>> {
    use crate::schema::inspection_requests::dsl as ir;
    let mut out = std::collections::HashSet::new();
    for chunk in ids.chunks(1000) {
        let rows = on_backend!(conn, c => b::batches
            .filter(b::id.eq_any(chunk))
            .select(BatchRow::as_select())
            .load(c))?;
        let asked: std::collections::HashSet<i64> = if actor.role == Role::Inspector {
            on_backend!(conn, c => ir::inspection_requests
                .filter(ir::lab_org_id.eq(actor.org_id.0))
                .filter(ir::batch_id.eq_any(chunk))
                .select(ir::batch_id)
                .load::<i64>(c))?
            .into_iter()
            .collect()
        } else {
            Default::default()
        };
        for row in rows {
            let batch = row.into_model()?;
            let rel = policy::BatchRelation {
                inspection_requested: asked.contains(&batch.id.0),
            };
            if policy::can_read_batch(actor, &batch, rel) {
                out.insert(batch.id.0);
            }
        }
    }
    Ok(out)
}
