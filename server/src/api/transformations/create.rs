//! `POST /api/v1/transformations`: makes new batches out of batches the caller's organisation holds.

use actix_web::{post, web, HttpResponse};
use suyuan_core::model::{NewTransformation, Transformation};
use suyuan_core::store::lineage;

use crate::error::{ApiResult, ErrorBody};
use crate::extract::{blocking, Caller};
use crate::state::AppState;

#[utoipa::path(tag = "batches", request_body = NewTransformation, responses(
    (status = 201, body = Transformation),
    (status = 403, body = ErrorBody),
    (status = 409, body = ErrorBody, description = "recalled input, lot code taken, or a different transformation under this client_id"),
    (status = 404, body = ErrorBody, description = "an input batch, a product or the site does not exist"),
    (status = 422, body = ErrorBody, description = "invalid shape or quantities, a product of another organisation \
      (foreign_product) or a site of another organisation (foreign_site)"),
), security(("bearer" = [])))]
#[post("/transformations")]
pub async fn create(
    state: web::Data<AppState>,
    Caller(actor): Caller,
    body: web::Json<NewTransformation>,
) -> ApiResult<HttpResponse> {
    let new = body.into_inner();
    let t = blocking(&state, move |db| {
        db.write(|c| lineage::transform(c, &actor, &new))
    })
    .await?;
    Ok(crate::api::created(&t))
}
