//! `GET /api/v1/label-runs`: the runs of the caller's organisation (regulators and operators: all, or
//! one organisation's with `org_id`).

use actix_web::{get, web, HttpResponse};
use suyuan_core::store::{labels, Paged};

use super::RunView;
use crate::api::OrgListQuery;
use crate::error::ApiResult;
use crate::extract::{blocking, Caller};
use crate::state::AppState;

#[utoipa::path(tag = "labels", params(OrgListQuery), responses((status = 200, body = Paged<RunView>)), security(("bearer" = [])))]
#[get("/label-runs")]
pub async fn list(
    state: web::Data<AppState>,
    Caller(actor): Caller,
    q: web::Query<OrgListQuery>,
) -> ApiResult<HttpResponse> {
    let (scope, page) = (q.scope(&actor), q.page());
    let runs = blocking(&state, move |db| {
        db.read(|c| labels::list_runs(c, scope, page))
    })
    .await?;
    let minter = state.minter.as_deref();
    let page = Paged {
        items: runs
            .items
            .into_iter()
            .map(|run| {
                let progress = minter.and_then(|m| m.progress(run.id));
                RunView::of(run, minter.map(|m| m.settings()), progress)
            })
            .collect(),
        next_after: runs.next_after,
    };
    Ok(HttpResponse::Ok().json(page))
}
