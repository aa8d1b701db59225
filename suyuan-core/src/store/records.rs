//! Capturing records: idempotency, access, the write-time rules and the hash chain, in one transaction.

use std::collections::HashMap;

use diesel::prelude::*;
use serde::Serialize;
use utoipa::ToSchema;

use super::alerts::{self, NewAlert};
use super::batches;
use super::rows::{models, RecordRow};
use super::DbConnection;
use crate::chain::{canonical_json, record_hash};
use crate::db::Database;
use crate::error::{CoreError, CoreResult};
use crate::model::*;
use crate::on_backend;
use crate::policy;
use crate::schema::{batches::dsl as b, records::dsl as r};
use crate::time::now_millis;
use crate::{BatchId, OrgId, RecordId};

const DAY_MS: i64 = 86_400_000;

fn to_json_text<T: Serialize>(v: &T) -> CoreResult<String> {
    serde_json::to_value(v)
        .map(|v| canonical_json(&v))
        .map_err(|e| CoreError::Internal(e.to_string()))
}

/// Captures one record on a batch inside the caller's transaction.
///
/// Sending the same record again (same client id and content) returns the stored one with `created: false`;
/// a different record under a client id already used is a `record_conflict` (409) that carries both.
pub fn capture(
    conn: &mut DbConnection,
    actor: &Actor,
    batch_id: BatchId,
    new: &NewRecord,
) -> CoreResult<Captured> {
    new.validate()?;
    let batch = batches::get_for_update(conn, batch_id)?;
    let rel = batches::relation(conn, actor, &batch)?;
    let kind = new.details.kind();
    policy::ensure_write_record(actor, &batch, kind, rel)?;

    let details = to_json_text(&new.details)?;
    let attachments = to_json_text(&new.attachments)?;
    let client_id = new.client_id.to_string();
    if let Some(stored) = find_by_client_id(conn, &client_id)? {
        let same = stored.batch_id == batch_id.0
            && stored.event_time == new.event_time.timestamp_millis()
            && stored.site_id == new.site_id.map(|s| s.0)
            && stored.details == details
            && stored.attachments == attachments;
        let stored = stored.into_model()?;
        if same {
            return Ok(Captured {
                record: stored,
                created: false,
            });
        }
        return Err(CoreError::Conflict {
            code: "record_conflict",
            message: format!("a different record was already stored under client_id {client_id}"),
            details: Some(serde_json::json!({ "stored": stored, "submitted": new })),
        });
    }

    if let Some(site) = new.site_id {
        super::sites::get_site(conn, site)?;
    }
    let effects = rules(conn, actor, &batch, new)?;
    let supersedes_id = match &new.details {
        RecordDetails::Correction(c) => Some(c.supersedes.0),
        _ => None,
    };
    let mut row = RecordRow {
        id: 0,
        client_id,
        batch_id: batch_id.0,
        seq: batch.record_count + 1,
        kind: kind.as_str().to_owned(),
        event_time: new.event_time.timestamp_millis(),
        received_at: now_millis(),
        site_id: new.site_id.map(|s| s.0),
        actor_user_id: actor.user_id.0,
        org_id: actor.org_id.0,
        details,
        attachments,
        flags: to_json_text(&effects.flags)?,
        supersedes_id,
        prev_hash: batch.head_hash.clone(),
        hash: String::new(),
    };
    let stored = append(conn, &mut row)?;
    apply(conn, &batch, &stored, effects)?;
    Ok(Captured {
        record: stored.into_model()?,
        created: true,
    })
}

/// Hashes and inserts a record row at the head of its batch's chain and advances the head.
pub(crate) fn append(conn: &mut DbConnection, row: &mut RecordRow) -> CoreResult<RecordRow> {
    row.hash = record_hash(&row.chain_fields());
    let id: i64 = on_backend!(conn, c => diesel::insert_into(r::records).values(&*row).returning(r::id).get_result(c))?;
    let moved = on_backend!(conn, c => diesel::update(
        b::batches.find(row.batch_id).filter(b::record_count.eq(row.seq - 1)),
    )
    .set((b::record_count.eq(row.seq), b::head_hash.eq(&row.hash)))
    .execute(c))?;
    if moved != 1 {
        // Cannot happen while writers hold the batch lock; refuse rather than fork the chain.
        return Err(CoreError::Internal(format!(
            "chain head of batch {} moved during append",
            row.batch_id
        )));
    }
    let mut stored = row.clone();
    stored.id = id;
    Ok(stored)
}

/// Captures a record in its own transaction, retrying once when a concurrent request stored the same client
/// id first (the retry then answers as a resend).
pub fn capture_in(
    db: &Database,
    actor: &Actor,
    batch_id: BatchId,
    new: &NewRecord,
) -> CoreResult<Captured> {
    let mut attempt = 0;
    loop {
        match db.write(|c| capture(c, actor, batch_id, new)) {
            Err(CoreError::Database(e)) if super::is_unique_violation(&e) && attempt < 2 => {
                attempt += 1
            }
            other => return other,
        }
    }
}

