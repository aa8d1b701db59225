//! The words of the sensor rules' alerts (thresholds, silent devices).
