//! `GET /api/v1/alerts`: the caller's organisation's alerts (batch rules and sensor rules); every alert for
//! regulators and operators.

use actix_web::{get, web, HttpResponse};
use serde::Deserialize;
use suyuan_core::model::Alert;
use suyuan_core::store::alerts::{self, AlertFilter};
use suyuan_core::store::{Page, Paged};
use suyuan_core::{policy, BatchId};
use utoipa::IntoParams;

use crate::error::ApiResult;
use crate::extract::{blocking, Caller};
use crate::state::AppState;

/// Filters.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct AlertsQuery {
    /// 1–200, default 50.
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<i64>,
    /// The `next_after` of the previous page (alerts come newest first).
    pub after: Option<i64>,
    /// Only open alerts.
    #[serde(default)]
    pub open: bool,
    pub batch_id: Option<i64>,
    /// Only sensor alerts of this site.
    pub site_id: Option<i64>,
}

#[utoipa::path(tag = "alerts", params(AlertsQuery), responses((status = 200, body = Paged<Alert>)), security(("bearer" = [])))]
#[get("/alerts")]
pub async fn list(
    state: web::Data<AppState>,
    Caller(actor): Caller,
    q: web::Query<AlertsQuery>,
) -> ApiResult<HttpResponse> {
    let filter = AlertFilter {
        org: (!policy::reads_all(&actor)).then_some(actor.org_id),
        batch: q.batch_id.map(BatchId),
        site: q.site_id.map(suyuan_core::SiteId),
        open_only: q.open,
    };
    let page = Page {
        limit: q.limit,
        after: q.after,
    };
    let out = blocking(&state, move |db| db.read(|c| alerts::list(c, filter, page))).await?;
    Ok(HttpResponse::Ok().json(out))
}