/// The outcome of one item of a sync.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SyncOutcome {
    pub client_id: uuid::Uuid,
    /// `created`, `existing`, or `rejected` (with `error`).
    pub status: String,
    pub record: Option<Record>,
    pub error: Option<SyncError>,
}

/// Why an item of a sync was rejected.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SyncError {
    /// The same stable code a single capture would answer with.
    pub error: String,
    pub message: String,
    #[schema(value_type = Option<Object>)]
    pub details: Option<serde_json::Value>,
}

/// At most this many records per sync request.
pub const MAX_SYNC_ITEMS: usize = 1000;

/// Captures an offline phone's backlog in one transaction, each item in a savepoint of its own so that one
/// bad record is reported without losing the others.
pub fn sync(db: &Database, actor: &Actor, items: &[SyncItem]) -> CoreResult<Vec<SyncOutcome>> {
    if items.len() > MAX_SYNC_ITEMS {
        return Err(CoreError::invalid(
            "too_many_items",
            format!("at most {MAX_SYNC_ITEMS} records per sync"),
        ));
    }
    db.write(|conn| {
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            let mut result = conn.transaction(|c| capture(c, actor, item.batch_id, &item.record));
            if matches!(&result, Err(CoreError::Database(e)) if super::is_unique_violation(e)) {
                result = conn.transaction(|c| capture(c, actor, item.batch_id, &item.record));
            }
            out.push(match result {
                Ok(c) => SyncOutcome {
                    client_id: item.record.client_id,
                    status: if c.created { "created" } else { "existing" }.into(),
                    record: Some(c.record),
                    error: None,
                },
                Err(
                    e @ (CoreError::Database(_)
                    | CoreError::Pool(_)
                    | CoreError::Internal(_)
                    | CoreError::Setup(_)),
                ) => return Err(e),
                Err(e) => SyncOutcome {
                    client_id: item.record.client_id,
                    status: "rejected".into(),
                    record: None,
                    error: Some(SyncError {
                        error: e.code().into(),
                        message: e.to_string(),
                        details: match e {
                            CoreError::Conflict { details, .. } => details,
                            _ => None,
                        },
                    }),
                },
            });
        }
        Ok(out)
    })
}

fn find_by_client_id(conn: &mut DbConnection, client_id: &str) -> CoreResult<Option<RecordRow>> {
    Ok(
        on_backend!(conn, c => r::records.filter(r::client_id.eq(client_id)).select(RecordRow::as_select()).first(c).optional())?,
    )
}

/// One record by id.
pub fn get(conn: &mut DbConnection, id: RecordId) -> CoreResult<Record> {
    use crate::error::OptionalExt;
    on_backend!(conn, c => r::records.find(id.0).select(RecordRow::as_select()).first(c))
        .or_not_found("record")?
        .into_model()
}

/// A batch's records in chain order, exactly as stored.
pub fn history(conn: &mut DbConnection, batch: BatchId) -> CoreResult<Vec<Record>> {
    let rows = on_backend!(conn, c => r::records.filter(r::batch_id.eq(batch.0)).order(r::seq).select(RecordRow::as_select()).load(c))?;
    models(rows, RecordRow::into_model)
}

/// The records of many batches, grouped by batch, each in chain order (one query).
pub fn history_of_many(
    conn: &mut DbConnection,
    batch_ids: &[i64],
) -> CoreResult<HashMap<i64, Vec<Record>>> {
    let mut out: HashMap<i64, Vec<Record>> = HashMap::new();
    for chunk in batch_ids.chunks(5000) {
        let rows = on_backend!(conn, c => r::records
            .filter(r::batch_id.eq_any(chunk))
            .order((r::batch_id, r::seq))
            .select(RecordRow::as_select())
            .load(c))?;
        for row in rows {
            let rec = row.into_model()?;
            out.entry(rec.batch_id.0).or_default().push(rec);
        }
    }
    Ok(out)
}

/// A batch's records in the corrected view.
pub fn corrected(conn: &mut DbConnection, batch: BatchId) -> CoreResult<Vec<CorrectedRecord>> {
    Ok(corrected_view(history(conn, batch)?))
}

