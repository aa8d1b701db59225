//! Appending to the hash chains: one record at the head of its batch's chain, or many chained in memory
//! and stored with multi-row statements; both refuse, rather than fork a chain, when a head moved.

use std::collections::HashMap;

use diesel::prelude::*;

use crate::chain::record_hash;
use crate::error::{CoreError, CoreResult};
use crate::model::*;
use crate::on_backend;
use crate::schema::{batches::dsl as b, records::dsl as r};
use crate::store::rows::{BatchRow, RecordRow};
use crate::store::DbConnection;

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
            .map(|x| crate::store::rows::record_values!(x))
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
