//! The demo county's sensor history and plot photos, so that the scan page of a demo label shows a
//! cold-store temperature chart and photos from the field the first time anyone opens it.
//!
//! The cold room's sensor gets a reading every 10 minutes since the gift boxes arrived (about 4–5 °C
//! with the compressor's daily swing), and the plot camera a photo every ten days of the growing period,
//! drawn here (a citrus grove whose fruit turns from green to orange) and stored exactly as the gateway
//! stores a camera's JPEG. Done once: a second start finds them and adds nothing.

use std::path::Path;

use crate::demo::{DEMO_CAMERA, DEMO_SENSOR};
use anyhow::Context;
use chrono::{Duration, Utc};
use image::{ImageBuffer, Rgb};
use suyuan_core::store::iot::{self, NewDeviceImage, NewTelemetry};
use suyuan_core::Database;
use suyuan_iot_gateway::config::ImageLimits;
use suyuan_iot_gateway::MediaStore;

/// What was added.
#[derive(Debug, Default)]
pub struct DemoMedia {
    pub readings: usize,
    pub photos: usize,
}

/// Adds the history if the demo devices have none.
pub fn ensure(db: &Database, media: &Path) -> anyhow::Result<DemoMedia> {
    let mut out = DemoMedia::default();
    let (sensor, camera) = db.read(|c| {
        Ok((
            iot::device_by_client_id(c, DEMO_SENSOR)?,
            iot::device_by_client_id(c, DEMO_CAMERA)?,
        ))
    })?;
    let now = Utc::now();
    if let Some(sensor) = sensor.filter(|d| d.last_seen_at.is_none()) {
        let start = now - Duration::days(14);
        let mut rows = Vec::new();
        for i in 0..(14 * 24 * 6) {
            let ts = start + Duration::minutes(10 * i);
            let hours = f64::from(i as i32) / 6.0;
            // Daily swing (door openings by day), a slow drift and a little sensor noise.
            let temp = 4.3
                + 0.5 * (hours / 24.0 * std::f64::consts::TAU).sin()
                + 0.15 * (hours / 57.0).cos()
                + 0.08 * ((i * 7919 % 13) as f64 / 13.0 - 0.5);
            let rh = 88.0 + 2.5 * (hours / 24.0 * std::f64::consts::TAU).cos();
            rows.push(NewTelemetry {
                device_id: sensor.id,
                ts: ts.timestamp_millis(),
                seq: -1,
                site_id: sensor.site_id.0,
                received_at: ts.timestamp_millis(),
                late: false,
                metrics: vec![
                    ("temp_c".into(), (temp * 10.0).round() / 10.0),
                    ("rh_pct".into(), (rh * 10.0).round() / 10.0),
                ],
            });
        }
        out.readings = 2 * rows.len();
        db.write(|c| {
            for chunk in rows.chunks(1000) {
                iot::insert_telemetry(c, chunk, false)?;
            }
            iot::touch_devices(c, &[(sensor.id, now.timestamp_millis())])
        })?;
    }
    if let Some(camera) = camera.filter(|d| d.last_seen_at.is_none()) {
        let store = MediaStore::new(media);
        let limits = ImageLimits::default();
        for (n, days_ago) in (0..8).map(|n| (n, 95 - 10 * n)) {
            let jpeg = grove(n as f64 / 7.0)?;
            let stored = store
                .store_jpeg(&jpeg, &limits)
                .with_context(|| format!("storing a demo photo in {}", media.display()))?;
            let taken = (now - Duration::days(days_ago)).timestamp_millis();
            db.write(|c| {
                iot::insert_image(
                    c,
                    &NewDeviceImage {
                        device_id: camera.id,
                        site_id: camera.site_id.0,
                        taken_at: taken,
                        sha256: stored.sha256.clone(),
                        bytes: stored.bytes as i64,
                        width: i64::from(stored.width),
                        height: i64::from(stored.height),
                        path: stored.path.clone(),
                        thumb_path: stored.thumb_path.clone(),
                        received_at: taken,
                    },
                )
            })?;
            out.photos += 1;
        }
        db.write(|c| iot::touch_devices(c, &[(camera.id, now.timestamp_millis())]))?;
    }
    Ok(out)
}

/// A citrus grove on a hillside; `ripeness` 0 (green fruit) to 1 (orange fruit).
fn grove(ripeness: f64) -> anyhow::Result<Vec<u8>> {
    let (w, h) = (640u32, 480u32);
    let lerp = |a: f64, b: f64| (a + (b - a) * ripeness) as u8;
    let fruit = Rgb([lerp(96.0, 240.0), lerp(160.0, 140.0), lerp(60.0, 20.0)]);
    let img = ImageBuffer::from_fn(w, h, |x, y| {
        let (xf, yf) = (f64::from(x), f64::from(y));
        let ridge = 170.0 + 30.0 * (xf / 90.0).sin();
        if yf < ridge {
            // Sky, lighter towards the horizon.
            let t = yf / ridge;
            return Rgb([(120.0 + 90.0 * t) as u8, (170.0 + 60.0 * t) as u8, 235]);
        }
        // Rows of trees: round canopies on a grassy slope.
        let row = ((yf - ridge) / 70.0).floor();
        let cy = ridge + row * 70.0 + 40.0;
        let spacing = 90.0 - row * 8.0;
        let cx = ((xf + row * 37.0) / spacing).round() * spacing - row * 37.0;
        let r = 30.0 - row * 2.0;
        let d = ((xf - cx).powi(2) + (yf - cy).powi(2)).sqrt();
        if d < r {
            // Fruit: small dots scattered on the canopy.
            let fx = (xf - cx + r) as i64;
            let fy = (yf - cy + r) as i64;
            if (fx * 7 + fy * 13) % 23 == 0 && d < r - 4.0 {
                return fruit;
            }
            let shade = 1.0 - 0.35 * (d / r);
            return Rgb([
                (40.0 * shade) as u8,
                (120.0 * shade) as u8,
                (45.0 * shade) as u8,
            ]);
        }
        Rgb([120, 150, 70])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    image::DynamicImage::ImageRgb8(img)
        .write_to(&mut out, image::ImageFormat::Jpeg)
        .context("encoding a demo photo")?;
    Ok(out.into_inner())
}
