//! Logging in and out, and API tokens.

pub mod login;
pub mod logout;
pub mod me;
pub mod tokens;
