//! County-scale benchmark: a county's worth of history in the database, the real server on `127.0.0.1`, and
//! the figures the programme asks of the platform.
//!
//! ```text
//! cargo bench -p suyuan-server --bench county -- --backend sqlite
//! cargo bench -p suyuan-server --bench county -- --backend postgres   # postgres://postgres@127.0.0.1:5432/test
//! cargo bench -p suyuan-server --bench county -- --backend both
//! ```
//!
//! 1. Generates a county (a few hundred organisations with accounts, sites and products) and loads its history
//!    with `suyuan_core::store::bulk`: at least 100,000 batches and 1,000,000 records. Harvest batches carry a
//!    season of farming records (fertilising, spraying with registration numbers and pre-harvest intervals
//!    that are respected, irrigation, harvest), rapid tests, shipping and receiving; processors grade, merge,
//!    wax, pack, box and ship them on through cold stores to retailers, up to eight transformations deep.
//!    One dedicated harvest lot has exactly 1,000 downstream batches, for the recall.
//! 2. Starts the server and measures capture over the API: single records from concurrent clients, then
//!    `POST /records/sync` with 500 records per request. Every answer is checked, and the stored rows are
//!    counted afterwards.
//! 3. Traces random batches backward and forward as the regulator (median, p99, batches per trace).
//! 4. Exports the trace of the lot with 1,000 downstream batches (1,001 batches with their records and
//!    transformations) as CSV, XLSX and EPCIS through `GET /batches/{id}/export` (median, p95).
//! 5. Recalls that lot and checks that 1,001 batches were recalled.
//! 6. Verifies every hash chain, then prints the figures against the targets.
//!
//! A PostgreSQL run gets a fresh schema (`bench_<random>`), dropped at the end unless `--keep`; an SQLite run
//! a temporary folder. The process exits non-zero when a check fails (a wrong status, a missing row, a broken
//! chain); a missed target is reported as FAIL in the summary.

