//! Devices: sensors and cameras registered to a site by an operator.

pub mod create;
pub mod get;
pub mod list;
