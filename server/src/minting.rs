//! Minting label runs: the part shared by `suyuan labels mint` and the API's background minter.
//!
//! A run's range is reserved in the database first (`store::labels::create_run`); [`mint_run`] then loads
//! the private key of the run's key id, checks it against the registered public key, writes the PDFs and
//! the manifest with `suyuan_label_gen::run`, and records the run as finished (with its files) or failed
//! (with the reason). A failed run's range is never reissued.
//!
//! The API does not mint inside a request: [`Minter`] owns one thread that takes runs from a queue, one
//! at a time, so a 300,000-label run neither blocks the HTTP workers nor competes with another run for
//! the machine's cores. Its progress is kept in memory for `GET /api/v1/label-runs/{id}`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc, Mutex, PoisonError};

use anyhow::Context;
use suyuan_core::model::{Certification, LabelField, Organisation, Product};
use suyuan_core::model::{LabelRun, LabelRunId};
use suyuan_core::store::{labels, orgs, sites};
use suyuan_core::Database;
use suyuan_label_gen::keystore::{hex, KeyStore, SIGNING_KEY_ENV};
use suyuan_label_gen::{
    KeyId, LabelFont, LabelSerial, LabelSigningKey, LabelTemplate, Margins, MintReport,
    MintRequest, PageLayout, Progress, RunConfig, SheetOptions,
};

/// Where minting finds its keys and font, and how it splits files.
#[derive(Debug, Clone)]
pub struct MintSettings {
    /// The data folder: private keys under `keys/`, API runs' files under `label-runs/run-N/`.
    pub data_dir: PathBuf,
    /// The value of `SUYUAN_SIGNING_KEY`, when the key comes from the environment.
    pub env_key: Option<String>,
    /// A CJK TrueType font; by default a system font is searched.
    pub font: Option<PathBuf>,
    /// Most labels per PDF file (rounded down to whole pages).
    pub labels_per_file: usize,
    /// Worker threads of one run; `None` = one per core.
    pub threads: Option<usize>,
    /// Printer calibration: shifts every label right (x) and down (y), in millimetres.
    pub offset_x_mm: f32,
    pub offset_y_mm: f32,
    /// Page margins around the grid, in millimetres (the layout's own when `None`).
    pub margin_mm: Option<f32>,
    /// Most runs queued or minting at once, per organisation and overall, for runs requested through the
    /// API (`SUYUAN_LABEL_RUNS_PER_ORG`, `SUYUAN_LABEL_RUNS_MAX`).
    pub run_limits: labels::RunLimits,
}

impl MintSettings {
    /// Settings over a data folder, with the key from `SUYUAN_SIGNING_KEY` when set.
    pub fn in_data_dir(data_dir: impl Into<PathBuf>) -> Self {
        MintSettings {
            data_dir: data_dir.into(),
            env_key: std::env::var(SIGNING_KEY_ENV).ok(),
            font: None,
            labels_per_file: 2_400,
            threads: None,
            offset_x_mm: 0.0,
            offset_y_mm: 0.0,
            margin_mm: None,
            run_limits: labels::RunLimits::default(),
        }
    }

    /// The folder of an API run's files.
    pub fn run_dir(&self, run: LabelRunId) -> PathBuf {
        self.data_dir.join("label-runs").join(format!("run-{run}"))
    }

    /// The private key `key_id`, checked against the public key registered for it.
    pub fn signing_key(&self, db: &Database, key_id: i64) -> anyhow::Result<LabelSigningKey> {
        let id = KeyId::new(u32::try_from(key_id).context("key id out of range")?)?;
        let key = KeyStore::in_data_dir(&self.data_dir).signing_key(id, self.env_key.as_deref())?;
        let registered = db
            .read(labels::list_keys)?
            .into_iter()
            .find(|k| k.key_id == key_id)
            .with_context(|| format!("signing key {key_id} is not registered"))?;
        if hex(&key.verifying_key().to_bytes()) != registered.public_key {
            anyhow::bail!(
                "the private key {id} found here does not match the registered public key {id}; \
                 check {SIGNING_KEY_ENV} or the key file"
            );
        }
        Ok(key)
    }

