//! `GET /api/v1/rules`: the rules the caller may see, optionally of one site.

use actix_web::{get, web, HttpResponse};
use serde::Deserialize;
use suyuan_core::model::IotRule;
use suyuan_core::store::iot;
use suyuan_core::SiteId;
use utoipa::IntoParams;

use crate::error::ApiResult;
use crate::extract::{blocking, Caller};
use crate::state::AppState;

/// Filter.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct RulesQuery {
    pub site_id: Option<i64>,
}

#[utoipa::path(tag = "devices", params(RulesQuery), responses((status = 200, body = Vec<IotRule>)), security(("bearer" = [])))]
#[get("/rules")]
pub async fn list(
    state: web::Data<AppState>,
    Caller(actor): Caller,
    q: web::Query<RulesQuery>,
) -> ApiResult<HttpResponse> {
    let site = q.site_id.map(SiteId);
    let out = blocking(&state, move |db| {
        db.read(|c| iot::list_rules(c, &actor, site))
    })
    .await?;
    Ok(HttpResponse::Ok().json(out))
}
