//! `GET /b/{batch}/photos/{id}` and `…/thumb`: the plot photos of a batch's public story.
//!
//! Camera images are otherwise visible only to the site's organisation and regulators; a photo is
//! public here only while it is one of the photos the batch's story shows.

use actix_web::{get, web, HttpResponse};
use suyuan_core::store::iot;
use suyuan_core::{BatchId, CoreError};

use crate::error::ApiResult;
use crate::media::{send_jpeg, Rendition};
use crate::state::AppState;

async fn send(
    state: web::Data<AppState>,
    batch: i64,
    id: i64,
    rendition: Rendition,
) -> ApiResult<HttpResponse> {
    let scanning = state.scanning.clone();
    send_jpeg(&state, rendition, "public, max-age=86400", move |db| {
        db.read(|c| {
            let story = scanning.stories.get(c, BatchId(batch))?;
            if !story.shows_photo(id) {
                return Err(CoreError::NotFound { what: "photo" });
            }
            iot::image_unchecked(c, id)
        })
    })
    .await
}

#[get("/b/{batch}/photos/{id}")]
pub async fn original(
    state: web::Data<AppState>,
    path: web::Path<(i64, i64)>,
) -> ApiResult<HttpResponse> {
    let (batch, id) = path.into_inner();
    send(state, batch, id, Rendition::Original).await
}

#[get("/b/{batch}/photos/{id}/thumb")]
pub async fn thumbnail(
    state: web::Data<AppState>,
    path: web::Path<(i64, i64)>,
) -> ApiResult<HttpResponse> {
    let (batch, id) = path.into_inner();
    send(state, batch, id, Rendition::Thumbnail).await
}
