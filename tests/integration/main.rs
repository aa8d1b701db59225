//! The workspace's integration tests: one binary, each test on its own database, each run on SQLite and on
//! PostgreSQL (see `support`).

// A failed expectation in a test is a test failure; panicking with a message is how tests say so.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

mod access;
mod accounts;
mod bad_input;
mod browser;
mod chain;
mod contract;
mod exports;
mod gateway;
mod gateway_faults;
mod iot;
mod label_runs;
mod labels;
mod lineage;
mod migrations;
mod mqtt_auth;
mod printed_labels;
mod record_refs;
mod records;
mod rules;
mod scans;
mod service;
