//! The subcommands of the `suyuan` binary; `main.rs` only parses the command line and calls these.

pub mod anchor;
pub mod demo_labels;
pub mod demo_media;
pub mod gateway;
pub mod keys;
pub mod labels;
pub mod migrate;
pub mod mqtt_auth;
pub mod serve;
pub mod verify;

use std::path::PathBuf;

use clap::Args;
use suyuan_core::db::{DatabaseUrl, PoolConfig};
use suyuan_core::Database;

/// Where the data lives (shared by every subcommand that opens the database).
#[derive(Debug, Clone, Args)]
pub struct DataArgs {
    /// Data folder: the SQLite database (unless DATABASE_URL is set) and, later, media.
    #[arg(long = "data", env = "SUYUAN_DATA", default_value = "./data")]
    pub data_dir: PathBuf,
    /// postgres://… for PostgreSQL, sqlite://PATH for another SQLite file; defaults to DATA/suyuan.sqlite.
    #[arg(long = "database-url", env = "DATABASE_URL")]
    pub database_url: Option<String>,
    /// Camera images and thumbnails, stored once by content hash; defaults to DATA/media (shared by the
    /// gateway replicas and the API servers).
    #[arg(long = "media", env = "SUYUAN_MEDIA")]
    pub media_dir: Option<PathBuf>,
}

impl DataArgs {
    /// The media folder.
    pub fn media(&self) -> PathBuf {
        self.media_dir
            .clone()
            .unwrap_or_else(|| self.data_dir.join("media"))
    }

    /// The database these arguments select.
    pub fn url(&self) -> anyhow::Result<DatabaseUrl> {
        Ok(match &self.database_url {
            Some(url) if !url.trim().is_empty() => DatabaseUrl::parse(url)?,
            _ => DatabaseUrl::default_in(&self.data_dir),
        })
    }

    /// Opens the database and runs pending migrations; the data folder (keys, label runs, media, the
    /// SQLite files) is made readable by its owner only first.
    pub fn open(&self) -> anyhow::Result<Database> {
        suyuan_core::db::private_dir(&self.data_dir)?;
        let url = self.url()?;
        tracing::info!(database = %url.redacted(), "opening database");
        Ok(Database::open(&url, &PoolConfig::default())?)
    }
}
