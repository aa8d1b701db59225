//! The gateway's own state, for operators.

pub mod refusals;
