//! Times are stored as milliseconds since the Unix epoch (UTC) so that one schema serves both backends; the
//! API speaks RFC 3339.

use chrono::{DateTime, FixedOffset, NaiveDate, Offset, TimeZone, Utc};

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

/// China Standard Time (UTC+8, no daylight saving), in which every date a user sees is shown and every
/// per-day count is cut: a scan at 23:30 UTC belongs to the next day in the county.
pub fn china() -> FixedOffset {
    // 8 hours is always in range; the `expect`-free fallback keeps panics out of library code.
    FixedOffset::east_opt(8 * 3600).unwrap_or_else(|| Utc.fix())
}

/// A time in China time.
pub fn in_china(at: DateTime<Utc>) -> DateTime<FixedOffset> {
    at.with_timezone(&china())
}

/// The day (YYYY-MM-DD) of a time in China, as the per-day counts key it.
pub fn china_day(at: DateTime<Utc>) -> String {
    in_china(at).format("%Y-%m-%d").to_string()
}

/// Today's date in China.
pub fn china_today() -> NaiveDate {
    in_china(Utc::now()).date_naive()
}

#[cfg(test)]
mod china_time {
    use super::*;

    #[test]
    fn a_late_utc_evening_is_the_next_day_in_china() {
        let at = Utc
            .with_ymd_and_hms(2026, 3, 1, 16, 30, 0)
            .single()
            .unwrap_or_default();
        assert_eq!(china_day(at), "2026-03-02");
        let before = Utc
            .with_ymd_and_hms(2026, 3, 1, 15, 59, 59)
            .single()
            .unwrap_or_default();
        assert_eq!(china_day(before), "2026-03-01");
    }
}
