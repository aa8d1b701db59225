//! `POST /api/v1/labels/voids`: voids one label (damaged, misprinted, stolen), with the reason; a void
//! label scans as void from then on.

use actix_web::{post, web, HttpResponse};
use serde::Deserialize;
use suyuan_core::model::LabelVoid;
use suyuan_core::store::labels;
use utoipa::ToSchema;

use crate::error::{ApiResult, ErrorBody};
use crate::extract::{blocking, Caller};
use crate::state::AppState;

/// The label and why it is voided.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VoidRequest {
    /// The label's URL or code as scanned, or its short code.
    pub label: String,
    pub reason: String,
}

#[utoipa::path(tag = "labels", request_body = VoidRequest, responses(
    (status = 201, body = LabelVoid),
    (status = 403, body = ErrorBody),
    (status = 404, body = ErrorBody, description = "label never minted"),
    (status = 409, body = ErrorBody, description = "already void"),
    (status = 422, body = ErrorBody, description = "malformed or not genuine label, missing reason"),
), security(("bearer" = [])))]
#[post("/labels/voids")]
pub async fn void(
    state: web::Data<AppState>,
    Caller(actor): Caller,
    body: web::Json<VoidRequest>,
) -> ApiResult<HttpResponse> {
    let req = body.into_inner();
    suyuan_core::model::validate_void_reason(&req.reason)?;
    let voided = blocking(&state, move |db| {
        db.write(|c| {
            let label = super::label_ref(c, &req.label)?;
            labels::void(c, &actor, label, &req.reason)
        })
    })
    .await?;
    Ok(crate::api::created(&voided))
}
