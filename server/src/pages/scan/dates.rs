//! Dates on the consumer pages, as a reader in China reads them: the day in China time
//! ([`suyuan_core::time::in_china`]), written the Chinese or the English way.

use chrono::{DateTime, Utc};

use crate::pages::Lang;

/// A date as a consumer reads it.
pub fn date(at: DateTime<Utc>, lang: Lang) -> String {
    let local = suyuan_core::time::in_china(at);
    match lang {
        Lang::Zh => local.format("%Y年%-m月%-d日").to_string(),
        Lang::En => local.format("%-d %b %Y").to_string(),
    }
}

/// A day and month without the year (a photo's or a chart's day, the first lookup).
pub(super) fn day_month(at: DateTime<Utc>, lang: Lang) -> String {
    let local = suyuan_core::time::in_china(at);
    match lang {
        Lang::Zh => local.format("%-m月%-d日").to_string(),
        Lang::En => local.format("%-d %b").to_string(),
    }
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};

    use super::{date, day_month};
    use crate::pages::Lang;

    #[test]
    fn dates_are_days_in_china() {
        // 16:59 UTC on 31 December is already New Year's Day in China (UTC+8).
        let new_year = Utc.with_ymd_and_hms(2026, 12, 31, 16, 59, 0).unwrap();
        assert_eq!(date(new_year, Lang::Zh), "2027年1月1日");
        assert_eq!(date(new_year, Lang::En), "1 Jan 2027");
        assert_eq!(day_month(new_year, Lang::Zh), "1月1日");
        assert_eq!(day_month(new_year, Lang::En), "1 Jan");
        // Before 16:00 UTC it is still the same day.
        let afternoon = Utc.with_ymd_and_hms(2026, 6, 5, 15, 59, 0).unwrap();
        assert_eq!(date(afternoon, Lang::Zh), "2026年6月5日");
        assert_eq!(date(afternoon, Lang::En), "5 Jun 2026");
        assert_eq!(day_month(afternoon, Lang::Zh), "6月5日");
        assert_eq!(day_month(afternoon, Lang::En), "5 Jun");
        assert_eq!(
            suyuan_core::time::china_day(afternoon + chrono::Duration::minutes(1)),
            "2026-06-06"
        );
        assert_eq!(
            date(afternoon + chrono::Duration::minutes(1), Lang::En),
            "6 Jun 2026"
        );
    }
}
