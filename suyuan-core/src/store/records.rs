//! Capturing records: idempotency, access, the write-time rules and the hash chain, in one transaction.

use std::collections::HashMap;

use diesel::prelude::*;
use serde::Serialize;
use utoipa::ToSchema;

use super::alerts::{self, NewAlert};
use super::batches;
use super::rows::{models, BatchRow, RecordRow};
use super::DbConnection;
use crate::chain::{canonical_json, record_hash};
use crate::db::Database;
use crate::error::{CoreError, CoreResult};
use crate::model::*;
use crate::on_backend;
use crate::policy;
use crate::rules::records::{self as records_rules, BatchState, Decision, Loaded, NewRecordEvent};
use crate::schema::{batches::dsl as b, records::dsl as r};
use crate::time::now_millis;
use crate::{BatchId, OrgId, RecordId};

fn to_json_text<T: Serialize>(v: &T) -> CoreResult<String> {
    serde_json::to_value(v)
        .map(|v| canonical_json(&v))
        .map_err(|e| CoreError::Internal(e.to_string()))
}

/// Captures one record on a batch inside the caller's transaction.
///
/// Sending the same record again (same client id and content) returns the stored one with `created: false`;
/// a different record under a client id already used is a `record_conflict` (409) that carries both.
pub fn capture(
    conn: &mut DbConnection,
    actor: &Actor,
    batch_id: BatchId,
    new: &NewRecord,
) -> CoreResult<Captured> {
    new.validate()?;
    let batch = batches::get_for_update(conn, batch_id)?;
    let rel = batches::relation(conn, actor, &batch)?;
    let prepared = Prepared::check(actor, &batch, rel, new)?;
    if let Some(stored) = find_by_client_id(conn, actor.org_id, &prepared.client_id)? {
        // The stored record is the organisation's own, but its batch may since have moved out of reach.
        let record = prepared.resend(stored, batch_id, new, |stored| {
            Ok(stored == batch_id.0 || readable_batches(conn, actor, &[stored])?.contains(&stored))
        })?;
        return Ok(Captured {
            record,
            created: false,
        });
    }

    let refs = References::load(conn, std::slice::from_ref(new))?;
    refs.check(actor.org_id, new.site_id, &new.attachments)?;
    let decision = rules(conn, actor, &batch, new)?;
    let mut row = prepared.into_row(actor, &batch, new, &decision.flags)?;
    let stored = append(conn, &mut row)?;
    apply(conn, &batch, &stored, decision)?;
    Ok(Captured {
        record: stored.into_model()?,
        created: true,
    })
}

/// A record that passed the checks every capture makes first, single or synced: its shape, then the
/// writer's right to record it on the batch; with the text forms that are stored and compared.
pub(crate) struct Prepared {
    pub client_id: String,
    pub details: String,
    pub attachments: String,
}

impl Prepared {
    /// Checks the writer may record this kind on the batch and serialises the record. (Its shape is
    /// checked by [`NewRecord::validate`] before the batch is even read.)
    pub(crate) fn check(
        actor: &Actor,
        batch: &Batch,
        rel: policy::BatchRelation,
        new: &NewRecord,
    ) -> CoreResult<Prepared> {
        policy::ensure_write_record(actor, batch, new.details.kind(), rel)?;
        Ok(Prepared {
            client_id: new.client_id.to_string(),
            details: to_json_text(&new.details)?,
            attachments: to_json_text(&new.attachments)?,
        })
    }

    /// Whether `stored`, found under this record's client id, is this same record sent again.
    fn is_resend_of(&self, stored: &RecordRow, batch_id: BatchId, new: &NewRecord) -> bool {
        stored.batch_id == batch_id.0
            && stored.event_time == new.event_time.timestamp_millis()
            && stored.site_id == new.site_id.map(|s| s.0)
            && stored.details == self.details
            && stored.attachments == self.attachments
    }

    /// The answer to a record whose client id is taken: the stored record when it is the same, else the
    /// 409 [`conflict`], which shows the stored record only when `readable` says the writer may still read
    /// its batch (asked only then).
    pub(crate) fn resend(
        &self,
        stored: RecordRow,
        batch_id: BatchId,
        new: &NewRecord,
        readable: impl FnOnce(i64) -> CoreResult<bool>,
    ) -> CoreResult<Record> {
        let same = self.is_resend_of(&stored, batch_id, new);
        let stored_batch = stored.batch_id;
        let record = stored.into_model()?;
        if same {
            return Ok(record);
        }
        let readable = readable(stored_batch)?;
        Err(conflict(new, readable.then_some(record)))
    }

    /// The row of the record at the head of `batch`'s chain (its hash is the chain's to compute).
    pub(crate) fn into_row(
        self,
        actor: &Actor,
        batch: &Batch,
        new: &NewRecord,
        flags: &[String],
    ) -> CoreResult<RecordRow> {
        Ok(RecordRow {
            id: 0,
            client_id: self.client_id,
            batch_id: batch.id.0,
            seq: batch.record_count + 1,
            kind: new.details.kind().as_str().to_owned(),
            event_time: new.event_time.timestamp_millis(),
            received_at: now_millis(),
            site_id: new.site_id.map(|s| s.0),
            actor_user_id: actor.user_id.0,
            org_id: actor.org_id.0,
            details: self.details,
            attachments: self.attachments,
            flags: to_json_text(&flags)?,
            supersedes_id: match &new.details {
                RecordDetails::Correction(c) => Some(c.supersedes.0),
                _ => None,
            },
            prev_hash: batch.head_hash.clone(),
            hash: String::new(),
        })
    }
}

/// What the sites and images that records name belong to: site id → organisation, image id → the
/// organisation of the site it was taken at. Ids that do not exist are absent.
#[derive(Debug, Default)]
pub(crate) struct References {
    pub sites: HashMap<i64, i64>,
    pub images: HashMap<i64, i64>,
}

