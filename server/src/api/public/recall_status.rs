//! `GET /api/v1/public/batches/{id}/recall-status`: whether a batch is recalled, for GS1 resolvers and
//! retailers' systems (the `gs1:recallStatus` link of the Digital Link linkset).

use actix_web::{get, web, HttpResponse};
use serde::Serialize;
use suyuan_core::model::BatchStatus;
use suyuan_core::store::batches;
use suyuan_core::BatchId;
use utoipa::ToSchema;

use crate::error::{ApiResult, ErrorBody};
use crate::extract::blocking;
use crate::state::AppState;

/// A batch's recall status.
#[derive(Debug, Serialize, ToSchema)]
pub struct RecallStatus {
    pub batch_id: BatchId,
    pub lot_code: String,
    pub status: BatchStatus,
    pub recalled: bool,
    /// Why it was recalled or put on hold.
    pub reason: Option<String>,
}

#[utoipa::path(tag = "public", params(("id" = i64, Path)), responses(
    (status = 200, body = RecallStatus),
    (status = 404, body = ErrorBody),
))]
#[get("/public/batches/{id}/recall-status")]
pub async fn recall_status(
    state: web::Data<AppState>,
    id: web::Path<i64>,
) -> ApiResult<HttpResponse> {
    let id = BatchId(id.into_inner());
    let b = blocking(&state, move |db| db.read(|c| batches::get(c, id))).await?;
    Ok(HttpResponse::Ok().json(RecallStatus {
        batch_id: b.id,
        lot_code: b.lot_code,
        recalled: b.status == BatchStatus::Recalled,
        status: b.status,
        reason: b.status_reason,
    }))
}
