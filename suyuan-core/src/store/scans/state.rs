//! The per-label state the counterfeit rules read and write (`label_scan_stats`): loaded once for a batch
//! of scans, saved once after it.

use std::collections::{HashMap, HashSet};

use diesel::prelude::*;

use crate::error::CoreResult;
use crate::model::LabelRef;
use crate::on_backend;
use crate::rules::scans::LabelState;
use crate::schema::label_scan_stats::dsl as st;
use crate::store::DbConnection;

use super::CHUNK;

/// A `label_scan_stats` row, every column in table order (the default selection).
pub(super) type StatsRow = (
    i64,
    i64,
    i64,
    i64,
    i64,
    Option<String>,
    i64,
    Option<String>,
    Option<f64>,
    Option<f64>,
    Option<String>,
    String,
);

pub(super) fn load_state(
    conn: &mut DbConnection,
    labels: &HashSet<LabelRef>,
) -> CoreResult<HashMap<LabelRef, LabelState>> {
    let mut out = HashMap::with_capacity(labels.len());
    if labels.is_empty() {
        return Ok(out);
    }
    let sequences: Vec<i64> = labels.iter().map(|l| l.sequence).collect();
    for chunk in sequences.chunks(CHUNK) {
        let rows: Vec<StatsRow> = on_backend!(conn, c => st::label_scan_stats
            .filter(st::sequence.eq_any(chunk))
            .load(c))?;
        for row in rows {
            let label = LabelRef {
                key_id: row.0,
                sequence: row.1,
            };
            if !labels.contains(&label) {
                continue;
            }
            out.insert(
                label,
                LabelState {
                    scans: row.2,
                    devices: row.3,
                    first_at: row.4,
                    first_division: row.5,
                    last_at: row.6,
                    last_division: row.7,
                    last_point: row.8.zip(row.9),
                    suspicion: row.10,
                    alerted: row
                        .11
                        .split(',')
                        .filter(|k| !k.is_empty())
                        .map(str::to_owned)
                        .collect(),
                    changed: false,
                },
            );
        }
    }
    Ok(out)
}

pub(super) fn save_state(
    conn: &mut DbConnection,
    state: &HashMap<LabelRef, LabelState>,
) -> CoreResult<()> {
    for (label, r) in state.iter().filter(|(_, r)| r.changed) {
        let alerted = r.alerted.join(",");
        let values = (
            st::key_id.eq(label.key_id),
            st::sequence.eq(label.sequence),
            st::scans.eq(r.scans),
            st::devices.eq(r.devices),
            st::first_at.eq(r.first_at),
            st::first_division.eq(&r.first_division),
            st::last_at.eq(r.last_at),
            st::last_division.eq(&r.last_division),
            st::last_latitude.eq(r.last_point.map(|p| p.0)),
            st::last_longitude.eq(r.last_point.map(|p| p.1)),
            st::suspicion.eq(&r.suspicion),
            st::alerted.eq(&alerted),
        );
        on_backend!(conn, c => diesel::insert_into(st::label_scan_stats)
            .values(values)
            .on_conflict((st::key_id, st::sequence))
            .do_update()
            .set((
                st::scans.eq(r.scans),
                st::devices.eq(r.devices),
                st::first_division.eq(&r.first_division),
                st::last_at.eq(r.last_at),
                st::last_division.eq(&r.last_division),
                st::last_latitude.eq(r.last_point.map(|p| p.0)),
                st::last_longitude.eq(r.last_point.map(|p| p.1)),
                st::suspicion.eq(&r.suspicion),
                st::alerted.eq(&alerted),
            ))
            .execute(c))?;
    }
    Ok(())
}
