//! `GET` and `PUT /api/v1/organisations/{id}/label-quota`: how many labels an organisation's runs may hold.
//! Operators set it (`null` lifts it); the organisation's members, regulators and operators read it with
//! what is used and what remains. `POST /api/v1/label-runs` refuses a run that does not fit.

use actix_web::{get, put, web, HttpResponse};
use serde::Deserialize;
use suyuan_core::model::LabelQuota;
use suyuan_core::{policy, store::labels, OrgId};
use utoipa::ToSchema;

use crate::error::{ApiResult, ErrorBody};
use crate::extract::{blocking, Caller};
use crate::state::AppState;

/// A new quota.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QuotaRequest {
    /// Most labels the organisation's runs may hold in all, 0 – 10,000,000,000; `null` for no limit.
    pub quota: Option<i64>,
}

#[utoipa::path(tag = "organisations", params(("id" = i64, Path)), responses(
    (status = 200, body = LabelQuota),
    (status = 401, body = ErrorBody),
    (status = 404, body = ErrorBody),
), security(("bearer" = [])))]
#[get("/organisations/{id}/label-quota")]
pub async fn get(
    state: web::Data<AppState>,
    Caller(actor): Caller,
    id: web::Path<i64>,
) -> ApiResult<HttpResponse> {
    let id = OrgId(id.into_inner());
    policy::ensure_read_org(&actor, id)?;
    let quota = blocking(&state, move |db| db.read(|c| labels::label_quota(c, id))).await?;
    Ok(HttpResponse::Ok().json(quota))
}

#[utoipa::path(tag = "organisations", params(("id" = i64, Path)), request_body = QuotaRequest, responses(
    (status = 200, body = LabelQuota),
    (status = 401, body = ErrorBody),
    (status = 403, body = ErrorBody, description = "only operators set quotas"),
    (status = 404, body = ErrorBody),
    (status = 422, body = ErrorBody, description = "quota out of range"),
), security(("bearer" = [])))]
#[put("/organisations/{id}/label-quota")]
pub async fn set(
    state: web::Data<AppState>,
    Caller(actor): Caller,
    id: web::Path<i64>,
    body: web::Json<QuotaRequest>,
) -> ApiResult<HttpResponse> {
    let id = OrgId(id.into_inner());
    let quota = body.into_inner().quota;
    let set = blocking(&state, move |db| {
        db.write(|c| labels::set_label_quota(c, &actor, id, quota))
    })
    .await?;
    tracing::info!(org = %id, quota = ?set.quota, by = ?set.updated_by, "label quota set");
    Ok(HttpResponse::Ok().json(set))
}
