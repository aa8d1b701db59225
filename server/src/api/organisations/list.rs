//! `GET /api/v1/organisations`: all for regulators and operators, the caller's own otherwise.

use actix_web::{get, web, HttpResponse};
use suyuan_core::model::Organisation;
use suyuan_core::policy;
use suyuan_core::store::{orgs, Page, Paged};

use crate::error::ApiResult;
use crate::extract::{blocking, Caller};
use crate::state::AppState;

#[utoipa::path(tag = "organisations", params(Page), responses((status = 200, body = Paged<Organisation>)), security(("bearer" = [])))]
#[get("/organisations")]
pub async fn list(
    state: web::Data<AppState>,
    Caller(actor): Caller,
    page: web::Query<Page>,
) -> ApiResult<HttpResponse> {
    let page = page.into_inner();
    let out = blocking(&state, move |db| {
        db.read(|c| {
            if policy::reads_all(&actor) {
                orgs::list(c, page)
            } else {
                page.limit()?;
                let own = orgs::get(c, actor.org_id)?;
                Ok(Paged {
                    items: if page.after() < own.id.0 {
                        vec![own]
                    } else {
                        vec![]
                    },
                    next_after: None,
                })
            }
        })
    })
    .await?;
    Ok(HttpResponse::Ok().json(out))
}