impl References {
    /// Reads what the records' sites and attachments belong to (a query per thousand ids, none for none).
    pub(crate) fn load(conn: &mut DbConnection, records: &[NewRecord]) -> CoreResult<References> {
        let sites: Vec<i64> = records
            .iter()
            .filter_map(|r| r.site_id.map(|s| s.0))
            .collect();
        let images: Vec<i64> = records
            .iter()
            .flat_map(|r| r.attachments.iter().filter_map(|a| attachment_image_id(a)))
            .collect();
        Self::of(conn, sites, images)
    }

    /// Reads what these sites and images belong to.
    pub(crate) fn of(
        conn: &mut DbConnection,
        mut site_ids: Vec<i64>,
        mut image_ids: Vec<i64>,
    ) -> CoreResult<References> {
        use crate::schema::{device_images::dsl as di, sites::dsl as s};
        image_ids.sort_unstable();
        image_ids.dedup();
        let mut images = HashMap::new();
        let mut image_sites = HashMap::new();
        for chunk in image_ids.chunks(1000) {
            let found: Vec<(i64, i64)> = on_backend!(conn, c => di::device_images
                .filter(di::id.eq_any(chunk))
                .select((di::id, di::site_id))
                .load(c))?;
            site_ids.extend(found.iter().map(|(_, site)| *site));
            image_sites.extend(found);
        }
        site_ids.sort_unstable();
        site_ids.dedup();
        let mut sites = HashMap::new();
        for chunk in site_ids.chunks(1000) {
            let found: Vec<(i64, i64)> = on_backend!(conn, c => s::sites
                .filter(s::id.eq_any(chunk))
                .select((s::id, s::org_id))
                .load(c))?;
            sites.extend(found);
        }
        for (image, site) in image_sites {
            if let Some(&org) = sites.get(&site) {
                images.insert(image, org);
            }
        }
        Ok(References { sites, images })
    }

    /// A record may name only its writer's sites and images. The one reference to another organisation a
    /// record makes is a shipment's destination (`to_org_id`, `to_site_id`): that is the custody hand-over
    /// itself, checked by the rules; the receiver then records at a site of its own.
    ///
    /// A site or image that does not exist answers 404, like any id that names nothing; one of another
    /// organisation answers 422 `foreign_site` / `foreign_attachment`, as a batch's foreign origin site
    /// does: the request is understood, what it names exists, but the writer may not use it. (Which site
    /// ids exist is no secret: scan pages show the sites of their records.)
    pub(crate) fn check(
        &self,
        writer: OrgId,
        site: Option<crate::SiteId>,
        attachments: &[String],
    ) -> CoreResult<()> {
        self.check_site(writer, site)?;
        for a in attachments {
            let Some(image) = attachment_image_id(a) else {
                return Err(CoreError::invalid(
                    "invalid_attachment",
                    "attachments name stored images as image:<id>",
                ));
            };
            match self.images.get(&image) {
                None => return Err(CoreError::NotFound { what: "image" }),
                Some(&org) if org != writer.0 => {
                    return Err(CoreError::invalid(
                        "foreign_attachment",
                        format!(
                            "attachments: image {image} was taken at a site of another organisation"
                        ),
                    ))
                }
                Some(_) => {}
            }
        }
        Ok(())
    }

    /// The site part of [`References::check`], for transformations and loads too.
    pub(crate) fn check_site(&self, writer: OrgId, site: Option<crate::SiteId>) -> CoreResult<()> {
        let Some(site) = site else { return Ok(()) };
        match self.sites.get(&site.0) {
            None => Err(CoreError::NotFound { what: "site" }),
            Some(&org) if org != writer.0 => Err(CoreError::invalid(
                "foreign_site",
                format!("site_id: site {} is a site of another organisation", site.0),
            )),
            Some(_) => Ok(()),
        }
    }
}

/// The 409 for a client id the writer's organisation already used for another record. Client ids are
/// unique per organisation, so the stored record is always one the organisation wrote; it is shown only
/// when the caller may still read its batch (`stored` is null otherwise).
fn conflict(new: &NewRecord, stored: Option<Record>) -> CoreError {
    let message = match stored {
        Some(_) => format!(
            "a different record was already stored under client_id {}",
            new.client_id
        ),
        None => format!(
            "client_id {} was already used by your organisation, on a batch you may no longer read",
            new.client_id
        ),
    };
    CoreError::Conflict {
        code: "record_conflict",
        message,
        details: Some(serde_json::json!({ "stored": stored, "submitted": new })),
    }
}

/// Which of these batches the actor may read (see [`policy::can_read_batch`]); one query, two for
/// inspectors.
fn readable_batches(
    conn: &mut DbConnection,
    actor: &Actor,
    ids: &[i64],
) -> CoreResult<std::collections::HashSet<i64>> {
    use crate::schema::inspection_requests::dsl as ir;
    let mut out = std::collections::HashSet::new();
    for chunk in ids.chunks(1000) {
        let rows = on_backend!(conn, c => b::batches
            .filter(b::id.eq_any(chunk))
            .select(BatchRow::as_select())
            .load(c))?;
        let asked: std::collections::HashSet<i64> = if actor.role == Role::Inspector {
            on_backend!(conn, c => ir::inspection_requests
                .filter(ir::lab_org_id.eq(actor.org_id.0))
                .filter(ir::batch_id.eq_any(chunk))
                .select(ir::batch_id)
                .load::<i64>(c))?
            .into_iter()
            .collect()
        } else {
            Default::default()
        };
        for row in rows {
            let batch = row.into_model()?;
            let rel = policy::BatchRelation {
                inspection_requested: asked.contains(&batch.id.0),
            };
            if policy::can_read_batch(actor, &batch, rel) {
                out.insert(batch.id.0);
            }
        }
    }
    Ok(out)
}

