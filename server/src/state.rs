//! What every handler shares.

use suyuan_core::Database;

/// The application state: the database handle and settings handlers need.
#[derive(Clone, Debug)]
pub struct AppState {
    pub db: Database,
    /// Send cookies with `Secure` (set when served behind HTTPS).
    pub secure_cookies: bool,
}

impl AppState {
    /// State over an open database.
    pub fn new(db: Database) -> Self {
        AppState {
            db,
            secure_cookies: false,
        }
    }
}
