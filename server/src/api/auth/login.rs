//! `POST /api/v1/auth/login`: password login; sets the session cookie and returns the same token for clients
//! that prefer a bearer header.

use actix_web::cookie::{Cookie, SameSite};
use actix_web::{post, web, HttpResponse};
use serde::{Deserialize, Serialize};
use suyuan_core::auth::TokenKind;
use suyuan_core::model::User;
use suyuan_core::store::users::{self, LoginOutcome};
use utoipa::ToSchema;

use crate::error::{ApiResult, ErrorBody};
use crate::extract::{blocking, SESSION_COOKIE};
use crate::state::AppState;

/// Credentials.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub username: String,
    pub password: String,
}

/// A session.
#[derive(Debug, Serialize, ToSchema)]
pub struct LoginResponse {
    /// Valid for 12 hours; also set as the `suyuan_session` cookie.
    pub token: String,
    pub user: User,
}

#[utoipa::path(tag = "auth", request_body = LoginRequest, responses(
    (status = 200, body = LoginResponse),
    (status = 401, body = ErrorBody, description = "wrong username or password"),
    (status = 429, body = ErrorBody, description = "account locked after repeated failures"),
))]
#[post("/auth/login")]
pub async fn login(
    state: web::Data<AppState>,
    body: web::Json<LoginRequest>,
) -> ApiResult<HttpResponse> {
    let body = body.into_inner();
    let outcome = blocking(&state, move |db| {
        db.write(|c| users::login(c, &body.username, &body.password, TokenKind::Session))
    })
    .await?;
    let (token, user) = match outcome {
        LoginOutcome::Success(token, user) => (token, user),
        LoginOutcome::Refused(e) => return Err(e.into()),
    };
    let cookie = Cookie::build(SESSION_COOKIE, token.clone())
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(state.secure_cookies)
        .max_age(actix_web::cookie::time::Duration::hours(12))
        .finish();
    Ok(HttpResponse::Ok()
        .cookie(cookie)
        .json(LoginResponse { token, user }))
}
