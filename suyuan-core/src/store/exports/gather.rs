//! Gathering tracking events with everything their key data elements need: the lot (batch, product, maker),
//! the places (site and organisation), the corrections, a receipt's shipment, a transformation's inputs and
//! outputs. A trace is gathered at once; a period a page at a time, in event-time order, so that memory
//! stays bounded however long the period.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use diesel::prelude::*;

use crate::error::{CoreError, CoreResult};
use crate::model::*;
use crate::on_backend;
use crate::policy::{self, BatchReadScope};
use crate::schema::{
    batches::dsl as b, inspection_requests::dsl as ir, lineage_edges::dsl as e,
    organisations::dsl as o, products::dsl as p, records::dsl as r, sites::dsl as s,
    transformations::dsl as t,
};
use crate::store::rows::{models, BatchRow, EdgeRow, OrgRow, ProductRow, RecordRow, SiteRow};
use crate::store::{batches, lineage, records, DbConnection};
use crate::time::to_datetime;
use crate::{BatchId, OrgId, ProductId, RecordId, SiteId, TransformationId};

/// Rows per `IN (…)` list.
const CHUNK: usize = 5_000;

/// The most lots a period export keeps loaded between pages.
const DIRECTORY_LOTS: usize = 50_000;

/// The lots, places and transformations met so far, loaded once each.
#[derive(Default)]
pub struct Directory {
    orgs: HashMap<OrgId, Arc<Organisation>>,
    sites: HashMap<SiteId, Arc<Site>>,
    products: HashMap<ProductId, Arc<Product>>,
    lots: HashMap<BatchId, Arc<Lot>>,
    transformations: HashMap<TransformationId, Arc<TransformationInfo>>,
}

fn missing(what: &'static str) -> CoreError {
    CoreError::Internal(format!("a {what} named by a stored row is missing"))
}

impl Directory {
    fn orgs(
        &mut self,
        conn: &mut DbConnection,
        ids: impl IntoIterator<Item = OrgId>,
    ) -> CoreResult<()> {
        let want: Vec<i64> = ids
            .into_iter()
            .filter(|id| !self.orgs.contains_key(id))
            .map(|id| id.0)
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        for chunk in want.chunks(CHUNK) {
            let rows = on_backend!(conn, c => o::organisations.filter(o::id.eq_any(chunk)).select(OrgRow::as_select()).load(c))?;
            for org in models(rows, OrgRow::into_model)? {
                self.orgs.insert(org.id, Arc::new(org));
            }
        }
        Ok(())
    }

    fn sites(
        &mut self,
        conn: &mut DbConnection,
        ids: impl IntoIterator<Item = SiteId>,
    ) -> CoreResult<()> {
        let want: Vec<i64> = ids
            .into_iter()
            .filter(|id| !self.sites.contains_key(id))
            .map(|id| id.0)
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        for chunk in want.chunks(CHUNK) {
            let rows = on_backend!(conn, c => s::sites.filter(s::id.eq_any(chunk)).select(SiteRow::as_select()).load(c))?;
            for site in models(rows, SiteRow::into_model)? {
                self.sites.insert(site.id, Arc::new(site));
            }
        }
        let orgs: Vec<OrgId> = self.sites.values().map(|s| s.org_id).collect();
        self.orgs(conn, orgs)
    }

    fn lots(
        &mut self,
        conn: &mut DbConnection,
        ids: impl IntoIterator<Item = BatchId>,
    ) -> CoreResult<()> {
        let want: Vec<i64> = ids
            .into_iter()
            .filter(|id| !self.lots.contains_key(id))
            .map(|id| id.0)
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        let mut loaded = Vec::with_capacity(want.len());
        for chunk in want.chunks(CHUNK) {
            let rows = on_backend!(conn, c => b::batches.filter(b::id.eq_any(chunk)).select(BatchRow::as_select()).load(c))?;
            loaded.extend(models(rows, BatchRow::into_model)?);
        }
        let products: Vec<i64> = loaded
            .iter()
            .map(|x| x.product_id)
            .filter(|id| !self.products.contains_key(id))
            .map(|id| id.0)
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        for chunk in products.chunks(CHUNK) {
            let rows = on_backend!(conn, c => p::products.filter(p::id.eq_any(chunk)).select(ProductRow::as_select()).load(c))?;
            for product in models(rows, ProductRow::into_model)? {
                self.products.insert(product.id, Arc::new(product));
            }
        }
        self.orgs(conn, loaded.iter().map(|x| x.org_id))?;
        for batch in loaded {
            let product = self
                .products
                .get(&batch.product_id)
                .cloned()
                .ok_or_else(|| missing("product"))?;
            let maker = self.org(batch.org_id)?;
            self.lots.insert(
                batch.id,
                Arc::new(Lot {
                    batch,
                    product,
                    maker,
                }),
            );
        }
        Ok(())
    }

