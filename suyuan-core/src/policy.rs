//! Who may do what: the one place where access is decided.
//!
//! - farmers, processors and logistics staff ("members") write for their own organisation: its sites,
//!   products and batches, and the batches it holds (custody moves with shipping and receiving);
//! - an inspector records inspections on batches their lab was asked to inspect, and reads those batches;
//! - regulators read everything and recall; members of the organisation that made a batch may recall it too;
//! - operators manage organisations and accounts and read everything;
//! - nobody unauthenticated reads anything but the public story of a batch (see `store::public`);
//! - exports show what the caller may read: a batch's trace to whoever may read the batch, a period's events
//!   of the batches the caller may read, a background export's file only to whoever asked for it.
//!
//! Reads of something the caller may not see answer 404 rather than 403, so ids cannot be probed.

use crate::error::{CoreError, CoreResult};
use crate::model::{Actor, Batch, RecordKind, Role};
use crate::OrgId;

/// Facts about a batch's relation to the actor's organisation that the policy needs beyond the batch row.
#[derive(Debug, Clone, Copy, Default)]
pub struct BatchRelation {
    /// The actor's organisation is a lab asked to inspect this batch.
    pub inspection_requested: bool,
}

fn is_member(role: Role) -> bool {
    matches!(role, Role::Farmer | Role::Processor | Role::Logistics)
}

fn reads_everything(role: Role) -> bool {
    matches!(role, Role::Regulator | Role::Operator)
}

/// May the actor see this batch's private data (records with actors, custody)?
pub fn can_read_batch(actor: &Actor, batch: &Batch, rel: BatchRelation) -> bool {
    reads_everything(actor.role)
        || actor.org_id == batch.org_id
        || actor.org_id == batch.custodian_org_id
        || Some(actor.org_id) == batch.in_transit_to_org_id
        || (actor.role == Role::Inspector && rel.inspection_requested)
}

/// Fails with 404 when the actor may not see the batch.
pub fn ensure_read_batch(actor: &Actor, batch: &Batch, rel: BatchRelation) -> CoreResult<()> {
    if can_read_batch(actor, batch, rel) {
        Ok(())
    } else {
        Err(CoreError::NotFound { what: "batch" })
    }
}

/// Which batches an actor may read, as a filter the store turns into a query over many batches (a period
/// export): the same rule as [`can_read_batch`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchReadScope {
    /// Regulators and operators: every batch.
    All,
    /// The batches the organisation made, holds or is receiving, and — for an inspector — those its lab was
    /// asked to inspect.
    Org { org: OrgId, inspected: bool },
}

/// The batches the actor may read.
pub fn batch_read_scope(actor: &Actor) -> BatchReadScope {
    if reads_everything(actor.role) {
        BatchReadScope::All
    } else {
        BatchReadScope::Org {
            org: actor.org_id,
            inspected: actor.role == Role::Inspector,
        }
    }
}

/// May the actor read the trace of this batch (its lineage backward and forward, with the records and
/// transformations of every batch on it, as `GET /batches/{id}/trace` and the trace export show it)?
/// Whoever may read the batch: where it came from and where it went is what its holder answers for, in a
/// recall above all.
pub fn ensure_read_trace(actor: &Actor, batch: &Batch, rel: BatchRelation) -> CoreResult<()> {
    ensure_read_batch(actor, batch, rel)
}

/// May the actor read this background export? Only the person who asked for it: it holds what that person
/// may read.
pub fn ensure_read_export(actor: &Actor, requested_by: crate::UserId) -> CoreResult<()> {
    if actor.user_id == requested_by {
        Ok(())
    } else {
        Err(CoreError::NotFound { what: "export" })
    }
}

/// May the actor append a record of this kind to the batch?
pub fn ensure_write_record(
    actor: &Actor,
    batch: &Batch,
    kind: RecordKind,
    rel: BatchRelation,
) -> CoreResult<()> {
    ensure_read_batch(actor, batch, rel)?;
    let allowed = match kind {
        RecordKind::Inspection => actor.role == Role::Inspector && rel.inspection_requested,
        RecordKind::Receiving => {
            is_member(actor.role) && Some(actor.org_id) == batch.in_transit_to_org_id
        }
        RecordKind::Recall => false,
        // A correction is checked against the superseded record's author organisation by the store.
        RecordKind::Correction => {
            (is_member(actor.role) && actor.org_id == batch.custodian_org_id)
                || (actor.role == Role::Inspector && rel.inspection_requested)
        }
        _ => is_member(actor.role) && actor.org_id == batch.custodian_org_id,
    };
    if allowed {
        Ok(())
    } else {
        Err(CoreError::forbidden(match kind {
            RecordKind::Inspection => {
                "only an inspector of a lab asked to inspect this batch may record an inspection"
            }
            RecordKind::Receiving => {
                "only the organisation the batch was shipped to may record its receipt"
            }
            _ => "only members of the organisation holding this batch may record on it",
        }))
    }
}

