//! The domain's one error type.
//!
//! Policy: every variant maps to one HTTP status and one stable snake_case code in the server. Messages are
//! safe to show to the person who made the request; causes that are not (database errors, I/O) are kept in
//! the variant for the log and replaced by a generic message at the edge.

use serde_json::Value;

/// Shorthand for results of domain operations.
pub type CoreResult<T> = Result<T, CoreError>;

/// Everything that can go wrong in a domain operation.
#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    /// A request that cannot be read as asked (400): e.g. an unknown export format, a period that ends
    /// before it starts.
    #[error("{message}")]
    BadRequest { code: &'static str, message: String },
    /// Input that parsed but breaks a rule of the domain (422).
    #[error("{message}")]
    Invalid { code: &'static str, message: String },
    /// The thing asked for does not exist, or the caller may not know that it exists (404).
    #[error("{what} not found")]
    NotFound { what: &'static str },
    /// The caller is known but may not do this (403).
    #[error("{0}")]
    Forbidden(String),
    /// No valid credentials (401).
    #[error("{0}")]
    Unauthenticated(String),
    /// Too many attempts (429).
    #[error("{0}")]
    TooManyAttempts(String),
    /// A bound on work in progress is reached (429), with a stable code; retrying later may succeed.
    #[error("{message}")]
    Limited { code: &'static str, message: String },
    /// The request contradicts what is stored (409); `details` describes both sides where that helps.
    #[error("{message}")]
    Conflict {
        code: &'static str,
        message: String,
        details: Option<Value>,
    },
    /// The database failed; the cause is logged, never shown.
    #[error("database error: {0}")]
    Database(#[from] diesel::result::Error),
    /// No connection could be had from the pool.
    #[error("database unavailable: {0}")]
    Pool(String),
    /// Opening or migrating the database failed.
    #[error("{0}")]
    Setup(String),
    /// Anything else internal; the cause is logged, never shown.
    #[error("internal error: {0}")]
    Internal(String),
}

impl CoreError {
    /// Whether the database refused the data itself (a foreign key, check or not-null constraint): the
    /// same write would be refused again, so it is the data's fault, not the database's availability.
    pub fn is_constraint_violation(&self) -> bool {
        use diesel::result::{DatabaseErrorKind as K, Error as D};
        matches!(
            self,
            CoreError::Database(D::DatabaseError(
                K::ForeignKeyViolation | K::CheckViolation | K::NotNullViolation,
                _
            ))
        )
    }
}

impl CoreError {
    /// A 422 with a stable code.
    pub fn invalid(code: &'static str, message: impl Into<String>) -> Self {
        CoreError::Invalid {
            code,
            message: message.into(),
        }
    }

    /// A 400 with a stable code.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        CoreError::BadRequest {
            code,
            message: message.into(),
        }
    }

    /// A 409 with a stable code and no further details.
    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        CoreError::Conflict {
            code,
            message: message.into(),
            details: None,
        }
    }

    /// The stable machine code the API answers with.
    pub fn code(&self) -> &'static str {
        match self {
            CoreError::Invalid { code, .. }
            | CoreError::BadRequest { code, .. }
            | CoreError::Conflict { code, .. }
            | CoreError::Limited { code, .. } => code,
            CoreError::NotFound { .. } => "not_found",
            CoreError::Forbidden(_) => "forbidden",
            CoreError::Unauthenticated(_) => "unauthenticated",
            CoreError::TooManyAttempts(_) => "too_many_attempts",
            CoreError::Pool(_) => "database_unavailable",
            CoreError::Database(_) | CoreError::Setup(_) | CoreError::Internal(_) => {
                "internal_error"
            }
        }
    }

    /// A 403.
    pub fn forbidden(message: impl Into<String>) -> Self {
        CoreError::Forbidden(message.into())
    }
}

impl From<diesel::r2d2::PoolError> for CoreError {
    fn from(e: diesel::r2d2::PoolError) -> Self {
        CoreError::Pool(e.to_string())
    }
}

/// Turns a lookup that found nothing into a `NotFound`.
pub(crate) trait OptionalExt<T> {
    fn or_not_found(self, what: &'static str) -> CoreResult<T>;
}

impl<T> OptionalExt<T> for Result<T, diesel::result::Error> {
    fn or_not_found(self, what: &'static str) -> CoreResult<T> {
        match self {
            Ok(v) => Ok(v),
            Err(diesel::result::Error::NotFound) => Err(CoreError::NotFound { what }),
            Err(e) => Err(CoreError::Database(e)),
        }
    }
}
