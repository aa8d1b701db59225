//! Exports: a batch's trace at once (`GET /batches/{id}/export`), or a period (or a large trace) in the
//! background (`POST /exports`), followed with `GET /exports/{id}` and downloaded from
//! `GET /exports/{id}/file`. Formats: `csv`, `xlsx` (the FSMA 204-style spreadsheet) and `epcis` (EPCIS 2.0
//! JSON-LD); see `suyuan_core::export`.

pub mod create;
pub mod file;
pub mod get;
pub mod trace;

use serde::Serialize;
use suyuan_core::model::{ExportJob, ExportStatus};
use utoipa::ToSchema;

/// An export as the API shows it: the job, how far it has got, and where its file is once finished.
#[derive(Debug, Serialize, ToSchema)]
pub struct ExportView {
    #[serde(flatten)]
    pub job: ExportJob,
    /// 0–100: events written of those counted.
    pub percent: f64,
    /// Where to download the file (same credentials), once finished.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub href: Option<String>,
}

impl From<ExportJob> for ExportView {
    fn from(job: ExportJob) -> Self {
        let percent = match (job.status, job.rows_total) {
            (ExportStatus::Finished, _) => 100.0,
            (_, Some(total)) if total > 0 => {
                ((job.rows_done as f64 / total as f64) * 1000.0).round() / 10.0
            }
            _ => 0.0,
        };
        let href = (job.status == ExportStatus::Finished)
            .then(|| format!("/api/v1/exports/{}/file", job.id));
        ExportView { job, percent, href }
    }
}

/// The `Content-Disposition` of an export's file.
pub(crate) fn attachment(name: &str) -> (&'static str, String) {
    (
        "Content-Disposition",
        format!("attachment; filename=\"{name}\""),
    )
}
