//! The demo county seeded by `suyuan serve --demo`: a citrus cooperative in 华宁县 with two plots, a
//! processor, a lab, a cold store, a regulator and an operator, two products with certifications, and batches
//! that went through farming, an inspection, a grading split, a merge into gift boxes and a shipment.
//!
//! Seeding goes through the same store functions and rules as the API (it lives beside the commands, not in
//! the domain crate, and uses nothing the API could not), so the demo data is what real use produces (hash
//! chains included). It runs once: a database that already has the demo organisations is left as it is.

use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;

use suyuan_core::model::*;
use suyuan_core::store::{batches, iot, lineage, orgs, records, sites, users, DbConnection, Page};
use suyuan_core::{BatchId, CoreResult, Database, OrgId, SiteId};

/// The showcase product: gift boxes packed from both harvests, whose trace shows the whole story.
pub const GIFTBOX: &str = "华宁柑橘礼盒 5kg";

/// The cold room's temperature and humidity sensor (MQTT client id and username).
pub const DEMO_SENSOR: &str = "coldstore-temp-01";
/// The camera over the first plot.
pub const DEMO_CAMERA: &str = "plot-cam-01";

/// Every demo account, and the demo devices' MQTT password, is this (listed in the README).
pub const DEMO_PASSWORD: &str = "suyuan-demo";

/// A demo account, printed at start.
#[derive(Debug, Clone)]
pub struct DemoAccount {
    pub username: &'static str,
    pub role: Role,
    pub organisation: &'static str,
}

/// What the seeding did.
#[derive(Debug, Clone)]
pub struct DemoSummary {
    /// False when the demo county was already there.
    pub seeded: bool,
    pub accounts: Vec<DemoAccount>,
    /// The packed gift-box batch, whose trace shows the whole story.
    pub showcase_batch: Option<BatchId>,
    /// The demo devices (sensor in the cold room, camera over a plot), when present.
    pub devices: Vec<Device>,
}

const COOP_CREDIT_PREFIX: &str = "93530424MA6K1CX0Q";

fn accounts() -> Vec<DemoAccount> {
    vec![
        DemoAccount {
            username: "operator",
            role: Role::Operator,
            organisation: "华宁县电子商务公共服务中心",
        },
        DemoAccount {
            username: "regulator",
            role: Role::Regulator,
            organisation: "华宁县农业农村局",
        },
        DemoAccount {
            username: "farmer",
            role: Role::Farmer,
            organisation: "华宁县青龙镇柑橘种植专业合作社",
        },
        DemoAccount {
            username: "processor",
            role: Role::Processor,
            organisation: "云南华宁果品加工有限公司",
        },
        DemoAccount {
            username: "inspector",
            role: Role::Inspector,
            organisation: "华宁县农产品质量安全检测站",
        },
        DemoAccount {
            username: "coldstore",
            role: Role::Logistics,
            organisation: "华宁县冷链物流有限公司",
        },
    ]
}

/// Seeds the demo county unless it is already there.
pub fn seed(db: &Database) -> CoreResult<DemoSummary> {
    let coop_code = credit_code_with_check(COOP_CREDIT_PREFIX);
    let exists = db.read(|c| {
        Ok(orgs::list(
            c,
            Page {
                limit: Some(200),
                after: None,
            },
        )?
        .items
        .iter()
        .any(|o| o.credit_code == coop_code))
    })?;
    if exists {
        return Ok(DemoSummary {
            seeded: false,
            accounts: accounts(),
            showcase_batch: db.read(showcase)?,
            devices: db.read(demo_devices)?,
        });
    }
    let showcase = db.write(|c| seed_in(c, coop_code.clone()))?;
    Ok(DemoSummary {
        seeded: true,
        accounts: accounts(),
        showcase_batch: Some(showcase),
        devices: db.read(demo_devices)?,
    })
}

fn org(
    c: &mut DbConnection,
    name: &str,
    kind: OrgKind,
    credit: Option<String>,
    address: &str,
    contact: Option<&str>,
) -> CoreResult<OrgId> {
    Ok(orgs::create(
        c,
        &NewOrganisation {
            name: name.into(),
            kind,
            credit_code: credit,
            division_code: "530424".into(),
            address: Some(address.into()),
            public_contact: contact.map(Into::into),
        },
    )?
    .id)
}

