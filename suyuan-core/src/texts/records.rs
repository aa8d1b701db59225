//! The words of the record rules' alerts (pre-harvest interval, inspection, recall) and of a recalled
//! batch's status reason, as stored.

use crate::rules::records::PhiViolation;

/// A harvest inside the pre-harvest interval of these sprayings.
pub fn harvest_within_phi(violations: &[PhiViolation]) -> String {
    let lines: Vec<String> = violations
        .iter()
        .map(|v| {
            format!(
                "{} ({}) sprayed {}, interval {} days, safe from {}",
                v.pesticide_name,
                v.registration_number,
                v.sprayed_at.format("%Y-%m-%d"),
                v.interval_days,
                v.safe_from.format("%Y-%m-%d"),
            )
        })
        .collect();
    format!(
        "采收早于安全间隔期 harvested within the pre-harvest interval: {}",
        lines.join("; ")
    )
}

/// A failed inspection, naming the items that failed.
pub fn inspection_failed(items: &[String]) -> String {
    format!("检测不合格 inspection failed: {}", items.join(", "))
}

/// The alert of a recall of a batch and what was made from it.
pub fn recall_alert(origin_lot_code: &str, downstream: usize, reason: &str) -> String {
    format!("召回 recall of batch {origin_lot_code} and {downstream} downstream batches: {reason}")
}

/// The status reason of a recalled batch.
pub fn recall_reason(origin_lot_code: &str, reason: &str) -> String {
    format!("召回 recalled (batch {origin_lot_code}): {reason}")
}
