//! Records: the typed facts of what happened to a batch.
//!
//! A record is never edited or deleted. A mistake is mended by a `correction` record that supersedes the
//! earlier one with a reason and, optionally, replacement details of the same kind (none retracts it). Reads
//! offer the corrected view ([`CorrectedRecord`]) and the full history.

use chrono::{DateTime, Duration, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{PartialSchema, ToSchema};

use super::enums::text_enum;
use super::text;
use crate::error::{CoreError, CoreResult};
use crate::{BatchId, OrgId, RecordId, SiteId, UserId};

text_enum!(
    /// The kinds of event a record can describe.
    RecordKind {
        /// 播种 / 定植
        Sowing = "sowing",
        /// 施肥
        Fertilising = "fertilising",
        /// 施药
        Spraying = "spraying",
        /// 灌溉
        Irrigation = "irrigation",
        /// 采收
        Harvest = "harvest",
        /// 加工 (grading, washing, …)
        Processing = "processing",
        /// 包装
        Packing = "packing",
        /// 检测
        Inspection = "inspection",
        /// 发货
        Shipping = "shipping",
        /// 收货
        Receiving = "receiving",
        /// 备注
        Note = "note",
        /// 召回 (written by the recall operation only)
        Recall = "recall",
        /// 更正
        Correction = "correction",
    }
);

impl RecordKind {
    /// Work in the field, from sowing to harvest: what a batch's growing period spans.
    pub fn is_farming(self) -> bool {
        matches!(
            self,
            RecordKind::Sowing
                | RecordKind::Fertilising
                | RecordKind::Spraying
                | RecordKind::Irrigation
                | RecordKind::Harvest
        )
    }

    /// Kinds whose write-time rules read nothing beyond the batch and change nothing but its chain (see
    /// `rules::records::decide`): a sync chains them in memory and stores them set-wise.
    pub fn is_plain(self) -> bool {
        matches!(
            self,
            RecordKind::Sowing
                | RecordKind::Fertilising
                | RecordKind::Spraying
                | RecordKind::Irrigation
                | RecordKind::Processing
                | RecordKind::Packing
                | RecordKind::Note
        )
    }
}

/// Pass or fail, for an inspection item or a whole inspection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Pass,
    Fail,
}

/// 播种 / 定植.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Sowing {
    pub variety: String,
    pub seed_source: Option<String>,
    pub quantity: Option<f64>,
    pub unit: Option<String>,
    pub note: Option<String>,
}

/// 施肥.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Fertilising {
    pub fertiliser_name: String,
    /// e.g. organic, compound, foliar.
    pub fertiliser_type: Option<String>,
    /// 肥料登记证号, where the product has one.
    pub registration_number: Option<String>,
    pub dose: f64,
    /// e.g. kg/亩.
    pub dose_unit: String,
    pub method: Option<String>,
}

/// 施药: the pesticide's registration number and pre-harvest interval are what consumers and regulators check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Spraying {
    pub pesticide_name: String,
    /// 农药登记证号, e.g. PD20080001.
    #[serde(default)]
    pub registration_number: String,
    pub active_ingredient: String,
    pub dose: f64,
    /// e.g. ml/亩 or 倍液 (dilution).
    pub dose_unit: String,
    /// 安全间隔期 in days.
    pub pre_harvest_interval_days: u32,
    pub target: Option<String>,
}

/// 灌溉.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Irrigation {
    pub method: Option<String>,
    pub water_source: Option<String>,
    pub volume_m3: Option<f64>,
}

/// 采收.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Harvest {
    pub quantity: f64,
    pub unit: String,
}

/// 加工: grading, washing, waxing, cutting, …
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Processing {
    pub operation: String,
    pub note: Option<String>,
}

/// 包装.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Packing {
    pub package_type: String,
    pub package_count: u32,
    pub net_quantity_per_package: Option<f64>,
    pub unit: Option<String>,
}

/// One measured item of an inspection, e.g. the inhibition rate of a rapid test or a residue in mg/kg.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InspectionItem {
    pub name: String,
    pub value: f64,
    pub unit: String,
    /// The maximum allowed (e.g. GB 2763 residue limit, or 50 % inhibition for a rapid test).
    pub limit: f64,
    pub result: Verdict,
}