fn user(
    c: &mut DbConnection,
    org_id: OrgId,
    username: &str,
    name: &str,
    role: Role,
    phone: Option<&str>,
) -> CoreResult<Actor> {
    let u = users::create(
        c,
        &NewUser {
            org_id,
            username: username.into(),
            display_name: name.into(),
            phone: phone.map(Into::into),
            role,
            password: DEMO_PASSWORD.into(),
        },
    )?;
    Ok(Actor {
        user_id: u.id,
        org_id,
        role,
    })
}

fn site(
    c: &mut DbConnection,
    org_id: OrgId,
    name: &str,
    kind: SiteKind,
    address: &str,
    (lat, lon, area): (f64, f64, Option<f64>),
) -> CoreResult<SiteId> {
    Ok(sites::create_site(
        c,
        org_id,
        &NewSite {
            name: name.into(),
            kind,
            division_code: "530424".into(),
            address: Some(address.into()),
            latitude: Some(lat),
            longitude: Some(lon),
            area_mu: area,
        },
    )?
    .id)
}

struct Recorder<'a> {
    c: &'a mut DbConnection,
    n: u32,
}

impl Recorder<'_> {
    fn rec(
        &mut self,
        actor: &Actor,
        batch: BatchId,
        at: DateTime<Utc>,
        site: Option<SiteId>,
        details: RecordDetails,
    ) -> CoreResult<Record> {
        self.n += 1;
        let client_id = Uuid::new_v5(
            &Uuid::NAMESPACE_OID,
            format!("suyuan-demo-{}", self.n).as_bytes(),
        );
        Ok(records::capture(
            self.c,
            actor,
            batch,
            &NewRecord {
                client_id,
                event_time: at,
                site_id: site,
                details,
                attachments: vec![],
            },
        )?
        .record)
    }
}

