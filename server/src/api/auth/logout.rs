//! `POST /api/v1/auth/logout`: revokes the token in use and clears the cookie.

use actix_web::cookie::Cookie;
use actix_web::{post, web, HttpRequest, HttpResponse};
use suyuan_core::store::users;

use crate::error::ApiResult;
use crate::extract::{blocking, Caller, SESSION_COOKIE};
use crate::state::AppState;

#[utoipa::path(tag = "auth", responses((status = 204)), security(("bearer" = [])))]
#[post("/auth/logout")]
pub async fn logout(
    state: web::Data<AppState>,
    req: HttpRequest,
    _caller: Caller,
) -> ApiResult<HttpResponse> {
    let token = req
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.split_once(' ').map(|(_, t)| t.trim().to_owned()))
        .or_else(|| req.cookie(SESSION_COOKIE).map(|c| c.value().to_owned()));
    if let Some(token) = token {
        blocking(&state, move |db| {
            db.write(|c| users::revoke_token(c, &token))
        })
        .await?;
    }
    let mut gone = Cookie::build(SESSION_COOKIE, "").path("/").finish();
    gone.make_removal();
    Ok(HttpResponse::NoContent().cookie(gone).finish())
}
