//! `GET /api/v1/label-runs/{id}`: one run with its progress, files, activations and voids.

use actix_web::{get, web, HttpResponse};
use suyuan_core::model::LabelRunId;
use suyuan_core::store::labels;

use super::{RunDetail, RunView};
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{blocking, Caller};
use crate::state::AppState;

#[utoipa::path(tag = "labels", params(("id" = i64, Path)), responses(
    (status = 200, body = RunDetail),
    (status = 404, body = ErrorBody),
), security(("bearer" = [])))]
#[get("/label-runs/{id}")]
pub async fn get(
    state: web::Data<AppState>,
    Caller(actor): Caller,
    id: web::Path<i64>,
) -> ApiResult<HttpResponse> {
    let id = LabelRunId(id.into_inner());
    let (run, activations, voids) = blocking(&state, move |db| {
        db.read(|c| {
            let run = labels::get_run_for(c, &actor, id)?;
            let activations = labels::activations_for(c, &actor, id)?;
            let voids = labels::voids_for(c, &actor, id)?;
            Ok((run, activations, voids))
        })
    })
    .await?;
    let minter = state.minter.as_deref();
    let progress = minter.and_then(|m| m.progress(id));
    Ok(HttpResponse::Ok().json(RunDetail {
        view: RunView::of(run, minter.map(|m| m.settings()), progress),
        activations,
        voids,
    }))
}
