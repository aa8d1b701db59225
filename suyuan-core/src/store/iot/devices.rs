//! Devices: registration, broker logins and credentials, enabling, rotation, status and last-seen time.

use diesel::prelude::*;

use crate::error::{CoreError, CoreResult, OptionalExt};
use crate::model::{Actor, Device, DeviceKind, DeviceStatus, NewDevice, RegisteredDevice};
use crate::on_backend;
use crate::policy;
use crate::schema::devices::dsl as d;
use crate::store::{DbConnection, Page, Paged};
use crate::time::{now_millis, to_datetime};
use crate::{OrgId, SiteId, UserId};

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
    let site = crate::store::sites::get_site(conn, new.site_id)?;
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
        Err(e) if crate::store::is_unique_violation(&e) => {
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
