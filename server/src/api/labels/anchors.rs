//! `GET /.well-known/suyuan/anchors/latest.json`, `/.well-known/suyuan/anchors/{id}.json` and
//! `/.well-known/suyuan/anchors` (the list, newest first): the signed anchors of the record chains' heads,
//! published so that copies live outside the database's reach. Anyone may fetch and keep them; `suyuan
//! verify chain --anchor FILE` checks the database against a copy (see `suyuan_core::store::anchors`).

use actix_web::http::StatusCode;
use actix_web::{get, web, HttpResponse};
use serde::Serialize;
use suyuan_core::store::anchors;

use crate::error::{ApiError, ApiResult};
use crate::extract::blocking;
use crate::state::AppState;

fn document(text: String) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(("Cache-Control", "public, max-age=60"))
        .insert_header(("Access-Control-Allow-Origin", "*"))
        .content_type("application/json")
        .body(text)
}

/// The newest anchor. Not in the OpenAPI document, which describes `/api/v1`.
#[get("/.well-known/suyuan/anchors/latest.json")]
pub async fn latest(state: web::Data<AppState>) -> ApiResult<HttpResponse> {
    let latest = blocking(&state, |db| db.read(anchors::latest)).await?;
    match latest {
        Some((_, text)) => Ok(document(text)),
        None => Err(ApiError::request(
            StatusCode::NOT_FOUND,
            "not_found",
            "no anchor has been made yet",
        )),
    }
}

/// One anchor by id.
#[get("/.well-known/suyuan/anchors/{id:[0-9]{1,18}}.json")]
pub async fn one(state: web::Data<AppState>, id: web::Path<i64>) -> ApiResult<HttpResponse> {
    let id = id.into_inner();
    let text = blocking(&state, move |db| db.read(|c| anchors::get(c, id))).await?;
    Ok(document(text))
}

#[derive(Serialize)]
struct Listed {
    #[serde(flatten)]
    anchor: anchors::AnchorSummary,
    url: String,
}

/// The newest 500 anchors, without their heads, each with its document's path.
#[get("/.well-known/suyuan/anchors")]
pub async fn list(state: web::Data<AppState>) -> ApiResult<HttpResponse> {
    let list = blocking(&state, |db| db.read(|c| anchors::list(c, 500))).await?;
    let listed: Vec<Listed> = list
        .into_iter()
        .map(|anchor| Listed {
            url: format!("/.well-known/suyuan/anchors/{}.json", anchor.id),
            anchor,
        })
        .collect();
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "public, max-age=60"))
        .insert_header(("Access-Control-Allow-Origin", "*"))
        .json(serde_json::json!({ "anchors": listed })))
}
