//! Where private signing keys live, and the published public keys document.
//!
//! Private keys are files `<data>/keys/<key id>.key` holding the 32 secret bytes in hex, created with
//! mode 0600 in a 0700 folder; a key file that group or others may read is refused (it may have been
//! copied), with a message saying how to fix the mode. For deployments where keys come from a secret
//! store, `SUYUAN_SIGNING_KEY=<id>:<hex>` gives one key through the environment instead.
//!
//! Secret bytes never appear in an error message, a `Debug` output or a log line: errors name the file
//! or the setting, never its content.
//!
//! The public keys document (served at `/.well-known/suyuan/keys.json`, written by `suyuan keys
//! export-public`, read by offline verifiers):
//!
//! ```json
//! {"keys":[{"key_id":1,"algorithm":"Ed25519","public_key":"<64 hex>","created_at":"…","retired_at":null}]}
//! ```

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::serial::KeyId;
use crate::sign::{LabelSigningKey, LabelVerifyingKey, VerifyingKeySet};

/// The environment variable that may carry one signing key as `<id>:<hex>`.
pub const SIGNING_KEY_ENV: &str = "SUYUAN_SIGNING_KEY";

/// Why a key could not be created, loaded or parsed. Messages never contain key material.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The key file exists and may be read by group or others.
    #[error(
        "key file {path} is readable by group or others (mode {mode:o}); \
         run `chmod 600 {path}` and consider the key compromised if others could read it"
    )]
    TooOpen {
        /// The key file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// No key file for this id.
    #[error("no private key {id} in {dir} (and {SIGNING_KEY_ENV} does not give key {id})")]
    Missing {
        /// The key id.
        id: KeyId,
        /// The key folder.
        dir: PathBuf,
    },
    /// A key file with this id already exists.
    #[error("key file {0} already exists; key ids are never reused")]
    Exists(PathBuf),
    /// The key file's content is not 64 hex digits.
    #[error("key file {0} is not a key (expected 64 hex digits)")]
    BadFile(PathBuf),
    /// The environment variable is not `<id>:<64 hex digits>`.
    #[error("{SIGNING_KEY_ENV} must be <key id 0-99>:<64 hex digits>")]
    BadEnv,
    /// Reading or writing failed.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file or folder.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The public keys document cannot be read.
    #[error("public keys document: {0}")]
    BadDocument(String),
}

/// The folder of private key files.
#[derive(Debug, Clone)]
pub struct KeyStore {
    dir: PathBuf,
}

impl KeyStore {
    /// The key folder `<data>/keys`.
    pub fn in_data_dir(data_dir: &Path) -> Self {
        Self::at(data_dir.join("keys"))
    }

