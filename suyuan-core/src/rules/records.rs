//! What a record does to its batch: pre-harvest interval, inspection block and release, custody, recall.
//!
//! Two halves, both pure:
//! - before a record is stored, [`decide`] checks it against what the store loaded for it ([`Loaded`]: the
//!   sprayings behind a harvest, a shipment's destination, a correction's target) and returns the flags the
//!   record carries and the alerts to open or close; a refusal is the error a capture answers with;
//! - once stored, a record moves its batch's row ([`BatchState`]) by [`effects`] alone: its details, its
//!   flags and its writer. The writer (`store::records`, `store::recall`, `store::lineage`) and the verifier
//!   (`store::verify`) fold the same function, so a row edited behind the platform's back (a recalled batch
//!   set back to open, a block lifted) shows up as a mismatch even though every record's hash still holds.
//!
//! Who may write which kind of record on a batch is [`crate::policy::ensure_write_record`]; custody moves here
//! ([`Effect::ShipTo`], [`Effect::ReceivedBy`]), so the two together say who may record on a batch in which
//! state. The words of the alerts and of a recall's status reason are in [`crate::texts::records`].

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

use crate::error::{CoreError, CoreResult};
use crate::model::{
    AlertKind, Batch, BatchStatus, CorrectedRecord, CorrectionState, Record, RecordDetails,
    Spraying, Verdict,
};
use crate::texts;
use crate::{BatchId, OrgId};

/// Flag (and status reason) of a harvest inside a spraying's pre-harvest interval.
pub const HARVEST_WITHIN_PHI: &str = "harvest_within_phi";
/// Flag (and status reason) of a failed inspection.
pub const INSPECTION_FAILED: &str = "inspection_failed";
/// Status reason of a batch made from a blocked input.
pub const INPUT_BLOCKED: &str = "input_blocked";

// ---------------------------------------------------------------------------------------------------------
// Before a record is stored.

/// A spraying that counts for the pre-harvest interval: on the batch or anything it came from, as corrected,
/// not retracted.
#[derive(Debug, Clone, PartialEq)]
pub struct SprayingDone {
    pub at: DateTime<Utc>,
    pub spraying: Spraying,
}

/// The sprayings among a lineage's records in the corrected view (retracted ones do not count).
pub fn sprayings_in(records: impl IntoIterator<Item = CorrectedRecord>) -> Vec<SprayingDone> {
    records
        .into_iter()
        .filter(|r| r.state != CorrectionState::Retracted)
        .filter_map(|r| match r.record.details {
            RecordDetails::Spraying(s) => Some(SprayingDone {
                at: r.record.event_time,
                spraying: s,
            }),
            _ => None,
        })
        .collect()
}

/// A spraying whose pre-harvest interval had not passed when the batch was harvested.
#[derive(Debug, Clone, PartialEq)]
pub struct PhiViolation {
    pub pesticide_name: String,
    pub registration_number: String,
    pub sprayed_at: DateTime<Utc>,
    pub interval_days: u32,
    pub safe_from: DateTime<Utc>,
}

/// The sprayings whose interval has not passed at `harvest` (a spraying after the harvest does not count).
pub fn phi_violations(sprayings: &[SprayingDone], harvest: DateTime<Utc>) -> Vec<PhiViolation> {
    sprayings
        .iter()
        .filter_map(|s| {
            let safe_from = s.at + Duration::days(i64::from(s.spraying.pre_harvest_interval_days));
            (s.at <= harvest && harvest < safe_from).then(|| PhiViolation {
                pesticide_name: s.spraying.pesticide_name.clone(),
                registration_number: s.spraying.registration_number.clone(),
                sprayed_at: s.at,
                interval_days: s.spraying.pre_harvest_interval_days,
                safe_from,
            })
        })
        .collect()
}

/// What the store read for a record's rules, by kind; records of other kinds need nothing.
#[derive(Debug, Clone)]
pub enum Loaded {
    /// Nothing beyond the batch.
    Nothing,
    /// A harvest: the sprayings on the batch and everything it came from.
    Harvest { sprayings: Vec<SprayingDone> },
    /// A shipment: the destination organisation (it exists) and, when the shipment names a site, the
    /// organisation of that site (`None`: no such site).
    Shipping {
        to_org: OrgId,
        to_site_org: Option<Option<OrgId>>,
    },
    /// A correction: the record it supersedes (it exists).
    Correction { target: Box<Record> },
}

