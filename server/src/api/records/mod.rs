//! Records outside a single batch's path: an offline phone's backlog, and one record by id.

pub mod get;
pub mod sync;
