//! `suyuan verify chain`: recomputes every batch's hash chain from the stored rows and reports each record
//! that no longer matches. Exits with status 1 when anything was found.

use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use suyuan_core::store::verify;

use super::DataArgs;

/// What to verify.
#[derive(Debug, Clone, Subcommand)]
pub enum VerifyCommand {
    /// Every batch's record chain in the database.
    Chain(ChainArgs),
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
    }
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
