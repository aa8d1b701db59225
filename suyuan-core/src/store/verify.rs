//! Verification of every batch's hash chain against the stored rows (`suyuan verify chain`).
//!
//! Three things are checked: each record's hash against its content and its predecessor; each batch's head
//! (record count and head hash) against its chain; and each batch's derived columns (status, its reason,
//! custody) against what its records decide, with the same rules the writer applies
//! ([`crate::rules::records`]). What the chain cannot see alone — a tail cut off together with the head moved
//! back — is checked against signed anchors ([`super::anchors`]).

use std::collections::HashMap;

use diesel::prelude::*;
use serde::Serialize;

use super::rows::{BatchRow, RecordRow};
use super::DbConnection;
use crate::chain::{record_hash, GENESIS_HASH};
use crate::error::CoreResult;
use crate::model::{BatchStatus, RecordDetails};
use crate::on_backend;
use crate::rules::records::{self as record_rules, BatchState};
use crate::schema::{batches::dsl as b, lineage_edges::dsl as e, records::dsl as r};
use crate::{BatchId, OrgId};

/// One place where the stored data no longer matches its chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChainIssue {
    pub batch_id: i64,
    /// The record concerned, where there is one.
    pub record_id: Option<i64>,
    pub seq: Option<i64>,
    pub problem: String,
    /// For a derived column that differs from what the records decide: which one, as stored and as derived.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mismatch: Option<Mismatch>,
}

/// A batch column that its records contradict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Mismatch {
    pub column: String,
    pub stored: String,
    pub derived: String,
}

/// What a verification found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ChainReport {
    pub batches: u64,
    pub records: u64,
    pub issues: Vec<ChainIssue>,
}

