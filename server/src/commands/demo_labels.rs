//! The demo county's labels: `suyuan serve --demo` mints a run for the gift boxes, activates its first
//! sheet to the showcase batch, leaves the second sheet unactivated and voids its last label, so that a
//! newcomer can open (or scan, from the PDF) a label in each state at once.
//!
//! It goes through the same paths as real use: a signing key in the data folder (created when the
//! database has none), a reserved run minted by [`crate::minting::mint_run`] into the folder the API
//! serves runs from, and the store's bind and void with the packer's account. Running it again finds the
//! run and only prints the URLs.

use anyhow::Context;
use suyuan_core::model::{Actor, LabelRun, LabelRunStatus, NewLabelRun, RunRequester};
use suyuan_core::store::{batches, labels, users, Page};
use suyuan_core::{BatchId, Database};
use suyuan_label_gen::keystore::KeyStore;
use suyuan_label_gen::{KeyId, LabelCode, LabelSerial, LabelSigningKey};

use crate::minting::{mint_run, MintSettings};

/// Labels per A4 3×8 sheet; the demo run is two sheets.
const SHEET: i64 = 24;

/// The account that packs and labels the gift boxes.
const PACKER: &str = "processor";

/// One demo label per state.
#[derive(Debug, Clone)]
pub struct DemoLabels {
    pub run: LabelRun,
    /// Digits of a label bound to the showcase batch.
    pub active: String,
    /// Digits of a label of the run that is not bound yet.
    pub unactivated: String,
    /// Digits of the voided label.
    pub void: String,
}

/// Makes sure the demo run exists (minting it the first time) and returns one label per state.
pub fn ensure(
    db: &Database,
    settings: &MintSettings,
    host: &str,
    showcase: BatchId,
) -> anyhow::Result<DemoLabels> {
    let store = KeyStore::in_data_dir(&settings.data_dir);
    if db.read(labels::active_key)?.is_none() {
        super::keys::create_in(db, &store, false)?;
    }
    let batch = db.read(|c| batches::get(c, showcase))?;
    let existing = db
        .read(|c| labels::list_runs(c, Some(batch.org_id), Page::FIRST))?
        .items
        .into_iter()
        .find(|r| r.product_id == batch.product_id && r.status == LabelRunStatus::Finished);
    let run = match existing {
        Some(run) => run,
        None => mint_demo_run(db, settings, host, &batch)?,
    };
    let key = settings.signing_key(db, run.key_id)?;
    let digits = |offset: i64| -> anyhow::Result<String> {
        Ok(code(&key, run.first_sequence + offset)?
            .digits()
            .to_string())
    };
    Ok(DemoLabels {
        active: digits(0)?,
        unactivated: digits(SHEET + 1)?,
        void: digits(run.count - 1)?,
        run,
    })
}

fn mint_demo_run(
    db: &Database,
    settings: &MintSettings,
    host: &str,
    batch: &suyuan_core::model::Batch,
) -> anyhow::Result<LabelRun> {
    let packer = packer(db)?;
    let key = db
        .read(labels::active_key)?
        .context("no active signing key")?;
    let run = db.write(|c| {
        labels::create_run(
            c,
            RunRequester::User(&packer),
            &NewLabelRun {
                product_id: batch.product_id,
                key_id: key.key_id,
                count: 2 * SHEET,
                layout: "a4-3x8".into(),
                host: host.into(),
            },
        )
    })?;
    mint_run(db, settings, &run, &settings.run_dir(run.id), &|_| {})?;
    let signing = settings.signing_key(db, run.key_id)?;
    let first = code(&signing, run.first_sequence)?;
    let last_of_sheet = code(&signing, run.first_sequence + SHEET - 1)?;
    let last = code(&signing, run.last_sequence())?;
    db.write(|c| {
        // A scan gun reads the first and last label of the sheet: the whole sheet is bound.
        let from = crate::api::labels::label_ref(c, &first.to_url(host))?;
        let to = crate::api::labels::label_ref(c, &last_of_sheet.to_url(host))?;
        labels::bind(c, &packer, from, to, batch.id)?;
        let torn = crate::api::labels::label_ref(c, &last.to_url(host))?;
        labels::void(c, &packer, torn, "演示：标签撕损 / demo: label torn")?;
        Ok(())
    })?;
    Ok(db.read(|c| labels::get_run(c, run.id))?)
}

/// The packer's account as an actor.
fn packer(db: &Database) -> anyhow::Result<Actor> {
    let user = db
        .read(|c| {
            users::list(
                c,
                None,
                Page {
                    limit: Some(200),
                    after: None,
                },
            )
        })?
        .items
        .into_iter()
        .find(|u| u.username == PACKER)
        .with_context(|| format!("the demo account {PACKER} is missing"))?;
    Ok(Actor {
        user_id: user.id,
        org_id: user.org_id,
        role: user.role,
    })
}

fn code(key: &LabelSigningKey, sequence: i64) -> anyhow::Result<LabelCode> {
    let id: KeyId = key.id();
    Ok(LabelCode::mint(
        key,
        LabelSerial::new(id, u64::try_from(sequence)?)?,
    )?)
}
