//! Anchors of the record chains: what the chains alone cannot prove.
//!
//! Each batch's chain shows that no stored record was changed, removed from the middle or reordered, and the
//! batch's head (`record_count`, `head_hash`) shows that none was removed from the end — unless whoever cut
//! off the tail also moved the head back, which leaves a shorter chain that is intact in itself. An anchor
//! closes that gap: at one moment it lists every batch's (id, record count, head hash), hashes the list into
//! a digest and has the platform's signing key sign it. Kept where the database's administrator cannot
//! reach (published at `/.well-known/suyuan/anchors/`, written under the data folder, copied away), it lets
//! `suyuan verify chain` show that every anchored batch still has at least the anchored number of records,
//! with the anchored hash at that position.
//!
//! The signature is made by the caller (the server holds the private keys; this crate does not); what is
//! signed is [`AnchorDocument::statement`].

use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::verify::ChainIssue;
use super::DbConnection;
use crate::chain::GENESIS_HASH;
use crate::error::{CoreError, CoreResult};
use crate::on_backend;
use crate::schema::{batches::dsl as b, chain_anchors::dsl as ca, records::dsl as r};
use crate::time::{now_millis, to_datetime};

/// Format tag of an anchor document (and the first line of its digest's input).
pub const FORMAT: &str = "suyuan-anchor-v1";

/// A signed anchor, exactly as published and stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnchorDocument {
    /// Always [`FORMAT`].
    pub format: String,
    /// When the heads were read, RFC 3339 (for people; `created_at_ms` is what is signed).
    pub created_at: String,
    pub created_at_ms: i64,
    /// The signing key (its public half is in `/.well-known/suyuan/keys.json`).
    pub key_id: i64,
    pub batches: i64,
    pub records: i64,
    /// SHA-256 (hex) over `suyuan-anchor-v1\n` and one line `id count hash\n` per batch in id order.
    pub digest: String,
    /// Every batch's `[id, record count, head hash]`, in id order.
    pub heads: Vec<(i64, i64, String)>,
    /// Ed25519 signature (hex) of [`AnchorDocument::statement`] under the anchor tag and the key id.
    pub signature: String,
}

impl AnchorDocument {
    /// The bytes that are signed: time, counts and digest, one a line. The heads are covered by the digest.
    pub fn statement(&self) -> Vec<u8> {
        statement(self.created_at_ms, self.batches, self.records, &self.digest)
    }

    /// Whether the digest matches the listed heads (a document whose heads were edited fails here even
    /// before its signature is checked).
    pub fn digest_matches(&self) -> bool {
        digest(&self.heads) == self.digest
    }
}

fn statement(created_at_ms: i64, batches: i64, records: i64, digest: &str) -> Vec<u8> {
    format!("{created_at_ms}\n{batches}\n{records}\n{digest}").into_bytes()
}

/// The digest over a list of heads.
pub fn digest(heads: &[(i64, i64, String)]) -> String {
    let mut h = Sha256::new();
    h.update(FORMAT.as_bytes());
    h.update(b"\n");
    for (id, count, head) in heads {
        h.update(format!("{id} {count} {head}\n").as_bytes());
    }
    hex::encode(h.finalize())
}

/// An anchor as listed (without its heads).
#[derive(Debug, Clone, Serialize)]
pub struct AnchorSummary {
    pub id: i64,
    pub created_at: String,
    pub key_id: i64,
    pub batches: i64,
    pub records: i64,
    pub digest: String,
}

/// Every batch's head, in id order.
pub fn heads(conn: &mut DbConnection) -> CoreResult<Vec<(i64, i64, String)>> {
    let mut out = Vec::new();
    let mut after = 0i64;
    loop {
        let page: Vec<(i64, i64, String)> = on_backend!(conn, c => b::batches
            .filter(b::id.gt(after))
            .order(b::id)
            .limit(10_000)
            .select((b::id, b::record_count, b::head_hash))
            .load(c))?;
        let Some(last) = page.last().map(|h| h.0) else {
            break;
        };
        out.extend(page);
        after = last;
    }
    Ok(out)
}

