//! Devices, readings, images, rules and refusals: the gateway's writes and the API's reads.
//!
//! The gateway's writes are idempotent so that a redelivered or re-spooled message stores nothing twice:
//! readings on (device, metric, ts, seq) with `ON CONFLICT DO NOTHING … RETURNING` telling which rows are
//! new (only those are evaluated by the rules), images on (device, capture time, hash), alerts on (rule,
//! device, opened_at). Rule state is one JSON document per device, locked (`FOR UPDATE` on PostgreSQL)
//! by the transaction that stores the device's readings, so replicas sharing the load never evaluate the
//! same device at once.

use diesel::prelude::*;

use super::{DbConnection, Page, Paged};
use crate::error::{CoreError, CoreResult, OptionalExt};
use crate::model::{
    Actor, Device, DeviceImage, DeviceKind, DeviceStatus, IotRule, NewDevice, NewIotRule,
    ReadingPoint, RefusalCount, RegisteredDevice, RuleKind,
};
use crate::on_backend;
use crate::policy;
use crate::schema::{
    alerts::dsl as a, device_images::dsl as di, device_rule_states::dsl as rs, devices::dsl as d,
    gateway_refusals::dsl as gr, iot_rules::dsl as ir, readings::dsl as r, telemetry::dsl as t,
};
use crate::time::{now_millis, to_datetime};
use crate::{OrgId, SiteId, UserId};

/// Most points one readings query returns.
pub const MAX_POINTS: i64 = 20_000;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = crate::schema::devices)]
struct DeviceRow {
    id: i64,
    org_id: i64,
    site_id: i64,
    client_id: String,
    kind: String,
    name: String,
    enabled: bool,
    status: String,
    status_at: Option<i64>,
    last_seen_at: Option<i64>,
    created_by: i64,
    created_at: i64,
}

impl DeviceRow {
    fn into_model(self) -> CoreResult<Device> {
        Ok(Device {
            id: self.id,
            org_id: OrgId(self.org_id),
            site_id: SiteId(self.site_id),
            kind: DeviceKind::parse(&self.kind)
                .ok_or_else(|| CoreError::Internal(format!("device kind {:?}", self.kind)))?,
            client_id: self.client_id,
            name: self.name,
            enabled: self.enabled,
            status: DeviceStatus::parse(&self.status)
                .ok_or_else(|| CoreError::Internal(format!("device status {:?}", self.status)))?,
            status_at: self.status_at.map(to_datetime),
            last_seen_at: self.last_seen_at.map(to_datetime),
            created_by: UserId(self.created_by),
            created_at: to_datetime(self.created_at),
        })
    }
}

fn devices(rows: Vec<DeviceRow>) -> CoreResult<Vec<Device>> {
    rows.into_iter().map(DeviceRow::into_model).collect()
}

// ---------------------------------------------------------------------------------------------------
// Devices

/// Registers a device to a site (operators only) and returns its broker credentials, shown this once.
pub fn register_device(
    conn: &mut DbConnection,
    actor: &Actor,
    new: &NewDevice,
) -> CoreResult<RegisteredDevice> {
    register_device_with_password(conn, actor, new, &crate::auth::new_token())
}

/// [`register_device`] with a chosen password (the demo county's devices have a documented one).
pub fn register_device_with_password(
    conn: &mut DbConnection,
    actor: &Actor,
    new: &NewDevice,
    password: &str,
) -> CoreResult<RegisteredDevice> {
    policy::ensure_register_device(actor)?;
    new.validate()?;
    let site = super::sites::get_site(conn, new.site_id)?;
    let hash = crate::auth::hash_device_password(password);
    let inserted = on_backend!(conn, c => diesel::insert_into(d::devices)
        .values((
            d::org_id.eq(site.org_id.0),
            d::site_id.eq(site.id.0),
            d::client_id.eq(&new.client_id),
            d::kind.eq(new.kind.as_str()),
            d::name.eq(new.name.trim()),
            d::password_hash.eq(&hash),
            d::enabled.eq(true),
            d::status.eq(DeviceStatus::Unknown.as_str()),
            d::created_by.eq(actor.user_id.0),
            d::created_at.eq(now_millis()),
        ))
        .returning(DeviceRow::as_returning())
        .get_result(c));
    let row = match inserted {
        Ok(row) => row,
        Err(e) if super::is_unique_violation(&e) => {
            return Err(CoreError::conflict(
                "client_id_taken",
                format!(
                    "a device with client id {} is already registered",
                    new.client_id
                ),
            ))
        }
        Err(e) => return Err(e.into()),
    };
    Ok(RegisteredDevice {
        device: row.into_model()?,
        username: new.client_id.clone(),
        password: password.to_owned(),
    })
}

