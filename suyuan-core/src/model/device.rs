//! Devices (sensors and cameras on farms and in storage rooms), what they send (readings and images), the
//! rules that watch them, and the gateway's refusals.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::enums::text_enum;
use crate::{OrgId, SiteId, UserId};

/// The longest MQTT client id a device may have (also the device segment of its topics).
pub const MAX_CLIENT_ID: usize = 64;

/// Client ids a device may not take: the gateways connect under ids with this prefix.
pub const RESERVED_CLIENT_ID_PREFIX: &str = "suyuan-";

text_enum!(
    /// What a device sends.
    DeviceKind {
        /// Telemetry readings (temperature, humidity, …).
        Sensor = "sensor",
        /// JPEG images.
        Camera = "camera",
    }
);

text_enum!(
    /// A device's connection state, from its retained status topic.
    DeviceStatus {
        /// Never reported.
        Unknown = "unknown",
        Online = "online",
        /// Its last will, published by the broker when it dropped off.
        Offline = "offline",
    }
);

/// A registered device. Its password is never shown again after registration.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Device {
    pub id: i64,
    pub org_id: OrgId,
    #[schema(value_type = i64)]
    pub site_id: SiteId,
    /// MQTT client id and username; the device segment of its topics.
    pub client_id: String,
    pub kind: DeviceKind,
    pub name: String,
    pub enabled: bool,
    pub status: DeviceStatus,
    pub status_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Device time of the newest reading or image stored.
    pub last_seen_at: Option<chrono::DateTime<chrono::Utc>>,
    pub created_by: UserId,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

/// What an operator registers.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewDevice {
    #[schema(value_type = i64)]
    pub site_id: SiteId,
    /// 1–64 of `A-Z a-z 0-9 _ - .`; unique.
    pub client_id: String,
    pub kind: DeviceKind,
    pub name: String,
}

impl NewDevice {
    /// What serde cannot check.
    pub fn validate(&self) -> crate::CoreResult<()> {
        let id = &self.client_id;
        if id.is_empty()
            || id.len() > MAX_CLIENT_ID
            || !id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        {
            return Err(crate::CoreError::invalid(
                "invalid_client_id",
                format!("a client id is 1–{MAX_CLIENT_ID} of A-Z a-z 0-9 _ - ."),
            ));
        }
        // The gateways' own client ids (`suyuan-gateway`, `suyuan-gw-…`) start with `suyuan-`: a device
        // under such an id could take over a gateway's broker session once logged in.
        if id
            .to_ascii_lowercase()
            .starts_with(RESERVED_CLIENT_ID_PREFIX)
        {
            return Err(crate::CoreError::invalid(
                "reserved_client_id",
                format!(
                    "client ids starting with {RESERVED_CLIENT_ID_PREFIX} are the platform's own"
                ),
            ));
        }
        if self.name.trim().is_empty() || self.name.chars().count() > 100 {
            return Err(crate::CoreError::invalid(
                "invalid_name",
                "a device needs a name of at most 100 characters",
            ));
        }
        Ok(())
    }
}

/// A registered device with its broker credentials: the only time the password is shown.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RegisteredDevice {
    #[serde(flatten)]
    pub device: Device,
    /// MQTT username (the client id).
    pub username: String,
    /// MQTT password; store it on the device, it is not shown again.
    pub password: String,
}

/// A stored reading.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ReadingPoint {
    pub device_id: i64,
    pub metric: String,
    /// Device time, ms since the epoch.
    pub ts: i64,
    pub value: f64,
    /// The unit's code, the metric name's suffix (`temp_c` → `c`; the gateway's README lists them).
    pub unit: String,
    /// Arrived long after it was taken (backfill).
    pub late: bool,
}

/// A stored camera image.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct DeviceImage {
    pub id: i64,
    pub device_id: i64,
    #[schema(value_type = i64)]
    pub site_id: SiteId,
    pub taken_at: chrono::DateTime<chrono::Utc>,
    pub sha256: String,
    pub bytes: i64,
    pub width: i64,
    pub height: i64,
    /// Relative to the media folder.
    #[serde(skip)]
    pub path: String,
    #[serde(skip)]
    pub thumb_path: String,
}