/// Makes an anchor of the heads now and stores it, unless `min_interval_ms` is given and the newest anchor
/// is younger than that or anchors the same heads (then `None`). `sign` gets the statement and answers the key id and the signature
/// (hex). On PostgreSQL a transaction-scoped advisory lock makes replicas that run this at the same moment
/// take turns, so the second sees the first's anchor and makes none; SQLite writers are serialised anyway.
/// Runs inside the caller's transaction.
pub fn create(
    conn: &mut DbConnection,
    min_interval_ms: Option<i64>,
    sign: impl FnOnce(&[u8]) -> CoreResult<(i64, String)>,
) -> CoreResult<Option<(i64, AnchorDocument)>> {
    if let DbConnection::Postgresql(c) = conn {
        // "suyuan anchors" as a number: any constant that nothing else locks.
        diesel::sql_query("SELECT pg_advisory_xact_lock(7306923478651)").execute(c)?;
    }
    let now = now_millis();
    let mut unchanged_since = None;
    if let Some(min) = min_interval_ms {
        let newest: Option<(i64, String)> = on_backend!(conn, c => ca::chain_anchors
            .order(ca::id.desc())
            .select((ca::created_at, ca::digest))
            .first(c)
            .optional())?;
        if newest.as_ref().is_some_and(|(t, _)| now - t < min) {
            return Ok(None);
        }
        unchanged_since = newest.map(|(_, d)| d);
    }
    let heads = heads(conn)?;
    let records = heads.iter().map(|h| h.1).sum();
    let batches = i64::try_from(heads.len()).map_err(|e| CoreError::Internal(e.to_string()))?;
    let digest = digest(&heads);
    if unchanged_since.as_deref() == Some(digest.as_str()) {
        // Nothing was written since the newest anchor, which still says it all: the periodic anchor spares
        // the storage (`suyuan anchor`, asked for now, always makes one).
        return Ok(None);
    }
    let (key_id, signature) = sign(&statement(now, batches, records, &digest))?;
    let doc = AnchorDocument {
        format: FORMAT.to_owned(),
        created_at: to_datetime(now).to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        created_at_ms: now,
        key_id,
        batches,
        records,
        digest,
        heads,
        signature,
    };
    let text = serde_json::to_string(&doc).map_err(|e| CoreError::Internal(e.to_string()))?;
    let id: i64 = on_backend!(conn, c => diesel::insert_into(ca::chain_anchors)
        .values((
            ca::created_at.eq(doc.created_at_ms),
            ca::key_id.eq(doc.key_id),
            ca::batches.eq(doc.batches),
            ca::records.eq(doc.records),
            ca::digest.eq(&doc.digest),
            ca::signature.eq(&doc.signature),
            ca::document.eq(&text),
        ))
        .returning(ca::id)
        .get_result(c))?;
    Ok(Some((id, doc)))
}

fn parse(text: &str) -> CoreResult<AnchorDocument> {
    serde_json::from_str(text).map_err(|e| CoreError::Internal(format!("stored anchor: {e}")))
}

/// The newest anchor, as published.
pub fn latest(conn: &mut DbConnection) -> CoreResult<Option<(i64, String)>> {
    Ok(on_backend!(conn, c => ca::chain_anchors
        .order(ca::id.desc())
        .select((ca::id, ca::document))
        .first(c)
        .optional())?)
}

/// One anchor, as published.
pub fn get(conn: &mut DbConnection, id: i64) -> CoreResult<String> {
    on_backend!(conn, c => ca::chain_anchors.find(id).select(ca::document).first(c).optional())?
        .ok_or(CoreError::NotFound { what: "anchor" })
}

