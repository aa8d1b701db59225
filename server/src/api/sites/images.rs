//! `GET /api/v1/sites/{id}/images?from=…&to=…`: a site's camera images taken in a time range, with the
//! links to each original and thumbnail.

use actix_web::{get, web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use suyuan_core::model::DeviceImage;
use suyuan_core::store::{iot, Page, Paged};
use suyuan_core::SiteId;
use utoipa::{IntoParams, ToSchema};

use crate::error::{ApiResult, ErrorBody};
use crate::extract::{blocking, Caller};
use crate::state::AppState;

/// The range and paging.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ImagesQuery {
    /// Start (inclusive), RFC 3339.
    pub from: DateTime<Utc>,
    /// End (exclusive), RFC 3339.
    pub to: DateTime<Utc>,
    /// 1–200, default 50.
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<i64>,
    pub after: Option<i64>,
}

/// An image with its links.
#[derive(Debug, Serialize, ToSchema)]
pub struct ImageView {
    #[serde(flatten)]
    pub image: DeviceImage,
    pub href: String,
    pub thumbnail_href: String,
}

#[utoipa::path(tag = "devices", params(("id" = i64, Path), ImagesQuery), responses(
    (status = 200, body = Paged<ImageView>),
    (status = 404, body = ErrorBody),
), security(("bearer" = [])))]
#[get("/sites/{id}/images")]
pub async fn images(
    state: web::Data<AppState>,
    Caller(actor): Caller,
    id: web::Path<i64>,
    q: web::Query<ImagesQuery>,
) -> ApiResult<HttpResponse> {
    let (site, q) = (SiteId(id.into_inner()), q.into_inner());
    let page = Page {
        limit: q.limit,
        after: q.after,
    };
    let found = blocking(&state, move |db| {
        db.read(|c| {
            iot::site_images(
                c,
                &actor,
                site,
                q.from.timestamp_millis(),
                q.to.timestamp_millis(),
                page,
            )
        })
    })
    .await?;
    Ok(HttpResponse::Ok().json(Paged {
        items: found
            .items
            .into_iter()
            .map(|image| ImageView {
                href: format!("/api/v1/images/{}", image.id),
                thumbnail_href: format!("/api/v1/images/{}/thumbnail", image.id),
                image,
            })
            .collect(),
        next_after: found.next_after,
    }))
}
