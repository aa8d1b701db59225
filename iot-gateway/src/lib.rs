//! The IoT gateway: subscribes to MQTT and ingests sensor readings and camera images from farms
//! and storage rooms, acknowledging a message only once it is safe.
//!
//! # The delivery guarantee
//!
//! Nothing acknowledged is ever lost. Devices publish at QoS 1; the gateway acknowledges a
//! message (PUBACK) only after it is durably stored — committed to the database, or, while the
//! database is unreachable, appended and fsynced to the local [`Spool`] — and acknowledgements go
//! out in arrival order, as MQTT requires. A crash before the acknowledgement makes the broker
//! redeliver; a crash after it finds the message in the database or the spool. Either way a
//! message can arrive twice, so every write is idempotent: a [`Reading`] on (device, ts, seq),
//! images on their SHA-256, alerts on (rule, device, opened_at). A message that is wrong in itself is
//! *refused*: acknowledged (so it is not redelivered forever), counted by [`Reason`], never
//! stored; the gateway keeps running.
//!
//! # Layout
//!
//! The crate is the whole gateway but the database: the `suyuan` binary hands
//! [`Gateway::start`] a [`Store`] over the platform database.
//!
//! - [`runtime`] — the running gateway: batching, deciding each message, writing or spooling,
//!   acknowledging in order, the spool's drain, refusal counts and the clock of the store's no-data
//!   rules (the sensor rules themselves are the platform's: `suyuan_core::rules::sensor`);
//! - [`mqtt`] — broker settings (a URL), the continuously polled event loop with back-off, and
//!   acknowledgements that never cross a reconnect;
//! - [`broker`] — the embedded MQTT broker (rumqttd) of the one-command run;
//! - [`front`] — the devices' door to it: credentials checked against the registry, publishes
//!   only on the device's own topics, no subscriptions;
//! - [`topic`] — `{prefix}/{site}/{device}/telemetry | image/jpeg/{ts} | status`, and the
//!   (shared) subscription filters;
//! - [`reading`] — telemetry JSON to [`Reading`]s (one per payload object: time, sequence number,
//!   values), units from key suffixes, plausible ranges;
//! - [`message`] — one message, topic and payload, to what it means ([`parse_message`]);
//! - [`image`] — JPEG checks (pixel limit from the header before decoding), thumbnails, storage
//!   by content hash;
//! - [`spool`] — the durable store-and-forward queue for database outages;
//! - [`counters`] — the stable refusal codes and their counters;
//! - [`store`] — what the gateway needs from the database, as a trait;
//! - `devices` — the cached device list messages are checked against;
//! - [`config`] — every setting with its default;
//! - [`error`] — the one error type, and the refused-versus-not-stored policy.
//!
//! The gateway's README (`iot-gateway/README.md`) documents topics, payloads, units, limits and
//! refusal codes for device makers.

pub mod broker;
pub mod config;
pub mod counters;
mod devices;
pub mod error;
pub mod front;
pub mod image;
pub mod message;
pub mod mqtt;
pub mod reading;
pub mod runtime;
pub mod spool;
pub mod store;
pub mod topic;

pub use broker::{BrokerConfig, BrokerError, EmbeddedBroker};
pub use front::{DeviceBroker, DeviceGrant, DeviceRegistry};

pub use config::{
    GatewayConfig, ImageLimits, RuleConfig, RuntimeConfig, SpoolConfig, TelemetryLimits,
    TopicConfig, EARLIEST_TS_MS,
};
pub use counters::{
    CounterSnapshot, Reason, RecentRefusals, Refusal, RefusalCounters, RefusalEntry,
};
pub use error::Error;
pub use image::{check_jpeg, sha256_hex, thumbnail_jpeg, CheckedJpeg, MediaStore, StoredImage};
pub use message::{parse_message, MessageKind, Parsed};
pub use mqtt::MqttSettings;
pub use reading::{parse_status, parse_telemetry, DeviceStatus, Reading, Telemetry, Unit};
pub use runtime::{Gateway, GatewayHandle, GatewayStats};
pub use spool::{DrainError, Spool, SpoolBatch, SpoolPosition, SpoolStats, SpooledMessage};
pub use store::{Accepted, AcceptedKind, DeviceInfo, DeviceKind, Store, StoreError};
pub use topic::{BadTopic, Channel, ClientId, DeviceTopic, InvalidClientId, SiteId, Topics};
