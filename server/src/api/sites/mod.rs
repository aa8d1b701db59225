//! Sites of an organisation.

pub mod create;
pub mod images;
pub mod list;
pub mod readings;
