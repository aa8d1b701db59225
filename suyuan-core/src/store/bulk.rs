//! Loading history in bulk: pre-built batches, the transformations and lineage edges between them, and their
//! records, written with multi-row inserts in one transaction per call.
//!
//! Why it exists: some history does not arrive one event at a time. A county moving onto the platform imports
//! years of records from the system it used before, and the county-scale benchmark needs a million records in
//! minutes. Capturing those one by one through [`super::records::capture`] would cost several queries and a
//! commit per record.
//!
//! What it does not do: it bypasses the write-time rules — the access policy, idempotency by client id, the
//! pre-harvest-interval and inspection rules and their alerts, custody changes on shipping and receiving,
//! blocked or recalled inputs. The caller must give it consistent data: custody and status as the records
//! imply, client ids unique per organisation, unique lot codes, event times in order, actors that belong to the organisations they
//! act for. Only shapes are checked (lot codes, quantities, record details, transformation shapes, that the
//! lineage has no cycles), and that every site and image the load names belongs to the organisation naming
//! it (what a public page shows must not depend on the caller's care).
//!
//! What it does guarantee is the hash chain: each batch's records are chained exactly as
//! [`super::records`] appends them (`seq` from 1, `prev_hash`, `hash` from [`crate::chain::record_hash`] over
//! [`RecordRow::chain_fields`]), and each batch's `record_count` and `head_hash` name the end of its chain, so
//! `suyuan verify chain` accepts loaded data like captured data. Transformations are stored as
//! [`super::lineage::transform`] stores them (the canonical request, one edge per input and output).
//!
//! Batches are referred to by their index in [`BulkLoad::batches`]; a load makes new batches only, and its
//! records and transformations refer to batches of the same load. Batch and transformation ids are reserved
//! before anything is written (from the sequence on PostgreSQL, above the largest id under the write lock on
//! SQLite), because the hashes cover the batch id.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::BigInt;

use super::rows::RecordRow;
use super::DbConnection;
use crate::chain::{canonical_json, record_hash, GENESIS_HASH};
use crate::db::Database;
use crate::error::{CoreError, CoreResult};
use crate::model::*;
use crate::on_backend;
use crate::schema::{
    batches::dsl as b, lineage_edges::dsl as e, records::dsl as r, transformations::dsl as t,
};
use crate::{BatchId, OrgId, ProductId, SiteId, TransformationId, UserId};

/// Rows per `INSERT` statement: 500 records bind 7,500 values, well inside SQLite's and PostgreSQL's limits.
const ROWS_PER_INSERT: usize = 500;

/// A batch to create.
#[derive(Debug, Clone)]
pub struct BulkBatch {
    pub org_id: OrgId,
    pub product_id: ProductId,
    pub lot_code: String,
    pub quantity: f64,
    pub unit: String,
    pub status: BatchStatus,
    pub status_reason: Option<String>,
    pub origin_site_id: Option<SiteId>,
    pub custodian_org_id: OrgId,
    pub in_transit_to_org_id: Option<OrgId>,
    pub created_at: DateTime<Utc>,
}

/// An input of a [`BulkTransformation`]: a batch of the load and how much of it went in.
#[derive(Debug, Clone, Copy)]
pub struct BulkInput {
    /// Index in [`BulkLoad::batches`].
    pub batch: usize,
    pub quantity: f64,
}

/// A split, merge or transformation between batches of the load. Its outputs' first records are the
/// caller's to give (a `processing` record, as [`super::lineage::transform`] writes).
#[derive(Debug, Clone)]
pub struct BulkTransformation {
    pub client_id: uuid::Uuid,
    pub kind: LineageKind,
    pub event_time: DateTime<Utc>,
    /// When the platform stored it.
    pub recorded_at: DateTime<Utc>,
    pub site_id: Option<SiteId>,
    pub org_id: OrgId,
    pub actor_user_id: UserId,
    pub inputs: Vec<BulkInput>,
    /// Indexes in [`BulkLoad::batches`]; each batch is the output of at most one transformation.
    pub outputs: Vec<usize>,
}

/// A record on a batch of the load; a batch's records are chained in the order they appear in
/// [`BulkLoad::records`].
#[derive(Debug, Clone)]
pub struct BulkRecord {
    /// Index in [`BulkLoad::batches`].
    pub batch: usize,
    pub client_id: uuid::Uuid,
    pub event_time: DateTime<Utc>,
    pub received_at: DateTime<Utc>,
    pub site_id: Option<SiteId>,
    pub actor_user_id: UserId,
    pub org_id: OrgId,
    /// Any kind but `correction` (a correction names a stored record id, which a load cannot know).
    pub details: RecordDetails,
    pub attachments: Vec<String>,
    /// What the rules would have flagged, e.g. `harvest_within_phi`.
    pub flags: Vec<String>,
}

