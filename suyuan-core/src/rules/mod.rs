//! The platform's rules, in one place, as pure functions: `(state, event) -> (effects, alerts)`.
//!
//! A rule never touches the database. `store` loads the state a rule needs, calls it, and writes what it
//! decided (rows moved, alerts opened or closed) in the same transaction; so every rule is unit-tested
//! here without a database, and the same function serves the writer and the verifier.
//!
//! - [`records`]: what a record does to its batch (pre-harvest interval, inspection block and release,
//!   custody, corrections, recall);
//! - [`scans`]: counterfeit and misuse signals from consumers' scans of a label;
//! - [`sensor`]: thresholds and silent devices on sensor readings, on event time.

pub mod records;
pub mod scans;
pub mod sensor;