text_enum!(
    /// What a rule watches for.
    RuleKind {
        /// A metric outside [min, max] for at least the duration.
        Threshold = "threshold",
        /// A device silent for the duration.
        NoData = "no_data",
    }
);

/// A rule on a site (or one device of it).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct IotRule {
    pub id: i64,
    pub org_id: OrgId,
    #[schema(value_type = i64)]
    pub site_id: SiteId,
    pub device_id: Option<i64>,
    pub kind: RuleKind,
    pub name: String,
    pub metric: Option<String>,
    pub min_value: Option<f64>,
    pub max_value: Option<f64>,
    /// Threshold: how long the metric must stay out of range; no-data: how long the silence.
    pub duration_ms: i64,
    pub enabled: bool,
    pub created_by: UserId,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

/// A new rule, e.g. `{"site_id": 3, "kind": "threshold", "name": "冷库超温", "metric": "temp_c",
/// "max_value": 8, "duration_ms": 1800000}`.
#[derive(Debug, Clone, PartialEq, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewIotRule {
    #[schema(value_type = i64)]
    pub site_id: SiteId,
    pub device_id: Option<i64>,
    pub kind: RuleKind,
    pub name: String,
    pub metric: Option<String>,
    pub min_value: Option<f64>,
    pub max_value: Option<f64>,
    pub duration_ms: i64,
}

impl NewIotRule {
    /// What serde cannot check.
    pub fn validate(&self) -> crate::CoreResult<()> {
        let bad = |code, msg: &str| Err(crate::CoreError::invalid(code, msg.to_owned()));
        if self.name.trim().is_empty() {
            return bad("invalid_name", "a rule needs a name");
        }
        if !(0..=30 * 24 * 3_600_000).contains(&self.duration_ms) {
            return bad("invalid_duration", "duration_ms is between 0 and 30 days");
        }
        match self.kind {
            RuleKind::Threshold => {
                if self.metric.as_deref().is_none_or(|m| m.trim().is_empty()) {
                    return bad(
                        "missing_metric",
                        "a threshold rule names a metric, e.g. temp_c",
                    );
                }
                if self.min_value.is_none() && self.max_value.is_none() {
                    return bad(
                        "missing_limit",
                        "a threshold rule needs min_value, max_value or both",
                    );
                }
                if [self.min_value, self.max_value]
                    .iter()
                    .flatten()
                    .any(|v| !v.is_finite())
                {
                    return bad("invalid_limit", "limits are finite numbers");
                }
                if let (Some(lo), Some(hi)) = (self.min_value, self.max_value) {
                    if lo > hi {
                        return bad("invalid_limit", "min_value is above max_value");
                    }
                }
            }
            RuleKind::NoData => {
                if self.metric.is_some() || self.min_value.is_some() || self.max_value.is_some() {
                    return bad("invalid_rule", "a no-data rule has only a duration");
                }
                if self.duration_ms < 60_000 {
                    return bad(
                        "invalid_duration",
                        "a no-data rule waits at least one minute",
                    );
                }
            }
        }
        Ok(())
    }
}

/// Messages refused by the gateway for one reason, over every replica.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct RefusalCount {
    /// Stable code, e.g. `unknown_device`, `not_finite`, `not_jpeg`.
    pub reason: String,
    pub refused: i64,
    pub last_at: chrono::DateTime<chrono::Utc>,
    /// The topic of the last refused message (names site and device when it parsed).
    pub last_topic: String,
    /// Why the last one was refused (never its payload).
    pub last_detail: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn device(client_id: &str) -> NewDevice {
        NewDevice {
            site_id: SiteId(1),
            client_id: client_id.to_owned(),
            kind: DeviceKind::Sensor,
            name: "冷库温湿度".to_owned(),
        }
    }

    #[test]
    fn a_device_cannot_take_a_gateways_client_id() {
        for id in [
            "suyuan-gateway",
            "suyuan-gw-host-1a2b3c4d",
            "Suyuan-Gateway",
        ] {
            let err = device(id).validate().unwrap_err();
            assert_eq!(err.code(), "reserved_client_id", "{id}");
        }
        assert!(device("coldstore-temp-01").validate().is_ok());
    }
}
