//! Exports: the tracking events of a batch's trace or of a period, gathered with their key data elements
//! ([`gather`]) and written as a file (`crate::export`); background exports as jobs ([`jobs`]).
//!
//! Who sees what: a trace export shows what `GET /batches/{id}/trace` shows — whoever may read the batch
//! reads its lineage both ways ([`crate::policy::ensure_read_trace`]); a period export shows the records of
//! the batches the actor may read ([`crate::policy::batch_read_scope`]).

pub mod gather;
pub mod jobs;

use std::io::{Seek, Write};

pub use gather::{
    count_period, count_trace, period_page, trace_events, Cursor, Directory, PeriodQuery,
};

use crate::db::Database;
use crate::error::CoreResult;
use crate::export::{ExportWriter, WriteOptions};
use crate::model::{Actor, ExportFormat, ExportScope};

/// Events gathered and written per page of a period export.
pub const PAGE: i64 = 2_000;

/// Writes the export of `scope` as `actor` may read it, in `format`, to `out`; `progress(done, total)` is
/// called after every page. Returns the output and the number of events written. Each page is read on its
/// own pooled connection, so a long export holds no connection (nor transaction) between pages.
pub fn write<W: Write + Seek + Send>(
    db: &Database,
    actor: &Actor,
    scope: &ExportScope,
    format: ExportFormat,
    out: W,
    options: &WriteOptions,
    progress: &mut dyn FnMut(i64, i64) -> CoreResult<()>,
) -> CoreResult<(W, i64)> {
    let mut writer = ExportWriter::new(format, out, options)?;
    let mut done = 0i64;
    match scope {
        ExportScope::Trace { batch_id } => {
            let events = db.read(|c| trace_events(c, actor, *batch_id))?;
            jobs::too_large(events.len() as i64)?;
            writer.write(&events)?;
            done = events.len() as i64;
            progress(done, done)?;
        }
        ExportScope::Period(period) => {
            let (query, total) = db.read(|c| {
                let query = PeriodQuery::new(c, actor, period)?;
                let total = count_period(c, &query)?;
                Ok((query, total))
            })?;
            jobs::too_large(total)?;
            progress(0, total)?;
            let mut dir = Directory::default();
            let mut cursor = Cursor {
                event_time: i64::MIN,
                id: i64::MIN,
            };
            loop {
                let (events, next) = db.read(|c| period_page(c, &mut dir, &query, cursor, PAGE))?;
                let Some(next) = next else { break };
                writer.write(&events)?;
                done += events.len() as i64;
                cursor = next;
                // Records captured meanwhile may make the period grow; the total follows.
                progress(done, total.max(done))?;
            }
        }
    }
    Ok((writer.finish()?, done))
}
