//! Alerts raised by rules, for the organisation concerned and for regulators.
//!
//! Every kind of alert the platform can raise is one [`AlertKind`], with its [`Severity`] fixed by the
//! kind: a dashboard filters and counts on them, and a new rule cannot invent a spelling. What an alert
//! says to a person is worded in [`crate::texts`], not where the rule decides.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::{AlertId, BatchId, OrgId, RecordId};

/// How urgent an alert is.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Info,
    Warning,
    Critical,
}

impl Severity {
    /// The stable code stored and served.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }
}

/// Every alert the rules raise, by stable code.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    /// A harvest inside a spraying's pre-harvest interval: the batch is held.
    HarvestWithinPhi,
    /// A failed inspection: the batch is held until a passing one.
    InspectionFailed,
    /// A batch was recalled.
    Recall,
    /// Many invalid (forged or damaged) codes scanned from one place.
    ForgeryAttempts,
    /// A validly signed code that was never minted: a signing key may have leaked.
    LabelNeverMinted,
    /// A minted label scanned before it was bound to a batch.
    LabelNotActivated,
    /// A voided label scanned.
    VoidLabelScanned,
    /// One label scanned by more distinct devices than a package has buyers.
    LabelManyDevices,
    /// One label scanned in two places too far apart for the time between.
    LabelImpossibleTravel,
    /// A label scanned outside its product's distribution area.
    LabelOutsideArea,
    /// A sensor's metric out of its allowed range for long enough.
    SensorThreshold,
    /// A device silent for longer than its rule allows.
    SensorNoData,
}

impl AlertKind {
    /// Every kind, in a fixed order (for filters and tests).
    pub const ALL: [AlertKind; 12] = [
        AlertKind::HarvestWithinPhi,
        AlertKind::InspectionFailed,
        AlertKind::Recall,
        AlertKind::ForgeryAttempts,
        AlertKind::LabelNeverMinted,
        AlertKind::LabelNotActivated,
        AlertKind::VoidLabelScanned,
        AlertKind::LabelManyDevices,
        AlertKind::LabelImpossibleTravel,
        AlertKind::LabelOutsideArea,
        AlertKind::SensorThreshold,
        AlertKind::SensorNoData,
    ];

    /// The stable code stored and served.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertKind::HarvestWithinPhi => "harvest_within_phi",
            AlertKind::InspectionFailed => "inspection_failed",
            AlertKind::Recall => "recall",
            AlertKind::ForgeryAttempts => "forgery_attempts",
            AlertKind::LabelNeverMinted => "label_never_minted",
            AlertKind::LabelNotActivated => "label_not_activated",
            AlertKind::VoidLabelScanned => "void_label_scanned",
            AlertKind::LabelManyDevices => "label_many_devices",
            AlertKind::LabelImpossibleTravel => "label_impossible_travel",
            AlertKind::LabelOutsideArea => "label_outside_area",
            AlertKind::SensorThreshold => "sensor_threshold",
            AlertKind::SensorNoData => "sensor_no_data",
        }
    }

    /// How urgent an alert of this kind is: a held batch, a recall, forgery and a leaked key or a cold
    /// chain broken are critical; the rest need a look.
    pub fn severity(self) -> Severity {
        match self {
            AlertKind::HarvestWithinPhi
            | AlertKind::InspectionFailed
            | AlertKind::Recall
            | AlertKind::ForgeryAttempts
            | AlertKind::LabelNeverMinted
            | AlertKind::SensorThreshold => Severity::Critical,
            AlertKind::LabelNotActivated
            | AlertKind::VoidLabelScanned
            | AlertKind::LabelManyDevices
            | AlertKind::LabelImpossibleTravel
            | AlertKind::LabelOutsideArea
            | AlertKind::SensorNoData => Severity::Warning,
        }
    }
}

impl fmt::Display for AlertKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An unknown alert code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown alert kind: {0}")]
pub struct UnknownAlertKind(pub String);

impl FromStr for AlertKind {
    type Err = UnknownAlertKind;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        AlertKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| UnknownAlertKind(s.to_owned()))
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_reads_back_from_its_code() {
        for kind in AlertKind::ALL {
            assert_eq!(kind.as_str().parse::<AlertKind>(), Ok(kind));
            assert_eq!(
                serde_json::to_value(kind).ok(),
                Some(serde_json::json!(kind.as_str()))
            );
        }
        assert_eq!(
            "no_such_alert".parse::<AlertKind>(),
            Err(UnknownAlertKind("no_such_alert".into()))
        );
    }
}
