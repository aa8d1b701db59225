//! Labels: signing keys (public halves), label runs, and the lifecycle of a label
//! (minted → active → void).
//!
//! A run of 300,000 labels has no row per label: a label is minted when its sequence lies inside a run's
//! range, active when inside an activation range, void when it has a void row. Serials themselves
//! (check digit, key id digits) are `suyuan-label-gen`'s business; here a label is a key id and a
//! sequence number, the two numbers its serial carries.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::enums::text_enum;
use crate::{BatchId, OrgId, ProductId, UserId};

/// The largest sequence number a serial can carry (ten digits).
pub const MAX_LABEL_SEQUENCE: i64 = 9_999_999_999;

/// Most labels one run may mint (about a season of a county's largest packer).
pub const MAX_RUN_LABELS: i64 = 1_000_000;

/// Id of a label run.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
#[serde(transparent)]
#[schema(value_type = i64)]
pub struct LabelRunId(pub i64);

impl std::fmt::Display for LabelRunId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// A label as the database knows it: the key id and sequence number its serial carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, ToSchema)]
pub struct LabelRef {
    /// 0–99.
    pub key_id: i64,
    /// 0–9,999,999,999.
    pub sequence: i64,
}

/// A registered signing key (public half only: private keys never reach the database).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct SigningKeyInfo {
    pub key_id: i64,
    /// Always `Ed25519`.
    pub algorithm: String,
    /// 32 bytes, lowercase hex.
    pub public_key: String,
    /// The next sequence number a run of this key will get.
    pub next_sequence: i64,
    pub created_at: chrono::DateTime<chrono::Utc>,
    /// Set when the key stopped minting; labels it signed still verify.
    pub retired_at: Option<chrono::DateTime<chrono::Utc>>,
}

text_enum!(
    /// Where a label run stands.
    LabelRunStatus {
        /// Range reserved, PDFs being written.
        Minting = "minting",
        /// Every file written.
        Finished = "finished",
        /// Stopped with an error (see `error`); its labels cannot be activated.
        Failed = "failed",
    }
);

/// An organisation's label quota: how many labels its runs may hold in all (runs that failed do not count).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct LabelQuota {
    pub org_id: OrgId,
    /// `null`: no limit.
    pub quota: Option<i64>,
    /// Labels of the organisation's runs that did not fail.
    pub used: i64,
    /// `null` when there is no limit.
    pub remaining: Option<i64>,
    /// The operator who set the quota last, and when.
    pub updated_by: Option<UserId>,
    pub updated_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// A run: a contiguous range of one key's sequence numbers minted for one product.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct LabelRun {
    pub id: LabelRunId,
    pub org_id: OrgId,
    pub product_id: ProductId,
    pub key_id: i64,
    pub first_sequence: i64,
    pub count: i64,
    /// Layout name (`a4-3x8`, `a4-4x10`, `roll-50x30`, …).
    pub layout: String,
    /// Host in the label URLs.
    pub host: String,
    pub status: LabelRunStatus,
    /// Absent when the run was started from the command line.
    pub requested_by: Option<UserId>,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub finished_at: Option<chrono::DateTime<chrono::Utc>>,
    /// The files written (one name per line), once finished.
    pub output: Option<String>,
    /// Why the run failed.
    pub error: Option<String>,
}

impl LabelRun {
    /// The last sequence number of the run.
    pub fn last_sequence(&self) -> i64 {
        self.first_sequence + self.count - 1
    }
}

/// What a new run asks for. The key is chosen by the caller (the active key whose private half it holds).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewLabelRun {
    pub product_id: ProductId,
    pub key_id: i64,
    /// 1 – 1,000,000.
    pub count: i64,
    pub layout: String,
    pub host: String,
}

impl NewLabelRun {
    /// What serde cannot check.
    pub fn validate(&self) -> crate::CoreResult<()> {
        if !(1..=MAX_RUN_LABELS).contains(&self.count) {
            return Err(crate::CoreError::invalid(
                "invalid_count",
                format!("a run mints between 1 and {MAX_RUN_LABELS} labels"),
            ));
        }
        if !(0..=99).contains(&self.key_id) {
            return Err(crate::CoreError::invalid(
                "invalid_key_id",
                "key ids are 0–99",
            ));
        }
        if self.layout.trim().is_empty() || self.host.trim().is_empty() {
            return Err(crate::CoreError::invalid(
                "invalid_run",
                "a run needs a layout and a host",
            ));
        }
        use super::text::{text, Lines};
        text("layout", &self.layout, 32, Lines::One)?;
        // A DNS name is at most 253 characters; a port may follow.
        text("host", &self.host, 260, Lines::One)
    }
}

/// Checks a void's reason (shown in the run's detail): at most 500 characters, no control characters but
/// line breaks (that it is given at all is checked where it is stored, `missing_reason`).
pub fn validate_void_reason(reason: &str) -> crate::CoreResult<()> {
    super::text::text(
        "reason",
        reason,
        super::text::REASON_CHARS,
        super::text::Lines::Many,
    )
}

/// Who starts a run.
#[derive(Debug, Clone, Copy)]
pub enum RunRequester<'a> {
    /// A member of the product's organisation, through the API.
    User(&'a super::Actor),
    /// The command line, run by whoever operates the server (it holds the database and the keys).
    CommandLine,
}

/// A contiguous range of labels of one key bound to a batch.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct LabelActivation {
    pub id: i64,
    pub run_id: LabelRunId,
    pub key_id: i64,
    pub first_sequence: i64,
    pub last_sequence: i64,
    pub batch_id: BatchId,
    pub activated_by: UserId,
    pub activated_at: chrono::DateTime<chrono::Utc>,
}

/// A voided label.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct LabelVoid {
    pub id: i64,
    pub run_id: LabelRunId,
    pub key_id: i64,
    pub sequence: i64,
    pub reason: String,
    pub voided_by: UserId,
    pub voided_at: chrono::DateTime<chrono::Utc>,
}

/// Where a label stands in its lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum LabelState {
    /// No run contains it: a signature over it came from somewhere else (e.g. a leaked key).
    NotMinted,
    /// Printed but not yet bound to a batch ("not yet activated").
    Minted,
    /// Bound to a batch.
    Active,
    /// Voided.
    Void,
}

impl LabelState {
    /// The state of a minted label: void wins over bound (a voided label keeps its batch for the record).
    pub fn of_minted(voided: bool, bound: bool) -> LabelState {
        match (voided, bound) {
            (true, _) => LabelState::Void,
            (false, true) => LabelState::Active,
            (false, false) => LabelState::Minted,
        }
    }
}

/// What the database says about one label, for verification and scans.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct LabelLookup {
    pub label: LabelRef,
    pub state: LabelState,
    pub run_id: Option<LabelRunId>,
    pub org_id: Option<OrgId>,
    pub product_id: Option<ProductId>,
    /// The batch it is (or was, if void) bound to.
    pub batch_id: Option<BatchId>,
    /// Why it was voided.
    pub void_reason: Option<String>,
}
