//! `POST /api/v1/devices`: an operator registers a sensor or camera to a site; the answer carries the
//! device's MQTT username and password, shown this once.

use actix_web::{post, web, HttpResponse};
use suyuan_core::model::{NewDevice, RegisteredDevice};
use suyuan_core::store::iot;

use crate::error::{ApiResult, ErrorBody};
use crate::extract::{blocking, Caller};
use crate::state::AppState;

#[utoipa::path(tag = "devices", request_body = NewDevice, responses(
    (status = 201, body = RegisteredDevice, description = "registered; the password is not shown again"),
    (status = 403, body = ErrorBody, description = "not an operator"),
    (status = 404, body = ErrorBody, description = "no such site"),
    (status = 409, body = ErrorBody, description = "client id taken"),
    (status = 422, body = ErrorBody),
), security(("bearer" = [])))]
#[post("/devices")]
pub async fn create(
    state: web::Data<AppState>,
    Caller(actor): Caller,
    body: web::Json<NewDevice>,
) -> ApiResult<HttpResponse> {
    let new = body.into_inner();
    let device = blocking(&state, move |db| {
        db.write(|c| iot::register_device(c, &actor, &new))
    })
    .await?;
    Ok(crate::api::created(&device))
}