/// The devices the actor may see (its organisation's; regulators and operators all), optionally of one site.
pub fn list_devices(
    conn: &mut DbConnection,
    actor: &Actor,
    site: Option<SiteId>,
    page: Page,
) -> CoreResult<Paged<Device>> {
    let limit = page.limit()?;
    let org = (!policy::reads_all(actor)).then_some(actor.org_id.0);
    let rows: Vec<DeviceRow> = on_backend!(conn, c => {
        let mut q = d::devices.filter(d::id.gt(page.after())).into_boxed();
        if let Some(org) = org {
            q = q.filter(d::org_id.eq(org));
        }
        if let Some(site) = site {
            q = q.filter(d::site_id.eq(site.0));
        }
        q.order(d::id).limit(limit + 1).select(DeviceRow::as_select()).load(c)
    })?;
    Ok(Paged::from_fetched(devices(rows)?, limit, |x| x.id))
}

/// One device, if the actor may see it.
pub fn get_device(conn: &mut DbConnection, actor: &Actor, id: i64) -> CoreResult<Device> {
    let row: DeviceRow =
        on_backend!(conn, c => d::devices.find(id).select(DeviceRow::as_select()).first(c))
            .or_not_found("device")?;
    let device = row.into_model()?;
    policy::ensure_read_site_data(actor, device.org_id)
        .map_err(|_| CoreError::NotFound { what: "device" })?;
    Ok(device)
}

/// Every registered device (the gateway caches them).
pub fn all_devices(conn: &mut DbConnection) -> CoreResult<Vec<Device>> {
    let rows: Vec<DeviceRow> =
        on_backend!(conn, c => d::devices.order(d::id).select(DeviceRow::as_select()).load(c))?;
    devices(rows)
}

/// The device with this client id.
pub fn device_by_client_id(conn: &mut DbConnection, client_id: &str) -> CoreResult<Option<Device>> {
    let row: Option<DeviceRow> = on_backend!(conn, c => d::devices
        .filter(d::client_id.eq(client_id))
        .select(DeviceRow::as_select())
        .first(c)
        .optional())?;
    row.map(DeviceRow::into_model).transpose()
}

/// Whether `password` is the enabled device `client_id`'s broker password (for brokers that ask us).
pub fn check_device_password(
    conn: &mut DbConnection,
    client_id: &str,
    password: &str,
) -> CoreResult<bool> {
    Ok(device_login(conn, client_id, password)?.is_some())
}

/// What a device that logged in to the broker may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceLogin {
    pub device_id: i64,
    /// The only site it publishes for.
    pub site_id: SiteId,
    /// Its stored password hash: changes with every rotation, so an open connection made under an
    /// older one can be found and closed.
    pub stamp: String,
}

/// The enabled device `client_id` when `password` is its current broker password.
pub fn device_login(
    conn: &mut DbConnection,
    client_id: &str,
    password: &str,
) -> CoreResult<Option<DeviceLogin>> {
    let found: Option<(i64, i64, String, bool)> = on_backend!(conn, c => d::devices
        .filter(d::client_id.eq(client_id))
        .select((d::id, d::site_id, d::password_hash, d::enabled))
        .first(c)
        .optional())?;
    Ok(found.and_then(|(device_id, site, hash, enabled)| {
        (enabled && crate::auth::verify_device_password(password, &hash)).then_some(DeviceLogin {
            device_id,
            site_id: SiteId(site),
            stamp: hash,
        })
    }))
}

/// A device's broker credentials as a broker's configuration needs them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceCredential {
    pub client_id: String,
    pub site_id: SiteId,
    /// The stored hash (PBKDF2 `$7$…`, or argon2 for devices registered before).
    pub password_hash: String,
    pub enabled: bool,
}

