//! Logging scans: a batch of scan events (hundreds per transaction under load) walked in order through
//! the counterfeit rules ([`crate::rules::scans`], which decide), then the scans, the devices met, the
//! regional counts, the labels' new state and the alerts written in a few statements.

use std::collections::{HashMap, HashSet};

use diesel::prelude::*;

use crate::error::CoreResult;
use crate::model::{LabelRef, RegionSource, ScanEvent, ScanRegion, ScanRules, ScanVerdict};
use crate::on_backend;
use crate::rules::scans::{self as rules, LabelState, ScanAlert};
use crate::schema::{
    label_scan_devices::dsl as sd, products::dsl as p, scan_region_days::dsl as rd, scans::dsl as s,
};
use crate::store::alerts::{self, NewAlert};
use crate::store::DbConnection;
use crate::time;
use crate::ProductId;

use super::state::{load_state, save_state};
use super::CHUNK;

/// A scan row as it is inserted.
#[derive(Insertable)]
#[diesel(table_name = crate::schema::scans)]
struct ScanRow<'a> {
    scanned_at: i64,
    method: &'a str,
    verdict: &'a str,
    key_id: Option<i64>,
    sequence: Option<i64>,
    batch_id: Option<i64>,
    org_id: Option<i64>,
    division_code: Option<&'a str>,
    region_source: Option<&'a str>,
    latitude: Option<f64>,
    longitude: Option<f64>,
    first_scan: bool,
    client_hash: &'a str,
}

