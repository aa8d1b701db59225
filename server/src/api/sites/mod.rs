//! Sites of an organisation.

pub mod create;
pub mod list;
