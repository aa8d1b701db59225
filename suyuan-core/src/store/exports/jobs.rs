//! Background exports as rows: asked for, claimed by one exporter (on any replica: the claim is one guarded
//! `UPDATE`), its progress written as it goes, finished with its file or failed with the reason.

use diesel::prelude::*;

use crate::error::{CoreError, CoreResult, OptionalExt};
use crate::model::{
    Actor, ExportFormat, ExportId, ExportJob, ExportScope, ExportStatus, MAX_EXPORT_EVENTS,
};
use crate::on_backend;
use crate::policy;
use crate::schema::exports::dsl as x;
use crate::store::DbConnection;
use crate::time::{now_millis, to_datetime};
use crate::{OrgId, UserId};

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = crate::schema::exports)]
struct ExportRow {
    id: i64,
    requested_by: i64,
    org_id: i64,
    scope: String,
    format: String,
    status: String,
    rows_done: i64,
    rows_total: Option<i64>,
    file_name: Option<String>,
    bytes: Option<i64>,
    error: Option<String>,
    created_at: i64,
    started_at: Option<i64>,
    updated_at: i64,
    finished_at: Option<i64>,
}

impl ExportRow {
    fn into_model(self) -> CoreResult<ExportJob> {
        let bad =
            |what: &str, v: &str| CoreError::Internal(format!("unexpected export {what} {v:?}"));
        Ok(ExportJob {
            id: ExportId(self.id),
            requested_by: UserId(self.requested_by),
            org_id: OrgId(self.org_id),
            scope: serde_json::from_str(&self.scope).map_err(|_| bad("scope", &self.scope))?,
            format: ExportFormat::parse(&self.format).ok_or_else(|| bad("format", &self.format))?,
            status: ExportStatus::parse(&self.status).ok_or_else(|| bad("status", &self.status))?,
            rows_done: self.rows_done,
            rows_total: self.rows_total,
            file_name: self.file_name,
            bytes: self.bytes,
            error: self.error,
            created_at: to_datetime(self.created_at),
            started_at: self.started_at.map(to_datetime),
            updated_at: to_datetime(self.updated_at),
            finished_at: self.finished_at.map(to_datetime),
        })
    }
}

/// How many exports may wait or run at once, per organisation and overall.
#[derive(Debug, Clone, Copy)]
pub struct ExportLimits {
    pub per_org: i64,
    pub overall: i64,
}

impl Default for ExportLimits {
    fn default() -> Self {
        ExportLimits {
            per_org: 3,
            overall: 20,
        }
    }
}

fn open_statuses() -> [&'static str; 2] {
    [
        ExportStatus::Queued.as_str(),
        ExportStatus::Running.as_str(),
    ]
}

/// Counts the events of an export `actor` asks for, checking that what it covers exists and may be read
/// (404) and that it is not beyond [`MAX_EXPORT_EVENTS`] (422 `export_too_large`). A read: the count runs
/// outside the write that records the export.
pub fn count(conn: &mut DbConnection, actor: &Actor, scope: &ExportScope) -> CoreResult<i64> {
    let total = match scope {
        ExportScope::Trace { batch_id } => {
            let batch = crate::store::batches::get(conn, *batch_id)?;
            let rel = crate::store::batches::relation(conn, actor, &batch)?;
            policy::ensure_read_trace(actor, &batch, rel)?;
            super::count_trace(conn, *batch_id)?
        }
        ExportScope::Period(period) => {
            let query = super::PeriodQuery::new(conn, actor, period)?;
            super::count_period(conn, &query)?
        }
    };
    too_large(total)?;
    Ok(total)
}

/// Records an export asked for by `actor` (its events counted by [`count`]) as `queued`, unless too many
/// are waiting (429 `too_many_exports`).
pub fn create(
    conn: &mut DbConnection,
    actor: &Actor,
    format: ExportFormat,
    scope: &ExportScope,
    total: i64,
    limits: ExportLimits,
) -> CoreResult<ExportJob> {
    let open = open_statuses();
    let of_org: i64 = on_backend!(conn, c => x::exports
        .filter(x::org_id.eq(actor.org_id.0))
        .filter(x::status.eq_any(open))
        .count()
        .get_result(c))?;
    if of_org >= limits.per_org {
        return Err(CoreError::Limited {
            code: "too_many_exports",
            message: format!(
                "your organisation already has {of_org} exports waiting or running (at most {}); ask again once one has finished",
                limits.per_org
            ),
        });
    }
    let all: i64 =
        on_backend!(conn, c => x::exports.filter(x::status.eq_any(open)).count().get_result(c))?;
    if all >= limits.overall {
        return Err(CoreError::Limited {
            code: "too_many_exports",
            message: format!(
                "{all} exports are waiting or running on this platform (at most {}); try again shortly",
                limits.overall
            ),
        });
    }
    let scope_text =
        serde_json::to_string(scope).map_err(|e| CoreError::Internal(e.to_string()))?;
    let now = now_millis();
    let row = on_backend!(conn, c => diesel::insert_into(x::exports)
        .values((
            x::requested_by.eq(actor.user_id.0),
            x::org_id.eq(actor.org_id.0),
            x::scope.eq(&scope_text),
            x::format.eq(format.as_str()),
            x::status.eq(ExportStatus::Queued.as_str()),
            x::rows_done.eq(0i64),
            x::rows_total.eq(Some(total)),
            x::created_at.eq(now),
            x::updated_at.eq(now),
        ))
        .returning(ExportRow::as_returning())
        .get_result(c))?;
    row.into_model()
}

