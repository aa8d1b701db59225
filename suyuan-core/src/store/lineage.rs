//! The lineage graph: transformations that make new batches, and traces over the whole graph.
//!
//! Edges only ever point from existing batches to batches created by the same transformation, so the graph
//! has no cycles. Reachability is one recursive query (`WITH RECURSIVE … UNION`, which visits each batch
//! once however many paths lead to it); depths are then computed from the edges in memory.

use std::collections::{HashMap, HashSet, VecDeque};

use diesel::prelude::*;
use diesel::sql_types::BigInt;

use super::batches;
use super::records::{self, append};
use super::rows::{models, BatchRow, EdgeRow, RecordRow};
use super::DbConnection;
use crate::chain::canonical_json;
use crate::error::{CoreError, CoreResult};
use crate::model::*;
use crate::on_backend;
use crate::policy;
use crate::schema::{batches::dsl as b, lineage_edges::dsl as e, transformations::dsl as t};
use crate::time::{now_millis, to_datetime};
use crate::{BatchId, TransformationId};

#[derive(QueryableByName)]
struct IdRow {
    #[diesel(sql_type = BigInt)]
    id: i64,
}

const BACKWARD_SQLITE: &str = "WITH RECURSIVE up(id) AS ( \
    SELECT parent_batch_id FROM lineage_edges WHERE child_batch_id = ? \
    UNION SELECT e.parent_batch_id FROM lineage_edges e JOIN up ON e.child_batch_id = up.id) SELECT id FROM up";
const FORWARD_SQLITE: &str = "WITH RECURSIVE down(id) AS ( \
    SELECT child_batch_id FROM lineage_edges WHERE parent_batch_id = ? \
    UNION SELECT e.child_batch_id FROM lineage_edges e JOIN down ON e.parent_batch_id = down.id) SELECT id FROM down";

/// Every batch reachable from `from` in `direction`, not including `from` itself.
pub fn reachable_ids(
    conn: &mut DbConnection,
    from: BatchId,
    direction: Direction,
) -> CoreResult<Vec<i64>> {
    let sqlite_sql = match direction {
        Direction::Backward => BACKWARD_SQLITE,
        Direction::Forward => FORWARD_SQLITE,
    };
    // The same query; only the placeholder syntax differs.
    let rows: Vec<IdRow> = match conn {
        DbConnection::Sqlite(c) => diesel::sql_query(sqlite_sql)
            .bind::<BigInt, _>(from.0)
            .load(c)?,
        DbConnection::Postgresql(c) => diesel::sql_query(sqlite_sql.replace('?', "$1"))
            .bind::<BigInt, _>(from.0)
            .load(c)?,
    };
    Ok(rows.into_iter().map(|r| r.id).collect())
}

/// Traces a batch backward (where it came from) or forward (where it went), with every batch's records in
/// the corrected view and the edges between the batches reached.
pub fn trace(
    conn: &mut DbConnection,
    actor: &Actor,
    root: BatchId,
    direction: Direction,
) -> CoreResult<Trace> {
    batches::get_for(conn, actor, root)?;
    trace_unchecked(conn, root, direction)
}

/// The trace itself, without access checks: for callers that checked already or that only pass on public
/// fields (the consumer's story).
pub(crate) fn trace_unchecked(
    conn: &mut DbConnection,
    root: BatchId,
    direction: Direction,
) -> CoreResult<Trace> {
    let mut ids = reachable_ids(conn, root, direction)?;
    ids.push(root.0);
    let mut batch_rows = Vec::with_capacity(ids.len());
    let mut edge_rows = Vec::new();
    for chunk in ids.chunks(5000) {
        batch_rows.extend(on_backend!(conn, c => b::batches.filter(b::id.eq_any(chunk)).select(BatchRow::as_select()).load(c))?);
        edge_rows.extend(on_backend!(conn, c => match direction {
            Direction::Backward => e::lineage_edges.filter(e::child_batch_id.eq_any(chunk)).select(EdgeRow::as_select()).load(c),
            Direction::Forward => e::lineage_edges.filter(e::parent_batch_id.eq_any(chunk)).select(EdgeRow::as_select()).load(c),
        })?);
    }
    let edges = models(edge_rows, EdgeRow::into_model)?;
    let depth = depths(root, &edges, direction);
    let mut records = records::history_of_many(conn, &ids)?;
    let mut traced: Vec<TracedBatch> = Vec::with_capacity(batch_rows.len());
    for row in batch_rows {
        let batch = row.into_model()?;
        traced.push(TracedBatch {
            depth: depth.get(&batch.id).copied().unwrap_or(0),
            records: corrected_view(records.remove(&batch.id.0).unwrap_or_default()),
            batch,
        });
    }
    traced.sort_by_key(|t| (t.depth, t.batch.id));
    Ok(Trace {
        root,
        direction,
        batches: traced,
        edges,
    })
}

