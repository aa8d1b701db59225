//! Tracking events: what a record (or a transformation) is when the platform hands its data to others, in the
//! terms of FDA FSMA 204 (critical tracking events and their key data elements) and of GS1 EPCIS.
//!
//! The rules of what an event is live here, beside the records they read:
//! - every record but a correction is one tracking event; a correction changes (or retracts) the event it
//!   supersedes, and the event keeps the whole history of its versions (see [`TrackedEvent::versions`]);
//! - the first record of a batch that a transformation made (the `processing` record that
//!   `store::lineage::transform` writes on each output) is that transformation's entry in the output's chain:
//!   the event is a [`TrackingEventType::Transformation`] of the output lot, with the transformation's inputs;
//! - a packing record on a lot no transformation made (produce as harvested) is the *initial packing*; later
//!   packing (of graded, merged or processed lots) is *packing*;
//! - a processing record whose operation is cooling (预冷, 冷却, cooling) is *cooling*;
//! - where the event happened: the record's site, for a harvest without one the lot's origin site, and the
//!   organisation that recorded it; a shipment goes from there to the organisation (and site) it names; a
//!   receipt comes from where the batch's latest shipment before it left.
//!
//! How these events are written out (spreadsheet rows, EPCIS JSON-LD) is `crate::export`'s business.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::enums::text_enum;
use super::{
    Batch, CorrectionState, LineageKind, Organisation, Product, Record, RecordDetails, RecordKind,
    Site,
};
use crate::{OrgId, TransformationId};

text_enum!(
    /// The kind of tracking event, FSMA 204's critical tracking events (harvesting, cooling, initial packing,
    /// shipping, receiving, transformation) and the platform's other records.
    TrackingEventType {
        /// 播种 / 定植
        Sowing = "sowing",
        /// 施肥
        Fertilising = "fertilising",
        /// 施药
        Spraying = "spraying",
        /// 灌溉
        Irrigation = "irrigation",
        /// 采收 (FSMA: harvesting)
        Harvesting = "harvesting",
        /// 预冷 (FSMA: cooling)
        Cooling = "cooling",
        /// 初次包装 (FSMA: initial packing)
        InitialPacking = "initial_packing",
        /// 包装 (repacking, packing of processed product)
        Packing = "packing",
        /// 加工 (grading, washing, waxing, …)
        Processing = "processing",
        /// 转化: a split, merge or transformation made this lot (FSMA: transformation)
        Transformation = "transformation",
        /// 检测
        Inspection = "inspection",
        /// 发货 (FSMA: shipping)
        Shipping = "shipping",
        /// 收货 (FSMA: receiving)
        Receiving = "receiving",
        /// 召回
        Recall = "recall",
        /// 备注
        Note = "note",
    }
);

impl TrackingEventType {
    /// The name a person in the county reads.
    pub fn chinese(self) -> &'static str {
        match self {
            TrackingEventType::Sowing => "播种",
            TrackingEventType::Fertilising => "施肥",
            TrackingEventType::Spraying => "施药",
            TrackingEventType::Irrigation => "灌溉",
            TrackingEventType::Harvesting => "采收",
            TrackingEventType::Cooling => "预冷",
            TrackingEventType::InitialPacking => "初次包装",
            TrackingEventType::Packing => "包装",
            TrackingEventType::Processing => "加工",
            TrackingEventType::Transformation => "转化",
            TrackingEventType::Inspection => "检测",
            TrackingEventType::Shipping => "发货",
            TrackingEventType::Receiving => "收货",
            TrackingEventType::Recall => "召回",
            TrackingEventType::Note => "备注",
        }
    }

    /// Whether FSMA 204 names it a critical tracking event.
    pub fn is_critical(self) -> bool {
        matches!(
            self,
            TrackingEventType::Harvesting
                | TrackingEventType::Cooling
                | TrackingEventType::InitialPacking
                | TrackingEventType::Transformation
                | TrackingEventType::Shipping
                | TrackingEventType::Receiving
        )
    }
}

/// What the classification of a record needs to know beyond the record.
#[derive(Debug, Clone, Copy, Default)]
pub struct RecordContext {
    /// The record's batch was made by a transformation (it has parents in the lineage graph).
    pub made_by_transformation: bool,
}

/// Words of a processing operation that mean cooling.
const COOLING_WORDS: [&str; 4] = ["预冷", "冷却", "cooling", "pre-cool"];

