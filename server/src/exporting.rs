//! Background exports: the period (or large trace) exports asked for with `POST /api/v1/exports`.
//!
//! The request records the export (`queued`, its events counted) and hands its id to [`Exporter`], which owns
//! one thread: it takes exports one at a time, claims each in the database (a guarded `UPDATE`, so that on
//! several replicas only one writes it), writes the file a page of events at a time into
//! `DATA/exports/export-N.{csv,xlsx,jsonld}` (under a temporary name until complete) and records its
//! progress in the row as it goes, so that `GET /api/v1/exports/{id}` answers on any replica. An HTTP worker
//! never waits for an export, and one export at a time bounds what they take of the machine. At start, the
//! exporter takes the exports a stopped process left queued and fails those it left running (without
//! progress for [`STALLED_MS`]), so their owners can ask again.
//!
//! The file stays on the replica that wrote it: with several replicas, give them one shared `DATA/exports`
//! folder (as for label runs), or a download that lands elsewhere answers 404 `export_file_missing`.

use std::io::BufWriter;
use std::path::PathBuf;
use std::sync::{mpsc, Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::Context;
use suyuan_core::export::{Identifiers, WriteOptions};
use suyuan_core::model::{Actor, ExportId, ExportJob};
use suyuan_core::store::exports::{self, jobs};
use suyuan_core::store::users;
use suyuan_core::{CoreError, Database};

/// A running export with no progress for this long is taken to be interrupted.
pub const STALLED_MS: i64 = 10 * 60 * 1000;

/// How often progress is written to the database while an export runs.
const PROGRESS_EVERY: Duration = Duration::from_millis(500);

/// Where exports are written and how many may wait.
#[derive(Debug, Clone)]
pub struct ExportSettings {
    /// `DATA/exports`.
    pub dir: PathBuf,
    /// The platform's public address (`https://host`): EPCIS names lots, sites and organisations under it.
    pub public_base: String,
    /// Exports waiting or running at once, per organisation and overall.
    pub limits: jobs::ExportLimits,
}

impl ExportSettings {
    /// Exports under `DATA/exports`.
    pub fn in_data_dir(data_dir: &std::path::Path, public_base: &str) -> Self {
        ExportSettings {
            dir: data_dir.join("exports"),
            public_base: public_base.trim_end_matches('/').to_owned(),
            limits: jobs::ExportLimits::default(),
        }
    }

    /// The file of a finished export.
    pub fn file(&self, job: &ExportJob) -> Option<PathBuf> {
        job.file_name.as_ref().map(|name| self.dir.join(name))
    }

    /// How the export's writer names identifiers and dates the document.
    pub fn write_options(&self) -> WriteOptions {
        WriteOptions {
            ids: Identifiers {
                base: self.public_base.clone(),
            },
            created: chrono::Utc::now(),
        }
    }
}

/// The background exporter: one thread, one export at a time, in the order they were asked for.
#[derive(Debug)]
pub struct Exporter {
    queue: Mutex<mpsc::Sender<ExportId>>,
    settings: ExportSettings,
}

impl Exporter {
    /// Starts the exporter's thread; fails the exports a stopped process left running and queues those it
    /// left waiting.
    pub fn start(db: Database, settings: ExportSettings) -> anyhow::Result<Arc<Exporter>> {
        suyuan_core::db::create_private_dirs(&settings.dir)?;
        let stalled = db.write(|c| jobs::fail_stalled(c, STALLED_MS))?;
        if stalled > 0 {
            tracing::warn!(
                exports = stalled,
                "exports interrupted by a stop were marked failed"
            );
        }
        let pending = db.read(jobs::queued)?;
        let (tx, rx) = mpsc::channel::<ExportId>();
        let exporter = Arc::new(Exporter {
            queue: Mutex::new(tx),
            settings: settings.clone(),
        });
        std::thread::Builder::new()
            .name("exporter".into())
            .spawn(move || {
                for id in rx {
                    run(&db, &settings, id);
                }
            })
            .context("starting the exporter")?;
        for id in pending {
            exporter.submit(id);
        }
        Ok(exporter)
    }

    /// Queues a recorded export.
    pub fn submit(&self, id: ExportId) {
        let sent = self
            .queue
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .send(id);
        if sent.is_err() {
            // Only when the thread died; the export stays queued and is taken at the next start.
            tracing::error!(export = %id, "the exporter has stopped; the export waits for a restart");
        }
    }

    /// The settings the exporter uses.
    pub fn settings(&self) -> &ExportSettings {
        &self.settings
    }
}

fn run(db: &Database, settings: &ExportSettings, id: ExportId) {
    let job = match db.write(|c| jobs::claim(c, id)) {
        Ok(Some(job)) => job,
        // Taken by another replica, or gone.
        Ok(None) => return,
        Err(e) => {
            tracing::error!(export = %id, error = %e, "cannot claim the export");
            return;
        }
    };
    let started = Instant::now();
    match write(db, settings, &job) {
        Ok((name, bytes, rows)) => {
            if let Err(e) = db.write(|c| jobs::finish(c, id, &name, bytes, rows)) {
                tracing::error!(export = %id, error = %e, "cannot record the finished export");
            } else {
                tracing::info!(export = %id, rows, bytes, seconds = started.elapsed().as_secs_f64(), "export written");
            }
        }
        Err(e) => {
            // What the person who asked may read: a domain refusal as it is, anything else in general terms
            // (the cause goes to the log).
            let reason = match &e {
                CoreError::Invalid { .. }
                | CoreError::BadRequest { .. }
                | CoreError::NotFound { .. }
                | CoreError::Forbidden(_) => e.to_string(),
                _ => {
                    tracing::error!(export = %id, error = %e, "export failed");
                    "the export could not be written; it has been logged".to_owned()
                }
            };
            if let Err(e) = db.write(|c| jobs::fail(c, id, &reason)) {
                tracing::error!(export = %id, error = %e, "cannot record the failed export");
            }
        }
    }
}

/// Writes the file; returns its name, size and number of events.
fn write(
    db: &Database,
    settings: &ExportSettings,
    job: &ExportJob,
) -> Result<(String, i64, i64), CoreError> {
    let user = db.read(|c| users::get(c, job.requested_by))?;
    let actor = Actor {
        user_id: user.id,
        org_id: user.org_id,
        role: user.role,
    };
    let name = format!("export-{}.{}", job.id, job.format.extension());
    let path = settings.dir.join(&name);
    let partial = settings.dir.join(format!("{name}.partial"));
    let io =
        |e: std::io::Error| CoreError::Internal(format!("export file {}: {e}", partial.display()));
    let file = std::fs::File::create(&partial).map_err(io)?;
    let mut last = Instant::now();
    let mut progress = |done: i64, total: i64| {
        if last.elapsed() >= PROGRESS_EVERY || done == total {
            last = Instant::now();
            db.write(|c| jobs::progress(c, job.id, done, total))?;
        }
        Ok(())
    };
    let outcome = exports::write(
        db,
        &actor,
        &job.scope,
        job.format,
        BufWriter::new(file),
        &settings.write_options(),
        &mut progress,
    );
    let (out, rows) = match outcome {
        Ok(done) => done,
        Err(e) => {
            let _ = std::fs::remove_file(&partial);
            return Err(e);
        }
    };
    let file = out.into_inner().map_err(|e| io(e.into_error()))?;
    file.sync_all().map_err(io)?;
    let bytes = file.metadata().map_err(io)?.len();
    std::fs::rename(&partial, &path).map_err(io)?;
    Ok((name, i64::try_from(bytes).unwrap_or(i64::MAX), rows))
}