/// Every device's credentials, in id order (the embedded broker's recheck of open connections, and
/// the Mosquitto password and ACL files).
pub fn device_credentials(conn: &mut DbConnection) -> CoreResult<Vec<DeviceCredential>> {
    let rows: Vec<(String, i64, String, bool)> = on_backend!(conn, c => d::devices
        .order(d::id)
        .select((d::client_id, d::site_id, d::password_hash, d::enabled))
        .load(c))?;
    Ok(rows
        .into_iter()
        .map(
            |(client_id, site, password_hash, enabled)| DeviceCredential {
                client_id,
                site_id: SiteId(site),
                password_hash,
                enabled,
            },
        )
        .collect())
}

/// Disables or re-enables a device (operators only). A disabled device's broker login is refused and
/// its open connection to the embedded broker closed; its messages are refused by the gateway.
pub fn set_device_enabled(
    conn: &mut DbConnection,
    actor: &Actor,
    id: i64,
    enabled: bool,
) -> CoreResult<Device> {
    policy::ensure_register_device(actor)?;
    let row: DeviceRow = on_backend!(conn, c => diesel::update(d::devices.find(id))
        .set(d::enabled.eq(enabled))
        .returning(DeviceRow::as_returning())
        .get_result(c))
    .or_not_found("device")?;
    row.into_model()
}

/// Gives a device a new broker password (operators only), shown this once; the old one stops working
/// at once and an open connection made with it is closed.
pub fn rotate_device_credentials(
    conn: &mut DbConnection,
    actor: &Actor,
    id: i64,
) -> CoreResult<RegisteredDevice> {
    policy::ensure_register_device(actor)?;
    let password = crate::auth::new_token();
    let hash = crate::auth::hash_device_password(&password);
    let row: DeviceRow = on_backend!(conn, c => diesel::update(d::devices.find(id))
        .set(d::password_hash.eq(&hash))
        .returning(DeviceRow::as_returning())
        .get_result(c))
    .or_not_found("device")?;
    let device = row.into_model()?;
    Ok(RegisteredDevice {
        username: device.client_id.clone(),
        device,
        password,
    })
}

/// Records a status report when it is newer than the stored one (retained messages arrive again on
/// every reconnect).
pub fn set_device_status(
    conn: &mut DbConnection,
    device_id: i64,
    status: DeviceStatus,
    at_ms: i64,
) -> CoreResult<()> {
    on_backend!(conn, c => diesel::update(
            d::devices
                .filter(d::id.eq(device_id))
                .filter(d::status_at.is_null().or(d::status_at.le(at_ms))),
        )
        .set((d::status.eq(status.as_str()), d::status_at.eq(at_ms)))
        .execute(c))?;
    Ok(())
}