    fn org(&self, id: OrgId) -> CoreResult<Arc<Organisation>> {
        self.orgs
            .get(&id)
            .cloned()
            .ok_or_else(|| missing("organisation"))
    }

    fn lot(&self, id: BatchId) -> CoreResult<Arc<Lot>> {
        self.lots.get(&id).cloned().ok_or_else(|| missing("batch"))
    }

    fn place(&self, site: Option<SiteId>, org: OrgId) -> CoreResult<Place> {
        Ok(Place {
            site: site.and_then(|id| self.sites.get(&id).cloned()),
            org: self.org(org)?,
        })
    }

    /// Loads the transformations (with every input and output) not met yet.
    fn transformations(
        &mut self,
        conn: &mut DbConnection,
        ids: impl IntoIterator<Item = TransformationId>,
    ) -> CoreResult<()> {
        let want: Vec<i64> = ids
            .into_iter()
            .filter(|id| !self.transformations.contains_key(id))
            .map(|id| id.0)
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        for chunk in want.chunks(CHUNK) {
            let rows: Vec<(i64, String, i64, String, i64, String)> = on_backend!(conn, c => t::transformations
                .filter(t::id.eq_any(chunk))
                .select((t::id, t::client_id, t::org_id, t::kind, t::event_time, t::request))
                .load(c))?;
            let edge_rows = on_backend!(conn, c => e::lineage_edges
                .filter(e::transformation_id.eq_any(chunk))
                .order(e::id)
                .select(EdgeRow::as_select())
                .load(c))?;
            let edges = models(edge_rows, EdgeRow::into_model)?;
            let batch_ids: Vec<BatchId> = edges
                .iter()
                .flat_map(|x| [x.parent_batch_id, x.child_batch_id])
                .collect();
            self.lots(conn, batch_ids)?;
            for (id, client_id, org_id, kind, event_time, request) in rows {
                let id = TransformationId(id);
                let mine: Vec<&LineageEdge> =
                    edges.iter().filter(|x| x.transformation_id == id).collect();
                let info = self.transformation_info(
                    id,
                    client_id,
                    OrgId(org_id),
                    &kind,
                    event_time,
                    &request,
                    &mine,
                )?;
                self.transformations.insert(id, Arc::new(info));
            }
        }
        Ok(())
    }

    /// Inputs with the amounts the request named (in each input's unit), outputs with the lots made.
    #[expect(
        clippy::too_many_arguments,
        reason = "the columns of one transformation row"
    )]
    fn transformation_info(
        &self,
        id: TransformationId,
        client_id: String,
        org_id: OrgId,
        kind: &str,
        event_time: i64,
        request: &str,
        edges: &[&LineageEdge],
    ) -> CoreResult<TransformationInfo> {
        let kind = LineageKind::parse(kind)
            .ok_or_else(|| CoreError::Internal(format!("unexpected lineage kind {kind:?}")))?;
        let asked: Option<NewTransformation> = serde_json::from_str(request).ok();
        let mut parents: Vec<BatchId> = Vec::new();
        let mut children: Vec<BatchId> = Vec::new();
        for edge in edges {
            if !parents.contains(&edge.parent_batch_id) {
                parents.push(edge.parent_batch_id);
            }
            if !children.contains(&edge.child_batch_id) {
                children.push(edge.child_batch_id);
            }
        }
        let mut inputs = Vec::with_capacity(parents.len());
        for parent in parents {
            let lot = self.lot(parent)?;
            // The amount asked for; without the request, what the edges carried (a split's edges carry the
            // outputs' amounts, which add up to what went in).
            let quantity = asked
                .as_ref()
                .and_then(|a| a.inputs.iter().find(|i| i.batch_id == parent))
                .map(|i| i.quantity)
                .unwrap_or_else(|| {
                    edges
                        .iter()
                        .filter(|x| x.parent_batch_id == parent)
                        .map(|x| x.quantity)
                        .sum()
                });
            let unit = lot.batch.unit.clone();
            inputs.push(LotAmount {
                lot,
                quantity,
                unit,
            });
        }
        let mut outputs = Vec::with_capacity(children.len());
        for child in children {
            let lot = self.lot(child)?;
            outputs.push(LotAmount {
                quantity: lot.batch.quantity,
                unit: lot.batch.unit.clone(),
                lot,
            });
        }
        Ok(TransformationInfo {
            id,
            kind,
            event_time: to_datetime(event_time),
            client_id,
            org_id,
            inputs,
            outputs,
        })
    }
}