/// What the rules decided about a record before it is stored.
#[derive(Debug, Default)]
struct Effects {
    flags: Vec<String>,
    block: Option<(&'static str, String)>,
    release: bool,
    ship_to: Option<OrgId>,
    receive: bool,
}

/// The rules enforced at write time.
fn rules(
    conn: &mut DbConnection,
    actor: &Actor,
    batch: &Batch,
    new: &NewRecord,
) -> CoreResult<Effects> {
    let mut fx = Effects::default();
    match &new.details {
        RecordDetails::Harvest(_) => {
            let violations = phi_violations(conn, batch.id, new.event_time.timestamp_millis())?;
            if !violations.is_empty() {
                fx.flags.push("harvest_within_phi".into());
                fx.block = Some((
                    "harvest_within_phi",
                    format!(
                        "采收早于安全间隔期 harvested within the pre-harvest interval: {}",
                        violations.join("; ")
                    ),
                ));
            }
        }
        RecordDetails::Inspection(i) => match i.overall {
            Verdict::Fail => {
                let failed: Vec<&str> = i
                    .items
                    .iter()
                    .filter(|x| x.result == Verdict::Fail)
                    .map(|x| x.name.as_str())
                    .collect();
                fx.flags.push("inspection_failed".into());
                fx.block = Some((
                    "inspection_failed",
                    format!("检测不合格 inspection failed: {}", failed.join(", ")),
                ));
            }
            Verdict::Pass => fx.release = true,
        },
        RecordDetails::Shipping(s) => {
            let to = super::orgs::get(conn, s.to_org_id)?;
            if to.id == batch.custodian_org_id {
                return Err(CoreError::invalid(
                    "invalid_shipment",
                    "a batch cannot be shipped to the organisation holding it",
                ));
            }
            if let Some(site) = s.to_site_id {
                if super::sites::get_site(conn, site)?.org_id != to.id {
                    return Err(CoreError::invalid(
                        "invalid_shipment",
                        "to_site_id is not a site of to_org_id",
                    ));
                }
            }
            fx.ship_to = Some(to.id);
        }
        RecordDetails::Receiving(_) => fx.receive = true,
        RecordDetails::Correction(c) => {
            let target = get(conn, c.supersedes)?;
            if target.batch_id != batch.id {
                return Err(CoreError::invalid(
                    "invalid_correction",
                    "a correction must be recorded on the batch of the record it corrects",
                ));
            }
            if matches!(
                target.details,
                RecordDetails::Correction(_) | RecordDetails::Recall(_)
            ) {
                return Err(CoreError::invalid(
                    "invalid_correction",
                    "corrections and recalls cannot be corrected; correct the original record",
                ));
            }
            if target.org_id != actor.org_id {
                return Err(CoreError::forbidden(
                    "only the organisation that wrote a record may correct it",
                ));
            }
            if let Some(rep) = &c.replacement {
                if rep.kind() != target.details.kind() {
                    return Err(CoreError::invalid(
                        "invalid_correction",
                        format!("the replacement must be a {} record", target.details.kind()),
                    ));
                }
            }
        }
        _ => {}
    }
    Ok(fx)
}

/// Sprayings on the batch or anything it came from whose pre-harvest interval has not passed at `harvest_ms`.
fn phi_violations(
    conn: &mut DbConnection,
    batch: BatchId,
    harvest_ms: i64,
) -> CoreResult<Vec<String>> {
    let mut ids = super::lineage::reachable_ids(conn, batch, crate::model::Direction::Backward)?;
    ids.push(batch.0);
    let mut out = Vec::new();
    for (_, recs) in history_of_many(conn, &ids)? {
        for rec in corrected_view(recs) {
            if rec.state == CorrectionState::Retracted {
                continue;
            }
            if let RecordDetails::Spraying(s) = &rec.record.details {
                let sprayed = rec.record.event_time.timestamp_millis();
                let safe_from = sprayed + i64::from(s.pre_harvest_interval_days) * DAY_MS;
                if sprayed <= harvest_ms && harvest_ms < safe_from {
                    out.push(format!(
                        "{} ({}) sprayed {}, interval {} days, safe from {}",
                        s.pesticide_name,
                        s.registration_number,
                        rec.record.event_time.format("%Y-%m-%d"),
                        s.pre_harvest_interval_days,
                        crate::time::to_datetime(safe_from).format("%Y-%m-%d"),
                    ));
                }
            }
        }
    }
    Ok(out)
}

/// Applies the rules' effects once the record is stored.
fn apply(
    conn: &mut DbConnection,
    batch: &Batch,
    stored: &RecordRow,
    fx: Effects,
) -> CoreResult<()> {
    let record_id = Some(RecordId(stored.id));
    if let Some((kind, message)) = fx.block {
        if batch.status != BatchStatus::Recalled {
            batches::set_status(conn, batch.id, BatchStatus::Blocked, Some(kind))?;
        }
        alerts::open(
            conn,
            NewAlert {
                kind,
                severity: "critical",
                org_id: Some(batch.org_id),
                batch_id: Some(batch.id),
                record_id,
                message,
            },
        )?;
    }
    if fx.release {
        if batch.status == BatchStatus::Blocked {
            batches::set_status(conn, batch.id, BatchStatus::Open, None)?;
        }
        alerts::close_for_batch(conn, batch.id, &["harvest_within_phi", "inspection_failed"])?;
    }
    if let Some(to) = fx.ship_to {
        on_backend!(conn, c => diesel::update(b::batches.find(batch.id.0)).set(b::in_transit_to_org_id.eq(Some(to.0))).execute(c))?;
    }
    if fx.receive {
        on_backend!(conn, c => diesel::update(b::batches.find(batch.id.0))
            .set((b::custodian_org_id.eq(stored.org_id), b::in_transit_to_org_id.eq(None::<i64>)))
            .execute(c))?;
    }
    Ok(())
}
