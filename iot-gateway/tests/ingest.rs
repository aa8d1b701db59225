//! The gateway's core end to end, without a broker or a database: messages are parsed, stored
//! idempotently in a stand-in database, spooled while that database is "down", drained after a
//! crash in the middle of a drain, and fed to the rules. Checks the promise: every acknowledged
//! reading is stored exactly once, in order, and refusals are counted, not stored.

use std::collections::BTreeMap;

use suyuan_iot_gateway::{
    parse_message, AlertEvent, ClientId, Evaluator, GatewayConfig, MediaStore, Parsed, Reading,
    ReadingKey, Reason, RefusalCounters, Rule, RuleId, SiteId, Spool, SpooledMessage,
    ThresholdRule, Topics,
};

const T0: i64 = 1_750_000_000_000;
const MIN: i64 = 60_000;

/// The stand-in database: readings under their idempotency key, as a unique index would keep them.
#[derive(Default)]
struct Db {
    readings: BTreeMap<ReadingKey, f64>,
    images: Vec<String>,
    up: bool,
}

struct Gateway {
    config: GatewayConfig,
    topics: Topics,
    counters: RefusalCounters,
    rules: Evaluator,
    media: MediaStore,
    events: Vec<AlertEvent>,
}

impl Gateway {
    /// Everything after "the device is known": store, then evaluate rules. Returns whether the
    /// message may be acknowledged.
    fn commit(&mut self, db: &mut Db, message: &SpooledMessage) -> bool {
        if !db.up {
            return false;
        }
        let parsed = match parse_message(
            &self.topics,
            &self.config.telemetry,
            &message.topic,
            &message.payload,
            message.received_at_ms,
        ) {
            Ok(p) => p,
            Err(refusal) => {
                self.counters.record(refusal.reason);
                return true;
            }
        };
        match parsed {
            Parsed::Telemetry { telemetry, .. } => {
                for r in &telemetry.refusals {
                    self.counters.record(r.reason);
                }
                let fresh: Vec<Reading> = telemetry
                    .readings
                    .into_iter()
                    .filter(|r| db.readings.insert(r.key(), r.value).is_none())
                    .collect();
                self.events
                    .extend(self.rules.observe_message(&fresh, message.received_at_ms));
            }
            Parsed::ImageJpeg { .. } => {
                match self.media.store_jpeg(&message.payload, &self.config.images) {
                    Ok(stored) => {
                        if !db.images.contains(&stored.sha256) {
                            db.images.push(stored.sha256);
                        }
                    }
                    Err(e) => match e.refusal() {
                        Some(r) => self.counters.record(r.reason),
                        None => return false,
                    },
                }
            }
            Parsed::Status { .. } => {}
        }
        true
    }
}

fn telemetry(minute: i64, seq: u64, temp: f64) -> SpooledMessage {
    SpooledMessage {
        topic: "suyuan/v1/1/cold-01/telemetry".into(),
        payload: format!(
            r#"{{"ts": {}, "seq": {seq}, "values": {{"temp_c": {temp}, "rh_pct": 85}}}}"#,
            T0 + minute * MIN
        )
        .into_bytes(),
        received_at_ms: T0 + minute * MIN + 2_000,
    }
}