/// Shortest number of steps from the root to each batch.
fn depths(root: BatchId, edges: &[LineageEdge], direction: Direction) -> HashMap<BatchId, i32> {
    let mut next: HashMap<BatchId, Vec<BatchId>> = HashMap::new();
    for edge in edges {
        let (from, to) = match direction {
            Direction::Backward => (edge.child_batch_id, edge.parent_batch_id),
            Direction::Forward => (edge.parent_batch_id, edge.child_batch_id),
        };
        next.entry(from).or_default().push(to);
    }
    let mut depth = HashMap::from([(root, 0)]);
    let mut queue = VecDeque::from([root]);
    while let Some(at) = queue.pop_front() {
        let d = depth[&at];
        for &to in next.get(&at).into_iter().flatten() {
            if let std::collections::hash_map::Entry::Vacant(v) = depth.entry(to) {
                v.insert(d + 1);
                queue.push_back(to);
            }
        }
    }
    depth
}

/// Records a split, merge or transformation: creates the output batches and the edges, and writes a
/// `processing` record on each output. Idempotent by client id like records.
pub fn transform(
    conn: &mut DbConnection,
    actor: &Actor,
    new: &NewTransformation,
) -> CoreResult<Transformation> {
    new.validate()?;
    let request = serde_json::to_value(new)
        .map(|v| canonical_json(&v))
        .map_err(|e| CoreError::Internal(e.to_string()))?;
    let client_id = new.client_id.to_string();
    let existing: Option<(i64, String)> = on_backend!(conn, c => t::transformations
        .filter(t::org_id.eq(actor.org_id.0))
        .filter(t::client_id.eq(&client_id))
        .select((t::id, t::request))
        .first(c)
        .optional())?;
    if let Some((id, stored)) = existing {
        if stored == request {
            return load_transformation(conn, TransformationId(id));
        }
        return Err(CoreError::Conflict {
            code: "transformation_conflict",
            message: format!(
                "a different transformation was already stored under client_id {client_id}"
            ),
            details: serde_json::from_str(&stored)
                .ok()
                .map(|s: serde_json::Value| serde_json::json!({ "stored": s, "submitted": new })),
        });
    }

    let mut inputs = Vec::with_capacity(new.inputs.len());
    let mut sorted: Vec<&TransformationInput> = new.inputs.iter().collect();
    sorted.sort_by_key(|i| i.batch_id);
    for input in sorted {
        let batch = batches::get_for_update(conn, input.batch_id)?;
        if batch.status == BatchStatus::Recalled {
            return Err(CoreError::conflict(
                "batch_recalled",
                format!(
                    "batch {} is recalled and cannot be processed",
                    batch.lot_code
                ),
            ));
        }
        if input.quantity > batch.quantity * (1.0 + 1e-9) {
            return Err(CoreError::invalid(
                "invalid_quantity",
                format!(
                    "batch {} holds only {} {}",
                    batch.lot_code, batch.quantity, batch.unit
                ),
            ));
        }
        inputs.push(batch);
    }
    policy::ensure_transform(actor, &inputs)?;
    for output in &new.outputs {
        let product = super::sites::get_product(conn, output.product_id)?;
        if product.org_id != actor.org_id {
            return Err(CoreError::invalid(
                "foreign_product",
                "output products must belong to your organisation",
            ));
        }
    }
    // Where it was done: a site of the organisation doing it (its outputs' first records name it).
    records::References::of(
        conn,
        new.site_id.map(|s| s.0).into_iter().collect(),
        Vec::new(),
    )?
    .check_site(actor.org_id, new.site_id)?;

    let now = now_millis();
    let tid: i64 = on_backend!(conn, c => diesel::insert_into(t::transformations)
        .values((
            t::client_id.eq(&client_id),
            t::org_id.eq(actor.org_id.0),
            t::kind.eq(new.kind.as_str()),
            t::event_time.eq(new.event_time.timestamp_millis()),
            t::actor_user_id.eq(actor.user_id.0),
            t::request.eq(&request),
            t::created_at.eq(now),
        ))
        .returning(t::id)
        .get_result(c))?;
    let blocked_input = inputs.iter().find(|b| b.status == BatchStatus::Blocked);
    let lots: Vec<&str> = inputs.iter().map(|b| b.lot_code.as_str()).collect();
    for (i, output) in new.outputs.iter().enumerate() {
        let nb = NewBatch {
            product_id: output.product_id,
            lot_code: output.lot_code.clone(),
            quantity: output.quantity,
            unit: output.unit.clone(),
            origin_site_id: None,
        };
        let child = batches::insert(conn, actor.org_id, &nb, now)?;
        // A product made from a blocked batch stays blocked until it passes an inspection itself.
        let start = crate::rules::records::BatchState::new(actor.org_id, blocked_input.is_some());
        if start.status != child.status {
            batches::set_status(conn, child.id, start.status, start.status_reason.as_deref())?;
        }
        for (input, batch) in new
            .inputs
            .iter()
            .zip(&inputs_in_request_order(&inputs, &new.inputs))
        {
            let (quantity, unit) = match new.kind {
                LineageKind::Split => (output.quantity, output.unit.clone()),
                _ => (input.quantity, batch.unit.clone()),
            };
            on_backend!(conn, c => diesel::insert_into(e::lineage_edges)
                .values((
                    e::transformation_id.eq(tid),
                    e::parent_batch_id.eq(input.batch_id.0),
                    e::child_batch_id.eq(child.id.0),
                    e::kind.eq(new.kind.as_str()),
                    e::quantity.eq(quantity),
                    e::unit.eq(&unit),
                ))
                .execute(c))?;
        }
        let details = RecordDetails::Processing(Processing {
            operation: new.kind.as_str().to_owned(),
            note: Some(format!("from {}", lots.join(", "))),
        });
        let mut row = RecordRow {
            id: 0,
            client_id: uuid::Uuid::new_v5(&new.client_id, format!("output-{i}").as_bytes())
                .to_string(),
            batch_id: child.id.0,
            seq: 1,
            kind: RecordKind::Processing.as_str().to_owned(),
            event_time: new.event_time.timestamp_millis(),
            received_at: now,
            site_id: new.site_id.map(|s| s.0),
            actor_user_id: actor.user_id.0,
            org_id: actor.org_id.0,
            details: serde_json::to_value(&details)
                .map(|v| canonical_json(&v))
                .map_err(|e| CoreError::Internal(e.to_string()))?,
            attachments: "[]".into(),
            flags: "[]".into(),
            supersedes_id: None,
            prev_hash: child.head_hash.clone(),
            hash: String::new(),
        };
        append(conn, &mut row)?;
    }
    load_transformation(conn, TransformationId(tid))
}