/// Hashes and inserts a record row at the head of its batch's chain and advances the head.
pub(crate) fn append(conn: &mut DbConnection, row: &mut RecordRow) -> CoreResult<RecordRow> {
    row.hash = record_hash(&row.chain_fields());
    let id: i64 = on_backend!(conn, c => diesel::insert_into(r::records).values(&*row).returning(r::id).get_result(c))?;
    let moved = on_backend!(conn, c => diesel::update(
        b::batches.find(row.batch_id).filter(b::record_count.eq(row.seq - 1)),
    )
    .set((b::record_count.eq(row.seq), b::head_hash.eq(&row.hash)))
    .execute(c))?;
    if moved != 1 {
        // Cannot happen while writers hold the batch lock; refuse rather than fork the chain.
        return Err(CoreError::Internal(format!(
            "chain head of batch {} moved during append",
            row.batch_id
        )));
    }
    let mut stored = row.clone();
    stored.id = id;
    Ok(stored)
}

/// Captures a record in its own transaction, retrying once when a concurrent request stored the same client
/// id first (the retry then answers as a resend).
pub fn capture_in(
    db: &Database,
    actor: &Actor,
    batch_id: BatchId,
    new: &NewRecord,
) -> CoreResult<Captured> {
    let mut attempt = 0;
    loop {
        match db.write(|c| capture(c, actor, batch_id, new)) {
            Err(CoreError::Database(e)) if super::is_unique_violation(&e) && attempt < 2 => {
                attempt += 1
            }
            other => return other,
        }
    }
}

/// The outcome of one item of a sync.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SyncOutcome {
    pub client_id: uuid::Uuid,
    /// `created`, `existing`, or `rejected` (with `error`).
    pub status: String,
    pub record: Option<Record>,
    pub error: Option<SyncError>,
}

/// Why an item of a sync was rejected.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SyncError {
    /// The same stable code a single capture would answer with.
    pub error: String,
    pub message: String,
    #[schema(value_type = Option<Object>)]
    pub details: Option<serde_json::Value>,
}

/// At most this many records per sync request.
pub const MAX_SYNC_ITEMS: usize = 1000;

/// Captures an offline phone's backlog in one transaction. Each item answers for itself, exactly as a single
/// capture of it would: one bad record is reported without losing the others.
///
/// A backlog is mostly farming records, whose capture needs nothing but the batch, the access relation, the
/// client id and the site. Done one at a time that is about eight round trips per record (a savepoint, six
/// queries, its release), which on PostgreSQL caps a sync near 1,000 records/s. So the sync locks all its
/// batches in one query (in id order, so that two syncs never wait on each other in a cycle), reads what the
/// checks need in one query each, chains the plain records in memory and stores them with multi-row inserts
/// and one head update per batch. Records whose rules read or change more (harvest, inspection, shipping,
/// receiving, correction) go through [`capture`] in a savepoint of their own, after what is pending is
/// stored, so every batch's chain keeps the order of the items.
pub fn sync(db: &Database, actor: &Actor, items: &[SyncItem]) -> CoreResult<Vec<SyncOutcome>> {
    if items.len() > MAX_SYNC_ITEMS {
        return Err(CoreError::invalid(
            "too_many_items",
            format!("at most {MAX_SYNC_ITEMS} records per sync"),
        ));
    }
    db.write(|conn| sync_in(conn, actor, items))
}

/// What a sync knows while it walks its items.
struct SyncState {
    /// The locked batches, with heads advanced by the records chained so far.
    batches: HashMap<i64, Batch>,
    /// Each batch's record count as stored in the database.
    stored_count: HashMap<i64, i64>,
    /// Batches whose lab (the actor's organisation) was asked to inspect them.
    inspection_requested: std::collections::HashSet<i64>,
    /// The organisation's stored or chained records by client id.
    known: HashMap<String, RecordRow>,
    /// Batches of known records that the actor may read (a conflict shows the stored record only then).
    readable: std::collections::HashSet<i64>,
    /// What the sites and images the items name belong to.
    refs: References,
    /// Chained records not stored yet, with their item's index.
    pending: Vec<(usize, RecordRow)>,
    /// Items that resend a record still pending: answered once it is stored (and has an id).
    resends: Vec<usize>,
}

fn sync_in(
    conn: &mut DbConnection,
    actor: &Actor,
    items: &[SyncItem],
) -> CoreResult<Vec<SyncOutcome>> {
    use crate::schema::inspection_requests::dsl as ir;
    let mut ids: Vec<i64> = items.iter().map(|i| i.batch_id.0).collect();
    ids.sort_unstable();
    ids.dedup();
    let batches = lock_batches(conn, &ids)?;
    let mut inspection_requested = std::collections::HashSet::new();
    for chunk in ids.chunks(1000) {
        let asked: Vec<i64> = on_backend!(conn, c => ir::inspection_requests
            .filter(ir::lab_org_id.eq(actor.org_id.0))
            .filter(ir::batch_id.eq_any(chunk))
            .select(ir::batch_id)
            .load(c))?;
        inspection_requested.extend(asked);
    }
    let client_ids: Vec<String> = items
        .iter()
        .map(|i| i.record.client_id.to_string())
        .collect();
    let mut known = HashMap::new();
    for chunk in client_ids.chunks(500) {
        let rows = on_backend!(conn, c => r::records
            .filter(r::org_id.eq(actor.org_id.0))
            .filter(r::client_id.eq_any(chunk))
            .select(RecordRow::as_select())
            .load(c))?;
        known.extend(rows.into_iter().map(|row| (row.client_id.clone(), row)));
    }
    let site_ids = items
        .iter()
        .filter_map(|i| i.record.site_id.map(|x| x.0))
        .collect();
    let image_ids = items
        .iter()
        .flat_map(|i| {
            i.record
                .attachments
                .iter()
                .filter_map(|a| attachment_image_id(a))
        })
        .collect();
    let refs = References::of(conn, site_ids, image_ids)?;
    let mut known_batches: Vec<i64> = known.values().map(|row| row.batch_id).collect();
    known_batches.sort_unstable();
    known_batches.dedup();
    let readable = readable_batches(conn, actor, &known_batches)?;
    let mut st = SyncState {
        stored_count: batches
            .iter()
            .map(|(id, b)| (*id, b.record_count))
            .collect(),
        batches,
        inspection_requested,
        known,
        readable,
        refs,
        pending: Vec::new(),
        resends: Vec::new(),
    };

    let mut out: Vec<Option<SyncOutcome>> = vec![None; items.len()];
    for (i, item) in items.iter().enumerate() {
        if item.record.details.kind().is_plain() {
            if let Some(outcome) = sync_plain(&mut st, actor, i, item)? {
                out[i] = Some(outcome);
            }
            continue;
        }
        flush_pending(conn, actor, items, &mut st, &mut out)?;
        out[i] = Some(sync_full(conn, actor, item, &mut st)?);
    }
    flush_pending(conn, actor, items, &mut st, &mut out)?;
    out.into_iter()
        .map(|o| {
            o.ok_or_else(|| CoreError::Internal("a sync item was left without an answer".into()))
        })
        .collect()
}