/// 检测: 农残速测 or a lab report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Inspection {
    /// `rapid_test` (农残速测) or `lab`.
    pub method: String,
    pub items: Vec<InspectionItem>,
    pub report_number: Option<String>,
    pub overall: Verdict,
}

/// 发货: hands the batch to another organisation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Shipping {
    pub to_org_id: OrgId,
    pub to_site_id: Option<SiteId>,
    pub carrier: Option<String>,
    pub vehicle_plate: Option<String>,
    pub quantity: Option<f64>,
    pub unit: Option<String>,
}

/// 收货: the receiving organisation takes custody.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Receiving {
    pub quantity: Option<f64>,
    pub unit: Option<String>,
    pub condition: Option<String>,
}

/// 备注.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Note {
    pub text: String,
}

/// 召回, written on the recalled batch and on every batch downstream of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Recall {
    pub reason: String,
    /// The batch the recall was started on.
    pub origin_batch_id: BatchId,
}

/// 更正: supersedes an earlier record of the same batch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Correction {
    pub supersedes: RecordId,
    pub reason: String,
    /// The corrected details, of the superseded record's kind; absent to retract the record.
    #[schema(value_type = Option<Object>)]
    pub replacement: Option<Box<RecordDetails>>,
}

/// The typed details of a record, tagged by `kind`.
///
/// Its OpenAPI schema is written out below rather than derived: the derived one combines each variant's
/// schema (which forbids unknown properties, as serde does) with a separate `{"kind": …}` object, which no
/// object can satisfy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RecordDetails {
    Sowing(Sowing),
    Fertilising(Fertilising),
    Spraying(Spraying),
    Irrigation(Irrigation),
    Harvest(Harvest),
    Processing(Processing),
    Packing(Packing),
    Inspection(Inspection),
    Shipping(Shipping),
    Receiving(Receiving),
    Note(Note),
    Recall(Recall),
    Correction(Correction),
}

/// One variant of [`RecordDetails`] in the OpenAPI document: the variant's own object with the `kind`
/// tag among its properties, so that exactly one variant matches a valid record.
fn tagged_variant<T: utoipa::PartialSchema>(kind: RecordKind) -> utoipa::openapi::Schema {
    use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
    use utoipa::openapi::RefOr;
    let tag = ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some([kind.as_str()]))
        .build();
    match T::schema() {
        RefOr::T(Schema::Object(mut object)) => {
            object.properties.insert("kind".to_owned(), tag.into());
            object.required.insert(0, "kind".to_owned());
            Schema::Object(object)
        }
        // Every variant is a plain struct, whose derived schema is an object; anything else is kept
        // as it is, tagged through `allOf`.
        other => Schema::AllOf(
            utoipa::openapi::schema::AllOfBuilder::new()
                .item(other)
                .item(ObjectBuilder::new().property("kind", tag).required("kind"))
                .build(),
        ),
    }
}

impl utoipa::PartialSchema for RecordDetails {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::Schema> {
        use utoipa::openapi::schema::OneOfBuilder;
        OneOfBuilder::new()
            .description(Some("The typed details of a record, tagged by `kind`."))
            .item(tagged_variant::<Sowing>(RecordKind::Sowing))
            .item(tagged_variant::<Fertilising>(RecordKind::Fertilising))
            .item(tagged_variant::<Spraying>(RecordKind::Spraying))
            .item(tagged_variant::<Irrigation>(RecordKind::Irrigation))
            .item(tagged_variant::<Harvest>(RecordKind::Harvest))
            .item(tagged_variant::<Processing>(RecordKind::Processing))
            .item(tagged_variant::<Packing>(RecordKind::Packing))
            .item(tagged_variant::<Inspection>(RecordKind::Inspection))
            .item(tagged_variant::<Shipping>(RecordKind::Shipping))
            .item(tagged_variant::<Receiving>(RecordKind::Receiving))
            .item(tagged_variant::<Note>(RecordKind::Note))
            .item(tagged_variant::<Recall>(RecordKind::Recall))
            .item(tagged_variant::<Correction>(RecordKind::Correction))
            .into()
    }
}

