//! `suyuan keys new | list | rotate | export-public`: the platform's label signing keys.
//!
//! A private key is written once, to an owner-only file `DATA/keys/<id>.key`, and never printed; only
//! its public half goes to the database, from where every replica publishes and verifies with it.
//! Deployments that keep keys in a secret store give the minting process `SUYUAN_SIGNING_KEY=<id>:<hex>`
//! instead of a file.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};
use suyuan_core::model::SigningKeyInfo;
use suyuan_core::store::labels;
use suyuan_core::Database;
use suyuan_label_gen::keystore::{hex, KeyStore};
use suyuan_label_gen::KeyId;

use super::DataArgs;

/// What to do with the keys.
#[derive(Debug, Clone, Subcommand)]
pub enum KeysCommand {
    /// Create a signing key (owner-only file DATA/keys/<id>.key) and register its public half; new
    /// labels are signed with it.
    New(KeysArgs),
    /// List the registered keys, which one signs new labels, and whether this machine holds each
    /// private key.
    List(KeysArgs),
    /// Create a new key for new labels and retire the others (labels they signed keep verifying).
    Rotate(KeysArgs),
    /// Print the public keys document (as served at /.well-known/suyuan/keys.json), or write it to a file.
    ExportPublic(ExportArgs),
}

/// Options shared by the key commands.
#[derive(Debug, Clone, Args)]
pub struct KeysArgs {
    #[command(flatten)]
    pub data: DataArgs,
}

/// Options of `suyuan keys export-public`.
#[derive(Debug, Clone, Args)]
pub struct ExportArgs {
    #[command(flatten)]
    pub data: DataArgs,
    /// Write the document to this file instead of standard output.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// Runs a key command.
pub fn run(cmd: KeysCommand) -> anyhow::Result<()> {
    match cmd {
        KeysCommand::New(args) => {
            let key = create(&args.data, false)?;
            println!("{}", describe(&key, true, true));
        }
        KeysCommand::Rotate(args) => {
            let key = create(&args.data, true)?;
            println!("{}", describe(&key, true, true));
            println!(
                "older keys are retired: they sign no new labels, and their labels still verify"
            );
        }
        KeysCommand::List(args) => {
            let db = args.data.open()?;
            let keys = db.read(labels::list_keys)?;
            let active = keys
                .iter()
                .filter(|k| k.retired_at.is_none())
                .map(|k| k.key_id)
                .max();
            if keys.is_empty() {
                println!("no signing keys; create one with `suyuan keys new`");
            }
            let store = KeyStore::in_data_dir(&args.data.data_dir);
            for k in &keys {
                let here = key_id(k.key_id).is_ok_and(|id| store.has(id));
                println!("{}", describe(k, Some(k.key_id) == active, here));
            }
        }
        KeysCommand::ExportPublic(args) => {
            let db = args.data.open()?;
            let keys = db.read(labels::list_keys)?;
            let text = serde_json::to_string_pretty(&crate::api::labels::document(&keys))?;
            match args.out {
                Some(path) => {
                    std::fs::write(&path, format!("{text}\n"))
                        .with_context(|| format!("writing {}", path.display()))?;
                    println!("wrote {} public key(s) to {}", keys.len(), path.display());
                }
                None => println!("{text}"),
            }
        }
    }
    Ok(())
}

/// Creates a key with the next free id, registers it (retiring the others when `rotate`), and removes
/// the file again if the database refused it.
pub fn create(data: &DataArgs, rotate: bool) -> anyhow::Result<SigningKeyInfo> {
    let db = data.open()?;
    create_in(&db, &KeyStore::in_data_dir(&data.data_dir), rotate)
}

/// [`create`] over an open database and a key folder (also used to give the demo county a key).
pub fn create_in(db: &Database, store: &KeyStore, rotate: bool) -> anyhow::Result<SigningKeyInfo> {
    if !rotate {
        if let Some(active) = db.read(labels::active_key)? {
            anyhow::bail!(
                "key {:02} already signs new labels; use `suyuan keys rotate` to replace it",
                active.key_id
            );
        }
    }
    let id = db.read(labels::next_key_id)?;
    let key_id = key_id(id)?;
    let key = store.create(key_id)?;
    let public = hex(&key.verifying_key().to_bytes());
    let registered = db.write(|c| {
        let info = labels::register_key(c, id, &public)?;
        if rotate {
            labels::retire_other_keys(c, id)?;
        }
        Ok(info)
    });
    match registered {
        Ok(info) => Ok(info),
        Err(e) => {
            let _ = store.remove(key_id);
            Err(e.into())
        }
    }
}

fn key_id(id: i64) -> anyhow::Result<KeyId> {
    Ok(KeyId::new(
        u32::try_from(id).context("key id out of range")?,
    )?)
}

fn describe(k: &SigningKeyInfo, active: bool, private_here: bool) -> String {
    format!(
        "key {:02}  {}  {}  created {}{}{}{}",
        k.key_id,
        k.algorithm,
        k.public_key,
        k.created_at.format("%Y-%m-%d %H:%M"),
        match k.retired_at {
            Some(t) => format!("  retired {}", t.format("%Y-%m-%d %H:%M")),
            None => String::new(),
        },
        if active { "  [signs new labels]" } else { "" },
        if private_here {
            "  [private key here]"
        } else {
            ""
        },
    )
}
