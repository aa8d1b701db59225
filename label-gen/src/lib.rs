//! Label generation: minting signed unique label codes and laying them out as printable PDFs, in bulk.
//!
//! A label carries a QR code whose URL holds the label's serial and a full Ed25519 signature over it,
//! so that anyone with the public key can tell a genuine label offline and nobody can mint or edit
//! one. The path from a number to a printed sheet, one module per step:
//!
//! - [`serial`] — the 13-digit serial (key id, sequence, ISO 7064 check digit), printed as the short code;
//! - [`sign`] — Ed25519 over a domain-separated message; keys with ids, public keys by id for rotation;
//! - [`code`] — serial + signature as 169 digits in an `https://host/…` URL, parsing and verdicts;
//! - [`qr`] — the URL as a QR code in two segments at level M with a chosen mask, as 1-bit rows;
//! - [`pdf`] — labels on A4 sheets or thermal rolls, CJK font embedded as a subset;
//! - [`mint`] — a whole run: sign, encode, lay out and write several bounded PDF files;
//! - [`keystore`] — private key files (owner-only) or the environment, and the public keys document;
//! - [`error`] — the crate's one error type and its policy.
//!
//! Examples: `sample_pdfs` writes a sample of each layout, renders it at 203 dpi and decodes every
//! QR code with zbarimg; `mint_bench` measures a run end to end and per phase. Rendered pages of
//! each layout are in `label-gen/docs/`.
//!
//! The tests need a CJK TrueType font (Debian `fonts-wqy-microhei`, or `SUYUAN_LABEL_FONT`) and
//! `pdftoppm` (Debian `poppler-utils`): they render PDF pages and decode the codes back.
//! The workspace's integration tests scan printed runs back with `zbarimg` (Debian `zbar-tools`) too
//! (`tests/integration/printed_labels.rs`, `cargo test -p suyuan-server --test integration
//! printed_labels`): a run of each layout, printed 1-bit at 203 dpi, every label checked against the
//! manifest. Without the tools they are skipped with a message, unless `CI` or
//! `SUYUAN_REQUIRE_TOOLS` is set.
//!
//! No database and no server here: serial allocation, label state and the HTTP endpoints live in
//! the crates that call this one.

pub mod code;
pub mod error;
pub mod keystore;
pub mod mint;
pub mod pdf;
pub mod qr;
pub mod serial;
pub mod sign;

pub use code::{verify, verify_code, LabelCode, Malformed, Verdict};
pub use error::Error;
pub use keystore::{KeyError, KeyStore, PublicKeysDocument, PublishedKey, SIGNING_KEY_ENV};
pub use mint::{run, MintReport, MintRequest, PhaseTimes, Progress, RunConfig};
pub use pdf::{
    LabelFont, LabelLayout, LabelSheet, LabelTemplate, Margins, PageLayout, PrintSettings,
    QrImageMode, SheetOptions, FONT_SETTING,
};
pub use qr::{Bitmap, MaskChoice, QrEncoder, QrMatrix};
pub use serial::{KeyId, LabelSerial, SerialError};
pub use sign::{LabelSignature, LabelSigningKey, LabelVerifyingKey, VerifyingKeySet};