impl ToSchema for RecordDetails {
    /// Each variant under its own name (for clients that want one kind), and the schemas they refer to
    /// (an inspection's items and verdicts).
    fn schemas(
        schemas: &mut Vec<(
            String,
            utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>,
        )>,
    ) {
        <Inspection as ToSchema>::schemas(schemas);
        for (name, schema) in [
            (Sowing::name(), Sowing::schema()),
            (Fertilising::name(), Fertilising::schema()),
            (Spraying::name(), Spraying::schema()),
            (Irrigation::name(), Irrigation::schema()),
            (Harvest::name(), Harvest::schema()),
            (Processing::name(), Processing::schema()),
            (Packing::name(), Packing::schema()),
            (Inspection::name(), Inspection::schema()),
            (Shipping::name(), Shipping::schema()),
            (Receiving::name(), Receiving::schema()),
            (Note::name(), Note::schema()),
            (Recall::name(), Recall::schema()),
            (Correction::name(), Correction::schema()),
        ] {
            schemas.push((name.into_owned(), schema));
        }
        schemas.push((
            InspectionItem::name().into_owned(),
            <InspectionItem as utoipa::PartialSchema>::schema(),
        ));
        schemas.push((
            Verdict::name().into_owned(),
            <Verdict as utoipa::PartialSchema>::schema(),
        ));
    }
}

impl RecordDetails {
    /// The kind, as stored in the `kind` column.
    pub fn kind(&self) -> RecordKind {
        match self {
            RecordDetails::Sowing(_) => RecordKind::Sowing,
            RecordDetails::Fertilising(_) => RecordKind::Fertilising,
            RecordDetails::Spraying(_) => RecordKind::Spraying,
            RecordDetails::Irrigation(_) => RecordKind::Irrigation,
            RecordDetails::Harvest(_) => RecordKind::Harvest,
            RecordDetails::Processing(_) => RecordKind::Processing,
            RecordDetails::Packing(_) => RecordKind::Packing,
            RecordDetails::Inspection(_) => RecordKind::Inspection,
            RecordDetails::Shipping(_) => RecordKind::Shipping,
            RecordDetails::Receiving(_) => RecordKind::Receiving,
            RecordDetails::Note(_) => RecordKind::Note,
            RecordDetails::Recall(_) => RecordKind::Recall,
            RecordDetails::Correction(_) => RecordKind::Correction,
        }
    }

