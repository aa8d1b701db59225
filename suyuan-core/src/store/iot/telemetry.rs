//! Telemetry: one stored row per reading — one object of a device's payload: its time, sequence number and
//! metrics, as it came — written idempotently on (device, ts, seq), and the reads of readings over time
//! (the view `readings` shows one row per metric to every query).

use diesel::prelude::*;

use crate::error::{CoreError, CoreResult};
use crate::model::{Actor, ReadingPoint};
use crate::on_backend;
use crate::policy;
use crate::schema::{devices::dsl as d, readings::dsl as r, telemetry::dsl as t};
use crate::store::DbConnection;
use crate::SiteId;

/// The stored stand-in for an absent sequence number: the key column is `NOT NULL`, so that the unique
/// index also catches messages without one (SQL unique indexes treat NULLs as distinct).
pub const NO_SEQ: i64 = -1;

/// Most points one readings query returns.
pub const MAX_POINTS: i64 = 20_000;

/// One telemetry message's readings to store: a device's values of one or more metrics at one instant,
/// one row of `telemetry`.
#[derive(Debug, Clone, PartialEq)]
pub struct NewTelemetry {
    pub device_id: i64,
    /// Device time, ms since the epoch.
    pub ts: i64,
    /// `-1` when the device sends no sequence number.
    pub seq: i64,
    pub site_id: i64,
    pub received_at: i64,
    pub late: bool,
    /// Metric name (with its unit suffix) → value, each name once.
    pub metrics: Vec<(String, f64)>,
}

impl NewTelemetry {
    fn key(&self) -> TelemetryKey {
        (self.device_id, self.ts, self.seq)
    }
}

/// Metrics as the stored JSON object, in their order.
fn metrics_json(metrics: &[(String, f64)]) -> CoreResult<String> {
    serde_json::to_string(&MetricsJson(metrics))
        .map_err(|e| CoreError::Internal(format!("telemetry metrics: {e}")))
}

/// Appends the metrics of `from` that `into` does not name yet (the first value of a metric wins) and
/// returns their names.
fn add_missing<'a>(into: &mut Vec<(String, f64)>, from: &'a [(String, f64)]) -> Vec<&'a str> {
    let mut added = Vec::new();
    for (metric, value) in from {
        if !into.iter().any(|(have, _)| have == metric) {
            into.push((metric.clone(), *value));
            added.push(metric.as_str());
        }
    }
    added
}

/// Serialises metric → value pairs as a JSON object without building a map first.
struct MetricsJson<'a>(&'a [(String, f64)]);

impl serde::Serialize for MetricsJson<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.0.iter().map(|(m, v)| (m, v)))
    }
}

/// The identity of a stored telemetry message: (device, ts, seq).
type TelemetryKey = (i64, i64, i64);

/// A stored message's key, as PostgreSQL's `RETURNING` gives it.
#[derive(Debug, QueryableByName)]
struct KeyRow {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    device_id: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    ts: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    seq: i64,
}

/// A stored message's key with its metrics.
#[derive(Debug, QueryableByName)]
struct StoredRow {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    device_id: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    ts: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    seq: i64,
    #[diesel(sql_type = diesel::sql_types::Text)]
    metrics: String,
}

