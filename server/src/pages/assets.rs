//! Static assets, compiled into the binary so that one file is the whole server.

use actix_web::{get, HttpResponse};

const SITE_CSS: &str = include_str!("../../../web/static/site.css");

#[get("/static/site.css")]
pub async fn stylesheet() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .insert_header(("Cache-Control", "public, max-age=86400"))
        .body(SITE_CSS)
}
