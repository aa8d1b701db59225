//! The words of the record rules' alerts (pre-harvest interval, inspection, recall).
