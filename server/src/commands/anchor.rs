//! `suyuan anchor`: signs an anchor of every batch's chain head now, stores it and writes it under
//! `DATA/anchors/` (`anchor-N.json` and `latest.json`). `suyuan serve` makes one every
//! `SUYUAN_ANCHOR_INTERVAL` ([`Anchorer`]). What an anchor is for: `suyuan_core::store::anchors`.
//!
//! The files and the published `/.well-known/suyuan/anchors/` documents are the point: copy them somewhere
//! the database's administrator cannot write (another machine, a notary, a regulator's mailbox), and
//! `suyuan verify chain --anchor FILE` shows whether records anchored then have since been cut off.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use suyuan_core::store::{anchors, labels};
use suyuan_core::{CoreError, Database};
use suyuan_label_gen::keystore::hex;

use super::DataArgs;
use crate::minting::MintSettings;

/// Options of `suyuan anchor`.
#[derive(Debug, Clone, Args)]
pub struct AnchorArgs {
    #[command(flatten)]
    pub data: DataArgs,
}

/// Makes an anchor now and prints where it was written.
pub fn run(args: AnchorArgs) -> anyhow::Result<()> {
    let db = args.data.open()?;
    let settings = MintSettings::in_data_dir(&args.data.data_dir);
    let (id, doc, path) =
        make(&db, &settings, None)?.context("no anchor was made (one was made just now)")?;
    println!(
        "anchor {id}: {} batches, {} records, digest {}, signed by key {}; written to {}",
        doc.batches,
        doc.records,
        doc.digest,
        doc.key_id,
        path.display()
    );
    Ok(())
}

/// The folder of the anchor files.
pub fn anchor_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("anchors")
}

/// Signs and stores an anchor with the active signing key and writes its files, unless `min_interval` is
/// given and a younger anchor exists (another replica made it): then `None`.
pub fn make(
    db: &Database,
    settings: &MintSettings,
    min_interval: Option<Duration>,
) -> anyhow::Result<Option<(i64, anchors::AnchorDocument, PathBuf)>> {
    let active = db
        .read(labels::active_key)?
        .context("no signing key to sign anchors with; create one with `suyuan keys new`")?;
    let key = settings.signing_key(db, active.key_id)?;
    let min_ms = min_interval.map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    let made = db.write(|c| {
        anchors::create(c, min_ms, |statement| {
            let signature = key.sign_anchor(statement);
            Ok((i64::from(key.id().get()), hex(signature.as_bytes())))
        })
    })?;
    let Some((id, doc)) = made else {
        return Ok(None);
    };
    let dir = anchor_dir(&settings.data_dir);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let text = serde_json::to_string(&doc)?;
    let path = dir.join(format!("anchor-{id:08}.json"));
    write_atomically(&path, &text)?;
    write_atomically(&dir.join("latest.json"), &text)?;
    tracing::info!(anchor = id, batches = doc.batches, records = doc.records, digest = %doc.digest, "chain anchor signed");
    Ok(Some((id, doc, path)))
}

fn write_atomically(path: &Path, text: &str) -> anyhow::Result<()> {
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, text).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// Parses an interval such as `90s`, `30m`, `1h`, `1d` (a bare number is seconds); `0` (zero) is off.
pub fn parse_interval(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (digits, unit) = text.split_at(
        text.find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len()),
    );
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("{text:?} is not an interval like 30m, 1h or 1d"))?;
    let secs = match unit {
        "" | "s" => n,
        "m" => n.saturating_mul(60),
        "h" => n.saturating_mul(3600),
        "d" => n.saturating_mul(86_400),
        _ => return Err(format!("{text:?}: the unit is s, m, h or d")),
    };
    Ok(Duration::from_secs(secs))
}

/// The periodic anchor of `suyuan serve`: a thread that makes an anchor every interval. Several replicas
/// on one PostgreSQL each run one; an anchor younger than the interval (made by another replica) makes
/// them skip their turn, and the advisory lock in `anchors::create` stops two from making one at once.
pub struct Anchorer {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Anchorer {
    /// Starts the thread; the first anchor is made once an interval has passed since the newest one.
    pub fn start(
        db: Database,
        settings: MintSettings,
        interval: Duration,
    ) -> std::io::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("chain-anchors".into())
            .spawn(move || {
                // Replicas started together would otherwise all look at once; the lock sorts them out
                // anyway, this only spares the work. Allow a little slack for timer jitter.
                let slack = interval / 20;
                let tick = interval.min(Duration::from_secs(60)).max(Duration::from_millis(200));
                let mut last_error = String::new();
                while !flag.load(Ordering::Relaxed) {
                    match make(&db, &settings, Some(interval.saturating_sub(slack))) {
                        Ok(_) => last_error.clear(),
                        Err(e) => {
                            // Logged when it changes, not every minute while, say, no key exists.
                            let text = format!("{e:#}");
                            if text != last_error {
                                match e.downcast_ref::<CoreError>() {
                                    Some(CoreError::Pool(_)) => tracing::warn!(error = %text, "chain anchor postponed: database unavailable"),
                                    _ => tracing::error!(error = %text, "chain anchor not made"),
                                }
                                last_error = text;
                            }
                        }
                    }
                    let mut waited = Duration::ZERO;
                    while waited < tick && !flag.load(Ordering::Relaxed) {
                        std::thread::sleep(Duration::from_millis(200));
                        waited += Duration::from_millis(200);
                    }
                }
            })?;
        Ok(Anchorer {
            stop,
            thread: Some(thread),
        })
    }

    /// Stops the thread (after the anchor it is making, if any).
    pub fn stop(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    #[test]
    fn intervals() {
        assert_eq!(super::parse_interval("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(super::parse_interval("90"), Ok(Duration::from_secs(90)));
        assert_eq!(super::parse_interval("0"), Ok(Duration::ZERO));
        assert!(super::parse_interval("1w").is_err());
        // As `suyuan serve` parses it, from its flag and by default.
        #[derive(Debug, clap::Parser)]
        struct Cli {
            #[command(flatten)]
            serve: super::super::serve::ServeArgs,
        }
        use clap::{CommandFactory, Parser};
        Cli::command().debug_assert();
        let parsed = Cli::try_parse_from(["serve"]).unwrap();
        assert_eq!(parsed.serve.anchor_interval, Duration::from_secs(3600));
        assert_eq!(parsed.serve.label_runs_per_org, 2);
        let off = Cli::try_parse_from(["serve", "--anchor-interval", "0"]).unwrap();
        assert!(off.serve.anchor_interval.is_zero());
        assert!(super::parse_interval("h").is_err());
    }
}
