//! `POST /api/v1/batches`: a batch of one of the caller's organisation's products.

use actix_web::{post, web, HttpResponse};
use suyuan_core::model::{Batch, NewBatch};
use suyuan_core::store::batches;

use crate::error::{ApiResult, ErrorBody};
use crate::extract::{blocking, Caller};
use crate::state::AppState;

#[utoipa::path(tag = "batches", request_body = NewBatch, responses(
    (status = 201, body = Batch),
    (status = 403, body = ErrorBody),
    (status = 409, body = ErrorBody, description = "lot code already used"),
    (status = 422, body = ErrorBody),
), security(("bearer" = [])))]
#[post("/batches")]
pub async fn create(
    state: web::Data<AppState>,
    Caller(actor): Caller,
    body: web::Json<NewBatch>,
) -> ApiResult<HttpResponse> {
    let new = body.into_inner();
    let batch = blocking(&state, move |db| {
        db.write(|c| batches::create(c, &actor, &new))
    })
    .await?;
    Ok(crate::api::created(&batch))
}
