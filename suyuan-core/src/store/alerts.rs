//! Alerts opened and closed by the rules.

use diesel::prelude::*;

use super::rows::AlertRow;
use super::{DbConnection, Page, Paged};
use crate::error::CoreResult;
use crate::model::{Alert, AlertKind};
use crate::on_backend;
use crate::schema::alerts::dsl as a;
use crate::time::now_millis;
use crate::{BatchId, OrgId, RecordId};

/// What a rule reports.
#[derive(Debug, Clone)]
pub struct NewAlert {
    /// The kind, which fixes the severity.
    pub kind: AlertKind,
    pub org_id: Option<OrgId>,
    pub batch_id: Option<BatchId>,
    pub record_id: Option<RecordId>,
    pub message: String,
}

/// Opens an alert.
pub fn open(conn: &mut DbConnection, alert: NewAlert) -> CoreResult<()> {
    on_backend!(conn, c => diesel::insert_into(a::alerts)
        .values((
            a::kind.eq(alert.kind.as_str()),
            a::severity.eq(alert.kind.severity().as_str()),
            a::org_id.eq(alert.org_id.map(|x| x.0)),
            a::batch_id.eq(alert.batch_id.map(|x| x.0)),
            a::record_id.eq(alert.record_id.map(|x| x.0)),
            a::message.eq(&alert.message),
            a::opened_at.eq(now_millis()),
        ))
        .execute(c))?;
    Ok(())
}

/// Closes the open alerts of these kinds on a batch (e.g. when a later inspection passes).
pub fn close_for_batch(
    conn: &mut DbConnection,
    batch: BatchId,
    kinds: &[AlertKind],
) -> CoreResult<usize> {
    let kinds: Vec<&str> = kinds.iter().map(|k| k.as_str()).collect();
    Ok(on_backend!(conn, c => diesel::update(
        a::alerts
            .filter(a::batch_id.eq(batch.0))
            .filter(a::kind.eq_any(kinds))
            .filter(a::closed_at.is_null()),
    )
    .set(a::closed_at.eq(now_millis()))
    .execute(c))?)
}

/// Filters for listing alerts.
#[derive(Debug, Clone, Copy, Default)]
pub struct AlertFilter {
    /// Only alerts of this organisation.
    pub org: Option<OrgId>,
    /// Only alerts on this batch.
    pub batch: Option<BatchId>,
    /// Only alerts on this site (sensor alerts).
    pub site: Option<crate::SiteId>,
    /// Only open alerts.
    pub open_only: bool,
}

/// Alerts, newest first.
pub fn list(conn: &mut DbConnection, filter: AlertFilter, page: Page) -> CoreResult<Paged<Alert>> {
    let limit = page.limit()?;
    let rows = on_backend!(conn, c => {
        let mut q = a::alerts.into_boxed();
        if let Some(after) = page.after {
            q = q.filter(a::id.lt(after));
        }
        if let Some(org) = filter.org {
            q = q.filter(a::org_id.eq(org.0));
        }
        if let Some(batch) = filter.batch {
            q = q.filter(a::batch_id.eq(batch.0));
        }
        if let Some(site) = filter.site {
            q = q.filter(a::site_id.eq(site.0));
        }
        if filter.open_only {
            q = q.filter(a::closed_at.is_null());
        }
        q.order(a::id.desc()).limit(limit + 1).select(AlertRow::as_select()).load(c)
    })?;
    let items: Vec<Alert> = rows.into_iter().map(AlertRow::into_model).collect();
    Ok(Paged::from_fetched(items, limit, |x| x.id.0))
}