/// Everything one call writes.
#[derive(Debug, Clone, Default)]
pub struct BulkLoad {
    pub batches: Vec<BulkBatch>,
    pub transformations: Vec<BulkTransformation>,
    pub records: Vec<BulkRecord>,
}

/// What a load stored.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The id of each batch, in the order of [`BulkLoad::batches`].
    pub batch_ids: Vec<BatchId>,
    /// The id of each transformation, in the order of [`BulkLoad::transformations`].
    pub transformation_ids: Vec<TransformationId>,
    /// Records written.
    pub records: usize,
    /// Lineage edges written.
    pub edges: usize,
}

/// Loads `data` in one write transaction: all of it or, on any error, none of it.
pub fn load(db: &Database, data: &BulkLoad) -> CoreResult<Loaded> {
    db.write(|conn| load_in(conn, data))
}

/// [`load`] inside the caller's transaction.
pub fn load_in(conn: &mut DbConnection, data: &BulkLoad) -> CoreResult<Loaded> {
    check_shapes(data)?;
    check_references(conn, data)?;
    let batch_ids = reserve_ids(conn, IdTable::Batches, data.batches.len())?;
    let transformation_ids =
        reserve_ids(conn, IdTable::Transformations, data.transformations.len())?;

    // The chains, exactly as `records::append` builds them one record at a time.
    let mut heads: Vec<(i64, String)> = vec![(0, GENESIS_HASH.to_owned()); data.batches.len()];
    let mut rows = Vec::with_capacity(data.records.len());
    for rec in &data.records {
        let (count, head) = &mut heads[rec.batch];
        let mut row = RecordRow {
            id: 0,
            client_id: rec.client_id.to_string(),
            batch_id: batch_ids[rec.batch],
            seq: *count + 1,
            kind: rec.details.kind().as_str().to_owned(),
            event_time: rec.event_time.timestamp_millis(),
            received_at: rec.received_at.timestamp_millis(),
            site_id: rec.site_id.map(|s| s.0),
            actor_user_id: rec.actor_user_id.0,
            org_id: rec.org_id.0,
            details: json_text(&rec.details)?,
            attachments: json_text(&rec.attachments)?,
            flags: json_text(&rec.flags)?,
            supersedes_id: None,
            prev_hash: std::mem::take(head),
            hash: String::new(),
        };
        row.hash = record_hash(&row.chain_fields());
        *count = row.seq;
        head.clone_from(&row.hash);
        rows.push(row);
    }

    for (i, chunk) in data.batches.chunks(ROWS_PER_INSERT).enumerate() {
        let start = i * ROWS_PER_INSERT;
        let values: Vec<_> = chunk
            .iter()
            .zip(&batch_ids[start..])
            .zip(&heads[start..])
            .map(|((x, id), (count, head))| {
                (
                    b::id.eq(*id),
                    b::org_id.eq(x.org_id.0),
                    b::product_id.eq(x.product_id.0),
                    b::lot_code.eq(&x.lot_code),
                    b::quantity.eq(x.quantity),
                    b::unit.eq(&x.unit),
                    b::status.eq(x.status.as_str()),
                    b::status_reason.eq(x.status_reason.as_deref()),
                    b::origin_site_id.eq(x.origin_site_id.map(|s| s.0)),
                    b::custodian_org_id.eq(x.custodian_org_id.0),
                    b::in_transit_to_org_id.eq(x.in_transit_to_org_id.map(|o| o.0)),
                    b::record_count.eq(*count),
                    b::head_hash.eq(head.as_str()),
                    b::created_at.eq(x.created_at.timestamp_millis()),
                )
            })
            .collect();
        on_backend!(conn, c => diesel::insert_into(b::batches).values(values).execute(c))?;
    }

    let mut edges = Vec::new();
    let mut requests = Vec::with_capacity(data.transformations.len());
    for (tr, tid) in data.transformations.iter().zip(&transformation_ids) {
        let request = NewTransformation {
            client_id: tr.client_id,
            kind: tr.kind,
            event_time: tr.event_time,
            site_id: tr.site_id,
            inputs: tr
                .inputs
                .iter()
                .map(|i| TransformationInput {
                    batch_id: BatchId(batch_ids[i.batch]),
                    quantity: i.quantity,
                })
                .collect(),
            outputs: tr
                .outputs
                .iter()
                .map(|&o| TransformationOutput {
                    product_id: data.batches[o].product_id,
                    lot_code: data.batches[o].lot_code.clone(),
                    quantity: data.batches[o].quantity,
                    unit: data.batches[o].unit.clone(),
                })
                .collect(),
        };
        request.validate()?;
        requests.push(json_text(&request)?);
        // One edge per input and output, quantities as `lineage::transform` records them.
        for &o in &tr.outputs {
            for input in &tr.inputs {
                let (quantity, unit) = match tr.kind {
                    LineageKind::Split => (data.batches[o].quantity, &data.batches[o].unit),
                    _ => (input.quantity, &data.batches[input.batch].unit),
                };
                edges.push((
                    *tid,
                    batch_ids[input.batch],
                    batch_ids[o],
                    tr.kind,
                    quantity,
                    unit,
                ));
            }
        }
    }
    for (i, chunk) in data.transformations.chunks(ROWS_PER_INSERT).enumerate() {
        let start = i * ROWS_PER_INSERT;
        let values: Vec<_> = chunk
            .iter()
            .zip(&transformation_ids[start..])
            .zip(&requests[start..])
            .map(|((x, id), request)| {
                (
                    t::id.eq(*id),
                    t::client_id.eq(x.client_id.to_string()),
                    t::org_id.eq(x.org_id.0),
                    t::kind.eq(x.kind.as_str()),
                    t::event_time.eq(x.event_time.timestamp_millis()),
                    t::actor_user_id.eq(x.actor_user_id.0),
                    t::request.eq(request),
                    t::created_at.eq(x.recorded_at.timestamp_millis()),
                )
            })
            .collect();
        on_backend!(conn, c => diesel::insert_into(t::transformations).values(values).execute(c))?;
    }
    for chunk in edges.chunks(ROWS_PER_INSERT) {
        let values: Vec<_> = chunk
            .iter()
            .map(|(tid, parent, child, kind, quantity, unit)| {
                (
                    e::transformation_id.eq(*tid),
                    e::parent_batch_id.eq(*parent),
                    e::child_batch_id.eq(*child),
                    e::kind.eq(kind.as_str()),
                    e::quantity.eq(*quantity),
                    e::unit.eq(unit.as_str()),
                )
            })
            .collect();
        on_backend!(conn, c => diesel::insert_into(e::lineage_edges).values(values).execute(c))?;
    }

    for chunk in rows.chunks(ROWS_PER_INSERT) {
        let values: Vec<_> = chunk
            .iter()
            .map(|x| super::rows::record_values!(x))
            .collect();
        on_backend!(conn, c => diesel::insert_into(r::records).values(values).execute(c))?;
    }

    Ok(Loaded {
        batch_ids: batch_ids.into_iter().map(BatchId).collect(),
        transformation_ids: transformation_ids
            .into_iter()
            .map(TransformationId)
            .collect(),
        records: rows.len(),
        edges: edges.len(),
    })
}

