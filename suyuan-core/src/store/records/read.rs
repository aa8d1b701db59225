//! Reading records back: by id, by client id, a batch's history as stored (whole or paged) and its
//! corrected view.

use std::collections::HashMap;

use diesel::prelude::*;

use crate::error::CoreResult;
use crate::model::*;
use crate::on_backend;
use crate::schema::records::dsl as r;
use crate::store::rows::{models, RecordRow};
use crate::store::DbConnection;
use crate::{BatchId, OrgId, RecordId};

/// The record an organisation stored under a client id (client ids are the organisation's own).
pub(super) fn find_by_client_id(
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
    page: crate::store::Page,
) -> CoreResult<crate::store::Paged<Record>> {
    let limit = page.limit()?;
    let rows = on_backend!(conn, c => r::records
        .filter(r::batch_id.eq(batch.0))
        .filter(r::seq.gt(page.after()))
        .order(r::seq)
        .limit(limit + 1)
        .select(RecordRow::as_select())
        .load(c))?;
    Ok(crate::store::Paged::from_fetched(
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
    page: crate::store::Page,
) -> CoreResult<crate::store::Paged<CorrectedRecord>> {
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
    let page_rows = crate::store::Paged::from_fetched(rows, limit, |x| x.seq);
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
    Ok(crate::store::Paged {
        items: corrected_view(models(all, RecordRow::into_model)?),
        next_after: page_rows.next_after,
    })
}

/// A batch's records in the corrected view.
pub fn corrected(conn: &mut DbConnection, batch: BatchId) -> CoreResult<Vec<CorrectedRecord>> {
    Ok(corrected_view(history(conn, batch)?))
}