fn seed_in(c: &mut DbConnection, coop_code: Option<String>) -> CoreResult<BatchId> {
    let now = Utc::now();
    let days_ago = |d: i64| now - Duration::days(d);

    let operator_org = org(
        c,
        "华宁县电子商务公共服务中心",
        OrgKind::Operator,
        credit_code_with_check("12530424MB0K2DXA1"),
        "云南省玉溪市华宁县宁州街道",
        Some("0877-5011234"),
    )?;
    let regulator_org = org(
        c,
        "华宁县农业农村局",
        OrgKind::Regulator,
        credit_code_with_check("11530424MB1C3EXB2"),
        "云南省玉溪市华宁县宁州街道",
        Some("0877-5012345"),
    )?;
    let coop = org(
        c,
        "华宁县青龙镇柑橘种植专业合作社",
        OrgKind::Cooperative,
        coop_code,
        "云南省玉溪市华宁县青龙镇海镜村",
        Some("0877-5023456"),
    )?;
    let processor = org(
        c,
        "云南华宁果品加工有限公司",
        OrgKind::Processor,
        credit_code_with_check("91530424MA6K4FXC3"),
        "云南省玉溪市华宁县华溪镇工业园区",
        Some("0877-5034567"),
    )?;
    let lab = org(
        c,
        "华宁县农产品质量安全检测站",
        OrgKind::Lab,
        credit_code_with_check("12530424MB2D5GXD4"),
        "云南省玉溪市华宁县宁州街道",
        None,
    )?;
    let coldstore = org(
        c,
        "华宁县冷链物流有限公司",
        OrgKind::Logistics,
        credit_code_with_check("91530424MA6K6HXE5"),
        "云南省玉溪市华宁县华溪镇",
        Some("0877-5045678"),
    )?;

    let operator = user(
        c,
        operator_org,
        "operator",
        "运营管理员",
        Role::Operator,
        None,
    )?;
    user(
        c,
        regulator_org,
        "regulator",
        "李监管",
        Role::Regulator,
        Some("13800000001"),
    )?;
    let farmer = user(
        c,
        coop,
        "farmer",
        "张建华",
        Role::Farmer,
        Some("13800000002"),
    )?;
    let packer = user(
        c,
        processor,
        "processor",
        "王加工",
        Role::Processor,
        Some("13800000003"),
    )?;
    let inspector = user(
        c,
        lab,
        "inspector",
        "赵检测",
        Role::Inspector,
        Some("13800000004"),
    )?;
    let porter = user(
        c,
        coldstore,
        "coldstore",
        "陈冷链",
        Role::Logistics,
        Some("13800000005"),
    )?;

    let plot_a = site(
        c,
        coop,
        "海镜村1号地块",
        SiteKind::Plot,
        "青龙镇海镜村",
        (24.1921, 103.0301, Some(46.0)),
    )?;
    let plot_b = site(
        c,
        coop,
        "海镜村2号地块",
        SiteKind::Plot,
        "青龙镇海镜村",
        (24.1874, 103.0412, Some(38.5)),
    )?;
    let line = site(
        c,
        processor,
        "分选包装线",
        SiteKind::PackingLine,
        "华溪镇工业园区",
        (24.2013, 102.9347, None),
    )?;
    let cold = site(
        c,
        coldstore,
        "1号冷库",
        SiteKind::ColdStore,
        "华溪镇",
        (24.2055, 102.9412, None),
    )?;
    // The cold room's sensor and a camera over the first plot, with the cold chain's usual rules.
    for (site_id, client_id, kind, name) in [
        (cold, DEMO_SENSOR, DeviceKind::Sensor, "1号冷库温湿度传感器"),
        (
            plot_a,
            DEMO_CAMERA,
            DeviceKind::Camera,
            "海镜村1号地块摄像头",
        ),
    ] {
        iot::register_device_with_password(
            c,
            &operator,
            &NewDevice {
                site_id,
                client_id: client_id.into(),
                kind,
                name: name.into(),
            },
            DEMO_PASSWORD,
        )?;
    }
    for rule in [
        NewIotRule {
            site_id: cold,
            device_id: None,
            kind: RuleKind::Threshold,
            name: "冷库超温（高于 8 ℃ 持续 30 分钟）".into(),
            metric: Some("temp_c".into()),
            min_value: None,
            max_value: Some(8.0),
            duration_ms: 30 * 60_000,
        },
        NewIotRule {
            site_id: cold,
            device_id: None,
            kind: RuleKind::NoData,
            name: "冷库传感器断线（15 分钟无数据）".into(),
            metric: None,
            min_value: None,
            max_value: None,
            duration_ms: 15 * 60_000,
        },
    ] {
        iot::create_rule(c, &porter, &rule)?;
    }
    site(
        c,
        coldstore,
        "冷藏车 云F·A1234",
        SiteKind::Vehicle,
        "华溪镇",
        (24.2055, 102.9412, None),
    )?;

    let citrus = sites::create_product(
        c,
        coop,
        &NewProduct {
            name: "华宁柑橘".into(),
            category: "水果/柑橘".into(),
            brand: Some("青龙海镜".into()),
            certifications: vec![
                Certification::GreenFood,
                Certification::GeographicalIndication,
            ],
            gtin: None,
            label_fields: LabelField::DEFAULT.to_vec(),
            distribution_area: vec![],
        },
    )?;
    let graded = sites::create_product(
        c,
        processor,
        &NewProduct {
            name: "华宁柑橘（精选果）".into(),
            category: "水果/柑橘".into(),
            brand: Some("华宁橘乡".into()),
            certifications: vec![
                Certification::GreenFood,
                Certification::GeographicalIndication,
            ],
            gtin: None,
            label_fields: LabelField::DEFAULT.to_vec(),
            distribution_area: vec![],
        },
    )?;
    let giftbox = sites::create_product(
        c,
        processor,
        &NewProduct {
            name: GIFTBOX.into(),
            category: "水果/柑橘".into(),
            brand: Some("华宁橘乡".into()),
            certifications: vec![
                Certification::GreenFood,
                Certification::GeographicalIndication,
            ],
            gtin: Some("6901234567892".into()),
            label_fields: LabelField::DEFAULT.to_vec(),
            distribution_area: vec!["53".into(), "44".into(), "31".into()],
        },
    )?;

    let year = now.format("%Y").to_string();
    let mut harvests = Vec::new();
    for (i, plot) in [plot_a, plot_b].into_iter().enumerate() {
        let batch = batches::create(
            c,
            &farmer,
            &NewBatch {
                product_id: citrus.id,
                lot_code: format!("HN-{year}-QL-{:03}", i + 1),
                quantity: if i == 0 { 12_000.0 } else { 9_500.0 },
                unit: "kg".into(),
                origin_site_id: Some(plot),
            },
        )?;
        let mut r = Recorder {
            c: &mut *c,
            n: (i as u32) * 100,
        };
        r.rec(
            &farmer,
            batch.id,
            days_ago(95),
            Some(plot),
            RecordDetails::Fertilising(Fertilising {
                fertiliser_name: "腐熟羊粪有机肥".into(),
                fertiliser_type: Some("organic".into()),
                registration_number: None,
                dose: 1500.0,
                dose_unit: "kg/亩".into(),
                method: Some("沟施".into()),
            }),
        )?;
        r.rec(
            &farmer,
            batch.id,
            days_ago(70),
            Some(plot),
            RecordDetails::Irrigation(Irrigation {
                method: Some("滴灌".into()),
                water_source: Some("海镜水库".into()),
                volume_m3: Some(120.0),
            }),
        )?;
        let spray = r.rec(
            &farmer,
            batch.id,
            days_ago(48),
            Some(plot),
            RecordDetails::Spraying(Spraying {
                pesticide_name: "阿维菌素".into(),
                registration_number: "PD20080001".into(),
                active_ingredient: "阿维菌素 1.8%".into(),
                dose: 40.0,
                dose_unit: "ml/亩".into(),
                pre_harvest_interval_days: 14,
                target: Some("红蜘蛛".into()),
            }),
        )?;
        if i == 0 {
            // A typing mistake mended by a correction: the dose was 30 ml, not 40 ml.
            r.rec(
                &farmer,
                batch.id,
                days_ago(47),
                Some(plot),
                RecordDetails::Correction(Correction {
                    supersedes: spray.id,
                    reason: "剂量录入错误，实际为30毫升/亩".into(),
                    replacement: Some(Box::new(RecordDetails::Spraying(Spraying {
                        pesticide_name: "阿维菌素".into(),
                        registration_number: "PD20080001".into(),
                        active_ingredient: "阿维菌素 1.8%".into(),
                        dose: 30.0,
                        dose_unit: "ml/亩".into(),
                        pre_harvest_interval_days: 14,
                        target: Some("红蜘蛛".into()),
                    }))),
                }),
            )?;
        }
        r.rec(
            &farmer,
            batch.id,
            days_ago(21),
            Some(plot),
            RecordDetails::Harvest(Harvest {
                quantity: batch.quantity,
                unit: "kg".into(),
            }),
        )?;
        harvests.push(batch);
    }

    // The lab inspects the first harvest: 农残速测, passed.
    batches::request_inspection(c, &farmer, harvests[0].id, lab)?;
    let mut r = Recorder {
        c: &mut *c,
        n: 1000,
    };
    r.rec(
        &inspector,
        harvests[0].id,
        days_ago(20),
        None,
        RecordDetails::Inspection(Inspection {
            method: "rapid_test".into(),
            items: vec![InspectionItem {
                name: "有机磷和氨基甲酸酯类农药（酶抑制率）".into(),
                value: 12.5,
                unit: "%".into(),
                limit: 50.0,
                result: Verdict::Pass,
            }],
            report_number: Some(format!("HNJC-{year}-1108")),
            overall: Verdict::Pass,
        }),
    )?;
    r.rec(
        &inspector,
        harvests[0].id,
        days_ago(19),
        None,
        RecordDetails::Inspection(Inspection {
            method: "lab".into(),
            items: vec![
                InspectionItem {
                    name: "阿维菌素".into(),
                    value: 0.002,
                    unit: "mg/kg".into(),
                    limit: 0.02,
                    result: Verdict::Pass,
                },
                InspectionItem {
                    name: "毒死蜱".into(),
                    value: 0.0,
                    unit: "mg/kg".into(),
                    limit: 1.0,
                    result: Verdict::Pass,
                },
            ],
            report_number: Some(format!("HNJC-{year}-1109")),
            overall: Verdict::Pass,
        }),
    )?;

    // Both harvests are shipped to the processor, who receives them.
    for h in &harvests {
        r.rec(
            &farmer,
            h.id,
            days_ago(18),
            None,
            RecordDetails::Shipping(Shipping {
                to_org_id: processor,
                to_site_id: Some(line),
                carrier: Some("合作社自有车辆".into()),
                vehicle_plate: Some("云F·B5678".into()),
                quantity: Some(h.quantity),
                unit: Some("kg".into()),
            }),
        )?;
        r.rec(
            &packer,
            h.id,
            days_ago(18),
            Some(line),
            RecordDetails::Receiving(Receiving {
                quantity: Some(h.quantity),
                unit: Some("kg".into()),
                condition: Some("果面完好".into()),
            }),
        )?;
    }

    // Grading splits the first harvest into premium fruit and the rest.
    let split = lineage::transform(
        c,
        &packer,
        &NewTransformation {
            client_id: Uuid::new_v5(&Uuid::NAMESPACE_OID, b"suyuan-demo-split"),
            kind: LineageKind::Split,
            event_time: days_ago(17),
            site_id: Some(line),
            inputs: vec![TransformationInput {
                batch_id: harvests[0].id,
                quantity: 12_000.0,
            }],
            outputs: vec![
                TransformationOutput {
                    product_id: graded.id,
                    lot_code: format!("JX-{year}-001-A"),
                    quantity: 8_000.0,
                    unit: "kg".into(),
                },
                TransformationOutput {
                    product_id: graded.id,
                    lot_code: format!("JX-{year}-001-B"),
                    quantity: 3_600.0,
                    unit: "kg".into(),
                },
            ],
        },
    )?;
    // Premium fruit of the first harvest and the second harvest are packed together into gift boxes.
    let merge = lineage::transform(
        c,
        &packer,
        &NewTransformation {
            client_id: Uuid::new_v5(&Uuid::NAMESPACE_OID, b"suyuan-demo-merge"),
            kind: LineageKind::Merge,
            event_time: days_ago(16),
            site_id: Some(line),
            inputs: vec![
                TransformationInput {
                    batch_id: split.outputs[0].id,
                    quantity: 8_000.0,
                },
                TransformationInput {
                    batch_id: harvests[1].id,
                    quantity: 9_500.0,
                },
            ],
            outputs: vec![TransformationOutput {
                product_id: giftbox.id,
                lot_code: format!("LH-{year}-1116"),
                quantity: 3_000.0,
                unit: "盒".into(),
            }],
        },
    )?;
    let boxes = merge.outputs[0].id;
    // The merged harvest had no inspection of its own: the gift boxes are inspected before they ship.
    batches::request_inspection(c, &packer, boxes, lab)?;
    let mut r = Recorder {
        c: &mut *c,
        n: 2000,
    };
    r.rec(
        &inspector,
        boxes,
        days_ago(16),
        None,
        RecordDetails::Inspection(Inspection {
            method: "rapid_test".into(),
            items: vec![InspectionItem {
                name: "有机磷和氨基甲酸酯类农药（酶抑制率）".into(),
                value: 9.8,
                unit: "%".into(),
                limit: 50.0,
                result: Verdict::Pass,
            }],
            report_number: Some(format!("HNJC-{year}-1116")),
            overall: Verdict::Pass,
        }),
    )?;
    r.rec(
        &packer,
        boxes,
        days_ago(15),
        Some(line),
        RecordDetails::Packing(Packing {
            package_type: "瓦楞纸礼盒".into(),
            package_count: 3000,
            net_quantity_per_package: Some(5.0),
            unit: Some("kg".into()),
        }),
    )?;
    r.rec(
        &packer,
        boxes,
        days_ago(14),
        Some(line),
        RecordDetails::Shipping(Shipping {
            to_org_id: coldstore,
            to_site_id: Some(cold),
            carrier: Some("华宁县冷链物流有限公司".into()),
            vehicle_plate: Some("云F·A1234".into()),
            quantity: Some(3000.0),
            unit: Some("盒".into()),
        }),
    )?;
    r.rec(
        &porter,
        boxes,
        days_ago(14),
        Some(cold),
        RecordDetails::Receiving(Receiving {
            quantity: Some(3000.0),
            unit: Some("盒".into()),
            condition: Some("入库温度 4.2℃".into()),
        }),
    )?;
    Ok(boxes)
}

/// The showcase gift-box batch of a seeded demo county (the first batch of [`GIFTBOX`]).
pub fn showcase(c: &mut DbConnection) -> CoreResult<Option<BatchId>> {
    batches::first_of_product_named(c, GIFTBOX)
}

/// The demo devices that are registered.
fn demo_devices(c: &mut DbConnection) -> CoreResult<Vec<Device>> {
    let mut out = Vec::new();
    for id in [DEMO_SENSOR, DEMO_CAMERA] {
        out.extend(iot::device_by_client_id(c, id)?);
    }
    Ok(out)
}
