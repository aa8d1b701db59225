//! Accounts, managed by operators.

pub mod create;
pub mod list;
