//! `GET /api/v1/labels/verify?code=…`: the authenticity verdict of a scanned URL, a path or the bare
//! digits (any letter case in scheme and host), and for a genuine code its state and batch.
//!
//! Public: whoever holds a label may check it. Every verdict is a 200 (the check itself succeeded); a
//! missing `code` parameter is a 400.

use actix_web::{get, web, HttpResponse};
use serde::{Deserialize, Serialize};
use suyuan_core::model::{BatchStatus, LabelRef, LabelState};
use suyuan_core::store::labels::{self, LabelForScan};
use suyuan_core::store::DbConnection;
use suyuan_core::{BatchId, CoreResult, ProductId};
use suyuan_label_gen::{LabelSerial, Verdict};
use utoipa::{IntoParams, ToSchema};

use crate::error::{ApiResult, ErrorBody};
use crate::extract::blocking;
use crate::state::AppState;

/// The code to check.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct VerifyQuery {
    /// The label URL, its path, or the 169 digits.
    pub code: String,
}

/// The verdict on a code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum VerdictKind {
    /// Signed by the platform's key that the serial names.
    Genuine,
    /// Well-formed but the signature does not match: counterfeit or edited.
    InvalidSignature,
    /// Well-formed but names a key the platform never had.
    UnknownKey,
    /// Not a label code.
    Malformed,
}

/// The answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct VerifyAnswer {
    pub verdict: VerdictKind,
    /// The 13-digit serial the code claims (authentic only when genuine).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub serial: Option<String>,
    /// The serial grouped as printed under the QR code.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub short_code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_id: Option<u8>,
    /// Genuine codes: where the label stands (`not_minted`, `minted` = not yet activated, `active`, `void`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<LabelState>,
    /// Genuine codes bound to a batch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub batch_id: Option<BatchId>,
    /// The batch's status (`recalled` matters to whoever holds the product).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub batch_status: Option<BatchStatus>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub product_id: Option<ProductId>,
    /// Why the code is malformed or the label void, safe to show.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl VerifyAnswer {
    fn bare(verdict: VerdictKind, serial: Option<LabelSerial>) -> Self {
        VerifyAnswer {
            verdict,
            serial: serial.map(|s| s.to_string()),
            short_code: serial.map(|s| s.grouped()),
            key_id: serial.map(|s| s.key_id().get()),
            state: None,
            batch_id: None,
            batch_status: None,
            product_id: None,
            reason: None,
        }
    }
}

#[utoipa::path(tag = "labels", params(VerifyQuery), responses(
    (status = 200, body = VerifyAnswer, description = "the verdict (genuine, invalid_signature, unknown_key, malformed)"),
    (status = 400, body = ErrorBody, description = "no code given"),
))]
#[get("/labels/verify")]
pub async fn verify(
    state: web::Data<AppState>,
    query: web::Query<VerifyQuery>,
) -> ApiResult<HttpResponse> {
    let code = query.into_inner().code;
    let answer = blocking(&state, move |db| db.read(|c| check(c, &code))).await?;
    Ok(HttpResponse::Ok().json(answer))
}

/// The verdict on `code` (a URL, a path or the digits) and, for a genuine code, what the database says
/// about the label. Shared by this endpoint and the label URL itself.
pub fn check(c: &mut DbConnection, code: &str) -> CoreResult<VerifyAnswer> {
    let keys = super::verifying_keys(&labels::list_keys(c)?)?;
    Ok(match suyuan_label_gen::verify(code, &keys) {
        Verdict::Genuine { serial, .. } => {
            let found = labels::lookup_for_scan(
                c,
                LabelRef {
                    key_id: i64::from(serial.key_id().get()),
                    sequence: i64::try_from(serial.sequence()).unwrap_or(i64::MAX),
                },
            )?;
            genuine(serial, found)
        }
        Verdict::InvalidSignature { serial } => {
            VerifyAnswer::bare(VerdictKind::InvalidSignature, Some(serial))
        }
        Verdict::UnknownKey { serial, .. } => {
            VerifyAnswer::bare(VerdictKind::UnknownKey, Some(serial))
        }
        Verdict::Malformed(why) => VerifyAnswer {
            reason: Some(why.to_string()),
            ..VerifyAnswer::bare(VerdictKind::Malformed, None)
        },
    })
}

fn genuine(serial: LabelSerial, found: LabelForScan) -> VerifyAnswer {
    let LabelForScan {
        lookup,
        batch_status,
        ..
    } = found;
    VerifyAnswer {
        state: Some(lookup.state),
        batch_id: lookup.batch_id,
        batch_status,
        product_id: lookup.product_id,
        reason: lookup.void_reason,
        ..VerifyAnswer::bare(VerdictKind::Genuine, Some(serial))
    }
}

#[cfg(test)]
mod tests {
    use utoipa::OpenApi;

    /// What `openapi.rs` gets once `labels::verify::verify` is listed in its `paths(...)`.
    #[derive(OpenApi)]
    #[openapi(paths(super::verify))]
    struct Doc;

    #[test]
    fn the_endpoint_is_described_for_the_openapi_document() {
        let doc = serde_json::to_value(Doc::openapi()).unwrap_or_default();
        let op = &doc["paths"]["/labels/verify"]["get"];
        assert_eq!(op["tags"][0], "labels", "{doc}");
        assert_eq!(op["parameters"][0]["name"], "code", "{doc}");
        assert!(op["responses"]["200"].is_object(), "{doc}");
    }
}