    /// The page layout `name` with this printer's calibration (offsets within ±20 mm, margins 0–30 mm).
    pub fn layout(&self, name: &str) -> anyhow::Result<PageLayout> {
        let mut layout =
            PageLayout::by_name(name).with_context(|| format!("unknown layout {name}"))?;
        for (what, v) in [
            ("offset x", self.offset_x_mm),
            ("offset y", self.offset_y_mm),
        ] {
            anyhow::ensure!(
                v.is_finite() && v.abs() <= 20.0,
                "{what} must be within ±20 mm (found {v})"
            );
        }
        layout.offset_x_mm = self.offset_x_mm;
        layout.offset_y_mm = self.offset_y_mm;
        if let Some(m) = self.margin_mm {
            anyhow::ensure!(
                m.is_finite() && (0.0..=30.0).contains(&m),
                "margins are 0–30 mm (found {m})"
            );
            layout.margins = Margins::uniform(m);
        }
        Ok(layout)
    }

    /// The label font (fails with a message naming the setting when none is found).
    pub fn font(&self) -> anyhow::Result<LabelFont> {
        Ok(LabelFont::load(self.font.as_deref())?)
    }
}

/// Writes the files of a reserved run into `out_dir` and records the outcome: finished with the file
/// names (relative to `out_dir`), or failed with the reason.
pub fn mint_run(
    db: &Database,
    settings: &MintSettings,
    run: &LabelRun,
    out_dir: &Path,
    progress: &dyn Fn(Progress),
) -> anyhow::Result<MintReport> {
    let outcome = write_run(db, settings, run, out_dir, progress);
    match &outcome {
        Ok(report) => {
            let names: Vec<String> = report
                .files
                .iter()
                .chain(report.manifest.iter())
                .filter_map(|f| f.file_name())
                .map(|f| f.to_string_lossy().into_owned())
                .collect();
            db.write(|c| labels::finish_run(c, run.id, &names.join("\n")))?;
        }
        Err(e) => {
            let message = format!("{e:#}");
            if let Err(recorded) = db.write(|c| labels::fail_run(c, run.id, &message)) {
                tracing::error!(run = %run.id, error = %recorded, "could not record the failed run");
            }
        }
    }
    outcome.with_context(|| format!("run {} failed", run.id))
}

fn write_run(
    db: &Database,
    settings: &MintSettings,
    run: &LabelRun,
    out_dir: &Path,
    progress: &dyn Fn(Progress),
) -> anyhow::Result<MintReport> {
    let layout = settings.layout(&run.layout)?;
    let key = settings.signing_key(db, run.key_id)?;
    let font = settings.font()?;
    let (product, maker) = db.read(|c| {
        let product = sites::get_product(c, run.product_id)?;
        let maker = orgs::get(c, product.org_id)?;
        Ok((product, maker))
    })?;
    let template = LabelTemplate {
        product_name: product.name.clone(),
        fields: label_lines(&product, &maker),
    };
    let mut config = RunConfig::new(run.host.clone(), SheetOptions::new(layout), template);
    config.labels_per_file = settings.labels_per_file.max(1);
    if let Some(threads) = settings.threads {
        config.threads = threads.max(1);
    }
    config.file_stem = format!("run-{}", run.id);
    let request = MintRequest {
        first: LabelSerial::new(key.id(), u64::try_from(run.first_sequence)?)?,
        count: u64::try_from(run.count)?,
        out_dir: out_dir.to_path_buf(),
    };
    Ok(suyuan_label_gen::run(
        &config, &request, &key, &font, progress,
    )?)
}

