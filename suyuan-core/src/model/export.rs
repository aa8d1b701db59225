//! Exports: what a user asks for (a batch's trace or a period, as a spreadsheet or an EPCIS document) and the
//! background job that writes a period's file.

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::enums::text_enum;
use crate::error::{CoreError, CoreResult};
use crate::time::china;
use crate::{BatchId, OrgId, ProductId, UserId};

text_enum!(
    /// The file an export writes.
    ExportFormat {
        /// A sortable spreadsheet as CSV: UTF-8 with a byte-order mark and CRLF line ends, which Excel opens
        /// in Chinese as it is.
        Csv = "csv",
        /// The same spreadsheet as an Excel workbook: header frozen, filters on, dates as dates.
        Xlsx = "xlsx",
        /// A GS1 EPCIS 2.0 JSON-LD document.
        Epcis = "epcis",
    }
);

impl ExportFormat {
    /// Reads a format named in a request (400 `unknown_format` otherwise).
    pub fn from_request(name: &str) -> CoreResult<Self> {
        ExportFormat::parse(name.trim()).ok_or_else(|| {
            CoreError::bad_request(
                "unknown_format",
                format!(
                    "unknown export format {:?}; use csv, xlsx or epcis",
                    name.chars().take(40).collect::<String>()
                ),
            )
        })
    }

    /// The file name extension.
    pub fn extension(self) -> &'static str {
        match self {
            ExportFormat::Csv => "csv",
            ExportFormat::Xlsx => "xlsx",
            ExportFormat::Epcis => "jsonld",
        }
    }

    /// The media type of the file.
    pub fn content_type(self) -> &'static str {
        match self {
            ExportFormat::Csv => "text/csv; charset=utf-8",
            ExportFormat::Xlsx => {
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
            }
            ExportFormat::Epcis => "application/ld+json",
        }
    }
}

text_enum!(
    /// Where a background export is.
    ExportStatus {
        /// Waiting for the exporter.
        Queued = "queued",
        /// Being written; `rows_done` of `rows_total` so far.
        Running = "running",
        /// Written; the file can be downloaded.
        Finished = "finished",
        /// Stopped; `error` says why.
        Failed = "failed",
    }
);

/// The events of a period: those whose event time lies in `[from, to)`, optionally only those recorded by one
/// organisation or on batches of one product.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Period {
    pub from: DateTime<Utc>,
    /// Exclusive.
    pub to: DateTime<Utc>,
    /// Only events recorded by this organisation.
    pub org_id: Option<OrgId>,
    /// Only events on batches of this product.
    pub product_id: Option<ProductId>,
}

/// What an export covers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ExportScope {
    /// A batch's whole trace: every batch backward and forward of it, with its records and the
    /// transformations between them.
    Trace { batch_id: BatchId },
    /// The events of a period.
    Period(Period),
}

/// A background export as asked for with `POST /api/v1/exports`: a period (`from`, `to`, optionally
/// `org_id` and `product_id`) or a batch's trace (`batch_id`), in a format.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewExport {
    /// `csv`, `xlsx` or `epcis`.
    pub format: String,
    /// Start of the period: an RFC 3339 time, or a date (YYYY-MM-DD, from midnight China time).
    pub from: Option<String>,
    /// End of the period (exclusive): an RFC 3339 time, or a date (YYYY-MM-DD, that whole day included).
    pub to: Option<String>,
    /// Only events recorded by this organisation.
    pub org_id: Option<OrgId>,
    /// Only events on batches of this product.
    pub product_id: Option<ProductId>,
    /// Instead of a period: this batch's whole trace.
    pub batch_id: Option<BatchId>,
}

/// Which end of a period a date names: a date alone starts at midnight China time, and as the end it includes
/// that whole day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    Start,
    Finish,
}

fn period_bound(field: &str, text: &str, end: End) -> CoreResult<DateTime<Utc>> {
    let text = text.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(t.with_timezone(&Utc));
    }
    let day = NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|_| {
        CoreError::bad_request(
            "invalid_period",
            format!("{field} must be a date (YYYY-MM-DD) or an RFC 3339 time"),
        )
    })?;
    let day = match end {
        End::Start => Some(day),
        End::Finish => day.succ_opt(),
    };
    day.and_then(|d| d.and_hms_opt(0, 0, 0))
        .and_then(|d| china().from_local_datetime(&d).single())
        .map(|d| d.with_timezone(&Utc))
        .ok_or_else(|| CoreError::bad_request("invalid_period", format!("{field} is out of range")))
}

