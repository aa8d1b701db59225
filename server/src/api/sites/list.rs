//! `GET /api/v1/sites`.

use actix_web::{get, web, HttpResponse};
use suyuan_core::model::Site;
use suyuan_core::store::{sites, Paged};

use crate::api::OrgListQuery;
use crate::error::ApiResult;
use crate::extract::{blocking, Caller};
use crate::state::AppState;

#[utoipa::path(tag = "sites", params(OrgListQuery), responses((status = 200, body = Paged<Site>)), security(("bearer" = [])))]
#[get("/sites")]
pub async fn list(
    state: web::Data<AppState>,
    Caller(actor): Caller,
    q: web::Query<OrgListQuery>,
) -> ApiResult<HttpResponse> {
    let (scope, page) = (q.scope(&actor), q.page());
    let out = blocking(&state, move |db| {
        db.read(|c| sites::list_sites(c, scope, page))
    })
    .await?;
    Ok(HttpResponse::Ok().json(out))
}
