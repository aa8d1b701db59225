//! Devices, telemetry, images, sensor rules and refusals: the gateway's writes and the API's reads.
//!
//! The gateway's writes are idempotent so that a redelivered or re-spooled message stores nothing twice:
//! a telemetry message on (device, ts, seq), images on (device, capture time, hash), alerts on (rule,
//! device, opened_at). [`ingest`] is the one entry point for what the gateway accepted; the rules it
//! applies are pure functions in [`crate::rules::sensor`].
//!
//! - [`devices`]: registration, broker logins, credentials, status and last-seen times;
//! - [`telemetry`]: one row per message, and the reads of readings over time;
//! - [`media`]: camera images;
//! - [`rules`]: rules as defined, their per-device states, the alerts they open and close;
//! - [`refusals`]: the gateway's refusal counts;
//! - [`ingest`]: a batch of accepted messages to rows and alerts, and the no-data clock;
//! - `bulk` (feature `test-support`): generated history for benchmarks.

#[cfg(feature = "test-support")]
mod bulk;
pub mod devices;
pub mod ingest;
pub mod media;
pub mod refusals;
pub mod rules;
pub mod telemetry;

#[cfg(feature = "test-support")]
pub use bulk::*;
pub use devices::*;
pub use ingest::{ingest, tick, Incoming, TelemetryMessage};
pub use media::*;
pub use refusals::*;
pub use rules::*;
pub use telemetry::*;
