//! `GET /api/v1/images/{id}` and `GET /api/v1/images/{id}/thumbnail`: the JPEG bytes, for whoever may
//! see the image's site. Files are named by content hash, so they never change: clients may cache them.

use actix_web::{get, web, HttpResponse};
use suyuan_core::model::Actor;
use suyuan_core::store::iot;

use crate::error::{ApiResult, ErrorBody};
use crate::extract::Caller;
use crate::media::{send_jpeg, Rendition};
use crate::state::AppState;

async fn send(
    state: web::Data<AppState>,
    actor: Actor,
    id: i64,
    rendition: Rendition,
) -> ApiResult<HttpResponse> {
    send_jpeg(
        &state,
        rendition,
        "private, max-age=31536000, immutable",
        move |db| db.read(|c| iot::get_image(c, &actor, id)),
    )
    .await
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
    send(state, actor, id.into_inner(), Rendition::Original).await
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
    send(state, actor, id.into_inner(), Rendition::Thumbnail).await
}
