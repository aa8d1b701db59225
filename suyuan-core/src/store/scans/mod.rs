//! The scan log: every consumer scan stored, the per-label state the counterfeit rules keep, the regional
//! counts, and the settings the scan path shares across replicas. The rules themselves decide in
//! [`crate::rules::scans`]; this module loads what they read and writes what they decided.
//!
//! - `log`: a batch of scan events through the rules into the database;
//! - `state`: the per-label state (`label_scan_stats`), loaded and saved once per batch;
//! - `read`: a label's statistics, the regional counts, the total;
//! - `settings`: deployment-wide settings created by whichever replica asks first.

mod log;
mod read;
mod settings;
mod state;

pub use log::record;
pub use read::{count, region_counts, stats};
pub use settings::setting_or_create;

/// Rows per multi-row INSERT (14 columns: well under SQLite's 32,766 variables).
const CHUNK: usize = 500;