    /// Checks what serde cannot: required texts and the length and characters of every text, finite
    /// positive numbers within bounds, registration numbers, and that an inspection's verdicts agree with its
    /// values and limits. Fields are named as in the request (`details.dose`).
    pub fn validate(&self) -> CoreResult<()> {
        use text::{optional, positive, required, Lines::*, MAX_AMOUNT, MAX_DOSE, NOTE_CHARS};
        let amount =
            |field: &str, v: Option<f64>| v.map_or(Ok(()), |v| positive(field, v, MAX_AMOUNT));
        match self {
            RecordDetails::Sowing(s) => {
                required("details.variety", &s.variety, 100, One)?;
                optional("details.seed_source", s.seed_source.as_deref(), 200, One)?;
                amount("details.quantity", s.quantity)?;
                optional("details.unit", s.unit.as_deref(), text::UNIT_CHARS, One)?;
                optional("details.note", s.note.as_deref(), NOTE_CHARS, Many)
            }
            RecordDetails::Fertilising(f) => {
                required("details.fertiliser_name", &f.fertiliser_name, 100, One)?;
                optional(
                    "details.fertiliser_type",
                    f.fertiliser_type.as_deref(),
                    100,
                    One,
                )?;
                optional(
                    "details.registration_number",
                    f.registration_number.as_deref(),
                    50,
                    One,
                )?;
                positive("details.dose", f.dose, MAX_DOSE)?;
                required("details.dose_unit", &f.dose_unit, text::UNIT_CHARS, One)?;
                optional("details.method", f.method.as_deref(), 200, One)
            }
            RecordDetails::Spraying(s) => {
                required("details.pesticide_name", &s.pesticide_name, 100, One)?;
                validate_pesticide_registration(&s.registration_number)?;
                required("details.active_ingredient", &s.active_ingredient, 200, One)?;
                positive("details.dose", s.dose, MAX_DOSE)?;
                required("details.dose_unit", &s.dose_unit, text::UNIT_CHARS, One)?;
                if s.pre_harvest_interval_days > 365 {
                    return Err(CoreError::invalid(
                        "invalid_pre_harvest_interval",
                        "pre_harvest_interval_days must be at most 365",
                    ));
                }
                optional("details.target", s.target.as_deref(), 200, One)
            }
            RecordDetails::Irrigation(i) => {
                optional("details.method", i.method.as_deref(), 200, One)?;
                optional("details.water_source", i.water_source.as_deref(), 200, One)?;
                amount("details.volume_m3", i.volume_m3)
            }
            RecordDetails::Harvest(h) => {
                positive("details.quantity", h.quantity, MAX_AMOUNT)?;
                required("details.unit", &h.unit, 16, One)
            }
            RecordDetails::Processing(p) => {
                required("details.operation", &p.operation, 100, One)?;
                optional("details.note", p.note.as_deref(), NOTE_CHARS, Many)
            }
            RecordDetails::Packing(p) => {
                required("details.package_type", &p.package_type, 100, One)?;
                if p.package_count == 0 || p.package_count > MAX_PACKAGES {
                    return Err(CoreError::invalid(
                        "invalid_quantity",
                        format!("details.package_count must be from 1 to {MAX_PACKAGES}"),
                    ));
                }
                amount(
                    "details.net_quantity_per_package",
                    p.net_quantity_per_package,
                )?;
                optional("details.unit", p.unit.as_deref(), text::UNIT_CHARS, One)
            }
            RecordDetails::Inspection(i) => validate_inspection(i),
            RecordDetails::Shipping(s) => {
                optional("details.carrier", s.carrier.as_deref(), 200, One)?;
                optional("details.vehicle_plate", s.vehicle_plate.as_deref(), 20, One)?;
                amount("details.quantity", s.quantity)?;
                optional("details.unit", s.unit.as_deref(), text::UNIT_CHARS, One)
            }
            RecordDetails::Receiving(r) => {
                amount("details.quantity", r.quantity)?;
                optional("details.unit", r.unit.as_deref(), text::UNIT_CHARS, One)?;
                optional(
                    "details.condition",
                    r.condition.as_deref(),
                    text::REASON_CHARS,
                    Many,
                )
            }
            RecordDetails::Note(n) => required("details.text", &n.text, NOTE_CHARS, Many),
            RecordDetails::Recall(r) => {
                required("details.reason", &r.reason, text::REASON_CHARS, Many)
            }
            RecordDetails::Correction(c) => {
                required("details.reason", &c.reason, text::REASON_CHARS, Many)?;
                match c.replacement.as_deref() {
                    Some(RecordDetails::Correction(_) | RecordDetails::Recall(_)) => {
                        Err(CoreError::invalid(
                            "invalid_correction",
                            "a correction cannot replace a record by a correction or a recall",
                        ))
                    }
                    Some(r) => r.validate(),
                    None => Ok(()),
                }
            }
        }
    }
}

/// The most packages one packing record counts.
pub const MAX_PACKAGES: u32 = 10_000_000;

/// 农药登记证号: two or three capital letters then six to eight digits (PD20080001, LS20120345, WP20090123).
pub fn validate_pesticide_registration(number: &str) -> CoreResult<()> {
    if number.trim().is_empty() {
        return Err(CoreError::invalid(
            "missing_registration_number",
            "a spraying record needs the pesticide's registration number (农药登记证号), e.g. PD20080001",
        ));
    }
    let letters = number
        .bytes()
        .take_while(|b| b.is_ascii_uppercase())
        .count();
    let digits = &number[letters..];
    if (2..=3).contains(&letters)
        && (6..=8).contains(&digits.len())
        && digits.bytes().all(|b| b.is_ascii_digit())
    {
        Ok(())
    } else {
        Err(CoreError::invalid(
            "invalid_registration_number",
            format!("{number:?} is not a pesticide registration number (e.g. PD20080001)"),
        ))
    }
}