/// A record about to be written on a batch.
#[derive(Debug, Clone, Copy)]
pub struct NewRecordEvent<'a> {
    pub batch: &'a Batch,
    /// The writer's organisation.
    pub writer: OrgId,
    pub event_time: DateTime<Utc>,
    pub details: &'a RecordDetails,
}

/// An alert a record's rules raise, with the facts its message is made of.
#[derive(Debug, Clone, PartialEq)]
pub enum RecordAlert {
    /// A harvest inside the interval of these sprayings.
    HarvestWithinPhi(Vec<PhiViolation>),
    /// A failed inspection, with the names of the items that failed.
    InspectionFailed(Vec<String>),
}

impl RecordAlert {
    pub fn kind(&self) -> AlertKind {
        match self {
            RecordAlert::HarvestWithinPhi(_) => AlertKind::HarvestWithinPhi,
            RecordAlert::InspectionFailed(_) => AlertKind::InspectionFailed,
        }
    }

    /// What the alert says, as stored.
    pub fn message(&self) -> String {
        match self {
            RecordAlert::HarvestWithinPhi(v) => texts::records::harvest_within_phi(v),
            RecordAlert::InspectionFailed(items) => texts::records::inspection_failed(items),
        }
    }
}

/// What the rules decided about a record before it is stored.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Decision {
    /// Flags stored on the record: the decisions that needed other data, so the record alone says what it did.
    pub flags: Vec<String>,
    /// An alert to open on the batch once the record is stored.
    pub open: Option<RecordAlert>,
    /// A passed inspection: the batch's open holds ([`HOLDS`]) close.
    pub close_holds: bool,
}

/// The alert kinds that hold a batch until a passing inspection.
pub const HOLDS: [AlertKind; 2] = [AlertKind::HarvestWithinPhi, AlertKind::InspectionFailed];

/// The write-time rules of one record. An error refuses the record (the store answers with it).
pub fn decide(event: NewRecordEvent<'_>, loaded: &Loaded) -> CoreResult<Decision> {
    let mut out = Decision::default();
    match (event.details, loaded) {
        (RecordDetails::Harvest(_), Loaded::Harvest { sprayings }) => {
            let violations = phi_violations(sprayings, event.event_time);
            if !violations.is_empty() {
                out.flags.push(HARVEST_WITHIN_PHI.into());
                out.open = Some(RecordAlert::HarvestWithinPhi(violations));
            }
        }
        (RecordDetails::Inspection(i), _) => match i.overall {
            Verdict::Fail => {
                let failed = i
                    .items
                    .iter()
                    .filter(|x| x.result == Verdict::Fail)
                    .map(|x| x.name.clone())
                    .collect();
                out.flags.push(INSPECTION_FAILED.into());
                out.open = Some(RecordAlert::InspectionFailed(failed));
            }
            Verdict::Pass => out.close_holds = true,
        },
        (
            RecordDetails::Shipping(_),
            Loaded::Shipping {
                to_org,
                to_site_org,
            },
        ) => shipment(event.batch, *to_org, *to_site_org)?,
        (RecordDetails::Correction(c), Loaded::Correction { target }) => {
            correction(event, c.replacement.as_deref(), target)?
        }
        (
            RecordDetails::Harvest(_) | RecordDetails::Shipping(_) | RecordDetails::Correction(_),
            _,
        ) => {
            return Err(CoreError::Internal(format!(
                "the rules of a {} record were called without what they read",
                event.details.kind()
            )))
        }
        _ => {}
    }
    Ok(out)
}

/// Custody: a batch is shipped to another organisation than the one holding it, and a named destination
/// site belongs to the destination organisation.
fn shipment(batch: &Batch, to_org: OrgId, to_site_org: Option<Option<OrgId>>) -> CoreResult<()> {
    if to_org == batch.custodian_org_id {
        return Err(CoreError::invalid(
            "invalid_shipment",
            "a batch cannot be shipped to the organisation holding it",
        ));
    }
    match to_site_org {
        None => Ok(()),
        Some(None) => Err(CoreError::NotFound { what: "site" }),
        Some(Some(org)) if org != to_org => Err(CoreError::invalid(
            "invalid_shipment",
            "to_site_id is not a site of to_org_id",
        )),
        Some(Some(_)) => Ok(()),
    }
}

