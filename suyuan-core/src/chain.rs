//! The hash chain over a batch's records.
//!
//! Each record's `hash` is the SHA-256 of its canonical encoding, and that encoding contains the previous
//! record's hash (`prev_hash`; 64 zeros for the first record of a batch). Changing, removing or reordering a
//! stored record therefore breaks the chain from that point, and the batch's `head_hash` and `record_count`
//! catch a record removed from the end.
//!
//! The canonical encoding is a JSON array, in a fixed order, of a version tag and every stored field; the
//! details are re-encoded from their parsed value with object keys sorted (serde_json's default map is
//! ordered), so the hash covers what the record says rather than the bytes it happened to be written with.

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// `prev_hash` of a batch's first record.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Version tag at the head of every canonical encoding.
const TAG: &str = "suyuan-record-v1";

/// The stored fields of a record that the hash covers.
#[derive(Debug, Clone)]
pub struct ChainFields<'a> {
    pub batch_id: i64,
    pub seq: i64,
    pub client_id: &'a str,
    pub kind: &'a str,
    pub event_time: i64,
    pub received_at: i64,
    pub site_id: Option<i64>,
    pub actor_user_id: i64,
    pub org_id: i64,
    /// The details as stored (JSON text).
    pub details: &'a str,
    /// The attachment ids as stored (JSON text).
    pub attachments: &'a str,
    /// The flags as stored (JSON text).
    pub flags: &'a str,
    pub supersedes_id: Option<i64>,
    pub prev_hash: &'a str,
}

/// Serialises a JSON value with sorted keys and no white space: the canonical text of details, attachments
/// and flags, stored as such.
pub fn canonical_json(value: &Value) -> String {
    // serde_json without `preserve_order` keeps object keys in a BTreeMap: sorted.
    value.to_string()
}

fn parse(text: &str) -> Value {
    // A column that is not JSON any more has been tampered with; hashing its text as a string still
    // yields a hash that differs from the stored one.
    serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_owned()))
}

/// The canonical bytes of a record.
pub fn canonical_bytes(f: &ChainFields<'_>) -> Vec<u8> {
    let v = json!([
        TAG,
        f.batch_id,
        f.seq,
        f.client_id,
        f.kind,
        f.event_time,
        f.received_at,
        f.site_id,
        f.actor_user_id,
        f.org_id,
        parse(f.details),
        parse(f.attachments),
        parse(f.flags),
        f.supersedes_id,
        f.prev_hash,
    ]);
    canonical_json(&v).into_bytes()
}

/// The record's hash, lowercase hex.
pub fn record_hash(f: &ChainFields<'_>) -> String {
    hex::encode(Sha256::digest(canonical_bytes(f)))
}

/// SHA-256 of arbitrary bytes, lowercase hex (tokens, request fingerprints).
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields<'a>(details: &'a str, prev: &'a str) -> ChainFields<'a> {
        ChainFields {
            batch_id: 1,
            seq: 1,
            client_id: "c",
            kind: "note",
            event_time: 5,
            received_at: 6,
            site_id: None,
            actor_user_id: 2,
            org_id: 3,
            details,
            attachments: "[]",
            flags: "[]",
            supersedes_id: None,
            prev_hash: prev,
        }
    }

    #[test]
    fn key_order_and_spacing_do_not_change_the_hash() {
        let a = record_hash(&fields(r#"{"kind":"note","text":"x"}"#, GENESIS_HASH));
        let b = record_hash(&fields(r#"{ "text": "x", "kind": "note" }"#, GENESIS_HASH));
        assert_eq!(a, b);
    }

    #[test]
    fn content_and_previous_hash_change_the_hash() {
        let a = record_hash(&fields(r#"{"kind":"note","text":"x"}"#, GENESIS_HASH));
        assert_ne!(
            a,
            record_hash(&fields(r#"{"kind":"note","text":"y"}"#, GENESIS_HASH))
        );
        assert_ne!(a, record_hash(&fields(r#"{"kind":"note","text":"x"}"#, &a)));
    }
}
