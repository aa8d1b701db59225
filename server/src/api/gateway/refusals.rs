//! `GET /api/v1/gateway/refusals`: messages the gateway refused (unknown device, wrong site, malformed
//! payload, oversized image, …), counted per reason over every replica, with the last example of each
//! (its topic and why, never its payload). Operators and regulators.

use actix_web::{get, web, HttpResponse};
use suyuan_core::model::RefusalCount;
use suyuan_core::store::iot;

use crate::error::{ApiResult, ErrorBody};
use crate::extract::{blocking, Caller};
use crate::state::AppState;

#[utoipa::path(tag = "devices", responses(
    (status = 200, body = Vec<RefusalCount>),
    (status = 403, body = ErrorBody),
), security(("bearer" = [])))]
#[get("/gateway/refusals")]
pub async fn refusals(
    state: web::Data<AppState>,
    Caller(actor): Caller,
) -> ApiResult<HttpResponse> {
    let out = blocking(&state, move |db| db.read(|c| iot::refusals(c, &actor))).await?;
    Ok(HttpResponse::Ok().json(out))
}
