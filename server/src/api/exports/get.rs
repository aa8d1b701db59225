//! `GET /api/v1/exports/{id}`: an export's status and progress (events written of those counted), and its
//! download link once finished. Only for the person who asked for it.

use actix_web::{get, web, HttpResponse};
use suyuan_core::model::ExportId;
use suyuan_core::store::exports::jobs;

use super::ExportView;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{blocking, Caller};
use crate::state::AppState;

#[utoipa::path(tag = "exports", params(("id" = i64, Path)), responses(
    (status = 200, body = ExportView),
    (status = 401, body = ErrorBody),
    (status = 404, body = ErrorBody),
), security(("bearer" = [])))]
#[get("/exports/{id}")]
pub async fn get(
    state: web::Data<AppState>,
    Caller(actor): Caller,
    id: web::Path<i64>,
) -> ApiResult<HttpResponse> {
    let id = ExportId(id.into_inner());
    let job = blocking(&state, move |db| db.read(|c| jobs::get_for(c, &actor, id))).await?;
    Ok(HttpResponse::Ok().json(ExportView::from(job)))
}
