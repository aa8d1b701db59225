//! Row structs: what diesel reads and writes, and their conversion to the model. Text columns holding a
//! closed vocabulary or JSON are parsed here; a value that does not parse is reported as an internal error
//! (the write path never stores one).

use diesel::prelude::*;

use crate::error::{CoreError, CoreResult};
use crate::model::*;
use crate::schema::*;
use crate::time::to_datetime;
use crate::*;

fn vocab<T>(parsed: Option<T>, column: &str, value: &str) -> CoreResult<T> {
    parsed.ok_or_else(|| CoreError::Internal(format!("unexpected {column} {value:?} in database")))
}

fn json<T: serde::de::DeserializeOwned>(column: &str, text: &str) -> CoreResult<T> {
    serde_json::from_str(text)
        .map_err(|e| CoreError::Internal(format!("unreadable {column} in database: {e}")))
}

/// organisations row.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = organisations)]
pub struct OrgRow {
    pub id: i64,
    pub name: String,
    pub kind: String,
    pub credit_code: Option<String>,
    pub division_code: String,
    pub address: Option<String>,
    pub public_contact: Option<String>,
    pub created_at: i64,
}

impl OrgRow {
    /// To the model.
    pub fn into_model(self) -> CoreResult<Organisation> {
        Ok(Organisation {
            id: OrgId(self.id),
            kind: vocab(OrgKind::parse(&self.kind), "organisation kind", &self.kind)?,
            name: self.name,
            credit_code: self.credit_code,
            division_code: self.division_code,
            address: self.address,
            public_contact: self.public_contact,
            created_at: to_datetime(self.created_at),
        })
    }
}

/// users row.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = users)]
pub struct UserRow {
    pub id: i64,
    pub org_id: i64,
    pub username: String,
    pub display_name: String,
    pub phone: Option<String>,
    pub role: String,
    pub password_hash: String,
    pub created_at: i64,
}

impl UserRow {
    /// To the model (without the password hash).
    pub fn into_model(self) -> CoreResult<User> {
        Ok(User {
            id: UserId(self.id),
            org_id: OrgId(self.org_id),
            role: vocab(Role::parse(&self.role), "role", &self.role)?,
            username: self.username,
            display_name: self.display_name,
            phone: self.phone,
            created_at: to_datetime(self.created_at),
        })
    }
}

/// sites row.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = sites)]
pub struct SiteRow {
    pub id: i64,
    pub org_id: i64,
    pub name: String,
    pub kind: String,
    pub division_code: String,
    pub address: Option<String>,
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
    pub area_mu: Option<f64>,
    pub created_at: i64,
}

impl SiteRow {
    /// To the model.
    pub fn into_model(self) -> CoreResult<Site> {
        Ok(Site {
            id: SiteId(self.id),
            org_id: OrgId(self.org_id),
            kind: vocab(SiteKind::parse(&self.kind), "site kind", &self.kind)?,
            name: self.name,
            division_code: self.division_code,
            address: self.address,
            latitude: self.latitude,
            longitude: self.longitude,
            area_mu: self.area_mu,
            created_at: to_datetime(self.created_at),
        })
    }
}

/// products row.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = products)]
pub struct ProductRow {
    pub id: i64,
    pub org_id: i64,
    pub name: String,
    pub category: String,
    pub brand: Option<String>,
    pub certifications: String,
    pub gtin: Option<String>,
    pub created_at: i64,
    pub label_fields: String,
    pub distribution_area: String,
}

impl ProductRow {
    /// To the model.
    pub fn into_model(self) -> CoreResult<Product> {
        Ok(Product {
            id: ProductId(self.id),
            org_id: OrgId(self.org_id),
            certifications: json("certifications", &self.certifications)?,
            label_fields: json("label_fields", &self.label_fields)?,
            distribution_area: json("distribution_area", &self.distribution_area)?,
            name: self.name,
            category: self.category,
            brand: self.brand,
            gtin: self.gtin,
            created_at: to_datetime(self.created_at),
        })
    }
}

/// batches row.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = batches)]
pub struct BatchRow {
    pub id: i64,
    pub org_id: i64,
    pub product_id: i64,
    pub lot_code: String,
    pub quantity: f64,
    pub unit: String,
    pub status: String,
    pub status_reason: Option<String>,
    pub origin_site_id: Option<i64>,
    pub custodian_org_id: i64,
    pub in_transit_to_org_id: Option<i64>,
    pub record_count: i64,
    pub head_hash: String,
    pub created_at: i64,
}

impl BatchRow {
    /// To the model.
    pub fn into_model(self) -> CoreResult<Batch> {
        Ok(Batch {
            id: BatchId(self.id),
            org_id: OrgId(self.org_id),
            product_id: ProductId(self.product_id),
            status: vocab(
                BatchStatus::parse(&self.status),
                "batch status",
                &self.status,
            )?,
            lot_code: self.lot_code,
            quantity: self.quantity,
            unit: self.unit,
            status_reason: self.status_reason,
            origin_site_id: self.origin_site_id.map(SiteId),
            custodian_org_id: OrgId(self.custodian_org_id),
            in_transit_to_org_id: self.in_transit_to_org_id.map(OrgId),
            record_count: self.record_count,
            head_hash: self.head_hash,
            created_at: to_datetime(self.created_at),
        })
    }
}

