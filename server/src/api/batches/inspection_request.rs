//! `POST /api/v1/batches/{id}/inspection-requests`: asks a lab to inspect the batch; the lab's inspectors may
//! then read it and record inspections on it.

use actix_web::{post, web, HttpResponse};
use serde::Deserialize;
use suyuan_core::{store::batches, BatchId, OrgId};
use utoipa::ToSchema;

use crate::error::{ApiResult, ErrorBody};
use crate::extract::{blocking, Caller};
use crate::state::AppState;

/// The lab asked.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InspectionRequest {
    pub lab_org_id: OrgId,
}

#[utoipa::path(tag = "batches", params(("id" = i64, Path)), request_body = InspectionRequest, responses(
    (status = 204),
    (status = 403, body = ErrorBody),
    (status = 404, body = ErrorBody),
    (status = 422, body = ErrorBody, description = "not a lab"),
), security(("bearer" = [])))]
#[post("/batches/{id}/inspection-requests")]
pub async fn request_inspection(
    state: web::Data<AppState>,
    Caller(actor): Caller,
    id: web::Path<i64>,
    body: web::Json<InspectionRequest>,
) -> ApiResult<HttpResponse> {
    let id = BatchId(id.into_inner());
    let lab = body.lab_org_id;
    blocking(&state, move |db| {
        db.write(|c| batches::request_inspection(c, &actor, id, lab))
    })
    .await?;
    Ok(HttpResponse::NoContent().finish())
}
