//! The IoT gateway inside the server: the database behind the gateway's [`Store`] trait
//! ([`store::CoreStore`], a thin adapter onto `suyuan_core::store::iot::ingest`, where the sensor rules
//! are evaluated in the same transaction as the readings), and the running of gateway and embedded broker
//! ([`run::RunningGateway`]).
//!
//! [`Store`]: suyuan_iot_gateway::Store

pub mod run;
pub mod store;
