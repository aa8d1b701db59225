//! Scans: the location a consumer shares after a scan, the regional counts regulators compare, and the
//! SMS webhook.

pub mod location;
pub mod regions;
pub mod sms;
