//! Verification of every batch's hash chain against the stored rows (`suyuan verify chain`).

use diesel::prelude::*;
use serde::Serialize;

use super::rows::RecordRow;
use super::DbConnection;
use crate::chain::{record_hash, GENESIS_HASH};
use crate::error::CoreResult;
use crate::on_backend;
use crate::schema::{batches::dsl as b, records::dsl as r};

/// One place where the stored data no longer matches its chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChainIssue {
    pub batch_id: i64,
    /// The record concerned, where there is one.
    pub record_id: Option<i64>,
    pub seq: Option<i64>,
    pub problem: String,
}

/// What a verification found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ChainReport {
    pub batches: u64,
    pub records: u64,
    pub issues: Vec<ChainIssue>,
}

/// Walks every batch's records in chain order, recomputing each hash, and compares the end of each chain with
/// the batch's stored head. Work goes batch range by batch range so memory stays bounded; `progress` is
/// called with the number of records checked so far.
pub fn verify_chains(
    conn: &mut DbConnection,
    mut progress: impl FnMut(u64),
) -> CoreResult<ChainReport> {
    let mut report = ChainReport::default();
    let mut after = 0i64;
    loop {
        let heads: Vec<(i64, i64, String)> = on_backend!(conn, c => b::batches
            .filter(b::id.gt(after))
            .order(b::id)
            .limit(2000)
            .select((b::id, b::record_count, b::head_hash))
            .load(c))?;
        let Some(last) = heads.last().map(|h| h.0) else {
            break;
        };
        let rows: Vec<RecordRow> = on_backend!(conn, c => r::records
            .filter(r::batch_id.gt(after).and(r::batch_id.le(last)))
            .order((r::batch_id, r::seq))
            .select(RecordRow::as_select())
            .load(c))?;
        let mut rows = rows.into_iter().peekable();
        for (batch_id, count, head) in &heads {
            while let Some(row) = rows.next_if(|row| row.batch_id < *batch_id) {
                report.issues.push(orphan(&row));
            }
            report.batches += 1;
            let mut prev = GENESIS_HASH.to_owned();
            let mut expected_seq = 1i64;
            while let Some(row) = rows.next_if(|row| row.batch_id == *batch_id) {
                report.records += 1;
                let issue = |problem: String| ChainIssue {
                    batch_id: *batch_id,
                    record_id: Some(row.id),
                    seq: Some(row.seq),
                    problem,
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
                prev = row.hash.clone();
                expected_seq = row.seq + 1;
            }
            if expected_seq - 1 != *count || prev != *head {
                report.issues.push(ChainIssue {
                    batch_id: *batch_id,
                    record_id: None,
                    seq: None,
                    problem: format!("batch head says {count} records ending in {head:.12}…, chain has {} ending in {prev:.12}…", expected_seq - 1),
                });
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

fn orphan(row: &RecordRow) -> ChainIssue {
    ChainIssue {
        batch_id: row.batch_id,
        record_id: Some(row.id),
        seq: Some(row.seq),
        problem: "record of a batch that does not exist".into(),
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
            settings
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
