//! `POST /api/v1/devices/{id}/enable`: an operator switches a disabled device back on; it logs in with
//! the credentials it had (rotate them with `POST /api/v1/devices/{id}/credentials` if they leaked).

use actix_web::{post, web, HttpResponse};
use suyuan_core::model::Device;
use suyuan_core::store::iot;

use crate::error::{ApiResult, ErrorBody};
use crate::extract::{blocking, Caller};
use crate::state::AppState;

#[utoipa::path(tag = "devices", params(("id" = i64, Path)), responses(
    (status = 200, body = Device, description = "enabled"),
    (status = 401, body = ErrorBody, description = "not signed in"),
    (status = 403, body = ErrorBody, description = "not an operator"),
    (status = 404, body = ErrorBody, description = "no such device"),
), security(("bearer" = [])))]
#[post("/devices/{id}/enable")]
pub async fn enable(
    state: web::Data<AppState>,
    Caller(actor): Caller,
    id: web::Path<i64>,
) -> ApiResult<HttpResponse> {
    let id = id.into_inner();
    let out = blocking(&state, move |db| {
        db.write(|c| iot::set_device_enabled(c, &actor, id, true))
    })
    .await?;
    Ok(HttpResponse::Ok().json(out))
}