#[test]
fn acknowledged_readings_survive_an_outage_and_a_crash_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = GatewayConfig::under_data(dir.path());
    // Small segments, so the outage spans several and drained ones are deleted.
    config.spool.segment_bytes = 4096;
    config.images.max_bytes = 2048;
    config.validate().unwrap();
    let rule = Rule::Threshold(ThresholdRule {
        id: RuleId(1),
        site: SiteId(1),
        device: None,
        metric: "temp_c".into(),
        min: None,
        max: Some(8.0),
        min_duration_ms: 30 * MIN,
    });
    let mut gw = Gateway {
        topics: Topics::new(&config.topics).unwrap(),
        counters: RefusalCounters::new(),
        rules: Evaluator::new(vec![rule], &config.rules),
        media: MediaStore::new(&config.media_dir),
        events: Vec::new(),
        config,
    };
    let mut db = Db {
        up: true,
        ..Db::default()
    };
    let mut spool = Spool::open(&gw.config.spool).unwrap();

    // Minute 0–20: database up, one reading every 5 minutes, stored directly.
    let mut acked = Vec::new();
    for (i, m) in (0..=20).step_by(5).enumerate() {
        let msg = telemetry(m, i as u64, 4.0);
        assert!(gw.commit(&mut db, &msg));
        acked.push(msg);
    }
    // A bad message: refused, acknowledged, counted, not stored.
    let bad = SpooledMessage {
        topic: "suyuan/v1/1/cold-01/telemetry".into(),
        payload: br#"{"ts": 1750000000000, "values": {"temp_c": "hot"}}"#.to_vec(),
        received_at_ms: T0,
    };
    assert!(gw.commit(&mut db, &bad));

    // Minute 25–70: the database is down; the room warms up. Every message is spooled (and only
    // then acknowledged); one is redelivered by the broker and spooled twice.
    db.up = false;
    for (i, m) in (25..=70).step_by(5).enumerate() {
        let msg = telemetry(m, 5 + i as u64, if m >= 30 { 9.5 } else { 4.0 });
        assert!(!gw.commit(&mut db, &msg), "database is down");
        spool.append(&msg).unwrap();
        if m == 40 {
            spool.append(&msg).unwrap(); // redelivery
        }
        acked.push(msg);
    }
    assert_eq!(spool.pending(), 11);

    // The database comes back; a drain commits one batch, then the process crashes before
    // confirming it.
    db.up = true;
    let batch = spool.read_batch(4, u64::MAX).unwrap();
    for msg in &batch.messages {
        assert!(gw.commit(&mut db, msg));
    }
    drop(spool);

    // Restart: the unconfirmed batch comes again; idempotent writes absorb it.
    let mut spool = Spool::open(&gw.config.spool).unwrap();
    assert_eq!(spool.pending(), 11);
    let drained = spool
        .drain(3, |batch| {
            for msg in batch {
                if !gw.commit(&mut db, msg) {
                    return Err("database down");
                }
            }
            Ok(())
        })
        .unwrap();
    assert_eq!(drained, 11);
    assert!(spool.is_empty());
    assert_eq!(spool.disk_bytes(), 0);

    // Every acknowledged reading is stored exactly once: 15 messages × 2 metrics.
    assert_eq!(db.readings.len(), acked.len() * 2);
    let device = ClientId::new("cold-01").unwrap();
    for (seq, msg) in acked.iter().enumerate() {
        let ts: serde_json::Value = serde_json::from_slice(&msg.payload).unwrap();
        let key = ReadingKey {
            device: device.clone(),
            metric: "temp_c".into(),
            ts_ms: ts["ts"].as_i64().unwrap(),
            seq: seq as i64,
        };
        assert!(db.readings.contains_key(&key), "{key:?}");
    }
    assert_eq!(gw.counters.get(Reason::NotFinite), 1);

    // The excursion from minute 30 opened one alert, live (the spool kept the arrival time).
    let opened: Vec<_> = gw
        .events
        .iter()
        .filter_map(|e| match e {
            AlertEvent::Opened(o) => Some(o),
            _ => None,
        })
        .collect();
    assert_eq!(opened.len(), 1, "{:?}", gw.events);
    assert_eq!(opened[0].opened_at_ms, T0 + 30 * MIN);
    assert_eq!(opened[0].confirmed_at_ms, T0 + 60 * MIN);
    assert!(!opened[0].late);
}

#[test]
fn an_image_is_stored_once_and_a_bad_one_is_counted() {
    let dir = tempfile::tempdir().unwrap();
    let config = GatewayConfig::under_data(dir.path());
    let mut gw = Gateway {
        topics: Topics::new(&config.topics).unwrap(),
        counters: RefusalCounters::new(),
        rules: Evaluator::new(Vec::new(), &config.rules),
        media: MediaStore::new(&config.media_dir),
        events: Vec::new(),
        config,
    };
    let mut db = Db {
        up: true,
        ..Db::default()
    };
    let mut jpeg = Vec::new();
    let pixels = image::RgbImage::from_fn(640, 480, |x, y| image::Rgb([x as u8, y as u8, 60]));
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 85)
        .encode_image(&pixels)
        .unwrap();
    let msg = SpooledMessage {
        topic: format!("suyuan/v1/1/cam-01/image/jpeg/{T0}"),
        payload: jpeg,
        received_at_ms: T0 + 1000,
    };
    assert!(gw.commit(&mut db, &msg));
    assert!(gw.commit(&mut db, &msg), "redelivery");
    assert_eq!(db.images.len(), 1);
    let sha = &db.images[0];
    assert!(dir
        .path()
        .join("media")
        .join(&sha[..2])
        .join(&sha[2..4])
        .join(format!("{sha}.thumb.jpg"))
        .exists());

    let png = SpooledMessage {
        payload: b"\x89PNG\r\n\x1a\nnot a jpeg".to_vec(),
        ..msg
    };
    assert!(gw.commit(&mut db, &png));
    assert_eq!(gw.counters.get(Reason::NotJpeg), 1);
    assert_eq!(db.images.len(), 1);
}
