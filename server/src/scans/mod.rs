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

/// Where the region of a scan comes from when the phone shares no location (`--ip-regions`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum IpRegionSetting {
    /// ip2region's database built into the server (`SUYUAN_IP_REGIONS` unset, empty or `ip2region`).
    #[default]
    Builtin,
    /// The operator's database: CSV lines `start,end,division_code`, or an ip2region file ending in `.xdb`.
    File(PathBuf),
    /// No IP-to-region lookup (`off`): regions come only from phones that share their location.
    Off,
}

impl IpRegionSetting {
    /// Reads the option's value: empty or `ip2region` for the built-in database, `off`, or a path.
    pub fn parse(value: &str) -> Result<Self, String> {
        Ok(match value.trim() {
            "" | "ip2region" => IpRegionSetting::Builtin,
            "off" => IpRegionSetting::Off,
            path => IpRegionSetting::File(PathBuf::from(path)),
        })
    }
}

/// How scanning is configured (`suyuan serve` flags and `SUYUAN_*` variables).
#[derive(Debug, Clone, Default)]
pub struct ScanSettings {
    pub rules: ScanRules,
    /// The IP-to-region database: built-in ip2region unless the operator names a file or turns it off.
    pub ip_regions: IpRegionSetting,
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
    /// The IP-to-region database in use; none when turned off.
    pub ip_regions: Option<IpRegions>,
    /// The salt of client hashes, shared by every replica through the database.
    pub salt: String,
}

impl Scanning {
    /// Loads the IP-to-region database (the built-in one is shared by every `Scanning` of the process),
    /// reads (or makes) the salt and starts the scan log's writer.
    pub fn start(db: &Database, settings: ScanSettings) -> CoreResult<Arc<Scanning>> {
        let setup = |e| CoreError::Setup(format!("IP-to-region database: {e}"));
        let ip_regions = match &settings.ip_regions {
            IpRegionSetting::Builtin => Some(IpRegions::ip2region().map_err(setup)?),
            IpRegionSetting::File(path) => Some(IpRegions::open(path).map_err(setup)?),
            IpRegionSetting::Off => None,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ip_regions_option_reads_builtin_off_or_a_path() {
        for builtin in ["", "  ", "ip2region"] {
            assert_eq!(
                IpRegionSetting::parse(builtin),
                Ok(IpRegionSetting::Builtin)
            );
        }
        assert_eq!(IpRegionSetting::parse("off"), Ok(IpRegionSetting::Off));
        assert_eq!(
            IpRegionSetting::parse("/etc/suyuan/ip.csv"),
            Ok(IpRegionSetting::File("/etc/suyuan/ip.csv".into()))
        );
        assert_eq!(ScanSettings::default().ip_regions, IpRegionSetting::Builtin);
    }
}
