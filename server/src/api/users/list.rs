//! `GET /api/v1/users` (operators).

use actix_web::{get, web, HttpResponse};
use suyuan_core::model::User;
use suyuan_core::policy;
use suyuan_core::store::{users, Page, Paged};

use crate::error::ApiResult;
use crate::extract::{blocking, Caller};
use crate::state::AppState;

#[utoipa::path(tag = "users", params(Page), responses((status = 200, body = Paged<User>)), security(("bearer" = [])))]
#[get("/users")]
pub async fn list(
    state: web::Data<AppState>,
    Caller(actor): Caller,
    page: web::Query<Page>,
) -> ApiResult<HttpResponse> {
    policy::ensure_operator(&actor)?;
    let page = page.into_inner();
    let out = blocking(&state, move |db| db.read(|c| users::list(c, None, page))).await?;
    Ok(HttpResponse::Ok().json(out))
}
