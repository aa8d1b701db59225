//! The crate's one error type, and its policy.
//!
//! The policy follows the delivery guarantee. A message is either *refused* — its bytes are wrong
//! and will stay wrong however often the broker redelivers it — or it *cannot be kept now* — the
//! disk or the database failed. The two must never be confused:
//!
//! - [`Error::Refused`] carries a [`Refusal`]: acknowledge the message, count it, store nothing.
//! - Every other variant means "not stored": do **not** acknowledge; the broker redelivers it (or
//!   the spool keeps it), and the operator is told through the log.
//!
//! Pure parsing functions (topics, telemetry) return `Result<_, Refusal>` directly, because they
//! cannot fail in the second way; the functions that touch the disk return [`Error`].

use std::path::PathBuf;

use crate::counters::Refusal;

/// Everything that can go wrong in the gateway's core.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The message itself is wrong: acknowledge, count, do not store.
    #[error("refused: {0}")]
    Refused(#[from] Refusal),
    /// A setting is invalid; the gateway does not start.
    #[error("invalid setting {setting}: {problem}")]
    Config {
        /// The setting's name as in [`GatewayConfig`](crate::GatewayConfig).
        setting: &'static str,
        /// What is wrong with it.
        problem: String,
    },
    /// A file operation failed.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done ("write", "rename", "fsync", ...).
        action: &'static str,
        /// The file or folder.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// Appending would take the spool past its bound: do not acknowledge; the broker keeps the
    /// message until the database is back and the spool drains.
    #[error("spool is full: {used} of {max} bytes used, record needs {needed}")]
    SpoolFull {
        /// Bytes the spool's segment files take now.
        used: u64,
        /// The configured bound.
        max: u64,
        /// Bytes the refused record would take, framing included.
        needed: u64,
    },
    /// Another process holds the spool folder; two writers would corrupt it.
    #[error("spool folder {0} is in use by another process")]
    SpoolLocked(PathBuf),
    /// A record is larger than one spool segment can hold.
    #[error("a record of {size} bytes is larger than the spool segment size of {max} bytes")]
    RecordTooLarge {
        /// Bytes of the record.
        size: u64,
        /// The segment size.
        max: u64,
    },
    /// A spool file holds something that is not what the spool wrote there.
    #[error("spool file {path} is damaged at byte {offset}: {problem}")]
    SpoolCorrupt {
        /// The segment or cursor file.
        path: PathBuf,
        /// Where the damage starts.
        offset: u64,
        /// What is wrong.
        problem: &'static str,
    },
    /// A drain confirmation names a position the spool never handed out.
    #[error("spool position {0} is not one that was read")]
    BadSpoolPosition(String),
}

impl Error {
    /// The refusal, when the message itself is at fault (acknowledge and count it).
    pub fn refusal(&self) -> Option<&Refusal> {
        match self {
            Error::Refused(r) => Some(r),
            _ => None,
        }
    }

    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        Error::Io {
            action,
            path: path.into(),
            source,
        }
    }
}