/// Refreshes the query planner's statistics of the tables a load writes. Call it once after a series of
/// loads: until then PostgreSQL plans with the table sizes of before the load (autovacuum catches up only
/// later, and not at all where it is switched off), and such plans were seen to spend 200 ms compiling a
/// trace's recursive query with JIT and to start parallel workers for a lookup of a few rows. SQLite's
/// planner gets its `sqlite_stat1` figures the same way (from a sample, so that it takes seconds, not
/// minutes).
pub fn analyze(db: &Database) -> CoreResult<()> {
    use diesel::connection::SimpleConnection;
    // It writes the statistics tables, so it goes through the writer like any write.
    db.write(|conn| {
        match conn {
            DbConnection::Postgresql(c) => {
                c.batch_execute("ANALYZE batches, transformations, lineage_edges, records")?
            }
            DbConnection::Sqlite(c) => c.batch_execute(
                "PRAGMA analysis_limit = 1000; ANALYZE batches; ANALYZE transformations; \
                 ANALYZE lineage_edges; ANALYZE records;",
            )?,
        }
        Ok(())
    })
}

/// The stored text of a value, canonical as in [`super::records`].
fn json_text<T: serde::Serialize>(v: &T) -> CoreResult<String> {
    serde_json::to_value(v)
        .map(|v| canonical_json(&v))
        .map_err(|e| CoreError::Internal(e.to_string()))
}

fn bad(message: String) -> CoreError {
    CoreError::invalid("invalid_bulk_load", message)
}

