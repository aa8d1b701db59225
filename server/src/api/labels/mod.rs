//! Labels: the published public keys and the verification of a scanned or typed code.
//!
//! The keys come from the database (`signing_keys`), so every replica publishes and verifies with the
//! same set, retired keys included: labels they signed keep verifying after a rotation.

pub mod activate;
pub mod anchors;
pub mod keys;
pub mod verify;
pub mod void;

use label_gen::{
    LabelCode, LabelSerial, PublicKeysDocument, PublishedKey, Verdict, VerifyingKeySet,
};
use suyuan_core::model::{LabelRef, SigningKeyInfo};
use suyuan_core::store::{labels, DbConnection};
use suyuan_core::{CoreError, CoreResult};
use suyuan_label_gen as label_gen;

/// The public keys document for the registered keys.
pub fn document(keys: &[SigningKeyInfo]) -> PublicKeysDocument {
    PublicKeysDocument {
        keys: keys
            .iter()
            .map(|k| PublishedKey {
                // Ids are 0–99 by a CHECK constraint.
                key_id: u8::try_from(k.key_id).unwrap_or(u8::MAX),
                algorithm: k.algorithm.clone(),
                public_key: k.public_key.clone(),
                created_at: k
                    .created_at
                    .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                retired_at: k
                    .retired_at
                    .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
            })
            .collect(),
    }
}

/// The verifying keys for the registered keys (retired ones included: their labels still verify).
pub fn verifying_keys(keys: &[SigningKeyInfo]) -> CoreResult<VerifyingKeySet> {
    document(keys)
        .verifying_keys()
        .map_err(|e| CoreError::Internal(format!("stored signing keys: {e}")))
}

/// The label a person or a scan gun names: the full URL or code (its signature must be genuine), or the
/// 13-digit short code as printed (its check digit must hold).
pub fn label_ref(c: &mut DbConnection, input: &str) -> CoreResult<LabelRef> {
    let serial = match LabelCode::parse(input) {
        Ok(_) => {
            let keys = verifying_keys(&labels::list_keys(c)?)?;
            match label_gen::verify(input, &keys) {
                Verdict::Genuine { serial, .. } => serial,
                _ => {
                    return Err(CoreError::invalid(
                        "label_not_genuine",
                        "this code's signature is not genuine; only genuine labels can be activated or voided",
                    ))
                }
            }
        }
        Err(code_error) => LabelSerial::parse(input).map_err(|serial_error| {
            CoreError::invalid(
                "malformed_label",
                format!("neither a label code ({code_error}) nor a short code ({serial_error})"),
            )
        })?,
    };
    Ok(LabelRef {
        key_id: i64::from(serial.key_id().get()),
        sequence: i64::try_from(serial.sequence()).unwrap_or(i64::MAX),
    })
}
