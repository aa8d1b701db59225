//! Organisations: created by operators; members see their own, regulators and operators all.

pub mod create;
pub mod get;
pub mod label_quota;
pub mod list;
