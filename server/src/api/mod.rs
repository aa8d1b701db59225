//! The JSON API under `/api/v1`: one folder per resource, one file per endpoint.

pub mod alerts;
pub mod auth;
pub mod batches;
pub mod devices;
pub mod exports;
pub mod gateway;
pub mod images;
pub mod label_runs;
pub mod labels;
pub mod meta;
pub mod organisations;
pub mod products;
pub mod public;
pub mod records;
pub mod rules;
pub mod scans;
pub mod sites;
pub mod transformations;
pub mod users;

use actix_web::HttpResponse;
use serde::Serialize;

/// 201 with a JSON body.
pub(crate) fn created<T: Serialize>(body: &T) -> HttpResponse {
    HttpResponse::Created().json(body)
}

/// Paging plus an optional organisation filter (regulators and operators; others always see their own).
#[derive(Debug, Clone, Copy, serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct OrgListQuery {
    /// 1–200, default 50.
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<i64>,
    /// The `next_after` of the previous page.
    pub after: Option<i64>,
    pub org_id: Option<i64>,
}

impl OrgListQuery {
    /// The page part.
    pub fn page(&self) -> suyuan_core::store::Page {
        suyuan_core::store::Page {
            limit: self.limit,
            after: self.after,
        }
    }

    /// Which organisation's items the caller gets.
    pub fn scope(&self, actor: &suyuan_core::model::Actor) -> Option<suyuan_core::OrgId> {
        if suyuan_core::policy::reads_all(actor) {
            self.org_id.map(suyuan_core::OrgId)
        } else {
            Some(actor.org_id)
        }
    }
}
