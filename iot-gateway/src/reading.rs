//! Telemetry payloads: JSON from a device, checked, as readings ready to store.
//!
//! A payload is one reading object `{"ts": <ms>, "seq": <n>, "values": {"temp_c": 4.1}}` or an
//! array of them (a device that was offline flushes its backlog). Units are in the metric names'
//! suffixes, so a payload is self-describing and a reading can never be stored without a unit.
//!
//! What is refused, and how much of the message goes with it:
//!
//! - the whole message: too large, not JSON or not the documented shape, an empty or too long
//!   array — the device is misconfigured and nothing in the payload can be trusted;
//! - one reading of a backlog: a timestamp outside the believable window, no values, too many
//!   metrics, a `seq` the database cannot hold;
//! - one value: an unknown unit, a bad name, a value that is not a finite number or not
//!   plausible for its unit (a sensor fault, e.g. 185 °C from a disconnected probe).
//!
//! Keeping the good values of a message with one broken sensor matters in a cold store: the
//! temperature must still be recorded when the humidity probe fails. Every refused part is a
//! [`Refusal`] in [`Telemetry::refusals`] and is counted.
//!
//! Each object of the payload is one [`Reading`]: the unit stored as one row, idempotently on
//! (device, `ts`, `seq`) — see [`Reading`] for why the key holds `ts` *and* `seq`.

use std::collections::HashSet;
use std::fmt;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize};

use crate::config::TelemetryLimits;
use crate::counters::{Reason, Refusal};

/// A unit, named by the suffix after the last `_` of a metric name (`temp_c` → [`Unit::Celsius`]).
///
/// Each unit has a plausible range: a value outside it is a sensor fault, not a measurement, and
/// is refused as `out_of_range` so that it neither pollutes charts nor fires alarms. Ranges are
/// wide on purpose — rules, not this list, decide what is *bad*.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(into = "&'static str", try_from = "&str")]
pub enum Unit {
    /// `_c`: degrees Celsius, −60 to 85 (air, soil, water, cold chain; 85 °C is the rated top of
    /// common sensor electronics).
    Celsius,
    /// `_pct`: percent, 0 to 100 (relative humidity, soil moisture, battery).
    Percent,
    /// `_lux`: illuminance, 0 to 200,000 (full sun is about 120,000).
    Lux,
    /// `_ppm`: parts per million, 0 to 100,000 (CO₂, ethylene).
    Ppm,
    /// `_kpa`: kilopascal, −2,000 to 2,000 (soil water potential, vapour-pressure deficit, line
    /// pressure).
    Kilopascal,
    /// `_hpa`: hectopascal, 300 to 1,100 (air pressure).
    Hectopascal,
    /// `_mm`: millimetres, 0 to 10,000 (rainfall, water level).
    Millimetre,
    /// `_mps`: metres per second, 0 to 100 (wind). Not `_ms`, which reads as milliseconds.
    MetrePerSecond,
    /// `_deg`: degrees of angle, 0 to 360 (wind direction).
    Degree,
    /// `_v`: volts, 0 to 60 (battery, solar panel).
    Volt,
    /// `_ph`: pH, 0 to 14 (soil, irrigation water).
    Ph,
    /// `_uscm`: microsiemens per centimetre, 0 to 200,000 (electrical conductivity).
    MicrosiemensPerCm,
    /// `_wm2`: watts per square metre, 0 to 2,000 (solar radiation).
    WattPerSquareMetre,
    /// `_par`: µmol/m²/s of photosynthetically active radiation, 0 to 3,000.
    Par,
    /// `_dbm`: radio signal strength, −150 to 30.
    Dbm,
    /// `_kg`: kilograms, −100 to 100,000 (scales; a little below zero is tare drift).
    Kilogram,
    /// `_count`: a count, 0 to 10¹² (door openings, pulses).
    Count,
}

