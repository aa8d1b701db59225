//! What every handler shares.

use std::sync::Arc;

use suyuan_core::Database;

use crate::minting::Minter;
use crate::scans::{ScanSettings, Scanning};

/// The application state: the database handle and settings handlers need.
#[derive(Clone, Debug)]
pub struct AppState {
    pub db: Database,
    /// Send cookies with `Secure` (set when served behind HTTPS).
    pub secure_cookies: bool,
    /// Mints label runs asked for through the API; `None` where the server has no data folder for
    /// keys and files (label runs are then refused with 503).
    pub minter: Option<Arc<Minter>>,
    /// Host written into label URLs when a run does not name one (`SUYUAN_PUBLIC_HOST`).
    pub public_host: String,
    /// Where the gateway keeps camera images (by content hash); `None`: no images are served.
    pub media_dir: Option<std::path::PathBuf>,
    /// Label verification, story cache and the scan log of the consumer pages.
    pub scanning: Arc<Scanning>,
}

impl AppState {
    /// State over an open database, without a label minter, scanning with the default settings.
    pub fn new(db: Database) -> suyuan_core::CoreResult<Self> {
        Ok(AppState {
            scanning: Scanning::start(&db, ScanSettings::default())?,
            db,
            secure_cookies: false,
            minter: None,
            public_host: "localhost".into(),
            media_dir: None,
        })
    }

    /// Scanning with these settings (IP-to-region database, rules, SMS token).
    pub fn with_scan_settings(mut self, settings: ScanSettings) -> suyuan_core::CoreResult<Self> {
        self.scanning = Scanning::start(&self.db, settings)?;
        Ok(self)
    }

    /// Adds the background label minter.
    pub fn with_minter(mut self, minter: Arc<Minter>) -> Self {
        self.minter = Some(minter);
        self
    }
}