/// Records of one page with what their events need besides the directory.
struct Batchful {
    /// The records other than corrections, in the order the events are written.
    records: Vec<Record>,
    /// Corrections by the record they supersede, in chain order.
    corrections: HashMap<RecordId, Vec<Record>>,
    /// Shipping records by batch, in chain order (for receipts).
    shipments: HashMap<BatchId, Vec<Record>>,
}

/// Turns records into tracked events, loading what the directory lacks.
fn build(
    conn: &mut DbConnection,
    dir: &mut Directory,
    page: Batchful,
) -> CoreResult<Vec<TrackedEvent>> {
    let Batchful {
        records,
        mut corrections,
        shipments,
    } = page;
    let batch_ids: Vec<i64> = records
        .iter()
        .map(|x| x.batch_id.0)
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    dir.lots(conn, batch_ids.iter().map(|id| BatchId(*id)))?;
    // Which batches a transformation made, and which one.
    let mut made_by: HashMap<BatchId, TransformationId> = HashMap::new();
    for chunk in batch_ids.chunks(CHUNK) {
        let rows: Vec<(i64, i64)> = on_backend!(conn, c => e::lineage_edges
            .filter(e::child_batch_id.eq_any(chunk))
            .select((e::child_batch_id, e::transformation_id))
            .load(c))?;
        for (child, tid) in rows {
            made_by.insert(BatchId(child), TransformationId(tid));
        }
    }
    let entries: Vec<TransformationId> = records
        .iter()
        .filter(|x| x.seq == 1 && x.details.kind() == RecordKind::Processing)
        .filter_map(|x| made_by.get(&x.batch_id).copied())
        .collect();
    dir.transformations(conn, entries)?;
    let mut sites: Vec<SiteId> = Vec::new();
    let mut orgs: Vec<OrgId> = Vec::new();
    for rec in records.iter().chain(shipments.values().flatten()) {
        sites.extend(rec.site_id);
        orgs.push(rec.org_id);
        if let RecordDetails::Shipping(sh) = &rec.details {
            sites.extend(sh.to_site_id);
            orgs.push(sh.to_org_id);
        }
    }
    for id in &batch_ids {
        sites.extend(dir.lot(BatchId(*id))?.batch.origin_site_id);
    }
    dir.sites(conn, sites)?;
    dir.orgs(conn, orgs)?;

    let mut out = Vec::with_capacity(records.len());
    for rec in records {
        let ctx = RecordContext {
            made_by_transformation: made_by.contains_key(&rec.batch_id),
        };
        let Some(event_type) = classify(&rec, ctx) else {
            continue;
        };
        let lot = dir.lot(rec.batch_id)?;
        let site = rec.site_id.or(match rec.details {
            RecordDetails::Harvest(_) => lot.batch.origin_site_id,
            _ => None,
        });
        let at = dir.place(site, rec.org_id)?;
        let corrections = corrections.remove(&rec.id).unwrap_or_default();
        // The shipment in force: the details as corrected, if they were.
        let current = corrections
            .iter()
            .rev()
            .find_map(|c| match &c.details {
                RecordDetails::Correction(x) => Some(x.replacement.as_deref()),
                _ => None,
            })
            .unwrap_or(Some(&rec.details));
        let (ship_from, ship_to) = match current {
            Some(RecordDetails::Shipping(sh)) => (
                Some(at.clone()),
                Some(dir.place(sh.to_site_id, sh.to_org_id)?),
            ),
            Some(RecordDetails::Receiving(_)) => {
                let shipped = shipments
                    .get(&rec.batch_id)
                    .and_then(|list| list.iter().rev().find(|x| x.seq < rec.seq));
                let from = match shipped {
                    Some(sh) => Some(dir.place(sh.site_id, sh.org_id)?),
                    None => None,
                };
                (from, Some(at.clone()))
            }
            _ => (None, None),
        };
        let transformation = if event_type == TrackingEventType::Transformation {
            made_by
                .get(&rec.batch_id)
                .and_then(|tid| dir.transformations.get(tid).cloned())
        } else {
            None
        };
        out.push(TrackedEvent {
            event_type,
            record: rec,
            corrections,
            lot,
            at,
            ship_from,
            ship_to,
            transformation,
        });
    }
    Ok(out)
}

