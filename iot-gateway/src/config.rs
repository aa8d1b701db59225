//! The gateway's settings: one serde struct with a default for everything, passed explicitly.
//!
//! Limits exist because devices are on the open side of the system: a buggy or hostile device
//! must not be able to make the gateway allocate, store or alert without bound. Each default is
//! chosen so that an honest device never meets it (see the gateway README for the reasoning),
//! and every part of the gateway takes only its own section, so tests can tighten one limit.
//!
//! The command line (in `server`) fills this from `SUYUAN_*` variables and flags; nothing here
//! reads the environment.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::topic::validate_prefix;

/// 2020-01-01T00:00:00Z in ms since the epoch: no device of this platform reports earlier data,
/// and a clock that says 1970 (an unset RTC) lands before it.
pub const EARLIEST_TS_MS: i64 = 1_577_836_800_000;

/// Every setting of the gateway.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GatewayConfig {
    /// Topic prefix and shared-subscription group.
    pub topics: TopicConfig,
    /// Limits on telemetry payloads.
    pub telemetry: TelemetryLimits,
    /// Limits on images and the thumbnail's size.
    pub images: ImageLimits,
    /// Folder of stored images (`{media}/ab/cd/<sha256>.jpg`).
    pub media_dir: PathBuf,
    /// The local store-and-forward spool.
    pub spool: SpoolConfig,
    /// Rule evaluation.
    pub rules: RuleConfig,
    /// How many recent refusals the operator can see.
    pub recent_refusals: usize,
    /// Batching, retries and reporting of the running gateway.
    pub runtime: RuntimeConfig,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        GatewayConfig::under_data(Path::new("./data"))
    }
}

impl GatewayConfig {
    /// Defaults with the media folder and the spool under a data folder (`{data}/media`,
    /// `{data}/spool`), as `suyuan serve --data` lays things out.
    pub fn under_data(data: &Path) -> Self {
        GatewayConfig {
            topics: TopicConfig::default(),
            telemetry: TelemetryLimits::default(),
            images: ImageLimits::default(),
            media_dir: data.join("media"),
            spool: SpoolConfig::in_dir(data.join("spool")),
            rules: RuleConfig::default(),
            recent_refusals: 200,
            runtime: RuntimeConfig::default(),
        }
    }

    /// Checks every setting, so that a bad one stops the gateway at start and not at the first
    /// message.
    pub fn validate(&self) -> Result<(), Error> {
        self.topics.validate()?;
        self.telemetry.validate()?;
        self.images.validate()?;
        self.spool.validate()?;
        self.rules.validate()?;
        self.runtime.validate()?;
        // The spool must hold the largest image with its topic and framing (a kilobyte covers
        // them: topics are short).
        let largest = self.images.max_bytes as u64 + 1024;
        if self.spool.segment_bytes < largest {
            return Err(bad(
                "spool.segment_bytes",
                format!(
                    "{} cannot hold an image of images.max_bytes ({}) with its framing",
                    self.spool.segment_bytes, self.images.max_bytes
                ),
            ));
        }
        Ok(())
    }
}

fn bad(setting: &'static str, problem: impl Into<String>) -> Error {
    Error::Config {
        setting,
        problem: problem.into(),
    }
}

/// Where devices publish.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TopicConfig {
    /// Topic levels before `{site}/{device}/...`; `suyuan/v1` by default. The version level lets a
    /// later payload format live beside this one.
    pub prefix: String,
    /// Group name of the MQTT shared subscription (`$share/{group}/...`) that spreads messages
    /// over the gateway replicas; `None` subscribes plainly (one gateway, the embedded default).
    pub share_group: Option<String>,
}

impl Default for TopicConfig {
    fn default() -> Self {
        TopicConfig {
            prefix: "suyuan/v1".to_owned(),
            share_group: None,
        }
    }
}

impl TopicConfig {
    fn validate(&self) -> Result<(), Error> {
        validate_prefix(&self.prefix).map_err(|p| bad("topics.prefix", p))?;
        if let Some(group) = &self.share_group {
            let ok = !group.is_empty()
                && group.len() <= 64
                && group
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
            if !ok {
                return Err(bad(
                    "topics.share_group",
                    format!("{group:?} must be 1 to 64 of A-Z a-z 0-9 _ -"),
                ));
            }
        }
        Ok(())
    }
}