impl NewExport {
    /// The format and what the export covers (400 with a stable code when the request cannot be read as
    /// one export: an unknown format, a period that ends before it starts, neither or both of a period and
    /// a batch).
    pub fn validate(&self) -> CoreResult<(ExportFormat, ExportScope)> {
        let format = ExportFormat::from_request(&self.format)?;
        let period = self.from.is_some() || self.to.is_some();
        let filtered = self.org_id.is_some() || self.product_id.is_some();
        let scope = match (self.batch_id, period) {
            (Some(_), true) => {
                return Err(CoreError::bad_request(
                    "ambiguous_export",
                    "ask for a batch's trace (batch_id) or a period (from, to), not both",
                ))
            }
            (Some(_), false) if filtered => {
                return Err(CoreError::bad_request(
                    "ambiguous_export",
                    "org_id and product_id filter a period; a batch's trace is exported whole",
                ))
            }
            (Some(batch_id), false) => ExportScope::Trace { batch_id },
            (None, _) => {
                let (Some(from), Some(to)) = (&self.from, &self.to) else {
                    return Err(CoreError::bad_request(
                        "missing_period",
                        "give the period as from and to (or a batch_id for a batch's trace)",
                    ));
                };
                let from = period_bound("from", from, End::Start)?;
                let to = period_bound("to", to, End::Finish)?;
                if to <= from {
                    return Err(CoreError::bad_request(
                        "invalid_period",
                        format!(
                            "the period ends ({}) before it starts ({})",
                            to.to_rfc3339(),
                            from.to_rfc3339()
                        ),
                    ));
                }
                ExportScope::Period(Period {
                    from,
                    to,
                    org_id: self.org_id,
                    product_id: self.product_id,
                })
            }
        };
        Ok((format, scope))
    }
}

/// An export job's id.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
#[serde(transparent)]
#[schema(value_type = i64)]
pub struct ExportId(pub i64);

impl std::fmt::Display for ExportId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// A background export.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ExportJob {
    pub id: ExportId,
    /// Who asked; the export shows what this user may read.
    pub requested_by: UserId,
    pub org_id: OrgId,
    pub scope: ExportScope,
    pub format: ExportFormat,
    pub status: ExportStatus,
    /// Events written so far.
    pub rows_done: i64,
    /// Events to write, once counted.
    pub rows_total: Option<i64>,
    /// The file's name, once finished.
    pub file_name: Option<String>,
    /// The file's size in bytes, once finished.
    pub bytes: Option<i64>,
    /// Why it failed.
    pub error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    /// Last progress.
    pub updated_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

/// The most events one export writes: an XLSX sheet holds 1,048,576 rows, and a bigger file is better cut
/// into shorter periods.
pub const MAX_EXPORT_EVENTS: i64 = 1_000_000;

/// The most events a trace export answers within its request; a larger trace is exported in the background.
pub const MAX_TRACE_EVENTS_INLINE: i64 = 100_000;

#[cfg(test)]
mod tests {
    use super::*;

    fn ask(format: &str, from: Option<&str>, to: Option<&str>) -> NewExport {
        NewExport {
            format: format.into(),
            from: from.map(Into::into),
            to: to.map(Into::into),
            org_id: None,
            product_id: None,
            batch_id: None,
        }
    }

    fn code(e: CoreError) -> &'static str {
        e.code()
    }

    #[test]
    fn periods_are_read_in_china_time() {
        let (format, scope) = ask("xlsx", Some("2026-10-01"), Some("2026-10-31"))
            .validate()
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(format, ExportFormat::Xlsx);
        let ExportScope::Period(p) = scope else {
            panic!("a period")
        };
        assert_eq!(p.from.to_rfc3339(), "2026-09-30T16:00:00+00:00");
        assert_eq!(p.to.to_rfc3339(), "2026-10-31T16:00:00+00:00");
        let (_, scope) = ask(
            "csv",
            Some("2026-10-01T08:00:00+08:00"),
            Some("2026-10-01T09:00:00Z"),
        )
        .validate()
        .unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(scope, ExportScope::Period(_)));
    }

    #[test]
    fn bad_requests_have_stable_codes() {
        let err = |r: NewExport| code(r.validate().err().unwrap_or_else(|| panic!("refused")));
        assert_eq!(
            err(ask("pdf", Some("2026-10-01"), Some("2026-10-02"))),
            "unknown_format"
        );
        assert_eq!(
            err(ask(
                "csv",
                Some("2026-10-02"),
                Some("2026-10-01T00:00:00+08:00")
            )),
            "invalid_period"
        );
        assert_eq!(
            err(ask("csv", Some("yesterday"), Some("2026-10-01"))),
            "invalid_period"
        );
        assert_eq!(err(ask("csv", Some("2026-10-01"), None)), "missing_period");
        let mut both = ask("csv", Some("2026-10-01"), Some("2026-10-02"));
        both.batch_id = Some(BatchId(1));
        assert_eq!(err(both), "ambiguous_export");
        // A single day is a valid period: from its midnight to the next.
        assert!(ask("epcis", Some("2026-10-01"), Some("2026-10-01"))
            .validate()
            .is_ok());
    }
}