fn rejected(client_id: uuid::Uuid, e: CoreError) -> CoreResult<SyncOutcome> {
    match e {
        CoreError::Database(_)
        | CoreError::Pool(_)
        | CoreError::Internal(_)
        | CoreError::Setup(_) => Err(e),
        e => Ok(SyncOutcome {
            client_id,
            status: "rejected".into(),
            record: None,
            error: Some(SyncError {
                error: e.code().into(),
                message: e.to_string(),
                details: match e {
                    CoreError::Conflict { details, .. } => details,
                    _ => None,
                },
            }),
        }),
    }
}

fn answered(client_id: uuid::Uuid, created: bool, record: Record) -> SyncOutcome {
    SyncOutcome {
        client_id,
        status: if created { "created" } else { "existing" }.into(),
        record: Some(record),
        error: None,
    }
}

/// Checks a plain record as [`capture`] would, in the same order, against what the sync loaded; chains it in
/// memory when it is new. `None`: chained, answered when stored.
fn sync_plain(
    st: &mut SyncState,
    actor: &Actor,
    index: usize,
    item: &SyncItem,
) -> CoreResult<Option<SyncOutcome>> {
    let new = &item.record;
    let checked = (|| -> CoreResult<Option<SyncOutcome>> {
        new.validate()?;
        let batch = st
            .batches
            .get(&item.batch_id.0)
            .ok_or(CoreError::NotFound { what: "batch" })?;
        let rel = policy::BatchRelation {
            inspection_requested: st.inspection_requested.contains(&batch.id.0),
        };
        let prepared = Prepared::check(actor, batch, rel, new)?;
        if let Some(stored) = st.known.get(&prepared.client_id) {
            if stored.id == 0 {
                st.resends.push(index);
                return Ok(None);
            }
            let record = prepared.resend(stored.clone(), item.batch_id, new, |b| {
                Ok(st.readable.contains(&b))
            })?;
            return Ok(Some(answered(new.client_id, false, record)));
        }
        st.refs.check(actor.org_id, new.site_id, &new.attachments)?;
        // Plain records: no rules, no flags.
        let mut row = prepared.into_row(actor, batch, new, &[])?;
        let client_id = row.client_id.clone();
        row.hash = record_hash(&row.chain_fields());
        if let Some(batch) = st.batches.get_mut(&item.batch_id.0) {
            batch.record_count = row.seq;
            batch.head_hash.clone_from(&row.hash);
        }
        st.readable.insert(row.batch_id);
        st.known.insert(client_id, row.clone());
        st.pending.push((index, row));
        Ok(None)
    })();
    match checked {
        Ok(answer) => Ok(answer),
        Err(e) => rejected(new.client_id, e).map(Some),
    }
}

/// One item through [`capture`] in a savepoint (retried once when a concurrent writer stored its client id
/// first); then what the sync knows of its batch is read again, since rules may have changed its status or
/// custody.
fn sync_full(
    conn: &mut DbConnection,
    actor: &Actor,
    item: &SyncItem,
    st: &mut SyncState,
) -> CoreResult<SyncOutcome> {
    let mut result = conn.transaction(|c| capture(c, actor, item.batch_id, &item.record));
    if matches!(&result, Err(CoreError::Database(e)) if super::is_unique_violation(e)) {
        result = conn.transaction(|c| capture(c, actor, item.batch_id, &item.record));
    }
    if st.batches.contains_key(&item.batch_id.0) {
        let fresh = batches::get(conn, item.batch_id)?;
        st.stored_count.insert(fresh.id.0, fresh.record_count);
        st.batches.insert(fresh.id.0, fresh);
    }
    let client_id = item.record.client_id.to_string();
    if let std::collections::hash_map::Entry::Vacant(slot) = st.known.entry(client_id) {
        if let Some(row) = find_by_client_id(conn, actor.org_id, slot.key())? {
            if readable_batches(conn, actor, &[row.batch_id])?.contains(&row.batch_id) {
                st.readable.insert(row.batch_id);
            }
            slot.insert(row);
        }
    }
    match result {
        Ok(c) => Ok(answered(item.record.client_id, c.created, c.record)),
        Err(e) => rejected(item.record.client_id, e),
    }
}