/// Limits on telemetry, and the window of believable timestamps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TelemetryLimits {
    /// Largest payload parsed at all (256 KiB: a 1000-reading backlog of a few metrics each is
    /// well under it).
    pub max_payload_bytes: usize,
    /// Most readings in one backlog array (1000).
    pub max_readings_per_message: usize,
    /// Most metrics in one reading (32).
    pub max_metrics_per_reading: usize,
    /// Longest metric name in bytes, unit suffix included (48).
    pub max_metric_name_len: usize,
    /// Earliest accepted `ts` (2020-01-01).
    pub earliest_ts_ms: i64,
    /// How far a `ts` may be ahead of the gateway's clock (10 minutes: device clocks drift; a
    /// reading from further ahead would sort after every real one and confuse rules).
    pub max_future_ms: i64,
}

impl Default for TelemetryLimits {
    fn default() -> Self {
        TelemetryLimits {
            max_payload_bytes: 256 * 1024,
            max_readings_per_message: 1000,
            max_metrics_per_reading: 32,
            max_metric_name_len: 48,
            earliest_ts_ms: EARLIEST_TS_MS,
            max_future_ms: 10 * 60 * 1000,
        }
    }
}

impl TelemetryLimits {
    /// Whether a device timestamp is believable at gateway time `now_ms`. Also used for the
    /// `{ts}` of an image topic.
    pub fn ts_is_plausible(&self, ts_ms: i64, now_ms: i64) -> bool {
        ts_ms >= self.earliest_ts_ms && ts_ms <= now_ms.saturating_add(self.max_future_ms)
    }

    fn validate(&self) -> Result<(), Error> {
        if self.max_payload_bytes == 0 {
            return Err(bad("telemetry.max_payload_bytes", "must be positive"));
        }
        if self.max_readings_per_message == 0 {
            return Err(bad(
                "telemetry.max_readings_per_message",
                "must be positive",
            ));
        }
        if self.max_metrics_per_reading == 0 {
            return Err(bad("telemetry.max_metrics_per_reading", "must be positive"));
        }
        if self.max_metric_name_len < 3 {
            return Err(bad("telemetry.max_metric_name_len", "must be at least 3"));
        }
        if self.max_future_ms < 0 {
            return Err(bad("telemetry.max_future_ms", "must not be negative"));
        }
        Ok(())
    }
}

/// Limits on images and the thumbnail made of each.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ImageLimits {
    /// Largest JPEG accepted, in bytes (10 MB; the broker's and client's maximum packet size
    /// must be at least this plus the topic).
    pub max_bytes: usize,
    /// Most pixels (width × height) decoded (40 megapixels; a decoded image takes 3 bytes a
    /// pixel, so this bounds one decode at 120 MB). Checked from the header before decoding.
    pub max_pixels: u64,
    /// Longest side of the thumbnail in pixels (320: sharp on a phone's scan page, ~20 KB).
    pub thumb_max_side: u32,
    /// JPEG quality of the thumbnail, 1–100 (80).
    pub thumb_quality: u8,
}

impl Default for ImageLimits {
    fn default() -> Self {
        ImageLimits {
            max_bytes: 10 * 1000 * 1000,
            max_pixels: 40_000_000,
            thumb_max_side: 320,
            thumb_quality: 80,
        }
    }
}

impl ImageLimits {
    fn validate(&self) -> Result<(), Error> {
        if self.max_bytes == 0 {
            return Err(bad("images.max_bytes", "must be positive"));
        }
        if self.max_pixels == 0 {
            return Err(bad("images.max_pixels", "must be positive"));
        }
        if self.thumb_max_side == 0 {
            return Err(bad("images.thumb_max_side", "must be positive"));
        }
        if !(1..=100).contains(&self.thumb_quality) {
            return Err(bad("images.thumb_quality", "must be 1 to 100"));
        }
        Ok(())
    }
}