/// The checks that do not need the database: indexes in range, valid shapes, and a lineage without cycles
/// (every input of a transformation was made before it, by an earlier transformation or by none).
fn check_shapes(data: &BulkLoad) -> CoreResult<()> {
    let n = data.batches.len();
    for x in &data.batches {
        validate_lot_code(&x.lot_code)?;
        validate_quantity("quantity", x.quantity, &x.unit)?;
    }
    let mut made_by: HashMap<usize, usize> = HashMap::new();
    for (k, tr) in data.transformations.iter().enumerate() {
        for &o in &tr.outputs {
            if o >= n {
                return Err(bad(format!(
                    "transformation {k}: output {o} is not a batch of the load"
                )));
            }
            if made_by.insert(o, k).is_some() {
                return Err(bad(format!(
                    "batch {o} is the output of two transformations"
                )));
            }
        }
    }
    for (k, tr) in data.transformations.iter().enumerate() {
        for input in &tr.inputs {
            if input.batch >= n {
                return Err(bad(format!(
                    "transformation {k}: input {} is not a batch of the load",
                    input.batch
                )));
            }
            if made_by.get(&input.batch).is_some_and(|&m| m >= k) {
                return Err(bad(format!(
                    "transformation {k}: input {} is made by the same or a later transformation",
                    input.batch
                )));
            }
        }
    }
    for (k, rec) in data.records.iter().enumerate() {
        if rec.batch >= n {
            return Err(bad(format!(
                "record {k}: batch {} is not a batch of the load",
                rec.batch
            )));
        }
        if matches!(rec.details, RecordDetails::Correction(_)) {
            return Err(bad(format!(
                "record {k}: corrections cannot be bulk-loaded"
            )));
        }
        validate_event_time(rec.event_time)?;
        rec.details.validate()?;
    }
    Ok(())
}

/// Every site and image the load names belongs to the organisation that names it (a batch's origin, a
/// transformation's or a record's site, a record's attached images), as capture requires: a load must not
/// make a batch's public page show another organisation's plot or photos.
fn check_references(conn: &mut DbConnection, data: &BulkLoad) -> CoreResult<()> {
    let sites = data
        .batches
        .iter()
        .filter_map(|x| x.origin_site_id)
        .chain(data.transformations.iter().filter_map(|x| x.site_id))
        .chain(data.records.iter().filter_map(|x| x.site_id))
        .map(|s| s.0)
        .collect::<std::collections::HashSet<i64>>();
    let mut images = Vec::new();
    for (k, rec) in data.records.iter().enumerate() {
        for a in &rec.attachments {
            images.push(attachment_image_id(a).ok_or_else(|| {
                bad(format!(
                    "record {k}: {a:?} is not an attachment id (image:<id>)"
                ))
            })?);
        }
    }
    let refs = super::records::References::of(conn, sites.into_iter().collect(), images)?;
    for x in &data.batches {
        refs.check_site(x.org_id, x.origin_site_id)?;
    }
    for x in &data.transformations {
        refs.check_site(x.org_id, x.site_id)?;
    }
    for x in &data.records {
        refs.check(x.org_id, x.site_id, &x.attachments)?;
    }
    Ok(())
}

/// The tables whose ids a load reserves.
#[derive(Clone, Copy)]
enum IdTable {
    Batches,
    Transformations,
}

#[derive(QueryableByName)]
struct IdRow {
    #[diesel(sql_type = BigInt)]
    id: i64,
}

/// `n` ids no other writer will use. PostgreSQL hands them out from the table's sequence (safe with other
/// writers and replicas); on SQLite the caller holds the write lock inside a transaction, so the ids above the
/// largest one stay free until it commits (another process writing meanwhile makes the commit fail, not
/// collide).
fn reserve_ids(conn: &mut DbConnection, table: IdTable, n: usize) -> CoreResult<Vec<i64>> {
    if n == 0 {
        return Ok(Vec::new());
    }
    let name = match table {
        IdTable::Batches => "batches",
        IdTable::Transformations => "transformations",
    };
    let count = i64::try_from(n).map_err(|e| CoreError::Internal(e.to_string()))?;
    match conn {
        DbConnection::Postgresql(c) => {
            let rows: Vec<IdRow> = diesel::sql_query(format!(
                "SELECT nextval(pg_get_serial_sequence('{name}', 'id')) AS id FROM generate_series(1, $1)"
            ))
            .bind::<BigInt, _>(count)
            .load(c)?;
            let mut ids: Vec<i64> = rows.into_iter().map(|r| r.id).collect();
            ids.sort_unstable();
            Ok(ids)
        }
        DbConnection::Sqlite(c) => {
            let top: IdRow =
                diesel::sql_query(format!("SELECT COALESCE(MAX(id), 0) AS id FROM {name}"))
                    .get_result(c)?;
            Ok((1..=count).map(|i| top.id + i).collect())
        }
    }
}
