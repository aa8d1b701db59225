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

/// The verdict on a code as the API names it: label-gen's [`Verdict`] by its name alone (`genuine`,
/// `invalid_signature`, `unknown_key`, `malformed`), what the verdict carries being in the answer's
/// other fields.
///
/// Serialised and described by hand so that the verdict values stay label-gen's one enum; the schema
/// keeps the name and the text the API document has always had (`VerdictKind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VerdictName(pub Verdict);

impl VerdictName {
    /// Every name, in the order the API document lists them.
    pub const ALL: [&'static str; 4] = ["genuine", "invalid_signature", "unknown_key", "malformed"];

    /// The verdict's name in the API.
    pub fn as_str(self) -> &'static str {
        match self.0 {
            Verdict::Genuine { .. } => "genuine",
            Verdict::InvalidSignature { .. } => "invalid_signature",
            Verdict::UnknownKey { .. } => "unknown_key",
            Verdict::Malformed(_) => "malformed",
        }
    }
}

impl Serialize for VerdictName {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl utoipa::PartialSchema for VerdictName {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::schema::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .description(Some("The verdict on a code."))
            .enum_values(Some(Self::ALL))
            .into()
    }
}

impl ToSchema for VerdictName {
    fn name() -> std::borrow::Cow<'static, str> {
        "VerdictKind".into()
    }
}

/// The answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct VerifyAnswer {
    pub verdict: VerdictName,
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
    fn bare(verdict: Verdict, serial: Option<LabelSerial>) -> Self {
        VerifyAnswer {
            verdict: VerdictName(verdict),
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
    let verdict = suyuan_label_gen::verify(code, &keys);
    Ok(match verdict {
        Verdict::Genuine { serial, .. } => {
            let found = labels::lookup_for_scan(
                c,
                LabelRef {
                    key_id: i64::from(serial.key_id().get()),
                    sequence: i64::try_from(serial.sequence()).unwrap_or(i64::MAX),
                },
            )?;
            genuine(verdict, serial, found)
        }
        Verdict::InvalidSignature { serial } | Verdict::UnknownKey { serial, .. } => {
            VerifyAnswer::bare(verdict, Some(serial))
        }
        Verdict::Malformed(why) => VerifyAnswer {
            reason: Some(why.to_string()),
            ..VerifyAnswer::bare(verdict, None)
        },
    })
}

fn genuine(verdict: Verdict, serial: LabelSerial, found: LabelForScan) -> VerifyAnswer {
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
        ..VerifyAnswer::bare(verdict, Some(serial))
    }
}

#[cfg(test)]
mod tests {
    use suyuan_label_gen::{KeyId, LabelSerial, Malformed, Verdict};
    use utoipa::OpenApi;

    use super::VerdictName;

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

    #[test]
    fn each_verdict_is_answered_by_its_name() {
        let serial = LabelSerial::new(KeyId::new(1).unwrap(), 42).unwrap();
        let key_id = serial.key_id();
        for (verdict, name) in [
            (Verdict::Genuine { serial, key_id }, "genuine"),
            (Verdict::InvalidSignature { serial }, "invalid_signature"),
            (Verdict::UnknownKey { serial, key_id }, "unknown_key"),
            (Verdict::Malformed(Malformed::Empty), "malformed"),
        ] {
            assert_eq!(
                serde_json::to_value(VerdictName(verdict)).unwrap(),
                serde_json::json!(name)
            );
            assert!(VerdictName::ALL.contains(&name));
        }
    }

    /// The schema the API document has always given the verdict, to the byte.
    #[test]
    fn the_verdict_schema_keeps_its_name_and_shape() {
        let doc = serde_json::to_string(&Doc::openapi()).unwrap_or_default();
        assert!(
            doc.contains(
                r#""VerdictKind":{"type":"string","description":"The verdict on a code.","enum":["genuine","invalid_signature","unknown_key","malformed"]}"#
            ),
            "{doc}"
        );
    }
}
