//! `GET /api/v1/openapi.json`.

use actix_web::{get, HttpResponse};
use utoipa::OpenApi;

#[get("/openapi.json")]
pub async fn openapi() -> HttpResponse {
    HttpResponse::Ok().json(crate::openapi::ApiDoc::openapi())
}
