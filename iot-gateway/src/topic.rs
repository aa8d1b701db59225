//! Topics: what a device publishes on, parsed into who sent what, or refused with a typed reason.
//!
//! The topic names the site and the device: `{prefix}/{site}/{device}/telemetry`,
//! `{prefix}/{site}/{device}/image/jpeg/{ts}` and `{prefix}/{site}/{device}/status`. The site is
//! the site's database id (a positive decimal number, written without leading zeros so that one
//! site has exactly one topic — broker ACLs match strings). The device is its MQTT client id, so a
//! broker ACL of the form `{prefix}/+/%c/#` ties every topic to the connection that may publish
//! it; the gateway still checks the site against the device's registration, because a client id
//! alone does not prove the site.
//!
//! Parsing is strict and allocation-light: it runs on every message, and anything that is not one
//! of the three forms is refused as `bad_topic` with a [`BadTopic`] saying which part was wrong.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::config::TopicConfig;
use crate::counters::{Reason, Refusal};
use crate::error::Error;

/// A site's database id, as written in the topic.
///
/// Same representation as the domain crate's site id (`i64`, serialised transparently), so the
/// wiring converts with `.0`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SiteId(pub i64);

impl fmt::Display for SiteId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// The longest client id accepted. MQTT 3.1.1 guarantees 23 characters; 64 leaves room for ids
/// such as `coldstore-03-a1b2c3d4e5f6` that brokers all accept.
pub const MAX_CLIENT_ID_LEN: usize = 64;

/// A device's MQTT client id: 1 to 64 of `A-Z a-z 0-9 _ - .`.
///
/// The charset keeps ids safe in topics (no `/ + #`), file names, URLs and logs; a device is
/// registered under exactly this string. Shared, not copied: every reading of a message names its
/// device, and a clone is a reference count.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ClientId(Arc<str>);

impl ClientId {
    /// Checks the charset and length.
    pub fn new(id: &str) -> Result<Self, InvalidClientId> {
        if is_valid_client_id(id) {
            Ok(ClientId(Arc::from(id)))
        } else {
            Err(InvalidClientId)
        }
    }

    /// The id as published.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn is_valid_client_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_CLIENT_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

/// A client id outside the allowed charset or length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a device client id is 1 to 64 of A-Z a-z 0-9 _ - .")]
pub struct InvalidClientId;

impl TryFrom<String> for ClientId {
    type Error = InvalidClientId;
    fn try_from(id: String) -> Result<Self, Self::Error> {
        if is_valid_client_id(&id) {
            Ok(ClientId(Arc::from(id)))
        } else {
            Err(InvalidClientId)
        }
    }
}

impl From<ClientId> for String {
    fn from(id: ClientId) -> String {
        id.0.to_string()
    }
}

impl fmt::Display for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a topic carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Channel {
    /// Readings as JSON.
    Telemetry,
    /// A raw JPEG taken at `ts_ms` (device time, ms since the epoch).
    ImageJpeg {
        /// When the picture was taken.
        ts_ms: i64,
    },
    /// `online` / `offline`, retained, the device's last will.
    Status,
}

/// A parsed topic: who published what.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DeviceTopic {
    /// The site the device says it publishes for.
    pub site: SiteId,
    /// The publishing device.
    pub device: ClientId,
    /// What the payload is.
    pub channel: Channel,
}

/// Why a topic is not one of the three forms. Every variant is counted as `bad_topic`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadTopic {
    /// The topic does not start with `{prefix}/`.
    #[error("topic is not under the prefix {prefix:?}")]
    OutsidePrefix {
        /// The configured prefix.
        prefix: String,
    },
    /// Fewer or more levels than any form has.
    #[error("topic has the wrong number of levels after the prefix")]
    WrongShape,
    /// A level is empty or holds a wildcard character.
    #[error("topic has an empty level or a wildcard")]
    EmptyOrWildcardLevel,
    /// The site level is not a canonical positive decimal id.
    #[error("site {0:?} is not a positive decimal id without leading zeros")]
    BadSite(String),
    /// The device level is not a valid client id.
    #[error("device {0:?} is not a valid client id (1 to 64 of A-Z a-z 0-9 _ - .)")]
    BadDevice(String),
    /// The channel is not `telemetry`, `image/jpeg/{ts}` or `status`.
    #[error("unknown channel {0:?} (telemetry, image/jpeg/{{ts}} or status)")]
    UnknownChannel(String),
    /// An image format other than `jpeg`.
    #[error("image format {0:?} is not supported (only jpeg)")]
    UnsupportedImageFormat(String),
    /// The image's `{ts}` is not a canonical decimal number of ms.
    #[error("image timestamp {0:?} is not a decimal number of milliseconds")]
    BadImageTimestamp(String),
}

