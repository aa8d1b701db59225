//! Labels: the published public keys and the verification of a scanned or typed code.
//!
//! The keys come from the database (`signing_keys`), so every replica publishes and verifies with the
//! same set, retired keys included: labels they signed keep verifying after a rotation.

pub mod keys;
pub mod verify;

use label_gen::{PublicKeysDocument, PublishedKey, VerifyingKeySet};
use suyuan_core::model::SigningKeyInfo;
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