impl Unit {
    /// Every unit, in README order.
    pub const ALL: [Unit; 17] = [
        Unit::Celsius,
        Unit::Percent,
        Unit::Lux,
        Unit::Ppm,
        Unit::Kilopascal,
        Unit::Hectopascal,
        Unit::Millimetre,
        Unit::MetrePerSecond,
        Unit::Degree,
        Unit::Volt,
        Unit::Ph,
        Unit::MicrosiemensPerCm,
        Unit::WattPerSquareMetre,
        Unit::Par,
        Unit::Dbm,
        Unit::Kilogram,
        Unit::Count,
    ];

    /// The metric-name suffix (without the `_`), also the unit's stored code.
    pub fn suffix(self) -> &'static str {
        match self {
            Unit::Celsius => "c",
            Unit::Percent => "pct",
            Unit::Lux => "lux",
            Unit::Ppm => "ppm",
            Unit::Kilopascal => "kpa",
            Unit::Hectopascal => "hpa",
            Unit::Millimetre => "mm",
            Unit::MetrePerSecond => "mps",
            Unit::Degree => "deg",
            Unit::Volt => "v",
            Unit::Ph => "ph",
            Unit::MicrosiemensPerCm => "uscm",
            Unit::WattPerSquareMetre => "wm2",
            Unit::Par => "par",
            Unit::Dbm => "dbm",
            Unit::Kilogram => "kg",
            Unit::Count => "count",
        }
    }

    /// The symbol shown to people.
    pub fn symbol(self) -> &'static str {
        match self {
            Unit::Celsius => "°C",
            Unit::Percent => "%",
            Unit::Lux => "lx",
            Unit::Ppm => "ppm",
            Unit::Kilopascal => "kPa",
            Unit::Hectopascal => "hPa",
            Unit::Millimetre => "mm",
            Unit::MetrePerSecond => "m/s",
            Unit::Degree => "°",
            Unit::Volt => "V",
            Unit::Ph => "pH",
            Unit::MicrosiemensPerCm => "µS/cm",
            Unit::WattPerSquareMetre => "W/m²",
            Unit::Par => "µmol/m²/s",
            Unit::Dbm => "dBm",
            Unit::Kilogram => "kg",
            Unit::Count => "",
        }
    }

    /// The plausible range, both ends included.
    pub fn range(self) -> (f64, f64) {
        match self {
            Unit::Celsius => (-60.0, 85.0),
            Unit::Percent => (0.0, 100.0),
            Unit::Lux => (0.0, 200_000.0),
            Unit::Ppm => (0.0, 100_000.0),
            Unit::Kilopascal => (-2_000.0, 2_000.0),
            Unit::Hectopascal => (300.0, 1_100.0),
            Unit::Millimetre => (0.0, 10_000.0),
            Unit::MetrePerSecond => (0.0, 100.0),
            Unit::Degree => (0.0, 360.0),
            Unit::Volt => (0.0, 60.0),
            Unit::Ph => (0.0, 14.0),
            Unit::MicrosiemensPerCm => (0.0, 200_000.0),
            Unit::WattPerSquareMetre => (0.0, 2_000.0),
            Unit::Par => (0.0, 3_000.0),
            Unit::Dbm => (-150.0, 30.0),
            Unit::Kilogram => (-100.0, 100_000.0),
            Unit::Count => (0.0, 1e12),
        }
    }

    /// The unit of a suffix.
    pub fn from_suffix(suffix: &str) -> Option<Unit> {
        Unit::ALL.into_iter().find(|u| u.suffix() == suffix)
    }

    /// The unit of a metric name: the part after its last `_`.
    pub fn of_metric(metric: &str) -> Option<Unit> {
        let (stem, suffix) = metric.rsplit_once('_')?;
        if stem.is_empty() {
            return None;
        }
        Unit::from_suffix(suffix)
    }
}

impl From<Unit> for &'static str {
    fn from(unit: Unit) -> &'static str {
        unit.suffix()
    }
}

impl TryFrom<&str> for Unit {
    type Error = String;
    fn try_from(s: &str) -> Result<Self, Self::Error> {
        Unit::from_suffix(s).ok_or_else(|| format!("unknown unit {s:?}"))
    }
}

impl fmt::Display for Unit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.symbol())
    }
}

