//! `POST /api/v1/devices/{id}/disable`: an operator switches a device off. Its broker login is refused
//! from now on, its open connection to the embedded broker is closed within seconds, and messages that
//! still arrive through another broker are refused by the gateway (`device_disabled`).

use actix_web::{post, web, HttpResponse};
use suyuan_core::model::Device;
use suyuan_core::store::iot;

use crate::error::{ApiResult, ErrorBody};
use crate::extract::{blocking, Caller};
use crate::state::AppState;

#[utoipa::path(tag = "devices", params(("id" = i64, Path)), responses(
    (status = 200, body = Device, description = "disabled"),
    (status = 401, body = ErrorBody, description = "not signed in"),
    (status = 403, body = ErrorBody, description = "not an operator"),
    (status = 404, body = ErrorBody, description = "no such device"),
), security(("bearer" = [])))]
#[post("/devices/{id}/disable")]
pub async fn disable(
    state: web::Data<AppState>,
    Caller(actor): Caller,
    id: web::Path<i64>,
) -> ApiResult<HttpResponse> {
    let id = id.into_inner();
    let out = blocking(&state, move |db| {
        db.write(|c| iot::set_device_enabled(c, &actor, id, false))
    })
    .await?;
    Ok(HttpResponse::Ok().json(out))
}