/// The lines under the product name, as the product's `label_fields` choose (empty ones left out).
pub fn label_lines(product: &Product, maker: &Organisation) -> Vec<String> {
    product
        .label_fields
        .iter()
        .filter_map(|field| match field {
            LabelField::Brand => product.brand.as_ref().map(|b| format!("品牌：{b}")),
            LabelField::Certifications => (!product.certifications.is_empty()).then(|| {
                product
                    .certifications
                    .iter()
                    .map(|c| match c {
                        Certification::PollutionFree => "无公害农产品",
                        Certification::GreenFood => "绿色食品",
                        Certification::Organic => "有机产品",
                        Certification::GeographicalIndication => "地理标志",
                    })
                    .collect::<Vec<_>>()
                    .join(" · ")
            }),
            LabelField::Producer => Some(maker.name.clone()),
            LabelField::Origin => maker.address.as_ref().map(|a| format!("产地：{a}")),
            LabelField::Category => Some(format!("品类：{}", product.category)),
            LabelField::Gtin => product.gtin.as_ref().map(|g| format!("GTIN {g}")),
        })
        .collect()
}

/// How far a run being minted on this server has got.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct RunProgress {
    /// Labels written so far.
    pub done: u64,
    /// Labels in the run.
    pub total: u64,
}

/// The background minter of API runs: one thread, one run at a time, in the order they were asked for.
#[derive(Debug)]
pub struct Minter {
    queue: Mutex<mpsc::Sender<LabelRunId>>,
    progress: Arc<Mutex<HashMap<LabelRunId, RunProgress>>>,
    settings: MintSettings,
}

impl Minter {
    /// Starts the minter's thread and queues the API runs a previous process left unfinished.
    pub fn start(db: Database, settings: MintSettings) -> anyhow::Result<Arc<Minter>> {
        let (tx, rx) = mpsc::channel::<LabelRunId>();
        let progress = Arc::new(Mutex::new(HashMap::new()));
        let minter = Arc::new(Minter {
            queue: Mutex::new(tx),
            progress: progress.clone(),
            settings: settings.clone(),
        });
        let pending = db.read(labels::unfinished_api_runs)?;
        std::thread::Builder::new()
            .name("label-minter".into())
            .spawn(move || {
                for id in rx {
                    mint_queued(&db, &settings, &progress, id);
                }
            })
            .context("starting the label minter")?;
        if !pending.is_empty() {
            tracing::info!(runs = pending.len(), "resuming unfinished label runs");
        }
        for id in pending {
            minter.submit(id);
        }
        Ok(minter)
    }

    /// Queues a reserved run for minting.
    pub fn submit(&self, run: LabelRunId) {
        let sent = self
            .queue
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .send(run);
        if sent.is_err() {
            // Only when the minter's thread died; the run stays `minting` and is resumed at next start.
            tracing::error!(run = %run, "the label minter has stopped; the run resumes at restart");
        }
    }

    /// Progress of a run this server is minting (none once it has ended or when another replica mints it).
    pub fn progress(&self, run: LabelRunId) -> Option<RunProgress> {
        self.progress
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&run)
            .copied()
    }

    /// The settings the minter uses.
    pub fn settings(&self) -> &MintSettings {
        &self.settings
    }
}

fn mint_queued(
    db: &Database,
    settings: &MintSettings,
    progress: &Mutex<HashMap<LabelRunId, RunProgress>>,
    id: LabelRunId,
) {
    let run = match db.read(|c| labels::get_run(c, id)) {
        Ok(run) => run,
        Err(e) => {
            tracing::error!(run = %id, error = %e, "cannot read the queued label run");
            return;
        }
    };
    let total = u64::try_from(run.count).unwrap_or(0);
    let set = |done| {
        progress
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id, RunProgress { done, total });
    };
    set(0);
    let started = std::time::Instant::now();
    let out = settings.run_dir(id);
    match mint_run(db, settings, &run, &out, &|p| set(p.done)) {
        Ok(report) => tracing::info!(
            run = %id,
            labels = report.labels,
            seconds = started.elapsed().as_secs_f64(),
            "label run minted"
        ),
        Err(e) => tracing::error!(run = %id, error = %format!("{e:#}"), "label run failed"),
    }
    progress
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .remove(&id);
}