/// Walks every batch's records in chain order, recomputing each hash, compares the end of each chain with
/// the batch's stored head, and re-derives the batch's status and custody from its records. Work goes batch
/// range by batch range so memory stays bounded (apart from one small status history per batch, for the
/// outputs of transformations); `progress` is called with the number of records checked so far.
pub fn verify_chains(
    conn: &mut DbConnection,
    mut progress: impl FnMut(u64),
) -> CoreResult<ChainReport> {
    let mut report = ChainReport::default();
    let mut after = 0i64;
    // Each batch's derived status after each record that changed it, by record id: an output of a
    // transformation starts blocked when an input was blocked when the output's first record was written.
    let mut statuses: HashMap<i64, Vec<(i64, BatchStatus)>> = HashMap::new();
    let mut lot_codes: HashMap<i64, String> = HashMap::new();
    loop {
        let batches: Vec<BatchRow> = on_backend!(conn, c => b::batches
            .filter(b::id.gt(after))
            .order(b::id)
            .limit(2000)
            .select(BatchRow::as_select())
            .load(c))?;
        let Some(last) = batches.last().map(|h| h.id) else {
            break;
        };
        let rows: Vec<RecordRow> = on_backend!(conn, c => r::records
            .filter(r::batch_id.gt(after).and(r::batch_id.le(last)))
            .order((r::batch_id, r::seq))
            .select(RecordRow::as_select())
            .load(c))?;
        let edges: Vec<(i64, i64)> = on_backend!(conn, c => e::lineage_edges
            .filter(e::child_batch_id.gt(after).and(e::child_batch_id.le(last)))
            .select((e::child_batch_id, e::parent_batch_id))
            .load(c))?;
        let mut parents: HashMap<i64, Vec<i64>> = HashMap::new();
        for (child, parent) in edges {
            parents.entry(child).or_default().push(parent);
        }
        load_recall_origins(conn, &rows, &mut lot_codes)?;
        let mut rows = rows.into_iter().peekable();
        for batch in &batches {
            let batch_id = batch.id;
            while let Some(row) = rows.next_if(|row| row.batch_id < batch_id) {
                report.issues.push(orphan(&row));
            }
            report.batches += 1;
            let mut prev = GENESIS_HASH.to_owned();
            let mut expected_seq = 1i64;
            let mut state: Option<BatchState> = None;
            let mut history = Vec::new();
            while let Some(row) = rows.next_if(|row| row.batch_id == batch_id) {
                report.records += 1;
                let issue = |problem: String| ChainIssue {
                    batch_id,
                    record_id: Some(row.id),
                    seq: Some(row.seq),
                    problem,
                    mismatch: None,
                };
                if row.seq != expected_seq {
                    report.issues.push(issue(format!(
                        "sequence jumps from {} to {}: a record is missing",
                        expected_seq - 1,
                        row.seq
                    )));
                }
                if row.prev_hash != prev {
                    report
                        .issues
                        .push(issue("prev_hash does not match the previous record".into()));
                }
                let computed = record_hash(&row.chain_fields());
                if computed != row.hash {
                    report.issues.push(issue(
                        "stored content does not match its hash: the record was changed".into(),
                    ));
                }
                let st = state.get_or_insert_with(|| {
                    let input_blocked = parents.get(&batch_id).is_some_and(|ps| {
                        ps.iter()
                            .any(|p| status_before(&statuses, *p, row.id) == BatchStatus::Blocked)
                    });
                    let st = BatchState::new(OrgId(batch.org_id), input_blocked);
                    history.push((0, st.status));
                    st
                });
                match parse_effects(&row) {
                    Some(effects) => {
                        for effect in effects {
                            st.apply(&effect, |origin| {
                                lot_codes.get(&origin.0).cloned().unwrap_or_default()
                            });
                        }
                        if history.last().map(|h| h.1) != Some(st.status) {
                            history.push((row.id, st.status));
                        }
                    }
                    None => report.issues.push(issue(
                        "details or flags are not readable: the record was changed".into(),
                    )),
                }
                prev = row.hash.clone();
                expected_seq = row.seq + 1;
            }
            let (count, head) = (batch.record_count, &batch.head_hash);
            if expected_seq - 1 != count || prev != *head {
                report.issues.push(ChainIssue {
                    batch_id,
                    record_id: None,
                    seq: None,
                    problem: format!("batch head says {count} records ending in {head:.12}…, chain has {} ending in {prev:.12}…", expected_seq - 1),
                    mismatch: None,
                });
            }
            let derived = state.unwrap_or_else(|| BatchState::new(OrgId(batch.org_id), false));
            let stored = BatchState {
                status: BatchStatus::parse(&batch.status).unwrap_or(BatchStatus::Open),
                status_reason: batch.status_reason.clone(),
                custodian_org_id: OrgId(batch.custodian_org_id),
                in_transit_to_org_id: batch.in_transit_to_org_id.map(OrgId),
            };
            if BatchStatus::parse(&batch.status).is_none() {
                report.issues.push(ChainIssue {
                    batch_id,
                    record_id: None,
                    seq: None,
                    problem: format!("batch status {:?} is not a status", batch.status),
                    mismatch: None,
                });
            }
            for (column, in_row, from_chain) in stored.differences(&derived) {
                report.issues.push(ChainIssue {
                    batch_id,
                    record_id: None,
                    seq: None,
                    problem: format!(
                        "batch row says {column} = {in_row}, its records say {from_chain}: the row was changed"
                    ),
                    mismatch: Some(Mismatch {
                        column: column.to_owned(),
                        stored: in_row,
                        derived: from_chain,
                    }),
                });
            }
            if history.len() > 1 || history.first().is_some_and(|h| h.1 != BatchStatus::Open) {
                statuses.insert(batch_id, history);
            }
        }
        // Records whose batch row is missing are reported too.
        for row in rows {
            report.issues.push(orphan(&row));
        }
        progress(report.records);
        after = last;
    }
    Ok(report)
}

/// A batch's derived status just before the record `record_id` was written (record ids grow in commit order
/// within a batch's lock, which a transformation holds on its inputs).
fn status_before(
    statuses: &HashMap<i64, Vec<(i64, BatchStatus)>>,
    batch: i64,
    record_id: i64,
) -> BatchStatus {
    statuses
        .get(&batch)
        .and_then(|h| h.iter().take_while(|(id, _)| *id < record_id).last())
        .map_or(BatchStatus::Open, |h| h.1)
}

