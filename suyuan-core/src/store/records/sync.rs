//! `/records/sync`: an offline phone's backlog in one transaction, each item answering exactly as a single
//! capture of it would. Plain records are chained in memory and stored set-wise; the rest go through
//! [`super::capture`] one by one in savepoints, in item order.

use std::collections::HashMap;

use diesel::prelude::*;
use serde::Serialize;
use utoipa::ToSchema;

use crate::chain::record_hash;
use crate::db::Database;
use crate::error::{CoreError, CoreResult};
use crate::model::*;
use crate::on_backend;
use crate::policy;
use crate::schema::records::dsl as r;
use crate::store::batches;
use crate::store::rows::RecordRow;
use crate::store::DbConnection;
use crate::BatchId;

use super::capture::capture;
use super::chain::{append_chained, lock_batches, HeadAdvance};
use super::prepare::{readable_batches, to_json_text, Prepared};
use super::read::find_by_client_id;
use super::refs::References;

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
    if matches!(&result, Err(CoreError::Database(e)) if crate::store::is_unique_violation(e)) {
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
        Err(CoreError::Database(e)) if crate::store::is_unique_violation(&e) => {
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

#[cfg(test)]
mod tests {
    use chrono::{Duration, Utc};

    use super::*;
    use crate::db::{DatabaseUrl, PoolConfig};
    use crate::store::records::history;
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