/// Stores the chained records. Should another writer have stored one of their client ids since the sync read
/// them (a phone sending to two replicas at once), the statement is undone and those items go through
/// [`sync_full`] one by one, which answers them as resends or conflicts.
fn flush_pending(
    conn: &mut DbConnection,
    actor: &Actor,
    items: &[SyncItem],
    st: &mut SyncState,
    out: &mut [Option<SyncOutcome>],
) -> CoreResult<()> {
    if st.pending.is_empty() {
        return Ok(());
    }
    let mut pending = std::mem::take(&mut st.pending);
    let resends = std::mem::take(&mut st.resends);
    let mut advances: Vec<HeadAdvance> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (_, row) in &pending {
        if !seen.insert(row.batch_id) {
            continue;
        }
        let from = st
            .stored_count
            .get(&row.batch_id)
            .copied()
            .unwrap_or_default();
        let batch = st
            .batches
            .get(&row.batch_id)
            .ok_or_else(|| CoreError::Internal("chained a record on an unlocked batch".into()))?;
        advances.push(HeadAdvance {
            batch_id: row.batch_id,
            from,
            to: batch.record_count,
            head: batch.head_hash.clone(),
        });
    }
    let mut rows: Vec<RecordRow> = pending.iter().map(|(_, row)| row.clone()).collect();
    match conn.transaction(|c| append_chained(c, &mut rows, &advances)) {
        Ok(()) => {
            for a in &advances {
                st.stored_count.insert(a.batch_id, a.to);
            }
            for ((index, _), row) in pending.iter_mut().zip(rows) {
                st.known.insert(row.client_id.clone(), row.clone());
                out[*index] = Some(answered(
                    items[*index].record.client_id,
                    true,
                    row.into_model()?,
                ));
            }
            for index in resends {
                let item = &items[index];
                let answer = (|| {
                    let stored = st
                        .known
                        .get(&item.record.client_id.to_string())
                        .ok_or_else(|| {
                            CoreError::Internal("a resent record was not stored".into())
                        })?;
                    let prepared = Prepared {
                        client_id: item.record.client_id.to_string(),
                        details: to_json_text(&item.record.details)?,
                        attachments: to_json_text(&item.record.attachments)?,
                    };
                    // Stored by this sync, on a batch the actor writes to.
                    let record =
                        prepared
                            .resend(stored.clone(), item.batch_id, &item.record, |_| Ok(true))?;
                    Ok(answered(item.record.client_id, false, record))
                })();
                out[index] = Some(match answer {
                    Ok(a) => a,
                    Err(e) => rejected(item.record.client_id, e)?,
                });
            }
            Ok(())
        }
        Err(CoreError::Database(e)) if super::is_unique_violation(&e) => {
            for (_, row) in &pending {
                st.known.remove(&row.client_id);
            }
            for a in &advances {
                let fresh = batches::get(conn, BatchId(a.batch_id))?;
                st.stored_count.insert(fresh.id.0, fresh.record_count);
                st.batches.insert(fresh.id.0, fresh);
            }
            let mut indexes: Vec<usize> = pending.iter().map(|(i, _)| *i).chain(resends).collect();
            indexes.sort_unstable();
            for index in indexes {
                out[index] = Some(sync_full(conn, actor, &items[index], st)?);
            }
            Ok(())
        }
        Err(e) => Err(e),
    }
}

/// Locks batches against concurrent writers until the transaction ends, in id order, and reads them (one
/// query per thousand): the set-based form of `batches::get_for_update`. Missing ids are left out.
pub(crate) fn lock_batches(
    conn: &mut DbConnection,
    ids: &[i64],
) -> CoreResult<HashMap<i64, Batch>> {
    let mut out = HashMap::with_capacity(ids.len());
    for chunk in ids.chunks(1000) {
        let rows = match conn {
            DbConnection::Postgresql(c) => b::batches
                .filter(b::id.eq_any(chunk))
                .order(b::id)
                .for_update()
                .select(BatchRow::as_select())
                .load(c)?,
            // SQLite writers are serialised already (see `crate::db`).
            DbConnection::Sqlite(c) => b::batches
                .filter(b::id.eq_any(chunk))
                .select(BatchRow::as_select())
                .load(c)?,
        };
        for row in rows {
            let batch = row.into_model()?;
            out.insert(batch.id.0, batch);
        }
    }
    Ok(out)
}

/// A batch's head moving from `from` records to `to`, ending in `head`.
#[derive(Debug, Clone)]
pub(crate) struct HeadAdvance {
    pub batch_id: i64,
    pub from: i64,
    pub to: i64,
    pub head: String,
}

/// The set-based form of [`append`]: inserts rows the caller has chained already (each batch's rows in order
/// from its locked head, hashes computed) with multi-row statements, fills in their ids, then moves each
/// batch's head once. Like [`append`] it refuses, rather than forks a chain, when a head is not where the
/// caller found it.
pub(crate) fn append_chained(
    conn: &mut DbConnection,
    rows: &mut [RecordRow],
    advances: &[HeadAdvance],
) -> CoreResult<()> {
    let mut ids: HashMap<String, i64> = HashMap::with_capacity(rows.len());
    for chunk in rows.chunks(500) {
        let values: Vec<_> = chunk
            .iter()
            .map(|x| super::rows::record_values!(x))
            .collect();
        // RETURNING order is not guaranteed for a multi-row insert (SQLite says so), hence the client ids.
        let stored: Vec<(i64, String)> = on_backend!(conn, c => diesel::insert_into(r::records)
            .values(values)
            .returning((r::id, r::client_id))
            .get_results(c))?;
        ids.extend(stored.into_iter().map(|(id, client_id)| (client_id, id)));
    }
    for row in rows.iter_mut() {
        row.id = *ids.get(&row.client_id).ok_or_else(|| {
            CoreError::Internal(format!("record {} was not stored", row.client_id))
        })?;
    }
    advance_heads(conn, advances)
}

