//! Every query of the platform, one module per aggregate. Functions take a [`DbConnection`] (and run inside
//! the caller's transaction where they write); the server calls them through [`crate::Database::write`] and
//! [`crate::Database::read`]. Queries that read the same on both backends are written once with
//! [`on_backend!`](crate::on_backend); the few that differ match on the connection explicitly.

pub mod alerts;
pub mod anchors;
pub mod batches;
#[cfg(feature = "test-support")]
pub mod bulk;
pub mod exports;
pub mod iot;
pub mod labels;
pub mod lineage;
pub mod orgs;
pub mod public;
pub mod recall;
pub mod records;
pub mod rows;
pub mod scans;
pub mod sites;
pub mod users;
pub mod verify;

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

pub use crate::db::DbConnection;
use crate::error::{CoreError, CoreResult};

/// Keyset pagination: `limit` items with an id greater than `after`.
#[derive(Debug, Clone, Copy, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct Page {
    /// 1–200, default 50.
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<i64>,
    /// The `next_after` of the previous page.
    pub after: Option<i64>,
}

impl Page {
    /// The first page with the default size.
    pub const FIRST: Page = Page {
        limit: None,
        after: None,
    };

    /// The validated page size.
    pub fn limit(&self) -> CoreResult<i64> {
        match self.limit {
            None => Ok(50),
            Some(n) if (1..=200).contains(&n) => Ok(n),
            Some(_) => Err(CoreError::invalid(
                "invalid_page",
                "limit must be between 1 and 200",
            )),
        }
    }

    /// The cursor (0 for the first page).
    pub fn after(&self) -> i64 {
        self.after.unwrap_or(0)
    }
}

/// One page of a list.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Paged<T> {
    pub items: Vec<T>,
    /// Pass as `after` to get the next page; absent on the last page.
    pub next_after: Option<i64>,
}

impl<T> Paged<T> {
    /// Builds a page from up to `limit + 1` fetched items, keyed by `id`.
    pub(crate) fn from_fetched(mut items: Vec<T>, limit: i64, id: impl Fn(&T) -> i64) -> Self {
        let more = items.len() as i64 > limit;
        items.truncate(limit as usize);
        let next_after = if more { items.last().map(id) } else { None };
        Paged { items, next_after }
    }
}

/// True when a diesel error is a unique-constraint violation.
pub(crate) fn is_unique_violation(e: &diesel::result::Error) -> bool {
    matches!(
        e,
        diesel::result::Error::DatabaseError(diesel::result::DatabaseErrorKind::UniqueViolation, _)
    )
}
