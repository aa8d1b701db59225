//! `GET /api/v1/health`: for load balancers; checks that the database answers.

use actix_web::{get, web, HttpResponse};
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::{ApiResult, ErrorBody};
use crate::extract::blocking;
use crate::state::AppState;

/// Health.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    pub status: &'static str,
    /// `sqlite` or `postgres`.
    pub database: &'static str,
}

#[utoipa::path(tag = "meta", responses((status = 200, body = Health), (status = 503, body = ErrorBody)))]
#[get("/health")]
pub async fn health(state: web::Data<AppState>) -> ApiResult<HttpResponse> {
    blocking(&state, |db| db.read(suyuan_core::store::verify::ping)).await?;
    let database = match state.db.backend() {
        suyuan_core::db::Backend::Sqlite => "sqlite",
        suyuan_core::db::Backend::Postgres => "postgres",
    };
    Ok(HttpResponse::Ok().json(Health {
        status: "ok",
        database,
    }))
}
