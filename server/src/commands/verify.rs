//! `suyuan verify chain`: recomputes every batch's hash chain from the stored rows and reports each record
//! that no longer matches. `suyuan verify label URL --keys keys.json`: checks a label's signature offline,
//! with only the published public keys (no database, no network). Both exit with status 1 when the
//! answer is not clean (tampering found; a label that is not genuine).

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use suyuan_core::store::verify;
use suyuan_label_gen::{PublicKeysDocument, Verdict};

use super::DataArgs;

/// What to verify.
#[derive(Debug, Clone, Subcommand)]
pub enum VerifyCommand {
    /// Every batch's record chain in the database.
    Chain(ChainArgs),
    /// A label's signature, offline, against the public keys document (`/.well-known/suyuan/keys.json`).
    Label(LabelArgs),
}

/// Options of `suyuan verify label`.
#[derive(Debug, Clone, Args)]
pub struct LabelArgs {
    /// The label URL as scanned (any letter case), its path, or the 169 digits.
    pub code: String,
    /// The public keys document, saved from `/.well-known/suyuan/keys.json` or `suyuan keys export-public`.
    #[arg(long)]
    pub keys: PathBuf,
    /// Print the verdict as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Options of `suyuan verify chain`.
#[derive(Debug, Clone, Args)]
pub struct ChainArgs {
    #[command(flatten)]
    pub data: DataArgs,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Runs a verification; `Ok(false)` when problems were found.
pub fn run(cmd: VerifyCommand) -> anyhow::Result<bool> {
    match cmd {
        VerifyCommand::Chain(args) => chain(args),
        VerifyCommand::Label(args) => label(&args),
    }
}

fn label(args: &LabelArgs) -> anyhow::Result<bool> {
    let text = std::fs::read_to_string(&args.keys)
        .with_context(|| format!("reading {}", args.keys.display()))?;
    let keys = PublicKeysDocument::from_json(&text)
        .and_then(|doc| doc.verifying_keys())
        .with_context(|| format!("{} is not a public keys document", args.keys.display()))?;
    let (verdict, serial, detail) = match suyuan_label_gen::verify(&args.code, &keys) {
        Verdict::Genuine { serial, key_id } => {
            ("genuine", Some(serial), format!("signed by key {key_id}"))
        }
        Verdict::InvalidSignature { serial } => (
            "invalid_signature",
            Some(serial),
            "the signature does not match: counterfeit or edited".to_owned(),
        ),
        Verdict::UnknownKey { serial, key_id } => (
            "unknown_key",
            Some(serial),
            format!("key {key_id} is not in the keys document"),
        ),
        Verdict::Malformed(why) => ("malformed", None, why.to_string()),
    };
    if args.json {
        println!(
            "{}",
            serde_json::json!({
                "verdict": verdict,
                "serial": serial.map(|s| s.to_string()),
                "short_code": serial.map(|s| s.grouped()),
                "detail": detail,
            })
        );
    } else {
        match serial {
            Some(s) => println!("{verdict}: serial {} ({detail})", s.grouped()),
            None => println!("{verdict}: {detail}"),
        }
    }
    Ok(verdict == "genuine")
}

fn chain(args: ChainArgs) -> anyhow::Result<bool> {
    let db = args.data.open()?;
    let bar = ProgressBar::new_spinner();
    bar.set_style(ProgressStyle::with_template("{spinner} {msg}")?);
    let report =
        db.read(|c| verify::verify_chains(c, |n| bar.set_message(format!("{n} records checked"))))?;
    bar.finish_and_clear();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "checked {} records in {} batches",
            report.records, report.batches
        );
        for issue in &report.issues {
            match (issue.record_id, issue.seq) {
                (Some(id), Some(seq)) => println!(
                    "TAMPERED batch {} record {} (seq {}): {}",
                    issue.batch_id, id, seq, issue.problem
                ),
                _ => println!("TAMPERED batch {}: {}", issue.batch_id, issue.problem),
            }
        }
        if report.issues.is_empty() {
            println!("all chains intact");
        } else {
            println!("{} problem(s) found", report.issues.len());
        }
    }
    Ok(report.issues.is_empty())
}
