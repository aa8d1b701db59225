//! `GET /api/v1/batches/{id}/trace?direction=backward|forward`: the whole lineage graph from a batch.

use actix_web::{get, web, HttpResponse};
use serde::Deserialize;
use suyuan_core::model::{Direction, Trace};
use suyuan_core::{store::lineage, BatchId};
use utoipa::IntoParams;

use crate::error::{ApiResult, ErrorBody};
use crate::extract::{blocking, Caller};
use crate::state::AppState;

/// Which way to walk.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct TraceQuery {
    /// `backward` (default): where it came from; `forward`: where it went.
    pub direction: Option<Direction>,
}

#[utoipa::path(tag = "batches", params(("id" = i64, Path), TraceQuery), responses(
    (status = 200, body = Trace),
    (status = 404, body = ErrorBody),
), security(("bearer" = [])))]
#[get("/batches/{id}/trace")]
pub async fn trace(
    state: web::Data<AppState>,
    Caller(actor): Caller,
    id: web::Path<i64>,
    q: web::Query<TraceQuery>,
) -> ApiResult<HttpResponse> {
    let id = BatchId(id.into_inner());
    let direction = q.direction.unwrap_or(Direction::Backward);
    let out = blocking(&state, move |db| {
        db.read(|c| lineage::trace(c, &actor, id, direction))
    })
    .await?;
    Ok(HttpResponse::Ok().json(out))
}