/// Stores telemetry messages, one row each, so that every reading is stored once however often it
/// arrives. With `want_fresh` (rules must see what is new) it returns what this call stored: each
/// message that was new, and for a row that was there before, the message narrowed to the metrics the row
/// lacked; without, an empty list.
///
/// Messages with the same key (device, ts, seq) are one row: within the batch they are merged first,
/// and a message whose row already exists adds only the metrics the row lacks (the first value of a
/// metric wins), so a device that splits one instant's values over several messages loses none.
///
/// PostgreSQL gets the batch as one binary `COPY`, the cheapest way in per row (no statement to parse
/// or plan, no function scan materialising arrays): it costs PostgreSQL less than half of what
/// `ON CONFLICT DO NOTHING` does (no speculative insertion; a `WHERE NOT EXISTS` probe is worse still,
/// rescanning the monthly partitions for every row). When a key is already there (a redelivery) or
/// being written by another replica, the COPY fails, its savepoint is rolled back and the batch goes in
/// as seven arrays in one `INSERT … SELECT FROM unnest(…) ON CONFLICT DO NOTHING RETURNING`, which
/// waits for the other writer and says which rows were new. On SQLite each row is an `INSERT OR IGNORE`
/// of one cached statement, whose count tells a stored key from a new one.
pub fn insert_telemetry(
    conn: &mut DbConnection,
    messages: &[NewTelemetry],
    want_fresh: bool,
) -> CoreResult<Vec<NewTelemetry>> {
    let merged;
    let messages = if needs_merging(messages) {
        merged = merge_same_key(messages);
        &merged[..]
    } else {
        messages
    };
    if messages.is_empty() {
        return Ok(Vec::new());
    }
    let mut json = Vec::with_capacity(messages.len());
    for m in messages {
        json.push(metrics_json(&m.metrics)?);
    }
    let rows: Vec<TelemetryRow<'_>> = messages
        .iter()
        .zip(&json)
        .map(|(m, json)| TelemetryRow {
            device_id: m.device_id,
            ts: m.ts,
            seq: m.seq,
            site_id: m.site_id,
            received_at: m.received_at,
            late: m.late,
            metrics: json,
        })
        .collect();
    let (inserted, stored) = match conn {
        DbConnection::Postgresql(c) => insert_telemetry_pg(c, &rows)?,
        DbConnection::Sqlite(c) => insert_telemetry_sqlite(c, &rows)?,
    };
    let mut fresh = Vec::new();
    if stored.is_empty() && !want_fresh {
        return Ok(fresh);
    }
    let mut additions = Vec::new();
    for m in messages {
        if inserted.contains(&m.key()) {
            if want_fresh {
                fresh.push(m.clone());
            }
            continue;
        }
        // Stored before: only the metrics the stored row lacks are new.
        let Some(present) = stored.get(&m.key()) else {
            continue;
        };
        let mut have = parse_metrics(present)?;
        let added = add_missing(&mut have, &m.metrics);
        if added.is_empty() {
            continue;
        }
        if want_fresh {
            fresh.push(NewTelemetry {
                metrics: m
                    .metrics
                    .iter()
                    .filter(|(metric, _)| added.contains(&metric.as_str()))
                    .cloned()
                    .collect(),
                ..m.clone()
            });
        }
        additions.push((m.key(), metrics_json(&have)?));
    }
    for ((device_id, ts, seq), merged) in additions {
        on_backend!(conn, c => diesel::update(
            t::telemetry
                .filter(t::device_id.eq(device_id))
                .filter(t::ts.eq(ts))
                .filter(t::seq.eq(seq)),
        )
        .set(t::metrics.eq(merged))
        .execute(c))?;
    }
    Ok(fresh)
}

/// Whether some key comes twice, or some message names a metric twice (rare: a device's backlog
/// repeating itself), so that [`merge_same_key`] must copy the batch.
fn needs_merging(messages: &[NewTelemetry]) -> bool {
    let mut keys = std::collections::HashSet::with_capacity(messages.len());
    messages.iter().any(|m| {
        !keys.insert(m.key())
            || m.metrics
                .iter()
                .enumerate()
                .any(|(i, (a, _))| m.metrics[..i].iter().any(|(b, _)| a == b))
    })
}

/// One message per key: later messages with the same key add only the metrics not seen yet.
fn merge_same_key(messages: &[NewTelemetry]) -> Vec<NewTelemetry> {
    let mut out: Vec<NewTelemetry> = Vec::with_capacity(messages.len());
    let mut at: std::collections::HashMap<TelemetryKey, usize> =
        std::collections::HashMap::with_capacity(messages.len());
    for m in messages {
        match at.get(&m.key()) {
            None => {
                at.insert(m.key(), out.len());
                let mut first = NewTelemetry {
                    device_id: m.device_id,
                    ts: m.ts,
                    seq: m.seq,
                    site_id: m.site_id,
                    received_at: m.received_at,
                    late: m.late,
                    metrics: Vec::with_capacity(m.metrics.len()),
                };
                add_missing(&mut first.metrics, &m.metrics);
                out.push(first);
            }
            Some(&i) => {
                add_missing(&mut out[i].metrics, &m.metrics);
            }
        }
    }
    out.retain(|m| !m.metrics.is_empty());
    out
}