/// Every record of a batch's trace (backward and forward) as tracked events in event-time order. Fails with
/// 404 when the actor may not read the batch.
pub fn trace_events(
    conn: &mut DbConnection,
    actor: &Actor,
    root: BatchId,
) -> CoreResult<Vec<TrackedEvent>> {
    let batch = batches::get(conn, root)?;
    let rel = batches::relation(conn, actor, &batch)?;
    policy::ensure_read_trace(actor, &batch, rel)?;
    let mut ids = lineage::reachable_ids(conn, root, Direction::Backward)?;
    ids.extend(lineage::reachable_ids(conn, root, Direction::Forward)?);
    ids.push(root.0);
    ids.sort_unstable();
    ids.dedup();
    let history = records::history_of_many(conn, &ids)?;
    let mut page = Batchful {
        records: Vec::new(),
        corrections: HashMap::new(),
        shipments: HashMap::new(),
    };
    for (batch, list) in history {
        for rec in list {
            match rec.details.kind() {
                RecordKind::Correction => {
                    if let Some(target) = rec.supersedes {
                        page.corrections.entry(target).or_default().push(rec);
                    }
                }
                kind => {
                    if kind == RecordKind::Shipping {
                        page.shipments
                            .entry(BatchId(batch))
                            .or_default()
                            .push(rec.clone());
                    }
                    page.records.push(rec);
                }
            }
        }
    }
    for list in page.corrections.values_mut() {
        list.sort_by_key(|x| x.seq);
    }
    page.records.sort_by_key(|x| (x.event_time, x.id));
    let mut dir = Directory::default();
    build(conn, &mut dir, page)
}

/// The events of a trace, counted without loading them.
pub fn count_trace(conn: &mut DbConnection, root: BatchId) -> CoreResult<i64> {
    let mut ids = lineage::reachable_ids(conn, root, Direction::Backward)?;
    ids.extend(lineage::reachable_ids(conn, root, Direction::Forward)?);
    ids.push(root.0);
    ids.sort_unstable();
    ids.dedup();
    let correction = RecordKind::Correction.as_str();
    let mut n = 0;
    for chunk in ids.chunks(CHUNK) {
        let c: i64 = on_backend!(conn, c => r::records
            .filter(r::batch_id.eq_any(chunk))
            .filter(r::kind.ne(correction))
            .count()
            .get_result(c))?;
        n += c;
    }
    Ok(n)
}

/// Where a period export has got to: the last record written, by event time and id.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Cursor {
    pub event_time: i64,
    pub id: i64,
}

/// A period with the actor's access: the query every page and the count share.
#[derive(Debug, Clone)]
pub struct PeriodQuery {
    pub period: Period,
    pub access: BatchReadScope,
}

impl PeriodQuery {
    /// The period as `actor` may read it; 404 for an organisation or product that does not exist.
    pub fn new(conn: &mut DbConnection, actor: &Actor, period: &Period) -> CoreResult<Self> {
        if let Some(org) = period.org_id {
            crate::store::orgs::get(conn, org)?;
        }
        if let Some(product) = period.product_id {
            crate::store::sites::get_product(conn, product)?;
        }
        Ok(PeriodQuery {
            period: period.clone(),
            access: policy::batch_read_scope(actor),
        })
    }
}

