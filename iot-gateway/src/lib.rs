//! The IoT gateway: subscribes to MQTT and ingests sensor readings and camera images from farms and storage
//! rooms into the database, acknowledging a message only once it is stored.
//!
//! The crate is part of the workspace layout from the start so that its place in the dependency graph
//! (`server` → `iot-gateway` → `suyuan-core`) is fixed; ingestion arrives with the gateway work.
