//! The crate's one error type.
//!
//! Policy: every failure a caller can act on has its own variant with the facts needed to act
//! (which key id, which setting, which file), and messages never contain key material. Parsing
//! problems that a person caused have their own small enums ([`SerialError`], [`Malformed`]) because
//! callers show those to the person; everything else is an [`Error`]. The server maps variants to
//! HTTP statuses; the command line prints the message.
//!
//! [`Malformed`]: crate::code::Malformed

use std::path::PathBuf;

use crate::serial::{KeyId, SerialError};

/// Everything that can go wrong while minting and laying out labels.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A serial or key id is invalid.
    #[error(transparent)]
    Serial(#[from] SerialError),
    /// A key was asked to sign a serial that names another key.
    #[error("serial names key {serial_key} but the signing key is {signing_key}")]
    KeyIdMismatch {
        /// Key id in the serial.
        serial_key: KeyId,
        /// Id of the key asked to sign.
        signing_key: KeyId,
    },
    /// Published public key bytes are not a valid Ed25519 key.
    #[error("public key {0} is not a valid Ed25519 key")]
    InvalidPublicKey(KeyId),
    /// The host cannot be put into the QR prefix (alphanumeric mode, upper case).
    #[error("host {host:?} cannot be used in a label URL: {reason}")]
    InvalidHost {
        /// The host as given.
        host: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The QR encoder failed (e.g. the content does not fit any version).
    #[error("QR encoding failed: {0}")]
    Qr(String),
    /// No CJK font was found and none was configured.
    #[error(
        "no CJK TrueType font found; set {setting} to a .ttf/.ttc file \
         (e.g. install Debian's fonts-wqy-microhei: /usr/share/fonts/truetype/wqy/wqy-microhei.ttc); \
         looked in: {searched}"
    )]
    FontNotFound {
        /// The setting to use (`SUYUAN_LABEL_FONT`).
        setting: &'static str,
        /// The paths that were tried.
        searched: String,
    },
    /// The configured font cannot be used.
    #[error("font {path} (from {setting}) cannot be used: {reason}")]
    FontUnusable {
        /// The font file.
        path: PathBuf,
        /// Where the path came from (the setting name, or "system search").
        setting: &'static str,
        /// Why not.
        reason: String,
    },
    /// The font has no glyph for a character of the label text.
    #[error("font {path} has no glyph for {ch:?} in {text:?}; choose another font with SUYUAN_LABEL_FONT")]
    MissingGlyph {
        /// The font file.
        path: PathBuf,
        /// The missing character.
        ch: char,
        /// The text it occurs in.
        text: String,
    },
    /// The label content does not fit the chosen layout.
    #[error("label content does not fit layout {layout}: {reason}")]
    DoesNotFit {
        /// Layout name.
        layout: String,
        /// What does not fit.
        reason: String,
    },
    /// A layout or print setting is invalid.
    #[error("invalid layout settings: {0}")]
    InvalidLayout(String),
    /// Building or serialising the PDF failed.
    #[error("PDF generation failed: {0}")]
    Pdf(String),
    /// Reading or writing a file failed.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done ("writing", "reading", "creating directory").
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}