/// The records of the period the query selects, other than corrections, after `after` (a boxed query, so
/// that the page and the count are the same filter).
macro_rules! period_filter {
    ($q:expr, $query:expr) => {{
        let query: &PeriodQuery = $query;
        let mut q = $q
            .filter(r::event_time.ge(query.period.from.timestamp_millis()))
            .filter(r::event_time.lt(query.period.to.timestamp_millis()))
            .filter(r::kind.ne(RecordKind::Correction.as_str()))
            .into_boxed();
        if let Some(org) = query.period.org_id {
            q = q.filter(r::org_id.eq(org.0));
        }
        if let Some(product) = query.period.product_id {
            q = q.filter(
                r::batch_id.eq_any(b::batches.filter(b::product_id.eq(product.0)).select(b::id)),
            );
        }
        if let BatchReadScope::Org { org, inspected } = query.access {
            let o = org.0;
            if inspected {
                q = q.filter(
                    r::batch_id.eq_any(
                        b::batches
                            .filter(
                                b::org_id
                                    .eq(o)
                                    .or(b::custodian_org_id.eq(o))
                                    .or(b::in_transit_to_org_id.eq(o))
                                    .or(b::id.eq_any(
                                        ir::inspection_requests
                                            .filter(ir::lab_org_id.eq(o))
                                            .select(ir::batch_id),
                                    )),
                            )
                            .select(b::id),
                    ),
                );
            } else {
                q = q.filter(
                    r::batch_id.eq_any(
                        b::batches
                            .filter(
                                b::org_id
                                    .eq(o)
                                    .or(b::custodian_org_id.eq(o))
                                    .or(b::in_transit_to_org_id.eq(o)),
                            )
                            .select(b::id),
                    ),
                );
            }
        }
        q
    }};
}

/// How many events the period holds for the actor.
pub fn count_period(conn: &mut DbConnection, query: &PeriodQuery) -> CoreResult<i64> {
    Ok(on_backend!(conn, c => period_filter!(r::records, query).count().get_result(c))?)
}

/// The next page of the period's events after `after` (at most `limit`), in event-time order, and where the
/// page ends.
pub fn period_page(
    conn: &mut DbConnection,
    dir: &mut Directory,
    query: &PeriodQuery,
    after: Cursor,
    limit: i64,
) -> CoreResult<(Vec<TrackedEvent>, Option<Cursor>)> {
    // What earlier pages loaded is kept for the next ones (a lot's events are often close in time), within
    // bounds.
    if dir.lots.len() > DIRECTORY_LOTS {
        dir.lots.clear();
        dir.transformations.clear();
    }
    let (at, id) = (after.event_time, after.id);
    let rows = on_backend!(conn, c => period_filter!(r::records, query)
        .filter(r::event_time.gt(at).or(r::event_time.eq(at).and(r::id.gt(id))))
        .order((r::event_time, r::id))
        .limit(limit)
        .select(RecordRow::as_select())
        .load(c))?;
    let next = rows.last().map(|x| Cursor {
        event_time: x.event_time,
        id: x.id,
    });
    let recs = models(rows, RecordRow::into_model)?;
    let ids: Vec<i64> = recs.iter().map(|x| x.id.0).collect();
    let mut corrections: HashMap<RecordId, Vec<Record>> = HashMap::new();
    for chunk in ids.chunks(CHUNK) {
        let rows = on_backend!(conn, c => r::records
            .filter(r::kind.eq(RecordKind::Correction.as_str()))
            .filter(r::supersedes_id.eq_any(chunk))
            .order((r::batch_id, r::seq))
            .select(RecordRow::as_select())
            .load(c))?;
        for rec in models(rows, RecordRow::into_model)? {
            if let Some(target) = rec.supersedes {
                corrections.entry(target).or_default().push(rec);
            }
        }
    }
    let receiving: Vec<i64> = recs
        .iter()
        .filter(|x| x.details.kind() == RecordKind::Receiving)
        .map(|x| x.batch_id.0)
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    let mut shipments: HashMap<BatchId, Vec<Record>> = HashMap::new();
    for chunk in receiving.chunks(CHUNK) {
        let rows = on_backend!(conn, c => r::records
            .filter(r::kind.eq(RecordKind::Shipping.as_str()))
            .filter(r::batch_id.eq_any(chunk))
            .order((r::batch_id, r::seq))
            .select(RecordRow::as_select())
            .load(c))?;
        for rec in models(rows, RecordRow::into_model)? {
            shipments.entry(rec.batch_id).or_default().push(rec);
        }
    }
    let events = build(
        conn,
        dir,
        Batchful {
            records: recs,
            corrections,
            shipments,
        },
    )?;
    Ok((events, next))
}