impl From<BadTopic> for Refusal {
    fn from(bad: BadTopic) -> Refusal {
        Refusal::new(Reason::BadTopic, bad.to_string())
    }
}

/// The topic forms under one prefix: parsing, subscription filters, and topic names for devices.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topics {
    prefix: String,
    share_group: Option<String>,
}

impl Topics {
    /// Checks the prefix and the share group.
    pub fn new(config: &TopicConfig) -> Result<Self, Error> {
        validate_prefix(&config.prefix).map_err(|problem| Error::Config {
            setting: "topics.prefix",
            problem,
        })?;
        if let Some(group) = &config.share_group {
            if group.is_empty() || group.contains(['/', '+', '#']) {
                return Err(Error::Config {
                    setting: "topics.share_group",
                    problem: format!("{group:?} is not a valid share name"),
                });
            }
        }
        Ok(Topics {
            prefix: config.prefix.clone(),
            share_group: config.share_group.clone(),
        })
    }

    /// The prefix, e.g. `suyuan/v1`.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Parses a topic a message arrived on.
    pub fn parse(&self, topic: &str) -> Result<DeviceTopic, BadTopic> {
        let rest = topic
            .strip_prefix(self.prefix.as_str())
            .and_then(|r| r.strip_prefix('/'))
            .ok_or_else(|| BadTopic::OutsidePrefix {
                prefix: self.prefix.clone(),
            })?;
        // At most 6 levels after the prefix: site, device, image, jpeg, ts — one more means
        // "too many" without splitting an arbitrarily long topic.
        let mut levels = [""; 6];
        let mut count = 0;
        for level in rest.split('/') {
            if count == levels.len() {
                return Err(BadTopic::WrongShape);
            }
            if level.is_empty() || level.contains(['+', '#']) {
                return Err(BadTopic::EmptyOrWildcardLevel);
            }
            levels[count] = level;
            count += 1;
        }
        let levels = &levels[..count];
        if levels.len() < 3 {
            return Err(BadTopic::WrongShape);
        }
        let site = parse_site(levels[0]).ok_or_else(|| BadTopic::BadSite(excerpt(levels[0])))?;
        let device =
            ClientId::new(levels[1]).map_err(|_| BadTopic::BadDevice(excerpt(levels[1])))?;
        let channel = match &levels[2..] {
            ["telemetry"] => Channel::Telemetry,
            ["status"] => Channel::Status,
            ["image", "jpeg", ts] => Channel::ImageJpeg {
                ts_ms: parse_canonical_u63(ts)
                    .ok_or_else(|| BadTopic::BadImageTimestamp(excerpt(ts)))?,
            },
            ["image", format, _] => return Err(BadTopic::UnsupportedImageFormat(excerpt(format))),
            [first, ..] if matches!(*first, "telemetry" | "status" | "image") => {
                return Err(BadTopic::WrongShape)
            }
            other => return Err(BadTopic::UnknownChannel(excerpt(&other.join("/")))),
        };
        Ok(DeviceTopic {
            site,
            device,
            channel,
        })
    }

    /// The filters the gateway subscribes to, shared (`$share/{group}/...`) when a share group is
    /// configured so that each message goes to one replica.
    ///
    /// Note for the status filter: MQTT 5 does not send retained messages to a shared
    /// subscription, so a replica learns a device's state from its next `online`/`offline`
    /// message, not from the retained one at subscribe time.
    pub fn subscriptions(&self) -> Vec<String> {
        let p = &self.prefix;
        let filters = [
            format!("{p}/+/+/telemetry"),
            format!("{p}/+/+/image/jpeg/+"),
            format!("{p}/+/+/status"),
        ];
        match &self.share_group {
            Some(group) => filters
                .iter()
                .map(|f| format!("$share/{group}/{f}"))
                .collect(),
            None => filters.into(),
        }
    }