/// The effects of a stored record, or `None` when its details or flags no longer parse.
fn parse_effects(row: &RecordRow) -> Option<Vec<record_rules::Effect>> {
    let details: RecordDetails = serde_json::from_str(&row.details).ok()?;
    let flags: Vec<String> = serde_json::from_str(&row.flags).ok()?;
    Some(record_rules::effects(&details, &flags, OrgId(row.org_id)))
}

/// Loads the lot codes of the origins of the recalls among `rows` (for the recalled batches' status reason).
fn load_recall_origins(
    conn: &mut DbConnection,
    rows: &[RecordRow],
    lot_codes: &mut HashMap<i64, String>,
) -> CoreResult<()> {
    let mut wanted: Vec<i64> = rows
        .iter()
        .filter(|row| row.kind == crate::model::RecordKind::Recall.as_str())
        .filter_map(|row| match serde_json::from_str(&row.details) {
            Ok(RecordDetails::Recall(rc)) => Some(rc.origin_batch_id),
            _ => None,
        })
        .map(|id: BatchId| id.0)
        .filter(|id| !lot_codes.contains_key(id))
        .collect();
    wanted.sort_unstable();
    wanted.dedup();
    for chunk in wanted.chunks(1000) {
        let found: Vec<(i64, String)> = on_backend!(conn, c => b::batches
            .filter(b::id.eq_any(chunk))
            .select((b::id, b::lot_code))
            .load(c))?;
        lot_codes.extend(found);
    }
    Ok(())
}

fn orphan(row: &RecordRow) -> ChainIssue {
    ChainIssue {
        batch_id: row.batch_id,
        record_id: Some(row.id),
        seq: Some(row.seq),
        problem: "record of a batch that does not exist".into(),
        mismatch: None,
    }
}

/// A trivial query, to check that the database answers.
pub fn ping(conn: &mut DbConnection) -> crate::error::CoreResult<()> {
    use diesel::connection::SimpleConnection;
    on_backend!(conn, c => c.batch_execute("SELECT 1"))?;
    Ok(())
}

/// Calls `$m!` with every table of the schema.
macro_rules! each_table {
    ($m:ident) => {
        $m!(
            organisations,
            users,
            auth_tokens,
            sites,
            products,
            batches,
            transformations,
            lineage_edges,
            records,
            inspection_requests,
            alerts,
            signing_keys,
            label_runs,
            label_activations,
            label_voids,
            devices,
            device_images,
            iot_rules,
            device_rule_states,
            gateway_refusals,
            telemetry,
            readings,
            scans,
            label_scan_stats,
            label_scan_devices,
            scan_region_days,
            settings,
            chain_anchors,
            label_quotas,
            exports
        )
    };
}

/// Row counts of every table, in a fixed order (for operators, and for tests that show a refused request
/// changed nothing).
pub fn table_counts(conn: &mut DbConnection) -> crate::error::CoreResult<Vec<(String, i64)>> {
    use crate::schema::*;
    let mut out = Vec::new();
    macro_rules! count {
        ($($t:ident),*) => {$(
            let n: i64 = on_backend!(conn, c => $t::table.count().get_result(c))?;
            out.push((stringify!($t).to_owned(), n));
        )*};
    }
    each_table!(count);
    Ok(out)
}

/// Selects every column the diesel schema declares from every table (no rows), so that a migration that
/// drifted from `schema.rs` fails loudly at start-up checks and in tests rather than on the first request.
pub fn check_schema(conn: &mut DbConnection) -> crate::error::CoreResult<()> {
    use crate::schema::*;
    macro_rules! check {
        ($($t:ident),*) => {$(
            on_backend!(conn, c => $t::table.select($t::all_columns).limit(0).execute(c))?;
        )*};
    }
    each_table!(check);
    Ok(())
}
