//! Splits, merges and transformations.

pub mod create;