/// A stored metrics object (its metrics sorted by name).
fn parse_metrics(json: &str) -> CoreResult<Vec<(String, f64)>> {
    let map: serde_json::Map<String, serde_json::Value> = serde_json::from_str(json)
        .map_err(|e| CoreError::Internal(format!("stored telemetry metrics: {e}")))?;
    Ok(map
        .into_iter()
        .filter_map(|(k, v)| Some((k, v.as_f64()?)))
        .collect())
}

/// Keys inserted by this call, and the stored metrics of the batch's keys that were there already.
type InsertOutcome = (Inserted, std::collections::HashMap<TelemetryKey, String>);

/// Which of a batch's messages a call inserted.
enum Inserted {
    All,
    Only(std::collections::HashSet<TelemetryKey>),
}

impl Inserted {
    fn contains(&self, key: &TelemetryKey) -> bool {
        match self {
            Inserted::All => true,
            Inserted::Only(keys) => keys.contains(key),
        }
    }
}

/// A `telemetry` row as written.
///
/// Every column is given (`treat_none_as_default_value = false`): a binary COPY has no defaults, and
/// without the wrappers that let SQLite default a value the single-row insert's query id is static, so
/// diesel finds its prepared statement by type instead of rebuilding the SQL text for every row.
#[derive(Insertable)]
#[diesel(table_name = crate::schema::telemetry, treat_none_as_default_value = false)]
struct TelemetryRow<'a> {
    device_id: i64,
    ts: i64,
    seq: i64,
    site_id: i64,
    received_at: i64,
    late: bool,
    metrics: &'a str,
}

impl TelemetryRow<'_> {
    fn key(&self) -> TelemetryKey {
        (self.device_id, self.ts, self.seq)
    }
}

