//! `GET /api/v1/batches/{id}/export?format=csv|xlsx|epcis`: the batch's whole trace — every batch backward
//! and forward of it, with its records and the transformations between them — as a file, written within the
//! request (on a blocking thread). A trace of more than 100,000 events is refused with 422
//! `export_too_large`: `POST /api/v1/exports` with `batch_id` writes it in the background.

use actix_web::{get, web, HttpResponse};
use serde::Deserialize;
use suyuan_core::export::{Identifiers, WriteOptions};
use suyuan_core::model::{ExportFormat, ExportScope, MAX_TRACE_EVENTS_INLINE};
use suyuan_core::store::exports::{self, jobs};
use suyuan_core::{BatchId, CoreError};
use utoipa::IntoParams;

use super::attachment;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{blocking, Caller};
use crate::state::AppState;

/// The file to write.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ExportQuery {
    /// `csv` (default), `xlsx` or `epcis`.
    pub format: Option<String>,
}

#[utoipa::path(tag = "exports", params(("id" = i64, Path), ExportQuery), responses(
    (status = 200, description = "the trace's events: a CSV spreadsheet (UTF-8 with BOM, CRLF), an XLSX workbook or an EPCIS 2.0 JSON-LD document", content(
        (String = "text/csv"),
        (Vec<u8> = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
        (Object = "application/ld+json"),
    )),
    (status = 400, body = ErrorBody, description = "`unknown_format`"),
    (status = 401, body = ErrorBody),
    (status = 404, body = ErrorBody, description = "no such batch, or not readable by the caller"),
    (status = 422, body = ErrorBody, description = "`export_too_large`: ask for it in the background"),
), security(("bearer" = [])))]
#[get("/batches/{id}/export")]
pub async fn trace(
    state: web::Data<AppState>,
    Caller(actor): Caller,
    id: web::Path<i64>,
    q: web::Query<ExportQuery>,
) -> ApiResult<HttpResponse> {
    let batch = BatchId(id.into_inner());
    let format = ExportFormat::from_request(q.format.as_deref().unwrap_or("csv"))?;
    let options = WriteOptions {
        ids: Identifiers {
            base: state.public_base(),
        },
        created: chrono::Utc::now(),
    };
    let bytes = blocking(&state, move |db| {
        let scope = ExportScope::Trace { batch_id: batch };
        let events = db.read(|c| jobs::count(c, &actor, &scope))?;
        if events > MAX_TRACE_EVENTS_INLINE {
            return Err(CoreError::invalid(
                "export_too_large",
                format!(
                    "this trace holds {events} events, more than {MAX_TRACE_EVENTS_INLINE} written within a \
                     request; POST /api/v1/exports with {{\"batch_id\": {batch}, \"format\": \"{format}\"}} \
                     writes it in the background"
                ),
            ));
        }
        let out = std::io::Cursor::new(Vec::new());
        let (out, _) = exports::write(db, &actor, &scope, format, out, &options, &mut |_, _| Ok(()))?;
        Ok(out.into_inner())
    })
    .await?;
    Ok(HttpResponse::Ok()
        .content_type(format.content_type())
        .insert_header(attachment(&format!(
            "batch-{batch}-trace.{}",
            format.extension()
        )))
        .body(bytes))
}
