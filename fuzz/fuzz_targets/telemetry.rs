//! A device's payloads: telemetry JSON (one reading or a backlog array) and the status word, through
//! `parse_message` (iot-gateway/src/message.rs and reading.rs) as the gateway calls it, under the
//! default limits and under small ones.
//!
//! Asserts: the limits hold (payload bytes, readings per message, metrics per reading); every stored
//! reading has a believable timestamp and values each named once, with a valid metric name whose suffix
//! gives its unit and a finite value within the unit's range; a reading written back as a payload parses
//! to the same reading; a too-large payload is refused as such; a status is exactly `online` or
//! `offline` around ASCII whitespace.
#![no_main]

use libfuzzer_sys::fuzz_target;
use suyuan_iot_gateway::topic::{SiteId, Topics};
use suyuan_iot_gateway::{
    parse_message, parse_status, parse_telemetry, DeviceStatus, Parsed, Reading, Reason,
    TelemetryLimits, TopicConfig, Unit,
};

/// The gateway's clock in the fuzzed calls (June 2025).
const NOW: i64 = 1_750_000_000_000;
const TELEMETRY: &str = "suyuan/v1/5/cold-01/telemetry";
const STATUS: &str = "suyuan/v1/5/cold-01/status";

fn check_reading(r: &Reading, limits: &TelemetryLimits) {
    assert!(limits.ts_is_plausible(r.ts_ms, NOW), "ts {}", r.ts_ms);
    assert!(r.seq.is_none_or(|s| s >= 0));
    assert!(!r.values.is_empty() && r.values.len() <= limits.max_metrics_per_reading);
    for (i, (metric, value)) in r.values.iter().enumerate() {
        assert!(
            r.values[..i].iter().all(|(other, _)| other != metric),
            "{metric} twice"
        );
        let name = metric.as_bytes();
        assert!(!name.is_empty() && name.len() <= limits.max_metric_name_len);
        assert!(name[0].is_ascii_lowercase());
        assert!(name
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'_'));
        assert!(!metric.ends_with('_') && !metric.contains("__"));
        let unit = Unit::of_metric(metric).expect("a unit suffix");
        let (lo, hi) = unit.range();
        assert!(value.is_finite() && (lo..=hi).contains(value));
    }

    // Written back as a device would send it, the reading parses to itself.
    let values: serde_json::Map<String, serde_json::Value> = r
        .values
        .iter()
        .map(|(m, v)| (m.clone(), (*v).into()))
        .collect();
    let mut payload = serde_json::json!({ "ts": r.ts_ms, "values": values });
    if let Some(seq) = r.seq {
        payload["seq"] = seq.into();
    }
    let payload = serde_json::to_vec(&payload).expect("JSON");
    let again = parse_telemetry(&payload, NOW, limits).expect("written back");
    assert!(again.refusals.is_empty(), "{:?}", again.refusals);
    let [one] = again.readings.as_slice() else {
        panic!("one reading expected, got {:?}", again.readings);
    };
    assert_eq!((one.ts_ms, one.seq), (r.ts_ms, r.seq));
    let mut want: Vec<&(String, f64)> = r.values.iter().collect();
    let mut got: Vec<&(String, f64)> = one.values.iter().collect();
    want.sort_by(|a, b| a.0.cmp(&b.0));
    got.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(want.len(), got.len());
    for ((m, v), (m2, v2)) in want.into_iter().zip(got) {
        assert_eq!(m, m2);
        // serde_json parses its own shortest float spelling back to within one unit in the last place.
        assert!((v - v2).abs() <= f64::EPSILON * v.abs(), "{v} became {v2}");
    }
}

fuzz_target!(|data: &[u8]| {
    let topics = Topics::new(&TopicConfig::default()).expect("default topics");
    let small = TelemetryLimits {
        max_payload_bytes: 1024,
        max_readings_per_message: 3,
        max_metrics_per_reading: 2,
        max_metric_name_len: 12,
        ..TelemetryLimits::default()
    };
    for limits in [TelemetryLimits::default(), small] {
        match parse_message(&topics, &limits, TELEMETRY, data, NOW) {
            Ok(Parsed::Telemetry { topic, telemetry }) => {
                assert_eq!(topic.site, SiteId(5));
                assert!(data.len() <= limits.max_payload_bytes);
                assert!(telemetry.readings.len() <= limits.max_readings_per_message);
                for reading in &telemetry.readings {
                    check_reading(reading, &limits);
                }
            }
            Ok(other) => panic!("a telemetry topic gave {other:?}"),
            Err(refusal) => {
                if data.len() > limits.max_payload_bytes {
                    assert_eq!(refusal.reason, Reason::PayloadTooLarge);
                }
            }
        }
    }

    let status = parse_message(&topics, &TelemetryLimits::default(), STATUS, data, NOW);
    match (status, parse_status(data)) {
        (Ok(Parsed::Status { status, .. }), Ok(alone)) => {
            assert_eq!(status, alone);
            let word = match status {
                DeviceStatus::Online => b"online".as_slice(),
                DeviceStatus::Offline => b"offline".as_slice(),
            };
            assert_eq!(data.trim_ascii(), word);
        }
        (Ok(other), _) => panic!("a status topic gave {other:?}"),
        (Err(refusal), Ok(_)) => assert_eq!(refusal.reason, Reason::PayloadTooLarge),
        (Err(_), Err(_)) => {}
    }
});