/// Moves many batches' heads, several hundred per statement (`UPDATE … FROM (VALUES …)`, which both backends
/// read alike); every head must be where the caller found it.
fn advance_heads(conn: &mut DbConnection, advances: &[HeadAdvance]) -> CoreResult<()> {
    use diesel::sql_types::{BigInt, Text};
    for chunk in advances.chunks(250) {
        let mut sql = String::from("WITH v(id, prev, cnt, head) AS (VALUES ");
        for i in 0..chunk.len() {
            if i > 0 {
                sql.push_str(", ");
            }
            sql.push_str("(?, ?, ?, ?)");
        }
        sql.push_str(
            ") UPDATE batches SET record_count = v.cnt, head_hash = v.head FROM v \
             WHERE batches.id = v.id AND batches.record_count = v.prev",
        );
        let moved = match conn {
            DbConnection::Sqlite(c) => {
                let mut q = diesel::sql_query(sql).into_boxed::<diesel::sqlite::Sqlite>();
                for a in chunk {
                    q = q
                        .bind::<BigInt, _>(a.batch_id)
                        .bind::<BigInt, _>(a.from)
                        .bind::<BigInt, _>(a.to)
                        .bind::<Text, _>(&a.head);
                }
                q.execute(c)?
            }
            DbConnection::Postgresql(c) => {
                let mut n = 0;
                let sql = sql
                    .split('?')
                    .enumerate()
                    .map(|(i, part)| {
                        if i == 0 {
                            part.to_owned()
                        } else {
                            n += 1;
                            format!("${n}{part}")
                        }
                    })
                    .collect::<String>();
                let mut q = diesel::sql_query(sql).into_boxed::<diesel::pg::Pg>();
                for a in chunk {
                    q = q
                        .bind::<BigInt, _>(a.batch_id)
                        .bind::<BigInt, _>(a.from)
                        .bind::<BigInt, _>(a.to)
                        .bind::<Text, _>(&a.head);
                }
                q.execute(c)?
            }
        };
        if moved != chunk.len() {
            // Cannot happen while the batches are locked; refuse rather than fork a chain.
            return Err(CoreError::Internal(format!(
                "{} of {} chain heads moved during a set-based append",
                chunk.len() - moved,
                chunk.len()
            )));
        }
    }
    Ok(())
}

/// The record an organisation stored under a client id (client ids are the organisation's own).
fn find_by_client_id(
    conn: &mut DbConnection,
    org: OrgId,
    client_id: &str,
) -> CoreResult<Option<RecordRow>> {
    Ok(on_backend!(conn, c => r::records
        .filter(r::org_id.eq(org.0))
        .filter(r::client_id.eq(client_id))
        .select(RecordRow::as_select())
        .first(c)
        .optional())?)
}

/// One record by id.
pub fn get(conn: &mut DbConnection, id: RecordId) -> CoreResult<Record> {
    use crate::error::OptionalExt;
    on_backend!(conn, c => r::records.find(id.0).select(RecordRow::as_select()).first(c))
        .or_not_found("record")?
        .into_model()
}

/// A batch's records in chain order, exactly as stored.
pub fn history(conn: &mut DbConnection, batch: BatchId) -> CoreResult<Vec<Record>> {
    let rows = on_backend!(conn, c => r::records.filter(r::batch_id.eq(batch.0)).order(r::seq).select(RecordRow::as_select()).load(c))?;
    models(rows, RecordRow::into_model)
}

/// The records of many batches, grouped by batch, each in chain order (one query).
pub fn history_of_many(
    conn: &mut DbConnection,
    batch_ids: &[i64],
) -> CoreResult<HashMap<i64, Vec<Record>>> {
    let mut out: HashMap<i64, Vec<Record>> = HashMap::new();
    for chunk in batch_ids.chunks(5000) {
        let rows = on_backend!(conn, c => r::records
            .filter(r::batch_id.eq_any(chunk))
            .order((r::batch_id, r::seq))
            .select(RecordRow::as_select())
            .load(c))?;
        for row in rows {
            let rec = row.into_model()?;
            out.entry(rec.batch_id.0).or_default().push(rec);
        }
    }
    Ok(out)
}

/// One page of a batch's records in chain order, exactly as stored: `limit` records with a `seq` greater
/// than `after`; `next_after` is the last one's `seq`.
pub fn history_page(
    conn: &mut DbConnection,
    batch: BatchId,
    page: super::Page,
) -> CoreResult<super::Paged<Record>> {
    let limit = page.limit()?;
    let rows = on_backend!(conn, c => r::records
        .filter(r::batch_id.eq(batch.0))
        .filter(r::seq.gt(page.after()))
        .order(r::seq)
        .limit(limit + 1)
        .select(RecordRow::as_select())
        .load(c))?;
    Ok(super::Paged::from_fetched(
        models(rows, RecordRow::into_model)?,
        limit,
        |x| x.seq,
    ))
}

/// One page of a batch's records in the corrected view: `limit` records other than corrections with a
/// `seq` greater than `after`, each with every correction applied to it, wherever in the chain that
/// correction is; `next_after` is the last one's `seq`.
pub fn corrected_page(
    conn: &mut DbConnection,
    batch: BatchId,
    page: super::Page,
) -> CoreResult<super::Paged<CorrectedRecord>> {
    let limit = page.limit()?;
    let correction = RecordKind::Correction.as_str();
    let rows = on_backend!(conn, c => r::records
        .filter(r::batch_id.eq(batch.0))
        .filter(r::kind.ne(correction))
        .filter(r::seq.gt(page.after()))
        .order(r::seq)
        .limit(limit + 1)
        .select(RecordRow::as_select())
        .load(c))?;
    let page_rows = super::Paged::from_fetched(rows, limit, |x| x.seq);
    let ids: Vec<i64> = page_rows.items.iter().map(|x| x.id).collect();
    let mut all = page_rows.items;
    if !ids.is_empty() {
        all.extend(on_backend!(conn, c => r::records
            .filter(r::batch_id.eq(batch.0))
            .filter(r::kind.eq(correction))
            .filter(r::supersedes_id.eq_any(&ids))
            .select(RecordRow::as_select())
            .load(c))?);
    }
    all.sort_by_key(|x| x.seq);
    Ok(super::Paged {
        items: corrected_view(models(all, RecordRow::into_model)?),
        next_after: page_rows.next_after,
    })
}

