//! `POST /api/v1/label-runs`: reserves the serials of a run for one of the caller's organisation's
//! products and queues it for minting; answers 202 at once with the run (`minting`), which is then
//! followed with `GET /api/v1/label-runs/{id}`. The labels count against the organisation's quota
//! (`label_quota_exceeded`, 409), and a bounded number of runs may wait at once (`too_many_label_runs`, 429).

use actix_web::http::StatusCode;
use actix_web::{post, web, HttpResponse};
use serde::Deserialize;
use suyuan_core::model::{NewLabelRun, RunRequester};
use suyuan_core::store::labels;
use suyuan_core::{CoreError, ProductId};
use suyuan_label_gen::PageLayout;
use utoipa::ToSchema;

use super::RunView;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{blocking, Caller};
use crate::state::AppState;

/// What a run asks for. The active signing key signs it.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RunRequest {
    pub product_id: ProductId,
    /// 1 – 1,000,000 labels.
    pub count: i64,
    /// `a4-3x8`, `a4-4x10` or `roll-50x30`.
    pub layout: String,
    /// Host in the label URLs; the server's public host by default. Short hosts keep the QR small.
    pub host: Option<String>,
}

#[utoipa::path(tag = "labels", request_body = RunRequest, responses(
    (status = 202, body = RunView, description = "reserved and queued; poll the run until `finished`"),
    (status = 403, body = ErrorBody),
    (status = 401, body = ErrorBody),
    (status = 404, body = ErrorBody, description = "no such product"),
    (status = 409, body = ErrorBody, description = "`label_quota_exceeded`: the run does not fit the organisation's label quota (the remaining amount in the message and `details`)"),
    (status = 422, body = ErrorBody, description = "count, layout or host invalid, or no active signing key"),
    (status = 429, body = ErrorBody, description = "`too_many_label_runs`: the organisation, or the platform, has as many runs queued as allowed"),
    (status = 503, body = ErrorBody, description = "this server does not mint labels"),
), security(("bearer" = [])))]
#[post("/label-runs")]
pub async fn create(
    state: web::Data<AppState>,
    Caller(actor): Caller,
    body: web::Json<RunRequest>,
) -> ApiResult<HttpResponse> {
    let Some(minter) = state.minter.clone() else {
        return Err(ApiError::request(
            StatusCode::SERVICE_UNAVAILABLE,
            "minting_unavailable",
            "this server has no label minter (no data folder for signing keys)",
        ));
    };
    let req = body.into_inner();
    if PageLayout::by_name(&req.layout).is_none() {
        return Err(CoreError::invalid(
            "unknown_layout",
            format!(
                "unknown layout {:?}; use a4-3x8, a4-4x10 or roll-50x30",
                req.layout
            ),
        )
        .into());
    }
    let host = req.host.unwrap_or_else(|| state.public_host.clone());
    if !valid_host(&host) {
        return Err(CoreError::invalid(
            "invalid_host",
            "the host is a domain name (with an optional port), at most 40 characters",
        )
        .into());
    }
    let limits = minter.settings().run_limits;
    let run = blocking(&state, move |db| {
        db.write(|c| {
            let key = labels::active_key(c)?.ok_or_else(|| {
                CoreError::invalid(
                    "no_signing_key",
                    "no active signing key; create one with `suyuan keys new`",
                )
            })?;
            labels::create_run_with(
                c,
                RunRequester::User(&actor),
                &NewLabelRun {
                    product_id: req.product_id,
                    key_id: key.key_id,
                    count: req.count,
                    layout: req.layout,
                    host,
                },
                labels::RunChecks {
                    limits: Some(limits),
                    over_quota: false,
                },
            )
        })
    })
    .await?;
    minter.submit(run.id);
    let view = RunView::of(run, Some(minter.settings()), None);
    Ok(HttpResponse::Accepted()
        .insert_header(("Location", format!("/api/v1/label-runs/{}", view.run.id)))
        .json(view))
}

/// A host name as it may appear in a label URL: letters, digits, dots, hyphens, an optional port; short
/// enough that the QR code stays at version 6.
fn valid_host(host: &str) -> bool {
    let (name, port) = match host.rsplit_once(':') {
        Some((name, port)) => (name, Some(port)),
        None => (host, None),
    };
    !name.is_empty()
        && host.len() <= 40
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
        && !name.starts_with(['.', '-'])
        && port
            .is_none_or(|p| !p.is_empty() && p.len() <= 5 && p.chars().all(|c| c.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn hosts() {
        for ok in [
            "t.cn",
            "trace.huaning.cn",
            "localhost:8080",
            "127.0.0.1:8080",
        ] {
            assert!(super::valid_host(ok), "{ok}");
        }
        for bad in [
            "",
            "a b",
            "x/y",
            "-x.cn",
            "h:",
            "h:123456",
            &"a".repeat(41),
            "ü.cn",
        ] {
            assert!(!super::valid_host(bad), "{bad}");
        }
    }
}
