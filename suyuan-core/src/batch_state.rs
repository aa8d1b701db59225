//! The part of a batch's row that its records decide: status (blocked, released, recalled) and custody.
//!
//! These rules live here once, as pure functions over records as stored, so that the write path
//! (`store::records`, `store::recall`, `store::lineage`) and the verifier (`store::verify`) cannot drift
//! apart: the writer moves a batch's row from [`BatchState`] to [`BatchState`] with [`BatchState::apply`], and
//! `suyuan verify chain` folds the same function over the chain and compares the result with the row. A row
//! edited behind the platform's back (a recalled batch set back to open, a block lifted) then shows up as a
//! mismatch even though every record's hash still holds.

use serde::Serialize;

use crate::model::{Batch, BatchStatus, RecordDetails, Verdict};
use crate::{BatchId, OrgId};

/// Flag (and status reason) of a harvest inside a spraying's pre-harvest interval.
pub const HARVEST_WITHIN_PHI: &str = "harvest_within_phi";
/// Flag (and status reason) of a failed inspection.
pub const INSPECTION_FAILED: &str = "inspection_failed";
/// Status reason of a batch made from a blocked input.
pub const INPUT_BLOCKED: &str = "input_blocked";

/// The derived columns of a batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BatchState {
    pub status: BatchStatus,
    pub status_reason: Option<String>,
    pub custodian_org_id: OrgId,
    pub in_transit_to_org_id: Option<OrgId>,
}

/// What one stored record does to its batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// A rule holds the batch (the reason is the flag that says why).
    Block(&'static str),
    /// An inspection passed: a held batch is released.
    Release,
    /// Shipped: in transit to an organisation.
    ShipTo(OrgId),
    /// Received by the writer's organisation, which now holds the batch.
    ReceivedBy(OrgId),
    /// Recalled, from the origin batch (whose lot code the status reason names).
    Recall { origin: BatchId, reason: String },
}

/// The effects of a record as stored: its details, the flags the rules set on it, the writer's organisation.
/// The flags carry the decisions that needed other data at write time (a harvest inside an interval), so the
/// record alone says what it did.
pub fn effects(details: &RecordDetails, flags: &[String], writer: OrgId) -> Vec<Effect> {
    let mut out = Vec::new();
    for flag in flags {
        match flag.as_str() {
            HARVEST_WITHIN_PHI => out.push(Effect::Block(HARVEST_WITHIN_PHI)),
            INSPECTION_FAILED => out.push(Effect::Block(INSPECTION_FAILED)),
            _ => {}
        }
    }
    match details {
        RecordDetails::Inspection(i) if i.overall == Verdict::Pass => out.push(Effect::Release),
        RecordDetails::Shipping(s) => out.push(Effect::ShipTo(s.to_org_id)),
        RecordDetails::Receiving(_) => out.push(Effect::ReceivedBy(writer)),
        RecordDetails::Recall(r) => out.push(Effect::Recall {
            origin: r.origin_batch_id,
            reason: r.reason.clone(),
        }),
        _ => {}
    }
    out
}

/// The status reason of a recalled batch.
pub fn recall_reason(origin_lot_code: &str, reason: &str) -> String {
    format!("召回 recalled (batch {origin_lot_code}): {reason}")
}

impl BatchState {
    /// A new batch, held by the organisation that made it; blocked when made from a blocked input.
    pub fn new(org: OrgId, input_blocked: bool) -> Self {
        BatchState {
            status: if input_blocked {
                BatchStatus::Blocked
            } else {
                BatchStatus::Open
            },
            status_reason: input_blocked.then(|| INPUT_BLOCKED.to_owned()),
            custodian_org_id: org,
            in_transit_to_org_id: None,
        }
    }

    /// The derived columns of a batch as stored.
    pub fn of(batch: &Batch) -> Self {
        BatchState {
            status: batch.status,
            status_reason: batch.status_reason.clone(),
            custodian_org_id: batch.custodian_org_id,
            in_transit_to_org_id: batch.in_transit_to_org_id,
        }
    }

    /// The state after one effect. `lot_code` names a recall's origin batch (for the status reason).
    pub fn apply(&mut self, effect: &Effect, lot_code: impl FnOnce(BatchId) -> String) {
        match effect {
            // A recall is final: no rule lifts or replaces it.
            Effect::Block(reason) => {
                if self.status != BatchStatus::Recalled {
                    self.status = BatchStatus::Blocked;
                    self.status_reason = Some((*reason).to_owned());
                }
            }
            Effect::Release => {
                if self.status == BatchStatus::Blocked {
                    self.status = BatchStatus::Open;
                    self.status_reason = None;
                }
            }
            Effect::ShipTo(to) => self.in_transit_to_org_id = Some(*to),
            Effect::ReceivedBy(by) => {
                self.custodian_org_id = *by;
                self.in_transit_to_org_id = None;
            }
            Effect::Recall { origin, reason } => {
                self.status = BatchStatus::Recalled;
                self.status_reason = Some(recall_reason(&lot_code(*origin), reason));
            }
        }
    }

    /// The columns that differ from `other`, by name, each with (this value, other value) as text.
    pub fn differences(&self, other: &BatchState) -> Vec<(&'static str, String, String)> {
        fn opt<T: std::fmt::Display>(v: &Option<T>) -> String {
            v.as_ref()
                .map_or_else(|| "none".to_owned(), |v| v.to_string())
        }
        let mut out = Vec::new();
        if self.status != other.status {
            out.push(("status", self.status.to_string(), other.status.to_string()));
        }
        if self.status_reason != other.status_reason {
            out.push((
                "status_reason",
                opt(&self.status_reason),
                opt(&other.status_reason),
            ));
        }
        if self.custodian_org_id != other.custodian_org_id {
            out.push((
                "custodian_org_id",
                self.custodian_org_id.to_string(),
                other.custodian_org_id.to_string(),
            ));
        }
        if self.in_transit_to_org_id != other.in_transit_to_org_id {
            out.push((
                "in_transit_to_org_id",
                opt(&self.in_transit_to_org_id),
                opt(&other.in_transit_to_org_id),
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Inspection, Note};

    fn inspection(overall: Verdict) -> RecordDetails {
        RecordDetails::Inspection(Inspection {
            method: "rapid_test".into(),
            items: Vec::new(),
            report_number: None,
            overall,
        })
    }

    #[test]
    fn a_recall_is_not_lifted_by_a_passed_inspection_nor_replaced_by_a_block() {
        let mut s = BatchState::new(OrgId(1), false);
        let lot = |_| "L1".to_owned();
        for fx in effects(
            &inspection(Verdict::Fail),
            &[INSPECTION_FAILED.into()],
            OrgId(1),
        ) {
            s.apply(&fx, lot);
        }
        assert_eq!(s.status, BatchStatus::Blocked);
        let recall = RecordDetails::Recall(crate::model::Recall {
            reason: "农残超标".into(),
            origin_batch_id: BatchId(1),
        });
        for details in [
            recall,
            inspection(Verdict::Pass),
            RecordDetails::Note(Note { text: "x".into() }),
        ] {
            for fx in effects(&details, &[], OrgId(1)) {
                s.apply(&fx, lot);
            }
        }
        assert_eq!(s.status, BatchStatus::Recalled);
        assert_eq!(
            s.status_reason.as_deref(),
            Some("召回 recalled (batch L1): 农残超标")
        );
    }
}
