//! The topic a message arrives on: `Topics::parse` (iot-gateway/src/topic.rs), under the default
//! prefix, a two-level prefix and a shared subscription.
//!
//! Asserts: an accepted topic has one spelling (rendering the parsed site, device and channel gives
//! the input back), names a positive site and a valid client id, and matches exactly one of the
//! filters the gateway subscribes to.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use suyuan_iot_gateway::topic::{Channel, ClientId, Topics, MAX_CLIENT_ID_LEN};
use suyuan_iot_gateway::TopicConfig;

fn all_topics() -> &'static [Topics] {
    static TOPICS: OnceLock<Vec<Topics>> = OnceLock::new();
    TOPICS.get_or_init(|| {
        [
            TopicConfig::default(),
            TopicConfig {
                prefix: "farm/east/v2".into(),
                share_group: Some("gateways".into()),
            },
        ]
        .iter()
        .map(|c| Topics::new(c).expect("a valid topic configuration"))
        .collect()
    })
}

/// MQTT topic filter matching: `+` is one level, a final `#` the rest (none included).
fn matches(filter: &str, topic: &str) -> bool {
    let filter = match filter.strip_prefix("$share/") {
        Some(shared) => shared.split_once('/').map_or("", |(_, f)| f),
        None => filter,
    };
    let mut levels = topic.split('/');
    for want in filter.split('/') {
        if want == "#" {
            return true;
        }
        match levels.next() {
            Some(level) if want == "+" || want == level => {}
            _ => return false,
        }
    }
    levels.next().is_none()
}

fuzz_target!(|data: &[u8]| {
    let Ok(topic) = std::str::from_utf8(data) else {
        return;
    };
    for topics in all_topics() {
        let Ok(parsed) = topics.parse(topic) else {
            continue;
        };
        let rendered = match parsed.channel {
            Channel::Telemetry => topics.telemetry(parsed.site, &parsed.device),
            Channel::Status => topics.status(parsed.site, &parsed.device),
            Channel::ImageJpeg { ts_ms } => topics.image_jpeg(parsed.site, &parsed.device, ts_ms),
        };
        assert_eq!(rendered, topic);
        assert!(parsed.site.0 > 0);
        let device = parsed.device.as_str();
        assert!(!device.is_empty() && device.len() <= MAX_CLIENT_ID_LEN);
        assert_eq!(ClientId::new(device).as_ref(), Ok(&parsed.device));
        if let Channel::ImageJpeg { ts_ms } = parsed.channel {
            assert!(ts_ms >= 0);
        }
        let subscribed = topics.subscriptions();
        let matching = subscribed.iter().filter(|f| matches(f, topic)).count();
        assert_eq!(matching, 1, "{topic} against {subscribed:?}");
    }
});
