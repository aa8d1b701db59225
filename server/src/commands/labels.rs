//! `suyuan labels mint`: mints a run of signed labels for a product into PDF files and a CSV manifest.
//!
//! The serial range is reserved in the database first (disjoint across processes and replicas), then
//! [`crate::minting::mint_run`] writes the files and records the run as finished or failed.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use suyuan_core::model::{LabelRun, NewLabelRun, RunRequester};
use suyuan_core::store::{labels, sites};
use suyuan_core::{Database, ProductId};
use suyuan_label_gen::keystore::SIGNING_KEY_ENV;
use suyuan_label_gen::{KeyId, LabelSerial, MintReport, Progress};

use super::DataArgs;
use crate::minting::{mint_run, MintSettings};

/// What to do with labels.
#[derive(Debug, Clone, Subcommand)]
pub enum LabelsCommand {
    /// Mint a run of signed labels for a product: PDFs (split into bounded files) and a CSV manifest.
    /// The labels count against the product's organisation's quota, as through the API.
    Mint {
        #[command(flatten)]
        args: MintArgs,
        /// Mint even when the run does not fit the organisation's label quota (logged; the labels still
        /// count as used).
        #[arg(long)]
        over_quota: bool,
    },
}

/// Options of `suyuan labels mint`.
#[derive(Debug, Clone, Args)]
pub struct MintArgs {
    /// The product the labels are for (its name is printed on every label).
    #[arg(long)]
    pub product: i64,
    /// How many labels (1 – 1,000,000).
    #[arg(long)]
    pub count: i64,
    /// Sheet layout.
    #[arg(long, value_parser = ["a4-3x8", "a4-4x10", "roll-50x30"])]
    pub layout: String,
    /// Folder for the PDFs and the manifest (created if missing).
    #[arg(long)]
    pub out: PathBuf,
    /// Host name in the label URLs (short hosts keep the QR code small).
    #[arg(long, env = "SUYUAN_PUBLIC_HOST")]
    pub host: String,
    /// A CJK TrueType font (.ttf/.ttc); by default a system font is searched.
    #[arg(long, env = "SUYUAN_LABEL_FONT")]
    pub font: Option<PathBuf>,
    /// Most labels per PDF file (rounded down to whole pages).
    #[arg(long, default_value_t = 2400)]
    pub labels_per_file: usize,
    /// Printer calibration: move every label right by this many millimetres (negative: left).
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    pub offset_x_mm: f32,
    /// Printer calibration: move every label down by this many millimetres (negative: up).
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    pub offset_y_mm: f32,
    /// Page margins around the label grid in millimetres (A4 layouts; default: the layout's own).
    #[arg(long)]
    pub margin_mm: Option<f32>,
    #[command(flatten)]
    pub data: DataArgs,
}

/// Runs a labels command.
pub fn run(cmd: LabelsCommand) -> anyhow::Result<()> {
    match cmd {
        LabelsCommand::Mint { args, over_quota } => {
            let db = args.data.open()?;
            let bar = ProgressBar::new(u64::try_from(args.count).unwrap_or(0));
            bar.set_style(ProgressStyle::with_template(
                "{bar:40} {pos}/{len} labels  {per_sec}  eta {eta}",
            )?);
            let env_key = std::env::var(SIGNING_KEY_ENV).ok();
            let minted = mint_with(&db, &args, over_quota, env_key.as_deref(), &|p| {
                bar.set_position(p.done)
            });
            bar.finish_and_clear();
            let (run, report) = minted?;
            println!(
                "run {}: {} labels, serials {} – {}, QR version {}, {} PDF file(s), {:.1} s",
                run.id,
                report.labels,
                serial(run.key_id, run.first_sequence)?,
                serial(run.key_id, run.last_sequence())?,
                report.qr_version,
                report.files.len(),
                report.wall.as_secs_f64(),
            );
            if let Some(m) = &report.manifest {
                println!("manifest: {}", m.display());
            }
            Ok(())
        }
    }
}

