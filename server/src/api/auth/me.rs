//! `GET /api/v1/me`: the caller's account and organisation.

use actix_web::{get, web, HttpResponse};
use serde::Serialize;
use suyuan_core::model::{Organisation, User};
use suyuan_core::store::{orgs, users};
use utoipa::ToSchema;

use crate::error::ApiResult;
use crate::extract::{blocking, Caller};
use crate::state::AppState;

/// The caller.
#[derive(Debug, Serialize, ToSchema)]
pub struct Me {
    pub user: User,
    pub organisation: Organisation,
}

#[utoipa::path(tag = "auth", responses((status = 200, body = Me)), security(("bearer" = [])))]
#[get("/me")]
pub async fn me(state: web::Data<AppState>, Caller(actor): Caller) -> ApiResult<HttpResponse> {
    let me = blocking(&state, move |db| {
        db.read(|c| {
            Ok(Me {
                user: users::get(c, actor.user_id)?,
                organisation: orgs::get(c, actor.org_id)?,
            })
        })
    })
    .await?;
    Ok(HttpResponse::Ok().json(me))
}
