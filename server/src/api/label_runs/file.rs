//! `GET /api/v1/label-runs/{id}/files/{name}`: a finished run's PDF or manifest, for members of the
//! product's organisation, regulators and operators. Only names the run recorded are served.

use actix_web::http::StatusCode;
use actix_web::{get, web, HttpResponse};
use suyuan_core::model::{LabelRunId, LabelRunStatus};
use suyuan_core::store::labels;
use suyuan_core::CoreError;

use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{blocking, Caller};
use crate::state::AppState;

#[utoipa::path(tag = "labels", params(("id" = i64, Path), ("name" = String, Path)), responses(
    (status = 200, description = "a PDF of labels, or the CSV manifest", content(
        (Vec<u8> = "application/pdf"),
        (String = "text/csv"),
    )),
    (status = 404, body = ErrorBody, description = "no such run or file, or the run is not finished"),
), security(("bearer" = [])))]
#[get("/label-runs/{id}/files/{name}")]
pub async fn file(
    state: web::Data<AppState>,
    Caller(actor): Caller,
    path: web::Path<(i64, String)>,
) -> ApiResult<HttpResponse> {
    let (id, name) = path.into_inner();
    let id = LabelRunId(id);
    let Some(minter) = state.minter.clone() else {
        return Err(ApiError::request(
            StatusCode::NOT_FOUND,
            "not_found",
            "this server keeps no label files",
        ));
    };
    let run = blocking(&state, move |db| {
        db.read(|c| labels::get_run_for(c, &actor, id))
    })
    .await?;
    let listed = run.status == LabelRunStatus::Finished
        && run
            .output
            .as_deref()
            .is_some_and(|o| o.lines().any(|l| l == name));
    if !listed {
        return Err(CoreError::NotFound { what: "run file" }.into());
    }
    let path = minter.settings().run_dir(id).join(&name);
    let bytes = web::block(move || std::fs::read(path))
        .await?
        .map_err(|_| CoreError::NotFound { what: "run file" })?;
    let content_type = if name.ends_with(".csv") {
        "text/csv; charset=utf-8"
    } else {
        "application/pdf"
    };
    Ok(HttpResponse::Ok()
        .content_type(content_type)
        .insert_header((
            "Content-Disposition",
            format!("attachment; filename=\"{name}\""),
        ))
        .body(bytes))
}
