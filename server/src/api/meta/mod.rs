//! About the service itself.

pub mod health;
pub mod openapi;
