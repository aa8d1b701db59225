//! Alerts raised by the rules.

pub mod list;
