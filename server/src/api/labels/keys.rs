//! `GET /.well-known/suyuan/keys.json`: the public keys of every signing key that ever signed labels,
//! so that anyone can verify a label offline with only this document.

use actix_web::{get, web, HttpResponse};

use crate::error::ApiResult;
use crate::extract::blocking;
use crate::state::AppState;

/// Not in the OpenAPI document, which describes `/api/v1`; the format is documented in
/// `suyuan_label_gen::keystore`.
#[get("/.well-known/suyuan/keys.json")]
pub async fn keys(state: web::Data<AppState>) -> ApiResult<HttpResponse> {
    let keys = blocking(&state, |db| db.read(suyuan_core::store::labels::list_keys)).await?;
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "public, max-age=300"))
        .insert_header(("Access-Control-Allow-Origin", "*"))
        .json(super::document(&keys)))
}
