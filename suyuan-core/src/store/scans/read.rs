//! What the scan log answers: one label's statistics, the regional counts for regulators, the total.

use diesel::prelude::*;

use crate::error::CoreResult;
use crate::model::{LabelRef, LabelScanStats, RegionDayCount, ScanVerdict, Suspicion};
use crate::on_backend;
use crate::schema::{label_scan_stats::dsl as st, scan_region_days::dsl as rd, scans::dsl as s};
use crate::store::DbConnection;
use crate::time::to_datetime;

use super::state::StatsRow;

/// What the scan log knows about one label (none before its first scan is stored).
pub fn stats(conn: &mut DbConnection, label: LabelRef) -> CoreResult<Option<LabelScanStats>> {
    let row: Option<StatsRow> = on_backend!(conn, c => st::label_scan_stats
        .find((label.key_id, label.sequence))
        .first(c)
        .optional())?;
    Ok(row.map(|r| LabelScanStats {
        label,
        scans: r.2,
        devices: r.3,
        first_at: to_datetime(r.4),
        first_division: r.5,
        last_at: to_datetime(r.6),
        last_division: r.7,
        suspicion: r.10.as_deref().and_then(Suspicion::parse),
    }))
}

/// Scans per day, region and verdict over `[from, to]` (days as YYYY-MM-DD), for regulators.
pub fn region_counts(
    conn: &mut DbConnection,
    from: &str,
    to: &str,
) -> CoreResult<Vec<RegionDayCount>> {
    let rows: Vec<(String, String, String, i64)> = on_backend!(conn, c => rd::scan_region_days
        .filter(rd::day.ge(from))
        .filter(rd::day.le(to))
        .order((rd::day, rd::division_code, rd::verdict))
        .select((rd::day, rd::division_code, rd::verdict, rd::scans))
        .load(c))?;
    Ok(rows
        .into_iter()
        .filter_map(|(day, division_code, verdict, scans)| {
            Some(RegionDayCount {
                day,
                division_code,
                verdict: ScanVerdict::parse(&verdict)?,
                scans,
            })
        })
        .collect())
}

/// How many scans are stored (benchmarks compare it with the requests served).
pub fn count(conn: &mut DbConnection) -> CoreResult<i64> {
    Ok(on_backend!(conn, c => s::scans.count().get_result(c))?)
}