    /// The telemetry topic of a device (for devices, the demo and tests).
    pub fn telemetry(&self, site: SiteId, device: &ClientId) -> String {
        format!("{}/{site}/{device}/telemetry", self.prefix)
    }

    /// The image topic of a picture taken at `ts_ms`.
    pub fn image_jpeg(&self, site: SiteId, device: &ClientId, ts_ms: i64) -> String {
        format!("{}/{site}/{device}/image/jpeg/{ts_ms}", self.prefix)
    }

    /// The status topic (the device's last will).
    pub fn status(&self, site: SiteId, device: &ClientId) -> String {
        format!("{}/{site}/{device}/status", self.prefix)
    }
}

/// Checks a configured prefix: non-empty levels, no wildcards, not a `$` system topic.
pub(crate) fn validate_prefix(prefix: &str) -> Result<(), String> {
    if prefix.is_empty() {
        return Err("must not be empty".into());
    }
    if prefix.starts_with('$') {
        return Err("must not start with $ (reserved for broker topics)".into());
    }
    if prefix.split('/').any(|level| level.is_empty()) {
        return Err(format!(
            "{prefix:?} has an empty level (leading, trailing or double /)"
        ));
    }
    if prefix.contains(['+', '#']) {
        return Err(format!("{prefix:?} contains a wildcard"));
    }
    Ok(())
}

fn parse_site(level: &str) -> Option<SiteId> {
    parse_canonical_u63(level).filter(|&id| id > 0).map(SiteId)
}

/// A decimal number in 0..=i64::MAX, written canonically (digits only, no leading zero unless
/// it is `0`).
fn parse_canonical_u63(s: &str) -> Option<i64> {
    let canonical =
        !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && (s == "0" || !s.starts_with('0'));
    if canonical {
        s.parse().ok()
    } else {
        None
    }
}