/// Reserves the range, records the run, mints it and records the outcome. `env_key` is the value of
/// `SUYUAN_SIGNING_KEY`, if set; otherwise the active key's file under `DATA/keys` is used.
pub fn mint(
    db: &Database,
    args: &MintArgs,
    env_key: Option<&str>,
    progress: &dyn Fn(Progress),
) -> anyhow::Result<(LabelRun, MintReport)> {
    mint_with(db, args, false, env_key, progress)
}

/// [`mint`], past the organisation's label quota when `over_quota` (an operator's decision, logged).
pub fn mint_with(
    db: &Database,
    args: &MintArgs,
    over_quota: bool,
    env_key: Option<&str>,
    progress: &dyn Fn(Progress),
) -> anyhow::Result<(LabelRun, MintReport)> {
    let active = db
        .read(labels::active_key)?
        .context("no signing key; create one with `suyuan keys new`")?;
    let settings = MintSettings {
        env_key: env_key.map(str::to_owned),
        font: args.font.clone(),
        labels_per_file: args.labels_per_file.max(1),
        offset_x_mm: args.offset_x_mm,
        offset_y_mm: args.offset_y_mm,
        margin_mm: args.margin_mm,
        ..MintSettings::in_data_dir(&args.data.data_dir)
    };
    // Fail on a bad layout or calibration, a missing key, product or font before reserving anything.
    settings.layout(&args.layout)?;
    settings.signing_key(db, active.key_id)?;
    let product = db.read(|c| sites::get_product(c, ProductId(args.product)))?;
    settings.font()?;
    let run = db.write(|c| {
        labels::create_run_with(
            c,
            RunRequester::CommandLine,
            &NewLabelRun {
                product_id: product.id,
                key_id: active.key_id,
                count: args.count,
                layout: args.layout.clone(),
                host: args.host.clone(),
            },
            labels::RunChecks {
                limits: None,
                over_quota,
            },
        )
    })?;
    if over_quota {
        let quota = db.read(|c| labels::label_quota(c, product.org_id))?;
        tracing::warn!(
            run = %run.id,
            org = %product.org_id,
            count = run.count,
            quota = ?quota.quota,
            used = quota.used,
            "label run minted with --over-quota"
        );
        eprintln!(
            "minted with --over-quota: organisation {} now uses {} labels of a quota of {}",
            product.org_id,
            quota.used,
            quota
                .quota
                .map_or_else(|| "no limit".to_owned(), |q| q.to_string())
        );
    }
    let report = mint_run(db, &settings, &run, &args.out, progress)?;
    let run = db.read(|c| labels::get_run(c, run.id))?;
    Ok((run, report))
}

fn serial(key_id: i64, sequence: i64) -> anyhow::Result<String> {
    let id = KeyId::new(u32::try_from(key_id)?)?;
    Ok(LabelSerial::new(id, u64::try_from(sequence)?)?.grouped())
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, Parser};

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(subcommand)]
        labels: super::LabelsCommand,
    }

    #[derive(Debug, Parser)]
    struct KeysCli {
        #[command(subcommand)]
        keys: super::super::keys::KeysCommand,
    }

    #[test]
    fn command_lines_parse_and_have_help() {
        Cli::command().debug_assert();
        KeysCli::command().debug_assert();
        let parsed = Cli::try_parse_from([
            "labels",
            "mint",
            "--product",
            "3",
            "--count",
            "10",
            "--layout",
            "roll-50x30",
            "--out",
            "/tmp/x",
            "--host",
            "t.cn",
        ]);
        assert!(parsed.is_ok(), "{parsed:?}");
        let bad = Cli::try_parse_from([
            "labels",
            "mint",
            "--product",
            "3",
            "--count",
            "10",
            "--layout",
            "a5",
            "--out",
            "x",
            "--host",
            "t.cn",
        ]);
        assert!(bad.is_err());
        for sub in ["new", "list", "rotate", "export-public"] {
            let help = KeysCli::try_parse_from(["keys", sub, "--help"]).unwrap_err();
            assert_eq!(help.kind(), clap::error::ErrorKind::DisplayHelp, "{sub}");
        }
    }
}