/// records row (also what is inserted).
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = records)]
pub struct RecordRow {
    #[diesel(skip_insertion)]
    pub id: i64,
    pub client_id: String,
    pub batch_id: i64,
    pub seq: i64,
    pub kind: String,
    pub event_time: i64,
    pub received_at: i64,
    pub site_id: Option<i64>,
    pub actor_user_id: i64,
    pub org_id: i64,
    pub details: String,
    pub attachments: String,
    pub flags: String,
    pub supersedes_id: Option<i64>,
    pub prev_hash: String,
    pub hash: String,
}

impl RecordRow {
    /// The fields the chain hash covers.
    pub fn chain_fields(&self) -> crate::chain::ChainFields<'_> {
        crate::chain::ChainFields {
            batch_id: self.batch_id,
            seq: self.seq,
            client_id: &self.client_id,
            kind: &self.kind,
            event_time: self.event_time,
            received_at: self.received_at,
            site_id: self.site_id,
            actor_user_id: self.actor_user_id,
            org_id: self.org_id,
            details: &self.details,
            attachments: &self.attachments,
            flags: &self.flags,
            supersedes_id: self.supersedes_id,
            prev_hash: &self.prev_hash,
        }
    }

    /// To the model.
    pub fn into_model(self) -> CoreResult<Record> {
        Ok(Record {
            id: RecordId(self.id),
            client_id: uuid::Uuid::parse_str(&self.client_id).map_err(|e| {
                CoreError::Internal(format!("unreadable client_id in database: {e}"))
            })?,
            batch_id: BatchId(self.batch_id),
            seq: self.seq,
            event_time: to_datetime(self.event_time),
            received_at: to_datetime(self.received_at),
            site_id: self.site_id.map(SiteId),
            actor_user_id: UserId(self.actor_user_id),
            org_id: OrgId(self.org_id),
            details: json("details", &self.details)?,
            attachments: json("attachments", &self.attachments)?,
            flags: json("flags", &self.flags)?,
            supersedes: self.supersedes_id.map(RecordId),
            prev_hash: self.prev_hash,
            hash: self.hash,
        })
    }
}

/// lineage_edges row.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = lineage_edges)]
pub struct EdgeRow {
    #[diesel(skip_insertion)]
    pub id: i64,
    pub transformation_id: i64,
    pub parent_batch_id: i64,
    pub child_batch_id: i64,
    pub kind: String,
    pub quantity: f64,
    pub unit: String,
}

impl EdgeRow {
    /// To the model.
    pub fn into_model(self) -> CoreResult<LineageEdge> {
        Ok(LineageEdge {
            parent_batch_id: BatchId(self.parent_batch_id),
            child_batch_id: BatchId(self.child_batch_id),
            kind: vocab(LineageKind::parse(&self.kind), "lineage kind", &self.kind)?,
            transformation_id: TransformationId(self.transformation_id),
            quantity: self.quantity,
            unit: self.unit,
        })
    }
}

/// alerts row.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = alerts)]
pub struct AlertRow {
    pub id: i64,
    pub kind: String,
    pub severity: String,
    pub org_id: Option<i64>,
    pub batch_id: Option<i64>,
    pub record_id: Option<i64>,
    pub message: String,
    pub opened_at: i64,
    pub closed_at: Option<i64>,
    pub site_id: Option<i64>,
    pub device_id: Option<i64>,
    pub rule_id: Option<i64>,
    pub metric: Option<String>,
    pub value: Option<f64>,
    pub late: bool,
}

impl AlertRow {
    /// To the model.
    pub fn into_model(self) -> Alert {
        Alert {
            id: AlertId(self.id),
            kind: self.kind,
            severity: self.severity,
            org_id: self.org_id.map(OrgId),
            batch_id: self.batch_id.map(BatchId),
            record_id: self.record_id.map(RecordId),
            message: self.message,
            opened_at: to_datetime(self.opened_at),
            closed_at: self.closed_at.map(to_datetime),
            site_id: self.site_id.map(crate::SiteId),
            device_id: self.device_id,
            rule_id: self.rule_id,
            metric: self.metric,
            value: self.value,
            late: self.late,
        }
    }
}

/// Converts a list of rows, failing on the first unreadable one.
pub fn models<R, T>(rows: Vec<R>, f: impl Fn(R) -> CoreResult<T>) -> CoreResult<Vec<T>> {
    rows.into_iter().map(f).collect()
}

/// The column values of one record row, for multi-row inserts. SQLite cannot batch-insert `Insertable`
/// structs with optional fields (a `None` would need `DEFAULT`), so every column is bound explicitly.
macro_rules! record_values {
    ($row:expr) => {{
        use crate::schema::records::dsl as rv;
        let x: &crate::store::rows::RecordRow = $row;
        (
            rv::client_id.eq(&x.client_id),
            rv::batch_id.eq(x.batch_id),
            rv::seq.eq(x.seq),
            rv::kind.eq(&x.kind),
            rv::event_time.eq(x.event_time),
            rv::received_at.eq(x.received_at),
            rv::site_id.eq(x.site_id),
            rv::actor_user_id.eq(x.actor_user_id),
            rv::org_id.eq(x.org_id),
            rv::details.eq(&x.details),
            rv::attachments.eq(&x.attachments),
            rv::flags.eq(&x.flags),
            rv::supersedes_id.eq(x.supersedes_id),
            rv::prev_hash.eq(&x.prev_hash),
            rv::hash.eq(&x.hash),
        )
    }};
}
pub(crate) use record_values;
