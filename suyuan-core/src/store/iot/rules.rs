//! Sensor rules as operators define them, the per-device rule states the evaluator continues from, and
//! the alerts the rules open and close.

use diesel::prelude::*;

use crate::error::{CoreError, CoreResult};
use crate::model::{Actor, AlertKind, IotRule, NewIotRule, RuleKind};
use crate::on_backend;
use crate::policy;
use crate::schema::{alerts::dsl as a, device_rule_states::dsl as rs, iot_rules::dsl as ir};
use crate::store::DbConnection;
use crate::time::{now_millis, to_datetime};
use crate::{OrgId, SiteId, UserId};

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
    let site = crate::store::sites::get_site(conn, new.site_id)?;
    policy::ensure_write_site_rules(actor, site.org_id)?;
    if let Some(dev) = new.device_id {
        let device = super::get_device(conn, actor, dev)?;
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
    /// [`AlertKind::SensorThreshold`] or [`AlertKind::SensorNoData`]; its severity goes with it.
    pub kind: AlertKind,
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
            a::kind.eq(alert.kind.as_str()),
            a::severity.eq(alert.kind.severity().as_str()),
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