use std::collections::HashMap;
use std::io::Read;
use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::{mpsc, Barrier};
use std::time::{Duration as StdDuration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use chrono::{DateTime, Duration, Utc};
use clap::{Parser, ValueEnum};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use suyuan_core::db::{self, DatabaseUrl, PoolConfig};
use suyuan_core::model::*;
use suyuan_core::store::bulk::{
    self, BulkBatch, BulkInput, BulkLoad, BulkRecord, BulkTransformation,
};
use suyuan_core::store::{batches, orgs, sites, users, verify};
use suyuan_core::{BatchId, Database, OrgId, ProductId, SiteId};
use suyuan_server::AppState;
use uuid::Uuid;

/// Records per second the capture API must sustain.
const TARGET_CAPTURE_PER_S: f64 = 5_000.0;
/// p99 of a trace, in milliseconds.
const TARGET_TRACE_P99_MS: f64 = 50.0;
/// A recall of 1,000 downstream batches, in seconds.
const TARGET_RECALL_S: f64 = 1.0;
/// p95 of a 1,000-batch trace export, in seconds.
const TARGET_EXPORT_P95_S: f64 = 2.0;
/// Downstream batches of the recall lot.
const RECALL_DOWNSTREAM: usize = 1_000;
/// Every generated account's password.
const PASSWORD: &str = "county-bench-2026";
/// Batches per bulk load (whole clusters only, so a load may be a little larger).
const LOAD_BATCHES: usize = 5_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum BackendArg {
    Sqlite,
    Postgres,
    Both,
}

/// County-scale benchmark of the Suyuan platform.
#[derive(Debug, Parser)]
struct Args {
    /// Which database to run on.
    #[arg(long, value_enum, default_value = "sqlite")]
    backend: BackendArg,
    /// Batches to generate, at least.
    #[arg(long, default_value_t = 100_000)]
    batches: usize,
    /// Records to generate, at least.
    #[arg(long, default_value_t = 1_000_000)]
    records: usize,
    /// Single records to capture over the API.
    #[arg(long, default_value_t = 20_000)]
    capture: usize,
    /// Concurrent clients capturing single records.
    #[arg(long, default_value_t = 16)]
    threads: usize,
    /// Sync requests to send.
    #[arg(long, default_value_t = 100)]
    sync_requests: usize,
    /// Records per sync request.
    #[arg(long, default_value_t = 500)]
    sync_size: usize,
    /// Concurrent clients sending syncs.
    #[arg(long, default_value_t = 4)]
    sync_threads: usize,
    /// Traces per direction.
    #[arg(long, default_value_t = 500)]
    traces: usize,
    /// Exports of the 1,000-batch trace per format.
    #[arg(long, default_value_t = 20)]
    exports: usize,
    /// Seed of the generated county.
    #[arg(long, default_value_t = 530_424)]
    seed: u64,
    /// PostgreSQL server; a schema of its own is created there for the run.
    #[arg(
        long,
        env = "SUYUAN_BENCH_POSTGRES_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/test"
    )]
    postgres_url: String,
    /// Folder for the SQLite file (default: a temporary folder).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Keep the database (SQLite folder or PostgreSQL schema) after the run.
    #[arg(long)]
    keep: bool,
    /// Skip the verification of every hash chain at the end.
    #[arg(long)]
    no_verify: bool,
    /// Passed by `cargo bench`; ignored.
    #[arg(long, hide = true)]
    bench: bool,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let backends: &[db::Backend] = match args.backend {
        BackendArg::Sqlite => &[db::Backend::Sqlite],
        BackendArg::Postgres => &[db::Backend::Postgres],
        BackendArg::Both => &[db::Backend::Sqlite, db::Backend::Postgres],
    };
    let mut reports = Vec::new();
    for &backend in backends {
        reports.push(run_backend(backend, &args)?);
    }
    println!();
    for report in &reports {
        report.print_summary();
    }
    let problems: usize = reports.iter().map(|r| r.problems.len()).sum();
    if problems > 0 {
        bail!("{problems} check(s) failed; see the summary above");
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------------------
// The database of a run.

/// A fresh database: a temporary SQLite folder or a PostgreSQL schema, removed on drop unless kept.
struct Target {
    url: DatabaseUrl,
    dir: Option<tempfile::TempDir>,
    pg: Option<(String, String)>,
    keep: bool,
}

impl Target {
    fn create(backend: db::Backend, args: &Args) -> Result<Target> {
        match backend {
            db::Backend::Sqlite => {
                let mut builder = tempfile::Builder::new();
                builder.prefix("suyuan-county-");
                let dir = match &args.data_dir {
                    Some(d) => {
                        std::fs::create_dir_all(d)?;
                        builder.tempdir_in(d)?
                    }
                    None => builder.tempdir()?,
                };
                let path = dir.path().join("county.sqlite");
                println!("database: sqlite://{}", path.display());
                Ok(Target {
                    url: DatabaseUrl::Sqlite { path, create: true },
                    dir: Some(dir),
                    pg: None,
                    keep: args.keep,
                })
            }
            db::Backend::Postgres => {
                let schema = format!("bench_{}", &Uuid::new_v4().simple().to_string()[..12]);
                db::create_pg_schema(&args.postgres_url, &schema).with_context(|| {
                    format!("PostgreSQL at {} (set --postgres-url)", args.postgres_url)
                })?;
                let url = db::pg_url_with_schema(&args.postgres_url, &schema);
                println!(
                    "database: {} (schema {schema})",
                    DatabaseUrl::Postgres(args.postgres_url.clone()).redacted()
                );
                Ok(Target {
                    url: DatabaseUrl::Postgres(url),
                    dir: None,
                    pg: Some((args.postgres_url.clone(), schema)),
                    keep: args.keep,
                })
            }
        }
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        if self.keep {
            if let Some(dir) = self.dir.take() {
                println!("kept {}", dir.keep().display());
            }
            if let Some((_, schema)) = &self.pg {
                println!("kept PostgreSQL schema {schema}");
            }
            return;
        }
        if let Some((url, schema)) = &self.pg {
            if let Err(e) = db::drop_pg_schema(url, schema) {
                eprintln!("could not drop schema {schema}: {e}");
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------------------
// The county: organisations, accounts, sites, products.

/// A crop grown in the county.
struct Crop {
    name: &'static str,
    category: &'static str,
    /// Perennial fruit (no sowing record) or a vegetable sown each season.
    perennial: bool,
    /// Days from the start of the season to harvest.
    season_days: (i64, i64),
    /// Kilograms per harvest batch.
    yield_kg: (f64, f64),
}

const CROPS: &[Crop] = &[
    Crop {
        name: "华宁柑橘",
        category: "水果",
        perennial: true,
        season_days: (200, 260),
        yield_kg: (3_000.0, 20_000.0),
    },
    Crop {
        name: "沃柑",
        category: "水果",
        perennial: true,
        season_days: (210, 270),
        yield_kg: (3_000.0, 25_000.0),
    },
    Crop {
        name: "冰糖橙",
        category: "水果",
        perennial: true,
        season_days: (200, 250),
        yield_kg: (2_000.0, 15_000.0),
    },
    Crop {
        name: "蓝莓",
        category: "水果",
        perennial: true,
        season_days: (150, 200),
        yield_kg: (300.0, 3_000.0),
    },
    Crop {
        name: "番茄",
        category: "蔬菜",
        perennial: false,
        season_days: (90, 130),
        yield_kg: (2_000.0, 12_000.0),
    },
    Crop {
        name: "辣椒",
        category: "蔬菜",
        perennial: false,
        season_days: (100, 150),
        yield_kg: (1_000.0, 8_000.0),
    },
];

/// A pesticide as farmers record it: name, registration number (农药登记证号), active ingredient, dose,
/// unit, pre-harvest interval in days, target.
type Pesticide = (
    &'static str,
    &'static str,
    &'static str,
    f64,
    &'static str,
    u32,
    &'static str,
);

const PESTICIDES: &[Pesticide] = &[
    (
        "阿维菌素",
        "PD20080001",
        "阿维菌素 1.8%",
        30.0,
        "ml/亩",
        14,
        "红蜘蛛",
    ),
    (
        "吡虫啉",
        "PD20083456",
        "吡虫啉 10%",
        20.0,
        "g/亩",
        14,
        "蚜虫",
    ),
    (
        "代森锰锌",
        "PD20090123",
        "代森锰锌 80%",
        600.0,
        "倍液",
        15,
        "炭疽病",
    ),
    (
        "苯醚甲环唑",
        "PD20101234",
        "苯醚甲环唑 10%",
        1500.0,
        "倍液",
        28,
        "疮痂病",
    ),
    (
        "螺螨酯",
        "PD20120345",
        "螺螨酯 24%",
        4000.0,
        "倍液",
        30,
        "红蜘蛛",
    ),
    (
        "啶虫脒",
        "PD20121234",
        "啶虫脒 5%",
        2500.0,
        "倍液",
        14,
        "柑橘木虱",
    ),
    (
        "多菌灵",
        "PD20085678",
        "多菌灵 50%",
        800.0,
        "倍液",
        21,
        "灰霉病",
    ),
    (
        "石硫合剂",
        "PD20090567",
        "石硫合剂 45%",
        200.0,
        "倍液",
        7,
        "介壳虫",
    ),
];

/// Fertiliser name, type, registration number, dose, unit.
type Fertiliser = (
    &'static str,
    &'static str,
    Option<&'static str>,
    f64,
    &'static str,
);

const FERTILISERS: &[Fertiliser] = &[
    ("腐熟农家肥", "organic", None, 1500.0, "kg/亩"),
    (
        "商品有机肥",
        "organic",
        Some("农肥(2021)准字12345号"),
        300.0,
        "kg/亩",
    ),
    (
        "复合肥 15-15-15",
        "compound",
        Some("农肥(2020)准字06789号"),
        40.0,
        "kg/亩",
    ),
    ("尿素", "compound", None, 15.0, "kg/亩"),
    (
        "磷酸二氢钾",
        "foliar",
        Some("农肥(2019)准字04567号"),
        500.0,
        "倍液",
    ),
];

const TOWNS: &[&str] = &["宁州街道", "盘溪镇", "华溪镇", "青龙镇", "通红甸彝族苗族乡"];
const VILLAGES: &[&str] = &[
    "大营",
    "小龙潭",
    "矣则",
    "海镜",
    "象鼻",
    "龙树",
    "大村",
    "新街",
    "法冲",
    "老厂",
    "上坝",
    "下坝",
];
const SURNAMES: &[&str] = &["李", "王", "张", "杨", "赵", "普", "者", "陈", "刘", "马"];

/// Roles of the organisations of the county.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    Farm,
    Coop,
    Processor,
    Lab,
    ColdStore,
    Retailer,
    Regulator,
    Operator,
}

struct OrgInfo {
    id: OrgId,
    actor: Actor,
    username: String,
    /// Short code used in lot codes.
    code: String,
    sites: Vec<SiteId>,
    /// Farms: their crop's product. Processors: graded, packed, gift box, juice. Cold stores and retailers:
    /// their own lots.
    products: Vec<ProductId>,
    /// Index in [`CROPS`] for farms and cooperatives.
    crop: usize,
}

struct County {
    orgs: Vec<OrgInfo>,
    /// Farms and cooperatives by crop.
    growers_by_crop: Vec<Vec<usize>>,
    growers: Vec<usize>,
    coops: Vec<usize>,
    processors: Vec<usize>,
    labs: Vec<usize>,
    cold_stores: Vec<usize>,
    retailers: Vec<usize>,
    regulator: usize,
}

fn credit_code(rng: &mut StdRng, prefix: &str) -> Option<String> {
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHJKLMNPQRTUWXY";
    let mut s = prefix.to_owned();
    while s.len() < 17 {
        s.push(char::from(ALPHABET[rng.gen_range(0..ALPHABET.len())]));
    }
    credit_code_with_check(&s)
}

fn setup_county(db: &Database, rng: &mut StdRng) -> Result<County> {
    let mut plan: Vec<(Part, usize)> = Vec::new();
    plan.push((Part::Operator, 0));
    plan.push((Part::Regulator, 0));
    plan.extend((0..200).map(|i| (Part::Farm, i)));
    plan.extend((0..40).map(|i| (Part::Coop, i)));
    plan.extend((0..24).map(|i| (Part::Processor, i)));
    plan.extend((0..6).map(|i| (Part::Lab, i)));
    plan.extend((0..16).map(|i| (Part::ColdStore, i)));
    plan.extend((0..30).map(|i| (Part::Retailer, i)));

    let mut county = County {
        orgs: Vec::new(),
        growers_by_crop: vec![Vec::new(); CROPS.len()],
        growers: Vec::new(),
        coops: Vec::new(),
        processors: Vec::new(),
        labs: Vec::new(),
        cold_stores: Vec::new(),
        retailers: Vec::new(),
        regulator: 0,
    };
    for (part, i) in plan {
        let town = *TOWNS.choose(rng).unwrap_or(&TOWNS[0]);
        let village = *VILLAGES.choose(rng).unwrap_or(&VILLAGES[0]);
        let surname = *SURNAMES.choose(rng).unwrap_or(&SURNAMES[0]);
        let crop = rng.gen_range(0..CROPS.len());
        let (name, kind, role, username, code, credit, division) = match part {
            Part::Operator => (
                "华宁县电子商务公共服务中心".to_owned(),
                OrgKind::Operator,
                Role::Operator,
                "operator".to_owned(),
                "OP".to_owned(),
                credit_code(rng, "12530424"),
                "530424",
            ),
            Part::Regulator => (
                "华宁县农业农村局".to_owned(),
                OrgKind::Regulator,
                Role::Regulator,
                "regulator".to_owned(),
                "RG".to_owned(),
                credit_code(rng, "11530424"),
                "530424",
            ),
            Part::Farm => (
                format!("华宁县{town}{village}村{surname}氏家庭农场{i}"),
                OrgKind::Farm,
                Role::Farmer,
                format!("farm{i:03}"),
                format!("F{i:03}"),
                None,
                "530424",
            ),
            Part::Coop => (
                format!("华宁县{town}{}种植专业合作社{i}", CROPS[crop].name),
                OrgKind::Cooperative,
                Role::Farmer,
                format!("coop{i:02}"),
                format!("C{i:02}"),
                credit_code(rng, "93530424MA"),
                "530424",
            ),
            Part::Processor => (
                format!("云南华宁果蔬加工有限公司第{i}厂"),
                OrgKind::Processor,
                Role::Processor,
                format!("proc{i:02}"),
                format!("P{i:02}"),
                credit_code(rng, "91530424MA"),
                "530424",
            ),
            Part::Lab => (
                format!("华宁县农产品质量安全检测站{i}"),
                OrgKind::Lab,
                Role::Inspector,
                format!("lab{i}"),
                format!("J{i}"),
                credit_code(rng, "12530424"),
                "530424",
            ),
            Part::ColdStore => (
                format!("华宁县冷链物流有限公司{i}号库"),
                OrgKind::Logistics,
                Role::Logistics,
                format!("cold{i:02}"),
                format!("L{i:02}"),
                credit_code(rng, "91530424MA"),
                "530424",
            ),
            Part::Retailer => (
                format!("昆明{surname}记生鲜超市{i}店"),
                OrgKind::Retailer,
                Role::Processor,
                format!("shop{i:02}"),
                format!("S{i:02}"),
                credit_code(rng, "92530102MA"),
                ["530102", "530103", "530402", "530424"][i % 4],
            ),
        };
        let site_specs: Vec<(String, SiteKind, Option<f64>)> = match part {
            Part::Farm | Part::Coop => {
                let n = if part == Part::Coop {
                    rng.gen_range(2..=4)
                } else {
                    rng.gen_range(1..=2)
                };
                (0..n)
                    .map(|k| {
                        let kind = if CROPS[crop].perennial || k % 2 == 0 {
                            SiteKind::Plot
                        } else {
                            SiteKind::Greenhouse
                        };
                        (
                            format!("{village}村{}号地块", k + 1),
                            kind,
                            Some(rng.gen_range(5.0..300.0)),
                        )
                    })
                    .collect()
            }
            Part::Processor => vec![
                ("分级包装线".into(), SiteKind::PackingLine, None),
                ("预冷库".into(), SiteKind::ColdStore, None),
            ],
            Part::ColdStore => vec![
                ("1号冷库".into(), SiteKind::ColdStore, None),
                ("冷藏车".into(), SiteKind::Vehicle, None),
            ],
            Part::Retailer => vec![("门店仓库".into(), SiteKind::StorageRoom, None)],
            Part::Lab | Part::Regulator | Part::Operator => Vec::new(),
        };
        let product_specs: Vec<(String, &str)> = match part {
            Part::Farm | Part::Coop => vec![(CROPS[crop].name.to_owned(), CROPS[crop].category)],
            Part::Processor => vec![
                ("分级鲜果".into(), "水果"),
                ("精品包装果".into(), "水果"),
                ("鲜果礼盒".into(), "水果"),
                ("NFC鲜榨果汁".into(), "饮品"),
            ],
            Part::ColdStore => vec![("冷链分拣批".into(), "水果")],
            Part::Retailer => vec![("门店零售装".into(), "水果")],
            _ => Vec::new(),
        };
        let lat = 24.19 + rng.gen_range(-0.15..0.15);
        let lon = 102.93 + rng.gen_range(-0.15..0.15);
        let certs = if rng.gen_bool(0.4) {
            vec![
                Certification::GreenFood,
                Certification::GeographicalIndication,
            ]
        } else {
            vec![Certification::PollutionFree]
        };
        let info = db.write(|c| {
            let org = orgs::create(
                c,
                &NewOrganisation {
                    name: name.clone(),
                    kind,
                    credit_code: credit.clone(),
                    division_code: division.into(),
                    address: Some(format!("云南省玉溪市华宁县{town}{village}村")),
                    public_contact: Some(format!("0877-50{:05}", rng.gen_range(0..100_000))),
                },
            )?;
            let user = users::create(
                c,
                &NewUser {
                    org_id: org.id,
                    username: username.clone(),
                    display_name: format!(
                        "{surname}{}",
                        ["建华", "国强", "丽芬", "文斌", "秀英"][i % 5]
                    ),
                    phone: Some(format!("139{:08}", rng.gen_range(0..100_000_000))),
                    role,
                    password: PASSWORD.into(),
                },
            )?;
            let mut site_ids = Vec::new();
            for (site_name, site_kind, area) in &site_specs {
                let site = sites::create_site(
                    c,
                    org.id,
                    &NewSite {
                        name: site_name.clone(),
                        kind: *site_kind,
                        division_code: division.into(),
                        address: Some(format!("{town}{village}村")),
                        latitude: Some(lat),
                        longitude: Some(lon),
                        area_mu: *area,
                    },
                )?;
                site_ids.push(site.id);
            }
            let mut product_ids = Vec::new();
            for (product_name, category) in &product_specs {
                let product = sites::create_product(
                    c,
                    org.id,
                    &NewProduct {
                        name: product_name.clone(),
                        category: (*category).into(),
                        brand: Some("华宁柑橘".into()),
                        certifications: certs.clone(),
                        gtin: None,
                        label_fields: suyuan_core::model::LabelField::DEFAULT.to_vec(),
                        distribution_area: vec![],
                    },
                )?;
                product_ids.push(product.id);
            }
            Ok(OrgInfo {
                id: org.id,
                actor: Actor {
                    user_id: user.id,
                    org_id: org.id,
                    role,
                },
                username: username.clone(),
                code: code.clone(),
                sites: site_ids,
                products: product_ids,
                crop,
            })
        })?;
        let idx = county.orgs.len();
        match part {
            Part::Farm | Part::Coop => {
                county.growers_by_crop[crop].push(idx);
                county.growers.push(idx);
                if part == Part::Coop {
                    county.coops.push(idx);
                }
            }
            Part::Processor => county.processors.push(idx),
            Part::Lab => county.labs.push(idx),
            Part::ColdStore => county.cold_stores.push(idx),
            Part::Retailer => county.retailers.push(idx),
            Part::Regulator => county.regulator = idx,
            Part::Operator => {}
        }
        county.orgs.push(info);
    }
    if county.growers_by_crop.iter().any(Vec::is_empty) {
        bail!("a crop has no growers; change --seed");
    }
    Ok(county)
}

// ---------------------------------------------------------------------------------------------------------
// The history: built in memory a few thousand batches at a time and bulk-loaded.

/// What the generation produced, for the later phases.
#[derive(Default)]
struct Index {
    all: Vec<BatchId>,
    /// Batches still growing on a farm or cooperative (open for farming records), by organisation index.
    growing: HashMap<usize, Vec<BatchId>>,
    recall_root: Option<BatchId>,
    batches: usize,
    records: usize,
    edges: usize,
    transformations: usize,
    inspection_requests: usize,
    /// Batches by their depth in the lineage (0: made from nothing).
    depth_histogram: [usize; 9],
}

struct Builder<'a> {
    county: &'a County,
    rng: StdRng,
    now: DateTime<Utc>,
    load: BulkLoad,
    depth: Vec<u8>,
    /// (batch, requesting organisation, lab) for the inspection requests that the inspections imply.
    requests: Vec<(usize, usize, usize)>,
    growing: Vec<(usize, usize)>,
    recall_root: Option<usize>,
    lot_counter: Vec<u32>,
}

impl<'a> Builder<'a> {
    fn new(county: &'a County, seed: u64) -> Self {
        Builder {
            county,
            rng: StdRng::seed_from_u64(seed),
            now: Utc::now(),
            load: BulkLoad::default(),
            depth: Vec::new(),
            requests: Vec::new(),
            growing: Vec::new(),
            recall_root: None,
            lot_counter: vec![0; county.orgs.len()],
        }
    }

    fn uuid(&mut self) -> Uuid {
        uuid::Builder::from_random_bytes(self.rng.gen()).into_uuid()
    }

    fn pick(&mut self, from: &[usize]) -> usize {
        from[self.rng.gen_range(0..from.len())]
    }

    /// A time between `min_minutes` and `max_minutes` after `t`, never later than a minute ago.
    fn later(&mut self, t: DateTime<Utc>, min_minutes: i64, max_minutes: i64) -> DateTime<Utc> {
        let t = t + Duration::minutes(self.rng.gen_range(min_minutes..=max_minutes));
        t.min(self.now - Duration::minutes(1))
    }

    fn lot(&mut self, org: usize, at: DateTime<Utc>) -> String {
        self.lot_counter[org] += 1;
        format!(
            "{}-{}-{:05}",
            self.county.orgs[org].code,
            at.format("%y%m%d"),
            self.lot_counter[org]
        )
    }

    fn add_batch(
        &mut self,
        org: usize,
        product: ProductId,
        quantity: f64,
        at: DateTime<Utc>,
        origin: Option<SiteId>,
        depth: u8,
    ) -> usize {
        let lot_code = self.lot(org, at);
        let o = &self.county.orgs[org];
        self.load.batches.push(BulkBatch {
            org_id: o.id,
            product_id: product,
            lot_code,
            quantity: (quantity * 10.0).round() / 10.0,
            unit: "kg".into(),
            status: BatchStatus::Open,
            status_reason: None,
            origin_site_id: origin,
            custodian_org_id: o.id,
            in_transit_to_org_id: None,
            created_at: at,
        });
        self.depth.push(depth);
        self.load.batches.len() - 1
    }

    fn record(
        &mut self,
        batch: usize,
        org: usize,
        at: DateTime<Utc>,
        site: Option<SiteId>,
        details: RecordDetails,
    ) {
        let received = self.later(at, 1, 180);
        let client_id = self.uuid();
        let actor = self.county.orgs[org].actor;
        self.load.records.push(BulkRecord {
            batch,
            client_id,
            event_time: at,
            received_at: received,
            site_id: site,
            actor_user_id: actor.user_id,
            org_id: actor.org_id,
            details,
            attachments: Vec::new(),
            flags: Vec::new(),
        });
    }

    /// A season of farming on a batch from `from` to `until`, and its harvest if there is one. Sprayings keep
    /// their pre-harvest interval before the harvest, as a careful farmer's do.
    fn season(
        &mut self,
        batch: usize,
        grower: usize,
        from: DateTime<Utc>,
        until: DateTime<Utc>,
        harvest: Option<f64>,
    ) {
        let c = self.county;
        let org = &c.orgs[grower];
        let crop = &CROPS[org.crop];
        let site = org
            .sites
            .get(self.rng.gen_range(0..org.sites.len().max(1)))
            .copied();
        let mut events: Vec<(DateTime<Utc>, RecordDetails)> = Vec::new();
        if !crop.perennial {
            events.push((
                from,
                RecordDetails::Sowing(Sowing {
                    variety: format!("{}{}号", crop.name, self.rng.gen_range(1..9)),
                    seed_source: Some("华宁县种子公司".into()),
                    quantity: Some(self.rng.gen_range(1.0..20.0_f64).round()),
                    unit: Some("kg".into()),
                    note: None,
                }),
            ));
        }
        let mut t = from + Duration::days(self.rng.gen_range(1..6));
        while t < until {
            events.push((
                t,
                RecordDetails::Irrigation(Irrigation {
                    method: Some(["滴灌", "喷灌", "沟灌"][self.rng.gen_range(0..3)].into()),
                    water_source: Some(["水库", "机井", "河道"][self.rng.gen_range(0..3)].into()),
                    volume_m3: Some(self.rng.gen_range(5.0..60.0_f64).round()),
                }),
            ));
            t += Duration::days(self.rng.gen_range(5..=9))
                + Duration::minutes(self.rng.gen_range(0..600));
        }
        let mut t = from + Duration::days(self.rng.gen_range(3..20));
        while t < until {
            let f = FERTILISERS[self.rng.gen_range(0..FERTILISERS.len())];
            events.push((
                t,
                RecordDetails::Fertilising(Fertilising {
                    fertiliser_name: f.0.into(),
                    fertiliser_type: Some(f.1.into()),
                    registration_number: f.2.map(Into::into),
                    dose: f.3,
                    dose_unit: f.4.into(),
                    method: Some(["沟施", "撒施", "叶面喷施"][self.rng.gen_range(0..3)].into()),
                }),
            ));
            t += Duration::days(self.rng.gen_range(20..=40));
        }
        let mut t = from + Duration::days(self.rng.gen_range(10..30));
        while t < until {
            let p = PESTICIDES[self.rng.gen_range(0..PESTICIDES.len())];
            let safe = t + Duration::days(i64::from(p.5) + 1);
            if harvest.is_none() || safe < until {
                events.push((
                    t,
                    RecordDetails::Spraying(Spraying {
                        pesticide_name: p.0.into(),
                        registration_number: p.1.into(),
                        active_ingredient: p.2.into(),
                        dose: p.3,
                        dose_unit: p.4.into(),
                        pre_harvest_interval_days: p.5,
                        target: Some(p.6.into()),
                    }),
                ));
            }
            t += Duration::days(self.rng.gen_range(18..=40));
        }
        events.sort_by_key(|e| e.0);
        for (at, details) in events {
            self.record(batch, grower, at, site, details);
        }
        if let Some(kg) = harvest {
            self.record(
                batch,
                grower,
                until,
                site,
                RecordDetails::Harvest(Harvest {
                    quantity: kg,
                    unit: "kg".into(),
                }),
            );
        }
    }

    /// A harvest batch of `grower`, harvested at `at` after a season of farming.
    fn harvest_batch(&mut self, grower: usize, at: DateTime<Utc>, kg: Option<f64>) -> usize {
        let c = self.county;
        let org = &c.orgs[grower];
        let crop = &CROPS[org.crop];
        let days = self.rng.gen_range(crop.season_days.0..=crop.season_days.1);
        let from = at - Duration::days(days);
        let kg = kg.unwrap_or_else(|| self.rng.gen_range(crop.yield_kg.0..crop.yield_kg.1).round());
        let (product, site) = (org.products[0], org.sites.first().copied());
        let b = self.add_batch(grower, product, kg, from, site, 0);
        self.season(b, grower, from, at, Some(kg));
        b
    }

    fn inspect(
        &mut self,
        batch: usize,
        requester: usize,
        lab: usize,
        at: DateTime<Utc>,
        rapid: bool,
    ) {
        let details = if rapid {
            Inspection {
                method: "rapid_test".into(),
                items: vec![InspectionItem {
                    name: "有机磷和氨基甲酸酯类农药 抑制率".into(),
                    value: self.rng.gen_range(2.0..35.0_f64).round(),
                    unit: "%".into(),
                    limit: 50.0,
                    result: Verdict::Pass,
                }],
                report_number: Some(format!(
                    "KS{}{:05}",
                    at.format("%Y%m%d"),
                    self.rng.gen_range(0..100_000)
                )),
                overall: Verdict::Pass,
            }
        } else {
            let item = |name: &str, value: f64, limit: f64| InspectionItem {
                name: name.into(),
                value,
                unit: "mg/kg".into(),
                limit,
                result: Verdict::Pass,
            };
            Inspection {
                method: "lab".into(),
                items: vec![
                    item("毒死蜱", self.rng.gen_range(0.0..0.05), 1.0),
                    item("吡虫啉", self.rng.gen_range(0.0..0.1), 1.0),
                    item("阿维菌素", self.rng.gen_range(0.0..0.005), 0.01),
                    item("苯醚甲环唑", self.rng.gen_range(0.0..0.05), 0.2),
                ],
                report_number: Some(format!(
                    "HNJC-{}-{:04}",
                    at.format("%Y"),
                    self.rng.gen_range(0..10_000)
                )),
                overall: Verdict::Pass,
            }
        };
        self.record(batch, lab, at, None, RecordDetails::Inspection(details));
        self.requests.push((batch, requester, lab));
    }

    /// Ships a batch to another organisation's first site and records its receipt; returns the arrival time.
    fn ship(&mut self, batch: usize, from: usize, to: usize, at: DateTime<Utc>) -> DateTime<Utc> {
        let (quantity, unit) = (
            self.load.batches[batch].quantity,
            self.load.batches[batch].unit.clone(),
        );
        let c = self.county;
        let to_org = &c.orgs[to];
        let (to_id, to_site) = (to_org.id, to_org.sites.first().copied());
        let from_site = self.county.orgs[from].sites.first().copied();
        let plate = format!("云F·{:05}", self.rng.gen_range(0..100_000));
        self.record(
            batch,
            from,
            at,
            from_site,
            RecordDetails::Shipping(Shipping {
                to_org_id: to_id,
                to_site_id: to_site,
                carrier: Some("华宁县冷链物流".into()),
                vehicle_plate: Some(plate),
                quantity: Some(quantity),
                unit: Some(unit.clone()),
            }),
        );
        let arrival = self.later(at, 60, 20 * 60);
        let condition = ["完好", "完好", "完好，冷藏 4℃"][self.rng.gen_range(0..3)];
        self.record(
            batch,
            to,
            arrival,
            to_site,
            RecordDetails::Receiving(Receiving {
                quantity: Some(quantity),
                unit: Some(unit),
                condition: Some(condition.into()),
            }),
        );
        self.load.batches[batch].custodian_org_id = to_id;
        arrival
    }

    fn note(&mut self, batch: usize, org: usize, at: DateTime<Utc>, text: String) {
        let site = self.county.orgs[org].sites.first().copied();
        self.record(batch, org, at, site, RecordDetails::Note(Note { text }));
    }

    fn packing(&mut self, batch: usize, org: usize, at: DateTime<Utc>, package: &str, per: f64) {
        let kg = self.load.batches[batch].quantity;
        let count = ((kg / per).ceil() as u32).max(1);
        let site = self.county.orgs[org].sites.first().copied();
        self.record(
            batch,
            org,
            at,
            site,
            RecordDetails::Packing(Packing {
                package_type: package.into(),
                package_count: count,
                net_quantity_per_package: Some(per),
                unit: Some("kg".into()),
            }),
        );
    }

    /// A split, merge or transformation by `org`, as `lineage::transform` stores it: the output batches, the
    /// edges and a `processing` record on each output.
    fn transform(
        &mut self,
        org: usize,
        kind: LineageKind,
        inputs: &[(usize, f64)],
        outputs: &[(ProductId, f64)],
        at: DateTime<Utc>,
    ) -> Vec<usize> {
        let depth = inputs
            .iter()
            .map(|(b, _)| self.depth[*b])
            .max()
            .unwrap_or(0)
            + 1;
        let site = self.county.orgs[org].sites.first().copied();
        let actor = self.county.orgs[org].actor;
        let recorded_at = self.later(at, 1, 30);
        let client_id = self.uuid();
        let outs: Vec<usize> = outputs
            .iter()
            .map(|(p, kg)| self.add_batch(org, *p, *kg, at, None, depth))
            .collect();
        let lots: Vec<&str> = inputs
            .iter()
            .map(|(b, _)| self.load.batches[*b].lot_code.as_str())
            .collect();
        let note = format!("from {}", lots.join(", "));
        for (i, &out) in outs.iter().enumerate() {
            self.load.records.push(BulkRecord {
                batch: out,
                client_id: Uuid::new_v5(&client_id, format!("output-{i}").as_bytes()),
                event_time: at,
                received_at: recorded_at,
                site_id: site,
                actor_user_id: actor.user_id,
                org_id: actor.org_id,
                details: RecordDetails::Processing(Processing {
                    operation: kind.as_str().into(),
                    note: Some(note.clone()),
                }),
                attachments: Vec::new(),
                flags: Vec::new(),
            });
        }
        self.load.transformations.push(BulkTransformation {
            client_id,
            kind,
            event_time: at,
            recorded_at,
            site_id: site,
            org_id: actor.org_id,
            actor_user_id: actor.user_id,
            inputs: inputs
                .iter()
                .map(|&(batch, quantity)| BulkInput { batch, quantity })
                .collect(),
            outputs: outs.clone(),
        });
        outs
    }

    /// Splits a batch into `n` parts of `product`.
    fn split(
        &mut self,
        org: usize,
        batch: usize,
        n: usize,
        product: ProductId,
        at: DateTime<Utc>,
    ) -> Vec<usize> {
        let kg = self.load.batches[batch].quantity;
        let mut shares: Vec<f64> = (0..n).map(|_| self.rng.gen_range(0.6..1.4)).collect();
        let total: f64 = shares.iter().sum();
        for s in &mut shares {
            *s = (kg * 0.98 * *s / total * 10.0).floor() / 10.0;
        }
        let used: f64 = shares.iter().sum();
        let outputs: Vec<(ProductId, f64)> =
            shares.into_iter().map(|s| (product, s.max(0.1))).collect();
        self.transform(
            org,
            LineageKind::Split,
            &[(batch, used.min(kg))],
            &outputs,
            at,
        )
    }

    /// Merges batches (or transforms a single one) into one batch of `product`.
    fn merge(
        &mut self,
        org: usize,
        inputs: &[usize],
        product: ProductId,
        at: DateTime<Utc>,
    ) -> usize {
        let ins: Vec<(usize, f64)> = inputs
            .iter()
            .map(|&b| (b, self.load.batches[b].quantity))
            .collect();
        let kg: f64 = ins.iter().map(|x| x.1).sum::<f64>() * 0.99;
        let kind = if ins.len() >= 2 {
            LineageKind::Merge
        } else {
            LineageKind::Transform
        };
        self.transform(org, kind, &ins, &[(product, kg)], at)[0]
    }

    /// One processor's intake of a few days and where it went, `max_depth` transformations deep at most:
    /// harvests → grades (1) → grade lots (2) → waxed and packed (3) → pallets (4) → gift boxes (5) →
    /// shipment lots to a cold store (6) → delivery lots to a retailer (7) → store lots (8).
    fn cluster(&mut self, max_depth: u8) {
        let c = self.county;
        let p = self.pick(&c.processors);
        let lab = self.pick(&c.labs);
        let cold = self.pick(&c.cold_stores);
        let shop = self.pick(&c.retailers);
        let crop = self.rng.gen_range(0..CROPS.len());
        let growers = &c.growers_by_crop[crop];
        let day = self.now
            - Duration::days(self.rng.gen_range(25..700))
            - Duration::minutes(self.rng.gen_range(0..1440));
        let k = self.rng.gen_range(3..=12);
        let mut harvests = Vec::new();
        let mut t = day;
        for _ in 0..k {
            let g = self.pick(growers);
            let at = day - Duration::hours(self.rng.gen_range(0..72));
            let b = self.harvest_batch(g, at, None);
            if self.rng.gen_bool(0.6) {
                let tested = self.later(at, 30, 240);
                self.inspect(b, g, lab, tested, true);
            }
            let ship_at = self.later(at, 240, 600);
            t = t.max(self.ship(b, g, p, ship_at));
            harvests.push(b);
        }
        let products = &c.orgs[p].products;
        // 1: grading.
        let mut grades: Vec<Vec<usize>> = vec![Vec::new(); 3];
        let mut t = self.later(t, 60, 600);
        for &h in &harvests {
            let n = self.rng.gen_range(2..=3);
            for (g, out) in self.split(p, h, n, products[0], t).into_iter().enumerate() {
                grades[g].push(out);
            }
        }
        if max_depth <= 1 {
            return;
        }
        // 2: one lot per grade, inspected by the lab.
        t = self.later(t, 120, 900);
        let mut lots = Vec::new();
        for members in grades.iter().filter(|m| !m.is_empty()) {
            let lot = self.merge(p, members, products[0], t);
            let tested = self.later(t, 60, 300);
            self.inspect(lot, p, lab, tested, false);
            let cooled = self.later(t, 30, 120);
            let temp = self.rng.gen_range(30..60);
            self.note(lot, p, cooled, format!("预冷 {}.{}℃", temp / 10, temp % 10));
            lots.push(lot);
        }
        if max_depth <= 2 {
            for lot in lots {
                let at = self.later(t, 600, 1440);
                self.ship(lot, p, shop, at);
            }
            return;
        }
        // 3: waxed and packed; the third grade sometimes becomes juice instead, sold as such.
        t = self.later(t, 600, 1440);
        let mut packed = Vec::new();
        for (i, &lot) in lots.iter().enumerate() {
            if i == 2 && self.rng.gen_bool(0.5) {
                let juice = self.merge(p, &[lot], products[3], t);
                let at = self.later(t, 30, 240);
                self.packing(juice, p, at, "1L 利乐包", 1.0);
                let at = self.later(t, 600, 1440);
                self.ship(juice, p, shop, at);
                continue;
            }
            let out = self.merge(p, &[lot], products[1], t);
            let at = self.later(t, 30, 240);
            self.packing(out, p, at, "10kg 纸箱", 10.0);
            packed.push(out);
        }
        if max_depth <= 3 || packed.is_empty() {
            for b in packed {
                let at = self.later(t, 600, 1440);
                self.ship(b, p, shop, at);
            }
            return;
        }
        // 4: pallets.
        t = self.later(t, 120, 600);
        let mut pallets = Vec::new();
        for &b in &packed {
            let n = self.rng.gen_range(2..=3);
            pallets.extend(self.split(p, b, n, products[1], t));
        }
        if max_depth <= 4 {
            for b in pallets {
                let at = self.later(t, 600, 1440);
                self.ship(b, p, shop, at);
            }
            return;
        }
        // 5: gift boxes, two pallets each.
        t = self.later(t, 120, 600);
        pallets.shuffle(&mut self.rng);
        let mut boxes = Vec::new();
        for pair in pallets.chunks(2) {
            let gift = self.merge(p, pair, products[2], t);
            let at = self.later(t, 30, 240);
            self.packing(gift, p, at, "5kg 礼盒", 5.0);
            boxes.push(gift);
        }
        if max_depth <= 5 {
            for b in boxes {
                let at = self.later(t, 600, 1440);
                self.ship(b, p, shop, at);
            }
            return;
        }
        // 6: shipment lots to the cold store.
        t = self.later(t, 240, 900);
        let mut shipments = Vec::new();
        for &b in &boxes {
            let n = self.rng.gen_range(2..=3);
            for s in self.split(p, b, n, products[2], t) {
                let at = self.later(t, 120, 600);
                self.ship(s, p, cold, at);
                shipments.push(s);
            }
        }
        if max_depth <= 6 {
            return;
        }
        // 7: delivery lots from the cold store to retailers.
        t = self.later(t, 1440, 2880);
        let cold_product = c.orgs[cold].products[0];
        let mut deliveries = Vec::new();
        for &s in &shipments {
            let (temp, humidity) = (self.rng.gen_range(20..50), self.rng.gen_range(80..95));
            let at = self.later(t, 0, 600);
            self.note(
                s,
                cold,
                at,
                format!("冷藏 {}.{}℃ 湿度 {humidity}%", temp / 10, temp % 10),
            );
            for d in self.split(cold, s, 2, cold_product, t) {
                let to = if max_depth >= 8 {
                    shop
                } else {
                    self.pick(&c.retailers)
                };
                let at = self.later(t, 60, 600);
                self.ship(d, cold, to, at);
                deliveries.push(d);
            }
        }
        if max_depth <= 7 {
            return;
        }
        // 8: store lots.
        t = self.later(t, 600, 1440);
        let shop_product = c.orgs[shop].products[0];
        for &d in &deliveries {
            let n = self.rng.gen_range(2..=3);
            for s in self.split(shop, d, n, shop_product, t) {
                let at = self.later(t, 30, 300);
                self.note(s, shop, at, "上架销售".into());
            }
        }
    }

    /// A smallholder's harvest sold directly to a retailer (no transformation).
    fn direct_sale(&mut self) {
        let c = self.county;
        let g = self.pick(&c.growers);
        let shop = self.pick(&c.retailers);
        let at = self.now
            - Duration::days(self.rng.gen_range(3..700))
            - Duration::minutes(self.rng.gen_range(0..1440));
        let b = self.harvest_batch(g, at, None);
        if self.rng.gen_bool(0.5) {
            let lab = self.pick(&c.labs);
            let tested = self.later(at, 30, 240);
            self.inspect(b, g, lab, tested, true);
        }
        let ship_at = self.later(at, 120, 900);
        self.ship(b, g, shop, ship_at);
    }

    /// This season's crops, still in the field: open batches of farms and cooperatives with their farming
    /// records so far. The capture phase writes on them.
    fn growing(&mut self, grower: usize, n: usize) {
        let c = self.county;
        let org = &c.orgs[grower];
        let (product, site) = (org.products[0], org.sites.first().copied());
        for _ in 0..n {
            let from = self.now - Duration::days(self.rng.gen_range(30..150));
            let kg = self.rng.gen_range(1_000.0..10_000.0_f64).round();
            let b = self.add_batch(grower, product, kg, from, site, 0);
            let until = self.now - Duration::hours(self.rng.gen_range(12..72));
            self.season(b, grower, from, until, None);
            self.growing.push((grower, b));
        }
    }

    /// The recall sub-graph: a cooperative's large harvest graded into 10 lots, each packed into 9 runs, each
    /// divided into 10 retail lots: exactly 1,000 batches downstream.
    fn recall_graph(&mut self) {
        let c = self.county;
        let coop = c.coops[0];
        let p = c.processors[0];
        let lab = c.labs[0];
        let products = &c.orgs[p].products;
        let at = self.now - Duration::days(40);
        let root = self.harvest_batch(coop, at, Some(100_000.0));
        let tested = self.later(at, 60, 120);
        self.inspect(root, coop, lab, tested, true);
        let shipped = self.later(at, 300, 400);
        let t = self.ship(root, coop, p, shipped);
        let graded = self.split(p, root, 10, products[0], t + Duration::hours(3));
        for g in graded {
            let runs = self.split(p, g, 9, products[1], t + Duration::hours(10));
            for run in runs {
                self.packing(run, p, t + Duration::hours(12), "10kg 纸箱", 10.0);
                self.split(p, run, 10, products[1], t + Duration::hours(20));
            }
        }
        self.recall_root = Some(root);
    }

    /// Loads what was built and maps it into the index.
    fn flush(&mut self, db: &Database, index: &mut Index) -> Result<()> {
        if self.load.batches.is_empty() {
            return Ok(());
        }
        let load = std::mem::take(&mut self.load);
        let loaded = bulk::load(db, &load).context("bulk load")?;
        drop(load);
        let requests = std::mem::take(&mut self.requests);
        let county = self.county;
        let ids = &loaded.batch_ids;
        db.write(|c| {
            for &(b, requester, lab) in &requests {
                batches::request_inspection(
                    c,
                    &county.orgs[requester].actor,
                    ids[b],
                    county.orgs[lab].id,
                )?;
            }
            Ok(())
        })
        .context("inspection requests")?;
        index.inspection_requests += requests.len();
        index.all.extend_from_slice(ids);
        for (org, b) in self.growing.drain(..) {
            index.growing.entry(org).or_default().push(ids[b]);
        }
        if let Some(root) = self.recall_root.take() {
            index.recall_root = Some(ids[root]);
        }
        for d in self.depth.drain(..) {
            index.depth_histogram[usize::from(d).min(8)] += 1;
        }
        index.batches += ids.len();
        index.records += loaded.records;
        index.edges += loaded.edges;
        index.transformations += loaded.transformation_ids.len();
        Ok(())
    }
}

fn generate(db: &Database, args: &Args, report: &mut Report) -> Result<(County, Index)> {
    let started = Instant::now();
    let mut rng = StdRng::seed_from_u64(args.seed);
    let county = setup_county(db, &mut rng)?;
    let setup = started.elapsed();
    println!(
        "county: {} organisations with accounts, sites and products in {:.1} s",
        county.orgs.len(),
        setup.as_secs_f64()
    );
    let mut index = Index::default();
    let mut b = Builder::new(&county, args.seed ^ 0x5eed);
    for (i, &g) in county.growers.iter().enumerate() {
        let n = if county.coops.contains(&g) {
            b.rng.gen_range(20..=60)
        } else {
            b.rng.gen_range(1..=4)
        };
        b.growing(g, n);
        if i % 50 == 49 {
            b.flush(db, &mut index)?;
        }
    }
    b.recall_graph();
    b.flush(db, &mut index)?;
    let mut last_print = Instant::now();
    while index.batches + b.load.batches.len() < args.batches
        || index.records + b.load.records.len() < args.records
    {
        let depth = *[1u8, 2, 3, 4, 5, 6, 6, 7, 7, 8, 8, 8]
            .choose(&mut b.rng)
            .unwrap_or(&8);
        b.cluster(depth);
        for _ in 0..b.rng.gen_range(8..=16) {
            b.direct_sale();
        }
        if b.load.batches.len() >= LOAD_BATCHES {
            b.flush(db, &mut index)?;
            if last_print.elapsed() > StdDuration::from_secs(10) {
                println!(
                    "  … {} batches, {} records loaded ({:.0} s)",
                    index.batches,
                    index.records,
                    started.elapsed().as_secs_f64()
                );
                last_print = Instant::now();
            }
        }
    }
    b.flush(db, &mut index)?;
    let analyzing = Instant::now();
    bulk::analyze(db)?;
    println!(
        "  planner statistics refreshed in {:.1} s",
        analyzing.elapsed().as_secs_f64()
    );
    let elapsed = started.elapsed();
    let max_depth = index
        .depth_histogram
        .iter()
        .rposition(|&n| n > 0)
        .unwrap_or(0);
    println!(
        "generated: {} batches, {} records ({:.1} per batch), {} transformations, {} lineage edges, {} inspection requests",
        index.batches,
        index.records,
        index.records as f64 / index.batches.max(1) as f64,
        index.transformations,
        index.edges,
        index.inspection_requests
    );
    println!(
        "  batches by lineage depth: {:?} (max {max_depth})",
        index.depth_histogram
    );
    println!(
        "  generation time {:.1} s (county setup {:.1} s, history {:.1} s: {:.0} records/s)",
        elapsed.as_secs_f64(),
        setup.as_secs_f64(),
        (elapsed - setup).as_secs_f64(),
        index.records as f64 / (elapsed - setup).as_secs_f64()
    );
    report.generation_s = elapsed.as_secs_f64();
    report.check(
        index.batches >= args.batches,
        format!(
            "at least {} batches generated ({})",
            args.batches, index.batches
        ),
    );
    report.check(
        index.records >= args.records,
        format!(
            "at least {} records generated ({})",
            args.records, index.records
        ),
    );
    report.check(
        max_depth == 8,
        format!("lineage depth reaches 8 (max {max_depth})"),
    );
    let counts = counts(db)?;
    report.check(
        counts.get("batches") == Some(&(index.batches as i64))
            && counts.get("records") == Some(&(index.records as i64)),
        format!(
            "stored rows match the generated ones (batches {:?}, records {:?})",
            counts.get("batches"),
            counts.get("records")
        ),
    );
    Ok((county, index))
}

fn counts(db: &Database) -> Result<HashMap<String, i64>> {
    Ok(db.read(verify::table_counts)?.into_iter().collect())
}

// ---------------------------------------------------------------------------------------------------------
// The server and its clients.

struct Server {
    base: String,
    handle: actix_web::dev::ServerHandle,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    fn start(db: Database) -> Result<Server> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let base = format!("http://{}", listener.local_addr()?);
        let state = AppState::new(db)?;
        let (tx, rx) = mpsc::channel();
        let thread = std::thread::spawn(move || {
            actix_web::rt::System::new().block_on(async move {
                match suyuan_server::run(listener, state) {
                    Ok(server) => {
                        let _ = tx.send(Ok(server.handle()));
                        let _ = server.await;
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e));
                    }
                }
            })
        });
        let handle = rx.recv().context("server thread ended")??;
        println!("server: {base}");
        Ok(Server {
            base,
            handle,
            thread: Some(thread),
        })
    }

    fn stop(mut self) {
        actix_web::rt::System::new().block_on(self.handle.stop(true));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn agent() -> ureq::Agent {
    ureq::AgentBuilder::new()
        .timeout(StdDuration::from_secs(300))
        .max_idle_connections_per_host(8)
        .build()
}

/// Sends a request and returns the status and body text; only transport errors are errors.
fn send(
    agent: &ureq::Agent,
    method: &str,
    url: &str,
    token: Option<&str>,
    body: Option<&str>,
) -> Result<(u16, String)> {
    let mut req = agent.request(method, url);
    if let Some(t) = token {
        req = req.set("Authorization", &format!("Bearer {t}"));
    }
    let res = match body {
        Some(b) => req.set("Content-Type", "application/json").send_string(b),
        None => req.call(),
    };
    let resp = match res {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => return Err(anyhow!("{method} {url}: {e}")),
    };
    let status = resp.status();
    let mut text = String::new();
    resp.into_reader().read_to_string(&mut text)?;
    Ok((status, text))
}

fn login(agent: &ureq::Agent, base: &str, username: &str) -> Result<String> {
    let body = json!({ "username": username, "password": PASSWORD }).to_string();
    let (status, text) = send(
        agent,
        "POST",
        &format!("{base}/api/v1/auth/login"),
        None,
        Some(&body),
    )?;
    if status != 200 {
        bail!("login of {username} answered {status}: {text}");
    }
    let v: Value = serde_json::from_str(&text)?;
    v["token"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| anyhow!("no token in login answer"))
}

/// A farming record a phone would send now.
fn phone_record(rng: &mut StdRng, site: Option<SiteId>) -> NewRecord {
    let details = match rng.gen_range(0..10) {
        0..=3 => RecordDetails::Irrigation(Irrigation {
            method: Some("滴灌".into()),
            water_source: Some("水库".into()),
            volume_m3: Some(rng.gen_range(5.0..60.0_f64).round()),
        }),
        4..=5 => {
            let f = FERTILISERS[rng.gen_range(0..FERTILISERS.len())];
            RecordDetails::Fertilising(Fertilising {
                fertiliser_name: f.0.into(),
                fertiliser_type: Some(f.1.into()),
                registration_number: f.2.map(Into::into),
                dose: f.3,
                dose_unit: f.4.into(),
                method: Some("撒施".into()),
            })
        }
        6..=7 => {
            let p = PESTICIDES[rng.gen_range(0..PESTICIDES.len())];
            RecordDetails::Spraying(Spraying {
                pesticide_name: p.0.into(),
                registration_number: p.1.into(),
                active_ingredient: p.2.into(),
                dose: p.3,
                dose_unit: p.4.into(),
                pre_harvest_interval_days: p.5,
                target: Some(p.6.into()),
            })
        }
        _ => RecordDetails::Note(Note {
            text: "巡园：果实膨大期，长势良好".into(),
        }),
    };
    NewRecord {
        client_id: uuid::Builder::from_random_bytes(rng.gen()).into_uuid(),
        event_time: Utc::now() - Duration::minutes(rng.gen_range(1..600)),
        site_id: site,
        details,
        attachments: Vec::new(),
    }
}

/// The cooperatives with the most growing batches, after skipping `skip` of them.
fn busiest_growers(county: &County, index: &Index, skip: usize, n: usize) -> Vec<usize> {
    let mut growers: Vec<usize> = index.growing.keys().copied().collect();
    growers.sort_by_key(|g| {
        (
            std::cmp::Reverse(index.growing[g].len()),
            county.orgs[*g].id,
        )
    });
    growers.into_iter().skip(skip).take(n).collect()
}

// ---------------------------------------------------------------------------------------------------------
// The measurements.

fn capture_single(
    server: &Server,
    db: &Database,
    county: &County,
    index: &Index,
    args: &Args,
    report: &mut Report,
) -> Result<()> {
    let growers = busiest_growers(county, index, 0, args.threads);
    let mut rng = StdRng::seed_from_u64(args.seed ^ 1);
    // Bodies are made before the clock starts, so the clients spend their time on the server's answers.
    let mut work: Vec<(String, Vec<(BatchId, String)>)> = Vec::new();
    let spread: usize = growers.iter().map(|g| index.growing[g].len()).sum();
    for (i, g) in growers.iter().enumerate() {
        let n = args.capture / growers.len() + usize::from(i < args.capture % growers.len());
        let batches = &index.growing[g];
        let site = county.orgs[*g].sites.first().copied();
        let mut items = Vec::with_capacity(n);
        for j in 0..n {
            let body = serde_json::to_string(&phone_record(&mut rng, site))?;
            items.push((batches[j % batches.len()], body));
        }
        work.push((county.orgs[*g].username.clone(), items));
    }
    let before = counts(db)?["records"];
    let base = &server.base;
    let barrier = Barrier::new(work.len() + 1);
    let (elapsed, outcomes) = std::thread::scope(|s| -> Result<_> {
        // Named, so that a profile tells the load generator's CPU from the server's.
        let handles = work
            .iter()
            .map(|(user, items)| {
                let barrier = &barrier;
                std::thread::Builder::new()
                    .name("bench-client".into())
                    .spawn_scoped(s, move || -> Result<(usize, Vec<String>)> {
                        let agent = agent();
                        let token = login(&agent, base, user);
                        barrier.wait();
                        let token = token?;
                        let mut ok = 0;
                        let mut errors = Vec::new();
                        for (batch, body) in items {
                            let url = format!("{base}/api/v1/batches/{batch}/records");
                            let (status, text) =
                                send(&agent, "POST", &url, Some(&token), Some(body))?;
                            if status == 201 {
                                ok += 1;
                            } else if errors.len() < 5 {
                                errors.push(format!("{status}: {text}"));
                            }
                        }
                        Ok((ok, errors))
                    })
            })
            .collect::<std::io::Result<Vec<_>>>()?;
        barrier.wait();
        let started = Instant::now();
        let mut outcomes = Vec::new();
        for h in handles {
            outcomes.push(h.join().map_err(|_| anyhow!("client thread panicked"))??);
        }
        Ok((started.elapsed(), outcomes))
    })?;
    let ok: usize = outcomes.iter().map(|o| o.0).sum();
    let rate = args.capture as f64 / elapsed.as_secs_f64();
    let after = counts(db)?["records"];
    println!(
        "capture (single POST /batches/{{id}}/records): {} records from {} clients over {} batches in {:.2} s = {:.0} records/s",
        args.capture,
        work.len(),
        spread,
        elapsed.as_secs_f64(),
        rate
    );
    for e in outcomes.iter().flat_map(|o| &o.1).take(5) {
        println!("  !! unexpected answer {e}");
    }
    report.capture_single = Some(rate);
    report.check(
        ok == args.capture,
        format!(
            "every single capture answered 201 ({ok} of {})",
            args.capture
        ),
    );
    report.check(
        after - before == args.capture as i64,
        format!(
            "stored records grew by {} after single captures (expected {})",
            after - before,
            args.capture
        ),
    );
    Ok(())
}

fn capture_sync(
    server: &Server,
    db: &Database,
    county: &County,
    index: &Index,
    args: &Args,
    report: &mut Report,
) -> Result<()> {
    let growers = busiest_growers(county, index, args.threads, args.sync_threads);
    let mut rng = StdRng::seed_from_u64(args.seed ^ 2);
    let mut work: Vec<(String, Vec<String>)> = growers
        .iter()
        .map(|g| (county.orgs[*g].username.clone(), Vec::new()))
        .collect();
    let mut cursor = vec![0usize; growers.len()];
    for r in 0..args.sync_requests {
        let w = r % growers.len();
        let g = growers[w];
        let batches = &index.growing[&g];
        let site = county.orgs[g].sites.first().copied();
        let mut items = Vec::with_capacity(args.sync_size);
        for _ in 0..args.sync_size {
            let batch = batches[cursor[w] % batches.len()];
            cursor[w] += 1;
            items.push(json!({ "batch_id": batch, "record": phone_record(&mut rng, site) }));
        }
        work[w].1.push(Value::Array(items).to_string());
    }
    let total = args.sync_requests * args.sync_size;
    let before = counts(db)?["records"];
    let base = &server.base;
    let barrier = Barrier::new(work.len() + 1);
    let (elapsed, answers) = std::thread::scope(|s| -> Result<_> {
        let handles = work
            .iter()
            .map(|(user, bodies)| {
                let barrier = &barrier;
                std::thread::Builder::new()
                    .name("bench-client".into())
                    .spawn_scoped(s, move || -> Result<Vec<(u16, String)>> {
                        let agent = agent();
                        let token = login(&agent, base, user);
                        barrier.wait();
                        let token = token?;
                        let url = format!("{base}/api/v1/records/sync");
                        bodies
                            .iter()
                            .map(|b| send(&agent, "POST", &url, Some(&token), Some(b)))
                            .collect()
                    })
            })
            .collect::<std::io::Result<Vec<_>>>()?;
        barrier.wait();
        let started = Instant::now();
        let mut answers = Vec::new();
        for h in handles {
            answers.extend(h.join().map_err(|_| anyhow!("client thread panicked"))??);
        }
        Ok((started.elapsed(), answers))
    })?;
    let rate = total as f64 / elapsed.as_secs_f64();
    let mut created = 0usize;
    let mut bad = Vec::new();
    for (status, text) in &answers {
        if *status != 200 {
            bad.push(format!("{status}: {text:.300}"));
            continue;
        }
        let items: Vec<Value> = serde_json::from_str(text)?;
        for item in items {
            if item["status"] == "created" {
                created += 1;
            } else if bad.len() < 5 {
                bad.push(format!("item {}: {}", item["status"], item["error"]));
            }
        }
    }
    let after = counts(db)?["records"];
    println!(
        "capture (POST /records/sync, {} per request): {} records in {} requests from {} clients in {:.2} s = {:.0} records/s",
        args.sync_size,
        total,
        args.sync_requests,
        work.len(),
        elapsed.as_secs_f64(),
        rate
    );
    for e in bad.iter().take(5) {
        println!("  !! unexpected answer {e}");
    }
    report.capture_sync = Some(rate);
    report.check(
        created == total,
        format!("every synced record answered created ({created} of {total})"),
    );
    report.check(
        after - before == total as i64,
        format!(
            "stored records grew by {} after syncs (expected {total})",
            after - before
        ),
    );
    Ok(())
}

/// Median, p99 and more of a series of latencies.
#[derive(Debug, Clone, Default)]
struct Latency {
    median_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    mean_batches: f64,
    max_batches: usize,
    mean_kib: f64,
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

fn traces(server: &Server, index: &Index, args: &Args, report: &mut Report) -> Result<()> {
    let agent = agent();
    let token = login(&agent, &server.base, "regulator")?;
    let mut rng = StdRng::seed_from_u64(args.seed ^ 3);
    for direction in [Direction::Backward, Direction::Forward] {
        let name = match direction {
            Direction::Backward => "backward",
            Direction::Forward => "forward",
        };
        let sample: Vec<BatchId> = (0..args.traces + 20)
            .map(|_| index.all[rng.gen_range(0..index.all.len())])
            .collect();
        let mut ms = Vec::with_capacity(args.traces);
        let mut sizes = Vec::with_capacity(args.traces);
        let mut bytes = 0usize;
        let mut failures = 0usize;
        for (i, batch) in sample.iter().enumerate() {
            let url = format!(
                "{}/api/v1/batches/{batch}/trace?direction={name}",
                server.base
            );
            let started = Instant::now();
            let (status, text) = send(&agent, "GET", &url, Some(&token), None)?;
            let took = started.elapsed().as_secs_f64() * 1000.0;
            if i < 20 {
                continue; // warm-up
            }
            let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
            match v["batches"].as_array() {
                Some(b) if status == 200 => {
                    sizes.push(b.len());
                    ms.push(took);
                    bytes += text.len();
                }
                _ => {
                    failures += 1;
                    if failures <= 3 {
                        println!(
                            "  !! trace {name} of batch {batch} answered {status}: {text:.300}"
                        );
                    }
                }
            }
        }
        ms.sort_by(f64::total_cmp);
        let lat = Latency {
            median_ms: percentile(&ms, 0.5),
            p99_ms: percentile(&ms, 0.99),
            max_ms: ms.last().copied().unwrap_or(f64::NAN),
            mean_batches: sizes.iter().sum::<usize>() as f64 / sizes.len().max(1) as f64,
            max_batches: sizes.iter().copied().max().unwrap_or(0),
            mean_kib: bytes as f64 / 1024.0 / sizes.len().max(1) as f64,
        };
        println!(
            "trace {name:<8} ({} random batches): median {:.1} ms, p99 {:.1} ms, max {:.1} ms; {:.1} batches per trace (max {}), {:.0} KiB per answer",
            ms.len(),
            lat.median_ms,
            lat.p99_ms,
            lat.max_ms,
            lat.mean_batches,
            lat.max_batches,
            lat.mean_kib
        );
        report.check(
            failures == 0,
            format!("every {name} trace answered 200 ({failures} did not)"),
        );
        match direction {
            Direction::Backward => report.trace_backward = Some(lat),
            Direction::Forward => report.trace_forward = Some(lat),
        }
    }
    Ok(())
}

/// Exports the trace of the recall lot (itself and 1,000 downstream batches) in each format, as the
/// regulator, and checks every answer.
fn trace_exports(server: &Server, index: &Index, args: &Args, report: &mut Report) -> Result<()> {
    let root = index
        .recall_root
        .ok_or_else(|| anyhow!("no recall lot was generated"))?;
    let agent = agent();
    let token = login(&agent, &server.base, "regulator")?;
    for format in ["csv", "xlsx", "epcis"] {
        let url = format!(
            "{}/api/v1/batches/{root}/export?format={format}",
            server.base
        );
        let mut seconds = Vec::with_capacity(args.exports);
        let mut sizes = Vec::with_capacity(args.exports);
        let mut failures = 0;
        let mut events = 0;
        // One more than measured: the first warms the caches.
        for i in 0..=args.exports {
            let started = Instant::now();
            let resp = match agent
                .get(&url)
                .set("Authorization", &format!("Bearer {token}"))
                .call()
            {
                Ok(r) => r,
                Err(ureq::Error::Status(_, r)) => r,
                Err(e) => return Err(anyhow!("GET {url}: {e}")),
            };
            let status = resp.status();
            let mut body = Vec::new();
            resp.into_reader().read_to_end(&mut body)?;
            let took = started.elapsed().as_secs_f64();
            if status != 200 {
                failures += 1;
                println!(
                    "  !! export {format} answered {status}: {:.300}",
                    String::from_utf8_lossy(&body)
                );
                continue;
            }
            if format == "csv" {
                events = body
                    .split(|b| *b == b'\n')
                    .filter(|l| !l.is_empty())
                    .count()
                    - 1;
            }
            if i > 0 {
                seconds.push(took);
                sizes.push(body.len());
            }
        }
        seconds.sort_by(f64::total_cmp);
        let lat = ExportLatency {
            median_s: percentile(&seconds, 0.5),
            p95_s: percentile(&seconds, 0.95),
            mean_kib: sizes.iter().sum::<usize>() as f64 / sizes.len().max(1) as f64 / 1024.0,
        };
        println!(
            "trace export {format:<5} (1,001 batches{}, {} runs): median {:.3} s, p95 {:.3} s, {:.0} KiB",
            if events > 0 { format!(", {events} events") } else { String::new() },
            seconds.len(),
            lat.median_s,
            lat.p95_s,
            lat.mean_kib
        );
        report.check(
            failures == 0,
            format!(
                "every {format} export of the 1,000-batch trace answered 200 ({failures} did not)"
            ),
        );
        if format == "csv" {
            report.check(
                events > RECALL_DOWNSTREAM,
                format!("the CSV export of the 1,000-batch trace holds {events} events (at least one per batch)"),
            );
        }
        report.exports.push((format, lat));
    }
    Ok(())
}

/// Server time of an export, in seconds.
struct ExportLatency {
    median_s: f64,
    p95_s: f64,
    mean_kib: f64,
}

fn recall(server: &Server, db: &Database, index: &Index, report: &mut Report) -> Result<()> {
    let root = index
        .recall_root
        .ok_or_else(|| anyhow!("no recall lot was generated"))?;
    let agent = agent();
    let token = login(&agent, &server.base, "regulator")?;
    let (status, text) = send(
        &agent,
        "GET",
        &format!(
            "{}/api/v1/batches/{root}/trace?direction=forward",
            server.base
        ),
        Some(&token),
        None,
    )?;
    let reach = serde_json::from_str::<Value>(&text)
        .ok()
        .and_then(|v| v["batches"].as_array().map(Vec::len))
        .unwrap_or(0);
    report.check(
        status == 200 && reach == RECALL_DOWNSTREAM + 1,
        format!(
            "forward trace of the recall lot reaches {reach} batches (expected {})",
            RECALL_DOWNSTREAM + 1
        ),
    );
    let before = counts(db)?["records"];
    let body =
        json!({ "reason": "农残抽检不合格（毒死蜱超标），召回同批次及其全部下游产品" }).to_string();
    let started = Instant::now();
    let (status, text) = send(
        &agent,
        "POST",
        &format!("{}/api/v1/batches/{root}/recall", server.base),
        Some(&token),
        Some(&body),
    )?;
    let took = started.elapsed().as_secs_f64();
    let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    let recalled = v["recalled"].as_array().map_or(0, Vec::len);
    let already = v["already_recalled"].as_array().map_or(0, Vec::len);
    let after = counts(db)?["records"];
    println!(
        "recall of batch {root} with {RECALL_DOWNSTREAM} downstream batches: {:.3} s, answered {status}, {recalled} batches recalled ({already} already)",
        took
    );
    if status != 200 {
        println!("  !! recall answered {status}: {text:.300}");
    }
    report.recall_s = Some(took);
    report.check(
        status == 200 && recalled == RECALL_DOWNSTREAM + 1,
        format!(
            "recall lists {recalled} recalled batches (expected {})",
            RECALL_DOWNSTREAM + 1
        ),
    );
    report.check(
        after - before == recalled as i64,
        format!(
            "recall wrote {} records (expected one per recalled batch, {recalled})",
            after - before
        ),
    );
    Ok(())
}

fn verify_all(db: &Database, report: &mut Report) -> Result<()> {
    let started = Instant::now();
    let result = db.read(|c| verify::verify_chains(c, |_| {}))?;
    println!(
        "verify: {} batches, {} records re-hashed in {:.1} s, {} issue(s)",
        result.batches,
        result.records,
        started.elapsed().as_secs_f64(),
        result.issues.len()
    );
    for issue in result.issues.iter().take(5) {
        println!(
            "  !! batch {} record {:?}: {}",
            issue.batch_id, issue.record_id, issue.problem
        );
    }
    report.check(
        result.issues.is_empty(),
        format!("every hash chain verifies ({} issues)", result.issues.len()),
    );
    Ok(())
}

fn run_backend(backend: db::Backend, args: &Args) -> Result<Report> {
    let name = match backend {
        db::Backend::Sqlite => "SQLite",
        db::Backend::Postgres => "PostgreSQL",
    };
    println!("\n=== county benchmark on {name} ===");
    let target = Target::create(backend, args)?;
    let mut report = Report::new(name);
    {
        let db = Database::open(&target.url, &PoolConfig::default())?;
        let (county, index) = generate(&db, args, &mut report)?;
        let server = Server::start(db.clone())?;
        let outcome = (|| -> Result<()> {
            capture_single(&server, &db, &county, &index, args, &mut report)?;
            capture_sync(&server, &db, &county, &index, args, &mut report)?;
            traces(&server, &index, args, &mut report)?;
            trace_exports(&server, &index, args, &mut report)?;
            recall(&server, &db, &index, &mut report)?;
            Ok(())
        })();
        server.stop();
        outcome?;
        if !args.no_verify {
            verify_all(&db, &mut report)?;
        }
        let counts = counts(&db)?;
        println!(
            "final rows: {} batches, {} records, {} lineage edges",
            counts["batches"], counts["records"], counts["lineage_edges"]
        );
    }
    drop(target);
    Ok(report)
}

// ---------------------------------------------------------------------------------------------------------
// The summary.

struct Report {
    backend: &'static str,
    generation_s: f64,
    capture_single: Option<f64>,
    capture_sync: Option<f64>,
    trace_backward: Option<Latency>,
    trace_forward: Option<Latency>,
    recall_s: Option<f64>,
    exports: Vec<(&'static str, ExportLatency)>,
    checks: usize,
    problems: Vec<String>,
}

impl Report {
    fn new(backend: &'static str) -> Self {
        Report {
            backend,
            generation_s: 0.0,
            capture_single: None,
            capture_sync: None,
            trace_backward: None,
            trace_forward: None,
            recall_s: None,
            exports: Vec::new(),
            checks: 0,
            problems: Vec::new(),
        }
    }

    /// Records a check; a failed one is printed at once, loudly, and fails the run.
    fn check(&mut self, ok: bool, what: String) {
        self.checks += 1;
        if !ok {
            println!("  !!!!! CHECK FAILED: {what}");
            self.problems.push(what);
        }
    }

    fn print_summary(&self) {
        let verdict = |ok: bool| if ok { "PASS" } else { "FAIL" };
        println!(
            "Summary — {} (generation {:.0} s)",
            self.backend, self.generation_s
        );
        println!("  {:<44} {:>22}  result", "target", "measured");
        if let Some(r) = self.capture_single {
            println!(
                "  {:<44} {:>15.0} rec/s  {}",
                "capture, single records   ≥ 5,000 records/s",
                r,
                verdict(r >= TARGET_CAPTURE_PER_S)
            );
        }
        if let Some(r) = self.capture_sync {
            println!(
                "  {:<44} {:>15.0} rec/s  {}",
                "capture, sync of 500      ≥ 5,000 records/s",
                r,
                verdict(r >= TARGET_CAPTURE_PER_S)
            );
        }
        for (label, lat) in [
            ("trace backward p99        ≤ 50 ms", &self.trace_backward),
            ("trace forward p99         ≤ 50 ms", &self.trace_forward),
        ] {
            if let Some(l) = lat {
                println!(
                    "  {:<44} {:>18.1} ms  {}  (median {:.1} ms)",
                    label,
                    l.p99_ms,
                    verdict(l.p99_ms <= TARGET_TRACE_P99_MS),
                    l.median_ms
                );
            }
        }
        if let Some(s) = self.recall_s {
            println!(
                "  {:<44} {:>19.3} s  {}",
                "recall of 1,000 downstream ≤ 1 s",
                s,
                verdict(s <= TARGET_RECALL_S)
            );
        }
        for (format, l) in &self.exports {
            println!(
                "  {:<44} {:>19.3} s  {}  (median {:.3} s)",
                format!("1,000-batch trace export {format:<5} p95 ≤ 2 s"),
                l.p95_s,
                verdict(l.p95_s <= TARGET_EXPORT_P95_S),
                l.median_s
            );
        }
        println!(
            "  {:<44} {:>22}  {}",
            "checks (statuses, row counts, chains)",
            format!("{} of {}", self.checks - self.problems.len(), self.checks),
            verdict(self.problems.is_empty())
        );
        for p in &self.problems {
            println!("    FAILED: {p}");
        }
        println!();
    }
}
