//! The running gateway against real brokers: the embedded one, the system's Mosquitto on
//! 127.0.0.1:1883 (skipped with a message when it is not running, unless `CI` or
//! `SUYUAN_REQUIRE_MQTT` is set), and Mosquitto processes of the tests' own on free loopback
//! ports, which can be restarted. Devices publish with a real MQTT client; an in-memory store
//! keyed like the database's idempotency keys counts what arrives.

// Test helpers outside `#[test]` functions panic on purpose: a failed setup is a failed test.
#![expect(clippy::unwrap_used, reason = "test code")]

mod ingest;
mod outage;
mod replicas;
mod restart;
mod spool_full;
mod support;
