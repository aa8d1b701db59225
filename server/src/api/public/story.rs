//! `GET /api/v1/public/batches/{id}`: the batch's public story (no personal data).

use actix_web::{get, web, HttpResponse};
use suyuan_core::store::public::{self, PublicStory};
use suyuan_core::BatchId;

use crate::error::{ApiResult, ErrorBody};
use crate::extract::blocking;
use crate::state::AppState;

#[utoipa::path(tag = "public", params(("id" = i64, Path)), responses(
    (status = 200, body = PublicStory),
    (status = 404, body = ErrorBody),
))]
#[get("/public/batches/{id}")]
pub async fn story(state: web::Data<AppState>, id: web::Path<i64>) -> ApiResult<HttpResponse> {
    let id = BatchId(id.into_inner());
    let out = blocking(&state, move |db| db.read(|c| public::story(c, id))).await?;
    Ok(HttpResponse::Ok().json(out))
}
