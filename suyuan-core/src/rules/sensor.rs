//! Sensor rules: thresholds and silent devices, on event time.