/// Every stored anchor, parsed (for `suyuan verify chain`).
pub fn all(conn: &mut DbConnection) -> CoreResult<Vec<(i64, AnchorDocument)>> {
    let rows: Vec<(i64, String)> = on_backend!(conn, c => ca::chain_anchors
        .order(ca::id)
        .select((ca::id, ca::document))
        .load(c))?;
    rows.into_iter()
        .map(|(id, text)| Ok((id, parse(&text)?)))
        .collect()
}

/// The newest anchors first, without their heads.
pub fn list(conn: &mut DbConnection, limit: i64) -> CoreResult<Vec<AnchorSummary>> {
    let rows: Vec<(i64, i64, i64, i64, i64, String)> = on_backend!(conn, c => ca::chain_anchors
        .order(ca::id.desc())
        .limit(limit)
        .select((ca::id, ca::created_at, ca::key_id, ca::batches, ca::records, ca::digest))
        .load(c))?;
    Ok(rows
        .into_iter()
        .map(|(id, at, key_id, batches, records, digest)| AnchorSummary {
            id,
            created_at: to_datetime(at).to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            key_id,
            batches,
            records,
            digest,
        })
        .collect())
}

/// Checks the database against an anchor whose signature the caller has checked: every anchored batch must
/// still exist, hold at least the anchored number of records, and have the anchored hash at that position.
/// `label` names the anchor in the issues (a file name, `anchor 12`).
pub fn check(
    conn: &mut DbConnection,
    doc: &AnchorDocument,
    label: &str,
) -> CoreResult<Vec<ChainIssue>> {
    let mut issues = Vec::new();
    let issue = |batch_id: i64, seq: Option<i64>, problem: String| ChainIssue {
        batch_id,
        record_id: None,
        seq,
        problem,
        mismatch: None,
    };
    for chunk in doc.heads.chunks(1000) {
        let ids: Vec<i64> = chunk.iter().map(|h| h.0).collect();
        let counts: Vec<i64> = chunk.iter().map(|h| h.1).collect();
        let stored: std::collections::HashMap<i64, i64> = on_backend!(conn, c => b::batches
            .filter(b::id.eq_any(&ids))
            .select((b::id, b::record_count))
            .load::<(i64, i64)>(c))?
        .into_iter()
        .collect();
        let at: std::collections::HashMap<(i64, i64), String> = on_backend!(conn, c => r::records
            .filter(r::batch_id.eq_any(&ids))
            .filter(r::seq.eq_any(&counts))
            .select((r::batch_id, r::seq, r::hash))
            .load::<(i64, i64, String)>(c))?
        .into_iter()
        .map(|(batch, seq, hash)| ((batch, seq), hash))
        .collect();
        for (id, count, head) in chunk {
            let Some(now) = stored.get(id) else {
                issues.push(issue(
                    *id,
                    None,
                    format!(
                        "{label} anchors this batch with {count} records, but the batch is gone"
                    ),
                ));
                continue;
            };
            if now < count {
                issues.push(issue(
                    *id,
                    Some(*count),
                    format!(
                        "{label} anchors {count} records, the batch has {now}: records were cut off the end"
                    ),
                ));
                continue;
            }
            let found = if *count == 0 {
                Some(GENESIS_HASH)
            } else {
                at.get(&(*id, *count)).map(String::as_str)
            };
            if found != Some(head.as_str()) {
                issues.push(issue(
                    *id,
                    Some(*count),
                    format!(
                        "{label} anchors record {count} with hash {head:.12}…, the database has {}: the chain was rewritten",
                        found.map_or_else(|| "no such record".to_owned(), |h| format!("{h:.12}…"))
                    ),
                ));
            }
        }
    }
    Ok(issues)
}

/// Parses an anchor document (a published file).
pub fn parse_document(text: &str) -> Result<AnchorDocument, String> {
    let doc: AnchorDocument = serde_json::from_str(text).map_err(|e| e.to_string())?;
    if doc.format != FORMAT {
        return Err(format!("format {:?} is not {FORMAT}", doc.format));
    }
    Ok(doc)
}
