//! `GET /api/v1/batches`: the batches the caller may see.

use actix_web::{get, web, HttpResponse};
use suyuan_core::model::Batch;
use suyuan_core::store::{batches, Page, Paged};

use crate::error::ApiResult;
use crate::extract::{blocking, Caller};
use crate::state::AppState;

#[utoipa::path(tag = "batches", params(Page), responses((status = 200, body = Paged<Batch>)), security(("bearer" = [])))]
#[get("/batches")]
pub async fn list(
    state: web::Data<AppState>,
    Caller(actor): Caller,
    page: web::Query<Page>,
) -> ApiResult<HttpResponse> {
    let page = page.into_inner();
    let out = blocking(&state, move |db| {
        db.read(|c| batches::list_for(c, &actor, page))
    })
    .await?;
    Ok(HttpResponse::Ok().json(out))
}