fn validate_inspection(i: &Inspection) -> CoreResult<()> {
    if !matches!(i.method.as_str(), "rapid_test" | "lab") {
        return Err(CoreError::invalid(
            "invalid_inspection",
            "method must be rapid_test or lab",
        ));
    }
    if i.items.is_empty() || i.items.len() > 500 {
        return Err(CoreError::invalid(
            "invalid_inspection",
            "an inspection has 1–500 items",
        ));
    }
    text::optional(
        "details.report_number",
        i.report_number.as_deref(),
        100,
        text::Lines::One,
    )?;
    for (n, item) in i.items.iter().enumerate() {
        let field = |name: &str| format!("details.items[{n}].{name}");
        text::required(&field("name"), &item.name, 100, text::Lines::One)?;
        text::required(
            &field("unit"),
            &item.unit,
            text::UNIT_CHARS,
            text::Lines::One,
        )?;
        text::number(&field("value"), item.value, 0.0, text::MAX_AMOUNT)?;
        text::number(&field("limit"), item.limit, 0.0, text::MAX_AMOUNT)?;
        let expected = if item.value <= item.limit {
            Verdict::Pass
        } else {
            Verdict::Fail
        };
        if item.result != expected {
            return Err(CoreError::invalid(
                "inconsistent_inspection",
                format!(
                    "{}: value {} against limit {} is a {:?}, not a {:?}",
                    item.name, item.value, item.limit, expected, item.result
                ),
            ));
        }
    }
    let any_fail = i.items.iter().any(|it| it.result == Verdict::Fail);
    if any_fail && i.overall == Verdict::Pass {
        return Err(CoreError::invalid(
            "inconsistent_inspection",
            "an inspection with a failed item cannot pass overall",
        ));
    }
    Ok(())
}

/// How far ahead of the server's clock an event may be (phones' clocks drift).
pub const MAX_CLOCK_SKEW: Duration = Duration::hours(1);

/// Event times must be real: not before 2000 and not in the future beyond [`MAX_CLOCK_SKEW`].
pub fn validate_event_time(t: DateTime<Utc>) -> CoreResult<()> {
    let earliest = Utc
        .with_ymd_and_hms(2000, 1, 1, 0, 0, 0)
        .single()
        .unwrap_or_default();
    if t > Utc::now() + MAX_CLOCK_SKEW {
        return Err(CoreError::invalid(
            "event_time_in_future",
            format!("event_time {t} is in the future"),
        ));
    }
    if t < earliest {
        return Err(CoreError::invalid(
            "event_time_too_old",
            format!("event_time {t} is before 2000"),
        ));
    }
    Ok(())
}

/// A record as captured from a phone or an integration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewRecord {
    /// Generated by the client; sending the same record again returns the stored one.
    pub client_id: uuid::Uuid,
    /// When it happened, by the client's clock.
    pub event_time: DateTime<Utc>,
    pub site_id: Option<SiteId>,
    pub details: RecordDetails,
    /// Attached photos, at most 20, each `image:<id>`: an image the platform stores
    /// (`GET /api/v1/images/{id}`) from a site of the writer's organisation.
    #[serde(default)]
    pub attachments: Vec<String>,
}

/// The image id an attachment names (`image:<id>`), if it is one.
pub fn attachment_image_id(attachment: &str) -> Option<i64> {
    let digits = attachment.strip_prefix("image:")?;
    if digits.is_empty() || digits.len() > 18 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

impl NewRecord {
    /// Checks everything that does not need the database.
    pub fn validate(&self) -> CoreResult<()> {
        validate_event_time(self.event_time)?;
        if self.attachments.len() > 20 {
            return Err(CoreError::invalid(
                "too_many_attachments",
                "at most 20 attachments per record",
            ));
        }
        for a in &self.attachments {
            if attachment_image_id(a).is_none() {
                return Err(CoreError::invalid(
                    "invalid_attachment",
                    format!(
                        "attachments: {:?} is not an attachment id; attachments name stored images as image:<id>",
                        a.chars().take(64).collect::<String>()
                    ),
                ));
            }
        }
        if matches!(self.details, RecordDetails::Recall(_)) {
            return Err(CoreError::invalid(
                "use_recall_endpoint",
                "recalls are made with POST /api/v1/batches/{id}/recall, which reaches every downstream batch",
            ));
        }
        self.details.validate()
    }
}

/// A stored record, exactly as it is in its batch's chain.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Record {
    pub id: RecordId,
    pub client_id: uuid::Uuid,
    pub batch_id: BatchId,
    /// Position in the batch's chain, from 1.
    pub seq: i64,
    pub event_time: DateTime<Utc>,
    /// When the server stored it.
    pub received_at: DateTime<Utc>,
    pub site_id: Option<SiteId>,
    pub actor_user_id: UserId,
    pub org_id: OrgId,
    pub details: RecordDetails,
    pub attachments: Vec<String>,
    /// Set by rules at write time, e.g. `harvest_within_phi`.
    pub flags: Vec<String>,
    /// For a correction: the record it supersedes.
    pub supersedes: Option<RecordId>,
    pub prev_hash: String,
    pub hash: String,
}