/// A bounded excerpt of a topic level for a refusal detail.
fn excerpt(s: &str) -> String {
    s.chars().take(70).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topics() -> Topics {
        Topics::new(&TopicConfig::default()).unwrap()
    }

    fn dev(id: &str) -> ClientId {
        ClientId::new(id).unwrap()
    }

    #[test]
    fn parses_the_three_forms() {
        let t = topics();
        assert_eq!(
            t.parse("suyuan/v1/42/coldstore-01/telemetry").unwrap(),
            DeviceTopic {
                site: SiteId(42),
                device: dev("coldstore-01"),
                channel: Channel::Telemetry
            }
        );
        assert_eq!(
            t.parse("suyuan/v1/7/cam.north_2/image/jpeg/1750000000123")
                .unwrap()
                .channel,
            Channel::ImageJpeg {
                ts_ms: 1_750_000_000_123
            }
        );
        assert_eq!(
            t.parse("suyuan/v1/7/Cam_2/status").unwrap().channel,
            Channel::Status
        );
    }

    #[test]
    fn formatting_and_parsing_agree() {
        let t = Topics::new(&TopicConfig {
            prefix: "county/530424/suyuan/v1".into(),
            share_group: None,
        })
        .unwrap();
        let d = dev("dev-1");
        let site = SiteId(9_000_000_000);
        assert_eq!(t.parse(&t.telemetry(site, &d)).unwrap().site, site);
        assert_eq!(
            t.parse(&t.image_jpeg(site, &d, 1_700_000_000_000))
                .unwrap()
                .channel,
            Channel::ImageJpeg {
                ts_ms: 1_700_000_000_000
            }
        );
        assert_eq!(t.parse(&t.status(site, &d)).unwrap().device, d);
    }

    #[test]
    fn refuses_everything_else_with_a_reason() {
        let t = topics();
        type Check = fn(&BadTopic) -> bool;
        let cases: &[(&str, Check)] = &[
            ("other/v1/1/d/telemetry", |e| {
                matches!(e, BadTopic::OutsidePrefix { .. })
            }),
            ("suyuan/v10/1/d/telemetry", |e| {
                matches!(e, BadTopic::OutsidePrefix { .. })
            }),
            ("suyuan/v1", |e| matches!(e, BadTopic::OutsidePrefix { .. })),
            ("suyuan/v1/1/d", |e| matches!(e, BadTopic::WrongShape)),
            ("suyuan/v1/1/d/telemetry/extra", |e| {
                matches!(e, BadTopic::WrongShape)
            }),
            ("suyuan/v1/1/d/image/jpeg", |e| {
                matches!(e, BadTopic::WrongShape)
            }),
            ("suyuan/v1/1/d/a/b/c/d/e/f/g", |e| {
                matches!(e, BadTopic::WrongShape)
            }),
            ("suyuan/v1/1//telemetry", |e| {
                matches!(e, BadTopic::EmptyOrWildcardLevel)
            }),
            ("suyuan/v1/+/d/telemetry", |e| {
                matches!(e, BadTopic::EmptyOrWildcardLevel)
            }),
            ("suyuan/v1/1/d/telemetry/", |e| {
                matches!(e, BadTopic::EmptyOrWildcardLevel)
            }),
            ("suyuan/v1/0/d/telemetry", |e| {
                matches!(e, BadTopic::BadSite(_))
            }),
            ("suyuan/v1/042/d/telemetry", |e| {
                matches!(e, BadTopic::BadSite(_))
            }),
            ("suyuan/v1/-4/d/telemetry", |e| {
                matches!(e, BadTopic::BadSite(_))
            }),
            ("suyuan/v1/site/d/telemetry", |e| {
                matches!(e, BadTopic::BadSite(_))
            }),
            ("suyuan/v1/99999999999999999999/d/telemetry", |e| {
                matches!(e, BadTopic::BadSite(_))
            }),
            ("suyuan/v1/1/温度计/telemetry", |e| {
                matches!(e, BadTopic::BadDevice(_))
            }),
            ("suyuan/v1/1/a b/telemetry", |e| {
                matches!(e, BadTopic::BadDevice(_))
            }),
            ("suyuan/v1/1/d/telemetri", |e| {
                matches!(e, BadTopic::UnknownChannel(_))
            }),
            ("suyuan/v1/1/d/image/png/1700000000000", |e| {
                matches!(e, BadTopic::UnsupportedImageFormat(_))
            }),
            ("suyuan/v1/1/d/image/jpeg/17e11", |e| {
                matches!(e, BadTopic::BadImageTimestamp(_))
            }),
            ("suyuan/v1/1/d/image/jpeg/0017", |e| {
                matches!(e, BadTopic::BadImageTimestamp(_))
            }),
        ];
        for (topic, check) in cases {
            let err = t.parse(topic).unwrap_err();
            assert!(check(&err), "{topic}: got {err:?}");
            let refusal: Refusal = err.into();
            assert_eq!(refusal.reason, Reason::BadTopic);
        }
        let long_device = format!("suyuan/v1/1/{}/telemetry", "d".repeat(65));
        assert!(matches!(t.parse(&long_device), Err(BadTopic::BadDevice(_))));
        assert!(t
            .parse(&format!("suyuan/v1/1/{}/telemetry", "d".repeat(64)))
            .is_ok());
    }

    #[test]
    fn subscriptions_plain_and_shared() {
        assert_eq!(
            topics().subscriptions(),
            [
                "suyuan/v1/+/+/telemetry",
                "suyuan/v1/+/+/image/jpeg/+",
                "suyuan/v1/+/+/status"
            ]
        );
        let shared = Topics::new(&TopicConfig {
            prefix: "suyuan/v1".into(),
            share_group: Some("suyuan".into()),
        })
        .unwrap();
        assert_eq!(
            shared.subscriptions(),
            [
                "$share/suyuan/suyuan/v1/+/+/telemetry",
                "$share/suyuan/suyuan/v1/+/+/image/jpeg/+",
                "$share/suyuan/suyuan/v1/+/+/status"
            ]
        );
    }

    #[test]
    fn prefixes_are_checked() {
        for bad in ["", "/suyuan", "suyuan/", "a//b", "$SYS/x", "a/#", "a/+/b"] {
            assert!(validate_prefix(bad).is_err(), "{bad:?}");
        }
        assert!(validate_prefix("suyuan/v1").is_ok());
    }

    #[test]
    fn client_ids_round_trip_through_serde_and_refuse_bad_ones() {
        let id: ClientId = serde_json::from_str("\"cam-01\"").unwrap();
        assert_eq!(id.as_str(), "cam-01");
        assert_eq!(serde_json::to_string(&id).unwrap(), "\"cam-01\"");
        assert!(serde_json::from_str::<ClientId>("\"a/b\"").is_err());
        assert!(ClientId::new("").is_err());
    }
}
