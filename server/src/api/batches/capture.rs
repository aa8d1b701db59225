//! `POST /api/v1/batches/{id}/records`: captures one record. 201 when stored, 200 when the same record was
//! stored before (an offline phone resending), 409 when a different record holds the client id.

use actix_web::{post, web, HttpResponse};
use suyuan_core::model::{NewRecord, Record};
use suyuan_core::{store::records, BatchId};

use crate::error::{ApiResult, ErrorBody};
use crate::extract::{blocking, Caller};
use crate::state::AppState;

#[utoipa::path(tag = "records", params(("id" = i64, Path)), request_body = NewRecord, responses(
    (status = 201, body = Record, description = "stored"),
    (status = 200, body = Record, description = "already stored: the same record was sent before"),
    (status = 403, body = ErrorBody),
    (status = 404, body = ErrorBody),
    (status = 409, body = ErrorBody, description = "a different record of the caller's organisation holds this \
      client_id; details has both (stored is null when its batch is no longer readable)"),
    (status = 422, body = ErrorBody, description = "invalid details (field_too_long, invalid_characters, \
      invalid_number, …), or a site or image of another organisation (foreign_site, foreign_attachment)"),
), security(("bearer" = [])))]
#[post("/batches/{id}/records")]
pub async fn capture(
    state: web::Data<AppState>,
    Caller(actor): Caller,
    id: web::Path<i64>,
    body: web::Json<NewRecord>,
) -> ApiResult<HttpResponse> {
    let id = BatchId(id.into_inner());
    let new = body.into_inner();
    let captured = blocking(&state, move |db| records::capture_in(db, &actor, id, &new)).await?;
    Ok(if captured.created {
        HttpResponse::Created().json(captured.record)
    } else {
        HttpResponse::Ok().json(captured.record)
    })
}
