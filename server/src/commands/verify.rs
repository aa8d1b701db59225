//! `suyuan verify chain`: recomputes every batch's hash chain from the stored rows and reports each record
//! that no longer matches, each batch whose status or custody its records contradict, and — against the
//! signed anchors (files given with `--anchor`, those under `DATA/anchors`, those in the database) — each
//! anchored batch whose tail was cut off or rewritten. `suyuan verify label URL --keys keys.json`: checks a label's signature offline,
//! with only the published public keys (no database, no network). Both exit with status 1 when the
//! answer is not clean (tampering found; a label that is not genuine).

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use suyuan_core::store::verify;
use suyuan_label_gen::{KeyId, LabelSignature, PublicKeysDocument, Verdict};

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
    /// An anchor kept outside the database (saved from `/.well-known/suyuan/anchors/latest.json` or
    /// `DATA/anchors/`); repeatable. Anchors under `DATA/anchors` and in the database are checked too.
    #[arg(long = "anchor")]
    pub anchors: Vec<PathBuf>,
    /// Check anchor signatures against this public keys document (saved from
    /// `/.well-known/suyuan/keys.json`) rather than the keys in the database.
    #[arg(long)]
    pub keys: Option<PathBuf>,
}

/// What checking one anchor found.
#[derive(Debug, Clone, serde::Serialize)]
pub struct AnchorOutcome {
    /// Where the anchor came from: a file, or `database anchor N`.
    pub source: String,
    pub created_at: Option<String>,
    pub batches: Option<i64>,
    pub records: Option<i64>,
    /// `valid`, `invalid_signature`, `unknown_key`, `digest_mismatch` or `unreadable`.
    pub signature: String,
    /// Why the anchor itself cannot be trusted, when it cannot.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
    /// Anchored batches that no longer match (also in the report's `issues`).
    pub mismatches: usize,
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

/// Everything `suyuan verify chain` found.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FullReport {
    #[serde(flatten)]
    pub chains: verify::ChainReport,
    /// Each anchor checked.
    pub anchors: Vec<AnchorOutcome>,
    /// No issue and every anchor trustworthy.
    pub intact: bool,
}

/// Checks the chains, the derived columns and the anchors, without printing.
pub fn check_chain(args: &ChainArgs, progress: impl FnMut(u64)) -> anyhow::Result<FullReport> {
    let db = args.data.open()?;
    let mut chains = db.read(|c| verify::verify_chains(c, progress))?;
    let anchors = check_anchors(&db, args, &mut chains.issues)?;
    let intact = chains.issues.is_empty() && anchors.iter().all(|o| o.problem.is_none());
    Ok(FullReport {
        chains,
        anchors,
        intact,
    })
}

fn chain(args: ChainArgs) -> anyhow::Result<bool> {
    let bar = ProgressBar::new_spinner();
    bar.set_style(ProgressStyle::with_template("{spinner} {msg}")?);
    let full = check_chain(&args, |n| bar.set_message(format!("{n} records checked")))?;
    bar.finish_and_clear();
    let (report, outcomes) = (&full.chains, &full.anchors);
    let anchors_ok = outcomes.iter().all(|o| o.problem.is_none());
    if args.json {
        println!("{}", serde_json::to_string_pretty(&full)?);
    } else {
        println!(
            "checked {} records in {} batches",
            report.records, report.batches
        );
        for issue in &report.issues {
            let what = if issue.mismatch.is_some() {
                "MISMATCH"
            } else {
                "TAMPERED"
            };
            match (issue.record_id, issue.seq) {
                (Some(id), Some(seq)) => println!(
                    "{what} batch {} record {} (seq {}): {}",
                    issue.batch_id, id, seq, issue.problem
                ),
                _ => println!("{what} batch {}: {}", issue.batch_id, issue.problem),
            }
        }
        for o in outcomes {
            match &o.problem {
                Some(problem) => println!("ANCHOR {}: {problem}", o.source),
                None => println!(
                    "anchor {} ({}, {} batches): signature valid, {} mismatch(es)",
                    o.source,
                    o.created_at.as_deref().unwrap_or("?"),
                    o.batches.unwrap_or(0),
                    o.mismatches
                ),
            }
        }
        if outcomes.is_empty() {
            println!(
                "no anchor checked: a tail cut off together with its batch's head cannot be seen without one \
                 (make them with `suyuan anchor`, keep copies away from the database)"
            );
        }
        if report.issues.is_empty() && anchors_ok {
            println!("all chains intact");
        } else {
            println!(
                "{} problem(s) found",
                report.issues.len() + outcomes.iter().filter(|o| o.problem.is_some()).count()
            );
        }
    }
    Ok(full.intact)
}

