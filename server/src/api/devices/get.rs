//! `GET /api/v1/devices/{id}`.

use actix_web::{get, web, HttpResponse};
use suyuan_core::model::Device;
use suyuan_core::store::iot;

use crate::error::{ApiResult, ErrorBody};
use crate::extract::{blocking, Caller};
use crate::state::AppState;

#[utoipa::path(tag = "devices", params(("id" = i64, Path)), responses(
    (status = 200, body = Device),
    (status = 404, body = ErrorBody),
), security(("bearer" = [])))]
#[get("/devices/{id}")]
pub async fn get(
    state: web::Data<AppState>,
    Caller(actor): Caller,
    id: web::Path<i64>,
) -> ApiResult<HttpResponse> {
    let id = id.into_inner();
    let out = blocking(&state, move |db| {
        db.read(|c| iot::get_device(c, &actor, id))
    })
    .await?;
    Ok(HttpResponse::Ok().json(out))
}
