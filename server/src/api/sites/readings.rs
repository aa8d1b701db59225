//! `GET /api/v1/sites/{id}/readings?from=…&to=…[&metric=temp_c][&device_id=…][&limit=…]`: a site's sensor
//! readings over a time range (device time), oldest first, each with its unit code. Read through the view
//! `readings` (one row per metric of each stored message); on PostgreSQL its `telemetry` table is
//! partitioned by month, so a range touches only the months it spans.

use actix_web::http::StatusCode;
use actix_web::{get, web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use suyuan_core::model::ReadingPoint;
use suyuan_core::store::iot;
use suyuan_core::SiteId;
use utoipa::{IntoParams, ToSchema};

use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{blocking, Caller};
use crate::state::AppState;

/// The range and filters.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ReadingsQuery {
    /// Start (inclusive), RFC 3339.
    pub from: DateTime<Utc>,
    /// End (exclusive), RFC 3339.
    pub to: DateTime<Utc>,
    pub metric: Option<String>,
    pub device_id: Option<i64>,
    /// 1–20,000, default 5,000.
    #[param(minimum = 1, maximum = 20000)]
    pub limit: Option<i64>,
}

/// The points.
#[derive(Debug, Serialize, ToSchema)]
pub struct Readings {
    pub points: Vec<ReadingPoint>,
    /// More points exist in the range: narrow it or start after the last point's time.
    pub truncated: bool,
}

#[utoipa::path(tag = "devices", params(("id" = i64, Path), ReadingsQuery), responses(
    (status = 200, body = Readings),
    (status = 404, body = ErrorBody),
    (status = 422, body = ErrorBody, description = "`from` not before `to`"),
), security(("bearer" = [])))]
#[get("/sites/{id}/readings")]
pub async fn readings(
    state: web::Data<AppState>,
    Caller(actor): Caller,
    id: web::Path<i64>,
    q: web::Query<ReadingsQuery>,
) -> ApiResult<HttpResponse> {
    let (site, q) = (SiteId(id.into_inner()), q.into_inner());
    if q.limit.is_some_and(|n| !(1..=20_000).contains(&n)) {
        return Err(ApiError::request(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_page",
            "limit must be between 1 and 20,000",
        ));
    }
    let (points, truncated) = blocking(&state, move |db| {
        db.read(|c| {
            iot::site_readings(
                c,
                &actor,
                site,
                q.from.timestamp_millis(),
                q.to.timestamp_millis(),
                q.metric.as_deref(),
                q.device_id,
                q.limit.unwrap_or(5_000),
            )
        })
    })
    .await?;
    Ok(HttpResponse::Ok().json(Readings { points, truncated }))
}
