//! `GET /api/v1/images/{id}` and `GET /api/v1/images/{id}/thumbnail`: the JPEG bytes, for whoever may
//! see the image's site. Files are named by content hash, so they never change: clients may cache them.

use actix_web::http::StatusCode;
use actix_web::{get, web, HttpResponse};
use suyuan_core::store::iot;
use suyuan_core::CoreError;

use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{blocking, Caller};
use crate::state::AppState;

async fn send(
    state: web::Data<AppState>,
    actor: suyuan_core::model::Actor,
    id: i64,
    want_thumbnail: bool,
) -> ApiResult<HttpResponse> {
    let Some(media) = state.media_dir.clone() else {
        return Err(ApiError::request(
            StatusCode::NOT_FOUND,
            "not_found",
            "this server keeps no media",
        ));
    };
    let image = blocking(&state, move |db| db.read(|c| iot::get_image(c, &actor, id))).await?;
    jpeg(
        media,
        image,
        want_thumbnail,
        "private, max-age=31536000, immutable",
    )
    .await
}

/// Answers an image's JPEG (or its thumbnail) from the media folder. Also used by the public scan page
/// for the plot photos of a story.
pub async fn jpeg(
    media: std::path::PathBuf,
    image: suyuan_core::model::DeviceImage,
    want_thumbnail: bool,
    cache_control: &'static str,
) -> ApiResult<HttpResponse> {
    let rel = if want_thumbnail {
        image.thumb_path
    } else {
        image.path
    };
    // Stored paths are relative, `/`-separated and made by the gateway; refuse anything else.
    if rel.split('/').any(|part| part.is_empty() || part == "..") {
        return Err(CoreError::Internal(format!("unexpected media path {rel:?}")).into());
    }
    let path = media.join(rel);
    let bytes = web::block(move || std::fs::read(path))
        .await?
        .map_err(|_| CoreError::NotFound { what: "image file" })?;
    Ok(HttpResponse::Ok()
        .content_type("image/jpeg")
        .insert_header(("Cache-Control", cache_control))
        .body(bytes))
}

#[utoipa::path(tag = "devices", params(("id" = i64, Path)), responses(
    (status = 200, content_type = "image/jpeg", description = "the original JPEG"),
    (status = 404, body = ErrorBody),
), security(("bearer" = [])))]
#[get("/images/{id}")]
pub async fn original(
    state: web::Data<AppState>,
    Caller(actor): Caller,
    id: web::Path<i64>,
) -> ApiResult<HttpResponse> {
    send(state, actor, id.into_inner(), false).await
}

#[utoipa::path(tag = "devices", params(("id" = i64, Path)), responses(
    (status = 200, content_type = "image/jpeg", description = "the thumbnail JPEG"),
    (status = 404, body = ErrorBody),
), security(("bearer" = [])))]
#[get("/images/{id}/thumbnail")]
pub async fn thumbnail(
    state: web::Data<AppState>,
    Caller(actor): Caller,
    id: web::Path<i64>,
) -> ApiResult<HttpResponse> {
    send(state, actor, id.into_inner(), true).await
}
