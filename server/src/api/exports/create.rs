//! `POST /api/v1/exports`: a period's events (`from`, `to`, optionally `org_id`, `product_id`) or a batch's
//! trace (`batch_id`) as a file written in the background. Answers 202 at once with the export (`queued`,
//! its events counted); follow it with `GET /api/v1/exports/{id}`.

use actix_web::http::StatusCode;
use actix_web::{post, web, HttpResponse};
use suyuan_core::model::NewExport;
use suyuan_core::store::exports::jobs;

use super::ExportView;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{blocking, Caller};
use crate::state::AppState;

#[utoipa::path(tag = "exports", request_body = NewExport, responses(
    (status = 202, body = ExportView, description = "recorded and queued; poll it until `finished`"),
    (status = 400, body = ErrorBody, description = "`unknown_format`, `invalid_period` (e.g. it ends before it starts), `missing_period`, `ambiguous_export`"),
    (status = 401, body = ErrorBody),
    (status = 404, body = ErrorBody, description = "no such batch, organisation or product"),
    (status = 422, body = ErrorBody, description = "`export_too_large`: more than 1,000,000 events"),
    (status = 429, body = ErrorBody, description = "`too_many_exports`: as many are waiting as allowed"),
    (status = 503, body = ErrorBody, description = "this server writes no exports"),
), security(("bearer" = [])))]
#[post("/exports")]
pub async fn create(
    state: web::Data<AppState>,
    Caller(actor): Caller,
    body: web::Json<NewExport>,
) -> ApiResult<HttpResponse> {
    let Some(exporter) = state.exporter.clone() else {
        return Err(ApiError::request(
            StatusCode::SERVICE_UNAVAILABLE,
            "exports_unavailable",
            "this server writes no exports (no data folder)",
        ));
    };
    let (format, scope) = body.validate()?;
    let limits = exporter.settings().limits;
    let job = blocking(&state, move |db| {
        let total = db.read(|c| jobs::count(c, &actor, &scope))?;
        db.write(|c| jobs::create(c, &actor, format, &scope, total, limits))
    })
    .await?;
    exporter.submit(job.id);
    let view = ExportView::from(job);
    Ok(HttpResponse::Accepted()
        .insert_header(("Location", format!("/api/v1/exports/{}", view.job.id)))
        .json(view))
}
