//! How errors become HTTP answers.
//!
//! Policy: every error is JSON `{"error": "<stable_code>", "message": "..."}` (plus `details` where both
//! sides of a conflict are shown) with the status that fits: 400 malformed request, 401 no valid credentials,
//! 403 not allowed, 404 unknown or not visible, 409 contradicts what is stored, 413 too large, 415 not JSON,
//! 422 well-formed but invalid, 429 too many attempts, 500/503 our fault. Internal causes are logged with
//! `tracing` and never sent.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use suyuan_core::CoreError;
use utoipa::ToSchema;

/// The JSON body of every error answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// Stable snake_case code for programs.
    pub error: String,
    /// Safe to show to the person who made the request.
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub details: Option<serde_json::Value>,
}

/// An error answer.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// From the domain.
    #[error(transparent)]
    Core(#[from] CoreError),
    /// A request the server could not read (status, code, message).
    #[error("{2}")]
    Request(StatusCode, &'static str, String),
}

impl ApiError {
    /// A request error.
    pub fn request(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError::Request(status, code, message.into())
    }
}

impl From<actix_web::error::BlockingError> for ApiError {
    fn from(e: actix_web::error::BlockingError) -> Self {
        ApiError::Core(CoreError::Internal(e.to_string()))
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::Request(status, ..) => *status,
            ApiError::Core(e) => match e {
                CoreError::BadRequest { .. } => StatusCode::BAD_REQUEST,
                CoreError::Invalid { .. } => StatusCode::UNPROCESSABLE_ENTITY,
                CoreError::NotFound { .. } => StatusCode::NOT_FOUND,
                CoreError::Forbidden(_) => StatusCode::FORBIDDEN,
                CoreError::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
                CoreError::TooManyAttempts(_) | CoreError::Limited { .. } => {
                    StatusCode::TOO_MANY_REQUESTS
                }
                CoreError::Conflict { .. } => StatusCode::CONFLICT,
                CoreError::Pool(_) => StatusCode::SERVICE_UNAVAILABLE,
                CoreError::Database(_) | CoreError::Setup(_) | CoreError::Internal(_) => {
                    StatusCode::INTERNAL_SERVER_ERROR
                }
            },
        }
    }

    fn error_response(&self) -> HttpResponse {
        let body = match self {
            ApiError::Request(_, code, message) => ErrorBody {
                error: (*code).into(),
                message: message.clone(),
                details: None,
            },
            ApiError::Core(e) => {
                let message = match e {
                    CoreError::Database(_) | CoreError::Setup(_) | CoreError::Internal(_) => {
                        tracing::error!(error = %e, "request failed");
                        "internal error; it has been logged".to_owned()
                    }
                    CoreError::Pool(_) => {
                        tracing::error!(error = %e, "database unavailable");
                        "the database is unavailable; try again shortly".to_owned()
                    }
                    other => other.to_string(),
                };
                let details = match e {
                    CoreError::Conflict { details, .. } => details.clone(),
                    _ => None,
                };
                ErrorBody {
                    error: e.code().into(),
                    message,
                    details,
                }
            }
        };
        HttpResponse::build(self.status_code()).json(body)
    }
}

/// Result of a handler.
pub type ApiResult<T> = Result<T, ApiError>;

/// Maps actix's form body errors onto the policy above.
pub fn form_error(
    err: actix_web::error::UrlencodedError,
    _req: &actix_web::HttpRequest,
) -> actix_web::Error {
    use actix_web::error::UrlencodedError as U;
    let api = match &err {
        U::Overflow { .. } => ApiError::request(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "the request body is too large",
        ),
        U::ContentType => ApiError::request(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the body as application/json or application/x-www-form-urlencoded",
        ),
        other => ApiError::request(
            StatusCode::BAD_REQUEST,
            "malformed_form",
            format!("the form could not be read: {other}"),
        ),
    };
    api.into()
}

/// Maps actix's JSON body errors onto the policy above.
pub fn json_error(
    err: actix_web::error::JsonPayloadError,
    _req: &actix_web::HttpRequest,
) -> actix_web::Error {
    use actix_web::error::JsonPayloadError as J;
    let api = match &err {
        J::OverflowKnownLength { .. } | J::Overflow { .. } => ApiError::request(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "the request body is too large",
        ),
        J::ContentType => ApiError::request(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the body as application/json",
        ),
        J::Deserialize(e) if e.is_data() => ApiError::request(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
            e.to_string(),
        ),
        J::Deserialize(e) => ApiError::request(
            StatusCode::BAD_REQUEST,
            "malformed_json",
            format!("the body is not valid JSON: {e}"),
        ),
        other => ApiError::request(
            StatusCode::BAD_REQUEST,
            "unreadable_body",
            other.to_string(),
        ),
    };
    api.into()
}

/// Maps bad path segments (e.g. a batch id that is not a number) to 404.
pub fn path_error(
    err: actix_web::error::PathError,
    _req: &actix_web::HttpRequest,
) -> actix_web::Error {
    ApiError::request(
        StatusCode::NOT_FOUND,
        "not_found",
        format!("no such resource: {err}"),
    )
    .into()
}

/// Maps bad query strings to 400.
pub fn query_error(
    err: actix_web::error::QueryPayloadError,
    _req: &actix_web::HttpRequest,
) -> actix_web::Error {
    ApiError::request(StatusCode::BAD_REQUEST, "invalid_query", err.to_string()).into()
}
