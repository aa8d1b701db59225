//! Bulk history for benchmarks: millions of telemetry rows generated inside the database.

use diesel::prelude::*;

use crate::error::CoreResult;
use crate::on_backend;
use crate::store::DbConnection;
use crate::SiteId;

/// Generates `per_device` telemetry messages of `temp_c` and `rh_pct` for each of `devices`, one every
/// `step_ms` from `from_ms`, inside the database (PostgreSQL: `generate_series`; SQLite: a recursive CTE),
/// for measuring range queries over tens of millions of readings without shipping them over the wire.
/// Returns the readings generated (two per message).
pub fn generate_readings(
    conn: &mut DbConnection,
    devices: &[(i64, SiteId)],
    from_ms: i64,
    step_ms: i64,
    per_device: i64,
) -> CoreResult<u64> {
    use diesel::sql_types::BigInt;
    let mut n = 0;
    for &(device, site) in devices {
        let pg = "INSERT INTO telemetry (device_id, ts, seq, site_id, received_at, late, metrics) \
                  SELECT $1, $2 + g.i * $3, g.i, $4, $2 + g.i * $3, FALSE, \
                  format('{\"temp_c\":%s,\"rh_pct\":%s}', 3.0 + (g.i % 40) * 0.1, 80 + g.i % 10) \
                  FROM generate_series(0, $5 - 1) AS g(i) \
                  ON CONFLICT DO NOTHING";
        let sqlite = "WITH RECURSIVE g(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM g WHERE i + 1 < ?5) \
                      INSERT OR IGNORE INTO telemetry (device_id, ts, seq, site_id, received_at, late, metrics) \
                      SELECT ?1, ?2 + g.i * ?3, g.i, ?4, ?2 + g.i * ?3, FALSE, \
                      '{\"temp_c\":' || (3.0 + (g.i % 40) * 0.1) || ',\"rh_pct\":' || (80 + g.i % 10) || '}' \
                      FROM g";
        let rows = match conn {
            DbConnection::Postgresql(c) => diesel::sql_query(pg)
                .bind::<BigInt, _>(device)
                .bind::<BigInt, _>(from_ms)
                .bind::<BigInt, _>(step_ms)
                .bind::<BigInt, _>(site.0)
                .bind::<BigInt, _>(per_device)
                .execute(c)?,
            DbConnection::Sqlite(c) => diesel::sql_query(sqlite)
                .bind::<BigInt, _>(device)
                .bind::<BigInt, _>(from_ms)
                .bind::<BigInt, _>(step_ms)
                .bind::<BigInt, _>(site.0)
                .bind::<BigInt, _>(per_device)
                .execute(c)?,
        };
        n += 2 * rows as u64;
    }
    Ok(n)
}

/// Refreshes the planner's statistics of `telemetry` after a bulk load (autovacuum may be off or late).
pub fn analyze_readings(conn: &mut DbConnection) -> CoreResult<()> {
    use diesel::connection::SimpleConnection;
    on_backend!(conn, c => c.batch_execute("ANALYZE telemetry"))?;
    Ok(())
}
