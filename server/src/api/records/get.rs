//! `GET /api/v1/records/{id}`.

use actix_web::{get, web, HttpResponse};
use suyuan_core::model::Record;
use suyuan_core::store::{batches, records};
use suyuan_core::RecordId;

use crate::error::{ApiResult, ErrorBody};
use crate::extract::{blocking, Caller};
use crate::state::AppState;

#[utoipa::path(tag = "records", params(("id" = i64, Path)), responses(
    (status = 200, body = Record),
    (status = 404, body = ErrorBody),
), security(("bearer" = [])))]
#[get("/records/{id}")]
pub async fn get(
    state: web::Data<AppState>,
    Caller(actor): Caller,
    id: web::Path<i64>,
) -> ApiResult<HttpResponse> {
    let id = RecordId(id.into_inner());
    let rec = blocking(&state, move |db| {
        db.read(|c| {
            let rec = records::get(c, id)?;
            batches::get_for(c, &actor, rec.batch_id)
                .map_err(|_| suyuan_core::CoreError::NotFound { what: "record" })?;
            Ok(rec)
        })
    })
    .await?;
    Ok(HttpResponse::Ok().json(rec))
}
