//! `POST /api/v1/users` (operators).

use actix_web::{post, web, HttpResponse};
use suyuan_core::model::{NewUser, User};
use suyuan_core::{policy, store::users};

use crate::error::{ApiResult, ErrorBody};
use crate::extract::{blocking, Caller};
use crate::state::AppState;

#[utoipa::path(tag = "users", request_body = NewUser, responses(
    (status = 201, body = User),
    (status = 403, body = ErrorBody),
    (status = 409, body = ErrorBody, description = "username taken"),
    (status = 422, body = ErrorBody),
), security(("bearer" = [])))]
#[post("/users")]
pub async fn create(
    state: web::Data<AppState>,
    Caller(actor): Caller,
    body: web::Json<NewUser>,
) -> ApiResult<HttpResponse> {
    policy::ensure_operator(&actor)?;
    let new = body.into_inner();
    let user = blocking(&state, move |db| db.write(|c| users::create(c, &new))).await?;
    Ok(crate::api::created(&user))
}
