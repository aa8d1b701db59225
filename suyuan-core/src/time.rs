//! Times are stored as milliseconds since the Unix epoch (UTC) so that one schema serves both backends; the
//! API speaks RFC 3339.

use chrono::{DateTime, TimeZone, Utc};

/// Milliseconds since the Unix epoch.
pub type Millis = i64;

/// The current time in milliseconds.
pub fn now_millis() -> Millis {
    Utc::now().timestamp_millis()
}

/// Converts stored milliseconds back to a UTC time (the epoch itself for out-of-range values, which the
/// write path never stores).
pub fn to_datetime(ms: Millis) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_default()
}