/// A correction is recorded on its target's batch, by its target's organisation, on an original record
/// (not a correction or a recall), with a replacement of the same kind.
fn correction(
    event: NewRecordEvent<'_>,
    replacement: Option<&RecordDetails>,
    target: &Record,
) -> CoreResult<()> {
    if target.batch_id != event.batch.id {
        return Err(CoreError::invalid(
            "invalid_correction",
            "a correction must be recorded on the batch of the record it corrects",
        ));
    }
    if matches!(
        target.details,
        RecordDetails::Correction(_) | RecordDetails::Recall(_)
    ) {
        return Err(CoreError::invalid(
            "invalid_correction",
            "corrections and recalls cannot be corrected; correct the original record",
        ));
    }
    if target.org_id != event.writer {
        return Err(CoreError::forbidden(
            "only the organisation that wrote a record may correct it",
        ));
    }
    if let Some(rep) = replacement {
        if rep.kind() != target.details.kind() {
            return Err(CoreError::invalid(
                "invalid_correction",
                format!("the replacement must be a {} record", target.details.kind()),
            ));
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------------------
// Recall.

/// What a recall of `origin` and everything made from it does.
#[derive(Debug, Clone, PartialEq)]
pub struct RecallPlan {
    /// Batches to mark recalled, the origin first.
    pub recalled: Vec<BatchId>,
    /// Batches recalled before, left as they are.
    pub already_recalled: Vec<BatchId>,
    /// The status reason of every recalled batch.
    pub status_reason: String,
    /// The alert's message, for the origin batch's organisation.
    pub alert_message: String,
}

/// A recall of `origin` with `downstream` (every batch made from it, in order): refused when the origin was
/// recalled already; batches recalled before are reported, not recalled again.
pub fn recall(origin: &Batch, downstream: &[&Batch], reason: &str) -> CoreResult<RecallPlan> {
    if origin.status == BatchStatus::Recalled {
        return Err(CoreError::conflict(
            "already_recalled",
            format!(
                "batch {} was already recalled: {}",
                origin.lot_code,
                origin.status_reason.as_deref().unwrap_or_default()
            ),
        ));
    }
    let (already, recalled): (Vec<&Batch>, Vec<&Batch>) = std::iter::once(origin)
        .chain(downstream.iter().copied())
        .partition(|b| b.status == BatchStatus::Recalled);
    Ok(RecallPlan {
        alert_message: texts::records::recall_alert(
            &origin.lot_code,
            recalled.len().saturating_sub(1),
            reason,
        ),
        recalled: recalled.iter().map(|b| b.id).collect(),
        already_recalled: already.iter().map(|b| b.id).collect(),
        status_reason: texts::records::recall_reason(&origin.lot_code, reason),
    })
}

// ---------------------------------------------------------------------------------------------------------
// Once a record is stored.

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
                self.status_reason =
                    Some(texts::records::recall_reason(&lot_code(*origin), reason));
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
    use chrono::TimeZone;

    use super::*;
    use crate::model::{
        Actor, Correction, Harvest, Inspection, InspectionItem, Note, Receiving, RecordKind, Role,
        Shipping,
    };
    use crate::policy::{self, BatchRelation};
    use crate::{ProductId, RecordId, UserId};

    const FARM: OrgId = OrgId(1);
    const PACKER: OrgId = OrgId(2);
    const OTHER: OrgId = OrgId(3);

    fn day(d: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 5, d, 8, 0, 0)
            .single()
            .unwrap_or_default()
    }

    fn batch(id: i64, status: BatchStatus) -> Batch {
        Batch {
            id: BatchId(id),
            org_id: FARM,
            product_id: ProductId(1),
            lot_code: format!("L{id}"),
            quantity: 100.0,
            unit: "kg".into(),
            status,
            status_reason: None,
            origin_site_id: None,
            custodian_org_id: FARM,
            in_transit_to_org_id: None,
            record_count: 0,
            head_hash: String::new(),
            created_at: day(1),
        }
    }

    fn sprayed(at: DateTime<Utc>, days: u32) -> SprayingDone {
        SprayingDone {
            at,
            spraying: Spraying {
                pesticide_name: "阿维菌素".into(),
                registration_number: "PD20080001".into(),
                active_ingredient: "阿维菌素 1.8%".into(),
                dose: 30.0,
                dose_unit: "ml/亩".into(),
                pre_harvest_interval_days: days,
                target: None,
            },
        }
    }

    fn harvest() -> RecordDetails {
        RecordDetails::Harvest(Harvest {
            quantity: 90.0,
            unit: "kg".into(),
        })
    }

    fn inspection(overall: Verdict) -> RecordDetails {
        RecordDetails::Inspection(Inspection {
            method: "rapid_test".into(),
            items: vec![InspectionItem {
                name: "毒死蜱".into(),
                value: 0.1,
                unit: "mg/kg".into(),
                limit: 0.05,
                result: overall,
            }],
            report_number: None,
            overall,
        })
    }

    fn shipping(to: OrgId) -> RecordDetails {
        RecordDetails::Shipping(Shipping {
            to_org_id: to,
            to_site_id: None,
            carrier: None,
            vehicle_plate: None,
            quantity: None,
            unit: None,
        })
    }

    fn event<'a>(
        batch: &'a Batch,
        at: DateTime<Utc>,
        details: &'a RecordDetails,
    ) -> NewRecordEvent<'a> {
        NewRecordEvent {
            batch,
            writer: FARM,
            event_time: at,
            details,
        }
    }

    /// Decides, then folds the stored record into the state, as the store does.
    fn write(state: &mut BatchState, writer: OrgId, details: &RecordDetails, d: &Decision) {
        for fx in effects(details, &d.flags, writer) {
            state.apply(&fx, |id| format!("L{}", id.0));
        }
    }

    #[test]
    fn plain_records_need_nothing_loaded_and_decide_nothing() {
        let b = batch(1, BatchStatus::Open);
        let spraying = RecordDetails::Spraying(sprayed(day(1), 14).spraying);
        let note = RecordDetails::Note(Note { text: "x".into() });
        for details in [spraying, note] {
            assert!(details.kind().is_plain());
            let d = decide(event(&b, day(2), &details), &Loaded::Nothing);
            assert_eq!(d.ok(), Some(Decision::default()));
            assert!(effects(&details, &[], FARM).is_empty());
        }
        for ruled in [harvest(), inspection(Verdict::Pass), shipping(PACKER)] {
            assert!(!ruled.kind().is_plain());
        }
    }

    #[test]
    fn a_harvest_inside_a_sprayings_interval_is_flagged_and_holds_the_batch() {
        let b = batch(1, BatchStatus::Open);
        let loaded = Loaded::Harvest {
            sprayings: vec![sprayed(day(1), 14)],
        };
        let details = harvest();
        let d = decide(event(&b, day(10), &details), &loaded).unwrap_or_default();
        assert_eq!(d.flags, [HARVEST_WITHIN_PHI]);
        let alert = d.open.clone().expect("an alert");
        assert_eq!(alert.kind(), AlertKind::HarvestWithinPhi);
        assert_eq!(
            alert.message(),
            "采收早于安全间隔期 harvested within the pre-harvest interval: \
             阿维菌素 (PD20080001) sprayed 2026-05-01, interval 14 days, safe from 2026-05-15"
        );
        let mut state = BatchState::of(&b);
        write(&mut state, FARM, &details, &d);
        assert_eq!(state.status, BatchStatus::Blocked);
        assert_eq!(state.status_reason.as_deref(), Some(HARVEST_WITHIN_PHI));
    }

    #[test]
    fn a_harvest_after_the_interval_or_before_the_spraying_is_not_flagged() {
        let b = batch(1, BatchStatus::Open);
        let loaded = Loaded::Harvest {
            sprayings: vec![sprayed(day(1), 7), sprayed(day(20), 14)],
        };
        // Day 8 is exactly when the first interval ends; the second spraying came after the harvest.
        let details = harvest();
        let d = decide(event(&b, day(8), &details), &loaded);
        assert_eq!(d.ok(), Some(Decision::default()));
    }

    #[test]
    fn a_retracted_spraying_does_not_count() {
        let record = |state| CorrectedRecord {
            record: Record {
                id: RecordId(1),
                client_id: uuid::Uuid::nil(),
                batch_id: BatchId(1),
                seq: 1,
                event_time: day(1),
                received_at: day(1),
                site_id: None,
                actor_user_id: UserId(1),
                org_id: FARM,
                details: RecordDetails::Spraying(sprayed(day(1), 14).spraying),
                attachments: Vec::new(),
                flags: Vec::new(),
                supersedes: None,
                prev_hash: String::new(),
                hash: String::new(),
            },
            state,
            corrections: Vec::new(),
            original_details: None,
        };
        assert_eq!(sprayings_in([record(CorrectionState::Original)]).len(), 1);
        assert!(sprayings_in([record(CorrectionState::Retracted)]).is_empty());
    }

    #[test]
    fn a_failed_inspection_holds_the_batch_and_a_passed_one_releases_it() {
        let b = batch(1, BatchStatus::Open);
        let mut state = BatchState::of(&b);
        let failed = inspection(Verdict::Fail);
        let d = decide(event(&b, day(2), &failed), &Loaded::Nothing).unwrap_or_default();
        assert_eq!(d.flags, [INSPECTION_FAILED]);
        assert_eq!(
            d.open.as_ref().map(RecordAlert::message).as_deref(),
            Some("检测不合格 inspection failed: 毒死蜱")
        );
        write(&mut state, PACKER, &failed, &d);
        assert_eq!(
            (state.status, state.status_reason.as_deref()),
            (BatchStatus::Blocked, Some(INSPECTION_FAILED))
        );

        let passed = inspection(Verdict::Pass);
        let d = decide(event(&b, day(3), &passed), &Loaded::Nothing).unwrap_or_default();
        assert!(d.close_holds && d.open.is_none() && d.flags.is_empty());
        write(&mut state, PACKER, &passed, &d);
        assert_eq!(
            (state.status, state.status_reason),
            (BatchStatus::Open, None)
        );
    }

    #[test]
    fn a_passed_inspection_or_a_note_does_not_hold_the_batch() {
        let b = batch(1, BatchStatus::Open);
        let mut state = BatchState::of(&b);
        for details in [
            inspection(Verdict::Pass),
            RecordDetails::Note(Note { text: "x".into() }),
        ] {
            let d = decide(event(&b, day(2), &details), &Loaded::Nothing).unwrap_or_default();
            assert!(d.open.is_none() && d.flags.is_empty());
            write(&mut state, FARM, &details, &d);
        }
        assert_eq!(state, BatchState::of(&b));
    }

    #[test]
    fn custody_moves_with_shipping_and_receiving_and_decides_who_records() {
        let mut b = batch(1, BatchStatus::Open);
        let farmer = Actor {
            user_id: UserId(1),
            org_id: FARM,
            role: Role::Farmer,
        };
        let packer = Actor {
            user_id: UserId(2),
            org_id: PACKER,
            role: Role::Processor,
        };
        let stranger = Actor {
            user_id: UserId(3),
            org_id: OTHER,
            role: Role::Processor,
        };
        let rel = BatchRelation::default();
        let may = |a: &Actor, b: &Batch, k| policy::ensure_write_record(a, b, k, rel).is_ok();
        assert!(may(&farmer, &b, RecordKind::Note));
        assert!(!may(&packer, &b, RecordKind::Note));
        assert!(!may(&packer, &b, RecordKind::Receiving));

        let ship = shipping(PACKER);
        let loaded = Loaded::Shipping {
            to_org: PACKER,
            to_site_org: Some(Some(PACKER)),
        };
        let d = decide(event(&b, day(2), &ship), &loaded).unwrap_or_default();
        let mut state = BatchState::of(&b);
        write(&mut state, FARM, &ship, &d);
        assert_eq!(state.in_transit_to_org_id, Some(PACKER));
        b.in_transit_to_org_id = state.in_transit_to_org_id;
        assert!(may(&packer, &b, RecordKind::Receiving));
        assert!(!may(&stranger, &b, RecordKind::Receiving));

        let received = RecordDetails::Receiving(Receiving {
            quantity: None,
            unit: None,
            condition: None,
        });
        write(&mut state, PACKER, &received, &Decision::default());
        assert_eq!(
            (state.custodian_org_id, state.in_transit_to_org_id),
            (PACKER, None)
        );
        b.custodian_org_id = state.custodian_org_id;
        b.in_transit_to_org_id = None;
        assert!(may(&packer, &b, RecordKind::Note));
        assert!(!may(&farmer, &b, RecordKind::Note));
    }

    #[test]
    fn a_shipment_to_the_holder_or_to_another_organisations_site_is_refused() {
        let b = batch(1, BatchStatus::Open);
        let code = |details: &RecordDetails, loaded: Loaded| {
            decide(event(&b, day(2), details), &loaded)
                .err()
                .map(|e| e.code().to_owned())
        };
        let to_self = Loaded::Shipping {
            to_org: FARM,
            to_site_org: None,
        };
        assert_eq!(
            code(&shipping(FARM), to_self).as_deref(),
            Some("invalid_shipment")
        );
        let foreign_site = Loaded::Shipping {
            to_org: PACKER,
            to_site_org: Some(Some(OTHER)),
        };
        assert_eq!(
            code(&shipping(PACKER), foreign_site).as_deref(),
            Some("invalid_shipment")
        );
        let no_site = Loaded::Shipping {
            to_org: PACKER,
            to_site_org: Some(None),
        };
        assert_eq!(
            code(&shipping(PACKER), no_site).as_deref(),
            Some("not_found")
        );
    }

    #[test]
    fn a_correction_is_checked_against_its_target() {
        let b = batch(1, BatchStatus::Open);
        let target = |batch: i64, org: OrgId, details: RecordDetails| Loaded::Correction {
            target: Box::new(Record {
                id: RecordId(7),
                client_id: uuid::Uuid::nil(),
                batch_id: BatchId(batch),
                seq: 1,
                event_time: day(1),
                received_at: day(1),
                site_id: None,
                actor_user_id: UserId(1),
                org_id: org,
                details,
                attachments: Vec::new(),
                flags: Vec::new(),
                supersedes: None,
                prev_hash: String::new(),
                hash: String::new(),
            }),
        };
        let correction = RecordDetails::Correction(Correction {
            supersedes: RecordId(7),
            reason: "记错了".into(),
            replacement: Some(Box::new(RecordDetails::Note(Note { text: "y".into() }))),
        });
        let note = || RecordDetails::Note(Note { text: "x".into() });
        let run = |loaded: Loaded| decide(event(&b, day(2), &correction), &loaded);
        assert!(run(target(1, FARM, note())).is_ok());
        for refused in [
            target(2, FARM, note()),
            target(1, OTHER, note()),
            target(1, FARM, harvest()),
        ] {
            assert!(run(refused).is_err());
        }
    }

    #[test]
    fn a_recall_reaches_downstream_batches_and_is_final() {
        let origin = batch(1, BatchStatus::Blocked);
        let made = batch(2, BatchStatus::Open);
        let mut earlier = batch(3, BatchStatus::Recalled);
        earlier.status_reason = Some("召回 recalled (batch L0): 早先".into());
        let plan = recall(&origin, &[&made, &earlier], "农残超标").expect("a plan");
        assert_eq!(plan.recalled, [BatchId(1), BatchId(2)]);
        assert_eq!(plan.already_recalled, [BatchId(3)]);
        assert_eq!(plan.status_reason, "召回 recalled (batch L1): 农残超标");
        assert_eq!(
            plan.alert_message,
            "召回 recall of batch L1 and 1 downstream batches: 农残超标"
        );

        // Recall records fold to the same status; neither a passed inspection nor a block lifts it.
        let mut state = BatchState::of(&made);
        let recall_record = RecordDetails::Recall(crate::model::Recall {
            reason: "农残超标".into(),
            origin_batch_id: BatchId(1),
        });
        for details in [
            recall_record,
            inspection(Verdict::Pass),
            inspection(Verdict::Fail),
        ] {
            let flags = match &details {
                RecordDetails::Inspection(i) if i.overall == Verdict::Fail => {
                    vec![INSPECTION_FAILED.to_owned()]
                }
                _ => Vec::new(),
            };
            for fx in effects(&details, &flags, FARM) {
                state.apply(&fx, |id| format!("L{}", id.0));
            }
        }
        assert_eq!(state.status, BatchStatus::Recalled);
        assert_eq!(
            state.status_reason.as_deref(),
            Some(plan.status_reason.as_str())
        );
    }

    #[test]
    fn a_batch_recalled_already_is_not_recalled_again() {
        let mut origin = batch(1, BatchStatus::Recalled);
        origin.status_reason = Some("召回 recalled (batch L1): 早先".into());
        let err = recall(&origin, &[], "again").err();
        assert_eq!(
            err.map(|e| e.code().to_owned()).as_deref(),
            Some("already_recalled")
        );
    }
}
