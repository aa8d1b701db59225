//! Alerts raised by rules, for the organisation concerned and for regulators.

use serde::Serialize;
use utoipa::ToSchema;

use crate::{AlertId, BatchId, OrgId, RecordId};

/// An alert; open while `closed_at` is empty.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Alert {
    pub id: AlertId,
    /// Stable code, e.g. `harvest_within_phi`, `inspection_failed`, `recall`.
    pub kind: String,
    /// `info`, `warning` or `critical`.
    pub severity: String,
    pub org_id: Option<OrgId>,
    pub batch_id: Option<BatchId>,
    pub record_id: Option<RecordId>,
    pub message: String,
    pub opened_at: chrono::DateTime<chrono::Utc>,
    pub closed_at: Option<chrono::DateTime<chrono::Utc>>,
    /// IoT alerts: the site, device and rule that raised it, the metric and the value that crossed.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<i64>)]
    pub site_id: Option<crate::SiteId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device_id: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule_id: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metric: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    /// Raised by late backfill (readings that arrived long after they were taken), not a live alarm.
    pub late: bool,
}
