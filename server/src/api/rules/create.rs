//! `POST /api/v1/rules`: a threshold or no-data rule on a site (or one device of it), evaluated on the
//! readings' own time as they are stored.

use actix_web::{post, web, HttpResponse};
use suyuan_core::model::{IotRule, NewIotRule};
use suyuan_core::store::iot;

use crate::error::{ApiResult, ErrorBody};
use crate::extract::{blocking, Caller};
use crate::state::AppState;

#[utoipa::path(tag = "devices", request_body = NewIotRule, responses(
    (status = 201, body = IotRule),
    (status = 403, body = ErrorBody),
    (status = 404, body = ErrorBody, description = "no such site or device"),
    (status = 422, body = ErrorBody),
), security(("bearer" = [])))]
#[post("/rules")]
pub async fn create(
    state: web::Data<AppState>,
    Caller(actor): Caller,
    body: web::Json<NewIotRule>,
) -> ApiResult<HttpResponse> {
    let new = body.into_inner();
    let rule = blocking(&state, move |db| {
        db.write(|c| iot::create_rule(c, &actor, &new))
    })
    .await?;
    Ok(crate::api::created(&rule))
}