fn inputs_in_request_order(locked: &[Batch], requested: &[TransformationInput]) -> Vec<Batch> {
    requested
        .iter()
        .filter_map(|r| locked.iter().find(|b| b.id == r.batch_id).cloned())
        .collect()
}

/// A stored transformation with its outputs and edges.
pub fn load_transformation(
    conn: &mut DbConnection,
    id: TransformationId,
) -> CoreResult<Transformation> {
    let (client_id, kind, event_time): (String, String, i64) = on_backend!(conn, c => t::transformations.find(id.0).select((t::client_id, t::kind, t::event_time)).first(c))?;
    let edge_rows = on_backend!(conn, c => e::lineage_edges.filter(e::transformation_id.eq(id.0)).order(e::id).select(EdgeRow::as_select()).load(c))?;
    let edges = models(edge_rows, EdgeRow::into_model)?;
    let mut seen = HashSet::new();
    let child_ids: Vec<i64> = edges
        .iter()
        .map(|x| x.child_batch_id.0)
        .filter(|c| seen.insert(*c))
        .collect();
    let rows = on_backend!(conn, c => b::batches.filter(b::id.eq_any(&child_ids)).order(b::id).select(BatchRow::as_select()).load(c))?;
    Ok(Transformation {
        id,
        client_id: uuid::Uuid::parse_str(&client_id)
            .map_err(|e| CoreError::Internal(e.to_string()))?,
        kind: LineageKind::parse(&kind)
            .ok_or_else(|| CoreError::Internal(format!("unexpected lineage kind {kind:?}")))?,
        event_time: to_datetime(event_time),
        outputs: models(rows, BatchRow::into_model)?,
        edges,
    })
}
