//! Camera images answered over HTTP, in one place for the two ways in: the API's images (for whoever may
//! see the image's site) and the plot photos of a batch's public story. Both find the image's row, then
//! its file in the media folder, and answer the JPEG with a caching policy of their own.

use std::path::PathBuf;

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use suyuan_core::model::DeviceImage;
use suyuan_core::{CoreError, CoreResult, Database};

use crate::error::{ApiError, ApiResult};
use crate::extract::blocking;
use crate::state::AppState;

/// Which file of an image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rendition {
    /// The JPEG as the camera sent it.
    Original,
    /// The gateway's small copy.
    Thumbnail,
}

/// Finds an image with `find` (which decides who may see it) and answers its JPEG from the media
/// folder with `cache_control`. A server that keeps no media answers 404 without asking the database.
pub async fn send_jpeg(
    state: &web::Data<AppState>,
    rendition: Rendition,
    cache_control: &'static str,
    find: impl FnOnce(&Database) -> CoreResult<DeviceImage> + Send + 'static,
) -> ApiResult<HttpResponse> {
    let Some(media) = state.media_dir.clone() else {
        return Err(ApiError::request(
            StatusCode::NOT_FOUND,
            "not_found",
            "this server keeps no media",
        ));
    };
    let image = blocking(state, find).await?;
    let bytes = web::block(move || read(media, &image, rendition)).await??;
    Ok(HttpResponse::Ok()
        .content_type("image/jpeg")
        .insert_header(("Cache-Control", cache_control))
        .body(bytes))
}

/// The bytes of an image's file.
fn read(media: PathBuf, image: &DeviceImage, rendition: Rendition) -> CoreResult<Vec<u8>> {
    let rel = match rendition {
        Rendition::Original => &image.path,
        Rendition::Thumbnail => &image.thumb_path,
    };
    if !is_plain_relative(rel) {
        return Err(CoreError::Internal(format!(
            "unexpected media path {rel:?}"
        )));
    }
    std::fs::read(media.join(rel)).map_err(|_| CoreError::NotFound { what: "image file" })
}

/// Stored paths are relative, `/`-separated and made by the gateway; anything else is refused.
fn is_plain_relative(rel: &str) -> bool {
    !rel.split('/').any(|part| part.is_empty() || part == "..")
}

#[cfg(test)]
mod tests {
    use super::is_plain_relative;

    #[test]
    fn only_plain_relative_paths_are_read() {
        assert!(is_plain_relative("2026/12/05/ab12.jpg"));
        assert!(is_plain_relative("thumb.jpg"));
        for bad in [
            "",
            "/etc/passwd",
            "a//b.jpg",
            "../secret.jpg",
            "a/../../b.jpg",
            "a/",
        ] {
            assert!(!is_plain_relative(bad), "{bad:?}");
        }
    }
}
