//! `POST /api/v1/devices/{id}/credentials`: an operator gives a device a new MQTT password, shown this
//! once. The old password stops working at once, and an open connection made with it to the embedded
//! broker is closed within seconds (regenerate the Mosquitto files with `suyuan mqtt-auth` when devices
//! use Mosquitto).

use actix_web::{post, web, HttpResponse};
use suyuan_core::model::RegisteredDevice;
use suyuan_core::store::iot;

use crate::error::{ApiResult, ErrorBody};
use crate::extract::{blocking, Caller};
use crate::state::AppState;

#[utoipa::path(tag = "devices", params(("id" = i64, Path)), responses(
    (status = 200, body = RegisteredDevice, description = "new credentials; the password is not shown again"),
    (status = 401, body = ErrorBody, description = "not signed in"),
    (status = 403, body = ErrorBody, description = "not an operator"),
    (status = 404, body = ErrorBody, description = "no such device"),
), security(("bearer" = [])))]
#[post("/devices/{id}/credentials")]
pub async fn rotate(
    state: web::Data<AppState>,
    Caller(actor): Caller,
    id: web::Path<i64>,
) -> ApiResult<HttpResponse> {
    let id = id.into_inner();
    let out = blocking(&state, move |db| {
        db.write(|c| iot::rotate_device_credentials(c, &actor, id))
    })
    .await?;
    Ok(HttpResponse::Ok().json(out))
}