/// The spool that keeps messages on local disk while the database is unreachable.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SpoolConfig {
    /// Folder of segment files; one gateway process per folder (it is locked).
    pub dir: PathBuf,
    /// Bound on the bytes the segment files take (1 GiB). Past it, messages are not
    /// acknowledged, so the broker keeps them instead.
    pub max_bytes: u64,
    /// Size at which a new segment file is started (16 MiB); fully drained segments are deleted,
    /// so this is also the granularity at which disk space comes back. Must hold the largest
    /// message (an image of `images.max_bytes`) plus framing.
    pub segment_bytes: u64,
    /// Fill ratio at which the operator is warned (0.8).
    pub alert_ratio: f64,
}

impl Default for SpoolConfig {
    fn default() -> Self {
        SpoolConfig::in_dir(PathBuf::from("./data/spool"))
    }
}

impl SpoolConfig {
    /// Defaults, in this folder.
    pub fn in_dir(dir: PathBuf) -> Self {
        SpoolConfig {
            dir,
            max_bytes: 1024 * 1024 * 1024,
            segment_bytes: 16 * 1024 * 1024,
            alert_ratio: 0.8,
        }
    }

    fn validate(&self) -> Result<(), Error> {
        if self.segment_bytes < 4096 {
            return Err(bad("spool.segment_bytes", "must be at least 4096"));
        }
        if self.segment_bytes > u64::from(u32::MAX) {
            return Err(bad("spool.segment_bytes", "must be below 4 GiB"));
        }
        if self.max_bytes < self.segment_bytes {
            return Err(bad(
                "spool.max_bytes",
                "must be at least one segment (spool.segment_bytes)",
            ));
        }
        if !(self.alert_ratio > 0.0 && self.alert_ratio <= 1.0) {
            return Err(bad("spool.alert_ratio", "must be in (0, 1]"));
        }
        Ok(())
    }
}

/// Rule evaluation settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RuleConfig {
    /// A reading that arrives more than this after its own `ts` is *late* (5 minutes): an alert
    /// it opens is backfill, marked `late`, not a fresh live alarm.
    pub lateness_ms: i64,
}

impl Default for RuleConfig {
    fn default() -> Self {
        RuleConfig {
            lateness_ms: 5 * 60 * 1000,
        }
    }
}

impl RuleConfig {
    fn validate(&self) -> Result<(), Error> {
        if self.lateness_ms < 0 {
            return Err(bad("rules.lateness_ms", "must not be negative"));
        }
        Ok(())
    }
}

/// How the running gateway batches writes, retries, and reports to the database.
///
/// The defaults suit a county's traffic (a few hundred devices, a reading a minute each, bursts of
/// backlog); tests shorten the intervals.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RuntimeConfig {
    /// Most messages written in one database transaction (500): one commit per batch is what
    /// makes a backlog flush of thousands of messages fast.
    pub batch_max_messages: usize,
    /// Most payload bytes in one batch (32 MiB), so a burst of images is not one huge transaction.
    pub batch_max_bytes: usize,
    /// How long the pipeline waits for more messages after the first of a batch (20 ms): the
    /// latency a lone reading pays for batching.
    pub batch_wait_ms: u64,
    /// How often the device list is read again (60 s): how long a disabled or moved device can
    /// still be accepted under its old registration. A client id missing from the list is looked
    /// up on its first message, so a newly registered device is accepted at once.
    pub device_refresh_ms: u64,
    /// How long a client id that the database does not know is remembered as unknown (10 s), so
    /// that a flood from an unregistered device costs one lookup per interval.
    pub unknown_device_ttl_ms: u64,
    /// How often refusal counts are added to the database (5 s).
    pub refusal_flush_ms: u64,
    /// How often the no-data rules are evaluated (60 s).
    pub tick_ms: u64,
    /// First delay after a failed connection, write or spool append (100 ms); it doubles, with
    /// jitter, up to `retry_max_ms`.
    pub retry_min_ms: u64,
    /// Longest delay between retries (10 s).
    pub retry_max_ms: u64,
    /// Most QoS 0 messages waiting for the pipeline (10,000); more are dropped and counted.
    /// QoS 1 messages are never dropped: the broker's in-flight window bounds them.
    pub max_queued_qos0: usize,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            batch_max_messages: 500,
            batch_max_bytes: 32 * 1024 * 1024,
            batch_wait_ms: 20,
            device_refresh_ms: 60_000,
            unknown_device_ttl_ms: 10_000,
            refusal_flush_ms: 5_000,
            tick_ms: 60_000,
            retry_min_ms: 100,
            retry_max_ms: 10_000,
            max_queued_qos0: 10_000,
        }
    }
}

