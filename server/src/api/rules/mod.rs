//! Sensor rules: thresholds (a cold store above 8 °C for 30 minutes) and no-data (silent for 15 minutes).

pub mod create;
pub mod list;