/// The tracking event a record is (`None` for a correction, which is no event of its own).
pub fn classify(record: &Record, ctx: RecordContext) -> Option<TrackingEventType> {
    Some(match &record.details {
        RecordDetails::Sowing(_) => TrackingEventType::Sowing,
        RecordDetails::Fertilising(_) => TrackingEventType::Fertilising,
        RecordDetails::Spraying(_) => TrackingEventType::Spraying,
        RecordDetails::Irrigation(_) => TrackingEventType::Irrigation,
        RecordDetails::Harvest(_) => TrackingEventType::Harvesting,
        RecordDetails::Processing(_) if ctx.made_by_transformation && record.seq == 1 => {
            TrackingEventType::Transformation
        }
        RecordDetails::Processing(p) => {
            let op = p.operation.to_lowercase();
            if COOLING_WORDS.iter().any(|w| op.contains(w)) {
                TrackingEventType::Cooling
            } else {
                TrackingEventType::Processing
            }
        }
        RecordDetails::Packing(_) if ctx.made_by_transformation => TrackingEventType::Packing,
        RecordDetails::Packing(_) => TrackingEventType::InitialPacking,
        RecordDetails::Inspection(_) => TrackingEventType::Inspection,
        RecordDetails::Shipping(_) => TrackingEventType::Shipping,
        RecordDetails::Receiving(_) => TrackingEventType::Receiving,
        RecordDetails::Note(_) => TrackingEventType::Note,
        RecordDetails::Recall(_) => TrackingEventType::Recall,
        RecordDetails::Correction(_) => return None,
    })
}

/// A lot (batch) with what describes it.
#[derive(Debug, Clone)]
pub struct Lot {
    pub batch: Batch,
    pub product: Arc<Product>,
    /// The organisation that made the lot.
    pub maker: Arc<Organisation>,
}

/// A place: a site where one is known, and the organisation acting there.
#[derive(Debug, Clone)]
pub struct Place {
    pub site: Option<Arc<Site>>,
    pub org: Arc<Organisation>,
}

/// An amount of a lot that went into or came out of a transformation.
#[derive(Debug, Clone)]
pub struct LotAmount {
    pub lot: Arc<Lot>,
    pub quantity: f64,
    pub unit: String,
}

/// A split, merge or transformation: its inputs and outputs.
#[derive(Debug, Clone)]
pub struct TransformationInfo {
    pub id: TransformationId,
    pub kind: LineageKind,
    pub event_time: DateTime<Utc>,
    /// The client id it was sent under (unique within its organisation).
    pub client_id: String,
    pub org_id: OrgId,
    pub inputs: Vec<LotAmount>,
    /// Each output lot with its quantity when it was made.
    pub outputs: Vec<LotAmount>,
}

/// One version of an event: the details as first recorded, or as a correction replaced them.
#[derive(Debug, Clone)]
pub struct EventVersion<'a> {
    /// `None` when this version retracted the event (it did not happen).
    pub details: Option<&'a RecordDetails>,
    /// The correction that made this version (`None` for the record as first stored).
    pub correction: Option<&'a Record>,
    /// Why the correction was made.
    pub reason: Option<&'a str>,
}

/// One tracking event with everything its key data elements need.
#[derive(Debug, Clone)]
pub struct TrackedEvent {
    pub event_type: TrackingEventType,
    /// The record as first stored (its details are the original ones).
    pub record: Record,
    /// The corrections of the record, in chain order.
    pub corrections: Vec<Record>,
    pub lot: Arc<Lot>,
    /// Where it happened and who recorded it.
    pub at: Place,
    /// Shipments and receipts: where the lot left from.
    pub ship_from: Option<Place>,
    /// Shipments and receipts: where the lot went to.
    pub ship_to: Option<Place>,
    /// For a transformation's entry: the transformation.
    pub transformation: Option<Arc<TransformationInfo>>,
}

impl TrackedEvent {
    /// The details in force (the latest correction's replacement), `None` when the event was retracted.
    pub fn details(&self) -> Option<&RecordDetails> {
        self.versions().last().and_then(|v| v.details)
    }

