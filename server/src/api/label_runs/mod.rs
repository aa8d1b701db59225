//! Label runs through the API: ask for a run (minted in the background), follow it, download its files.

pub mod create;
pub mod file;
pub mod get;
pub mod list;

use serde::Serialize;
use suyuan_core::model::{LabelActivation, LabelRun, LabelVoid};
use suyuan_label_gen::{KeyId, LabelSerial};
use utoipa::ToSchema;

use crate::minting::{MintSettings, RunProgress};

/// A run as the API shows it: the stored run, its serial range as printed, its progress while it is
/// being minted here, and its files once finished.
#[derive(Debug, Serialize, ToSchema)]
pub struct RunView {
    #[serde(flatten)]
    pub run: LabelRun,
    /// The first label's short code (grouped as printed).
    pub first_serial: String,
    /// The last label's short code.
    pub last_serial: String,
    /// While this server mints the run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub progress: Option<RunProgress>,
    /// The PDFs and the manifest, downloadable once the run is finished.
    pub files: Vec<RunFile>,
}

/// One file of a run.
#[derive(Debug, Serialize, ToSchema)]
pub struct RunFile {
    pub name: String,
    pub bytes: u64,
    /// Where to download it (same credentials as the run).
    pub href: String,
}

/// A run with its activations and voids (the detail view).
#[derive(Debug, Serialize, ToSchema)]
pub struct RunDetail {
    #[serde(flatten)]
    pub view: RunView,
    pub activations: Vec<LabelActivation>,
    pub voids: Vec<LabelVoid>,
}

impl RunView {
    /// The view of `run`; files are looked up in the minter's folder for the run (runs minted from
    /// the command line keep their files where the operator put them, and list none here).
    pub fn of(
        run: LabelRun,
        settings: Option<&MintSettings>,
        progress: Option<RunProgress>,
    ) -> Self {
        let files = match (settings, &run.output) {
            (Some(settings), Some(output)) => {
                let dir = settings.run_dir(run.id);
                output
                    .lines()
                    .filter_map(|name| {
                        let bytes = std::fs::metadata(dir.join(name)).ok()?.len();
                        Some(RunFile {
                            name: name.to_owned(),
                            bytes,
                            href: format!("/api/v1/label-runs/{}/files/{name}", run.id),
                        })
                    })
                    .collect()
            }
            _ => Vec::new(),
        };
        RunView {
            first_serial: serial(run.key_id, run.first_sequence),
            last_serial: serial(run.key_id, run.last_sequence()),
            run,
            progress,
            files,
        }
    }
}

/// The grouped serial of a key id and sequence (both range-checked by the database).
pub(crate) fn serial(key_id: i64, sequence: i64) -> String {
    u32::try_from(key_id)
        .ok()
        .and_then(|k| KeyId::new(k).ok())
        .zip(u64::try_from(sequence).ok())
        .and_then(|(k, s)| LabelSerial::new(k, s).ok())
        .map(|s| s.grouped())
        .unwrap_or_default()
}
