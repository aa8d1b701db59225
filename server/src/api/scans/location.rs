//! `POST /api/v1/scans/location`: the phone's location, shared by the consumer from the scan page.
//!
//! It is rounded to about 10 km before anything else happens, refines the region of that client's scan
//! of the label and is checked against the product's distribution area. Public (no account), so it
//! accepts only genuine codes and answers 204 without saying more.

use actix_web::http::StatusCode;
use actix_web::{post, web, HttpRequest, HttpResponse};
use chrono::Utc;
use serde::Deserialize;
use suyuan_core::model::{LocatedScan, ScanEvent, ScanVerdict};
use utoipa::ToSchema;

use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::blocking;
use crate::scans::client;
use crate::scans::lookup::{resolve, CodeKind};
use crate::state::AppState;

/// Where the phone is.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SharedLocation {
    /// The label's URL or its digits, as on the page.
    pub code: String,
    pub latitude: f64,
    pub longitude: f64,
}

#[utoipa::path(tag = "scans", request_body = SharedLocation, responses(
    (status = 204, description = "recorded (rounded to about 10 km)"),
    (status = 422, body = ErrorBody, description = "invalid_location or label_not_genuine"),
))]
#[post("/scans/location")]
pub async fn location(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Json<SharedLocation>,
) -> ApiResult<HttpResponse> {
    let body = body.into_inner();
    let Some(region) = client::location_region(body.latitude, body.longitude) else {
        return Err(ApiError::request(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_location",
            "latitude and longitude must be finite degrees of a place in China",
        ));
    };
    let scanning = state.scanning.clone();
    let code = body.code;
    let facts = blocking(&state, move |db| {
        db.read(|c| resolve(c, &scanning.keys, &code, CodeKind::Signed))
    })
    .await?;
    let (Some(label), Some(lookup)) = (facts.label(), facts.lookup.as_ref()) else {
        return Err(ApiError::request(
            StatusCode::UNPROCESSABLE_ENTITY,
            "label_not_genuine",
            "only a genuine label's page can share a location",
        ));
    };
    if matches!(facts.verdict, ScanVerdict::NotMinted) {
        return Ok(HttpResponse::NoContent().finish());
    }
    let scanning = &state.scanning;
    let ip = client::client_ip(&req, &scanning.settings.trusted_proxies);
    scanning
        .log
        .log(ScanEvent::Located(LocatedScan {
            label,
            short_code: facts.short_code(),
            client_hash: client::request_hash(&scanning.salt, ip),
            region,
            at: Utc::now(),
            batch_id: lookup.batch_id,
            org_id: lookup.org_id,
            product_id: lookup.product_id,
        }))
        .await;
    Ok(HttpResponse::NoContent().finish())
}
