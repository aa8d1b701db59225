//! Capturing one record: lock its batch, prepare it (`super::prepare`), check its references, load what
//! the write-time rules read, let them decide ([`crate::rules::records`]), chain it and write what they
//! decided, in the caller's transaction.

use diesel::prelude::*;

use crate::db::Database;
use crate::error::{CoreError, CoreResult};
use crate::model::*;
use crate::on_backend;
use crate::rules::records::{self as records_rules, BatchState, Decision, Loaded, NewRecordEvent};
use crate::schema::batches::dsl as b;
use crate::store::alerts::{self, NewAlert};
use crate::store::batches;
use crate::store::rows::RecordRow;
use crate::store::DbConnection;
use crate::{BatchId, OrgId, RecordId};

use super::chain::append;
use super::prepare::{readable_batches, Prepared};
use super::read::{find_by_client_id, get, history_of_many};
use super::refs::References;

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
            Err(CoreError::Database(e)) if crate::store::is_unique_violation(&e) && attempt < 2 => {
                attempt += 1
            }
            other => return other,
        }
    }
}

/// Reads what the write-time rules need for a record of this kind (see [`records_rules::Loaded`]).
fn load_for_rules(conn: &mut DbConnection, batch: &Batch, new: &NewRecord) -> CoreResult<Loaded> {
    Ok(match &new.details {
        RecordDetails::Harvest(_) => {
            let mut ids = crate::store::lineage::reachable_ids(
                conn,
                batch.id,
                crate::model::Direction::Backward,
            )?;
            ids.push(batch.id.0);
            let sprayings = history_of_many(conn, &ids)?
                .into_values()
                .flat_map(|recs| records_rules::sprayings_in(corrected_view(recs)))
                .collect();
            Loaded::Harvest { sprayings }
        }
        RecordDetails::Shipping(s) => {
            let to_org = crate::store::orgs::get(conn, s.to_org_id)?.id;
            let to_site_org = match s.to_site_id {
                None => None,
                Some(site) => match crate::store::sites::get_site(conn, site) {
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
