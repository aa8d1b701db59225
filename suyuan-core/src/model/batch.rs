//! Batches (批次) and the lineage between them.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::text::{self, Lines};
use super::{BatchStatus, CorrectedRecord, LineageKind};
use crate::error::{CoreError, CoreResult};
use crate::{BatchId, OrgId, ProductId, SiteId, TransformationId};

/// A batch as members and regulators see it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Batch {
    pub id: BatchId,
    /// The organisation that made the batch (harvested, packed, transformed).
    pub org_id: OrgId,
    pub product_id: ProductId,
    /// The lot code, unique within the organisation.
    pub lot_code: String,
    pub quantity: f64,
    pub unit: String,
    pub status: BatchStatus,
    /// Why the batch is blocked or recalled.
    pub status_reason: Option<String>,
    pub origin_site_id: Option<SiteId>,
    /// Who holds the batch now and may record on it.
    pub custodian_org_id: OrgId,
    /// Set between a shipment and its receipt.
    pub in_transit_to_org_id: Option<OrgId>,
    /// Number of records in the batch's chain.
    pub record_count: i64,
    /// SHA-256 of the newest record (all zeros for an empty chain).
    pub head_hash: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

/// A new batch of one of the caller's organisation's products.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewBatch {
    pub product_id: ProductId,
    pub lot_code: String,
    pub quantity: f64,
    pub unit: String,
    pub origin_site_id: Option<SiteId>,
}

impl NewBatch {
    /// Checks the lot code and the quantity.
    pub fn validate(&self) -> CoreResult<()> {
        validate_lot_code(&self.lot_code)?;
        validate_quantity("quantity", self.quantity, &self.unit)
    }
}

/// Lot codes are printed and typed: letters, digits and `-_./`, at most 64.
pub fn validate_lot_code(lot: &str) -> CoreResult<()> {
    let ok = !lot.is_empty()
        && lot.len() <= 64
        && lot
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(CoreError::invalid(
            "invalid_lot_code",
            "lot_code must be 1–64 letters, digits or - _ . /",
        ))
    }
}

/// A quantity is a positive finite number with a unit.
pub fn validate_quantity(field: &str, quantity: f64, unit: &str) -> CoreResult<()> {
    if !(quantity.is_finite() && quantity > 0.0 && quantity <= text::MAX_AMOUNT) {
        return Err(CoreError::invalid(
            "invalid_quantity",
            format!(
                "{field} must be a positive number of at most {}",
                text::MAX_AMOUNT
            ),
        ));
    }
    text::required("unit", unit, 16, Lines::One)
}

/// An edge of the lineage graph: `child` was made (partly) from `parent`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct LineageEdge {
    pub parent_batch_id: BatchId,
    pub child_batch_id: BatchId,
    pub kind: LineageKind,
    pub transformation_id: TransformationId,
    pub quantity: f64,
    pub unit: String,
}

/// An input of a transformation: how much of an existing batch went in.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TransformationInput {
    pub batch_id: BatchId,
    /// In the input batch's unit.
    pub quantity: f64,
}

/// An output of a transformation: a new batch.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TransformationOutput {
    pub product_id: ProductId,
    pub lot_code: String,
    pub quantity: f64,
    pub unit: String,
}

/// A split, merge or transformation, sent by a processor (idempotent by `client_id`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTransformation {
    pub client_id: uuid::Uuid,
    pub kind: LineageKind,
    pub event_time: chrono::DateTime<chrono::Utc>,
    pub site_id: Option<SiteId>,
    pub inputs: Vec<TransformationInput>,
    pub outputs: Vec<TransformationOutput>,
}

impl NewTransformation {
    /// Checks the shape each kind needs: a split has one input, a merge one output.
    pub fn validate(&self) -> CoreResult<()> {
        let shape_ok = match self.kind {
            LineageKind::Split => self.inputs.len() == 1 && self.outputs.len() >= 2,
            LineageKind::Merge => self.inputs.len() >= 2 && self.outputs.len() == 1,
            LineageKind::Transform => !self.inputs.is_empty() && !self.outputs.is_empty(),
        };
        if !shape_ok {
            return Err(CoreError::invalid(
                "invalid_transformation",
                "a split has one input and two or more outputs, a merge two or more inputs and one output",
            ));
        }
        if self.inputs.len() > 1000 || self.outputs.len() > 1000 {
            return Err(CoreError::invalid(
                "invalid_transformation",
                "at most 1000 inputs and 1000 outputs",
            ));
        }
        let mut seen = std::collections::HashSet::new();
        for i in &self.inputs {
            if !seen.insert(i.batch_id) {
                return Err(CoreError::invalid(
                    "invalid_transformation",
                    "an input batch is listed twice",
                ));
            }
            if !(i.quantity.is_finite() && i.quantity > 0.0 && i.quantity <= text::MAX_AMOUNT) {
                return Err(CoreError::invalid(
                    "invalid_quantity",
                    format!(
                        "input quantities must be positive numbers of at most {}",
                        text::MAX_AMOUNT
                    ),
                ));
            }
        }
        let mut lots = std::collections::HashSet::new();
        for o in &self.outputs {
            validate_lot_code(&o.lot_code)?;
            validate_quantity("output quantity", o.quantity, &o.unit)?;
            if !lots.insert(o.lot_code.as_str()) {
                return Err(CoreError::invalid(
                    "invalid_transformation",
                    "an output lot code is listed twice",
                ));
            }
        }
        super::record::validate_event_time(self.event_time)
    }
}

/// The stored transformation with the batches it made.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Transformation {
    pub id: TransformationId,
    pub client_id: uuid::Uuid,
    pub kind: LineageKind,
    pub event_time: chrono::DateTime<chrono::Utc>,
    pub outputs: Vec<Batch>,
    pub edges: Vec<LineageEdge>,
}

/// Which way a trace walks the lineage graph.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Where did this come from.
    Backward,
    /// Where did it go.
    Forward,
}

/// One batch reached by a trace, with its records in the corrected view.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TracedBatch {
    pub batch: Batch,
    /// Steps from the batch the trace started at.
    pub depth: i32,
    pub records: Vec<CorrectedRecord>,
}

/// The result of a trace: the batches reached and the edges between them.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Trace {
    pub root: BatchId,
    pub direction: Direction,
    pub batches: Vec<TracedBatch>,
    pub edges: Vec<LineageEdge>,
}

/// The result of a recall: every batch it marked.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RecallOutcome {
    pub origin: BatchId,
    pub reason: String,
    /// The origin and every batch downstream of it that was not already recalled.
    pub recalled: Vec<BatchId>,
    /// Downstream batches that were recalled before.
    pub already_recalled: Vec<BatchId>,
}

/// A recall request.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewRecall {
    pub reason: String,
}

impl NewRecall {
    /// The reason is shown on every recalled batch's scan page.
    pub fn validate(&self) -> CoreResult<()> {
        text::required("reason", &self.reason, text::REASON_CHARS, Lines::Many)
    }
}
