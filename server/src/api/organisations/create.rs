//! `POST /api/v1/organisations` (operators).

use actix_web::{post, web, HttpResponse};
use suyuan_core::model::{NewOrganisation, Organisation};
use suyuan_core::{policy, store::orgs};

use crate::error::{ApiResult, ErrorBody};
use crate::extract::{blocking, Caller};
use crate::state::AppState;

#[utoipa::path(tag = "organisations", request_body = NewOrganisation, responses(
    (status = 201, body = Organisation),
    (status = 403, body = ErrorBody),
    (status = 409, body = ErrorBody, description = "credit code already registered"),
    (status = 422, body = ErrorBody),
), security(("bearer" = [])))]
#[post("/organisations")]
pub async fn create(
    state: web::Data<AppState>,
    Caller(actor): Caller,
    body: web::Json<NewOrganisation>,
) -> ApiResult<HttpResponse> {
    policy::ensure_operator(&actor)?;
    let new = body.into_inner();
    let org = blocking(&state, move |db| db.write(|c| orgs::create(c, &new))).await?;
    Ok(crate::api::created(&org))
}
