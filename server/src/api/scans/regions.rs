//! `GET /api/v1/scans/regions?from=&to=`: scans per day, region and verdict (区域扫码对比), forgery
//! attempts by region included. For regulators and operators.

use actix_web::http::StatusCode;
use actix_web::{get, web, HttpResponse};
use chrono::{Duration, NaiveDate};
use serde::{Deserialize, Serialize};
use suyuan_core::model::{RegionDayCount, ScanVerdict};
use suyuan_core::policy;
use suyuan_core::region;
use suyuan_core::store::scans;
use utoipa::{IntoParams, ToSchema};

use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{blocking, Caller};
use crate::state::AppState;

/// The days to count (China time, inclusive); the last 30 days by default, at most 366 days.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct RegionsQuery {
    /// YYYY-MM-DD; at most 366 days before `to`.
    #[param(format = Date)]
    pub from: Option<String>,
    /// YYYY-MM-DD; not before `from`.
    #[param(format = Date)]
    pub to: Option<String>,
}

/// One day, region and verdict, with the region's name.
#[derive(Debug, Serialize, ToSchema)]
pub struct RegionCount {
    #[serde(flatten)]
    pub count: RegionDayCount,
    /// e.g. 云南省昆明市; empty when the region is unknown.
    pub region_name: String,
}

/// The counts, and the forgery attempts summed per region over the period.
#[derive(Debug, Serialize, ToSchema)]
pub struct RegionsAnswer {
    pub from: String,
    pub to: String,
    pub counts: Vec<RegionCount>,
    /// Invalid-signature scans per region over the period, most first.
    pub forgeries_by_region: Vec<(String, String, i64)>,
}

fn day(value: Option<String>, default: NaiveDate, name: &str) -> Result<String, ApiError> {
    match value {
        None => Ok(default.format("%Y-%m-%d").to_string()),
        Some(v) => NaiveDate::parse_from_str(&v, "%Y-%m-%d")
            .map(|d| d.format("%Y-%m-%d").to_string())
            .map_err(|_| {
                ApiError::request(
                    StatusCode::BAD_REQUEST,
                    "invalid_query",
                    format!("{name} must be a date YYYY-MM-DD"),
                )
            }),
    }
}

/// The longest period one request counts (a year, leap day included).
const MAX_DAYS: i64 = 366;

/// `from` not after `to`, and at most [`MAX_DAYS`] days: the counts are summed on request.
fn check_range(from: &str, to: &str) -> Result<(), ApiError> {
    let parse = |d: &str| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok();
    let (Some(f), Some(t)) = (parse(from), parse(to)) else {
        return Ok(());
    };
    if f > t {
        return Err(ApiError::request(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_range",
            "from must not be after to",
        ));
    }
    if (t - f).num_days() + 1 > MAX_DAYS {
        return Err(ApiError::request(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_range",
            format!("at most {MAX_DAYS} days at a time"),
        ));
    }
    Ok(())
}

#[utoipa::path(tag = "scans", params(RegionsQuery), responses(
    (status = 200, body = RegionsAnswer),
    (status = 400, body = ErrorBody),
    (status = 403, body = ErrorBody),
), security(("bearer" = [])))]
#[get("/scans/regions")]
pub async fn regions(
    state: web::Data<AppState>,
    Caller(actor): Caller,
    q: web::Query<RegionsQuery>,
) -> ApiResult<HttpResponse> {
    if !policy::reads_all(&actor) {
        return Err(ApiError::request(
            StatusCode::FORBIDDEN,
            "forbidden",
            "only regulators and operators see the county's scans by region",
        ));
    }
    let q = q.into_inner();
    let today = suyuan_core::time::china_today();
    let from = day(q.from, today - Duration::days(29), "from")?;
    let to = day(q.to, today, "to")?;
    check_range(&from, &to)?;
    let (f, t) = (from.clone(), to.clone());
    let rows = blocking(&state, move |db| {
        db.read(|c| scans::region_counts(c, &f, &t))
    })
    .await?;
    let mut forgeries: std::collections::BTreeMap<String, i64> = Default::default();
    for r in rows
        .iter()
        .filter(|r| r.verdict == ScanVerdict::Counterfeit)
    {
        *forgeries.entry(r.division_code.clone()).or_default() += r.scans;
    }
    let mut forgeries_by_region: Vec<(String, String, i64)> = forgeries
        .into_iter()
        .map(|(code, n)| {
            let name = region::full_name(&code).unwrap_or_default();
            (code, name, n)
        })
        .collect();
    forgeries_by_region.sort_by_key(|r| std::cmp::Reverse(r.2));
    let counts = rows
        .into_iter()
        .map(|count| RegionCount {
            region_name: region::full_name(&count.division_code).unwrap_or_default(),
            count,
        })
        .collect();
    Ok(HttpResponse::Ok().json(RegionsAnswer {
        from,
        to,
        counts,
        forgeries_by_region,
    }))
}