/// One object of a telemetry payload: a device's values of one or more metrics at one instant. It is
/// the unit the gateway hands to its [`crate::Store`] and the store keeps as one row, idempotently on
/// (device, `ts_ms`, `seq`).
///
/// `seq` alone would be a trap as a key: a device that keeps its counter in RAM restarts at 0 after a
/// power cut, and its new readings would collide with old ones and be dropped — silent loss of
/// acknowledged data. With `ts` in the key they differ; and with `seq` in it, two readings in the same
/// millisecond (a device without a set clock) are both kept. A redelivered message repeats `ts` and
/// `seq` byte for byte, so it is stored once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reading {
    /// Device time of the measurement, ms since the epoch.
    pub ts_ms: i64,
    /// The device's sequence number of the reading, when it sends one.
    pub seq: Option<i64>,
    /// Metric name with its unit suffix (e.g. `temp_c`) → value, finite and within the unit's
    /// plausible range; each name once, in payload order.
    pub values: Vec<(String, f64)>,
}

/// The outcome of a telemetry message that was not refused as a whole.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Telemetry {
    /// The readings to store, in payload order (a reading whose every value was refused is left out).
    pub readings: Vec<Reading>,
    /// The parts that were refused (readings or single values), to count.
    pub refusals: Vec<Refusal>,
}

/// Parses a telemetry payload received when the gateway's clock said `now_ms`.
///
/// `Err` refuses the whole message. `Ok` may still carry refusals of parts of it, and may hold no
/// readings at all when every part was refused.
pub fn parse_telemetry(
    payload: &[u8],
    now_ms: i64,
    limits: &TelemetryLimits,
) -> Result<Telemetry, Refusal> {
    if payload.len() > limits.max_payload_bytes {
        return Err(Refusal::new(
            Reason::PayloadTooLarge,
            format!(
                "{} bytes, limit {}",
                payload.len(),
                limits.max_payload_bytes
            ),
        ));
    }
    let first = payload.iter().find(|b| !b.is_ascii_whitespace()).copied();
    let (raw, is_array) = match first {
        Some(b'{') => (vec![from_json::<RawReading>(payload)?], false),
        Some(b'[') => {
            let raw: Vec<RawReading> = from_json(payload)?;
            if raw.is_empty() {
                return Err(Refusal::new(Reason::NoValues, "empty array"));
            }
            if raw.len() > limits.max_readings_per_message {
                return Err(Refusal::new(
                    Reason::TooManyReadings,
                    format!(
                        "{} readings, limit {}",
                        raw.len(),
                        limits.max_readings_per_message
                    ),
                ));
            }
            (raw, true)
        }
        _ => {
            return Err(Refusal::new(
                Reason::MalformedJson,
                "payload is not a JSON object or array",
            ))
        }
    };

    let mut out = Telemetry::default();
    for (index, reading) in raw.into_iter().enumerate() {
        let at = |detail: String| {
            if is_array {
                format!("reading {index}: {detail}")
            } else {
                detail
            }
        };
        if let Err((reason, detail)) = check_reading(&reading, now_ms, limits) {
            out.refusals.push(Refusal::new(reason, at(detail)));
            continue;
        }
        let seq = reading.seq.map(|s| s as i64); // checked to fit by check_reading
        let mut values = Vec::with_capacity(reading.values.0.len());
        for (metric, value) in reading.values.0 {
            match check_value(&metric, &value, limits) {
                Ok(value) => values.push((metric, value)),
                Err((reason, detail)) => out.refusals.push(Refusal::new(reason, at(detail))),
            }
        }
        if !values.is_empty() {
            out.readings.push(Reading {
                ts_ms: reading.ts,
                seq,
                values,
            });
        }
    }
    Ok(out)
}

/// A device's connection state from its `status` topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeviceStatus {
    /// The device connected (it publishes this itself, retained).
    Online,
    /// The device disconnected (its last will, published by the broker).
    Offline,
}

/// Parses a status payload: `online` or `offline`, surrounding ASCII whitespace ignored.
pub fn parse_status(payload: &[u8]) -> Result<DeviceStatus, Refusal> {
    match payload.trim_ascii() {
        b"online" => Ok(DeviceStatus::Online),
        b"offline" => Ok(DeviceStatus::Offline),
        other => Err(Refusal::new(
            Reason::BadStatus,
            format!(
                "expected online or offline, got {:?}",
                String::from_utf8_lossy(&other[..other.len().min(40)])
            ),
        )),
    }
}

