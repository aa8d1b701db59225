//! Devices: sensors and cameras registered to a site by an operator, who may disable, re-enable and
//! rotate their broker credentials.

pub mod create;
pub mod credentials;
pub mod disable;
pub mod enable;
pub mod get;
pub mod list;