/// Logs a batch of scan events in one transaction (the caller's) and applies the counterfeit rules.
/// Returns the number of scans stored.
pub fn record(
    conn: &mut DbConnection,
    events: &[ScanEvent],
    scan_rules: &ScanRules,
) -> CoreResult<usize> {
    let labels: HashSet<LabelRef> = events
        .iter()
        .filter_map(|e| match e {
            ScanEvent::Scan(scan) if rules::tracks_label(scan) => scan.label,
            ScanEvent::Scan(_) => None,
            ScanEvent::Located(l) => Some(l.label),
        })
        .collect();
    let mut state = load_state(conn, &labels)?;
    let mut seen = load_devices(conn, events)?;
    let areas = load_areas(conn, events)?;

    let mut rows: Vec<(usize, bool)> = Vec::with_capacity(events.len());
    // Location fixes for rows of this batch: row (index into `rows`) → the shared location.
    let mut fixes: HashMap<usize, &ScanRegion> = HashMap::new();
    let mut new_devices: Vec<(LabelRef, &str)> = Vec::new();
    let mut region_days: HashMap<(String, String, &'static str), i64> = HashMap::new();
    let mut pending: Vec<ScanAlert> = Vec::new();
    // The row (index into `rows`) of each client's latest scan of a label in this batch, for location fixes.
    let mut latest: HashMap<(LabelRef, &str), usize> = HashMap::new();

    for (i, event) in events.iter().enumerate() {
        match event {
            ScanEvent::Scan(scan) => {
                let division = scan.region.as_ref().map(|r| r.division_code.clone());
                *region_days
                    .entry((
                        time::china_day(scan.scanned_at),
                        division.clone().unwrap_or_default(),
                        scan.verdict.as_str(),
                    ))
                    .or_insert(0) += 1;
                let first = match scan.label.filter(|_| rules::tracks_label(scan)) {
                    Some(label) => {
                        let new_device = seen.insert((label, scan.client_hash.clone()));
                        if new_device {
                            new_devices.push((label, &scan.client_hash));
                        }
                        let entry = state.entry(label);
                        let first = matches!(entry, std::collections::hash_map::Entry::Vacant(_));
                        let running = entry.or_insert_with(|| {
                            LabelState::first(scan.scanned_at, division.clone())
                        });
                        let area = scan.product_id.and_then(|id| areas.get(&id));
                        rules::on_scan(
                            scan,
                            new_device,
                            running,
                            area.map(Vec::as_slice),
                            scan_rules,
                            &mut pending,
                        );
                        latest.insert((label, scan.client_hash.as_str()), rows.len());
                        first
                    }
                    None => false,
                };
                rows.push((i, first));
            }
            ScanEvent::Located(fix) => {
                let Some(running) = state.get_mut(&fix.label) else {
                    continue;
                };
                if let Some(&row) = latest.get(&(fix.label, fix.client_hash.as_str())) {
                    fixes.insert(row, &fix.region);
                } else {
                    located_earlier(conn, fix)?;
                }
                let area = fix.product_id.and_then(|id| areas.get(&id));
                rules::on_location(fix, running, area.map(Vec::as_slice), &mut pending);
            }
        }
    }

    // Scans, with location fixes applied to rows of this batch.
    let scan_rows: Vec<ScanRow<'_>> = rows
        .iter()
        .enumerate()
        .filter_map(|(n, (i, first))| match &events[*i] {
            ScanEvent::Scan(scan) => {
                let region = fixes.get(&n).copied().or(scan.region.as_ref());
                Some(ScanRow {
                    scanned_at: scan.scanned_at.timestamp_millis(),
                    method: scan.method.as_str(),
                    verdict: scan.verdict.as_str(),
                    key_id: scan.label.map(|l| l.key_id),
                    sequence: scan.label.map(|l| l.sequence),
                    batch_id: scan.batch_id.map(|b| b.0),
                    org_id: scan.org_id.map(|o| o.0),
                    division_code: region.map(|r| r.division_code.as_str()),
                    region_source: region.map(|r| r.source.as_str()),
                    latitude: region.map(|r| r.latitude),
                    longitude: region.map(|r| r.longitude),
                    first_scan: *first,
                    client_hash: &scan.client_hash,
                })
            }
            ScanEvent::Located(_) => None,
        })
        .collect();
    for chunk in scan_rows.chunks(CHUNK) {
        on_backend!(conn, c => diesel::insert_into(s::scans).values(chunk).execute(c))?;
    }

    let device_rows: Vec<_> = new_devices
        .iter()
        .map(|(l, h)| {
            (
                sd::key_id.eq(l.key_id),
                sd::sequence.eq(l.sequence),
                sd::client_hash.eq(*h),
            )
        })
        .collect();
    for chunk in device_rows.chunks(CHUNK) {
        on_backend!(conn, c => diesel::insert_into(sd::label_scan_devices)
            .values(chunk)
            .on_conflict_do_nothing()
            .execute(c))?;
    }

    save_state(conn, &state)?;
    let forgery_regions = save_region_days(conn, &region_days)?;

    pending.extend(rules::forgery_attempts(events, &forgery_regions));
    for alert in pending {
        alerts::open(
            conn,
            NewAlert {
                kind: alert.kind(),
                org_id: alert.org,
                batch_id: alert.batch,
                record_id: None,
                message: alert.message(),
            },
        )?;
    }
    Ok(scan_rows.len())
}

fn load_devices(
    conn: &mut DbConnection,
    events: &[ScanEvent],
) -> CoreResult<HashSet<(LabelRef, String)>> {
    let wanted: HashSet<(LabelRef, &str)> = events
        .iter()
        .filter_map(|e| match e {
            ScanEvent::Scan(scan) if rules::tracks_label(scan) => {
                scan.label.map(|l| (l, scan.client_hash.as_str()))
            }
            _ => None,
        })
        .collect();
    let mut out = HashSet::new();
    let sequences: Vec<i64> = {
        let mut v: Vec<i64> = wanted.iter().map(|(l, _)| l.sequence).collect();
        v.sort_unstable();
        v.dedup();
        v
    };
    for chunk in sequences.chunks(CHUNK) {
        let rows: Vec<(i64, i64, String)> = on_backend!(conn, c => sd::label_scan_devices
            .filter(sd::sequence.eq_any(chunk))
            .select((sd::key_id, sd::sequence, sd::client_hash))
            .load(c))?;
        for (key_id, sequence, hash) in rows {
            let label = LabelRef { key_id, sequence };
            if wanted.contains(&(label, hash.as_str())) {
                out.insert((label, hash));
            }
        }
    }
    Ok(out)
}

fn load_areas(
    conn: &mut DbConnection,
    events: &[ScanEvent],
) -> CoreResult<HashMap<ProductId, Vec<String>>> {
    let mut ids: Vec<i64> = events
        .iter()
        .filter_map(|e| match e {
            ScanEvent::Scan(scan) => scan.product_id.map(|p| p.0),
            ScanEvent::Located(fix) => fix.product_id.map(|p| p.0),
        })
        .collect();
    ids.sort_unstable();
    ids.dedup();
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let rows: Vec<(i64, String)> = on_backend!(conn, c => p::products
        .filter(p::id.eq_any(&ids))
        .select((p::id, p::distribution_area))
        .load(c))?;
    Ok(rows
        .into_iter()
        .map(|(id, area)| {
            (
                ProductId(id),
                serde_json::from_str(&area).unwrap_or_default(),
            )
        })
        .collect())
}

/// A location shared for a scan stored in an earlier batch: updates that client's latest scan of the label.
fn located_earlier(conn: &mut DbConnection, fix: &crate::model::LocatedScan) -> CoreResult<()> {
    let latest: Option<i64> = on_backend!(conn, c => s::scans
        .filter(s::key_id.eq(fix.label.key_id))
        .filter(s::sequence.eq(fix.label.sequence))
        .filter(s::client_hash.eq(&fix.client_hash))
        .order(s::scanned_at.desc())
        .select(s::id)
        .first(c)
        .optional())?;
    if let Some(id) = latest {
        on_backend!(conn, c => diesel::update(s::scans.find(id))
            .set((
                s::division_code.eq(&fix.region.division_code),
                s::region_source.eq(RegionSource::Location.as_str()),
                s::latitude.eq(fix.region.latitude),
                s::longitude.eq(fix.region.longitude),
            ))
            .execute(c))?;
    }
    Ok(())
}

/// Adds the batch's counts per day, region and verdict; returns the (day, region) pairs whose first
/// counterfeit scan is in this batch.
fn save_region_days(
    conn: &mut DbConnection,
    counts: &HashMap<(String, String, &'static str), i64>,
) -> CoreResult<HashSet<(String, String)>> {
    let mut first_forgeries = HashSet::new();
    for ((day, division, verdict), n) in counts {
        if *verdict == ScanVerdict::Counterfeit.as_str() {
            let before: Option<i64> = on_backend!(conn, c => rd::scan_region_days
                .find((day, division, verdict))
                .select(rd::scans)
                .first(c)
                .optional())?;
            if before.is_none() {
                first_forgeries.insert((day.clone(), division.clone()));
            }
        }
        on_backend!(conn, c => diesel::insert_into(rd::scan_region_days)
            .values((
                rd::day.eq(day),
                rd::division_code.eq(division),
                rd::verdict.eq(verdict),
                rd::scans.eq(n),
            ))
            .on_conflict((rd::day, rd::division_code, rd::verdict))
            .do_update()
            .set(rd::scans.eq(rd::scans + n))
            .execute(c))?;
    }
    Ok(first_forgeries)
}