fn from_json<'a, T: Deserialize<'a>>(payload: &'a [u8]) -> Result<T, Refusal> {
    serde_json::from_slice(payload).map_err(|e| Refusal::new(Reason::MalformedJson, e.to_string()))
}

fn check_reading(
    reading: &RawReading,
    now_ms: i64,
    limits: &TelemetryLimits,
) -> Result<(), (Reason, String)> {
    if !limits.ts_is_plausible(reading.ts, now_ms) {
        return Err((
            Reason::TimestampOutOfRange,
            format!(
                "ts {} is before {} or more than {} ms after the gateway's clock ({now_ms})",
                reading.ts, limits.earliest_ts_ms, limits.max_future_ms
            ),
        ));
    }
    if let Some(seq) = reading.seq {
        if i64::try_from(seq).is_err() {
            return Err((Reason::BadSeq, format!("seq {seq} is above 2^63 - 1")));
        }
    }
    let n = reading.values.0.len();
    if n == 0 {
        return Err((Reason::NoValues, "values is empty".into()));
    }
    if n > limits.max_metrics_per_reading {
        return Err((
            Reason::TooManyMetrics,
            format!("{n} metrics, limit {}", limits.max_metrics_per_reading),
        ));
    }
    Ok(())
}

fn check_value(
    metric: &str,
    value: &serde_json::Value,
    limits: &TelemetryLimits,
) -> Result<f64, (Reason, String)> {
    if !is_valid_metric_name(metric, limits.max_metric_name_len) {
        let shown: String = metric.chars().take(60).collect();
        return Err((
            Reason::BadMetricName,
            format!(
                "{shown:?} is not [a-z][a-z0-9_]* of at most {} bytes",
                limits.max_metric_name_len
            ),
        ));
    }
    let unit = Unit::of_metric(metric).ok_or_else(|| {
        (
            Reason::UnknownUnit,
            format!("{metric}: no known unit suffix (e.g. _c, _pct, _lux)"),
        )
    })?;
    let number = match value {
        serde_json::Value::Number(n) => n.as_f64(),
        _ => None,
    };
    let number = number.filter(|v| v.is_finite()).ok_or_else(|| {
        (
            Reason::NotFinite,
            format!("{metric}: {} is not a number", json_kind(value)),
        )
    })?;
    let (lo, hi) = unit.range();
    if !(lo..=hi).contains(&number) {
        return Err((
            Reason::OutOfRange,
            format!(
                "{metric}: {number} is outside {lo}..={hi} {}",
                unit.symbol()
            ),
        ));
    }
    Ok(number)
}

fn json_kind(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a non-finite number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

/// `[a-z][a-z0-9_]*`, no trailing or double `_`, at most `max_len` bytes: names become column
/// values, chart labels and rule keys, so one spelling per metric.
fn is_valid_metric_name(name: &str, max_len: usize) -> bool {
    let bytes = name.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= max_len
        && bytes[0].is_ascii_lowercase()
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'_')
        && !name.ends_with('_')
        && !name.contains("__")
}

/// One reading object as sent.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawReading {
    ts: i64,
    #[serde(default)]
    seq: Option<u64>,
    values: RawValues,
}

/// The `values` object in payload order, refusing duplicate keys (which `serde_json::Map` would
/// silently resolve to the last one).
struct RawValues(Vec<(String, serde_json::Value)>);