impl RuntimeConfig {
    fn validate(&self) -> Result<(), Error> {
        let positive: [(&'static str, u64); 8] = [
            ("runtime.batch_max_messages", self.batch_max_messages as u64),
            ("runtime.batch_max_bytes", self.batch_max_bytes as u64),
            ("runtime.device_refresh_ms", self.device_refresh_ms),
            ("runtime.refusal_flush_ms", self.refusal_flush_ms),
            ("runtime.tick_ms", self.tick_ms),
            ("runtime.retry_min_ms", self.retry_min_ms),
            ("runtime.retry_max_ms", self.retry_max_ms),
            ("runtime.max_queued_qos0", self.max_queued_qos0 as u64),
        ];
        for (setting, value) in positive {
            if value == 0 {
                return Err(bad(setting, "must be positive"));
            }
        }
        if self.retry_max_ms < self.retry_min_ms {
            return Err(bad(
                "runtime.retry_max_ms",
                "must be at least runtime.retry_min_ms",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_round_trip_through_json() {
        let config = GatewayConfig::under_data(Path::new("/srv/suyuan"));
        config.validate().unwrap();
        assert_eq!(config.media_dir, Path::new("/srv/suyuan/media"));
        assert_eq!(config.spool.dir, Path::new("/srv/suyuan/spool"));
        let json = serde_json::to_string(&config).unwrap();
        let back: GatewayConfig = serde_json::from_str(&json).unwrap();
        assert_eq!(back, config);
        // A partial file keeps the defaults for everything it does not name.
        let partial: GatewayConfig =
            serde_json::from_str(r#"{"topics": {"share_group": "suyuan"}}"#).unwrap();
        assert_eq!(partial.topics.prefix, "suyuan/v1");
        assert_eq!(partial.topics.share_group.as_deref(), Some("suyuan"));
        assert!(serde_json::from_str::<GatewayConfig>(r#"{"topic": {}}"#).is_err());
    }

    #[test]
    fn bad_settings_are_named() {
        let mut config = GatewayConfig::default();
        config.topics.prefix = "suyuan/+/v1".into();
        assert!(matches!(
            config.validate(),
            Err(Error::Config {
                setting: "topics.prefix",
                ..
            })
        ));
        let mut config = GatewayConfig::default();
        config.topics.share_group = Some("a/b".into());
        assert!(config.validate().is_err());
        let mut config = GatewayConfig::default();
        config.spool.max_bytes = 1000;
        assert!(config.validate().is_err());
        let mut config = GatewayConfig::default();
        config.images.thumb_quality = 0;
        assert!(config.validate().is_err());
        let mut config = GatewayConfig::default();
        config.images.max_bytes = 20 * 1024 * 1024;
        assert!(matches!(
            config.validate(),
            Err(Error::Config {
                setting: "spool.segment_bytes",
                ..
            })
        ));
    }

    #[test]
    fn timestamps_before_2020_or_far_ahead_are_implausible() {
        let limits = TelemetryLimits::default();
        let now = 1_750_000_000_000;
        assert!(limits.ts_is_plausible(now, now));
        assert!(limits.ts_is_plausible(EARLIEST_TS_MS, now));
        assert!(!limits.ts_is_plausible(EARLIEST_TS_MS - 1, now));
        assert!(limits.ts_is_plausible(now + 600_000, now));
        assert!(!limits.ts_is_plausible(now + 600_001, now));
        // Seconds instead of milliseconds: 1970.
        assert!(!limits.ts_is_plausible(now / 1000, now));
    }
}
