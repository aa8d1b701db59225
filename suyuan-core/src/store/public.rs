//! The public story of a batch: what a consumer's scan page may show, and nothing more.
//!
//! Left out on purpose: user ids and names, phone numbers, credit codes, custody and anything about
//! organisations beyond their name, kind, region, address and chosen public contact.

use std::collections::HashMap;

use diesel::prelude::*;
use serde::Serialize;
use utoipa::ToSchema;

use super::rows::{models, OrgRow, SiteRow};
use super::DbConnection;
use crate::error::CoreResult;
use crate::model::*;
use crate::on_backend;
use crate::schema::{organisations::dsl as o, sites::dsl as s};
use crate::BatchId;

/// A record as a consumer sees it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PublicRecord {
    pub event_time: chrono::DateTime<chrono::Utc>,
    pub details: RecordDetails,
    pub organisation: String,
    pub site: Option<String>,
    /// The site's id and kind (the scan page finds plot photos and cold-store temperatures by them).
    #[schema(value_type = Option<i64>)]
    pub site_id: Option<crate::SiteId>,
    pub site_kind: Option<SiteKind>,
    pub flags: Vec<String>,
    pub state: CorrectionState,
    /// Reasons of the corrections applied.
    pub corrections: Vec<String>,
}

/// A batch in the public story.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PublicBatch {
    pub id: BatchId,
    pub lot_code: String,
    pub product: String,
    pub brand: Option<String>,
    pub certifications: Vec<Certification>,
    pub producer: PublicOrganisation,
    pub status: BatchStatus,
    pub status_reason: Option<String>,
    /// Where it was grown, for batches that started on a plot.
    #[schema(value_type = Option<i64>)]
    pub origin_site_id: Option<crate::SiteId>,
    /// Steps upstream of the scanned batch (0 for the batch itself).
    pub depth: i32,
    pub records: Vec<PublicRecord>,
}

/// The scanned batch and everything it came from.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PublicStory {
    pub batch: PublicBatch,
    pub upstream: Vec<PublicBatch>,
}

/// Builds the public story of a batch from its backward trace.
pub fn story(conn: &mut DbConnection, id: BatchId) -> CoreResult<PublicStory> {
    super::batches::get(conn, id)?;
    // Anyone may read a batch's story; only public fields leave this function.
    let trace = super::lineage::trace_unchecked(conn, id, Direction::Backward)?;
    let mut org_ids: Vec<i64> = trace.batches.iter().map(|t| t.batch.org_id.0).collect();
    org_ids.extend(
        trace
            .batches
            .iter()
            .flat_map(|t| t.records.iter().map(|r| r.record.org_id.0)),
    );
    org_ids.sort_unstable();
    org_ids.dedup();
    let orgs: HashMap<i64, Organisation> = models(
        on_backend!(conn, c => o::organisations.filter(o::id.eq_any(&org_ids)).select(OrgRow::as_select()).load(c))?,
        OrgRow::into_model,
    )?
    .into_iter()
    .map(|org| (org.id.0, org))
    .collect();
    let mut site_ids: Vec<i64> = trace
        .batches
        .iter()
        .flat_map(|t| {
            t.records
                .iter()
                .filter_map(|r| r.record.site_id.map(|s| s.0))
        })
        .collect();
    site_ids.extend(
        trace
            .batches
            .iter()
            .filter_map(|t| t.batch.origin_site_id.map(|s| s.0)),
    );
    site_ids.sort_unstable();
    site_ids.dedup();
    let sites: HashMap<i64, Site> = models(
        on_backend!(conn, c => s::sites.filter(s::id.eq_any(&site_ids)).select(SiteRow::as_select()).load(c))?,
        SiteRow::into_model,
    )?
    .into_iter()
    .map(|site| (site.id.0, site))
    .collect();

    let mut out = Vec::with_capacity(trace.batches.len());
    for traced in trace.batches {
        let product = super::sites::get_product(conn, traced.batch.product_id)?;
        let producer = orgs
            .get(&traced.batch.org_id.0)
            .map(PublicOrganisation::from);
        let Some(producer) = producer else { continue };
        let records = traced
            .records
            .into_iter()
            .filter(|r| r.state != CorrectionState::Retracted)
            .map(|r| {
                let site = own_site(&sites, r.record.site_id, r.record.org_id);
                PublicRecord {
                    event_time: r.record.event_time,
                    organisation: orgs
                        .get(&r.record.org_id.0)
                        .map(|o| o.name.clone())
                        .unwrap_or_default(),
                    site: site.map(|s| s.name.clone()),
                    site_id: site.map(|s| s.id),
                    site_kind: site.map(|s| s.kind),
                    details: r.record.details,
                    flags: r.record.flags,
                    state: r.state,
                    corrections: r.corrections.into_iter().map(|c| c.reason).collect(),
                }
            })
            .collect();
        out.push(PublicBatch {
            id: traced.batch.id,
            lot_code: traced.batch.lot_code,
            product: product.name,
            brand: product.brand,
            certifications: product.certifications,
            producer,
            status: traced.batch.status,
            status_reason: traced.batch.status_reason,
            origin_site_id: own_site(&sites, traced.batch.origin_site_id, traced.batch.org_id)
                .map(|s| s.id),
            depth: traced.depth,
            records,
        });
    }
    let root_pos = out.iter().position(|b| b.id == id).unwrap_or(0);
    if out.is_empty() {
        return Err(crate::CoreError::NotFound { what: "batch" });
    }
    let batch = out.remove(root_pos);
    Ok(PublicStory {
        batch,
        upstream: out,
    })
}

/// The site a record or batch names, if it is a site of the organisation that wrote it. Capture refuses any
/// other (see `records::References`); this keeps rows stored before that check, or written around it, from
/// putting another organisation's plot, and through it its camera photos and temperatures, on a page.
fn own_site(
    sites: &HashMap<i64, Site>,
    site: Option<crate::SiteId>,
    org: crate::OrgId,
) -> Option<&Site> {
    site.and_then(|s| sites.get(&s.0))
        .filter(|s| s.org_id == org)
}

/// The batch a GS1 Digital Link names: the product with this GTIN (any of GTIN-8/12/13/14, compared as
/// GTIN-14) and the lot code. Public, like the story it leads to.
pub fn batch_by_gtin_lot(
    conn: &mut DbConnection,
    gtin: &str,
    lot: &str,
) -> CoreResult<Option<BatchId>> {
    use crate::schema::{batches::dsl as b, products::dsl as p};
    let wanted = gtin14(gtin);
    let products: Vec<(i64, Option<String>)> = on_backend!(conn, c => p::products
        .filter(p::gtin.is_not_null())
        .select((p::id, p::gtin))
        .load(c))?;
    let ids: Vec<i64> = products
        .into_iter()
        .filter(|(_, g)| g.as_deref().map(gtin14) == Some(wanted.clone()))
        .map(|(id, _)| id)
        .collect();
    if ids.is_empty() {
        return Ok(None);
    }
    let found: Option<i64> = on_backend!(conn, c => b::batches
        .filter(b::product_id.eq_any(&ids))
        .filter(b::lot_code.eq(lot))
        .order(b::id)
        .select(b::id)
        .first(c)
        .optional())?;
    Ok(found.map(BatchId))
}

/// A GTIN written as 14 digits (GS1 Digital Link's form): left-padded with zeros.
pub fn gtin14(gtin: &str) -> String {
    format!("{gtin:0>14}")
}
