//! The Suyuan domain: the model of a county's traceability data, its storage on SQLite or PostgreSQL, the
//! hash chain that makes records tamper-evident, the rules enforced when a record is captured, and the one
//! place where access is decided.
//!
//! Layout:
//! - [`model`]: organisations, users, sites, products, batches, records and their typed details, alerts;
//! - [`db`]: the connection (one diesel `MultiConnection` over both backends), the pool and the migrations;
//! - [`schema`]: the portable diesel schema;
//! - [`chain`]: the canonical encoding of a record and the SHA-256 chain over a batch's records;
//! - [`rules`]: the platform's rules as pure functions (records and their batch's state, scans, sensors);
//! - [`texts`]: the words the rules store (alert messages, status reasons);
//! - [`policy`]: who may do what; every write and every private read asks it;
//! - [`store`]: every query, one module per aggregate; nothing outside this crate imports diesel;
//! - [`export`]: tracking events written as files: the FSMA 204-style spreadsheet (CSV, XLSX) and the
//!   EPCIS 2.0 JSON-LD document;
//! - [`auth`]: passwords (argon2) and session / API tokens;
//! - [`time`]: stored milliseconds, RFC 3339 in the API, China time for days and dates;
//! - [`writer`]: SQLite's group commit (writes on their callers' threads, one fsync per group);
//! - [`ids`]: newtype ids; [`error`]: the one error type and its stable codes;
//! - [`region`]: China's administrative divisions (names, coordinates) and the IP-to-region file, for the
//!   coarse place of a scan.

pub mod auth;
pub mod chain;
pub mod db;
pub mod error;
pub mod export;
pub mod ids;
pub mod model;
pub mod policy;
pub mod region;
pub mod rules;
pub mod schema;
pub mod store;
pub mod texts;
pub mod time;
pub mod writer;

pub use db::Database;
pub use error::{CoreError, CoreResult};
pub use ids::*;
