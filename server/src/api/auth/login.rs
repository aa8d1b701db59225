//! `POST /api/v1/auth/login`: password login; sets the session cookie and returns the same token for clients
//! that prefer a bearer header.

use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::header;
use actix_web::{post, web, HttpRequest, HttpResponse, ResponseError};
use serde::{Deserialize, Serialize};
use suyuan_core::auth::TokenKind;
use suyuan_core::model::User;
use suyuan_core::store::users::{self, LoginOutcome};
use utoipa::ToSchema;

use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{blocking, client_address, client_key, SESSION_COOKIE};
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
    (status = 429, body = ErrorBody, description = "too many failed logins from this client (see `Retry-After`); \
        the same for every user name, known or not", headers(("Retry-After" = u64, description = "seconds"))),
))]
#[post("/auth/login")]
pub async fn login(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Json<LoginRequest>,
) -> ApiResult<HttpResponse> {
    let body = body.into_inner();
    let client = client_key(client_address(&req, &state.trusted_proxies));
    let outcome = blocking(&state, move |db| {
        users::login(
            db,
            &body.username,
            &body.password,
            &client,
            TokenKind::Session,
        )
    })
    .await?;
    let (token, user) = match outcome {
        LoginOutcome::Success(token, user) => (token, user),
        LoginOutcome::Refused(e) => return Err(e.into()),
        LoginOutcome::Throttled {
            error,
            retry_after_secs,
        } => {
            let mut refused = ApiError::from(error).error_response();
            refused.headers_mut().insert(
                header::RETRY_AFTER,
                header::HeaderValue::from(retry_after_secs),
            );
            return Ok(refused);
        }
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
