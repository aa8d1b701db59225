//! People with accounts.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::text::{self, Lines};
use super::Role;
use crate::error::{CoreError, CoreResult};
use crate::{OrgId, UserId};

/// A user as operators and the user themself see it (never shown to consumers).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct User {
    pub id: UserId,
    pub org_id: OrgId,
    pub username: String,
    pub display_name: String,
    pub phone: Option<String>,
    pub role: Role,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

/// A new account, created by an operator.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    pub org_id: OrgId,
    pub username: String,
    pub display_name: String,
    pub phone: Option<String>,
    pub role: Role,
    /// At least 8 characters.
    pub password: String,
}

impl NewUser {
    /// Checks the username's alphabet and the password's length.
    pub fn validate(&self) -> CoreResult<()> {
        let ok_name = (3..=64).contains(&self.username.len())
            && self
                .username
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.');
        if !ok_name {
            return Err(CoreError::invalid(
                "invalid_username",
                "username must be 3–64 characters of letters, digits, '.', '_' or '-'",
            ));
        }
        text::required("display_name", &self.display_name, 100, Lines::One)?;
        text::optional("phone", self.phone.as_deref(), 32, Lines::One)?;
        if self.password.chars().count() < 8 {
            return Err(CoreError::invalid(
                "weak_password",
                "password must have at least 8 characters",
            ));
        }
        // Long enough for any passphrase; the cap keeps hashing a request cheap.
        text::text("password", &self.password, 256, Lines::One)?;
        Ok(())
    }
}

/// Who is acting: resolved from a session cookie or an API token on every request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Actor {
    pub user_id: UserId,
    pub org_id: OrgId,
    pub role: Role,
}