/// A batch's records in the corrected view.
pub fn corrected(conn: &mut DbConnection, batch: BatchId) -> CoreResult<Vec<CorrectedRecord>> {
    Ok(corrected_view(history(conn, batch)?))
}

/// Reads what the write-time rules need for a record of this kind (see [`records_rules::Loaded`]).
fn load_for_rules(conn: &mut DbConnection, batch: &Batch, new: &NewRecord) -> CoreResult<Loaded> {
    Ok(match &new.details {
        RecordDetails::Harvest(_) => {
            let mut ids =
                super::lineage::reachable_ids(conn, batch.id, crate::model::Direction::Backward)?;
            ids.push(batch.id.0);
            let sprayings = history_of_many(conn, &ids)?
                .into_values()
                .flat_map(|recs| records_rules::sprayings_in(corrected_view(recs)))
                .collect();
            Loaded::Harvest { sprayings }
        }
        RecordDetails::Shipping(s) => {
            let to_org = super::orgs::get(conn, s.to_org_id)?.id;
            let to_site_org = match s.to_site_id {
                None => None,
                Some(site) => match super::sites::get_site(conn, site) {
                    Ok(site) => Some(Some(site.org_id)),
                    Err(CoreError::NotFound { .. }) => Some(None),
                    Err(e) => return Err(e),
                },
            };
            Loaded::Shipping {
                to_org,
                to_site_org,
            }
        }
        RecordDetails::Correction(c) => Loaded::Correction {
            target: Box::new(get(conn, c.supersedes)?),
        },
        _ => Loaded::Nothing,
    })
}

/// The write-time rules of a record: loads what they read, then lets [`records_rules::decide`] decide.
fn rules(
    conn: &mut DbConnection,
    actor: &Actor,
    batch: &Batch,
    new: &NewRecord,
) -> CoreResult<Decision> {
    let loaded = load_for_rules(conn, batch, new)?;
    records_rules::decide(
        NewRecordEvent {
            batch,
            writer: actor.org_id,
            event_time: new.event_time,
            details: &new.details,
        },
        &loaded,
    )
}

