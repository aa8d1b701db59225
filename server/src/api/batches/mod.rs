//! Batches: creation, reading, their records, traces, recalls and inspection requests.

pub mod capture;
pub mod create;
pub mod get;
pub mod inspection_request;
pub mod list;
pub mod recall;
pub mod records;
pub mod trace;
