//! One MQTT message, from topic and payload to what it means: the single entry point of the
//! checks that need no database.
//!
//! The MQTT loop and the spool's drain call [`parse_message`] alike, so a spooled message goes
//! through exactly the checks a live one does. What it cannot decide is left to the caller, in
//! this order:
//!
//! 1. is the device registered, enabled, and is the topic's site its own (`unknown_device`,
//!    `device_disabled`, `wrong_site`) — a database lookup, cached;
//! 2. for an image, [`MediaStore::store_jpeg`](crate::MediaStore::store_jpeg) (decoding is the
//!    expensive part, so it comes after the device is known);
//! 3. the idempotent database write, then the acknowledgement.

use serde::{Deserialize, Serialize};

use crate::config::TelemetryLimits;
use crate::counters::{Reason, Refusal};
use crate::reading::{parse_status, parse_telemetry, DeviceStatus, Telemetry};
use crate::topic::{Channel, DeviceTopic, Topics};

/// What a message carries, checked as far as possible without the database.
#[derive(Debug, Clone, PartialEq)]
pub enum Parsed {
    /// Readings (some parts may have been refused: see [`Telemetry::refusals`]).
    Telemetry {
        /// Who sent it.
        topic: DeviceTopic,
        /// The readings and the refused parts.
        telemetry: Telemetry,
    },
    /// A JPEG, not yet decoded: hand the payload to the media store once the device is known.
    ImageJpeg {
        /// Who sent it.
        topic: DeviceTopic,
        /// When it was taken (device time), within the believable window.
        ts_ms: i64,
    },
    /// The device's connection state.
    Status {
        /// Who sent it.
        topic: DeviceTopic,
        /// Online or offline.
        status: DeviceStatus,
    },
}

impl Parsed {
    /// Who sent it.
    pub fn topic(&self) -> &DeviceTopic {
        match self {
            Parsed::Telemetry { topic, .. }
            | Parsed::ImageJpeg { topic, .. }
            | Parsed::Status { topic, .. } => topic,
        }
    }
}

/// The kind of a message, for logs and counters of accepted traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageKind {
    /// Readings.
    Telemetry,
    /// A camera image.
    Image,
    /// Online or offline.
    Status,
}

impl From<&Parsed> for MessageKind {
    fn from(p: &Parsed) -> Self {
        match p {
            Parsed::Telemetry { .. } => MessageKind::Telemetry,
            Parsed::ImageJpeg { .. } => MessageKind::Image,
            Parsed::Status { .. } => MessageKind::Status,
        }
    }
}

/// The longest status payload read (`offline` and some whitespace).
const MAX_STATUS_BYTES: usize = 64;

/// Checks a message received at `now_ms` (gateway clock; for a spooled message, its
/// `received_at_ms`, so that replaying it later gives the same answer).
pub fn parse_message(
    topics: &Topics,
    limits: &TelemetryLimits,
    topic: &str,
    payload: &[u8],
    now_ms: i64,
) -> Result<Parsed, Refusal> {
    let topic = topics.parse(topic)?;
    match topic.channel {
        Channel::Telemetry => {
            let telemetry = parse_telemetry(payload, now_ms, limits)?;
            Ok(Parsed::Telemetry { topic, telemetry })
        }
        Channel::ImageJpeg { ts_ms } => {
            if !limits.ts_is_plausible(ts_ms, now_ms) {
                return Err(Refusal::new(
                    Reason::TimestampOutOfRange,
                    format!("image ts {ts_ms} is outside the believable window at {now_ms}"),
                ));
            }
            Ok(Parsed::ImageJpeg { topic, ts_ms })
        }
        Channel::Status => {
            if payload.len() > MAX_STATUS_BYTES {
                return Err(Refusal::new(
                    Reason::PayloadTooLarge,
                    format!("status of {} bytes", payload.len()),
                ));
            }
            let status = parse_status(payload)?;
            Ok(Parsed::Status { topic, status })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::TopicConfig;
    use crate::topic::SiteId;

    const NOW: i64 = 1_750_000_000_000;

    fn parse(topic: &str, payload: &[u8]) -> Result<Parsed, Refusal> {
        let topics = Topics::new(&TopicConfig::default()).unwrap();
        parse_message(&topics, &TelemetryLimits::default(), topic, payload, NOW)
    }

    #[test]
    fn each_channel() {
        let p = parse(
            "suyuan/v1/5/cold-01/telemetry",
            br#"{"ts": 1749999999000, "values": {"temp_c": 3.5}}"#,
        )
        .unwrap();
        assert_eq!(MessageKind::from(&p), MessageKind::Telemetry);
        assert_eq!(p.topic().site, SiteId(5));
        let Parsed::Telemetry { telemetry, .. } = p else {
            panic!("telemetry expected")
        };
        assert_eq!(telemetry.readings.len(), 1);

        let p = parse(
            "suyuan/v1/5/cam-01/image/jpeg/1749999999000",
            b"\xFF\xD8\xFF",
        )
        .unwrap();
        assert!(matches!(
            p,
            Parsed::ImageJpeg {
                ts_ms: 1_749_999_999_000,
                ..
            }
        ));

        let p = parse("suyuan/v1/5/cam-01/status", b"offline").unwrap();
        assert!(matches!(
            p,
            Parsed::Status {
                status: DeviceStatus::Offline,
                ..
            }
        ));
    }

    #[test]
    fn refusals_carry_their_reason() {
        let reason = |t: &str, p: &[u8]| parse(t, p).unwrap_err().reason;
        assert_eq!(reason("suyuan/v1/5/cold-01/temp", b"{}"), Reason::BadTopic);
        assert_eq!(
            reason("suyuan/v1/5/cold-01/telemetry", b"{"),
            Reason::MalformedJson
        );
        assert_eq!(
            reason("suyuan/v1/5/cam/image/jpeg/1500000000000", b"\xFF\xD8\xFF"),
            Reason::TimestampOutOfRange
        );
        assert_eq!(
            reason("suyuan/v1/5/cam/status", b"maybe"),
            Reason::BadStatus
        );
        assert_eq!(
            reason("suyuan/v1/5/cam/status", &[b' '; 65]),
            Reason::PayloadTooLarge
        );
    }
}
