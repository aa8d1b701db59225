//! The IoT gateway: subscribes to MQTT and ingests sensor readings and camera images from farms and storage
//! rooms into the database, acknowledging a message only once it is stored.
//!
//! The database-independent core comes first: topics, telemetry payloads, refusal counters and settings.

pub mod config;
pub mod counters;
pub mod error;
pub mod image;
pub mod reading;
pub mod rules;
pub mod spool;
pub mod topic;
