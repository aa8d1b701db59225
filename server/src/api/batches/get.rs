//! `GET /api/v1/batches/{id}`.

use actix_web::{get, web, HttpResponse};
use suyuan_core::model::Batch;
use suyuan_core::{store::batches, BatchId};

use crate::error::{ApiResult, ErrorBody};
use crate::extract::{blocking, Caller};
use crate::state::AppState;

#[utoipa::path(tag = "batches", params(("id" = i64, Path)), responses(
    (status = 200, body = Batch),
    (status = 404, body = ErrorBody),
), security(("bearer" = [])))]
#[get("/batches/{id}")]
pub async fn get(
    state: web::Data<AppState>,
    Caller(actor): Caller,
    id: web::Path<i64>,
) -> ApiResult<HttpResponse> {
    let id = BatchId(id.into_inner());
    let batch = blocking(&state, move |db| {
        db.read(|c| batches::get_for(c, &actor, id))
    })
    .await?;
    Ok(HttpResponse::Ok().json(batch))
}