/// Moves devices' `last_seen_at` forward to the newest device time stored. One statement on PostgreSQL
/// (the devices of a batch as two arrays), one per device on SQLite (no round trips there).
pub fn touch_devices(conn: &mut DbConnection, seen: &[(i64, i64)]) -> CoreResult<()> {
    use diesel::sql_types::{Array, BigInt};
    if seen.is_empty() {
        return Ok(());
    }
    match conn {
        DbConnection::Postgresql(c) => {
            diesel::sql_query(
                "UPDATE devices SET last_seen_at = v.ts \
                 FROM unnest($1::int8[], $2::int8[]) AS v(id, ts) \
                 WHERE devices.id = v.id AND (devices.last_seen_at IS NULL OR devices.last_seen_at < v.ts)",
            )
            .bind::<Array<BigInt>, _>(seen.iter().map(|s| s.0).collect::<Vec<_>>())
            .bind::<Array<BigInt>, _>(seen.iter().map(|s| s.1).collect::<Vec<_>>())
            .execute(c)?;
        }
        DbConnection::Sqlite(c) => {
            for &(device_id, ts) in seen {
                diesel::update(
                    d::devices
                        .filter(d::id.eq(device_id))
                        .filter(d::last_seen_at.is_null().or(d::last_seen_at.lt(ts))),
                )
                .set(d::last_seen_at.eq(ts))
                .execute(c)?;
            }
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------------
// Readings and images

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

/// The identity of a stored reading: (device, metric, ts, seq).
pub type ReadingKey = (i64, String, i64, i64);

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
/// arrives. With `want_keys` (rules must see what is new) it returns the keys of the readings that were
/// not stored before; without, an empty list.
///
/// Messages with the same key (device, ts, seq) are one row: within the batch they are merged first,
/// and a message whose row already exists adds only the metrics the row lacks (the first value of a
/// metric wins), so the readings stored are exactly those a per-metric key would have kept.
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
    want_keys: bool,
) -> CoreResult<Vec<ReadingKey>> {
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
    if stored.is_empty() && !want_keys {
        return Ok(fresh);
    }
    let mut additions = Vec::new();
    for m in messages {
        if inserted.contains(&m.key()) {
            if want_keys {
                fresh.extend(
                    m.metrics
                        .iter()
                        .map(|(metric, _)| (m.device_id, metric.clone(), m.ts, m.seq)),
                );
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
        if want_keys {
            fresh.extend(
                added
                    .iter()
                    .map(|metric| (m.device_id, (*metric).to_owned(), m.ts, m.seq)),
            );
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

/// An image to record (the files are already in the media folder).
#[derive(Debug, Clone, PartialEq, Insertable)]
#[diesel(table_name = crate::schema::device_images)]
pub struct NewDeviceImage {
    pub device_id: i64,
    pub site_id: i64,
    pub taken_at: i64,
    pub sha256: String,
    pub bytes: i64,
    pub width: i64,
    pub height: i64,
    pub path: String,
    pub thumb_path: String,
    pub received_at: i64,
}

/// Records an image; `false` when the same device already sent the same image for the same time.
pub fn insert_image(conn: &mut DbConnection, image: &NewDeviceImage) -> CoreResult<bool> {
    let n = on_backend!(conn, c => diesel::insert_into(di::device_images)
        .values(image)
        .on_conflict_do_nothing()
        .execute(c))?;
    Ok(n == 1)
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
    let s = super::sites::get_site(conn, site)?;
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

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = crate::schema::device_images)]
struct ImageRow {
    id: i64,
    device_id: i64,
    site_id: i64,
    taken_at: i64,
    sha256: String,
    bytes: i64,
    width: i64,
    height: i64,
    path: String,
    thumb_path: String,
}

impl ImageRow {
    fn into_model(self) -> DeviceImage {
        DeviceImage {
            id: self.id,
            device_id: self.device_id,
            site_id: SiteId(self.site_id),
            taken_at: to_datetime(self.taken_at),
            sha256: self.sha256,
            bytes: self.bytes,
            width: self.width,
            height: self.height,
            path: self.path,
            thumb_path: self.thumb_path,
        }
    }
}

/// A site's images taken in `[from, to)`, oldest first, keyset-paged by id.
pub fn site_images(
    conn: &mut DbConnection,
    actor: &Actor,
    site: SiteId,
    from: i64,
    to: i64,
    page: Page,
) -> CoreResult<Paged<DeviceImage>> {
    let s = super::sites::get_site(conn, site)?;
    policy::ensure_read_site_data(actor, s.org_id)?;
    let limit = page.limit()?;
    let rows: Vec<ImageRow> = on_backend!(conn, c => di::device_images
        .filter(di::site_id.eq(site.0))
        .filter(di::taken_at.ge(from))
        .filter(di::taken_at.lt(to))
        .filter(di::id.gt(page.after()))
        .order(di::id)
        .limit(limit + 1)
        .select(ImageRow::as_select())
        .load(c))?;
    Ok(Paged::from_fetched(
        rows.into_iter().map(ImageRow::into_model).collect(),
        limit,
        |x| x.id,
    ))
}

/// Images taken at these sites over `[from, to)`, at most `max` spread evenly over the period, oldest
/// first. Unchecked: for the public story of a batch, whose plot photos a consumer may see.
pub fn images_at(
    conn: &mut DbConnection,
    sites: &[SiteId],
    from: i64,
    to: i64,
    max: usize,
) -> CoreResult<Vec<DeviceImage>> {
    let ids: Vec<i64> = sites.iter().map(|s| s.0).collect();
    let all: Vec<(i64, i64)> = on_backend!(conn, c => di::device_images
        .filter(di::site_id.eq_any(&ids))
        .filter(di::taken_at.ge(from))
        .filter(di::taken_at.lt(to))
        .order((di::taken_at, di::id))
        .select((di::id, di::taken_at))
        .load(c))?;
    if all.is_empty() || max == 0 {
        return Ok(Vec::new());
    }
    // Evenly spaced picks across the growing period, the first and the last included.
    let picks: Vec<i64> = if all.len() <= max {
        all.iter().map(|x| x.0).collect()
    } else {
        let step = (all.len() - 1) as f64 / (max - 1).max(1) as f64;
        let mut v: Vec<i64> = (0..max)
            .map(|i| all[((i as f64 * step).round() as usize).min(all.len() - 1)].0)
            .collect();
        v.dedup();
        v
    };
    let rows: Vec<ImageRow> = on_backend!(conn, c => di::device_images
        .filter(di::id.eq_any(&picks))
        .order((di::taken_at, di::id))
        .select(ImageRow::as_select())
        .load(c))?;
    Ok(rows.into_iter().map(ImageRow::into_model).collect())
}

/// One image, unchecked (the caller has established it belongs to a public story).
pub fn image_unchecked(conn: &mut DbConnection, id: i64) -> CoreResult<DeviceImage> {
    let row: ImageRow = on_backend!(conn, c => di::device_images
        .find(id)
        .select(ImageRow::as_select())
        .first(c))
    .or_not_found("image")?;
    Ok(row.into_model())
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

/// One image, if the actor may see its site.
pub fn get_image(conn: &mut DbConnection, actor: &Actor, id: i64) -> CoreResult<DeviceImage> {
    let row: ImageRow = on_backend!(conn, c => di::device_images
        .find(id)
        .select(ImageRow::as_select())
        .first(c))
    .or_not_found("image")?;
    let site = super::sites::get_site(conn, SiteId(row.site_id))?;
    policy::ensure_read_site_data(actor, site.org_id)
        .map_err(|_| CoreError::NotFound { what: "image" })?;
    Ok(row.into_model())
}

// ---------------------------------------------------------------------------------------------------
// Rules and their state

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = crate::schema::iot_rules)]
struct RuleRow {
    id: i64,
    org_id: i64,
    site_id: i64,
    device_id: Option<i64>,
    kind: String,
    name: String,
    metric: Option<String>,
    min_value: Option<f64>,
    max_value: Option<f64>,
    duration_ms: i64,
    enabled: bool,
    created_by: i64,
    created_at: i64,
}

impl RuleRow {
    fn into_model(self) -> CoreResult<IotRule> {
        Ok(IotRule {
            id: self.id,
            org_id: OrgId(self.org_id),
            site_id: SiteId(self.site_id),
            device_id: self.device_id,
            kind: RuleKind::parse(&self.kind)
                .ok_or_else(|| CoreError::Internal(format!("rule kind {:?}", self.kind)))?,
            name: self.name,
            metric: self.metric,
            min_value: self.min_value,
            max_value: self.max_value,
            duration_ms: self.duration_ms,
            enabled: self.enabled,
            created_by: UserId(self.created_by),
            created_at: to_datetime(self.created_at),
        })
    }
}

fn rules(rows: Vec<RuleRow>) -> CoreResult<Vec<IotRule>> {
    rows.into_iter().map(RuleRow::into_model).collect()
}

/// Creates a rule on a site (members of its organisation, operators).
pub fn create_rule(
    conn: &mut DbConnection,
    actor: &Actor,
    new: &NewIotRule,
) -> CoreResult<IotRule> {
    new.validate()?;
    let site = super::sites::get_site(conn, new.site_id)?;
    policy::ensure_write_site_rules(actor, site.org_id)?;
    if let Some(dev) = new.device_id {
        let device = get_device(conn, actor, dev)?;
        if device.site_id != site.id {
            return Err(CoreError::invalid(
                "device_not_on_site",
                format!("device {dev} is not on site {}", site.id),
            ));
        }
    }
    on_backend!(conn, c => diesel::insert_into(ir::iot_rules)
        .values((
            ir::org_id.eq(site.org_id.0),
            ir::site_id.eq(site.id.0),
            ir::device_id.eq(new.device_id),
            ir::kind.eq(new.kind.as_str()),
            ir::name.eq(new.name.trim()),
            ir::metric.eq(&new.metric),
            ir::min_value.eq(new.min_value),
            ir::max_value.eq(new.max_value),
            ir::duration_ms.eq(new.duration_ms),
            ir::enabled.eq(true),
            ir::created_by.eq(actor.user_id.0),
            ir::created_at.eq(now_millis()),
        ))
        .returning(RuleRow::as_returning())
        .get_result(c))?
    .into_model()
}

/// The rules the actor may see, optionally of one site.
pub fn list_rules(
    conn: &mut DbConnection,
    actor: &Actor,
    site: Option<SiteId>,
) -> CoreResult<Vec<IotRule>> {
    let org = (!policy::reads_all(actor)).then_some(actor.org_id.0);
    let rows: Vec<RuleRow> = on_backend!(conn, c => {
        let mut q = ir::iot_rules.into_boxed();
        if let Some(org) = org {
            q = q.filter(ir::org_id.eq(org));
        }
        if let Some(site) = site {
            q = q.filter(ir::site_id.eq(site.0));
        }
        q.order(ir::id).select(RuleRow::as_select()).load(c)
    })?;
    rules(rows)
}

/// The enabled rules of these sites (threshold and no-data), for evaluation.
pub fn enabled_rules_for_sites(
    conn: &mut DbConnection,
    sites: &[SiteId],
) -> CoreResult<Vec<IotRule>> {
    let ids: Vec<i64> = sites.iter().map(|s| s.0).collect();
    let rows: Vec<RuleRow> = on_backend!(conn, c => ir::iot_rules
        .filter(ir::site_id.eq_any(&ids))
        .filter(ir::enabled.eq(true))
        .order(ir::id)
        .select(RuleRow::as_select())
        .load(c))?;
    rules(rows)
}

/// Every enabled no-data rule, for the periodic check.
pub fn enabled_no_data_rules(conn: &mut DbConnection) -> CoreResult<Vec<IotRule>> {
    let rows: Vec<RuleRow> = on_backend!(conn, c => ir::iot_rules
        .filter(ir::kind.eq(RuleKind::NoData.as_str()))
        .filter(ir::enabled.eq(true))
        .order(ir::id)
        .select(RuleRow::as_select())
        .load(c))?;
    rules(rows)
}

/// The rule states of these devices (JSON documents), locked until the transaction ends on PostgreSQL.
/// Devices without a row yet get one (`{}`), so that the lock covers them too.
pub fn lock_rule_states(
    conn: &mut DbConnection,
    device_ids: &[i64],
) -> CoreResult<Vec<(i64, String)>> {
    let mut ids = device_ids.to_vec();
    ids.sort_unstable();
    ids.dedup();
    let now = now_millis();
    let fresh: Vec<_> = ids
        .iter()
        .map(|&id| {
            (
                rs::device_id.eq(id),
                rs::state.eq("{}"),
                rs::updated_at.eq(now),
            )
        })
        .collect();
    on_backend!(conn, c => diesel::insert_into(rs::device_rule_states)
        .values(&fresh)
        .on_conflict_do_nothing()
        .execute(c))?;
    Ok(match conn {
        DbConnection::Postgresql(c) => rs::device_rule_states
            .filter(rs::device_id.eq_any(&ids))
            .order(rs::device_id)
            .for_update()
            .select((rs::device_id, rs::state))
            .load(c)?,
        DbConnection::Sqlite(c) => rs::device_rule_states
            .filter(rs::device_id.eq_any(&ids))
            .order(rs::device_id)
            .select((rs::device_id, rs::state))
            .load(c)?,
    })
}

/// Saves rule states taken with [`lock_rule_states`].
pub fn save_rule_states(conn: &mut DbConnection, states: &[(i64, String)]) -> CoreResult<()> {
    let now = now_millis();
    for (device_id, state) in states {
        on_backend!(conn, c => diesel::update(rs::device_rule_states.find(device_id))
            .set((rs::state.eq(state), rs::updated_at.eq(now)))
            .execute(c))?;
    }
    Ok(())
}

/// An alert raised by a device rule.
#[derive(Debug, Clone, PartialEq)]
pub struct NewIotAlert {
    pub kind: &'static str,
    pub severity: &'static str,
    pub org_id: OrgId,
    pub site_id: SiteId,
    pub device_id: i64,
    pub rule_id: i64,
    pub metric: Option<String>,
    pub value: Option<f64>,
    pub late: bool,
    pub message: String,
    /// Event time the condition started.
    pub opened_at: i64,
}

/// Opens an alert once (a second call for the same rule, device and start does nothing).
pub fn open_iot_alert(conn: &mut DbConnection, alert: &NewIotAlert) -> CoreResult<bool> {
    let n = on_backend!(conn, c => diesel::insert_into(a::alerts)
        .values((
            a::kind.eq(alert.kind),
            a::severity.eq(alert.severity),
            a::org_id.eq(alert.org_id.0),
            a::site_id.eq(alert.site_id.0),
            a::device_id.eq(alert.device_id),
            a::rule_id.eq(alert.rule_id),
            a::metric.eq(&alert.metric),
            a::value.eq(alert.value),
            a::late.eq(alert.late),
            a::message.eq(&alert.message),
            a::opened_at.eq(alert.opened_at),
        ))
        .on_conflict_do_nothing()
        .execute(c))?;
    Ok(n == 1)
}

/// Closes the alert a rule opened for a device at `opened_at`.
pub fn close_iot_alert(
    conn: &mut DbConnection,
    rule_id: i64,
    device_id: i64,
    opened_at: i64,
    closed_at: i64,
) -> CoreResult<()> {
    on_backend!(conn, c => diesel::update(
            a::alerts
                .filter(a::rule_id.eq(rule_id))
                .filter(a::device_id.eq(device_id))
                .filter(a::opened_at.eq(opened_at))
                .filter(a::closed_at.is_null()),
        )
        .set(a::closed_at.eq(closed_at))
        .execute(c))?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------------
// Refusals

/// Refusals to add for one reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefusalDelta {
    pub reason: String,
    pub refused: i64,
    /// The newest refused message of this reason seen since the last flush, if it was kept.
    pub last: Option<RefusalExample>,
}

/// What is kept of a refused message: when, its topic and why (never its payload).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefusalExample {
    pub at: i64,
    pub topic: String,
    pub detail: String,
}

/// Adds refusal counts (summed over replicas) and keeps the newest example of each reason.
pub fn add_refusals(conn: &mut DbConnection, deltas: &[RefusalDelta]) -> CoreResult<()> {
    for delta in deltas.iter().filter(|x| x.refused > 0) {
        let example = delta.last.clone().unwrap_or(RefusalExample {
            at: 0,
            topic: String::new(),
            detail: String::new(),
        });
        on_backend!(conn, c => diesel::insert_into(gr::gateway_refusals)
            .values((
                gr::reason.eq(&delta.reason),
                gr::refused.eq(delta.refused),
                gr::last_at.eq(example.at),
                gr::last_topic.eq(&example.topic),
                gr::last_detail.eq(&example.detail),
            ))
            .on_conflict(gr::reason)
            .do_update()
            .set(gr::refused.eq(gr::refused + delta.refused))
            .execute(c))?;
        if let Some(last) = &delta.last {
            on_backend!(conn, c => diesel::update(
                    gr::gateway_refusals
                        .filter(gr::reason.eq(&delta.reason))
                        .filter(gr::last_at.le(last.at)),
                )
                .set((
                    gr::last_at.eq(last.at),
                    gr::last_topic.eq(&last.topic),
                    gr::last_detail.eq(&last.detail),
                ))
                .execute(c))?;
        }
    }
    Ok(())
}

/// Refusal counts per reason (operators and regulators).
pub fn refusals(conn: &mut DbConnection, actor: &Actor) -> CoreResult<Vec<RefusalCount>> {
    if !policy::reads_all(actor) {
        return Err(CoreError::forbidden(
            "the gateway's refusals are for operators and regulators",
        ));
    }
    let rows: Vec<(String, i64, i64, String, String)> = on_backend!(conn, c => gr::gateway_refusals
        .order(gr::reason)
        .select((gr::reason, gr::refused, gr::last_at, gr::last_topic, gr::last_detail))
        .load(c))?;
    Ok(rows
        .into_iter()
        .map(
            |(reason, refused, last_at, last_topic, last_detail)| RefusalCount {
                reason,
                refused,
                last_at: to_datetime(last_at),
                last_topic,
                last_detail,
            },
        )
        .collect())
}

// ---------------------------------------------------------------------------------------------------
// Bulk history (benchmarks, imports)

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
