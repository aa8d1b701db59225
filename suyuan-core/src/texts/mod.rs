//! The words the platform itself writes for people and stores: the messages of alerts now, and the
//! reasons a certificate is refused later.
//!
//! Rules ([`crate::rules`]) decide *that* something happened and report the facts; the sentence a
//! regulator or an enterprise reads is made here, in one place per family of rules, so it can be
//! reviewed (and translated) without reading the rules. Chinese is the stored language: an alert's
//! message is kept as it was raised.

pub mod records;
pub mod scans;
pub mod sensor;