/// Whether a record stands as written, was corrected or was retracted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CorrectionState {
    Original,
    Corrected,
    Retracted,
}

/// A correction applied to a record, for the "corrected" mark and its history.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct AppliedCorrection {
    pub record_id: RecordId,
    pub reason: String,
    pub received_at: DateTime<Utc>,
}

/// A record in the corrected view: `details` are the latest replacement, the original stays in `original_details`.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct CorrectedRecord {
    #[serde(flatten)]
    pub record: Record,
    pub state: CorrectionState,
    pub corrections: Vec<AppliedCorrection>,
    pub original_details: Option<RecordDetails>,
}

/// Applies corrections to a batch's records (in chain order) and leaves out the correction records themselves.
pub fn corrected_view(records: Vec<Record>) -> Vec<CorrectedRecord> {
    let mut out: Vec<CorrectedRecord> = Vec::with_capacity(records.len());
    let mut index = std::collections::HashMap::new();
    for r in records {
        if let RecordDetails::Correction(c) = &r.details {
            if let Some(&i) = index.get(&c.supersedes) {
                let target: &mut CorrectedRecord = &mut out[i];
                if target.original_details.is_none() {
                    target.original_details = Some(target.record.details.clone());
                }
                match &c.replacement {
                    Some(new) => {
                        target.record.details = (**new).clone();
                        target.state = CorrectionState::Corrected;
                    }
                    None => target.state = CorrectionState::Retracted,
                }
                target.corrections.push(AppliedCorrection {
                    record_id: r.id,
                    reason: c.reason.clone(),
                    received_at: r.received_at,
                });
            }
            continue;
        }
        index.insert(r.id, out.len());
        out.push(CorrectedRecord {
            record: r,
            state: CorrectionState::Original,
            corrections: Vec::new(),
            original_details: None,
        });
    }
    out
}

/// The outcome of a capture: the record and whether this request stored it.
#[derive(Debug, Clone)]
pub struct Captured {
    pub record: Record,
    pub created: bool,
}

/// One record of an offline phone's backlog: the batch it belongs to and the record.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SyncItem {
    pub batch_id: BatchId,
    pub record: NewRecord,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registration_numbers() {
        assert!(validate_pesticide_registration("PD20080001").is_ok());
        assert!(validate_pesticide_registration("LS20120345").is_ok());
        assert!(validate_pesticide_registration("").is_err());
        assert!(validate_pesticide_registration("pd2008").is_err());
        assert!(validate_pesticide_registration("PD2008000X").is_err());
    }

    #[test]
    fn inspection_verdicts_must_match_values() {
        let item = |value: f64, result| InspectionItem {
            name: "毒死蜱".into(),
            value,
            unit: "mg/kg".into(),
            limit: 0.5,
            result,
        };
        let insp = |items, overall| {
            RecordDetails::Inspection(Inspection {
                method: "lab".into(),
                items,
                report_number: None,
                overall,
            })
        };
        assert!(insp(vec![item(0.1, Verdict::Pass)], Verdict::Pass)
            .validate()
            .is_ok());
        assert!(insp(vec![item(0.9, Verdict::Pass)], Verdict::Pass)
            .validate()
            .is_err());
        assert!(insp(vec![item(0.9, Verdict::Fail)], Verdict::Pass)
            .validate()
            .is_err());
        assert!(insp(vec![item(0.9, Verdict::Fail)], Verdict::Fail)
            .validate()
            .is_ok());
    }

    #[test]
    fn unknown_fields_are_refused_inside_tagged_details() {
        let ok = r#"{"kind":"note","text":"hi"}"#;
        assert!(serde_json::from_str::<RecordDetails>(ok).is_ok());
        let bad = r#"{"kind":"note","text":"hi","extra":1}"#;
        assert!(serde_json::from_str::<RecordDetails>(bad).is_err());
    }
}