impl<'de> Deserialize<'de> for RawValues {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ValuesVisitor;
        impl<'de> Visitor<'de> for ValuesVisitor {
            type Value = RawValues;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object of metric names to numbers")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawValues, A::Error> {
                // A device sends a handful of metrics: comparing with those before is cheaper than
                // hashing, up to a few dozen; past that (a hostile payload), a set keeps it linear.
                const SCAN_UP_TO: usize = 32;
                let mut seen: HashSet<String> = HashSet::new();
                let mut values: Vec<(String, serde_json::Value)> = Vec::new();
                while let Some((key, value)) = map.next_entry::<String, serde_json::Value>()? {
                    let duplicate = if values.len() < SCAN_UP_TO {
                        values.iter().any(|(k, _)| *k == key)
                    } else {
                        if seen.is_empty() {
                            seen.extend(values.iter().map(|(k, _)| k.clone()));
                        }
                        !seen.insert(key.clone())
                    };
                    if duplicate {
                        return Err(de::Error::custom(format_args!(
                            "duplicate metric {:?}",
                            key.chars().take(60).collect::<String>()
                        )));
                    }
                    values.push((key, value));
                }
                Ok(RawValues(values))
            }
        }
        deserializer.deserialize_map(ValuesVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_750_000_000_000;

    fn parse(payload: &str) -> Result<Telemetry, Refusal> {
        parse_telemetry(payload.as_bytes(), NOW, &TelemetryLimits::default())
    }

    /// (ts, seq, metric, value) of every value kept, in order.
    fn flat(t: &Telemetry) -> Vec<(i64, Option<i64>, &str, f64)> {
        t.readings
            .iter()
            .flat_map(|r| {
                r.values
                    .iter()
                    .map(move |(m, v)| (r.ts_ms, r.seq, m.as_str(), *v))
            })
            .collect()
    }

    fn reasons(t: &Telemetry) -> Vec<Reason> {
        t.refusals.iter().map(|r| r.reason).collect()
    }

    #[test]
    fn a_metric_named_twice_refuses_the_message() {
        let short = parse(r#"{"ts": 1749999990000, "values": {"temp_c": 4.1, "temp_c": 9}}"#);
        assert_eq!(short.unwrap_err().reason, Reason::MalformedJson);
        // Past the short scan, a set finds the repeat, also of a name from before the switch.
        for repeated in ["m0_c", "m39_c"] {
            let mut values: Vec<String> = (0..40).map(|i| format!(r#""m{i}_c": 1"#)).collect();
            values.push(format!(r#""{repeated}": 2"#));
            let payload = format!(
                r#"{{"ts": 1749999990000, "values": {{{}}}}}"#,
                values.join(",")
            );
            let refusal = parse(&payload).unwrap_err();
            assert_eq!(refusal.reason, Reason::MalformedJson, "{repeated}");
            assert!(
                refusal.detail.contains("duplicate metric"),
                "{}",
                refusal.detail
            );
        }
        let distinct: Vec<String> = (0..40).map(|i| format!(r#""m{i}_c": 1"#)).collect();
        let payload = format!(
            r#"{{"ts": 1749999990000, "values": {{{}}}}}"#,
            distinct.join(",")
        );
        let limits = TelemetryLimits {
            max_metrics_per_reading: 64,
            ..TelemetryLimits::default()
        };
        let t = parse_telemetry(payload.as_bytes(), NOW, &limits).unwrap();
        assert_eq!(t.readings.len(), 1);
        assert_eq!(t.readings[0].values.len(), 40);
    }

    #[test]
    fn one_object_is_one_reading_with_its_values_in_order() {
        let t =
            parse(r#"{"ts": 1749999990000, "seq": 17, "values": {"temp_c": 4.1, "rh_pct": 81}}"#)
                .unwrap();
        assert!(t.refusals.is_empty());
        assert_eq!(
            t.readings,
            [Reading {
                ts_ms: 1_749_999_990_000,
                seq: Some(17),
                values: vec![("temp_c".into(), 4.1), ("rh_pct".into(), 81.0)],
            }]
        );
    }

    #[test]
    fn a_backlog_array_is_one_reading_per_object_in_order_and_seq_is_optional() {
        let t = parse(
            r#"[{"ts": 1749990000000, "seq": 1, "values": {"temp_c": 3.0}},
                {"ts": 1749990060000, "values": {"temp_c": 3.5, "door_count": 2}}]"#,
        )
        .unwrap();
        assert!(t.refusals.is_empty());
        assert_eq!(t.readings.len(), 2);
        assert_eq!(
            flat(&t),
            [
                (1_749_990_000_000, Some(1), "temp_c", 3.0),
                (1_749_990_060_000, None, "temp_c", 3.5),
                (1_749_990_060_000, None, "door_count", 2.0),
            ]
        );
    }

    #[test]
    fn whole_message_refusals() {
        let cases = [
            ("not json", Reason::MalformedJson),
            ("", Reason::MalformedJson),
            ("42", Reason::MalformedJson),
            (
                r#"{"ts": 1749999990000, "values": {"temp_c": 4.1}"#,
                Reason::MalformedJson,
            ),
            (r#"{"values": {"temp_c": 4.1}}"#, Reason::MalformedJson),
            (r#"{"ts": 1749999990000}"#, Reason::MalformedJson),
            (
                r#"{"ts": 1.7e12, "values": {"temp_c": 4.1}}"#,
                Reason::MalformedJson,
            ),
            (
                r#"{"ts": "1749999990000", "values": {"temp_c": 4.1}}"#,
                Reason::MalformedJson,
            ),
            (
                r#"{"ts": 1749999990000, "seq": -1, "values": {"temp_c": 4.1}}"#,
                Reason::MalformedJson,
            ),
            (
                r#"{"ts": 1749999990000, "values": {"temp_c": 4.1}, "extra": 1}"#,
                Reason::MalformedJson,
            ),
            (
                r#"{"ts": 1749999990000, "values": [4.1]}"#,
                Reason::MalformedJson,
            ),
            (
                r#"{"ts": 1749999990000, "values": {"temp_c": 4.1, "temp_c": 5}}"#,
                Reason::MalformedJson,
            ),
            (
                r#"{"ts": 1749999990000, "values": {"temp_c": NaN}}"#,
                Reason::MalformedJson,
            ),
            (
                r#"{"ts": 1749999990000, "values": {"temp_c": 1e999}}"#,
                Reason::MalformedJson,
            ),
            ("[]", Reason::NoValues),
            ("[1, 2]", Reason::MalformedJson),
        ];
        for (payload, reason) in cases {
            let err = parse(payload).unwrap_err();
            assert_eq!(err.reason, reason, "{payload}: {err}");
        }
    }

    #[test]
    fn size_and_count_limits() {
        let limits = TelemetryLimits {
            max_payload_bytes: 100,
            ..TelemetryLimits::default()
        };
        let big = format!(
            r#"{{"ts": 1749999990000, "values": {{"temp_c": 4.1}}, "x": "{}"}}"#,
            "a".repeat(100)
        );
        assert_eq!(
            parse_telemetry(big.as_bytes(), NOW, &limits)
                .unwrap_err()
                .reason,
            Reason::PayloadTooLarge
        );

        let one = r#"{"ts": 1749999990000, "values": {"temp_c": 4.1}}"#;
        let many = format!("[{}]", vec![one; 1001].join(","));
        assert_eq!(parse(&many).unwrap_err().reason, Reason::TooManyReadings);
        let max = format!("[{}]", vec![one; 1000].join(","));
        assert_eq!(parse(&max).unwrap().readings.len(), 1000);

        let metrics: Vec<String> = (0..33).map(|i| format!("\"t{i}_c\": 1")).collect();
        let wide = format!(
            r#"{{"ts": 1749999990000, "values": {{{}}}}}"#,
            metrics.join(",")
        );
        let t = parse(&wide).unwrap();
        assert!(t.readings.is_empty());
        assert_eq!(reasons(&t), [Reason::TooManyMetrics]);
    }

    #[test]
    fn timestamps_outside_the_window_refuse_their_reading_only() {
        let t = parse(&format!(
            r#"[{{"ts": 1577836799999, "values": {{"temp_c": 1}}}},
                {{"ts": 1749999990, "values": {{"temp_c": 2}}}},
                {{"ts": {}, "values": {{"temp_c": 3}}}},
                {{"ts": {}, "values": {{"temp_c": 4}}}}]"#,
            NOW + 600_001,
            NOW + 600_000
        ))
        .unwrap();
        assert_eq!(
            reasons(&t),
            [Reason::TimestampOutOfRange; 3],
            "{:?}",
            t.refusals
        );
        assert!(t.refusals[0].detail.starts_with("reading 0:"));
        assert_eq!(flat(&t), [(NOW + 600_000, None, "temp_c", 4.0)]);
    }

    #[test]
    fn bad_values_refuse_that_value_only() {
        let t = parse(
            r#"{"ts": 1749999990000, "values": {
                "temp_c": 4.1, "rh_pct": "81", "co2_ppm": null, "door": 1, "x_furlong": 3,
                "Temp_c": 1, "probe_c": 185, "soil_pct": -1, "wind_mps": true, "nested_c": {"a": 1},
                "list_c": [1], "bad__c": 2, "batt_v": 3.3, "_c": 2, "huge_count": 18446744073709551615
            }}"#,
        )
        .unwrap();
        let kept: Vec<_> = flat(&t).into_iter().map(|(_, _, m, _)| m).collect();
        assert_eq!(kept, ["temp_c", "batt_v"]);
        assert_eq!(
            reasons(&t),
            [
                Reason::NotFinite,     // rh_pct "81"
                Reason::NotFinite,     // co2_ppm null
                Reason::UnknownUnit,   // door
                Reason::UnknownUnit,   // x_furlong
                Reason::BadMetricName, // Temp_c
                Reason::OutOfRange,    // probe_c 185
                Reason::OutOfRange,    // soil_pct -1
                Reason::NotFinite,     // wind_mps true
                Reason::NotFinite,     // nested_c
                Reason::NotFinite,     // list_c
                Reason::BadMetricName, // bad__c
                Reason::BadMetricName, // _c
                Reason::OutOfRange,    // huge_count
            ]
        );
        assert!(
            t.refusals[5].detail.contains("probe_c"),
            "{}",
            t.refusals[5].detail
        );
    }

    #[test]
    fn seq_above_i64_is_refused_per_reading() {
        let t =
            parse(r#"{"ts": 1749999990000, "seq": 9223372036854775808, "values": {"temp_c": 4}}"#)
                .unwrap();
        assert_eq!(reasons(&t), [Reason::BadSeq]);
        let t =
            parse(r#"{"ts": 1749999990000, "seq": 9223372036854775807, "values": {"temp_c": 4}}"#)
                .unwrap();
        assert_eq!(t.readings[0].seq, Some(i64::MAX));
        let t = parse(r#"{"ts": 1749999990000, "values": {}}"#).unwrap();
        assert_eq!(reasons(&t), [Reason::NoValues]);
    }

    #[test]
    fn units_by_suffix_and_their_ranges() {
        assert_eq!(Unit::of_metric("temp_c"), Some(Unit::Celsius));
        assert_eq!(
            Unit::of_metric("soil_ec_uscm"),
            Some(Unit::MicrosiemensPerCm)
        );
        assert_eq!(Unit::of_metric("wind_mps"), Some(Unit::MetrePerSecond));
        assert_eq!(Unit::of_metric("latency_ms"), None);
        assert_eq!(Unit::of_metric("c"), None);
        for unit in Unit::ALL {
            let (lo, hi) = unit.range();
            assert!(lo < hi, "{unit:?}");
            assert_eq!(Unit::from_suffix(unit.suffix()), Some(unit));
            let json = serde_json::to_string(&unit).unwrap();
            assert_eq!(serde_json::from_str::<Unit>(&json).unwrap(), unit);
        }
        let edge =
            parse(r#"{"ts": 1749999990000, "values": {"t_c": -60, "u_c": 85, "h_pct": 100}}"#)
                .unwrap();
        assert_eq!(flat(&edge).len(), 3);
    }

    #[test]
    fn status_payloads() {
        assert_eq!(parse_status(b"online").unwrap(), DeviceStatus::Online);
        assert_eq!(parse_status(b" offline\n").unwrap(), DeviceStatus::Offline);
        assert_eq!(
            parse_status(b"ONLINE").unwrap_err().reason,
            Reason::BadStatus
        );
        assert_eq!(parse_status(b"").unwrap_err().reason, Reason::BadStatus);
    }
}
