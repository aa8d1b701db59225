//! A small county for tests: one organisation and account per role, two cooperatives (to test that one
//! cannot write for the other), a processor, a lab, a cold store, a regulator and an operator, with API
//! tokens, sites, products and a harvest batch.

use serde_json::{json, Value};
use suyuan_core::auth::TokenKind;
use suyuan_core::model::*;
use suyuan_core::store::{batches, orgs, sites, users};
use suyuan_core::{BatchId, OrgId, ProductId, SiteId};

use super::TestApp;

/// An account with its token.
#[derive(Debug, Clone)]
pub struct Account {
    pub token: String,
    pub actor: Actor,
}

/// The test county.
#[derive(Debug, Clone)]
pub struct World {
    pub operator: Account,
    pub regulator: Account,
    pub farmer: Account,
    pub other_farmer: Account,
    pub processor: Account,
    pub inspector: Account,
    pub logistics: Account,
    pub coop: OrgId,
    pub other_coop: OrgId,
    pub processor_org: OrgId,
    pub lab: OrgId,
    pub coldstore: OrgId,
    pub plot: SiteId,
    pub line: SiteId,
    pub citrus: ProductId,
    pub juice: ProductId,
    /// A harvest batch of the cooperative.
    pub batch: BatchId,
}

fn org(c: &mut suyuan_core::db::DbConnection, name: &str, kind: OrgKind) -> OrgId {
    orgs::create(
        c,
        &NewOrganisation {
            name: name.into(),
            kind,
            credit_code: None,
            division_code: "530424".into(),
            address: Some("华宁县".into()),
            public_contact: Some("0877-0000000".into()),
        },
    )
    .expect("org")
    .id
}

fn account(
    c: &mut suyuan_core::db::DbConnection,
    org_id: OrgId,
    username: &str,
    role: Role,
) -> Account {
    let u = users::create(
        c,
        &NewUser {
            org_id,
            username: username.into(),
            display_name: format!("测试{username}"),
            phone: Some("13912345678".into()),
            role,
            password: "correct-horse-battery".into(),
        },
    )
    .expect("user");
    let token = users::issue_token(c, u.id, TokenKind::Api, Some("test")).expect("token");
    Account {
        token,
        actor: Actor {
            user_id: u.id,
            org_id,
            role,
        },
    }
}

impl World {
    /// Builds the county in the app's database.
    pub fn build(app: &TestApp) -> World {
        app.db
            .write(|c| {
                let operator_org = org(c, "电商服务中心", OrgKind::Operator);
                let regulator_org = org(c, "农业农村局", OrgKind::Regulator);
                let coop = org(c, "青龙柑橘合作社", OrgKind::Cooperative);
                let other_coop = org(c, "盘溪蔬菜合作社", OrgKind::Cooperative);
                let processor_org = org(c, "果品加工厂", OrgKind::Processor);
                let lab = org(c, "检测站", OrgKind::Lab);
                let coldstore = org(c, "冷链物流", OrgKind::Logistics);
                let operator = account(c, operator_org, "operator1", Role::Operator);
                let regulator = account(c, regulator_org, "reg", Role::Regulator);
                let farmer = account(c, coop, "farmer1", Role::Farmer);
                let other_farmer = account(c, other_coop, "farmer2", Role::Farmer);
                let processor = account(c, processor_org, "proc", Role::Processor);
                let inspector = account(c, lab, "insp", Role::Inspector);
                let logistics = account(c, coldstore, "cold", Role::Logistics);
                let plot = sites::create_site(
                    c,
                    coop,
                    &NewSite {
                        name: "1号地块".into(),
                        kind: SiteKind::Plot,
                        division_code: "530424".into(),
                        address: None,
                        latitude: Some(24.19),
                        longitude: Some(103.03),
                        area_mu: Some(20.0),
                    },
                )?
                .id;
                let line = sites::create_site(
                    c,
                    processor_org,
                    &NewSite {
                        name: "包装线".into(),
                        kind: SiteKind::PackingLine,
                        division_code: "530424".into(),
                        address: None,
                        latitude: None,
                        longitude: None,
                        area_mu: None,
                    },
                )?
                .id;
                let citrus = sites::create_product(
                    c,
                    coop,
                    &NewProduct {
                        name: "华宁柑橘".into(),
                        category: "水果".into(),
                        brand: Some("青龙".into()),
                        certifications: vec![Certification::GreenFood],
                        gtin: None,
                        label_fields: suyuan_core::model::LabelField::DEFAULT.to_vec(),
                        distribution_area: vec![],
                    },
                )?
                .id;
                let juice = sites::create_product(
                    c,
                    processor_org,
                    &NewProduct {
                        name: "柑橘汁".into(),
                        category: "饮料".into(),
                        brand: None,
                        certifications: vec![],
                        gtin: None,
                        label_fields: suyuan_core::model::LabelField::DEFAULT.to_vec(),
                        distribution_area: vec![],
                    },
                )?
                .id;
                let batch = batches::create(
                    c,
                    &farmer.actor,
                    &NewBatch {
                        product_id: citrus,
                        lot_code: "QL-001".into(),
                        quantity: 1000.0,
                        unit: "kg".into(),
                        origin_site_id: Some(plot),
                    },
                )?
                .id;
                Ok(World {
                    operator,
                    regulator,
                    farmer,
                    other_farmer,
                    processor,
                    inspector,
                    logistics,
                    coop,
                    other_coop,
                    processor_org,
                    lab,
                    coldstore,
                    plot,
                    line,
                    citrus,
                    juice,
                    batch,
                })
            })
            .expect("world")
    }
}

/// A note record body.
pub fn note(text: &str) -> Value {
    json!({ "client_id": super::cid(), "event_time": super::days_ago(1), "details": { "kind": "note", "text": text } })
}

/// A spraying record body.
pub fn spraying(days_ago: i64, phi_days: u32) -> Value {
    json!({
        "client_id": super::cid(),
        "event_time": super::days_ago(days_ago),
        "details": {
            "kind": "spraying",
            "pesticide_name": "阿维菌素",
            "registration_number": "PD20080001",
            "active_ingredient": "阿维菌素 1.8%",
            "dose": 30.0,
            "dose_unit": "ml/亩",
            "pre_harvest_interval_days": phi_days
        }
    })
}

/// A harvest record body.
pub fn harvest(days_ago: i64) -> Value {
    json!({
        "client_id": super::cid(),
        "event_time": super::days_ago(days_ago),
        "details": { "kind": "harvest", "quantity": 1000.0, "unit": "kg" }
    })
}

/// An inspection record body.
pub fn inspection(pass: bool) -> Value {
    let (value, result) = if pass { (0.01, "pass") } else { (0.9, "fail") };
    json!({
        "client_id": super::cid(),
        "event_time": super::days_ago(0),
        "details": {
            "kind": "inspection",
            "method": "lab",
            "items": [{ "name": "毒死蜱", "value": value, "unit": "mg/kg", "limit": 0.5, "result": result }],
            "report_number": "R-1",
            "overall": result
        }
    })
}
