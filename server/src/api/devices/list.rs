//! `GET /api/v1/devices`: the caller's organisation's devices (all for regulators and operators),
//! optionally of one site, with their online state and when they last sent data.

use actix_web::{get, web, HttpResponse};
use serde::Deserialize;
use suyuan_core::model::Device;
use suyuan_core::store::{iot, Page, Paged};
use suyuan_core::SiteId;
use utoipa::IntoParams;

use crate::error::ApiResult;
use crate::extract::{blocking, Caller};
use crate::state::AppState;

/// Filters and paging.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct DevicesQuery {
    pub site_id: Option<i64>,
    /// 1–200, default 50.
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<i64>,
    pub after: Option<i64>,
}

#[utoipa::path(tag = "devices", params(DevicesQuery), responses((status = 200, body = Paged<Device>)), security(("bearer" = [])))]
#[get("/devices")]
pub async fn list(
    state: web::Data<AppState>,
    Caller(actor): Caller,
    q: web::Query<DevicesQuery>,
) -> ApiResult<HttpResponse> {
    let q = q.into_inner();
    let page = Page {
        limit: q.limit,
        after: q.after,
    };
    let out = blocking(&state, move |db| {
        db.read(|c| iot::list_devices(c, &actor, q.site_id.map(SiteId), page))
    })
    .await?;
    Ok(HttpResponse::Ok().json(out))
}
