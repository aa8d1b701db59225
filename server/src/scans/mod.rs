//! Scanning: what happens when a consumer opens a label's URL, types its short code, asks at a kiosk or
//! sends an SMS.
//!
//! - [`lookup`]: the code's verdict, label, batch and scan history;
//! - [`keys`]: the verifying keys, in memory;
//! - [`story`]: the batch's story with photos and temperatures, cached;
//! - [`client`]: the salted client hash and the coarse region;
//! - [`log`]: the scan log, written in batches off the request path, with the counterfeit rules;
//! - [`sms`]: what an inbound SMS asks (a pure function of its body).

pub mod client;
pub mod keys;
pub mod log;
pub mod lookup;
pub mod sms;
pub mod story;

use std::path::PathBuf;
use std::sync::Arc;

use suyuan_core::model::ScanRules;
use suyuan_core::region::IpRegions;
use suyuan_core::store::scans;
use suyuan_core::{CoreError, CoreResult, Database};

/// How scanning is configured (`suyuan serve` flags and `SUYUAN_*` variables).
#[derive(Debug, Clone, Default)]
pub struct ScanSettings {
    pub rules: ScanRules,
    /// An IP-to-region CSV (`start,end,division_code` per line); none: regions come only from phones.
    pub ip_regions: Option<PathBuf>,
    /// Proxies whose `X-Forwarded-For` names the scanning client (the server's `SUYUAN_TRUSTED_PROXIES`).
    pub trusted_proxies: crate::extract::TrustedProxies,
    /// The shared secret an SMS provider sends in `X-Suyuan-Sms-Token`; none: the SMS webhook is off.
    pub sms_token: Option<String>,
}

/// The scanning machinery every page handler shares.
#[derive(Debug)]
pub struct Scanning {
    pub settings: ScanSettings,
    pub keys: keys::KeyCache,
    pub stories: story::StoryCache,
    pub log: log::ScanLog,
    pub ip_regions: Option<IpRegions>,
    /// The salt of client hashes, shared by every replica through the database.
    pub salt: String,
}

impl Scanning {
    /// Loads the IP-to-region database, reads (or makes) the salt and starts the scan log's writer.
    pub fn start(db: &Database, settings: ScanSettings) -> CoreResult<Arc<Scanning>> {
        let ip_regions = match &settings.ip_regions {
            Some(path) => Some(
                IpRegions::open(path)
                    .map_err(|e| CoreError::Setup(format!("IP-to-region database: {e}")))?,
            ),
            None => None,
        };
        let salt = db.write(|c| {
            scans::setting_or_create(c, "scan_client_salt", suyuan_core::auth::new_token)
        })?;
        let log = log::ScanLog::start(db.clone(), settings.rules.clone())
            .map_err(|e| CoreError::Setup(format!("cannot start the scan log: {e}")))?;
        Ok(Arc::new(Scanning {
            settings,
            keys: keys::KeyCache::default(),
            stories: story::StoryCache::default(),
            log,
            ip_regions,
            salt,
        }))
    }
}
