//! `GET /api/v1/batches/{id}/records`: the corrected view, or with `?history=true` every record as stored.

use actix_web::{get, web, HttpResponse};
use serde::Deserialize;
use suyuan_core::model::{CorrectedRecord, Record};
use suyuan_core::{store::batches, store::records, BatchId};
use utoipa::IntoParams;

use crate::error::{ApiResult, ErrorBody};
use crate::extract::{blocking, Caller};
use crate::state::AppState;

/// Which view.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct RecordsQuery {
    /// Every record in chain order, corrections included, exactly as stored.
    #[serde(default)]
    pub history: bool,
}

#[utoipa::path(tag = "records", params(("id" = i64, Path), RecordsQuery), responses(
    (status = 200, body = Vec<CorrectedRecord>, description = "corrected view (history=false) or Vec<Record> (history=true)"),
    (status = 404, body = ErrorBody),
), security(("bearer" = [])))]
#[get("/batches/{id}/records")]
pub async fn list(
    state: web::Data<AppState>,
    Caller(actor): Caller,
    id: web::Path<i64>,
    q: web::Query<RecordsQuery>,
) -> ApiResult<HttpResponse> {
    let id = BatchId(id.into_inner());
    let history = q.history;
    if history {
        let out: Vec<Record> = blocking(&state, move |db| {
            db.read(|c| {
                batches::get_for(c, &actor, id)?;
                records::history(c, id)
            })
        })
        .await?;
        Ok(HttpResponse::Ok().json(out))
    } else {
        let out: Vec<CorrectedRecord> = blocking(&state, move |db| {
            db.read(|c| {
                batches::get_for(c, &actor, id)?;
                records::corrected(c, id)
            })
        })
        .await?;
        Ok(HttpResponse::Ok().json(out))
    }
}
