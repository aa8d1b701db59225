//! `POST /api/v1/batches/{id}/recall`: recalls the batch and everything made from it, in one transaction.

use actix_web::{post, web, HttpResponse};
use suyuan_core::model::{NewRecall, RecallOutcome};
use suyuan_core::{store::recall as recalls, BatchId};

use crate::error::{ApiResult, ErrorBody};
use crate::extract::{blocking, Caller};
use crate::state::AppState;

#[utoipa::path(tag = "batches", params(("id" = i64, Path)), request_body = NewRecall, responses(
    (status = 200, body = RecallOutcome),
    (status = 403, body = ErrorBody),
    (status = 404, body = ErrorBody),
    (status = 409, body = ErrorBody, description = "already recalled"),
    (status = 422, body = ErrorBody, description = "missing, over-long reason or control characters in it"),
), security(("bearer" = [])))]
#[post("/batches/{id}/recall")]
pub async fn recall(
    state: web::Data<AppState>,
    Caller(actor): Caller,
    id: web::Path<i64>,
    body: web::Json<NewRecall>,
) -> ApiResult<HttpResponse> {
    let id = BatchId(id.into_inner());
    let body = body.into_inner();
    body.validate()?;
    let reason = body.reason;
    let out = blocking(&state, move |db| {
        db.write(|c| recalls::recall(c, &actor, id, &reason))
    })
    .await?;
    Ok(HttpResponse::Ok().json(out))
}