/// May the actor create sites, products and batches for this organisation?
pub fn ensure_member_of(actor: &Actor, org: OrgId) -> CoreResult<()> {
    if is_member(actor.role) && actor.org_id == org {
        Ok(())
    } else {
        Err(CoreError::forbidden(
            "only members of this organisation may do that",
        ))
    }
}

/// May the actor turn these input batches into new ones? (They must hold every input.)
pub fn ensure_transform(actor: &Actor, inputs: &[Batch]) -> CoreResult<()> {
    if !is_member(actor.role) {
        return Err(CoreError::forbidden(
            "only members of the organisation holding the batches may transform them",
        ));
    }
    for b in inputs {
        ensure_read_batch(actor, b, BatchRelation::default())?;
        if b.custodian_org_id != actor.org_id {
            return Err(CoreError::forbidden(format!(
                "batch {} is not held by your organisation",
                b.id
            )));
        }
    }
    Ok(())
}

/// May the actor ask a lab to inspect the batch?
pub fn ensure_request_inspection(actor: &Actor, batch: &Batch) -> CoreResult<()> {
    ensure_read_batch(actor, batch, BatchRelation::default())?;
    if is_member(actor.role)
        && (actor.org_id == batch.custodian_org_id || actor.org_id == batch.org_id)
    {
        Ok(())
    } else {
        Err(CoreError::forbidden(
            "only the organisation holding the batch may ask for an inspection",
        ))
    }
}

/// May the actor recall the batch? Regulators always; the organisation that made it, voluntarily.
pub fn ensure_recall(actor: &Actor, batch: &Batch) -> CoreResult<()> {
    ensure_read_batch(actor, batch, BatchRelation::default())?;
    if actor.role == Role::Regulator || (is_member(actor.role) && actor.org_id == batch.org_id) {
        Ok(())
    } else {
        Err(CoreError::forbidden(
            "only a regulator or the organisation that made the batch may recall it",
        ))
    }
}

/// May the actor manage organisations and accounts?
pub fn ensure_operator(actor: &Actor) -> CoreResult<()> {
    if actor.role == Role::Operator {
        Ok(())
    } else {
        Err(CoreError::forbidden(
            "only operators may manage organisations and accounts",
        ))
    }
}

/// May the actor read the whole county's data (all organisations, all alerts, all batches)?
pub fn reads_all(actor: &Actor) -> bool {
    reads_everything(actor.role)
}

/// May the actor read this organisation's private listings (sites, products, batches, alerts)?
pub fn ensure_read_org(actor: &Actor, org: OrgId) -> CoreResult<()> {
    if reads_everything(actor.role) || actor.org_id == org {
        Ok(())
    } else {
        Err(CoreError::NotFound {
            what: "organisation",
        })
    }
}

/// May the actor mint, bind or void labels of this organisation's products? Members of the organisation
/// only; others who may read its labels (regulators, operators) get 403, the rest 404.
pub fn ensure_label_write(actor: &Actor, org: OrgId) -> CoreResult<()> {
    ensure_label_read(actor, org)?;
    if is_member(actor.role) && actor.org_id == org {
        Ok(())
    } else {
        Err(CoreError::forbidden(
            "only members of the product's organisation may mint, activate or void its labels",
        ))
    }
}

/// May the actor read this organisation's label runs, activations and voids? (A label's public state is
/// open to anyone who scans it, see `store::labels::lookup`.)
pub fn ensure_label_read(actor: &Actor, org: OrgId) -> CoreResult<()> {
    if reads_everything(actor.role) || actor.org_id == org {
        Ok(())
    } else {
        Err(CoreError::NotFound { what: "label run" })
    }
}

/// May the actor register devices? Operators do it for the organisations they serve.
pub fn ensure_register_device(actor: &Actor) -> CoreResult<()> {
    ensure_operator(actor)
}

/// May the actor read a site's devices, readings, images and rules? Its organisation, regulators and
/// operators; to anyone else the site does not exist (404).
pub fn ensure_read_site_data(actor: &Actor, site_org: OrgId) -> CoreResult<()> {
    if reads_everything(actor.role) || actor.org_id == site_org {
        Ok(())
    } else {
        Err(CoreError::NotFound { what: "site" })
    }
}

/// May the actor set rules on a site? Members of its organisation and operators.
pub fn ensure_write_site_rules(actor: &Actor, site_org: OrgId) -> CoreResult<()> {
    ensure_read_site_data(actor, site_org)?;
    if actor.role == Role::Operator || (is_member(actor.role) && actor.org_id == site_org) {
        Ok(())
    } else {
        Err(CoreError::forbidden(
            "only members of the site's organisation and operators set its rules",
        ))
    }
}