/// Refuses an export of more than [`MAX_EXPORT_EVENTS`] events.
pub fn too_large(events: i64) -> CoreResult<()> {
    if events > MAX_EXPORT_EVENTS {
        Err(CoreError::invalid(
            "export_too_large",
            format!(
                "this export holds {events} events, more than the {MAX_EXPORT_EVENTS} one file may hold; \
                 ask for a shorter period, or one organisation or product"
            ),
        ))
    } else {
        Ok(())
    }
}

/// One export, without access checks.
pub fn get(conn: &mut DbConnection, id: ExportId) -> CoreResult<ExportJob> {
    on_backend!(conn, c => x::exports.find(id.0).select(ExportRow::as_select()).first(c))
        .or_not_found("export")?
        .into_model()
}

/// One export, for the person who asked for it (404 for anyone else).
pub fn get_for(conn: &mut DbConnection, actor: &Actor, id: ExportId) -> CoreResult<ExportJob> {
    let job = get(conn, id)?;
    policy::ensure_read_export(actor, job.requested_by)?;
    Ok(job)
}

/// Takes a queued export for this exporter: `Some` when this call moved it to `running`, `None` when it was
/// not queued (another replica took it, or it is gone).
pub fn claim(conn: &mut DbConnection, id: ExportId) -> CoreResult<Option<ExportJob>> {
    let now = now_millis();
    let n = on_backend!(conn, c => diesel::update(
            x::exports
                .filter(x::id.eq(id.0))
                .filter(x::status.eq(ExportStatus::Queued.as_str())),
        )
        .set((
            x::status.eq(ExportStatus::Running.as_str()),
            x::started_at.eq(Some(now)),
            x::updated_at.eq(now),
        ))
        .execute(c))?;
    if n == 0 {
        return Ok(None);
    }
    get(conn, id).map(Some)
}

/// The queued exports, oldest first (a starting exporter takes those left by a stopped process).
pub fn queued(conn: &mut DbConnection) -> CoreResult<Vec<ExportId>> {
    let ids: Vec<i64> = on_backend!(conn, c => x::exports
        .filter(x::status.eq(ExportStatus::Queued.as_str()))
        .order(x::id)
        .select(x::id)
        .load(c))?;
    Ok(ids.into_iter().map(ExportId).collect())
}

/// Records how far a running export has got.
pub fn progress(conn: &mut DbConnection, id: ExportId, done: i64, total: i64) -> CoreResult<()> {
    on_backend!(conn, c => diesel::update(x::exports.find(id.0))
        .set((
            x::rows_done.eq(done),
            x::rows_total.eq(Some(total)),
            x::updated_at.eq(now_millis()),
        ))
        .execute(c))?;
    Ok(())
}

/// Marks an export finished with its file.
pub fn finish(
    conn: &mut DbConnection,
    id: ExportId,
    file_name: &str,
    bytes: i64,
    rows: i64,
) -> CoreResult<()> {
    let now = now_millis();
    on_backend!(conn, c => diesel::update(x::exports.find(id.0))
        .set((
            x::status.eq(ExportStatus::Finished.as_str()),
            x::file_name.eq(Some(file_name)),
            x::bytes.eq(Some(bytes)),
            x::rows_done.eq(rows),
            x::rows_total.eq(Some(rows)),
            x::updated_at.eq(now),
            x::finished_at.eq(Some(now)),
        ))
        .execute(c))?;
    Ok(())
}

/// Marks an export failed, with a reason safe to show to the person who asked.
pub fn fail(conn: &mut DbConnection, id: ExportId, reason: &str) -> CoreResult<()> {
    let now = now_millis();
    on_backend!(conn, c => diesel::update(x::exports.find(id.0))
        .set((
            x::status.eq(ExportStatus::Failed.as_str()),
            x::error.eq(Some(reason)),
            x::updated_at.eq(now),
            x::finished_at.eq(Some(now)),
        ))
        .execute(c))?;
    Ok(())
}

/// Fails the running exports that have shown no progress for `stale_ms` (their process stopped), so that
/// their owners see why and can ask again. Returns how many.
pub fn fail_stalled(conn: &mut DbConnection, stale_ms: i64) -> CoreResult<usize> {
    let now = now_millis();
    Ok(on_backend!(conn, c => diesel::update(
            x::exports
                .filter(x::status.eq(ExportStatus::Running.as_str()))
                .filter(x::updated_at.lt(now - stale_ms)),
        )
        .set((
            x::status.eq(ExportStatus::Failed.as_str()),
            x::error.eq(Some("the export was interrupted (the server stopped); ask for it again")),
            x::updated_at.eq(now),
            x::finished_at.eq(Some(now)),
        ))
        .execute(c))?)
}
