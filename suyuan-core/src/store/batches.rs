//! Batches: creation, lookup, custody and status.

use diesel::prelude::*;

use super::rows::{models, BatchRow};
use super::{DbConnection, Page, Paged};
use crate::chain::GENESIS_HASH;
use crate::error::{CoreError, CoreResult, OptionalExt};
use crate::model::{Actor, Batch, BatchStatus, NewBatch};
use crate::on_backend;
use crate::policy::{self, BatchRelation};
use crate::schema::{batches::dsl as b, inspection_requests::dsl as ir};
use crate::time::now_millis;
use crate::{BatchId, OrgId};

/// The first batch (lowest id) of the product named `name`, if any: the demo county's showcase.
pub fn first_of_product_named(conn: &mut DbConnection, name: &str) -> CoreResult<Option<BatchId>> {
    use crate::schema::products::dsl as p;
    let id: Option<i64> = on_backend!(conn, c => b::batches
        .inner_join(p::products)
        .filter(p::name.eq(name))
        .order(b::id)
        .select(b::id)
        .first(c)
        .optional())?;
    Ok(id.map(BatchId))
}

/// Creates a batch of one of the actor's organisation's products.
pub fn create(conn: &mut DbConnection, actor: &Actor, new: &NewBatch) -> CoreResult<Batch> {
    policy::ensure_member_of(actor, actor.org_id)?;
    new.validate()?;
    let product = super::sites::get_product(conn, new.product_id)?;
    if product.org_id != actor.org_id {
        return Err(CoreError::invalid(
            "foreign_product",
            "the product belongs to another organisation",
        ));
    }
    if let Some(site) = new.origin_site_id {
        let site = super::sites::get_site(conn, site)?;
        if site.org_id != actor.org_id {
            return Err(CoreError::invalid(
                "foreign_site",
                "the origin site belongs to another organisation",
            ));
        }
    }
    insert(conn, actor.org_id, new, now_millis())
}

/// Inserts a batch row without checks (used by `create` and by transformations).
pub(crate) fn insert(
    conn: &mut DbConnection,
    org: OrgId,
    new: &NewBatch,
    now: i64,
) -> CoreResult<Batch> {
    let inserted = on_backend!(conn, c => diesel::insert_into(b::batches)
        .values((
            b::org_id.eq(org.0),
            b::product_id.eq(new.product_id.0),
            b::lot_code.eq(&new.lot_code),
            b::quantity.eq(new.quantity),
            b::unit.eq(&new.unit),
            b::status.eq(BatchStatus::Open.as_str()),
            b::origin_site_id.eq(new.origin_site_id.map(|s| s.0)),
            b::custodian_org_id.eq(org.0),
            b::record_count.eq(0i64),
            b::head_hash.eq(GENESIS_HASH),
            b::created_at.eq(now),
        ))
        .returning(BatchRow::as_returning())
        .get_result(c));
    match inserted {
        Ok(row) => row.into_model(),
        Err(e) if super::is_unique_violation(&e) => Err(CoreError::conflict(
            "duplicate_lot_code",
            format!(
                "lot code {} is already used by this organisation",
                new.lot_code
            ),
        )),
        Err(e) => Err(e.into()),
    }
}

/// One batch, without access checks (callers check with [`crate::policy`]).
pub fn get(conn: &mut DbConnection, id: BatchId) -> CoreResult<Batch> {
    on_backend!(conn, c => b::batches.find(id.0).select(BatchRow::as_select()).first(c))
        .or_not_found("batch")?
        .into_model()
}

/// One batch, locked against concurrent writers until the transaction ends. SQLite writers are already
/// serialised (see [`crate::db`]); PostgreSQL takes a row lock so that two replicas appending to the same
/// batch's chain queue instead of forking it.
pub(crate) fn get_for_update(conn: &mut DbConnection, id: BatchId) -> CoreResult<Batch> {
    let row = match conn {
        DbConnection::Postgresql(c) => b::batches
            .find(id.0)
            .for_update()
            .select(BatchRow::as_select())
            .first(c),
        DbConnection::Sqlite(c) => b::batches.find(id.0).select(BatchRow::as_select()).first(c),
    };
    row.or_not_found("batch")?.into_model()
}

