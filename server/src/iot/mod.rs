//! The IoT gateway inside the server: the database behind the gateway's [`Store`] trait
//! ([`store::CoreStore`]), where the rules are evaluated in the same transaction as the readings.
//!
//! [`Store`]: suyuan_iot_gateway::Store

pub mod store;
