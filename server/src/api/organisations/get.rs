//! `GET /api/v1/organisations/{id}`.

use actix_web::{get, web, HttpResponse};
use suyuan_core::model::Organisation;
use suyuan_core::{policy, store::orgs, OrgId};

use crate::error::{ApiResult, ErrorBody};
use crate::extract::{blocking, Caller};
use crate::state::AppState;

#[utoipa::path(tag = "organisations", params(("id" = i64, Path)), responses(
    (status = 200, body = Organisation),
    (status = 404, body = ErrorBody),
), security(("bearer" = [])))]
#[get("/organisations/{id}")]
pub async fn get(
    state: web::Data<AppState>,
    Caller(actor): Caller,
    id: web::Path<i64>,
) -> ApiResult<HttpResponse> {
    let id = OrgId(id.into_inner());
    policy::ensure_read_org(&actor, id)?;
    let org = blocking(&state, move |db| db.read(|c| orgs::get(c, id))).await?;
    Ok(HttpResponse::Ok().json(org))
}