/// One batch, if the actor may see it (404 otherwise).
pub fn get_for(conn: &mut DbConnection, actor: &Actor, id: BatchId) -> CoreResult<Batch> {
    let batch = get(conn, id)?;
    let rel = relation(conn, actor, &batch)?;
    policy::ensure_read_batch(actor, &batch, rel)?;
    Ok(batch)
}

/// The facts about the actor's organisation and the batch that the policy needs.
pub fn relation(
    conn: &mut DbConnection,
    actor: &Actor,
    batch: &Batch,
) -> CoreResult<BatchRelation> {
    // Only inspectors' access depends on inspection requests; spare everyone else the query.
    if actor.role != crate::model::Role::Inspector {
        return Ok(BatchRelation::default());
    }
    let requested: i64 = on_backend!(conn, c => ir::inspection_requests
        .filter(ir::batch_id.eq(batch.id.0))
        .filter(ir::lab_org_id.eq(actor.org_id.0))
        .count()
        .get_result(c))?;
    Ok(BatchRelation {
        inspection_requested: requested > 0,
    })
}

/// Batches the actor may list: all for regulators and operators, otherwise those the organisation made or
/// holds (or is receiving), and those its lab was asked to inspect.
pub fn list_for(conn: &mut DbConnection, actor: &Actor, page: Page) -> CoreResult<Paged<Batch>> {
    let limit = page.limit()?;
    let all = policy::reads_all(actor);
    let org = actor.org_id.0;
    let rows = on_backend!(conn, c => {
        let mut q = b::batches.filter(b::id.gt(page.after())).into_boxed();
        if !all {
            let asked = ir::inspection_requests.filter(ir::lab_org_id.eq(org)).select(ir::batch_id);
            q = q.filter(
                b::org_id.eq(org)
                    .or(b::custodian_org_id.eq(org))
                    .or(b::in_transit_to_org_id.eq(org))
                    .or(b::id.eq_any(asked)),
            );
        }
        q.order(b::id).limit(limit + 1).select(BatchRow::as_select()).load(c)
    })?;
    Ok(Paged::from_fetched(
        models(rows, BatchRow::into_model)?,
        limit,
        |x| x.id.0,
    ))
}

/// Asks a lab to inspect a batch; its inspectors may then read the batch and record inspections on it.
pub fn request_inspection(
    conn: &mut DbConnection,
    actor: &Actor,
    id: BatchId,
    lab: OrgId,
) -> CoreResult<()> {
    let batch = get(conn, id)?;
    policy::ensure_request_inspection(actor, &batch)?;
    let lab_org = super::orgs::get(conn, lab)?;
    if lab_org.kind != crate::model::OrgKind::Lab {
        return Err(CoreError::invalid(
            "not_a_lab",
            "inspections can only be requested from a lab",
        ));
    }
    // Asking the same lab twice is harmless.
    on_backend!(conn, c => diesel::insert_into(ir::inspection_requests)
        .values((
            ir::batch_id.eq(id.0),
            ir::lab_org_id.eq(lab.0),
            ir::requested_by.eq(actor.user_id.0),
            ir::requested_at.eq(now_millis()),
        ))
        .on_conflict_do_nothing()
        .execute(c))?;
    Ok(())
}

/// Changes a batch's status (rules, recalls).
pub(crate) fn set_status(
    conn: &mut DbConnection,
    id: BatchId,
    status: BatchStatus,
    reason: Option<&str>,
) -> CoreResult<()> {
    on_backend!(conn, c => diesel::update(b::batches.find(id.0))
        .set((b::status.eq(status.as_str()), b::status_reason.eq(reason)))
        .execute(c))?;
    Ok(())
}