    /// Every version of the event, the record as stored first, then one per correction.
    pub fn versions(&self) -> Vec<EventVersion<'_>> {
        let mut out = vec![EventVersion {
            details: Some(&self.record.details),
            correction: None,
            reason: None,
        }];
        for c in &self.corrections {
            if let RecordDetails::Correction(corr) = &c.details {
                out.push(EventVersion {
                    details: corr.replacement.as_deref(),
                    correction: Some(c),
                    reason: Some(corr.reason.as_str()),
                });
            }
        }
        out
    }

    /// Whether the event stands as recorded, was corrected or was retracted.
    pub fn state(&self) -> CorrectionState {
        match (self.corrections.is_empty(), self.details()) {
            (true, _) => CorrectionState::Original,
            (false, Some(_)) => CorrectionState::Corrected,
            (false, None) => CorrectionState::Retracted,
        }
    }

    /// The quantity the event is about, in the unit recorded: what was harvested, packed (packages),
    /// shipped or received (the lot's quantity unless the record names one), the lot a transformation made;
    /// `None` for events about the lot's treatment rather than an amount of it (farming operations,
    /// inspections, notes).
    pub fn quantity(&self) -> Option<(f64, String)> {
        let lot = || Some((self.lot.batch.quantity, self.lot.batch.unit.clone()));
        match self.details()? {
            RecordDetails::Harvest(h) => Some((h.quantity, h.unit.clone())),
            RecordDetails::Sowing(s) => s.quantity.zip(s.unit.clone()),
            RecordDetails::Packing(p) => Some((f64::from(p.package_count), p.package_type.clone())),
            RecordDetails::Shipping(s) => s.quantity.zip(s.unit.clone()).or_else(lot),
            RecordDetails::Receiving(r) => r.quantity.zip(r.unit.clone()).or_else(lot),
            RecordDetails::Processing(_) | RecordDetails::Recall(_) => lot(),
            RecordDetails::Fertilising(_)
            | RecordDetails::Spraying(_)
            | RecordDetails::Irrigation(_)
            | RecordDetails::Inspection(_)
            | RecordDetails::Note(_)
            | RecordDetails::Correction(_) => None,
        }
    }

    /// The kind of the record behind the event.
    pub fn record_kind(&self) -> RecordKind {
        self.record.details.kind()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Harvest, Packing, Processing};
    use crate::{BatchId, RecordId, UserId};

    fn record(seq: i64, details: RecordDetails) -> Record {
        Record {
            id: RecordId(seq),
            client_id: uuid::Uuid::nil(),
            batch_id: BatchId(1),
            seq,
            event_time: Utc::now(),
            received_at: Utc::now(),
            site_id: None,
            actor_user_id: UserId(1),
            org_id: OrgId(1),
            details,
            attachments: vec![],
            flags: vec![],
            supersedes: None,
            prev_hash: String::new(),
            hash: String::new(),
        }
    }

    fn processing(op: &str) -> RecordDetails {
        RecordDetails::Processing(Processing {
            operation: op.into(),
            note: None,
        })
    }

    fn packing() -> RecordDetails {
        RecordDetails::Packing(Packing {
            package_type: "箱".into(),
            package_count: 10,
            net_quantity_per_package: Some(5.0),
            unit: Some("kg".into()),
        })
    }

    #[test]
    fn a_transformations_first_record_on_its_output_is_the_transformation() {
        let made = RecordContext {
            made_by_transformation: true,
        };
        let field = RecordContext::default();
        assert_eq!(
            classify(&record(1, processing("merge")), made),
            Some(TrackingEventType::Transformation)
        );
        // Later processing of the same lot is processing; the same record on a field lot too.
        assert_eq!(
            classify(&record(2, processing("grading")), made),
            Some(TrackingEventType::Processing)
        );
        assert_eq!(
            classify(&record(1, processing("grading")), field),
            Some(TrackingEventType::Processing)
        );
    }

    #[test]
    fn cooling_packing_and_harvest() {
        let field = RecordContext::default();
        for op in ["预冷", "冷却 4 小时", "Cooling"] {
            assert_eq!(
                classify(&record(3, processing(op)), field),
                Some(TrackingEventType::Cooling),
                "{op}"
            );
        }
        assert_eq!(
            classify(&record(3, packing()), field),
            Some(TrackingEventType::InitialPacking)
        );
        assert_eq!(
            classify(
                &record(3, packing()),
                RecordContext {
                    made_by_transformation: true
                }
            ),
            Some(TrackingEventType::Packing)
        );
        let harvest = RecordDetails::Harvest(Harvest {
            quantity: 1.0,
            unit: "kg".into(),
        });
        assert_eq!(
            classify(&record(2, harvest), field),
            Some(TrackingEventType::Harvesting)
        );
        assert!(TrackingEventType::Harvesting.is_critical());
        assert!(!TrackingEventType::Spraying.is_critical());
    }
}