/// Checks every anchor: the files given, those under `DATA/anchors`, those in the database (the same
/// anchor found twice is checked once). An anchor whose signature does not verify is reported and not
/// used; a valid one adds an issue per anchored batch that no longer matches.
fn check_anchors(
    db: &suyuan_core::Database,
    args: &ChainArgs,
    issues: &mut Vec<verify::ChainIssue>,
) -> anyhow::Result<Vec<AnchorOutcome>> {
    use suyuan_core::store::anchors;
    let keys = match &args.keys {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            PublicKeysDocument::from_json(&text)
                .and_then(|doc| doc.verifying_keys())
                .with_context(|| format!("{} is not a public keys document", path.display()))?
        }
        None => {
            let stored = db.read(suyuan_core::store::labels::list_keys)?;
            crate::api::labels::document(&stored).verifying_keys()?
        }
    };
    let mut sources: Vec<(String, Result<anchors::AnchorDocument, String>)> = Vec::new();
    let mut files = args.anchors.clone();
    let dir = super::anchor::anchor_dir(&args.data.data_dir);
    if let Ok(entries) = std::fs::read_dir(&dir) {
        let mut found: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("anchor-") && n.ends_with(".json"))
            })
            .collect();
        found.sort();
        files.extend(found);
    }
    for path in files {
        let doc = std::fs::read_to_string(&path)
            .map_err(|e| e.to_string())
            .and_then(|text| anchors::parse_document(&text));
        sources.push((path.display().to_string(), doc));
    }
    for (id, doc) in db.read(anchors::all)? {
        sources.push((format!("database anchor {id}"), Ok(doc)));
    }
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    for (source, doc) in sources {
        let doc = match doc {
            Ok(doc) => doc,
            Err(why) => {
                out.push(AnchorOutcome {
                    source,
                    created_at: None,
                    batches: None,
                    records: None,
                    signature: "unreadable".into(),
                    problem: Some(format!("not an anchor document: {why}")),
                    mismatches: 0,
                });
                continue;
            }
        };
        if !seen.insert((doc.created_at_ms, doc.digest.clone(), doc.signature.clone())) {
            continue;
        }
        let mut outcome = AnchorOutcome {
            source: source.clone(),
            created_at: Some(doc.created_at.clone()),
            batches: Some(doc.batches),
            records: Some(doc.records),
            signature: "valid".into(),
            problem: None,
            mismatches: 0,
        };
        let key = u32::try_from(doc.key_id)
            .ok()
            .and_then(|id| KeyId::new(id).ok())
            .and_then(|id| keys.get(id));
        let signature = hex_signature(&doc.signature);
        let counted = i64::try_from(doc.heads.len()).ok() == Some(doc.batches)
            && doc.heads.iter().map(|h| h.1).sum::<i64>() == doc.records;
        if !doc.digest_matches() || !counted {
            outcome.signature = "digest_mismatch".into();
            outcome.problem = Some(
                "the listed heads do not match the anchor's digest or counts: the anchor was edited"
                    .into(),
            );
        } else if let Some(key) = key {
            if !signature.is_some_and(|s| key.verify_anchor(&doc.statement(), &s)) {
                outcome.signature = "invalid_signature".into();
                outcome.problem = Some(format!(
                    "the signature does not verify with key {}: the anchor is forged or edited",
                    doc.key_id
                ));
            }
        } else {
            outcome.signature = "unknown_key".into();
            outcome.problem = Some(format!("key {} is not among the public keys", doc.key_id));
        }
        if outcome.problem.is_none() {
            let found = db.read(|c| anchors::check(c, &doc, &source))?;
            outcome.mismatches = found.len();
            issues.extend(found);
        }
        out.push(outcome);
    }
    Ok(out)
}

fn hex_signature(text: &str) -> Option<LabelSignature> {
    let bytes: Vec<u8> = (0..text.len())
        .step_by(2)
        .map(|i| {
            text.get(i..i + 2)
                .and_then(|b| u8::from_str_radix(b, 16).ok())
        })
        .collect::<Option<Vec<u8>>>()?;
    let bytes: [u8; 64] = bytes.try_into().ok()?;
    Some(LabelSignature::from_bytes(bytes))
}
