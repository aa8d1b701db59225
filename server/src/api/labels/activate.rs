//! `POST /api/v1/labels/activations`: binds one label, or a contiguous range of one run (e.g. the first
//! and last label of a roll, scanned with a scan gun), to a batch: minted → active.

use actix_web::{post, web, HttpResponse};
use serde::Deserialize;
use suyuan_core::model::LabelActivation;
use suyuan_core::store::labels;
use suyuan_core::BatchId;
use utoipa::ToSchema;

use crate::error::{ApiResult, ErrorBody};
use crate::extract::{blocking, Caller};
use crate::state::AppState;

/// Which labels go to which batch. Each label is named by its URL or code as scanned, or its short code.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ActivationRequest {
    pub batch_id: BatchId,
    /// The first (or only) label.
    pub first: String,
    /// The last label of the range (same run); absent for a single label.
    pub last: Option<String>,
}

#[utoipa::path(tag = "labels", request_body = ActivationRequest, responses(
    (status = 201, body = LabelActivation),
    (status = 403, body = ErrorBody, description = "not the product's organisation or not holding the batch"),
    (status = 404, body = ErrorBody, description = "label never minted, or batch unknown"),
    (status = 409, body = ErrorBody, description = "batch blocked or recalled (`details` gives the reason), label already active or void"),
    (status = 422, body = ErrorBody, description = "malformed or not genuine label, range across runs or keys, product mismatch, run not finished"),
), security(("bearer" = [])))]
#[post("/labels/activations")]
pub async fn activate(
    state: web::Data<AppState>,
    Caller(actor): Caller,
    body: web::Json<ActivationRequest>,
) -> ApiResult<HttpResponse> {
    let req = body.into_inner();
    let activation = blocking(&state, move |db| {
        db.write(|c| {
            let first = super::label_ref(c, &req.first)?;
            let last = match &req.last {
                Some(last) => super::label_ref(c, last)?,
                None => first,
            };
            labels::bind(c, &actor, first, last, req.batch_id)
        })
    })
    .await?;
    Ok(crate::api::created(&activation))
}