fn insert_telemetry_pg(
    c: &mut diesel::PgConnection,
    rows: &[TelemetryRow<'_>],
) -> CoreResult<InsertOutcome> {
    use diesel::result::{DatabaseErrorKind, Error};
    use diesel::sql_types::{Array, BigInt, Bool, Text};
    // Usually every message is new: a binary COPY, in a savepoint so that a duplicate key (a
    // redelivery, or another replica's write) leaves the transaction usable for the careful way.
    let inserted: std::collections::HashSet<TelemetryKey> = match c.transaction(|c| {
        diesel::copy_from(t::telemetry)
            .from_insertable(rows)
            .execute(c)
    }) {
        Ok(_) => return Ok((Inserted::All, std::collections::HashMap::new())),
        Err(Error::DatabaseError(DatabaseErrorKind::UniqueViolation, _)) => diesel::sql_query(
            "INSERT INTO telemetry (device_id, ts, seq, site_id, received_at, late, metrics) \
             SELECT * FROM unnest($1::int8[], $2::int8[], $3::int8[], $4::int8[], $5::int8[], \
             $6::bool[], $7::text[]) ON CONFLICT DO NOTHING RETURNING device_id, ts, seq",
        )
        .bind::<Array<BigInt>, _>(rows.iter().map(|x| x.device_id).collect::<Vec<_>>())
        .bind::<Array<BigInt>, _>(rows.iter().map(|x| x.ts).collect::<Vec<_>>())
        .bind::<Array<BigInt>, _>(rows.iter().map(|x| x.seq).collect::<Vec<_>>())
        .bind::<Array<BigInt>, _>(rows.iter().map(|x| x.site_id).collect::<Vec<_>>())
        .bind::<Array<BigInt>, _>(rows.iter().map(|x| x.received_at).collect::<Vec<_>>())
        .bind::<Array<Bool>, _>(rows.iter().map(|x| x.late).collect::<Vec<_>>())
        .bind::<Array<Text>, _>(rows.iter().map(|x| x.metrics).collect::<Vec<_>>())
        .load::<KeyRow>(c)?
        .into_iter()
        .map(|k| (k.device_id, k.ts, k.seq))
        .collect(),
        Err(e) => return Err(e.into()),
    };
    let mut stored = std::collections::HashMap::new();
    if inserted.len() < rows.len() {
        let rest: Vec<&TelemetryRow<'_>> = rows
            .iter()
            .filter(|m| !inserted.contains(&m.key()))
            .collect();
        // Locked, so that two replicas adding metrics to the same row do not overwrite each other; the
        // span of times lets the planner keep only the partitions it covers.
        let found: Vec<StoredRow> = diesel::sql_query(
            "SELECT t.device_id, t.ts, t.seq, t.metrics FROM telemetry t \
             JOIN unnest($1::int8[], $2::int8[], $3::int8[]) AS k(device_id, ts, seq) \
             ON t.device_id = k.device_id AND t.ts = k.ts AND t.seq = k.seq \
             WHERE t.ts >= $4 AND t.ts <= $5 FOR UPDATE OF t",
        )
        .bind::<Array<BigInt>, _>(rest.iter().map(|x| x.device_id).collect::<Vec<_>>())
        .bind::<Array<BigInt>, _>(rest.iter().map(|x| x.ts).collect::<Vec<_>>())
        .bind::<Array<BigInt>, _>(rest.iter().map(|x| x.seq).collect::<Vec<_>>())
        .bind::<BigInt, _>(rest.iter().map(|x| x.ts).min().unwrap_or(0))
        .bind::<BigInt, _>(rest.iter().map(|x| x.ts).max().unwrap_or(0))
        .load(c)?;
        stored = found
            .into_iter()
            .map(|r| ((r.device_id, r.ts, r.seq), r.metrics))
            .collect();
    }
    Ok((Inserted::Only(inserted), stored))
}

/// Inserts one row unless its key is stored; 1 when it was new.
fn insert_telemetry_row(
    c: &mut diesel::SqliteConnection,
    row: &TelemetryRow<'_>,
) -> QueryResult<usize> {
    let insert = diesel::insert_or_ignore_into(t::telemetry).values(row);
    debug_assert!(
        static_query_id(&insert),
        "the telemetry insert must be cached by type"
    );
    insert.execute(c)
}

fn static_query_id<T: diesel::query_builder::QueryId>(_: &T) -> bool {
    T::HAS_STATIC_QUERY_ID
}

fn insert_telemetry_sqlite(
    c: &mut diesel::SqliteConnection,
    rows: &[TelemetryRow<'_>],
) -> CoreResult<InsertOutcome> {
    // One single-row statement, prepared once and kept in diesel's statement cache, stepped per row:
    // SQLite spends more parsing a multi-row statement of thousands of parameters than inserting, and
    // each row's count says whether its key was already there.
    let mut present = Vec::new();
    for row in rows {
        if insert_telemetry_row(c, row)? == 0 {
            present.push(row.key());
        }
    }
    if present.is_empty() {
        return Ok((Inserted::All, std::collections::HashMap::new()));
    }
    // Writes are serialised (see [`crate::Database::write`]), so these rows were there before this call.
    let mut stored = std::collections::HashMap::new();
    for &(device_id, ts, seq) in &present {
        let metrics: String = t::telemetry
            .find((device_id, ts, seq))
            .select(t::metrics)
            .first(c)?;
        stored.insert((device_id, ts, seq), metrics);
    }
    let inserted = rows
        .iter()
        .map(TelemetryRow::key)
        .filter(|k| !stored.contains_key(k))
        .collect();
    Ok((Inserted::Only(inserted), stored))
}

/// A site's readings over `[from, to)` (device time, ms), oldest first, at most `limit`
/// ([`MAX_POINTS`]); optionally one metric or one device. The second value says whether more exist.
#[allow(clippy::too_many_arguments)]
pub fn site_readings(
    conn: &mut DbConnection,
    actor: &Actor,
    site: SiteId,
    from: i64,
    to: i64,
    metric: Option<&str>,
    device: Option<i64>,
    limit: i64,
) -> CoreResult<(Vec<ReadingPoint>, bool)> {
    let s = crate::store::sites::get_site(conn, site)?;
    policy::ensure_read_site_data(actor, s.org_id)?;
    if from >= to {
        return Err(CoreError::invalid(
            "invalid_range",
            "`from` must be before `to`",
        ));
    }
    let limit = limit.clamp(1, MAX_POINTS);
    type Row = (i64, String, i64, f64, bool);
    let rows: Vec<Row> = on_backend!(conn, c => {
        // The key (device_id, ts, …) is the only index: a site's range is its devices' ranges.
        let mut q = r::readings
            .filter(
                r::device_id.eq_any(
                    d::devices
                        .filter(d::site_id.eq(site.0))
                        .select(d::id),
                ),
            )
            .filter(r::site_id.eq(site.0))
            .filter(r::ts.ge(from))
            .filter(r::ts.lt(to))
            .into_boxed();
        if let Some(m) = metric {
            q = q.filter(r::metric.eq(m.to_owned()));
        }
        if let Some(dev) = device {
            q = q.filter(r::device_id.eq(dev));
        }
        q.order((r::ts, r::device_id, r::metric))
            .limit(limit + 1)
            .select((r::device_id, r::metric, r::ts, r::value, r::late))
            .load(c)
    })?;
    let more = rows.len() as i64 > limit;
    Ok((
        rows.into_iter()
            .take(limit as usize)
            .map(|(device_id, metric, ts, value, late)| ReadingPoint {
                device_id,
                unit: unit_of(&metric).to_owned(),
                metric,
                ts,
                value,
                late,
            })
            .collect(),
        more,
    ))
}

/// The unit code of a metric: its name's suffix after the last `_` (`temp_c` → `c`).
fn unit_of(metric: &str) -> &str {
    metric.rsplit_once('_').map_or("", |(_, unit)| unit)
}

/// Temperatures (readings of metrics in °C, named `…_c`) at a site over `[from, to)`, averaged into `buckets` equal spans:
/// (start of the span in ms, min, mean, max), oldest first. Unchecked: for the public story's cold chain.
pub fn temperature_buckets(
    conn: &mut DbConnection,
    site: SiteId,
    from: i64,
    to: i64,
    buckets: i64,
) -> CoreResult<Vec<(i64, f64, f64, f64)>> {
    use diesel::sql_types::{BigInt, Double};
    #[derive(QueryableByName)]
    struct Bucket {
        #[diesel(sql_type = BigInt)]
        bucket: i64,
        #[diesel(sql_type = Double)]
        lo: f64,
        #[diesel(sql_type = Double)]
        mean: f64,
        #[diesel(sql_type = Double)]
        hi: f64,
    }
    if to <= from || buckets <= 0 {
        return Ok(Vec::new());
    }
    let width = ((to - from) / buckets).max(1);
    // Through the site's devices, so that the readings key (device, ts, …) serves the range.
    let sql = |p: [&str; 5]| {
        format!(
            "SELECT CAST((r.ts - {0}) / {1} AS BIGINT) AS bucket, MIN(r.value) AS lo, AVG(r.value) AS mean, \
             MAX(r.value) AS hi FROM readings r WHERE r.device_id IN (SELECT id FROM devices WHERE site_id = {2}) \
             AND r.ts >= {3} AND r.ts < {4} AND r.metric LIKE '%\\_c' ESCAPE '\\' GROUP BY 1 ORDER BY 1",
            p[0], p[1], p[2], p[3], p[4]
        )
    };
    let rows: Vec<Bucket> = match conn {
        DbConnection::Sqlite(c) => diesel::sql_query(sql(["?1", "?2", "?3", "?4", "?5"]))
            .bind::<BigInt, _>(from)
            .bind::<BigInt, _>(width)
            .bind::<BigInt, _>(site.0)
            .bind::<BigInt, _>(from)
            .bind::<BigInt, _>(to)
            .load(c)?,
        DbConnection::Postgresql(c) => diesel::sql_query(sql(["$1", "$2", "$3", "$4", "$5"]))
            .bind::<BigInt, _>(from)
            .bind::<BigInt, _>(width)
            .bind::<BigInt, _>(site.0)
            .bind::<BigInt, _>(from)
            .bind::<BigInt, _>(to)
            .load(c)?,
    };
    Ok(rows
        .into_iter()
        .map(|b| (from + b.bucket * width, b.lo, b.mean, b.hi))
        .collect())
}