    /// A key folder at `dir`.
    pub fn at(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file of key `id`.
    pub fn path(&self, id: KeyId) -> PathBuf {
        self.dir.join(format!("{id}.key"))
    }

    /// Whether a key file for `id` exists.
    pub fn has(&self, id: KeyId) -> bool {
        self.path(id).is_file()
    }

    /// Generates a key with id `id` and writes it to a new owner-only file (never overwriting one).
    pub fn create(&self, id: KeyId) -> Result<LabelSigningKey, KeyError> {
        create_private_dir(&self.dir)?;
        let key = LabelSigningKey::generate(id);
        let path = self.path(id);
        let mut options = OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options.open(&path).map_err(|source| {
            if source.kind() == std::io::ErrorKind::AlreadyExists {
                KeyError::Exists(path.clone())
            } else {
                KeyError::Io {
                    action: "creating",
                    path: path.clone(),
                    source,
                }
            }
        })?;
        let mut text = hex(&key.to_secret_bytes());
        text.push('\n');
        let written = file
            .write_all(text.as_bytes())
            .and_then(|()| file.sync_all());
        wipe(&mut text);
        written.map_err(|source| KeyError::Io {
            action: "writing",
            path: path.clone(),
            source,
        })?;
        Ok(key)
    }

    /// Removes the file of key `id` (to undo a [`KeyStore::create`] whose key could not be registered).
    pub fn remove(&self, id: KeyId) -> Result<(), KeyError> {
        let path = self.path(id);
        fs::remove_file(&path).map_err(|source| KeyError::Io {
            action: "removing",
            path,
            source,
        })
    }

    /// Loads key `id` from its file, refusing a file that group or others may read.
    pub fn load(&self, id: KeyId) -> Result<LabelSigningKey, KeyError> {
        let path = self.path(id);
        let meta = match fs::metadata(&path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(KeyError::Missing {
                    id,
                    dir: self.dir.clone(),
                })
            }
            Err(source) => {
                return Err(KeyError::Io {
                    action: "reading",
                    path,
                    source,
                })
            }
        };
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                return Err(KeyError::TooOpen { path, mode });
            }
        }
        #[cfg(not(unix))]
        let _ = meta;
        let mut text = fs::read_to_string(&path).map_err(|source| KeyError::Io {
            action: "reading",
            path: path.clone(),
            source,
        })?;
        let secret = parse_secret(text.trim());
        wipe(&mut text);
        let secret = secret.ok_or(KeyError::BadFile(path))?;
        Ok(LabelSigningKey::from_secret_bytes(id, &secret))
    }

    /// The key ids that have a file here, ascending.
    pub fn ids(&self) -> Result<Vec<KeyId>, KeyError> {
        let entries = match fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => {
                return Err(KeyError::Io {
                    action: "listing",
                    path: self.dir.clone(),
                    source,
                })
            }
        };
        let mut ids: Vec<KeyId> = entries
            .filter_map(Result::ok)
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                let stem = name.strip_suffix(".key")?;
                (stem.len() == 2)
                    .then(|| stem.parse::<u32>().ok())
                    .flatten()
                    .and_then(|n| KeyId::new(n).ok())
            })
            .collect();
        ids.sort();
        Ok(ids)
    }

    /// The signing key `id`: from `env` (the value of [`SIGNING_KEY_ENV`]) when it gives that id,
    /// otherwise from its file.
    pub fn signing_key(&self, id: KeyId, env: Option<&str>) -> Result<LabelSigningKey, KeyError> {
        if let Some(value) = env.filter(|v| !v.trim().is_empty()) {
            let key = key_from_env(value)?;
            if key.id() == id {
                return Ok(key);
            }
        }
        self.load(id)
    }
}

/// Parses `<id>:<64 hex digits>` (the value of [`SIGNING_KEY_ENV`]).
pub fn key_from_env(value: &str) -> Result<LabelSigningKey, KeyError> {
    let (id, secret) = value.trim().split_once(':').ok_or(KeyError::BadEnv)?;
    let id = id
        .trim()
        .parse::<u32>()
        .ok()
        .and_then(|n| KeyId::new(n).ok())
        .ok_or(KeyError::BadEnv)?;
    let secret = parse_secret(secret.trim()).ok_or(KeyError::BadEnv)?;
    Ok(LabelSigningKey::from_secret_bytes(id, &secret))
}

fn create_private_dir(dir: &Path) -> Result<(), KeyError> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir).map_err(|source| KeyError::Io {
        action: "creating directory",
        path: dir.to_owned(),
        source,
    })
}

fn parse_secret(text: &str) -> Option<[u8; 32]> {
    let bytes = text.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (slot, pair) in out.iter_mut().zip(bytes.chunks_exact(2)) {
        let hi = char::from(pair[0]).to_digit(16)?;
        let lo = char::from(pair[1]).to_digit(16)?;
        *slot = u8::try_from(hi * 16 + lo).ok()?;
    }
    Some(out)
}

/// Overwrites a string that held secret text before it is dropped.
fn wipe(text: &mut String) {
    let len = text.len();
    text.clear();
    text.extend(std::iter::repeat_n('0', len));
    text.clear();
}

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    s
}

/// One published public key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublishedKey {
    /// 0–99, as in the first two digits of the serials it signed.
    pub key_id: u8,
    /// `Ed25519`.
    pub algorithm: String,
    /// 32 bytes, lowercase hex.
    pub public_key: String,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339; a retired key mints no more labels but its labels still verify.
    pub retired_at: Option<String>,
}

/// The public keys document (`/.well-known/suyuan/keys.json`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PublicKeysDocument {
    /// Every key that ever signed labels, by id.
    pub keys: Vec<PublishedKey>,
}

impl PublicKeysDocument {
    /// Parses the JSON document.
    pub fn from_json(text: &str) -> Result<Self, KeyError> {
        serde_json::from_str(text).map_err(|e| KeyError::BadDocument(e.to_string()))
    }

