//! The gateway library in-process against real brokers: the embedded one, the system's Mosquitto on
//! 127.0.0.1:1883 and Mosquitto processes of the tests' own (`support::mqtt::Mosquitto`, restartable on
//! their port). Devices publish with a real MQTT client; an in-memory store keyed like the database's
//! idempotency key (device, ts, seq) counts what arrives, and can be taken down or made to reject.
//! `gateway_faults` runs the same promises through the real `suyuan gateway` process and database.

mod ingest;
mod outage;
mod replicas;
mod restart;
mod spool_full;
mod support;
