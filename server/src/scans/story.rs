//! A batch's public story with its plot photos and cold-store temperatures, cached for the scan page.
//!
//! Building a story walks the batch's backward trace and reads images and readings: far more than a scan
//! may cost at 5,000 scans a second, and the same few batches are scanned over and over. Stories are
//! kept for [`STORY_TTL`]; the verdict (recall, void) is never cached — the page reads it on every scan.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use suyuan_core::model::{DeviceImage, RecordDetails, SiteKind};
use suyuan_core::store::public::{self, PublicStory};
use suyuan_core::store::{iot, DbConnection};
use suyuan_core::{BatchId, CoreResult, SiteId};

/// How long a built story is served before it is built again.
pub const STORY_TTL: Duration = Duration::from_secs(10);
/// Plot photos shown at most.
pub const MAX_PHOTOS: usize = 6;
/// Points of a temperature chart.
pub const CHART_POINTS: i64 = 48;
/// Longest cold-store stay charted (older readings are not what a consumer asks about).
const MAX_STAY: chrono::Duration = chrono::Duration::days(60);

/// A stay of a batch in a cold store, with its temperatures.
#[derive(Debug, Clone)]
pub struct ColdStay {
    pub site: String,
    pub lot_code: String,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    /// (span start ms, min, mean, max) in °C.
    pub points: Vec<(i64, f64, f64, f64)>,
}

/// What the scan page shows of a batch, besides the verdict.
#[derive(Debug, Clone)]
pub struct StoryData {
    pub story: PublicStory,
    pub photos: Vec<DeviceImage>,
    pub cold: Vec<ColdStay>,
    /// The story rendered as HTML, in Chinese and in English, once each (see `pages::scan`).
    pub rendered: [std::sync::OnceLock<Arc<str>>; 2],
}

impl StoryData {
    /// Whether an image is one of this story's photos (only those are served publicly).
    pub fn shows_photo(&self, id: i64) -> bool {
        self.photos.iter().any(|p| p.id == id)
    }
}

/// The cache of built stories.
#[derive(Debug, Default)]
pub struct StoryCache {
    built: Mutex<HashMap<BatchId, (Instant, Arc<StoryData>)>>,
}

impl StoryCache {
    /// The story of `batch`, built if it is not cached or is older than [`STORY_TTL`].
    pub fn get(&self, c: &mut DbConnection, batch: BatchId) -> CoreResult<Arc<StoryData>> {
        if let Some((at, data)) = self.lock().get(&batch) {
            if at.elapsed() < STORY_TTL {
                return Ok(data.clone());
            }
        }
        let data = Arc::new(build(c, batch)?);
        let mut map = self.lock();
        // Bounded: a county has thousands of batches, not millions; stale entries are dropped wholesale.
        if map.len() > 10_000 {
            map.retain(|_, (at, _)| at.elapsed() < STORY_TTL);
        }
        map.insert(batch, (Instant::now(), data.clone()));
        Ok(data)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<BatchId, (Instant, Arc<StoryData>)>> {
        self.built
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Builds a story: the public story, the plot photos of the growing period and the cold-store stays.
pub fn build(c: &mut DbConnection, batch: BatchId) -> CoreResult<StoryData> {
    let story = public::story(c, batch)?;
    let batches: Vec<_> = std::iter::once(&story.batch)
        .chain(story.upstream.iter())
        .collect();

    // Plot photos: the plots where the batches grew, over their growing period (first farming record to
    // the last harvest).
    let mut plots: Vec<SiteId> = batches.iter().filter_map(|b| b.origin_site_id).collect();
    let mut first: Option<DateTime<Utc>> = None;
    let mut last: Option<DateTime<Utc>> = None;
    for b in &batches {
        for r in b.records.iter().filter(|r| r.details.kind().is_farming()) {
            if matches!(r.site_kind, Some(SiteKind::Plot | SiteKind::Greenhouse)) {
                plots.extend(r.site_id);
            }
            first = Some(first.map_or(r.event_time, |f| f.min(r.event_time)));
            last = Some(last.map_or(r.event_time, |l| l.max(r.event_time)));
        }
    }
    plots.sort_unstable_by_key(|s| s.0);
    plots.dedup();
    let photos = match (first, last) {
        (Some(from), Some(to)) if !plots.is_empty() => iot::images_at(
            c,
            &plots,
            from.timestamp_millis(),
            to.timestamp_millis() + 1,
            MAX_PHOTOS,
        )?,
        _ => Vec::new(),
    };

    // Cold-store stays: from a receipt at a cold store to the next shipment of that batch (or now).
    let now = Utc::now();
    let mut cold = Vec::new();
    for b in &batches {
        let mut records: Vec<_> = b.records.iter().collect();
        records.sort_by_key(|r| r.event_time);
        for (i, r) in records.iter().enumerate() {
            if !matches!(r.details, RecordDetails::Receiving(_))
                || r.site_kind != Some(SiteKind::ColdStore)
            {
                continue;
            }
            let Some(site) = r.site_id else { continue };
            let until = records[i + 1..]
                .iter()
                .find(|n| matches!(n.details, RecordDetails::Shipping(_)))
                .map_or(now, |n| n.event_time);
            let from = r.event_time.max(until - MAX_STAY);
            let points = iot::temperature_buckets(
                c,
                site,
                from.timestamp_millis(),
                until.timestamp_millis(),
                CHART_POINTS,
            )?;
            if points.is_empty() {
                continue;
            }
            cold.push(ColdStay {
                site: r.site.clone().unwrap_or_default(),
                lot_code: b.lot_code.clone(),
                from,
                to: until,
                points,
            });
        }
    }
    Ok(StoryData {
        story,
        photos,
        cold,
        rendered: Default::default(),
    })
}