    /// The verifying keys of the document; fails on an unknown algorithm or a key that is not a valid
    /// Ed25519 public key.
    pub fn verifying_keys(&self) -> Result<VerifyingKeySet, KeyError> {
        let mut set = VerifyingKeySet::new();
        for k in &self.keys {
            if k.algorithm != "Ed25519" {
                return Err(KeyError::BadDocument(format!(
                    "key {} uses {:?}; only Ed25519 is known",
                    k.key_id, k.algorithm
                )));
            }
            let id = KeyId::new(u32::from(k.key_id))
                .map_err(|e| KeyError::BadDocument(e.to_string()))?;
            let bytes = parse_secret(&k.public_key).ok_or_else(|| {
                KeyError::BadDocument(format!("key {} is not 64 hex digits", k.key_id))
            })?;
            let key = LabelVerifyingKey::from_bytes(id, &bytes)
                .map_err(|e| KeyError::BadDocument(e.to_string()))?;
            set.insert(key);
        }
        Ok(set)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::serial::LabelSerial;

    fn id(n: u32) -> KeyId {
        KeyId::new(n).unwrap()
    }

    #[test]
    fn create_load_and_refuse_open_files() {
        let dir = tempfile::tempdir().unwrap();
        let store = KeyStore::in_data_dir(dir.path());
        let key = store.create(id(1)).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(store.path(id(1)))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
            let dmode = fs::metadata(store.dir()).unwrap().permissions().mode();
            assert_eq!(dmode & 0o777, 0o700);
        }
        let loaded = store.load(id(1)).unwrap();
        assert_eq!(loaded.verifying_key(), key.verifying_key());
        assert!(matches!(store.create(id(1)), Err(KeyError::Exists(_))));
        assert!(matches!(store.load(id(2)), Err(KeyError::Missing { .. })));
        assert_eq!(store.ids().unwrap(), vec![id(1)]);

        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(store.path(id(1)), fs::Permissions::from_mode(0o644)).unwrap();
            let err = store.load(id(1)).unwrap_err();
            assert!(
                matches!(err, KeyError::TooOpen { mode: 0o644, .. }),
                "{err}"
            );
            let secret = hex(&key.to_secret_bytes());
            assert!(!err.to_string().contains(&secret));
            assert!(err.to_string().contains("chmod 600"));
        }
    }

    #[test]
    fn env_key_and_errors_never_show_the_secret() {
        let dir = tempfile::tempdir().unwrap();
        let store = KeyStore::in_data_dir(dir.path());
        let secret = "11".repeat(32);
        let key = store
            .signing_key(id(7), Some(&format!("07:{secret}")))
            .unwrap();
        assert_eq!(key.id(), id(7));
        // An env key for another id falls back to the (missing) file.
        assert!(matches!(
            store.signing_key(id(8), Some(&format!("7:{secret}"))),
            Err(KeyError::Missing { .. })
        ));
        for bad in [
            secret.clone(),
            format!("100:{secret}"),
            format!("7:{}", &secret[..62]),
            format!("7:{}zz", &secret[..62]),
        ] {
            let err = key_from_env(&bad).unwrap_err();
            assert!(!err.to_string().contains(&secret[..40]), "{err}");
        }
        assert!(!format!("{key:?}").contains(&secret));
    }

    #[test]
    fn public_document_round_trip_verifies() {
        let dir = tempfile::tempdir().unwrap();
        let store = KeyStore::in_data_dir(dir.path());
        let key = store.create(id(3)).unwrap();
        let doc = PublicKeysDocument {
            keys: vec![PublishedKey {
                key_id: 3,
                algorithm: "Ed25519".into(),
                public_key: hex(&key.verifying_key().to_bytes()),
                created_at: "2026-11-22T00:00:00Z".into(),
                retired_at: None,
            }],
        };
        let text = serde_json::to_string(&doc).unwrap();
        let back = PublicKeysDocument::from_json(&text).unwrap();
        assert_eq!(back, doc);
        let set = back.verifying_keys().unwrap();
        let serial = LabelSerial::new(id(3), 42).unwrap();
        let code = crate::LabelCode::mint(&key, serial).unwrap();
        assert!(matches!(
            crate::verify(&code.to_url("h.cn"), &set),
            crate::Verdict::Genuine { .. }
        ));
        let mut bad = doc.clone();
        bad.keys[0].algorithm = "RSA".into();
        assert!(bad.verifying_keys().is_err());
    }
}