/// Writes what a stored record decided: the batch's row moves as [`records_rules::effects`] say the stored
/// record moves it (the verifier folds the same function over the chain), and the alerts open or close.
fn apply(
    conn: &mut DbConnection,
    batch: &Batch,
    stored: &RecordRow,
    decision: Decision,
) -> CoreResult<()> {
    let record_id = Some(RecordId(stored.id));
    let before = BatchState::of(batch);
    let mut after = before.clone();
    let flags: Vec<String> = serde_json::from_str(&stored.flags).unwrap_or_default();
    let details: RecordDetails = serde_json::from_str(&stored.details)
        .map_err(|e| CoreError::Internal(format!("stored details do not parse: {e}")))?;
    for effect in records_rules::effects(&details, &flags, OrgId(stored.org_id)) {
        // Recalls are written by `store::recall`, never through capture.
        after.apply(&effect, |_| String::new());
    }
    if (after.status, &after.status_reason) != (before.status, &before.status_reason) {
        batches::set_status(conn, batch.id, after.status, after.status_reason.as_deref())?;
    }
    if (after.custodian_org_id, after.in_transit_to_org_id)
        != (before.custodian_org_id, before.in_transit_to_org_id)
    {
        on_backend!(conn, c => diesel::update(b::batches.find(batch.id.0))
            .set((
                b::custodian_org_id.eq(after.custodian_org_id.0),
                b::in_transit_to_org_id.eq(after.in_transit_to_org_id.map(|o| o.0)),
            ))
            .execute(c))?;
    }
    if let Some(alert) = decision.open {
        alerts::open(
            conn,
            NewAlert {
                kind: alert.kind(),
                org_id: Some(batch.org_id),
                batch_id: Some(batch.id),
                record_id,
                message: alert.message(),
            },
        )?;
    }
    if decision.close_holds {
        alerts::close_for_batch(conn, batch.id, &records_rules::HOLDS)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use chrono::{Duration, Utc};

    use super::*;
    use crate::db::{DatabaseUrl, PoolConfig};
    use crate::store::{orgs, sites, users, verify};
    use crate::SiteId;

    fn member(db: &Database, name: &str, kind: OrgKind, role: Role) -> (Actor, Option<SiteId>) {
        db.write(|c| {
            let org = orgs::create(
                c,
                &NewOrganisation {
                    name: name.into(),
                    kind,
                    credit_code: None,
                    division_code: "530424".into(),
                    address: None,
                    public_contact: None,
                },
            )?;
            let user = users::create(
                c,
                &NewUser {
                    org_id: org.id,
                    username: format!("user{}", org.id),
                    display_name: name.into(),
                    phone: None,
                    role,
                    password: "long enough".into(),
                },
            )?;
            let site = sites::create_site(
                c,
                org.id,
                &NewSite {
                    name: "1号地块".into(),
                    kind: SiteKind::Plot,
                    division_code: "530424".into(),
                    address: None,
                    latitude: None,
                    longitude: None,
                    area_mu: None,
                },
            )?;
            Ok((
                Actor {
                    user_id: user.id,
                    org_id: org.id,
                    role,
                },
                Some(site.id),
            ))
        })
        .expect("member")
    }

    fn item(batch: BatchId, details: RecordDetails, minutes_ago: i64) -> SyncItem {
        SyncItem {
            batch_id: batch,
            record: NewRecord {
                client_id: uuid::Uuid::new_v4(),
                event_time: Utc::now() - Duration::minutes(minutes_ago),
                site_id: None,
                details,
                attachments: Vec::new(),
            },
        }
    }

    fn note(text: &str) -> RecordDetails {
        RecordDetails::Note(Note { text: text.into() })
    }

    #[test]
    fn sync_keeps_item_order_across_plain_and_ruled_records() {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = DatabaseUrl::Sqlite {
            path: dir.path().join("s.sqlite"),
            create: true,
        };
        let db = Database::open(&url, &PoolConfig::default()).expect("open");
        let (farmer, plot) = member(&db, "合作社", OrgKind::Cooperative, Role::Farmer);
        let (processor, _) = member(&db, "加工厂", OrgKind::Processor, Role::Processor);
        let batch = db
            .write(|c| {
                let product = sites::create_product(
                    c,
                    farmer.org_id,
                    &NewProduct {
                        name: "沃柑".into(),
                        category: "水果".into(),
                        brand: None,
                        certifications: Vec::new(),
                        gtin: None,
                        label_fields: crate::model::LabelField::DEFAULT.to_vec(),
                        distribution_area: vec![],
                    },
                )?;
                batches::create(
                    c,
                    &farmer,
                    &NewBatch {
                        product_id: product.id,
                        lot_code: "L1".into(),
                        quantity: 100.0,
                        unit: "kg".into(),
                        origin_site_id: plot,
                    },
                )
            })
            .expect("batch")
            .id;
        let spraying = RecordDetails::Spraying(Spraying {
            pesticide_name: "阿维菌素".into(),
            registration_number: "PD20080001".into(),
            active_ingredient: "阿维菌素 1.8%".into(),
            dose: 30.0,
            dose_unit: "ml/亩".into(),
            pre_harvest_interval_days: 14,
            target: None,
        });
        let first = item(batch, note("巡园"), 90);
        let mut conflict = first.clone();
        conflict.record.details = note("另一条");
        let mut sprayed = item(batch, spraying, 80);
        sprayed.record.site_id = plot;
        let mut elsewhere = item(batch, note("不存在的地块"), 75);
        elsewhere.record.site_id = Some(SiteId(999_999));
        let shipping = RecordDetails::Shipping(Shipping {
            to_org_id: processor.org_id,
            to_site_id: None,
            carrier: None,
            vehicle_plate: None,
            quantity: None,
            unit: None,
        });
        let twice = item(batch, note("同步内重复"), 40);
        let items = vec![
            first.clone(),
            sprayed,
            item(
                batch,
                RecordDetails::Harvest(Harvest {
                    quantity: 90.0,
                    unit: "kg".into(),
                }),
                60,
            ),
            item(batch, note("采收后"), 50),
            elsewhere,
            twice.clone(),
            twice,
            item(batch, shipping, 30),
            item(batch, note("发货后"), 20),
            first,
            conflict,
            item(BatchId(999_999), note("无此批次"), 10),
        ];
        let out = sync(&db, &farmer, &items).expect("sync");
        let status: Vec<&str> = out.iter().map(|o| o.status.as_str()).collect();
        assert_eq!(
            status,
            [
                "created", "created", "created", "created", "rejected", "created", "existing",
                "created", "created", "existing", "rejected", "rejected"
            ]
        );
        let code = |i: usize| out[i].error.as_ref().map(|e| e.error.clone());
        assert_eq!(code(4).as_deref(), Some("not_found"));
        assert_eq!(code(10).as_deref(), Some("record_conflict"));
        assert_eq!(code(11).as_deref(), Some("not_found"));
        // The harvest came 20 minutes after a spraying with a 14-day interval: flagged and blocked, as a
        // single capture would.
        let harvest = out[2].record.as_ref().expect("harvest");
        assert_eq!(harvest.flags, ["harvest_within_phi"]);

        let stored = db.read(|c| history(c, batch)).expect("history");
        let texts: Vec<(i64, &str)> = stored
            .iter()
            .map(|r| (r.seq, r.details.kind().as_str()))
            .collect();
        assert_eq!(
            texts,
            [
                (1, "note"),
                (2, "spraying"),
                (3, "harvest"),
                (4, "note"),
                (5, "note"),
                (6, "shipping"),
                (7, "note")
            ]
        );
        let created = out
            .iter()
            .filter(|o| o.status == "created")
            .filter_map(|o| o.record.as_ref());
        for (o, r) in created.zip(&stored) {
            assert_eq!((o.id, &o.hash), (r.id, &r.hash));
        }
        let id = |i: usize| out[i].record.as_ref().map(|r| r.id);
        assert_eq!(
            id(6),
            id(5),
            "a resend within the sync answers the stored record"
        );
        assert_eq!(id(9), id(0));
        assert_eq!(
            out[10]
                .error
                .as_ref()
                .and_then(|e| e.details.as_ref())
                .map(|d| d["stored"]["id"].clone()),
            id(0).map(|r| serde_json::json!(r.0))
        );
        let b = db.read(|c| batches::get(c, batch)).expect("batch");
        assert_eq!((b.record_count, b.status), (7, BatchStatus::Blocked));
        assert_eq!(b.in_transit_to_org_id, Some(processor.org_id));
        let report = db
            .read(|c| verify::verify_chains(c, |_| {}))
            .expect("verify");
        assert!(report.issues.is_empty(), "{:?}", report.issues);

        // Resending the whole backlog stores nothing new.
        let again = sync(&db, &farmer, &items).expect("sync again");
        assert!(again.iter().all(|o| o.status != "created"), "{again:?}");
        assert_eq!(db.read(|c| history(c, batch)).expect("history").len(), 7);
    }
}
